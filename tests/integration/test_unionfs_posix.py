#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""POSIX conformance of sandbox-unionfs, three ways: every scenario runs on a plain ext4 directory, on a
kernel overlayfs mount and on the union, with the same "lower" content (written directly into the ext4
dir, into the lower layer of the two unions). All three must give the same results, and those must be the
values written in the test: NAME_MAX/PATH_MAX limits and ENAMETOOLONG, umask, directory link counts, and
the errno of every failing rename/rmdir/unlink/mkdir/link/open."""

import os
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402


class Plain:
    """An ext4 directory playing the merged view; lower content is written straight into it."""
    kind = "ext4"

    def __init__(self, d):
        self.mnt = d

    def p(self, *rel):
        return os.path.join(self.mnt, *rel)

    def remount(self):
        pass


def three(env, populate, scenario, expected, what, fork=False, **fork_kw):
    """Runs scenario(root) -> list of results on ext4, kernel overlayfs and the union, after
    populate(dir) filled the lower layer (or the ext4 dir). Asserts all agree and equal expected."""
    roots = []
    d = env.mkdir("ext4")
    populate(d)
    roots.append(Plain(d))
    for kind in ("kernel", "union"):
        lay = uf.layout(env, kind)
        populate(lay["lowers"][0])
        if kind == "kernel":
            roots.append(env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"]))
        else:
            roots.append(env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"]))
    def run(r):
        out = []
        try:
            scenario(r, out)
        except Exception as e:  # noqa: BLE001 - shows up as a mismatch at the step that broke
            out.append(("exception", f"{type(e).__name__}: {e}"[:300]))
        finally:
            os.chdir("/")
        return out
    res = {}
    for r in roots:
        if fork:
            res[r.kind] = uf.fork_call(run, r, **fork_kw)
        else:
            res[r.kind] = run(r)
    msgs = []

    def short(v):
        r = repr(v)
        return r if len(r) < 160 else r[:150] + "...'"
    for i, (label, want) in enumerate(expected):
        vals = {}
        for k, v in res.items():
            if i < len(v):
                vals[k] = v[i][1] if v[i][0] == label else f"<{v[i][0]}: {v[i][1]}>"
            else:
                vals[k] = "<missing>"
        if vals["ext4"] != want or vals["kernel"] != want:
            msgs.append(f"ORACLE MISMATCH (test bug?) {label}: ext4 {short(vals['ext4'])}, "
                        f"kernel {short(vals['kernel'])}, test expects {short(want)}")
        if vals["union"] != want:
            msgs.append(f"{label}: expected {short(want)} (as ext4 and kernel overlayfs), got {short(vals['union'])}")
            if isinstance(vals["union"], str) and vals["union"].startswith("<"):
                msgs.append("(the union's sequence stopped there; later steps not run)")
                break
    for k, v in res.items():
        if len(v) != len(expected) and not (k == "union" and msgs):
            msgs.append(f"{k}: {len(v)} results for {len(expected)} expectations; last: {short(v[-1]) if v else None}")
    if msgs:
        raise AssertionError(f"{what}: {len(msgs)} problem(s):\n" + "\n".join(msgs))


def E(fn, *a, **kw):
    return uf.errname(fn, *a, **kw)


def V(fn, *a, **kw):
    return uf.value(fn, *a, **kw)


# ---------------------------------------------------------------------------------------------------

N255 = "a" * 255
N255B = "b" * 255
N256 = "c" * 256


def test_name_max(env):
    def populate(d):
        uf.write(os.path.join(d, "L" * 255), "lower-255")
        os.mkdir(os.path.join(d, "D" * 255))
        uf.write(os.path.join(d, "D" * 255, "E" * 255), "deep")

    def scenario(r, out):
        add = lambda label, v: out.append((label, v))  # noqa: E731
        add("create 255", E(uf.create, r.p(N255)))
        add("stat 255", E(os.stat, r.p(N255)))
        add("255 in readdir", N255 in [e[2] for e in uf.getdents(r.mnt)])
        add("rename 255 -> 255", E(os.rename, r.p(N255), r.p(N255B)))
        add("old 255 gone", E(os.stat, r.p(N255)))
        add("unlink 255", E(os.unlink, r.p(N255B)))
        add("mkdir 255", E(os.mkdir, r.p(N255)))
        add("symlink 255", E(os.symlink, N255, r.p(N255, N255B)))
        add("readlink 255", V(os.readlink, r.p(N255, N255B)))
        add("create 256", E(uf.create, r.p(N256)))
        add("stat 256", E(os.stat, r.p(N256)))
        add("lstat 256 in a lower dir", E(os.lstat, r.p("D" * 255, N256)))
        add("mkdir 256", E(os.mkdir, r.p(N256)))
        add("rename to 256", E(os.rename, r.p(N255), r.p(N256)))
        add("symlink 256", E(os.symlink, "x", r.p(N256)))
        add("link 256", E(os.link, r.p("L" * 255), r.p(N256)))
        add("unlink 256", E(os.unlink, r.p(N256)))
        add("lower 255: read", V(uf.read, r.p("L" * 255)))
        add("lower 255: append (copy-up)", E(lambda: open(r.p("L" * 255), "a").close()))
        add("lower 255: unlink (whiteout)", E(os.unlink, r.p("L" * 255)))
        add("lower 255: gone", E(os.stat, r.p("L" * 255)))
        add("lower 255/255: copy-up", E(os.chmod, r.p("D" * 255, "E" * 255), 0o600))
        add("lower 255/255: unlink", E(os.unlink, r.p("D" * 255, "E" * 255)))
        add("lower 255 dir: rmdir", E(os.rmdir, r.p("D" * 255)))
        add("lower 255 dir: mkdir again", E(os.mkdir, r.p("D" * 255)))
        r.remount()
        add("after remount", sorted(os.listdir(r.mnt)))
        add("after remount: opaque", os.listdir(r.p("D" * 255)))
        return out
    three(env, populate, scenario, [
        ("create 255", "OK"), ("stat 255", "OK"), ("255 in readdir", True), ("rename 255 -> 255", "OK"),
        ("old 255 gone", "ENOENT"), ("unlink 255", "OK"), ("mkdir 255", "OK"), ("symlink 255", "OK"),
        ("readlink 255", N255),
        ("create 256", "ENAMETOOLONG"), ("stat 256", "ENAMETOOLONG"), ("lstat 256 in a lower dir", "ENAMETOOLONG"),
        ("mkdir 256", "ENAMETOOLONG"), ("rename to 256", "ENAMETOOLONG"), ("symlink 256", "ENAMETOOLONG"),
        ("link 256", "ENAMETOOLONG"), ("unlink 256", "ENAMETOOLONG"),
        ("lower 255: read", b"lower-255"), ("lower 255: append (copy-up)", "OK"),
        ("lower 255: unlink (whiteout)", "OK"), ("lower 255: gone", "ENOENT"),
        ("lower 255/255: copy-up", "OK"), ("lower 255/255: unlink", "OK"), ("lower 255 dir: rmdir", "OK"),
        ("lower 255 dir: mkdir again", "OK"),
        ("after remount", sorted([N255, "D" * 255])), ("after remount: opaque", []),
    ], "NAME_MAX")


# components of 200 bytes (201 with the slash), well below NAME_MAX, so only the path length is tested:
# LEVELS of them plus a name of LEAF bytes is exactly PATH_MAX - 1 = 4095 bytes
COMP = "x" * 200  # the chain the lower layer holds
YCOMP = "y" * 200  # the chain created through the mount
LEVELS, LEAF = 20, 75


def _path_max(r, out):
    os.chdir(r.mnt)
    dirs = "/".join([YCOMP] * LEVELS)  # 20 * 201 - 1 = 4019 bytes
    made = "OK"
    for i in range(1, LEVELS + 1):
        r_ = E(os.mkdir, "/".join([YCOMP] * i))
        if r_ != "OK":
            made = f"{r_} at level {i} ({i * 201 - 1} bytes)"
            break
    out.append(("mkdir 20 levels of 200 bytes", made))
    p4095 = dirs + "/" + "f" * LEAF  # 4095 bytes: PATH_MAX - 1
    p4096 = dirs + "/" + "g" * (LEAF + 1)
    out.append(("path of 4095 bytes", len(p4095) == 4095))
    out.append(("create 4095", E(uf.create, p4095)))
    out.append(("stat 4095", E(os.stat, p4095)))
    out.append(("write+read 4095", E(lambda: open(p4095, "w").write("deep")) == "OK" and V(uf.read, p4095)))
    out.append(("rename within 4095", E(os.rename, p4095, dirs + "/" + "h" * LEAF)))
    out.append(("create 4096", E(uf.create, p4096)))
    out.append(("stat 4096", E(os.stat, p4096)))
    out.append(("mkdir 4096", E(os.mkdir, p4096)))
    lp = "/".join([COMP] * LEVELS) + "/" + "l" * LEAF
    out.append(("lower file at 4095: read", V(uf.read, lp)))
    out.append(("lower file at 4095: copy-up", E(os.chmod, lp, 0o600)))
    # relative chdir to the bottom, then short names work
    for _ in range(LEVELS):
        os.chdir(YCOMP)
    out.append(("relative create at the bottom", E(uf.create, "rel")))
    out.append(("relative read at the bottom", V(uf.read, "h" * LEAF)))
    out.append(("unlink at the bottom", E(os.unlink, "rel")))
    os.chdir(r.mnt)
    for _ in range(LEVELS):
        os.chdir(COMP)
    out.append(("relative append to the lower file at the bottom", E(lambda: open("l" * LEAF, "a").write("+"))))
    out.append(("relative read of it", V(uf.read, "l" * LEAF)))
    if hasattr(r, "upper"):
        ufd = os.open(r.upper, os.O_RDONLY | os.O_DIRECTORY)
        out.append(("in the upper", V(lambda: uf.read_at(ufd, lp))))
        os.close(ufd)
    else:
        out.append(("in the upper", b"lower-deep+"))


def _populate_path_max(d):
    cwd = os.getcwd()
    os.chdir(d)
    try:
        for _ in range(LEVELS):
            os.mkdir(COMP)
            os.chdir(COMP)
        uf.write("l" * LEAF, "lower-deep")
    finally:
        os.chdir(cwd)


def test_path_max(env):
    three(env, _populate_path_max, _path_max, [
        ("mkdir 20 levels of 200 bytes", "OK"), ("path of 4095 bytes", True), ("create 4095", "OK"),
        ("stat 4095", "OK"), ("write+read 4095", b"deep"),
        ("rename within 4095", "OK"), ("create 4096", "ENAMETOOLONG"), ("stat 4096", "ENAMETOOLONG"),
        ("mkdir 4096", "ENAMETOOLONG"), ("lower file at 4095: read", b"lower-deep"),
        ("lower file at 4095: copy-up", "OK"), ("relative create at the bottom", "OK"),
        ("relative read at the bottom", b"deep"), ("unlink at the bottom", "OK"),
        ("relative append to the lower file at the bottom", "OK"), ("relative read of it", b"lower-deep+"),
        ("in the upper", b"lower-deep+"),
    ], "PATH_MAX", fork=True)


DEEP = 32  # 32 * 201 bytes: a tree deeper than PATH_MAX, only reachable with relative chdir


def _populate_deep(d):
    cwd = os.getcwd()
    os.chdir(d)
    try:
        for _ in range(DEEP):
            os.mkdir(COMP)
            os.chdir(COMP)
        uf.write("lowerfile", "below PATH_MAX")
    finally:
        os.chdir(cwd)


def _deep(r, out):
    os.chdir(r.mnt)
    for i in range(DEEP):
        os.chdir(COMP)
    out.append(("read a lower file deeper than PATH_MAX", V(uf.read, "lowerfile")))
    out.append(("copy-up it", E(lambda: open("lowerfile", "a").write("+"))))
    out.append(("read back", V(uf.read, "lowerfile")))
    out.append(("mkdir deeper", E(os.mkdir, "more")))
    out.append(("create deeper", E(lambda: open("more/new", "w").write("n"))))
    out.append(("rename deeper", E(os.rename, "more/new", "new2")))
    out.append(("listing", V(lambda: sorted(os.listdir(".")))))
    out.append(("unlink lower deeper", E(os.unlink, "lowerfile")))
    out.append(("listing after unlink", V(lambda: sorted(os.listdir(".")))))
    os.chdir("/")
    return out


def test_tree_deeper_than_path_max(env):
    three(env, _populate_deep, _deep, [
        ("read a lower file deeper than PATH_MAX", b"below PATH_MAX"), ("copy-up it", "OK"),
        ("read back", b"below PATH_MAX+"), ("mkdir deeper", "OK"), ("create deeper", "OK"),
        ("rename deeper", "OK"), ("listing", ["lowerfile", "more", "new2"]), ("unlink lower deeper", "OK"),
        ("listing after unlink", ["more", "new2"]),
    ], "tree deeper than PATH_MAX", fork=True)


def _umask(r, out):
    mode = lambda p: oct(stat.S_IMODE(os.lstat(r.p(p)).st_mode))  # noqa: E731
    os.mkfifo(r.p("fifo"), 0o777)
    out.append(("mkfifo 0777", mode("fifo")))
    os.mknod(r.p("node"), 0o777 | stat.S_IFREG)
    out.append(("mknod S_IFREG 0777", mode("node")))
    os.mknod(r.p("chr"), 0o777 | stat.S_IFCHR, os.makedev(1, 3))
    out.append(("mknod S_IFCHR 0777", mode("chr")))
    os.mkdir(r.p("dir"), 0o777)
    out.append(("mkdir 0777", mode("dir")))
    uf.create(r.p("file"), 0o777)
    out.append(("open O_CREAT 0777", mode("file")))
    os.mkfifo(r.p("lowerdir/fifo"), 0o666)
    out.append(("mkfifo 0666 in a lower dir", mode("lowerdir/fifo")))
    return out


def test_umask(env):
    three(env, lambda d: os.mkdir(os.path.join(d, "lowerdir")), _umask, [
        ("mkfifo 0777", "0o750"), ("mknod S_IFREG 0777", "0o750"), ("mknod S_IFCHR 0777", "0o750"),
        ("mkdir 0777", "0o750"), ("open O_CREAT 0777", "0o750"), ("mkfifo 0666 in a lower dir", "0o640"),
    ], "umask 027", fork=True, umask=0o027)


def test_dir_link_counts(env):
    def scenario(r, out):
        nl = lambda p: os.stat(r.p(p)).st_nlink  # noqa: E731
        os.mkdir(r.p("a"))
        out.append(("new dir", nl("a")))
        os.mkdir(r.p("a/b"))
        os.mkdir(r.p("a/c"))
        uf.write(r.p("a/file"), "")
        out.append(("2 subdirs + a file", nl("a")))
        os.rmdir(r.p("a/b"))
        out.append(("after rmdir", nl("a")))
        os.mkdir(r.p("x"))
        os.rename(r.p("a/c"), r.p("x/c"))
        out.append(("rename subdir away: source, target", (nl("a"), nl("x"))))
        os.rename(r.p("x/c"), r.p("x/c2"))
        out.append(("rename within the same dir", nl("x")))
        os.mkdir(r.p("a/e"))
        os.rename(r.p("x/c2"), r.p("a/e"))
        out.append(("rename over an empty dir: a, x", (nl("a"), nl("x"))))
        os.rename(r.p("a/file"), r.p("x/file"))
        out.append(("rename of a file does not count", (nl("a"), nl("x"))))
        os.mkdir(r.p("a/e/deeper"))
        out.append(("grandchild does not count", (nl("a"), nl("a/e"))))
        r.remount()
        out.append(("after remount", (nl("a"), nl("a/e"), nl("x"))))
        return out
    three(env, lambda d: None, scenario, [
        ("new dir", 2), ("2 subdirs + a file", 4), ("after rmdir", 3), ("rename subdir away: source, target", (2, 3)),
        ("rename within the same dir", 3), ("rename over an empty dir: a, x", (3, 2)),
        ("rename of a file does not count", (3, 2)), ("grandchild does not count", (3, 3)),
        ("after remount", (3, 3, 2)),
    ], "directory link counts")


def _populate_errnos(d):
    uf.write(os.path.join(d, "lfile"), "lower")
    os.mkdir(os.path.join(d, "ldir_empty"))
    os.mkdir(os.path.join(d, "ldir_empty2"))
    os.mkdir(os.path.join(d, "ldir_nonempty"))
    uf.write(os.path.join(d, "ldir_nonempty/x"), "x")
    os.mkdir(os.path.join(d, "ldir_nonempty2"))
    uf.write(os.path.join(d, "ldir_nonempty2/y"), "y")
    for n in ("ldir_wh", "ldir_wh2", "ldir_wh3"):
        os.mkdir(os.path.join(d, n))
        uf.write(os.path.join(d, n, "p"), "p")
        uf.write(os.path.join(d, n, "q"), "q")
    os.mkdir(os.path.join(d, "ldir_wh3", "sub"))


def _errnos(r, out):

    def add(label, v):
        out.append((label, v))
    p = r.p
    os.mkdir(p("udir"))
    uf.write(p("udir/f"), "f")
    for i in range(1, 8):
        os.mkdir(p(f"src{i}"))
    uf.write(p("src4/marker"), "m")
    add("rename dir over empty lower dir", E(os.rename, p("src1"), p("ldir_empty")))
    add("rename dir over lower dir with lower entries", E(os.rename, p("src2"), p("ldir_nonempty")))
    add("rename dir over upper dir with entries", E(os.rename, p("src3"), p("udir")))
    for n in ("p", "q"):
        os.unlink(p("ldir_wh", n))
    add("rename dir over dir emptied by whiteouts", E(os.rename, p("src4"), p("ldir_wh")))
    add("  its listing", sorted(os.listdir(p("ldir_wh"))))
    add("rename lower dir over lower dir with entries", E(os.rename, p("ldir_nonempty"), p("ldir_nonempty2")))
    add("rename dir over file", E(os.rename, p("src5"), p("lfile")))
    add("rename file over dir", E(os.rename, p("lfile"), p("ldir_empty2")))
    add("rename file over upper dir", E(os.rename, p("udir/f"), p("src6")))
    add("rename dir into itself", E(os.rename, p("ldir_nonempty"), p("ldir_nonempty/sub")))
    add("rename missing", E(os.rename, p("missing"), p("x")))
    add("rmdir lower dir with entries", E(os.rmdir, p("ldir_nonempty")))
    add("rmdir upper dir with entries", E(os.rmdir, p("udir")))
    for n in ("p", "q"):
        os.unlink(p("ldir_wh2", n))
    add("rmdir dir emptied by whiteouts", E(os.rmdir, p("ldir_wh2")))
    add("  then stat", E(os.stat, p("ldir_wh2")))
    for n in ("p", "q"):
        os.unlink(p("ldir_wh3", n))
    add("rmdir dir with a lower subdir left", E(os.rmdir, p("ldir_wh3")))
    add("rmdir a file", E(os.rmdir, p("lfile")))
    add("rmdir missing", E(os.rmdir, p("missing")))
    add("unlink lower dir", E(os.unlink, p("ldir_nonempty")))
    add("unlink upper dir", E(os.unlink, p("udir")))
    add("unlink missing", E(os.unlink, p("missing")))
    add("mkdir over lower file", E(os.mkdir, p("lfile")))
    add("mkdir over lower dir", E(os.mkdir, p("ldir_nonempty")))
    add("mkdir over upper dir", E(os.mkdir, p("udir")))
    add("mkdir in missing dir", E(os.mkdir, p("missing/x")))
    add("link to a lower dir", E(os.link, p("ldir_nonempty"), p("dlink")))
    add("link to an upper dir", E(os.link, p("udir"), p("dlink")))
    add("link over existing", E(os.link, p("lfile"), p("udir/f")))
    add("symlink over existing", E(os.symlink, "x", p("lfile")))
    add("open missing", E(os.open, p("missing"), os.O_RDONLY))
    add("open missing in lower dir", E(os.open, p("ldir_nonempty/missing"), os.O_RDONLY))
    add("open whited-out", E(os.open, p("ldir_wh3/p"), os.O_RDONLY))
    add("O_CREAT|O_EXCL lower file", E(uf.create, p("lfile"), 0o644, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    add("O_CREAT|O_EXCL upper file", E(uf.create, p("udir/f"), 0o644, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    add("O_CREAT|O_EXCL whited-out name", E(uf.create, p("ldir_wh3/q"), 0o644, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    add("O_CREAT|O_EXCL dangling symlink", E(lambda: (os.symlink("nowhere", p("dangling")),
                                                        uf.create(p("dangling"), 0o644,
                                                                  os.O_CREAT | os.O_EXCL | os.O_WRONLY))))
    add("stat through a lower file", E(os.stat, p("lfile/x")))
    add("create through a lower file", E(uf.create, p("lfile/x")))
    add("mkdir through a lower file", E(os.mkdir, p("lfile/x")))
    add("open dir O_WRONLY", E(os.open, p("ldir_nonempty"), os.O_WRONLY))
    add("open file O_DIRECTORY", E(os.open, p("lfile"), os.O_RDONLY | os.O_DIRECTORY))
    add("truncate dir", E(os.truncate, p("ldir_nonempty"), 0))
    add("readlink of a file", E(os.readlink, p("lfile")))
    r.remount()
    add("after remount: dir renamed over whiteouts", sorted(os.listdir(p("ldir_wh"))))
    add("after remount: removed dir", E(os.stat, p("ldir_wh2")))
    add("after remount: root", sorted(os.listdir(r.mnt)))
    return out


def test_errnos(env):
    three(env, _populate_errnos, _errnos, [
        ("rename dir over empty lower dir", "OK"),
        ("rename dir over lower dir with lower entries", "ENOTEMPTY"),
        ("rename dir over upper dir with entries", "ENOTEMPTY"),
        ("rename dir over dir emptied by whiteouts", "OK"),
        ("  its listing", ["marker"]),
        ("rename lower dir over lower dir with entries", "ENOTEMPTY"),
        ("rename dir over file", "ENOTDIR"),
        ("rename file over dir", "EISDIR"),
        ("rename file over upper dir", "EISDIR"),
        ("rename dir into itself", "EINVAL"),
        ("rename missing", "ENOENT"),
        ("rmdir lower dir with entries", "ENOTEMPTY"),
        ("rmdir upper dir with entries", "ENOTEMPTY"),
        ("rmdir dir emptied by whiteouts", "OK"),
        ("  then stat", "ENOENT"),
        ("rmdir dir with a lower subdir left", "ENOTEMPTY"),
        ("rmdir a file", "ENOTDIR"),
        ("rmdir missing", "ENOENT"),
        ("unlink lower dir", "EISDIR"),
        ("unlink upper dir", "EISDIR"),
        ("unlink missing", "ENOENT"),
        ("mkdir over lower file", "EEXIST"),
        ("mkdir over lower dir", "EEXIST"),
        ("mkdir over upper dir", "EEXIST"),
        ("mkdir in missing dir", "ENOENT"),
        ("link to a lower dir", "EPERM"),
        ("link to an upper dir", "EPERM"),
        ("link over existing", "EEXIST"),
        ("symlink over existing", "EEXIST"),
        ("open missing", "ENOENT"),
        ("open missing in lower dir", "ENOENT"),
        ("open whited-out", "ENOENT"),
        ("O_CREAT|O_EXCL lower file", "EEXIST"),
        ("O_CREAT|O_EXCL upper file", "EEXIST"),
        ("O_CREAT|O_EXCL whited-out name", "OK"),
        ("O_CREAT|O_EXCL dangling symlink", "EEXIST"),
        ("stat through a lower file", "ENOTDIR"),
        ("create through a lower file", "ENOTDIR"),
        ("mkdir through a lower file", "ENOTDIR"),
        ("open dir O_WRONLY", "EISDIR"),
        ("open file O_DIRECTORY", "ENOTDIR"),
        ("truncate dir", "EISDIR"),
        ("readlink of a file", "EINVAL"),
        ("after remount: dir renamed over whiteouts", ["marker"]),
        ("after remount: removed dir", "ENOENT"),
        ("after remount: root", sorted(["dangling", "ldir_empty", "ldir_empty2", "ldir_nonempty", "ldir_nonempty2",
                                        "ldir_wh", "ldir_wh3", "lfile", "src2", "src3", "src5", "src6", "src7",
                                        "udir"])),
    ], "errnos")


def test_exec_from_union(env):
    """execve() of a lower file, a copied-up file and a new upper file: the kernel's exec open carries
    flags of its own that the server must not pass to openat2 (it once failed with EINVAL)."""
    import shutil
    import subprocess
    lay = uf.layout(env, "exec")
    shutil.copy2("/bin/true", os.path.join(lay["lowers"][0], "lower-true"))
    shutil.copy2("/bin/true", os.path.join(lay["lowers"][0], "copied-true"))
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    shutil.copy2("/bin/true", m.p("upper-true"))
    os.chmod(m.p("copied-true"), 0o755)  # copy-up
    for name in ("lower-true", "copied-true", "upper-true"):
        r = subprocess.run([m.p(name)], capture_output=True, timeout=30)
        uf.check(r.returncode == 0, f"exec of {name} from the union: status {r.returncode} {r.stderr!r}")
    uf.check(os.path.exists(os.path.join(lay["upper"], "copied-true")), "copied-true was copied up")


def test_syncfs_after_unlink(env):
    """syncfs() on the mount succeeds after names are removed: with the writeback cache the kernel
    flushes the times of an inode whose last name is gone (a lower file, a copied-up one, an upper file
    still open for writing), and an error there once failed every later syncfs() of the mount."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    lay = uf.layout(env, "syncfs")
    for name in ("lower-only", "copied"):
        uf.write(os.path.join(lay["lowers"][0], name), "lower data\n")
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])

    def syncfs(what):
        fd = os.open(m.p("."), os.O_RDONLY | os.O_DIRECTORY)
        try:
            r = libc.syncfs(fd)
            uf.check(r == 0, f"syncfs after {what}: {os.strerror(ctypes.get_errno()) if r else ''}")
        finally:
            os.close(fd)

    os.unlink(m.p("lower-only"))
    syncfs("unlinking a lower file")
    with open(m.p("copied"), "a") as f:
        f.write("appended\n")
    os.unlink(m.p("copied"))
    syncfs("unlinking a copied-up file")
    fd = os.open(m.p("open"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"still open\n")
        os.unlink(m.p("open"))
        syncfs("unlinking a file open for writing")
        os.write(fd, b"more\n")
        os.fsync(fd)
        uf.check(os.fstat(fd).st_size == 16, f"the open unlinked file keeps its data: {os.fstat(fd).st_size}")
    finally:
        os.close(fd)
    syncfs("closing it")


if __name__ == "__main__":
    uf.main()
