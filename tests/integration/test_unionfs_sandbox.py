#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The union as the runtime mounts it: a throw-away upper (removed when the sandbox ends) is served
volatile (no fsync of copy-ups, fsync() a no-op) and metacopy=on (a chmod of an image file copies no
data: the upper file carries trusted.overlay.metacopy); a kept upper (--upper) is neither, so that every
overlayfs and every sandbox-layer verb reads it as it is."""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402

MARKER = "trusted.overlay.metacopy"


def server_options(upper):
    """The -o list of the sandbox-unionfs serving UPPER."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == b"sandbox-unionfs" and b"-o" in argv:
                opts = argv[argv.index(b"-o") + 1].decode()
                if f"upperdir={upper}," in opts:
                    return opts.split(",")
        time.sleep(0.05)
    raise sf.TestTimeout(f"no sandbox-unionfs serving {upper}")


def wait_ready(p):
    line = p.stdout.readline()
    if line.strip() != b"ready":
        raise AssertionError(f"the sandbox did not start: {line!r} {p.stderr.read()!r}")


def test_throwaway_upper_volatile_metacopy(env):
    arg = f"30.{os.getpid()}{random.randrange(10**6)}"
    p = env.popen(["sh", "-c", f"chmod 600 /etc/passwd && echo ready && exec sleep {arg}"])
    try:
        wait_ready(p)
        sid = env.wait_sandbox_id()
        upper = os.path.join(env.data, "sandboxes", sid, "upper")
        opts = server_options(upper)
        sf.check("volatile" in opts and "metacopy=on" in opts, f"union options of a throw-away upper: {opts}")
        f = os.path.join(upper, "etc", "passwd")
        sf.eq(os.getxattr(f, MARKER), b"", "metacopy marker of a file the sandbox chmodded")
        sf.eq(oct(os.lstat(f).st_mode & 0o777), oct(0o600), "mode on disk")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)


def test_kept_upper_neither(env):
    upper = env.mkdir("keep", "upper")
    arg = f"30.{os.getpid()}{random.randrange(10**6)}"
    p = env.popen(["--upper", upper, "sh", "-c", f"chmod 600 /etc/passwd && echo ready && exec sleep {arg}"])
    try:
        wait_ready(p)
        opts = server_options(upper)
        sf.check("volatile" not in opts and not any(o.startswith("metacopy") for o in opts),
                 f"union options of a kept upper: {opts}")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    f = os.path.join(upper, "etc", "passwd")
    sf.check(MARKER not in os.listxattr(f), "a metacopy marker in a kept upper")
    sf.check(os.path.getsize(f) > 0 and b"root" in open(f, "rb").read(), "data of the chmodded file in the kept upper")


if __name__ == "__main__":
    sf.main()
