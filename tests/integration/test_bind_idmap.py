#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writable binds with the caller's ownership, and bind sources passed as descriptors, end to end, as
root, no mocks (docs/security.md, "Binds").

- sandbox-run --bind SRC:DST:idmap: what root inside writes in SRC belongs to SRC's owner on the host
  (a directory of uid 1234), files of SRC's owner show as root's inside, other ids inside cannot
  create there (their ids have no owner to become), other host users' files stay theirs; the same
  with :ro,idmap; a source of host root is refused, and so is a file system that cannot idmap (a FUSE
  mount made by the test, sandbox-unionfs), with a message naming the source and the type.
- sandboxd: a client other than root (uid 1234, allowed by the test's configuration) binds its own
  directory through sandboxctl (which opens it and passes the descriptor), with and without idmap;
  a directory it cannot open, one it can name but not read, and an idmapped one it does not own are
  refused; a client speaking the protocol by hand shows that the daemon uses the descriptor and never
  the path (a decoy path only root can read is named as the source: the sandbox sees the
  descriptor's directory, and strace of the daemon shows no system call on the decoy path), that a
  path bind of such a client is refused, and that descriptors and binds must match.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

USER = 1234          # the host user whose directory is bound (not in any sandbox's range)
OTHER = 4321         # another host user
BIND_FDS = 13


def owned_dir(env, name, uid=USER, gid=USER, mode=0o755):
    d = env.mkdir(name)
    os.chown(d, uid, gid)
    os.chmod(d, mode)
    return d


def write_owned(path, text, uid, gid, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def ids(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


# ==================================================================================================
# sandbox-run

def test_idmap_owner(env):
    src = owned_dir(env, "out")
    write_owned(os.path.join(src, "existing"), "old\n", USER, USER)
    write_owned(os.path.join(src, "others"), "not yours\n", OTHER, OTHER, 0o644)
    script = ("stat -c '%u:%g %n' /out/existing /out/others; "
              "echo built > /out/result; mkdir -p /out/obj/deep && echo o > /out/obj/deep/a.o; "
              "ln -s result /out/link; echo more >> /out/existing; "
              "chown 1000 /out/result 2>&1 | sed 's/^/chown: /'; "
              "sh -c 'echo x >> /out/others' 2>&1 | sed 's/^/others: /'; "
              "setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo u > /out/by-1000' 2>&1 | sed 's/^/uid1000: /'; "
              "chmod 4755 /out/result; true")
    r = env.run(["--bind", f"{src}:/out:idmap", "sh", "-c", script])
    sf.eq(r.returncode, 0, f"exit status {r}")
    lines = r.stdout.splitlines()
    sf.eq(lines[:2], ["0:0 /out/existing", "65534:65534 /out/others"],
          "inside: the source owner's files are root's, another host user's are nobody's")
    sf.check(any(line.startswith("chown: ") and "Value too large" in line for line in lines),
             f"chown to an id the mapping lacks: {r.stdout!r}")
    sf.check(any(line.startswith("others: ") and "Permission denied" in line for line in lines),
             f"writing another host user's 0644 file: {r.stdout!r}")
    sf.check(any(line.startswith("uid1000: ") and "Value too large" in line for line in lines),
             f"uid 1000 inside creating a file: {r.stdout!r}")
    for rel in ("result", "obj", "obj/deep", "obj/deep/a.o", "link", "existing"):
        sf.eq(ids(os.path.join(src, rel)), (USER, USER), f"host owner of {rel}, written by root inside")
    sf.eq(ids(os.path.join(src, "others")), (OTHER, OTHER), "the other user's file")
    with open(os.path.join(src, "existing")) as f:
        sf.eq(f.read(), "old\nmore\n", "the source owner's file, appended to")
    sf.check(not os.path.exists(os.path.join(src, "by-1000")), "uid 1000 inside created a file")
    # A set-uid file the sandbox makes there is the owner's (what the owner could make), never root's.
    st = os.stat(os.path.join(src, "result"))
    sf.eq((st.st_uid, oct(st.st_mode & 0o7777)), (USER, oct(0o4755)), "a set-uid file made in the idmapped bind")

    # Without idmap the same writes belong to the sandbox's host ids.
    plain = owned_dir(env, "plain", mode=0o777)
    r = env.run(["--bind", f"{plain}:/out", "sh", "-c", "echo x > /out/f"])
    sf.eq(r.returncode, 0, f"plain bind {r}")
    sf.check(ids(os.path.join(plain, "f"))[0] >= 0x40000000, f"owner of a file in a plain bind: {ids(plain + '/f')}")

    # ro,idmap: the owner's files show as root's, nothing can be written.
    r = env.run(["--bind", f"{src}:/out:ro,idmap", "sh", "-c", "stat -c %u /out/result; touch /out/new"])
    sf.check(r.stdout.strip() == "0" and "Read-only" in r.stderr, f"ro,idmap {r}")


def test_idmap_file_capabilities(env):
    """File capabilities the sandbox sets in an idmapped bind name the source's owner as their root:
    they could only ever apply in a user namespace of that user's own, never on the host."""
    src = owned_dir(env, "out")
    code = ("import os, shutil, struct\n"
            "shutil.copy('/usr/bin/true', '/out/t')\n"
            "os.setxattr('/out/t', 'security.capability', struct.pack('<IIIII', 0x02000001, 1 << 21, 0, 0, 0))\n")
    r = env.run(["--bind", f"{src}:/out:idmap", "python3", "-c", code])
    sf.eq(r.returncode, 0, f"exit status {r}")
    raw = os.getxattr(os.path.join(src, "t"), "security.capability")
    magic, _, _, _, _, rootid = struct.unpack("<IIIIII", raw)
    sf.eq((hex(magic), rootid), (hex(0x03000001), USER), "the capability's root on disk (v3, the owner's uid)")


def test_idmap_refused(env):
    # a source of host root: the sandbox would write as root
    rootdir = env.mkdir("rootdir")
    r = env.run(["--bind", f"{rootdir}:/out:idmap", "true"])
    sf.eq(r.returncode, 125, f"an idmapped bind of a root-owned directory {r}")
    sf.check(rootdir in r.stderr and "root" in r.stderr, f"message {r.stderr!r}")
    grp = owned_dir(env, "grp", USER, 0)
    r = env.run(["--bind", f"{grp}:/out:idmap", "true"])
    sf.check(r.returncode == 125 and "gid 0" in r.stderr, f"a source of group 0 {r}")
    # bad option words
    r = env.run(["--bind", f"{grp}:/out:idmap,rx", "true"])
    sf.check(r.returncode == 125 and "ro, rw, idmap" in r.stderr, f"an unknown bind option {r}")

    # a file system that cannot idmap: a FUSE mount of ours (sandbox-unionfs)
    unionfs = os.environ.get("SANDBOX_UNIONFS") or sf._default("unionfs/sandbox-unionfs")
    if not os.access(unionfs, os.X_OK):
        raise sf.Skip("no sandbox-unionfs for a FUSE mount")
    lower, upper, work, mnt = (env.mkdir("u", n) for n in ("lower", "upper", "work", "mnt"))
    os.chown(env.mkdir("u", "lower", "d"), USER, USER)
    p = subprocess.run([unionfs, "-o", f"lowerdir={lower},upperdir={upper},workdir={work},allow_other", mnt],
                       capture_output=True, text=True, timeout=30)
    sf.eq(p.returncode, 0, f"mounting sandbox-unionfs: {p.stderr}")
    try:
        r = env.run(["--bind", f"{mnt}/d:/out:idmap", "true"])
        sf.eq(r.returncode, 125, f"an idmapped bind on FUSE {r}")
        sf.check(f"{mnt}/d" in r.stderr and "fuse.sandbox-unionfs" in r.stderr and "cannot be idmapped" in r.stderr,
                 f"message {r.stderr!r}")
        # without idmap it binds
        r = env.run(["--bind", f"{mnt}/d:/out", "true"])
        sf.eq(r.returncode, 0, f"a plain bind on FUSE {r}")
    finally:
        subprocess.run(["umount", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ==================================================================================================
# sandboxd: descriptors, never paths

def user_daemon(env, extra="", name="u"):
    d = df.Daemon(env, name=name, config=f"allow-users = {USER}\n" + extra)
    os.chmod(d.sock, 0o666)
    return d


def test_daemon_binds_as_client(env):
    d = user_daemon(env)
    mine = owned_dir(env, "mine")
    write_owned(os.path.join(mine, "input"), "in\n", USER, USER)
    # its own directory: without idmap the sandbox is "others" there (its ids are no host user's), so
    # root inside may read but not write the 0755 directory ...
    r = d.ctl(["exec", "--bind", f"{mine}:/w", "sh", "-c", "cat /w/input; mkdir /w/plain"], user=USER)
    sf.check(r.returncode == 1 and r.stdout == "in\n" and "Permission denied" in r.stderr,
             f"uid {USER} binds its own 0755 directory without idmap {r}")
    # ... and with idmap root inside is its owner: what it writes is the client's
    r = d.ctl(["exec", "--bind", f"{mine}:/w:idmap", "sh", "-c", "echo built > /w/out && id -u"], user=USER)
    sf.eq((r.returncode, r.stdout), (0, "0\n"), f"uid {USER} with :idmap {r}")
    sf.eq(ids(os.path.join(mine, "out")), (USER, USER), "owner of what root inside wrote through :idmap")
    # read-only
    r = d.ctl(["exec", "--bind", f"{mine}:/w:ro", "sh", "-c", "cat /w/input; touch /w/x"], user=USER)
    sf.check(r.stdout == "in\n" and "Read-only" in r.stderr, f":ro {r}")

    # refused: a directory it cannot open at all (sandboxctl says so), one it can name but not read
    # (O_PATH needs no permission on the directory itself: the daemon checks as the client), one it
    # may write but does not own, with idmap
    secret = env.mkdir("secret", mode=0o700)
    with open(os.path.join(secret, "key"), "w") as f:
        f.write("root's\n")
    inner = env.mkdir("secret", "inner", mode=0o755)
    r = d.ctl(["exec", "--bind", f"{inner}:/w:ro", "true"], user=USER)
    sf.check(r.returncode == 125 and "cannot open" in r.stderr and inner in r.stderr, f"an unreachable source {r}")
    r = d.ctl(["exec", "--bind", f"{secret}:/w:ro", "cat", "/w/key"], user=USER)
    sf.check(r.returncode == 125 and "permission denied" in r.stderr and secret in r.stderr,
             f"a source uid {USER} may name but not read {r}")
    shared = owned_dir(env, "shared", OTHER, OTHER, 0o777)
    r = d.ctl(["exec", "--bind", f"{shared}:/w", "sh", "-c", "echo ok"], user=USER)
    sf.eq((r.returncode, r.stdout), (0, "ok\n"), f"a world-writable directory of another user, no idmap {r}")
    r = d.ctl(["exec", "--bind", f"{shared}:/w:idmap", "true"], user=USER)
    sf.check(r.returncode == 125 and "must be yours" in r.stderr, f"idmap of another user's directory {r}")
    ro = owned_dir(env, "ro-dataset", 0, 0, 0o755)
    r = d.ctl(["exec", "--bind", f"{ro}:/w", "true"], user=USER)
    sf.check(r.returncode == 125 and "read and write" in r.stderr, f"rw bind of a directory it may only read {r}")
    r = d.ctl(["exec", "--bind", f"{ro}:/w:ro", "true"], user=USER)
    sf.eq(r.returncode, 0, f"ro bind of a directory it may read {r}")
    # capabilities beyond the default set are root's, unless allow-cap-add
    r = d.ctl(["exec", "--cap-add", "NET_RAW", "true"], user=USER)
    sf.check(r.returncode == 125 and "allow-cap-add" in r.stderr, f"--cap-add NET_RAW as uid {USER} {r}")
    r = d.ctl(["exec", "--cap-drop", "ALL", "grep", "CapEff", "/proc/self/status"], user=USER)
    sf.eq((r.returncode, r.stdout.split()), (0, ["CapEff:", "0000000000000000"]), f"--cap-drop ALL {r}")
    r = d.ctl(["exec", "--cap-add", "NET_RAW", "grep", "CapEff", "/proc/self/status"])
    sf.eq((r.returncode, r.stdout.split()), (0, ["CapEff:", "00000000800425fb"]), f"root's --cap-add NET_RAW {r}")
    d.stop()
    d = user_daemon(env, "allow-cap-add = net_raw\n", name="u2")
    r = d.ctl(["exec", "--cap-add", "NET_RAW", "grep", "CapEff", "/proc/self/status"], user=USER)
    sf.eq((r.returncode, r.stdout.split()), (0, ["CapEff:", "00000000800425fb"]), f"allow-cap-add = net_raw {r}")
    r = d.ctl(["exec", "--cap-add", "SYS_ADMIN", "true"], user=USER)
    sf.check(r.returncode == 125 and "SYS_ADMIN" in r.stderr, f"a capability allow-cap-add does not name {r}")


# --- by hand, as the client ---

def hello3():
    return df.frame(df.HELLO, df.t_u32(1, 1) + df.t_u32(2, 3) + df.t_str(3, "raw-test"))


def bind_record(source, dest, by_fd=True, idmap=False, readonly=False):
    body = df.t_str(1, source) + df.t_str(2, dest)
    if readonly:
        body += df.t_u32(3, 1)
    if idmap:
        body += df.t_u32(4, 1)
    if by_fd:
        body += df.t_u32(5, 1)
    return df.tlv(11, body)


def as_client(uid, fn):
    """Runs FN(result dict) in a child that became UID (no groups); returns the dict it filled."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = {}
        try:
            os.close(rd)
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            fn(res)
        except BaseException as e:  # noqa: BLE001
            res["exception"] = repr(e)
        os.write(wr, json.dumps(res).encode())
        os._exit(0)
    os.close(wr)
    out = b""
    while True:
        c = os.read(rd, 65536)
        if not c:
            break
        out += c
    os.close(rd)
    os.waitpid(pid, 0)
    return json.loads(out)


def raw_exec(sock, frames_before, bind, argv, res, hello=None):
    """HELLO, FRAMES_BEFORE (list of (bytes, fds)), EXEC with BIND; the program's stdout (a pipe) and
    the daemon's frames go into RES."""
    c = df.RawClient(sock, timeout=30)
    out_r, out_w = os.pipe()
    null = os.open("/dev/null", os.O_RDWR)
    try:
        c.send(hello or hello3())
        f = c.recv_frame()
        res["hello"] = f[0] if f else None
        payload = b"".join(df.t_str(1, a) for a in argv) + bind
        try:
            for data, fds in frames_before:
                c.send(data, fds)
            c.send(df.frame(df.EXEC, payload), [null, out_w, out_w])
        except OSError as e:  # the daemon refused an earlier frame and closed: its ERROR is still there
            res["send_error"] = e.errno
        os.close(out_w)
        out_w = -1
        frames = c.frames_until_eof()
        res["types"] = [t for t, _ in frames]
        res["errors"] = [df.parse_error(p)["message"] for t, p in frames if t == df.ERROR]
        out = b""
        while True:
            chunk = os.read(out_r, 65536)
            if not chunk:
                break
            out += chunk
        res["stdout"] = out.decode(errors="replace")
    finally:
        c.close()
        os.close(out_r)
        os.close(null)
        if out_w >= 0:
            os.close(out_w)


def test_daemon_uses_descriptor_not_path(env):
    strace = shutil.which("strace")
    decoy = env.mkdir("decoy", mode=0o700)  # only root may look in
    with open(os.path.join(decoy, "marker"), "w") as f:
        f.write("decoy")
    mine = owned_dir(env, "mine")
    write_owned(os.path.join(mine, "marker"), "mine", USER, USER)
    trace = env.path("daemon.strace")
    conf = env.write("d.conf", f"allow-users = {USER}\n")
    sock = env.path("d.sock")
    argv = [df.sandboxd(), "--state-dir", env.state, "--data-dir", env.data, "--idle-timeout", "0", "--config", conf,
            "--listen", sock]
    if strace:
        argv = [strace, "-f", "-qq", "-e", "trace=%file,%desc", "-s", "4096", "-o", trace] + argv
    log = open(env.path("d.log"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    env.procs.append(p)
    try:
        def ready():
            with open(env.path("d.log"), "rb") as f:
                return b"Ready" in f.read()
        df.wait_for(ready, 30, "the daemon's Ready")
        os.chmod(sock, 0o666)

        def good(res):
            fd = os.open(mine, os.O_PATH | os.O_DIRECTORY)
            raw_exec(sock, [(df.frame(BIND_FDS), [fd])], bind_record(decoy, "/w"), ["cat", "/w/marker"], res)

        res = as_client(USER, good)
        sf.eq((res.get("types"), res.get("stdout")), ([df.STARTED, df.EXIT], "mine"),
              f"the sandbox sees the descriptor's directory, not the path's: {res}")

        def path_bind(res):
            raw_exec(sock, [], bind_record(mine, "/w", by_fd=False), ["true"], res)

        res = as_client(USER, path_bind)
        sf.check(res.get("errors") and "only root may use host paths" in res["errors"][0], f"a path bind {res}")

        def mismatch(res):
            fd = os.open(mine, os.O_PATH | os.O_DIRECTORY)
            raw_exec(sock, [(df.frame(BIND_FDS), [fd, fd])], bind_record(decoy, "/w"), ["true"], res)

        res = as_client(USER, mismatch)
        sf.check(res.get("errors") and "1 binds by descriptor, but 2 descriptors" in res["errors"][0],
                 f"more descriptors than binds {res}")

        def old_version(res):
            fd = os.open(mine, os.O_PATH | os.O_DIRECTORY)
            raw_exec(sock, [(df.frame(BIND_FDS), [fd])], bind_record(decoy, "/w"), ["true"], res,
                     hello=df.frame(df.HELLO, df.hello_payload()))

        res = as_client(USER, old_version)
        sf.check(res.get("errors") and "version 3" in res["errors"][0], f"BIND_FDS in protocol 1 {res}")

        def too_many(res):
            fd = os.open(mine, os.O_PATH | os.O_DIRECTORY)
            frames = [(df.frame(BIND_FDS), [fd, fd, fd])] * 22
            raw_exec(sock, frames, bind_record(decoy, "/w"), ["true"], res)

        res = as_client(USER, too_many)
        sf.check(res.get("errors") and "more than 64" in res["errors"][0], f"66 descriptors {res}")
    finally:
        # SIGTERM to the daemon itself (strace would only detach on it)
        daemon = p.pid
        if strace:
            kids = []
            for t in os.listdir(f"/proc/{p.pid}/task") if p.poll() is None else []:
                with open(f"/proc/{p.pid}/task/{t}/children") as f:
                    kids += [int(x) for x in f.read().split()]
            daemon = kids[0] if kids else p.pid
        try:
            os.kill(daemon, 15)
        except ProcessLookupError:
            pass
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
    if strace:
        with open(trace, errors="replace") as f:
            text = f.read()
        # the trace has the daemon's file system calls: the access check it made as the client
        sf.check("faccessat2(" in text and "open_tree(" in text, f"the strace log lacks the daemon's calls: {text[-2000:]}")
        hits = [line for line in text.splitlines() if decoy in line]
        sf.eq(hits, [], "system calls of the daemon (and its children) on the decoy path")


def main():
    df.main(globals())


if __name__ == "__main__":
    main()
