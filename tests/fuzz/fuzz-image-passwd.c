/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for an image's users (image/passwd.c): /etc/passwd and /etc/group come from the image, a
 * hostile input that the runtime (as root, in sandboxd for any client) parses to resolve --user or the
 * image's User. Input: USER '\0' PASSWD '\0' GROUP (a missing part: that file is absent). Beyond "no
 * crash": a success gives ids below 2^32 - 1, a home that is empty or absolute and NUL-free within its
 * bound; a numeric user resolves to that uid whatever the files hold; a failure leaves a message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/passwd.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *end = p + size, *passwd = NULL, *group = NULL;
        size_t passwd_len = 0, group_len = 0;
        char user[300], err[512];
        ImageUser u;

        if (size > (1U << 20))
                return 0;
        const char *nul = memchr(p, '\0', size);
        size_t ulen = nul ? (size_t) (nul - p) : size;
        if (ulen >= sizeof user)
                return 0;
        memcpy(user, p, ulen);
        user[ulen] = '\0';
        if (nul) {
                passwd = nul + 1;
                const char *nul2 = memchr(passwd, '\0', (size_t) (end - passwd));
                passwd_len = nul2 ? (size_t) (nul2 - passwd) : (size_t) (end - passwd);
                if (nul2) {
                        group = nul2 + 1;
                        group_len = (size_t) (end - group);
                }
        }

        err[0] = '\0';
        int r = image_user_resolve(user, passwd, passwd_len, group, group_len, &u, err, sizeof err);
        if (r < 0) {
                ASSERT(r == -ENOENT || r == -EINVAL);
                ASSERT(err[0] != '\0');
                return 0;
        }
        ASSERT(u.uid != UINT32_MAX && u.gid != UINT32_MAX);
        ASSERT(strnlen(u.home, sizeof u.home) < sizeof u.home);
        ASSERT(u.home[0] == '\0' || u.home[0] == '/');
        if (strspn(user, "0123456789") == strlen(user) && strlen(user) <= 9)
                ASSERT(u.uid == (uint32_t) strtoul(user, NULL, 10));
        return 0;
}
