#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon's snapshot and fork (bench/README.md, "Snapshot and fork through the daemon"): a real
socket-activated sandboxd (the set-up of tests/integration/test_sandboxd_snapshot.py, a client other than
root in group "sandbox", a busybox image imported into a store of the run's own); a created sandbox writes
N MiB of random data; `sandboxctl snapshot` stores it as an image (wall time, how long the programs were
frozen); then RUNS forks (`sandboxctl create --image SNAPSHOT`, then `rm -f`) one after the other, and the
store's size before and after them.

Usage: bench/snapshot-fork-daemon.sh [--changes-mib N] [--runs N]; binaries as for the integration test
(SANDBOXD, SANDBOXCTL, SANDBOX_IMAGE; default: the build directory)."""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import test_sandboxd_snapshot as t  # noqa: E402

ARGS = None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def test_bench(env):
    d = t.daemon(env)
    mib = ARGS.changes_mib
    d.create(t.USER, ["--image", "localhost/base:1", "--name", "box", "--disk", f"{mib + 512}m"])
    r = d.exec_in(t.USER, "box", ["sh", "-c", f"dd if=/dev/urandom of=/root/big bs=1M count={mib} 2>/dev/null && sync"],
                  timeout=1800)
    sf.eq(r.returncode, 0, f"writing {mib} MiB: {r}")
    t0 = time.monotonic()
    j = t.snapshot(d, t.USER, "box", "bench")
    wall = time.monotonic() - t0
    print(f"snapshot of {mib} MiB: {wall:.2f} s, programs frozen {j['pause_usec'] / 1000:.1f} ms, "
          f"new layer {j['layer_bytes'] / 2**20:.1f} MiB", flush=True)
    d.ctl_as(t.USER, ["rm", "-f", "box"])
    before = t.usage(d.store, ("layers", "blobs"))[0]
    times = []
    start = time.monotonic()
    for i in range(ARGS.runs):
        a = time.monotonic()
        r = d.ctl_as(t.USER, ["create", "--image", "bench", "--name", "f"])
        times.append(time.monotonic() - a)
        sf.eq(r.returncode, 0, f"fork {i}: {r}")
        sf.eq(d.ctl_as(t.USER, ["rm", "-f", "f"]).returncode, 0, "rm -f")
    total = time.monotonic() - start
    after = t.usage(d.store, ("layers", "blobs"))[0]
    print(f"fork (create --image): p50 {pct(times, 50) * 1000:.0f} ms, p90 {pct(times, 90) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms over {ARGS.runs}; forks + rm per second: {ARGS.runs / total:.1f}; "
          f"store {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after", flush=True)
    t.rm_all(d)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--changes-mib", type=int, default=1024)
    p.add_argument("--runs", type=int, default=20)
    ARGS, rest = p.parse_known_args()
    sys.argv = [sys.argv[0]] + rest
    sf.main(globals(), make_env=df.DaemonEnv, check_prerequisites=t.prerequisites, on_failure=df.print_daemon_logs)
