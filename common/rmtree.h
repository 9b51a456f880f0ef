/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Removal of whole directory trees, also hostile ones (a sandbox's upper layer, an imported archive):
 * symlinks are removed as themselves and never followed, ".." is never used, and however deep the
 * tree, the recursion and the number of open fds stay bounded (deep subtrees are moved up and
 * removed in a further pass). Removal keeps going after an error and returns the first one.
 */
#pragma once

/* Remove NAME in DIRFD, whatever it is. -ENOENT when there is no NAME; NAME must be one component. */
int rm_tree_at(int dirfd, const char *name);

/* Remove everything inside the directory DIR_FD (which may be O_PATH), not DIR_FD itself. The
 * directory's own mode is left alone; directories below it are made 0700 first, so read-only modes
 * an archive gave them do not stop an unprivileged caller. */
int rm_tree_children(int dir_fd);
