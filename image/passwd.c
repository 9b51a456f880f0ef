/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An image's users from its /etc/passwd and /etc/group texts; see passwd.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "macro.h"
#include "passwd.h"

#define FIELDS_MAX 7

typedef struct Span {
        const char *p;
        size_t n;
} Span;

/* A decimal id: 1 to 10 digits, below 2^32 - 1 (which is "-1", no id). */
static bool parse_id(const char *s, size_t n, uint32_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 10)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        if (v >= UINT32_MAX)
                return false;
        *ret = (uint32_t) v;
        return true;
}

static bool span_eq(Span a, const char *s) {
        return a.n == strlen(s) && memcmp(a.p, s, a.n) == 0;
}

/* The next line of TEXT[*pos..len) split at ':' into at most FIELDS_MAX fields; false at the end. A line
 * that holds a NUL, a comment or a NIS marker ('+', '-') gives 0 fields. */
static bool next_line(const char *text, size_t len, size_t *pos, Span f[FIELDS_MAX], size_t *ret_n) {
        const char *s, *e, *nl;
        size_t n = 0;

        if (*pos >= len)
                return false;
        s = text + *pos;
        nl = memchr(s, '\n', len - *pos);
        e = nl ?: text + len;
        *pos = (size_t) (e - text) + (nl ? 1 : 0);
        *ret_n = 0;
        if (e == s || memchr(s, '\0', (size_t) (e - s)) || *s == '#' || *s == '+' || *s == '-')
                return true;
        for (const char *c = s;;) {
                const char *colon = memchr(c, ':', (size_t) (e - c));
                const char *end = colon ?: e;
                if (n == FIELDS_MAX)
                        return true; /* too many fields: malformed, skipped */
                f[n++] = (Span) { c, (size_t) (end - c) };
                if (!colon)
                        break;
                c = colon + 1;
        }
        /* A Windows line end is not part of the last field. */
        if (f[n - 1].n > 0 && f[n - 1].p[f[n - 1].n - 1] == '\r')
                f[n - 1].n--;
        *ret_n = n;
        return true;
}

/* The first passwd entry named NAME (or, NAME NULL, with uid UID): 1 and its ids and home, or 0. */
static int passwd_find(const char *text, size_t len, const char *name, uint32_t uid, ImageUser *ret) {
        Span f[FIELDS_MAX];
        size_t pos = 0, n;

        while (next_line(text, len, &pos, f, &n)) {
                uint32_t u, g;

                /* name:password:uid:gid[:gecos:home:shell] */
                if (n < 4 || f[0].n == 0 || !parse_id(f[2].p, f[2].n, &u) || !parse_id(f[3].p, f[3].n, &g))
                        continue;
                if (name ? !span_eq(f[0], name) : u != uid)
                        continue;
                *ret = (ImageUser) { .uid = u, .gid = g };
                if (n >= 6 && f[5].n > 0 && f[5].n <= IMAGE_USER_HOME_MAX && f[5].p[0] == '/') {
                        memcpy(ret->home, f[5].p, f[5].n);
                        ret->home[f[5].n] = '\0';
                }
                return 1;
        }
        return 0;
}

/* The gid of the first group entry named NAME: 1, or 0. */
static int group_find(const char *text, size_t len, const char *name, uint32_t *ret_gid) {
        Span f[FIELDS_MAX];
        size_t pos = 0, n;

        while (next_line(text, len, &pos, f, &n)) {
                uint32_t g;

                /* name:password:gid[:members] */
                if (n < 3 || n > 4 || !span_eq(f[0], name) || !parse_id(f[2].p, f[2].n, &g))
                        continue;
                *ret_gid = g;
                return 1;
        }
        return 0;
}

static bool name_ok(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > IMAGE_USER_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f || s[i] == ':')
                        return false;
        return true;
}

int image_user_resolve(const char *user, const char *passwd, size_t passwd_len, const char *group,
                       size_t group_len, ImageUser *ret, char *err, size_t errlen) {
        char u[IMAGE_USER_NAME_MAX + 1], *g;
        ImageUser r = {};
        uint32_t id;

        if (!user || strlen(user) >= sizeof u)
                return errbuf_set(err, errlen, -EINVAL, "user '%.64s...' is longer than %d bytes",
                                  user ?: "", IMAGE_USER_NAME_MAX);
        strcpy(u, user);
        g = strchr(u, ':');
        if (g)
                *g++ = '\0';
        if (!name_ok(u) || (g && !name_ok(g)))
                return errbuf_set(err, errlen, -EINVAL, "user '%s' is not NAME, UID, NAME:GROUP or UID:GID",
                                  user);

        if (parse_id(u, strlen(u), &id)) {
                /* A uid need not be in /etc/passwd; if it is, its entry gives the group and home. */
                if (!passwd || passwd_find(passwd, passwd_len, NULL, id, &r) == 0)
                        r = (ImageUser) { .uid = id, .gid = 0 };
        } else if (!passwd)
                return errbuf_set(err, errlen, -ENOENT,
                                  "user '%s': the image has no /etc/passwd to look it up in", u);
        else if (passwd_find(passwd, passwd_len, u, 0, &r) == 0)
                return errbuf_set(err, errlen, -ENOENT, "user '%s' is not in the image's /etc/passwd", u);

        if (g) {
                if (parse_id(g, strlen(g), &id))
                        r.gid = id;
                else if (!group)
                        return errbuf_set(err, errlen, -ENOENT,
                                          "group '%s': the image has no /etc/group to look it up in", g);
                else if (group_find(group, group_len, g, &r.gid) == 0)
                        return errbuf_set(err, errlen, -ENOENT,
                                          "group '%s' is not in the image's /etc/group", g);
        }
        *ret = r;
        return 0;
}
