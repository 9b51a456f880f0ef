/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tar streams of `sandboxctl cp` (docker cp's semantics), used on both sides: by sandboxctl with the
 * client's own credentials on the host, and by the sandbox-copy helper as the sandbox's root inside the
 * sandbox's mount namespace. The stream is a POSIX pax archive (what tar(1) reads and writes): numeric
 * owners, no xattrs or ACLs, sparse files as GNU sparse 1.0 pax entries. libarchive encodes, decodes and
 * writes; every name is checked here first (no absolute name, no "..", one top-level entry when it is
 * renamed), and libarchive then refuses to write through a symlink (ARCHIVE_EXTRACT_SECURE_*).
 *
 * Paths are resolved with the caller's credentials and root: the caller must be the party whose view of
 * the file system is meant (the client on the host, the helper inside the sandbox). Nothing here logs;
 * failures return -errno and say what in ERR.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entries of one unpack, unless the options say otherwise: what a sandbox with the default inode bound
 * (1,000,000) could hold. */
#define COPYTAR_MAX_ENTRIES_DEFAULT UINT64_C(1000000)
#define COPYTAR_ERROR_MAX 512

typedef struct CopyTarOptions {
        uint64_t max_entries;   /* 0: COPYTAR_MAX_ENTRIES_DEFAULT */
        bool keep_setid;        /* keep set-uid and set-gid bits (inside a sandbox; never on the host) */
} CopyTarOptions;

typedef struct CopyTarReport {
        uint64_t entries;
        uint64_t bytes;         /* file data bytes (holes of sparse files excluded) */
} CopyTarReport;

/* Load libarchive (dlopen()ed, once per process; copytar_pack() and copytar_unpack() do it when needed). Call
 * it before leaving the host's root (as sandbox-copy does before joining a sandbox), so that the library
 * comes from the host, never from a file inside a sandbox. Thread-safe. */
int copytar_load(char *err, size_t errlen);

/* Write PATH as a pax archive to OUT_FD, as docker cp names it: PATH's last component is the top-level
 * entry (a directory with everything below it, never following a symlink); a PATH that ends in "/." (or
 * is "/") gives the directory's contents, under the top-level name ".". */
int copytar_pack(const char *path, int out_fd, CopyTarReport *ret_report, char *err, size_t errlen);

/* Unpack the archive read from IN_FD to DEST, as docker cp does: DEST an existing directory (symlinks
 * followed): the archive's entries go into it under their names ("." entries: the contents into DEST);
 * DEST missing (its parent must exist, and DEST must not end in '/'): the archive's one top-level entry
 * becomes DEST; DEST an existing non-directory: the one top-level entry, which must not be a directory,
 * replaces it. Files get the caller's owner; modes and times are the archive's (set-id bits only with
 * keep_setid). On failure what was written stays (as with tar). */
int copytar_unpack(int in_fd, const char *dest, const CopyTarOptions *o, CopyTarReport *ret_report, char *err,
                   size_t errlen);
