#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Metadata-only copy-up (-o metacopy=on), in kernel overlayfs's on-disk form:

  * chmod, chown, utimens and setxattr of a lower file copy no data: the upper file is one hole of the
    data's size with trusted.overlay.metacopy; reads give the lower data;
  * the first open for writing copies the data in (the marker goes); a read-only fd opened before reads
    the new content afterwards;
  * a metacopy file that is renamed gets a redirect to its data;
  * kernel overlayfs with metacopy=on mounts our upper and reads the same data, owners, modes and xattrs;
    we read an upper the kernel made with metacopy=on; without metacopy=on both refuse such files (EPERM);
  * a chown -R of a 1 GiB tree writes no file data (upper disk usage and the server's write_bytes);
  * the layer tools: squash reads the data from the layers below, digest, export and merge refuse with a
    message, snapshot keeps the files as they are (DEST over the same lowers reads the same data)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

KERNEL_MC = "redirect_dir=on,metacopy=on,index=off,xino=off"
MARKER = "trusted.overlay.metacopy"
HERE = os.path.dirname(os.path.abspath(__file__))


def layer_tool():
    return os.environ.get("SANDBOX_LAYER") or os.path.normpath(
        os.path.join(HERE, "..", "..", "build", "tools", "sandbox-layer"))


def populate(d):
    for n in ("chmod", "chown", "utime", "xattr", "write", "rename", "keep"):
        uf.write(os.path.join(d, n), os.urandom(3 << 20), mode=0o644, uid=1000, gid=1000)
        os.setxattr(os.path.join(d, n), "user.orig", n.encode())
    os.mkdir(os.path.join(d, "dir"))
    uf.write(os.path.join(d, "dir", "deep"), os.urandom(100000))


def change_metadata(m):
    os.chmod(m.p("chmod"), 0o600)
    os.chown(m.p("chown"), 1234, 4321)
    os.utime(m.p("utime"), ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    os.setxattr(m.p("xattr"), "user.new", b"v")
    os.chmod(m.p("rename"), 0o640)
    os.rename(m.p("rename"), m.p("dir", "renamed"))
    os.chmod(m.p("dir", "deep"), 0o600)
    os.rename(m.p("dir"), m.p("dir2"))


def merged_view(root):
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in fns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (oct(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                                             uf.read(p), sorted((x, os.getxattr(p, x)) for x in os.listxattr(p)))
    return out


def upper_blocks(upper):
    return sum(os.lstat(os.path.join(dp, n)).st_blocks * 512 for dp, dns, fns in os.walk(upper) for n in fns)


def test_metadata_changes_copy_no_data(env):
    lay = uf.layout(env, "u")
    populate(lay["lowers"][0])
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["metacopy=on"])
    before = merged_view(m.mnt)
    change_metadata(m)
    for rel in ("chmod", "chown", "utime", "xattr", "dir2/renamed", "dir2/deep"):
        p = os.path.join(lay["upper"], rel)
        st = os.lstat(p)
        # no data block: at most one block of xattrs that did not fit in the inode
        uf.eq((st.st_blocks * 512 <= 4096, st.st_size), (True, os.lstat(m.p(rel)).st_size),
              f"upper {rel}: (no data allocated, size) [{st.st_blocks} blocks]")
        uf.eq(os.getxattr(p, MARKER), b"", f"upper {rel}: metacopy marker")
    uf.eq(os.getxattr(os.path.join(lay["upper"], "dir2", "renamed"), "trusted.overlay.redirect"), b"/rename",
          "redirect of the renamed metacopy file")
    uf.check(not os.path.exists(os.path.join(lay["upper"], "keep")), "an untouched file was copied up")
    view = merged_view(m.mnt)
    uf.eq(view["chmod"][5], before["chmod"][5], "data read through the union after chmod")
    uf.eq(view["dir2/renamed"][5], before["rename"][5], "data of the renamed file")
    uf.eq(view["dir2/deep"][5], before["dir/deep"][5], "data below the renamed directory")
    uf.eq(view["chown"][1:3], (1234, 4321), "owner after chown")
    uf.check(os.stat(m.p("chmod")).st_blocks > 0, "st_blocks of a metacopy file is the data's (du counts it)")
    m.cleanup()

    # the kernel with metacopy=on reads the same tree from our upper
    k = env.kernel_overlay(lay["lowers"], lay["upper"], env.mkdir("kw"), env.mkdir("kmnt"), opts=KERNEL_MC)
    uf.eq(merged_view(k.mnt), view, "kernel overlayfs (metacopy=on) over our upper")
    k.cleanup()
    # so do we, after a remount
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["metacopy=on"])
    uf.eq(merged_view(m.mnt), view, "remounted")
    m.cleanup()
    # without metacopy=on, both refuse such files, as the kernel does
    k = env.kernel_overlay(lay["lowers"], lay["upper"], env.mkdir("kw2"), env.mkdir("kmnt2"),
                           opts="redirect_dir=on,metacopy=off")
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    uf.oracle(uf.errname(uf.read, k.p("chmod")), uf.errname(uf.read, m.p("chmod")), "EPERM",
              "reading a metacopy file without metacopy=on")


def test_open_for_writing_copies_data(env):
    lay = uf.layout(env, "w")
    populate(lay["lowers"][0])
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["metacopy=on"])
    want = uf.read(m.p("write"))
    os.chmod(m.p("write"), 0o600)
    rfd = os.open(m.p("write"), os.O_RDONLY)       # on the lower data
    uf.eq(os.pread(rfd, 100, 0), want[:100], "read through a read-only fd")
    wfd = os.open(m.p("write"), os.O_WRONLY)       # copies the data in
    up = os.path.join(lay["upper"], "write")
    uf.eq(uf.read(up), want, "upper data after the open for writing")
    uf.eq(uf.errname(os.getxattr, up, MARKER), "ENODATA", "marker after the data copy")
    os.pwrite(wfd, b"NEW", 0)
    os.close(wfd)
    uf.eq(os.pread(rfd, 3, 0), b"NEW", "the read-only fd opened before sees the write")
    os.close(rfd)
    uf.eq(oct(os.stat(m.p("write")).st_mode & 0o777), oct(0o600), "mode kept")
    uf.eq(uf.read(m.p("write")), b"NEW" + want[3:], "content through the union")
    m.cleanup()
    k = env.kernel_overlay(lay["lowers"], lay["upper"], env.mkdir("kw"), env.mkdir("kmnt"), opts=KERNEL_MC)
    uf.eq(uf.read(k.p("write")), b"NEW" + want[3:], "content read by kernel overlayfs")


def test_kernel_made_upper(env):
    """An upper the kernel wrote with metacopy=on (chmod, chown, rename) reads the same through us."""
    lay = uf.layout(env, "k")
    populate(lay["lowers"][0])
    k = env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=KERNEL_MC)
    change_metadata(k)
    view = merged_view(k.mnt)
    k.cleanup()
    uf.check(os.getxattr(os.path.join(lay["upper"], "chmod"), MARKER) is not None, "the kernel made metacopy files")
    m = env.union(lay["lowers"], lay["upper"], env.mkdir("uw"), env.mkdir("umnt"), opts=["metacopy=on"])
    uf.eq(merged_view(m.mnt), view, "sandbox-unionfs (metacopy=on) over the kernel's upper")


@uf.timeout(300)
def test_chown_R_of_1GiB_copies_no_data(env):
    lay = uf.layout(env, "big")
    chunk = os.urandom(1 << 20)
    for i in range(64):
        d = os.path.join(lay["lowers"][0], f"d{i % 8}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            for _ in range(16):
                f.write(chunk)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["metacopy=on"])

    def written():
        with open(f"/proc/{m.pid}/io") as f:
            return dict(line.split(": ") for line in f.read().splitlines())["write_bytes"]
    w0 = int(written())
    subprocess.run(["chown", "-R", "4242:4242", m.mnt], check=True, timeout=240)
    w1 = int(written())
    used = upper_blocks(lay["upper"])
    uf.check(used < (1 << 20), f"upper disk usage after chown -R of 1 GiB: {used} bytes")
    uf.check(w1 - w0 < (1 << 20), f"bytes the server wrote for chown -R of 1 GiB: {w1 - w0}")
    st = os.stat(m.p("d3", "f3"))
    uf.eq((st.st_uid, st.st_size), (4242, 16 << 20), "owner and size after chown -R")
    uf.eq(uf.read(m.p("d3", "f3"))[:1 << 20], chunk, "data after chown -R")
    m.cleanup()
    # the same on a mount without metacopy copies the data of what it changes
    lay2 = uf.layout(env, "off")
    with open(os.path.join(lay2["lowers"][0], "f"), "wb") as f:
        f.write(chunk * 16)
    m = env.union(lay2["lowers"], lay2["upper"], lay2["work"], lay2["mnt"])
    os.chown(m.p("f"), 4242, 4242)
    uf.check(upper_blocks(lay2["upper"]) >= 16 << 20, "without metacopy=on a chown copies the data")


def run_layer(args, check_rc=None):
    r = subprocess.run([layer_tool()] + args, capture_output=True, text=True, timeout=120)
    if check_rc is not None:
        uf.eq(r.returncode, check_rc, f"sandbox-layer {' '.join(args)}: exit status ({r.stderr.strip()})")
    return r


def test_layer_tools(env):
    if not os.access(layer_tool(), os.X_OK):
        raise uf.Skip(f"no sandbox-layer at {layer_tool()} (set SANDBOX_LAYER)")
    lay = uf.layout(env, "l")
    populate(lay["lowers"][0])
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["metacopy=on"])
    change_metadata(m)
    view = merged_view(m.mnt)

    # snapshot: DEST keeps the metacopy files; over the same lowers it reads the same
    snap = env.path("snap")
    run_layer(["snapshot", m.mnt, snap], 0)
    uf.eq(os.getxattr(os.path.join(snap, "chmod"), MARKER), b"", "a metacopy file in the snapshot")
    uf.check(os.lstat(os.path.join(snap, "chmod")).st_blocks * 512 <= 4096, "data of a metacopy file in the snapshot")
    m.cleanup()
    k = env.kernel_overlay([snap] + lay["lowers"], None, None, env.mkdir("ksnap"), opts=KERNEL_MC)
    uf.eq(merged_view(k.mnt), view, "the snapshot over the same lowers (kernel overlayfs, metacopy=on)")
    k.cleanup()

    # squash reads the data from below
    out = env.path("squashed")
    run_layer(["squash", "-o", f"lowerdir={lay['upper']}:{lay['lowers'][0]}", out], 0)
    flat = merged_view(out)
    uf.eq({k: v[:3] + v[5:6] for k, v in flat.items()}, {k: v[:3] + v[5:6] for k, v in view.items()},
          "squash of upper:lower (mode, owner, data)")
    uf.check(all(MARKER not in dict(v[6]) for v in flat.values()), "markers left by squash")
    r = run_layer(["squash", "-o", f"lowerdir={lay['upper']}", env.path("sq2")], 1)
    uf.check("metacopy" in r.stderr and "below" in r.stderr, f"squash without the data's layer: {r.stderr!r}")
    uf.check(not os.path.exists(env.path("sq2")), "squash left a result")

    # digest, export, merge refuse with a message
    r = run_layer(["digest", lay["upper"]], 1)
    uf.check("metacopy" in r.stderr, f"digest of a layer with metacopy files: {r.stderr!r}")
    plain = env.mkdir("plain")       # an upper with only metacopy files (no redirects), for export
    m2 = env.union(lay["lowers"], plain, env.mkdir("pw"), env.mkdir("pmnt"), opts=["metacopy=on"])
    os.chmod(m2.p("keep"), 0o600)
    m2.cleanup()
    r = run_layer(["export", plain, env.path("x.tar")], 1)
    uf.check("metacopy" in r.stderr and "squash" in r.stderr, f"export of a layer with metacopy files: {r.stderr!r}")
    uf.check(not os.path.exists(env.path("x.tar")), "export left a tar")
    r = run_layer(["merge", plain, lay["lowers"][0]], 1)
    uf.check("metacopy" in r.stderr, f"merge of a layer with metacopy files: {r.stderr!r}")


if __name__ == "__main__":
    uf.main()
