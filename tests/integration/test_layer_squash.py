#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-layer squash against kernel overlayfs as the oracle (root).

A four-layer stack (L1 top .. L4 bottom) holds every kind of object and every overlay rule: overrides at
several levels, whiteouts of a file and of a directory, an opaque directory, a directory over a file and a
file over a directory, directories renamed by kernel overlayfs itself (absolute, relative and chained
redirects), hard links, symlinks, devices, a fifo, a socket, xattrs, owners and mode bits, a sparse file.
The squash of the stack must equal, by `sandbox-layer digest` and by our own walk, what the kernel shows
when it mounts the same stack; --keep-whiteouts output put on top of the bottom layer must show the same
as the whole stack. Also the command line contract: errors, exit codes, nothing left behind.
"""

import os
import shutil
import socket
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest  # noqa: E402

# What the unionfs tests mount the kernel with, so redirects are created and followed.
KERNEL_OPTS = ("redirect_dir=on", "index=off", "metacopy=off", "xino=off")

tap = ovltest.Tap()


def layer_bin():
    path = os.environ.get("SANDBOX_LAYER")
    if not path:
        ovltest.skip_all("SANDBOX_LAYER is not set")
    if not os.access(path, os.X_OK):
        ovltest.skip_all(f"SANDBOX_LAYER={path} is not executable")
    return path


SL = None


def run(*args):
    return subprocess.run([SL, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)


def digest(path, mtime=False):
    r = run("digest", "-q", *(["--mtime"] if mtime else []), path)
    if r.returncode != 0 or not r.stdout.startswith("xxh128:"):
        raise RuntimeError(f"digest {path}: exit {r.returncode}: {r.stderr.strip()} {r.stdout.strip()}")
    return r.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- building layers

def write(path, data=b"x\n", mode=0o644, owner=None, xattrs=None, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if owner:
        os.chown(path, *owner)
    os.chmod(path, mode)  # after chown, which clears suid/sgid
    for k, v in (xattrs or {}).items():
        os.setxattr(path, k, v)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def mkdir(path, mode=0o755, owner=None, xattrs=None):
    os.makedirs(path, exist_ok=True)
    if owner:
        os.chown(path, *owner)
    os.chmod(path, mode)
    for k, v in (xattrs or {}).items():
        os.setxattr(path, k, v)


def whiteout(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path):
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def redirect(path, value):
    os.makedirs(path, exist_ok=True)
    os.setxattr(path, "trusted.overlay.redirect", value)


def make_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
    finally:
        s.close()


def build_l4(d):
    """The base image."""
    mkdir(d, 0o755)
    write(f"{d}/a", b"a from L4\n")
    write(f"{d}/b", b"b from L4\n")
    write(f"{d}/keep", b"unchanged\n", 0o600, owner=(1234, 5678), xattrs={"user.k": b"v4"}, mtime=10**18)
    write(f"{d}/suid", b"#!/bin/sh\n", 0o6755, owner=(0, 100))
    mkdir(f"{d}/sticky", 0o1777)
    os.symlink("a", f"{d}/link")
    os.symlink("/nonexistent/target", f"{d}/dangling")
    os.mkfifo(f"{d}/fifo", 0o640)
    os.mknod(f"{d}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(f"{d}/blk", stat.S_IFBLK | 0o600, os.makedev(7, 200))
    make_socket(f"{d}/sock")
    with open(f"{d}/sparse", "wb") as f:  # one byte after a 4 MiB hole
        f.seek(4 << 20)
        f.write(b"x")
    write(f"{d}/big", os.urandom(3 << 20))
    write(f"{d}/h1", b"hard link\n")
    mkdir(f"{d}/hl")
    os.link(f"{d}/h1", f"{d}/hl/h2")
    write(f"{d}/p1", b"partly hidden link\n")
    os.link(f"{d}/p1", f"{d}/p2")
    write(f"{d}/wo_file", b"whited out by L3\n")
    write(f"{d}/wo_dir/inner", b"whited out dir\n")
    write(f"{d}/opq/old1", b"hidden by opaque\n")
    write(f"{d}/opq/old2", b"hidden by opaque\n")
    write(f"{d}/f2d", b"file below a dir\n")
    write(f"{d}/d2f/child", b"dir below a file\n")
    write(f"{d}/merge/base", b"merged from L4\n")
    write(f"{d}/ren_src/sub/file", b"renamed far away\n")
    write(f"{d}/rel_src/file", b"renamed beside\n")
    write(f"{d}/rel_src/stays", b"found through a relative redirect\n")
    mkdir(f"{d}/other")
    mkdir(f"{d}/xdir", 0o750, owner=(42, 43), xattrs={"user.dir": b"L4"})
    write(f"{d}/xdir/f", b"in xdir\n")


def build_l3(d):
    mkdir(d)
    write(f"{d}/a", b"a from L3\n", 0o640)
    whiteout(f"{d}/wo_file")
    mkdir(f"{d}/f2d")  # a directory over a file, no opaque marker: the file below is hidden
    write(f"{d}/f2d/new", b"in the dir over a file\n")
    write(f"{d}/d2f", b"a file over a directory\n")
    write(f"{d}/merge/l3", b"merged from L3\n")
    mkdir(f"{d}/xdir", 0o700, owner=(7, 8), xattrs={"user.dir": b"L3", "trusted.t": b"L3"})
    write(f"{d}/xdir/g", b"added by L3\n")
    whiteout(f"{d}/p2")


def session(lowers, upper, work, mnt, ops):
    """Let kernel overlayfs write UPPER: mount, run ops(mnt), unmount."""
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    with ovltest.kernel_overlay(mnt, lowers, upper, work, options=KERNEL_OPTS):
        ops(mnt)


def ops_l2(m):
    os.rename(f"{m}/ren_src", f"{m}/other/place")  # another parent: absolute redirect
    os.rename(f"{m}/rel_src", f"{m}/rel_dst")  # same parent: relative redirect
    with open(f"{m}/b", "wb") as f:
        f.write(b"b from L2\n")
    shutil.rmtree(f"{m}/wo_dir")  # whiteout of a directory
    shutil.rmtree(f"{m}/opq")
    os.mkdir(f"{m}/opq")  # a new directory over a whiteout: opaque
    with open(f"{m}/opq/new1", "wb") as f:
        f.write(b"only this one\n")
    with open(f"{m}/other/place/sub/added", "wb") as f:
        f.write(b"added after the rename\n")
    os.setxattr(f"{m}/keep", "user.k2", b"set through the mount")


def ops_l1(m):
    os.rename(f"{m}/other/place", f"{m}/chained")  # a redirected directory renamed again
    os.rename(f"{m}/rel_dst/file", f"{m}/rel_dst/file2")
    os.rename(f"{m}/merge", f"{m}/merge")  # no-op
    with open(f"{m}/a", "wb") as f:
        f.write(b"a from L1\n")


def build_l1_plain(d):
    write(f"{d}/merge/l1", b"merged from L1\n")
    write(f"{d}/newdir/deep/file", b"new in L1\n", 0o4711)
    os.symlink("../a", f"{d}/newdir/up")
    os.setxattr(f"{d}/newdir/up", "trusted.onlink", b"x", follow_symlinks=False)
    whiteout(f"{d}/link")
    write(f"{d}/h1copy", b"hard link\n")


# ---------------------------------------------------------------- comparing

def skip_fields(path, field, a, b):
    # Inode numbers and link counts are the filesystem's; a directory's size is too.
    if field in ("ino", "nlink"):
        return True
    if field == "size" and a.get("type") == "d" and b.get("type") == "d":
        return True
    return False


def tree_diff(a, b, names):
    diffs = ovltest.compare_snapshots(ovltest.snapshot(a), ovltest.snapshot(b), skip_fields)
    return ovltest.format_diffs(diffs, names)


def getx(path, name):
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def markers_in(root):
    """Whiteouts and overlay xattrs anywhere below root (a plain directory)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames + ([""] if dirpath == root else []):
            p = os.path.join(dirpath, n) if n else dirpath
            st = os.lstat(p)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                found.append(f"whiteout {p}")
            try:
                for x in os.listxattr(p, follow_symlinks=False):
                    if p == root and x in ovltest.ROOTATTR_XATTRS:
                        continue  # the private root's record (docs/security.md): not layer structure
                    if x.startswith("trusted.overlay.") or x.startswith("user.overlay."):
                        found.append(f"{x} on {p}")
            except OSError:
                pass
    return found


def leftovers(parent):
    return [n for n in os.listdir(parent) if n.startswith(".#squash")]


# ---------------------------------------------------------------- tests

def main():
    global SL
    ovltest.require_root()
    ovltest.require_overlayfs()
    ovltest.install_signal_handlers()
    SL = layer_bin()

    with ovltest.tempdir("sbx-squash-") as t:
        L1, L2, L3, L4 = (f"{t}/L{i}" for i in range(1, 5))
        mnt = f"{t}/mnt"
        os.mkdir(mnt)
        build_l4(L4)
        build_l3(L3)
        session([L3, L4], L2, f"{t}/w2", mnt, ops_l2)
        session([L2, L3, L4], L1, f"{t}/w1", mnt, ops_l1)
        build_l1_plain(L1)
        stack = [L1, L2, L3, L4]

        # The fixture must really hold kernel-made redirects of both kinds, else we test nothing.
        r_abs = getx(f"{L2}/other/place", "trusted.overlay.redirect")
        r_rel = getx(f"{L2}/rel_dst", "trusted.overlay.redirect")
        r_chain = getx(f"{L1}/chained", "trusted.overlay.redirect")
        tap.ok(r_abs == b"/ren_src" and r_rel == b"rel_src" and r_chain == b"/other/place",
               "fixture: kernel overlayfs wrote absolute, relative and chained redirects",
               f"{r_abs!r} {r_rel!r} {r_chain!r}")

        layer_digests = [digest(d, mtime=True) for d in stack]

        with ovltest.kernel_overlay(mnt, stack, options=KERNEL_OPTS + ("ro",)):
            oracle = digest(mnt)
            oracle_mtime = digest(mnt, mtime=True)
            # our own view of the oracle, for readable diffs below
            ref_snap = ovltest.snapshot(mnt)
            tap.ok(os.path.isfile(f"{mnt}/chained/sub/file") and os.path.isfile(f"{mnt}/rel_dst/stays"),
                   "fixture: the kernel follows the redirects")

        # --- squash of the full stack equals the kernel's merged view
        out = f"{t}/out"
        r = run("squash", "-o", "lowerdir=" + ":".join(stack), out)
        tap.ok(r.returncode == 0 and r.stdout == "" and r.stderr == "",
               "squash succeeds and prints nothing when not on a terminal",
               f"exit {r.returncode}: {r.stdout!r} {r.stderr!r}")
        got = ovltest.snapshot(out)
        diffs = ovltest.compare_snapshots(ref_snap, got, skip_fields)
        tap.ok(not diffs, "squash: every entry equals the kernel's view (type, mode, owner, data, "
               "xattrs, target, rdev, mtime)", ovltest.format_diffs(diffs, ("kernel", "squash")))
        tap.ok(digest(out) == oracle, "squash: digest equals the kernel overlay mount's")
        tap.ok(digest(out, mtime=True) == oracle_mtime, "squash: digest --mtime equals too (times kept)")
        m = markers_in(out)
        tap.ok(not m, "squash without --keep-whiteouts: no whiteouts, no overlay xattrs", "\n".join(m))
        st1, st2, stc = (os.lstat(f"{out}/{p}") for p in ("h1", "hl/h2", "h1copy"))
        tap.ok(st1.st_ino == st2.st_ino and st1.st_nlink == 2 and stc.st_ino != st1.st_ino,
               "hard links within a layer stay one inode; an equal file in another layer does not join",
               f"{st1.st_ino} {st2.st_ino} {stc.st_ino} nlink={st1.st_nlink}")
        sp = os.lstat(f"{out}/sparse")
        tap.ok(sp.st_size == (4 << 20) + 1 and sp.st_blocks * 512 < (1 << 20),
               "a sparse file keeps its hole", f"size={sp.st_size} blocks={sp.st_blocks}")
        tap.ok([digest(d, mtime=True) for d in stack] == layer_digests,
               "the layers are not modified")

        # --- upperdir= is the topmost layer
        out_u = f"{t}/out-upper"
        r = run("squash", "-o", f"lowerdir={L2}:{L3}:{L4},upperdir={L1},workdir={t}/w1,redirect_dir=on,index=off,ro",
                out_u)
        tap.ok(r.returncode == 0 and digest(out_u, mtime=True) == oracle_mtime,
               "squash with upperdir= (workdir= and mount-only options ignored) equals the same stack",
               r.stderr)

        # --- --keep-whiteouts: the squash of L1..L3 on top of L4 shows what the whole stack shows
        kw = f"{t}/kw"
        r = run("squash", "--keep-whiteouts", "-o", f"lowerdir={L1}:{L2}:{L3}", kw)
        tap.ok(r.returncode == 0, "squash --keep-whiteouts succeeds", r.stderr)
        ovltest.show_recorded_root(kw)  # the kernel shows the root as it is on disk
        with ovltest.kernel_overlay(mnt, [kw, L4], options=KERNEL_OPTS + ("ro",)):
            d_kw = digest(mnt, mtime=True)
            diffs = ovltest.compare_snapshots(ref_snap, ovltest.snapshot(mnt), skip_fields)
        tap.ok(d_kw == oracle_mtime and not diffs,
               "--keep-whiteouts result mounted over the bottom layer equals the whole stack",
               ovltest.format_diffs(diffs, ("stack", "kw+L4")))
        tap.ok(stat.S_ISCHR(os.lstat(f"{kw}/wo_file").st_mode)
               and getx(f"{kw}/opq", "trusted.overlay.opaque") == b"y"
               and getx(f"{kw}/chained", "trusted.overlay.redirect") == b"/ren_src"
               and getx(f"{kw}/merge", "trusted.overlay.opaque") is None,
               "--keep-whiteouts: whiteout kept, opaque dir marked, redirect rewritten to the bottom "
               "path, a merging dir left unmarked")

        # --- redirect corner cases, markers written by hand, the kernel again as the oracle
        A, B, C, D = (f"{t}/R{x}" for x in "ABCD")
        for x in (A, B, C, D):
            os.makedirs(x)
        redirect(f"{A}/ra", b"/p/q")  # the path crosses an opaque dir in C: C counts, D does not
        write(f"{B}/p/q/fromB")
        write(f"{C}/p/q/fromC")
        opaque(f"{C}/p")
        write(f"{D}/p/q/fromD")
        redirect(f"{A}/rb", b"/s/t")  # absolute, then relative from there
        redirect(f"{B}/s/t", b"u")
        write(f"{B}/s/t/fromB")
        write(f"{C}/s/u/fromC")
        write(f"{C}/s/t/hidden")
        whiteout(f"{D}/bottom_whiteout")
        redirect(f"{A}/rd", b"/nothing/here")  # leads nowhere: only its own contents
        write(f"{A}/rd/own")
        write(f"{B}/rd/hidden")
        redirect(f"{A}/re", b"/p")  # opaque wins over redirect
        opaque(f"{A}/re")
        write(f"{B}/re/hidden")
        redirect(f"{A}/rf", b"/g/h")  # a whiteout on the way stops the walk
        whiteout(f"{B}/g")
        write(f"{C}/g/h/hidden")
        redirect(f"{A}/rg", b"/k/h")  # so does a file
        write(f"{B}/k")
        write(f"{C}/k/h/hidden")
        redirect(f"{A}/par", b"/opar")  # relative redirect inside a redirected parent
        redirect(f"{A}/par/kid", b"okid")
        write(f"{B}/opar/okid/fromB")
        write(f"{B}/par/kid/hidden")
        write(f"{C}/opar/okid/fromC")
        redirect(f"{B}/lowred", b"/lr")  # a redirect in a lower layer
        write(f"{C}/lr/fromC")
        write(f"{C}/lowred/hidden")
        with ovltest.kernel_overlay(mnt, [A, B, C, D], options=KERNEL_OPTS + ("ro",)):
            d_red = digest(mnt)
            snap_red = ovltest.snapshot(mnt)
        out_red = f"{t}/out-red"
        r = run("squash", "-o", f"lowerdir={A}:{B}:{C}:{D}", out_red)
        diffs = ovltest.compare_snapshots(snap_red, ovltest.snapshot(out_red), skip_fields)
        tap.ok(r.returncode == 0 and digest(out_red) == d_red and not diffs,
               "redirect corner cases (opaque or whiteout or file on the way, chains, lower-layer "
               "redirects, redirect to nothing) equal the kernel's view",
               r.stderr + ovltest.format_diffs(diffs, ("kernel", "squash")))
        kw_red = f"{t}/kw-red"
        r = run("squash", "--keep-whiteouts", "-o", f"lowerdir={A}:{B}:{C}", kw_red)
        ovltest.show_recorded_root(kw_red)
        with ovltest.kernel_overlay(mnt, [kw_red, D], options=KERNEL_OPTS + ("ro",)):
            tap.ok(r.returncode == 0 and digest(mnt) == d_red,
                   "... and their --keep-whiteouts squash over the bottom layer too", r.stderr)

        # --- markers in the user. namespace (rootless layers) are read as well
        U1, U2 = f"{t}/U1", f"{t}/U2"
        write(f"{U2}/d/hidden", b"below a user.overlay.opaque dir\n")
        write(f"{U2}/old/moved", b"reached through user.overlay.redirect\n")
        write(f"{U1}/d/shown", b"above\n")
        os.setxattr(f"{U1}/d", "user.overlay.opaque", b"y")
        whiteout(f"{U1}/gone")
        write(f"{U2}/gone", b"whited out\n")
        with ovltest.kernel_overlay(mnt, [U1, U2], options=("userxattr", "ro")):
            d_user = digest(mnt)
        out_user = f"{t}/out-user"
        r = run("squash", "-o", f"lowerdir={U1}:{U2}", out_user)
        tap.ok(r.returncode == 0 and digest(out_user) == d_user and not markers_in(out_user),
               "user.overlay.opaque: equals the kernel's userxattr mount", r.stderr)
        # The kernel refuses redirects with userxattr; sandbox-unionfs follows them, and so do we.
        os.mkdir(f"{U1}/new")
        os.setxattr(f"{U1}/new", "user.overlay.redirect", b"/old")
        out_user2 = f"{t}/out-user2"
        r = run("squash", "-o", f"lowerdir={U1}:{U2}", out_user2)
        tap.ok(r.returncode == 0 and sorted(os.listdir(f"{out_user2}/new")) == ["moved"]
               and sorted(os.listdir(out_user2)) == ["d", "new", "old"]
               and getx(f"{out_user2}/new", "user.overlay.redirect") is None,
               "user.overlay.redirect is followed and not copied", r.stderr)

        # --- command line contract
        r = run("squash", "-o", "lowerdir=" + ":".join(stack), out)
        tap.ok(r.returncode == 1 and "exists" in r.stderr and r.stderr.startswith("sandbox-layer squash: ")
               and digest(out) == oracle and not leftovers(t),
               "DEST exists: exit 1 with a message, DEST untouched", r.stderr)

        r = run("squash", "-o", f"lowerdir={L4},nosuchoption", f"{t}/bad")
        tap.ok(r.returncode == 2 and "nosuchoption" in r.stderr and not os.path.lexists(f"{t}/bad"),
               "unknown -o option: exit 2 naming it", r.stderr)
        r = run("squash", f"{t}/bad")
        tap.ok(r.returncode == 2 and "lowerdir" in r.stderr, "no lowerdir=: exit 2", r.stderr)
        r = run("squash", "-o", f"lowerdir={L4}")
        tap.ok(r.returncode == 2 and "DEST" in r.stderr, "no DEST: exit 2", r.stderr)
        r = run("squash", *[f"-olowerdir={L4}"] * 8, "-oro", "-oindex=off", f"{t}/many")
        tap.ok(r.returncode == 0 and digest(f"{t}/many") == digest(L4),
               "many -oLIST arguments: the last lowerdir= counts", r.stderr)
        r = run("squash", "--help")
        tap.ok(r.returncode == 0 and "--keep-whiteouts" in r.stdout, "--help: exit 0, usage on stdout")

        r = run("squash", "-o", f"lowerdir={L1}:{t}/missing:{L4}", f"{t}/bad")
        tap.ok(r.returncode == 1 and f"{t}/missing" in r.stderr and not os.path.lexists(f"{t}/bad")
               and not leftovers(t), "missing layer: exit 1 naming it, nothing left behind", r.stderr)

        r = run("squash", "-o", f"lowerdir={L1}:{L4}", f"{L1}/inside")
        tap.ok(r.returncode == 1 and not os.path.lexists(f"{L1}/inside"),
               "DEST inside a layer: refused", r.stderr)

        # Progress on a terminal: a tree big enough to take well over the 100 ms redraw interval.
        many = f"{t}/manyfiles"
        for i in range(80):
            os.makedirs(f"{many}/d{i}")
            for j in range(100):
                with open(f"{many}/d{i}/f{j}", "wb") as f:
                    f.write(b"y" * 1000)
        rc, _, seen = ovltest.run_on_pty([SL, "squash", "-o", f"lowerdir={many}", f"{t}/many-out"])
        tap.ok(rc == 0 and ovltest.progress_ok("squash", seen, 8081, 8000 * 1000),
               "on a terminal: a progress line with entries and bytes, cleared at the end", repr(seen[-200:]))

        # A failure in the middle (a tree deeper than the limit) removes the half-built result.
        deep = f"{t}/deep"
        p = deep
        for _ in range(300):
            p += "/d"
        os.makedirs(p)
        write(f"{deep}/first", b"copied before the failure\n")
        r = run("squash", "-o", f"lowerdir={deep}:{L4}", f"{t}/deep-out")
        tap.ok(r.returncode == 1 and r.stderr.startswith("sandbox-layer squash: ") and "255" in r.stderr
               and not os.path.lexists(f"{t}/deep-out") and not leftovers(t),
               "failure mid-way: exit 1, no DEST and no temporary left", r.stderr)

    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
