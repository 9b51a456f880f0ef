/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of common/rmtree.c: a tree far deeper than any fd budget is removed; symlinks are removed
 * as themselves and nothing outside is touched; read-only directories do not stop an unprivileged
 * owner; the names the removal moves deep subtrees to may already exist; the top directory keeps its
 * mode; errors for missing and invalid names. Runs in a private temporary directory; the read-only
 * case drops to uid 65534 when run as root. Output is TAP.
 */
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "rmtree.h"
#include "tap.h"

static char tmp_root[256];
static int root_fd = -EBADF; /* O_RDONLY|O_DIRECTORY on the temporary directory */
static unsigned case_no;

/* A fresh, empty directory for one case: its name in *RET_NAME, an fd on it returned. */
static int new_case_dir(char ret_name[static 32]) {
        snprintf(ret_name, 32, "case-%u", case_no++);
        if (mkdirat(root_fd, ret_name, 0755) < 0)
                return -errno;
        int fd = openat(root_fd, ret_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int count_entries(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        int n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static int touch_at(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        close(fd);
        return 0;
}

/* DEPTH nested directories "d" below DIRFD, each also holding a file, a fifo and a symlink to "/",
 * and made MODE once filled. */
static int build_chain(int dirfd, unsigned depth, mode_t mode) {
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3), r = 0;
        if (fd < 0)
                return -errno;
        for (unsigned i = 0; i < depth && r == 0; i++) {
                if (mkdirat(fd, "d", 0700) < 0 || mkfifoat(fd, "fifo", 0600) < 0 ||
                    symlinkat("/", fd, "root-link") < 0) {
                        r = -errno;
                        break;
                }
                r = touch_at(fd, "file");
                int n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (n < 0 && r == 0)
                        r = -errno;
                if (i > 0 && fchmod(fd, mode) < 0 && r == 0)
                        r = -errno;
                close(fd);
                fd = n;
        }
        safe_close(fd);
        return r;
}

static int test_deep_tree(void) {
        char name[32];
        _cleanup_close_ int fd = new_case_dir(name);
        struct stat st;

        CHECK(fd >= 0);
        CHECK_EQ(fchmod(fd, 0750), 0);
        /* Deeper than the fd budget (32) many times over, and than PATH_MAX allows as one path. */
        CHECK_EQ(build_chain(fd, 2000, 0755), 0);
        CHECK_EQ(rm_tree_children(fd), 0);
        CHECK_EQ(count_entries(root_fd, name), 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK_EQ(st.st_mode & 07777, 0750); /* the top keeps its mode */
        CHECK_EQ(rm_tree_at(root_fd, name), 0);
        CHECK_EQ(faccessat(root_fd, name, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        return 0;
}

static int test_symlinks_not_followed(void) {
        char name[32], outside[32];
        _cleanup_close_ int out = new_case_dir(outside);
        _cleanup_close_ int fd = new_case_dir(name);
        char target[300];

        CHECK(out >= 0 && fd >= 0);
        CHECK_EQ(mkdirat(out, "dir", 0755), 0);
        CHECK_EQ(touch_at(out, "dir/keep"), 0);
        CHECK_EQ(touch_at(out, "keep"), 0);
        CHECK_EQ(mkdirat(fd, "sub", 0755), 0);
        snprintf(target, sizeof target, "%s/%s/dir", tmp_root, outside);
        CHECK_EQ(symlinkat(target, fd, "sub/to-dir-abs"), 0);
        CHECK_EQ(symlinkat(target, fd, "to-dir-abs"), 0);
        snprintf(target, sizeof target, "../../%s/keep", outside);
        CHECK_EQ(symlinkat(target, fd, "sub/to-file-rel"), 0);
        snprintf(target, sizeof target, "../%s", outside);
        CHECK_EQ(symlinkat(target, fd, "to-dir-rel"), 0);

        CHECK_EQ(rm_tree_at(root_fd, name), 0);
        CHECK_EQ(faccessat(root_fd, name, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        CHECK_EQ(count_entries(root_fd, outside), 2);
        CHECK_EQ(count_entries(out, "dir"), 1);
        /* A symlink given as NAME is removed itself. */
        snprintf(target, sizeof target, "%s/%s", tmp_root, outside);
        CHECK_EQ(symlinkat(target, root_fd, "link-to-outside"), 0);
        CHECK_EQ(rm_tree_at(root_fd, "link-to-outside"), 0);
        CHECK_EQ(count_entries(root_fd, outside), 2);
        return 0;
}

static int test_move_names_taken(void) {
        char name[32];
        _cleanup_close_ int fd = new_case_dir(name);
        char n[32];

        CHECK(fd >= 0);
        /* The removal moves subtrees deeper than 32 levels into the top as ".rm-tree-N". */
        for (unsigned i = 0; i < 8; i++) {
                snprintf(n, sizeof n, ".rm-tree-%u", i);
                CHECK_EQ(i % 2 ? touch_at(fd, n) : RET_NERRNO(mkdirat(fd, n, 0755)), 0);
        }
        CHECK_EQ(mkdirat(fd, "wide", 0755), 0);
        for (unsigned i = 0; i < 40; i++) {
                snprintf(n, sizeof n, "wide/c%u", i);
                CHECK_EQ(mkdirat(fd, n, 0755), 0);
                _cleanup_close_ int c = openat(fd, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK(c >= 0);
                CHECK_EQ(build_chain(c, 70, 0755), 0);
        }
        CHECK_EQ(rm_tree_at(root_fd, name), 0);
        CHECK_EQ(faccessat(root_fd, name, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        return 0;
}

static int test_wide_directory(void) {
        char name[32], n[32];
        _cleanup_close_ int fd = new_case_dir(name);

        CHECK(fd >= 0);
        /* readdir while the same directory shrinks must still see every entry. */
        for (unsigned i = 0; i < 5000; i++) {
                snprintf(n, sizeof n, "f%u", i);
                CHECK_EQ(i % 7 ? touch_at(fd, n) : RET_NERRNO(mkdirat(fd, n, 0700)), 0);
        }
        _cleanup_close_ int path_fd = openat(root_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(path_fd >= 0);
        CHECK_EQ(rm_tree_children(path_fd), 0); /* an O_PATH fd will do */
        CHECK_EQ(count_entries(root_fd, name), 0);
        return 0;
}

/* Read-only directories, removed by their unprivileged owner. */
static int test_read_only_dirs(void) {
        char name[32];
        _cleanup_close_ int fd = new_case_dir(name);
        bool root = geteuid() == 0;
        uid_t id = root ? 65534 : geteuid();

        CHECK(fd >= 0);
        CHECK_EQ(fchown(fd, id, id), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                if (setresgid(id, id, id) < 0 || setresuid(id, id, id) < 0)
                        _exit(3);
                if (build_chain(fd, 100, 0500) < 0 || fchmod(fd, 0500) < 0)
                        _exit(4);
                if (root && mkdirat(root_fd, "unused", 0) == 0)
                        _exit(5); /* the case must run without privileges */
                if (rm_tree_children(fd) != -EACCES)
                        _exit(6); /* the top's own mode is left alone: its entries stay */
                if (fchmod(fd, 0700) < 0)
                        _exit(7);
                _exit(rm_tree_children(fd) == 0 ? 0 : 8);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 0);
        CHECK_EQ(count_entries(root_fd, name), 0);
        return 0;
}

static int test_errors(void) {
        CHECK_EQ(rm_tree_at(root_fd, "missing"), -ENOENT);
        CHECK_EQ(rm_tree_at(root_fd, ".."), -EINVAL);
        CHECK_EQ(rm_tree_at(root_fd, "a/b"), -EINVAL);
        CHECK_EQ(rm_tree_at(root_fd, ""), -EINVAL);
        CHECK_EQ(rm_tree_children(-1), -EINVAL);
        CHECK_EQ(touch_at(root_fd, "plain"), 0);
        _cleanup_close_ int f = openat(root_fd, "plain", O_RDONLY | O_CLOEXEC);
        CHECK(f >= 0);
        CHECK_EQ(rm_tree_children(f), -ENOTDIR);
        CHECK_EQ(rm_tree_at(root_fd, "plain"), 0);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(deep_tree),
                TAP_TEST(symlinks_not_followed),
                TAP_TEST(move_names_taken),
                TAP_TEST(wide_directory),
                TAP_TEST(read_only_dirs),
                TAP_TEST(errors),
        };
        int r;

        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-rmtree") < 0)
                return 1;
        /* The read-only case runs as uid 65534 when we are root: it must reach its directory. */
        (void) chmod(tmp_root, 0755);
        root_fd = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
                printf("Bail out! open %s: %m\n", tmp_root);
                return 1;
        }
        r = tap_run(tests, ELEMENTSOF(tests));
        /* Our own clean-up, whatever the cases left. */
        if (rm_tree_children(root_fd) < 0 || rmdir(tmp_root) < 0)
                printf("# could not remove %s\n", tmp_root);
        safe_close(root_fd);
        return r;
}
