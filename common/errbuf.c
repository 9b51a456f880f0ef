/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Caller-owned error messages; see errbuf.h. Library code: never logs. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "errbuf.h"
#include "macro.h"

void errbuf_formatv(char *buf, size_t size, int r, const char *fmt, va_list ap) {
        if (!buf || size == 0)
                return;
        errno = r < 0 ? -r : r; /* for %m */
        vsnprintf(buf, size, fmt, ap);
}

void errbuf_format(char *buf, size_t size, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        errbuf_formatv(buf, size, r, fmt, ap);
        va_end(ap);
}

int errbuf_set_firstv(char *buf, size_t size, int r, const char *fmt, va_list ap) {
        assert_return(r < 0, -EINVAL);
        if (buf && size > 0 && buf[0] == '\0')
                errbuf_formatv(buf, size, r, fmt, ap);
        return r;
}

int errbuf_set_first(char *buf, size_t size, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = errbuf_set_firstv(buf, size, r, fmt, ap);
        va_end(ap);
        return r;
}
