"""Issue 5: the read helper: single-flight misses, bounded random fetches, a failing
cache never becomes the user's error."""
import mmap
import os
import random
import subprocess

from conftest import drop_caches, sha256_file, write_fast_random

MiB = 1 << 20
GRANULE = 256 * 1024


def test_eight_readers_of_one_cold_file_fetch_it_once(mount):
    size = 256 * MiB
    write_fast_random(os.path.join(mount.src, "f"), size)
    want = sha256_file(os.path.join(mount.src, "f"))
    mount.start()
    drop_caches()
    procs = [subprocess.Popen(["sha256sum", mount.path("f")], stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        assert out.split()[0] == want
    s = mount.stats()
    assert s["bytes.from_backend"] <= 1.05 * size, s


def test_eight_direct_readers_share_fetches(mount):
    # O_DIRECT readers bypass the kernel page cache: dedup is the daemon's own.
    size = 64 * MiB
    write_fast_random(os.path.join(mount.src, "f"), size)
    mount.start()
    procs = [subprocess.Popen(["dd", f"if={mount.path('f')}", "of=/dev/null", "bs=1M", "iflag=direct",
                               "status=none"]) for _ in range(8)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    s = mount.stats()
    assert s["bytes.from_backend"] <= 1.05 * size, s


def test_random_4k_reads_fetch_at_most_a_granule_each(mount):
    size = 1 << 30
    src = os.path.join(mount.src, "f")
    write_fast_random(src, size)
    mount.start()
    rng = random.Random(7)
    buf = mmap.mmap(-1, 4096)
    fd = os.open(mount.path("f"), os.O_RDONLY | os.O_DIRECT)
    sfd = os.open(src, os.O_RDONLY)
    try:
        for _ in range(1000):
            off = rng.randrange(size // 4096) * 4096
            n = os.preadv(fd, [buf], off)
            assert n == 4096
            assert buf[:4096] == os.pread(sfd, 4096, off)
    finally:
        os.close(fd)
        os.close(sfd)
    s = mount.stats()
    assert s["bytes.from_backend"] <= 1000 * GRANULE, s


def test_failing_cache_reads_are_served_from_the_source(mount):
    size = 8 * MiB + 5
    src = os.path.join(mount.src, "f")
    write_fast_random(src, size)
    mount.start()
    assert sha256_file(mount.path("f")) == sha256_file(src)
    mount.wait_cached(size)
    mount.stop()
    # Now every read of the (full) cache fails on purpose.
    mount.start("debug_cache_fail_reads,cache_error_limit=4")
    drop_caches()
    assert sha256_file(mount.path("f")) == sha256_file(src)
    s = mount.stats()
    assert s["cache.errors"] >= 4, s
    assert s["cache.state"] == "dead", s
    assert s["bytes.from_backend"] >= size
    # The mount goes on working uncached.
    with open(os.path.join(mount.src, "g"), "wb") as f:
        f.write(b"still fine")
    assert open(mount.path("g"), "rb").read() == b"still fine"
