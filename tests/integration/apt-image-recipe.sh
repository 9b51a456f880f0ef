#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Debian image of tests/integration/test_apt_image.py: Debian 12 "minbase" (essential packages and
# apt) built with mmdebstrap from the host's own apt sources, as a directory for --image DIR. Its apt
# sources are removed: in the test, apt knows only the repository the test serves. The test keys its
# cache on a hash of this file (tests/lib/image_cache.py).
#
# Usage: apt-image-recipe.sh OUTDIR    (OUTDIR must not exist; it gets root/)
set -euo pipefail

out=$1
# The host's configured Debian mirror, as apt on the host uses it.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list

mkdir "$out"
mmdebstrap --quiet --variant=minbase --format=directory bookworm "$out/root" "$sources"
rm -f "$out/root/etc/apt/sources.list" "$out"/root/etc/apt/sources.list.d/*
# What mmdebstrap leaves of the build: apt's lists and caches of the mirror (lists/partial stays, _apt's).
find "$out/root/var/lib/apt/lists" -maxdepth 1 -type f -delete
rm -f "$out"/root/var/cache/apt/*.bin
