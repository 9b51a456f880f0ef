/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for idmap_parse() ("FROM:TO:COUNT[:...]", from the uidmapping=/gidmapping= options) and
 * the mapping it builds. The input is the option value (cut at a NUL). An independent parser decides
 * whether the value is well formed (decimal fields, complete non-empty non-overlapping ranges within
 * 32 bits, at most IDMAP_MAX_RANGES); idmap_parse() must agree and produce the same ranges. For every
 * accepted map, ids at the edges and inside each range map there and back
 * (to_disk(to_shown(x)) == x), and ids outside every range map to the overflow id.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unionfs/idmap.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT 4096

typedef struct Oracle {
        uint64_t f[3 * (IDMAP_MAX_RANGES + 1)];
        size_t n_fields;
} Oracle;

/* Split on every ':' (empty fields count), each field all decimal digits fitting 32 bits. */
static bool oracle_fields(const char *s, Oracle *o) {
        o->n_fields = 0;
        for (const char *p = s;;) {
                uint64_t v = 0;
                size_t digits = 0;
                for (; *p >= '0' && *p <= '9'; p++, digits++) {
                        v = v * 10 + (uint64_t) (*p - '0');
                        if (v > UINT32_MAX)
                                return false;
                }
                if (digits == 0 || (*p != ':' && *p != '\0'))
                        return false;
                if (o->n_fields >= sizeof o->f / sizeof o->f[0])
                        return false; /* more than IDMAP_MAX_RANGES + 1 ranges: too many anyway */
                o->f[o->n_fields++] = v;
                if (*p == '\0')
                        return true;
                p++;
        }
}

static bool oracle_valid(const char *s, Oracle *o) {
        if (!oracle_fields(s, o) || o->n_fields == 0 || o->n_fields % 3 != 0)
                return false;
        size_t n = o->n_fields / 3;
        if (n > IDMAP_MAX_RANGES)
                return false;
        for (size_t i = 0; i < n; i++) {
                uint64_t d = o->f[3 * i], sh = o->f[3 * i + 1], c = o->f[3 * i + 2];
                if (c == 0 || d + c > (UINT64_C(1) << 32) || sh + c > (UINT64_C(1) << 32))
                        return false;
                for (size_t j = 0; j < i; j++) {
                        uint64_t d2 = o->f[3 * j], sh2 = o->f[3 * j + 1], c2 = o->f[3 * j + 2];
                        if (!(d + c <= d2 || d2 + c2 <= d) || !(sh + c <= sh2 || sh2 + c2 <= sh))
                                return false;
                }
        }
        return true;
}

static uint32_t in_disk_ranges(const IdMap *m, uint64_t x, bool *found) {
        for (size_t i = 0; i < m->n_ranges; i++)
                if (x >= m->ranges[i].disk && x < (uint64_t) m->ranges[i].disk + m->ranges[i].count) {
                        *found = true;
                        return (uint32_t) (m->ranges[i].shown + (x - m->ranges[i].disk));
                }
        *found = false;
        return IDMAP_OVERFLOW_ID;
}

static void check_id(const IdMap *m, uint32_t x) {
        bool found;
        uint32_t want = in_disk_ranges(m, x, &found);
        uint32_t s = idmap_to_shown(m, x);
        ASSERT(s == want);
        if (found)
                ASSERT(idmap_to_disk(m, s) == x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > FUZZ_MAX_INPUT)
                return 0;
        char *s = strndup((const char *) data, size);
        ASSERT(s);

        IdMap m;
        Oracle o;
        memset(&m, 0x5A, sizeof m);
        int r = idmap_parse(s, &m);
        bool valid = oracle_valid(s, &o);
        if (r < 0) {
                ASSERT(r == -EINVAL || r == -ERANGE || r == -E2BIG);
                ASSERT(!valid);
                free(s);
                return 0;
        }
        ASSERT(r == 0);
        ASSERT(valid);
        ASSERT(m.n_ranges == o.n_fields / 3);
        for (size_t i = 0; i < m.n_ranges; i++) {
                const IdRange *g = &m.ranges[i];
                ASSERT(g->disk == o.f[3 * i] && g->shown == o.f[3 * i + 1] && g->count == o.f[3 * i + 2]);
                uint32_t probes[] = { g->disk, g->disk + g->count / 2, g->disk + (g->count - 1) };
                for (size_t j = 0; j < sizeof probes / sizeof probes[0]; j++) {
                        uint32_t x = probes[j], sh = idmap_to_shown(&m, x);
                        ASSERT(sh == g->shown + (x - g->disk));
                        ASSERT(idmap_to_disk(&m, sh) == x);
                }
                /* just outside the range: unmapped unless another range starts there */
                if (g->disk > 0)
                        check_id(&m, g->disk - 1);
                if ((uint64_t) g->disk + g->count <= UINT32_MAX)
                        check_id(&m, g->disk + g->count);
        }
        check_id(&m, 0);
        check_id(&m, UINT32_MAX);
        check_id(&m, IDMAP_OVERFLOW_ID);
        /* shown ids nobody maps to are stored as the overflow id */
        for (size_t i = 0; i < m.n_ranges; i++) {
                uint64_t y = (uint64_t) m.ranges[i].shown + m.ranges[i].count;
                bool taken = false;
                if (y > UINT32_MAX)
                        continue;
                for (size_t j = 0; j < m.n_ranges; j++)
                        taken |= y >= m.ranges[j].shown && y < (uint64_t) m.ranges[j].shown + m.ranges[j].count;
                if (!taken)
                        ASSERT(idmap_to_disk(&m, (uint32_t) y) == IDMAP_OVERFLOW_ID);
        }
        free(s);
        return 0;
}
