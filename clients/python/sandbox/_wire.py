# SPDX-License-Identifier: LGPL-2.1-or-later
"""The sandboxctl <-> sandboxd wire format (docs/protocol.md, sections 1-4): frames, TLV fields, the
message type codes and field tags, and a connection that sends frames (with descriptors through
SCM_RIGHTS) and reads them back. No policy and nothing about sandboxes: _client.py builds on it.

Every bound the document states for what this side sends is checked here before a byte leaves, so that
a caller gets a clear ValueError instead of the daemon's refusal; what the daemon sends is checked as
the document says a receiver must (magic, version, reserved word, length, descriptors)."""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ._errors import ProtocolError

MAGIC = 0x31584253
FRAMING_VERSION = 1
HEADER = struct.Struct("<IHHII")
FIELD = struct.Struct("<HHI")
PAYLOAD_MAX = 2 * 1024 * 1024
FDS_MAX = 3
READ_CHUNK = 65536
STRING_MAX = 4096
SKIPPABLE = 0x8000

# Message types (section 4).
HELLO, HELLO_REPLY, EXEC, STARTED, SIGNAL, RESIZE, EXIT, LIST, LIST_REPLY, KILL, ERROR, OK = range(1, 13)
BIND_FDS = 13           # version 3
CREATE = 14             # version 4
CREATED = 15
STOP = 16
RM = 17
PAUSE = 18
RESUME = 19
COPY = 20               # version 4 (sandboxctl cp)
COPY_OUT, COPY_IN = 0, 1
SNAPSHOT = 21           # version 4 (sandboxctl snapshot)
SNAPSHOT_REPLY = 22
SNAPSHOT_IMAGE_MAX = 255        # bytes of NAME[:TAG]
REFERENCE_MAX = 511             # bytes of SNAPSHOT_REPLY's reference
COPY_PATH_MAX = 4095
VOLUME_CREATE = 23      # version 5 (sandboxctl volume create)
VOLUME_LIST = 24
VOLUME_LIST_REPLY = 25
VOLUME_RM = 26
VOLUME_NAME_MAX = 64            # bytes of a volume's name
VOLUMES_MAX = 8                 # volumes one sandbox mounts

TYPE_NAMES = {
    HELLO: "HELLO", HELLO_REPLY: "HELLO_REPLY", EXEC: "EXEC", STARTED: "STARTED", SIGNAL: "SIGNAL",
    RESIZE: "RESIZE", EXIT: "EXIT", LIST: "LIST", LIST_REPLY: "LIST_REPLY", KILL: "KILL", ERROR: "ERROR",
    OK: "OK", BIND_FDS: "BIND_FDS", CREATE: "CREATE", CREATED: "CREATED", STOP: "STOP", RM: "RM",
    PAUSE: "PAUSE", RESUME: "RESUME", COPY: "COPY", SNAPSHOT: "SNAPSHOT", SNAPSHOT_REPLY: "SNAPSHOT_REPLY",
    VOLUME_CREATE: "VOLUME_CREATE", VOLUME_LIST: "VOLUME_LIST", VOLUME_LIST_REPLY: "VOLUME_LIST_REPLY",
    VOLUME_RM: "VOLUME_RM",
}

# The message-level versions this client speaks (HELLO's range).
VERSION_MIN = 1
VERSION_MAX = 5

# EXEC (and CREATE: the same tags but argv, tty, timeout and cpu time).
EXEC_ARGV, EXEC_ENV, EXEC_IMAGE, EXEC_LAYER, EXEC_UPPER, EXEC_WORKDIR, EXEC_UID, EXEC_GID = range(1, 9)
EXEC_HOSTNAME, EXEC_TTY, EXEC_BIND, EXEC_TMPFS, EXEC_MEMORY_MAX, EXEC_PIDS_MAX = range(9, 15)
EXEC_CPUS_MILLI, EXEC_TIMEOUT_USEC, EXEC_CPU_TIME_USEC, EXEC_RLIMIT, EXEC_SECCOMP, EXEC_NET = range(15, 21)
EXEC_PUBLISH, EXEC_DISK_MAX, EXEC_DISK_INODES_MAX = 21, 22, 23       # disk: version 2
EXEC_IMAGE_REF, EXEC_ENTRYPOINT, EXEC_USER, EXEC_CAP_ADD, EXEC_CAP_DROP = range(24, 29)  # version 3
EXEC_IN = 29                                                          # version 4
CREATE_NAME, CREATE_TTL_USEC, CREATE_IDLE_TTL_USEC = 30, 31, 32       # version 4
EXEC_VOLUME = 33                                                      # version 5: EXEC and CREATE

# Limits a client must respect (section 7).
ARGS_MAX = 4096
ENV_MAX = 1024
ARG_ENV_BYTES_MAX = 1024 * 1024
IMAGE_REF_MAX = 1024
USER_MAX = 255
HOSTNAME_MAX = 64
NAME_MAX = 63
TARGET_MAX = 64
TTL_MAX_USEC = 365 * 24 * 3600 * 1000000
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1


# --------------------------------------------------------------------------------------------------
# encoding

def put_u32(tag: int, v: int) -> bytes:
    if not 0 <= v <= U32_MAX:
        raise ValueError(f"field {tag}: {v} is not a u32")
    return FIELD.pack(tag, 0, 4) + struct.pack("<I", v)


def put_i32(tag: int, v: int) -> bytes:
    return FIELD.pack(tag, 0, 4) + struct.pack("<i", v)


def put_u64(tag: int, v: int) -> bytes:
    if not 0 <= v <= U64_MAX:
        raise ValueError(f"field {tag}: {v} is not a u64")
    return FIELD.pack(tag, 0, 8) + struct.pack("<Q", v)


def put_bool(tag: int, v: bool) -> bytes:
    return put_u32(tag, 1 if v else 0)


def to_bytes(s: "str | bytes | os.PathLike[str]", what: str) -> bytes:
    """A protocol string: raw bytes without NUL (str is encoded as the file system encoding does)."""
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    b = os.fsencode(s) if isinstance(s, str) else bytes(s)
    if b"\0" in b:
        raise ValueError(f"{what} contains a NUL byte: {s!r}")
    return b


def put_str(tag: int, s: "str | bytes", what: str, limit: int = STRING_MAX) -> bytes:
    b = to_bytes(s, what)
    if len(b) > limit:
        raise ValueError(f"{what} is {len(b)} bytes, above the protocol's limit of {limit}")
    return FIELD.pack(tag, 0, len(b)) + b


def put_nested(tag: int, record: bytes) -> bytes:
    """A nested record: its fields as the field's value."""
    if len(record) > PAYLOAD_MAX:
        raise ValueError(f"field {tag}: a record of {len(record)} bytes is above the frame limit")
    return FIELD.pack(tag, 0, len(record)) + record


def frame(mtype: int, payload: bytes = b"") -> bytes:
    if len(payload) > PAYLOAD_MAX:
        raise ValueError(f"a {TYPE_NAMES.get(mtype, mtype)} message of {len(payload)} bytes is above the "
                         f"protocol's frame limit of {PAYLOAD_MAX} bytes")
    return HEADER.pack(MAGIC, FRAMING_VERSION, mtype, len(payload), 0) + payload


# --------------------------------------------------------------------------------------------------
# decoding

Fields = Dict[int, List[bytes]]


def parse_fields(payload: bytes, what: str) -> Fields:
    """The TLV fields of PAYLOAD by tag (repeated tags keep their order). ProtocolError for a field
    that runs past the end or has reserved bits set."""
    out: Fields = {}
    off = 0
    n = len(payload)
    while off < n:
        if off + FIELD.size > n:
            raise ProtocolError(f"{what}: a field header runs past the end of the payload")
        tag, reserved, length = FIELD.unpack_from(payload, off)
        off += FIELD.size
        if reserved != 0:
            raise ProtocolError(f"{what}: a field has reserved bits set")
        if length > n - off:
            raise ProtocolError(f"{what}: field {tag} runs past the end of the payload")
        out.setdefault(tag, []).append(payload[off:off + length])
        off += length
    return out


class Reader:
    """Typed access to the fields of one message or nested record, as the document's rules say:
    exact integer sizes, singular fields at most once, required ones present, unknown tags below
    0x8000 refused (KNOWN lists the tags this message defines)."""

    def __init__(self, payload: bytes, what: str, known: Iterable[int]):
        self.what = what
        self.fields = parse_fields(payload, what)
        known = set(known)
        for tag in self.fields:
            if tag not in known and tag < SKIPPABLE:
                raise ProtocolError(f"{what}: unknown field {tag}")

    def _one(self, tag: int, name: str, required: bool) -> Optional[bytes]:
        v = self.fields.get(tag)
        if not v:
            if required:
                raise ProtocolError(f"{self.what}: {name} is missing")
            return None
        if len(v) > 1:
            raise ProtocolError(f"{self.what}: {name} is repeated")
        return v[0]

    def u32(self, tag: int, name: str, required: bool = False, default: int = 0) -> int:
        v = self._one(tag, name, required)
        if v is None:
            return default
        if len(v) != 4:
            raise ProtocolError(f"{self.what}: {name} is not a u32")
        return int(struct.unpack("<I", v)[0])

    def i32(self, tag: int, name: str, required: bool = False, default: int = 0) -> int:
        v = self._one(tag, name, required)
        if v is None:
            return default
        if len(v) != 4:
            raise ProtocolError(f"{self.what}: {name} is not an i32")
        return int(struct.unpack("<i", v)[0])

    def u64(self, tag: int, name: str, required: bool = False, default: int = 0) -> int:
        v = self._one(tag, name, required)
        if v is None:
            return default
        if len(v) != 8:
            raise ProtocolError(f"{self.what}: {name} is not a u64")
        return int(struct.unpack("<Q", v)[0])

    def flag(self, tag: int, name: str) -> bool:
        v = self.u32(tag, name)
        if v > 1:
            raise ProtocolError(f"{self.what}: {name} is not a bool (0 or 1)")
        return v == 1

    def text(self, tag: int, name: str, required: bool = False, limit: int = STRING_MAX,
            default: Optional[str] = "") -> Optional[str]:
        v = self._one(tag, name, required)
        if v is None:
            return default
        if len(v) > limit or b"\0" in v:
            raise ProtocolError(f"{self.what}: {name} is longer than {limit} bytes or contains NUL")
        return v.decode("utf-8", errors="surrogateescape")

    def repeated(self, tag: int) -> List[bytes]:
        return self.fields.get(tag, [])


# --------------------------------------------------------------------------------------------------
# a connection

class Connection:
    """One unix stream connection to the daemon: whole frames out (descriptors with the first byte),
    whole frames in. Received descriptors are close-on-exec; any that arrive are closed and reported
    as a protocol error, since this client never asks for a terminal (the only frame that carries one)."""

    def __init__(self, path: str, timeout: Optional[float] = None):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        except BaseException:
            self.sock.close()
            raise
        self.sock.settimeout(None)
        self.buf = bytearray()
        self.eof = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes, fds: Sequence[int] = ()) -> None:
        """The whole frame; FDS (at most 3) with its first byte."""
        if len(fds) > FDS_MAX:
            raise ValueError(f"a frame carries at most {FDS_MAX} descriptors")
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds), socket.MSG_NOSIGNAL)
            if sent < len(data):
                self.sock.sendall(data[sent:], socket.MSG_NOSIGNAL)
        else:
            self.sock.sendall(data, socket.MSG_NOSIGNAL)

    def _fill(self, blocking: bool) -> bool:
        """One recvmsg(); False if nothing was there (non-blocking) or at end of stream."""
        try:
            data, fds, flags, _ = socket.recv_fds(self.sock, READ_CHUNK, FDS_MAX,
                                                  socket.MSG_CMSG_CLOEXEC | (0 if blocking else socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            return False
        except ConnectionResetError:
            data, fds, flags = b"", [], 0
        for fd in fds:
            os.close(fd)
        if fds or flags & socket.MSG_CTRUNC:
            raise ProtocolError("the daemon sent file descriptors this client did not ask for")
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self) -> Optional[Tuple[int, bytes]]:
        if len(self.buf) < HEADER.size:
            return None
        magic, version, mtype, length, reserved = HEADER.unpack_from(self.buf)
        if magic != MAGIC or reserved != 0:
            raise ProtocolError("the daemon sent a frame with a bad magic or reserved word")
        if version != FRAMING_VERSION:
            raise ProtocolError(f"the daemon sent framing version {version}, this client speaks {FRAMING_VERSION}")
        if length > PAYLOAD_MAX:
            raise ProtocolError(f"the daemon sent a frame of {length} bytes, above {PAYLOAD_MAX}")
        if len(self.buf) < HEADER.size + length:
            return None
        payload = bytes(self.buf[HEADER.size:HEADER.size + length])
        del self.buf[:HEADER.size + length]
        return mtype, payload

    def recv(self) -> Optional[Tuple[int, bytes]]:
        """The next frame (type, payload), blocking; None at a clean end of stream."""
        while True:
            f = self._take()
            if f is not None:
                return f
            if self.eof:
                if self.buf:
                    raise ProtocolError("the daemon closed the connection inside a frame")
                return None
            self._fill(blocking=True)

    def recv_ready(self) -> List[Tuple[int, bytes]]:
        """After the socket polled readable: what one read brought, as whole frames (maybe none)."""
        self._fill(blocking=False)
        out = []
        while True:
            f = self._take()
            if f is None:
                break
            out.append(f)
        if self.eof and self.buf:
            raise ProtocolError("the daemon closed the connection inside a frame")
        return out


def is_disconnect(e: OSError) -> bool:
    return e.errno in (errno.EPIPE, errno.ECONNRESET)
