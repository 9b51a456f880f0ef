/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

void progress_init(Progress *p, const char *what) {
        /* last_draw_ns 0: the first update draws at once, so the line appears however fast the machine. */
        *p = (Progress) { .what = what, .enabled = isatty(STDERR_FILENO) == 1 };
}

void progress_init_bytes(Progress *p, const char *what, uint64_t total) {
        progress_init(p, what);
        p->bytes_only = true;
        p->total = total;
}

static const char *scaled(uint64_t bytes, double *ret) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        const char *unit = "B";
        double b = (double) bytes;
        for (size_t i = 0; i < 4 && b >= 1024; i++) {
                b /= 1024;
                unit = units[i];
        }
        *ret = b;
        return unit;
}

static void draw(Progress *p) {
        double b, t;
        const char *unit = scaled(p->bytes, &b);
        if (!p->bytes_only)
                fprintf(stderr, "\r\033[K%s: %llu entries, %.1f %s", p->what, (unsigned long long) p->entries, b,
                        unit);
        else if (p->total > 0) {
                const char *tunit = scaled(p->total, &t);
                fprintf(stderr, "\r\033[K%s: %.1f %s of %.1f %s", p->what, b, unit, t, tunit);
        } else
                fprintf(stderr, "\r\033[K%s: %.1f %s", p->what, b, unit);
        fflush(stderr);
        p->drawn = true;
}

void progress_add(Progress *p, uint64_t bytes, uint64_t entries) {
        p->bytes += bytes;
        p->entries += entries;
        if (!p->enabled)
                return;
        uint64_t t = now_ns();
        if (p->drawn && t - p->last_draw_ns < 100000000u)
                return;
        p->last_draw_ns = t;
        draw(p);
}

void progress_done(Progress *p) {
        if (p->drawn) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                p->drawn = false;
        }
}
