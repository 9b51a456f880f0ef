/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * See resolv.h. The parser walks the buffer line by line with explicit lengths: a line is cut at
 * '\n' or NUL, words at blanks; nothing is copied that was not checked, and every copy is bounded by
 * its destination.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "resolv.h"

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool word_chars_valid(const char *w, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = w[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:+=-", c)))
                        return false;
        }
        return true;
}

/* The next word of [*p, end): its start and length; false at the end of the line. */
static bool next_word(const char **p, const char *end, const char **ret_word, size_t *ret_len) {
        const char *s = *p, *w;

        while (s < end && is_blank(*s))
                s++;
        if (s >= end)
                return false;
        w = s;
        while (s < end && !is_blank(*s))
                s++;
        *ret_word = w;
        *ret_len = (size_t) (s - w);
        *p = s;
        return true;
}

static bool word_is(const char *w, size_t n, const char *keyword) {
        return strlen(keyword) == n && memcmp(w, keyword, n) == 0;
}

/* An IPv4 or IPv6 address, the latter with an optional zone ("%eth0"). */
static bool address_valid(const char *w, size_t n) {
        char buf[RESOLV_ADDR_MAX], *zone;
        unsigned char bin[sizeof(struct in6_addr)];

        if (n == 0 || n >= sizeof buf)
                return false;
        memcpy(buf, w, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET, buf, bin) == 1)
                return true;
        zone = strchr(buf, '%');
        if (zone) {
                *zone++ = '\0';
                if (!word_chars_valid(zone, strlen(zone)))
                        return false;
        }
        return inet_pton(AF_INET6, buf, bin) == 1;
}

/* Append word W (N bytes) to the space-separated list LIST; a word that does not fit is left out. */
static void list_append(char list[static RESOLV_LINE_MAX], const char *w, size_t n) {
        size_t len = strlen(list), need = n + (len > 0 ? 1 : 0);

        if (len + need >= RESOLV_LINE_MAX)
                return;
        if (len > 0)
                list[len++] = ' ';
        memcpy(list + len, w, n);
        list[len + n] = '\0';
}

static void parse_line(const char *s, const char *end, ResolvConf *c) {
        const char *w;
        size_t n;

        if (!next_word(&s, end, &w, &n) || w[0] == '#' || w[0] == ';')
                return;
        if (word_is(w, n, "nameserver")) {
                /* One address; whatever follows it is ignored, as glibc does. */
                if (next_word(&s, end, &w, &n) && c->n_servers < RESOLV_SERVERS_MAX && address_valid(w, n)) {
                        memcpy(c->servers[c->n_servers], w, n);
                        c->servers[c->n_servers][n] = '\0';
                        c->n_servers++;
                }
        } else if (word_is(w, n, "search") || word_is(w, n, "domain")) {
                /* The last of them wins. */
                c->search[0] = '\0';
                while (next_word(&s, end, &w, &n))
                        if (word_chars_valid(w, n) && !memchr(w, '=', n) && !memchr(w, ':', n))
                                list_append(c->search, w, n);
        } else if (word_is(w, n, "options")) {
                while (next_word(&s, end, &w, &n))
                        if (word_chars_valid(w, n))
                                list_append(c->options, w, n);
        }
}

void resolv_conf_parse(const char *text, size_t size, ResolvConf *ret) {
        ResolvConf c = {};
        const char *p = text, *end = text + MIN(size, (size_t) RESOLV_CONF_SIZE_MAX);

        while (p < end) {
                const char *e = p;
                while (e < end && *e != '\n' && *e != '\0')
                        e++;
                parse_line(p, e, &c);
                p = e + 1;
        }
        *ret = c;
}

static bool server_is_ipv4(const char *s, struct in_addr *ret) {
        struct in_addr a;
        if (inet_pton(AF_INET, s, &a) != 1)
                return false;
        if (ret)
                *ret = a;
        return true;
}

static bool server_is_loopback(const char *s) {
        struct in_addr a;
        struct in6_addr a6;
        char buf[RESOLV_ADDR_MAX], *zone;

        if (server_is_ipv4(s, &a))
                return (ntohl(a.s_addr) >> 24) == 127;
        snprintf(buf, sizeof buf, "%s", s);
        zone = strchr(buf, '%');
        if (zone)
                *zone = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Add server S to C unless it is there already or C is full. */
static void add_server(ResolvConf *c, const char *s) {
        for (size_t i = 0; i < c->n_servers; i++)
                if (streq(c->servers[i], s))
                        return;
        if (c->n_servers < RESOLV_SERVERS_MAX)
                snprintf(c->servers[c->n_servers++], RESOLV_ADDR_MAX, "%s", s);
}

void resolv_conf_for_sandbox(const ResolvConf *host, const ResolvConf *upstream, bool own_netns, ResolvConf *ret) {
        ResolvConf c = {};
        bool loopback = false;

        memcpy(c.search, host->search, sizeof c.search);
        memcpy(c.options, host->options, sizeof c.options);
        if (!own_netns) {
                /* The host's namespace: its loopback servers work there. */
                for (size_t i = 0; i < host->n_servers; i++)
                        add_server(&c, host->servers[i]);
                *ret = c;
                return;
        }
        for (size_t i = 0; i < host->n_servers; i++) {
                if (server_is_loopback(host->servers[i]))
                        loopback = true;
                else if (server_is_ipv4(host->servers[i], NULL))
                        add_server(&c, host->servers[i]);
        }
        /* In place of the loopback ones (where they were in the list does not matter much: the
         * resolver tries them in turn), the upstream file's. */
        if (loopback && upstream)
                for (size_t i = 0; i < upstream->n_servers; i++)
                        if (!server_is_loopback(upstream->servers[i]) && server_is_ipv4(upstream->servers[i], NULL))
                                add_server(&c, upstream->servers[i]);
        *ret = c;
}

size_t resolv_conf_ipv4_servers(const ResolvConf *c, struct in_addr ret[static RESOLV_SERVERS_WRITTEN]) {
        size_t n = 0;

        for (size_t i = 0; i < c->n_servers && i < RESOLV_SERVERS_WRITTEN; i++)
                if (server_is_ipv4(c->servers[i], &ret[n]))
                        n++;
        return n;
}

__attribute__((format(printf, 4, 5)))
static int put(char *buf, size_t size, size_t *len, const char *fmt, ...) {
        va_list ap;
        int k;

        if (*len >= size)
                return -ENOBUFS;
        va_start(ap, fmt);
        k = vsnprintf(buf + *len, size - *len, fmt, ap);
        va_end(ap);
        if (k < 0 || (size_t) k >= size - *len) {
                *len = size;
                return -ENOBUFS;
        }
        *len += (size_t) k;
        return 0;
}

int resolv_conf_format(const ResolvConf *c, const char *comment, char *buf, size_t size) {
        size_t len = 0;
        int r = 0;

        if (size == 0)
                return -ENOBUFS;
        buf[0] = '\0';
        if (comment) {
                /* One line: a control character (a path may hold one) becomes '?'. */
                r = put(buf, size, &len, "# ");
                for (const char *p = comment; r >= 0 && *p; p++)
                        r = put(buf, size, &len, "%c", (unsigned char) *p < ' ' || *p == 0x7f ? '?' : *p);
                if (r >= 0)
                        r = put(buf, size, &len, "\n");
        }
        for (size_t i = 0; r >= 0 && i < c->n_servers && i < RESOLV_SERVERS_WRITTEN; i++)
                r = put(buf, size, &len, "nameserver %s\n", c->servers[i]);
        if (r >= 0 && c->search[0])
                r = put(buf, size, &len, "search %s\n", c->search);
        if (r >= 0 && c->options[0])
                r = put(buf, size, &len, "options %s\n", c->options);
        return r;
}
