/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SHA-256 through OpenSSL's EVP interface (see sha256.h). OpenSSL picks the SHA extensions or AVX2 at
 * run time; we only format the result.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "sha256.h"

struct Sha256 {
        EVP_MD_CTX *ctx;
};

int sha256_new(Sha256 **ret) {
        assert_return(ret, -EINVAL);
        Sha256 *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                sha256_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

Sha256 *sha256_free(Sha256 *h) {
        if (h) {
                EVP_MD_CTX_free(h->ctx);
                free(h);
        }
        return NULL;
}

int sha256_reset(Sha256 *h) {
        assert_return(h, -EINVAL);
        return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int sha256_update(Sha256 *h, const void *data, size_t size) {
        assert_return(h, -EINVAL);
        if (size == 0)
                return 0;
        return EVP_DigestUpdate(h->ctx, data, size) == 1 ? 0 : -EIO;
}

int sha256_final(Sha256 *h, char ret[static DIGEST_STRING_MAX]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        assert_return(h, -EINVAL);
        if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != DIGEST_HEX_LEN / 2)
                return -EIO;
        char *p = stpcpy(ret, DIGEST_PREFIX);
        for (unsigned i = 0; i < n; i++) {
                *p++ = hex[md[i] >> 4];
                *p++ = hex[md[i] & 15];
        }
        *p = '\0';
        return 0;
}

int sha256_buffer(const void *data, size_t size, char ret[static DIGEST_STRING_MAX]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        int r = sha256_new(&h);
        if (r < 0)
                return r;
        r = sha256_update(h, data, size);
        if (r < 0)
                return r;
        return sha256_final(h, ret);
}

bool digest_hex_is_valid(const char *s) {
        if (!s || strlen(s) != DIGEST_HEX_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

bool digest_is_valid(const char *s) {
        const char *hex = s ? startswith(s, DIGEST_PREFIX) : NULL;
        return hex && digest_hex_is_valid(hex);
}
