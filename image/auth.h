/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Registry authentication input, all of it outside data: the WWW-Authenticate challenge of a 401
 * (RFC 7235: "Bearer realm=...,service=...,scope=..." or "Basic realm=..."), the token server's
 * answer ({"token": ...} or {"access_token": ...}) and credentials files in the format docker's
 * ~/.docker/config.json and containers' auth.json share ({"auths": {"HOST": {"auth": base64(USER:PASS)}}}).
 * Parsers only (fuzzed by tests/fuzz/fuzz-image-auth.c); registry.c does the HTTP.
 */
#pragma once

#include <stddef.h>

#include "macro.h"

#define AUTH_HEADER_MAX 8192
#define AUTH_PARAMS_MAX 32
#define AUTH_TOKEN_MAX (64 * 1024)
#define AUTH_TOKEN_RESPONSE_MAX (1024 * 1024)
#define AUTH_FILE_MAX (1024 * 1024)

typedef enum AuthScheme {
        AUTH_SCHEME_NONE,
        AUTH_SCHEME_BASIC,
        AUTH_SCHEME_BEARER,
} AuthScheme;

typedef struct AuthChallenge {
        AuthScheme scheme;
        char *realm;                    /* Bearer: the token server's URL */
        char *service;
        char *scope;
} AuthChallenge;

void auth_challenge_done(AuthChallenge *c);

/* One WWW-Authenticate header value (possibly several challenges; Bearer is preferred over Basic, other
 * schemes are skipped). -EBADMSG for a malformed header, -EOPNOTSUPP when it names no scheme we
 * speak. On success *ret is filled (and must be released with auth_challenge_done()). */
int auth_challenge_parse(const char *header, AuthChallenge *ret);

/* The token of a token server's JSON answer: printable ASCII without spaces only (it goes into a
 * header), at most AUTH_TOKEN_MAX bytes. */
int auth_token_parse(const char *buf, size_t len, char **ret);

/* The credentials for registry HOST (host[:port]; REPOSITORY "path/of/repo" or NULL) in an auth file:
 * the most specific key wins ("host/path/of/repo", ..., "host"), keys may carry a scheme and a path
 * ("https://index.docker.io/v1/"), docker.io also answers to index.docker.io and registry-1.docker.io.
 * -ENOENT when the file has none for HOST. */
int auth_file_lookup(const char *buf, size_t len, const char *host, const char *repository, char **ret_user,
                     char **ret_password);
