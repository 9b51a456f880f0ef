#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""exec-latency.py: how long one `/bin/true` takes, end to end, through sandboxctl exec (a warm
sandboxd started with --listen in a temp dir), sandbox-run, bwrap, and plainly.

Every sample is one fork+exec of the client and a wait for it (os.posix_spawn + waitpid, stdio on
/dev/null), timed with CLOCK_MONOTONIC. The implementations run round-robin (sample i of every
implementation, then sample i+1, the order rotating each round), so noise on the shared machine hits
all of them alike. Every run must exit 0. See bench/README.md ("Exec latency").
"""

import argparse
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(HERE)
BWRAP_ARGS = ["--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
              "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev",
              "/dev", "/bin/true"]


def built(var, rel):
    if os.environ.get(var):
        return os.path.abspath(os.environ[var])
    for b in ("build", "build-it", "build-ns"):
        p = os.path.join(SRC_ROOT, b, rel)
        if os.access(p, os.X_OK):
            return p
    return os.path.join(SRC_ROOT, "build", rel)


def log(msg):
    print(f"exec-latency: {msg}", file=sys.stderr, flush=True)


def pct(sorted_samples, p):
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_samples) - 1, math.ceil(p / 100 * len(sorted_samples)) - 1))
    return sorted_samples[k]


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandboxd = built("SANDBOXD", "sandboxd/sandboxd")
        self.sandboxctl = built("SANDBOXCTL", "tools/sandboxctl")
        self.sandbox_run = built("SANDBOX_RUN", "tools/sandbox-run")
        self.bwrap = shutil.which("bwrap")
        self.tmp = None
        self.daemon = None
        self.devnull = os.open(os.devnull, os.O_RDWR)

    def setup(self):
        for what, p in (("sandboxd", self.sandboxd), ("sandboxctl", self.sandboxctl),
                        ("sandbox-run", self.sandbox_run), ("bwrap", self.bwrap)):
            if not p or not os.access(p, os.X_OK):
                raise SystemExit(f"exec-latency: no {what} (at {p})")
        self.tmp = tempfile.mkdtemp(prefix="exec-latency.", dir="/tmp")
        os.chmod(self.tmp, 0o755)  # sandboxes reach STATE/ID/root by name as unprivileged ids
        self.sock = os.path.join(self.tmp, "sandboxd.sock")
        self.daemon_state = os.path.join(self.tmp, "daemon-state")
        self.run_state = os.path.join(self.tmp, "run-state")
        # An empty configuration: defaults, whatever /etc/sandboxd.conf says.
        with open(os.path.join(self.tmp, "sandboxd.conf"), "w"):
            pass
        self.daemon_log = open(os.path.join(self.tmp, "sandboxd.log"), "w")
        self.daemon = subprocess.Popen(
            [self.sandboxd, "--listen", self.sock, "--state-dir", self.daemon_state, "--idle-timeout", "0",
             "--config", os.path.join(self.tmp, "sandboxd.conf")],
            stdin=subprocess.DEVNULL, stdout=self.daemon_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.daemon.poll() is not None:
                raise SystemExit(f"exec-latency: sandboxd exited {self.daemon.returncode}: {self.daemon_tail()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("exec-latency: sandboxd did not listen within 10 s")
                time.sleep(0.05)
        env = dict(os.environ)
        env["SANDBOX_STATE_DIR"] = self.run_state
        env.pop("NOTIFY_SOCKET", None)
        self.impls = [
            ("sandboxctl exec", [self.sandboxctl, "--socket", self.sock, "exec", "--", "/bin/true"], env),
            ("sandbox-run", [self.sandbox_run, "--", "/bin/true"], env),
            ("bwrap", [self.bwrap] + BWRAP_ARGS, env),
            ("/bin/true", ["/bin/true"], env),
        ]
        if self.args.binds:
            # A directory of another user (uid 1234), bound plainly and idmapped: what an idmapped bind
            # costs (its user namespace, runtime/userns.c), and what passing the source as a
            # descriptor costs through the daemon.
            d = os.path.join(self.tmp, "bind")
            os.mkdir(d)
            os.chown(d, 1234, 1234)
            ctl = [self.sandboxctl, "--socket", self.sock, "exec"]
            self.impls += [
                ("sandbox-run --bind", [self.sandbox_run, "--bind", f"{d}:/b", "--", "/bin/true"], env),
                ("sandbox-run --bind :idmap", [self.sandbox_run, "--bind", f"{d}:/b:idmap", "--", "/bin/true"], env),
                ("sandboxctl exec --bind", ctl + ["--bind", f"{d}:/b", "--", "/bin/true"], env),
                ("sandboxctl exec --bind :idmap", ctl + ["--bind", f"{d}:/b:idmap", "--", "/bin/true"], env),
            ]

    def daemon_tail(self):
        try:
            with open(os.path.join(self.tmp, "sandboxd.log"), errors="replace") as f:
                return f.read()[-800:]
        except OSError:
            return ""

    def once(self, argv, env):
        t0 = time.monotonic_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, self.devnull, 1),
            (os.POSIX_SPAWN_DUP2, self.devnull, 2)])
        _, status = os.waitpid(pid, 0)
        dt = time.monotonic_ns() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            # Re-run visibly so the error is on the screen.
            p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            raise SystemExit(f"exec-latency: {argv} exited {os.waitstatus_to_exitcode(status)} "
                             f"(again: {p.returncode}, stderr {p.stderr.strip()[-500:]!r})")
        return dt / 1e6

    def run(self):
        n, warm = self.args.runs, self.args.warmup
        log(f"warm-up: {warm} run(s) each")
        for _ in range(warm):
            for _, argv, env in self.impls:
                self.once(argv, env)
        self.samples = {name: [] for name, _, _ in self.impls}
        log(f"measuring: {n} run(s) each, round-robin")
        t0 = time.monotonic()
        for i in range(n):
            k = i % len(self.impls)
            for name, argv, env in self.impls[k:] + self.impls[:k]:
                self.samples[name].append(self.once(argv, env))
            if (i + 1) % 50 == 0:
                log(f"  {i + 1}/{n} rounds ({time.monotonic() - t0:.0f} s)")

    def report(self):
        def ver(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
            except (OSError, IndexError, subprocess.SubprocessError):
                return "?"
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        stats = {}
        for name, s in self.samples.items():
            ss = sorted(s)
            stats[name] = dict(p50=pct(ss, 50), p90=pct(ss, 90), p99=pct(ss, 99), min=ss[0], max=ss[-1],
                               mean=statistics.fmean(ss))
        b = stats["bwrap"]
        lines = [
            f"# exec latency of /bin/true: {self.args.runs} runs each, round-robin, after "
            f"{self.args.warmup} warm-up runs each",
            "",
            f"host: {os.cpu_count()} CPU(s), {cpu}, kernel {platform.release()}; "
            f"{ver([self.sandboxctl, 'version'])!s} via {self.sock}; {ver([self.bwrap, '--version'])}",
            "",
            "| command | p50 ms | p90 ms | p99 ms | min ms | mean ms | p50 / bwrap | p99 / bwrap |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, _, _ in self.impls:
            s = stats[name]
            lines.append(f"| {name} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} | {s['min']:.2f} | "
                         f"{s['mean']:.2f} | {s['p50'] / b['p50']:.2f}x | {s['p99'] / b['p99']:.2f}x |")
        r = stats["sandboxctl exec"]["p50"] / b["p50"]
        lines += ["", f"goal: sandboxctl exec p50 within 2x of bwrap: {r:.2f}x, "
                      f"{'met' if r <= 2 else 'NOT met'}"]
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        if self.args.out:
            with open(self.args.out, "w") as f:
                f.write(text)
        return r

    def cleanup(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"sandboxd {self.daemon.pid} did not exit on SIGTERM: killing it")
                self.daemon.kill()
                self.daemon.wait()
        if self.daemon and self.daemon.returncode not in (0, None, -signal.SIGKILL):
            log(f"sandboxd exited {self.daemon.returncode}: {self.daemon_tail()}")
        if self.tmp:
            mounted = []
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    mp = line.split()[4]
                    if mp == self.tmp or mp.startswith(self.tmp + "/"):
                        mounted.append(mp)
            for mp in sorted(mounted, key=len, reverse=True):
                subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
            shutil.rmtree(self.tmp, ignore_errors=True)
            if os.path.exists(self.tmp):
                log(f"could not remove {self.tmp}")


def main():
    ap = argparse.ArgumentParser(description="exec latency: sandboxctl exec vs sandbox-run vs bwrap vs /bin/true")
    ap.add_argument("--runs", type=int, default=200, help="samples per command (default 200)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed runs per command first (default 10)")
    ap.add_argument("--out", help="also write the table to this file")
    ap.add_argument("--binds", action="store_true",
                    help="also sandbox-run and sandboxctl exec with a --bind, plain and :idmap")
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")

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
