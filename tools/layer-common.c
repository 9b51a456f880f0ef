/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by sandbox-layer's verbs; see sandbox-layer.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fs.h"
#include "macro.h"
#include "sandbox-layer.h"

int layer_split_dest(const char *dest, char **ret_parent, char **ret_name) {
        _cleanup_free_ char *copy = strdup(dest);
        if (!copy)
                return -ENOMEM;
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/')
                copy[--l] = '\0';
        char *slash = strrchr(copy, '/');
        const char *name = slash ? slash + 1 : copy;
        if (!filename_is_valid(name))
                return -EINVAL;
        _cleanup_free_ char *n = strdup(name);
        if (!n)
                return -ENOMEM;
        if (slash)
                *slash = '\0';
        char *parent = strdup(!slash ? "." : slash == copy ? "/" : copy);
        if (!parent)
                return -ENOMEM;
        *ret_parent = parent;
        *ret_name = TAKE_PTR(n);
        return 0;
}

void layer_raise_nofile(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}
