/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stderr logging; see log.h. Safe to call from several threads (one fprintf per message). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *log_ident = "sandbox";
static bool log_prefix_priority = false;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_setup(const char *ident, bool prefix_priority) {
        log_ident = ident;
        log_prefix_priority = prefix_priority;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        char buf[2048];
        va_list ap;
        int e = error < 0 ? -error : error;

        /* %m in fmt refers to the error we were given, not to whatever errno happens to be. */
        errno = e;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        if (log_prefix_priority)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else if (max_level >= LOG_DEBUG)
                fprintf(stderr, "%s: %s:%d: %s\n", log_ident, file, line, buf);
        else
                fprintf(stderr, "%s: %s\n", log_ident, buf);

        return -e;
}
