/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image references: [DOMAIN/]PATH[:TAG][@sha256:HEX], with the grammar and the normalization docker,
 * podman and the distribution registry share: a first component that has no '.' or ':' and is not
 * "localhost" is not a domain, so "python:3.12" is docker.io/library/python:3.12; a reference with
 * neither a tag nor a digest means ":latest". References come from users, from archives (docker save
 * RepoTags, OCI annotations) and from our own refs file: the parser is strict and bounded (names of at
 * most 255 bytes, tags of at most 128) and fuzzed.
 */
#pragma once

#include <stdbool.h>

#include "macro.h"

#define IMAGE_REF_NAME_MAX 255
#define IMAGE_REF_TAG_MAX 128
#define IMAGE_REF_INPUT_MAX 1024

#define IMAGE_REF_DOCKER_DOMAIN "docker.io"

typedef struct ImageRef {
        char *domain;           /* "docker.io", "localhost:5000", "[::1]:5000" */
        char *path;             /* "library/python" */
        char *tag;              /* NULL when only a digest was given */
        char *digest;           /* "sha256:<hex>" or NULL */
} ImageRef;

/* Parse and normalize S (-EINVAL when it is not a reference: image_ref_check() says why). */
int image_ref_parse(const char *s, ImageRef **ret);
ImageRef *image_ref_free(ImageRef *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageRef *, image_ref_free);

/* Why S is not a reference, for messages (a static string), or NULL when it is one. */
const char *image_ref_check(const char *s);

/* "DOMAIN/PATH". */
int image_ref_name(const ImageRef *r, char **ret);
/* The canonical form the store keys references by: "DOMAIN/PATH@DIGEST" when there is a digest, else
 * "DOMAIN/PATH:TAG". */
int image_ref_string(const ImageRef *r, char **ret);
/* The same with the tag, even when there is a digest ("DOMAIN/PATH:TAG", or NULL via -ENOENT when
 * there is no tag). */
int image_ref_tag_string(const ImageRef *r, char **ret);

/* The host[:port] to connect to: docker.io is served by registry-1.docker.io. */
const char *image_ref_registry_host(const ImageRef *r);

/* True when HOST (a host, optionally with ":port", or a bracketed IPv6 address) is the loopback:
 * "localhost", 127.0.0.0/8 or ::1. Decided from the name alone, never by a DNS lookup. */
bool host_is_loopback(const char *host);
