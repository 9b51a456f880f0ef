#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""exec-in-latency.py: how long one `/bin/true` takes, end to end, through `sandboxctl exec --in` (a
program in a sandbox made by `sandboxctl create`) against a fresh `sandboxctl exec` (a new sandbox per
run), both against the same warm sandboxd (--listen in a temp dir), against `podman exec` into a running
container where podman is installed, and plain /bin/true for the floor.

podman's runtime is runc (--podman-runtime, default /usr/sbin/runc; this build's sandbox-oci, or any
other, may be named), with --ulimit nofile=1024:1024 and nproc=4096:4096: on a host whose root lacks
CAP_SYS_RESOURCE runc cannot set the limits podman asks for by itself. podman gets a storage of its own in
the temp dir and a static-busybox image (scripts/install-deps.sh unpacks it); --no-podman leaves it out.

Every sample is one posix_spawn of the client and a waitpid for it (stdio on /dev/null), timed with
CLOCK_MONOTONIC; the commands run round-robin (the order rotating each round), so noise on the shared
machine hits them alike. Every run must exit 0. See bench/README.md ("exec --in latency").
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
BUSYBOX = "/var/cache/sandbox-tests/busybox-static/bin/busybox"


def built(var, rel):
    if os.environ.get(var):
        return os.path.abspath(os.environ[var])
    for b in ("build", "build-it"):
        p = os.path.join(SRC_ROOT, b, rel)
        if os.access(p, os.X_OK):
            return p
    return os.path.join(SRC_ROOT, "build", rel)


def log(msg):
    print(f"exec-in-latency: {msg}", file=sys.stderr, flush=True)


def pct(s, p):
    """Nearest-rank percentile of the sorted samples S."""
    return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandboxd = built("SANDBOXD", "sandboxd/sandboxd")
        self.sandboxctl = built("SANDBOXCTL", "tools/sandboxctl")
        self.tmp = self.daemon = self.podman = None
        self.devnull = os.open(os.devnull, os.O_RDWR)

    def setup(self):
        for what, p in (("sandboxd", self.sandboxd), ("sandboxctl", self.sandboxctl)):
            if not os.access(p, os.X_OK):
                raise SystemExit(f"exec-in-latency: no {what} at {p}")
        self.tmp = tempfile.mkdtemp(prefix="exec-in-latency.", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.sock = os.path.join(self.tmp, "sandboxd.sock")
        conf = os.path.join(self.tmp, "sandboxd.conf")
        open(conf, "w").close()  # defaults, whatever /etc/sandboxd.conf says
        self.daemon_log = open(os.path.join(self.tmp, "sandboxd.log"), "w")
        self.daemon = subprocess.Popen(
            [self.sandboxd, "--listen", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
             "--data-dir", os.path.join(self.tmp, "data"), "--idle-timeout", "0", "--config", conf],
            stdin=subprocess.DEVNULL, stdout=self.daemon_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.daemon.poll() is not None:
                raise SystemExit(f"exec-in-latency: sandboxd exited {self.daemon.returncode}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("exec-in-latency: sandboxd did not listen within 10 s")
                time.sleep(0.05)
        ctl = [self.sandboxctl, "--socket", self.sock]
        r = subprocess.run(ctl + ["create", "--name", "bench"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"exec-in-latency: sandboxctl create failed: {r.stderr.strip()}")
        self.sid = r.stdout.strip()
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        self.impls = [
            ("sandboxctl exec --in", ctl + ["exec", "--in", self.sid, "--", "/bin/true"], env),
            ("sandboxctl exec (fresh sandbox)", ctl + ["exec", "--", "/bin/true"], env),
            ("/bin/true", ["/bin/true"], env),
        ]
        if not self.args.no_podman:
            self.setup_podman(env)

    def setup_podman(self, env):
        """A running podman container (runtime: this build's sandbox-oci) to `podman exec` into."""
        oci = self.args.podman_runtime
        podman = shutil.which("podman")
        if not podman or not os.access(BUSYBOX, os.X_OK) or not os.access(oci, os.X_OK):
            log(f"no podman exec: needs podman, {BUSYBOX} and {oci}")
            return
        d = os.path.join(self.tmp, "podman")
        self.podman = [podman, "--root", d + "/storage", "--runroot", d + "/run", "--storage-driver", "overlay",
                       "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", oci]
        root = os.path.join(d, "rootfs")
        os.makedirs(os.path.join(root, "bin"))
        for sub in ("etc", "proc", "sys", "dev", "tmp"):
            os.makedirs(os.path.join(root, sub))
        shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
        for a in ("sh", "true", "sleep"):
            os.symlink("busybox", os.path.join(root, "bin", a))
        subprocess.run(["tar", "-C", root, "-cf", d + "/bb.tar", "."], check=True)
        subprocess.run(self.podman + ["import", d + "/bb.tar", "localhost/exec-in-bench:1"], check=True,
                       capture_output=True, timeout=300)
        r = subprocess.run(self.podman + ["run", "-d", "--name", "exec-in-bench", "--network", "none", "--ulimit",
                                          "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                                          "localhost/exec-in-bench:1", "sleep", "3600"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"exec-in-latency: podman run -d failed: {r.stderr.strip()}")
        self.impls.append((f"podman exec (runtime {os.path.basename(oci)})",
                           self.podman + ["exec", "exec-in-bench", "/bin/true"], env))

    def once(self, argv, env):
        t0 = time.monotonic_ns()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, self.devnull, 1),
            (os.POSIX_SPAWN_DUP2, self.devnull, 2)])
        _, status = os.waitpid(pid, 0)
        dt = time.monotonic_ns() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"exec-in-latency: {argv} exited {os.waitstatus_to_exitcode(status)}")
        return dt / 1e6

    def run(self):
        for _ in range(self.args.warmup):
            for _, argv, env in self.impls:
                self.once(argv, env)
        self.samples = {name: [] for name, _, _ in self.impls}
        log(f"measuring: {self.args.runs} run(s) each, round-robin")
        for i in range(self.args.runs):
            k = i % len(self.impls)
            for name, argv, env in self.impls[k:] + self.impls[:k]:
                self.samples[name].append(self.once(argv, env))

    def report(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        st = {}
        for name, s in self.samples.items():
            ss = sorted(s)
            st[name] = dict(p50=pct(ss, 50), p90=pct(ss, 90), p99=pct(ss, 99), min=ss[0], mean=statistics.fmean(ss))
        fresh = st["sandboxctl exec (fresh sandbox)"]
        lines = [f"# exec --in latency of /bin/true: {self.args.runs} runs each, round-robin, after "
                 f"{self.args.warmup} warm-up runs each", "",
                 f"host: {os.cpu_count()} CPU(s), {cpu}, kernel {platform.release()}", "",
                 "| command | p50 ms | p90 ms | p99 ms | min ms | mean ms | p50 / fresh | p99 / fresh |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, _, _ in self.impls:
            s = st[name]
            lines.append(f"| {name} | {s['p50']:.2f} | {s['p90']:.2f} | {s['p99']:.2f} | {s['min']:.2f} | "
                         f"{s['mean']:.2f} | {s['p50'] / fresh['p50']:.2f}x | {s['p99'] / fresh['p99']:.2f}x |")
        text = "\n".join(lines) + "\n"
        sys.stdout.write(text)
        if self.args.out:
            with open(self.args.out, "w") as f:
                f.write(text)

    def cleanup(self):
        if self.podman:
            subprocess.run(self.podman + ["rm", "-f", "-t", "0", "exec-in-bench"], capture_output=True, timeout=120)
            subprocess.run(self.podman + ["system", "reset", "-f"], capture_output=True, timeout=120)
        if self.daemon and self.daemon.poll() is None:
            subprocess.run([self.sandboxctl, "--socket", self.sock, "rm", "-f", "bench"], capture_output=True,
                           timeout=60)
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self.tmp:
            subprocess.run(["rm", "-rf", "--one-file-system", self.tmp], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--no-podman", action="store_true", help="leave podman exec out")
    ap.add_argument("--podman-runtime", default="/usr/sbin/runc", help="podman's --runtime (default runc)")
    args = ap.parse_args()
    b = Bench(args)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    try:
        b.setup()
        b.run()
        b.report()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
