#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/volume-daemon.sh's body: a sandboxd of the run's own (--listen, in a temp dir), RUNS volume creates
of SIZE, RUNS pairs of `exec -- true` without and with `--volume` (alternating, so both see the same load),
and the removes; prints medians and p90s. Everything is removed at the end, also on failure."""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size", default="1g")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="sbx-volbench-", dir="/tmp")
    os.chmod(root, 0o755)
    sock = os.path.join(root, "s.sock")
    log = open(os.path.join(root, "log"), "wb")
    d = subprocess.Popen([os.environ["SANDBOXD"], "--state-dir", f"{root}/state", "--data-dir", f"{root}/data",
                          "--idle-timeout", "0", "--listen", sock], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        ctl = [os.environ["SANDBOXCTL"], "--socket", sock]

        def timed(args):
            t0 = time.monotonic()
            r = subprocess.run(ctl + args, capture_output=True, text=True)
            dt = time.monotonic() - t0
            if r.returncode != 0:
                sys.exit(f"volume-daemon: {' '.join(args)}: {r.stderr}")
            return dt * 1e3

        def line(what, v):
            v = sorted(v)
            print(f"{what}: p50 {statistics.median(v):.1f} ms, p90 {v[int(len(v) * 0.9) - 1]:.1f} ms, "
                  f"max {v[-1]:.1f} ms over {len(v)}")

        line(f"volume create --size {a.size}", [timed(["volume", "create", "--size", a.size, f"v{i}"])
                                                 for i in range(a.runs)])
        img = f"{root}/data/volumes/uid-0/v0/image"
        print(f"a new volume's image on disk: {os.stat(img).st_blocks * 512 / 1024:.0f} KiB")
        timed(["exec", "--", "true"])
        plain, vol = [], []
        for _ in range(a.runs):
            plain.append(timed(["exec", "--", "true"]))
            vol.append(timed(["exec", "--volume", "v0:/data", "--", "true"]))
        line("exec -- true", plain)
        line("exec --volume v0:/data -- true", vol)
        line("volume rm", [timed(["volume", "rm", f"v{i}"]) for i in range(a.runs)])
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
