#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandboxd's pool of sandboxes made ahead (sandboxd/pool.h), end to end, as root, no mocks: real daemons
through systemd-socket-activate, a client other than root (uid 65534 in a group the configuration allows).

- a pooled sandbox is indistinguishable from a fresh one: the same request through a daemon without a pool
  and one whose pool holds its shape sees the same ids, hostname, environment, mounts, resource limits,
  cgroup limits (read from the host), addresses and an empty /tmp, but its own id range;
- nothing of one pooled request is visible to the next (files in /tmp and /dev/shm, a SysV message queue,
  the hostname, a process left behind, the id range);
- the budget: never more held sandboxes than pool-size; none at all when pool-memory is too small for one;
- the pool shrinks to nothing after pool-idle-timeout, and the daemon's idle exit still comes;
- a held sandbox whose init was killed is never handed out;
- shapes are learned from requests (the second request of a shape fills the pool, the third takes one);
- a held sandbox older than pool-max-age is ended and replaced, and the request after that gets the new one;
- a create takes a pooled sandbox too, and it behaves as a fresh created one: what exec --in sees in it is the
  same but for the id range, ps lists it, rm removes it;
and, after every test, that nothing is left behind (tests/lib/sandboxd_fixture.py)."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

NOBODY = 65534
GROUP = 47317  # a gid of this test's own (no /etc entry needed): the configuration allows it
POOLED = "started (a sandbox of the pool)"

# What a program sees, on stdout, then READY; it then waits for its stdin to close.
SEES = r"""
echo "ppid-is-outside=$([ "$PPID" = 0 ] && echo yes || echo no)"
echo "pid=$$"
echo "id=$(id)"
echo "hostname=$(hostname)"
echo "pwd=$(pwd)"
env | sort | sed 's/^/env: /'
sed 's/^/uid_map: /' /proc/self/uid_map
sed 's/^/gid_map: /' /proc/self/gid_map
sed 's/^/cgroup: /' /proc/self/cgroup
awk '{ sep = 0; for (i = 1; i <= NF; i++) if ($i == "-") sep = i; print "mount:", $5, $(sep + 1), $(sep + 2) }' \
    /proc/self/mountinfo
ulimit -a | sed 's/^/ulimit: /'
sed 's/^/addr: /' /proc/net/fib_trie
ls -A /tmp | sed 's/^/ls-tmp: /'
ls -A /dev/shm | sed 's/^/ls-shm: /'
ipcs -q 2>/dev/null | sed 's/^/ipc: /'
ps -e -o pid=,args= 2>/dev/null | sed 's/^/ps: /'
echo READY
read x || true
"""


def daemon(env, name, pool, extra_conf="", idle=30):
    conf = f"allow-groups = {GROUP}\n"
    conf += f"pool-size = {pool}\n" + extra_conf
    d = df.Daemon(env, name=name, idle=idle, config=conf)
    # The socket as a service's would be: root and the group may connect.
    os.chown(d.sock, 0, GROUP)
    os.chmod(d.sock, 0o660)
    # Activated now (the pool fills from the daemon's start), by a request that starts no sandbox.
    r = d.ctl(["version"])
    sf.eq(r.returncode, 0, f"sandboxctl version {r}")
    return d


def ctl_argv(d, args):
    return [df.SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={GROUP}"] + d.argv_ctl(args)


def ctl(d, args, timeout=30, input=None):
    return df.run(d.env, ctl_argv(d, args), timeout=timeout, input=input)


def started(d):
    """(id, pooled?) of every sandbox the daemon's log says started, in order."""
    return [(m.group(1), m.group(2) == POOLED)
            for m in re.finditer(r"Sandbox ([0-9a-f]{16}) \([^)]*\): (started(?: \(a sandbox of the pool\))?)$",
                                 d.log(), re.M)]


def held(env, d):
    """Sandboxes the daemon has that no request runs: state directory entries minus the running ones."""
    ids = set(i for i in env.sandbox_ids() if re.fullmatch(r"[0-9a-f]{16}", i))
    ended = set(re.findall(r"Sandbox ([0-9a-f]{16}) \([^)]*\): ended", d.log()))
    running = set(i for i, _ in started(d)) - ended
    return ids - running - ended


def init_waits(sid):
    """Whether sandbox SID is made to its init: a process in one of its cgroups is in a pid namespace of its
    own (NSpid has two entries; its union's server, also there, has one). A fill that has only begun has no
    such process yet (the pool refills after a request was answered, so a fill may just be starting)."""
    for cg in sf.sandbox_cgroups():
        if not cg.endswith(f"sandbox-{sid}"):
            continue
        for root, _, _ in os.walk(cg):
            for pid in sf.cgroup_procs(root):
                try:
                    with open(f"/proc/{pid}/status") as f:
                        nspid = next((l.split()[1:] for l in f if l.startswith("NSpid:")), [])
                except OSError:
                    continue
                if len(nspid) == 2:
                    return True
    return False


def wait_held(env, d, n, timeout=20):
    return df.wait_for(lambda: len([i for i in held(env, d) if init_waits(i)]) >= n or None, timeout,
                       f"{n} sandboxes held by the pool")


def cgroup_limits(sid):
    """The limits of sandbox SID's cgroups, read on the host: {relative file: value}."""
    out = {}
    for cg in sf.sandbox_cgroups():
        if not cg.endswith(f"sandbox-{sid}"):
            continue
        hier = cg.split("/")[4]
        for root, _, files in os.walk(cg):
            for f in files:
                if f.endswith((".max", "limit_in_bytes", "cfs_quota_us", "cfs_period_us", ".high", ".weight",
                               "shares", "swappiness", "oom_control")):
                    try:
                        with open(os.path.join(root, f)) as fh:
                            out[f"{hier}/{os.path.relpath(os.path.join(root, f), cg)}"] = fh.read().strip()
                    except OSError:
                        pass
    return out


def observe(d, args):
    """Runs SEES in a sandbox through D: (lines it printed, its sandbox id, pooled?, cgroup limits)."""
    p = subprocess.Popen(ctl_argv(d, ["exec"] + list(args) + ["--", "sh", "-c", SEES]), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    d.env.procs.append(p)
    lines = []
    try:
        for line in p.stdout:
            if line == "READY\n":
                break
            lines.append(line.rstrip("\n"))
        else:
            raise AssertionError(f"the sandbox ended before READY: {lines} {p.stderr.read()!r}")
        sid, pooled = started(d)[-1]
        limits = cgroup_limits(sid)
    finally:
        p.stdin.close()
    sf.eq(p.wait(15), 0, f"the observing program's exit status ({p.stderr.read()!r})")
    return lines, sid, pooled, limits


def normalize(lines):
    """What must be equal in two sandboxes: host id bases and sandbox ids replaced, the pid of `ps`, sh
    and its children (which depend on how many processes ran before) kept, nothing else changed."""
    out = []
    for line in lines:
        # The process list: the init (1) and the program (2); the pipeline's own ps and sed (and a copy
        # of sh that has not executed them yet) come and go.
        m = re.match(r"ps: +(\d+) ", line)
        if m and int(m.group(1)) > 2:
            continue
        line = re.sub(r"^(uid_map|gid_map): +0 +\d+ +(\d+)$", r"\1: 0 HOSTBASE \2", line)
        line = re.sub(r"(uid|gid)=\d{6,}", r"\1=HOSTID", line)
        line = re.sub(r"sandbox-unionfs:[0-9a-f]{16}", "sandbox-unionfs:ID", line)
        line = re.sub(r"--config \S+", "--config CONF", line)  # the init's command line: the daemon's
        out.append(line)
    return out


def host_base(lines):
    return [line.split()[2] for line in lines if line.startswith("uid_map:")]


# ==================================================================================================

def test_indistinguishable(env):
    """The same request, fresh and pooled: what the program sees is the same but for its own id range."""
    args = ["--memory", "300m", "--pids", "77", "--workdir", "/tmp", "-e", "FOO=bar baz", "-e", "HOME=/h"]
    fresh_d = daemon(env, "fresh", pool=0)
    fresh, fid, fpooled, flimits = observe(fresh_d, args)
    sf.eq(fpooled, False, "the daemon without a pool started a fresh sandbox")
    sf.eq(fresh_d.stop(), 0, "the first daemon's exit status")

    d = daemon(env, "pooled", pool=2, extra_conf="pool-shape = memory=300m,pids=77\n")
    wait_held(env, d, 2)
    pooled, pid_, ppooled, plimits = observe(d, args)
    sf.eq(ppooled, True, f"the request matching pool-shape took a pooled sandbox (log {d.log()!r})")
    print(f"# fresh {fid}, pooled {pid_}: {len(fresh)} lines each compared")

    a, b = normalize(fresh), normalize(pooled)
    diff = [(x, y) for x, y in zip(a, b) if x != y] + [(x, None) for x in a[len(b):]] + [(None, y) for y in b[len(a):]]
    sf.eq(diff, [], "lines that differ between a fresh and a pooled sandbox (fresh, pooled)")
    sf.check("env: FOO=bar baz" in fresh and "env: HOME=/h" in fresh and "pwd=/tmp" in fresh,
             f"the request's environment and working directory: {fresh}")
    sf.check(not [x for x in fresh if x.startswith("ls-")], f"/tmp or /dev/shm not empty: {fresh}")
    sf.check(host_base(fresh) != host_base(pooled), f"the same host id range for both: {host_base(fresh)}")
    sf.eq(plimits, flimits, "the cgroup limits of a pooled and a fresh sandbox (read on the host)")
    sf.check(any(v == str(300 << 20) for v in flimits.values()),
             f"the 300m memory limit is not in the sandbox's cgroups: {flimits}")
    # Failures read as a fresh sandbox's: a missing working directory named, a missing command is 127.
    wait_held(env, d, 1)
    r = ctl(d, ["exec", "--memory", "300m", "--pids", "77", "-w", "/no/such/dir", "true"])
    sf.check(r.returncode == 125 and "/no/such/dir" in r.stderr, f"a missing working directory, pooled: {r}")
    wait_held(env, d, 1)
    r = ctl(d, ["exec", "--memory", "300m", "--pids", "77", "/no/such/command"])
    sf.check(r.returncode == 127 and "command not found" in r.stderr, f"a missing command, pooled: {r}")
    sf.eq([p for _, p in started(d)], [True], f"sandboxes started by the pooled daemon (log {d.log()!r})")


def test_no_state_leaks(env):
    """Two pooled requests in a row: the second sees nothing the first left."""
    d = daemon(env, "leaks", pool=2, extra_conf="pool-shape = pids=64\npool-per-shape = 2\n")
    wait_held(env, d, 2)
    first = ["--pids", "64", "--", "sh", "-c",
             "echo secret > /tmp/leak; echo shm > /dev/shm/leak; hostname leaked-host; ipcmk -Q >/dev/null; "
             "setsid sleep 1000 </dev/null >/dev/null 2>&1 & "
             "python3 -c 'import sys' 2>/dev/null; cat /proc/self/uid_map"]
    r = ctl(d, ["exec"] + first)
    sf.eq(r.returncode, 0, f"the first request {r}")
    base1 = r.stdout.split()[1]
    wait_held(env, d, 2)
    second, sid2, pooled2, _ = observe(d, ["--pids", "64"])
    runs = started(d)
    sf.eq([p for _, p in runs], [True, True], f"both requests took pooled sandboxes ({runs})")
    sf.check(runs[0][0] != runs[1][0], f"the same sandbox twice: {runs}")
    sf.check("hostname=sandbox" in second, f"the first request's hostname shows: {second}")
    sf.eq([x for x in second if x.startswith("ls-")], [], "files of the first request in /tmp or /dev/shm")
    sf.eq([x for x in second if "sleep 1000" in x], [], "the first request's process")
    sf.eq([x for x in second if x.startswith("ipc: 0x")], [], "the first request's SysV message queue")
    sf.check(host_base(second) and host_base(second)[0] != base1, f"the first request's id range again: {base1}")


def test_budget(env):
    """Never more held sandboxes than pool-size, however many shapes; none when pool-memory is too small."""
    d = daemon(env, "budget", pool=2, extra_conf="pool-per-shape = 2\npool-shape = pids=61\n"
                                                 "pool-shape = pids=62\npool-shape = pids=63\n")
    wait_held(env, d, 2)
    most = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        most = max(most, len(held(env, d)))
        time.sleep(0.05)
    sf.eq(most, 2, "the most sandboxes held with pool-size = 2 and three shapes")
    # Requests take some, the pool refills: still never above the budget.
    for n in (61, 62, 63, 61):
        r = ctl(d, ["exec", "--pids", str(n), "true"])
        sf.eq(r.returncode, 0, f"a request of shape pids={n} {r}")
        most = max(most, len(held(env, d)))
    time.sleep(1)
    most = max(most, len(held(env, d)))
    sf.check(most <= 2, f"{most} sandboxes held with pool-size = 2")
    sf.check(any(p for _, p in started(d)), f"no request took a pooled sandbox: {d.log()!r}")
    sf.eq(d.stop(), 0, "the daemon's exit status")

    d = daemon(env, "nomem", pool=4, extra_conf="pool-memory = 1m\npool-shape = pids=61\n")
    for _ in range(3):
        r = ctl(d, ["exec", "--pids", "61", "true"])
        sf.eq(r.returncode, 0, f"a request with a pool that has no memory to hold one {r}")
    time.sleep(1)
    sf.eq(len(held(env, d)), 0, "sandboxes held with pool-memory = 1m")
    sf.eq([p for _, p in started(d)], [False] * 3, "requests served from a pool without memory")


def test_idle_shrink_and_exit(env):
    """After pool-idle-timeout the pool holds nothing, and the daemon's own idle exit comes."""
    d = daemon(env, "idle", pool=2, idle=7, extra_conf="pool-idle-timeout = 2\n")
    for _ in range(2):
        r = ctl(d, ["exec", "true"])
        sf.eq(r.returncode, 0, f"a request {r}")
    wait_held(env, d, 1, timeout=10)
    r = ctl(d, ["exec", "true"])
    sf.eq(r.returncode, 0, f"a request {r}")
    sf.check(started(d)[-1][1], f"the third request of a shape was not served from the pool: {started(d)}")
    wait_held(env, d, 1, timeout=10)
    t0 = time.monotonic()
    df.wait_for(lambda: not held(env, d) or None, 6, "the pool to shrink to nothing")
    shrunk = time.monotonic() - t0
    sf.check(d.running(), "the daemon exited before its own idle timeout")
    rc = d.wait_exit(15)
    sf.eq(rc, 0, f"the daemon's exit status after its idle timeout (log {d.log()!r})")
    print(f"# the pool was empty {shrunk:.1f}s after it was last seen holding a sandbox")
    sf.check("Idle" in d.log(), f"no idle exit in the log: {d.log()!r}")


def init_of(sid):
    """The host pid of sandbox SID's init (pid 1 of its pid namespace, in its cgroups), or None."""
    for cg in sf.sandbox_cgroups():
        if cg.endswith(f"sandbox-{sid}") and "/pids/" in cg:
            for root, _, _ in os.walk(cg):
                for pid in sf.cgroup_procs(root):
                    try:
                        with open(f"/proc/{pid}/status") as f:
                            nspid = [ln for ln in f if ln.startswith("NSpid:")][0].split()
                    except (OSError, IndexError):
                        continue
                    if nspid[-1] == "1":
                        return pid
    return None


def test_killed_never_handed_out(env):
    """A held sandbox whose init is killed is removed, and a request never gets it."""
    d = daemon(env, "killed", pool=2, extra_conf="pool-shape = pids=65\n")
    wait_held(env, d, 2)
    victims = sorted(held(env, d))
    # Their inits, once they have one (a sandbox being made is in the state directory before).
    inits = df.wait_for(lambda: (lambda m: m if all(m.values()) else None)({sid: init_of(sid) for sid in victims}),
                        10, f"the inits of {victims}")
    killed = []
    for sid, pid in inits.items():
        os.kill(pid, signal.SIGKILL)
        killed.append((sid, pid))
    sf.eq(len(killed), len(victims), f"inits killed of {victims}: {killed}")
    # Ask at once, before the pool could notice: the one handed out must not be a killed one.
    r = ctl(d, ["exec", "--pids", "65", "--", "sh", "-c", "echo alive"])
    sf.eq((r.returncode, r.stdout), (0, "alive\n"), f"a request right after the held inits were killed {r}")
    used = started(d)[-1][0]
    sf.check(used not in victims, f"sandbox {used}, whose init was killed, was handed out")
    df.wait_for(lambda: not (set(victims) & set(env.sandbox_ids())) or None, 10, "the killed sandboxes removed")


def test_learned_shape(env):
    """No pool-shape: the second request of a shape makes the pool hold it, the third takes one; another
    shape asked once is not held."""
    d = daemon(env, "learn", pool=2)
    r = ctl(d, ["exec", "--memory", "200m", "true"])
    sf.eq(r.returncode, 0, f"a request asked once {r}")
    time.sleep(0.5)
    sf.eq(len(held(env, d)), 0, "sandboxes held after a shape was asked once")
    for _ in range(2):
        r = ctl(d, ["exec", "--memory", "123m", "true"])
        sf.eq(r.returncode, 0, f"a request {r}")
    wait_held(env, d, 1)
    r = ctl(d, ["exec", "--memory", "123m", "--", "sh", "-c", "echo third"])
    sf.eq((r.returncode, r.stdout), (0, "third\n"), f"the third request {r}")
    sf.eq([p for _, p in started(d)], [False, False, False, True], "which requests were served from the pool")


def test_max_age(env):
    """pool-max-age: a held sandbox that reached it is ended and another made in its place (the shape is still
    asked for), and a request then takes the new one; the old one never runs a program."""
    d = daemon(env, "age", pool=1, extra_conf="pool-shape = pids=77\npool-max-age = 2\npool-idle-timeout = 600\n")
    first = df.wait_for(lambda: (lambda h: h[0] if len(h) == 1 and init_waits(h[0]) else None)(sorted(held(env, d))),
                        20, "a sandbox held by the pool")
    # Within its age, the pool keeps it.
    time.sleep(0.5)
    sf.eq(sorted(held(env, d)), [first], "the held sandboxes before pool-max-age")
    second = df.wait_for(lambda: (lambda h: h[0] if len(h) == 1 and h[0] != first and init_waits(h[0]) else None)(
        sorted(held(env, d))), 20, "the held sandbox replaced after pool-max-age")
    sf.check(first not in env.sandbox_ids(), f"the expired sandbox {first} is still there")
    r = ctl(d, ["exec", "--pids", "77", "true"])
    sf.eq(r.returncode, 0, f"a request after the replacement {r}")
    sf.eq(started(d), [(second, True)], "the request took the replacement, and the expired one never ran")


def observe_in(d, name):
    """Runs SEES with exec --in NAME (its stdin at EOF): the lines before READY."""
    r = ctl(d, ["exec", "--in", name, "--", "sh", "-c", SEES], input="")
    sf.eq(r.returncode, 0, f"exec --in {name} {r}")
    lines = r.stdout.split("\n")
    sf.check("READY" in lines, f"exec --in {name} did not print READY: {r}")
    return lines[:lines.index("READY")]


def created(d):
    """(id, pooled?) of every sandbox the daemon's log says was created, in order."""
    return [(m.group(1), bool(m.group(2)))
            for m in re.finditer(r"Sandbox ([0-9a-f]{16}) \([^)]*\): created as \S+?( \(a sandbox of the pool\))?$",
                                 d.log(), re.M)]


def test_create_from_pool(env):
    """A create of a pooled shape takes a held sandbox; it is a created sandbox as a fresh one is: exec --in
    sees the same in both (but for the id range), ps lists it, a second exec --in runs in it, rm removes it.
    A create with an environment of its own is not served from the pool."""
    args = ["--memory", "300m", "--pids", "77"]
    name = f"pc-{os.getpid()}"
    fresh_d = daemon(env, "cfresh", pool=0)
    r = ctl(fresh_d, ["create", "--name", name] + args)
    sf.eq(r.returncode, 0, f"create without a pool {r}")
    fresh = observe_in(fresh_d, name)
    sf.eq([p for _, p in created(fresh_d)], [False], f"created by the daemon without a pool ({fresh_d.log()!r})")
    r = ctl(fresh_d, ["rm", "-f", name])
    sf.eq(r.returncode, 0, f"rm -f without a pool {r}")
    sf.eq(fresh_d.stop(), 0, "the first daemon's exit status")

    d = daemon(env, "cpooled", pool=2, extra_conf="pool-shape = memory=300m,pids=77\n")
    wait_held(env, d, 2)
    r = ctl(d, ["create", "--name", name] + args)
    sf.eq(r.returncode, 0, f"create with a pool {r}")
    runs = created(d)
    sf.eq([p for _, p in runs], [True], f"the create took a pooled sandbox ({d.log()!r})")
    sid = runs[0][0]
    sf.check(sid in r.stdout, f"create printed {r.stdout!r}, not the pooled sandbox's id {sid}")
    pooled = observe_in(d, name)
    a, b = normalize(fresh), normalize(pooled)
    diff = [(x, y) for x, y in zip(a, b) if x != y] + [(x, None) for x in a[len(b):]] + [(None, y) for y in b[len(a):]]
    sf.eq(diff, [], "lines that differ between exec --in a fresh and a pooled created sandbox (fresh, pooled)")
    sf.check(host_base(fresh) != host_base(pooled), f"the same host id range for both: {host_base(fresh)}")
    # It lives on: a second program runs in it and sees what the first left; ps lists it.
    r = ctl(d, ["exec", "--in", name, "--", "sh", "-c", "echo kept > /tmp/mark"])
    sf.eq(r.returncode, 0, f"a second exec --in {r}")
    r = ctl(d, ["exec", "--in", name, "--", "cat", "/tmp/mark"])
    sf.eq((r.returncode, r.stdout), (0, "kept\n"), f"a third exec --in, reading the second's file {r}")
    r = ctl(d, ["ps"])
    sf.check(r.returncode == 0 and name in r.stdout and sid[:12] in r.stdout, f"ps lists the created sandbox {r}")
    r = ctl(d, ["rm", "-f", name])
    sf.eq(r.returncode, 0, f"rm -f {r}")
    df.wait_for(lambda: sid not in env.sandbox_ids() or None, 10, "the removed sandbox's state gone")
    r = ctl(d, ["ps"])
    sf.check(r.returncode == 0 and name not in r.stdout, f"ps after rm {r}")
    # An environment of its own: a fresh start (a pooled one has none), never the pool's.
    wait_held(env, d, 2)
    r = ctl(d, ["create", "--name", name + "-env", "-e", "FOO=1"] + args)
    sf.eq(r.returncode, 0, f"create with -e {r}")
    sf.eq([p for _, p in created(d)], [True, False], f"a create with its own environment ({d.log()!r})")
    r = ctl(d, ["exec", "--in", name + "-env", "--", "sh", "-c", "echo $FOO"])
    sf.eq((r.returncode, r.stdout), (0, "1\n"), f"the created sandbox's environment {r}")
    r = ctl(d, ["rm", "-f", name + "-env"])
    sf.eq(r.returncode, 0, f"rm -f {r}")


if __name__ == "__main__":
    df.main()
