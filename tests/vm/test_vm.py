#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Limits on an ordinary host: the build, installed into a Debian 12 VM with Debian's defaults (cgroup
v2 only, systemd as PID 1, root with CAP_SYS_RESOURCE), which this machine kind cannot show itself
(hybrid cgroups, no CAP_SYS_RESOURCE, no systemd as PID 1).

What it does:
- The guest image: tests/vm/image-recipe.sh (mmdebstrap from the host's apt sources), cached by
  tests/lib/image_cache.py in /var/cache/sandbox-tests/vm-<hash of the recipe>/ (SBX_VM_CACHE overrides
  the parent directory);
  built when missing or when the recipe changed (the older images are then removed), under a lock, into
  a temp name renamed into place when complete.
- The build under test: `meson install --destdir` of SBX_BUILD_ROOT into a per-run share directory,
  with guest-run.sh and guest_checks.py beside it.
- qemu-system-x86_64 with TCG (KVM does not start guests on this machine kind): the cached disk is
  opened with snapshot=on (writes go to a temp overlay in the run's own temp dir, the cache stays
  pristine), the share is a 9p export, no network. The guest's oneshot unit runs guest-run.sh
  (install, sandboxd.socket, guest_checks.py) and powers off; the TAP lines come back through the share.
- Bounded: the guest must power off within BOOT_RUN_TIMEOUT, else qemu is killed and the test fails
  with the serial console's tail. qemu is always killed and the temp dir removed, also on failure.
- Timings measured and printed: image build (when it happened), boot (kernel start to the test unit),
  install, checks, and the whole qemu run.

Contract: exit 0 all passed, 1 some failed, 77 skipped (not root, no qemu-system-x86_64, no
mmdebstrap or mkfs.ext4 to build a missing image, no build to install) unless SBX_TESTS_MUST_RUN=1,
which turns a skip into a failure.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC_ROOT, "tests", "lib"))
import image_cache  # noqa: E402

RECIPE = os.path.join(HERE, "image-recipe.sh")
GUEST_FILES = ("guest-run.sh", "guest_checks.py")
BUILD_ROOT = os.environ.get("SBX_BUILD_ROOT") or os.path.join(SRC_ROOT, "build")
QEMU = "qemu-system-x86_64"
BUSYBOX = "/var/cache/sandbox-tests/busybox-static/bin/busybox"
# Measured here: the image builds in 65-85 s, the guest boots and runs the checks in about 60 s. The
# bounds leave room for a slower machine and stay, together, below meson's timeout (900 s).
IMAGE_BUILD_TIMEOUT = 360
IMAGE_LOCK_TIMEOUT = 400
BOOT_RUN_TIMEOUT = 420


class Skip(Exception):
    pass


def tap(line):
    print(line, flush=True)


def diag(msg):
    for line in str(msg).rstrip().splitlines():
        tap(f"#   {line}")


# --------------------------------------------------------------------------------------------------
# the image

IMAGE_FILES = ("disk.img", "vmlinuz", "initrd.img")


def ensure_image():
    """The cached image for the current recipe: (directory, seconds spent building it, or None)."""
    d = image_cache.cached("vm", RECIPE, IMAGE_FILES)
    if d:
        return d, None
    for tool in ("mmdebstrap", "mkfs.ext4"):
        if not shutil.which(tool):
            raise Skip(f"no {tool} to build the guest image (scripts/install-deps.sh installs it)")
    return image_cache.ensure("vm", RECIPE, IMAGE_FILES, IMAGE_BUILD_TIMEOUT, IMAGE_LOCK_TIMEOUT)


# --------------------------------------------------------------------------------------------------
# the run

def stage_build(share):
    stage = os.path.join(share, "stage")
    p = subprocess.run(["meson", "install", "-C", BUILD_ROOT, "--destdir", stage, "--no-rebuild", "--quiet"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"meson install --destdir failed: {p.stdout[-1000:]} {p.stderr[-1000:]}")
    for n in GUEST_FILES:
        shutil.copy(os.path.join(HERE, n), share)
    # the root of the image podman runs in the guest (scripts/install-deps.sh unpacks it)
    if not os.access(BUSYBOX, os.X_OK):
        raise Skip(f"no static busybox at {BUSYBOX} (scripts/install-deps.sh unpacks it)")
    shutil.copy(BUSYBOX, share)
    os.makedirs(os.path.join(share, "out"))


def read_times(path):
    times = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                times[k] = float(v)
    except (OSError, ValueError):
        pass
    return times


def tail(path, n=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(none)"


def boot(img, tmp):
    """Boots the guest on the staged share; returns (guest TAP lines, times, qemu seconds, share)."""
    share = os.path.join(tmp, "share")
    os.makedirs(share)
    stage_build(share)
    serial = os.path.join(tmp, "serial.log")
    argv = [QEMU, "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "2048", "-smp", "2",
            "-kernel", os.path.join(img, "vmlinuz"), "-initrd", os.path.join(img, "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 quiet panic=-1 "
                       "systemd.firstboot=off systemd.getty_auto=0",
            "-drive", f"file={os.path.join(img, 'disk.img')},format=raw,if=virtio,snapshot=on",
            "-virtfs", f"local,path={share},mount_tag=share,security_model=none",
            "-nic", "none", "-display", "none", "-no-reboot", "-serial", f"file:{serial}", "-monitor", "none"]
    env = dict(os.environ, TMPDIR=tmp)  # snapshot=on's overlay goes there
    t0 = time.monotonic()
    with open(os.path.join(tmp, "qemu.log"), "w") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
    try:
        try:
            rc = p.wait(BOOT_RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    took = time.monotonic() - t0
    out = os.path.join(share, "out")
    results = tail(os.path.join(out, "results.tap"), 100000) if os.path.exists(os.path.join(out, "results.tap")) else ""
    times = read_times(os.path.join(out, "times"))
    if rc is None:
        raise AssertionError(f"the guest did not power off within {BOOT_RUN_TIMEOUT}s (killed); results so far:\n"
                             f"{results}\nrun.log:\n{tail(os.path.join(out, 'run.log'))}\nserial:\n{tail(serial)}")
    if rc != 0:
        raise AssertionError(f"qemu exited {rc}: {tail(os.path.join(tmp, 'qemu.log'))}\nserial:\n{tail(serial)}")
    if "# done:" not in results:
        raise AssertionError(f"the checks did not finish; results:\n{results}\nrun.log:\n"
                             f"{tail(os.path.join(out, 'run.log'))}\nserial:\n{tail(serial)}")
    return results, times, took, out


def main():
    must_run = os.environ.get("SBX_TESTS_MUST_RUN") == "1"
    sys.stdout.reconfigure(line_buffering=True)
    tap(f"# build {BUILD_ROOT}; image cache {image_cache.CACHE_ROOT}; recipe {image_cache.recipe_hash(RECIPE)}")
    tmp = None
    t_all = time.monotonic()
    passed = failed = 0
    try:
        if os.geteuid() != 0:
            raise Skip("not root")
        if not shutil.which(QEMU):
            raise Skip(f"no {QEMU} (package qemu-system-x86; scripts/install-deps.sh)")
        if not os.path.exists(os.path.join(BUILD_ROOT, "tools", "sandbox-run")):
            raise Skip(f"no build in {BUILD_ROOT}")
        img, built = ensure_image()
        if built is not None:
            tap(f"# built the guest image in {built:.0f}s ({img})")
        tmp = tempfile.mkdtemp(prefix="sbx-vm-")
        results, times, took, out = boot(img, tmp)
        for line in results.splitlines():
            if line.startswith("ok "):
                passed += 1
            elif line.startswith("not ok "):
                failed += 1
            if not line.startswith("1.."):
                tap(line)
        if failed:
            diag(f"run.log:\n{tail(os.path.join(out, 'run.log'), 3000)}")
            diag(f"the guest's journal (end):\n{tail(os.path.join(out, 'journal.txt'), 4000)}")
        boot_s, inst, done = times.get("boot_s", 0), times.get("installed_s", 0), times.get("done_s", 0)
        tap(f"# timings: qemu {took:.0f}s in all; guest boot {boot_s:.0f}s (to the test unit), install "
            f"{inst - boot_s:.0f}s, checks {done - inst:.0f}s, power-off {took - done:.0f}s (approx.)")
    except Skip as e:
        if must_run:
            tap(f"not ok 1 - vm: cannot run ({e}) and SBX_TESTS_MUST_RUN=1")
            tap("0 passed, 1 failed")
            sys.exit(1)
        tap(f"ok 1 - vm # SKIP {e}")
        sys.exit(77)
    except (AssertionError, subprocess.TimeoutExpired, OSError) as e:
        failed += 1
        tap(f"not ok {passed + failed} - vm")
        diag(f"{type(e).__name__}: {e}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    tap(f"1..{passed + failed}")
    tap(f"# whole test {time.monotonic() - t_all:.0f}s")
    tap(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


def on_sigterm(signum, frame):
    # meson's timeout: unwind, so that qemu is killed and the temp dir removed.
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    main()
