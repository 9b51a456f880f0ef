/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI image-layer tars to and from the overlay on-disk layer format (docs/layers.md).
 * libarchive only parses and produces the byte streams (tar formats, gzip/zstd filters); every
 * file-system write is done here, beneath a directory fd, never following a symlink. Nothing here
 * prints: failures return -errno and describe themselves (naming the entry) in TarReport.error;
 * warnings (dropped overlay markers, skipped sockets) go through log_warning().
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "progress.h"

/* Default for --max-size: the largest single file and the largest total of file data one import may
 * write. Big enough for any real layer, small enough that a forged header cannot fill a disk. */
#define TAR_MAX_SIZE_DEFAULT (UINT64_C(64) << 30)

typedef enum TarCompress {
        TAR_COMPRESS_NONE,
        TAR_COMPRESS_GZIP,
        TAR_COMPRESS_ZSTD,
        _TAR_COMPRESS_MAX,
        _TAR_COMPRESS_INVALID = -EINVAL,
} TarCompress;

/* "none", "gzip", "zstd" <-> TarCompress. */
TarCompress tar_compress_from_string(const char *s);
/* By a file name's suffix: .gz/.tgz gzip, .zst/.zstd zstd, anything else none. */
TarCompress tar_compress_from_name(const char *name);

typedef struct TarReport {
        uint64_t entries, bytes;        /* archive entries handled, file data bytes */
        uint64_t dropped;               /* entries or xattrs left out (each logged as a warning) */
        char error[512];                /* on failure: what went wrong, naming the entry */
} TarReport;

typedef struct TarImportOptions {
        const char *ovl_ns;             /* OVL_NS_TRUSTED or OVL_NS_USER: where opaque markers go */
        uint64_t max_size;              /* 0: TAR_MAX_SIZE_DEFAULT */
        Progress *progress;             /* may be NULL */
} TarImportOptions;

/* Normalize an archive member's path: leading "./" and "/." components and repeated or trailing
 * slashes are dropped ("./" alone becomes "", the layer root). Refuses (-EINVAL) absolute paths and
 * any ".." component, and (-ENAMETOOLONG) a component longer than NAME_MAX or a path of PATH_MAX
 * bytes or more. *ret is malloc'd. */
int tar_path_normalize(const char *path, char **ret);

typedef enum TarWhiteout {
        TAR_WH_NONE,                    /* an ordinary name */
        TAR_WH_FILE,                    /* ".wh.NAME": NAME is deleted (a whiteout) */
        TAR_WH_OPAQUE,                  /* ".wh..wh..opq": the directory is opaque */
        TAR_WH_META,                    /* any other ".wh..wh.*": AUFS bookkeeping, skipped */
        _TAR_WH_MAX,
        _TAR_WH_INVALID = -EINVAL,
} TarWhiteout;

/* Classify the last path component NAME; for TAR_WH_FILE *ret_target (may be NULL) points at NAME
 * inside NAME. ".wh." with an empty, "." or ".." target is -EINVAL. */
TarWhiteout tar_whiteout_decode(const char *name, const char **ret_target);

/* Unpack the archive read from ARCHIVE_FD into the empty directory DEST_FD (which must be private to
 * the caller until this returns: see docs/layers.md). On failure what was written is left for the
 * caller to remove. */
int tar_extract(int archive_fd, int dest_fd, const TarImportOptions *opts, TarReport *report);

/* The whole import: DEST_NAME must not exist in PARENT_FD; the layer is built as "layer" inside the
 * private (0700) directory ".DEST_NAME.import-<pid>" beside it, synced, and renamed into place. On
 * failure nothing is left. */
int tar_import(int archive_fd, int parent_fd, const char *dest_name, const TarImportOptions *opts,
               TarReport *report);

/* Write the layer directory DIR_FD as an OCI layer tar (pax, numeric owners, sorted, whiteouts as
 * ".wh." files, opaque directories as ".wh..wh..opq") to OUT_FD. Refuses directories with a redirect
 * xattr and names that start with ".wh." (not representable). */
int tar_export(int dir_fd, int out_fd, TarCompress compress, Progress *progress, TarReport *report);
