#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-layer snapshot MOUNTPOINT DEST against a real sandbox-unionfs mount: DEST is a copy of the
upper layer (whiteouts, opaque markers, xattrs, hard links included) as of one instant; nothing written
after the snapshot reaches DEST, files open before it keep working; a snapshot taken while another
process keeps writing is consistent; regular files are hard-linked into DEST when they can be and the
mount breaks the link before any change (also after a remount), keeping st_ino and st_nlink as shown; only the server's user may snapshot, snapshot=0 turns it off, and
bad destinations are refused with nothing created. The ioctl ABI (unionfs/control.h) is checked raw.

Environment: SANDBOX_LAYER and SANDBOX_UNIONFS name the binaries under test. Root only (exit 77)."""

import errno
import fcntl
import hashlib
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

LAYER = os.path.abspath(os.environ.get("SANDBOX_LAYER") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tools", "sandbox-layer"))
PATH_MAX = 4096
REQ_FMT = f"=IIQQ{PATH_MAX}s"  # struct unionfs_snapshot_req
REQ_SIZE = struct.calcsize(REQ_FMT)
IOC_SNAPSHOT = (3 << 30) | (REQ_SIZE << 16) | (ord("U") << 8) | 0xB1  # _IOWR('U', 0xb1, ...)
NOBODY = 65534


def layer(*args, user=None, check_rc=None):
    kw = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
    r = subprocess.run([LAYER] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, **kw)
    if check_rc is not None and r.returncode != check_rc:
        raise AssertionError(f"sandbox-layer {' '.join(args)}: exit {r.returncode}, expected {check_rc}; "
                             f"stderr: {r.stderr.strip()!r}")
    return r


def digest(d):
    out = layer("digest", "-q", d, check_rc=0).stdout.strip().splitlines()
    uf.check(out and out[-1].startswith("xxh128:"), f"digest output of {d}: {out!r}")
    return out[-1]


def walk(root):
    """Everything a layer consists of, by relative path (our own check, next to digest). Hard links are
    counted inside the tree: a file DEST shares with the upper has a second name outside it."""
    res = {}
    inos = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            xattrs = {x: os.getxattr(p, x, follow_symlinks=False)
                      for x in sorted(os.listxattr(p, follow_symlinks=False))}
            e = {"mode": oct(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "xattrs": xattrs}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e["sha"] = hashlib.sha256(f.read()).hexdigest()
                inos.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISDIR(st.st_mode):
                e["mtime"] = st.st_mtime_ns
            res[rel] = e
    for names in inos.values():
        for rel in names:
            res[rel]["nlink"] = len(names)
    return res


def leftovers(d):
    return [n for n in os.listdir(d) if n.startswith(".#snapshot")]


def setup(env, opts=None, populate_lower=None):
    lay = uf.layout(env, "s")
    lo = lay["lowers"][0]
    if populate_lower:
        populate_lower(lo)
    u = env.union(lay["lowers"], upper=lay["upper"], work=lay["work"], mnt=lay["mnt"], opts=opts)
    return lay, u


def raw_ioctl(path, dest, version=1, flags=0, raw_dest=None):
    """The ioctl as a program would make it; returns (errno or 0, the reply)."""
    buf = bytearray(struct.pack(REQ_FMT, version, flags, 0, 0, raw_dest if raw_dest is not None else
                                dest.encode()))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, IOC_SNAPSHOT, buf, True)
        return 0, struct.unpack(REQ_FMT, buf)
    except OSError as e:
        return e.errno, None
    finally:
        os.close(fd)


def populate_basic(lo):
    uf.write(os.path.join(lo, "a"), b"lower a\n")
    uf.write(os.path.join(lo, "gone"), b"deleted below\n")
    os.mkdir(os.path.join(lo, "d"))
    uf.write(os.path.join(lo, "d", "x"), b"hidden by opaque\n")
    os.mkdir(os.path.join(lo, "keep"))
    uf.write(os.path.join(lo, "keep", "k"), b"k\n")


def change_basic(u):
    uf.write(u.p("new"), b"new file\n", mode=0o640)
    with open(u.p("a"), "ab") as f:  # copy-up
        f.write(b"appended\n")
    os.chmod(u.p("a"), 0o600)
    os.unlink(u.p("gone"))  # whiteout
    os.unlink(u.p("d", "x"))
    os.rmdir(u.p("d"))
    os.mkdir(u.p("d"))  # opaque
    uf.write(u.p("d", "y"), b"y\n")
    os.symlink("../elsewhere", u.p("sym"))
    os.setxattr(u.p("new"), "user.color", b"blue")
    os.link(u.p("new"), u.p("new2"))
    os.mkfifo(u.p("fifo"), 0o644)
    os.chown(u.p("keep", "k"), 1234, 5678)  # copy-up of a file in a merged dir
    uf.write(u.p("sparse"), b"")
    with open(u.p("sparse"), "r+b") as f:
        f.seek(1 << 20)
        f.write(b"end")


def test_basic_copy_of_upper(env):
    lay, u = setup(env, populate_lower=populate_basic)
    change_basic(u)
    dest = env.path("snap")
    r = layer("snapshot", "-v", u.mnt, dest, check_rc=0)
    uf.check(r.stdout.startswith(dest + ": ") and "paused for" in r.stdout, f"-v output: {r.stdout!r}")
    r = layer("snapshot", u.mnt, env.path("snap-quiet"), check_rc=0)
    uf.eq(r.stdout, "", "stdout without -v")
    u.umount()  # the upper as it was at the snapshot, and nothing changed since

    uf.eq(walk(dest), walk(lay["upper"]), "snapshot vs upper (own walk)")
    uf.eq(digest(dest), digest(lay["upper"]), "digest of snapshot vs upper")
    st = os.lstat(os.path.join(dest, "gone"))
    uf.check(stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, "whiteout 'gone' is a char device 0/0 in DEST")
    uf.eq(os.getxattr(os.path.join(dest, "d"), "trusted.overlay.opaque"), b"y", "opaque marker in DEST")
    uf.eq(sorted(os.listdir(os.path.join(dest, "d"))), ["y"], "opaque dir contents")
    s1, s2 = os.stat(os.path.join(dest, "new")), os.stat(os.path.join(dest, "new2"))
    uf.eq(s1.st_ino, s2.st_ino, "hard link kept inside DEST")
    uf.check(s1.st_ino != os.stat(os.path.join(lay["upper"], "new")).st_ino, "a hard-link group of the upper is copied")
    # DEST's root is private (docs/security.md): 0700 root:root on disk, recording the mode and owner
    # the upper's root shows.
    ust, dst = os.stat(lay["upper"]), os.stat(dest)
    uf.eq((dst.st_mode & 0o7777, dst.st_uid, dst.st_gid), (0o700, 0, 0), "DEST root on disk")
    uf.eq(os.getxattr(dest, "trusted.overlay.sandbox.rootattr"),
          f"{ust.st_mode & 0o7777:o} {ust.st_uid} {ust.st_gid}".encode(), "DEST root's record")
    uf.eq(leftovers(env.root), [], "temporary snapshot dirs left")

    # The snapshot is a valid upper: mounted over the same lower it shows the same tree.
    m = env.union(lay["lowers"], upper=dest, work=env.mkdir("w2"), mnt=env.mkdir("m2"))
    uf.eq(uf.read(m.p("a")), b"lower a\nappended\n", "a through a mount of the snapshot")
    uf.check(not os.path.lexists(m.p("gone")), "gone stays deleted through a mount of the snapshot")
    uf.eq(sorted(os.listdir(m.p("d"))), ["y"], "opaque d through a mount of the snapshot")
    m.umount()


def test_nothing_after_snapshot_leaks(env):
    lay, u = setup(env, populate_lower=populate_basic)
    change_basic(u)
    uf.write(u.p("victim"), b"0123456789\n")
    # open for writing before the snapshot, written before and after it
    fd = os.open(u.p("open-w"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"before\n")
    dest = env.path("snap")
    layer("snapshot", u.mnt, dest, check_rc=0)
    before = digest(dest)
    snap_tree = walk(dest)

    os.write(fd, b"after\n")
    os.fsync(fd)
    with open(u.p("new"), "r+b") as f:  # write in place to a hard-linked file
        f.write(b"NEW")
    with open(u.p("victim"), "ab") as f:
        f.write(b"appended\n")
    os.truncate(u.p("a"), 3)
    os.chmod(u.p("victim"), 0o755)
    os.setxattr(u.p("victim"), "user.later", b"1")
    os.unlink(u.p("sym"))
    os.rename(u.p("keep", "k"), u.p("moved"))
    uf.write(u.p("d", "later"), b"later\n")
    os.sync()

    os.close(fd)
    uf.eq(uf.read(u.p("open-w")), b"before\nafter\n", "file open across the snapshot, in the mount")
    uf.eq(uf.read(u.p("new2")), b"NEW file\n", "write through the other name, in the mount")
    uf.eq(uf.read(u.p("victim")), b"0123456789\nappended\n", "append, in the mount")
    uf.eq(uf.read(u.p("a")), b"low", "truncate, in the mount")

    uf.eq(uf.read(os.path.join(dest, "open-w")), b"before\n", "open file in DEST: only what came before")
    uf.eq(uf.read(os.path.join(dest, "new2")), b"new file\n", "hard link in DEST")
    uf.eq(walk(dest), snap_tree, "DEST after later changes (own walk)")
    uf.eq(digest(dest), before, "digest of DEST after later changes")


def shared_entry(lay, p):
    st = os.lstat(p)
    return os.path.join(lay["work"], "sandbox-shared", f"{st.st_dev:x}-{st.st_ino:x}")


def same_inode(a, b):
    sa, sb = os.lstat(a), os.lstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def file_state(p):
    st = os.lstat(p)
    return {"data": uf.read(p), "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
            "mtime": st.st_mtime_ns,
            "xattrs": {x: os.getxattr(p, x) for x in sorted(os.listxattr(p))}}


def test_files_linked_not_copied(env):
    lay, u = setup(env)
    big = os.urandom(1 << 20) * 64  # 64 MiB
    uf.write(u.p("big"), big)
    uf.write(u.p("small"), b"small\n")
    uf.write(u.p("grp"), b"hard link group\n")
    os.link(u.p("grp"), u.p("grp2"))
    fd = os.open(u.p("open-w"), os.O_WRONLY | os.O_CREAT, 0o644)  # created open (FUSE create)
    os.write(fd, b"before\n")
    uf.write(u.p("open-rw"), b"existing\n")
    fd2 = os.open(u.p("open-rw"), os.O_RDWR)  # an existing file opened for writing (FUSE open)
    ino_before = {n: os.stat(u.p(n)).st_ino for n in ("big", "small", "open-w")}
    dest = env.path("snap")
    layer("snapshot", u.mnt, dest, check_rc=0)

    up, dp = (lambda n: os.path.join(lay["upper"], n)), (lambda n: os.path.join(dest, n))
    for n in ("big", "small"):
        uf.check(same_inode(up(n), dp(n)), f"{n}: DEST's file is not the upper's inode (copied, not linked)")
        uf.eq(os.stat(up(n)).st_nlink, 3, f"{n}: links of the upper file (upper, DEST, workdir record)")
        uf.check(same_inode(up(n), shared_entry(lay, up(n))), f"{n}: no record in the workdir")
        uf.eq(os.stat(u.p(n)).st_nlink, 1, f"{n}: st_nlink shown by the mount")
        uf.eq(os.stat(u.p(n)).st_ino, ino_before[n], f"{n}: st_ino shown by the mount")
    uf.check(not same_inode(up("open-w"), dp("open-w")), "a file open for writing was linked into DEST")
    uf.check(not same_inode(up("open-rw"), dp("open-rw")), "a file open for writing was linked into DEST")
    os.pwrite(fd2, b"EXISTING", 0)
    os.fsync(fd2)
    os.close(fd2)
    uf.eq(uf.read(dp("open-rw")), b"existing\n", "open-rw in DEST")
    uf.eq(uf.read(u.p("open-rw")), b"EXISTING\n", "open-rw in the mount")
    uf.check(not same_inode(up("grp"), dp("grp")), "a hard-link group of the upper was linked into DEST")
    uf.check(same_inode(dp("grp"), dp("grp2")), "hard-link group kept inside DEST")
    uf.eq(os.stat(u.p("grp")).st_nlink, 2, "st_nlink of the hard-link group in the mount")
    uf.eq(uf.read(dp("big")), big, "big in DEST")
    os.write(fd, b"after\n")
    os.close(fd)
    uf.eq(uf.read(dp("open-w")), b"before\n", "open-w in DEST")
    uf.eq(uf.read(u.p("open-w")), b"before\nafter\n", "open-w in the mount")

    # Closed now: the next snapshot may share it (the writer count went back to zero). A file already
    # shared with the first snapshot is shared with both.
    dest2 = env.path("snap2")
    layer("snapshot", u.mnt, dest2, check_rc=0)
    uf.check(same_inode(up("open-w"), os.path.join(dest2, "open-w")), "closed file not linked by snapshot 2")
    uf.check(same_inode(up("big"), os.path.join(dest2, "big")), "shared file not linked by snapshot 2")
    uf.eq(os.stat(u.p("big")).st_nlink, 1, "big: st_nlink shown by the mount, shared twice")
    uf.eq(os.stat(u.p("open-w")).st_nlink, 1, "open-w: st_nlink shown by the mount")
    # Removing the snapshots gives the upper files back their single link, and nothing breaks.
    shutil.rmtree(dest)
    shutil.rmtree(dest2)
    uf.eq(os.stat(u.p("big")).st_nlink, 1, "big: st_nlink after DEST was removed")
    with open(u.p("big"), "r+b") as f:
        f.write(b"X")
    uf.eq(uf.read(u.p("big"))[:2], b"X" + big[1:2], "write after DEST was removed")


def pwrite_path(p, off, data, flags=os.O_WRONLY):
    fd = os.open(p, flags)
    try:
        os.pwrite(fd, data, off)
    finally:
        os.close(fd)


CHANGES = {
    "write": lambda p: pwrite_path(p, 1, b"XY"),
    "trunc-open": lambda p: pwrite_path(p, 0, b"replaced\n", os.O_WRONLY | os.O_TRUNC),
    "truncate": lambda p: os.truncate(p, 3),
    "chmod": lambda p: os.chmod(p, 0o600),
    "chown": lambda p: os.chown(p, 1234, 5678),
    "utime": lambda p: os.utime(p, ns=(1_000_000_000, 2_000_000_000)),
    "setxattr": lambda p: os.setxattr(p, "user.new", b"1"),
    "removexattr": lambda p: os.removexattr(p, "user.k"),
    "link": lambda p: os.link(p, p + ".link"),
}


def test_break_before_change(env):
    lay, u = setup(env)
    for n in list(CHANGES) + ["reader", "unlinked", "renamed"]:
        uf.write(u.p(n), f"content of {n}\n".encode() * 1000)
        os.chmod(u.p(n), 0o644)
        os.setxattr(u.p(n), "user.k", b"v")
        os.utime(u.p(n), ns=(5_000_000_000, 6_000_000_000))
    shown = {n: os.stat(u.p(n)).st_ino for n in CHANGES}
    dest = env.path("snap")
    layer("snapshot", u.mnt, dest, check_rc=0)
    up, dp = (lambda n: os.path.join(lay["upper"], n)), (lambda n: os.path.join(dest, n))
    # Reading a shared file through the mount leaves the snapshot's atime alone (relatime would move
    # it: atime < mtime). Before anything here reads DEST's files, which moves it as well.
    with open(u.p("reader"), "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        uf.eq(f.read(10), b"content of", "reader: through the mount")
    uf.eq(os.stat(dp("reader")).st_atime_ns, 5_000_000_000, "reader: atime of DEST's file after a read")
    snap = {n: file_state(dp(n)) for n in os.listdir(dest)}
    tree_before = walk(dest)
    dig = layer("digest", "--mtime", "-q", dest, check_rc=0).stdout
    for n in CHANGES:
        uf.check(same_inode(up(n), dp(n)), f"{n}: not linked into DEST")
    rfd = os.open(u.p("write"), os.O_RDONLY)  # a read-only handle opened before the break
    uf.eq(os.pread(rfd, 4, 0), b"cont", "read-only handle before the break")

    for n, change in CHANGES.items():
        change(u.p(n))
    os.unlink(u.p("unlinked"))
    os.rename(u.p("renamed"), u.p("renamed.new"))
    os.sync()

    for n in CHANGES:
        uf.eq(file_state(dp(n)), snap[n], f"{n}: DEST's file changed")
        uf.check(not same_inode(up(n), dp(n)), f"{n}: the upper file still is DEST's inode after the change")
        uf.eq(os.stat(u.p(n)).st_ino, shown[n], f"{n}: st_ino shown by the mount changed across the break")
        uf.eq(os.stat(u.p(n)).st_nlink, 2 if n == "link" else 1, f"{n}: st_nlink shown by the mount")
    old = "content of {}\n".format
    uf.eq(uf.read(u.p("write"))[:4], b"cXYt", "write: in the mount")
    uf.eq(uf.read(u.p("trunc-open")), b"replaced\n", "O_TRUNC open: in the mount")
    uf.eq(uf.read(u.p("truncate")), b"con", "truncate: in the mount")
    uf.eq(stat.S_IMODE(os.stat(u.p("chmod")).st_mode), 0o600, "chmod: in the mount")
    uf.eq((os.stat(u.p("chown")).st_uid, os.stat(u.p("chown")).st_gid), (1234, 5678), "chown: in the mount")
    uf.eq(os.stat(u.p("utime")).st_mtime_ns, 2_000_000_000, "utime: in the mount")
    uf.eq(os.getxattr(u.p("setxattr"), "user.new"), b"1", "setxattr: in the mount")
    uf.eq(os.getxattr(u.p("setxattr"), "user.k"), b"v", "setxattr: the old xattr kept by the break")
    uf.eq(os.listxattr(u.p("removexattr")), [], "removexattr: in the mount")
    uf.eq(os.stat(u.p("link")).st_ino, os.stat(u.p("link.link")).st_ino, "link: one inode in the mount")
    # What the break must keep: the mount sees no difference but the change itself.
    for n in ("setxattr", "removexattr", "link", "chmod"):
        st = os.stat(u.p(n))
        uf.eq(uf.read(u.p(n)), old(n).encode() * 1000, f"{n}: data kept by the break")
        uf.eq(st.st_mtime_ns, 6_000_000_000, f"{n}: mtime kept by the break")
        uf.eq(st.st_uid, 0, f"{n}: owner kept by the break")

    # The read-only handle follows the file, as after a copy-up: what is not in the page cache is read
    # from the new inode, never the snapshot's.
    os.posix_fadvise(rfd, 0, 0, os.POSIX_FADV_DONTNEED)
    uf.eq(os.pread(rfd, 4, 0), b"cXYt", "read-only handle opened before the break, after it")
    uf.eq(os.fstat(rfd).st_ino, shown["write"], "fstat of the read-only handle")
    os.close(rfd)

    uf.eq(file_state(dp("unlinked")), snap["unlinked"], "unlink: DEST's file")
    uf.eq(os.stat(dp("unlinked")).st_nlink, 1, "unlink: DEST's file has its one link left")
    uf.check(same_inode(up("renamed.new"), dp("renamed")), "rename: no break needed, still shared")
    uf.eq(os.stat(u.p("renamed.new")).st_nlink, 1, "rename: st_nlink in the mount")
    uf.eq(walk(dest), tree_before, "DEST after the changes (own walk)")
    uf.eq(layer("digest", "--mtime", "-q", dest, check_rc=0).stdout, dig, "digest --mtime of DEST")

    # The upper is what the mount showed: remounted, the changes are there.
    seen = {n: file_state(u.p(n)) for n in os.listdir(u.mnt)}
    u.umount()
    m = env.union(lay["lowers"], upper=lay["upper"], work=lay["work"], mnt=lay["mnt"])
    uf.eq({n: file_state(m.p(n)) for n in os.listdir(m.mnt)}, seen, "the mount after a remount")
    m.umount()


def test_shared_across_remount(env):
    """Which inodes are shared is recorded in the workdir: after a remount a change still breaks first;
    records nobody else holds are dropped at mount time."""
    lay, u = setup(env)
    uf.write(u.p("f"), b"f\n")
    uf.write(u.p("g"), b"g\n")
    dest = env.path("snap")
    layer("snapshot", u.mnt, dest, check_rc=0)
    fu, gu = os.path.join(lay["upper"], "f"), os.path.join(lay["upper"], "g")
    f_rec, g_rec = shared_entry(lay, fu), shared_entry(lay, gu)
    uf.check(same_inode(fu, os.path.join(dest, "f")), "f not linked")
    u.umount()
    os.unlink(gu)  # offline: g's upper name and its snapshot go, only the record holds it
    os.unlink(os.path.join(dest, "g"))
    m = env.union(lay["lowers"], upper=lay["upper"], work=lay["work"], mnt=lay["mnt"])
    uf.check(not os.path.lexists(g_rec), "a record only the workdir held was kept")
    uf.eq(os.stat(m.p("f")).st_nlink, 1, "st_nlink of a shared file after a remount")
    with open(m.p("f"), "ab") as f:
        f.write(b"more\n")
    uf.eq(uf.read(os.path.join(dest, "f")), b"f\n", "DEST's file after a write through a remount")
    uf.eq(uf.read(m.p("f")), b"f\nmore\n", "the write in the mount")
    uf.check(not same_inode(fu, os.path.join(dest, "f")), "not broken after a remount")
    uf.check(not os.path.lexists(f_rec), "record of a broken file kept")
    uf.eq(os.stat(os.path.join(dest, "f")).st_nlink, 1, "DEST's file: links after the break")
    m.umount()


def test_inode_numbers_after_break(env):
    """A broken file keeps showing the number of the inode it left to the snapshot; once the snapshot is
    deleted the file system may give that inode to a new file, which must then show another number.
    Whether ext4 hands the freed inode to one of our next files depends on what else runs on the machine
    meanwhile: the scenario is tried again (with new names) until it does, a few times at most."""
    lay, u = setup(env)
    for attempt in range(8):
        f = f"f{attempt}"
        uf.write(u.p(f), b"f\n")
        shown = os.stat(u.p(f)).st_ino
        old = os.stat(os.path.join(lay["upper"], f)).st_ino
        dest = env.path(f"snap{attempt}")
        layer("snapshot", u.mnt, dest, check_rc=0)
        os.chmod(u.p(f), 0o600)  # break
        uf.check(os.stat(os.path.join(lay["upper"], f)).st_ino != old, "not broken")
        shutil.rmtree(dest)
        reused = None
        for i in range(500):
            n = f"n{attempt}-{i}"
            uf.write(u.p(n), b"n\n")
            if os.stat(os.path.join(lay["upper"], n)).st_ino == old:
                reused = n
                break
        if reused is None:
            print(f"# attempt {attempt}: the file system did not reuse inode {old}; trying again", flush=True)
            continue
        uf.check(os.stat(u.p(reused)).st_ino != shown, "two files of the mount show the same st_ino")
        uf.eq(os.stat(u.p(f)).st_ino, shown, "st_ino of the broken file")
        names = [n for n in os.listdir(u.mnt)]
        inos = [os.stat(u.p(n)).st_ino for n in names]
        uf.eq(len(set(inos)), len(names), "st_ino unique in the mount")
        return
    uf.check(False, "the file system never reused a freed inode in 8 attempts: cannot check")


def _break_while_busy(env, u, lay, name, change):
    """Share a big file NAME with a snapshot, CHANGE it (which breaks the sharing) in a thread while
    this one keeps using other files; returns (size, seconds the change took, operations on other
    files that started after the change began and ended before it returned, the file's block)."""
    size = 256 << 20
    while True:
        block = os.urandom(1 << 20)
        with open(u.p(name), "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        dest = env.path(f"snap-{name}-{size >> 20}")
        layer("snapshot", u.mnt, dest, check_rc=0)
        uf.check(same_inode(os.path.join(lay["upper"], name), os.path.join(dest, name)), f"{name} was not linked")
        times = {}

        def do_change():
            times["start"] = time.monotonic()
            change(u.p(name))  # the break happens here, before the call returns
            times["end"] = time.monotonic()

        t = threading.Thread(target=do_change)
        t.start()
        done = []
        i = 0
        while t.is_alive():
            t0 = time.monotonic()
            try:
                os.stat(u.p(f"other/missing-{name}-{i}"))  # a LOOKUP the kernel cannot answer from its cache
            except FileNotFoundError:
                pass
            with open(u.p(f"other/small{i % 400}"), "rb") as f:  # an OPEN and a READ
                uf.eq(f.read(), b"small %d\n" % (i % 400), "a small file read during the break")
            done.append((t0, time.monotonic()))
            i += 1
        t.join()
        uf.check("end" in times, f"the change of {name} failed")
        took = times["end"] - times["start"]
        inside = [d for d in done if d[0] > times["start"] + 0.05 and d[1] < times["end"]]
        if took >= 0.25 or size >= (1 << 30):
            with open(os.path.join(dest, name), "rb") as f:
                uf.eq(f.read(7), block[:7], f"{name} in DEST is unchanged")
            return size, took, inside, block
        size *= 2  # this machine copies too fast to tell: a bigger file
        for n in os.listdir(u.mnt):  # the file and what the change made (a link's new name)
            if n == name or n.startswith(name + "."):
                os.unlink(u.p(n))
        shutil.rmtree(dest)


def test_break_does_not_stall_the_mount(env):
    """The first change to a big file shared with a snapshot copies it; meanwhile the rest of the mount
    keeps answering (lookups, opens and reads of other files), and the file is exact afterwards. Both
    for a change of the file (open for writing) and for a new hard link to it."""
    lay, u = setup(env)
    # In another directory: the kernel itself locks the directory a link is made in.
    os.mkdir(u.p("other"))
    for i in range(400):
        uf.write(u.p(f"other/small{i}"), b"small %d\n" % i)

    def write(p):
        fd = os.open(p, os.O_WRONLY)
        os.pwrite(fd, b"CHANGED", 0)
        os.close(fd)

    for name, change in (("big", write), ("linked", lambda p: os.link(p, p + ".2"))):
        size, took, inside, block = _break_while_busy(env, u, lay, name, change)
        uf.check(took >= 0.25, f"the break of a {size >> 20} MiB file took only {took:.3f} s: cannot tell")
        uf.check(len(inside) >= 3, f"{name}: only {len(inside)} operations on other files completed during "
                 f"the {took:.2f} s break of a {size >> 20} MiB file: the mount stalled")
        got = uf.read(u.p(name))
        head = b"CHANGED" if name == "big" else block[:7]
        uf.eq((len(got), got[:7], hashlib.sha1(got[7:]).hexdigest()),
              (size, head, hashlib.sha1((block * (size >> 20))[7:]).hexdigest()), f"{name} in the mount after the change")
        print(f"# {name}: break of {size >> 20} MiB: {took:.2f} s, {len(inside)} other operations meanwhile")
    uf.eq(os.stat(u.p("linked")).st_nlink, 2, "links of the linked file in the mount")
    uf.check(same_inode(os.path.join(lay["upper"], "linked"), os.path.join(lay["upper"], "linked.2")),
             "the new link is not the upper's copy")


def _writer(child, mnt, stop_path):
    """Numbered files via temp + fsync + rename, then a fixed-size fsync'ed line in an O_APPEND log."""
    log = os.open(os.path.join(mnt, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    i = 0
    child.send("started")
    while not os.path.exists(stop_path):
        tmp = os.path.join(mnt, f"tmp.{i}")
        with open(tmp, "wb") as f:
            f.write(file_content(i))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(mnt, f"file.{i:06d}"))
        os.write(log, log_line(i))
        os.fsync(log)
        i += 1
    os.close(log)
    child.send(str(i))


def file_content(i):
    body = (f"{i}:" * (1 + i % 700)).encode()
    return body + hashlib.sha256(body).hexdigest().encode() + b"\n"


def log_line(i):
    # 64 bytes, so a line never straddles a page: writeback sees whole lines
    s = f"{i:08d} " + hashlib.sha256(str(i).encode()).hexdigest()[:54] + "\n"
    assert len(s) == 64
    return s.encode()


@uf.timeout(80)
def test_consistent_while_writing(env):
    lay, u = setup(env)
    stop = env.path("stop-writer")
    w = uf.Child(env, _writer, u.mnt, stop)
    uf.eq(w.recv(), "started", "writer")
    time.sleep(0.3)
    dests = []
    for n in range(5):
        d = env.path(f"snap{n}")
        layer("snapshot", u.mnt, d, check_rc=0)
        dests.append(d)
        time.sleep(0.15)
    with open(stop, "w"):
        pass
    total = int(w.recv(timeout=30))
    uf.eq(w.wait(), 0, "writer exit status")
    final_log = uf.read(u.p("log"))
    uf.eq(final_log, b"".join(log_line(i) for i in range(total)), "final log in the mount")

    counts = []
    for d in dests:
        names = set(os.listdir(d))
        files = sorted(n for n in names if n.startswith("file."))
        k = len(files)
        uf.eq(files, [f"file.{i:06d}" for i in range(k)], f"{d}: numbered files form a prefix")
        for i in range(k):
            uf.eq(uf.read(os.path.join(d, f"file.{i:06d}")), file_content(i), f"{d}: file.{i:06d} content")
        tmps = sorted(n for n in names if n.startswith("tmp."))
        uf.check(tmps in ([], [f"tmp.{k}"]), f"{d}: temp files {tmps} with {k} complete files")
        for t in tmps:  # the file being written: whatever part the server had, never anything else
            data = uf.read(os.path.join(d, t))
            uf.check(file_content(k).startswith(data), f"{d}: {t} is not a prefix of its content")
        uf.eq(names - set(files) - set(tmps) - {"log"}, set(), f"{d}: unexpected names")
        log = uf.read(os.path.join(d, "log")) if "log" in names else b""
        uf.eq(len(log) % 64, 0, f"{d}: log made of whole lines")
        uf.check(final_log.startswith(log), f"{d}: log is not a prefix of the final log")
        lines = len(log) // 64
        # file i is renamed into place before line i is appended: one step apart at most
        uf.check(k - 1 <= lines <= k, f"{d}: {k} files but {lines} log lines: not one instant")
        counts.append(k)
    uf.eq(counts, sorted(counts), "snapshots taken later show more")
    uf.check(counts[-1] > counts[0], f"the writer made no progress across the snapshots: {counts}")
    uf.eq(leftovers(env.root), [], "temporary snapshot dirs left")


def test_only_the_owner(env):
    lay, u = setup(env, opts=["allow_other"], populate_lower=populate_basic)
    os.chmod(env.root, 0o777)  # nobody could create DEST here: only the ioctl stops it
    dest = env.path("snap")
    r = layer("snapshot", u.mnt, dest, user=NOBODY, check_rc=1)
    uf.check("not the owner" in r.stderr, f"message for another user: {r.stderr!r}")
    uf.check(not os.path.lexists(dest), "DEST created for another user")

    def ask():
        return raw_ioctl(u.mnt, dest)[0]
    uf.eq(uf.fork_call(ask, uid=NOBODY, gid=NOBODY), errno.EPERM, "raw ioctl from uid 65534")
    uf.check(not os.path.lexists(dest), "DEST created for another user (raw ioctl)")
    uf.eq(leftovers(env.root), [], "temporary snapshot dirs left")


def test_disabled_by_option(env):
    lay, u = setup(env, opts=["snapshot=0"], populate_lower=populate_basic)
    dest = env.path("snap")
    r = layer("snapshot", u.mnt, dest, check_rc=1)
    uf.check("disabled" in r.stderr, f"message with snapshot=0: {r.stderr!r}")
    uf.eq(raw_ioctl(u.mnt, dest)[0], errno.EOPNOTSUPP, "raw ioctl with snapshot=0")
    uf.check(not os.path.lexists(dest), "DEST created with snapshot=0")
    r = subprocess.run([uf.binary(), "-o", f"lowerdir={lay['lowers'][0]},snapshot=maybe", env.mkdir("m3")],
                       capture_output=True, text=True, timeout=30)
    uf.eq(r.returncode, 2, f"snapshot=maybe must be refused as bad usage: {r.stderr!r}")
    uf.check(not uf.is_mounted(env.path("m3")), "mounted with snapshot=maybe")


def test_bad_destinations(env):
    lay, u = setup(env, populate_lower=populate_basic)
    change_basic(u)
    os.mkdir(env.path("exists"))
    before = sorted(os.listdir(env.root))
    upper_before = walk(lay["upper"])
    cases = [
        (env.path("exists"), "already exists"),
        (os.path.join(lay["upper"], "in-upper"), "inside a layer"),
        (os.path.join(lay["upper"], "d", "deep"), "inside a layer"),
        (os.path.join(lay["work"], "in-work"), "inside a layer"),
        (os.path.join(lay["lowers"][0], "in-lower"), "inside a layer"),
        (u.p("in-mount"), "FUSE"),
        (env.path("no-such-dir", "x"), "cannot resolve"),
    ]
    for dest, msg in cases:
        r = layer("snapshot", u.mnt, dest, check_rc=1)
        uf.check(msg in r.stderr, f"message for {dest}: {r.stderr!r}")
        uf.check(dest == env.path("exists") or not os.path.lexists(dest), f"{dest} was created")
    # a relative DEST is made absolute by the tool, against its cwd
    r = subprocess.run([LAYER, "snapshot", u.mnt, "rel-snap"], cwd=env.root, capture_output=True, text=True,
                       timeout=60)
    uf.eq(r.returncode, 0, f"relative DEST: {r.stderr!r}")
    uf.check(os.path.isdir(env.path("rel-snap")), "relative DEST created beside the cwd")
    shutil.rmtree(env.path("rel-snap"))

    # The server checks on its own, whatever the tool did.
    raw = [
        (dict(dest=env.path("r1"), version=2), errno.EINVAL, "version 2"),
        (dict(dest=env.path("r1"), flags=1), errno.EINVAL, "unknown flag"),
        (dict(dest="r1"), errno.EINVAL, "relative dest"),
        (dict(dest=""), errno.EINVAL, "empty dest"),
        (dict(dest=env.path("r1") + "/"), errno.EINVAL, "dest ending in /"),
        (dict(dest=env.path("r1", "..")), errno.EINVAL, "dest ending in .."),
        (dict(dest=None, raw_dest=b"/" * PATH_MAX), errno.EINVAL, "dest without NUL"),
        (dict(dest=env.path("exists")), errno.EEXIST, "existing dest"),
        (dict(dest=os.path.join(lay["upper"], "r1")), errno.EINVAL, "dest in upper"),
        (dict(dest=os.path.join(lay["work"], "work", "r1")), errno.EINVAL, "dest in workdir"),
        (dict(dest=u.p("r1")), errno.EXDEV, "dest on the mount"),
        (dict(dest=env.path("nodir", "r1")), errno.ENOENT, "dest parent missing"),
    ]
    for kw, want, what in raw:
        got, _ = raw_ioctl(u.mnt, **kw)
        uf.eq(errno.errorcode.get(got, got), errno.errorcode[want], f"raw ioctl, {what}")
    uf.eq(raw_ioctl(u.p("d"), env.path("r1"))[0], errno.ENOTTY, "raw ioctl on a subdirectory")
    uf.eq(sorted(os.listdir(env.root)), before, "something was created by refused snapshots")
    uf.eq(walk(lay["upper"]), upper_before, "upper changed by refused snapshots")

    # The last component is never followed: a dangling symlink there is EEXIST, its target not created.
    os.symlink(env.path("link-target"), env.path("dangling"))
    uf.eq(raw_ioctl(u.mnt, env.path("dangling"))[0], errno.EEXIST, "raw ioctl, dest is a dangling symlink")
    uf.check(not os.path.lexists(env.path("link-target")), "snapshot written through a symlink")
    os.unlink(env.path("dangling"))
    # The parent is resolved as the user named it: a symlink to a directory there is fine.
    os.symlink(env.mkdir("real-parent"), env.path("parent-link"))
    layer("snapshot", u.mnt, env.path("parent-link", "via-link"), check_rc=0)
    uf.check(os.path.isdir(env.path("real-parent", "via-link", "d")), "snapshot through a symlinked parent")
    shutil.rmtree(env.path("real-parent"))
    os.unlink(env.path("parent-link"))

    # a good raw request answers with the counts
    got, reply = raw_ioctl(u.mnt, env.path("raw-ok"))
    uf.eq(got, 0, "raw ioctl with a good request")
    uf.eq(reply[3], len(walk(env.path("raw-ok"))), "entries in the reply")

    # not a sandbox-unionfs mount, not its root, usage
    r = layer("snapshot", env.mkdir("plain"), env.path("x1"), check_rc=1)
    uf.check("not a sandbox-unionfs mount" in r.stderr, f"plain dir: {r.stderr!r}")
    r = layer("snapshot", u.p("d"), env.path("x1"), check_rc=1)
    uf.check("not the root" in r.stderr, f"subdirectory of the mount: {r.stderr!r}")
    layer("snapshot", u.mnt, check_rc=2)
    layer("snapshot", "--bogus", u.mnt, env.path("x1"), check_rc=2)
    uf.check("Usage" in layer("snapshot", "--help", check_rc=0).stdout, "--help")
    uf.check(not os.path.lexists(env.path("x1")), "x1 created")


if __name__ == "__main__":
    if not os.access(LAYER, os.X_OK):
        print(f"1..0 # SKIP no sandbox-layer at {LAYER}")
        sys.exit(77)
    uf.main()
