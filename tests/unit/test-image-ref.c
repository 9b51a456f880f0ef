/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of image/ref.c: image references are parsed and normalized as docker and podman do
 * ("python:3.12" is docker.io/library/python:3.12, a first component is a registry only when it has a
 * '.' or ':' or is "localhost"), strictly (bad names, tags and digests refused with a reason), and the
 * loopback test decides from the name alone. Output is TAP.
 */
#include "ref.h"
#include "sha256.h"
#include "tap.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int check_ref(const char *in, const char *domain, const char *path, const char *tag, const char *digest,
                     const char *canonical) {
        _cleanup_(image_ref_freep) ImageRef *r = NULL;
        _cleanup_free_ char *s = NULL;
        CHECK_EQ(image_ref_parse(in, &r), 0);
        CHECK_STREQ(r->domain, domain);
        CHECK_STREQ(r->path, path);
        CHECK_STREQ(r->tag, tag);
        CHECK_STREQ(r->digest, digest);
        CHECK_EQ(image_ref_string(r, &s), 0);
        CHECK_STREQ(s, canonical);
        CHECK(image_ref_check(in) == NULL);
        return 0;
}

static int test_normalize(void) {
        CHECK_EQ(check_ref("python", "docker.io", "library/python", "latest", NULL, "docker.io/library/python:latest"), 0);
        CHECK_EQ(check_ref("python:3.12", "docker.io", "library/python", "3.12", NULL, "docker.io/library/python:3.12"), 0);
        CHECK_EQ(check_ref("user/app:v1", "docker.io", "user/app", "v1", NULL, "docker.io/user/app:v1"), 0);
        CHECK_EQ(check_ref("index.docker.io/library/gcc", "docker.io", "library/gcc", "latest", NULL,
                           "docker.io/library/gcc:latest"), 0);
        CHECK_EQ(check_ref("localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest"), 0);
        CHECK_EQ(check_ref("localhost:5000/a/b/c:1.0-rc_1", "localhost:5000", "a/b/c", "1.0-rc_1", NULL,
                           "localhost:5000/a/b/c:1.0-rc_1"), 0);
        CHECK_EQ(check_ref("127.0.0.1:5000/x@sha256:" D64, "127.0.0.1:5000", "x", NULL, "sha256:" D64,
                           "127.0.0.1:5000/x@sha256:" D64), 0);
        CHECK_EQ(check_ref("quay.io/org/img:tag@sha256:" D64, "quay.io", "org/img", "tag", "sha256:" D64,
                           "quay.io/org/img@sha256:" D64), 0);
        CHECK_EQ(check_ref("[::1]:5000/img", "[::1]:5000", "img", "latest", NULL, "[::1]:5000/img:latest"), 0);
        CHECK_EQ(check_ref("a.b-c/d__e.f-g--h", "a.b-c", "d__e.f-g--h", "latest", NULL, "a.b-c/d__e.f-g--h:latest"), 0);
        /* "localhost:5000" alone: a name and a tag, as docker reads it. */
        CHECK_EQ(check_ref("localhost:5000", "docker.io", "library/localhost", "5000", NULL,
                           "docker.io/library/localhost:5000"), 0);

        _cleanup_(image_ref_freep) ImageRef *r = NULL;
        _cleanup_free_ char *name = NULL, *tagged = NULL;
        CHECK_EQ(image_ref_parse("quay.io/org/img:tag@sha256:" D64, &r), 0);
        CHECK_EQ(image_ref_name(r, &name), 0);
        CHECK_STREQ(name, "quay.io/org/img");
        CHECK_EQ(image_ref_tag_string(r, &tagged), 0);
        CHECK_STREQ(tagged, "quay.io/org/img:tag");
        CHECK_STREQ(image_ref_registry_host(r), "quay.io");
        image_ref_free(r);
        r = NULL;
        CHECK_EQ(image_ref_parse("debian", &r), 0);
        CHECK_STREQ(image_ref_registry_host(r), "registry-1.docker.io");
        return 0;
}

static int test_invalid(void) {
        static const char *const bad[] = {
                "", "UPPER", "a//b", "/a", "a/", "a:", ":tag", "a:-tag", "a:.tag", "a@sha256:abc",
                ("a@sha512:" D64 D64), ("a@sha256:" D64 "0"), ("a@SHA256:" D64), "a:tag:tag", "a..b", "a.-b", "-a",
                "a_", "a___b", "host:port/x", "[zz]/x", "a b", "a\tb", "a/b/../c", "a:" /* empty tag */,
                "a:tag with space", "x.io:99999/y",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ImageRef *r = NULL;
                if (image_ref_parse(bad[i], &r) != -EINVAL || r) {
                        printf("# accepted '%s'\n", bad[i]);
                        image_ref_free(r);
                        return -1;
                }
                CHECK(image_ref_check(bad[i]) != NULL);
        }
        /* Bounds: a tag of 128 is fine, 129 is not; a name over 255 bytes is refused. */
        char tag[200] = "a:";
        memset(tag + 2, 'x', 128);
        tag[130] = '\0';
        CHECK(image_ref_check(tag) == NULL);
        tag[130] = 'x';
        tag[131] = '\0';
        CHECK(image_ref_check(tag) != NULL);
        char longname[300];
        memset(longname, 'a', 260);
        longname[260] = '\0';
        CHECK(image_ref_check(longname) != NULL);
        return 0;
}

static int test_loopback(void) {
        CHECK(host_is_loopback("localhost"));
        CHECK(host_is_loopback("LOCALHOST:5000"));
        CHECK(host_is_loopback("127.0.0.1:5000"));
        CHECK(host_is_loopback("127.255.1.2"));
        CHECK(host_is_loopback("[::1]:443"));
        CHECK(host_is_loopback("::1"));
        CHECK(!host_is_loopback("128.0.0.1"));
        CHECK(!host_is_loopback("127.0.0.1.evil.com"));
        CHECK(!host_is_loopback("localhost.evil.com"));
        CHECK(!host_is_loopback("127.0.0"));
        CHECK(!host_is_loopback("127.0.0.256"));
        CHECK(!host_is_loopback("[::2]"));
        CHECK(!host_is_loopback("registry-1.docker.io"));
        CHECK(!host_is_loopback(NULL));
        return 0;
}

static int test_digest(void) {
        char d[DIGEST_STRING_MAX];
        CHECK_EQ(sha256_buffer("", 0, d), 0);
        CHECK_STREQ(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        CHECK_EQ(sha256_buffer("abc", 3, d), 0);
        CHECK_STREQ(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        CHECK(digest_is_valid("sha256:" D64));
        CHECK(!digest_is_valid("sha256:" D64 "0"));
        CHECK(!digest_is_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
        CHECK(!digest_is_valid("sha512:" D64));
        CHECK(!digest_is_valid(NULL));
        CHECK_STREQ(digest_hex("sha256:" D64), D64);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(normalize),
                TAP_TEST(invalid),
                TAP_TEST(loopback),
                TAP_TEST(digest),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
