/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xattrs through an fd that may be O_PATH; see xattr.h. Library code: returns -errno, never logs.
 *
 * The FUSE server holds O_PATH|O_NOFOLLOW fds. fgetxattr() & co. refuse those (EBADF) and the
 * l*xattr() calls want a path, which we never build. Two ways remain:
 *  - getxattrat()/setxattrat()/listxattrat()/removexattrat() (Linux 6.13) with AT_EMPTY_PATH. Up to at
 *    least 6.18 the kernel resolves the empty path with fdget(), which rejects O_PATH files with EBADF,
 *    so on those kernels they only help for ordinary fds;
 *  - the "/proc/self/fd/N" magic link with the *following* getxattr()/setxattr() variants: following a
 *    magic link lands on the inode the fd refers to and goes no further, even when that is a symlink
 *    (the l* variants would act on the magic link itself).
 * AUTO mode tries the syscalls and switches to /proc for good (one flag for the whole process) on ENOSYS,
 * or on EBADF for an fd that fcntl(F_GETFL) confirms is O_PATH; a really bad fd still gets -EBADF.
 * The /proc fallback needs /proc mounted; without it those calls fail with -ENOENT.
 */
#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "macro.h"
#include "xattr.h"

/* glibc 2.36 has neither wrappers nor numbers. These syscalls came after the tables of all
 * architectures were unified (Linux 5.1), so x86_64 and aarch64 share the numbers. */
#if !defined(SYS_getxattrat) && (defined(__x86_64__) || defined(__aarch64__))
#define SYS_setxattrat 463
#define SYS_getxattrat 464
#define SYS_listxattrat 465
#define SYS_removexattrat 466
#endif
#ifndef XATTR_SIZE_MAX
#define XATTR_SIZE_MAX 65536 /* <linux/limits.h> */
#endif
#ifndef XATTR_LIST_MAX
#define XATTR_LIST_MAX 65536
#endif

/* struct xattr_args of <linux/xattr.h> (6.13), missing from older headers: XATTR_ARGS_SIZE_VER0. */
typedef struct XattrArgs {
        uint64_t value;
        uint32_t size;
        uint32_t flags;
} XattrArgs;

#define PROC_FD_PATH_MAX (sizeof("/proc/self/fd/") + 11)

/* Size queries race with writers; retrying a few times is enough for anything but a writer loop. */
#define MALLOC_ATTEMPTS 8

static _Atomic int forced_backend = XATTR_BACKEND_AUTO;
/* Set once the syscalls proved unusable (ENOSYS, or O_PATH refused): from then on /proc only. */
static atomic_bool at_unusable = false;

void xattr_force_backend(XattrBackend backend) {
        assert(backend >= 0 && backend < _XATTR_BACKEND_MAX);
        forced_backend = backend;
        if (backend == XATTR_BACKEND_AUTO)
                at_unusable = false;
}

static bool try_syscall(void) {
#ifdef SYS_getxattrat
        int b = atomic_load(&forced_backend);

        if (b == XATTR_BACKEND_SYSCALL)
                return true;
        if (b == XATTR_BACKEND_PROC)
                return false;
        return !at_unusable;
#else
        return false;
#endif
}

/* After a failed *xattrat() with error E (positive): true if the call should go through /proc. */
static bool fall_back(int fd, int e) {
        int fl;

        if (forced_backend == XATTR_BACKEND_SYSCALL)
                return false;
        if (e == ENOSYS) {
                at_unusable = true;
                return true;
        }
        if (e != EBADF)
                return false;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || !(fl & O_PATH))
                return false; /* the fd itself is bad: /proc would not do better */
        at_unusable = true;
        return true;
}

static const char *proc_fd_path(char buf[static PROC_FD_PATH_MAX], int fd) {
        assert(fd >= 0);
        (void) snprintf(buf, PROC_FD_PATH_MAX, "/proc/self/fd/%i", fd);
        return buf;
}

/* Result of a call through /proc. A missing magic link means the fd is not open: report that as
 * f*xattr() would, not as ENOENT. (A missing /proc also gives ENOENT, for an fd that is open.) */
static ssize_t proc_result(ssize_t r, int fd) {
        if (r >= 0)
                return r;
        int e = errno;
        if (e == ENOENT && fcntl(fd, F_GETFD) < 0)
                return -EBADF;
        return -e;
}

ssize_t xattr_list(int path_fd, char *buf, size_t size) {
        char p[PROC_FD_PATH_MAX];

        assert(path_fd >= 0);
        assert(buf || size == 0);
#ifdef SYS_listxattrat
        if (try_syscall()) {
                long r = syscall(SYS_listxattrat, path_fd, "", AT_EMPTY_PATH, buf, size);
                if (r >= 0)
                        return r;
                int e = errno;
                if (!fall_back(path_fd, e))
                        return -e;
        }
#endif
        return proc_result(listxattr(proc_fd_path(p, path_fd), buf, size), path_fd);
}

ssize_t xattr_get(int path_fd, const char *name, void *buf, size_t size) {
        char p[PROC_FD_PATH_MAX];

        assert(path_fd >= 0);
        assert(name);
        assert(buf || size == 0);
        /* The kernel caps the buffer at XATTR_SIZE_MAX too; this keeps it within the u32 of XattrArgs. */
        size = MIN(size, (size_t) XATTR_SIZE_MAX);
#ifdef SYS_getxattrat
        if (try_syscall()) {
                XattrArgs args = { .value = (uintptr_t) buf, .size = (uint32_t) size };
                long r = syscall(SYS_getxattrat, path_fd, "", AT_EMPTY_PATH, name, &args, sizeof args);
                if (r >= 0)
                        return r;
                int e = errno;
                if (!fall_back(path_fd, e))
                        return -e;
        }
#endif
        return proc_result(getxattr(proc_fd_path(p, path_fd), name, buf, size), path_fd);
}

int xattr_set(int path_fd, const char *name, const void *value, size_t size, int flags) {
        char p[PROC_FD_PATH_MAX];

        assert(path_fd >= 0);
        assert(name);
        assert(value || size == 0);
        if (size > XATTR_SIZE_MAX)
                return -E2BIG; /* what the kernel says; checked here so the u32 below cannot truncate */
#ifdef SYS_setxattrat
        if (try_syscall()) {
                XattrArgs args = {
                        .value = (uintptr_t) value,
                        .size = (uint32_t) size,
                        .flags = (uint32_t) flags,
                };
                long r = syscall(SYS_setxattrat, path_fd, "", AT_EMPTY_PATH, name, &args, sizeof args);
                if (r >= 0)
                        return 0;
                int e = errno;
                if (!fall_back(path_fd, e))
                        return -e;
        }
#endif
        return (int) proc_result(setxattr(proc_fd_path(p, path_fd), name, value, size, flags), path_fd);
}

int xattr_remove(int path_fd, const char *name) {
        char p[PROC_FD_PATH_MAX];

        assert(path_fd >= 0);
        assert(name);
#ifdef SYS_removexattrat
        if (try_syscall()) {
                long r = syscall(SYS_removexattrat, path_fd, "", AT_EMPTY_PATH, name);
                if (r >= 0)
                        return 0;
                int e = errno;
                if (!fall_back(path_fd, e))
                        return -e;
        }
#endif
        return (int) proc_result(removexattr(proc_fd_path(p, path_fd), name), path_fd);
}

/* Query the size, allocate, read; NAME == NULL reads the list. */
static int read_malloc(int fd, const char *name, size_t max, char **ret, size_t *ret_size) {
        for (unsigned attempt = 0; attempt < MALLOC_ATTEMPTS; attempt++) {
                _cleanup_free_ char *buf = NULL;
                ssize_t n, k;
                size_t want;

                n = name ? xattr_get(fd, name, NULL, 0) : xattr_list(fd, NULL, 0);
                if (n < 0)
                        return (int) n;
                if ((size_t) n > max)
                        return -E2BIG;

                /* Ask for at least one byte: a size of 0 would be another size query, not a read. */
                want = MAX((size_t) n, (size_t) 1);
                buf = malloc(want + 1);
                if (!buf)
                        return -ENOMEM;
                k = name ? xattr_get(fd, name, buf, want) : xattr_list(fd, buf, want);
                if (k == -ERANGE)
                        continue; /* grew since the size query */
                if (k < 0)
                        return (int) k;

                buf[k] = '\0';
                *ret = TAKE_PTR(buf);
                if (ret_size)
                        *ret_size = (size_t) k;
                return 0;
        }
        return -EBUSY;
}

int xattr_get_malloc(int path_fd, const char *name, char **ret, size_t *ret_size) {
        assert(name);
        assert(ret);
        return read_malloc(path_fd, name, XATTR_SIZE_MAX, ret, ret_size);
}

int xattr_list_malloc(int path_fd, char **ret, size_t *ret_size) {
        assert(ret);
        return read_malloc(path_fd, NULL, XATTR_LIST_MAX, ret, ret_size);
}

bool xattr_is_private(const char *name, const char *prefix) {
        assert(name);
        if (!prefix || !strneq(name, prefix, strlen(prefix)))
                return false;
        /* "<prefix>overlay.X" is a user's "<prefix>X", escaped: it travels with the file. */
        return !strneq(name + strlen(prefix), "overlay.", 8);
}
