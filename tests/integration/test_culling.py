"""Issue 7: in-daemon culling with a persistent LRU index, size and free-space limits."""
import os
import random
import subprocess
import threading
import time

import pytest

from conftest import Mount, drop_caches, sha256_file, write_fast_random

MiB = 1 << 20


def du_bytes(path):
    out = subprocess.run(["du", "-s", "-B1", path], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def object_files(cache):
    out = []
    for root, _, names in os.walk(os.path.join(cache, "volumes")):
        out += [os.path.join(root, n) for n in names if len(n) == 32]
    return out


def free_pct(path):
    st = os.statvfs(path)
    return 100.0 * st.f_bavail / st.f_blocks


@pytest.fixture
def loopfs(work):
    """A 256 MiB ext4 on a loop device: a small cache disk."""
    img = os.path.join(work, "cache.img")
    mnt = os.path.join(work, "loopfs")
    os.mkdir(mnt)
    subprocess.run(["truncate", "-s", "256M", img], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    yield mnt
    subprocess.run(["umount", "-l", mnt])


def make_files(src, count, size, prefix="f"):
    names = []
    for i in range(count):
        name = f"{prefix}{i:04d}"
        write_fast_random(os.path.join(src, name), size)
        names.append(name)
    return names


def test_small_cache_disk_never_fails_a_reader(work, loopfs):
    m = Mount(os.path.join(work, "src"), os.path.join(work, "mnt"), os.path.join(loopfs, "cache"))
    names = make_files(m.src, 64, 16 * MiB)  # 1 GiB of distinct files
    m.start()
    try:
        lowest = [100.0]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                lowest[0] = min(lowest[0], free_pct(loopfs))
                time.sleep(0.05)

        t = threading.Thread(target=watch)
        t.start()
        for n in names:
            assert sha256_file(m.path(n)) == sha256_file(os.path.join(m.src, n)), n
        stop.set()
        t.join()
        s = m.stats()
        assert s["cache.errors"] == 0, s
        assert s["cull.objects"] > 0
        # Free space may dip below bcull while culling catches up, but not stay below bstop.
        deadline = time.time() + 10
        while free_pct(loopfs) < 3 and time.time() < deadline:
            time.sleep(0.1)
        assert free_pct(loopfs) >= 3, (free_pct(loopfs), lowest[0])
        assert m.stats()["cache.state"] == "active"
    finally:
        m.stop()


def test_cache_size_limit_holds(mount):
    names = make_files(mount.src, 64, 8 * MiB)  # 512 MiB
    mount.start("cache_size=64M")
    for n in names:
        assert sha256_file(mount.path(n)) == sha256_file(os.path.join(mount.src, n)), n
    time.sleep(1)
    s = mount.stats()
    assert s["cull.objects"] > 0 and s["cull.bytes"] > 0
    assert du_bytes(mount.cache) <= 64 * MiB * 1.01, du_bytes(mount.cache)
    mount.stop()
    assert du_bytes(mount.cache) <= 64 * MiB * 1.01


def test_recently_used_files_survive_culling_and_open_files_are_never_culled(mount):
    names = make_files(mount.src, 40, 4 * MiB)
    mount.start("cache_size=48M")
    held = open(mount.path(names[0]), "rb")
    held.read()  # cached, and kept open: in use
    for n in names[1:]:
        open(mount.path(n), "rb").read()
        time.sleep(0.02)
    time.sleep(1)
    assert os.getxattr(mount.path(names[0]), "user.cachefuse.cached") != b"none"
    held.close()
    # The most recent file is still cached; the oldest ones (not in use) went first.
    assert os.getxattr(mount.path(names[-1]), "user.cachefuse.cached") != b"none"
    assert os.getxattr(mount.path(names[1]), "user.cachefuse.cached") == b"none"


def test_no_space_state_stops_caching_and_resumes(work, loopfs):
    m = Mount(os.path.join(work, "src"), os.path.join(work, "mnt"), os.path.join(loopfs, "cache"))
    names = make_files(m.src, 8, 4 * MiB)
    m.start()
    # Fill the cache filesystem with something that is not ours: no culling can help.
    junk = os.path.join(loopfs, "junk")
    st = os.statvfs(loopfs)
    target_free = int(st.f_blocks * st.f_frsize * 0.02)  # 2% free: below bstop=3%
    subprocess.run(["fallocate", "-l", str(st.f_bavail * st.f_frsize - target_free), junk], check=True)
    for n in names[:4]:
        assert sha256_file(m.path(n)) == sha256_file(os.path.join(m.src, n))
    s = m.stats()
    assert s["cache.state"] == "no-space", s
    assert s["cache.errors"] == 0
    assert s["bytes.to_cache"] == 0
    os.unlink(junk)
    deadline = time.time() + 10
    while m.stats()["cache.state"] != "active":
        assert time.time() < deadline
        time.sleep(0.1)
    for n in names[4:]:
        assert sha256_file(m.path(n)) == sha256_file(os.path.join(m.src, n))
    assert m.wait_cached(4 * 4 * MiB)["bytes.to_cache"] >= 4 * 4 * MiB
    m.stop()


def test_index_survives_restart_without_a_scan(mount):
    names = make_files(mount.src, 20, 2 * MiB)
    mount.start()
    for n in names:
        open(mount.path(n), "rb").read()
    mount.wait_cached(20 * 2 * MiB)
    mount.stop()
    assert os.path.exists(os.path.join(mount.cache, "index", "CLEAN"))
    mount.start()
    s = mount.stats()  # straight from the index, before anything was read
    assert s["cache.objects"] == len(object_files(mount.cache)) == 20
    assert abs(s["cache.bytes_used"] - du_bytes(mount.cache)) <= 0.01 * du_bytes(mount.cache)


def test_kill9_while_filling_then_cull_reconciles(mount):
    names = make_files(mount.src, 48, 4 * MiB)
    rng = random.Random(5)
    mount.start("cache_size=96M")
    procs = [subprocess.Popen(["cat"] + [mount.path(n) for n in names[i::3]], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(3)]
    time.sleep(rng.uniform(0.3, 0.8))
    mount.kill9()
    for p in procs:
        p.wait(timeout=30)
    assert not os.path.exists(os.path.join(mount.cache, "index", "CLEAN"))
    mount.start("cache_size=96M")
    mount.ctl("cull", mount.mnt)
    s = mount.stats()
    files = object_files(mount.cache)
    assert s["cache.objects"] == len(files), (s["cache.objects"], len(files))
    used, du = s["cache.bytes_used"], du_bytes(mount.cache)
    assert abs(used - du) <= 0.01 * du, (used, du)
    # Everything still reads back right.
    drop_caches()
    for n in names:
        assert sha256_file(mount.path(n)) == sha256_file(os.path.join(mount.src, n))
