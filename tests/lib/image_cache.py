# SPDX-License-Identifier: LGPL-2.1-or-later
"""Images that tests build once and keep between runs (tests/vm's Debian guest, the Debian root of
tests/integration/test_apt_image.py).

What it does: an image is the output directory of a recipe script (`bash RECIPE OUTDIR`, OUTDIR must not
exist), cached in CACHE_ROOT/NAME-<hash of the recipe>/ (CACHE_ROOT: $SBX_VM_CACHE, else
/var/cache/sandbox-tests). It is built when missing or when the recipe changed, under an flock on
CACHE_ROOT/NAME.lock (concurrent runs wait for one build), in a mount namespace of its own (whatever the
recipe mounts goes away with it, even when it is killed), into NAME-<hash>.tmp-PID renamed into place
with a "complete" marker once it succeeded; older images of the same NAME are then removed. The build's
output goes to CACHE_ROOT/NAME-build.log, whose tail is in the error when it fails.

What it does not do: download anything itself (the recipe does, from the host's apt sources), or remove
images of other names.
"""

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time

CACHE_ROOT = os.environ.get("SBX_VM_CACHE") or "/var/cache/sandbox-tests"


def recipe_hash(recipe):
    with open(recipe, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def image_dir(name, recipe):
    return os.path.join(CACHE_ROOT, f"{name}-{recipe_hash(recipe)}")


def _complete(d, files):
    return all(os.path.exists(os.path.join(d, n)) for n in tuple(files) + ("complete",))


def cached(name, recipe, files=()):
    """The complete cached image of RECIPE, or None."""
    d = image_dir(name, recipe)
    return d if _complete(d, files) else None


def ensure(name, recipe, files=(), build_timeout=600, lock_timeout=700):
    """The cached image of RECIPE: (directory, seconds spent building it now, or None). FILES: what a
    complete image holds besides the marker. Raises AssertionError when the build fails or takes longer
    than BUILD_TIMEOUT (its process group is killed), or another run holds the lock for LOCK_TIMEOUT."""
    d = image_dir(name, recipe)
    if _complete(d, files):
        return d, None
    os.makedirs(CACHE_ROOT, exist_ok=True)
    with open(os.path.join(CACHE_ROOT, f"{name}.lock"), "w") as lock:
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"another run held the {name} image lock for too long")
                time.sleep(1)
        if _complete(d, files):  # built by another run meanwhile
            return d, None
        tmp = f"{d}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
        t0 = time.monotonic()
        log = os.path.join(CACHE_ROOT, f"{name}-build.log")
        try:
            with open(log, "w") as f:
                p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", recipe, tmp],
                                     stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            try:
                p.wait(build_timeout)
            except subprocess.TimeoutExpired:
                pass
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            if p.returncode != 0:
                with open(log, errors="replace") as f:
                    tail = f.read()[-3000:]
                raise AssertionError(f"building the {name} image failed (exit {p.returncode}):\n{tail}")
            with open(os.path.join(tmp, "complete"), "w") as f:
                f.write(recipe_hash(recipe) + "\n")
            os.rename(tmp, d)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        took = time.monotonic() - t0
        # Images of older recipes (and temp dirs of runs that were killed) are of no further use.
        for n in os.listdir(CACHE_ROOT):
            p = os.path.join(CACHE_ROOT, n)
            if n.startswith(f"{name}-") and p != d and os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
        return d, took
