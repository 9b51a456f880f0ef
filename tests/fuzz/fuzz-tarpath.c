/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the checks every tar member name passes before sandbox-layer import uses it:
 * tar_path_normalize() (archive paths are attacker-chosen) and tar_whiteout_decode() (the last
 * component). Input: the member path, cut at the first NUL as libarchive would hand it over.
 * Beyond "no crash", the properties import's safety rests on: a normalized path is relative, has no
 * empty, "." or ".." component, every component fits NAME_MAX and the whole fits PATH_MAX;
 * normalizing is idempotent; a path with a ".." component or a leading '/' is always refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer/tar.h"
#include "fuzz.h"

/* Independent of tar.c: does any component of S equal ".."? */
static bool has_dotdot(const char *s) {
        for (const char *p = s; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                p += n;
                p += strspn(p, "/");
        }
        return false;
}

static void check_clean(const char *s) {
        size_t len = strlen(s);
        ASSERT(len < PATH_MAX);
        if (len == 0)
                return; /* the layer root ("./") */
        ASSERT(s[0] != '/' && s[len - 1] != '/');
        for (const char *p = s; *p;) {
                size_t n = strcspn(p, "/");
                ASSERT(n >= 1 && n <= NAME_MAX);
                ASSERT(!(n == 1 && p[0] == '.'));
                ASSERT(!(n == 2 && p[0] == '.' && p[1] == '.'));
                p += n;
                if (*p == '/') {
                        p++;
                        ASSERT(*p != '/' && *p != '\0');
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 3 * PATH_MAX)
                return 0;
        char *path = strndup((const char *) data, size);
        ASSERT(path);

        char *norm = NULL;
        int r = tar_path_normalize(path, &norm);
        if (path[0] == '/' || has_dotdot(path))
                ASSERT(r == -EINVAL || r == -ENAMETOOLONG); /* refused, whichever check comes first */
        if (r < 0) {
                ASSERT(r == -EINVAL || r == -ENAMETOOLONG || r == -ENOMEM);
                ASSERT(norm == NULL);
        } else {
                check_clean(norm);
                char *again = NULL;
                ASSERT(tar_path_normalize(norm, &again) == 0);
                ASSERT(strcmp(again, norm) == 0);
                free(again);

                const char *last = strrchr(norm, '/');
                last = last ? last + 1 : norm;
                const char *target = NULL;
                TarWhiteout w = tar_whiteout_decode(last, &target);
                if (strncmp(last, ".wh.", 4) != 0)
                        ASSERT(w == TAR_WH_NONE);
                if (w == TAR_WH_FILE) {
                        ASSERT(target == last + 4);
                        ASSERT(*target && strcmp(target, ".") != 0 && strcmp(target, "..") != 0);
                        ASSERT(!strchr(target, '/'));
                }
                if (w == TAR_WH_OPAQUE)
                        ASSERT(strcmp(last, ".wh..wh..opq") == 0);
        }
        free(norm);
        free(path);
        return 0;
}
