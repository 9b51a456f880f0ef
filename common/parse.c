/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
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

int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "kmgt";
        char *end;
        uint64_t v, mult = 1;

        if (!s || s[0] < '0' || s[0] > '9') /* rejects "", sign and whitespace */
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno)
                return -errno;
        if (*end) {
                const char *p = strchr(suffixes, *end | 0x20);
                if (!p)
                        return -EINVAL;
                for (const char *q = suffixes; q <= p; q++)
                        mult *= 1024;
                end++;
                if ((*end | 0x20) == 'i')
                        end++;
                if ((*end | 0x20) == 'b')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}
