#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The main job: build and install, start the socket-activated daemon (real systemd units where systemd
# is PID 1, otherwise systemd-socket-activate on the same socket), run programs in sandboxes with
# sandboxctl exec and show what they see and what they used; then show the union filesystem
# underneath: copy-up, a whiteout and an opaque directory; then keep the changes as a layer (snapshot),
# digest and verify it, export and import it as an OCI tar, squash the stack and merge layers.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
        echo "demo.sh: run as root (it starts sandboxes, mounts FUSE and reads trusted.* xattrs)" >&2
        exit 1
fi
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
echo "Installing into $(meson introspect build --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])') ..."
meson install -C build --quiet >/dev/null
# The group whose members may use the daemon (the unit's SocketGroup=).
getent group sandbox >/dev/null || groupadd --system sandbox

T=$(mktemp -d /tmp/sandbox-demo.XXXXXX)
ACTIVATOR=
cleanup() {
        mountpoint -q "$T/merged" && umount "$T/merged"
        [ -n "$ACTIVATOR" ] && kill "$ACTIVATOR" 2>/dev/null && wait "$ACTIVATOR" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT

SOCK=/run/sandboxd/sandboxd.sock
export PATH=/usr/local/sbin:/usr/local/bin:$PATH
if [ -d /run/systemd/system ]; then
        echo "systemd is PID 1: starting sandboxd.socket (the daemon starts on the first connection)."
        systemctl daemon-reload
        systemctl start sandboxd.socket
else
        echo "systemd is not PID 1 here: systemd-socket-activate listens on $SOCK and starts the daemon"
        echo "on the first connection, as sandboxd.socket would."
        mkdir -p /run/sandboxd
        if [ -S "$SOCK" ] && sandboxctl version >/dev/null 2>&1; then
                echo "(a daemon already serves $SOCK)"
        else
                rm -f "$SOCK"
                systemd-socket-activate -l "$SOCK" --fdname=sandboxd "$(command -v sandboxd || echo /usr/local/sbin/sandboxd)" \
                        >"$T/sandboxd.log" 2>&1 &
                ACTIVATOR=$!
                for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
                chgrp sandbox "$SOCK" && chmod 0660 "$SOCK"
        fi
fi

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$@"; }

echo; echo "== A sandbox: its own root, pids, host name and network; no capabilities; seccomp; limits =="
cat > "$T/inside.sh" <<'EOF'
echo "I am: $(id)"
echo "my pid: $$; processes I can see: $(ls /proc | grep -c '^[0-9]')"
echo "host name: $(hostname)"
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "network interfaces: $(ls /sys/class/net)"
echo "mounts: $(wc -l < /proc/self/mounts), root: $(grep ' / ' /proc/self/mounts | cut -d' ' -f1-3)"
unshare -U true 2>&1 || echo "unshare refused (seccomp)"
echo hello > /etc/motd && echo "wrote /etc/motd (copy-on-write, gone after exit)"
EOF
step cat "$T/inside.sh"
step sandboxctl version
step sandboxctl exec --hostname demo --memory 64m --pids 32 --stats "$T/stats.json" \
        --bind "$T/inside.sh:/inside.sh:ro" -- sh /inside.sh
step cat "$T/stats.json"
echo; echo "The host sees the program under an unprivileged id (root inside is not root outside):"
step "sandboxctl exec -- sleep 1 & job=\$!; sleep 0.5; sandboxctl ps; ps -o user:12,pid,cmd -C sleep | grep 'sleep 1\$'; wait \$job"
echo; echo "A memory hog meets --memory, a spinning loop meets --timeout:"
step "sandboxctl exec --memory 32m -- python3 -c 'x = bytearray(256 << 20)' || echo \"exit status \$?\""
step "sandboxctl exec --timeout 0.5 -- sh -c 'while :; do :; done' || echo \"exit status \$?\""

echo; echo "== The union filesystem underneath =="
mkdir -p "$T"/{base,app,upper,work,merged}
echo "from the base layer" > "$T/base/motd"
echo "base config" > "$T/base/config"
mkdir "$T/base/etc" && echo "root:x:0:0::/root:/bin/sh" > "$T/base/etc/passwd"
echo "from the app layer (shadows base)" > "$T/app/config"

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

echo; echo "== Layers: keep what a sandbox changed, identify it, ship it =="
L=build/tools/sandbox-layer
step build/unionfs/sandbox-unionfs -o "lowerdir=$T/app:$T/base,upperdir=$T/upper,workdir=$T/work" "$T/merged"
echo "A snapshot of the running mount's upper layer (whiteouts and opaque markers included):"
step $L snapshot -v "$T/merged" "$T/layer1"
step 'echo "written after the snapshot" > "$T/merged/late"; ls -a "$T/merged" "$T/layer1"'
step umount "$T/merged"
echo; echo "Its content digest, a check against it, and an OCI layer tar of it:"
step $L digest "$T/layer1"
step "$L digest \"$T/layer1\" > \"$T/layer1.digest\""
step $L export "$T/layer1" "$T/layer1.tar.zst"
step tar --zstd -tvf "$T/layer1.tar.zst"
step $L import "$T/layer1.tar.zst" "$T/layer1-copy"
step $L verify "$T/layer1-copy" "$T/layer1.digest"
echo; echo "Squash the stack into one flat layer: it equals what overlayfs shows for the stack."
step $L squash -o "lowerdir=$T/layer1:$T/app:$T/base" "$T/flat"
step ls -a "$T/flat" "$T/flat/etc"
step mount -t overlay overlay -o "lowerdir=$T/layer1:$T/app:$T/base" "$T/merged"
step "$L digest -q \"$T/merged\"; $L digest -q \"$T/flat\""
step umount "$T/merged"
echo; echo "Fold the snapshot into the app layer, in place and crash-safe:"
step $L merge "$T/layer1" "$T/app"
step ls -a "$T/app"
