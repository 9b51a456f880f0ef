/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private roots and their record: see rootattr.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "macro.h"
#include "rootattr.h"

/* One decimal or octal number of at most MAX, no sign, no leading zero unless it is "0". */
static int parse_number(const char **p, const char *end, unsigned base, unsigned long long max,
                        unsigned long long *ret) {
        const char *s = *p;
        unsigned long long v = 0;

        if (s >= end || *s < '0' || *s > (char) ('0' + base - 1))
                return -EINVAL;
        if (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9')
                return -EINVAL;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
                if ((unsigned) (*s - '0') >= base)
                        return -EINVAL;
                v = v * base + (unsigned) (*s - '0');
                if (v > max)
                        return -EINVAL;
        }
        *p = s;
        *ret = v;
        return 0;
}

int rootattr_parse(const char *value, size_t size, RootAttr *ret) {
        const char *p = value, *end = value + size;
        unsigned long long mode, uid, gid;

        if (!value || size == 0 || size >= ROOTATTR_VALUE_MAX)
                return -EINVAL;
        if (parse_number(&p, end, 8, 07777, &mode) < 0 || p >= end || *p++ != ' ' ||
            parse_number(&p, end, 10, UINT32_MAX - 1, &uid) < 0 || p >= end || *p++ != ' ' ||
            parse_number(&p, end, 10, UINT32_MAX - 1, &gid) < 0 || p != end)
                return -EINVAL;
        *ret = (RootAttr) { .mode = (mode_t) mode, .uid = (uid_t) uid, .gid = (gid_t) gid };
        return 0;
}

size_t rootattr_format(const RootAttr *a, char buf[static ROOTATTR_VALUE_MAX]) {
        int n = snprintf(buf, ROOTATTR_VALUE_MAX, "%o %u %u", (unsigned) (a->mode & 07777), (unsigned) a->uid,
                         (unsigned) a->gid);
        return n < 0 ? 0 : (size_t) n;
}

static void xattr_name(char buf[static 64], const char *ns) {
        snprintf(buf, 64, "%s" ROOTATTR_XATTR, ns);
}

/* f*xattr() refuse O_PATH fds: go through the fd's magic link, which lands on that very inode. */
static ssize_t get_at(int fd, const char *name, void *buf, size_t size) {
        ssize_t n = fgetxattr(fd, name, buf, size);
        if (n < 0 && errno == EBADF) {
                char proc[32];
                snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
                n = getxattr(proc, name, buf, size);
        }
        return n < 0 ? -errno : n;
}

static int set_at(int fd, const char *name, const void *value, size_t size) {
        int r = fsetxattr(fd, name, value, size, 0);
        if (r < 0 && errno == EBADF) {
                char proc[32];
                snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
                r = setxattr(proc, name, value, size, 0);
        }
        return r < 0 ? -errno : 0;
}

static int read_ns(int fd, const char *ns, RootAttr *ret) {
        char name[64], value[ROOTATTR_VALUE_MAX];
        ssize_t n;

        xattr_name(name, ns);
        n = get_at(fd, name, value, sizeof value);
        if (n == -ENODATA || n == -EOPNOTSUPP)
                return 0;
        if (n == -ERANGE)
                return -EINVAL; /* longer than any valid value */
        if (n < 0)
                return (int) n;
        if (rootattr_parse(value, (size_t) n, ret) < 0)
                return -EINVAL;
        return 1;
}

int rootattr_read(int fd, const char *ns, RootAttr *ret) {
        RootAttr a;
        int r;

        if (ns)
                r = read_ns(fd, ns, &a);
        else {
                r = read_ns(fd, ROOTATTR_NS_TRUSTED, &a);
                if (r == 0)
                        r = read_ns(fd, ROOTATTR_NS_USER, &a);
        }
        if (r > 0)
                *ret = a;
        return r;
}

int rootattr_write(int fd, const char *ns, const RootAttr *a) {
        char name[64], value[ROOTATTR_VALUE_MAX];
        size_t n = rootattr_format(a, value);

        xattr_name(name, ns);
        return set_at(fd, name, value, n);
}

int rootattr_logical(int fd, const char *ns, RootAttr *ret) {
        struct stat st;
        int r = rootattr_read(fd, ns, ret);

        if (r != 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (RootAttr) { .mode = st.st_mode & 07777, .uid = st.st_uid, .gid = st.st_gid };
        return 0;
}

bool rootattr_stat_is_private(const struct stat *st) {
        return st->st_uid == geteuid() && (st->st_mode & 077) == 0;
}

int rootattr_make_private(int fd, const char *ns, const RootAttr *logical) {
        struct stat st;
        RootAttr old;
        bool changed = false;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        r = rootattr_read(fd, ns, &old);
        if (r < 0 && r != -EINVAL) /* a malformed record is replaced */
                return r;
        bool recorded = r > 0 && old.mode == (logical->mode & 07777) && old.uid == logical->uid &&
                        old.gid == logical->gid;
        bool shows_anyway = r == 0 && (logical->mode & 07777) == ROOTATTR_PRIVATE_MODE &&
                            logical->uid == geteuid() && logical->gid == getegid();
        if (!recorded && !shows_anyway) {
                r = rootattr_write(fd, ns, logical);
                if (r < 0)
                        return r;
                changed = true;
        }
        if (st.st_uid != geteuid() || st.st_gid != getegid()) {
                r = fchownat(fd, "", geteuid(), getegid(), AT_EMPTY_PATH);
                if (r < 0)
                        return -errno;
                changed = true;
        }
        if ((st.st_mode & 07777) != ROOTATTR_PRIVATE_MODE) {
                char proc[32];
                snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
                if (fchmod(fd, ROOTATTR_PRIVATE_MODE) < 0 &&
                    (errno != EBADF || chmod(proc, ROOTATTR_PRIVATE_MODE) < 0))
                        return -errno;
                changed = true;
        }
        return changed;
}
