#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Starting sandboxes from an image of the store: sandbox-run --image against podman run.

Builds one image (Debian's static busybox as a base layer, plus a layer of host directories, by default
/usr/lib/python3.11: thousands of files, so that a copy would show), pushes it with skopeo to Debian's
docker-registry on a free loopback port, and measures:

1. First start of a freshly pulled image: for each of --reps rounds (after one warm-up round), in
   rotating order, a fresh store (a fresh podman root) pulls the image (not timed), then the first
   start of a sandbox (container) running the image's Cmd, /bin/true, is timed, and a second one:
     sandbox-run   sandbox-run --store FRESH --image REF       (SANDBOX_STATE_DIR fresh too)
     podman        podman --root FRESH --storage-driver overlay run --rm --runtime runc --network none REF
   (podman needs runc on this hybrid-cgroup host, and --ulimit values within root's own hard limits:
   root here lacks CAP_SYS_RESOURCE.)
2. The same image started --starts times (100) one after the other, for both: wall time in all and
   per start (median), and the disk usage of the store (podman's storage) before and after.
3. --starts sandboxes of the image running at once (ours): the time until all run, the bytes their
   sandbox directories hold together while they run, against the image's layers, and the store
   before and after: the layers are shared, not copied.

Everything lives on a journaled ext4 of the benchmark's own (a sparse image on a loop device, as
bench/image-pull.py does); podman runs in a private mount namespace with an empty /var/lib and its own
HOME. Ratios are oriented so that > 1 means sandbox-run is faster. Needs root, podman, runc, skopeo,
docker-registry and busybox-static (scripts/install-deps.sh).
"""

import argparse
import json
import os
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from image_fixture import (Image, Layer, Registry, build_layout, busybox_layer, busybox_static,  # noqa: E402
                           config_json, containers, podman_base, registry_binary)


def dirs_layer(dirs):
    """A gzip'ed layer of host directories under their own paths, as an image would hold them (GNU tar,
    numeric owners)."""
    tar = subprocess.run(["tar", "--numeric-owner", "-C", "/", "-cf", "-", *[d.lstrip("/") for d in dirs]],
                         stdout=subprocess.PIPE, check=True).stdout
    return Layer.from_tar(tar)


def timed(argv, env=None):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:3]}... failed ({p.returncode}): {p.stdout[-800:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def du(path):
    """(bytes of file data, files, directories) below PATH."""
    total = files = dirs = 0
    for dp, dn, fn in os.walk(path):
        dirs += len(dn)
        for n in fn:
            try:
                total += os.lstat(os.path.join(dp, n)).st_size
                files += 1
            except OSError:
                pass
    return total, files, dirs


def mib(b):
    return b / (1 << 20)


class Scratch:
    """A journaled ext4 on a sparse image and a loop device (direct I/O), mounted at WORK/fs."""

    def __init__(self, work, size=8 << 30):
        self.work, self.fs, self.loop = work, os.path.join(work, "fs"), None
        img = os.path.join(work, "ext4.img")
        with open(img, "wb") as f:
            f.truncate(size)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img], check=True)
        self.loop = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", img], capture_output=True,
                                   text=True, check=True).stdout.strip()
        os.mkdir(self.fs)
        subprocess.run(["mount", "-t", "ext4", self.loop, self.fs], check=True)
        os.chmod(self.fs, 0o755)

    def release(self):
        if os.path.ismount(self.fs):
            for _ in range(50):
                if subprocess.run(["umount", self.fs]).returncode == 0:
                    break
                time.sleep(0.2)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop])


def main():
    ap = argparse.ArgumentParser()
    build = os.path.join(HERE, "..", "build")
    ap.add_argument("--run-tool", default=os.environ.get("SANDBOX_RUN", os.path.join(build, "tools", "sandbox-run")))
    ap.add_argument("--image-tool", default=os.environ.get("SANDBOX_IMAGE",
                    os.path.join(build, "tools", "sandbox-image")))
    ap.add_argument("--dirs", default="/usr/lib/python3.11", help="the second layer's directories, ':'-separated")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--starts", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="1 rep, 10 starts: a smoke check")
    ap.add_argument("--tmpdir", default="/var/tmp")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.starts = 1, 10
    if os.geteuid() != 0:
        sys.exit("image-run.py: needs root")
    for t in ("skopeo", "podman", "runc"):
        if not shutil.which(t):
            sys.exit(f"image-run.py: {t} is missing (scripts/install-deps.sh)")
    if not registry_binary() or not busybox_static():
        sys.exit("image-run.py: docker-registry or busybox-static is missing (scripts/install-deps.sh)")
    run_tool, image_tool = os.path.abspath(a.run_tool), os.path.abspath(a.image_tool)

    work = tempfile.mkdtemp(prefix="irb.", dir=a.tmpdir)  # short: podman refuses run roots over 50 bytes
    os.chmod(work, 0o755)
    reg = scratch = None
    try:
        scratch = Scratch(work)
        fs = scratch.fs
        home = os.path.join(work, "home")
        bb = busybox_layer()
        layers = [bb]
        dirs = [d for d in a.dirs.split(":") if os.path.isdir(d)]
        if dirs:
            layers.append(dirs_layer(dirs))
        img = Image(layers, config_json(layers, env=["PATH=/bin"], cmd=["/bin/true"]))
        layout = os.path.join(work, "layout")
        build_layout(layout, [(img, "img")])
        reg = Registry(os.path.join(work, "registry"), os.path.join(work, "storage"))
        if not reg.wait_ready():
            sys.exit("registry did not start: " + reg.log_tail())
        r = containers("skopeo", home, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:img",
                       f"docker://{reg.host}/bench/run:1")
        if r.returncode != 0:
            sys.exit("skopeo push failed: " + r.stdout[-800:])
        ref = f"{reg.host}/bench/run:1"
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

        def podman(root, *args):
            base = podman_base(root)
            base[base.index("vfs")] = "overlay"
            return ["env", f"HOME={home}", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$0" "$@"', "podman", *base, *args]

        def podman_run(root):
            return podman(root, "run", "--rm", "--runtime", "runc", "--network", "none", "--ulimit",
                          f"nofile=1024:{min(nofile, 65536)}", "--ulimit", "nproc=1024:1024", ref)

        def ours_env(state):
            return dict(os.environ, SANDBOX_STATE_DIR=state)

        # 1. first start of a freshly pulled image
        first = {"sandbox-run": [], "podman": []}
        second = {"sandbox-run": [], "podman": []}
        for rep in range(a.reps + 1):  # round 0 warms caches and is not counted
            for n in (["sandbox-run", "podman"] if rep % 2 == 0 else ["podman", "sandbox-run"]):
                dest = os.path.join(fs, f"{n[0]}{rep}")
                if n == "sandbox-run":
                    timed([image_tool, "--store", dest, "pull", "-q", ref])
                    argv, env = [run_tool, "--store", dest, "--image", ref], ours_env(dest + ".state")
                else:
                    timed(podman(dest, "pull", "-q", "--tls-verify=false", ref))
                    argv, env = podman_run(dest), None
                w1 = timed(argv, env)
                w2 = timed(argv, env)
                if rep > 0:
                    first[n].append(w1)
                    second[n].append(w2)
                    print(f"round {rep} {n}: first start {w1[0]:.3f} s, second {w2[0]:.3f} s", file=sys.stderr)
                if n == "podman":
                    subprocess.run(podman(dest, "rmi", "-a", "-f"), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                shutil.rmtree(dest, ignore_errors=True)
                shutil.rmtree(dest + ".state", ignore_errors=True)

        # 2. the same image started --starts times in a row
        store, pod = os.path.join(fs, "store"), os.path.join(fs, "pod")
        state = os.path.join(fs, "state")
        timed([image_tool, "--store", store, "pull", "-q", ref])
        timed(podman(pod, "pull", "-q", "--tls-verify=false", ref))
        series = {}
        usage = {}
        for n, where, argv, env in (("sandbox-run", store, [run_tool, "--store", store, "--image", ref], ours_env(state)),
                                    ("podman", os.path.join(pod, "root"), podman_run(pod), None)):
            before = du(where)
            t0 = time.perf_counter()
            walls = [timed(argv, env)[0] for _ in range(a.starts)]
            total = time.perf_counter() - t0
            after = du(where)
            series[n] = (total, statistics.median(walls))
            usage[n] = (before, after)
            print(f"{a.starts} starts {n}: {total:.2f} s, median {statistics.median(walls):.3f} s; storage "
                  f"{before} -> {after}", file=sys.stderr)
        left = sorted(set(os.listdir(state)) - {"ids", "images", "cache"})

        # 3. --starts sandboxes at once
        layer_bytes = du(os.path.join(store, "layers"))[0]
        store_before = du(store)
        procs = []
        t0 = time.perf_counter()
        for _ in range(a.starts):
            procs.append(subprocess.Popen([run_tool, "--store", store, "--image", ref, "--entrypoint", "/bin/sh",
                                           "--", "-c", "echo up; read x"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ours_env(state)))
        pending = {p.stdout.fileno(): p for p in procs}
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select(list(pending), [], [], 1)
            for fd in ready:
                if os.read(fd, 16):
                    del pending[fd]
                else:
                    raise RuntimeError(f"a sandbox ended before it was up: {pending[fd].stderr.read()[-400:]!r}")
        all_up = time.perf_counter() - t0
        if pending:
            raise RuntimeError(f"{len(pending)} sandboxes not up after 300 s")
        running = du(state)
        pins = len(os.listdir(os.path.join(store, "pins")))
        for p in procs:
            p.stdin.write(b"x\n")
            p.stdin.close()
        for p in procs:
            if p.wait(60) != 0:
                raise RuntimeError(f"a sandbox failed: {p.stderr.read()[-400:]!r}")
            p.stdout.close()
            p.stderr.close()
        store_after = du(store)
        left_many = sorted(set(os.listdir(state)) - {"ids", "images", "cache"})

        # the report
        def med(samples, i=0):
            return statistics.median(s[i] for s in samples)
        print(f"# Starting sandboxes from an image of the store ({len(layers)} layers: static busybox"
              f"{' + ' + ', '.join(dirs) if dirs else ''}; {mib(layer_bytes):.1f} MiB and "
              f"{store_before[1]} files unpacked; median of {a.reps})\n")
        print("| | sandbox-run --image | podman run (runc) | sandbox-run faster by |")
        print("|---|---|---|---|")
        for what, d in (("first start after a pull, wall s", first), ("second start, wall s", second)):
            o, p = med(d["sandbox-run"]), med(d["podman"])
            print(f"| {what} | {o:.3f} | {p:.3f} | {p / o:.2f}x |")
        o, p = med(first["sandbox-run"], 1), med(first["podman"], 1)
        print(f"| first start, CPU s (the tool and its children) | {o:.3f} | {p:.3f} | {p / o:.2f}x |")
        (ot, om), (pt, pm) = series["sandbox-run"], series["podman"]
        print(f"| {a.starts} starts in a row, wall s | {ot:.2f} | {pt:.2f} | {pt / ot:.2f}x |")
        print(f"| ... per start, median s | {om:.3f} | {pm:.3f} | {pm / om:.2f}x |")
        for n in ("sandbox-run", "podman"):
            (b0, f0, d0), (b1, f1, d1) = usage[n]
            print(f"| {n}: its storage before / after {a.starts} starts | {mib(b0):.2f} MiB, {f0} files / "
                  f"{mib(b1):.2f} MiB, {f1} files | | |")
        print(f"\nAfter {a.starts} starts in a row: {len(left)} sandbox directories left in the state directory.")
        print(f"\n{a.starts} sandboxes of the image at once (sandbox-run): all up after {all_up:.2f} s; while they "
              f"ran, their sandbox directories held {mib(running[0]):.2f} MiB in {running[1]} files together "
              f"(each its upper, work directory and /etc layer), against {mib(layer_bytes):.1f} MiB of layers in "
              f"the store, which went from {mib(store_before[0]):.2f} MiB / {store_before[1]} files to "
              f"{mib(store_after[0]):.2f} MiB / {store_after[1]} files ({pins} pins while they ran); "
              f"{len(left_many)} sandbox directories left after they ended.")
        print(json.dumps({"first": first, "second": second, "series": series, "usage": usage, "all_up": all_up,
                          "running": running, "layer_bytes": layer_bytes}), file=sys.stderr)
    finally:
        if reg:
            reg.stop()
        if scratch:
            scratch.release()
        if not scratch or not os.path.ismount(scratch.fs):
            subprocess.run(["rm", "-rf", "--one-file-system", work])


if __name__ == "__main__":
    main()
