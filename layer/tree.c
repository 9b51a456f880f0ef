/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "tree.h"

void tree_list_free(TreeList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->entries[i].name);
        free(l->entries);
        *l = (TreeList) {};
}

static int entry_cmp(const void *a, const void *b) {
        return strcmp(((const TreeEntry *) a)->name, ((const TreeEntry *) b)->name);
}

int tree_list(int dirfd, TreeList *ret) {
        _cleanup_close_ int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        _cleanup_closedir_ DIR *dir = d;
        rewinddir(dir);

        TreeList l = {};
        size_t cap = 0;
        int r = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(dir);
                if (!de) {
                        if (errno)
                                r = -errno;
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        r = -errno;
                        break;
                }
                if (l.n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        TreeEntry *e = reallocarray(l.entries, ncap, sizeof(*e));
                        if (!e) {
                                r = -ENOMEM;
                                break;
                        }
                        l.entries = e;
                        cap = ncap;
                }
                char *name = strdup(de->d_name);
                if (!name) {
                        r = -ENOMEM;
                        break;
                }
                l.entries[l.n++] = (TreeEntry) { .name = name, .st = st };
        }
        if (r < 0) {
                tree_list_free(&l);
                return r;
        }
        if (l.n > 1)
                qsort(l.entries, l.n, sizeof(l.entries[0]), entry_cmp);
        *ret = l;
        return 0;
}

int tree_open_dir(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}
