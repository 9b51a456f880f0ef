#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Capabilities inside a sandbox, end to end, as root, no mocks (docs/security.md, "Capabilities").

Root inside gets podman's default set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE,
SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT); each of them is shown to work on the sandbox's own
files and processes and to fail on the host's: files of a host user (uid 1234, not in the sandbox's
range) in a writable --bind, host processes, the host's network namespace. The attacks a root with
these capabilities could try fail: chown to an id outside the sandbox's 65536, set-uid and
file-capability binaries run by another user, mknod (even with --cap-add MKNOD), chroot escapes,
signals and ptrace to the init and to host processes, /proc and /sys writes, the union server made
to write outside its layers. --cap-drop ALL is the old behaviour (nothing), --cap-add gives more to
root and, as ambient capabilities, to another uid.

Every test runs Python (the host's, through the default image) inside and reads a JSON line of results.
The probe is bound at /probe as in test_sandbox_run.py."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402

PY = "/usr/bin/python3"
HOST_USER = 1234  # a host uid outside every sandbox range (they start at 0x40000000)
DEFAULT = 0x800405fb

# Run inside: helpers for the snippets below. try_(name, fn) records "OK", an errno name, or a value.
PRELUDE = textwrap.dedent("""\
    import errno, json, os, signal, socket, struct, sys, time
    res = {}
    def try_(name, fn):
        try:
            v = fn()
            res[name] = "OK" if v is None else v
        except OSError as e:
            res[name] = errno.errorcode.get(e.errno, str(e.errno))
    def done():
        print(json.dumps(res), flush=True)
    if os.getuid() == 0:
        os.makedirs("/srv", exist_ok=True)
    """)


def inside(env, code, args=(), timeout=30, **kw):
    """Runs PRELUDE + CODE with the host's python3 in a sandbox (sandbox-run ARGS); returns (dict, Result)."""
    r = env.run(list(args) + [PY, "-c", PRELUDE + textwrap.dedent(code) + "\ndone()\n"], timeout=timeout, **kw)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    try:
        d = json.loads(last)
    except ValueError:
        raise AssertionError(f"no JSON from the sandbox: {r}")
    return d, r


def host_dir(env, name):
    """A directory of host uid HOST_USER with a 0600 file and a 0755 directory of its own, bound writable."""
    d = env.mkdir(name)
    os.chown(d, HOST_USER, HOST_USER)
    os.chmod(d, 0o777)  # anyone may create here: what the sandbox creates is its own
    f = os.path.join(d, "secret")
    with open(f, "w") as fp:
        fp.write("host user's secret\n")
    os.chown(f, HOST_USER, HOST_USER)
    os.chmod(f, 0o600)
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    os.chown(sub, HOST_USER, HOST_USER)
    os.chmod(sub, 0o755)
    return d


def caps_of(text):
    d = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.startswith("Cap"):
            d[k] = int(v.strip(), 16)
    return d


def host_sleep(env):
    p = subprocess.Popen(["sleep", "60"])
    env.procs.append(p)
    return p


# ==================================================================================================
# the sets

def test_default_set(env):
    r = env.run(["cat", "/proc/self/status"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    c = caps_of(r.stdout)
    sf.eq({k: hex(v) for k, v in c.items()},
          {"CapInh": "0x0", "CapPrm": hex(DEFAULT), "CapEff": hex(DEFAULT), "CapBnd": hex(DEFAULT), "CapAmb": "0x0"},
          "root's capabilities inside")
    # capsh names them (libcap's view of the same bits)
    if os.path.exists("/usr/sbin/capsh"):
        r = env.run(["/usr/sbin/capsh", "--print"])
        cur = [line for line in r.stdout.splitlines() if line.startswith("Current:")]
        sf.check(cur, f"capsh --print: {r}")
        names = set(cur[0].split(":", 1)[1].strip().split("=")[0].split(","))
        sf.eq(names, {"cap_chown", "cap_dac_override", "cap_fowner", "cap_fsetid", "cap_kill", "cap_setgid",
                      "cap_setuid", "cap_setpcap", "cap_net_bind_service", "cap_sys_chroot", "cap_setfcap"},
              "capsh --print: Current")
    # another uid: none, only the bounding set; --cap-drop ALL: none at all (the old behaviour)
    r = env.run(["-u", "1000", "cat", "/proc/self/status"])
    c = caps_of(r.stdout)
    sf.eq((c["CapPrm"], c["CapEff"], c["CapAmb"], c["CapBnd"]), (0, 0, 0, DEFAULT), f"-u 1000 {r}")
    r = env.run(["--cap-drop", "ALL", "cat", "/proc/self/status"])
    sf.eq(set(caps_of(r.stdout).values()), {0}, f"--cap-drop ALL {r}")
    # --cap-drop of one, --cap-add of one outside the default set, ALL minus one
    r = env.run(["--cap-drop", "chown,CAP_KILL", "--cap-add", "NET_RAW", "cat", "/proc/self/status"])
    c = caps_of(r.stdout)
    want = (DEFAULT & ~(1 << 0) & ~(1 << 5)) | (1 << 13)
    sf.eq((hex(c["CapEff"]), hex(c["CapBnd"])), (hex(want), hex(want)), f"--cap-drop chown,CAP_KILL --cap-add NET_RAW {r}")
    r = env.run(["--cap-add", "ALL", "--cap-drop", "SYS_ADMIN", "cat", "/proc/self/status"])
    c = caps_of(r.stdout)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        full = (1 << (int(f.read()) + 1)) - 1
    sf.eq(hex(c["CapEff"]), hex(full & ~(1 << 21)), f"--cap-add ALL --cap-drop SYS_ADMIN {r}")
    # a non-root uid gets what --cap-add named, as ambient capabilities (and keeps them across exec)
    r = env.run(["-u", "1000", "--cap-add", "NET_RAW", "sh", "-c", "cat /proc/self/status"])
    c = caps_of(r.stdout)
    sf.eq({k: hex(v) for k, v in c.items()},
          {"CapInh": hex(1 << 13), "CapPrm": hex(1 << 13), "CapEff": hex(1 << 13), "CapBnd": hex(DEFAULT | 1 << 13),
           "CapAmb": hex(1 << 13)}, f"-u 1000 --cap-add NET_RAW {r}")
    # bad names and contradictions are refused before anything starts
    for args, words in ((["--cap-add", "NET_RAWX"], ["--cap-add", "NET_RAWX"]),
                        (["--cap-add", "NET_RAW", "--cap-drop", "NET_RAW"], ["same capability"]),
                        (["--cap-add", ""], ["--cap-add"])):
        r = env.run(args + ["true"])
        sf.eq(r.returncode, 125, f"{args}: {r}")
        for w in words:
            sf.check(w in r.stderr, f"{args}: message {r.stderr!r} lacks {w!r}")


def test_cap_add_outside_defaults(env):
    """--cap-add NET_RAW: a raw ICMP socket, which the default set does not allow."""
    code = """
        try_("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close())
    """
    d, r = inside(env, code)
    sf.eq(d["raw"], "EPERM", f"a raw socket with the default set {r}")
    d, r = inside(env, code, ["--cap-add", "NET_RAW"])
    sf.eq(d["raw"], "OK", f"a raw socket with --cap-add NET_RAW {r}")
    d, r = inside(env, code, ["-u", "1000", "--cap-add", "NET_RAW"])
    sf.eq(d["raw"], "OK", f"a raw socket as uid 1000 with --cap-add NET_RAW (ambient) {r}")
    d, r = inside(env, code, ["-u", "1000"])
    sf.eq(d["raw"], "EPERM", f"a raw socket as uid 1000 {r}")


# ==================================================================================================
# each default capability: the sandbox's own objects yes, the host's no

def test_chown_dac_fowner_fsetid(env):
    hd = host_dir(env, "host")
    upper = env.mkdir("upper")
    code = """
        os.makedirs("/srv/own", exist_ok=True)
        f = "/srv/own/f"
        open(f, "w").write("x")
        # CHOWN: the sandbox's own file to any id of its range, the host user's not at all
        try_("chown_own", lambda: os.chown(f, 1000, 1000))
        try_("chown_own_max", lambda: os.chown("/srv/own", 65535, 65535))
        try_("chown_host", lambda: os.chown("/host/secret", 0, 0))
        try_("chown_host_dir", lambda: os.chown("/host/sub", 0, 0))
        # DAC_OVERRIDE: the sandbox's own 000 file of another owner, the host user's 0600 file not
        os.chmod(f, 0)
        try_("read_own_000", lambda: open(f).read())
        try_("write_own_000", lambda: open(f, "a").write("more"))
        try_("read_host_0600", lambda: open("/host/secret").read())
        try_("write_host_dir_0755", lambda: open("/host/sub/new", "w").close())
        # FOWNER: chmod/utime of another owner's file, its own yes, the host user's no
        try_("chmod_own", lambda: os.chmod(f, 0o640))
        try_("utime_own", lambda: os.utime(f, (1, 1)))
        try_("chmod_host", lambda: os.chmod("/host/secret", 0o666))
        try_("utime_host", lambda: os.utime("/host/secret", (1, 1)))
        # FSETID: set-group-ID on a file of a group root is not in stays set
        os.chmod(f, 0o2755)
        res["setgid_kept"] = bool(os.stat(f).st_mode & 0o2000)
        res["uid_map"] = open("/proc/self/uid_map").read().split()
    """
    d, r = inside(env, code, ["--upper", upper, "--bind", f"{hd}:/host"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq({k: d[k] for k in ("chown_own", "chown_own_max", "read_own_000", "write_own_000", "chmod_own",
                             "utime_own", "setgid_kept")},
          {"chown_own": "OK", "chown_own_max": "OK", "read_own_000": "x", "write_own_000": 4, "chmod_own": "OK",
           "utime_own": "OK", "setgid_kept": True}, f"CHOWN, DAC_OVERRIDE, FOWNER, FSETID on the sandbox's own files")
    sf.eq({k: d[k] for k in ("chown_host", "chown_host_dir", "read_host_0600", "write_host_dir_0755",
                             "chmod_host", "utime_host")},
          {"chown_host": "EPERM", "chown_host_dir": "EPERM", "read_host_0600": "EACCES",
           "write_host_dir_0755": "EACCES", "chmod_host": "EPERM", "utime_host": "EPERM"},
          f"the same on a host user's files (uid {HOST_USER}, not in the sandbox's range)")
    # on disk: the image's ids, never a host id of the range, never above it
    st = os.stat(os.path.join(upper, "srv", "own", "f"))
    sf.eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)), (1000, 1000, oct(0o2755)),
          "the upper's copy of the chowned file (image ids)")
    st = os.stat(os.path.join(upper, "srv", "own"))
    sf.eq((st.st_uid, st.st_gid), (65535, 65535), "the upper's directory chowned to 65535")
    st = os.stat(os.path.join(hd, "secret"))
    sf.eq((st.st_uid, oct(st.st_mode & 0o7777)), (HOST_USER, oct(0o600)), "the host user's file after the attempts")
    # without the capabilities, the sandbox's own files of other ids are out of reach (the old behaviour)
    code = """
        f = "/srv/f"; open(f, "w").write("x"); os.chmod(f, 0)
        try_("chown_own", lambda: os.chown(f, 1000, 1000))
        try_("read_own_000", lambda: open(f).read())
    """
    d, r = inside(env, code, ["--cap-drop", "ALL"])
    sf.eq((d.get("chown_own"), d.get("read_own_000")), ("EPERM", "EACCES"),
          f"chown and a 000 file of its own without CHOWN and DAC_OVERRIDE {r}")
    # FSETID dropped: the set-group-ID bit goes (root is not in group 1000)
    code = """
        f = "/srv/g"; open(f, "w").close(); os.chown(f, 0, 1000); os.chmod(f, 0o2755)
        res["setgid_kept"] = bool(os.stat(f).st_mode & 0o2000)
    """
    d, r = inside(env, code, ["--cap-drop", "FSETID"])
    sf.eq(d.get("setgid_kept"), False, f"set-group-ID without FSETID {r}")


def test_setuid_setgid_setpcap(env):
    code = """
        def switch():
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgroups([100, 65534]); os.setresgid(1000, 1000, 1000); os.setresuid(1000, 1000, 1000)
                    os._exit(0 if (os.getuid(), os.getgroups()) == (1000, [100, 65534]) else 3)
                except OSError as e:
                    os._exit(e.errno)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        res["switch"] = switch()
        try_("setuid_unmapped", lambda: os.setuid(70000))
        try_("setgid_unmapped", lambda: os.setgid(70000))
        try_("setgroups_unmapped", lambda: os.setgroups([70000]))
        # SETPCAP: drop from its own bounding set; never add beyond it
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        def prctl(*a):
            if libc.prctl(*a) < 0:
                raise OSError(ctypes.get_errno(), "prctl")
        try_("bset_drop", lambda: prctl(24, 0, 0, 0, 0))  # PR_CAPBSET_DROP CAP_CHOWN
        try_("ambient_raise_outside", lambda: prctl(47, 2, 12, 0, 0))  # PR_CAP_AMBIENT_RAISE NET_ADMIN
        res["bnd"] = [l for l in open("/proc/self/status") if l.startswith("CapBnd")][0].split()[1]
    """
    d, r = inside(env, code)
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq({k: d[k] for k in ("switch", "setuid_unmapped", "setgid_unmapped", "setgroups_unmapped", "bset_drop",
                             "ambient_raise_outside")},
          {"switch": 0, "setuid_unmapped": "EINVAL", "setgid_unmapped": "EINVAL", "setgroups_unmapped": "EINVAL",
           "bset_drop": "OK", "ambient_raise_outside": "EPERM"},
          "SETUID/SETGID within the sandbox's 65536 ids only, SETPCAP only to give up")
    sf.eq(int(d["bnd"], 16), DEFAULT & ~1, "the bounding set after dropping CHOWN")
    d, r = inside(env, code, ["--cap-drop", "SETUID,SETGID"])
    sf.check(d["switch"] == 1, f"switching users without SETUID/SETGID: {d} {r}")  # EPERM


def test_kill(env):
    host = host_sleep(env)
    code = f"""
        pid = os.fork()
        if pid == 0:
            os.setresgid(1000, 1000, 1000); os.setresuid(1000, 1000, 1000)
            time.sleep(30); os._exit(0)
        time.sleep(0.2)
        try_("kill_other_uid", lambda: os.kill(pid, signal.SIGKILL))
        if res["kill_other_uid"] == "OK":
            os.waitpid(pid, 0)
        try_("kill_host_pid", lambda: os.kill({host.pid}, signal.SIGKILL))
        try_("kill_init", lambda: os.kill(1, signal.SIGKILL))
        try_("kill_all", lambda: os.kill(-1, signal.SIGKILL))
    """
    d, r = inside(env, code)
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq((d["kill_other_uid"], d["kill_host_pid"], d["kill_init"]), ("OK", "ESRCH", "OK"),
          "KILL: another uid's process inside yes, a host pid is not even there; the init ignores it")
    sf.check(host.poll() is None, "a host process died of a kill from inside")
    d, r = inside(env, code, ["--cap-drop", "KILL"])
    sf.eq(d["kill_other_uid"], "EPERM", f"killing another uid's process without KILL {r}")
    sf.check(host.poll() is None, "a host process died of a kill from inside")
    host.kill()
    host.wait()


def test_net_bind_service(env):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        if int(f.read()) <= 999:
            raise sf.Skip("the host lets everybody bind port 999")
    code = """
        def bind(port):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            finally:
                s.close()
        try_("bind_80", lambda: bind(80))
    """
    d, r = inside(env, code)
    sf.eq(d["bind_80"], "OK", f"port 80 in the sandbox's own network namespace {r}")
    # the host's network (--net host, root's choice): its low ports stay the host's
    d, r = inside(env, code.replace("80", "999"), ["--net", "host"])
    sf.eq(d["bind_999"], "EACCES", f"host port 999 from a sandbox on the host's network {r}")


def test_setfcap(env):
    hd = host_dir(env, "host")
    upper = env.mkdir("upper")
    # cap_net_raw+ep as a version 2 xattr: what setcap writes
    v2 = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
    code = f"""
        import shutil
        shutil.copy("/usr/bin/python3", "/srv/rawpy")
        os.chmod("/srv/rawpy", 0o755)
        try_("setfcap_own", lambda: os.setxattr("/srv/rawpy", "security.capability", {v2!r}))
        try_("setfcap_host", lambda: os.setxattr("/host/sub", "security.capability", {v2!r}))
        # run by another uid: no_new_privs and nosuid keep the file's capability from taking effect
        pid = os.fork()
        if pid == 0:
            os.setresgid(1000, 1000, 1000); os.setresuid(1000, 1000, 1000)
            os.execv("/srv/rawpy", ["rawpy", "-c",
                     "import socket\\ntry:\\n socket.socket(socket.AF_INET, socket.SOCK_RAW, 1); print('raw=OK')\\n"
                     "except OSError as e:\\n print('raw=' + str(e.errno))"])
        os.waitpid(pid, 0)
    """
    d, r = inside(env, code, ["--upper", upper, "--bind", f"{hd}:/host"], timeout=60)
    sf.eq((d["setfcap_own"], d["setfcap_host"]), ("OK", "EPERM"), f"SETFCAP on its own file, on the host user's {r}")
    sf.check("raw=1" in r.stdout, f"the file capability took effect for uid 1000: {r.stdout!r}")
    # on disk: a version 3 capability whose root is the sandbox's host id, not host root: inert on the
    # host (a process there has another root)
    raw = os.getxattr(os.path.join(upper, "srv", "rawpy"), "security.capability")
    magic, perm0, inh0, perm1, inh1, rootid = struct.unpack("<IIIIII", raw)
    sf.eq((hex(magic), perm0), (hex(0x03000001), 1 << 13), "the file capability in the upper (v3, net_raw)")
    sf.check(rootid >= 0x40000000, f"its root id {rootid} is the sandbox's host id, not 0")


def test_sys_chroot(env):
    code = """
        root = os.stat("/")
        os.makedirs("/jail/a/b", exist_ok=True)
        open("/jail/inside-jail", "w").close()
        fd = os.open("/", os.O_RDONLY)
        os.chroot("/jail")
        res["in_jail"] = sorted(os.listdir("/"))
        # the classic escape: chroot deeper while holding a descriptor above, then climb
        os.mkdir("/x")
        os.chroot("/x")
        os.fchdir(fd)
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        top = os.stat("/")
        res["escaped_to_sandbox_root"] = (top.st_dev, top.st_ino) == (root.st_dev, root.st_ino)
        res["listing"] = sorted(os.listdir("/"))
        res["hostname"] = open("/etc/hostname").read().strip()
    """
    d, r = inside(env, code)
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq(d["in_jail"], ["a", "inside-jail"], "chroot into a directory of its own")
    sf.eq((d["escaped_to_sandbox_root"], d["hostname"]), (True, "sandbox"),
          f"the escape ends at the sandbox's own root ({d['listing']})")
    sf.check("jail" in d["listing"] and "probe" in d["listing"], f"the sandbox's root: {d['listing']}")
    d, r = inside(env, 'try_("chroot", lambda: os.chroot("/tmp"))', ["--cap-drop", "SYS_CHROOT"])
    sf.eq(d["chroot"], "EPERM", f"chroot without SYS_CHROOT {r}")


# ==================================================================================================
# attacks a root with these capabilities could try

def test_attacks(env):
    hd = host_dir(env, "host")
    marker = env.path("host-marker")
    with open(marker, "w") as f:
        f.write("untouched")
    upper = env.mkdir("upper")
    code = f"""
        import shutil
        # an id outside the sandbox's 65536: the kernel has nothing to map it to
        open("/srv/f", "w").close()
        try_("chown_outside_range", lambda: os.chown("/srv/f", 65536, 0))
        try_("chown_huge", lambda: os.chown("/srv/f", 0x40000000, 0))
        # a set-uid root binary run by another user: stays that user (no_new_privs, nosuid)
        shutil.copy("/usr/bin/id", "/srv/suid-id"); os.chmod("/srv/suid-id", 0o6755)
        res["suid_mode"] = oct(os.stat("/srv/suid-id").st_mode & 0o7777)
        # devices: never, not even with CAP_MKNOD (it is checked in the host's namespace)
        try_("mknod_null", lambda: os.mknod("/srv/null", 0o20666, os.makedev(1, 3)))
        try_("mknod_sda", lambda: os.mknod("/srv/sda", 0o60666, os.makedev(8, 0)))
        try_("mkfifo", lambda: os.mkfifo("/srv/fifo"))
        # the union's own markers: trusted.* needs CAP_SYS_ADMIN in the host's user namespace
        try_("trusted_xattr", lambda: os.setxattr("/srv/f", "trusted.overlay.opaque", b"y"))
        # kernel tunables and sysfs, with DAC_OVERRIDE
        try_("proc_sys", lambda: open("/proc/sys/kernel/hostname", "w").write("x"))
        try_("proc_sys_net", lambda: open("/proc/sys/net/ipv4/ip_forward", "w").write("1"))
        try_("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("h"))
        try_("sys_write", lambda: open("/sys/class/net/lo/mtu", "w").write("1280"))
        try_("usr_write", lambda: open("/usr/bin/sandbox-cap-test", "w").close())
        # the union server (host root) resolves everything beneath its layers: a symlink to a host
        # path, chowned, chmodded and written through, changes the sandbox's own files only
        os.symlink("{marker}", "/srv/link")
        os.makedirs(os.path.dirname("{marker}"), exist_ok=True)
        try_("write_through_link", lambda: open("/srv/link", "w").write("changed"))
        try_("lchown_link", lambda: os.lchown("/srv/link", 1000, 1000))
        try_("chmod_through_link", lambda: os.chmod("/srv/link", 0o777))
        # /proc of the init: other namespace's memory, not dumpable
        try_("init_mem", lambda: open("/proc/1/mem", "rb").read(1))
        try_("init_environ", lambda: open("/proc/1/environ", "rb").read())
    """
    d, r = inside(env, code, ["--upper", upper, "--bind", f"{hd}:/host", "--cap-add", "MKNOD"])
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq(d["trusted_xattr"], "EPERM", "a trusted.overlay xattr set by root inside")
    sf.eq({k: d[k] for k in ("chown_outside_range", "chown_huge", "mknod_null", "mknod_sda", "proc_sys",
                             "proc_sys_net", "sysrq", "sys_write", "usr_write")},
          {"chown_outside_range": "EINVAL", "chown_huge": "EINVAL", "mknod_null": "EPERM", "mknod_sda": "EPERM",
           "proc_sys": "EROFS", "proc_sys_net": "EROFS", "sysrq": d["sysrq"] if d["sysrq"] == "ENOENT" else "EROFS",
           "sys_write": "EROFS", "usr_write": "EROFS"},
          "attacks with the default set and MKNOD (sysrq-trigger: read-only, or absent from this kernel)")
    sf.check(d["init_mem"] in ("EACCES", "EPERM") and d["init_environ"] in ("EACCES", "EPERM"),
             f"the init's memory and environment: {d['init_mem']}, {d['init_environ']}")
    sf.eq((d["mkfifo"], d["write_through_link"], d["suid_mode"]), ("OK", len("changed"), "0o6755"),
          "what the sandbox may do to its own files")
    with open(marker) as f:
        sf.eq(f.read(), "untouched", "the host file a symlink inside named")
    st = os.stat(marker)
    sf.eq((st.st_uid, oct(st.st_mode & 0o777)), (0, oct(0o644)), "the host file's owner and mode")
    # the set-uid copy, run by uid 1000 inside
    r = env.run(["--upper", upper, "-u", "1000", "/srv/suid-id"])
    sf.eq((r.returncode, r.stdout.strip()), (0, "uid=1000 gid=1000 groups=1000"),
          "a set-uid root binary run by uid 1000 (it must not become root)")
    # on disk the upper keeps the image's ids and the set-uid bit, behind its private root
    st = os.stat(os.path.join(upper, "srv", "suid-id"))
    sf.eq((st.st_uid, oct(st.st_mode & 0o7777)), (0, oct(0o6755)), "the set-uid copy in the upper")
    st = os.stat(upper)
    sf.eq((st.st_uid, oct(st.st_mode & 0o777)), (0, oct(0o700)), "the kept upper's private root")


def test_init_with_more_caps(env):
    """Even with KILL, SYS_PTRACE and DAC_OVERRIDE the init stays out of reach: it never executed
    anything, so its memory belongs to the host's user namespace."""
    r = env.run(["--cap-add", "SYS_PTRACE", "--timeout", "10", sf.probe(), "ptrace-init"])
    kv = r.kv()
    sf.eq(r.returncode, 0, f"exit status {r}")
    sf.eq({k: kv.get(k) for k in ("ptrace_attach", "ptrace_seize", "process_vm_readv", "pidfd_getfd")},
          {"ptrace_attach": "EPERM", "ptrace_seize": "EPERM", "process_vm_readv": "EPERM", "pidfd_getfd": "EPERM"},
          "ptrace-like access to the init with SYS_PTRACE")
    sf.eq((kv.get("init_alive"), kv.get("init_state")), ("1", "S"), "the init after SIGTERM/INT/STOP/KILL/SEGV")


def test_setgroups(env):
    """setgroups() needs CAP_SETGID: allowed with it (apt's _apt user switch), denied without."""
    code = 'try_("setgroups", lambda: os.setgroups([42, 100]))\nres["groups"] = os.getgroups()'
    d, r = inside(env, code)
    sf.eq((d["setgroups"], d["groups"]), ("OK", [42, 100]), f"setgroups with SETGID {r}")
    d, r = inside(env, code, ["--cap-drop", "SETGID"])
    sf.eq((d["setgroups"], d["groups"]), ("EPERM", []), f"setgroups without SETGID {r}")
    r = env.run(["--cap-drop", "SETGID", "cat", "/proc/self/setgroups"])
    sf.eq(r.stdout.strip(), "deny", "setgroups of the sandbox without SETGID")


if __name__ == "__main__":
    sf.main()
