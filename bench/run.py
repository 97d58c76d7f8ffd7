#!/usr/bin/python3
"""cachefuse benchmark runner (Python 3, standard library only).

Runs benchmark jobs side by side on the same data and writes docs/benchmarks.md
from docs/bench-results.json (results are merged per job, so re-running only
some jobs keeps the other jobs' sections).

Jobs:
  seq         fio 1 MiB sequential reads (psync, buffered) of one file, COLD /
              WARM-DISK / WARM-RAM, for raw ext4, mergerfs (FUSE floor),
              rclone mount --vfs-cache-mode full, and cachefuse.
  warmdisk    warm-disk read through the mount vs fio direct=1 on the cache
              file, for io_engine=uring and io_engine=sync (goal: >= 0.8 x).
  readahead   cold 256 MiB read with debug_backend_latency_ms=20, default
              read-ahead vs readahead=0 (goal: >= 5 x faster).
  rss         daemon peak RSS and CPU s/GiB while reading a 4 GiB file cold
              (goal: peak RSS < 150 MiB).
  concurrent  8 processes read one cold 256 MiB file at once: wall time and
              bytes fetched from the source / file size.

Everything it creates lives under --workdir (default /var/tmp/cachefuse-bench):
a per-invocation run-* directory that is removed at the end, even on Ctrl-C or
SIGTERM (mounts are unmounted, daemons stopped). Needs root (drop_caches).

Example:
  bench/run.py --jobs seq,warmdisk --size 2G --runs 3
  bench/run.py --quick                 # smoke test, small sizes, results kept in the workdir
  bench/run.py --render-only           # regenerate docs/benchmarks.md from the JSON
"""

import argparse
import datetime
import errno
import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_JOBS = ["seq", "warmdisk", "readahead", "rss", "concurrent"]
SEQ_SETUPS = ["raw", "mergerfs", "rclone", "cachefuse"]
SEQ_STATES = ["cold", "warm-disk", "warm-ram"]
REPORTED_KIB = "/sys/module/page_reporting/parameters/reported_kib"
MiB = 1 << 20
GiB = 1 << 30


class Interrupted(BaseException):
    pass


class StepFailed(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_size(text):
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        v = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 256M, 2G)")
    n = int(v * mult)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return n


def fmt_size(n):
    for unit, m in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= m and n % m == 0:
            return f"{n // m} {unit}"
    return f"{n:,} bytes"


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def read_reported_kib():
    try:
        with open(REPORTED_KIB) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def mountinfo():
    """[(mountpoint, 'major:minor', fstype)] from /proc/self/mountinfo."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 7 or "-" not in parts:
                    continue
                sep = parts.index("-")
                mp = parts[4].encode().decode("unicode_escape")
                out.append((mp, parts[2], parts[sep + 1] if sep + 1 < len(parts) else ""))
    except OSError:
        pass
    return out


def fs_type(path):
    """File system type of the mount holding path (longest mount-point prefix in mountinfo)."""
    best = ("", "?")
    for mp, _, fstype in mountinfo():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best[0]):
            best = (mp, fstype)
    return best[1]


def is_mounted(path):
    return any(mp == path for mp, _, _ in mountinfo())


def mounts_under(root):
    root = root.rstrip("/")
    return [m for m in mountinfo() if m[0] == root or m[0].startswith(root + "/")]


def proc_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def proc_cpu_seconds(pid):
    """utime + stime (all threads) of a process, in seconds; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime = field 14, stime = field 15
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_status_kib(pid, keys=("VmRSS", "VmHWM", "RssAnon", "RssFile")):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[k] = int(v.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def cmd_output(argv, timeout=20):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# --------------------------------------------------------------------------------------
# The bench environment: work dir, children, mounts, cleanup.
# --------------------------------------------------------------------------------------


class Mount:
    def __init__(self, kind, mnt, src, cache_dir=None, proc=None, pid=None, opts="", argv=None):
        self.kind = kind
        self.mnt = mnt
        self.src = src
        self.cache_dir = cache_dir
        self.proc = proc  # Popen for daemons we run in the foreground
        self.pid = pid
        self.opts = opts
        self.argv = argv or []


class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.rundir = None
        self.lock_fd = None
        self.children = set()  # live Popen objects (readers)
        self.mounts = []  # live Mount objects
        self.commands = None  # current job's {label: command line}
        self.measure_log = None  # current job's per-measurement page-reporting info
        self.bin_cachefuse = None
        self.bin_ctl = None
        self.data = {}  # size -> path of a generated data file
        self.src_dir = None
        self.notes = []

    # ---- setup ------------------------------------------------------------------------

    def setup(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.lock_fd = os.open(os.path.join(self.workdir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SystemExit(f"bench: another benchmark holds {self.workdir}/.lock; not starting")
        self.sweep_stale()
        fstype = fs_type(self.workdir)
        if fstype in ("tmpfs", "ramfs"):
            log(f"WARNING: {self.workdir} is on {fstype}: no O_DIRECT, page cache figures meaningless; use /var/tmp")
        self.rundir = os.path.join(self.workdir, f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        os.makedirs(self.rundir)
        self.src_dir = os.path.join(self.rundir, "src")
        os.makedirs(self.src_dir)
        # Snapshot the binaries: a rebuild by someone else mid-run must not switch them.
        bindir = os.path.join(self.rundir, "bin")
        os.makedirs(bindir)
        srcbin = os.path.abspath(self.args.bin_dir)
        for name in ("cachefuse", "cachefusectl"):
            p = os.path.join(srcbin, name)
            dst = os.path.join(bindir, name)
            for attempt in range(10):  # a build may be linking it right now: retry until the copy runs
                if os.access(p, os.X_OK):
                    shutil.copy2(p, dst)
                    r = subprocess.run([dst, "--help"], capture_output=True, timeout=20)
                    if r.returncode == 0:
                        break
                time.sleep(3)
            else:
                raise SystemExit(f"bench: {p} missing or not runnable; build first: "
                                 f"cmake -S {REPO} -B {REPO}/build -G Ninja && ninja -C {REPO}/build")
        self.bin_cachefuse = os.path.join(bindir, "cachefuse")
        self.bin_ctl = os.path.join(bindir, "cachefusectl")
        self.rclone_conf = os.path.join(self.rundir, "rclone.conf")
        open(self.rclone_conf, "w").close()

    def sweep_stale(self):
        """Leftovers of a run that was killed with SIGKILL: mounts and run-* dirs in our work dir."""
        for mp, dev, fstype in reversed(mounts_under(self.workdir)):
            log(f"stale mount from an earlier run: {mp} ({fstype}); unmounting lazily")
            self.force_unmount(mp, dev)
        for name in os.listdir(self.workdir):
            p = os.path.join(self.workdir, name)
            if name.startswith("run-") and os.path.isdir(p):
                log(f"removing stale {p}")
                self.safe_rmtree(p)

    def disk_check(self, need):
        st = os.statvfs(self.workdir)
        free = st.f_bavail * st.f_frsize
        if free < need * 1.1:
            raise SystemExit(f"bench: {self.workdir} has {free / GiB:.1f} GiB free, needs about {need / GiB:.1f} GiB")

    # ---- cleanup ----------------------------------------------------------------------

    def kill_children(self):
        for p in list(self.children):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"reader pid {p.pid} does not die (stuck in the kernel?)")
            self.children.discard(p)

    def force_unmount(self, mp, dev=None):
        r = subprocess.run(["fusermount3", "-uz", mp], capture_output=True, timeout=30)
        if r.returncode != 0 and is_mounted(mp):
            subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
        if is_mounted(mp) and dev:
            # A hung FUSE daemon: abort its connection (named by the mount's device minor).
            minor = dev.split(":")[1]
            try:
                with open(f"/sys/fs/fuse/connections/{minor}/abort", "w") as f:
                    f.write("1")
            except OSError:
                pass

    def unmount(self, m):
        """Unmounts one of our mounts and waits for its daemon to exit."""
        if m not in self.mounts:
            return
        dev = next((d for mp, d, _ in mountinfo() if mp == m.mnt), None)
        if dev is not None:
            ok = False
            for _ in range(20):
                try:
                    r = subprocess.run(["fusermount3", "-u", m.mnt], capture_output=True, text=True, timeout=20)
                    ok = r.returncode == 0 or not is_mounted(m.mnt)
                except subprocess.TimeoutExpired:
                    ok = False
                if ok:
                    break
                time.sleep(0.5)
            if not ok:
                log(f"fusermount3 -u {m.mnt} keeps failing; lazy unmount")
                self.force_unmount(m.mnt, dev)
        # wait for the daemon to exit on its own (cachefuse persists its maps first)
        deadline = time.monotonic() + 30
        while m.pid and proc_alive(m.pid) and time.monotonic() < deadline:
            if m.proc is not None and m.proc.poll() is not None:
                break
            time.sleep(0.1)
        if m.pid and proc_alive(m.pid) and (m.proc is not None or m.mnt in proc_cmdline(m.pid)):
            log(f"{m.kind} daemon pid {m.pid} still running 30 s after unmount; SIGTERM")
            self.notes.append(f"{m.kind} daemon pid {m.pid} did not exit within 30 s of unmount; sent SIGTERM")
            os.kill(m.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while proc_alive(m.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if proc_alive(m.pid):
                os.kill(m.pid, signal.SIGKILL)
        if m.proc is not None:
            try:
                m.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if m.proc.stdout:
                m.proc.stdout.close()
        self.mounts.remove(m)

    def safe_rmtree(self, path):
        """rmtree that refuses to descend into a mount (a FUSE mount would delete the source)."""
        path = os.path.abspath(path)
        if not path.startswith(self.workdir + "/"):
            raise RuntimeError(f"refusing to remove {path}: outside {self.workdir}")
        if mounts_under(path):
            log(f"not removing {path}: still has mounts {[m[0] for m in mounts_under(path)]}")
            return False

        def onerror(func, p, exc):
            log(f"cannot remove {p}: {exc[1]}")

        shutil.rmtree(path, onerror=onerror)
        return True

    def cleanup(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        try:
            self.kill_children()
            for m in reversed(list(self.mounts)):
                try:
                    self.unmount(m)
                except Exception as e:  # keep cleaning
                    log(f"unmount {m.mnt}: {e}")
                    if m in self.mounts:
                        self.mounts.remove(m)
            for mp, dev, _ in reversed(mounts_under(self.workdir)):
                log(f"leftover mount {mp}; lazy unmount")
                self.force_unmount(mp, dev)
            if self.rundir and os.path.isdir(self.rundir):
                if self.args.keep_rundir:
                    log(f"keeping {self.rundir} (--keep-rundir)")
                else:
                    self.safe_rmtree(self.rundir)
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None

    # ---- helpers ----------------------------------------------------------------------

    def show(self, argv):
        s = " ".join(shlex.quote(a) for a in argv)
        if self.rundir:
            s = s.replace(self.rundir, "$W")
        return s

    def record(self, label, argv):
        if self.commands is not None and label not in self.commands:
            self.commands[label] = argv if isinstance(argv, str) else self.show(argv)

    def mkdirs(self, *parts):
        p = os.path.join(self.rundir, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def reader_timeout(self, size):
        return self.args.step_timeout or (120 + size / (5e6))

    def run_reader(self, argv, timeout):
        """Runs a reader (fio/dd) in its own session; kills it on timeout. Returns (rc, out, err, secs)."""
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, stdin=subprocess.DEVNULL)
        self.children.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"TIMEOUT after {timeout:.0f} s: {self.show(argv)}; killing it")
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                for mp, dev, _ in mounts_under(self.rundir):
                    self.force_unmount(mp, dev)
            self.children.discard(p)
            raise StepFailed(f"timed out after {timeout:.0f} s (hang?): {self.show(argv)}")
        finally:
            self.children.discard(p)
        return p.returncode, out, err, time.monotonic() - t0

    def drop_caches(self):
        """sync, drop the page cache, then wait until the VM has handed the freed pages back."""
        self.record("drop the page cache (before every cold or warm-disk read)",
                    f"sync; echo 3 > /proc/sys/vm/drop_caches; sleep >= {self.args.settle:g} s and until "
                    f"reported_kib has been still for {self.args.settle_stable:g} s (at most {self.args.settle_max:g} s)")
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        t0 = time.monotonic()
        start = last = read_reported_kib()
        last_change = t0
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            v = read_reported_kib()
            if v != last:
                last, last_change = v, now
            waited = now - t0
            if v is None:
                if waited >= self.args.settle:
                    break
                continue
            if waited >= self.args.settle and now - last_change >= self.args.settle_stable:
                break
            if waited >= self.args.settle_max:
                log(f"page reporting still moving after {waited:.0f} s; measuring anyway")
                break
        moved = (last - start) // 1024 if start is not None and last is not None else None
        return {"settle_s": round(time.monotonic() - t0, 1), "reported_mib_during_settle": moved}

    def measured(self, fn):
        """Runs fn() and notes how much the page-reporting counter moved meanwhile."""
        before = read_reported_kib()
        res = fn()
        after = read_reported_kib()
        moved = (after - before) // 1024 if before is not None and after is not None else None
        res["reported_mib"] = moved
        res["flagged"] = moved is not None and moved >= self.args.report_warn_mib
        if res["flagged"]:
            log(f"  page reporting moved {moved} MiB during this measurement (flagged)")
        return res

    def fio_read(self, path, direct, label, size):
        argv = ["fio", "--name=seqread", f"--filename={path}", "--rw=read", "--bs=1M", "--ioengine=psync",
                f"--direct={1 if direct else 0}", "--invalidate=0", "--readonly", "--output-format=json"]
        self.record(label, argv)

        def go():
            rc, out, err, secs = self.run_reader(argv, self.reader_timeout(size))
            if rc != 0:
                raise StepFailed(f"fio failed (rc {rc}): {self.show(argv)}: {(err or out).strip()[-500:]}")
            try:
                j = json.loads(out[out.index("{"):])
                job = j["jobs"][0]
                rd = job["read"]
            except (ValueError, KeyError, IndexError) as e:
                raise StepFailed(f"cannot parse fio output ({e}): {out[-300:]}")
            if job.get("error"):
                raise StepFailed(f"fio error {job['error']}: {self.show(argv)}")
            nbytes = rd["io_bytes"]
            if nbytes != size:
                raise StepFailed(f"fio read {nbytes} bytes of {path}, expected {size}")
            return {"mbps": rd["bw_bytes"] / 1e6, "secs": rd["runtime"] / 1000.0, "bytes": nbytes, "wall_s": secs}

        return self.measured(go)

    def dd_read(self, path, label, size):
        argv = ["dd", f"if={path}", "of=/dev/null", "bs=1M"]
        self.record(label, argv)

        def go():
            rc, out, err, secs = self.run_reader(argv, self.reader_timeout(size))
            if rc != 0:
                raise StepFailed(f"dd failed (rc {rc}): {self.show(argv)}: {err.strip()[-500:]}")
            nbytes = parse_dd_bytes(err)
            if nbytes is not None and nbytes != size:
                raise StepFailed(f"dd read {nbytes} bytes of {path}, expected {size}")
            return {"secs": secs, "mbps": size / secs / 1e6, "bytes": nbytes}

        return self.measured(go)

    def make_data(self, size):
        """A file of `size` bytes of random content in the source dir (fio's refilled random buffers)."""
        if size in self.data:
            return self.data[size]
        name = f"data-{size}.bin"
        path = os.path.join(self.src_dir, name)
        self.disk_check(size)
        log(f"writing {fmt_size(size)} of random data to {path}")
        argv = ["fio", "--name=gen", f"--filename={path}", "--rw=write", "--bs=1M", f"--size={size}",
                "--refill_buffers", "--randrepeat=0", "--buffer_compress_percentage=0", "--end_fsync=1",
                "--output-format=terse"]
        rc, out, err, _ = self.run_reader(argv, 600)
        if rc != 0 or os.path.getsize(path) != size:
            raise StepFailed(f"cannot create {path}: {err.strip()[-300:]}")
        self.data[size] = path
        return path

    def verify(self, through_mount, source):
        """Compares a file read through a mount with the source file; returns 'ok' or a description."""
        if self.args.no_verify:
            return "skipped"
        try:
            with open(through_mount, "rb") as a, open(source, "rb") as b:
                off = 0
                while True:
                    x = a.read(MiB)
                    y = b.read(MiB)
                    if x != y:
                        n = min(len(x), len(y))
                        i = next((k for k in range(n) if x[k] != y[k]), n)
                        return f"MISMATCH at byte {off + i} (read {len(x)} vs {len(y)} bytes in that chunk)"
                    if not x:
                        return "ok"
                    off += len(x)
        except OSError as e:
            return f"ERROR {e}"

    # ---- mounts -----------------------------------------------------------------------

    def mount_cachefuse(self, src, mnt, cache_dir, extra=""):
        os.makedirs(mnt, exist_ok=True)
        os.makedirs(cache_dir, exist_ok=True)
        opts = f"cache_dir={cache_dir}" + (f",{extra}" if extra else "")
        argv = [self.bin_cachefuse, src, mnt, "-o", opts]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            if is_mounted(mnt):
                self.force_unmount(mnt)
            raise StepFailed(f"cachefuse mount failed (rc {r.returncode}): {self.show(argv)}: {r.stderr.strip()}")
        m = Mount("cachefuse", mnt, src, cache_dir, argv=argv, opts=extra)
        self.mounts.append(m)
        st = self.ctl("status", mnt)
        m.pid = st.get("pid")
        if not m.pid:
            out = cmd_output(["pgrep", "-f", mnt])
            m.pid = int(out.split()[0]) if out else None
        m.status = st
        return m

    def mount_foreground(self, kind, argv, mnt, src, cache_dir=None):
        os.makedirs(mnt, exist_ok=True)
        logf = open(os.path.join(self.rundir, f"{kind}-{os.path.basename(os.path.dirname(mnt))}.log"), "a")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        logf.close()
        m = Mount(kind, mnt, src, cache_dir, proc=p, pid=p.pid, argv=argv)
        self.mounts.append(m)
        deadline = time.monotonic() + 30
        while not is_mounted(mnt):
            if p.poll() is not None:
                raise StepFailed(f"{kind} exited with rc {p.returncode} before mounting: {self.show(argv)}")
            if time.monotonic() > deadline:
                raise StepFailed(f"{kind} did not mount within 30 s: {self.show(argv)}")
            time.sleep(0.05)
        os.stat(os.path.join(mnt, "."))  # answers?
        return m

    def mount_rclone(self, src, mnt, cache_dir):
        argv = ["rclone", "mount", src, mnt, "--vfs-cache-mode", "full", "--cache-dir", cache_dir,
                "--config", self.rclone_conf]
        return self.mount_foreground("rclone", argv, mnt, src, cache_dir)

    def mount_mergerfs(self, src, mnt):
        argv = ["mergerfs", "-f", "-o", "cache.files=off", src, mnt]
        return self.mount_foreground("mergerfs", argv, mnt, src)

    def wait_cache_written(self, m, size, timeout=60):
        """After a cold read: waits until cachefuse has written what it fetched (write-behind) to its cache.
        Returns seconds waited (None if it did not finish in time)."""
        t0 = time.monotonic()
        while True:
            s = self.ctl("stats", m.mnt)
            done = s.get("io.submitted") == s.get("io.completed") and (s.get("bytes.to_cache") or 0) >= size
            if done:
                return round(time.monotonic() - t0, 2)
            if time.monotonic() - t0 > timeout:
                self.notes.append(f"cachefuse had not finished writing its cache {timeout} s after a cold read: "
                                  f"io.submitted {s.get('io.submitted')}, io.completed {s.get('io.completed')}, "
                                  f"bytes.to_cache {s.get('bytes.to_cache')} of {size}")
                return None
            time.sleep(0.1)

    def ctl(self, what, mnt):
        argv = [self.bin_ctl, what, mnt, "--json"]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"cachefusectl {what} timed out: {self.show(argv)}")
        if r.returncode != 0:
            raise StepFailed(f"cachefusectl {what} failed: {r.stderr.strip()}")
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise StepFailed(f"cachefusectl {what}: not JSON: {r.stdout[:200]}")


def parse_dd_bytes(err):
    for line in err.splitlines():
        if "bytes" in line and "copied" in line:
            try:
                return int(line.split()[0])
            except ValueError:
                return None
    return None


def stats_delta(before, after):
    out = {}
    for k, v in after.items():
        if isinstance(v, (int, float)) and isinstance(before.get(k), (int, float)):
            out[k] = v - before[k]
    return out


# --------------------------------------------------------------------------------------
# Jobs. Each returns a dict stored under results["jobs"][name].
# --------------------------------------------------------------------------------------


def job_seq(b, a):
    size = a.size
    src = b.make_data(size)
    name = os.path.basename(src)
    runs = []
    verify = None
    for r in range(a.runs):
        order = SEQ_SETUPS[r % len(SEQ_SETUPS):] + SEQ_SETUPS[:r % len(SEQ_SETUPS)]
        run = {"order": order}
        for setup in order:
            log(f"seq run {r + 1}/{a.runs}: {setup}")
            base = b.mkdirs("seq", f"r{r}", setup)
            m = None
            if setup == "raw":
                path = src
            elif setup == "mergerfs":
                m = b.mount_mergerfs(b.src_dir, os.path.join(base, "mnt"))
                b.record("mount mergerfs", m.argv)
            elif setup == "rclone":
                m = b.mount_rclone(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"))
                b.record("mount rclone", m.argv)
            else:
                m = b.mount_cachefuse(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"))
                b.record("mount cachefuse", m.argv)
            if m is not None:
                path = os.path.join(m.mnt, name)
            res = {}
            for state in SEQ_STATES:
                settle = b.drop_caches() if state in ("cold", "warm-disk") else None
                cpu0 = proc_cpu_seconds(m.pid) if m else None
                st0 = b.ctl("stats", m.mnt) if setup == "cachefuse" else None
                x = b.fio_read(path, False, f"read ({setup}; the same command in every state)", size)
                cpu1 = proc_cpu_seconds(m.pid) if m else None
                if cpu0 is not None and cpu1 is not None:
                    x["daemon_cpu_s"] = round(cpu1 - cpu0, 3)
                if st0 is not None:
                    d = stats_delta(st0, b.ctl("stats", m.mnt))
                    x["backend_bytes"] = d.get("bytes.from_backend")
                    x["cache_bytes"] = d.get("bytes.from_cache")
                if settle:
                    x.update(settle)
                if setup == "cachefuse" and state == "cold":
                    x["write_behind_s"] = b.wait_cache_written(m, size)
                if setup == "cachefuse" and state != "cold" and x.get("backend_bytes"):
                    b.notes.append(f"run {r + 1}: the cachefuse {state} read fetched {x['backend_bytes']:,} bytes "
                                   f"from the source although the cache was filled")
                res[state] = x
                log(f"  {setup} {state}: {x['mbps']:.0f} MB/s"
                    + (f", backend {x['backend_bytes'] / MiB:.0f} MiB" if x.get("backend_bytes") is not None else ""))
            if m is not None:
                res["peak_rss_mib"] = round(proc_status_kib(m.pid).get("VmHWM", 0) / 1024, 1)
                if setup == "cachefuse":
                    res["io_engine"] = b.ctl("stats", m.mnt).get("io.engine")
                    if r == 0:
                        verify = b.verify(path, src)
                        log(f"  content check through cachefuse: {verify}")
                b.unmount(m)
            b.safe_rmtree(base)
            run[setup] = res
        runs.append(run)
    return {"params": {"size": size, "runs": a.runs}, "runs": runs, "verify": verify}


def job_warmdisk(b, a):
    size = a.size
    src = b.make_data(size)
    name = os.path.basename(src)
    engines = ["uring", "sync"]
    mounts = {}
    info = {}
    for e in engines:
        base = b.mkdirs("warmdisk", e)
        m = b.mount_cachefuse(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"), f"io_engine={e}")
        b.record(f"mount ({e})", m.argv)
        mounts[e] = m
        log(f"warmdisk: filling the cache of the {e} mount")
        fill = b.dd_read(os.path.join(m.mnt, name), "fill the cache (untimed)", size)
        fill["write_behind_s"] = b.wait_cache_written(m, size)
        vols = os.path.join(m.cache_dir, "volumes")
        biggest = None
        for root, _, files in os.walk(vols):
            for f in files:
                p = os.path.join(root, f)
                st = os.lstat(p)
                if os.path.isfile(p) and not os.path.islink(p) and (biggest is None or st.st_size > biggest[1]):
                    biggest = (p, st.st_size)
        if biggest is None:
            raise StepFailed(f"no cache file under {vols} after reading {fmt_size(size)} through the mount")
        status = b.ctl("status", m.mnt)
        info[e] = {"backing_file": b.show([biggest[0]]), "backing_size": biggest[1],
                   "io_engine": status.get("io.engine"), "io_engine_reason": status.get("io.engine_reason"),
                   "fill_mbps": fill["mbps"], "write_behind_s": fill["write_behind_s"], "verify": b.verify(os.path.join(m.mnt, name), src)}
        if biggest[1] < size:
            b.notes.append(f"warmdisk {e}: cache file {biggest[1]} bytes < file size {size}")
        m.backing = biggest[0]
        log(f"  backing file {biggest[0]} ({biggest[1]} bytes), engine {status.get('io.engine')}, "
            f"content {info[e]['verify']}")
    steps = ["l_disk", "mount_buffered", "mount_direct"]
    runs = []
    for r in range(a.runs):
        run = {}
        for e in engines:
            m = mounts[e]
            res = {}
            order = steps[r % 3:] + steps[:r % 3]
            for step in order:
                settle = b.drop_caches()
                st0 = b.ctl("stats", m.mnt)
                cpu0 = proc_cpu_seconds(m.pid)
                if step == "l_disk":
                    x = b.fio_read(m.backing, True, "L_disk: fio direct=1 on the cache file", os.path.getsize(m.backing))
                elif step == "mount_buffered":
                    x = b.fio_read(os.path.join(m.mnt, name), False, "through the mount, buffered", size)
                else:
                    x = b.fio_read(os.path.join(m.mnt, name), True, "through the mount, direct=1", size)
                cpu1 = proc_cpu_seconds(m.pid)
                d = stats_delta(st0, b.ctl("stats", m.mnt))
                x["backend_bytes"] = d.get("bytes.from_backend")
                x["cache_bytes"] = d.get("bytes.from_cache")
                if cpu0 is not None and cpu1 is not None:
                    x["daemon_cpu_s"] = round(cpu1 - cpu0, 3)
                x.update(settle)
                if step != "l_disk" and x.get("backend_bytes"):
                    b.notes.append(f"run {r + 1} {e} {step}: the warm read fetched {x['backend_bytes']:,} bytes "
                                   f"from the source although the cache was filled")
                res[step] = x
                log(f"warmdisk run {r + 1}/{a.runs} {e} {step}: {x['mbps']:.0f} MB/s")
            for step in ("mount_buffered", "mount_direct"):
                res[f"ratio_{step}"] = res[step]["mbps"] / res["l_disk"]["mbps"]
            run[e] = res
        runs.append(run)
    for e in engines:
        b.unmount(mounts[e])
    return {"params": {"size": size, "runs": a.runs}, "engines": info, "runs": runs}


def job_readahead(b, a):
    size = a.ra_size
    src = b.make_data(size)
    name = os.path.basename(src)
    lat = a.ra_latency
    variants = {"readahead": f"debug_backend_latency_ms={lat}",
                "no_readahead": f"debug_backend_latency_ms={lat},readahead=0"}
    runs = []
    verify = {}
    for r in range(a.runs):
        base = b.mkdirs("readahead", f"r{r}")
        mounts = {}
        for v, opts in variants.items():
            mounts[v] = b.mount_cachefuse(b.src_dir, os.path.join(base, v, "mnt"), os.path.join(base, v, "cache"), opts)
            b.record(f"mount ({v})", mounts[v].argv)
        order = list(variants) if r % 2 == 0 else list(reversed(list(variants)))
        run = {"order": order}
        for v in order:
            m = mounts[v]
            settle = b.drop_caches()
            st0 = b.ctl("stats", m.mnt)
            x = b.dd_read(os.path.join(m.mnt, name), f"cold read ({v})", size)
            d = stats_delta(st0, b.ctl("stats", m.mnt))
            x["backend_bytes"] = d.get("bytes.from_backend")
            x["readahead_bytes"] = d.get("readahead.bytes")
            x["read_requests"] = d.get("read.requests")
            x["backend_inflight_max"] = b.ctl("stats", m.mnt).get("backend.inflight_max")
            x.update(settle)
            run[v] = x
            log(f"readahead run {r + 1}/{a.runs} {v}: {x['secs']:.2f} s, {x['mbps']:.1f} MB/s")
            if r == 0:
                verify[v] = b.verify(os.path.join(m.mnt, name), src)
        run["ratio"] = run["no_readahead"]["secs"] / run["readahead"]["secs"]
        runs.append(run)
        for v in variants:
            b.unmount(mounts[v])
        b.safe_rmtree(base)
    return {"params": {"size": size, "runs": a.runs, "latency_ms": lat}, "runs": runs, "verify": verify}


def job_rss(b, a):
    size = a.rss_size
    src = b.make_data(size)
    name = os.path.basename(src)
    runs = []
    verify = None
    for r in range(a.runs):
        base = b.mkdirs("rss", f"r{r}")
        m = b.mount_cachefuse(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"))
        b.record("mount", m.argv)
        start = proc_status_kib(m.pid)
        settle = b.drop_caches()
        samples = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                s = proc_status_kib(m.pid)
                if s:
                    samples.append(s)
                stop.wait(0.1)

        cpu0 = proc_cpu_seconds(m.pid)
        st0 = b.ctl("stats", m.mnt)
        t = threading.Thread(target=sampler, daemon=True)
        t.start()
        try:
            x = b.dd_read(os.path.join(m.mnt, name), "cold read", size)
        finally:
            stop.set()
            t.join()
        cpu1 = proc_cpu_seconds(m.pid)
        end = proc_status_kib(m.pid)
        d = stats_delta(st0, b.ctl("stats", m.mnt))
        x.update(settle)
        x["rss_start_mib"] = round(start.get("VmRSS", 0) / 1024, 1)
        x["peak_rss_mib"] = round(max([s.get("VmRSS", 0) for s in samples] + [0]) / 1024, 1)
        x["peak_anon_mib"] = round(max([s.get("RssAnon", 0) for s in samples] + [0]) / 1024, 1)
        x["hwm_mib"] = round(end.get("VmHWM", 0) / 1024, 1)
        x["rss_end_mib"] = round(end.get("VmRSS", 0) / 1024, 1)
        x["samples"] = len(samples)
        x["cpu_s"] = round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None
        x["cpu_s_per_gib"] = x["cpu_s"] / (size / GiB) if x["cpu_s"] is not None else None
        x["backend_bytes"] = d.get("bytes.from_backend")
        runs.append(x)
        log(f"rss run {r + 1}/{a.runs}: peak VmRSS {x['peak_rss_mib']} MiB, VmHWM {x['hwm_mib']} MiB, "
            f"{x['cpu_s_per_gib']:.2f} CPU s/GiB, {x['mbps']:.0f} MB/s")
        if r == 0:
            verify = b.verify(os.path.join(m.mnt, name), src)
            log(f"  content check: {verify}")
        b.unmount(m)
        b.safe_rmtree(base)
    return {"params": {"size": size, "runs": a.runs}, "runs": runs, "verify": verify}


def job_concurrent(b, a):
    size = a.conc_size
    n = a.conc_procs
    src = b.make_data(size)
    name = os.path.basename(src)
    runs = []
    verify = None
    for r in range(a.runs):
        run = {}
        for label, procs in (("single", 1), ("parallel", n)):
            base = b.mkdirs("concurrent", f"r{r}", label)
            m = b.mount_cachefuse(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"))
            b.record("mount", m.argv)
            path = os.path.join(m.mnt, name)
            argv = ["dd", f"if={path}", "of=/dev/null", "bs=1M"]
            b.record(f"{procs} reader(s) at once" if procs > 1 else "1 reader (baseline)",
                     (f"{procs} x " if procs > 1 else "") + b.show(argv))
            settle = b.drop_caches()
            st0 = b.ctl("stats", m.mnt)
            cpu0 = proc_cpu_seconds(m.pid)
            rep0 = read_reported_kib()
            t0 = time.monotonic()
            ps = []
            for _ in range(procs):
                p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, stdin=subprocess.DEVNULL)
                b.children.add(p)
                ps.append(p)
            each = {}
            failures = []
            deadline = t0 + b.reader_timeout(size * procs)
            while len(each) < len(ps):  # poll so each reader's own finish time is known
                for p in ps:
                    if p not in each and p.poll() is not None:
                        each[p] = time.monotonic() - t0
                if time.monotonic() > deadline:
                    b.kill_children()
                    raise StepFailed(f"{procs} concurrent readers did not finish in time (hang?)")
                time.sleep(0.002)
            wall = max(each.values())
            for p in ps:
                err = p.stderr.read()
                p.stderr.close()
                b.children.discard(p)
                got = parse_dd_bytes(err)
                if p.returncode != 0 or (got is not None and got != size):
                    failures.append(f"rc {p.returncode}, {got} bytes: {err.strip()[-200:]}")
            each = list(each.values())
            rep1 = read_reported_kib()
            cpu1 = proc_cpu_seconds(m.pid)
            d = stats_delta(st0, b.ctl("stats", m.mnt))
            x = {"procs": procs, "wall_s": wall, "reader_max_s": max(each), "reader_min_s": min(each),
                 "agg_mbps": procs * size / wall / 1e6, "backend_bytes": d.get("bytes.from_backend"),
                 "backend_ratio": (d.get("bytes.from_backend") or 0) / size, "read_requests": d.get("read.requests"),
                 "cpu_s": round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None,
                 "failures": failures}
            x["reported_mib"] = (rep1 - rep0) // 1024 if rep0 is not None and rep1 is not None else None
            x["flagged"] = x["reported_mib"] is not None and x["reported_mib"] >= a.report_warn_mib
            x.update(settle)
            if failures:
                b.notes.append(f"concurrent run {r + 1} {label}: reader failures: {failures}")
            run[label] = x
            log(f"concurrent run {r + 1}/{a.runs} {label} ({procs}): wall {wall:.2f} s, "
                f"backend/size {x['backend_ratio']:.2f}")
            if r == 0 and procs > 1:
                verify = b.verify(path, src)
                log(f"  content check: {verify}")
            b.unmount(m)
            b.safe_rmtree(base)
        runs.append(run)
    return {"params": {"size": size, "runs": a.runs, "procs": n}, "runs": runs, "verify": verify}


JOB_FUNCS = {"seq": job_seq, "warmdisk": job_warmdisk, "readahead": job_readahead, "rss": job_rss,
             "concurrent": job_concurrent}


# --------------------------------------------------------------------------------------
# Machine facts and rendering.
# --------------------------------------------------------------------------------------


def machine_facts(b):
    facts = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "host_mem_gib": None,
        "cpu": None,
    }
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    facts["host_mem_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts["fio"] = cmd_output(["fio", "--version"])
    facts["rclone"] = (cmd_output(["rclone", "version"]).splitlines() or [""])[0]
    facts["mergerfs"] = (cmd_output(["mergerfs", "--version"]).splitlines() or [""])[0]
    facts["cachefuse"] = cmd_output([b.bin_cachefuse, "--version"]) if b.bin_cachefuse else ""
    rev = cmd_output(["git", "--no-optional-locks", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = cmd_output(["git", "--no-optional-locks", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    facts["commit"] = (rev + (" + uncommitted changes" if dirty else "")) if rev else "unknown"
    if b.bin_cachefuse:
        h = hashlib.sha256()
        with open(b.bin_cachefuse, "rb") as f:
            for chunk in iter(lambda: f.read(MiB), b""):
                h.update(chunk)
        facts["binary_sha256"] = h.hexdigest()[:16]
        facts["binary_mtime"] = datetime.datetime.fromtimestamp(
            os.stat(os.path.join(os.path.abspath(b.args.bin_dir), "cachefuse")).st_mtime,
            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts["workdir"] = b.workdir
    facts["workdir_fs"] = fs_type(b.workdir)
    try:
        with open("/proc/loadavg") as f:
            facts["loadavg_start"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    return facts


def clean_median(values_and_flags):
    """Median of the unflagged values if any, else of all; returns (median, used, total)."""
    clean = [v for v, fl in values_and_flags if v is not None and not fl]
    allv = [v for v, _ in values_and_flags if v is not None]
    use = clean if clean else allv
    return (statistics.median(use) if use else None), len(use), len(allv)


def f0(v, unit=""):
    return "–" if v is None else f"{v:,.0f}{unit}"


def f1(v, unit=""):
    return "–" if v is None else f"{v:,.1f}{unit}"


def f2(v, unit=""):
    return "–" if v is None else f"{v:.2f}{unit}"


def pf(ok):
    return "**PASS**" if ok else "**FAIL**"


def md_commands(res):
    lines = ["Commands (`$W` is the run's temporary directory under the work dir, removed afterwards):", "", "```"]
    for label, cmd in res.get("commands", {}).items():
        lines.append(f"# {label}")
        lines.append(cmd)
    lines += ["```", ""]
    return lines


def md_meta(res):
    m = res.get("meta", {})
    rep = res.get("page_reporting", {})
    lines = [
        (f"Started {res['started']}, took {res.get('duration_s', 0):.0f} s" if res.get("started")
         else f"Finished {m.get('date', '?')}") +
        f", by `{res.get('invocation', '?')}`; {m.get('nproc')} CPUs ({m.get('cpu')}), "
        f"{m.get('host_mem_gib')} GiB RAM, kernel {m.get('kernel')}, load average at start {m.get('loadavg_start')}; "
        f"cachefuse {m.get('commit')} (binary sha256 {m.get('binary_sha256')}, built {m.get('binary_mtime')}); "
        f"{m.get('fio')}, {m.get('rclone')}, {m.get('mergerfs')}; data on {m.get('workdir_fs')} ({m.get('workdir')}).",
        "",
    ]
    if rep.get("start_kib") is not None:
        moved = (rep["end_kib"] - rep["start_kib"]) // 1024
        lines.append(
            f"Page reporting (`reported_kib`): {rep['start_kib']} before, {rep['end_kib']} after the job "
            f"({moved:,} MiB handed back, mostly while settling after drop_caches). "
            f"Measurements during which it moved ≥ {res.get('report_warn_mib')} MiB: {rep.get('flagged', 0)} "
            f"of {rep.get('measurements', 0)}" + (" (left out of the medians where a clean run remained)."
                                                 if rep.get("flagged") else ".")
        )
        if rep.get("flagged"):
            lines.append("")
            lines.append(f"> **Warning:** page reporting moved a lot during {rep['flagged']} measurement(s) "
                         f"(largest {rep.get('max_mib')} MiB); those figures are likely low.")
        lines.append("")
    for n in res.get("notes", []):
        lines.append(f"> Note: {n}")
        lines.append("")
    if res.get("error"):
        lines.append(f"> **The job failed:** {res['error']}")
        lines.append("")
    return lines


def render_seq(res):
    p = res["params"]
    runs = res["runs"]
    L = [f"Sequential 1 MiB reads of one {fmt_size(p['size'])} file of random content with "
         f"`fio rw=read bs=1M ioengine=psync` (buffered, `invalidate=0`), {len(runs)} run(s), medians in MB/s "
         f"(10^6 B/s). COLD: fresh mount with an empty cache, page cache dropped; WARM-DISK: the same mount after "
         f"the cold read, page cache dropped; WARM-RAM: read again right away (page cache hot). Setups run in a "
         f"rotating order inside each run, each on the same source file.", ""]
    if not runs:
        return L
    med = {}
    for s in SEQ_SETUPS:
        for st in SEQ_STATES:
            vals = [(run[s][st]["mbps"], run[s][st].get("flagged")) for run in runs if s in run and st in run[s]]
            med[(s, st)] = clean_median(vals)[0]
    names = {"raw": "raw ext4 (limit)", "mergerfs": "mergerfs one branch, cache.files=off (FUSE floor)",
             "rclone": "rclone local remote, --vfs-cache-mode full", "cachefuse": "cachefuse (defaults)"}
    L.append("| setup | cold | × raw | warm-disk | × raw | warm-RAM | × raw | backend bytes cold / warm | "
             "daemon CPU s/GiB cold / warm-disk / warm-RAM | daemon peak RSS |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    gib = p["size"] / GiB
    for s in SEQ_SETUPS:
        cells = [names[s]]
        for st in SEQ_STATES:
            v = med[(s, st)]
            raw = med[("raw", st)]
            cells.append(f0(v))
            cells.append("1.00" if s == "raw" else (f2(v / raw) if v and raw else "–"))
        if s == "cachefuse":
            cold_b = median([run[s]["cold"].get("backend_bytes") for run in runs if s in run])
            warm_b = median([(run[s]["warm-disk"].get("backend_bytes") or 0) + (run[s]["warm-ram"].get("backend_bytes") or 0)
                             for run in runs if s in run])
            cells.append(f"{cold_b / p['size']:.3f} × size / {warm_b:,.0f} B" if cold_b is not None else "–")
        else:
            cells.append("–")
        if s == "raw":
            cells += ["–", "–"]
        else:
            cpu = [median([run[s][st].get("daemon_cpu_s") for run in runs if s in run]) for st in SEQ_STATES]
            cells.append(" / ".join(f2(c / gib) if c is not None else "–" for c in cpu))
            cells.append(f1(median([run[s].get("peak_rss_mib") for run in runs if s in run]), " MiB"))
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    # per-run figures
    L.append("<details><summary>Per-run MB/s (f = page reporting moved a lot during the read)</summary>")
    L.append("")
    L.append("| run | setup | cold | warm-disk | warm-RAM |")
    L.append("|---|---|---|---|---|")
    for i, run in enumerate(runs):
        for s in run.get("order", SEQ_SETUPS):
            if s in run:
                L.append(f"| {i + 1} | {s} | " + " | ".join(
                    f0(run[s][st]["mbps"]) + (" f" if run[s][st].get("flagged") else "") for st in SEQ_STATES) + " |")
    L += ["", "</details>", ""]
    # goals from BENCH.md
    cf = {st: med[("cachefuse", st)] for st in SEQ_STATES}
    rc = {st: med[("rclone", st)] for st in SEQ_STATES}
    raw = {st: med[("raw", st)] for st in SEQ_STATES}
    cold_b = median([run["cachefuse"]["cold"].get("backend_bytes") for run in runs if "cachefuse" in run])
    goals = []
    if cf["cold"] and raw["cold"]:
        goals.append(("COLD ≥ 0.9 × L_backend (raw cold read of the source)", cf["cold"] / raw["cold"], 0.9))
    if cf["warm-ram"] and raw["warm-ram"]:
        goals.append(("WARM-RAM ≥ 0.8 × L_ram (raw warm-RAM read)", cf["warm-ram"] / raw["warm-ram"], 0.8))
    if cold_b is not None:
        goals.append(("backend bytes of a cold sequential read ≤ 1.05 × file size", cold_b / p["size"], None))
    L.append("Goals from BENCH.md (informative for this job):")
    L.append("")
    L.append("| goal | measured | result |")
    L.append("|---|---|---|")
    for text, v, need in goals:
        if need is None:
            L.append(f"| {text} | {v:.3f} × | {pf(v <= 1.05)} |")
        else:
            L.append(f"| {text} | {v:.2f} × | {pf(v >= need)} |")
    for st in SEQ_STATES:
        if cf[st] and rc[st]:
            L.append(f"| ahead of rclone, {st} | {cf[st] / rc[st]:.2f} × rclone | {pf(cf[st] > rc[st])} |")
    L.append("")
    if res.get("verify"):
        wb = median([run["cachefuse"]["cold"].get("write_behind_s") for run in runs if "cachefuse" in run])
        L.append(f"Content check (file read through cachefuse compared with the source): {res['verify']}. "
                 f"cachefuse io engine: {runs[0].get('cachefuse', {}).get('io_engine')}; after the cold read its "
                 f"cache writes (write-behind) finished {f2(wb)} s later (median), before the page cache was dropped.")
        L.append("")
    return L


def render_warmdisk(res):
    p = res["params"]
    runs = res["runs"]
    L = [f"Goal (issue acceptance): warm-disk sequential read through the mount (1 MiB reads, page cache dropped) "
         f"reaches at least 0.8 × fio's `direct=1` sequential read of the cache dir, measured in the same run. "
         f"One {fmt_size(p['size'])} file; each engine has its own mount and cache dir, filled by one untimed read "
         f"through the mount; then in each of {len(runs)} run(s), in rotating order, with the page cache dropped "
         f"before each step: L_disk = `fio rw=read bs=1M ioengine=psync direct=1` on the cache's backing file "
         f"(the largest regular file under CACHE_DIR/volumes/), the same fio job buffered through the mount, and "
         f"with `direct=1` through the mount. Ratios are per run (same run), then the median.", ""]
    L.append("| io_engine | L_disk MB/s | mount buffered MB/s | ratio | mount direct=1 MB/s | ratio | "
             "backend bytes (warm) | daemon CPU s/GiB buffered / direct | goal ≥ 0.8 (buffered) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    gib = p["size"] / GiB
    for e in ("uring", "sync"):
        rr = [run[e] for run in runs if e in run]
        if not rr:
            continue
        ld = clean_median([(x["l_disk"]["mbps"], x["l_disk"].get("flagged")) for x in rr])[0]
        mb = clean_median([(x["mount_buffered"]["mbps"], x["mount_buffered"].get("flagged")) for x in rr])[0]
        md = clean_median([(x["mount_direct"]["mbps"], x["mount_direct"].get("flagged")) for x in rr])[0]
        flag = lambda x, s: x[s].get("flagged") or x["l_disk"].get("flagged")
        rb = clean_median([(x["ratio_mount_buffered"], flag(x, "mount_buffered")) for x in rr])[0]
        rd = clean_median([(x["ratio_mount_direct"], flag(x, "mount_direct")) for x in rr])[0]
        bb = sum((x["mount_buffered"].get("backend_bytes") or 0) + (x["mount_direct"].get("backend_bytes") or 0)
                 for x in rr)
        cpub = median([x["mount_buffered"].get("daemon_cpu_s") for x in rr])
        cpud = median([x["mount_direct"].get("daemon_cpu_s") for x in rr])
        eng = res.get("engines", {}).get(e, {}).get("io_engine")
        label = e + (f" (daemon reports {eng})" if eng and eng != e else "")
        L.append(f"| {label} | {f0(ld)} | {f0(mb)} | {f2(rb)} | {f0(md)} | {f2(rd)} | {bb:,} B | "
                 f"{f2(cpub / gib if cpub is not None else None)} / {f2(cpud / gib if cpud is not None else None)} | "
                 f"{pf(rb is not None and rb >= 0.8)}" + (f" (direct: {pf(rd >= 0.8)})" if rd is not None else "") + " |")
    L.append("")
    L.append("BENCH.md sets a stricter long-term goal of 0.9 × L_disk for WARM-DISK.")
    L.append("")
    L.append("<details><summary>Per-run MB/s and ratios</summary>")
    L.append("")
    L.append("| run | io_engine | L_disk | buffered | ratio | direct=1 | ratio |")
    L.append("|---|---|---|---|---|---|---|")
    for i, run in enumerate(runs):
        for e in ("uring", "sync"):
            if e in run:
                x = run[e]
                fl = lambda s: " f" if x[s].get("flagged") else ""
                L.append(f"| {i + 1} | {e} | {f0(x['l_disk']['mbps'])}{fl('l_disk')} | {f0(x['mount_buffered']['mbps'])}"
                         f"{fl('mount_buffered')} | {f2(x['ratio_mount_buffered'])} | {f0(x['mount_direct']['mbps'])}"
                         f"{fl('mount_direct')} | {f2(x['ratio_mount_direct'])} |")
    L += ["", "</details>", ""]
    for e, info in res.get("engines", {}).items():
        L.append(f"- {e}: backing file `{info.get('backing_file')}` ({info.get('backing_size'):,} bytes); daemon "
                 f"engine `{info.get('io_engine')}` ({info.get('io_engine_reason')}); cold fill "
                 f"{f0(info.get('fill_mbps'))} MB/s, its cache writes finished {info.get('write_behind_s')} s "
                 f"after the read; content check: {info.get('verify')}.")
    L.append("")
    return L


def render_readahead(res):
    p = res["params"]
    runs = res["runs"]
    L = [f"Goal (issue acceptance): with `-o debug_backend_latency_ms={p['latency_ms']}`, a cold sequential read of "
         f"{fmt_size(p['size'])} runs at least 5 × faster than with read-ahead off (`readahead=0`), measured side "
         f"by side. Each run mounts two cachefuse instances with fresh cache dirs on the same source and times "
         f"`dd bs=1M` of the file through each (page cache dropped before each read; the order alternates). "
         f"{len(runs)} run(s), medians.", ""]
    L.append("| mount options | seconds | MB/s | backend bytes / size | read-ahead bytes | FUSE read requests | "
             "backend in flight (max) |")
    L.append("|---|---|---|---|---|---|---|")
    for v, opts in (("readahead", f"debug_backend_latency_ms={p['latency_ms']}"),
                    ("no_readahead", f"debug_backend_latency_ms={p['latency_ms']},readahead=0")):
        xs = [run[v] for run in runs if v in run]
        secs = clean_median([(x["secs"], x.get("flagged")) for x in xs])[0]
        bb = median([x.get("backend_bytes") for x in xs])
        L.append(f"| `{opts}` | {f2(secs)} | {f1(p['size'] / secs / 1e6 if secs else None)} | "
                 f"{f2(bb / p['size'] if bb is not None else None)} | {f0(median([x.get('readahead_bytes') for x in xs]))} | "
                 f"{f0(median([x.get('read_requests') for x in xs]))} | {f0(median([x.get('backend_inflight_max') for x in xs]))} |")
    ratio = median([run.get("ratio") for run in runs])
    per = ", ".join(f2(run.get("ratio")) for run in runs)
    L.append("")
    L.append(f"Speed-up (seconds without read-ahead / seconds with it, per run: {per}): median **{f2(ratio)} ×** — "
             f"goal ≥ 5 ×: {pf(ratio is not None and ratio >= 5)}.")
    L.append("")
    if res.get("verify"):
        L.append("Content check: " + ", ".join(f"{k} {v}" for k, v in res["verify"].items()) + ".")
        L.append("")
    return L


def render_rss(res):
    p = res["params"]
    runs = res["runs"]
    L = [f"Goal (issue acceptance): peak RSS of the daemon while reading a {fmt_size(p['size'])} file sequentially "
         f"stays under 150 MiB. Each run mounts cachefuse with a fresh cache dir, drops the page cache and reads the "
         f"file with `dd bs=1M` while sampling the daemon's VmRSS from /proc/PID/status every 100 ms; VmHWM is read "
         f"at the end. CPU = utime + stime of the daemon (all threads) during the read. {len(runs)} run(s).", ""]
    L.append("| run | VmRSS at start | peak VmRSS (sampled) | peak RssAnon | VmHWM at end | VmRSS at end | "
             "CPU s/GiB | MB/s | backend bytes / size |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for i, x in enumerate(runs):
        L.append(f"| {i + 1} | {f1(x.get('rss_start_mib'))} MiB | {f1(x.get('peak_rss_mib'))} MiB | "
                 f"{f1(x.get('peak_anon_mib'))} MiB | {f1(x.get('hwm_mib'))} MiB | {f1(x.get('rss_end_mib'))} MiB | "
                 f"{f2(x.get('cpu_s_per_gib'))} | {f0(x.get('mbps'))}{' f' if x.get('flagged') else ''} | "
                 f"{f2(x['backend_bytes'] / p['size'] if x.get('backend_bytes') is not None else None)} |")
    worst = max([max(x.get("hwm_mib") or 0, x.get("peak_rss_mib") or 0) for x in runs] + [0])
    L.append(f"| **median** | {f1(median([x.get('rss_start_mib') for x in runs]))} MiB | "
             f"{f1(median([x.get('peak_rss_mib') for x in runs]))} MiB | {f1(median([x.get('peak_anon_mib') for x in runs]))} MiB | "
             f"{f1(median([x.get('hwm_mib') for x in runs]))} MiB | {f1(median([x.get('rss_end_mib') for x in runs]))} MiB | "
             f"{f2(median([x.get('cpu_s_per_gib') for x in runs]))} | "
             f"{f0(clean_median([(x.get('mbps'), x.get('flagged')) for x in runs])[0])} | – |")
    L.append("")
    L.append(f"Worst peak over all runs (max of VmHWM and sampled VmRSS): **{worst:.1f} MiB** — goal < 150 MiB: "
             f"{pf(runs and worst < 150)}.")
    L.append("")
    if res.get("verify"):
        L.append(f"Content check after the read: {res['verify']}.")
        L.append("")
    return L


def render_concurrent(res):
    p = res["params"]
    runs = res["runs"]
    L = [f"{p['procs']} processes (`dd bs=1M`) read the same cold {fmt_size(p['size'])} file through one cachefuse "
         f"mount (fresh cache dir, page cache dropped) at once; wall time from starting the first to the end of the "
         f"last. For comparison, a single reader on its own fresh mount in the same run. Goal from BENCH.md: "
         f"concurrent readers of one file fetch it once (backend bytes ≤ 1.05 × file size). {len(runs)} run(s), medians.",
         ""]
    L.append("| readers | wall s | slowest / fastest reader s | aggregate MB/s | backend bytes / size | "
             "FUSE read requests | daemon CPU s |")
    L.append("|---|---|---|---|---|---|---|")
    for v in ("single", "parallel"):
        xs = [run[v] for run in runs if v in run]
        if not xs:
            continue
        L.append(f"| {xs[0]['procs']} | {f2(clean_median([(x['wall_s'], x.get('flagged')) for x in xs])[0])} | "
                 f"{f2(median([x['reader_max_s'] for x in xs]))} / {f2(median([x['reader_min_s'] for x in xs]))} | "
                 f"{f0(median([x['agg_mbps'] for x in xs]))} | {f2(median([x['backend_ratio'] for x in xs]))} | "
                 f"{f0(median([x.get('read_requests') for x in xs]))} | {f2(median([x.get('cpu_s') for x in xs]))} |")
    par = [run["parallel"] for run in runs if "parallel" in run]
    worst = max([x["backend_ratio"] for x in par] + [0])
    fails = sum(len(x.get("failures", [])) for x in par)
    L.append("")
    L.append(f"Backend bytes / file size with {p['procs']} readers, worst run: **{worst:.2f}** — goal ≤ 1.05: "
             f"{pf(par and worst <= 1.05)}. Reader failures: {fails}.")
    L.append("")
    if res.get("verify"):
        L.append(f"Content check after the concurrent read: {res['verify']}.")
        L.append("")
    return L


RENDER = {"seq": ("seq — sequential 1 MiB reads: raw, mergerfs, rclone, cachefuse", render_seq),
          "warmdisk": ("warmdisk — warm-disk read through the mount vs fio direct=1 on the cache", render_warmdisk),
          "readahead": ("readahead — cold read over a slow source, read-ahead on vs off", render_readahead),
          "rss": ("rss — daemon memory and CPU while reading a large file", render_rss),
          "concurrent": ("concurrent — 8 readers of one cold file", render_concurrent)}


def render_markdown(results):
    L = ["# cachefuse benchmarks", "",
         "Generated by `bench/run.py` from `docs/bench-results.json`; do not edit by hand. Each job's section "
         "is replaced only when that job is re-run, so sections may come from different runs and dates (each "
         "section says when and how it was measured). Method and pitfalls: see BENCH.md (shared docs): medians of "
         "several runs, ratios measured side by side in the same run, page cache dropped with "
         "`echo 3 > /proc/sys/vm/drop_caches` (after `sync`) and a wait until the VM's page reporting "
         "(`/sys/module/page_reporting/parameters/reported_kib`) stops moving. The machines are small (2 CPUs) "
         "and shared: treat absolute figures as rough, ratios as the result.", "",
         "## How to run", "",
         "As root, with cachefuse built (`cmake -S . -B build -G Ninja && ninja -C build`) and fio, rclone, "
         "mergerfs installed (`scripts/install-deps.sh`):", "",
         "```",
         "bench/run.sh                                   # all jobs, default sizes, 3 runs",
         "bench/run.sh --jobs seq,warmdisk --size 2G --runs 3",
         "bench/run.sh --quick                           # smoke test (small sizes; results stay in the work dir)",
         "bench/run.sh --render-only                     # rewrite this file from docs/bench-results.json",
         "```", "",
         "Jobs: " + ", ".join(f"`{j}`" for j in ALL_JOBS) + ". Data and caches live under `--workdir` "
         "(default `/var/tmp/cachefuse-bench`, which must be a real disk filesystem, not tmpfs); everything the run "
         "creates there is unmounted and removed at the end, also on Ctrl-C/SIGTERM. The binaries are copied "
         "into the run directory first, so a rebuild during a run does not mix versions. `bench/run.py --help` "
         "lists the sizes, run counts and settle parameters.", ""]
    jobs = results.get("jobs", {})
    for name in ALL_JOBS:
        if name not in jobs:
            continue
        title, fn = RENDER[name]
        res = jobs[name]
        L.append(f"## {title}")
        L.append("")
        try:
            if res.get("runs"):
                L += fn(res)
        except Exception as e:  # a half-filled result must not lose the rest of the file
            L.append(f"> (cannot render this job's results: {e!r})")
            L.append("")
        L += md_meta(res)
        L += md_commands(res)
    return "\n".join(L).rstrip() + "\n"


def summarize_reporting(res):
    """Counts measurements flagged for page reporting in a job result (walks the nested dicts)."""
    found = []

    def walk(o):
        if isinstance(o, dict):
            if "reported_mib" in o and "flagged" in o:
                found.append(o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(res.get("runs", []))
    return {"measurements": len(found), "flagged": sum(1 for x in found if x.get("flagged")),
            "max_mib": max([x.get("reported_mib") or 0 for x in found] + [0])}


# --------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--jobs", default=",".join(ALL_JOBS), help=f"comma-separated jobs (default: all: {','.join(ALL_JOBS)})")
    ap.add_argument("--size", type=parse_size, default=None, help="file size for seq and warmdisk (default 2G)")
    ap.add_argument("--runs", type=int, default=None, help="runs per job; medians are taken over them (default 3)")
    ap.add_argument("--ra-size", type=parse_size, default=None, help="readahead job file size (default 256M)")
    ap.add_argument("--ra-latency", type=int, default=20, help="readahead job: debug_backend_latency_ms (default 20)")
    ap.add_argument("--rss-size", type=parse_size, default=None, help="rss job file size (default 4G)")
    ap.add_argument("--conc-size", type=parse_size, default=None, help="concurrent job file size (default 256M)")
    ap.add_argument("--conc-procs", type=int, default=8, help="concurrent job: readers (default 8)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: small sizes, 1 run, short settling; results go to the work dir, not docs/")
    ap.add_argument("--workdir", default="/var/tmp/cachefuse-bench", help="where all data, caches and mounts live")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"), help="where cachefuse and cachefusectl are")
    ap.add_argument("--results", default=None, help="results JSON (default docs/bench-results.json)")
    ap.add_argument("--out", default=None, help="markdown output (default docs/benchmarks.md)")
    ap.add_argument("--settle", type=float, default=None, help="seconds to wait at least after drop_caches (default 3)")
    ap.add_argument("--settle-stable", type=float, default=3.0,
                    help="...and until reported_kib has not moved for this long (default 3)")
    ap.add_argument("--settle-max", type=float, default=None, help="...but at most this long (default 25)")
    ap.add_argument("--report-warn-mib", type=int, default=200,
                    help="flag a measurement when page reporting moved this many MiB during it (default 200)")
    ap.add_argument("--step-timeout", type=float, default=None,
                    help="seconds before a single read counts as hung (default 120 + size / 5 MB/s)")
    ap.add_argument("--no-verify", action="store_true", help="skip comparing the file read through cachefuse with the source")
    ap.add_argument("--keep-rundir", action="store_true", help="debugging: keep the run directory (mounts are still removed)")
    ap.add_argument("--render-only", action="store_true", help="only rewrite the markdown from the results JSON")
    a = ap.parse_args()

    q = a.quick
    a.size = a.size or (64 * MiB if q else 2 * GiB)
    a.runs = a.runs or (1 if q else 3)
    a.ra_size = a.ra_size or (32 * MiB if q else 256 * MiB)
    a.rss_size = a.rss_size or (256 * MiB if q else 4 * GiB)
    a.conc_size = a.conc_size or (32 * MiB if q else 256 * MiB)
    a.settle = a.settle if a.settle is not None else (1.0 if q else 3.0)
    a.settle_max = a.settle_max if a.settle_max is not None else (6.0 if q else 25.0)
    if q:
        a.settle_stable = min(a.settle_stable, 1.0)
    default_results = os.path.join(a.workdir, "quick-results.json") if q else os.path.join(REPO, "docs", "bench-results.json")
    default_out = os.path.join(a.workdir, "quick-benchmarks.md") if q else os.path.join(REPO, "docs", "benchmarks.md")
    a.results = os.path.abspath(a.results or default_results)
    a.out = os.path.abspath(a.out or default_out)

    results = {"schema": 1, "jobs": {}}
    if os.path.exists(a.results):
        with open(a.results) as f:
            results = json.load(f)
    if a.render_only:
        with open(a.out, "w") as f:
            f.write(render_markdown(results))
        log(f"wrote {a.out}")
        return 0

    jobs = [j.strip() for j in a.jobs.split(",") if j.strip()]
    bad = [j for j in jobs if j not in ALL_JOBS]
    if bad:
        ap.error(f"unknown job(s) {bad}; known: {ALL_JOBS}")
    if os.geteuid() != 0:
        ap.error("must run as root (drop_caches, FUSE mounts)")
    for tool in ("fio", "fusermount3", "dd") + (("rclone", "mergerfs") if "seq" in jobs else ()):
        if not shutil.which(tool):
            ap.error(f"{tool} not found (scripts/install-deps.sh installs it)")

    invocation = "bench/run.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    b = Bench(a)

    def on_signal(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    done = {}
    interrupted = None
    t_start = time.monotonic()
    try:
        b.setup()
        need = (a.size if {"seq", "warmdisk"} & set(jobs) else 0) * 3 + \
               (a.rss_size * 2 if "rss" in jobs else 0) + (max(a.ra_size, a.conc_size) * 3)
        b.disk_check(need)
        facts = machine_facts(b)
        log(f"work dir {b.rundir}; jobs {jobs}; cachefuse {facts.get('commit')}")
        for j in jobs:
            log(f"=== job {j} ===")
            b.commands = {}
            b.notes = []
            rep0 = read_reported_kib()
            started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            t0 = time.monotonic()
            res = {"params": {}, "runs": []}
            try:
                res = JOB_FUNCS[j](b, a)
            except (StepFailed, Exception) as e:
                if not isinstance(e, StepFailed):
                    import traceback
                    traceback.print_exc()
                log(f"job {j} FAILED: {e}")
                res["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, StepFailed) else str(e)
                # leave nothing mounted behind for the next job
                for m in reversed(list(b.mounts)):
                    b.unmount(m)
            res["meta"] = dict(facts, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
            res["started"] = started
            res["invocation"] = invocation
            res["commands"] = b.commands
            res["notes"] = b.notes
            res["report_warn_mib"] = a.report_warn_mib
            res["page_reporting"] = dict(summarize_reporting(res), start_kib=rep0, end_kib=read_reported_kib())
            res["duration_s"] = round(time.monotonic() - t0, 1)
            done[j] = res
            log(f"job {j} took {res['duration_s']:.0f} s")
    except Interrupted as e:
        interrupted = str(e)
        log(f"interrupted by {interrupted}; cleaning up")
    finally:
        b.cleanup()
    if done:
        results.setdefault("jobs", {}).update(done)
        os.makedirs(os.path.dirname(a.results), exist_ok=True)
        tmp = a.results + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1, sort_keys=False)
            f.write("\n")
        os.replace(tmp, a.results)
        with open(a.out, "w") as f:
            f.write(render_markdown(results))
        log(f"wrote {a.results} and {a.out} ({', '.join(done)}) in {time.monotonic() - t_start:.0f} s")
    if interrupted:
        return 130
    return 1 if any(r.get("error") for r in done.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
