/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the image library's files share and nothing else sees: the store's directory fds and locks,
 * blob and layer primitives, the refs table, the layer unpacker, and the report helper.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"

struct ImageStore {
        char *path;                     /* absolute */
        int dir_fd;                     /* STORE */
        int blobs_fd;                   /* STORE/blobs/sha256 */
        int layers_fd;                  /* STORE/layers/sha256 */
        int locks_fd;                   /* STORE/locks */
        int pins_fd;                    /* STORE/pins */
        int tmp_fd;                     /* STORE/tmp */
        int lock_fd;                    /* STORE/lock: flock shared while in use, exclusive for gc */
        unsigned shared_depth;          /* nesting of store_lock_shared() */
};

/* Record a failure in the report (the first one wins) and return R. FMT may use %m for R. */
__attribute__((format(printf, 3, 4))) int report_fail(ImageReport *rep, int r, const char *fmt, ...);

/* The store lock: shared while adding, pinning or changing references (nestable), exclusive for gc. */
int store_lock_shared(ImageStore *s);
void store_unlock_shared(ImageStore *s);

/* An exclusive flock on STORE/locks/KIND-HEX (waits); returns the fd that holds it. */
int store_lock_name(ImageStore *s, const char *kind, const char *hex);

/* A fresh name for a temporary in STORE/tmp: "PREFIX-<pid>-<n>". */
void store_tmp_name(ImageStore *s, const char *prefix, char *buf, size_t size);

/* Blobs (manifests, indexes, configs): written verified, via a temporary, fsync'ed, renamed. */
int store_blob_write(ImageStore *s, const char *digest, const void *data, size_t size);
/* Read blob DIGEST (at most MAX bytes) and check it against its digest again. -ENOENT when missing. */
int store_blob_read(ImageStore *s, const char *digest, size_t max, char **ret, size_t *ret_size);

/* Whether layer DIFF_ID is in the store. */
bool store_layer_exists(ImageStore *s, const char *diff_id);

typedef ssize_t (*StoreReadFn)(void *userdata, void *buf, size_t size);

/* A layer blob being read: READ is called from another thread than the caller's. */
typedef struct StoreLayerSource {
        StoreReadFn read;
        void *userdata;
        const char *blob_digest;        /* expected digest of the bytes READ gives; NULL: checked elsewhere */
        uint64_t blob_size;             /* expected size; UINT64_MAX: unknown */
        const char *what;               /* names the source in messages ("blob sha256:...", "member 'x/layer.tar'") */
        bool count_fetched;             /* reading it is fetching it: add its bytes to ImageReport.bytes_fetched */
} StoreLayerSource;

/* Unpack the layer blob SRC (tar, tar+gzip, tar+zstd) as layer DIFF_ID: decompressed and hashed in a
 * thread of its own while layer/tar.c unpacks it; the result appears whole (rename) only when the
 * blob's digest and the uncompressed tar's digest (DIFF_ID) both match. The caller holds the layer's
 * lock and has checked that the layer is not there. */
int store_layer_add(ImageStore *s, const char *diff_id, const StoreLayerSource *src, Progress *progress,
                    ImageReport *rep);

/* The references table (STORE/refs.json). */
typedef struct StoreRef {
        char *name;                     /* canonical reference: DOMAIN/PATH:TAG or DOMAIN/PATH@DIGEST */
        char id[DIGEST_STRING_MAX];
        char manifest[DIGEST_STRING_MAX];
        int64_t added;                  /* seconds since the epoch */
} StoreRef;

typedef struct StoreRefs {
        StoreRef *refs;
        size_t n;
} StoreRefs;

void store_refs_done(StoreRefs *r);
int store_refs_read(ImageStore *s, StoreRefs *ret, ImageReport *rep);
/* Set NAMES (canonical) to ID/MANIFEST, under the refs lock (and the caller's shared store lock). */
int store_refs_set(ImageStore *s, char *const *names, size_t n, const char *id, const char *manifest, ImageReport *rep);

/* The Image for ID (its config blob, its layers, the references naming it in REFS). */
int store_image_load(ImageStore *s, const StoreRefs *refs, const char *id, const char *manifest, Image **ret,
                     ImageReport *rep);

/* What an image is made of, whatever its source. */
typedef struct ImageParts {
        char manifest_digest[DIGEST_STRING_MAX];        /* "" when none */
        const char *manifest;           /* its bytes, verified; NULL when none */
        size_t manifest_size;
        char config_digest[DIGEST_STRING_MAX];
        const char *config;             /* its bytes, verified */
        size_t config_size;
        const OciConfig *parsed;
        size_t n_layers;                /* must equal parsed->n_diff_ids */
        char **names;                   /* canonical references to set; may be NULL */
} ImageParts;

/* How a source hands over layer I (bottom first) once the store has decided it needs it. */
typedef struct LayerOpener {
        int (*open)(void *userdata, size_t i, StoreLayerSource *ret, ImageReport *rep);
        void (*close)(void *userdata, size_t i, bool success);
        void *userdata;
} LayerOpener;

/* Add an image: config and manifest blobs, each missing layer (under its lock), then the references.
 * The caller holds the shared store lock. */
int store_image_add(ImageStore *s, const ImageParts *parts, const LayerOpener *opener, Progress *progress,
                    Image **ret, ImageReport *rep);

/* Progress labels: "LABEL: layer I/N sha256:<12 hex>" (static storage per store). */
void store_progress_label(Progress *p, char *buf, size_t size, const char *what, size_t i, size_t n,
                          const char *digest, uint64_t total);
