/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * image_pull(): a reference from its registry into the store. The manifest (through any index or
 * manifest list, choosing the platform), then the config, both verified against their digests; then
 * store_image_add(), which asks for each layer the store lacks: its blob is downloaded under the
 * layer's lock into STORE/tmp/blob-<hex>.partial (continued if an earlier pull was interrupted),
 * verified, unpacked, and the download removed.
 *
 * Library code: returns -errno, never logs above debug.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ojson.h"
#include "ref.h"
#include "registry.h"
#include "store-internal.h"

typedef struct Pull {
        ImageStore *store;
        Registry *registry;
        const OciDocument *manifest;
        Progress *progress;
        int blob_fd;
        int blob_lock;
        char partial[96];
        char what[512];
        char label[128];
} Pull;

static ssize_t blob_read(void *userdata, void *buf, size_t size) {
        Pull *p = userdata;
        ssize_t n = read(p->blob_fd, buf, size);
        return n < 0 ? -errno : n;
}

static int pull_open_layer(void *userdata, size_t i, StoreLayerSource *ret, ImageReport *rep) {
        Pull *p = userdata;
        const OciDescriptor *d = &p->manifest->layers[i];

        /* Two pulls of one blob (even for different layers, as a hostile manifest may claim) never write
         * the same download file at once. */
        p->blob_lock = store_lock_name(p->store, "blob", digest_hex(d->digest));
        if (p->blob_lock < 0)
                return report_fail(rep, p->blob_lock, "image store '%s': cannot lock blob %s: %m",
                                   image_store_path(p->store), d->digest);
        snprintf(p->partial, sizeof(p->partial), "blob-%s.partial", digest_hex(d->digest));
        store_progress_label(p->progress, p->label, sizeof(p->label), "download", i, p->manifest->n_layers, d->digest,
                             d->size);
        int r = registry_get_blob_file(p->registry, d, p->store->tmp_fd, p->partial, p->progress, &p->blob_fd, rep);
        if (p->progress)
                progress_done(p->progress);
        if (r < 0) {
                p->blob_lock = safe_close(p->blob_lock);
                return r;
        }
        snprintf(p->what, sizeof(p->what), "%s: blob %s", registry_name(p->registry), d->digest);
        *ret = (StoreLayerSource) {
                .read = blob_read,
                .userdata = p,
                .blob_digest = NULL, /* verified while it was downloaded */
                .blob_size = d->size,
                .what = p->what,
        };
        return 0;
}

static void pull_close_layer(void *userdata, size_t i, bool success) {
        Pull *p = userdata;
        /* Verified and unpacked, or verified and refused by the unpacker: no use keeping it either way. */
        (void) unlinkat(p->store->tmp_fd, p->partial, 0);
        p->blob_fd = safe_close(p->blob_fd);
        p->blob_lock = safe_close(p->blob_lock);
}

static int name_add(char ***names, size_t *n, const ImageRef *ref, const char *tag, const char *digest) {
        char *s = NULL;
        if ((tag ? asprintf(&s, "%s/%s:%s", ref->domain, ref->path, tag)
                 : asprintf(&s, "%s/%s@%s", ref->domain, ref->path, digest)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++)
                if (streq((*names)[i], s)) {
                        free(s);
                        return 0;
                }
        char **g = reallocarray(*names, *n + 2, sizeof(char *));
        if (!g) {
                free(s);
                return -ENOMEM;
        }
        *names = g;
        g[(*n)++] = s;
        g[*n] = NULL;
        return 0;
}

int image_pull(ImageStore *s, const char *reference, const ImagePullOptions *o, Image **ret, ImageReport *rep) {
        _cleanup_(image_ref_freep) ImageRef *ref = NULL;
        _cleanup_(registry_freep) Registry *reg = NULL;
        _cleanup_free_ char *body = NULL, *type = NULL, *config = NULL;
        _cleanup_(oci_document_freep) OciDocument *doc = NULL;
        _cleanup_(oci_config_freep) OciConfig *c = NULL;
        _cleanup_(strv_freep) char **names = NULL;
        size_t n_names = 0, len = 0, config_len = 0;
        char digest[DIGEST_STRING_MAX], err[512], p1[128], p2[128];
        OciPlatform platform;
        int r;

        assert_return(s && reference && o, -EINVAL);
        if (image_ref_parse(reference, &ref) < 0)
                return report_fail(rep, -EINVAL, "'%s' is not an image reference (%s)", reference,
                                   image_ref_check(reference) ?: "invalid");
        platform = o->platform;
        if (!*platform.os)
                oci_platform_default(&platform);
        RegistryOptions ro = { .ca_file = o->ca_file, .auth_file = o->auth_file };
        r = registry_new(ref, &ro, &reg, rep);
        if (r < 0)
                return r;

        /* The manifest: a digest names exactly one; an index or list leads to the platform's. */
        const char *want = ref->digest ?: ref->tag;
        r = registry_get_manifest(reg, want, &body, &len, &type, digest, rep);
        if (r < 0)
                return r;
        if (ref->tag && (r = name_add(&names, &n_names, ref, ref->tag, NULL)) < 0)
                return report_fail(rep, r, "out of memory");
        for (unsigned depth = 0;; depth++) {
                doc = oci_document_free(doc);
                r = oci_document_parse(body, len, type, &doc, err, sizeof(err));
                if (r < 0)
                        return report_fail(rep, r, "%s: %s %s: %s", registry_name(reg), want, digest, err);
                /* Pulled by a digest: that digest names the image too (an index's as well as a manifest's). */
                if ((r = name_add(&names, &n_names, ref, NULL, digest)) < 0)
                        return report_fail(rep, r, "out of memory");
                if (oci_mt_is_manifest(doc->type))
                        break;
                if (depth >= OCI_MAX_INDEX_NESTING)
                        return report_fail(rep, -E2BIG, "%s: indexes nested deeper than %d", registry_name(reg),
                                           OCI_MAX_INDEX_NESTING);
                const OciDescriptor *chosen = NULL;
                if (oci_index_choose(doc, &platform, &chosen) < 0)
                        return report_fail(rep, -ENOENT, "%s: %s has no image for %s", registry_name(reg), want,
                                           oci_platform_format(&platform, p1, sizeof(p1)));
                char next[DIGEST_STRING_MAX];
                strcpy(next, chosen->digest);
                free(body);
                free(type);
                body = type = NULL;
                r = registry_get_manifest(reg, next, &body, &len, &type, digest, rep);
                if (r < 0)
                        return r;
                if (!ref->digest) {
                        /* By tag: only the manifest's own digest names it, not the index's. */
                        free(names[--n_names]);
                        names[n_names] = NULL;
                }
        }

        r = registry_get_blob_small(reg, &doc->config, &config, &config_len, rep);
        if (r < 0)
                return r;
        r = oci_config_parse(config, config_len, &c, err, sizeof(err));
        if (r < 0)
                return report_fail(rep, r, "%s: config %s: %s", registry_name(reg), doc->config.digest, err);
        if (!oci_config_matches(c, &platform)) {
                OciPlatform cp = {};
                snprintf(cp.os, sizeof(cp.os), "%s", c->os ?: "?");
                snprintf(cp.architecture, sizeof(cp.architecture), "%s", c->architecture ?: "?");
                return report_fail(rep, -ENOENT, "%s: %s is an image for %s, not %s (see --platform)",
                                   registry_name(reg), reference, oci_platform_format(&cp, p1, sizeof(p1)),
                                   oci_platform_format(&platform, p2, sizeof(p2)));
        }

        ImageParts parts = {
                .manifest = body,
                .manifest_size = len,
                .config = config,
                .config_size = config_len,
                .parsed = c,
                .n_layers = doc->n_layers,
                .names = names,
        };
        strcpy(parts.manifest_digest, digest);
        strcpy(parts.config_digest, doc->config.digest);
        Pull pull = {
                .store = s,
                .registry = reg,
                .manifest = doc,
                .progress = o->progress,
                .blob_fd = -EBADF,
                .blob_lock = -EBADF,
        };
        LayerOpener opener = { .open = pull_open_layer, .close = pull_close_layer, .userdata = &pull };

        /* The whole pull holds the store lock shared: gc cannot remove a layer it unpacked before the
         * references that keep it are written. */
        r = store_lock_shared(s);
        if (r < 0)
                return report_fail(rep, r, "image store '%s': cannot lock: %m", image_store_path(s));
        r = store_image_add(s, &parts, &opener, o->progress, ret, rep);
        store_unlock_shared(s);
        safe_close(pull.blob_fd);
        safe_close(pull.blob_lock);
        return r;
}
