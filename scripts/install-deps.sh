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
        # tests/integration/test_oci_*.py: the engines that drive sandbox-oci (podman is above), and runc to compare
        containerd runc conmon
        libarchive-dev zstd podman buildah libdevmapper1.02.1
        # the image store: libcurl, jansson, OpenSSL; its test: skopeo, openssl for certificates
        libcurl4-openssl-dev libjansson-dev libssl-dev openssl skopeo
        # tests/vm: a Debian 12 guest (cgroup v2, systemd) under qemu's TCG, its image built by mmdebstrap
        qemu-system-x86 mmdebstrap e2fsprogs
        # tests/integration/test_apt_image.py: a package and its repository (dpkg-deb, dpkg-scanpackages);
        # test_capabilities.py names capabilities with capsh; test_bind_idmap.py watches sandboxd with strace
        dpkg-dev libcap2-bin strace
        # tests/integration/test_default_image.py: everyday tools in the default image
        git perl ca-certificates libc6-dev tzdata mawk
        # tests/integration/test_python_client.py: pip installs clients/python offline (setuptools backend);
        # tests/completion: bash
        python3-pip python3-setuptools bash
        # sandboxd's volumes: ext4 file systems made by mke2fs (also above, for tests/vm)
        e2fsprogs
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

# Docker, for the layer-tar test (a `docker export` tar must import). Unpacked, not installed: the
# package would register a system-wide daemon; the test starts a private one of its own.
docker_dir=/var/cache/sandbox-tests/docker
if [ ! -x "$docker_dir/usr/sbin/dockerd" ] || [ ! -x "$docker_dir/usr/sbin/runc" ]; then
        tmp=$(mktemp -d)
        chown _apt "$tmp" 2>/dev/null || true # apt downloads as _apt when it can write there
        if ! (cd "$tmp" && apt-get download -q docker.io containerd runc); then
                apt-get update -q
                (cd "$tmp" && apt-get download -q docker.io containerd runc)
        fi
        for deb in "$tmp"/*.deb; do
                dpkg-deb -x "$deb" "$tmp/root"
        done
        mkdir -p "$(dirname "$docker_dir")"
        rm -rf "$docker_dir"
        mv "$tmp/root" "$docker_dir"
        rm -rf "$tmp"
        echo "Unpacked docker.io, containerd and runc into $docker_dir"
fi

# docker-registry (distribution 2.8), for the image store's test and benchmark: unpacked, not installed
# (the package would start a registry on port 5000 for the whole host); the test runs its own.
registry_dir=/var/cache/sandbox-tests/registry
if [ ! -x "$registry_dir/usr/bin/docker-registry" ]; then
        tmp=$(mktemp -d)
        chown _apt "$tmp" 2>/dev/null || true
        if ! (cd "$tmp" && apt-get download -q docker-registry); then
                apt-get update -q
                (cd "$tmp" && apt-get download -q docker-registry)
        fi
        dpkg-deb -x "$tmp"/docker-registry_*.deb "$tmp/root"
        mkdir -p "$(dirname "$registry_dir")"
        rm -rf "$registry_dir"
        mv "$tmp/root" "$registry_dir"
        rm -rf "$tmp"
        echo "Unpacked docker-registry into $registry_dir"
fi

# A static busybox, for the images tests build (tests/integration/test_image_run.py, bench/image-run.sh):
# unpacked, not installed (busybox-static conflicts with the dynamic busybox the network tests use).
busybox_dir=/var/cache/sandbox-tests/busybox-static
if [ ! -x "$busybox_dir/bin/busybox" ]; then
        tmp=$(mktemp -d)
        chown _apt "$tmp" 2>/dev/null || true
        if ! (cd "$tmp" && apt-get download -q busybox-static); then
                apt-get update -q
                (cd "$tmp" && apt-get download -q busybox-static)
        fi
        dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/root"
        mkdir -p "$(dirname "$busybox_dir")"
        rm -rf "$busybox_dir"
        mv "$tmp/root" "$busybox_dir"
        rm -rf "$tmp"
        echo "Unpacked busybox-static into $busybox_dir"
fi
