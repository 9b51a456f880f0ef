/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "macro.h"
#include "ovl.h"
#include "xattr.h"

bool ovl_is_whiteout(const struct stat *st) {
        return S_ISCHR(st->st_mode) && major(st->st_rdev) == 0 && minor(st->st_rdev) == 0;
}

bool ovl_xattr_is_marker(const char *name, const char **ret_suffix) {
        const char *s = startswith(name, OVL_NS_TRUSTED "overlay.");
        if (!s)
                s = startswith(name, OVL_NS_USER "overlay.");
        if (!s || *s == '\0')
                return false;
        if (ret_suffix)
                *ret_suffix = s;
        return true;
}

static int opaque_in(int path_fd, const char *name) {
        char v[2];
        ssize_t n = xattr_get(path_fd, name, v, sizeof(v));
        if (n == -ENODATA || n == -EOPNOTSUPP || n == -ERANGE)
                return 0;
        if (n < 0)
                return (int) n;
        return n == 1 && v[0] == 'y';
}

int ovl_dir_is_opaque(int path_fd) {
        int r = opaque_in(path_fd, OVL_NS_TRUSTED "overlay.opaque");
        if (r != 0)
                return r;
        return opaque_in(path_fd, OVL_NS_USER "overlay.opaque");
}

int ovl_is_metacopy(int path_fd) {
        static const char *const names[] = { OVL_NS_TRUSTED "overlay.metacopy", OVL_NS_USER "overlay.metacopy" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ssize_t n = xattr_get(path_fd, names[i], NULL, 0);
                if (n >= 0)
                        return 1;
                if (n != -ENODATA && n != -EOPNOTSUPP)
                        return (int) n;
        }
        return 0;
}

int ovl_dir_set_opaque(int path_fd, const char *ns) {
        char name[64];
        snprintf(name, sizeof(name), "%soverlay.opaque", ns);
        return xattr_set(path_fd, name, "y", 1, 0);
}

int ovl_make_whiteout(int dirfd, const char *name) {
        return RET_NERRNO(mknodat(dirfd, name, S_IFCHR | 0000, makedev(0, 0)));
}

const char *ovl_default_ns(void) {
        return geteuid() == 0 ? OVL_NS_TRUSTED : OVL_NS_USER;
}
