/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The disk quota of a mount's upper layer (-o quota_bytes=,quota_inodes=): what the writers of a mount
 * may add to the file system that holds its upper. Usage is counted in allocated bytes (st_blocks *
 * 512: a sparse file costs what it allocates, not its size) and in inodes, over the upper and the work
 * directory's index and shared-snapshot directories. It is counted once at mount time by a walk of
 * those trees (quota_scan_tree(), which also counts what a kept upper already holds), then kept up to
 * date by the FUSE handlers: before a change that may allocate they ask quota_check() or
 * quota_check_write() (-ENOSPC past the quota), after it they observe what it left on disk.
 *
 * Observations: every object of the upper that the server knows (a Node) remembers the st_blocks last
 * counted for it (an int64_t, -1 for "not on the upper file system"). quota_observe*() fstat()s the
 * object and adds the difference to the previous value, under one lock, so the count always equals
 * the sum of the last values seen: concurrent writers cannot make it drift, and what a write left is
 * counted the next time anybody looks. An object that leaves the upper gives back its last value
 * (quota_forget()).
 *
 * Not locked against each other: the checks read the counters without the lock, so writers running in
 * parallel may together go past the quota by at most their requests in flight (threads x max_write;
 * see docs/unionfs.md). Library code: returns -errno, logs at debug level at most.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct stat;
struct statvfs;

typedef enum QuotaHit {
        QUOTA_HIT_BYTES = 1 << 0,
        QUOTA_HIT_INODES = 1 << 1,
} QuotaHit;

typedef struct Quota {
        uint64_t max_bytes;     /* 0: no bound */
        uint64_t max_inodes;    /* 0: no bound */
        int64_t used_bytes;     /* atomic; may go below 0 for a moment, read as 0 */
        int64_t used_inodes;    /* atomic */
        pthread_mutex_t lock;   /* observations: the fstat() and the update of an object's last value */
        int notify_fd;          /* -EBADF, or where the first refusal of each kind is reported */
        unsigned hit;           /* QuotaHit already reported (atomic) */
} Quota;

/* NOTIFY_FD (taken; may be -EBADF): on the first refusal of each kind one line is written to it,
 * "bytes\n" or "inodes\n" (a pipe the caller reads; never blocks, errors are ignored). */
void quota_init(Quota *q, uint64_t max_bytes, uint64_t max_inodes, int notify_fd);
void quota_done(Quota *q);

static inline bool quota_enabled(const Quota *q) {
        return q->max_bytes > 0 || q->max_inodes > 0;
}

/* Count everything below the directory DIR_FD (not DIR_FD itself) as used: each inode once (hard
 * links are recognised by device and inode), st_blocks * 512 bytes for each. Never follows a symlink,
 * stays on DIR_FD's file system, needs two fds whatever the depth (it climbs back with "..", checked
 * against the device and inode it came from: -ESTALE if the tree changes under it). SEEN is a set of
 * (dev, ino) of multiply linked files kept across calls (for the upper and the index together); free
 * it with quota_seen_free(). Returns the number of entries counted. */
typedef struct QuotaSeen QuotaSeen;
int quota_scan_tree(Quota *q, int dir_fd, QuotaSeen **seen);
QuotaSeen *quota_seen_free(QuotaSeen *s);

/* May BYTES more bytes and INODES more inodes be allocated? 0, or -ENOSPC (reported, see
 * quota_init()). A full quota (used >= max) refuses any allocation, also of 0 bytes. */
int quota_check(Quota *q, uint64_t bytes, uint64_t inodes);

/* A write of SIZE bytes at OFF to the regular file FD: allowed when it fits, or when it only
 * overwrites data already allocated (no hole in [OFF, OFF+SIZE): lseek SEEK_HOLE). RET_ALLOWED
 * (may be NULL) gets how much may be written: SIZE, or with PARTIAL what still fits, rounded down to
 * 4096 (a short write, as a full file system would make). -ENOSPC when nothing fits. */
int quota_check_write(Quota *q, int fd, off_t off, size_t size, bool partial, size_t *ret_allowed);

/* Add (or, negative, remove) bytes and inodes that were counted elsewhere. */
void quota_add(Quota *q, int64_t bytes, int64_t inodes);

/* The object behind FD (any fd, O_PATH too; or NAME beneath DIR_FD, never followed) was looked at
 * after a change: add the change of its st_blocks since *LAST (-1 counts as 0) and remember the new
 * value in *LAST. Errors (the object is gone) change nothing. */
void quota_observe_fd(Quota *q, int64_t *last, int fd);
void quota_observe_at(Quota *q, int64_t *last, int dir_fd, const char *name);

/* The object left the upper: give back its last value and set *LAST to 0. */
void quota_forget(Quota *q, int64_t *last);

/* Whether a later write of up to MARGIN bytes could not fit any more (used + MARGIN > max). */
bool quota_nearly_full(Quota *q, uint64_t margin);

/* What statfs() of the mount shows: the quota as the size, what is left of it (or of the real file
 * system, whichever is less) as free. SV holds the real file system's values on entry. */
void quota_statvfs(Quota *q, struct statvfs *sv);

/* Counters as they are now (for tests and messages). */
uint64_t quota_used_bytes(Quota *q);
uint64_t quota_used_inodes(Quota *q);
