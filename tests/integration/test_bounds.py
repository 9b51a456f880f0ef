#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The default bounds, tried as an attacker would: hostile programs run with NO option, as root through
sandbox-run and as a user other than root (uid 65534 with a supplementary group the daemon allows)
through sandboxd, and each must be stopped by the bound docs/limits.md names, with the accounting
saying so: a fork bomb held at 1024 (pids_limit_hit), a memory bomb ended at 2 GiB (137,
memory_peak_bytes and max_rss_bytes sane), /tmp and /dev/shm full at 512 MiB (ENOSPC), open files at
1024 (EMFILE). Through the daemon: the wall-clock cap of clients other than root, refusals of raises
above a cap (naming the cap and its value), the per-uid totals, rlimit raises refused (core, rtprio,
nofile). Also: --stats fd:N in both tools, a time kill reporting SIGKILL, the usage exit statuses of
every tool, sandboxd --listen removing its socket, a kept --upper locked and created when missing, and
a default bound whose controller is missing named in the error (in a cgroup2 child without
controllers, in a private mount namespace).

No mocks: real sandboxes, a real daemon, real cgroups. Every test has its own temp dir, state directory,
daemon and cgroups (tests/lib/sandboxd_fixture.py), and nothing may be left behind."""

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

NOBODY = 65534
PY = "python3"
GiB = 1 << 30
MiB = 1 << 20


def user_gid():
    """A supplementary group for the non-root client, allowed by the test's daemons (the host has no
    group 'sandbox' of its own that a test may change)."""
    return 40000 + os.getpid() % 20000


def start_daemon(env, name="d", config="", **kw):
    """A daemon (--listen) that allows uid NOBODY through its supplementary group."""
    d = df.Daemon(env, name=name, activate=False, config=f"allow-groups = {user_gid()}\n" + config, **kw)
    os.chmod(d.sock, 0o666)
    return d


def run_stats(env, argv, timeout=60, input=None, user=False):
    """Runs ARGV (which has "{STATS}" where the --stats value goes) with a descriptor for --stats fd:N;
    USER: as uid 65534 with the allowed group. Returns a Result with .stats (parsed, or None)."""
    fd, path = tempfile.mkstemp(dir=env.root)
    os.unlink(path)
    try:
        argv = [a.replace("{STATS}", f"fd:{fd}") for a in argv]
        if user:
            argv = [df.SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={user_gid()}"] + argv
        r = df.run(env, argv, input=input, timeout=timeout, env=env.environ(), pass_fds=(fd,))
        os.lseek(fd, 0, os.SEEK_SET)
        data = b""
        while True:
            c = os.read(fd, 65536)
            if not c:
                break
            data += c
    finally:
        os.close(fd)
    try:
        r.stats = json.loads(data) if data else None
    except ValueError as e:
        raise AssertionError(f"--stats fd:N wrote invalid JSON ({e}): {data!r}")
    return r


def root_run(env, args, **kw):
    """sandbox-run as root, no option but ARGS, with --stats fd:N."""
    return run_stats(env, [sf.sandbox_run(), "--stats", "{STATS}"] + list(args), **kw)


def user_exec(env, d, args, **kw):
    """sandboxctl exec as the non-root client, with --stats fd:N."""
    return run_stats(env, d.argv_ctl(["exec", "--stats", "{STATS}"] + list(args)), user=True, **kw)


def both(env, d, args, **kw):
    """(what, Result) of ARGS through sandbox-run as root and through the daemon as the other user."""
    return [("sandbox-run (root)", root_run(env, args, **kw)),
            (f"sandboxctl (uid {NOBODY})", user_exec(env, d, args, **kw))]


def stats_of(what, r):
    sf.check(r.stats is not None, f"{what}: no --stats JSON: {r}")
    return r.stats


# ==================================================================================================
# hostile programs, no options

FORK_BOMB = r"""
import os, sys, time
n = 0
try:
    while n < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    print("forked", n, "no-error")
except OSError as e:
    print("forked", n, e.errno)
sys.stdout.flush()
"""


@sf.timeout(120)
def test_fork_bomb_held_at_1024(env):
    d = start_daemon(env)
    for what, r in both(env, d, [PY, "-c", FORK_BOMB]):
        sf.eq(r.returncode, 0, f"{what}: exit status of the fork bomb {r}")
        words = r.stdout.split()
        sf.check(len(words) == 3 and words[0] == "forked", f"{what}: output {r.stdout!r}")
        n, err = int(words[1]), words[2]
        sf.eq(err, str(11), f"{what}: the error that stopped the fork bomb (EAGAIN), after {n} children")
        # 1024 processes and threads in all: the init and python itself are two of them.
        sf.check(900 <= n <= 1022, f"{what}: the bomb forked {n} children under the default pids bound 1024")
        st = stats_of(what, r)
        sf.eq((st["pids_limit_hit"], st["memory_limit_hit"], st["limit"]), (True, False, None),
              f"{what}: --stats {st}")
    # A program that stays under the bound is not reported.
    r = root_run(env, [PY, "-c", "import os; os.waitpid(os.fork() or os._exit(0), 0) if False else None"])
    sf.eq((r.returncode, stats_of("quiet", r)["pids_limit_hit"]), (0, False), f"a quiet program {r.stats}")


MEMORY_BOMB = "b = []\nwhile True: b.append(bytearray(64 << 20))\n"


@sf.timeout(180)
def test_memory_bomb_ends_137(env):
    d = start_daemon(env)
    for what, r in both(env, d, [PY, "-c", MEMORY_BOMB], timeout=120):
        sf.eq(r.returncode, 137, f"{what}: exit status of the memory bomb {r}")
        sf.check("memory limit" in r.stderr, f"{what}: no memory limit message: {r.stderr!r}")
        st = stats_of(what, r)
        sf.eq((st["status"], st["signal"], st["exit_code"], st["limit"], st["memory_limit_hit"]),
              (137, 9, -1, "memory", True), f"{what}: --stats {st}")
        # The cgroup's peak is the bound; the program's own resident set came close to it.
        sf.check(2 * GiB - 64 * MiB <= st["memory_peak_bytes"] <= 2 * GiB,
                 f"{what}: memory_peak_bytes {st['memory_peak_bytes']} under the 2 GiB default")
        sf.check(1 * GiB <= st["max_rss_bytes"] <= st["memory_peak_bytes"] + 64 * MiB,
                 f"{what}: max_rss_bytes {st['max_rss_bytes']} (peak {st['memory_peak_bytes']})")
    sf.check("the memory limit (2 GiB, the default)" in root_run(env, [PY, "-c", MEMORY_BOMB], timeout=120).stderr,
             "sandbox-run's message names the limit in force (the default)")
    # Sane below the bound too: 300 MiB touched shows as such in both numbers; page cache is not RSS.
    r = root_run(env, [PY, "-c", "b = bytearray(300 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
                                 "open('/tmp/cache', 'wb').write(bytes(200 << 20))\n"])
    st = stats_of("300 MiB", r)
    sf.eq((r.returncode, st["limit"]), (0, None), f"300 MiB program {r}")
    sf.check(300 * MiB <= st["max_rss_bytes"] <= 420 * MiB, f"max_rss_bytes of a 300 MiB program: {st}")
    sf.check(st["memory_peak_bytes"] >= 300 * MiB, f"memory_peak_bytes of a 300 MiB program: {st}")


FILL = r"""
import errno, sys
for path in sys.argv[1:]:
    n = 0
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                n += 1
    except OSError as e:
        print(path, n, errno.errorcode.get(e.errno, e.errno))
"""


@sf.timeout(120)
def test_tmp_and_shm_full_at_512m(env):
    d = start_daemon(env)
    for what, r in both(env, d, [PY, "-c", FILL, "/tmp/fill", "/dev/shm/fill"], timeout=90):
        sf.eq(r.returncode, 0, f"{what}: {r}")
        got = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()}
        for path in ("/tmp/fill", "/dev/shm/fill"):
            sf.check(path in got, f"{what}: no result for {path}: {r.stdout!r}")
            mib, err = int(got[path][0]), got[path][1]
            sf.eq(err, "ENOSPC", f"{what}: the error that stopped filling {path}")
            sf.check(500 <= mib <= 512, f"{what}: {path} took {mib} MiB before ENOSPC (the default is 512 MiB)")
        sf.eq(stats_of(what, r)["limit"], None, f"{what}: a full tmpfs is not a kill")
    # Root raises it per run.
    r = root_run(env, ["--tmpfs", "/tmp:600m", PY, "-c", FILL, "/tmp/fill"], timeout=90)
    sf.check(r.returncode == 0 and 590 <= int(r.stdout.split()[1]) <= 600, f"--tmpfs /tmp:600m {r}")


OPEN_FILES = r"""
import errno, os, resource
print("limits", *resource.getrlimit(resource.RLIMIT_NOFILE))
fds = []
try:
    while len(fds) < 100000:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    print("opened", len(fds), "no-error")
except OSError as e:
    print("opened", len(fds), errno.errorcode.get(e.errno, e.errno))
"""


def test_open_files_at_1024(env):
    d = start_daemon(env)
    hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    for what, r in both(env, d, [PY, "-c", OPEN_FILES]):
        sf.eq(r.returncode, 0, f"{what}: {r}")
        lines = dict((ln.split()[0], ln.split()[1:]) for ln in r.stdout.splitlines())
        sf.eq(lines.get("limits"), ["1024", str(hard)], f"{what}: RLIMIT_NOFILE inside (soft, hard)")
        n, err = int(lines["opened"][0]), lines["opened"][1]
        sf.eq(err, "EMFILE", f"{what}: the error after {n} files")
        sf.check(1000 <= n <= 1021, f"{what}: {n} files opened under the default soft limit 1024")


# ==================================================================================================
# the daemon's caps for users other than root

@sf.timeout(90)
def test_daemon_wall_time_cap(env):
    # The default cap is an hour: asking for more is refused, naming it.
    d = start_daemon(env)
    r = user_exec(env, d, ["--timeout", "3601", "true"])
    sf.eq(r.returncode, 125, f"--timeout 3601 under the default max-timeout {r}")
    sf.check("--timeout 3601 s is above this daemon's max-timeout (3600 s)" in r.stderr, f"message {r.stderr!r}")
    d.stop()
    # A cap is the default of a sandbox that gives no --timeout: ended with SIGKILL, status 124.
    d = start_daemon(env, name="short", config="max-timeout = 2\n")
    r = user_exec(env, d, ["sleep", "30"])
    st = stats_of("capped sleep", r)
    sf.eq((r.returncode, st["signal"], st["exit_code"], st["limit"], st["time_limit_hit"]),
          (124, 9, -1, "timeout", True), f"uid {NOBODY}: sleep 30 under max-timeout = 2 {r} {st}")
    sf.check(1.5 <= r.elapsed < 10, f"the capped sandbox ended after {r.elapsed:.1f}s (cap 2 s)")
    sf.check("the time limit (the daemon's max-timeout) was reached" in r.stderr, f"message {r.stderr!r}")
    # Root is not capped.
    r = run_stats(env, d.argv_ctl(["exec", "--stats", "{STATS}", "sleep", "3"]))
    sf.eq((r.returncode, stats_of("root", r)["limit"]), (0, None), f"root's sleep 3 under max-timeout = 2 {r}")


def test_raises_above_caps_refused(env):
    d = start_daemon(env)
    cases = [
        (["--memory", "4g"], "--memory 4 GiB is above this daemon's max-memory (2 GiB)"),
        (["--memory", "unlimited"], "--memory unlimited: this daemon's max-memory is 2 GiB"),
        (["--pids", "2000"], "--pids 2000 is above this daemon's max-pids (1024)"),
        (["--pids", "unlimited"], "--pids unlimited: this daemon's max-pids is 1024"),
        (["--disk", "20g"], "--disk 20 GiB is above this daemon's max-disk (10 GiB)"),
        (["--disk", "unlimited"], "--disk unlimited: this daemon's max-disk is 10 GiB"),
        (["--disk", "1g,inodes=2000000"], "--disk inodes=2000000 is above this daemon's max-disk-inodes (1000000)"),
        (["--timeout", "7200"], "--timeout 7200 s is above this daemon's max-timeout (3600 s)"),
    ]
    for args, message in cases:
        r = user_exec(env, d, args + ["true"])
        sf.eq(r.returncode, 125, f"uid {NOBODY}: exec {args} {r}")
        sf.check(message in r.stderr and "permission denied" in r.stderr,
                 f"uid {NOBODY}: exec {args}: message {r.stderr!r} lacks {message!r}")
        # --stats says it too, as for any sandbox that did not start.
        sf.check(r.stats and r.stats.get("status") == 125 and message in r.stats.get("error", ""),
                 f"uid {NOBODY}: exec {args}: --stats {r.stats}")
    # Within the caps it runs, and root may raise anything, also through the daemon.
    r = user_exec(env, d, ["--memory", "1.5g", "--pids", "100", "--disk", "2.5g", "--timeout", "60", "true"])
    sf.eq(r.returncode, 0, f"uid {NOBODY} within the caps {r}")
    r = run_stats(env, d.argv_ctl(["exec", "--stats", "{STATS}", "--memory", "unlimited", "--pids", "unlimited",
                                   "--disk", "unlimited", "--timeout", "7200", "true"]))
    sf.eq(r.returncode, 0, f"root lifts every bound through the daemon {r}")
    r = root_run(env, ["--memory", "unlimited", "--pids", "unlimited", "--disk", "unlimited", "true"])
    sf.eq(r.returncode, 0, f"root lifts every bound through sandbox-run {r}")


@sf.timeout(90)
def test_per_client_totals(env):
    d = start_daemon(env, config="max-memory-per-client = 3g\n")
    argv = [df.SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", f"--groups={user_gid()}"] + d.argv_ctl(
        ["exec", "sh", "-c", "echo ready; exec sleep 30"])
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    env.procs.append(p)
    df.wait_line(p.stdout, "ready")
    # One default sandbox (2 GiB) runs: another default one would make 4 GiB.
    r = user_exec(env, d, ["true"])
    sf.eq(r.returncode, 125, f"a second 2 GiB sandbox under max-memory-per-client = 3g {r}")
    sf.check("--memory 2 GiB: your running sandboxes hold 2 GiB already, and this daemon's "
             "max-memory-per-client is 3 GiB" in r.stderr, f"message {r.stderr!r}")
    r = user_exec(env, d, ["--memory", "1g", "true"])
    sf.eq(r.returncode, 0, f"a 1 GiB sandbox beside it {r}")
    # Root's sandboxes are not counted, nor capped.
    r = run_stats(env, d.argv_ctl(["exec", "--stats", "{STATS}", "--memory", "4g", "true"]))
    sf.eq(r.returncode, 0, f"root beside them {r}")
    p.send_signal(signal.SIGTERM)
    sf.eq(p.wait(15), 143, "the running sandbox after SIGTERM")
    env.procs.remove(p)
    r = user_exec(env, d, ["true"])
    sf.eq(r.returncode, 0, f"once the first one ended, a default sandbox fits again {r}")


def test_rlimit_raises_refused(env):
    d = start_daemon(env)
    nofile_hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    rtprio_hard = resource.getrlimit(resource.RLIMIT_RTPRIO)[1]
    cases = [
        ("core=1m", "--rlimit core: core dumps stay off for users other than root (core must be 0, not 1 MiB)"),
        ("core=unlimited", "(core must be 0, not unlimited)"),
        (f"nofile={nofile_hard + 1}", f"--rlimit nofile: the hard limit {nofile_hard + 1} is above what a sandbox "
                                      f"gets by default ({nofile_hard}); users other than root may only lower limits"),
        ("nofile=unlimited", f"--rlimit nofile: the hard limit unlimited is above what a sandbox gets by default "
                             f"({nofile_hard})"),
    ]
    if rtprio_hard != resource.RLIM_INFINITY:
        cases.append((f"rtprio={rtprio_hard + 10}", f"--rlimit rtprio: the hard limit {rtprio_hard + 10} is above "
                                                     f"what a sandbox gets by default ({rtprio_hard})"))
    for rl, message in cases:
        r = user_exec(env, d, ["--rlimit", rl, "true"])
        sf.eq(r.returncode, 125, f"uid {NOBODY}: --rlimit {rl} {r}")
        sf.check(message in r.stderr, f"uid {NOBODY}: --rlimit {rl}: message {r.stderr!r} lacks {message!r}")
    # Lowering is fine, and sizes take suffixes.
    r = user_exec(env, d, ["--rlimit", "nofile=512", "--rlimit", "fsize=1m", "--rlimit", "core=0", "sh", "-c",
                           "ulimit -n; ulimit -Hn; ulimit -c; head -c 2000000 /dev/zero > /tmp/f; wc -c < /tmp/f"])
    sf.eq(r.stdout.split()[:4], ["512", "512", "0", "1048576"], f"lowered limits {r}")
    # Root may raise them.
    r = run_stats(env, d.argv_ctl(["exec", "--stats", "{STATS}", "--rlimit", "core=unlimited", "sh", "-c",
                                   "ulimit -c"]))
    sf.eq((r.returncode, r.stdout.strip()), (0, "unlimited"), f"root's --rlimit core=unlimited {r}")


# ==================================================================================================
# accounting

def test_stats_fd_both_tools(env):
    d = start_daemon(env)
    for what, r in both(env, d, ["sh", "-c", "echo out; exit 3"]):
        st = stats_of(what, r)
        sf.eq((r.returncode, r.stdout, st["status"], st["exit_code"], st["signal"], st["limit"]),
              (3, "out\n", 3, 3, 0, None), f"{what}: {r} {st}")
        for k in ("wall_time_us", "cpu_time_us", "memory_peak_bytes", "max_rss_bytes", "pids_limit_hit",
                  "disk_limit_hit", "memory_limit_hit", "time_limit_hit"):
            sf.check(k in st, f"{what}: --stats has no {k}: {st}")
        sf.check(st["max_rss_bytes"] > 0, f"{what}: max_rss_bytes {st}")
    # A sandbox that never started: the status and why, to the descriptor too.
    r = root_run(env, ["--image", env.path("missing"), "true"])
    sf.eq((r.returncode, r.stats and r.stats.get("status")), (125, 125), f"a failed start {r} {r.stats}")
    sf.check(env.path("missing") in r.stats.get("error", ""), f"the error in --stats: {r.stats}")
    # A descriptor that is not open is a usage error.
    r = df.run(env, [sf.sandbox_run(), "--stats", "fd:987", "true"])
    sf.check(r.returncode == 125 and "fd:987" in r.stderr and "not open" in r.stderr, f"--stats fd:987 {r}")


@sf.timeout(90)
def test_time_kills_report_sigkill(env):
    d = start_daemon(env)
    for args in (["--timeout", "1", "sleep", "30"], ["--cpu-time", "0.5", PY, "-c", "while True: pass"]):
        for what, r in both(env, d, args):
            st = stats_of(what, r)
            limit = "timeout" if args[0] == "--timeout" else "cpu-time"
            sf.eq((r.returncode, st["status"], st["signal"], st["exit_code"], st["limit"], st["time_limit_hit"]),
                  (124, 124, 9, -1, limit, True), f"{what} {args}: {r} {st}")
            # The init ended the program and reported it: its accounting survives the kill.
            sf.check(st["max_rss_bytes"] > 0, f"{what} {args}: max_rss_bytes after a time kill: {st}")
            sf.check(r.elapsed < 10, f"{what} {args}: took {r.elapsed:.1f}s")


# ==================================================================================================
# command lines

def test_usage_exit_statuses(env):
    d = start_daemon(env)
    ctl = [df.sandboxctl(), "--socket", d.sock]
    layer = os.environ.get("SANDBOX_LAYER") or sf._default("tools/sandbox-layer")
    unionfs = os.environ.get("SANDBOX_UNIONFS") or sf._default("unionfs/sandbox-unionfs")
    cases = [
        ([sf.sandbox_run(), "--bogus", "true"], 125, "bogus"),
        ([sf.sandbox_run(), "--memory", "lots", "true"], 125, "--memory 'lots'"),
        ([sf.sandbox_run()], 125, "no command"),
        (ctl + ["exec", "--bogus", "true"], 125, "bogus"),
        (ctl + ["exec", "--rlimit", "nofile=x", "true"], 125, "'x' is not a number"),
        (ctl + ["--bogus"], 125, "unknown option"),
        (ctl, 125, "no command"),
        (ctl + ["frobnicate"], 125, "unknown command"),
        (ctl + ["ps", "--bogus"], 125, "unknown argument"),
        (ctl + ["kill", "not-an-id"], 125, "not a sandbox id"),
        (ctl + ["kill", "0123456789abcdef", "SIGNOPE"], 125, "unknown signal"),
        ([df.sandboxd(), "--bogus"], 2, "bogus"),
        ([df.sandboxd(), "--idle-timeout", "soon"], 2, "--idle-timeout"),
        ([df.sandboxd(), "--state-dir", "relative"], 2, "--state-dir"),
        ([df.sandboxd(), "extra-argument"], 2, "extra-argument"),
        ([layer, "bogus-verb"], 2, "bogus-verb"),
        ([layer], 2, "Usage"),
        ([unionfs, "--bogus"], 2, "bogus"),
        ([unionfs, "-o", "upperdir=/tmp", env.root], 2, "lowerdir"),
    ]
    bad = []
    for argv, want, word in cases:
        r = df.run(env, argv)
        if r.returncode != want or word.lower() not in r.stderr.lower():
            bad.append((argv[1:], r.returncode, want, r.stderr.strip()[-200:]))
    sf.eq(bad, [], "(args, status, wanted status, stderr) of usage errors")
    # sandbox-run as a user other than root says it needs root and points at the daemon.
    r = df.run(env, [df.SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sf.sandbox_run(),
                     "true"])
    sf.check(r.returncode == 125 and "needs root" in r.stderr and "sandboxctl exec" in r.stderr,
             f"sandbox-run as uid {NOBODY}: {r}")


@sf.timeout(60)
def test_listen_socket_removed(env):
    # SIGTERM and the idle exit both remove the socket file.
    d = start_daemon(env, name="term")
    sf.check(os.path.exists(d.sock), "no socket")
    sf.eq(d.stop(), 0, "exit status after SIGTERM")
    sf.check(not os.path.exists(d.sock), f"{d.sock} left after SIGTERM")
    d = start_daemon(env, name="idle", idle=1)
    sf.eq(d.wait_exit(10), 0, f"exit status after the idle timeout ({d.log()!r})")
    sf.check(not os.path.exists(d.sock), f"{d.sock} left after the idle exit")
    # A second daemon took the path over: the first one leaves that socket alone.
    first = start_daemon(env, name="same")
    second = df.Daemon(env, name="same", activate=False, config=f"allow-groups = {user_gid()}\n")
    sf.eq(first.stop(), 0, "the first daemon's exit status")
    sf.check(os.path.exists(second.sock), "the first daemon removed the second one's socket")
    r = second.ctl(["exec", "echo", "still-here"])
    sf.eq((r.returncode, r.stdout), (0, "still-here\n"), f"the second daemon after the first left {r}")
    sf.eq(second.stop(), 0, "the second daemon's exit status")
    sf.check(not os.path.exists(second.sock), "the socket after both daemons left")


# ==================================================================================================
# one upper, one sandbox

@sf.timeout(60)
def test_upper_locked_and_created(env):
    upper = env.path("new", "upper")
    os.makedirs(os.path.dirname(upper))
    # Missing: created 0700, owned by root, and used.
    r = root_run(env, ["--upper", upper, "sh", "-c", "echo kept > /kept"])
    sf.eq(r.returncode, 0, f"--upper that did not exist {r}")
    st = os.stat(upper)
    sf.eq((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), (oct(0o700), 0, 0), "the created --upper")
    sf.eq(open(os.path.join(upper, "kept")).read(), "kept\n", "the change kept in the created --upper")
    # In use: a second sandbox on it is refused, through sandbox-run and through the daemon.
    holder = env.popen(["--upper", upper, "sh", "-c", "echo ready; exec sleep 30"], probe=False)
    df.wait_line(holder.stdout, "ready")
    r = root_run(env, ["--upper", upper, "true"])
    sf.check(r.returncode == 125 and f"--upper '{upper}': in use by another sandbox" in r.stderr,
             f"a second sandbox on a locked --upper {r}")
    d = start_daemon(env)
    r = run_stats(env, d.argv_ctl(["exec", "--stats", "{STATS}", "--upper", upper, "true"]))
    sf.check(r.returncode == 125 and "in use by another sandbox" in r.stderr, f"the same through the daemon {r}")
    holder.send_signal(signal.SIGTERM)
    sf.eq(holder.wait(15), 143, "the holder after SIGTERM")
    env.procs.remove(holder)
    # Free again once the holder is gone.
    r = root_run(env, ["--upper", upper, "cat", "/kept"])
    sf.eq((r.returncode, r.stdout), (0, "kept\n"), f"--upper after its sandbox ended {r}")
    # Its parent must exist; a file is no upper.
    r = root_run(env, ["--upper", env.path("nowhere", "upper"), "true"])
    sf.check(r.returncode == 125 and "parent directory must exist" in r.stderr, f"--upper without a parent {r}")


# ==================================================================================================
# a default bound the host cannot apply

def _unified_v2():
    try:
        return os.statvfs("/sys/fs/cgroup/unified") and os.path.exists("/sys/fs/cgroup/unified/cgroup.procs")
    except OSError:
        return False


def test_missing_controller_named(env):
    """In a child of the cgroup2 hierarchy that offers no controller, seen as /sys/fs/cgroup in a private
    mount namespace: the default bounds cannot be applied, and the message says which and how to opt out."""
    if not _unified_v2():
        raise sf.Skip("no cgroup2 hierarchy at /sys/fs/cgroup/unified (a hybrid host's)")
    with open("/sys/fs/cgroup/unified/cgroup.controllers") as f:
        offered = set(f.read().split()) & {"memory", "pids"}
    if offered:
        raise sf.Skip(f"the cgroup2 hierarchy here offers {sorted(offered)}: nothing is missing")
    cg = f"/sys/fs/cgroup/unified/sbx-bounds-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    os.mkdir(cg)
    try:
        def run_in(args):
            script = ('echo $$ > "$1/cgroup.procs" && shift && exec unshare -m sh -c '
                      '\'mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec "$@"\' - "$@"')
            return df.run(env, ["sh", "-c", script, "-", cg, sf.sandbox_run()] + args, env=env.environ())

        r = run_in(["true"])
        name = os.path.basename(cg)
        sf.eq(r.returncode, 125, f"default bounds without controllers {r}")
        for w in ("Cannot apply the memory bound (2 GiB, the default) and the pids bound (1024, the default)",
                  "the memory, pids controllers", name, "--memory unlimited --pids unlimited"):
            sf.check(w in r.stderr, f"the message lacks {w!r}: {r.stderr!r}")
        r = run_in(["--memory", "unlimited", "true"])
        sf.eq(r.returncode, 125, f"--memory unlimited, default pids, without controllers {r}")
        for w in ("Cannot apply the pids bound (1024, the default):", "the pids controller", "--pids unlimited"):
            sf.check(w in r.stderr, f"the message lacks {w!r}: {r.stderr!r}")
        sf.check("memory" not in r.stderr, f"the memory bound was lifted, yet named: {r.stderr!r}")
        r = run_in(["--memory", "unlimited", "--pids", "unlimited", "echo", "opted-out"])
        sf.eq((r.returncode, r.stdout), (0, "opted-out\n"), f"both bounds lifted explicitly {r}")
    finally:
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


if __name__ == "__main__":
    df.main()
