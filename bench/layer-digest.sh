#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Digest speed of sandbox-layer against cat, xxhsum and sha256sum on one cached layer (see
# bench/README.md). Installs xxhsum (Debian package xxhash) if it is missing.
set -eu
command -v xxhsum >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q xxhash >/dev/null
exec /usr/bin/python3 "$(dirname "$0")/layer-digest.py" "$@"
