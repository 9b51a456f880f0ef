# SPDX-License-Identifier: LGPL-2.1-or-later
"""The client proper: sessions with the daemon (HELLO), one-shot sandboxes (EXEC), created sandboxes
(protocol version 4: CREATE, EXEC with `in`, STOP, RM, PAUSE, RESUME, COPY, SNAPSHOT), volumes (version 5:
VOLUME_CREATE, VOLUME_LIST, VOLUME_RM, and EXEC's and CREATE's volumes), listing and signalling.

A program's stdin, stdout and stderr are pipes of this process, whose other ends travel to the daemon
with EXEC (SCM_RIGHTS); this process feeds stdin and reads the outputs while it waits for EXIT on the
socket, so nothing is buffered by the daemon and a program's output can be streamed as it comes."""

from __future__ import annotations

import dataclasses
import errno as errno_mod
import io
import os
import posixpath
import re
import selectors
import signal as signal_mod
import tarfile
import time
from typing import (Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union)

from . import _wire as w
from ._errors import (CommandError, DaemonError, ProtocolError, SandboxError, TimeoutExpired,
                      UnsupportedError)

DEFAULT_SOCKET = "/run/sandboxd/sandboxd.sock"
CLIENT_VERSION = "sandbox-python 0.1.0"
#: How long past its own timeout the client waits for the daemon to end a command before it gives up.
TIMEOUT_GRACE = 30.0
#: run() keeps at most this many bytes of each of stdout and stderr by default (the rest is read and
#: dropped, and the result says it was truncated).
OUTPUT_MAX = 256 * 1024 * 1024

Command = Union[str, Sequence[Union[str, bytes]]]
Size = Union[int, str, None]
StdinData = Union[bytes, bytearray, memoryview, str, None]
#: What stdin= takes: data to feed the program, a descriptor of this process, or None (/dev/null).
Stdin = Union[bytes, bytearray, memoryview, str, int, None]
#: What volumes= takes: {"NAME": "/path"} ("/path:ro" for read-only), or ["NAME:/path", "NAME:/path:ro", ...].
Volumes = Union[Mapping[str, str], Sequence[str], None]

_LIMITS = {0: None, 1: "timeout", 2: "cpu-time", 3: "memory"}
_SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]{1,6})?)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_VOLUME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: The protocol version that defines volumes.
VOLUME_VERSION = 5


def parse_size(v: Size, what: str) -> Optional[int]:
    """Bytes from an int or a string with the tools' syntax ("512m", "1.5g", "unlimited");
    None stays None (the daemon's default)."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError(f"{what}: expected a size, got {v!r}")
    if isinstance(v, int):
        if v <= 0:
            raise ValueError(f"{what} must be positive (leave it out for the default), got {v}")
        return v
    s = str(v).strip()
    if s.lower() in ("unlimited", "infinity"):
        return w.U64_MAX
    m = _SIZE_RE.match(s)
    if not m or ("." in m.group(1) and not m.group(2)):
        raise ValueError(f"{what}: {v!r} is not a size (bytes, or a number with k, m, g or t, or 'unlimited')")
    mult: int = 1024 ** " kmgt".index((m.group(2) or " ").lower())
    whole, _, frac = m.group(1).partition(".")
    n = int(whole) * mult + (int(frac.ljust(6, "0")) * mult) // 10**6
    if n <= 0 or n >= w.U64_MAX:
        raise ValueError(f"{what}: {v!r} is out of range")
    return n


def _usec(seconds: Optional[float], what: str) -> int:
    if seconds is None:
        return 0
    if seconds <= 0:
        raise ValueError(f"{what} must be positive, got {seconds}")
    return max(1, int(seconds * 1_000_000))


def _argv(cmd: Command) -> List[bytes]:
    if isinstance(cmd, (str, bytes)):
        # A string is a shell command line, as the hosted services take it.
        cmd = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else [b"/bin/sh", b"-c", cmd]
    argv = [w.to_bytes(a, "an argument") for a in cmd]
    if not argv or not argv[0]:
        raise ValueError("the command is empty")
    if len(argv) > w.ARGS_MAX:
        raise ValueError(f"{len(argv)} arguments, above the protocol's limit of {w.ARGS_MAX}")
    return argv


def _env(env: Optional[Mapping[str, str]]) -> List[bytes]:
    if not env:
        return []
    out = []
    for k, v in env.items():
        kb, vb = w.to_bytes(k, "an environment name"), w.to_bytes(v, "an environment value")
        if not kb or b"=" in kb:
            raise ValueError(f"bad environment variable name {k!r}")
        out.append(kb + b"=" + vb)
    if len(out) > w.ENV_MAX:
        raise ValueError(f"{len(out)} environment variables, above the protocol's limit of {w.ENV_MAX}")
    return out


# --------------------------------------------------------------------------------------------------
# results

@dataclasses.dataclass(frozen=True)
class Stats:
    """The daemon's exit accounting for one command (its EXIT message).

    limit: which bound ended the command ("timeout", "cpu-time", "memory") or None;
    pids_limit_hit / disk_limit_hit: a fork or a write failed at the bound (the command may have gone on);
    union_failed: the sandbox's file system server ended (the sandbox was stopped, status 125)."""
    status: int
    exit_code: int
    signal: int
    limit: Optional[str]
    wall_time: float
    cpu_time: float
    memory_peak: int
    max_rss: int
    pids_limit_hit: bool
    disk_limit_hit: bool
    union_failed: bool

    def as_dict(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Result:
    """What a command did: its output (bytes), its exit code (-1 if a signal ended it), the daemon's
    accounting (stats), and the sandbox's id."""
    stdout: bytes
    stderr: bytes
    exit_code: int
    stats: Stats
    sandbox_id: str = ""
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.stats.limit is None

    @property
    def timed_out(self) -> bool:
        return self.stats.limit == "timeout"

    @property
    def status(self) -> int:
        """The exit status sandboxctl would exit with (124 timeout, 128+N signal, 137 memory, ...)."""
        return self.stats.status

    def check(self) -> "Result":
        """Self if the command succeeded, else CommandError naming how it ended and its stderr."""
        if not self.ok:
            how = (f"hit its {self.stats.limit} limit" if self.stats.limit else
                   f"was killed by signal {self.stats.signal}" if self.stats.signal else
                   f"exited with {self.exit_code}")
            tail = self.stderr[-2000:].decode(errors="replace").strip()
            raise CommandError(f"the command {how}" + (f": {tail}" if tail else ""), self)
        return self


def _parse_exit(payload: bytes) -> Stats:
    r = w.Reader(payload, "EXIT", range(1, 12))
    limit = r.u32(4, "limit", True)
    if limit not in _LIMITS:
        raise ProtocolError(f"EXIT: unknown limit {limit}")
    return Stats(status=r.i32(1, "status", True), exit_code=r.i32(2, "exit_code", True),
                 signal=r.i32(3, "signal", True), limit=_LIMITS[limit],
                 wall_time=r.u64(5, "wall_usec", True) / 1e6, cpu_time=r.u64(6, "cpu_usec", True) / 1e6,
                 memory_peak=r.u64(7, "memory_peak", True), pids_limit_hit=r.flag(8, "pids_limit_hit"),
                 disk_limit_hit=r.flag(9, "disk_limit_hit"), max_rss=r.u64(10, "max_rss"),
                 union_failed=r.flag(11, "union_failed"))


def _raise_error(payload: bytes) -> None:
    r = w.Reader(payload, "ERROR", (1, 2, 3))
    raise DaemonError(r.text(3, "message", limit=1024) or "", status=r.i32(1, "status", True),
                      errno=r.i32(2, "error"))


def _unexpected(mtype: int, want: str) -> ProtocolError:
    return ProtocolError(f"the daemon sent {w.TYPE_NAMES.get(mtype, f'message type {mtype}')} where "
                         f"{want} was due")


@dataclasses.dataclass(frozen=True)
class SandboxInfo:
    """One entry of the daemon's list (what `sandboxctl ps` shows). Fields after `started` come from
    protocol version 4 (None or 0 from an older daemon)."""
    id: str
    uid: int
    pid: int
    command: str
    started: float
    name: str = ""
    kind: str = "exec"
    state: str = "running"
    image: Optional[str] = None
    memory_bytes: int = 0
    memory_max: int = 0
    cpu_time: float = 0.0
    disk_bytes: int = 0
    disk_max: int = 0
    execs: int = 0
    expires: Optional[float] = None
    idle_ttl: Optional[float] = None


_KINDS = {0: "exec", 1: "created"}
_STATES = {0: "running", 1: "paused", 2: "stopping", 3: "stopped"}


def _parse_entry(payload: bytes) -> SandboxInfo:
    r = w.Reader(payload, "LIST_REPLY entry", range(1, 18))
    kind, state = r.u32(7, "kind"), r.u32(8, "state")
    expires, idle = r.u64(16, "expires_usec"), r.u64(17, "idle_ttl_usec")
    return SandboxInfo(
        id=r.text(1, "id", True, 16) or "", uid=r.u32(2, "uid", True), pid=r.u32(3, "pid"),
        command=r.text(4, "command", True) or "", started=r.u64(5, "started_usec", True) / 1e6,
        name=r.text(6, "name", limit=w.NAME_MAX) or "", kind=_KINDS.get(kind, str(kind)),
        state=_STATES.get(state, str(state)), image=r.text(9, "image", default=None),
        memory_bytes=r.u64(10, "memory_bytes"), memory_max=r.u64(11, "memory_max"),
        cpu_time=r.u64(12, "cpu_usec") / 1e6, disk_bytes=r.u64(13, "disk_bytes"), disk_max=r.u64(14, "disk_max"),
        execs=r.u32(15, "execs"), expires=expires / 1e6 if expires else None, idle_ttl=idle / 1e6 if idle else None)


# --------------------------------------------------------------------------------------------------
# sessions

class Session:
    """One connection to the daemon after HELLO. `version` is the protocol version both agreed on."""

    def __init__(self, socket_path: Optional[str] = None, connect_timeout: Optional[float] = 30.0):
        self.path = socket_path or os.environ.get("SANDBOXD_SOCKET") or DEFAULT_SOCKET
        try:
            self.conn = w.Connection(self.path, connect_timeout)
        except FileNotFoundError:
            raise SandboxError(f"cannot reach sandboxd: no socket at {self.path} (is sandboxd.socket running?)")
        except PermissionError:
            raise SandboxError(f"cannot reach sandboxd at {self.path}: permission denied (a member of group "
                               f"'sandbox' may connect)")
        except OSError as e:
            raise SandboxError(f"cannot reach sandboxd at {self.path}: {e.strerror or e}")
        try:
            hello = (w.put_u32(1, w.VERSION_MIN) + w.put_u32(2, w.VERSION_MAX)
                     + w.put_str(3, CLIENT_VERSION, "client_version", 64))
            self._send(w.frame(w.HELLO, hello))
            mtype, payload = self._reply("HELLO_REPLY")
            if mtype != w.HELLO_REPLY:
                raise _unexpected(mtype, "HELLO_REPLY")
            r = w.Reader(payload, "HELLO_REPLY", (1, 2))
            self.version = r.u32(1, "version", True)
            self.daemon_version = r.text(2, "daemon_version", True, 64) or ""
            if not w.VERSION_MIN <= self.version <= w.VERSION_MAX:
                raise ProtocolError(f"the daemon chose protocol version {self.version}, outside "
                                    f"{w.VERSION_MIN}..{w.VERSION_MAX}")
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def need(self, version: int, what: str) -> None:
        if self.version < version:
            raise UnsupportedError(f"{what} needs protocol version {version}; sandboxd "
                                   f"{self.daemon_version} speaks {self.version}", needed=version, have=self.version)

    def _send(self, data: bytes, fds: Sequence[int] = ()) -> None:
        try:
            self.conn.send(data, fds)
        except OSError as e:
            if not w.is_disconnect(e):
                raise SandboxError(f"sending to sandboxd: {e.strerror or e}")
            # The daemon refused the connection or the request: its ERROR may be waiting.
            f = self.conn.recv()
            if f is not None and f[0] == w.ERROR:
                _raise_error(f[1])
            raise ProtocolError("sandboxd closed the connection")

    def _reply(self, want: str) -> Tuple[int, bytes]:
        f = self.conn.recv()
        if f is None:
            raise ProtocolError(f"sandboxd closed the connection where {want} was due")
        if f[0] == w.ERROR:
            _raise_error(f[1])
        return f

    def request(self, mtype: int, payload: bytes, want: int) -> bytes:
        """One request and its reply (of type WANT, or ERROR raised as DaemonError)."""
        self._send(w.frame(mtype, payload))
        got, reply = self._reply(w.TYPE_NAMES[want])
        if got != want:
            raise _unexpected(got, w.TYPE_NAMES[want])
        return reply


def list_sandboxes(socket: Optional[str] = None) -> List[SandboxInfo]:
    """Every sandbox the daemon shows this client (its own; root sees all)."""
    with Session(socket) as s:
        reply = s.request(w.LIST, b"", w.LIST_REPLY)
    r = w.Reader(reply, "LIST_REPLY", (1,))
    return [_parse_entry(e) for e in r.repeated(1)]


def kill(sandbox_id: str, sig: int = signal_mod.SIGTERM, socket: Optional[str] = None) -> None:
    """Signals the program of sandbox SANDBOX_ID (what `sandboxctl kill` does)."""
    if not _ID_RE.match(sandbox_id):
        raise ValueError(f"{sandbox_id!r} is not a sandbox id (16 lowercase hex digits)")
    if not 1 <= int(sig) <= 64:
        raise ValueError(f"signal {sig} is not 1..64")
    with Session(socket) as s:
        s.request(w.KILL, w.put_str(1, sandbox_id, "id") + w.put_u32(2, int(sig)), w.OK)


def daemon_version(socket: Optional[str] = None) -> Tuple[str, int]:
    """(the daemon's version string, the protocol version agreed with it)."""
    with Session(socket) as s:
        return s.daemon_version, s.version


# --------------------------------------------------------------------------------------------------
# running a command: one EXEC on a session

OutputCallback = Callable[[bytes], None]


class Process:
    """A command running in a sandbox, as it runs: iterate over it for ("stdout" | "stderr", bytes)
    chunks as the program writes them; `result` is set once it ended (iteration finished, or wait()).
    kill() / send_signal() signal it through the daemon. Closing it before the end closes the
    connection, which ends a one-shot sandbox."""

    def __init__(self, session: Session, payload: bytes, stdin: Stdin, timeout: Optional[float],
                 max_output: int = OUTPUT_MAX):
        self.session = session
        self.timeout = timeout
        self.max_output = max_output
        self.result: Optional[Result] = None
        self.sandbox_id = ""
        self.pid = 0
        self._sel: Optional[selectors.DefaultSelector] = None
        self._stdin_data: Optional[memoryview] = None
        self._stdin_fd = -1
        self._out_fds: Dict[int, str] = {}
        self._stats: Optional[Stats] = None
        self._closed = False
        self._truncated = False
        self._pending_signals: List[int] = []
        ours: List[int] = []   # descriptors to close on failure
        theirs: List[int] = []
        try:
            if isinstance(stdin, int) and not isinstance(stdin, bool):
                theirs.append(os.dup(stdin))
            elif stdin is None:
                theirs.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            else:
                data = stdin.encode() if isinstance(stdin, str) else bytes(stdin)
                r, wr = os.pipe2(os.O_CLOEXEC)
                theirs.append(r)
                ours.append(wr)
                self._stdin_fd = wr
                self._stdin_data = memoryview(data)
            for name in ("stdout", "stderr"):
                r, wr = os.pipe2(os.O_CLOEXEC)
                ours.append(r)
                theirs.append(wr)
                self._out_fds[r] = name
            self.session._send(w.frame(w.EXEC, payload), theirs)
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.session.conn.fileno(), selectors.EVENT_READ, "sock")
        for fd, name in self._out_fds.items():
            os.set_blocking(fd, False)
            self._sel.register(fd, selectors.EVENT_READ, name)
        if self._stdin_fd >= 0:
            os.set_blocking(self._stdin_fd, False)
            if len(self._stdin_data or b""):
                self._sel.register(self._stdin_fd, selectors.EVENT_WRITE, "stdin")
            else:
                self._close_stdin()
        self._deadline = (time.monotonic() + timeout + TIMEOUT_GRACE) if timeout else None
        self._chunks: Dict[str, List[bytes]] = {"stdout": [], "stderr": []}

    # -- signals

    def send_signal(self, sig: int) -> None:
        """Signals the program (SIGNAL on this connection; only once the daemon said STARTED)."""
        if not 1 <= int(sig) <= 64:
            raise ValueError(f"signal {sig} is not 1..64")
        if self._closed or self._stats is not None:
            return
        if not self.sandbox_id:
            self._pending_signals.append(int(sig))   # sent when STARTED comes
            return
        self.session._send(w.frame(w.SIGNAL, w.put_u32(1, int(sig))))

    def kill(self) -> None:
        self.send_signal(signal_mod.SIGKILL)

    # -- the loop

    def _close_stdin(self) -> None:
        if self._stdin_fd >= 0:
            if self._sel:
                try:
                    self._sel.unregister(self._stdin_fd)
                except KeyError:
                    pass
            os.close(self._stdin_fd)
            self._stdin_fd = -1

    def _close_output(self, fd: int) -> None:
        if self._sel:
            self._sel.unregister(fd)
        os.close(fd)
        del self._out_fds[fd]

    def _step(self) -> Iterator[Tuple[str, bytes]]:
        """One wait for the socket, the pipes or the deadline; yields the output chunks it read."""
        assert self._sel is not None
        wait = None
        if self._deadline is not None:
            wait = self._deadline - time.monotonic()
            if wait <= 0:
                self.close()
                raise TimeoutExpired(f"sandboxd did not end the command within {self.timeout}s "
                                     f"(+{TIMEOUT_GRACE}s of grace); the connection was closed")
        for key, _ in self._sel.select(wait):
            what = key.data
            if what == "sock":
                for mtype, payload in self.session.conn.recv_ready():
                    self._frame(mtype, payload)
                if self.session.conn.eof and self._stats is None:
                    raise ProtocolError("sandboxd closed the connection before the command's EXIT")
            elif what == "stdin":
                assert self._stdin_data is not None
                try:
                    n = os.write(self._stdin_fd, self._stdin_data[:65536])
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    # The program does not read all of its input; that is its business.
                    self._close_stdin()
                    continue
                self._stdin_data = self._stdin_data[n:]
                if not len(self._stdin_data):
                    self._close_stdin()
            else:
                chunk = self._read(key.fd)
                if chunk:
                    yield what, chunk

    def _read(self, fd: int) -> bytes:
        try:
            c = os.read(fd, 65536)
        except BlockingIOError:
            return b""
        if not c:
            self._close_output(fd)
        return c

    def _frame(self, mtype: int, payload: bytes) -> None:
        if mtype == w.ERROR:
            _raise_error(payload)
        if mtype == w.STARTED and not self.sandbox_id:
            r = w.Reader(payload, "STARTED", (1, 2))
            self.sandbox_id = r.text(1, "id", True, 16) or ""
            self.pid = r.u32(2, "pid", True)
            if not _ID_RE.match(self.sandbox_id):
                raise ProtocolError(f"STARTED: {self.sandbox_id!r} is not a sandbox id")
            for sig in self._pending_signals:
                self.session._send(w.frame(w.SIGNAL, w.put_u32(1, sig)))
            self._pending_signals.clear()
        elif mtype == w.EXIT and self.sandbox_id and self._stats is None:
            self._stats = _parse_exit(payload)
        else:
            raise _unexpected(mtype, "STARTED" if not self.sandbox_id else "EXIT")

    def _drain(self) -> Iterator[Tuple[str, bytes]]:
        """After EXIT: what the pipes hold now. A process the program left behind in a created sandbox
        may keep a pipe open, so this does not wait for end of file."""
        for fd in list(self._out_fds):
            name = self._out_fds[fd]
            while fd in self._out_fds:
                c = self._read(fd)
                if not c:
                    break
                yield name, c

    def __iter__(self) -> Iterator[Tuple[str, bytes]]:
        try:
            while self._stats is None:
                yield from self._step()
            self._close_stdin()
            yield from self._drain()
        except BaseException:
            self.close()
            raise
        self._finish()

    def _finish(self) -> None:
        assert self._stats is not None
        out = b"".join(self._chunks["stdout"])
        err = b"".join(self._chunks["stderr"])
        self.result = Result(stdout=out, stderr=err, exit_code=self._stats.exit_code, stats=self._stats,
                             sandbox_id=self.sandbox_id, truncated=self._truncated)
        self.close()

    def wait(self, on_stdout: Optional[OutputCallback] = None, on_stderr: Optional[OutputCallback] = None) -> Result:
        """Runs it to its end, collecting the output (or handing each chunk of a stream to its callback
        instead), and returns the Result."""
        if self.result is not None:
            return self.result
        kept = {"stdout": 0, "stderr": 0}
        cbs = {"stdout": on_stdout, "stderr": on_stderr}
        for name, chunk in self:
            cb = cbs[name]
            if cb is not None:
                cb(chunk)
                continue
            room = self.max_output - kept[name]
            if room < len(chunk):
                self._truncated = True
                chunk = chunk[:max(room, 0)]
            if chunk:
                self._chunks[name].append(chunk)
                kept[name] += len(chunk)
        assert self.result is not None
        return self.result

    def close(self) -> None:
        """Closes the pipes and the connection (which ends a one-shot sandbox still running)."""
        if self._closed:
            return
        self._closed = True
        self._close_stdin()
        for fd in list(self._out_fds):
            self._close_output(fd)
        if self._sel:
            self._sel.close()
        self.session.close()

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spec_payload(*, argv: Optional[List[bytes]], env: List[bytes], image: Optional[str], workdir: Optional[str],
                  user: Optional[str], hostname: Optional[str], memory: Size, pids: Optional[int],
                  cpus: Optional[float], disk: Size, timeout: Optional[float], cpu_time: Optional[float],
                  network: Optional[str], version: int) -> bytes:
    p = b"".join(w.put_str(w.EXEC_ARGV, a, "an argument", w.ARG_ENV_BYTES_MAX - 1) for a in (argv or []))
    p += b"".join(w.put_str(w.EXEC_ENV, e, "an environment entry", w.ARG_ENV_BYTES_MAX - 1) for e in env)
    if sum(len(a) + 1 for a in (argv or [])) + sum(len(e) + 1 for e in env) > w.ARG_ENV_BYTES_MAX:
        raise ValueError("the arguments and environment are above the protocol's 1 MiB in total")
    if image is not None:
        if image.startswith("/"):
            p += w.put_str(w.EXEC_IMAGE, image, "image")
        else:
            if version < 3:
                raise UnsupportedError(f"an image of the daemon's store ({image!r}) needs protocol version 3",
                                       needed=3, have=version)
            p += w.put_str(w.EXEC_IMAGE_REF, image, "image", w.IMAGE_REF_MAX)
    if workdir is not None:
        p += w.put_str(w.EXEC_WORKDIR, workdir, "workdir")
    if hostname is not None:
        p += w.put_str(w.EXEC_HOSTNAME, hostname, "hostname", w.HOSTNAME_MAX)
    if user is not None:
        if version < 3:
            raise UnsupportedError("user= needs protocol version 3", needed=3, have=version)
        p += w.put_str(w.EXEC_USER, user, "user", w.USER_MAX)
    mem = parse_size(memory, "memory")
    if mem is not None:
        p += w.put_u64(w.EXEC_MEMORY_MAX, mem)
    if pids is not None:
        if pids <= 0:
            raise ValueError(f"pids must be positive, got {pids}")
        p += w.put_u64(w.EXEC_PIDS_MAX, pids)
    if cpus is not None:
        if not 0 < cpus <= 1024:
            raise ValueError(f"cpus must be in (0, 1024], got {cpus}")
        p += w.put_u32(w.EXEC_CPUS_MILLI, max(1, int(round(cpus * 1000))))
    if timeout is not None:
        p += w.put_u64(w.EXEC_TIMEOUT_USEC, _usec(timeout, "timeout"))
    if cpu_time is not None:
        p += w.put_u64(w.EXEC_CPU_TIME_USEC, _usec(cpu_time, "cpu_time"))
    d = parse_size(disk, "disk")
    if d is not None:
        if version < 2:
            raise UnsupportedError("disk= needs protocol version 2", needed=2, have=version)
        p += w.put_u64(w.EXEC_DISK_MAX, d)
    if network is not None:
        nets = {"none": 0, "bridge": 1, "isolated": 2, "host": 3}
        if network not in nets:
            raise ValueError(f"network must be one of {', '.join(nets)}, got {network!r}")
        p += w.put_u32(w.EXEC_NET, nets[network])
    return p


def _volume_name(name: str) -> str:
    if not isinstance(name, str) or not _VOLUME_RE.match(name):
        raise ValueError(f"{name!r} is not a volume name (1-64 letters, digits, '_', '.' or '-', starting with a "
                         f"letter or digit)")
    return name


def _volume_dest_ok(dest: str) -> bool:
    parts = [c for c in dest.split("/") if c]
    return (dest.startswith("/") and bool(parts) and "." not in parts and ".." not in parts
            and len(dest.encode()) < w.STRING_MAX and "\0" not in dest)


def _volumes_payload(volumes: Volumes, version: int) -> bytes:
    """EXEC's and CREATE's volume records (tag 33) for VOLUMES."""
    if volumes is None:
        return b""
    items: List[Tuple[str, str]] = []
    if isinstance(volumes, Mapping):
        items = [(str(k), str(v)) for k, v in volumes.items()]
    elif isinstance(volumes, (str, bytes)):
        raise TypeError("volumes= takes a mapping {NAME: PATH} or a list of 'NAME:/PATH[:ro]', not one string")
    else:
        for spec in volumes:
            name, sep, dest = str(spec).partition(":")
            if not sep:
                raise ValueError(f"volume {spec!r}: expected NAME:/PATH[:ro]")
            items.append((name, dest))
    if not items:
        return b""
    if version < VOLUME_VERSION:
        raise UnsupportedError(f"volumes need protocol version {VOLUME_VERSION}", needed=VOLUME_VERSION,
                               have=version)
    if len(items) > w.VOLUMES_MAX:
        raise ValueError(f"at most {w.VOLUMES_MAX} volumes per sandbox, got {len(items)}")
    p = b""
    for name, dest in items:
        _volume_name(name)
        readonly = False
        if dest.endswith(":ro") or dest.endswith(":rw"):
            readonly = dest.endswith(":ro")
            dest = dest[:-3]
        if not _volume_dest_ok(dest):
            raise ValueError(f"volume {name!r}: the path {dest!r} must be absolute, without '.' or '..' "
                             f"components, and not '/'")
        rec = w.put_str(1, name, "volume name", w.VOLUME_NAME_MAX) + w.put_str(2, dest, "volume path", w.STRING_MAX - 1)
        if readonly:
            rec += w.put_bool(3, True)
        p += w.put_nested(w.EXEC_VOLUME, rec)
    return p


def start(cmd: Command, *, stdin: Stdin = None, timeout: Optional[float] = None,
          image: Optional[str] = None, memory: Size = None, pids: Optional[int] = None,
          cpus: Optional[float] = None, disk: Size = None, cpu_time: Optional[float] = None,
          env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None, user: Optional[str] = None,
          hostname: Optional[str] = None, network: Optional[str] = None, socket: Optional[str] = None,
          max_output: int = OUTPUT_MAX, volumes: Volumes = None) -> Process:
    """Starts CMD in a fresh one-shot sandbox (EXEC) and returns the running Process (iterate over it
    for its output as it comes). The arguments are run()'s."""
    argv = _argv(cmd)
    s = Session(socket)
    try:
        payload = _spec_payload(argv=argv, env=_env(env), image=image, workdir=workdir, user=user,
                                hostname=hostname, memory=memory, pids=pids, cpus=cpus, disk=disk, timeout=timeout,
                                cpu_time=cpu_time, network=network, version=s.version)
        payload += _volumes_payload(volumes, s.version)
        return Process(s, payload, stdin, timeout, max_output)
    except BaseException:
        s.close()
        raise


def run(cmd: Command, *, stdin: Stdin = None, timeout: Optional[float] = None,
        image: Optional[str] = None, memory: Size = None, pids: Optional[int] = None, cpus: Optional[float] = None,
        disk: Size = None, cpu_time: Optional[float] = None, env: Optional[Mapping[str, str]] = None,
        workdir: Optional[str] = None, user: Optional[str] = None, hostname: Optional[str] = None,
        network: Optional[str] = None, socket: Optional[str] = None, on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None, max_output: int = OUTPUT_MAX, volumes: Volumes = None) -> Result:
    """Runs CMD in a fresh one-shot sandbox (what `sandboxctl exec` does) and returns its Result.

    cmd: a list of arguments, or a string run by /bin/sh -c. stdin: bytes (or str) fed to the program,
    a file descriptor of this process, or None (/dev/null). timeout: seconds of wall time, enforced by the
    daemon (the result's stats.limit is then "timeout"). image: a reference or ID of the daemon's image
    store, or an absolute image directory (root only); None: the daemon's default. memory, disk: bytes or
    "512m"-style sizes ("unlimited": none); pids: a count; cpus: CPUs' worth of time (0.5); cpu_time:
    seconds of CPU. Bounds left out take the daemon's defaults (docs/limits.md). on_stdout / on_stderr:
    called with each chunk as it comes instead of collecting it. max_output: bytes kept per stream.
    volumes: this user's volumes to mount (volume_create()), {"NAME": "/path"} or ["NAME:/path[:ro]", ...].
    Raises DaemonError with the daemon's message when it refuses or cannot set the sandbox up."""
    with start(cmd, stdin=stdin, timeout=timeout, image=image, memory=memory, pids=pids, cpus=cpus, disk=disk,
               cpu_time=cpu_time, env=env, workdir=workdir, user=user, hostname=hostname, network=network,
               socket=socket, max_output=max_output, volumes=volumes) as p:
        return p.wait(on_stdout, on_stderr)


# --------------------------------------------------------------------------------------------------
# created sandboxes (protocol version 4)

LIFECYCLE_VERSION = 4
#: The protocol version that defines SNAPSHOT.
SNAPSHOT_VERSION = 4
_IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _target(s: str) -> str:
    if not (_ID_RE.match(s) or _NAME_RE.match(s)):
        raise ValueError(f"{s!r} is neither a sandbox id (16 lowercase hex digits) nor a name (1-63 letters, "
                         f"digits, '_', '.' or '-', starting with a letter or digit)")
    return s


class Sandbox:
    """A sandbox that lives until it is removed (`sandboxctl create`), for many commands in a row that
    share its files and bounds (each command's processes end with it). Use Sandbox.create(...) as a context manager: leaving the block removes
    it (rm -f). Needs a daemon of protocol version 4."""

    def __init__(self, sandbox_id: str, name: str = "", socket: Optional[str] = None):
        """Attaches to the sandbox SANDBOX_ID (an id or a name) of the daemon at SOCKET; see also
        Sandbox.create() and Sandbox.connect()."""
        self.id = sandbox_id
        self.name = name
        self.socket = socket
        self._removed = False
        #: The options of create() (but image, name and socket), which fork() passes on.
        self._create_args: Dict[str, object] = {}

    @classmethod
    def create(cls, image: Optional[str] = None, memory: Size = None, *, socket: Optional[str] = None,
               name: Optional[str] = None, ttl: Optional[float] = None, idle_ttl: Optional[float] = None,
               pids: Optional[int] = None, cpus: Optional[float] = None, disk: Size = None,
               env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None,
               hostname: Optional[str] = None, network: Optional[str] = None,
               volumes: Volumes = None) -> "Sandbox":
        """Creates a sandbox (CREATE) and returns it. image: a reference or ID of the daemon's image store
        (None: the daemon's default); memory, disk: bytes or sizes like "1g"; pids, cpus: as run();
        name: a name of this uid's sandboxes (1-63 of [A-Za-z0-9_.-]); ttl: seconds it may live (the daemon
        caps it for clients other than root); idle_ttl: seconds it may stay without a command. env and
        workdir are the defaults of every command run in it. volumes: this user's volumes it mounts for its
        whole life, {"NAME": "/path"} ("/path:ro": read-only) or ["NAME:/path[:ro]", ...] (protocol version 5;
        a volume is mounted by one sandbox at a time)."""
        if name is not None and (not _NAME_RE.match(name) or _ID_RE.match(name)):
            raise ValueError(f"{name!r} is not a sandbox name (1-63 letters, digits, '_', '.' or '-', starting "
                             f"with a letter or digit, and not 16 hex digits)")
        with Session(socket) as s:
            s.need(LIFECYCLE_VERSION, "Sandbox.create (CREATE)")
            p = _spec_payload(argv=None, env=_env(env), image=image, workdir=workdir, user=None, hostname=hostname,
                              memory=memory, pids=pids, cpus=cpus, disk=disk, timeout=None, cpu_time=None,
                              network=network, version=s.version)
            if name is not None:
                p += w.put_str(w.CREATE_NAME, name, "name", w.NAME_MAX)
            p += _volumes_payload(volumes, s.version)
            for tag, v, what in ((w.CREATE_TTL_USEC, ttl, "ttl"), (w.CREATE_IDLE_TTL_USEC, idle_ttl, "idle_ttl")):
                if v is not None:
                    u = _usec(v, what)
                    if u > w.TTL_MAX_USEC:
                        raise ValueError(f"{what} is above a year")
                    p += w.put_u64(tag, u)
            reply = s.request(w.CREATE, p, w.CREATED)
        r = w.Reader(reply, "CREATED", (1, 2))
        sid = r.text(1, "id", True, 16) or ""
        if not _ID_RE.match(sid):
            raise ProtocolError(f"CREATED: {sid!r} is not a sandbox id")
        sb = cls(sid, r.text(2, "name", limit=w.NAME_MAX) or "", socket)
        sb._create_args = {k: v for k, v in (("memory", memory), ("ttl", ttl), ("idle_ttl", idle_ttl), ("pids", pids),
                                             ("cpus", cpus), ("disk", disk), ("env", env), ("workdir", workdir),
                                             ("hostname", hostname), ("network", network)) if v is not None}
        return sb

    @classmethod
    def connect(cls, target: str, socket: Optional[str] = None) -> "Sandbox":
        """The existing sandbox TARGET (an id or a name of this uid's), e.g. after a restart of the client."""
        _target(target)
        for e in list_sandboxes(socket):
            if e.kind == "created" and target in (e.id, e.name):
                return cls(e.id, e.name, socket)
        raise SandboxError(f"no sandbox {target!r} of this user at the daemon")

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, name={self.name!r})"

    # -- commands

    def start(self, cmd: Command, *, stdin: Stdin = None, timeout: Optional[float] = None,
              env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None, user: Optional[str] = None,
              max_output: int = OUTPUT_MAX) -> Process:
        """Starts CMD in this sandbox (EXEC with `in`) and returns the running Process: iterate over it
        for ("stdout" | "stderr", chunk) as the program writes, then read its .result."""
        argv = _argv(cmd)
        s = Session(self.socket)
        try:
            s.need(LIFECYCLE_VERSION, "running a command in a created sandbox (EXEC with in)")
            p = b"".join(w.put_str(w.EXEC_ARGV, a, "an argument", w.ARG_ENV_BYTES_MAX - 1) for a in argv)
            p += b"".join(w.put_str(w.EXEC_ENV, e, "an environment entry", w.ARG_ENV_BYTES_MAX - 1)
                          for e in _env(env))
            if workdir is not None:
                p += w.put_str(w.EXEC_WORKDIR, workdir, "workdir")
            if user is not None:
                p += w.put_str(w.EXEC_USER, user, "user", w.USER_MAX)
            if timeout is not None:
                p += w.put_u64(w.EXEC_TIMEOUT_USEC, _usec(timeout, "timeout"))
            p += w.put_str(w.EXEC_IN, _target(self.id), "in", w.TARGET_MAX)
            return Process(s, p, stdin, timeout, max_output)
        except BaseException:
            s.close()
            raise

    def stream(self, cmd: Command, **kw: object) -> Process:
        """start() under another name: `for name, chunk in sb.stream(cmd): ...`."""
        return self.start(cmd, **kw)  # type: ignore[arg-type]

    def run(self, cmd: Command, *, stdin: Stdin = None, timeout: Optional[float] = None,
            env: Optional[Mapping[str, str]] = None, workdir: Optional[str] = None, user: Optional[str] = None,
            on_stdout: Optional[OutputCallback] = None, on_stderr: Optional[OutputCallback] = None,
            max_output: int = OUTPUT_MAX) -> Result:
        """Runs CMD in this sandbox and returns its Result (stdout, stderr, exit_code, stats). A string is
        run by /bin/sh -c. timeout: seconds for this command (the daemon ends it: stats.limit "timeout").
        The sandbox's limits cover all of its commands together."""
        with self.start(cmd, stdin=stdin, timeout=timeout, env=env, workdir=workdir, user=user,
                        max_output=max_output) as p:
            return p.wait(on_stdout, on_stderr)

    # -- files (COPY: tar streams over a pipe; through `cat` for a daemon without COPY)

    def _copy(self, direction: int, path: str, data: bytes = b"", limit: int = 0) -> bytes:
        """One COPY request: DATA (a tar) into the sandbox at PATH, or the tar of PATH out of it (at most
        LIMIT bytes: beyond, the connection is closed, which kills the daemon's copy helper)."""
        if not path.startswith("/"):
            raise ValueError(f"the path in the sandbox must be absolute: {path!r}")
        with Session(self.socket) as s:
            s.need(LIFECYCLE_VERSION, "copying files (COPY)")
            p = (w.put_str(1, _target(self.id), "target", w.TARGET_MAX) + w.put_str(2, path, "path", w.COPY_PATH_MAX)
                 + w.put_u32(3, direction))
            r, wr = os.pipe2(os.O_CLOEXEC)
            mine, theirs = (wr, r) if direction == w.COPY_IN else (r, wr)
            try:
                s._send(w.frame(w.COPY, p), [theirs])
            except BaseException:
                os.close(mine)
                raise
            finally:
                os.close(theirs)
            os.set_blocking(mine, False)
            sel = selectors.DefaultSelector()
            sel.register(s.conn.fileno(), selectors.EVENT_READ, "sock")
            sel.register(mine, selectors.EVENT_WRITE if direction == w.COPY_IN else selectors.EVENT_READ, "pipe")
            view, out = memoryview(data), bytearray()
            reply: Optional[Tuple[int, bytes]] = None
            if direction == w.COPY_IN and not len(view):
                sel.unregister(mine)
                os.close(mine)
                mine = -1
            try:
                while reply is None:
                    for key, _ in sel.select():
                        if key.data == "sock":
                            frames = s.conn.recv_ready()
                            if frames:
                                reply = frames[0]
                            elif s.conn.eof:
                                raise ProtocolError("sandboxd closed the connection before COPY's reply")
                        elif direction == w.COPY_IN:
                            try:
                                view = view[os.write(mine, view[:65536]):]
                            except BlockingIOError:
                                continue
                            except BrokenPipeError:
                                view = view[:0]     # the helper stopped reading: its reply says why
                            if not len(view):
                                sel.unregister(mine)
                                os.close(mine)
                                mine = -1
                        else:
                            try:
                                c = os.read(mine, 65536)
                            except BlockingIOError:
                                continue
                            if not c:
                                sel.unregister(mine)
                                os.close(mine)
                                mine = -1
                            out += c
                            if limit and len(out) > limit:
                                raise CommandError(f"{path} is larger than max_size ({limit} bytes)", None)
                # OUT: the helper has finished; what it wrote is in the pipe.
                while mine >= 0 and direction == w.COPY_OUT:
                    try:
                        c = os.read(mine, 65536)
                    except BlockingIOError:
                        break
                    if not c:
                        break
                    out += c
            finally:
                if mine >= 0:
                    os.close(mine)
                sel.close()
            if reply[0] == w.ERROR:
                _raise_error(reply[1])
            if reply[0] != w.OK:
                raise _unexpected(reply[0], "OK")
            return bytes(out)

    def _has_copy(self) -> bool:
        return not getattr(self, "_copy_missing", False)

    def _no_copy(self, e: DaemonError) -> bool:
        """A version-4 daemon built before COPY refuses its type: then files go through `cat`."""
        if e.errno == errno_mod.EPROTO and "unexpected message type" in e.message:
            self._copy_missing = True
            return True
        return False

    def write_file(self, path: str, data: Union[bytes, str], timeout: Optional[float] = None,
                   mode: int = 0o644) -> None:
        """Writes DATA to PATH in the sandbox (creating it, or replacing a file there), as the sandbox's
        root, with MODE. Uses the protocol's COPY (a one-file tar), the daemon's helper resolving PATH in
        the sandbox (as `sandboxctl cp`: if PATH is a directory, the file goes into it under its own
        name); with a daemon that lacks COPY, `cat` reading stdin (the image needs /bin/sh, cat and
        chmod). TIMEOUT applies to the `cat` way only."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if self._has_copy():
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                info = tarfile.TarInfo(posixpath.basename(path.rstrip("/")) or "file")
                info.size, info.mode, info.mtime = len(raw), mode, int(time.time())
                tar.addfile(info, io.BytesIO(raw))
            try:
                self._copy(w.COPY_IN, path, buf.getvalue())
                return
            except DaemonError as e:
                if not self._no_copy(e):
                    raise
        self.run(["/bin/sh", "-c", 'umask 077; cat > "$1" && chmod "$2" "$1"', "sh", path, f"{mode:o}"],
                 stdin=raw, timeout=timeout).check()

    def read_file(self, path: str, timeout: Optional[float] = None, max_size: int = OUTPUT_MAX) -> bytes:
        """The bytes of the file PATH in the sandbox (symlinks followed, inside the sandbox). Uses COPY
        (a tar of PATH); with a daemon that lacks COPY, `cat`. Files above MAX_SIZE raise CommandError;
        a directory raises SandboxError. TIMEOUT applies to the `cat` way only."""
        if self._has_copy():
            try:
                return self._read_copy(path, max_size)
            except DaemonError as e:
                if not self._no_copy(e):
                    raise
        r = self.run(["cat", "--", path], timeout=timeout, max_output=max_size).check()
        if r.truncated:
            raise CommandError(f"{path} is larger than max_size ({max_size} bytes)", r)
        return r.stdout

    def _read_copy(self, path: str, max_size: int) -> bytes:
        for _ in range(40):     # symlink hops, as the kernel's limit
            stream = self._copy(w.COPY_OUT, path, limit=max_size + 1024 * 1024)
            with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
                top = tar.next()
                if top is None:
                    raise ProtocolError(f"COPY of {path} gave an empty archive")
                if top.issym():
                    target = top.linkname
                    path = posixpath.normpath(target if target.startswith("/") else
                                              posixpath.join(posixpath.dirname(path), target))
                    continue
                if top.isdir():
                    raise SandboxError(f"{path} is a directory")
                if not top.isfile():
                    raise SandboxError(f"{path} is not a regular file")
                if top.size > max_size:
                    raise CommandError(f"{path} is larger than max_size ({max_size} bytes)", None)
                f = tar.extractfile(top)
                assert f is not None
                return f.read()
        raise SandboxError(f"{path}: too many levels of symbolic links")

    # -- the sandbox itself

    def _target_request(self, mtype: int, extra: bytes, what: str) -> None:
        with Session(self.socket) as s:
            s.need(LIFECYCLE_VERSION, what)
            s.request(mtype, w.put_str(1, _target(self.id), "target", w.TARGET_MAX) + extra, w.OK)

    def info(self) -> SandboxInfo:
        """Its entry in the daemon's list: state, image, memory, CPU and disk use."""
        for e in list_sandboxes(self.socket):
            if e.id == self.id:
                return e
        raise SandboxError(f"sandbox {self.id} is gone")

    def pause(self) -> None:
        """Freezes its processes (PAUSE)."""
        self._target_request(w.PAUSE, b"", "pause (PAUSE)")

    def resume(self) -> None:
        """Thaws them (RESUME)."""
        self._target_request(w.RESUME, b"", "resume (RESUME)")

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ends its processes (SIGTERM, SIGKILL after TIMEOUT seconds, the daemon's default 10); it stays
        listed, stopped, until remove()."""
        extra = w.put_u64(2, _usec(timeout, "timeout")) if timeout is not None else b""
        self._target_request(w.STOP, extra, "stop (STOP)")

    def remove(self, force: bool = False) -> None:
        """Removes it (RM); FORCE ends it first if it runs."""
        self._target_request(w.RM, w.put_bool(2, True) if force else b"", "remove (RM)")
        self._removed = True

    def kill(self) -> None:
        """Ends and removes it (rm -f). Removing one that is already gone is not an error."""
        if self._removed:
            return
        try:
            self.remove(force=True)
        except DaemonError as e:
            if e.errno not in (errno_mod.ENOENT, errno_mod.ESRCH):
                raise
            self._removed = True

    close = kill

    # -- snapshots (SNAPSHOT, protocol version 4)

    def _snapshot(self, name: str) -> Tuple[str, str]:
        """(image ID, reference) of a new snapshot named NAME."""
        b = w.to_bytes(name, "the snapshot's name")
        if not b or len(b) > w.SNAPSHOT_IMAGE_MAX or any(c <= 0x20 or c >= 0x7f for c in b):
            raise ValueError(f"{name!r} is not a snapshot name: NAME[:TAG], 1-{w.SNAPSHOT_IMAGE_MAX} bytes of "
                             f"printable ASCII without spaces")
        with Session(self.socket) as s:
            s.need(SNAPSHOT_VERSION, "snapshot (SNAPSHOT)")
            try:
                reply = s.request(w.SNAPSHOT, w.put_str(1, _target(self.id), "target", w.TARGET_MAX)
                                  + w.put_str(2, b, "the snapshot's name", w.SNAPSHOT_IMAGE_MAX), w.SNAPSHOT_REPLY)
            except DaemonError as e:
                # A version-4 daemon built before SNAPSHOT refuses its type.
                if e.errno == errno_mod.EPROTO and "unexpected message type" in e.message:
                    raise UnsupportedError(f"snapshot: sandboxd {s.daemon_version} has no SNAPSHOT message",
                                           needed=SNAPSHOT_VERSION, have=s.version) from e
                raise
        r = w.Reader(reply, "SNAPSHOT_REPLY", (1, 2, 3, 4))
        image_id = r.text(1, "id", True, 71) or ""
        ref = r.text(2, "reference", True, w.REFERENCE_MAX) or ""
        r.u64(3, "layer_bytes")
        r.u64(4, "pause_usec")
        if not _IMAGE_ID_RE.match(image_id):
            raise ProtocolError(f"SNAPSHOT_REPLY: {image_id!r} is not an image ID (sha256: and 64 hex digits)")
        if not ref or any(c <= " " or c > "~" for c in ref):
            raise ProtocolError(f"SNAPSHOT_REPLY: {ref!r} is not an image reference")
        return image_id, ref

    def snapshot(self, name: str) -> str:
        """Stores a consistent snapshot of its changes as image NAME (NAME[:TAG], :latest if no tag) of the
        daemon's store and returns the store's reference of it (snapshots.sandbox.local/uid-UID/NAME:TAG),
        which Sandbox.create(image=...) and run(image=...) take, as they take NAME[:TAG] itself.

        Its programs are frozen while the daemon copies its changes (a paused sandbox stays paused). Only
        a sandbox created from an image of the daemon's store can be snapshotted (else DaemonError,
        errno EOPNOTSUPP). Snapshots are this uid's own: other users (but root) can neither see nor use
        them. A tag taken again moves to the new snapshot. The daemon bounds how many names a user keeps
        (max-snapshots-per-uid, default 16) and their size (max-snapshot-size), and stores one snapshot
        per user at a time (DaemonError, errno EBUSY); nothing removes a snapshot but the store's admin
        (sandbox-image). ValueError for a name that is empty, above 255 bytes, or has spaces or control
        characters; UnsupportedError for a daemon before protocol version 4."""
        return self._snapshot(name)[1]

    def fork(self, name: Optional[str] = None, **create_args: object) -> "Sandbox":
        """A new sandbox that starts from this one's files as they are now: a snapshot named
        fork-ID (ID this sandbox's id; taken again by each fork of it, so forks of one sandbox keep one
        snapshot name of the uid's bound), then Sandbox.create() from that snapshot's image ID, so a
        concurrent fork that moves the tag cannot change what this one starts from. The new sandbox gets
        the options this one was created with (memory, ttl, env, ...; none if this object came from
        Sandbox(ID) or connect(): then the daemon's defaults), CREATE_ARGS overriding them; NAME is the
        new sandbox's name (None: none). The caller removes it (use it as a context manager)."""
        if "image" in create_args:
            raise TypeError("fork() starts from a snapshot of this sandbox: image= cannot be given")
        if "socket" in create_args:
            raise TypeError("fork() creates the new sandbox at this sandbox's daemon: socket= cannot be given")
        image_id, _ = self._snapshot(f"fork-{self.id}")
        args: Dict[str, object] = {**self._create_args, **create_args}
        return Sandbox.create(image=image_id, socket=self.socket, name=name, **args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# volumes (protocol version 5)

@dataclasses.dataclass(frozen=True)
class VolumeInfo:
    """One of the daemon's volumes (`sandboxctl volume ls`): its size is its quota; used is what its image
    takes on the host's disk; in_use_by the id of the sandbox that mounts it (None: none)."""
    name: str
    uid: int
    size: int
    used: int
    created: float
    in_use_by: Optional[str]


def volume_create(name: str, size: Size = None, socket: Optional[str] = None) -> None:
    """Creates this user's volume NAME (`sandboxctl volume create`): storage of the daemon's that outlives
    sandboxes, mounted with volumes= of run(), start() and Sandbox.create(). size: bytes or "4g"-style (at
    least 16 MiB; None: the daemon's default, 1 GiB), which is its quota. The daemon bounds the size
    (max-volume-size) and the count (max-volumes-per-uid) of users other than root: DaemonError naming the
    bound; EEXIST for a name this user has."""
    _volume_name(name)
    n = parse_size(size, "size")
    with Session(socket) as s:
        s.need(VOLUME_VERSION, "volume_create (VOLUME_CREATE)")
        p = w.put_str(1, name, "name", w.VOLUME_NAME_MAX)
        if n:
            p += w.put_u64(2, n)
        s.request(w.VOLUME_CREATE, p, w.OK)


def volume_list(socket: Optional[str] = None) -> List[VolumeInfo]:
    """This user's volumes (root: everyone's), sorted by uid and name."""
    with Session(socket) as s:
        s.need(VOLUME_VERSION, "volume_list (VOLUME_LIST)")
        reply = s.request(w.VOLUME_LIST, b"", w.VOLUME_LIST_REPLY)
    out = []
    for e in w.Reader(reply, "VOLUME_LIST_REPLY", (1,)).repeated(1):
        r = w.Reader(e, "VOLUME_LIST_REPLY entry", range(1, 7))
        name = r.text(1, "name", True, w.VOLUME_NAME_MAX) or ""
        by = r.text(6, "in_use_by", limit=16, default=None)
        if not _VOLUME_RE.match(name) or (by is not None and not _ID_RE.match(by)):
            raise ProtocolError(f"VOLUME_LIST_REPLY: a bad entry ({name!r}, {by!r})")
        out.append(VolumeInfo(name=name, uid=r.u32(2, "uid", True), size=r.u64(3, "size", True),
                              used=r.u64(4, "used"), created=r.u64(5, "created_usec") / 1e6, in_use_by=by))
    return out


def volume_remove(name: str, uid: Optional[int] = None, socket: Optional[str] = None) -> None:
    """Removes this user's volume NAME (root: uid's, with uid=). DaemonError: ENOENT when there is none (also
    for another user's), EBUSY while a sandbox mounts it."""
    _volume_name(name)
    with Session(socket) as s:
        s.need(VOLUME_VERSION, "volume_remove (VOLUME_RM)")
        p = w.put_str(1, name, "name", w.VOLUME_NAME_MAX)
        if uid is not None:
            if not 0 <= uid <= w.U32_MAX:
                raise ValueError(f"uid {uid} is not a u32")
            p += w.put_u32(3, uid)
        s.request(w.VOLUME_RM, p, w.OK)
