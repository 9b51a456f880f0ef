/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bounded JSON parsing over jansson; see ojson.h. Library code: returns -errno, never logs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ojson.h"

bool ojson_depth_ok(const char *buf, size_t len, unsigned max_depth) {
        unsigned depth = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (in_string) {
                        if (c == '\\')
                                i++; /* the escaped character (the parser checks the rest of \uXXXX) */
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == '"')
                        in_string = true;
                else if (c == '[' || c == '{') {
                        if (++depth > max_depth)
                                return false;
                } else if ((c == ']' || c == '}') && depth > 0)
                        depth--;
        }
        return true;
}

int ojson_parse_object(const char *buf, size_t len, size_t max_size, unsigned max_depth, json_t **ret, char *err,
                       size_t errlen) {
        assert_return(buf || len == 0, -EINVAL);
        assert_return(ret, -EINVAL);
        if (len > max_size) {
                snprintf(err, errlen, "document of %zu bytes exceeds the limit of %zu", len, max_size);
                return -E2BIG;
        }
        if (!ojson_depth_ok(buf, len, max_depth)) {
                snprintf(err, errlen, "JSON nested deeper than %u levels", max_depth);
                return -E2BIG;
        }
        json_error_t e;
        json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", e.line, e.column, e.text);
                return -EBADMSG;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                snprintf(err, errlen, "JSON document is not an object");
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

const char *ojson_string(const json_t *obj, const char *key) {
        json_t *v = json_object_get(obj, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

int ojson_strv(const json_t *obj, const char *key, size_t max, size_t max_len, char ***ret) {
        json_t *v = json_object_get(obj, key);
        assert_return(ret, -EINVAL);
        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_array(v))
                return -EBADMSG;
        size_t n = json_array_size(v);
        if (n > max)
                return -E2BIG;
        _cleanup_(strv_freep) char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(v, i);
                if (!json_is_string(s))
                        return -EBADMSG;
                if (json_string_length(s) > max_len)
                        return -E2BIG;
                l[i] = strdup(json_string_value(s));
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int ojson_u64(const json_t *obj, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v)
                return -ENOENT;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}
