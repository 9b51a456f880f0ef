/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Messages for the caller in a buffer the caller owns (an "err, errlen" pair, a report's error[]): how
 * library code that does not log says what failed. A message is cut to fit; %m in one names the error
 * being reported, not whatever errno happens to hold.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

/* Format FMT into BUF (SIZE bytes; nothing is written when BUF is NULL or SIZE is 0); %m in FMT names
 * R, a negative errno. */
void errbuf_format(char *buf, size_t size, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void errbuf_formatv(char *buf, size_t size, int r, const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* errbuf_format(), then R: "return errbuf_set(err, errlen, -EINVAL, "...", ...);". A macro, so that the
 * compiler sees that what is returned is R (and that an out parameter is not needed after it). */
#define errbuf_set(buf, size, r, ...)                                             \
        ({                                                                        \
                int _errbuf_r = (r);                                              \
                errbuf_format((buf), (size), _errbuf_r, __VA_ARGS__);             \
                _errbuf_r;                                                        \
        })

/* The same, unless BUF holds a message already: the first failure, which the later ones follow from,
 * is the one reported. R must be negative (-EINVAL is returned otherwise). */
int errbuf_set_first(char *buf, size_t size, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int errbuf_set_firstv(char *buf, size_t size, int r, const char *fmt, va_list ap)
        __attribute__((format(printf, 4, 0)));
