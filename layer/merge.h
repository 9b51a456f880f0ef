/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fold an overlay layer UPPER into the layer LOWER below it, in place and crash-safe (see
 * docs/layers.md, "merge"). UPPER is only read. A journal in a work directory on LOWER's file system
 * lets a re-run of an interrupted merge finish it; every step is atomic per entry and idempotent.
 * This module does not print: it returns -errno and, for errors about one entry, names it.
 */
#pragma once

#include <stdbool.h>

typedef enum MergeFlags {
        /* LOWER is a middle layer: UPPER's whiteouts stay whiteouts and its opaque directories stay
         * opaque, so that LOWER over the layers below it shows what UPPER over LOWER showed. */
        MERGE_KEEP_WHITEOUTS = 1 << 0,
} MergeFlags;

typedef struct MergeParams {
        const char *upper;
        const char *lower;
        const char *workdir; /* NULL: ".<basename of LOWER>.merge" beside LOWER */
        unsigned flags;      /* MergeFlags */
} MergeParams;

/* Errors with a meaning of their own:
 *   -EXDEV     the work directory is not on LOWER's file system (mount)
 *   -ELOOP     UPPER, LOWER and the work directory overlap (one inside another), or a tree is too deep
 *   -EBUSY     another merge holds the work directory
 *   -ENOTEMPTY the work directory exists and is not a journal of a merge
 *   -ESTALE    the work directory holds the journal of a merge of other layers or with other flags
 *   -EMEDIUMTYPE UPPER holds a redirect directory or a metacopy file (not supported: squash it)
 *   -EILSEQ    the journal is corrupt
 * On -EMEDIUMTYPE and on errors while applying one entry, *ret_path (if not NULL) is set to the
 * entry's path relative to the layer (malloc'd; the caller frees it). *ret_started (if not NULL) is set to true
 * once LOWER may have been changed: from then on, re-running the same command completes the merge. */
int layer_merge(const MergeParams *p, char **ret_path, bool *ret_started);
