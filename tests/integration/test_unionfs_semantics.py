#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Union semantics of sandbox-unionfs, checked against kernel overlayfs (redirect_dir=on, index=off,
metacopy=off, xino=off) as the oracle: topmost entry wins, copy-up on every modifying operation keeps
data, mode, owner, timestamps and user.* xattrs and leaves the lower file alone, sparse copy-up, whiteouts
and opaque dirs on disk, merged readdir, renames of files and directories, special files, xattrs, statfs,
fsync, fallocate, locks, shared mmap, and atomic copy-up (nothing half-copied visible in the upper)."""

import fcntl
import mmap
import os
import stat
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

MTIME = 1_000_000_000_123_456_789  # ns, with sub-second part
ATIME = 1_100_000_000_987_654_321
OWNER = (1234, 2345)
MODE = 0o640
XATTRS = {"user.foo": b"bar", "user.empty": b""}


class Failures:
    """Collects every mismatch of a multi-part test so one failure does not hide the others."""

    def __init__(self):
        self.msgs = []

    def eq(self, got, expected, what):
        if got != expected:
            self.msgs.append(f"{what}: expected {expected!r}, got {got!r}")

    def check(self, cond, what):
        if not cond:
            self.msgs.append(what)

    def run(self, fn, *a):
        try:
            fn(*a)
        except AssertionError as e:
            self.msgs.append(str(e))

    def done(self):
        if self.msgs:
            raise AssertionError(f"{len(self.msgs)} problem(s):\n" + "\n".join(self.msgs))


def lower_file(path, data):
    uf.write(path, data, mode=MODE, uid=OWNER[0], gid=OWNER[1])
    for k, v in XATTRS.items():
        os.setxattr(path, k, v)
    os.utime(path, ns=(ATIME, MTIME))


def xattrs_of(path):
    """user.* xattrs, without a union's own bookkeeping ones (fuse-overlayfs keeps user.fuseoverlayfs.* on
    disk; through the mount they must never show)."""
    return {x: os.getxattr(path, x, follow_symlinks=False) for x in os.listxattr(path, follow_symlinks=False)
            if x.startswith("user.") and not x.startswith("user.fuseoverlayfs.")}


def attrs(path):
    st = os.lstat(path)
    return {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime_ns,
            "data": uf.read(path), "xattrs": xattrs_of(path)}


# ---------------------------------------------------------------------------------------------------
# topmost entry wins

def test_topmost_wins(env):
    def populate(lowers, upper):
        uf.write(lowers[1] + "/f", "bottom")
        uf.write(lowers[0] + "/f", "top-lower")
        uf.write(lowers[1] + "/g", "bottom-g")
        uf.write(upper + "/g", "upper-g")
        os.mkdir(lowers[1] + "/x")  # dir below, file above: the file wins
        uf.write(lowers[1] + "/x/inner", "hidden")
        uf.write(lowers[0] + "/x", "file-x")
        uf.write(lowers[1] + "/y", "file-y")  # file below, dir above: the dir wins
        os.mkdir(lowers[0] + "/y")
        uf.write(lowers[0] + "/y/in", "in-y")
    u, k = uf.pair(env, populate, nlowers=2)
    fl = Failures()
    for m in (k, u):
        fl.eq(uf.read(m.p("f")), b"top-lower", f"{m.kind}: f")
        fl.eq(uf.read(m.p("g")), b"upper-g", f"{m.kind}: g")
        fl.eq(uf.read(m.p("x")), b"file-x", f"{m.kind}: x (file over dir)")
        fl.eq(uf.errname(os.stat, m.p("x/inner")), "ENOTDIR", f"{m.kind}: x/inner hidden under a file")
        fl.eq(sorted(os.listdir(m.p("y"))), ["in"], f"{m.kind}: y (dir over file)")
    fl.done()


# ---------------------------------------------------------------------------------------------------
# copy-up

COPYUP_OPS = {
    # name: (operation on the merged path, how the attributes must look afterwards)
    "write": (lambda m, p: _append(p, b"+more"), {"data": b"content-write+more", "mtime": None}),
    "truncate": (lambda m, p: os.truncate(p, 3), {"data": b"con", "mtime": None}),
    "chmod": (lambda m, p: os.chmod(p, 0o600), {"mode": 0o600}),
    "chown": (lambda m, p: os.chown(p, 4321, 5432), {"uid": 4321, "gid": 5432}),
    "utimens": (lambda m, p: os.utime(p, ns=(2_000_000_000_000_000_001, 2_000_000_005_000_000_002)),
                {"mtime": 2_000_000_005_000_000_002}),
    "setxattr": (lambda m, p: os.setxattr(p, "user.new", b"v"), {"xattrs": dict(XATTRS, **{"user.new": b"v"})}),
    "removexattr": (lambda m, p: os.removexattr(p, "user.foo"), {"xattrs": {"user.empty": b""}}),
    "link": (lambda m, p: os.link(p, p + ".link"), {}),
    "rename": (lambda m, p: os.rename(p, p + ".renamed"), {}),
}


def _append(p, data):
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _copyup_populate(lowers, upper):
    for name in COPYUP_OPS:
        lower_file(f"{lowers[0]}/d/f-{name}", f"content-{name}")
    os.utime(lowers[0] + "/d", ns=(ATIME, MTIME))


def test_copyup_preserves_metadata(env):
    u, k = uf.pair(env, _copyup_populate)
    lower_before = uf.snapshot(u.lowers[0])
    fl = Failures()
    for name, (op, changes) in COPYUP_OPS.items():
        for m in (k, u):
            p = m.p(f"d/f-{name}")
            op(m, p)
            final = p + {"link": "", "rename": ".renamed"}.get(name, "")
            want = {"mode": MODE, "uid": OWNER[0], "gid": OWNER[1], "mtime": MTIME,
                    "data": f"content-{name}".encode(), "xattrs": dict(XATTRS)}
            want.update(changes)
            got = attrs(final)
            upper_file = os.path.join(m.upper, os.path.relpath(final, m.mnt))
            got_upper = attrs(upper_file) if os.path.exists(upper_file) else "missing in upper"
            for key, val in want.items():
                if val is None:  # data changed: mtime is the time of the write, not checked
                    continue
                fl.eq(got[key], val, f"{m.kind}: {name}: {key} through the mount")
                if isinstance(got_upper, dict):
                    fl.eq(got_upper[key], val, f"{m.kind}: {name}: {key} of the upper file on disk")
            fl.check(isinstance(got_upper, dict) and stat.S_ISREG(os.lstat(upper_file).st_mode),
                     f"{m.kind}: {name}: no regular file in the upper at {os.path.relpath(upper_file, m.upper)}")
            if name == "link":
                fl.eq(os.stat(p).st_nlink, 2, f"{m.kind}: link: st_nlink of the original")
                fl.eq(os.stat(p).st_ino, os.stat(p + ".link").st_ino, f"{m.kind}: link: same inode")
            if name == "rename":
                fl.eq(uf.errname(os.stat, p), "ENOENT", f"{m.kind}: rename: old name")
    fl.eq(uf.snapshot(u.lowers[0]), lower_before, "union: lower layer after all copy-ups (must be untouched)")
    # no temp files left in the upper: exactly the expected names (whiteout for the renamed one)
    want_upper = sorted(["d/"] + [f"d/f-{n}" for n in COPYUP_OPS if n != "rename"] +
                        ["d/f-link.link", "d/f-rename", "d/f-rename.renamed"])
    fl.eq(uf.tree(u.upper), want_upper, "union: names in the upper after copy-ups")
    fl.check(uf.is_whiteout(u.upper + "/d/f-rename"), "union: renamed lower file left no whiteout")
    fl.eq(uf.tree(k.upper), want_upper, "kernel (oracle): names in the upper after copy-ups")
    fl.done()


def test_copyup_sparse_file_keeps_holes(env):
    size = 64 << 20

    def populate(lowers, upper):
        p = lowers[0] + "/sparse"
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, b"head", 0)
        os.pwrite(fd, b"middle", 32 << 20)
        os.ftruncate(fd, size)
        os.close(fd)
    u, k = uf.pair(env, populate)
    res = {}
    for m in (k, u):
        _append(m.p("sparse"), b"!")
        st = os.stat(os.path.join(m.upper, "sparse"))
        with open(m.p("sparse"), "rb") as f:
            head = f.read(4)
            f.seek(32 << 20)
            mid = f.read(6)
            f.seek(size)
            tail = f.read()
        # kernel overlayfs copies 1 MiB chunks that hold data and skips the rest: 2 MiB + 4 KiB here
        res[m.kind] = (st.st_size, st.st_blocks * 512 < (4 << 20), head, mid, tail)
    uf.oracle(res["kernel"], res["union"], (size + 1, True, b"head", b"middle", b"!"),
              "copy-up of a 64 MiB sparse file: (size, allocated < 4 MiB, head, middle, appended byte)")


def test_whiteout_on_unlink_and_rmdir(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/file", "x")
        os.mkdir(lowers[0] + "/emptydir")
        os.mkdir(lowers[0] + "/fulldir")
        uf.write(lowers[0] + "/fulldir/a", "a")
        os.symlink("file", lowers[0] + "/link")
    u, k = uf.pair(env, populate)
    fl = Failures()
    for m in (k, u):
        os.unlink(m.p("file"))
        os.unlink(m.p("link"))
        os.rmdir(m.p("emptydir"))
        os.unlink(m.p("fulldir/a"))
        os.rmdir(m.p("fulldir"))
        for n in ("file", "link", "emptydir", "fulldir"):
            fl.eq(uf.errname(os.lstat, m.p(n)), "ENOENT", f"{m.kind}: {n} after removal")
            fl.check(uf.is_whiteout(os.path.join(m.upper, n)),
                     f"{m.kind}: no whiteout (char 0/0) for {n} in the upper: "
                     f"{uf.errname(os.lstat, os.path.join(m.upper, n))}")
        fl.eq(sorted(os.listdir(m.mnt)), [], f"{m.kind}: listing after removing everything")
        m.remount()
        fl.eq(sorted(os.listdir(m.mnt)), [], f"{m.kind}: listing after remount")
    fl.eq(uf.tree(u.lowers[0]), ["emptydir/", "file", "fulldir/", "fulldir/a", "link"], "union: lower untouched")
    fl.done()


def test_rmdir_then_mkdir_is_opaque(env):
    def populate(lowers, upper):
        os.makedirs(lowers[0] + "/d/sub")
        uf.write(lowers[0] + "/d/x", "x")
        uf.write(lowers[0] + "/d/sub/y", "y")
    u, k = uf.pair(env, populate)
    fl = Failures()
    for m in (k, u):
        os.unlink(m.p("d/sub/y"))
        os.rmdir(m.p("d/sub"))
        os.unlink(m.p("d/x"))
        os.rmdir(m.p("d"))
        os.mkdir(m.p("d"), 0o750)
        fl.eq(os.listdir(m.p("d")), [], f"{m.kind}: new dir in place of a removed lower dir")
        fl.eq(stat.S_IMODE(os.stat(m.p("d")).st_mode), 0o750, f"{m.kind}: mode of the new dir")
        up = os.path.join(m.upper, "d")
        fl.eq(uf.errname(os.getxattr, up, "trusted.overlay.opaque") == "OK" and
              os.getxattr(up, "trusted.overlay.opaque"), b"y", f"{m.kind}: trusted.overlay.opaque in the upper")
        fl.check("trusted.overlay.opaque" not in os.listxattr(m.p("d")),
                 f"{m.kind}: opaque xattr visible through the mount")
        uf.write(m.p("d/new"), "n")
        m.remount()
        fl.eq(os.listdir(m.p("d")), ["new"], f"{m.kind}: opaque dir after remount")
    fl.done()


def test_readdir_merges(env):
    def populate(lowers, upper):
        for n in ("a", "b", "gone"):
            uf.write(f"{lowers[0]}/{n}", "l0")
        os.mkdir(lowers[0] + "/sub")
        uf.write(lowers[0] + "/sub/x", "x")
        for n in ("b", "c", "e"):
            uf.write(f"{lowers[1]}/{n}", "l1")
        os.mkdir(lowers[1] + "/sub")
        uf.write(lowers[1] + "/sub/y", "y")
        uf.write(lowers[1] + "/sub/x", "x-below")
        os.symlink("a", lowers[1] + "/sl")
        uf.write(upper + "/f", "up")
        uf.write(upper + "/b", "up")
        # many long names in both lowers, half shared, so the listing needs several getdents calls
        for i in range(600):
            uf.write(f"{lowers[0]}/big/{'n' * 100}{i:04d}", "")
            uf.write(f"{lowers[1]}/big/{'n' * 100}{i + 300:04d}", "")
    u, k = uf.pair(env, populate, nlowers=2)
    fl = Failures()
    expect_top = sorted([".", "..", "a", "b", "c", "e", "f", "sl", "sub", "big"])
    for m in (k, u):
        os.unlink(m.p("gone"))
        ents = uf.getdents(m.mnt)
        names = sorted(e[2] for e in ents)
        fl.eq(names, expect_top, f"{m.kind}: getdents of the root (merged, no duplicates, whiteout hidden)")
        for ino, dtype, name in ents:
            if name in (".", ".."):
                continue
            st = os.lstat(m.p(name))
            want = {stat.S_IFREG: 8, stat.S_IFDIR: 4, stat.S_IFLNK: 10}[stat.S_IFMT(st.st_mode)]
            fl.eq(dtype, want, f"{m.kind}: d_type of {name}")
        fl.eq(sorted(e[2] for e in uf.getdents(m.p("sub"))), [".", "..", "x", "y"], f"{m.kind}: merged subdir")
        big = [e[2] for e in uf.getdents(m.p("big"))]
        fl.eq(len(big), len(set(big)), f"{m.kind}: duplicates in a 900-entry merged dir")
        fl.eq(len(big), 902, f"{m.kind}: entries in a 900-entry merged dir (+ . and ..)")
        fl.eq(uf.read(m.p("b")), b"up", f"{m.kind}: b from the upper")
        fl.eq(uf.read(m.p("sub/x")), b"x", f"{m.kind}: sub/x from the top lower")
    fl.done()


# ---------------------------------------------------------------------------------------------------
# rename

def _rename_populate(lowers, upper):
    uf.write(lowers[0] + "/lf", "lower-file")
    uf.write(lowers[0] + "/lf2", "lower-file-2")
    uf.write(lowers[0] + "/ltarget", "lower-target")
    uf.write(upper + "/uf", "upper-file")
    uf.write(upper + "/uf2", "upper-file-2")
    os.makedirs(upper + "/udir/sub")
    uf.write(upper + "/udir/sub/f", "in-udir")
    os.makedirs(lowers[0] + "/ldir/sub")
    uf.write(lowers[0] + "/ldir/a", "ldir-a")
    uf.write(lowers[0] + "/ldir/sub/b", "ldir-sub-b")
    os.makedirs(lowers[0] + "/mdir")
    uf.write(lowers[0] + "/mdir/fromlower", "m-lower")
    os.makedirs(upper + "/mdir")
    uf.write(upper + "/mdir/fromupper", "m-upper")
    os.makedirs(lowers[0] + "/dst")


def test_rename_files(env):
    u, k = uf.pair(env, _rename_populate)
    fl = Failures()
    cases = [("lf", "lf.new", b"lower-file"), ("uf", "uf.new", b"upper-file"),
             ("lf2", "ltarget", b"lower-file-2"), ("uf2", "lf.new", b"upper-file-2"),
             ("ltarget", "dst/moved", b"lower-file-2")]
    for m in (k, u):
        for src, dst, data in cases:
            r = uf.errname(os.rename, m.p(src), m.p(dst))
            fl.eq(r, "OK", f"{m.kind}: rename {src} -> {dst}")
            fl.eq(uf.errname(os.lstat, m.p(src)), "ENOENT", f"{m.kind}: {src} after rename")
            fl.eq(uf.read(m.p(dst)) if r == "OK" else None, data, f"{m.kind}: content of {dst}")
        want = ["dst", "ldir", "lf.new", "mdir", "udir", "uf.new"]
        fl.eq(sorted(os.listdir(m.mnt)), want, f"{m.kind}: root listing")
        m.remount()
        fl.eq(sorted(os.listdir(m.mnt)), want, f"{m.kind}: after remount")
        fl.eq(uf.read(m.p("dst/moved")), b"lower-file-2", f"{m.kind}: dst/moved after remount")
    fl.eq(uf.tree(u.lowers[0]), uf.tree(k.lowers[0]), "union: lower tree untouched")
    fl.done()


def test_rename_directories(env):
    u, k = uf.pair(env, _rename_populate)
    fl = Failures()
    expect = {"udir.new": ["sub/", "sub/f"], "ldir.new": ["a", "sub/", "sub/b"],
              "mdir.new": ["fromlower", "fromupper"], "dst/ldir2": None}
    for m in (k, u):
        for src, dst in [("udir", "udir.new"), ("ldir", "ldir.new"), ("mdir", "mdir.new")]:
            fl.eq(uf.errname(os.rename, m.p(src), m.p(dst)), "OK", f"{m.kind}: rename dir {src} -> {dst}")
        for phase in ("mounted", "after remount"):
            for src, dst in [("udir", "udir.new"), ("ldir", "ldir.new"), ("mdir", "mdir.new")]:
                fl.eq(uf.errname(os.lstat, m.p(src)), "ENOENT", f"{m.kind} {phase}: old name {src}")
                got = uf.tree(m.p(dst)) if os.path.isdir(m.p(dst)) else "missing"
                fl.eq(got, expect[dst], f"{m.kind} {phase}: contents of {dst}")
            if os.path.isdir(m.p("ldir.new")):
                fl.eq(uf.read(m.p("ldir.new/sub/b")), b"ldir-sub-b", f"{m.kind} {phase}: ldir.new/sub/b")
            if phase == "mounted":
                m.remount()
        # a new dir with the old name must be empty, not show the old lower contents
        fl.eq(uf.errname(os.mkdir, m.p("ldir")), "OK", f"{m.kind}: mkdir of the old name of a renamed lower dir")
        fl.eq(os.listdir(m.p("ldir")) if os.path.isdir(m.p("ldir")) else "missing", [],
              f"{m.kind}: new dir under the old name of a renamed lower dir, mounted")
        m.remount()
        fl.eq(os.listdir(m.p("ldir")) if os.path.isdir(m.p("ldir")) else "missing", [],
              f"{m.kind}: new dir under the old name of a renamed lower dir, after remount")
        # rename a renamed lower dir again, into another (lower) dir
        fl.eq(uf.errname(os.rename, m.p("ldir.new"), m.p("dst/ldir2")), "OK", f"{m.kind}: second rename")
        fl.eq(uf.tree(m.p("dst/ldir2")) if os.path.isdir(m.p("dst/ldir2")) else "missing",
              ["a", "sub/", "sub/b"], f"{m.kind}: contents after the second rename")
    fl.eq(uf.tree(u.lowers[0]), uf.tree(k.lowers[0]), "union: lower tree untouched")
    fl.done()


# ---------------------------------------------------------------------------------------------------
# special files, links, xattrs

def test_links_symlinks_fifos_devices(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/lower", "L")
        os.symlink("../target/path", lowers[0] + "/lsym")
    u, k = uf.pair(env, populate)
    fl = Failures()
    for m in (k, u):
        uf.write(m.p("up"), "U")
        os.link(m.p("up"), m.p("up.hl"))
        os.link(m.p("lower"), m.p("lower.hl"))
        for a, b in (("up", "up.hl"), ("lower", "lower.hl")):
            sa, sb = os.stat(m.p(a)), os.stat(m.p(b))
            fl.eq((sa.st_nlink, sb.st_nlink, sa.st_ino == sb.st_ino), (2, 2, True), f"{m.kind}: hard link {a}/{b}")
            _append(m.p(b), b"+")
            fl.eq(uf.read(m.p(a))[-1:], b"+", f"{m.kind}: write through {b} seen through {a}")
        os.symlink("/abs/target", m.p("sym"))
        fl.eq(os.readlink(m.p("sym")), "/abs/target", f"{m.kind}: readlink of a new symlink")
        fl.eq(os.readlink(m.p("lsym")), "../target/path", f"{m.kind}: readlink of a lower symlink")
        fl.check(stat.S_ISLNK(os.lstat(m.p("sym")).st_mode), f"{m.kind}: symlink type")
        fl.eq(os.readlink(os.path.join(m.upper, "sym")), "/abs/target", f"{m.kind}: symlink in the upper")
        os.mkfifo(m.p("fifo"), 0o644)
        fl.check(stat.S_ISFIFO(os.lstat(m.p("fifo")).st_mode), f"{m.kind}: fifo type through the mount")
        fl.check(stat.S_ISFIFO(os.lstat(os.path.join(m.upper, "fifo")).st_mode), f"{m.kind}: fifo in the upper")
        fd = os.open(m.p("fifo"), os.O_RDWR | os.O_NONBLOCK)
        os.write(fd, b"through-fifo")
        fl.eq(os.read(fd, 100), b"through-fifo", f"{m.kind}: data through the fifo")
        os.close(fd)
        os.mknod(m.p("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        for where, p in (("mount", m.p("null")), ("upper", os.path.join(m.upper, "null"))):
            st = os.lstat(p)
            fl.eq((stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)), (True, 1, 3),
                  f"{m.kind}: char device 1:3 in the {where}")
        os.mknod(m.p("sock"), 0o644 | stat.S_IFSOCK)
        fl.check(stat.S_ISSOCK(os.lstat(m.p("sock")).st_mode), f"{m.kind}: socket node")
    fl.done()


def test_xattrs(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/lower", "L")
        os.setxattr(lowers[0] + "/lower", "user.lower", b"1")
        os.mkdir(lowers[0] + "/ldir")
        uf.write(lowers[0] + "/ldir/keep", "k")
        os.mkdir(lowers[0] + "/odir")
        uf.write(lowers[0] + "/odir/old", "o")
        os.mkdir(lowers[0] + "/other")
        uf.write(lowers[0] + "/other/secret", "s")
    u, k = uf.pair(env, populate)
    fl = Failures()
    for m in (k, u):
        uf.write(m.p("up"), "U")
        for n in ("up", "lower", "ldir"):
            p = m.p(n)
            fl.eq(uf.errname(os.setxattr, p, "user.a", b"alpha"), "OK", f"{m.kind}: setxattr on {n}")
            fl.eq(uf.errname(os.setxattr, p, "user.b", b"x" * 3000), "OK", f"{m.kind}: setxattr 3000 bytes on {n}")
            fl.eq(os.getxattr(p, "user.a"), b"alpha", f"{m.kind}: getxattr on {n}")
            fl.eq(os.getxattr(p, "user.b"), b"x" * 3000, f"{m.kind}: getxattr 3000 bytes on {n}")
            os.removexattr(p, "user.a")
            fl.eq(uf.errname(os.getxattr, p, "user.a"), "ENODATA", f"{m.kind}: getxattr after removexattr on {n}")
            fl.eq(uf.errname(os.removexattr, p, "user.a"), "ENODATA", f"{m.kind}: removexattr of a missing one")
            fl.eq(uf.errname(os.setxattr, p, "user.b", b"y", os.XATTR_CREATE), "EEXIST",
                  f"{m.kind}: XATTR_CREATE of an existing xattr on {n}")
            fl.eq(uf.errname(os.setxattr, p, "user.c", b"y", os.XATTR_REPLACE), "ENODATA",
                  f"{m.kind}: XATTR_REPLACE of a missing xattr on {n}")
        fl.eq(sorted(os.listxattr(m.p("lower"))), ["user.b", "user.lower"], f"{m.kind}: listxattr of lower")
        fl.eq(sorted(os.listxattr(m.p("ldir"))), ["user.b"], f"{m.kind}: listxattr of a copied-up dir")
        # overlay-private xattrs: never visible, and setting them through the mount must not take effect
        os.unlink(m.p("odir/old"))
        os.rmdir(m.p("odir"))
        os.mkdir(m.p("odir"))
        fl.eq([x for x in os.listxattr(m.p("odir")) if "overlay" in x], [], f"{m.kind}: private xattrs listed")
        fl.eq(uf.errname(os.getxattr, m.p("odir"), "trusted.overlay.opaque"), "ENODATA",
              f"{m.kind}: getxattr trusted.overlay.opaque through the mount")
        # Setting them through the mount: kernel overlayfs (>= 6.7) accepts and stores them escaped
        # (trusted.overlay.overlay.*), so they never take effect. The union must behave the same.
        esc = {}
        for m2 in (m,):
            r1 = uf.errname(os.setxattr, m.p("ldir"), "trusted.overlay.opaque", b"y")
            r2 = uf.errname(os.setxattr, m.p("ldir"), "trusted.overlay.redirect", b"/other")
            up = os.path.join(m.upper, "ldir")
            esc = {"setxattr opaque": r1, "setxattr redirect": r2,
                   "getxattr through the mount": uf.value(os.getxattr, m.p("ldir"), "trusted.overlay.opaque"),
                   "listed through the mount": sorted(x for x in os.listxattr(m.p("ldir")) if "overlay" in x),
                   "escaped xattrs in the upper": sorted(x for x in os.listxattr(up)
                                                         if x.startswith("trusted.overlay.overlay."))
                   if os.path.exists(up) else "no upper dir"}
        m.escaped = esc
        fl.eq(uf.errname(os.getxattr, up, "trusted.overlay.opaque") if os.path.exists(up) else "ENODATA", "ENODATA",
              f"{m.kind}: real opaque xattr written in the upper by a setxattr through the mount")
        fl.eq(uf.errname(os.getxattr, up, "trusted.overlay.redirect") if os.path.exists(up) else "ENODATA", "ENODATA",
              f"{m.kind}: real redirect xattr written in the upper by a setxattr through the mount")
        m.remount()
        fl.eq(sorted(os.listdir(m.p("ldir"))), ["keep"], f"{m.kind}: ldir after remount (not made opaque/redirected)")
    fl.eq(u.escaped, k.escaped, "private xattr names set through the mount (escaped as by kernel overlayfs)")
    fl.done()


def test_statfs_is_upper(env):
    res = {}
    for kind in ("union", "kernel"):
        lowers = [env.mkdir(kind, "l0")]
        t = env.mount_tmpfs(f"{kind}-up", "37m")
        up, wk = os.path.join(t, "upper"), os.path.join(t, "work")
        os.mkdir(up)
        os.mkdir(wk)
        mnt = env.mkdir(kind, "mnt")
        m = env.union(lowers, up, wk, mnt) if kind == "union" else env.kernel_overlay(lowers, up, wk, mnt)
        a, b = os.statvfs(m.mnt), os.statvfs(up)
        res[kind] = (a.f_blocks * a.f_frsize, a.f_files, a.f_namemax)
        want = (b.f_blocks * b.f_frsize, b.f_files, 255)
    uf.oracle(res["kernel"], res["union"], want, "statvfs of the mount (bytes total, inodes total, namemax) = upper's")


def test_fsync_fdatasync(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/lower", "L")
    u, k = uf.pair(env, populate)
    fl = Failures()
    for m in (k, u):
        for n in ("lower", "new"):
            fd = os.open(m.p(n), os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(fd, b"synced-" + n.encode(), 0)
            fl.eq(uf.errname(os.fsync, fd), "OK", f"{m.kind}: fsync of {n}")
            fl.eq(uf.errname(os.fdatasync, fd), "OK", f"{m.kind}: fdatasync of {n}")
            os.close(fd)
            fl.eq(uf.read(os.path.join(m.upper, n))[:len(n) + 7], b"synced-" + n.encode(), f"{m.kind}: {n} on disk")
        dfd = os.open(m.mnt, os.O_RDONLY | os.O_DIRECTORY)
        fl.eq(uf.errname(os.fsync, dfd), "OK", f"{m.kind}: fsync of the root directory")
        os.close(dfd)
        fd = os.open(m.p("lower"), os.O_RDONLY)
        fl.eq(uf.errname(os.fsync, fd), "OK", f"{m.kind}: fsync of a read-only fd")
        os.close(fd)
    fl.done()


def test_fallocate_and_punch_hole(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/lower", b"A" * (1 << 20))
    u, k = uf.pair(env, populate)
    res = {}
    for m in (k, u):
        out = []
        fd = os.open(m.p("new"), os.O_RDWR | os.O_CREAT, 0o644)
        os.posix_fallocate(fd, 0, 1 << 20)
        out.append(os.fstat(fd).st_size)
        out.append(os.stat(os.path.join(m.upper, "new")).st_blocks * 512 >= (1 << 20))
        os.close(fd)
        fd = os.open(m.p("lower"), os.O_RDWR)
        out.append(uf.errname(uf.fallocate, fd, uf.FALLOC_FL_PUNCH_HOLE | uf.FALLOC_FL_KEEP_SIZE,
                              4096, (1 << 20) - 8192))
        out.append(os.fstat(fd).st_size)
        data = os.pread(fd, 1 << 20, 0)
        out.append((data[:4096] == b"A" * 4096, data[4096:-4096] == bytes((1 << 20) - 8192),
                    data[-4096:] == b"A" * 4096))
        os.close(fd)
        out.append(os.stat(os.path.join(m.upper, "lower")).st_blocks * 512 <= 16384)
        fd = os.open(m.p("new"), os.O_RDWR)
        out.append(uf.errname(uf.fallocate, fd, uf.FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20))
        out.append(os.fstat(fd).st_size)
        os.close(fd)
        res[m.kind] = out
    uf.oracle(res["kernel"], res["union"],
              [1 << 20, True, "OK", 1 << 20, (True, True, True), True, "OK", 1 << 20],
              "fallocate: [size, allocated, punch, size, (data, hole, data), upper small, keep_size, size]")


def _lock_holder(ch, path, kind):
    fd = os.open(path, os.O_RDWR)
    if kind == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        fcntl.fcntl(fd, fcntl.F_SETLK, uf.flock_struct(fcntl.F_WRLCK, 0, 100))
    ch.send("locked")
    ch.recv(30)
    os.close(fd)
    ch.send("released")


def test_flock_and_posix_locks(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/lockme", "x")
    u, k = uf.pair(env, populate)
    res = {}
    for m in (k, u):
        out = []
        p = m.p("lockme")
        for kind in ("flock", "posix"):
            ch = uf.Child(env, _lock_holder, p, kind)
            out.append(ch.recv())
            fd = os.open(p, os.O_RDWR)
            if kind == "flock":
                out.append(uf.errname(fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
                out.append(uf.errname(fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB))
            else:
                out.append(uf.errname(fcntl.fcntl, fd, fcntl.F_SETLK, uf.flock_struct(fcntl.F_WRLCK, 50, 10)))
                got = uf.flock_unpack(fcntl.fcntl(fd, fcntl.F_GETLK, uf.flock_struct(fcntl.F_RDLCK, 0, 10)))
                out.append((got["type"] == fcntl.F_WRLCK, got["pid"] == ch.pid, got["start"], got["len"]))
                out.append(uf.errname(fcntl.fcntl, fd, fcntl.F_SETLK, uf.flock_struct(fcntl.F_WRLCK, 100, 10)))
            ch.send("release")
            out.append(ch.recv())
            ch.wait()
            if kind == "flock":
                out.append(uf.errname(fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB))
            else:
                out.append(uf.errname(fcntl.fcntl, fd, fcntl.F_SETLK, uf.flock_struct(fcntl.F_WRLCK, 0, 100)))
            os.close(fd)
        res[m.kind] = out
    uf.oracle(res["kernel"], res["union"],
              ["locked", "EAGAIN", "EAGAIN", "released", "OK",
               "locked", "EAGAIN", (True, True, 0, 100), "OK", "released", "OK"],
              "lock conflicts between two processes")


def test_shared_mmap(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/mapped", b"." * 8192)
    u, k = uf.pair(env, populate)
    res = {}
    for m in (k, u):
        out = []
        fd = os.open(m.p("mapped"), os.O_RDWR)
        mm = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        mm[100:104] = b"MMAP"
        mm[5000:5004] = b"PAGE"
        mm.flush()
        fd2 = os.open(m.p("mapped"), os.O_RDONLY)
        out.append((os.pread(fd2, 4, 100), os.pread(fd2, 4, 5000)))
        os.close(fd2)
        mm.close()
        os.close(fd)
        m.remount()
        data = uf.read(m.p("mapped"))
        out.append((data[100:104], data[5000:5004], len(data)))
        out.append(uf.read(os.path.join(m.upper, "mapped"))[100:104])
        out.append(uf.read(m.lowers[0] + "/mapped")[100:104])
        res[m.kind] = out
    uf.oracle(res["kernel"], res["union"], [(b"MMAP", b"PAGE"), (b"MMAP", b"PAGE", 8192), b"MMAP", b"...."],
              "shared writable mmap: [read() after msync, after remount, upper, lower]")


def test_copyup_atomic(env):
    size = 64 << 20

    def populate(lowers, upper):
        uf.write(lowers[0] + "/big", b"\xab" * size)
        os.mkdir(lowers[0] + "/dir")
        for i in range(50):
            uf.write(f"{lowers[0]}/dir/f{i}", b"x" * 10000)
    (u,) = uf.pair(env, populate, kernel=False)
    seen_sizes, seen_names = set(), set()
    rounds = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            rounds[0] += 1
            try:
                names = os.listdir(u.upper)
            except OSError:
                continue
            seen_names.update(names)
            try:
                seen_sizes.add(os.stat(os.path.join(u.upper, "big")).st_size)
            except FileNotFoundError:
                pass
            try:
                for n in os.listdir(os.path.join(u.upper, "dir")):
                    seen_names.add("dir/" + n)
                    s = os.stat(os.path.join(u.upper, "dir", n)).st_size
                    if s != 10000 and not n.startswith("f"):
                        seen_sizes.add(("dir", n, s))
                    elif s != 10000 and s != 10001:
                        seen_sizes.add(("dir", n, s))
            except OSError:
                pass
    t = threading.Thread(target=watch)
    t.start()
    try:
        _append(u.p("big"), b"!")
        for i in range(50):
            _append(u.p(f"dir/f{i}"), b"!")
    finally:
        stop.set()
        t.join()
    fl = Failures()
    fl.check(seen_sizes <= {size, size + 1},
             f"half-copied file visible in the upper: sizes seen {sorted(map(str, seen_sizes))[:10]}")
    fl.eq(sorted(seen_names - set(["big", "dir"] + [f"dir/f{i}" for i in range(50)])), [],
          "unexpected names seen in the upper during copy-up (temp names must stay in the workdir)")
    fl.check(rounds[0] >= 10, f"test setup: the watcher only polled {rounds[0]} times")
    fl.eq(uf.tree(u.upper), sorted(["big", "dir/"] + [f"dir/f{i}" for i in range(50)]), "upper after copy-up")
    left = [p for p in uf.tree(u.work) if not p.endswith("/")]
    fl.eq(left, [], "non-directory files left in the workdir after copy-ups")
    fl.eq(os.stat(u.p("big")).st_size, size + 1, "size after append")
    fl.done()


if __name__ == "__main__":
    uf.main()
