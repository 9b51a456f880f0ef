#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Volumes (sandboxctl volume create|ls|rm, --volume NAME:/PATH[:ro] on create and exec; docs/protocol.md
version 5) end to end against a real sandboxd started through systemd-socket-activate, with non-root clients
in group "sandbox" (the set-up of test_sandboxd_life.py): data that survives one-shot and created sandboxes
with its owners kept across id ranges, the quota (a write past it fails inside, what was under it stays), a
read-only mount, another uid that cannot see, mount or remove a volume (answered as a missing one), rm of a
volume in use refused, the lock of a created sandbox's volume kept across kill -9 of the daemon, and bad
names, sizes, paths and counts refused with the limit named. Each test ends with nothing left on the host
(the runner checks mounts, cgroups and processes); loop devices of this test's volumes are checked here."""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import test_sandboxd_life as life  # noqa: E402

USER, OTHER = life.USER, life.OTHER


def volumes(d, uid):
    r = d.ctl_as(uid, ["volume", "ls", "--json"])
    sf.eq(r.returncode, 0, f"volume ls --json {r}")
    try:
        return {(v["uid"], v["name"]): v for v in json.loads(r.stdout)}
    except ValueError as e:
        raise AssertionError(f"volume ls --json printed invalid JSON ({e}): {r.stdout!r}")


def vcreate(d, uid, name, *args):
    r = d.ctl_as(uid, ["volume", "create"] + list(args) + [name])
    sf.eq(r.returncode, 0, f"volume create {name} {r}")


def loops_of(env):
    """Loop devices backed by a file of this test's data directory."""
    found = []
    for f in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(f) as fh:
                if fh.read().startswith(env.data):
                    found.append(f)
        except OSError:
            pass
    return found


def no_loops_left(env):
    df.wait_for(lambda: not loops_of(env), 10, "the volumes' loop devices to go")


def run_in(d, uid, vols, cmd, **kw):
    args = ["exec"]
    for v in vols:
        args += ["--volume", v]
    return d.ctl_as(uid, args + ["--", "sh", "-c", cmd], **kw)


def volume_prerequisites():
    """What volumes need besides the daemon's prerequisites: mke2fs and loop devices."""
    if not any(os.access(p, os.X_OK) for p in ("/usr/sbin/mke2fs", "/sbin/mke2fs")):
        return "no mke2fs (e2fsprogs): volumes are ext4 file systems"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control: volumes are mounted through loop devices"
    return None


def prerequisites():
    return life.prerequisites() or volume_prerequisites()


# ==================================================================================================

def test_data_survives_sandboxes_with_its_owners(env):
    d = life.LifeDaemon(env)
    vcreate(d, USER, "data", "--size", "64m")
    v = volumes(d, USER)[(USER, "data")]
    sf.eq((v["size"], v["in_use_by"]), (64 << 20, None), f"the new volume {v}")
    # A one-shot sandbox writes, as root inside and as uid 1000 inside.
    r = run_in(d, USER, ["data:/data"], "echo one > /data/f && mkdir /data/u && chown 1000:1001 /data/u && "
               "echo two > /data/u/g && chown 1000:1001 /data/u/g && stat -c '%u:%g' /data/f")
    sf.eq((r.returncode, r.stdout), (0, "0:0\n"), f"writing in a one-shot sandbox {r}")
    # A created sandbox (another id range) sees it, with the same owners inside, and adds to it.
    sid = d.create(USER, ["--name", "c1", "--volume", "data:/mnt/vol"])
    v = volumes(d, USER)[(USER, "data")]
    sf.eq(v["in_use_by"], sid, f"volume ls while the created sandbox mounts it {v}")
    r = d.exec_in(USER, "c1", ["sh", "-c", "cat /mnt/vol/f /mnt/vol/u/g; stat -c '%u:%g' /mnt/vol/f /mnt/vol/u/g; "
                                            "echo three >> /mnt/vol/f"])
    sf.eq((r.returncode, r.stdout), (0, "one\ntwo\n0:0\n1000:1001\n"), f"reading in a created sandbox {r}")
    # Host users other than root never reach the files: the store is root's.
    r = df.run(env, [df.SETPRIV, f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "ls",
                     os.path.join(env.data, "volumes")])
    sf.check(r.returncode != 0, f"uid {USER} lists the volume store on the host {r}")
    sf.eq(d.ctl_as(USER, ["rm", "-f", "c1"]).returncode, 0, "rm -f c1")
    # A later sandbox of either kind sees everything.
    r = run_in(d, USER, ["data:/data"], "cat /data/f /data/u/g; stat -c '%u:%g' /data/u")
    sf.eq((r.returncode, r.stdout), (0, "one\nthree\ntwo\n1000:1001\n"), f"a later one-shot sandbox {r}")
    sf.eq(volumes(d, USER)[(USER, "data")]["in_use_by"], None, "volume ls once no sandbox mounts it")
    sf.check(volumes(d, USER)[(USER, "data")]["used"] > 0, "volume ls: used is 0")
    sf.eq(d.ctl_as(USER, ["volume", "rm", "data"]).returncode, 0, "volume rm")
    sf.eq(volumes(d, USER), {}, "volume ls after rm")
    no_loops_left(env)


def test_quota_is_enforced_and_data_under_it_survives(env):
    d = life.LifeDaemon(env)
    vcreate(d, USER, "small", "--size", "32m")
    r = run_in(d, USER, ["small:/v"], "head -c 4194304 /dev/urandom > /v/keep && sync && md5sum < /v/keep && "
               "df -k /v | tail -n 1")
    sf.eq(r.returncode, 0, f"4 MiB into a 32 MiB volume {r}")
    keep_sum = r.stdout.splitlines()[0]
    size_k = int(r.stdout.splitlines()[1].split()[1])
    sf.check(16 * 1024 < size_k <= 32 * 1024, f"df inside shows the volume's size, not the host's: {r.stdout!r}")
    r = run_in(d, USER, ["small:/v"], "dd if=/dev/zero of=/v/big bs=1M count=64 conv=fsync 2>&1; echo rc=$?")
    sf.check("rc=0" not in r.stdout and "No space left on device" in r.stdout,
             f"64 MiB into a 32 MiB volume must fail with ENOSPC inside {r}")
    r = run_in(d, USER, ["small:/v"], "md5sum < /v/keep; rm /v/big; echo more > /v/more && cat /v/more")
    sf.eq((r.returncode, r.stdout), (0, f"{keep_sum}\nmore\n"),
          f"after the failed write: the data under the quota intact, and room again once freed {r}")
    r = d.ctl_as(USER, ["volume", "ls"])
    sf.check(r.returncode == 0 and "small" in r.stdout and "32 MiB" in r.stdout, f"volume ls {r}")
    sf.eq(d.ctl_as(USER, ["volume", "rm", "small"]).returncode, 0, "volume rm")
    no_loops_left(env)


def test_readonly_mount_refuses_writes(env):
    d = life.LifeDaemon(env)
    vcreate(d, USER, "ro", "--size", "16m")
    sf.eq(run_in(d, USER, ["ro:/v"], "echo hi > /v/f").returncode, 0, "writing read-write")
    r = run_in(d, USER, ["ro:/v:ro"], "cat /v/f; echo x > /v/g 2>&1 || echo refused; touch /v/f 2>&1 || echo refused")
    sf.check(r.stdout.startswith("hi\n") and r.stdout.count("refused") == 2 and "Read-only" in r.stdout,
             f"a read-only volume is read, not written {r}")
    r = run_in(d, USER, ["ro:/v"], "ls /v | tr '\\n' ' '")
    sf.eq(r.stdout.split(), ["f", "lost+found"], f"nothing was written through :ro {r}")
    sf.eq(d.ctl_as(USER, ["volume", "rm", "ro"]).returncode, 0, "volume rm")


def test_other_uid_cannot_see_use_or_remove_it(env):
    d = life.LifeDaemon(env)
    vcreate(d, USER, "secret", "--size", "16m")
    sf.eq(run_in(d, USER, ["secret:/v"], "echo private > /v/f").returncode, 0, "the owner writes")
    sf.eq(volumes(d, OTHER), {}, "another uid's volume ls")
    # Every request of the other uid is answered exactly as for a volume that does not exist.
    for args in (["exec", "--volume", "{}:/v", "--", "cat", "/v/f"], ["create", "--volume", "{}:/v"],
                 ["volume", "rm", "{}"]):
        mine = d.ctl_as(OTHER, [a.format("secret") for a in args])
        none = d.ctl_as(OTHER, [a.format("nosuch") for a in args])
        sf.check(mine.returncode == 125 and "private" not in mine.stdout, f"{args} by another uid {mine}")
        sf.eq((mine.returncode, mine.stderr.replace("secret", "NAME")),
              (none.returncode, none.stderr.replace("nosuch", "NAME")),
              f"{args}: another uid's volume answers as a missing one")
        sf.check("no volume" in mine.stderr, f"{args}: the message {mine.stderr!r}")
    # Its own volume of the same name is its own.
    vcreate(d, OTHER, "secret", "--size", "16m")
    r = run_in(d, OTHER, ["secret:/v"], "cat /v/f 2>/dev/null || echo none")
    sf.eq(r.stdout, "none\n", f"the other uid's own 'secret' {r}")
    # Root sees both, and removes another uid's with --uid; a user may not.
    sf.eq(sorted(volumes(d, None)), [(OTHER, "secret"), (USER, "secret")], "root's volume ls")
    r = d.ctl_as(OTHER, ["volume", "rm", "--uid", str(USER), "secret"])
    sf.check(r.returncode == 125 and "only root" in r.stderr, f"volume rm --uid by a user {r}")
    sf.eq(d.ctl_as(None, ["volume", "rm", "--uid", str(OTHER), "secret"]).returncode, 0, "root's volume rm --uid")
    r = run_in(d, USER, ["secret:/v"], "cat /v/f")
    sf.eq(r.stdout, "private\n", f"the owner's volume is untouched {r}")
    sf.eq(sorted(volumes(d, None)), [(USER, "secret")], "root's volume ls after rm --uid")
    sf.eq(d.ctl_as(USER, ["volume", "rm", "secret"]).returncode, 0, "volume rm")


def test_in_use_refuses_rm_and_a_second_mount(env):
    d = life.LifeDaemon(env)
    vcreate(d, USER, "busy", "--size", "16m")
    sid = d.create(USER, ["--name", "holder", "--volume", "busy:/v"])
    r = d.ctl_as(USER, ["volume", "rm", "busy"])
    sf.check(r.returncode == 125 and f"in use by sandbox {sid}" in r.stderr, f"volume rm while in use {r}")
    r = run_in(d, USER, ["busy:/v"], "true")
    sf.check(r.returncode == 125 and f"in use by sandbox {sid}" in r.stderr, f"a second mount {r}")
    r = d.ctl_as(USER, ["create", "--volume", "busy:/w"])
    sf.check(r.returncode == 125 and f"in use by sandbox {sid}" in r.stderr, f"a second created sandbox {r}")
    sf.eq(d.ctl_as(USER, ["stop", "holder"]).returncode, 0, "stop")
    # Stopped: its sandbox is gone, the volume is free (the entry stays until rm).
    df.wait_for(lambda: volumes(d, USER)[(USER, "busy")]["in_use_by"] is None, 10, "the volume's release at stop")
    sf.eq(run_in(d, USER, ["busy:/v"], "true").returncode, 0, "a mount once the holder stopped")
    sf.eq(d.ctl_as(USER, ["rm", "holder"]).returncode, 0, "rm")
    sf.eq(d.ctl_as(USER, ["volume", "rm", "busy"]).returncode, 0, "volume rm once free")
    no_loops_left(env)


def test_restart_keeps_volumes_and_a_created_sandboxs_lock(env):
    d = life.LifeDaemon(env)
    vcreate(d, USER, "keep", "--size", "16m")
    vcreate(d, USER, "spare", "--size", "16m")
    sid = d.create(USER, ["--name", "c", "--volume", "keep:/v"])
    sf.eq(d.exec_in(USER, "c", ["sh", "-c", "echo before > /v/f"]).returncode, 0, "writing")
    d.kill()
    d2 = life.LifeDaemon(env, name="d2")
    vs = volumes(d2, USER)
    sf.eq(sorted(vs), [(USER, "keep"), (USER, "spare")], "volume ls after kill -9 and a restart")
    sf.eq(vs[(USER, "keep")]["in_use_by"], sid, "the adopted sandbox still holds its volume")
    r = d2.ctl_as(USER, ["volume", "rm", "keep"])
    sf.check(r.returncode == 125 and f"in use by sandbox {sid}" in r.stderr, f"volume rm after the restart {r}")
    r = run_in(d2, USER, ["keep:/v"], "true")
    sf.check(r.returncode == 125 and f"in use by sandbox {sid}" in r.stderr, f"a second mount after the restart {r}")
    r = d2.exec_in(USER, "c", ["sh", "-c", "cat /v/f; echo after >> /v/f"])
    sf.eq((r.returncode, r.stdout), (0, "before\n"), f"exec --in the adopted sandbox {r}")
    sf.eq(d2.ctl_as(USER, ["rm", "-f", "c"]).returncode, 0, "rm -f")
    r = run_in(d2, USER, ["keep:/v"], "cat /v/f")
    sf.eq((r.returncode, r.stdout), (0, "before\nafter\n"), f"the volume after the adopted sandbox went {r}")
    sf.eq(d2.ctl_as(USER, ["volume", "rm", "keep", "spare"]).returncode, 0, "volume rm")
    no_loops_left(env)


def test_bad_names_sizes_paths_and_counts(env):
    d = life.LifeDaemon(env, config="max-volumes-per-uid = 2\nmax-volume-size = 64M\n")

    def refused(args, want, uid=USER):
        r = d.ctl_as(uid, args)
        sf.check(r.returncode == 125 and want in r.stderr, f"{args}: want 125 and {want!r} {r}")

    for bad in ("-x", "a/b", "..", ".hidden", "x" * 65, "a b"):
        refused(["volume", "create", "--", bad], "not a volume name")
    refused(["volume", "create", "--size", "1m", "v"], "from 16M to 16T")
    refused(["volume", "create", "--size", "128m", "v"], "max-volume-size")
    refused(["volume", "create", "--size", "lots", "v"], "--size")
    vcreate(d, USER, "a", "--size", "16m")
    refused(["volume", "create", "a"], "already")
    vcreate(d, USER, "b", "--size", "16m")
    refused(["volume", "create", "--size", "16m", "c"], "max-volumes-per-uid = 2")
    vcreate(d, None, "c", "--size", "128m")  # root has no cap
    sf.eq(volumes(d, None)[(0, "c")]["size"], 128 << 20, "root's volume of 128M")
    for dest in ("v", "/a/../b", "/", "/./x"):
        refused(["exec", "--volume", f"a:{dest}", "--", "true"], "absolute")
    refused(["exec", "--volume", "a", "--", "true"], "NAME:/PATH")
    refused(["exec", "--volume", "nosuch:/v", "--", "true"], "no volume 'nosuch'")
    refused(["exec", "--volume", "a:/v", "--volume", "a:/w", "--", "true"], "given twice")
    refused(["exec"] + sum((["--volume", f"a{i}:/v{i}"] for i in range(9)), []) + ["--", "true"], "at most 8")
    sid = d.create(USER, ["--name", "x"])
    refused(["exec", "--in", "x", "--volume", "a:/v", "--", "true"], "give --volume to create")
    sf.eq(d.ctl_as(USER, ["rm", "-f", sid]).returncode, 0, "rm -f")
    refused(["volume", "rm", "nosuch"], "no volume 'nosuch'")
    # A volume made at a destination that does not exist in the image: made there.
    r = run_in(d, USER, ["a:/new/dir/v"], "echo ok > /new/dir/v/f && cat /new/dir/v/f")
    sf.eq((r.returncode, r.stdout), (0, "ok\n"), f"a destination made in the sandbox {r}")
    sf.eq(d.ctl_as(USER, ["volume", "rm", "a", "b"]).returncode, 0, "volume rm a b")
    sf.eq(d.ctl_as(None, ["volume", "rm", "c"]).returncode, 0, "volume rm c")
    sf.eq(volumes(d, None), {}, "no volume left")


if __name__ == "__main__":
    sf.main(globals(), make_env=df.DaemonEnv,
            header=f"# sandboxd under test: {df.sandboxd()}; sandboxctl: {df.sandboxctl()}",
            check_prerequisites=prerequisites, after_pass=df._after_pass, on_failure=df.print_daemon_logs)
