/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Copy-up, first half: build a complete copy of one lower-layer object under a unique temporary name in
 * the work directory. Moving it into the upper layer (renameat2), locking and invalidating caches are the
 * caller's business; so are whiteouts and redirects. Also removes work-dir leftovers.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stat;

/* On-disk owner of the copy. */
typedef struct CopyupIds {
        uid_t uid;
        gid_t gid;
} CopyupIds;

typedef enum CopyupFlags {
        COPYUP_NO_FSYNC = 1 << 0,  /* skip the fsync of regular file data (tests, fsync=0 mounts) */
        COPYUP_META_ONLY = 1 << 1, /* regular files: no data, the source's size as one hole (metacopy) */
        COPYUP_EMPTY = 1 << 2,     /* regular files: no data, size 0 (about to be truncated anyway) */
} CopyupFlags;

/* Size of the buffer copyup_make_temp() needs for the temporary name. */
#define COPYUP_TEMP_NAME_MAX 64

/* Create in WORK_FD (the workdir's "work" directory, O_PATH is fine) a complete copy of SRC_NAME (one
 * path component) inside SRC_DIRFD (an O_PATH directory fd in a lower layer).
 * ST is the caller's lstat of the source: if the object opened is not the same (dev, ino, type), -ESTALE.
 * The copy gets the same type, regular file data with its holes, a symlink's target, a device's rdev,
 * nothing of a directory's children; owner IDS (NULL: the source's), the mode of ST including
 * suid/sgid/sticky, every xattr except those xattr_is_private(name, PRIVATE_PREFIX) (NULL: copy all;
 * xattrs the destination refuses with EOPNOTSUPP are skipped), and atime/mtime from ST. Regular file
 * data is fsync'ed unless COPYUP_NO_FSYNC. The temporary name ("#cu-<pid>-<n>") goes to RET_NAME
 * (RET_NAME_SIZE >= COPYUP_TEMP_NAME_MAX). On failure nothing is left in the work directory.
 * Never follows a symlink. */
int copyup_make_temp(
                int src_dirfd,
                const char *src_name,
                const struct stat *st,
                int work_fd,
                const CopyupIds *ids,
                const char *private_prefix,
                unsigned flags,
                char *ret_name,
                size_t ret_name_size);

/* The same from SRC_FD, an O_PATH (or any) fd of the source itself, e.g. of an object that has no name
 * any more. ST must match it as above. */
int copyup_make_temp_fd(
                int src_fd,
                const struct stat *st,
                int work_fd,
                const CopyupIds *ids,
                const char *private_prefix,
                unsigned flags,
                char *ret_name,
                size_t ret_name_size);

/* Copy SIZE bytes of regular file data from SRC_FD (readable) to DST_FD (writable, empty), keeping holes,
 * and set DST_FD's size to SIZE (a trailing hole stays a hole). -ESTALE if the source is shorter than
 * SIZE. */
int copyup_data(int src_fd, int dst_fd, uint64_t size);

/* Copy every xattr of SRC_FD to DST_FD (both may be O_PATH) except those xattr_is_private(name,
 * PRIVATE_PREFIX); names the destination refuses with EOPNOTSUPP are skipped. */
int copyup_xattrs(int src_fd, int dst_fd, const char *private_prefix);

/* Remove the temporary object NAME from WORK_FD (a directory with everything in it, however deep).
 * Never follows a symlink: a symlink is removed as itself. See common/rmtree.h. */
int copyup_remove_temp(int work_fd, const char *name);

/* Remove everything inside WORK_FD (leftovers of a crash, at mount time), as copyup_remove_temp().
 * Keeps going after an error and returns the first one; WORK_FD's own mode is left alone. */
int copyup_clean_workdir(int work_fd);
