"""Issue 2: a caching mount over a local directory: correct bytes, warm reads from
the cache after a remount, no stale data, clean start-up errors, write-through."""
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import CACHEFUSE, CTL, daemon_pids, mounted, sha256_file, write_random

GRANULE = 256 * 1024
SIZES = [0, 1, 4095, 4096, 4097, GRANULE - 1, GRANULE, GRANULE + 1, 3 * GRANULE + 17, 5 * (1 << 20) + 3]


def make_tree(src):
    files = {}
    for i, size in enumerate(SIZES):
        rel = f"f{i}_{size}"
        write_random(os.path.join(src, rel), size, seed=i)
        files[rel] = size
    os.makedirs(os.path.join(src, "a", "b", "c"))
    write_random(os.path.join(src, "a", "b", "c", "deep"), 700000, seed=99)
    files["a/b/c/deep"] = 700000
    return files


def read_all(m, files):
    for rel in files:
        assert sha256_file(m.path(rel)) == sha256_file(os.path.join(m.src, rel)), rel


def test_reads_equal_source_and_come_from_cache_after_remount(mount):
    files = make_tree(mount.src)
    total = sum(files.values())
    mount.start()
    read_all(mount, files)
    s = mount.wait_cached(total)
    assert s["bytes.to_cache"] >= total
    assert s["bytes.from_backend"] >= total
    mount.stop()

    mount.start()
    read_all(mount, files)
    s = mount.stats()
    assert s["bytes.from_backend"] == 0, s
    assert s["bytes.from_cache"] >= total, s
    assert s["read.miss"] == 0


def test_cache_holds_sparse_backing_files_with_xattrs(mount):
    write_random(os.path.join(mount.src, "f"), 3 * GRANULE, seed=1)
    mount.start()
    with open(mount.path("f"), "rb") as f:
        f.seek(2 * GRANULE)
        f.read(100)
    mount.stop()
    objs = []
    for root, _, names in os.walk(os.path.join(mount.cache, "volumes")):
        objs += [os.path.join(root, n) for n in names if n != "VOLUME"]
    assert len(objs) == 1
    names = os.listxattr(objs[0])
    assert "user.cachefuse.aux" in names and "user.cachefuse.map" in names
    # Only granules that were read are stored: the file is sparse.
    st = os.stat(objs[0])
    assert st.st_blocks * 512 < 3 * GRANULE


def test_changed_source_is_fetched_again(mount):
    p = os.path.join(mount.src, "f")
    write_random(p, 100000, seed=1)
    mount.start("attr_timeout=0.2,entry_timeout=0.2")
    old = open(mount.path("f"), "rb").read()
    assert old == open(p, "rb").read()
    # Same size, new content.
    write_random(p, 100000, seed=2)
    time.sleep(0.5)
    assert open(mount.path("f"), "rb").read() == open(p, "rb").read()
    # New content with the old mtime put back: ctime still tells.
    st = os.stat(p)
    write_random(p, 100000, seed=3)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    time.sleep(0.5)
    assert open(mount.path("f"), "rb").read() == open(p, "rb").read()
    # Replaced by rename while unmounted: the cached copy is not served.
    mount.stop()
    write_random(p + ".new", 100000, seed=4)
    os.rename(p + ".new", p)
    mount.start()
    assert open(mount.path("f"), "rb").read() == open(p, "rb").read()
    assert mount.stats()["bytes.from_cache"] == 0


def _start_fails(args, expect):
    before = set(open("/proc/mounts").read().splitlines())
    r = subprocess.run([CACHEFUSE, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expect in lines[0], lines[0]
    assert set(open("/proc/mounts").read().splitlines()) == before
    return lines[0]


def test_startup_errors_are_one_line_and_leave_nothing(work):
    src, mnt, cache = (os.path.join(work, d) for d in ("src", "mnt", "cache"))
    _start_fails([os.path.join(work, "missing"), mnt, "-o", f"cache_dir={cache}"], "missing")
    open(os.path.join(work, "file"), "w").close()
    _start_fails([src, os.path.join(work, "file"), "-o", f"cache_dir={cache}"], "not a directory")
    _start_fails([src, os.path.join(work, "nomnt"), "-o", f"cache_dir={cache}"], "nomnt")
    _start_fails([src, mnt, "-o", f"cache_dir={cache},frobnicate=1"], "frobnicate")
    _start_fails([src, mnt, "-o", f"cache_dir={cache},granule=1000"], "granule")
    # An unwritable cache dir (root bypasses modes, so use a read-only bind mount).
    ro = os.path.join(work, "ro")
    os.mkdir(ro)
    subprocess.run(["mount", "--bind", ro, ro], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", ro, ro], check=True)
    try:
        _start_fails([src, mnt, "-o", f"cache_dir={ro}"], ro)
        _start_fails([src, mnt, "-o", f"cache_dir={ro}/sub"], ro)
    finally:
        subprocess.run(["umount", ro])
    assert daemon_pids(mnt) == []
    assert not mounted(mnt)


def test_help_and_version():
    r = subprocess.run([CACHEFUSE, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("cache_dir", "granule", "attr_timeout", "allow_other", "io_engine"):
        assert word in r.stdout
    r = subprocess.run([CACHEFUSE, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "cachefuse" in r.stdout
    r = subprocess.run([CTL, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "stats" in r.stdout


def test_write_through(mount):
    mount.start()
    m, s = mount.mnt, mount.src
    with open(os.path.join(m, "new"), "wb") as f:
        f.write(b"hello world")
    assert open(os.path.join(s, "new"), "rb").read() == b"hello world"
    os.mkdir(os.path.join(m, "dir"))
    assert os.path.isdir(os.path.join(s, "dir"))
    os.rename(os.path.join(m, "new"), os.path.join(m, "dir", "moved"))
    assert open(os.path.join(s, "dir", "moved"), "rb").read() == b"hello world"
    os.truncate(os.path.join(m, "dir", "moved"), 5)
    assert open(os.path.join(s, "dir", "moved"), "rb").read() == b"hello"
    assert open(os.path.join(m, "dir", "moved"), "rb").read() == b"hello"
    os.chmod(os.path.join(m, "dir", "moved"), 0o600)
    assert stat.S_IMODE(os.stat(os.path.join(s, "dir", "moved")).st_mode) == 0o600
    os.symlink("moved", os.path.join(m, "dir", "ln"))
    assert os.readlink(os.path.join(s, "dir", "ln")) == "moved"
    assert os.readlink(os.path.join(m, "dir", "ln")) == "moved"
    assert open(os.path.join(m, "dir", "ln"), "rb").read() == b"hello"
    os.unlink(os.path.join(m, "dir", "ln"))
    os.unlink(os.path.join(m, "dir", "moved"))
    os.rmdir(os.path.join(m, "dir"))
    assert os.listdir(s) == []
    assert os.listdir(m) == []


def test_stats_names_every_counter(mount):
    mount.start()
    s = mount.stats()
    for key in ("cookies.acquired", "cookies.relinquished", "cookies.in_use", "read.requests", "read.hit",
                "read.partial", "read.miss", "bytes.from_cache", "bytes.from_backend", "bytes.to_cache",
                "invalidations", "cull.objects", "cull.bytes", "cache.errors", "cache.state", "io.engine"):
        assert key in s, key
    assert s["cache.state"] == "active"
    text = mount.ctl("stats", mount.mnt).stdout
    assert "bytes.from_cache" in text


def test_mounting_over_a_live_or_dead_mount_is_refused(mount):
    open(os.path.join(mount.src, "f"), "w").write("x")
    mount.start()
    pids = daemon_pids(mount.mnt)
    msg = _start_fails([mount.src, mount.mnt, "-o", f"cache_dir={mount.cache}-other"], "already a cachefuse mount")
    assert "fusermount3 -u" in msg
    assert daemon_pids(mount.mnt) == pids  # the first daemon goes on
    assert open(mount.path("f")).read() == "x"
    for p in pids:
        os.kill(p, signal.SIGKILL)
    time.sleep(0.3)
    _start_fails([mount.src, mount.mnt, "-o", f"cache_dir={mount.cache}"], "dead cachefuse mount")
    subprocess.run(["fusermount3", "-u", mount.mnt], capture_output=True)
    mount.start()
    assert open(mount.path("f")).read() == "x"
