#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandboxd + sandboxctl end to end, as root, no mocks: socket activation through systemd-socket-activate
(the daemon starts on the first connection and leaves by itself when idle), exit statuses and messages
through the daemon, stdio passing, -t, signal forwarding, ps/kill/version, 50 concurrent clients,
authorization by SO_PEERCRED and the configuration's caps, malformed frames written by hand, recovery
after kill -9 of the daemon, SIGTERM to the daemon, and that nothing is left behind.

Every test has its own temp dir (state directory, sockets, daemon logs); the runner
(tests/lib/sandboxd_fixture.py) stops the test's daemons afterwards and checks for leftovers."""

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

PROBE = df.probe()
NOBODY = 65534


def is_id(s):
    return isinstance(s, str) and len(s) == 16 and all(c in "0123456789abcdef" for c in s)


def ps_json(d, user=None):
    r = d.ctl(["ps", "--json"], user=user)
    sf.eq(r.returncode, 0, f"sandboxctl ps --json {r}")
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError(f"sandboxctl ps --json printed invalid JSON ({e}): {r.stdout!r}")


def wait_entry(d, command, user=None, timeout=15):
    """The ps --json entry of a sandbox running COMMAND, once it shows up."""
    def find():
        return [e for e in ps_json(d, user) if e.get("command") == command]
    return df.wait_for(find, timeout, f"a sandbox running {command} in ps --json")[0]


# ==================================================================================================
# socket activation and the idle exit

def test_activation_and_idle_exit(env):
    d = df.Daemon(env, idle=2)
    time.sleep(0.3)
    sf.check(d.running() and not d.is_sandboxd(),
             f"sandboxd runs before any connection (pid {d.pid} is {df.proc_exe(d.pid)})")
    sf.check(os.path.exists(d.sock), "the activator does not listen on the socket")
    r = d.ctl(["exec", "--", "sh", "-c", "echo out-$((6*7)); echo err-line >&2; exit 3"])
    sf.eq((r.returncode, r.stdout, r.stderr), (3, "out-42\n", "err-line\n"), f"first exec (activation) {r}")
    sf.check(d.is_sandboxd(), f"pid {d.pid} is not sandboxd after the first connection ({df.proc_exe(d.pid)})")
    environ = df.proc_environ(d.pid)
    for want in ("LISTEN_FDS=1", "LISTEN_FDNAMES=sandboxd", f"LISTEN_PID={d.pid}"):
        sf.check(want in environ, f"the daemon was not socket-activated: {want} missing from its environment")
    sf.check("Ready" in d.log(), f"no 'Ready' in the daemon's log: {d.log()!r}")

    # No idle exit while a sandbox runs (3 s > the 2 s idle timeout) or while a client is connected.
    r = d.ctl(["exec", "--", "sh", "-c", "sleep 3; echo slept"])
    sf.eq((r.returncode, r.stdout), (0, "slept\n"), f"a sandbox longer than --idle-timeout {r}")
    c = df.RawClient(d.sock)
    c.hello()
    time.sleep(3)
    sf.check(d.running(), "the daemon exited while a client was connected")
    c.close()
    t0 = time.monotonic()
    rc = d.wait_exit(10)
    elapsed = time.monotonic() - t0
    sf.eq(rc, 0, f"the daemon's exit status after the idle timeout (log {d.log()!r})")
    sf.check(1.5 <= elapsed <= 5, f"the idle exit came {elapsed:.1f}s after the last client left (--idle-timeout 2)")
    sf.check("Idle" in d.log(), f"no idle message in the log: {d.log()!r}")
    sf.check(not df.alive(d.pid), "the activator/daemon process is still there")
    # Nothing listens any more (re-activation needs a real service manager).
    r = d.ctl(["exec", "true"])
    sf.eq(r.returncode, 125, f"sandboxctl with nobody listening {r}")
    sf.check("cannot reach sandboxd" in r.stderr, f"message without a daemon: {r.stderr!r}")


# ==================================================================================================
# exit statuses and messages

def test_exit_statuses(env):
    d = df.Daemon(env)
    probe = df.probe_bind()
    missing = env.path("no-such-dir")
    cases = [
        (["true"], 0, []),
        (["sh", "-c", "exit 3"], 3, []),
        (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM, []),
        (["--timeout", "0.5", "sleep", "10"], 124, ["time limit"]),
        (["--bind", f"{missing}:/x", "true"], 125, [missing]),
        (["-w", "/no/such/dir", "true"], 125, ["/no/such/dir"]),
        (["/etc/hostname"], 126, ["/etc/hostname"]),
        (["no-such-command-sbxd"], 127, ["no-such-command-sbxd"]),
        (probe + ["--memory", "32m", PROBE, "hog", "2048"], 137, ["memory"]),
    ]
    for args, want, words in cases:
        r = d.ctl(["exec"] + args, timeout=60)
        sf.eq(r.returncode, want, f"sandboxctl exec {args}: {r}")
        if want not in (0, 3, 143):
            sf.check(r.stderr.startswith("sandboxctl:"), f"{args}: stderr does not start with 'sandboxctl:': "
                                                         f"{r.stderr!r}")
            for w in words:
                sf.check(w.lower() in r.stderr.lower(), f"{args}: stderr does not name {w!r}: {r.stderr!r}")
        else:
            sf.eq(r.stderr, "", f"{args}: stderr")
    # A bad option is caught by sandboxctl itself: it fails the same way with no daemon at all.
    r = df.run(env, [df.sandboxctl(), "--socket", env.path("nobody-listens"), "exec", "--bogus-option", "true"])
    sf.eq(r.returncode, 125, f"a bad option {r}")
    sf.check("bogus-option" in r.stderr and "cannot reach" not in r.stderr,
             f"a bad option must be reported by the client, before connecting: {r.stderr!r}")
    r = d.ctl(["exec", "--memory", "1", "true"])
    sf.check(r.returncode == 125 and "--memory" in r.stderr, f"--memory 1 {r}")
    sf.check(d.running(), "the daemon died")
    env.expect_clean("after every exit status")


def test_bad_option_messages(env):
    """Option errors of sandboxctl exec name the program, like every other message of sandboxctl."""
    nowhere = env.path("nobody-listens")
    bad = []
    for args in (["--bogus-option", "true"], ["-w"], ["--timeout"], ["--timeout", "soon", "true"], []):
        r = df.run(env, [df.sandboxctl(), "--socket", nowhere, "exec"] + args)
        if r.returncode != 125 or not r.stderr.startswith("sandboxctl"):
            bad.append((args, r.returncode, r.stderr))
    sf.eq(bad, [], "sandboxctl exec option errors: (args, status, stderr) that do not start with 'sandboxctl'")


# ==================================================================================================
# stdio

def test_stdio(env):
    d = df.Daemon(env)
    r = d.ctl(["exec", "cat"], input="data\n")
    sf.eq((r.returncode, r.stdout), (0, "data\n"), f"echo data | sandboxctl exec cat {r}")
    blob = os.urandom(4 << 20)
    r = d.ctl(["exec", "cat"], input=blob, text=False, timeout=60)
    sf.check(r.returncode == 0 and r.stdout == blob,
             f"4 MiB of binary data through cat: exit {r.returncode}, {len(r.stdout)} bytes back, "
             f"{'identical' if r.stdout == blob else 'different'}; stderr {r.stderr[-300:]!r}")
    r = d.ctl(["exec", "sh", "-c", "cat >&2"], input="to-stderr\n")
    sf.eq((r.returncode, r.stdout, r.stderr), (0, "", "to-stderr\n"), "stdin to stderr")
    # The program's stdout and stderr are the caller's own descriptors (passed, not proxied).
    rfd, wfd = os.pipe()
    env.fds += [rfd]
    errpath = env.path("stderr.txt")
    with open(errpath, "wb") as errf:
        p = d.ctl_popen(["exec", "sh", "-c", "readlink /proc/self/fd/1; echo to-file >&2"], stdout=wfd, stderr=errf)
        os.close(wfd)
        rc = p.wait(30)
    out = os.read(rfd, 4096).decode()
    ino = os.fstat(rfd).st_ino
    sf.eq(rc, 0, "exit status")
    sf.eq(out.strip(), f"pipe:[{ino}]", "the program's stdout is the caller's pipe")
    with open(errpath) as f:
        sf.eq(f.read(), "to-file\n", "the program's stderr is the caller's file")


# ==================================================================================================
# terminals and signals

def test_tty(env):
    d = df.Daemon(env)
    m, s = sf.openpty(rows=37, cols=101)
    env.fds.append(m)
    p = d.ctl_popen(["exec", "-t", "sh", "-c",
                     "tty; stty size; echo ready; read x; stty size; echo got=$x; exit 3"],
                    stdin=s, stdout=s, stderr=s, start_new_session=True)
    os.close(s)
    out = sf.read_master(m, p, timeout=15, until=b"ready")
    # A new window size reaches the sandbox's terminal (SIGWINCH to sandboxctl).
    fcntl.ioctl(m, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    p.send_signal(signal.SIGWINCH)
    time.sleep(0.3)
    os.write(m, b"hello\r")
    out += sf.read_master(m, p, timeout=15)
    rc = p.wait(10)
    text = out.decode(errors="replace").replace("\r", "")
    lines = [line for line in text.splitlines() if line]
    sf.eq(rc, 3, f"exit status with -t (output {text!r})")
    sf.eq(lines[0], "/dev/pts/0", f"tty inside: {text!r}")
    sf.eq(lines[1], "37 101", f"stty size inside: {text!r}")
    sf.check("50 120" in lines, f"the new window size did not reach the sandbox: {text!r}")
    sf.check("got=hello" in lines, f"input typed on the terminal did not reach the program: {text!r}")


def test_signals_forwarded(env):
    d = df.Daemon(env)
    for sig, code in ((signal.SIGTERM, 42), (signal.SIGINT, 43)):
        p = d.ctl_popen(["exec", "sh", "-c",
                         f"trap 'exit {code}' {sig.name[3:]}; echo ready; while :; do sleep 0.1; done"])
        df.wait_line(p.stdout, "ready")
        t0 = time.monotonic()
        p.send_signal(sig)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            rc = f"still running 10 s after {sig.name}"
        sf.eq(rc, code, f"exit status after {sig.name} to sandboxctl (the program traps it and exits {code})")
        sf.check(time.monotonic() - t0 < 3, f"{sig.name} took too long to end the program")


# ==================================================================================================
# ps, kill, version

def test_ps_kill_version(env):
    d = df.Daemon(env)
    sf.eq(ps_json(d), [], "ps --json with nothing running")
    arg = f"61.{df.token()}"
    p = d.ctl_popen(["exec", "sleep", arg])
    e = wait_entry(d, "sleep")
    sf.check(is_id(e.get("id")), f"ps --json id: {e}")
    sf.eq(e.get("uid"), 0, f"ps --json uid: {e}")
    sf.check(isinstance(e.get("pid"), int) and df.alive(e["pid"]), f"ps --json pid is not a live process: {e}")
    sf.check(abs(e.get("started_usec", 0) / 1e6 - time.time()) < 60, f"ps --json started_usec: {e}")
    sf.check(os.path.isdir(os.path.join(env.state, e["id"])), f"no state directory entry for sandbox {e['id']}")
    env.sandbox_ids()
    # The init's host pid: the program is its child.
    prog = df.wait_for(lambda: [int(x) for x in os.listdir("/proc") if x.isdigit()
                                and sf.proc_cmdline(int(x)) == [b"sleep", arg.encode()]], 10, "the program")[0]
    sf.eq(int(sf.proc_status(prog)["PPid"]), e["pid"], "the program's parent is the pid ps reports")
    r = d.ctl(["ps"])
    sf.eq(r.returncode, 0, f"ps {r}")
    lines = r.stdout.splitlines()
    sf.check(lines[0].split()[:3] == ["ID", "UID", "PID"], f"ps header: {r.stdout!r}")
    row = [line for line in lines if line.startswith(e["id"])]
    sf.check(len(row) == 1 and row[0].split()[1:3] == ["0", str(e["pid"])] and row[0].endswith("sleep"),
             f"ps does not list the sandbox: {r.stdout!r}")
    # kill ID: the exec'ing client gets 128 + TERM.
    r = d.ctl(["kill", e["id"]])
    sf.eq((r.returncode, r.stderr), (0, ""), f"sandboxctl kill {e['id']} {r}")
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        rc = "still running 10 s after kill"
    sf.eq(rc, 143, f"the exec'ing sandboxctl's status after kill (stderr {p.stderr.read()!r})")
    sf.eq(df.wait_gone([prog, e["pid"]]), [], "sandbox processes alive after kill")
    sf.eq(ps_json(d), [], "ps --json after the sandbox ended")
    # Unknown ids, bad ids.
    r = d.ctl(["kill", "0123456789abcdef"])
    sf.check(r.returncode != 0 and "no sandbox with id 0123456789abcdef" in r.stderr, f"kill of an unknown id {r}")
    r = d.ctl(["kill", "not-an-id"])
    sf.check(r.returncode != 0 and "not-an-id" in r.stderr, f"kill of a malformed id {r}")
    # kill with another signal.
    p = d.ctl_popen(["exec", "sh", "-c", "echo ready; exec sleep 60"])
    df.wait_line(p.stdout, "ready")
    e = wait_entry(d, "sh")
    r = d.ctl(["kill", e["id"], "KILL"])
    sf.eq(r.returncode, 0, f"kill ID KILL {r}")
    sf.eq(p.wait(10), 137, "status after kill ID KILL")
    # version: both sides.
    r = d.ctl(["version"])
    lines = r.stdout.splitlines()
    sf.check(r.returncode == 0 and len(lines) == 2 and lines[0].startswith("sandboxctl ")
             and lines[1].startswith("sandboxd "), f"sandboxctl version {r}")
    dv = subprocess.run([df.sandboxd(), "--version"], capture_output=True, text=True).stdout.strip()
    sf.eq(lines[1], dv, "the daemon's version as reported over the socket")


def test_client_killed_ends_sandbox(env):
    """kill -9 of the exec'ing sandboxctl: the daemon sees the connection end and ends the sandbox."""
    d = df.Daemon(env)
    arg = f"62.{df.token()}"
    p = d.ctl_popen(["exec", "sleep", arg])
    e = wait_entry(d, "sleep")
    env.sandbox_ids()
    p.kill()
    p.wait(10)
    sf.eq(df.wait_gone([e["pid"]]), [], "the sandbox's init still runs 5 s after its client was killed")
    df.wait_for(lambda: ps_json(d) == [], 5, "ps to be empty after the client was killed")
    env.expect_clean("after the client was killed")


# ==================================================================================================
# many clients at once

@sf.timeout(90)
def test_50_concurrent(env):
    d = df.Daemon(env)
    r = d.ctl(["exec", "true"])
    sf.eq(r.returncode, 0, f"activation {r}")
    fds_before = d.fd_count()
    tok = df.token()
    procs = []
    t0 = time.monotonic()
    for i in range(50):
        procs.append(d.ctl_popen(["exec", "sh", "-c", f"echo {tok}-{i}; exit {i + 1}"]))
    bad = []
    for i, p in enumerate(procs):
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            bad.append((i, "no exit within 60 s"))
            continue
        if (p.returncode, out.decode()) != (i + 1, f"{tok}-{i}\n"):
            bad.append((i, p.returncode, out, err[-200:]))
    elapsed = time.monotonic() - t0
    sf.eq(bad, [], "50 concurrent execs: (index, status, stdout, stderr) that were wrong")
    print(f"# 50 concurrent execs in {elapsed:.1f}s")
    sf.eq(ps_json(d), [], "ps after 50 execs")
    time.sleep(0.2)
    sf.check(d.fd_count() <= fds_before, f"the daemon's descriptors grew from {fds_before} to {d.fd_count()}")
    env.expect_clean("after 50 concurrent execs")


# ==================================================================================================
# authorization

def test_authorization(env):
    if not df.SETPRIV:
        raise sf.Skip("no setpriv")
    d = df.Daemon(env, name="strict")
    # A root client keeps a sandbox running while others are refused.
    root_p = d.ctl_popen(["exec", "sh", "-c", "echo ready; sleep 2; echo root-ok"])
    df.wait_line(root_p.stdout, "ready")
    # The socket as the activator made it (0644): the kernel refuses the connection.
    r = d.ctl(["exec", "true"], user=NOBODY)
    sf.eq(r.returncode, 125, f"uid {NOBODY} on a 0644 socket {r}")
    sf.check("permission denied" in r.stderr.lower(), f"message on a 0644 socket: {r.stderr!r}")
    # World-connectable: now the daemon itself refuses by SO_PEERCRED.
    os.chmod(d.sock, 0o666)
    for args in (["exec", "true"], ["ps"], ["kill", "0123456789abcdef"], ["version"]):
        r = d.ctl(args, user=NOBODY)
        sf.eq(r.returncode, 125, f"uid {NOBODY}: sandboxctl {args} {r}")
        sf.check("permission denied" in r.stderr and f"uid {NOBODY}" in r.stderr,
                 f"uid {NOBODY}: sandboxctl {args}: message {r.stderr!r}")
    r = d.ctl(["exec", "echo", "root-too"])
    sf.eq((r.returncode, r.stdout), (0, "root-too\n"), f"root while others are refused {r}")
    out, _ = root_p.communicate(timeout=15)
    sf.eq((root_p.returncode, out.decode()), (0, "root-ok\n"), "the root client's sandbox that ran meanwhile")
    sf.check(d.running(), "the strict daemon died")
    d.stop()

    # allow-groups: a supplementary group of the peer is enough (SO_PEERGROUPS).
    gid = 40000 + os.getpid() % 20000
    d = df.Daemon(env, name="groups", config=f"allow-groups = {gid}\n")
    os.chmod(d.sock, 0o666)
    r = d.ctl(["exec", "echo", "group-ok"], user=NOBODY)
    sf.check(r.returncode == 125 and "permission denied" in r.stderr, f"not in group {gid}: {r}")
    argv = [df.SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={gid}"] + d.argv_ctl(
        ["exec", "echo", "group-ok"])
    r = df.run(env, argv)
    sf.eq((r.returncode, r.stdout), (0, "group-ok\n"), f"uid {NOBODY} with supplementary group {gid} {r}")
    d.stop()

    # allow-users with caps.
    conf = (f"# test\nallow-users = {NOBODY}\nmax-memory = 64m\nmax-pids = 64\nmax-timeout = 20\n"
            "max-sandboxes-per-client = 2\n")
    d = df.Daemon(env, name="allow", config=conf)
    os.chmod(d.sock, 0o666)
    r = d.ctl(["exec", "sh", "-c", "id -u; echo ok"], user=NOBODY)
    sf.eq((r.returncode, r.stdout.split()), (0, ["0", "ok"]), f"an allowed uid runs a sandbox {r}")
    refusals = [
        (["--bind", "/etc:/x", "true"], ["permission denied", "--bind"]),
        (["--memory", "128m", "true"], ["permission denied", "max-memory"]),
        (["--pids", "1000", "true"], ["permission denied", "max-pids"]),
        (["--timeout", "60", "true"], ["permission denied", "max-timeout"]),
        (["--net", "host", "true"], ["permission denied", "--net host"]),
    ]
    for args, words in refusals:
        r = d.ctl(["exec"] + args, user=NOBODY)
        sf.eq(r.returncode, 125, f"uid {NOBODY}: exec {args} {r}")
        for w in words:
            sf.check(w in r.stderr, f"uid {NOBODY}: exec {args}: message {r.stderr!r} lacks {w!r}")
    # Below the caps it works, and the caps apply when no limit is asked for: a hog hits max-memory.
    r = d.ctl(["exec", "--memory", "32m", "--timeout", "10", "true"], user=NOBODY)
    sf.eq(r.returncode, 0, f"limits below the caps {r}")
    hog = "b = bytearray(0)\nwhile True: b += bytearray(8 << 20)\n"
    r = d.ctl(["exec", "python3", "-c", hog], user=NOBODY, timeout=60)
    sf.eq(r.returncode, 137, f"a memory hog without --memory under max-memory = 64m {r}")
    sf.check("memory" in r.stderr, f"message of the hog: {r.stderr!r}")
    # Root is not capped and may use host paths at the same time.
    r = d.ctl(["exec", "--bind", "/etc:/hostetc:ro", "--memory", "256m", "cat", "/hostetc/hostname"])
    sf.eq((r.returncode, r.stdout), (0, open("/etc/hostname").read()), f"root with --bind on the same daemon {r}")
    # ps: root sees everyone's, the allowed user only its own; it may not kill root's.
    root_p = d.ctl_popen(["exec", "sh", "-c", "echo ready; exec sleep 30"])
    df.wait_line(root_p.stdout, "ready")
    user_p = d.ctl_popen(["exec", "sh", "-c", "echo ready; exec sleep 30"], user=NOBODY)
    df.wait_line(user_p.stdout, "ready")
    mine = ps_json(d, user=NOBODY)
    sf.eq([e["uid"] for e in mine], [NOBODY], f"ps as uid {NOBODY}: {mine}")
    everyone = ps_json(d)
    sf.eq(sorted(e["uid"] for e in everyone), [0, NOBODY], f"ps as root: {everyone}")
    root_id = [e["id"] for e in everyone if e["uid"] == 0][0]
    r = d.ctl(["kill", root_id], user=NOBODY)
    sf.check(r.returncode == 125 and "not yours" in r.stderr, f"uid {NOBODY} kills root's sandbox {r}")
    # max-sandboxes-per-client = 2: a third one at once is refused.
    user_p2 = d.ctl_popen(["exec", "sh", "-c", "echo ready; exec sleep 30"], user=NOBODY)
    df.wait_line(user_p2.stdout, "ready")
    r = d.ctl(["exec", "true"], user=NOBODY)
    sf.check(r.returncode == 125 and "max-sandboxes-per-client" in r.stderr, f"a third sandbox {r}")
    r = d.ctl(["kill", mine[0]["id"]], user=NOBODY)
    sf.eq(r.returncode, 0, f"uid {NOBODY} kills its own sandbox {r}")
    sf.eq(user_p.wait(10), 143, "status of the user's killed sandbox")
    for p in (root_p, user_p2):
        p.send_signal(signal.SIGTERM)
        sf.eq(p.wait(10), 143, "status after SIGTERM")
    d.stop()

    # A cap is the default: max-timeout = 1 ends an allowed user's sleep 10 with 124.
    d = df.Daemon(env, name="tcap", config=f"allow-users = nobody\nmax-timeout = 1\n")
    os.chmod(d.sock, 0o666)
    r = d.ctl(["exec", "sleep", "10"], user=NOBODY)
    sf.check(r.returncode == 124 and "time limit" in r.stderr and r.elapsed < 5,
             f"uid {NOBODY}: sleep 10 under max-timeout = 1 {r}")


# ==================================================================================================
# malformed frames

def _bad_cases(sock):
    """(name, function(sock) -> list of frames the daemon sent before closing)."""
    H = df.header
    hello = df.frame(df.HELLO, df.hello_payload())

    def simple(data, after_hello=False, fds=(), shut=False):
        def go():
            c = df.RawClient(sock)
            try:
                if after_hello:
                    c.hello()
                c.send(data, fds)
                if shut:
                    c.s.shutdown(socket.SHUT_WR)
                return c.frames_until_eof()
            finally:
                c.close()
        return go

    devnull = os.open("/dev/null", os.O_RDWR)
    exec_true = df.frame(df.EXEC, df.exec_payload(["true"]))
    return devnull, [
        ("bad magic", simple(H(df.HELLO, 0, magic=0xdeadbeef) + b"x" * 16)),
        ("wrong version", simple(H(df.HELLO, len(df.hello_payload()), version=2) + df.hello_payload())),
        ("reserved != 0", simple(H(df.HELLO, len(df.hello_payload()), reserved=1) + df.hello_payload())),
        ("length > 2 MiB", simple(H(df.HELLO, df.PAYLOAD_MAX + 1))),
        ("2 MiB of garbage", simple(df.frame(df.HELLO, b"\xff" * df.PAYLOAD_MAX))),
        ("truncated frame, then close", simple(hello[:20], shut=True)),
        ("truncated header, then close", simple(hello[:7], shut=True)),
        ("garbage TLV in HELLO", simple(df.frame(df.HELLO, b"\x01\x00\x00\x00\xff\xff\xff\x7f" + b"junk"))),
        ("HELLO without fields", simple(df.frame(df.HELLO, b""))),
        ("HELLO with a bad version range", simple(df.frame(df.HELLO, df.t_u32(1, 100) + df.t_u32(2, 109)
                                                            + df.t_str(3, "x")))),
        ("EXEC before HELLO", simple(exec_true, fds=(devnull, devnull, devnull))),
        ("EXEC with 1 fd", simple(exec_true, after_hello=True, fds=(devnull,))),
        ("EXEC with no fd", simple(exec_true, after_hello=True)),
        ("EXEC with 4 fds", simple(exec_true, after_hello=True, fds=(devnull,) * 4)),
        ("EXEC without argv", simple(df.frame(df.EXEC, b""), after_hello=True, fds=(devnull,) * 3)),
        ("unknown message type", simple(df.frame(99), after_hello=True)),
        ("a daemon's message type", simple(df.frame(df.HELLO_REPLY, b""), after_hello=True)),
        ("a second HELLO", simple(hello, after_hello=True)),
        ("LIST with a descriptor", simple(df.frame(df.LIST), after_hello=True, fds=(devnull,))),
    ]


@sf.timeout(90)
def test_malformed_frames(env):
    d = df.Daemon(env)
    r = d.ctl(["exec", "true"])
    sf.eq(r.returncode, 0, f"activation {r}")
    # Positive control of the hand-made frames: HELLO, then EXEC with 3 descriptors runs a program.
    rfd, wfd = os.pipe()
    devnull = os.open("/dev/null", os.O_RDONLY)
    env.fds += [rfd, devnull]
    c = df.RawClient(d.sock)
    c.hello()
    c.send(df.frame(df.EXEC, df.exec_payload(["sh", "-c", "echo raw-ok"])), fds=(devnull, wfd, wfd))
    os.close(wfd)
    f1, f2 = c.recv_frame(), c.recv_frame()
    c.close()
    sf.eq((f1 and f1[0], f2 and f2[0]), (df.STARTED, df.EXIT), "answers to a hand-made EXEC")
    sf.eq(os.read(rfd, 100), b"raw-ok\n", "output of the hand-made EXEC")

    dn, cases = _bad_cases(d.sock)
    env.fds.append(dn)
    results = []
    for name, go in cases:
        try:
            frames = go()
        except socket.timeout:
            results.append((name, "the daemon neither answered nor closed the connection within 10 s"))
            continue
        except (BrokenPipeError, ConnectionResetError):
            frames = []
        errors = [df.parse_error(p) for t, p in frames if t == df.ERROR]
        others = [t for t, p in frames if t != df.ERROR]
        if others or (frames and (len(errors) != 1 or errors[0]["status"] != 125 or not errors[0]["message"])):
            results.append((name, f"unexpected answer: {frames}"))
        sf.check(d.running(), f"the daemon died after: {name}")
        r = d.ctl(["exec", "echo", "still-serving"])
        if (r.returncode, r.stdout) != (0, "still-serving\n"):
            results.append((name, f"a normal exec afterwards failed: {r}"))
        print(f"#   {name}: " + ("; ".join(e["message"] for e in errors) if errors else "closed without ERROR"))
    sf.eq(results, [], "malformed frames: (case, problem)")

    # Pipelined requests: 200 LIST frames in one write get 200 answers, in order.
    c = df.RawClient(d.sock)
    c.hello()
    c.send(df.frame(df.LIST) * 200)
    got = [c.recv_frame() for _ in range(200)]
    c.close()
    sf.eq([f and f[0] for f in got], [df.LIST_REPLY] * 200, "answers to 200 pipelined LIST frames")
    # A client that sends EXEC and vanishes: its sandbox is ended.
    for _ in range(5):
        c = df.RawClient(d.sock)
        c.hello()
        c.send(df.frame(df.EXEC, df.exec_payload(["sleep", "30"])), fds=(devnull, devnull, devnull))
        c.close()
    df.wait_for(lambda: ps_json(d) == [], 10, "the vanished clients' sandboxes to end")
    env.expect_clean("after clients that vanished")

    # 50 more bad connections must not leak descriptors in the daemon.
    time.sleep(0.2)
    before = d.fd_count()
    for i in range(50):
        try:
            cases[i % len(cases)][1]()
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass
    r = d.ctl(["exec", "echo", "after-50"])
    sf.eq((r.returncode, r.stdout), (0, "after-50\n"), f"exec after 50 bad connections {r}")
    time.sleep(0.2)
    after = d.fd_count()
    sf.check(after <= before, f"the daemon's descriptors grew from {before} to {after} over 50 bad connections: "
                              f"{sorted(os.listdir(f'/proc/{d.pid}/fd'), key=int)}")


# ==================================================================================================
# crash recovery and SIGTERM

def test_crash_recovery(env):
    d = df.Daemon(env, name="first")
    arg = f"63.{df.token()}"
    p = d.ctl_popen(["exec", "sleep", arg])
    e = wait_entry(d, "sleep")
    sid = e["id"]
    env.sandbox_ids()
    prog = df.wait_for(lambda: [int(x) for x in os.listdir("/proc") if x.isdigit()
                                and sf.proc_cmdline(int(x)) == [b"sleep", arg.encode()]], 10, "the program")[0]
    servers = [x for x in env.union_servers() if x != d.pid]
    sf.check(servers, "no union server mentions the state directory while the sandbox runs")
    cgs = [c for c in sf.sandbox_cgroups() if c.endswith(f"sandbox-{sid}")]
    sf.check(cgs, f"no cgroup sandbox-{sid} while the sandbox runs")
    d.kill()  # SIGKILL
    left = df.wait_gone([prog, e["pid"]] + servers, timeout=5)
    sf.eq(left, [], f"sandbox processes alive 5 s after kill -9 of the daemon: "
                    f"{[(x, sf.proc_cmdline(x)) for x in left]}")
    sf.eq(p.wait(10), 125, "the exec'ing client's status when the daemon is killed")
    sf.check("daemon" in p.stderr.read().decode(), "the client does not say what happened")
    sf.check(sid in os.listdir(env.state), "the killed daemon's sandbox directory is not left (nothing to recover)")
    stale_cg = [c for c in sf.sandbox_cgroups() if c.endswith(f"sandbox-{sid}")]
    seen = env.leftovers(grace=0)
    sf.check(any(sid in x for x in seen), f"the leftover check does not see the stale sandbox: {seen}")
    print(f"# left by the killed daemon: state dir {sid}, cgroups {stale_cg}")
    # A fresh daemon (new activator, new socket) cleans up at start.
    d2 = df.Daemon(env, name="second")
    r = d2.ctl(["version"])
    sf.eq(r.returncode, 0, f"activation of the second daemon {r}")
    sf.check(d2.is_sandboxd(), "the second daemon did not start")
    sf.check("stale" in d2.log(), f"the second daemon did not report the stale sandbox: {d2.log()!r}")
    env.expect_clean("after the restart (the daemon still runs)")
    sf.eq([c for c in sf.sandbox_cgroups() if c.endswith(f"sandbox-{sid}")], [], f"cgroup sandbox-{sid}")
    sf.eq(sorted(os.listdir(env.state)), sorted(n for n in os.listdir(env.state) if n in df.SHARED_STATE),
          "the state directory holds only shared entries")
    r = d2.ctl(["exec", "echo", "again"])
    sf.eq((r.returncode, r.stdout), (0, "again\n"), f"exec after recovery {r}")


def test_sigterm_daemon(env):
    d = df.Daemon(env)
    procs = [d.ctl_popen(["exec", "sh", "-c", f"echo ready; trap '' TERM; while :; do sleep 0.1; done # {i}"])
             for i in range(3)]
    m, s = sf.openpty()
    env.fds.append(m)
    procs.append(d.ctl_popen(["exec", "-t", "sh", "-c", "echo ready; exec sleep 60"], stdin=s, stdout=s, stderr=s,
                             start_new_session=True))
    os.close(s)
    for p in procs[:3]:
        df.wait_line(p.stdout, "ready")
    sf.read_master(m, procs[3], timeout=10, until=b"ready")
    entries = df.wait_for(lambda: (lambda x: x if len(x) == 4 else None)(ps_json(d)), 10, "4 sandboxes in ps")
    env.sandbox_ids()
    inits = [e["pid"] for e in entries]
    os.kill(d.pid, signal.SIGTERM)
    statuses = []
    for p in procs:
        try:
            statuses.append(p.wait(15))
        except subprocess.TimeoutExpired:
            statuses.append("hangs")
    rc = d.wait_exit(15)
    sf.eq(rc, 0, "the daemon's exit status after SIGTERM")
    sf.check(all(isinstance(x, int) and x != 0 for x in statuses),
             f"clients' statuses after SIGTERM to the daemon: {statuses}")
    print(f"# clients' statuses after SIGTERM to the daemon: {statuses}")
    sf.eq(df.wait_gone(inits), [], "sandbox inits alive after the daemon ended")
    env.expect_clean("after SIGTERM to the daemon")


if __name__ == "__main__":
    df.main()
