/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image store (docs/images.md): OCI images kept as verified blobs (manifests, configs) and layers
 * unpacked once, keyed by their sha256 digests, in one root-only directory that every tool shares.
 *
 * For the tools: image_pull() from a registry, image_import() from an OCI image layout, an
 * oci-archive or a docker/podman save tar, and list, tag, remove, gc. For the runtime:
 * image_store_lookup() turns a reference into the image's layer directories (topmost first, ready for
 * lowerdir=) and its parsed config (Env, Entrypoint, Cmd, WorkingDir, User), and image_store_pin()
 * keeps those layers from gc for as long as the returned pin lives (a lock file under the store held
 * by the pinning process: a crashed holder releases it by dying).
 *
 * Library code: every function returns 0 or -errno and never prints; a failure describes itself,
 * naming what was at fault, in ImageReport.error. Progress goes to the Progress given (a terminal
 * line). The caller must be root: layers keep their files' owners and overlay markers in trusted.*.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "oci.h"
#include "progress.h"
#include "sha256.h"
#include "strv.h"

#define IMAGE_STORE_DEFAULT "/var/lib/sandbox"

typedef struct ImageStore ImageStore;

typedef struct ImageReport {
        unsigned layers;                /* layers of the image(s) handled */
        unsigned layers_new;            /* of which were unpacked now (the others were in the store) */
        uint64_t bytes_fetched;         /* bytes downloaded or read from the source */
        uint64_t bytes_resumed;         /* bytes of interrupted downloads that a pull continued from */
        char error[1024];               /* on failure: what went wrong, naming the blob, entry or URL */
} ImageReport;

/* Open the store at PATH (an administrator's path: symlinks in it are followed). With CREATE, a
 * missing store directory is made (mode 0700; its parent must exist). The directory must belong to us
 * and give no access to group or others (-EPERM otherwise, with the mode to fix in the report). */
int image_store_open(const char *path, bool create, ImageStore **ret, ImageReport *rep);
ImageStore *image_store_free(ImageStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageStore *, image_store_free);
/* The store's absolute path. */
const char *image_store_path(const ImageStore *s);

typedef struct ImageLayer {
        char diff_id[DIGEST_STRING_MAX];        /* sha256 of the uncompressed layer tar */
        char *path;                     /* the unpacked layer: STORE/layers/sha256/<hex>/root */
        uint64_t size, entries;         /* file data bytes and archive entries */
} ImageLayer;

typedef struct Image {
        char id[DIGEST_STRING_MAX];     /* the image ID: the config's digest */
        char manifest[DIGEST_STRING_MAX];       /* the manifest's digest, "" when the source had none */
        char **refs;                    /* the store's references to it, sorted; NULL when none */
        OciConfig *config;
        ImageLayer *layers;             /* TOPMOST FIRST, as lowerdir= lists them */
        size_t n_layers;
        uint64_t size;                  /* file data of all layers */
} Image;

Image *image_free(Image *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);
void image_list_free(Image **l, size_t n);

/* The image REFERENCE names: a reference ("python:3.12", "localhost:5000/app@sha256:...") the store
 * holds, an image ID ("sha256:<64 hex>") or a unique prefix of one (at least 4 hex digits). -ENOENT
 * when the store has no such image (the report says so), -EINVAL for a malformed reference. */
int image_store_lookup(ImageStore *s, const char *reference, Image **ret, ImageReport *rep);
/* Every image that has a reference, sorted by its first reference. */
int image_store_list(ImageStore *s, Image ***ret, size_t *ret_n, ImageReport *rep);
/* Make TARGET (a NAME[:TAG], never a digest) name the image SOURCE names. */
int image_store_tag(ImageStore *s, const char *source, const char *target, ImageReport *rep);
/* Remove the reference REFERENCE, or every reference to the image when it is an image ID. The image's
 * layers and blobs stay until image_store_gc(). *ret_removed (may be NULL) lists what was removed. */
int image_store_untag(ImageStore *s, const char *reference, char ***ret_removed, ImageReport *rep);

typedef struct ImageGcReport {
        unsigned layers_removed, blobs_removed, temporaries_removed, pins_stale, pins_live;
        uint64_t bytes_freed;           /* file data of the layers removed, plus the blobs and partial downloads */
} ImageGcReport;

/* Remove what no reference and no live pin uses: layers, blobs, leftovers of interrupted pulls and
 * imports (partial downloads too), stale pins and lock files. Needs the store to itself: with WAIT it
 * waits for running pulls, imports and pinning to finish, without it -EBUSY. */
int image_store_gc(ImageStore *s, bool wait, ImageGcReport *ret, ImageReport *rep);

typedef struct ImagePin ImagePin;
/* Keep IMG's config and layers from gc until image_pin_release() or the end of the process (and of its
 * children that inherited nothing: the pin fd is O_CLOEXEC). */
int image_store_pin(ImageStore *s, const Image *img, ImagePin **ret, ImageReport *rep);
ImagePin *image_pin_release(ImagePin *p);
/* The descriptor whose lock is the pin (not a dup): a process that must keep the pin when its maker is gone
 * holds a dup of it. */
int image_pin_fd(const ImagePin *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImagePin *, image_pin_release);

typedef struct ImagePullOptions {
        OciPlatform platform;           /* all zero: oci_platform_default() */
        const char *ca_file;            /* PEM CA certificates to trust instead of the system's; NULL: the system's */
        const char *auth_file;          /* credentials (docker config.json / containers auth.json format); NULL:
                                         * $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json, then
                                         * $DOCKER_CONFIG/config.json or ~/.docker/config.json, if they exist */
        Progress *progress;             /* may be NULL */
} ImagePullOptions;

/* Fetch REFERENCE from its registry into the store: an index or manifest list chooses the platform;
 * every blob is verified against its digest, every layer against the config's diff_id; a layer the
 * store has is not downloaded again; an interrupted download continues where it stopped. */
int image_pull(ImageStore *s, const char *reference, const ImagePullOptions *o, Image **ret, ImageReport *rep);

typedef struct ImageCommitOptions {
        const char *name;               /* NAME[:TAG] the new image gets (moved to it if it named another) */
        const char *created_by;         /* its history entry's created_by; NULL: "sandbox snapshot" */
        uint64_t max_size;              /* bytes of the new layer's tar; 0: TAR_MAX_SIZE_DEFAULT (10 GiB) */
} ImageCommitOptions;

/* A new image: BASE (of the store) with one more layer made of UPPER_FD, an overlay upper directory over
 * BASE's layers (metacopy files get their data from those layers; whiteouts and opaque directories are
 * kept). Named O->name; the new layer is shared like any other. -EFBIG over O->max_size. */
int image_store_commit(ImageStore *s, const Image *base, int upper_fd, const ImageCommitOptions *o, Image **ret,
                       ImageReport *rep);

typedef struct ImageImportOptions {
        OciPlatform platform;           /* all zero: oci_platform_default() */
        const char *tag;                /* NAME[:TAG] for the image (the source must hold exactly one) */
        Progress *progress;
} ImageImportOptions;

/* Import every image of PATH, an OCI image layout directory, an oci-archive tar or a docker/podman
 * save tar, with the names the source gives (RepoTags, io.containerd.image.name, or a full reference
 * in org.opencontainers.image.ref.name) or O->tag. */
int image_import(ImageStore *s, const char *path, const ImageImportOptions *o, Image ***ret, size_t *ret_n,
                 ImageReport *rep);
