/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The canonical content digest of a layer directory (digest format 1, defined exactly in
 * docs/layers.md): one record per object, in sorted path order, each hashed with XXH3-128; the layer's
 * digest is XXH3-128 over the sequence of record hashes. Equal trees give equal digests wherever
 * they live: inode numbers, atime and ctime never count, mtime only with LAYER_DIGEST_MTIME.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "progress.h"

#define LAYER_DIGEST_SIZE 16
#define LAYER_DIGEST_PREFIX "xxh128:"
/* "xxh128:" + 32 hex digits + NUL */
#define LAYER_DIGEST_STRING_MAX (sizeof(LAYER_DIGEST_PREFIX) + 2 * LAYER_DIGEST_SIZE)
/* Deeper trees are refused (-ELOOP): the walk holds one fd per level. */
#define LAYER_DIGEST_MAX_DEPTH 512

typedef enum LayerDigestFlags {
        LAYER_DIGEST_MTIME = 1 << 0, /* include every object's mtime */
} LayerDigestFlags;

/* Called for every object, in digest order, with its path ("/", "/a", "/a/b") and its record hash.
 * A negative return stops the walk and is returned by layer_digest(). */
typedef int (*LayerDigestEntryFn)(const char *path, const uint8_t hash[LAYER_DIGEST_SIZE], void *userdata);

/* Digest the tree below DIRFD (a directory fd; the walk never follows a symlink). ON_ENTRY may be NULL;
 * PROGRESS may be NULL. On failure *ret_failed_path (if not NULL) gets a malloc'd copy of the path
 * being read, for the error message. */
int layer_digest(int dirfd, unsigned flags, LayerDigestEntryFn on_entry, void *userdata, Progress *progress,
                 uint8_t ret[LAYER_DIGEST_SIZE], char **ret_failed_path);

/* Format a digest as "xxh128:<32 lowercase hex>" (BUF of LAYER_DIGEST_STRING_MAX bytes). */
char *layer_digest_format(const uint8_t d[LAYER_DIGEST_SIZE], char buf[static LAYER_DIGEST_STRING_MAX]);
/* Parse "xxh128:<32 hex>" (either case). */
int layer_digest_parse(const char *s, uint8_t ret[LAYER_DIGEST_SIZE]);

/* Paths in listings are escaped so one entry is one line: '\\' -> "\\\\", bytes < 0x20, 0x7f and >=
 * 0x80 -> "\\xHH". Returns a malloc'd string or NULL (ENOMEM). */
char *layer_path_escape(const char *path);
/* The inverse; -EINVAL on a malformed escape or an escaped NUL. */
int layer_path_unescape(const char *s, char **ret);

/* Sorted path order: paths compared component by component, each component byte-wise (equivalently
 * byte-wise with '/' below every other byte). <0, 0, >0 like strcmp. */
int layer_path_compare(const char *a, const char *b);

/* Combine record hashes into the layer digest, as layer_digest() does: feed every record hash in
 * order, then finish. For checking a saved listing without the tree. */
typedef struct LayerDigestCombiner LayerDigestCombiner;
LayerDigestCombiner *layer_digest_combiner_new(void);
void layer_digest_combiner_add(LayerDigestCombiner *c, const uint8_t hash[LAYER_DIGEST_SIZE]);
void layer_digest_combiner_finish(LayerDigestCombiner *c, uint8_t ret[LAYER_DIGEST_SIZE]);
void layer_digest_combiner_free(LayerDigestCombiner *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(LayerDigestCombiner *, layer_digest_combiner_free);
