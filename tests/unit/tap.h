/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tiny TAP producer for the unit tests: a table of cases, each a function returning 0 (pass),
 * TAP_SKIP (skip, with a reason set by tap_skip()) or -1 (fail, after a CHECK printed a "# file:line"
 * diagnostic). CHECK* macros return from the case on the first failed assertion. A skipped case
 * counts as a failure when SBX_TESTS_MUST_RUN=1. Header-only; everything is static.
 */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAP_SKIP 77

typedef struct TapTest {
        const char *name;
        int (*func)(void);
} TapTest;

static char tap_skip_reason[256];

static inline const char *tap_errname(long long r) {
        const char *s = r < 0 && r > -4096 ? strerrorname_np((int) -r) : NULL;
        return s ?: "-";
}

/* Record why the current case is skipped; use as "return tap_skip("needs root");". */
static inline int tap_skip(const char *reason) {
        snprintf(tap_skip_reason, sizeof tap_skip_reason, "%s", reason);
        return TAP_SKIP;
}

static inline bool tap_must_run(void) {
        const char *must = getenv("SBX_TESTS_MUST_RUN");
        return must && strcmp(must, "1") == 0;
}

#define CHECK(expr)                                                                            \
        do {                                                                                   \
                if (!(expr)) {                                                                 \
                        printf("# %s:%d: failed: %s\n", __FILE__, __LINE__, #expr);            \
                        return -1;                                                             \
                }                                                                              \
        } while (false)

/* Integers, including -errno results: the diagnostic names the errno on both sides. */
#define CHECK_EQ(a, b)                                                                         \
        do {                                                                                   \
                long long _ta = (long long) (a), _tb = (long long) (b);                        \
                if (_ta != _tb) {                                                              \
                        printf("# %s:%d: %s == %lld (%s), expected %s == %lld (%s)\n", __FILE__, \
                               __LINE__, #a, _ta, tap_errname(_ta), #b, _tb, tap_errname(_tb)); \
                        return -1;                                                             \
                }                                                                              \
        } while (false)

#define CHECK_U64(a, b)                                                                        \
        do {                                                                                   \
                unsigned long long _ta = (unsigned long long) (a), _tb = (unsigned long long) (b); \
                if (_ta != _tb) {                                                              \
                        printf("# %s:%d: %s == %llu, expected %s == %llu\n", __FILE__, __LINE__, \
                               #a, _ta, #b, _tb);                                              \
                        return -1;                                                             \
                }                                                                              \
        } while (false)

/* Strings; NULL is a value of its own ("(null)" in the diagnostic), equal only to NULL. */
#define CHECK_STREQ(a, b)                                                                      \
        do {                                                                                   \
                const char *_ta = (a), *_tb = (b);                                             \
                if ((!_ta || !_tb) ? _ta != _tb : strcmp(_ta, _tb) != 0) {                     \
                        printf("# %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
                               _ta ?: "(null)", _tb ?: "(null)");                              \
                        return -1;                                                             \
                }                                                                              \
        } while (false)

/* The program's scratch directory, "$TMPDIR/NAME-XXXXXX" (mode 0700) in BUF; on failure it prints
 * "Bail out!" and returns -1. */
static inline int tap_scratch_dir(char *buf, size_t size, const char *name) {
        const char *tmpdir = getenv("TMPDIR");
        int n = snprintf(buf, size, "%s/%s-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp", name);

        if (n < 0 || (size_t) n >= size) {
                printf("Bail out! scratch directory name too long (TMPDIR?)\n");
                return -1;
        }
        if (!mkdtemp(buf)) {
                printf("Bail out! mkdtemp %s: %m\n", buf);
                return -1;
        }
        return 0;
}

static inline int tap_make_removable(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        if (type == FTW_D)
                (void) chmod(path, 0700);
        return 0;
}

static inline void tap_remove_tree(const char *path);

static inline int tap_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        if (type == FTW_DNR) { /* unreadable, so not walked: make it readable, then walk it apart */
                if (chmod(path, 0700) < 0)
                        return -1;
                tap_remove_tree(path);
                return 0;
        }
        return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

/* Remove a scratch tree, whatever the cases left in it: symlinks are never followed (FTW_PHYS) and a
 * mount a failed case left behind is not entered (FTW_MOUNT); read-only directories (an archive's
 * modes) are made writable first, so this works unprivileged too. */
static inline void tap_remove_tree(const char *path) {
        (void) nftw(path, tap_make_removable, 16, FTW_PHYS | FTW_MOUNT);
        if (nftw(path, tap_remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                printf("# cleanup of %s failed: %m\n", path);
}

/* Run every case, print TAP, return the exit code (0, or 1 if any case failed). */
static inline int tap_run(const TapTest *tests, size_t n) {
        unsigned failed = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("1..%zu\n", n);
        for (size_t i = 0; i < n; i++) {
                tap_skip_reason[0] = '\0';
                int r = tests[i].func();
                if (r == TAP_SKIP && tap_must_run()) {
                        printf("not ok %zu - %s # skipped (%s) but SBX_TESTS_MUST_RUN=1\n", i + 1,
                               tests[i].name, tap_skip_reason);
                        failed++;
                } else if (r == TAP_SKIP)
                        printf("ok %zu - %s # SKIP %s\n", i + 1, tests[i].name, tap_skip_reason);
                else if (r == 0)
                        printf("ok %zu - %s\n", i + 1, tests[i].name);
                else {
                        printf("not ok %zu - %s\n", i + 1, tests[i].name);
                        failed++;
                }
        }
        return failed ? 1 : 0;
}

/* A case is a function test_NAME(); its TAP name is NAME. */
#define TAP_TEST(name) { #name, test_##name }
