/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bridged networking for sandboxes, like Docker's default network: a bridge with the gateway
 * address, NAT to the outside and published ports in a netfilter table of our own, and per sandbox
 * a veth pair (the host end on the bridge, "eth0" inside) with an address leased from the subnet.
 * Isolated sandboxes get a bridge of their own whose ports are all isolated, and no route to the
 * other bridge. Sandboxes reach neither the host itself nor link-local addresses (nft.h has the
 * rules). Everything goes over netlink (rtnl.c, nft.c); nothing runs `ip` or `nft`. The only
 * sysctls written are ip_forward of the namespace and route_localnet and disable_ipv6 of our own
 * bridges.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "spec.h"

#define NET_POOL_MAX 8          /* subnet-pool entries */
#define NET_POOL_SUBNETS_MAX 65536 /* subnets the whole pool may be cut into */
#define NET_EGRESS_MAX 16       /* egress-allow and egress-deny entries, each */
#define NET_PATH_MAX 256

typedef struct NetCidr {
        struct in_addr addr;    /* the network address: host bits are 0 */
        unsigned prefixlen;     /* 0..32 */
} NetCidr;

typedef struct NetConfig {
        char bridge[16];                /* bridged sandboxes (default sbx0) */
        struct in_addr subnet;          /* prefixlen 0 (the default): a free one from the pool */
        unsigned prefixlen;
        char isolated_bridge[16];       /* isolated ones (default sbx1) */
        struct in_addr isolated_subnet; /* isolated_prefixlen 0 (the default): from the pool */
        unsigned isolated_prefixlen;
        NetCidr pool[NET_POOL_MAX];     /* where a bridge's subnet comes from (default 10.88.0.0/13) */
        size_t n_pool;
        unsigned pool_prefixlen;        /* the size of a bridge's subnet from it (default 16) */
        NetCidr egress_allow[NET_EGRESS_MAX]; /* reachable from sandboxes even where a deny says no */
        size_t n_egress_allow;
        NetCidr egress_deny[NET_EGRESS_MAX];  /* not reachable (besides the host and link-local) */
        size_t n_egress_deny;
        uint32_t mtu;                   /* default 1500 */
        char table[32];                 /* our netfilter table (default "sandbox") */
        char resolv_conf[NET_PATH_MAX]; /* the host's resolvers (default /etc/resolv.conf) */
        char resolv_conf_upstream[NET_PATH_MAX]; /* in place of loopback ones (default
                                                  * /run/systemd/resolve/resolv.conf) */
        bool replace_rules;             /* this configuration rebuilds its bridges' rules (sandboxd);
                                         * false (the default, sandbox-run): the rules a bridge has
                                         * are kept, so a configured daemon's are never overridden */
} NetConfig;

void net_config_init(NetConfig *c);
/* Check names, subnets (/8 to /30, the network address given), that two fixed subnets differ, the
 * pool, the egress lists and the paths. */
int net_config_validate(const NetConfig *c, const char **ret_error);

/* "10.88.0.0/16" or "10.1.2.3" (/32) into *RET; -EINVAL if it is not an IPv4 network address with
 * its prefix length (host bits must be 0). */
int net_cidr_parse(const char *s, NetCidr *ret);

/* The /etc/resolv.conf of a sandbox with network MODE (see resolv.h): its text into BUF and the IPv4
 * name servers it names (at most 3) into DNS. Files that cannot be read give a text without name
 * servers that says why. -ENOBUFS if BUF is too small. */
int net_resolv_conf(const NetConfig *c, SpecNet mode, char *buf, size_t size, struct in_addr dns[static 3],
                    size_t *ret_n_dns);

typedef struct NetLease NetLease;

/* Give the sandbox whose init is PID its network: each published host port is reserved (a socket
 * bound to it here, held until net_detach(): refused if a host socket has the port), the bridge and
 * table are made when missing (the bridge's subnet from the pool, unless fixed), an address is
 * leased, the veth pair made and configured, the published ports added. DNS: the sandbox's name
 * servers (from net_resolv_conf()), which stay reachable on port 53. All or nothing: on failure what
 * was built is removed, and *ERRBUF says what failed. */
int net_attach(const NetConfig *c, SpecNet mode, const char *sandbox_id, pid_t pid, const SpecPublish *publish,
               size_t n_publish, const struct in_addr *dns, size_t n_dns, NetLease **ret_lease, char *errbuf,
               size_t errsize);

/* The sandbox's address (for logs and tests). */
struct in_addr net_lease_address(const NetLease *l);

/* Remove the sandbox's published ports and host link, and release its address. */
NetLease *net_detach(NetLease *l);

/* The descriptors that hold the lease (the address's lock, the reserved host ports): at most MAX into FDS
 * (not dups: the lease keeps them). Returns how many there are. For a process that must hold the lease
 * when its maker is gone (runtime/detach.c). */
size_t net_lease_fds(const NetLease *l, int *fds, size_t max);
/* A lease that another process holds (a detached sandbox's keeper): enough to net_detach() it later
 * (its published ports in TABLE, its host link), holding nothing. */
NetLease *net_lease_restore(const char *table, const char *sandbox_id, struct in_addr address);
/* The lease's table (for a record to restore it from). */
const char *net_lease_table(const NetLease *l);
/* Free L without touching what it holds on the host: closes our descriptors only (a detached sandbox's keeper
 * holds the lease with its own). Accepts NULL, returns NULL. */
NetLease *net_lease_forget(NetLease *l);

/* Remove published ports whose sandbox is gone (no live process holds its address lease), after a
 * crash. Whichever runtime made them (sandbox-run or sandboxd, any state directory). */
int net_cleanup_stale(const NetConfig *c);

/* Remove the bridges and the table. */
int net_teardown(const NetConfig *c);
/* The same, unless a live sandbox (of any runtime in this network namespace) still holds an address. */
int net_teardown_if_unused(const NetConfig *c);
