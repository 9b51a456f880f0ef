/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox NAT and forwarding rules, in one nf_tables table of our own (family ip), spoken to
 * over NETLINK_NETFILTER with libnftnl + libmnl. Every change is one NFNL batch, so it is applied
 * completely or not at all; `nft` and `iptables` are never run, and no other table is ever read or
 * written. Runs in the runtime (parent side), as root (CAP_NET_ADMIN) in the network namespace that
 * holds the sandbox bridges; it does not set ip_forward, create bridges or load modules itself.
 * Does not log above debug level: failures come back as -errno plus, where the function takes one,
 * a message in *ret_error for the caller to log.
 *
 * The table, as `nft list table ip <table>` shows it (one bridge "br-x" on 10.77.0.0/24):
 *
 *   chain published { tcp dport 8080 dnat to 10.77.0.2:80 comment "sbx:<sandbox id>" ... }
 *   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *           ip saddr 10.77.0.0/24 oifname != "br-x" masquerade }
 *   chain prerouting { type nat hook prerouting priority dstnat; policy accept;
 *           fib daddr type local jump published }
 *   chain output { type nat hook output priority -100; policy accept;
 *           ip daddr != 127.0.0.0/8 fib daddr type local jump published }
 *   chain forward { type filter hook forward priority filter; policy accept;
 *           iifname "br-x" oifname "br-y" drop (each ordered pair of different bridges)
 *           ct state established,related accept; iifname "br-x" accept; ct status dnat accept }
 *
 * Every rule carries a comment. The forward chain drops nothing but traffic between two different
 * sandbox bridges: its policy is accept, other tables keep deciding about everything else.
 *
 * ret_error, where present, follows sd_bus_error's convention rather than the ret_* one: it may be
 * NULL, it is written only on failure (a malloc'd message the caller frees), never on success.
 */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define NETFILTER_BRIDGES_MAX 8      /* 8 bridges: 56 isolation rules, ~90 rules in one batch */
#define NETFILTER_TABLE_NAME_MAX 64  /* [A-Za-z][A-Za-z0-9_-]* */
#define NETFILTER_SANDBOX_ID_MAX 64  /* [A-Za-z0-9_.-]+ */
#define NETFILTER_PUBLISHED_MAX 4096 /* rules in chain "published" */

typedef struct NetfilterBridge {
        const char *ifname;     /* the bridge's interface name, [A-Za-z0-9_.-]{1,15} */
        struct in_addr subnet;  /* the sandboxes' subnet on it; host bits are ignored */
        unsigned prefixlen;     /* 1..32 */
} NetfilterBridge;

typedef struct NetfilterConfig {
        const char *table;      /* e.g. "sandbox" */
        const NetfilterBridge *bridges;
        size_t n_bridges;       /* 0..NETFILTER_BRIDGES_MAX */
} NetfilterConfig;

/* One DNAT rule of chain "published", as read back from the kernel. */
typedef struct NetfilterPublished {
        const char *sandbox_id; /* from the rule's "sbx:<id>" comment; "" for a rule not made by us */
        int proto;              /* IPPROTO_TCP or IPPROTO_UDP; 0 when not recognised */
        uint16_t host_port;     /* host byte order; 0 when not recognised */
        struct in_addr addr;    /* DNAT target */
        uint16_t port;          /* host byte order */
        uint64_t handle;        /* the kernel's rule handle */
} NetfilterPublished;

/* In one batch: create table TABLE if missing; (re)create the chains postrouting, prerouting, output
 * and forward with exactly the rules above for C's bridges (the old base chains and their rules go,
 * so calling it twice, or with other bridges, leaves no duplicates); create chain "published" if
 * missing and KEEP its rules, so that published ports survive a restart of the runtime (use
 * netfilter_list_sandboxes() + netfilter_publish_remove() to drop those of sandboxes that are gone).
 * -EINVAL for an invalid configuration (with a message). */
int netfilter_setup(const NetfilterConfig *c, char **ret_error);

/* Append "PROTO dport HOST_PORT dnat to ADDR:PORT comment "sbx:SANDBOX_ID"" to chain "published".
 * PROTO is IPPROTO_TCP or IPPROTO_UDP, ports are in host byte order and non-zero. Publishing the
 * same mapping for the same sandbox again is a no-op (0); HOST_PORT already published for PROTO by
 * another mapping is -EADDRINUSE; a missing table or chain is -ENOENT. */
int netfilter_publish_add(const char *table, const char *sandbox_id, int proto, uint16_t host_port,
                          struct in_addr addr, uint16_t port, char **ret_error);

/* Delete, in one batch, every rule of chain "published" whose comment is exactly "sbx:SANDBOX_ID".
 * Returns the number of rules deleted (0 when none, or when the table or chain does not exist). */
int netfilter_publish_remove(const char *table, const char *sandbox_id, char **ret_error);

/* Call CB for each rule of chain "published", in chain order. The entry is valid during the call.
 * A negative return from CB stops the walk and is returned. Returns the number of rules otherwise
 * (0 when the table or chain does not exist). CB may call the other functions of this module. */
int netfilter_list_published(const char *table, int (*cb)(const NetfilterPublished *p, void *userdata),
                             void *userdata);

/* Call CB once for each distinct sandbox id named by a rule of chain "published" (for clean-up
 * after a crash: the caller removes the ids whose sandbox is gone). A negative return from CB stops
 * the walk and is returned. Returns the number of ids otherwise. */
int netfilter_list_sandboxes(const char *table, int (*cb)(const char *sandbox_id, void *userdata),
                             void *userdata);

/* Delete table TABLE with everything in it. A missing table is 0. */
int netfilter_teardown(const char *table, char **ret_error);
