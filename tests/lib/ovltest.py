# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers for the union filesystem integration tests (stdlib only).

What it does: TAP-style output and the skip contract (exit 77, or a failure under
SBX_TESTS_MUST_RUN=1), per-run temp dirs, kernel overlayfs and FUSE union mounts as context
managers that always unmount, and a tree snapshot plus a field-by-field snapshot compare.
What it does not do: decide which fields a test compares; callers pass a skip predicate.
"""

import contextlib
import errno
import hashlib
import os
import pty
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

EXIT_SKIP = 77

# Options that make kernel overlayfs behave like sandbox-unionfs (see /work/shared notes).
KERNEL_OVL_OPTIONS = ("redirect_dir=on", "index=on", "metacopy=off", "xino=off")


# ---------------------------------------------------------------- TAP and skips

class Tap:
    """Counts "ok"/"not ok" lines; the plan is printed at the end (TAP allows it there)."""

    def __init__(self, out=sys.stdout):
        self.n = 0
        self.failed = 0
        self.out = out

    def ok(self, cond, name, diag=None):
        self.n += 1
        print(f"{'ok' if cond else 'not ok'} {self.n} - {name}", file=self.out)
        if not cond:
            self.failed += 1
            if diag:
                self.diag(diag)
        self.out.flush()
        return cond

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print(f"# {line}", file=self.out)
        self.out.flush()

    def done(self):
        print(f"1..{self.n}", file=self.out)
        self.out.flush()
        return 1 if self.failed else 0


def must_run():
    return os.environ.get("SBX_TESTS_MUST_RUN") == "1"


def skip_all(reason):
    """Skip the whole test: exit 77, or 1 when SBX_TESTS_MUST_RUN=1."""
    print(f"1..0 # SKIP {reason}")
    if must_run():
        print("# SBX_TESTS_MUST_RUN=1: a skip counts as a failure")
        sys.exit(1)
    sys.exit(EXIT_SKIP)


def require_root():
    if os.geteuid() != 0:
        skip_all("needs root")


def require_fuse():
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        skip_all(f"/dev/fuse not usable: {e.strerror}")
    os.close(fd)


def require_overlayfs():
    try:
        with open("/proc/filesystems") as f:
            if any(line.split()[-1] == "overlay" for line in f if line.strip()):
                return
    except OSError:
        pass
    skip_all("kernel overlayfs not available")


def unionfs_binary():
    """The server under test, from $SANDBOX_UNIONFS (skips when unset or missing)."""
    path = os.environ.get("SANDBOX_UNIONFS")
    if not path:
        skip_all("SANDBOX_UNIONFS is not set")
    if not os.access(path, os.X_OK):
        skip_all(f"SANDBOX_UNIONFS={path} is not executable")
    return path


def install_signal_handlers():
    """Turn SIGTERM/SIGHUP (meson's timeout) into SystemExit so every finally: runs."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


# ---------------------------------------------------------------- mounts and temp dirs

def unescape_mountinfo(s):
    """Undo the octal escapes (\\040 for a space, ...) of /proc/self/mountinfo fields."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo():
    """[(mount point, per-mount options, fs type)] from /proc/self/mountinfo."""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            res.append((unescape_mountinfo(fields[4]), fields[5], right.split()[0]))
    return res


def mounts_under(path):
    path = os.path.realpath(path)
    return [m for m, _, _ in mountinfo() if m == path or m.startswith(path + "/")]


def is_mounted(path):
    path = os.path.realpath(path)
    return any(m == path for m, _, _ in mountinfo())


def mount_flags(path):
    """Per-mount options (rw, nodev, nosuid, noatime, ...) of the mount at path."""
    path = os.path.realpath(path)
    for m, opts, _ in reversed(mountinfo()):
        if m == path:
            return set(opts.split(","))
    raise FileNotFoundError(errno.ENOENT, "not a mount point", path)


def umount(path, tries=20):
    """Unmount path; retry while busy, then detach lazily. Returns True if it was mounted."""
    if not is_mounted(path):
        return False
    for _ in range(tries):
        r = subprocess.run(["umount", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0 or not is_mounted(path):
            return True
        time.sleep(0.1)
    subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return True


def remove_tree(path):
    """rm -rf, but never through a mount that is still there."""
    left = mounts_under(path)
    if left:
        print(f"# not removing {path}: still mounted: {' '.join(left)}", file=sys.stderr)
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


@contextlib.contextmanager
def tempdir(prefix, keep=False):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    try:
        yield d
    finally:
        if keep:
            print(f"# kept {d}", file=sys.stderr)
        else:
            remove_tree(d)


def _layer_options(lowers, upper, work, options):
    opts = ["lowerdir=" + ":".join(lowers)]
    if upper is not None:
        opts += [f"upperdir={upper}", f"workdir={work}"]
    return ",".join(opts + list(options))


class MountError(Exception):
    pass


@contextlib.contextmanager
def kernel_overlay(mnt, lowers, upper=None, work=None, options=KERNEL_OVL_OPTIONS, flags=()):
    """Kernel overlayfs at mnt; lowers are top first. flags: extra mount flags (nodev, ro, ...)."""
    opts = _layer_options(lowers, upper, work, tuple(options) + tuple(flags))
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise MountError(f"mount -t overlay -o {opts} {mnt}: {r.stdout.strip()}")
    try:
        yield mnt
    finally:
        umount(mnt)


class FuseServer:
    def __init__(self, proc, mnt, log):
        self.proc, self.mnt, self.log = proc, mnt, log

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


@contextlib.contextmanager
def fuse_union(binary, mnt, lowers, upper=None, work=None, options=(), log=None, timeout=15):
    """Run a fuse-overlayfs compatible server in the foreground (-f) and wait for the mount.

    On exit: unmount, wait for the server, kill it by pid if it does not go.
    """
    opts = _layer_options(lowers, upper, work, options)
    log = log or mnt.rstrip("/") + ".log"
    logf = open(log, "ab")
    proc = subprocess.Popen([binary, "-f", "-o", opts, mnt], stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    logf.close()
    srv = FuseServer(proc, mnt, log)
    try:
        deadline = time.monotonic() + timeout
        while not is_mounted(mnt):
            if proc.poll() is not None:
                raise MountError(f"{binary} -o {opts} {mnt} exited with {proc.returncode}:\n"
                                 + srv.log_tail())
            if time.monotonic() > deadline:
                raise MountError(f"{binary} -o {opts} {mnt}: not mounted after {timeout}s:\n"
                                 + srv.log_tail())
            time.sleep(0.01)
        yield srv
    finally:
        umount(mnt)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- snapshots

TYPE_CHARS = ((stat.S_ISDIR, "d"), (stat.S_ISREG, "f"), (stat.S_ISLNK, "l"), (stat.S_ISFIFO, "p"),
              (stat.S_ISCHR, "c"), (stat.S_ISBLK, "b"), (stat.S_ISSOCK, "s"))


def type_char(mode):
    for test, c in TYPE_CHARS:
        if test(mode):
            return c
    return "?"


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else repr(e)


def file_digest(path):
    h = hashlib.sha1()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
    finally:
        os.close(fd)
    return h.hexdigest()


def xattrs_of(path):
    """{name: value} without following symlinks, or an error string."""
    try:
        res = {}
        for name in sorted(os.listxattr(path, follow_symlinks=False)):
            try:
                res[name] = os.getxattr(path, name, follow_symlinks=False)
            except OSError as e:
                res[name] = "error:" + errname(e)
        return res
    except OSError as e:
        return "error:" + errname(e)


def stat_entry(st):
    """The comparable fields of one os.stat_result."""
    e = {"type": type_char(st.st_mode), "mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
         "size": st.st_size, "nlink": st.st_nlink, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns}
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return e


def entry_of(path, contents=True):
    st = os.lstat(path)
    e = stat_entry(st)
    e["xattrs"] = xattrs_of(path)
    if stat.S_ISLNK(st.st_mode):
        e["target"] = os.readlink(path)
    elif stat.S_ISREG(st.st_mode) and contents:
        try:
            e["sha"] = file_digest(path)
        except OSError as err:
            e["sha"] = "error:" + errname(err)
    return e


ROOTATTR_XATTRS = ("trusted.overlay.sandbox.rootattr", "user.overlay.sandbox.rootattr")


def root_record(path):
    """The private-root record of directory PATH (common/rootattr.h) as (mode, uid, gid), or None."""
    for name in ROOTATTR_XATTRS:
        try:
            v = os.getxattr(path, name, follow_symlinks=False).decode()
        except OSError:
            continue
        mode, uid, gid = v.split(" ")
        return int(mode, 8), int(uid), int(gid)
    return None


def show_recorded_root(path):
    """Give the private root PATH, on disk, the mode and owner its record stands for. Kernel overlayfs
    does not read the record: a test that mounts one of our layers as the top layer of a kernel overlay
    and compares the root with another view does this first (docs/unionfs.md, differences)."""
    rec = root_record(path)
    if rec:
        os.chown(path, rec[1], rec[2])
        os.chmod(path, rec[0])


def snapshot(root, contents=True, logical_root=True):
    """{"/rel/path": entry} for root and everything below, never following symlinks.

    The root itself is "/". Errors while reading a directory are recorded as an entry field. With
    LOGICAL_ROOT (the default) a private root (docs/security.md) shows what it stands for: the mode and
    owner of its record, and the record is not among its xattrs.
    """
    out = {}

    def walk(real, rel):
        try:
            e = entry_of(real, contents)
        except OSError as err:
            out[rel] = {"type": "error:" + errname(err)}
            return
        if rel == "/" and logical_root and e["type"] == "d":
            rec = root_record(real)
            if rec:
                e["mode"] = oct(stat.S_IFDIR | rec[0])
                e["uid"], e["gid"] = rec[1], rec[2]
            if isinstance(e["xattrs"], dict):
                for name in ROOTATTR_XATTRS:
                    e["xattrs"].pop(name, None)
        out[rel] = e
        if e["type"] == "d":
            try:
                names = sorted(os.listdir(real))
            except OSError as err:
                e["readdir"] = "error:" + errname(err)
                return
            for n in names:
                walk(os.path.join(real, n), (rel.rstrip("/") + "/" + n))

    walk(root, "/")
    return out


SNAPSHOT_FIELDS = ("type", "mode", "uid", "gid", "size", "nlink", "ino", "rdev", "target", "sha",
                   "xattrs", "readdir", "mtime_ns")


def compare_entries(path, a, b, skip=None):
    """[(path, field, a value, b value)] for one entry; skip(path, field, a, b) -> bool."""
    diffs = []
    for f in SNAPSHOT_FIELDS:
        va, vb = a.get(f), b.get(f)
        if va == vb:
            continue
        if skip and skip(path, f, a, b):
            continue
        diffs.append((path, f, va, vb))
    return diffs


def compare_snapshots(a, b, skip=None):
    """All divergences between two snapshots, in path order; a missing entry is field "exists"."""
    diffs = []
    for p in sorted(set(a) | set(b)):
        if p not in b:
            diffs.append((p, "exists", a[p].get("type"), None))
        elif p not in a:
            diffs.append((p, "exists", None, b[p].get("type")))
        else:
            diffs.extend(compare_entries(p, a[p], b[p], skip))
    return diffs


def format_diffs(diffs, names=("a", "b"), limit=10):
    lines = []
    for p, f, va, vb in diffs[:limit]:
        lines.append(f"{p!r} field {f}: {names[0]}={va!r} {names[1]}={vb!r}")
    if len(diffs) > limit:
        lines.append(f"... and {len(diffs) - limit} more")
    return "\n".join(lines)


def run_on_pty(argv, timeout=120):
    """Run argv with stderr on a new pseudo-terminal: (exit status, stdout bytes, terminal bytes)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    seen = b""
    try:
        while select.select([master], [], [], timeout)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    out, _ = p.communicate(timeout=timeout)
    return p.returncode, out, seen


PROGRESS_LINE = rb"\r\x1b\[K%s: (\d+) entries, (\d+\.\d) (B|KiB|MiB|GiB|TiB)"
UNITS = {b"B": 1, b"KiB": 1 << 10, b"MiB": 1 << 20, b"GiB": 1 << 30, b"TiB": 1 << 40}


def progress_lines(what, seen):
    """The (entries, bytes) that sandbox-layer's progress lines for `what` showed, in order; bytes are
    approximate (one decimal of the unit)."""
    return [(int(n), float(v) * UNITS[u]) for n, v, u in re.findall(PROGRESS_LINE % what.encode(), seen)]


def progress_ok(what, seen, max_entries, max_bytes):
    """True when at least one well-formed progress line was drawn, the counts never went down or past
    the totals, and the line was cleared at the end."""
    lines = progress_lines(what, seen)
    return (bool(lines) and seen.endswith(b"\r\x1b[K")
            and all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(lines, lines[1:]))
            and lines[-1][0] <= max_entries and lines[-1][1] <= max_bytes * 1.05 + 1024)


def dict_diff(a, b, limit=8):
    """The keys on which two {path: value} maps differ, one line each (at most LIMIT, then a count)."""
    lines = [f"{p[:120]!r}: {a.get(p)!r} != {b.get(p)!r}" for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more"]
    return "\n".join(lines)
