/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control ABI of a mounted sandbox-unionfs, shared by the server and sandbox-layer: ioctls on the
 * mount's root directory, which FUSE forwards to the server (it asks for FUSE_CAP_IOCTL_DIR).
 *
 * UNIONFS_IOC_SNAPSHOT: copy the upper layer, as it is between two changes, to a new directory DEST.
 *   in:  version = UNIONFS_SNAPSHOT_VERSION, flags = 0, dest = absolute path, NUL-terminated, in the
 *        server's mount namespace; DEST must not exist, its parent must.
 *   out: pause_ns (how long changes were held back), entries (objects in DEST, copied or hard-linked
 *        from the upper, DEST itself excluded). Regular files on the upper's file system are shared with
 *        the upper (hard links) until the mount changes them; the server breaks the link first.
 * Errors: ENOTTY not our ioctl, or not on the root directory; EINVAL bad version, flags, size or path;
 * EPERM the caller's uid is not the server's; EOPNOTSUPP snapshots disabled (-o snapshot=0) or no upper
 * layer; EEXIST DEST exists; EXDEV DEST on a FUSE file system (this mount included); EINVAL also DEST
 * inside a layer or the workdir; ELOOP an upper deeper than 256 directories; other errors from making
 * the copy, which is then removed.
 * The struct has fixed-size fields only, so its layout is the same for 32- and 64-bit callers.
 */
#pragma once

#include <limits.h>
#include <linux/ioctl.h>
#include <stdint.h>

#define UNIONFS_SNAPSHOT_VERSION 1

struct unionfs_snapshot_req {
        uint32_t version;
        uint32_t flags;    /* none defined: must be 0 */
        uint64_t pause_ns; /* out */
        uint64_t entries;  /* out */
        char dest[PATH_MAX];
};

#define UNIONFS_IOC_SNAPSHOT _IOWR('U', 0xb1, struct unionfs_snapshot_req)

/* f_type of every FUSE mount (statfs(2)). */
#define UNIONFS_FUSE_SUPER_MAGIC 0x65735546
