# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared fixtures for the sandboxd/sandboxctl integration tests (tests/integration/test_sandboxd.py).

What it does: a per-test temp area under /tmp (0755, so a sandbox's unprivileged init reaches its root by
name) with its own state directory and socket paths; daemons started for real, either through
systemd-socket-activate (socket activation: LISTEN_FDS) or with --listen; sandboxctl runs (as root or
as another uid through setpriv); a raw client that speaks the wire protocol byte by byte (for malformed
frames); checks for what a sandbox or a crashed daemon could leave behind on the host (cgroups named
sandbox-ID, union servers and other processes mentioning the state directory, host mounts mentioning
it, per-sandbox entries of the state directory); and a TAP runner like tests/lib/sandbox_fixture.py.

What it does not do: mock anything. It kills only processes it started (by pid) and, in cleanup after a
failure, processes whose command line names this test's own state directory, and only removes cgroups
of sandboxes that were started from that state directory.

Contract: exit 0 all passed, 1 some failed, 77 skipped (not root, no /dev/fuse, no binaries) unless
SBX_TESTS_MUST_RUN=1, which turns a skip into a failure. After every test that passed, the runner stops
the test's daemons with SIGTERM and fails the test if anything was left behind.
"""

import inspect
import re
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_fixture as sf  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("SBX_DAEMON_TEST_TIMEOUT", "60"))
SHARED_STATE = sf.SHARED_STATE
PROBE_INSIDE = sf.PROBE_DIR_INSIDE

# --------------------------------------------------------------------------------------------------
# binaries


def _bin(var, rel):
    return os.path.abspath(os.environ.get(var) or sf._default(rel))


def sandboxd():
    return _bin("SANDBOXD", "sandboxd/sandboxd")


def sandboxctl():
    return _bin("SANDBOXCTL", "tools/sandboxctl")


def probe_host_path():
    return sf.probe_host_path()


def probe():
    return sf.probe()


def probe_bind():
    """sandboxctl exec options that bind the probe's directory read-only at /probe."""
    return ["--bind", f"{os.path.dirname(probe_host_path())}:{PROBE_INSIDE}:ro"]


ACTIVATE = shutil.which("systemd-socket-activate")
SETPRIV = shutil.which("setpriv")


def prerequisites():
    if os.geteuid() != 0:
        return "not root"
    try:
        with open("/proc/self/uid_map") as f:
            if f.read().split() != ["0", "0", "4294967295"]:
                return "in a user namespace: sandboxd needs real root"
    except OSError:
        pass
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    for what, p in (("sandboxd", sandboxd()), ("sandboxctl", sandboxctl()), ("the probe", probe_host_path())):
        if not os.access(p, os.X_OK):
            return f"no {what} at {p} (set SANDBOXD / SANDBOXCTL / SANDBOX_PROBE)"
    if not ACTIVATE:
        return "no systemd-socket-activate"
    return None


# --------------------------------------------------------------------------------------------------
# daemons


def proc_exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def proc_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return [e.decode(errors="replace") for e in f.read().split(b"\0") if e]
    except OSError:
        return []


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


class Daemon:
    """One sandboxd of a test. activate=True: systemd-socket-activate -l SOCK --fdname=sandboxd sandboxd
    ... (the activator execs the daemon in its own process on the first connection, so self.pid is the
    daemon's pid from then on); activate=False: sandboxd --listen SOCK."""

    def __init__(self, env, name="d", activate=True, idle=30, config=None, extra=()):
        self.env, self.name, self.activate = env, name, activate
        self.sock = env.path(f"{name}.sock")
        self.logpath = env.path(f"{name}.log")
        argv = [sandboxd(), "--state-dir", env.state, "--data-dir", env.data, "--idle-timeout", str(idle)]
        if config is not None:
            cpath = env.write(f"{name}.conf", config)
            argv += ["--config", cpath]
        argv += list(extra)
        if activate:
            argv = [ACTIVATE, "-l", self.sock, "--fdname=sandboxd"] + argv
        else:
            argv += ["--listen", self.sock]
        self.argv = argv
        self._log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        env.daemons.append(self)
        self.wait_ready("Listening on" if activate else "Ready")

    def wait_ready(self, want, timeout=10):
        """Until WANT is in the log; the daemon must not exit meanwhile."""
        deadline = time.monotonic() + timeout
        while want not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon {self.argv} exited with {self.proc.returncode}: {self.log()!r}")
            if time.monotonic() > deadline:
                raise sf.TestTimeout(f"daemon {self.argv} not ready after {timeout} s: {self.log()!r}")
            time.sleep(0.02)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def running(self):
        return self.proc.poll() is None

    def is_sandboxd(self):
        """The process is sandboxd itself (activated), not (yet) the activator."""
        return self.running() and proc_exe(self.pid) == os.path.realpath(sandboxd())

    def fd_count(self):
        return fd_count(self.pid)

    def argv_ctl(self, args):
        return [sandboxctl(), "--socket", self.sock] + list(args)

    def ctl(self, args, input=None, timeout=30, user=None, text=True, stdin=None, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=None):
        """Runs sandboxctl --socket SOCK ARGS to completion (as USER: a uid, through setpriv)."""
        argv = self.argv_ctl(args)
        if user is not None:
            argv = [SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
        return run(self.env, argv, input=input, timeout=timeout, text=text, stdin=stdin, stdout=stdout,
                   stderr=stderr, env=env)

    def ctl_popen(self, args, user=None, **kw):
        argv = self.argv_ctl(args)
        if user is not None:
            argv = [SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups"] + argv
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(argv, **kw)
        self.env.procs.append(p)
        return p

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL if it does not end in TIMEOUT seconds. Returns the exit status."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


def run(test_env, argv, input=None, timeout=30, text=True, stdin=None, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=None, pass_fds=()):
    """Runs ARGV to completion (killed by the test's cleanup if the test fails meanwhile)."""
    t0 = time.monotonic()
    if input is not None:
        stdin = subprocess.PIPE
    elif stdin is None:
        stdin = subprocess.DEVNULL
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, text=text, env=env, pass_fds=pass_fds)
    test_env.procs.append(p)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise sf.TestTimeout(f"{argv} did not end within {timeout}s; stdout {out!r} stderr {err!r}")
    finally:
        if p.poll() is not None and p in test_env.procs:
            test_env.procs.remove(p)
    return sf.Result(argv, p.returncode, out, err, time.monotonic() - t0)


# --------------------------------------------------------------------------------------------------
# per-test environment


class DaemonEnv(sf.Env):
    """sandbox_fixture.Env with its own prefix, plus the daemons of the test (stopped, or killed, at
    cleanup; their leftovers are then removed by Env.cleanup: processes mentioning the state
    directory, cgroups of sandboxes seen in it, the temp dir)."""

    def __init__(self, tag):  # noqa: super().__init__ would create a directory with another prefix
        self.root = tempfile.mkdtemp(prefix=f"sbxd-{tag}-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.state = os.path.join(self.root, "state")
        self.data = os.path.join(self.root, "data")
        self.procs, self.fds, self.daemons = [], [], []
        self.timed_out = False
        self.seen_ids = set()

    def timeout_expired(self, limit):
        self.timed_out = True
        print(f"# watchdog: test still running after {limit}s; killing its clients and daemons", file=sys.stderr)
        for p in list(self.procs):
            sf.kill_proc(p)
        for d in self.daemons:
            d.kill()

    def stop_daemons(self):
        for d in self.daemons:
            d.stop()

    def cleanup(self):
        for p in list(self.procs):
            sf.kill_proc(p)
        for d in self.daemons:
            d.stop(timeout=10)
        super().cleanup()

    def leftovers(self, exclude_pids=(), grace=5.0):
        """What this test's sandboxes left on the host: waits up to GRACE seconds for things going away.
        EXCLUDE_PIDS: processes allowed to mention the state directory (running daemons)."""
        deadline = time.monotonic() + grace
        exclude = set(exclude_pids) | {d.pid for d in self.daemons if d.running()}
        while True:
            problems = []
            ids = self.sandbox_ids()  # also records them in seen_ids
            for d in self.daemons:  # every sandbox a daemon of ours logged
                self.seen_ids.update(re.findall(r"Sandbox ([0-9a-f]{16}) ", d.log()))
            bad = [i for i in ids if len(i) == 16 and all(c in "0123456789abcdef" for c in i)]
            if ids:
                problems.append(f"state directory entries besides {SHARED_STATE}: {ids} (sandbox ids: {bad})")
            mounts = [m for m in sf.host_mounts() if self.root in m[0] or self.root in m[2]]
            if mounts:
                problems.append(f"host mounts mentioning the test dir: {sorted(mounts)}")
            cgs = [c for c in sf.sandbox_cgroups() if any(c.endswith(f"sandbox-{i}") for i in self.seen_ids)]
            if cgs:
                problems.append(f"cgroups of this test's sandboxes left: {sorted(cgs)}")
            procs = [p for p in self.union_servers() if p not in exclude and alive(p)]
            if procs:
                problems.append(f"processes mentioning the state or data dir: "
                                f"{[(p, sf.proc_cmdline(p)) for p in procs]}")
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.1)

    def expect_clean(self, what, exclude_pids=()):
        problems = self.leftovers(exclude_pids)
        sf.check(not problems, f"{what}: left behind: {'; '.join(problems)}")


# --------------------------------------------------------------------------------------------------
# the wire protocol, by hand (docs: proto/wire.h, proto/msg.h)

MAGIC = 0x31584253
HELLO, HELLO_REPLY, EXEC, STARTED, SIGNAL, RESIZE, EXIT, LIST, LIST_REPLY, KILL, ERROR, OK = range(1, 13)
PAYLOAD_MAX = 2 << 20


def header(mtype, length, magic=MAGIC, version=1, reserved=0):
    return struct.pack("<IHHII", magic, version, mtype, length, reserved)


def frame(mtype, payload=b"", **kw):
    return header(mtype, len(payload), **kw) + payload


def tlv(tag, value, reserved=0):
    return struct.pack("<HHI", tag, reserved, len(value)) + value


def t_u32(tag, v):
    return tlv(tag, struct.pack("<I", v))


def t_str(tag, s):
    return tlv(tag, s.encode() if isinstance(s, str) else s)


def hello_payload(client_version="raw-test"):
    return t_u32(1, 1) + t_u32(2, 1) + t_str(3, client_version)


def exec_payload(argv):
    return b"".join(t_str(1, a) for a in argv)


def parse_tlv(payload):
    fields, off = [], 0
    while off + 8 <= len(payload):
        tag, _, n = struct.unpack_from("<HHI", payload, off)
        fields.append((tag, payload[off + 8:off + 8 + n]))
        off += 8 + n
    return fields


def parse_error(payload):
    d = {"status": None, "error": 0, "message": ""}
    for tag, v in parse_tlv(payload):
        if tag == 1 and len(v) == 4:
            d["status"] = struct.unpack("<i", v)[0]
        elif tag == 2 and len(v) == 4:
            d["error"] = struct.unpack("<i", v)[0]
        elif tag == 3:
            d["message"] = v.decode(errors="replace")
    return d


class RawClient:
    """A unix stream connection to the daemon, frames read and written by hand."""

    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.eof = False

    def send(self, data, fds=()):
        if fds:
            socket.send_fds(self.s, [data], list(fds))
        else:
            self.s.sendall(data)

    def _fill(self):
        try:
            c = self.s.recv(65536)
        except ConnectionResetError:
            c = b""
        if not c:
            self.eof = True
        self.buf += c

    def recv_frame(self):
        """(type, payload), or None at EOF. socket.timeout if the daemon neither answers nor closes."""
        while True:
            if len(self.buf) >= 16:
                magic, ver, mtype, length, res = struct.unpack_from("<IHHII", self.buf)
                if magic != MAGIC or ver != 1 or res != 0:
                    raise AssertionError(f"the daemon sent a bad frame header: {self.buf[:16].hex()}")
                if len(self.buf) >= 16 + length:
                    payload = self.buf[16:16 + length]
                    self.buf = self.buf[16 + length:]
                    return mtype, payload
            if self.eof:
                return None
            self._fill()

    def hello(self):
        self.send(frame(HELLO, hello_payload()))
        f = self.recv_frame()
        if f is None or f[0] != HELLO_REPLY:
            raise AssertionError(f"HELLO was answered with {f!r}")
        return f

    def frames_until_eof(self):
        """Every frame until the daemon closes the connection."""
        res = []
        while True:
            f = self.recv_frame()
            if f is None:
                return res
            res.append(f)

    def close(self):
        self.s.close()


# --------------------------------------------------------------------------------------------------
# misc helpers


def wait_for(cond, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise sf.TestTimeout(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def wait_line(stream, want, timeout=15):
    """Reads from STREAM (a pipe of a Popen) until a line equals WANT; returns what was read."""
    deadline = time.monotonic() + timeout
    seen = b""
    fd = stream.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            c = os.read(fd, 4096)
            if not c:
                break
            seen += c
            if (want + "\n").encode() in seen:
                return seen.decode(errors="replace")
    raise sf.TestTimeout(f"did not see {want!r}; got {seen!r}")


def token():
    return f"{os.getpid()}{time.monotonic_ns() % 10**9}"


# --------------------------------------------------------------------------------------------------
# runner


def _after_pass(env):
    # Every test: stop its daemons cleanly, then nothing may be left behind.
    for p in list(env.procs):
        if p.poll() is None:
            raise AssertionError(f"a client is still running at the end of the test: {p.args}")
    env.stop_daemons()
    env.expect_clean("at the end of the test")


def print_daemon_logs(env):
    for d in env.daemons:
        for line in d.log().strip().splitlines()[-15:]:
            print(f"#   [{d.name} log] {line}")


def main(module_globals=None):
    """sandbox_fixture's runner with a fresh DaemonEnv per test and the daemon leftover checks."""
    if module_globals is None:
        module_globals = inspect.stack()[1].frame.f_globals
    sf.main(module_globals, make_env=DaemonEnv,
            header=f"# sandboxd under test: {sandboxd()}; sandboxctl: {sandboxctl()}; probe: {probe_host_path()}",
            check_prerequisites=prerequisites, after_pass=_after_pass, on_failure=print_daemon_logs)
