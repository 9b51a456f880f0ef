/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Parsers for registry authentication (see auth.h). Library code: returns -errno, never logs. The
 * challenge parser works on the header bytes directly; every length and count is bounded.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "ojson.h"

void auth_challenge_done(AuthChallenge *c) {
        free(c->realm);
        free(c->service);
        free(c->scope);
        *c = (AuthChallenge) {};
}

static bool is_tchar(char c) {
        /* RFC 7230 token characters. */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* A quoted-string at P (after the opening quote) into a new string; *end after the closing quote. */
static int parse_quoted(const char *p, char **ret, const char **end) {
        size_t cap = strlen(p) + 1, o = 0;
        _cleanup_free_ char *v = malloc(cap);
        if (!v)
                return -ENOMEM;
        for (;; p++) {
                if (*p == '\0')
                        return -EBADMSG;
                if (*p == '"')
                        break;
                if (*p == '\\') {
                        p++;
                        if (*p == '\0')
                                return -EBADMSG;
                }
                if ((unsigned char) *p < 0x20 && *p != '\t')
                        return -EBADMSG;
                v[o++] = *p;
        }
        v[o] = '\0';
        *end = p + 1;
        *ret = TAKE_PTR(v);
        return 0;
}

/* Keep CUR as the result if it is better than BEST (Bearer over Basic over anything else). */
static void challenge_keep_better(AuthChallenge *best, AuthChallenge *cur) {
        if (cur->scheme > best->scheme) {
                auth_challenge_done(best);
                *best = *cur;
                *cur = (AuthChallenge) {};
        } else
                auth_challenge_done(cur);
}

/* An auth-param "NAME=VALUE" at P (NAME of TN bytes at T already read, P after the '='). */
static int parse_param(AuthChallenge *cur, const char *t, size_t tn, const char **pp) {
        _cleanup_free_ char *v = NULL;
        const char *p = skip_ws(*pp);
        int r;

        if (*p == '"') {
                r = parse_quoted(p + 1, &v, &p);
                if (r < 0)
                        return r;
        } else {
                const char *vs = p;
                while (is_tchar(*p))
                        p++;
                if (p == vs)
                        return -EBADMSG;
                v = strndup(vs, (size_t) (p - vs));
                if (!v)
                        return -ENOMEM;
        }
        char **field = NULL;
        if (tn == 5 && strncasecmp(t, "realm", 5) == 0)
                field = &cur->realm;
        else if (tn == 7 && strncasecmp(t, "service", 7) == 0)
                field = &cur->service;
        else if (tn == 5 && strncasecmp(t, "scope", 5) == 0)
                field = &cur->scope;
        if (field) {
                if (*field)
                        return -EBADMSG; /* a parameter twice: ambiguous */
                *field = TAKE_PTR(v);
        }
        *pp = p;
        return 0;
}

int auth_challenge_parse(const char *header, AuthChallenge *ret) {
        AuthChallenge best = {}, cur = {};
        unsigned params = 0;
        bool have_scheme = false;
        int r = 0;

        assert_return(header && ret, -EINVAL);
        if (strlen(header) > AUTH_HEADER_MAX)
                return -EBADMSG;

        /* Items separated by commas: "SCHEME", "SCHEME TOKEN68", "SCHEME NAME=VALUE" or "NAME=VALUE". */
        const char *p = skip_ws(header);
        while (*p && r >= 0) {
                if (*p == ',') { /* empty list elements are allowed */
                        p = skip_ws(p + 1);
                        continue;
                }
                const char *t = p;
                while (is_tchar(*p))
                        p++;
                size_t tn = (size_t) (p - t);
                if (tn == 0) {
                        r = -EBADMSG;
                        break;
                }
                p = skip_ws(p);
                if (*p == '=') {
                        /* A parameter of the current challenge. */
                        if (!have_scheme || ++params > AUTH_PARAMS_MAX) {
                                r = -EBADMSG;
                                break;
                        }
                        p++;
                        r = parse_param(&cur, t, tn, &p);
                } else {
                        /* A new challenge. */
                        challenge_keep_better(&best, &cur);
                        have_scheme = true;
                        cur.scheme = tn == 6 && strncasecmp(t, "bearer", 6) == 0  ? AUTH_SCHEME_BEARER
                                     : tn == 5 && strncasecmp(t, "basic", 5) == 0 ? AUTH_SCHEME_BASIC
                                                                                 : AUTH_SCHEME_NONE;
                        if (*p && *p != ',') {
                                /* Its first parameter, or a token68. */
                                const char *n = p;
                                while (is_tchar(*p))
                                        p++;
                                size_t nn = (size_t) (p - n);
                                const char *q = skip_ws(p);
                                if (nn > 0 && *q == '=' && q[1] != '=' && q[1] != ',' && q[1] != '\0') {
                                        if (++params > AUTH_PARAMS_MAX) {
                                                r = -EBADMSG;
                                                break;
                                        }
                                        p = q + 1;
                                        r = parse_param(&cur, n, nn, &p);
                                } else {
                                        p = n;
                                        while (is_tchar(*p) || *p == '/' || *p == '=')
                                                p++;
                                        if (p == n) {
                                                r = -EBADMSG;
                                                break;
                                        }
                                }
                        }
                }
                if (r < 0)
                        break;
                p = skip_ws(p);
                if (*p == ',')
                        p = skip_ws(p + 1);
                else if (*p)
                        r = -EBADMSG;
        }
        if (r < 0) {
                auth_challenge_done(&cur);
                auth_challenge_done(&best);
                return r;
        }
        challenge_keep_better(&best, &cur);
        if (best.scheme == AUTH_SCHEME_NONE) {
                auth_challenge_done(&best);
                return -EOPNOTSUPP;
        }
        if (best.scheme == AUTH_SCHEME_BEARER && (!best.realm || !*best.realm)) {
                auth_challenge_done(&best);
                return -EBADMSG;
        }
        *ret = best;
        return 0;
}

int auth_token_parse(const char *buf, size_t len, char **ret) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char err[160];

        assert_return(ret, -EINVAL);
        int r = ojson_parse_object(buf, len, AUTH_TOKEN_RESPONSE_MAX, 16, &j, err, sizeof(err));
        if (r < 0)
                return r;
        const char *t = ojson_string(j, "token");
        if (!t || !*t)
                t = ojson_string(j, "access_token");
        if (!t || !*t)
                return -ENOENT;
        size_t n = strlen(t);
        if (n > AUTH_TOKEN_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) t[i] <= 0x20 || (unsigned char) t[i] >= 0x7f)
                        return -EBADMSG;
        *ret = strdup(t);
        return *ret ? 0 : -ENOMEM;
}

/* KEY of an auth file, reduced to host[/path]: no scheme, no trailing slash, no "/v1" or "/v2". */
static char *key_normalize(const char *key) {
        const char *k = startswith(key, "https://") ?: startswith(key, "http://") ?: key;
        char *s = strdup(k);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '/')
                s[--n] = '\0';
        if (n >= 3 && (streq(s + n - 3, "/v1") || streq(s + n - 3, "/v2")))
                s[n - 3] = '\0';
        return s;
}

/* Standard base64 (with padding) of an auth entry, decoded. */
static int base64_decode(const char *in, char **ret, size_t *ret_len) {
        size_t n = strlen(in);
        if (n == 0 || n % 4 != 0 || n > 16384)
                return -EBADMSG;
        _cleanup_free_ unsigned char *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int k = EVP_DecodeBlock(out, (const unsigned char *) in, (int) n);
        if (k < 0)
                return -EBADMSG;
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        size_t len = (size_t) k - (in[n - 1] == '=') - (in[n - 2] == '=');
        out[len] = '\0';
        if (memchr(out, '\0', len))
                return -EBADMSG;
        *ret = (char *) TAKE_PTR(out);
        *ret_len = len;
        return 0;
}

static bool host_matches(const char *key_host, size_t n, const char *host) {
        static const char *const docker[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };
        if (strlen(host) == n && strneq(key_host, host, n))
                return true;
        bool key_docker = false, host_docker = false;
        for (size_t i = 0; i < ELEMENTSOF(docker); i++) {
                key_docker = key_docker || (strlen(docker[i]) == n && strneq(key_host, docker[i], n));
                host_docker = host_docker || streq(host, docker[i]);
        }
        return key_docker && host_docker;
}

/* How well KEY (normalized) names HOST/REPOSITORY: -1 not at all, else the length of the path part
 * it matched (0 = the host alone). */
static int key_score(const char *key, const char *host, const char *repository) {
        size_t hn = strcspn(key, "/");
        if (!host_matches(key, hn, host))
                return -1;
        if (key[hn] == '\0')
                return 0;
        const char *kp = key + hn + 1;
        size_t kl = strlen(kp);
        if (!repository || strncmp(repository, kp, kl) != 0 || (repository[kl] != '\0' && repository[kl] != '/'))
                return -1;
        return (int) MIN(kl, (size_t) 4096) + 1;
}

int auth_file_lookup(const char *buf, size_t len, const char *host, const char *repository, char **ret_user,
                     char **ret_password) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        char err[160];
        const char *key;
        json_t *value;
        const char *best = NULL;
        int best_score = -1;

        assert_return(host && ret_user && ret_password, -EINVAL);
        int r = ojson_parse_object(buf, len, AUTH_FILE_MAX, 16, &j, err, sizeof(err));
        if (r < 0)
                return r;
        json_t *auths = json_object_get(j, "auths");
        if (!auths)
                return -ENOENT;
        if (!json_is_object(auths))
                return -EBADMSG;
        json_object_foreach(auths, key, value) {
                if (!json_is_object(value) || !ojson_string(value, "auth"))
                        continue;
                _cleanup_free_ char *k = key_normalize(key);
                if (!k)
                        return -ENOMEM;
                int score = key_score(k, host, repository);
                if (score > best_score) {
                        best_score = score;
                        best = ojson_string(value, "auth");
                }
        }
        if (!best)
                return -ENOENT;
        _cleanup_free_ char *plain = NULL;
        size_t plen;
        r = base64_decode(best, &plain, &plen);
        if (r < 0)
                return r;
        char *colon = strchr(plain, ':');
        if (!colon || colon == plain)
                return -EBADMSG;
        _cleanup_free_ char *user = strndup(plain, (size_t) (colon - plain));
        _cleanup_free_ char *password = strdup(colon + 1);
        if (!user || !password)
                return -ENOMEM;
        explicit_bzero(plain, plen);
        *ret_user = TAKE_PTR(user);
        *ret_password = TAKE_PTR(password);
        return 0;
}
