/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image reference parsing (see ref.h). A hand-written matcher of distribution's reference grammar:
 *   domain    := component ('.' component)* [':' port] | '[' ipv6 ']' [':' port]
 *   component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
 *   path      := pcomp ('/' pcomp)*,  pcomp := [a-z0-9]+ (sep [a-z0-9]+)*,  sep := '.' | '_' | '__' | '-'+
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 * Library code: returns -errno, never logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ref.h"
#include "sha256.h"

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* One path component of N bytes at S. */
static bool path_component_valid(const char *s, size_t n) {
        size_t i = 0;
        if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        while (i < n) {
                if (is_lower_alnum(s[i])) {
                        i++;
                        continue;
                }
                /* A separator: ".", "_", "__" or a run of "-", each followed by an alphanumeric. */
                size_t j = i;
                if (s[i] == '.')
                        j = i + 1;
                else if (s[i] == '_')
                        j = (i + 1 < n && s[i + 1] == '_') ? i + 2 : i + 1;
                else if (s[i] == '-')
                        while (j < n && s[j] == '-')
                                j++;
                else
                        return false;
                if (j >= n || !is_lower_alnum(s[j]))
                        return false;
                i = j;
        }
        return true;
}

static bool path_valid(const char *s, size_t n) {
        size_t start = 0;
        for (size_t i = 0; i <= n; i++)
                if (i == n || s[i] == '/') {
                        if (!path_component_valid(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        return true;
}

static bool port_valid(const char *s, size_t n) {
        unsigned v = 0;
        if (n == 0 || n > 5)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!is_digit(s[i]))
                        return false;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        return v <= 65535;
}

static bool domain_valid(const char *s, size_t n) {
        size_t host_end = n;
        if (n == 0)
                return false;
        if (s[0] == '[') {
                const char *close = memchr(s, ']', n);
                if (!close || close == s + 1)
                        return false;
                for (const char *p = s + 1; p < close; p++)
                        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') ||
                              *p == ':' || *p == '.'))
                                return false;
                size_t used = (size_t) (close - s) + 1;
                if (used == n)
                        return true;
                return s[used] == ':' && port_valid(s + used + 1, n - used - 1);
        }
        const char *colon = memchr(s, ':', n);
        if (colon) {
                host_end = (size_t) (colon - s);
                if (!port_valid(colon + 1, n - host_end - 1))
                        return false;
        }
        size_t start = 0;
        for (size_t i = 0; i <= host_end; i++)
                if (i == host_end || s[i] == '.') {
                        size_t len = i - start;
                        if (len == 0 || !is_alnum(s[start]) || !is_alnum(s[i - 1]))
                                return false;
                        for (size_t k = start; k < i; k++)
                                if (!is_alnum(s[k]) && s[k] != '-')
                                        return false;
                        start = i + 1;
                }
        return true;
}

static bool tag_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > IMAGE_REF_TAG_MAX)
                return false;
        if (!is_alnum(s[0]) && s[0] != '_')
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

ImageRef *image_ref_free(ImageRef *r) {
        if (r) {
                free(r->domain);
                free(r->path);
                free(r->tag);
                free(r->digest);
                free(r);
        }
        return NULL;
}

/* Parse S into R; on failure *why says what is wrong. */
static int parse(const char *s, ImageRef *r, const char **why) {
        if (!s || !*s) {
                *why = "empty reference";
                return -EINVAL;
        }
        size_t len = strlen(s);
        if (len > IMAGE_REF_INPUT_MAX) {
                *why = "reference too long";
                return -EINVAL;
        }

        const char *at = strchr(s, '@');
        size_t name_tag_len = at ? (size_t) (at - s) : len;
        if (at) {
                if (!digest_is_valid(at + 1)) {
                        *why = startswith(at + 1, DIGEST_PREFIX) ? "invalid sha256 digest (64 lowercase hex digits)"
                                                                 : "only sha256 digests are supported";
                        return -EINVAL;
                }
                r->digest = strdup(at + 1);
                if (!r->digest)
                        return -ENOMEM;
        }

        /* The tag is after the last ':' that follows the last '/' (a ':' before it is a port). */
        const char *last_slash = memrchr(s, '/', name_tag_len);
        const char *colon = memrchr(last_slash ? last_slash : s, ':', name_tag_len - (size_t) ((last_slash ?: s) - s));
        size_t name_len = colon ? (size_t) (colon - s) : name_tag_len;
        if (colon) {
                r->tag = strndup(colon + 1, name_tag_len - name_len - 1);
                if (!r->tag)
                        return -ENOMEM;
                if (!tag_valid(r->tag)) {
                        *why = "invalid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')";
                        return -EINVAL;
                }
        }
        if (name_len == 0) {
                *why = "empty name";
                return -EINVAL;
        }

        /* Domain or not: the first component, when there is a '/' and it looks like a host. */
        const char *slash = memchr(s, '/', name_len);
        const char *path = s;
        size_t path_len = name_len;
        if (slash) {
                size_t first = (size_t) (slash - s);
                bool is_domain = memchr(s, '.', first) || memchr(s, ':', first) || memchr(s, '[', first) ||
                                 (first == strlen("localhost") && strneq(s, "localhost", first));
                if (is_domain) {
                        if (!domain_valid(s, first)) {
                                *why = "invalid registry host";
                                return -EINVAL;
                        }
                        r->domain = strndup(s, first);
                        if (!r->domain)
                                return -ENOMEM;
                        path = slash + 1;
                        path_len = name_len - first - 1;
                }
        }
        if (!path_valid(path, path_len)) {
                *why = "invalid repository name (lowercase letters, digits and separators '.', '_', '__', '-', "
                       "components joined by '/')";
                return -EINVAL;
        }

        if (!r->domain || streq(r->domain, "index.docker.io")) {
                free(r->domain);
                r->domain = strdup(IMAGE_REF_DOCKER_DOMAIN);
                if (!r->domain)
                        return -ENOMEM;
        }
        bool library = streq(r->domain, IMAGE_REF_DOCKER_DOMAIN) && !memchr(path, '/', path_len);
        if (asprintf(&r->path, "%s%.*s", library ? "library/" : "", (int) path_len, path) < 0) {
                r->path = NULL;
                return -ENOMEM;
        }
        if (strlen(r->domain) + 1 + strlen(r->path) > IMAGE_REF_NAME_MAX) {
                *why = "name too long (at most 255 bytes with the registry host)";
                return -EINVAL;
        }
        if (!r->tag && !r->digest) {
                r->tag = strdup("latest");
                if (!r->tag)
                        return -ENOMEM;
        }
        return 0;
}

int image_ref_parse(const char *s, ImageRef **ret) {
        assert_return(ret, -EINVAL);
        ImageRef *r = calloc(1, sizeof(*r));
        const char *why = NULL;
        if (!r)
                return -ENOMEM;
        int k = parse(s, r, &why);
        if (k < 0) {
                image_ref_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

const char *image_ref_check(const char *s) {
        ImageRef r = {};
        const char *why = NULL;
        int k = parse(s, &r, &why);
        free(r.domain);
        free(r.path);
        free(r.tag);
        free(r.digest);
        if (k == -ENOMEM)
                return "out of memory";
        return k < 0 ? (why ?: "invalid reference") : NULL;
}

int image_ref_name(const ImageRef *r, char **ret) {
        assert_return(r && ret, -EINVAL);
        return asprintf(ret, "%s/%s", r->domain, r->path) < 0 ? -ENOMEM : 0;
}

int image_ref_string(const ImageRef *r, char **ret) {
        assert_return(r && ret && (r->tag || r->digest), -EINVAL);
        int k = r->digest ? asprintf(ret, "%s/%s@%s", r->domain, r->path, r->digest)
                          : asprintf(ret, "%s/%s:%s", r->domain, r->path, r->tag);
        return k < 0 ? -ENOMEM : 0;
}

int image_ref_tag_string(const ImageRef *r, char **ret) {
        assert_return(r && ret, -EINVAL);
        if (!r->tag)
                return -ENOENT;
        return asprintf(ret, "%s/%s:%s", r->domain, r->path, r->tag) < 0 ? -ENOMEM : 0;
}

const char *image_ref_registry_host(const ImageRef *r) {
        return streq(r->domain, IMAGE_REF_DOCKER_DOMAIN) ? "registry-1.docker.io" : r->domain;
}

bool host_is_loopback(const char *host) {
        char buf[256];
        size_t n;

        if (!host)
                return false;
        if (streq(host, "::1"))
                return true;
        if (host[0] == '[') {
                const char *close = strchr(host, ']');
                if (!close)
                        return false;
                n = (size_t) (close - host - 1);
                if (n >= sizeof(buf))
                        return false;
                memcpy(buf, host + 1, n);
                buf[n] = '\0';
                return streq(buf, "::1") || streq(buf, "0:0:0:0:0:0:0:1");
        }
        n = strcspn(host, ":");
        if (n >= sizeof(buf))
                return false;
        memcpy(buf, host, n);
        buf[n] = '\0';
        if (strcasecmp(buf, "localhost") == 0)
                return true;
        /* 127.a.b.c, each part a decimal number up to 255. */
        unsigned parts[4], count = 0;
        const char *p = buf;
        while (count < 4) {
                if (!is_digit(*p))
                        return false;
                unsigned v = 0, digits = 0;
                while (is_digit(*p) && digits < 4) {
                        v = v * 10 + (unsigned) (*p++ - '0');
                        digits++;
                }
                if (v > 255 || digits > 3)
                        return false;
                parts[count++] = v;
                if (*p == '.' && count < 4)
                        p++;
                else
                        break;
        }
        return count == 4 && *p == '\0' && parts[0] == 127;
}
