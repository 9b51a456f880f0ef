/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI layer tars <-> overlay layer directories (see tar.h and docs/layers.md).
 *
 * Import: every archive member's path is normalized and checked first (no absolute path, no "..", no
 * over-long name); its parent is then reached one component at a time with O_NOFOLLOW|O_DIRECTORY
 * from the destination's root fd, so a symlink that an earlier member created is never followed.
 * Objects are created with *at() calls on that parent fd; hard-link targets are checked the same way
 * and must be non-directories already extracted. Directory modes and times are applied at the end,
 * deepest first. libarchive is used only to decode the stream, never to write to disk: one reader
 * decompresses, a second parses the tar from what the first hands it through source_read(), which
 * counts every uncompressed byte. The bounds (TarLimits: uncompressed size, entries, directory
 * metadata in memory; and one member's headers) hold by default.
 *
 * Export: a sorted depth-first walk (tree_list) producing pax entries with numeric owners, so the same
 * tree always gives the same bytes.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "errbuf.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "ovl.h"
#include "parse.h"
#include "rmtree.h"
#include "rootattr.h"
#include "tar.h"
#include "tree.h"
#include "xattr.h"

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"
#define COPY_BUF_SIZE (1U << 20)
#define SOURCE_BUF_SIZE (64U * 1024U)
#define IN_SET_XATTR_UNSUPPORTED(r) ((r) == -EPERM || (r) == -EOPNOTSUPP)

static inline void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}
static inline void archive_write_freep(struct archive **a) {
        if (*a)
                archive_write_free(*a);
}
static inline void archive_entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}

/* Record a failure in the report (the first one wins) and return R. FMT may use %m for R. */
__attribute__((format(printf, 3, 4))) static int report_fail(TarReport *rep, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = errbuf_set_firstv(rep ? rep->error : NULL, sizeof(rep->error), r, fmt, ap);
        va_end(ap);
        return r;
}

TarCompress tar_compress_from_string(const char *s) {
        if (streq(s, "none"))
                return TAR_COMPRESS_NONE;
        if (streq(s, "gzip"))
                return TAR_COMPRESS_GZIP;
        if (streq(s, "zstd"))
                return TAR_COMPRESS_ZSTD;
        return _TAR_COMPRESS_INVALID;
}

static bool endswith(const char *s, const char *suffix) {
        size_t l = strlen(s), n = strlen(suffix);
        return l >= n && streq(s + l - n, suffix);
}

TarCompress tar_compress_from_name(const char *name) {
        if (endswith(name, ".gz") || endswith(name, ".tgz"))
                return TAR_COMPRESS_GZIP;
        if (endswith(name, ".zst") || endswith(name, ".zstd"))
                return TAR_COMPRESS_ZSTD;
        return TAR_COMPRESS_NONE;
}

TarLimits tar_limits_resolve(const TarLimits *l) {
        TarLimits r = l ? *l : (TarLimits) {};
        if (r.max_entries == 0)
                r.max_entries = TAR_MAX_ENTRIES_DEFAULT;
        if (r.max_size == 0)
                r.max_size = TAR_MAX_SIZE_DEFAULT;
        if (r.max_meta == 0)
                r.max_meta = r.max_entries > TAR_MAX_META_DEFAULT / TAR_META_PER_ENTRY
                                     ? (r.max_entries > UINT64_MAX / TAR_META_PER_ENTRY
                                                ? UINT64_MAX : r.max_entries * TAR_META_PER_ENTRY)
                                     : TAR_MAX_META_DEFAULT;
        return r;
}

int tar_path_normalize(const char *path, char **ret) {
        assert_return(path && ret, -EINVAL);
        if (path[0] == '/')
                return -EINVAL;
        size_t len = strlen(path);
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        _cleanup_free_ char *out = malloc(len + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return -EINVAL;
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p += n;
                while (*p == '/')
                        p++;
        }
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

TarWhiteout tar_whiteout_decode(const char *name, const char **ret_target) {
        assert_return(name, _TAR_WH_INVALID);
        if (streq(name, WH_OPAQUE))
                return TAR_WH_OPAQUE;
        if (startswith(name, WH_META_PREFIX))
                return TAR_WH_META;
        const char *t = startswith(name, WH_PREFIX);
        if (!t)
                return TAR_WH_NONE;
        if (!filename_is_valid(t))
                return _TAR_WH_INVALID;
        if (ret_target)
                *ret_target = t;
        return TAR_WH_FILE;
}

/* ------------------------------------------------------------------------------------------------ */
/* Import                                                                                          */

typedef struct DirMeta {
        char *path;                     /* normalized, "" for the root */
        mode_t mode;
        struct timespec ts[2];
        size_t depth, index;
} DirMeta;

/* The uncompressed archive on its way from the decompressor (a libarchive reader of the "raw" format
 * with the gzip/zstd filters) to the tar parser (a second reader, fed through source_read()): here
 * every byte is counted before the parser sees it, so the size bound holds wherever the parser is,
 * also inside a member's headers, and a member's headers are bounded as they are read. */
typedef struct Source {
        struct archive *dec;
        TarReport *rep;
        uint64_t max_size;
        uint64_t total;                 /* uncompressed bytes handed to the tar parser */
        bool in_header;                 /* archive_read_next_header() is running */
        int64_t header_start;           /* where the parser was when it began the current header */
        const char *entry;              /* the member whose data is being read, for messages */
        char *buf;                      /* SOURCE_BUF_SIZE */
} Source;

typedef struct Importer {
        struct archive *a;
        int root_fd;
        const char *ns;
        TarLimits limits;
        uint64_t entries;               /* members and implied directories, for limits.max_entries */
        uint64_t meta;                  /* bytes of the directory table, for limits.max_meta */
        Progress *progress;
        TarReport *rep;
        bool root;                      /* euid 0: ownership must be applied */
        char *cache_path;               /* the last parent directory opened, and its fd */
        int cache_fd;
        DirMeta *dirs;
        size_t n_dirs, cap_dirs;
} Importer;

static la_ssize_t source_read(struct archive *a, void *userdata, const void **ret_buf) {
        Source *s = userdata;
        char b1[FORMAT_SIZE_MAX];
        la_ssize_t n;

        n = archive_read_data(s->dec, s->buf, SOURCE_BUF_SIZE);
        if (n < 0) {
                int e = archive_errno(s->dec);
                report_fail(s->rep, e > 0 ? -e : -EIO, "%s%s%s%s: %s", s->entry ? "entry '" : "", s->entry ?: "",
                            s->entry ? "'" : "", s->entry ? "" : "archive",
                            archive_error_string(s->dec) ?: "cannot decompress");
                archive_set_error(a, e > 0 ? e : EIO, "%s", s->rep->error);
                return -1;
        }
        s->total += (uint64_t) n;
        if (s->total > s->max_size) {
                report_fail(s->rep, -EFBIG, "%s%s%sthe archive is larger than %s uncompressed (--max-size)",
                            s->entry ? "entry '" : "", s->entry ?: "", s->entry ? "': " : "",
                            format_size(s->max_size, b1, sizeof b1));
                archive_set_error(a, EFBIG, "%s", s->rep->error);
                return -1;
        }
        /* What the parser asked for since it began this header, beyond one buffer of read-ahead. */
        if (s->in_header && s->header_start >= 0 &&
            s->total - (uint64_t) s->header_start > TAR_MAX_HEADER_SIZE + SOURCE_BUF_SIZE) {
                report_fail(s->rep, -E2BIG, "the headers of the member at offset %" PRIi64 " (pax records, "
                            "long names, sparse map) take more than %s", s->header_start,
                            format_size(TAR_MAX_HEADER_SIZE, b1, sizeof b1));
                archive_set_error(a, E2BIG, "%s", s->rep->error);
                return -1;
        }
        *ret_buf = s->buf;
        return n;
}

/* One more entry (a member, or a directory one implies): within limits.max_entries? */
static int count_entry(Importer *im, const char *path) {
        if (++im->entries <= im->limits.max_entries)
                return 0;
        return report_fail(im->rep, -E2BIG, "entry '%s': the archive has more than %" PRIu64 " entries, counting "
                           "the directories their paths imply (--max-entries)", path, im->limits.max_entries);
}

static void importer_done(Importer *im) {
        free(im->cache_path);
        safe_close(im->cache_fd);
        for (size_t i = 0; i < im->n_dirs; i++)
                free(im->dirs[i].path);
        free(im->dirs);
}

/* Remember a directory's mode and times for the end. Its memory (the table's growth and the path) is
 * counted against limits.max_meta. Fails with the message set. */
static int dir_meta_add(Importer *im, const char *path, mode_t mode, const struct timespec ts[2]) {
        size_t plen = strlen(path) + 1;
        size_t ncap = im->n_dirs == im->cap_dirs ? (im->cap_dirs ? im->cap_dirs * 2 : 64) : im->cap_dirs;
        uint64_t need = im->meta + plen + (uint64_t) (ncap - im->cap_dirs) * sizeof(DirMeta);
        char b1[FORMAT_SIZE_MAX];

        if (need > im->limits.max_meta)
                return report_fail(im->rep, -E2BIG, "entry '%s': the modes and times of the archive's %zu "
                                   "directories take more than %s of memory (%" PRIu64 " bytes per allowed entry, "
                                   "--max-entries)", path, im->n_dirs,
                                   format_size(im->limits.max_meta, b1, sizeof b1), TAR_META_PER_ENTRY);
        if (ncap != im->cap_dirs) {
                DirMeta *d = reallocarray(im->dirs, ncap, sizeof(*d));
                if (!d)
                        return report_fail(im->rep, -ENOMEM, "out of memory");
                im->dirs = d;
                im->cap_dirs = ncap;
        }
        char *p = strdup(path);
        if (!p)
                return report_fail(im->rep, -ENOMEM, "out of memory");
        im->meta = need;
        size_t depth = *path ? 1 : 0;
        for (const char *s = path; *s; s++)
                depth += *s == '/';
        im->dirs[im->n_dirs] = (DirMeta) { .path = p, .mode = mode, .ts = { ts[0], ts[1] },
                                           .depth = depth, .index = im->n_dirs };
        im->n_dirs++;
        return 0;
}

static const struct timespec omit_times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

/* The directory PATH (normalized, "" = root) beneath the root, reached component by component without
 * following symlinks; missing components are created (mode 0755, like docker) when CREATE. The fd is
 * borrowed from the one-entry cache: do not close it. ENTRY names the member for messages. */
static int open_dir_path(Importer *im, const char *path, const char *entry) {
        if (im->cache_path && streq(im->cache_path, path))
                return im->cache_fd;

        _cleanup_close_ int fd = fcntl(im->root_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return report_fail(im->rep, -errno, "entry '%s': %m", entry);
        _cleanup_free_ char *built = strdup("");
        _cleanup_free_ char *copy = strdup(path);
        if (!built || !copy)
                return report_fail(im->rep, -ENOMEM, "out of memory");
        char *save = NULL;
        size_t blen = 0;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                /* Keep the prefix walked so far for messages and for the metadata record. */
                char *nb = realloc(built, blen + strlen(c) + 2);
                if (!nb)
                        return report_fail(im->rep, -ENOMEM, "out of memory");
                built = nb;
                blen += (size_t) sprintf(built + blen, "%s%s", blen ? "/" : "", c);

                int nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0 && errno == ENOENT) {
                        /* Implied: 0755 at once (nothing to remember for the end), and an entry of its
                         * own for the bound, or one long path could make thousands of them. */
                        int r = count_entry(im, built);
                        if (r < 0)
                                return r;
                        if (mkdirat(fd, c, 0700) < 0)
                                return report_fail(im->rep, -errno, "entry '%s': cannot create directory '%s': %m",
                                                   entry, built);
                        nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (nfd >= 0 && fchmod(nfd, 0755) < 0) {
                                r = -errno;
                                safe_close(nfd);
                                return report_fail(im->rep, r, "entry '%s': cannot set the mode of '%s': %m", entry,
                                                   built);
                        }
                }
                if (nfd < 0) {
                        if (errno == ELOOP || errno == ENOTDIR)
                                return report_fail(im->rep, -errno,
                                                   "entry '%s': refusing to write through '%s', which is a "
                                                   "symlink or not a directory", entry, built);
                        return report_fail(im->rep, -errno, "entry '%s': cannot open directory '%s': %m", entry,
                                           built);
                }
                safe_close(fd);
                fd = nfd;
        }
        free(im->cache_path);
        im->cache_path = TAKE_PTR(copy);
        strcpy(im->cache_path, path); /* strtok_r cut it up; same length */
        safe_close(im->cache_fd);
        im->cache_fd = TAKE_FD(fd);
        return im->cache_fd;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2]) {
        ts[1] = (struct timespec) { .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) };
        if (archive_entry_atime_is_set(e))
                ts[0] = (struct timespec) { .tv_sec = archive_entry_atime(e),
                                            .tv_nsec = archive_entry_atime_nsec(e) };
        else
                ts[0] = ts[1];
        for (int i = 0; i < 2; i++)
                if (ts[i].tv_nsec < 0 || ts[i].tv_nsec >= 1000000000L)
                        ts[i].tv_nsec = 0;
}

static int entry_owner(Importer *im, struct archive_entry *e, const char *path, uid_t *ret_uid, gid_t *ret_gid) {
        int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
        if (uid < 0 || uid >= (int64_t) UINT32_MAX || gid < 0 || gid >= (int64_t) UINT32_MAX)
                return report_fail(im->rep, -EINVAL, "entry '%s': invalid owner %lld:%lld", path,
                                   (long long) uid, (long long) gid);
        *ret_uid = (uid_t) uid;
        *ret_gid = (gid_t) gid;
        return 0;
}

/* Ownership of NAME in DIRFD (or of FD when NAME is NULL). Unprivileged imports keep their own. */
static int apply_owner(Importer *im, int fd, int dirfd, const char *name, struct archive_entry *e,
                       const char *path) {
        uid_t uid = 0;
        gid_t gid = 0;
        int r = entry_owner(im, e, path, &uid, &gid);
        if (r < 0)
                return r;
        r = name ? fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) : fchown(fd, uid, gid);
        if (r < 0 && !(errno == EPERM && !im->root))
                return report_fail(im->rep, -errno, "entry '%s': cannot set owner %u:%u: %m", path, uid, gid);
        return 0;
}

static int apply_xattrs(Importer *im, int path_fd, struct archive_entry *e, const char *path) {
        const char *name;
        const void *value;
        size_t size;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!name || !*name)
                        continue;
                if (ovl_xattr_is_marker(name, NULL)) {
                        log_warning("entry '%s': dropping xattr '%s': an archive cannot set overlay layer "
                                    "structure (use .wh. entries)", path, name);
                        im->rep->dropped++;
                        continue;
                }
                if (size > XATTR_SIZE_MAX)
                        return report_fail(im->rep, -E2BIG, "entry '%s': xattr '%s' is too large", path, name);
                int r = xattr_set(path_fd, name, value, size, 0);
                if (IN_SET_XATTR_UNSUPPORTED(r)) {
                        /* Not settable here (user.* on a symlink, trusted.* unprivileged, a file system
                         * without xattrs): like tar, keep the file and say what was lost. */
                        log_warning("entry '%s': cannot set xattr '%s', dropped: %s", path, name, strerror(-r));
                        im->rep->dropped++;
                        continue;
                }
                if (r < 0)
                        return report_fail(im->rep, r, "entry '%s': cannot set xattr '%s': %m", path, name);
        }
        return 0;
}

/* Owner, mode, xattrs and times of a non-directory, non-regular object NAME in DIRFD, in that order
 * (chown clears set-id bits and file capabilities). */
static int apply_meta_at(Importer *im, int dirfd, const char *name, struct archive_entry *e, const char *path,
                         bool is_symlink) {
        int r = apply_owner(im, -EBADF, dirfd, name, e, path);
        if (r < 0)
                return r;
        if (!is_symlink && fchmodat(dirfd, name, archive_entry_perm(e) & 07777, 0) < 0)
                return report_fail(im->rep, -errno, "entry '%s': cannot set mode: %m", path);
        _cleanup_close_ int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0)
                return report_fail(im->rep, -errno, "entry '%s': %m", path);
        r = apply_xattrs(im, pfd, e, path);
        if (r < 0)
                return r;
        struct timespec ts[2];
        entry_times(e, ts);
        if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return report_fail(im->rep, -errno, "entry '%s': cannot set times: %m", path);
        return 0;
}

static int archive_fail(Importer *im, const char *path) {
        int e = archive_errno(im->a);
        const char *s = archive_error_string(im->a);
        return report_fail(im->rep, e > 0 ? -e : -EIO, "%s%s%s%s: %s", path ? "entry '" : "", path ?: "",
                           path ? "'" : "", path ? "" : "archive", s ?: "unknown archive error");
}

static int copy_data(Importer *im, int fd, struct archive_entry *e, const char *path, int64_t size) {
        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t off;
                int r = archive_read_data_block(im->a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return archive_fail(im, path);
                if (off < 0 || (uint64_t) off + len > (uint64_t) size)
                        return report_fail(im->rep, -EBADMSG, "entry '%s': data beyond its declared size", path);
                const char *p = buf;
                while (len > 0) {
                        ssize_t n = pwrite(fd, p, len, off);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return report_fail(im->rep, -errno, "entry '%s': write failed: %m", path);
                        }
                        p += n;
                        off += n;
                        len -= (size_t) n;
                        im->rep->bytes += (uint64_t) n;
                        if (im->progress)
                                progress_add(im->progress, (uint64_t) n, 0);
                }
        }
        /* Holes at the end (sparse members) and the declared size. */
        if (ftruncate(fd, size) < 0)
                return report_fail(im->rep, -errno, "entry '%s': %m", path);
        return 0;
}

/* Make NAME in PFD free for a new object of type TYPE. Returns 1 when NAME is a directory that the new
 * directory entry merges into, 0 when the name is free. */
static int make_room(Importer *im, int pfd, const char *name, mode_t type, const char *path) {
        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return report_fail(im->rep, -errno, "entry '%s': %m", path);
        }
        if (S_ISDIR(st.st_mode) && type == AE_IFDIR)
                return 1;
        int r = rm_tree_at(pfd, name);
        if (r < 0)
                return report_fail(im->rep, r, "entry '%s': cannot replace the earlier entry: %m", path);
        return 0;
}

static int import_hardlink(Importer *im, int pfd, const char *name, const char *path, const char *target) {
        _cleanup_free_ char *t = NULL;
        int r = tar_path_normalize(target, &t);
        if (r < 0 || !*t)
                return report_fail(im->rep, r < 0 ? r : -EINVAL,
                                   "entry '%s': unsafe hard link target '%s' (absolute, '..', the root or too long)",
                                   path, target);
        if (streq(t, path)) /* A link to itself: the object is already there, as tar sees it. */
                return 0;
        const char *tname = strrchr(t, '/');
        _cleanup_close_ int tpfd = -EBADF;
        if (tname) {
                t[tname - t] = '\0';
                tpfd = open_beneath(im->root_fd, t, O_PATH | O_DIRECTORY, 0);
                t[tname - t] = '/';
                tname++;
        } else {
                tpfd = fcntl(im->root_fd, F_DUPFD_CLOEXEC, 3);
                tname = t;
        }
        if (tpfd < 0)
                return report_fail(im->rep, tpfd == -ELOOP || tpfd == -ENOTDIR || tpfd == -EXDEV ? -ELOOP : tpfd,
                                   "entry '%s': hard link target '%s' is not beneath an extracted directory "
                                   "(symlink in its path, or missing): %s", path, t, strerror(-tpfd));
        struct stat st;
        if (fstatat(tpfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return report_fail(im->rep, -errno, "entry '%s': hard link target '%s' was not extracted before it: %m",
                                   path, t);
        if (S_ISDIR(st.st_mode) || ovl_is_whiteout(&st))
                return report_fail(im->rep, -EPERM, "entry '%s': hard link target '%s' is a %s", path, t,
                                   S_ISDIR(st.st_mode) ? "directory" : "whiteout");
        r = make_room(im, pfd, name, AE_IFREG, path);
        if (r < 0)
                return r;
        if (linkat(tpfd, tname, pfd, name, 0) < 0)
                return report_fail(im->rep, -errno, "entry '%s': cannot link to '%s': %m", path, t);
        return 0;
}

/* Sizes, from the header, before any data is read: no file larger than the bound, and (for data stored
 * whole, not as a sparse map) nothing that would take the archive past it, whether we write the data
 * or skip it. Data stored as a sparse map is bounded as it is read (source_read). */
static int check_sizes(Importer *im, struct archive_entry *e, const char *path) {
        int64_t size, pos;
        char b1[FORMAT_SIZE_MAX];

        if (!archive_entry_size_is_set(e))
                return 0;
        size = archive_entry_size(e);
        pos = archive_read_header_position(im->a);
        if (size < 0 || (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e) &&
                         (uint64_t) size > im->limits.max_size))
                return report_fail(im->rep, -EFBIG, "entry '%s': declared size %lld exceeds the limit of %s "
                                   "(--max-size)", path, (long long) size,
                                   format_size(im->limits.max_size, b1, sizeof b1));
        if (archive_entry_sparse_count(e) == 0 && pos >= 0 &&
            (uint64_t) size > im->limits.max_size - MIN((uint64_t) pos, im->limits.max_size))
                return report_fail(im->rep, -EFBIG, "entry '%s': its %lld bytes at offset %lld would make the "
                                   "archive larger than %s uncompressed (--max-size)", path, (long long) size,
                                   (long long) pos, format_size(im->limits.max_size, b1, sizeof b1));
        return 0;
}

static int import_entry(Importer *im, struct archive_entry *e) {
        const char *raw = archive_entry_pathname(e);
        if (!raw)
                return report_fail(im->rep, -EBADMSG, "archive member without a (readable) path name");
        _cleanup_free_ char *path = NULL;
        int r = tar_path_normalize(raw, &path);
        if (r == -ENAMETOOLONG)
                return report_fail(im->rep, r, "entry '%.200s...': name too long (a component over %d bytes or the "
                                   "path over %d)", raw, NAME_MAX, PATH_MAX - 1);
        if (r < 0)
                return report_fail(im->rep, r, "entry '%s': unsafe path (%s)", raw,
                                   raw[0] == '/' ? "absolute" : "a '..' component");
        r = check_sizes(im, e, *path ? path : raw);
        if (r < 0)
                return r;

        mode_t type = archive_entry_filetype(e);
        const char *hardlink = archive_entry_hardlink(e);
        struct timespec ts[2];
        entry_times(e, ts);

        if (!*path) {
                /* "./": the layer root itself. */
                if (hardlink || type != AE_IFDIR)
                        return report_fail(im->rep, -EINVAL, "entry '%s': the layer root must be a directory", raw);
                r = apply_owner(im, im->root_fd, -EBADF, NULL, e, raw);
                if (r >= 0)
                        r = apply_xattrs(im, im->root_fd, e, raw);
                if (r >= 0)
                        r = dir_meta_add(im, "", archive_entry_perm(e) & 07777, ts);
                return r;
        }

        char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        _cleanup_free_ char *parent = strndup(path, slash ? (size_t) (slash - path) : 0);
        if (!parent)
                return report_fail(im->rep, -ENOMEM, "out of memory");

        const char *target = NULL;
        TarWhiteout wh = tar_whiteout_decode(name, &target);
        if (wh < 0)
                return report_fail(im->rep, -EINVAL, "entry '%s': invalid whiteout name", path);
        if (wh == TAR_WH_META) {
                log_debug("entry '%s': AUFS metadata, skipped", path);
                return 0;
        }
        if (wh != TAR_WH_NONE && (hardlink || type == AE_IFDIR))
                return report_fail(im->rep, -EINVAL, "entry '%s': a whiteout marker must be a plain file", path);

        int pfd = open_dir_path(im, parent, path);
        if (pfd < 0)
                return pfd;

        if (wh == TAR_WH_OPAQUE) {
                r = ovl_dir_set_opaque(pfd, im->ns);
                if (r < 0)
                        return report_fail(im->rep, r, "entry '%s': cannot mark '%s' opaque: %m", path,
                                           *parent ? parent : ".");
                return 0;
        }
        if (wh == TAR_WH_FILE) {
                r = make_room(im, pfd, target, AE_IFCHR, path);
                if (r < 0)
                        return r;
                r = ovl_make_whiteout(pfd, target);
                if (r < 0)
                        return report_fail(im->rep, r, "entry '%s': cannot create whiteout: %m", path);
                return apply_meta_at(im, pfd, target, e, path, false);
        }

        if (hardlink)
                return import_hardlink(im, pfd, name, path, hardlink);

        if (type == AE_IFSOCK) {
                log_warning("entry '%s': sockets cannot be unpacked, skipped", path);
                im->rep->dropped++;
                return 0;
        }
        if (type == AE_IFCHR && archive_entry_rdevmajor(e) == 0 && archive_entry_rdevminor(e) == 0) {
                log_warning("entry '%s': a character device 0/0 would be a whiteout (use a .wh. entry), skipped",
                            path);
                im->rep->dropped++;
                return 0;
        }

        r = make_room(im, pfd, name, type, path);
        if (r < 0)
                return r;
        bool merge = r > 0;

        switch (type) {
        case AE_IFREG: {
                _cleanup_close_ int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return report_fail(im->rep, -errno, "entry '%s': cannot create: %m", path);
                r = copy_data(im, fd, e, path, archive_entry_size_is_set(e) ? archive_entry_size(e) : 0);
                if (r < 0)
                        return r;
                r = apply_owner(im, fd, -EBADF, NULL, e, path);
                if (r < 0)
                        return r;
                if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
                        return report_fail(im->rep, -errno, "entry '%s': cannot set mode: %m", path);
                r = apply_xattrs(im, fd, e, path);
                if (r < 0)
                        return r;
                if (futimens(fd, ts) < 0)
                        return report_fail(im->rep, -errno, "entry '%s': cannot set times: %m", path);
                return 0;
        }
        case AE_IFDIR: {
                if (!merge && mkdirat(pfd, name, 0700) < 0)
                        return report_fail(im->rep, -errno, "entry '%s': cannot create directory: %m", path);
                _cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return report_fail(im->rep, -errno, "entry '%s': %m", path);
                r = apply_owner(im, fd, -EBADF, NULL, e, path);
                if (r < 0)
                        return r;
                r = apply_xattrs(im, fd, e, path);
                if (r < 0)
                        return r;
                /* Mode and times last: writing children changes the mtime, and a read-only mode would
                 * stop an unprivileged import from creating them. */
                return dir_meta_add(im, path, archive_entry_perm(e) & 07777, ts);
        }
        case AE_IFLNK: {
                const char *t = archive_entry_symlink(e);
                if (!t || !*t || strlen(t) >= PATH_MAX)
                        return report_fail(im->rep, -EINVAL, "entry '%s': symlink with an empty or over-long target",
                                           path);
                if (symlinkat(t, pfd, name) < 0)
                        return report_fail(im->rep, -errno, "entry '%s': cannot create symlink: %m", path);
                return apply_meta_at(im, pfd, name, e, path, true);
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
                dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
                if (mknodat(pfd, name, type | 0600, dev) < 0)
                        return report_fail(im->rep, -errno, "entry '%s': cannot create %s: %m", path,
                                           type == AE_IFIFO ? "fifo" : "device node");
                return apply_meta_at(im, pfd, name, e, path, false);
        }
        default:
                return report_fail(im->rep, -EBADMSG, "entry '%s': unsupported file type 0%o", path, (unsigned) type);
        }
}

static int dir_meta_cmp(const void *a, const void *b) {
        const DirMeta *x = a, *y = b;
        if (x->depth != y->depth)
                return x->depth > y->depth ? -1 : 1; /* deepest first */
        return x->index < y->index ? -1 : x->index > y->index;
}

static int apply_dir_meta(Importer *im) {
        if (im->n_dirs > 1)
                qsort(im->dirs, im->n_dirs, sizeof(im->dirs[0]), dir_meta_cmp);
        for (size_t i = 0; i < im->n_dirs; i++) {
                DirMeta *d = &im->dirs[i];
                _cleanup_close_ int fd = open_beneath(im->root_fd, *d->path ? d->path : ".",
                                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
                if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
                        continue; /* replaced by a later entry */
                if (fd < 0)
                        return report_fail(im->rep, fd, "directory '%s': %m", *d->path ? d->path : ".");
                if (fchmod(fd, d->mode) < 0 || futimens(fd, d->ts) < 0)
                        return report_fail(im->rep, -errno, "directory '%s': cannot set mode or times: %m",
                                           *d->path ? d->path : ".");
        }
        return 0;
}

int tar_extract(int archive_fd, int dest_fd, const TarImportOptions *opts, TarReport *report) {
        assert_return(archive_fd >= 0 && dest_fd >= 0 && opts && report, -EINVAL);
        _cleanup_(archive_read_freep) struct archive *dec = archive_read_new();
        _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
        _cleanup_free_ char *buf = malloc(SOURCE_BUF_SIZE);
        struct archive_entry *raw;
        int r;

        if (!dec || !a || !buf)
                return report_fail(report, -ENOMEM, "out of memory");
        if (archive_read_support_format_raw(dec) != ARCHIVE_OK || archive_read_support_filter_none(dec) != ARCHIVE_OK ||
            archive_read_support_filter_gzip(dec) != ARCHIVE_OK || archive_read_support_filter_zstd(dec) != ARCHIVE_OK)
                return report_fail(report, -EOPNOTSUPP, "libarchive: %s", archive_error_string(dec));
        if (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_support_filter_none(a) != ARCHIVE_OK)
                return report_fail(report, -EOPNOTSUPP, "libarchive: %s", archive_error_string(a));

        Source src = {
                .dec = dec,
                .rep = report,
                .header_start = -1,
                .buf = buf,
        };
        Importer im = {
                .a = a,
                .root_fd = dest_fd,
                .ns = opts->ovl_ns ?: ovl_default_ns(),
                .limits = tar_limits_resolve(&opts->limits),
                .progress = opts->progress,
                .rep = report,
                .root = geteuid() == 0,
                .cache_fd = -EBADF,
        };
        src.max_size = im.limits.max_size;
        /* The root is 0755 unless the archive has a "./" entry (created 0700 by the caller). */
        r = dir_meta_add(&im, "", 0755, omit_times);
        if (r < 0) {
                importer_done(&im);
                return r;
        }

        /* The decompressor: one "raw" entry, the whole uncompressed stream; then the tar parser on it. */
        if (archive_read_open_fd(dec, archive_fd, SOURCE_BUF_SIZE) != ARCHIVE_OK ||
            (r = archive_read_next_header(dec, &raw)) < ARCHIVE_WARN || r == ARCHIVE_RETRY) {
                int e = archive_errno(dec);
                importer_done(&im);
                return report_fail(report, e > 0 ? -e : -EIO, "archive: %s",
                                   archive_error_string(dec) ?: "cannot read");
        }
        if (r == ARCHIVE_EOF || archive_read_open(a, &src, NULL, source_read, NULL) != ARCHIVE_OK) {
                r = r == ARCHIVE_EOF ? report_fail(report, -EBADMSG, "archive: empty") : archive_fail(&im, NULL);
                importer_done(&im);
                return r;
        }
        for (bool first = true;; first = false) {
                struct archive_entry *e;
                /* The rest of the last member's data first (skipped, but decompressed and counted), so
                 * that what the header phase reads is headers only. */
                if (!first && archive_read_data_skip(a) < ARCHIVE_WARN) {
                        r = archive_fail(&im, NULL);
                        break;
                }
                src.header_start = archive_filter_bytes(a, 0);
                src.in_header = true;
                src.entry = NULL;
                r = archive_read_next_header(a, &e);
                src.in_header = false;
                if (r == ARCHIVE_EOF) {
                        r = 0;
                        break;
                }
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN) { /* also RETRY: a damaged header */
                        r = archive_fail(&im, NULL);
                        break;
                }
                if (r == ARCHIVE_WARN)
                        log_debug("archive: %s", archive_error_string(a));
                src.entry = archive_entry_pathname(e);
                r = count_entry(&im, archive_entry_pathname(e) ?: "?");
                if (r < 0)
                        break;
                r = import_entry(&im, e);
                if (r < 0)
                        break;
                report->entries++;
                if (im.progress)
                        progress_add(im.progress, 0, 1);
        }
        if (r >= 0)
                r = apply_dir_meta(&im);
        importer_done(&im);
        return r;
}

int tar_import(int archive_fd, int parent_fd, const char *dest_name, const TarImportOptions *opts,
               TarReport *report) {
        assert_return(dest_name && opts && report, -EINVAL);
        if (!filename_is_valid(dest_name))
                return report_fail(report, -EINVAL, "invalid destination name '%s'", dest_name);
        struct stat st;
        if (fstatat(parent_fd, dest_name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return report_fail(report, -EEXIST, "destination '%s' already exists", dest_name);
        if (errno != ENOENT)
                return report_fail(report, -errno, "destination '%s': %m", dest_name);

        char tmp[NAME_MAX + 64];
        if ((size_t) snprintf(tmp, sizeof(tmp), ".%s.import-%d", dest_name, (int) getpid()) >= sizeof(tmp))
                return report_fail(report, -ENAMETOOLONG, "destination name '%s' is too long", dest_name);
        if (strlen(tmp) > NAME_MAX)
                snprintf(tmp, sizeof(tmp), ".import-%d", (int) getpid());
        /* The layer is built as "layer" inside a 0700 directory of ours: the archive may give the
         * layer's root and directories any owner and mode, but nobody else can reach into the tree
         * until it is renamed out, so nothing can move things around under our feet (the removal
         * after a failure relies on this). */
        if (mkdirat(parent_fd, tmp, 0700) < 0)
                return report_fail(report, -errno, "cannot create temporary directory '%s': %m", tmp);
        _cleanup_close_ int wfd = openat(parent_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int fd = -EBADF;
        int r = wfd < 0 ? report_fail(report, -errno, "'%s': %m", tmp) : 0;
        if (r >= 0 && mkdirat(wfd, "layer", 0700) < 0)
                r = report_fail(report, -errno, "'%s/layer': %m", tmp);
        if (r >= 0 && (fd = openat(wfd, "layer", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                r = report_fail(report, -errno, "'%s/layer': %m", tmp);
        if (r >= 0)
                r = tar_extract(archive_fd, fd, opts, report);
        if (r >= 0) {
                /* An archive may hold set-id files and devices: the layer's root is private
                 * (common/rootattr.h), recording the mode and owner the archive gave it. */
                RootAttr logical;
                r = rootattr_logical(fd, NULL, &logical);
                if (r >= 0)
                        r = rootattr_make_private(fd, opts->ovl_ns ?: ovl_default_ns(), &logical);
                if (r < 0)
                        r = report_fail(report, r, "cannot make the new layer's root private: %m");
        }
        if (r >= 0 && syncfs(fd) < 0)
                r = report_fail(report, -errno, "cannot sync the new layer: %m");
        if (r >= 0 && renameat2(wfd, "layer", parent_fd, dest_name, RENAME_NOREPLACE) < 0)
                r = report_fail(report, -errno, "cannot rename the new layer into place: %m");
        if (r >= 0) {
                (void) unlinkat(parent_fd, tmp, AT_REMOVEDIR);
                (void) fsync(parent_fd);
                return 0;
        }
        if (wfd >= 0) {
                int k = rm_tree_children(wfd);
                if (k < 0)
                        log_warning_errno(k, "Failed to remove temporary directory '%s', ignoring: %m", tmp);
        }
        (void) unlinkat(parent_fd, tmp, AT_REMOVEDIR);
        return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* Export                                                                                          */

typedef struct LinkSeen {
        dev_t dev;
        ino_t ino;
        char *path;
} LinkSeen;

typedef struct Exporter {
        struct archive *a;
        struct archive_entry *e;
        Progress *progress;
        TarReport *rep;
        LinkSeen *links;
        size_t n_links, cap_links;
        char *buf;
} Exporter;

static int write_fail(Exporter *ex, const char *path) {
        int e = archive_errno(ex->a);
        const char *s = archive_error_string(ex->a);
        return report_fail(ex->rep, e > 0 ? -e : -EIO, "'%s': %s", path, s ?: "archive write error");
}

static void entry_base(struct archive_entry *e, const char *path, const struct stat *st) {
        archive_entry_clear(e);
        archive_entry_copy_pathname(e, path);
        archive_entry_set_mode(e, st->st_mode);
        archive_entry_set_uid(e, st->st_uid);
        archive_entry_set_gid(e, st->st_gid);
        archive_entry_set_mtime(e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static int xattr_name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Non-marker xattrs of PATH_FD, sorted by name so the output does not depend on the file system. */
static int add_xattrs(Exporter *ex, int path_fd, const char *path) {
        _cleanup_free_ char *list = NULL;
        size_t size;
        int r = xattr_list_malloc(path_fd, &list, &size);
        if (r == -EOPNOTSUPP)
                return 0;
        if (r < 0)
                return report_fail(ex->rep, r, "'%s': cannot list xattrs: %m", path);
        size_t n = 0;
        for (size_t i = 0; i < size; i += strlen(list + i) + 1)
                n++;
        if (n == 0)
                return 0;
        _cleanup_free_ char **names = calloc(n, sizeof(char *));
        if (!names)
                return report_fail(ex->rep, -ENOMEM, "out of memory");
        n = 0;
        for (size_t i = 0; i < size; i += strlen(list + i) + 1)
                names[n++] = list + i;
        qsort(names, n, sizeof(char *), xattr_name_cmp);
        for (size_t i = 0; i < n; i++) {
                if (!*names[i] || ovl_xattr_is_marker(names[i], NULL))
                        continue;
                _cleanup_free_ char *v = NULL;
                size_t vs;
                r = xattr_get_malloc(path_fd, names[i], &v, &vs);
                if (r == -ENODATA)
                        continue;
                if (r < 0)
                        return report_fail(ex->rep, r, "'%s': cannot read xattr '%s': %m", path, names[i]);
                archive_entry_xattr_add_entry(ex->e, names[i], v, vs);
        }
        return 0;
}

static int emit_marker(Exporter *ex, const char *path, const struct stat *st, mode_t perm) {
        archive_entry_clear(ex->e);
        archive_entry_copy_pathname(ex->e, path);
        archive_entry_set_mode(ex->e, S_IFREG | perm);
        archive_entry_set_uid(ex->e, st->st_uid);
        archive_entry_set_gid(ex->e, st->st_gid);
        archive_entry_set_mtime(ex->e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        archive_entry_set_size(ex->e, 0);
        if (archive_write_header(ex->a, ex->e) < ARCHIVE_WARN)
                return write_fail(ex, path);
        ex->rep->entries++;
        return 0;
}

/* Describe the holes of the regular file FD (if any) as a sparse map: libarchive then stores only the
 * data regions (GNU sparse 1.0 in pax) and drops the zeros we feed it for the holes. */
static int add_sparse_map(Exporter *ex, int fd, const char *path, const struct stat *st) {
        if (st->st_size == 0 || (uint64_t) st->st_blocks * 512 >= (uint64_t) st->st_size)
                return 0; /* no room for a hole */
        off_t pos = 0;
        bool any = false;
        while (pos < st->st_size) {
                off_t data = lseek(fd, pos, SEEK_DATA);
                if (data < 0 && errno == ENXIO)
                        break;
                if (data < 0)
                        return errno == EINVAL ? 0 : report_fail(ex->rep, -errno, "'%s': %m", path);
                off_t hole = lseek(fd, data, SEEK_HOLE);
                if (hole < 0)
                        return report_fail(ex->rep, -errno, "'%s': %m", path);
                hole = MIN(hole, st->st_size);
                if (data == 0 && hole == st->st_size && !any)
                        break; /* all data */
                archive_entry_sparse_add_entry(ex->e, data, hole - data);
                any = true;
                pos = hole;
        }
        if (!any && pos == 0 && lseek(fd, 0, SEEK_DATA) >= 0)
                return 0;
        /* A file that is all hole, or ends in one: a last empty region marks the size. */
        if (pos < st->st_size)
                archive_entry_sparse_add_entry(ex->e, st->st_size, 0);
        if (lseek(fd, 0, SEEK_SET) < 0)
                return report_fail(ex->rep, -errno, "'%s': %m", path);
        return 0;
}

static int copy_file(Exporter *ex, int fd, const char *path, const struct stat *st) {
        uint64_t left = (uint64_t) st->st_size;
        while (left > 0) {
                ssize_t n = read(fd, ex->buf, MIN(left, (uint64_t) COPY_BUF_SIZE));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return report_fail(ex->rep, -errno, "'%s': read failed: %m", path);
                }
                if (n == 0)
                        return report_fail(ex->rep, -EBUSY, "'%s': shrank while being exported", path);
                if (archive_write_data(ex->a, ex->buf, (size_t) n) < 0)
                        return write_fail(ex, path);
                left -= (uint64_t) n;
                ex->rep->bytes += (uint64_t) n;
                if (ex->progress)
                        progress_add(ex->progress, (uint64_t) n, 0);
        }
        return 0;
}

static int check_redirect(Exporter *ex, int fd, const char *path) {
        static const char *const names[] = { OVL_NS_TRUSTED "overlay.redirect", OVL_NS_USER "overlay.redirect" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char v[1];
                ssize_t n = xattr_get(fd, names[i], v, 0);
                if (n >= 0 || n == -ERANGE)
                        return report_fail(ex->rep, -EXDEV,
                                           "'%s': a renamed directory (overlay redirect) has no OCI tar form; "
                                           "flatten the stack first with 'sandbox-layer squash'", path);
        }
        return 0;
}

static int export_tree(Exporter *ex, int dirfd, const char *prefix) {
        TreeList l = {};
        int r = tree_list(dirfd, &l);
        if (r < 0)
                return report_fail(ex->rep, r, "'%s': cannot list: %m", *prefix ? prefix : ".");
        for (size_t i = 0; i < l.n && r >= 0; i++) {
                const char *name = l.entries[i].name;
                const struct stat *st = &l.entries[i].st;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s", prefix, name) < 0) {
                        r = report_fail(ex->rep, -ENOMEM, "out of memory");
                        break;
                }
                if (ovl_is_whiteout(st)) {
                        _cleanup_free_ char *wh = NULL;
                        if (asprintf(&wh, "%s" WH_PREFIX "%s", prefix, name) < 0)
                                r = report_fail(ex->rep, -ENOMEM, "out of memory");
                        else if (strlen(name) + strlen(WH_PREFIX) > NAME_MAX)
                                r = report_fail(ex->rep, -ENAMETOOLONG,
                                                "'%s': whiteout name too long for a .wh. entry", path);
                        else
                                r = emit_marker(ex, wh, st, st->st_mode & 07777);
                        continue;
                }
                if (startswith(name, WH_PREFIX)) {
                        r = report_fail(ex->rep, -EINVAL,
                                        "'%s': a name starting with '.wh.' cannot be represented in an OCI layer", path);
                        break;
                }
                if (S_ISSOCK(st->st_mode)) {
                        log_warning("'%s': sockets cannot be archived, skipped", path);
                        ex->rep->dropped++;
                        continue;
                }

                _cleanup_close_ int fd = S_ISDIR(st->st_mode) ? tree_open_dir(dirfd, name)
                                         : S_ISREG(st->st_mode) ? openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                                                                : openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        r = report_fail(ex->rep, S_ISDIR(st->st_mode) ? fd : -errno, "'%s': %m", path);
                        break;
                }
                struct stat now;
                if (fstat(fd, &now) < 0) {
                        r = report_fail(ex->rep, -errno, "'%s': %m", path);
                        break;
                }
                if (now.st_ino != st->st_ino || now.st_dev != st->st_dev || now.st_size != st->st_size) {
                        r = report_fail(ex->rep, -EBUSY, "'%s': changed while being exported", path);
                        break;
                }
                if (S_ISDIR(st->st_mode) && (r = check_redirect(ex, fd, path)) < 0)
                        break;
                if (S_ISREG(st->st_mode) && (r = ovl_is_metacopy(fd)) != 0) {
                        r = r < 0 ? report_fail(ex->rep, r, "'%s': %m", path) :
                            report_fail(ex->rep, -EXDEV,
                                        "'%s': a metacopy file (overlay metacopy) has its data in a layer below, "
                                        "not in this one; flatten the stack first with 'sandbox-layer squash'", path);
                        break;
                }

                entry_base(ex->e, path, st);
                bool data = false;
                if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
                        const char *first = NULL;
                        for (size_t k = 0; k < ex->n_links; k++)
                                if (ex->links[k].dev == st->st_dev && ex->links[k].ino == st->st_ino) {
                                        first = ex->links[k].path;
                                        break;
                                }
                        if (first) {
                                archive_entry_copy_hardlink(ex->e, first);
                                archive_entry_set_size(ex->e, 0);
                                if (archive_write_header(ex->a, ex->e) < ARCHIVE_WARN)
                                        r = write_fail(ex, path);
                                ex->rep->entries++;
                                continue;
                        }
                        if (ex->n_links == ex->cap_links) {
                                size_t ncap = ex->cap_links ? ex->cap_links * 2 : 64;
                                LinkSeen *n = reallocarray(ex->links, ncap, sizeof(*n));
                                if (!n) {
                                        r = report_fail(ex->rep, -ENOMEM, "out of memory");
                                        break;
                                }
                                ex->links = n;
                                ex->cap_links = ncap;
                        }
                        ex->links[ex->n_links++] = (LinkSeen) { st->st_dev, st->st_ino, TAKE_PTR(path) };
                        path = strdup(ex->links[ex->n_links - 1].path);
                        if (!path) {
                                r = report_fail(ex->rep, -ENOMEM, "out of memory");
                                break;
                        }
                }
                if (S_ISREG(st->st_mode)) {
                        archive_entry_set_size(ex->e, st->st_size);
                        data = st->st_size > 0;
                        if ((r = add_sparse_map(ex, fd, path, st)) < 0)
                                break;
                } else if (S_ISLNK(st->st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
                        if (n < 0) {
                                r = report_fail(ex->rep, -errno, "'%s': %m", path);
                                break;
                        }
                        target[n] = '\0';
                        archive_entry_copy_symlink(ex->e, target);
                } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
                        archive_entry_set_rdevmajor(ex->e, major(st->st_rdev));
                        archive_entry_set_rdevminor(ex->e, minor(st->st_rdev));
                }
                if ((r = add_xattrs(ex, fd, path)) < 0)
                        break;
                if (archive_write_header(ex->a, ex->e) < ARCHIVE_WARN) {
                        r = write_fail(ex, path);
                        break;
                }
                ex->rep->entries++;
                if (ex->progress)
                        progress_add(ex->progress, 0, 1);
                if (data && (r = copy_file(ex, fd, path, st)) < 0)
                        break;
                if (S_ISDIR(st->st_mode)) {
                        int o = ovl_dir_is_opaque(fd);
                        if (o < 0) {
                                r = report_fail(ex->rep, o, "'%s': %m", path);
                                break;
                        }
                        _cleanup_free_ char *sub = NULL;
                        if (asprintf(&sub, "%s/", path) < 0) {
                                r = report_fail(ex->rep, -ENOMEM, "out of memory");
                                break;
                        }
                        if (o > 0) {
                                _cleanup_free_ char *opq = NULL;
                                if (asprintf(&opq, "%s" WH_OPAQUE, sub) < 0) {
                                        r = report_fail(ex->rep, -ENOMEM, "out of memory");
                                        break;
                                }
                                if ((r = emit_marker(ex, opq, st, 0)) < 0)
                                        break;
                        }
                        r = export_tree(ex, fd, sub);
                }
        }
        tree_list_free(&l);
        return r;
}

int tar_export(int dir_fd, int out_fd, TarCompress compress, Progress *progress, TarReport *report) {
        assert_return(dir_fd >= 0 && out_fd >= 0 && report, -EINVAL);
        assert_return(compress >= 0 && compress < _TAR_COMPRESS_MAX, -EINVAL);

        _cleanup_(archive_write_freep) struct archive *a = archive_write_new();
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
        _cleanup_free_ char *buf = malloc(COPY_BUF_SIZE);
        if (!a || !e || !buf)
                return report_fail(report, -ENOMEM, "out of memory");
        int r = archive_write_set_format_pax_restricted(a);
        /* xattrs as SCHILY.xattr.NAME only: what Go's archive/tar (docker, containerd, podman) reads. */
        if (r == ARCHIVE_OK)
                r = archive_write_set_format_option(a, "pax", "xattrheader", "SCHILY");
        if (r == ARCHIVE_OK) {
                if (compress == TAR_COMPRESS_GZIP) {
                        r = archive_write_add_filter_gzip(a);
                        /* No timestamp in the gzip header: the same tree gives the same bytes. */
                        if (r == ARCHIVE_OK)
                                r = archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
                } else if (compress == TAR_COMPRESS_ZSTD)
                        r = archive_write_add_filter_zstd(a);
                else
                        r = archive_write_add_filter_none(a);
        }
        if (r == ARCHIVE_OK)
                r = archive_write_open_fd(a, out_fd);
        if (r != ARCHIVE_OK)
                return report_fail(report, -EOPNOTSUPP, "libarchive: %s", archive_error_string(a));

        Exporter ex = { .a = a, .e = e, .progress = progress, .rep = report, .buf = buf };
        r = export_tree(&ex, dir_fd, "");
        for (size_t i = 0; i < ex.n_links; i++)
                free(ex.links[i].path);
        free(ex.links);
        if (r < 0)
                return r;
        if (archive_write_close(a) != ARCHIVE_OK)
                return report_fail(report, archive_errno(a) > 0 ? -archive_errno(a) : -EIO, "writing the archive: %s",
                                   archive_error_string(a));
        return 0;
}
