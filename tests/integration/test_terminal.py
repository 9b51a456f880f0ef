#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The caller's terminal, through sandbox-run and through sandboxd + sandboxctl, as root, no mocks.

A real pty (the pty pair of the test) is the controlling terminal of the client (sandbox-run or
sandboxctl exec), which runs on its slave as a user's shell would run it. Without -t, a hostile program
(tests/helpers/sandbox-probe.c tty-steal) tries what takes over a terminal: open /dev/tty, setpgid +
tcsetpgrp, turn echo off, TIOCSCTTY from a session of its own, on /dev/tty and on each of its stdio
descriptors. Everything must fail (/dev/tty: ENXIO; its stdio are pipes, not the terminal), the terminal
keeps its foreground job and its settings, and its input queue keeps what the program did not ask for.
The program's output, typed input, ^C and EOF still work through the pipes. With -t, the program has a
terminal of its own (the sandbox's pty) where job control works, and the caller's settings come back.

Every test has its own temp dir; the runner (tests/lib/sandboxd_fixture.py) stops the test's daemons and
checks that nothing is left behind."""

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

PROBE = df.probe()


def kv_of(text):
    return dict(line.split("=", 1) for line in text.replace("\r", "").splitlines() if "=" in line)


def ctty():
    """preexec_fn: a session of its own with the pty on stdin as its controlling terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Client:
    """sandbox-run (CLIENT 'run') or sandboxctl exec (CLIENT 'ctl') ARGS on the slave of a new pty, as
    the session leader and foreground job of that terminal."""

    def __init__(self, env, client, args, daemon=None):
        self.m, self.s = sf.openpty(rows=24, cols=80)
        env.fds += [self.m, self.s]
        self.before = termios.tcgetattr(self.s)
        kw = dict(stdin=self.s, stdout=self.s, stderr=self.s, preexec_fn=ctty)
        if client == "run":
            self.p = env.popen(list(args), **kw)
        else:
            self.p = daemon.ctl_popen(["exec"] + df.probe_bind() + list(args), **kw)
        self.out = b""

    def read_until(self, want, timeout=20):
        deadline = time.monotonic() + timeout
        while want.encode() not in self.out:
            if time.monotonic() > deadline:
                raise sf.TestTimeout(f"no {want!r} on the terminal after {timeout}s: {self.text()!r}")
            r, _, _ = select.select([self.m], [], [], 0.05)
            if r:
                try:
                    self.out += os.read(self.m, 65536)
                except OSError:
                    break
            elif self.p.poll() is not None:
                raise AssertionError(f"the client ended ({self.p.returncode}) before {want!r}: {self.text()!r}")

    def finish(self, timeout=20):
        self.out += sf.read_master(self.m, self.p, timeout=timeout)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise sf.TestTimeout(f"the client did not end: {self.text()!r}")

    def text(self):
        return self.out.decode(errors="replace").replace("\r", "")


def steal_checks(env, client, daemon=None):
    c = Client(env, client, [PROBE, "tty-steal", "2"], daemon)
    c.read_until("stolen=done")
    # While the program still runs (and holds whatever it got): the client is the foreground job.
    sf.eq(os.tcgetpgrp(c.m), c.p.pid, "the terminal's foreground job while the program runs (the client's)")
    sf.eq(termios.tcgetattr(c.s), c.before, "the terminal's settings while the program runs")
    rc = c.finish()
    kv = kv_of(c.text())
    sf.eq(rc, 0, f"exit status: {c.text()!r}")
    sf.eq(kv.get("dev_tty"), "ENXIO", "open('/dev/tty') inside without -t (no controlling terminal)")
    sf.eq([kv.get(f"isatty_{i}") for i in range(3)], ["0", "0", "0"], "isatty(0..2) inside without -t")
    sf.eq(kv.get("setpgid"), "OK", "setpgid(0, 0) (allowed: a process group inside the sandbox's session)")
    took = {k: v for k, v in kv.items() if k.split("_")[0] in ("tcsetpgrp", "stty", "sctty") and v == "OK"}
    sf.eq(took, {}, "tcsetpgrp / tcsetattr(-echo) / TIOCSCTTY that worked on /dev/tty or stdio")
    sf.eq(termios.tcgetattr(c.s), c.before, "the terminal's settings after the program")
    sf.eq(sf.pty_input_pending(c.s), 0, "bytes pushed into the terminal's input queue")


def test_no_terminal_sandbox_run(env):
    steal_checks(env, "run")


def test_no_terminal_sandboxctl(env):
    steal_checks(env, "ctl", df.Daemon(env))


def relay_checks(env, client, daemon=None):
    # Typed input reaches the program one line at a time; what it does not read stays in the
    # terminal (for the shell that runs after it); output and EOF work.
    c = Client(env, client, ["sh", "-c", "echo ready; read a; echo got=$a; read b; echo got2=$b; "
                             "cat >/dev/null; echo eof; tty; exit 5"], daemon)
    c.read_until("ready")
    os.write(c.m, b"hello\n")
    c.read_until("got=hello")
    os.write(c.m, b"world\n")
    c.read_until("got2=world")
    os.write(c.m, b"rest\n\x04")
    rc = c.finish()
    text = c.text()
    sf.eq(rc, 5, f"exit status: {text!r}")
    sf.check("eof" in text.split("\n"), f"^D did not end the program's input: {text!r}")
    sf.check("not a tty" in text, f"tty(1) inside without -t: {text!r}")
    sf.eq(termios.tcgetattr(c.s), c.before, "the terminal's settings afterwards")

    # Typeahead: the client holds at most one line the program has not asked for yet; the rest of
    # what was typed ahead stays in the terminal for the shell after the program.
    c = Client(env, client, ["sh", "-c", "sleep 1; read a; echo got=$a"], daemon)
    os.write(c.m, b"first\nsecond\nthird\nfourth\n")
    rc = c.finish()
    sf.eq(rc, 0, f"exit status: {c.text()!r}")
    sf.check("got=first" in c.text(), f"the first line did not reach the program: {c.text()!r}")
    pending = sf.pty_input_pending(c.s)
    sf.check(pending in (len(b"third\nfourth\n"), len(b"second\nthird\nfourth\n")),
             f"typeahead left in the terminal after the program: {pending} bytes (the client may hold one line)")
    c = Client(env, client, ["sh", "-c", "sleep 1; echo done"], daemon)
    os.write(c.m, b"first\nsecond\n")
    rc = c.finish()
    sf.eq((rc, "done" in c.text()), (0, True), f"exit status: {c.text()!r}")
    sf.eq(sf.pty_input_pending(c.s), len(b"second\n"), "typeahead left after a program that reads nothing")

    # ^C on the terminal reaches the program (the client passes it on: the sandbox has its own session).
    c = Client(env, client, ["sh", "-c", "trap 'echo caught; exit 7' INT; echo ready; "
                             "while :; do sleep 0.1; done"], daemon)
    c.read_until("ready")
    os.write(c.m, b"\x03")
    rc = c.finish()
    sf.eq(rc, 7, f"exit status after ^C: {c.text()!r}")
    sf.check("caught" in c.text(), f"the program did not see SIGINT: {c.text()!r}")


def test_relay_sandbox_run(env):
    relay_checks(env, "run")


def test_relay_sandboxctl(env):
    relay_checks(env, "ctl", df.Daemon(env))


# A session leader that owns the pty and runs the client in a background job, as `CLIENT &` in a shell.
BACKGROUND = r"""
import fcntl, os, sys, termios
os.setsid()
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.execv(sys.argv[1], sys.argv[1:])
os.setpgid(pid, pid)
print(f"bgpid={pid}", flush=True)
_, status = os.waitpid(pid, os.WUNTRACED)
print("stopped" if os.WIFSTOPPED(status) else f"status={os.waitstatus_to_exitcode(status)}", flush=True)
if os.WIFSTOPPED(status):
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""


def test_background_job(env):
    # A client in the background must not read the terminal (it would be stopped at the first
    # keystroke meant for the shell, or take the shell's input): what is typed stays for the shell.
    m, s = sf.openpty()
    env.fds += [m, s]
    argv = [sys.executable, "-c", BACKGROUND] + env.argv(["sh", "-c", "sleep 2; echo done"])
    p = subprocess.Popen(argv, stdin=s, stdout=s, stderr=s, env=env.environ())
    env.procs.append(p)
    out = sf.read_master(m, p, timeout=10, until=b"bgpid=")
    time.sleep(0.5)
    os.write(m, b"for-the-shell\n")
    out += sf.read_master(m, p, timeout=30)
    text = out.decode(errors="replace").replace("\r", "")
    sf.eq(p.wait(10), 0, f"helper: {text!r}")
    sf.check("status=0" in text and "done" in text, f"the background client was stopped or failed: {text!r}")
    sf.eq(sf.pty_input_pending(s), len(b"for-the-shell\n"), "input typed for the shell, still in the terminal")


def tty_checks(env, client, daemon=None):
    # -t: the program's own terminal, where job control works; the caller's terminal comes back as it was.
    c = Client(env, client, ["-t", PROBE, "tty-steal"], daemon)
    rc = c.finish()
    kv = kv_of(c.text())
    sf.eq(rc, 0, f"exit status: {c.text()!r}")
    sf.eq((kv.get("dev_tty"), kv.get("tcsetpgrp_tty"), kv.get("stty_tty")), ("OK", "OK", "OK"),
          "with -t: /dev/tty, tcsetpgrp and tcsetattr on the sandbox's own terminal")
    sf.eq([kv.get(f"isatty_{i}") for i in range(3)], ["1", "1", "1"], "isatty(0..2) with -t")
    sf.eq(termios.tcgetattr(c.s), c.before, "the caller's terminal settings after -t")
    # A shell's job control on that terminal: a background job brought to the foreground.
    c = Client(env, client, ["-t", "sh", "-mc", "sleep 0.3 & fg >/dev/null; echo fg=$?; stty -echo; echo end"],
               daemon)
    rc = c.finish()
    sf.eq(rc, 0, f"exit status: {c.text()!r}")
    sf.check("fg=0" in c.text(), f"job control (fg) in the sandbox's terminal: {c.text()!r}")
    sf.eq(termios.tcgetattr(c.s), c.before, "the caller's terminal settings after stty -echo inside -t")


def test_tty_sandbox_run(env):
    tty_checks(env, "run")


def test_tty_sandboxctl(env):
    tty_checks(env, "ctl", df.Daemon(env))


if __name__ == "__main__":
    df.main()
