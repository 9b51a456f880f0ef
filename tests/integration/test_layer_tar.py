#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-layer import/export: OCI layer tars <-> overlay layer directories (run as root).

1. A rich layer (holes, symlinks, hard links, fifo, devices, whiteout, opaque dir, xattrs, long names
   and paths, set-id bits, owners other than 0) -> export -> import is the same tree (own walk, and
   `digest -q` when it works) for plain, gzip and zstd; exporting twice, and re-exporting the imported
   tree, gives byte-identical tars; import -> export -> import keeps the digest.
2. Hostile tars built with Python's tarfile (traversal, absolute paths, symlink-then-write, hard links
   out of DEST, absurd sizes, truncation, forged overlay xattrs): a non-zero exit with a message naming
   the problem, no DEST, nothing written outside it, no temporary left behind. Bombs, built small on
   disk (gzip members and zstd frames of zeros): 11 GiB in one file and a million entries stop at the
   default bounds, many files at --max-size, many files and implied directories at --max-entries.
3. podman and docker import our export (Go's archive/tar reads it); the tars podman and docker export
   from a container of that image, and buildah's oci-archive layer blob, import to the source content.
   docker is a private dockerd (see PrivateDockerd); on a progress terminal, import and export draw.
Exit 77 when not root (a failure under SBX_TESTS_MUST_RUN=1).
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest  # noqa: E402
from image_fixture import DOCKER_ROOT, PrivateDockerd  # noqa: E402

T = ovltest.Tap()
LAYER = os.environ.get("SANDBOX_LAYER", "")


def run(*args, stdin=None):
    r = subprocess.run([LAYER, *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=120)
    return r


# ---------------------------------------------------------------- own tree comparison

def tree(root):
    """{relpath: fields}; hard links are grouped by the first path seen (sorted walk)."""
    out, first = {}, {}

    def walk(real, rel):
        st = os.lstat(real)
        e = {"type": ovltest.type_char(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode)),
             "uid": st.st_uid, "gid": st.st_gid}
        if rel != "/":
            e["mtime"] = int(st.st_mtime)
        xs = ovltest.xattrs_of(real)
        if rel == "/" and ovltest.root_record(real):
            # A private root (docs/security.md) stands for the mode and owner of its record.
            mode, e["uid"], e["gid"] = ovltest.root_record(real)
            e["mode"] = oct(mode)
            xs = {k: v for k, v in xs.items() if k not in ovltest.ROOTATTR_XATTRS}
        e["xattrs"] = xs
        if stat.S_ISREG(st.st_mode):
            e["size"] = st.st_size
            e["sha"] = ovltest.file_digest(real)
        if stat.S_ISLNK(st.st_mode):
            e["target"] = os.readlink(real)
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            e["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            e["link"] = first.setdefault((st.st_dev, st.st_ino), rel)
        out[rel] = e
        if stat.S_ISDIR(st.st_mode):
            for n in sorted(os.listdir(real)):
                walk(os.path.join(real, n), rel.rstrip("/") + "/" + n)

    walk(root, "/")
    return out


_digest_ok = None


def digest(d):
    """`sandbox-layer digest -q DIR`; a failing digest verb is one failure (then the own walk only)."""
    global _digest_ok
    if _digest_ok is False:
        return None
    r = run("digest", "-q", d)
    if r.returncode != 0 or not r.stdout.strip():
        if _digest_ok is None:
            T.ok(False, "sandbox-layer digest -q works", r.stderr.strip()[:300])
        _digest_ok = False
        return None
    _digest_ok = True
    return r.stdout.strip()


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------- 1. round trip of a rich layer

def build_rich(src):
    os.mkdir(src, 0o755)
    os.chmod(src, 0o755)
    j = lambda *p: os.path.join(src, *p)  # noqa: E731

    with open(j("hello"), "w") as f:
        f.write("hello\n")
    open(j("empty"), "w").close()
    with open(j("random"), "wb") as f:
        f.write(os.urandom(300 * 1024 + 7))
    # Holes: data at 1 MiB and 3 MiB, a hole at the start and at the end.
    with open(j("sparse"), "wb") as f:
        f.truncate(5 << 20)
        f.seek(1 << 20)
        f.write(b"A" * 5000)
        f.seek(3 << 20)
        f.write(b"B" * 70000)
    with open(j("allhole"), "wb") as f:
        f.truncate(2 << 20)
    os.mkdir(j("dir"), 0o750)
    os.chown(j("dir"), 1234, 5678)
    with open(j("dir", "suid"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(j("dir", "suid"), 0o4755)
    with open(j("dir", "sgid"), "w") as f:
        f.write("x")
    os.chown(j("dir", "sgid"), 0, 42)
    os.chmod(j("dir", "sgid"), 0o2711)
    os.mkdir(j("sticky"))
    os.chmod(j("sticky"), 0o1777)
    with open(j("owned"), "w") as f:
        f.write("owned")
    os.chown(j("owned"), 100000, 100001)
    os.chmod(j("owned"), 0o600)
    # Symlinks: relative, absolute, dangling, long target, owned by someone else, with a trusted xattr.
    os.symlink("hello", j("rel-link"))
    os.symlink("/etc/passwd", j("abs-link"))
    os.symlink("../nowhere/at/all", j("dangling"))
    os.symlink("t/" * 80 + "target", j("long-target"))
    os.lchown(j("rel-link"), 7, 8)
    os.setxattr(j("abs-link"), "trusted.test.linkattr", b"on-a-symlink", follow_symlinks=False)
    # Hard links: a pair across directories, a group of three.
    with open(j("hard1"), "w") as f:
        f.write("linked")
    os.link(j("hard1"), j("dir", "hard2"))
    with open(j("three"), "w") as f:
        f.write("3")
    os.link(j("three"), j("three-b"))
    os.link(j("three"), j("sticky", "three-c"))
    # Special files.
    os.mkfifo(j("fifo"), 0o640)
    os.mknod(j("null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(j("loop"), stat.S_IFBLK | 0o660, os.makedev(7, 200))
    os.chown(j("loop"), 0, 6)
    # Overlay markers: a whiteout and an opaque directory with content.
    os.mknod(j("gone"), stat.S_IFCHR | 0, os.makedev(0, 0))
    os.mkdir(j("opq"))
    os.setxattr(j("opq"), "trusted.overlay.opaque", b"y")
    with open(j("opq", "inside"), "w") as f:
        f.write("inside")
    os.mknod(j("opq", "gone-too"), stat.S_IFCHR | 0, os.makedev(0, 0))
    # xattrs: user.* with text and binary values, a non-overlay trusted.* one.
    os.setxattr(j("hello"), "user.greeting", b"hi")
    os.setxattr(j("hello"), "user.bin", bytes(range(256)))
    os.setxattr(j("dir"), "user.dirattr", b"d")
    os.setxattr(j("random"), "trusted.custom", b"\x00\x01")
    # Long names: a 200-byte name, a 250-byte name, and a path of more than 255 (and 1000) bytes.
    long = "n" * 200
    with open(j(long), "w") as f:
        f.write("long name")
    deep = j("deep")
    os.mkdir(deep)
    for i in range(5):
        deep = os.path.join(deep, chr(ord("a") + i) * 240)
        os.mkdir(deep)
    with open(os.path.join(deep, "f" * 250), "w") as f:
        f.write("deep")
    # Fixed times, so the comparison covers them too.
    for dirpath, dirnames, filenames in os.walk(src, topdown=False):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (1600000000, 1600000000 + len(n)), follow_symlinks=False)


def test_roundtrip(work):
    src = os.path.join(work, "src")
    build_rich(src)
    want = tree(src)
    T.diag(f"rich layer: {len(want)} entries")
    d_src = digest(src)

    for comp, ext in (("none", ".tar"), ("gzip", ".tar.gz"), ("zstd", ".tar.zst")):
        tar1 = os.path.join(work, "one" + ext)
        tar2 = os.path.join(work, "two" + ext)
        r = run("export", src, tar1)
        if not T.ok(r.returncode == 0, f"{comp}: export exits 0", r.stderr):
            continue
        with open(tar1, "rb") as f:
            magic = f.read(4)
        want_magic = {"none": None, "gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}[comp]
        T.ok(magic[:len(want_magic)] == want_magic if want_magic else magic[:2] not in (b"\x1f\x8b",),
             f"{comp}: the suffix picks the compression", repr(magic))
        r = run("export", src, tar2)
        T.ok(r.returncode == 0 and sha(tar1) == sha(tar2), f"{comp}: exporting twice gives identical bytes")
        left = [n for n in os.listdir(work) if ".export-" in n]
        T.ok(not left, f"{comp}: export leaves no temporary file", left)

        dst = os.path.join(work, "dst-" + comp)
        r = run("import", tar1, dst)
        if not T.ok(r.returncode == 0, f"{comp}: import exits 0", r.stderr):
            continue
        T.ok(r.stderr == "", f"{comp}: import of our own tar is silent", r.stderr)
        left = [n for n in os.listdir(work) if ".import-" in n]
        T.ok(not left, f"{comp}: import leaves no temporary directory", left)
        got = tree(dst)
        T.ok(got == want, f"{comp}: the imported tree equals the source (own walk)", ovltest.dict_diff(want, got))
        if d_src:
            T.ok(digest(dst) == d_src, f"{comp}: digest -q of the import equals the source's")
        st = os.stat(os.path.join(dst, "sparse"))
        T.ok(st.st_blocks * 512 < 1 << 20, f"{comp}: holes stay holes", st.st_blocks)
        T.ok(os.path.getsize(tar1) < (1 << 20) if comp == "none" else True,
             f"{comp}: holes are not stored in the tar", os.path.getsize(tar1))

        # import -> export -> import: the same bytes and the same tree.
        tar3 = os.path.join(work, "three" + ext)
        r = run("export", dst, tar3)
        T.ok(r.returncode == 0 and sha(tar3) == sha(tar1),
             f"{comp}: re-exporting the imported tree gives the same bytes", r.stderr)
        dst2 = dst + "-again"
        r = run("import", tar3, dst2)
        T.ok(r.returncode == 0 and tree(dst2) == want, f"{comp}: import -> export -> import keeps the tree",
             r.stderr)
        if d_src:
            T.ok(digest(dst2) == d_src, f"{comp}: import -> export -> import keeps the digest")
        for d in (dst, dst2):
            shutil.rmtree(d, ignore_errors=True)

    # --compress overrides the suffix; "-" is stdout; the tar's members are what OCI expects.
    out = os.path.join(work, "forced.tar")
    r = run("export", "--compress", "gzip", src, out)
    with open(out, "rb") as f:
        T.ok(r.returncode == 0 and f.read(2) == b"\x1f\x8b", "--compress gzip overrides the suffix")
    with open(os.path.join(work, "stdout.tar"), "wb") as f:
        r = subprocess.run([LAYER, "export", src, "-"], stdout=f, stderr=subprocess.PIPE, text=True)
    T.ok(r.returncode == 0 and sha(os.path.join(work, "stdout.tar")) == sha(os.path.join(work, "one.tar")),
         "export to stdout gives the same bytes", r.stderr)
    with tarfile.open(os.path.join(work, "one.tar")) as tf:
        members = {m.name: m for m in tf.getmembers()}
    T.ok(".wh.gone" in members and members[".wh.gone"].isfile() and members[".wh.gone"].size == 0,
         "a whiteout is exported as an empty .wh.NAME file")
    T.ok("opq/.wh..wh..opq" in members and "opq/.wh.gone-too" in members,
         "an opaque directory is exported with .wh..wh..opq")
    # Sorted depth-first: "dir/hard2" comes before "hard1".
    T.ok(members["dir/hard2"].isfile() and members["hard1"].islnk() and members["hard1"].linkname == "dir/hard2",
         "a hard link is exported as a link to the first path in walk order", members.get("hard1"))
    T.ok(all(not n.startswith(("/", "./")) for n in members), "member names are relative without ./")
    T.ok(all(m.uname == "" and m.gname == "" for m in members.values()), "owners are numeric only")
    T.ok(members["hello"].pax_headers.get("SCHILY.xattr.user.greeting") == "hi",
         "xattrs are SCHILY.xattr pax records")
    T.ok(not any("overlay" in k for m in members.values() for k in m.pax_headers),
         "no overlay xattr is exported")

    # Overlay redirects have no tar form: a clear refusal, no output left behind.
    red = os.path.join(work, "redirect")
    os.makedirs(os.path.join(red, "moved"))
    os.setxattr(os.path.join(red, "moved"), "trusted.overlay.redirect", b"/old")
    out = os.path.join(work, "red.tar")
    r = run("export", red, out)
    T.ok(r.returncode == 1 and "squash" in r.stderr and "redirect" in r.stderr and not os.path.exists(out)
         and not [n for n in os.listdir(work) if ".export-" in n],
         "export refuses a redirect directory, suggesting squash, leaving nothing", r.stderr)
    wh = os.path.join(work, "whname")
    os.makedirs(wh)
    open(os.path.join(wh, ".wh.real-file"), "w").close()
    r = run("export", wh, os.path.join(work, "wh.tar"))
    T.ok(r.returncode == 1 and ".wh." in r.stderr, "export refuses a real file named .wh.*", r.stderr)
    r = run("export", src)
    T.ok(r.returncode == 2, "export with one argument is a usage error", r.returncode)
    r = run("export", "--compress", "lz4", src, out)
    T.ok(r.returncode == 2, "an unknown --compress is a usage error", r.returncode)


# ---------------------------------------------------------------- 2. hostile tars

def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    """members: [(TarInfo, data bytes or None)]."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as tf:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return bio.getvalue()


def ti(name, type=tarfile.REGTYPE, linkname="", mode=0o644, pax=None):
    t = tarfile.TarInfo(name)
    t.type = type
    t.linkname = linkname
    t.mode = mode
    t.mtime = 1600000000
    if pax:
        t.pax_headers = pax
    return t


def hostile_cases(outside):
    big = ti("huge")
    big.size = 1 << 40
    huge_hdr = big.tobuf(tarfile.PAX_FORMAT) + b"x" * 700
    trunc = tar_bytes([(ti("ok"), b"fine"), (ti("big"), os.urandom(200000))])
    trunc = trunc[:512 * 4 + 100000]
    cases = [
        ("dot-dot", tar_bytes([(ti("../" + os.path.basename(outside) + "/x"), b"evil")]), "unsafe path"),
        ("absolute", tar_bytes([(ti(outside + "/abs"), b"evil")]), "unsafe path"),
        ("inner-dot-dot", tar_bytes([(ti("a/../../x"), b"evil")]), "unsafe path"),
        ("symlink-then-write", tar_bytes([(ti("l", tarfile.SYMTYPE, outside), None),
                                          (ti("l/file"), b"evil")]), "refusing to write through 'l'"),
        ("symlink-dir-then-write", tar_bytes([(ti("d", tarfile.DIRTYPE, mode=0o755), None),
                                              (ti("d/l", tarfile.SYMTYPE, outside), None),
                                              (ti("d/l/sub/file"), b"evil")]),
         "refusing to write through 'd/l'"),
        ("symlink-inside-then-write", tar_bytes([(ti("real", tarfile.DIRTYPE, mode=0o755), None),
                                                 (ti("l", tarfile.SYMTYPE, "real"), None),
                                                 (ti("l/file"), b"x")]), "refusing to write through 'l'"),
        ("hardlink-dot-dot", tar_bytes([(ti("h", tarfile.LNKTYPE, "../" + os.path.basename(outside)
                                           + "/canary"), None)]), "unsafe hard link target"),
        ("hardlink-absolute", tar_bytes([(ti("h", tarfile.LNKTYPE, outside + "/canary"), None)]),
         "unsafe hard link target"),
        ("hardlink-through-symlink", tar_bytes([(ti("l", tarfile.SYMTYPE, outside), None),
                                                (ti("h", tarfile.LNKTYPE, "l/canary"), None)]),
         "hard link target 'l/canary'"),
        ("hardlink-to-dir", tar_bytes([(ti("d", tarfile.DIRTYPE, mode=0o755), None),
                                       (ti("h", tarfile.LNKTYPE, "d"), None)]), "hard link target 'd' is a directory"),
        ("hardlink-missing", tar_bytes([(ti("h", tarfile.LNKTYPE, "nothere"), None)]),
         "was not extracted before it"),
        ("absurd-size", huge_hdr, "exceeds the limit"),
        ("truncated", trunc, "entry 'big'"),
        ("truncated-gzip", gzip.compress(tar_bytes([(ti("big"), os.urandom(300000))]), mtime=0)[:150000],
         "entry 'big'"),
        ("long-component", tar_bytes([(ti("x" * 300), b"x")]), "name too long"),
        ("not-a-tar", b"this is not an archive at all\n" * 40, "archive"),
    ]
    return cases


def test_hostile(work):
    outside = tempfile.mkdtemp(prefix="layer-tar-outside-", dir="/tmp")
    try:
        with open(os.path.join(outside, "canary"), "w") as f:
            f.write("canary")
        before = tree(outside)
        for name, data, expect in hostile_cases(outside):
            case = os.path.join(work, "h-" + name)
            os.mkdir(case)
            path = os.path.join(case, "in.tar")
            with open(path, "wb") as f:
                f.write(data)
            dest = os.path.join(case, "dest")
            r = run("import", path, dest)
            leftovers = sorted(set(os.listdir(case)) - {"in.tar"})
            msg_ok = expect in r.stderr and r.stderr.startswith("sandbox-layer import: ")
            T.ok(r.returncode == 1 and msg_ok and not leftovers and tree(outside) == before,
                 f"hostile {name}: refused with a clear message, nothing written",
                 f"rc={r.returncode} stderr={r.stderr.strip()!r} leftovers={leftovers} "
                 f"outside={sorted(os.listdir(outside))}")
        T.ok(sorted(os.listdir(outside)) == ["canary"], "nothing appeared outside DEST")

        # The limit is configurable; a small one stops an ordinary file.
        case = os.path.join(work, "h-max-size")
        os.mkdir(case)
        path = os.path.join(case, "in.tar")
        with open(path, "wb") as f:
            f.write(tar_bytes([(ti("a"), b"a" * 600), (ti("b"), b"b" * 600)]))
        r = run("import", "--max-size", "1000", path, os.path.join(case, "dest"))
        T.ok(r.returncode == 1 and "--max-size" in r.stderr and "1000 bytes" in r.stderr
             and os.listdir(case) == ["in.tar"], "--max-size bounds the uncompressed archive", r.stderr)
        r = run("import", "--max-size", "1K", path, os.path.join(case, "dest"))
        T.ok(r.returncode == 1, "--max-size takes K/M/G/T suffixes", r.stderr)
        r = run("import", "--max-size", "lots", path, os.path.join(case, "dest"))
        T.ok(r.returncode == 2, "a bad --max-size is a usage error", r.stderr)

        # Forged overlay markers: dropped with a warning, the import itself succeeds.
        case = os.path.join(work, "h-forged")
        os.mkdir(case)
        path = os.path.join(case, "in.tar")
        with open(path, "wb") as f:
            f.write(tar_bytes([
                (ti("d", tarfile.DIRTYPE, mode=0o755,
                    pax={"SCHILY.xattr.trusted.overlay.opaque": "y",
                         "SCHILY.xattr.user.overlay.redirect": "/etc",
                         "SCHILY.xattr.user.kept": "yes"}), None),
                (ti("d/f"), b"data"),
                (ti("dev0", tarfile.CHRTYPE), None),
                (ti("sl", tarfile.SYMTYPE, "d/f", pax={"SCHILY.xattr.user.onlink": "x"}), None)]))
        dest = os.path.join(case, "dest")
        r = run("import", path, dest)
        xs = ovltest.xattrs_of(os.path.join(dest, "d")) if os.path.isdir(dest) else None
        T.ok(r.returncode == 0 and xs == {"user.kept": b"yes"},
             "forged overlay xattrs are dropped, other xattrs kept", f"{r.stderr} {xs}")
        T.ok("trusted.overlay.opaque" in r.stderr and "user.overlay.redirect" in r.stderr
             and "warning" not in r.stdout, "each dropped marker is named on stderr", r.stderr)
        T.ok(not os.path.lexists(os.path.join(dest, "dev0")) and "0/0" in r.stderr,
             "a character device 0/0 in the archive does not become a whiteout", r.stderr)
        T.ok(os.path.islink(os.path.join(dest, "sl")) and "cannot set xattr 'user.onlink'" in r.stderr,
             "an xattr the kernel refuses (user.* on a symlink) is dropped with a warning", r.stderr)

        # Replacing a symlink by a file does not write through it; later entries win.
        case = os.path.join(work, "h-replace")
        os.mkdir(case)
        path = os.path.join(case, "in.tar")
        with open(path, "wb") as f:
            f.write(tar_bytes([(ti("x", tarfile.SYMTYPE, outside + "/canary"), None),
                               (ti("x"), b"replaced"),
                               (ti("d", tarfile.DIRTYPE, mode=0o700), None),
                               (ti("d/f"), b"f"),
                               (ti("d", tarfile.DIRTYPE, mode=0o751), None),
                               (ti("y", tarfile.DIRTYPE, mode=0o755), None),
                               (ti("y/z"), b"z"),
                               (ti("y"), b"now a file")]))
        dest = os.path.join(case, "dest")
        r = run("import", path, dest)
        ok = r.returncode == 0
        if ok:
            with open(os.path.join(dest, "x")) as f:
                ok = f.read() == "replaced" and not os.path.islink(os.path.join(dest, "x"))
            ok = ok and stat.S_IMODE(os.stat(os.path.join(dest, "d")).st_mode) == 0o751
            ok = ok and os.path.isfile(os.path.join(dest, "d", "f")) and os.path.isfile(os.path.join(dest, "y"))
        T.ok(ok and tree(outside) == before,
             "a later entry replaces an earlier one (file over symlink, dir merge, file over dir)", r.stderr)

        # Overlay mapping of docker-style whiteouts, --userxattr, AUFS metadata skipped, "./" root.
        case = os.path.join(work, "h-wh")
        os.mkdir(case)
        path = os.path.join(case, "in.tar")
        with open(path, "wb") as f:
            f.write(tar_bytes([(ti("./", tarfile.DIRTYPE, mode=0o711), None),
                               (ti("./a", tarfile.DIRTYPE, mode=0o755), None),
                               (ti("./a/.wh..wh..opq"), b""),
                               (ti("./a/.wh.old"), b""),
                               (ti("./.wh..wh.plnk", tarfile.DIRTYPE), None),
                               (ti("./.wh..wh.aufs"), b"")], fmt=tarfile.GNU_FORMAT))
        dest = os.path.join(case, "dest")
        r = run("import", "--userxattr", path, dest)
        ok = r.returncode == 0
        if ok:
            st = os.lstat(os.path.join(dest, "a", "old"))
            ok = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            ok = ok and ovltest.xattrs_of(os.path.join(dest, "a")) == {"user.overlay.opaque": b"y"}
            ok = ok and sorted(os.listdir(dest)) == ["a"] and sorted(os.listdir(os.path.join(dest, "a"))) == ["old"]
            # "./" gave the root 0711: it shows that (its record, in user. with --userxattr), and is
            # private on disk
            ok = ok and stat.S_IMODE(os.stat(dest).st_mode) == 0o700
            ok = ok and os.getxattr(dest, "user.overlay.sandbox.rootattr") == b"711 0 0"
        T.ok(ok, ".wh. entries map to whiteouts, .wh..wh..opq to user.overlay.opaque, AUFS metadata skipped",
             r.stderr)

        # DEST must not exist; bad usage.
        r = run("import", path, dest)
        T.ok(r.returncode == 1 and "already exists" in r.stderr, "import refuses an existing DEST", r.stderr)
        r = run("import", path)
        T.ok(r.returncode == 2, "import with one argument is a usage error")
        with open(path, "rb") as f:
            r = run("import", "-", os.path.join(case, "from-stdin"), stdin=f)
        T.ok(r.returncode == 0 and os.path.isdir(os.path.join(case, "from-stdin", "a")), "import reads stdin", r.stderr)
    finally:
        shutil.rmtree(outside, ignore_errors=True)


# ---------------------------------------------------------------- 2b. bombs and the default bounds

def gzip_members(header, zeros, trailer):
    """A gzip file of several members (valid gzip: each with its CRC): HEADER, then ZEROS bytes of zeros
    as many copies of one 16 MiB member (about 16 KiB each), then TRAILER."""
    chunk = 16 << 20
    member = gzip.compress(b"\0" * chunk, compresslevel=9, mtime=0)
    out = [gzip.compress(header, mtime=0)]
    out += [member] * (zeros // chunk)
    out.append(gzip.compress(b"\0" * (zeros % chunk) + trailer, mtime=0))
    return b"".join(out)


def zstd_frames(header, zeros, trailer):
    """The same as zstd frames (zstd(1)): one frame of 1 GiB of zeros (about 32 KiB), repeated."""
    def zstd(data=None, stdin=None):
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdin=stdin, stdout=subprocess.PIPE,
                              check=True).stdout
    gib = 1 << 30
    with subprocess.Popen(["head", "-c", str(gib), "/dev/zero"], stdout=subprocess.PIPE) as p:
        frame = zstd(stdin=p.stdout)
    return b"".join([zstd(header)] + [frame] * (zeros // gib) + [zstd(b"\0" * (zeros % gib) + trailer)])


def end_of_tar(size):
    """Padding of a member of SIZE bytes to its 512-byte block, and the two zero blocks that end a tar."""
    return b"\0" * ((-size) % 512) + b"\0" * 1024


def test_bombs(work):
    def check(name, data, args, expect):
        case = os.path.join(work, name)
        os.mkdir(case)
        path = os.path.join(case, "in.tar")
        with open(path, "wb") as f:
            f.write(data)
        r = run("import", *args, path, os.path.join(case, "dest"))
        left = sorted(set(os.listdir(case)) - {"in.tar"})
        T.ok(r.returncode == 1 and all(e in r.stderr for e in expect) and not left,
             f"{name} ({len(data) >> 10} KiB on disk) stops at its bound with a clear message, nothing left",
             f"rc={r.returncode} stderr={r.stderr.strip()!r} left={left}")

    # One file of 11 GiB of zeros (just over the default 10 GiB): refused at its header.
    size = 11 << 30
    big = ti("bomb")
    big.size = size
    header = big.tobuf(tarfile.PAX_FORMAT)
    check("gzip-bomb", gzip_members(header, size, end_of_tar(size)), [],
          ["entry 'bomb'", "exceeds the limit of 10 GiB", "--max-size"])
    if shutil.which("zstd"):
        check("zstd-bomb", zstd_frames(header, size, end_of_tar(size)), [],
              ["entry 'bomb'", "exceeds the limit of 10 GiB", "--max-size"])
    else:
        T.ok(False, "zstd(1) is missing (package zstd): no zstd bomb")

    # Many files that each fit: stopped in the middle, what was written already is removed.
    members = []
    for i in range(100):
        t = ti(f"dir/f{i:03}")
        t.size = 1 << 20
        members.append(t.tobuf(tarfile.PAX_FORMAT) + b"\0" * (1 << 20))
    many = b"".join(members) + b"\0" * 1024
    check("gzip-many-files", gzip.compress(many, mtime=0), ["--max-size", "64M"],
          ["larger than 64 MiB uncompressed", "--max-size"])

    # Entries: 1,000,001 members (AUFS metadata, which writes nothing) against the default bound.
    hdr = ti(".wh..wh.meta").tobuf(tarfile.USTAR_FORMAT)
    n = 1000001
    block = 1 << 12
    member = gzip.compress(hdr * block, compresslevel=9, mtime=0)
    entries = b"".join([member] * (n // block) + [gzip.compress(hdr * (n % block) + b"\0" * 1024, mtime=0)])
    check("entries-bomb", entries, [], ["more than 1000000 entries", "--max-entries"])
    # ... and real files against a --max-entries of one's own, counting implied directories.
    files = tar_bytes([(ti(f"d{i}/f"), b"") for i in range(600)])
    check("max-entries", files, ["--max-entries", "1000"], ["entry 'd500/f'", "more than 1000 entries"])
    r = run("import", "--max-entries", "lots", os.path.join(work, "max-entries", "in.tar"),
            os.path.join(work, "dest"))
    T.ok(r.returncode == 2 and "--max-entries" in r.stderr, "a bad --max-entries is a usage error", r.stderr)
    case = os.path.join(work, "max-entries")
    r = run("import", "--max-entries", "1200", os.path.join(case, "in.tar"), os.path.join(case, "dest"))
    T.ok(r.returncode == 0 and len(os.listdir(os.path.join(case, "dest"))) == 600,
         "the same archive within --max-entries 1200 (600 files and 600 directories)", r.stderr)


# ---------------------------------------------------------------- 3. podman, buildah and docker

def small_tree(src):
    os.makedirs(os.path.join(src, "etc", "app"))
    os.makedirs(os.path.join(src, "bin"))
    with open(os.path.join(src, "etc", "app", "conf"), "w") as f:
        f.write("key=value\n")
    with open(os.path.join(src, "bin", "tool"), "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(os.path.join(src, "bin", "tool"), 0o755)
    os.symlink("bin/tool", os.path.join(src, "tool-link"))
    os.link(os.path.join(src, "bin", "tool"), os.path.join(src, "bin", "tool-hard"))
    with open(os.path.join(src, "n" * 150), "w") as f:
        f.write("long")


def content(root):
    """{path: (type, perm, sha or target)} for comparing against a tool's output."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISREG(st.st_mode):
                v = ovltest.file_digest(p)
            elif stat.S_ISLNK(st.st_mode):
                v = os.readlink(p)
            else:
                v = None
            out[rel] = (ovltest.type_char(st.st_mode), oct(stat.S_IMODE(st.st_mode)) if not stat.S_ISLNK(st.st_mode)
                        else None, v)
    return out


def subset_diff(want, got):
    return "\n".join(f"{p}: {want[p]} != {got.get(p)}" for p in sorted(want) if got.get(p) != want[p])[:2000]


def tool_cmd(tool, base, *args):
    """podman/buildah in a private mount namespace with an empty /var/lib: the blob-info cache that
    containers/image keeps for root in /var/lib/containers/cache must not appear on the host. base[1]
    is the --root value; HOME goes beside it."""
    home = os.path.join(os.path.dirname(base[1]), "home")  # nor anything in root's $HOME
    return ["env", f"HOME={home}", f"XDG_CONFIG_HOME={home}/.config", f"XDG_DATA_HOME={home}/.local/share",
            "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$0" "$@"', tool, *base, *args]


def cleanup_storage(tool, base, store):
    subprocess.run(tool_cmd(tool, base, "rm", "-a", "-f"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(tool_cmd(tool, base, "rmi", "-a", "-f"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for m in reversed(ovltest.mounts_under(store)):
        ovltest.umount(m)


def test_podman(work):
    if not shutil.which("podman"):
        T.ok(not ovltest.must_run(), "podman # SKIP podman is not installed")
        return
    root = os.path.join(work, "podman")
    # Everything podman keeps goes below our temp dir: storage, run state, libpod's tmpdir (else
    # /run/libpod), network configs; no event log.
    base = ["--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "run"), "--storage-driver", "vfs",
            "--tmpdir", os.path.join(root, "tmp"), "--network-config-dir", os.path.join(root, "net"),
            "--events-backend", "none", "--cgroup-manager", "cgroupfs"]
    src = os.path.join(work, "podman-src")
    small_tree(src)
    want = content(src)
    tag = f"localhost/layer-tar-test-{os.getpid()}:1"
    try:
        # Our own export is what podman imports: Go's archive/tar must read it.
        intar = os.path.join(work, "podman-in.tar.gz")
        r = run("export", src, intar)
        T.ok(r.returncode == 0, "export of the podman source", r.stderr)

        def p(*args):
            return subprocess.run(tool_cmd("podman", base, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=60)
        steps = [p("import", intar, tag)]
        if steps[-1].returncode == 0:
            steps.append(p("create", "--network", "none", "--name", f"ltt-{os.getpid()}", tag, "/bin/tool"))
        exported = os.path.join(work, "podman-export.tar")
        if steps[-1].returncode == 0:
            steps.append(p("export", "-o", exported, f"ltt-{os.getpid()}"))
        if steps[-1].returncode != 0:
            T.diag(f"podman cannot run here: {steps[-1].stdout.strip()[-500:]}")
            T.ok(not ovltest.must_run(), "podman # SKIP podman failed: " + steps[-1].stdout.strip()[-100:])
            return
        dest = os.path.join(work, "podman-dest")
        r = run("import", exported, dest)
        if T.ok(r.returncode == 0, "a podman export tar imports", r.stderr):
            got = content(dest)
            T.ok(all(got.get(k) == v for k, v in want.items()), "podman export -> import: the source content",
                 subset_diff(want, got))
            st1, st2 = os.lstat(os.path.join(dest, "bin", "tool")), os.lstat(os.path.join(dest, "bin", "tool-hard"))
            T.ok(st1.st_ino == st2.st_ino, "podman export -> import: hard links kept")
    finally:
        cleanup_storage("podman", base, root)
        ovltest.remove_tree(root)


def test_buildah(work):
    if not shutil.which("buildah"):
        T.ok(not ovltest.must_run(), "buildah # SKIP buildah is not installed")
        return
    root = os.path.join(work, "buildah")
    base = ["--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "run"), "--storage-driver", "vfs"]
    src = os.path.join(work, "buildah-src")
    small_tree(src)
    want = content(src)
    archive = os.path.join(work, "buildah-oci.tar")
    try:
        def b(*args):
            return subprocess.run(tool_cmd("buildah", base, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, timeout=60)
        r = b("from", "scratch")
        ctr = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
        steps = [r]
        if ctr:
            steps.append(b("copy", ctr, src + "/.", "/"))
        if ctr and steps[-1].returncode == 0:
            steps.append(b("commit", ctr, "oci-archive:" + archive))
        if steps[-1].returncode != 0:
            T.diag(f"buildah cannot run here: {steps[-1].stderr.strip()[-500:]}")
            T.ok(not ovltest.must_run(), "buildah # SKIP buildah failed: " + steps[-1].stderr.strip()[-100:])
            return
        # The OCI archive: index.json -> manifest -> the (only) layer blob, tar or tar+gzip.
        with tarfile.open(archive) as tf:
            index = json.load(tf.extractfile("index.json"))
            mdesc = index["manifests"][0]
            manifest = json.load(tf.extractfile("blobs/" + mdesc["digest"].replace(":", "/")))
            layer = manifest["layers"][-1]
            blob = tf.extractfile("blobs/" + layer["digest"].replace(":", "/")).read()
        T.diag(f"buildah layer: {layer['mediaType']}, {len(blob)} bytes")
        blobpath = os.path.join(work, "buildah-layer.blob")
        with open(blobpath, "wb") as f:
            f.write(blob)
        dest = os.path.join(work, "buildah-dest")
        r = run("import", blobpath, dest)
        if T.ok(r.returncode == 0, "a buildah layer blob imports", r.stderr):
            got = content(dest)
            T.ok(all(got.get(k) == v for k, v in want.items()), "buildah commit -> import: the source content",
                 subset_diff(want, got))
    finally:
        cleanup_storage("buildah", base, root)
        ovltest.remove_tree(root)


def test_progress(work):
    """On a terminal, import and export draw entries and bytes and clear the line; on a pipe they are
    silent (test_roundtrip checks that)."""
    src, tar, dst = f"{work}/src", f"{work}/t.tar", f"{work}/dst"
    os.mkdir(src)
    for i in range(200):
        with open(f"{src}/f{i}", "wb") as f:
            f.write(bytes([i]) * 65536)
    for verb, args, total in (("export", (src, tar), 200 * 65536), ("import", (tar, dst), 200 * 65536)):
        rc, _, seen = ovltest.run_on_pty([LAYER, verb, *args])
        T.ok(rc == 0 and ovltest.progress_ok(verb, seen, 201, total),
             f"{verb} on a terminal: a progress line with entries and bytes, cleared at the end", repr(seen[-200:]))
    T.ok(content(dst) == content(src), "the import drawn on a terminal equals the source")


def test_docker(work):
    if not os.access(f"{DOCKER_ROOT}/usr/sbin/dockerd", os.X_OK):
        T.ok(not ovltest.must_run(), f"docker # SKIP no dockerd in {DOCKER_ROOT} (scripts/install-deps.sh)")
        return
    src = os.path.join(work, "docker-src")
    small_tree(src)
    want = content(src)
    def host_state():
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return (f.read().strip(), os.path.lexists("/etc/docker"), os.path.lexists("/run/docker"),
                    os.path.lexists("/var/lib/docker"))
    before = host_state()
    d = PrivateDockerd(os.path.join(work, "docker"))
    try:
        if not d.wait_ready():
            T.diag(d.log_tail())
            T.ok(not ovltest.must_run(), "docker # SKIP dockerd did not start")
            return
        intar = os.path.join(work, "docker-in.tar")
        r = run("export", src, intar)
        T.ok(r.returncode == 0, "export of the docker source", r.stderr)
        tag = f"layer-tar-test-{os.getpid()}:1"
        name = f"ltt-{os.getpid()}"
        exported = os.path.join(work, "docker-export.tar")
        steps = [d.cli("import", intar, tag)]
        T.ok(steps[-1].returncode == 0, "docker imports our export (Go's archive/tar reads it)", steps[-1].stdout)
        if steps[-1].returncode == 0:
            steps.append(d.cli("create", "--network", "none", "--name", name, tag, "/bin/tool"))
        if steps[-1].returncode == 0:
            steps.append(d.cli("export", "-o", exported, name))
        T.ok(steps[-1].returncode == 0, "docker create + docker export", steps[-1].stdout)
        if steps[-1].returncode != 0:
            return
        dest = os.path.join(work, "docker-dest")
        r = run("import", exported, dest)
        if T.ok(r.returncode == 0, "a docker export tar imports", r.stderr):
            got = content(dest)
            T.ok(all(got.get(k) == v for k, v in want.items()), "docker export -> import: the source content",
                 subset_diff(want, got))
            T.ok(os.path.exists(os.path.join(dest, ".dockerenv")), "docker export -> import: docker's own files too")
            st1, st2 = os.lstat(os.path.join(dest, "bin", "tool")), os.lstat(os.path.join(dest, "bin", "tool-hard"))
            T.ok(st1.st_ino == st2.st_ino, "docker export -> import: hard links kept")
    finally:
        d.stop()
        T.ok(host_state() == before, "the private dockerd changed nothing on the host (ip_forward, /etc/docker, "
             "/run/docker, /var/lib/docker)", f"{before} -> {host_state()}")


def main():
    ovltest.install_signal_handlers()
    ovltest.require_root()
    if not LAYER or not os.access(LAYER, os.X_OK):
        ovltest.skip_all("SANDBOX_LAYER is not set or not executable")
    start = time.monotonic()
    work = tempfile.mkdtemp(prefix="layer-tar-", dir="/tmp")
    try:
        for t in (test_roundtrip, test_hostile, test_bombs, test_progress, test_podman, test_buildah, test_docker):
            sub = os.path.join(work, t.__name__)
            os.mkdir(sub)
            try:
                t(sub)
            except Exception:  # a crash in one part fails it without hiding the others
                T.ok(False, f"{t.__name__} raised", traceback.format_exc())
    finally:
        ovltest.remove_tree(work)
    T.diag(f"{time.monotonic() - start:.1f} s")
    sys.exit(T.done())


if __name__ == "__main__":
    main()
