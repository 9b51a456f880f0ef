#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Copy-up cost: data is copied with copy_file_range (which reflinks where the filesystem can), over the
data ranges only, so a sparse file keeps exactly its holes, whichever copy makes it: a copy-up for
writing, the data copy of a metacopy file (-o metacopy=on), the copy of a lower file unlinked while open,
an O_TRUNC open (no data at all). Kernel overlayfs is the oracle for the hole map."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import unionfs_fixture as uf  # noqa: E402

MIB = 1 << 20
EXTENTS = ((0, 3 * MIB), (16 * MIB, MIB), (40 * MIB, 64 * 1024), (63 * MIB, MIB))   # (offset, length)
SIZE = 80 * MIB      # ends in a hole


def make_sparse(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for off, n in EXTENTS:
        os.pwrite(fd, bytes([off // MIB % 251 + 1]) * n, off)
    os.ftruncate(fd, SIZE)
    os.close(fd)


def data_map(path):
    """[(start, end)] of the data ranges (SEEK_DATA/SEEK_HOLE)."""
    out, off = [], 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, h))
            off = h
    finally:
        os.close(fd)
    return out


def io_counts(pid):
    with open(f"/proc/{pid}/io") as f:
        d = dict(line.split(": ") for line in f.read().splitlines())
    return int(d["syscr"]), int(d["syscw"])


def written(pid):
    """Bytes the process dirtied for writing (/proc/PID/io write_bytes)."""
    with open(f"/proc/{pid}/io") as f:
        return int(dict(line.split(": ") for line in f.read().splitlines())["write_bytes"])


def check_copy(lower, upper, what, exact=True):
    uf.eq(os.path.getsize(upper), SIZE, f"{what}: size")
    if exact:
        uf.eq(data_map(upper), data_map(lower), f"{what}: data ranges of the copy (SEEK_DATA/SEEK_HOLE)")
    uf.check(os.stat(upper).st_blocks * 512 <= sum(n for _, n in EXTENTS) + 2 * MIB,
             f"{what}: {os.stat(upper).st_blocks * 512} bytes allocated for {sum(n for _, n in EXTENTS)} of data")
    with open(upper, "rb") as a, open(lower, "rb") as b:
        while True:
            x, y = a.read(4 * MIB), b.read(4 * MIB)
            if x != y:
                raise AssertionError(f"{what}: the copy's data differs")
            if not x:
                break


def test_sparse_copyup_for_writing(env):
    """Kernel overlayfs keeps holes too (in 1 MiB steps: it copies in chunks of that size); the union
    keeps exactly the data ranges of the lower file."""
    for kind in ("kernel", "union"):
        lay = uf.layout(env, kind)
        make_sparse(os.path.join(lay["lowers"][0], "s"))
        m = (env.kernel_overlay if kind == "kernel" else env.union)(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
        os.close(os.open(m.p("s"), os.O_WRONLY))       # copy-up, no write
        check_copy(os.path.join(lay["lowers"][0], "s"), os.path.join(lay["upper"], "s"), f"{kind} copy-up",
                   exact=kind == "union")


def test_copyup_uses_copy_file_range(env):
    """64 MiB of data copied in a handful of system calls, not 128 KiB read/write pairs (512 of each)."""
    lay = uf.layout(env, "cfr")
    with open(os.path.join(lay["lowers"][0], "big"), "wb") as f:
        f.write(os.urandom(MIB) * 64)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    os.stat(m.p("big"))
    r0, w0 = io_counts(m.pid)
    os.close(os.open(m.p("big"), os.O_WRONLY))
    r1, w1 = io_counts(m.pid)
    uf.eq(os.path.getsize(os.path.join(lay["upper"], "big")), 64 * MIB, "size of the copy")
    uf.check(w1 - w0 < 100 and r1 - r0 < 100,
             f"the server made {r1 - r0} read and {w1 - w0} write system calls to copy 64 MiB up")


def test_sparse_metacopy_data_copy(env):
    lay = uf.layout(env, "mc")
    lower = os.path.join(lay["lowers"][0], "s")
    make_sparse(lower)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"], opts=["metacopy=on"])
    os.chmod(m.p("s"), 0o600)
    uf.eq(data_map(os.path.join(lay["upper"], "s")), [], "data ranges of the metacopy file")
    os.close(os.open(m.p("s"), os.O_WRONLY))
    check_copy(lower, os.path.join(lay["upper"], "s"), "data copy of a metacopy file")


def test_sparse_copy_of_unlinked_file(env):
    lay = uf.layout(env, "orphan")
    lower = os.path.join(lay["lowers"][0], "s")
    make_sparse(lower)
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    fd = os.open(m.p("s"), os.O_RDONLY)
    os.unlink(m.p("s"))
    os.fchmod(fd, 0o600)            # the open file is copied, nameless
    path = f"/proc/self/fd/{fd}"
    uf.eq(oct(os.fstat(fd).st_mode & 0o777), oct(0o600), "mode through the fd")
    uf.eq(data_map(path), data_map(lower), "data ranges read through the fd of the copy")
    os.close(fd)


def test_trunc_copies_nothing(env):
    lay = uf.layout(env, "t")
    make_sparse(os.path.join(lay["lowers"][0], "s"))
    m = env.union(lay["lowers"], lay["upper"], lay["work"], lay["mnt"])
    os.stat(m.p("s"))
    w0 = written(m.pid)
    os.close(os.open(m.p("s"), os.O_WRONLY | os.O_TRUNC))
    st = os.stat(os.path.join(lay["upper"], "s"))
    uf.eq((st.st_size, st.st_blocks), (0, 0), "the upper copy after open(O_TRUNC)")
    uf.check(written(m.pid) - w0 < MIB, f"the server wrote {written(m.pid) - w0} bytes to copy a file it truncates")


if __name__ == "__main__":
    uf.main()
