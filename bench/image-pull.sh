#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Pull + unpack of one image from one loopback registry: sandbox-image against podman pull and skopeo copy
# (see bench/README.md). Needs root, podman, skopeo and docker-registry (scripts/install-deps.sh).
set -eu
exec /usr/bin/python3 "$(dirname "$0")/image-pull.py" "$@"
