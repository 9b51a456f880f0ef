#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# exec-latency.sh: latency of one `/bin/true` through `sandboxctl exec` (a warm sandboxd started with
# --listen in a temp dir), `sandbox-run`, bwrap (the same isolation flags every run) and plain /bin/true,
# in one run, round-robin, with p50/p90/p99 and ratios to bwrap. See bench/README.md ("Exec latency").
#
# This entry point only checks the host (root, /dev/fuse, bwrap) and runs bench/exec-latency.py, which
# starts and stops the daemon and removes its temp dir (also on failure, SIGINT, SIGTERM, SIGHUP).
#
# Usage: bench/exec-latency.sh [--runs N] [--warmup N] [--tp-runs N] [--trace-runs N] [--out FILE] [--binds] [--tmpfs]
# Binaries: $SANDBOXD, $SANDBOXCTL, $SANDBOX_RUN (default build/... in the checkout; sandboxd finds
# sandbox-unionfs next to itself or in ../unionfs/).

set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "exec-latency: must run as root (sandboxd and sandbox-run need it)" >&2
        exit 1
fi
if [ ! -c /dev/fuse ]; then
        echo "exec-latency: /dev/fuse is missing" >&2
        exit 1
fi
if ! command -v bwrap >/dev/null 2>&1; then
        echo "exec-latency: bwrap not found (package bubblewrap; scripts/install-deps.sh)" >&2
        exit 1
fi

exec /usr/bin/python3 "$here/exec-latency.py" "$@"
