/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Images into the store: the part every source shares (store_image_add: blobs, layers under their
 * locks, references) and the local sources of image_import(): an OCI image layout directory, an
 * oci-archive tar and a docker/podman save tar (docker-archive). Registry pulls are in pull.c.
 *
 * Archives are read with libarchive and never unpacked whole: one pass lists the members (names
 * normalized and checked like layer members), then each member needed is found again by a pass over
 * the headers (with seeks over the data of an uncompressed file) and streamed. Links between members
 * (docker save links repeated layers) are followed inside the archive only. Layout directories are
 * read beneath their directory fd, never through a symlink. Every blob is checked against its digest
 * while it is read (manifests and configs before they are parsed, layers by the unpacker); layers of a
 * docker archive, which has no blob digests, against the config's diff_ids.
 *
 * Library code: returns -errno, never logs above debug.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "ojson.h"
#include "ref.h"
#include "store-internal.h"
#include "tar.h"

#define ARCHIVE_MAX_MEMBERS 100000
#define ARCHIVE_MAX_LINKS 8

void store_progress_label(Progress *p, char *buf, size_t size, const char *what, size_t i, size_t n,
                          const char *digest, uint64_t total) {
        if (!p)
                return;
        progress_done(p);
        snprintf(buf, size, "%s layer %zu/%zu %.12s", what, i + 1, n, digest_is_valid(digest) ? digest_hex(digest) : "");
        if (total > 0)
                progress_init_bytes(p, buf, total);
        else
                progress_init(p, buf);
}

int store_image_add(ImageStore *s, const ImageParts *parts, const LayerOpener *opener, Progress *progress,
                    Image **ret, ImageReport *rep) {
        const OciConfig *c = parts->parsed;
        char label[128];
        int r;

        assert_return(s && parts && c && opener, -EINVAL);
        if (parts->n_layers != c->n_diff_ids)
                return report_fail(rep, -EBADMSG, "image %s: the manifest lists %zu layers, its config %zu diff_ids",
                                   parts->config_digest, parts->n_layers, c->n_diff_ids);
        r = store_blob_write(s, parts->config_digest, parts->config, parts->config_size);
        if (r < 0)
                return report_fail(rep, r, "image store '%s': cannot store config %s: %m", s->path,
                                   parts->config_digest);
        if (parts->manifest && (r = store_blob_write(s, parts->manifest_digest, parts->manifest,
                                                     parts->manifest_size)) < 0)
                return report_fail(rep, r, "image store '%s': cannot store manifest %s: %m", s->path,
                                   parts->manifest_digest);

        for (size_t i = 0; i < c->n_diff_ids; i++) {
                const char *diff_id = c->diff_ids[i];
                rep->layers++;
                if (store_layer_exists(s, diff_id))
                        continue;
                /* One pull or import unpacks a layer; the others wait here and then find it. */
                _cleanup_close_ int lock = store_lock_name(s, "layer", digest_hex(diff_id));
                if (lock < 0)
                        return report_fail(rep, lock, "image store '%s': cannot lock layer %s: %m", s->path, diff_id);
                if (store_layer_exists(s, diff_id))
                        continue;
                StoreLayerSource src = {};
                r = opener->open(opener->userdata, i, &src, rep);
                if (r < 0)
                        return r;
                store_progress_label(progress, label, sizeof(label), "unpack", i, c->n_diff_ids, diff_id, 0);
                r = store_layer_add(s, diff_id, &src, progress, rep);
                if (progress)
                        progress_done(progress);
                if (opener->close)
                        opener->close(opener->userdata, i, r >= 0);
                if (r < 0)
                        return r;
                rep->layers_new++;
        }

        /* A nameless image is kept under its ID (as docker keeps <none> images) until rm or a name. */
        char *anonymous[] = { (char *) parts->config_digest, NULL };
        char *const *names = strv_length(parts->names) > 0 ? parts->names : anonymous;
        r = store_refs_set(s, names, strv_length(names), parts->config_digest, parts->manifest_digest, rep);
        if (r < 0)
                return r;
        if (!ret)
                return 0;
        StoreRefs refs = {};
        r = store_refs_read(s, &refs, rep);
        if (r >= 0)
                r = store_image_load(s, &refs, parts->config_digest, parts->manifest_digest, ret, rep);
        store_refs_done(&refs);
        return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* Sources: a layout directory or an archive, read by member path                                   */

typedef struct Member {
        char *name;                     /* normalized */
        char *link;                     /* hard link: the target's name; symlink: normalized target */
        bool symlink;
        bool regular;
        uint64_t size;
        size_t ordinal;                 /* header index in the archive */
} Member;

typedef struct Source {
        const char *path;               /* as the user gave it, for messages */
        int fd;                         /* the directory, or the archive file */
        bool is_dir;
        Member *members;                /* archives: sorted by name, the last of equal names kept */
        size_t n_members;
        struct archive *a;              /* archives: the reader of the member being streamed */
        int member_fd;                  /* directories: the file being streamed */
} Source;

static void source_close_member(Source *src) {
        if (src->a) {
                archive_read_free(src->a);
                src->a = NULL;
        }
        src->member_fd = safe_close(src->member_fd);
}

static void source_done(Source *src) {
        source_close_member(src);
        for (size_t i = 0; i < src->n_members; i++) {
                free(src->members[i].name);
                free(src->members[i].link);
        }
        free(src->members);
        safe_close(src->fd);
}

static struct archive *archive_reader_new(int fd) {
        struct archive *a = archive_read_new();
        if (!a)
                return NULL;
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_filter_zstd(a) != ARCHIVE_OK || archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
                archive_read_free(a);
                return NULL;
        }
        return a;
}

static int member_cmp(const void *x, const void *y) {
        const Member *a = x, *b = y;
        int c = strcmp(a->name, b->name);
        return c != 0 ? c : (a->ordinal < b->ordinal ? -1 : a->ordinal > b->ordinal);
}

/* A symlink TARGET of member NAME, made a member path: relative to NAME's directory, normalized. */
static int symlink_resolve(const char *name, const char *target, char **ret) {
        _cleanup_free_ char *joined = NULL;
        if (target[0] == '/')
                return -EINVAL;
        const char *slash = strrchr(name, '/');
        if (asprintf(&joined, "%.*s%s%s", slash ? (int) (slash - name) : 0, name, slash ? "/" : "", target) < 0)
                return -ENOMEM;
        /* Fold "dir/.." pairs, refusing to climb out of the archive. */
        _cleanup_free_ char *out = malloc(strlen(joined) + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (const char *p = joined; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (o == 0)
                                return -EINVAL;
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p += n;
                p += strspn(p, "/");
        }
        out[o] = '\0';
        return tar_path_normalize(out, ret);
}

static int archive_scan(Source *src, ImageReport *rep) {
        struct archive *a = archive_reader_new(src->fd);
        if (!a)
                return report_fail(rep, -EIO, "'%s': cannot read as an archive", src->path);
        int r = 0;
        for (size_t ordinal = 0;; ordinal++) {
                struct archive_entry *e;
                int k = archive_read_next_header(a, &e);
                if (k == ARCHIVE_EOF)
                        break;
                if (k < ARCHIVE_WARN) {
                        r = report_fail(rep, -EBADMSG, "'%s': %s", src->path,
                                        archive_error_string(a) ?: "not a tar archive");
                        break;
                }
                if (src->n_members >= ARCHIVE_MAX_MEMBERS) {
                        r = report_fail(rep, -E2BIG, "'%s': more than %d members", src->path, ARCHIVE_MAX_MEMBERS);
                        break;
                }
                const char *raw = archive_entry_pathname(e);
                _cleanup_free_ char *name = NULL;
                if (!raw || tar_path_normalize(raw, &name) < 0 || !*name)
                        continue; /* never looked up: unsafe names cannot be asked for */
                mode_t type = archive_entry_filetype(e);
                const char *hl = archive_entry_hardlink(e), *sl = archive_entry_symlink(e);
                if (!hl && type != AE_IFREG && type != AE_IFLNK)
                        continue;
                Member m = { .ordinal = ordinal, .regular = !hl && type == AE_IFREG,
                             .size = archive_entry_size_is_set(e) ? (uint64_t) MAX(archive_entry_size(e), 0) : 0 };
                if (hl) {
                        if (tar_path_normalize(hl, &m.link) < 0 || !*m.link) {
                                free(m.link);
                                continue;
                        }
                } else if (type == AE_IFLNK) {
                        if (!sl || symlink_resolve(name, sl, &m.link) < 0 || !*m.link) {
                                free(m.link);
                                continue;
                        }
                        m.symlink = true;
                }
                Member *g = reallocarray(src->members, src->n_members + 1, sizeof(Member));
                if (!g) {
                        free(m.link);
                        r = report_fail(rep, -ENOMEM, "out of memory");
                        break;
                }
                src->members = g;
                m.name = TAKE_PTR(name);
                src->members[src->n_members++] = m;
        }
        archive_read_free(a);
        if (r < 0)
                return r;
        qsort(src->members, src->n_members, sizeof(Member), member_cmp);
        return 0;
}

/* The member NAME stands for, after links (the last member of that name, as tar extraction would). */
static const Member *member_find(const Source *src, const char *name) {
        const Member *found = NULL;
        for (unsigned hops = 0; hops <= ARCHIVE_MAX_LINKS; hops++) {
                const Member *m = NULL;
                size_t lo = 0, hi = src->n_members;
                while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        if (strcmp(src->members[mid].name, name) < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                for (size_t i = lo; i < src->n_members && streq(src->members[i].name, name); i++)
                        m = &src->members[i];
                if (!m)
                        return NULL;
                if (!m->link)
                        return m->regular ? m : NULL;
                found = m;
                name = found->link;
        }
        return NULL;
}

static bool source_has(const Source *src, const char *name) {
        if (src->is_dir)
                return faccessat(src->fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
        return member_find(src, name) != NULL;
}

static ssize_t member_fd_read(void *userdata, void *buf, size_t size) {
        Source *src = userdata;
        ssize_t n = read(src->member_fd, buf, size);
        return n < 0 ? -errno : n;
}

static ssize_t member_archive_read(void *userdata, void *buf, size_t size) {
        Source *src = userdata;
        la_ssize_t n = archive_read_data(src->a, buf, size);
        if (n < 0)
                return archive_errno(src->a) > 0 ? -archive_errno(src->a) : -EIO;
        return n;
}

/* Start streaming member NAME; *ret_size is its size. */
static int source_open(Source *src, const char *name, uint64_t *ret_size, ImageReport *rep) {
        source_close_member(src);
        if (src->is_dir) {
                int fd = open_beneath(src->fd, name, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
                if (fd < 0)
                        return report_fail(rep, fd, "'%s': cannot open '%s': %m", src->path, name);
                src->member_fd = fd;
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return report_fail(rep, -errno, "'%s/%s': %m", src->path, name);
                if (!S_ISREG(st.st_mode))
                        return report_fail(rep, -EBADMSG, "'%s/%s' is not a regular file", src->path, name);
                *ret_size = (uint64_t) st.st_size;
                return 0;
        }
        const Member *m = member_find(src, name);
        if (!m)
                return report_fail(rep, -ENOENT, "'%s' has no member '%s'%s", src->path, name,
                                   " (or it is a link that leads nowhere)");
        src->a = archive_reader_new(src->fd);
        if (!src->a)
                return report_fail(rep, -EIO, "'%s': cannot read as an archive", src->path);
        for (size_t ordinal = 0;; ordinal++) {
                struct archive_entry *e;
                int k = archive_read_next_header(src->a, &e);
                if (k < ARCHIVE_WARN || k == ARCHIVE_EOF)
                        return report_fail(rep, -EIO, "'%s': member '%s' vanished: %s", src->path, name,
                                           archive_error_string(src->a) ?: "end of archive");
                if (ordinal == m->ordinal)
                        break;
        }
        *ret_size = m->size;
        return 0;
}

/* Read member NAME whole (at most MAX bytes). */
static int source_read(Source *src, const char *name, size_t max, char **ret, size_t *ret_size, ImageReport *rep) {
        uint64_t size;
        int r = source_open(src, name, &size, rep);
        if (r < 0)
                return r;
        if (size > max) {
                source_close_member(src);
                return report_fail(rep, -E2BIG, "'%s': '%s' is %llu bytes, more than the limit of %zu", src->path,
                                   name, (unsigned long long) size, max);
        }
        _cleanup_free_ char *buf = malloc(max + 1);
        if (!buf)
                return report_fail(rep, -ENOMEM, "out of memory");
        size_t n = 0;
        for (;;) {
                ssize_t k = src->is_dir ? member_fd_read(src, buf + n, max + 1 - n)
                                        : member_archive_read(src, buf + n, max + 1 - n);
                if (k < 0) {
                        source_close_member(src);
                        return report_fail(rep, (int) k, "'%s': cannot read '%s': %m", src->path, name);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max) {
                        source_close_member(src);
                        return report_fail(rep, -E2BIG, "'%s': '%s' is larger than the limit of %zu bytes", src->path,
                                           name, max);
                }
        }
        source_close_member(src);
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* Blob DIGEST of an OCI layout or archive, verified. */
static int source_read_blob(Source *src, const char *digest, uint64_t size, char **ret, size_t *ret_size,
                            ImageReport *rep) {
        char path[sizeof("blobs/sha256/") + DIGEST_HEX_LEN], got[DIGEST_STRING_MAX];
        _cleanup_free_ char *buf = NULL;
        size_t n;

        snprintf(path, sizeof(path), "blobs/sha256/%s", digest_hex(digest));
        int r = source_read(src, path, OCI_MAX_DOCUMENT_SIZE, &buf, &n, rep);
        if (r < 0)
                return r;
        if (n != size)
                return report_fail(rep, -EBADMSG, "'%s': blob %s is %zu bytes, its descriptor says %llu", src->path,
                                   digest, n, (unsigned long long) size);
        r = sha256_buffer(buf, n, got);
        if (r < 0)
                return report_fail(rep, r, "hashing failed");
        if (!streq(got, digest))
                return report_fail(rep, -EBADMSG, "'%s': blob %s does not match its digest (it hashes to %s)",
                                   src->path, digest, got);
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Import                                                                                           */

typedef struct Import {
        ImageStore *store;
        Source *src;
        const ImageImportOptions *o;
        OciPlatform platform;
        ImageReport *rep;
        Image **images;
        size_t n_images;
        unsigned skipped;               /* images for another platform */
        /* The image being imported: */
        const OciDocument *manifest;    /* OCI: its layer descriptors */
        char **docker_layers;           /* docker archive: its layer members */
        char what[PATH_MAX + 64];
} Import;

static int import_open_layer(void *userdata, size_t i, StoreLayerSource *ret, ImageReport *rep) {
        Import *im = userdata;
        uint64_t size;
        if (im->manifest) {
                const OciDescriptor *d = &im->manifest->layers[i];
                char path[sizeof("blobs/sha256/") + DIGEST_HEX_LEN];
                snprintf(path, sizeof(path), "blobs/sha256/%s", digest_hex(d->digest));
                int r = source_open(im->src, path, &size, rep);
                if (r < 0)
                        return r;
                snprintf(im->what, sizeof(im->what), "'%s': blob %s", im->src->path, d->digest);
                *ret = (StoreLayerSource) {
                        .read = im->src->is_dir ? member_fd_read : member_archive_read,
                        .userdata = im->src,
                        .blob_digest = d->digest,
                        .blob_size = d->size,
                        .what = im->what,
                        .count_fetched = true,
                };
                return 0;
        }
        _cleanup_free_ char *path = NULL;
        if (tar_path_normalize(im->docker_layers[i], &path) < 0 || !*path)
                return report_fail(rep, -EBADMSG, "'%s': manifest.json names an unsafe layer path '%s'", im->src->path,
                                   im->docker_layers[i]);
        int r = source_open(im->src, path, &size, rep);
        if (r < 0)
                return r;
        snprintf(im->what, sizeof(im->what), "'%s': member '%s'", im->src->path, path);
        *ret = (StoreLayerSource) {
                .read = im->src->is_dir ? member_fd_read : member_archive_read,
                .userdata = im->src,
                .blob_size = UINT64_MAX,
                .what = im->what,
                .count_fetched = true,
        };
        return 0;
}

static void import_close_layer(void *userdata, size_t i, bool success) {
        Import *im = userdata;
        source_close_member(im->src);
}

/* A name from the source (or --tag) as a canonical reference appended to *names. */
static int names_add(char ***names, const char *s, ImageReport *rep, const char *where) {
        _cleanup_(image_ref_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *canonical = NULL;
        if (image_ref_parse(s, &ref) < 0)
                return report_fail(rep, -EINVAL, "%s: '%s' is not an image reference (%s)", where, s,
                                   image_ref_check(s) ?: "invalid");
        if (ref->digest)
                return report_fail(rep, -EINVAL, "%s: '%s': a name for an image cannot carry a digest", where, s);
        int r = image_ref_string(ref, &canonical);
        if (r < 0)
                return report_fail(rep, r, "out of memory");
        size_t n = strv_length(*names);
        for (size_t i = 0; i < n; i++)
                if (streq((*names)[i], canonical))
                        return 0;
        char **g = reallocarray(*names, n + 2, sizeof(char *));
        if (!g)
                return report_fail(rep, -ENOMEM, "out of memory");
        *names = g;
        g[n] = TAKE_PTR(canonical);
        g[n + 1] = NULL;
        return 0;
}

static int import_add_result(Import *im, Image *img) {
        Image **g = reallocarray(im->images, im->n_images + 1, sizeof(Image *));
        if (!g) {
                image_free(img);
                return report_fail(im->rep, -ENOMEM, "out of memory");
        }
        im->images = g;
        im->images[im->n_images++] = img;
        return 0;
}

/* Config CONFIG (verified, DIGEST) of an image whose layers come from the opener; SINGLE: the only
 * image of the source (a platform mismatch is an error, not a skip). */
static int import_image(Import *im, const char *manifest_digest, const char *manifest, size_t manifest_size,
                        const char *config_digest, const char *config, size_t config_size, size_t n_layers,
                        char **names, bool single) {
        _cleanup_(oci_config_freep) OciConfig *c = NULL;
        char err[512], p1[128], p2[128];
        int r = oci_config_parse(config, config_size, &c, err, sizeof(err));
        if (r < 0)
                return report_fail(im->rep, r, "'%s': config %s: %s", im->src->path, config_digest, err);
        if (!oci_config_matches(c, &im->platform)) {
                OciPlatform cp = {};
                snprintf(cp.os, sizeof(cp.os), "%s", c->os ?: "?");
                snprintf(cp.architecture, sizeof(cp.architecture), "%s", c->architecture ?: "?");
                snprintf(cp.variant, sizeof(cp.variant), "%s", c->variant ?: "");
                if (!single) {
                        im->skipped++;
                        return 0;
                }
                return report_fail(im->rep, -ENOENT, "'%s': the image is for %s, not %s (see --platform)",
                                   im->src->path, oci_platform_format(&cp, p1, sizeof(p1)),
                                   oci_platform_format(&im->platform, p2, sizeof(p2)));
        }
        ImageParts parts = {
                .manifest = manifest,
                .manifest_size = manifest_size,
                .config = config,
                .config_size = config_size,
                .parsed = c,
                .n_layers = n_layers,
                .names = names,
        };
        snprintf(parts.manifest_digest, sizeof(parts.manifest_digest), "%s", manifest_digest ?: "");
        snprintf(parts.config_digest, sizeof(parts.config_digest), "%s", config_digest);
        LayerOpener opener = { .open = import_open_layer, .close = import_close_layer, .userdata = im };
        Image *img = NULL;
        r = store_image_add(im->store, &parts, &opener, im->o->progress, &img, im->rep);
        if (r < 0)
                return r;
        return import_add_result(im, img);
}

/* An OCI manifest or index descriptor D of the layout's index.json (DEPTH: index nesting). */
static int import_oci_entry(Import *im, const OciDescriptor *d, char **names, bool single, unsigned depth) {
        _cleanup_free_ char *buf = NULL, *config = NULL;
        _cleanup_(oci_document_freep) OciDocument *doc = NULL;
        char err[512], p[128];
        size_t n, cn;

        int r = source_read_blob(im->src, d->digest, d->size, &buf, &n, im->rep);
        if (r < 0)
                return r;
        r = oci_document_parse(buf, n, d->media_type, &doc, err, sizeof(err));
        if (r < 0)
                return report_fail(im->rep, r, "'%s': %s %s: %s", im->src->path, oci_mt_is_index(d->type) ? "index" : "manifest",
                                   d->digest, err);
        if (oci_mt_is_index(doc->type)) {
                if (depth >= OCI_MAX_INDEX_NESTING)
                        return report_fail(im->rep, -E2BIG, "'%s': indexes nested deeper than %d", im->src->path,
                                           OCI_MAX_INDEX_NESTING);
                const OciDescriptor *chosen = NULL;
                if (oci_index_choose(doc, &im->platform, &chosen) < 0) {
                        if (!single) {
                                im->skipped++;
                                return 0;
                        }
                        return report_fail(im->rep, -ENOENT, "'%s': index %s has no image for %s", im->src->path,
                                           d->digest, oci_platform_format(&im->platform, p, sizeof(p)));
                }
                return import_oci_entry(im, chosen, names, single, depth + 1);
        }
        r = source_read_blob(im->src, doc->config.digest, doc->config.size, &config, &cn, im->rep);
        if (r < 0)
                return r;
        im->manifest = doc;
        r = import_image(im, d->digest, buf, n, doc->config.digest, config, cn, doc->n_layers, names, single);
        im->manifest = NULL;
        return r;
}

static int import_oci(Import *im) {
        _cleanup_free_ char *layout = NULL, *index = NULL;
        _cleanup_(oci_document_freep) OciDocument *doc = NULL;
        char err[512], p[128];
        size_t n;

        int r = source_read(im->src, "oci-layout", 64 * 1024, &layout, &n, im->rep);
        if (r < 0)
                return r;
        r = oci_layout_check(layout, n, err, sizeof(err));
        if (r < 0)
                return report_fail(im->rep, r, "'%s': oci-layout: %s", im->src->path, err);
        r = source_read(im->src, "index.json", OCI_MAX_DOCUMENT_SIZE, &index, &n, im->rep);
        if (r < 0)
                return r;
        r = oci_document_parse(index, n, NULL, &doc, err, sizeof(err));
        if (r >= 0 && !oci_mt_is_index(doc->type))
                r = -EBADMSG, snprintf(err, sizeof(err), "not an image index");
        if (r < 0)
                return report_fail(im->rep, r, "'%s': index.json: %s", im->src->path, err);
        if (doc->n_manifests == 0)
                return report_fail(im->rep, -ENOENT, "'%s': index.json lists no image", im->src->path);
        if (im->o->tag && doc->n_manifests > 1)
                return report_fail(im->rep, -EINVAL, "'%s' holds %zu images: --tag names only one", im->src->path,
                                   doc->n_manifests);
        for (size_t i = 0; i < doc->n_manifests; i++) {
                const OciDescriptor *d = &doc->manifests[i];
                _cleanup_(strv_freep) char **names = NULL;
                if (!oci_mt_is_manifest(d->type) && !oci_mt_is_index(d->type))
                        continue;
                /* A descriptor that says its platform spares reading a manifest for another one. */
                if (d->os && d->architecture && (!streq(d->os, im->platform.os) ||
                                                 !streq(d->architecture, im->platform.architecture))) {
                        im->skipped++;
                        continue;
                }
                if (im->o->tag)
                        r = names_add(&names, im->o->tag, im->rep, "--tag");
                else if (d->image_name)
                        r = names_add(&names, d->image_name, im->rep, "annotation io.containerd.image.name");
                else if (d->ref_name && strpbrk(d->ref_name, "/:"))
                        r = names_add(&names, d->ref_name, im->rep, "annotation org.opencontainers.image.ref.name");
                if (r < 0)
                        return r;
                r = import_oci_entry(im, d, names, doc->n_manifests == 1, 0);
                if (r < 0)
                        return r;
        }
        if (im->n_images == 0)
                return report_fail(im->rep, -ENOENT, "'%s' holds no image for %s", im->src->path,
                                   oci_platform_format(&im->platform, p, sizeof(p)));
        return 0;
}

static int import_docker(Import *im) {
        _cleanup_free_ char *text = NULL;
        DockerArchiveImage *list = NULL;
        size_t n, count = 0;
        char err[512], p[128];

        int r = source_read(im->src, "manifest.json", OCI_MAX_DOCUMENT_SIZE, &text, &n, im->rep);
        if (r < 0)
                return r;
        r = docker_archive_manifest_parse(text, n, &list, &count, err, sizeof(err));
        if (r < 0)
                return report_fail(im->rep, r, "'%s': %s", im->src->path, err);
        if (im->o->tag && count > 1)
                r = report_fail(im->rep, -EINVAL, "'%s' holds %zu images: --tag names only one", im->src->path, count);
        for (size_t i = 0; i < count && r >= 0; i++) {
                _cleanup_(strv_freep) char **names = NULL;
                _cleanup_free_ char *config = NULL, *path = NULL;
                char digest[DIGEST_STRING_MAX];
                size_t cn;
                if (im->o->tag)
                        r = names_add(&names, im->o->tag, im->rep, "--tag");
                for (char **t = list[i].repo_tags; r >= 0 && t && *t; t++)
                        r = names_add(&names, *t, im->rep, "manifest.json RepoTags");
                if (r < 0)
                        break;
                if (tar_path_normalize(list[i].config, &path) < 0 || !*path) {
                        r = report_fail(im->rep, -EBADMSG, "'%s': manifest.json names an unsafe config path '%s'",
                                        im->src->path, list[i].config);
                        break;
                }
                r = source_read(im->src, path, OCI_MAX_DOCUMENT_SIZE, &config, &cn, im->rep);
                if (r < 0)
                        break;
                r = sha256_buffer(config, cn, digest);
                if (r < 0)
                        break;
                /* docker names the config by its digest ("<hex>.json" or "blobs/sha256/<hex>"): check it. */
                const char *base = strrchr(path, '/');
                base = base ? base + 1 : path;
                char hex[DIGEST_HEX_LEN + 1];
                snprintf(hex, sizeof(hex), "%s", base);
                if (digest_hex_is_valid(hex) && !streq(hex, digest_hex(digest))) {
                        r = report_fail(im->rep, -EBADMSG, "'%s': config '%s' does not match the digest in its name "
                                        "(it hashes to %s)", im->src->path, path, digest);
                        break;
                }
                im->docker_layers = list[i].layers;
                r = import_image(im, NULL, NULL, 0, digest, config, cn, list[i].n_layers, names, count == 1);
                im->docker_layers = NULL;
        }
        docker_archive_images_free(list, count);
        if (r >= 0 && im->n_images == 0)
                r = report_fail(im->rep, -ENOENT, "'%s' holds no image for %s", im->src->path,
                                oci_platform_format(&im->platform, p, sizeof(p)));
        return r;
}

int image_import(ImageStore *s, const char *path, const ImageImportOptions *o, Image ***ret, size_t *ret_n,
                 ImageReport *rep) {
        Source src = { .path = path, .fd = -EBADF, .member_fd = -EBADF };
        struct stat st;
        int r;

        assert_return(s && path && o, -EINVAL);
        Import im = { .store = s, .src = &src, .o = o, .platform = o->platform, .rep = rep };
        if (!*im.platform.os)
                oci_platform_default(&im.platform);

        src.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (src.fd < 0)
                return report_fail(rep, -errno, "cannot open '%s': %m", path);
        if (fstat(src.fd, &st) < 0) {
                r = report_fail(rep, -errno, "'%s': %m", path);
                goto out;
        }
        if (S_ISDIR(st.st_mode))
                src.is_dir = true;
        else if (!S_ISREG(st.st_mode)) {
                r = report_fail(rep, -EINVAL, "'%s' is neither a directory (OCI image layout) nor a file (archive)",
                                path);
                goto out;
        } else if ((r = archive_scan(&src, rep)) < 0)
                goto out;

        r = store_lock_shared(s);
        if (r < 0) {
                report_fail(rep, r, "image store '%s': cannot lock: %m", s->path);
                goto out;
        }
        if (source_has(&src, "oci-layout") || source_has(&src, "index.json"))
                r = import_oci(&im);
        else if (source_has(&src, "manifest.json"))
                r = import_docker(&im);
        else
                r = report_fail(rep, -EINVAL, "'%s' is not an OCI image layout, an oci-archive or a docker save "
                                "archive (no oci-layout, index.json or manifest.json)%s", path,
                                src.is_dir ? "" : "; a single layer tar goes to sandbox-layer import");
        store_unlock_shared(s);
out:
        source_done(&src);
        if (r < 0) {
                image_list_free(im.images, im.n_images);
                return r;
        }
        if (ret) {
                *ret = im.images;
                *ret_n = im.n_images;
        } else
                image_list_free(im.images, im.n_images);
        return 0;
}
