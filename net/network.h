/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bridged networking for sandboxes, like Docker's default network: a bridge with the gateway
 * address, NAT to the outside and published ports in a netfilter table of our own, and per sandbox
 * a veth pair (the host end on the bridge, "eth0" inside) with an address leased from the subnet.
 * Isolated sandboxes get a bridge of their own whose ports are all isolated, and no route to the
 * other bridge. Everything goes over netlink (rtnl.c, netfilter.c); nothing runs `ip` or `nft`.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "spec.h"

typedef struct NetConfig {
        char bridge[16];                /* bridged sandboxes (default sbx0, 10.88.0.0/16) */
        struct in_addr subnet;
        unsigned prefixlen;
        char isolated_bridge[16];       /* isolated ones (default sbx1, 10.89.0.0/16) */
        struct in_addr isolated_subnet;
        unsigned isolated_prefixlen;
        uint32_t mtu;                   /* default 1500 */
        char table[32];                 /* our netfilter table (default "sandbox") */
} NetConfig;

void net_config_init(NetConfig *c);
/* Check names, subnets (/8 to /30, the network address given), and that the two subnets differ. */
int net_config_validate(const NetConfig *c, const char **ret_error);

typedef struct NetLease NetLease;

/* Give the sandbox whose init is PID its network: the bridge and table are made when missing, an
 * address is leased, the veth pair made and configured, the published ports added. All or nothing:
 * on failure what was built is removed, and *ERRBUF says what failed. */
int net_attach(const NetConfig *c, SpecNet mode, const char *sandbox_id, pid_t pid, const SpecPublish *publish,
               size_t n_publish, NetLease **ret_lease, char *errbuf, size_t errsize);

/* The sandbox's address (for logs and tests). */
struct in_addr net_lease_address(const NetLease *l);

/* Remove the sandbox's published ports and host link, and release its address. */
NetLease *net_detach(NetLease *l);

/* Remove published ports whose sandbox is gone (no live process holds its address lease), after a
 * crash. Whichever runtime made them (sandbox-run or sandboxd, any state directory). */
int net_cleanup_stale(const NetConfig *c);

/* Remove the bridges and the table. */
int net_teardown(const NetConfig *c);
/* The same, unless a live sandbox (of any runtime in this network namespace) still holds an address. */
int net_teardown_if_unused(const NetConfig *c);
