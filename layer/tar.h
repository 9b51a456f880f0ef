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

/* Bounds of one import, on by default: a gzip or zstd bomb, an archive of endless entries or deep
 * implied directories stops with an error that names the bound and its value, and (tar_import) leaves
 * nothing behind. The defaults fit any real image layer: a layer that a sandbox with the default disk
 * bound (10 GiB, 1,000,000 inodes) could have made. */
#define TAR_MAX_ENTRIES_DEFAULT UINT64_C(1000000)
#define TAR_MAX_SIZE_DEFAULT (UINT64_C(10) << 30)
/* The metadata an import holds in memory: the modes and times of the archive's directories, applied
 * at the end (about 60 bytes plus the path each). At least this, and 64 bytes per allowed entry. */
#define TAR_MAX_META_DEFAULT (UINT64_C(64) << 20)
#define TAR_META_PER_ENTRY UINT64_C(64)
/* The headers of one member (pax records, GNU long names and sparse maps, up to 32 chained: xattrs,
 * long names and sparse maps are all in there), which libarchive holds while it reads the member.
 * libarchive refuses any single such header over 1 MiB; this bounds their sum, and with it the
 * memory of a sparse map (~12 bytes of memory per byte of map). */
#define TAR_MAX_HEADER_SIZE (UINT64_C(2) << 20)

typedef struct TarLimits {
        uint64_t max_entries;           /* archive members, plus directories they imply; 0: default */
        uint64_t max_size;              /* bytes of the uncompressed archive (and so of any file and of
                                         * all data written); 0: default */
        uint64_t max_meta;              /* bytes of directory metadata held in memory; 0: the default, or
                                         * TAR_META_PER_ENTRY per max_entries if that is more */
} TarLimits;

/* L with its 0 fields replaced by the defaults. */
TarLimits tar_limits_resolve(const TarLimits *l);

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
        TarLimits limits;               /* zeros: the defaults */
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
