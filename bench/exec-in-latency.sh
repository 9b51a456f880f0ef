#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# exec-in-latency.sh: latency of one `/bin/true` through `sandboxctl exec --in` (a sandbox made by
# `sandboxctl create`) against a fresh `sandboxctl exec`, against one warm sandboxd started with --listen
# in a temp dir; p50/p90/p99. See bench/README.md ("exec --in latency").
#
# Usage: bench/exec-in-latency.sh [--runs N] [--warmup N] [--out FILE] [--no-podman] [--podman-runtime PATH]
# Binaries: $SANDBOXD, $SANDBOXCTL (default build/... in the checkout).

set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "exec-in-latency: must run as root (sandboxd needs it)" >&2
        exit 1
fi
if [ ! -c /dev/fuse ]; then
        echo "exec-in-latency: /dev/fuse is missing" >&2
        exit 1
fi

exec /usr/bin/python3 "$here/exec-in-latency.py" "$@"
