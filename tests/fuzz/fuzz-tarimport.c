/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for a whole sandbox-layer import: the input is an archive (plain, gzip or zstd: what
 * libarchive's decoder makes of it) unpacked by tar_import() into a private scratch directory, with
 * small bounds (1 MiB uncompressed, 256 entries, 64 KiB of directory metadata) so every input runs
 * fast and the bounds are reached often. Beyond "no crash, no leak", the properties import's safety
 * rests on: a failure says why and leaves nothing (no DEST, no temporary directory); a success leaves
 * exactly DEST, holding at most the bound of entries and of file data (counted for files stored whole);
 * nothing ever appears beside the parent directory.
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
#include "layer/ovl.h"
#include "layer/tar.h"
#include "fuzz.h"

#define MAX_SIZE (UINT64_C(1) << 20)
#define MAX_ENTRIES UINT64_C(256)

static int scratch_fd = -1;

static void scratch_remove(void) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", scratch_fd);
        char real[4096];
        ssize_t n = readlink(path, real, sizeof real - 1);
        (void) rm_tree_children(scratch_fd);
        if (n > 0) {
                real[n] = '\0';
                (void) rmdir(real);
        }
}

static int scratch(void) {
        if (scratch_fd < 0) {
                const char *tmp = getenv("TMPDIR");
                char path[4096];
                snprintf(path, sizeof path, "%s/fuzz-tarimport-XXXXXX", tmp && *tmp ? tmp : "/tmp");
                ASSERT(mkdtemp(path));
                scratch_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                ASSERT(scratch_fd >= 0);
                atexit(scratch_remove);
        }
        return scratch_fd;
}

static size_t count_names(int dirfd, const char *only) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        size_t n = 0;
        ASSERT(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        ASSERT(!only || strcmp(de->d_name, only) == 0);
                        n++;
                }
        closedir(d);
        return n;
}

/* Objects, and bytes of files stored whole, below DIR_FD, without following anything. */
static void tally(int dir_fd, uint64_t *objects, uint64_t *bytes) {
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        ASSERT(d);
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                ASSERT(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
                (*objects)++;
                /* File data: sizes of files stored whole (a sparse file's size is not its data; a
                 * hard link's data is counted once, with its first name... or never, so skip those). */
                if (S_ISREG(st.st_mode) && st.st_nlink == 1 && (uint64_t) st.st_blocks * 512 >= (uint64_t) st.st_size)
                        *bytes += (uint64_t) st.st_size;
                if (S_ISDIR(st.st_mode)) {
                        (void) fchmodat(dirfd(d), de->d_name, 0700, 0);
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        ASSERT(sub >= 0);
                        tally(sub, objects, bytes);
                        close(sub);
                }
        }
        closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > (256U << 10))
                return 0;
        int root = scratch();
        ASSERT(mkdirat(root, "parent", 0700) == 0);
        int parent = openat(root, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int in = memfd_create("archive", MFD_CLOEXEC);
        ASSERT(parent >= 0 && in >= 0);
        ASSERT(size == 0 || write(in, data, size) == (ssize_t) size);
        ASSERT(lseek(in, 0, SEEK_SET) == 0);

        TarImportOptions o = {
                .ovl_ns = OVL_NS_USER,
                .limits = { .max_size = MAX_SIZE, .max_entries = MAX_ENTRIES, .max_meta = 64 << 10 },
        };
        TarReport rep = {};
        int r = tar_import(in, parent, "dest", &o, &rep);
        close(in);
        if (r < 0) {
                ASSERT(rep.error[0] != '\0');
                ASSERT(count_names(parent, NULL) == 0);
        } else {
                ASSERT(count_names(parent, "dest") == 1);
                int dest = openat(parent, "dest", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                uint64_t objects = 0, bytes = 0;
                ASSERT(dest >= 0);
                (void) fchmod(dest, 0700);
                tally(dest, &objects, &bytes);
                close(dest);
                ASSERT(objects <= MAX_ENTRIES);
                ASSERT(bytes <= MAX_SIZE);
        }
        close(parent);
        ASSERT(rm_tree_at(root, "parent") == 0);
        ASSERT(count_names(root, NULL) == 0);
        return 0;
}
