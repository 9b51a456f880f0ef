#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-run end to end, as root, no mocks: what the program inside can see and do (pids, host name,
IPC, mounts, capabilities, seccomp, fds, terminal injection, the init), what the host sees (the program's
host uid, the upper layer's owners and privacy), the limits (memory, pids, timeout, cpu time), the
options, exit statuses and messages, and that nothing is left behind after many sandboxes.

The probe (tests/helpers/sandbox-probe.c, $SANDBOX_PROBE) is bound read-only at /probe inside. Every test
uses its own state directory (SANDBOX_STATE_DIR) in a fresh temp dir that is removed afterwards."""

import ctypes
import errno
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402

PROBE = sf.probe()
PY = "/usr/bin/python3"
SIGSYS = 31

# Must be refused by the default policy with EPERM (names as the probe prints them).
MUST_EPERM = [
    "mount", "umount2", "pivot_root", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "mount_setattr", "unshare_user", "unshare_ns", "clone_newns", "clone_newuser",
    "clone_newnet", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at", "acct", "swapon", "swapoff",
    "reboot", "sethostname", "setdomainname", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "iopl", "ioperm", "quotactl", "syslog", "fanotify_init", "lookup_dcookie", "nfsservctl", "ioctl_tiocsti",
    "ioctl_tioclinux", "ioctl_tiocsetd", "socket_vsock", "socketpair_vsock", "personality_addr_no_randomize",
]
# The probe's arguments make these fail with something other than EPERM when no filter is in the way
# (checked with --seccomp unconfined): for them, EPERM can only come from the filter. The others need a
# capability the program never has, so the kernel would say EPERM too; they are in MUST_EPERM anyway.
DISTINGUISHABLE = [
    "mount", "umount2", "open_tree", "fsconfig", "mount_setattr", "unshare_user", "clone_newuser",
    "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "open_by_handle_at", "name_to_handle_at", "settimeofday",
    "clock_settime", "adjtimex", "clock_adjtime", "iopl", "ioperm", "quotactl", "lookup_dcookie",
    "nfsservctl", "ioctl_tioclinux", "ioctl_tiocsetd", "socket_vsock", "socketpair_vsock",
    "personality_addr_no_randomize",
]


def token():
    return f"{os.getpid()}{random.randrange(10**6, 10**7)}"


def status_of(text):
    """/proc/PID/status text as a dict."""
    d = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        d[k] = v.strip()
    return d


def wait_line(stream, want, timeout=15):
    """Reads lines from STREAM (a pipe of a Popen) until one equals WANT."""
    import select
    deadline = time.monotonic() + timeout
    seen = b""
    fd = stream.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            c = os.read(fd, 4096)
            if not c:
                break
            seen += c
            if (want + "\n").encode() in seen:
                return seen.decode(errors="replace")
    raise sf.TestTimeout(f"did not see {want!r}; got {seen!r}")


def find_host_pid(argv, timeout=10):
    """The host pid of the process whose command line is exactly ARGV (a list of str)."""
    want = [a.encode() for a in argv]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in os.listdir("/proc"):
            if p.isdigit() and sf.proc_cmdline(int(p)) == want:
                return int(p)
        time.sleep(0.02)
    raise sf.TestTimeout(f"no host process with command line {argv}")


def expect_clean(env, snap, what):
    problems = snap.leftovers()
    sf.check(not problems, f"{what}: left behind: {'; '.join(problems)}")


# ==================================================================================================
# isolation seen from inside

def test_pid_namespace(env):
    r = env.run([PY, "-c", "import os; print(os.getpid(), os.getppid()); "
                 "print(' '.join(sorted((p for p in os.listdir('/proc') if p.isdigit()), key=int)))"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    first, pids = r.stdout.splitlines()
    sf.eq(first, "2 1", "the program's pid and ppid (the init is PID 1)")
    sf.eq(pids, "1 2", "pids visible in /proc inside (the host's processes must be invisible)")
    # PID 1 is not the program, and ps agrees
    r = env.run(["sh", "-c", "cat /proc/1/comm; echo; ps -e -o pid= | wc -l"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    comm, count = r.stdout.split()[:1], r.stdout.split()[-1]
    sf.check(comm and comm[0] not in ("sh", "cat"), f"PID 1 is the program ({comm}), not the init")
    # sh, ps (and wc) besides the init: at most 4, never the host's hundreds
    sf.check(int(count) <= 4, f"ps inside sees {count} processes: {r.stdout!r}")


def test_hostname(env):
    host_before = socket.gethostname()
    r = env.run(["sh", "-c", "hostname; cat /etc/hostname; hostname hacked 2>/dev/null; hostname"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq(r.stdout.split(), ["sandbox", "sandbox", "sandbox"], "default host name, /etc/hostname, and that "
                                                                "the program cannot change it")
    r = env.run(["--hostname", "box-under-test", "sh", "-c", "hostname; uname -n; cat /etc/hostname"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq(r.stdout.split(), ["box-under-test"] * 3, "--hostname")
    sf.eq(socket.gethostname(), host_before, "the host's host name changed")


_libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0


def host_msgget(key, flags):
    r = _libc.msgget(ctypes.c_int(key), ctypes.c_int(flags))
    return r if r >= 0 else -ctypes.get_errno()


def test_ipc_private(env):
    key_host = random.randrange(0x10000000, 0x7fffffff)
    key_inside = key_host + 1
    qid = host_msgget(key_host, IPC_CREAT | IPC_EXCL | 0o600)
    sf.check(qid >= 0, f"cannot create a host message queue: {os.strerror(-qid)}")
    shm = f"/dev/shm/sbx-run-test-{token()}"
    try:
        with open(shm, "w") as f:
            f.write("host")
        # host -> inside: invisible
        r = env.run(["sh", "-c", f"{PROBE} msgcheck {key_host}; ls /dev/shm; ipcs -q"])
        sf.eq(r.returncode, 0, f"exit status {r}")
        sf.eq(r.kv().get("msg"), "ENOENT", f"a host SysV message queue is visible inside: {r.stdout!r}")
        sf.check(os.path.basename(shm) not in r.stdout, f"the host's POSIX shm {shm} is visible inside")
        sf.check(str(qid) not in r.stdout.split(), f"ipcs inside lists the host's queue {qid}: {r.stdout!r}")
        # inside -> host: a queue the sandbox creates is not the host's, while the sandbox lives
        p = env.popen(["sh", "-c", f"{PROBE} msgget {key_inside} && echo created && exec {PROBE} hold 30"])
        out = wait_line(p.stdout, "created")
        sf.check("msqid=" in out, f"the probe could not create a queue inside: {out!r}")
        found = host_msgget(key_inside, 0)
        if found >= 0:
            _libc.msgctl(found, IPC_RMID, None)
        sf.eq(found, -errno.ENOENT, "the sandbox's SysV message queue is visible on the host (msgget result)")
        p.send_signal(signal.SIGTERM)
        sf.eq(p.wait(10), 128 + signal.SIGTERM, "exit status after SIGTERM")
    finally:
        _libc.msgctl(qid, IPC_RMID, None)
        try:
            os.unlink(shm)
        except FileNotFoundError:
            pass


ALLOWED_MOUNTS = ("/", "/usr", "/tmp", "/sys", "/sys/firmware", "/dev", "/proc")
PROBE_DIR = sf.PROBE_DIR_INSIDE


def test_mounts_private(env):
    p = env.popen(["sh", "-c", "cat /proc/self/mountinfo; echo END; exec sleep 30"])
    out = wait_line(p.stdout, "END")
    try:
        # From the host: the sandbox's root is never attached in the host's mount namespace.
        host = [m for m in sf.host_mounts() if env.root in m[0] or env.root in m[2]]
        sf.eq(host, [], "the sandbox's mounts are visible on the host")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    lines = out.split("END")[0].strip().splitlines()
    sf.check(len(lines) < 40, f"{len(lines)} mounts inside")
    points = []
    for line in lines:
        f = line.split()
        mp = f[4]
        points.append(mp)
        sf.check(mp in ALLOWED_MOUNTS or (mp.startswith(("/dev/", "/proc/")) or mp == PROBE_DIR),
                 f"unexpected mount inside: {line}")
        sf.check(env.root not in line, f"a mount inside names the host's state directory: {line}")
        sf.check("/home" not in line and "/run" not in line, f"a host mount is visible inside: {line}")
    sf.eq(points[0], "/", "the first mount is the root")
    root_fs = lines[0].split(" - ")[1].split()[0]
    sf.eq(root_fs, "fuse.sandbox-unionfs", "the root's file system type")
    for want in ("/proc", "/dev", "/dev/pts", "/sys", "/tmp", "/usr"):
        sf.check(want in points, f"{want} is not mounted inside: {points}")


def caps_of(out):
    st = status_of(out)
    return {k: st.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")}


def test_capabilities(env):
    # Root inside: podman's default set (tests/integration/test_capabilities.py has the details), as
    # permitted, effective and bounding set; another uid nothing but the bounding set; --cap-drop ALL:
    # nothing at all. no_new_privs and the filter in every case.
    zero = "0000000000000000"
    dflt = "00000000800405fb"
    root = {"CapInh": zero, "CapPrm": dflt, "CapEff": dflt, "CapBnd": dflt, "CapAmb": zero, "NoNewPrivs": "1",
            "Seccomp": "2"}
    user = dict(root, CapPrm=zero, CapEff=zero)
    none = dict(user, CapBnd=zero)
    for extra, want in (([], root), (["-u", "1000"], user), (["-u", "0:0", "-t"], root),
                        (["--cap-drop", "ALL"], none), (["--cap-drop", "ALL", "-u", "1000"], none)):
        r = env.run(extra + ["cat", "/proc/self/status"])
        sf.eq(r.returncode, 0, f"exit status with {extra}: {r}")
        sf.eq(caps_of(r.stdout.replace("\r", "")), want, f"capabilities/no_new_privs/seccomp with {extra}")


def test_seccomp_default_blocks(env):
    r = env.run([PROBE, "syscalls"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    got = r.kv()
    bad = {n: got.get(n) for n in MUST_EPERM if got.get(n) != "EPERM"}
    sf.eq(bad, {}, "syscalls the default filter must refuse with EPERM (name: result)")
    sf.check(got.get("clone3") in ("ENOSYS", "EPERM"), f"clone3 gave {got.get('clone3')}")
    sf.eq((got.get("unknown_1000"), got.get("unknown_500")), ("ENOSYS", "ENOSYS"), "unknown syscall numbers")
    sf.eq(got.get("x32_getpid"), f"SIGNAL{SIGSYS}", "a call through the x32 ABI must kill the process")
    sf.eq((got.get("getpid"), got.get("clone_plain"), got.get("socketpair_unix")), ("OK", "OK", "OK"),
          "allowed calls (fork-like clone, getpid, socketpair(AF_UNIX))")
    # chroot passes the filter (root inside has CAP_SYS_CHROOT): the kernel reads the bad path
    sf.eq(got.get("chroot"), "EFAULT", "chroot (allowed by the filter, bad path)")
    # The same with another user inside.
    r2 = env.run(["-u", "1000", PROBE, "syscalls"])
    bad = {n: r2.kv().get(n) for n in MUST_EPERM if r2.kv().get(n) != "EPERM"}
    sf.eq(bad, {}, "with -u 1000: syscalls the default filter must refuse with EPERM")
    # Oracle: without the filter, the probe's arguments give other errors, so EPERM above is the filter's.
    u = env.run(["--seccomp", "unconfined", PROBE, "syscalls"])
    sf.eq(u.returncode, 0, f"exit status unconfined {u}")
    same = {n: u.kv().get(n) for n in DISTINGUISHABLE if u.kv().get(n) in (None, "EPERM")}
    sf.eq(same, {}, "ORACLE (test bug?): without a filter these should not fail with EPERM")


def test_host_uid_unprivileged(env):
    arg = f"1234.{token()}"
    p = env.popen(["sleep", arg])
    try:
        pid = find_host_pid(["sleep", arg])
        st = sf.proc_status(pid)
        uids = [int(x) for x in st["Uid"].split()]
        gids = [int(x) for x in st["Gid"].split()]
        sf.check(all(u >= 65536 for u in uids), f"the program's host uids {uids} (must be >= 65536, never 0)")
        sf.check(all(g >= 65536 for g in gids), f"the program's host gids {gids} (must be >= 65536, never 0)")
        sf.eq(st["NSpid"].split(), [str(pid), "2"], "NSpid of the program (host pid, pid 2 inside)")
        init = int(st["PPid"])
        ist = sf.proc_status(init)
        sf.eq(ist["NSpid"].split()[-1], "1", "the program's parent is the sandbox's PID 1")
        sf.eq([int(x) for x in ist["Uid"].split()], [uids[0]] * 4, "the init's host uids (root inside)")
        sf.eq(ist["CapEff"], "0000000000000000", "the init's effective capabilities (after the program started)")
    finally:
        p.send_signal(signal.SIGTERM)
    sf.eq(p.wait(10), 128 + signal.SIGTERM, "exit status after SIGTERM to sandbox-run")
    arg = f"1234.{token()}"
    p = env.popen(["-u", "1000:1001", "sleep", arg])
    try:
        pid = find_host_pid(["sleep", arg])
        st = sf.proc_status(pid)
        with open(f"/proc/{pid}/uid_map") as f:
            inside, base, count = (int(x) for x in f.read().split())
        sf.eq((inside, count), (0, 65536), "the sandbox maps 65536 ids from 0")
        sf.check(base >= 65536, f"host id base {base}")
        sf.eq([int(x) for x in st["Uid"].split()], [base + 1000] * 4, "host uids of -u 1000 (base + 1000)")
        sf.eq([int(x) for x in st["Gid"].split()], [base + 1001] * 4, "host gids of -u 1000:1001")
        # The init takes the program's ids once it has started it (it keeps no capability).
        ist = sf.proc_status(int(st["PPid"]))
        sf.eq([int(x) for x in ist["Uid"].split()], [base + 1000] * 4, "the init's host uids under -u 1000")
        sf.eq(ist["CapEff"], "0000000000000000", "the init's effective capabilities under -u 1000")
        os.kill(pid, signal.SIGKILL)  # from the host (signal forwarding is tested elsewhere)
    finally:
        if p.poll() is None:
            p.wait(10)
    sf.eq(p.returncode, 128 + signal.SIGKILL, "exit status after the program was killed")


def test_upper_keeps_image_ids(env):
    upper = env.mkdir("keep", "upper")
    r = env.run(["--upper", upper, "sh", "-c", "echo root-data > /root/persist; mkdir -p /srv/x; "
                                               "echo x > /srv/x/f"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    r = env.run(["--upper", upper, "-u", "1000", "sh", "-c", "echo u > /var/tmp/u1000"])
    sf.eq(r.returncode, 0, f"exit status as 1000 {r}")
    for rel, ids in (("root/persist", (0, 0)), ("srv/x/f", (0, 0)), ("srv/x", (0, 0)),
                     ("var/tmp/u1000", (1000, 1000))):
        st = os.lstat(os.path.join(upper, rel))
        sf.eq((st.st_uid, st.st_gid), ids, f"owner of {rel} in the --upper directory on disk (image ids)")
    r = env.run(["--upper", upper, "sh", "-c", "cat /root/persist /var/tmp/u1000"])
    sf.eq((r.returncode, r.stdout), (0, "root-data\nu\n"), "changes kept in --upper across runs")
    left = [n for n in os.listdir(env.path("keep")) if n != "upper"]
    sf.eq(left, [], "work directories left beside --upper")


def test_throwaway_upper_private(env):
    arg = f"30.{token()}"
    p = env.popen(["sh", "-c", f"echo secret > /root/file; echo ready; exec sleep {arg}"])
    try:
        wait_line(p.stdout, "ready")
        sid = env.wait_sandbox_id()
        data = os.path.join(env.data, "sandboxes", sid)
        for d in (env.data, os.path.join(env.data, "sandboxes"), data):
            st = os.stat(d)
            sf.eq((oct(st.st_mode & 0o7777), st.st_uid), (oct(0o700), 0), f"mode and owner of {d}")
        f = os.path.join(data, "upper", "root", "file")
        fst = os.lstat(f)
        sf.eq((fst.st_uid, fst.st_gid), (0, 0), "owner of a file root wrote, in the throw-away upper (image ids)")
        prog = find_host_pid(["sleep", arg])
        sandbox_uid = int(sf.proc_status(prog)["Uid"].split()[0])

        def probe_as(uid):
            rd, wr = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(rd)
                res = b"readable"
                try:
                    os.setgroups([])
                    os.setresgid(uid, uid, uid)
                    os.setresuid(uid, uid, uid)
                    open(f).read()
                except PermissionError:
                    res = b"EACCES"
                except BaseException as e:  # noqa: BLE001
                    res = repr(e).encode()
                os.write(wr, res)
                os._exit(0)
            os.close(wr)
            out = os.read(rd, 200)
            os.close(rd)
            os.waitpid(pid, 0)
            return out.decode()
        for uid in (sandbox_uid, 65534, 1000):
            sf.eq(probe_as(uid), "EACCES", f"host uid {uid} reading the upper layer {f}")
    finally:
        p.send_signal(signal.SIGTERM)
    sf.eq(p.wait(10), 128 + signal.SIGTERM, "exit status")
    sf.check(not os.path.exists(os.path.join(env.state, sid)), "the sandbox's directory is left after exit")
    sf.check(not os.path.exists(data), "the sandbox's data directory is left after exit")
    sf.eq(env.sandbox_ids(), [], "sandbox directories in the state directory after the sandbox")
    for shared in sf.SHARED_STATE:
        p = os.path.join(env.state, shared)
        if os.path.exists(p):
            st = os.lstat(p)
            sf.eq((oct(st.st_mode & 0o7777), st.st_uid), (oct(0o700), 0), f"mode and owner of {p}")


def test_hostile_upper_removed(env):
    """What a sandbox leaves in its throw-away upper is removed after it however it is built: a chain
    of directories deeper than any fd budget, made read-only, with symlinks to / and to a host
    directory on every level. Removal never follows them: the host directory is untouched."""
    snap = sf.Snapshot(env)
    canary = env.path(f"canary-{token()}")
    os.mkdir(canary)
    with open(f"{canary}/keep", "w") as f:
        f.write("keep")
    script = (f"mkdir /root/t && cd /root/t || exit 1; i=0; while [ $i -lt 300 ]; do "
              f"mkdir d && ln -s / d/root && ln -s {canary} d/host && : > d/file && mkfifo d/fifo && cd d "
              "|| exit 1; i=$((i+1)); done; chmod -R 0500 /root/t && echo built $i")
    r = env.run(["sh", "-c", script], timeout=60)
    sf.eq((r.returncode, r.stdout.strip()), (0, "built 300"), f"the program built its tree ({r})")
    sf.eq(sorted(os.listdir(canary)), ["keep"], "the host directory the symlinks named")
    with open(f"{canary}/keep") as f:
        sf.eq(f.read(), "keep", "the file in the host directory")
    sf.eq(env.sandbox_ids(), [], "sandbox directories in the state directory after the sandbox")
    expect_clean(env, snap, "a deep, read-only, symlink-laden upper")


# ==================================================================================================
# limits

def test_memory_limit(env):
    snap = sf.Snapshot(env)
    r = env.run(["--memory", "32m", PROBE, "hog", "2048"], stats=True, timeout=60)
    sf.eq(r.returncode, 137, f"exit status of a memory hog {r}")
    lines = r.stderr.strip().splitlines()
    sf.eq(len(lines), 1, f"one line on stderr: {r.stderr!r}")
    sf.check("memory" in lines[0].lower(), f"the message does not mention memory: {lines[0]!r}")
    sf.check(r.stats is not None, "no --stats file")
    sf.eq((r.stats.get("status"), r.stats.get("memory_limit_hit"), r.stats.get("limit"),
           r.stats.get("time_limit_hit")), (137, True, "memory", False), f"--stats {r.stats}")
    # A program that stays below the limit is not affected.
    r = env.run(["--memory", "64m", PROBE, "hog", "16"], stats=True)
    sf.eq((r.returncode, r.kv().get("allocated")), (0, "16"), f"16 MiB below a 64m limit {r}")
    sf.eq((r.stats.get("memory_limit_hit"), r.stats.get("limit")), (False, None), "--stats below the limit")
    expect_clean(env, snap, "memory limit")


def test_pids_limit_forkbomb(env):
    snap = sf.Snapshot(env)
    mark = token()
    p = env.popen(["--pids", "50", "--timeout", "3", PROBE, "forkbomb", "1000", "hold", mark])
    t0 = time.monotonic()
    out = wait_line(p.stdout, "err=EAGAIN", timeout=10)
    # While it holds: at most 50 of its processes (the init counts too), and the host is fine.
    # (sandbox-run itself carries the mark too; the init, a clone of it, counts against the limit)
    marked = [x for x in sf.processes_mentioning(mark) if x != p.pid]
    sf.check(len(marked) <= 50, f"{len(marked)} processes of the fork bomb (limit 50)")
    forked = int(out.split("forked=")[1].split()[0])
    sf.check(30 <= forked < 50, f"forked {forked} children under --pids 50")
    subprocess.run(["true"], check=True)  # the host can still fork
    rc = p.wait(20)
    elapsed = time.monotonic() - t0
    sf.eq(rc, 124, f"exit status (--timeout ended the fork bomb); stderr {p.stderr.read()!r}")
    sf.check(elapsed < 8, f"the sandbox took {elapsed:.1f}s to end with --timeout 3")
    sf.eq(sf.processes_mentioning(mark), [], "fork bomb processes left on the host")
    expect_clean(env, snap, "fork bomb")


def test_pids_limit_shell_bomb(env):
    snap = sf.Snapshot(env)
    t0 = time.monotonic()
    # (b): the top shell forks once, before the bomb fills the bound; had it forked both sides of b|b&
    # itself, the second fork could fail and end the program (exit 2) before --timeout.
    p = env.popen(["--pids", "50", "--timeout", "2", "sh", "-c", "b(){ b|b& }; (b); exec sleep 60"],
                  stderr=subprocess.DEVNULL)
    sid = env.wait_sandbox_id()
    peak = 0
    while p.poll() is None and time.monotonic() - t0 < 1.8:
        cg = [c for c in sf.sandbox_cgroups() if c.endswith(sid) and "/pids/" in c]
        for c in cg:
            try:
                # the program's cgroup has the bound (its union server has a small one of its own)
                with open(os.path.join(c, "program", "pids.current")) as f:
                    peak = max(peak, int(f.read()))
                with open(os.path.join(c, "program", "pids.max")) as f:
                    sf.eq(f.read().strip(), "50", "pids.max of the sandbox program's cgroup")
            except FileNotFoundError:
                pass
        time.sleep(0.05)
    rc = p.wait(20)
    elapsed = time.monotonic() - t0
    sf.eq(rc, 124, "exit status of a shell fork bomb ended by --timeout")
    sf.check(elapsed < 8, f"took {elapsed:.1f}s with --timeout 2")
    sf.check(peak <= 50, f"pids.current reached {peak} (limit 50)")
    # Not one of the bomb's processes outlives the sandbox (counted by their cgroup, not by the host's
    # process count, which other work on the machine moves).
    left = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if f"sandbox-{sid}" in f.read():
                    left.append(pid)
        except OSError:
            pass
    sf.eq(left, [], "processes of the sandbox after it ended")
    expect_clean(env, snap, "shell fork bomb")


def test_timeout(env):
    r = env.run(["--timeout", "1", PROBE, "spin"], stats=True)
    sf.eq(r.returncode, 124, f"exit status {r}")
    sf.check(0.95 <= r.elapsed < 3, f"--timeout 1 ended the program after {r.elapsed:.2f}s")
    sf.check("time limit" in r.stderr or "timeout" in r.stderr, f"stderr: {r.stderr!r}")
    sf.eq((r.stats["time_limit_hit"], r.stats["limit"], r.stats["memory_limit_hit"]), (True, "timeout", False),
          f"--stats {r.stats}")
    r = env.run(["--timeout", "0.2", "sleep", "10"])
    sf.eq(r.returncode, 124, f"--timeout 0.2 sleep 10 {r}")
    sf.check(r.elapsed < 2, f"--timeout 0.2 took {r.elapsed:.2f}s")
    r = env.run(["--timeout", "5", "true"], stats=True)
    sf.eq((r.returncode, r.stats["time_limit_hit"], r.stats["limit"]), (0, False, None), "a quick program")


def test_cpu_time(env):
    r = env.run(["--cpu-time", "0.5", PROBE, "spin"], stats=True)
    sf.eq(r.returncode, 124, f"exit status {r}")
    sf.check(0.45 <= r.elapsed < 3, f"--cpu-time 0.5 ended a spinning program after {r.elapsed:.2f}s")
    sf.check("cpu" in r.stderr.lower(), f"stderr does not mention the CPU time limit: {r.stderr!r}")
    sf.eq((r.stats["time_limit_hit"], r.stats["limit"]), (True, "cpu-time"), f"--stats {r.stats}")
    sf.check(r.stats["cpu_time_us"] >= 450000, f"cpu_time_us {r.stats['cpu_time_us']}")
    # Sleeping uses no CPU time: not killed.
    r = env.run(["--cpu-time", "0.3", "sleep", "0.8"], stats=True)
    sf.eq((r.returncode, r.stats["limit"]), (0, None), f"a sleeping program under --cpu-time {r}")


# ==================================================================================================
# what reaches the program

def test_no_fd_leak(env):
    extra = os.open("/etc/hostname", os.O_RDONLY)
    high = os.dup2(extra, 100, inheritable=True)
    os.set_inheritable(extra, True)
    env.fds += [extra, high]
    for args in ([], ["-t"]):
        r = env.run(args + [PROBE, "fds"], pass_fds=(extra, high))
        sf.eq(r.returncode, 0, f"exit status {args} {r}")
        fds = sorted(int(line.split()[0][3:]) for line in r.stdout.replace("\r", "").splitlines()
                     if line.startswith("fd="))
        sf.eq(fds, [0, 1, 2], f"fds open in the program {args}: {r.stdout!r}")


def _tiocsti_run(env, extra):
    m, s = sf.openpty()
    env.fds += [m, s]

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = env.popen(extra + [PROBE, "tiocsti", "0"], stdin=s, start_new_session=True, preexec_fn=ctty)
    out, err = p.communicate(timeout=20)
    time.sleep(0.05)
    return p.returncode, out.decode(), err.decode(), sf.pty_input_pending(s)


def test_tiocsti_blocked(env):
    # Without -t the caller's terminal never reaches the program: its stdin is a pipe that sandbox-run
    # fills from the terminal (tests/integration/test_terminal.py has the rest), so there is nothing
    # to push characters into, with or without the filter (which refuses TIOCSTI on any terminal:
    # test_seccomp_default_blocks, on a pty of the probe's own).
    for extra, want in (([], "EPERM"), (["--seccomp", "unconfined"], "ENOTTY")):
        rc, out, err, pending = _tiocsti_run(env, extra)
        sf.eq(rc, 0, f"exit status {extra} (stderr {err!r})")
        kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        sf.eq(kv.get("isatty"), "0", f"the probe's stdin is the test's terminal {extra}: {out!r}")
        sf.eq((kv.get("tiocsti"), kv.get("pushed")), (want, "0"), f"TIOCSTI on the program's stdin {extra}")
        sf.eq(pending, 0, f"bytes pushed into the caller's terminal input queue {extra}")


def test_init_protected(env):
    r = env.run(["--timeout", "10", PROBE, "ptrace-init"])
    kv = r.kv()
    sf.eq(r.returncode, 0, f"exit status (the init must survive and report the program's exit) {r}")
    sf.eq((kv.get("pid"), kv.get("ppid")), ("2", "1"), "probe pid/ppid")
    sf.eq({k: kv.get(k) for k in ("ptrace_attach", "ptrace_seize", "process_vm_readv", "pidfd_getfd")},
          {"ptrace_attach": "EPERM", "ptrace_seize": "EPERM", "process_vm_readv": "EPERM", "pidfd_getfd": "EPERM"},
          "ptrace-like access to the init")
    sf.check(kv.get("open_mem") in ("EACCES", "EPERM"), f"opening /proc/1/mem: {kv.get('open_mem')}")
    sf.check(kv.get("read_environ") in ("EACCES", "EPERM"), f"reading /proc/1/environ: {kv.get('read_environ')}")
    sf.eq((kv.get("init_alive"), kv.get("init_state")), ("1", "S"), "the init after SIGTERM/INT/STOP/KILL/SEGV")


def test_program_oom_score(env):
    """The program's oom_score_adj is 1000 (the OOM killer's first choice, before the union's server in
    the sandbox's cgroup), not what the init or the caller has: the init is shielded
    (-1000 where the host lets us), and a program that inherited that could never be OOM-killed. Here
    root cannot set -1000 (no CAP_SYS_RESOURCE), so the caller raises its own to 500, which the init
    inherits; the program's own value must still be set (it failed silently while the program was not
    dumpable)."""
    def raise_score():
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("500")
    for args, what in (([], "as root"), (["--user", "1000:1000"], "as --user 1000")):
        p = subprocess.run(env.argv(args + ["cat", "/proc/self/oom_score_adj"], probe=False),
                           env=env.environ(None), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           preexec_fn=raise_score, timeout=30)
        sf.eq((p.returncode, p.stdout.strip()), (0, "1000"), f"the program's oom_score_adj {what} (stderr {p.stderr!r})")


# ==================================================================================================
# exit statuses and messages

def test_exit_statuses(env):
    for cmd, want in ((["true"], 0), (["sh", "-c", "exit 7"], 7), (["sh", "-c", "exit 255"], 255),
                      (["sh", "-c", "kill -USR1 $$"], 128 + signal.SIGUSR1),
                      (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM)):
        r = env.run(cmd)
        sf.eq(r.returncode, want, f"exit status of {cmd} ({r})")
        sf.eq(r.stderr, "", f"stderr of {cmd}")
    r = env.run(["sh", "-c", "kill -SEGV $$"], stats=True)
    sf.eq((r.returncode, r.stats["signal"], r.stats["limit"]), (128 + signal.SIGSEGV, signal.SIGSEGV, None),
          f"killed by SIGSEGV {r} {r.stats}")


def test_setup_errors_125(env):
    snap = sf.Snapshot(env)
    slow = []
    missing = env.path("does-not-exist")
    afile = env.write("plainfile", "x")
    cases = [
        (["--bogus-option", "true"], ["bogus-option"]),
        ([], ["no command"]),
        (["--image", missing, "true"], ["--image", missing]),
        (["--image", afile, "true"], ["--image", afile]),
        (["--bind", f"{missing}:/x", "true"], ["--bind", missing]),
        (["--bind", "nocolon", "true"], ["--bind", "nocolon"]),
        (["--layer", missing, "true"], ["--layer", missing]),
        # A missing --upper is created (test_bounds.py), but not its parent; a file is no upper.
        (["--upper", missing + "/upper", "true"], ["--upper", missing, "parent"]),
        (["--upper", afile, "true"], ["--upper", afile, "not a directory"]),
        (["--memory", "1", "true"], ["--memory"]),
        (["--pids", "0", "true"], ["--pids"]),
        (["--timeout", "soon", "true"], ["--timeout"]),
        (["-w", "relative", "true"], ["--workdir", "absolute"]),
        (["-w", "/no/such/dir", "true"], ["/no/such/dir"]),
        (["-u", "bob", "true"], ["--user", "bob"]),
        (["--rlimit", "bogus=1", "true"], ["--rlimit", "unknown resource 'bogus'"]),
        (["--rlimit", "nofile=lots", "true"], ["--rlimit", "'lots' is not a number"]),
        (["--rlimit", "fsize=1x", "true"], ["--rlimit", "'1x' is not a size"]),
        (["--rlimit", "nofile=64:32", "true"], ["--rlimit", "soft limit (64) is above the hard limit (32)"]),
        (["--cpus", str(os.cpu_count() + 1), "true"], ["--cpus", f"this host has {os.cpu_count()} CPU"]),
        (["--disk", "10x", "true"], ["--disk", "'10x'"]),
        (["--tmpfs", "/x:big", "true"], ["--tmpfs", "'big'"]),
        (["--seccomp", missing, "true"], ["seccomp", missing]),
        (["--net", "nowhere", "true"], ["--net"]),
    ]
    for args, words in cases:
        r = env.run(args, probe=False)
        sf.eq(r.returncode, 125, f"exit status of sandbox-run {args} ({r})")
        lines = r.stderr.strip().splitlines()
        # (getopt's own messages start with argv[0], here a full path)
        sf.check(len(lines) >= 1 and "sandbox-run:" in lines[0], f"{args}: stderr {r.stderr!r}")
        for w in words:
            sf.check(w.lower() in r.stderr.lower(), f"{args}: stderr does not name {w!r}: {r.stderr!r}")
        sf.eq(r.stdout, "", f"{args}: stdout")
        if r.elapsed > 2:
            slow.append((" ".join(args[:2]), round(r.elapsed, 2)))
    sf.eq(slow, [], "failed set-ups that took more than 2 s (options, seconds)")
    expect_clean(env, snap, "failed set-ups")


def test_exec_errors_126_127(env):
    snap = sf.Snapshot(env)
    slow = []
    for cmd, want, words in ((["/etc/hostname"], 126, ["/etc/hostname", "cannot execute"]),
                             (["/tmp"], 126, ["/tmp", "cannot execute"]),
                             (["/no/such/program"], 127, ["/no/such/program", "not found"]),
                             (["no-such-command-sbx"], 127, ["no-such-command-sbx", "not found"])):
        r = env.run(cmd, stats=True)
        sf.eq(r.returncode, want, f"exit status of {cmd} ({r})")
        sf.check(r.stderr.startswith("sandbox-run:") and all(w in r.stderr for w in words),
                 f"{cmd}: stderr {r.stderr!r} should name {words}")
        sf.eq(r.stats.get("status"), want, f"--stats of {cmd}: {r.stats}")
        slow.append((cmd[0], round(r.elapsed, 2))) if r.elapsed > 2 else None
    # A sandbox that failed to start is torn down at once (its union server must not be waited for).
    sf.eq(slow, [], "failed starts that took more than 2 s (command, seconds)")
    expect_clean(env, snap, "exec failures")


# ==================================================================================================
# options

def env_of(out):
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_environment(env):
    r = env.run(["env"], env={"TERM": "xterm-sbx", "SBX_LEAK_CHECK": "1", "LD_PRELOAD": "/nonexistent.so"})
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq(env_of(r.stdout), {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                             "HOME": "/root", "TERM": "xterm-sbx"}, "the program's environment")
    r = env.run(["-e", "K=V", "-e", "EMPTY=", "-e", "DUP=1", "-e", "DUP=2", "-e", "PATH=/usr/bin", "env"],
                drop_env=("TERM",))
    sf.eq(env_of(r.stdout), {"PATH": "/usr/bin", "HOME": "/root", "K": "V", "EMPTY": "", "DUP": "2"},
          "-e (PATH overridden, last DUP wins, no TERM when the caller has none)")
    sf.eq(r.stdout.count("DUP="), 1, "DUP set twice")
    r = env.run(["-u", "1000", "env"], drop_env=("TERM",))
    sf.eq(sorted(env_of(r.stdout)), ["HOME", "PATH"], "variables of -u 1000")
    r = env.run(["-e", "=x", "env"], probe=False)
    sf.eq(r.returncode, 125, "-e without a name")


def test_workdir(env):
    for d in ("/tmp", "/var/tmp", "/usr/bin"):
        r = env.run(["-w", d, "pwd"])
        sf.eq((r.returncode, r.stdout.strip()), (0, d), f"-w {d}")
    r = env.run(["pwd"])
    sf.eq(r.stdout.strip(), "/", "default working directory")
    r = env.run(["-w", "/root", "-u", "1000", "pwd"])
    sf.eq(r.returncode, 125, f"-w into a directory the user cannot enter {r}")
    sf.check("/root" in r.stderr, f"message: {r.stderr!r}")


def test_user_ids(env):
    r = env.run(["-u", "1000:1001", "cat", "/proc/self/status"])
    st = status_of(r.stdout)
    sf.eq((st["Uid"].split(), st["Gid"].split(), st["Groups"]), (["1000"] * 4, ["1001"] * 4, ""),
          f"-u 1000:1001 ids and supplementary groups {r}")
    r = env.run(["-u", "1000", "sh", "-c", "id -u; id -g; touch /tmp/f; stat -c %u:%g /tmp/f"])
    sf.eq(r.stdout.split(), ["1000", "1000", "1000:1000"], f"-u 1000 {r}")
    r = env.run(["sh", "-c", "id -u; id -g; id -G"])
    sf.eq(r.stdout.split(), ["0", "0", "0"], "default ids")


PY_WRITE_ERRNO = ("import sys, errno\ntry:\n    open(sys.argv[1], 'w').write('x')\n    print('OK')\n"
                  "except OSError as e:\n    print(errno.errorcode[e.errno])\n")


def test_bind_ro_rw(env):
    ro = env.mkdir("ro")
    env.write("ro/hello", "from-host\n")
    rw = env.mkdir("rw", mode=0o777)
    hfile = env.write("single-file", "single\n")
    r = env.run(["--bind", f"{ro}:/mnt/ro:ro", "--bind", f"{rw}:/mnt/rw", "--bind", f"{hfile}:/etc/single:ro",
                 "sh", "-c", f"cat /mnt/ro/hello /etc/single; {PY} -c \"$0\" /mnt/ro/new; "
                 f"{PY} -c \"$0\" /mnt/ro/hello; echo inside > /mnt/rw/out; echo rc=$?", PY_WRITE_ERRNO])
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq(r.stdout.splitlines(), ["from-host", "single", "EROFS", "EROFS", "rc=0"], "ro and rw binds")
    with open(os.path.join(rw, "out")) as f:
        sf.eq(f.read(), "inside\n", "a write in a rw bind is visible on the host")
    st = os.lstat(os.path.join(rw, "out"))
    sf.check(st.st_uid >= 65536 and st.st_gid >= 65536,
             f"a file the sandbox wrote in a rw bind is owned by host {st.st_uid}:{st.st_gid} (never host root)")
    sf.eq(sorted(os.listdir(ro)), ["hello"], "the ro source on the host")
    # relative sources are taken from the caller's working directory
    cwd = os.getcwd()
    try:
        os.chdir(env.root)
        r = env.run(["--bind", "ro:/mnt/rel:ro", "cat", "/mnt/rel/hello"])
    finally:
        os.chdir(cwd)
    sf.eq((r.returncode, r.stdout), (0, "from-host\n"), "relative --bind source")


def test_tmpfs_size(env):
    script = ("import errno\nn = 0\ntry:\n    with open('/scratch/f', 'wb') as f:\n        for i in range(64):\n"
              "            f.write(b'x' * 65536); f.flush(); n += 65536\n    print('OK', n)\n"
              "except OSError as e:\n    print(errno.errorcode[e.errno], n)\n")
    r = env.run(["--tmpfs", "/scratch:1m", PY, "-c", script])
    sf.eq(r.returncode, 0, f"exit status {r}")
    err, n = r.stdout.split()
    sf.eq(err, "ENOSPC", "writing 4 MiB to a 1m tmpfs")
    sf.check(512 * 1024 <= int(n) <= 1024 * 1024, f"{n} bytes fitted in a 1m tmpfs")
    r = env.run(["--tmpfs", "/scratch", "sh", "-c", "echo hi > /scratch/f && cat /scratch/f && "
                 "grep ' /scratch ' /proc/self/mountinfo"])
    sf.eq(r.returncode, 0, f"--tmpfs without a size {r}")
    sf.check("tmpfs" in r.stdout, f"/scratch is not a tmpfs: {r.stdout!r}")


def test_rlimit_nofile(env):
    r = env.run(["--rlimit", "nofile=64", "sh", "-c", "ulimit -n; ulimit -Hn"])
    sf.eq(r.stdout.split(), ["64", "64"], f"--rlimit nofile=64 {r}")
    r = env.run(["--rlimit", "nofile=32:128", "sh", "-c", "ulimit -Sn; ulimit -Hn"])
    sf.eq(r.stdout.split(), ["32", "128"], f"--rlimit nofile=32:128 {r}")
    r = env.run(["--rlimit", "nofile=64:32", "true"], probe=False)
    sf.eq(r.returncode, 125, "soft above hard")
    r = env.run(["sh", "-c", "ulimit -c"])
    sf.eq(r.stdout.strip(), "0", "core dumps are off by default")


def make_image(env, with_probe=False, usr_links=False):
    """A tiny image directory: a marker file; with WITH_PROBE a copy of the (static) probe; with
    USR_LINKS an empty /usr (for --bind /usr:/usr:ro) and the merged-usr links into it."""
    img = env.mkdir("img")
    if with_probe:
        shutil.copy(sf.probe_host_path(), os.path.join(img, "probe-static"))
        os.chmod(os.path.join(img, "probe-static"), 0o755)
    env.write("img/marker", "image\n")
    if usr_links:
        for link in ("bin", "lib", "lib64"):
            if os.path.exists(f"/usr/{link}"):
                os.symlink(f"usr/{link}", os.path.join(img, link))
        os.mkdir(os.path.join(img, "usr"))
    return img


def test_image_dir(env):
    # The host's /usr bound into an image that links to it; the probe comes from its usual bind.
    img = make_image(env, usr_links=True)
    before = sorted(os.listdir(img))
    r = env.run(["--image", img, PROBE, "fds"])
    sf.eq(r.returncode, 0, f"the probe in an image without /usr {r}")
    sf.eq(sorted(line.split()[0] for line in r.stdout.splitlines()), ["fd=0", "fd=1", "fd=2"], "fds")
    r = env.run(["--image", img, "sh", "-c", "true"])
    sf.eq(r.returncode, 127, f"no host /usr in an image without it {r}")
    r = env.run(["--image", img, "--bind", "/usr:/usr:ro", "sh", "-c", "cat /marker; ls /; echo new > /marker; "
                 "cat /marker; cat /etc/hostname 2>/dev/null || echo no-etc"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    out = r.stdout.split()
    sf.eq(out[0], "image", "the image's file")
    sf.check("etc" not in out and "usr" in out and "marker" in out, f"the root is the image, not the host one: "
                                                                      f"{out}")
    sf.eq(out[-2:], ["new", "no-etc"], "writes go to the upper; no generated /etc in an image")
    sf.eq(sorted(os.listdir(img)), before, "the image directory on the host was changed")
    with open(os.path.join(img, "marker")) as f:
        sf.eq(f.read(), "image\n", "the image's file on the host")


def test_exec_from_union(env):
    """Programs in the image, a layer or the upper (all served by the union) can be executed."""
    img = make_image(env, with_probe=True)
    lay = env.mkdir("layer")
    shutil.copy(sf.probe_host_path(), os.path.join(lay, "probe-in-layer"))
    os.chmod(os.path.join(lay, "probe-in-layer"), 0o755)
    results = {}
    r = env.run(["--image", img, "/probe-static", "fds"], probe=False)
    results["image"] = (r.returncode, r.stderr.strip())
    r = env.run(["--layer", lay, "/probe-in-layer", "fds"], probe=False)
    results["layer"] = (r.returncode, r.stderr.strip())
    r = env.run(["sh", "-c", "cp /usr/bin/true /root/t && chmod +x /root/t && /root/t && echo upper-ok"])
    results["upper"] = (r.returncode, r.stderr.strip())
    r = env.run(["sh", "-c", "cp /usr/bin/true /tmp/t && /tmp/t && echo tmpfs-ok"])
    sf.eq((r.returncode, r.stdout.strip()), (0, "tmpfs-ok"), "a program copied to /tmp (tmpfs) runs")
    sf.eq(results, {"image": (0, ""), "layer": (0, ""), "upper": (0, "")},
          "executing files served by the union (exit status, stderr)")


def test_layers_order(env):
    l1, l2 = env.mkdir("l1"), env.mkdir("l2")
    env.write("l1/m", "l1\n")
    env.write("l2/m", "l2\n")
    env.write("l2/only2", "only2\n")
    env.write("l1/etc/hostname", "from-layer\n")
    r = env.run(["--layer", l1, "--layer", l2, "sh", "-c", "cat /m /only2 /etc/hostname"])
    sf.eq(r.stdout.split(), ["l1", "only2", "from-layer"], f"--layer l1 --layer l2 (first is topmost) {r}")
    r = env.run(["--layer", l2, "--layer", l1, "sh", "-c", "cat /m /only2"])
    sf.eq(r.stdout.split(), ["l2", "only2"], f"--layer l2 --layer l1 {r}")
    img = make_image(env, usr_links=True)
    env.write("l2/marker", "layer\n")
    r = env.run(["--image", img, "--layer", l2, "--bind", "/usr:/usr:ro", "/usr/bin/cat", "/marker", "/m"])
    sf.eq((r.returncode, r.stdout.split()), (0, ["layer", "l2"]), f"a layer over an --image {r}")


def test_tty(env):
    m, s = sf.openpty(rows=37, cols=101)
    env.fds.append(m)
    p = env.popen(["-t", "sh", "-c", "tty; stty size; echo ready; read x; echo got=$x; exit 3"],
                  stdin=s, stdout=s, stderr=s, start_new_session=True)
    os.close(s)
    out = sf.read_master(m, p, timeout=15, until=b"ready")
    os.write(m, b"hello\r")
    out += sf.read_master(m, p, timeout=15)
    rc = p.wait(10)
    text = out.decode(errors="replace").replace("\r", "")
    lines = [line for line in text.splitlines() if line]
    sf.eq(rc, 3, f"exit status with -t (output {text!r})")
    sf.eq(lines[0], "/dev/pts/0", f"tty inside: {text!r}")
    sf.eq(lines[1], "37 101", f"stty size inside: {text!r}")
    sf.check("got=hello" in lines, f"input typed on the terminal did not reach the program: {text!r}")


def test_sigterm_forwarded(env):
    p = env.popen(["sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"])
    wait_line(p.stdout, "ready")
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    sf.eq(p.wait(10), 42, "exit status after SIGTERM (the program traps it and exits 42)")
    sf.check(time.monotonic() - t0 < 3, "SIGTERM took too long to end the program")
    p = env.popen(["sh", "-c", "trap 'exit 43' INT; echo ready; while :; do sleep 0.1; done"])
    wait_line(p.stdout, "ready")
    p.send_signal(signal.SIGINT)
    sf.eq(p.wait(10), 43, "exit status after SIGINT")


def test_sigterm_forwarded_other_user(env):
    p = env.popen(["-u", "1000", "sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"])
    wait_line(p.stdout, "ready")
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(5)
    except subprocess.TimeoutExpired:
        rc = "still running 5 s after SIGTERM"
    sf.eq(rc, 42, "with -u 1000: exit status after SIGTERM (the program traps it and exits 42)")


def test_parent_killed(env):
    """kill -9 of sandbox-run takes the sandbox with it (the init's parent-death signal)."""
    arg = f"77.{token()}"
    p = env.popen(["sleep", arg])
    prog = find_host_pid(["sleep", arg])
    init = int(sf.proc_status(prog)["PPid"])
    env.wait_sandbox_id()
    p.kill()
    p.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (os.path.exists(f"/proc/{prog}") or os.path.exists(f"/proc/{init}")):
        time.sleep(0.05)
    alive = [x for x in (init, prog) if os.path.exists(f"/proc/{x}") and sf.proc_cmdline(x)]
    sf.eq(alive, [], "sandbox processes (init, program) still alive 5 s after sandbox-run was killed")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and env.union_servers():
        time.sleep(0.05)
    sf.eq(env.union_servers(), [], "union servers still running after sandbox-run was killed")


def test_stdin_streams(env):
    r = env.run(["cat"], input="data\n")
    sf.eq((r.returncode, r.stdout), (0, "data\n"), "echo data | sandbox-run cat")
    blob = os.urandom(1 << 20)
    r = env.run(["cat"], input=blob, text=False)
    sf.check(r.returncode == 0 and r.stdout == blob, f"1 MiB through cat: exit {r.returncode}, "
                                                       f"{len(r.stdout)} bytes back")
    r = env.run(["sh", "-c", "cat >&2"], input="to-stderr\n")
    sf.eq(r.stderr, "to-stderr\n", "stdin to stderr")


# ==================================================================================================
# nothing left behind

@sf.timeout(120)
def test_no_leftovers_after_100(env):
    snap = sf.Snapshot(env)
    mark = token()
    t0 = time.monotonic()
    kinds = {}
    for i in range(100):
        k = i % 10
        if k == 0:
            args, want = ["--timeout", "0.2", "sleep", "10"], 124
        elif k == 3:
            args, want = ["--memory", "16m", PROBE, "hog", "1024"], 137
        elif k == 6:
            args, want = ["--pids", "20", PROBE, "forkbomb", "100", mark], 0
        elif k == 8:
            args, want = ["--pids", "20", "--timeout", "0.3", PROBE, "forkbomb", "100", "hold", mark], 124
        elif k == 9:
            args, want = ["sh", "-c", "exit 3"], 3
        else:
            args, want = ["true"], 0
        r = env.run(args, timeout=30)
        env.sandbox_ids()
        sf.eq(r.returncode, want, f"run {i}: {args} {r}")
        if k == 6:
            sf.eq(r.kv().get("err"), "EAGAIN", f"run {i}: fork under --pids 20 {r}")
        kinds.setdefault(want, 0)
        kinds[want] += 1
    elapsed = time.monotonic() - t0
    sf.check(elapsed < 60, f"100 sandboxes took {elapsed:.1f}s")
    sf.eq(sf.processes_mentioning(mark), [], "fork bomb processes left")
    expect_clean(env, snap, "100 sandboxes")
    print(f"# 100 sandboxes in {elapsed:.1f}s: {kinds}")


if __name__ == "__main__":
    sf.main()
