/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One layer into the store (store_layer_add, see store-internal.h).
 *
 * Two threads: a feeder reads the blob from its source, hashes it (the blob digest), decompresses it
 * with libarchive's raw format (gzip, zstd or none, whatever the stream is), hashes the tar that comes
 * out (the diff_id the image config promises) and writes it into a socket; the caller's thread runs
 * layer/tar.c's tar_extract() on the other end, with its whiteout mapping, its hostile-input checks and
 * its bounds. The feeder reads the blob to its end even after the tar's end-of-archive marker (both
 * digests cover every byte), and stops on a size bound: no more than the descriptor's size of blob,
 * and no more than TAR_MAX_SIZE_DEFAULT plus 1 MiB of tar.
 *
 * The layer is built in STORE/tmp/layer-<pid>-<n>/{root,info.json}, flushed (syncfs) and renamed to
 * STORE/layers/sha256/<hex> only when both digests matched; on any failure the temporary is removed.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "fs.h"
#include "log.h"
#include "ojson.h"
#include "ovl.h"
#include "rmtree.h"
#include "rootattr.h"
#include "store-internal.h"
#include "tar.h"

#define FEED_BUF_SIZE (1U << 20)
/* Bytes after the tar's end that a layer may carry (zero padding to the blocking factor). */
#define FEED_TAIL_SLACK (UINT64_C(1) << 20)

typedef struct Feeder {
        const StoreLayerSource *src;
        int out_fd;
        atomic_bool stop;
        Sha256 *blob_hash, *diff_hash;
        uint64_t blob_bytes, diff_bytes, diff_max;
        char *in_buf, *out_buf;
        bool complete;                  /* the whole blob was read */
        int error;                      /* -errno, 0 */
        char message[512];
} Feeder;

__attribute__((format(printf, 3, 4))) static void feeder_fail(Feeder *f, int r, const char *fmt, ...) {
        if (f->error != 0)
                return;
        f->error = r;
        va_list ap;
        va_start(ap, fmt);
        errbuf_formatv(f->message, sizeof(f->message), r, fmt, ap);
        va_end(ap);
}

/* One read of the blob, hashed and bounded. 0 at its end (then f->complete is set). */
static ssize_t feeder_pull(Feeder *f) {
        ssize_t n;
        do
                n = f->src->read(f->src->userdata, f->in_buf, FEED_BUF_SIZE);
        while (n == -EINTR);
        if (n < 0) {
                feeder_fail(f, (int) n, "%s: read failed: %m", f->src->what);
                return n;
        }
        if (n == 0) {
                f->complete = true;
                return 0;
        }
        f->blob_bytes += (uint64_t) n;
        if (f->src->blob_size != UINT64_MAX && f->blob_bytes > f->src->blob_size) {
                feeder_fail(f, -EFBIG, "%s: longer than the %llu bytes its descriptor says", f->src->what,
                            (unsigned long long) f->src->blob_size);
                return -EFBIG;
        }
        if (sha256_update(f->blob_hash, f->in_buf, (size_t) n) < 0) {
                feeder_fail(f, -EIO, "hashing failed");
                return -EIO;
        }
        return n;
}

static la_ssize_t feeder_read(struct archive *a, void *userdata, const void **ret) {
        Feeder *f = userdata;
        if (atomic_load(&f->stop)) {
                archive_set_error(a, ECANCELED, "cancelled");
                return -1;
        }
        ssize_t n = feeder_pull(f);
        if (n < 0) {
                archive_set_error(a, (int) -n, "read failed");
                return -1;
        }
        *ret = f->in_buf;
        return n;
}

static int send_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Decompress the blob into the socket until its end, an error, or a stop. */
static void feeder_decompress(Feeder *f, struct archive *a) {
        bool out_open = true;

        if (archive_read_support_format_raw(a) != ARCHIVE_OK || archive_read_support_filter_none(a) != ARCHIVE_OK ||
            archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_open(a, f, NULL, feeder_read, NULL) != ARCHIVE_OK) {
                feeder_fail(f, -EBADMSG, "%s: cannot decompress: %s", f->src->what,
                            archive_error_string(a) ?: "unknown format");
                return;
        }
        struct archive_entry *e;
        int k = archive_read_next_header(a, &e);
        if (k == ARCHIVE_EOF)
                return;
        if (k != ARCHIVE_OK && k != ARCHIVE_WARN) {
                feeder_fail(f, -EBADMSG, "%s: cannot decompress: %s", f->src->what,
                            archive_error_string(a) ?: "corrupt stream");
                return;
        }
        for (;;) {
                la_ssize_t n = archive_read_data(a, f->out_buf, FEED_BUF_SIZE);
                if (n == 0)
                        return;
                if (atomic_load(&f->stop))
                        return;
                if (n < 0) {
                        feeder_fail(f, -EBADMSG, "%s: cannot decompress: %s", f->src->what,
                                    archive_error_string(a) ?: "corrupt stream");
                        return;
                }
                f->diff_bytes += (uint64_t) n;
                if (f->diff_bytes > f->diff_max) {
                        feeder_fail(f, -EFBIG, "%s: the uncompressed layer exceeds %llu bytes", f->src->what,
                                    (unsigned long long) f->diff_max);
                        return;
                }
                if (sha256_update(f->diff_hash, f->out_buf, (size_t) n) < 0) {
                        feeder_fail(f, -EIO, "hashing failed");
                        return;
                }
                if (!out_open)
                        continue;
                int r = send_all(f->out_fd, f->out_buf, (size_t) n);
                if (r == -EPIPE || r == -ECONNRESET) {
                        /* The unpacker is done (end of archive, or it failed): keep hashing to the end. */
                        out_open = false;
                        (void) shutdown(f->out_fd, SHUT_WR);
                } else if (r < 0) {
                        feeder_fail(f, r, "internal pipe: %m");
                        return;
                }
        }
}

static void *feeder_run(void *userdata) {
        Feeder *f = userdata;
        struct archive *a = archive_read_new();

        if (!a)
                feeder_fail(f, -ENOMEM, "out of memory");
        else
                feeder_decompress(f, a);
        /* End of stream for the unpacker. */
        (void) shutdown(f->out_fd, SHUT_WR);
        /* Whatever was not read yet belongs to the blob digest too: read it, also after a failure, so that a
         * blob that does not match its digest is reported as such (and not as the error it caused). */
        if (f->src->blob_digest || (f->error == 0 && !atomic_load(&f->stop)))
                while (!f->complete && f->error != -EFBIG && f->error != -EIO && feeder_pull(f) > 0)
                        ;
        if (a)
                archive_read_free(a);
        return NULL;
}

static int info_write(int dir_fd, const char *diff_id, const TarReport *tr) {
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s, s:I, s:I}", "diff_id", diff_id, "size",
                                                       (json_int_t) tr->bytes, "entries", (json_int_t) tr->entries);
        if (!j)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        _cleanup_close_ int fd = openat(dir_fd, "info.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
        if (fd < 0)
                return -errno;
        return write_all(fd, text, strlen(text));
}

int store_layer_add(ImageStore *s, const char *diff_id, const StoreLayerSource *src, Progress *progress,
                    ImageReport *rep) {
        char tmp[64], blob_got[DIGEST_STRING_MAX], diff_got[DIGEST_STRING_MAX];
        int sv[2] = { -EBADF, -EBADF };
        pthread_t thread;
        bool started = false;
        TarReport tr = {};
        _cleanup_close_ int dir_fd = -EBADF, root_fd = -EBADF;
        int r;

        assert_return(s && digest_is_valid(diff_id) && src && src->read, -EINVAL);

        Feeder f = {
                .src = src,
                .out_fd = -EBADF,
                .diff_max = TAR_MAX_SIZE_DEFAULT + FEED_TAIL_SLACK,
        };
        f.in_buf = malloc(FEED_BUF_SIZE);
        f.out_buf = malloc(FEED_BUF_SIZE);
        if (!f.in_buf || !f.out_buf || sha256_new(&f.blob_hash) < 0 || sha256_new(&f.diff_hash) < 0) {
                r = report_fail(rep, -ENOMEM, "out of memory");
                goto out;
        }

        store_tmp_name(s, "layer", tmp, sizeof(tmp));
        if (mkdirat(s->tmp_fd, tmp, 0700) < 0) {
                r = report_fail(rep, -errno, "image store '%s': cannot create 'tmp/%s': %m", s->path, tmp);
                goto out;
        }
        dir_fd = openat(s->tmp_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0 || mkdirat(dir_fd, "root", 0700) < 0 ||
            (root_fd = openat(dir_fd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                r = report_fail(rep, -errno, "image store '%s': cannot create 'tmp/%s/root': %m", s->path, tmp);
                goto fail;
        }

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = report_fail(rep, -errno, "socketpair: %m");
                goto fail;
        }
        f.out_fd = sv[1];
        r = -pthread_create(&thread, NULL, feeder_run, &f);
        if (r < 0) {
                report_fail(rep, r, "cannot start the decompression thread: %m");
                goto fail;
        }
        started = true;

        TarImportOptions o = { .ovl_ns = ovl_default_ns(), .progress = progress };
        r = tar_extract(sv[0], root_fd, &o, &tr);
        /* The feeder sees EPIPE from now on and only hashes the rest of the blob. */
        sv[0] = safe_close(sv[0]);
        if (r < 0)
                atomic_store(&f.stop, true);
        pthread_join(thread, NULL);
        started = false;

        if (sha256_final(f.blob_hash, blob_got) < 0 || sha256_final(f.diff_hash, diff_got) < 0) {
                r = report_fail(rep, -EIO, "hashing failed");
                goto fail;
        }
        /* A blob that is not what its digest says explains any other failure: report that first. */
        if (src->blob_digest && f.complete && !streq(blob_got, src->blob_digest)) {
                r = report_fail(rep, -EBADMSG, "%s does not match its digest: its content hashes to %s", src->what,
                                blob_got);
                goto fail;
        }
        if (f.error != 0) {
                r = report_fail(rep, f.error, "%s", f.message);
                goto fail;
        }
        if (r < 0) {
                report_fail(rep, r, "%s: %s", src->what, tr.error[0] ? tr.error : strerror(-r));
                goto fail;
        }
        if (src->blob_size != UINT64_MAX && f.blob_bytes != src->blob_size) {
                r = report_fail(rep, -EBADMSG, "%s: %llu bytes, its descriptor says %llu", src->what,
                                (unsigned long long) f.blob_bytes, (unsigned long long) src->blob_size);
                goto fail;
        }
        if (src->blob_digest && !streq(blob_got, src->blob_digest)) {
                r = report_fail(rep, -EBADMSG, "%s does not match its digest: its content hashes to %s", src->what,
                                blob_got);
                goto fail;
        }
        if (!streq(diff_got, diff_id)) {
                r = report_fail(rep, -EBADMSG, "%s: the uncompressed layer hashes to %s, but the image config "
                                "says %s", src->what, diff_got, diff_id);
                goto fail;
        }
        /* As every layer tool does (common/rootattr.h): the root of a tree that may hold set-id files and
         * devices is private, recording the mode and owner the tar gave it (which sandbox-unionfs shows).
         * The store is root's and 0700 already; this keeps a layer private wherever it is seen from. */
        {
                RootAttr logical;
                r = rootattr_logical(root_fd, NULL, &logical);
                if (r >= 0)
                        r = rootattr_make_private(root_fd, o.ovl_ns, &logical);
                if (r < 0) {
                        report_fail(rep, r, "image store '%s': cannot make the new layer's root private: %m", s->path);
                        goto fail;
                }
        }
        r = info_write(dir_fd, diff_id, &tr);
        if (r < 0) {
                report_fail(rep, r, "image store '%s': cannot write the layer's info: %m", s->path);
                goto fail;
        }
        if (syncfs(dir_fd) < 0) {
                r = report_fail(rep, -errno, "image store '%s': cannot sync the new layer: %m", s->path);
                goto fail;
        }
        if (renameat2(s->tmp_fd, tmp, s->layers_fd, digest_hex(diff_id), RENAME_NOREPLACE) < 0) {
                if (errno != EEXIST) {
                        r = report_fail(rep, -errno, "image store '%s': cannot rename the new layer into place: %m",
                                        s->path);
                        goto fail;
                }
                /* Someone else's copy is there already (we hold its lock, so it was made before): keep it. */
                goto fail_ok;
        }
        (void) fsync(s->layers_fd);
        if (src->count_fetched)
                rep->bytes_fetched += f.blob_bytes;
        r = 0;
        goto out;

fail_ok:
        r = 0;
fail:
        if (started) {
                atomic_store(&f.stop, true);
                sv[0] = safe_close(sv[0]);
                pthread_join(thread, NULL);
        }
        {
                int k = rm_tree_at(s->tmp_fd, tmp);
                if (k < 0 && k != -ENOENT)
                        log_debug_errno(k, "cannot remove 'tmp/%s': %m", tmp);
        }
out:
        safe_close(sv[0]);
        safe_close(sv[1]);
        sha256_free(f.blob_hash);
        sha256_free(f.diff_hash);
        free(f.in_buf);
        free(f.out_buf);
        return r;
}
