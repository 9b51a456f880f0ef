/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Each live sandbox gets its own range of 65536 host ids, so that no two sandboxes share an owner
 * on the host. A range is held by an flock() on a lock file in one directory that every runtime on
 * the host shares, whatever its state directory (/run/sandbox-ids): the kernel
 * drops it when the holder exits, even after kill -9, so a crash never leaks a range.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "runtime.h"

int idpool_acquire(const char *lock_dir, uint32_t base, uint32_t ranges, uint32_t *ret_first, int *ret_lock_fd) {
        _cleanup_close_ int dir = -EBADF;
        char path[4096];
        uint32_t start = 0;

        if (base < SANDBOX_IDS_PER_RANGE || ranges == 0 ||
            (uint64_t) base + (uint64_t) ranges * SANDBOX_IDS_PER_RANGE > UINT32_MAX)
                return -EINVAL; /* never host uid 0 or the system's own ids */

        snprintf(path, sizeof path, "%s", lock_dir);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        dir = open(path, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (dir < 0)
                return -errno;
        /* Start at a random range: concurrent starters rarely contend for the same lock. */
        (void) getrandom(&start, sizeof start, GRND_NONBLOCK);
        for (uint32_t i = 0; i < ranges; i++) {
                uint32_t k = (start + i) % ranges;
                char name[16];
                int fd;

                snprintf(name, sizeof name, "%u", k);
                fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        *ret_first = base + k * SANDBOX_IDS_PER_RANGE;
                        *ret_lock_fd = fd;
                        return 0;
                }
                int e = errno;
                close(fd);
                if (e != EWOULDBLOCK)
                        return -e;
        }
        return -EBUSY;
}
