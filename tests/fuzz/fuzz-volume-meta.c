/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for a volume's meta file (volume_meta_parse(), sandboxd/volume-meta.c): written by sandboxd,
 * read back as untrusted input. Whatever it is, the parser must not crash, must refuse with -EBADMSG or
 * accept a size within [VOLUME_SIZE_MIN, VOLUME_SIZE_MAX], and what it accepts must format back to text
 * that parses to the same values.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volume.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        VolumeMeta m = { .size = 1, .created_usec = 2 }, again;
        char buf[VOLUME_META_MAX];
        int r, n;

        r = volume_meta_parse((const char *) data, size, &m);
        if (r < 0) {
                ASSERT(r == -EBADMSG);
                ASSERT(m.size == 1 && m.created_usec == 2); /* untouched */
                return 0;
        }
        ASSERT(size <= VOLUME_META_MAX);
        ASSERT(m.size >= VOLUME_SIZE_MIN && m.size <= VOLUME_SIZE_MAX);
        n = volume_meta_format(&m, buf, sizeof buf);
        ASSERT(n > 0 && (size_t) n < sizeof buf);
        ASSERT(volume_meta_parse(buf, (size_t) n, &again) == 0);
        ASSERT(again.size == m.size && again.created_usec == m.created_usec);
        return 0;
}
