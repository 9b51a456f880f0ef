#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""daemon-load.py: how long one `sandboxctl exec -- /bin/true` takes while other clients' sandboxes start
slowly or keep the daemon busy. See bench/README.md ("Daemon under load").

Rows, measured in blocks that alternate (so that noise on the shared machine hits all of them alike):
- idle: the daemon has nothing else to do;
- K slow starts: K other clients' starts hang (a --bind source on a FUSE mount of the bench's own, a
  sandbox-unionfs whose server is stopped with SIGSTOP, so that the source's lookup never returns until
  SIGCONT); the daemon should answer the measured client as if they were not there;
- busy: 4 other clients run sandboxes back to back meanwhile (the machine's CPUs are shared: this row
  shows what contention costs, not what the daemon does wrong).

Every sample is one fork+exec of sandboxctl and a wait for it (os.posix_spawn + waitpid, stdio on
/dev/null), timed with CLOCK_MONOTONIC. A sample that takes longer than --sample-timeout is counted as
blocked: a daemon that starts sandboxes on its event loop blocks the measured client for as long as the
slow start hangs (--sandboxd with an older build shows it); the row then stops at the first one.
"""

import argparse
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(HERE)


def built(var, rel):
    if os.environ.get(var):
        return os.path.abspath(os.environ[var])
    for b in ("build", "build-it"):
        p = os.path.join(SRC_ROOT, b, rel)
        if os.access(p, os.X_OK):
            return p
    return os.path.join(SRC_ROOT, "build", rel)


def log(msg):
    print(f"daemon-load: {msg}", file=sys.stderr, flush=True)


def pct(s, p):
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandboxd = os.path.abspath(args.sandboxd) if args.sandboxd else built("SANDBOXD", "sandboxd/sandboxd")
        self.sandboxctl = os.path.abspath(args.sandboxctl) if args.sandboxctl else built("SANDBOXCTL",
                                                                                         "tools/sandboxctl")
        self.unionfs = built("SANDBOX_UNIONFS", "unionfs/sandbox-unionfs")
        self.tmp = self.daemon = self.fuse = None
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.stalled = []
        self.busy_stop = None

    # --- set-up -------------------------------------------------------------------------------------

    def setup(self):
        for what, p in (("sandboxd", self.sandboxd), ("sandboxctl", self.sandboxctl),
                        ("sandbox-unionfs", self.unionfs)):
            if not os.access(p, os.X_OK):
                raise SystemExit(f"daemon-load: no {what} at {p}")
        self.tmp = tempfile.mkdtemp(prefix="daemon-load.", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        for d in ("lower/b0", "upper", "work", "slow"):
            os.makedirs(os.path.join(self.tmp, d))
        self.mnt = os.path.join(self.tmp, "slow")
        self.fuse_log = open(os.path.join(self.tmp, "fuse.log"), "w")
        t = self.tmp
        self.fuse = subprocess.Popen([self.unionfs, "-f", "-o", f"lowerdir={t}/lower,upperdir={t}/upper,"
                                      f"workdir={t}/work,timeout=0", self.mnt],
                                     stdin=subprocess.DEVNULL, stdout=self.fuse_log, stderr=subprocess.STDOUT)
        self.wait(lambda: os.path.ismount(self.mnt), "the FUSE mount")
        self.sock = os.path.join(self.tmp, "sandboxd.sock")
        with open(os.path.join(self.tmp, "sandboxd.conf"), "w") as f:
            f.write("# defaults\n")
        self.daemon_log = open(os.path.join(self.tmp, "sandboxd.log"), "w")
        self.daemon = subprocess.Popen(
            [self.sandboxd, "--listen", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
             "--idle-timeout", "0", "--config", os.path.join(self.tmp, "sandboxd.conf")],
            stdin=subprocess.DEVNULL, stdout=self.daemon_log, stderr=subprocess.STDOUT)

        def listening():
            if self.daemon.poll() is not None:
                raise SystemExit(f"daemon-load: sandboxd exited {self.daemon.returncode}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return True
            except OSError:
                return False
        self.wait(listening, "sandboxd to listen")
        self.measured = [self.sandboxctl, "--socket", self.sock, "exec", "--", "/bin/true"]
        self.slow_argv = [self.sandboxctl, "--socket", self.sock, "exec", "--bind", f"{self.mnt}/b0:/mnt", "--",
                          "/bin/true"]

    @staticmethod
    def wait(cond, what, timeout=10):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit(f"daemon-load: timed out waiting for {what}")
            time.sleep(0.02)

    # --- one sample ---------------------------------------------------------------------------------

    def once(self):
        """Milliseconds, or None if it took longer than --sample-timeout (then it is killed)."""
        t0 = time.monotonic_ns()
        pid = os.posix_spawn(self.measured[0], self.measured, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, self.devnull, 1),
            (os.POSIX_SPAWN_DUP2, self.devnull, 2)])
        deadline = time.monotonic() + self.args.sample_timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            time.sleep(0.0005)
        dt = (time.monotonic_ns() - t0) / 1e6
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"daemon-load: {self.measured} exited {os.waitstatus_to_exitcode(status)}")
        return dt

    # --- what the other clients do ------------------------------------------------------------------

    def stall(self, k):
        os.kill(self.fuse.pid, signal.SIGSTOP)
        self.stalled = [subprocess.Popen(self.slow_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE) for _ in range(k)]
        time.sleep(0.3)  # their EXECs are in: their starts hang in the lookup
        if any(p.poll() is not None for p in self.stalled):
            raise SystemExit("daemon-load: a slow start ended before the mount answered")

    def unstall(self):
        os.kill(self.fuse.pid, signal.SIGCONT)
        for p in self.stalled:
            try:
                _, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                raise SystemExit("daemon-load: a slow start did not end 60 s after its mount answered")
            if p.returncode != 0:
                raise SystemExit(f"daemon-load: a slow start failed with {p.returncode}: {err[-300:]!r}")
        self.stalled = []

    def busy_start(self, n=4):
        self.busy_stop = threading.Event()
        self.busy_count = [0]

        def loop():
            while not self.busy_stop.is_set():
                subprocess.run(self.measured, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                self.busy_count[0] += 1
        self.busy_threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
        for t in self.busy_threads:
            t.start()
        time.sleep(0.2)

    def busy_end(self):
        self.busy_stop.set()
        for t in self.busy_threads:
            t.join(30)

    # --- the run ------------------------------------------------------------------------------------

    def run(self):
        a = self.args
        self.rows = [("idle", None), (f"{a.slow} slow start(s) in flight", "slow"), ("4 clients busy", "busy")]
        self.samples = {name: [] for name, _ in self.rows}
        self.blocked = {name: 0 for name, _ in self.rows}
        log(f"warm-up: {a.warmup} run(s)")
        for _ in range(a.warmup):
            self.once()
        log(f"measuring: {a.blocks} block(s) of {a.per_block} sample(s) per row")
        for b in range(a.blocks):
            k = b % len(self.rows)
            for name, kind in self.rows[k:] + self.rows[:k]:
                if self.blocked[name]:
                    continue
                if kind == "slow":
                    self.stall(a.slow)
                elif kind == "busy":
                    self.busy_start()
                try:
                    for _ in range(a.per_block):
                        dt = self.once()
                        if dt is None:
                            self.blocked[name] += 1
                            break
                        self.samples[name].append(dt)
                finally:
                    if kind == "slow":
                        self.unstall()
                    elif kind == "busy":
                        self.busy_end()
            log(f"  block {b + 1}/{a.blocks}")

    def report(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        a = self.args
        idle = sorted(self.samples["idle"])
        lines = [
            f"# sandboxctl exec -- /bin/true while other clients' sandboxes start slowly: {a.blocks} blocks of "
            f"{a.per_block} samples per row, after {a.warmup} warm-up runs",
            "",
            f"host: {os.cpu_count()} CPU(s), {cpu}, kernel {platform.release()}; sandboxd {self.sandboxd}",
            "",
            "| row | samples | p50 ms | p90 ms | max ms | p50 / idle | p90 / idle |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, _ in self.rows:
            s = sorted(self.samples[name])
            if self.blocked[name]:
                lines.append(f"| {name} | {len(s)} | blocked: a sample took > {a.sample_timeout:g} s | | | | |")
                continue
            lines.append(f"| {name} | {len(s)} | {pct(s, 50):.2f} | {pct(s, 90):.2f} | {s[-1]:.2f} | "
                         f"{pct(s, 50) / pct(idle, 50):.2f}x | {pct(s, 90) / pct(idle, 90):.2f}x |")
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        if a.out:
            with open(a.out, "w") as f:
                f.write(text)

    def cleanup(self):
        if self.fuse and self.fuse.poll() is None:
            os.kill(self.fuse.pid, signal.SIGCONT)
        for p in self.stalled:
            p.kill()
        if self.busy_stop:
            self.busy_stop.set()
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                log("sandboxd did not exit on SIGTERM: killing it")
                self.daemon.kill()
                self.daemon.wait()
        if self.fuse and self.fuse.poll() is None:
            self.fuse.kill()
            self.fuse.wait()
        if self.tmp:
            subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
            subprocess.run(["rm", "-rf", "--one-file-system", self.tmp], stderr=subprocess.DEVNULL)
            if os.path.exists(self.tmp):
                log(f"could not remove {self.tmp}")


def main():
    ap = argparse.ArgumentParser(description="sandboxctl exec latency while other starts hang or load the daemon")
    ap.add_argument("--blocks", type=int, default=6, help="blocks per row, rows alternating (default 6)")
    ap.add_argument("--per-block", type=int, default=25, help="samples per block (default 25)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    ap.add_argument("--slow", type=int, default=3, help="slow starts in flight in the slow row (default 3)")
    ap.add_argument("--sample-timeout", type=float, default=5.0,
                    help="seconds after which a sample counts as blocked (default 5)")
    ap.add_argument("--sandboxd", help="the daemon to measure (default: this build's)")
    ap.add_argument("--sandboxctl", help="the client (default: this build's)")
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args()
    if args.blocks < 1 or args.per_block < 1 or args.warmup < 0 or args.slow < 1:
        ap.error("--blocks, --per-block and --slow must be >= 1, --warmup >= 0")

    def _term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _term)
    b = Bench(args)
    try:
        b.setup()
        b.run()
        b.report()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
