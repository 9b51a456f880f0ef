#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandboxd under load and under attack by a member of group "sandbox", no mocks: a real daemon (--listen),
real non-root clients (setpriv, in a group named "sandbox" that only the daemon's own mount namespace
sees: /etc/group is bind-mounted there, the host's is never touched), real FUSE, cgroups and network
namespaces.

- 2,000 connections from one non-root uid: it gets max-connections-per-uid of them, the rest a clear
  ERROR; other uids and root are served meanwhile.
- Bytes held per uid: partial frames on many connections, and replies a client never reads, stay under
  max-buffer-per-uid (a clear ERROR and the connection closed beyond it), and the loop never waits for
  such a client.
- A slow start (a --layer on a FUSE mount of the test's whose server is stopped) does not hold up
  other clients: another uid's exec completes while the slow start is still in progress; a uid's
  second start waits for its first (max-starts-per-uid) instead of taking the last free slot; a client
  that leaves while its start is in flight leaves nothing behind; SIGTERM meanwhile ends cleanly.
- 1,000 sandboxes in a row and 50 at once (some with --net bridge, in a network namespace of the
  test's) leave nothing behind: mounts, cgroups, links, nft rules, leases, processes, and the daemon's
  descriptors, threads and memory come back to where they were.

Every test has its own temp dir (state directory, sockets, daemon logs); the runner
(tests/lib/sandboxd_fixture.py) stops the test's daemons afterwards and checks for leftovers. Timings
are printed, never asserted: bench/daemon-load.sh measures latency."""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import network_fixture as nf  # noqa: E402

PY = "/usr/bin/python3"
UNSHARE = shutil.which("unshare")
# The test's group "sandbox" and two non-root members: U1 the attacker, U2 a bystander. No passwd or
# group entries on the host: setpriv takes numbers, and the daemon sees the group in its own /etc/group.
GID = 40000 + os.getpid() % 10000
U1 = 60000 + os.getpid() % 2000
U2 = U1 + 2000
CONN_PER_UID = 32  # the default of max-connections-per-uid

# --------------------------------------------------------------------------------------------------
# clients written by hand (run as U1 through setpriv): they print one JSON line, then hold their
# connections until their stdin closes.

PROTO = r"""
import json, select, socket, struct, sys, time
MAGIC = 0x31584253
HELLO, HELLO_REPLY, EXEC, LIST, ERROR = 1, 2, 3, 8, 11
def frame(t, payload=b"", length=None):
    return struct.pack("<IHHII", MAGIC, 1, t, len(payload) if length is None else length, 0) + payload
def tlv(tag, v):
    return struct.pack("<HHI", tag, 0, len(v)) + v
HELLO_FRAME = frame(HELLO, tlv(1, struct.pack("<I", 1)) + tlv(2, struct.pack("<I", 1)) + tlv(3, b"load-test"))
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b
def recv_frame(s):
    h = recv_exact(s, 16)
    if h is None:
        return None
    _, _, t, n, _ = struct.unpack("<IHHII", h)
    p = recv_exact(s, n) if n else b""
    return t, p
def message(p):
    off = 0
    while off + 8 <= len(p):
        tag, _, n = struct.unpack_from("<HHI", p, off)
        if tag == 3:
            return p[off + 8:off + 8 + n].decode(errors="replace")
        off += 8 + n
    return ""
def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s
def hello(s):
    # A daemon that refuses us writes its ERROR and closes: our HELLO may then fail, the ERROR is there.
    try:
        s.sendall(HELLO_FRAME)
    except OSError:
        pass
    try:
        return recv_frame(s)
    except (ConnectionResetError, socket.timeout):
        return None
def hold():
    sys.stdin.read()
"""

# argv: SOCKET N. Opens N connections one after another, says HELLO on each and keeps those answered
# with HELLO_REPLY. Prints {"held", "refused", "messages" (distinct ERROR texts), "other"}.
FLOOD = PROTO + r"""
path, n = sys.argv[1], int(sys.argv[2])
held, refused, messages, other = [], 0, set(), []
for i in range(n):
    try:
        s = connect(path)
    except OSError as e:
        other.append("connect %d: %s" % (i, e))
        continue
    f = hello(s)
    if f and f[0] == HELLO_REPLY:
        held.append(s)
        continue
    if f and f[0] == ERROR:
        refused += 1
        messages.add(message(f[1]))
    else:
        other.append("connection %d: %r" % (i, f))
    s.close()
print(json.dumps({"held": len(held), "refused": refused, "messages": sorted(messages), "other": other[:5]}),
      flush=True)
hold()
"""

# argv: SOCKET N KIB. N connections, each: HELLO, then the header of a 2 MiB EXEC and KIB KiB of its
# payload, never the rest. Then each one's fate: an ERROR (refused) or nothing yet (held by the daemon).
PARTIAL = PROTO + r"""
path, n, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conns, fates = [], []
for i in range(n):
    s = connect(path)
    f = hello(s)
    if not f or f[0] != HELLO_REPLY:
        fates.append("no HELLO_REPLY: %r" % (f,))
        continue
    try:
        s.sendall(frame(EXEC, length=2 << 20) + b"\0" * (kib << 10))
    except OSError:
        pass  # refused while we wrote: the ERROR is there to read
    conns.append(s)
    time.sleep(0.05)
time.sleep(0.5)
for s in conns:
    r, _, _ = select.select([s], [], [], 0.2)
    if not r:
        fates.append("held")
        continue
    try:
        f = recv_frame(s)
    except OSError as e:
        f = None
    fates.append("refused: " + message(f[1]) if f and f[0] == ERROR else "closed: %r" % (f,))
print(json.dumps({"fates": fates}), flush=True)
hold()
"""

# argv: SOCKET SECONDS. HELLO, then LIST frames as fast as the daemon takes them, never reading a reply,
# until the socket stays full. Prints {"sent": frames written}.
NO_READ = PROTO + r"""
path, secs = sys.argv[1], float(sys.argv[2])
s = connect(path)
f = hello(s)
assert f and f[0] == HELLO_REPLY, f
s.setblocking(False)
chunk = frame(LIST) * 256
sent, stuck_since, deadline = 0, None, time.monotonic() + secs
while time.monotonic() < deadline:
    try:
        sent += s.send(chunk) // 16
        stuck_since = None
    except BlockingIOError:
        stuck_since = stuck_since or time.monotonic()
        if time.monotonic() - stuck_since > 1.0:
            break
        time.sleep(0.01)
print(json.dumps({"sent": sent}), flush=True)
hold()
"""


# --------------------------------------------------------------------------------------------------
# the daemon, in a mount namespace of its own where group "sandbox" exists


def group_file(env):
    """A copy of the host's /etc/group plus "sandbox:x:GID:" (only the daemon's mount namespace sees it)."""
    with open("/etc/group") as f:
        lines = [ln for ln in f.read().splitlines() if not ln.startswith("sandbox:")]
    return env.write("group", "\n".join(lines + [f"sandbox:x:{GID}:"]) + "\n")


def as_user(uid, argv):
    """ARGV as UID (primary group its own, supplementary group "sandbox")."""
    return [df.SETPRIV, f"--reuid={uid}", f"--regid={uid}", f"--groups={GID}"] + list(argv)


class LoadDaemon(df.Daemon):
    """sandboxd --listen SOCK --idle-timeout 0 in a mount namespace of its own (unshare, which execs it:
    self.pid is the daemon's) where /etc/group has group "sandbox"; in network namespace NETNS if given."""

    def __init__(self, env, name="d", config="", netns=None):
        self.env, self.name, self.activate = env, name, False
        self.sock = env.path(f"{name}.sock")
        self.logpath = env.path(f"{name}.log")
        inner = [df.sandboxd(), "--state-dir", env.state, "--data-dir", env.data, "--idle-timeout", "0",
                 "--config", env.write(f"{name}.conf", config), "--listen", self.sock]
        argv = [UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c",
                'mount --bind "$0" /etc/group && exec "$@"', group_file(env)] + inner
        if netns:
            argv = [nf.NSENTER, f"--net={netns}"] + argv
        self.argv = argv
        self._log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        env.daemons.append(self)
        self.wait_ready("Ready")
        st = os.stat(self.sock)
        sf.eq((st.st_gid, st.st_mode & 0o777), (GID, 0o660), "the socket's group and mode (group 'sandbox')")

    def ctl_as(self, uid, args, timeout=30, **kw):
        return df.run(self.env, as_user(uid, self.argv_ctl(args)), timeout=timeout, **kw)

    def popen_as(self, uid, args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(as_user(uid, self.argv_ctl(args)), **kw)
        self.env.procs.append(p)
        return p

    def helper(self, uid, script, *args):
        """A hand-written client (PROTO + SCRIPT) as UID; returns (Popen, its JSON line)."""
        p = subprocess.Popen(as_user(uid, [PY, "-c", script, self.sock] + [str(a) for a in args]),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.env.procs.append(p)
        r, _, _ = select.select([p.stdout], [], [], 60)
        line = p.stdout.readline() if r else ""
        if not line:
            sf.kill_proc(p)
            raise AssertionError(f"helper {script[-200:]!r} printed nothing: stderr {p.stderr.read()[-800:]!r}")
        return p, json.loads(line)

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {key} in /proc/{self.pid}/status")

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def started_ids(self):
        return re.findall(r"Sandbox ([0-9a-f]{16}) \(uid \d+, [^)]*\): started", self.log())


def release(p):
    """Ends a helper: closes its stdin (it exits), waits."""
    try:
        p.stdin.close()
    except OSError:
        pass
    sf.eq(p.wait(10), 0, f"helper exit status (stderr {p.stderr.read()[-500:]!r})")
    p.stdout.close()
    p.stderr.close()


def prerequisites():
    why = df.prerequisites()
    if why:
        return why
    if not df.SETPRIV or not UNSHARE:
        return "no setpriv or unshare (package util-linux)"
    return None


# ==================================================================================================
# connections


@sf.timeout(120)
def test_2000_connections_from_one_uid(env):
    d = LoadDaemon(env)
    # Two: from the second start on, the host image's key cache holds its inotify descriptor for good.
    for _ in range(2):
        r = d.ctl_as(U2, ["exec", "--", "true"])
        sf.eq(r.returncode, 0, f"a member of group sandbox runs a sandbox {r}")
    time.sleep(0.2)
    fds0 = d.fd_count()

    t0 = time.monotonic()
    flood, res = d.helper(U1, FLOOD, 2000)
    print(f"# 2000 connections of uid {U1} answered in {time.monotonic() - t0:.1f}s: {res}")
    sf.eq(res["other"], [], "connections neither answered nor refused")
    sf.eq((res["held"], res["refused"]), (CONN_PER_UID, 2000 - CONN_PER_UID), "connections held and refused")
    sf.eq(res["messages"], [f"too many connections: uid {U1} has {CONN_PER_UID} connections to sandboxd open "
                            f"(max-connections-per-uid = {CONN_PER_UID})"], "the refusal's message")
    # While U1 holds its 32, the others are served, and U1 is told why it is not.
    r = d.ctl_as(U2, ["exec", "--", "echo", "bystander"])
    sf.eq((r.returncode, r.stdout), (0, "bystander\n"), f"another uid while uid {U1} holds its connections {r}")
    r = d.ctl(["exec", "--", "echo", "root"])
    sf.eq((r.returncode, r.stdout), (0, "root\n"), f"root meanwhile {r}")
    r = d.ctl_as(U1, ["exec", "--", "true"])
    sf.check(r.returncode == 125 and f"max-connections-per-uid = {CONN_PER_UID}" in r.stderr,
             f"uid {U1}'s 33rd connection through sandboxctl {r}")
    # Once the two sandboxes are cleaned up, the daemon holds U1's connections and nothing of the refused.
    df.wait_for(lambda: d.fd_count() - fds0 == CONN_PER_UID, 5,
                f"the daemon to hold {CONN_PER_UID} descriptors more than before (it holds {d.fd_count() - fds0})")
    refusals = d.log().count("Refused a connection")
    sf.check(1 <= refusals <= 10, f"1968 refusals logged in {refusals} lines (at most one a second)")
    release(flood)
    df.wait_for(lambda: d.fd_count() <= fds0, 5, f"the daemon's descriptors back to {fds0} (now {d.fd_count()})")
    r = d.ctl_as(U1, ["exec", "--", "echo", "again"])
    sf.eq((r.returncode, r.stdout), (0, "again\n"), f"uid {U1} once its connections are closed {r}")


# ==================================================================================================
# bytes held per uid


@sf.timeout(120)
def test_buffered_bytes_per_uid(env):
    d = LoadDaemon(env, config="max-buffer-per-uid = 1m\n")
    r = d.ctl_as(U2, ["exec", "--", "true"])
    sf.eq(r.returncode, 0, f"warm-up {r}")
    time.sleep(0.2)
    rss0 = d.status("VmRSS")

    # Input: 8 connections with 300 KiB of an unfinished 2 MiB frame each would be 2.4 MB.
    part, res = d.helper(U1, PARTIAL, 8, 300)
    fates = res["fates"]
    print(f"# 8 partial 2 MiB frames of 300 KiB: {fates}")
    held = [f for f in fates if f == "held"]
    refused = [f for f in fates if f.startswith("refused: ")]
    sf.eq(len(held) + len(refused), 8, f"every connection held or refused with an ERROR: {fates}")
    # 1 MiB holds 3 of them at most (the buffer of a partial frame grows by doubling: 2 in practice).
    sf.check(1 <= len(held) <= 3, f"connections held under max-buffer-per-uid = 1M: {fates}")
    want = f"too much data held for uid {U1}: its connections to sandboxd hold "
    sf.check(all(want in f and f.endswith("bytes not yet read or sent (max-buffer-per-uid = 1 MiB)") for f in refused),
             f"the refusals' messages: {refused}")
    r = d.ctl_as(U2, ["exec", "--", "echo", "bystander"])
    sf.eq((r.returncode, r.stdout), (0, "bystander\n"), f"another uid meanwhile {r}")
    grown = d.status("VmRSS") - rss0
    sf.check(grown < 8 * 1024, f"the daemon's memory grew by {grown} KiB holding uid {U1}'s partial frames")
    release(part)

    # Output: a client that sends LIST after LIST and never reads. The daemon answers what the socket
    # takes, then stops reading from it; it keeps serving everyone else meanwhile.
    noread, res = d.helper(U1, NO_READ, 10)
    print(f"# a client that never reads wrote {res['sent']} LIST frames before its socket stayed full")
    for args in (["ps"], ["exec", "--", "echo", "served"]):
        r = d.ctl_as(U2, args, timeout=10)
        sf.eq(r.returncode, 0, f"uid {U2}: sandboxctl {args} while uid {U1} does not read its replies {r}")
    r = d.ctl_as(U1, ["exec", "--", "echo", "own"], timeout=10)
    sf.eq((r.returncode, r.stdout), (0, "own\n"), f"uid {U1}'s other connection {r}")
    grown = d.status("VmRSS") - rss0
    sf.check(grown < 8 * 1024, f"the daemon's memory grew by {grown} KiB for a client that does not read")
    release(noread)
    r = d.ctl_as(U1, ["ps"])
    sf.eq(r.returncode, 0, f"uid {U1} afterwards {r}")


# ==================================================================================================
# a slow start


class SlowFuse:
    """A sandbox-unionfs mount of the test's own (attribute caching off): stop() freezes its server, so
    that the first lookup of each of its directories b0, b1, ... hangs until cont()."""

    def __init__(self, env, n, name="slow", cache=False):
        self.env = env
        lower = env.mkdir(f"{name}-lower")
        for i in range(n):
            os.mkdir(os.path.join(lower, f"b{i}"))
        upper, work, self.mnt = env.mkdir(f"{name}-upper"), env.mkdir(f"{name}-work"), env.mkdir(name)
        self.log = open(env.path(f"{name}-fuse.log"), "wb")
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}" + ("" if cache else ",timeout=0")
        self.proc = subprocess.Popen([os.environ.get("SANDBOX_UNIONFS") or sf._default("unionfs/sandbox-unionfs"),
                                      "-f", "-o", opts, self.mnt],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        df.wait_for(lambda: any(m[0] == self.mnt for m in sf.host_mounts()), 10, "the slow FUSE mount")
        self.stopped = False

    def path(self, i):
        return os.path.join(self.mnt, f"b{i}")

    def stop(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.stopped = False

    def close(self):
        if self.log.closed:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # also when stopped; its connection is aborted, lookups fail
            self.proc.wait(10)
        subprocess.run(["umount", "-l", self.mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.log.close()


@sf.timeout(150)
def test_slow_start_does_not_block_others(env):
    slow = SlowFuse(env, 4)
    try:
        _slow_start(env, slow)
    finally:
        slow.close()


def _slow_start(env, slow):
    # Two start slots; one for each uid at most.
    d = LoadDaemon(env, config="allow-host-paths = yes\nmax-starts = 2\nmax-starts-per-uid = 1\n")
    # Two: from the second start on, the host image's key cache holds its inotify descriptor for good.
    for _ in range(2):
        r = d.ctl_as(U2, ["exec", "--", "true"])
        sf.eq(r.returncode, 0, f"warm-up {r}")
    fds0 = d.fd_count()
    slow.stop()
    # U1's first start hangs in the daemon's lookup of its --layer (a host path, allow-host-paths: the
    # daemon resolves it; a --bind source a non-root client opens itself). Its second waits for it
    # (max-starts-per-uid), rather than taking the second slot.
    first = d.popen_as(U1, ["exec", "--layer", slow.path(0), "--", "echo", "slow-1"])
    time.sleep(0.5)
    second = d.popen_as(U1, ["exec", "--layer", slow.path(1), "--", "echo", "slow-2"])
    time.sleep(0.5)
    # Meanwhile another uid runs sandboxes, one after another, and so does root.
    t0 = time.monotonic()
    for i in range(3):
        r = d.ctl_as(U2, ["exec", "--", "echo", f"fast-{i}"], timeout=30)
        sf.eq((r.returncode, r.stdout), (0, f"fast-{i}\n"), f"uid {U2} while uid {U1}'s start hangs {r}")
    r = d.ctl(["exec", "--", "echo", "root"], timeout=30)
    sf.eq((r.returncode, r.stdout), (0, "root\n"), f"root while uid {U1}'s start hangs {r}")
    r = d.ctl_as(U2, ["ps"], timeout=10)
    sf.eq(r.returncode, 0, f"ps meanwhile {r}")
    print(f"# 3 execs of uid {U2} and 1 of root in {time.monotonic() - t0:.2f}s while uid {U1}'s starts hang")
    sf.check(first.poll() is None and second.poll() is None,
             f"uid {U1}'s slow starts are still in progress (exit statuses {first.poll()}, {second.poll()})")
    sf.eq(len(d.started_ids()), 6, f"sandboxes started so far (2 warm-up, 3 of uid {U2}, root's): {d.log()[-600:]!r}")

    # The first client leaves while its start is in flight; the start goes on, and its sandbox is ended.
    first.kill()
    first.wait(10)
    time.sleep(0.3)
    slow.cont()
    out, err = second.communicate(timeout=30)
    sf.eq((second.returncode, out), (0, b"slow-2\n"), f"uid {U1}'s second start once the mount answers: {err!r}")
    def left():
        # The slow mount itself is the test's.
        return [p for p in env.leftovers(exclude_pids=[d.pid], grace=0) if not p.startswith("host mounts")] + \
               [m for m in sf.host_mounts() if env.root in m[0] and m[0] != slow.mnt]
    df.wait_for(lambda: not left(), 10, f"the abandoned start's sandbox to be removed: {left()}")
    df.wait_for(lambda: d.fd_count() <= fds0, 5, f"the daemon's descriptors back to {fds0} (now {d.fd_count()})")
    sf.check("nobody waits for it any more: ending it" in d.log() or "went away during the start" in d.log(),
             f"the daemon's log on the abandoned start: {d.log()[-800:]!r}")

    # SIGTERM while a start hangs: the daemon ends it once it can, tells its client, and exits.
    slow.stop()
    third = d.popen_as(U1, ["exec", "--layer", slow.path(2), "--", "echo", "slow-3"])
    time.sleep(0.5)
    os.kill(d.pid, signal.SIGTERM)
    time.sleep(0.5)
    sf.check(d.running(), "the daemon exited with a start in flight")
    slow.cont()
    sf.eq(d.wait_exit(15), 0, f"the daemon's exit status after SIGTERM: {d.log()[-600:]!r}")
    out, err = third.communicate(timeout=10)
    sf.check(third.returncode == 125 and b"stopping" in err, f"the client of the start in flight: "
                                                           f"{third.returncode} {err!r}")
    slow.close()
    env.expect_clean("after SIGTERM with a start in flight")


@sf.timeout(120)
def test_stalled_init_holds_nothing_of_others(env):
    """A sandbox's init that hangs in its set-up was cloned from a daemon whose descriptor table held other
    clients' descriptors: it must not keep them. Client A's stdout pipe is in the daemon while A's start
    hangs (its --bind source's lookup, on mount "a"); meanwhile B's init hangs in its set-up (its --layer is
    a directory of mount "b", whose server does not answer: B's union cannot start). Then A's start
    proceeds and its program ends: whoever reads A's output sees the end of it, though B still hangs."""
    fa, fb = SlowFuse(env, 1, name="a"), SlowFuse(env, 1, name="b", cache=True)
    try:
        d = LoadDaemon(env, config="allow-host-paths = yes\n")
        r = d.ctl(["exec", "--", "true"])
        sf.eq(r.returncode, 0, f"warm-up {r}")
        os.stat(fb.path(0))  # cached: B's start gets past its own lookups and hangs in the init
        fa.stop()
        fb.stop()
        a = d.ctl_popen(["exec", "--bind", f"{fa.path(0)}:/mnt", "--", "echo", "a-done"])
        time.sleep(0.5)
        b = d.ctl_popen(["exec", "--layer", fb.path(0), "--", "echo", "b-done"])
        df.wait_for(lambda: len(d.started_ids()) == 1 and any(
            os.path.basename(sf.proc_cmdline(p)[0] or b"") == b"sandbox-unionfs" and fb.path(0).encode()
            in b" ".join(sf.proc_cmdline(p) or []) for p in sf.processes_mentioning(env.state)), 10,
            "B's union server (stuck on mount b)")
        time.sleep(0.5)
        sf.check(a.poll() is None and b.poll() is None, f"A's and B's starts are in progress (exit statuses {a.poll()}, {b.poll()}; A: {a.stderr.read() if a.poll() is not None else b''}, B: {b.stderr.read() if b.poll() is not None else b''})")
        fa.cont()
        try:
            out, err = a.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("A's output did not end while B's start hangs: B's init holds A's stdout")
        sf.eq((a.returncode, out), (0, b"a-done\n"), f"A: {err!r}")
        sf.check(b.poll() is None, "B's start still hangs")
        fb.cont()
        out, err = b.communicate(timeout=30)
        sf.eq((b.returncode, out), (0, b"b-done\n"), f"B once its layer answers: {err!r}")
    finally:
        fa.close()
        fb.close()


# ==================================================================================================
# many sandboxes


def union_mounts(pids, ids):
    """Mounts of the unions (source sandbox-unionfs:ID) of IDS in the mount namespaces of PIDS."""
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/mountinfo") as f:
                for line in f:
                    parts = line.split()
                    src = parts[parts.index("-") + 2]
                    if src.startswith("sandbox-unionfs:") and src.split(":", 1)[1] in ids:
                        found.append((pid, parts[4], src))
        except OSError:
            pass
    return found


@sf.timeout(300)
def test_1000_in_a_row_and_50_at_once(env):
    lab = nf.Lab()
    try:
        _many(env, lab)
    finally:
        for d in env.daemons:
            d.stop()
        lab.destroy()


def _many(env, lab):
    # 25 of the 50 at once are U2's: more than the per-uid totals of memory, pids and disk allow by
    # default (four sandboxes of the default size, docs/limits.md), which this test is not about.
    d = LoadDaemon(env, config="max-sandboxes-per-client = 32\nmax-memory-per-client = unlimited\n"
                   "max-pids-per-client = unlimited\nmax-disk-per-client = unlimited\n", netns=lab.ns_path(lab.host))

    def at_once(n, tag, net_every=5, port0=20000):
        """N clients at once, alternately root and U2; every NET_EVERY-th with --net bridge and a published
        port (PORT0 + i: nft rules to remove)."""
        procs = []
        for i in range(n):
            net = ["--net", "bridge", "-p", f"{port0 + i}:80"] if net_every and i % net_every == 0 else []
            args = ["exec"] + net + ["--", "sh", "-c", f"echo {tag}-{i}; exit {i % 7}"]
            procs.append(d.popen_as(U2, args) if i % 2 else d.ctl_popen(args))
        bad = []
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=120)
            if (p.returncode, out.decode()) != (i % 7, f"{tag}-{i}\n"):
                bad.append((i, p.returncode, out, err[-300:]))
        sf.eq(bad, [], f"{n} at once: (index, status, stdout, stderr) that were wrong")

    def settled():
        return not env.leftovers(exclude_pids=[d.pid], grace=0) and not lab.net_problems()

    # Warm-up: every worker thread has started (and cleaned up) sandboxes, the network is up.
    for i in range(10):
        r = d.ctl_as(U2, ["exec", "--", "true"])
        sf.eq(r.returncode, 0, f"warm-up {r}")
    at_once(50, "warm")
    df.wait_for(settled, 20, "the warm-up's sandboxes to be removed")
    time.sleep(0.5)
    fds0, threads0, rss0 = d.fd_count(), d.threads(), d.status("VmRSS")

    t0 = time.monotonic()
    for i in range(1000):
        r = d.ctl_as(U2, ["exec", "--", "true"]) if i % 2 else d.ctl(["exec", "--", "true"])
        if r.returncode != 0:
            raise AssertionError(f"sandbox {i} of 1000 in a row: {r}")
    t1 = time.monotonic()
    at_once(50, "load", net_every=5, port0=21000)
    t2 = time.monotonic()
    print(f"# 1000 sandboxes in a row in {t1 - t0:.1f}s ({t1 - t0:.1f} ms each), 50 at once (10 bridged, with a "
          f"published port each) in "
          f"{t2 - t1:.1f}s")

    df.wait_for(settled, 30, f"every sandbox's traces to go: {env.leftovers(exclude_pids=[d.pid], grace=0)} "
                             f"{lab.net_problems()}")
    ids = set(d.started_ids())
    sf.check(len(ids) >= 1110, f"the daemon logged {len(ids)} sandboxes started, expected 1110")
    sf.eq(union_mounts([os.getpid(), d.pid], ids), [], "union mounts left in the host's or the daemon's namespace")
    sf.eq(lab.net_problems(), [], "the network namespace after the runs")
    df.wait_for(lambda: d.fd_count() <= fds0, 5, f"the daemon's descriptors back to {fds0} (now {d.fd_count()})")
    sf.eq(d.threads(), threads0, "the daemon's threads")
    grown = d.status("VmRSS") - rss0
    print(f"# the daemon: {fds0} descriptors, {threads0} threads, RSS {rss0} KiB before; RSS grew by {grown} KiB")
    # 1050 sandboxes: a leak of 2 KiB each would be 2 MiB. Under AddressSanitizer freed memory sits in its
    # quarantine (256 MiB), so RSS says nothing there: LeakSanitizer does that job.
    with open(f"/proc/{d.pid}/maps") as f:
        asan = "libasan" in f.read()
    sf.check(asan or grown < 2048, f"the daemon's memory grew by {grown} KiB over 1050 sandboxes")
    d.stop()
    env.expect_clean("after 1000 in a row and 50 at once")
    lab.expect_net_clean("after the daemon stopped", bridges_may_exist=False)


if __name__ == "__main__":
    sf.main(globals(), make_env=df.DaemonEnv,
            header=f"# sandboxd under test: {df.sandboxd()}; sandboxctl: {df.sandboxctl()}",
            check_prerequisites=prerequisites, after_pass=df._after_pass, on_failure=df.print_daemon_logs)
