/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Confined path resolution; see fs.h. Library code: returns -errno, never logs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"

int open_beneath(int dirfd, const char *path, int flags, mode_t mode) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long r;

        if (!path || !*path)
                path = ".";
        do
                r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        while (r < 0 && errno == EAGAIN); /* a concurrent rename elsewhere; the walk is retried */
        return r < 0 ? -errno : (int) r;
}

int open_parent_beneath(int dirfd, const char *path, const char **ret_name) {
        const char *slash;

        if (!path || !*path || path[0] == '/')
                return -EINVAL;
        slash = strrchr(path, '/');
        if (!slash) {
                int fd = open_beneath(dirfd, ".", O_PATH | O_DIRECTORY, 0);
                if (fd >= 0)
                        *ret_name = path;
                return fd;
        }
        if (slash[1] == '\0')
                return -EINVAL;

        size_t n = (size_t) (slash - path);
        if (n >= PATH_MAX)
                return -ENAMETOOLONG;
        char buf[PATH_MAX];
        memcpy(buf, path, n);
        buf[n] = '\0';

        int fd = open_beneath(dirfd, buf, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0)
                *ret_name = slash + 1;
        return fd;
}

int read_fd_all(int fd, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, max + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return -EFBIG;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

int read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;

        fd = open_beneath(dirfd, path, O_RDONLY | O_NOCTTY, 0);
        if (fd < 0)
                return fd;
        return read_fd_all(fd, max, ret, ret_size);
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL; /* not a FIFO or a device: reading those could block or never end */
        return read_fd_all(fd, max, ret, ret_size);
}

int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        const char *name;
        char tmp[NAME_MAX + 1];
        int r;

        pfd = open_parent_beneath(dirfd, path, &name);
        if (pfd < 0)
                return pfd;
        if (snprintf(tmp, sizeof tmp, ".#%.200s.%ld", name, (long) getpid()) >= (int) sizeof tmp)
                return -ENAMETOOLONG;

        /* A real fd of the directory: fsync() of the rename below refuses O_PATH fds. */
        _cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, size);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (renameat(dfd, tmp, dfd, name) < 0) {
                r = -errno;
                goto fail;
        }
        (void) fsync(dfd);
        return 0;
fail:
        (void) unlinkat(dfd, tmp, 0);
        return r;
}

int path_split(const char *path, char **ret_parent, char **ret_name) {
        _cleanup_free_ char *copy = strdup(path), *name = NULL;
        if (!copy)
                return -ENOMEM;
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/')
                copy[--l] = '\0';
        char *slash = strrchr(copy, '/');
        if (!filename_is_valid(slash ? slash + 1 : copy))
                return -EINVAL;
        name = strdup(slash ? slash + 1 : copy);
        if (!name)
                return -ENOMEM;
        if (slash)
                *slash = '\0';
        char *parent = strdup(!slash ? "." : slash == copy ? "/" : copy);
        if (!parent)
                return -ENOMEM;
        *ret_parent = parent;
        *ret_name = TAKE_PTR(name);
        return 0;
}

int filename_is_valid(const char *name) {
        if (!name || !*name || streq(name, ".") || streq(name, ".."))
                return false;
        if (strchr(name, '/'))
                return false;
        return strlen(name) <= NAME_MAX;
}
