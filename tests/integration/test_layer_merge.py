#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-layer merge UPPER LOWER, checked against kernel overlayfs as the oracle: after the merge LOWER
equals the read-only kernel overlay of UPPER over a pristine copy of LOWER (whiteouts, opaque dirs, dirs
replacing files and back, metadata-only changes, symlinks, devices, hard links), UPPER is unchanged, a
re-run is a no-op. Crash safety: kill -9 at random instants, then after every kill every LOWER entry is
either its old or its new version, and a final re-run completes the merge. Also: --keep-whiteouts keeps
LOWER a valid middle layer, bad usage exits 2, a work dir on another file system and a redirect in
UPPER are refused before anything changes.

Needs root (trusted.* xattrs, mknod, chown, kernel overlayfs). Exit 77 = cannot run."""

import fcntl
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ovltest as ot  # noqa: E402
from unionfs_fixture import KERNEL_OVL_OPTS  # noqa: E402

T = ot.Tap()
LAYER = os.environ.get("SANDBOX_LAYER", "")
OVL_OPTS = tuple(KERNEL_OVL_OPTS.split(","))
MTIME = 1_500_000_000_123_456_789


# ---------------------------------------------------------------- helpers

def run(*args, timeout=120):
    return subprocess.run([LAYER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def merge(*args):
    return run("merge", *args)


def digest(path):
    r = run("digest", "-q", path)
    if r.returncode != 0:
        raise AssertionError(f"digest {path} failed: {r.stderr.strip()}")
    return r.stdout.strip().splitlines()[-1]


def is_marker(name):
    return name.startswith("trusted.overlay.") or name.startswith("user.overlay.")


def fingerprint(path, st, dir_meta=True):
    """What a user sees of one entry (never following symlinks). Directories: with dir_meta False only the
    type (their attributes are the documented non-atomic part of a merge)."""
    m = st.st_mode
    if stat.S_ISDIR(m) and not dir_meta:
        return ("d",)
    xs = tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False))
                      for n in os.listxattr(path, follow_symlinks=False) if not is_marker(n)))
    fp = (ot.type_char(m), stat.S_IMODE(m), st.st_uid, st.st_gid, xs, st.st_mtime_ns)
    if stat.S_ISREG(m):
        fp += (st.st_size, ot.file_digest(path))
    elif stat.S_ISLNK(m):
        fp += (os.readlink(path),)
    elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
        fp += (st.st_rdev,)
    return fp


def walk(root, dir_meta=True):
    """{relative path: fingerprint} of everything below root ('' is root itself)."""
    out = {}

    def rec(rel):
        p = os.path.join(root, rel) if rel else root
        st = os.lstat(p)
        out[rel] = fingerprint(p, st, dir_meta)
        if not rel and dir_meta and ot.root_record(p):
            # A private root (docs/security.md) shows the mode and owner of its record.
            mode, uid, gid = ot.root_record(p)
            out[rel] = out[rel][:1] + (mode, uid, gid) + out[rel][4:]
        if stat.S_ISDIR(st.st_mode):
            for n in sorted(os.listdir(p)):
                rec(os.path.join(rel, n) if rel else n)

    rec("")
    return out


def copy_tree(src, dst):
    subprocess.run(["cp", "-a", "--preserve=all", src, dst], check=True)


def overlay_view(tmp, name, lowers, dir_meta=True):
    """(walk, digest) of the read-only kernel overlay of lowers (top first)."""
    mnt = os.path.join(tmp, name)
    os.mkdir(mnt)
    with ot.kernel_overlay(mnt, lowers, options=OVL_OPTS):
        return walk(mnt, dir_meta), digest(mnt)


def wfile(path, data=b"", mode=0o644, uid=0, gid=0, mtime=MTIME, xattrs=None):
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    for k, v in (xattrs or {}).items():
        os.setxattr(path, k, v)
    os.utime(path, ns=(mtime, mtime))


def mkdirs(*paths):
    for p in paths:
        os.makedirs(p, exist_ok=True)


def whiteout(path):
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path):
    os.setxattr(path, "trusted.overlay.opaque", b"y")


# ---------------------------------------------------------------- trees

def build_semantic(tmp):
    low, up = os.path.join(tmp, "lower"), os.path.join(tmp, "upper")
    # LOWER, as a bottom layer (no markers)
    mkdirs(f"{low}/etc/conf.d", f"{low}/gone/deep/er", f"{low}/opq/sub/x", f"{low}/dir2file/a/b",
           f"{low}/meta", f"{low}/keep")
    wfile(f"{low}/etc/passwd", b"root:x:0:0\n")
    wfile(f"{low}/etc/conf.d/a", b"a-old\n")
    wfile(f"{low}/etc/conf.d/b", b"b-old\n", xattrs={"user.note": b"old"})
    wfile(f"{low}/gone/deep/er/file", b"x" * 5000)
    wfile(f"{low}/gone/f", b"f")
    wfile(f"{low}/opq/old1", b"1")
    wfile(f"{low}/opq/keepname", b"lower version")
    wfile(f"{low}/opq/sub/x/y", b"y")
    wfile(f"{low}/dir2file/a/b/c", b"c")
    wfile(f"{low}/file2dir", b"was a file")
    wfile(f"{low}/meta/f", b"meta file", mode=0o644, xattrs={"user.a": b"1", "user.drop": b"2"})
    os.setxattr(f"{low}/meta", "user.dirold", b"old")
    wfile(f"{low}/keep/untouched", b"untouched", uid=7, gid=8)
    wfile(f"{low}/rmfile", b"rm me")
    os.symlink("etc/passwd", f"{low}/link-old")
    os.symlink("nowhere", f"{low}/link-rm")
    os.mkfifo(f"{low}/fifo")
    wfile(f"{low}/big", os.urandom(3 << 20))

    # UPPER, an overlay upper layer over it
    mkdirs(f"{up}/etc/conf.d", f"{up}/opq/sub", f"{up}/dir2file", f"{up}/file2dir/n/m",
           f"{up}/meta", f"{up}/new/a/b/c", f"{up}/devs")
    wfile(f"{up}/etc/conf.d/a", b"a-new, longer than before\n")
    wfile(f"{up}/etc/conf.d/b", b"b-old\n", xattrs={"user.note": b"new"})  # xattr-only change
    wfile(f"{up}/etc/newfile", b"new\n", mode=0o4755, uid=1234, gid=5678)
    whiteout(f"{up}/gone")                 # a whole directory tree deleted (the upper dir is replaced)
    whiteout(f"{up}/rmfile")
    whiteout(f"{up}/link-rm")
    whiteout(f"{up}/neverexisted")
    opaque(f"{up}/opq")
    wfile(f"{up}/opq/keepname", b"upper version")
    wfile(f"{up}/opq/sub/z", b"z")
    os.rmdir(f"{up}/dir2file")
    wfile(f"{up}/dir2file", b"now a file", mode=0o600)
    opaque(f"{up}/file2dir")               # a new dir over a lower file: kernel makes it opaque
    wfile(f"{up}/file2dir/n/m/leaf", b"leaf")
    os.chmod(f"{up}/file2dir", 0o751)
    # metadata-only: a dir copied up with other mode/owner/xattrs, a file copied up likewise
    os.chown(f"{up}/meta", 42, 43)
    os.chmod(f"{up}/meta", 0o1777)
    os.setxattr(f"{up}/meta", "user.dirnew", b"new")
    wfile(f"{up}/meta/f", b"meta file", mode=0o640, uid=1000, gid=1000, xattrs={"user.a": b"1"})
    os.symlink("etc/newfile", f"{up}/link-old")   # symlink replaced
    os.symlink("../../etc", f"{up}/new/a/b/c/up")  # new symlink
    wfile(f"{up}/new/a/b/c/hl1", b"hard linked")
    os.link(f"{up}/new/a/b/c/hl1", f"{up}/new/hl2")
    os.mknod(f"{up}/devs/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(f"{up}/devs/loop", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.mkfifo(f"{up}/devs/fifo")
    whiteout(f"{up}/fifo")
    wfile(f"{up}/sparse", b"")
    with open(f"{up}/sparse", "r+b") as f:
        f.seek(5 << 20)
        f.write(b"end")
    os.utime(f"{up}/sparse", ns=(MTIME, MTIME))
    os.chmod(up, 0o711)
    return low, up


def build_big(tmp, rng):
    """A few thousand entries and some multi-MB files, so a merge runs long enough to be killed."""
    low, up = os.path.join(tmp, "lower"), os.path.join(tmp, "upper")
    blob = os.urandom(1 << 20)
    for d in range(24):
        mkdirs(f"{low}/d{d:02}/s", f"{up}/d{d:02}/s")
        for i in range(50):
            wfile(f"{low}/d{d:02}/f{i:03}", blob[i * 97:i * 97 + 2000 + i])
            wfile(f"{low}/d{d:02}/s/g{i:03}", b"g%d" % i)
        for i in range(0, 50, 2):
            wfile(f"{up}/d{d:02}/f{i:03}", b"new %d %d " % (d, i) * (10 + i))
        for i in range(1, 50, 6):
            whiteout(f"{up}/d{d:02}/f{i:03}")
        for i in range(30):
            wfile(f"{up}/d{d:02}/s/n{i:03}", b"n%d" % i, mode=0o600)
        if d % 4 == 0:
            opaque(f"{up}/d{d:02}/s")
        if d % 6 == 1:
            shutil.rmtree(f"{up}/d{d:02}/s")
            wfile(f"{up}/d{d:02}/s", b"dir became a file")
        if d % 6 == 2:
            mkdirs(f"{up}/d{d:02}/f000x")
            wfile(f"{low}/d{d:02}/f000x", b"file became a dir")
            opaque(f"{up}/d{d:02}/f000x")
            wfile(f"{up}/d{d:02}/f000x/in", b"in")
        if d % 5 == 3:
            mkdirs(f"{low}/d{d:02}/gone/x")
            wfile(f"{low}/d{d:02}/gone/x/y", b"y")
            whiteout(f"{up}/d{d:02}/gone")
        os.chmod(f"{up}/d{d:02}", 0o750)
    # Big LOWER subtrees that go away: a file replacing a dir (RENAME_EXCHANGE, then the old tree is removed
    # from the work dir), a whiteout (rename out, then removal), an opaque dir (deleted entry by entry).
    # Their removal takes long enough for kills to land in the middle of it.
    for name in ("m-dir2file", "m-whiteout", "m-opaque"):
        for j in range(4):
            mkdirs(f"{low}/{name}/sub{j}")
            for i in range(300):
                wfile(f"{low}/{name}/sub{j}/e{i:03}", b"")
    wfile(f"{up}/m-dir2file", b"a file now")
    whiteout(f"{up}/m-whiteout")
    mkdirs(f"{up}/m-opaque/sub1")
    opaque(f"{up}/m-opaque")
    wfile(f"{up}/m-opaque/sub1/e000", b"kept name, new content")
    for i in range(8):
        wfile(f"{up}/big{i}", blob * 4 + bytes([i]))      # 4 MiB each
        wfile(f"{low}/big{i}", b"old big %d" % i)
    os.link(f"{up}/big0", f"{up}/d00/big0-link")
    return low, up


# ---------------------------------------------------------------- tests

def test_semantics(tmp):
    low, up = build_semantic(tmp)
    pristine = os.path.join(tmp, "pristine")
    copy_tree(low, pristine)
    expected, expected_digest = overlay_view(tmp, "mnt", [up, pristine])
    upper_before, upper_digest = walk(up), digest(up)

    lst = os.lstat(low)
    r = merge(up, low)
    # LOWER was open to everyone (0755): the merge made its root private and says so, once.
    note = r.stderr.startswith(f"sandbox-layer merge: note: LOWER '{low}' was open to other users") and \
        r.stderr.count("\n") == 1
    T.ok(stat.S_IMODE(lst.st_mode) == 0o755 and r.returncode == 0 and r.stdout == "" and note,
         "merge succeeds with nothing but the note that LOWER's root became private",
         f"rc={r.returncode}\n{r.stdout}{r.stderr}")
    lst, ust = os.lstat(low), os.lstat(up)
    want = ot.root_record(up) or (stat.S_IMODE(ust.st_mode), ust.st_uid, ust.st_gid)
    T.ok((stat.S_IMODE(lst.st_mode), lst.st_uid, lst.st_gid) == (0o700, 0, 0) and ot.root_record(low) == want,
         "LOWER's root is private (0700 root:root on disk), recording what UPPER's root shows",
         f"{oct(lst.st_mode)} {lst.st_uid}:{lst.st_gid} record {ot.root_record(low)}")
    got = walk(low)
    T.ok(got == expected, "LOWER equals the kernel overlay view of UPPER over LOWER (all attributes)",
         ot.dict_diff(got, expected))
    T.ok(digest(low) == expected_digest, "digest of LOWER equals the overlay view's digest")
    T.ok(walk(up) == upper_before and digest(up) == upper_digest, "UPPER is unchanged")
    T.ok(not os.path.exists(os.path.join(tmp, ".lower.merge")), "the work dir is removed")
    st1, st2 = os.lstat(f"{low}/new/a/b/c/hl1"), os.lstat(f"{low}/new/hl2")
    T.ok(st1.st_ino == st2.st_ino and st1.st_nlink == 2, "hard links inside UPPER stay one file in LOWER")
    T.ok(not any(is_marker(n) and n not in ot.ROOTATTR_XATTRS
                 for p in [low, f"{low}/opq", f"{low}/file2dir"] for n in os.listxattr(p)),
         "no overlay markers are copied into LOWER")
    blocks = os.lstat(f"{low}/sparse").st_blocks
    T.ok(blocks * 512 < (1 << 20), "a sparse file stays sparse", f"{blocks} blocks")

    r = merge(up, low)
    T.ok(r.returncode == 0 and walk(low) == expected and digest(low) == expected_digest
         and not os.path.exists(os.path.join(tmp, ".lower.merge")),
         "re-running a completed merge changes nothing", r.stderr)


def test_keep_whiteouts(tmp):
    """LOWER as a middle layer: BELOW < LOWER < UPPER. After merging with --keep-whiteouts, LOWER over
    BELOW shows what UPPER over LOWER over BELOW showed."""
    below, low, up = (os.path.join(tmp, n) for n in ("below", "lower", "upper"))
    mkdirs(f"{below}/a/deep", f"{below}/b", f"{below}/c", f"{below}/w", f"{low}/a", f"{low}/b", f"{up}/a",
           f"{up}/c", f"{up}/w")
    for n in ("a/1", "a/deep/2", "b/3", "c/4", "w/5", "top"):
        wfile(f"{below}/{n}", n.encode())
    wfile(f"{low}/a/lowfile", b"low")
    whiteout(f"{low}/c")            # LOWER hides BELOW's c; UPPER puts a new (non-opaque on disk) dir c
    wfile(f"{low}/w", b"LOWER file over BELOW dir w")
    whiteout(f"{up}/top")           # hides a BELOW entry: must stay a whiteout
    mkdirs(f"{up}/b")
    whiteout(f"{up}/b/3")
    opaque(f"{up}/a")
    wfile(f"{up}/a/upfile", b"up")
    wfile(f"{up}/c/new", b"new")
    wfile(f"{up}/w/x", b"x")
    pristine = os.path.join(tmp, "pristine")
    copy_tree(low, pristine)
    expected, _ = overlay_view(tmp, "mnt1", [up, pristine, below])
    r = merge("--keep-whiteouts", up, low)
    ot.show_recorded_root(low)  # the kernel shows LOWER's (now private) root as it is on disk
    got, _ = overlay_view(tmp, "mnt2", [low, below])
    T.ok(r.returncode == 0 and got == expected,
         "--keep-whiteouts: LOWER over BELOW equals UPPER over LOWER over BELOW",
         r.stderr + ot.dict_diff(got, expected))
    T.ok(ot.type_char(os.lstat(f"{low}/top").st_mode) == "c", "--keep-whiteouts keeps a whiteout")


def test_usage_and_refusals(tmp):
    os.mkdir(f"{tmp}/u")
    os.mkdir(f"{tmp}/l")
    for args in ([], ["x"], ["a", "b", "c"], ["--bogus", "a", "b"], ["--workdir"]):
        r = merge(*args)
        T.ok(r.returncode == 2 and "sandbox-layer merge" in r.stderr, f"bad usage {args} exits 2",
             f"rc={r.returncode} {r.stderr}")
    r = merge("--help")
    T.ok(r.returncode == 0 and "UPPER LOWER" in r.stdout, "--help exits 0 with a synopsis")

    low, up = f"{tmp}/l", f"{tmp}/u"
    wfile(f"{low}/f", b"old")
    wfile(f"{up}/f", b"new")
    before = walk(low)
    # Another file system: a small tmpfs of our own, unmounted in any case.
    other_fs = f"{tmp}/otherfs"
    os.mkdir(other_fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "sbx-merge-test", other_fs], check=True)
    try:
        r = merge("--workdir", f"{other_fs}/wd", up, low)
        T.ok(r.returncode == 1 and "same file system" in r.stderr and walk(low) == before
             and not os.path.exists(f"{other_fs}/wd"),
             "a work dir on another file system is refused, nothing changes", f"rc={r.returncode} {r.stderr}")
    finally:
        ot.umount(other_fs)

    wd = f"{tmp}/wd"
    os.mkdir(wd)
    fd = os.open(wd, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running merge holds it
        r = merge("--workdir", wd, up, low)
        T.ok(r.returncode == 1 and "another merge" in r.stderr and walk(low) == before,
             "a work dir locked by another merge is refused", r.stderr)
    finally:
        os.close(fd)

    r = merge(up, up)
    T.ok(r.returncode == 1 and walk(low) == before, "UPPER == LOWER is refused", r.stderr)
    r = merge("--workdir", f"{low}/work", up, low)
    T.ok(r.returncode == 1 and walk(low) == before, "a work dir inside LOWER is refused", r.stderr)

    other = f"{tmp}/l2"
    copy_tree(low, other)
    r = merge("--workdir", wd, up, other)
    T.ok(r.returncode == 0 and ot.file_digest(f"{other}/f") == ot.file_digest(f"{up}/f") and not os.path.exists(wd),
         "--workdir DIR: merges, and DIR is removed at the end", r.stderr)

    mkdirs(f"{up}/moved")
    os.setxattr(f"{up}/moved", "trusted.overlay.redirect", b"/orig")
    r = merge(up, low)
    T.ok(r.returncode == 1 and "squash" in r.stderr and "moved" in r.stderr and walk(low) == before
         and not os.path.exists(f"{tmp}/.l.merge"),
         "a redirect dir in UPPER is refused before any change", r.stderr)


def check_old_or_new(cur, old, new):
    """Every entry of LOWER is its old or its new version; nothing else exists; an entry that exists in
    both versions never vanishes (unless its parent is not a directory now)."""
    bad = []
    for p, fp in cur.items():
        if fp != old.get(p) and fp != new.get(p):
            bad.append(f"{p!r}: {fp!r} is neither old {old.get(p)!r} nor new {new.get(p)!r}")
    for p in set(old) & set(new):
        if p not in cur and cur.get(os.path.dirname(p)) == ("d",):
            bad.append(f"{p!r} vanished although it exists before and after")
    return bad


def test_crash_safety(tmp):
    seed = int(os.environ.get("SBX_TEST_SEED", str(random.randrange(1 << 32))))
    T.diag(f"seed {seed} (set SBX_TEST_SEED to repeat)")
    rng = random.Random(seed)
    low, up = build_big(tmp, rng)
    pristine = os.path.join(tmp, "pristine")
    copy_tree(low, pristine)
    new, expected_digest = overlay_view(tmp, "mnt", [up, pristine], dir_meta=False)
    full_expected, _ = overlay_view(tmp, "mnt2", [up, pristine])
    old = walk(low, dir_meta=False)
    T.diag(f"{len(old)} entries before, {len(new)} after")

    # How long an uninterrupted merge takes, on a second copy.
    timing = os.path.join(tmp, "timing")
    copy_tree(low, timing)
    t0 = time.monotonic()
    r = merge(up, timing)
    full = time.monotonic() - t0
    T.ok(r.returncode == 0 and digest(timing) == expected_digest, f"an uninterrupted merge takes {full:.2f}s",
         r.stderr)
    subprocess.run(["rm", "-rf", timing])

    workdir = os.path.join(tmp, ".lower.merge")
    kills, with_journal, problems = 0, 0, []
    for attempt in range(40):
        if kills >= 12:
            break
        delay = rng.uniform(0, full)
        proc = subprocess.Popen([LAYER, "merge", up, low], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # our own child, by pid
            kills += 1
        finally:
            proc.wait()
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
        if proc.returncode not in (0, -signal.SIGKILL):
            problems.append(f"attempt {attempt}: exit {proc.returncode}: {err}")
        if os.path.exists(os.path.join(workdir, "plan")):
            with_journal += 1
            if with_journal == 1:
                # The journal belongs to this UPPER/LOWER: a merge of another UPPER must not touch it.
                os.mkdir(os.path.join(tmp, "other-upper"))
                before = walk(low)
                r = merge(os.path.join(tmp, "other-upper"), low)
                T.ok(r.returncode == 1 and "journal of an unfinished merge" in r.stderr and walk(low) == before,
                     "an unfinished merge's journal is not used for another UPPER", r.stderr)
        bad = check_old_or_new(walk(low, dir_meta=False), old, new)
        if bad:
            problems.append(f"after attempt {attempt} (killed after {delay:.3f}s):\n" + "\n".join(bad[:8]))
            break
    T.ok(kills >= 12, f"killed merge -9 mid-way {kills} times", f"only {kills} kills")
    T.ok(with_journal >= 6, f"{with_journal} kills left a journal to resume from")
    T.ok(not problems, "after every kill each LOWER entry is its old or its new version",
         "\n".join(problems[:3]))

    r = merge(up, low)
    T.ok(r.returncode == 0, "the re-run completes the merge", r.stderr)
    got = walk(low)
    T.ok(got == full_expected, "LOWER equals the kernel overlay view after the interrupted merges",
         ot.dict_diff(got, full_expected))
    T.ok(digest(low) == expected_digest, "digest of LOWER is the expected one")
    T.ok(not os.path.exists(workdir), "the work dir is gone")


def test_progress(tmp):
    """On a terminal, merge draws entries and bytes and clears the line; on a pipe it says nothing."""
    up, low = f"{tmp}/u", f"{tmp}/l"
    os.mkdir(low, 0o700)  # already private: no note about it (test_semantics has that)
    mkdirs(up)
    block = os.urandom(1 << 20)
    for i in range(24):  # 384 MiB: long enough for several redraws on most machines
        with open(f"{up}/f{i}", "wb") as f:
            for _ in range(16):
                f.write(block)
    rc, _, seen = ot.run_on_pty([LAYER, "merge", up, low])
    T.ok(rc == 0 and ot.progress_ok("merge", seen, 64, 24 << 24),
         "on a terminal: progress with entries and bytes, cleared at the end", repr(seen[-200:]))
    shutil.rmtree(low)
    os.mkdir(low, 0o700)
    r = merge(up, low)
    T.ok(r.returncode == 0 and r.stderr == "" and r.stdout == "", "on a pipe: no output at all", r.stderr)


def main():
    ot.install_signal_handlers()
    ot.require_root()
    ot.require_overlayfs()
    if not LAYER or not os.access(LAYER, os.X_OK):
        ot.skip_all("SANDBOX_LAYER is not set or not executable")
    for name, fn in (("semantics", test_semantics), ("keep", test_keep_whiteouts),
                     ("usage", test_usage_and_refusals), ("progress", test_progress),
                     ("crash", test_crash_safety)):
        with ot.tempdir(f"sbx-merge-{name}-") as tmp:
            try:
                fn(tmp)
            except Exception as e:  # one broken part must not hide the others
                import traceback
                T.ok(False, f"{name}: unexpected exception", traceback.format_exc())
                del e
            finally:
                for m in ot.mounts_under(tmp):
                    ot.umount(m)
    sys.exit(T.done())


if __name__ == "__main__":
    main()
