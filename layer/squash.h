/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Squash: write one plain layer whose content is the merged view of a stack of overlay layers, as
 * kernel overlayfs would show it (whiteouts, opaque directories, redirects, a directory over a
 * non-directory). The layers are only read. The result is built under a temporary name beside the
 * destination and renamed into place once complete and synced; on failure nothing is left behind.
 * Library code: returns -errno, logs at debug level at most.
 */
#pragma once

#include <stddef.h>

struct Progress;

#define SQUASH_LAYERS_MAX 129    /* UNION_MAX_LOWER lower layers plus an upper */
/* Directory nesting; deeper trees give -ELOOP. It bounds squash's recursion (one fd per level per
 * layer); removing a half-built result (common/rmtree.h) has no depth limit. */
#define SQUASH_DEPTH_MAX 255

typedef enum SquashFlags {
        /* The result will sit on top of other layers: keep whiteouts for names that are gone, mark
         * directories opaque whose lower contents the stack hid, and write an absolute redirect where
         * a directory's lower contents live at another path. Markers go in ovl_default_ns(). */
        SQUASH_KEEP_WHITEOUTS = 1 << 0,
        /* Only what the topmost layer holds: the result has the top layer's names (and only the
         * directories it has), with the data of its metacopy files read from the layers below. With
         * SQUASH_KEEP_WHITEOUTS this flattens an upper of a metacopy=on mount into a plain layer that
         * means the same over the same lowers (a snapshot turned into an image layer). */
        SQUASH_TOP_ONLY = 1 << 1,
} SquashFlags;

/* Squash the layers LAYER_FDS[0] (top) .. LAYER_FDS[N_LAYERS-1] (bottom), directory fds opened for
 * reading, into DEST_NAME (one path component, which must not exist) inside DEST_DIRFD (a directory
 * opened O_RDONLY, on the filesystem that gets the result). PROGRESS may be NULL.
 * -EEXIST if DEST_NAME exists (also if it appears while we work), -ELOOP for a tree deeper than
 * SQUASH_DEPTH_MAX, -ENAMETOOLONG for a path longer than PATH_MAX. */
int squash_layers(const int *layer_fds, size_t n_layers, int dest_dirfd, const char *dest_name, unsigned flags,
                  struct Progress *progress);
