/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runs a fuzz target over saved inputs without libFuzzer, so every build (gcc too) replays the corpus
 * as a regression test: each argument is a file, or a directory whose regular files are all run, in
 * name order. Fails if an input cannot be read or if no input was found at all (a missing corpus
 * must not pass silently); a crash or sanitizer report in the target fails the test by itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define REPLAY_MAX_FILE (16u * 1024 * 1024)

static int run_file(int dirfd, const char *name, const char *shown) {
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        uint8_t *buf;
        size_t n = 0;

        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "%s: %m\n", shown);
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (st.st_size > REPLAY_MAX_FILE) {
                fprintf(stderr, "%s: larger than %u bytes\n", shown, REPLAY_MAX_FILE);
                close(fd);
                return -1;
        }
        /* exactly the input's size, so that ASan sees any read past its end */
        buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
        if (!buf) {
                close(fd);
                return -1;
        }
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        fprintf(stderr, "%s: short read\n", shown);
                        free(buf);
                        close(fd);
                        return -1;
                }
                n += (size_t) k;
        }
        close(fd);
        printf("running %s (%zu bytes)\n", shown, n);
        fflush(stdout);
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int run_dir(const char *path, unsigned *count) {
        DIR *d = opendir(path);
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        if (!d) {
                fprintf(stderr, "%s: %m\n", path);
                return -1;
        }
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                char **nn = realloc(names, (n + 1) * sizeof *names);
                if (!nn || !(nn[n] = strdup(de->d_name))) {
                        names = nn ? nn : names;
                        r = -1;
                        break;
                }
                names = nn;
                n++;
        }
        if (r == 0) {
                qsort(names, n, sizeof *names, cmp_names);
                for (size_t i = 0; i < n && r == 0; i++) {
                        char shown[4096];
                        snprintf(shown, sizeof shown, "%s/%s", path, names[i]);
                        r = run_file(dirfd(d), names[i], shown);
                        (*count)++;
                }
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        closedir(d);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIRECTORY...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: %m\n", argv[i]);
                        return 1;
                }
                if (S_ISDIR(st.st_mode))
                        r = run_dir(argv[i], &count);
                else {
                        r = run_file(AT_FDCWD, argv[i], argv[i]);
                        count++;
                }
                if (r < 0)
                        return 1;
        }
        if (count == 0) {
                fprintf(stderr, "No inputs found.\n");
                return 1;
        }
        printf("%u inputs ran\n", count);
        return 0;
}
