#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""podman (Debian's, with conmon) driving sandbox-oci: `podman --runtime sandbox-oci run` of images built here
(a static busybox, and the Debian root tests/integration/test_apt_image.py caches, imported with `podman
import`), with -it (on a real pty), -e, -w, --memory, --pids-limit, exec, stop, rm, exit statuses; checked from
inside the container and on the host (the sandbox's private id range, the bounds in its cgroups, nothing left
after rm: runtime state, sandbox cgroups, processes).

Podman gets a storage of the test's own (--root, --runroot in a temp dir, removed at the end with everything
podman made there), --network none (podman's CNI network is shared by the host) or a network namespace of the test's own
(--network ns:PATH), cgroupfs; podman's default seccomp profile and one of the test's own stacked on ours, and
the run.sandbox.seccomp=ours annotation that drops the engine's. Exit 77 without podman unless
SBX_TESTS_MUST_RUN=1."""

import glob
import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import image_cache  # noqa: E402
import oci_fixture as of  # noqa: E402

DEBIAN_RECIPE = os.path.join(HERE, "apt-image-recipe.sh")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Podman:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbx-oci-podman-")
        os.chmod(self.dir, 0o755)
        self.tag = uuid.uuid4().hex[:8]
        self.base = ["podman", "--root", os.path.join(self.dir, "storage"), "--runroot", os.path.join(self.dir, "run"),
                     "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                     "--runtime", of.oci_binary()]
        self.images = []

    def run(self, *args, check=True, timeout=120, **kw):
        p = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=timeout, **kw)
        if check and p.returncode != 0:
            raise AssertionError("podman %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def import_dir(self, root, name):
        tar = os.path.join(self.dir, name.replace("/", "_").replace(":", "_") + ".tar")
        subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", tar, "."], check=True)
        self.run("import", tar, name, timeout=600)
        os.unlink(tar)
        self.images.append(name)

    def cleanup(self):
        subprocess.run(self.base + ["rm", "-af", "-t", "0"], capture_output=True, timeout=120)
        subprocess.run(self.base + ["rmi", "-af"], capture_output=True, timeout=120)
        subprocess.run(self.base + ["system", "reset", "-f"], capture_output=True, timeout=120)
        # what podman's overlay driver may still have mounted under our storage
        for line in reversed(open("/proc/self/mountinfo").read().splitlines()):
            mp = line.split()[4]
            if mp.startswith(self.dir):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_tty(pm, args, send=None, timeout=60):
    """podman ARGS on the slave of a new pty (podman run -it needs a terminal); the output."""
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(pm.base[0], pm.base + list(args))
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
        if send and not sent and b"READY" in out:
            os.write(master, send)
            sent = True
    os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


COMMON = ["--network", "none", "--security-opt", "seccomp=unconfined"]


def test_busybox(pm):
    img = "localhost/sbx-oci-bb-%s:test" % pm.tag
    root = os.path.join(pm.dir, "bbroot")
    of.make_rootfs(root)
    pm.import_dir(root, img)

    # exit status, -e, -w, the private id range
    p = pm.run("run", "--rm", *COMMON, "-e", "FOO=bar", "-w", "/tmp", img, "sh", "-c",
               "echo foo=$FOO pwd=$(pwd); cat /proc/self/uid_map; exit 7", check=False)
    expect(p.returncode == 7, (p.returncode, p.stderr))
    expect("foo=bar pwd=/tmp" in p.stdout, p.stdout)
    m = p.stdout.split("\n")[1].split()
    expect(m[0] == "0" and int(m[1]) >= 65536 and m[2] == "65536", "not a private id range: %s" % m)

    # --memory, --pids-limit: in the container's cgroups (as it sees them) and enforced
    p = pm.run("run", "--rm", *COMMON, "--memory", "48m", "--pids-limit", "40", img, "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
               "sh -c 'i=0; while test $i -lt 60; do sleep 5 & i=$((i+1)); done' 2>/dev/null; "
               "read n < /sys/fs/cgroup/pids/pids.current; echo $n; exit 0")
    lines = p.stdout.split()
    expect(lines[0] == str(48 << 20) and lines[1] == "40", p.stdout)
    # the inner shell forked until the bound stopped it (and ended); its sleeps are still there
    expect(30 <= int(lines[-1]) <= 40, "the pids limit did not hold: %s" % p.stdout)
    # the annotation instead of seccomp=unconfined; no limit given: the sandbox's defaults
    p = pm.run("run", "--rm", "--network", "none", "--annotation", "run.sandbox.seccomp=ours", img, "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep Seccomp: /proc/self/status")
    expect(p.stdout.split()[0] == str(2 << 30) and "Seccomp:\t2" in p.stdout, p.stdout)
    # podman's default profile, stacked on ours: two filters; what both allow works
    p = pm.run("run", "--rm", "--network", "none", img, "sh", "-c",
               "mkdir /tmp/d && echo made; grep Seccomp_filters: /proc/self/status")
    expect("made" in p.stdout and "Seccomp_filters:\t2" in p.stdout, p.stdout)
    # a profile of the test's own: mkdir denied (EPERM) by it, sethostname still by ours though it allows it
    profile = os.path.join(pm.dir, "profile.json")
    with open(profile, "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["sethostname"], "action": "SCMP_ACT_ALLOW"}]}, f)
    p = pm.run("run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=" + profile,
               img, "sh", "-c", "mkdir /tmp/d; echo mkdir=$?; hostname x; echo host=$?")
    expect("mkdir=1" in p.stdout and "Operation not permitted" in p.stderr and "host=1" in p.stdout,
           (p.stdout, p.stderr))

    # --network ns:PATH: a network namespace of the test's own, joined (linux.namespaces[].path)
    netns = "sbxocipm-" + pm.tag
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "pv" + pm.tag, "type", "veth", "peer", "name", "pw" + pm.tag],
                       check=True)
        subprocess.run(["ip", "-n", netns, "addr", "add", "10.213.7.9/24", "dev", "pv" + pm.tag], check=True)
        p = pm.run("run", "--rm", "--network", "ns:/run/netns/" + netns, "--security-opt", "seccomp=unconfined", img,
                   "sh", "-c", "cat /proc/net/dev /proc/net/fib_trie; cat /proc/self/uid_map")
        expect("pv%s:" % pm.tag in p.stdout and "10.213.7.9" in p.stdout, p.stdout)
        m = p.stdout.strip().split("\n")[-1].split()
        expect(m[0] == "0" and int(m[1]) >= 65536, "not a private id range: %s" % m)
        # --network container:NAME: the other container's (podman names it by the container's pid, our monitor's)
        first = "sbx-oci-net-%s" % pm.tag
        pm.run("run", "-d", "--name", first, "--network", "ns:/run/netns/" + netns, img, "sleep", "1000")
        p = pm.run("run", "--rm", "--network", "container:" + first, img, "cat", "/proc/net/dev")
        expect("pv%s:" % pm.tag in p.stdout, p.stdout)
        pm.run("rm", "-f", "-t", "0", first)
    finally:
        subprocess.run(["ip", "netns", "del", netns])

    # -it on a real terminal
    code, out = run_tty(pm, ["run", "--rm", "-it", *COMMON, img, "sh", "-c",
                             "test -t 0 && echo IS-A-TTY; echo READY; read x; echo got-$x; exit 3"], send=b"hello\r")
    expect(code == 3, (code, out))
    expect("IS-A-TTY" in out and "got-hello" in out, out)

    # exec, stop, rm
    name = "sbx-oci-%s" % pm.tag
    pm.run("run", "-d", "--name", name, *COMMON, img, "sleep", "1000")
    p = pm.run("exec", "-e", "X=y", "-w", "/tmp", name, "sh", "-c", "echo $X $(pwd); ps -o args")
    expect(p.stdout.startswith("y /tmp") and "sleep 1000" in p.stdout, p.stdout)
    p = pm.run("exec", name, "sh", "-c", "exit 9", check=False)
    expect(p.returncode == 9, p.returncode)
    code, out = run_tty(pm, ["exec", "-it", name, "sh", "-c", "test -t 0 && echo EXEC-TTY"])
    expect(code == 0 and "EXEC-TTY" in out, (code, out))
    cid = pm.run("inspect", "-f", "{{.Id}}", name).stdout.strip()
    mon = int(pm.run("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
    expect(mon > 0 and os.path.exists("/proc/%d" % mon), "no container pid")
    init = int(open("/proc/%d/task/%d/children" % (mon, mon)).read().split()[0])
    cgroups = of.cgroups_of(init)
    expect(len(cgroups) >= 3, cgroups)
    t0 = time.monotonic()
    pm.run("stop", "-t", "10", name)
    expect(time.monotonic() - t0 < 8, "stop waited for the timeout: TERM did not reach the program")
    p = pm.run("inspect", "-f", "{{.State.ExitCode}}", name)
    expect(p.stdout.strip() == "143", p.stdout)
    pm.run("rm", name)
    expect(not os.path.exists("/proc/%d" % mon), "the container's monitor is left")
    left = glob.glob("/run/sandbox-oci*/%s" % cid) + glob.glob(os.path.join(pm.dir, "run", "*", cid))
    expect(left == [], "state left: %s" % left)
    for d in cgroups:
        expect(not os.path.exists(d), "cgroup left: " + d)
    expect(not os.path.exists("/proc/%d" % init), "the container's init is left")


def test_debian(pm):
    d = image_cache.cached("debian-apt", DEBIAN_RECIPE, ("root/usr/bin/apt-get",))
    if not d:
        if not shutil.which("mmdebstrap"):
            raise of.Skip("no mmdebstrap to build the Debian image")
        d, _ = image_cache.ensure("debian-apt", DEBIAN_RECIPE, ("root/usr/bin/apt-get",), 600, 660)
    img = "localhost/sbx-oci-debian-%s:test" % pm.tag
    pm.import_dir(os.path.join(d, "root"), img)
    p = pm.run("run", "--rm", *COMMON, "-e", "LANG=C", "-w", "/root", "--memory", "256m", img, "bash", "-c",
               "echo $BASH_VERSION; id -un; pwd; touch /etc/x && echo write-ok; "
               "apt-get --version | head -1; cat /etc/debian_version; "
               "stat -c %U /usr/bin/apt-get")
    out = p.stdout.split("\n")
    expect(out[1] == "root" and out[2] == "/root" and out[3] == "write-ok", p.stdout)
    expect(out[4].startswith("apt "), p.stdout)
    expect(out[6] == "root", "the image's files (host uid 0) must be root's inside: %s" % out[6])


def main():
    why = of.prerequisites()
    if not why and not shutil.which("podman"):
        why = "no podman (scripts/install-deps.sh installs it)"
    if not why and not shutil.which("conmon"):
        why = "no conmon"
    if why:
        of.skip_or_fail(why)
    tests = [test_busybox, test_debian]
    print("1..%d" % len(tests))
    failed = 0
    for i, t in enumerate(tests, 1):
        pm = Podman()
        try:
            t(pm)
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
            pm.cleanup()
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
