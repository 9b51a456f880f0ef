/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The command line of sandbox-unionfs: fuse-overlayfs/kernel-overlayfs compatible -o options.
 * Parsing is pure (no I/O); union_options_check() then looks at the named directories.
 * Both print one clear message per problem (this is the CLI layer) and return -errno.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idmap.h"

#define UNION_MAX_LOWER 128

typedef struct UnionOptions {
        char *lowerdirs[UNION_MAX_LOWER]; /* [0] is the top */
        size_t n_lowerdirs;
        char *upperdir;                   /* NULL: read-only mount */
        char *workdir;
        char *mountpoint;
        IdMap uidmap, gidmap;
        double timeout;                   /* entry/attr/negative cache timeout, seconds */
        unsigned max_threads;
        bool foreground, debug, show_help, show_version;
        bool redirect_dir;                /* rename lower directories by redirect xattr (else EXDEV) */
        bool userxattr;                   /* user.overlay.* instead of trusted.overlay.* */
        bool sync_copyup;                 /* fsync copied-up data (off with "volatile"/"fsync=0") */
        bool writeback;                   /* FUSE writeback cache */
        bool readonly;                    /* "ro": read-only even with an upperdir */
        bool snapshot;                    /* allow UNIONFS_IOC_SNAPSHOT (default on) */
        bool metacopy;                    /* metadata-only copy-up, metacopy files followed (default off) */
        bool static_nlink;                /* fuse-overlayfs: every directory shows st_nlink 1 */
        bool noxattrs;                    /* fuse-overlayfs: no xattrs through the mount (EOPNOTSUPP) */
        bool squash_to_root;              /* fuse-overlayfs: every object shows owner 0:0 ... */
        int64_t squash_uid, squash_gid;   /* ... or these (-1: not set; they win over squash_to_root) */
        unsigned xattr_permissions;       /* fuse-overlayfs: 0 real owners and modes, 1/2 in an xattr */
        unsigned max_read;                /* FUSE max_read= (0: the kernel's) */
        uint64_t quota_bytes;             /* bytes the upper may grow by; 0 = no quota */
        uint64_t quota_inodes;            /* inodes it may gain; 0 = no quota */
        bool quota_notify;                /* quota_notify_fd= given */
        int quota_notify_fd;              /* where the first refusal of each kind is reported */
        char *fuse_opts;                  /* remaining mount options for libfuse, comma-separated */
} UnionOptions;

void union_options_done(UnionOptions *o);
int union_options_parse(int argc, char **argv, UnionOptions *ret);
/* One comma-separated -o list into O, without the checks of a whole command line (mount point,
 * upperdir with workdir): for tools that take a stack's options but mount nothing. */
int union_options_parse_list(UnionOptions *o, const char *list);
int union_options_check(const UnionOptions *o);
void union_options_help(const char *argv0);
