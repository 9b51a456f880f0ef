/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The FUSE low-level operations of sandbox-unionfs. The only file that calls fuse_reply_*(). */
#pragma once

#include <fuse_lowlevel.h>

#include "union.h"

extern const struct fuse_lowlevel_ops union_fuse_ops;

typedef struct UnionFuseConfig {
        bool writeback;
        unsigned max_read;    /* as given with -o max_read= (libfuse wants init() to ask for it), or 0 */
} UnionFuseConfig;

void union_fuse_configure(const UnionFuseConfig *c);
/* The session the handlers send notifications on (quota: see op_write_buf()). */
void union_fuse_set_session(struct fuse_session *se);
int union_root_init(Union *u);
