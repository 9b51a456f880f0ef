/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Merged directory listings: the upper first, then each merged lower layer; the first layer that has
 * a name decides it, whiteouts hide the name below, and every name is listed once (an xxhash set).
 * The listing is a snapshot taken at opendir time, served by index as the readdir offset.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "copyup.h"
#include "fs.h"
#include "macro.h"
#include "union.h"
#include "whiteout.h"

typedef struct NameSet {
        uint32_t *slots;   /* index+1 into names, 0 = empty */
        const char **names;
        size_t n_slots, n_names, cap_names;
} NameSet;

static void name_set_done(NameSet *s) {
        free(s->slots);
        free(s->names);
}

static size_t name_hash(const char *name) {
        return (size_t) XXH3_64bits(name, strlen(name));
}

static int name_set_grow(NameSet *s) {
        size_t nn = s->n_slots ? s->n_slots * 2 : 64;
        uint32_t *slots = calloc(nn, sizeof(uint32_t));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_names; i++) {
                size_t h = name_hash(s->names[i]) & (nn - 1);
                while (slots[h])
                        h = (h + 1) & (nn - 1);
                slots[h] = (uint32_t) i + 1;
        }
        free(s->slots);
        s->slots = slots;
        s->n_slots = nn;
        return 0;
}

/* Add NAME (not copied: the caller keeps it alive). Returns 1 if added, 0 if already present. */
static int name_set_add(NameSet *s, const char *name) {
        if ((s->n_names + 1) * 2 > s->n_slots && name_set_grow(s) < 0)
                return -ENOMEM;
        size_t h = name_hash(name) & (s->n_slots - 1);
        for (; s->slots[h]; h = (h + 1) & (s->n_slots - 1))
                if (streq(s->names[s->slots[h] - 1], name))
                        return 0;
        if (s->n_names == s->cap_names) {
                size_t nc = s->cap_names ? s->cap_names * 2 : 64;
                const char **nn = realloc(s->names, nc * sizeof(char *));
                if (!nn)
                        return -ENOMEM;
                s->names = nn;
                s->cap_names = nc;
        }
        s->names[s->n_names] = name;
        s->slots[h] = (uint32_t) ++s->n_names;
        return 1;
}

void dir_list_done(DirList *l) {
        for (size_t i = 0; i < l->n_entries; i++)
                free(l->entries[i].name);
        free(l->entries);
        *l = (DirList) {};
}

static int list_append(DirList *l, size_t *cap, const char *name, uint64_t ino, unsigned char type) {
        if (l->n_entries == *cap) {
                size_t nc = *cap ? *cap * 2 : 32;
                DirEntry *ne = realloc(l->entries, nc * sizeof(DirEntry));
                if (!ne)
                        return -ENOMEM;
                l->entries = ne;
                *cap = nc;
        }
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        l->entries[l->n_entries++] = (DirEntry) { .name = copy, .ino = ino, .type = type };
        return 0;
}

/* Names hidden by whiteouts are kept in HIDDEN (owned strings) so lower layers skip them. */
typedef struct HiddenNames {
        char **v;
        size_t n, cap;
} HiddenNames;

static void hidden_done(HiddenNames *h) {
        for (size_t i = 0; i < h->n; i++)
                free(h->v[i]);
        free(h->v);
}

/* Open DIR's directory in LAYER for reading: upper copies through the node's cached fd. */
static int open_dir_in(Union *u, Node *dir, int layer) {
        if (u->has_upper && layer == UPPER) {
                _cleanup_(dir_ref_done) DirRef d = DIR_REF_NULL;
                int r = union_upper_dir(u, dir, &d);
                return r < 0 ? r : open_beneath(d.fd, ".", O_RDONLY | O_DIRECTORY, 0);
        }
        _cleanup_free_ char *path = NULL;
        int r = node_layer_path(u, dir, layer, &path);
        return r < 0 ? r : layer_open(u, layer, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

static int read_layer(Union *u, Node *dir, int layer, NameSet *set, HiddenNames *hidden, DirList *l, size_t *cap) {
        int fd = open_dir_in(u, dir, layer);
        if (fd < 0)
                return fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP ? 0 : fd;
        DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        _cleanup_closedir_ _unused_ DIR *dp = d;
        struct dirent *de;
        int r;

        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                bool whiteout = false;
                if (de->d_type == DT_CHR || de->d_type == DT_UNKNOWN) {
                        struct stat st;
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue; /* vanished (only a concurrent change of the upper) */
                        whiteout = whiteout_is_whiteout(&st);
                        if (de->d_type == DT_UNKNOWN)
                                de->d_type = IFTODT(st.st_mode);
                }
                if (whiteout) {
                        char *copy = strdup(de->d_name);
                        if (!copy)
                                return -ENOMEM;
                        r = name_set_add(set, copy);
                        if (r <= 0) {
                                free(copy);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (hidden->n == hidden->cap) {
                                size_t nc = hidden->cap ? hidden->cap * 2 : 16;
                                char **nv = realloc(hidden->v, nc * sizeof(char *));
                                if (!nv)
                                        return -ENOMEM;
                                hidden->v = nv;
                                hidden->cap = nc;
                        }
                        hidden->v[hidden->n++] = copy;
                        continue;
                }
                /* The set refers to the names stored in the list; append first, then register. */
                r = list_append(l, cap, de->d_name, union_ino(u, u->layers[layer].dev, de->d_ino), de->d_type);
                if (r < 0)
                        return r;
                r = name_set_add(set, l->entries[l->n_entries - 1].name);
                if (r < 0)
                        return r;
                if (r == 0) {
                        free(l->entries[--l->n_entries].name);
                        continue;
                }
        }
        return errno > 0 ? -errno : 0;
}

int dir_list_read(Union *u, Node *dir, bool include_dots, DirList *ret) {
        NameSet set = {};
        HiddenNames hidden = {};
        DirList l = {};
        size_t cap = 0;
        int layer = node_layer(dir);
        int r;

        if (include_dots) {
                uint64_t pino = dir == u->root || dir->n_aliases == 0 ? dir->ino : dir->aliases[0].parent->ino;
                if ((r = list_append(&l, &cap, ".", dir->ino, DT_DIR)) < 0 ||
                    (r = list_append(&l, &cap, "..", pino, DT_DIR)) < 0)
                        goto fail;
        }
        /* The name set points at each entry's own heap copy of its name, which stays put while the
         * entries array grows. */
        for (int i = layer; i <= dir->last_layer; i++) {
                r = read_layer(u, dir, i, &set, &hidden, &l, &cap);
                if (r < 0)
                        goto fail;
        }
        name_set_done(&set);
        hidden_done(&hidden);
        *ret = l;
        return 0;
fail:
        name_set_done(&set);
        hidden_done(&hidden);
        dir_list_done(&l);
        return r;
}

int dir_is_empty(Union *u, Node *dir, bool *ret_empty, bool *ret_upper_has_whiteouts) {
        DirList l = {};
        int r = dir_list_read(u, dir, false, &l);
        if (r < 0)
                return r;
        *ret_empty = l.n_entries == 0;
        dir_list_done(&l);

        *ret_upper_has_whiteouts = false;
        if (u->has_upper && node_layer(dir) == UPPER) {
                int fd = open_dir_in(u, dir, UPPER);
                if (fd < 0)
                        return fd;
                _cleanup_closedir_ DIR *d = fdopendir(fd);
                if (!d) {
                        safe_close(fd);
                        return -errno;
                }
                struct dirent *de;
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                                *ret_upper_has_whiteouts = true;
                                break;
                        }
        }
        return 0;
}

int dir_remove_whiteouts(Union *u, int upper_dirfd) {
        int fd = openat(upper_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        struct dirent *de;
        int n = 0;
        while ((de = readdir(d))) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!whiteout_is_whiteout(&st))
                        return -ENOTEMPTY; /* never remove real content here */
                if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                        return -errno;
                if (n < INT_MAX)
                        n++;
        }
        return n;
}
