/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for registry authentication input (image/auth.c): a WWW-Authenticate header (any
 * registry, or anyone on its path for plain HTTP on the loopback, chooses it), a token server's answer,
 * a credentials file. Input: one selector byte, then the bytes. Beyond "no crash": a parsed challenge is
 * Bearer with a realm or Basic; a token is visible ASCII only (it goes into a header line) and within
 * its bound; credentials have a user without ':' and no NUL.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/auth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 2 * 1024 * 1024)
                return 0;
        const char *buf = (const char *) data + 1;
        size_t len = size - 1;
        switch (data[0] % 3) {
        case 0: {
                char *h = strndup(buf, len);
                ASSERT(h);
                AuthChallenge c = {};
                if (auth_challenge_parse(h, &c) == 0) {
                        ASSERT(c.scheme == AUTH_SCHEME_BEARER || c.scheme == AUTH_SCHEME_BASIC);
                        if (c.scheme == AUTH_SCHEME_BEARER)
                                ASSERT(c.realm && *c.realm);
                        auth_challenge_done(&c);
                }
                free(h);
                break;
        }
        case 1: {
                char *t = NULL;
                if (auth_token_parse(buf, len, &t) == 0) {
                        size_t n = strlen(t);
                        ASSERT(n > 0 && n <= AUTH_TOKEN_MAX);
                        for (size_t i = 0; i < n; i++)
                                ASSERT((unsigned char) t[i] > 0x20 && (unsigned char) t[i] < 0x7f);
                        free(t);
                } else
                        ASSERT(t == NULL);
                break;
        }
        default: {
                char *u = NULL, *p = NULL;
                if (auth_file_lookup(buf, len, "localhost:5000", "team/app", &u, &p) == 0) {
                        ASSERT(u && p && *u && !strchr(u, ':'));
                        free(u);
                        free(p);
                } else
                        ASSERT(u == NULL && p == NULL);
        }
        }
        return 0;
}
