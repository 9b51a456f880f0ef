/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The overlay on-disk markers as they appear in a layer directory (see docs/layers.md): a whiteout is
 * a character device 0/0, an opaque directory carries "<ns>overlay.opaque" = "y", a renamed directory
 * "<ns>overlay.redirect", where <ns> is "trusted." (kernel default, root) or "user." (userxattr).
 * Both namespaces are read; writers use the namespace the caller picks.
 */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>

#define OVL_NS_TRUSTED "trusted."
#define OVL_NS_USER "user."

bool ovl_is_whiteout(const struct stat *st);

/* NAME is an overlay marker xattr ("trusted.overlay.*" or "user.overlay.*") whose meaning is layer
 * structure (opaque, redirect, origin...), not file content. Sets *ret_suffix to the part after
 * "overlay." when true (may be NULL). */
bool ovl_xattr_is_marker(const char *name, const char **ret_suffix);

/* 1 if the directory at PATH_FD (any fd, O_PATH is fine) is opaque in either namespace, 0 if not,
 * negative errno on error. */
int ovl_dir_is_opaque(int path_fd);

/* 1 if the regular file at PATH_FD carries a metacopy marker ("<ns>overlay.metacopy", either namespace):
 * an upper copy with metadata only, whose data is in a layer below. 0 if not, negative errno on error. */
int ovl_is_metacopy(int path_fd);

/* Mark the directory at PATH_FD opaque in namespace NS (OVL_NS_TRUSTED or OVL_NS_USER). */
int ovl_dir_set_opaque(int path_fd, const char *ns);

/* Create a whiteout named NAME in DIRFD (mknodat S_IFCHR 0/0, mode 0). */
int ovl_make_whiteout(int dirfd, const char *name);

/* The namespace to write markers in for a layer whose existing markers we do not know: trusted when
 * we are root in the initial user namespace's view (CAP_SYS_ADMIN), else user. */
const char *ovl_default_ns(void);
