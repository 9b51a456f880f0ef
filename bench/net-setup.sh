#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# net-setup.sh: the per-sandbox cost of `--net bridge` (set-up and teardown of the veth, address,
# route, lease; and of two --publish rules) in sandbox-run, against the same steps done with `ip` (and
# `nft`) commands, in one run, round-robin, inside a network namespace of its own. See bench/README.md
# ("Network set-up").
#
# This entry point only checks the host (root, /dev/fuse, ip, nft) and runs bench/net-setup.py, which
# makes the namespace and removes it, its lease directory and its temp dir at the end (also on
# failure, SIGINT, SIGTERM, SIGHUP).
#
# Usage: bench/net-setup.sh [--runs N] [--warmup N] [--out FILE]
# Binary: $SANDBOX_RUN (default build/tools/sandbox-run in the checkout).

set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "net-setup: must run as root (sandbox-run and ip netns need it)" >&2
        exit 1
fi
if [ ! -c /dev/fuse ]; then
        echo "net-setup: /dev/fuse is missing" >&2
        exit 1
fi
for tool in ip nft; do
        if ! command -v "$tool" >/dev/null 2>&1; then
                echo "net-setup: $tool not found (packages iproute2, nftables)" >&2
                exit 1
        fi
done

exec /usr/bin/python3 "$here/net-setup.py" "$@"
