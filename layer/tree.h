/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One directory's entries, sorted byte-wise by name (strcmp), with their lstat. Every layer
 * operation walks trees with this, so that all of them see the same order and never follow a symlink.
 */
#pragma once

#include <stddef.h>
#include <sys/stat.h>

typedef struct TreeEntry {
        char *name;
        struct stat st;
} TreeEntry;

typedef struct TreeList {
        TreeEntry *entries;
        size_t n;
} TreeList;

/* List DIRFD (a directory fd opened for reading; its offset is rewound). "." and ".." are left out.
 * An entry that vanishes between readdir and lstat is left out too. */
int tree_list(int dirfd, TreeList *ret);
void tree_list_free(TreeList *l);

/* Open the directory NAME inside DIRFD for reading, refusing symlinks and non-directories. */
int tree_open_dir(int dirfd, const char *name);
