/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A consistent snapshot of a live sandbox's changes (runtime/snapshot.c): its upper layer as it is at one
 * instant, copied by the sandbox's union server (UNIONFS_IOC_SNAPSHOT) into a new directory, while the
 * sandbox's programs are frozen. Part of the runtime's public API (runtime/sandbox.h).
 */
#pragma once

#include <stdint.h>

#include "sandbox.h"

typedef enum SandboxSnapshotFlags {
        /* The sandbox's programs are frozen already (paused): leave them so afterwards. */
        SANDBOX_SNAPSHOT_KEEP_FROZEN = 1 << 0,
} SandboxSnapshotFlags;

typedef struct SandboxSnapshotResult {
        uint64_t pause_usec;    /* how long the sandbox's programs were frozen (0: they were not) */
        uint64_t union_pause_ns; /* how long the union held changes back while it copied */
        uint64_t entries;       /* objects in DEST */
        bool frozen;            /* the programs were frozen (a host without a freezer: only the union's
                                 * pause orders the snapshot, and data still in the kernel's cache of a
                                 * file written just before may be missing) */
} SandboxSnapshotResult;

/* Copy S's upper layer to DEST, an absolute host path that must not exist (its parent must, on a local file
 * system outside the sandbox's layers). The sandbox's programs (its own and exec'd ones) are frozen, the
 * kernel's cache of the union is written back, the union copies its upper (hard-linking regular files it
 * may share: DEST should be on the file system of the sandbox's data directory), and the programs are
 * thawed. DEST is an upper over the sandbox's lowers: metacopy files and whiteouts keep their meaning only
 * over those. Errors: -EINVAL a bad DEST, -ESRCH the sandbox has ended, others from the union (EEXIST,
 * EXDEV, ENOSPC...); ERR says which. */
int sandbox_snapshot(Sandbox *s, const char *dest, unsigned flags, SandboxSnapshotResult *ret, SandboxError *err);
