/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --stats FILE|fd:N: the sandbox's accounting as one JSON object, written atomically to a file or whole
 * to a descriptor. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"

typedef struct StatsTarget {
        const char *path;       /* when fd < 0 */
        int fd;                 /* --stats fd:N, else -EBADF */
} StatsTarget;

static inline const char *yes_no_json(bool b) {
        return b ? "true" : "false";
}

/* The JSON text of RES into BUF; -ENOBUFS if it does not fit. */
int stats_format(const SandboxResult *res, char *buf, size_t size);
int stats_write(const StatsTarget *t, const SandboxResult *res);
/* For a sandbox that never started: the status and why. */
int stats_write_error(const StatsTarget *t, int status, const char *message);
/* "fd:N" or the path, for messages. */
const char *stats_target_name(const StatsTarget *t, char *buf, size_t size);
