#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Open modes and f* calls on open files, three ways: every case runs on a plain ext4 directory, on a kernel
overlayfs mount and on the union, each over the same lower content (written straight into the ext4 dir).

  * open(2) with each access mode (O_RDONLY, O_WRONLY, O_RDWR and 3) combined with O_TRUNC, O_APPEND,
    O_CREAT, O_CREAT|O_EXCL, O_NOATIME, O_PATH, O_DIRECTORY, on a lower file, an upper file, a read-only
    file, a missing name and directories: the open's result, then fstat, read, write, lseek and the
    file's content afterwards;
  * fstat, fchmod, fchown, futimens, ftruncate, fallocate, f{set,get,list,remove}xattr, fsync, read and
    write on an fd of a file or directory of each layer (lower, upper, copied up, a lower hard link, a
    symlink through O_PATH) that was then unlinked, renamed or replaced by a rename, or left alone.

The union must give what ext4 gives, step by step. Kernel overlayfs must too (else the test is wrong),
except where it is known to differ (docs/unionfs.md, "Differences from kernel overlayfs"): an fd of a
lower object opened without writing and then unlinked or replaced shows the lower link count, and
metadata changes through it fail (EEXIST for files, ENOTDIR for directories: its copy-up goes back to
the name, which is gone). The union then follows ext4.

Run with --metacopy to mount both with metacopy=on (the default run does both)."""

import ctypes
import errno
import os
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
KERNEL_OPTS = "redirect_dir=on,index=on,xino=off"
TIME = 1_000_000_007    # an odd nanosecond value, so a time we set is told from one the fs made


def E(fn, *a, **kw):
    """fn's result ("OK" for None) or the errno name it failed with."""
    try:
        r = fn(*a, **kw)
        return "OK" if r is None else r
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def fallocate(fd, length):
    if _libc.fallocate(fd, 0, 0, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def fst(fd_or_path):
    st = os.stat(fd_or_path, follow_symlinks=False) if isinstance(fd_or_path, str) else os.fstat(fd_or_path)
    d = stat.S_ISDIR(st.st_mode)
    return (oct(st.st_mode), st.st_uid, st.st_gid, "-" if d else st.st_size, "-" if d else st.st_nlink,
            st.st_mtime_ns if st.st_mtime_ns % 10**9 == TIME % 10**9 else "t")


def view(path):
    """How a name looks afterwards: attributes, content or listing, xattrs."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return errno.errorcode[e.errno]
    if stat.S_ISREG(st.st_mode):
        data = uf.read(path)
    elif stat.S_ISDIR(st.st_mode):
        data = sorted(os.listdir(path))
    else:
        data = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    xs = sorted(os.listxattr(path, follow_symlinks=False)) if not stat.S_ISLNK(st.st_mode) else []
    return (oct(st.st_mode), st.st_uid, st.st_size if not stat.S_ISDIR(st.st_mode) else "-", data, xs)


def populate(d):
    uf.write(os.path.join(d, "lf"), b"lower-data", mode=0o644)
    os.setxattr(os.path.join(d, "lf"), "user.x", b"lowx")
    uf.write(os.path.join(d, "ro"), b"readonly", mode=0o444)
    uf.write(os.path.join(d, "lh"), b"hardlinked")
    os.link(os.path.join(d, "lh"), os.path.join(d, "lh2"))
    os.symlink("lf", os.path.join(d, "ls"))
    os.mkdir(os.path.join(d, "ld"))
    os.setxattr(os.path.join(d, "ld"), "user.x", b"lowx")


class Plain:
    kind = "ext4"

    def __init__(self, d):
        self.mnt = d

    def p(self, *rel):
        return os.path.join(self.mnt, *rel)


def run_cases(env, cases, scenario, metacopy, known_kernel_difference, what):
    """Runs scenario(root, *case) for every case on ext4, kernel overlayfs and the union, each on fresh
    copies of the lower content; asserts the union gives what ext4 gives."""
    res = {"ext4": {}, "kernel": {}, "union": {}}
    for i, case in enumerate(cases):
        d = env.mkdir(f"e{i}")
        populate(d)
        res["ext4"][case] = scenario(Plain(d), *case)
        for kind in ("kernel", "union"):
            lay = uf.layout(env, f"{kind}{i}")
            populate(lay["lowers"][0])
            if kind == "kernel":
                m = env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"],
                                       opts=KERNEL_OPTS + (",metacopy=on" if metacopy else ""))
            else:
                m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"],
                              opts=["metacopy=on"] if metacopy else None)
            try:
                res[kind][case] = scenario(m, *case)
            finally:
                os.chdir("/")
                m.cleanup()
    bad = []
    for case in cases:
        a, k, u = res["ext4"][case], res["kernel"][case], res["union"][case]
        if k != a and not known_kernel_difference(case):
            bad.append(f"ORACLE MISMATCH (test bug?) {case}: ext4 {a}, kernel {k}")
        if u != a:
            bad.append(f"{case}: ext4 (and kernel overlayfs{'' if k == a else ' would not'}) gives {a}, "
                       f"the union {u}")
    if bad:
        raise AssertionError(f"{what}{' (metacopy=on)' if metacopy else ''}: {len(bad)} of {len(cases)} "
                             f"cases differ:\n" + "\n".join(bad[:25]))


# ---------------------------------------------------------------------------------------------------
# open(2): access modes and flags

ACCESS = {"R": os.O_RDONLY, "W": os.O_WRONLY, "RW": os.O_RDWR, "ACC3": 3}
FLAGS = {"": 0, "TRUNC": os.O_TRUNC, "APPEND": os.O_APPEND, "CREAT": os.O_CREAT,
         "CREAT|EXCL": os.O_CREAT | os.O_EXCL, "NOATIME": os.O_NOATIME, "PATH": os.O_PATH,
         "TRUNC|APPEND": os.O_TRUNC | os.O_APPEND, "CREAT|TRUNC": os.O_CREAT | os.O_TRUNC,
         "PATH|TRUNC": os.O_PATH | os.O_TRUNC, "DIRECTORY": os.O_DIRECTORY}
OPEN_TARGETS = ("lower", "upper", "readonly", "missing", "lowerdir", "upperdir")


def open_scenario(r, where, acc, flags):
    p, out = r.p, []
    if where == "upper":
        uf.write(p("uf"), b"upper-data", mode=0o644)
    elif where == "upperdir":
        os.mkdir(p("ud"))
    name = {"lower": "lf", "upper": "uf", "readonly": "ro", "missing": "new", "lowerdir": "ld",
            "upperdir": "ud"}[where]
    try:
        fd = os.open(p(name), ACCESS[acc] | FLAGS[flags] | os.O_CLOEXEC, 0o640)
    except OSError as e:
        out.append(("open", errno.errorcode[e.errno]))
        fd = None
    if fd is not None:
        out.append(("open", "OK"))
        out.append(("fstat", E(fst, fd)))
        out.append(("read", E(os.read, fd, 100)))
        out.append(("write", E(os.write, fd, b"AB")))
        out.append(("lseek", E(os.lseek, fd, 0, os.SEEK_CUR)))
        out.append(("close", E(os.close, fd)))
    out.append(("after", view(p(name))))
    return out


def _open_matrix(env, metacopy):
    cases = [(w, a, f) for w in OPEN_TARGETS for a in ACCESS for f in FLAGS]
    run_cases(env, cases, open_scenario, metacopy, lambda case: False, "open modes")


def test_open_modes(env):
    _open_matrix(env, False)


def test_open_modes_metacopy(env):
    _open_matrix(env, True)


def test_open_rdonly_trunc_copies_no_data(env):
    """open(O_RDONLY|O_TRUNC) of a big lower file: truncated, and the copy-up copied none of its data."""
    lay = uf.layout(env, "big")
    with open(os.path.join(lay["lowers"][0], "big"), "wb") as f:
        f.write(os.urandom(1 << 20) * 16)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    fd = os.open(m.p("big"), os.O_RDONLY | os.O_TRUNC)
    try:
        uf.eq(os.fstat(fd).st_size, 0, "size through the read-only fd")
        uf.eq(E(os.write, fd, b"x"), "EBADF", "write through the read-only fd")
    finally:
        os.close(fd)
    st = os.stat(os.path.join(lay["upper"], "big"))
    uf.eq((st.st_size, st.st_blocks), (0, 0), "the upper copy (size, blocks)")
    uf.eq(os.path.getsize(os.path.join(lay["lowers"][0], "big")), 16 << 20, "the lower file's size")


# ---------------------------------------------------------------------------------------------------
# f* calls on fds of objects unlinked, renamed or replaced since they were opened

FD_TARGETS = ("lowerfile", "upperfile", "copied", "lowerlink", "lowerdir", "upperdir", "symlink")
EVENTS = ("none", "remove", "rename", "replace")
FD_OPS = ("fstat", "fchmod", "fchown", "fchownat_empty", "futimens", "ftruncate", "fallocate", "fsetxattr",
          "fgetxattr", "flistxattr", "fremovexattr", "fsync", "read", "write", "listdir", "fchdir_stat",
          "procfd_stat")


def fd_scenario(r, where, mode, event, op):
    p, out = r.p, []
    if where == "upperdir":
        os.mkdir(p("ud"))
        os.setxattr(p("ud"), "user.x", b"lowx")
    elif where == "upperfile":
        uf.write(p("uf"), b"upper-data")
        os.setxattr(p("uf"), "user.x", b"lowx")
    elif where == "copied":
        os.chmod(p("lf"), 0o640)
    name = {"lowerfile": "lf", "upperfile": "uf", "copied": "lf", "lowerlink": "lh", "lowerdir": "ld",
            "upperdir": "ud", "symlink": "ls"}[where]
    is_dir = where.endswith("dir")
    fd = os.open(p(name), {"R": os.O_RDONLY, "RW": os.O_RDWR, "PATH": os.O_PATH | os.O_NOFOLLOW}[mode])
    if event == "remove":
        out.append(E(os.rmdir if is_dir else os.unlink, p(name)))
    elif event == "rename":
        out.append(E(os.rename, p(name), p("moved")))
    elif event == "replace":
        if is_dir:
            os.mkdir(p("other"))
        else:
            uf.write(p("other"), b"other")
        out.append(E(os.rename, p("other"), p(name)))
    ops = {
        "fstat": lambda: fst(fd),
        "fchmod": lambda: os.chmod(fd, 0o700),
        "fchown": lambda: os.chown(fd, 1234, 1234),
        "fchownat_empty": lambda: os.chown("", 1234, 1234, dir_fd=fd),
        "futimens": lambda: os.utime(fd, ns=(TIME, TIME)),
        "ftruncate": lambda: os.ftruncate(fd, 3),
        "fallocate": lambda: fallocate(fd, 100),
        "fsetxattr": lambda: os.setxattr(fd, "user.y", b"y"),
        "fgetxattr": lambda: os.getxattr(fd, "user.x"),
        "flistxattr": lambda: sorted(os.listxattr(fd)),
        "fremovexattr": lambda: os.removexattr(fd, "user.x"),
        "fsync": lambda: os.fsync(fd),
        "read": lambda: os.pread(fd, 50, 0),
        "write": lambda: os.pwrite(fd, b"ZZ", 1),
        "listdir": lambda: sorted(os.listdir(fd)),
        "fchdir_stat": lambda: (os.fchdir(fd), fst("."))[1],
        "procfd_stat": lambda: fst(f"/proc/self/fd/{fd}"),
    }
    out.append(E(ops[op]))
    out.append(E(fst, fd))
    os.chdir("/")
    out.append(E(os.close, fd))
    out.append(view(p("moved" if event == "rename" else name)))
    if where == "lowerlink":
        out.append(view(p("lh2")))      # the other name of the same file sees what the fd changed
    return out


def fd_cases():
    for where in FD_TARGETS:
        is_dir = where.endswith("dir")
        for mode in ("PATH",) if where == "symlink" else ("R", "PATH") if is_dir else ("R", "RW", "PATH"):
            for event in EVENTS:
                for op in FD_OPS:
                    if op in ("listdir", "fchdir_stat") and not is_dir:
                        continue
                    if op in ("ftruncate", "fallocate", "read", "write") and (is_dir or mode == "PATH"):
                        continue
                    yield (where, mode, event, op)


def kernel_differs_fd(case):
    where, mode, event, op = case
    return where in ("lowerfile", "lowerlink", "lowerdir", "symlink") and mode in ("R", "PATH") and \
        event in ("remove", "replace")


def test_fd_ops_after_unlink_rename_replace(env):
    run_cases(env, list(fd_cases()), fd_scenario, False, kernel_differs_fd, "f* calls on open fds")


def test_fd_ops_after_unlink_rename_replace_metacopy(env):
    run_cases(env, list(fd_cases()), fd_scenario, True, kernel_differs_fd, "f* calls on open fds")


def held_fds(pid):
    """The server's fds on files and directories (not the pipes its worker threads splice through)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if not t.startswith("pipe:"):
            out.append(t)
    return sorted(out)


@uf.timeout(120)
def test_unlinked_orphans_are_bounded(env):
    """Many files held open after their name went: each keeps what it needs, and closing them releases
    everything (the server's fd count comes back)."""
    lay = uf.layout(env, "many")
    for i in range(300):
        uf.write(os.path.join(lay["lowers"][0], f"f{i}"), b"x" * 10)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    before = held_fds(m.pid)
    fds = [os.open(m.p(f"f{i}"), os.O_RDONLY) for i in range(300)]
    for i in range(300):
        os.unlink(m.p(f"f{i}"))
    for fd in fds:
        os.fchmod(fd, 0o600)
        uf.eq((oct(os.fstat(fd).st_mode), os.fstat(fd).st_nlink), (oct(0o100600), 0), "fstat after fchmod")
    for fd in fds:
        os.close(fd)
    uf.check(all(uf.is_whiteout(os.path.join(lay["upper"], f"f{i}")) for i in range(300)),
             "every unlinked lower name is a whiteout in the upper")
    uf.eq(os.listdir(os.path.join(lay["work"], "work")), [], "leftovers in the work directory")
    # closed and nameless: the kernel forgets them at once, and the server lets their fds go
    for _ in range(100):
        if held_fds(m.pid) == before:
            break
        time.sleep(0.05)
    uf.eq(held_fds(m.pid), before, "fds of the server on files and directories after closing")


if __name__ == "__main__":
    uf.main()
