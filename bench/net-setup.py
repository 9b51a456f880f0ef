#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""net-setup.py: what `--net bridge` costs per sandbox in sandbox-run (veth pair with its peer born in
the sandbox, bridge port, address, route, lease, and their teardown; over netlink, in process), against
the same steps done with `ip` commands, in one run. See bench/README.md ("Network set-up").

Everything runs inside a network namespace made for the run (this process enters it with setns(), so
every command inherits it; nothing touches the machine's own namespace). Rows, each sample one
posix_spawn + waitpid with stdio on /dev/null, timed with CLOCK_MONOTONIC, round-robin (sample i of
every row, then sample i+1, the order rotating each round):

  none          sandbox-run --net none /bin/true
  bridge        sandbox-run --net bridge /bin/true
  bridge -p     sandbox-run --net bridge -p 18080:80 -p 15353:53/udp /bin/true
  ip            sh: ip netns add; ip link add V type veth peer name eth0 netns NS; ip link set V master
                BR; ip link set V up; ip -n NS addr add; ip -n NS link set eth0 up; ip -n NS route add
                default; ip link del V; ip netns del NS
  ip -batch     the same steps in three ip processes (ip -batch, ip -n NS -batch, ip -batch)
  ip + nft -p   ip, plus two `nft -e -a add rule` (DNAT, with a comment) and two `nft delete rule`
  netns only    sh: ip netns add NS; ip netns del NS

Derived: the network's share of sandbox-run = bridge - none (the namespace itself is made in both),
the ip script's share = ip - netns only; their ratio; and the same for publishing two ports.
"""

import argparse
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.dirname(HERE)
CLONE_NEWNET = 0x40000000
BENCH_BRIDGE, BENCH_SUBNET_GW = "sbxbench0", "10.90.0.1"
BENCH_TABLE = "sbxbench"

IP_SCRIPT = r"""#!/bin/sh
# ip-steps.sh MODE NS VETH ADDR: what the runtime does for one bridged sandbox, with ip (and nft).
set -eu
mode=$1 ns=$2 v=$3 addr=$4
case $mode in
netns)
        ip netns add "$ns"
        ip netns del "$ns"
        exit 0 ;;
batch)
        printf 'netns add %s\nlink add %s type veth peer name eth0 netns %s\nlink set %s master %s\nlink set %s up\n' \
                "$ns" "$v" "$ns" "$v" "@BRIDGE@" "$v" | ip -batch -
        printf 'addr add %s/16 dev eth0\nlink set eth0 up\nroute add default via %s\n' "$addr" "@GW@" |
                ip -n "$ns" -batch -
        printf 'link del %s\nnetns del %s\n' "$v" "$ns" | ip -batch -
        exit 0 ;;
esac
ip netns add "$ns"
ip link add "$v" type veth peer name eth0 netns "$ns"
ip link set "$v" master @BRIDGE@
ip link set "$v" up
ip -n "$ns" addr add "$addr/16" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via @GW@
if [ "$mode" = publish ]; then
        h1=$(nft -e -a add rule ip @TABLE@ published tcp dport 18080 dnat to "$addr:80" comment "\"sbx:$v\"" |
                sed -n 's/.*# handle //p')
        h2=$(nft -e -a add rule ip @TABLE@ published udp dport 15353 dnat to "$addr:53" comment "\"sbx:$v\"" |
                sed -n 's/.*# handle //p')
        nft delete rule ip @TABLE@ published handle "$h1"
        nft delete rule ip @TABLE@ published handle "$h2"
fi
ip link del "$v"
ip netns del "$ns"
""".replace("@BRIDGE@", BENCH_BRIDGE).replace("@GW@", BENCH_SUBNET_GW).replace("@TABLE@", BENCH_TABLE)


def built(var, rel):
    if os.environ.get(var):
        return os.path.abspath(os.environ[var])
    for b in ("build", "build-it", "build-net"):
        p = os.path.join(SRC_ROOT, b, rel)
        if os.access(p, os.X_OK):
            return p
    return os.path.join(SRC_ROOT, "build", rel)


def log(msg):
    print(f"net-setup: {msg}", file=sys.stderr, flush=True)


def sh(argv, check=True):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"net-setup: {argv} failed with {r.returncode}: {r.stderr.strip()}")
    return r


class Bench:
    def __init__(self, args):
        self.args = args
        self.sandbox_run = built("SANDBOX_RUN", "tools/sandbox-run")
        self.sandboxd = built("SANDBOXD", "sandboxd/sandboxd")
        self.sandboxctl = built("SANDBOXCTL", "tools/sandboxctl")
        self.daemon = None
        self.ip, self.nft = shutil.which("ip"), shutil.which("nft")
        self.tag = f"{os.getpid()}"
        self.ns = f"sbxbench-{self.tag}"
        self.tmp = None
        self.inode = None
        self.entered = False
        self.seq = 0
        self.devnull = os.open(os.devnull, os.O_RDWR)

    def setup(self):
        if not os.access(self.sandbox_run, os.X_OK):
            raise SystemExit(f"net-setup: no sandbox-run (at {self.sandbox_run})")
        self.tmp = tempfile.mkdtemp(prefix="net-setup.", dir="/tmp")
        os.chmod(self.tmp, 0o755)  # sandboxes reach STATE/ID/root by name as unprivileged ids
        self.state = os.path.join(self.tmp, "state")
        self.script = os.path.join(self.tmp, "ip-steps.sh")
        with open(self.script, "w") as f:
            f.write(IP_SCRIPT)
        sh([self.ip, "netns", "add", self.ns])
        self.inode = os.stat(f"/run/netns/{self.ns}").st_ino
        # Enter it: every command below, and the ip netns the script makes, start from it.
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise SystemExit(f"net-setup: setns: {os.strerror(e)}")
        finally:
            os.close(fd)
        self.entered = True
        sh([self.ip, "link", "set", "lo", "up"])
        # The ip script's bridge and table (the runtime makes sbx0/sbx1 and table ip sandbox itself).
        sh([self.ip, "link", "add", BENCH_BRIDGE, "type", "bridge"])
        sh([self.ip, "addr", "add", f"{BENCH_SUBNET_GW}/16", "dev", BENCH_BRIDGE])
        sh([self.ip, "link", "set", BENCH_BRIDGE, "up"])
        sh([self.nft, "add", "table", "ip", BENCH_TABLE])
        sh([self.nft, "add", "chain", "ip", BENCH_TABLE, "published"])
        env = dict(os.environ, SANDBOX_STATE_DIR=self.state)
        env.pop("SANDBOX_TRACE", None)
        self.env = env
        # A daemon in the same namespace whose pool holds --net none and --net bridge sandboxes: a pooled
        # sandbox's network is wired before the request (issue 17, docs/performance.md).
        sock = os.path.join(self.tmp, "pool.sock")
        conf = os.path.join(self.tmp, "pool.conf")
        with open(conf, "w") as f:
            f.write("pool-size = 4\npool-per-shape = 2\npool-shape = net=none\npool-shape = net=bridge\n")
        self.daemon_log = os.path.join(self.tmp, "pool.log")
        self.daemon = subprocess.Popen(
            [self.sandboxd, "--listen", sock, "--state-dir", os.path.join(self.tmp, "pool-state"), "--data-dir",
             os.path.join(self.tmp, "pool-data"), "--idle-timeout", "0", "--config", conf],
            stdin=subprocess.DEVNULL, stdout=open(self.daemon_log, "w"), stderr=subprocess.STDOUT,
            env=dict(os.environ, SANDBOX_TRACE="1"))
        ctl = [self.sandboxctl, "--socket", sock, "exec"]
        deadline = time.monotonic() + 10
        while subprocess.run(ctl[:3] + ["version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                raise SystemExit("net-setup: the pool's sandboxd did not come up")
            time.sleep(0.05)
        self.rows = [
            ("none", [self.sandbox_run, "--net", "none", "/bin/true"]),
            ("bridge", [self.sandbox_run, "--net", "bridge", "/bin/true"]),
            ("bridge -p", [self.sandbox_run, "--net", "bridge", "-p", "18080:80", "-p", "15353:53/udp", "/bin/true"]),
            ("ip", "full"),
            ("ip -batch", "batch"),
            ("ip + nft -p", "publish"),
            ("netns only", "netns"),
            ("pool none", ctl + ["--net", "none", "/bin/true"]),
            ("pool bridge", ctl + ["--net", "bridge", "/bin/true"]),
        ]
        self.samples = {name: [] for name, _ in self.rows}

    def argv_of(self, what):
        if isinstance(what, list):
            return what
        self.seq += 1
        # One namespace, veth name and address per sample: a namespace's teardown is asynchronous.
        addr = f"10.90.{1 + self.seq // 250 % 250}.{2 + self.seq % 250}"
        return ["/bin/sh", self.script, what, f"sbxb-{self.tag}-{self.seq}", f"vb{self.tag[-6:]}{self.seq % 1000}",
                addr]

    def once(self, argv):
        t0 = time.monotonic_ns()
        pid = os.posix_spawn(argv[0], argv, self.env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, self.devnull, 0),
                                           (os.POSIX_SPAWN_DUP2, self.devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, self.devnull, 2)])
        _, status = os.waitpid(pid, 0)
        dt = (time.monotonic_ns() - t0) / 1e6
        if os.waitstatus_to_exitcode(status) != 0:
            r = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            raise SystemExit(f"net-setup: {argv} exited {os.waitstatus_to_exitcode(status)}; again: "
                             f"{r.returncode} {r.stderr.strip()}")
        return dt

    def run(self):
        n, w = self.args.runs, self.args.warmup
        for i in range(w + n):
            order = self.rows[i % len(self.rows):] + self.rows[:i % len(self.rows)]
            for name, what in order:
                dt = self.once(self.argv_of(what))
                if i >= w:
                    self.samples[name].append(dt)
                if name.startswith("pool "):
                    self.wait_refilled()
            if (i + 1) % 20 == 0:
                log(f"round {i + 1}/{w + n}")
        self.log_text = open(self.daemon_log).read()
        self.stop_daemon()
        self.check_clean()

    def wait_refilled(self, timeout=3.0):
        """Until the pool made a sandbox for every one handed out (it traces its fills in its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = open(self.daemon_log).read()
            if (len(re.findall(r"^sandbox-trace: start \S+ deferred ", text, re.M)) >=
                    text.count("started (a sandbox of the pool)") + 4):
                return
            time.sleep(0.002)

    def stop_daemon(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()

    def check_clean(self):
        """What the runs left in the namespace: only lo, the bench bridge, sbx0, sbx1; no rule."""
        links = {ln["ifname"] for ln in json.loads(sh([self.ip, "-j", "link", "show"]).stdout)}
        extra = links - {"lo", BENCH_BRIDGE, "sbx0", "sbx1"}
        pub = sh([self.nft, "list", "chain", "ip", "sandbox", "published"], check=False).stdout
        left = [ln for ln in pub.splitlines() if "dnat" in ln]
        if extra or left:
            raise SystemExit(f"net-setup: left behind: links {sorted(extra)}, published rules {left}")

    def report(self):
        med = {k: statistics.median(v) for k, v in self.samples.items()}
        mean = {k: statistics.fmean(v) for k, v in self.samples.items()}
        p90 = {k: sorted(v)[max(0, int(0.9 * len(v)) - 1)] for k, v in self.samples.items()}
        out = []
        out.append(f"net-setup: {self.args.runs} runs per row (+{self.args.warmup} warm-up), round-robin; "
                   f"{os.cpu_count()} CPUs, kernel {platform.release()}")
        out.append(f"sandbox-run: {self.sandbox_run}; {sh([self.ip, '-V']).stdout.strip()}")
        out.append("")
        out.append("| row | p50 ms | p90 ms | mean ms |")
        out.append("|---|---|---|---|")
        for name, _ in self.rows:
            out.append(f"| {name} | {med[name]:.2f} | {p90[name]:.2f} | {mean[name]:.2f} |")
        out.append("")
        net_rt = med["bridge"] - med["none"]
        net_ip = med["ip"] - med["netns only"]
        net_batch = med["ip -batch"] - med["netns only"]
        pub_rt = med["bridge -p"] - med["bridge"]
        pub_nft = med["ip + nft -p"] - med["ip"]
        out.append("| per sandbox (p50 differences) | runtime ms | ip ms | runtime / ip |")
        out.append("|---|---|---|---|")
        out.append(f"| veth+bridge+addr+route, set-up and teardown: bridge - none vs ip - netns only | {net_rt:.2f} | "
                   f"{net_ip:.2f} | {net_rt / net_ip:.2f} |")
        out.append(f"| the same vs ip -batch - netns only | {net_rt:.2f} | {net_batch:.2f} | {net_rt / net_batch:.2f} |")
        out.append(f"| whole: bridge - none vs ip (with its netns) | {net_rt:.2f} | {med['ip']:.2f} | "
                   f"{net_rt / med['ip']:.2f} |")
        out.append(f"| two published ports: bridge -p - bridge vs ip + nft -p - ip | {pub_rt:.2f} | {pub_nft:.2f} | "
                   f"{pub_rt / pub_nft:.2f} |")
        net_pool = med["pool bridge"] - med["pool none"]
        served = self.log_text.count("started (a sandbox of the pool)")
        out.append(f"| pooled (sandboxd, pool-shape net=bridge): pool bridge - pool none vs ip - netns only | "
                   f"{net_pool:.2f} | {net_ip:.2f} | {net_pool / net_ip:.2f} |")
        out.append("")
        out.append(f"The pool served {served} of {2 * (self.args.runs + self.args.warmup)} pooled requests; "
                   f"goal: a pooled sandbox's network share at most 0.3x the ip steps': {net_pool / net_ip:.2f}x, "
                   f"{'met' if net_pool / net_ip <= 0.3 else 'NOT met'} (its teardown runs after the reply)")
        text = "\n".join(out) + "\n"
        sys.stdout.write(text)
        if self.args.out:
            with open(self.args.out, "w") as f:
                f.write(text)

    def cleanup(self):
        self.stop_daemon()
        # The script's namespaces of an interrupted sample.
        for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
            if name.startswith(f"sbxb-{self.tag}-"):
                sh([self.ip, "netns", "del", name], check=False)
        if self.inode is not None:
            sh([self.ip, "netns", "del", self.ns], check=False)  # gone with this process's exit
            shutil.rmtree(f"/run/sandbox-net/{self.inode}", ignore_errors=True)
        if self.tmp:
            mounted = any(self.tmp in line for line in open("/proc/self/mountinfo"))
            if mounted:
                log(f"something is still mounted below {self.tmp}: not removing it")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()

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
