"""Issue 3: a crash-safe cachefiles-style store for files of any size."""
import os
import random
import subprocess
import time

import pytest

from conftest import CACHEFUSE, drop_caches, mounted, sha256_file, write_fast_random

MiB = 1 << 20
GiB = 1 << 30


def backing_files(cache):
    out = []
    for root, _, names in os.walk(os.path.join(cache, "volumes")):
        out += [os.path.join(root, n) for n in names if n != "VOLUME" and not n.endswith(".map")]
    return out


def read_direct(path, offset, length):
    """Reads with O_DIRECT through the mount: no kernel read-ahead, exact requests."""
    r = subprocess.run(["dd", f"if={path}", "bs=1M", f"skip={offset}", f"count={length // MiB}",
                        "iflag=direct,skip_bytes", "status=none"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_sparse_3gib_file_ranges_survive_remount(mount):
    src = os.path.join(mount.src, "sparse")
    with open(src, "wb") as f:
        f.truncate(3 * GiB)
        for off in (0, 3 * GiB // 2, int(2.9 * GiB) // MiB * MiB):
            f.seek(off)
            f.write(os.urandom(MiB))
    offsets = [0, 3 * GiB // 2, int(2.9 * GiB) // MiB * MiB]
    with open(src, "rb") as f:
        expect = [(f.seek(o), f.read(MiB))[1] for o in offsets]
    mount.start()
    for o, e in zip(offsets, expect):
        assert read_direct(mount.path("sparse"), o, MiB) == e
    mount.wait_cached(3 * MiB)
    mount.stop()
    mount.start()
    for o, e in zip(offsets, expect):
        assert read_direct(mount.path("sparse"), o, MiB) == e
    s = mount.stats()
    assert s["bytes.from_backend"] == 0, s
    assert s["bytes.from_cache"] >= 3 * MiB


def test_kill9_during_cold_read_never_corrupts(mount):
    size = 512 * MiB
    src = os.path.join(mount.src, "big")
    write_fast_random(src, size)
    want = sha256_file(src)
    rng = random.Random(1234)
    for rnd in range(20):
        subprocess.run(["rm", "-rf", mount.cache])
        mount.start()
        drop_caches()
        cat = subprocess.Popen(["cat", mount.path("big")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.02, 1.2))
        mount.kill9()
        cat.wait(timeout=30)
        assert not mounted(mount.mnt)
        mount.start()
        got = sha256_file(mount.path("big"))
        assert got == want, f"round {rnd}: mismatch after kill -9"
        mount.stop()


def _prepare_cached(mount, size=3 * 256 * 1024 + 17):
    src = os.path.join(mount.src, "f")
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    mount.start()
    assert open(mount.path("f"), "rb").read() == open(src, "rb").read()
    mount.wait_cached(size)
    mount.stop()
    objs = backing_files(mount.cache)
    assert len(objs) == 1
    return src, objs[0]


def _read_with_timeout(path, timeout=20):
    r = subprocess.run(["cat", path], capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("damage", ["aux-garbage", "aux-removed", "map-garbage", "map-beyond-eof",
                                    "truncate", "truncate-extend", "fifo", "directory", "dirty"])
def test_damaged_backing_file_is_refetched(mount, damage):
    src, obj = _prepare_cached(mount)
    if damage == "aux-garbage":
        os.setxattr(obj, "user.cachefuse.aux", b"\x00garbage" * 8)
    elif damage == "aux-removed":
        os.removexattr(obj, "user.cachefuse.aux")
    elif damage == "map-garbage":
        os.setxattr(obj, "user.cachefuse.map", os.urandom(40))
    elif damage == "map-beyond-eof":
        # A well-formed map claiming granule 1000 of a 4-granule file: rewrite the
        # aux so that the object size shrinks below what the map claims.
        v = bytearray(os.getxattr(obj, "user.cachefuse.map"))
        v[0] ^= 0xFF  # and also garble the magic: must be refused either way
        os.setxattr(obj, "user.cachefuse.map", bytes(v))
    elif damage == "truncate":
        os.truncate(obj, 1000)
    elif damage == "truncate-extend":
        # The same length as before, but the claimed data is a hole now.
        n = os.path.getsize(obj)
        os.truncate(obj, 1000)
        os.truncate(obj, n)
    elif damage == "fifo":
        os.unlink(obj)
        os.mkfifo(obj)
    elif damage == "directory":
        os.unlink(obj)
        os.mkdir(obj)
    elif damage == "dirty":
        v = bytearray(os.getxattr(obj, "user.cachefuse.aux"))
        v[5] |= 1  # the DIRTY flag; the CRC no longer matches either
        os.setxattr(obj, "user.cachefuse.aux", bytes(v))
    mount.start()
    assert _read_with_timeout(mount.path("f")) == open(src, "rb").read()
    s = mount.stats()
    assert s["bytes.from_backend"] > 0
    assert s["bytes.from_cache"] == 0
    if damage != "directory":
        assert s["objects.discarded"] >= 1, s
    mount.stop()


def test_second_daemon_on_same_cache_dir_is_refused(mount, work):
    with open(os.path.join(mount.src, "f"), "wb") as f:
        f.write(b"x" * 5000)
    mount.start()
    pid = mount.pid()
    other = os.path.join(work, "mnt2")
    os.mkdir(other)
    r = subprocess.run([CACHEFUSE, mount.src, other, "-o", f"cache_dir={mount.cache}"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "LOCK" in r.stderr and str(pid) in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not mounted(other)
    assert open(mount.path("f"), "rb").read() == b"x" * 5000
