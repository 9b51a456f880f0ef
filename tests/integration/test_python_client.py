#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python client (clients/python, package `sandbox`) against a real sandboxd, as an agent service
uses it: a daemon started by socket activation (systemd-socket-activate), and the client run as a user
other than root (uid 65534, supplementary group the daemon allows, as group "sandbox" would be) in a
process of its own: the package is installed with pip (offline, --no-build-isolation) or copied into
the test's directory, and this file, run with --client SCENARIO SOCKET, is the client program.

One-shot sandboxes (EXEC, any daemon): output, exit codes, stdin, 16 MiB of binary data in and out,
timeouts, streaming as the program writes (iterator and callbacks), signals, memory and pids bounds
reported in the stats, the daemon's refusals as exceptions carrying its message. Created sandboxes
(protocol version 4: CREATE, EXEC with in, STOP, RM, PAUSE, RESUME, COPY): 100 runs sharing state, files
in and out (binary, 12 MiB; COPY's modes, symlinks, errors), per-run timeouts, streaming, a command's
signal, limits shared by the sandbox's commands, another uid refused, removal on leaving the `with`
block; 10 commands at once; a ttl ending a sandbox; snapshot and fork. Volumes (version 5): a workspace
kept from a created sandbox to a later run, in use, read-only, its quota, another uid refused. A scenario that needs a protocol
version the daemon does not speak yet ends as "pending" (skipped even with SBX_TESTS_MUST_RUN=1, with
the reason), so it runs as soon as the daemon brings the feature.

No mocks: the real daemon, sandboxes and kernel; the runner (tests/lib/sandboxd_fixture.py) checks that
nothing is left behind."""

import errno
import hashlib
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_SRC = os.path.normpath(os.path.join(HERE, "..", "..", "clients", "python"))
NOBODY = 65534
OTHER = 65533
MiB = 1 << 20
PENDING = 77    # a scenario's exit status when the daemon lacks what it needs


def pending(why):
    print(f"PENDING {why}")
    sys.stdout.flush()
    sys.exit(PENDING)


# ==================================================================================================
# the client side: run as uid 65534 by the tests below (python3 THIS --client SCENARIO SOCKET [ARGS])

def client_main(argv):
    scenario, sock, args = argv[0], argv[1], argv[2:]
    import sandbox  # noqa: the installed copy (PYTHONPATH), never the source tree
    fn = CLIENT_SCENARIOS[scenario]
    out = fn(sandbox, sock, *args)
    print(json.dumps(out if out is not None else {}))


def need_version(sandbox, sock, version, what):
    _, have = sandbox.daemon_version(sock)
    if have < version:
        pending(f"{what} needs protocol version {version}; the daemon speaks {have}")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def c_oneshot(sandbox, sock):
    r = sandbox.run(["sh", "-c", "echo out-$((6*7)); echo err-line >&2; exit 3"], socket=sock)
    expect_eq((r.stdout, r.stderr, r.exit_code), (b"out-42\n", b"err-line\n", 3), "output and exit code")
    expect(len(r.sandbox_id) == 16 and r.stats.status == 3 and r.stats.limit is None and not r.ok, f"{r}")
    expect(r.stats.wall_time > 0 and r.stats.memory_peak > 0 and r.stats.max_rss > 0, f"stats {r.stats}")
    r = sandbox.run("id -u; pwd; echo $FOO", env={"FOO": "bar baz"}, workdir="/tmp", socket=sock)
    expect_eq(r.stdout.decode().split("\n")[1:3], ["/tmp", "bar baz"], f"workdir and env {r}")
    expect(r.ok and r.check() is r, f"a command that succeeded {r}")
    r = sandbox.run(["tr", "a-z", "A-Z"], stdin="hello\n", socket=sock)
    expect_eq(r.stdout, b"HELLO\n", "stdin")
    r = sandbox.run(["sh", "-c", "exec 0<&-; echo closed"], stdin=b"x" * (4 * MiB), socket=sock)
    expect_eq((r.stdout, r.exit_code), (b"closed\n", 0), "a program that does not read its input")
    try:
        sandbox.run(["sh", "-c", "exit 5"], socket=sock).check()
        raise AssertionError("check() passed a command that exited with 5")
    except sandbox.CommandError as e:
        expect("exited with 5" in str(e), f"CommandError's message {e}")


def c_binary(sandbox, sock):
    # Every byte value, 16 MiB, through the program and back; and 12 MiB it makes itself.
    block = bytes(range(256)) * 4096
    data = b"".join(hashlib.sha256(bytes([i])).digest() + block[i:] + block[:i] for i in range(16))[:16 * MiB]
    r = sandbox.run(["cat"], stdin=data, socket=sock)
    expect_eq((len(r.stdout), r.exit_code), (len(data), 0), "16 MiB through cat")
    expect(r.stdout == data, "16 MiB of binary data came back changed")
    r = sandbox.run(["sh", "-c", "head -c 12582912 /dev/zero | tr '\\0' '\\377'; echo tail >&2"], socket=sock)
    expect(r.stdout == b"\xff" * (12 * MiB) and r.stderr == b"tail\n", f"12 MiB out: {len(r.stdout)} bytes")
    r = sandbox.run(["head", "-c", str(3 * MiB), "/dev/zero"], max_output=MiB, socket=sock)
    expect(r.truncated and len(r.stdout) == MiB and r.exit_code == 0, "max_output keeps 1 MiB and says so")


def c_timeout(sandbox, sock):
    t0 = time.monotonic()
    r = sandbox.run(["sh", "-c", "echo started; sleep 60"], timeout=1, socket=sock)
    took = time.monotonic() - t0
    expect_eq((r.stats.limit, r.status, r.exit_code, r.timed_out), ("timeout", 124, -1, True), f"{r}")
    expect(r.stdout == b"started\n", f"the output before the timeout {r.stdout!r}")
    expect(0.9 < r.stats.wall_time < 10 and took < 20, f"the timeout of 1 s took {r.stats.wall_time} s ({took})")


def c_stream(sandbox, sock):
    # The first line must arrive while the program still runs (it waits 2 s before the second).
    t0 = time.monotonic()
    seen = []
    p = sandbox.start(["sh", "-c", "echo one; echo e1 >&2; sleep 2; echo two"], socket=sock)
    for name, chunk in p:
        seen.append((round(time.monotonic() - t0, 2), name, chunk))
    got = {n: b"".join(c for _, m, c in seen if m == n) for n in ("stdout", "stderr")}
    expect_eq(got, {"stdout": b"one\ntwo\n", "stderr": b"e1\n"}, f"streamed output {seen}")
    first = next(t for t, n, c in seen if c.startswith(b"one"))
    last = next(t for t, n, c in seen if c.endswith(b"two\n"))
    expect(last - first > 1.5, f"the first line did not come before the program's end (2 s later): {seen}")
    expect(p.result.exit_code == 0 and p.result.stdout == b"", f"an iterated process's result {p.result}")
    # Callbacks.
    lines = []
    r = sandbox.run("for i in 1 2 3; do echo $i; done; echo x >&2", on_stdout=lines.append, socket=sock)
    expect(b"".join(lines) == b"1\n2\n3\n" and r.stdout == b"" and r.stderr == b"x\n", f"callbacks {lines} {r}")
    # A signal through the daemon, once output shows the program runs.
    p = sandbox.start(["sh", "-c", "echo ready; exec sleep 60"], socket=sock)
    for name, chunk in p:
        if b"ready" in chunk:
            p.kill()
    expect_eq((p.result.stats.signal, p.result.exit_code, p.result.status), (9, -1, 137), f"killed {p.result}")


def c_limits(sandbox, sock):
    r = sandbox.run(["python3", "-c", "b = bytearray(400 << 20); print(len(b))"], memory="64m", socket=sock)
    expect_eq((r.stats.limit, r.status), ("memory", 137), f"a memory bomb under memory='64m' {r.stats}")
    expect(r.stats.memory_peak <= 64 * MiB + MiB, f"memory_peak {r.stats.memory_peak} above 64 MiB")
    r = sandbox.run(["sh", "-c", "for i in $(seq 40); do sleep 5 & done 2>/dev/null; kill $(jobs -p) 2>/dev/null;"
                     " echo done"], pids=10, socket=sock)
    expect(r.stats.pids_limit_hit and r.stats.limit is None, f"40 forks under pids=10: {r.stats}")
    r = sandbox.run("true", socket=sock)
    expect(not r.stats.pids_limit_hit and not r.stats.disk_limit_hit, f"a quiet command's stats {r.stats}")


def c_errors(sandbox, sock):
    try:
        sandbox.run("true", image="no-such-image-of-the-test:1", socket=sock)
        raise AssertionError("an image that is not in the store ran")
    except sandbox.DaemonError as e:
        expect("no-such-image-of-the-test:1" in e.message and e.status == 125, f"the daemon's message: {e!r}")
    try:
        sandbox.run("true", memory="unlimited", socket=sock)
        raise AssertionError("memory='unlimited' ran for a client other than root")
    except sandbox.DaemonError as e:
        expect("memory" in e.message.lower(), f"the daemon's refusal names the bound: {e.message!r}")
    try:
        sandbox.run(["/no/such/program"], socket=sock)
        raise AssertionError("a program that does not exist ran")
    except sandbox.DaemonError as e:
        expect_eq((e.status, "not found" in e.message), (127, True), f"a program that does not exist: {e!r}")
    r = sandbox.run("/no/such/program", socket=sock)
    expect_eq((r.exit_code, b"not found" in r.stderr), (127, True), f"the same through the shell {r}")
    try:
        sandbox.run("true", socket=sock + ".missing")
        raise AssertionError("a socket that does not exist was reached")
    except sandbox.SandboxError as e:
        expect("no socket" in str(e), f"{e}")
    for bad in ({"memory": "12q"}, {"memory": -1}, {"cpus": 0}):
        try:
            sandbox.run("true", socket=sock, **bad)
            raise AssertionError(f"{bad} was accepted")
        except ValueError:
            pass
    try:
        sandbox.run(["a\0b"], socket=sock)
        raise AssertionError("an argument with NUL was sent")
    except ValueError as e:
        expect("NUL" in str(e), f"{e}")


# -- created sandboxes (protocol version 4)

def c_created(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    with sandbox.Sandbox.create(memory="256m", pids=64, socket=sock, name="py-agent") as sb:
        expect(len(sb.id) == 16 and sb.name == "py-agent", f"{sb}")
        sb.run("echo 0 > /tmp/counter").check()
        for i in range(100):
            r = sb.run("n=$(cat /tmp/counter); echo $((n+1)) > /tmp/counter; echo $((n+1))")
            expect_eq((r.stdout, r.exit_code), (f"{i + 1}\n".encode(), 0), f"run {i + 1} sees the state")
        info = sb.info()
        expect_eq((info.kind, info.state, info.name), ("created", "running", "py-agent"), f"{info}")
        # Per-run timeout, streaming, the sandbox's name.
        r = sb.run("sleep 60", timeout=1)
        expect_eq((r.stats.limit, r.status), ("timeout", 124), f"a run's timeout {r.stats}")
        seen = [(time.monotonic(), c) for name, c in sb.stream("echo a; sleep 2; echo b")]
        expect(len(seen) == 2 and seen[1][0] - seen[0][0] > 1.5, f"streamed from a created sandbox: {seen}")
        expect_eq(sandbox.Sandbox("py-agent", socket=sock).run("cat /tmp/counter").stdout, b"100\n", "by name")
        expect_eq(sandbox.Sandbox.connect("py-agent", socket=sock).id, sb.id, "connect by name")
        sb.pause()
        expect_eq(sb.info().state, "paused", "after pause()")
        sb.resume()
        expect_eq(sb.info().state, "running", "after resume()")
        sid = sb.id
    expect(all(e.id != sid for e in sandbox.list_sandboxes(sock)), "the sandbox is still listed after `with`")
    try:
        sandbox.Sandbox(sid, socket=sock).run("true")
        raise AssertionError("a removed sandbox ran a command")
    except sandbox.DaemonError as e:
        expect(e.message, f"{e!r}")


def c_files(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.write_file")
    data = os.urandom(12 * MiB) + bytes(range(256))
    with sandbox.Sandbox.create(socket=sock) as sb:
        sb.write_file("/tmp/blob.bin", data)
        expect_eq(sb.run("wc -c < /tmp/blob.bin").stdout.strip(), str(len(data)).encode(), "size inside")
        back = sb.read_file("/tmp/blob.bin")
        expect(back == data, f"read_file gave {len(back)} bytes, not the {len(data)} written")
        sb.write_file("/tmp/name with spaces 'q'", "text\n")
        expect_eq(sb.read_file("/tmp/name with spaces 'q'"), b"text\n", "a path with spaces and quotes")
        sb.run("python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 3)' > /tmp/made").check()
        expect_eq(sb.read_file("/tmp/made"), bytes(range(256)) * 3, "a file the program made")
        # Errors name the problem (COPY: the daemon's helper; without it: cat's stderr).
        for bad in (lambda: sb.read_file("/no/such/file"), lambda: sb.write_file("/no/such/dir/x", b"x")):
            try:
                bad()
                raise AssertionError("a file operation that must fail succeeded")
            except sandbox.SandboxError as e:
                expect("No such file" in str(e) or "nonexistent" in str(e), f"{e!r}")


def c_shared_limits(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    with sandbox.Sandbox.create(pids=40, memory="128m", socket=sock) as sb:
        # One command parks 30 processes and waits (a builtin read: no fork); a second one, at the same time,
        # cannot start 30 more: the sandbox's one pids bound covers both.
        r_fd, w_fd = os.pipe()
        p = sb.start("for i in $(seq 30); do sleep 300 & done; echo parked; read x; echo got-$x", stdin=r_fd)
        os.close(r_fd)
        it = iter(p)
        seen = b""
        while b"parked" not in seen:
            seen += next(it)[1]
        r = sb.run("for i in $(seq 30); do sleep 300 >/dev/null 2>&1 & done 2>/dev/null; echo tried")
        expect(r.stats.pids_limit_hit, f"the second command's forks did not hit the sandbox's pids bound: {r.stats}")
        os.write(w_fd, b"go\n")
        os.close(w_fd)
        for _, chunk in it:
            seen += chunk
        expect_eq((seen, p.result.exit_code), (b"parked\ngot-go\n", 0), "the first command, let go")
        r = sb.run(["python3", "-c", "b = bytearray(400 << 20)"])
        expect(r.stats.limit == "memory" or r.status == 137, f"a memory bomb in a created sandbox: {r.stats}")
        expect_eq(sb.run("echo still here").stdout, b"still here\n", "the sandbox after a command's memory kill")


def c_created_signal(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    with sandbox.Sandbox.create(socket=sock) as sb:
        # SIGNAL on the command's connection (what ^C through sandboxctl exec --in is).
        p = sb.start(["sh", "-c", "echo ready; exec sleep 60"], timeout=15)
        for name, chunk in p:
            if b"ready" in chunk:
                p.kill()
        expect_eq((p.result.stats.signal, p.result.stats.limit), (9, None),
                  f"kill() of a command in a created sandbox: {p.result.stats}")


def c_create_for_other(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    sb = sandbox.Sandbox.create(socket=sock, name="mine")
    sb.run("echo secret > /tmp/s").check()
    return {"id": sb.id}


def c_foreign(sandbox, sock, sid):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "exec in a created sandbox")
    for target in (sid, "mine"):
        try:
            r = sandbox.Sandbox(target, socket=sock).run("cat /tmp/s")
            raise AssertionError(f"uid {os.getuid()} ran in another uid's sandbox {target}: {r}")
        except sandbox.DaemonError:
            pass
        try:
            sandbox.Sandbox(target, socket=sock).remove(force=True)
            raise AssertionError(f"uid {os.getuid()} removed another uid's sandbox {target}")
        except sandbox.DaemonError:
            pass
    expect(all(e.id != sid for e in sandbox.list_sandboxes(sock)), "another uid's sandbox is listed")


def c_remove(sandbox, sock, sid):
    sb = sandbox.Sandbox(sid, socket=sock)
    expect_eq(sb.run("cat /tmp/s").stdout, b"secret\n", "the owner still reaches it")
    sb.kill()


SNAP_BASE = "localhost/pybase:1"     # the busybox image test_snapshot_fork imports into its daemon's store


def c_snapshot_fork(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    # A sandbox without an image of the store (the daemon's default root) cannot be snapshotted.
    with sandbox.Sandbox.create(socket=sock) as sb:
        try:
            sb.snapshot("py-no-image")
            raise AssertionError("a sandbox without an image of the store was snapshotted")
        except sandbox.UnsupportedError as e:
            pending(str(e))
        except sandbox.DaemonError as e:
            expect(e.errno == errno.EOPNOTSUPP, f"the refusal of a snapshot without an image: {e!r} {e.errno}")
    with sandbox.Sandbox.create(image=SNAP_BASE, memory="96m", env={"FORKED": "yes"}, socket=sock) as sb:
        sb.run("echo before > /root/state").check()
        ref = sb.snapshot("py-client-snap:1")
        expect(ref.endswith(f"/uid-{os.getuid()}/py-client-snap:1"), f"the snapshot's reference {ref!r}")
        sb.run("echo after > /root/state").check()
        for image in (ref, "py-client-snap:1"):
            with sandbox.Sandbox.create(image=image, socket=sock) as child:
                expect_eq(child.read_file("/root/state"), b"before\n", f"a sandbox from the snapshot {image}")
        with sb.fork(name="py-fork") as f:
            expect_eq((f.name, f.read_file("/root/state")), ("py-fork", b"after\n"),
                      "fork() sees the state at the fork")
            expect_eq(f.run("echo $FORKED").stdout, b"yes\n", "fork() passes create()'s env on")
            expect_eq(f.info().memory_max, 96 * MiB, "fork() passes create()'s memory on")
            f.run("echo fork-write > /root/state").check()
            expect_eq(sb.read_file("/root/state"), b"after\n", "the fork's writes stay in the fork")
        with sb.fork(memory="80m") as f:
            expect_eq(f.info().memory_max, 80 * MiB, "fork(memory=...) overrides create()'s")
        for bad in ("a b", "", "x" * 256, "tab\tname"):
            try:
                sb.snapshot(bad)
                raise AssertionError(f"snapshot({bad!r}) was sent")
            except ValueError:
                pass
    return {"ref": ref}


def c_snapshot_foreign(sandbox, sock, ref):
    # Another uid reaches the snapshot neither by its reference nor by its name (its own name space).
    for image in (ref, "py-client-snap:1"):
        for how in (lambda: sandbox.Sandbox.create(image=image, socket=sock).kill(),
                    lambda: sandbox.run("cat /root/state", image=image, socket=sock)):
            try:
                how()
                raise AssertionError(f"uid {os.getuid()} used another uid's snapshot {image}")
            except sandbox.DaemonError as e:
                expect("no image" in e.message and image in e.message, f"as for an image that does not exist: {e!r}")


def c_copy(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "COPY")
    with sandbox.Sandbox.create(socket=sock) as sb:
        try:
            sb._copy(0, "/etc/hostname")
        except sandbox.DaemonError as e:
            if sb._no_copy(e):
                pending("the daemon has no COPY yet (a version-4 daemon before sandboxctl cp)")
            raise
        data = bytes(range(256)) * 4096 * 13
        sb.run("mkdir '/tmp/dir with space'").check()
        sb.write_file("/tmp/dir with space/f.bin", data, mode=0o751)
        r = sb.run(["stat", "-c", "%a %u %s", "/tmp/dir with space/f.bin"])
        expect_eq(r.stdout, f"751 0 {len(data)}\n".encode(), "mode, owner and size of a file written by COPY")
        expect(sb.read_file("/tmp/dir with space/f.bin") == data, "COPY out gave other bytes")
        sb.write_file("/tmp/dir with space/f.bin", b"short")
        expect_eq(sb.read_file("/tmp/dir with space/f.bin"), b"short", "a file replaced")
        sb.run("ln -s 'dir with space/f.bin' /tmp/rel; ln -s /tmp/rel /tmp/abs").check()
        expect_eq(sb.read_file("/tmp/abs"), b"short", "symlinks followed inside the sandbox")
        sb.run("ln -s /tmp/loop1 /tmp/loop2; ln -s /tmp/loop2 /tmp/loop1").check()
        for path, exc, words in (("/tmp", sandbox.SandboxError, "directory"),
                                 ("/tmp/loop1", sandbox.SandboxError, "symbolic links"),
                                 ("/no/such/file", sandbox.DaemonError, "/no/such/file")):
            try:
                sb.read_file(path)
                raise AssertionError(f"read_file({path!r}) succeeded")
            except exc as e:
                expect(words in str(e), f"read_file({path!r}): {e!r}")
        try:
            sb.read_file("/tmp/abs", max_size=3)
            raise AssertionError("max_size=3 read 5 bytes")
        except sandbox.CommandError as e:
            expect("max_size" in str(e), f"{e}")
        try:
            sb.write_file("/no/such/dir/x", b"x")
            raise AssertionError("a file was written below a directory that does not exist")
        except sandbox.DaemonError as e:
            expect(e.message, f"{e!r}")


def c_concurrent(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    import threading
    with sandbox.Sandbox.create(socket=sock) as sb:
        # 10 commands at once in one sandbox, each from its own thread; all of them are in it at the same
        # time (each waits until all 10 have announced themselves in the sandbox's /tmp).
        results, errors = {}, []

        def one(i):
            try:
                results[i] = sb.run(f"touch /tmp/here-{i}; n=0; while [ $(ls /tmp | grep -c '^here-') -lt 10 ]; do "
                                    f"n=$((n+1)); [ $n -gt 300 ] && exit 9; sleep 0.1; done; echo done-{i}", timeout=60)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        expect(not errors, f"concurrent commands failed: {errors}")
        for i in range(10):
            expect_eq((results[i].stdout, results[i].exit_code), (f"done-{i}\n".encode(), 0), f"command {i}")


def c_ttl(sandbox, sock):
    need_version(sandbox, sock, sandbox.LIFECYCLE_VERSION, "Sandbox.create")
    sb = sandbox.Sandbox.create(ttl=2, socket=sock)
    info = sb.info()
    expect(info.expires is not None and 0 < info.expires - time.time() <= 2.5, f"its ttl in the list: {info}")
    deadline = time.monotonic() + 20
    while any(e.id == sb.id for e in sandbox.list_sandboxes(sock)):
        expect(time.monotonic() < deadline, "a sandbox with ttl=2 is still listed after 20 s")
        time.sleep(0.2)
    try:
        sb.run("true")
        raise AssertionError("a sandbox past its ttl ran a command")
    except sandbox.DaemonError as e:
        expect(sb.id in e.message, f"the daemon's message names the sandbox: {e!r}")
    sb.kill()   # gone already: not an error


def c_volumes(sandbox, sock):
    need_version(sandbox, sock, sandbox.VOLUME_VERSION, "volumes")
    sandbox.volume_create("pyvol", size="32m", socket=sock)
    try:
        sandbox.volume_create("pyvol", socket=sock)
        raise AssertionError("a second volume_create of one name succeeded")
    except sandbox.DaemonError as e:
        expect(e.errno == errno.EEXIST, f"volume_create of a name taken: {e!r}")
    (v,) = [v for v in sandbox.volume_list(sock) if v.name == "pyvol"]
    expect_eq((v.uid, v.size, v.in_use_by), (os.getuid(), 32 * MiB, None), "volume_list's entry")
    # A created sandbox writes (as an agent keeps a workspace), a later one-shot run reads it back.
    with sandbox.Sandbox.create(socket=sock, volumes={"pyvol": "/work"}) as sb:
        sb.run("echo kept > /work/notes && mkdir -p /work/src && echo 'print(1)' > /work/src/a.py").check()
        expect_eq(sb.read_file("/work/notes"), b"kept\n", "read_file of a volume's file")
        expect_eq([v.in_use_by for v in sandbox.volume_list(sock) if v.name == "pyvol"], [sb.id],
                  "volume_list while a sandbox mounts it")
        try:
            sandbox.volume_remove("pyvol", socket=sock)
            raise AssertionError("volume_remove of a volume in use succeeded")
        except sandbox.DaemonError as e:
            expect(e.errno == errno.EBUSY and sb.id in e.message, f"volume_remove while in use: {e!r}")
        try:
            sandbox.run("true", socket=sock, volumes=["pyvol:/x"])
            raise AssertionError("a second sandbox mounted a volume in use")
        except sandbox.DaemonError as e:
            expect(e.errno == errno.EBUSY, f"a second mount: {e!r}")
    r = sandbox.run(["sh", "-c", "cat /data/notes /data/src/a.py; echo x > /data/y 2>/dev/null || echo ro"],
                    socket=sock, volumes=["pyvol:/data:ro"])
    expect_eq((r.exit_code, r.stdout), (0, b"kept\nprint(1)\nro\n"), "a later read-only run")
    # The quota: a write past it fails inside, what was there stays.
    r = sandbox.run(["sh", "-c", "dd if=/dev/zero of=/v/big bs=1M count=48; echo rc=$?; rm -f /v/big; cat /v/notes"],
                    socket=sock, volumes={"pyvol": "/v"})
    expect(b"rc=0" not in r.stdout and r.stdout.endswith(b"kept\n") and b"No space left" in r.stderr,
           f"48 MiB into a 32 MiB volume: {r}")
    for bad in ({"-x": "/v"}, {"pyvol": "v"}, {"pyvol": "/a/../b"}, ["pyvol"]):
        try:
            sandbox.run("true", socket=sock, volumes=bad)  # type: ignore[arg-type]
            raise AssertionError(f"volumes={bad!r} was sent")
        except ValueError:
            pass
    return {}


def c_volumes_foreign(sandbox, sock):
    need_version(sandbox, sock, sandbox.VOLUME_VERSION, "volumes")
    expect_eq([v.name for v in sandbox.volume_list(sock)], [], "another uid's volume_list")
    for call in (lambda: sandbox.run("cat /v/notes", socket=sock, volumes={"pyvol": "/v"}),
                 lambda: sandbox.volume_remove("pyvol", socket=sock)):
        try:
            call()
            raise AssertionError(f"uid {os.getuid()} reached another uid's volume")
        except sandbox.DaemonError as e:
            expect(e.errno == errno.ENOENT and "no volume 'pyvol'" in e.message, f"another uid: {e!r}")


def c_volumes_remove(sandbox, sock):
    sandbox.volume_remove("pyvol", socket=sock)
    expect_eq(sandbox.volume_list(sock), [], "volume_list after volume_remove")


CLIENT_SCENARIOS = {
    "oneshot": c_oneshot, "binary": c_binary, "timeout": c_timeout, "stream": c_stream, "limits": c_limits,
    "errors": c_errors, "created": c_created, "files": c_files, "shared_limits": c_shared_limits,
    "created_signal": c_created_signal, "create_for_other": c_create_for_other, "foreign": c_foreign, "remove": c_remove,
    "snapshot_fork": c_snapshot_fork, "snapshot_foreign": c_snapshot_foreign, "copy": c_copy, "ttl": c_ttl,
    "concurrent": c_concurrent, "volumes": c_volumes, "volumes_foreign": c_volumes_foreign,
    "volumes_remove": c_volumes_remove,
}


# ==================================================================================================
# the test side (root): daemons and the client processes

if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--client":
    client_main(sys.argv[2:])
    sys.exit(0)

sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402


def user_gid():
    """The supplementary group the test's daemon allows (group "sandbox" on a real host; the host's
    /etc/group is never changed)."""
    return 40000 + os.getpid() % 20000


def start_daemon(env, config=""):
    """A socket-activated daemon (no idle exit: the activator serves one activation) that allows the
    test's group; its socket reachable by the test's users."""
    d = df.Daemon(env, activate=True, idle=0, config=f"allow-groups = {user_gid()}\n" + config)
    os.chmod(d.sock, 0o666)
    return d


def install_copy(env):
    """The package, copied into the test's directory (readable by the client's uid)."""
    dest = env.path("py")
    if not os.path.isdir(dest):
        shutil.copytree(os.path.join(CLIENT_SRC, "sandbox"), os.path.join(dest, "sandbox"))
        shutil.copy(os.path.abspath(__file__), os.path.join(dest, "client.py"))
        for root, dirs, files in os.walk(dest):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
    return dest


def client(env, d, scenario, *args, uid=NOBODY, pythonpath=None, timeout=240):
    """Runs SCENARIO as UID (with the allowed group) in a python3 of its own; its JSON result. A scenario
    that needs a newer daemon raises sf.Skip; with SBX_TESTS_MUST_RUN=1 that is still a skip, since it
    waits for a feature of the daemon, not for something the machine lacks."""
    path = pythonpath or install_copy(env)
    argv = [df.SETPRIV, f"--reuid={uid}", f"--regid={uid}", f"--groups={user_gid()}", "/usr/bin/python3",
            os.path.join(install_copy(env), "client.py"), "--client", scenario, d.sock] + list(args)
    cenv = {"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/",
            "LANG": "C.UTF-8"}
    r = df.run(env, argv, timeout=timeout, env=cenv)
    if r.returncode == PENDING and r.stdout.startswith("PENDING "):
        raise Pending(r.stdout[8:].strip())
    sf.check(r.returncode == 0, f"scenario {scenario} as uid {uid} failed (exit {r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


class Pending(sf.Skip):
    """A skip that SBX_TESTS_MUST_RUN=1 does not turn into a failure: the daemon lacks a feature."""
    must_run_exempt = True


def scenario_test(name, limit=120):
    def t(env):
        client(env, start_daemon(env), name)
    t.__name__ = f"test_{name}"
    t.timeout = limit
    return t


# pip installs the package offline from the checkout, and the installed copy works for another user.
def test_pip_install(env):
    # From a copy: a build writes into its source directory (build/, *.egg-info), never into the checkout.
    src = env.path("src")
    shutil.copytree(CLIENT_SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = env.path("site")
    r = df.run(env, ["/usr/bin/python3", "-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-deps",
                     "--no-cache-dir", "--target", target, src], timeout=120,
               env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TMPDIR": env.root})
    if r.returncode != 0 and "No module named pip" in r.stderr:
        raise sf.Skip("Debian's python3-pip is not installed")
    sf.check(r.returncode == 0, f"pip install ./clients/python failed: {r.stdout}{r.stderr}")
    sf.check(os.path.isfile(os.path.join(target, "sandbox", "py.typed")), "py.typed was not installed")
    for root, dirs, files in os.walk(env.root):
        os.chmod(root, 0o755)
    d = start_daemon(env)
    client(env, d, "oneshot", pythonpath=target)


test_oneshot = scenario_test("oneshot")
test_binary = scenario_test("binary")
test_timeout = scenario_test("timeout")
test_stream = scenario_test("stream")
test_limits = scenario_test("limits")
test_errors = scenario_test("errors")
test_created = scenario_test("created", 300)
test_files = scenario_test("files")
test_shared_limits = scenario_test("shared_limits")
test_created_signal = scenario_test("created_signal")
test_copy = scenario_test("copy")
test_ttl = scenario_test("ttl")
test_concurrent = scenario_test("concurrent")


# Snapshots need a sandbox of an image of the store: a static busybox imported into a store of the test's own
# (as test_sandboxd_snapshot.py does), for this test only. Then another uid cannot use the snapshot.
def test_snapshot_fork(env):
    from image_fixture import Image, Layer, build_layout, busybox_layer, busybox_static, config_json
    tool = os.environ.get("SANDBOX_IMAGE") or ""
    if not os.access(tool, os.X_OK):
        raise sf.Skip(f"no sandbox-image at {tool!r} (set SANDBOX_IMAGE)")
    if not busybox_static():
        raise sf.Skip("no static busybox (scripts/install-deps.sh unpacks busybox-static)")
    bb = busybox_layer(applets=("sh", "echo", "cat", "true", "id"))
    root = Layer([("d", "root", 0o700, 0, 0), ("d", "tmp", 0o1777, 0, 0)])
    build_layout(env.path("layout"), [(Image([bb, root], config_json([bb, root], env=["PATH=/bin"], cmd=["/bin/sh"])),
                                       "base")])
    store = env.path("store")
    r = df.run(env, [tool, "--store", store, "import", "--tag", SNAP_BASE, env.path("layout")], timeout=120)
    sf.check(r.returncode == 0, f"sandbox-image import: {r.stderr}")
    d = start_daemon(env, f"store = {store}\n")
    ref = client(env, d, "snapshot_fork")["ref"]
    client(env, d, "snapshot_foreign", ref, uid=OTHER)


test_snapshot_fork.timeout = 300


# Volumes: an agent's workspace kept between sandboxes, its quota, in use, read-only; another uid is told there
# is no such volume.
def test_volumes(env):
    if not any(os.access(p, os.X_OK) for p in ("/usr/sbin/mke2fs", "/sbin/mke2fs")) or \
            not os.path.exists("/dev/loop-control"):
        raise sf.Skip("no mke2fs or no /dev/loop-control: volumes are ext4 file systems on loop devices")
    d = start_daemon(env)
    client(env, d, "volumes")
    client(env, d, "volumes_foreign", uid=OTHER)
    client(env, d, "volumes_remove")


test_volumes.timeout = 240


# Another uid in the same group reaches neither the sandbox nor its name; the owner still does.
def test_other_uid(env):
    d = start_daemon(env)
    sid = client(env, d, "create_for_other")["id"]
    try:
        client(env, d, "foreign", sid, uid=OTHER)
    finally:
        client(env, d, "remove", sid)


def prerequisites():
    why = _daemon_prerequisites()
    if why:
        return why
    if not df.SETPRIV:
        return "no setpriv (util-linux): the client runs as another user"
    if not os.path.isfile(os.path.join(CLIENT_SRC, "sandbox", "__init__.py")):
        return f"no Python client at {CLIENT_SRC}"
    return None


if __name__ == "__main__":
    _daemon_prerequisites = df.prerequisites
    df.prerequisites = prerequisites
    df.main()
