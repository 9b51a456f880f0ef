/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "buf.h"
#include "macro.h"

int buf_put(Buf *b, const void *p, size_t n) {
        size_t max = b->max ? b->max : SIZE_MAX;
        if (b->size > max || n > max - b->size)
                return b->max ? -EFBIG : -ENOMEM;
        if (b->size + n > b->cap) {
                size_t ncap = MAX(b->cap > SIZE_MAX / 2 ? SIZE_MAX : b->cap * 2, MAX(b->size + n, (size_t) 256));
                uint8_t *d = realloc(b->data, ncap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = ncap;
        }
        if (n > 0)
                memcpy(b->data + b->size, p, n);
        b->size += n;
        return 0;
}
