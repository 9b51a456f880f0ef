/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Is a tar an image archive rather than a layer? An oci-archive has "oci-layout" and "index.json" at its
 * top; a docker/podman save archive has "manifest.json" and "repositories", "blobs/" or "*\/layer.tar".
 * sandbox-layer import refuses those (they would unpack to a "layer" holding blobs/ and index.json) and
 * points at sandbox-image import. Only names are looked at, never data.
 */
#pragma once

typedef enum TarKind {
        TAR_KIND_LAYER,                 /* anything else */
        TAR_KIND_OCI_ARCHIVE,
        TAR_KIND_DOCKER_ARCHIVE,
} TarKind;

/* The member names of the uncompressed tar in the regular file FD (headers only: the data is skipped with
 * lseek), then FD is put back at offset 0. A compressed file or a stream is not looked at (returns
 * TAR_KIND_LAYER): check the unpacked result with tar_probe_dir() instead. At most 1,000,000 headers. */
TarKind tar_probe_fd(int fd);

/* The top of a directory unpacked from a tar. */
TarKind tar_probe_dir(int dir_fd);

/* "an oci-archive" / "a docker save archive" for messages. */
const char *tar_kind_describe(TarKind k);
