/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A growable byte buffer for records the layer tools build in memory (digest records, merge plans).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct Buf {
        uint8_t *data;
        size_t size, cap;
        size_t max; /* refuse to grow past this many bytes (-EFBIG); 0: no bound but memory */
} Buf;

/* Append N bytes of P (P may be NULL when N is 0). */
int buf_put(Buf *b, const void *p, size_t n);

static inline void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf) { .max = b->max };
}
