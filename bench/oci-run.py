#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/oci-run.sh: the cost of sandbox-oci under podman and containerd, against runc, in one run.

For each engine, RUNS starts of a static-busybox container running /bin/true (`podman run --rm --network none`
and `ctr run --rm --rootfs`), alternating runtimes so that both see the same machine; prints the median and
p90 wall time of each and the ratio ours/runc. podman uses a storage of its own in a temp dir and containerd is
a private instance; everything is removed at the end. Both runtimes get podman's default seccomp profile (sandbox-oci
stacks it on its own allow-list), --ulimit nofile=1024:1024 and nproc 4096 (or our hard limit if lower)."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import oci_fixture as of  # noqa: E402


# podman asks for RLIMIT_NOFILE 1048576, which runc cannot set where root lacks CAP_SYS_RESOURCE (sandbox-oci
# clamps it): the same explicit bounds for both, below the hard limits (runc failed with nproc at the hard limit
# itself: "error setting rlimit type 6: operation not permitted").
import resource  # noqa: E402
NOFILE = "nofile=1024:1024"
NPROC = "nproc=%d:%d" % ((min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1]),) * 2)


def timed(argv, fatal=True):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        if not fatal:
            return p.stderr.strip()
        raise SystemExit("failed: %s: %s" % (" ".join(argv), p.stderr))
    return time.monotonic() - t


def report(name, ours, runc):
    mo, mr = statistics.median(ours), statistics.median(runc)
    q = lambda v: sorted(v)[int(len(v) * 0.9) - 1]  # noqa: E731
    print("%-8s sandbox-oci median %6.1f ms p90 %6.1f ms | runc median %6.1f ms p90 %6.1f ms | ratio %.2f"
          % (name, mo * 1000, q(ours) * 1000, mr * 1000, q(runc) * 1000, mo / mr))


def bench_podman(d, runs, oci):
    base = ["podman", "--root", d + "/storage", "--runroot", d + "/run", "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    of.make_rootfs(d + "/rootfs")
    subprocess.run(["tar", "-C", d + "/rootfs", "-cf", d + "/bb.tar", "."], check=True)
    subprocess.run(base + ["import", d + "/bb.tar", "localhost/oci-bench:1"], check=True, capture_output=True)
    try:
        ours, runc = [], []
        for i in range(runs + 1):
            a = timed(base + ["--runtime", oci, "run", "--rm", "--network", "none", "--ulimit", NOFILE, "--ulimit", NPROC,
                              "localhost/oci-bench:1", "/bin/true"])
            b = timed(base + ["--runtime", shutil.which("runc"), "run", "--rm", "--network", "none", "--ulimit", NOFILE,
                              "--ulimit", NPROC, "localhost/oci-bench:1", "/bin/true"], fatal=False)
            if i:  # the first of each warms the caches
                ours.append(a)
                runc.append(b)
        failed = [b for b in runc if isinstance(b, str)]
        if failed:
            # On a host whose root lacks CAP_SYS_RESOURCE runc cannot set podman's rlimits: no ratio then.
            print("podman   sandbox-oci median %6.1f ms | runc failed: %s" % (statistics.median(ours) * 1000,
                                                                              failed[0][:200]))
        else:
            report("podman", ours, runc)
    finally:
        subprocess.run(base + ["rm", "-af"], capture_output=True)
        subprocess.run(base + ["system", "reset", "-f"], capture_output=True)


def bench_ctr(d, runs, oci):
    sock = d + "/ctd.sock"
    with open(d + "/ctd.toml", "w") as f:
        f.write('version = 2\nroot = "%s/ctd-root"\nstate = "%s/ctd-state"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s"\n'
                '[ttrpc]\n  address = "%s.ttrpc"\n[metrics]\n  address = ""\n' % (d, d, sock, sock))
    log = open(d + "/ctd.log", "w")
    ctd = subprocess.Popen(["containerd", "--config", d + "/ctd.toml"], stdout=log, stderr=log)
    ns = "oci-bench-" + uuid.uuid4().hex[:6]
    ctr = ["ctr", "--address", sock, "-n", ns]
    try:
        for _ in range(100):
            if subprocess.run(ctr + ["version"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        if not os.path.isdir(d + "/rootfs"):
            of.make_rootfs(d + "/rootfs")
        ours, runc = [], []
        for i in range(runs + 1):
            a = timed(ctr + ["run", "--rm", "--runc-binary", oci, "--rootfs", d + "/rootfs", "o%d" % i, "/bin/true"])
            b = timed(ctr + ["run", "--rm", "--runc-binary", shutil.which("runc"), "--rootfs", d + "/rootfs",
                             "r%d" % i, "/bin/true"])
            if i:
                ours.append(a)
                runc.append(b)
        report("ctr", ours, runc)
    finally:
        ctd.terminate()
        ctd.wait()
        log.close()
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            if line.split()[4].startswith(d):
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        shutil.rmtree("/run/containerd/runc/" + ns, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    why = of.prerequisites()
    for tool in ("podman", "runc", "containerd", "ctr"):
        if not why and not shutil.which(tool):
            why = "no " + tool
    if why:
        raise SystemExit("oci-run: " + why)
    oci = of.oci_binary()
    d = tempfile.mkdtemp(prefix="sbx-oci-bench-")
    os.chmod(d, 0o755)
    try:
        print("# %d runs each, %s vs %s" % (args.runs, oci, shutil.which("runc")))
        bench_podman(d, args.runs, oci)
        bench_ctr(d, args.runs, oci)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
