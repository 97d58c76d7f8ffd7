"""Issue 11: the seams for network sources, through real mounts.

- A file overwritten in place (or truncated) at the source while a reader
  streams it through the mount: the reader gets only blocks of the version it
  opened, then an error; never a block of the new version, never a silent
  short end of file. A new open reads the new version.
- The attribute and listing cache: a second `ls -lR` within the timeouts makes
  no source calls, counted by the daemon's own backend.calls.
"""
import os
import struct
import subprocess
import time

import pytest

from conftest import drop_caches

MiB = 1 << 20
BLOCK = 4096
SIZE = 512 * MiB
CHUNK = MiB


def tagged_chunk(version, off):
    """CHUNK bytes of 4 KiB blocks, each starting with (magic, version, offset)."""
    fill = bytes([version]) * (BLOCK - 16)
    return b"".join(b"CFV" + bytes([version]) + struct.pack("<Q", off + i) + b"\0" * 4 + fill
                    for i in range(0, CHUNK, BLOCK))


def write_version(path, version, size=SIZE, mode="wb"):
    with open(path, mode) as f:
        for off in range(0, size, CHUNK):
            f.seek(off)
            f.write(tagged_chunk(version, off))
        f.flush()
        os.fsync(f.fileno())


def check_blocks(data, off, version):
    """Offset of the first block not of `version` at its own offset, else None."""
    for i in range(0, len(data), BLOCK):
        magic, v, pos = data[i:i + 3], data[i + 3], struct.unpack_from("<Q", data, i + 4)[0]
        if magic != b"CFV" or v != version or pos != off + i:
            return off + i
    return None


def stream_until_change(path, src, change):
    """Reads path from 0; at 128 MiB calls change(src). Returns (bytes read, error)."""
    pos = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            if pos == 128 * MiB:
                change(src)
            try:
                data = f.read(CHUNK)
            except OSError as e:
                return pos, e
            if not data:
                return pos, None
            bad = check_blocks(data, pos, ord("A"))
            assert bad is None, f"block at {bad} is not version A at its offset (read at {pos})"
            pos += len(data)


def overwrite_with_b(src):
    write_version(src, ord("B"), mode="r+b")


def truncate_to_150m(src):
    os.truncate(src, 150 * MiB)


@pytest.mark.parametrize("rounds", [20])
def test_reader_never_mixes_versions(mount, rounds):
    mount.start()
    for r in range(rounds):
        truncating = r % 4 == 3
        name = f"tagged{r}"
        src = os.path.join(mount.src, name)
        write_version(src, ord("A"))
        cached_before = mount.stats()["bytes.to_cache"]
        # The second half in the cache, the first half not.
        with open(mount.path(name), "rb") as f:
            f.seek(SIZE // 2)
            while f.read(CHUNK):
                pass
        assert mount.wait_cached(cached_before + SIZE // 2)["bytes.to_cache"] >= cached_before + SIZE // 2
        drop_caches()
        pos, err = stream_until_change(mount.path(name), src, truncate_to_150m if truncating else overwrite_with_b)
        assert err is not None, f"round {r}: the reader reached a silent end of file at {pos}"
        assert pos >= 128 * MiB, f"round {r}: error before the change at {pos}: {err}"
        # A new open reads the new version (after the kernel's attr_timeout).
        time.sleep(1.2)
        want = 150 * MiB if truncating else SIZE
        assert os.stat(mount.path(name)).st_size == want
        got = 0
        with open(mount.path(name), "rb") as f:
            while True:
                data = f.read(CHUNK)
                if not data:
                    break
                bad = check_blocks(data, got, ord("A") if truncating else ord("B"))
                assert bad is None, f"round {r}: new open: wrong block at {bad}"
                got += len(data)
        assert got == want, f"round {r}: new open read {got} of {want} bytes"
        os.unlink(src)
    # (No check on the invalidations counter: a round's new file may reuse the
    # previous one's inode number and cookie, so how many there are varies.)


def make_tree(root, dirs=20, files_per_dir=100):
    for d in range(dirs):
        dp = os.path.join(root, f"d{d:02}")
        os.mkdir(dp)
        for i in range(files_per_dir):
            with open(os.path.join(dp, f"f{i:03}"), "wb") as f:
                f.write(b"x" * (i % 7))


def source_calls(mount):
    return mount.stats()["backend.calls"]


def test_second_ls_within_timeouts_makes_no_source_calls(mount):
    make_tree(mount.src)
    # A slow source: every lookup, listing, open and read costs 20 ms.
    mount.start("debug_backend_latency_ms=20,attr_timeout=600,entry_timeout=600")
    before = source_calls(mount)
    t0 = time.time()
    first = subprocess.run(["ls", "-lR", mount.mnt], capture_output=True, text=True, check=True).stdout
    t1 = time.time()
    after_first = source_calls(mount)
    second = subprocess.run(["ls", "-lR", mount.mnt], capture_output=True, text=True, check=True).stdout
    t2 = time.time()
    after_second = source_calls(mount)
    native = subprocess.run(["ls", "-lR", mount.src], capture_output=True, text=True, check=True).stdout
    assert first.count("\n-") == second.count("\n-") == native.count("\n-") == 2000
    # The first pass lists each directory once: the listing answers the
    # lookups, no stat per file.
    assert 0 < after_first - before < 100, (before, after_first)
    assert after_second == after_first, f"second pass made {after_second - after_first} source calls"
    s = mount.stats()
    assert s["backend.attr_cache.hits"] > 0, s
    print(f"ls -lR of 2000 files over a 20 ms source: {t1 - t0:.2f} s ({after_first - before} calls), "
          f"then {t2 - t1:.2f} s (0 calls)")
