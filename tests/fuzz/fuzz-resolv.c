/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the resolv.conf parser (net/resolv.c), which reads the host's /etc/resolv.conf and
 * systemd-resolved's list for every sandbox. The input is the file's bytes. Properties: every server
 * kept is a valid address, the search list and options hold only the allowed characters and fit
 * their buffers; what a sandbox gets (in its own namespace) has no loopback and no IPv6 server; the
 * text written parses back to the same servers (the first three), search list and options.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/resolv.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT (RESOLV_CONF_SIZE_MAX + 1024)

static bool chars_ok(const char *s) {
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("._:+=- ", *s)))
                        return false;
        return true;
}

static bool address_ok(const char *s, bool *ret_v4) {
        char buf[RESOLV_ADDR_MAX];
        unsigned char bin[16];

        if (strlen(s) >= sizeof buf)
                return false;
        *ret_v4 = inet_pton(AF_INET, s, bin) == 1;
        if (*ret_v4)
                return true;
        strcpy(buf, s);
        char *zone = strchr(buf, '%');
        if (zone)
                *zone = '\0';
        return inet_pton(AF_INET6, buf, bin) == 1;
}

static void check(const ResolvConf *c) {
        ASSERT(c->n_servers <= RESOLV_SERVERS_MAX);
        for (size_t i = 0; i < c->n_servers; i++) {
                bool v4;
                ASSERT(strnlen(c->servers[i], RESOLV_ADDR_MAX) < RESOLV_ADDR_MAX);
                ASSERT(address_ok(c->servers[i], &v4));
        }
        ASSERT(strnlen(c->search, RESOLV_LINE_MAX) < RESOLV_LINE_MAX && chars_ok(c->search));
        ASSERT(strnlen(c->options, RESOLV_LINE_MAX) < RESOLV_LINE_MAX && chars_ok(c->options));
        ASSERT(!strchr(c->search, '=') && !strchr(c->search, ':'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char text[8192];
        ResolvConf c, out, back;
        struct in_addr dns[RESOLV_SERVERS_WRITTEN];

        if (size > FUZZ_MAX_INPUT)
                return 0;
        resolv_conf_parse((const char *) data, size, &c);
        check(&c);

        /* The input as both the host's file and the upstream list. */
        resolv_conf_for_sandbox(&c, &c, true, &out);
        check(&out);
        for (size_t i = 0; i < out.n_servers; i++) {
                struct in_addr a;
                ASSERT(inet_pton(AF_INET, out.servers[i], &a) == 1);
                ASSERT((ntohl(a.s_addr) >> 24) != 127);
        }
        ASSERT(resolv_conf_ipv4_servers(&out, dns) == (out.n_servers < RESOLV_SERVERS_WRITTEN ? out.n_servers
                                                                                              : RESOLV_SERVERS_WRITTEN));

        /* --net host: the host's servers, duplicates once. */
        resolv_conf_for_sandbox(&c, NULL, false, &out);
        ASSERT(out.n_servers <= c.n_servers);
        for (size_t i = 0; i < c.n_servers; i++) {
                bool found = false;
                for (size_t j = 0; j < out.n_servers; j++)
                        found = found || strcmp(c.servers[i], out.servers[j]) == 0;
                ASSERT(found);
        }
        ASSERT(resolv_conf_format(&out, "fuzz\n#comment", text, sizeof text) == 0);
        resolv_conf_parse(text, strlen(text), &back);
        ASSERT(back.n_servers == (out.n_servers < RESOLV_SERVERS_WRITTEN ? out.n_servers : RESOLV_SERVERS_WRITTEN));
        for (size_t i = 0; i < back.n_servers; i++)
                ASSERT(strcmp(back.servers[i], out.servers[i]) == 0);
        ASSERT(strcmp(back.search, out.search) == 0);
        ASSERT(strcmp(back.options, out.options) == 0);
        return 0;
}
