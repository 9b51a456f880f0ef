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

static void draw(Progress *p) {
        double b = (double) p->bytes;
        const char *unit = "B";
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        for (size_t i = 0; i < 4 && b >= 1024; i++) {
                b /= 1024;
                unit = units[i];
        }
        fprintf(stderr, "\r\033[K%s: %llu entries, %.1f %s", p->what, (unsigned long long) p->entries, b, unit);
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
