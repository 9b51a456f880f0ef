#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandboxctl cp (docs/protocol.md COPY) end to end against a real socket-activated sandboxd, with non-root
clients in group "sandbox" (the set-up of test_sandboxd_life.py): a tree with modes, symlinks, a hard link
and a 1 GiB file goes into a created sandbox and comes back the same (and exec --in sees it there); tar
streams on stdin and stdout ('-') are what GNU tar reads and writes; the client reads and writes host files
with its own rights (a file it may not read is refused by the client, the daemon never opens it); what
comes in counts against the sandbox's disk bound; another uid cannot copy into or out of the sandbox; a
paused sandbox is refused; a sandbox adopted by the next daemon (kill -9 of the first) takes copies.

Environment as test_sandboxd_life.py (SANDBOXD, SANDBOXCTL, SANDBOX_UNIONFS). Root only (exit 77)."""

import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import test_copy as tc  # noqa: E402
import test_sandboxd_life as life  # noqa: E402

USER, OTHER = life.USER, life.OTHER


def rm_box(d):
    """Created sandboxes outlive their daemon: remove the test's."""
    r = d.ctl_as(USER, ["rm", "-f", "box"])
    sf.eq(r.returncode, 0, f"rm -f box: {r}")


def user_dir(env, *p):
    """A directory of the test's that USER owns (the client writes there with its own rights)."""
    d = env.mkdir(*p)
    os.chown(d, USER, USER)
    return d


def test_round_trip(env):
    d = life.LifeDaemon(env)
    d.create(USER, ["--name", "box"])
    t = tc.make_tree(env)
    os.remove(os.path.join(t, "setuid"))  # the client is not root: it would not get the bit back anyway
    for dirpath, dirs, files in os.walk(env.path("src")):
        for n in dirs + files + [""]:
            os.lchown(os.path.join(dirpath, n), USER, USER)
    before = tc.describe(t)
    r = d.ctl_as(USER, ["cp", t, "box:/root/"], timeout=300)
    sf.eq(r.returncode, 0, f"cp in: {r}")
    r = d.exec_in(USER, "box", ["sh", "-c", "stat -c '%a %s' /root/tree/exec /root/tree/big; readlink /root/tree/rel-link"])
    sf.eq((r.returncode, r.stdout), (0, "751 18\n644 1073741824\nexec\n"), f"exec --in sees the copy: {r}")
    out = user_dir(env, "out")
    r = d.ctl_as(USER, ["cp", "box:/root/tree", os.path.join(out, "back")], timeout=300)
    sf.eq(r.returncode, 0, f"cp out: {r}")
    after = tc.describe(os.path.join(out, "back"))
    sf.eq(sorted(after), sorted(before), "entries after the round trip")
    for k in before:
        sf.eq(after[k], before[k], f"'{k}' after the round trip")
    st = os.lstat(os.path.join(out, "back", "private"))
    sf.eq((st.st_uid, st.st_gid), (USER, USER), "files that come out belong to the client")
    rm_box(d)


def test_tar_streams(env):
    d = life.LifeDaemon(env)
    d.create(USER, ["--name", "box"])
    env.write("src/d/f", "hello\n")
    tar = subprocess.run(["tar", "-C", env.path("src"), "-cf", "-", "d"], check=True, stdout=subprocess.PIPE).stdout
    r = d.ctl_as(USER, ["cp", "-", "box:/root"], input=tar, text=False)
    sf.eq(r.returncode, 0, f"cp - box:/root: {r}")
    r = d.ctl_as(USER, ["cp", "box:/root/d", "-"], text=False)
    sf.eq(r.returncode, 0, f"cp box:/root/d -: {r}")
    listing = subprocess.run(["tar", "-tvf", "-"], input=r.stdout, check=True, stdout=subprocess.PIPE, text=False)
    sf.check(b"d/f" in listing.stdout, f"GNU tar reads it: {listing.stdout!r}")
    r = d.ctl_as(USER, ["cp", "-", "box:/root"], input=b"not a tar at all" * 100, text=False)
    sf.check(r.returncode != 0 and r.stderr.strip(), f"garbage is refused with a message: {r}")
    rm_box(d)


def test_host_rights_are_the_clients(env):
    d = life.LifeDaemon(env)
    d.create(USER, ["--name", "box"])
    secret = env.write("secret", "root only\n", mode=0o600)
    r = d.ctl_as(USER, ["cp", secret, "box:/root/"])
    sf.check(r.returncode != 0 and "Permission denied" in r.stderr, f"the client cannot read it: {r}")
    r = d.exec_in(USER, "box", ["sh", "-c", "test ! -e /root/secret"])
    sf.eq(r.returncode, 0, f"nothing reached the sandbox: {r}")
    rootdir = env.mkdir("rootonly", mode=0o755)
    r = d.ctl_as(USER, ["cp", "box:/etc/hostname", os.path.join(rootdir, "x")])
    sf.check(r.returncode != 0 and not os.path.exists(os.path.join(rootdir, "x")),
             f"the client cannot write where it may not: {r}")
    rm_box(d)


def test_disk_bound(env):
    d = life.LifeDaemon(env)
    d.create(USER, ["--name", "box", "--disk", "32M"])
    big = env.path("src", "big")
    os.makedirs(os.path.dirname(big))
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    os.chmod(big, 0o644)
    os.chmod(env.path("src"), 0o755)
    r = d.ctl_as(USER, ["cp", big, "box:/root/"], timeout=120)
    sf.eq(r.returncode, 1, f"100 MiB into a 32 MiB sandbox: {r}")
    sf.check("quota" in r.stderr.lower() or "space" in r.stderr.lower(), f"the message names the bound: {r.stderr!r}")
    rm_box(d)


def test_other_uid_and_paused(env):
    d = life.LifeDaemon(env)
    sid = d.create(USER, ["--name", "box"])
    env.write("f", "x\n", mode=0o644)
    for target in (sid, "box"):
        r = d.ctl_as(OTHER, ["cp", env.path("f"), f"{target}:/root/"])
        sf.check(r.returncode != 0 and "no sandbox" in r.stderr, f"another uid, into {target}: {r}")
        r = d.ctl_as(OTHER, ["cp", f"{target}:/etc/hostname", "-"])
        sf.check(r.returncode != 0 and "no sandbox" in r.stderr, f"another uid, out of {target}: {r}")
    r = d.ctl_as(USER, ["pause", "box"])
    sf.eq(r.returncode, 0, f"pause: {r}")
    r = d.ctl_as(USER, ["cp", env.path("f"), "box:/root/"])
    sf.check(r.returncode != 0 and "paused" in r.stderr, f"a paused sandbox: {r}")
    r = d.ctl_as(USER, ["resume", "box"])
    sf.eq(r.returncode, 0, f"resume: {r}")
    r = d.ctl_as(USER, ["cp", env.path("f"), "box:/root/"])
    sf.eq(r.returncode, 0, f"after resume: {r}")
    r = d.ctl_as(USER, ["cp", env.path("f"), "box:relative"])
    sf.eq(r.returncode, 125, f"a relative path in the sandbox is a usage error: {r}")
    rm_box(d)



def test_after_daemon_restart(env):
    """A sandbox the next daemon adopted (kill -9 of the first) takes copies both ways."""
    d = life.LifeDaemon(env)
    d.create(USER, ["--name", "box"])
    env.write("f", "before\n", mode=0o644)
    sf.eq(d.ctl_as(USER, ["cp", env.path("f"), "box:/root/f"]).returncode, 0, "cp before the restart")
    d.kill()
    d2 = life.LifeDaemon(env, name="d2")
    env.write("g", "after\n", mode=0o644)
    r = d2.ctl_as(USER, ["cp", env.path("g"), "box:/root/g"])
    sf.eq(r.returncode, 0, f"cp into the adopted sandbox: {r}")
    r = d2.ctl_as(USER, ["cp", "box:/root/.", "-"], text=False)
    sf.eq(r.returncode, 0, f"cp out of the adopted sandbox: {r}")
    names = subprocess.run(["tar", "-tf", "-"], input=r.stdout, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split()
    sf.check("./f" in names and "./g" in names, f"both files come out: {names!r}")
    rm_box(d2)


if __name__ == "__main__":
    sf.main(globals(), make_env=df.DaemonEnv,
            header=f"# sandboxd under test: {df.sandboxd()}; sandboxctl: {df.sandboxctl()}",
            check_prerequisites=life.prerequisites, after_pass=df._after_pass, on_failure=df.print_daemon_logs)
