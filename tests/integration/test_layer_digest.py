#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-layer digest / verify, against an independent implementation of docs/layers.md.

The reference digest below is written from the documented definition only (Python + libxxhash via
ctypes), so a passing run means the definition in the docs is exact enough to reproduce. The other
tests pin the properties users rely on: equal trees give equal digests wherever they live, every
documented attribute changes the digest and nothing else does, and verify names the first differing
path. Root is needed (trusted.* xattrs, device nodes, tmpfs and overlay mounts).
"""

import ctypes
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest  # noqa: E402

LAYER = os.environ.get("SANDBOX_LAYER", "")
OVL_MARKERS = (b"trusted.overlay.", b"user.overlay.")

# ----------------------------------------------------------------------------------------------
# reference implementation of digest format 1


class _H128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_128bits.restype = _H128
_xxh.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh128(data: bytes) -> bytes:
    h = _xxh.XXH3_128bits(data, len(data))
    return h.high64.to_bytes(8, "big") + h.low64.to_bytes(8, "big")


def u32(v):
    return v.to_bytes(4, "little")


def u64(v):
    return (v & (2**64 - 1)).to_bytes(8, "little")


def marker(path, suffix):
    for ns in (b"trusted.", b"user."):
        try:
            return os.getxattr(path, ns + b"overlay." + suffix, follow_symlinks=False)
        except OSError:
            pass
    return None


def ref_record(root, rel, mtime):
    p = os.path.join(root, rel.lstrip(b"/")) if rel != b"/" else root
    st = os.lstat(p)
    rec = rel + b"\0"
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return rec + b"w"
    t = {stat.S_IFREG: b"f", stat.S_IFDIR: b"d", stat.S_IFLNK: b"l", stat.S_IFCHR: b"c",
         stat.S_IFBLK: b"b", stat.S_IFIFO: b"p", stat.S_IFSOCK: b"s"}[stat.S_IFMT(st.st_mode)]
    mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
    rootattr = marker(p, b"sandbox.rootattr") if rel == b"/" else None
    if rootattr is not None:  # a private root counts as what its record says
        m, u, g = rootattr.split(b" ")
        mode, uid, gid = int(m, 8), int(u), int(g)
    rec += t + u32(mode) + u32(uid) + u32(gid)
    rec += u64(st.st_size if t in (b"f", b"l") else 0)
    if t == b"f":
        with open(p, "rb") as f:
            rec += xxh128(f.read())
    elif t == b"l":
        rec += os.readlink(p)
    elif t in (b"c", b"b"):
        rec += u32(os.major(st.st_rdev)) + u32(os.minor(st.st_rdev))
    if mtime:
        rec += u64(st.st_mtime_ns // 10**9) + u32(st.st_mtime_ns % 10**9)
    if t == b"d":
        rec += bytes([marker(p, b"opaque") == b"y"])
        red = marker(p, b"redirect") or b""
        rec += u32(len(red)) + red
    names = sorted(n.encode() if isinstance(n, str) else n for n in os.listxattr(p, follow_symlinks=False))
    names = [n for n in names if not n.startswith(OVL_MARKERS)]
    rec += u32(len(names))
    for n in names:
        v = os.getxattr(p, n, follow_symlinks=False)
        rec += n + b"\0" + u32(len(v)) + v
    return rec


def ref_walk(root, rel=b"/"):
    yield rel
    p = os.path.join(root, rel.lstrip(b"/")) if rel != b"/" else root
    if stat.S_ISDIR(os.lstat(p).st_mode):
        for name in sorted(os.listdir(p)):
            yield from ref_walk(root, (rel if rel != b"/" else b"") + b"/" + name)


def ref_digest(root, mtime=False):
    """(listing [(hash hex, path bytes)], 'xxh128:...') per docs/layers.md."""
    root = os.fsencode(root)
    listing, total = [], b""
    for rel in ref_walk(root):
        h = xxh128(ref_record(root, rel, mtime))
        listing.append((h.hex(), rel))
        total += h
    return listing, "xxh128:" + xxh128(total).hex()


# ----------------------------------------------------------------------------------------------
# helpers

def run(*args, check=True, stdin=None):
    r = subprocess.run([LAYER, *args], capture_output=True, stdin=stdin)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


def digest(d, *opts):
    out = run("digest", "-q", *opts, d).stdout.decode().strip()
    assert out.startswith("xxh128:") and len(out) == 39, out
    return out


def escape(path: bytes) -> str:
    out = []
    for c in path:
        if c == 0x5C:
            out.append("\\\\")
        elif c < 0x20 or c >= 0x7F:
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def flip_first_byte(path):
    with open(path, "r+b") as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 0xFF]))


def build_rich_tree(d):
    """Every kind of object and marker a layer holds."""
    d = os.fsencode(d)
    j = lambda *p: os.path.join(d, *p)  # noqa: E731
    os.makedirs(j(b"usr/bin"))
    with open(j(b"usr/bin/tool"), "wb") as f:
        f.write(os.urandom(300000))
    os.chown(j(b"usr/bin/tool"), 1000, 2000)
    os.chmod(j(b"usr/bin/tool"), 0o4755)  # after chown, which clears set-user-ID
    with open(j(b"sparse"), "wb") as f:
        f.truncate(5 << 20)
        f.seek(3 << 20)
        f.write(b"middle")
    os.symlink(b"../../etc/passwd", j(b"usr/link"))
    os.lchown(j(b"usr/link"), 7, 8)
    os.mkfifo(j(b"fifo"), 0o640)
    os.mknod(j(b"null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(j(b"blk"), 0o600 | stat.S_IFBLK, os.makedev(8, 1))
    os.mknod(j(b"gone"), stat.S_IFCHR, os.makedev(0, 0))  # whiteout
    os.makedirs(j(b"opq/inner"))
    os.setxattr(j(b"opq"), b"trusted.overlay.opaque", b"y")
    os.makedirs(j(b"moved"))
    os.setxattr(j(b"moved"), b"trusted.overlay.redirect", b"/old/place")
    os.setxattr(j(b"usr/bin/tool"), b"user.mime", b"application/x-elf")
    os.setxattr(j(b"usr/bin/tool"), b"security.capability",
                bytes.fromhex("0100000200100000000000000000000000000000"))
    os.setxattr(j(b"usr"), b"trusted.note", b"\x00binary\xff")
    os.link(j(b"usr/bin/tool"), j(b"usr/hardlink"))
    # names that need escaping, and the component order trap: "a.b" sorts between "a" and "a/b"
    for name in (b"new\nline", b"back\\slash", b"sp ace", b"\xff\xfe", b"a.b"):
        with open(j(name), "wb") as f:
            f.write(name)
    os.makedirs(j(b"a/b"))
    with open(j(b"a/b/c"), "w") as f:
        f.write("c")
    os.utime(j(b"a/b/c"), ns=(1, 1_500_000_000_123_456_789))
    return d


# ----------------------------------------------------------------------------------------------
# tests

def test_matches_reference(t):
    d = build_rich_tree(os.path.join(t, "layer"))
    r = run("digest", d)
    lines = r.stdout.decode().splitlines()
    listing, want = ref_digest(d)
    assert lines[-1] == want, f"tool {lines[-1]} != reference {want}"
    assert lines[:-1] == [f"{h}  {escape(p)}" for h, p in listing], "per-entry listing differs from reference"
    # the documented order: components compared byte-wise, so /a/b/c comes before /a.b
    paths = [p for _, p in listing]
    assert paths.index(b"/a/b/c") < paths.index(b"/a.b"), paths
    assert r.stderr == b"", f"quiet on a pipe, got {r.stderr!r}"
    assert digest(d, "--mtime") == ref_digest(d, mtime=True)[1]
    assert digest(d, "--mtime") != want


def test_private_root(t):
    """A private root (0700 root:root, its shown mode and owner in overlay.sandbox.rootattr) counts as
    what its record says: the same digest as the tree whose root really has that mode and owner."""
    d = build_rich_tree(os.path.join(t, "layer"))
    os.chown(d, 1000, 2000)
    os.chmod(d, 0o751)
    before = digest(d)
    os.setxattr(d, b"trusted.overlay.sandbox.rootattr", b"751 1000 2000")
    os.chown(d, 0, 0)
    os.chmod(d, 0o700)
    assert digest(d) == before == ref_digest(d)[1], "a private root with its record changed the digest"
    os.setxattr(d, b"trusted.overlay.sandbox.rootattr", b"755 1000 2000")
    assert digest(d) != before and digest(d) == ref_digest(d)[1], "the record's mode does not count"
    os.removexattr(d, b"trusted.overlay.sandbox.rootattr")
    os.setxattr(d, b"user.overlay.sandbox.rootattr", b"751 1000 2000")
    assert digest(d) == before, "a record in user.* is read too"
    os.setxattr(d, b"user.overlay.sandbox.rootattr", b"0751 1000 2000")
    r = run("digest", d, check=False)
    assert r.returncode == 1 and r.stdout == b"", f"a malformed record must be an error: {r}"


def test_equal_trees_equal_digests(t):
    a = os.fsdecode(build_rich_tree(os.path.join(t, "a")))
    da = digest(a)
    # a copy elsewhere, on another file system (tmpfs), with fresh inode numbers and ctimes
    tm = os.path.join(t, "tmpfs")
    os.mkdir(tm)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "layerdigest", tm], check=True)
    try:
        b = os.path.join(tm, "copy")
        subprocess.run(["cp", "-a", "--sparse=always", a, b], check=True)
        # cp -a does not copy trusted.* on every version: set what the test relies on explicitly
        for p, n in ((b"opq", b"trusted.overlay.opaque"), (b"moved", b"trusted.overlay.redirect"),
                     (b"usr", b"trusted.note")):
            os.setxattr(os.path.join(os.fsencode(b), p), n, os.getxattr(os.path.join(os.fsencode(a), p), n))
        assert digest(b) == da, "an identical copy on tmpfs must have the same digest"
        # atime/ctime, inode numbers and mtimes (without --mtime) do not count
        os.utime(os.path.join(b, "sparse"), ns=(12345, 67890))
        os.chmod(os.path.join(b, "fifo"), 0o777)
        os.chmod(os.path.join(b, "fifo"), 0o640)
        assert digest(b) == da
        assert digest(b, "--mtime") != digest(a, "--mtime")
        # a hard link broken into two equal files: inode structure is not content
        os.unlink(os.path.join(b, "usr/hardlink"))
        shutil.copy2(os.path.join(a, "usr/hardlink"), os.path.join(b, "usr/hardlink"))
        os.chown(os.path.join(b, "usr/hardlink"), 1000, 2000)  # clears set-user-ID and capabilities
        os.chmod(os.path.join(b, "usr/hardlink"), 0o4755)
        os.setxattr(os.path.join(b, "usr/hardlink"), "security.capability",
                    os.getxattr(os.path.join(a, "usr/hardlink"), "security.capability"))
        assert digest(b) == da
    finally:
        subprocess.run(["umount", tm], check=True)


def test_every_attribute_counts(t):
    base = os.path.join(t, "base")
    build_rich_tree(base)
    d0 = digest(base)
    p = lambda *x: os.path.join(work, *x)  # noqa: E731
    changes = {
        "content": lambda: open(p("a.b"), "ab").write(b"!"),
        "same-size content": lambda: flip_first_byte(p("usr/bin/tool")),
        "mode": lambda: os.chmod(p("usr/bin/tool"), 0o755),
        "uid": lambda: os.chown(p("usr/bin/tool"), 1001, 2000),
        "gid": lambda: os.chown(p("usr/bin/tool"), 1000, 2001),
        "dir mode": lambda: os.chmod(p("a"), 0o700),
        "symlink target": lambda: (os.unlink(p("usr/link")), os.symlink("../../etc/shadow", p("usr/link"))),
        "symlink owner": lambda: os.lchown(p("usr/link"), 8, 8),
        "rdev": lambda: (os.unlink(p("null")), os.mknod(p("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 5))),
        "device type": lambda: (os.unlink(p("blk")), os.mknod(p("blk"), 0o600 | stat.S_IFCHR, os.makedev(8, 1))),
        "xattr value": lambda: os.setxattr(p("usr/bin/tool"), "user.mime", b"text/plain"),
        "xattr added": lambda: os.setxattr(p("a"), "user.new", b""),
        "xattr removed": lambda: os.removexattr(p("usr"), "trusted.note"),
        "opaque marker": lambda: os.removexattr(p("opq"), "trusted.overlay.opaque"),
        "opaque marker added": lambda: os.setxattr(p("a"), "user.overlay.opaque", b"y"),
        "redirect": lambda: os.setxattr(p("moved"), "trusted.overlay.redirect", b"/old/other"),
        "whiteout to file": lambda: (os.unlink(p("gone")), open(p("gone"), "w").close()),
        "file to whiteout": lambda: (os.unlink(p("a.b")), os.mknod(p("a.b"), stat.S_IFCHR, 0)),
        "rename": lambda: os.rename(p("sp ace"), p("sp_ace")),
        "new empty file": lambda: open(p("a/b/empty"), "w").close(),
        "new empty dir": lambda: os.mkdir(p("a/b/emptydir")),
        "sparse hole filled": lambda: open(p("sparse"), "r+b").write(b"\0" * 10) and None,
        "root mode": lambda: os.chmod(work, 0o700),
    }
    unchanged = {
        # zeros written into a hole read back the same: content, not allocation, counts
        "sparse hole filled": True,
        # overlay bookkeeping that is not layer content
        "origin marker": False,
    }
    for name, change in changes.items():
        work = os.path.join(t, "w-" + name.replace(" ", "_"))
        subprocess.run(["cp", "-a", base, work], check=True)
        for q, n in ((b"opq", b"trusted.overlay.opaque"), (b"moved", b"trusted.overlay.redirect"),
                     (b"usr", b"trusted.note")):
            os.setxattr(os.path.join(os.fsencode(work), q), n, os.getxattr(os.path.join(os.fsencode(base), q), n))
        os.chmod(work, os.stat(base).st_mode)
        assert digest(work) == d0, f"copy for {name} differs before the change"
        change()
        if unchanged.get(name):
            assert digest(work) == d0, f"{name}: must not change the digest"
        else:
            assert digest(work) != d0, f"{name}: must change the digest"
        assert digest(work) == ref_digest(work)[1], f"{name}: tool and reference disagree"
        shutil.rmtree(work)
    work = os.path.join(t, "w-origin")
    subprocess.run(["cp", "-a", base, work], check=True)
    for q, n in ((b"opq", b"trusted.overlay.opaque"), (b"moved", b"trusted.overlay.redirect"),
                 (b"usr", b"trusted.note")):
        os.setxattr(os.path.join(os.fsencode(work), q), n, os.getxattr(os.path.join(os.fsencode(base), q), n))
    os.chmod(work, os.stat(base).st_mode)
    for n in ("trusted.overlay.origin", "trusted.overlay.impure", "user.overlay.nlink"):
        os.setxattr(os.path.join(work, "a"), n, b"\x00\xfbxyz")
    assert digest(work) == d0, "overlay bookkeeping xattrs must not count"
    # the opaque marker counts the same in either namespace
    os.removexattr(os.path.join(work, "opq"), "trusted.overlay.opaque")
    os.setxattr(os.path.join(work, "opq"), "user.overlay.opaque", b"y")
    assert digest(work) == d0, "user.overlay.opaque and trusted.overlay.opaque must mean the same"


def test_verify(t):
    d = build_rich_tree(os.path.join(t, "layer"))
    listing = os.path.join(t, "listing")
    with open(listing, "wb") as f:
        f.write(run("digest", d).stdout)
    whole = open(listing).read().splitlines()[-1]

    r = run("verify", d, listing)
    assert r.stdout.decode().strip() == f"{os.fsdecode(d)}: OK", r.stdout
    assert run("verify", d, whole).returncode == 0
    with open(listing, "rb") as f:
        assert run("verify", d, "-", stdin=f).returncode == 0

    def expect_fail(what, needle):
        r = run("verify", d, listing, check=False)
        out = r.stdout.decode()
        assert r.returncode == 1, f"{what}: exit {r.returncode}, {out}"
        assert needle in out, f"{what}: expected {needle!r} in {out!r}"
        r = run("verify", d, whole, check=False)
        assert r.returncode == 1 and "FAILED" in r.stdout.decode(), f"{what}: bare digest must fail too"

    j = lambda *p: os.path.join(d, *p)  # noqa: E731
    os.chmod(j(b"a/b/c"), 0o600)
    expect_fail("mode", "first difference at /a/b/c: content or metadata differs")
    os.chmod(j(b"a/b/c"), 0o644)
    os.rename(j(b"sp ace"), j(b"sp"))  # "sp" sorts before "sp ace": the extra name is met first
    expect_fail("extra", "first difference at /sp: not in the listing")
    os.rename(j(b"sp"), j(b"sp ace"))
    os.unlink(j(b"new\nline"))
    expect_fail("missing", "first difference at /new\\x0aline: missing from")
    with open(j(b"new\nline"), "wb") as f:
        f.write(b"new\nline")
    # the first differing path in sorted order is named, not whichever the walk meets last
    with open(j(b"usr/bin/tool"), "r+b") as f:
        f.write(b"X")
    with open(j(b"a/b/c"), "a") as f:
        f.write("more")
    expect_fail("first of two", "first difference at /a/b/c:")


def test_verify_bad_input(t):
    d = build_rich_tree(os.path.join(t, "layer"))
    listing = os.path.join(t, "listing")
    good = run("digest", d).stdout.decode().splitlines()
    # a listing whose lines do not add up to its digest is reported as corrupt, not as a difference
    bad = list(good)
    bad[3] = ("0" if bad[3][0] != "0" else "1") + bad[3][1:]
    with open(listing, "w") as f:
        f.write("\n".join(bad) + "\n")
    r = run("verify", d, listing, check=False)
    assert r.returncode == 1 and b"corrupt listing" in r.stderr, r
    with open(listing, "w") as f:
        f.write("hello\n")
    r = run("verify", d, listing, check=False)
    assert r.returncode == 1 and b"corrupt listing" in r.stderr, r
    with open(listing, "w") as f:
        f.write("\n".join(good[:-1]) + "\n")
    r = run("verify", d, listing, check=False)
    assert r.returncode == 1 and b"not a digest listing" in r.stderr, r
    r = run("verify", d, "xxh128:1234", check=False)
    assert r.returncode == 2 and b"not a digest" in r.stderr, r
    r = run("verify", d, check=False)
    assert r.returncode == 2, r
    r = run("digest", os.path.join(t, "nonexistent"), check=False)
    assert r.returncode == 1 and b"No such file" in r.stderr, r
    r = run("digest", "--bogus", d, check=False)
    assert r.returncode == 2, r
    r = run("digest", "--help")
    assert r.returncode == 0 and b"Usage: sandbox-layer digest" in r.stdout


def test_progress_only_on_a_tty(t):
    d = os.path.join(t, "big")
    os.mkdir(d)
    with open(os.path.join(d, "sparse"), "wb") as f:
        f.truncate(1 << 30)  # holes read back fast: the first update draws, later ones may not
    r = run("digest", "-q", d)
    assert r.stderr == b"", "no progress on a pipe"
    rc, out, seen = ovltest.run_on_pty([LAYER, "digest", "-q", d])
    assert rc == 0 and out.startswith(b"xxh128:"), out
    assert ovltest.progress_ok("digest", seen, 1, 1 << 30), f"no well-formed progress line on a tty: {seen!r}"


def main():
    if os.geteuid() != 0:
        print("1..0 # SKIP needs root")
        return 77
    if not LAYER or not os.access(LAYER, os.X_OK):
        print("SANDBOX_LAYER is not set to the built sandbox-layer", file=sys.stderr)
        return 1
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    failed = 0
    print(f"1..{len(tests)}")
    for i, (name, fn) in enumerate(tests, 1):
        t = tempfile.mkdtemp(prefix=f"layer-digest-{os.getpid()}-")
        try:
            fn(t)
            print(f"ok {i} {name}")
        except Exception:
            failed += 1
            print(f"not ok {i} {name}")
            traceback.print_exc()
        finally:
            subprocess.run(["umount", "-q", os.path.join(t, "tmpfs")], stderr=subprocess.DEVNULL)
            shutil.rmtree(t, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
