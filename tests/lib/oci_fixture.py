# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared fixtures for the sandbox-oci tests (tests/integration/test_oci_*.py).

What it does: finds sandbox-oci ($SANDBOX_OCI or the build directory); makes per-test bundles from the static
busybox (/var/cache/sandbox-tests/busybox-static, unpacked by scripts/install-deps.sh) with a config.json from
`sandbox-oci spec`; gives each test its own --root, runtime state and data directories, so that it can check
that nothing of its containers is left (state directory, the runtime's state entries, cgroups named
sandbox-<id> made by its containers, processes) after delete; and a small runner with the exit statuses of the
other tests (0 passed, 1 failed, 77 skipped unless SBX_TESTS_MUST_RUN=1).

What it does not do: mock anything. Only processes the test started (the monitors of its containers) are killed,
by pid; only its own containers are deleted.
"""

import ctypes
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BUSYBOX = "/var/cache/sandbox-tests/busybox-static/bin/busybox"
APPLETS = ["sh", "cat", "echo", "sleep", "id", "ls", "true", "false", "hostname", "ps", "mount", "touch", "grep",
           "ulimit", "env", "pwd", "head", "wc", "test", "stat", "mkdir", "dd", "readlink", "kill", "printf", "tr"]


class Skip(Exception):
    pass


def oci_binary():
    p = os.environ.get("SANDBOX_OCI")
    if p:
        return os.path.abspath(p)
    for b in ("build-it", "build"):
        c = os.path.join(SRC_ROOT, b, "oci", "sandbox-oci")
        if os.access(c, os.X_OK):
            return c
    return os.path.join(SRC_ROOT, "build", "oci", "sandbox-oci")


def skip_or_fail(why):
    if os.environ.get("SBX_TESTS_MUST_RUN") == "1":
        print("Bail out! cannot run: %s (SBX_TESTS_MUST_RUN=1)" % why)
        sys.exit(1)
    print("1..0 # SKIP %s" % why)
    sys.exit(77)


def prerequisites():
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not os.access(oci_binary(), os.X_OK):
        return "no sandbox-oci binary (%s)" % oci_binary()
    if not os.access(BUSYBOX, os.X_OK):
        return "no static busybox at %s (scripts/install-deps.sh unpacks it)" % BUSYBOX
    return None


def make_rootfs(path):
    os.makedirs(os.path.join(path, "bin"))
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "var", "run"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", a))
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")


def set_subreaper():
    """Monitors of containers this process created become its children when sandbox-oci create exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


class Env:
    """One test's area: its --root, the runtime's state and data directories, bundles, its containers."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbx-oci-")
        os.chmod(self.dir, 0o755)  # the sandbox's init (a private uid) walks to its root in the state directory
        self.root = os.path.join(self.dir, "root")
        self.state = os.path.join(self.dir, "state")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.state)
        os.makedirs(self.data)
        self.ids = []
        self.tag = uuid.uuid4().hex[:8]

    def env(self):
        e = dict(os.environ)
        e["SANDBOX_STATE_DIR"] = self.state
        e["SANDBOX_DATA_DIR"] = self.data
        return e

    def oci(self, *args, check=True, timeout=60, input=None, **kw):
        argv = [oci_binary(), "--root", self.root] + [str(a) for a in args]
        if "create" in args or "--detach" in args:
            # The container inherits create's stdio (as with runc): files, not pipes that stay open.
            with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
                if "stdin" not in kw:
                    kw["stdin"] = subprocess.DEVNULL
                p = subprocess.run(argv, stdout=out, stderr=err, text=True, timeout=timeout, env=self.env(), **kw)
                out.seek(0)
                err.seek(0)
                p.stdout, p.stderr = out.read(), err.read()
        else:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env(), input=input,
                               **kw)
        if check and p.returncode != 0:
            raise AssertionError("sandbox-oci %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode, p.stderr))
        return p

    def new_id(self, name="c"):
        cid = "%s-%s-%d" % (name, self.tag, len(self.ids))
        self.ids.append(cid)
        return cid

    def bundle(self, args=("true",), terminal=False, edit=None):
        b = os.path.join(self.dir, "bundle-%d" % len(os.listdir(self.dir)))
        os.makedirs(b)
        make_rootfs(os.path.join(b, "rootfs"))
        self.oci("spec", "--bundle", b)
        with open(os.path.join(b, "config.json")) as f:
            c = json.load(f)
        c["process"]["terminal"] = terminal
        c["process"]["args"] = list(args)
        if edit:
            edit(c)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(c, f)
        return b

    def state_of(self, cid):
        return json.loads(self.oci("state", cid).stdout)

    def record(self, cid):
        with open(os.path.join(self.root, cid, "state.json")) as f:
            return json.load(f)

    def wait_status(self, cid, status, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.state_of(cid)
            if s["status"] == status:
                return s
            time.sleep(0.05)
        raise AssertionError("container %s: status %s, not %s" % (cid, s["status"], status))

    def reap(self, pid, timeout=20):
        """The monitor's exit status (it is our child: we are a subreaper)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, status = os.waitpid(pid, os.WNOHANG)
            if r == pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError("monitor %d did not exit" % pid)

    def leftovers(self):
        """What this test's containers left on the host."""
        left = []
        if os.path.isdir(self.root):
            left += ["root/" + n for n in os.listdir(self.root)]
        for n in os.listdir(self.state):
            if n not in ("ids", "images", "cache"):
                left.append("state/" + n)
        sandboxes = os.path.join(self.data, "sandboxes")
        if os.path.isdir(sandboxes):
            left += ["data/sandboxes/" + n for n in os.listdir(sandboxes)]
        return left

    def cleanup(self):
        for cid in self.ids:
            subprocess.run([oci_binary(), "--root", self.root, "delete", "--force", cid], capture_output=True,
                           env=self.env(), timeout=60)
        # reap what we inherited
        while True:
            try:
                r, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if r == 0:
                break
        shutil.rmtree(self.dir, ignore_errors=True)


def cgroups_of(pid):
    """The host directories of PID's cgroups (v1 controllers and the unified hierarchy)."""
    dirs = []
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrl, path = line.rstrip("\n").split(":", 2)
            if ctrl.startswith("name="):
                continue
            name = ctrl or "unified"
            for cand in (name, name.split(",")[0]):
                d = "/sys/fs/cgroup/%s%s" % (cand, path)
                if os.path.isdir(d) and "sandbox-" in path:
                    dirs.append(d)
                    break
    return dirs


def run(tests):
    why = prerequisites()
    if why:
        skip_or_fail(why)
    set_subreaper()
    print("1..%d" % len(tests))
    failed = 0
    for i, t in enumerate(tests, 1):
        env = Env()
        try:
            t(env)
            print("ok %d - %s" % (i, t.__name__))
        except Skip as e:
            print("ok %d - %s # SKIP %s" % (i, t.__name__, e))
        except Exception:
            failed += 1
            print("not ok %d - %s" % (i, t.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        finally:
            env.cleanup()
        sys.stdout.flush()
    return 1 if failed else 0
