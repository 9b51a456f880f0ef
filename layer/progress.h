/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Progress of a long layer operation (bytes and entries) on one stderr line: drawn at the first update,
 * then at most 10 times a second, and only when stderr is a terminal: pipes and logs stay quiet.
 * Two forms: "WHAT: N entries, X MiB" (unpacking, copying) and "WHAT: X MiB of Y MiB" (downloads).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Progress {
        const char *what;       /* "digest", "import", ... */
        bool enabled;
        bool bytes_only;        /* a download: bytes (of total, when known), no entries */
        uint64_t total;
        uint64_t bytes, entries;
        uint64_t last_draw_ns;
        bool drawn;
} Progress;

void progress_init(Progress *p, const char *what);
/* A byte count of TOTAL (0: unknown), e.g. a download. */
void progress_init_bytes(Progress *p, const char *what, uint64_t total);
void progress_add(Progress *p, uint64_t bytes, uint64_t entries);
/* Clear the line (call before printing results or errors, and at the end). */
void progress_done(Progress *p);
