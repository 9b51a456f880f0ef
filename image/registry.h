/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A client of one repository on a registry, over the OCI distribution API (GET of manifests and blobs),
 * with libcurl.
 *
 * Transport: HTTPS with certificate verification always on (the system's CAs, or a CA file instead);
 * plain HTTP only to a loopback registry (localhost, 127.0.0.0/8, ::1), and only when it does not speak
 * TLS. Redirects (blob storage) are followed by us, at most 5, to https: URLs (http: only to a loopback
 * host), and credentials never go to a host other than the one they are for. Auth: anonymous, bearer
 * tokens (the WWW-Authenticate challenge, then the token server, with basic credentials from an auth
 * file when it has some for the registry) and basic auth. Bounds: manifests and configs 4 MiB, token
 * answers 1 MiB, error bodies 64 KiB, headers 8 KiB, a blob no longer than its descriptor says;
 * transfers slower than 1 KiB/s for 60 s are stopped. Blobs are downloaded into a file that is kept
 * when the transfer breaks, and continued with a Range request by the next pull.
 */
#pragma once

#include <stdint.h>

#include "image.h"
#include "oci.h"
#include "ref.h"

typedef struct Registry Registry;

typedef struct RegistryOptions {
        const char *ca_file;
        const char *auth_file;          /* NULL: the default files (see image.h) */
} RegistryOptions;

int registry_new(const ImageRef *ref, const RegistryOptions *o, Registry **ret, ImageReport *rep);
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

/* The manifest or index REFERENCE (a tag or a digest) names: its bytes (at most 4 MiB), its media
 * type as served, and its digest (checked against REFERENCE when that is a digest, and against the
 * registry's Docker-Content-Digest header when it sends one). -ENOENT when the registry has none. */
int registry_get_manifest(Registry *r, const char *reference, char **ret, size_t *ret_size, char **ret_type,
                          char ret_digest[static DIGEST_STRING_MAX], ImageReport *rep);

/* A small blob (a config) into memory, verified against D. */
int registry_get_blob_small(Registry *r, const OciDescriptor *d, char **ret, size_t *ret_size, ImageReport *rep);

/* Blob D into the file NAME in DIR_FD (created or continued), verified: returns a read fd at offset 0.
 * A broken transfer keeps the file for the next call; a blob that does not match its digest is
 * removed. The caller serializes calls for one NAME. */
int registry_get_blob_file(Registry *r, const OciDescriptor *d, int dir_fd, const char *name, Progress *progress,
                           int *ret_fd, ImageReport *rep);

/* "host/repository" for messages. */
const char *registry_name(const Registry *r);
