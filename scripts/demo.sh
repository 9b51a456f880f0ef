#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job, for now: build sandbox-unionfs, mount a small union and show copy-up and a whiteout.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
        echo "demo.sh: run as root (it mounts a FUSE filesystem and reads trusted.* xattrs)" >&2
        exit 1
fi
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

T=$(mktemp -d /tmp/sandbox-demo.XXXXXX)
cleanup() {
        mountpoint -q "$T/merged" && umount "$T/merged"
        rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T"/{base,app,upper,work,merged}
echo "from the base layer" > "$T/base/motd"
echo "base config" > "$T/base/config"
mkdir "$T/base/etc" && echo "root:x:0:0::/root:/bin/sh" > "$T/base/etc/passwd"
echo "from the app layer (shadows base)" > "$T/app/config"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$@"; }

echo "Layers: app (top) over base; writes go to upper."
step build/unionfs/sandbox-unionfs -o "lowerdir=$T/app:$T/base,upperdir=$T/upper,workdir=$T/work" "$T/merged"
step ls -l "$T/merged"
step cat "$T/merged/config"
echo; echo "Copy-up: appending to a base file copies it to upper first; base stays untouched."
step 'echo "changed in the sandbox" >> "$T/merged/motd"'
step cat "$T/merged/motd"
step cat "$T/base/motd"
step ls -l "$T/upper"
echo; echo "Whiteout: deleting a lower file leaves a character device 0/0 in upper."
step rm "$T/merged/config"
step ls "$T/merged"
step ls -l "$T/upper/config"
echo; echo "Opaque directory: removing and re-creating a lower directory hides its old contents."
step rm -r "$T/merged/etc"
step mkdir "$T/merged/etc"
step ls -a "$T/merged/etc"
step getfattr -n trusted.overlay.opaque "$T/upper/etc"
step umount "$T/merged"
echo; echo "The upper is a standard overlayfs upper: the kernel's overlayfs mounts it and shows the same tree."
step mount -t overlay overlay -o "lowerdir=$T/app:$T/base,upperdir=$T/upper,workdir=$T/work" "$T/merged"
step ls -a "$T/merged" "$T/merged/etc"
step cat "$T/merged/motd"
step umount "$T/merged"
