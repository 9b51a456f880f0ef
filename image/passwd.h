/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An image's users: /etc/passwd and /etc/group as the image ships them (hostile input, read through its
 * layers by rootfs.h), and the User of an image config or a --user option resolved against them, as
 * docker and podman resolve it:
 *
 *   NAME       the first /etc/passwd entry with that name: its uid and primary gid
 *   UID        that uid; the gid of the first entry with that uid, else 0
 *   X:GROUP    X as above, with the gid of the first /etc/group entry named GROUP
 *   X:GID      X as above, with that gid
 *
 * A name that is not there (or a file that is missing) is an error that says so. The home directory of
 * the entry found goes into HOME when neither the image nor the command line sets it. Supplementary
 * groups are not looked up: a sandbox's user namespace denies setgroups().
 *
 * Pure: no I/O, no logging. Every line is parsed with bounds (fields, numbers, names), malformed lines are
 * skipped as glibc's files backend skips them, and the parser is fuzzed (tests/fuzz/fuzz-image-passwd.c).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define IMAGE_USER_NAME_MAX 255         /* user and group names, as --user takes them (SPEC_USER_MAX - 1) */
#define IMAGE_USER_HOME_MAX 4095

typedef struct ImageUser {
        uint32_t uid, gid;
        char home[IMAGE_USER_HOME_MAX + 1];     /* the entry's home directory; "" when not known */
} ImageUser;

/* Resolve USER (above) against the texts PASSWD (PASSWD_LEN bytes) and GROUP (GROUP_LEN bytes), either of
 * which may be NULL when the image lacks the file. Returns 0; -ENOENT for a name that is not there,
 * -EINVAL for a malformed USER, with a message in ERR (naming the user and the file). */
int image_user_resolve(const char *user, const char *passwd, size_t passwd_len, const char *group,
                       size_t group_len, ImageUser *ret, char *err, size_t errlen);
