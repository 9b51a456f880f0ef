/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A sandbox's /etc/resolv.conf, made from the host's: parse a resolv.conf (name servers, the search
 * list, options), choose what a sandbox may use, and write it back out. Pure functions over
 * buffers (no I/O, no allocation), so that the parser can be fuzzed; the runtime reads the files
 * and writes the result (network.c).
 *
 * What a sandbox in a network namespace of its own (--net bridge or isolated) gets, as Docker does:
 * the host's IPv4 name servers except loopback ones (127.0.0.0/8, e.g. systemd-resolved's stub
 * 127.0.0.53, which cannot be reached from another namespace), replaced, when the host names a
 * loopback one, by the name servers of the upstream file (systemd-resolved's
 * /run/systemd/resolve/resolv.conf); the host's search list and options. IPv6 name servers are left
 * out: sandboxes have no IPv6. With --net host, the sandbox shares the host's namespace and gets the
 * host's list as it is.
 *
 * Everything read is bounded and checked: a name server must parse as an address, a search domain
 * or option may contain only [A-Za-z0-9._:+=-] (no character that could start another line or
 * field); what does not fit is left out. Nothing is guessed: a file with no usable name server
 * gives a resolv.conf without one (its comment says why), never some public resolver.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#define RESOLV_CONF_SIZE_MAX (16 * 1024) /* bytes read of a resolv.conf */
#define RESOLV_SERVERS_MAX 8             /* name servers kept from one file */
#define RESOLV_SERVERS_WRITTEN 3         /* written: glibc's MAXNS uses no more */
#define RESOLV_LINE_MAX 256              /* the search list, the options: bytes each */
#define RESOLV_ADDR_MAX 64               /* an address with an IPv6 zone ("fe80::1%eth0") */

typedef struct ResolvConf {
        char servers[RESOLV_SERVERS_MAX][RESOLV_ADDR_MAX]; /* as written, each a valid address */
        size_t n_servers;
        char search[RESOLV_LINE_MAX];   /* the last search or domain line's domains, space-separated */
        char options[RESOLV_LINE_MAX];  /* every options line's words, space-separated */
} ResolvConf;

/* Parse SIZE bytes of TEXT (need not be NUL-terminated; a NUL ends a line as '\n' does). Unknown
 * lines, comments and invalid words are skipped: it never fails. */
void resolv_conf_parse(const char *text, size_t size, ResolvConf *ret);

/* What a sandbox gets (see above): OWN_NETNS for --net bridge/isolated, false for --net host.
 * UPSTREAM may be NULL (no such file). */
void resolv_conf_for_sandbox(const ResolvConf *host, const ResolvConf *upstream, bool own_netns, ResolvConf *ret);

/* The IPv4 name servers of C (at most RESOLV_SERVERS_WRITTEN, the ones a resolver uses). Returns
 * their number. */
size_t resolv_conf_ipv4_servers(const ResolvConf *c, struct in_addr ret[static RESOLV_SERVERS_WRITTEN]);

/* C as resolv.conf text into BUF (always NUL-terminated), with COMMENT (may be NULL; written as one
 * line, a control character in it as '?') first. -ENOBUFS if it does not fit (BUF then holds a truncated text). */
int resolv_conf_format(const ResolvConf *c, const char *comment, char *buf, size_t size);
