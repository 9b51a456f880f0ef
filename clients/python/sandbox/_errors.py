# SPDX-License-Identifier: LGPL-2.1-or-later
"""The exceptions of the sandbox client. Every error the daemon reports (an ERROR message) becomes a
DaemonError carrying the daemon's own message, exit status and errno."""

from __future__ import annotations

from typing import Optional


class SandboxError(Exception):
    """Base class of every error this package raises."""


class ProtocolError(SandboxError):
    """The daemon sent something the protocol (docs/protocol.md) does not allow, or closed the
    connection where a reply was due. The connection is unusable afterwards."""


class DaemonError(SandboxError):
    """The daemon refused a request or failed to carry it out (its ERROR message).

    status: the exit status sandboxctl would use (125 the daemon or the set-up failed, 126 the command
    cannot run, 127 the command was not found); errno: a positive errno or 0; message: the daemon's text."""

    def __init__(self, message: str, status: int = 125, errno: int = 0):
        super().__init__(message)
        self.message = message
        self.status = status
        self.errno = errno

    def __str__(self) -> str:
        return self.message or f"the daemon refused the request (status {self.status})"


class UnsupportedError(SandboxError):
    """The daemon (or the protocol itself) lacks what the call needs: NEEDED names the protocol version
    that brings it (None: no version of the protocol defines it yet)."""

    def __init__(self, message: str, needed: Optional[int] = None, have: Optional[int] = None):
        super().__init__(message)
        self.needed = needed
        self.have = have


class CommandError(SandboxError):
    """A helper that runs a command for its own ends (write_file, read_file) saw it fail."""

    def __init__(self, message: str, result: "object"):
        super().__init__(message)
        self.result = result


class TimeoutExpired(SandboxError):
    """The daemon did not end the command within the client's own grace after its timeout (the
    connection was closed, which ends a one-shot sandbox)."""
