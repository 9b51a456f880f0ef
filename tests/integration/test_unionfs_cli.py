#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-unionfs command line: --help/--version, rejection of bad input (exit 1, a message naming the
problem, nothing left mounted or running), read-only mounts without upperdir, use as a mount helper
(mount -t fuse.sandbox-unionfs), lowerdir order, and daemon mode returning only once the mount is ready.

Runs as root against real FUSE mounts; kernel overlayfs is the oracle where it has the same behaviour."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402


def run_bin(args, env=None, timeout=20):
    return subprocess.run([uf.binary()] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=env)


def project_version():
    mb = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "meson.build")
    try:
        with open(mb) as f:
            m = re.search(r"version:\s*'([0-9][^']*)'", f.read())
            return m.group(1) if m else None
    except OSError:
        return None


def test_help(env):
    r = run_bin(["--help"])
    uf.eq(r.returncode, 0, "exit status of --help")
    out = r.stdout
    # a synopsis: either a "usage:" line or a first line starting with the program name
    first = out.lstrip().split("\n", 1)[0]
    uf.check(re.search(r"usage", out, re.I) or first.startswith((os.path.basename(uf.binary()), uf.binary_name())),
             f"--help prints no usage synopsis on stdout: {out[:300]!r}")
    uf.check(re.search(r"mountpoint", out, re.I), f"--help does not mention the mountpoint: {out[:300]!r}")
    uf.check("lowerdir" in out, f"--help does not document -o lowerdir: {out[:500]!r}")
    r2 = run_bin(["-h"])
    uf.eq(r2.returncode, 0, "exit status of -h")


def test_version(env):
    r = run_bin(["--version"])
    uf.eq(r.returncode, 0, "exit status of --version")
    uf.check(re.search(r"\d+\.\d+", r.stdout), f"--version prints no version number on stdout: {r.stdout!r}")
    if not uf.is_fuse_overlayfs():
        v = project_version()
        uf.check(v is None or v in r.stdout, f"--version does not print the project version {v}: {r.stdout!r}")


def expect_failure(env, opts, keywords, mnt=None, what="", status=1):
    """Runs the binary in daemon mode with -o opts; asserts exit STATUS (1: a layer is wrong, 2: bad
    usage), every keyword in stderr (case-insensitive), nothing mounted and no server process left."""
    mnt = mnt or env.mkdir("mnt")
    args = (["-o", opts] if opts else []) + [mnt]
    r = run_bin(args)
    mounted = uf.is_mounted(mnt)
    procs = uf.processes_mentioning(mnt)
    if mounted:
        uf.umount(mnt)
    uf.eq(r.returncode, status, f"{what}: exit status (stderr: {r.stderr.strip()!r})")
    low = r.stderr.lower()
    for k in keywords:
        alts = k if isinstance(k, tuple) else (k,)
        uf.check(any(a.lower() in low for a in alts),
                 f"{what}: stderr does not name the problem (wanted {' or '.join(map(repr, alts))}): "
                 f"{r.stderr.strip()!r}")
    uf.check(not mounted, f"{what}: a mount was left at {mnt}")
    uf.eq(procs, [], f"{what}: server processes left behind")


def std_dirs(env):
    return env.mkdir("l"), env.mkdir("u"), env.mkdir("w")


def test_no_lowerdir_option(env):
    l, u, w = std_dirs(env)
    expect_failure(env, f"upperdir={u},workdir={w}", [("lowerdir", "lower dir")], what="no lowerdir option",
                   status=2)


def test_lowerdir_missing(env):
    l, u, w = std_dirs(env)
    missing = env.path("does-not-exist")
    expect_failure(env, f"lowerdir={missing},upperdir={u},workdir={w}", [missing], what="missing lowerdir")


def test_second_lowerdir_missing(env):
    l, u, w = std_dirs(env)
    missing = env.path("second-missing")
    expect_failure(env, f"lowerdir={l}:{missing},upperdir={u},workdir={w}", [missing],
                   what="missing second lowerdir")


def test_lowerdir_not_directory(env):
    l, u, w = std_dirs(env)
    f = env.path("plainfile")
    uf.write(f, "x")
    expect_failure(env, f"lowerdir={f},upperdir={u},workdir={w}", [f, "directory"], what="lowerdir is a file")


def test_upperdir_missing(env):
    l, u, w = std_dirs(env)
    missing = env.path("no-upper")
    expect_failure(env, f"lowerdir={l},upperdir={missing},workdir={w}", [missing], what="missing upperdir")


def test_upperdir_inside_lowerdir(env):
    l, u, w = std_dirs(env)
    inner = env.mkdir("l", "inner-upper")
    expect_failure(env, f"lowerdir={l},upperdir={inner},workdir={w}", ["upper", "lower"],
                   what="upperdir inside a lowerdir")


def test_lowerdir_inside_upperdir(env):
    l, u, w = std_dirs(env)
    inner = env.mkdir("u", "inner-lower")
    expect_failure(env, f"lowerdir={inner},upperdir={u},workdir={w}", ["upper", "lower"],
                   what="lowerdir inside the upperdir")


def test_workdir_other_filesystem(env):
    l, u, _ = std_dirs(env)
    t = env.mount_tmpfs("tmpfs", "8m")
    w = os.path.join(t, "work")
    os.mkdir(w)
    expect_failure(env, f"lowerdir={l},upperdir={u},workdir={w}", ["workdir"],
                   what="workdir on another filesystem than upperdir")


def test_upperdir_without_workdir(env):
    l, u, _ = std_dirs(env)
    expect_failure(env, f"lowerdir={l},upperdir={u}", ["workdir"], what="upperdir without workdir", status=2)


def test_unknown_option(env):
    l, u, w = std_dirs(env)
    expect_failure(env, f"lowerdir={l},upperdir={u},workdir={w},bogus=1", ["bogus"], what="-o bogus=1", status=2)


def test_mountpoint_missing(env):
    l, u, w = std_dirs(env)
    missing = env.path("no-mnt")
    r = run_bin(["-o", f"lowerdir={l},upperdir={u},workdir={w}", missing])
    uf.check(r.returncode != 0, "mounting on a missing mountpoint succeeded")
    uf.eq(r.returncode, 1, f"exit status for a missing mountpoint (stderr {r.stderr.strip()!r})")
    uf.check(not uf.is_mounted(missing), "mount left behind")
    uf.eq(uf.processes_mentioning(missing), [], "server processes left behind")


def test_daemon_mode_ready_on_return(env):
    l, u, w = std_dirs(env)
    uf.write(os.path.join(l, "hello"), "world")
    mnt = env.mkdir("mnt")
    r = run_bin(["-o", f"lowerdir={l},upperdir={u},workdir={w}", mnt])
    try:
        uf.eq(r.returncode, 0, f"exit status of a good mount (stderr {r.stderr.strip()!r})")
        # no polling: the mount must be usable as soon as the command returned
        e = uf.mount_entry(mnt)
        uf.check(e is not None and e[1].startswith("fuse"), f"not mounted right after return: {e}")
        uf.eq(uf.read(os.path.join(mnt, "hello")), b"world", "file read right after mounting")
        procs = uf.processes_mentioning(mnt)
        uf.check(len(procs) >= 1, "no server process found running in the background")
    finally:
        uf.umount(mnt)
    # the daemon exits after umount
    deadline = time.monotonic() + 5
    while uf.processes_mentioning(mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    uf.eq(uf.processes_mentioning(mnt), [], "server still running 5s after umount")


READONLY_OPS = [
    ("create new file", lambda m: uf.create(m + "/new")),
    ("open existing O_WRONLY", lambda m: os.close(os.open(m + "/top", os.O_WRONLY))),
    ("open existing O_RDWR", lambda m: os.close(os.open(m + "/bottom", os.O_RDWR))),
    ("truncate", lambda m: os.truncate(m + "/top", 0)),
    ("mkdir", lambda m: os.mkdir(m + "/newdir")),
    ("unlink", lambda m: os.unlink(m + "/top")),
    ("rmdir", lambda m: os.rmdir(m + "/dir")),
    ("rename", lambda m: os.rename(m + "/top", m + "/top2")),
    ("chmod", lambda m: os.chmod(m + "/top", 0o600)),
    ("chown", lambda m: os.chown(m + "/top", 1, 1)),
    ("utime", lambda m: os.utime(m + "/top", (1, 1))),
    ("setxattr", lambda m: os.setxattr(m + "/top", "user.x", b"1")),
    ("symlink", lambda m: os.symlink("top", m + "/sl")),
    ("link", lambda m: os.link(m + "/top", m + "/hl")),
    ("mkfifo", lambda m: os.mkfifo(m + "/fifo")),
]


def test_readonly_without_upperdir(env):
    def populate(lowers):
        uf.write(lowers[0] + "/top", "top-in-l0")
        uf.write(lowers[1] + "/top", "top-in-l1")
        uf.write(lowers[1] + "/bottom", "bottom")
        os.mkdir(lowers[1] + "/dir")
    ms = []
    for kind in ("union", "kernel"):
        lay = uf.layout(env, kind, 2, upper=False)
        populate(lay["lowers"])
        if kind == "union":
            ms.append(env.union(lay["lowers"], mnt=lay["mnt"]))
        else:
            ms.append(env.kernel_overlay(lay["lowers"], mnt=lay["mnt"]))
        ms[-1].lay = lay
    u, k = ms
    uf.eq(uf.read(u.p("top")), b"top-in-l0", "read-only union: content of top")
    uf.eq(uf.read(u.p("bottom")), b"bottom", "read-only union: content of bottom")
    before = [uf.snapshot(lo) for lo in u.lay["lowers"]]
    for what, op in READONLY_OPS:
        uf.oracle(uf.errname(op, k.mnt), uf.errname(op, u.mnt), "EROFS", f"read-only mount: {what}")
    uf.eq([uf.snapshot(lo) for lo in u.lay["lowers"]], before, "lower layers after write attempts")


def helper_env(env):
    """A bin dir holding a symlink named sandbox-unionfs to the binary, and an environment with it on
    PATH. mount(8) runs helpers with a fixed PATH, so the PATH lookup is done by mount.fuse3 (what
    mount(8) execs for -t fuse.*) when it is run directly, as fstab-style wrappers do."""
    bindir = env.mkdir("bin")
    os.symlink(uf.binary(), os.path.join(bindir, "sandbox-unionfs"))
    e = dict(os.environ)
    e["PATH"] = bindir + ":" + e.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return bindir, e


def check_helper_mount(r, mnt, u, what):
    uf.eq(r.returncode, 0, f"{what}: exit status (stderr {r.stderr.strip()!r})")
    ent = uf.mount_entry(mnt)
    uf.check(ent is not None, f"{what}: nothing mounted")
    uf.check(ent[1].startswith("fuse"), f"{what}: fstype {ent[1]!r} is not fuse*")
    uf.eq(uf.read(os.path.join(mnt, "f")), b"via-helper", f"{what}: lower file through the mount")
    uf.write(os.path.join(mnt, "g"), "new")
    uf.eq(uf.read(os.path.join(u, "g")), b"new", f"{what}: file written through the mount, in the upper")
    return ent


def test_mount_helper_by_name(env):
    l, u, w = std_dirs(env)
    uf.write(os.path.join(l, "f"), "via-helper")
    _, e = helper_env(env)
    mnt = env.mkdir("mnt")
    # exactly the command line mount(8) uses for `mount -t fuse.sandbox-unionfs none MNT -o ...`
    r = subprocess.run(["mount.fuse3", "none", mnt, "-o", f"rw,lowerdir={l},upperdir={u},workdir={w}",
                        "-t", "fuse.sandbox-unionfs"], env=e, capture_output=True, text=True, timeout=20)
    try:
        ent = check_helper_mount(r, mnt, u, "mount.fuse3 -t fuse.sandbox-unionfs")
        uf.eq(ent[1], "fuse.sandbox-unionfs", "fstype in mountinfo")
    finally:
        uf.umount(mnt)


def test_mount_helper_nosuid_nodev(env):
    l, u, w = std_dirs(env)
    uf.write(os.path.join(l, "f"), "via-helper")
    _, e = helper_env(env)
    mnt = env.mkdir("mnt")
    r = subprocess.run(["mount.fuse3", "none", mnt, "-o",
                        f"rw,nosuid,nodev,noexec,lowerdir={l},upperdir={u},workdir={w}",
                        "-t", "fuse.sandbox-unionfs"], env=e, capture_output=True, text=True, timeout=20)
    try:
        check_helper_mount(r, mnt, u, "mount.fuse3 with nosuid,nodev,noexec")
        with open("/proc/self/mountinfo") as f:
            flags = [ln.split()[5] for ln in f if ln.split()[4] == mnt][-1].split(",")
        for fl in ("nosuid", "nodev", "noexec"):
            uf.check(fl in flags, f"per-mount flag {fl} not applied: {flags}")
    finally:
        uf.umount(mnt)


def test_mount8_program_hash_source(env):
    l, u, w = std_dirs(env)
    uf.write(os.path.join(l, "f"), "via-helper")
    bindir, e = helper_env(env)
    mnt = env.mkdir("mnt")
    r = subprocess.run(["mount", "-t", "fuse", os.path.join(bindir, "sandbox-unionfs") + "#none", mnt, "-o",
                        f"lowerdir={l},upperdir={u},workdir={w}"], env=e, capture_output=True, text=True,
                       timeout=20)
    try:
        check_helper_mount(r, mnt, u, "mount -t fuse PROG#none")
    finally:
        uf.umount(mnt)


def test_leftmost_lowerdir_is_top(env):
    def populate(lowers, upper):
        for i, lo in enumerate(lowers):
            for name in ["a", "b", "c"][:i + 1]:
                uf.write(os.path.join(lo, name), f"{name}-from-l{i}")
        os.mkdir(os.path.join(lowers[2], "d"))
        uf.write(os.path.join(lowers[0], "d"), "d-is-a-file-in-l0")
    u, k = uf.pair(env, populate, nlowers=3)
    for name, expect in [("a", b"a-from-l0"), ("b", b"b-from-l1"), ("c", b"c-from-l2"),
                         ("d", b"d-is-a-file-in-l0")]:
        uf.oracle(uf.read(k.p(name)), uf.read(u.p(name)), expect, f"content of {name} with 3 lowers")
    uf.oracle(sorted(os.listdir(k.mnt)), sorted(os.listdir(u.mnt)), ["a", "b", "c", "d"], "listing")


if __name__ == "__main__":
    uf.main()
