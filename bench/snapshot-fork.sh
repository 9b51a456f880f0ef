#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# snapshot-fork.sh: the time to snapshot a live sandbox with 1 GiB of changes, what a fork of the
# snapshot adds to a sandbox's start, and forks per second of one snapshot. See bench/snapshot-fork.py
# and bench/README.md ("Snapshot and fork").
#
# Usage: bench/snapshot-fork.sh [--changes-mib N] [--runs N] [--snapshots N]
# Binaries: $LIVE_RUN (default build/tests/helpers/live-run), $SANDBOX_UNIONFS (build/unionfs/...).

set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "snapshot-fork: must run as root" >&2
        exit 1
fi
if [ ! -c /dev/fuse ]; then
        echo "snapshot-fork: /dev/fuse is missing" >&2
        exit 1
fi
exec /usr/bin/python3 "$here/snapshot-fork.py" "$@"
