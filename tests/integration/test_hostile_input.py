"""Hostile input to the daemon (part of issue 19): control commands with
names no line protocol survives, stop signals in quick succession, and setups
that would cache the cache or mount a tree over itself."""
import os
import signal
import subprocess
import threading
import time

from conftest import CACHEFUSE, CTL, mounted, write_fast_random

MiB = 1 << 20


def cached(path):
    r = subprocess.run(["getfattr", "--only-values", "-n", "user.cachefuse.cached", path],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_forget_of_a_name_with_a_newline_drops_that_file_only(mount):
    names = ["victim", "victim\nX", "a b%20c"]
    for n in names:
        with open(os.path.join(mount.src, n), "wb") as f:
            f.write(os.urandom(300000))
    mount.start()
    for n in names:
        with open(mount.path(n), "rb") as f:
            f.read()
    mount.wait_cached(3 * 300000)
    assert all(cached(mount.path(n)) != "none" for n in names)
    mount.ctl("forget", mount.path("victim\nX"))
    assert cached(mount.path("victim\nX")) == "none"
    assert cached(mount.path("victim")) != "none"
    assert cached(mount.path("a b%20c")) != "none"
    mount.ctl("forget", mount.path("a b%20c"))
    assert cached(mount.path("a b%20c")) == "none"
    assert cached(mount.path("victim")) != "none"


def test_two_sigterms_in_a_row_end_the_daemon_cleanly(mount):
    write_fast_random(os.path.join(mount.src, "big"), 64 * MiB)
    for i in range(20):
        p = subprocess.Popen([CACHEFUSE, mount.src, mount.mnt, "-f", "-o", mount.options()],
                             stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not mounted(mount.mnt):
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.01)
        # A reader keeps the daemon busy while the signals come.
        reader = threading.Thread(target=lambda: subprocess.run(["cat", mount.path("big")],
                                                                stdout=subprocess.DEVNULL,
                                                                stderr=subprocess.DEVNULL))
        reader.start()
        time.sleep(0.02 * (i % 5))
        p.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        reader.join(timeout=30)
        assert rc == 0, f"round {i}: exit status {rc}"
        assert not mounted(mount.mnt)
    # The cache state was persisted: a remount knows what was read.
    mount.start()
    assert mount.status()["cache.objects"] >= 1


def test_setups_that_loop_are_refused_with_one_line(work):
    src, mnt, cache = (os.path.join(work, d) for d in ("src", "mnt", "cache"))
    cases = [
        ([src, mnt, "-o", f"cache_dir={src}/cache"], "inside SOURCE"),
        ([src, mnt, "-o", f"cache_dir={src}"], "inside SOURCE"),
        ([src, mnt, "-o", f"cache_dir={mnt}/c"], "inside the mountpoint"),
        ([src, src, "-o", f"cache_dir={cache}"], "the same directory"),
    ]
    for args, words in cases:
        r = subprocess.run([CACHEFUSE, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, r.stderr)
        assert not mounted(mnt) and not mounted(src)
    assert not os.path.exists(os.path.join(src, "cache"))
