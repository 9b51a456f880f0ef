#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""uidmapping/gidmapping of sandbox-unionfs (fuse-overlayfs syntax and order: FROM on disk : TO shown :
COUNT). With -o uidmapping=0:100000:65536,gidmapping=0:100000:65536,allow_other the image's on-disk ids
(0:0) show as 100000:100000, files created through the mount by uid/gid 100000 land on disk as 0:0, and
chown to 100005 stores 5. Processes run as the mapped ids in forked children (setresuid/setresgid)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

MAP_OPTS = ["uidmapping=0:100000:65536", "gidmapping=0:100000:65536", "allow_other"]
BASE = 100000


def mounted(env):
    lay = uf.layout(env, "idmap")
    os.chmod(env.path("idmap"), 0o755)
    lo = lay["lowers"][0]
    uf.write(lo + "/rootfile", "owned by 0 on disk", mode=0o644, uid=0, gid=0)
    uf.write(lo + "/userfile", "owned by 1000:1001 on disk", mode=0o644, uid=1000, gid=1001)
    os.makedirs(lo + "/etc")
    os.chown(lo + "/etc", 0, 0)
    uf.write(lo + "/etc/conf", "conf", mode=0o644, uid=0, gid=0)
    for d in (lo, lay["upper"]):
        os.chown(d, 0, 0)
        os.chmod(d, 0o755)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], MAP_OPTS)
    return m


def owner(p):
    st = os.lstat(p)
    return (st.st_uid, st.st_gid)


def test_ondisk_ids_shown_shifted(env):
    m = mounted(env)
    uf.eq(owner(m.mnt), (BASE, BASE), "owner of the mount root (0:0 on disk)")
    uf.eq(owner(m.p("rootfile")), (BASE, BASE), "owner of a lower file 0:0 on disk")
    uf.eq(owner(m.p("userfile")), (BASE + 1000, BASE + 1001), "owner of a lower file 1000:1001 on disk")
    uf.eq(owner(m.p("etc/conf")), (BASE, BASE), "owner of a nested lower file 0:0 on disk")
    ents = {e[2]: e for e in uf.getdents(m.mnt)}
    uf.check("rootfile" in ents, "rootfile not listed")


def _create_as_mapped_root(mnt):
    uf.write(mnt + "/created", "by uid 100000")
    os.mkdir(mnt + "/newdir")
    os.symlink("created", mnt + "/newlink")
    os.mkfifo(mnt + "/newfifo")
    uf.write(mnt + "/etc/new-in-lower-dir", "x")
    return {n: owner(os.path.join(mnt, n)) for n in ("created", "newdir", "newlink", "newfifo",
                                                      "etc/new-in-lower-dir")}


def test_create_as_mapped_uid_stored_as_image_ids(env):
    m = mounted(env)
    seen = uf.fork_call(_create_as_mapped_root, m.mnt, uid=BASE, gid=BASE)
    for n, o in seen.items():
        uf.eq(o, (BASE, BASE), f"owner of {n} through the mount, as seen by its creator")
        uf.eq(owner(os.path.join(m.upper, n)), (0, 0), f"owner of {n} on disk in the upper")


def _write_rootfile(mnt):
    with open(mnt + "/rootfile", "a") as f:
        f.write("+appended by uid 100000")
    return uf.read(mnt + "/rootfile")


def test_mapped_root_can_modify_image_files(env):
    m = mounted(env)
    data = uf.fork_call(_write_rootfile, m.mnt, uid=BASE, gid=BASE)
    uf.eq(data, b"owned by 0 on disk+appended by uid 100000", "content after append by uid 100000")
    uf.eq(owner(os.path.join(m.upper, "rootfile")), (0, 0), "owner of the copied-up file on disk")
    uf.eq(uf.read(m.lowers[0] + "/rootfile"), b"owned by 0 on disk", "lower file untouched")


def _try_write(path):
    try:
        with open(path, "a") as f:
            f.write("x")
        return "OK"
    except PermissionError:
        return "EACCES"


def test_other_mapped_uid_gets_eacces(env):
    m = mounted(env)
    # uid 100001 is disk uid 1: not the owner of the 0644 file, must be refused like on any fs
    uf.eq(uf.fork_call(_try_write, m.p("rootfile"), uid=BASE + 1, gid=BASE + 1), "EACCES",
          "uid 100001 writing a 0644 file owned by (shown) 100000")
    uf.eq(uf.fork_call(_try_write, m.p("etc/new"), uid=BASE + 1, gid=BASE + 1), "EACCES",
          "uid 100001 creating in a 0755 dir owned by (shown) 100000")
    uf.eq(uf.errname(os.lstat, os.path.join(m.upper, "etc", "new")), "ENOENT", "refused file exists in the upper")
    uf.eq(uf.read(m.lowers[0] + "/rootfile"), b"owned by 0 on disk", "lower file untouched")


def test_chown_maps_back(env):
    m = mounted(env)
    uf.write(m.p("mine"), "new")
    os.chown(m.p("mine"), BASE + 5, BASE + 7)
    uf.eq(owner(m.p("mine")), (BASE + 5, BASE + 7), "owner through the mount after chown 100005:100007")
    uf.eq(owner(os.path.join(m.upper, "mine")), (5, 7), "owner on disk after chown 100005:100007")
    os.chown(m.p("rootfile"), BASE + 5, BASE + 7)  # lower file: copy-up, then chown
    uf.eq(owner(os.path.join(m.upper, "rootfile")), (5, 7), "owner on disk of a copied-up lower file after chown")
    uf.eq(owner(m.lowers[0] + "/rootfile"), (0, 0), "lower file owner untouched")
    os.chown(m.p("userfile"), BASE, -1)
    uf.eq(owner(os.path.join(m.upper, "userfile")), (0, 1001), "chown of the uid only keeps the on-disk gid")
    m.remount()
    uf.eq(owner(m.p("mine")), (BASE + 5, BASE + 7), "owner through the mount after remount")


def _mapped_uid_chown(mnt):
    uf.write(mnt + "/byuser", "u")
    os.chown(mnt + "/byuser", -1, BASE + 7)  # not in our groups: EPERM on any fs
    return "OK"


def test_unprivileged_chown_refused(env):
    m = mounted(env)
    r = uf.errname(lambda: uf.fork_call(_mapped_uid_chown, m.mnt, uid=BASE + 1, gid=BASE + 1))
    # uid 100001 may create in / only if it is writable: make it so first
    uf.eq(r, "EACCES", "uid 100001 creating in the root dir owned by 100000 with mode 0755")
    os.chmod(m.mnt, 0o777)
    r = uf.errname(lambda: uf.fork_call(_mapped_uid_chown, m.mnt, uid=BASE + 1, gid=BASE + 1))
    uf.eq(r, "EPERM", "uid 100001 chgrp to a group it is not in")
    uf.eq(owner(os.path.join(m.upper, "byuser")), (1, 1), "file created by uid 100001 stored as 1:1")


if __name__ == "__main__":
    uf.main()
