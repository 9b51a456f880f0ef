/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for whiteout_redirect_decode(), which reads trusted.overlay.redirect values from layers
 * we do not trust. Input: "PARENT\nVALUE" (no '\n': the whole input is the value, the parent is the
 * layer root); VALUE may hold any byte, NULs included, and is passed in a buffer of exactly its size.
 * Beyond "no crash, no sanitizer report", every result is compared with an independent oracle:
 * decode succeeds exactly for clean values, an absolute value decodes to itself without the '/', a
 * relative one to PARENT/VALUE, and encode(decode(v)) decodes back to the same path.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unionfs/whiteout.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT (3 * PATH_MAX) /* past the PATH_MAX limit, but not much further */

/* One path component: 1..NAME_MAX bytes, no '/' or NUL, not "." or "..". */
static bool oracle_component(const char *s, size_t n) {
        if (n < 1 || n > NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '/' || s[i] == '\0')
                        return false;
        return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

/* Written without sharing any code with whiteout.c: walk the value once, component by component. */
static bool oracle_valid(const char *v, size_t n) {
        if (n == 0 || n >= PATH_MAX)
                return false;
        if (v[0] != '/')
                return oracle_component(v, n);
        size_t start = 1;
        if (n == 1)
                return false;
        for (size_t i = 1; i <= n; i++)
                if (i == n || v[i] == '/') {
                        if (!oracle_component(v + start, i - start))
                                return false;
                        start = i + 1;
                }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > FUZZ_MAX_INPUT)
                return 0;

        const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
        size_t plen = nl ? (size_t) (nl - data) : 0;
        const uint8_t *v = nl ? nl + 1 : data;
        size_t vsize = nl ? size - plen - 1 : size;

        /* The parent comes from our own node table: a C string (cut at a NUL if there is one). */
        char *parent = strndup((const char *) data, plen);
        char *value = calloc(vsize ? vsize : 1, 1);
        ASSERT(parent && value);
        if (vsize)
                memcpy(value, v, vsize);

        char *out = NULL;
        int r = whiteout_redirect_decode(value, vsize, parent, &out);
        bool valid = oracle_valid(value, vsize);
        if (r != 0) {
                ASSERT(r == -EINVAL);
                ASSERT(!valid);
                ASSERT(out == NULL);
                goto done;
        }
        ASSERT(valid);
        ASSERT(out);
        size_t olen = strlen(out);
        if (value[0] == '/') {
                ASSERT(olen == vsize - 1);
                ASSERT(memcmp(out, value + 1, olen) == 0);

                /* the kernel's format back and forth */
                char *enc = NULL, *back = NULL;
                size_t esize = 0;
                ASSERT(whiteout_redirect_encode(out, &enc, &esize) == 0);
                ASSERT(esize == vsize && memcmp(enc, value, vsize) == 0);
                ASSERT(whiteout_redirect_decode(enc, esize, "", &back) == 0);
                ASSERT(strcmp(back, out) == 0);
                free(enc);
                free(back);
        } else {
                size_t pl = strlen(parent);
                ASSERT(olen == (pl ? pl + 1 : 0) + vsize);
                ASSERT(memcmp(out, parent, pl) == 0);
                if (pl)
                        ASSERT(out[pl] == '/');
                ASSERT(memcmp(out + (pl ? pl + 1 : 0), value, vsize) == 0);
        }
        free(out);
done:
        free(parent);
        free(value);
        return 0;
}
