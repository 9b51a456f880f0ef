#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# unionfs-bench.sh: side-by-side benchmark of sandbox-unionfs, fuse-overlayfs and kernel overlayfs.
#
# This entry point only checks the host (root, /dev/fuse, overlay in /proc/filesystems, fuse-overlayfs,
# GNU tar), installs fio from apt if it is missing (idempotent), and then runs the Python driver
# bench/unionfs-bench.py, which does all the work: data set-up in a mktemp dir, mounts, workloads,
# the table, and clean-up (also on failure or SIGINT/SIGTERM). See bench/README.md.
#
# Usage: bench/unionfs-bench.sh [--quick] [--only NAME[,NAME...]] [--reps N] [--out FILE]
# Binary under test: $SANDBOX_UNIONFS (default build/unionfs/sandbox-unionfs in the checkout).

set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "unionfs-bench: must run as root (kernel overlayfs mounts, fuse-overlayfs as root)" >&2
        exit 1
fi
if [ ! -c /dev/fuse ]; then
        echo "unionfs-bench: /dev/fuse is missing" >&2
        exit 1
fi
if ! grep -qw overlay /proc/filesystems; then
        echo "unionfs-bench: kernel overlayfs is not available" >&2
        exit 1
fi

# fio is needed for the random-read workload; install it once, quietly.
if ! command -v fio >/dev/null 2>&1; then
        echo "unionfs-bench: installing fio from apt" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q fio >/dev/null || {
                echo "unionfs-bench: 'apt-get install fio' failed" >&2
                exit 1
        }
fi
for tool in fuse-overlayfs tar mount umount; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                echo "unionfs-bench: '$tool' not found" >&2
                exit 1
        fi
done

exec /usr/bin/python3 "$here/unionfs-bench.py" "$@"
