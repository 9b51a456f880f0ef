/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON of outside origin, parsed with jansson under bounds of our own: a size limit checked before
 * parsing, a nesting limit checked by a linear pre-scan (jansson's own limit is 2048 levels, compiled
 * in), duplicate object keys refused (so that we and the registry or tool that wrote the document
 * cannot read two different documents from the same bytes), strings with NUL refused (jansson's
 * default) and invalid UTF-8 refused (always, in jansson). Internal to image/: only the files that
 * parse documents include it, and no jansson type appears in any other header.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "strv.h"

/* jansson itself provides json_decrefp() for _cleanup_. */

/* False when BUF nests arrays and objects deeper than MAX_DEPTH levels (strings and their escapes are
 * skipped; anything else is left to the parser). */
bool ojson_depth_ok(const char *buf, size_t len, unsigned max_depth);

/* Parse BUF (LEN bytes, no NUL needed) as one JSON object. On failure ERR says why. */
int ojson_parse_object(const char *buf, size_t len, size_t max_size, unsigned max_depth, json_t **ret, char *err,
                       size_t errlen);

/* OBJ[KEY] if it is a string, else NULL. */
const char *ojson_string(const json_t *obj, const char *key);
/* OBJ[KEY] as an array of at most MAX strings of at most MAX_LEN bytes each: 0 and *ret = NULL when KEY
 * is missing or null, -EBADMSG when it is something else, -E2BIG over the bounds. */
int ojson_strv(const json_t *obj, const char *key, size_t max, size_t max_len, char ***ret);
/* OBJ[KEY] as a non-negative integer: -ENOENT when missing, -EBADMSG when not one. */
int ojson_u64(const json_t *obj, const char *key, uint64_t *ret);

