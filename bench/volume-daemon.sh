#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# volume-daemon.sh: sandboxctl volume create and rm, and what a volume adds to a sandbox's start (exec true
# with and without --volume), through a real sandboxd (--listen, root client). See bench/README.md.
#
# Usage: bench/volume-daemon.sh [--runs N] [--size SIZE]
# Binaries: $SANDBOXD, $SANDBOXCTL (default: build/).

set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
export SANDBOXD=${SANDBOXD:-$build/sandboxd/sandboxd}
export SANDBOXCTL=${SANDBOXCTL:-$build/tools/sandboxctl}

if [ "$(id -u)" -ne 0 ]; then
        echo "volume-daemon: must run as root" >&2
        exit 1
fi
exec /usr/bin/python3 "$here/volume-daemon.py" "$@"
