#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fuse-overlayfs option parity (docs/unionfs.md, "fuse-overlayfs options"): every option fuse-overlayfs 1.10
to 1.16 parses mounts, or is refused with a message that says why (plugins=); and the ones that change
something do what they say: squash_to_root/squash_to_uid/squash_to_gid (shown owners), static_nlink,
noxattrs, xattr_permissions (fuse-overlayfs's override xattr read and written), fsync=0 and volatile
(fsync() no longer reaches the server)."""

import errno
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

# Every option of fuse-overlayfs's option table and of the mount options it lets through, 1.10 to 1.16
# (its man page documents lowerdir, upperdir, workdir, uidmapping, gidmapping, squash_to_root,
# squash_to_uid, squash_to_gid, static_nlink, noacl).
ACCEPTED = ("squash_to_root", "squash_to_uid=1000", "squash_to_gid=1000", "static_nlink", "noacl",
            "xattr_permissions=0", "xattr_permissions=1", "xattr_permissions=2", "fsync=0", "fsync=1",
            "volatile", "redirect_dir=off", "context=system_u:object_r:container_file_t:s0",
            "timeout=5", "threaded=0", "threaded=1", "fast_ino=1", "writeback=0", "writeback=1",
            "noxattrs=0", "noxattrs=1", "uidmapping=0:1000:65536", "gidmapping=0:1000:65536",
            "allow_root", "allow_other", "default_permissions", "suid", "dev", "nosuid", "nodev", "exec",
            "noexec", "atime", "noatime", "diratime", "nodiratime", "splice_write", "splice_read",
            "splice_move", "kernel_cache", "max_write=131072", "max_read=131072", "ro", "lazytime")
REFUSED = {"plugins=/usr/libexec/fuse-overlayfs/foo.so": ("plugins", "directory")}


def lay_one(env, tag, populate=None):
    lay = uf.layout(env, tag)
    uf.write(os.path.join(lay["lowers"][0], "file"), b"lower data", uid=1000, gid=1000)
    os.mkdir(os.path.join(lay["lowers"][0], "dir"))
    if populate:
        populate(lay["lowers"][0])
    return lay


def test_every_option_mounts(env):
    for i, opt in enumerate(ACCEPTED):
        lay = lay_one(env, f"o{i}")
        try:
            m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=[opt])
        except uf.MountError as e:
            raise AssertionError(f"-o {opt} does not mount: {e}")
        uf.eq(uf.read(m.p("file")), b"lower data", f"reading a file with -o {opt}")
        m.cleanup()


def test_refused_options_say_why(env):
    for i, (opt, words) in enumerate(REFUSED.items()):
        lay = lay_one(env, f"r{i}")
        r = subprocess.run([uf.binary(), "-o", f"lowerdir={lay['lowers'][0]},upperdir={lay['upper']},"
                            f"workdir={lay['work']},{opt}", lay["mnt"]], capture_output=True, text=True,
                           timeout=20)
        uf.eq(r.returncode, 2, f"exit status with -o {opt} (bad usage)")
        for w in words:
            uf.check(w in r.stderr, f"-o {opt}: the message does not say '{w}': {r.stderr!r}")
        uf.check(not uf.is_mounted(lay["mnt"]), f"-o {opt}: mounted anyway")


def test_squash(env):
    for i, (opts, want) in enumerate(((["squash_to_root"], (0, 0)),
                                      (["squash_to_uid=7", "squash_to_gid=8"], (7, 8)),
                                      (["squash_to_root", "squash_to_uid=7"], (7, 0)),
                                      ([], (1000, 1000)))):
        lay = lay_one(env, f"s{i}")
        m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=opts)
        st = os.stat(m.p("file"))
        uf.eq((st.st_uid, st.st_gid), want, f"shown owner of a lower file (1000:1000 on disk) with {opts}")
        uf.write(m.p("new"), b"x")
        st = os.stat(m.p("new"))
        uf.eq((st.st_uid, st.st_gid), want if opts else (0, 0), f"shown owner of a new file with {opts}")
        os.chown(m.p("file"), 4321, 4321)
        st = os.stat(m.p("file"))
        uf.eq((st.st_uid, st.st_gid), want if opts else (4321, 4321), f"shown owner after chown with {opts}")
        ust = os.stat(os.path.join(lay["upper"], "file"))
        uf.eq((ust.st_uid, ust.st_gid), (4321, 4321), f"owner on disk after chown with {opts}")


def test_static_nlink(env):
    def populate(d):
        for s in ("a", "b", "c"):
            os.makedirs(os.path.join(d, "only", s))
    for opts, want in (([], 5), (["static_nlink"], 1)):
        lay = lay_one(env, f"n{len(opts)}", populate)
        # a directory of the single lower layer, not merged: its real link count unless static_nlink
        m = env.union(lay["lowers"], None, None, lay["mnt"], opts=opts)
        uf.eq(os.stat(m.p("only")).st_nlink, want, f"st_nlink of a directory with 3 subdirectories, {opts}")


def test_noxattrs(env):
    lay = lay_one(env, "x", lambda d: os.setxattr(os.path.join(d, "file"), "user.a", b"1"))
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["noxattrs=1"])
    uf.eq(uf.errname(os.getxattr, m.p("file"), "user.a"), "ENOTSUP", "getxattr with noxattrs=1")
    uf.eq(uf.errname(os.listxattr, m.p("file")), "ENOTSUP", "listxattr with noxattrs=1")
    uf.eq(uf.errname(os.setxattr, m.p("file"), "user.b", b"2"), "ENOTSUP", "setxattr with noxattrs=1")
    uf.check(not os.path.exists(os.path.join(lay["upper"], "file")), "a refused setxattr copied the file up")


def test_xattr_permissions(env):
    """fuse-overlayfs's override xattr ("uid:gid:mode") gives the shown owner and mode, is kept in step by
    chmod and chown, and is not an xattr of the user's."""
    def populate(d):
        os.setxattr(os.path.join(d, "file"), "user.containers.override_stat", b"1234:2345:600")
        uf.write(os.path.join(d, "old"), b"o")
        os.setxattr(os.path.join(d, "old"), "user.fuseoverlayfs.override_stat", b"11:22:4755")
    lay = lay_one(env, "p", populate)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["xattr_permissions=2"])
    st = os.stat(m.p("file"))
    uf.eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)), (1234, 2345, oct(0o600)), "shown from the xattr")
    st = os.stat(m.p("old"))
    uf.eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)), (11, 22, oct(0o4755)),
          "shown from the older user.fuseoverlayfs.override_stat")
    uf.eq(os.listxattr(m.p("file")), [], "xattrs listed")
    uf.eq(uf.errname(os.getxattr, m.p("file"), "user.containers.override_stat"), "ENODATA", "getxattr of it")
    uf.eq(uf.errname(os.setxattr, m.p("file"), "user.containers.override_stat", b"0:0:777"), "EPERM",
          "setxattr of it")
    os.chmod(m.p("file"), 0o640)
    os.chown(m.p("file"), 77, 88)
    st = os.stat(m.p("file"))
    uf.eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)), (77, 88, oct(0o640)), "after chmod and chown")
    uf.eq(os.getxattr(os.path.join(lay["upper"], "file"), "user.containers.override_stat"), b"77:88:640",
          "the override xattr in the upper")
    m.cleanup()
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    st = os.stat(m.p("file"))
    uf.eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)), (77, 88, oct(0o640)),
          "without the option: the real owner and mode, which chmod and chown also set")


def fsync_requests(log):
    """(FSYNC requests, their errors) in libfuse's debug log."""
    lines = log.splitlines()
    uniques = [re.search(r"unique: (\d+)", l).group(1) for l in lines if "opcode: FSYNC " in l]
    errs = []
    for u in uniques:
        for l in lines:
            m = re.search(rf"unique: {u}, (?:error|success)[:,] ?(-?\d+)?", l)
            if m and "opcode" not in l:
                errs.append(int(m.group(1) or 0))
                break
    return len(uniques), errs


def test_fsync_volatile(env):
    """With volatile or fsync=0, fsync() returns success without a request to the server after the
    first (which it answers ENOSYS, so the kernel stops asking); without them every fsync reaches it."""
    for opts, want in (([], (2, [0, 0])), (["volatile"], (1, [-38])), (["fsync=0"], (1, [-38]))):
        lay = lay_one(env, f"f{len(opts)}{opts[0][0] if opts else ''}")
        mnt = env.mkdir(f"mnt-{len(opts)}{opts[0][0] if opts else ''}")
        m = env.union(lay["lowers"], lay["upper"], lay["work"], mnt, opts=opts, args_extra=["-d"])
        fd = os.open(m.p("new"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"data")
        uf.eq(uf.errname(os.fsync, fd), "OK", f"first fsync with {opts}")
        uf.eq(uf.errname(os.fsync, fd), "OK", f"second fsync with {opts}")
        os.close(fd)
        m.cleanup()
        uf.eq(fsync_requests(m.server_log_full()), want, f"FSYNC requests and their answers with {opts}")


if __name__ == "__main__":
    uf.main()
