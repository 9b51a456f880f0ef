/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of unionfs/xattr.c and unionfs/copyup.c on a temporary directory, without FUSE. Each case
 * gets its own lower/, work/ and outside/ directories. Needs root (chown, mknod, trusted.* xattrs):
 * exits 77 otherwise, or fails if SBX_TESTS_MUST_RUN=1. Output is TAP.
 */
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "macro.h"
#include "tap.h"
#include "unionfs/copyup.h"
#include "unionfs/xattr.h"

#define SKIP 77
#define MiB ((off_t) 1024 * 1024)

static char tmp_root[512];
static char case_path[600];                    /* tmp_root/case<N> */
static int case_fd = -EBADF;                   /* O_PATH on case_path */
static int lower_fd = -EBADF, work_fd = -EBADF; /* O_PATH on its lower/ and work/ */
static const CopyupIds test_ids = { .uid = 1234, .gid = 5678 };

/* ---- helpers (test code: plain *at() calls are fine here) ---- */

static int write_at(int dirfd, const char *name, mode_t mode, const char *data) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        if (data && write(fd, data, strlen(data)) != (ssize_t) strlen(data))
                return -EIO;
        return RET_NERRNO(fchmod(fd, mode)); /* umask */
}

static ssize_t read_at(int dirfd, const char *name, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return RET_NERRNO(read(fd, buf, size));
}

static int pwrite_pattern(int fd, off_t off, size_t len, unsigned seed) {
        _cleanup_free_ char *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                buf[i] = (char) ('a' + (i * 7 + seed) % 26);
        return pwrite(fd, buf, len, off) == (ssize_t) len ? 0 : -EIO;
}

/* Byte-compare two regular files, read to EOF. */
static bool same_content(int a, int b) {
        static char x[MiB], y[MiB];
        for (off_t off = 0;; off += MiB) {
                ssize_t n = pread(a, x, sizeof x, off), m = pread(b, y, sizeof y, off);
                if (n != m || n < 0)
                        return false;
                if (n == 0)
                        return true;
                if (memcmp(x, y, (size_t) n) != 0)
                        return false;
        }
}

static int count_entries(int dirfd, const char *path) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, n = 0;

        fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return safe_close(fd), -errno;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        return n;
}

static bool ts_eq(struct timespec a, struct timespec b) {
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* lstat lower/SRC and copy it up into work/. */
static int copy(const char *src, const CopyupIds *ids, const char *prefix,
                char name[static COPYUP_TEMP_NAME_MAX]) {
        struct stat st;
        if (fstatat(lower_fd, src, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return copyup_make_temp(lower_fd, src, &st, work_fd, ids, prefix, 0, name, COPYUP_TEMP_NAME_MAX);
}

static ssize_t get_at(int dirfd, const char *name, const char *xname, void *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return xattr_get(fd, xname, buf, size);
}

static int set_times(int dirfd, const char *name) {
        const struct timespec ts[2] = { { 1234567890, 123456789 }, { 1500000000, 987654321 } };
        return RET_NERRNO(utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW));
}

/* ---- xattr ---- */

static int test_is_private(void) {
        CHECK(xattr_is_private("trusted.overlay.opaque", "trusted.overlay."));
        CHECK(xattr_is_private("user.overlay.redirect", "user.overlay."));
        CHECK(!xattr_is_private("trusted.overlayfoo", "trusted.overlay."));
        CHECK(!xattr_is_private("trusted.overla", "trusted.overlay."));
        CHECK(!xattr_is_private("user.overlay.opaque", "trusted.overlay."));
        CHECK(!xattr_is_private("trusted.overlay.opaque", NULL));
        return 0;
}

static bool list_has(const char *list, size_t size, const char *name) {
        for (const char *p = list; p < list + size; p += strlen(p) + 1)
                if (streq(p, name))
                        return true;
        return false;
}

/* The whole API on FD, with names in namespace NS ("user." or "trusted."). */
static int xattr_suite(int fd, const char *ns) {
        char a[64], b[64], buf[64];
        _cleanup_free_ char *v = NULL, *empty = NULL, *list = NULL;
        size_t size;
        ssize_t n;

        snprintf(a, sizeof a, "%stest.a", ns);
        snprintf(b, sizeof b, "%stest.b", ns);

        CHECK_EQ(xattr_set(fd, a, "v1", 2, XATTR_CREATE), 0);
        CHECK_EQ(xattr_set(fd, a, "v2", 2, XATTR_CREATE), -EEXIST);
        CHECK_EQ(xattr_set(fd, b, "v2", 2, XATTR_REPLACE), -ENODATA);
        CHECK_EQ(xattr_set(fd, b, "", 0, 0), 0);
        CHECK_EQ(xattr_get(fd, a, NULL, 0), 2);
        CHECK_EQ(xattr_get(fd, a, buf, 1), -ERANGE);
        CHECK_EQ(xattr_get(fd, a, buf, sizeof buf), 2);
        CHECK(memcmp(buf, "v1", 2) == 0);

        n = xattr_list(fd, buf, sizeof buf);
        CHECK(n > 0);
        CHECK(list_has(buf, (size_t) n, a) && list_has(buf, (size_t) n, b));
        CHECK_EQ(xattr_list(fd, buf, 1), -ERANGE);

        CHECK_EQ(xattr_get_malloc(fd, a, &v, &size), 0);
        CHECK_EQ(size, 2);
        CHECK(streq(v, "v1"));
        CHECK_EQ(xattr_get_malloc(fd, b, &empty, &size), 0);
        CHECK_EQ(size, 0);
        CHECK(empty[0] == '\0');
        CHECK_EQ(xattr_list_malloc(fd, &list, &size), 0);
        CHECK(list_has(list, size, a) && list_has(list, size, b));

        CHECK_EQ(xattr_remove(fd, a), 0);
        CHECK_EQ(xattr_remove(fd, a), -ENODATA);
        CHECK_EQ(xattr_get(fd, a, buf, sizeof buf), -ENODATA);
        CHECK_EQ(xattr_remove(fd, b), 0);
        return 0;
}

/* The xattr lands on the symlink itself, never on its target outside/t. */
static int symlink_suite(void) {
        _cleanup_close_ int fd = -EBADF;
        char buf[8];

        CHECK_EQ(write_at(case_fd, "outside/t", 0644, "x"), 0);
        CHECK_EQ(symlinkat("../outside/t", lower_fd, "l"), 0);
        fd = openat(lower_fd, "l", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        CHECK(fd >= 0);

        CHECK_EQ(xattr_suite(fd, "trusted."), 0);
        CHECK_EQ(xattr_set(fd, "trusted.keep", "k", 1, 0), 0);
        CHECK_EQ(get_at(case_fd, "outside/t", "trusted.keep", buf, sizeof buf), -ENODATA);
        CHECK_EQ(get_at(lower_fd, "l", "trusted.keep", buf, sizeof buf), 1);
        /* The VFS allows user.* on regular files and directories only. */
        CHECK_EQ(xattr_set(fd, "user.x", "1", 1, 0), -EPERM);
        return 0;
}

static int test_xattr_syscall_plain_fd(void) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        xattr_force_backend(XATTR_BACKEND_SYSCALL);
        CHECK_EQ(write_at(lower_fd, "f", 0644, "data"), 0);
        fd = openat(lower_fd, "f", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        r = (int) xattr_list(fd, NULL, 0);
        if (r == -ENOSYS) {
                printf("# the kernel has no *xattrat() syscalls\n");
                return SKIP;
        }
        CHECK_EQ(r, 0);
        return xattr_suite(fd, "user.");
}

/* Documents what AUTO relies on: an O_PATH fd either works with *xattrat() or gets EBADF. */
static int test_xattr_syscall_opath(void) {
        _cleanup_close_ int fd = -EBADF;
        char buf[8];
        int r;

        xattr_force_backend(XATTR_BACKEND_SYSCALL);
        CHECK_EQ(symlinkat("nowhere", lower_fd, "l"), 0);
        fd = openat(lower_fd, "l", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        CHECK(fd >= 0);
        r = xattr_set(fd, "trusted.t", "v", 1, 0);
        if (r == -ENOSYS)
                return SKIP;
        if (r == -EBADF) {
                printf("# this kernel refuses O_PATH fds in *xattrat(): AUTO uses /proc for them\n");
                CHECK_EQ(xattr_get(fd, "trusted.t", buf, sizeof buf), -EBADF);
                return 0;
        }
        CHECK_EQ(r, 0);
        return xattr_suite(fd, "trusted.");
}

static int test_xattr_proc_symlink(void) {
        xattr_force_backend(XATTR_BACKEND_PROC);
        return symlink_suite();
}

static int test_xattr_auto_symlink(void) {
        xattr_force_backend(XATTR_BACKEND_AUTO);
        return symlink_suite();
}

static int test_xattr_auto_other_types(void) {
        _cleanup_close_ int dir = -EBADF, fifo = -EBADF, bad = -EBADF;
        _cleanup_free_ char *too_big = NULL, *v = NULL, *list = NULL;
        char value[3000];
        size_t size;

        xattr_force_backend(XATTR_BACKEND_AUTO);
        CHECK_EQ(mkdirat(lower_fd, "d", 0755), 0);
        CHECK_EQ(mkfifoat(lower_fd, "p", 0644), 0);
        dir = openat(lower_fd, "d", O_PATH | O_DIRECTORY | O_CLOEXEC);
        fifo = openat(lower_fd, "p", O_PATH | O_CLOEXEC);
        CHECK(dir >= 0 && fifo >= 0);

        CHECK_EQ(xattr_suite(dir, "user."), 0);
        CHECK_EQ(xattr_suite(fifo, "trusted."), 0);
        CHECK_EQ(xattr_set(fifo, "user.x", "1", 1, 0), -EPERM);

        /* A value larger than the _malloc variants' first guess of nothing, and an empty list. */
        memset(value, 'v', sizeof value);
        CHECK_EQ(xattr_set(dir, "user.big", value, sizeof value, 0), 0);
        CHECK_EQ(xattr_get_malloc(dir, "user.big", &v, &size), 0);
        CHECK_EQ(size, sizeof value);
        CHECK(memcmp(v, value, sizeof value) == 0 && v[size] == '\0');
        too_big = calloc(1, 65537);
        CHECK(too_big);
        CHECK_EQ(xattr_set(dir, "user.big", too_big, 65537, 0), -E2BIG);
        CHECK_EQ(xattr_list_malloc(fifo, &list, &size), 0);
        CHECK_EQ(size, 0);

        /* A really bad fd is reported, not hidden by the /proc fallback. */
        bad = open("/dev/null", O_RDONLY | O_CLOEXEC);
        CHECK(bad >= 0);
        int n = bad;
        bad = safe_close(bad);
        CHECK_EQ(xattr_get(n, "user.x", NULL, 0), -EBADF);
        return 0;
}

/* ---- data ---- */

static int test_sparse_64m(void) {
        _cleanup_close_ int src = -EBADF, dst = -EBADF;
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat s, d;

        src = openat(lower_fd, "sparse", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CHECK(src >= 0);
        CHECK_EQ(pwrite_pattern(src, 0, 4096, 1), 0);
        CHECK_EQ(pwrite_pattern(src, 10 * MiB, (size_t) MiB, 2), 0);
        CHECK_EQ(pwrite_pattern(src, 40 * MiB + 8192, 65536, 3), 0);
        CHECK_EQ(pwrite_pattern(src, 64 * MiB - 4096, 4096, 4), 0);
        CHECK_EQ(fsync(src), 0);

        CHECK_EQ(copy("sparse", &test_ids, NULL, name), 0);
        dst = openat(work_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(dst >= 0);
        CHECK_EQ(fstat(src, &s), 0);
        CHECK_EQ(fstat(dst, &d), 0);
        CHECK_EQ(d.st_size, 64 * MiB);
        CHECK(same_content(src, dst));
        printf("# st_blocks source %lld, copy %lld\n", (long long) s.st_blocks, (long long) d.st_blocks);
        CHECK(d.st_blocks <= s.st_blocks + 256 && d.st_blocks + 256 >= s.st_blocks);
        /* The holes are where they were. */
        CHECK_EQ(lseek(dst, 4096, SEEK_DATA), 10 * MiB);
        CHECK_EQ(lseek(dst, 10 * MiB, SEEK_HOLE), 11 * MiB);
        return 0;
}

static int test_trailing_hole(void) {
        _cleanup_close_ int src = -EBADF, dst = -EBADF;
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat d;

        src = openat(lower_fd, "tail", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CHECK(src >= 0);
        CHECK_EQ(pwrite_pattern(src, 0, 8192, 5), 0);
        CHECK_EQ(ftruncate(src, 16 * MiB), 0);

        CHECK_EQ(copy("tail", NULL, NULL, name), 0);
        dst = openat(work_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(dst >= 0);
        CHECK_EQ(fstat(dst, &d), 0);
        CHECK_EQ(d.st_size, 16 * MiB);
        CHECK(d.st_blocks <= 64);
        CHECK_EQ(lseek(dst, 8192, SEEK_DATA), -1);
        CHECK_EQ(errno, ENXIO);
        CHECK(same_content(src, dst));
        return 0;
}

static int test_empty_file(void) {
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat d;

        CHECK_EQ(write_at(lower_fd, "empty", 0640, NULL), 0);
        CHECK_EQ(copy("empty", &test_ids, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISREG(d.st_mode));
        CHECK_EQ(d.st_size, 0);
        CHECK_EQ(d.st_blocks, 0);
        CHECK_EQ(d.st_mode & 07777, 0640);
        return 0;
}

/* COPYUP_META_ONLY: everything but the data, which stays one hole of the source's size (a metacopy
 * file); COPYUP_EMPTY: no data, size 0 (a copy about to be truncated). */
static int test_meta_only_and_empty(void) {
        _cleanup_close_ int src = -EBADF, dst = -EBADF;
        char name[COPYUP_TEMP_NAME_MAX], name2[COPYUP_TEMP_NAME_MAX];
        struct stat st, d;

        src = openat(lower_fd, "data", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        CHECK(src >= 0);
        CHECK_EQ(pwrite_pattern(src, 0, (size_t) (3 * MiB), 7), 0);
        CHECK_EQ(fsetxattr(src, "user.keep", "v", 1, 0), 0);
        CHECK_EQ(fstat(src, &st), 0);

        CHECK_EQ(copyup_make_temp(lower_fd, "data", &st, work_fd, &test_ids, NULL, COPYUP_META_ONLY, name,
                                  sizeof name), 0);
        dst = openat(work_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(dst >= 0);
        CHECK_EQ(fstat(dst, &d), 0);
        CHECK_EQ(d.st_size, 3 * MiB);
        CHECK(d.st_blocks * 512 <= 4096); /* no data, at most a block of xattrs */
        CHECK_EQ(lseek(dst, 0, SEEK_DATA), -1);
        CHECK_EQ(errno, ENXIO);
        CHECK_EQ(d.st_mode & 07777, 0640);
        CHECK_EQ(d.st_uid, test_ids.uid);
        CHECK_EQ(d.st_mtim.tv_sec, st.st_mtim.tv_sec);
        CHECK_EQ(d.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
        CHECK_EQ(fgetxattr(dst, "user.keep", NULL, 0), 1);

        CHECK_EQ(copyup_make_temp(lower_fd, "data", &st, work_fd, NULL, NULL, COPYUP_EMPTY, name2, sizeof name2), 0);
        CHECK_EQ(fstatat(work_fd, name2, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(d.st_size, 0);
        CHECK_EQ(d.st_blocks, 0);
        CHECK_EQ(d.st_mode & 07777, 0640);
        return 0;
}

/* copyup_make_temp_fd(): from an fd of the source itself, also once the source has no name. */
static int test_from_fd_unlinked(void) {
        _cleanup_close_ int src = -EBADF, path = -EBADF, dst = -EBADF;
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat st, other;

        src = openat(lower_fd, "gone", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(src >= 0);
        CHECK_EQ(pwrite_pattern(src, 0, 100000, 9), 0);
        path = openat(lower_fd, "gone", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        CHECK(path >= 0);
        CHECK_EQ(fstat(path, &st), 0);
        CHECK_EQ(unlinkat(lower_fd, "gone", 0), 0);

        CHECK_EQ(copyup_make_temp_fd(path, &st, work_fd, NULL, NULL, 0, name, sizeof name), 0);
        dst = openat(work_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(dst >= 0);
        CHECK(same_content(src, dst));
        /* the identity check holds here too */
        CHECK_EQ(write_at(lower_fd, "other", 0600, "x"), 0);
        CHECK_EQ(fstatat(lower_fd, "other", &other, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(copyup_make_temp_fd(path, &other, work_fd, NULL, NULL, 0, name, sizeof name), -ESTALE);
        return 0;
}

/* memfd (tmpfs) to ext4: copy_file_range() says EXDEV, so the read/write fallback runs. */
static int test_data_fallback(void) {
        _cleanup_close_ int src = -EBADF, dst = -EBADF, probe = -EBADF;
        off_t in = 0, out = 0;

        src = memfd_create("copyup-src", MFD_CLOEXEC);
        CHECK(src >= 0);
        CHECK_EQ(pwrite_pattern(src, 0, 300000, 6), 0);
        CHECK_EQ(pwrite_pattern(src, 5 * MiB, 4096, 7), 0);
        CHECK_EQ(ftruncate(src, 8 * MiB), 0);

        probe = openat(case_fd, "probe", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(probe >= 0);
        if (copy_file_range(src, &in, probe, &out, 1, 0) < 0)
                printf("# copy_file_range memfd -> %s: %s, fallback exercised\n", tmp_root,
                       strerrorname_np(errno));

        dst = openat(case_fd, "dst", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        CHECK(dst >= 0);
        CHECK_EQ(copyup_data(src, dst, 8 * MiB), 0);
        CHECK(same_content(src, dst));
        CHECK_EQ(lseek(dst, 300000 + 65536, SEEK_DATA), 5 * MiB);

        /* Asking for more than the source has is noticed. */
        CHECK_EQ(ftruncate(dst, 0), 0);
        CHECK_EQ(copyup_data(src, dst, 9 * MiB), -ESTALE);
        return 0;
}

/* ---- object types, owner, mode, xattrs, times ---- */

static int test_symlink(void) {
        char name[COPYUP_TEMP_NAME_MAX], target[PATH_MAX], got[PATH_MAX], buf[8];
        struct stat before, after, src, d;
        ssize_t n;

        CHECK_EQ(write_at(case_fd, "outside/target", 0644, "outside"), 0);
        snprintf(target, sizeof target, "%s/outside/target", case_path);
        CHECK_EQ(symlinkat(target, lower_fd, "link"), 0);
        CHECK_EQ(lsetxattr(target, "user.t", "t", 1, 0), 0); /* on the target, must not be copied */
        CHECK_EQ(fstatat(case_fd, "outside/target", &before, 0), 0);
        {
                _cleanup_close_ int fd = openat(lower_fd, "link", O_PATH | O_NOFOLLOW | O_CLOEXEC);
                CHECK(fd >= 0);
                CHECK_EQ(xattr_set(fd, "trusted.l", "l", 1, 0), 0);
        }
        CHECK_EQ(set_times(lower_fd, "link"), 0);
        CHECK_EQ(fstatat(lower_fd, "link", &src, AT_SYMLINK_NOFOLLOW), 0);

        CHECK_EQ(copy("link", &test_ids, "trusted.overlay.", name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISLNK(d.st_mode));
        n = readlinkat(work_fd, name, got, sizeof got - 1);
        CHECK_EQ(n, strlen(target));
        got[n] = '\0';
        CHECK(streq(got, target));
        CHECK_EQ(d.st_uid, 1234);
        CHECK_EQ(d.st_gid, 5678);
        CHECK(ts_eq(d.st_mtim, src.st_mtim) && ts_eq(d.st_atim, src.st_atim));
        CHECK_EQ(get_at(work_fd, name, "trusted.l", buf, sizeof buf), 1);
        CHECK_EQ(get_at(work_fd, name, "user.t", buf, sizeof buf), -ENODATA);

        /* The target is untouched: same content, owner, mode, times; no new xattrs. */
        CHECK_EQ(fstatat(case_fd, "outside/target", &after, 0), 0);
        CHECK_EQ(after.st_uid, before.st_uid);
        CHECK_EQ(after.st_mode, before.st_mode);
        CHECK(ts_eq(after.st_mtim, before.st_mtim) && ts_eq(after.st_ctim, before.st_ctim));
        CHECK_EQ(llistxattr(target, NULL, 0), (ssize_t) sizeof "user.t");
        return 0;
}

static int test_fifo_and_socket(void) {
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat src, d;

        CHECK_EQ(mknodat(lower_fd, "fifo", S_IFIFO | 0640, 0), 0);
        CHECK_EQ(fchmodat(lower_fd, "fifo", 01640, 0), 0);
        CHECK_EQ(set_times(lower_fd, "fifo"), 0);
        CHECK_EQ(fstatat(lower_fd, "fifo", &src, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(copy("fifo", &test_ids, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISFIFO(d.st_mode));
        CHECK_EQ(d.st_mode & 07777, 01640);
        CHECK_EQ(d.st_uid, 1234);
        CHECK_EQ(d.st_gid, 5678);
        CHECK(ts_eq(d.st_mtim, src.st_mtim) && ts_eq(d.st_atim, src.st_atim));

        CHECK_EQ(mknodat(lower_fd, "sock", S_IFSOCK | 0755, 0), 0);
        CHECK_EQ(copy("sock", NULL, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISSOCK(d.st_mode));
        CHECK_EQ(d.st_mode & 07777, 0755);
        return 0;
}

static int test_devices(void) {
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat d;

        CHECK_EQ(mknodat(lower_fd, "null", S_IFCHR | 0666, makedev(1, 3)), 0);
        CHECK_EQ(fchmodat(lower_fd, "null", 0666, 0), 0);
        CHECK_EQ(copy("null", &test_ids, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISCHR(d.st_mode));
        CHECK_EQ(d.st_rdev, makedev(1, 3));
        CHECK_EQ(d.st_mode & 07777, 0666);
        CHECK_EQ(d.st_uid, 1234);

        /* A whiteout-like 0/0 device too. */
        CHECK_EQ(mknodat(lower_fd, "wh", S_IFCHR | 0, makedev(0, 0)), 0);
        CHECK_EQ(copy("wh", NULL, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISCHR(d.st_mode) && d.st_rdev == makedev(0, 0));
        CHECK_EQ(d.st_mode & 07777, 0);

        CHECK_EQ(mknodat(lower_fd, "loop", S_IFBLK | 0660, makedev(7, 42)), 0);
        CHECK_EQ(copy("loop", NULL, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISBLK(d.st_mode));
        CHECK_EQ(d.st_rdev, makedev(7, 42));
        return 0;
}

static int test_directory(void) {
        char name[COPYUP_TEMP_NAME_MAX], buf[8];
        struct stat src, d;
        _cleanup_close_ int fd = -EBADF;

        CHECK_EQ(mkdirat(lower_fd, "dir", 0755), 0);
        CHECK_EQ(fchmodat(lower_fd, "dir", 03775, 0), 0);
        CHECK_EQ(write_at(lower_fd, "dir/child", 0644, "c"), 0);
        CHECK_EQ(mkdirat(lower_fd, "dir/sub", 0755), 0);
        fd = openat(lower_fd, "dir", O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(xattr_set(fd, "user.d", "dd", 2, 0), 0);
        CHECK_EQ(xattr_set(fd, "trusted.overlay.opaque", "y", 1, 0), 0);
        CHECK_EQ(set_times(lower_fd, "dir"), 0);
        CHECK_EQ(fstatat(lower_fd, "dir", &src, AT_SYMLINK_NOFOLLOW), 0);

        CHECK_EQ(copy("dir", &test_ids, "trusted.overlay.", name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISDIR(d.st_mode));
        CHECK_EQ(count_entries(work_fd, name), 0);
        CHECK_EQ(d.st_mode & 07777, 03775);
        CHECK_EQ(d.st_uid, 1234);
        CHECK_EQ(d.st_gid, 5678);
        CHECK(ts_eq(d.st_mtim, src.st_mtim) && ts_eq(d.st_atim, src.st_atim));
        CHECK_EQ(get_at(work_fd, name, "user.d", buf, sizeof buf), 2);
        CHECK_EQ(get_at(work_fd, name, "trusted.overlay.opaque", buf, sizeof buf), -ENODATA);
        return 0;
}

/* Owner from IDS, suid/sgid survive the chown, and so does security.capability (chown clears it). */
static int test_owner_mode_caps(void) {
        /* struct vfs_cap_data, revision 2, effective, permitted = CAP_NET_RAW (13) */
        const uint32_t caps[5] = { 0x02000001, 1u << 13, 0, 0, 0 };
        char name[COPYUP_TEMP_NAME_MAX];
        uint32_t got[5];
        struct stat d;

        CHECK_EQ(write_at(lower_fd, "suid", 06755, "#!/bin/sh\n"), 0);
        CHECK_EQ(write_at(lower_fd, "capped", 0755, "x"), 0);
        {
                _cleanup_close_ int fd = openat(lower_fd, "capped", O_PATH | O_CLOEXEC);
                CHECK(fd >= 0);
                CHECK_EQ(xattr_set(fd, "security.capability", caps, sizeof caps, 0), 0);
        }

        CHECK_EQ(copy("suid", &test_ids, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(d.st_mode & 07777, 06755);
        CHECK_EQ(d.st_uid, 1234);
        CHECK_EQ(d.st_gid, 5678);

        CHECK_EQ(copy("capped", &test_ids, NULL, name), 0);
        CHECK_EQ(get_at(work_fd, name, "security.capability", got, sizeof got), sizeof caps);
        CHECK(memcmp(got, caps, sizeof caps) == 0);
        return 0;
}

static int test_xattr_filter(void) {
        static const char *const all[] = { "user.a", "user.b", "trusted.other", "trusted.overlay.redirect",
                                           "user.overlay.opaque" };
        char name[COPYUP_TEMP_NAME_MAX], buf[32];
        _cleanup_close_ int fd = -EBADF;

        CHECK_EQ(write_at(lower_fd, "x", 0644, "x"), 0);
        fd = openat(lower_fd, "x", O_PATH | O_CLOEXEC);
        CHECK(fd >= 0);
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                CHECK_EQ(xattr_set(fd, all[i], all[i], i == 1 ? 0 : strlen(all[i]), 0), 0);

        CHECK_EQ(copy("x", NULL, "trusted.overlay.", name), 0);
        CHECK_EQ(get_at(work_fd, name, "user.a", buf, sizeof buf), 6);
        CHECK(memcmp(buf, "user.a", 6) == 0);
        CHECK_EQ(get_at(work_fd, name, "user.b", buf, sizeof buf), 0);
        CHECK_EQ(get_at(work_fd, name, "trusted.other", buf, sizeof buf), 13);
        CHECK_EQ(get_at(work_fd, name, "user.overlay.opaque", buf, sizeof buf), 19);
        CHECK_EQ(get_at(work_fd, name, "trusted.overlay.redirect", buf, sizeof buf), -ENODATA);

        CHECK_EQ(copy("x", NULL, "user.overlay.", name), 0);
        CHECK_EQ(get_at(work_fd, name, "user.overlay.opaque", buf, sizeof buf), -ENODATA);
        CHECK_EQ(get_at(work_fd, name, "trusted.overlay.redirect", buf, sizeof buf), 24);

        CHECK_EQ(copy("x", NULL, NULL, name), 0);
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                CHECK_EQ(get_at(work_fd, name, all[i], buf, sizeof buf), i == 1 ? 0 : strlen(all[i]));
        return 0;
}

/* A POSIX ACL is an xattr too (system.posix_acl_access); the copy's mode agrees with it. */
static int test_acl(void) {
        /* posix_acl_xattr v2: user::rwx user:1000:r-x group::r-x mask::r-x other::r-- */
        const struct { uint32_t version; struct { uint16_t tag, perm; uint32_t id; } e[5]; } acl = {
                2, { { 0x01, 7, UINT32_MAX }, { 0x02, 5, 1000 }, { 0x04, 5, UINT32_MAX },
                     { 0x10, 5, UINT32_MAX }, { 0x20, 4, UINT32_MAX } },
        };
        char name[COPYUP_TEMP_NAME_MAX], got[sizeof acl + 8];
        _cleanup_close_ int fd = -EBADF;
        struct stat d;
        int r;

        CHECK_EQ(write_at(lower_fd, "acl", 0600, "a"), 0);
        fd = openat(lower_fd, "acl", O_PATH | O_CLOEXEC);
        CHECK(fd >= 0);
        r = xattr_set(fd, "system.posix_acl_access", &acl, sizeof acl, 0);
        if (r == -EOPNOTSUPP) {
                printf("# no ACL support on %s\n", tmp_root);
                return SKIP;
        }
        CHECK_EQ(r, 0);
        CHECK_EQ(copy("acl", &test_ids, NULL, name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(d.st_mode & 07777, 0754);
        CHECK_EQ(get_at(work_fd, name, "system.posix_acl_access", got, sizeof got), sizeof acl);
        CHECK(memcmp(got, &acl, sizeof acl) == 0);
        return 0;
}

static int test_times(void) {
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat src, d;

        CHECK_EQ(write_at(lower_fd, "t", 0644, "some data"), 0);
        CHECK_EQ(set_times(lower_fd, "t"), 0);
        CHECK_EQ(fstatat(lower_fd, "t", &src, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(src.st_mtim.tv_nsec, 987654321); /* the filesystem keeps nanoseconds */
        CHECK_EQ(copyup_make_temp(lower_fd, "t", &src, work_fd, &test_ids, NULL, 0, name, sizeof name), 0);
        CHECK_EQ(fstatat(work_fd, name, &d, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(d.st_mtim.tv_sec, 1500000000);
        CHECK_EQ(d.st_mtim.tv_nsec, 987654321);
        CHECK_EQ(d.st_atim.tv_sec, 1234567890);
        CHECK_EQ(d.st_atim.tv_nsec, 123456789);
        return 0;
}

/* ---- races and failures ---- */

static int test_stale(void) {
        char name[COPYUP_TEMP_NAME_MAX];
        struct stat st;

        CHECK_EQ(write_at(lower_fd, "a", 0644, "old"), 0);
        CHECK_EQ(write_at(lower_fd, "b", 0644, "new"), 0);
        CHECK_EQ(fstatat(lower_fd, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(renameat(lower_fd, "b", lower_fd, "a"), 0); /* another file under the same name */
        CHECK_EQ(copyup_make_temp(lower_fd, "a", &st, work_fd, NULL, NULL, 0, name, sizeof name), -ESTALE);
        CHECK_EQ(count_entries(work_fd, "."), 0);

        /* Swapped for a symlink: not followed, ESTALE as well. */
        CHECK_EQ(fstatat(lower_fd, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(unlinkat(lower_fd, "a", 0), 0);
        CHECK_EQ(symlinkat("/etc/passwd", lower_fd, "a"), 0);
        CHECK_EQ(copyup_make_temp(lower_fd, "a", &st, work_fd, NULL, NULL, 0, name, sizeof name), -ESTALE);
        CHECK_EQ(count_entries(work_fd, "."), 0);

        CHECK_EQ(copyup_make_temp(lower_fd, "gone", &st, work_fd, NULL, NULL, 0, name, sizeof name),
                 -ENOENT);
        CHECK_EQ(copyup_make_temp(lower_fd, "../a", &st, work_fd, NULL, NULL, 0, name, sizeof name),
                 -EINVAL);
        CHECK_EQ(count_entries(work_fd, "."), 0);
        return 0;
}

/* A failure after the copy was created (ENOSPC on a 1 MiB tmpfs work dir) leaves nothing behind. */
static int failure_cleans_up(int small) {
        _cleanup_close_ int src = -EBADF;
        char name[COPYUP_TEMP_NAME_MAX] = "unchanged";
        struct stat st;
        int r;

        src = openat(lower_fd, "big", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CHECK(src >= 0);
        CHECK_EQ(pwrite_pattern(src, 0, 4 * (size_t) MiB, 8), 0);
        CHECK_EQ(fstat(src, &st), 0);

        r = copyup_make_temp(lower_fd, "big", &st, small, NULL, NULL, 0, name, sizeof name);
        CHECK_EQ(r, -ENOSPC);
        CHECK(streq(name, "unchanged"));
        CHECK_EQ(count_entries(small, "."), 0);
        return 0;
}

static int test_failure_cleans_up(void) {
        _cleanup_close_ int small = -EBADF;
        char p[sizeof case_path + 8];
        int r;

        /* A private mount namespace: the tmpfs goes away with this process, whatever happens. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                printf("# cannot make a mount namespace: %s\n", strerrorname_np(errno));
                return SKIP;
        }
        snprintf(p, sizeof p, "%s/small", case_path);
        CHECK_EQ(mkdir(p, 0700), 0);
        CHECK_EQ(mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m"), 0);
        small = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = small >= 0 ? failure_cleans_up(small) : -1;
        small = safe_close(small);
        CHECK_EQ(umount2(p, MNT_DETACH), 0);
        return r;
}

static int test_names(void) {
        char a[COPYUP_TEMP_NAME_MAX], b[COPYUP_TEMP_NAME_MAX], prefix[32], tiny[COPYUP_TEMP_NAME_MAX - 1];
        struct stat st;

        CHECK_EQ(write_at(lower_fd, "f", 0644, "f"), 0);
        CHECK_EQ(copy("f", NULL, NULL, a), 0);
        CHECK_EQ(copy("f", NULL, NULL, b), 0);
        CHECK(!streq(a, b));
        snprintf(prefix, sizeof prefix, "#cu-%ld-", (long) getpid());
        CHECK(strneq(a, prefix, strlen(prefix)) && strneq(b, prefix, strlen(prefix)));
        CHECK_EQ(count_entries(work_fd, "."), 2);

        memset(tiny, 'X', sizeof tiny);
        CHECK_EQ(fstatat(lower_fd, "f", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(copyup_make_temp(lower_fd, "f", &st, work_fd, NULL, NULL, 0, tiny, sizeof tiny), -EINVAL);
        CHECK(tiny[0] == 'X');
        CHECK_EQ(count_entries(work_fd, "."), 2);
        return 0;
}

/* ---- removal ---- */

/* work/<top>/a/b/c/file, a fifo, and a symlink to outside/ (which holds outside/keep). */
static int make_leftover(const char *top) {
        char p[256];
        int r;

        snprintf(p, sizeof p, "work/%s", top);
        if ((r = RET_NERRNO(mkdirat(case_fd, p, 0700))) < 0)
                return r;
        snprintf(p, sizeof p, "work/%s/a", top);
        if ((r = RET_NERRNO(mkdirat(case_fd, p, 0))) < 0) /* mode 0: root removes it anyway */
                return r;
        snprintf(p, sizeof p, "work/%s/a/b", top);
        if ((r = RET_NERRNO(mkdirat(case_fd, p, 0700))) < 0)
                return r;
        snprintf(p, sizeof p, "work/%s/a/b/file", top);
        if ((r = write_at(case_fd, p, 0600, "f")) < 0)
                return r;
        snprintf(p, sizeof p, "work/%s/a/fifo", top);
        if ((r = RET_NERRNO(mkfifoat(case_fd, p, 0600))) < 0)
                return r;
        snprintf(p, sizeof p, "work/%s/a/escape", top);
        return RET_NERRNO(symlinkat("../../../outside", case_fd, p));
}

static int test_remove_temp(void) {
        char buf[8];

        CHECK_EQ(write_at(case_fd, "outside/keep", 0644, "keep"), 0);
        CHECK_EQ(make_leftover("#cu-1-1"), 0);
        CHECK_EQ(symlinkat("../outside", work_fd, "#cu-1-2"), 0);
        CHECK_EQ(write_at(work_fd, "other", 0644, NULL), 0);

        CHECK_EQ(copyup_remove_temp(work_fd, "#cu-1-1"), 0);
        CHECK_EQ(copyup_remove_temp(work_fd, "#cu-1-2"), 0);
        CHECK_EQ(faccessat(work_fd, "#cu-1-1", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        CHECK_EQ(count_entries(work_fd, "."), 1); /* "other" stays */
        CHECK_EQ(count_entries(case_fd, "outside"), 1);
        CHECK_EQ(read_at(case_fd, "outside/keep", buf, sizeof buf), 4);
        CHECK(memcmp(buf, "keep", 4) == 0);
        CHECK_EQ(copyup_remove_temp(work_fd, "#cu-1-3"), -ENOENT);
        CHECK_EQ(copyup_remove_temp(work_fd, "../outside"), -EINVAL);
        CHECK_EQ(copyup_remove_temp(work_fd, ""), -EINVAL);
        return 0;
}

static int test_clean_workdir(void) {
        struct stat st;
        char buf[8];

        CHECK_EQ(write_at(case_fd, "outside/keep", 0644, "keep"), 0);
        CHECK_EQ(mkdirat(case_fd, "outside/sub", 0755), 0);
        CHECK_EQ(make_leftover("#cu-9-1"), 0);
        CHECK_EQ(make_leftover("#cu-9-2"), 0);
        CHECK_EQ(symlinkat("../outside", work_fd, "escape"), 0);
        CHECK_EQ(write_at(work_fd, "file", 0, "x"), 0);
        CHECK_EQ(mkfifoat(work_fd, "fifo", 0600), 0);

        CHECK_EQ(copyup_clean_workdir(work_fd), 0);
        CHECK_EQ(count_entries(work_fd, "."), 0);
        CHECK_EQ(fstatat(case_fd, "work", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISDIR(st.st_mode));
        CHECK_EQ(count_entries(case_fd, "outside"), 2);
        CHECK_EQ(read_at(case_fd, "outside/keep", buf, sizeof buf), 4);
        CHECK(memcmp(buf, "keep", 4) == 0);

        CHECK_EQ(copyup_clean_workdir(work_fd), 0); /* nothing to do */
        return 0;
}

/* ---- runner ---- */

typedef struct TestCase {
        const char *name;
        int (*func)(void);
} TestCase;

static const TestCase tests[] = {
        { "xattr_is_private", test_is_private },
        { "xattr via *xattrat() on an ordinary fd", test_xattr_syscall_plain_fd },
        { "xattr via *xattrat() on an O_PATH fd works or gives EBADF", test_xattr_syscall_opath },
        { "xattr via /proc on an O_PATH symlink (trusted.*)", test_xattr_proc_symlink },
        { "xattr auto backend on an O_PATH symlink (trusted.*)", test_xattr_auto_symlink },
        { "xattr auto backend on dir/fifo, big value, bad fd", test_xattr_auto_other_types },
        { "64 MiB sparse file: same content, holes kept", test_sparse_64m },
        { "trailing hole kept", test_trailing_hole },
        { "empty file", test_empty_file },
        { "copyup_data read/write fallback keeps holes; short source is ESTALE", test_data_fallback },
        { "metadata only (metacopy): one hole of the size; empty: size 0", test_meta_only_and_empty },
        { "from an fd of an unlinked source; identity checked", test_from_fd_unlinked },
        { "symlink: target, owner, times, xattrs; target not followed", test_symlink },
        { "fifo and socket", test_fifo_and_socket },
        { "char and block devices keep rdev", test_devices },
        { "directory: empty copy, mode, owner, xattrs, times", test_directory },
        { "owner from ids; suid/sgid and security.capability survive chown", test_owner_mode_caps },
        { "private xattrs skipped per prefix, others copied", test_xattr_filter },
        { "POSIX ACL copied, mode agrees", test_acl },
        { "atime/mtime to the nanosecond", test_times },
        { "source swapped after lstat: ESTALE, work dir empty", test_stale },
        { "failure after creation leaves nothing (ENOSPC)", test_failure_cleans_up },
        { "unique temp names; short name buffer refused", test_names },
        { "copyup_remove_temp: recursive, symlinks not followed", test_remove_temp },
        { "copyup_clean_workdir: everything, symlinks not followed", test_clean_workdir },
};

static int setup_case(unsigned i) {
        snprintf(case_path, sizeof case_path, "%s/case%u", tmp_root, i);
        if (mkdir(case_path, 0755) < 0)
                return -errno;
        case_fd = open(case_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (case_fd < 0)
                return -errno;
        if (mkdirat(case_fd, "lower", 0755) < 0 || mkdirat(case_fd, "work", 0700) < 0 ||
            mkdirat(case_fd, "outside", 0755) < 0)
                return -errno;
        lower_fd = openat(case_fd, "lower", O_PATH | O_DIRECTORY | O_CLOEXEC);
        work_fd = openat(case_fd, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return lower_fd < 0 || work_fd < 0 ? -errno : 0;
}

int main(void) {
        int failed = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (geteuid() != 0) {
                const char *must = getenv("SBX_TESTS_MUST_RUN");
                printf("1..0 # SKIP needs root (chown, mknod, trusted.* xattrs)\n");
                return must && streq(must, "1") ? 1 : SKIP;
        }
        umask(022);

        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-copyup") < 0)
                return 1;

        printf("1..%zu\n", ELEMENTSOF(tests));
        for (unsigned i = 0; i < ELEMENTSOF(tests); i++) {
                int r = setup_case(i);
                if (r < 0) {
                        printf("# setup: %s\n", strerrorname_np(-r));
                        r = -1;
                } else
                        r = tests[i].func();
                xattr_force_backend(XATTR_BACKEND_AUTO);
                lower_fd = safe_close(lower_fd);
                work_fd = safe_close(work_fd);
                case_fd = safe_close(case_fd);

                if (r == SKIP)
                        printf("ok %u - %s # SKIP\n", i + 1, tests[i].name);
                else if (r == 0)
                        printf("ok %u - %s\n", i + 1, tests[i].name);
                else {
                        printf("not ok %u - %s\n", i + 1, tests[i].name);
                        failed++;
                }
        }

        tap_remove_tree(tmp_root);
        return failed ? 1 : 0;
}
