#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-unionfs's disk quota (-o quota_bytes=,quota_inodes=,quota_notify_fd=): statfs shows it; writes,
copy-ups, creates and xattrs past it fail with ENOSPC (write() itself, also with the writeback cache);
deleting frees; sparse files and overwrites of allocated data cost nothing; a kept upper counts what it
holds (also a very deep one); the count equals what is on disk after a random mix of operations and
after a remount; the first refusal of each kind is reported on the notify fd; bad options are refused.

Runs as root against real FUSE mounts on the real file system under /tmp; no mocks."""

import errno
import os
import random
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

MiB = 1 << 20
# Writers in flight may each pass the check before any of them is counted: the server's threads times
# the largest request (1 MiB), see docs/unionfs.md.
OVERSHOOT = 16 * MiB


def quota_union(env, name, opts, lower_files=None, upper_setup=None):
    lay = uf.layout(env, name)
    for rel, data in (lower_files or {}).items():
        uf.write(os.path.join(lay["lowers"][0], rel), data)
    if upper_setup:
        upper_setup(lay["upper"])
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts)
    return m, lay


def used(mnt):
    """(bytes, inodes) used as statfs of the mount says (bytes rounded up to its block size)."""
    sv = os.statvfs(mnt)
    return (sv.f_blocks - sv.f_bfree) * sv.f_frsize, sv.f_files - sv.f_ffree


def on_disk(lay, root_blocks_at_mount):
    """What the quota must count, walked on disk: every inode below the upper and the work directory's
    index and shared directories once, with its allocated bytes; plus what the upper's root directory
    grew by since the mount (the root itself is not counted)."""
    seen, b, n = set(), 0, 0
    roots = [lay["upper"], os.path.join(lay["work"], "sandbox-index"), os.path.join(lay["work"], "sandbox-shared")]
    for r in roots:
        for dp, dns, fns in os.walk(r):
            for name in dns + fns:
                st = os.lstat(os.path.join(dp, name))
                if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                b += st.st_blocks * 512
                n += 1
    b += (os.lstat(lay["upper"]).st_blocks - root_blocks_at_mount) * 512
    return b, n


def errno_of(fn, *a, **kw):
    return uf.errname(fn, *a, **kw)


def fill(path, limit, chunk=MiB):
    """Writes chunks until a write fails; returns (bytes written, errno name or None, close errno)."""
    n, err = 0, None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        buf = b"x" * chunk
        while n < limit:
            try:
                k = os.write(fd, buf)
            except OSError as e:
                err = errno.errorcode[e.errno]
                break
            n += k
    finally:
        try:
            os.close(fd)
            cerr = None
        except OSError as e:
            cerr = errno.errorcode[e.errno]
    return n, err, cerr


# ==================================================================================================

def test_statfs_shows_the_quota(env):
    m, _ = quota_union(env, "a", ["quota_bytes=64m", "quota_inodes=1000"])
    sv = os.statvfs(m.mnt)
    uf.eq(sv.f_blocks * sv.f_frsize, 64 * MiB, "size shown by statfs")
    uf.eq(sv.f_files, 1000, "inodes shown by statfs")
    uf.check(sv.f_bavail * sv.f_frsize > 60 * MiB and sv.f_ffree > 990, f"free space of an empty upper: {sv}")
    df = subprocess.run(["df", "-B1", "--output=size", m.mnt], capture_output=True, text=True)
    uf.eq(df.stdout.split()[-1], str(64 * MiB), "df's size")
    uf.write(m.p("f"), b"y" * (8 * MiB))
    b, n = used(m.mnt)
    uf.check(8 * MiB <= b <= 8 * MiB + 64 * 1024 and n == 1, f"usage after an 8 MiB file: {b} bytes, {n} inodes")


@uf.timeout(120)
def test_write_past_the_quota_fails_in_write(env):
    m, lay = quota_union(env, "a", ["quota_bytes=64m"])
    uf.write(m.p("allocated"), b"a" * (2 * MiB))
    # dd and head: the write() itself fails (not only close), well before they wrote 200 MiB
    r = subprocess.run(["dd", "if=/dev/zero", f"of={m.p('dd')}", "bs=1M", "count=200"], capture_output=True,
                       text=True, timeout=60)
    uf.check(r.returncode != 0 and "error writing" in r.stderr and "No space left" in r.stderr,
             f"dd past the quota: {r.returncode} {r.stderr!r}")
    size = os.path.getsize(os.path.join(lay["upper"], "dd"))
    uf.check(56 * MiB <= size <= 64 * MiB + OVERSHOOT, f"dd's file in the upper: {size} bytes")
    # a refused request from the page cache (1 MiB at most) may leave less than it free
    b, _ = used(m.mnt)
    uf.check(63 * MiB <= b <= 64 * MiB, f"statfs usage of a full quota: {b}")
    os.unlink(m.p("dd"))
    b, _ = used(m.mnt)
    uf.check(b < 3 * MiB, f"usage after the file was deleted: {b}")
    # a program writing 1 MiB at a time gets ENOSPC from write() within the cache's slack
    n, err, cerr = fill(m.p("py"), 400 * MiB)
    uf.eq(err, "ENOSPC", f"error of write() past the quota after {n} bytes")
    uf.check(n < 200 * MiB, f"write() went on for {n} bytes past a 64 MiB quota")
    uf.check(os.path.getsize(os.path.join(lay["upper"], "py")) <= 64 * MiB + OVERSHOOT, "the upper grew past the quota")
    # and keeps failing, also after a stat() of the file
    fd = os.open(m.p("py"), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.stat(m.p("py"))
        uf.eq(errno_of(os.write, fd, b"more"), "ENOSPC", "write() again after a stat()")
    finally:
        errno_of(os.close, fd)
    # another file rewriting its allocated data in place needs no space: allowed while full
    fd = os.open(m.p("allocated"), os.O_WRONLY | os.O_CLOEXEC)
    try:
        uf.eq(os.pwrite(fd, b"z" * 4096, 0), 4096, "overwrite at offset 0 of a full quota")
        errno_of(os.fsync, fd)  # may report the earlier failed writeback of the other file once
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(os.path.join(lay["upper"], "allocated"), "rb") as f:
        uf.eq(f.read(4096), b"z" * 4096, "overwritten data in the upper")
    # creating anything is refused while full, deleting always works
    uf.eq(errno_of(uf.create, m.p("new")), "ENOSPC", "create while full")
    uf.eq(errno_of(os.mkdir, m.p("d")), "ENOSPC", "mkdir while full")
    os.unlink(m.p("py"))
    uf.create(m.p("new"))
    os.mkdir(m.p("d"))


def test_short_writes_without_the_writeback_cache(env):
    m, lay = quota_union(env, "a", ["quota_bytes=16m", "writeback=0"])
    n, err, cerr = fill(m.p("f"), 64 * MiB, chunk=3 * MiB + 5)
    uf.eq(err, "ENOSPC", f"write() after {n} bytes")
    uf.eq(cerr, None, "close() after the failed write (nothing was left behind in a cache)")
    uf.check(15 * MiB <= n <= 16 * MiB, f"bytes written before ENOSPC: {n} (a short write fills the quota)")
    uf.eq(os.path.getsize(os.path.join(lay["upper"], "f")), n, "what reached the upper")


def test_inode_quota(env):
    m, lay = quota_union(env, "a", ["quota_inodes=20"], lower_files={"lower": b"l"})
    made = 0
    for i in range(100):
        try:
            uf.create(m.p(f"f{i}"))
        except OSError as e:
            uf.eq(errno.errorcode[e.errno], "ENOSPC", f"create #{i}")
            break
        made += 1
    uf.eq(made, 20, "files created under a quota of 20 inodes")
    uf.eq(used(m.mnt)[1], 20, "inodes used")
    for what, fn in (("mkdir", lambda: os.mkdir(m.p("d"))), ("symlink", lambda: os.symlink("x", m.p("s"))),
                     ("mknod", lambda: os.mkfifo(m.p("p"))),
                     ("copy-up", lambda: open(m.p("lower"), "ab").close())):
        uf.eq(errno_of(fn), "ENOSPC", f"{what} with no inode left")
    # a hard link is a name, not an inode
    os.link(m.p("f0"), m.p("link"))
    # deleting a lower file leaves a whiteout: always allowed, and counted
    os.unlink(m.p("lower"))
    uf.check(uf.is_whiteout(os.path.join(lay["upper"], "lower")), "the deletion left a whiteout")
    uf.eq(used(m.mnt)[1], 20, "inodes shown with the whiteout (21, past the quota: statfs shows it full)")
    for i in range(3):
        os.unlink(m.p(f"f{i + 1}"))
    os.mkdir(m.p("d"))
    os.symlink("x", m.p("s"))
    uf.eq(errno_of(os.mkfifo, m.p("p")), "ENOSPC", "mknod when full again")


def test_copy_up_is_checked_first(env):
    big = b"b" * (40 * MiB)
    m, lay = quota_union(env, "a", ["quota_bytes=32m", "quota_inodes=1000"],
                         lower_files={"big": big, "small": b"s" * 1000})
    uf.eq(errno_of(lambda: open(m.p("big"), "ab").close()), "ENOSPC", "opening a 40 MiB lower file for writing")
    uf.check(not os.path.exists(os.path.join(lay["upper"], "big")), "a refused copy-up left a copy in the upper")
    uf.eq(os.listdir(os.path.join(lay["work"], "work")), [], "a refused copy-up left something in the work dir")
    uf.eq(uf.read(m.p("big")), big, "the lower file as seen through the mount")
    with open(m.p("small"), "ab") as f:
        f.write(b"+")
    b, n = used(m.mnt)
    uf.check(n == 1 and 4096 <= b <= 16384, f"usage after copying up a small file: {b} bytes, {n} inodes")


def test_sparse_files_cost_what_they_allocate(env):
    m, _ = quota_union(env, "a", ["quota_bytes=8m"])
    with open(m.p("sparse"), "wb") as f:
        f.truncate(1 << 40)
        f.seek(1 << 39)
        f.write(b"x")
    uf.eq(os.stat(m.p("sparse")).st_size, 1 << 40, "size of a 1 TiB sparse file")
    b, _ = used(m.mnt)
    uf.check(b <= 64 * 1024, f"a sparse 1 TiB file counts {b} bytes")
    fd = os.open(m.p("sparse"), os.O_WRONLY | os.O_CLOEXEC)
    try:
        uf.fallocate(fd, 0, 0, 16 * MiB)
        raise AssertionError("fallocate of 16 MiB under an 8 MiB quota succeeded")
    except OSError as e:
        uf.eq(errno.errorcode[e.errno], "ENOSPC", "fallocate past the quota")
    finally:
        os.close(fd)


def test_a_kept_upper_counts_what_it_holds(env):
    def prefill(upper):
        uf.write(os.path.join(upper, "old"), b"o" * (40 * MiB))
        os.makedirs(os.path.join(upper, "d1", "d2"))
        uf.write(os.path.join(upper, "d1", "d2", "f"), b"f")
        os.link(os.path.join(upper, "d1", "d2", "f"), os.path.join(upper, "d1", "hard"))
    m, lay = quota_union(env, "a", ["quota_bytes=32m", "quota_inodes=100"], upper_setup=prefill)
    b, n = used(m.mnt)
    uf.eq(b, 32 * MiB, "usage shown for an upper already past its quota")
    uf.eq(n, 4, "inodes of the kept upper (old, d1, d2, f with its second name)")
    uf.eq(errno_of(uf.write, m.p("new"), b"n" * MiB), "ENOSPC", "writing into an upper already past the quota")
    os.unlink(m.p("old"))
    uf.write(m.p("new"), b"n" * MiB)
    uf.eq(uf.read(m.p("new")), b"n" * MiB, "a write once space was freed")


@uf.timeout(120)
def test_a_deep_kept_upper_is_counted(env):
    depth = 3000

    def deep(upper):
        fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(fd)
    m, lay = quota_union(env, "a", ["quota_inodes=100000"], upper_setup=deep)
    try:
        uf.eq(used(m.mnt)[1], depth, f"inodes of a {depth}-deep kept upper")
    finally:
        m.umount()
        subprocess.run(["rm", "-rf", "--one-file-system", lay["upper"]], check=True)  # deeper than Python's rmtree goes


def random_ops(m, rng, n):
    """A mix of every kind of change; errors (a name already gone, a full quota) are part of the game."""
    names = [f"n{i}" for i in range(12)]
    dirs = ["", "sub", "sub/deeper", "lowerdir"]
    done = 0
    for _ in range(n):
        d = rng.choice(dirs)
        p = m.p(d, rng.choice(names)) if d else m.p(rng.choice(names))
        q = m.p(rng.choice(dirs), rng.choice(names))
        op = rng.randrange(17)
        try:
            if op == 0:
                # O_NONBLOCK: a fifo without a reader fails (ENXIO) instead of waiting for one
                fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
                try:
                    os.write(fd, os.urandom(rng.choice([1, 100, 5000, 70000, 300000])))
                finally:
                    os.close(fd)
            elif op == 1:
                os.mkdir(p)
            elif op == 2:
                os.symlink("t" * rng.choice([5, 100, 300]), p)
            elif op == 3:
                os.unlink(p)
            elif op == 4:
                os.rmdir(p)
            elif op == 5:
                os.rename(p, q)
            elif op == 6:
                os.link(p, q)
            elif op == 7:
                os.truncate(p, rng.choice([0, 10, 1 << 20, 123456]))
            elif op == 8:
                os.setxattr(p, "user.v", os.urandom(rng.choice([10, 2000, 4000])))
            elif op == 9:
                fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    uf.fallocate(fd, rng.choice([0, uf.FALLOC_FL_KEEP_SIZE | uf.FALLOC_FL_PUNCH_HOLE]), 4096,
                                 rng.choice([4096, 65536]))
                finally:
                    os.close(fd)
            elif op == 10:
                os.mkfifo(p)
            elif op == 11:
                fd = os.open(p, os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
                try:
                    os.write(fd, b"w" * rng.choice([0, 4096, 10000]))
                finally:
                    os.close(fd)
            elif op == 12:
                os.removexattr(p, "user.v")
            elif op == 13:
                os.rename(p, q)
            elif op == 14:
                # metadata only: with metacopy=on a lower file's copy gets no data
                os.chmod(p, rng.choice([0o600, 0o644, 0o755]))
            elif op == 15:
                os.chown(p, rng.choice([0, 1, 1000]), -1, follow_symlinks=False)
            elif op == 16:
                # a change through the fd of a file whose last name went: an anonymous copy of a
                # lower file, counted while it is open
                fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    os.unlink(p)
                    os.fchmod(fd, 0o640)
                finally:
                    os.close(fd)
            done += 1
        except OSError:
            pass
    return done


def settled(m, lay, root_blocks):
    """Waits (2 s at most) for the kernel to forget the objects the last operations closed without a
    name: their blocks count until then."""
    deadline = time.monotonic() + 2
    while True:
        subprocess.run(["sync", "-f", m.mnt], check=True)
        expected, got = on_disk(lay, root_blocks), used(m.mnt)
        if (expected[1] == got[1] and expected[0] <= got[0] < expected[0] + 4096) or time.monotonic() > deadline:
            return expected, got
        time.sleep(0.05)


def count_equals_disk(env, extra):
    lower = {"lowerdir/a": b"a" * 10000, "lowerdir/n1": b"1" * 200000, "lowerdir/n2": b"", "n3": b"3" * 5000,
             "sub/n4": b"4", "sub/deeper/n6": b"6" * 70000}
    for i in (0, 3, 4, 6, 7, 8, 9, 10, 11):
        lower[f"lowerdir/n{i}"] = lower.get(f"lowerdir/n{i}", bytes([65 + i]) * (i * 7000))
    m, lay = quota_union(env, "a", ["quota_bytes=1g", "quota_inodes=100000"] + extra, lower_files=lower)
    l0 = lay["lowers"][0]
    root0 = os.lstat(lay["upper"]).st_blocks
    os.link(os.path.join(l0, "lowerdir", "a"), os.path.join(l0, "lowerdir", "n5"))  # a lower hard link
    m.remount()

    def compare(what, root_blocks=root0):
        expected, got = settled(m, lay, root_blocks)
        uf.check(expected[1] == got[1], f"{what}: inodes counted {got[1]}, on disk {expected[1]}")
        # statfs rounds to its block size
        uf.check(expected[0] <= got[0] < expected[0] + 4096, f"{what}: bytes counted {got[0]}, on disk {expected[0]}")

    # every way a name replaces a whiteout, or a directory of whiteouts goes
    os.unlink(m.p("lowerdir", "n1"))
    uf.write(m.p("lowerdir", "n1"), b"new")
    os.unlink(m.p("lowerdir", "n2"))
    os.mkdir(m.p("lowerdir", "n2"))
    os.unlink(m.p("n3"))
    os.symlink("t" * 200, m.p("n3"))
    os.unlink(m.p("sub", "n4"))
    os.link(m.p("lowerdir", "n1"), m.p("sub", "n4"))
    os.unlink(m.p("sub", "deeper", "n6"))
    os.rename(m.p("n3"), m.p("sub", "deeper", "n6"))
    os.mkdir(m.p("tmpdir"))
    uf.write(m.p("tmpdir", "f"), b"f" * 9000)
    os.rename(m.p("tmpdir"), m.p("lowerdir", "n2"))
    compare("whiteouts replaced")
    for name in os.listdir(m.p("sub", "deeper")):
        os.unlink(m.p("sub", "deeper", name))
    os.rmdir(m.p("sub", "deeper"))
    os.mkdir(m.p("sub", "deeper"))
    compare("a directory of whiteouts removed and made again")
    # names cost their directory blocks: 400 long names need a dozen
    os.mkdir(m.p("bigdir"))
    for i in range(400):
        uf.create(m.p("bigdir", f"{i:04d}" + "x" * 200))
    for i in range(0, 400, 2):
        os.link(m.p("bigdir", f"{i:04d}" + "x" * 200), m.p("bigdir", f"{i:04d}" + "y" * 200))
    compare("a directory that grew")
    for seed in range(3):
        rng = random.Random(seed)
        done = random_ops(m, rng, 1500)
        uf.check(done > 500, f"seed {seed}: only {done} of 1500 operations succeeded")
        compare(f"seed {seed}")
    # the walk at mount time finds the same
    m.remount()
    got = used(m.mnt)
    expected = on_disk(lay, os.lstat(lay["upper"]).st_blocks)
    uf.check(expected[1] == got[1] and expected[0] <= got[0] < expected[0] + 4096,
             f"after a remount: counted {got}, on disk {expected}")


@uf.timeout(240)
def test_the_count_equals_the_disk(env):
    count_equals_disk(env, [])


@uf.timeout(240)
def test_the_count_equals_the_disk_with_metacopy(env):
    count_equals_disk(env, ["metacopy=on"])


def test_metacopy_data_is_checked_when_it_comes(env):
    big = b"b" * (40 * MiB)
    m, lay = quota_union(env, "a", ["quota_bytes=32m", "quota_inodes=1000", "metacopy=on"],
                         lower_files={"big": big})
    # metadata only: no data is copied, the quota is not in the way
    os.chmod(m.p("big"), 0o600)
    os.chown(m.p("big"), 1000, 1000)
    b, n = used(m.mnt)
    uf.check(n == 1 and b <= 16384, f"usage after a metadata-only copy-up of 40 MiB: {b} bytes, {n} inodes")
    uf.eq(os.lstat(os.path.join(lay["upper"], "big")).st_blocks * 512 <= 8192, True, "the metacopy file holds no data")
    # the data would come at the first open for writing: past the quota, refused, the file unchanged
    uf.eq(errno_of(lambda: open(m.p("big"), "ab").close()), "ENOSPC", "opening a 40 MiB metacopy file for writing")
    uf.eq(uf.read(m.p("big")), big, "the file after the refused data copy")
    uf.eq(stat.S_IMODE(os.stat(m.p("big")).st_mode), 0o600, "its mode")
    b, n = used(m.mnt)
    uf.check(n == 1 and b <= 16384, f"usage after the refused data copy: {b} bytes, {n} inodes")
    # truncating needs no data
    with open(m.p("big"), "wb") as f:
        f.write(b"t")
    uf.eq(uf.read(m.p("big")), b"t", "the file rewritten with O_TRUNC")


def test_an_anonymous_copy_counts_while_it_is_open(env):
    m, lay = quota_union(env, "a", ["quota_bytes=32m", "quota_inodes=1000"],
                         lower_files={"f": b"f" * (8 * MiB), "g": b"g" * (30 * MiB)})
    root0 = os.lstat(lay["upper"]).st_blocks
    fd = os.open(m.p("f"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.unlink(m.p("f"))
        os.fchmod(fd, 0o600)  # the object is copied to an upper file without a name
        b, _ = used(m.mnt)
        uf.check(8 * MiB <= b < 9 * MiB, f"usage while the anonymous 8 MiB copy is open: {b}")
        fd2 = os.open(m.p("g"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.unlink(m.p("g"))
            uf.eq(errno_of(os.fchmod, fd2, 0o600), "ENOSPC", "a second anonymous copy (30 MiB) past the quota")
        finally:
            os.close(fd2)
    finally:
        os.close(fd)
    expected, got = settled(m, lay, root0)
    uf.check(got[0] < MiB and expected[1] == got[1], f"usage once both are closed: {got}, on disk {expected}")


def test_first_refusals_are_reported_on_the_notify_fd(env):
    lay = uf.layout(env, "a")
    r, w = os.pipe()
    p = subprocess.Popen([uf.binary(), "-f", "-o", f"lowerdir={lay['lowers'][0]},upperdir={lay['upper']},"
                          f"workdir={lay['work']},quota_bytes=4m,quota_inodes=5,quota_notify_fd={w}", lay["mnt"]],
                         pass_fds=(w,), stdin=subprocess.DEVNULL)
    env.children.append(p.pid)
    os.close(w)
    try:
        deadline = time.monotonic() + 10
        while not uf.is_mounted(lay["mnt"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.set_blocking(r, False)
        uf.eq(errno_of(os.read, r, 100), "EAGAIN", "the notify fd before any refusal")
        mnt = lay["mnt"]
        uf.eq(fill(os.path.join(mnt, "big"), 64 * MiB)[1], "ENOSPC", "a write past 4 MiB")
        uf.eq(errno_of(uf.create, os.path.join(mnt, "big2")), "ENOSPC", "a create when full")
        os.unlink(os.path.join(mnt, "big"))
        for i in range(10):
            errno_of(uf.create, os.path.join(mnt, f"f{i}"))
        time.sleep(0.1)
        uf.eq(os.read(r, 100), b"bytes\ninodes\n", "what the notify fd says (each kind once)")
    finally:
        uf.umount(lay["mnt"])
        p.wait(timeout=10)
        env.children.remove(p.pid)
        os.close(r)


def test_bad_quota_options(env):
    lay = uf.layout(env, "a")
    base = f"lowerdir={lay['lowers'][0]},upperdir={lay['upper']},workdir={lay['work']}"
    # 2: bad usage (a malformed value, a quota without an upper); 1: a descriptor that is not usable
    cases = [
        (base + ",quota_bytes=0", "quota_bytes=0", 2),
        (base + ",quota_bytes=12q", "quota_bytes=12q", 2),
        (base + ",quota_inodes=-3", "quota_inodes=-3", 2),
        (base + ",quota_inodes=", "quota_inodes", 2),
        (base + ",quota_notify_fd=2", "quota_notify_fd=2", 2),
        (base + ",quota_notify_fd=999", "quota_notify_fd=999", 1),
        (f"lowerdir={lay['lowers'][0]},quota_bytes=1m", "upperdir", 2),
    ]
    for opts, word, status in cases:
        r = subprocess.run([uf.binary(), "-o", opts, lay["mnt"]], capture_output=True, text=True, timeout=20)
        uf.eq(r.returncode, status, f"exit status for -o {opts}")
        uf.check(word in r.stderr, f"-o {opts}: the message does not name {word!r}: {r.stderr!r}")
        uf.check(not uf.is_mounted(lay["mnt"]), f"-o {opts} left a mount")
    # the notify fd must be a pipe: not a file the server would write into
    fd = os.open(os.path.join(env.root, "not-a-pipe"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        r = subprocess.run([uf.binary(), "-o", f"{base},quota_bytes=1m,quota_notify_fd={fd}", lay["mnt"]],
                           capture_output=True, text=True, timeout=20, pass_fds=(fd,))
    finally:
        os.close(fd)
    uf.check(r.returncode == 1 and "not a pipe" in r.stderr, f"a regular file as quota_notify_fd: {r}")
    uf.check(not uf.is_mounted(lay["mnt"]), "a bad notify fd left a mount")


def test_hard_links_of_a_lower_file_count_once(env):
    m, lay = quota_union(env, "a", ["quota_bytes=64m", "quota_inodes=1000"], lower_files={"a": b"a" * (10 * MiB)})
    l0 = lay["lowers"][0]
    os.link(os.path.join(l0, "a"), os.path.join(l0, "b"))
    m.remount()
    with open(m.p("a"), "ab") as f:
        f.write(b"1")
    with open(m.p("b"), "ab") as f:
        f.write(b"2")
    b, n = used(m.mnt)
    uf.eq(n, 1, "inodes after copying up both names of one lower file")
    uf.check(10 * MiB <= b <= 10 * MiB + 64 * 1024, f"bytes after copying up both names: {b}")
    os.unlink(m.p("a"))
    os.unlink(m.p("b"))
    # the index keeps the copy (a remount still shows both names as one file): it still counts
    uf.eq(used(m.mnt)[1], 3, "the index copy and two whiteouts")


if __name__ == "__main__":
    uf.main()
