#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Digest speed of `sandbox-layer digest` on cached data, next to the tools that bound it.

Builds one large layer (a few big files, many medium ones, many small ones), reads it once so it is
in the page cache, then times, in alternating order and --reps times each:
  cat        every file read by cat into /dev/null: the I/O floor (no hashing at all)
  xxhsum     xxhsum -H2 (XXH128) on every file: the same hash, without our metadata records
  sha256sum  the usual content digest, for scale
  digest     sandbox-layer digest -q (content + metadata + xattrs of every entry)
and prints the median GB/s of each and the ratio of digest to each. The goal of the design is that
digest is within a small factor of cat: the page-cache copy, not the hash, is the limit.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def build(root, big_mib, medium, small):
    rnd = os.urandom(1 << 20)
    os.makedirs(os.path.join(root, "big"))
    for i in range(4):
        with open(os.path.join(root, "big", f"blob{i}"), "wb") as f:
            for _ in range(big_mib // 4):
                f.write(rnd)
    for i in range(medium):
        d = os.path.join(root, "medium", f"d{i % 32}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(rnd[i % 1024: i % 1024 + 256 * 1024])
    for i in range(small):
        d = os.path.join(root, "small", f"d{i % 256}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(rnd[i: i + 4096])
    total = files = 0
    for dp, _, fs in os.walk(root):
        for f in fs:
            total += os.lstat(os.path.join(dp, f)).st_size
            files += 1
    return total, files


def timed(cmd, cwd):
    """Wall seconds, and the user and system CPU seconds of the command's processes."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=True, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", default=os.environ.get("SANDBOX_LAYER",
                    os.path.join(HERE, "..", "build", "tools", "sandbox-layer")))
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--medium", type=int, default=2000)
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small layer, 1 rep: a smoke check")
    ap.add_argument("--tmpdir", default="/var/tmp")
    a = ap.parse_args()
    if a.quick:
        a.big_mib, a.medium, a.small, a.reps = 64, 100, 1000, 1
    layer = os.path.abspath(a.layer)
    tools = {
        "cat": "find . -type f -print0 | xargs -0 cat > /dev/null",
        "xxhsum": "find . -type f -print0 | xargs -0 xxhsum -H2 > /dev/null",
        "sha256sum": "find . -type f -print0 | xargs -0 sha256sum > /dev/null",
        "digest": f"'{layer}' digest -q .",
    }
    for t in ("xxhsum", "sha256sum"):
        if not shutil.which(t):
            print(f"{t} not found (apt-get install xxhash coreutils)", file=sys.stderr)
            return 1
    work = tempfile.mkdtemp(prefix="layer-digest-bench.", dir=a.tmpdir)
    try:
        root = os.path.join(work, "layer")
        total, files = build(root, a.big_mib, a.medium, a.small)
        print(f"# layer: {files} files, {total / 1e9:.2f} GB; {os.cpu_count()} CPUs; {a.reps} reps, median",
              file=sys.stderr)
        timed(tools["cat"], root)  # into the page cache
        times = {k: [] for k in tools}
        user = {k: [] for k in tools}
        system = {k: [] for k in tools}
        for rep in range(a.reps):
            order = list(tools) if rep % 2 == 0 else list(reversed(tools))
            for k in order:
                s, u, y = timed(tools[k], root)
                times[k].append(s)
                user[k].append(u)
                system[k].append(y)
                print(f"# rep {rep + 1} {k}: {s:.3f} s (user {u:.3f}, sys {y:.3f})", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"| tool | GB/s (cached, {total / 1e9:.2f} GB, {files} files) | digest speed / tool speed "
              "| user CPU s (hashing) | sys CPU s (copy from the page cache, metadata) |")
        print("|---|---|---|---|---|")
        for k in tools:
            print(f"| {k} | {total / med[k] / 1e9:.2f} | {med[k] / med['digest']:.2f} "
                  f"| {statistics.median(user[k]):.3f} | {statistics.median(system[k]):.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
