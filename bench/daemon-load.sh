#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# daemon-load.sh: latency of one `sandboxctl exec -- /bin/true` through a sandboxd (started with --listen in
# a temp dir) when idle, while other clients' starts hang (their --bind source is on a FUSE mount of the
# bench's own whose server is stopped), and while other clients keep it busy; p50/p90 and ratios to idle.
# See bench/README.md ("Daemon under load").
#
# This entry point only checks the host (root, /dev/fuse) and runs bench/daemon-load.py, which starts and
# stops the daemon and the FUSE server and removes its temp dir (also on failure, SIGINT, SIGTERM, SIGHUP).
#
# Usage: bench/daemon-load.sh [--blocks N] [--per-block N] [--slow K] [--sandboxd PATH] [--out FILE]
# Binaries: $SANDBOXD, $SANDBOXCTL, $SANDBOX_UNIONFS (default build/... in the checkout).

set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "daemon-load: must run as root (sandboxd needs it)" >&2
        exit 1
fi
if [ ! -c /dev/fuse ]; then
        echo "daemon-load: /dev/fuse is missing" >&2
        exit 1
fi

exec /usr/bin/python3 "$here/daemon-load.py" "$@"
