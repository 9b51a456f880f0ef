/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for rootattr_parse() (common/rootattr.h): the private-root record
 * "<ns>overlay.sandbox.rootattr" read from a layer's root, "MODE UID GID" with octal MODE <= 07777
 * and decimal ids <= 4294967294, each without leading zeros, single spaces, nothing else. The value
 * comes from any layer, so it is untrusted. An independent oracle decides validity; for every accepted
 * value rootattr_format() must give back exactly the same bytes (the form is canonical).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rootattr.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT 256

/* One field [p, end): digits of BASE only, no leading zero unless it is "0", at most MAX. */
static bool oracle_field(const uint8_t *p, const uint8_t *end, unsigned base, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;
        if (p >= end || (end - p > 1 && *p == '0'))
                return false;
        for (; p < end; p++) {
                if (*p < '0' || *p >= '0' + base)
                        return false;
                v = v * base + (uint64_t) (*p - '0');
                if (v > max)
                        return false;
        }
        *ret = v;
        return true;
}

static bool oracle(const uint8_t *data, size_t size, uint64_t f[3]) {
        const uint8_t *sp[2], *end = data + size;
        size_t n = 0;

        if (size == 0 || size >= ROOTATTR_VALUE_MAX)
                return false;
        for (const uint8_t *p = data; p < end; p++)
                if (*p == ' ') {
                        if (n == 2)
                                return false;
                        sp[n++] = p;
                }
        return n == 2 && oracle_field(data, sp[0], 8, 07777, &f[0]) &&
               oracle_field(sp[0] + 1, sp[1], 10, UINT32_MAX - 1, &f[1]) &&
               oracle_field(sp[1] + 1, end, 10, UINT32_MAX - 1, &f[2]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > FUZZ_MAX_INPUT)
                return 0;
        /* Not NUL-terminated on purpose: the parser must stay within SIZE. */
        char *copy = malloc(size ? size : 1);
        ASSERT(copy);
        memcpy(copy, data, size);

        RootAttr a;
        uint64_t f[3];
        memset(&a, 0x5A, sizeof a);
        int r = rootattr_parse(copy, size, &a);
        bool valid = oracle(data, size, f);
        if (r < 0) {
                ASSERT(r == -EINVAL);
                ASSERT(!valid);
        } else {
                ASSERT(r == 0);
                ASSERT(valid);
                ASSERT(a.mode == f[0] && a.uid == f[1] && a.gid == f[2]);
                char buf[ROOTATTR_VALUE_MAX];
                size_t n = rootattr_format(&a, buf);
                ASSERT(n == size && memcmp(buf, data, size) == 0);
        }
        free(copy);
        return 0;
}
