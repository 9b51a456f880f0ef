/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uid/gid shifting between the ids stored on disk and the ids shown through the mount, spelled as
 * fuse-overlayfs does: "FROM:TO:COUNT[:FROM:TO:COUNT...]" maps on-disk FROM.. to shown TO.. .
 * With no ranges the mapping is the identity. Ids outside every range show as the overflow id
 * (65534), and a caller id outside every range is stored as the overflow id, so an unmapped id
 * can never turn into an id the mapping reserves for something else.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define IDMAP_MAX_RANGES 64
#define IDMAP_OVERFLOW_ID UINT32_C(65534)

typedef struct IdRange {
        uint32_t disk;  /* first id as stored on disk */
        uint32_t shown; /* first id as shown through the mount */
        uint32_t count;
} IdRange;

typedef struct IdMap {
        IdRange ranges[IDMAP_MAX_RANGES];
        size_t n_ranges;
} IdMap;

/* Parse "FROM:TO:COUNT[:...]"; rejects empty, partial or overlapping ranges and overflow. */
int idmap_parse(const char *s, IdMap *ret);
uint32_t idmap_to_shown(const IdMap *m, uint32_t disk_id);
uint32_t idmap_to_disk(const IdMap *m, uint32_t shown_id);
