"""Issue 4: async direct I/O to the cache through io_uring, and the sync fallback."""
import os
import subprocess
import time

import pytest

from conftest import CACHEFUSE, Mount, drop_caches, mounted

GRANULE = 256 * 1024
SIZES = [0, 1, 4095, 4096, 4097, GRANULE - 1, GRANULE + 1, 3 * GRANULE + 17]


def _fill(src):
    data = {}
    for size in SIZES:
        name = f"s{size}"
        data[name] = os.urandom(size)
        with open(os.path.join(src, name), "wb") as f:
            f.write(data[name])
    return data


def _check_all(m, data):
    for name, content in data.items():
        assert open(m.path(name), "rb").read() == content, name


@pytest.mark.parametrize("engine", ["uring", "sync"])
def test_odd_sizes_cold_and_warm(mount, engine):
    data = _fill(mount.src)
    mount.start(f"io_engine={engine}")
    assert mount.stats()["io.engine"] == engine
    _check_all(mount, data)
    mount.wait_cached(sum(len(c) for c in data.values()))
    mount.stop()
    mount.start(f"io_engine={engine}")
    drop_caches()
    _check_all(mount, data)
    s = mount.stats()
    assert s["bytes.from_backend"] == 0, s
    assert s["io.dio_misfit"] > 0  # the odd tails went through rounded-up I/O
    assert s["io.submitted"] == s["io.completed"]


def test_default_is_uring_with_o_direct_backing_files(mount):
    with open(os.path.join(mount.src, "f"), "wb") as f:
        f.write(os.urandom(4 * GRANULE))
    mount.start()
    assert mount.stats()["io.engine"] == "uring"
    pid = mount.pid()
    with open(mount.path("f"), "rb") as held:
        held.read()
        flags = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(os.path.join(mount.cache, "volumes")) and not os.path.isdir(target):
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    for line in info:
                        if line.startswith("flags:"):
                            flags.append(int(line.split()[1], 8))
        assert flags, "no backing file open in the daemon"
        assert all(f & os.O_DIRECT for f in flags), [oct(f) for f in flags]


def test_tmpfs_cache_runs_sync_and_says_why(work):
    tmpfs = os.path.join(work, "tmpfs")
    os.mkdir(tmpfs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", tmpfs], check=True)
    try:
        m = Mount(os.path.join(work, "src"), os.path.join(work, "mnt"), os.path.join(tmpfs, "cache"))
        data = _fill(m.src)
        # Foreground, to read the log line that names the engine and the reason.
        p = subprocess.Popen([CACHEFUSE, m.src, m.mnt, "-f", "-o", m.options()], stderr=subprocess.PIPE,
                             text=True)
        deadline = time.time() + 20
        while not mounted(m.mnt):
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)
        assert m.stats()["io.engine"] == "sync"
        assert "O_DIRECT" in m.status()["io.engine_reason"]
        _check_all(m, data)
        m.wait_cached(sum(len(c) for c in data.values()))
        drop_caches()
        _check_all(m, data)
        subprocess.run(["fusermount3", "-u", m.mnt], check=True)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0
        assert "io engine sync" in err and "O_DIRECT" in err, err
    finally:
        subprocess.run(["umount", "-l", tmpfs])
