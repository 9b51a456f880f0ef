/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of unionfs/whiteout.c: the whiteout test on a struct stat and the redirect xattr codec.
 * Redirect values come from layers we do not trust, so most cases here are hostile values that must
 * be refused: "..", ".", empty components, a trailing '/', embedded NULs, over-long values and names.
 * Every value is passed in a heap buffer of exactly its size, without a terminating NUL, so that a
 * build with -Db_sanitize=address catches any read past the value. Pure logic, no privileges. TAP.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "macro.h"
#include "tap.h"
#include "unionfs/whiteout.h"

/* Decode SIZE bytes of VALUE (copied to an unterminated heap buffer); *ret_r gets the result. */
static char *decode(const char *value, size_t size, const char *parent, int *ret_r) {
        char *buf = malloc(size ? size : 1);
        char *out = (char *) "untouched";
        if (!buf) {
                *ret_r = -ENOMEM;
                return NULL;
        }
        memcpy(buf, value, size);
        *ret_r = whiteout_redirect_decode(buf, size, parent, &out);
        free(buf);
        return out;
}

/* Expect VALUE (a C string, size strlen) to decode to EXPECTED under PARENT. */
static int expect_ok(const char *value, const char *parent, const char *expected) {
        int r;
        char *out = decode(value, strlen(value), parent, &r);
        if (r != 0) {
                printf("# decode(\"%s\", parent \"%s\") = %d (%s), expected \"%s\"\n", value, parent, r,
                       tap_errname(r), expected);
                return -1;
        }
        int ok = streq(out, expected);
        if (!ok)
                printf("# decode(\"%s\", parent \"%s\") = \"%s\", expected \"%s\"\n", value, parent, out, expected);
        free(out);
        return ok ? 0 : -1;
}

/* Expect SIZE bytes of VALUE to be refused with -EINVAL and *ret to stay untouched. */
static int expect_einval(const char *value, size_t size, const char *parent) {
        int r;
        char *out = decode(value, size, parent, &r);
        if (r != -EINVAL) {
                printf("# decode(\"%.*s\" (%zu bytes), parent \"%s\") = %d (%s), expected -EINVAL\n",
                       (int) MIN(size, 80), value, size, parent, r, tap_errname(r));
                if (r == 0)
                        free(out);
                return -1;
        }
        if (!streq(out, "untouched")) {
                printf("# decode(\"%.*s\") failed but wrote *ret\n", (int) MIN(size, 80), value);
                return -1;
        }
        return 0;
}

#define OK(value, parent, expected) CHECK(expect_ok((value), (parent), (expected)) == 0)
#define BAD(value, parent) CHECK(expect_einval((value), strlen(value), (parent)) == 0)
#define BADN(value, size, parent) CHECK(expect_einval((value), (size), (parent)) == 0)

static int test_is_whiteout(void) {
        struct stat st = {};

        st.st_mode = S_IFCHR | 0;
        st.st_rdev = makedev(0, 0);
        CHECK(whiteout_is_whiteout(&st));
        st.st_mode = S_IFCHR | 0644;
        CHECK(whiteout_is_whiteout(&st));
        st.st_rdev = makedev(1, 3); /* /dev/null */
        CHECK(!whiteout_is_whiteout(&st));
        st.st_rdev = makedev(0, 1);
        CHECK(!whiteout_is_whiteout(&st));
        st.st_rdev = makedev(1, 0);
        CHECK(!whiteout_is_whiteout(&st));
        st.st_rdev = makedev(0, 0);
        st.st_mode = S_IFBLK | 0600;
        CHECK(!whiteout_is_whiteout(&st));
        st.st_mode = S_IFREG | 0600;
        CHECK(!whiteout_is_whiteout(&st));
        st.st_mode = S_IFIFO | 0600;
        CHECK(!whiteout_is_whiteout(&st));
        return 0;
}

static int test_relative(void) {
        OK("b", "a/x", "a/x/b");
        OK("b", "a", "a/b");
        OK("b", "", "b");             /* parent is the layer root */
        OK("...", "a", "a/...");      /* only "." and ".." are special */
        OK(".b", "", ".b");
        OK("b.", "", "b.");
        OK("a b\\c", "p", "p/a b\\c");
        OK("\xff\x01", "", "\xff\x01"); /* names are bytes */
        return 0;
}

static int test_relative_refused(void) {
        BAD(".", "a");
        BAD("..", "a");
        BAD("..", "");
        BAD("a/b", "p");      /* relative redirects name one entry */
        BAD("a/", "p");
        BAD("../x", "p");
        BAD("./x", "p");
        return 0;
}

static int test_absolute(void) {
        OK("/a", "ignored/parent", "a");
        OK("/a/b/c", "", "a/b/c");
        OK("/a/.../b", "", "a/.../b");
        OK("/.a/..b/b..", "", ".a/..b/b..");
        return 0;
}

static int test_absolute_refused(void) {
        BAD("/", "");
        BAD("//", "");
        BAD("//a", "");
        BAD("/a//b", "");
        BAD("/a/", "");
        BAD("/a/b/", "");
        BAD("/.", "");
        BAD("/..", "");
        BAD("/a/.", "");
        BAD("/a/..", "");
        BAD("/a/./b", "");
        BAD("/a/../b", "");
        BAD("/../etc", "");
        BAD("/a/../../etc", "");
        return 0;
}

static int test_empty(void) {
        BADN("", 0, "");
        BADN("x", 0, "p"); /* size wins over the buffer's contents */
        return 0;
}

static int test_embedded_nul(void) {
        BADN("a\0b", 3, "p");
        BADN("a\0", 2, "p");
        BADN("\0", 1, "p");
        BADN("/a\0/b", 5, "");
        BADN("/a/b\0", 5, "");    /* a stored terminator is not part of the value */
        BADN("/\0", 2, "");
        return 0;
}

static int test_name_max(void) {
        char name[NAME_MAX + 2], abs[NAME_MAX + 8];

        memset(name, 'n', NAME_MAX);
        name[NAME_MAX] = '\0';
        OK(name, "", name);                      /* 255 bytes: fine */
        snprintf(abs, sizeof abs, "/d/%s", name);
        OK(abs, "", abs + 1);

        memset(name, 'n', NAME_MAX + 1);
        name[NAME_MAX + 1] = '\0';
        BAD(name, "");                           /* 256 bytes: too long for a name */
        snprintf(abs, sizeof abs, "/d/%s", name);
        BAD(abs, "");
        snprintf(abs, sizeof abs, "/%s/d", name);
        BAD(abs, "");
        return 0;
}

/* "/ddd.../ddd..." of exactly LEN bytes with components of at most 200 bytes. */
static char *long_path(size_t len) {
        char *p = malloc(len + 1);
        if (!p)
                return NULL;
        for (size_t i = 0; i < len; i++)
                p[i] = i % 201 == 0 ? '/' : 'd';
        if (p[len - 1] == '/')
                p[len - 1] = 'd', p[len - 2] = '/'; /* never end in '/' */
        p[len] = '\0';
        return p;
}

static int test_path_max(void) {
        _cleanup_free_ char *ok = long_path(PATH_MAX - 1), *bad = long_path(PATH_MAX), *worse = long_path(3 * PATH_MAX);
        CHECK(ok && bad && worse);
        CHECK_EQ(strlen(ok), PATH_MAX - 1);
        OK(ok, "", ok + 1);
        BAD(bad, "");
        BAD(worse, "");

        /* a relative value that long is refused too (it would be a name > NAME_MAX anyway) */
        _cleanup_free_ char *rel = malloc(PATH_MAX + 1);
        CHECK(rel);
        memset(rel, 'r', PATH_MAX);
        rel[PATH_MAX] = '\0';
        BAD(rel, "");
        return 0;
}

static int test_encode(void) {
        char *v = (char *) "untouched";
        size_t n = 12345;

        CHECK_EQ(whiteout_redirect_encode("a/b", &v, &n), 0);
        CHECK_EQ(n, 4);                 /* stored without a terminator, like the kernel */
        CHECK_EQ(memcmp(v, "/a/b", 4), 0);
        CHECK_EQ(v[4], '\0');           /* but the buffer is a C string */
        free(v);

        CHECK_EQ(whiteout_redirect_encode("x", &v, &n), 0);
        CHECK_STREQ(v, "/x");
        CHECK_EQ(n, 2);
        free(v);

        v = (char *) "untouched";
        n = 12345;
        CHECK_EQ(whiteout_redirect_encode("", &v, &n), -EINVAL); /* the root is never redirected */
        CHECK_STREQ(v, "untouched");
        CHECK_EQ(n, 12345);
        return 0;
}

static int test_encode_path_max(void) {
        _cleanup_free_ char *p = malloc(PATH_MAX + 1);
        char *v = NULL;
        size_t n = 0;

        CHECK(p);
        memset(p, 'e', PATH_MAX);
        p[PATH_MAX - 2] = '\0';                  /* "/" + 4094 bytes = 4095: fits a decodable value */
        CHECK_EQ(whiteout_redirect_encode(p, &v, &n), 0);
        CHECK_EQ(n, PATH_MAX - 1);
        free(v);
        p[PATH_MAX - 2] = 'e';
        p[PATH_MAX - 1] = '\0';                  /* 4096 with the '/': would not decode */
        CHECK_EQ(whiteout_redirect_encode(p, &v, &n), -EINVAL);
        return 0;
}

static int test_round_trip(void) {
        static const char *const paths[] = { "a", "a/b", "dir/sub dir/x", "...", ".hidden/..x", "\xc3\xa9t\xc3\xa9" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_free_ char *v = NULL, *back = NULL;
                size_t n;
                CHECK_EQ(whiteout_redirect_encode(paths[i], &v, &n), 0);
                CHECK_EQ(whiteout_redirect_decode(v, n, "unused/parent", &back), 0);
                CHECK_STREQ(back, paths[i]);
        }
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(is_whiteout),
                TAP_TEST(relative),
                TAP_TEST(relative_refused),
                TAP_TEST(absolute),
                TAP_TEST(absolute_refused),
                TAP_TEST(empty),
                TAP_TEST(embedded_nul),
                TAP_TEST(name_max),
                TAP_TEST(path_max),
                TAP_TEST(encode),
                TAP_TEST(encode_path_max),
                TAP_TEST(round_trip),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
