/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of image/auth.c: WWW-Authenticate challenges (Bearer preferred over Basic, quoted strings
 * with escapes, several challenges in one header, malformed and unknown ones refused), token server
 * answers (token or access_token; nothing that could break a header line), and credentials files in
 * the docker config.json / containers auth.json format (key forms, docker.io aliases, the most
 * specific repository key). Output is TAP.
 */
#include <openssl/evp.h>

#include "auth.h"
#include "tap.h"

static int test_challenge(void) {
        AuthChallenge c = {};
        CHECK_EQ(auth_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                                      "scope=\"repository:library/ubuntu:pull\"", &c), 0);
        CHECK_EQ(c.scheme, AUTH_SCHEME_BEARER);
        CHECK_STREQ(c.realm, "https://auth.docker.io/token");
        CHECK_STREQ(c.service, "registry.docker.io");
        CHECK_STREQ(c.scope, "repository:library/ubuntu:pull");
        auth_challenge_done(&c);

        /* Case, spaces, unquoted values, escapes, another challenge before it. */
        CHECK_EQ(auth_challenge_parse("Basic realm=\"Registry\", bearer  Realm = \"http://127.0.0.1:1/t?a=\\\"b\\\"\" ,"
                                      " service=svc", &c), 0);
        CHECK_EQ(c.scheme, AUTH_SCHEME_BEARER);
        CHECK_STREQ(c.realm, "http://127.0.0.1:1/t?a=\"b\"");
        CHECK_STREQ(c.service, "svc");
        CHECK(c.scope == NULL);
        auth_challenge_done(&c);

        CHECK_EQ(auth_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
        CHECK_EQ(c.scheme, AUTH_SCHEME_BASIC);
        auth_challenge_done(&c);
        CHECK_EQ(auth_challenge_parse("Negotiate abc==, Basic realm=x", &c), 0);
        CHECK_EQ(c.scheme, AUTH_SCHEME_BASIC);
        auth_challenge_done(&c);

        CHECK_EQ(auth_challenge_parse("Negotiate abc==", &c), -EOPNOTSUPP);
        CHECK_EQ(auth_challenge_parse("Digest realm=\"x\", nonce=\"y\"", &c), -EOPNOTSUPP);
        static const char *const bad[] = {
                "", "Bearer service=x", "Bearer realm=\"unterminated", "Bearer realm=\"a\", realm=\"b\"",
                "realm=\"x\"", "Bearer realm=\"x\" junk junk", "Bearer realm=\"a\x01\"", "Bearer realm=",
                "Bearer ,, realm=\"x\" \"y\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = auth_challenge_parse(bad[i], &c);
                if (r != -EBADMSG && r != -EOPNOTSUPP) {
                        printf("# accepted '%s' (%d)\n", bad[i], r);
                        auth_challenge_done(&c);
                        return -1;
                }
        }
        char big[AUTH_HEADER_MAX + 64] = "Bearer realm=\"";
        memset(big + 14, 'a', AUTH_HEADER_MAX);
        strcpy(big + 14 + AUTH_HEADER_MAX, "\"");
        CHECK_EQ(auth_challenge_parse(big, &c), -EBADMSG);
        return 0;
}

static int test_token(void) {
        _cleanup_free_ char *t = NULL;
        const char *a = "{\"token\": \"abc.def-ghi_jkl=\", \"expires_in\": 300}";
        CHECK_EQ(auth_token_parse(a, strlen(a), &t), 0);
        CHECK_STREQ(t, "abc.def-ghi_jkl=");
        free(t);
        t = NULL;
        const char *b = "{\"token\": \"\", \"access_token\": \"xyz\"}";
        CHECK_EQ(auth_token_parse(b, strlen(b), &t), 0);
        CHECK_STREQ(t, "xyz");
        static const char *const bad[] = { "{}", "{\"token\": 5}", "{\"token\": \"a b\"}", "{\"token\": \"a\\r\\nX: y\"}",
                                           "{\"token\": \"\\u00e9\"}", "not json" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *x = NULL;
                if (auth_token_parse(bad[i], strlen(bad[i]), &x) >= 0 || x) {
                        printf("# accepted %s\n", bad[i]);
                        free(x);
                        return -1;
                }
        }
        return 0;
}

static char *b64(const char *s) {
        char *out = malloc(strlen(s) * 2 + 8);
        EVP_EncodeBlock((unsigned char *) out, (const unsigned char *) s, (int) strlen(s));
        return out;
}

static int lookup(const char *file, const char *host, const char *repo, const char *user, const char *password) {
        _cleanup_free_ char *u = NULL, *p = NULL;
        CHECK_EQ(auth_file_lookup(file, strlen(file), host, repo, &u, &p), 0);
        CHECK_STREQ(u, user);
        CHECK_STREQ(p, password);
        return 0;
}

static int test_auth_file(void) {
        _cleanup_free_ char *a = b64("alice:pa:ss"), *b = b64("bob:x"), *c = b64("carol:y"), *d = b64("dave:z");
        char file[2048];
        snprintf(file, sizeof(file),
                 "{\"auths\": {\"localhost:5000\": {\"auth\": \"%s\"}, \"https://index.docker.io/v1/\": {\"auth\": \"%s\"},"
                 " \"quay.io/team\": {\"auth\": \"%s\"}, \"quay.io\": {\"auth\": \"%s\"}, \"http://127.0.0.1:9/\": {}},"
                 " \"credsStore\": \"desktop\"}", a, b, c, d);
        CHECK_EQ(lookup(file, "localhost:5000", "x/y", "alice", "pa:ss"), 0);
        CHECK_EQ(lookup(file, "registry-1.docker.io", "library/debian", "bob", "x"), 0);
        CHECK_EQ(lookup(file, "docker.io", NULL, "bob", "x"), 0);
        CHECK_EQ(lookup(file, "quay.io", "team/app", "carol", "y"), 0);
        CHECK_EQ(lookup(file, "quay.io", "teamx/app", "dave", "z"), 0);
        CHECK_EQ(lookup(file, "quay.io", "other/app", "dave", "z"), 0);

        _cleanup_free_ char *u = NULL, *p = NULL;
        CHECK_EQ(auth_file_lookup(file, strlen(file), "localhost:5001", NULL, &u, &p), -ENOENT);
        CHECK_EQ(auth_file_lookup(file, strlen(file), "127.0.0.1:9", NULL, &u, &p), -ENOENT);
        static const char *const bad[] = { "{\"auths\": {\"h\": {\"auth\": \"!!!!\"}}}",
                                           "{\"auths\": {\"h\": {\"auth\": \"bm9jb2xvbg==\"}}}", /* "nocolon" */
                                           "{\"auths\": []}", "[1]" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (auth_file_lookup(bad[i], strlen(bad[i]), "h", NULL, &u, &p) >= 0) {
                        printf("# accepted %s\n", bad[i]);
                        return -1;
                }
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(challenge),
                TAP_TEST(token),
                TAP_TEST(auth_file),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
