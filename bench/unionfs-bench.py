#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Side-by-side benchmark: sandbox-unionfs vs fuse-overlayfs vs kernel overlayfs.

Runs the same workloads on the three implementations in one run, takes the median of N repetitions
(interleaved: rep 1 of every implementation, then rep 2, ..., with the order rotated each rep so no
implementation always goes first), and prints a markdown table with the ratios of sandbox-unionfs to the
other two (> 1 means sandbox-unionfs is better). Every mount gets a fresh upper and work dir; lowers are
built once and shared (they are never written through a mount). All data lives in one mktemp dir on
the root fs (ext4) that is removed at the end, also on failure or SIGINT/SIGTERM. Meant to be started by
bench/unionfs-bench.sh (which checks the host and installs fio); stdlib only. See bench/README.md for
what each workload measures and why.

It does not check semantics beyond what keeps the figures honest (entry counts, sizes, no accidental
copy-up); the integration tests do that.
"""

import argparse
import ctypes
import hashlib
import io
import json
import os
import platform
import random
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

MiB = 1 << 20
GiB = 1 << 30

IMPLS = ("kernel", "fuse-overlayfs", "sandbox-unionfs", "sandbox-unionfs+quota", "sandbox-unionfs+sync")
DEFAULT_IMPLS = ("kernel", "fuse-overlayfs", "sandbox-unionfs")
LABEL = {"kernel": "kernel overlayfs", "fuse-overlayfs": "fuse-overlayfs", "sandbox-unionfs": "sandbox-unionfs",
         "sandbox-unionfs+quota": "sandbox-unionfs with a quota",
         "sandbox-unionfs+sync": "sandbox-unionfs with a quota, writeback=0"}
# The variants of sandbox-unionfs: the same binary with more options. "+quota": a disk quota that is
# never reached (what counting costs); "+sync": the same without the writeback cache, so every write()
# reaches the server before it returns (what failing every write() synchronously at the quota would
# cost, instead of failing the next one after a refused WRITE).
VARIANT_OPTS = {"sandbox-unionfs+quota": ",quota_bytes=1t,quota_inodes=1000000000",
                "sandbox-unionfs+sync": ",quota_bytes=1t,quota_inodes=1000000000,writeback=0"}
WORKLOADS = ("untar", "stat", "readdir", "seqread", "seqwrite", "randread", "copyup", "smallfiles", "chownr",
             "chmodcopyup", "sandbox")
# Workloads that also run each implementation that has it with metacopy=on (kernel overlayfs and
# sandbox-unionfs); their "_mc" rows show those, in the same columns.
METACOPY = {"kernel": "metacopy=on,redirect_dir=on", "sandbox-unionfs": "metacopy=on"}

# (key, workload, row label, unit, lower_is_better, format)
METRICS = [
    ("untar", "untar", "untar {tar_files} small files (tar exits)", "s", True, "{:.2f}"),
    ("untar_sync", "untar", "untar {tar_files} small files + syncfs", "s", True, "{:.2f}"),
    ("stat_cold", "stat", "lstat all {tar_entries} entries, cold", "s", True, "{:.3f}"),
    ("stat_warm", "stat", "lstat all {tar_entries} entries, warm", "s", True, "{:.3f}"),
    ("readdir_cold", "readdir", "readdir of a {rd_total}-entry merged dir, cold", "ms", True, "{:.1f}"),
    ("readdir_warm", "readdir", "readdir of a {rd_total}-entry merged dir, warm", "ms", True, "{:.1f}"),
    ("seqread_cold", "seqread", "sequential read {big_h}, cold", "MB/s", False, "{:.0f}"),
    ("seqread_warm", "seqread", "sequential read {big_h}, warm", "MB/s", False, "{:.0f}"),
    ("seqwrite", "seqwrite", "sequential write {big_h} + fsync", "MB/s", False, "{:.0f}"),
    ("randread_1", "randread", "random 4k read, 1 job, psync", "kIOPS", False, "{:.1f}"),
    ("randread_2", "randread", "random 4k read, 2 jobs, psync", "kIOPS", False, "{:.1f}"),
    ("copyup", "copyup", "copy-up of a {cu_h} file (append 1 byte)", "ms", True, "{:.1f}"),
    ("smallfiles", "smallfiles", "create+write+unlink {sf_files} small files", "files/s", False, "{:.0f}"),
    ("chownr", "chownr", "chown -R of a {tar_files}-file lower tree", "s", True, "{:.2f}"),
    ("chownr_mc", "chownr", "chown -R of a {tar_files}-file lower tree, metacopy=on", "s", True, "{:.2f}"),
    ("chownr_upper", "chownr", "upper disk use after that chown -R", "MiB", True, "{:.1f}"),
    ("chownr_upper_mc", "chownr", "upper disk use after that chown -R, metacopy=on", "MiB", True, "{:.1f}"),
    ("chmodcu", "chmodcopyup", "copy-up of a {cu_h} file by chmod", "ms", True, "{:.1f}"),
    ("chmodcu_mc", "chmodcopyup", "copy-up of a {cu_h} file by chmod, metacopy=on", "ms", True, "{:.1f}"),
]

# The sandbox's view (workload "sandbox"): whole runs of a sandbox, each with its defaults.
SANDBOXES = ("sandbox-run", "bwrap", "podman")
SANDBOX_LABEL = {"sandbox-run": "sandbox-run (sandbox-unionfs)", "bwrap": "bwrap (root on a tmpfs)",
                 "podman": "podman --runtime runc (kernel overlayfs)"}
SANDBOX_METRICS = [
    ("sbx_true", "start and end a sandbox running `true`", "s", "{:.3f}"),
    ("sbx_untar", "`tar -x` of {tar_files} files into /", "s", "{:.2f}"),
    ("sbx_pip", "pip-style install: {pip_files} small files in {pip_pkgs} packages", "s", "{:.2f}"),
]
# What a pip install does to site-packages, roughly: per package a directory of small modules written
# one by one, a dist-info directory with METADATA and RECORD, the whole first built under a temporary
# name and renamed into place.
PIP_SCRIPT = r"""
import os, sys
root, pkgs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root, exist_ok=True)
payload = bytes(range(256)) * 8
for p in range(pkgs):
    tmp = os.path.join(root, f".tmp-pkg{p}")
    os.mkdir(tmp)
    os.mkdir(os.path.join(tmp, "sub"))
    record = []
    for f in range(files):
        rel = os.path.join("sub" if f % 3 == 0 else "", f"mod{f}.py")
        with open(os.path.join(tmp, rel), "wb") as fh:
            fh.write(payload[: 300 + (f * 97) % 1700])
        record.append(rel)
    os.rename(tmp, os.path.join(root, f"pkg{p}"))
    info = os.path.join(root, f"pkg{p}-1.0.dist-info")
    os.mkdir(info)
    for name, data in (("METADATA", "Name: pkg\n"), ("RECORD", "\n".join(record))):
        with open(os.path.join(info, name), "w") as fh:
            fh.write(data)
"""

SIZES_FULL = dict(
    tar_top=20, tar_sub=50, tar_files_per_dir=20, tar_max_size=8 * 1024,
    rd_l2=6000, rd_l1=4000, rd_l1_wh=500, rd_up=1000, rd_up_wh=500,
    big=1 * GiB, cu=256 * MiB, sf_files=10000, sf_size=1024, fio_runtime=10, reps=3,
    pip_pkgs=200, pip_files=50,
)
SIZES_QUICK = dict(
    tar_top=10, tar_sub=10, tar_files_per_dir=20, tar_max_size=8 * 1024,
    rd_l2=600, rd_l1=400, rd_l1_wh=50, rd_up=100, rd_up_wh=50,
    big=64 * MiB, cu=16 * MiB, sf_files=1000, sf_size=1024, fio_runtime=1, reps=1,
    pip_pkgs=20, pip_files=50,
)

_libc = ctypes.CDLL(None, use_errno=True)


def log(msg):
        print(msg, file=sys.stderr, flush=True)


def human(n):
        return f"{n // GiB} GiB" if n >= GiB else f"{n // MiB} MiB"


def syncfs(path):
        """syncfs(2) on the file system holding path."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
                if _libc.syncfs(fd) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, f"syncfs({path}): {os.strerror(e)}")
        finally:
                os.close(fd)


def drop_file_cache(path):
        """Drop one file's clean pages from the page cache (not a global drop_caches)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
                os.close(fd)


def resident_bytes(path):
        """Bytes of path in the page cache, via util-linux fincore; None if unavailable."""
        try:
                r = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                                   capture_output=True, text=True, timeout=30)
                return int(r.stdout.split()[0]) if r.returncode == 0 else None
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return None


def read_all(path, bufsize=MiB):
        """Read a file sequentially with read(2) of bufsize; return the byte count."""
        buf = bytearray(bufsize)
        total = 0
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
                while True:
                        n = os.readv(fd, [buf])
                        if n == 0:
                                return total
                        total += n
        finally:
                os.close(fd)


def write_file(path, size, block):
        """Write size bytes (multiple of len(block)) with write(2) of len(block), fsync, close."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
                left = size
                while left > 0:
                        n = os.write(fd, block)
                        if n != len(block):
                                raise RuntimeError(f"short write to {path}: {n}")
                        left -= n
                os.fsync(fd)
        finally:
                os.close(fd)


def mountinfo():
        """List of (mountpoint, fstype, mount options + super options) from /proc/self/mountinfo."""
        out = []
        with open("/proc/self/mountinfo") as f:
                for line in f:
                        left, right = line.split(" - ", 1)
                        lf, rf = left.split(), right.split()
                        mp = lf[4].replace("\\040", " ")
                        out.append((mp, rf[0], lf[5] + " | " + (rf[2] if len(rf) > 2 else "")))
        return out


def is_mounted(path):
        return any(mp == path for mp, _, _ in mountinfo())


def proc_alive(pid):
        """True while pid exists and is not a zombie."""
        try:
                with open(f"/proc/{pid}/stat") as f:
                        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError, IndexError):
                return False


def find_daemon(binary, mnt):
        """pid of the daemonized FUSE server we started for mnt (exe == binary, mnt in argv)."""
        want = os.path.realpath(binary)
        for d in os.listdir("/proc"):
                if not d.isdigit():
                        continue
                try:
                        if os.path.realpath(f"/proc/{d}/exe") != want:
                                continue
                        with open(f"/proc/{d}/cmdline", "rb") as f:
                                argv = f.read().split(b"\0")
                except OSError:
                        continue
                if os.fsencode(mnt) in argv:
                        return int(d)
        return None


class Stack:
        def __init__(self, impl, root, lowers):
                self.impl = impl
                self.root = root
                self.lowers = lowers
                self.upper = os.path.join(root, "upper")
                self.work = os.path.join(root, "work")
                self.mnt = os.path.join(root, "mnt")
                self.pid = None
                self.mounted = False

        def p(self, *parts):
                return os.path.join(self.mnt, *parts)


class Bench:
        def __init__(self, args):
                self.args = args
                self.sz = dict(SIZES_QUICK if args.quick else SIZES_FULL)
                if args.reps:
                        self.sz["reps"] = args.reps
                self.binary = {"fuse-overlayfs": shutil.which("fuse-overlayfs") or "/usr/bin/fuse-overlayfs",
                               "sandbox-unionfs": args.binary, "sandbox-unionfs+quota": args.binary,
                               "sandbox-unionfs+sync": args.binary}
                self.impls = args.impls
                self.workloads = args.only
                self.tmp = None            # the mktemp dir on the root fs
                self.base = None           # where data and stacks live: tmp itself or the loop ext4 in it
                self.loopdev = None
                self.binary_desc = None
                self.stacks = []
                self.nstack = 0
                self.mount_opts = {}
                self.results = {}          # metric -> impl -> [values]
                self.sbx_results = {}      # sandbox metric -> sandbox kind -> [values]
                self.notes = []
                s = self.sz
                self.tar_dirs = s["tar_top"] * s["tar_sub"]
                self.tar_files = self.tar_dirs * s["tar_files_per_dir"]
                self.rd_total = s["rd_l2"] - s["rd_l1_wh"] + s["rd_l1"] - s["rd_up_wh"] + s["rd_up"]

        # ---------------------------------------------------------------- mounts

        def mount(self, impl, lowers, upper_template=None, extra=None):
                """Mount lowers (top first) with a fresh upper/work dir (and EXTRA options); return the Stack."""
                self.nstack += 1
                st = Stack(impl, os.path.join(self.base, "s", f"{self.nstack:04d}-{impl}"), lowers)
                os.makedirs(st.root)
                self.stacks.append(st)
                if upper_template:
                        subprocess.run(["cp", "-a", upper_template, st.upper], check=True)
                else:
                        os.mkdir(st.upper)
                os.mkdir(st.work)
                os.mkdir(st.mnt)
                opts = f"lowerdir={':'.join(lowers)},upperdir={st.upper},workdir={st.work}" + (f",{extra}" if extra else "")
                logf = os.path.join(st.root, "mount.log")
                if impl == "kernel":
                        cmd = ["mount", "-t", "overlay", "overlay", "-o", opts, st.mnt]
                else:
                        # Both FUSE servers are started the same way: daemonized, with their defaults.
                        cmd = [self.binary[impl], "-o", opts + VARIANT_OPTS.get(impl, ""), st.mnt]
                with open(logf, "wb") as lf:
                        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf, timeout=60)
                if impl != "kernel":
                        st.pid = find_daemon(self.binary[impl], st.mnt)
                if r.returncode != 0 or not is_mounted(st.mnt):
                        with open(logf, errors="replace") as lf:
                                out = lf.read().strip()
                        raise RuntimeError(f"mounting {impl} failed (rc {r.returncode}): {' '.join(cmd)}\n{out}")
                st.mounted = True
                if impl not in self.mount_opts and not extra:
                        for mp, fstype, o in mountinfo():
                                if mp == st.mnt:
                                        self.mount_opts[impl] = f"{fstype}: {o}"
                return st

        def umount(self, st, remove=True):
                if st.mounted:
                        ok = False
                        for _ in range(50):
                                r = subprocess.run(["umount", st.mnt], capture_output=True, text=True)
                                if r.returncode == 0:
                                        ok = True
                                        break
                                time.sleep(0.1)
                        if not ok:
                                log(f"warning: umount {st.mnt} keeps failing ({r.stderr.strip()}), detaching lazily")
                                subprocess.run(["umount", "-l", st.mnt])
                        st.mounted = is_mounted(st.mnt)
                if st.pid:
                        # The daemon exits on its own once unmounted; wait so it cannot disturb the next
                        # measurement. Only if it hangs, kill it (by pid: it is ours).
                        deadline = time.monotonic() + 10
                        while proc_alive(st.pid) and time.monotonic() < deadline:
                                time.sleep(0.02)
                        if proc_alive(st.pid):
                                log(f"warning: {st.impl} daemon pid {st.pid} did not exit after umount, killing it")
                                for sig in (signal.SIGTERM, signal.SIGKILL):
                                        try:
                                                os.kill(st.pid, sig)
                                        except ProcessLookupError:
                                                break
                                        time.sleep(1)
                        st.pid = None
                if remove and not st.mounted:
                        subprocess.run(["rm", "-rf", "--one-file-system", st.root], check=True)
                        self.stacks.remove(st)

        def cleanup(self):
                for st in list(self.stacks):
                        try:
                                self.umount(st, remove=False)
                        except Exception as e:  # keep cleaning up the rest
                                log(f"warning: cleanup of {st.mnt}: {e}")
                if self.base and self.base != self.tmp and is_mounted(self.base):
                        for _ in range(50):
                                if subprocess.run(["umount", self.base]).returncode == 0:
                                        break
                                time.sleep(0.2)
                if self.loopdev:
                        for _ in range(50):
                                if subprocess.run(["losetup", "-d", self.loopdev]).returncode == 0:
                                        self.loopdev = None
                                        break
                                time.sleep(0.2)
                        if self.loopdev:
                                log(f"error: could not detach {self.loopdev}")
                if self.tmp and os.path.isdir(self.tmp):
                        still = [mp for mp, _, _ in mountinfo() if mp.startswith(self.tmp + "/")]
                        if still:
                                log(f"error: still mounted, not removing {self.tmp}: {still}")
                                return
                        subprocess.run(["rm", "-rf", "--one-file-system", self.tmp])

        # ---------------------------------------------------------------- data set-up

        def d(self, *parts):
                return os.path.join(self.base, "data", *parts)

        def setup(self):
                s = self.sz
                img_size = (6 if not self.args.quick else 1) * GiB
                need = 4 * GiB if not self.args.quick else 512 * MiB
                if self.args.fs == "loop":
                        need = img_size + GiB
                parent = self.args.tmpdir
                vfs = os.statvfs(parent)
                free = vfs.f_bavail * vfs.f_frsize
                if free < need:
                        raise RuntimeError(f"{parent}: {free / GiB:.1f} GiB free, need {need / GiB:.1f} GiB")
                self.tmp = tempfile.mkdtemp(prefix="unionfs-bench.", dir=parent)
                fstype = [t for mp, t, _ in sorted(mountinfo(), key=lambda m: len(m[0]))
                          if self.tmp.startswith(mp.rstrip("/") + "/")]
                self.data_fs = fstype[-1] if fstype else "?"
                if self.args.fs == "loop":
                        # A journaled ext4 of our own, on a loop device (direct I/O: no second page cache of
                        # the image) backed by a sparse file in the mktemp dir. See README: this host's
                        # root ext4 has no journal, so its inode allocator scans recently deleted inodes
                        # and creates swing 10x with our own and other users' deletions.
                        img = os.path.join(self.tmp, "ext4.img")
                        with open(img, "wb") as f:
                                f.truncate(img_size)
                        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                                        img], check=True)
                        r = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", img],
                                           capture_output=True, text=True, check=True)
                        self.loopdev = r.stdout.strip()
                        self.base = os.path.join(self.tmp, "fs")
                        os.mkdir(self.base)
                        subprocess.run(["mount", "-t", "ext4", self.loopdev, self.base], check=True)
                        self.data_fs = (f"ext4 with journal on {self.loopdev} (direct-io) backed by a sparse "
                                        f"{human(img_size)} image on the root fs ({self.data_fs})")
                else:
                        has_journal = bool(os.listdir("/proc/fs/jbd2")) if os.path.isdir("/proc/fs/jbd2") else None
                        self.base = self.tmp
                        self.data_fs = f"the root fs ({self.data_fs}" + (
                                ", no journal on this host)" if has_journal is False else ")")
                os.makedirs(self.d())
                os.makedirs(self.d("empty"))
                if any(i.startswith("sandbox-unionfs") for i in self.impls):
                        # Run a private copy, so a rebuild during the run cannot mix two versions.
                        src = self.binary["sandbox-unionfs"]
                        with open(src, "rb") as f:
                                digest = hashlib.sha256(f.read()).hexdigest()[:12]
                        mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(src).st_mtime))
                        os.makedirs(os.path.join(self.tmp, "bin"))
                        dst = os.path.join(self.tmp, "bin", os.path.basename(src))
                        shutil.copy2(src, dst)
                        for v in VARIANT_OPTS:
                                self.binary[v] = dst
                        self.binary["sandbox-unionfs"] = dst
                        self.binary_desc = f"`{src}` (copied at start; sha256 {digest}…, built {mtime})"
                log(f"data dir {self.base}: {self.data_fs}; {free / GiB:.0f} GiB free on {parent}")
                w = set(self.workloads)
                t0 = time.monotonic()
                if w & {"untar", "stat", "chownr", "sandbox"}:
                        self.make_tree()
                if "readdir" in w:
                        self.make_readdir_layers()
                block = random.Random(1).randbytes(MiB)
                if w & {"seqread", "randread"}:
                        os.makedirs(self.d("big"))
                        write_file(self.d("big", "big"), s["big"], block)
                if w & {"copyup", "chmodcopyup"}:
                        os.makedirs(self.d("cu"))
                        write_file(self.d("cu", "cu"), s["cu"], block)
                if "sandbox" in w:
                        self.setup_sandboxes()
                self.block = block
                syncfs(self.base)
                log(f"set-up took {time.monotonic() - t0:.1f} s")

        def make_tree(self):
                """Deterministic tarball of tar_files small files (0..tar_max_size bytes) in tar_dirs
                leaf dirs (two levels), and the same tree extracted into a lower for the stat pass."""
                s = self.sz
                rng = random.Random(20240601)
                self.tarball = self.d("tree.tar")
                self.tree_paths = []
                mtime = 1700000000
                with tarfile.open(self.tarball, "w", format=tarfile.GNU_FORMAT) as tf:
                        def add(name, typ, data=b""):
                                ti = tarfile.TarInfo(name)
                                ti.type = typ
                                ti.mode = 0o755 if typ == tarfile.DIRTYPE else 0o644
                                ti.uid = ti.gid = 0
                                ti.uname = ti.gname = "root"
                                ti.mtime = mtime
                                ti.size = len(data)
                                tf.addfile(ti, None if typ == tarfile.DIRTYPE else io.BytesIO(data))
                                self.tree_paths.append(name)
                        add("t", tarfile.DIRTYPE)
                        for a in range(s["tar_top"]):
                                top = f"t/d{a:02d}"
                                add(top, tarfile.DIRTYPE)
                                for b in range(s["tar_sub"]):
                                        sub = f"{top}/s{b:03d}"
                                        add(sub, tarfile.DIRTYPE)
                                        for c in range(s["tar_files_per_dir"]):
                                                size = rng.randint(0, s["tar_max_size"])
                                                add(f"{sub}/f{c:03d}.dat", tarfile.REGTYPE, rng.randbytes(size))
                os.makedirs(self.d("tree"))
                subprocess.run(["tar", "-xf", self.tarball, "-C", self.d("tree")], check=True)
                self.tree_files = self.tar_files

        def make_readdir_layers(self):
                """Directory d merged from lower1 (top), lower2 and an upper template:
                lower2: rd_l2 names b*; lower1: rd_l1 names a* + whiteouts for the first rd_l1_wh b*;
                upper: rd_up names c* + whiteouts for the first rd_up_wh a*. Whiteouts are char 0/0."""
                s = self.sz
                l1, l2, up = self.d("rd", "l1", "d"), self.d("rd", "l2", "d"), self.d("rd", "up", "d")
                for p in (l1, l2, up):
                        os.makedirs(p)

                def touch(p):
                        os.close(os.open(p, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))

                def whiteout(p):
                        os.mknod(p, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                expect = set()
                for i in range(s["rd_l2"]):
                        touch(f"{l2}/b{i:05d}")
                        if i >= s["rd_l1_wh"]:
                                expect.add(f"b{i:05d}")
                for i in range(s["rd_l1"]):
                        touch(f"{l1}/a{i:05d}")
                        if i >= s["rd_up_wh"]:
                                expect.add(f"a{i:05d}")
                for i in range(s["rd_l1_wh"]):
                        whiteout(f"{l1}/b{i:05d}")
                for i in range(s["rd_up"]):
                        touch(f"{up}/c{i:05d}")
                        expect.add(f"c{i:05d}")
                for i in range(s["rd_up_wh"]):
                        whiteout(f"{up}/a{i:05d}")
                assert len(expect) == self.rd_total
                self.rd_expect = expect

        # ---------------------------------------------------------------- workloads (one rep each)

        def w_untar(self, impl):
                st = self.mount(impl, [self.d("empty")])
                try:
                        syncfs(self.base)  # start from a clean fs so the timed sync is ours only
                        t0 = time.perf_counter()
                        subprocess.run(["tar", "-xf", self.tarball, "-C", st.mnt], check=True)
                        t1 = time.perf_counter()
                        syncfs(st.mnt)
                        syncfs(st.upper)
                        t2 = time.perf_counter()
                        # spot check: sizes of every 97th file match the lower copy
                        for p in self.tree_paths[::97]:
                                a, b = os.lstat(st.p(p)), os.lstat(self.d("tree", p))
                                if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or (
                                                stat.S_ISREG(a.st_mode) and a.st_size != b.st_size):
                                        raise RuntimeError(f"{impl}: untar result differs at {p}")
                finally:
                        self.umount(st)
                return {"untar": t1 - t0, "untar_sync": t2 - t0}

        def warm_lower_tree(self):
                for p in self.tree_paths:
                        os.lstat(self.d("tree", p))

        def lstat_all(self, st):
                nreg = 0
                for p in self.tree_paths:
                        if stat.S_ISREG(os.lstat(os.path.join(st.mnt, p)).st_mode):
                                nreg += 1
                return nreg

        def w_stat(self, impl):
                self.warm_lower_tree()  # the lower's ext4 dentries/inodes are hot: measure the union
                st = self.mount(impl, [self.d("tree")])
                try:
                        t0 = time.perf_counter()
                        n1 = self.lstat_all(st)
                        t1 = time.perf_counter()
                        n2 = self.lstat_all(st)
                        t2 = time.perf_counter()
                        if n1 != self.tree_files or n2 != self.tree_files:
                                raise RuntimeError(f"{impl}: {n1}/{n2} regular files, want {self.tree_files}")
                finally:
                        self.umount(st)
                return {"stat_cold": t1 - t0, "stat_warm": t2 - t1}

        @staticmethod
        def count_dir(path):
                n = 0
                with os.scandir(path) as it:
                        for _ in it:
                                n += 1
                return n

        def w_readdir(self, impl):
                l1, l2 = self.d("rd", "l1"), self.d("rd", "l2")
                for p in (l1, l2, self.d("rd", "up")):
                        self.count_dir(os.path.join(p, "d"))
                st = self.mount(impl, [l1, l2], upper_template=self.d("rd", "up"))
                try:
                        d = st.p("d")
                        t0 = time.perf_counter()
                        n1 = self.count_dir(d)
                        t1 = time.perf_counter()
                        n2 = self.count_dir(d)
                        t2 = time.perf_counter()
                        if n1 != self.rd_total or n2 != self.rd_total:
                                raise RuntimeError(f"{impl}: readdir counted {n1}/{n2} entries, want {self.rd_total}")
                        names = set(os.listdir(d))
                        if names != self.rd_expect:
                                raise RuntimeError(f"{impl}: merged names differ: extra {sorted(names - self.rd_expect)[:5]}"
                                                   f" missing {sorted(self.rd_expect - names)[:5]}")
                finally:
                        self.umount(st)
                return {"readdir_cold": (t1 - t0) * 1e3, "readdir_warm": (t2 - t1) * 1e3}

        def w_seqread(self, impl):
                size = self.sz["big"]
                lower = self.d("big", "big")
                st = self.mount(impl, [self.d("big")])
                try:
                        drop_file_cache(lower)
                        res = resident_bytes(lower)
                        if res is not None and res > size // 100:
                                self.note(f"seqread cold ({impl}): {res / MiB:.0f} MiB of the lower file stayed cached")
                        t0 = time.perf_counter()
                        n1 = read_all(st.p("big"))
                        t1 = time.perf_counter()
                        n2 = read_all(st.p("big"))
                        t2 = time.perf_counter()
                        if n1 != size or n2 != size:
                                raise RuntimeError(f"{impl}: read {n1}/{n2} bytes, want {size}")
                finally:
                        self.umount(st)
                return {"seqread_cold": size / 1e6 / (t1 - t0), "seqread_warm": size / 1e6 / (t2 - t1)}

        def w_seqwrite(self, impl):
                size = self.sz["big"]
                st = self.mount(impl, [self.d("empty")])
                try:
                        syncfs(self.base)
                        t0 = time.perf_counter()
                        write_file(st.p("w"), size, self.block)
                        t1 = time.perf_counter()
                        if os.stat(st.p("w")).st_size != size:
                                raise RuntimeError(f"{impl}: written file has the wrong size")
                        os.unlink(st.p("w"))
                finally:
                        self.umount(st)
                return {"seqwrite": size / 1e6 / (t1 - t0)}

        def fio(self, path, jobs):
                cmd = ["fio", "--name=randread", f"--filename={path}", "--rw=randread", "--bs=4k",
                       "--ioengine=psync", f"--numjobs={jobs}", "--time_based",
                       f"--runtime={self.sz['fio_runtime']}", "--group_reporting", "--invalidate=0",
                       "--norandommap", "--output-format=json"]
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=self.sz["fio_runtime"] + 120)
                if r.returncode != 0:
                        raise RuntimeError(f"fio failed: {r.stderr.strip()}")
                out = json.loads(r.stdout[r.stdout.index("{"):])
                job = out["jobs"][0]
                if job.get("error"):
                        raise RuntimeError(f"fio job error {job['error']}")
                return job["read"]["iops"] / 1e3

        def w_randread(self, impl):
                st = self.mount(impl, [self.d("big")])
                try:
                        read_all(st.p("big"))  # warm: random reads are measured from cache
                        r1 = self.fio(st.p("big"), 1)
                        r2 = self.fio(st.p("big"), 2)
                        if os.path.lexists(os.path.join(st.upper, "big")):
                                raise RuntimeError(f"{impl}: fio caused a copy-up of the lower file")
                finally:
                        self.umount(st)
                return {"randread_1": r1, "randread_2": r2}

        def w_copyup(self, impl):
                size = self.sz["cu"]
                read_all(self.d("cu", "cu"))  # lower file cached: measure the copy, not the disk
                st = self.mount(impl, [self.d("cu")])
                upper_file = os.path.join(st.upper, "cu")
                try:
                        syncfs(self.base)
                        t0 = time.perf_counter()
                        fd = os.open(st.p("cu"), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                        try:
                                os.write(fd, b"x")
                        finally:
                                os.close(fd)
                        t1 = time.perf_counter()
                        if os.stat(st.p("cu")).st_size != size + 1:
                                raise RuntimeError(f"{impl}: size after append is wrong")
                        self.umount(st, remove=False)
                        if os.path.getsize(upper_file) != size + 1:
                                raise RuntimeError(f"{impl}: upper copy has size {os.path.getsize(upper_file)}")
                        with open(upper_file, "rb") as f:
                                f.seek(size - 4)
                                if f.read() != self.block[-4:] + b"x":  # size is a multiple of MiB
                                        raise RuntimeError(f"{impl}: upper copy has the wrong tail")
                finally:
                        self.umount(st)
                return {"copyup": (t1 - t0) * 1e3}

        def w_smallfiles(self, impl):
                n, payload = self.sz["sf_files"], self.block[: self.sz["sf_size"]]
                st = self.mount(impl, [self.d("empty")])
                try:
                        d = st.p("sf")
                        os.mkdir(d)
                        names = [f"{d}/f{i:05d}" for i in range(n)]
                        t0 = time.perf_counter()
                        for p in names:
                                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                                os.write(fd, payload)
                                os.close(fd)
                        for p in names:
                                os.unlink(p)
                        t1 = time.perf_counter()
                        if os.listdir(d):
                                raise RuntimeError(f"{impl}: directory not empty after unlinking")
                finally:
                        self.umount(st)
                return {"smallfiles": n / (t1 - t0)}

        @staticmethod
        def disk_use(root):
                return sum(os.lstat(os.path.join(dp, n)).st_blocks * 512
                           for dp, dns, fns in os.walk(root) for n in fns + dns) / MiB

        def variants(self, impl):
                """(metric suffix, extra mount options): the defaults, and metacopy=on where there is one."""
                return [("", None)] + ([("_mc", METACOPY[impl])] if impl in METACOPY else [])

        def w_chownr(self, impl):
                self.warm_lower_tree()
                res = {}
                for suffix, extra in self.variants(impl):
                        st = self.mount(impl, [self.d("tree")], extra=extra)
                        try:
                                t0 = time.perf_counter()
                                subprocess.run(["chown", "-R", "1234:1234", st.p("t")], check=True)
                                t1 = time.perf_counter()
                                probe = st.p(self.tree_paths[-1])
                                if os.lstat(probe).st_uid != 1234:
                                        raise RuntimeError(f"{impl}: chown -R did not change {probe}")
                                syncfs(st.mnt)
                                res["chownr" + suffix] = t1 - t0
                                res["chownr_upper" + suffix] = self.disk_use(st.upper)
                        finally:
                                self.umount(st)
                return res

        def w_chmodcopyup(self, impl):
                size = self.sz["cu"]
                read_all(self.d("cu", "cu"))  # lower file cached: measure the copy, not the disk
                res = {}
                for suffix, extra in self.variants(impl):
                        st = self.mount(impl, [self.d("cu")], extra=extra)
                        try:
                                syncfs(self.base)
                                t0 = time.perf_counter()
                                os.chmod(st.p("cu"), 0o600)
                                t1 = time.perf_counter()
                                if os.stat(st.p("cu")).st_size != size or \
                                                not os.path.lexists(os.path.join(st.upper, "cu")):
                                        raise RuntimeError(f"{impl}: no copy-up of the right size after chmod")
                                res["chmodcu" + suffix] = (t1 - t0) * 1e3
                        finally:
                                self.umount(st)
                return res

        # ---------------------------------------------------------------- the sandbox's view

        def setup_sandboxes(self):
                """A private state dir for sandbox-run, and for podman a private storage, run root and
                containers.conf (limits this host allows: root here lacks CAP_SYS_RESOURCE) plus a root
                directory made of the host's /usr, all on the benchmark's file system."""
                self.sbx_state = os.path.join(self.base, "sandbox-state")
                os.makedirs(self.sbx_state)
                os.chmod(self.tmp, 0o755)    # mkdtemp's 0700 would keep the sandbox's own uid out of its root
                self.sbx = {}
                if shutil.which("bwrap"):
                        self.sbx["bwrap"] = True
                else:
                        self.note("bwrap is not installed: its column is empty")
                if os.access(self.args.sandbox_run, os.X_OK):
                        self.sbx["sandbox-run"] = True
                else:
                        self.note(f"no sandbox-run at {self.args.sandbox_run} (set SANDBOX_RUN)")
                pod = os.path.join(self.base, "podman")
                root = os.path.join(pod, "rootfs")
                for d in ("etc", "tmp", "root", "data", "storage", "run"):
                        os.makedirs(os.path.join(root if d in ("etc", "tmp", "root", "data") else pod, d))
                for ln in ("bin", "sbin", "lib", "lib64"):
                        os.symlink(f"usr/{ln}", os.path.join(root, ln))
                with open(os.path.join(root, "etc", "passwd"), "w") as f:
                        f.write("root:x:0:0:root:/root:/bin/sh\n")
                with open(os.path.join(pod, "containers.conf"), "w") as f:
                        f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n')
                self.pod = pod
                why = None
                if not shutil.which("podman"):
                        why = "podman is not installed"
                elif not shutil.which("runc"):
                        why = "runc is not installed (podman's crun refuses this hybrid-cgroup host)"
                else:
                        r = subprocess.run(self.podman_argv(["true"]), capture_output=True, text=True, timeout=120,
                                           env=self.podman_env())
                        if r.returncode != 0:
                                why = f"podman cannot run a container here: {r.stderr.strip()[-300:]}"
                if why:
                        self.note(why + ": its column is empty")
                else:
                        self.sbx["podman"] = True

        def podman_env(self):
                return dict(os.environ, CONTAINERS_CONF=os.path.join(self.pod, "containers.conf"))

        def podman_argv(self, cmd):
                # --rootfs DIR:O: the directory is the lower of a kernel overlayfs whose upper podman
                # keeps in its storage and removes with the container, like an image layer.
                return ["podman", "--root", os.path.join(self.pod, "storage"), "--runroot",
                        os.path.join(self.pod, "run"), "--runtime", "runc", "run", "--rm", "--network", "none",
                        "-v", "/usr:/usr:ro", "-v", f"{self.d()}:/data:ro", "--rootfs",
                        os.path.join(self.pod, "rootfs") + ":O"] + cmd

        def sandbox_argv(self, kind, cmd):
                if kind == "sandbox-run":
                        return [self.args.sandbox_run, "--bind", f"{self.d()}:/data:ro", "--"] + cmd
                if kind == "bwrap":
                        return ["bwrap", "--tmpfs", "/", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
                                "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib", "--symlink",
                                "usr/lib64", "/lib64", "--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
                                "--tmpfs", "/tmp", "--ro-bind", self.d(), "/data", "--unshare-all",
                                "--die-with-parent", "--"] + cmd
                return self.podman_argv(cmd)

        def sandbox_run_cmd(self, kind, cmd):
                # sandbox-run's throw-away upper is in its data directory: on the data file system too
                env = self.podman_env() if kind == "podman" else dict(os.environ, SANDBOX_STATE_DIR=self.sbx_state,
                                                                     SANDBOX_DATA_DIR=self.sbx_state + "-data")
                t0 = time.perf_counter()
                r = subprocess.run(self.sandbox_argv(kind, cmd), capture_output=True, text=True, timeout=600, env=env)
                t1 = time.perf_counter()
                if r.returncode != 0:
                        raise RuntimeError(f"{kind}: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
                return t1 - t0, r.stdout

        def w_sandbox(self, impl):
                """Not per union implementation: runs once per rep (for the first implementation only),
                each sandbox in turn."""
                if impl != self.impls[0]:
                        return {}
                s = self.sz
                n_pip = s["pip_pkgs"] * s["pip_files"]
                for kind in [k for k in SANDBOXES if k in self.sbx]:
                        res = {}
                        res["sbx_true"], _ = self.sandbox_run_cmd(kind, ["true"])
                        res["sbx_untar"], out = self.sandbox_run_cmd(
                                kind, ["sh", "-c", "tar -xf /data/tree.tar -C / && find /t -type f | wc -l"])
                        if int(out.split()[-1]) != self.tar_files:
                                raise RuntimeError(f"{kind}: tar -x left {out.strip()} files, want {self.tar_files}")
                        res["sbx_pip"], out = self.sandbox_run_cmd(
                                kind, ["sh", "-c", 'python3 -c "$0" /site-packages "$1" "$2" && '
                                       'find /site-packages -type f | wc -l', PIP_SCRIPT, str(s["pip_pkgs"]),
                                       str(s["pip_files"])])
                        if int(out.split()[-1]) != n_pip + 2 * s["pip_pkgs"]:
                                raise RuntimeError(f"{kind}: the pip-style run left {out.strip()} files")
                        for k, v in res.items():
                                self.sbx_results.setdefault(k, {}).setdefault(kind, []).append(v)
                        log(f"[sandbox] {SANDBOX_LABEL[kind]}: " + ", ".join(f"{k} {v:.3f} s" for k, v in res.items()))
                return {}

        # ---------------------------------------------------------------- driver and report

        def note(self, msg):
                if msg not in self.notes:
                        self.notes.append(msg)
                        log("note: " + msg)

        def run(self):
                self.setup()
                reps = self.sz["reps"]
                t_start = time.monotonic()
                for w in self.workloads:
                        fn = getattr(self, "w_" + w)
                        tw = time.monotonic()
                        for rep in range(reps):
                                order = self.impls[rep % len(self.impls):] + self.impls[: rep % len(self.impls)]
                                for impl in order:
                                        res = fn(impl)
                                        for k, v in res.items():
                                                self.results.setdefault(k, {}).setdefault(impl, []).append(v)
                                        shown = ", ".join(f"{k} {self.fmt(k, v)}" for k, v in res.items())
                                        log(f"[{w}] rep {rep + 1}/{reps} {LABEL[impl]}: {shown}")
                        log(f"[{w}] done in {time.monotonic() - tw:.0f} s")
                self.elapsed = time.monotonic() - t_start

        def fmt(self, key, v):
                m = next(m for m in METRICS if m[0] == key)
                return m[5].format(v) + " " + m[3]

        def report(self):
                s = self.sz
                subst = dict(tar_files=f"{self.tar_files // 1000}k" if self.tar_files >= 1000 else self.tar_files,
                             tar_entries=f"{(self.tar_files + self.tar_dirs + 1 + s['tar_top']) / 1000:.0f}k",
                             rd_total=f"{self.rd_total // 1000}k" if self.rd_total >= 1000 else self.rd_total,
                             big_h=human(s["big"]), cu_h=human(s["cu"]),
                             sf_files=f"{s['sf_files'] // 1000}k" if s["sf_files"] >= 1000 else s["sf_files"],
                             pip_files=s["pip_pkgs"] * s["pip_files"], pip_pkgs=s["pip_pkgs"])
                ours = "sandbox-unionfs"
                L = []
                L.append("## unionfs benchmark" + (" (--quick: small sizes, smoke check only)" if self.args.quick else ""))
                L.append("")
                mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                cpu = "?"
                try:
                        with open("/proc/cpuinfo") as f:
                                cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
                except (OSError, StopIteration):
                        pass
                L.append(f"- machine: nproc {os.cpu_count()}, {cpu}, {mem / GiB:.0f} GiB RAM, kernel {platform.release()}, "
                         f"data on {self.data_fs}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
                L.append("- **the machine is shared and noisy**: treat differences under ~1.5x as noise")
                L.append(f"- median of {s['reps']} rep(s), implementations interleaved per rep; "
                         f"benchmark time {self.elapsed:.0f} s")
                for impl in self.impls:
                        if impl != "kernel":
                                desc = (self.binary_desc if impl == "sandbox-unionfs" else None) or f"`{self.binary[impl]}`"
                                L.append(f"- {LABEL[impl]}: {desc} {self.version(impl)}")
                for impl in self.impls:
                        if impl in self.mount_opts:
                                L.append(f"- {LABEL[impl]} mount: `{self.mount_opts[impl]}`")
                for n in self.notes:
                        L.append(f"- note: {n}")
                L.append("")
                cols = [LABEL[i] for i in self.impls]
                have_k = ours in self.impls and "kernel" in self.impls
                have_f = ours in self.impls and "fuse-overlayfs" in self.impls
                have_q = ours in self.impls and "sandbox-unionfs+quota" in self.impls
                have_s = ours in self.impls and "sandbox-unionfs+sync" in self.impls
                ratio_cols = ((["ours/kernel"] if have_k else []) + (["ours/fuse-overlayfs"] if have_f else []) +
                              (["quota/ours"] if have_q else []) + (["sync/ours"] if have_s else []))
                if ratio_cols:
                        L.append("Ratios compare sandbox-unionfs (ours) with the others: **> 1 means ours is better** "
                                 "(faster or more throughput), < 1 means ours is worse. quota/ours and sync/ours "
                                 "compare a variant with plain sandbox-unionfs: < 1 is what the variant costs.")
                        L.append("")
                L.append("| workload | unit | " + " | ".join(cols + ratio_cols) + " |")
                L.append("|---|---|" + "---|" * (len(cols) + len(ratio_cols)))
                for key, wl, label, unit, lower_better, f in METRICS:
                        if key not in self.results:
                                continue
                        med = {i: statistics.median(v) for i, v in self.results[key].items()}
                        row = [label.format(**subst), unit] + [f.format(med[i]) if i in med else "–" for i in self.impls]

                        def ratio(other, mine=ours):
                                a, b = med.get(mine), med.get(other)
                                if not a or not b:
                                        return "–"
                                return f"{(b / a) if lower_better else (a / b):.2f}"
                        if have_k:
                                row.append(ratio("kernel"))
                        if have_f:
                                row.append(ratio("fuse-overlayfs"))
                        if have_q:
                                row.append(ratio(ours, "sandbox-unionfs+quota"))
                        if have_s:
                                row.append(ratio(ours, "sandbox-unionfs+sync"))
                        L.append("| " + " | ".join(row) + " |")
                if self.sbx_results:
                        kinds = [k for k in SANDBOXES if any(k in v for v in self.sbx_results.values())]
                        L.append("")
                        L.append("### The sandbox's view")
                        L.append("")
                        L.append("Whole runs of a sandbox with its default options: sandbox-run (throw-away upper: "
                                 "sandbox-unionfs with volatile,metacopy=on and the default disk quota), bwrap with its root on a tmpfs, podman with "
                                 "runc and a kernel overlayfs over a directory root (`--rootfs DIR:O`). Each gets the host's "
                                 "/usr read-only and the data read-only at /data. Times include starting and ending the "
                                 "sandbox; the first row is that alone. Ratios: **> 1 means sandbox-run is faster**.")
                        L.append("")
                        rcols = [f"sandbox-run vs {k}" for k in kinds if k != "sandbox-run"]
                        L.append("| workload | unit | " + " | ".join(SANDBOX_LABEL[k] for k in kinds)
                                 + (" | " + " | ".join(rcols) if rcols else "") + " |")
                        L.append("|---|---|" + "---|" * (len(kinds) + len(rcols)))
                        for key, label, unit, f in SANDBOX_METRICS:
                                if key not in self.sbx_results:
                                        continue
                                med = {k: statistics.median(v) for k, v in self.sbx_results[key].items()}
                                row = [label.format(**subst), unit] + [f.format(med[k]) if k in med else "–" for k in kinds]
                                for k in kinds:
                                        if k != "sandbox-run":
                                                a, b = med.get("sandbox-run"), med.get(k)
                                                row.append(f"{b / a:.2f}" if a and b else "–")
                                L.append("| " + " | ".join(row) + " |")
                L.append("")
                L.append("<details><summary>all samples</summary>")
                L.append("")
                for key, _, label, unit, _, f in METRICS:
                        if key not in self.results:
                                continue
                        parts = [f"{LABEL[i]} " + " ".join(f.format(x) for x in self.results[key][i])
                                 for i in self.impls if i in self.results[key]]
                        L.append(f"- {key} ({unit}): " + "; ".join(parts))
                for key, label, unit, f in SANDBOX_METRICS:
                        if key in self.sbx_results:
                                parts = [f"{k} " + " ".join(f.format(x) for x in v) for k, v in self.sbx_results[key].items()]
                                L.append(f"- {key} ({unit}): " + "; ".join(parts))
                L.append("")
                L.append("</details>")
                return "\n".join(L) + "\n"

        def version(self, impl):
                try:
                        r = subprocess.run([self.binary[impl], "--version"], capture_output=True, text=True, timeout=5)
                        lines = [l.strip() for l in (r.stdout + r.stderr).splitlines()]
                        name = os.path.basename(self.binary[impl])
                        for line in [l for l in lines if name in l] + [l for l in lines if "version" in l.lower()]:
                                return "(" + line + ")"
                except (OSError, subprocess.TimeoutExpired):
                        pass
                return ""


def parse_list(value, allowed, what):
        items = [x.strip() for x in value.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad or not items:
                raise argparse.ArgumentTypeError(f"unknown {what} {bad}; choose from {', '.join(allowed)}")
        return [x for x in allowed if x in items]  # canonical order


def main():
        ap = argparse.ArgumentParser(
                prog="unionfs-bench.sh",
                description="Benchmark sandbox-unionfs against fuse-overlayfs and kernel overlayfs.")
        ap.add_argument("--quick", action="store_true", help="small sizes, 1 rep: a smoke check in seconds")
        ap.add_argument("--only", default=",".join(WORKLOADS),
                        type=lambda v: parse_list(v, WORKLOADS, "workload"),
                        help="comma-separated workloads: " + ", ".join(WORKLOADS))
        ap.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                        type=lambda v: parse_list(v, IMPLS, "implementation"),
                        help="comma-separated implementations: " + ", ".join(IMPLS))
        ap.add_argument("--reps", type=int, default=0, help="repetitions (default 3, or 1 with --quick)")
        ap.add_argument("--out", help="also write the markdown report to this file")
        ap.add_argument("--tmpdir", default="/var/tmp", help="parent of the mktemp data dir (default /var/tmp)")
        ap.add_argument("--fs", choices=("loop", "rootfs"), default="loop",
                        help="loop (default): data on a journaled ext4 loop image inside the mktemp dir; "
                             "rootfs: data directly in the mktemp dir")
        args = ap.parse_args()
        args.binary = os.environ.get("SANDBOX_UNIONFS", os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "build", "unionfs", "sandbox-unionfs"))
        args.sandbox_run = os.environ.get("SANDBOX_RUN", os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "build", "tools", "sandbox-run"))
        if os.geteuid() != 0:
                sys.exit("unionfs-bench: must run as root")
        if any(i.startswith("sandbox-unionfs") for i in args.impls) and not os.access(args.binary, os.X_OK):
                sys.exit(f"unionfs-bench: sandbox-unionfs binary '{args.binary}' not found "
                         "(set SANDBOX_UNIONFS, or leave it out with --impls kernel,fuse-overlayfs)")

        def on_signal(signum, frame):
                raise SystemExit(128 + signum)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_signal)

        b = Bench(args)
        try:
                b.run()
                text = b.report()
        finally:
                b.cleanup()
        sys.stdout.write(text)
        if args.out:
                with open(args.out, "w") as f:
                        f.write(text)


if __name__ == "__main__":
        main()
