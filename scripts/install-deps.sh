#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Install what building, testing and benchmarking need on Debian 12. Idempotent: only missing packages
# are installed, and apt is not touched at all when everything is there.
set -euo pipefail

packages=(
        meson ninja-build pkg-config gcc clang libclang-rt-14-dev
        libfuse3-dev fuse3 libxxhash-dev
        python3 attr util-linux
        libseccomp-dev libsystemd-dev libmnl-dev libnftnl-dev
        fuse-overlayfs fio bubblewrap systemd-container
        iproute2 nftables busybox curl
        libarchive-dev zstd podman buildah
)

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "Installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
