# SPDX-License-Identifier: LGPL-2.1-or-later
"""Python client of sandboxd, standard library only.

It speaks the protocol of docs/protocol.md over the daemon's unix socket (descriptors with SCM_RIGHTS):

    import sandbox
    r = sandbox.run(["python3", "-c", "print(6 * 7)"], timeout=10)     # one-shot: a fresh sandbox
    r.stdout, r.stderr, r.exit_code, r.stats

    from sandbox import Sandbox
    with Sandbox.create(image="debian:12", memory="1g") as sb:       # lives until the block ends
        sb.write_file("/tmp/x.py", b"print('hi')")
        print(sb.run("python3 /tmp/x.py").stdout)
        for stream, chunk in sb.stream(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 1; done"]):
            print(stream, chunk)

See clients/python/README.md."""

from ._client import (DEFAULT_SOCKET, LIFECYCLE_VERSION, VOLUME_VERSION, Process, Result, Sandbox, SandboxInfo,
                      Session, Stats, VolumeInfo, Volumes, daemon_version, kill, list_sandboxes, parse_size, run,
                      start, volume_create, volume_list, volume_remove)
from ._errors import (CommandError, DaemonError, ProtocolError, SandboxError, TimeoutExpired, UnsupportedError)

__all__ = [
    "DEFAULT_SOCKET", "LIFECYCLE_VERSION", "CommandError", "DaemonError", "Process", "ProtocolError", "Result",
    "Sandbox", "SandboxError", "SandboxInfo", "Session", "Stats", "TimeoutExpired", "UnsupportedError",
    "daemon_version", "kill", "list_sandboxes", "parse_size", "run", "start",
    "VOLUME_VERSION", "VolumeInfo", "Volumes", "volume_create", "volume_list", "volume_remove",
]
__version__ = "0.1.0"
