#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Nothing a sandbox makes gives a host user privileges (docs/security.md, "What the sandbox leaves on
the host"), as root, no mocks.

Inside a sandbox with a kept --upper, root makes set-uid and set-gid copies of id(1), a set-gid
directory, tries to make device nodes, and copies up a device node of the image. On the host, a
non-root user (uid 65534, a real process that dropped every privilege) then tries to run or open the
host copies: in the kept upper, after sandbox-layer snapshot, squash, merge, and export then import.
Every attempt must fail with EACCES, because each of those trees has a private root (0700 root:root on
disk, its shown mode and owner in trusted.overlay.sandbox.rootattr). Inside, the bits stay visible
and inert (no_new_privs); a -u 1000 program still walks /; chmod of / inside changes the record; the
upper still mounts under kernel overlayfs; the digest does not change because a root became private.

Every test has its own temp dir under /tmp (tests/lib/sandbox_fixture.py)."""

import io
import os
import stat
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest  # noqa: E402
import sandbox_fixture as sf  # noqa: E402

NOBODY = 65534
RECORD = "trusted.overlay.sandbox.rootattr"
# What the sandbox makes in its kept upper: set-uid/set-gid copies of id(1) (which prints euid= when it
# runs set-uid), a set-gid directory with a set-uid file in it, attempts at device nodes, a fifo.
MAKE = ("cp /usr/bin/id /suid; chmod 6755 /suid; mkdir /sgid; chmod 2777 /sgid; "
        "cp /usr/bin/id /sgid/suid2; chmod 4755 /sgid/suid2; "
        "mknod /null2 c 1 3 2>/dev/null; echo mknod_c=$?; mknod /sda2 b 8 0 2>/dev/null; echo mknod_b=$?; "
        "mkfifo /fifo; echo mkfifo=$?; stat -c '%a %u %g %n' /suid /sgid /sgid/suid2")
SETID_FILES = ("suid", "sgid/suid2")


def layer_bin():
    return os.path.abspath(os.environ.get("SANDBOX_LAYER") or sf._default("tools/sandbox-layer"))


def unionfs_bin():
    return os.path.abspath(os.environ.get("SANDBOX_UNIONFS") or sf._default("unionfs/sandbox-unionfs"))


def layer(*args, check=True):
    r = subprocess.run([layer_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"sandbox-layer {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def drop_to_nobody():
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def nobody_exec(path):
    """Run PATH as host uid 65534 (no capability left): "EACCES"/... or what it printed."""
    try:
        r = subprocess.run([path], preexec_fn=drop_to_nobody, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=20)
    except OSError as e:
        return ovltest.errname(e)
    return f"ran (exit {r.returncode}): {r.stdout.strip()}"


def nobody_open(path, flags=os.O_RDONLY):
    """Open PATH as host uid 65534: "OK" or the errno name."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            drop_to_nobody()
            fd = os.open(path, flags | os.O_NONBLOCK)
            os.close(fd)
            res = b"OK"
        except OSError as e:
            res = ovltest.errname(e).encode()
        except BaseException:  # noqa: BLE001
            res = b"child-error"
        os.write(wfd, res)
        os._exit(0)
    os.close(wfd)
    out = os.read(rfd, 100).decode()
    os.close(rfd)
    os.waitpid(pid, 0)
    return out


def record(path):
    try:
        return os.getxattr(path, RECORD).decode()
    except OSError as e:
        return ovltest.errname(e)


def root_state(path):
    st = os.lstat(path)
    return (oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, record(path))


def check_tree_unusable(tree, what):
    """The set-id files below TREE keep their bits on disk, and uid 65534 can neither run nor reach them;
    TREE's root is private."""
    for f in SETID_FILES:
        p = os.path.join(tree, f)
        st = os.lstat(p)
        sf.check(st.st_mode & stat.S_ISUID and st.st_uid == 0, f"{what}: {f} lost its set-uid bit or owner: "
                 f"{oct(st.st_mode)} {st.st_uid}")
        sf.eq(nobody_exec(p), "EACCES", f"{what}: uid {NOBODY} runs the set-uid file {f}")
        sf.eq(nobody_open(p), "EACCES", f"{what}: uid {NOBODY} opens {f}")
    sf.eq(nobody_open(os.path.join(tree, "sgid")), "EACCES", f"{what}: uid {NOBODY} opens the set-gid directory")
    sf.eq(root_state(tree)[:3], ("0o700", 0, 0), f"{what}: the root on disk (private)")


def no_devices(tree):
    """Device nodes below TREE other than whiteouts (character devices 0/0)."""
    found = []
    for dirpath, dirs, files in os.walk(tree):
        for n in dirs + files:
            st = os.lstat(os.path.join(dirpath, n))
            if (stat.S_ISCHR(st.st_mode) and st.st_rdev != 0) or stat.S_ISBLK(st.st_mode):
                found.append(os.path.join(dirpath, n))
    return found


def make_setid_upper(env, name="upper"):
    upper = env.mkdir(name, mode=0o755)
    r = env.run(["--upper", upper, "sh", "-c", MAKE], probe=False)
    sf.eq(r.returncode, 0, f"the sandbox that makes set-id files: {r}")
    return upper, r


# ==================================================================================================

def test_kept_upper(env):
    upper, r = make_setid_upper(env)
    kv = r.kv()
    sf.eq((kv.get("mknod_c"), kv.get("mknod_b"), kv.get("mkfifo")), ("1", "1", "0"),
          "mknod of a character and a block device inside (refused: CAP_MKNOD of the host's namespace), mkfifo")
    lines = r.stdout.splitlines()
    sf.check("6755 0 0 /suid" in lines and "2777 0 0 /sgid" in lines and "4755 0 0 /sgid/suid2" in lines,
             f"inside, the bits are there: {r.stdout!r}")
    check_tree_unusable(upper, "kept upper")
    sf.eq(root_state(upper), ("0o700", 0, 0, "755 0 0"), "the kept upper's root (mode, owner, record)")
    sf.eq(no_devices(upper), [], "device nodes in the kept upper")

    # Inside, the next sandbox on the same upper sees everything as before.
    r = env.run(["--upper", upper, "sh", "-c", "stat -c '%a %u %g %n' / /suid /sgid; /suid"], probe=False)
    sf.eq(r.returncode, 0, f"second sandbox {r}")
    sf.eq(r.stdout.splitlines()[:3], ["755 0 0 /", "6755 0 0 /suid", "2777 0 0 /sgid"], "ls -l inside, again")
    # Inert inside: no_new_privs (the program runs as 1000; id would print euid=0 if set-uid worked).
    r = env.run(["-u", "1000", "--upper", upper, "sh", "-c", "ls / >/dev/null && echo walked; /suid"],
                probe=False)
    sf.eq(r.returncode, 0, f"-u 1000 on the kept upper {r}")
    sf.check("walked" in r.stdout and "uid=1000" in r.stdout and "euid" not in r.stdout,
             f"a -u 1000 program walks / and the set-uid file is inert inside: {r.stdout!r}")

    # chmod of / inside changes the record, not the disk.
    r = env.run(["--upper", upper, "sh", "-c", "chmod 711 /; stat -c '%a %u %g' /"], probe=False)
    sf.eq((r.returncode, r.stdout.strip()), (0, "711 0 0"), f"chmod 711 / inside {r}")
    sf.eq(root_state(upper), ("0o700", 0, 0, "711 0 0"), "the upper's root after chmod of / inside")
    r = env.run(["-u", "1000", "--upper", upper, "sh", "-c", "stat -c '%a %u %g' /; cat /sgid/../suid >/dev/null "
                 "&& echo walked"], probe=False)
    sf.eq(r.stdout.split(), ["711", "0", "0", "walked"], f"-u 1000 after chmod 711 / {r}")


def test_existing_and_new_upper(env):
    # An existing upper another user made (0755, theirs, with content): its root becomes root's and 0700,
    # and the sandbox still sees it as it was.
    upper = env.mkdir("theirs", mode=0o755)
    env.write("theirs/hello", "hi\n")
    os.chown(upper, 1000, 1000)
    r = env.run(["--upper", upper, "sh", "-c", "stat -c '%a %u %g' /; cat /hello"], probe=False)
    sf.eq((r.returncode, r.stdout.split()), (0, ["755", "1000", "1000", "hi"]), f"the sandbox's view {r}")
    sf.eq(root_state(upper), ("0o700", 0, 0, "755 1000 1000"), "an existing upper's root afterwards")
    # A new (empty) upper shows 0755 root:root whatever its mode, as a throw-away upper does: a -u 1000
    # program walks /.
    upper = env.mkdir("new", mode=0o700)
    r = env.run(["-u", "1000", "--upper", upper, "sh", "-c", "stat -c '%a %u %g' /; ls /usr >/dev/null && echo ok"],
                probe=False)
    sf.eq((r.returncode, r.stdout.split()), (0, ["755", "0", "0", "ok"]), f"-u 1000 on a new 0700 upper {r}")
    sf.eq(root_state(upper), ("0o700", 0, 0, "755 0 0"), "a new upper's root afterwards")
    # A malformed record is refused with a message naming it.
    upper = env.mkdir("bad", mode=0o700)
    os.setxattr(upper, RECORD, b"0755 0 0")
    r = env.run(["--upper", upper, "true"], probe=False)
    sf.check(r.returncode == 125 and "malformed" in r.stderr and RECORD in r.stderr,
             f"an upper with a malformed record: {r}")


def test_copied_up_device(env):
    # A layer may hold device nodes (made by root on the host); a change through the sandbox copies one
    # up into the kept upper, where nobody else can reach it.
    lay = env.mkdir("layer", mode=0o755)
    os.mknod(os.path.join(lay, "null2"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    upper = env.mkdir("upper", mode=0o755)
    r = env.run(["--layer", lay, "--upper", upper, "sh", "-c", "chmod 666 /null2; echo done"], probe=False)
    sf.eq((r.returncode, r.stdout.strip()), (0, "done"), f"chmod of the layer's device inside {r}")
    st = os.lstat(os.path.join(upper, "null2"))
    sf.check(stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and stat.S_IMODE(st.st_mode) == 0o666,
             f"the device was copied up: {oct(st.st_mode)}")
    sf.eq(nobody_open(os.path.join(upper, "null2"), os.O_RDWR), "EACCES", f"uid {NOBODY} opens the copied-up device")


def test_snapshot(env):
    upper, _ = make_setid_upper(env)
    low = env.mkdir("low", mode=0o755)
    work = env.mkdir("work", mode=0o700)
    mnt = env.mkdir("mnt", mode=0o755)
    with ovltest.fuse_union(unionfs_bin(), mnt, [low], upper=upper, work=work):
        sf.eq(stat.S_IMODE(os.stat(mnt).st_mode), 0o755, "the mount's root shows its record")
        # chown and chmod of the mount's root change the record; the disk stays private
        os.chown(mnt, 1000, 1001)
        os.chmod(mnt, 0o2755)
        st = os.stat(mnt)
        sf.eq((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), ("0o2755", 1000, 1001), "the mount's root after chown")
        sf.eq(root_state(upper), ("0o700", 0, 0, "2755 1000 1001"), "the upper's root after chown through the mount")
        # a file made in a set-group-ID root takes its group (from the record)
        with open(os.path.join(mnt, "new"), "w"):
            pass
        sf.eq(os.stat(os.path.join(mnt, "new")).st_gid, 1001, "group of a file made in the set-gid root")
        os.unlink(os.path.join(mnt, "new"))
        os.chown(mnt, 0, 0)
        os.chmod(mnt, 0o755)
        dest = os.path.join(env.root, "snap")
        layer("snapshot", mnt, dest)
    check_tree_unusable(dest, "snapshot")
    sf.eq(record(dest), "755 0 0", "the snapshot's record")
    # A snapshot of an upper that was never made private (sandbox-unionfs used on its own) is private too.
    plain = env.mkdir("plain", mode=0o755)
    for f in SETID_FILES:
        os.makedirs(os.path.dirname(os.path.join(plain, f)), exist_ok=True)
    os.chmod(os.path.join(plain, "sgid"), 0o2777)
    for f in SETID_FILES:
        p = os.path.join(plain, f)
        subprocess.run(["cp", "/usr/bin/id", p], check=True)
        os.chmod(p, 0o4755)
    work2 = env.mkdir("work2", mode=0o700)
    mnt2 = env.mkdir("mnt2", mode=0o755)
    with ovltest.fuse_union(unionfs_bin(), mnt2, [low], upper=plain, work=work2):
        dest2 = os.path.join(env.root, "snap2")
        layer("snapshot", mnt2, dest2)
    check_tree_unusable(dest2, "snapshot of a public upper")
    sf.eq(record(dest2), "755 0 0", "the snapshot's record of a public upper's root")


def test_squash_merge_tar(env):
    upper, _ = make_setid_upper(env)
    img = env.mkdir("img", mode=0o755)
    env.write("img/base", "base\n")
    sq = os.path.join(env.root, "squashed")
    layer("squash", "-o", f"lowerdir={upper}:{img}", sq)
    check_tree_unusable(sq, "squash")
    sf.eq(record(sq), "755 0 0", "the squashed layer's record")

    # merge into a LOWER that everyone can enter: it becomes private, with a note.
    low = env.mkdir("lower", mode=0o755)
    env.write("lower/base", "base\n")
    r = layer("merge", upper, low)
    sf.check(r.stderr.startswith(f"sandbox-layer merge: note: LOWER '{low}' was open to other users"),
             f"merge's note: {r.stderr!r}")
    check_tree_unusable(low, "merge")
    sf.eq(record(low), "755 0 0", "LOWER's record after the merge")

    # export -> import: the tar is data; the imported layer is private.
    tar = os.path.join(env.root, "layer.tar")
    layer("export", upper, tar)
    st = os.stat(tar)
    sf.check(not st.st_mode & 0o7111, f"the exported tar is plain data: {oct(st.st_mode)}")
    imp = os.path.join(env.root, "imported")
    layer("import", tar, imp)
    check_tree_unusable(imp, "import of the export")
    sf.eq(record(imp), "755 0 0", "the imported layer's record")

    # An archive made elsewhere with devices and a set-uid file, and a "./" entry that opens the root.
    tar2 = os.path.join(env.root, "evil.tar")
    with tarfile.open(tar2, "w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo("./")
        ti.type, ti.mode = tarfile.DIRTYPE, 0o777
        t.addfile(ti)
        for name, devtype, major, minor in (("null2", tarfile.CHRTYPE, 1, 3), ("disk", tarfile.BLKTYPE, 8, 0)):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.devmajor, ti.devminor = devtype, 0o666, major, minor
            t.addfile(ti)
        with open("/usr/bin/id", "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("suid")
        ti.mode, ti.size = 0o4755, len(data)
        t.addfile(ti, io.BytesIO(data))
    imp2 = os.path.join(env.root, "imported2")
    layer("import", tar2, imp2)
    sf.eq(root_state(imp2), ("0o700", 0, 0, "777 0 0"), "an imported archive's root (./ said 0777)")
    sf.eq(nobody_open(os.path.join(imp2, "null2"), os.O_RDWR), "EACCES", f"uid {NOBODY} opens the imported device")
    sf.eq(nobody_open(os.path.join(imp2, "disk")), "EACCES", f"uid {NOBODY} opens the imported block device")
    sf.eq(nobody_exec(os.path.join(imp2, "suid")), "EACCES", f"uid {NOBODY} runs the imported set-uid file")


def test_digest_and_kernel_overlay(env):
    # Making a root private does not change a layer's digest.
    tree = env.mkdir("tree", mode=0o751)
    env.write("tree/f", "data\n")
    before = layer("digest", "-q", tree).stdout.strip()
    sq = os.path.join(env.root, "sq")
    layer("squash", "-o", f"lowerdir={tree}", sq)
    sf.eq(root_state(sq), ("0o700", 0, 0, "751 0 0"), "the squashed copy's root")
    sf.eq(layer("digest", "-q", sq).stdout.strip(), before, "digest of a tree and of its private copy")

    # A kept upper still mounts under kernel overlayfs (its root shows as it is on disk there).
    upper, _ = make_setid_upper(env)
    low = env.mkdir("low", mode=0o755)
    env.write("low/l", "lower\n")
    work = env.mkdir("kwork", mode=0o700)
    mnt = env.mkdir("kmnt", mode=0o755)
    with ovltest.kernel_overlay(mnt, [low], upper=upper, work=work):
        st = os.lstat(os.path.join(mnt, "suid"))
        sf.check(st.st_mode & stat.S_ISUID and os.path.exists(os.path.join(mnt, "l")),
                 f"kernel overlayfs over the kept upper: {oct(st.st_mode)}")
        sf.eq(stat.S_IMODE(os.stat(mnt).st_mode), 0o700, "the kernel's view of a private root (not its record)")


def test_writable_bind_known_limit(env):
    # A writable --bind is the host's directory: what the sandbox makes there belongs to its host id
    # range (never host root), so a set-uid file there runs as that id, not as root (docs/security.md).
    shared = env.mkdir("shared", mode=0o777)
    r = env.run(["--bind", f"{shared}:/shared", "sh", "-c", "cp /usr/bin/id /shared/x; chmod 4755 /shared/x; "
                 "stat -c '%a %u' /shared/x"], probe=False)
    sf.eq((r.returncode, r.stdout.strip()), (0, "4755 0"), f"inside, a set-uid file in the bind {r}")
    st = os.lstat(os.path.join(shared, "x"))
    sf.check(st.st_uid >= 65536 and st.st_mode & stat.S_ISUID, f"the host copy is owned by the sandbox's host range: "
             f"{st.st_uid} {oct(st.st_mode)}")
    out = nobody_exec(os.path.join(shared, "x"))
    sf.check(f"euid={st.st_uid}" in out and "euid=0" not in out, f"uid {NOBODY} runs it: {out!r}")


if __name__ == "__main__":
    sf.main()
