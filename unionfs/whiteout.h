/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * overlayfs on-disk markers, pure decoding: a whiteout is a character device 0/0; a redirect xattr
 * names where a renamed directory's lower contents live ("/abs/path" from the layer root, or one
 * relative name in the parent's lower directory). Redirects come from layers we do not trust, so
 * they are validated here before any use.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static inline bool whiteout_is_whiteout(const struct stat *st) {
        return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 && minor(st->st_rdev) == 0;
}

/* Turn a raw redirect value into a lower path relative to the layer root (no leading '/').
 * PARENT_LOWER is the parent directory's lower path, used for relative redirects.
 * Returns 0 and a malloc'd *ret, or -EINVAL for a value that is not a clean path. */
int whiteout_redirect_decode(const char *value, size_t size, const char *parent_lower, char **ret);

/* The value to store for a directory whose lower contents live at LOWER_PATH: "/LOWER_PATH". */
int whiteout_redirect_encode(const char *lower_path, char **ret, size_t *ret_size);
