/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * See network.h. Addresses are leased with an flock() on a lock file per address, in a directory
 * per network namespace and bridge (/run/sandbox-net/<netns inode>/<bridge>/): the kernel releases a
 * lease when its holder dies, so an address is never handed out twice while its sandbox lives, also
 * across daemon restarts, and never leaks. A bridge is made (and its subnet chosen) under an flock()
 * of /run/sandbox-net/<netns inode>/.setup, so that runtimes starting at the same time agree on it.
 *
 * A bridge's subnet is whatever address it has: the first runtime that makes it takes the fixed
 * subnet of its configuration or the first subnet of the pool that no other link of the namespace
 * has (an address or a route in it), so a podman or docker network on 10.88.0.0/16 only moves us
 * to the next one; everybody after that reads it from the bridge.
 *
 * Published host ports are reserved the way docker-proxy and podman's conmon hold them: a socket of
 * ours bound to the port (IPv4 and IPv6, never listening or read) for the sandbox's life. The bind
 * fails when any host socket has the port, which is how a port in use is refused; and while we hold
 * it nothing else on the host can take it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "fs.h"
#include "macro.h"
#include "network.h"
#include "nft.h"
#include "resolv.h"
#include "rtnl.h"

#define LEASE_DIR "/run/sandbox-net"
#define TAKEN_MAX 4096          /* routes and addresses of the namespace considered for the pool */

_Static_assert(NET_EGRESS_MAX <= NETFILTER_CIDRS_MAX, "egress lists must fit the netfilter module's");
_Static_assert(RESOLV_SERVERS_WRITTEN <= NETFILTER_DNS_MAX, "name servers must fit the netfilter module's");

struct NetLease {
        int lock_fd;
        struct in_addr addr;
        char sandbox_id[32];
        char host_if[16];
        char table[32];
        int port_fds[2 * SPEC_PUBLISH_MAX]; /* the reserved host ports (IPv4 and IPv6 each) */
        size_t n_port_fds;
};

void net_config_init(NetConfig *c) {
        *c = (NetConfig) { .n_pool = 1, .pool_prefixlen = 16, .mtu = 1500 };
        strcpy(c->bridge, "sbx0");
        strcpy(c->isolated_bridge, "sbx1");
        strcpy(c->table, "sandbox");
        inet_pton(AF_INET, "10.88.0.0", &c->pool[0].addr);
        c->pool[0].prefixlen = 13; /* 10.88.0.0 - 10.95.255.255: eight /16 */
        strcpy(c->resolv_conf, "/etc/resolv.conf");
        strcpy(c->resolv_conf_upstream, "/run/systemd/resolve/resolv.conf");
}

static uint32_t mask_of(unsigned prefixlen) {
        return prefixlen == 0 ? 0 : UINT32_MAX << (32 - prefixlen);
}

/* Do A/PA and B/PB (host byte order) share an address? */
static bool overlap(uint32_t a, unsigned pa, uint32_t b, unsigned pb) {
        uint32_t m = mask_of(MIN(pa, pb));
        return (a & m) == (b & m);
}

int net_cidr_parse(const char *s, NetCidr *ret) {
        char buf[INET_ADDRSTRLEN + 4];
        const char *slash = strchr(s, '/');
        struct in_addr a;
        unsigned p = 32;

        if (strlen(s) >= sizeof buf)
                return -EINVAL;
        strcpy(buf, s);
        if (slash) {
                char *end = NULL;
                const char *digits = slash + 1;
                buf[slash - s] = '\0';
                if (!*digits || strlen(digits) > 2 || strspn(digits, "0123456789") != strlen(digits))
                        return -EINVAL;
                p = (unsigned) strtoul(digits, &end, 10);
                if (p > 32)
                        return -EINVAL;
        }
        if (inet_pton(AF_INET, buf, &a) != 1 || (ntohl(a.s_addr) & ~mask_of(p)))
                return -EINVAL;
        *ret = (NetCidr) { a, p };
        return 0;
}

static bool path_valid(const char *p) {
        return p[0] == '/' && strnlen(p, NET_PATH_MAX) < NET_PATH_MAX;
}

int net_config_validate(const NetConfig *c, const char **ret_error) {
        const char *e = NULL;
        uint32_t a = ntohl(c->subnet.s_addr), b = ntohl(c->isolated_subnet.s_addr);

        if (!rtnl_ifname_is_valid(c->bridge) || !rtnl_ifname_is_valid(c->isolated_bridge) ||
            streq(c->bridge, c->isolated_bridge))
                e = "the bridge names must be valid interface names (1-15 characters), and differ";
        else if ((c->prefixlen != 0 && (c->prefixlen < 8 || c->prefixlen > 30)) ||
                 (c->isolated_prefixlen != 0 && (c->isolated_prefixlen < 8 || c->isolated_prefixlen > 30)))
                e = "a sandbox subnet must be from /8 to /30";
        else if ((a & ~mask_of(c->prefixlen)) || (b & ~mask_of(c->isolated_prefixlen)))
                e = "a sandbox subnet must be given by its network address (like 10.88.0.0/16)";
        else if (c->prefixlen != 0 && c->isolated_prefixlen != 0 && overlap(a, c->prefixlen, b, c->isolated_prefixlen))
                e = "the two sandbox subnets overlap";
        else if (c->pool_prefixlen < 8 || c->pool_prefixlen > 30)
                e = "subnet-pool-prefix must be from 8 to 30";
        else if (c->n_pool == 0 && (c->prefixlen == 0 || c->isolated_prefixlen == 0))
                e = "the subnet pool is empty, and a bridge has no fixed subnet";
        else if (c->n_pool > NET_POOL_MAX || c->n_egress_allow > NET_EGRESS_MAX || c->n_egress_deny > NET_EGRESS_MAX)
                e = "too many entries in subnet-pool, egress-allow or egress-deny";
        else if (c->mtu < 576 || c->mtu > 65535)
                e = "the MTU must be from 576 to 65535";
        else if (!*c->table || strlen(c->table) >= sizeof c->table)
                e = "the netfilter table name is invalid";
        else if (!path_valid(c->resolv_conf) || !path_valid(c->resolv_conf_upstream))
                e = "resolv-conf and resolv-conf-upstream must be absolute paths";
        uint64_t subnets = 0;
        for (size_t i = 0; !e && i < c->n_pool; i++) {
                const NetCidr *p = &c->pool[i];
                if (p->prefixlen < 8 || p->prefixlen > c->pool_prefixlen)
                        e = "a subnet-pool entry must be from /8 up to subnet-pool-prefix";
                else if (ntohl(p->addr.s_addr) & ~mask_of(p->prefixlen))
                        e = "a subnet-pool entry must be given by its network address";
                else if ((subnets += UINT64_C(1) << (c->pool_prefixlen - p->prefixlen)) > NET_POOL_SUBNETS_MAX)
                        e = "the subnet pool may be cut into at most 65536 subnets (see subnet-pool-prefix)";
        }
        for (size_t i = 0; !e && i < c->n_egress_allow + c->n_egress_deny; i++) {
                const NetCidr *p = i < c->n_egress_allow ? &c->egress_allow[i] : &c->egress_deny[i - c->n_egress_allow];
                if (p->prefixlen > 32 || (ntohl(p->addr.s_addr) & ~mask_of(p->prefixlen)))
                        e = "an egress-allow or egress-deny entry must be a network address with its prefix length";
        }
        if (e) {
                if (ret_error)
                        *ret_error = e;
                return -EINVAL;
        }
        return 0;
}

struct in_addr net_lease_address(const NetLease *l) {
        return l->addr;
}

/* "File exists" and, when the kernel said more, its words. */
static const char *kernel_says(const Rtnl *nl, int r, char *buf, size_t size) {
        const char *k = nl ? rtnl_last_error(nl) : NULL;
        snprintf(buf, size, "%s%s%s%s", strerror(-r), k && *k ? " (kernel: " : "", k && *k ? k : "", k && *k ? ")" : "");
        return buf;
}

static const char *cidr_str(struct in_addr a, unsigned prefixlen, char *buf, size_t size) {
        char s[INET_ADDRSTRLEN] = "?";
        (void) inet_ntop(AF_INET, &a, s, sizeof s);
        snprintf(buf, size, "%s/%u", s, prefixlen);
        return buf;
}

/* ---- the name servers ---- */

static int read_resolv_conf(const char *path, ResolvConf *ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        r = read_file(path, RESOLV_CONF_SIZE_MAX, &text, &size);
        if (r < 0)
                return r;
        resolv_conf_parse(text, size, ret);
        return 0;
}

int net_resolv_conf(const NetConfig *c, SpecNet mode, char *buf, size_t size, struct in_addr dns[static 3],
                    size_t *ret_n_dns) {
        ResolvConf host = {}, upstream = {}, out = {};
        char comment[2 * NET_PATH_MAX + 160];
        bool have_upstream;
        int r;

        r = read_resolv_conf(c->resolv_conf, &host);
        if (r < 0) {
                snprintf(comment, sizeof comment, "No name servers: cannot read %s: %s", c->resolv_conf, strerror(-r));
                *ret_n_dns = 0;
                return resolv_conf_format(&out, comment, buf, size);
        }
        have_upstream = mode != SPEC_NET_HOST && read_resolv_conf(c->resolv_conf_upstream, &upstream) >= 0;
        resolv_conf_for_sandbox(&host, have_upstream ? &upstream : NULL, mode != SPEC_NET_HOST, &out);
        if (mode == SPEC_NET_HOST)
                snprintf(comment, sizeof comment, "The host's name servers (from %s).", c->resolv_conf);
        else if (out.n_servers == 0)
                snprintf(comment, sizeof comment,
                         "No name servers: %s names no IPv4 one besides loopback ones%s%s%s.", c->resolv_conf,
                         have_upstream ? " and neither does " : ", and there is no ",
                         c->resolv_conf_upstream, have_upstream ? "" : " to replace them");
        else
                snprintf(comment, sizeof comment,
                         "The host's name servers for this sandbox (from %s; loopback ones are replaced by those of "
                         "%s).", c->resolv_conf, c->resolv_conf_upstream);
        *ret_n_dns = resolv_conf_ipv4_servers(&out, dns);
        return resolv_conf_format(&out, comment, buf, size);
}

/* ---- the bridge and its subnet ---- */

/* /run/sandbox-net/<inode of this network namespace>, created if missing. */
static int netns_dir(void) {
        char path[128];
        struct stat ns;

        if (stat("/proc/self/ns/net", &ns) < 0)
                return -errno;
        if (mkdir(LEASE_DIR, 0700) < 0 && errno != EEXIST)
                return -errno;
        snprintf(path, sizeof path, "%s/%llu", LEASE_DIR, (unsigned long long) ns.st_ino);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        return RET_NERRNO(open(path, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY));
}

/* The bridge set-up lock of this network namespace (released by closing it). */
static int setup_lock(void) {
        _cleanup_close_ int dir = netns_dir(), fd = -EBADF;

        if (dir < 0)
                return dir;
        fd = openat(dir, ".setup", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return -errno;
        return TAKE_FD(fd);
}

typedef struct Taken {
        uint32_t net;           /* host byte order */
        unsigned prefixlen;
        char ifname[IFNAMSIZ];
} Taken;

typedef struct TakenList {
        Taken *items;
        size_t n, allocated;
} TakenList;

static void taken_list_done(TakenList *l) {
        free(l->items);
        *l = (TakenList) {};
}

/* Append one (beyond TAKEN_MAX they are ignored: a namespace with that many routes is not one a
 * sandbox bridge is made in). */
static int taken_add(TakenList *l, uint32_t net, unsigned prefixlen, const char *ifname) {
        if (l->n >= TAKEN_MAX)
                return 0;
        if (l->n == l->allocated) {
                size_t a = MAX(l->allocated * 2, (size_t) 32);
                Taken *t = reallocarray(l->items, a, sizeof *t);
                if (!t)
                        return -ENOMEM;
                l->items = t;
                l->allocated = a;
        }
        l->items[l->n] = (Taken) { net, prefixlen };
        snprintf(l->items[l->n].ifname, sizeof l->items[l->n].ifname, "%s", ifname);
        l->n++;
        return 0;
}

/* The subnets other links of this namespace have: their routes (but default routes) and addresses,
 * everything but what is on BRIDGE. */
static int taken_subnets(const char *bridge, TakenList *ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
        struct ifaddrs *ifa = NULL;
        char line[256];
        int r = 0;

        if (!f)
                return -errno;
        if (fgets(line, sizeof line, f)) /* the header */
                while (r >= 0 && fgets(line, sizeof line, f)) {
                        char ifname[32];
                        unsigned dest, gw, flags, refcnt, use, metric, mask;
                        if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifname, &dest, &gw, &flags, &refcnt, &use, &metric,
                                   &mask) != 8)
                                continue;
                        if (streq(ifname, bridge) || mask == 0 || strlen(ifname) >= IFNAMSIZ)
                                continue;
                        /* The kernel prints them in network byte order. */
                        r = taken_add(ret, ntohl(dest), (unsigned) __builtin_popcount(mask), ifname);
                }
        /* Addresses too: a link that is down has no route yet, and will have one when it comes up. */
        if (r >= 0 && getifaddrs(&ifa) < 0)
                r = -errno;
        for (struct ifaddrs *i = ifa; r >= 0 && i; i = i->ifa_next) {
                uint32_t a, m;
                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask || !i->ifa_name ||
                    streq(i->ifa_name, bridge) || strlen(i->ifa_name) >= IFNAMSIZ)
                        continue;
                a = ntohl(((const struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr);
                m = ntohl(((const struct sockaddr_in *) i->ifa_netmask)->sin_addr.s_addr);
                r = taken_add(ret, a & m, (unsigned) __builtin_popcount(m), i->ifa_name);
        }
        if (ifa)
                freeifaddrs(ifa);
        return r;
}

static const Taken *subnet_taken(const TakenList *l, uint32_t net, unsigned prefixlen) {
        for (size_t i = 0; i < l->n; i++)
                if (overlap(l->items[i].net, l->items[i].prefixlen, net, prefixlen))
                        return &l->items[i];
        return NULL;
}

/* The first IPv4 address of link NAME and its prefix length; 0 if it has none. */
static int link_address(const char *name, struct in_addr *ret_addr, unsigned *ret_prefixlen) {
        struct ifaddrs *ifa = NULL;
        int found = 0;

        if (getifaddrs(&ifa) < 0)
                return -errno;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && i->ifa_netmask && i->ifa_name &&
                    streq(i->ifa_name, name)) {
                        *ret_addr = ((const struct sockaddr_in *) i->ifa_addr)->sin_addr;
                        *ret_prefixlen = (unsigned) __builtin_popcount(
                                ((const struct sockaddr_in *) i->ifa_netmask)->sin_addr.s_addr);
                        found = 1;
                        break;
                }
        freeifaddrs(ifa);
        return found;
}

/* A per-interface sysctl of our own bridge: /proc/sys/net/ipv{4,6}/conf/IFNAME/KEY = 1. -ENOENT
 * when the kernel has no such setting (IPv6 disabled). */
static int bridge_sysctl(const char *family, const char *ifname, const char *key) {
        _cleanup_close_ int fd = -EBADF;
        char path[128], c = 0;

        snprintf(path, sizeof path, "/proc/sys/net/%s/conf/%s/%s", family, ifname, key);
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (read(fd, &c, 1) == 1 && c == '1')
                return 0;
        return pwrite(fd, "1", 1, 0) == 1 ? 0 : -errno;
}

/* The bridge NAME, up, with the gateway address (the first of its subnet), route_localnet (published
 * ports on 127.0.0.1: the host's loopback source must be routable out of it before it is
 * masqueraded) and no IPv6 (sandboxes have none, and the host must not be reachable through the
 * bridge's link-local address). Its subnet: the one it has, else FIXED (FIXED_PREFIXLEN > 0) or the
 * first free one of the pool from the START-th on. */
static int ensure_bridge(Rtnl *nl, const NetConfig *c, const char *name, struct in_addr fixed, unsigned fixed_prefixlen,
                         unsigned start, struct in_addr *ret_subnet, unsigned *ret_prefixlen, char *errbuf,
                         size_t errsize) {
        _cleanup_close_ int lock = -EBADF;
        _cleanup_(taken_list_done) TakenList taken = {};
        char kind[32] = "", why[256], s1[32], s2[32];
        struct in_addr have = {}, subnet = {}, gw;
        unsigned have_prefixlen = 0, prefixlen = 0;
        const Taken *t;
        int r;

        lock = setup_lock();
        if (lock < 0)
                return errbuf_set(errbuf, errsize, lock, "Cannot lock %s for the set-up of '%s': %s",
                                  LEASE_DIR, name, strerror(-lock));
        r = taken_subnets(name, &taken);
        if (r < 0)
                return errbuf_set(errbuf, errsize, r,
                                  "Cannot read the routes and addresses of this host: %s", strerror(-r));

        r = rtnl_link_kind(nl, name, kind, sizeof kind);
        if (r == -ENODEV)
                r = 0;
        else if (r < 0)
                return errbuf_set(errbuf, errsize, r, "Cannot look up the bridge '%s': %s", name,
                                  kernel_says(nl, r, why, sizeof why));
        else if (!streq(kind, "bridge"))
                return errbuf_set(errbuf, errsize, -EEXIST,
                                  "The interface '%s' exists and is not a bridge (it is a%s %s): choose another "
                                  "bridge name", name, *kind ? "" : "n", *kind ? kind : "plain device");
        else {
                r = link_address(name, &have, &have_prefixlen);
                if (r < 0)
                        return errbuf_set(errbuf, errsize, r, "Cannot read the address of '%s': %s", name,
                                          strerror(-r));
        }

        if (r > 0) {
                /* Made before: its address says its subnet. */
                prefixlen = have_prefixlen;
                subnet.s_addr = htonl(ntohl(have.s_addr) & mask_of(prefixlen));
                if (prefixlen < 8 || prefixlen > 30 || ntohl(have.s_addr) != ntohl(subnet.s_addr) + 1)
                        return errbuf_set(errbuf, errsize, -EEXIST,
                                          "The bridge '%s' has the address %s, not the first address of a /8 "
                                          "to /30: delete the bridge (ip link delete %s) to have it made anew", name,
                                          cidr_str(have, have_prefixlen, s1, sizeof s1), name);
                if (fixed_prefixlen > 0 && (subnet.s_addr != fixed.s_addr || prefixlen != fixed_prefixlen))
                        return errbuf_set(errbuf, errsize, -EEXIST,
                                          "The bridge '%s' has the subnet %s, the configuration says %s: delete "
                                          "the bridge (ip link delete %s) to change it", name,
                                          cidr_str(subnet, prefixlen, s1, sizeof s1),
                                          cidr_str(fixed, fixed_prefixlen, s2, sizeof s2), name);
                t = subnet_taken(&taken, ntohl(subnet.s_addr), prefixlen);
                if (t)
                        return errbuf_set(errbuf, errsize, -EADDRINUSE,
                                          "The sandbox subnet %s of '%s' is also in use on '%s': choose "
                                          "another subnet", cidr_str(subnet, prefixlen, s1, sizeof s1), name,
                                          t->ifname);
        } else if (fixed_prefixlen > 0) {
                subnet = fixed;
                prefixlen = fixed_prefixlen;
                t = subnet_taken(&taken, ntohl(subnet.s_addr), prefixlen);
                if (t)
                        return errbuf_set(errbuf, errsize, -EADDRINUSE,
                                          "The sandbox subnet %s is already in use on '%s': choose another "
                                          "subnet", cidr_str(subnet, prefixlen, s1, sizeof s1), t->ifname);
        } else {
                /* The first subnet of the pool that no other link has, in the pool's order cut into
                 * subnets, from the START-th on (wrapping around): the bridged sandboxes' bridge starts
                 * at the first, the isolated ones' at the second, so that by default (and when
                 * nothing else is there) they have 10.88.0.0/16 and 10.89.0.0/16. */
                uint64_t total = 0;
                for (size_t i = 0; i < c->n_pool; i++)
                        total += UINT64_C(1) << (c->pool_prefixlen - c->pool[i].prefixlen);
                for (uint64_t k = 0; k < total && prefixlen == 0; k++) {
                        uint64_t idx = (k + start) % total;
                        size_t i = 0;
                        while (idx >= (UINT64_C(1) << (c->pool_prefixlen - c->pool[i].prefixlen))) {
                                idx -= UINT64_C(1) << (c->pool_prefixlen - c->pool[i].prefixlen);
                                i++;
                        }
                        uint32_t net = ntohl(c->pool[i].addr.s_addr) + ((uint32_t) idx << (32 - c->pool_prefixlen));
                        if (!subnet_taken(&taken, net, c->pool_prefixlen)) {
                                subnet.s_addr = htonl(net);
                                prefixlen = c->pool_prefixlen;
                        }
                }
                if (prefixlen == 0) {
                        char pool[NET_POOL_MAX * 20] = "";
                        for (size_t i = 0; i < c->n_pool; i++) {
                                size_t l = strlen(pool);
                                snprintf(pool + l, sizeof pool - l, "%s%s", i ? " " : "",
                                         cidr_str(c->pool[i].addr, c->pool[i].prefixlen, s1, sizeof s1));
                        }
                        return errbuf_set(errbuf, errsize, -EADDRNOTAVAIL,
                                          "No free subnet for the bridge '%s': every /%u of the pool (%s) is "
                                          "in use on this host; add another range to subnet-pool", name,
                                          c->pool_prefixlen, pool);
                }
        }

        if (!*kind) {
                r = rtnl_bridge_create(nl, name, c->mtu);
                if (r < 0 && r != -EEXIST)
                        return errbuf_set(errbuf, errsize, r, "Cannot create the bridge '%s': %s", name,
                                          kernel_says(nl, r, why, sizeof why));
        }
        gw.s_addr = htonl(ntohl(subnet.s_addr) + 1);
        r = rtnl_addr_add(nl, name, gw, prefixlen);
        if (r < 0 && r != -EEXIST)
                return errbuf_set(errbuf, errsize, r, "Cannot give the bridge '%s' its address: %s", name,
                                  kernel_says(nl, r, why, sizeof why));
        r = bridge_sysctl("ipv4", name, "route_localnet");
        if (r < 0)
                return errbuf_set(errbuf, errsize, r, "Cannot set route_localnet on '%s': %s", name,
                                  strerror(-r));
        r = bridge_sysctl("ipv6", name, "disable_ipv6");
        if (r < 0 && r != -ENOENT)
                return errbuf_set(errbuf, errsize, r, "Cannot disable IPv6 on '%s': %s", name, strerror(-r));
        r = rtnl_link_set_up(nl, name);
        if (r < 0)
                return errbuf_set(errbuf, errsize, r, "Cannot bring the bridge '%s' up: %s", name,
                                  kernel_says(nl, r, why, sizeof why));
        *ret_subnet = subnet;
        *ret_prefixlen = prefixlen;
        return 0;
}

/* Routing between the bridge and the outside. This is per network namespace. */
static int enable_forwarding(char *errbuf, size_t errsize) {
        _cleanup_close_ int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
        char c = 0;

        if (fd < 0 || read(fd, &c, 1) != 1)
                return errbuf_set(errbuf, errsize, -errno, "Cannot read /proc/sys/net/ipv4/ip_forward: %m");
        if (c == '1')
                return 0;
        if (pwrite(fd, "1", 1, 0) != 1)
                return errbuf_set(errbuf, errsize, -errno, "Cannot enable IPv4 forwarding: %m");
        return 0;
}

static int lease_address(const char *bridge, struct in_addr subnet, unsigned prefixlen, NetLease *l) {
        _cleanup_close_ int ns_dir = -EBADF, dir = -EBADF;
        uint32_t base = ntohl(subnet.s_addr), n = (UINT32_C(1) << (32 - prefixlen)) - 3, start = 0;

        /* Leases are per network namespace: the same bridge name can exist in many. */
        ns_dir = netns_dir();
        if (ns_dir < 0)
                return ns_dir;
        if (mkdirat(ns_dir, bridge, 0700) < 0 && errno != EEXIST)
                return -errno;
        dir = openat(ns_dir, bridge, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (dir < 0)
                return -errno;
        (void) getrandom(&start, sizeof start, GRND_NONBLOCK);
        /* Hosts .2 to the last but one: .0 is the network, .1 the gateway, the last the broadcast. */
        for (uint32_t i = 0; i < n; i++) {
                struct in_addr a = { .s_addr = htonl(base + 2 + (start + i) % n) };
                char name[INET_ADDRSTRLEN];
                int fd;

                inet_ntop(AF_INET, &a, name, sizeof name);
                fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        /* Whose it is, for net_cleanup_stale(): a locked lease names a live sandbox. */
                        if (ftruncate(fd, 0) < 0 || pwrite(fd, l->sandbox_id, strlen(l->sandbox_id), 0) < 0) {
                                close(fd);
                                return -errno;
                        }
                        l->lock_fd = fd;
                        l->addr = a;
                        return 0;
                }
                close(fd);
        }
        return -EADDRNOTAVAIL;
}

/* What the chains of a bridge were last built from by this process. */
typedef struct RulesBuilt {
        char table[32];
        char bridge[16];
        struct in_addr subnet;
        unsigned prefixlen;
        NetCidr allow[NET_EGRESS_MAX], deny[NET_EGRESS_MAX];
        size_t n_allow, n_deny;
        struct in_addr dns[RESOLV_SERVERS_WRITTEN];
        size_t n_dns;
} RulesBuilt;

static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;
static RulesBuilt rules_built[NETFILTER_BRIDGES_MAX]; /* under rules_lock */

static int ensure_netfilter(const NetConfig *c, const char *bridge, struct in_addr subnet, unsigned prefixlen,
                            const struct in_addr *dns, size_t n_dns, char *errbuf, size_t errsize) {
        _cleanup_free_ char *e = NULL;
        const char *other = streq(bridge, c->bridge) ? c->isolated_bridge : c->bridge;
        NetfilterBridge bridges[] = {
                { .ifname = bridge, .subnet = subnet, .prefixlen = prefixlen },
                { .ifname = other }, /* only named: our chains keep traffic from going there */
        };
        NetfilterCidr allow[NET_EGRESS_MAX], deny[NET_EGRESS_MAX];
        NetfilterConfig nf = {
                .table = c->table, .bridges = bridges, .n_bridges = ELEMENTSOF(bridges),
                .egress_allow = allow, .n_egress_allow = c->n_egress_allow,
                .egress_deny = deny, .n_egress_deny = c->n_egress_deny,
                .dns = dns, .n_dns = MIN(n_dns, (size_t) RESOLV_SERVERS_WRITTEN),
                .keep_existing = !c->replace_rules,
        };
        RulesBuilt want = { .subnet = subnet, .prefixlen = prefixlen, .n_allow = c->n_egress_allow,
                            .n_deny = c->n_egress_deny, .n_dns = nf.n_dns };
        size_t slot = SIZE_MAX;
        int r;

        for (size_t i = 0; i < c->n_egress_allow; i++)
                allow[i] = (NetfilterCidr) { c->egress_allow[i].addr, c->egress_allow[i].prefixlen };
        for (size_t i = 0; i < c->n_egress_deny; i++)
                deny[i] = (NetfilterCidr) { c->egress_deny[i].addr, c->egress_deny[i].prefixlen };
        snprintf(want.table, sizeof want.table, "%s", c->table);
        snprintf(want.bridge, sizeof want.bridge, "%s", bridge);
        memcpy(want.allow, c->egress_allow, sizeof want.allow);
        memcpy(want.deny, c->egress_deny, sizeof want.deny);
        memcpy(want.dns, dns, nf.n_dns * sizeof *dns);

        /* Once per process for the same settings: the chains of the bridge are rebuilt atomically
         * (published ports are kept), so a table someone else removed comes back on our next start,
         * and new name servers or another subnet are taken up when they change. */
        pthread_mutex_lock(&rules_lock);
        for (size_t i = 0; i < ELEMENTSOF(rules_built); i++) {
                if (memcmp(&rules_built[i], &want, sizeof want) == 0) {
                        pthread_mutex_unlock(&rules_lock);
                        return 0;
                }
                if (slot == SIZE_MAX && (!rules_built[i].table[0] || (streq(rules_built[i].table, want.table) &&
                                                                       streq(rules_built[i].bridge, want.bridge))))
                        slot = i;
        }
        r = netfilter_setup(&nf, &e);
        if (r >= 0 && slot != SIZE_MAX)
                rules_built[slot] = want;
        pthread_mutex_unlock(&rules_lock);
        if (r < 0)
                return errbuf_set(errbuf, errsize, r, "Cannot set up the sandbox rules (table '%s'): %s",
                                  c->table, e ?: strerror(-r));
        return 0;
}

static const char *proto_str(uint32_t proto) {
        return proto == IPPROTO_UDP ? "udp" : "tcp";
}

typedef struct PortOwner {
        int proto;
        uint16_t port;
        char id[64];
} PortOwner;

static int find_port_owner(const NetfilterPublished *p, void *userdata) {
        PortOwner *o = userdata;
        if (p->proto == o->proto && p->host_port == o->port && !o->id[0])
                snprintf(o->id, sizeof o->id, "%s", p->sandbox_id[0] ? p->sandbox_id : "?");
        return 0;
}

/* Hold host port PORT/PROTO: a socket bound to it, for IPv4 and (where the host has IPv6) for IPv6,
 * without SO_REUSEADDR (so that nobody else can bind it, listening or not) and never listening or
 * read (the DNAT rules take every connection before it could reach us). A small receive buffer:
 * datagrams that do reach a UDP one (IPv6, which we do not forward) queue there until the end. */
static int reserve_port(uint32_t proto, uint16_t port, int fds[static 2]) {
        int type = (proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, small = 1, one = 1;
        struct sockaddr_in sa4 = { .sin_family = AF_INET, .sin_port = htons(port) };
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
        _cleanup_close_ int fd4 = -EBADF, fd6 = -EBADF;

        fd4 = socket(AF_INET, type, 0);
        if (fd4 < 0)
                return -errno;
        (void) setsockopt(fd4, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        if (bind(fd4, (struct sockaddr *) &sa4, sizeof sa4) < 0)
                return -errno;
        fd6 = socket(AF_INET6, type, 0);
        if (fd6 < 0 && errno != EAFNOSUPPORT)
                return -errno;
        if (fd6 >= 0) {
                (void) setsockopt(fd6, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
                if (setsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
                        return -errno;
                if (bind(fd6, (struct sockaddr *) &sa6, sizeof sa6) < 0 && errno != EADDRNOTAVAIL)
                        return -errno;
        }
        fds[0] = TAKE_FD(fd4);
        fds[1] = TAKE_FD(fd6);
        return 0;
}

static int reserve_ports(const NetConfig *c, const SpecPublish *publish, size_t n_publish, NetLease *l, char *errbuf,
                         size_t errsize) {
        for (size_t i = 0; i < n_publish; i++) {
                const SpecPublish *p = &publish[i];
                int fds[2] = { -EBADF, -EBADF }, r;

                for (size_t j = 0; j < i; j++)
                        if (publish[j].proto == p->proto && publish[j].host_port == p->host_port)
                                return errbuf_set(errbuf, errsize, -EINVAL,
                                                  "Cannot publish host port %u/%s twice", p->host_port,
                                                  proto_str(p->proto));
                r = reserve_port(p->proto, (uint16_t) p->host_port, fds);
                if (r == -EADDRINUSE) {
                        /* Ours (a live sandbox's rule), or a socket of the host's? */
                        PortOwner o = { .proto = (int) p->proto, .port = (uint16_t) p->host_port };
                        (void) netfilter_list_published(c->table, find_port_owner, &o);
                        if (o.id[0])
                                return errbuf_set(errbuf, errsize, r,
                                                  "Cannot publish host port %u/%s: it is already published "
                                                  "by sandbox '%s'", p->host_port, proto_str(p->proto), o.id);
                        return errbuf_set(errbuf, errsize, r,
                                          "Cannot publish host port %u/%s: a socket on the host already "
                                          "uses it (a server listens on it, or a connection holds it)",
                                          p->host_port, proto_str(p->proto));
                }
                if (r < 0)
                        return errbuf_set(errbuf, errsize, r, "Cannot reserve host port %u/%s: %s",
                                          p->host_port, proto_str(p->proto), strerror(-r));
                l->port_fds[l->n_port_fds++] = fds[0];
                l->port_fds[l->n_port_fds++] = fds[1];
        }
        return 0;
}

static NetLease *lease_free(NetLease *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_port_fds; i++)
                safe_close(l->port_fds[i]);
        safe_close(l->lock_fd);
        free(l);
        return NULL;
}

int net_attach(const NetConfig *c, SpecNet mode, const char *sandbox_id, pid_t pid, const SpecPublish *publish,
               size_t n_publish, const struct in_addr *dns, size_t n_dns, NetLease **ret, char *errbuf,
               size_t errsize) {
        Rtnl *nl = NULL, *inner = NULL;
        NetLease *l = NULL;
        _cleanup_close_ int netns = -EBADF;
        const bool isolated = mode == SPEC_NET_ISOLATED;
        const char *bridge = isolated ? c->isolated_bridge : c->bridge;
        struct in_addr subnet, gw;
        unsigned prefixlen;
        char path[64], why[256];
        bool link_made = false;
        int r;

        if (n_publish > SPEC_PUBLISH_MAX)
                return errbuf_set(errbuf, errsize, -E2BIG, "Too many published ports (at most %d)",
                                  SPEC_PUBLISH_MAX);
        l = calloc(1, sizeof *l);
        if (!l)
                return errbuf_set(errbuf, errsize, -ENOMEM, "Out of memory");
        l->lock_fd = -EBADF;
        snprintf(l->sandbox_id, sizeof l->sandbox_id, "%s", sandbox_id);
        snprintf(l->host_if, sizeof l->host_if, "sbx%.12s", sandbox_id);
        snprintf(l->table, sizeof l->table, "%s", c->table);

        /* First the host ports: a port that is not free is refused before anything is built. */
        r = reserve_ports(c, publish, n_publish, l, errbuf, errsize);
        if (r < 0)
                goto fail;
        r = rtnl_open(&nl);
        if (r < 0) {
                errbuf_set(errbuf, errsize, r, "Cannot open a netlink socket: %s", strerror(-r));
                goto fail;
        }
        r = ensure_bridge(nl, c, bridge, isolated ? c->isolated_subnet : c->subnet,
                          isolated ? c->isolated_prefixlen : c->prefixlen, isolated ? 1 : 0, &subnet, &prefixlen,
                          errbuf, errsize);
        if (r < 0)
                goto fail;
        gw.s_addr = htonl(ntohl(subnet.s_addr) + 1);
        r = enable_forwarding(errbuf, errsize);
        if (r < 0)
                goto fail;
        r = ensure_netfilter(c, bridge, subnet, prefixlen, dns, n_dns, errbuf, errsize);
        if (r < 0)
                goto fail;
        r = lease_address(bridge, subnet, prefixlen, l);
        if (r < 0) {
                errbuf_set(errbuf, errsize, r, "Cannot lease an address on '%s': %s", bridge,
                           r == -EADDRNOTAVAIL ? "every address of the subnet is in use" : strerror(-r));
                goto fail;
        }
        snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
        netns = open(path, O_RDONLY | O_CLOEXEC);
        if (netns < 0) {
                r = -errno;
                errbuf_set(errbuf, errsize, r, "Cannot open the sandbox's network namespace: %m");
                goto fail;
        }
        /* The peer is born inside the sandbox as eth0: nothing half-made stays on the host. */
        r = rtnl_veth_create(nl, l->host_if, "eth0", c->mtu, netns);
        if (r < 0) {
                errbuf_set(errbuf, errsize, r, "Cannot create the veth pair '%s': %s", l->host_if,
                           kernel_says(nl, r, why, sizeof why));
                goto fail;
        }
        link_made = true;
        r = rtnl_link_set_master(nl, l->host_if, bridge);
        if (r >= 0 && isolated)
                r = rtnl_bridge_port_set_isolated(nl, l->host_if, true);
        if (r >= 0)
                r = rtnl_link_set_up(nl, l->host_if);
        if (r < 0) {
                errbuf_set(errbuf, errsize, r, "Cannot put '%s' on the bridge '%s': %s", l->host_if, bridge,
                           kernel_says(nl, r, why, sizeof why));
                goto fail;
        }

        r = rtnl_open_in_netns(netns, &inner);
        if (r < 0) {
                errbuf_set(errbuf, errsize, r, "Cannot open a netlink socket in the sandbox: %s",
                           strerror(-r));
                goto fail;
        }
        r = rtnl_addr_add(inner, "eth0", l->addr, prefixlen);
        if (r >= 0)
                r = rtnl_link_set_up(inner, "eth0");
        if (r >= 0)
                r = rtnl_route_add_default(inner, gw, "eth0");
        if (r < 0) {
                errbuf_set(errbuf, errsize, r, "Cannot configure eth0 in the sandbox: %s",
                           kernel_says(inner, r, why, sizeof why));
                goto fail;
        }

        for (size_t i = 0; i < n_publish; i++) {
                _cleanup_free_ char *e = NULL;
                r = netfilter_publish_add(c->table, sandbox_id, (int) publish[i].proto, (uint16_t) publish[i].host_port,
                                          l->addr, (uint16_t) publish[i].port, &e);
                if (r < 0) {
                        errbuf_set(errbuf, errsize, r, "Cannot publish host port %u/%s: %s",
                                   publish[i].host_port, proto_str(publish[i].proto), e ?: strerror(-r));
                        goto fail;
                }
        }
        rtnl_close(inner);
        rtnl_close(nl);
        *ret = l;
        return 0;

fail:
        if (n_publish > 0)
                (void) netfilter_publish_remove(c->table, sandbox_id, NULL);
        if (link_made && nl)
                (void) rtnl_link_delete(nl, l->host_if);
        rtnl_close(inner);
        rtnl_close(nl);
        lease_free(l);
        return r < 0 ? r : -EINVAL;
}

NetLease *net_detach(NetLease *l) {
        Rtnl *nl = NULL;

        if (!l)
                return NULL;
        (void) netfilter_publish_remove(l->table, l->sandbox_id, NULL);
        /* Normally gone already: a veth pair dies with the sandbox's network namespace. */
        if (rtnl_open(&nl) >= 0) {
                (void) rtnl_link_delete(nl, l->host_if);
                rtnl_close(nl);
        }
        /* The host ports last: nothing forwards them any more. */
        return lease_free(l);
}

size_t net_lease_fds(const NetLease *l, int *fds, size_t max) {
        size_t n = 0;

        if (!l)
                return 0;
        if (l->lock_fd >= 0 && n < max)
                fds[n++] = l->lock_fd;
        for (size_t i = 0; i < l->n_port_fds && n < max; i++)
                if (l->port_fds[i] >= 0)
                        fds[n++] = l->port_fds[i];
        return n;
}

const char *net_lease_table(const NetLease *l) {
        return l->table;
}

NetLease *net_lease_forget(NetLease *l) {
        return lease_free(l);
}

NetLease *net_lease_restore(const char *table, const char *sandbox_id, struct in_addr address) {
        NetLease *l = calloc(1, sizeof *l);

        if (!l)
                return NULL;
        l->lock_fd = -EBADF;
        l->addr = address;
        snprintf(l->sandbox_id, sizeof l->sandbox_id, "%s", sandbox_id);
        snprintf(l->host_if, sizeof l->host_if, "sbx%.12s", sandbox_id);
        snprintf(l->table, sizeof l->table, "%s", table);
        return l;
}

/* Is a lease on either bridge (in this network namespace) held by a live process: any, or with
 * SANDBOX_ID given, one of that sandbox's? 1 or 0; -errno when the namespace cannot be told. */
static int lease_held(const NetConfig *c, const char *sandbox_id) {
        const char *bridges[] = { c->bridge, c->isolated_bridge };
        char path[256];
        struct stat ns;

        if (stat("/proc/self/ns/net", &ns) < 0)
                return -errno;
        for (size_t b = 0; b < ELEMENTSOF(bridges); b++) {
                _cleanup_closedir_ DIR *d = NULL;
                struct dirent *de;

                snprintf(path, sizeof path, "%s/%llu/%s", LEASE_DIR, (unsigned long long) ns.st_ino, bridges[b]);
                d = opendir(path);
                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        _cleanup_close_ int fd = -EBADF;
                        char owner[64] = "";

                        if (de->d_name[0] == '.')
                                continue;
                        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        if (sandbox_id && (pread(fd, owner, sizeof owner - 1, 0) <= 0 || !streq(owner, sandbox_id)))
                                continue;
                        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                                return 1;
                }
        }
        return 0;
}

typedef struct StaleIds {
        const NetConfig *config;
        char ids[256][32];
        size_t n;
} StaleIds;

static int collect_stale(const char *sandbox_id, void *userdata) {
        StaleIds *s = userdata;
        /* When in doubt (the namespace cannot be told), keep. */
        if (s->n < ELEMENTSOF(s->ids) && lease_held(s->config, sandbox_id) == 0)
                snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", sandbox_id);
        return 0;
}

int net_cleanup_stale(const NetConfig *c) {
        _cleanup_free_ StaleIds *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        s->config = c;
        /* Rules name their sandbox; a sandbox whose lease nobody holds is gone. */
        do {
                s->n = 0;
                r = netfilter_list_sandboxes(c->table, collect_stale, s);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                for (size_t i = 0; i < s->n; i++) {
                        r = netfilter_publish_remove(c->table, s->ids[i], NULL);
                        if (r < 0)
                                return r;
                }
        } while (s->n == ELEMENTSOF(s->ids));
        return 0;
}

int net_teardown(const NetConfig *c) {
        Rtnl *nl = NULL;
        int r, k;

        r = netfilter_teardown(c->table, NULL);
        if (rtnl_open(&nl) >= 0) {
                k = rtnl_link_delete(nl, c->bridge);
                if (k < 0 && k != -ENODEV && r >= 0)
                        r = k;
                k = rtnl_link_delete(nl, c->isolated_bridge);
                if (k < 0 && k != -ENODEV && r >= 0)
                        r = k;
                rtnl_close(nl);
        }
        return r;
}

int net_teardown_if_unused(const NetConfig *c) {
        Rtnl *nl = NULL;
        int idx, r;

        r = lease_held(c, NULL);
        if (r != 0)
                return r < 0 ? r : 0; /* a live sandbox holds an address */

        /* Was anything ever set up here? No bridge: nothing to remove. */
        if (rtnl_open(&nl) < 0)
                return 0;
        r = rtnl_link_index(nl, c->bridge, &idx);
        if (r < 0)
                r = rtnl_link_index(nl, c->isolated_bridge, &idx);
        rtnl_close(nl);
        if (r < 0)
                return 0;
        return net_teardown(c);
}
