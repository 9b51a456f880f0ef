/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of common/fs.c: confined path resolution (open_beneath, open_parent_beneath) must refuse
 * "..", absolute paths and every symlink (in the middle, at the end), except that O_PATH|O_NOFOLLOW
 * opens a final symlink itself; read_file_at's size limit; path_split; write_file_atomic_at's rename over the
 * target (never through a symlink) without leaving its temporary file behind; filename_is_valid.
 * Runs unprivileged in a private temporary directory laid out as:
 *   T/secret                 outside the root
 *   T/root/dir/file          "hello"
 *   T/root/dir/sub/
 *   T/root/dir/empty         ""
 *   T/root/link-file -> dir/file,  link-dir -> dir,  link-abs -> /etc,  link-up -> ../secret
 * Output is TAP.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "tap.h"

static char tmp_root[256];
static int root_fd = -EBADF; /* O_PATH|O_DIRECTORY on T/root */

static int read_fd(int fd, char *buf, size_t size) {
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return (int) n;
}

static int stat_at(const char *path, struct stat *st) {
        return RET_NERRNO(fstatat(root_fd, path, st, AT_SYMLINK_NOFOLLOW));
}

/* Names in directory PATH (below the root) that start with ".#", the temporary-file prefix. */
static int count_temp_files(const char *path) {
        int fd = openat(root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        int n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (strneq(de->d_name, ".#", 2)) {
                        printf("# leftover temporary file '%s/%s'\n", path, de->d_name);
                        n++;
                }
        closedir(d);
        return n;
}

static int test_open_plain(void) {
        char buf[64];
        _cleanup_close_ int fd = open_beneath(root_fd, "dir/file", O_RDONLY, 0);
        CHECK(fd >= 0);
        CHECK_EQ(read_fd(fd, buf, sizeof buf), 5);
        CHECK_STREQ(buf, "hello");
        CHECK_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC); /* always added */
        return 0;
}

static int test_open_self(void) {
        struct stat want, st;
        CHECK_EQ(fstat(root_fd, &want), 0);
        static const char *const selves[] = { "", ".", "./" };
        for (size_t i = 0; i < ELEMENTSOF(selves); i++) {
                _cleanup_close_ int fd = open_beneath(root_fd, selves[i], O_PATH | O_DIRECTORY, 0);
                CHECK(fd >= 0);
                CHECK_EQ(fstat(fd, &st), 0);
                CHECK_U64(st.st_ino, want.st_ino);
                CHECK_U64(st.st_dev, want.st_dev);
        }
        _cleanup_close_ int fd = open_beneath(root_fd, NULL, O_PATH | O_DIRECTORY, 0);
        CHECK(fd >= 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK_U64(st.st_ino, want.st_ino);
        return 0;
}

static int test_open_escape_refused(void) {
        CHECK_EQ(open_beneath(root_fd, "..", O_PATH, 0), -EXDEV);
        CHECK_EQ(open_beneath(root_fd, "../secret", O_RDONLY, 0), -EXDEV);
        CHECK_EQ(open_beneath(root_fd, "dir/../../secret", O_RDONLY, 0), -EXDEV);
        CHECK_EQ(open_beneath(root_fd, "dir/sub/../../..", O_PATH, 0), -EXDEV);
        CHECK_EQ(open_beneath(root_fd, "/etc/passwd", O_RDONLY, 0), -EXDEV);
        CHECK_EQ(open_beneath(root_fd, "/", O_PATH, 0), -EXDEV);
        /* nothing was created by a refused O_CREAT */
        CHECK_EQ(open_beneath(root_fd, "../created", O_WRONLY | O_CREAT, 0644), -EXDEV);
        char p[512];
        snprintf(p, sizeof p, "%s/created", tmp_root);
        CHECK_EQ(access(p, F_OK), -1);
        return 0;
}

static int test_open_symlinks_refused(void) {
        /* at the end */
        CHECK_EQ(open_beneath(root_fd, "link-file", O_RDONLY, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-file", O_RDONLY | O_NOFOLLOW, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-file", O_PATH, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-dir", O_PATH | O_DIRECTORY, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-up", O_RDONLY, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-abs", O_PATH, 0), -ELOOP);
        /* in the middle, even when the target is inside */
        CHECK_EQ(open_beneath(root_fd, "link-dir/file", O_RDONLY, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-dir/sub", O_PATH, 0), -ELOOP);
        CHECK_EQ(open_beneath(root_fd, "link-abs/passwd", O_RDONLY, 0), -ELOOP);
        /* O_CREAT through a symlink must not create its target */
        CHECK_EQ(open_beneath(root_fd, "link-dir/new", O_WRONLY | O_CREAT | O_EXCL, 0644), -ELOOP);
        struct stat st;
        CHECK_EQ(stat_at("dir/new", &st), -ENOENT);
        return 0;
}

static int test_open_symlink_itself(void) {
        struct stat st, want;
        _cleanup_close_ int fd = open_beneath(root_fd, "link-file", O_PATH | O_NOFOLLOW, 0);
        CHECK(fd >= 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK(S_ISLNK(st.st_mode));
        CHECK_EQ(stat_at("link-file", &want), 0);
        CHECK_U64(st.st_ino, want.st_ino);
        char target[64];
        ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
        CHECK_EQ(n, 8);
        target[n] = '\0';
        CHECK_STREQ(target, "dir/file");
        /* but still not through one in the middle */
        CHECK_EQ(open_beneath(root_fd, "link-dir/file", O_PATH | O_NOFOLLOW, 0), -ELOOP);
        return 0;
}

static int test_open_errors(void) {
        CHECK_EQ(open_beneath(root_fd, "nonexistent", O_RDONLY, 0), -ENOENT);
        CHECK_EQ(open_beneath(root_fd, "dir/nonexistent/x", O_RDONLY, 0), -ENOENT);
        CHECK_EQ(open_beneath(root_fd, "dir/file/x", O_RDONLY, 0), -ENOTDIR);
        CHECK_EQ(open_beneath(root_fd, "dir/file", O_RDONLY | O_DIRECTORY, 0), -ENOTDIR);
        CHECK_EQ(open_beneath(-EBADF, "dir/file", O_RDONLY, 0), -EBADF);
        return 0;
}

static int test_open_create_mode(void) {
        struct stat st;
        mode_t old = umask(0);
        int fd = open_beneath(root_fd, "dir/created-0640", O_WRONLY | O_CREAT | O_EXCL, 0640);
        umask(old);
        CHECK(fd >= 0);
        close(fd);
        CHECK_EQ(stat_at("dir/created-0640", &st), 0);
        CHECK(S_ISREG(st.st_mode));
        CHECK_EQ(st.st_mode & 07777, 0640);
        CHECK_EQ(open_beneath(root_fd, "dir/created-0640", O_WRONLY | O_CREAT | O_EXCL, 0640), -EEXIST);
        return 0;
}

static int test_open_parent(void) {
        const char *path = "dir/sub/name", *name = NULL;
        struct stat st, want;

        _cleanup_close_ int fd = open_parent_beneath(root_fd, path, &name);
        CHECK(fd >= 0);
        CHECK(name == path + 8); /* points into PATH */
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK_EQ(stat_at("dir/sub", &want), 0);
        CHECK_U64(st.st_ino, want.st_ino);
        CHECK_EQ(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
        CHECK_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

        /* a bare name: the parent is the root itself */
        const char *bare = "file";
        _cleanup_close_ int fd2 = open_parent_beneath(root_fd, bare, &name);
        CHECK(fd2 >= 0);
        CHECK(name == bare);
        CHECK_EQ(fstat(fd2, &st), 0);
        CHECK_EQ(fstat(root_fd, &want), 0);
        CHECK_U64(st.st_ino, want.st_ino);
        /* the last component does not have to exist, and is not looked at */
        _cleanup_close_ int fd3 = open_parent_beneath(root_fd, "dir/does-not-exist", &name);
        CHECK(fd3 >= 0);
        CHECK_STREQ(name, "does-not-exist");
        return 0;
}

static int test_open_parent_refused(void) {
        const char *name = "untouched";
        char long_path[PATH_MAX + 16];

        CHECK_EQ(open_parent_beneath(root_fd, "", &name), -EINVAL);
        CHECK_EQ(open_parent_beneath(root_fd, NULL, &name), -EINVAL);
        CHECK_EQ(open_parent_beneath(root_fd, "/etc/passwd", &name), -EINVAL);
        CHECK_EQ(open_parent_beneath(root_fd, "dir/", &name), -EINVAL);
        CHECK_EQ(open_parent_beneath(root_fd, "../secret", &name), -EXDEV);
        CHECK_EQ(open_parent_beneath(root_fd, "link-dir/file", &name), -ELOOP);
        CHECK_EQ(open_parent_beneath(root_fd, "dir/file/x", &name), -ENOTDIR);
        CHECK_EQ(open_parent_beneath(root_fd, "nonexistent/x", &name), -ENOENT);
        memset(long_path, 'a', sizeof long_path - 1);
        long_path[sizeof long_path - 1] = '\0';
        long_path[PATH_MAX + 2] = '/';
        CHECK_EQ(open_parent_beneath(root_fd, long_path, &name), -ENAMETOOLONG);
        CHECK_STREQ(name, "untouched");
        return 0;
}

static int test_read_file(void) {
        char *data = (char *) "untouched";
        size_t size = 999;

        CHECK_EQ(read_file_at(root_fd, "dir/file", 100, &data, &size), 0);
        CHECK_EQ(size, 5);
        CHECK_STREQ(data, "hello");
        free(data);
        CHECK_EQ(read_file_at(root_fd, "dir/file", 5, &data, NULL), 0); /* exactly the limit */
        CHECK_STREQ(data, "hello");
        free(data);
        CHECK_EQ(read_file_at(root_fd, "dir/empty", 0, &data, &size), 0);
        CHECK_EQ(size, 0);
        CHECK_STREQ(data, "");
        free(data);

        data = (char *) "untouched";
        size = 999;
        CHECK_EQ(read_file_at(root_fd, "dir/file", 4, &data, &size), -EFBIG);
        CHECK_EQ(read_file_at(root_fd, "link-file", 100, &data, &size), -ELOOP);
        CHECK_EQ(read_file_at(root_fd, "../secret", 100, &data, &size), -EXDEV);
        CHECK_EQ(read_file_at(root_fd, "nonexistent", 100, &data, &size), -ENOENT);
        CHECK_EQ(read_file_at(root_fd, "dir", 100, &data, &size), -EISDIR);
        CHECK_STREQ(data, "untouched");
        CHECK_EQ(size, 999);
        return 0;
}

static int test_write_atomic(void) {
        struct stat st, before;
        char *data;

        mode_t old = umask(0);
        int r = write_file_atomic_at(root_fd, "dir/out", "data", 4, 0640);
        umask(old);
        CHECK_EQ(r, 0);
        CHECK_EQ(read_file_at(root_fd, "dir/out", 100, &data, NULL), 0);
        CHECK_STREQ(data, "data");
        free(data);
        CHECK_EQ(stat_at("dir/out", &st), 0);
        CHECK(S_ISREG(st.st_mode));
        CHECK_EQ(st.st_mode & 07777, 0640);
        CHECK_EQ(count_temp_files("dir"), 0);

        /* replacing: a new inode renamed over the old one, never a partial write in place */
        before = st;
        CHECK_EQ(write_file_atomic_at(root_fd, "dir/out", "new contents", 12, 0600), 0);
        CHECK_EQ(read_file_at(root_fd, "dir/out", 100, &data, NULL), 0);
        CHECK_STREQ(data, "new contents");
        free(data);
        CHECK_EQ(stat_at("dir/out", &st), 0);
        CHECK(st.st_ino != before.st_ino);
        CHECK_EQ(count_temp_files("dir"), 0);

        /* empty data, and a bare name in the root */
        CHECK_EQ(write_file_atomic_at(root_fd, "top-level", "", 0, 0644), 0);
        CHECK_EQ(stat_at("top-level", &st), 0);
        CHECK_EQ(st.st_size, 0);
        CHECK_EQ(count_temp_files("."), 0);
        return 0;
}

static int test_write_atomic_symlinks(void) {
        struct stat st;
        char *data;

        /* the target symlink itself is replaced, its target is not written */
        CHECK_EQ(symlinkat("dir/file", root_fd, "link-victim"), 0);
        CHECK_EQ(write_file_atomic_at(root_fd, "link-victim", "X", 1, 0644), 0);
        CHECK_EQ(stat_at("link-victim", &st), 0);
        CHECK(S_ISREG(st.st_mode));
        CHECK_EQ(read_file_at(root_fd, "dir/file", 100, &data, NULL), 0);
        CHECK_STREQ(data, "hello");
        free(data);

        /* no way through a symlinked or escaping parent */
        CHECK_EQ(write_file_atomic_at(root_fd, "link-dir/via-link", "X", 1, 0644), -ELOOP);
        CHECK_EQ(stat_at("dir/via-link", &st), -ENOENT);
        CHECK_EQ(write_file_atomic_at(root_fd, "../escaped", "X", 1, 0644), -EXDEV);
        char p[512];
        snprintf(p, sizeof p, "%s/escaped", tmp_root);
        CHECK_EQ(access(p, F_OK), -1);
        CHECK_EQ(write_file_atomic_at(root_fd, "/tmp/escaped", "X", 1, 0644), -EINVAL);
        CHECK_EQ(write_file_atomic_at(root_fd, "", "X", 1, 0644), -EINVAL);
        CHECK_EQ(write_file_atomic_at(root_fd, "dir/", "X", 1, 0644), -EINVAL);
        CHECK_EQ(count_temp_files("dir"), 0);
        CHECK_EQ(count_temp_files("."), 0);
        return 0;
}

static int test_write_atomic_failure_cleans_up(void) {
        struct stat st;

        /* renaming a file over a directory fails: the temporary file must go away */
        CHECK_EQ(write_file_atomic_at(root_fd, "dir/sub", "X", 1, 0644), -EISDIR);
        CHECK_EQ(stat_at("dir/sub", &st), 0);
        CHECK(S_ISDIR(st.st_mode));
        CHECK_EQ(count_temp_files("dir"), 0);
        return 0;
}

static int test_write_atomic_long_name(void) {
        char name[NAME_MAX + 1], path[NAME_MAX + 8];
        char *data;

        /* the temporary name is shortened, the final name is not */
        memset(name, 'n', NAME_MAX);
        name[NAME_MAX] = '\0';
        snprintf(path, sizeof path, "dir/%s", name);
        CHECK_EQ(write_file_atomic_at(root_fd, path, "long", 4, 0644), 0);
        CHECK_EQ(read_file_at(root_fd, path, 100, &data, NULL), 0);
        CHECK_STREQ(data, "long");
        free(data);
        CHECK_EQ(count_temp_files("dir"), 0);
        return 0;
}

static int test_filename_is_valid(void) {
        char name[NAME_MAX + 2];

        CHECK(filename_is_valid("a"));
        CHECK(filename_is_valid("..."));
        CHECK(filename_is_valid(".hidden"));
        CHECK(filename_is_valid("a b"));
        CHECK(filename_is_valid("\xff"));
        CHECK(!filename_is_valid(NULL));
        CHECK(!filename_is_valid(""));
        CHECK(!filename_is_valid("."));
        CHECK(!filename_is_valid(".."));
        CHECK(!filename_is_valid("/"));
        CHECK(!filename_is_valid("a/b"));
        CHECK(!filename_is_valid("a/"));
        CHECK(!filename_is_valid("/a"));
        memset(name, 'n', NAME_MAX);
        name[NAME_MAX] = '\0';
        CHECK(filename_is_valid(name));
        name[NAME_MAX] = 'n';
        name[NAME_MAX + 1] = '\0';
        CHECK(!filename_is_valid(name));
        return 0;
}

static int check_split(const char *path, const char *parent, const char *name) {
        _cleanup_free_ char *p = NULL, *n = NULL;
        CHECK_EQ(path_split(path, &p, &n), 0);
        CHECK_STREQ(p, parent);
        CHECK_STREQ(n, name);
        return 0;
}

static int test_path_split(void) {
        char *p = NULL, *n = NULL;

        CHECK_EQ(check_split("a", ".", "a"), 0);
        CHECK_EQ(check_split("a/", ".", "a"), 0);
        CHECK_EQ(check_split("/a", "/", "a"), 0);
        CHECK_EQ(check_split("/a//", "/", "a"), 0);
        CHECK_EQ(check_split("/x/y/z", "/x/y", "z"), 0);
        CHECK_EQ(check_split("x/y/", "x", "y"), 0);
        CHECK_EQ(check_split("../up", "..", "up"), 0);
        static const char *const bad[] = { "", "/", "//", ".", "..", "a/.", "a/..", "a/../" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_EQ(path_split(bad[i], &p, &n), -EINVAL);
                CHECK(!p && !n); /* nothing returned on failure */
        }
        return 0;
}

static int write_plain(int dirfd, const char *name, const char *data) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, data, strlen(data)) != (ssize_t) strlen(data))
                return -EIO;
        return 0;
}

static int setup(void) {
        _cleanup_close_ int t = open(tmp_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int dt = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t < 0 || dt < 0)
                return -errno;
        if (write_plain(dt, "secret", "secret") < 0 || mkdirat(dt, "root", 0755) < 0)
                return -EIO;
        _cleanup_close_ int r = openat(dt, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (r < 0)
                return -errno;
        if (mkdirat(r, "dir", 0755) < 0 || mkdirat(r, "dir/sub", 0755) < 0)
                return -errno;
        if (write_plain(r, "dir/file", "hello") < 0 || write_plain(r, "dir/empty", "") < 0)
                return -EIO;
        if (symlinkat("dir/file", r, "link-file") < 0 || symlinkat("dir", r, "link-dir") < 0 ||
            symlinkat("/etc", r, "link-abs") < 0 || symlinkat("../secret", r, "link-up") < 0)
                return -errno;
        root_fd = openat(dt, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return root_fd < 0 ? -errno : 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(open_plain),
                TAP_TEST(open_self),
                TAP_TEST(open_escape_refused),
                TAP_TEST(open_symlinks_refused),
                TAP_TEST(open_symlink_itself),
                TAP_TEST(open_errors),
                TAP_TEST(open_create_mode),
                TAP_TEST(open_parent),
                TAP_TEST(open_parent_refused),
                TAP_TEST(read_file),
                TAP_TEST(write_atomic),
                TAP_TEST(write_atomic_symlinks),
                TAP_TEST(write_atomic_failure_cleans_up),
                TAP_TEST(write_atomic_long_name),
                TAP_TEST(filename_is_valid),
                TAP_TEST(path_split),
        };
        int r;

        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-fs") < 0)
                return 1;
        r = setup();
        if (r < 0) {
                printf("Bail out! setup: %s\n", tap_errname(r));
                r = 1;
        } else
                r = tap_run(tests, ELEMENTSOF(tests));
        root_fd = safe_close(root_fd);
        tap_remove_tree(tmp_root);
        return r;
}
