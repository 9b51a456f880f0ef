/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int safe_atou64(const char *s, uint64_t *ret) {
        char *end = NULL;
        unsigned long long v;

        if (!s || *s < '0' || *s > '9') /* rejects "", sign and whitespace */
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || !end || *end != '\0')
                return -EINVAL;
        *ret = (uint64_t) v;
        return 0;
}

int safe_atou32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

/* The fraction's digits: at most this many, so that FRACTION * 2^40 stays below 2^64. */
#define SIZE_FRACTION_DIGITS_MAX 6

int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "kmgt";
        const char *p;
        uint64_t whole = 0, frac = 0, frac_scale = 1, mult = 1;
        unsigned n_frac = 0;

        if (!s || s[0] < '0' || s[0] > '9') /* rejects "", sign and whitespace */
                return -EINVAL;
        for (p = s; *p >= '0' && *p <= '9'; p++) {
                if (whole > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*p - '0');
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL; /* "1." or "1.k" */
                for (; *p >= '0' && *p <= '9'; p++) {
                        if (++n_frac > SIZE_FRACTION_DIGITS_MAX)
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t) (*p - '0');
                        frac_scale *= 10;
                }
        }
        if (*p) {
                const char *unit = strchr(suffixes, *p | 0x20);
                if (!unit)
                        return -EINVAL;
                for (const char *q = suffixes; q <= unit; q++)
                        mult *= 1024;
                p++;
                if ((*p | 0x20) == 'i')
                        p++;
                if ((*p | 0x20) == 'b')
                        p++;
                if (*p)
                        return -EINVAL;
        } else if (n_frac > 0)
                return -EINVAL; /* a fraction of a byte */
        if (whole > UINT64_MAX / mult)
                return -ERANGE;
        /* frac < 10^6 and mult <= 2^40: the product fits; rounded down to whole bytes. */
        uint64_t extra = frac * mult / frac_scale;
        if (whole * mult > UINT64_MAX - extra)
                return -ERANGE;
        *ret = whole * mult + extra;
        return 0;
}

const char *format_size(uint64_t bytes, char *buf, size_t size) {
        static const char units[] = "KMGT";
        uint64_t b = bytes;
        int u = -1;

        /* The largest unit that gives a whole number: 1536 MiB rather than 1.5 GiB, never rounded. */
        while (u < 3 && b >= 1024 && b % 1024 == 0) {
                b /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, size, "%llu bytes", (unsigned long long) b);
        else
                snprintf(buf, size, "%llu %ciB", (unsigned long long) b, units[u]);
        return buf;
}
