# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared fixtures for the sandbox networking integration tests (tests/integration/test_network.py).

What it does: a network lab per test, made of two fresh network namespaces: "host", where the runtime
(sandbox-run, sandboxd) runs through `nsenter --net=/run/netns/HOST` and builds its bridges, veths and
nft table, and "upstream", the outside, joined to it by a veth uplink (host 192.0.2.1/24 <-> upstream
192.0.2.2/24, TEST-NET-1, only inside the namespaces). Nothing is ever sent outside those namespaces or
loopback, and the machine's own namespace, its ip_forward and its nft tables are never touched.
`nsenter --net` is used rather than `ip netns exec`, which remounts /sys and hides the cgroup hierarchies.
Plus: small Python servers and clients (run inside sandboxes, on the host's /usr, or in upstream) that
print who they talked to, line readers for background processes, sandboxd started inside the lab, and
oracles read from the kernel (`ip -j`, `nft -j`, the lease files and their locks).

What it does not do: mock anything. It kills only processes it started (by pid), deletes only the
namespaces it made (which takes their links and nft tables with them) and, at the end, the lease
directory of its own host namespace (/run/sandbox-net/<inode>: the runtime cannot know it is gone).

Contract: like tests/lib/sandbox_fixture.py: exit 0 all passed, 1 some failed, 77 skipped (not root, no
/dev/fuse, no binaries, no ip/nft/nsenter) unless SBX_TESTS_MUST_RUN=1. After every test that passed the
runner stops the test's daemons and fails the test if it left anything behind: sandbox state, cgroups,
mounts, processes, links other than lo/uplink/sbx0/sbx1, addresses on the bridges besides the gateways,
rules in chain `published`, veths, held leases.
"""

import fcntl
import inspect
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402

TEST_TIMEOUT = int(os.environ.get("SBX_NET_TEST_TIMEOUT", "60"))
LEASE_DIR = "/run/sandbox-net"
HOST_ADDR, UPSTREAM_ADDR = "192.0.2.1", "192.0.2.2"
BRIDGE, ISOLATED_BRIDGE = "sbx0", "sbx1"
GATEWAY, ISOLATED_GATEWAY = "10.88.0.1", "10.89.0.1"
SUBNET, ISOLATED_SUBNET = "10.88.0.0/16", "10.89.0.0/16"
TABLE = "sandbox"
PY = "/usr/bin/python3"
IP, NFT, NSENTER = shutil.which("ip"), shutil.which("nft"), shutil.which("nsenter")

# --------------------------------------------------------------------------------------------------
# programs run in the sandboxes (they see the host's /usr) and in upstream

# argv: TCP_PORT UDP_PORT (0: none). Prints "ADDR <its IPv4 address or ->", "READY", then one line
# "got PROTO MSG from PEER" per message, which it also answers with "PROTO MSG from PEER" (a thread per
# TCP connection, so that one stalled client does not hold up the others).
SERVER = r"""
import select, socket, sys, threading
tport, uport = int(sys.argv[1]), int(sys.argv[2])
out = threading.Lock()
def serve(c, peer):
    c.settimeout(5)
    try:
        msg = c.makefile().readline().strip()
        with out:
            print("got tcp", msg, "from", peer[0], flush=True)
        c.sendall(("tcp %s from %s\n" % (msg, peer[0])).encode())
    except OSError:
        pass
    c.close()
def own():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("198.51.100.7", 9))  # no packet: only asks the routing table for a source address
        return s.getsockname()[0]
    except OSError:
        return "-"
socks = []
try:
    if tport:
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", tport)); t.listen(128); socks.append(t)
    if uport:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", uport)); socks.append(u)
except OSError as e:
    print("BINDERR", e.errno, e.strerror, flush=True)
    sys.exit(3)
print("ADDR", own(), flush=True)
print("READY", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        if s.type == socket.SOCK_STREAM:
            c, peer = s.accept()
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()
        else:
            data, peer = s.recvfrom(2048)
            msg = data.decode(errors="replace").strip()
            with out:
                print("got udp", msg, "from", peer[0], flush=True)
            s.sendto(("udp %s from %s\n" % (msg, peer[0])).encode(), peer)
"""

# argv: PROTO HOST PORT MSG TIMEOUT. Prints "ME <the source address the route to HOST gives>", then
# the answer ("tcp MSG from PEER") or "ERR <why>"; exits 0 on an answer, 1 otherwise.
CLIENT = r"""
import errno, socket, sys
proto, host, port, msg, tmo = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
try:
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.connect((host, port))  # no packet: the source address the routing table picks
    print("ME", q.getsockname()[0], flush=True)
    q.close()
except OSError:
    pass
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=tmo)
        s.sendall((msg + "\n").encode())
        ans = s.makefile().readline().strip()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(tmo)
        s.connect((host, port))
        s.send((msg + "\n").encode())
        ans = s.recv(2048).decode(errors="replace").strip()
    print(ans if ans else "ERR empty answer", flush=True)
    sys.exit(0 if ans else 1)
except socket.timeout:
    print("ERR timeout", flush=True)
except OSError as e:
    print("ERR", errno.errorcode.get(e.errno, e.errno), e.strerror, flush=True)
sys.exit(1)
"""


def token():
    return f"{os.getpid() % 100000}{random.randrange(100, 1000)}"


def prerequisites():
    why = sf.prerequisites()
    if why:
        return why
    for what, p in (("sandboxd", df.sandboxd()), ("sandboxctl", df.sandboxctl())):
        if not os.access(p, os.X_OK):
            return f"no {what} at {p} (set SANDBOXD / SANDBOXCTL)"
    for tool, p in (("ip", IP), ("nft", NFT), ("nsenter", NSENTER), ("python3", shutil.which("python3"))):
        if not p:
            return f"no {tool}"
    return None


# --------------------------------------------------------------------------------------------------
# background output


class Lines:
    """Collects the lines a process writes to a pipe (a thread per pipe), for waiting on them."""

    def __init__(self, stream):
        self.lines, self.cond, self.eof = [], threading.Condition(), False
        self.t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.t.start()

    def _read(self, stream):
        try:
            for raw in iter(stream.readline, b""):
                with self.cond:
                    self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait(self, pred, timeout=15, what="a line", start=0):
        """The first line from line START on for which PRED is true (waits for it)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    raise sf.TestTimeout(f"did not see {what}; got {self.lines!r}")
                self.cond.wait(min(left, 0.2))

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


class Server:
    """A SERVER started with Popen (in a sandbox or in a namespace): its stdout lines and stderr."""

    def __init__(self, proc, what):
        self.proc, self.what = proc, what
        self.out = Lines(proc.stdout)
        self.err = Lines(proc.stderr)

    def ready(self, timeout=15):
        """Waits for READY; returns the server's own address."""
        try:
            self.out.wait(lambda l: l == "READY" or l.startswith("BINDERR"), timeout, f"{self.what} READY")
        except sf.TestTimeout:
            raise sf.TestTimeout(f"{self.what} not ready: stdout {self.out.text()!r}, stderr {self.err.text()!r}, "
                                 f"exit {self.proc.poll()}")
        bad = [line for line in self.out.lines if line.startswith("BINDERR")]
        sf.check(not bad, f"{self.what} cannot listen: {bad[0] if bad else ''} (stderr {self.err.text()!r})")
        addr = self.out.wait(lambda l: l.startswith("ADDR "), 1, "ADDR").split()[1]
        return addr

    def got(self):
        """The messages it received: [(proto, msg, peer)]."""
        res = []
        for line in list(self.out.lines):
            p = line.split()
            if len(p) == 5 and p[0] == "got" and p[3] == "from":
                res.append((p[1], p[2], p[4]))
        return res

    def stop(self):
        """SIGTERM (sandbox-run and sandboxctl pass it on and clean up), SIGKILL after 10 s."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        sf.kill_proc(self.proc)
        self.out.t.join(5)
        self.err.t.join(5)


# --------------------------------------------------------------------------------------------------
# the lab


def sh(argv, check=True, timeout=30):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} failed with {r.returncode}: {r.stderr.strip()}")
    return r


class Lab:
    """The test's "host" and "upstream" network namespaces, joined by the veth "uplink"."""

    def __init__(self):
        tok = token()
        self.host, self.upstream = f"sbxt-h-{tok}", f"sbxt-u-{tok}"
        self.made = []
        self.inode = None
        try:
            for ns in (self.host, self.upstream):
                sh([IP, "netns", "add", ns])
                self.made.append(ns)
                sh([IP, "-n", ns, "link", "set", "lo", "up"])
            self.inode = os.stat(self.ns_path(self.host)).st_ino
            sh([IP, "-n", self.host, "link", "add", "uplink", "type", "veth", "peer", "name", "uplink", "netns",
                self.upstream])
            for ns, addr in ((self.host, HOST_ADDR), (self.upstream, UPSTREAM_ADDR)):
                sh([IP, "-n", ns, "addr", "add", f"{addr}/24", "dev", "uplink"])
                sh([IP, "-n", ns, "link", "set", "uplink", "up"])
        except BaseException:
            self.destroy()
            raise

    @staticmethod
    def ns_path(ns):
        return f"/run/netns/{ns}"

    def in_host(self, argv):
        return [NSENTER, f"--net={self.ns_path(self.host)}"] + list(argv)

    def in_upstream(self, argv):
        return [NSENTER, f"--net={self.ns_path(self.upstream)}"] + list(argv)

    def lease_dir(self):
        return os.path.join(LEASE_DIR, str(self.inode))

    def destroy(self):
        for ns in reversed(self.made):
            sh([IP, "netns", "del", ns], check=False)
        self.made = []
        if self.inode is not None:
            shutil.rmtree(self.lease_dir(), ignore_errors=True)

    # --- oracles -----------------------------------------------------------------------------------

    def links(self):
        """{name: link info} of the host namespace (`ip -d -j link`)."""
        r = sh([IP, "-n", self.host, "-d", "-j", "link", "show"])
        return {ln["ifname"]: ln for ln in json.loads(r.stdout)}

    def link_kinds(self):
        return {n: (ln.get("linkinfo") or {}).get("info_kind", "") for n, ln in self.links().items()}

    def ipv4(self, ifname, ns=None):
        """The IPv4 addresses (with prefix) on IFNAME of the host namespace."""
        r = sh([IP, "-n", ns or self.host, "-j", "-4", "addr", "show", "dev", ifname], check=False)
        if r.returncode != 0:
            return None
        res = []
        for ln in json.loads(r.stdout or "[]"):
            res += [f"{a['local']}/{a['prefixlen']}" for a in ln.get("addr_info", [])]
        return sorted(res)

    def routes(self):
        return sh([IP, "-n", self.host, "-4", "route", "show"]).stdout.strip()

    def nft(self, table=TABLE):
        """The table `ip TABLE` of the host namespace as `nft -j` objects, or None if it does not exist."""
        r = sh(self.in_host([NFT, "-j", "list", "table", "ip", table]), check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["nftables"]

    def published(self, table=TABLE):
        """The rules of chain `published`: [{"comment", "proto", "dport", "to_addr", "to_port"}]."""
        objs = self.nft(table) or []
        res = []
        for o in objs:
            rule = o.get("rule")
            if not rule or rule.get("chain") != "published":
                continue
            d = {"comment": rule.get("comment"), "handle": rule.get("handle")}
            for e in rule.get("expr", []):
                m = e.get("match")
                if m and isinstance(m.get("left"), dict) and "payload" in m["left"]:
                    d["proto"], d["dport"] = m["left"]["payload"].get("protocol"), m.get("right")
                if "dnat" in e:
                    d["to_addr"], d["to_port"] = e["dnat"].get("addr"), e["dnat"].get("port")
            res.append(d)
        return res

    def leases(self):
        """{(bridge, address): (held, owner)} of the host namespace's lease files."""
        res = {}
        d = self.lease_dir()
        if not os.path.isdir(d):
            return res
        for br in os.listdir(d):
            if not os.path.isdir(os.path.join(d, br)):
                continue  # .setup: the lock of the bridges' set-up
            for a in os.listdir(os.path.join(d, br)):
                p = os.path.join(d, br, a)
                with open(p, "rb") as f:
                    owner = f.read().decode(errors="replace")
                    try:
                        fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                        held = False
                        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                    except BlockingIOError:
                        held = True
                res[(br, a)] = (held, owner)
        return res

    def held_leases(self):
        return {k: v[1] for k, v in self.leases().items() if v[0]}

    def net_problems(self, bridges_may_exist=True, extra_links=()):
        """What sandboxes left in the host namespace: links besides lo/uplink (and sbx0/sbx1 when
        BRIDGES_MAY_EXIST, and EXTRA_LINKS), addresses on the bridges besides their gateways, veths
        on the bridges, rules in chain published, held leases."""
        problems = []
        kinds = self.link_kinds()
        allowed = {"lo", "uplink"} | set(extra_links) | ({BRIDGE, ISOLATED_BRIDGE} if bridges_may_exist else set())
        extra = {n: k for n, k in kinds.items() if n not in allowed}
        if extra:
            problems.append(f"links left in the host namespace: {extra}")
        for br in (BRIDGE, ISOLATED_BRIDGE):
            if br in kinds and kinds[br] == "bridge":
                # Its gateway only: the first address of the subnet it took (10.88.0.1/16 and 10.89.0.1/16
                # unless something else had those).
                a = self.ipv4(br)
                if len(a) > 1 or (a and ipaddress.ip_interface(a[0]).ip !=
                                  ipaddress.ip_interface(a[0]).network.network_address + 1):
                    problems.append(f"addresses on {br}: {a} (only its gateway allowed)")
        nft = self.nft()
        if nft is not None:
            pub = self.published()
            if pub:
                problems.append(f"rules left in chain published: {pub}")
        held = self.held_leases()
        if held:
            problems.append(f"leases still held: {held}")
        return problems

    def wait_net_clean(self, grace=5.0, **kw):
        deadline = time.monotonic() + grace
        while True:
            p = self.net_problems(**kw)
            if not p or time.monotonic() > deadline:
                return p
            time.sleep(0.05)

    def expect_net_clean(self, what, **kw):
        p = self.wait_net_clean(**kw)
        sf.check(not p, f"{what}: {'; '.join(p)}")


# --------------------------------------------------------------------------------------------------
# per-test environment


class NetEnv(df.DaemonEnv):
    """sandboxd_fixture.DaemonEnv (temp dir, state dir, processes, daemons, leftovers) plus a Lab;
    every sandbox-run and sandboxd of the test runs in the lab's host namespace."""

    def __init__(self, tag):  # noqa: like DaemonEnv.__init__, with our own prefix
        self.root = tempfile.mkdtemp(prefix=f"sbx-net-{tag}-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.state = os.path.join(self.root, "state")
        self.data = os.path.join(self.root, "data")
        self.procs, self.fds, self.daemons = [], [], []
        self.servers = []
        self.timed_out = False
        self.seen_ids = set()
        self.lab = None
        self.extra_links = ()  # links a test made on purpose (still removed with the lab)
        try:
            self.lab = Lab()
        except BaseException:
            sf.rmtree(self.root)
            raise

    def argv(self, args, probe=False):
        return self.lab.in_host(super().argv(args, probe))

    def run(self, args, probe=False, **kw):
        return super().run(args, probe=probe, **kw)

    def popen(self, args, probe=False, env=None, **kw):
        return super().popen(args, probe=probe, env=env, **kw)

    # --- servers and clients -------------------------------------------------------------------------

    def sandbox_server(self, net_args, tport, uport, what="sandbox server", timeout="60"):
        """SERVER in a sandbox (sandbox-run NET_ARGS --timeout TIMEOUT python3 -c SERVER)."""
        p = self.popen(list(net_args) + ["--timeout", timeout, PY, "-c", SERVER, str(tport), str(uport)])
        s = Server(p, what)
        self.servers.append(s)
        return s

    def upstream_server(self, tport, uport):
        """SERVER as root in the upstream namespace."""
        p = subprocess.Popen(self.lab.in_upstream([PY, "-c", SERVER, str(tport), str(uport)]),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        s = Server(p, "upstream server")
        self.servers.append(s)
        return s

    def sandbox_client(self, net_args, proto, host, port, msg, tmo=3.0, timeout=30):
        """CLIENT in a sandbox: (answer or 'ERR ...', own address, Result)."""
        r = self.run(list(net_args) + [PY, "-c", CLIENT, proto, host, str(port), msg, str(tmo)], timeout=timeout)
        return client_result(r)

    def upstream_client(self, proto, host, port, msg, tmo=3.0):
        r = df.run(self, self.lab.in_upstream([PY, "-c", CLIENT, proto, host, str(port), msg, str(tmo)]),
                   timeout=tmo + 20)
        return client_result(r)

    def timeout_expired(self, limit):
        super().timeout_expired(limit)
        for s in self.servers:
            sf.kill_proc(s.proc)

    def cleanup(self):
        try:
            for s in self.servers:
                s.stop()
            super().cleanup()
        finally:
            if self.lab:
                self.lab.destroy()


def client_result(r):
    me, ans = None, None
    for line in r.stdout.splitlines():
        if line.startswith("ME "):
            me = line.split()[1]
        elif line.strip():
            ans = line.strip()
    if ans is None:
        ans = f"ERR no answer line (exit {r.returncode}, stderr {r.stderr.strip()[-300:]!r})"
    return ans, me, r


def retry(fn, ok, timeout=5.0, step=0.2):
    """Calls FN until OK(result) or TIMEOUT seconds passed; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        res = fn()
        if ok(res) or time.monotonic() > deadline:
            return res
        time.sleep(step)


class NetDaemon(df.Daemon):
    """sandboxd --listen SOCK (no socket activation), run in the lab's host namespace through nsenter
    (which execs it: self.pid is the daemon's)."""

    def __init__(self, env, name="d", idle=0, config="# network test: the defaults\n", extra=()):
        self.env, self.name, self.activate = env, name, False
        self.sock = env.path(f"{name}.sock")
        self.logpath = env.path(f"{name}.log")
        argv = [df.sandboxd(), "--state-dir", env.state, "--data-dir", env.data, "--idle-timeout", str(idle)]
        if config is not None:
            argv += ["--config", env.write(f"{name}.conf", config)]
        argv += list(extra) + ["--listen", self.sock]
        self.argv = env.lab.in_host(argv)
        self._log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        env.daemons.append(self)
        deadline = time.monotonic() + 10
        while "Ready" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon {self.argv} exited with {self.proc.returncode}: {self.log()!r}")
            if time.monotonic() > deadline:
                raise sf.TestTimeout(f"daemon {self.argv} not ready after 10 s: {self.log()!r}")
            time.sleep(0.02)


# --------------------------------------------------------------------------------------------------
# runner


def _after_pass(env):
    for s in env.servers:
        s.stop()
    for p in list(env.procs):
        if p.poll() is None:
            raise AssertionError(f"a process is still running at the end of the test: {p.args}")
    env.stop_daemons()
    env.expect_clean("at the end of the test")
    env.lab.expect_net_clean("at the end of the test", extra_links=env.extra_links)


def main(module_globals=None):
    """sandbox_fixture's runner with a fresh NetEnv (its own lab) per test; after a test that passed its
    daemons are stopped and nothing may be left behind (sandbox state, and in the lab: see
    Lab.net_problems)."""
    if module_globals is None:
        module_globals = inspect.stack()[1].frame.f_globals
    sf.main(module_globals, make_env=NetEnv,
            header=f"# sandbox-run under test: {sf.sandbox_run()}; sandboxd: {df.sandboxd()}; "
                   f"sandboxctl: {df.sandboxctl()}",
            check_prerequisites=prerequisites, after_pass=_after_pass, on_failure=df.print_daemon_logs)
