#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandboxd under a real service manager: the shipped units, socket activation, idle exit, Delegate=yes.

What it does:
- units_verify: `systemd-analyze verify` of the units as built (build/data/sandboxd.service and
  data/sandboxd.socket, copied side by side; ExecStart= is pointed at the built binary only when the
  configured install path does not exist) must exit 0 with an EMPTY stderr (unknown keys only warn).
  Documentation=man:sandboxd(8) is checked against the source man page through a temporary MANPATH;
  only when no `man` is installed does it fall back to --man=no (and says so).
- Then it boots systemd as PID 1 of a container (systemd-nspawn -D / --volatile=yes: the host's /usr,
  an empty tmpfs everywhere else) with the units copied from the build into /etc/systemd/system
  (ExecStart= rewritten to /opt/sandboxd/sandboxd, where a dir holding sandboxd, sandboxctl and
  sandbox-unionfs is bound; every other line as shipped), the shipped sysusers.d file bound to
  /etc/sysusers.d/sandboxd.conf (with --volatile=yes /etc starts empty, and systemd-sysusers creates
  group "sandbox" during sysinit, before sockets.target, so SocketGroup=sandbox resolves), a drop-in
  that only adds --idle-timeout 3 to ExecStart=, /dev/fuse, and a host temp dir bound at /run/sandboxd
  (the socket appears there on the host). The container boots `systemd.unit=basic.target`: the host's
  enabled services (postgresql, ...) would otherwise start inside it too.
  The first container uses the unified cgroup layout (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1): on this
  hybrid host nspawn mounts every v1 controller read-only inside the container, so sandboxd cannot
  create a sandbox cgroup there at all (hybrid_layout shows what then happens).
  It checks: the socket is listening and the service not started before the first connection; the
  first `sandboxctl exec` (on the host, against the bound socket) starts the service and brings back
  the program's stdout, stderr and exit status; the unit reaches active/running (Type=notify: only
  after READY=1) with the daemon's STATUS=; an exec from inside the container on the default socket
  path works, also with an idmapped --bind (its source goes as a descriptor, which the daemon can clone
  only in the client's mount namespace: the unit gives it none of its own); the sandbox's cgroup is below the service's cgroup (Delegate=yes) and what a --memory
  limit does there; the daemon exits when idle and the socket stays; the next exec activates it again
  (new main PID, new invocation, a second "Ready"); `systemctl stop` while a sandbox runs ends it and
  leaves no sandbox state behind.
- Nothing is left behind: nspawn runs in cgroups this test creates (unique per run) in the
  hierarchies nspawn tracks itself in (cgroup2 and name=systemd), so its payload/ and supervisor/
  cgroups land there and are removed; the container is powered off (systemctl poweroff via nsenter),
  else SIGTERM, else SIGKILL plus cgroup.kill; --private-network means no veth. leftovers checks
  processes, mounts, cgroups, links and nspawn's propagate dir.

Contract: exit 0 all passed, 1 some failed, 77 skipped (not root, no systemd-nspawn, no /dev/fuse,
nspawn cannot start a container at all) unless SBX_TESTS_MUST_RUN=1, which turns a skip into a failure.
Run one subset: test_sandboxd_systemd.py units_verify
"""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
INSIDE_BIN = "/opt/sandboxd"
IDLE_TIMEOUT = 3
UNIT_LINE_RE = re.compile(r"^ExecStart=")


class Skip(Exception):
    pass


# --------------------------------------------------------------------------------------------------
# inputs

def _built(rel):
    for b in ("build", "build-it", "build-ns"):
        p = os.path.join(SRC_ROOT, b, rel)
        if os.path.exists(p):
            return p
    return os.path.join(SRC_ROOT, "build", rel)


def path_from_env(var, rel, built=True):
    return os.path.abspath(os.environ.get(var) or (_built(rel) if built else os.path.join(SRC_ROOT, rel)))


SANDBOXD = path_from_env("SANDBOXD", "sandboxd/sandboxd")
# The container's cgroup2 has no controllers on this hybrid host: the default memory and pids bounds
# cannot be applied there, so these tests of the units and of activation ask for none.
UNBOUNDED = ["--memory", "unlimited", "--pids", "unlimited"]
SANDBOXCTL = path_from_env("SANDBOXCTL", "tools/sandboxctl")
UNIONFS = path_from_env("SANDBOX_UNIONFS", "unionfs/sandbox-unionfs")
SERVICE = path_from_env("SANDBOXD_SERVICE", "data/sandboxd.service")
SOCKET = path_from_env("SANDBOXD_SOCKET", "data/sandboxd.socket", built=False)
SYSUSERS = path_from_env("SANDBOXD_SYSUSERS", "data/sysusers-sandboxd.conf", built=False)
MAN8 = path_from_env("SANDBOXD_MAN", "man/sandboxd.8", built=False)


# --------------------------------------------------------------------------------------------------
# helpers

def eq(got, expected, what):
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def diag(msg):
    for line in str(msg).rstrip().splitlines():
        print(f"#   {line}")


def run(argv, timeout=30, check_rc=False, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.run(argv, timeout=timeout, text=True, **kw)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: stdout {p.stdout[-800:]!r} stderr {p.stderr[-800:]!r}")
    return p


def wait_for(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def mountinfo():
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            res.append((parts[4], parts[sep + 1], parts[sep + 2]))
    return res


def own_cgroups():
    """{hierarchy key: path}, key '' for cgroup2, 'name=systemd', 'memory', ..."""
    res = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctl, path = line.rstrip("\n").split(":", 2)
            res[ctl] = path or "/"
    return res


def tracking_hierarchies():
    """The hierarchies nspawn puts its own (payload/supervisor) cgroups in: cgroup2 and name=systemd.
    Returns [(absolute dir of our own cgroup there, is_v2)]."""
    mounts = {mp: fs for mp, fs, _ in mountinfo()}
    own = own_cgroups()
    res = []
    if mounts.get("/sys/fs/cgroup") == "cgroup2":
        return [(os.path.join("/sys/fs/cgroup", own.get("", "/").lstrip("/")), True)]
    if mounts.get("/sys/fs/cgroup/unified") == "cgroup2":
        res.append((os.path.join("/sys/fs/cgroup/unified", own.get("", "/").lstrip("/")), True))
    if os.path.isdir("/sys/fs/cgroup/systemd") and "name=systemd" in own:
        res.append((os.path.join("/sys/fs/cgroup/systemd", own["name=systemd"].lstrip("/")), False))
    return res


def proc_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def nspid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def processes_mentioning(needle):
    pids = []
    b = needle.encode()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if b in f.read():
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def cgroup_tree_procs(path):
    pids = []
    for d, _, files in os.walk(path):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
            except OSError:
                pass
    return pids


def rmdir_tree(path):
    """rmdir a cgroup tree depth-first (retrying while members go away). True when gone."""
    for _ in range(50):
        if not os.path.isdir(path):
            return True
        for d, subdirs, _ in os.walk(path, topdown=False):
            try:
                os.rmdir(d)
            except OSError:
                pass
        if not os.path.isdir(path):
            return True
        time.sleep(0.1)
    return not os.path.isdir(path)


# --------------------------------------------------------------------------------------------------
# units

def service_for(exec_path, src=SERVICE):
    """The built unit with only the ExecStart= line's binary changed. Returns (text, old path)."""
    with open(src) as f:
        lines = f.read().splitlines(keepends=True)
    idx = [i for i, line in enumerate(lines) if UNIT_LINE_RE.match(line)]
    eq(len(idx), 1, f"ExecStart= lines in {src}")
    old = lines[idx[0]].rstrip("\n")[len("ExecStart="):].split()[0]
    lines[idx[0]] = f"ExecStart={exec_path}\n"
    return "".join(lines), old


def test_units_verify(ctx):
    if not shutil.which("systemd-analyze"):
        raise Skip("no systemd-analyze")
    d = ctx.mkdtemp("verify")
    with open(SERVICE) as f:
        text = f.read()
    configured = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
    if os.access(configured, os.X_OK):
        note = f"ExecStart={configured} exists: verified as built"
    else:
        text, _ = service_for(SANDBOXD)
        note = f"ExecStart={configured} is not installed: pointed at the built {SANDBOXD}"
    with open(os.path.join(d, "sandboxd.service"), "w") as f:
        f.write(text)
    shutil.copy(SOCKET, os.path.join(d, "sandboxd.socket"))
    env = dict(os.environ)
    args = ["systemd-analyze", "verify"]
    if shutil.which("man"):
        # Documentation=man:sandboxd(8) resolved against our own page, not whatever is installed.
        os.makedirs(os.path.join(d, "man", "man8"))
        os.symlink(MAN8, os.path.join(d, "man", "man8", "sandboxd.8"))
        env["MANPATH"] = os.path.join(d, "man")
        note += f"; man:sandboxd(8) checked against {MAN8}"
    else:
        args.append("--man=no")
        note += "; no man(1) installed: --man=no"
    # systemd-analyze resolves Requires=sandboxd.socket from the directory of the given files.
    p = run(args + ["sandboxd.socket", "sandboxd.service"], cwd=d, env=env)
    diag(note)
    eq((p.returncode, p.stderr, p.stdout), (0, "", ""), "systemd-analyze verify (exit, stderr, stdout)")


# --------------------------------------------------------------------------------------------------
# the container

class Container:
    def __init__(self, ctx, unified):
        self.ctx = ctx
        self.unified = unified
        self.name = f"sbxsd-{os.getpid()}-{secrets.token_hex(3)}" + ("-u" if unified else "-h")
        self.dir = ctx.mkdtemp("ct")
        self.run_dir = os.path.join(self.dir, "run")
        self.sock = os.path.join(self.run_dir, "sandboxd.sock")
        self.console = os.path.join(self.dir, "console.log")
        self.cgroups = []
        self.proc = None
        self.leader = None
        self.bg = []

    def setup_files(self):
        bindir = os.path.join(self.dir, "bin")
        units = os.path.join(self.dir, "units")
        os.makedirs(bindir)
        os.makedirs(os.path.join(units, "sandboxd.service.d"))
        os.makedirs(self.run_dir)
        for b in (SANDBOXD, SANDBOXCTL, UNIONFS):
            shutil.copy2(b, bindir)
        text, _ = service_for(f"{INSIDE_BIN}/sandboxd")
        with open(os.path.join(units, "sandboxd.service"), "w") as f:
            f.write(text)
        shutil.copy(SOCKET, os.path.join(units, "sandboxd.socket"))
        with open(os.path.join(units, "sandboxd.service.d", "50-test-idle.conf"), "w") as f:
            f.write(f"[Service]\nExecStart=\nExecStart={INSIDE_BIN}/sandboxd --idle-timeout {IDLE_TIMEOUT}\n")
        self.binds = [
            "--bind=/dev/fuse",
            f"--bind-ro={bindir}:{INSIDE_BIN}",
            f"--bind-ro={units}/sandboxd.service:/etc/systemd/system/sandboxd.service",
            f"--bind-ro={units}/sandboxd.socket:/etc/systemd/system/sandboxd.socket",
            f"--bind-ro={units}/sandboxd.service.d:/etc/systemd/system/sandboxd.service.d",
            f"--bind-ro={SYSUSERS}:/etc/sysusers.d/sandboxd.conf",
            f"--bind={self.run_dir}:/run/sandboxd",
        ]

    def start(self):
        self.setup_files()
        for base, _ in tracking_hierarchies():
            cg = os.path.join(base, self.name)
            os.mkdir(cg)
            self.cgroups.append(cg)
        cgs = list(self.cgroups)

        def enter_cgroups():
            for cg in cgs:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write("0")

        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        if self.unified:
            env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
        else:
            env.pop("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", None)
        argv = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-M", self.name, "-D", "/",
                "--volatile=yes", "--private-network"] + self.binds + [
                "-b", "--", "systemd.unit=basic.target", "systemd.firstboot=off", "systemd.wants=sandboxd.socket",
                "systemd.mask=nftables.service", "systemd.mask=systemd-timesyncd.service"]
        self.log = open(self.console, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, preexec_fn=enter_cgroups, start_new_session=True)

        def leader():
            if self.proc.poll() is not None:
                return -1
            for c in proc_children(self.proc.pid):
                ns = nspid(c)
                if len(ns) >= 2 and ns[-1] == 1:
                    return c
            return None
        t0 = time.monotonic()
        lp = wait_for(leader, 20, "the container's PID 1")
        if lp == -1:
            raise Skip(f"systemd-nspawn cannot start a container here (exit {self.proc.returncode}): "
                       f"{self.console_tail()}")
        self.leader = lp
        wait_for(lambda: self.show("sandboxd.socket", "ActiveState") == "active", 30,
                 "sandboxd.socket to become active in the container")
        self.boot_time = time.monotonic() - t0

    def console_tail(self, n=1500):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def nsenter(self, argv, **kw):
        return run(["nsenter", "-t", str(self.leader), "-a"] + argv, **kw)

    def show(self, unit, *props):
        p = self.nsenter(["systemctl", "show", "-p", ",".join(props), unit])
        d = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
        # Empty while the container's manager cannot answer yet (early boot).
        return d.get(props[0]) if len(props) == 1 else d

    def journal(self):
        return self.nsenter(["journalctl", "-u", "sandboxd.service", "-o", "cat", "--no-pager"]).stdout

    def ctl(self, args, timeout=30):
        return run([SANDBOXCTL, "--socket", self.sock] + args, timeout=timeout)

    def ctl_bg(self, args):
        p = subprocess.Popen([SANDBOXCTL, "--socket", self.sock] + args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.bg.append(p)
        return p

    def py_inside(self, code):
        p = self.nsenter(["/usr/bin/python3", "-c", code], check_rc=True)
        return json.loads(p.stdout)

    def stop(self):
        """Power off, else SIGTERM, else SIGKILL (and cgroup.kill); remove our cgroups. Returns notes."""
        notes = []
        for p in self.bg:
            if p.poll() is None:
                p.kill()
            p.communicate()
        self.bg = []
        if self.proc and self.proc.poll() is None:
            t0 = time.monotonic()
            wait = 2
            if self.leader:
                try:
                    p = self.nsenter(["systemctl", "poweroff"], timeout=10)
                    if p.returncode == 0:
                        wait = 20
                    else:
                        notes.append(f"systemctl poweroff failed: {p.stderr.strip()}")
                except Exception as e:  # noqa: BLE001
                    notes.append(f"systemctl poweroff failed: {e}")
            try:
                self.proc.wait(timeout=wait)
                notes.append(f"powered off in {time.monotonic() - t0:.1f}s")
            except subprocess.TimeoutExpired:
                notes.append("poweroff did not end it: SIGTERM to nspawn")
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    notes.append("SIGTERM did not end it: SIGKILL")
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        for cg in self.cgroups:
            if cgroup_tree_procs(cg):
                kill = os.path.join(cg, "cgroup.kill")
                notes.append(f"processes left in {cg}: killing them")
                if os.path.exists(kill):
                    with open(kill, "w") as f:
                        f.write("1")
                else:
                    for pid in cgroup_tree_procs(cg):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        for cg in self.cgroups:
            if not rmdir_tree(cg):
                notes.append(f"cannot remove {cg}")
        if self.log:
            self.log.close()
        return notes

    def leftovers(self):
        problems = []
        if self.proc and self.proc.poll() is None:
            problems.append(f"systemd-nspawn {self.proc.pid} still runs")
        for needle in (self.name, self.dir):
            pids = processes_mentioning(needle)
            if pids:
                problems.append(f"processes mentioning {needle}: {pids}")
        m = [x for x in mountinfo() if self.dir in x[0] or self.dir in x[2] or self.name in x[0]]
        if m:
            problems.append(f"mounts: {m}")
        cgs = [c for c in self.cgroups if os.path.exists(c)]
        for root in ("/sys/fs/cgroup",):
            for d, subdirs, _ in os.walk(root):
                if os.path.basename(d) == self.name:
                    cgs.append(d)
                # Only the top levels: our own cgroups are near the top here.
                if d.count("/") > 6:
                    subdirs[:] = []
        if cgs:
            problems.append(f"cgroups: {sorted(set(cgs))}")
        links = run(["ip", "-o", "link"]).stdout
        if self.name[:12] in links:
            problems.append("a network link named after the machine")
        if os.path.exists(f"/run/systemd/nspawn/propagate/{self.name}"):
            problems.append(f"/run/systemd/nspawn/propagate/{self.name}")
        return problems


class Context:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-sdtest-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.containers = []
        self.ct = None
        self.state = {}

    def mkdtemp(self, tag):
        d = tempfile.mkdtemp(prefix=tag + "-", dir=self.tmp)
        os.chmod(d, 0o755)
        return d

    def boot(self, unified):
        c = Container(self, unified)
        self.containers.append(c)
        c.start()
        return c

    def need_ct(self):
        if self.ct is None:
            raise AssertionError("the container did not boot (see boot)")
        return self.ct

    def cleanup(self):
        for c in self.containers:
            for n in c.stop():
                diag(f"{c.name}: {n}")
        mounted = [m for m in mountinfo() if m[0].startswith(self.tmp + "/")]
        if not mounted:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return mounted


def sandbox_dirs(run_dir):
    """Per-sandbox entries of the state dir (what is kept between sandboxes excluded)."""
    return sorted(n for n in os.listdir(run_dir) if n not in ("ids", "images", "cache", "sandboxd.sock"))


# --------------------------------------------------------------------------------------------------
# tests (in this order; the container ones share one container)

def test_boot(ctx):
    c = ctx.boot(unified=True)
    ctx.ct = c
    diag(f"machine {c.name}: sandboxd.socket active {c.boot_time:.1f}s after nspawn started")
    eq(c.show("sandboxd.socket", "SubState"), "listening", "sandboxd.socket SubState")
    eq(c.show("sandboxd.service", "ActiveState"), "inactive", "sandboxd.service before the first connection")
    st = os.stat(c.sock)
    grp = c.nsenter(["getent", "group", "sandbox"]).stdout.strip()
    check(grp, "group 'sandbox' does not exist in the container (sysusers.d drop-in not applied?)")
    gid = int(grp.split(":")[2])
    eq((oct(st.st_mode & 0o7777), st.st_uid, st.st_gid), (oct(0o660), 0, gid),
       "socket mode, owner, group (SocketMode=0660, SocketUser=root, SocketGroup=sandbox)")
    en = c.nsenter(["systemctl", "is-enabled", "sandboxd.socket"]).stdout.strip()
    layout = c.nsenter(["stat", "-f", "-c", "%T", "/sys/fs/cgroup"]).stdout.strip()
    diag(f"group sandbox = gid {gid}; sandboxd.socket is-enabled: {en}; container /sys/fs/cgroup: {layout}")


def test_first_activation(ctx):
    c = ctx.need_ct()
    t0 = time.monotonic()
    p = c.ctl(["exec"] + UNBOUNDED + ["--", "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"])
    diag(f"first exec (activation included) took {time.monotonic() - t0:.2f}s")
    eq(p.returncode, 7, f"exit status of the first exec (stderr {p.stderr!r})")
    eq(p.stdout, "to-stdout\n", "stdout")
    check("to-stderr" in p.stderr, f"stderr: {p.stderr!r}")
    # Type=notify: 'active' only after READY=1 (else it would sit in 'activating' until the start
    # timeout); STATUS= from the daemon arrives too (NotifyAccess=main).
    wait_for(lambda: c.show("sandboxd.service", "SubState") == "running", 5, "sandboxd.service running")
    s = c.show("sandboxd.service", "ActiveState", "MainPID", "StatusText", "InvocationID", "Type", "NotifyAccess")
    eq(s["ActiveState"], "active", "ActiveState")
    check(re.fullmatch(r"\d+ sandbox\(es\) running, \d+ client\(s\)", s["StatusText"]),
          f"StatusText {s['StatusText']!r}")
    check(int(s["MainPID"]) > 0, "MainPID")
    cmd = c.nsenter(["cat", f"/proc/{s['MainPID']}/cmdline"]).stdout.split("\0")
    eq(cmd[:3], [f"{INSIDE_BIN}/sandboxd", "--idle-timeout", str(IDLE_TIMEOUT)], "main process")
    j = c.journal()
    eq(j.count("Ready (state in /run/sandboxd)."), 1, "'Ready' lines in the journal")
    ctx.state["first"] = s
    diag(f"MainPID {s['MainPID']}, StatusText {s['StatusText']!r}")


def test_exec_inside(ctx):
    """A client inside the container on the default socket path."""
    c = ctx.need_ct()
    p = c.nsenter([f"{INSIDE_BIN}/sandboxctl", "exec"] + UNBOUNDED + ["--", "/bin/sh", "-c", "echo inside; exit 3"])
    eq((p.returncode, p.stdout), (3, "inside\n"), f"exec from inside the container (stderr {p.stderr!r})")
    eq(c.show("sandboxd.service", "MainPID"), ctx.state["first"]["MainPID"], "same daemon")
    # A --bind source comes as a descriptor of the client's mount namespace, which the kernel clones only
    # in that namespace: the shipped unit must leave the daemon in the system's (no ProtectKernelTunables=
    # and the like). Idmapped: what root inside writes is the directory owner's.
    c.nsenter(["sh", "-c", "mkdir -p /var/tmp/sbx-bind && chown 1234:1234 /var/tmp/sbx-bind"], check_rc=True)
    p = c.nsenter([f"{INSIDE_BIN}/sandboxctl", "exec"] + UNBOUNDED +
                  ["--bind", "/var/tmp/sbx-bind:/b:idmap", "--", "/bin/sh", "-c", "echo x > /b/f"])
    eq(p.returncode, 0, f"exec with a --bind under the shipped unit (stderr {p.stderr!r})")
    eq(c.nsenter(["stat", "-c", "%u:%g", "/var/tmp/sbx-bind/f"]).stdout.strip(), "1234:1234",
       "owner of a file root inside wrote through an idmapped bind")


def test_delegate(ctx):
    c = ctx.need_ct()
    bg = c.ctl_bg(["exec"] + UNBOUNDED + ["--", "/bin/sleep", "30"])
    wait_for(lambda: c.show("sandboxd.service", "StatusText").startswith("1 sandbox"), 10,
             "StatusText '1 sandbox(es) running'")
    s = c.show("sandboxd.service", "ControlGroup", "MainPID", "Delegate", "StatusText")
    try:
        code = (
            "import json, os, glob\n"
            f"cg = '/sys/fs/cgroup' + {s['ControlGroup']!r}\n"
            "def v2(pid):\n"
            "    return [l for l in open('/proc/%s/cgroup' % pid).read().splitlines() if l.startswith('0::')][0]\n"
            "res = {'sandboxes': {}, 'own': v2(" + repr(s['MainPID']) + ")}\n"
            "for d in glob.glob(cg + '/sandbox-*'):\n"
            "    res['sandboxes'][d] = {}\n"
            "    for sub in ('', '/program', '/union'):\n"
            "        pids = open(d + sub + '/cgroup.procs').read().split() if os.path.isdir(d + sub) else []\n"
            "        res['sandboxes'][d][sub or '/'] = {p: [v2(p), open('/proc/%s/comm' % p).read().strip()] for p in pids}\n"
            "try:\n"
            "    res['xattr'] = os.getxattr(cg, 'trusted.delegate').decode()\n"
            "except OSError as e:\n"
            "    res['xattr'] = str(e)\n"
            "res['controllers'] = open(cg + '/cgroup.controllers').read().strip()\n"
            "res['subtree_control'] = open(cg + '/cgroup.subtree_control').read().strip()\n"
            "res['children'] = sorted(n for n in os.listdir(cg) if os.path.isdir(os.path.join(cg, n)))\n"
            "print(json.dumps(res))\n")
        # StatusText counts the sandbox once it is set up; its init may not have executed sleep yet.
        deadline = time.monotonic() + 10
        while True:
            info = c.py_inside(code)
            progs = [comm for sb in info["sandboxes"].values() for comm in
                     (c2 for _, c2 in sb.get("/program", {}).values())]
            if "sleep" in progs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        eq(s["Delegate"], "yes", "Delegate")
        # With Delegate=yes the daemon moves itself into a leaf (the no-internal-processes rule) and
        # makes the sandboxes' cgroups beside it.
        eq(info["own"], f"0::{s['ControlGroup']}/supervisor", "the daemon's own cgroup (a leaf of the service's)")
        check("supervisor" in info["children"], f"the supervisor leaf is a child of the service's cgroup: {info}")
        eq(len(info["sandboxes"]), 1, f"sandbox cgroups below {s['ControlGroup']}: {info}")
        (d, subs), = info["sandboxes"].items()
        # The sandbox's cgroup holds no process itself: the program's are in its 'program' child, the
        # union server in its 'union' child (docs/cgroups.md).
        eq(subs["/"], {}, f"processes directly in {d}")
        for sub in ("/program", "/union"):
            check(subs[sub], f"no process in {d}{sub}: {subs}")
            for pid, (cg, _) in subs[sub].items():
                eq(cg, f"0::{d[len('/sys/fs/cgroup'):]}{sub}", f"cgroup of pid {pid} (inside the container)")
        comms = [comm for sub in subs.values() for _, comm in sub.values()]
        check("sleep" in [comm for _, comm in subs["/program"].values()],
              f"the sandboxed sleep is not in {d}/program: {subs}")
        check("sandbox-unionfs" in [comm for _, comm in subs["/union"].values()],
              f"the union server is not in {d}/union: {subs}")
        eq(info["xattr"], "1", "trusted.delegate on the service's cgroup")
        diag(f"sandbox cgroup {d[len('/sys/fs/cgroup'):]} holds {comms}; service cgroup controllers "
             f"{info['controllers']!r}, subtree_control {info['subtree_control']!r}, child cgroups "
             f"{info['children']}; the daemon's own: {info['own']}")
        # The memory limit: only a v2 memory controller can hold it in here.
        m = c.ctl(["exec", "--memory", "32m", "--", "/bin/sh", "-c",
                   "x=a; while :; do x=$x$x; done"], timeout=60)
        if "memory" in info["controllers"].split():
            eq(m.returncode, 137, f"memory hog with --memory 32m (stderr {m.stderr!r})")
        else:
            eq(m.returncode, 125, f"--memory without a memory controller (stderr {m.stderr!r})")
            # It names the bound and its value, says the delegated cgroup does not offer the controller,
            # and gives the opt-out (docs/limits.md).
            check("memory bound (32 MiB)" in m.stderr and "not available in our delegated cgroup" in m.stderr
                  and "--memory unlimited" in m.stderr, f"--memory refusal says why: {m.stderr!r}")
        diag(f"--memory 32m hog: exit {m.returncode}, {m.stderr.strip()!r}")
    finally:
        bg.kill()
        bg.communicate()


def test_idle_exit(ctx):
    c = ctx.need_ct()
    wait_for(lambda: c.show("sandboxd.service", "StatusText").startswith("0 sandbox(es) running, 0 client"), 10,
             "the daemon to have no sandbox and no client")
    t0 = time.monotonic()
    wait_for(lambda: c.show("sandboxd.service", "ActiveState") == "inactive", IDLE_TIMEOUT + 10,
             "the daemon to exit when idle")
    diag(f"inactive {time.monotonic() - t0:.1f}s after the last client left (--idle-timeout {IDLE_TIMEOUT})")
    s = c.show("sandboxd.service", "Result", "ExecMainStatus", "ExecMainCode", "MainPID")
    eq((s["Result"], s["ExecMainStatus"], s["MainPID"]), ("success", "0", "0"), "after the idle exit")
    check("Idle: exiting." in c.journal(), "'Idle: exiting.' in the journal")
    eq(c.show("sandboxd.socket", "SubState"), "listening", "the socket after the idle exit")
    check(os.path.exists(c.sock), "the socket file is gone")
    eq(sandbox_dirs(c.run_dir), [], "sandbox state left in /run/sandboxd")


def test_reactivation(ctx):
    c = ctx.need_ct()
    p = c.ctl(["exec"] + UNBOUNDED + ["--", "/bin/echo", "again"])
    eq((p.returncode, p.stdout), (0, "again\n"), f"exec after the idle exit (stderr {p.stderr!r})")
    wait_for(lambda: c.show("sandboxd.service", "SubState") == "running", 5, "sandboxd.service running again")
    s = c.show("sandboxd.service", "MainPID", "InvocationID")
    check(s["MainPID"] != ctx.state["first"]["MainPID"], f"same main PID {s['MainPID']} as the first run")
    check(s["InvocationID"] != ctx.state["first"]["InvocationID"], "same invocation as the first run")
    eq(c.journal().count("Ready (state in /run/sandboxd)."), 2, "'Ready' lines in the journal")
    diag(f"new MainPID {s['MainPID']} (first {ctx.state['first']['MainPID']})")


def test_stop_while_running(ctx):
    c = ctx.need_ct()
    bg = c.ctl_bg(["exec"] + UNBOUNDED + ["--", "/bin/sleep", "30"])
    wait_for(lambda: c.show("sandboxd.service", "StatusText").startswith("1 sandbox"), 10, "a running sandbox")
    check(sandbox_dirs(c.run_dir), "no sandbox state while a sandbox runs")
    t0 = time.monotonic()
    c.nsenter(["systemctl", "stop", "sandboxd.service"], timeout=40, check_rc=True)
    took = time.monotonic() - t0
    out, err = bg.communicate(timeout=10)
    s = c.show("sandboxd.service", "ActiveState", "Result")
    eq((s["ActiveState"], s["Result"]), ("inactive", "success"), "after systemctl stop")
    check(bg.returncode != 0, "the client of the stopped sandbox exited 0")
    check(took < 10, f"systemctl stop took {took:.1f}s")
    eq(sandbox_dirs(c.run_dir), [], "sandbox state left after stop")
    eq(c.show("sandboxd.socket", "SubState"), "listening", "the socket after stop")
    diag(f"stop took {took:.1f}s; the client got exit {bg.returncode}, {err.strip()[-200:]!r}")


def test_hybrid_layout(ctx):
    """The default layout: on a hybrid host nspawn gives the container read-only v1 controllers."""
    c = ctx.boot(unified=False)
    layout = c.nsenter(["sh", "-c", "stat -f -c %T /sys/fs/cgroup; grep ' /sys/fs/cgroup/memory ' "
                        "/proc/self/mountinfo | cut -d' ' -f6"]).stdout.split()
    p = c.ctl(["exec"] + UNBOUNDED + ["--", "/bin/echo", "hybrid"])
    diag(f"container /sys/fs/cgroup: {layout}; exec: exit {p.returncode}, stdout {p.stdout!r}, "
         f"stderr {p.stderr.strip()!r}")
    if p.returncode == 0:
        eq(p.stdout, "hybrid\n", "stdout")
    else:
        # Must fail cleanly: a set-up error naming the cgroup, the daemon still serving.
        eq(p.returncode, 125, f"exit status (stderr {p.stderr!r})")
        check("cgroup" in p.stderr, f"the error names the cgroup: {p.stderr!r}")
        eq(c.show("sandboxd.service", "ActiveState"), "active", "the daemon after the failed exec")
    eq(sandbox_dirs(c.run_dir), [], "sandbox state left")


def test_leftovers(ctx):
    problems = []
    for c in ctx.containers:
        for n in c.stop():
            diag(f"{c.name}: {n}")
        problems += [f"{c.name}: {x}" for x in c.leftovers()]
    check(not problems, "; ".join(problems))


# --------------------------------------------------------------------------------------------------

def prerequisites():
    if os.geteuid() != 0:
        return "not root"
    for what, p in (("sandboxd", SANDBOXD), ("sandboxctl", SANDBOXCTL), ("sandbox-unionfs", UNIONFS)):
        if not os.access(p, os.X_OK):
            return f"no {what} at {p}"
    for p in (SERVICE, SOCKET, SYSUSERS):
        if not os.path.exists(p):
            return f"no {p}"
    return None


def container_prerequisites():
    for tool in ("systemd-nspawn", "nsenter"):
        if not shutil.which(tool):
            return f"no {tool} (package systemd-container; scripts/install-deps.sh)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not tracking_hierarchies():
        return "no cgroup2 or name=systemd hierarchy for nspawn"
    return None


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    if len(sys.argv) > 1:
        tests = [t for t in tests if t[0][5:] in sys.argv[1:] or t[0] in sys.argv[1:]]
    must_run = os.environ.get("SBX_TESTS_MUST_RUN") == "1"
    sys.stdout.reconfigure(line_buffering=True)
    print(f"# sandboxd {SANDBOXD}; units {SERVICE}, {SOCKET}")
    print(f"1..{len(tests)}")
    why = prerequisites()
    if why:
        for i, (name, _) in enumerate(tests, 1):
            print(f"not ok {i} - {name[5:]}: cannot run ({why}) and SBX_TESTS_MUST_RUN=1" if must_run
                  else f"ok {i} - {name[5:]} # SKIP {why}")
        sys.exit(1 if must_run else 77)
    ct_why = container_prerequisites()

    def _term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _term)
    os.umask(0o022)
    ctx = Context()
    passed = failed = skipped = 0
    t_all = time.monotonic()
    try:
        for i, (name, fn) in enumerate(tests, 1):
            short = name[5:]
            t0 = time.monotonic()
            try:
                if ct_why and short not in ("units_verify", "leftovers"):
                    raise Skip(ct_why)
                if ctx.state.get("no_nspawn") and short != "leftovers":
                    raise Skip(ctx.state["no_nspawn"])
                fn(ctx)
                print(f"ok {i} - {short} ({time.monotonic() - t0:.1f}s)")
                passed += 1
            except Skip as e:
                if short == "boot":
                    ctx.state["no_nspawn"] = str(e)
                if must_run:
                    print(f"not ok {i} - {short}: skipped ({e}) but SBX_TESTS_MUST_RUN=1")
                    failed += 1
                else:
                    print(f"ok {i} - {short} # SKIP {e}")
                    skipped += 1
            except BaseException as e:  # noqa: BLE001
                failed += 1
                print(f"not ok {i} - {short} ({time.monotonic() - t0:.1f}s)")
                diag(f"{type(e).__name__}: {e}" if isinstance(e, AssertionError) else traceback.format_exc())
                for c in ctx.containers:
                    if c.proc and c.proc.poll() is not None and c.leader:
                        diag(f"{c.name} ended early; console:\n{c.console_tail()}")
                if isinstance(e, KeyboardInterrupt):
                    raise
    finally:
        mounted = ctx.cleanup()
        if mounted:
            print(f"# mounts left below {ctx.tmp}, not removed: {mounted}")
            failed += 1
    print(f"# {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
          + f" in {time.monotonic() - t_all:.1f}s")
    if failed:
        sys.exit(1)
    if skipped:  # the container part could not run at all
        sys.exit(77)
    sys.exit(0)


if __name__ == "__main__":
    main()
