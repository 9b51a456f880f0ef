#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# snapshot-fork-daemon.sh: sandboxctl snapshot of a created sandbox with 1 GiB of changes, and forks of the
# snapshot (create --image), through a real sandboxd. See bench/snapshot-fork-daemon.py and bench/README.md.
#
# Usage: bench/snapshot-fork-daemon.sh [--changes-mib N] [--runs N]
# Binaries: $SANDBOXD, $SANDBOXCTL, $SANDBOX_IMAGE (default: build/).

set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
export SANDBOXD=${SANDBOXD:-$build/sandboxd/sandboxd}
export SANDBOXCTL=${SANDBOXCTL:-$build/tools/sandboxctl}
export SANDBOX_IMAGE=${SANDBOX_IMAGE:-$build/tools/sandbox-image}

if [ "$(id -u)" -ne 0 ]; then
        echo "snapshot-fork-daemon: must run as root" >&2
        exit 1
fi
exec /usr/bin/python3 "$here/snapshot-fork-daemon.py" "$@"
