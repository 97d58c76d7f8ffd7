"""Issue 6: the FUSE surface beyond parity: mount(8)/fstab, systemd readiness,
coherency while files are open, our own xattrs, the control tool, config files."""
import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, CACHEFUSE, CTL, REPO, Mount, daemon_pids, drop_caches, mounted

GRANULE = 256 * 1024


def ensure_installed():
    """mount.fuse3 finds `cachefuse` on PATH: link the build there."""
    link = "/usr/local/bin/cachefuse"
    if os.path.realpath(link) != os.path.realpath(CACHEFUSE):
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(CACHEFUSE, link)


def wait_gone(pids, timeout=30):
    deadline = time.time() + timeout
    while any(os.path.exists(f"/proc/{p}") for p in pids):
        assert time.time() < deadline, f"daemon {pids} did not exit"
        time.sleep(0.05)


def test_mount_t_fuse_cachefuse_and_umount(mount):
    ensure_installed()
    with open(os.path.join(mount.src, "f"), "wb") as f:
        f.write(b"via mount(8)")
    r = subprocess.run(["mount", "-t", "fuse.cachefuse", mount.src, mount.mnt, "-o",
                        f"cache_dir={mount.cache},nosuid,nodev"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert open(mount.path("f"), "rb").read() == b"via mount(8)"
    pids = daemon_pids(mount.mnt)
    assert pids
    assert subprocess.run(["umount", mount.mnt]).returncode == 0
    wait_gone(pids)
    assert not mounted(mount.mnt)


def test_fstab_line(mount, work):
    ensure_installed()
    fstab = os.path.join(work, "fstab")
    with open(fstab, "w") as f:
        f.write(f"{mount.src} {mount.mnt} fuse.cachefuse cache_dir={mount.cache},allow_other,_netdev,nofail 0 0\n")
    with open(os.path.join(mount.src, "f"), "wb") as f:
        f.write(b"fstab")
    r = subprocess.run(["mount", "--fstab", fstab, mount.mnt], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert open(mount.path("f"), "rb").read() == b"fstab"
    opts = [l.split()[3] for l in open("/proc/mounts") if l.split()[1] == mount.mnt][0]
    assert "allow_other" in opts and "default_permissions" in opts


def test_foreground_umount_exits_zero(mount):
    p = subprocess.Popen([CACHEFUSE, mount.src, mount.mnt, "-f", "-o", mount.options()],
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    while not mounted(mount.mnt):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.05)
    subprocess.run(["umount", mount.mnt], check=True)
    assert p.wait(timeout=30) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_systemd_ready_after_mount_answers_and_clean_stop(mount, work, sig):
    with open(os.path.join(mount.src, "f"), "wb") as f:
        f.write(b"ready")
    sock_path = os.path.join(work, "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    p = subprocess.Popen([CACHEFUSE, mount.src, mount.mnt, "-f", "-o", mount.options()], env=env,
                         stderr=subprocess.PIPE, text=True)
    try:
        msg = srv.recv(4096).decode()
        assert "READY=1" in msg
        # At READY the mount must already answer.
        assert mounted(mount.mnt)
        assert open(mount.path("f"), "rb").read() == b"ready"
        p.send_signal(sig)
        msgs = srv.recv(4096).decode()
        assert "STOPPING=1" in msgs
        assert p.wait(timeout=30) == 0
        assert not mounted(mount.mnt)
        # The cache state was persisted on the way out: a remount reads from cache.
        mount.start()
        assert open(mount.path("f"), "rb").read() == b"ready"
        assert mount.stats()["bytes.from_backend"] == 0
    finally:
        if p.poll() is None:
            p.kill()
        srv.close()


def test_stop_signals_always_end_the_daemon(mount):
    # Whichever thread the kernel picks, SIGTERM/SIGINT/SIGHUP must end the loop
    # at once, not at the next request.
    open(os.path.join(mount.src, "f"), "w").write("x")
    for i in range(15):
        sig = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)[i % 3]
        p = subprocess.Popen([CACHEFUSE, mount.src, mount.mnt, "-f", "-o", mount.options()],
                             stderr=subprocess.DEVNULL,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 10
        while not mounted(mount.mnt):
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.01)
        assert open(mount.path("f")).read() == "x"
        p.send_signal(sig)
        try:
            assert p.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            os.listdir(mount.mnt)  # a request wakes the loop; the test has failed anyway
            p.wait(timeout=10)
            pytest.fail(f"round {i}: {sig.name} did not stop the daemon")
        assert not mounted(mount.mnt)


def test_systemd_units_verify(work):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze")
    d = os.path.join(work, "units")
    os.mkdir(d)
    unit = open(os.path.join(REPO, "systemd", "cachefuse@.service")).read()
    assert "Type=notify" in unit
    with open(os.path.join(d, "cachefuse@.service"), "w") as f:
        f.write(unit.replace("/usr/local/bin/cachefuse", CACHEFUSE))
    os.symlink("cachefuse@.service", os.path.join(d, "cachefuse@demo.service"))
    shutil.copy(os.path.join(REPO, "systemd", "srv-data.mount"), d)
    for name in ("cachefuse@demo.service", "srv-data.mount"):
        r = subprocess.run(["systemd-analyze", "verify", name], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0, f"{name}: {r.stderr}"
    # The check itself can fail: a unit with a missing program does not verify.
    with open(os.path.join(d, "cachefuse@.service"), "w") as f:
        f.write(unit.replace("/usr/local/bin/cachefuse", "/nonexistent/cachefuse"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "cachefuse@demo.service"], cwd=d,
                       capture_output=True, text=True)
    assert r.returncode != 0


def test_write_at_offset_inside_cached_file(mount):
    src = os.path.join(mount.src, "f")
    data = bytearray(os.urandom(4 * GRANULE + 100))
    open(src, "wb").write(data)
    mount.start("attr_timeout=0.3,entry_timeout=0.3")
    assert open(mount.path("f"), "rb").read() == data
    mount.wait_cached(len(data))
    patch = os.urandom(5000)
    off = GRANULE - 1000  # straddles two granules
    with open(mount.path("f"), "r+b") as f:
        f.seek(off)
        f.write(patch)
    data[off:off + len(patch)] = patch
    assert open(src, "rb").read() == data
    assert open(mount.path("f"), "rb").read() == data  # at once
    time.sleep(0.5)
    drop_caches()
    assert open(mount.path("f"), "rb").read() == data  # after attr_timeout
    mount.stop()
    mount.start()
    drop_caches()
    assert open(mount.path("f"), "rb").read() == data  # after a remount
    s = mount.stats()
    assert s["bytes.from_cache"] > 0  # the untouched granules are still cached


def test_replaced_on_source_while_open_never_mixes(mount):
    """Readers open and read a 6-granule file whose granules all carry one version
    byte, while the file is replaced on the source again and again."""
    n = 6 * GRANULE
    src = os.path.join(mount.src, "f")

    def version(v):
        tmp = src + ".tmp"
        with open(tmp, "wb") as f:
            f.write(bytes([v]) * n)
        os.rename(tmp, src)

    version(0)
    mount.start()
    held = open(mount.path("f"), "rb")
    held.read(GRANULE)  # an open handle on version 0
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            try:
                with open(mount.path("f"), "rb") as f:
                    buf = f.read()
            except OSError as e:
                errors.append(e)
                continue
            if len(buf) != n or buf.count(buf[0]) != n:
                errors.append(sorted(set(buf)))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for v in range(1, 30):
        version(v)
        time.sleep(0.05)
        # The next open after a replacement sees the new version.
        with open(mount.path("f"), "rb") as f:
            first = f.read(1)
        assert first == bytes([v])
    stop.set()
    for t in threads:
        t.join()
    # The handle opened on version 0 reads version 0 to the end.
    rest = held.read()
    held.close()
    assert rest == bytes([0]) * (n - GRANULE)
    assert not errors, errors[:3]


def test_our_xattrs(mount):
    src = os.path.join(mount.src, "f")
    open(src, "wb").write(os.urandom(3 * GRANULE))
    mount.start()
    f = mount.path("f")
    assert os.getxattr(f, "user.cachefuse.cached") == b"none"
    with open(f, "rb") as h:
        h.seek(GRANULE)
        h.read(10)
    mount.wait_cached(GRANULE)
    ranges = os.getxattr(f, "user.cachefuse.cached").decode()
    assert f"{GRANULE}-{2 * GRANULE}" in ranges
    for call in (lambda: os.setxattr(f, "user.cachefuse.cached", b"x"),
                 lambda: os.setxattr(f, "user.cachefuse.other", b"x"),
                 lambda: os.removexattr(f, "user.cachefuse.cached")):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EPERM
    os.setxattr(f, "user.note", b"passed through")
    assert os.getxattr(src, "user.note") == b"passed through"
    assert os.getxattr(f, "user.note") == b"passed through"
    assert "user.note" in os.listxattr(f)
    assert not any(n.startswith("user.cachefuse.") for n in os.listxattr(f))
    # A file cached by an earlier mount shows its ranges before any open.
    mount.stop()
    mount.start()
    assert f"{GRANULE}-{2 * GRANULE}" in os.getxattr(f, "user.cachefuse.cached").decode()
    assert mount.stats()["bytes.from_backend"] == 0


def test_cachefusectl_commands(mount):
    src = os.path.join(mount.src, "f")
    open(src, "wb").write(os.urandom(2 * GRANULE))
    mount.start()
    open(mount.path("f"), "rb").read()
    mount.wait_cached(2 * GRANULE)
    st = mount.status()
    for key in ("cache_dir", "cache.state", "io.engine", "cache.bytes_used", "pid"):
        assert key in st
    assert st["cache_dir"] == mount.cache
    assert "cache_dir" in mount.ctl("status", mount.mnt).stdout
    # forget: the cached data goes, the next read comes from the source.
    mount.ctl("forget", mount.path("f"))
    assert os.getxattr(mount.path("f"), "user.cachefuse.cached") == b"none"
    before = mount.stats()["bytes.from_backend"]
    drop_caches()
    open(mount.path("f"), "rb").read()
    assert mount.stats()["bytes.from_backend"] >= before + 2 * GRANULE
    # invalidate: also drops the kernel's page cache of the file.
    mount.wait_cached(4 * GRANULE)
    open(mount.path("f"), "rb").read()  # page cache hot now
    before = mount.stats()["bytes.from_backend"]
    mount.ctl("invalidate", mount.path("f"))
    time.sleep(0.2)
    open(mount.path("f"), "rb").read()
    assert mount.stats()["bytes.from_backend"] >= before + 2 * GRANULE
    mount.ctl("cull", mount.mnt)
    # Errors: one line, non-zero.
    r = mount.ctl("stats", "/tmp", check=False)
    assert r.returncode != 0 and "not on a cachefuse mount" in r.stderr
    r = mount.ctl("forget", mount.mnt, check=False)
    assert r.returncode != 0
    # Only root and the mount's owner may use the control socket.
    sock = os.getxattr(mount.mnt, "user.cachefuse.control").decode()
    assert os.stat(sock).st_mode & 0o077 == 0
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CTL, "stats", mount.mnt],
                       capture_output=True, text=True)
    assert r.returncode != 0


def test_config_file_sets_every_option(mount, work):
    conf = open(os.path.join(REPO, "conf", "cachefuse.conf")).read()
    # Uncomment every option line of the example.
    lines = []
    for line in conf.splitlines():
        if line.startswith("#") and " = " in line and not line.startswith("# "):
            line = line[1:]
        lines.append(line)
    text = "\n".join(lines).replace('"/var/cache/cachefuse"', f'"{mount.cache}"')
    set_keys = [l.split(" = ")[0] for l in lines if " = " in l and not l.startswith("#")]
    assert len(set_keys) >= 15, set_keys
    path = os.path.join(work, "all.conf")
    open(path, "w").write(text)
    open(os.path.join(mount.src, "f"), "wb").write(b"configured")
    r = subprocess.run([CACHEFUSE, mount.src, mount.mnt, "-o", f"config={path}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert open(mount.path("f"), "rb").read() == b"configured"
    assert mount.status()["cache_dir"] == mount.cache
    mount.stop()
    bad = os.path.join(work, "bad.conf")
    open(bad, "w").write('granule = "256k"\nspeed = "fast"\n')
    r = subprocess.run([CACHEFUSE, mount.src, mount.mnt, "-o", f"config={bad}"], capture_output=True, text=True)
    assert r.returncode != 0 and "bad.conf:2" in r.stderr and "speed" in r.stderr
    open(bad, "w").write('readahead = "lots"\n')
    r = subprocess.run([CACHEFUSE, mount.src, mount.mnt, "-o", f"config={bad}"], capture_output=True, text=True)
    assert r.returncode != 0 and "readahead" in r.stderr
    assert not mounted(mount.mnt)


def test_allow_other_with_default_permissions(mount, work):
    os.chmod(work, 0o755)  # mkdtemp makes it 0700: other users could not reach the mount
    open(os.path.join(mount.src, "pub"), "wb").write(b"public")
    os.chmod(os.path.join(mount.src, "pub"), 0o644)
    mount.start("allow_other")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = subprocess.run(as_nobody + ["cat", mount.path("pub")], capture_output=True)
    assert r.returncode == 0 and r.stdout == b"public"
    r = subprocess.run(as_nobody + ["sh", "-c", f"echo x >> {mount.path('pub')}"], capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = subprocess.run(as_nobody + ["touch", mount.path("new")], capture_output=True, text=True)
    assert r.returncode != 0
    # A directory the user owns: files made there belong to the user on the source.
    os.mkdir(os.path.join(mount.src, "home"))
    os.chown(os.path.join(mount.src, "home"), 65534, 65534)
    r = subprocess.run(as_nobody + ["sh", "-c", f"echo mine > {mount.path('home/x')}"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    st = os.stat(os.path.join(mount.src, "home", "x"))
    assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_inode_numbers_and_statfs_are_the_sources(mount):
    os.makedirs(os.path.join(mount.src, "d"))
    open(os.path.join(mount.src, "d", "f"), "wb").write(b"x")
    mount.start()
    ino = os.stat(mount.path("d/f")).st_ino
    assert ino == os.stat(os.path.join(mount.src, "d", "f")).st_ino
    drop_caches()  # the kernel forgets the inode; the number stays
    assert os.stat(mount.path("d/f")).st_ino == ino
    a, b = os.statvfs(mount.mnt), os.statvfs(mount.src)
    assert (a.f_bsize, a.f_blocks, a.f_namemax) == (b.f_bsize, b.f_blocks, b.f_namemax)


def test_device_nodes_refused_fifos_allowed(mount):
    mount.start()
    os.mkfifo(mount.path("fifo"))
    assert os.path.exists(os.path.join(mount.src, "fifo"))
    with pytest.raises(OSError) as e:
        os.mknod(mount.path("dev"), 0o600 | 0o020000, os.makedev(1, 3))
    assert e.value.errno == errno.EPERM


def test_read_only_mount(mount):
    open(os.path.join(mount.src, "f"), "wb").write(b"ro")
    mount.start("ro")
    assert open(mount.path("f"), "rb").read() == b"ro"
    for call in (lambda: open(mount.path("f"), "wb"), lambda: os.mkdir(mount.path("d")),
                 lambda: os.unlink(mount.path("f"))):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EROFS


def test_stop_with_files_open_leaves_a_clean_cache(mount):
    """A daemon stopped while a file is open for writing must still finish its
    use of the cache: DIRTY cleared, map persisted, nothing discarded later."""
    data = bytearray(os.urandom(4 * GRANULE))
    open(os.path.join(mount.src, "f"), "wb").write(data)
    p = subprocess.Popen([CACHEFUSE, mount.src, mount.mnt, "-f", "-o", mount.options()], stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 20
    while not mounted(mount.mnt):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.05)
    assert open(mount.path("f"), "rb").read() == data
    mount.wait_cached(len(data))
    held = open(mount.path("f"), "r+b")
    held.seek(10)
    held.write(b"changed")
    held.flush()
    data[10:17] = b"changed"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0
    try:
        held.close()
    except OSError:
        pass  # the mount is gone
    subprocess.run(["umount", "-l", mount.mnt], capture_output=True)
    mount.start()
    assert open(mount.path("f"), "rb").read() == data
    s = mount.stats()
    assert s["objects.discarded"] == 0, s  # not found DIRTY
    assert s["bytes.from_cache"] >= 3 * GRANULE  # the untouched granules survived
