#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The VM test's guest image: Debian 12 with its defaults (systemd as PID 1, cgroup v2 only), built
# with mmdebstrap from the host's own apt sources, plus a oneshot unit that mounts the 9p share
# "share" and runs the share's guest-run.sh, then powers the machine off. Nothing of the project is
# in the image: the build under test comes through the share, so the image only changes with this
# file. tests/vm/test_vm.py keys its cache on a hash of this file.
#
# Usage: image-recipe.sh OUTDIR    (OUTDIR must not exist; it gets disk.img, vmlinuz, initrd.img)
set -euo pipefail

out=$1
packages=(
        systemd systemd-sysv udev dbus kmod linux-image-amd64
        # what the project's binaries link, and the tools the guest checks use
        libfuse3-3 fuse3 libseccomp2 libsystemd0 libmnl0 libnftnl11 libxxhash0 libarchive13
        libjansson4 libcurl4 libssl3
        python3 procps util-linux
        # guest_checks.py's engine: podman with its default (systemd) cgroup manager drives sandbox-oci
        podman conmon
)
# The host's configured Debian mirror, as apt on the host uses it.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list

mkdir "$out"
root="$out/root"
mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
        bookworm "$root" "$sources"

cat >"$root/usr/local/sbin/sbx-vmtest" <<'SH'
#!/bin/sh
# Mount the host's share and hand over to its guest-run.sh; the unit powers off when this ends.
mkdir -p /mnt/share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /mnt/share || exit 1
exec /bin/sh /mnt/share/guest-run.sh /mnt/share
SH
chmod 0755 "$root/usr/local/sbin/sbx-vmtest"
cat >"$root/etc/systemd/system/sbx-vmtest.service" <<'UNIT'
[Unit]
Description=sandbox VM test (runs the share's guest-run.sh, then powers off)
After=basic.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/sbx-vmtest
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -s /etc/systemd/system/sbx-vmtest.service "$root/etc/systemd/system/multi-user.target.wants/"
# No login prompts on the console: nobody types there.
rm -f "$root"/etc/systemd/system/getty.target.wants/*
echo sbx-vm >"$root/etc/hostname"

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
truncate -s 3G "$out/disk.img"
mkfs.ext4 -q -F -L sbxroot -d "$root" "$out/disk.img"
rm -rf "$root"
