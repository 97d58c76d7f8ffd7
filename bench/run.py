#!/usr/bin/python3
"""cachefuse benchmark runner (Python 3, standard library only).

Runs benchmark jobs side by side on the same data and writes docs/benchmarks.md
from docs/bench-results.json (results are merged per job, so re-running only
some jobs keeps the other jobs' sections).

Jobs:
  seq         fio 1 MiB sequential reads (psync, buffered) of one file, COLD /
              WARM-DISK / WARM-RAM, for raw ext4, mergerfs (FUSE floor),
              rclone mount --vfs-cache-mode full, and cachefuse. With
              --baseline-bin-dir DIR also cachefuse-baseline: the binaries of
              DIR (e.g. a build of an older commit) with the same options,
              data and steps, interleaved in every run; the report gives
              new / baseline per state (median of per-run ratios).
              --setups restricts the setups (e.g. cachefuse,cachefuse-baseline).
  warmdisk    warm-disk read through the mount vs fio direct=1 on the cache
              file, for io_engine=uring and io_engine=sync (goal: >= 0.8 x);
              with --baseline-bin-dir also uring-baseline and sync-baseline.
  readahead   cold 256 MiB read with debug_backend_latency_ms=20, default
              read-ahead vs readahead=0 (goal: >= 5 x faster).
  rss         daemon peak RSS and CPU s/GiB while reading a 4 GiB file cold
              (goal: peak RSS < 150 MiB).
  concurrent  8 processes read one cold 256 MiB file at once: wall time and
              bytes fetched from the source / file size.
  startup     a new mount over a cache of 100,000 small objects (--startup-files):
              exec-to-answer time of `cachefuse`, time until stats report every
              object, cold and warm, also after kill -9 (reconcile scan in the
              background); `find CACHE_DIR -type f` for comparison (goal: < 2 s).
              Default runs: 5.

Everything it creates lives under --workdir (default /var/tmp/cachefuse-bench):
a per-invocation run-* directory that is removed at the end, even on Ctrl-C or
SIGTERM (mounts are unmounted, daemons stopped). Needs root (drop_caches).

Example:
  bench/run.py --jobs seq,warmdisk --size 2G --runs 3
  bench/run.py --jobs seq --size 2G --runs 3 --baseline-bin-dir ../wt-old/build/bin \\
      --baseline-label b610ff9 --setups raw,cachefuse,cachefuse-baseline   # new vs old binary
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
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_JOBS = ["seq", "warmdisk", "readahead", "rss", "concurrent", "startup"]
SEQ_SETUPS = ["raw", "mergerfs", "rclone", "cachefuse"]
BASELINE = "cachefuse-baseline"  # seq/warmdisk setup running the binaries of --baseline-bin-dir
SEQ_ALL_SETUPS = SEQ_SETUPS + [BASELINE]
CACHEFUSE_SETUPS = ("cachefuse", BASELINE)
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
    def __init__(self, kind, mnt, src, cache_dir=None, proc=None, pid=None, opts="", argv=None, ctl_bin=None):
        self.kind = kind
        self.ctl_bin = ctl_bin  # the cachefusectl that matches the daemon (baseline mounts have their own)
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
        self.bin_base_cachefuse = None  # --baseline-bin-dir snapshot (None without it)
        self.bin_base_ctl = None
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
        self.bin_cachefuse, self.bin_ctl = self.snapshot_bins(self.args.bin_dir, "bin")
        if self.args.baseline_bin_dir:
            self.bin_base_cachefuse, self.bin_base_ctl = self.snapshot_bins(self.args.baseline_bin_dir, "bin-baseline")
        self.rclone_conf = os.path.join(self.rundir, "rclone.conf")
        open(self.rclone_conf, "w").close()

    def snapshot_bins(self, srcdir, dstname):
        """Copies cachefuse and cachefusectl from srcdir to RUNDIR/dstname; returns their new paths."""
        bindir = os.path.join(self.rundir, dstname)
        os.makedirs(bindir)
        srcbin = os.path.abspath(srcdir)
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
        return os.path.join(bindir, "cachefuse"), os.path.join(bindir, "cachefusectl")

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

    def unmount(self, m, exit_timeout=30):
        """Unmounts one of our mounts and waits (up to exit_timeout s) for its daemon to exit."""
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
        deadline = time.monotonic() + exit_timeout
        while m.pid and proc_alive(m.pid) and time.monotonic() < deadline:
            if m.proc is not None and m.proc.poll() is not None:
                break
            time.sleep(0.1)
        if m.pid and proc_alive(m.pid) and (m.proc is not None or m.mnt in proc_cmdline(m.pid)):
            log(f"{m.kind} daemon pid {m.pid} still running {exit_timeout:g} s after unmount; SIGTERM")
            self.notes.append(f"{m.kind} daemon pid {m.pid} did not exit within {exit_timeout:g} s of unmount; "
                              f"sent SIGTERM")
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

        # Unlink the files of each directory in parallel first: on this disk (ext4 with discard) one unlink
        # at a time costs ~3 ms, so the 200,000 files of the startup job would take 10 minutes serially.
        dirs = [root for root, _, files in os.walk(path) if files]
        if len(dirs) > 1:
            def unlink_files(d):
                try:
                    with os.scandir(d) as it:
                        for e in it:
                            if not e.is_dir(follow_symlinks=False):
                                try:
                                    os.unlink(e.path)
                                except OSError:
                                    pass  # rmtree below reports what is left
                except OSError:
                    pass

            with ThreadPoolExecutor(8) as ex:
                list(ex.map(unlink_files, dirs))
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

    def mount_cachefuse(self, src, mnt, cache_dir, extra="", baseline=False):
        """Mounts cachefuse; baseline=True runs the --baseline-bin-dir binaries instead (same options)."""
        os.makedirs(mnt, exist_ok=True)
        os.makedirs(cache_dir, exist_ok=True)
        opts = f"cache_dir={cache_dir}" + (f",{extra}" if extra else "")
        daemon, ctl_bin = (self.bin_base_cachefuse, self.bin_base_ctl) if baseline else (self.bin_cachefuse, self.bin_ctl)
        if daemon is None:
            raise StepFailed("a baseline mount needs --baseline-bin-dir")
        argv = [daemon, src, mnt, "-o", opts]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            if is_mounted(mnt):
                self.force_unmount(mnt)
            raise StepFailed(f"cachefuse mount failed (rc {r.returncode}): {self.show(argv)}: {r.stderr.strip()}")
        m = Mount(BASELINE if baseline else "cachefuse", mnt, src, cache_dir, argv=argv, opts=extra, ctl_bin=ctl_bin)
        self.mounts.append(m)
        st = self.ctl("status", mnt, ctl_bin)
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
            s = self.ctl("stats", m.mnt, m.ctl_bin)
            done = s.get("io.submitted") == s.get("io.completed") and (s.get("bytes.to_cache") or 0) >= size
            if done:
                return round(time.monotonic() - t0, 2)
            if time.monotonic() - t0 > timeout:
                self.notes.append(f"cachefuse had not finished writing its cache {timeout} s after a cold read: "
                                  f"io.submitted {s.get('io.submitted')}, io.completed {s.get('io.completed')}, "
                                  f"bytes.to_cache {s.get('bytes.to_cache')} of {size}")
                return None
            time.sleep(0.1)

    def ctl(self, what, mnt, ctl_bin=None):
        argv = [ctl_bin or self.bin_ctl, what, mnt, "--json"]
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


def seq_order(setups, r):
    """Run r's order: the setups rotated by r; then cachefuse and cachefuse-baseline (when both run) take
    their two places new-first on even runs, baseline-first on odd ones (with more than two setups the
    rotation alone would nearly always keep them in the same order)."""
    order = setups[r % len(setups):] + setups[:r % len(setups)]
    if "cachefuse" in order and BASELINE in order:
        i, j = sorted((order.index("cachefuse"), order.index(BASELINE)))
        order[i], order[j] = ("cachefuse", BASELINE) if r % 2 == 0 else (BASELINE, "cachefuse")
    return order


def job_seq(b, a):
    size = a.size
    src = b.make_data(size)
    name = os.path.basename(src)
    runs = []
    verify = None
    verify_baseline = None
    setups = a.seq_setups
    for r in range(a.runs):
        order = seq_order(setups, r)
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
            else:  # cachefuse, or cachefuse-baseline: the same options, the --baseline-bin-dir binaries
                m = b.mount_cachefuse(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"),
                                      baseline=setup == BASELINE)
                b.record(f"mount {setup}", m.argv)
            if m is not None:
                path = os.path.join(m.mnt, name)
            is_cf = setup in CACHEFUSE_SETUPS
            res = {}
            for state in SEQ_STATES:
                settle = b.drop_caches() if state in ("cold", "warm-disk") else None
                cpu0 = proc_cpu_seconds(m.pid) if m else None
                st0 = b.ctl("stats", m.mnt, m.ctl_bin) if is_cf else None
                x = b.fio_read(path, False, f"read ({setup}; the same command in every state)", size)
                cpu1 = proc_cpu_seconds(m.pid) if m else None
                if cpu0 is not None and cpu1 is not None:
                    x["daemon_cpu_s"] = round(cpu1 - cpu0, 3)
                if st0 is not None:
                    d = stats_delta(st0, b.ctl("stats", m.mnt, m.ctl_bin))
                    x["backend_bytes"] = d.get("bytes.from_backend")
                    x["cache_bytes"] = d.get("bytes.from_cache")
                if settle:
                    x.update(settle)
                if is_cf and state == "cold":
                    x["write_behind_s"] = b.wait_cache_written(m, size)
                if is_cf and state != "cold" and x.get("backend_bytes"):
                    b.notes.append(f"run {r + 1}: the {setup} {state} read fetched {x['backend_bytes']:,} bytes "
                                   f"from the source although the cache was filled")
                res[state] = x
                log(f"  {setup} {state}: {x['mbps']:.0f} MB/s"
                    + (f", backend {x['backend_bytes'] / MiB:.0f} MiB" if x.get("backend_bytes") is not None else ""))
            if m is not None:
                res["peak_rss_mib"] = round(proc_status_kib(m.pid).get("VmHWM", 0) / 1024, 1)
                if is_cf:
                    res["io_engine"] = b.ctl("stats", m.mnt, m.ctl_bin).get("io.engine")
                    if r == 0:
                        v = b.verify(path, src)
                        log(f"  content check through {setup}: {v}")
                        if setup == BASELINE:
                            verify_baseline = v
                        else:
                            verify = v
                b.unmount(m)
            b.safe_rmtree(base)
            run[setup] = res
        if "cachefuse" in run and BASELINE in run:
            # new / baseline per state, measured in the same run (the report takes the median over runs)
            run["ratio_vs_baseline"] = {st: run["cachefuse"][st]["mbps"] / run[BASELINE][st]["mbps"]
                                        for st in SEQ_STATES if run[BASELINE][st].get("mbps")}
        runs.append(run)
    out = {"params": {"size": size, "runs": a.runs}, "runs": runs, "verify": verify}
    if setups != SEQ_SETUPS:
        out["params"]["setups"] = setups
    if BASELINE in setups:
        out["params"]["baseline_label"] = a.baseline_label
        out["verify_baseline"] = verify_baseline
    return out


def job_warmdisk(b, a):
    size = a.size
    src = b.make_data(size)
    name = os.path.basename(src)
    engines = ["uring", "sync"]
    # With --baseline-bin-dir each engine also gets a mount of the baseline binaries ("uring-baseline", ...),
    # with the same options, filled and measured the same way, interleaved in every run.
    with_baseline = b.bin_base_cachefuse is not None
    variants = [v for e in engines for v in ((e, e + "-baseline") if with_baseline else (e,))]
    mounts = {}
    info = {}
    for e in variants:
        eng = e.split("-")[0]
        base = b.mkdirs("warmdisk", e)
        m = b.mount_cachefuse(b.src_dir, os.path.join(base, "mnt"), os.path.join(base, "cache"), f"io_engine={eng}",
                              baseline=e.endswith("-baseline"))
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
        status = b.ctl("status", m.mnt, m.ctl_bin)
        info[e] = {"backing_file": b.show([biggest[0]]), "backing_size": biggest[1],
                   "io_engine": status.get("io.engine"), "io_engine_reason": status.get("io.engine_reason"),
                   "fill_mbps": fill["mbps"], "write_behind_s": fill["write_behind_s"], "verify": b.verify(os.path.join(m.mnt, name), src)}
        if biggest[1] < size:
            b.notes.append(f"warmdisk {e}: cache file {biggest[1]} bytes < file size {size}")
        m.backing = biggest[0]
        log(f"  backing file {biggest[0]} ({biggest[1]} bytes), engine {status.get('io.engine')}, "
            f"content {info[e]['verify']}")
    # L_disk (direct) is the issue's reference for reads through the mount with
    # direct=1; a buffered read pays for filling the page cache (page allocation
    # after drop_caches is slow on these VMs), so its reference is the same
    # buffered job on the backing file itself.
    steps = ["l_disk", "mount_direct", "l_disk_buffered", "mount_buffered"]
    runs = []
    for r in range(a.runs):
        run = {}
        # new and baseline of an engine one after the other, which goes first alternating per run
        vorder = [v for e in engines for v in sorted((x for x in variants if x.split("-")[0] == e),
                                                     key=lambda x: x.endswith("-baseline") == (r % 2 == 0))]
        for e in vorder:
            m = mounts[e]
            res = {}
            order = steps[r % len(steps):] + steps[:r % len(steps)]
            for step in order:
                settle = b.drop_caches()
                st0 = b.ctl("stats", m.mnt, m.ctl_bin)
                cpu0 = proc_cpu_seconds(m.pid)
                if step == "l_disk":
                    x = b.fio_read(m.backing, True, "L_disk: fio direct=1 on the cache file", os.path.getsize(m.backing))
                elif step == "l_disk_buffered":
                    x = b.fio_read(m.backing, False, "the cache file itself, buffered", os.path.getsize(m.backing))
                elif step == "mount_buffered":
                    x = b.fio_read(os.path.join(m.mnt, name), False, "through the mount, buffered", size)
                else:
                    x = b.fio_read(os.path.join(m.mnt, name), True, "through the mount, direct=1", size)
                cpu1 = proc_cpu_seconds(m.pid)
                d = stats_delta(st0, b.ctl("stats", m.mnt, m.ctl_bin))
                x["backend_bytes"] = d.get("bytes.from_backend")
                x["cache_bytes"] = d.get("bytes.from_cache")
                if cpu0 is not None and cpu1 is not None:
                    x["daemon_cpu_s"] = round(cpu1 - cpu0, 3)
                x.update(settle)
                if step.startswith("mount") and x.get("backend_bytes"):
                    b.notes.append(f"run {r + 1} {e} {step}: the warm read fetched {x['backend_bytes']:,} bytes "
                                   f"from the source although the cache was filled")
                res[step] = x
                log(f"warmdisk run {r + 1}/{a.runs} {e} {step}: {x['mbps']:.0f} MB/s")
            res["ratio_mount_direct"] = res["mount_direct"]["mbps"] / res["l_disk"]["mbps"]
            res["ratio_mount_buffered"] = res["mount_buffered"]["mbps"] / res["l_disk_buffered"]["mbps"]
            res["ratio_mount_buffered_vs_direct"] = res["mount_buffered"]["mbps"] / res["l_disk"]["mbps"]
            run[e] = res
        if with_baseline:
            run["order"] = vorder
        runs.append(run)
    for e in variants:
        b.unmount(mounts[e])
    out = {"params": {"size": size, "runs": a.runs}, "engines": info, "runs": runs}
    if with_baseline:
        out["params"]["baseline_label"] = a.baseline_label
    return out


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


# ---- startup: a new mount over a cache of many objects ---------------------------------

STARTUP_DIR_FILES = 1000  # files per source subdirectory


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def startup_content(i, size, block):
    """Content of source file i: its index, then a fixed random block (repeated); distinct per file."""
    head = f"cachefuse-startup file {i:09d}\n".encode()
    body = head + block
    while len(body) < size:
        body += block
    return body[:size]


def startup_path(root, i):
    return os.path.join(root, f"d{i // STARTUP_DIR_FILES:04d}", f"f{i:07d}")


def make_startup_tree(b, root, n, size, block):
    """n files of `size` bytes in subdirectories of STARTUP_DIR_FILES files, written from Python directly."""
    t0 = time.monotonic()
    for d in range((n + STARTUP_DIR_FILES - 1) // STARTUP_DIR_FILES):
        os.makedirs(os.path.join(root, f"d{d:04d}"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for i in range(n):
        fd = os.open(startup_path(root, i), flags, 0o644)
        try:
            os.write(fd, startup_content(i, size, block))
        finally:
            os.close(fd)
    os.sync()
    return time.monotonic() - t0


def proc_fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def proc_fd_limit(pid):
    """The soft RLIMIT_NOFILE of a process (from /proc/PID/limits), or None."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_tree(mnt, n, threads, stop, pid=None, throttle=None):
    """Reads files 0..n-1 through the mount once with `threads` threads. Samples the daemon's open file
    descriptors every 0.25 s; with throttle=(high, low) the readers pause while the daemon holds more than
    `high` descriptors until it is down to `low`. Returns (seconds, bytes, errors, fd samples, paused s)."""
    errors = []
    total = [0] * threads
    done = [0] * threads
    go = threading.Event()
    go.set()
    samples = []
    paused = [0.0]

    def worker(k):
        try:
            for i in range(k, n, threads):
                if not go.is_set():
                    go.wait()
                if stop.is_set():
                    return
                try:
                    with open(startup_path(mnt, i), "rb", buffering=0) as f:
                        while True:
                            x = f.read(1 << 20)
                            if not x:
                                break
                            total[k] += len(x)
                except OSError as e:
                    errors.append((time.monotonic(), sum(done), f"{startup_path(mnt, i)}: {e}"))
                    if len(errors) > 20:
                        stop.set()
                        return
                done[k] += 1
        finally:
            go.set()

    def monitor():
        while not stop.is_set():
            fds = proc_fd_count(pid) if pid else None
            now = time.monotonic() - t0
            samples.append((round(now, 2), sum(done), fds))
            if throttle and fds is not None:
                if go.is_set() and fds > throttle[0]:
                    go.clear()
                    t_pause = time.monotonic()
                elif not go.is_set() and fds <= throttle[1]:
                    go.set()
                    paused[0] += time.monotonic() - t_pause
            stop.wait(0.25)
        go.set()

    t0 = time.monotonic()
    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in ts:
        t.start()
    try:
        for t in ts:
            while t.is_alive():
                t.join(0.5)
    finally:
        stop.set()
        go.set()
        mon.join(5)
    errs = [f"after {t - t0:.1f} s, {d:,} files read: {e}" for t, d, e in errors]
    return time.monotonic() - t0, sum(total), errs, samples, paused[0]


def ctl_try(b, what, mnt, timeout=20):
    """cachefusectl WHAT MNT --json; None instead of an exception when it does not answer (yet)."""
    try:
        r = subprocess.run([b.bin_ctl, what, mnt, "--json"], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def check_sample(b, mnt, n, size, block, count=200):
    """Reads `count` files spread over the tree through the mount and compares them with what was written.
    Returns (mismatches, max latency s, backend bytes during the reads)."""
    st0 = ctl_try(b, "stats", mnt) or {}
    bad = []
    worst = 0.0
    step = max(1, n // count)
    for i in range(0, n, step):
        t0 = time.monotonic()
        try:
            with open(startup_path(mnt, i), "rb", buffering=0) as f:
                got = f.read(size + 1)
        except OSError as e:
            got = None
            bad.append(f"f{i:07d}: {e}")
        worst = max(worst, time.monotonic() - t0)
        if got is not None and got != startup_content(i, size, block):
            bad.append(f"f{i:07d}: content differs ({len(got)} bytes read)")
    st1 = ctl_try(b, "stats", mnt) or {}
    backend = (st1.get("bytes.from_backend") - st0.get("bytes.from_backend")
               if isinstance(st1.get("bytes.from_backend"), int) and isinstance(st0.get("bytes.from_backend"), int)
               else None)
    return bad, worst, backend


def startup_mount(b, src, mnt, cache_dir, n, objects_timeout, wait_objects=True):
    """Mounts cachefuse and times it: exec to return of `cachefuse SRC MNT -o cache_dir=DIR` (it returns once
    the mount answers), to the first answer of `cachefusectl stats`, and to a stats answer with
    cache.objects == n. Returns (Mount, figures)."""
    os.makedirs(mnt, exist_ok=True)
    argv = [b.bin_cachefuse, src, mnt, "-o", f"cache_dir={cache_dir}"]
    errf = open(os.path.join(b.rundir, "startup-mount.err"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    t_return = time.monotonic() - t0
    errf.seek(0)
    err = errf.read().strip()
    errf.close()
    if rc != 0 or not is_mounted(mnt):
        if is_mounted(mnt):
            b.force_unmount(mnt)
        raise StepFailed(f"cachefuse mount {'timed out after 120 s' if rc is None else f'failed (rc {rc})'} "
                         f"after {t_return:.2f} s: {b.show(argv)}: {err[-400:]}")
    m = Mount("cachefuse", mnt, src, cache_dir, argv=argv)
    m.t0 = t0
    b.mounts.append(m)
    x = {"mount_s": t_return}
    # the mount answers: a lookup and a read of one file
    t1 = time.monotonic()
    try:
        with open(startup_path(mnt, n // 2), "rb", buffering=0) as f:
            f.read(1 << 16)
        x["first_read_s"] = time.monotonic() - t0
        x["first_read_only_s"] = time.monotonic() - t1
    except OSError as e:
        x["first_read_error"] = str(e)
    # cachefusectl stats until it reports all objects
    first = None
    last = None
    deadline = time.monotonic() + objects_timeout
    while True:
        s = ctl_try(b, "stats", mnt)
        now = time.monotonic() - t0
        if s is not None:
            last = s
            if first is None:
                first = now
                x["stats_first_s"] = now
                x["objects_at_first_stats"] = s.get("cache.objects")
            if s.get("cache.objects") == n:
                x["stats_objects_s"] = now
                break
            if not wait_objects:
                break
        if time.monotonic() > deadline:
            x["stats_objects_s"] = None
            break
        time.sleep(0.02 if s is not None else 0.005)
    x["objects"] = (last or {}).get("cache.objects")
    x["bytes_used"] = (last or {}).get("cache.bytes_used")
    st = ctl_try(b, "status", mnt) or {}
    m.pid = st.get("pid")
    if m.pid:
        x["daemon_rss_mib"] = round(proc_status_kib(m.pid).get("VmRSS", 0) / 1024, 1)
        x["daemon_cpu_s"] = proc_cpu_seconds(m.pid)
    x["inodes"] = st.get("inodes")
    return m, x


def index_listing(cache_dir):
    d = os.path.join(cache_dir, "index")
    try:
        return {name: os.lstat(os.path.join(d, name)).st_size for name in sorted(os.listdir(d))}
    except OSError as e:
        return {"error": str(e)}


def count_cache_files(cache_dir):
    """(regular files under CACHE_DIR, data objects = 32-hex names under volumes/)."""
    files = objs = 0
    for root, _, names in os.walk(cache_dir):
        for nm in names:
            files += 1
            if len(nm) == 32 and all(c in "0123456789abcdef" for c in nm) and os.sep + "volumes" + os.sep in root + os.sep:
                objs += 1
    return files, objs


def job_startup(b, a):
    n = a.startup_files
    size = a.startup_file_size
    runs_n = a.startup_runs
    base = b.mkdirs("startup")
    src = os.path.join(base, "src")
    cache = os.path.join(base, "cache")
    mnt = os.path.join(base, "mnt")
    os.makedirs(src)
    per_file = max(size, 4096) + 4096  # data blocks + cache xattr/inode slack
    b.disk_check(2 * n * per_file + 64 * MiB)
    st = os.statvfs(base)
    if st.f_favail < 2.2 * n + 1000:
        raise StepFailed(f"{base}: {st.f_favail:,} free inodes, needs about {int(2.2 * n):,}")
    info = {"loadavg_job_start": loadavg()}
    notes = b.notes
    block = os.urandom(8192)

    log(f"startup: writing {n:,} files of {fmt_size(size)} under {src}")
    b.record("source tree (written from Python: one open/write/close per file, then sync)",
             f"{n:,} files of {size:,} bytes: $W/startup/src/dNNNN/fNNNNNNN, {STARTUP_DIR_FILES} per directory")
    info["make_tree_s"] = round(make_startup_tree(b, src, n, size, block), 1)
    log(f"  {info['make_tree_s']} s")

    # ---- fill the cache through a mount with a fresh cache dir
    m = b.mount_cachefuse(src, mnt, cache)
    b.record("mount with a fresh cache dir (fill)", m.argv)
    b.record("fill: read every file through the mount once",
             f"Python open/read/close of each file, {a.startup_threads} threads")
    fd_limit = proc_fd_limit(m.pid) if m.pid else None
    throttle = None
    if a.startup_fd_throttle and fd_limit:
        # cachefuse keeps each cache object's file open until it has been synced and idle for a while;
        # reading faster than it syncs runs the daemon out of descriptors (EMFILE to the reader).
        throttle = (int(fd_limit * 0.7), int(fd_limit * 0.4))
        b.record("fill pacing", f"the readers pause while the daemon holds more than {throttle[0]:,} open files "
                                f"(70 % of its RLIMIT_NOFILE {fd_limit:,}) until it is down to {throttle[1]:,}")
    log(f"startup: reading all {n:,} files through the mount ({a.startup_threads} threads); daemon RLIMIT_NOFILE "
        f"{fd_limit}" + (f", pausing above {throttle[0]:,} open files" if throttle else ""))
    stop = threading.Event()
    secs, nbytes, errors, fd_samples, paused = read_tree(mnt, n, a.startup_threads, stop, m.pid, throttle)
    info["fill_read_s"] = round(secs, 1)
    info["fill_files_per_s"] = round(n / secs) if secs else None
    info["fill_bytes"] = nbytes
    info["fill_paused_s"] = round(paused, 1)
    info["daemon_fd_limit"] = fd_limit
    info["fill_throttle"] = throttle
    info["fill_fd_max"] = max([f for _, _, f in fd_samples if f is not None], default=None)
    info["fill_fd_samples"] = fd_samples[::max(1, len(fd_samples) // 100)]
    log(f"  {secs:.1f} s ({n / secs:,.0f} files/s), {nbytes:,} bytes, {len(errors)} errors; daemon open files "
        f"max {info['fill_fd_max']}, readers paused {paused:.1f} s")
    if errors:
        info["fill_errors"] = errors[:5]
        notes.append(f"reading {n:,} files through the mount failed: {len(errors)} errors, first: {errors[0]}; "
                     f"the daemon had {fd_samples[-1][2] if fd_samples else '?'} files open (RLIMIT_NOFILE "
                     f"{fd_limit}); open-file samples (s, files read, daemon fds): {fd_samples[-8:]}")
        raise StepFailed(f"reading the tree through the mount failed: {errors[:3]}")
    if nbytes != n * size:
        notes.append(f"the fill read {nbytes:,} bytes through the mount, expected {n * size:,}")
    b.record("wait until the cache holds every file", f"poll `{b.show([b.bin_ctl, 'stats', mnt, '--json'])}` "
             f"until cache.objects == {n} (at most {a.startup_wait:g} s)")
    t0 = time.monotonic()
    timeline = []
    while True:
        s = b.ctl("stats", mnt)
        el = time.monotonic() - t0
        timeline.append((round(el, 1), s.get("cache.objects")))
        if s.get("cache.objects") == n and s.get("io.submitted") == s.get("io.completed"):
            info["fill_objects_wait_s"] = round(el, 1)
            break
        if el > a.startup_wait:
            info["fill_objects_wait_s"] = None
            notes.append(f"after the fill, cache.objects was {s.get('cache.objects')} (not {n}) {a.startup_wait:g} s "
                         f"after the last read; io.submitted {s.get('io.submitted')}, io.completed "
                         f"{s.get('io.completed')}, bytes.to_cache {s.get('bytes.to_cache')}, cache.errors "
                         f"{s.get('cache.errors')}, cache.state {s.get('cache.state')}")
            break
        time.sleep(0.5)
    info["fill_stats"] = {k: s.get(k) for k in ("cache.objects", "cache.bytes_used", "bytes.to_cache",
                                                "bytes.from_backend", "read.miss", "cache.errors", "cache.state",
                                                "objects.discarded", "cull.objects")}
    log(f"  cache.objects {s.get('cache.objects')} after {el:.1f} s, cache.bytes_used {s.get('cache.bytes_used')}")
    bad, _, _ = check_sample(b, mnt, n, size, block)
    info["verify_fill"] = "ok" if not bad else f"{len(bad)} bad: {bad[:3]}"
    b.record("unmount (clean stop; the daemon writes its index and exits)", f"fusermount3 -u {b.show([mnt])}")
    log("  clean unmount (the daemon persists what it has not flushed yet, then its index)")
    s_before = b.ctl("stats", mnt)
    t0 = time.monotonic()
    pid = m.pid
    b.unmount(m, exit_timeout=a.startup_stop_timeout)
    info["clean_stop_s"] = round(time.monotonic() - t0, 2)
    info["stats_before_stop"] = {k: s_before.get(k) for k in ("io.submitted", "io.completed", "cookies.in_use",
                                                               "cache.objects")}
    if pid and proc_alive(pid):
        notes.append(f"the daemon (pid {pid}) was still alive after the fill's unmount")
    info["index_after_fill"] = index_listing(cache)
    clean = os.path.join(cache, "index", "CLEAN")
    b.record("check", f"test -e {b.show([clean])}")
    info["clean_after_fill"] = os.path.exists(clean)
    if not info["clean_after_fill"]:
        notes.append(f"no index/CLEAN after the clean unmount of the filled cache; index/ holds {info['index_after_fill']}")
    files, objs = count_cache_files(cache)
    info["cache_files"] = files
    info["cache_data_objects"] = objs
    if objs != n:
        notes.append(f"the cache dir holds {objs:,} data objects for {n:,} source files")
    log(f"  clean stop {info['clean_stop_s']} s; index/CLEAN {'present' if info['clean_after_fill'] else 'MISSING'}; "
        f"{objs:,} data objects, {files:,} files in the cache dir; index {info['index_after_fill']}")

    # ---- timed starts
    b.record("timed start (wall time from exec to return; it returns once the mount answers)",
             b.show([b.bin_cachefuse, src, mnt, "-o", f"cache_dir={cache}"]))
    b.record("then: one file read through the mount; then until it reports every object",
             f"open/read of one file; then `{b.show([b.bin_ctl, 'stats', mnt, '--json'])}` in a loop until "
             f"cache.objects == {n}")
    b.record("scan cost for comparison (page cache dropped first)", f"find {b.show([cache])} -type f | wc -l")
    b.record("scan with a stat of every file, like the reconcile after an unclean stop (page cache dropped first)",
             f"find {b.show([cache])} -type f -printf '%b\\n' | wc -l")
    runs = []
    for r in range(runs_n):
        run = {}
        for state in ("cold", "warm"):
            settle = b.drop_caches() if state == "cold" else None
            res = {}

            def go():
                mm, x = startup_mount(b, src, mnt, cache, n, a.startup_objects_timeout)
                res["m"] = mm
                return x

            x = b.measured(go)
            m = res["m"]
            if settle:
                x.update(settle)
            t0 = time.monotonic()
            b.unmount(m)
            x["stop_s"] = round(time.monotonic() - t0, 2)
            x["clean_after"] = os.path.exists(clean)
            if not x["clean_after"]:
                notes.append(f"run {r + 1} {state}: no index/CLEAN after a clean unmount")
            if x.get("stats_objects_s") is None:
                notes.append(f"run {r + 1} {state}: cachefusectl stats did not report cache.objects == {n} within "
                             f"{a.startup_objects_timeout:g} s (last: {x.get('objects')})")
            if x.get("objects_at_first_stats") != n:
                notes.append(f"run {r + 1} {state}: the first stats answer reported cache.objects "
                             f"{x.get('objects_at_first_stats')}, not {n}")
            run[state] = x
            log(f"startup run {r + 1}/{runs_n} {state}: mount returned in {x['mount_s']:.3f} s, first read at "
                f"{f2(x.get('first_read_s'))} s, stats at {f2(x.get('stats_first_s'))} s (objects "
                f"{x.get('objects_at_first_stats')}), objects == N at {f2(x.get('stats_objects_s'))} s; "
                f"RSS {x.get('daemon_rss_mib')} MiB; stop {x['stop_s']} s")
        settle = b.drop_caches()
        argv = ["sh", "-c", f"find {shlex.quote(cache)} -type f | wc -l"]
        rc, out, err, secs = b.run_reader(argv, 600)
        run["find"] = dict(settle, secs=secs, count=int(out.strip()) if rc == 0 and out.strip().isdigit() else None)
        settle = b.drop_caches()
        argv = ["sh", "-c", f"find {shlex.quote(cache)} -type f -printf '%b\\n' | wc -l"]
        rc, out, err, secs2 = b.run_reader(argv, 600)
        run["find_stat"] = dict(settle, secs=secs2, count=int(out.strip()) if rc == 0 and out.strip().isdigit() else None)
        log(f"startup run {r + 1}/{runs_n}: find CACHE_DIR -type f | wc -l: {run['find']['count']} in {secs:.2f} s; "
            f"with a stat of each: {secs2:.2f} s")
        runs.append(run)

    # ---- an unclean stop: kill -9, umount -l, then a new mount while the reconcile scan runs
    log("startup: unclean stop (kill -9), then a new mount")
    m, x0 = startup_mount(b, src, mnt, cache, n, a.startup_objects_timeout)
    pid = m.pid
    b.record("unclean stop", f"kill -9 <daemon pid>; umount -l {b.show([mnt])}")
    unclean = {"objects_before_kill": x0.get("objects")}
    if not pid:
        raise StepFailed("no daemon pid from cachefusectl status; cannot test the unclean stop")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
    if is_mounted(mnt):
        b.force_unmount(mnt)
    b.mounts.remove(m)
    sock = f"/run/cachefuse/{pid}.sock"
    if os.path.exists(sock) and not proc_alive(pid):
        try:  # the killed daemon's control socket (it had no chance to remove it)
            os.unlink(sock)
        except OSError:
            pass
    unclean["clean_after_kill"] = os.path.exists(clean)
    unclean["index_after_kill"] = index_listing(cache)
    if unclean["clean_after_kill"]:
        notes.append("index/CLEAN existed after kill -9 of a running daemon (a reconcile scan will not run)")
    settle = b.drop_caches()
    unclean.update(settle)
    m, x = startup_mount(b, src, mnt, cache, n, a.startup_objects_timeout, wait_objects=False)
    unclean.update(x)
    # while the reconcile scan runs: do reads answer? Then poll stats until the count settles and the daemon is idle.
    bad, worst, backend = check_sample(b, mnt, n, size, block, count=100)
    unclean["sample_read_max_s"] = worst
    unclean["sample_bad"] = bad[:5]
    unclean["sample_backend_bytes"] = backend
    t_mount = m.t0  # the exec instant
    tl = [(round(x["stats_first_s"], 2), x.get("objects_at_first_stats"), x.get("bytes_used"), None)] \
        if x.get("stats_first_s") is not None else []
    last_obj = x.get("objects_at_first_stats")
    last_change = x.get("stats_first_s")
    settled = None
    cpu_hist = []
    deadline = time.monotonic() + a.startup_reconcile_timeout
    while time.monotonic() < deadline:
        s = ctl_try(b, "stats", mnt)
        now = time.monotonic() - t_mount
        cpu = proc_cpu_seconds(m.pid) if m.pid else None
        obj = (s or {}).get("cache.objects")
        if not tl or obj != tl[-1][1] or (s or {}).get("cache.bytes_used") != tl[-1][2]:
            tl.append((round(now, 2), obj, (s or {}).get("cache.bytes_used"), cpu))
        if obj != last_obj:
            last_obj, last_change = obj, now
        cpu_hist.append((now, cpu))
        # idle: the daemon used < 0.05 CPU s over the last second
        idle = False
        old = [c for t, c in cpu_hist if now - t >= 1.0]
        if old and cpu is not None and old[-1] is not None:
            idle = cpu - old[-1] < 0.05
        if obj == n and idle and now - last_change >= 2.0:
            settled = last_change
            unclean["idle_from_s"] = now
            break
        time.sleep(0.1)
    unclean["objects_settled_s"] = settled
    unclean["timeline"] = tl[:200]
    unclean["objects_final"] = last_obj
    unclean["daemon_cpu_total_s"] = proc_cpu_seconds(m.pid) if m.pid else None
    # the busy period of the daemon: last instant its CPU moved by >= 0.05 s in 1 s
    busy = None
    for i in range(len(cpu_hist)):
        t, c = cpu_hist[i]
        prev = [cc for tt, cc in cpu_hist[:i] if t - tt >= 1.0]
        if prev and c is not None and prev[-1] is not None and c - prev[-1] >= 0.05:
            busy = t
    unclean["daemon_busy_until_s"] = busy
    if settled is None:
        notes.append(f"after the unclean stop, cache.objects did not settle at {n} with the daemon idle within "
                     f"{a.startup_reconcile_timeout:g} s (last {last_obj}; timeline {tl[-5:]})")
    log(f"  unclean: mount returned in {x['mount_s']:.3f} s, stats at {f2(x.get('stats_first_s'))} s "
        f"(objects {x.get('objects_at_first_stats')}), sample reads max {worst * 1000:.1f} ms ({len(bad)} bad), "
        f"objects settled at {last_obj} from {f2(settled)} s, daemon busy until {f2(busy)} s")
    t0 = time.monotonic()
    b.unmount(m)
    unclean["stop_s"] = round(time.monotonic() - t0, 2)
    unclean["clean_after_reconcile"] = os.path.exists(clean)
    unclean["index_after_reconcile"] = index_listing(cache)
    if not unclean["clean_after_reconcile"]:
        notes.append("no index/CLEAN after the clean unmount that followed the reconcile")
    # and a clean start after that: the index must still describe every object
    m, x = startup_mount(b, src, mnt, cache, n, a.startup_objects_timeout)
    bad2, worst2, backend2 = check_sample(b, mnt, n, size, block, count=100)
    x["sample_bad"] = bad2[:5]
    x["sample_read_max_s"] = worst2
    x["sample_backend_bytes"] = backend2
    b.unmount(m)
    unclean["after"] = x
    if x.get("objects_at_first_stats") != n:
        notes.append(f"the clean start after the reconcile reported cache.objects {x.get('objects_at_first_stats')}, "
                     f"not {n}")
    if bad or bad2:
        notes.append(f"content check after the restarts: {bad[:3] + bad2[:3]}")
    if backend2:
        notes.append(f"reads after the restarts fetched {backend2:,} bytes from the source although cached")
    log(f"  clean start after the reconcile: {x['mount_s']:.3f} s, objects {x.get('objects_at_first_stats')}")

    info["loadavg_job_end"] = loadavg()
    log(f"startup: removing the {2 * n:,} files of the source tree and the cache")
    t0 = time.monotonic()
    b.safe_rmtree(base)
    info["cleanup_s"] = round(time.monotonic() - t0, 1)
    return {"params": {"files": n, "file_size": size, "runs": runs_n, "threads": a.startup_threads},
            "info": info, "runs": runs, "unclean": unclean}


JOB_FUNCS = {"seq": job_seq, "warmdisk": job_warmdisk, "readahead": job_readahead, "rss": job_rss,
             "concurrent": job_concurrent, "startup": job_startup}


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
    facts.update(binary_facts(b.bin_cachefuse, b.args.bin_dir))
    if b.bin_base_cachefuse:
        facts["baseline"] = dict(binary_facts(b.bin_base_cachefuse, b.args.baseline_bin_dir),
                                 label=b.args.baseline_label,
                                 cachefuse=cmd_output([b.bin_base_cachefuse, "--version"]))
    facts["workdir"] = b.workdir
    facts["workdir_fs"] = fs_type(b.workdir)
    try:
        with open("/proc/loadavg") as f:
            facts["loadavg_start"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    return facts


def binary_facts(snapshot, bin_dir):
    """Commit, sha256 and build time of a cachefuse binary: the commit is that of the git work tree holding
    bin_dir (a worktree of an older commit names that commit), else of this repository."""
    bin_dir = os.path.abspath(bin_dir)
    out = {"bin_dir": bin_dir}
    tree = cmd_output(["git", "--no-optional-locks", "-C", bin_dir, "rev-parse", "--show-toplevel"])
    tree = tree if tree and os.path.isdir(tree) else REPO
    rev = cmd_output(["git", "--no-optional-locks", "-C", tree, "rev-parse", "--short", "HEAD"])
    dirty = cmd_output(["git", "--no-optional-locks", "-C", tree, "status", "--porcelain", "--untracked-files=no"])
    out["commit"] = (rev + (" + uncommitted changes" if dirty else "")) if rev else "unknown"
    if tree != REPO:
        out["source_tree"] = tree
    if snapshot:
        h = hashlib.sha256()
        with open(snapshot, "rb") as f:
            for chunk in iter(lambda: f.read(MiB), b""):
                h.update(chunk)
        out["binary_sha256"] = h.hexdigest()[:16]
        out["binary_mtime"] = datetime.datetime.fromtimestamp(
            os.stat(os.path.join(bin_dir, "cachefuse")).st_mtime,
            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return out


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
    if m.get("bin_dir"):
        lines.insert(1, "")
        lines.insert(2, f"Binaries: new from `{m['bin_dir']}`"
                        + (f" (tree `{m['source_tree']}`)" if m.get("source_tree") else "") + "."
                        + (f" Baseline `{m['baseline'].get('label')}` from `{m['baseline'].get('bin_dir')}`: "
                           f"cachefuse {m['baseline'].get('commit')}"
                           + (f" (tree `{m['baseline']['source_tree']}`)" if m['baseline'].get("source_tree") else "")
                           + f", binary sha256 {m['baseline'].get('binary_sha256')}, built "
                           f"{m['baseline'].get('binary_mtime')}."
                           if m.get("baseline") and any(k == BASELINE or k.endswith("-baseline")
                                                        for run in res.get("runs", []) for k in run) else ""))
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
    if res.get("loadavg_start"):
        lines.append(f"Load average (1/5/15 min) at the job's start: {res['loadavg_start']}, at its end: "
                     f"{res.get('loadavg_end')}.")
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
         f"rotating order inside each run, each on the same source file."
         + (f" `{BASELINE}` is the same cachefuse setup (same options, data and steps) run with the baseline "
            f"binaries (`{p.get('baseline_label', 'baseline')}`; see below the table), interleaved with `cachefuse` "
            f"in every run; the two swap places on odd runs." if any(BASELINE in run for run in runs) else "")
         + (f" Setups in this run: {', '.join(p['setups'])}." if p.get("setups") else ""), ""]
    if not runs:
        return L
    present = [s for s in SEQ_ALL_SETUPS if any(s in run for run in runs)]
    med = {}
    for s in SEQ_ALL_SETUPS:
        for st in SEQ_STATES:
            vals = [(run[s][st]["mbps"], run[s][st].get("flagged")) for run in runs if s in run and st in run[s]]
            med[(s, st)] = clean_median(vals)[0]
    names = {"raw": "raw ext4 (limit)", "mergerfs": "mergerfs one branch, cache.files=off (FUSE floor)",
             "rclone": "rclone local remote, --vfs-cache-mode full", "cachefuse": "cachefuse (defaults)",
             BASELINE: f"cachefuse {p.get('baseline_label', 'baseline')} (baseline binaries, defaults)"}
    L.append("| setup | cold | × raw | warm-disk | × raw | warm-RAM | × raw | backend bytes cold / warm | "
             "daemon CPU s/GiB cold / warm-disk / warm-RAM | daemon peak RSS |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    gib = p["size"] / GiB
    for s in present:
        cells = [names[s]]
        for st in SEQ_STATES:
            v = med[(s, st)]
            raw = med[("raw", st)]
            cells.append(f0(v))
            cells.append("1.00" if s == "raw" else (f2(v / raw) if v and raw else "–"))
        if s in CACHEFUSE_SETUPS:
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
    if "cachefuse" in present and BASELINE in present:
        L += render_seq_baseline(res)
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
        if "cachefuse" in run and BASELINE in run:
            L.append(f"| {i + 1} | new / baseline | " + " | ".join(
                f2(seq_run_ratio(run, st)[0]) for st in SEQ_STATES) + " |")
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
    goal_rows = []
    for text, v, need in goals:
        if need is None:
            goal_rows.append(f"| {text} | {v:.3f} × | {pf(v <= 1.05)} |")
        else:
            goal_rows.append(f"| {text} | {v:.2f} × | {pf(v >= need)} |")
    for st in SEQ_STATES:
        if cf[st] and rc[st]:
            goal_rows.append(f"| ahead of rclone, {st} | {cf[st] / rc[st]:.2f} × rclone | {pf(cf[st] > rc[st])} |")
    if goal_rows:  # none when --setups left out the setups they need
        L += ["Goals from BENCH.md (informative for this job):", "", "| goal | measured | result |", "|---|---|---|"]
        L += goal_rows
        L.append("")
    if res.get("verify"):
        wb = median([run["cachefuse"]["cold"].get("write_behind_s") for run in runs if "cachefuse" in run])
        L.append(f"Content check (file read through cachefuse compared with the source): {res['verify']}. "
                 f"cachefuse io engine: {runs[0].get('cachefuse', {}).get('io_engine')}; after the cold read its "
                 f"cache writes (write-behind) finished {f2(wb)} s later (median), before the page cache was dropped.")
        L.append("")
    if res.get("verify_baseline"):
        wb = median([run[BASELINE]["cold"].get("write_behind_s") for run in runs if BASELINE in run])
        L.append(f"Baseline: content check {res['verify_baseline']}; io engine "
                 f"{runs[0].get(BASELINE, {}).get('io_engine')}; write-behind finished {f2(wb)} s after the cold "
                 f"read (median).")
        L.append("")
    return L


def seq_run_ratio(run, st):
    """(new / baseline MB/s in one run and state, flagged?) from a seq run that has both setups."""
    r = (run.get("ratio_vs_baseline") or {}).get(st)
    try:
        if r is None:
            r = run["cachefuse"][st]["mbps"] / run[BASELINE][st]["mbps"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None, False
    return r, bool(run["cachefuse"][st].get("flagged") or run[BASELINE][st].get("flagged"))


def spread(values):
    """(max - min) / median of the values, or None with fewer than two."""
    vals = [v for v in values if v is not None]
    if len(vals) < 2 or not statistics.median(vals):
        return None
    return (max(vals) - min(vals)) / statistics.median(vals)


def render_seq_baseline(res):
    """The new-vs-baseline table of the seq job: per-run ratios new / baseline (same run), their median."""
    runs = [run for run in res["runs"] if "cachefuse" in run and BASELINE in run]
    label = res["params"].get("baseline_label", "baseline")
    L = [f"**New vs baseline** (`cachefuse` / `{BASELINE}` = {label}): MB/s ratio in each run (both read the "
         f"same file in the same run), median over the {len(runs)} run(s) (runs where page reporting flagged "
         f"either read are left out when a clean run remains). For the noise: the spread (max − min) / median of "
         f"each setup's MB/s over the runs, and the range of the per-run ratios.", "",
         "| state | new MB/s | baseline MB/s | new / baseline (median of per-run ratios) | per-run ratios | "
         "run-to-run spread new / baseline |",
         "|---|---|---|---|---|---|"]
    for st in SEQ_STATES:
        pairs = [seq_run_ratio(run, st) for run in runs]
        ratio, used, total = clean_median(pairs)
        new = clean_median([(run["cachefuse"][st]["mbps"], run["cachefuse"][st].get("flagged")) for run in runs])[0]
        old = clean_median([(run[BASELINE][st]["mbps"], run[BASELINE][st].get("flagged")) for run in runs])[0]
        per = ", ".join(f2(r) + (" f" if fl else "") for r, fl in pairs)
        sn = spread([run["cachefuse"][st]["mbps"] for run in runs])
        so = spread([run[BASELINE][st]["mbps"] for run in runs])
        pct = lambda v: "–" if v is None else f"{100 * v:.0f} %"
        L.append(f"| {st} | {f0(new)} | {f0(old)} | **{f2(ratio)} ×**"
                 + (f" ({used} of {total} runs)" if used != total else "")
                 + f" | {per} | {pct(sn)} / {pct(so)} |")
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
         f"(the largest regular file under CACHE_DIR/volumes/) and the same job with `direct=1` through the mount "
         f"(like for like: the goal); then the same job buffered (`direct=0`) on the backing file and through the "
         f"mount. A buffered read must fill the page cache, and page allocation right after drop_caches is slow on "
         f"these VMs (BENCH.md: page faults, page reporting), so a buffered read of the backing file itself is "
         f"the bound for a buffered read through any mount; its ratio is shown against that bound and against "
         f"L_disk. Ratios are per run (same run), then the median.", ""]
    L.append("| io_engine | L_disk MB/s | mount direct=1 MB/s | ratio (goal ≥ 0.8) | backing file buffered MB/s | "
             "mount buffered MB/s | ratio to buffered / to L_disk | backend bytes (warm) | "
             "daemon CPU s/GiB direct / buffered |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    gib = p["size"] / GiB
    variants = ("uring", "uring-baseline", "sync", "sync-baseline")

    for e in variants:
        rr = [run[e] for run in runs if e in run]
        if not rr:
            continue
        mbps = lambda step: clean_median([(x[step]["mbps"], x[step].get("flagged")) for x in rr if step in x])[0] \
            if any(step in x for x in rr) else None
        ratio = lambda key, step, ref: clean_median([(x[key], x[step].get("flagged") or x[ref].get("flagged"))
                                                     for x in rr if key in x and ref in x])[0] \
            if any(key in x and ref in x for x in rr) else None
        ld, md, lb, mb = mbps("l_disk"), mbps("mount_direct"), mbps("l_disk_buffered"), mbps("mount_buffered")
        rd = ratio("ratio_mount_direct", "mount_direct", "l_disk")
        rb = ratio("ratio_mount_buffered", "mount_buffered", "l_disk_buffered")
        rbd = ratio("ratio_mount_buffered_vs_direct", "mount_buffered", "l_disk")
        bb = sum((x["mount_buffered"].get("backend_bytes") or 0) + (x["mount_direct"].get("backend_bytes") or 0)
                 for x in rr)
        cpub = median([x["mount_buffered"].get("daemon_cpu_s") for x in rr])
        cpud = median([x["mount_direct"].get("daemon_cpu_s") for x in rr])
        eng = res.get("engines", {}).get(e, {}).get("io_engine")
        label = e + (f" (daemon reports {eng})" if eng and eng != e.split("-")[0] else "")
        L.append(f"| {label} | {f0(ld)} | {f0(md)} | {f2(rd)} {pf(rd is not None and rd >= 0.8)} | {f0(lb)} | "
                 f"{f0(mb)} | {f2(rb)} / {f2(rbd)} | {bb:,} B | "
                 f"{f2(cpud / gib if cpud is not None else None)} / {f2(cpub / gib if cpub is not None else None)} |")
    L.append("")
    L.append("BENCH.md sets a stricter long-term goal of 0.9 × L_disk for WARM-DISK.")
    L.append("")
    base_rows = []
    for e in ("uring", "sync"):
        both = [run for run in runs if e in run and e + "-baseline" in run]
        if not both:
            continue

        def rat(key, step, ref=None):
            # per run: new / baseline of a step's MB/s (or of a ratio key), then the median
            vals = []
            for run in both:
                n, o = run[e], run[e + "-baseline"]
                try:
                    v = (n[key] / o[key]) if ref else (n[step]["mbps"] / o[step]["mbps"])
                except (KeyError, ZeroDivisionError):
                    continue
                fl = any(x[s].get("flagged") for x in (n, o) for s in ((step, ref) if ref else (step,)) if s in x)
                vals.append((v, fl))
            return clean_median(vals)[0], ", ".join(f2(v) for v, _ in vals)

        for text, key, step, ref in (("mount direct=1 MB/s", None, "mount_direct", None),
                                     ("mount direct=1 / L_disk", "ratio_mount_direct", "mount_direct", "l_disk"),
                                     ("mount buffered MB/s", None, "mount_buffered", None),
                                     ("mount buffered / backing buffered", "ratio_mount_buffered", "mount_buffered",
                                      "l_disk_buffered")):
            v, per = rat(key, step, ref)
            base_rows.append(f"| {e} | {text} | **{f2(v)} ×** | {per} |")
    if base_rows:
        L += [f"**New vs baseline** (`{p.get('baseline_label', 'baseline')}`, the `-baseline` rows): new / baseline "
              f"per run, median.", "", "| io_engine | measure | new / baseline | per-run |", "|---|---|---|---|"]
        L += base_rows + [""]
    L.append("<details><summary>Per-run MB/s and ratios</summary>")
    L.append("")
    L.append("| run | io_engine | L_disk | direct=1 | ratio | backing buffered | buffered | ratio |")
    L.append("|---|---|---|---|---|---|---|---|")
    for i, run in enumerate(runs):
        for e in run.get("order", variants):
            if e in run:
                x = run[e]
                cell = lambda s: (f0(x[s]["mbps"]) + (" f" if x[s].get("flagged") else "")) if s in x else "–"
                L.append(f"| {i + 1} | {e} | {cell('l_disk')} | {cell('mount_direct')} | "
                         f"{f2(x.get('ratio_mount_direct'))} | {cell('l_disk_buffered')} | {cell('mount_buffered')} | "
                         f"{f2(x.get('ratio_mount_buffered'))} |")
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


def render_startup(res):
    p = res["params"]
    runs = res["runs"]
    info = res.get("info", {})
    u = res.get("unclean", {})
    n = p["files"]
    L = [f"Goal (issue acceptance): with {n:,} objects in the cache, a new mount answers in under 2 s. The cache "
         f"keeps a persistent LRU index in `CACHE_DIR/index/`, so a start after a clean stop must not scan the "
         f"tree. Set-up (untimed): a source tree of {n:,} files of {fmt_size(p['file_size'])} "
         f"({STARTUP_DIR_FILES} per directory); a cachefuse mount with a fresh cache dir; every file read once "
         f"through it ({p.get('threads', 2)} threads); wait until `cachefusectl stats` reports cache.objects = "
         f"{n:,}; clean unmount; check that `index/CLEAN` exists. Then {len(runs)} run(s), each: COLD = page "
         f"cache dropped, then `cachefuse SRC MNT -o cache_dir=DIR` timed from exec to its return (it returns "
         f"only once the mount answers), then one file read through the mount, then `cachefusectl stats` in a "
         f"loop until it reports cache.objects = {n:,} (all times from the exec), clean unmount; WARM = the same "
         f"again at once (index in the page cache); then, for comparison, what a scan of the tree costs: "
         f"`find CACHE_DIR -type f | wc -l` with the page cache dropped. Seconds; median / max over the runs.", ""]
    mm = lambda vals: f"{f2(median(vals))} / {f2(max([v for v in vals if v is not None], default=None))}"
    L.append("| start | mount returns (exec → return) | first file read | first stats answer | stats reports "
             f"{n:,} objects | objects at first answer | daemon CPU s by then | daemon RSS after start | "
             f"clean stop (unmount → exit) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for state in ("cold", "warm"):
        xs = [run[state] for run in runs if state in run]
        if not xs:
            continue
        objs = sorted({x.get("objects_at_first_stats") for x in xs}, key=lambda v: (v is None, v))
        L.append(f"| {state.upper()} | {mm([x.get('mount_s') for x in xs])} | {mm([x.get('first_read_s') for x in xs])} | "
                 f"{mm([x.get('stats_first_s') for x in xs])} | {mm([x.get('stats_objects_s') for x in xs])} | "
                 f"{', '.join(f'{o:,}' if isinstance(o, int) else str(o) for o in objs)} | "
                 f"{mm([x.get('daemon_cpu_s') for x in xs])} | {f1(median([x.get('daemon_rss_mib') for x in xs]))} MiB | {mm([x.get('stop_s') for x in xs])} |")
    fs = [run["find"] for run in runs if "find" in run]
    counts = sorted({f.get("count") for f in fs}, key=lambda v: (v is None, v))
    L.append(f"| scan: `find CACHE_DIR -type f \\| wc -l`, page cache dropped | {mm([f.get('secs') for f in fs])} | "
             f"– | – | – | {', '.join(f'{c:,}' if isinstance(c, int) else str(c) for c in counts)} files | – | – | – |")
    fs2 = [run["find_stat"] for run in runs if "find_stat" in run]
    if fs2:
        L.append(f"| scan with a stat of each file (`find … -printf '%b\\n'`), page cache dropped | "
                 f"{mm([f.get('secs') for f in fs2])} | – | – | – | – | – | – | – |")
    L.append("")
    allm = [run[s].get("mount_s") for run in runs for s in ("cold", "warm") if s in run]
    allo = [run[s].get("stats_objects_s") for run in runs for s in ("cold", "warm") if s in run]
    worst_m = max([v for v in allm if v is not None], default=None)
    worst_o = None if (not allo or None in allo) else max(allo)
    cleans = [run[s].get("clean_after") for run in runs for s in ("cold", "warm") if s in run]
    L.append(f"Worst time until the mount answers, over all {len(allm)} timed starts: **{f2(worst_m)} s** — "
             f"goal < 2 s: {pf(worst_m is not None and worst_m < 2)}. Worst time until `cachefusectl stats` "
             f"reports all {n:,} objects: **{f2(worst_o)} s** ({pf(worst_o is not None and worst_o < 2)} against the "
             f"same 2 s). `index/CLEAN` present after the fill's clean unmount: "
             f"{'yes' if info.get('clean_after_fill') else '**no**'}; after each timed start's clean unmount: "
             f"{sum(1 for c in cleans if c)} of {len(cleans)}.")
    L.append("")
    if u:
        L.append(f"**After an unclean stop** (a mount started, `kill -9` of its daemon, `umount -l`; page cache "
                 f"dropped; then a new mount while the reconcile scan runs in the background; times from the exec):")
        L.append("")
        L.append("| | |")
        L.append("|---|---|")
        L.append(f"| `index/CLEAN` after the kill (expected: absent) | {'present' if u.get('clean_after_kill') else 'absent'} |")
        L.append(f"| mount returns (exec → return) | **{f2(u.get('mount_s'))} s** — goal < 2 s: "
                 f"{pf(u.get('mount_s') is not None and u['mount_s'] < 2)} |")
        L.append(f"| first file read done | {f2(u.get('first_read_s'))} s |")
        L.append(f"| first `cachefusectl stats` answer | {f2(u.get('stats_first_s'))} s, cache.objects "
                 f"{u.get('objects_at_first_stats')} |")
        L.append(f"| 100 files read through the mount during the scan: slowest read, content | "
                 f"{f1(u['sample_read_max_s'] * 1000 if u.get('sample_read_max_s') is not None else None)} ms, "
                 f"{'ok' if not u.get('sample_bad') else u.get('sample_bad')}; "
                 f"{u.get('sample_backend_bytes')} bytes from the source |")
        L.append(f"| cache.objects settled at | {u.get('objects_final')} from {f2(u.get('objects_settled_s'))} s "
                 f"(unchanged since, daemon idle) |")
        busy = u.get("daemon_busy_until_s")
        L.append(f"| daemon busy (≥ 0.05 CPU s in a 1 s window) until | "
                 + (f"{f2(busy)} s" if busy is not None else "never after the first reads")
                 + f" (its CPU time in all: {f2(u.get('daemon_cpu_total_s'))} s) |")
        L.append(f"| `index/CLEAN` after the clean unmount that followed | "
                 f"{'present' if u.get('clean_after_reconcile') else '**absent**'} |")
        af = u.get("after", {})
        if af:
            L.append(f"| a clean start after that: mount returns / objects / stats reports all | "
                     f"{f2(af.get('mount_s'))} s / {af.get('objects_at_first_stats')} / {f2(af.get('stats_objects_s'))} s; "
                     f"100 files read back: {'ok' if not af.get('sample_bad') else af.get('sample_bad')}, "
                     f"{af.get('sample_backend_bytes')} bytes from the source |")
        L.append("")
        tl = u.get("timeline") or []
        if tl:
            L.append("<details><summary>cache.objects / cache.bytes_used / daemon CPU s after the unclean stop "
                     "(each change)</summary>")
            L.append("")
            L.append("| s after exec | cache.objects | cache.bytes_used | daemon CPU s |")
            L.append("|---|---|---|---|")
            for t, o, bu, c in tl[:60]:
                L.append(f"| {f2(t)} | {o} | {bu} | {f2(c)} |")
            L += ["", "</details>", ""]
    fst = info.get("fill_stats", {})
    idx = info.get("index_after_fill", {})
    if info.get("fill_throttle"):
        L.append(f"Fill pacing: cachefuse keeps the backing file of every cache object it wrote open until the "
                 f"object is synced and has been idle for 2 s. When files are read faster than the daemon syncs and "
                 f"closes them, it runs out of descriptors and the reader's open() fails with EMFILE (`Too many open "
                 f"files`). So the fill pauses its readers while the daemon holds more than "
                 f"{info['fill_throttle'][0]:,} open files (its RLIMIT_NOFILE is {info.get('daemon_fd_limit'):,}) "
                 f"until it is down to {info['fill_throttle'][1]:,}. In this run the readers paused "
                 f"{f1(info.get('fill_paused_s'))} s in all; the daemon's open files peaked at "
                 f"{info.get('fill_fd_max'):,}. This shapes only the set-up, not the timed starts.")
        L.append("")
    L.append(f"Set-up figures: source tree written in {f1(info.get('make_tree_s'))} s; fill read "
             f"{f1(info.get('fill_read_s'))} s ({f0(info.get('fill_files_per_s'))} files/s); cache.objects reached "
             f"{fst.get('cache.objects')} {f1(info.get('fill_objects_wait_s'))} s after the last read "
             f"(cache.bytes_used {fst.get('cache.bytes_used')}, cache.errors {fst.get('cache.errors')}); content of "
             f"200 files read through the mount: {info.get('verify_fill')}; the clean stop right after the fill "
             f"(`fusermount3 -u` until the daemon exits; it persists the objects it has not flushed yet) took "
             f"**{f2(info.get('clean_stop_s'))} s**; cache dir: {info.get('cache_data_objects')} data objects, "
             f"{info.get('cache_files')} regular files; `index/`: "
             + ", ".join(f"`{k}` {v:,} B" if isinstance(v, int) else f"{k} {v}" for k, v in idx.items())
             + f". Removing the {2 * n:,} files took {f1(info.get('cleanup_s'))} s.")
    L.append("")
    L.append("<details><summary>Per-run seconds (f = page reporting moved a lot during the start)</summary>")
    L.append("")
    L.append("| run | start | mount returns | first read | first stats | all objects | daemon CPU s | RSS MiB | stop | "
             "find / with stat |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for i, run in enumerate(runs):
        for s in ("cold", "warm"):
            if s in run:
                x = run[s]
                L.append(f"| {i + 1} | {s} | {x.get('mount_s', 0):.3f}{' f' if x.get('flagged') else ''} | "
                         f"{f2(x.get('first_read_s'))} | {f2(x.get('stats_first_s'))} | {f2(x.get('stats_objects_s'))} | "
                         f"{f2(x.get('daemon_cpu_s'))} | {f1(x.get('daemon_rss_mib'))} | {f2(x.get('stop_s'))} | "
                         + (f"{f2(run.get('find', {}).get('secs'))} / {f2(run.get('find_stat', {}).get('secs'))}"
                            if s == 'cold' else '') + " |")
    L += ["", "</details>", ""]
    return L


RENDER = {"seq": ("seq — sequential 1 MiB reads: raw, mergerfs, rclone, cachefuse", render_seq),
          "warmdisk": ("warmdisk — warm-disk read through the mount vs fio direct=1 on the cache", render_warmdisk),
          "readahead": ("readahead — cold read over a slow source, read-ahead on vs off", render_readahead),
          "rss": ("rss — daemon memory and CPU while reading a large file", render_rss),
          "concurrent": ("concurrent — 8 readers of one cold file", render_concurrent),
          "startup": ("startup — a new mount over a cache of many objects", render_startup)}


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
         "bench/run.sh --jobs startup --startup-files 100000 --runs 5   # mount start over 100k cached objects",
         "bench/run.sh --jobs seq --baseline-bin-dir OLD/build/bin --baseline-label COMMIT \\",
         "    --setups raw,cachefuse,cachefuse-baseline   # new binary vs an older build, side by side",
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
    ap.add_argument("--startup-files", type=int, default=None,
                    help="startup job: files in the source tree and objects in the cache (default 100000)")
    ap.add_argument("--startup-file-size", type=parse_size, default=4096,
                    help="startup job: size of each file (default 4K)")
    ap.add_argument("--startup-threads", type=int, default=2, help="startup job: reader threads for the fill (default 2)")
    ap.add_argument("--startup-fd-throttle", type=int, default=1,
                    help="startup job: 1 = pause the fill while the daemon holds > 70%% of its RLIMIT_NOFILE "
                         "open files, 0 = read flat out (default 1)")
    ap.add_argument("--startup-wait", type=float, default=300,
                    help="startup job: seconds to wait after the fill for cache.objects to reach the file count (default 300)")
    ap.add_argument("--startup-objects-timeout", type=float, default=30,
                    help="startup job: seconds a timed start may take until stats report every object (default 30)")
    ap.add_argument("--startup-stop-timeout", type=float, default=900,
                    help="startup job: seconds the daemon may take to exit after the fill's unmount (default 900)")
    ap.add_argument("--startup-reconcile-timeout", type=float, default=300,
                    help="startup job: seconds to wait for the count to settle after an unclean stop (default 300)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: small sizes, 1 run, short settling; results go to the work dir, not docs/")
    ap.add_argument("--workdir", default="/var/tmp/cachefuse-bench", help="where all data, caches and mounts live")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"), help="where cachefuse and cachefusectl are")
    ap.add_argument("--baseline-bin-dir", default=None,
                    help=f"also run the cachefuse and cachefusectl of this directory (an older build) as setup "
                         f"{BASELINE} in the seq job (and as uring-baseline/sync-baseline in warmdisk): the same "
                         f"options, data and steps, interleaved in the same runs; the report gives new / baseline")
    ap.add_argument("--baseline-label", default="baseline",
                    help="name of the baseline in the report, e.g. a commit (default: baseline)")
    ap.add_argument("--setups", default=None,
                    help=f"seq job only: comma-separated setups to run, of {','.join(SEQ_ALL_SETUPS)} "
                         f"(default: all; {BASELINE} only with --baseline-bin-dir)")
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
    a.startup_runs = a.runs or (1 if q else 5)  # --runs applies; this job defaults to 5 runs
    a.startup_files = a.startup_files or (2000 if q else 100000)
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
    known = SEQ_SETUPS + ([BASELINE] if a.baseline_bin_dir else [])
    if a.setups is None:
        a.seq_setups = known
    else:
        want = [x.strip() for x in a.setups.split(",") if x.strip()]
        bad = [x for x in want if x not in known]
        if bad:
            ap.error(f"unknown setup(s) {bad} for --setups; known: {known}"
                     + (f" ({BASELINE} needs --baseline-bin-dir)" if BASELINE in bad else ""))
        if not want:
            ap.error("--setups: no setup given")
        a.seq_setups = [x for x in known if x in want]  # the usual order; runs rotate it
    if a.baseline_bin_dir and not os.path.isdir(a.baseline_bin_dir):
        ap.error(f"--baseline-bin-dir {a.baseline_bin_dir}: not a directory")
    if os.geteuid() != 0:
        ap.error("must run as root (drop_caches, FUSE mounts)")
    seq_tools = tuple(t for t in ("rclone", "mergerfs") if t in a.seq_setups) if "seq" in jobs else ()
    for tool in ("fio", "fusermount3", "dd") + seq_tools:
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
        need = (a.size if {"seq", "warmdisk"} & set(jobs) else 0) * \
               (5 if "warmdisk" in jobs and a.baseline_bin_dir else 3) + \
               (a.rss_size * 2 if "rss" in jobs else 0) + (max(a.ra_size, a.conc_size) * 3) + \
               (2 * a.startup_files * (max(a.startup_file_size, 4096) + 4096) if "startup" in jobs else 0)
        b.disk_check(need)
        facts = machine_facts(b)
        log(f"work dir {b.rundir}; jobs {jobs}; cachefuse {facts.get('commit')}")
        for j in jobs:
            log(f"=== job {j} ===")
            b.commands = {}
            b.notes = []
            rep0 = read_reported_kib()
            load0 = loadavg()
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
            res["loadavg_start"] = load0
            res["invocation"] = invocation
            res["commands"] = b.commands
            res["notes"] = b.notes
            res["report_warn_mib"] = a.report_warn_mib
            res["page_reporting"] = dict(summarize_reporting(res), start_kib=rep0, end_kib=read_reported_kib())
            res["duration_s"] = round(time.monotonic() - t0, 1)
            res["loadavg_end"] = loadavg()
            done[j] = res
            log(f"job {j} took {res['duration_s']:.0f} s")
    except Interrupted as e:
        interrupted = str(e)
        log(f"interrupted by {interrupted}; cleaning up")
    finally:
        b.cleanup()
    if done:
        if os.path.exists(a.results):  # merge into what is there now, not what was there when we started
            try:
                with open(a.results) as f:
                    results = json.load(f)
            except (OSError, ValueError) as e:
                log(f"cannot re-read {a.results} ({e}); merging into the copy read at start")
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
