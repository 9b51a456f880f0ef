/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Path resolution that cannot leave a directory: every lookup below a directory fd goes through
 * openat2() with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so "..", absolute
 * paths and symlinks (planted, or swapped in by a concurrent rename) all fail instead of escaping.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Open PATH beneath DIRFD; "" or "." opens DIRFD's own directory. O_CLOEXEC is always added.
 * A trailing symlink is only returned with O_PATH|O_NOFOLLOW; any other symlink fails with -ELOOP. */
int open_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* Open the parent directory of PATH (O_PATH|O_DIRECTORY) beneath DIRFD and point *ret_name at the
 * last component inside PATH. PATH must be relative, non-empty and not end in '/'. */
int open_parent_beneath(int dirfd, const char *path, const char **ret_name);

/* Read FD from where it is to its end, at most MAX bytes (-EFBIG beyond), into a malloc'd buffer with a
 * NUL after the data; RET_SIZE (may be NULL) gets the data's size. */
int read_fd_all(int fd, size_t max, char **ret, size_t *ret_size);

/* Write all SIZE bytes of DATA to FD, going on after short writes and EINTR. */
int write_all(int fd, const void *data, size_t size);

/* Read a whole small file (at most MAX bytes) opened beneath DIRFD. */
int read_file_at(int dirfd, const char *path, size_t max, char **ret, size_t *ret_size);

/* Read a whole small regular file named by an ordinary path (an administrator's, e.g. a config). */
int read_file(const char *path, size_t max, char **ret, size_t *ret_size);

/* Write DATA to PATH beneath DIRFD via a temporary name, fsync, and rename over PATH. */
int write_file_atomic_at(int dirfd, const char *path, const void *data, size_t size, mode_t mode);

/* Split PATH, a user-given path naming an entry, into its parent directory ("." when PATH has no '/',
 * "/" at the top) and its last component, both malloc'ed. Trailing slashes are ignored, as mkdir(1)
 * does; -EINVAL when the last component is not a valid name (empty, ".", ".."). */
int path_split(const char *path, char **ret_parent, char **ret_name);

/* True if NAME is a single valid path component: not empty, not "." or "..", no '/'. */
int filename_is_valid(const char *name);
