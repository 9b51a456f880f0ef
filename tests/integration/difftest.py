#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Differential test: sandbox-unionfs against kernel overlayfs.

Builds three random lower layers (nested dirs, files, symlinks, hard links, user.* and trusted.*
xattrs, fifos, odd modes, foreign owners; whiteouts and opaque dirs in the middle and top layers),
gives each implementation its own `cp -a` copy of them plus an empty upper, and applies the same
seeded random sequence of operations to both merged views, as root, each from a worker process
chrooted into its mount (so absolute and "../" symlinks resolve inside the union, never on the host).

Checked:
  * every operation returns the same result (errno name, byte count, data read, stat fields);
  * after every batch both merged trees are equivalent (see EXCLUSIONS for what is not compared);
  * cross-reading: each implementation's upper, mounted read-only as the top lowerdir above its own
    lowers by the *other* implementation, reads the same as the live merged view;
  * at the end, no lower layer copy was modified.

Usage: difftest.py [--seed N] [--ops N] [--batch N] [--cross-every N] [--keep] [--self-check] [--metacopy]
                   [--ignore FIELD]... [--skip-op OP]...
The server is $SANDBOX_UNIONFS (any fuse-overlayfs compatible binary). --self-check runs the same
sequence against two kernel overlay mounts, which must always agree (validates the test itself).
The op sequence depends only on --seed (not on --batch), so a divergence found at a batch
boundary is located exactly by re-running with --batch 1 --ops <op index + 1>. --keep leaves the
work dir (layers, both uppers, ops.log with every op and its result) for inspection. --ignore and
--skip-op look past a known divergence while investigating; such a run never counts as a pass.
Exit: 0 pass, 1 divergence or error, 77 skip (not root, no /dev/fuse, no overlayfs, no binary).
"""

import argparse
import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest as T  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Deliberate differences: fields NOT compared between the two merged views. (field, where, reason)
# docs/ can list this table as is.
EXCLUSIONS = (
    ("st_ino", "all entries",
     "inode numbers are per implementation (kernel xino/origin rules vs FUSE-assigned)"),
    ("st_dev", "all entries", "every mount has its own device number (not collected)"),
    ("st_nlink", "directories",
     "kernel overlayfs does not compute a merged directory link count (reports 1 or the upper's)"),
    ("st_nlink", "hard-linked files",
     "link counts of lower hard links after copy-up are approximate in both (index copies, broken links)"),
    ("st_atime", "all entries", "access times depend on atime mount options and caching (not collected)"),
    ("st_ctime", "all entries",
     "change time is when each implementation ran its own operation (not collected)"),
    ("st_size", "directories", "directory sizes are backing-filesystem details and count whiteouts"),
    ("st_mtime", "entries whose mtime the test did not set itself",
     "mtime is compared only where it was set explicitly (layer build, utimensat) and not changed since"),
    ("st_blocks", "all entries", "allocation may differ (sparse copy-up, fallocate); not collected"),
    ("st_nlink, st_ino", "fstat through an fd (op fdop)",
     "link counts of objects unlinked while open follow ext4 (0) in sandbox-unionfs, the lower's in the kernel"),
    ("st_mtime", "fstat through an fd (op fdop), unless the op set it (a futimens that succeeded)",
     "set by each one's clock"),
    ("result, then mode/owner/times in fstat", "fdop on a fd opened without writing (O_RDONLY, O_PATH) of a lower"
     " object that was then unlinked or replaced: kernel EEXIST (files) or ENOTDIR (directories) for fchmod,"
     " fchown, futimens, f{set,remove}xattr, where sandbox-unionfs succeeds",
     "the kernel copies the object up to its old name, which is gone; sandbox-unionfs changes the open object,"
     " as ext4 does (tests/integration/test_unionfs_fdops.py compares all three)"),
    ("(not run)", "fdop on fifos, sockets and devices",
     "kernel overlayfs copies an unlinked lower fifo back to its old name when a change of its attributes"
     " comes through an fd opened before (the name reappears after unlink); sandbox-unionfs does not"),
    ("all but the type", "cross-read only: names of lower hard links",
     "the hard-link index lives in the workdir, which a read-only cross-read mount lacks: names never"
     " copied up show the lower file there, while the live mount shows the shared copy"),
)
# The kernel oracle runs with ovltest.KERNEL_OVL_OPTIONS (redirect_dir=on, index=on, ...): sandbox-unionfs
# keeps lower hard links joined after copy-up, as the kernel does only with index=on.

DEFAULT_OPS = 2000
DEFAULT_BATCH = 100
MODEL_REFRESH = 10          # re-read the namespace model from the kernel view every N ops (fixed:
                            # keeps the op sequence independent of --batch)
OP_TIMEOUT = 60             # seconds one operation may take before it counts as hung
SELF_CHECK_GAP = 0.005      # --self-check: run each op this much later on the second mount, so
                            # that any mtime the test wrongly treats as unchanged differs
UIDS = (0, 0, 1000, 1234, 65534)
BASE_TIME = 1_500_000_000   # explicit timestamps are set around here

# Names shared by all layers and by the generator, so entries collide across layers and ops.
VOCAB = ("a", "b", "c", "d", "e", "f", "x", "y", "dir", "sub", "file", "data.bin", "conf", "lib",
         ".hidden", "sp ace", "\u00e9t\u00e9", "d_op", "d_wh", "f_wh", "n" * 200)

libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
libc.fallocate64.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
FALLOC_MODES = {0: "0", 1: "KEEP_SIZE", 3: "PUNCH_HOLE|KEEP_SIZE", 0x10: "ZERO_RANGE"}


def check_libc(r):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


# ------------------------------------------------------------------------------------------------
# Operations, run inside a worker chrooted into one mount. Each returns a comparable value or raises.

def _open(path, flags, mode=0o644):
    # O_NONBLOCK: opening a fifo must never block.
    return os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)


def _with_fd(path, flags, fn, mode=0o644):
    fd = _open(path, flags, mode)
    try:
        r = fn(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    os.close(fd)            # errors from close (FUSE flush) count as the op's result
    return r


def _flags(names):
    f = 0
    for n in names:
        f |= getattr(os, n)
    return f


def _digest(b):
    return (len(b), hashlib.sha1(b).hexdigest()[:16])


def x_create(op):
    return _with_fd(op["path"], os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                    lambda fd: os.write(fd, op["data"]) if op["data"] else 0, op["mode"])


def x_write(op):
    return _with_fd(op["path"], _flags(op["flags"]), lambda fd: os.pwrite(fd, op["data"], op["off"]),
                    op["mode"])


def x_truncate(op):
    if op["how"] == "path":
        return os.truncate(op["path"], op["len"])
    return _with_fd(op["path"], os.O_WRONLY, lambda fd: os.ftruncate(fd, op["len"]))


def x_fallocate(op):
    return _with_fd(op["path"], os.O_WRONLY,
                    lambda fd: check_libc(libc.fallocate64(fd, op["mode"], op["off"], op["len"])))


def x_rename(op):
    if not op["flags"]:
        return os.rename(op["src"], op["dst"])
    return check_libc(libc.renameat2(AT_FDCWD, os.fsencode(op["src"]), AT_FDCWD,
                                     os.fsencode(op["dst"]), op["flags"]))


def x_read(op):
    return _with_fd(op["path"], os.O_RDONLY, lambda fd: _digest(os.pread(fd, op["len"], op["off"])))


def x_stat(op):
    return T.stat_entry(os.stat(op["path"], follow_symlinks=op["follow"]))


OPEN_ACCESS = {"R": os.O_RDONLY, "W": os.O_WRONLY, "RW": os.O_RDWR, "ACC3": 3}
FD_MODES = {"R": os.O_RDONLY, "RW": os.O_RDWR, "PATH": os.O_PATH}


def _try(fn):
    try:
        r = fn()
        return "ok" if r is None else r
    except OSError as e:
        return T.errname(e)


def x_openflags(op):
    """open(2) with an access mode and flags, then fstat, read, write, lseek and close through the fd."""
    fd = _open(op["path"], OPEN_ACCESS[op["acc"]] | _flags(op["flags"]), op["mode"])
    st = os.fstat(fd)
    out = [(stat.S_IFMT(st.st_mode), st.st_size), _try(lambda: _digest(os.read(fd, 100))),
           _try(lambda: os.write(fd, op["data"])), _try(lambda: os.lseek(fd, 0, os.SEEK_CUR))]
    os.close(fd)
    return out


def x_fdop(op):
    """Open PATH, then unlink it, rename it or rename another entry over its name, then one f* call on the
    fd, then fstat; every step's result."""
    fd = _open(op["path"], FD_MODES[op["mode"]])
    out = []
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            return ["not run on", T.type_char(mode)]      # see EXCLUSIONS
        is_dir = stat.S_ISDIR(mode)
        ev = op["event"]
        if ev == "unlink":
            out.append(_try(lambda: (os.rmdir if is_dir else os.unlink)(op["path"])))
        elif ev == "rename":
            out.append(_try(lambda: os.rename(op["path"], op["dst"])))
        elif ev == "replace":
            out.append(_try(lambda: os.rename(op["src2"], op["path"])))
        calls = {
            "fchmod": lambda: os.chmod(fd, op["perm"]),
            "fchown": lambda: os.chown(fd, op["uid"], op["uid"]),
            "futimens": lambda: os.utime(fd, ns=(op["time"], op["time"])),
            "ftruncate": lambda: os.ftruncate(fd, op["len"]),
            "fallocate": lambda: check_libc(libc.fallocate64(fd, 0, 0, op["len"])),
            "fsetxattr": lambda: os.setxattr(fd, op["name"], op["value"]),
            "fgetxattr": lambda: os.getxattr(fd, op["name"]),
            "flistxattr": lambda: sorted(os.listxattr(fd)),
            "fremovexattr": lambda: os.removexattr(fd, op["name"]),
            "fsync": lambda: os.fsync(fd),
            "pread": lambda: _digest(os.pread(fd, 4096, 0)),
            "pwrite": lambda: os.pwrite(fd, op["value"], op["len"]),
        }
        out.append(_try(calls[op["call"]]))
        times_set = op["call"] == "futimens" and out[-1] == "ok"

        def fstat():
            e = T.stat_entry(os.fstat(fd))
            for f in ("ino", "nlink") + (("size",) if is_dir else ()) + (() if times_set else ("mtime_ns",)):
                e.pop(f, None)      # see EXCLUSIONS
            return e
        out.append(_try(fstat))
    finally:
        os.close(fd)
    return out


def x_tree(op):
    """{path: type char} of the whole namespace (used for the generator's model)."""
    out = {}

    def walk(p):
        st = os.lstat(p)
        out[p] = T.type_char(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            for n in sorted(os.listdir(p)):
                with contextlib.suppress(OSError):
                    walk(os.path.join(p, n))
    walk("/")
    return out


def x_realpaths(op):
    return [os.path.realpath(p) for p in op["paths"]]


def x_exists(op):
    try:
        os.lstat(op["path"])
        return True
    except OSError:
        return False


X_OPS = {
    "create": x_create,
    "write": x_write,
    "truncate": x_truncate,
    "fallocate": x_fallocate,
    "unlink": lambda op: os.unlink(op["path"]),
    "mkdir": lambda op: os.mkdir(op["path"], op["mode"]),
    "rmdir": lambda op: os.rmdir(op["path"]),
    "rename": x_rename,
    "symlink": lambda op: os.symlink(op["target"], op["path"]),
    "link": lambda op: os.link(op["src"], op["dst"], follow_symlinks=op["follow"]),
    "chmod": lambda op: os.chmod(op["path"], op["mode"]),
    "chown": lambda op: os.chown(op["path"], op["uid"], op["gid"], follow_symlinks=op["follow"]),
    "setxattr": lambda op: os.setxattr(op["path"], op["name"], op["value"], op["flags"],
                                       follow_symlinks=op["follow"]),
    "removexattr": lambda op: os.removexattr(op["path"], op["name"], follow_symlinks=op["follow"]),
    "utimensat": lambda op: os.utime(op["path"], ns=(op["atime"], op["mtime"]),
                                     follow_symlinks=op["follow"]),
    "mkfifo": lambda op: os.mkfifo(op["path"], op["mode"]),
    "mknod": lambda op: os.mknod(op["path"], op["mode"] | stat.S_IFCHR, os.makedev(*op["rdev"])),
    "read": x_read,
    "stat": x_stat,
    "readdir": lambda op: sorted(os.listdir(op["path"])),
    "readlink": lambda op: os.readlink(op["path"]),
    "getxattr": lambda op: os.getxattr(op["path"], op["name"], follow_symlinks=op["follow"]),
    "listxattr": lambda op: sorted(os.listxattr(op["path"], follow_symlinks=op["follow"])),
    "openflags": x_openflags,
    "fdop": x_fdop,
    "tree": x_tree,
    "realpaths": x_realpaths,
    "exists": x_exists,
}


def run_op(op):
    try:
        return ("ok", X_OPS[op["op"]](op))
    except OSError as e:
        return ("err", T.errname(e))


class Hung(Exception):
    pass


class Worker:
    """A forked child chrooted into a mount; runs operations sent over a pipe."""

    def __init__(self, root, name):
        self.name = name
        self.conn, child = multiprocessing.Pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                self.conn.close()
                os.chroot(root)
                os.chdir("/")
                os.umask(0)
                while True:
                    op = child.recv()
                    if op is None:
                        break
                    child.send(run_op(op))
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        child.close()

    def call(self, op):
        self.conn.send(op)
        if not self.conn.poll(OP_TIMEOUT):
            raise Hung(f"{self.name}: no answer within {OP_TIMEOUT}s")
        return self.conn.recv()

    def close(self):
        if self.pid is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        for _ in range(50):
            if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                break
            time.sleep(0.02)
        else:
            os.kill(self.pid, signal.SIGKILL)   # our own child, by pid
            os.waitpid(self.pid, 0)
        self.pid = None
        self.conn.close()


@contextlib.contextmanager
def worker(root, name):
    w = Worker(root, name)
    try:
        yield w
    finally:
        w.close()


# ------------------------------------------------------------------------------------------------
# Lower layers

def pick_mode(rng, is_dir):
    if is_dir:
        return rng.choice((0o755, 0o755, 0o755, 0o700, 0o1777, 0o2775, 0o711, 0o500))
    return rng.choice((0o644, 0o644, 0o644, 0o600, 0o755, 0o4755, 0o2711, 0o444, 0o000, 0o640))


def set_attrs(rng, path, is_dir):
    os.lchown(path, rng.choice(UIDS), rng.choice(UIDS))
    os.chmod(path, pick_mode(rng, is_dir))
    for _ in range(rng.choice((0, 0, 1, 2))):
        os.setxattr(path, rng.choice(("user.a", "user.b", "user.mime")), rng.randbytes(rng.randint(0, 40)))
    if rng.random() < 0.1:
        os.setxattr(path, "trusted.test", b"t" + rng.randbytes(4))
    if rng.random() < 0.05:   # an escaped private xattr: the merged view shows trusted.overlay.test
        os.setxattr(path, "trusted.overlay.overlay.test", b"e" + rng.randbytes(4))


def rand_time(rng):
    return BASE_TIME + rng.randrange(10**8) * 10**9 + rng.randrange(10**9)


def rand_content(rng):
    r = rng.random()
    n = 0 if r < 0.1 else rng.randint(1, 100) if r < 0.4 else rng.randint(100, 20000) if r < 0.95 \
        else rng.randint(100000, 400000)
    return rng.randbytes(n)


def build_layers(rng, base, nlayers=3):
    """Create base/l0 (top) .. base/l<n-1> (bottom). Returns the layer dirs, top first, and all
    paths in any layer.

    Whiteouts are only put over entries visible in the layers below, and never inside opaque or
    unmerged dirs: the kernel lists such stray whiteouts in readdir (a quirk, not a contract).
    """
    os.mkdir(base)
    layers = [os.path.join(base, f"l{i}") for i in range(nlayers)]
    raw, opaque = [], []    # per built layer (bottom first): {rel path: type}, {opaque dirs}

    def lower_names(rel):
        names = set()
        prefix = rel.rstrip("/") + "/"
        for r in raw:
            for p in r:
                if p.startswith(prefix) and "/" not in p[len(prefix):]:
                    names.add(p[len(prefix):])
        return sorted(names)

    def visible(rel):
        """Type of rel in the merge of the layers built so far (overlay lookup rules), or None."""
        idxs = list(reversed(range(len(raw))))
        cur, t = "/", "d"
        for c in rel.strip("/").split("/"):
            if t != "d":
                return None
            p, nxt, t = join(cur, c), [], None
            for li in idxs:
                e = raw[li].get(p)
                if e is None:
                    continue
                if e == "w" or e != "d":
                    if e != "w" and not nxt:
                        t = e
                    break
                nxt.append(li)
                t = "d"
                if p in opaque[li]:
                    break
            if t is None:
                return None
            idxs, cur = nxt, p
        return t

    for idx in reversed(range(nlayers)):
        root = layers[idx]
        os.mkdir(root)
        mine, mine_opaque = {}, set()
        files = []
        top_or_middle = idx != nlayers - 1

        def make(rel, kind, depth, wh_ok=True):
            p = root + rel
            if kind == "d":
                os.mkdir(p)
                mine[rel] = "d"
                merged = wh_ok and visible(rel) == "d"
                if top_or_middle and merged and rng.random() < 0.15:
                    mine_opaque.add(rel)
                    os.setxattr(p, "trusted.overlay.opaque", b"y")
                    merged = False
                fill(rel, depth + 1, merged)
                set_attrs(rng, p, True)
            elif kind == "f":
                with open(p, "wb") as f:
                    f.write(rand_content(rng))
                set_attrs(rng, p, False)
                files.append(rel)
                mine[rel] = "f"
            elif kind == "h":
                os.link(root + rng.choice(files), p)
                mine[rel] = "f"
            elif kind == "l":
                t = rng.choice(("a", "../a", "/dir/sub", "nowhere", "/", "..", "sub/../x", "d_wh/x",
                                rng.choice(lower_names(parent_of(rel)) or ["y"])))
                os.symlink(t, p)
                if rng.random() < 0.3:
                    os.lchown(p, rng.choice(UIDS), rng.choice(UIDS))
                mine[rel] = "l"
            elif kind == "p":
                os.mkfifo(p, pick_mode(rng, False))
                os.lchown(p, rng.choice(UIDS), 0)
                mine[rel] = "p"
            elif kind == "w":
                os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                mine[rel] = "w"
            os.utime(p, ns=(rand_time(rng), rand_time(rng)), follow_symlinks=False)

        def fill(rel, depth, merged):
            cands = lower_names(rel) + rng.sample(VOCAB, 10)
            n = rng.randint(10, 16) if depth == 0 else rng.randint(2, 7) if depth < 3 else rng.randint(0, 3)
            chosen = []
            for name in rng.sample(cands, len(cands)):
                if name not in chosen:
                    chosen.append(name)
            for name in chosen[:n]:
                sub = join(rel, name)
                if sub in mine:
                    continue
                wh = top_or_middle and merged and visible(sub) is not None
                weights = {"d": 35 if depth < 2 else 20 if depth < 4 else 0, "f": 40, "l": 10, "p": 3,
                           "h": 7 if files else 0, "w": 25 if wh else 0}
                kind = rng.choices(list(weights), list(weights.values()))[0]
                make(sub, kind, depth, merged)

        if idx == nlayers - 1:
            # bottom: fixed targets for the middle layer's whiteouts and opaque dir
            for d in ("/d_op", "/d_wh"):
                os.mkdir(root + d)
                mine[d] = "d"
                for n in ("a", "b", "sub"):
                    make(d + "/" + n, "f" if n != "sub" else "d", 2, False)
                os.utime(root + d, ns=(rand_time(rng), rand_time(rng)))
            make("/f_wh", "f", 1)
        elif idx == nlayers - 2:
            make("/d_wh", "w", 1)
            make("/f_wh", "w", 1)
            os.mkdir(root + "/d_op")
            os.setxattr(root + "/d_op", "trusted.overlay.opaque", b"y")
            mine["/d_op"] = "d"
            mine_opaque.add("/d_op")
            make("/d_op/c", "f", 2, False)
            os.utime(root + "/d_op", ns=(rand_time(rng), rand_time(rng)))
        fill("/", 0, True)
        os.utime(root, ns=(rand_time(rng), rand_time(rng)))
        raw.append(mine)
        opaque.append(mine_opaque)
    return layers, sorted(set().union(*raw))


# ------------------------------------------------------------------------------------------------
# Operation generator. Paths come from a model of the merged namespace (refreshed from the kernel
# view every MODEL_REFRESH ops), names that exist only in lowers (whited out, under opaque dirs),
# recently removed paths and fresh names.

OP_WEIGHTS = (("create", 8), ("write", 14), ("truncate", 5), ("unlink", 7), ("mkdir", 6),
              ("rmdir", 4), ("rename", 12), ("symlink", 4), ("link", 4), ("chmod", 4), ("chown", 4),
              ("setxattr", 5), ("removexattr", 2), ("utimensat", 4), ("fallocate", 3),
              ("mkfifo", 2), ("mknod", 1), ("read", 5), ("stat", 4), ("readdir", 3),
              ("readlink", 1), ("getxattr", 1), ("listxattr", 1), ("openflags", 4), ("fdop", 5))
XATTR_NAMES = ("user.a", "user.a", "user.b", "user.new", "user.mime", "trusted.test",
               "trusted.overlay.opaque", "trusted.overlay.redirect", "trusted.overlay.test",
               "trusted.overlay.overlay.x", "user.overlay.x")


def join(d, n):
    return d.rstrip("/") + "/" + n


def parent_of(p):
    return p.rsplit("/", 1)[0] or "/"


class Gen:
    def __init__(self, rng, lower_names, weights=OP_WEIGHTS):
        self.rng = rng
        self.kinds, self.weights = [w[0] for w in weights], [w[1] for w in weights]
        self.lower_names = lower_names
        self.model = {}
        self.cache = {}
        self.ghosts = []
        self.counter = 0

    def set_model(self, model):
        self.model = dict(model)
        self.cache = {}

    def model_update(self, op, res, noop=False):
        """Approximate model update after a successful op (refreshed from the real view later)."""
        if res[0] != "ok":
            return
        k, m = op["op"], self.model
        new = {"create": "f", "mkdir": "d", "symlink": "l", "mkfifo": "p", "mknod": "c"}
        if k in new:
            m[op["path"]] = new[k]
        elif k == "write" and "O_CREAT" in op["flags"]:
            m.setdefault(op["path"], "f")
        elif k == "link":
            m[op["dst"]] = "f"
        elif k == "openflags" and "O_CREAT" in op["flags"]:
            m.setdefault(op["path"], "f")
        elif k == "fdop" and op["event"] != "none" and res[1] and res[1][0] == "ok" and not noop:
            if op["event"] == "unlink":
                m.pop(op["path"], None)
            else:
                s, d = (op["path"], op["dst"]) if op["event"] == "rename" else (op["src2"], op["path"])
                moved = {p: t for p, t in m.items() if p == s or p.startswith(s + "/")}
                for p in list(moved) + [p for p in m if p == d or p.startswith(d + "/")]:
                    m.pop(p, None)
                for p, t in moved.items():
                    m[d + p[len(s):]] = t
        elif k in ("unlink", "rmdir"):
            m.pop(op["path"], None)
            self.ghosts = (self.ghosts + [op["path"]])[-20:]
        elif k == "rename" and op["src"] != op["dst"] and not noop:
            s, d = op["src"], op["dst"]
            moved = {p: t for p, t in m.items() if p == s or p.startswith(s + "/")}
            swapped = {p: t for p, t in m.items() if p == d or p.startswith(d + "/")}
            for p in list(moved) + list(swapped):
                m.pop(p, None)
            for p, t in moved.items():
                m[d + p[len(s):]] = t
            if op["flags"] & RENAME_EXCHANGE:
                for p, t in swapped.items():
                    m[s + p[len(d):]] = t
            self.ghosts = (self.ghosts + [s])[-20:]
        else:
            return
        self.cache = {}

    def existing(self, types=None):
        key = types or "*"
        if key not in self.cache:
            self.cache[key] = sorted(p for p, t in self.model.items() if types is None or t in types)
        return self.cache[key]

    def fresh_name(self):
        r = self.rng.random()
        if r < 0.5:
            return self.rng.choice(VOCAB)
        if r < 0.75 and self.lower_names:
            return self.rng.choice(self.lower_names).rsplit("/", 1)[1]
        self.counter += 1
        return f"n{self.counter}"

    def fresh(self):
        return join(self.rng.choice(self.existing("d") or ["/"]), self.fresh_name())

    def path(self, types=None):
        rng = self.rng
        r = rng.random()
        if r < 0.72:
            pool = (self.existing(types) if types and rng.random() < 0.8 else None) or self.existing()
            return rng.choice(pool)
        if r < 0.84:
            return rng.choice(self.lower_names)
        if r < 0.93:
            return self.fresh()
        if r < 0.97 and self.ghosts:
            return rng.choice(self.ghosts)
        # through a non-directory or a symlink
        return join(rng.choice(self.existing("flpc") or ["/"]), self.fresh_name())

    def data(self):
        r = self.rng.random()
        n = 0 if r < 0.03 else self.rng.randint(1, 512) if r < 0.5 else self.rng.randint(512, 9000) \
            if r < 0.97 else self.rng.randint(100000, 300000)
        return self.rng.randbytes(n)

    def offset(self):
        r = self.rng.random()
        return 0 if r < 0.3 else self.rng.randint(0, 5000) if r < 0.7 else self.rng.randint(0, 70000) \
            if r < 0.97 else self.rng.randint(0, 2 << 20)

    def symlink_target(self, link):
        rng = self.rng
        r = rng.random()
        existing = self.existing()
        if r < 0.35:
            return rng.choice(existing)
        if r < 0.65:
            return os.path.relpath(rng.choice(existing), parent_of(link))
        if r < 0.8:
            return rng.choice(("nowhere", "/nowhere/x", "d_wh/a", "../f_wh"))
        if r < 0.9:
            return rng.choice((".", "..", "/", "../.."))
        if r < 0.95:
            return link.rsplit("/", 1)[1]      # loop
        return "t" * rng.randint(100, 300)

    def next_op(self):
        rng = self.rng
        k = rng.choices(self.kinds, self.weights)[0]
        op = {"op": k}
        if k == "create":
            op.update(path=self.fresh() if rng.random() < 0.75 else self.path(), mode=pick_mode(rng, False),
                      data=self.data() if rng.random() < 0.7 else b"")
        elif k == "write":
            flags = [rng.choice(("O_WRONLY", "O_RDWR"))]
            for f, p in (("O_APPEND", 0.15), ("O_TRUNC", 0.15), ("O_CREAT", 0.2)):
                if rng.random() < p:
                    flags.append(f)
            op.update(path=self.path("f"), flags=flags, off=self.offset(), data=self.data(),
                      mode=pick_mode(rng, False))
        elif k == "truncate":
            op.update(path=self.path("f"), how=rng.choice(("path", "fd")),
                      len=rng.choice((0, rng.randint(0, 5000), rng.randint(0, 70000),
                                      rng.randint(0, 3 << 20))))
        elif k == "fallocate":
            op.update(path=self.path("f"), mode=rng.choice((0, 0, 1, 3, 0x10)),
                      off=self.offset(), len=rng.randint(1, 70000))
        elif k == "unlink":
            op.update(path=self.path("flpc"))
        elif k == "mkdir":
            op.update(path=self.fresh() if rng.random() < 0.8 else self.path(), mode=pick_mode(rng, True))
        elif k == "rmdir":
            op.update(path=self.path("d"))
        elif k == "rename":
            src = self.path("d" if rng.random() < 0.35 else "flpc")
            r = rng.random()
            if r < 0.5:
                dst = self.fresh()
            elif r < 0.8:
                t = self.model.get(src, "f")
                dst = self.path("d" if t == "d" else "flpc")
            elif r < 0.9:
                dst = self.path()
            elif r < 0.95:
                dst = join(src, self.fresh_name())       # into itself
            else:
                dst = join(rng.choice(self.existing("d") or ["/"]), src.rsplit("/", 1)[1])
            r = rng.random()
            op.update(src=src, dst=dst, flags=RENAME_NOREPLACE if r < 0.08 else
                      RENAME_EXCHANGE if r < 0.16 else 0)
        elif k == "symlink":
            path = self.fresh() if rng.random() < 0.85 else self.path()
            op.update(path=path, target=self.symlink_target(path))
        elif k == "link":
            op.update(src=self.path("f"), dst=self.fresh() if rng.random() < 0.85 else self.path(),
                      follow=rng.random() < 0.3)
        elif k == "chmod":
            op.update(path=self.path(), mode=rng.choice((pick_mode(rng, False), pick_mode(rng, True),
                                                         rng.randrange(0o10000))))
        elif k == "chown":
            op.update(path=self.path(), uid=rng.choice(UIDS + (-1,)), gid=rng.choice(UIDS + (-1,)),
                      follow=rng.random() < 0.5)
        elif k == "setxattr":
            op.update(path=self.path(), name=rng.choice(XATTR_NAMES),
                      value=rng.randbytes(rng.choice((0, 1, 8, 100, 3000))),
                      flags=rng.choice((0, 0, 0, os.XATTR_CREATE, os.XATTR_REPLACE)),
                      follow=rng.random() < 0.5)
        elif k in ("removexattr", "getxattr"):
            op.update(path=self.path(), name=rng.choice(XATTR_NAMES), follow=rng.random() < 0.5)
        elif k == "listxattr":
            op.update(path=self.path(), follow=rng.random() < 0.5)
        elif k == "utimensat":
            op.update(path=self.path(), atime=rand_time(rng), mtime=rand_time(rng),
                      follow=rng.random() < 0.4)
        elif k == "mkfifo":
            op.update(path=self.fresh() if rng.random() < 0.85 else self.path(), mode=pick_mode(rng, False))
        elif k == "mknod":
            op.update(path=self.fresh(), mode=0o644, rdev=rng.choice(((1, 3), (1, 3), (0, 0))))
        elif k == "read":
            op.update(path=self.path("f"), off=self.offset(), len=rng.choice((1, 100, 4096, 70000)))
        elif k == "stat":
            op.update(path=self.path(), follow=rng.random() < 0.5)
        elif k == "readdir":
            op.update(path=self.path("d"))
        elif k == "readlink":
            op.update(path=self.path("l"))
        elif k == "openflags":
            flags = [f for f, p in (("O_TRUNC", 0.3), ("O_APPEND", 0.2), ("O_CREAT", 0.2), ("O_EXCL", 0.1),
                                    ("O_NOATIME", 0.15), ("O_PATH", 0.1), ("O_DIRECTORY", 0.05))
                     if rng.random() < p]
            op.update(path=self.path("f") if rng.random() < 0.8 else self.fresh(),
                      acc=rng.choice(("R", "R", "W", "RW", "ACC3")), flags=flags, mode=pick_mode(rng, False),
                      data=self.data()[:3000])
        elif k == "fdop":
            path = self.path("fd" if rng.random() < 0.8 else None)
            event = rng.choice(("none", "unlink", "unlink", "rename", "replace", "replace"))
            call = rng.choice(("fchmod", "fchown", "futimens", "ftruncate", "fallocate", "fsetxattr",
                               "fgetxattr", "flistxattr", "fremovexattr", "fsync", "pread", "pwrite"))
            op.update(path=path, mode=rng.choice(("R", "R", "RW", "PATH")), event=event, call=call,
                      dst=self.fresh(), src2=self.path("d" if self.model.get(path) == "d" else "flpc"),
                      perm=rng.choice((0o600, 0o755, 0o4755, 0o000)), uid=rng.choice(UIDS), time=rand_time(rng),
                      len=rng.choice((0, 3, 5000, 70000)), name=rng.choice(XATTR_NAMES[:5]),
                      value=rng.randbytes(rng.choice((1, 40))))
        return op


def abbreviate(text):
    """Long runs of one character (the 200-byte name) as "n{200}", for readable diagnostics."""
    return re.sub(r"(.)\1{15,}", lambda m: f"{m.group(1)}{{{len(m.group(0))}}}", text)


def describe(op):
    parts = []
    for k, v in op.items():
        if k == "op":
            continue
        if isinstance(v, bytes):
            v = f"<{len(v)} bytes {hashlib.sha1(v).hexdigest()[:8]}>"
        elif k == "mode" and op["op"] != "fallocate" and isinstance(v, int):
            v = oct(v)
        elif k == "perm":
            v = oct(v)
        elif k == "mode":
            v = FALLOC_MODES.get(v, v)
        elif k == "flags" and op["op"] == "rename":
            v = {0: "0", 1: "NOREPLACE", 2: "EXCHANGE"}[v]
        elif k in ("atime", "mtime"):
            v = f"{v // 10**9}.{v % 10**9:09d}"
        parts.append(f"{k}={v!r}" if isinstance(v, str) and k not in ("mode", "flags") else f"{k}={v}")
    return f"{op['op']}({', '.join(parts)})"


# ------------------------------------------------------------------------------------------------
# What may be compared: mtimes the test set itself, and which paths may be hard-linked.

def under(p, root):
    return p == root or root == "/" or p.startswith(root + "/")


class Tracker:
    def __init__(self, initial):
        # every entry of the initial view had its mtime set explicitly when the layers were built
        self.mtime = set(initial)
        self.hardlinked = {p for p, e in initial.items() if e["type"] != "d" and e.get("nlink", 1) > 1}
        self.lower_links = set(self.hardlinked)     # names of lower hard links (for cross-reads)
        self.ignore = ()

    def _drop(self, s, p, subtree=True):
        for q in [q for q in s if (under(q, p) if subtree else q == p)]:
            s.discard(q)

    def _move(self, s, src, dst, exchange):
        a = {q for q in s if under(q, src)}
        b = {q for q in s if under(q, dst)}
        s -= a | b
        s |= {dst + q[len(src):] for q in a}
        if exchange:
            s |= {src + q[len(dst):] for q in b}

    def modified(self, p):
        """p's data changed: its mtime, and that of any hard link to it, is now the op's clock."""
        self.mtime.discard(p)
        if p in self.hardlinked:
            self.mtime -= self.hardlinked

    def apply(self, op, res, canon):
        k, ok = op["op"], res[0] == "ok"
        if k in ("write", "truncate", "fallocate"):
            self.modified(canon["path"])
            if "O_CREAT" in op.get("flags", ()):
                self.mtime.discard(parent_of(canon["path"]))
        elif k in ("create", "mkdir", "symlink", "mkfifo", "mknod"):
            self.mtime.discard(parent_of(canon["path"]))
        elif k in ("unlink", "rmdir"):
            self.mtime.discard(parent_of(canon["path"]))
            if ok:
                self._drop(self.mtime, canon["path"])
                self._drop(self.hardlinked, canon["path"])
                self._drop(self.lower_links, canon["path"])
        elif k == "link":
            self.mtime.discard(parent_of(canon["dst"]))
            if ok:
                self.mtime.discard(canon["dst"])
                self.hardlinked |= {canon["src"], canon["dst"]}
        elif k == "rename":
            self.mtime.discard(parent_of(canon["src"]))
            self.mtime.discard(parent_of(canon["dst"]))
            if ok and canon["src"] != canon["dst"] and not canon.get("noop"):
                ex = bool(op["flags"] & RENAME_EXCHANGE)
                self._move(self.mtime, canon["src"], canon["dst"], ex)
                self._move(self.hardlinked, canon["src"], canon["dst"], ex)
                self._move(self.lower_links, canon["src"], canon["dst"], ex)
        elif k == "utimensat" and ok:
            self.mtime.add(canon["path"])
        elif k == "openflags":
            if "O_CREAT" in op["flags"]:
                self.mtime.discard(parent_of(canon["path"]))
            self.modified(canon["path"])
        elif k == "fdop":
            name, obj, ev = canon["name"], canon["path"], op["event"]
            ev_ok = ok and res[1] and res[1][0] == "ok" and ev != "none" and not canon.get("noop")
            if ev != "none":
                self.mtime.discard(parent_of(name))
            gone = False
            if ev_ok and ev == "unlink":
                for s_ in (self.mtime, self.hardlinked, self.lower_links):
                    self._drop(s_, name)
                gone = obj == name
            elif ev_ok and ev == "rename" and canon["dst"] != name:
                self.mtime.discard(parent_of(canon["dst"]))
                for s_ in (self.mtime, self.hardlinked, self.lower_links):
                    self._move(s_, name, canon["dst"], False)
                obj = canon["dst"] if obj == name else obj
            elif ev_ok and ev == "replace" and canon["src2"] != name:
                self.mtime.discard(parent_of(canon["src2"]))
                for s_ in (self.mtime, self.hardlinked, self.lower_links):
                    self._move(s_, canon["src2"], name, False)
                gone = obj == name
            if not gone:
                self.modified(obj)

    def skip_cross(self, path, field, a, b):
        """skip() for a live view against a cross-read of its upper (see EXCLUSIONS)."""
        return self.skip(path, field, a, b) or (path in self.lower_links and field != "type")

    def skip(self, path, field, a, b):
        if field == "ino" or field in self.ignore:
            return True
        if field == "nlink":
            return "d" in (a.get("type"), b.get("type")) or path in self.hardlinked
        if field == "size":
            return a.get("type") == "d" and b.get("type") == "d"
        if field == "mtime_ns":
            return path not in self.mtime
        return False


FOLLOWS = {"write", "truncate", "fallocate", "chmod", "read", "readdir", "openflags"}


def canon_request(op):
    """Which op paths to resolve in the kernel view before the op: (key, path, follow last)."""
    k = op["op"]
    if k == "rename":
        return [("src", op["src"], False), ("dst", op["dst"], False)]
    if k == "link":
        return [("src", op["src"], op["follow"]), ("dst", op["dst"], False)]
    if k == "fdop":
        return [("path", op["path"], True), ("name", op["path"], False), ("dst", op["dst"], False),
                ("src2", op["src2"], False)]
    if "path" not in op:
        return []
    follow = k in FOLLOWS or op.get("follow", False)
    return [("path", op["path"], follow)]


# ------------------------------------------------------------------------------------------------

class Failure(Exception):
    pass


class Run:
    def __init__(self, args, tap, seed, binary):
        self.args, self.tap, self.seed, self.binary = args, tap, seed, binary
        self.log = []
        self.stats = {}
        self.tmp = None
        self.first = 0
        self.localize = None    # arguments of a run that finds the op of a view divergence
        self.names = ("kernel", "kernel2" if args.self_check else "unionfs")
        # --metacopy: both with metadata-only copy-up; the cross-reads then check the on-disk form
        self.kopts = tuple(o for o in T.KERNEL_OVL_OPTIONS if not o.startswith("metacopy=")) + \
            (("metacopy=on",) if args.metacopy else ("metacopy=off",))
        self.uopts = ("metacopy=on",) if args.metacopy else ()

    # -- reporting
    def fail(self, name, lines):
        if self.args.keep and self.tmp:
            with open(os.path.join(self.tmp, "ops.log"), "w") as f:
                f.write("\n".join(self.log) + "\n")
        self.tap.ok(False, abbreviate(name))
        self.tap.diag(f"seed {self.seed}")
        self.tap.diag(abbreviate("\n".join(lines)))
        if self.log:
            self.tap.diag(abbreviate("last operations:\n" + "\n".join(self.log[-8:])))
        raise Failure(name)

    def repro_args(self, i, check_from=None, cross=True):
        a = ["--seed", str(self.seed), "--ops", str(i + 1), "--batch", str(self.args.batch)]
        if check_from is not None:
            a += ["--check-from", str(check_from), "--cross-every", "1" if cross else str(1 << 30)]
        a += ["--self-check"] if self.args.self_check else []
        a += ["--metacopy"] if self.args.metacopy else []
        for f in self.args.ignore:
            a += ["--ignore", f]
        for o in self.args.skip_op:
            a += ["--skip-op", o]
        return a

    def op_repro(self, i):
        """For a failing op: re-run comparing the views after each op since the last compare,
        which shows whether the views had already diverged before it."""
        if self.first < i:
            self.localize = self.repro_args(i, self.first, False)
            return [self.repro(i, self.first, False)]
        return [self.repro(i)]

    def repro(self, i, check_from=None, cross=True):
        return "reproduce: " + " ".join([sys.argv[0]] + self.repro_args(i, check_from, cross))

    # -- mounting
    def mount_other(self, stack, mnt, lowers, upper=None, work=None):
        """Mount the implementation under test (or a second kernel mount with --self-check)."""
        if self.args.self_check:
            return stack.enter_context(T.kernel_overlay(mnt, lowers, upper, work, options=self.kopts,
                                                        flags=self.kflags))
        return stack.enter_context(T.fuse_union(self.binary, mnt, lowers, upper, work, options=self.uopts))

    def snapshot_view(self, mnt):
        return T.snapshot(mnt)

    def check_alive(self, i, op):
        if self.server is not None and not self.server.alive():
            self.fail(f"op #{i} {describe(op)}: sandbox-unionfs exited",
                      [f"exit status {self.server.proc.returncode}", "server log:",
                       self.server.log_tail(), self.repro(i)])

    def run(self):
        args, rng = self.args, random.Random(self.seed)
        with contextlib.ExitStack() as stack:
            tmp = self.tmp = stack.enter_context(T.tempdir("difftest.", keep=args.keep))
            self.tap.diag(f"work dir {tmp}")
            t0 = time.monotonic()
            layers, lower_names = build_layers(random.Random(self.seed ^ 0x5eed),
                                               os.path.join(tmp, "pristine"))
            sides = []
            for name in ("A", "B"):
                d = os.path.join(tmp, name)
                os.mkdir(d)
                lowers = []
                for i, layer in enumerate(layers):
                    dst = os.path.join(d, f"l{i}")
                    subprocess.run(["cp", "-a", layer, dst], check=True)
                    lowers.append(dst)
                for sub in ("upper", "work", "mnt", "xmnt"):
                    os.mkdir(os.path.join(d, sub), 0o755)
                os.chmod(os.path.join(d, "upper"), 0o755)
                os.utime(os.path.join(d, "upper"), ns=(BASE_TIME * 10**9, BASE_TIME * 10**9))
                sides.append({"dir": d, "lowers": lowers, "upper": os.path.join(d, "upper"),
                              "work": os.path.join(d, "work"), "mnt": os.path.join(d, "mnt"),
                              "xmnt": os.path.join(d, "xmnt")})
            A, B = sides
            # the implementation under test first: the kernel mount copies its nodev/nosuid flags
            self.kflags = ()
            self.server = None
            if args.self_check:
                self.kflags = ("nodev",)
            other = self.mount_other(stack, B["mnt"], B["lowers"], B["upper"], B["work"])
            if not args.self_check:
                self.server = other
                fl = T.mount_flags(B["mnt"])
                self.kflags = tuple(f for f in ("nodev", "nosuid", "noexec") if f in fl)
                self.tap.diag(f"{self.binary} mounted with {','.join(sorted(fl))}")
            stack.enter_context(T.kernel_overlay(A["mnt"], A["lowers"], A["upper"], A["work"], options=self.kopts,
                                                 flags=self.kflags))
            self.A, self.B = A, B
            wa = stack.enter_context(worker(A["mnt"], self.names[0]))
            wb = stack.enter_context(worker(B["mnt"], self.names[1]))
            self.tap.diag(f"setup {time.monotonic() - t0:.1f}s")

            sa, sb = self.snapshot_view(A["mnt"]), self.snapshot_view(B["mnt"])
            bad = [p for p, e in sa.items() if "nlink" not in e or "readdir" in e]
            if bad:   # a test bug (layers the kernel cannot read), not a divergence
                self.fail("kernel reads the generated layers", [f"unreadable: {bad[:5]}"])
            tracker = Tracker(sa)
            tracker.ignore = tuple(args.ignore)
            self.compare_views(-1, "initial merged views", sa, sb, tracker)
            gen = Gen(rng, lower_names, [w for w in OP_WEIGHTS if w[0] not in args.skip_op])
            nbatch, self.first = 0, 0
            for i in range(args.ops):
                if i % MODEL_REFRESH == 0:
                    res = wa.call({"op": "tree"})
                    gen.set_model(res[1] if res[0] == "ok" else {"/": "d"})
                op = gen.next_op()
                req = canon_request(op)
                canon = {}
                if req:
                    res = wa.call({"op": "realpaths",
                                   "paths": [p if follow else parent_of(p) for _, p, follow in req]})[1]
                    for (key, p, follow), rp in zip(req, res):
                        canon[key] = rp if follow or p == "/" else join(rp, p.rsplit("/", 1)[1])
                try:
                    ra = wa.call(op)
                    if args.self_check:
                        time.sleep(SELF_CHECK_GAP)
                    rb = wb.call(op)
                except Hung as e:
                    self.fail(f"op #{i} {describe(op)}: hung", [str(e), self.repro(i)])
                if (op["op"] == "rename" and ra[0] == "ok" and op["src"] != op["dst"]
                        and not op["flags"] & RENAME_EXCHANGE
                        and wa.call({"op": "exists", "path": op["src"]})[1]):
                    canon["noop"] = True    # two names of one file: rename() does nothing
                if (op["op"] == "fdop" and op["event"] in ("rename", "replace") and ra[0] == "ok"
                        and ra[1] and ra[1][0] == "ok"
                        and wa.call({"op": "exists", "path": op["path" if op["event"] == "rename" else "src2"]})[1]):
                    canon["noop"] = True
                self.log.append(f"#{i} {describe(op)} -> {self.fmt(ra)}")
                st = self.stats.setdefault(op["op"], {})
                st[ra[1] if ra[0] == "err" else "ok"] = st.get(ra[1] if ra[0] == "err" else "ok", 0) + 1
                self.check_alive(i, op)
                self.compare_results(i, op, ra, rb, canon, tracker)
                gen.model_update(op, ra, canon.get("noop", False))
                tracker.apply(op, ra, canon)
                per_op = args.check_from is not None and i >= args.check_from
                if (i + 1) % args.batch == 0 or i + 1 == args.ops or per_op:
                    nbatch += 1
                    self.tap.ok(True, f"ops #{self.first}..#{i}: same results on both")
                    sa, sb = self.snapshot_view(A["mnt"]), self.snapshot_view(B["mnt"])
                    self.compare_views(i, f"merged views equal after op #{i}", sa, sb, tracker)
                    if nbatch % args.cross_every == 0 or i + 1 == args.ops:
                        self.cross_read(i, sa, sb, tracker)
                    self.first = i + 1
            if args.keep:
                with open(os.path.join(tmp, "ops.log"), "w") as f:
                    f.write("\n".join(self.log) + "\n")
            # the lowers must be untouched
            wa.close()
            wb.close()
            self.check_lowers(layers)
            self.tap.diag(f"{args.ops} ops in {time.monotonic() - t0:.1f}s; results per op:")
            for k in sorted(self.stats):
                self.tap.diag(f"  {k:12} " + " ".join(f"{r}={n}" for r, n in sorted(self.stats[k].items())))

    @staticmethod
    def fmt(res):
        return res[1] if res[0] == "err" else f"ok {res[1]!r}" if res[1] is not None else "ok"

    @staticmethod
    def fdop_known_difference(op, ra, rb):
        """See EXCLUSIONS: the kernel refuses metadata changes through a read-only or O_PATH fd of a lower
        object unlinked or replaced since; sandbox-unionfs applies them to the open object, as ext4."""
        if op["op"] != "fdop" or op["event"] not in ("unlink", "replace") or op["mode"] not in ("R", "PATH"):
            return False
        if ra[0] != "ok" or rb[0] != "ok" or len(ra[1]) != 3 or len(rb[1]) != 3 or ra[1][0] != rb[1][0]:
            return False
        if ra[1][1] not in ("EEXIST", "ENOTDIR") or rb[1][1] != "ok":
            return False
        fa, fb = ra[1][2], rb[1][2]
        if not isinstance(fa, dict) or not isinstance(fb, dict):
            return fa == fb
        return {k: v for k, v in fa.items() if k in ("type", "size")} == \
            {k: v for k, v in fb.items() if k in ("type", "size")}

    def compare_results(self, i, op, ra, rb, canon, tracker):
        if self.fdop_known_difference(op, ra, rb):
            return
        if op["op"] == "stat" and ra[0] == rb[0] == "ok":
            diffs = T.compare_entries(canon["path"], ra[1], rb[1], tracker.skip)
            if diffs:
                self.fail(f"op #{i} {describe(op)}: results differ",
                          [T.format_diffs(diffs, self.names)] + self.op_repro(i))
            return
        if ra != rb:
            self.fail(f"op #{i} {describe(op)}: results differ",
                      [f"{self.names[0]}: {self.fmt(ra)}", f"{self.names[1]}: {self.fmt(rb)}"]
                      + self.op_repro(i))

    def compare_views(self, i, name, sa, sb, tracker, names=None, skip=None, cross=False):
        names = names or self.names
        diffs = T.compare_snapshots(sa, sb, skip or tracker.skip)
        if diffs:
            lines = ["first divergence: " + T.format_diffs(diffs[:1], names),
                     f"{len(diffs)} divergences:", T.format_diffs(diffs, names)]
            if i >= 0:
                if self.first < i:
                    lines.append(f"the op that diverged is one of #{self.first}..#{i}")
                    self.localize = self.repro_args(i, self.first, cross)
                    lines.append(self.repro(i, self.first, cross))
                else:
                    lines.append(f"first seen after op {self.log[-1] if self.log else '(none)'}")
            self.fail(name, lines)
        self.tap.ok(True, f"{name} ({len(sa)} entries, {len(tracker.mtime & set(sa))} mtimes compared)")

    def cross_read(self, i, sa, sb, tracker):
        """Each upper, read by the other implementation as top lowerdir, reads like the live view."""
        A, B = self.A, self.B
        os.sync()
        with contextlib.ExitStack() as st:
            try:
                self.mount_other(st, A["xmnt"], [A["upper"]] + A["lowers"])
            except T.MountError as e:
                self.fail(f"cross-read after op #{i}: mount of the kernel's upper failed", [str(e)])
            xa = self.snapshot_view(A["xmnt"])
        self.compare_views(i, f"{self.names[0]}'s upper read by {self.names[1]} equals live view "
                           f"after op #{i}",
                           sa, xa, tracker, (self.names[0] + " live", self.names[1] + " reading its upper"),
                           tracker.skip_cross, cross=True)
        with contextlib.ExitStack() as st:
            try:
                st.enter_context(T.kernel_overlay(B["xmnt"], [B["upper"]] + B["lowers"], options=self.kopts,
                                                  flags=self.kflags))
            except T.MountError as e:
                self.fail(f"cross-read after op #{i}: kernel mount of {self.names[1]}'s upper failed",
                          [str(e)])
            xb = self.snapshot_view(B["xmnt"])
        self.compare_views(i, f"{self.names[1]}'s upper read by {self.names[0]} equals live view "
                           f"after op #{i}",
                           sb, xb, tracker, (self.names[1] + " live", self.names[0] + " reading its upper"),
                           tracker.skip_cross, cross=True)

    def check_lowers(self, layers):
        def skip(path, field, a, b):
            return field == "ino" or (field == "size" and a.get("type") == "d")
        for side, s in (("A", self.A), ("B", self.B)):
            name = self.names[0 if side == "A" else 1]
            for orig, copy in zip(layers, s["lowers"]):
                diffs = T.compare_snapshots(T.snapshot(orig), T.snapshot(copy), skip)
                if diffs:
                    self.fail(f"{name} left its lower layer {os.path.basename(copy)} unmodified",
                              [T.format_diffs(diffs, ("pristine", name))])
        self.tap.ok(True, "no lower layer was modified")


def localize(argv):
    """Re-run the same sequence comparing after every op of the failing batch, to name the op."""
    cmd = [sys.executable, os.path.abspath(__file__)] + argv
    print(f"# localizing: {' '.join(cmd[1:])}", flush=True)
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=900)
        out = r.stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n(timed out)"
    lines = out.splitlines()
    first_bad = next((n for n, line in enumerate(lines) if line.startswith("not ok")), None)
    shown = lines[first_bad:] if first_bad is not None else lines[-5:]
    for line in shown:
        if not line.startswith("1.."):
            print("#   " + (line[2:] if line.startswith("# ") else line))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--ops", type=int, default=DEFAULT_OPS)
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    ap.add_argument("--cross-every", type=int, default=1, help="cross-read every N batches (and at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (unmounted) for inspection")
    ap.add_argument("--self-check", action="store_true", help="compare two kernel overlay mounts")
    ap.add_argument("--metacopy", action="store_true", help="mount both with metacopy=on")
    ap.add_argument("--check-from", type=int, metavar="N",
                    help="compare the views (and cross-read) after every op from op #N on")
    ap.add_argument("--no-localize", action="store_true",
                    help="on a view divergence, do not re-run to find the op that caused it")
    ap.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                    help="investigation only: also skip this snapshot field ("
                    + ", ".join(T.SNAPSHOT_FIELDS) + ")")
    ap.add_argument("--skip-op", action="append", default=[], metavar="OP",
                    help="investigation only: never generate this op (changes the whole sequence)")
    args = ap.parse_args()
    bad = [f for f in args.ignore if f not in T.SNAPSHOT_FIELDS] + \
        [o for o in args.skip_op if o not in dict(OP_WEIGHTS)]
    if bad:
        ap.error(f"unknown field or op: {', '.join(bad)}")
    if args.batch < 1 or args.ops < 0 or args.cross_every < 1:
        ap.error("--batch and --cross-every must be >= 1, --ops >= 0")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"# seed {seed}", flush=True)

    T.install_signal_handlers()
    T.require_root()
    T.require_overlayfs()
    binary = None
    if not args.self_check:
        T.require_fuse()
        binary = T.unionfs_binary()
    tap = T.Tap()
    run = Run(args, tap, seed, binary)
    try:
        run.run()
    except Failure:
        tap.done()
        if run.localize and not args.no_localize and args.check_from is None:
            localize(run.localize)
        return 1
    except (T.MountError, OSError, subprocess.CalledProcessError) as e:
        tap.ok(False, "test setup", f"seed {seed}\n{e}\n{traceback.format_exc()}")
        tap.done()
        return 1
    rc = tap.done()
    if rc:
        print(f"# seed {seed}")
    if args.ignore or args.skip_op:
        print("# WARNING: --ignore/--skip-op narrow the test: this run does not count as a pass")
    return rc


if __name__ == "__main__":
    sys.exit(main())
