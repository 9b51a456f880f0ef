/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's volumes in a data directory (sandboxd/volume.c, volume-meta.c): the meta file's parser, and
 * making, listing, opening and removing volumes in a temp directory (root with mke2fs: the file system is
 * made for real; else those cases are skipped): the layout and modes, names per uid, the count bound,
 * a name taken, leftovers of a predecessor removed, and a removed volume gone from the list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "rmtree.h"
#include "tap.h"
#include "volume.h"

static int parse(const char *s, VolumeMeta *m) {
        return volume_meta_parse(s, strlen(s), m);
}

static int test_meta(void) {
        VolumeMeta m = {}, g;
        char buf[VOLUME_META_MAX];
        int n;

        CHECK_EQ(parse("sandbox-volume 1\nsize 16777216\ncreated 7\n", &m), 0);
        CHECK_U64(m.size, UINT64_C(16) << 20);
        CHECK_U64(m.created_usec, 7);
        CHECK_EQ(parse("sandbox-volume 1\ncreated 7\nsize 16777216\n", &g), 0);
        m = (VolumeMeta) { .size = 99, .created_usec = 98 };
        static const char *const bad[] = {
                "", "sandbox-volume 1\n", "sandbox-volume 2\nsize 16777216\ncreated 7\n",
                "sandbox-volume 1\nsize 16777215\ncreated 7\n",          /* below 16 MiB */
                "sandbox-volume 1\nsize 17592186044417\ncreated 7\n",    /* above 16 TiB */
                "sandbox-volume 1\nsize 16777216\nsize 16777216\ncreated 7\n",
                "sandbox-volume 1\nsize 16777216\ncreated 7",            /* no final newline */
                "sandbox-volume 1\nsize 16777216\ncreated 7\nowner 0\n",
                "sandbox-volume 1\nsize  16777216\ncreated 7\n", "sandbox-volume 1\nsize -1\ncreated 7\n",
                "sandbox-volume 1\nsize 0x1000000\ncreated 7\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK_EQ(parse(bad[i], &m), -EBADMSG);
        CHECK_U64(m.size, 99); /* untouched */
        CHECK_EQ(volume_meta_parse("sandbox-volume 1\nsize 16777216\0\ncreated 7\n", 42, &m), -EBADMSG);
        {
                char big[VOLUME_META_MAX + 2];
                memset(big, '\n', sizeof big);
                CHECK_EQ(volume_meta_parse(big, sizeof big, &m), -EBADMSG);
        }
        g = (VolumeMeta) { .size = UINT64_C(1) << 30, .created_usec = UINT64_MAX };
        n = volume_meta_format(&g, buf, sizeof buf);
        CHECK(n > 0);
        CHECK_EQ(volume_meta_parse(buf, (size_t) n, &m), 0);
        CHECK_U64(m.size, g.size);
        CHECK_U64(m.created_usec, UINT64_MAX);
        g.size = 1;
        CHECK_EQ(volume_meta_format(&g, buf, sizeof buf), -EINVAL);
        return 0;
}

static VolumeInfo *vfree(VolumeInfo *v) {
        free(v);
        return NULL;
}

static int need_root(void) {
        if (geteuid() != 0)
                return tap_skip("needs root (mke2fs writes root-owned files, the layout is root's)");
        if (access("/usr/sbin/mke2fs", X_OK) < 0 && access("/sbin/mke2fs", X_OK) < 0)
                return tap_skip("no mke2fs (e2fsprogs)");
        return 0;
}

static int test_store(void) {
        char dir[] = "/tmp/test-volume-XXXXXX", err[512] = "", path[256];
        _cleanup_free_ VolumeInfo *v = NULL;
        _cleanup_close_ int data_fd = -EBADF;
        size_t n = 0;
        struct stat st;
        int r, fd = -EBADF;

        r = need_root();
        if (r)
                return r;
        CHECK(mkdtemp(dir));
        data_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(data_fd >= 0);
        CHECK_EQ(volume_create(data_fd, 1000, "data", UINT64_C(16) << 20, 2, err, sizeof err), 0);
        CHECK_EQ(volume_create(data_fd, 1000, "data", UINT64_C(16) << 20, 2, err, sizeof err), -EEXIST);
        CHECK(strstr(err, "already"));
        CHECK_EQ(volume_create(data_fd, 1001, "data", UINT64_C(32) << 20, 2, err, sizeof err), 0); /* per uid */
        CHECK_EQ(volume_create(data_fd, 1000, "b", UINT64_C(16) << 20, 2, err, sizeof err), 0);
        CHECK_EQ(volume_create(data_fd, 1000, "c", UINT64_C(16) << 20, 2, err, sizeof err), -EDQUOT);
        CHECK(strstr(err, "max-volumes-per-uid = 2"));
        CHECK_EQ(volume_create(data_fd, 1000, "../x", UINT64_C(16) << 20, 0, err, sizeof err), -EINVAL);
        CHECK_EQ(volume_create(data_fd, 1000, "x", 4096, 0, err, sizeof err), -EINVAL);
        /* the layout: 0700 directories, a 0600 sparse image of the size, nothing half made */
        snprintf(path, sizeof path, "%s/volumes/uid-1000/data/image", dir);
        CHECK_EQ(stat(path, &st), 0);
        CHECK_EQ(st.st_mode & 07777, 0600);
        CHECK_U64((uint64_t) st.st_size, UINT64_C(16) << 20);
        CHECK((uint64_t) st.st_blocks * 512 < (UINT64_C(16) << 20));
        snprintf(path, sizeof path, "%s/volumes/uid-1000", dir);
        CHECK_EQ(stat(path, &st), 0);
        CHECK_EQ(st.st_mode & 07777, 0700);
        snprintf(path, sizeof path, "%s/volumes", dir);
        CHECK_EQ(stat(path, &st), 0);
        CHECK_EQ(st.st_mode & 07777, 0700);
        /* lists: one uid's, or all */
        CHECK_EQ(volume_list(data_fd, false, 1000, &v, &n), 0);
        CHECK_EQ(n, 2u);
        CHECK_STREQ(v[0].name, "b");
        CHECK_STREQ(v[1].name, "data");
        CHECK(v[1].uid == 1000 && v[1].meta.size == UINT64_C(16) << 20 && v[1].meta.created_usec > 0);
        v = vfree(v);
        CHECK_EQ(volume_list(data_fd, true, 0, &v, &n), 0);
        CHECK_EQ(n, 3u);
        CHECK(v[2].uid == 1001 && v[2].meta.size == UINT64_C(32) << 20);
        v = vfree(v);
        CHECK_EQ(volume_list(data_fd, false, 4242, &v, &n), 0);
        CHECK_EQ(n, 0u);
        v = vfree(v);
        /* open: one's own only */
        CHECK_EQ(volume_open(data_fd, 1000, "data", &fd), 0);
        CHECK(fd >= 0);
        fd = safe_close(fd);
        CHECK_EQ(volume_open(data_fd, 1002, "data", &fd), -ENOENT);
        CHECK_EQ(volume_open(data_fd, 1000, "nosuch", &fd), -ENOENT);
        CHECK_EQ(volume_open(data_fd, 1000, "..", &fd), -ENOENT);
        /* a predecessor's leftovers go; they were never listed */
        snprintf(path, sizeof path, "%s/volumes/uid-1000/.new-x-00000000", dir);
        CHECK_EQ(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/volumes/uid-1000/.rm-y-00000000", dir);
        CHECK_EQ(mkdir(path, 0700), 0);
        CHECK_EQ(volume_clean_leftovers(data_fd), 0);
        CHECK(access(path, F_OK) < 0 && errno == ENOENT);
        /* a broken meta file: not a volume in the list */
        snprintf(path, sizeof path, "%s/volumes/uid-1000/b/meta", dir);
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(write(fd, "garbage\n", 8), 8);
        fd = safe_close(fd);
        CHECK_EQ(volume_list(data_fd, false, 1000, &v, &n), 0);
        CHECK_EQ(n, 1u);
        v = vfree(v);
        /* remove */
        CHECK_EQ(volume_remove(data_fd, 1000, "data"), 0);
        CHECK_EQ(volume_remove(data_fd, 1000, "data"), -ENOENT);
        CHECK_EQ(volume_remove(data_fd, 1000, "b"), 0);
        CHECK_EQ(volume_list(data_fd, false, 1000, &v, &n), 0);
        CHECK_EQ(n, 0u);
        {
                _cleanup_close_ int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK(tmp >= 0);
                CHECK_EQ(rm_tree_at(tmp, dir + strlen("/tmp/")), 0);
        }
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(meta),
                TAP_TEST(store),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
