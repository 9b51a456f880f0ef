/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The OCI image formats and their Docker v2 schema 2 twins, parsed from outside input (a registry, an
 * image layout, an archive) with bounds: image manifests, image indexes and manifest lists, image
 * configs, a layout's oci-layout file, and the manifest.json of a `docker save` archive. Every parser
 * here is fuzzed (tests/fuzz/fuzz-image-oci.c). Nothing here does I/O.
 *
 * Bounds: manifests, indexes and configs of at most 4 MiB (what containers/image allows too), JSON
 * nested at most 64 levels, at most 120 layers per image (sandbox-unionfs takes 128 lower layers; the
 * runtime keeps a few for itself), 1024 entries per index, 10000 strings in Env, Entrypoint and Cmd.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "sha256.h"

#define OCI_MAX_DOCUMENT_SIZE (UINT64_C(4) << 20)
#define OCI_MAX_DEPTH 64
#define OCI_MAX_LAYERS 120
#define OCI_MAX_INDEX_ENTRIES 1024
#define OCI_MAX_STRV 10000
#define OCI_MAX_STRING (UINT64_C(1) << 20)
/* Index of an index of ...: how deep a platform search goes. */
#define OCI_MAX_INDEX_NESTING 4

#define OCI_MT_STR_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_STR_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_STR_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_STR_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_STR_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_STR_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

typedef enum OciMediaType {
        OCI_MT_UNKNOWN,
        OCI_MT_OCI_MANIFEST,
        OCI_MT_OCI_INDEX,
        OCI_MT_DOCKER_MANIFEST,
        OCI_MT_DOCKER_LIST,
        OCI_MT_DOCKER_SCHEMA1,          /* recognised only to be refused with a clear message */
        OCI_MT_OCI_CONFIG,
        OCI_MT_DOCKER_CONFIG,
        OCI_MT_LAYER_TAR,               /* OCI tar, and the non-distributable variant */
        OCI_MT_LAYER_GZIP,              /* OCI tar+gzip, Docker tar.gzip, and their foreign/non-distributable variants */
        OCI_MT_LAYER_ZSTD,
        _OCI_MT_MAX,
} OciMediaType;

OciMediaType oci_media_type_from_string(const char *s);
static inline bool oci_mt_is_manifest(OciMediaType t) {
        return t == OCI_MT_OCI_MANIFEST || t == OCI_MT_DOCKER_MANIFEST;
}
static inline bool oci_mt_is_index(OciMediaType t) {
        return t == OCI_MT_OCI_INDEX || t == OCI_MT_DOCKER_LIST;
}
static inline bool oci_mt_is_layer(OciMediaType t) {
        return t == OCI_MT_LAYER_TAR || t == OCI_MT_LAYER_GZIP || t == OCI_MT_LAYER_ZSTD;
}
/* The Accept header value a manifest request sends. */
#define OCI_MANIFEST_ACCEPT                                                                          \
        OCI_MT_STR_OCI_MANIFEST ", " OCI_MT_STR_OCI_INDEX ", " OCI_MT_STR_DOCKER_MANIFEST ", " \
        OCI_MT_STR_DOCKER_LIST

typedef struct OciPlatform {
        char os[32];
        char architecture[32];
        char variant[32];               /* "" = any (one without a variant preferred) */
} OciPlatform;

/* "OS/ARCH[/VARIANT]" (lowercase letters, digits, '_', '-', '.'). */
int oci_platform_parse(const char *s, OciPlatform *ret);
/* linux and the architecture this program was built for (amd64 on x86-64). */
void oci_platform_default(OciPlatform *ret);
/* "linux/amd64" or "linux/arm64/v8" into BUF. */
const char *oci_platform_format(const OciPlatform *p, char *buf, size_t size);

typedef struct OciDescriptor {
        OciMediaType type;
        char *media_type;               /* as written */
        char digest[DIGEST_STRING_MAX];
        uint64_t size;
        char *os, *architecture, *variant;      /* platform of an index entry, or NULL */
        char *ref_name;                 /* annotation org.opencontainers.image.ref.name */
        char *image_name;               /* annotation io.containerd.image.name */
} OciDescriptor;

typedef struct OciDocument {
        OciMediaType type;              /* a manifest or an index type */
        OciDescriptor config;           /* manifests */
        OciDescriptor *layers;          /* manifests: bottom first */
        size_t n_layers;
        OciDescriptor *manifests;       /* indexes */
        size_t n_manifests;
} OciDocument;

/* A manifest, an index or a manifest list. TRANSPORT_TYPE is the media type the transport gave (an
 * HTTP Content-Type or the referring descriptor's); NULL, empty or generic ("application/json") when
 * unknown. The document's own mediaType must agree with it when both are known. */
int oci_document_parse(const char *buf, size_t len, const char *transport_type, OciDocument **ret, char *err,
                       size_t errlen);
OciDocument *oci_document_free(OciDocument *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciDocument *, oci_document_free);

/* The entry of index D for platform P: an exact variant match, else (P without a variant) the first
 * entry without a variant, else the first one with any. -ENOENT when there is none. */
int oci_index_choose(const OciDocument *d, const OciPlatform *p, const OciDescriptor **ret);

typedef struct OciConfig {
        char *os, *architecture, *variant;
        char *created;                  /* RFC 3339 as written, or NULL */
        char **env;                     /* "NAME=value" each; NULL when absent */
        char **entrypoint;              /* NULL when absent or null */
        char **cmd;
        char *working_dir;              /* NULL when absent or empty */
        char *user;                     /* NULL when absent or empty */
        char (*diff_ids)[DIGEST_STRING_MAX];    /* rootfs.diff_ids: bottom first */
        size_t n_diff_ids;
} OciConfig;

int oci_config_parse(const char *buf, size_t len, OciConfig **ret, char *err, size_t errlen);
OciConfig *oci_config_free(OciConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciConfig *, oci_config_free);
/* Whether config C is for platform P (os and architecture; a variant only when both name one). */
bool oci_config_matches(const OciConfig *c, const OciPlatform *p);

/* The oci-layout file of an image layout: {"imageLayoutVersion": "1.x.y"}. */
int oci_layout_check(const char *buf, size_t len, char *err, size_t errlen);

/* One image of a `docker save` / `podman save` archive's manifest.json. */
typedef struct DockerArchiveImage {
        char *config;                   /* member path of the config */
        char **repo_tags;               /* NULL when none */
        char **layers;                  /* member paths, bottom first */
        size_t n_layers;
} DockerArchiveImage;

int docker_archive_manifest_parse(const char *buf, size_t len, DockerArchiveImage **ret, size_t *ret_n, char *err,
                                  size_t errlen);
void docker_archive_images_free(DockerArchiveImage *l, size_t n);
