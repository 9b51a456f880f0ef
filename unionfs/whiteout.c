/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See whiteout.h. Pure string logic; fuzzed and unit tested. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "whiteout.h"

static bool component_ok(const char *s, size_t n) {
        if (n == 0 || n > NAME_MAX)
                return false;
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        return true;
}

int whiteout_redirect_decode(const char *value, size_t size, const char *parent_lower, char **ret) {
        if (size == 0 || size >= PATH_MAX || memchr(value, '\0', size))
                return -EINVAL;

        if (value[0] != '/') {
                /* relative: exactly one name inside the parent's lower directory */
                if (memchr(value, '/', size) || !component_ok(value, size))
                        return -EINVAL;
                size_t a = strlen(parent_lower);
                char *p = malloc(a + size + 2);
                if (!p)
                        return -ENOMEM;
                if (a) {
                        memcpy(p, parent_lower, a);
                        p[a++] = '/';
                }
                memcpy(p + a, value, size);
                p[a + size] = '\0';
                *ret = p;
                return 0;
        }

        /* absolute: "/a/b/c", every component clean, no empty components, not the root itself */
        const char *s = value + 1, *end = value + size;
        if (s == end)
                return -EINVAL;
        for (const char *c = s; c < end;) {
                const char *slash = memchr(c, '/', (size_t) (end - c));
                size_t n = slash ? (size_t) (slash - c) : (size_t) (end - c);
                if (!component_ok(c, n))
                        return -EINVAL;
                c += n + (slash ? 1 : 0);
                if (slash && c == end)
                        return -EINVAL; /* trailing '/' */
        }
        char *p = strndup(s, (size_t) (end - s));
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int whiteout_redirect_encode(const char *lower_path, char **ret, size_t *ret_size) {
        size_t n = strlen(lower_path);
        if (n == 0 || n + 1 >= PATH_MAX)
                return -EINVAL;
        char *p = malloc(n + 2);
        if (!p)
                return -ENOMEM;
        p[0] = '/';
        memcpy(p + 1, lower_path, n + 1);
        *ret = p;
        *ret_size = n + 1;
        return 0;
}
