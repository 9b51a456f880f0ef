#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Sandbox networking end to end, as root, no mocks (docs/network.md): --net none|bridge|isolated|host
and -p/--publish, through sandbox-run and through sandboxd + sandboxctl.

Every test runs in a lab of its own (tests/lib/network_fixture.py): a fresh "host" network namespace
where the runtime builds its bridges, veths and nft table, and an "upstream" namespace (the outside)
behind a veth uplink, host 192.0.2.1/24 <-> upstream 192.0.2.2/24. Upstream has no route to the sandbox
subnets: only masquerade makes replies come back. Traffic never leaves those namespaces. Servers and
clients are small Python programs that print whom they talked to; the kernel is the oracle for what
the runtime built (`ip -j`, `nft -j list table ip sandbox`, the lease files' locks). After every test
the runner checks that nothing is left: sandbox state, cgroups, processes, links, addresses, rules,
leases."""

import ipaddress
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sandbox_fixture as sf  # noqa: E402
import sandboxd_fixture as df  # noqa: E402
import network_fixture as nf  # noqa: E402
from network_fixture import HOST_ADDR, UPSTREAM_ADDR, PY  # noqa: E402

SUBNET = ipaddress.ip_network(nf.SUBNET)
ISOLATED_SUBNET = ipaddress.ip_network(nf.ISOLATED_SUBNET)
BRIDGE = ["--net", "bridge"]
ISOLATED = ["--net", "isolated"]


def in_net(addr, net):
    try:
        return ipaddress.ip_address(addr) in net
    except ValueError:
        return False


def sandbox_addr_ok(addr, net, gw):
    sf.check(in_net(addr, net) and addr != gw and addr != str(net.broadcast_address),
             f"sandbox address {addr!r} is not a host address of {net} besides the gateway {gw}")


def bridge_ports(env, bridge):
    """{host end name: link info} of the links whose master is BRIDGE."""
    return {n: ln for n, ln in env.lab.links().items() if ln.get("master") == bridge}


def only_sandbox(env):
    ids = env.sandbox_ids()
    sf.eq(len(ids), 1, f"sandboxes in the state directory: {ids}")
    return ids[0]


def reached(res):
    return not res[0].startswith("ERR")


# ==================================================================================================
# 1. bridged sandboxes talk to each other

def test_bridged_sandboxes_talk(env):
    srv = env.sandbox_server(BRIDGE, 8000, 5300, "bridged server")
    addr = srv.ready()
    sandbox_addr_ok(addr, SUBNET, nf.GATEWAY)
    sid = only_sandbox(env)
    # What the host namespace has while it runs: its veth's host end on sbx0, its lease held.
    ports = bridge_ports(env, nf.BRIDGE)
    sf.eq(sorted(ports), [f"sbx{sid[:12]}"], "ports of sbx0 while one bridged sandbox runs")
    sf.eq(env.lab.held_leases(), {(nf.BRIDGE, addr): sid}, "held leases (bridge, address): owner")
    sf.eq(env.lab.ipv4(nf.BRIDGE), [f"{nf.GATEWAY}/16"], "addresses of sbx0")
    for proto, port in (("tcp", 8000), ("udp", 5300)):
        msg = f"hello-{proto}"
        ans, me, r = env.sandbox_client(BRIDGE, proto, addr, port, msg)
        sandbox_addr_ok(me, SUBNET, nf.GATEWAY)
        sf.check(me != addr, f"two sandboxes got the same address {addr}")
        # No NAT between sandboxes of one bridge: the server sees the client's own address.
        sf.eq(ans, f"{proto} {msg} from {me}", f"{proto} answer of the bridged server ({r})")
        sf.check((proto, msg, me) in srv.got(), f"the server did not log {proto} {msg} from {me}: {srv.got()}")


# ==================================================================================================
# 2. isolated sandboxes do not

def test_isolated_sandboxes_cannot_talk(env):
    iso = env.sandbox_server(ISOLATED, 8000, 5300, "isolated server")
    a = iso.ready()
    sandbox_addr_ok(a, ISOLATED_SUBNET, nf.ISOLATED_GATEWAY)
    ports = bridge_ports(env, nf.ISOLATED_BRIDGE)
    sf.eq(len(ports), 1, f"ports of sbx1: {sorted(ports)}")
    slave = next(iter(ports.values())).get("linkinfo", {}).get("info_slave_data", {})
    sf.eq(slave.get("isolated"), True, f"the isolated flag of the port {sorted(ports)} (info_slave_data {slave})")
    for proto, port in (("tcp", 8000), ("udp", 5300)):
        ans, me, r = env.sandbox_client(ISOLATED, proto, a, port, f"iso-{proto}", tmo=2)
        sf.check(ans.startswith("ERR"), f"an isolated sandbox ({me}) reached another one ({a}) over {proto}: {ans!r}")
    br = env.sandbox_server(BRIDGE, 8000, 5300, "bridged server")
    b = br.ready()
    for proto, port in (("tcp", 8000), ("udp", 5300)):
        ans, me, r = env.sandbox_client(ISOLATED, proto, b, port, f"iso2br-{proto}", tmo=2)
        sf.check(ans.startswith("ERR"), f"an isolated sandbox ({me}) reached a bridged one ({b}) over {proto}: {ans!r}")
    time.sleep(0.3)
    sf.eq(iso.got(), [], "what the isolated server received")
    sf.eq(br.got(), [], "what the bridged server received from isolated sandboxes")
    # Positive control: the bridged server does answer a bridged client.
    ans, me, r = env.sandbox_client(BRIDGE, "tcp", b, 8000, "control")
    sf.eq(ans, f"tcp control from {me}", f"bridged client to the bridged server ({r})")
    # The outside is reachable from an isolated sandbox, masqueraded.
    up = env.upstream_server(7000, 7001)
    up.ready()
    for proto, port in (("tcp", 7000), ("udp", 7001)):
        ans, me, r = env.sandbox_client(ISOLATED, proto, UPSTREAM_ADDR, port, f"iso-out-{proto}")
        sandbox_addr_ok(me, ISOLATED_SUBNET, nf.ISOLATED_GATEWAY)
        sf.eq(ans, f"{proto} iso-out-{proto} from {HOST_ADDR}", f"isolated sandbox to upstream over {proto} ({r})")


# ==================================================================================================
# 3. outbound NAT

def test_masquerade_to_upstream(env):
    routes = nf.sh([nf.IP, "-n", env.lab.upstream, "-4", "route", "show"]).stdout
    sf.check("10.88." not in routes and "default" not in routes, f"upstream must not route to sandboxes: {routes!r}")
    up = env.upstream_server(7000, 7001)
    up.ready()
    for proto, port in (("tcp", 7000), ("udp", 7001)):
        ans, me, r = env.sandbox_client(BRIDGE, proto, UPSTREAM_ADDR, port, f"out-{proto}")
        sandbox_addr_ok(me, SUBNET, nf.GATEWAY)
        sf.eq(ans, f"{proto} out-{proto} from {HOST_ADDR}", f"bridged sandbox to upstream over {proto} ({r})")
    sf.check(all(peer == HOST_ADDR for _, _, peer in up.got()), f"upstream saw {up.got()}")
    fwd = subprocess.run(env.lab.in_host(["cat", "/proc/sys/net/ipv4/ip_forward"]), stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    sf.eq(fwd, "1", "ip_forward of the host namespace after the first bridged sandbox")


# ==================================================================================================
# 4. published ports

def test_publish_tcp_udp(env):
    srv = env.sandbox_server(BRIDGE + ["-p", "8080:8000", "-p", "5353:5300/udp"], 8000, 5300, "published server")
    addr = srv.ready()
    sid = only_sandbox(env)
    pub = sorted((p["comment"], p["proto"], p["dport"], p["to_addr"], p["to_port"]) for p in env.lab.published())
    sf.eq(pub, [(f"sbx:{sid}", "tcp", 8080, addr, 8000), (f"sbx:{sid}", "udp", 5353, addr, 5300)],
          "chain published (nft -j)")
    # HOST.md: the first DNAT connection right after set-up was once refused: retry briefly.
    for proto, port in (("tcp", 8080), ("udp", 5353)):
        ans, me, r = nf.retry(lambda: env.upstream_client(proto, HOST_ADDR, port, f"pub-{proto}", tmo=1), reached)
        # DNAT only: the sandbox sees the real client.
        sf.eq(ans, f"{proto} pub-{proto} from {UPSTREAM_ADDR}", f"upstream to {HOST_ADDR}:{port}/{proto} ({r})")
    # From the host namespace itself, to its own address (chain output).
    r = subprocess.run(env.lab.in_host([PY, "-c", nf.CLIENT, "tcp", HOST_ADDR, "8080", "from-host", "3"]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    ans = nf.client_result(sf.Result(r.args, r.returncode, r.stdout, r.stderr, 0))[0]
    sf.eq(ans, f"tcp from-host from {HOST_ADDR}", f"the host namespace to its own {HOST_ADDR}:8080")
    srv.stop()
    sf.eq(srv.proc.returncode, 128 + 15, f"sandbox-run's exit status after SIGTERM ({srv.err.text()!r})")
    sf.eq(env.lab.published(), [], "chain published after the sandbox ended")
    ans, _, _ = env.upstream_client("tcp", HOST_ADDR, 8080, "after", tmo=1)
    sf.check(ans.startswith("ERR"), f"the published port still answers after the sandbox ended: {ans!r}")


def test_publish_privileged_ports(env):
    """The documented example, -p 8080:80 (and a DNS-like 5353:53/udp), to a server the sandbox runs.
    The program has no capability: binding port 80 or 53 inside needs the sandbox's
    net.ipv4.ip_unprivileged_port_start lowered (Docker sets it to 0 in its containers)."""
    srv = env.sandbox_server(BRIDGE + ["-p", "8080:80", "-p", "5353:53/udp"], 80, 53, "server on 80 and 53")
    srv.ready()
    for proto, port in (("tcp", 8080), ("udp", 5353)):
        ans, me, r = nf.retry(lambda: env.upstream_client(proto, HOST_ADDR, port, f"priv-{proto}", tmo=1), reached)
        sf.eq(ans, f"{proto} priv-{proto} from {UPSTREAM_ADDR}", f"upstream to {HOST_ADDR}:{port}/{proto} ({r})")


# ==================================================================================================
# 5. none and host

def net_ns_of_sandbox(out):
    return [line for line in out.splitlines() if line.startswith("net:[")]


NET_SHOW = ("echo /sys/class/net:; ls /sys/class/net 2>&1; echo /proc/net/dev:; "
            "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; echo ns:; readlink /proc/self/ns/net; "
            "echo mounts:; cut -d' ' -f5 /proc/self/mountinfo")


def sections(out):
    res, cur = {}, None
    for line in out.splitlines():
        if line.endswith(":") and " " not in line:
            cur = line[:-1]
            res[cur] = []
        elif cur:
            res[cur].append(line)
    return res


def test_net_none_only_lo(env):
    for extra in ([], ["--net", "none"]):
        r = env.run(extra + ["sh", "-c", NET_SHOW])
        sf.eq(r.returncode, 0, f"{extra}: {r}")
        s = sections(r.stdout)
        sf.eq(s["/sys/class/net"], ["lo"], f"{extra}: /sys/class/net inside")
        sf.eq(s["/proc/net/dev"], ["lo"], f"{extra}: /proc/net/dev inside")
        sf.check(s["ns"] != [f"net:[{env.lab.inode}]"], f"{extra}: the sandbox is in the host namespace")
    sf.eq(sorted(env.lab.links()), ["lo", "uplink"], "links of the host namespace after --net none")
    sf.eq(env.lab.nft(), None, "--net none created the nft table")


def test_net_host(env):
    r = env.run(["--net", "host", "sh", "-c", NET_SHOW])
    sf.eq(r.returncode, 0, f"--net host: {r}")
    s = sections(r.stdout)
    sf.eq(s["ns"], [f"net:[{env.lab.inode}]"], "the sandbox's network namespace (the test's host namespace)")
    sf.eq(sorted(s["/proc/net/dev"]), sorted(env.lab.links()), "links seen inside with --net host")
    sf.check("/sys" not in s["mounts"], f"/sys is mounted with --net host: {s['mounts']}")
    sf.check(len(s["/sys/class/net"]) == 1 and "No such file" in s["/sys/class/net"][0],
             f"/sys/class/net exists inside with --net host: {s['/sys/class/net']}")
    sf.eq(sorted(env.lab.links()), ["lo", "uplink"], "--net host created links")
    # -p needs a sandbox network.
    r = env.run(["--net", "host", "-p", "8080:8000", "true"])
    sf.check(r.returncode != 0, f"--net host -p was accepted: {r}")


# ==================================================================================================
# 6. many sandboxes leave nothing

def nsfs_mounts():
    # Other tests' labs (ip netns add sbxt-...), which may come and go meanwhile, are not ours.
    return {m for m in sf.host_mounts() if m[1] == "nsfs" and not m[0].startswith("/run/netns/sbxt-")}


@sf.timeout(150)
def test_100_sandboxes_leave_nothing(env):
    snap = sf.Snapshot(env)
    ns_before = nsfs_mounts()
    t0 = time.monotonic()
    kinds = {}
    for i in range(100):
        k = i % 10
        if k == 0:
            args, want = BRIDGE + ["--timeout", "0.2", "sleep", "10"], 124
        elif k == 1:
            args, want = BRIDGE + ["-p", f"{9000 + i}:8000", "-p", "9999:53/udp", "true"], 0
        elif k == 2:
            args, want = ISOLATED + ["-p", "9100:8000/udp", "true"], 0
        elif k == 3:
            args, want = BRIDGE + ["-p", "9200:8000", "--timeout", "0.2", "sleep", "10"], 124
        elif k == 4:
            args, want = ISOLATED + ["sh", "-c", "exit 3"], 3
        else:
            args, want = BRIDGE + ["true"], 0
        r = env.run(args, timeout=30)
        env.sandbox_ids()
        sf.eq(r.returncode, want, f"run {i}: {args} {r}")
        kinds[want] = kinds.get(want, 0) + 1
    elapsed = time.monotonic() - t0
    sf.check(elapsed < 60, f"100 sandboxes took {elapsed:.1f}s")
    problems = env.lab.wait_net_clean()
    sf.check(not problems, f"after 100 sandboxes: {'; '.join(problems)}")
    sf.eq(env.lab.link_kinds(), {"lo": "", "uplink": "veth", nf.BRIDGE: "bridge", nf.ISOLATED_BRIDGE: "bridge"},
          "links of the host namespace after 100 sandboxes")
    sf.eq(env.lab.ipv4(nf.BRIDGE), [f"{nf.GATEWAY}/16"], "addresses of sbx0")
    sf.eq(env.lab.ipv4(nf.ISOLATED_BRIDGE), [f"{nf.ISOLATED_GATEWAY}/16"], "addresses of sbx1")
    sf.check(env.lab.nft() is not None, "the table is gone (sandbox-run never removes it)")
    sf.eq(env.lab.published(), [], "chain published after 100 sandboxes")
    sf.eq(nsfs_mounts() - ns_before, set(), "namespaces pinned by a mount after 100 sandboxes")
    sf.eq(env.lab.held_leases(), {}, "leases still held")
    problems = snap.leftovers()
    sf.check(not problems, f"after 100 sandboxes: {'; '.join(problems)}")
    print(f"# 100 networked sandboxes in {elapsed:.1f}s: exit statuses {kinds}")


@sf.timeout(90)
def test_parallel_sandboxes(env):
    """Rounds of 20 bridged sandboxes with a published port started at once, the first round in a fresh
    namespace: they race to create the bridge, build the table, lease addresses and add and remove
    their rules. All must start, get distinct addresses, reach upstream and leave no rule."""
    up = env.upstream_server(7000, 0)
    up.ready()
    for rnd in range(5):
        # A state directory each: what they share is the host namespace's network (bridge, table,
        # leases). (In one state directory, sandbox-runs starting at once race on their own: one's
        # stale clean-up can take another's directory between the creation of its lock file and its
        # flock().)
        procs = []
        for i in range(20):
            procs.append(env.popen(BRIDGE + ["-p", f"{9000 + i}:8000", PY, "-c", nf.CLIENT, "tcp", UPSTREAM_ADDR,
                                             "7000", f"par{i}", "5"], text=True,
                                   env={"SANDBOX_STATE_DIR": env.path(f"state{i}")}))
        bad, mine = [], set()
        for i, p in enumerate(procs):
            out, err = p.communicate(timeout=60)
            env.procs.remove(p)
            ans, me, _ = nf.client_result(sf.Result(p.args, p.returncode, out, err, 0))
            if p.returncode != 0 or ans != f"tcp par{i} from {HOST_ADDR}":
                bad.append((i, p.returncode, err.strip()[-200:] or ans))
            mine.add(me)
        sf.eq(bad, [], f"round {rnd}: sandboxes that failed (index, exit, stderr)")
        sf.eq(len(mine), 20, f"round {rnd}: distinct sandbox addresses: {sorted(mine)}")
        sf.eq(env.lab.published(), [], f"round {rnd}: chain published after 20 parallel sandboxes ended")


# argv: HOST PORT. For each line MSG on stdin, one TCP exchange with HOST:PORT ("tcp MSG from PEER" or
# "ERR ..."), then the sandbox's neighbour entries ("NEIGH ...").
REPEAT_CLIENT = r"""
import socket, subprocess, sys
host, port = sys.argv[1], int(sys.argv[2])
print("STARTED", flush=True)
for line in sys.stdin:
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall((line.strip() + "\n").encode())
        print(s.makefile().readline().strip() or "ERR empty", flush=True)
        s.close()
    except OSError as e:
        print("ERR", e, flush=True)
    n = subprocess.run(["ip", "-4", "neigh", "show", "dev", "eth0"], stdout=subprocess.PIPE, text=True).stdout
    print("NEIGH", " | ".join(n.strip().splitlines()), flush=True)
"""


def exchange(box, msg, timeout=10):
    """One exchange of a REPEAT_CLIENT: (its answer, its NEIGH line)."""
    start = len(box.out.lines)
    box.proc.stdin.write(f"{msg}\n".encode())
    box.proc.stdin.flush()
    neigh = box.out.wait(lambda l: l.startswith("NEIGH"), timeout, f"the exchange {msg}", start=start)
    return box.out.lines[start], neigh


def test_gateway_survives_other_sandbox_leaving(env):
    """The bridge is every bridged sandbox's gateway: its MAC must not change when sandboxes come and go.
    A bridge given no MAC of its own takes the smallest MAC of its ports; when that port's sandbox
    ends, the others' ARP entry for the gateway names a MAC that is no longer on the bridge, and they
    are cut off from everything beyond it until the entry expires (tens of seconds)."""
    up = env.upstream_server(7000, 0)
    up.ready()
    boxes, ids = [], []
    for n in range(2):
        p = env.popen(BRIDGE + ["--timeout", "60", PY, "-c", REPEAT_CLIENT, UPSTREAM_ADDR, "7000"], stdin=subprocess.PIPE)
        box = nf.Server(p, f"sandbox {n}")
        env.servers.append(box)
        box.out.wait(lambda l: l == "STARTED", 15, "STARTED")
        ids.append(next(i for i in env.sandbox_ids() if i not in ids))
        boxes.append(box)
    for n, box in enumerate(boxes):
        line, _ = exchange(box, f"first{n}")
        sf.eq(line, f"tcp first{n} from {HOST_ADDR}", f"sandbox {n}'s first exchange")
    links = env.lab.links()
    bridge_mac = links[nf.BRIDGE]["address"]
    port_macs = [links[f"sbx{i[:12]}"]["address"] for i in ids]
    if bridge_mac not in port_macs:
        return  # the bridge has a MAC of its own: nothing changes when a port goes
    lender = port_macs.index(bridge_mac)
    other = 1 - lender
    boxes[lender].stop()
    line, neigh = exchange(boxes[other], "after")
    sf.eq(line, f"tcp after from {HOST_ADDR}",
          f"sandbox {other} to upstream after sandbox {lender} ended: the bridge had taken the MAC {bridge_mac} of "
          f"sandbox {lender}'s port and now has {env.lab.links()[nf.BRIDGE]['address']}; sandbox {other}'s {neigh}")


def test_sandbox_run_kill9_stale_rule(env):
    """sandbox-run killed with SIGKILL leaves its published rule; the next sandbox-run removes it."""
    srv = env.sandbox_server(BRIDGE + ["-p", "8080:8000"], 8000, 0, "sandbox-run to be killed")
    srv.ready()
    sid = only_sandbox(env)
    srv.proc.kill()
    srv.proc.wait(10)
    sf.eq([x["comment"] for x in env.lab.published()], [f"sbx:{sid}"], "the rule left by the killed sandbox-run")
    df.wait_for(lambda: env.lab.held_leases() == {}, 5, "the killed sandbox-run's lease to be released")
    r = env.run(["true"])
    sf.eq(r.returncode, 0, f"the next sandbox-run: {r}")
    sf.eq(env.lab.published(), [], "chain published after the next sandbox-run (net_cleanup_stale)")
    r = env.run(BRIDGE + ["-p", "8080:8000", "true"])
    sf.eq(r.returncode, 0, f"publishing 8080 again: {r}")


# ==================================================================================================
# 7. clear errors, and nothing half-built left

def test_bridge_name_taken_by_non_bridge(env):
    made = nf.sh([nf.IP, "-n", env.lab.host, "link", "add", "sbx0", "type", "ifb"], check=False)
    if made.returncode == 0:
        env.extra_links, kind = ("sbx0",), "ifb"
    else:  # no ifb module: a veth pair is not a bridge either
        nf.sh([nf.IP, "-n", env.lab.host, "link", "add", "sbx0", "type", "veth", "peer", "name", "sbx0peer"])
        env.extra_links, kind = ("sbx0", "sbx0peer"), "veth"
    links_before = env.lab.link_kinds()
    r = env.run(BRIDGE + ["-p", "8080:8000", "true"])
    sf.eq(r.returncode, 125, f"--net bridge with a {kind} named sbx0: {r}")
    sf.check("sbx0" in r.stderr and "not a bridge" in r.stderr, f"the message: {r.stderr!r}")
    sf.eq(r.stderr.count("\n"), 1, f"one line of error: {r.stderr!r}")
    sf.eq(env.lab.link_kinds(), links_before, "links after the failure (a veth left?)")
    sf.eq(env.lab.held_leases(), {}, "leases held after the failure")
    sf.eq(env.lab.ipv4("sbx0"), [], "sbx0 (not ours) was given an address")
    pub = env.lab.published() if env.lab.nft() is not None else []
    sf.eq(pub, [], "published rules after the failure")
    # The other bridge is not affected.
    r = env.run(ISOLATED + ["true"])
    sf.eq(r.returncode, 0, f"--net isolated while sbx0 is not a bridge: {r}")
    nf.sh([nf.IP, "-n", env.lab.host, "link", "del", "sbx0"])
    env.extra_links = ()
    r = env.run(BRIDGE + ["true"])
    sf.eq(r.returncode, 0, f"--net bridge once sbx0 is gone: {r}")
    sf.eq(env.lab.link_kinds().get("sbx0"), "bridge", "sbx0 after the runtime made it")


def test_publish_conflict(env):
    a = env.sandbox_server(BRIDGE + ["-p", "8080:8000"], 8000, 0, "first publisher")
    addr = a.ready()
    aid = only_sandbox(env)
    ports_a = sorted(bridge_ports(env, nf.BRIDGE))
    rules_a = env.lab.published()
    leases_a = env.lab.held_leases()
    r = env.run(BRIDGE + ["-p", "8080:9000", "true"])
    sf.eq(r.returncode, 125, f"a second sandbox publishing 8080/tcp: {r}")
    sf.check("8080" in r.stderr and aid in r.stderr and "already published" in r.stderr,
             f"the message should name the port and the sandbox that has it: {r.stderr!r}")
    print(f"# conflict message: {r.stderr.strip()}")
    # Half-built: the second sandbox published 8081 before 8080 failed; all of it must go.
    r = env.run(BRIDGE + ["-p", "8081:1", "-p", "8080:2", "true"])
    sf.eq(r.returncode, 125, f"a sandbox whose second publish conflicts: {r}")
    sf.eq(sorted(bridge_ports(env, nf.BRIDGE)), ports_a, "ports of sbx0 after the failures (a veth left?)")
    sf.eq(env.lab.published(), rules_a, "chain published after the failures")
    sf.eq(env.lab.held_leases(), leases_a, "held leases after the failures")
    # The same port number over the other protocol is another port.
    r = env.run(BRIDGE + ["-p", "8080:8000/udp", "true"])
    sf.eq(r.returncode, 0, f"8080/udp while another sandbox has 8080/tcp: {r}")
    # And the first sandbox still serves.
    ans, _, rr = nf.retry(lambda: env.upstream_client("tcp", HOST_ADDR, 8080, "still", tmo=1), reached)
    sf.eq(ans, f"tcp still from {UPSTREAM_ADDR}", f"the first sandbox's published port ({rr}; its address {addr})")
    a.stop()
    sf.eq(env.lab.published(), [], "chain published after the first sandbox ended")


def add_podman_like_link(env, name="cni-podman0", cidr="10.88.0.1/16"):
    """A link of the test's host namespace with podman's default subnet on it, up, as podman leaves
    cni-podman0 once it has run a container (a dummy; a veth pair where there is no dummy driver)."""
    made = nf.sh([nf.IP, "-n", env.lab.host, "link", "add", name, "type", "dummy"], check=False)
    if made.returncode != 0:
        nf.sh([nf.IP, "-n", env.lab.host, "link", "add", name, "type", "veth", "peer", "name", "cnipeer0"])
        env.extra_links = (name, "cnipeer0")
    else:
        env.extra_links = (name,)
    nf.sh([nf.IP, "-n", env.lab.host, "addr", "add", cidr, "dev", name])
    nf.sh([nf.IP, "-n", env.lab.host, "link", "set", name, "up"])


def test_sandbox_subnet_in_use(env):
    """podman's 10.88.0.0/16 already on cni-podman0: sandboxd's bridge takes the next free subnet of the
    pool (10.88.0.0/13 in /16s) instead of failing, sandbox-run uses the same, and the isolated bridge
    takes the one after; all work."""
    add_podman_like_link(env)
    up = env.upstream_server(7000, 0)
    up.ready()
    d0 = nf.NetDaemon(env, name="d0")
    r = d0.ctl(["exec"] + BRIDGE + [PY, "-c", nf.CLIENT, "tcp", UPSTREAM_ADDR, "7000", "collide", "2"])
    ans, me, _ = nf.client_result(r)
    sf.eq(r.returncode, 0, f"sandboxctl exec --net bridge with {nf.SUBNET} on cni-podman0 ({r})")
    sandbox_addr_ok(me, ipaddress.ip_network("10.89.0.0/16"), "10.89.0.1")
    sf.eq(ans, f"tcp collide from {HOST_ADDR}", "a bridged sandbox on the next subnet to upstream")
    sf.eq(env.lab.ipv4(nf.BRIDGE), ["10.89.0.1/16"], "sbx0's address")
    # sandbox-run agrees (it reads the subnet from the bridge), and makes sbx1 on the next free one.
    ans, me, r = env.sandbox_client(BRIDGE, "tcp", UPSTREAM_ADDR, 7000, "collide-run", tmo=2)
    sandbox_addr_ok(me, ipaddress.ip_network("10.89.0.0/16"), "10.89.0.1")
    ans, me, r = env.sandbox_client(ISOLATED, "tcp", UPSTREAM_ADDR, 7000, "collide-iso", tmo=2)
    sf.eq(r.returncode, 0, f"--net isolated ({r})")
    sandbox_addr_ok(me, ipaddress.ip_network("10.90.0.0/16"), "10.90.0.1")
    sf.eq(env.lab.ipv4(nf.ISOLATED_BRIDGE), ["10.90.0.1/16"], "sbx1's address")
    sf.eq(env.lab.ipv4("cni-podman0"), ["10.88.0.1/16"], "cni-podman0 was touched")
    # A fixed subnet that is taken is still refused, naming the link.
    d = nf.NetDaemon(env, config="bridge = tbr0\nsubnet = 10.88.0.0/16\nisolated-bridge = tbr1\n")
    r = d.ctl(["exec"] + BRIDGE + ["true"])
    sf.eq(r.returncode, 125, f"a fixed subnet that cni-podman0 has: {r}")
    sf.check("10.88.0.0/16" in r.stderr and "cni-podman0" in r.stderr, f"the message: {r.stderr!r}")
    sf.eq(sorted(bridge_ports(env, "tbr0")), [], "ports of tbr0 after the failure")
    sf.eq(d.stop(), 0, "sandboxd's exit status")
    sf.eq(d0.stop(), 0, "sandboxd's exit status")


def test_subnet_pool_exhausted(env):
    """Every subnet of a configured pool in use: a clear error naming the pool, nothing half-built."""
    add_podman_like_link(env, cidr="10.66.0.1/23")
    d = nf.NetDaemon(env, config="bridge = tbr0\nisolated-bridge = tbr1\nsubnet-pool = 10.66.0.0/23\n"
                                  "subnet-pool-prefix = 24\n")
    r = d.ctl(["exec"] + BRIDGE + ["true"])
    sf.eq(r.returncode, 125, f"a bridged sandbox with the whole pool taken: {r}")
    sf.check("10.66.0.0/23" in r.stderr and "subnet-pool" in r.stderr, f"the message: {r.stderr!r}")
    sf.check(env.lab.ipv4("tbr0") in (None, []), f"tbr0 got an address: {env.lab.ipv4('tbr0')}")
    sf.eq(d.stop(), 0, "sandboxd's exit status")


# ==================================================================================================
# 8. through sandboxd

def test_daemon_bridge_and_teardown(env):
    d = nf.NetDaemon(env)
    up = env.upstream_server(7000, 7001)
    up.ready()
    for net, subnet, gw in ((BRIDGE, SUBNET, nf.GATEWAY), (ISOLATED, ISOLATED_SUBNET, nf.ISOLATED_GATEWAY)):
        for proto, port in (("tcp", 7000), ("udp", 7001)):
            r = d.ctl(["exec"] + net + [PY, "-c", nf.CLIENT, proto, UPSTREAM_ADDR, str(port), "via-daemon", "3"])
            ans, me, _ = nf.client_result(r)
            sf.eq(ans, f"{proto} via-daemon from {HOST_ADDR}", f"sandboxctl exec {net} to upstream over {proto} ({r})")
            sandbox_addr_ok(me, subnet, gw)
    kinds = env.lab.link_kinds()
    sf.check(kinds.get(nf.BRIDGE) == "bridge" and kinds.get(nf.ISOLATED_BRIDGE) == "bridge", f"links: {kinds}")
    sf.check(env.lab.nft() is not None, "no table while sandboxd runs")
    sf.eq(d.stop(), 0, "sandboxd's exit status after SIGTERM")
    sf.eq(env.lab.link_kinds(), {"lo": "", "uplink": "veth"}, "links after sandboxd stopped with no sandbox left")
    sf.eq(env.lab.nft(), None, "the table after sandboxd stopped with no sandbox left")


@sf.timeout(90)
def test_daemon_kill9_stale_published_rule(env):
    d1 = nf.NetDaemon(env, "first")
    p = d1.ctl_popen(["exec"] + BRIDGE + ["-p", "8080:8000", PY, "-c", nf.SERVER, "8000", "0"])
    srv = nf.Server(p, "sandboxd's published server")
    env.servers.append(srv)
    addr = srv.ready()
    pub = env.lab.published()
    sf.eq(len(pub), 1, f"chain published: {pub}")
    sid = pub[0]["comment"].removeprefix("sbx:")
    sf.eq((pub[0]["proto"], pub[0]["dport"], pub[0]["to_addr"], pub[0]["to_port"]), ("tcp", 8080, addr, 8000),
          "the published rule")
    ans, _, r = nf.retry(lambda: env.upstream_client("tcp", HOST_ADDR, 8080, "d1", tmo=1), reached)
    sf.eq(ans, f"tcp d1 from {UPSTREAM_ADDR}", f"upstream to the daemon's published port ({r})")
    d1.kill()
    srv.proc.wait(10)
    pub = env.lab.published()
    sf.eq([x["comment"] for x in pub], [f"sbx:{sid}"], "the rule left by the killed daemon (nothing else removes it)")
    df.wait_for(lambda: env.lab.held_leases() == {}, 5, "the killed daemon's lease to be released")
    d2 = nf.NetDaemon(env, "second")
    sf.eq(env.lab.published(), [], "chain published once the next sandboxd is ready (net_cleanup_stale)")
    df.wait_for(lambda: not bridge_ports(env, nf.BRIDGE), 5, "the dead sandbox's veth to go")
    r = d2.ctl(["exec"] + BRIDGE + ["-p", "8080:8000", "true"])
    sf.eq(r.returncode, 0, f"publishing 8080 again after the clean-up: {r}")
    sf.eq(d2.stop(), 0, "sandboxd's exit status after SIGTERM")
    sf.eq(env.lab.link_kinds(), {"lo": "", "uplink": "veth"}, "links after the second sandboxd stopped")
    sf.eq(env.lab.nft(), None, "the table after the second sandboxd stopped")


def test_daemon_config_and_exhaustion(env):
    """sandboxd's network keys: other bridge names, subnets, MTU and table; a /30 has one address for a
    sandbox, so a second one at the same time fails clearly and leaves nothing half-built."""
    cfg = ("bridge = tbr0\nsubnet = 10.77.0.0/30\nisolated-bridge = tbr1\nisolated-subnet = 10.78.0.0/24\n"
           "mtu = 1400\nnetfilter-table = sbxtest\n")
    d = nf.NetDaemon(env, config=cfg)
    p = d.ctl_popen(["exec"] + BRIDGE + ["-p", "8080:8000", PY, "-c", nf.SERVER, "8000", "0"])
    srv = nf.Server(p, "the only sandbox of the /30")
    env.servers.append(srv)
    addr = srv.ready()
    sf.eq(addr, "10.77.0.2", "the only address of 10.77.0.0/30 for a sandbox")
    kinds = env.lab.link_kinds()
    sf.eq(kinds.get("tbr0"), "bridge", f"the configured bridge: {kinds}")
    sf.check(nf.BRIDGE not in kinds, f"the default bridge was created too: {kinds}")
    sf.eq(env.lab.ipv4("tbr0"), ["10.77.0.1/30"], "addresses of tbr0")
    sf.eq(env.lab.links()["tbr0"].get("mtu"), 1400, "the bridge's MTU")
    sf.eq(env.lab.nft(), None, "the default table exists besides the configured one")
    pub = env.lab.published("sbxtest")
    sf.eq([(x["dport"], x["to_addr"], x["to_port"]) for x in pub], [(8080, addr, 8000)], "published, table sbxtest")
    ports = sorted(bridge_ports(env, "tbr0"))
    r = d.ctl(["exec"] + BRIDGE + ["-p", "8081:8000", "true"])
    sf.eq(r.returncode, 125, f"a second sandbox on a full /30: {r}")
    sf.check("tbr0" in r.stderr and "in use" in r.stderr, f"the message: {r.stderr!r}")
    sf.eq(sorted(bridge_ports(env, "tbr0")), ports, "ports of tbr0 after the failure")
    sf.eq(env.lab.published("sbxtest"), pub, "published after the failure")
    r = d.ctl(["exec"] + ISOLATED + ["cat", "/sys/class/net/eth0/mtu"])
    sf.eq((r.returncode, r.stdout.strip()), (0, "1400"), f"eth0's MTU inside (isolated, on tbr1) {r}")
    ans, _, rr = nf.retry(lambda: env.upstream_client("tcp", HOST_ADDR, 8080, "cfg", tmo=1), reached)
    sf.eq(ans, f"tcp cfg from {UPSTREAM_ADDR}", f"the published port with the configured table ({rr})")
    srv.stop()
    sf.eq(d.stop(), 0, "sandboxd's exit status after SIGTERM")
    sf.eq(env.lab.link_kinds(), {"lo": "", "uplink": "veth"}, "links after sandboxd stopped")
    sf.eq(env.lab.nft("sbxtest"), None, "table sbxtest after sandboxd stopped")


def test_daemon_keeps_other_runtimes_network(env):
    """A sandbox of sandbox-run with a published port lives across a sandboxd start and stop: its rule is
    not stale (its lease is held), and the bridges and the table stay while it holds an address."""
    srv = env.sandbox_server(BRIDGE + ["-p", "8080:8000"], 8000, 0, "sandbox-run's published server")
    srv.ready()
    rules = env.lab.published()
    sf.eq(len(rules), 1, f"chain published: {rules}")
    d = nf.NetDaemon(env)
    sf.eq(env.lab.published(), rules, "chain published after sandboxd started (a live sandbox's rule was removed)")
    r = d.ctl(["exec"] + BRIDGE + ["true"])
    sf.eq(r.returncode, 0, f"sandboxctl exec --net bridge: {r}")
    sf.eq(d.stop(), 0, "sandboxd's exit status after SIGTERM")
    kinds = env.lab.link_kinds()
    sf.eq(kinds.get(nf.BRIDGE), "bridge", f"sbx0 after sandboxd stopped while sandbox-run's sandbox lives: {kinds}")
    sf.eq(env.lab.published(), rules, "chain published after sandboxd stopped")
    ans, _, rr = nf.retry(lambda: env.upstream_client("tcp", HOST_ADDR, 8080, "alive", tmo=1), reached)
    sf.eq(ans, f"tcp alive from {UPSTREAM_ADDR}", f"the published port after sandboxd stopped ({rr})")
    srv.stop()
    sf.eq(env.lab.published(), [], "chain published after sandbox-run's sandbox ended")


if __name__ == "__main__":
    nf.main()
