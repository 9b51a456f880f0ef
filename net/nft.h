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
 * The table, as `nft list table ip <table>` shows it, with one bridge "br-x" on 10.77.0.0/24 (a
 * second bridge "br-y" named for isolation), egress-allow 10.1.0.0/16, egress-deny 10.0.0.0/8 and
 * the name server 192.0.2.53:
 *
 *   chain published { tcp dport 8080 dnat to 10.77.0.2:80 comment "sbx:<sandbox id>" ... }
 *   chain prerouting { type nat hook prerouting priority dstnat; policy accept;
 *           fib daddr type local jump published }
 *   chain output { type nat hook output priority -100; policy accept;
 *           fib daddr type local jump published }                  (127.0.0.1 too)
 *   chain postrouting-br-x { type nat hook postrouting priority srcnat; policy accept;
 *           ip saddr 10.77.0.0/24 oifname != "br-x" masquerade
 *           oifname "br-x" ip saddr 127.0.0.0/8 masquerade }      (published ports on 127.0.0.1)
 *   chain forward-br-x { type filter hook forward priority filter; policy accept;
 *           iifname "br-x" oifname "br-y" drop                   (each other bridge)
 *           iifname "br-x" ct state established,related accept
 *           iifname "br-x" oifname "br-x" accept
 *           iifname "br-x" ip daddr 10.1.0.0/16 accept           (each egress-allow)
 *           iifname "br-x" ip daddr 192.0.2.53 udp dport 53 accept (and tcp; each name server no
 *                                                                   egress-deny covers)
 *           iifname "br-x" ip daddr 169.254.0.0/16 drop
 *           iifname "br-x" ip daddr 10.0.0.0/8 drop              (each egress-deny)
 *           iifname "br-x" accept
 *           oifname "br-x" ct status dnat accept }
 *   chain input-br-x { type filter hook input priority filter; policy accept;
 *           iifname "br-x" ct state established,related accept
 *           iifname "br-x" ip daddr 127.0.0.0/8 drop
 *           iifname "br-x" ip daddr 10.1.0.0/16 accept           (each egress-allow)
 *           iifname "br-x" ip daddr 192.0.2.53 udp dport 53 accept (and tcp, as above)
 *           iifname "br-x" drop }
 *
 * The chains of a bridge decide only about packets that come in through it: it reaches the host
 * itself (input: any of the host's addresses, also the bridge's own) only for replies, egress-allow
 * and DNS to its name servers; it reaches other networks (forward) except link-local addresses (cloud
 * metadata services) and egress-deny. egress-allow comes first, so it also opens what the built-in
 * rules close. Loopback addresses are refused separately because the runtime sets route_localnet
 * on its bridges (for 127.0.0.1 publishing): without that rule a sandbox could reach the host's
 * loopback services by sending to 127.0.0.1 through its gateway.
 *
 * Every rule carries a comment. The base chains' policy is accept, and each drops nothing but traffic
 * from its own bridge: other tables keep deciding about everything else. Several base chains on one
 * hook are fine: a drop in any of them is final, an accept only ends that chain.
 *
 * Chains of the earlier layout (base chains "postrouting" and "forward" shared by all bridges) are
 * removed by netfilter_setup().
 *
 * ret_error, where present, follows sd_bus_error's convention rather than the ret_* one: it may be
 * NULL, it is written only on failure (a malloc'd message the caller frees), never on success.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETFILTER_BRIDGES_MAX 8      /* bridges of one setup (built or named) */
#define NETFILTER_CIDRS_MAX 16       /* egress-allow and egress-deny, each */
#define NETFILTER_DNS_MAX 8          /* name servers */
#define NETFILTER_TABLE_NAME_MAX 64  /* [A-Za-z][A-Za-z0-9_-]* */
#define NETFILTER_SANDBOX_ID_MAX 64  /* [A-Za-z0-9_.-]+ */
#define NETFILTER_PUBLISHED_MAX 4096 /* rules in chain "published" */

typedef struct NetfilterBridge {
        const char *ifname;     /* the bridge's interface name, [A-Za-z0-9_.-]{1,15} */
        struct in_addr subnet;  /* the sandboxes' subnet on it; host bits are ignored */
        unsigned prefixlen;     /* 1..32; 0: only named (the other bridges' chains isolate them from
                                 * it), its own chains are left as they are */
} NetfilterBridge;

typedef struct NetfilterCidr {
        struct in_addr addr;    /* host bits are ignored */
        unsigned prefixlen;     /* 0..32 (0: every address) */
} NetfilterCidr;

typedef struct NetfilterConfig {
        const char *table;      /* e.g. "sandbox" */
        const NetfilterBridge *bridges;
        size_t n_bridges;       /* 0..NETFILTER_BRIDGES_MAX */
        const NetfilterCidr *egress_allow;      /* reachable even where the rules below would drop */
        size_t n_egress_allow;  /* 0..NETFILTER_CIDRS_MAX */
        const NetfilterCidr *egress_deny;       /* not reachable (besides the built-in rules) */
        size_t n_egress_deny;   /* 0..NETFILTER_CIDRS_MAX */
        const struct in_addr *dns;              /* the sandboxes' name servers: port 53 reachable */
        size_t n_dns;           /* 0..NETFILTER_DNS_MAX */
        bool keep_existing;     /* a bridge whose chains exist keeps them as they are (only missing
                                 * ones are built): for a runtime that must not override the rules a
                                 * configured one made */
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

/* In one batch: create table TABLE if missing; (re)create the chains prerouting and output, and for
 * each of C's bridges with a prefix length its three chains, with exactly the rules above (the old
 * chains and their rules go, so calling it twice leaves no duplicates; the chains of bridges not
 * given, or given with prefix length 0, stay as they are); remove the chains of the earlier layout;
 * create chain "published" if missing and KEEP its rules, so that published ports survive a restart
 * of the runtime (use netfilter_list_sandboxes() + netfilter_publish_remove() to drop those of
 * sandboxes that are gone). With C->keep_existing, bridges whose chains exist are skipped (checked
 * and applied atomically: a batch refused because the ruleset changed meanwhile is prepared again),
 * and nothing is sent when every bridge has its chains. -EINVAL for an invalid configuration (with a
 * message). */
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
