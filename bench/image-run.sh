#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Starting sandboxes from an image of the store: the first start after a pull and 100 starts, against
# podman run (see bench/README.md). Needs root, podman, runc, skopeo, docker-registry and busybox-static
# (scripts/install-deps.sh).
set -eu
exec /usr/bin/python3 "$(dirname "$0")/image-run.py" "$@"
