/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * See network.h. Addresses are leased with an flock() on a lock file per address, in a directory
 * per network namespace and bridge (/run/sandbox-net/<netns inode>/<bridge>/): the kernel releases a
 * lease when its holder dies, so an address is never handed out twice while its sandbox lives, also
 * across daemon restarts, and never leaks.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "nft.h"
#include "network.h"
#include "rtnl.h"

#define LEASE_DIR "/run/sandbox-net"

struct NetLease {
        int lock_fd;
        struct in_addr addr;
        char sandbox_id[32];
        char host_if[16];
        char table[32];
};

void net_config_init(NetConfig *c) {
        *c = (NetConfig) { .prefixlen = 16, .isolated_prefixlen = 16, .mtu = 1500 };
        strcpy(c->bridge, "sbx0");
        strcpy(c->isolated_bridge, "sbx1");
        strcpy(c->table, "sandbox");
        inet_pton(AF_INET, "10.88.0.0", &c->subnet);
        inet_pton(AF_INET, "10.89.0.0", &c->isolated_subnet);
}

static uint32_t mask_of(unsigned prefixlen) {
        return prefixlen == 0 ? 0 : UINT32_MAX << (32 - prefixlen);
}

int net_config_validate(const NetConfig *c, const char **ret_error) {
        const char *e = NULL;
        uint32_t a = ntohl(c->subnet.s_addr), b = ntohl(c->isolated_subnet.s_addr);
        uint32_t m = mask_of(MIN(c->prefixlen, c->isolated_prefixlen));

        if (!rtnl_ifname_is_valid(c->bridge) || !rtnl_ifname_is_valid(c->isolated_bridge) ||
            streq(c->bridge, c->isolated_bridge))
                e = "the bridge names must be valid interface names (1-15 characters), and differ";
        else if (c->prefixlen < 8 || c->prefixlen > 30 || c->isolated_prefixlen < 8 || c->isolated_prefixlen > 30)
                e = "a sandbox subnet must be from /8 to /30";
        else if ((a & ~mask_of(c->prefixlen)) || (b & ~mask_of(c->isolated_prefixlen)))
                e = "a sandbox subnet must be given by its network address (like 10.88.0.0/16)";
        else if ((a & m) == (b & m))
                e = "the two sandbox subnets overlap";
        else if (c->mtu < 576 || c->mtu > 65535)
                e = "the MTU must be from 576 to 65535";
        else if (!*c->table || strlen(c->table) >= sizeof c->table)
                e = "the netfilter table name is invalid";
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

__attribute__((format(printf, 3, 4)))
static int fail(char *errbuf, size_t errsize, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errsize, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* "File exists" and, when the kernel said more, its words. */
static const char *kernel_says(const Rtnl *nl, int r, char *buf, size_t size) {
        const char *k = nl ? rtnl_last_error(nl) : NULL;
        snprintf(buf, size, "%s%s%s%s", strerror(-r), k && *k ? " (kernel: " : "", k && *k ? k : "", k && *k ? ")" : "");
        return buf;
}

/* Another interface already routes (part of) the subnet: two links would claim it and the
 * sandboxes would reach nothing. /proc/net/route lists this namespace's main table. */
static int subnet_in_use(const char *bridge, struct in_addr subnet, unsigned prefixlen, char *ret_ifname, size_t size) {
        _cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
        char line[256];

        if (!f)
                return -errno;
        if (!fgets(line, sizeof line, f)) /* the header */
                return 0;
        while (fgets(line, sizeof line, f)) {
                char ifname[32];
                unsigned dest, gw, flags, refcnt, use, metric, mask;
                if (sscanf(line, "%31s %x %x %x %u %u %u %x", ifname, &dest, &gw, &flags, &refcnt, &use, &metric,
                           &mask) != 8)
                        continue;
                if (streq(ifname, bridge) || mask == 0) /* ours, or a default route */
                        continue;
                /* The kernel prints them in network byte order. */
                uint32_t m = ntohl(mask) & mask_of(prefixlen);
                if ((ntohl(dest) & m) == (ntohl(subnet.s_addr) & m)) {
                        snprintf(ret_ifname, size, "%s", ifname);
                        return 1;
                }
        }
        return 0;
}

/* The bridge with the gateway address, up. */
static int ensure_bridge(Rtnl *nl, const char *name, struct in_addr subnet, unsigned prefixlen, uint32_t mtu,
                         char *errbuf, size_t errsize) {
        struct in_addr gw = { .s_addr = htonl(ntohl(subnet.s_addr) + 1) };
        char kind[32] = "", why[256], other[32];
        int r;

        if (subnet_in_use(name, subnet, prefixlen, other, sizeof other) > 0) {
                char a[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &subnet, a, sizeof a);
                return fail(errbuf, errsize, "The sandbox subnet %s/%u is already in use on '%s': choose another "
                            "subnet", a, prefixlen, other), -EADDRINUSE;
        }
        r = rtnl_link_kind(nl, name, kind, sizeof kind);
        if (r == -ENODEV) {
                r = rtnl_bridge_create(nl, name, mtu);
                if (r < 0 && r != -EEXIST)
                        return fail(errbuf, errsize, "Cannot create the bridge '%s': %s", name, kernel_says(nl, r, why, sizeof why)),
                               r;
        } else if (r < 0)
                return fail(errbuf, errsize, "Cannot look up the bridge '%s': %s", name, kernel_says(nl, r, why, sizeof why)), r;
        else if (!streq(kind, "bridge"))
                return fail(errbuf, errsize, "The interface '%s' exists and is not a bridge (it is a%s %s): choose another "
                            "bridge name", name, *kind ? "" : "n", *kind ? kind : "plain device"), -EEXIST;
        r = rtnl_addr_add(nl, name, gw, prefixlen);
        if (r < 0 && r != -EEXIST)
                return fail(errbuf, errsize, "Cannot give the bridge '%s' its address: %s", name, kernel_says(nl, r, why, sizeof why)),
                       r;
        r = rtnl_link_set_up(nl, name);
        if (r < 0)
                return fail(errbuf, errsize, "Cannot bring the bridge '%s' up: %s", name, kernel_says(nl, r, why, sizeof why)), r;
        return 0;
}

/* Routing between the bridge and the outside. This is per network namespace. */
static int enable_forwarding(char *errbuf, size_t errsize) {
        _cleanup_close_ int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
        char c = 0;

        if (fd < 0 || read(fd, &c, 1) != 1)
                return fail(errbuf, errsize, "Cannot read /proc/sys/net/ipv4/ip_forward: %m"), -errno;
        if (c == '1')
                return 0;
        if (pwrite(fd, "1", 1, 0) != 1)
                return fail(errbuf, errsize, "Cannot enable IPv4 forwarding: %m"), -errno;
        return 0;
}

static int lease_address(const char *bridge, struct in_addr subnet, unsigned prefixlen, NetLease *l) {
        _cleanup_close_ int dir = -EBADF;
        char path[256];
        struct stat ns;
        uint32_t base = ntohl(subnet.s_addr), n = (UINT32_C(1) << (32 - prefixlen)) - 3, start = 0;

        /* Leases are per network namespace: the same bridge name can exist in many. */
        if (stat("/proc/self/ns/net", &ns) < 0)
                return -errno;
        snprintf(path, sizeof path, "%s", LEASE_DIR);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        snprintf(path, sizeof path, "%s/%llu", LEASE_DIR, (unsigned long long) ns.st_ino);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        snprintf(path, sizeof path, "%s/%llu/%s", LEASE_DIR, (unsigned long long) ns.st_ino, bridge);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        dir = open(path, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
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

static int ensure_netfilter(const NetConfig *c, char *errbuf, size_t errsize) {
        static char done_for[32];
        _cleanup_free_ char *e = NULL;
        NetfilterBridge bridges[] = {
                { .ifname = c->bridge, .subnet = c->subnet, .prefixlen = c->prefixlen },
                { .ifname = c->isolated_bridge, .subnet = c->isolated_subnet, .prefixlen = c->isolated_prefixlen },
        };
        NetfilterConfig nf = { .table = c->table, .bridges = bridges, .n_bridges = ELEMENTSOF(bridges) };
        int r;

        /* Once per process and table: the base chains are rebuilt atomically (published ports are
         * kept), so a table someone else removed comes back on our next start. */
        if (streq(done_for, c->table))
                return 0;
        r = netfilter_setup(&nf, &e);
        if (r < 0)
                return fail(errbuf, errsize, "Cannot set up the NAT rules (table '%s'): %s", c->table, e ?: strerror(-r)), r;
        snprintf(done_for, sizeof done_for, "%s", c->table);
        return 0;
}

int net_attach(const NetConfig *c, SpecNet mode, const char *sandbox_id, pid_t pid, const SpecPublish *publish,
               size_t n_publish, NetLease **ret, char *errbuf, size_t errsize) {
        Rtnl *nl = NULL, *inner = NULL;
        NetLease *l = NULL;
        _cleanup_close_ int netns = -EBADF;
        const bool isolated = mode == SPEC_NET_ISOLATED;
        const char *bridge = isolated ? c->isolated_bridge : c->bridge;
        struct in_addr subnet = isolated ? c->isolated_subnet : c->subnet, gw;
        unsigned prefixlen = isolated ? c->isolated_prefixlen : c->prefixlen;
        char path[64], why[256];
        bool link_made = false;
        int r;

        gw.s_addr = htonl(ntohl(subnet.s_addr) + 1);
        l = calloc(1, sizeof *l);
        if (!l)
                return fail(errbuf, errsize, "Out of memory"), -ENOMEM;
        l->lock_fd = -EBADF;
        snprintf(l->sandbox_id, sizeof l->sandbox_id, "%s", sandbox_id);
        snprintf(l->host_if, sizeof l->host_if, "sbx%.12s", sandbox_id);
        snprintf(l->table, sizeof l->table, "%s", c->table);

        r = rtnl_open(&nl);
        if (r < 0) {
                fail(errbuf, errsize, "Cannot open a netlink socket: %s", strerror(-r));
                goto fail;
        }
        r = ensure_bridge(nl, bridge, subnet, prefixlen, c->mtu, errbuf, errsize);
        if (r < 0)
                goto fail;
        r = enable_forwarding(errbuf, errsize);
        if (r < 0)
                goto fail;
        r = ensure_netfilter(c, errbuf, errsize);
        if (r < 0)
                goto fail;
        r = lease_address(bridge, subnet, prefixlen, l);
        if (r < 0) {
                fail(errbuf, errsize, "Cannot lease an address on '%s': %s", bridge,
                     r == -EADDRNOTAVAIL ? "every address of the subnet is in use" : strerror(-r));
                goto fail;
        }

        snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
        netns = open(path, O_RDONLY | O_CLOEXEC);
        if (netns < 0) {
                r = -errno;
                fail(errbuf, errsize, "Cannot open the sandbox's network namespace: %m");
                goto fail;
        }
        /* The peer is born inside the sandbox as eth0: nothing half-made stays on the host. */
        r = rtnl_veth_create(nl, l->host_if, "eth0", c->mtu, netns);
        if (r < 0) {
                fail(errbuf, errsize, "Cannot create the veth pair '%s': %s", l->host_if, kernel_says(nl, r, why, sizeof why));
                goto fail;
        }
        link_made = true;
        r = rtnl_link_set_master(nl, l->host_if, bridge);
        if (r >= 0 && isolated)
                r = rtnl_bridge_port_set_isolated(nl, l->host_if, true);
        if (r >= 0)
                r = rtnl_link_set_up(nl, l->host_if);
        if (r < 0) {
                fail(errbuf, errsize, "Cannot put '%s' on the bridge '%s': %s", l->host_if, bridge,
                     kernel_says(nl, r, why, sizeof why));
                goto fail;
        }

        r = rtnl_open_in_netns(netns, &inner);
        if (r < 0) {
                fail(errbuf, errsize, "Cannot open a netlink socket in the sandbox: %s", strerror(-r));
                goto fail;
        }
        r = rtnl_addr_add(inner, "eth0", l->addr, prefixlen);
        if (r >= 0)
                r = rtnl_link_set_up(inner, "eth0");
        if (r >= 0)
                r = rtnl_route_add_default(inner, gw, "eth0");
        if (r < 0) {
                fail(errbuf, errsize, "Cannot configure eth0 in the sandbox: %s", kernel_says(inner, r, why, sizeof why));
                goto fail;
        }

        for (size_t i = 0; i < n_publish; i++) {
                _cleanup_free_ char *e = NULL;
                r = netfilter_publish_add(c->table, sandbox_id, (int) publish[i].proto, (uint16_t) publish[i].host_port,
                                          l->addr, (uint16_t) publish[i].port, &e);
                if (r < 0) {
                        fail(errbuf, errsize, "Cannot publish port %u/%s: %s", publish[i].host_port,
                             publish[i].proto == IPPROTO_UDP ? "udp" : "tcp", e ?: strerror(-r));
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
        safe_close(l->lock_fd);
        free(l);
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
        safe_close(l->lock_fd);
        free(l);
        return NULL;
}

/* Is SANDBOX_ID's lease (on either bridge, in this network namespace) held by a live process? */
static bool lease_is_live(const NetConfig *c, const char *sandbox_id) {
        const char *bridges[] = { c->bridge, c->isolated_bridge };
        char path[256];
        struct stat ns;

        if (stat("/proc/self/ns/net", &ns) < 0)
                return true; /* when in doubt, keep */
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
                        ssize_t n;

                        if (de->d_name[0] == '.')
                                continue;
                        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        n = pread(fd, owner, sizeof owner - 1, 0);
                        if (n <= 0 || !streq(owner, sandbox_id))
                                continue;
                        if (flock(fd, LOCK_SH | LOCK_NB) < 0)
                                return true; /* held */
                }
        }
        return false;
}

typedef struct StaleIds {
        const NetConfig *config;
        char ids[256][32];
        size_t n;
} StaleIds;

static int collect_stale(const char *sandbox_id, void *userdata) {
        StaleIds *s = userdata;
        if (s->n < ELEMENTSOF(s->ids) && !lease_is_live(s->config, sandbox_id))
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
                        if (de->d_name[0] == '.')
                                continue;
                        fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0)
                                return 0; /* a live sandbox holds an address */
                }
        }
        {
                /* Was anything ever set up here? No bridge: nothing to remove. */
                Rtnl *nl = NULL;
                int idx, r;
                if (rtnl_open(&nl) < 0)
                        return 0;
                r = rtnl_link_index(nl, c->bridge, &idx);
                if (r < 0)
                        r = rtnl_link_index(nl, c->isolated_bridge, &idx);
                rtnl_close(nl);
                if (r < 0)
                        return 0;
        }
        return net_teardown(c);
}
