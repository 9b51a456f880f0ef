#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Snapshots of a live sandbox through the runtime (runtime/snapshot.c: the programs frozen, the union's
cache written back, UNIONFS_IOC_SNAPSHOT), driven by tests/helpers/live-run: snapshots taken while a
program keeps writing (each file written whole, then renamed into place, then a counter) hold every file
up to one instant, each complete, and the counter of that instant; a sandbox started over a snapshot (its
topmost lower) sees exactly what the original saw when it was taken (new files, modes, deletions of the
image's files, metadata-only changes), not what the original did afterwards; the snapshot is left alone
by later writes of the original (its files are shared until changed); bad destinations are refused.

Environment: LIVE_RUN names the helper, SANDBOX_UNIONFS the union. Root only (exit 77)."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_fixture as sf  # noqa: E402
import test_copy as tc  # noqa: E402

LIVE_RUN = os.path.abspath(os.environ.get("LIVE_RUN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "helpers", "live-run"))

# Each file is renamed into place while still open, its data possibly still in the kernel's cache of the
# union (the writeback cache writes it back on close, or later): a snapshot must hold it all the same.
WRITER = ("python3 -c \"import os\n"
          "i = 0\n"
          "while True:\n"
          "    i += 1\n"
          "    f = open('/root/w/tmp', 'w'); f.write(''.join('%d\\\\n' % n for n in range(1, i % 50 + 2))); f.flush()\n"
          "    os.rename('/root/w/tmp', '/root/w/f%d' % i)\n"
          "    g = open('/root/w/last.tmp', 'w'); g.write(str(i)); g.flush()\n"
          "    os.rename('/root/w/last.tmp', '/root/w/last')\n"
          "    f.close(); g.close()\n\"")
LISTING = ("cd / && find root etc -xdev ! -name hostname ! -name hosts -printf '%p %m %y %s %l\\n' | sort && "
           "find root etc -xdev -type f ! -name hostname ! -name hosts -exec md5sum {} + | sort")


def live_run(env, *ops, layer=None, rc=0, timeout=120):
    argv = [LIVE_RUN] + (["--layer", layer] if layer else []) + list(ops)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=env.environ())
    if r.returncode != rc:
        raise AssertionError(f"live-run {' '.join(ops)}: exit {r.returncode}, expected {rc}; "
                             f"stderr: {r.stderr.strip()!r}")
    return r


def snapshots(out):
    return {m.group(1): {"entries": int(m.group(2)), "pause_usec": int(m.group(3)), "frozen": m.group(4) == "1"}
            for m in re.finditer(r"^snapshot (\S+) entries=(\d+) pause_usec=(\d+) frozen=([01])$", out, re.M)}


def test_consistent_under_writer(env):
    """Three snapshots while a program writes: every file up to the newest is there and whole, and the
    counter is the newest file's or the one before (it is renamed into place after the file)."""
    dests = [os.path.join(env.data, f"snap{i}") for i in range(3)]
    os.makedirs(env.data, exist_ok=True)
    r = live_run(env, "sh:mkdir /root/w", "bg:" + WRITER, "sleep:400", f"snap:{dests[0]}", "sleep:300",
                 f"snap:{dests[1]}", "sleep:300", f"snap:{dests[2]}")
    got = snapshots(r.stdout)
    sf.eq(sorted(got), sorted(dests), "snapshots reported")
    prev = 0
    for d in dests:
        sf.check(got[d]["frozen"], f"{d}: the writer was frozen while the snapshot was taken: {got[d]!r}")
        w = os.path.join(d, "root", "w")
        names = os.listdir(w)
        idx = sorted(int(n[1:]) for n in names if re.fullmatch(r"f\d+", n))
        sf.check(idx, f"{d}: the writer's files are there")
        top = idx[-1]
        sf.eq(idx, list(range(1, top + 1)), f"{d}: every file up to f{top}")
        for k in idx:
            with open(os.path.join(w, f"f{k}")) as f:
                sf.eq(f.read(), "".join(f"{n}\n" for n in range(1, k % 50 + 2)), f"{d}: f{k} is whole")
        with open(os.path.join(w, "last")) as f:
            last = int(f.read())
        sf.check(last in (top - 1, top), f"{d}: the counter ({last}) is of the same instant as f{top}")
        sf.check(top > prev, f"{d}: the writer went on between snapshots ({prev} -> {top})")
        prev = top


def test_fork_sees_exactly_it(env):
    """A sandbox over the snapshot sees what the original saw at the snapshot: new files and modes, a
    deleted image file, a metadata-only change of an image file; not the changes made after it. The
    snapshot's files stay as they were while the original changes them."""
    snap = os.path.join(env.data, "snap")
    os.makedirs(env.data, exist_ok=True)
    setup = ("mkdir -p /root/a/b && echo one > /root/a/b/f && chmod 0640 /root/a/b/f && ln -s b/f /root/a/l && "
             "head -c 300000 /dev/urandom > /root/a/big && rm /etc/passwd && chmod 0600 /etc/group && "
             "mkdir /etc/newdir")
    after = ("echo changed > /root/a/b/f && rm /root/a/big && echo new > /root/a/later && chmod 0644 /etc/group && "
             "rmdir /etc/newdir && dd if=/dev/zero of=/root/a/l bs=1 count=3 conv=notrunc")
    r = live_run(env, "sh:" + setup, "sh:" + LISTING, f"snap:{snap}", "sh:" + after, "sh:" + LISTING)
    parts = r.stdout.split(f"snapshot {snap}")
    sf.eq(len(parts), 2, "one snapshot line")
    at_snapshot, afterwards = parts[0], parts[1].split("\n", 1)[1]
    sf.check(at_snapshot != afterwards, "the original changed after the snapshot")
    sf.check("root/a/big" in at_snapshot and "etc/passwd" not in at_snapshot, "the listing shows the changes")
    fork = live_run(env, "sh:" + LISTING, layer=snap)
    sf.eq(fork.stdout, at_snapshot, "what a sandbox over the snapshot sees")
    # Twice, from the same snapshot: nothing of the first fork reached it.
    fork2 = live_run(env, "sh:echo x > /root/a/b/f && rm /root/a/l", "sh:true", layer=snap)
    del fork2
    fork3 = live_run(env, "sh:" + LISTING, layer=snap)
    sf.eq(fork3.stdout, at_snapshot, "a second sandbox over the snapshot after the first one wrote")


def test_bad_destinations(env):
    """An existing destination, a missing parent and a relative path are refused with a message; nothing is
    created."""
    os.makedirs(env.data, exist_ok=True)
    exists = os.path.join(env.data, "exists")
    os.mkdir(exists)
    r = live_run(env, "sh:true", f"snap:{exists}", rc=1)
    sf.check("exists" in r.stderr, f"an existing destination: {r.stderr!r}")
    r = live_run(env, f"snap:{env.data}/no/such", rc=1)
    sf.check("No such file" in r.stderr, f"a missing parent: {r.stderr!r}")
    r = live_run(env, "snap:relative", rc=1)
    sf.check("absolute" in r.stderr, f"a relative path: {r.stderr!r}")
    sf.check(not os.path.exists(os.path.join(env.data, "no")), "nothing was created")


def prerequisites():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not os.access(LIVE_RUN, os.X_OK):
        return f"no live-run at {LIVE_RUN} (set LIVE_RUN)"
    return None


if __name__ == "__main__":
    sf.main(make_env=tc.Env, header=f"# live-run under test: {LIVE_RUN}", check_prerequisites=prerequisites,
            after_pass=tc.after_pass)
