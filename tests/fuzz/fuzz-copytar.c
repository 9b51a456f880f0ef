/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the stream `sandboxctl cp` unpacks (copy/copytar.c's copytar_unpack(), what the
 * sandbox-copy helper runs on a client's bytes inside a sandbox, and sandboxctl on a sandbox's bytes on
 * the host): the input is the tar stream, unpacked into an existing directory DEST of a private scratch
 * directory, with a small entry bound (256). Beyond "no crash, no leak", the property the copy's safety
 * rests on: nothing ever appears in the scratch directory beside DEST, whatever the names, links and
 * symlinks of the stream; a failure says why.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/rmtree.h"
#include "copy/copytar.h"
#include "fuzz.h"

static int scratch_fd = -1;
static char scratch_path[4096];

static void scratch_remove(void) {
        (void) rm_tree_children(scratch_fd);
        (void) rmdir(scratch_path);
}

static int scratch(void) {
        if (scratch_fd < 0) {
                const char *tmp = getenv("TMPDIR");
                snprintf(scratch_path, sizeof scratch_path, "%s/fuzz-copytar-XXXXXX", tmp && *tmp ? tmp : "/tmp");
                ASSERT(mkdtemp(scratch_path));
                scratch_fd = open(scratch_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                ASSERT(scratch_fd >= 0);
                atexit(scratch_remove);
        }
        return scratch_fd;
}

/* The names in DIRFD, which must be exactly ONLY. */
static void only_name(int dirfd, const char *only) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        size_t n = 0;
        ASSERT(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        if (strcmp(de->d_name, only) != 0)
                                fprintf(stderr, "unexpected '%s' beside DEST\n", de->d_name);
                        ASSERT(strcmp(de->d_name, only) == 0);
                        n++;
                }
        closedir(d);
        ASSERT(n == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int dir = scratch(), in;
        char dest[4200], err[COPYTAR_ERROR_MAX] = "";
        CopyTarOptions o = { .max_entries = 256 };
        CopyTarReport rep = {};

        if (size > (1u << 20))
                return 0;
        (void) rm_tree_children(dir);
        ASSERT(mkdirat(dir, "dest", 0755) == 0);
        in = memfd_create("fuzz-copytar", MFD_CLOEXEC);
        ASSERT(in >= 0);
        ASSERT(write(in, data, size) == (ssize_t) size);
        ASSERT(lseek(in, 0, SEEK_SET) == 0);
        snprintf(dest, sizeof dest, "%s/dest", scratch_path);
        int r = copytar_unpack(in, dest, &o, &rep, err, sizeof err);
        close(in);
        if (r < 0)
                ASSERT(err[0]);
        else
                ASSERT(rep.entries >= 1 && rep.entries <= 256);
        only_name(dir, "dest");
        return 0;
}
