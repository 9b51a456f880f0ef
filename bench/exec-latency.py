#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""exec-latency.py: how long one `/bin/true` takes, end to end, through sandboxctl exec (two sandboxd
started with --listen in a temp dir: one with its pool of sandboxes made ahead, "pool warm", one with
pool-size = 0, "pool cold", which starts every sandbox on demand as before the pool), sandbox-run, bwrap,
and plainly; then sandboxes started and ended per second at concurrency 1, 8 and 50 through both daemons;
then where the time goes: SANDBOX_TRACE's per-step times of sandbox-run's start, of the pool's fills (off
the request's path) and of sandbox_exec() in a pooled sandbox (on it).

Every sample is one fork+exec of the client and a wait for it (os.posix_spawn + waitpid, stdio on
/dev/null), timed with CLOCK_MONOTONIC. The implementations run round-robin (sample i of every
implementation, then sample i+1, the order rotating each round), so noise on the shared machine hits
all of them alike. Every run must exit 0. See bench/README.md ("Exec latency").
"""

import argparse
import math
import os
import platform
import re
import resource
import shutil
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
        self.daemons = []
        self.devnull = os.open(os.devnull, os.O_RDWR)

    def setup(self):
        for what, p in (("sandboxd", self.sandboxd), ("sandboxctl", self.sandboxctl),
                        ("sandbox-run", self.sandbox_run), ("bwrap", self.bwrap)):
            if not p or not os.access(p, os.X_OK):
                raise SystemExit(f"exec-latency: no {what} (at {p})")
        self.tmp = tempfile.mkdtemp(prefix="exec-latency.", dir="/tmp")
        if self.args.tmpfs:
            # Every daemon's state and data directories on a tmpfs: no file system's inode allocator in
            # the figures (bench/README.md: this machine's ext4 has no journal).
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=50%", "tmpfs", self.tmp], check=True)
        os.chmod(self.tmp, 0o755)  # sandboxes reach STATE/ID/root by name as unprivileged ids
        self.run_state = os.path.join(self.tmp, "run-state")
        # The defaults (whatever /etc/sandboxd.conf says) and a pool of 4 (off by default), which learns
        # /bin/true's shape from the warm-up. The cold daemon has no pool (the default).
        self.sock = self.start_daemon("pool", "pool-size = 4\n")
        self.sock_cold = self.start_daemon("cold", "pool-size = 0\n")
        env = dict(os.environ)
        env["SANDBOX_STATE_DIR"] = self.run_state
        env.pop("NOTIFY_SOCKET", None)
        env.pop("SANDBOX_TRACE", None)
        self.env = env
        self.impls = [
            ("sandboxctl exec (pool warm)", [self.sandboxctl, "--socket", self.sock, "exec", "--", "/bin/true"], env),
            ("sandboxctl exec (pool cold)", [self.sandboxctl, "--socket", self.sock_cold, "exec", "--", "/bin/true"],
             env),
            ("sandbox-run", [self.sandbox_run, "--", "/bin/true"], env),
            ("bwrap", [self.bwrap] + BWRAP_ARGS, env),
            ("/bin/true", ["/bin/true"], env),
        ]
        self.setup_binds(env)

    def start_daemon(self, name, config):
        sock = os.path.join(self.tmp, f"{name}.sock")
        conf = os.path.join(self.tmp, f"{name}.conf")
        with open(conf, "w") as f:
            f.write(config)
        logf = open(os.path.join(self.tmp, f"{name}.log"), "w")
        denv = dict(os.environ)
        denv["SANDBOX_TRACE"] = "1"  # one line per start in its log: the breakdown below
        p = subprocess.Popen(
            [self.sandboxd, "--listen", sock, "--state-dir", os.path.join(self.tmp, f"{name}-state"),
             "--data-dir", os.path.join(self.tmp, f"{name}-data"), "--idle-timeout", "0", "--config", conf],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=denv)
        self.daemons.append((name, p, logf))
        self.daemon = p
        deadline = time.monotonic() + 10
        while True:
            if p.poll() is not None:
                raise SystemExit(f"exec-latency: sandboxd exited {p.returncode}: {self.daemon_tail()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock)
                s.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("exec-latency: sandboxd did not listen within 10 s")
                time.sleep(0.05)
        return sock

    def setup_binds(self, env):
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

    def daemon_log(self, name):
        try:
            with open(os.path.join(self.tmp, f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def daemon_tail(self):
        return " / ".join(f"{n}: {self.daemon_log(n)[-400:]}" for n, _, _ in self.daemons)

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
                if name == "sandboxctl exec (pool warm)":
                    self.wait_refilled()
            if (i + 1) % 50 == 0:
                log(f"  {i + 1}/{n} rounds ({time.monotonic() - t0:.0f} s)")
        log_pool = self.daemon_log("pool")
        self.pooled = log_pool.count("started (a sandbox of the pool)")
        self.pool_starts = len(re.findall(r": started", log_pool))
        self.throughput()
        self.trace()

    def wait_refilled(self, timeout=3.0):
        """Until the pool made a sandbox for every one handed out (its fills are traced in its log): a refill
        must not run during another command's sample, which it would slow down on this small machine."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.daemon_log("pool")
            served = text.count("started (a sandbox of the pool)")
            fills = len(re.findall(r"^sandbox-trace: start \S+ deferred ", text, re.M))
            if fills >= served + 2:
                return
            time.sleep(0.002)

    @staticmethod
    def process_cpu(pid):
        """CPU seconds of PID and of the children it reaped (a daemon's inits, programs before their exec,
        union servers; a program's own time reaches the daemon through its init)."""
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def rate(self, sock, conc, total):
        """Sandboxes started and ended per second: CONC clients, each running sandboxctl exec /bin/true in a
        loop, TOTAL runs in all. Also the CPU each sandbox cost (ms): the daemon's, with everything it
        reaped, and the clients' (in self.last_cpu)."""
        argv = [self.sandboxctl, "--socket", sock, "exec", "--", "/bin/true"]
        left = [total]
        lock = threading.Lock()
        errors = []

        def client():
            while True:
                with lock:
                    if left[0] == 0 or errors:
                        return
                    left[0] -= 1
                try:
                    self.once(argv, self.env)
                except SystemExit as e:
                    errors.append(str(e))
                    return
        pid = next(p.pid for n, p, _ in self.daemons if os.path.join(self.tmp, f"{n}.sock") == sock)
        d0 = self.process_cpu(pid)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(errors[0])
        dt = time.monotonic() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last_cpu = (1000 * (self.process_cpu(pid) - d0) / total,
                         1000 * (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) / total)
        return total / dt

    def throughput(self):
        """At each concurrency: cold, warm, cold, warm (interleaved: the machine's load hits both)."""
        self.rates = {}
        self.cpu = {}
        for conc in (1, 8, 50):
            total = max(self.args.tp_runs, 2 * conc)
            got = {"warm": [], "cold": []}
            cpu = {"warm": [], "cold": []}
            for _ in range(2):
                for name, sock in (("cold", self.sock_cold), ("warm", self.sock)):
                    got[name].append(self.rate(sock, conc, total))
                    cpu[name].append(self.last_cpu)
            self.rates[conc] = {k: statistics.fmean(v) for k, v in got.items()}
            self.cpu[conc] = {k: (statistics.fmean(x[0] for x in v), statistics.fmean(x[1] for x in v))
                              for k, v in cpu.items()}
            log(f"  concurrency {conc}: {self.rates[conc]['cold']:.1f}/s cold, {self.rates[conc]['warm']:.1f}/s warm")

    def trace(self):
        """Per-step times (µs, medians): sandbox-run's start (SANDBOX_TRACE=1, TRACE_RUNS runs), and from the
        daemons' logs the fresh starts (cold), the pool's fills (idle starts) and sandbox_exec() in a pooled
        sandbox."""
        env = dict(self.env)
        env["SANDBOX_TRACE"] = "1"
        run_lines = []
        for _ in range(self.args.trace_runs):
            p = subprocess.run([self.sandbox_run, "--", "/bin/true"], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True)
            run_lines += [x for x in p.stderr.splitlines() if x.startswith("sandbox-trace: start ")]

        def steps(lines):
            per = {}
            order = []
            for line in lines:
                parts = line.split(" | ")
                per.setdefault("total", []).append(int(parts[0].rsplit("total=", 1)[1]))
                for part in parts[1:]:
                    k, v = part.rsplit("=", 1)
                    if k not in per:
                        order.append(k)
                    per.setdefault(k, []).append(int(v))
            return {k: statistics.median(v) for k, v in per.items()}, ["total"] + order
        cold = [x for x in self.daemon_log("cold").splitlines() if x.startswith("sandbox-trace: start ")]
        fills = [x for x in self.daemon_log("pool").splitlines()
                 if x.startswith("sandbox-trace: start ") and " deferred " in x]
        goes = [x for x in self.daemon_log("pool").splitlines() if x.startswith("sandbox-trace: go ")]
        self.breakdown = [("sandbox-run", *steps(run_lines), len(run_lines)),
                          ("sandboxd, pool cold (a fresh start in the daemon)", *steps(cold), len(cold)),
                          ("sandboxd, pool fill (off the request's path)", *steps(fills), len(fills)),
                          ("sandboxd, pool warm: sandbox_go() (on the path)", *steps(goes), len(goes))]

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
        load = os.getloadavg()
        lines = [
            f"# exec latency of /bin/true: {self.args.runs} runs each, round-robin, after "
            f"{self.args.warmup} warm-up runs each",
            "",
            f"host: {os.cpu_count()} CPU(s), {cpu}, kernel {platform.release()}; "
            f"{ver([self.sandboxctl, 'version'])!s} via {self.sock}; {ver([self.bwrap, '--version'])}",
            f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs, shared); "
            f"pool warm: {self.pooled} of {self.pool_starts} requests served from the pool; the daemons' state and "
            f"data directories on {'a tmpfs (--tmpfs)' if self.args.tmpfs else '/tmp'}",
            "",
            "| command | p50 ms | p90 ms | p99 ms | min ms | mean ms | p50 / bwrap | p99 / bwrap |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, _, _ in self.impls:
            s = stats[name]
            lines.append(f"| {name} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} | {s['min']:.2f} | "
                         f"{s['mean']:.2f} | {s['p50'] / b['p50']:.2f}x | {s['p99'] / b['p99']:.2f}x |")
        w = stats["sandboxctl exec (pool warm)"]
        r = w["p50"] / b["p50"]
        r99 = w["p99"] / b["p99"]
        lines += ["", f"goal: warm sandboxctl exec p50 <= 1.0x bwrap's: {r:.2f}x, {'met' if r <= 1 else 'NOT met'}; "
                      f"p99 <= 2x bwrap's: {r99:.2f}x, {'met' if r99 <= 2 else 'NOT met'}", "",
                  "| sandboxes started and ended per second | pool cold (as before the pool) | pool warm | warm / cold "
                  "| CPU ms per sandbox, cold: daemon + clients | warm: daemon + clients |",
                  "|---|---:|---:|---:|---:|---:|"]
        for conc, rr in self.rates.items():
            c = self.cpu[conc]
            lines.append(f"| concurrency {conc} | {rr['cold']:.1f} | {rr['warm']:.1f} | {rr['warm'] / rr['cold']:.2f}x "
                         f"| {c['cold'][0]:.2f} + {c['cold'][1]:.2f} | {c['warm'][0]:.2f} + {c['warm'][1]:.2f} |")
        lines += ["", "(CPU: the daemon's, with the processes it reaped: inits, union servers and, through the inits, "
                      "the programs; the clients': sandboxctl. Kernel threads (a network namespace's clean-up, RCU) "
                      "are not counted.)"]
        lines += ["", "where the time goes (SANDBOX_TRACE, median µs per step; steps that took under 50 µs left out):", ""]
        for what, med, order, n in self.breakdown:
            if n == 0:
                continue
            parts = [f"{k} {med[k]:.0f}" for k in order if k == "total" or med[k] >= 50]
            lines.append(f"- {what} ({n} starts): " + ", ".join(parts))
        lines.append("- the rest of a warm request: sandboxctl's own start, its two round trips to the daemon (EXEC/STARTED, "
                     "EXIT), the daemon's hand-over to a start worker and back, and the program's end")
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        if self.args.out:
            with open(self.args.out, "w") as f:
                f.write(text)
        return r

    def cleanup(self):
        for name, d, logf in self.daemons:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
                try:
                    d.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    log(f"sandboxd {d.pid} did not exit on SIGTERM: killing it")
                    d.kill()
                    d.wait()
            if d.returncode not in (0, None, -signal.SIGKILL):
                log(f"sandboxd ({name}) exited {d.returncode}: {self.daemon_log(name)[-800:]}")
            logf.close()
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
    ap.add_argument("--tp-runs", type=int, default=100,
                    help="sandboxes per throughput measurement (default 100; at least 2x the concurrency)")
    ap.add_argument("--trace-runs", type=int, default=30, help="traced sandbox-run starts (default 30)")
    ap.add_argument("--tmpfs", action="store_true",
                    help="mount a tmpfs on the temp dir (the daemons' state and data directories)")
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
