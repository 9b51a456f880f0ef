/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private roots: the on-disk root directory of a tree that a sandbox wrote (a kept upper, a snapshot,
 * a squashed, imported or merged layer) is owned by root with mode 0700, so that no other host user
 * reaches the set-id files, device nodes or foreign-owned files a sandbox may have made below it. The
 * mode and owner the tree's root should show (0755 root:root, say) are recorded in the xattr
 * "<ns>overlay.sandbox.rootattr" of that directory, where <ns> is "trusted." (root) or "user."
 * (userxattr), as our other overlay markers; sandbox-unionfs shows them for the union's root, the
 * layer tools carry them, and the layer digest uses them (docs/layers.md, docs/security.md).
 *
 * The value is text: octal permission bits (07777 at most), one space, the uid, one space, the gid,
 * in decimal, as stored on disk (no id mapping): "755 0 0". Nothing else is accepted (no sign, no
 * leading zeros beyond one, no other blanks); ids up to 4294967294.
 *
 * This module knows the format and the rule; it does no logging. The fd given to the I/O functions
 * may be O_PATH (then /proc/self/fd is used, so /proc must be mounted).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define ROOTATTR_XATTR "overlay.sandbox.rootattr" /* after "trusted." or "user." */
#define ROOTATTR_NS_TRUSTED "trusted."
#define ROOTATTR_NS_USER "user."
#define ROOTATTR_VALUE_MAX 32 /* "7777 4294967294 4294967294" and a NUL fit */
#define ROOTATTR_PRIVATE_MODE 0700

typedef struct RootAttr {
        mode_t mode;    /* permission bits only (07777) */
        uid_t uid;      /* on-disk ids */
        gid_t gid;
} RootAttr;

/* Parse SIZE bytes at VALUE (no NUL needed). -EINVAL for anything but the format above. */
int rootattr_parse(const char *value, size_t size, RootAttr *ret);
/* The value for A, NUL-terminated; returns its length (without the NUL). */
size_t rootattr_format(const RootAttr *a, char buf[static ROOTATTR_VALUE_MAX]);

/* The record of the directory at FD in namespace NS (ROOTATTR_NS_*), or with NS NULL the trusted one,
 * else the user one. 1 and *ret when there is one, 0 when not (also where the file system has no
 * xattrs), -EINVAL when it is malformed, other -errno. */
int rootattr_read(int fd, const char *ns, RootAttr *ret);
int rootattr_write(int fd, const char *ns, const RootAttr *a);
/* What the tree at FD shows as its root: its record (1, errors as rootattr_read), else its own mode
 * and owner (0). */
int rootattr_logical(int fd, const char *ns, RootAttr *ret);

/* ST, a root directory on disk, lets nobody but us in: our own (root's, when we run as root), no
 * permission bits for group or others (its group does not matter then). */
bool rootattr_stat_is_private(const struct stat *st);

/* Make the directory at FD private: unless LOGICAL already is what it would show anyway, record it in
 * namespace NS (first, so that a crash in between leaves a root that shows what it showed before),
 * then chown it to our effective ids (0:0 as root) and chmod 0700. Returns 1 when something changed,
 * 0 when the root was private and recorded as asked already. */
int rootattr_make_private(int fd, const char *ns, const RootAttr *logical);
