/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Blob digests: SHA-256 computed by OpenSSL's libcrypto (EVP), and the "sha256:<64 hex>" strings the
 * OCI formats name blobs by. Only sha256 is accepted: it is what every registry and tool writes, and a
 * store keyed by one algorithm cannot be fooled into treating two names of one blob as two blobs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* "sha256:" + 64 hex digits + NUL. */
#define DIGEST_STRING_MAX 72
#define DIGEST_PREFIX "sha256:"
#define DIGEST_HEX_LEN 64

typedef struct Sha256 Sha256;

int sha256_new(Sha256 **ret);
Sha256 *sha256_free(Sha256 *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sha256 *, sha256_free);
/* Start over (forget everything hashed so far). */
int sha256_reset(Sha256 *h);
int sha256_update(Sha256 *h, const void *data, size_t size);
/* Finish and write "sha256:<hex>" to RET; the context must be reset before it is used again. */
int sha256_final(Sha256 *h, char ret[static DIGEST_STRING_MAX]);
/* The digest of one buffer. */
int sha256_buffer(const void *data, size_t size, char ret[static DIGEST_STRING_MAX]);

/* True for exactly "sha256:" followed by 64 lowercase hex digits. */
bool digest_is_valid(const char *s);
/* True for 64 lowercase hex digits (a digest without its algorithm). */
bool digest_hex_is_valid(const char *s);
/* The hex part of a valid digest. */
static inline const char *digest_hex(const char *digest) {
        return digest + sizeof(DIGEST_PREFIX) - 1;
}
