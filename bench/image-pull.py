#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Pull + unpack of one image from one loopback registry: sandbox-image against podman and skopeo.

Builds an image from directories of this host (by default /usr/lib/python3.11 as one layer, /usr/share/perl
and /usr/share/zoneinfo as a second, a small third: thousands of files, tens of MiB, gzip'ed), pushes it
with skopeo to Debian's docker-registry on a free loopback port with its own storage, then times, in
rotating order and --reps times each, with a fresh destination every time:
  sandbox-image  sandbox-image --store FRESH pull HOST/bench/img:1   (download, verify, unpack every layer)
  podman         podman --root FRESH --storage-driver overlay pull --tls-verify=false HOST/bench/img:1
                 (download, verify, unpack into overlay diff directories)
  skopeo         skopeo copy --src-tls-verify=false docker://HOST/bench/img:1 dir:FRESH
                 (download and verify only: no unpacking, the floor for the transfer)
and prints the median wall and CPU seconds of each and the ratios, oriented so that > 1 means
sandbox-image is faster. The registry's files are in the page cache after the first run; every tool
reads the same bytes over the same loopback, so the comparison is of the clients. The destinations live
on a journaled ext4 of the benchmark's own (a sparse image on a loop device with direct I/O, as
bench/unionfs-bench.py does): this host's root ext4 has no journal, and there creating files right after
others were deleted costs up to 10x more, which made runs swing between 6 and 13 s. podman and skopeo run
in a private mount namespace with an empty /var/lib (containers/image's blob-info cache) and their own
HOME, so nothing of them stays on the host.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from image_fixture import Registry, containers, podman_base, registry_binary  # noqa: E402


def tar_dirs(srcs, out):
    """A gzip'ed layer tar of the directories SRCS under their own paths (as an image would hold them)."""
    subprocess.run(["tar", "--numeric-owner", "-C", "/", "-czf", out, *[s.lstrip("/") for s in srcs]], check=True)


def build_layout(work, layers):
    """An OCI layout of one image, a gzip'ed layer per list of directories in LAYERS."""
    import hashlib
    import json
    layout = os.path.join(work, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    descs, diff_ids = [], []
    for i, dirs in enumerate(layers):
        t = os.path.join(work, f"layer{i}.tar.gz")
        tar_dirs(dirs, t)
        with open(t, "rb") as f:
            blob = f.read()
        diff = hashlib.sha256(subprocess.run(["gzip", "-dc", t], stdout=subprocess.PIPE, check=True).stdout).hexdigest()
        digest = hashlib.sha256(blob).hexdigest()
        os.rename(t, os.path.join(layout, "blobs", "sha256", digest))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + digest,
                      "size": len(blob)})
        diff_ids.append("sha256:" + diff)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                                      "size": len(config)}, "layers": descs}).encode()
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": put(manifest), "size": len(manifest),
                   "annotations": {"org.opencontainers.image.ref.name": "img"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return layout, sum(d["size"] for d in descs)


def timed(argv):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {p.stdout[-800:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def du(path):
    total = files = 0
    for dp, dn, fn in os.walk(path):
        for n in fn:
            try:
                total += os.lstat(os.path.join(dp, n)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image-tool", default=os.environ.get("SANDBOX_IMAGE",
                    os.path.join(HERE, "..", "build", "tools", "sandbox-image")))
    ap.add_argument("--dirs", default="/usr/lib/python3.11,/usr/share/perl:/usr/share/zoneinfo,/usr/share/bash-completion",
                    help="layers, comma-separated; a layer of several directories joins them with ':'")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one small layer, 1 rep: a smoke check")
    ap.add_argument("--tmpdir", default="/var/tmp")
    a = ap.parse_args()
    if a.quick:
        a.dirs, a.reps = "/usr/share/bash-completion", 1
    if os.geteuid() != 0:
        sys.exit("image-pull.py: needs root (sandbox-image pull, podman's storage)")
    tool = os.path.abspath(a.image_tool)
    for t in ("skopeo", "podman"):
        if not shutil.which(t):
            sys.exit(f"image-pull.py: {t} is missing")
    if not registry_binary():
        sys.exit("image-pull.py: docker-registry is missing (scripts/install-deps.sh)")

    work = tempfile.mkdtemp(prefix="ipb.", dir=a.tmpdir)  # short: podman refuses run roots over 50 bytes
    reg = None
    loopdev = None
    fs = os.path.join(work, "fs")
    try:
        img = os.path.join(work, "ext4.img")
        with open(img, "wb") as f:
            f.truncate(4 << 30)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img], check=True)
        loopdev = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", img], capture_output=True,
                                 text=True, check=True).stdout.strip()
        os.mkdir(fs)
        subprocess.run(["mount", "-t", "ext4", loopdev, fs], check=True)
        home = os.path.join(work, "home")
        layers = [parts for parts in ([p for p in spec.split(":") if os.path.isdir(p)] for spec in a.dirs.split(","))
                  if parts]
        layout, compressed = build_layout(work, layers)
        reg = Registry(os.path.join(work, "registry"), os.path.join(work, "storage"))
        if not reg.wait_ready():
            sys.exit("registry did not start: " + reg.log_tail())
        r = containers("skopeo", home, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:img",
                       f"docker://{reg.host}/bench/img:1")
        if r.returncode != 0:
            sys.exit("skopeo push failed: " + r.stdout[-800:])
        ref = f"{reg.host}/bench/img:1"

        def ours(dest):
            return [tool, "--store", dest, "pull", "-q", ref]

        def podman(dest):
            base = podman_base(dest)
            base[base.index("vfs")] = "overlay"
            return ["env", f"HOME={home}", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$0" "$@"', "podman", *base, "pull", "-q",
                    "--tls-verify=false", ref]

        def skopeo(dest):
            return ["env", f"HOME={home}", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$0" "$@"', "skopeo", "copy", "--quiet",
                    "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}"]

        impls = {"sandbox-image": ours, "podman": podman, "skopeo": skopeo}
        names = list(impls)
        samples = {n: [] for n in names}
        unpacked = {}
        for rep in range(a.reps + 1):  # rep 0 warms the registry's page cache and is not counted
            order = names[rep % 3:] + names[:rep % 3]
            for n in order:
                dest = os.path.join(fs, f"{n[0]}{rep}")
                wall, cpu = timed(impls[n](dest))
                if rep > 0:
                    samples[n].append((wall, cpu))
                    print(f"rep {rep} {n}: {wall:.3f} s wall, {cpu:.3f} s CPU", file=sys.stderr)
                if n == "sandbox-image" and n not in unpacked:
                    unpacked[n] = du(os.path.join(dest, "layers"))
                if n == "podman":
                    subprocess.run(podman(dest)[:-4] + ["rmi", "-a", "-f"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
                shutil.rmtree(dest, ignore_errors=True)

        size, files = unpacked.get("sandbox-image", (0, 0))
        print(f"# Pull + unpack from a loopback registry ({len(layers)} layers, {compressed / 2**20:.1f} MiB "
              f"compressed, {size / 2**20:.1f} MiB / {files} files unpacked; median of {a.reps})\n")
        print("| tool | wall s | CPU s | sandbox-image faster by (wall) | (CPU) |")
        print("|---|---|---|---|---|")
        med = {n: (statistics.median(w for w, _ in samples[n]), statistics.median(c for _, c in samples[n]))
               for n in names}
        for n in names:
            w, c = med[n]
            rw = med[n][0] / med["sandbox-image"][0]
            rc = med[n][1] / med["sandbox-image"][1] if med["sandbox-image"][1] > 0 else float("nan")
            print(f"| {n} | {w:.3f} | {c:.3f} | {rw:.2f}x | {rc:.2f}x |")
        print("\nskopeo only downloads and verifies (dir: destination, no unpacking): it is the floor for the "
              "transfer, not a like-for-like pull.")
    finally:
        if reg:
            reg.stop()
        if os.path.ismount(fs):
            for _ in range(50):
                if subprocess.run(["umount", fs]).returncode == 0:
                    break
                time.sleep(0.2)
        if loopdev:
            subprocess.run(["losetup", "-d", loopdev])
        if not os.path.ismount(fs):
            subprocess.run(["rm", "-rf", "--one-file-system", work])


if __name__ == "__main__":
    main()
