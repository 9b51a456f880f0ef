/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Minimal logging for daemons and tools: messages go to stderr with a "<N>" syslog priority prefix
 * (parsed by journald when running under a service) or with "program: " for interactive tools.
 * The _errno variants set errno from a negative error code so that %m works, and return that code.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

void log_set_max_level(int level);
int log_get_max_level(void);
/* prefix_priority: "<N>" prefixes (daemon under a service manager) instead of "ident: ". */
void log_setup(const char *ident, bool prefix_priority);

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

#define log_full_errno(level, error, ...)                                                    \
        ({                                                                                     \
                int _l = (level), _e = (error);                                                \
                (_l <= log_get_max_level()) ? log_internal(_l, _e, __FILE__, __LINE__, __VA_ARGS__) \
                                            : -(_e < 0 ? -_e : _e);                            \
        })
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
