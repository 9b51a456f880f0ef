/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the image documents (image/oci.c, image/ojson.c), all of outside origin: manifests,
 * indexes and manifest lists (from a registry or a layout), configs, an oci-layout file, a docker save
 * manifest.json. Input: one selector byte, then the document. Beyond "no crash": a document that parses
 * stays within the bounds (layers, entries), every digest in it is a valid sha256 digest, an index's
 * chosen entry is for the platform asked, and a config's strings are NUL-free NAME=VALUE pairs.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/oci.h"
#include "image/strv.h"
#include "fuzz.h"

static const char *const transport_types[] = {
        NULL,
        OCI_MT_STR_OCI_MANIFEST,
        OCI_MT_STR_OCI_INDEX,
        OCI_MT_STR_DOCKER_MANIFEST "; charset=utf-8",
        OCI_MT_STR_DOCKER_LIST,
        "application/json",
};

static void document(const char *buf, size_t len, const char *type) {
        char err[512];
        OciDocument *d = NULL;
        if (oci_document_parse(buf, len, type, &d, err, sizeof(err)) < 0) {
                ASSERT(d == NULL);
                return;
        }
        ASSERT(oci_mt_is_manifest(d->type) || oci_mt_is_index(d->type));
        if (oci_mt_is_manifest(d->type)) {
                ASSERT(d->n_layers <= OCI_MAX_LAYERS);
                ASSERT(digest_is_valid(d->config.digest));
                ASSERT(d->config.size <= OCI_MAX_DOCUMENT_SIZE);
                for (size_t i = 0; i < d->n_layers; i++)
                        ASSERT(digest_is_valid(d->layers[i].digest) && oci_mt_is_layer(d->layers[i].type));
        } else {
                ASSERT(d->n_manifests <= OCI_MAX_INDEX_ENTRIES);
                const char *const platforms[] = { "linux/amd64", "linux/arm64/v8", "windows/amd64" };
                for (size_t k = 0; k < 3; k++) {
                        OciPlatform p;
                        const OciDescriptor *m = NULL;
                        ASSERT(oci_platform_parse(platforms[k], &p) == 0);
                        if (oci_index_choose(d, &p, &m) == 0) {
                                ASSERT(m && m->os && m->architecture);
                                ASSERT(strcmp(m->os, p.os) == 0 && strcmp(m->architecture, p.architecture) == 0);
                                ASSERT(digest_is_valid(m->digest));
                        }
                }
        }
        oci_document_free(d);
}

static void config(const char *buf, size_t len) {
        char err[512];
        OciConfig *c = NULL;
        if (oci_config_parse(buf, len, &c, err, sizeof(err)) < 0) {
                ASSERT(c == NULL);
                return;
        }
        ASSERT(c->n_diff_ids <= OCI_MAX_LAYERS);
        for (size_t i = 0; i < c->n_diff_ids; i++)
                ASSERT(digest_is_valid(c->diff_ids[i]));
        for (char **e = c->env; e && *e; e++)
                ASSERT(strchr(*e, '=') && **e != '=');
        ASSERT(strv_length(c->entrypoint) <= OCI_MAX_STRV && strv_length(c->cmd) <= OCI_MAX_STRV);
        OciPlatform p;
        oci_platform_default(&p);
        (void) oci_config_matches(c, &p);
        oci_config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char err[512];
        if (size < 1 || size > 1024 * 1024)
                return 0;
        const char *buf = (const char *) data + 1;
        size_t len = size - 1;
        switch (data[0] % 9) {
        case 0 ... 5:
                document(buf, len, transport_types[data[0] % 9]);
                break;
        case 6:
                config(buf, len);
                break;
        case 7: {
                DockerArchiveImage *l = NULL;
                size_t n = 0;
                if (docker_archive_manifest_parse(buf, len, &l, &n, err, sizeof(err)) >= 0) {
                        ASSERT(n >= 1 && n <= OCI_MAX_INDEX_ENTRIES);
                        for (size_t i = 0; i < n; i++)
                                ASSERT(l[i].config && l[i].n_layers <= OCI_MAX_LAYERS &&
                                       l[i].n_layers == strv_length(l[i].layers));
                        docker_archive_images_free(l, n);
                } else
                        ASSERT(l == NULL);
                break;
        }
        default:
                (void) oci_layout_check(buf, len, err, sizeof(err));
        }
        return 0;
}
