"""Fixtures for integration tests: real cachefuse mounts through the kernel.

Every test gets a scratch directory on /var/tmp (ext4, so O_DIRECT works) with
src/, mnt/ and cache/; the Mount helper starts and stops the real daemon and
reads its counters with the real cachefusectl. Tests run as root.
"""
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CACHEFUSE_BIN", os.path.join(REPO, "build", "bin"))
CACHEFUSE = os.path.join(BIN, "cachefuse")
CTL = os.path.join(BIN, "cachefusectl")
SCRATCH = os.environ.get("CACHEFUSE_TEST_TMPDIR", "/var/tmp")


def pytest_assertrepr_compare(op, left, right):
    """Short reports for unequal bytes: pytest's own diff of two large byte
    strings takes minutes of CPU."""
    if op == "==" and isinstance(left, (bytes, bytearray)) and isinstance(right, (bytes, bytearray)):
        n = next((i for i, (a, b) in enumerate(zip(left, right)) if a != b), min(len(left), len(right)))
        return [f"bytes differ: {len(left)} vs {len(right)} bytes, first difference at offset {n}",
                f"left[{n}:{n + 16}] = {bytes(left[n:n + 16])!r}", f"right[{n}:{n + 16}] = {bytes(right[n:n + 16])!r}"]
    return None


def mounted(path):
    """True if path is a mountpoint in /proc/mounts."""
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 1 and parts[1].replace("\\040", " ") == path:
                return True
    return False


def daemon_pids(mountpoint):
    """Pids of cachefuse daemons whose command line names mountpoint."""
    out = subprocess.run(["pgrep", "-f", "cachefuse .*" + os.path.realpath(mountpoint)],
                         capture_output=True, text=True).stdout
    pids = []
    for p in out.split():
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().split()[2] != "Z":
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def write_random(path, size, seed=None):
    rng = random.Random(seed if seed is not None else path)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n


def write_fast_random(path, size):
    """Large random-content files without Python's per-byte cost (reads urandom)."""
    subprocess.run(["dd", "if=/dev/urandom", f"of={path}", "bs=1M", f"count={size >> 20}",
                    "status=none", "iflag=fullblock"], check=True)
    rest = size & ((1 << 20) - 1)
    if rest:
        with open(path, "ab") as f:
            f.write(os.urandom(rest))


class Mount:
    """One cachefuse mount of src on mnt with cache dir cache."""

    def __init__(self, src, mnt, cache):
        self.src, self.mnt, self.cache = src, mnt, cache
        self.extra = ""

    def options(self, extra=""):
        opts = f"cache_dir={self.cache}"
        for o in (self.extra, extra):
            if o:
                opts += "," + o
        return opts

    def start(self, extra="", check=True, timeout=30):
        r = subprocess.run([CACHEFUSE, self.src, self.mnt, "-o", self.options(extra)],
                           capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"mount failed: {r.stderr}"
            assert mounted(self.mnt)
        return r

    def stop(self, timeout=30):
        pids = daemon_pids(self.mnt)
        if mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        deadline = time.time() + timeout
        while any(os.path.exists(f"/proc/{p}") and not _zombie(p) for p in pids):
            assert time.time() < deadline, f"daemon {pids} did not exit"
            time.sleep(0.05)

    def kill9(self):
        for p in daemon_pids(self.mnt):
            os.kill(p, signal.SIGKILL)
        time.sleep(0.2)
        subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
        if mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)

    def ctl(self, *args, check=True):
        r = subprocess.run([CTL, *args], capture_output=True, text=True, timeout=30)
        if check:
            assert r.returncode == 0, f"cachefusectl {args}: {r.stderr}"
        return r

    def stats(self):
        return json.loads(self.ctl("stats", self.mnt, "--json").stdout)

    def status(self):
        return json.loads(self.ctl("status", self.mnt, "--json").stdout)

    def pid(self):
        return self.status()["pid"]

    def path(self, rel):
        return os.path.join(self.mnt, rel)

    def wait_cached(self, nbytes, timeout=20):
        """Waits until bytes.to_cache reaches nbytes (cache writes are asynchronous)."""
        deadline = time.time() + timeout
        while True:
            s = self.stats()
            if s["bytes.to_cache"] >= nbytes or time.time() > deadline:
                return s
            time.sleep(0.05)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except OSError:
        return True


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="cachefuse-it-", dir=SCRATCH)
    for sub in ("src", "mnt", "cache"):
        os.mkdir(os.path.join(d, sub))
    yield d
    for root, dirs, _ in os.walk(d):
        for name in dirs:
            p = os.path.join(root, name)
            if mounted(p):
                subprocess.run(["fusermount3", "-u", p], capture_output=True)
                if mounted(p):
                    subprocess.run(["umount", "-l", p], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def mount(work):
    m = Mount(os.path.join(work, "src"), os.path.join(work, "mnt"), os.path.join(work, "cache"))
    yield m
    m.stop()
