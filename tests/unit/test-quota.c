/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of unionfs/quota.c against a real temporary directory (no FUSE): the walk that counts a
 * tree (allocated bytes, each inode once across hard links and across calls, symlinks never followed,
 * a tree deeper than any fd budget, no fd left open), the checks (a full quota refuses everything,
 * bytes and inodes, rewrites of allocated data pass, short writes), observations and forgetting
 * against what fstat() says, the statvfs view, and the notify pipe (one line per kind, once). Runs
 * unprivileged; the case that needs a mount point inside the tree skips without root. Output is TAP.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "rmtree.h"
#include "tap.h"
#include "unionfs/quota.h"

#define KiB 1024
#define MiB (1024 * 1024)

static char tmp_root[512];
static int root_fd = -EBADF;
static unsigned case_no;

/* A fresh directory for one case: returns an O_RDONLY fd of it. */
static int new_case(char *name, size_t size) {
        snprintf(name, size, "case%u", ++case_no);
        if (mkdirat(root_fd, name, 0755) < 0)
                return -errno;
        return openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int write_file(int dir, const char *name, size_t size, off_t hole) {
        _cleanup_close_ int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        _cleanup_free_ char *buf = malloc(size ? size : 1);
        if (fd < 0 || !buf)
                return -errno;
        memset(buf, 'x', size);
        if (hole > 0 && lseek(fd, hole, SEEK_SET) < 0)
                return -errno;
        if (size && write(fd, buf, size) != (ssize_t) size)
                return -EIO;
        return 0;
}

static int64_t blocks_at(int dir, const char *name) {
        struct stat st;
        if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -1;
        return (int64_t) st.st_blocks;
}

static int count_fds(void) {
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static int test_scan_counts_each_inode_once(void) {
        char name[32];
        _cleanup_close_ int dir = new_case(name, sizeof name), index = -EBADF;
        QuotaSeen *seen = NULL;
        Quota q;
        int64_t want = 0;

        CHECK(dir >= 0);
        CHECK_EQ(mkdirat(dir, "upper", 0755), 0);
        CHECK_EQ(mkdirat(dir, "index", 0755), 0);
        _cleanup_close_ int up = openat(dir, "upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        index = openat(dir, "index", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(up >= 0 && index >= 0);
        CHECK_EQ(mkdirat(up, "d", 0755), 0);
        CHECK_EQ(write_file(up, "d/data", 100 * KiB, 0), 0);
        CHECK_EQ(write_file(up, "sparse", 4 * KiB, 64 * MiB), 0);    /* 64 MiB long, 4 KiB allocated */
        CHECK_EQ(write_file(up, "empty", 0, 0), 0);
        CHECK_EQ(linkat(up, "d/data", up, "hard", 0), 0);             /* a second name: one inode */
        CHECK_EQ(linkat(up, "d/data", index, "key", 0), 0);           /* and the index's: still one */
        CHECK_EQ(write_file(dir, "outside", 1 * MiB, 0), 0);
        CHECK_EQ(symlinkat("../outside", up, "link"), 0);             /* counted as itself, never followed */
        CHECK_EQ(mkfifoat(up, "fifo", 0600), 0);
        for (const char *const *n = (const char *const[]) { "d", "d/data", "sparse", "empty", "link", "fifo", NULL };
             *n; n++)
                want += blocks_at(up, *n) * 512;

        quota_init(&q, 0, 0, -EBADF);
        int fds = count_fds();
        CHECK_EQ(quota_scan_tree(&q, up, &seen), 7);     /* every name */
        CHECK_EQ(quota_scan_tree(&q, index, &seen), 1);
        CHECK_EQ(count_fds(), fds);
        quota_seen_free(seen);
        CHECK_U64(quota_used_inodes(&q), 6);              /* d, data (3 names), sparse, empty, link, fifo */
        CHECK_U64(quota_used_bytes(&q), (uint64_t) want);
        CHECK(quota_used_bytes(&q) < 1 * MiB);            /* neither the sparse size nor the link's target */
        quota_done(&q);
        return 0;
}

static int test_scan_deep_tree(void) {
        char name[32];
        _cleanup_close_ int dir = new_case(name, sizeof name);
        QuotaSeen *seen = NULL;
        const int depth = 5000;
        Quota q;
        int fd;

        CHECK(dir >= 0);
        fd = dup(dir);
        for (int i = 0; i < depth; i++) {
                CHECK_EQ(mkdirat(fd, "d", 0755), 0);
                if (i % 1000 == 0)
                        CHECK_EQ(write_file(fd, "f", 10, 0), 0);
                int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = nfd;
                CHECK(fd >= 0);
        }
        close(fd);
        quota_init(&q, 0, 0, -EBADF);
        int fds = count_fds();
        CHECK_EQ(quota_scan_tree(&q, dir, &seen), depth + 5);
        CHECK_EQ(count_fds(), fds);
        quota_seen_free(seen);
        CHECK_U64(quota_used_inodes(&q), (uint64_t) depth + 5);
        quota_done(&q);
        return 0;
}

static int test_scan_stays_on_its_file_system(void) {
        char name[32], path[700];
        _cleanup_close_ int dir = new_case(name, sizeof name);
        QuotaSeen *seen = NULL;
        Quota q;
        int status;

        if (geteuid() != 0)
                return tap_skip("needs root (a tmpfs mounted inside the tree)");
        CHECK(dir >= 0);
        CHECK_EQ(mkdirat(dir, "mnt", 0755), 0);
        snprintf(path, sizeof path, "%s/%s/mnt", tmp_root, name);
        /* In a private mount namespace of a child, so nothing is left mounted whatever happens. */
        pid_t pid = fork();
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("tmpfs", path, "tmpfs", 0, "size=8m") < 0)
                        _exit(2);
                /* (our fds from before unshare() lead to the old namespace's mounts: open anew) */
                char top[700];
                snprintf(top, sizeof top, "%s/%s", tmp_root, name);
                int d = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int m = d < 0 ? -1 : openat(d, "mnt", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (m < 0 || write_file(m, "big", 2 * MiB, 0) < 0)
                        _exit(3);
                quota_init(&q, 0, 0, -EBADF);
                int n = quota_scan_tree(&q, d, &seen);
                /* the mount point and what is below it are another file system's: not counted */
                _exit(n == 0 && quota_used_bytes(&q) == 0 && quota_used_inodes(&q) == 0 ? 0 : 4);
        }
        CHECK(pid > 0);
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 0);
        return 0;
}

static int test_checks(void) {
        Quota q;

        quota_init(&q, 1000, 10, -EBADF);
        CHECK_EQ(quota_check(&q, 1000, 10), 0);
        CHECK_EQ(quota_check(&q, 1001, 0), -ENOSPC);
        CHECK_EQ(quota_check(&q, 0, 11), -ENOSPC);
        quota_add(&q, 999, 10);
        CHECK_EQ(quota_check(&q, 1, 0), 0);
        CHECK_EQ(quota_check(&q, 2, 0), -ENOSPC);
        CHECK_EQ(quota_check(&q, 0, 1), -ENOSPC);       /* no inode left */
        quota_add(&q, 1, 0);
        CHECK_EQ(quota_check(&q, 0, 0), -ENOSPC);       /* full: not even a name */
        CHECK(quota_nearly_full(&q, 0));
        quota_add(&q, -500, -5);
        CHECK_EQ(quota_check(&q, 500, 5), 0);
        CHECK(!quota_nearly_full(&q, 500));
        CHECK(quota_nearly_full(&q, 501));
        /* a count that went below zero for a moment reads as zero */
        quota_add(&q, -10000, -100);
        CHECK_U64(quota_used_bytes(&q), 0);
        CHECK_U64(quota_used_inodes(&q), 0);
        quota_done(&q);

        /* no quota: everything passes */
        quota_init(&q, 0, 0, -EBADF);
        CHECK(!quota_enabled(&q));
        quota_add(&q, INT64_C(1) << 50, 1 << 30);
        CHECK_EQ(quota_check(&q, UINT64_MAX, UINT64_MAX), 0);
        CHECK(!quota_nearly_full(&q, UINT64_MAX));
        quota_done(&q);
        return 0;
}

static int test_check_write(void) {
        char name[32];
        _cleanup_close_ int dir = new_case(name, sizeof name), fd = -EBADF;
        size_t allowed = 0;
        Quota q;

        CHECK(dir >= 0);
        CHECK_EQ(write_file(dir, "f", 64 * KiB, 0), 0);
        CHECK_EQ(write_file(dir, "holey", 4 * KiB, 1 * MiB), 0);
        fd = openat(dir, "f", O_RDWR | O_CLOEXEC);
        _cleanup_close_ int hfd = openat(dir, "holey", O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0 && hfd >= 0);

        quota_init(&q, 100 * KiB, 0, -EBADF);
        quota_add(&q, 100 * KiB, 0);                      /* full */
        /* rewriting allocated data allocates nothing: allowed, also when full */
        CHECK_EQ(quota_check_write(&q, fd, 0, 64 * KiB, false, &allowed), 0);
        CHECK_EQ((long long) allowed, 64 * KiB);
        CHECK_EQ(quota_check_write(&q, fd, 4096, 8192, false, NULL), 0);
        /* past the end, or into a hole: refused */
        CHECK_EQ(quota_check_write(&q, fd, 60 * KiB, 8 * KiB, false, NULL), -ENOSPC);
        CHECK_EQ(quota_check_write(&q, hfd, 0, 4096, false, NULL), -ENOSPC);
        /* 10 KiB left: a short write of what fits in whole blocks, or nothing (all or nothing) */
        quota_add(&q, -10 * KiB, 0);
        CHECK_EQ(quota_check_write(&q, hfd, 0, 64 * KiB, true, &allowed), 0);
        CHECK_EQ((long long) allowed, 8 * KiB);
        CHECK_EQ(quota_check_write(&q, hfd, 0, 64 * KiB, false, &allowed), -ENOSPC);
        CHECK_EQ(quota_check_write(&q, hfd, 0, 8 * KiB, false, &allowed), 0);
        CHECK_EQ((long long) allowed, 8 * KiB);
        /* less than a block left: nothing */
        quota_add(&q, 7 * KiB, 0);
        CHECK_EQ(quota_check_write(&q, hfd, 0, 64 * KiB, true, &allowed), -ENOSPC);
        quota_done(&q);
        return 0;
}

static int test_observe_and_forget(void) {
        char name[32];
        _cleanup_close_ int dir = new_case(name, sizeof name), fd = -EBADF;
        _cleanup_free_ char *buf = calloc(1, MiB);
        int64_t last = -1;
        Quota q;

        CHECK(dir >= 0 && buf);
        fd = openat(dir, "f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        quota_init(&q, 10 * MiB, 100, -EBADF);
        /* -1: nothing counted yet; the first observation counts all of it */
        CHECK_EQ(write(fd, buf, MiB), MiB);
        CHECK_EQ(fsync(fd), 0);
        quota_observe_fd(&q, &last, fd);
        CHECK_EQ(last, blocks_at(dir, "f"));
        CHECK_U64(quota_used_bytes(&q), (uint64_t) last * 512);
        /* another look without a change changes nothing */
        quota_observe_fd(&q, &last, fd);
        CHECK_U64(quota_used_bytes(&q), (uint64_t) last * 512);
        /* growth and shrinking, by name too */
        CHECK_EQ(pwrite(fd, buf, MiB, MiB), MiB);
        CHECK_EQ(fsync(fd), 0);
        quota_observe_at(&q, &last, dir, "f");
        CHECK_U64(quota_used_bytes(&q), (uint64_t) blocks_at(dir, "f") * 512);
        CHECK_EQ(ftruncate(fd, 4096), 0);
        quota_observe_fd(&q, &last, fd);
        CHECK_U64(quota_used_bytes(&q), (uint64_t) blocks_at(dir, "f") * 512);
        /* gone: its last value comes back, and a later look starts from nothing */
        quota_forget(&q, &last);
        CHECK_EQ(last, 0);
        CHECK_U64(quota_used_bytes(&q), 0);
        /* an object that is gone changes nothing */
        quota_observe_at(&q, &last, dir, "no-such");
        CHECK_U64(quota_used_bytes(&q), 0);
        quota_done(&q);

        /* without a quota nothing is looked at */
        quota_init(&q, 0, 0, -EBADF);
        last = -1;
        quota_observe_fd(&q, &last, fd);
        CHECK_EQ(last, -1);
        quota_done(&q);
        return 0;
}

static int test_statvfs(void) {
        struct statvfs sv = { .f_frsize = 4096, .f_bsize = 4096, .f_blocks = 1000000, .f_bfree = 500000,
                              .f_bavail = 400000, .f_files = 100000, .f_ffree = 90000, .f_favail = 90000 };
        Quota q;

        quota_init(&q, 40 * MiB, 1000, -EBADF);
        quota_add(&q, 10 * MiB, 100);
        quota_statvfs(&q, &sv);
        CHECK_U64(sv.f_blocks, 40 * MiB / 4096);
        CHECK_U64(sv.f_bfree, 30 * MiB / 4096);
        CHECK_U64(sv.f_bavail, 30 * MiB / 4096);
        CHECK_U64(sv.f_files, 1000);
        CHECK_U64(sv.f_ffree, 900);
        /* the real file system has less left than the quota: that is what shows */
        sv = (struct statvfs) { .f_frsize = 4096, .f_blocks = 1000000, .f_bfree = 100, .f_bavail = 50,
                                .f_files = 100000, .f_ffree = 10, .f_favail = 5 };
        quota_statvfs(&q, &sv);
        CHECK_U64(sv.f_bavail, 50);
        CHECK_U64(sv.f_favail, 5);
        /* past the quota: nothing free */
        quota_add(&q, 100 * MiB, 10000);
        quota_statvfs(&q, &sv);
        CHECK_U64(sv.f_bfree, 0);
        CHECK_U64(sv.f_ffree, 0);
        quota_done(&q);
        return 0;
}

static int test_notify_once_per_kind(void) {
        int p[2];
        char buf[64];
        Quota q;

        CHECK_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        quota_init(&q, 100, 2, p[1]); /* takes the write end */
        CHECK_EQ(read(p[0], buf, sizeof buf), -1);
        CHECK_EQ(quota_check(&q, 50, 1), 0);
        CHECK_EQ(read(p[0], buf, sizeof buf), -1);        /* nothing refused, nothing said */
        for (int i = 0; i < 3; i++) {
                CHECK_EQ(quota_check(&q, 101, 0), -ENOSPC);
                CHECK_EQ(quota_check(&q, 0, 3), -ENOSPC);
        }
        ssize_t n = read(p[0], buf, sizeof buf);
        CHECK_EQ(n, 13);
        CHECK(memcmp(buf, "bytes\ninodes\n", 13) == 0);
        quota_done(&q);                                   /* closes the write end */
        CHECK_EQ(read(p[0], buf, sizeof buf), 0);         /* EOF */
        close(p[0]);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(scan_counts_each_inode_once),
                TAP_TEST(scan_deep_tree),
                TAP_TEST(scan_stays_on_its_file_system),
                TAP_TEST(checks),
                TAP_TEST(check_write),
                TAP_TEST(observe_and_forget),
                TAP_TEST(statvfs),
                TAP_TEST(notify_once_per_kind),
        };
        int r;

        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-quota") < 0)
                return 1;
        root_fd = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
                printf("Bail out! open %s: %m\n", tmp_root);
                return 1;
        }
        r = tap_run(tests, ELEMENTSOF(tests));
        if (rm_tree_children(root_fd) < 0 || rmdir(tmp_root) < 0)
                printf("# could not remove %s\n", tmp_root);
        safe_close(root_fd);
        return r;
}
