#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Snapshot and fork of a live sandbox, through the runtime (tests/helpers/live-run: an idle sandbox with
the defaults, runtime/snapshot.c, a new sandbox with the snapshot as its topmost lower layer):

  1. a sandbox writes CHANGES (1 GiB by default, in 1 MiB files of random data), then its snapshot is
     taken: the time the programs were frozen and the snapshot's whole time (from live-run's report and
     the wall clock around it);
  2. a fork: the start of a sandbox over that snapshot that reads one of its files, against the same
     start without the snapshot (what the snapshot adds to a start);
  3. forks per second of that one snapshot: RUNS forks one after the other, each a whole live-run (start,
     one command, end), and the disk the snapshot and the data directory use before and after (forks
     copy nothing of the snapshot).

Needs root and /dev/fuse. Everything lives in a temp dir under /var/tmp (the data directory, on disk),
removed at the end, also on failure. See bench/README.md ("Snapshot and fork")."""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIVE_RUN = os.environ.get("LIVE_RUN") or os.path.join(HERE, "..", "build", "tests", "helpers", "live-run")
UNIONFS = os.environ.get("SANDBOX_UNIONFS") or os.path.join(HERE, "..", "build", "unionfs", "sandbox-unionfs")


def run(env, *ops, layer=None, timeout=600):
    argv = [LIVE_RUN] + (["--layer", layer] if layer else []) + list(ops)
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"snapshot-fork: live-run {' '.join(ops)} failed ({r.returncode}): {r.stderr.strip()}")
    return r, dt


def du(path):
    out = subprocess.run(["du", "-sx", "--block-size=1", path], stdout=subprocess.PIPE, text=True, check=True)
    return int(out.stdout.split()[0])


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--snapshots", type=int, default=3)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="snapshot-fork.", dir="/var/tmp")
    try:
        os.chmod(root, 0o755)
        env = dict(os.environ, SANDBOX_STATE_DIR=os.path.join(root, "state"),
                   SANDBOX_DATA_DIR=os.path.join(root, "data"), SANDBOX_UNIONFS=UNIONFS)
        os.makedirs(env["SANDBOX_DATA_DIR"])
        snaps = [os.path.join(env["SANDBOX_DATA_DIR"], f"snap{i}") for i in range(a.snapshots)]
        write = (f"mkdir /root/c && i=0; while [ $i -lt {a.changes_mib} ]; do "
                 f"head -c 1048576 /dev/urandom > /root/c/f$i; i=$((i+1)); done; sync")
        ops = ["sh:" + write]
        for s in snaps:
            ops += [f"snap:{s}"]
        r, _ = run(env, *ops, timeout=3600)
        rep = {m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4))
               for m in re.finditer(r"^snapshot (\S+) entries=(\d+) pause_usec=(\d+) frozen=([01])", r.stdout, re.M)}
        print(f"# snapshot-fork: {a.changes_mib} MiB of changes in {a.changes_mib} files, {os.cpu_count()} CPUs")
        print("| snapshot | entries | programs frozen for (ms) |")
        print("|---|---|---|")
        for i, s in enumerate(snaps):
            e, p, fz = rep[s]
            print(f"| {i + 1} | {e} | {p / 1000:.1f}{'' if fz == '1' else ' (not frozen)'} |")
        snap = snaps[0]
        snap_du = du(snap)
        data_before = du(env["SANDBOX_DATA_DIR"])
        base, fork = [], []
        for i in range(a.runs):
            _, dt = run(env, "sh:true")
            base.append(dt)
            _, dt = run(env, "sh:test -s /root/c/f0", layer=snap)
            fork.append(dt)
        data_after = du(env["SANDBOX_DATA_DIR"])
        print()
        print(f"| start + one command + end ({a.runs} runs, alternating) | p50 (ms) | p90 (ms) | max (ms) |")
        print("|---|---|---|---|")
        for name, v in (("a fresh sandbox", base), ("a fork of the snapshot", fork)):
            print(f"| {name} | {statistics.median(v) * 1000:.0f} | {pct(v, 90) * 1000:.0f} | {max(v) * 1000:.0f} |")
        print()
        print(f"forks per second of one snapshot, one after the other: {1 / statistics.median(fork):.1f}")
        print(f"snapshot on disk: {snap_du / 2**20:.1f} MiB; data directory before the forks "
              f"{data_before / 2**20:.1f} MiB, after {a.runs} forks {data_after / 2**20:.1f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
