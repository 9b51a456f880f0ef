#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs inside the VM (from the image's sbx-vmtest.service) with the host's share as $1: installs the
# build as `meson install` staged it (share/stage, a DESTDIR), starts sandboxd.socket as a host
# would, runs guest_checks.py, and leaves its TAP output, timings and the journal in share/out.
S=$1
out=$S/out
mkdir -p "$out"
echo "boot_s $(cut -d' ' -f1 /proc/uptime)" >"$out/times"
exec >"$out/run.log" 2>&1
set -x
# The staged tree has /lib and friends as real directories; the guest's are symlinks into /usr.
tar -C "$S/stage" -cf - . | tar -C / -xf - --keep-directory-symlink
systemd-sysusers
systemctl daemon-reload
systemctl start sandboxd.socket
echo "installed_s $(cut -d' ' -f1 /proc/uptime)" >>"$out/times"
python3 "$S/guest_checks.py" "$out"
echo "checks_rc $?" >>"$out/times"
echo "done_s $(cut -d' ' -f1 /proc/uptime)" >>"$out/times"
journalctl -b --no-pager -o short-monotonic >"$out/journal.txt" 2>&1
sync
