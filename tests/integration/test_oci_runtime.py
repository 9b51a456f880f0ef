#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""sandbox-oci driven directly, as an engine drives it (root, FUSE, real cgroups, no mocks).

The state machine created → running → stopped with the program's exit status (state and the monitor's own
exit status, which an engine's subreaper collects: this test is a subreaper), kill and delete in each state,
the console socket with a real pty, pid files, hooks with the state on stdin, config.json fields checked from
inside the container, the sandbox's own guarantees (a private id range, default bounds), exec, bad bundles
refused with a message naming the field, and nothing left after delete (state directories, the runtime's
state and data, cgroups, processes)."""

import array
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import oci_fixture as of  # noqa: E402


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def test_state_machine_and_exit_status(env):
    b = env.bundle(["sh", "-c", "read x; exit 3"])
    cid = env.new_id()
    pidfile = os.path.join(env.dir, "pid")
    r, w = os.pipe()
    env.oci("create", "--bundle", b, "--pid-file", pidfile, cid, stdin=r)
    os.close(r)
    s = env.state_of(cid)
    expect(s["status"] == "created", s)
    expect(s["id"] == cid and s["bundle"] == b and s["ociVersion"].startswith("1."), s)
    pid = int(open(pidfile).read())
    expect(s["pid"] == pid, (s, pid))
    init = env.record(cid)["initPid"]
    # created: the program is not running yet (the init has no child)
    expect(open("/proc/%d/task/%d/children" % (init, init)).read().strip() == "", "a program runs before start")
    cgroups = of.cgroups_of(init)
    expect(any("sandbox-" in d for d in cgroups), cgroups)
    env.oci("start", cid)
    expect(env.state_of(cid)["status"] == "running", "not running after start")
    p = env.oci("start", cid, check=False)
    expect(p.returncode == 1 and "not created" in p.stderr, p.stderr)
    os.write(w, b"go\n")
    os.close(w)
    expect(env.reap(pid) == 3, "the monitor's exit status is not the program's")
    s = env.state_of(cid)
    expect(s["status"] == "stopped" and s["exitStatus"] == 3 and "pid" not in s, s)
    p = env.oci("kill", cid, "KILL", check=False)
    expect(p.returncode == 1 and "not running" in p.stderr, p.stderr)
    env.oci("delete", cid)
    expect(not os.path.exists(os.path.join(env.root, cid)), "state directory left")
    for d in cgroups:
        expect(not os.path.exists(d), "cgroup left: " + d)
    expect(not os.path.exists("/proc/%d" % init), "init left")
    expect(env.leftovers() == [], env.leftovers())
    p = env.oci("state", cid, check=False)
    expect(p.returncode == 1 and "does not exist" in p.stderr, p.stderr)


def test_kill_and_delete_in_each_state(env):
    # created: kill ends it
    b = env.bundle(["sleep", "1000"])
    c1 = env.new_id()
    pidfile = os.path.join(env.dir, "pid1")
    env.oci("create", "--bundle", b, "--pid-file", pidfile, c1)
    pid = int(open(pidfile).read())
    env.oci("kill", c1, "KILL")
    expect(env.reap(pid) == 137, "created + KILL")
    expect(env.state_of(c1)["status"] == "stopped", "created + KILL: not stopped")
    env.oci("delete", c1)
    # created: delete without --force (as runc) removes it
    c2 = env.new_id()
    env.oci("create", "--bundle", b, "--pid-file", pidfile, c2)
    pid = int(open(pidfile).read())
    env.oci("delete", c2)
    expect(env.reap(pid) != 0, "delete of a created container")
    expect(not os.path.exists("/proc/%d" % pid), "monitor left")
    # running: TERM reaches the program (143), delete refuses without --force
    c3 = env.new_id()
    env.oci("create", "--bundle", b, "--pid-file", pidfile, c3)
    pid = int(open(pidfile).read())
    env.oci("start", c3)
    p = env.oci("delete", c3, check=False)
    expect(p.returncode == 1 and "running" in p.stderr, p.stderr)
    env.oci("kill", c3)  # TERM by default
    expect(env.reap(pid) == 143, "running + TERM")
    expect(env.state_of(c3)["exitStatus"] == 143, env.state_of(c3))
    env.oci("delete", c3)
    # running: delete --force
    c4 = env.new_id()
    env.oci("create", "--bundle", b, "--pid-file", pidfile, c4)
    pid = int(open(pidfile).read())
    env.oci("start", c4)
    init = env.record(c4)["initPid"]
    env.oci("delete", "--force", c4)
    expect(env.reap(pid) == 137, "delete --force")
    expect(not os.path.exists("/proc/%d" % init), "init left after delete --force")
    # kill --all reaches every process, not only the program
    b2 = env.bundle(["sh", "-c", "sleep 1000 & sleep 1000 & trap '' TERM; wait; wait; exec sleep 999"])
    c5 = env.new_id()
    env.oci("create", "--bundle", b2, "--pid-file", pidfile, c5)
    pid = int(open(pidfile).read())
    env.oci("start", c5)
    time.sleep(0.5)
    ps = json.loads(env.oci("ps", "--format", "json", c5).stdout)
    expect(len(ps) >= 4, ps)  # init, sh, two sleeps
    env.oci("kill", "--all", c5, "TERM")
    time.sleep(0.5)
    ps2 = json.loads(env.oci("ps", "--format", "json", c5).stdout)
    expect(len(ps2) == 2, "TERM --all: %s left" % ps2)  # the init and the shell (now sleep 999) that ignores TERM
    env.oci("kill", "--all", c5, "KILL")
    expect(env.reap(pid) == 137, "kill --all KILL")
    env.oci("delete", c5)
    # bad signal names
    p = env.oci("kill", c5, "NOPE", check=False)
    expect(p.returncode == 1 and "not a signal" in p.stderr, p.stderr)
    expect(env.leftovers() == [], env.leftovers())


def recv_fd(sock):
    fds = array.array("i")
    msg, anc, flags, addr = sock.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    return fds[0]


def test_console_socket(env):
    b = env.bundle(["sh", "-c", "test -t 0 && echo TTY=yes; read line; echo GOT=$line; exit 5"], terminal=True)
    cid = env.new_id()
    path = os.path.join(env.dir, "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    pidfile = os.path.join(env.dir, "pid")
    p = env.oci("create", "--bundle", b, "--pid-file", pidfile, "--console-socket", path, cid, check=False)
    expect(p.returncode == 0, p.stderr)
    conn, _ = srv.accept()
    master = recv_fd(conn)
    conn.close()
    srv.close()
    pid = int(open(pidfile).read())
    env.oci("start", cid)
    out = b""
    deadline = time.monotonic() + 10
    while b"TTY=yes" not in out and time.monotonic() < deadline:
        out += os.read(master, 4096)
    expect(b"TTY=yes" in out, out)
    os.write(master, b"hello\n")
    while b"GOT=hello" not in out and time.monotonic() < deadline:
        out += os.read(master, 4096)
    expect(b"GOT=hello" in out, out)
    os.close(master)
    expect(env.reap(pid) == 5, "exit status through the terminal")
    env.oci("delete", cid)
    # terminal without a console socket: refused
    c2 = env.new_id()
    p = env.oci("create", "--bundle", b, c2, check=False)
    expect(p.returncode == 1 and "console-socket" in p.stderr, p.stderr)
    expect(env.leftovers() == [], env.leftovers())


def test_hooks_get_the_state(env):
    out = os.path.join(env.dir, "hooks")
    os.makedirs(out)

    def hook(name):
        return {"path": "/bin/sh", "args": ["sh", "-c", "cat > %s/%s" % (out, name)], "timeout": 10}

    def edit(c):
        c["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "poststart", "poststop")}
    b = env.bundle(["sleep", "1000"], edit=edit)
    cid = env.new_id()
    pidfile = os.path.join(env.dir, "pid")
    env.oci("create", "--bundle", b, "--pid-file", pidfile, cid)
    pid = int(open(pidfile).read())
    for k in ("prestart", "createRuntime"):
        s = json.load(open(os.path.join(out, k)))
        expect(s["id"] == cid and s["status"] == "created" and s["pid"] == pid and s["bundle"] == b, (k, s))
    expect(not os.path.exists(os.path.join(out, "poststart")), "poststart before start")
    env.oci("start", cid)
    s = json.load(open(os.path.join(out, "poststart")))
    expect(s["status"] == "running" and s["pid"] == pid, s)
    env.oci("kill", cid, "KILL")
    env.reap(pid)
    env.oci("delete", cid)
    s = json.load(open(os.path.join(out, "poststop")))
    expect(s["status"] == "stopped" and s["id"] == cid, s)

    # a failing createRuntime hook fails the create, and nothing is left
    def edit_fail(c):
        c["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b2 = env.bundle(["true"], edit=edit_fail)
    c2 = env.new_id()
    p = env.oci("create", "--bundle", b2, c2, check=False)
    expect(p.returncode == 1 and "hook" in p.stderr, p.stderr)
    expect(env.leftovers() == [], env.leftovers())


def test_container_hooks(env):
    """createContainer: in the container's mount namespace, its path the host's, after the mounts, before start;
    startContainer: in the container as its root (our seccomp allow-list on it), before the program."""
    # a script of the host's, nowhere in the container: its path resolves in the runtime's namespace
    hook = os.path.join(env.dir, "cc-hook.sh")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\ncat > tmp/cc-state\nreadlink /proc/self/ns/mnt > tmp/cc-mnt\n")
    os.chmod(hook, 0o755)

    def edit(c):
        c["hooks"] = {
            "createContainer": [{"path": hook, "timeout": 10}],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/sc-state; "
                                "echo sc-uid=$(id -u) sc-pid=$$ sc-$(grep ^Seccomp_filters: /proc/self/status | tr -d '\\t')"
                                " > /tmp/sc-info"], "timeout": 10}],
        }
        c["process"]["args"] = ["sh", "-c", "cat /tmp/cc-state; echo; cat /tmp/sc-state; echo; cat /tmp/sc-info; "
                                "cat /tmp/cc-mnt"]
    b = env.bundle(edit=edit)
    cid = env.new_id()
    outfile = os.path.join(env.dir, "chooks-out")
    pidfile = os.path.join(env.dir, "chooks-pid")
    with open(outfile, "w") as f:
        p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, "--pid-file", pidfile,
                               cid], stdout=f, stderr=f, stdin=of.subprocess.DEVNULL, env=env.env(), timeout=60)
    expect(p.returncode == 0, open(outfile).read())
    init = env.record(cid)["initPid"]
    init_mnt = os.readlink("/proc/%d/ns/mnt" % init)
    monitor = int(open(pidfile).read())
    env.oci("start", cid)
    expect(env.reap(monitor) == 0, open(outfile).read())
    text = open(outfile).read().split("\n")
    cc, sc = json.loads(text[0]), json.loads(text[1])
    expect(cc["id"] == cid and cc["status"] == "created", cc)
    expect(sc["id"] == cid and sc["status"] == "created", sc)
    info = dict(w.split("=", 1) for w in text[2].split() if "=" in w)
    expect(info["sc-uid"] == "0" and int(info["sc-pid"]) < 100, info)  # root, in the container's pid namespace
    expect(text[2].strip().endswith("sc-Seccomp_filters:1"), text[2])  # our allow-list
    expect(text[3].strip() == init_mnt, (text[3], init_mnt))  # createContainer ran in the container's mounts
    env.oci("delete", cid)

    # a failing startContainer hook: start fails and the container stops
    def edit_fail(c):
        c["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
        c["process"]["args"] = ["sleep", "100"]
    b2 = env.bundle(edit=edit_fail)
    c2 = env.new_id()
    env.oci("create", "--bundle", b2, "--pid-file", pidfile, c2)
    monitor = int(open(pidfile).read())
    p = env.oci("start", c2, check=False)
    expect(p.returncode == 1 and "startContainer" in p.stderr, p.stderr)
    expect(env.reap(monitor) != 0, "the container stopped")
    env.oci("delete", c2)
    expect(env.leftovers() == [], env.leftovers())


PROBE = r"""
echo "uid=$(id -u) gid=$(id -g)"
echo "cwd=$(pwd)"
echo "host=$(hostname)"
echo "env=$FOO"
echo "nofile=$(ulimit -n)"
echo "cap=$(grep CapEff /proc/self/status | tr -d '\t')"
echo "uidmap=$(cat /proc/self/uid_map | tr -s ' ')"
touch /rootfile 2>/dev/null && echo rootro=no || echo rootro=yes
echo "masked=$(cat /etc/secret)$(ls /etc/secretdir | wc -l)"
echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys=rw || echo procsys=ro
echo "ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\t' ' ')"
echo "tmpfs=$(stat -f -c %b /scratch)x$(stat -f -c %S /scratch)"
echo "bindro=$(cat /data/ro/file)"
touch /data/ro/new 2>/dev/null && echo bindwrite=yes || echo bindwrite=no
echo hi > /data/rw/out && echo bindrw=yes
echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
echo "mqueue=$(grep -c ' /dev/mqueue mqueue' /proc/mounts)"
echo "nnp=$(grep NoNewPrivs /proc/self/status | tr -d '\t')"
echo "seccomp=$(grep '^Seccomp:' /proc/self/status | tr -d '\t')"
echo "umask=$(umask)"
"""


def run_probe(env, edit, secrets=False):
    b = env.bundle(["sh", "-c", PROBE], edit=edit)
    if secrets:
        with open(os.path.join(b, "rootfs", "etc", "secret"), "w") as f:
            f.write("secret")
        os.makedirs(os.path.join(b, "rootfs", "etc", "secretdir"))
        with open(os.path.join(b, "rootfs", "etc", "secretdir", "key"), "w") as f:
            f.write("secret")
    cid = env.new_id()
    pidfile = os.path.join(env.dir, "pid-" + cid)
    outfile = os.path.join(env.dir, "out-" + cid)
    with open(outfile, "w") as out:
        p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, "--pid-file", pidfile,
                               cid], stdout=out, stderr=out, stdin=of.subprocess.DEVNULL, text=True,
                              env=env.env(), timeout=60)
        p.stderr = open(outfile).read()
    expect(p.returncode == 0, p.stderr)
    pid = int(open(pidfile).read())
    env.oci("start", cid)
    status = env.reap(pid)
    env.oci("delete", cid)
    text = open(outfile).read()
    expect(status == 0, "probe exit %d: %s" % (status, text))
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_config_fields_inside(env):
    data = os.path.join(env.dir, "hostdata")
    os.makedirs(os.path.join(data, "ro"))
    os.makedirs(os.path.join(data, "rw"))
    os.chmod(os.path.join(data, "rw"), 0o777)  # the container's uid 1000 is a host uid of its private range
    with open(os.path.join(data, "ro", "file"), "w") as f:
        f.write("content")

    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "umask": 0o027}
        c["process"]["cwd"] = "/tmp"
        c["process"]["env"] = ["PATH=/bin", "FOO=bar"]
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 321}]
        c["hostname"] = "oci-probe"
        c["root"]["readonly"] = True
        c["mounts"] += [
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=4m"]},
            {"destination": "/data/ro", "type": "bind", "source": os.path.join(data, "ro"), "options": ["rbind", "ro"]},
            {"destination": "/data/rw", "type": "bind", "source": os.path.join(data, "rw"), "options": ["rbind", "rw"]},
        ]
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 77}}
        c["linux"]["sysctl"] = {"net.ipv4.ping_group_range": "0 1000"}
        c["linux"]["maskedPaths"] += ["/etc/secret", "/etc/secretdir"]
    kv = run_probe(env, edit, secrets=True)
    expect(kv.get("uid") == "1000 gid=1000", kv)
    expect(kv["cwd"] == "/tmp", kv)
    expect(kv["host"] == "oci-probe", kv)
    expect(kv["env"] == "bar", kv)
    expect(kv["nofile"] == "321", kv)
    expect(kv["cap"] == "CapEff:0000000000000000", kv)  # uid 1000: no capability
    fields = kv["uidmap"].split()
    expect(fields[0] == "0" and fields[2] == "65536" and int(fields[1]) >= 65536, kv["uidmap"])  # a private range
    expect(kv["rootro"] == "yes", kv)
    expect(kv["masked"] == "0", kv)  # the file is empty (/dev/null), the directory too
    expect(kv["procsys"] == "ro", kv)
    expect(kv["ping"] == "0 1000", kv)
    expect(kv["tmpfs"] == "1024x4096", kv)  # 4 MiB
    expect(kv["bindro"] == "content" and kv["bindwrite"] == "no" and kv["bindrw"] == "yes", kv)
    expect(kv["mem"] == str(64 << 20), kv)
    expect(kv["pids"] == "77", kv)
    expect(kv["mqueue"] == "1", kv)
    expect(kv["nnp"] == "NoNewPrivs:1", kv)
    expect(kv["seccomp"] == "Seccomp:2", kv)
    expect(kv["umask"] == "0027", kv)
    expect(open(os.path.join(data, "rw", "out")).read() == "hi\n", "the rw bind's write")
    owner = os.stat(os.path.join(data, "rw", "out")).st_uid
    expect(owner == int(fields[1]) + 1000, "the file of uid 1000 inside is host uid %d" % owner)


def test_root_capabilities_and_defaults(env):
    def edit(c):
        c["process"]["capabilities"] = {k: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]
                                        for k in ("bounding", "effective", "permitted")}
        c["linux"].pop("resources", None)
    kv = run_probe(env, edit)
    # CHOWN (0), KILL (5), NET_RAW (13)
    expect(kv["cap"] == "CapEff:%016x" % ((1 << 0) | (1 << 5) | (1 << 13)), kv)
    # no limit in config.json: the sandbox defaults (2 GiB, 1024 pids)
    expect(kv["mem"] == str(2 << 30), kv)
    expect(kv["pids"] == "1024", kv)

    def edit_none(c):
        c["linux"].pop("resources", None)
        c["annotations"] = {"run.sandbox.limits": "none"}
    kv = run_probe(env, edit_none)
    expect(kv["pids"] == "max", kv)


def ns_id(path):
    return os.stat(path).st_ino


def test_join_namespaces(env):
    """linux.namespaces[].path: a network namespace made by `ip netns add`, UTS and IPC ones of a process of the
    test's, joined; the user namespace stays the container's own (a private id range)."""
    netns = "sbxoci-" + env.tag
    dummy = "sd" + env.tag
    addr = "10.%d.%d.7" % (int(env.tag[:2], 16), int(env.tag[2:4], 16))
    of.subprocess.run(["ip", "netns", "add", netns], check=True)
    holder = None
    try:
        for cmd in (["link", "add", dummy, "type", "veth", "peer", "name", dummy + "p"], ["addr", "add", addr + "/24", "dev", dummy],
                    ["link", "set", dummy + "p", "up"], ["link", "set", dummy, "up"]):
            of.subprocess.run(["ip", "-n", netns] + cmd, check=True)
        holder = of.subprocess.Popen(["unshare", "--uts", "--ipc", "--", "sh", "-c",
                                      "hostname joined-%s && ipcmk -M 4096 >/dev/null && echo ready && exec sleep 600"
                                      % env.tag], stdout=of.subprocess.PIPE, text=True)
        expect(holder.stdout.readline().strip() == "ready", "the UTS and IPC namespaces' holder")

        def edit(c):
            for n in c["linux"]["namespaces"]:
                if n["type"] == "network":
                    n["path"] = "/run/netns/" + netns
                elif n["type"] in ("uts", "ipc"):
                    n["path"] = "/proc/%d/ns/%s" % (holder.pid, n["type"])
            c.pop("hostname", None)
            c["mounts"] = [m for m in c["mounts"] if m["type"] != "mqueue"]
            c["linux"]["sysctl"] = {"net.ipv4.ping_group_range": "0 4242", "kernel.shmmni": "1234"}
            c["process"]["args"] = ["sh", "-c", "cat /proc/net/dev /proc/net/fib_trie; echo host=$(hostname); "
                                    "echo shm=$(grep -c '^ *[0-9-]' /proc/sysvipc/shm); "
                                    "echo uidmap=$(cat /proc/self/uid_map); echo ping=$(cat /proc/sys/net/ipv4/ping_group_range); "
                                    "echo shmmni=$(cat /proc/sys/kernel/shmmni); echo mq=$(test -e /dev/mqueue && echo yes); "
                                    "sleep 100"]
        b = env.bundle(edit=edit)
        cid = env.new_id()
        out = os.path.join(env.dir, "join-out")
        pidfile = os.path.join(env.dir, "join-pid")
        with open(out, "w") as f:
            p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, "--pid-file", pidfile,
                                   cid], stdout=f, stderr=f, stdin=of.subprocess.DEVNULL, env=env.env(), timeout=60)
        expect(p.returncode == 0, open(out).read())
        monitor = int(open(pidfile).read())
        # the monitor went back to the host's namespaces after the clone
        for t in ("net", "uts", "ipc"):
            expect(ns_id("/proc/%d/ns/%s" % (monitor, t)) == ns_id("/proc/self/ns/" + t), "monitor's %s namespace" % t)
        init = env.record(cid)["initPid"]
        expect(ns_id("/proc/%d/ns/net" % init) == ns_id("/run/netns/" + netns), "the init's network namespace")
        expect(ns_id("/proc/%d/ns/uts" % init) == ns_id("/proc/%d/ns/uts" % holder.pid), "the init's UTS namespace")
        expect(ns_id("/proc/%d/ns/ipc" % init) == ns_id("/proc/%d/ns/ipc" % holder.pid), "the init's IPC namespace")
        expect(ns_id("/proc/%d/ns/user" % init) != ns_id("/proc/self/ns/user"), "a user namespace of its own")
        env.oci("start", cid)
        deadline = time.monotonic() + 20
        while "mq=" not in open(out).read() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = open(out).read()
        expect(dummy + ":" in text and addr in text, "the joined network's interface and address: " + text)
        kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        expect(kv.get("host") == "joined-" + env.tag, kv)
        expect(kv.get("shm") == "1", kv)  # the holder's segment
        fields = kv["uidmap"].split()
        expect(fields[0] == "0" and int(fields[1]) >= 65536 and fields[2] == "65536", kv["uidmap"])
        expect(kv.get("mq") == "", kv)  # no mqueue of ours in a joined IPC namespace
        # sysctls of the joined namespaces, set in them (as runc); the gids of ping_group_range are host gids,
        # unmapped inside (65534)
        expect(kv.get("shmmni") == "1234", kv)
        p = of.subprocess.run(["ip", "netns", "exec", netns, "cat", "/proc/sys/net/ipv4/ping_group_range"],
                              capture_output=True, text=True)
        expect(p.stdout.split() == ["0", "4242"], p.stdout)
        # exec joins the same ones
        p = env.oci("exec", cid, "sh", "-c", "grep -c %s: /proc/net/dev; hostname" % dummy)
        expect(p.stdout.split() == ["1", "joined-" + env.tag], p.stdout)
        env.oci("kill", cid, "KILL")
        expect(env.reap(monitor) != 0, "killed")
        env.oci("delete", cid)

        # A hostname in config.json is set in the joined UTS namespace, from outside (as runc does).
        def edit_host(c):
            edit(c)
            c["hostname"] = "set-" + env.tag
            c["process"]["args"] = ["hostname"]
        kv = run_probe(env, edit_host)
        p = of.subprocess.run(["nsenter", "-u", "-t", str(holder.pid), "hostname"], capture_output=True, text=True)
        expect(p.stdout.strip() == "set-" + env.tag, p.stdout)
        expect(env.leftovers() == [], env.leftovers())
    finally:
        if holder:
            holder.kill()
            holder.wait()
        of.subprocess.run(["ip", "netns", "del", netns])


def test_join_namespaces_of_a_container(env):
    """A pod: /proc/PID/ns/... of another container of ours (its pid, the monitor's, is what an engine knows: containerd
    passes the sandbox container's IPC and UTS namespaces so, podman --network container:NAME) is its init's; a path
    to the host's own namespace is refused."""
    def edit_a(c):
        c["hostname"] = "pod-" + env.tag
    a = env.bundle(["sleep", "100"], edit=edit_a)
    ca = env.new_id()
    pidfile = os.path.join(env.dir, "pod-pid")
    env.oci("create", "--bundle", a, "--pid-file", pidfile, ca)
    env.oci("start", ca)
    monitor = int(open(pidfile).read())
    init_a = env.record(ca)["initPid"]

    def edit_b(c):
        for n in c["linux"]["namespaces"]:
            if n["type"] in ("network", "ipc", "uts"):
                n["path"] = "/proc/%d/ns/%s" % (monitor, "net" if n["type"] == "network" else n["type"])
        c.pop("hostname", None)
        c["mounts"] = [m for m in c["mounts"] if m["type"] != "mqueue"]
        c["process"]["args"] = ["sh", "-c", "echo host=$(hostname)"]
    b = env.bundle(edit=edit_b)
    cb = env.new_id()
    out = os.path.join(env.dir, "pod-out")
    pidfile_b = os.path.join(env.dir, "pod-pid-b")
    with open(out, "w") as f:
        p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, "--pid-file", pidfile_b,
                               cb], stdout=f, stderr=f, stdin=of.subprocess.DEVNULL, env=env.env(), timeout=60)
    expect(p.returncode == 0, open(out).read())
    init_b = env.record(cb)["initPid"]
    for t in ("net", "ipc", "uts"):
        expect(ns_id("/proc/%d/ns/%s" % (init_b, t)) == ns_id("/proc/%d/ns/%s" % (init_a, t)), "shared " + t)
    expect(ns_id("/proc/%d/ns/user" % init_b) != ns_id("/proc/%d/ns/user" % init_a), "a user namespace of its own")
    env.oci("start", cb)
    expect(env.reap(int(open(pidfile_b).read())) == 0, open(out).read())
    expect("host=pod-" + env.tag in open(out).read(), open(out).read())
    env.oci("delete", cb)
    env.oci("delete", "--force", ca)

    # the host's own namespace (here: the monitor's own, by /proc/self) is refused, naming it
    def edit_host(c):
        for n in c["linux"]["namespaces"]:
            if n["type"] == "uts":
                n["path"] = "/proc/self/ns/uts"
    p = env.oci("create", "--bundle", env.bundle(edit=edit_host), env.new_id(), check=False)
    expect(p.returncode == 1 and "the uts namespace /proc/self/ns/uts: it is the host's own" in p.stderr, p.stderr)
    expect(env.leftovers() == [], env.leftovers())


def test_seccomp_stacked(env):
    """The engine's linux.seccomp is installed after our allow-list: what it denies is denied, what ours denies
    stays denied though the engine's allows everything else; exec gets both too."""
    def edit(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},  # defaultErrnoRet
                # args: chmod is denied for mode 0700 only
                {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
                {"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"},  # unknown names are skipped
                {"names": ["sethostname"], "action": "SCMP_ACT_ALLOW"},  # ours denies it: stays denied
            ],
        }
        caps = ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]
        c["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        c["process"]["args"] = ["sh", "-c", "mkdir /tmp/d 2>&1; echo mkdir=$?; rmdir /proc 2>&1; "
                                "touch /tmp/f; chmod 0700 /tmp/f 2>&1; echo c700=$?; chmod 0600 /tmp/f; echo c600=$?; "
                                "hostname other 2>&1; echo host=$?; "
                                "echo filters=$(grep Seccomp_filters /proc/self/status | tr -d '\t'); sleep 100"]
    b = env.bundle(edit=edit)
    cid = env.new_id()
    out = os.path.join(env.dir, "seccomp-out")
    pidfile = os.path.join(env.dir, "seccomp-pid")
    with open(out, "w") as f:
        p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, "--pid-file", pidfile,
                               cid], stdout=f, stderr=f, stdin=of.subprocess.DEVNULL, env=env.env(), timeout=60)
    expect(p.returncode == 0, open(out).read())
    env.oci("start", cid)
    deadline = time.monotonic() + 20
    while "filters=" not in open(out).read() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = open(out).read()
    expect("Permission denied" in text and "mkdir=1" in text, text)  # the engine's, errnoRet 13
    expect("rmdir: '/proc': Operation not permitted" in text, text)  # defaultErrnoRet 1
    expect("Invalid argument" in text and "c700=1" in text and "c600=0" in text, text)  # args
    expect("host=1" in text, text)  # ours
    expect("filters=Seccomp_filters:2" in text, text)
    p = env.oci("exec", cid, "sh", "-c", "mkdir /tmp/e 2>&1; grep Seccomp_filters /proc/self/status", check=False)
    expect("Permission denied" in p.stdout and "2" in p.stdout.split()[-1], p.stdout)
    env.oci("delete", "--force", cid)

    # the annotation drops the engine's: one filter, ours
    def edit_ours(c):
        edit(c)
        c["annotations"] = {"run.sandbox.seccomp": "ours"}
        c["process"]["args"] = ["sh", "-c", "mkdir /tmp/d && echo made=yes; "
                                "echo filters=$(grep Seccomp_filters /proc/self/status | tr -d '\t')"]
    kv = run_probe(env, edit_ours)
    expect(kv.get("made") == "yes" and kv.get("filters") == "Seccomp_filters:1", kv)


def test_groups_and_oom_score(env):
    """process.user.additionalGids (setgroups in the container's user namespace) and process.oomScoreAdj, for the
    program and for exec."""
    probe = "echo groups=$(grep ^Groups: /proc/self/status | tr -d 'Groups:\\t'); echo oom=$(cat /proc/self/oom_score_adj)"

    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [4242, 10]}
        c["process"]["oomScoreAdj"] = 500
        c["process"]["args"] = ["sh", "-c", probe + "; touch /tmp/ok; sleep 100"]
    b = env.bundle(edit=edit)
    cid = env.new_id()
    out = os.path.join(env.dir, "groups-out")
    with open(out, "w") as f:
        p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, cid], stdout=f, stderr=f,
                              stdin=of.subprocess.DEVNULL, env=env.env(), timeout=60)
    expect(p.returncode == 0, open(out).read())
    env.oci("start", cid)
    deadline = time.monotonic() + 20
    while "oom=" not in open(out).read() and time.monotonic() < deadline:
        time.sleep(0.05)
    kv = dict(line.split("=", 1) for line in open(out).read().splitlines() if "=" in line)
    expect(kv.get("groups", "").split() == ["10", "4242"], kv)
    expect(kv.get("oom") == "500", kv)
    p = env.oci("exec", cid, "sh", "-c", probe)
    kv = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    expect(kv.get("groups", "").split() == ["10", "4242"] and kv.get("oom") == "500", kv)
    env.oci("delete", "--force", cid)

    # below our own score (what the union's server has): clamped to just above it
    own = int(open("/proc/self/oom_score_adj").read())

    def edit_low(c):
        c["process"]["oomScoreAdj"] = -900
        c["process"]["args"] = ["sh", "-c", probe]
    kv = run_probe(env, edit_low)
    expect(kv.get("oom") == str(max(-900, min(own + 1, 1000))), (own, kv))
    expect(kv.get("groups") == "", kv)  # none asked: none


def test_devices(env):
    """linux.devices: the harmless ones at their own paths (ours already) or at another (bound there)."""
    def edit(c):
        c["linux"]["devices"] = [
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
            {"path": "/dev/extra/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666, "uid": 0, "gid": 0},
            {"path": "/dev/myurandom", "type": "c", "major": 1, "minor": 9},
        ]
        c["process"]["args"] = ["sh", "-c", "echo zero=$(stat -c %F:%t:%T /dev/extra/myzero); "
                                "echo urnd=$(stat -c %F:%t:%T /dev/myurandom); "
                                "echo read=$(head -c 4 /dev/extra/myzero | wc -c); echo x > /dev/null && echo null=ok"]
    kv = run_probe(env, edit)
    expect(kv.get("zero") == "character special file:1:5", kv)
    expect(kv.get("urnd") == "character special file:1:9", kv)
    expect(kv.get("read") == "4" and kv.get("null") == "ok", kv)


def test_pause_resume_update(env):
    """pause and resume (the freezer of the program's cgroup), update of memory, pids and CPU bounds (options and
    --resources), each checked from inside the container or by its progress."""
    b = env.bundle(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"])
    cid = env.new_id()
    out = os.path.join(env.dir, "pause-out")
    pidfile = os.path.join(env.dir, "pause-pid")
    with open(out, "w") as f:
        p = of.subprocess.run([of.oci_binary(), "--root", env.root, "create", "--bundle", b, "--pid-file", pidfile,
                               cid], stdout=f, stderr=f, stdin=of.subprocess.DEVNULL, env=env.env(), timeout=60)
    expect(p.returncode == 0, open(out).read())
    monitor = int(open(pidfile).read())
    p = env.oci("pause", cid, check=False)
    expect(p.returncode == 1 and "created, not running" in p.stderr, p.stderr)
    env.oci("start", cid)
    time.sleep(0.5)
    env.oci("pause", cid)
    expect(env.state_of(cid)["status"] == "paused", env.state_of(cid))
    time.sleep(0.2)  # a line on its way may still land
    n = len(open(out).read().split())
    time.sleep(1)
    expect(len(open(out).read().split()) == n, "the program went on while paused")
    p = env.oci("exec", cid, "true", check=False)
    expect(p.returncode != 0 and "paused" in p.stderr, p.stderr)
    p = env.oci("pause", cid, check=False)
    expect(p.returncode == 1 and "paused, not running" in p.stderr, p.stderr)
    p = env.oci("delete", cid, check=False)
    expect(p.returncode == 1 and "is paused" in p.stderr, p.stderr)
    env.oci("resume", cid)
    expect(env.state_of(cid)["status"] == "running", env.state_of(cid))
    time.sleep(0.5)
    expect(len(open(out).read().split()) > n + 3, "the program did not go on after resume")

    probe = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
             "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
    env.oci("update", "--memory", "100M", "--pids-limit", "55", "--cpu-quota", "50000", "--cpu-period", "100000", cid)
    expect(env.oci("exec", cid, "sh", "-c", probe).stdout.split() == [str(100 << 20), "55", "50000", "100000"],
           "update by options")
    res = os.path.join(env.dir, "resources.json")
    with open(res, "w") as f:
        json.dump({"memory": {"limit": 80 << 20, "swap": 80 << 20}, "pids": {"limit": 66},
                   "cpu": {"quota": 150000, "period": 100000, "shares": 1024}, "devices": []}, f)
    env.oci("update", "--resources", res, cid)
    expect(env.oci("exec", cid, "sh", "-c", probe).stdout.split() == [str(80 << 20), "66", "150000", "100000"],
           "update --resources")
    # raised again (v1: memory+swap first)
    env.oci("update", "--memory", "300M", cid)
    expect(env.oci("exec", cid, "sh", "-c", probe).stdout.split()[0] == str(300 << 20), "update raising memory")
    # from stdin, as containerd's shim sends it
    env.oci("update", "--resources", "-", cid, input=json.dumps({"pids": {"limit": 44}}))
    expect(env.oci("exec", cid, "sh", "-c", probe).stdout.split()[1] == "44", "update --resources -")
    # the pids bound holds after the update
    p = env.oci("exec", cid, "sh", "-c", "sh -c 'i=0; while test $i -lt 60; do sleep 5 & i=$((i+1)); done' 2>/dev/null; "
                "read n < /sys/fs/cgroup/pids/pids.current; echo $n", check=False)
    expect(p.stdout.strip() and int(p.stdout.split()[-1]) <= 44, (p.returncode, p.stdout, p.stderr))
    for args, want in ((["--memory", "-1"], "cannot lift a bound"), (["--pids-limit", "-1"], "cannot lift a bound"),
                       ([], "nothing to change")):
        p = env.oci("update", *args, cid, check=False)
        expect(p.returncode != 0 and want in p.stderr, (args, p.stderr))
    with open(res, "w") as f:
        json.dump({"blockIO": {"weight": 10}}, f)
    p = env.oci("update", "--resources", res, cid, check=False)
    expect(p.returncode == 1 and "linux.resources.blockIO" in p.stderr, p.stderr)
    # a paused container is killed by KILL
    env.oci("pause", cid)
    env.oci("kill", cid, "KILL")
    expect(env.reap(monitor) == 137, "killed while paused")
    env.oci("delete", cid)
    expect(env.leftovers() == [], env.leftovers())


def block_device():
    """major, minor of a whole disk of this host (/sys/block), or None."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram")):
            continue
        try:
            return tuple(int(x) for x in open("/sys/block/%s/dev" % name).read().split(":"))
        except (OSError, ValueError):
            continue
    return None


def test_cpuset_and_blkio(env):
    """linux.resources.cpu.cpus/mems and blockIO on this hybrid host's v1 cpuset and blkio hierarchies (v2: the VM
    test): the container runs on the CPU asked for, its cgroup holds the throttles, what the kernel refuses is named."""
    dev = block_device()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers") or not os.path.isdir("/sys/fs/cgroup/cpuset") or \
            not os.path.exists("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device") or dev is None:
        raise of.Skip("no v1 cpuset and blkio hierarchies or no block device (the VM test covers v2)")
    rule = {"major": dev[0], "minor": dev[1]}

    def edit(c):
        c["linux"]["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
        c["linux"]["resources"]["blockIO"] = {"throttleReadBpsDevice": [dict(rule, rate=10 << 20)],
                                              "throttleWriteIOPSDevice": [dict(rule, rate=321)]}
    b = env.bundle(["sleep", "1000"], edit=edit)
    cid = env.new_id()
    pidfile = os.path.join(env.dir, "pid-" + cid)
    env.oci("create", "--bundle", b, "--pid-file", pidfile, cid)
    pid = int(open(pidfile).read())
    env.oci("start", cid)
    p = env.oci("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status")
    expect(p.stdout.split() == ["Cpus_allowed_list:", "0"], p.stdout)
    dirs = of.cgroups_of(env.record(cid)["initPid"])
    cpuset = [d for d in dirs if d.startswith("/sys/fs/cgroup/cpuset/")]
    blkio = [d for d in dirs if d.startswith("/sys/fs/cgroup/blkio/")]
    expect(len(cpuset) == 1 and len(blkio) == 1, dirs)
    # the program's cgroup and the sandbox's, its parent, which holds the bounds
    expect(open(cpuset[0] + "/cpuset.cpus").read().strip() == "0", cpuset)
    expect(open(os.path.dirname(cpuset[0]) + "/cpuset.cpus").read().strip() == "0", cpuset)
    sandbox_blkio = os.path.dirname(blkio[0])
    want = "%d:%d 10485760" % dev
    expect(open(sandbox_blkio + "/blkio.throttle.read_bps_device").read().strip() == want, sandbox_blkio)
    want = "%d:%d 321" % dev
    expect(open(sandbox_blkio + "/blkio.throttle.write_iops_device").read().strip() == want, sandbox_blkio)
    env.oci("kill", cid, "KILL")
    expect(env.reap(pid) == 137, "kill")
    env.oci("delete", cid)
    expect(not os.path.exists(sandbox_blkio) and not os.path.exists(os.path.dirname(cpuset[0])), "cgroups removed")

    # a CPU the host does not have; a device that does not exist; a weight without blkio.weight or blkio.bfq.weight
    cases = [({"cpu": {"cpus": "4095"}}, "the kernel refused linux.resources.cpu.cpus"),
             ({"blockIO": {"throttleReadBpsDevice": [{"major": 4095, "minor": 77, "rate": 1}]}},
              "the kernel refused linux.resources.cpu.cpus, cpu.mems or blockIO")]
    if not any(os.path.exists("/sys/fs/cgroup/blkio/" + f) for f in ("blkio.weight", "blkio.bfq.weight")):
        cases.append(({"blockIO": {"weight": 100}}, "linux.resources.blockIO.weight needs"))
    for res, want in cases:
        b = env.bundle(["true"], edit=lambda c, res=res: c["linux"]["resources"].update(res))
        p = env.oci("create", "--bundle", b, env.new_id(), check=False)
        expect(p.returncode == 1 and want in p.stderr, (res, p.returncode, p.stderr))
    expect(env.leftovers() == [], env.leftovers())


def test_exec(env):
    b = env.bundle(["sleep", "1000"], edit=lambda c: c["process"].update(env=["PATH=/bin", "FOO=fromconfig"]))
    cid = env.new_id()
    pidfile = os.path.join(env.dir, "pid")
    env.oci("create", "--bundle", b, "--pid-file", pidfile, cid)
    pid = int(open(pidfile).read())
    p = env.oci("exec", cid, "sh", "-c", "echo x", check=False)
    expect(p.returncode == 1 and "not running" in p.stderr, p.stderr)
    env.oci("start", cid)
    p = env.oci("exec", "--env", "BAR=b", "--user", "5:6", "--cwd", "/tmp", cid, "sh", "-c",
                "echo $FOO $BAR $(id -u) $(id -g) $(pwd) $(hostname); exit 4", check=False)
    expect(p.returncode == 4, (p.returncode, p.stderr))
    expect(p.stdout.split() == ["fromconfig", "b", "5", "6", "/tmp", "sandbox"], p.stdout)
    # nothing of the host's credentials: no supplementary group (host gid 0 would open group-readable files)
    p = env.oci("exec", cid, "grep", "^Groups:", "/proc/self/status", preexec_fn=lambda: os.setgroups([0, 27]))
    expect(p.stdout.split() == ["Groups:"], p.stdout)
    # the exec'd process is in the container's pid namespace and cgroups
    p = env.oci("exec", cid, "sh", "-c", "ps -o pid,args; cat /proc/self/cgroup")
    expect("sleep 1000" in p.stdout, p.stdout)
    init = env.record(cid)["initPid"]
    p2 = env.oci("exec", "--detach", "--pid-file", os.path.join(env.dir, "x.pid"), cid, "sleep", "1000")
    xpid = int(open(os.path.join(env.dir, "x.pid")).read())
    expect(of.cgroups_of(xpid) == of.cgroups_of(init), (of.cgroups_of(xpid), of.cgroups_of(init)))
    os.kill(xpid, signal.SIGKILL)
    env.reap(xpid)
    # --process FILE, --detach, --pid-file
    proc = {"args": ["sh", "-c", "echo detached > /tmp/d; sleep 1000"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}, "terminal": False}
    pf = os.path.join(env.dir, "process.json")
    json.dump(proc, open(pf, "w"))
    epid = os.path.join(env.dir, "exec.pid")
    env.oci("exec", "--process", pf, "--detach", "--pid-file", epid, cid)
    xp = int(open(epid).read())
    expect(os.path.exists("/proc/%d" % xp), "the detached process")
    time.sleep(0.3)
    expect(env.oci("exec", cid, "cat", "/tmp/d").stdout == "detached\n", "--process")
    p = env.oci("exec", cid, "/nonexistent", check=False)
    expect(p.returncode == 127 and "nonexistent" in p.stderr, (p.returncode, p.stderr))
    env.oci("kill", cid, "KILL")
    # the detached process ends with the container (it was reparented to us, the subreaper: reaped first, as an
    # engine's subreaper would, or its zombie holds the cgroup)
    env.reap(xp)
    expect(env.reap(pid) == 137, "kill")
    env.oci("delete", cid)
    expect(env.leftovers() == [], env.leftovers())


def test_bad_bundles(env):
    cases = [
        (lambda c: c.pop("process"), "process is missing"),
        (lambda c: c["process"].update(cwd="tmp"), "process.cwd"),
        (lambda c: c["linux"]["namespaces"].append({"type": "time"}), "'time' namespace"),
        (lambda c: c["linux"]["namespaces"][0].update(path="/proc/1/ns/pid"),
         "linux.namespaces[0].path: joining an existing pid namespace"),
        (lambda c: c["linux"]["namespaces"][1].update(path="/proc/1/ns/uts"), "the network namespace /proc/1/ns/uts"),
        (lambda c: c["linux"]["namespaces"][1].update(path="/nonexistent"), "the network namespace /nonexistent"),
        (lambda c: c["linux"]["namespaces"][5].update(path="/proc/1/ns/user"), "linux.namespaces[5].path"),
        (lambda c: c["process"].update(oomScoreAdj=1001), "process.oomScoreAdj is out of range"),
        (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_FOO"}),
         "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_FOO'"),
        (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}), "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY"),
        (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
         "linux.seccomp.syscalls[0].args[0].index"),
        (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
         "linux.seccomp.architectures[0]: unknown architecture"),
        (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}),
         "linux.seccomp.flags[0]"),
        (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}),
         "linux.seccomp.listenerPath"),
        (lambda c: c["linux"].update(devices=[{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]),
         "linux.devices[0]: /dev/sda (b 8:0) is not a device sandbox-oci gives"),
        (lambda c: c["linux"].update(devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]),
         "linux.devices[0]: /dev/fuse (c 10:229)"),
        (lambda c: c["linux"].update(devices=[{"path": "/etc/null", "type": "c", "major": 1, "minor": 3}]),
         "linux.devices[0].path must be a path under /dev/"),
        (lambda c: c["mounts"].append({"destination": "/x", "type": "ext4", "source": "/dev/sda"}), "type 'ext4'"),
        (lambda c: c["linux"].update(sysctl={"kernel.panic": "1"}), "linux.sysctl[kernel.panic]"),
        (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 0, "size": 100000}]),
         "linux.uidMappings[0]"),
        (lambda c: c.update(hooks={"createContainer": [{"path": "bin/true"}]}),
         "hooks.createContainer[0].path must be an absolute path"),
        (lambda c: c["process"]["user"].update(uid=70000), "process.user.uid"),
        (lambda c: c.update(ociVersion="2.0.0"), "ociVersion"),
        (lambda c: c["linux"]["resources"].update(blockIO={"leafWeight": 10}), "linux.resources.blockIO.leafWeight"),
        (lambda c: c["linux"]["resources"].update(hugepageLimits=[{"pageSize": "2MB", "limit": 1}]),
         "linux.resources.hugepageLimits"),
        (lambda c: c["linux"]["resources"].update(cpu={"cpus": "0-"}), "linux.resources.cpu.cpus: '0-' is not a list"),
        (lambda c: c["root"].update(path="nonexistent"), "root.path"),
        (lambda c: c["process"]["user"].update(additionalGids=[70000]), "process.user.additionalGids[0]"),
        (lambda c: c.update(annotations={"run.sandbox.userns": "host"}), "private id range"),
    ]
    for i, (edit, want) in enumerate(cases):
        def e(c, edit=edit):
            c["linux"].setdefault("resources", {})
            edit(c)
        b = env.bundle(["true"], edit=e)
        cid = env.new_id()
        p = env.oci("create", "--bundle", b, cid, check=False)
        expect(p.returncode == 1, "case %d (%s): exit %d" % (i, want, p.returncode))
        expect(want in p.stderr, "case %d: %r not in %r" % (i, want, p.stderr))
    # not JSON, too big, no config.json
    b = env.bundle(["true"])
    open(os.path.join(b, "config.json"), "w").write("{not json")
    p = env.oci("create", "--bundle", b, env.new_id(), check=False)
    expect(p.returncode == 1 and "config.json" in p.stderr, p.stderr)
    with open(os.path.join(b, "config.json"), "w") as f:
        f.write('{"ociVersion": "1.0.2", "x": "' + "a" * (5 << 20) + '"}')
    p = env.oci("create", "--bundle", b, env.new_id(), check=False)
    expect(p.returncode == 1 and "larger than" in p.stderr, p.stderr)
    os.unlink(os.path.join(b, "config.json"))
    p = env.oci("create", "--bundle", b, env.new_id(), check=False)
    expect(p.returncode == 1 and "config.json" in p.stderr, p.stderr)
    # bad ids, an id twice, commands on a container that is not there
    p = env.oci("create", "--bundle", b, "../x", check=False)
    expect(p.returncode == 1 and "not a valid container ID" in p.stderr, p.stderr)
    b = env.bundle(["sleep", "100"])
    cid = env.new_id()
    env.oci("create", "--bundle", b, cid)
    p = env.oci("create", "--bundle", b, cid, check=False)
    expect(p.returncode == 1 and "exists already" in p.stderr, p.stderr)
    env.oci("delete", cid)
    for cmd in (["start"], ["state"], ["kill"], ["ps"]):
        p = env.oci(*cmd, "missing-" + env.tag, check=False)
        expect(p.returncode == 1 and "does not exist" in p.stderr, (cmd, p.stderr))
    p = env.oci("delete", "missing-" + env.tag, check=False)
    expect(p.returncode == 1, "delete of a missing container")
    expect(env.oci("delete", "--force", "missing-" + env.tag, check=False).returncode == 0, "delete --force")
    # cgroupsPath: systemd's form needs --systemd-cgroup; --systemd-cgroup needs systemd (PID 1 is not systemd
    # here: the VM test runs it where it is)
    b = env.bundle(args=("true",), edit=lambda c: c["linux"].update(cgroupsPath="machine.slice:libpod:x"))
    p = env.oci("create", "--bundle", b, env.new_id(), check=False)
    expect(p.returncode == 1 and "needs --systemd-cgroup" in p.stderr, p.stderr)
    if not os.path.exists("/run/systemd/private"):
        p = env.oci("--systemd-cgroup", "create", "--bundle", b, env.new_id(), check=False)
        expect(p.returncode == 1 and "cannot reach systemd" in p.stderr and "cgroupfs" in p.stderr, p.stderr)
    expect(env.leftovers() == [], env.leftovers())


def test_log_json_and_features(env):
    log = os.path.join(env.dir, "log.json")
    p = env.oci("--log", log, "--log-format", "json", "start", "missing-" + env.tag, check=False)
    expect(p.returncode == 1, p.stderr)
    line = json.loads(open(log).read().splitlines()[-1])
    expect(line["level"] == "error" and "does not exist" in line["msg"], line)
    f = json.loads(env.oci("features").stdout)
    expect("createRuntime" in f["hooks"] and "user" in f["linux"]["namespaces"], f)
    expect("createContainer" in f["hooks"] and "startContainer" in f["hooks"], f)
    sc = f["linux"]["seccomp"]
    expect(sc["enabled"] and "SCMP_ACT_ERRNO" in sc["actions"] and "SCMP_ACT_NOTIFY" not in sc["actions"], sc)
    # every command's own --help: its usage and options, exit 0, nothing done
    for cmd, opt in (("create", "--bundle"), ("start", "--help"), ("state", "--help"), ("kill", "--all"),
                     ("delete", "--force"), ("exec", "--process"), ("ps", "--format"), ("pause", "--help"),
                     ("resume", "--help"), ("update", "--resources"), ("features", "--help"), ("spec", "--bundle")):
        p = env.oci(cmd, "--help")
        expect(p.stdout.startswith("Usage: sandbox-oci %s" % cmd) and opt in p.stdout, (cmd, p.stdout))
    p = env.oci("create", "--bundle", "/nonexistent", "-h", "x")
    expect(p.stdout.startswith("Usage: sandbox-oci create") and not os.path.exists(os.path.join(env.root, "x")),
           p.stdout)
    # exec: a --help after the ID is the command's
    p = env.oci("exec", "missing-" + env.tag, "ls", "--help", check=False)
    expect(p.returncode == 1 and "does not exist" in p.stderr, p.stderr)


if __name__ == "__main__":
    sys.exit(of.run([
        test_state_machine_and_exit_status,
        test_kill_and_delete_in_each_state,
        test_console_socket,
        test_hooks_get_the_state,
        test_container_hooks,
        test_config_fields_inside,
        test_root_capabilities_and_defaults,
        test_join_namespaces,
        test_join_namespaces_of_a_container,
        test_seccomp_stacked,
        test_groups_and_oom_score,
        test_devices,
        test_pause_resume_update,
        test_cpuset_and_blkio,
        test_exec,
        test_bad_bundles,
        test_log_json_and_features,
    ]))
