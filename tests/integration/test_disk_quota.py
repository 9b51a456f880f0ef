#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The disk quota of sandboxes (--disk SIZE[,inodes=N], default 10 GiB and 1,000,000 inodes) and the
union server's place in the sandbox's cgroup, end to end through sandbox-run and sandboxd, as root, no
mocks: filling /, /var/tmp and a kept --upper stops with ENOSPC inside and says disk_limit_hit; the
default bound holds with no options; inodes; a kept upper counts what it holds; another sandbox running
at the same time and the host are untouched; the server is charged to the sandbox's cgroup, so
--memory bounds what writing costs; killing the server mid-write ends the sandbox cleanly; a data or
state directory too full to start gives a clear error and leaves nothing; freezing or killing the
program never touches the server.

Every test has its own state and data directory in a fresh temp dir (sandbox_fixture.Env)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
# What writers in flight may add past the quota before any of them is counted (the server's threads
# times its largest request), see docs/unionfs.md.
OVERSHOOT = 16 * MiB


def asan_build():
    """Whether the binaries under test were built with AddressSanitizer."""
    with open(sf.sandbox_run(), "rb") as f:
        return b"libasan.so" in f.read()


def expect_clean(env, snap, what):
    problems = snap.leftovers()
    sf.check(not problems, f"{what}: left behind: {'; '.join(problems)}")


def server_of(env, sid, timeout=10):
    """The host pid of sandbox SID's union server."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in env.union_servers():
            cmd = sf.proc_cmdline(pid) or []
            if cmd and cmd[0] == b"sandbox-unionfs" and any(sid.encode() in a for a in cmd):
                return pid
        time.sleep(0.02)
    raise sf.TestTimeout(f"no union server for sandbox {sid}")


def du_bytes(path):
    """Allocated bytes below PATH (what the sandbox costs the host's file system)."""
    total = 0
    for dp, dns, fns in os.walk(path):
        for n in dns + fns:
            try:
                total += os.lstat(os.path.join(dp, n)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def proc_cgroups(pid):
    """{controller (or '' for cgroup2): path} of /proc/PID/cgroup."""
    res = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            for c in (ctls.split(",") if ctls else [""]):
                res[c] = path
    return res


def wait_for_line(stream, want, timeout=30):
    import select
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([stream.fileno()], [], [], 0.1)
        if r:
            c = os.read(stream.fileno(), 4096)
            if not c:
                break
            seen += c
            if want.encode() in seen:
                return seen.decode(errors="replace")
    raise sf.TestTimeout(f"did not see {want!r}; got {seen!r}")


# A shell loop that fills PATH 1 MiB at a time until a write fails, then says how far it got.
def fill_script(path, limit_mib=100000):
    return (f"i=0; while [ $i -lt {limit_mib} ]; do "
            f"dd if=/dev/zero of={path} bs=1M count=1 seek=$i conv=notrunc 2>/tmp/err || break; i=$((i+1)); done; "
            "echo filled=$i; cat /tmp/err")


# ==================================================================================================

def test_default_quota_holds(env):
    """No options: statfs of / shows 10 GiB and 1,000,000 inodes, and a write past 10 GiB fails."""
    snap = sf.Snapshot(env)
    os.makedirs(env.data, exist_ok=True)
    sv = os.statvfs(env.data)
    if sv.f_bavail * sv.f_frsize < 12 * GiB:
        raise sf.Skip(f"the test file system has less than 12 GiB free for a 10 GiB fill")
    script = ("stat -f -c 'blocks=%b bsize=%S files=%c' /; "
              # past the bound at once: refused before anything is allocated
              "fallocate -l 11G /var/tmp/big 2>&1; echo fallocate11=$?; "
              # 9.5 GiB allocated in one go (no data written), then data until the bound stops it
              "fallocate -l 9728M /var/tmp/big && echo fallocated; "
              "head -c 2G /dev/zero > /var/tmp/more; echo head=$?; sync -f /; "
              "stat -f -c 'free=%f' /")
    r = env.run(["sh", "-c", script], stats=True, timeout=180)
    kv = {}
    for w in r.stdout.split():
        k, _, v = w.partition("=")
        kv[k] = v
    sf.eq(int(kv["blocks"]) * int(kv["bsize"]), 10 * GiB, f"size of / with no options {r}")
    sf.eq(kv["files"], "1000000", "inodes of / with no options")
    sf.check(kv.get("fallocate11") != "0" and "No space left" in r.stdout, f"fallocate of 11 GiB: {r}")
    sf.check("fallocated" in r.stdout, f"fallocate of 9.5 GiB below the bound: {r}")
    sf.check(kv.get("head") not in (None, "0") and "No space left" in r.stderr,
             f"writing 2 GiB more past the 10 GiB bound: {r}")
    # what is left is less than the one request the check keeps as a margin (docs/unionfs.md)
    sf.check(int(kv.get("free", "-1")) * int(kv["bsize"]) < 2 * MiB,
             f"free blocks of / once the bound is reached: {kv.get('free')}")
    sf.eq((r.stats["disk_limit_hit"], r.returncode), (True, 0), f"--stats {r.stats}")
    sf.check("disk limit" in r.stderr, f"sandbox-run says which bound stopped the writes: {r.stderr!r}")
    expect_clean(env, snap, "the default disk bound")


def test_fill_root_and_var_tmp(env):
    snap = sf.Snapshot(env)
    for path in ("/big", "/var/tmp/big"):
        p = env.popen(["--disk", "48m", "--stats", env.path("s.json"), "sh", "-c",
                       fill_script(path) + "; echo done; read x; true"], stdin=subprocess.PIPE)
        out = wait_for_line(p.stdout, "done")
        sid = env.wait_sandbox_id()
        filled = int(re.search(r"filled=(\d+)", out).group(1))
        sf.check(40 <= filled <= 48, f"MiB written to {path} under --disk 48m: {filled} ({out!r})")
        sf.check("No space left on device" in out, f"the error the program saw: {out!r}")
        # what the sandbox costs the host's file system while it still runs
        cost = du_bytes(os.path.join(env.data, "sandboxes", sid))
        sf.check(cost <= 48 * MiB + OVERSHOOT, f"{path}: the sandbox's upper holds {cost} bytes (--disk 48m)")
        p.stdin.close()
        sf.eq(p.wait(30), 0, f"exit status ({p.stderr.read()!r})")
        with open(env.path("s.json")) as f:
            st = json.load(f)
        sf.eq(st["disk_limit_hit"], True, f"--stats after filling {path}: {st}")
    expect_clean(env, snap, "filling / and /var/tmp")


def test_kept_upper_counts_what_it_holds(env):
    snap = sf.Snapshot(env)
    upper = env.mkdir("keep", "upper")
    r = env.run(["--upper", upper, "--disk", "32m", "sh", "-c", fill_script("/root/data")], stats=True)
    filled = int(re.search(r"filled=(\d+)", r.stdout).group(1))
    sf.check(24 <= filled <= 32, f"MiB written to a kept upper under --disk 32m: {filled} {r}")
    sf.eq(r.stats["disk_limit_hit"], True, "--stats")
    held = du_bytes(upper)
    sf.check(held <= 32 * MiB + OVERSHOOT, f"the kept upper holds {held} bytes")
    # Another run on the same upper: what it holds counts, nothing more fits.
    r = env.run(["--upper", upper, "--disk", "32m", "sh", "-c",
                 "stat -f -c 'free=%f' /; dd if=/dev/zero of=/root/new bs=1M count=2 2>&1; echo rc=$?"], stats=True)
    free = int(re.search(r"free=(\d+)", r.stdout).group(1))
    sf.check(free * 4096 < MiB and "rc=1" in r.stdout and "No space left" in r.stdout,
             f"writing 2 MiB into a kept upper that already holds its quota: {r}")
    sf.eq(r.stats["disk_limit_hit"], True, "--stats of the second run")
    # A bigger quota for it: what is there still counts, the rest is free.
    r = env.run(["--upper", upper, "--disk", "64m", "sh", "-c", "df -B1 --output=used / | tail -1"], stats=True)
    used = int(r.stdout.split()[-1])
    sf.check(24 * MiB <= used <= 32 * MiB + OVERSHOOT, f"what a kept upper already holds, as df sees it: {used}")
    sf.eq(r.stats["disk_limit_hit"], False, "--stats below the quota")
    # Deleting frees it.
    r = env.run(["--upper", upper, "--disk", "32m", "sh", "-c", "rm /root/data && echo y > /root/new && cat /root/new"])
    sf.eq((r.returncode, r.stdout), (0, "y\n"), f"a write once the kept upper's data was deleted {r}")
    expect_clean(env, snap, "a kept upper")


def test_inode_quota(env):
    snap = sf.Snapshot(env)
    r = env.run(["--disk", "100m,inodes=300", "sh", "-c",
                 # true, not ':': a failed redirection of a special builtin ends a POSIX shell
                 "mkdir /root/many && i=0; while true > /root/many/f$i 2>/tmp/err; do i=$((i+1)); done; "
                 "echo made=$i; cat /tmp/err"], stats=True)
    made = int(re.search(r"made=(\d+)", r.stdout).group(1))
    sf.check(250 <= made < 300, f"files made under inodes=300: {made} {r}")
    sf.check("No space left" in r.stdout + r.stderr, f"the error: {r}")
    sf.eq(r.stats["disk_limit_hit"], True, "--stats")
    expect_clean(env, snap, "inode quota")


def test_bad_disk_option(env):
    for arg in ("0", "12q", "1k", "10m,inodes=0", "10m,inodes=x", "10m,files=3", ""):
        r = env.run(["--disk", arg, "true"], probe=False)
        sf.eq(r.returncode, 125, f"--disk {arg!r}: exit status {r}")
        sf.check("--disk" in r.stderr, f"--disk {arg!r}: the message does not name the option: {r.stderr!r}")
    r = env.run(["--disk", "unlimited,inodes=unlimited", "sh", "-c", "stat -f -c %b:%c /"])
    sf.eq(r.returncode, 0, f"--disk unlimited {r}")
    sf.check(r.stdout.split(":")[0] != str(10 * GiB // 4096), f"an unlimited disk shows the host's size: {r.stdout!r}")


def test_other_sandbox_and_host_untouched(env):
    """One sandbox fills its quota while another writes 100 MiB at the same time: the second is not
    affected, and the host's file system lost no more than the first's quota."""
    snap = sf.Snapshot(env)
    host_free = os.statvfs("/tmp").f_bavail * os.statvfs("/tmp").f_frsize
    a = env.popen(["--disk", "32m", "sh", "-c", fill_script("/a") + "; echo done; read x; true"],
                  stdin=subprocess.PIPE)
    b = env.popen(["sh", "-c", "i=0; while [ $i -lt 100 ]; do dd if=/dev/zero of=/b bs=1M count=1 seek=$i "
                   "conv=notrunc 2>/dev/null || exit 9; i=$((i+1)); done; sync -f /; stat -c %s /b; "
                   "echo done; read x; true"], stdin=subprocess.PIPE)
    out_a = wait_for_line(a.stdout, "done")
    out_b = wait_for_line(b.stdout, "done")
    sf.check("No space left" in out_a, f"the filling sandbox: {out_a!r}")
    sf.eq(out_b.split()[0], str(100 * MiB), f"the other sandbox wrote all of its 100 MiB: {out_b!r}")
    lost = host_free - os.statvfs("/tmp").f_bavail * os.statvfs("/tmp").f_frsize
    sf.check(lost < 32 * MiB + 100 * MiB + OVERSHOOT + 64 * MiB,
             f"the host's file system lost {lost} bytes to two sandboxes of 32 + 100 MiB")
    for p in (a, b):
        p.stdin.close()
        sf.eq(p.wait(30), 0, "exit status")
    expect_clean(env, snap, "two sandboxes")


def test_server_is_charged_to_the_sandbox(env):
    """The union server runs in the sandbox's cgroup (beside the program, not in the freezer): the page
    cache of what it writes for the sandbox is the sandbox's."""
    snap = sf.Snapshot(env)
    p = env.popen(["--memory", "1g", "sh", "-c",
                   "dd if=/dev/zero of=/w bs=1M count=300 2>/dev/null; echo written; read x; true"],
                  stdin=subprocess.PIPE)
    wait_for_line(p.stdout, "written")
    sid = env.wait_sandbox_id()
    server = server_of(env, sid)
    cg = proc_cgroups(server)
    key = "memory" if "memory" in cg else ""
    root = "/sys/fs/cgroup/memory" if key else "/sys/fs/cgroup"
    sf.check(cg[key].endswith(f"/sandbox-{sid}/union"), f"the server's cgroup: {cg}")
    if "freezer" in cg:
        sf.check(f"sandbox-{sid}" not in cg["freezer"], f"the server is in the sandbox's freezer cgroup: {cg}")
    programs = sf.cgroup_procs(os.path.join(root, cg[key].lstrip("/").rsplit("/", 1)[0], "program"))
    sf.check(programs and server not in programs, f"the program's cgroup holds {programs}")
    # the OOM killer's order inside: the program first (+1000), the server last (-1000 where we may)
    with open(f"/proc/{server}/oom_score_adj") as f:
        server_adj = int(f.read())
    with open(f"/proc/{programs[-1]}/oom_score_adj") as f:
        program_adj = int(f.read())
    sf.check(server_adj <= 0 and program_adj == 1000, f"oom_score_adj: server {server_adj}, program {program_adj}")
    # the server's share of the sandbox's memory: the upper's page cache of 300 MiB written
    if key == "memory":
        with open(os.path.join("/sys/fs/cgroup/memory", cg["memory"].lstrip("/"), "memory.usage_in_bytes")) as f:
            usage = int(f.read())
        print(f"# the union server's cgroup uses {usage >> 20} MiB after 300 MiB were written")
        sf.check(usage > 100 * MiB, f"the server's cgroup uses only {usage} bytes: its writes are not charged")
    p.stdin.close()
    sf.eq(p.wait(30), 0, "exit status")
    expect_clean(env, snap, "server charged")


@sf.timeout(600)
def test_memory_bounds_the_cost_of_writing(env):
    """A write-heavy sandbox under a small --memory either stays within it or ends with 137; the
    host's memory is never what pays."""
    snap = sf.Snapshot(env)
    for mem in ("48m", "96m"):
        r = env.run(["--memory", mem, "--disk", "3g", "sh", "-c",
                     "dd if=/dev/zero of=/big bs=1M count=512 2>/dev/null; echo dd=$?; "
                     "cp /big /big2 && echo copied; rm -f /big /big2"], stats=True, timeout=280)
        limit = int(mem[:-1]) * MiB
        print(f"# --memory {mem}: exit {r.returncode}, peak {r.stats.get('memory_peak_bytes', 0) >> 20} MiB")
        # Within the bound the writes go through, or the OOM killer ends a program process (dd inside
        # may be the one, then the shell goes on) or the sandbox (137); never its file system server.
        sf.check(r.returncode in (0, 137), f"--memory {mem}: exit status {r}")
        sf.check("dd=0" in r.stdout or "dd=137" in r.stdout or r.returncode == 137, f"--memory {mem}: {r}")
        if asan_build() and r.stats["union_failed"]:
            # AddressSanitizer makes the server several times its size: alone it may outweigh a
            # program's +1000 under 48 MiB. The sandbox still ends as a memory limit, cleanly.
            sf.check(r.returncode == 137 and "memory limit" in r.stderr, f"--memory {mem}: {r}")
            continue
        sf.eq(r.stats["union_failed"], False, f"--memory {mem}: the file system server was killed {r}")
        sf.check(0 < r.stats["memory_peak_bytes"] <= limit + 2 * MiB,
                 f"--memory {mem}: the sandbox's peak {r.stats['memory_peak_bytes']} (server included)")
    expect_clean(env, snap, "writing under --memory")


@sf.timeout(120)
def test_server_killed_mid_write(env):
    snap = sf.Snapshot(env)
    p = env.popen(["--stats", env.path("s.json"), "sh", "-c",
                   "echo writing; while :; do dd if=/dev/zero of=/f bs=1M count=50 2>/dev/null; done"])
    wait_for_line(p.stdout, "writing")
    sid = env.wait_sandbox_id()
    server = server_of(env, sid)
    time.sleep(0.5)
    t0 = time.monotonic()
    os.kill(server, signal.SIGKILL)
    rc = p.wait(30)
    elapsed = time.monotonic() - t0
    err = p.stderr.read().decode()
    sf.eq(rc, 125, f"exit status when the server is killed ({err!r})")
    sf.check(elapsed < 10, f"took {elapsed:.1f}s to end the sandbox")
    sf.check("file system server was killed" in err, f"the message: {err!r}")
    with open(env.path("s.json")) as f:
        st = json.load(f)
    sf.eq((st["status"], st["union_failed"]), (125, True), f"--stats {st}")
    expect_clean(env, snap, "the server killed mid-write")


def small_fs(env, name, size, inodes=None):
    d = env.mkdir(name, mode=0o700)
    opts = f"size={size},mode=0700" + (f",nr_inodes={inodes}" if inodes else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "sbx-test-full", d], check=True)
    return d


def test_full_data_or_state_directory(env):
    snap = sf.Snapshot(env)
    try:
        # a data directory with 40 MiB free: below what a sandbox needs to start (64 MiB)
        data = small_fs(env, "fulldata", "80m")
        with open(os.path.join(data, "filler"), "wb") as f:
            f.write(b"\0" * (40 * MiB))
        r = env.run(["true"], env={"SANDBOX_DATA_DIR": data}, probe=False)
        sf.eq(r.returncode, 125, f"exit status with a full data directory {r}")
        sf.check("data directory" in r.stderr and data in r.stderr and "too full" in r.stderr and "free" in r.stderr,
                 f"the message names the directory and the problem: {r.stderr!r}")
        sf.eq(sorted(n for n in os.listdir(data) if n != "filler"), [], "left in the full data directory")
        # no inodes left in the data directory
        idata = small_fs(env, "noinodes", "200m", inodes=600)
        os.mkdir(os.path.join(idata, "x"))
        for i in range(10000):
            try:
                open(os.path.join(idata, "x", str(i)), "w").close()
            except OSError:
                break
        r = env.run(["true"], env={"SANDBOX_DATA_DIR": idata}, probe=False)
        sf.eq(r.returncode, 125, f"exit status with no inodes left {r}")
        sf.check("inodes" in r.stderr and "too full" in r.stderr, f"the message: {r.stderr!r}")
        # a full state directory
        state = small_fs(env, "fullstate", "4m")
        with open(os.path.join(state, "filler"), "wb") as f:
            try:
                f.write(b"\0" * (4 * MiB))
            except OSError:
                pass
        r = env.run(["true"], env={"SANDBOX_STATE_DIR": state}, probe=False)
        sf.eq(r.returncode, 125, f"exit status with a full state directory {r}")
        sf.check("state directory" in r.stderr and "too full" in r.stderr, f"the message: {r.stderr!r}")
        sf.eq(sorted(n for n in os.listdir(state) if len(n) == 16), [], "sandbox entries in the full state directory")
        # and the same sandbox starts where there is room
        r = env.run(["true"], probe=False)
        sf.eq(r.returncode, 0, f"a sandbox with room {r}")
    finally:
        for n in ("fulldata", "noinodes", "fullstate"):
            if os.path.ismount(env.path(n)):
                subprocess.run(["umount", env.path(n)], check=False)
    expect_clean(env, snap, "full directories")


def freezer_path(cg_rel):
    return os.path.join("/sys/fs/cgroup/freezer", cg_rel.lstrip("/"))


def test_freezing_or_killing_the_program_leaves_the_server(env):
    snap = sf.Snapshot(env)
    p = env.popen(["--timeout", "6", "--stats", env.path("s.json"), "sh", "-c",
                   "echo go; while :; do dd if=/dev/zero of=/f bs=64k count=16 2>/dev/null; done"])
    wait_for_line(p.stdout, "go")
    sid = env.wait_sandbox_id()
    server = server_of(env, sid)
    cg = proc_cgroups(server)
    if "freezer" in cg:
        own = proc_cgroups(os.getpid())["freezer"]
        sf.eq(cg["freezer"], own, "the server's freezer cgroup (not the sandbox's)")
        prog = os.path.join(freezer_path(own), f"sandbox-{sid}", "program")
        with open(os.path.join(prog, "freezer.state"), "w") as f:
            f.write("FROZEN")
        deadline = time.monotonic() + 5
        state = ""
        while time.monotonic() < deadline:
            with open(os.path.join(prog, "freezer.state")) as f:
                state = f.read().strip()
            if state == "FROZEN":
                break
            time.sleep(0.05)
        sf.eq(state, "FROZEN", "the program froze (it never waits on a frozen server)")
        sf.check(sf.proc_status(server)["State"][0] in "SR", f"the server while the program is frozen: "
                                                             f"{sf.proc_status(server)['State']}")
        with open(os.path.join(prog, "freezer.state"), "w") as f:
            f.write("THAWED")
    # --timeout kills the program's cgroup; the server then ends by itself, not killed
    rc = p.wait(30)
    with open(env.path("s.json")) as f:
        st = json.load(f)
    sf.eq((rc, st["union_failed"], st["time_limit_hit"]), (124, False, True),
          f"after --timeout: {st}; stderr {p.stderr.read()!r}")
    expect_clean(env, snap, "freeze and kill of the program")


def test_stale_data_directory_is_removed(env):
    """kill -9 of sandbox-run leaves its throw-away upper; the next sandbox-run removes it."""
    p = env.popen(["sh", "-c", "dd if=/dev/zero of=/f bs=1M count=8 2>/dev/null; echo ready; exec sleep 60"])
    wait_for_line(p.stdout, "ready")
    sid = env.wait_sandbox_id()
    p.kill()
    p.wait(10)
    d = os.path.join(env.data, "sandboxes", sid)
    deadline = time.monotonic() + 10
    while env.union_servers() and time.monotonic() < deadline:
        time.sleep(0.05)
    sf.check(os.path.isdir(d), "the killed sandbox's data directory is not there (nothing to test)")
    r = env.run(["true"], probe=False)
    sf.eq(r.returncode, 0, f"the next sandbox {r}")
    sf.check(not os.path.exists(d), f"the stale data directory {d} is left")
    sf.eq(os.listdir(os.path.join(env.data, "sandboxes")), [], "data directories left")


def test_daemon_disk_limit_and_server_failure(env):
    """The same through sandboxd and sandboxctl: disk_limit_hit in the accounting, and a sandbox whose
    server is killed ends with 125 and a message."""
    d = df.Daemon(env)
    st = env.path("s.json")
    r = d.ctl(["exec", "--disk", "16m", "--stats", st, "sh", "-c", fill_script("/f")])
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.check("No space left" in r.stdout and "disk limit" in r.stderr, f"{r}")
    with open(st) as f:
        sf.eq(json.load(f)["disk_limit_hit"], True, "--stats disk_limit_hit through the daemon")
    p = d.ctl_popen(["exec", "sh", "-c", "echo writing; while :; do dd if=/dev/zero of=/f bs=1M count=20 "
                     "2>/dev/null; done"])
    wait_for_line(p.stdout, "writing")
    sid = env.wait_sandbox_id()
    os.kill(server_of(env, sid), signal.SIGKILL)
    sf.eq(p.wait(30), 125, "sandboxctl's status when the server is killed")
    sf.check("file system server" in p.stderr.read().decode(), "sandboxctl says what happened")
    env.expect_clean("after the daemon's sandboxes", exclude_pids=[d.pid])


if __name__ == "__main__":
    sf.main(make_env=df.DaemonEnv)
