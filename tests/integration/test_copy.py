#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Copies into and out of a live sandbox through the runtime (runtime/copy.c and the sandbox-copy helper),
driven by tests/helpers/live-run (an idle sandbox with the defaults, then the copies): a tree with modes,
symlinks, a hard link, a FIFO, an empty directory and a 1 GiB file (sparse on the host) made by GNU tar
goes in and comes out the same, and GNU tar reads what comes out; docker cp's naming (into a directory, to
a new name, a directory's contents with "/."); the sandbox's disk bound stops what comes in, with a
message; names that would leave the destination ("..", absolute, through a symlink) are refused and
nothing lands outside; paths are the sandbox's, not the host's; nothing is left on the host afterwards.

Environment: LIVE_RUN names the helper, SANDBOX_UNIONFS the union. Root only (exit 77)."""

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402

LIVE_RUN = os.path.abspath(os.environ.get("LIVE_RUN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "helpers", "live-run"))
GIB = 1 << 30


def live_run(env, *ops, disk=None, rc=0, timeout=120):
    argv = [LIVE_RUN] + (["--disk", disk] if disk else []) + list(ops)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=env.environ())
    if r.returncode != rc:
        raise AssertionError(f"live-run {' '.join(ops)}: exit {r.returncode}, expected {rc}; "
                             f"stderr: {r.stderr.strip()!r}")
    return r


def file_hash(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def describe(root):
    """Every entry below ROOT: type, permission bits, link target or content hash, size."""
    out = {}
    inodes = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            d = {"mode": stat.S_IMODE(st.st_mode), "type": stat.S_IFMT(st.st_mode)}
            if stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                d["size"] = st.st_size
                d["sha256"] = file_hash(p)
                if st.st_nlink > 1:
                    d["linkgroup"] = inodes.setdefault(st.st_ino, rel)
            out[rel] = d
    return out


def make_tree(env):
    t = env.mkdir("src", "tree")
    env.write("src/tree/exec", "#!/bin/sh\necho hi\n", mode=0o751)
    env.write("src/tree/private", "secret\n", mode=0o600)
    env.write("src/tree/setuid", "not really\n", mode=0o4755)
    os.makedirs(os.path.join(t, "sub", "deeper"))
    os.chmod(os.path.join(t, "sub"), 0o700)
    env.write("src/tree/sub/deeper/file", "deep\n", mode=0o640)
    os.makedirs(os.path.join(t, "empty"))
    os.chmod(os.path.join(t, "empty"), 0o1777)
    os.symlink("exec", os.path.join(t, "rel-link"))
    os.symlink("/nonexistent/host/path", os.path.join(t, "abs-dangling"))
    os.symlink("sub/deeper", os.path.join(t, "dir-link"))
    os.link(os.path.join(t, "private"), os.path.join(t, "hard"))
    os.mkfifo(os.path.join(t, "fifo"), 0o620)
    big = os.path.join(t, "big")
    with open(big, "wb") as f:
        f.truncate(GIB)
        f.seek(GIB // 2)
        f.write(b"the middle of a gibibyte")
        f.seek(GIB - 5)
        f.write(b"end.\n")
    return t


def test_round_trip(env):
    """GNU tar -> the sandbox -> GNU tar: the same tree, modes (set-uid inside included), links, 1 GiB."""
    t = make_tree(env)
    before = describe(t)
    tar_in = env.path("in.tar")
    subprocess.run(["tar", "-C", env.path("src"), "--sparse", "-cf", tar_in, "tree"], check=True)
    tar_out = env.path("out.tar")
    live_run(env, f"in:/root:{tar_in}",
             "sh:test -u /root/tree/setuid && test -p /root/tree/fifo && "
             "test \"$(stat -c %a /root/tree/empty)\" = 1777 && "
             "test \"$(readlink /root/tree/abs-dangling)\" = /nonexistent/host/path && "
             "test \"$(stat -c %i /root/tree/hard)\" = \"$(stat -c %i /root/tree/private)\" && "
             "test \"$(stat -c %s /root/tree/big)\" = 1073741824",
             f"out:/root/tree:{tar_out}", timeout=300)
    names = subprocess.run(["tar", "-tf", tar_out], check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    sf.check(all(n == "tree" or n.startswith("tree/") for n in names), f"top-level entry is 'tree': {names!r}")
    dest = env.mkdir("dest")
    subprocess.run(["tar", "-C", dest, "-xpf", tar_out], check=True)
    after = describe(os.path.join(dest, "tree"))
    sf.eq(sorted(after), sorted(before), "entries after the round trip")
    for k in before:
        sf.eq(after[k], before[k], f"'{k}' after the round trip")


def test_docker_cp_names(env):
    """Into an existing directory, to a new name, contents with '/.', a file over a file; a directory
    over a file and a missing parent are refused."""
    env.write("src/d/f", "one\n")
    env.write("src/file", "two\n")
    tar_d = env.path("d.tar")
    tar_f = env.path("f.tar")
    subprocess.run(["tar", "-C", env.path("src"), "-cf", tar_d, "d"], check=True)
    subprocess.run(["tar", "-C", env.path("src"), "-cf", tar_f, "file"], check=True)
    out1, out2 = env.path("o1.tar"), env.path("o2.tar")
    live_run(env, "sh:mkdir /root/into && echo old > /root/target",
             f"in:/root/into:{tar_d}", f"in:/root/renamed:{tar_d}", f"in:/root/target:{tar_f}",
             "sh:test \"$(cat /root/into/d/f)\" = one && test \"$(cat /root/renamed/f)\" = one && "
             "test \"$(cat /root/target)\" = two",
             f"out:/root/renamed/.:{out1}", f"out:/root/target:{out2}")
    sf.eq(sorted(tarfile.open(out1).getnames()), [".", "./f"], "'/.' packs the contents")
    sf.eq(tarfile.open(out2).getnames(), ["target"], "a file is packed under its own name")
    r = live_run(env, "sh:touch /root/plain", f"in:/root/plain:{tar_d}", rc=1)
    sf.check("non-directory" in r.stderr, f"a directory over a file is refused: {r.stderr!r}")
    r = live_run(env, f"in:/root/missing/deeper:{tar_d}", rc=1)
    sf.check("No such file" in r.stderr, f"a missing parent is refused: {r.stderr!r}")
    r = live_run(env, f"out:/root/nothing:{env.path('o3.tar')}", rc=1)
    sf.check("/root/nothing" in r.stderr, f"a missing source is named: {r.stderr!r}")


def test_disk_bound(env):
    """What comes in counts against the sandbox's disk bound: 200 MiB into a sandbox with --disk 64M fails
    and says why."""
    big = env.path("src", "big")
    os.makedirs(os.path.dirname(big))
    with open(big, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(1 << 20))
    tar_in = env.path("big.tar")
    subprocess.run(["tar", "-C", env.path("src"), "-cf", tar_in, "big"], check=True)
    r = live_run(env, f"in:/root:{tar_in}", disk="64M", rc=1)
    sf.check("quota" in r.stderr.lower() or "space" in r.stderr.lower(),
             f"the failure names the disk bound: {r.stderr!r}")


def hostile_tar(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(arg)
                t.addfile(ti, io.BytesIO(arg))
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = arg
                t.addfile(ti)
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = arg
                t.addfile(ti)
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = 1, 3
                t.addfile(ti)


def test_hostile_names(env):
    """'..', absolute names, writes through a symlink the archive planted, hard links to outside and
    device nodes are refused; nothing lands outside the destination."""
    cases = {
        "dotdot": [("d", "dir", None), ("d/../../escaped", "file", b"x")],
        "absolute": [("/escaped", "file", b"x")],
        "symlink": [("d", "dir", None), ("d/l", "symlink", "/"), ("d/l/escaped", "file", b"x")],
        "hardlink": [("d", "dir", None), ("d/h", "hardlink", "../../etc/passwd")],
        "device": [("d", "dir", None), ("d/null", "chr", None)],
    }
    ops = ["sh:mkdir /root/dest"]
    for name, members in cases.items():
        p = env.path(f"{name}.tar")
        hostile_tar(p, members)
        r = live_run(env, "sh:mkdir /root/dest", f"in:/root/dest:{p}", rc=1)
        sf.check(r.stderr.strip(), f"{name}: refused with a message")
    ops.append("sh:test ! -e /escaped && test ! -e /root/escaped && test ! -e /etc/escaped")
    live_run(env, *ops)


def test_sandbox_paths(env):
    """PATH is resolved in the sandbox: its /etc/hostname, not the host's; a symlink in the sandbox that
    points at a host path is packed as a symlink."""
    out = env.path("h.tar")
    out2 = env.path("l.tar")
    live_run(env, "sh:ln -s /etc/shadow /root/sh", f"out:/etc/hostname:{out}", f"out:/root/sh:{out2}")
    with tarfile.open(out) as t:
        sf.eq(t.extractfile("hostname").read().strip(), b"sandbox", "the sandbox's /etc/hostname")
    with tarfile.open(out2) as t:
        m = t.getmember("sh")
        sf.check(m.issym() and m.linkname == "/etc/shadow", f"a symlink stays a symlink: {m.type!r}")


class Env(sf.Env):
    """The fixture's Env, and what the host had before the test (mounts, cgroups, union servers)."""

    def __init__(self, tag):
        super().__init__(tag)
        self.before = sf.Snapshot(self)


def after_pass(env):
    """Nothing of the test's sandboxes (and their copy helpers) is left on the host."""
    problems = env.before.leftovers()
    sf.check(not problems, f"at the end of the test: left behind: {'; '.join(problems)}")


def prerequisites():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not os.access(LIVE_RUN, os.X_OK):
        return f"no live-run at {LIVE_RUN} (set LIVE_RUN)"
    return None


if __name__ == "__main__":
    sf.main(make_env=Env, header=f"# live-run under test: {LIVE_RUN}", check_prerequisites=prerequisites,
            after_pass=after_pass)
