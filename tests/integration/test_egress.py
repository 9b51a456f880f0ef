#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What a sandbox's network may reach, and what the host gives it, end to end as root, no mocks
(docs/network.md): the host's own addresses and link-local addresses (cloud metadata) are closed to
bridged and isolated sandboxes, egress-deny/egress-allow, published ports on the host's 127.0.0.1,
host ports that are in use or below the floor refused, the subnet pool, and name resolution with the
host's resolvers (loopback ones replaced) through sandbox-run and through sandboxd + sandboxctl.

Every test runs in a lab of its own (tests/lib/network_fixture.py): a fresh "host" network namespace
where the runtime builds its bridges, veths and nft table, and an "upstream" namespace (the outside)
behind a veth uplink, host 192.0.2.1/24 <-> upstream 192.0.2.2/24. Services the sandboxes should or
should not reach run in those namespaces (a DNS responder of the test's own, small TCP/UDP servers, an
HTTP server), and where the point is that a rule (not routing) stops a packet, a control shows the same
service answering from elsewhere. The resolv.conf the runtime reads is a file of the test's (the
machine's /etc is never touched). After every test the runner checks that nothing is left."""

import glob
import ipaddress
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import network_fixture as nf  # noqa: E402
from network_fixture import HOST_ADDR, UPSTREAM_ADDR, PY  # noqa: E402

BRIDGE = ["--net", "bridge"]
ISOLATED = ["--net", "isolated"]
NOBODY = 65534
METADATA = "169.254.169.254"

# argv: ADDR PORT NAME=IPV4... A DNS responder over UDP: A queries for a known NAME get its address,
# other types of a known name an empty answer, unknown names NXDOMAIN. Prints "ADDR -", "READY", then
# "Q NAME TYPE from PEER" per query.
DNS = r"""
import socket, struct, sys
addr, port = sys.argv[1], int(sys.argv[2])
names = dict(a.split("=") for a in sys.argv[3:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
print("ADDR -", flush=True)
print("READY", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    if len(data) < 17:
        continue
    qid = struct.unpack("!H", data[:2])[0]
    i, labels = 12, []
    while i < len(data) and data[i]:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode(errors="replace"))
        i += 1 + n
    i += 1
    if i + 4 > len(data):
        continue
    qtype = struct.unpack("!H", data[i:i + 2])[0]
    question = data[12:i + 4]
    name = ".".join(labels).lower()
    print("Q", name, qtype, "from", peer[0], flush=True)
    ip = names.get(name)
    answer = b""
    if ip and qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
    flags = 0x8180 | (0 if ip else 3)
    s.sendto(struct.pack("!HHHHHH", qid, flags, 1, 1 if answer else 0, 0, 0) + question + answer, peer)
"""

# argv: ADDR PORT DIR. An HTTP server of DIR; prints "ADDR -", "READY".
HTTP = r"""
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
srv = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), h)
print("ADDR -", flush=True)
print("READY", flush=True)
srv.serve_forever()
"""

# argv: FAMILY(4|6) PROTO(tcp|udp) ADDR PORT. Holds the port like a host service: a TCP socket
# listening (SO_REUSEADDR, as servers set it) or a bound UDP socket. Prints "ADDR -", "READY".
HOLD = r"""
import socket, sys, time
fam = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM if sys.argv[2] == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((sys.argv[3], int(sys.argv[4])))
if sys.argv[2] == "tcp":
    s.listen(8)
print("ADDR -", flush=True)
print("READY", flush=True)
time.sleep(3600)
"""

# The same, and "ACCEPTED" when a TCP connection comes.
ACCEPTING_HOLD = HOLD.replace("time.sleep(3600)", "s.accept()\nprint('ACCEPTED', flush=True)\ntime.sleep(3600)")

# argv: PROTO PORT. Tries to bind 0.0.0.0:PORT with SO_REUSEADDR (and listen, for tcp): prints "BOUND" or
# "ERR <errno name>".
TRY_BIND = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[2])))
    if sys.argv[1] == "tcp":
        s.listen(1)
    print("BOUND")
except OSError as e:
    print("ERR", errno.errorcode.get(e.errno, e.errno))
"""

# argv: ADDR%IF PORT. A TCP connection over IPv6 (link-local with its interface), tried for up to 6 s
# (our own link-local address needs its duplicate address detection first): "CONNECTED" or "ERR ...".
CONNECT6 = r"""
import errno, socket, sys, time
deadline, last = time.monotonic() + 6, "ERR none"
while time.monotonic() < deadline:
    try:
        ai = socket.getaddrinfo(sys.argv[1], int(sys.argv[2]), socket.AF_INET6, socket.SOCK_STREAM)[0]
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(ai[4])
        print("CONNECTED")
        sys.exit(0)
    except socket.timeout:
        last = "ERR timeout"
    except OSError as e:
        last = "ERR %s %s" % (errno.errorcode.get(e.errno, e.errno), e.strerror)
    time.sleep(0.3)
print(last)
"""


def reached(res):
    return not res[0].startswith("ERR")


def in_ns(env, ns, argv, timeout=30):
    return nf.sh(env.lab.in_host(argv) if ns == "host" else env.lab.in_upstream(argv), check=False, timeout=timeout)


def ns_server(env, ns, argv, what):
    """A helper server (printing ADDR and READY) as root in the lab's NS ("host" or "upstream")."""
    full = env.lab.in_host(argv) if ns == "host" else env.lab.in_upstream(argv)
    p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    env.procs.append(p)
    s = nf.Server(p, what)
    env.servers.append(s)
    s.ready()
    return s


def host_server(env, tport, uport):
    """SERVER as root in the lab's host namespace (a service of the host, on all its addresses)."""
    return ns_server(env, "host", [PY, "-c", nf.SERVER, str(tport), str(uport)], "host server")


def host_client(env, proto, addr, port, msg, tmo=3):
    r = in_ns(env, "host", [PY, "-c", nf.CLIENT, proto, addr, str(port), msg, str(tmo)], timeout=tmo + 20)
    return nf.client_result(sf.Result(r.args, r.returncode, r.stdout, r.stderr, 0))


def gateway_of(env, bridge):
    a = env.lab.ipv4(bridge)
    sf.check(a and len(a) == 1, f"the addresses of {bridge}: {a}")
    return str(ipaddress.ip_interface(a[0]).ip)


def daemon(env, config, name="d"):
    d = nf.NetDaemon(env, name=name, config=config)
    os.chmod(d.sock, 0o666)  # for the non-root client; the daemon decides by SO_PEERCRED
    return d


def daemon_client(d, net_args, proto, host, port, msg, tmo=3, user=None):
    r = d.ctl(["exec"] + net_args + [PY, "-c", nf.CLIENT, proto, host, str(port), msg, str(tmo)], user=user,
              timeout=tmo + 30)
    return nf.client_result(r)


def rule_comments(env, chain_prefix):
    return [o["rule"].get("comment") for o in (env.lab.nft() or [])
            if "rule" in o and o["rule"].get("chain", "").startswith(chain_prefix)]


# ==================================================================================================
# 1. the host itself

def test_host_addresses_unreachable(env):
    """A service of the host listening on all its addresses answers upstream, but no bridged or isolated
    sandbox reaches it: not on the host's own address, not on the bridge's (the gateway), not over UDP,
    not over IPv6 (the bridges have none)."""
    srv = host_server(env, 7100, 7101)
    ans, _, r = env.upstream_client("tcp", HOST_ADDR, 7100, "control")
    sf.eq(ans, f"tcp control from {UPSTREAM_ADDR}", f"upstream to the host's service ({r})")
    for net, bridge in ((BRIDGE, nf.BRIDGE), (ISOLATED, nf.ISOLATED_BRIDGE)):
        # A first sandbox makes the bridge, so that its gateway is known.
        r = env.run(net + ["true"])
        sf.eq(r.returncode, 0, f"{net}: {r}")
        gw = gateway_of(env, bridge)
        for proto, port in (("tcp", 7100), ("udp", 7101)):
            for addr in (HOST_ADDR, gw):
                ans, me, r = env.sandbox_client(net, proto, addr, port, f"{bridge}-{proto}", tmo=1.5)
                sf.check(me is not None, f"{net}: the sandbox has no address ({r})")
                sf.check(ans.startswith("ERR"), f"{net} ({me}) reached the host's {addr}:{port}/{proto}: {ans!r}")
        sf.eq(in_ns(env, "host", [nf.IP, "-6", "-o", "addr", "show", "dev", bridge]).stdout.strip(), "",
              f"IPv6 addresses of {bridge}")
    sf.eq([m for m in srv.got() if m[1] != "control"], [], "what the host's service received from sandboxes")
    # The bridge's link-local address is what a sandbox would use over IPv6: the EUI-64 of its MAC,
    # were IPv6 on. A host service on [::] does not answer it.
    six = ns_server(env, "host", [PY, "-c", ACCEPTING_HOLD, "6", "tcp", "::", "7102"], "host IPv6 service")
    mac = env.lab.links()[nf.BRIDGE]["address"].split(":")
    eui = [int(x, 16) for x in mac[:3]] + [0xff, 0xfe] + [int(x, 16) for x in mac[3:]]
    eui[0] ^= 2
    ll = "fe80::" + ":".join(f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2))
    r = env.run(BRIDGE + [PY, "-c", CONNECT6, f"{ll}%eth0", "7102"])
    print(f"# IPv6 to the bridge's {ll}: {r.stdout.strip()}")
    sf.check(r.stdout.startswith("ERR"), f"a bridged sandbox reached the host over IPv6 at {ll}: {r}")
    sf.check(not any(line == "ACCEPTED" for line in six.out.lines), "the host's IPv6 service accepted a sandbox")


# argv: ADDR PORT. Prints "ADDR -", "READY", then "GOT MSG from PEER" per UDP datagram.
UDP_SINK = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ADDR -", flush=True)
print("READY", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print("GOT", data.decode(errors="replace").strip(), "from", peer[0], flush=True)
"""

# argv: ADDR PORT MSG. Sends MSG three times over UDP.
UDP_SEND = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.1)
print("SENT", flush=True)
"""


def send_to_host_loopback(env, pid, gw, msg):
    """From the network namespace of the sandbox whose init is PID, as root: replace its local routes for
    127.0.0.0/8 by one via its gateway GW (route_localnet on its eth0, as a hostile sandbox with the
    capability could) and send MSG over UDP to 127.0.0.1:7104. Returns the route it took."""
    netns = f"/proc/{pid}/ns/net"
    for cmd in (["sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet"],
                [nf.IP, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"],
                [nf.IP, "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local"],
                [nf.IP, "route", "add", "127.0.0.0/8", "via", gw, "dev", "eth0"]):
        r = nf.sh([nf.NSENTER, f"--net={netns}"] + cmd, check=False)
        sf.eq(r.returncode, 0, f"{cmd} in the sandbox's namespace: {r.stderr}")
    route = nf.sh([nf.NSENTER, f"--net={netns}", nf.IP, "route", "get", "127.0.0.1"], check=False).stdout.strip()
    r = nf.sh([nf.NSENTER, f"--net={netns}", PY, "-c", UDP_SEND, "127.0.0.1", "7104", msg], check=False)
    sf.eq(r.stdout.strip(), "SENT", f"sending from the sandbox: {r.stderr}")
    return route


def test_host_loopback_unreachable(env):
    """The bridges have route_localnet (for publishing on 127.0.0.1): a sandbox that sends to 127.0.0.1
    through its gateway (here: its namespace's local routes for 127/8 replaced by one via eth0, done by
    the test as root) still does not reach the host's loopback services, not even under a daemon whose
    egress-allow is 0.0.0.0/0. A datagram is enough to show it: the host would take it (the kernel
    drops what the host answers from 127.0.0.1 to a sandbox, so TCP never completes either way)."""
    sink = ns_server(env, "host", [PY, "-c", UDP_SINK, "127.0.0.1", "7104"], "host loopback service")
    nf.sh(env.lab.in_host([PY, "-c", UDP_SEND, "127.0.0.1", "7104", "control"]))
    sink.out.wait(lambda l: l.startswith("GOT control"), 5, "the control datagram")
    box = env.popen(BRIDGE + ["--timeout", "60", "sh", "-c", "echo STARTED; sleep 60"])
    srv = nf.Server(box, "idle sandbox")
    env.servers.append(srv)
    srv.out.wait(lambda l: l == "STARTED", 15, "STARTED")
    gw = gateway_of(env, nf.BRIDGE)
    route = send_to_host_loopback(env, sandbox_init_pid(env, box.pid), gw, "from-sandbox-run")
    sf.check(f"via {gw} dev eth0" in route, f"the sandbox's route to 127.0.0.1: {route!r}")
    srv.stop()
    d = daemon(env, "egress-allow = 0.0.0.0/0\n")
    p = d.ctl_popen(["exec"] + BRIDGE + ["sh", "-c", "echo STARTED; sleep 60"])
    srv = nf.Server(p, "idle sandbox of sandboxd")
    env.servers.append(srv)
    srv.out.wait(lambda l: l == "STARTED", 15, "STARTED")
    pid = df.wait_for(lambda: [e["pid"] for e in json.loads(d.ctl(["ps", "--json"]).stdout or "[]")], 10,
                      "the sandbox in ps --json")[0]
    route = send_to_host_loopback(env, pid, gw, "from-sandboxd")
    sf.check(f"via {gw} dev eth0" in route, f"the sandbox's route to 127.0.0.1: {route!r}")
    srv.stop()
    nf.sh(env.lab.in_host([PY, "-c", UDP_SEND, "127.0.0.1", "7104", "control2"]))
    sink.out.wait(lambda l: l.startswith("GOT control2"), 5, "the second control datagram")
    sf.eq([ln for ln in sink.out.lines if ln.startswith("GOT") and "control" not in ln], [],
          "what the host's loopback service received from sandboxes")
    sf.eq(in_ns(env, "host", ["cat", f"/proc/sys/net/ipv4/conf/{nf.BRIDGE}/route_localnet"]).stdout.strip(), "1",
          "route_localnet of sbx0")
    for link in ("all", "uplink", "lo"):
        sf.eq(in_ns(env, "host", ["cat", f"/proc/sys/net/ipv4/conf/{link}/route_localnet"]).stdout.strip(), "0",
              f"route_localnet of {link} (only our bridges have it)")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


def sandbox_init_pid(env, runner_pid):
    """The host pid of the sandbox's init started by sandbox-run RUNNER_PID: its child in another
    network namespace."""
    own = os.readlink("/proc/self/ns/net")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == runner_pid and os.readlink(f"/proc/{d}/ns/net") != own and \
                    os.readlink(f"/proc/{d}/ns/net") != os.readlink(f"/proc/{runner_pid}/ns/net"):
                return int(d)
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError(f"no sandbox init under sandbox-run {runner_pid}")


# ==================================================================================================
# 2. link-local (cloud metadata)

def metadata_service(env):
    """A "metadata service" on 169.254.169.254:8081 in upstream, routed to from the host namespace."""
    nf.sh([nf.IP, "-n", env.lab.upstream, "addr", "add", f"{METADATA}/32", "dev", "lo"])
    nf.sh([nf.IP, "-n", env.lab.host, "route", "add", f"{METADATA}/32", "via", UPSTREAM_ADDR, "dev", "uplink"])
    return ns_server(env, "upstream", [PY, "-c", nf.SERVER, "8081", "0"], "metadata service")


def test_link_local_unreachable(env):
    srv = metadata_service(env)
    ans, _, _ = host_client(env, "tcp", METADATA, 8081, "control")
    sf.eq(ans, f"tcp control from {HOST_ADDR}", "the host itself to the metadata service (routing works)")
    for net in (BRIDGE, ISOLATED):
        ans, me, r = env.sandbox_client(net, "tcp", METADATA, 8081, "steal", tmo=1.5)
        sf.check(me is not None and ans.startswith("ERR"), f"{net} ({me}) reached {METADATA}: {ans!r} ({r})")
    sf.eq([m[1] for m in srv.got()], ["control"], "what the metadata service received")
    # egress-allow opens it (for a daemon whose sandboxes need it).
    d = daemon(env, f"egress-allow = {METADATA}\n")
    ans, _, r = daemon_client(d, BRIDGE, "tcp", METADATA, 8081, "allowed")
    sf.eq(ans, f"tcp allowed from {HOST_ADDR}", f"with egress-allow = {METADATA} ({r})")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


# ==================================================================================================
# 3. egress-deny and egress-allow

def test_egress_deny_and_allow(env):
    """egress-deny = 198.51.100.0/24 with egress-allow = 198.51.100.7 and the host's 192.0.2.1: .8 is
    closed, .7 open, the rest of the outside open, the host open at 192.0.2.1 only. A sandbox-run started
    meanwhile keeps the daemon's rules (it never rebuilds a bridge's chains that exist)."""
    for a in ("198.51.100.7", "198.51.100.8"):
        nf.sh([nf.IP, "-n", env.lab.upstream, "addr", "add", f"{a}/32", "dev", "lo"])
    nf.sh([nf.IP, "-n", env.lab.host, "route", "add", "198.51.100.0/24", "via", UPSTREAM_ADDR, "dev", "uplink"])
    up = env.upstream_server(7000, 7001)
    up.ready()
    host = host_server(env, 7100, 0)
    d = daemon(env, f"egress-deny = 198.51.100.0/24\negress-allow = 198.51.100.7, {HOST_ADDR}\n")
    for net in (BRIDGE, ISOLATED):
        for addr, want in (("198.51.100.8", False), ("198.51.100.7", True), (UPSTREAM_ADDR, True)):
            # (UDP answers to .7 would come from the upstream server's primary address: TCP only there.)
            for proto, port in (("tcp", 7000),) + ((("udp", 7001),) if addr != "198.51.100.7" else ()):
                ans, me, r = daemon_client(d, net, proto, addr, port, f"to-{addr}", tmo=1.5)
                if want:
                    sf.eq(ans, f"{proto} to-{addr} from {HOST_ADDR}", f"{net} to {addr}/{proto} ({r})")
                else:
                    sf.check(ans.startswith("ERR"), f"{net} reached the denied {addr}/{proto}: {ans!r}")
        ans, _, r = daemon_client(d, net, "tcp", HOST_ADDR, 7100, "host-allowed")
        sf.check(ans.startswith("tcp host-allowed from "), f"{net} to the host's allowed {HOST_ADDR} ({r})")
        gw = gateway_of(env, nf.BRIDGE if net == BRIDGE else nf.ISOLATED_BRIDGE)
        ans, _, r = daemon_client(d, net, "tcp", gw, 7100, "gw", tmo=1.5)
        sf.check(ans.startswith("ERR"), f"{net} reached the host at its gateway {gw}, not allowed: {ans!r}")
    sf.check(not any(p == "198.51.100.8" for _, _, p in up.got()) and
             not any(m.startswith("to-198.51.100.8") for _, m, _ in up.got()),
             f"upstream got something for .8: {up.got()}")
    comments = rule_comments(env, "forward-sbx0")
    for c in ("sandbox: egress-deny 198.51.100.0/24", "sandbox: egress-allow 198.51.100.7/32",
              "sandbox: no link-local addresses (cloud metadata)"):
        sf.check(c in comments, f"forward-sbx0 lacks {c!r}: {comments}")
    # sandbox-run (defaults: no egress-deny) keeps what the daemon built.
    ans, _, r = env.sandbox_client(BRIDGE, "tcp", "198.51.100.8", 7000, "run", tmo=1.5)
    sf.check(ans.startswith("ERR"), f"a sandbox-run sandbox reached the denied .8: {ans!r} ({r})")
    sf.eq(rule_comments(env, "forward-sbx0"), comments, "forward-sbx0 after a sandbox-run")
    sf.eq(d.stop(), 0, "sandboxd's exit status")
    host.stop()


def test_egress_deny_everything(env):
    """egress-deny = 0.0.0.0/0: nothing outside the bridge; sandboxes of one bridge still talk."""
    up = env.upstream_server(7000, 0)
    up.ready()
    d = daemon(env, "egress-deny = 0.0.0.0/0\n")
    ans, _, _ = daemon_client(d, BRIDGE, "tcp", UPSTREAM_ADDR, 7000, "out", tmo=1.5)
    sf.check(ans.startswith("ERR"), f"out with egress-deny = 0.0.0.0/0: {ans!r}")
    p = d.ctl_popen(["exec"] + BRIDGE + [PY, "-c", nf.SERVER, "8000", "0"])
    srv = nf.Server(p, "bridged server")
    env.servers.append(srv)
    addr = srv.ready()
    ans, me, r = daemon_client(d, BRIDGE, "tcp", addr, 8000, "peer")
    sf.eq(ans, f"tcp peer from {me}", f"sandbox to sandbox on sbx0 with egress-deny = 0.0.0.0/0 ({r})")
    srv.stop()
    sf.eq(up.got(), [], "what upstream received")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


# ==================================================================================================
# 4. published ports on the host's 127.0.0.1

def test_publish_on_host_loopback(env):
    srv = env.sandbox_server(BRIDGE + ["-p", "8080:8000", "-p", "5353:5300/udp"], 8000, 5300, "published server")
    srv.ready()
    gw = gateway_of(env, nf.BRIDGE)
    for proto, port in (("tcp", 8080), ("udp", 5353)):
        ans, _, r = nf.retry(lambda: host_client(env, proto, "127.0.0.1", port, f"lo-{proto}", tmo=1), reached)
        # The loopback source is masqueraded to the gateway: a sandbox cannot answer 127.0.0.1.
        sf.eq(ans, f"{proto} lo-{proto} from {gw}", f"the host to 127.0.0.1:{port}/{proto} ({r})")
        ans, _, r = nf.retry(lambda: env.upstream_client(proto, HOST_ADDR, port, f"ext-{proto}", tmo=1), reached)
        sf.eq(ans, f"{proto} ext-{proto} from {UPSTREAM_ADDR}", f"upstream to {HOST_ADDR}:{port}/{proto} ({r})")
    srv.stop()
    ans, _, _ = host_client(env, "tcp", "127.0.0.1", 8080, "after", tmo=1)
    sf.check(ans.startswith("ERR"), f"127.0.0.1:8080 still answers after the sandbox ended: {ans!r}")
    # Through the daemon, isolated.
    d = daemon(env, "# defaults\n")
    p = d.ctl_popen(["exec"] + ISOLATED + ["-p", "8081:8000", PY, "-c", nf.SERVER, "8000", "0"])
    s2 = nf.Server(p, "isolated published server")
    env.servers.append(s2)
    s2.ready()
    gw = gateway_of(env, nf.ISOLATED_BRIDGE)
    ans, _, r = nf.retry(lambda: host_client(env, "tcp", "127.0.0.1", 8081, "iso", tmo=1), reached)
    sf.eq(ans, f"tcp iso from {gw}", f"the host to 127.0.0.1:8081 (isolated, sandboxd) ({r})")
    s2.stop()
    sf.eq(d.stop(), 0, "sandboxd's exit status")


# ==================================================================================================
# 5. host ports: in use, reserved, below the floor

def test_publish_port_held_by_host(env):
    """Host ports a host socket holds (listening on all addresses or only 127.0.0.1, a bound UDP socket,
    an IPv6-only listener) are refused for root through sandbox-run and sandboxd and for a non-root
    client alike, with a message naming the port; nothing is left half-built."""
    holders = [("4", "tcp", "0.0.0.0", 2222), ("4", "tcp", "127.0.0.1", 2223), ("4", "udp", "0.0.0.0", 5555)]
    if socket.has_ipv6 and in_ns(env, "host", ["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]).stdout.strip() == "0":
        holders.append(("6", "tcp", "::", 2224))
    for fam, proto, addr, port in holders:
        ns_server(env, "host", [PY, "-c", HOLD, fam, proto, addr, str(port)], f"host socket {addr}:{port}/{proto}")
    d = daemon(env, f"allow-users = {NOBODY}\n")
    for fam, proto, addr, port in holders:
        spec = f"{port}:22" + ("/udp" if proto == "udp" else "")
        runs = [("sandbox-run", lambda: env.run(BRIDGE + ["-p", spec, "true"])),
                ("sandboxd, root", lambda: d.ctl(["exec"] + BRIDGE + ["-p", spec, "true"])),
                ("sandboxd, uid 65534", lambda: d.ctl(["exec"] + BRIDGE + ["-p", spec, "true"], user=NOBODY))]
        for who, fn in runs:
            r = fn()
            sf.eq(r.returncode, 125, f"{who}: -p {spec} while a host socket holds {addr}:{port}/{proto}: {r}")
            sf.check(f"{port}/{proto}" in r.stderr and "socket on the host" in r.stderr,
                     f"{who}: the message should name {port}/{proto} and why: {r.stderr!r}")
    print(f"# refusal: {r.stderr.strip()}")
    sf.eq(env.lab.published() if env.lab.nft() is not None else [], [], "published rules after the refusals")
    sf.eq(env.lab.held_leases(), {}, "leases after the refusals")
    sf.eq(sorted(n for n in env.lab.links() if n.startswith("sbx") and n not in (nf.BRIDGE, nf.ISOLATED_BRIDGE)),
          [], "veths after the refusals")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


def test_published_port_reserved(env):
    """While a sandbox publishes 8080/tcp and 5353/udp, no host program can take them (not even with
    SO_REUSEADDR); when it ends, they are free again."""
    srv = env.sandbox_server(BRIDGE + ["-p", "8080:8000", "-p", "5353:5300/udp"], 8000, 5300, "published server")
    srv.ready()
    for proto, port in (("tcp", 8080), ("udp", 5353)):
        r = in_ns(env, "host", [PY, "-c", TRY_BIND, proto, str(port)])
        sf.eq(r.stdout.strip(), "ERR EADDRINUSE", f"a host program binding {port}/{proto} while it is published")
    srv.stop()
    for proto, port in (("tcp", 8080), ("udp", 5353)):
        r = in_ns(env, "host", [PY, "-c", TRY_BIND, proto, str(port)])
        sf.eq(r.stdout.strip(), "BOUND", f"a host program binding {port}/{proto} after the sandbox ended")


def test_publish_floor_for_non_root(env):
    """A non-root client may not publish host ports below min-published-port (1024 by default): -p 22:22
    is refused before anything is built; above the floor it works; root is not bound by the floor."""
    d = daemon(env, f"allow-users = {NOBODY}\n")
    for spec in ("22:22", "1023:80", "53:53/udp"):
        r = d.ctl(["exec"] + BRIDGE + ["-p", spec, "true"], user=NOBODY)
        sf.eq(r.returncode, 125, f"uid {NOBODY}: -p {spec}: {r}")
        sf.check(f"--publish {spec}" in r.stderr and "below 1024" in r.stderr and "min-published-port" in r.stderr,
                 f"uid {NOBODY}: -p {spec}: message {r.stderr!r}")
    print(f"# refusal: {r.stderr.strip()}")
    sf.eq(env.lab.nft(), None, "a refused sandbox built the table")
    p = d.ctl_popen(["exec"] + BRIDGE + ["-p", "8080:8000", PY, "-c", nf.SERVER, "8000", "0"], user=NOBODY)
    srv = nf.Server(p, "non-root published server")
    env.servers.append(srv)
    srv.ready()
    ans, _, r = nf.retry(lambda: env.upstream_client("tcp", HOST_ADDR, 8080, "nobody", tmo=1), reached)
    sf.eq(ans, f"tcp nobody from {UPSTREAM_ADDR}", f"uid {NOBODY}'s port 8080 from upstream ({r})")
    srv.stop()
    r = d.ctl(["exec"] + BRIDGE + ["-p", "80:8000", "true"])
    sf.eq(r.returncode, 0, f"root publishing port 80 through sandboxd: {r}")
    sf.eq(d.stop(), 0, "sandboxd's exit status")
    d = daemon(env, f"allow-users = {NOBODY}\nmin-published-port = 9000\n", name="floor9000")
    r = d.ctl(["exec"] + BRIDGE + ["-p", "8080:8000", "true"], user=NOBODY)
    sf.check(r.returncode == 125 and "below 9000" in r.stderr, f"min-published-port = 9000, -p 8080: {r}")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


# ==================================================================================================
# 6. name resolution

NAMES = ["svc.sandbox.test=192.0.2.2", "other.sandbox.test=198.51.100.9"]
RESOLVE = ("cat /etc/resolv.conf; echo GETENT; getent hosts svc.sandbox.test; getent hosts svc; echo CURL; "
           "curl -sS --max-time 5 http://svc.sandbox.test:7080/hello.txt")


def dns_lab(env):
    """The test's DNS responder on upstream's 192.0.2.2:53 and an HTTP server on :7080."""
    dns = ns_server(env, "upstream", [PY, "-c", DNS, UPSTREAM_ADDR, "53"] + NAMES, "DNS responder")
    www = env.mkdir("www")
    env.write("www/hello.txt", "hello from upstream\n")
    ns_server(env, "upstream", [PY, "-c", HTTP, UPSTREAM_ADDR, "7080", www], "HTTP server")
    return dns


def check_resolved(out, what):
    sf.check("GETENT\n192.0.2.2       svc.sandbox.test\n192.0.2.2       svc.sandbox.test\n" in out,
             f"{what}: getent by name and through the search list: {out!r}")
    sf.check(out.rstrip().endswith("CURL\nhello from upstream"), f"{what}: curl by name: {out!r}")


def test_name_resolution(env):
    dns = dns_lab(env)
    conf = env.write("resolv.conf", "# the host's\nnameserver 192.0.2.2\nnameserver fd00::53\n"
                                    "search sandbox.test\noptions ndots:1 timeout:2\n")
    for net in (BRIDGE, ISOLATED):
        r = env.run(net + ["sh", "-c", RESOLVE], env={"SANDBOX_RESOLV_CONF": conf})
        sf.eq(r.returncode, 0, f"{net}: resolving ({r})")
        servers = [ln for ln in r.stdout.splitlines() if ln.startswith("nameserver")]
        sf.eq(servers, ["nameserver 192.0.2.2"], f"{net}: name servers inside (IPv6 ones left out)")
        sf.check("search sandbox.test\n" in r.stdout and "options ndots:1 timeout:2\n" in r.stdout,
                 f"{net}: the host's search list and options: {r.stdout!r}")
        check_resolved(r.stdout, f"sandbox-run {net}")
    sf.check(all(peer == HOST_ADDR for line in dns.out.lines if line.startswith("Q ") for peer in line.split()[-1:]),
             f"the DNS responder saw queries from elsewhere than the host's address: {dns.out.lines}")
    sf.check(any("svc.sandbox.test 1" in line for line in dns.out.lines), "no A query reached the responder")
    # The shared generated image keeps its own file; --net none has no name server; --net host gets the
    # host's list as it is.
    images = glob.glob(os.path.join(env.state, "images", "host-*", "etc", "resolv.conf"))
    sf.check(images, f"no generated host image in {env.state}/images")
    for path in images:
        with open(path) as f:
            sf.check("No name servers" in f.read(), f"the shared image's /etc/resolv.conf was changed: {path}")
    r = env.run(["cat", "/etc/resolv.conf"], env={"SANDBOX_RESOLV_CONF": conf})
    sf.check("nameserver" not in r.stdout, f"--net none: {r.stdout!r}")
    r = env.run(["--net", "host", "cat", "/etc/resolv.conf"], env={"SANDBOX_RESOLV_CONF": conf})
    sf.eq([ln for ln in r.stdout.splitlines() if ln.startswith("nameserver")],
          ["nameserver 192.0.2.2", "nameserver fd00::53"], f"--net host: {r.stdout!r}")
    # The file inside is read-only.
    r = env.run(BRIDGE + ["sh", "-c", "echo nameserver 1.2.3.4 >> /etc/resolv.conf"], env={"SANDBOX_RESOLV_CONF": conf})
    sf.check(r.returncode != 0, f"/etc/resolv.conf is writable inside: {r}")
    # Through sandboxd: resolv-conf in its configuration.
    d = daemon(env, f"resolv-conf = {conf}\n")
    r = d.ctl(["exec"] + BRIDGE + ["sh", "-c", RESOLVE])
    sf.eq(r.returncode, 0, f"sandboxctl exec --net bridge: resolving ({r})")
    check_resolved(r.stdout, "sandboxd --net bridge")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


def test_name_resolution_loopback_replaced(env):
    """The host's only name server is systemd-resolved's stub 127.0.0.53, which a sandbox cannot reach:
    it gets the upstream ones from resolved's own list instead (as Docker does). Without that list it
    gets none (never a public resolver), and its resolv.conf says why."""
    dns_lab(env)
    conf = env.write("resolv.conf", "nameserver 127.0.0.53\nsearch sandbox.test\noptions edns0 trust-ad\n")
    resolved = env.write("resolved.conf", "# resolved's upstream list\nnameserver 192.0.2.2\nsearch elsewhere.test\n")
    r = env.run(BRIDGE + ["sh", "-c", RESOLVE], env={"SANDBOX_RESOLV_CONF": conf, "SANDBOX_RESOLV_CONF_UPSTREAM": resolved})
    sf.eq(r.returncode, 0, f"resolving with the stub replaced ({r})")
    sf.eq([ln for ln in r.stdout.splitlines() if ln.startswith(("nameserver", "search"))],
          ["nameserver 192.0.2.2", "search sandbox.test"], f"name servers and search list inside: {r.stdout!r}")
    check_resolved(r.stdout, "stub replaced")
    r = env.run(BRIDGE + ["cat", "/etc/resolv.conf"],
                env={"SANDBOX_RESOLV_CONF": conf, "SANDBOX_RESOLV_CONF_UPSTREAM": env.path("missing.conf")})
    sf.eq(r.returncode, 0, f"{r}")
    sf.check("nameserver" not in r.stdout and "No name servers" in r.stdout and "127.0.0.53" not in r.stdout,
             f"no upstream list: {r.stdout!r}")


def test_name_server_on_host_address(env):
    """A name server on one of the host's own addresses stays reachable on port 53 (what sandboxes must
    use), while every other port of that address stays closed."""
    dns = ns_server(env, "host", [PY, "-c", DNS, HOST_ADDR, "53"] + NAMES, "DNS responder on the host")
    host_server(env, 7100, 0)
    conf = env.write("resolv.conf", f"nameserver {HOST_ADDR}\n")
    script = f"getent hosts svc.sandbox.test; {PY} -c '{nf.CLIENT}' tcp {HOST_ADDR} 7100 closed 1.5"
    for net in (BRIDGE, ISOLATED):
        r = env.run(net + ["sh", "-c", script], env={"SANDBOX_RESOLV_CONF": conf})
        sf.check(r.stdout.startswith("192.0.2.2       svc.sandbox.test\n"), f"{net}: resolving via the host ({r})")
        sf.check("ERR" in r.stdout, f"{net}: the host's port 7100 answered: {r.stdout!r}")
    sf.check(any(line.startswith("Q svc.sandbox.test 1 from 10.") for line in dns.out.lines),
             f"the responder did not see the sandboxes' own addresses: {dns.out.lines}")
    comments = rule_comments(env, "input-sbx0")
    sf.check(f"sandbox: name server {HOST_ADDR}, udp" in comments, f"input-sbx0: {comments}")


if __name__ == "__main__":
    nf.main()
