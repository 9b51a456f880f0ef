#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The checks inside the VM (a Debian 12 guest with its defaults: cgroup v2 only, systemd as PID 1,
root with CAP_SYS_RESOURCE), run by guest-run.sh after the build was installed and sandboxd.socket
started. Writes TAP to OUTDIR/results.tap, one line as each check ends, so a hang still leaves the
lines before it; the last line is '# done'.

Each limit is checked through both front ends: sandbox-run as the command of a delegated scope
(systemd-run --scope -p Delegate=yes), and sandboxctl against the shipped sandboxd.socket/.service:
- the program's oom_score_adj is 1000 (the OOM killer's first choice, before the union's server) while
  the init's is -1000 (the shield really applies here);
- a memory bomb under --memory 64m ends with 137 within a bound, and the accounting says memory;
- a fork bomb is held at --pids 32;
- --cpus 0.25 throttles a busy loop (cpu time / wall time), against an unthrottled loop;
- --timeout ends it with 124;
- with no options the sandbox's cgroup has the default bounds (memory.max 2 GiB, pids.max 1024),
  and sits below the delegated cgroup (the scope's, or sandboxd.service's).
sandbox-oci, in a delegated scope as an engine's cgroup manager would give it, puts config.json's memory, pids
and cpu limits on the container's cgroup (a memory bomb ends 137), the defaults where config.json sets none,
and leaves no cgroup after delete; with linux.cgroupsPath (cgroupfs form) and with --systemd-cgroup (a transient
scope) the cgroup goes where the engine names it. podman (Debian's, in the image) runs containers on sandbox-oci
with its default systemd cgroup manager and with cgroupfs: exit statuses, -e, -w, a private id range, --memory
(137), --pids-limit, exec, stop, rm, and no sandbox cgroup left.
And sandbox-run outside a delegated cgroup, or in a delegated one that holds another process, exits
125 with a message that says what is missing and what to do, and leaves the cgroups as they were.
Stdlib only; every command is bounded in time.
"""

import ctypes
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

OUT = sys.argv[1]
TAP = open(os.path.join(OUT, "results.tap"), "w", buffering=1)
SCOPE = ["systemd-run", "--scope", "--quiet", "-p", "Delegate=yes"]
FRONTS = ("sandbox-run", "sandboxctl")
BOMB_MEMORY = "64m"
PIDS = 32
counter = 0
failures = 0
stats_seq = 0


class Res:
    def __init__(self, rc, out, err, elapsed, stats=None):
        self.rc, self.out, self.err, self.elapsed, self.stats = rc, out, err, elapsed, stats

    def __repr__(self):
        return (f"rc={self.rc} elapsed={self.elapsed:.1f}s stdout={self.out[-300:]!r} "
                f"stderr={self.err[-500:]!r} stats={self.stats}")


pending = []


def diag(msg):
    """A diagnostic line, written after the current check's result line."""
    pending.extend(str(msg).splitlines())


def flush_diag():
    for line in pending:
        TAP.write(f"#   {line}\n")
    pending.clear()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def run(argv, timeout):
    """Runs ARGV to its end (killed after TIMEOUT s: rc None). An '@STATS@' in ARGV (see front())
    becomes --stats FILE, and the file is parsed into the result."""
    global stats_seq
    path = None
    if "@STATS@" in argv:
        stats_seq += 1
        path = f"/run/sbx-vm-stats-{stats_seq}.json"
        i = argv.index("@STATS@")
        argv = argv[:i] + ["--stats", path] + argv[i + 1:]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    elapsed = time.monotonic() - t0
    st = None
    if path and os.path.exists(path):
        with open(path) as f:
            st = json.load(f)
        os.unlink(path)
    return Res(rc, out, err, elapsed, st)


def front(kind, args, unit=None, stats=False):
    """The command line of front end KIND running a sandbox with ARGS (options, '--', command)."""
    extra = ["@STATS@"] if stats else []
    if kind == "sandbox-run":
        return SCOPE + (["--unit", unit] if unit else []) + ["sandbox-run"] + extra + args
    return ["sandboxctl", "exec"] + extra + args


def test(name):
    def wrap(fn):
        global counter, failures
        counter += 1
        t0 = time.monotonic()
        try:
            fn()
            TAP.write(f"ok {counter} - {name} ({time.monotonic() - t0:.1f}s)\n")
        except Exception as e:  # noqa: BLE001
            failures += 1
            TAP.write(f"not ok {counter} - {name} ({time.monotonic() - t0:.1f}s)\n")
            diag(f"{type(e).__name__}: {e}")
        flush_diag()
        return fn
    return wrap


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def read(path):
    with open(path) as f:
        return f.read().strip()


def subdirs(cg):
    d = "/sys/fs/cgroup" + cg
    return sorted(n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n)))


# --------------------------------------------------------------------------------------------------

@test("host: cgroup v2 only, systemd as PID 1, root with CAP_SYS_RESOURCE")
def _():
    eq(subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True).stdout.strip(),
       "cgroup2fs", "/sys/fs/cgroup")
    eq(read("/proc/1/comm"), "systemd", "PID 1")
    capeff = int([line for line in read("/proc/self/status").splitlines() if line.startswith("CapEff:")][0]
                 .split()[1], 16)
    check(capeff & (1 << 24), f"CAP_SYS_RESOURCE not in CapEff {capeff:#x}")
    diag(f"root subtree_control: {read('/sys/fs/cgroup/cgroup.subtree_control')!r}; "
         f"kernel {os.uname().release}; our cgroup {own_cgroup()}")


for kind in FRONTS:
    @test(f"{kind}: the program's oom_score_adj is 1000, the init's -1000")
    def _(kind=kind):
        r = run(front(kind, ["--", "/bin/sh", "-c", "cat /proc/self/oom_score_adj /proc/1/oom_score_adj"]), 45)
        eq((r.rc, r.out.split()), (0, ["1000", "-1000"]), f"program, init ({r})")

    @test(f"{kind}: a memory bomb under --memory {BOMB_MEMORY} ends with 137, accounted as memory")
    def _(kind=kind):
        r = run(front(kind, ["--memory", BOMB_MEMORY, "--", "/bin/sh", "-c", "x=a; while :; do x=$x$x; done"],
                      stats=True), 60)
        check(r.rc is not None, f"still running after 60 s (an OOM loop?): {r}")
        eq(r.rc, 137, f"exit status ({r})")
        check(r.stats is not None, f"no --stats ({r})")
        eq((r.stats.get("limit"), r.stats.get("memory_limit_hit")), ("memory", True), f"accounting ({r})")
        check(r.elapsed < 30, f"took {r.elapsed:.1f}s")
        diag(f"137 after {r.elapsed:.1f}s, memory_peak_bytes {r.stats.get('memory_peak_bytes')}")

    @test(f"{kind}: a fork bomb is held at --pids {PIDS}")
    def _(kind=kind):
        r = run(front(kind, ["--pids", str(PIDS), "--", "/bin/sh", "-c",
                             "i=0; while :; do sleep 30 & i=$((i+1)); echo $i; done"]), 45)
        check(r.rc is not None, f"still running after 45 s: {r}")
        started = int(r.out.split()[-1]) if r.out.split() else 0
        check(r.rc != 0 and "fork" in r.err.lower(), f"the shell did not fail to fork ({r})")
        # The init and the shell count too: at most PIDS - 2 sleeps.
        check(PIDS // 2 <= started <= PIDS - 2, f"{started} processes started under --pids {PIDS} ({r})")
        diag(f"{started} sleeps started, then: {r.err.strip().splitlines()[-1] if r.err.strip() else ''!r}")

    @test(f"{kind}: --cpus 0.25 throttles a busy loop; --timeout 3 ends it with 124")
    def _(kind=kind):
        r = run(front(kind, ["--cpus", "0.25", "--timeout", "3", "--", "/bin/sh", "-c", "while :; do :; done"],
                      stats=True), 45)
        eq(r.rc, 124, f"exit status ({r})")
        check(r.stats, f"no --stats ({r})")
        ratio = r.stats["cpu_time_us"] / max(r.stats["wall_time_us"], 1)
        check(ratio <= 0.4, f"cpu/wall {ratio:.2f} under --cpus 0.25 ({r})")
        check(2.5 <= r.stats["wall_time_us"] / 1e6 <= 10, f"wall time ({r})")
        diag(f"cpu/wall {ratio:.2f}, wall {r.stats['wall_time_us'] / 1e6:.1f}s, took {r.elapsed:.1f}s")

    @test(f"{kind}: no options: the default bounds (memory 2 GiB, pids 1024) in a delegated cgroup")
    def _(kind=kind):
        unit = f"sbx-vm-defaults-{os.getpid()}"
        p = subprocess.Popen(front(kind, ["--", "/bin/sleep", "6"], unit=unit), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            parent = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                u = f"{unit}.scope" if kind == "sandbox-run" else "sandboxd.service"
                cg = subprocess.run(["systemctl", "show", "-P", "ControlGroup", u], capture_output=True,
                                    text=True).stdout.strip()
                boxes = glob.glob(f"/sys/fs/cgroup{cg}/sandbox-*") if cg else []
                # The sandbox's processes are in its children: the program's and the union server's.
                if boxes and os.path.exists(boxes[0] + "/program/pids.max") and \
                        read(boxes[0] + "/program/cgroup.procs"):
                    parent = cg
                    break
                time.sleep(0.2)
            check(parent, f"no sandbox cgroup below the {kind} unit's cgroup within 30 s")
            box = boxes[0]
            # memory for the whole sandbox (the union server's work included); the pids bound on the
            # program's child, the sandbox's own bound that plus the server's 64.
            got = (read(box + "/memory.max"), read(box + "/program/pids.max"), read(box + "/pids.max"))
            eq(got, (str(2 << 30), "1024", "1088"), f"memory.max, program/pids.max, pids.max of {box}")
            check(read(box + "/union/cgroup.procs"), f"the union server is not in {box}/union")
            check("supervisor" in subdirs(parent), f"no supervisor leaf in {parent}: {subdirs(parent)}")
            diag(f"{box[len('/sys/fs/cgroup'):]}: memory.max {got[0]}, program/pids.max {got[1]}; "
                 f"{parent} subtree_control {read('/sys/fs/cgroup' + parent + '/cgroup.subtree_control')!r}")
        finally:
            try:
                out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
        eq(p.returncode, 0, f"exit status of sleep 6 with no options (stderr {err!r})")


@test("sandbox-run: an unthrottled busy loop uses more than --cpus 0.25 allows (the control)")
def _():
    r = run(front("sandbox-run", ["--timeout", "3", "--", "/bin/sh", "-c", "while :; do :; done"], stats=True), 45)
    eq(r.rc, 124, f"exit status ({r})")
    ratio = r.stats["cpu_time_us"] / max(r.stats["wall_time_us"], 1)
    check(ratio >= 0.6, f"cpu/wall {ratio:.2f} without --cpus ({r})")
    diag(f"cpu/wall {ratio:.2f} unthrottled")


@test("sandbox-run outside a delegated cgroup: 125, says what is missing and what to do, changes nothing")
def _():
    own = own_cgroup()
    before = (subdirs(own), read(f"/sys/fs/cgroup{own}/cgroup.subtree_control"))
    r = run(["sandbox-run", "--", "/bin/true"], 45)
    eq(r.rc, 125, f"exit status ({r})")
    for needle in ("memory", "not delegated", "systemd-run --scope -p Delegate=yes", "sandboxctl exec"):
        check(needle in r.err, f"{needle!r} not in the message {r.err!r}")
    eq((subdirs(own), read(f"/sys/fs/cgroup{own}/cgroup.subtree_control")), before,
       f"child cgroups and subtree_control of {own}")
    diag(r.err.strip())


@test("sandbox-run in a delegated scope that holds another process: 125, a clear message, scope unchanged")
def _():
    script = ("sandbox-run -- /bin/true; echo rc=$?; cg=$(sed -n 's/^0:://p' /proc/self/cgroup); "
              "echo subtree=$(cat /sys/fs/cgroup$cg/cgroup.subtree_control); "
              "echo dirs=$(find /sys/fs/cgroup$cg -mindepth 1 -type d | wc -l)")
    r = run(SCOPE + ["/bin/sh", "-c", script], 45)
    eq(r.rc, 0, f"the shell ({r})")
    lines = dict(line.split("=", 1) for line in r.out.split() if "=" in line)
    eq((lines.get("rc"), lines.get("subtree"), lines.get("dirs")), ("125", "", "0"),
       f"sandbox-run's status, then the scope's subtree_control and child cgroups ({r})")
    check("other processes" in r.err and "Delegate=yes" in r.err, f"the message: {r.err!r}")
    diag(r.err.strip())


# --------------------------------------------------------------------------------------------------
# sandbox-oci on cgroup v2: the limits config.json asks for, and issue 12's defaults where it asks for none

OCI_ROOT = "/run/sbx-vm-oci"
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: a container's monitor is reparented to us, as to an engine


def oci(*args, timeout=60, scope=True, pre=()):
    """sandbox-oci ARGS, in a delegated scope of its own (SCOPE) or in our cgroup as an engine with the
    cgroupfs manager calls it; files for stdio: the container inherits them, as with runc."""
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        p = subprocess.run((SCOPE if scope else []) + ["sandbox-oci", "--root", OCI_ROOT] + list(pre) + list(args),
                           stdin=subprocess.DEVNULL,
                           stdout=out, stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read()


def oci_bundle(name, args, resources=None, cgroups_path=None):
    """A bundle whose rootfs is the guest's own /usr (bound read-only) behind the usual symlinks."""
    b = f"/run/sbx-vm-bundle-{name}"
    shutil.rmtree(b, ignore_errors=True)
    rootfs = b + "/rootfs"
    for d in ("usr", "etc", "proc", "sys", "dev", "tmp", "root", "run"):
        os.makedirs(f"{rootfs}/{d}")
    for link in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink("/" + link):
            os.symlink(os.readlink("/" + link), f"{rootfs}/{link}")
    rc, _, err = oci("spec", "--bundle", b)
    check(rc == 0, f"sandbox-oci spec: {err}")
    with open(b + "/config.json") as f:
        c = json.load(f)
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
    if resources:
        c["linux"]["resources"].update(resources)
    if cgroups_path:
        c["linux"]["cgroupsPath"] = cgroups_path
    with open(b + "/config.json", "w") as f:
        json.dump(c, f)
    return b


def sandbox_cgroup(monitor):
    """The host path of the sandbox cgroup (sandbox-ID) of the container whose monitor is MONITOR: its
    init, a child of the monitor, is in that cgroup's program child."""
    seen = []
    for child in read(f"/proc/{monitor}/task/{monitor}/children").split():
        with open(f"/proc/{child}/cgroup") as f:
            path = [line[3:].strip() for line in f if line.startswith("0::")][0]
        seen.append(path)
        parts = path.split("/")
        found = [k for k, p in enumerate(parts) if p.startswith("sandbox-")]
        if found:
            return "/sys/fs/cgroup" + "/".join(parts[:found[-1] + 1])
    raise AssertionError(f"no child of the monitor {monitor} below a sandbox-ID cgroup: {seen}")


def reap(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, status = os.waitpid(pid, os.WNOHANG)
        if r == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"the monitor {pid} did not exit within {timeout} s")


def oci_remove(cid, monitor, bundle):
    """Whatever a case left: the container (forced), its monitor (reaped if it is ours), its bundle."""
    oci("delete", "--force", cid)
    if monitor:
        try:
            reap(monitor, 20)
        except AssertionError:
            pass
    shutil.rmtree(bundle, ignore_errors=True)


def oci_case(name, args, resources, want, run_s, cgroups_path=None, pre=()):
    """Creates container NAME (with CGROUPS_PATH: from our own cgroup, as an engine would; else in a
    delegated scope), checks its sandbox cgroup's (memory.max, program/pids.max, cpu.max) against WANT
    before start, starts it, and returns (its exit status, whether the cgroup is gone after delete, the
    cgroup's path)."""
    cid = f"vm-{name}-{os.getpid()}"
    if callable(cgroups_path):
        cgroups_path = cgroups_path(cid)
    b = oci_bundle(name, args, resources, cgroups_path)
    pidfile = f"{b}/monitor.pid"
    box = None
    try:
        rc, _, err = oci("create", "--bundle", b, "--pid-file", pidfile, cid, scope=not cgroups_path, pre=pre)
        check(rc == 0, f"create: {err}")
        monitor = int(read(pidfile))
        rc, out, err = oci("state", cid)
        check(rc == 0, f"state: {err}")
        box = sandbox_cgroup(json.loads(out)["pid"])
        got = (read(box + "/memory.max"), read(box + "/program/pids.max"), read(box + "/cpu.max"))
        eq(got, want, f"memory.max, program/pids.max, cpu.max of {box}")
        rc, _, err = oci("start", cid)
        check(rc == 0, f"start: {err}")
        status = reap(monitor, run_s)
        rc, _, err = oci("delete", cid)
        check(rc == 0, f"delete: {err}")
        diag(f"{box[len('/sys/fs/cgroup'):]}: {got}; exit {status}")
        return status, not os.path.exists(box), box
    finally:
        oci("delete", "--force", cid)
        shutil.rmtree(b, ignore_errors=True)


@test("sandbox-oci: config.json's memory, pids and cpu are the container's v2 limits; a memory bomb ends 137")
def _():
    res = {"memory": {"limit": 64 << 20}, "pids": {"limit": PIDS}, "cpu": {"quota": 25000, "period": 100000}}
    status, gone, _ = oci_case("limits", ["/bin/sh", "-c", "x=a; while :; do x=$x$x; done"], res,
                            (str(64 << 20), str(PIDS), "25000 100000"), 60)
    eq((status, gone), (137, True), "exit status of the memory bomb, its cgroup gone after delete")


@test("sandbox-oci: no resources in config.json: the default bounds (memory 2 GiB, pids 1024)")
def _():
    status, gone, _ = oci_case("defaults", ["/bin/sh", "-c", "exit 7"], None, (str(2 << 30), "1024", "max 100000"), 30)
    eq((status, gone), (7, True), "exit status, the cgroup gone after delete")


@test("sandbox-oci on v2: pause freezes the program's cgroup, resume thaws it, update changes memory and pids")
def _():
    cid = f"vm-pause-{os.getpid()}"
    b = oci_bundle("pause", ["/bin/sh", "-c", "sleep 60"], {"memory": {"limit": 64 << 20}})
    pidfile = f"{b}/monitor.pid"
    monitor = None
    try:
        rc, _, err = oci("create", "--bundle", b, "--pid-file", pidfile, cid)
        check(rc == 0, f"create: {err}")
        monitor = int(read(pidfile))
        box = sandbox_cgroup(monitor)
        rc, _, err = oci("start", cid)
        check(rc == 0, f"start: {err}")
        events = lambda: dict(line.split() for line in read(box + "/program/cgroup.events").splitlines())
        rc, _, err = oci("pause", cid)
        check(rc == 0, f"pause: {err}")
        eq((events().get("frozen"), json.loads(oci("state", cid)[1])["status"]), ("1", "paused"),
           "program/cgroup.events frozen, the state after pause")
        rc, _, err = oci("resume", cid)
        check(rc == 0, f"resume: {err}")
        eq((events().get("frozen"), json.loads(oci("state", cid)[1])["status"]), ("0", "running"),
           "frozen, the state after resume")
        rc, _, err = oci("update", "--memory", "96M", "--pids-limit", "50", cid)
        check(rc == 0, f"update: {err}")
        eq((read(box + "/memory.max"), read(box + "/program/pids.max")), (str(96 << 20), "50"),
           f"memory.max and program/pids.max of {box} after update")
        diag(f"{box[len('/sys/fs/cgroup'):]}: paused, resumed, updated")
    finally:
        oci_remove(cid, monitor, b)


@test("sandbox-oci on v2: linux.resources.cpu.cpus and blockIO are the sandbox cgroup's cpuset.cpus, io.weight, io.max")
def _():
    disks = [n for n in sorted(os.listdir("/sys/block")) if not n.startswith(("loop", "ram", "zram", "sr"))]
    check(disks, "a block device in the guest")
    major, minor = (int(x) for x in read(f"/sys/block/{disks[0]}/dev").split(":"))
    res = {"cpu": {"cpus": "0", "mems": "0"},
           "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}]}}
    cid = f"vm-cpuset-{os.getpid()}"
    b = oci_bundle("cpuset", ["/bin/sh", "-c", "sleep 60"], res)
    pidfile = f"{b}/monitor.pid"
    monitor = box = None
    try:
        rc, _, err = oci("create", "--bundle", b, "--pid-file", pidfile, cid)
        check(rc == 0, f"create: {err}")
        monitor = int(read(pidfile))
        box = sandbox_cgroup(monitor)
        rc, _, err = oci("start", cid)
        check(rc == 0, f"start: {err}")
        init = read(f"/proc/{monitor}/task/{monitor}/children").split()[0]
        allowed = [line.split()[1] for line in read(f"/proc/{init}/status").splitlines()
                   if line.startswith("Cpus_allowed_list:")]
        got = (read(box + "/cpuset.cpus"), read(box + "/cpuset.cpus.effective"), allowed,
               read(box + "/io.weight").split("\n")[0], f"{major}:{minor} rbps=1048576 " in read(box + "/io.max") + " ")
        eq(got, ("0", "0", ["0"], "default 300", True),
           f"cpuset.cpus, cpuset.cpus.effective of {box}, the init's Cpus_allowed_list, io.weight, io.max's line")
        diag(f"{box[len('/sys/fs/cgroup'):]}: {got}")
    finally:
        oci_remove(cid, monitor, b)
    check(not box or not os.path.exists(box), f"{box} gone after delete")


@test("sandbox-oci: linux.cgroupsPath (cgroupfs form) is where the container's cgroup goes, made and removed")
def _():
    top = f"/sbx-vm-oci-{os.getpid()}"
    try:
        status, gone, box = oci_case("cgpath", ["/bin/sh", "-c", "exit 3"], {"pids": {"limit": 77}},
                                     (str(2 << 30), "77", "max 100000"), 30, cgroups_path=f"{top}/ctr")
        eq(os.path.dirname(box), f"/sys/fs/cgroup{top}/ctr", "the sandbox cgroup's parent")
        eq((status, gone, os.path.exists(f"/sys/fs/cgroup{top}")), (3, True, False),
           "exit status, the sandbox cgroup gone, the levels made for cgroupsPath gone")
    finally:
        for d in (f"/sys/fs/cgroup{top}/ctr", f"/sys/fs/cgroup{top}"):
            try:
                os.rmdir(d)
            except OSError:
                pass


@test("sandbox-oci --systemd-cgroup: the container's cgroup is the scope cgroupsPath names; gone after delete")
def _():
    unit = f"sbxvm-vm-sdcg-{os.getpid()}.scope"
    status, gone, box = oci_case("sdcg", ["/bin/sh", "-c", "exit 5"], {"memory": {"limit": 96 << 20}},
                                 (str(96 << 20), "1024", "max 100000"), 30,
                                 cgroups_path=lambda cid: f"system.slice:sbxvm:{cid}", pre=["--systemd-cgroup"])
    eq(os.path.dirname(box), f"/sys/fs/cgroup/system.slice/{unit}", "the sandbox cgroup's parent")
    deadline = time.monotonic() + 10
    while True:
        state = subprocess.run(["systemctl", "show", "-P", "ActiveState", unit], capture_output=True,
                               text=True).stdout.strip()
        if state != "active" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    eq((status, gone, state), (5, True, "inactive"), "exit status, the sandbox cgroup gone, the scope's state")


# --------------------------------------------------------------------------------------------------
# podman drives sandbox-oci on this host, with its default cgroup manager (systemd: --systemd-cgroup and
# machine.slice:libpod:ID) and with cgroupfs

PODMAN_IMAGE = "localhost/sbx-vm-busybox"
PODMAN = ["podman", "--runtime", "/usr/local/bin/sandbox-oci"]
# podman's default seccomp profile is stacked on ours (no --security-opt)
RUN = ["run", "--rm", "--network", "none"]
APPLETS = ("sh", "cat", "echo", "sleep", "pwd", "true", "id", "head")


def podman_image():
    root = "/run/sbx-vm-busybox"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        os.makedirs(f"{root}/{d}")
    shutil.copy(os.path.join(os.path.dirname(OUT), "busybox"), f"{root}/bin/busybox")
    for a in APPLETS:
        os.symlink("busybox", f"{root}/bin/{a}")
    with open(f"{root}/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\n")
    subprocess.run(["tar", "-C", root, "-cf", root + ".tar", "."], check=True)
    r = run(["podman", "import", root + ".tar", PODMAN_IMAGE], 300)
    check(r.rc == 0, f"podman import: {r}")


def machine_boxes():
    return glob.glob("/sys/fs/cgroup/machine.slice/*/sandbox-*")


@test("podman (systemd cgroup manager) on sandbox-oci: exit status, -e, -w, a private id range, a libpod scope")
def _():
    podman_image()
    r = run(PODMAN + RUN + ["-e", "FOO=bar", "-w", "/tmp", PODMAN_IMAGE, "sh", "-c",
                            "echo $FOO $(pwd); head -1 /proc/self/uid_map; grep Seccomp_filters /proc/self/status; exit 3"],
            120)
    eq(r.rc, 3, f"exit status ({r})")
    lines = r.out.splitlines()
    eq(lines[0] if lines else None, "bar /tmp", f"env and cwd ({r})")
    uidmap = lines[1].split() if len(lines) > 1 else []
    check(len(uidmap) == 3 and uidmap[0] == "0" and uidmap[1] != "0", f"uid 0 inside is not host root: {uidmap}")
    eq(lines[2].split() if len(lines) > 2 else None, ["Seccomp_filters:", "2"], "ours and podman's profile")
    diag(f"uid_map {uidmap}; {lines[2:]}")
    eq(machine_boxes(), [], "sandbox cgroups left in machine.slice")


@test("podman --memory 64m: a memory bomb ends 137; --pids-limit 32 holds a fork bomb")
def _():
    r = run(PODMAN + RUN + ["--memory", "64m", PODMAN_IMAGE, "sh", "-c", "x=a; while :; do x=$x$x; done"], 120)
    eq(r.rc, 137, f"exit status of the memory bomb ({r})")
    r = run(PODMAN + RUN + ["--pids-limit", "32", PODMAN_IMAGE, "sh", "-c",
                            "i=0; while :; do sleep 30 & i=$((i+1)); echo $i; done"], 120)
    started = int(r.out.split()[-1]) if r.out.split() else 0
    check(r.rc not in (0, None) and 16 <= started <= 30, f"{started} sleeps under --pids-limit 32 ({r})")
    diag(f"{started} sleeps started, then exit {r.rc}")
    eq(machine_boxes(), [], "sandbox cgroups left in machine.slice")


@test("podman: exec into a running container, stop, rm; and --cgroup-manager cgroupfs")
def _():
    name = f"sbx-vm-{os.getpid()}"
    r = run(PODMAN + ["run", "-d", "--name", name, "--network", "none", PODMAN_IMAGE, "sleep", "300"], 120)
    check(r.rc == 0, f"podman run -d ({r})")
    try:
        r = run(PODMAN + ["exec", name, "sh", "-c", "echo in; exit 4"], 60)
        eq((r.rc, r.out.strip()), (4, "in"), f"podman exec ({r})")
        r = run(PODMAN + ["stop", "-t", "2", name], 60)
        check(r.rc == 0, f"podman stop ({r})")
    finally:
        rm = run(PODMAN + ["rm", "-f", name], 60)
    check(rm.rc == 0, f"podman rm ({rm})")
    r = run(PODMAN + ["--cgroup-manager", "cgroupfs"] + RUN + [PODMAN_IMAGE, "sh", "-c", "exit 6"], 120)
    eq(r.rc, 6, f"exit status with cgroupfs ({r})")
    eq(machine_boxes() + glob.glob("/sys/fs/cgroup/libpod_parent/*/sandbox-*"), [], "sandbox cgroups left")


TAP.write(f"1..{counter}\n# done: {failures} failed\n")
sys.exit(1 if failures else 0)
