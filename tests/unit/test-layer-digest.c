/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of layer/digest.c's pure parts: the sorted path order (component-wise, so "/a/b" sorts
 * before "/a.b"), listing path escaping and its inverse (which must reject what digest never writes),
 * the "xxh128:" text form, the combiner agreeing with layer_digest() on a small tree, and the walk
 * refusing a file that changes size under it. The tree cases run unprivileged in a temp dir.
 * Output is TAP.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "macro.h"
#include "tap.h"

static int sign(int v) {
        return (v > 0) - (v < 0);
}

static int test_path_order(void) {
        CHECK_EQ(sign(layer_path_compare("/a/b", "/a.b")), -1);
        CHECK_EQ(sign(layer_path_compare("/a.b", "/a/b")), 1);
        CHECK_EQ(sign(layer_path_compare("/a", "/a/b")), -1);
        CHECK_EQ(sign(layer_path_compare("/", "/a")), -1);
        CHECK_EQ(sign(layer_path_compare("/a/b", "/a/b")), 0);
        CHECK_EQ(sign(layer_path_compare("/a b", "/a/b")), 1);   /* ' ' is above '/' once '/' ranks first */
        CHECK_EQ(sign(layer_path_compare("/\x01", "/a")), -1);
        CHECK_EQ(sign(layer_path_compare("/z", "/\xff")), -1);   /* bytes compare unsigned */
        CHECK_EQ(sign(layer_path_compare("/ab/c", "/a/c")), 1);
        return 0;
}

static int test_escape(void) {
        static const char *const cases[][2] = {
                { "/plain name", "/plain name" },
                { "/new\nline", "/new\\x0aline" },
                { "/back\\slash", "/back\\\\slash" },
                { "/\xff\x7f", "/\\xff\\x7f" },
                { "/tab\there", "/tab\\x09here" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = layer_path_escape(cases[i][0]), *u = NULL;
                CHECK_STREQ(e, cases[i][1]);
                CHECK_EQ(layer_path_unescape(e, &u), 0);
                CHECK_STREQ(u, cases[i][0]);
        }
        char *u = NULL;
        CHECK_EQ(layer_path_unescape("/a\\x00b", &u), -EINVAL);  /* NUL cannot be in a path */
        CHECK_EQ(layer_path_unescape("/a\\q", &u), -EINVAL);
        CHECK_EQ(layer_path_unescape("/a\\x4", &u), -EINVAL);
        CHECK_EQ(layer_path_unescape("/a\\", &u), -EINVAL);
        CHECK(u == NULL);
        return 0;
}

static int test_text_form(void) {
        uint8_t d[LAYER_DIGEST_SIZE], back[LAYER_DIGEST_SIZE];
        for (size_t i = 0; i < sizeof(d); i++)
                d[i] = (uint8_t) (i * 17 + 3);
        char s[LAYER_DIGEST_STRING_MAX];
        CHECK_STREQ(layer_digest_format(d, s), "xxh128:031425364758697a8b9cadbecfe0f102");
        CHECK_EQ(strlen(s), 39);
        CHECK_EQ(layer_digest_parse(s, back), 0);
        CHECK(memcmp(d, back, sizeof(d)) == 0);
        CHECK_EQ(layer_digest_parse("XXH128:00", back), -EINVAL);
        CHECK_EQ(layer_digest_parse("xxh128:0123456789abcdef0123456789abcdeg", back), -EINVAL);
        CHECK_EQ(layer_digest_parse("xxh128:0123456789abcdef0123456789abcdef0", back), -EINVAL);
        CHECK_EQ(layer_digest_parse("xxh128:0123456789ABCDEF0123456789abcdef", back), 0);
        CHECK_EQ(back[1], 0x23);
        return 0;
}

static char tmp_root[256];

typedef struct Collected {
        LayerDigestCombiner *c;
        size_t n;
        char last[64];
        bool ordered;
} Collected;

static int collect(const char *path, const uint8_t hash[LAYER_DIGEST_SIZE], void *userdata) {
        Collected *col = userdata;
        if (col->n > 0 && layer_path_compare(col->last, path) >= 0)
                col->ordered = false;
        snprintf(col->last, sizeof(col->last), "%s", path);
        layer_digest_combiner_add(col->c, hash);
        col->n++;
        return 0;
}

static int write_at(int dirfd, const char *name, const char *data) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return write(fd, data, strlen(data)) == (ssize_t) strlen(data) ? 0 : -EIO;
}

static int test_tree_and_combiner(void) {
        _cleanup_close_ int fd = open(tmp_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(mkdirat(fd, "a", 0755) == 0);
        CHECK(mkdirat(fd, "a/b", 0755) == 0);
        CHECK_EQ(write_at(fd, "a/b/f", "one"), 0);
        CHECK_EQ(write_at(fd, "a.b", "two"), 0);
        CHECK(symlinkat("/nowhere", fd, "a/l") == 0);

        Collected col = { .c = layer_digest_combiner_new(), .ordered = true };
        CHECK(col.c);
        uint8_t d1[LAYER_DIGEST_SIZE], d2[LAYER_DIGEST_SIZE], d3[LAYER_DIGEST_SIZE];
        int r = layer_digest(fd, 0, collect, &col, NULL, d1, NULL);
        layer_digest_combiner_finish(col.c, d2);
        layer_digest_combiner_free(col.c);
        CHECK_EQ(r, 0);
        CHECK_EQ(col.n, 6);             /* /, /a, /a/b, /a/b/f, /a/l, /a.b */
        CHECK(col.ordered);
        CHECK_STREQ(col.last, "/a.b");
        CHECK(memcmp(d1, d2, sizeof(d1)) == 0);

        /* a one-byte change anywhere changes the digest; undoing it restores it */
        CHECK_EQ(write_at(fd, "a/b/f", "onE"), 0);
        CHECK_EQ(layer_digest(fd, 0, NULL, NULL, NULL, d3, NULL), 0);
        CHECK(memcmp(d1, d3, sizeof(d1)) != 0);
        CHECK_EQ(write_at(fd, "a/b/f", "one"), 0);
        CHECK_EQ(layer_digest(fd, 0, NULL, NULL, NULL, d3, NULL), 0);
        CHECK(memcmp(d1, d3, sizeof(d1)) == 0);

        /* not a directory */
        _cleanup_close_ int ffd = openat(fd, "a.b", O_RDONLY | O_CLOEXEC);
        CHECK(ffd >= 0);
        CHECK_EQ(layer_digest(ffd, 0, NULL, NULL, NULL, d3, NULL), -ENOTDIR);
        return 0;
}

static int grow(const char *path, const uint8_t hash[LAYER_DIGEST_SIZE], void *userdata) {
        /* Runs for "/a", after the walk listed "/" but before it reads "/f": f no longer has the size
         * the listing saw. */
        if (streq(path, "/a"))
                return write_at(*(int *) userdata, "f", "longer than before");
        return 0;
}

static int test_changing_file_is_refused(void) {
        char sub[300];
        snprintf(sub, sizeof(sub), "%s/changing", tmp_root);
        CHECK(mkdir(sub, 0755) == 0);
        _cleanup_close_ int fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(write_at(fd, "f", "short"), 0);
        CHECK_EQ(write_at(fd, "a", ""), 0);
        uint8_t d[LAYER_DIGEST_SIZE];
        char *failed = NULL;
        CHECK_EQ(layer_digest(fd, 0, grow, &fd, NULL, d, &failed), -ESTALE);
        CHECK_STREQ(failed, "/f");
        free(failed);
        return 0;
}

static const TapTest tests[] = {
        TAP_TEST(path_order),
        TAP_TEST(escape),
        TAP_TEST(text_form),
        TAP_TEST(tree_and_combiner),
        TAP_TEST(changing_file_is_refused),
};

int main(void) {
        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-layer-digest") < 0)
                return 1;
        int r = tap_run(tests, ELEMENTSOF(tests));
        tap_remove_tree(tmp_root);
        return r;
}
