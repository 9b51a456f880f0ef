/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reading a file of an image's root without mounting it: the image's layers (topmost first, as
 * image_store_lookup() gives them) are walked as the union merges them (docs/layers.md): the topmost
 * layer that has an entry at a path decides; a whiteout (a 0/0 character device) ends the search; an
 * opaque directory (overlay.opaque = y) makes its layer the last one that counts below it; a
 * non-directory on the way hides every layer below. Used by the runtime to look up an image's users in
 * its /etc/passwd and /etc/group.
 *
 * The layers are hostile input that we read as root: every component is looked up with fstatat() and
 * opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
 * beneath the layer's directory, one component at a time, never following a symlink (a symlink where the
 * file or a directory on its way should be is -ELOOP: it would be resolved inside the sandbox's root,
 * which we do not have); only a regular file is opened (never a device or a FIFO), non-blocking, and
 * read up to a bound. Library code: returns -errno, never logs.
 */
#pragma once

#include <stddef.h>

/* What /etc/passwd and /etc/group may weigh (a distribution's have a few KiB). */
#define IMAGE_ROOTFS_FILE_MAX (1U << 20)

/* Read PATH ("etc/passwd"; relative, normalized: no "", ".", ".." components) from the root the layers
 * LAYERS[0..N) (directories, topmost first) make, at most MAX bytes, NUL-terminated. -ENOENT when no
 * layer has it (or a whiteout, an opaque directory or a non-directory hides it); -ELOOP when the layer
 * that decides has a symlink at the path or on its way; -EISDIR, or -EPERM for anything else that is not
 * a regular file; -EFBIG when it is larger than MAX; -EINVAL for a bad PATH. */
int image_rootfs_read_file(char *const *layers, size_t n, const char *path, size_t max, char **ret,
                           size_t *ret_size);
