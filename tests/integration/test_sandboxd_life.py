#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Sandboxes that live (sandboxctl create, exec --in, stop, rm, pause, resume, ps; docs/protocol.md version
4) end to end against a real sandboxd started through systemd-socket-activate, with non-root clients in
group "sandbox": state that persists across 100 exec --in, 10 concurrent programs in one sandbox, one pids
bound shared by all its programs, ttl and idle ttl, the daemon staying up while created sandboxes live,
another uid that cannot reach a sandbox by id or name, rm -f of a busy sandbox leaving nothing behind, and
the per-uid bounds.

The daemon runs in a mount namespace of its own where /etc/group has a group "sandbox" (the host has none,
and a test may not change /etc); clients run as uids 65534 and 65533 with that group as a supplementary
group (setpriv). Every test has its own temp dir; the runner (tests/lib/sandboxd_fixture.py) stops the
test's daemons afterwards and fails when anything is left behind (mounts, cgroups, processes, state)."""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

UNSHARE = shutil.which("unshare")
USER = 65534
OTHER = 65533
GID = 40000 + os.getpid() % 10000


def group_file(env):
    """The host's /etc/group plus "sandbox:x:GID:" (only the daemon's mount namespace sees it)."""
    with open("/etc/group") as f:
        lines = [ln for ln in f.read().splitlines() if not ln.startswith("sandbox:")]
    return env.write("group", "\n".join(lines + [f"sandbox:x:{GID}:"]) + "\n")


class LifeDaemon(df.Daemon):
    """systemd-socket-activate -l SOCK sandboxd ..., in a mount namespace where group "sandbox" exists.
    The activator is exec'd by unshare and execs the daemon: self.pid is the daemon's once activated."""

    def __init__(self, env, name="d", config="", idle=0):
        self.env, self.name, self.activate = env, name, True
        self.sock = env.path(f"{name}.sock")
        self.logpath = env.path(f"{name}.log")
        inner = [df.ACTIVATE, "-l", self.sock, "--fdname=sandboxd", df.sandboxd(), "--state-dir", env.state,
                 "--data-dir", env.data, "--idle-timeout", str(idle),
                 "--config", env.write(f"{name}.conf", config)]
        self.argv = [UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c",
                     'mount --bind "$0" /etc/group && exec "$@"', group_file(env)] + inner
        self._log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        env.daemons.append(self)
        self.wait_ready("Listening on")
        os.chmod(self.sock, 0o666)

    def ctl_as(self, uid, args, timeout=60, **kw):
        argv = self.argv_ctl(args)
        if uid is not None:
            argv = [df.SETPRIV, f"--reuid={uid}", f"--regid={uid}", f"--groups={GID}"] + argv
        return df.run(self.env, argv, timeout=timeout, **kw)

    def popen_as(self, uid, args, **kw):
        argv = [df.SETPRIV, f"--reuid={uid}", f"--regid={uid}", f"--groups={GID}"] + self.argv_ctl(args)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        p = subprocess.Popen(argv, **kw)
        self.env.procs.append(p)
        return p

    def create(self, uid, args=(), what="create"):
        r = self.ctl_as(uid, ["create"] + list(args))
        sf.eq(r.returncode, 0, f"{what}: {r}")
        sid = r.stdout.strip()
        sf.check(is_id(sid), f"{what} printed {r.stdout!r}, not an id")
        return sid

    def exec_in(self, uid, target, cmd, **kw):
        return self.ctl_as(uid, ["exec", "--in", target, "--"] + list(cmd), **kw)

    def ps(self, uid):
        r = self.ctl_as(uid, ["ps", "--json"])
        sf.eq(r.returncode, 0, f"ps --json {r}")
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise AssertionError(f"ps --json printed invalid JSON ({e}): {r.stdout!r}")

    def entry(self, uid, sid):
        found = [e for e in self.ps(uid) if e["id"] == sid]
        return found[0] if found else None


def is_id(s):
    return isinstance(s, str) and len(s) == 16 and all(c in "0123456789abcdef" for c in s)


def reap(env, p, timeout=60):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sf.kill_proc(p)
        raise sf.TestTimeout(f"{p.args} did not end within {timeout}s")
    if p in env.procs:
        env.procs.remove(p)
    return p.returncode, out, err


def prerequisites():
    why = df.prerequisites()
    if why:
        return why
    if not UNSHARE or not df.SETPRIV:
        return "no unshare or setpriv"
    return None


# ==================================================================================================

def test_state_persists_across_100_execs(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "work"])
    sf.check(d.is_sandboxd(), "the daemon was not socket-activated")
    for i in range(100):
        # Alternately by name and by id: both reach the same sandbox, whose upper keeps what they wrote.
        target = "work" if i % 2 else sid
        r = d.exec_in(USER, target, ["sh", "-c", f"echo {i} >> /var/tmp/log; wc -l < /var/tmp/log"])
        sf.eq((r.returncode, r.stdout.strip()), (0, str(i + 1)), f"exec --in #{i}: {r}")
    r = d.exec_in(USER, "work", ["sh", "-c", "tail -n 1 /var/tmp/log; id -u"])
    sf.eq((r.returncode, r.stdout), (0, "99\n0\n"), f"the last line, and the program's uid inside {r}")
    e = d.entry(USER, sid)
    sf.check(e is not None, "ps does not show the created sandbox")
    sf.eq((e["name"], e["kind"], e["state"], e["uid"], e["execs"]), ("work", "created", "running", USER, 0),
          f"its ps entry {e}")
    sf.check(e["memory_bytes"] > 0 and e["memory_max"] > 0 and e["disk_max"] > 0,
             f"ps shows no memory/disk use or bounds: {e}")
    sf.check(e["disk_bytes"] > 0, f"ps shows no disk use after /var/tmp/log was written: {e}")
    r = d.ctl_as(USER, ["rm", "work"])
    sf.check(r.returncode != 0 and "rm -f" in r.stderr, f"rm of a running sandbox without -f {r}")
    r = d.ctl_as(USER, ["stop", "work"])
    sf.eq(r.returncode, 0, f"stop {r}")
    e = d.entry(USER, sid)
    sf.eq((e["state"], e["pid"]), ("stopped", 0), f"ps after stop {e}")
    r = d.exec_in(USER, "work", ["true"])
    sf.check(r.returncode == 125 and "stopped" in r.stderr, f"exec --in a stopped sandbox {r}")
    r = d.ctl_as(USER, ["rm", "work"])
    sf.eq(r.returncode, 0, f"rm of the stopped sandbox {r}")
    sf.eq(d.entry(USER, sid), None, "ps after rm")


def test_10_concurrent_execs(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "busy"])
    t0 = time.monotonic()
    procs = [d.popen_as(USER, ["exec", "--in", "busy", "--", "sh", "-c",
                               f"echo {i} > /var/tmp/f{i}; sleep 2; cat /var/tmp/f{i}"]) for i in range(10)]
    # While they sleep, the sandbox shows 10 programs at once.
    df.wait_for(lambda: (d.entry(USER, sid) or {}).get("execs") == 10, 15, "ps showing 10 programs at once")
    for i, p in enumerate(procs):
        rc, out, err = reap(env, p)
        sf.eq((rc, out), (0, f"{i}\n"), f"concurrent exec #{i} (stderr {err!r})")
    elapsed = time.monotonic() - t0
    sf.check(elapsed < 15, f"10 programs of 2 s each took {elapsed:.1f}s: they did not run at once")
    r = d.exec_in(USER, sid, ["sh", "-c", "cat /var/tmp/f* | sort -n | tr '\\n' ' '"])
    sf.eq(r.stdout, "0 1 2 3 4 5 6 7 8 9 ", f"what the 10 programs wrote {r}")
    sf.eq(d.ctl_as(USER, ["rm", "-f", sid]).returncode, 0, "rm -f")


FORKER = r"""
import os, sys, time
n, failed = int(sys.argv[1]), 0
kids = 0
for i in range(n):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        kids += 1
    except OSError:
        failed += 1
        break
print(kids, failed, flush=True)
if sys.argv[2] == "hold":
    time.sleep(60)
"""


def test_fork_bomb_across_two_execs_hits_one_pids_bound(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "bomb", "--pids", "64"])
    # The first program holds 40 processes.
    a = d.popen_as(USER, ["exec", "--in", "bomb", "--", "python3", "-c", FORKER, "40", "hold"])
    line = df.wait_line(a.stdout, "40 0", timeout=30)
    sf.check("40 0" in line, f"the first program could not fork 40 processes: {line!r}")
    # The second forks as much as it can: with one bound for the whole sandbox it gets what is left of
    # 64 (less than 24), not a bound of its own.
    r = d.exec_in(USER, "bomb", ["python3", "-c", FORKER, "200", "nohold"], timeout=60)
    sf.eq(r.returncode, 0, f"the second program {r}")
    kids, failed = map(int, r.stdout.split())
    sf.check(failed == 1 and kids < 24, f"the second program forked {kids} processes (failed: {failed}) while "
             "the first held 40 of the sandbox's 64")
    r = d.exec_in(USER, "bomb", ["sh", "-c", "ls /proc | grep -c '^[0-9]'"])
    # Its programs' processes are in the sandbox's pid namespace; at most 64 of them.
    sf.check(r.returncode == 0 or r.returncode == 2, f"counting the processes {r}")
    sf.eq(d.ctl_as(USER, ["rm", "-f", "bomb"]).returncode, 0, "rm -f")
    rc, _, _ = reap(env, a)
    sf.eq(rc, 137, "the holding program's status after rm -f (killed)")


def test_ttl_and_idle_ttl_end_sandboxes(env):
    d = LifeDaemon(env)
    ttl = d.create(USER, ["--name", "short", "--ttl", "2"])
    idle = d.create(USER, ["--name", "idle", "--idle-ttl", "2"])
    e = d.entry(USER, ttl)
    now = time.time() * 1e6
    sf.check(e["expires_usec"] is not None and 0 < e["expires_usec"] - now <= 2.5e6,
             f"ps's expires_usec for --ttl 2 {e}")
    # A program that runs longer than the idle ttl keeps the sandbox: idle means no program.
    r = d.exec_in(USER, "idle", ["sleep", "3"])
    sf.eq(r.returncode, 0, f"a 3 s program in the sandbox with --idle-ttl 2 {r}")
    sf.check(d.entry(USER, ttl) is None, "the sandbox with --ttl 2 still exists after 3 s")
    sf.check(d.entry(USER, idle) is not None, "the sandbox with --idle-ttl 2 ended while a program ran in it")
    r = d.exec_in(USER, "short", ["true"])
    sf.check(r.returncode == 125 and "no sandbox" in r.stderr, f"exec --in a sandbox past its ttl {r}")
    df.wait_for(lambda: d.entry(USER, idle) is None, 6, "the idle sandbox to end 2 s after its last program")
    env.expect_clean("after the ttls", exclude_pids=[d.pid])


def test_ttl_cap_and_counts_for_users(env):
    d = LifeDaemon(env, config="max-ttl = 100\nmax-created-per-uid = 2\nmax-timeout = 5\n")
    r = d.ctl_as(USER, ["create", "--ttl", "101"])
    sf.check(r.returncode == 125 and "max-ttl" in r.stderr, f"--ttl above max-ttl {r}")
    r = d.ctl_as(USER, ["create", "--json", "--name", "a"])
    sf.eq(r.returncode, 0, f"create --json {r}")
    j = json.loads(r.stdout)
    sf.check(is_id(j["id"]) and j["name"] == "a", f"create --json printed {r.stdout!r}")
    a = j["id"]
    e = d.entry(USER, a)
    left = (e["expires_usec"] - time.time() * 1e6) / 1e6
    sf.check(95 < left <= 100, f"a user's sandbox without --ttl does not take max-ttl (100 s): {left:.1f}s left")
    r = d.ctl_as(USER, ["create", "--name", "a"])
    sf.check(r.returncode == 125 and "named 'a'" in r.stderr, f"a second sandbox named 'a' {r}")
    d.create(USER, ["--name", "b"])
    r = d.ctl_as(USER, ["create", "--name", "c"])
    sf.check(r.returncode == 125 and "max-created-per-uid" in r.stderr, f"a third sandbox (max 2) {r}")
    # Another uid has its own names and its own count.
    d.create(OTHER, ["--name", "a"])
    # The per-run wall clock cap applies to each program (max-timeout 5 s), not to the sandbox.
    r = d.exec_in(USER, "a", ["sleep", "30"], timeout=30)
    sf.check(r.returncode == 124 and r.elapsed < 15, f"a program past max-timeout {r}")
    r = d.exec_in(USER, "a", ["echo", "still here"])
    sf.eq((r.returncode, r.stdout), (0, "still here\n"), f"the sandbox after its program's timeout {r}")
    for uid, t in ((USER, "a"), (USER, "b"), (OTHER, "a")):
        sf.eq(d.ctl_as(uid, ["rm", "-f", t]).returncode, 0, f"rm -f {t} as {uid}")


def test_other_uid_cannot_reach_a_sandbox(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "secret"])
    r = d.exec_in(USER, sid, ["sh", "-c", "echo private > /var/tmp/data"])
    sf.eq(r.returncode, 0, f"writing in the sandbox {r}")
    for target in (sid, "secret"):
        r = d.exec_in(OTHER, target, ["cat", "/var/tmp/data"])
        sf.check(r.returncode == 125 and "no sandbox" in r.stderr and "private" not in r.stdout,
                 f"exec --in {target} by another uid {r}")
        for verb in (["stop"], ["rm", "-f"], ["pause"], ["resume"]):
            r = d.ctl_as(OTHER, verb + [target])
            sf.check(r.returncode == 125 and "no sandbox" in r.stderr, f"{verb} {target} by another uid {r}")
    sf.eq([e["id"] for e in d.ps(OTHER)], [], "the other uid's ps")
    # Its own sandbox of the same name is its own.
    other = d.create(OTHER, ["--name", "secret"])
    r = d.exec_in(OTHER, "secret", ["sh", "-c", "cat /var/tmp/data 2>/dev/null || echo none"])
    sf.eq(r.stdout, "none\n", f"the other uid's own 'secret' {r}")
    # Root sees both, and reaches either by id.
    ids = sorted(e["id"] for e in d.ps(None))
    sf.eq(ids, sorted([sid, other]), "root's ps")
    r = d.exec_in(None, sid, ["cat", "/var/tmp/data"])
    sf.eq(r.stdout, "private\n", f"root's exec --in by id {r}")
    r = d.exec_in(None, "secret", ["true"])
    sf.check(r.returncode == 125 and "several users" in r.stderr, f"root's exec --in an ambiguous name {r}")
    r = d.exec_in(USER, "secret", ["cat", "/var/tmp/data"])
    sf.eq(r.stdout, "private\n", f"the owner still reaches its sandbox {r}")
    sf.eq(d.ctl_as(USER, ["rm", "-f", "secret"]).returncode, 0, "rm -f by the owner")
    sf.eq(d.ctl_as(None, ["rm", "-f", other]).returncode, 0, "rm -f by root")


def test_rm_force_of_a_busy_sandbox_leaves_nothing(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "busy", "--net", "none"])
    p = d.popen_as(USER, ["exec", "--in", "busy", "--", "sh", "-c",
                          "setsid sleep 300 & dd if=/dev/zero of=/var/tmp/big bs=1M count=8 2>/dev/null; "
                          "echo ready; exec sleep 300"])
    df.wait_line(p.stdout, "ready")
    pause = d.ctl_as(USER, ["pause", "busy"])
    sf.eq(pause.returncode, 0, f"pause {pause}")
    sf.eq(d.entry(USER, sid)["state"], "paused", "ps after pause")
    r = d.exec_in(USER, "busy", ["true"])
    sf.check(r.returncode == 125 and "paused" in r.stderr, f"exec --in a paused sandbox {r}")
    t0 = time.monotonic()
    r = d.ctl_as(USER, ["rm", "-f", "busy"])
    sf.eq(r.returncode, 0, f"rm -f of a paused, busy sandbox {r}")
    sf.check(time.monotonic() - t0 < 10, "rm -f took more than 10 s")
    rc, _, err = reap(env, p)
    sf.eq(rc, 137, f"the program's status after rm -f (killed; stderr {err!r})")
    sf.eq(d.entry(USER, sid), None, "ps after rm -f")
    # Nothing of it is left while the daemon runs on: mounts, cgroups, processes, state and data entries.
    env.seen_ids.add(sid)
    env.expect_clean("after rm -f", exclude_pids=[d.pid])
    sf.eq([n for n in os.listdir(os.path.join(env.data, "sandboxes")) if n != "lock"]
          if os.path.isdir(os.path.join(env.data, "sandboxes")) else [], [], "data entries after rm -f")
    sf.check(d.running(), "the daemon ended")


def test_pause_freezes_programs_only(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "p"])
    p = d.popen_as(USER, ["exec", "--in", "p", "--", "sh", "-c",
                          "i=0; while :; do i=$((i+1)); echo $i > /var/tmp/n.new; mv /var/tmp/n.new /var/tmp/n; sleep 0.05; done"])
    time.sleep(0.5)
    sf.eq(d.ctl_as(USER, ["pause", sid]).returncode, 0, "pause")
    # Its files stay readable from root outside while it is frozen: the union's server is not frozen.
    pid = d.entry(USER, sid)["pid"]
    n1 = open(f"/proc/{pid}/root/var/tmp/n").read()
    time.sleep(0.6)
    n2 = open(f"/proc/{pid}/root/var/tmp/n").read()
    sf.eq(n1, n2, "the counter moved while the sandbox was paused")
    sf.eq(d.ctl_as(USER, ["resume", "p"]).returncode, 0, "resume")
    time.sleep(0.5)
    n3 = open(f"/proc/{pid}/root/var/tmp/n").read()
    sf.check(int(n3) > int(n2), f"the counter did not move after resume ({n2!r} -> {n3!r})")
    sf.eq(d.ctl_as(USER, ["stop", "-t", "5", "p"]).returncode, 0, "stop")
    rc, _, _ = reap(env, p)
    sf.check(rc in (143, 137), f"the program's status after stop: {rc}")
    sf.eq(d.ctl_as(USER, ["rm", "p"]).returncode, 0, "rm of the stopped sandbox")


def test_daemon_stays_while_sandboxes_live(env):
    d = LifeDaemon(env, idle=1)
    sid = d.create(USER, ["--name", "keep"])
    time.sleep(2.5)
    sf.check(d.running(), "the daemon exited for idleness while a created sandbox lived")
    r = d.exec_in(USER, "keep", ["echo", "ok"])
    sf.eq(r.stdout, "ok\n", f"exec --in after 2.5 s without clients {r}")
    sf.eq(d.ctl_as(USER, ["rm", "-f", sid]).returncode, 0, "rm -f")
    sf.eq(d.wait_exit(10), 0, f"the daemon's idle exit once the sandbox is gone (log {d.log()[-500:]!r})")


def test_kill_9_restart_readopts_5_sandboxes(env):
    d = LifeDaemon(env)
    ids = [d.create(USER, ["--name", f"s{i}", "--ttl", "600", "--memory", "256m", "--pids", "256", "--disk", "1g"]) for i in range(5)]
    for i, sid in enumerate(ids):
        r = d.exec_in(USER, sid, ["sh", "-c", f"echo state-{i} > /var/tmp/state; setsid sleep 600 </dev/null "
                                               ">/dev/null 2>&1 & sleep 0.3"])
        sf.eq(r.returncode, 0, f"exec --in #{i} before the crash {r}")
    # A one-shot sandbox running at the crash is not adoptable: it is cleaned up as before.
    oneshot = d.popen_as(USER, ["exec", "--", "sh", "-c", "echo up; exec sleep 600"])
    df.wait_line(oneshot.stdout, "up")
    before = {e["id"]: e for e in d.ps(None)}
    inits = [before[sid]["pid"] for sid in ids]
    d.kill()
    rc, _, _ = reap(env, oneshot)
    sf.check(rc != 0, f"the one-shot client's status when the daemon died: {rc}")
    sf.check(all(df.alive(p) for p in inits), "a created sandbox's init died with the daemon")
    d2 = LifeDaemon(env, name="d2")
    for i, sid in enumerate(ids):
        target = sid if i % 2 else f"s{i}"
        r = d2.exec_in(USER, target, ["sh", "-c", "cat /var/tmp/state; pgrep -c -x sleep || "
                                                  "grep -l sleep /proc/[0-9]*/cmdline | wc -l"])
        sf.eq((r.returncode, r.stdout.splitlines()[0] if r.stdout else ""), (0, f"state-{i}"),
              f"exec --in {target} after the restart {r}")
    after = {e["id"]: e for e in d2.ps(USER)}
    sf.eq(sorted(after), sorted(ids), "ps after the restart: the 5 created sandboxes, not the one-shot one")
    for sid in ids:
        e = after[sid]
        sf.eq((e["pid"], e["state"]), (before[sid]["pid"], "running"), f"{sid} after the restart")
        sf.check(abs(e["expires_usec"] - before[sid]["expires_usec"]) < 1000, f"{sid}'s ttl after the restart: "
                 f"{before[sid]['expires_usec']} -> {e['expires_usec']}")
    # The other uid still cannot reach them; the owner can stop and remove them.
    r = d2.exec_in(OTHER, "s0", ["true"])
    sf.check(r.returncode == 125 and "no sandbox" in r.stderr, f"another uid after the restart {r}")
    sf.eq(d2.ctl_as(USER, ["stop", "s0"]).returncode, 0, "stop of an adopted sandbox")
    r = d2.ctl_as(USER, ["rm", "-f"] + ids)
    sf.eq(r.returncode, 0, f"rm -f of the adopted sandboxes {r}")
    sf.eq(d2.ps(None), [], "ps after rm")
    env.expect_clean("after rm -f of the adopted sandboxes", exclude_pids=[d2.pid])


def test_sigterm_leaves_created_sandboxes_for_the_next_daemon(env):
    d = LifeDaemon(env)
    sid = d.create(USER, ["--name", "keep"])
    sf.eq(d.exec_in(USER, "keep", ["sh", "-c", "echo x > /var/tmp/x"]).returncode, 0, "exec --in")
    sf.eq(d.stop(), 0, f"the daemon's exit status after SIGTERM (log {d.log()[-400:]!r})")
    sf.check("left running for the next sandboxd" in d.log(), f"the daemon's log: {d.log()[-400:]!r}")
    d2 = LifeDaemon(env, name="d2")
    r = d2.exec_in(USER, "keep", ["cat", "/var/tmp/x"])
    sf.eq((r.returncode, r.stdout), (0, "x\n"), f"exec --in after a restart by SIGTERM {r}")
    sf.eq(d2.ctl_as(USER, ["rm", "-f", sid]).returncode, 0, "rm -f")


def test_unadoptable_records_are_cleaned(env):
    d = LifeDaemon(env)
    good = d.create(USER, ["--name", "good"])
    bad = d.create(USER, ["--name", "bad"])
    d.kill()
    # A record that does not decode: the sandbox is ended and removed, the other one adopted.
    path = os.path.join(env.state, bad, "record")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        data[8:12] = b"\xff\xff\xff\xff"
        f.seek(0)
        f.write(data)
    d2 = LifeDaemon(env, name="d2")
    r = d2.exec_in(USER, "good", ["true"])
    sf.eq(r.returncode, 0, f"the good sandbox after the restart {r}")
    r = d2.exec_in(USER, "bad", ["true"])
    sf.check(r.returncode == 125 and "no sandbox" in r.stderr, f"the sandbox with a bad record {r}")
    sf.check(f"Sandbox {bad}: cannot adopt it" in d2.log(), f"the daemon's log: {d2.log()[-600:]!r}")
    env.seen_ids.update([good, bad])
    df.wait_for(lambda: not os.path.exists(os.path.join(env.state, bad)), 10, "the bad sandbox's removal")
    sf.eq(d2.ctl_as(USER, ["rm", "-f", "good"]).returncode, 0, "rm -f")
    env.expect_clean("after the restart with a bad record", exclude_pids=[d2.pid])


def test_exec_in_options_and_errors(env):
    d = LifeDaemon(env)
    d.create(USER, ["--name", "o", "--memory", "256m"])
    r = d.ctl_as(USER, ["exec", "--in", "o", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "--",
                        "sh", "-c", "echo $FOO $(pwd) $(id -un)"])
    sf.eq((r.returncode, r.stdout), (0, "bar /tmp nobody\n"), f"exec --in -e -w -u {r}")
    r = d.ctl_as(USER, ["exec", "--in", "o", "--memory", "1g", "--", "true"])
    sf.check(r.returncode == 125 and "exec --in takes only" in r.stderr, f"exec --in --memory {r}")
    r = d.ctl_as(USER, ["exec", "--in", "no-such", "--", "true"])
    sf.check(r.returncode == 125 and "no sandbox 'no-such'" in r.stderr, f"exec --in an unknown name {r}")
    r = d.ctl_as(USER, ["create", "--", "sh"])
    sf.check(r.returncode == 125 and "create takes no a command" in r.stderr, f"create with a command {r}")
    r = d.ctl_as(USER, ["create", "--name", "0123456789abcdef"])
    sf.check(r.returncode == 125 and "--name" in r.stderr, f"a name that is an id {r}")
    r = d.exec_in(USER, "o", ["sh", "-c", "exit 7"])
    sf.eq(r.returncode, 7, f"exec --in's exit status {r}")
    # What a program leaves in its session ends with it; a daemon with a session of its own stays.
    r = d.exec_in(USER, "o", ["sh", "-c", "sleep 300 & setsid sleep 301 </dev/null >/dev/null 2>&1 & sleep 1; echo bg"])
    sf.eq((r.returncode, r.stdout), (0, "bg\n"), f"a program that leaves processes behind {r}")
    r = d.exec_in(USER, "o", ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])
    sf.check("sleep 301" in r.stdout and "sleep 300" not in r.stdout,
             f"after the program: its session's leftovers killed, the daemon kept: {r.stdout!r}")
    r = d.ctl_as(USER, ["rm", "-f", "o"])
    sf.eq(r.returncode, 0, f"rm -f {r}")


if __name__ == "__main__":
    sf.main(globals(), make_env=df.DaemonEnv,
            header=f"# sandboxd under test: {df.sandboxd()}; sandboxctl: {df.sandboxctl()}",
            check_prerequisites=prerequisites, after_pass=df._after_pass, on_failure=df.print_daemon_logs)
