/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Extended attributes of any kind of inode (file, directory, symlink, device, fifo, socket), addressed by
 * a file descriptor that may be O_PATH. Symlinks are never followed: the fd names the inode.
 * This module knows nothing about layers; xattr_is_private() is its only piece of overlay policy.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* All return a size >= 0 or -errno. As with the syscalls, BUF may be NULL with SIZE 0 to ask for the
 * size; a too small buffer gives -ERANGE. */
ssize_t xattr_list(int path_fd, char *buf, size_t size);
ssize_t xattr_get(int path_fd, const char *name, void *buf, size_t size);
/* FLAGS: 0, XATTR_CREATE or XATTR_REPLACE. */
int xattr_set(int path_fd, const char *name, const void *value, size_t size, int flags);
int xattr_remove(int path_fd, const char *name);

/* Allocating variants: *ret is malloc'd and NUL-terminated for convenience (*ret_size excludes that
 * NUL; ret_size may be NULL). A list is the kernel's sequence of NUL-terminated names. If the value
 * keeps changing size between the size query and the read, -EBUSY after a few attempts. */
int xattr_get_malloc(int path_fd, const char *name, char **ret, size_t *ret_size);
int xattr_list_malloc(int path_fd, char **ret, size_t *ret_size);

/* True if NAME belongs to the overlay's private namespace PREFIX ("trusted.overlay." or
 * "user.overlay."). A NULL PREFIX makes nothing private. */
bool xattr_is_private(const char *name, const char *prefix);

/* How the calls reach the kernel. AUTO (the default) tries the *xattrat() syscalls and switches to
 * "/proc/self/fd/N" for good once they turn out unusable for O_PATH fds (see xattr.c). The others are
 * for tests: SYSCALL never falls back, PROC never tries the syscalls. Setting AUTO re-probes. */
typedef enum XattrBackend {
        XATTR_BACKEND_AUTO,
        XATTR_BACKEND_SYSCALL,
        XATTR_BACKEND_PROC,
        _XATTR_BACKEND_MAX,
        _XATTR_BACKEND_INVALID = -EINVAL,
} XattrBackend;

void xattr_force_backend(XattrBackend backend);
