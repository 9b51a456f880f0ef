#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Inode numbers and hard links in sandbox-unionfs: st_ino unique over a merged tree (also when two lower
layers on different tmpfs instances hand out the very same inode numbers), st_ino stable across copy-up,
d_ino == st_ino, hard links of a lower layer kept as one file across copy-up and remount (kernel overlayfs
with index=on is the oracle there), link counts, and a 23,000-file tree walked, stat'ed and read with the
server's open fd count staying bounded."""

import collections
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402


def walk_inodes(root):
    """{relpath: (st_dev, st_ino)} of every entry below root (root included), not following symlinks."""
    res = {".": (os.lstat(root).st_dev, os.lstat(root).st_ino)}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            res[os.path.relpath(p, root)] = (st.st_dev, st.st_ino)
    return res


def populate_tree(lowers, upper):
    l0, l1 = lowers
    for i in range(100):
        uf.write(f"{l0}/a/f{i}", f"l0-a-{i}")
        uf.write(f"{l1}/b/f{i}", f"l1-b-{i}")
        uf.write(f"{l1}/a/f{i}", f"shadowed-{i}")
        uf.write(f"{l1}/a/g{i}", f"l1-a-g{i}")
        uf.write(f"{upper}/c/f{i}", f"up-c-{i}")
    # same relative name at different places in different layers
    uf.write(f"{l0}/x/same", "l0")
    uf.write(f"{l1}/y/same", "l1")
    uf.write(f"{l1}/x2/same", "l1")
    os.symlink("a/f1", f"{l0}/sym")
    os.symlink("b/f1", f"{l1}/sym2")
    uf.write(f"{l1}/hl1", "hard")
    os.link(f"{l1}/hl1", f"{l1}/hl2")


def check_unique(m, hardlinks):
    inos = walk_inodes(m.mnt)
    dev = os.stat(m.mnt).st_dev
    other_dev = {p: d for p, (d, _) in inos.items() if d != dev}
    uf.eq(other_dev, {}, "entries with an st_dev other than the mount's")
    by_ino = collections.defaultdict(list)
    for p, (_, ino) in inos.items():
        by_ino[ino].append(p)
    dups = sorted(sorted(v) for v in by_ino.values() if len(v) > 1)
    if dups != hardlinks:
        raise AssertionError(f"paths sharing an st_ino among {len(inos)} entries: expected {hardlinks!r}, "
                             f"got {len(dups)} groups, first: {dups[:4]!r}")
    uf.check(len(inos) > 300, f"tree too small: {len(inos)}")


def test_st_ino_unique_same_fs(env):
    lay = uf.layout(env, "t", 2)
    populate_tree(lay["lowers"], lay["upper"])
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    check_unique(m, [["hl1", "hl2"]])


def test_st_ino_unique_colliding_layers(env):
    """Two tmpfs instances number their inodes the same way: identical (ino) on disk for different files."""
    t0, t1 = env.mount_tmpfs("tl0"), env.mount_tmpfs("tl1")
    # same creation order on both, so the same inode numbers for different files
    for t in (t0, t1):
        for d in ("a", "b", "c"):
            os.mkdir(os.path.join(t, d))
            for i in range(60):
                uf.write(os.path.join(t, d, f"{os.path.basename(t)}-{i}"), "x")
    collide = [n for n in os.listdir(t0 + "/a") if os.stat(f"{t0}/a/{n}").st_ino in
               {os.stat(f"{t1}/a/{x}").st_ino for x in os.listdir(t1 + "/a")}]
    uf.check(len(collide) > 10, "test setup: tmpfs instances did not produce colliding inode numbers")
    lay = uf.layout(env, "t", 0)
    m = env.union([t0, t1], lay["upper"], lay["work"], lay["mnt"])
    check_unique(m, [])


def test_st_ino_stable_across_copyup(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/d/f", "x")
        uf.write(lowers[0] + "/d/g", "y")
        uf.write(lowers[0] + "/d/h", "z")
        os.makedirs(lowers[0] + "/d/sub")
    u, k = uf.pair(env, populate)
    res = {}
    for m in (k, u):
        before = {n: os.lstat(m.p(n)).st_ino for n in ("d", "d/f", "d/g", "d/h", "d/sub")}
        os.chmod(m.p("d/f"), 0o600)
        with open(m.p("d/g"), "a") as f:
            f.write("more")
            mid = os.fstat(f.fileno()).st_ino
        os.setxattr(m.p("d/h"), "user.x", b"1")
        uf.write(m.p("d/sub/new"), "n")  # copies up d/sub
        after = {n: os.lstat(m.p(n)).st_ino for n in before}
        res[m.kind] = ([n for n in before if before[n] != after[n]], mid == before["d/g"])
    uf.oracle(res["kernel"], res["union"], ([], True),
              "entries whose st_ino changed with copy-up (while mounted), fstat of the open fd same")


def test_d_ino_equals_st_ino(env):
    def populate(lowers, upper):
        l0, l1 = lowers
        for i in range(20):
            uf.write(f"{l0}/merged/l0-{i}", "")
            uf.write(f"{l1}/merged/l1-{i}", "")
            uf.write(f"{l1}/loweronly/f{i}", "")
            uf.write(f"{upper}/merged/up-{i}", "")
        os.makedirs(f"{l0}/merged/sub")
        os.symlink("x", f"{l1}/merged/sym")
    u, k = uf.pair(env, populate, nlowers=2)
    res = {}
    for m in (k, u):
        os.chmod(m.p("loweronly/f3"), 0o600)  # copy-up inside a lower-only dir
        uf.write(m.p("newdir/x"), "")
        bad = []
        for d in (".", "merged", "loweronly", "newdir", "merged/sub"):
            for ino, _t, name in uf.getdents(m.p(d)):
                if name == "..":
                    continue
                st = os.lstat(m.p(d, name))
                if st.st_ino != ino:
                    bad.append((d, name, ino, st.st_ino))
        res[m.kind] = bad
    uf.oracle(res["kernel"], res["union"], [], "entries whose d_ino != st_ino: (dir, name, d_ino, st_ino)")


def test_lower_hardlinks_stay_linked(env):
    """Kernel overlayfs keeps lower hard links together only with index=on; that is the oracle here."""
    res = {}
    for kind in ("kernel", "union"):
        lay = uf.layout(env, kind)
        lo = lay["lowers"][0]
        uf.write(lo + "/dir/A", "base")
        os.link(lo + "/dir/A", lo + "/B")
        if kind == "union":
            m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
        else:
            m = env.kernel_overlay(lay["lowers"], lay["upper"], lay["work"], lay["mnt"],
                                   "redirect_dir=on,index=on,metacopy=off,xino=off")
        out = []
        a, b = m.p("dir/A"), m.p("B")
        out.append((os.stat(a).st_nlink, os.stat(b).st_nlink, os.stat(a).st_ino == os.stat(b).st_ino))
        with open(a, "a") as f:
            f.write("+A")
        out.append((uf.read(b), os.stat(a).st_ino == os.stat(b).st_ino, os.stat(a).st_nlink, os.stat(b).st_nlink))
        m.remount()
        out.append((uf.read(b), uf.read(a), os.stat(a).st_ino == os.stat(b).st_ino, os.stat(a).st_nlink,
                    os.stat(b).st_nlink))
        with open(b, "a") as f:
            f.write("+B")
        out.append(uf.read(a))
        m.remount()
        out.append((uf.read(a), uf.read(b)))
        out.append(uf.read(lo + "/dir/A"))
        res[kind] = out
    uf.oracle(res["kernel"], res["union"],
              [(2, 2, True), (b"base+A", True, 2, 2), (b"base+A", b"base+A", True, 2, 2), b"base+A+B",
               (b"base+A+B", b"base+A+B"), b"base"],
              "lower hard link pair A/B: [nlink/ino, write A read B, after remount, write B read A, again, lower]")


def test_link_count_of_new_links(env):
    def populate(lowers, upper):
        uf.write(lowers[0] + "/lower", "L")
    u, k = uf.pair(env, populate)
    res = {}
    for m in (k, u):
        out = []
        uf.write(m.p("f"), "x")
        out.append(os.stat(m.p("f")).st_nlink)
        os.link(m.p("f"), m.p("g"))
        os.link(m.p("f"), m.p("h"))
        out.append((os.stat(m.p("f")).st_nlink, os.stat(m.p("g")).st_nlink, os.lstat(m.p("h")).st_nlink))
        os.unlink(m.p("h"))
        out.append(os.stat(m.p("g")).st_nlink)
        os.link(m.p("lower"), m.p("lower2"))
        out.append((os.stat(m.p("lower")).st_nlink, os.stat(m.p("lower2")).st_nlink))
        fd = os.open(m.p("g"), os.O_RDONLY)
        os.unlink(m.p("f"))
        out.append(os.fstat(fd).st_nlink)
        os.close(fd)
        m.remount()
        out.append((os.stat(m.p("g")).st_nlink, os.stat(m.p("lower2")).st_nlink))
        res[m.kind] = out
    uf.oracle(res["kernel"], res["union"], [1, (3, 3, 3), 2, (2, 2), 1, (1, 2)],
              "st_nlink: [new, 2 links, after unlink, lower linked, via fd after unlink, after remount]")


NDIRS, NPER = 230, 100


@uf.timeout(150)
def test_big_tree_bounded_fds(env):
    t0 = time.monotonic()
    lay = uf.layout(env, "big")
    # the lower on a tmpfs: creating and removing 23,000 files on a busy ext4 costs ~20 s, and the fd
    # bound does not depend on the lower's filesystem
    lo = env.mount_tmpfs("biglower", "512m")
    lay["lowers"] = [lo]
    for d in range(NDIRS):
        dp = os.path.join(lo, f"d{d:03d}")
        os.mkdir(dp)
        for i in range(NPER):
            fd = os.open(os.path.join(dp, f"f{i:03d}"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, f"{d}/{i}".encode())
            os.close(fd)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    t1 = time.monotonic()
    held = []
    try:
        for d in range(0, NDIRS, 1):  # a few hundred files held open through the mount
            for i in (0, 50):
                if len(held) < 400:
                    held.append(os.open(m.p(f"d{d:03d}", f"f{i:03d}"), os.O_RDONLY))
        r = subprocess.run(["find", m.mnt, "-type", "f"], capture_output=True, text=True)
        uf.eq(r.returncode, 0, f"find exit status ({r.stderr[-300:]!r})")
        uf.eq(len(r.stdout.split()), NDIRS * NPER, "files found by find")
        t2 = time.monotonic()
        nread, bad = 0, []
        for dp, dns, fns in os.walk(m.mnt):
            for n in fns:
                p = os.path.join(dp, n)
                os.lstat(p)
                want = f"{int(os.path.basename(dp)[1:])}/{int(n[1:])}".encode()
                got = uf.read(p)
                nread += 1
                if got != want:
                    bad.append((p, got))
        uf.eq(nread, NDIRS * NPER, "files stat'ed and read")
        uf.eq(bad[:5], [], "files with wrong content")
        nfds = len(os.listdir(f"/proc/{m.pid}/fd"))
        t3 = time.monotonic()
        print(f"# server {m.pid} holds {nfds} fds after the walk ({len(held)} files held open); "
              f"times: setup {t1 - t0:.1f}s, find {t2 - t1:.1f}s, stat+read all {t3 - t2:.1f}s")
        uf.check(nfds < 2000, f"server holds {nfds} open fds after walking {NDIRS * NPER} files "
                              f"with {len(held)} held open (limit 2000)")
        # everything still works while the kernel holds the inodes: modify files all over the tree
        for d in range(0, NDIRS, 23):
            with open(m.p(f"d{d:03d}", "f099"), "a") as f:
                f.write("+")
        uf.eq(uf.read(m.p("d023/f099")), b"23/99+", "append after the walk")
        uf.eq(os.read(held[0], 100), b"0/0", "read from a file held open during the walk")
        nfds2 = len(os.listdir(f"/proc/{m.pid}/fd"))
        uf.check(nfds2 < 2000, f"server holds {nfds2} open fds after copy-ups")
    finally:
        for fd in held:
            os.close(fd)


if __name__ == "__main__":
    uf.main()
