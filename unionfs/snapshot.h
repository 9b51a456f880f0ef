/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Online snapshot of the upper layer (UNIONFS_IOC_SNAPSHOT, see control.h): a copy of the upper as it is
 * between two changes, whiteouts and markers included, made while the mount keeps serving.
 * Authorization (who may ask) is the caller's business; this module checks DEST and makes the copy.
 */
#pragma once

#include <stdint.h>

typedef struct Union Union;

typedef struct SnapshotResult {
        uint64_t pause_ns; /* how long changes were held back */
        uint64_t entries;  /* objects in DEST (copied or linked), DEST itself excluded */
        uint64_t linked;   /* of which regular files hard-linked from the upper (shared until changed) */
} SnapshotResult;

/* Copy the upper layer of U to DEST, an absolute path that must not exist yet (its parent must, outside
 * every layer and the workdir, and not on a FUSE file system). Takes ns_lock and change_lock exclusively
 * while copying. When DEST is on the upper's file system, regular files with one name that no handle
 * may write are hard-linked instead of copied and recorded in U->shared; the mount breaks the link
 * (cow_unshare()) before changing one. They are also recorded in U->shared_fd (workdir/sandbox-shared)
 * before DEST appears, for a remount. On failure nothing is left behind. */
int snapshot_take(Union *u, const char *dest, SnapshotResult *ret);
