/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See idmap.h. Pure logic, no I/O. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "macro.h"
#include "parse.h"

static bool ranges_overlap(uint32_t a, uint32_t an, uint32_t b, uint32_t bn) {
        return (uint64_t) a < (uint64_t) b + bn && (uint64_t) b < (uint64_t) a + an;
}

int idmap_parse(const char *s, IdMap *ret) {
        IdMap m = {};
        _cleanup_free_ char *copy = NULL;
        char *saveptr = NULL, *tok;
        uint32_t v[3];
        size_t i = 0;
        int r;

        if (!s || !*s)
                return -EINVAL;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;

        for (tok = strtok_r(copy, ":", &saveptr); tok; tok = strtok_r(NULL, ":", &saveptr)) {
                r = safe_atou32(tok, &v[i % 3]);
                if (r < 0)
                        return r;
                if (++i % 3 != 0)
                        continue;

                IdRange range = { .disk = v[0], .shown = v[1], .count = v[2] };
                if (range.count == 0)
                        return -EINVAL;
                if ((uint64_t) range.disk + range.count > (uint64_t) UINT32_MAX + 1 ||
                    (uint64_t) range.shown + range.count > (uint64_t) UINT32_MAX + 1)
                        return -ERANGE;
                for (size_t j = 0; j < m.n_ranges; j++)
                        if (ranges_overlap(m.ranges[j].disk, m.ranges[j].count, range.disk, range.count) ||
                            ranges_overlap(m.ranges[j].shown, m.ranges[j].count, range.shown, range.count))
                                return -EINVAL;
                if (m.n_ranges >= IDMAP_MAX_RANGES)
                        return -E2BIG;
                m.ranges[m.n_ranges++] = range;
        }
        /* Count the separators ourselves: strtok_r() silently skips empty fields like "0::1". */
        size_t colons = 0;
        for (const char *p = s; *p; p++)
                colons += *p == ':';
        if (i == 0 || i % 3 != 0 || colons != i - 1 || s[0] == ':' || s[strlen(s) - 1] == ':')
                return -EINVAL;

        *ret = m;
        return 0;
}

uint32_t idmap_to_shown(const IdMap *m, uint32_t disk_id) {
        if (m->n_ranges == 0)
                return disk_id;
        for (size_t i = 0; i < m->n_ranges; i++)
                if (disk_id >= m->ranges[i].disk && disk_id - m->ranges[i].disk < m->ranges[i].count)
                        return m->ranges[i].shown + (disk_id - m->ranges[i].disk);
        return IDMAP_OVERFLOW_ID;
}

uint32_t idmap_to_disk(const IdMap *m, uint32_t shown_id) {
        if (m->n_ranges == 0)
                return shown_id;
        for (size_t i = 0; i < m->n_ranges; i++)
                if (shown_id >= m->ranges[i].shown && shown_id - m->ranges[i].shown < m->ranges[i].count)
                        return m->ranges[i].disk + (shown_id - m->ranges[i].shown);
        return IDMAP_OVERFLOW_ID;
}
