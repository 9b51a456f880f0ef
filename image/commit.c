/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * image_store_commit(): a new image of the store made of an upper directory over an image of the store
 * (a snapshot of a live sandbox's changes, see runtime/snapshot.c). The upper is flattened by squash
 * (layer/squash.c, SQUASH_TOP_ONLY | SQUASH_KEEP_WHITEOUTS: its own names only, the data of metacopy files
 * read from the base's layers, whiteouts and opaque directories kept), written as an OCI layer tar by
 * tar_export() into an unnamed temporary of the store, hashed (its diff_id), and added through
 * store_image_add() like a pulled layer: unpacked once, verified against its diff_id, shared by every
 * image and sandbox that uses it. The config is the base's with the new diff_id, a history entry and a
 * new creation time; the image has no manifest (as a docker-save tar without one).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "image.h"
#include "macro.h"
#include "ojson.h"
#include "ref.h"
#include "rmtree.h"
#include "squash.h"
#include "store-internal.h"
#include "tar.h"

typedef struct CommitLayer {
        int fd;                 /* the layer tar, read from its start */
        size_t index;           /* the layer it is (bottom first) */
        char what[64];
} CommitLayer;

static ssize_t commit_read(void *userdata, void *buf, size_t size) {
        CommitLayer *cl = userdata;
        ssize_t n = read(cl->fd, buf, size);
        return n < 0 ? -errno : n;
}

static int commit_open_layer(void *userdata, size_t i, StoreLayerSource *ret, ImageReport *rep) {
        CommitLayer *cl = userdata;
        if (i != cl->index)
                return report_fail(rep, -ENOENT, "a layer of the base image is missing from the store");
        if (lseek(cl->fd, 0, SEEK_SET) < 0)
                return report_fail(rep, -errno, "cannot read the snapshot's layer: %m");
        *ret = (StoreLayerSource) {
                .read = commit_read,
                .userdata = cl,
                .blob_size = UINT64_MAX,
                .what = cl->what,
        };
        return 0;
}

static int file_digest(int fd, char ret[static DIGEST_STRING_MAX]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        char buf[64 * 1024];
        uint64_t off = 0;
        int r = sha256_new(&h);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof buf, (off_t) off);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                r = sha256_update(h, buf, (size_t) n);
                if (r < 0)
                        return r;
                off += (uint64_t) n;
        }
        return sha256_final(h, ret);
}

/* The base's config with DIFF_ID on top, a history entry and a new creation time. */
static int commit_config(ImageStore *s, const Image *base, const char *diff_id, const char *created_by,
                         char **ret, size_t *ret_size, ImageReport *rep) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *buf = NULL;
        char err[256], now[32];
        size_t n;
        int r;

        r = store_blob_read(s, base->id, OCI_MAX_DOCUMENT_SIZE, &buf, &n);
        if (r < 0)
                return report_fail(rep, r, "image %s: cannot read its config: %m", base->id);
        r = ojson_parse_object(buf, n, OCI_MAX_DOCUMENT_SIZE, 64, &j, err, sizeof err);
        if (r < 0)
                return report_fail(rep, r, "image %s: its config: %s", base->id, err);

        time_t t = time(NULL);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return report_fail(rep, -EINVAL, "cannot format the time");

        json_t *rootfs = json_object_get(j, "rootfs");
        json_t *ids = rootfs ? json_object_get(rootfs, "diff_ids") : NULL;
        if (!json_is_array(ids))
                return report_fail(rep, -EBADMSG, "image %s: its config has no rootfs.diff_ids", base->id);
        json_t *history = json_object_get(j, "history");
        if (!history) {
                history = json_array();
                if (!history || json_object_set_new(j, "history", history) < 0)
                        return report_fail(rep, -ENOMEM, "out of memory");
        }
        if (!json_is_array(history))
                return report_fail(rep, -EBADMSG, "image %s: its config's history is not an array", base->id);
        json_t *entry = json_pack("{s:s, s:s}", "created", now, "created_by", created_by ?: "sandbox snapshot");
        if (!entry || json_array_append_new(history, entry) < 0 ||
            json_array_append_new(ids, json_string(diff_id)) < 0 ||
            json_object_set_new(j, "created", json_string(now)) < 0)
                return report_fail(rep, -ENOMEM, "out of memory");

        char *out = json_dumps(j, JSON_COMPACT);
        if (!out)
                return report_fail(rep, -ENOMEM, "out of memory");
        *ret_size = strlen(out);
        *ret = out;
        return 0;
}

int image_store_commit(ImageStore *s, const Image *base, int upper_fd, const ImageCommitOptions *o, Image **ret,
                       ImageReport *rep) {
        _cleanup_(image_ref_freep) ImageRef *ref = NULL;
        _cleanup_(oci_config_freep) OciConfig *parsed = NULL;
        _cleanup_free_ char *canonical = NULL, *config = NULL;
        _cleanup_close_ int flat_fd = -EBADF, tar_fd = -EBADF;
        int layer_fds[SQUASH_LAYERS_MAX];
        size_t n_fds = 0, config_size = 0;
        char flat[64], diff_id[DIGEST_STRING_MAX], config_digest[DIGEST_STRING_MAX], err[256];
        bool flat_made = false;
        TarReport trep = {};
        struct stat st;
        int r;

        assert_return(s && base && upper_fd >= 0 && o && o->name && rep, -EINVAL);
        if (base->n_layers + 1 > SQUASH_LAYERS_MAX)
                return report_fail(rep, -E2BIG, "image %s has %zu layers: a snapshot on top of it would have more "
                                   "than %d", base->id, base->n_layers, SQUASH_LAYERS_MAX - 1);
        r = image_ref_parse(o->name, &ref);
        if (r < 0 || ref->digest)
                return report_fail(rep, -EINVAL, "'%s' is not an image name (%s)", o->name,
                                   r < 0 ? image_ref_check(o->name) ?: "invalid" : "a digest, not a tag");
        r = image_ref_string(ref, &canonical);
        if (r < 0)
                return report_fail(rep, r, "out of memory");

        r = store_lock_shared(s);
        if (r < 0)
                return report_fail(rep, r, "image store '%s': cannot lock it: %m", s->path);

        layer_fds[n_fds++] = upper_fd;
        for (size_t i = 0; i < base->n_layers; i++) {
                int fd = open(base->layers[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        r = report_fail(rep, -errno, "image %s: cannot open layer %s: %m", base->id,
                                        base->layers[i].diff_id);
                        goto finish;
                }
                layer_fds[n_fds++] = fd;
        }

        /* Flattened: plain files, no metacopy marker, nothing that needs the lowers but the names. */
        store_tmp_name(s, "commit", flat, sizeof flat);
        r = squash_layers(layer_fds, n_fds, s->tmp_fd, flat, SQUASH_KEEP_WHITEOUTS | SQUASH_TOP_ONLY, NULL);
        if (r < 0) {
                report_fail(rep, r, "cannot flatten the snapshot over image %s: %s", base->id,
                            r == -ENODATA ? "a metacopy file's data is in none of its layers" : strerror(-r));
                goto finish;
        }
        flat_made = true;
        flat_fd = openat(s->tmp_fd, flat, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        tar_fd = openat(s->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (flat_fd < 0 || tar_fd < 0) {
                r = report_fail(rep, -errno, "image store '%s': cannot make a temporary: %m", s->path);
                goto finish;
        }
        r = tar_export(flat_fd, tar_fd, TAR_COMPRESS_NONE, NULL, &trep);
        if (r < 0) {
                report_fail(rep, r, "cannot write the snapshot's layer: %s", trep.error[0] ? trep.error : strerror(-r));
                goto finish;
        }
        if (fstat(tar_fd, &st) < 0) {
                r = report_fail(rep, -errno, "cannot stat the snapshot's layer: %m");
                goto finish;
        }
        uint64_t max = o->max_size > 0 ? o->max_size : TAR_MAX_SIZE_DEFAULT;
        if ((uint64_t) st.st_size > max) {
                r = report_fail(rep, -EFBIG, "the snapshot's layer has %llu bytes, more than the limit of %llu",
                                (unsigned long long) st.st_size, (unsigned long long) max);
                goto finish;
        }
        r = file_digest(tar_fd, diff_id);
        if (r < 0) {
                report_fail(rep, r, "cannot hash the snapshot's layer: %m");
                goto finish;
        }

        r = commit_config(s, base, diff_id, o->created_by, &config, &config_size, rep);
        if (r < 0)
                goto finish;
        r = sha256_buffer(config, config_size, config_digest);
        if (r >= 0)
                r = oci_config_parse(config, config_size, &parsed, err, sizeof err);
        if (r < 0) {
                report_fail(rep, r, "the snapshot's config: %s", err);
                goto finish;
        }

        CommitLayer cl = { .fd = tar_fd, .index = parsed->n_diff_ids - 1 };
        snprintf(cl.what, sizeof cl.what, "the snapshot's layer");
        char *names[] = { canonical, NULL };
        ImageParts parts = {
                .config = config,
                .config_size = config_size,
                .parsed = parsed,
                .n_layers = parsed->n_diff_ids,
                .names = names,
        };
        strcpy(parts.config_digest, config_digest);
        LayerOpener opener = { .open = commit_open_layer, .userdata = &cl };
        r = store_image_add(s, &parts, &opener, NULL, ret, rep);

finish:
        if (flat_made) {
                flat_fd = safe_close(flat_fd);
                (void) rm_tree_at(s->tmp_fd, flat);
        }
        for (size_t i = 1; i < n_fds; i++)
                safe_close(layer_fds[i]);
        store_unlock_shared(s);
        return r;
}
