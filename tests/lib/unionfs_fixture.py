# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared fixtures for the sandbox-unionfs integration tests (tests/integration/test_unionfs_*.py).

What it does: per-test temp areas under /tmp with unique names, mounting and unmounting the union under
test (sandbox-unionfs, or any binary with the same command line such as fuse-overlayfs, taken from
$SANDBOX_UNIONFS) and kernel overlayfs as an oracle, small syscall helpers the stdlib lacks (getdents64,
fallocate, fcntl locks), forked helpers that run code under other credentials, and a tiny TAP-ish runner.

What it does not do: mock anything. Every test runs against real mounts as root. Nothing here touches
paths outside the temp areas it created, and it only kills processes it started itself.

Contract (see STYLE.md): exit 0 all passed, 1 some failed, 77 skipped (not root, no /dev/fuse, no
binary) unless SBX_TESTS_MUST_RUN=1, which turns a skip into a failure.
"""

import ctypes
import errno
import inspect
import os
import pickle
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from ovltest import unescape_mountinfo  # noqa: E402 - tests/lib is on sys.path

DEFAULT_BINARY = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "unionfs", "sandbox-unionfs"))
KERNEL_OVL_OPTS = "redirect_dir=on,index=off,metacopy=off,xino=off"
TEST_TIMEOUT = int(os.environ.get("SBX_UNIONFS_TEST_TIMEOUT", "90"))
MOUNT_TIMEOUT = 10.0


class Skip(Exception):
    """Raised by a test (or by the runner's prerequisite checks) to skip."""


class MountError(Exception):
    pass


class TestTimeout(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# the binary under test

def binary():
    """Path of the union filesystem under test: $SANDBOX_UNIONFS, else the lead's build output."""
    b = os.environ.get("SANDBOX_UNIONFS") or DEFAULT_BINARY
    return os.path.abspath(b)


def binary_name():
    return os.path.basename(os.path.realpath(binary()))


def is_fuse_overlayfs():
    return binary_name() == "fuse-overlayfs"


def prerequisites():
    """Returns None when the tests can run, else a reason to skip."""
    if os.geteuid() != 0:
        return "not root"
    try:
        with open("/proc/self/uid_map") as f:
            if f.read().split() != ["0", "0", "4294967295"]:
                return "in a user namespace: needs real root (trusted.* xattrs, kernel overlayfs, mknod)"
    except OSError:
        pass
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
    except OSError as e:
        return f"cannot open /dev/fuse: {e}"
    if not os.access(binary(), os.X_OK):
        return f"no union binary at {binary()} (set SANDBOX_UNIONFS)"
    if shutil.which("fusermount3") is None and shutil.which("umount") is None:
        return "no umount"
    return None


# --------------------------------------------------------------------------------------------------
# mount table

def mounts():
    """List of (mountpoint, fstype, source, super_options) from /proc/self/mountinfo."""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            res.append((unescape_mountinfo(parts[4]), parts[sep + 1], unescape_mountinfo(parts[sep + 2]),
                        parts[sep + 3] if len(parts) > sep + 3 else ""))
    return res


def mount_entry(path):
    """The topmost mount entry at exactly path, or None."""
    path = os.path.realpath(path)
    found = None
    for m in mounts():
        if m[0] == path:
            found = m
    return found


def _mount_minor(path):
    """The minor device number of the mount at path, read from mountinfo (no syscall into the mount,
    so it works while the server hangs): the FUSE connection id in fusectl."""
    path = os.path.realpath(path)
    minor = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if unescape_mountinfo(parts[4]) == path:
                minor = int(parts[2].split(":")[1])
    return minor


def is_mounted(path):
    return mount_entry(path) is not None


def processes_mentioning(s):
    """pids (other than ours) whose command line contains s: used to find leftover servers."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if s.encode() in cmd:
            pids.append(int(p))
    return pids


def umount(path, lazy_fallback=True):
    """Unmount path; retries briefly when busy, finally detaches lazily."""
    for _ in range(50):
        if not is_mounted(path):
            return
        r = subprocess.run(["umount", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode == 0:
            continue
        time.sleep(0.1)
    if is_mounted(path) and lazy_fallback:
        subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------------------------------
# per-test temp area

class Env:
    """A unique temp dir under /tmp (ext4 here). cleanup() unmounts everything below it, kills the
    processes this test started and removes it."""

    def __init__(self, tag):
        self.root = tempfile.mkdtemp(prefix=f"sbx-ufs-{tag}-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.mounts = []  # objects with .cleanup()
        self.children = []  # pids we forked / spawned
        self.timed_out = False

    def path(self, *p):
        return os.path.join(self.root, *p)

    def mkdir(self, *p, mode=0o755):
        d = self.path(*p)
        os.makedirs(d, exist_ok=True)
        os.chmod(d, mode)
        return d

    def mount_tmpfs(self, name, size="64m"):
        d = self.mkdir(name)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", d], check=True)
        self.mounts.append(_Tmpfs(d))
        return d

    def union(self, lowers, upper=None, work=None, mnt=None, opts=None, **kw):
        m = Union(self, lowers, upper, work, mnt, opts, **kw)
        self.mounts.append(m)
        return m

    def kernel_overlay(self, lowers, upper=None, work=None, mnt=None, opts=None):
        m = KernelOverlay(self, lowers, upper, work, mnt, opts)
        self.mounts.append(m)
        return m

    def timeout_expired(self, limit):
        self.timed_out = True
        print(f"# watchdog: test still running after {limit}s", file=sys.stderr)
        self.abort_fuse()
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def abort_fuse(self):
        """Aborts the FUSE connections of this test's unions (a hung server would otherwise block the
        test in an unkillable wait): mounts fusectl inside our temp dir and writes its abort files."""
        conns = [m.conn for m in self.mounts if isinstance(m, Union) and m.proc is not None and m.conn]
        if not conns:
            return
        ctl = os.path.join(self.root, "fusectl")
        if not is_mounted(ctl):
            os.makedirs(ctl, exist_ok=True)
            if subprocess.run(["mount", "-t", "fusectl", "fusectl", ctl]).returncode != 0:
                return
            self.mounts.append(_Tmpfs(ctl))
        for c in conns:
            try:
                with open(os.path.join(ctl, str(c), "abort"), "w") as f:
                    f.write("1")
                print(f"# aborted FUSE connection {c}", file=sys.stderr)
            except OSError:
                pass

    def cleanup(self):
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        for m in reversed(self.mounts):
            try:
                m.cleanup()
            except Exception:
                traceback.print_exc(file=sys.stderr)
        # anything still mounted below our root (deepest first)
        leftovers = sorted({m[0] for m in mounts() if m[0].startswith(self.root + "/")}, key=len, reverse=True)
        for mp in leftovers:
            umount(mp)
        if any(m[0].startswith(self.root + "/") for m in mounts()):
            print(f"# warning: mounts left below {self.root}, not removing it", file=sys.stderr)
            return
        _rmtree(self.root)


def _rmtree(path):
    # chattr/immutable never used; dirs may be mode 000 after some tests
    def onerror(func, p, exc):
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755)
        except OSError:
            pass
        try:
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=onerror)


class _Tmpfs:
    def __init__(self, d):
        self.d = d

    def cleanup(self):
        umount(self.d)


class _MountBase:
    kind = "?"

    def p(self, *rel):
        return os.path.join(self.mnt, *rel)

    def remount(self):
        self.umount()
        self.mount()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.cleanup()

    def cleanup(self):
        self.umount()


class Union(_MountBase):
    """The union under test, run in the foreground (-f) as our child so its pid is known."""
    kind = "union"

    def __init__(self, env, lowers, upper=None, work=None, mnt=None, opts=None, mount=True, args_extra=None):
        self.env = env
        self.lowers = [lowers] if isinstance(lowers, str) else list(lowers)
        self.upper = upper
        self.work = work
        self.mnt = mnt or tempfile.mkdtemp(prefix="mnt-", dir=env.root)
        self.opts = list(opts or [])
        self.args_extra = list(args_extra or [])
        self.proc = None
        self.conn = None
        self.log = os.path.join(env.root, f"server-{os.path.basename(self.mnt)}.log")
        if mount:
            self.mount()

    def optstring(self):
        o = ["lowerdir=" + ":".join(self.lowers)]
        if self.upper:
            o.append("upperdir=" + self.upper)
        if self.work:
            o.append("workdir=" + self.work)
        return ",".join(o + self.opts)

    def mount(self):
        assert not is_mounted(self.mnt), f"{self.mnt} already mounted"
        logf = open(self.log, "ab")
        cmd = [binary(), "-f"] + self.args_extra + ["-o", self.optstring(), self.mnt]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     close_fds=True, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while time.monotonic() < deadline:
            if is_mounted(self.mnt):
                e = mount_entry(self.mnt)
                if e[1].startswith("fuse"):
                    self.conn = _mount_minor(self.mnt)
                    return
            if self.proc.poll() is not None:
                raise MountError(f"{cmd} exited {self.proc.returncode} before mounting: {self.server_log()}")
            time.sleep(0.01)
        self._kill()
        raise MountError(f"{cmd} did not mount within {MOUNT_TIMEOUT}s: {self.server_log()}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def server_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def server_log_full(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def umount(self):
        if self.proc is None:
            return
        umount(self.mnt)
        try:
            self.proc.wait(timeout=1 if self.env.timed_out else 10)
        except subprocess.TimeoutExpired:
            self._kill()
        self.proc = None

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class KernelOverlay(_MountBase):
    """Kernel overlayfs with the options sandbox-unionfs mimics; the oracle."""
    kind = "kernel"

    def __init__(self, env, lowers, upper=None, work=None, mnt=None, opts=None):
        self.env = env
        self.lowers = [lowers] if isinstance(lowers, str) else list(lowers)
        self.upper, self.work = upper, work
        self.mnt = mnt or tempfile.mkdtemp(prefix="kmnt-", dir=env.root)
        self.opts = opts if opts is not None else KERNEL_OVL_OPTS
        self.mounted = False
        self.mount()

    def mount(self):
        o = ["lowerdir=" + ":".join(self.lowers)]
        if self.upper:
            o += ["upperdir=" + self.upper, "workdir=" + self.work]
        if self.opts:
            o.append(self.opts)
        # The oracle's mount may fail for a moment for reasons outside this test: with index=on the
        # kernel refuses a layer while an ancestor directory is another overlay's upper or work
        # directory (other work on the machine). Try again briefly; then fail with what mount said.
        for attempt in range(5):
            r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", ",".join(o), self.mnt],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"mount -t overlay -o {','.join(o)} {self.mnt}: {r.stdout.strip()}")
        self.mounted = True

    def umount(self):
        if self.mounted:
            umount(self.mnt)
            self.mounted = False


def layout(env, name, nlowers=1, upper=True):
    """Creates name/{l0..l(n-1),upper,work,mnt} and returns a dict of the paths."""
    d = {"lowers": [env.mkdir(name, f"l{i}") for i in range(nlowers)]}
    if upper:
        d["upper"] = env.mkdir(name, "upper")
        d["work"] = env.mkdir(name, "work")
    d["mnt"] = env.mkdir(name, "mnt")
    return d


def pair(env, populate, nlowers=1, union_opts=None, kernel=True):
    """Builds two identical layer sets (populate(lowers, upper) fills each), mounts the union on one
    and kernel overlayfs on the other. Returns [union, kernel] (kernel omitted when kernel=False)."""
    res = []
    for kind in (["union", "kernel"] if kernel else ["union"]):
        lay = layout(env, kind, nlowers)
        populate(lay["lowers"], lay["upper"])
        if kind == "union":
            m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], union_opts)
        else:
            m = env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
        res.append(m)
    return res


# --------------------------------------------------------------------------------------------------
# file helpers

def write(path, data=b"", mode=0o644, uid=None, gid=None, mtime=None):
    if isinstance(data, str):
        data = data.encode()
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)
    if uid is not None or gid is not None:
        os.chown(path, uid if uid is not None else -1, gid if gid is not None else -1)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def errname(fn, *a, **kw):
    """Runs fn; returns 'OK' or the errno name of the OSError it raised."""
    try:
        fn(*a, **kw)
        return "OK"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def read_at(dir_fd, rel):
    fd = os.open(rel, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.read(fd, 1 << 20)
    finally:
        os.close(fd)


def value(fn, *a, **kw):
    """Runs fn; returns its result, or the errno name of the OSError it raised."""
    try:
        return fn(*a, **kw)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def create(path, mode=0o644, flags=os.O_CREAT | os.O_WRONLY, dir_fd=None):
    fd = os.open(path, flags | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    os.close(fd)


def is_whiteout(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


def tree(root):
    """Sorted list of relative paths below root (dirs get a trailing /)."""
    out = []
    for dp, dns, fns in os.walk(root):
        rel = os.path.relpath(dp, root)
        for n in dns:
            out.append(os.path.normpath(os.path.join(rel, n)) + "/")
        for n in fns:
            out.append(os.path.normpath(os.path.join(rel, n)))
    return sorted(out)


def snapshot(root):
    """{relpath: (mode, uid, gid, size, mtime_ns, content-or-linktarget, xattrs)} for a tree on disk;
    used to assert that a lower layer or an outside dir was not touched."""
    snap = {}
    for dp, dns, fns in os.walk(root):
        for n in [""] + dns + fns:
            p = os.path.join(dp, n) if n else dp
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                content = read(p)
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            else:
                content = None
            try:
                xs = {x: os.getxattr(p, x, follow_symlinks=False)
                      for x in os.listxattr(p, follow_symlinks=False)}
            except OSError:
                xs = None
            snap[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                               st.st_mtime_ns, content, xs)
    return snap


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
SYS_getdents64 = 217  # x86_64
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


def getdents(path):
    """Raw getdents64 of a directory: list of (d_ino, d_type, name) including . and .."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    out = []
    try:
        buf = ctypes.create_string_buffer(65536)
        while True:
            n = _libc.syscall(SYS_getdents64, fd, buf, len(buf))
            if n < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e), path)
            if n == 0:
                break
            off = 0
            raw = buf.raw[:n]
            while off < n:
                ino, _doff, reclen, dtype = struct.unpack_from("QqHB", raw, off)
                name = raw[off + 19:off + reclen].split(b"\0", 1)[0]
                out.append((ino, dtype, os.fsdecode(name)))
                off += reclen
    finally:
        os.close(fd)
    return out


def fallocate(fd, mode, offset, length):
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def flock_struct(ltype, start=0, length=0, whence=os.SEEK_SET, pid=0):
    return struct.pack("hhqqixxxx", ltype, whence, start, length, pid)


def flock_unpack(b):
    ltype, whence, start, length, pid = struct.unpack("hhqqixxxx", b)
    return {"type": ltype, "whence": whence, "start": start, "len": length, "pid": pid}


# --------------------------------------------------------------------------------------------------
# child processes

def fork_call(fn, *args, uid=None, gid=None, groups=None, umask=None, cwd=None, timeout=30):
    """Runs fn(*args) in a forked child (optionally with other credentials) and returns its result,
    or re-raises its exception here. Results must be picklable."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            if gid is not None:
                os.setgroups(groups if groups is not None else [gid])
                os.setresgid(gid, gid, gid)
            if uid is not None:
                os.setresuid(uid, uid, uid)
            if umask is not None:
                os.umask(umask)
            if cwd is not None:
                os.chdir(cwd)
            res = ("ok", fn(*args))
        except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
            res = ("exc", e)
        try:
            data = pickle.dumps(res)
        except Exception as e:  # noqa: BLE001
            data = pickle.dumps(("exc", RuntimeError(f"unpicklable result: {e!r}")))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _waitpid_timeout(pid, timeout)
    kind, val = pickle.loads(data)
    if kind == "exc":
        raise val
    return val


def _waitpid_timeout(pid, timeout):
    deadline = time.monotonic() + timeout
    while True:
        p, _ = os.waitpid(pid, os.WNOHANG)
        if p:
            return
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TestTimeout(f"child {pid} timed out")
        time.sleep(0.005)


class Child:
    """A forked child running fn(conn) in the background; conn is a (read_fd, write_fd) pipe pair
    connected to the parent for simple line messages. Killed by Env.cleanup if still running."""

    def __init__(self, env, fn, *args):
        self.p2c_r, self.p2c_w = os.pipe()
        self.c2p_r, self.c2p_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.p2c_w)
            os.close(self.c2p_r)
            code = 0
            try:
                fn(self, *args)
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
                code = 1
            os._exit(code)
        os.close(self.p2c_r)
        os.close(self.c2p_w)
        env.children.append(self.pid)
        self.env = env
        self.status = None

    # called in the child
    def send(self, msg):
        os.write(self.c2p_w if self.pid == 0 else self.p2c_w, (msg + "\n").encode())

    def recv(self, timeout=10):
        fd = self.p2c_r if self.pid == 0 else self.c2p_r
        import select
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestTimeout("no message from peer")
            rl, _, _ = select.select([fd], [], [], left)
            if rl:
                c = os.read(fd, 1)
                if not c:
                    raise EOFError("peer closed")
                buf += c
        return buf[:-1].decode()

    def wait(self, timeout=30):
        _waitpid_status = None
        deadline = time.monotonic() + timeout
        while True:
            p, st = os.waitpid(self.pid, os.WNOHANG)
            if p:
                _waitpid_status = st
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise TestTimeout(f"child {self.pid} timed out")
            time.sleep(0.005)
        self.env.children.remove(self.pid)
        self.status = os.waitstatus_to_exitcode(_waitpid_status)
        return self.status


# --------------------------------------------------------------------------------------------------
# assertions

def eq(got, expected, what):
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def _diff(got, expected):
    """A short description of how got differs from expected (dicts and lists item by item)."""
    if isinstance(got, dict) and isinstance(expected, dict):
        keys = [k for k in list(expected) + [k for k in got if k not in expected] if got.get(k, "<absent>") !=
                expected.get(k, "<absent>")]
        return "; ".join(f"[{k!r}] expected {expected.get(k, '<absent>')!r}, got {got.get(k, '<absent>')!r}"
                         for k in keys)
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)) and len(got) == len(expected):
        return "; ".join(f"[{i}] expected {e!r}, got {g!r}" for i, (g, e) in enumerate(zip(got, expected)) if g != e)
    return f"expected {expected!r}, got {got!r}"


def oracle(kernel_value, union_value, expected, what):
    """Asserts the kernel (oracle) gives the expected value (else the test itself is wrong) and that
    the union gives the same."""
    if kernel_value != expected:
        raise AssertionError(f"ORACLE MISMATCH (test bug?) {what}: kernel overlayfs: "
                             f"{_diff(kernel_value, expected)}")
    if union_value != expected:
        raise AssertionError(f"{what}: {_diff(union_value, expected)} (kernel overlayfs gives the expected values)")


# --------------------------------------------------------------------------------------------------
# runner

def timeout(seconds):
    """Decorator: per-test timeout other than TEST_TIMEOUT."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def main(module_globals=None):
    """Runs every test_* function of the calling module in definition order. Each gets a fresh Env.
    argv may name tests to run a subset."""
    if module_globals is None:
        module_globals = inspect.stack()[1].frame.f_globals
    tests = [(n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    if len(sys.argv) > 1:
        wanted = set(sys.argv[1:])
        tests = [t for t in tests if t[0] in wanted or t[0][5:] in wanted]
    must_run = os.environ.get("SBX_TESTS_MUST_RUN") == "1"
    sys.stdout.reconfigure(line_buffering=True)
    print(f"# binary under test: {binary()}")
    print(f"1..{len(tests)}")
    why = prerequisites()
    if why:
        for i, (name, _) in enumerate(tests, 1):
            if must_run:
                print(f"not ok {i} - {name[5:]}: cannot run ({why}) and SBX_TESTS_MUST_RUN=1")
            else:
                print(f"ok {i} - {name[5:]} # SKIP {why}")
        print(f"# 0 passed, {len(tests) if must_run else 0} failed, {0 if must_run else len(tests)} skipped")
        sys.exit(1 if must_run else 77)
    os.umask(0o022)

    def _term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _term)  # meson's timeout: clean up mounts before dying
    passed = failed = skipped = 0
    for i, (name, fn) in enumerate(tests, 1):
        short = name[5:]
        env = Env(short[:20])
        t0 = time.monotonic()
        limit = getattr(fn, "timeout", TEST_TIMEOUT)
        # A server that hangs leaves the test in an unkillable FUSE wait where no signal handler runs:
        # at the limit, a watchdog thread aborts the test's FUSE connections (the blocked calls then fail
        # with ECONNABORTED/ENOTCONN) and kills its child processes.
        watchdog = threading.Timer(limit, env.timeout_expired, [limit])
        watchdog.daemon = True
        watchdog.start()
        try:
            fn(env)
            if env.timed_out:
                raise TestTimeout(f"test took longer than {limit}s (FUSE connections aborted)")
            print(f"ok {i} - {short} ({time.monotonic() - t0:.1f}s)")
            passed += 1
        except Skip as e:
            if must_run:
                print(f"not ok {i} - {short}: skipped ({e}) but SBX_TESTS_MUST_RUN=1")
                failed += 1
            else:
                print(f"ok {i} - {short} # SKIP {e}")
                skipped += 1
        except BaseException as e:  # noqa: BLE001
            failed += 1
            print(f"not ok {i} - {short}")
            if env.timed_out:
                print(f"#   TIMEOUT: test took longer than {limit}s; its FUSE connections were aborted")
            msg = f"{type(e).__name__}: {e}" if isinstance(e, (AssertionError, TestTimeout, MountError)) \
                else traceback.format_exc()
            if not isinstance(e, (AssertionError,)):
                msg = traceback.format_exc()
            for line in msg.rstrip().splitlines():
                print(f"#   {line}")
            for m in env.mounts:
                if isinstance(m, Union) and m.server_log().strip():
                    print(f"#   server log ({m.mnt}):")
                    for line in m.server_log().rstrip().splitlines()[-15:]:
                        print(f"#     {line}")
            if isinstance(e, KeyboardInterrupt):
                env.cleanup()
                raise
        finally:
            os.umask(0o022)
            try:
                env.cleanup()  # still under the watchdog: umount waits for a hung server too
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            watchdog.cancel()
    print(f"# {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
    sys.exit(0)
