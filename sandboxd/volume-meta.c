/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A volume's meta file (volume.h): written by sandboxd, read back as untrusted input (fuzz-volume-meta).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "volume.h"

#define VOLUME_META_MAGIC "sandbox-volume 1"

int volume_meta_parse(const char *data, size_t size, VolumeMeta *ret) {
        VolumeMeta m = {};
        bool magic = false, have_size = false, have_created = false;
        char line[128];

        if (!data || !ret || size == 0 || size > VOLUME_META_MAX || memchr(data, '\0', size))
                return -EBADMSG;
        if (data[size - 1] != '\n')
                return -EBADMSG;
        for (size_t off = 0; off < size;) {
                const char *nl = memchr(data + off, '\n', size - off);
                size_t n = (size_t) (nl - (data + off));
                const char *value;
                uint64_t v;

                if (n >= sizeof line)
                        return -EBADMSG;
                memcpy(line, data + off, n);
                line[n] = '\0';
                off += n + 1;
                if (!magic) {
                        if (strcmp(line, VOLUME_META_MAGIC) != 0)
                                return -EBADMSG;
                        magic = true;
                        continue;
                }
                if (strncmp(line, "size ", 5) == 0) {
                        value = line + 5;
                        if (have_size || safe_atou64(value, &v) < 0 || v < VOLUME_SIZE_MIN || v > VOLUME_SIZE_MAX)
                                return -EBADMSG;
                        m.size = v;
                        have_size = true;
                } else if (strncmp(line, "created ", 8) == 0) {
                        value = line + 8;
                        if (have_created || safe_atou64(value, &v) < 0)
                                return -EBADMSG;
                        m.created_usec = v;
                        have_created = true;
                } else
                        return -EBADMSG;
        }
        if (!magic || !have_size || !have_created)
                return -EBADMSG;
        *ret = m;
        return 0;
}

int volume_meta_format(const VolumeMeta *m, char *buf, size_t size) {
        int n;

        if (!m || m->size < VOLUME_SIZE_MIN || m->size > VOLUME_SIZE_MAX)
                return -EINVAL;
        n = snprintf(buf, size, VOLUME_META_MAGIC "\nsize %llu\ncreated %llu\n", (unsigned long long) m->size,
                     (unsigned long long) m->created_usec);
        return n < 0 || (size_t) n >= size ? -ENOBUFS : n;
}
