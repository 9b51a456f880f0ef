/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See strv.h. */
#include <stdlib.h>

#include "strv.h"

void strv_free(char **l) {
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        if (l)
                while (l[n])
                        n++;
        return n;
}
