/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for image references (image/ref.c): users type them, archives carry them (docker save
 * RepoTags, OCI annotations) and the store keys its names by them. Input: the reference, cut at the
 * first NUL. Beyond "no crash": image_ref_check() agrees with image_ref_parse(); a parsed reference's
 * canonical form parses again to the same canonical form (normalizing is idempotent), its name fits
 * 255 bytes, and it never contains a character outside the grammar; host_is_loopback() never crashes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/ref.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        char *s = strndup((const char *) data, size);
        ASSERT(s);
        (void) host_is_loopback(s);

        ImageRef *r = NULL;
        int k = image_ref_parse(s, &r);
        ASSERT((k >= 0) == (image_ref_check(s) == NULL));
        if (k >= 0) {
                char *canonical = NULL, *again = NULL, *name = NULL;
                ImageRef *r2 = NULL;
                ASSERT(image_ref_string(r, &canonical) == 0);
                ASSERT(image_ref_name(r, &name) == 0);
                ASSERT(strlen(name) <= IMAGE_REF_NAME_MAX);
                ASSERT(strspn(canonical, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@[]") ==
                       strlen(canonical));
                ASSERT(image_ref_parse(canonical, &r2) == 0);
                ASSERT(image_ref_string(r2, &again) == 0);
                ASSERT(strcmp(canonical, again) == 0);
                ASSERT(strcmp(r->domain, r2->domain) == 0 && strcmp(r->path, r2->path) == 0);
                image_ref_free(r2);
                free(canonical);
                free(again);
                free(name);
        } else
                ASSERT(r == NULL);
        image_ref_free(r);
        free(s);
        return 0;
}
