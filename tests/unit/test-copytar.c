/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit tests for copy/copytar.c, unprivileged, in a scratch directory: pack and unpack round trips
 * through a pipe (modes, symlinks, hard links, a sparse file, times), docker cp's naming (into a
 * directory, to a new name, a file over a file, "/." contents), refusals (a directory over a file, two
 * top-level entries to one name, a missing parent, a trailing slash, an empty stream, the entry bound),
 * set-id bits dropped unless asked, and libarchive's EOF reading of the pack's output by the unpack.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copytar.h"
#include "macro.h"
#include "rmtree.h"
#include "tap.h"

static char tmp_root[4096];

static char *P(const char *rel) {
        static char bufs[8][4200];
        static unsigned i;
        char *b = bufs[i++ % 8];
        snprintf(b, sizeof bufs[0], "%s/%s", tmp_root, rel);
        return b;
}

static int write_file(const char *rel, const char *data, mode_t mode) {
        _cleanup_close_ int fd = open(P(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t) strlen(data) || fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

static int read_all(const char *rel, char *buf, size_t size) {
        _cleanup_close_ int fd = open(P(rel), O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

typedef struct PackJob {
        const char *src;
        int fd;
        int r;
        char err[COPYTAR_ERROR_MAX];
} PackJob;

static void *pack_thread(void *p) {
        PackJob *j = p;
        j->r = copytar_pack(j->src, j->fd, NULL, j->err, sizeof j->err);
        close(j->fd);
        return NULL;
}

/* Pack SRC and unpack it to DEST through a pipe; the unpack's result (ERR its message). */
static int copy(const char *src, const char *dest, const CopyTarOptions *o, char *err, size_t errlen) {
        int p[2];
        pthread_t t;
        PackJob j = { .src = src };

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        j.fd = p[1];
        if (pthread_create(&t, NULL, pack_thread, &j) != 0)
                return -EAGAIN;
        int r = copytar_unpack(p[0], dest, o, NULL, err, errlen);
        close(p[0]);
        pthread_join(t, NULL);
        /* A pack that failed first is the reason (the unpack then saw a short stream), as in sandboxctl. */
        if (j.r < 0 && j.r != -EPIPE) {
                memcpy(err, j.err, MIN(errlen, sizeof j.err));
                err[errlen - 1] = '\0';
                return j.r;
        }
        return r;
}

static int test_round_trip(void) {
        char err[COPYTAR_ERROR_MAX], buf[64];
        struct stat a, b, c;

        CHECK_EQ(mkdir(P("src"), 0755), 0);
        CHECK_EQ(mkdir(P("src/sub"), 0700), 0);
        CHECK_EQ(write_file("src/x", "data\n", 0751), 0);
        CHECK_EQ(write_file("src/sub/y", "deep\n", 0640), 0);
        CHECK_EQ(write_file("src/setid", "s\n", 0755), 0);
        CHECK_EQ(chmod(P("src/setid"), 02755), 0);
        CHECK_EQ(symlink("../x", P("src/sub/l")), 0);
        CHECK_EQ(link(P("src/x"), P("src/hard")), 0);
        {
                _cleanup_close_ int fd = open(P("src/sparse"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                CHECK(fd >= 0);
                CHECK_EQ(pwrite(fd, "mid", 3, 1 << 24), 3);
                CHECK_EQ(ftruncate(fd, 1 << 25), 0);
        }
        CHECK_EQ(copy(P("src"), P("out"), NULL, err, sizeof err), 0);
        CHECK_EQ(read_all("out/sub/y", buf, sizeof buf), 0);
        CHECK_STREQ(buf, "deep\n");
        CHECK_EQ(lstat(P("out/sub"), &a), 0);
        CHECK_EQ(a.st_mode & 07777, 0700);
        CHECK_EQ(lstat(P("out/x"), &a), 0);
        CHECK_EQ(a.st_mode & 07777, 0751);
        CHECK_EQ(lstat(P("out/hard"), &b), 0);
        CHECK_U64(a.st_ino, b.st_ino);
        CHECK_EQ(readlink(P("out/sub/l"), buf, sizeof buf), 4);
        CHECK_EQ(memcmp(buf, "../x", 4), 0);
        CHECK_EQ(lstat(P("out/setid"), &c), 0);
        CHECK_EQ(c.st_mode & 07777, 0755); /* set-gid dropped */
        CHECK_EQ(lstat(P("out/sparse"), &c), 0);
        CHECK_U64(c.st_size, 1 << 25);
        CHECK((uint64_t) c.st_blocks * 512 < (UINT64_C(1) << 24)); /* still sparse */
        /* with keep_setid, into an existing directory: out/src */
        CopyTarOptions o = { .keep_setid = true };
        CHECK_EQ(copy(P("src"), P("out"), &o, err, sizeof err), 0);
        CHECK_EQ(lstat(P("out/src/setid"), &c), 0);
        CHECK_EQ(c.st_mode & 07777, 02755);
        return 0;
}

static int test_names(void) {
        char err[COPYTAR_ERROR_MAX] = "", buf[64];

        CHECK_EQ(mkdir(P("n"), 0755), 0);
        CHECK_EQ(mkdir(P("n/d"), 0755), 0);
        CHECK_EQ(write_file("n/d/f", "one\n", 0644), 0);
        CHECK_EQ(write_file("n/file", "two\n", 0644), 0);
        CHECK_EQ(write_file("n/target", "old\n", 0644), 0);
        CHECK_EQ(mkdir(P("n/into"), 0755), 0);
        /* a file over a file; a file to a new name; a directory's contents to a new directory */
        CHECK_EQ(copy(P("n/file"), P("n/target"), NULL, err, sizeof err), 0);
        CHECK_EQ(read_all("n/target", buf, sizeof buf), 0);
        CHECK_STREQ(buf, "two\n");
        CHECK_EQ(copy(P("n/d/."), P("n/contents"), NULL, err, sizeof err), 0);
        CHECK_EQ(read_all("n/contents/f", buf, sizeof buf), 0);
        CHECK_STREQ(buf, "one\n");
        CHECK_EQ(copy(P("n/d/."), P("n/into"), NULL, err, sizeof err), 0);
        CHECK_EQ(read_all("n/into/f", buf, sizeof buf), 0);
        /* refusals */
        CHECK_EQ(copy(P("n/d"), P("n/target"), NULL, err, sizeof err), -EISDIR);
        CHECK(strstr(err, "non-directory"));
        CHECK_EQ(copy(P("n/d"), P("n/missing/deeper"), NULL, err, sizeof err), -ENOENT);
        CHECK_EQ(copy(P("n/d"), P("n/newdir/"), NULL, err, sizeof err), -ENOENT);
        CHECK(strstr(err, "no such directory"));
        CHECK_EQ(copy(P("n/nothing"), P("n/x"), NULL, err, sizeof err), -ENOENT);
        CHECK(strstr(err, "nothing"));
        CopyTarOptions small = { .max_entries = 1 };
        CHECK_EQ(copy(P("n/d"), P("n/bounded"), &small, err, sizeof err), -E2BIG);
        CHECK(strstr(err, "more than 1 entries"));
        return 0;
}

static int test_not_a_stream(void) {
        char err[COPYTAR_ERROR_MAX] = "";
        int p[2];

        CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
        CHECK_EQ(write(p[1], "garbage, not a tar", 18), 18);
        close(p[1]);
        CHECK(copytar_unpack(p[0], P("g"), NULL, NULL, err, sizeof err) < 0);
        close(p[0]);
        CHECK(err[0]);
        CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
        close(p[1]);
        CHECK(copytar_unpack(p[0], P("g"), NULL, NULL, err, sizeof err) < 0);
        close(p[0]);
        CHECK(access(P("g"), F_OK) < 0);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(round_trip),
                TAP_TEST(names),
                TAP_TEST(not_a_stream),
        };
        int r;

        /* An unpack that refuses stops reading: the pack then gets EPIPE. */
        signal(SIGPIPE, SIG_IGN);
        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-copytar") < 0)
                return 1;
        r = tap_run(tests, ELEMENTSOF(tests));
        _cleanup_close_ int fd = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || rm_tree_children(fd) < 0 || rmdir(tmp_root) < 0)
                printf("# could not remove %s\n", tmp_root);
        return r;
}
