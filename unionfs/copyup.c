/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Copy-up into the work directory; see copyup.h. Library code: returns -errno, never logs.
 *
 * copyup_make_temp() runs these steps, in this order for the reasons given:
 *  1. open the source O_PATH without following anything and check it is the object the caller lstat'ed
 *     (-ESTALE if it was swapped); read a symlink's target, reopen a regular file for reading;
 *  2. create the copy under a fresh name with mode 0600/0700, so nobody can use it while half-made;
 *  3. regular file data, keeping holes (COPYUP_META_ONLY: none, the size as a hole; COPYUP_EMPTY: none);
 *  4. owner: chown clears suid/sgid and security.capability, so it must come before both;
 *  5. xattrs (ACLs and security.capability included);
 *  6. mode with suid/sgid/sticky, after the ACLs (setting an ACL rewrites the group bits);
 *  7. atime/mtime, after everything that writes data (xattrs and chmod only change ctime);
 *  8. fsync of a regular file with its data (not of metadata alone, as overlayfs). fsync changes no
 *     timestamp, so doing it after 7 persists the times too.
 * A failure after step 2 removes the copy again.
 *
 * Devices, fifos and sockets are only ever held by O_PATH fds: opening a device would run its driver.
 * All *at() calls take the O_PATH directory fds as they are; only the work directory's contents are
 * listed, through a real fd.
 */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "copyup.h"
#include "fs.h"
#include "macro.h"
#include "rmtree.h"
#include "xattr.h"

/* Linux 6.6; glibc 2.36 lacks the number. Same value on both (unified syscall table). */
#if !defined(SYS_fchmodat2) && (defined(__x86_64__) || defined(__aarch64__))
#define SYS_fchmodat2 452
#endif

#define COPY_CHUNK ((size_t) 1 << 30)        /* per copy_file_range() call, to stay far from SSIZE_MAX */
#define RW_BUFFER_SIZE ((size_t) 128 * 1024) /* read/write fallback */
#define TEMP_NAME_ATTEMPTS 16
#define PROC_FD_PATH_MAX (sizeof("/proc/self/fd/") + 11)

static atomic_ulong temp_counter = 0;

static const char *proc_fd_path(char buf[static PROC_FD_PATH_MAX], int fd) {
        (void) snprintf(buf, PROC_FD_PATH_MAX, "/proc/self/fd/%i", fd);
        return buf;
}

/* Reopen a verified O_PATH fd for reading. The magic link resolves to the very inode the fd refers
 * to, so unlike a second lookup by name it cannot be raced into opening something else. */
static int fd_reopen_rdonly(int fd) {
        char p[PROC_FD_PATH_MAX];
        return RET_NERRNO(open(proc_fd_path(p, fd), O_RDONLY | O_NOCTTY | O_CLOEXEC));
}

/* chmod through an O_PATH fd: fchmodat2() takes AT_EMPTY_PATH; older kernels go through /proc. */
static int chmod_opath(int fd, mode_t mode) {
        char p[PROC_FD_PATH_MAX];

#ifdef SYS_fchmodat2
        if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) >= 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
#endif
        return RET_NERRNO(chmod(proc_fd_path(p, fd), mode));
}

static int write_all_at(int fd, const char *p, size_t n, off_t off) {
        while (n > 0) {
                ssize_t k = pwrite(fd, p, n, off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO; /* would loop forever */
                p += k;
                n -= (size_t) k;
                off += k;
        }
        return 0;
}

/* Copy [off, off + len) at the same offsets. copy_file_range() lets the filesystem reflink or copy in
 * the kernel; when it cannot (EXDEV across filesystems, EINVAL/EOPNOTSUPP where unsupported) we switch
 * to read/write for the rest of the file. */
static int copy_range(int src_fd, int dst_fd, off_t off, off_t len, bool *use_cfr, char **buf) {
        while (len > 0) {
                size_t chunk = (size_t) MIN((uint64_t) len, (uint64_t) COPY_CHUNK);
                ssize_t n;

                if (*use_cfr) {
                        loff_t in = off, out = off;

                        n = copy_file_range(src_fd, &in, dst_fd, &out, chunk, 0);
                        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
                                      errno == ENOSYS)) {
                                *use_cfr = false;
                                continue;
                        }
                } else {
                        if (!*buf) {
                                *buf = malloc(RW_BUFFER_SIZE);
                                if (!*buf)
                                        return -ENOMEM;
                        }
                        n = pread(src_fd, *buf, MIN(chunk, RW_BUFFER_SIZE), off);
                        if (n > 0) {
                                int r = write_all_at(dst_fd, *buf, (size_t) n, off);
                                if (r < 0)
                                        return r;
                        }
                }
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ESTALE; /* the source got shorter under us */
                off += n;
                len -= n;
        }
        return 0;
}

int copyup_data(int src_fd, int dst_fd, uint64_t size) {
        _cleanup_free_ char *buf = NULL;
        bool use_cfr = true;
        off_t end, off = 0;
        int r;

        assert_return(src_fd >= 0 && dst_fd >= 0, -EINVAL);
        if (size > (uint64_t) INT64_MAX)
                return -EFBIG;
        end = (off_t) size;

        /* A filesystem that shares extents (btrfs, XFS...) clones the whole file in one step, holes
         * and all; copy_file_range() below would clone range by range there too. */
        if (end > 0 && ioctl(dst_fd, FICLONE, src_fd) >= 0)
                off = end;

        /* Only the data extents are copied; the ftruncate() below turns the rest into holes. */
        while (off < end) {
                off_t data, hole;

                data = lseek(src_fd, off, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* nothing but a hole up to EOF */
                        if (errno != EINVAL && errno != EOPNOTSUPP)
                                return -errno;
                        data = off; /* no SEEK_DATA here: everything is data */
                        hole = end;
                } else {
                        if (data >= end)
                                break;
                        hole = lseek(src_fd, data, SEEK_HOLE);
                        if (hole < 0)
                                return -errno;
                }
                hole = MIN(hole, end);

                r = copy_range(src_fd, dst_fd, data, hole - data, &use_cfr, &buf);
                if (r < 0)
                        return r;
                off = hole;
        }

        /* A source shorter than SIZE would otherwise pass unnoticed: its tail would read as a hole. */
        struct stat st;
        if (fstat(src_fd, &st) < 0)
                return -errno;
        if (st.st_size < end)
                return -ESTALE;

        return RET_NERRNO(ftruncate(dst_fd, end));
}

int copyup_xattrs(int src_fd, int dst_fd, const char *private_prefix) {
        _cleanup_free_ char *list = NULL;
        size_t size;
        int r;

        assert_return(src_fd >= 0 && dst_fd >= 0, -EINVAL);

        r = xattr_list_malloc(src_fd, &list, &size);
        if (r == -EOPNOTSUPP)
                return 0; /* the source filesystem has no xattrs at all */
        if (r < 0)
                return r;

        for (const char *name = list; name < list + size; name += strlen(name) + 1) {
                _cleanup_free_ char *value = NULL;
                size_t value_size;

                if (!*name || xattr_is_private(name, private_prefix))
                        continue;

                r = xattr_get_malloc(src_fd, name, &value, &value_size);
                if (r == -ENODATA)
                        continue; /* removed since the listing */
                if (r < 0)
                        return r;

                r = xattr_set(dst_fd, name, value, value_size, 0);
                /* The destination does not support this namespace here (e.g. a filesystem without
                 * user xattrs): what kernel overlayfs does too, skip it. */
                if (r == -EOPNOTSUPP)
                        continue;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Step 1: an O_PATH fd on the source, verified to be the object of ST. */
static int open_source(int dirfd, const char *name, const struct stat *st, int *ret_fd,
                       struct stat *ret_st) {
        _cleanup_close_ int fd = -EBADF;
        struct stat now;

        fd = open_beneath(dirfd, name, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, &now) < 0)
                return -errno;
        if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || ((now.st_mode ^ st->st_mode) & S_IFMT))
                return -ESTALE;

        *ret_st = now;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Step 2: create NAME in WORK_FD with the type of ST and return an fd on it: writable for a regular
 * file, O_RDONLY for a directory, O_PATH for the others. -EEXIST if NAME exists. */
static int create_object(int work_fd, const char *name, const struct stat *st, const char *link_target,
                         int *ret_fd) {
        mode_t type = st->st_mode & S_IFMT;
        int fd, open_flags, r;

        switch (type) {
        case S_IFREG:
                fd = openat(work_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                            0600);
                if (fd < 0)
                        return -errno;
                *ret_fd = fd;
                return 0;
        case S_IFDIR:
                r = RET_NERRNO(mkdirat(work_fd, name, 0700));
                open_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
                break;
        case S_IFLNK:
                r = RET_NERRNO(symlinkat(link_target, work_fd, name));
                open_flags = O_PATH | O_NOFOLLOW;
                break;
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO:
        case S_IFSOCK:
                r = RET_NERRNO(mknodat(work_fd, name, type | 0600,
                                       (type == S_IFCHR || type == S_IFBLK) ? st->st_rdev : 0));
                open_flags = O_PATH | O_NOFOLLOW;
                break;
        default:
                return -EOPNOTSUPP;
        }
        if (r < 0)
                return r;

        fd = open_beneath(work_fd, name, open_flags, 0);
        if (fd < 0) {
                (void) unlinkat(work_fd, name, type == S_IFDIR ? AT_REMOVEDIR : 0);
                return fd;
        }
        *ret_fd = fd;
        return 0;
}

/* Steps 3 to 8 on the freshly created DST_FD. */
static int fill_object(int src_fd, int data_fd, int dst_fd, const struct stat *st, uint64_t size,
                       const CopyupIds *ids, const char *private_prefix, unsigned flags) {
        const struct timespec times[2] = { st->st_atim, st->st_mtim };
        mode_t type = st->st_mode & S_IFMT, mode = st->st_mode & 07777;
        int r;

        if (type == S_IFREG && (flags & COPYUP_META_ONLY)) {
                /* the data stays where it is: the size alone, as a hole */
                if (ftruncate(dst_fd, (off_t) size) < 0)
                        return -errno;
        } else if (type == S_IFREG && !(flags & COPYUP_EMPTY)) {
                r = copyup_data(data_fd, dst_fd, size);
                if (r < 0)
                        return r;
        }

        if (fchownat(dst_fd, "", ids ? ids->uid : st->st_uid, ids ? ids->gid : st->st_gid,
                     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;

        r = copyup_xattrs(src_fd, dst_fd, private_prefix);
        if (r < 0)
                return r;

        if (type == S_IFREG || type == S_IFDIR)
                r = RET_NERRNO(fchmod(dst_fd, mode));
        else if (type != S_IFLNK) /* a symlink's mode is fixed at 0777 */
                r = chmod_opath(dst_fd, mode);
        if (r < 0)
                return r;

        if (utimensat(dst_fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;

        /* Metadata alone is not fsync'ed, as overlayfs does with metacopy=on: a chown -R would pay one
         * flush per file for no data. The data copy that completes it is. */
        if (type == S_IFREG && !(flags & (COPYUP_NO_FSYNC | COPYUP_META_ONLY)) && fsync(dst_fd) < 0)
                return -errno;
        return 0;
}

/* Steps 2 to 8 from SRC_FD (O_PATH, verified to be NOW). */
static int make_temp_from(int src_fd, const struct stat *now, const struct stat *st, int work_fd,
                          const CopyupIds *ids, const char *private_prefix, unsigned flags, char *ret_name) {
        _cleanup_close_ int data_fd = -EBADF, dst_fd = -EBADF;
        char target[PATH_MAX] = "", name[COPYUP_TEMP_NAME_MAX];
        int r;

        if (S_ISLNK(now->st_mode)) {
                ssize_t n = readlinkat(src_fd, "", target, sizeof target);
                if (n < 0)
                        return -errno;
                if ((size_t) n >= sizeof target)
                        return -ENAMETOOLONG;
                target[n] = '\0';
        } else if (S_ISREG(now->st_mode) && !(flags & (COPYUP_META_ONLY | COPYUP_EMPTY))) {
                data_fd = fd_reopen_rdonly(src_fd);
                if (data_fd < 0)
                        return data_fd;
        }

        for (unsigned attempt = 1;; attempt++) {
                (void) snprintf(name, sizeof name, "#cu-%ld-%lu", (long) getpid(),
                                atomic_fetch_add(&temp_counter, 1));
                r = create_object(work_fd, name, st, target, &dst_fd);
                /* EEXIST: a leftover of an earlier process that had our pid; take the next number. */
                if (r != -EEXIST || attempt >= TEMP_NAME_ATTEMPTS)
                        break;
        }
        if (r < 0)
                return r;

        /* Data size from our own fstat: the caller's ST may be older, and must only match in identity. */
        r = fill_object(src_fd, data_fd, dst_fd, st, (uint64_t) now->st_size, ids, private_prefix, flags);
        if (r < 0) {
                dst_fd = safe_close(dst_fd);
                (void) copyup_remove_temp(work_fd, name);
                return r;
        }

        memcpy(ret_name, name, strlen(name) + 1);
        return 0;
}

int copyup_make_temp(
                int src_dirfd,
                const char *src_name,
                const struct stat *st,
                int work_fd,
                const CopyupIds *ids,
                const char *private_prefix,
                unsigned flags,
                char *ret_name,
                size_t ret_name_size) {

        _cleanup_close_ int src_fd = -EBADF;
        struct stat now = {};
        int r;

        assert_return(src_dirfd >= 0 && work_fd >= 0 && st, -EINVAL);
        assert_return(filename_is_valid(src_name), -EINVAL);
        assert_return(ret_name && ret_name_size >= COPYUP_TEMP_NAME_MAX, -EINVAL);

        r = open_source(src_dirfd, src_name, st, &src_fd, &now);
        if (r < 0)
                return r;
        return make_temp_from(src_fd, &now, st, work_fd, ids, private_prefix, flags, ret_name);
}

int copyup_make_temp_fd(
                int src_fd,
                const struct stat *st,
                int work_fd,
                const CopyupIds *ids,
                const char *private_prefix,
                unsigned flags,
                char *ret_name,
                size_t ret_name_size) {

        struct stat now;

        assert_return(src_fd >= 0 && work_fd >= 0 && st, -EINVAL);
        assert_return(ret_name && ret_name_size >= COPYUP_TEMP_NAME_MAX, -EINVAL);

        if (fstat(src_fd, &now) < 0)
                return -errno;
        if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || ((now.st_mode ^ st->st_mode) & S_IFMT))
                return -ESTALE;
        return make_temp_from(src_fd, &now, st, work_fd, ids, private_prefix, flags, ret_name);
}

int copyup_remove_temp(int work_fd, const char *name) {
        assert_return(work_fd >= 0, -EINVAL);
        assert_return(filename_is_valid(name), -EINVAL);
        return rm_tree_at(work_fd, name);
}

int copyup_clean_workdir(int work_fd) {
        assert_return(work_fd >= 0, -EINVAL);
        return rm_tree_children(work_fd);
}
