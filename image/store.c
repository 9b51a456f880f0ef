/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The image store on disk (docs/images.md has the format and the argument for each rule):
 *
 *   STORE/                    root, 0700: nobody else may reach a layer (they hold set-id files)
 *     lock                    flock: shared by every pull, import, tag, untag and pin; exclusive by gc
 *     refs.json               references -> image ID (+ manifest digest); replaced whole (temp + rename)
 *     blobs/sha256/<hex>      manifests and configs, verified on write and on read
 *     layers/sha256/<hex>/    one per layer (its diff_id): root/ the unpacked tree, info.json its size
 *     locks/<kind>-<hex>      flock per layer or download, so two pulls of one layer do the work once
 *     pins/<name>             a running sandbox's layers; live while its creator holds the file's flock
 *     tmp/                    downloads in progress (kept for resuming), unpacks in progress, gc's trash
 *
 * This file: opening the store, locks, blobs, references, images, pins and gc. unpack.c adds layers,
 * fetch.c and registry.c bring images in. Library code: returns -errno, never logs above debug.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "fs.h"
#include "log.h"
#include "ojson.h"
#include "ref.h"
#include "rmtree.h"
#include "store-internal.h"
#include "tree.h"

#define REFS_FILE "refs.json"
#define REFS_MAX_SIZE (64u << 20)
#define REFS_MAX 100000
#define LAYER_INFO "info.json"
#define LAYER_ROOT "root"
#define PIN_MAX_SIZE (1u << 20)

int report_fail(ImageReport *rep, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = errbuf_set_firstv(rep ? rep->error : NULL, sizeof(rep->error), r, fmt, ap);
        va_end(ap);
        return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* Opening                                                                                          */

ImageStore *image_store_free(ImageStore *s) {
        if (!s)
                return NULL;
        free(s->path);
        safe_close(s->dir_fd);
        safe_close(s->blobs_fd);
        safe_close(s->layers_fd);
        safe_close(s->locks_fd);
        safe_close(s->pins_fd);
        safe_close(s->tmp_fd);
        safe_close(s->lock_fd);
        free(s);
        return NULL;
}

const char *image_store_path(const ImageStore *s) {
        return s->path;
}

/* The directory PATH (one or two components) below DIRFD, made 0700 if missing. */
static int open_subdir(int dirfd, const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        _cleanup_close_ int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        char *save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (mkdirat(fd, c, 0700) < 0 && errno != EEXIST)
                        return -errno;
                int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return -errno;
                safe_close(fd);
                fd = nfd;
        }
        return TAKE_FD(fd);
}

int image_store_open(const char *path, bool create, ImageStore **ret, ImageReport *rep) {
        assert_return(path && ret, -EINVAL);

        if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
                return report_fail(rep, -errno, "cannot create the image store '%s': %m", path);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return report_fail(rep, -errno, "cannot open the image store '%s': %m", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return report_fail(rep, -errno, "'%s': %m", path);
        /* The store holds other people's set-id files and device nodes with their owners: only we may
         * reach it. An existing directory that others can enter is refused, never silently fixed. */
        if (st.st_uid != geteuid())
                return report_fail(rep, -EPERM, "image store '%s' belongs to uid %u, not to us (uid %u)", path,
                                   (unsigned) st.st_uid, (unsigned) geteuid());
        if (st.st_mode & 077)
                return report_fail(rep, -EPERM,
                                   "image store '%s' has mode %04o: it must give group and others no access "
                                   "(chmod 0700 '%s')", path, (unsigned) (st.st_mode & 07777), path);

        _cleanup_(image_store_freep) ImageStore *s = calloc(1, sizeof(*s));
        if (!s)
                return report_fail(rep, -ENOMEM, "out of memory");
        s->dir_fd = s->blobs_fd = s->layers_fd = s->locks_fd = s->pins_fd = s->tmp_fd = s->lock_fd = -EBADF;
        s->path = realpath(path, NULL);
        if (!s->path)
                return report_fail(rep, -errno, "'%s': %m", path);
        s->dir_fd = TAKE_FD(fd);

        static const struct {
                const char *path;
                size_t offset;
        } dirs[] = {
                { "blobs/sha256", offsetof(ImageStore, blobs_fd) },
                { "layers/sha256", offsetof(ImageStore, layers_fd) },
                { "locks", offsetof(ImageStore, locks_fd) },
                { "pins", offsetof(ImageStore, pins_fd) },
                { "tmp", offsetof(ImageStore, tmp_fd) },
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                int k = open_subdir(s->dir_fd, dirs[i].path);
                if (k < 0)
                        return report_fail(rep, k, "image store '%s': cannot open '%s': %m", s->path, dirs[i].path);
                *(int *) ((char *) s + dirs[i].offset) = k;
        }
        s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (s->lock_fd < 0)
                return report_fail(rep, -errno, "image store '%s': cannot open its lock file: %m", s->path);
        *ret = TAKE_PTR(s);
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Locks and temporaries                                                                            */

static int flock_retry(int fd, int op) {
        int r;
        do
                r = flock(fd, op);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : 0;
}

int store_lock_shared(ImageStore *s) {
        if (s->shared_depth == 0) {
                int r = flock_retry(s->lock_fd, LOCK_SH);
                if (r < 0)
                        return r;
        }
        s->shared_depth++;
        return 0;
}

void store_unlock_shared(ImageStore *s) {
        assert(s->shared_depth > 0);
        if (--s->shared_depth == 0)
                (void) flock(s->lock_fd, LOCK_UN);
}

int store_lock_name(ImageStore *s, const char *kind, const char *hex) {
        char name[NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s-%s", kind, hex);
        _cleanup_close_ int fd = openat(s->locks_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        int r = flock_retry(fd, LOCK_EX);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

/* One counter for the process, not per ImageStore: sandboxd opens a store per sandbox start on several
 * threads and pins hundreds of images at once, and per-store counters would all give "pin-PID-0". */
static unsigned tmp_counter;

void store_tmp_name(ImageStore *s, const char *prefix, char *buf, size_t size) {
        snprintf(buf, size, "%s-%d-%u", prefix, (int) getpid(),
                 __atomic_fetch_add(&tmp_counter, 1, __ATOMIC_RELAXED));
}

/* ------------------------------------------------------------------------------------------------ */
/* Blobs                                                                                            */

int store_blob_write(ImageStore *s, const char *digest, const void *data, size_t size) {
        char check[DIGEST_STRING_MAX], tmp[64];
        assert_return(digest_is_valid(digest), -EINVAL);

        int r = sha256_buffer(data, size, check);
        if (r < 0)
                return r;
        if (!streq(check, digest))
                return -EBADMSG;
        if (faccessat(s->blobs_fd, digest_hex(digest), F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;

        store_tmp_name(s, "blob", tmp, sizeof(tmp));
        _cleanup_close_ int fd = openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat2(s->tmp_fd, tmp, s->blobs_fd, digest_hex(digest), RENAME_NOREPLACE) < 0 &&
            errno != EEXIST)
                r = -errno;
        if (r < 0 || faccessat(s->tmp_fd, tmp, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                (void) unlinkat(s->tmp_fd, tmp, 0);
        if (r >= 0)
                (void) fsync(s->blobs_fd);
        return r;
}

int store_blob_read(ImageStore *s, const char *digest, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        char check[DIGEST_STRING_MAX];
        size_t n;

        assert_return(digest_is_valid(digest), -EINVAL);
        int r = read_file_at(s->blobs_fd, digest_hex(digest), max, &buf, &n);
        if (r < 0)
                return r;
        r = sha256_buffer(buf, n, check);
        if (r < 0)
                return r;
        if (!streq(check, digest))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

bool store_layer_exists(ImageStore *s, const char *diff_id) {
        struct stat st;
        return fstatat(s->layers_fd, digest_hex(diff_id), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* ------------------------------------------------------------------------------------------------ */
/* References                                                                                       */

void store_refs_done(StoreRefs *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->refs[i].name);
        free(r->refs);
        *r = (StoreRefs) {};
}

static int ref_cmp(const void *a, const void *b) {
        return strcmp(((const StoreRef *) a)->name, ((const StoreRef *) b)->name);
}

int store_refs_read(ImageStore *s, StoreRefs *ret, ImageReport *rep) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char err[256];
        size_t n;

        int r = read_file_at(s->dir_fd, REFS_FILE, REFS_MAX_SIZE, &buf, &n);
        if (r == -ENOENT) {
                *ret = (StoreRefs) {};
                return 0;
        }
        if (r < 0)
                return report_fail(rep, r, "image store '%s': cannot read %s: %m", s->path, REFS_FILE);
        r = ojson_parse_object(buf, n, REFS_MAX_SIZE, 8, &j, err, sizeof(err));
        if (r < 0)
                return report_fail(rep, r, "image store '%s': %s: %s", s->path, REFS_FILE, err);
        json_t *refs = json_object_get(j, "refs");
        if (!json_is_object(refs) || json_object_size(refs) > REFS_MAX)
                return report_fail(rep, -EBADMSG, "image store '%s': %s: no refs object, or too many", s->path,
                                   REFS_FILE);
        StoreRefs out = { .refs = calloc(json_object_size(refs) ?: 1, sizeof(StoreRef)) };
        if (!out.refs)
                return report_fail(rep, -ENOMEM, "out of memory");
        const char *key;
        json_t *v;
        json_object_foreach(refs, key, v) {
                const char *id = json_is_object(v) ? ojson_string(v, "id") : NULL;
                const char *manifest = json_is_object(v) ? ojson_string(v, "manifest") : NULL;
                json_t *added = json_is_object(v) ? json_object_get(v, "added") : NULL;
                if (!id || !digest_is_valid(id) || (manifest && *manifest && !digest_is_valid(manifest))) {
                        store_refs_done(&out);
                        return report_fail(rep, -EBADMSG, "image store '%s': %s: invalid entry for '%s'", s->path,
                                           REFS_FILE, key);
                }
                StoreRef *e = &out.refs[out.n];
                e->name = strdup(key);
                if (!e->name) {
                        store_refs_done(&out);
                        return report_fail(rep, -ENOMEM, "out of memory");
                }
                out.n++;
                strcpy(e->id, id);
                strcpy(e->manifest, manifest ?: "");
                e->added = json_is_integer(added) ? json_integer_value(added) : 0;
        }
        qsort(out.refs, out.n, sizeof(StoreRef), ref_cmp);
        *ret = out;
        return 0;
}

static int refs_write(ImageStore *s, const StoreRefs *refs) {
        _cleanup_(json_decrefp) json_t *root = json_object(), *o = json_object();
        if (!root || !o)
                return -ENOMEM;
        for (size_t i = 0; i < refs->n; i++) {
                const StoreRef *e = &refs->refs[i];
                json_t *v = json_pack("{s:s, s:s, s:I}", "id", e->id, "manifest", e->manifest, "added",
                                      (json_int_t) e->added);
                if (!v || json_object_set_new(o, e->name, v) < 0)
                        return -ENOMEM;
        }
        if (json_object_set(root, "refs", o) < 0 || json_object_set_new(root, "version", json_integer(1)) < 0)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(1));
        if (!text)
                return -ENOMEM;
        return write_file_atomic_at(s->dir_fd, REFS_FILE, text, strlen(text), 0600);
}

static StoreRef *refs_find(const StoreRefs *refs, const char *name) {
        StoreRef key = { .name = (char *) name };
        return refs->n ? bsearch(&key, refs->refs, refs->n, sizeof(StoreRef), ref_cmp) : NULL;
}

/* Apply CHANGE to the table under the refs lock (which itself is taken under the shared store lock). */
static int refs_update(ImageStore *s, int (*change)(StoreRefs *refs, void *userdata), void *userdata,
                       ImageReport *rep) {
        int r = store_lock_shared(s);
        if (r < 0)
                return report_fail(rep, r, "image store '%s': cannot lock: %m", s->path);
        _cleanup_close_ int lock = store_lock_name(s, "refs", "table");
        if (lock < 0) {
                store_unlock_shared(s);
                return report_fail(rep, lock, "image store '%s': cannot lock the references: %m", s->path);
        }
        StoreRefs refs = {};
        r = store_refs_read(s, &refs, rep);
        if (r >= 0)
                r = change(&refs, userdata);
        if (r > 0) {
                qsort(refs.refs, refs.n, sizeof(StoreRef), ref_cmp);
                int k = refs_write(s, &refs);
                if (k < 0)
                        r = report_fail(rep, k, "image store '%s': cannot write %s: %m", s->path, REFS_FILE);
        }
        store_refs_done(&refs);
        store_unlock_shared(s);
        return r;
}

typedef struct RefsSet {
        char *const *names;
        size_t n;
        const char *id, *manifest;
} RefsSet;

static int refs_set_change(StoreRefs *refs, void *userdata) {
        const RefsSet *set = userdata;
        if (refs->n + set->n > REFS_MAX)
                return -E2BIG;
        StoreRef *grown = reallocarray(refs->refs, refs->n + set->n + 1, sizeof(StoreRef));
        if (!grown)
                return -ENOMEM;
        refs->refs = grown;
        for (size_t i = 0; i < set->n; i++) {
                StoreRef *e = NULL;
                for (size_t k = 0; k < refs->n; k++)
                        if (streq(refs->refs[k].name, set->names[i]))
                                e = &refs->refs[k];
                if (!e) {
                        e = &refs->refs[refs->n];
                        *e = (StoreRef) { .name = strdup(set->names[i]) };
                        if (!e->name)
                                return -ENOMEM;
                        refs->n++;
                }
                snprintf(e->id, sizeof(e->id), "%s", set->id);
                snprintf(e->manifest, sizeof(e->manifest), "%s", set->manifest ?: "");
                e->added = (int64_t) time(NULL);
        }
        return 1;
}

int store_refs_set(ImageStore *s, char *const *names, size_t n, const char *id, const char *manifest,
                   ImageReport *rep) {
        if (n == 0)
                return 0;
        RefsSet set = { .names = names, .n = n, .id = id, .manifest = manifest };
        int r = refs_update(s, refs_set_change, &set, rep);
        if (r == -E2BIG)
                return report_fail(rep, r, "image store '%s': more than %d references", s->path, REFS_MAX);
        return r < 0 ? report_fail(rep, r, "image store '%s': cannot update references: %m", s->path) : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Images                                                                                           */

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        strv_free(i->refs);
        oci_config_free(i->config);
        for (size_t k = 0; k < i->n_layers; k++)
                free(i->layers[k].path);
        free(i->layers);
        free(i);
        return NULL;
}

void image_list_free(Image **l, size_t n) {
        for (size_t i = 0; l && i < n; i++)
                image_free(l[i]);
        free(l);
}

static int layer_info_read(ImageStore *s, const char *diff_id, uint64_t *ret_size, uint64_t *ret_entries) {
        char path[DIGEST_HEX_LEN + sizeof("/" LAYER_INFO)];
        _cleanup_free_ char *buf = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char err[128];
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", digest_hex(diff_id), LAYER_INFO);
        int r = read_file_at(s->layers_fd, path, 64 * 1024, &buf, &n);
        if (r < 0)
                return r;
        r = ojson_parse_object(buf, n, 64 * 1024, 4, &j, err, sizeof(err));
        if (r < 0)
                return r;
        if (ojson_u64(j, "size", ret_size) < 0 || ojson_u64(j, "entries", ret_entries) < 0)
                return -EBADMSG;
        return 0;
}

int store_image_load(ImageStore *s, const StoreRefs *refs, const char *id, const char *manifest, Image **ret,
                     ImageReport *rep) {
        _cleanup_free_ char *buf = NULL;
        char err[512];
        size_t n;

        int r = store_blob_read(s, id, OCI_MAX_DOCUMENT_SIZE, &buf, &n);
        if (r == -EBADMSG)
                return report_fail(rep, r, "image %s: its config in the store does not match its digest", id);
        if (r < 0)
                return report_fail(rep, r, "image %s: cannot read its config from the store: %m", id);
        _cleanup_(image_freep) Image *img = calloc(1, sizeof(*img));
        if (!img)
                return report_fail(rep, -ENOMEM, "out of memory");
        strcpy(img->id, id);
        snprintf(img->manifest, sizeof(img->manifest), "%s", manifest ?: "");
        r = oci_config_parse(buf, n, &img->config, err, sizeof(err));
        if (r < 0)
                return report_fail(rep, r, "image %s: %s", id, err);

        /* The references naming it; an entry keyed by the ID itself only keeps a nameless image. */
        size_t nrefs = 0;
        for (size_t i = 0; refs && i < refs->n; i++)
                nrefs += streq(refs->refs[i].id, id) && !streq(refs->refs[i].name, id);
        if (nrefs > 0) {
                img->refs = calloc(nrefs + 1, sizeof(char *));
                if (!img->refs)
                        return report_fail(rep, -ENOMEM, "out of memory");
                for (size_t i = 0, k = 0; i < refs->n; i++)
                        if (streq(refs->refs[i].id, id) && !streq(refs->refs[i].name, id) &&
                            !(img->refs[k++] = strdup(refs->refs[i].name)))
                                return report_fail(rep, -ENOMEM, "out of memory");
        }

        size_t nl = img->config->n_diff_ids;
        img->layers = calloc(nl ?: 1, sizeof(ImageLayer));
        if (!img->layers)
                return report_fail(rep, -ENOMEM, "out of memory");
        for (size_t i = 0; i < nl; i++) {
                /* Topmost first: the config lists them bottom first. */
                const char *diff_id = img->config->diff_ids[nl - 1 - i];
                ImageLayer *l = &img->layers[i];
                img->n_layers = i + 1;
                strcpy(l->diff_id, diff_id);
                if (!store_layer_exists(s, diff_id))
                        return report_fail(rep, -ENOENT, "image %s: layer %s is missing from the store (pull or "
                                           "import the image again)", id, diff_id);
                if (asprintf(&l->path, "%s/layers/sha256/%s/%s", s->path, digest_hex(diff_id), LAYER_ROOT) < 0) {
                        l->path = NULL;
                        return report_fail(rep, -ENOMEM, "out of memory");
                }
                if (layer_info_read(s, diff_id, &l->size, &l->entries) < 0)
                        log_debug("layer %s has no readable %s", diff_id, LAYER_INFO);
                img->size += l->size;
        }
        *ret = TAKE_PTR(img);
        return 0;
}

/* The reference entry or image ID that REFERENCE names; *ret_id and *ret_manifest point into REFS. */
static int resolve(ImageStore *s, const StoreRefs *refs, const char *reference, const char **ret_id,
                   const char **ret_manifest, ImageReport *rep) {
        _cleanup_(image_ref_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *canonical = NULL;

        if (image_ref_parse(reference, &ref) >= 0) {
                int r = image_ref_string(ref, &canonical);
                if (r < 0)
                        return report_fail(rep, r, "out of memory");
                StoreRef *e = refs_find(refs, canonical);
                if (e) {
                        *ret_id = e->id;
                        *ret_manifest = e->manifest;
                        return 0;
                }
        }

        /* An image ID, whole or a prefix of at least 4 hex digits. */
        const char *hex = startswith(reference, DIGEST_PREFIX) ?: reference;
        size_t hl = strlen(hex);
        bool is_hex = hl >= 4 && hl <= DIGEST_HEX_LEN && strspn(hex, "0123456789abcdef") == hl;
        if (is_hex) {
                const StoreRef *found = NULL;
                for (size_t i = 0; i < refs->n; i++) {
                        if (!strneq(digest_hex(refs->refs[i].id), hex, hl))
                                continue;
                        if (found && !streq(found->id, refs->refs[i].id))
                                return report_fail(rep, -ENOENT, "'%s' is a prefix of more than one image ID",
                                                   reference);
                        found = &refs->refs[i];
                }
                if (found) {
                        *ret_id = found->id;
                        *ret_manifest = found->manifest;
                        return 0;
                }
        }
        if (!canonical && !is_hex) {
                const char *why = image_ref_check(reference);
                return report_fail(rep, -EINVAL, "'%s' is not an image reference (%s)", reference,
                                   why ?: "invalid");
        }
        if (is_hex)
                return report_fail(rep, -ENOENT, "no image named '%s' and no image ID starting with it in the store "
                                   "'%s'", reference, s->path);
        return report_fail(rep, -ENOENT, "no image '%s' in the store '%s': pull it with 'sandbox-image pull %s'",
                           reference, s->path, reference);
}

int image_store_lookup(ImageStore *s, const char *reference, Image **ret, ImageReport *rep) {
        StoreRefs refs = {};
        const char *id = NULL, *manifest = NULL;

        assert_return(s && reference && ret, -EINVAL);
        int r = store_refs_read(s, &refs, rep);
        if (r < 0)
                return r;
        r = resolve(s, &refs, reference, &id, &manifest, rep);
        if (r >= 0)
                r = store_image_load(s, &refs, id, manifest, ret, rep);
        store_refs_done(&refs);
        return r;
}

int image_store_list(ImageStore *s, Image ***ret, size_t *ret_n, ImageReport *rep) {
        StoreRefs refs = {};
        Image **l = NULL;
        size_t n = 0;

        assert_return(s && ret && ret_n, -EINVAL);
        int r = store_refs_read(s, &refs, rep);
        if (r < 0)
                return r;
        l = calloc(refs.n ?: 1, sizeof(Image *));
        if (!l) {
                store_refs_done(&refs);
                return report_fail(rep, -ENOMEM, "out of memory");
        }
        /* refs are sorted by name: the first reference of each image decides its place. */
        for (size_t i = 0; i < refs.n && r >= 0; i++) {
                bool seen = false;
                for (size_t k = 0; k < n && !seen; k++)
                        seen = streq(l[k]->id, refs.refs[i].id);
                if (!seen && (r = store_image_load(s, &refs, refs.refs[i].id, refs.refs[i].manifest, &l[n], rep)) >= 0)
                        n++;
        }
        store_refs_done(&refs);
        if (r < 0) {
                image_list_free(l, n);
                return r;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

typedef struct TagChange {
        const char *name, *id, *manifest;
} TagChange;

int image_store_tag(ImageStore *s, const char *source, const char *target, ImageReport *rep) {
        StoreRefs refs = {};
        const char *id = NULL, *manifest = NULL;
        _cleanup_(image_ref_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *name = NULL;
        char idbuf[DIGEST_STRING_MAX], mbuf[DIGEST_STRING_MAX];

        assert_return(s && source && target, -EINVAL);
        if (image_ref_parse(target, &ref) < 0)
                return report_fail(rep, -EINVAL, "'%s' is not an image reference (%s)", target,
                                   image_ref_check(target) ?: "invalid");
        if (ref->digest)
                return report_fail(rep, -EINVAL, "'%s': a tag cannot carry a digest (use NAME[:TAG])", target);
        int r = image_ref_string(ref, &name);
        if (r < 0)
                return report_fail(rep, r, "out of memory");
        r = store_refs_read(s, &refs, rep);
        if (r >= 0)
                r = resolve(s, &refs, source, &id, &manifest, rep);
        if (r >= 0) {
                snprintf(idbuf, sizeof(idbuf), "%s", id);
                snprintf(mbuf, sizeof(mbuf), "%s", manifest);
        }
        store_refs_done(&refs);
        if (r < 0)
                return r;
        return store_refs_set(s, &name, 1, idbuf, mbuf, rep);
}

typedef struct Untag {
        const char *name;               /* a canonical reference, or NULL */
        const char *id;                 /* all references to this image, or NULL */
        char **removed;
        size_t n_removed;
} Untag;

static int untag_remove(Untag *u, StoreRefs *refs, bool (*match)(const StoreRef *e, const void *key), const void *key) {
        size_t o = 0;
        for (size_t i = 0; i < refs->n; i++) {
                StoreRef *e = &refs->refs[i];
                if (!match(e, key)) {
                        refs->refs[o++] = *e;
                        continue;
                }
                char **grown = reallocarray(u->removed, u->n_removed + 2, sizeof(char *));
                if (!grown) {
                        /* Keep the entry: the table stays consistent. */
                        refs->refs[o++] = *e;
                        for (size_t k = i + 1; k < refs->n; k++)
                                refs->refs[o++] = refs->refs[k];
                        refs->n = o;
                        return -ENOMEM;
                }
                u->removed = grown;
                u->removed[u->n_removed++] = e->name;
                u->removed[u->n_removed] = NULL;
        }
        refs->n = o;
        return 0;
}

static bool match_name(const StoreRef *e, const void *key) {
        return streq(e->name, key);
}

static bool match_id(const StoreRef *e, const void *key) {
        return streq(e->id, key);
}

/* A reference that is not a tag: NAME@DIGEST, or the ID itself (a nameless image). */
static bool is_tag(const StoreRef *e) {
        return !strchr(e->name, '@') && !streq(e->name, e->id);
}

static bool match_id_digest_ref(const StoreRef *e, const void *key) {
        return streq(e->id, key) && !is_tag(e);
}

static int untag_change(StoreRefs *refs, void *userdata) {
        Untag *u = userdata;
        char id[DIGEST_STRING_MAX] = "";
        int r;

        if (u->name) {
                StoreRef *e = refs_find(refs, u->name);
                if (e)
                        snprintf(id, sizeof(id), "%s", e->id);
                r = untag_remove(u, refs, match_name, u->name);
                /* The last tag of an image takes the NAME@DIGEST references pulls made with it along (as
                 * docker rmi does): otherwise an untagged image could never be collected. */
                bool tagged = false;
                for (size_t i = 0; *id && i < refs->n && !tagged; i++)
                        tagged = streq(refs->refs[i].id, id) && is_tag(&refs->refs[i]);
                if (r >= 0 && *id && !tagged && !strchr(u->name, '@'))
                        r = untag_remove(u, refs, match_id_digest_ref, id);
        } else
                r = untag_remove(u, refs, match_id, u->id);
        if (r < 0)
                return r;
        return u->n_removed > 0 ? 1 : -ENOENT;
}

int image_store_untag(ImageStore *s, const char *reference, char ***ret_removed, ImageReport *rep) {
        _cleanup_(image_ref_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *name = NULL;
        char id[DIGEST_STRING_MAX] = "";
        StoreRefs refs = {};

        assert_return(s && reference, -EINVAL);
        int r = store_refs_read(s, &refs, rep);
        if (r < 0)
                return r;
        if (image_ref_parse(reference, &ref) >= 0 && image_ref_string(ref, &name) >= 0 && !refs_find(&refs, name)) {
                free(name);
                name = NULL;
        }
        if (!name) {
                const char *rid = NULL, *manifest = NULL;
                r = resolve(s, &refs, reference, &rid, &manifest, rep);
                if (r >= 0)
                        snprintf(id, sizeof(id), "%s", rid);
        }
        store_refs_done(&refs);
        if (r < 0)
                return r;
        Untag u = { .name = name, .id = *id ? id : NULL };
        r = refs_update(s, untag_change, &u, rep);
        if (r == -ENOENT)
                r = report_fail(rep, r, "no image '%s' in the store '%s'", reference, s->path);
        else if (r < 0)
                r = report_fail(rep, r, "image store '%s': cannot update references: %m", s->path);
        if (r < 0 || !ret_removed)
                strv_free(u.removed);
        else
                *ret_removed = u.removed;
        return r < 0 ? r : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Pins                                                                                             */

struct ImagePin {
        int dir_fd;                     /* STORE/pins */
        int fd;                         /* the pin file, flock'ed exclusively */
        char name[64];
};

ImagePin *image_pin_release(ImagePin *p) {
        if (!p)
                return NULL;
        if (p->dir_fd >= 0)
                (void) unlinkat(p->dir_fd, p->name, 0);
        safe_close(p->fd);
        safe_close(p->dir_fd);
        free(p);
        return NULL;
}

int image_pin_fd(const ImagePin *p) {
        return p ? p->fd : -EBADF;
}

int image_store_pin(ImageStore *s, const Image *img, ImagePin **ret, ImageReport *rep) {
        assert_return(s && img && ret, -EINVAL);

        _cleanup_(json_decrefp) json_t *j = json_pack("{s:i, s:s, s:[]}", "pid", (int) getpid(), "id", img->id,
                                                       "layers");
        if (!j)
                return report_fail(rep, -ENOMEM, "out of memory");
        json_t *layers = json_object_get(j, "layers");
        for (size_t i = 0; i < img->n_layers; i++)
                if (json_array_append_new(layers, json_string(img->layers[i].diff_id)) < 0)
                        return report_fail(rep, -ENOMEM, "out of memory");
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        if (!text)
                return report_fail(rep, -ENOMEM, "out of memory");

        ImagePin *p = calloc(1, sizeof(*p));
        if (!p)
                return report_fail(rep, -ENOMEM, "out of memory");
        p->fd = -EBADF;
        p->dir_fd = fcntl(s->pins_fd, F_DUPFD_CLOEXEC, 3);
        int r = p->dir_fd < 0 ? -errno : 0;
        /* Under the shared store lock: gc, which needs it exclusively, sees either no file or a locked one. */
        if (r >= 0 && (r = store_lock_shared(s)) >= 0) {
                for (unsigned tries = 0; tries < 100; tries++) {
                        store_tmp_name(s, "pin", p->name, sizeof(p->name));
                        p->fd = openat(p->dir_fd, p->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                        if (p->fd >= 0 || errno != EEXIST)
                                break;
                }
                r = p->fd < 0 ? -errno : flock_retry(p->fd, LOCK_EX);
                if (r >= 0)
                        r = write_all(p->fd, text, strlen(text));
                /* Check that the layers are still there (a gc may have run before we locked). */
                for (size_t i = 0; r >= 0 && i < img->n_layers; i++)
                        if (!store_layer_exists(s, img->layers[i].diff_id))
                                r = report_fail(rep, -ENOENT, "image %s: layer %s was removed from the store",
                                                img->id, img->layers[i].diff_id);
                store_unlock_shared(s);
        }
        if (r < 0) {
                image_pin_release(p);
                return report_fail(rep, r, "image store '%s': cannot pin image %s: %m", s->path, img->id);
        }
        *ret = p;
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Garbage collection                                                                               */

typedef struct DigestSet {
        char (*d)[DIGEST_STRING_MAX];
        size_t n, cap;
        bool sorted;
} DigestSet;

static int set_add(DigestSet *set, const char *digest) {
        if (!digest || !digest_is_valid(digest))
                return 0;
        if (set->n == set->cap) {
                size_t ncap = set->cap ? set->cap * 2 : 64;
                void *g = reallocarray(set->d, ncap, DIGEST_STRING_MAX);
                if (!g)
                        return -ENOMEM;
                set->d = g;
                set->cap = ncap;
        }
        strcpy(set->d[set->n++], digest);
        set->sorted = false;
        return 0;
}

static int digest_cmp(const void *a, const void *b) {
        return strcmp(a, b);
}

static bool set_has(DigestSet *set, const char *digest) {
        if (!set->sorted) {
                if (set->n > 1)
                        qsort(set->d, set->n, DIGEST_STRING_MAX, digest_cmp);
                set->sorted = true;
        }
        return set->n > 0 && bsearch(digest, set->d, set->n, DIGEST_STRING_MAX, digest_cmp);
}

/* Keep image ID's config and layers (when the config is readable). */
static int keep_image(ImageStore *s, const char *id, DigestSet *blobs, DigestSet *layers) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_(oci_config_freep) OciConfig *c = NULL;
        char err[256];
        size_t n;
        int r = set_add(blobs, id);
        if (r < 0)
                return r;
        if (store_blob_read(s, id, OCI_MAX_DOCUMENT_SIZE, &buf, &n) < 0 ||
            oci_config_parse(buf, n, &c, err, sizeof(err)) < 0) {
                log_debug("gc: config %s unreadable, its layers are not known", id);
                return 0;
        }
        for (size_t i = 0; i < c->n_diff_ids; i++)
                if ((r = set_add(layers, c->diff_ids[i])) < 0)
                        return r;
        return 0;
}

/* A pin file: live (its creator holds its lock) -> keep what it lists; stale -> remove it. */
static int gc_pin(ImageStore *s, const char *name, DigestSet *blobs, DigestSet *layers, ImageGcReport *g) {
        _cleanup_close_ int fd = openat(s->pins_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
                g->pins_stale++;
                return unlinkat(s->pins_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        }
        if (errno != EWOULDBLOCK)
                return -errno;
        g->pins_live++;
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int r = read_fd_all(fd, PIN_MAX_SIZE, &buf, &n);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char err[128];
        if (ojson_parse_object(buf, n, PIN_MAX_SIZE, 4, &j, err, sizeof(err)) < 0)
                return -EBADMSG; /* a live pin we cannot read: keep everything (the caller stops) */
        r = set_add(blobs, ojson_string(j, "id"));
        json_t *l = json_object_get(j, "layers"), *v;
        size_t i;
        json_array_foreach(l, i, v) {
                if (r >= 0 && json_is_string(v))
                        r = set_add(layers, json_string_value(v));
        }
        return r;
}

int image_store_gc(ImageStore *s, bool wait, ImageGcReport *ret, ImageReport *rep) {
        DigestSet blobs = {}, layers = {};
        ImageGcReport g = {};
        StoreRefs refs = {};
        _cleanup_(strv_freep) char **trash = NULL;
        size_t n_trash = 0;
        int r;

        assert_return(s && s->shared_depth == 0, -EINVAL);
        r = flock_retry(s->lock_fd, LOCK_EX | (wait ? 0 : LOCK_NB));
        if (r == -EWOULDBLOCK)
                return report_fail(rep, -EBUSY, "image store '%s' is in use (a pull, an import or a pinning is "
                                   "running)", s->path);
        if (r < 0)
                return report_fail(rep, r, "image store '%s': cannot lock: %m", s->path);

        /* What is in use: every referenced image, every live pin. */
        r = store_refs_read(s, &refs, rep);
        for (size_t i = 0; r >= 0 && i < refs.n; i++) {
                r = keep_image(s, refs.refs[i].id, &blobs, &layers);
                if (r >= 0)
                        r = set_add(&blobs, refs.refs[i].manifest);
        }
        _cleanup_(tree_list_free) TreeList names = {};
        if (r >= 0 && (r = tree_list(s->pins_fd, &names)) < 0)
                report_fail(rep, r, "image store '%s': cannot list pins: %m", s->path);
        for (size_t i = 0; r >= 0 && i < names.n; i++)
                if ((r = gc_pin(s, names.entries[i].name, &blobs, &layers, &g)) < 0)
                        report_fail(rep, r, "image store '%s': pin '%s': %m", s->path, names.entries[i].name);
        /* A live pin's image: its config stays too (its layers are in the set already). */

        /* Leftovers of processes that are gone: nothing else can be using tmp/ or locks/ now. */
        tree_list_free(&names);
        if (r >= 0 && (r = tree_list(s->tmp_fd, &names)) < 0)
                report_fail(rep, r, "image store '%s': cannot list tmp: %m", s->path);
        for (size_t i = 0; r >= 0 && i < names.n; i++) {
                const char *name = names.entries[i].name;
                g.bytes_freed += (uint64_t) names.entries[i].st.st_size;
                int k = rm_tree_at(s->tmp_fd, name);
                if (k < 0 && k != -ENOENT)
                        r = report_fail(rep, k, "image store '%s': cannot remove 'tmp/%s': %m", s->path, name);
                g.temporaries_removed++;
        }
        tree_list_free(&names);
        if (r >= 0 && (r = tree_list(s->locks_fd, &names)) >= 0)
                for (size_t i = 0; i < names.n; i++)
                        (void) unlinkat(s->locks_fd, names.entries[i].name, 0);

        /* Blobs and layers nobody uses. Layers are moved to tmp/ under the lock and removed after it. */
        tree_list_free(&names);
        if (r >= 0 && (r = tree_list(s->blobs_fd, &names)) < 0)
                report_fail(rep, r, "image store '%s': cannot list blobs: %m", s->path);
        for (size_t i = 0; r >= 0 && i < names.n; i++) {
                const char *name = names.entries[i].name;
                char d[DIGEST_STRING_MAX + NAME_MAX];
                snprintf(d, sizeof(d), DIGEST_PREFIX "%s", name);
                if (digest_is_valid(d) && set_has(&blobs, d))
                        continue;
                if (unlinkat(s->blobs_fd, name, 0) < 0 && errno != ENOENT)
                        r = report_fail(rep, -errno, "image store '%s': cannot remove blob %s: %m", s->path, name);
                else {
                        g.blobs_removed++;
                        g.bytes_freed += (uint64_t) names.entries[i].st.st_size;
                }
        }
        tree_list_free(&names);
        if (r >= 0 && (r = tree_list(s->layers_fd, &names)) < 0)
                report_fail(rep, r, "image store '%s': cannot list layers: %m", s->path);
        for (size_t i = 0; r >= 0 && i < names.n; i++) {
                const char *name = names.entries[i].name;
                char d[DIGEST_STRING_MAX + NAME_MAX];
                snprintf(d, sizeof(d), DIGEST_PREFIX "%s", name);
                if (digest_is_valid(d) && set_has(&layers, d))
                        continue;
                uint64_t size = 0, entries = 0;
                if (digest_is_valid(d))
                        (void) layer_info_read(s, d, &size, &entries);
                char tmp[64];
                store_tmp_name(s, "gc", tmp, sizeof(tmp));
                if (renameat(s->layers_fd, name, s->tmp_fd, tmp) < 0) {
                        r = report_fail(rep, -errno, "image store '%s': cannot remove layer %s: %m", s->path, name);
                        break;
                }
                char **grown = reallocarray(trash, n_trash + 2, sizeof(char *));
                if (!grown || !(grown[n_trash] = strdup(tmp))) {
                        if (grown)
                                trash = grown;
                        r = report_fail(rep, -ENOMEM, "out of memory");
                        break;
                }
                trash = grown;
                trash[++n_trash] = NULL;
                g.layers_removed++;
                g.bytes_freed += size;
        }
        if (r >= 0) {
                (void) fsync(s->layers_fd);
                (void) fsync(s->blobs_fd);
        }
        (void) flock(s->lock_fd, LOCK_UN);

        /* The removal proper, without the lock: a crash here leaves tmp/gc-* for the next gc. */
        for (size_t i = 0; i < n_trash; i++) {
                int k = rm_tree_at(s->tmp_fd, trash[i]);
                if (k < 0 && r >= 0)
                        r = report_fail(rep, k, "image store '%s': cannot remove 'tmp/%s': %m", s->path, trash[i]);
        }
        store_refs_done(&refs);
        free(blobs.d);
        free(layers.d);
        if (r < 0)
                return r;
        if (ret)
                *ret = g;
        return 0;
}
