#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""containerd (Debian's 1.6, its runc shim containerd-shim-runc-v2) driving sandbox-oci through `ctr run
--runc-binary`: exit statuses, --env, a detached task with `ctr task exec`, `ctr task kill` (TERM reaches the
program), `ctr run -t` on a real pty, an image imported into containerd (a busybox image podman built and saved,
when podman is there), and nothing left after the task and container are deleted (sandbox-oci's state
directory, the container's cgroups and processes).

The test runs a containerd of its own (root, state, sockets in a temp dir; the CRI plugin disabled), in a
namespace of its own; at the end it deletes what it made, stops that containerd and the shims it started (by
pid), and unmounts what is left under its temp dir. Exit 77 without containerd unless SBX_TESTS_MUST_RUN=1."""

import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import oci_fixture as of  # noqa: E402


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Containerd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbx-oci-ctd-")
        os.chmod(self.dir, 0o755)
        self.ns = "sbx-oci-" + uuid.uuid4().hex[:8]
        self.sock = os.path.join(self.dir, "sock")
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write('version = 2\nroot = "%s/root"\nstate = "%s/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    '[grpc]\n  address = "%s"\n[ttrpc]\n  address = "%s.ttrpc"\n'
                    '[debug]\n  address = "%s/debug.sock"\n[metrics]\n  address = ""\n'
                    % (self.dir, self.dir, self.sock, self.sock, self.dir))
        self.log = open(os.path.join(self.dir, "containerd.log"), "w")
        self.proc = subprocess.Popen(["containerd", "--config", os.path.join(self.dir, "config.toml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ctr("version", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("containerd did not start: %s" % open(self.log.name).read()[-2000:])

    def ctr(self, *args, check=True, timeout=120):
        p = subprocess.run(["ctr", "--address", self.sock, "-n", self.ns] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("ctr %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def shims(self):
        """Our containerd's shims (their command lines name our socket)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                cmd = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and self.sock.encode() in cmd:
                pids.append(int(d))
        return pids

    def cleanup(self):
        for line in self.ctr("task", "ls", "-q", check=False).stdout.split():
            self.ctr("task", "kill", "-s", "KILL", line, check=False)
            time.sleep(0.5)
            self.ctr("task", "rm", "-f", line, check=False)
        for c in self.ctr("c", "ls", "-q", check=False).stdout.split():
            self.ctr("c", "rm", c, check=False)
        for i in self.ctr("images", "ls", "-q", check=False).stdout.split():
            self.ctr("images", "rm", i, check=False)
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in self.shims():
            os.kill(pid, signal.SIGKILL)
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            mp = line.split()[4]
            if mp.startswith(self.dir):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree("/run/containerd/runc/" + self.ns, ignore_errors=True)


def run_tty(argv, timeout=60):
    """ARGV on the slave of a new pty (ctr run -t needs a terminal): its exit status and output."""
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    if time.monotonic() >= deadline:
        os.kill(pid, signal.SIGKILL)
    os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_ctr(c):
    rootfs = os.path.join(c.dir, "rootfs")
    of.make_rootfs(rootfs)
    runc = ["--runc-binary", of.oci_binary()]
    state_root = "/run/containerd/runc/" + c.ns  # what the shim passes as --root

    p = c.ctr("run", "--rm", *runc, "--env", "FOO=bar", "--rootfs", rootfs, "t1", "sh", "-c",
              "echo foo=$FOO; cat /proc/self/uid_map; exit 4", check=False)
    expect(p.returncode == 4, (p.returncode, p.stderr))
    expect("foo=bar" in p.stdout, p.stdout)
    m = p.stdout.split("\n")[1].split()
    expect(m[0] == "0" and int(m[1]) >= 65536 and m[2] == "65536", "not a private id range: %s" % m)

    # detached, exec, kill, delete
    c.ctr("run", "-d", *runc, "--rootfs", rootfs, "t2", "sleep", "1000")
    time.sleep(0.5)
    p = c.ctr("task", "exec", "--exec-id", "e1", "t2", "sh", "-c", "ps -o args; exit 6", check=False)
    expect(p.returncode == 6 and "sleep 1000" in p.stdout, (p.returncode, p.stdout, p.stderr))
    pid = int(c.ctr("task", "ls").stdout.split("\n")[1].split()[1])
    init = int(open("/proc/%d/task/%d/children" % (pid, pid)).read().split()[0])
    cgroups = of.cgroups_of(init)
    expect(len(cgroups) >= 3, cgroups)
    c.ctr("task", "kill", "t2")
    deadline = time.monotonic() + 10
    while "STOPPED" not in c.ctr("task", "ls").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    expect("STOPPED" in c.ctr("task", "ls").stdout, c.ctr("task", "ls").stdout)
    c.ctr("task", "rm", "t2")
    c.ctr("c", "rm", "t2")
    expect(not os.path.exists(os.path.join(state_root, "t2")), "state left")
    for d in cgroups:
        expect(not os.path.exists(d), "cgroup left: " + d)
    expect(not os.path.exists("/proc/%d" % pid) and not os.path.exists("/proc/%d" % init), "processes left")

    # -t on a real terminal (the shim waits for the end of create's output: the sandbox must not hold it)
    code, out = run_tty(["ctr", "--address", c.sock, "-n", c.ns, "run", "--rm", "-t", *runc, "--rootfs", rootfs,
                         "t3", "sh", "-c", "test -t 0 && echo CTR-TTY; exit 2"], timeout=30)
    expect(code == 2 and "CTR-TTY" in out, (code, out))



def test_ctr_image(c):
    if not shutil.which("podman"):
        raise of.Skip("no podman to build the image")
    root = os.path.join(c.dir, "img")
    of.make_rootfs(root)
    tar = os.path.join(c.dir, "bb.tar")
    subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", tar, "."], check=True)
    pbase = ["podman", "--root", os.path.join(c.dir, "pstorage"), "--runroot", os.path.join(c.dir, "prun"),
             "--storage-driver", "vfs", "--events-backend", "file"]
    name = "localhost/sbx-oci-ctr:test"
    try:
        subprocess.run(pbase + ["import", tar, name], check=True, capture_output=True)
        subprocess.run(pbase + ["save", "--format", "oci-archive", "-o", os.path.join(c.dir, "img.tar"), name],
                       check=True, capture_output=True)
    finally:
        subprocess.run(pbase + ["rmi", "-af"], capture_output=True)
        subprocess.run(pbase + ["system", "reset", "-f"], capture_output=True)
    c.ctr("images", "import", "--base-name", "localhost/sbx-oci-ctr", os.path.join(c.dir, "img.tar"))
    imgs = c.ctr("images", "ls", "-q").stdout.split()
    expect(imgs, "no image imported")
    p = c.ctr("run", "--rm", "--runc-binary", of.oci_binary(), imgs[0], "t4", "sh", "-c",
              "echo from-image; hostname; exit 0")
    expect("from-image" in p.stdout, p.stdout)


def main():
    why = of.prerequisites()
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if not why and not shutil.which(tool):
            why = "no %s (package containerd; scripts/install-deps.sh installs it)" % tool
    if why:
        of.skip_or_fail(why)
    tests = [test_ctr, test_ctr_image]
    print("1..%d" % len(tests))
    failed = 0
    for i, t in enumerate(tests, 1):
        c = None
        try:
            c = Containerd()
            t(c)
            print("ok %d - %s" % (i, t.__name__))
        except of.Skip as e:
            print("ok %d - %s # SKIP %s" % (i, t.__name__, e))
        except Exception:
            import traceback
            failed += 1
            print("not ok %d - %s" % (i, t.__name__))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
        finally:
            if c:
                c.cleanup()
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
