/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for union_options_parse(), the sandbox-unionfs command line (mount(8) hands it to us, so
 * it is whatever an fstab line or a container engine wrote). The input is split on NUL bytes into
 * arguments after argv[0], each in a heap buffer of exactly its size. Logging is silenced. For every
 * accepted command line: a mount point, 1..UNION_MAX_LOWER non-empty lower layers, upperdir and
 * workdir both or neither, the numeric options in range, quota options only with an upper; and the lower layers, escaped again and
 * parsed once more, come back identical (escaping and unescaping agree).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "unionfs/options.h"
#include "fuzz.h"

#define FUZZ_MAX_INPUT 4096
#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        log_set_max_level(-1); /* below LOG_EMERG: nothing is printed */
        return 0;
}

/* "-o" "lowerdir=" + each layer with ',' ':' '\' escaped, joined by ':'. */
static char *escape_lowerdirs(const UnionOptions *o) {
        size_t n = strlen("lowerdir=") + 1;
        for (size_t i = 0; i < o->n_lowerdirs; i++)
                n += 2 * strlen(o->lowerdirs[i]) + 1;
        char *buf = malloc(n), *q = buf;
        ASSERT(buf);
        q = stpcpy(q, "lowerdir=");
        for (size_t i = 0; i < o->n_lowerdirs; i++) {
                if (i)
                        *q++ = ':';
                for (const char *p = o->lowerdirs[i]; *p; p++) {
                        if (*p == ',' || *p == ':' || *p == '\\')
                                *q++ = '\\';
                        *q++ = *p;
                }
        }
        *q = '\0';
        return buf;
}

static void check_lowerdirs_round_trip(const UnionOptions *o) {
        char *list = escape_lowerdirs(o);
        char *argv[] = { (char *) "sandbox-unionfs", (char *) "-o", list, (char *) "/mnt", NULL };
        UnionOptions p = {};
        ASSERT(union_options_parse(4, argv, &p) == 0);
        ASSERT(p.n_lowerdirs == o->n_lowerdirs);
        for (size_t i = 0; i < o->n_lowerdirs; i++)
                ASSERT(strcmp(p.lowerdirs[i], o->lowerdirs[i]) == 0);
        union_options_done(&p);
        free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *argv[MAX_ARGS + 2];
        int argc = 0;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        log_set_max_level(-1);

        argv[argc++] = strdup("sandbox-unionfs");
        for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
                const uint8_t *end = i < size ? memchr(data + i, '\0', size - i) : NULL;
                size_t n = end ? (size_t) (end - (data + i)) : size - i;
                char *a = malloc(n + 1);
                ASSERT(a);
                memcpy(a, data + i, n);
                a[n] = '\0';
                argv[argc++] = a;
                i += n + 1;
        }
        argv[argc] = NULL;

        UnionOptions o = {};
        int r = union_options_parse(argc, argv, &o);
        if (r == 0 && !o.show_help && !o.show_version) {
                ASSERT(o.mountpoint);
                ASSERT(o.n_lowerdirs >= 1 && o.n_lowerdirs <= UNION_MAX_LOWER);
                for (size_t i = 0; i < o.n_lowerdirs; i++)
                        ASSERT(o.lowerdirs[i] && o.lowerdirs[i][0] != '\0');
                ASSERT(!o.upperdir == !o.workdir);
                ASSERT(!o.upperdir || o.upperdir[0] != '\0');
                ASSERT(!o.workdir || o.workdir[0] != '\0');
                ASSERT(o.max_threads <= 64);
                ASSERT(o.timeout >= 0 && o.timeout <= 1e9); /* false for NaN too */
                ASSERT(o.uidmap.n_ranges <= IDMAP_MAX_RANGES && o.gidmap.n_ranges <= IDMAP_MAX_RANGES);
                ASSERT(!o.fuse_opts || o.fuse_opts[0] != '\0');
                /* a quota only with an upper layer, never 0, a notify fd never stdio */
                ASSERT(!(o.quota_bytes || o.quota_inodes || o.quota_notify) || o.upperdir);
                ASSERT(!o.quota_notify || o.quota_notify_fd >= 3);
                check_lowerdirs_round_trip(&o);
        } else if (r < 0)
                ASSERT(o.mountpoint == NULL && o.n_lowerdirs == 0); /* *ret untouched on failure */
        union_options_done(&o);

        for (int i = 0; i < argc; i++)
                free(argv[i]);
        return 0;
}
