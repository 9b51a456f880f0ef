#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# sandbox-oci against runc under real engines, in one run: `podman run --rm IMAGE /bin/true` and `ctr run --rm`
# with each runtime, N times each, interleaved; medians and the ratio ours/runc (see bench/README.md). Needs root,
# podman, conmon, containerd, runc and busybox-static (scripts/install-deps.sh) and a build of sandbox-oci.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/oci-run.py" "$@"
