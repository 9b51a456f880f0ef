/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of common/rootattr.c, the private-root record: the value's strict format and its round
 * trip; reading it from either namespace (trusted. first), through O_PATH fds too; what a root shows
 * with and without a record; and, as root, making a directory private (record first, then 0:0 and
 * 0700; nothing rewritten when already done; no record when it would show the same). Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "macro.h"
#include "rootattr.h"
#include "tap.h"

static int test_format(void) {
        static const char *const good[] = { "755 0 0", "0 0 0", "7777 4294967294 4294967294", "2711 1000 100" };
        static const char *const bad[] = { "", "755", "755 0", "755 0 0 0", "0755 0 0", "10000 0 0", "8 0 0",
                                           "755 01 0", "755 -1 0", "755 4294967295 0", "755  0 0", " 755 0 0",
                                           "755 0 0 ", "755 0 0\n", "755\t0 0", "7a5 0 0", "755 0 0x1" };
        char buf[ROOTATTR_VALUE_MAX];
        RootAttr a;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                CHECK_EQ(rootattr_parse(good[i], strlen(good[i]), &a), 0);
                CHECK_EQ(rootattr_format(&a, buf), strlen(good[i]));
                CHECK_STREQ(buf, good[i]);
        }
        CHECK_EQ(rootattr_parse("2711 1000 100", 13, &a), 0);
        CHECK_EQ(a.mode, 02711);
        CHECK_EQ(a.uid, 1000);
        CHECK_EQ(a.gid, 100);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                a = (RootAttr) { .mode = 01, .uid = 2, .gid = 3 };
                CHECK_EQ(rootattr_parse(bad[i], strlen(bad[i]), &a), -EINVAL);
                CHECK(a.mode == 01 && a.uid == 2 && a.gid == 3); /* untouched */
        }
        /* SIZE bounds the value: no NUL needed, nothing read past it */
        CHECK_EQ(rootattr_parse("755 0 0junk", 7, &a), 0);
        CHECK_EQ(a.gid, 0);
        CHECK_EQ(rootattr_parse("755 0 07", 7, &a), 0);
        CHECK_EQ(a.gid, 0);
        CHECK_EQ(rootattr_parse("755 0 0", 6, &a), -EINVAL);
        return 0;
}

static int test_read_write(void) {
        char dir[512];
        RootAttr a = {}, want = { .mode = 0755, .uid = 12, .gid = 34 };
        struct stat st;

        CHECK_EQ(tap_scratch_dir(dir, sizeof dir, "rootattr-rw"), 0);
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int pfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0 && pfd >= 0);
        CHECK_EQ(chmod(dir, 0751), 0);
        CHECK_EQ(rootattr_read(fd, NULL, &a), 0);
        /* without a record: what the directory is */
        CHECK_EQ(rootattr_logical(pfd, NULL, &a), 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK(a.mode == 0751 && a.uid == st.st_uid && a.gid == st.st_gid);

        int r = rootattr_write(pfd, ROOTATTR_NS_USER, &want);
        if (r == -EOPNOTSUPP || r == -EPERM) {
                tap_remove_tree(dir);
                return tap_skip("no user.* xattrs on the scratch file system");
        }
        CHECK_EQ(r, 0);
        char v[64] = {};
        CHECK_EQ(getxattr(dir, "user.overlay.sandbox.rootattr", v, sizeof v - 1), 9);
        CHECK_STREQ(v, "755 12 34");
        CHECK_EQ(rootattr_read(pfd, NULL, &a), 1);
        CHECK(a.mode == 0755 && a.uid == 12 && a.gid == 34);
        CHECK_EQ(rootattr_read(fd, ROOTATTR_NS_USER, &a), 1);
        CHECK_EQ(rootattr_logical(fd, NULL, &a), 1);
        CHECK(a.mode == 0755 && a.uid == 12 && a.gid == 34);
        if (geteuid() == 0) {
                /* trusted. wins over user. */
                RootAttr t = { .mode = 0700, .uid = 1, .gid = 2 };
                CHECK_EQ(rootattr_write(fd, ROOTATTR_NS_TRUSTED, &t), 0);
                CHECK_EQ(rootattr_read(fd, NULL, &a), 1);
                CHECK(a.mode == 0700 && a.uid == 1 && a.gid == 2);
                CHECK_EQ(rootattr_read(fd, ROOTATTR_NS_USER, &a), 1);
                CHECK_EQ(a.uid, 12);
        }
        /* malformed records are errors, long ones too */
        CHECK_EQ(setxattr(dir, "user.overlay.sandbox.rootattr", "0755 0 0", 8, 0), 0);
        CHECK_EQ(rootattr_read(fd, ROOTATTR_NS_USER, &a), -EINVAL);
        char longv[100];
        memset(longv, '7', sizeof longv);
        CHECK_EQ(setxattr(dir, "user.overlay.sandbox.rootattr", longv, sizeof longv, 0), 0);
        CHECK_EQ(rootattr_read(fd, ROOTATTR_NS_USER, &a), -EINVAL);
        close(fd);
        close(pfd);
        tap_remove_tree(dir);
        return 0;
}

static int test_make_private(void) {
        char dir[512], path[600];
        RootAttr a;
        struct stat st;

        if (geteuid() != 0)
                return tap_skip("making a root private (chown 0:0) needs root");
        CHECK_EQ(tap_scratch_dir(dir, sizeof dir, "rootattr-private"), 0);
        snprintf(path, sizeof path, "%s/tree", dir);
        CHECK_EQ(mkdir(path, 0755), 0);
        CHECK_EQ(chown(path, 1000, 1001), 0);
        CHECK_EQ(chmod(path, 02775), 0);
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK(!rootattr_stat_is_private(&st));

        CHECK_EQ(rootattr_logical(fd, ROOTATTR_NS_TRUSTED, &a), 0);
        CHECK_EQ(rootattr_make_private(fd, ROOTATTR_NS_TRUSTED, &a), 1);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK(st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0700);
        CHECK(rootattr_stat_is_private(&st));
        CHECK_EQ(rootattr_read(fd, ROOTATTR_NS_TRUSTED, &a), 1);
        CHECK(a.mode == 02775 && a.uid == 1000 && a.gid == 1001);
        /* again: nothing to do, nothing changed (ctime stays) */
        struct timespec ct = st.st_ctim;
        usleep(20 * 1000);
        CHECK_EQ(rootattr_make_private(fd, ROOTATTR_NS_TRUSTED, &a), 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK(st.st_ctim.tv_sec == ct.tv_sec && st.st_ctim.tv_nsec == ct.tv_nsec);
        /* a new logical value replaces the record */
        a.mode = 0755;
        CHECK_EQ(rootattr_make_private(fd, ROOTATTR_NS_TRUSTED, &a), 1);
        CHECK_EQ(rootattr_read(fd, ROOTATTR_NS_TRUSTED, &a), 1);
        CHECK_EQ(a.mode, 0755);
        close(fd);

        /* a root that shows 0700 root:root needs no record */
        snprintf(path, sizeof path, "%s/plain", dir);
        CHECK_EQ(mkdir(path, 0777), 0);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        a = (RootAttr) { .mode = 0700 };
        CHECK_EQ(rootattr_make_private(fd, ROOTATTR_NS_TRUSTED, &a), 1);
        CHECK_EQ(rootattr_read(fd, NULL, &a), 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK_EQ(st.st_mode & 07777, 0700);
        CHECK_EQ(rootattr_make_private(fd, ROOTATTR_NS_TRUSTED, &a), 0);
        close(fd);
        tap_remove_tree(dir);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(format),
                TAP_TEST(read_write),
                TAP_TEST(make_private),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
