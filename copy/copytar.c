/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * docker cp's tar streams, packed and unpacked; see copytar.h. libarchive's disk reader walks the source
 * (symlinks never followed below PATH) and its disk writer creates the files, with
 * ARCHIVE_EXTRACT_SECURE_SYMLINKS and _SECURE_NODOTDOT; the names it gets are built here from the
 * archive's after they were checked, beneath a destination resolved once with realpath() (so the prefix
 * holds no symlink that SECURE_SYMLINKS would refuse, and a name of the archive cannot leave it).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copytar.h"
#include "errbuf.h"
#include "macro.h"

#define COPY_BLOCK (64 * 1024)

/* libarchive is opened on the first pack or unpack, not when the program starts: sandboxctl links this file
 * for `cp` alone, and libarchive brings a dozen libraries (libxml2, ICU, libstdc++, ...) whose loading and
 * relocation took about 2 ms of every `sandboxctl exec` (docs/performance.md). */
/* Its ABI has had this soname since libarchive 3.0. */
#ifndef LIBARCHIVE_SONAME
#define LIBARCHIVE_SONAME "libarchive.so.13"
#endif

#define ARCHIVE_SYMBOLS(X) \
        X(archive_entry_clear) \
        X(archive_entry_filetype) \
        X(archive_entry_free) \
        X(archive_entry_hardlink) \
        X(archive_entry_linkify) \
        X(archive_entry_linkresolver_free) \
        X(archive_entry_linkresolver_new) \
        X(archive_entry_linkresolver_set_strategy) \
        X(archive_entry_new) \
        X(archive_entry_pathname) \
        X(archive_entry_perm) \
        X(archive_entry_set_gname) \
        X(archive_entry_set_hardlink) \
        X(archive_entry_set_pathname) \
        X(archive_entry_set_perm) \
        X(archive_entry_set_uname) \
        X(archive_entry_size) \
        X(archive_errno) \
        X(archive_error_string) \
        X(archive_format) \
        X(archive_free) \
        X(archive_read_data_block) \
        X(archive_read_disk_descend) \
        X(archive_read_disk_new) \
        X(archive_read_disk_open) \
        X(archive_read_disk_set_behavior) \
        X(archive_read_disk_set_symlink_physical) \
        X(archive_read_new) \
        X(archive_read_next_header) \
        X(archive_read_next_header2) \
        X(archive_read_open_fd) \
        X(archive_read_support_format_tar) \
        X(archive_write_close) \
        X(archive_write_data) \
        X(archive_write_data_block) \
        X(archive_write_disk_new) \
        X(archive_write_disk_set_options) \
        X(archive_write_finish_entry) \
        X(archive_write_header) \
        X(archive_write_new) \
        X(archive_write_open_fd) \
        X(archive_write_set_format_pax_restricted)

#define ARCHIVE_SYM_DECLARE(f) static typeof(f) *sym_##f;
ARCHIVE_SYMBOLS(ARCHIVE_SYM_DECLARE)

static pthread_once_t archive_once = PTHREAD_ONCE_INIT;
static int archive_loaded; /* 0 not tried, 1 loaded, negative errno */
static char archive_load_error[256];

static void archive_load(void) {
        void *h = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        const char *missing = NULL;

        if (!h) {
                snprintf(archive_load_error, sizeof archive_load_error, "cannot load %s: %s", LIBARCHIVE_SONAME,
                         dlerror() ?: "unknown error");
                archive_loaded = -EOPNOTSUPP;
                return;
        }
#define ARCHIVE_SYM_LOAD(f) \
        if (!missing && !(sym_##f = (typeof(f) *) dlsym(h, #f))) \
                missing = #f;
        ARCHIVE_SYMBOLS(ARCHIVE_SYM_LOAD)
#undef ARCHIVE_SYM_LOAD
        if (missing) {
                snprintf(archive_load_error, sizeof archive_load_error, "%s lacks %s", LIBARCHIVE_SONAME, missing);
                archive_loaded = -EOPNOTSUPP;
                return;
        }
        archive_loaded = 1;
}

int copytar_load(char *err, size_t errlen) {
        (void) pthread_once(&archive_once, archive_load);
        if (archive_loaded < 0)
                return errbuf_set(err, errlen, archive_loaded, "%s", archive_load_error);
        return 0;
}

#define archive_entry_clear sym_archive_entry_clear
#define archive_entry_filetype sym_archive_entry_filetype
#define archive_entry_free sym_archive_entry_free
#define archive_entry_hardlink sym_archive_entry_hardlink
#define archive_entry_linkify sym_archive_entry_linkify
#define archive_entry_linkresolver_free sym_archive_entry_linkresolver_free
#define archive_entry_linkresolver_new sym_archive_entry_linkresolver_new
#define archive_entry_linkresolver_set_strategy sym_archive_entry_linkresolver_set_strategy
#define archive_entry_new sym_archive_entry_new
#define archive_entry_pathname sym_archive_entry_pathname
#define archive_entry_perm sym_archive_entry_perm
#define archive_entry_set_gname sym_archive_entry_set_gname
#define archive_entry_set_hardlink sym_archive_entry_set_hardlink
#define archive_entry_set_pathname sym_archive_entry_set_pathname
#define archive_entry_set_perm sym_archive_entry_set_perm
#define archive_entry_set_uname sym_archive_entry_set_uname
#define archive_entry_size sym_archive_entry_size
#define archive_errno sym_archive_errno
#define archive_error_string sym_archive_error_string
#define archive_format sym_archive_format
#define archive_free sym_archive_free
#define archive_read_data_block sym_archive_read_data_block
#define archive_read_disk_descend sym_archive_read_disk_descend
#define archive_read_disk_new sym_archive_read_disk_new
#define archive_read_disk_open sym_archive_read_disk_open
#define archive_read_disk_set_behavior sym_archive_read_disk_set_behavior
#define archive_read_disk_set_symlink_physical sym_archive_read_disk_set_symlink_physical
#define archive_read_new sym_archive_read_new
#define archive_read_next_header sym_archive_read_next_header
#define archive_read_next_header2 sym_archive_read_next_header2
#define archive_read_open_fd sym_archive_read_open_fd
#define archive_read_support_format_tar sym_archive_read_support_format_tar
#define archive_write_close sym_archive_write_close
#define archive_write_data sym_archive_write_data
#define archive_write_data_block sym_archive_write_data_block
#define archive_write_disk_new sym_archive_write_disk_new
#define archive_write_disk_set_options sym_archive_write_disk_set_options
#define archive_write_finish_entry sym_archive_write_finish_entry
#define archive_write_header sym_archive_write_header
#define archive_write_new sym_archive_write_new
#define archive_write_open_fd sym_archive_write_open_fd
#define archive_write_set_format_pax_restricted sym_archive_write_set_format_pax_restricted

static void archive_freep(struct archive **a) {
        if (*a)
                archive_free(*a);
}
static void archive_entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}
static void archive_entry_linkresolver_freep(struct archive_entry_linkresolver **l) {
        if (*l)
                archive_entry_linkresolver_free(*l);
}

/* libarchive's errno for A, or EIO when it has none. */
static int archive_error(struct archive *a) {
        int e = archive_errno(a);
        return e > 0 ? -e : -EIO;
}

/* libarchive's message for A, with the system's reason when it has one and did not say it. */
static const char *archive_message(struct archive *a) {
        static __thread char buf[COPYTAR_ERROR_MAX];
        const char *m = archive_error_string(a) ?: "unknown error";
        int e = archive_errno(a);

        if (e > 0 && e < 4096 && !strstr(m, strerror(e))) {
                snprintf(buf, sizeof buf, "%s: %s", m, strerror(e));
                return buf;
        }
        return m;
}

/* PATH without its trailing slashes ("/" stays "/"), and whether it asked for a directory's contents
 * ("/." at the end, or "/" or "." alone). */
static int source_split(const char *path, char **ret_src, bool *ret_contents) {
        _cleanup_free_ char *p = strdup(path);
        bool contents = false;
        size_t n;

        if (!p)
                return -ENOMEM;
        n = strlen(p);
        for (;;) {
                while (n > 1 && p[n - 1] == '/')
                        p[--n] = '\0';
                if (n >= 2 && streq(p + n - 2, "/.")) {
                        contents = true;
                        n -= 2;
                        if (n == 0)
                                n = 1; /* "/." is "/" */
                        p[n] = '\0';
                        continue;
                }
                break;
        }
        if (streq(p, "/") || streq(p, "."))
                contents = true;
        *ret_src = TAKE_PTR(p);
        *ret_contents = contents;
        return 0;
}

static int write_zeros(struct archive *w, uint64_t n, const char *zeros) {
        while (n > 0) {
                size_t k = n > COPY_BLOCK ? COPY_BLOCK : (size_t) n;
                la_ssize_t m = archive_write_data(w, zeros, k);
                if (m < 0)
                        return archive_error(w);
                if (m == 0)
                        break; /* past the entry's size: the writer drops the rest */
                n -= (uint64_t) m;
        }
        return 0;
}

int copytar_pack(const char *path, int out_fd, CopyTarReport *ret_report, char *err, size_t errlen) {
        _cleanup_(archive_freep) struct archive *disk = NULL, *w = NULL;
        _cleanup_(archive_entry_freep) struct archive_entry *e = NULL;
        _cleanup_(archive_entry_linkresolver_freep) struct archive_entry_linkresolver *links = NULL;
        _cleanup_free_ char *src = NULL, *zeros = NULL;
        CopyTarReport rep = {};
        const char *top;
        bool contents;
        struct stat st;
        int r;

        if (!path || !*path)
                return errbuf_set(err, errlen, -EINVAL, "empty source path");
        r = copytar_load(err, errlen);
        if (r < 0)
                return r;
        r = source_split(path, &src, &contents);
        if (r < 0)
                return errbuf_set(err, errlen, r, "out of memory");
        if (lstat(src, &st) < 0)
                return errbuf_set(err, errlen, -errno, "'%s': %s", path, strerror(errno));
        /* Say plainly when we may not read it (libarchive's message has no reason). */
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
                _cleanup_close_ int probe = open(src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (probe < 0)
                        return errbuf_set(err, errlen, -errno, "'%s': %s", path, strerror(errno));
        }
        if (contents && !S_ISDIR(st.st_mode))
                return errbuf_set(err, errlen, -ENOTDIR, "'%s': not a directory", path);
        if (contents)
                top = ".";
        else {
                top = strrchr(src, '/');
                top = top ? top + 1 : src;
        }

        zeros = calloc(1, COPY_BLOCK);
        links = archive_entry_linkresolver_new();
        disk = archive_read_disk_new();
        w = archive_write_new();
        e = archive_entry_new();
        if (!zeros || !links || !disk || !w || !e)
                return errbuf_set(err, errlen, -ENOMEM, "out of memory");
        if (archive_read_disk_set_symlink_physical(disk) != ARCHIVE_OK ||
            archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
                                                         ARCHIVE_READDISK_NO_FFLAGS) != ARCHIVE_OK)
                return errbuf_set(err, errlen, archive_error(disk), "%s", archive_message(disk));
        if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
            archive_write_open_fd(w, out_fd) != ARCHIVE_OK)
                return errbuf_set(err, errlen, archive_error(w), "%s", archive_message(w));
        /* Hard links: the second name of a file becomes a link entry to the first. */
        archive_entry_linkresolver_set_strategy(links, archive_format(w));
        if (archive_read_disk_open(disk, src) != ARCHIVE_OK)
                return errbuf_set(err, errlen, archive_error(disk), "'%s': %s", path, archive_message(disk));

        for (;;) {
                _cleanup_free_ char *name = NULL;
                const char *p, *rest;

                archive_entry_clear(e);
                r = archive_read_next_header2(disk, e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return errbuf_set(err, errlen, archive_error(disk), "'%s': %s", path, archive_message(disk));
                p = archive_entry_pathname(e);
                rest = p ? startswith(p, src) : NULL;
                if (!rest)
                        return errbuf_set(err, errlen, -EIO, "'%s': unexpected entry '%s'", path, p ? p : "(null)");
                while (*rest == '/')
                        rest++;
                if (asprintf(&name, "%s%s%s", top, *rest ? "/" : "", rest) < 0)
                        return errbuf_set(err, errlen, -ENOMEM, "out of memory");
                archive_entry_set_pathname(e, name);
                archive_entry_set_uname(e, NULL);
                archive_entry_set_gname(e, NULL);
                if (archive_entry_filetype(e) == AE_IFDIR)
                        (void) archive_read_disk_descend(disk);
                /* Sockets cannot be in a tar; the writer says so and skips them. */
                if (archive_entry_filetype(e) == AE_IFSOCK)
                        continue;

                struct archive_entry *linked = e, *spare = NULL;
                archive_entry_linkify(links, &linked, &spare);
                /* With the pax strategy a first name comes back at once and a later one as a link entry
                 * without data; nothing is deferred (SPARE stays NULL). */
                if (!linked || spare)
                        return errbuf_set(err, errlen, -EIO, "'%s': unexpected hard link handling", name);

                r = archive_write_header(w, e);
                if (r < ARCHIVE_WARN)
                        return errbuf_set(err, errlen, archive_error(w), "'%s': %s", name, archive_message(w));
                rep.entries++;
                if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) <= 0 ||
                    archive_entry_hardlink(e))
                        continue;

                /* Holes come as gaps between the data blocks: the writer drops the zeros that fall into
                 * the sparse map's holes, and stores them for formats without one. */
                uint64_t done = 0, size = (uint64_t) archive_entry_size(e);
                for (;;) {
                        const void *buf;
                        size_t n;
                        la_int64_t off;

                        r = archive_read_data_block(disk, &buf, &n, &off);
                        if (r == ARCHIVE_EOF)
                                break;
                        if (r < ARCHIVE_WARN)
                                return errbuf_set(err, errlen, archive_error(disk), "'%s': %s", name,
                                            archive_message(disk));
                        if (off < 0 || (uint64_t) off < done)
                                return errbuf_set(err, errlen, -EIO, "'%s': data out of order", name);
                        r = write_zeros(w, (uint64_t) off - done, zeros);
                        if (r < 0)
                                return errbuf_set(err, errlen, r, "'%s': %s", name, archive_message(w));
                        done = (uint64_t) off;
                        if (n > 0) {
                                la_ssize_t m = archive_write_data(w, buf, n);
                                if (m < 0)
                                        return errbuf_set(err, errlen, archive_error(w), "'%s': %s", name,
                                                    archive_message(w));
                                done += n;
                                rep.bytes += n;
                        }
                }
                if (done < size) {
                        r = write_zeros(w, size - done, zeros);
                        if (r < 0)
                                return errbuf_set(err, errlen, r, "'%s': %s", name, archive_message(w));
                }
        }
        if (archive_write_close(w) != ARCHIVE_OK)
                return errbuf_set(err, errlen, archive_error(w), "%s", archive_message(w));
        if (ret_report)
                *ret_report = rep;
        return 0;
}

/* NAME as the archive has it, split into its top-level component and the rest (NULL: none). Leading "./"
 * makes the top ".". Refuses absolute names and "..", "." or empty components below the top. */
static int name_split(const char *name, char **ret_top, const char **ret_rest) {
        const char *slash, *rest;

        if (!name || !*name || name[0] == '/')
                return -EINVAL;
        slash = strchr(name, '/');
        rest = slash ? slash + 1 : NULL;
        while (rest && *rest == '/')
                rest++;
        if (rest && !*rest)
                rest = NULL; /* "dir/" */
        for (const char *c = rest; c && *c;) {
                size_t l = strcspn(c, "/");
                if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
                        return -EINVAL;
                c += l;
                while (*c == '/')
                        c++;
        }
        _cleanup_free_ char *top = slash ? strndup(name, (size_t) (slash - name)) : strdup(name);
        if (!top)
                return -ENOMEM;
        if (streq(top, ".."))
                return -EINVAL;
        *ret_top = TAKE_PTR(top);
        *ret_rest = rest;
        return 0;
}

typedef enum DestKind {
        DEST_INTO,      /* an existing directory: names kept, below it */
        DEST_AS,        /* the one top-level entry becomes the destination */
} DestKind;

typedef struct UnpackPlan {
        DestKind kind;
        char *dir;              /* resolved: the existing directory (INTO), the destination's parent (AS) */
        char *as;               /* AS: the destination's name in DIR */
        bool dest_exists;       /* AS: it exists (and is not a directory) */
        char *top;              /* AS: the archive's top-level name, once seen */
} UnpackPlan;

static void unpack_plan_done(UnpackPlan *p) {
        free(p->dir);
        free(p->as);
        free(p->top);
}

static int plan_make(const char *dest, UnpackPlan *ret, char *err, size_t errlen) {
        _cleanup_free_ char *copy = NULL, *parent = NULL, *name = NULL;
        struct stat st;
        size_t n;

        if (!dest || !*dest)
                return errbuf_set(err, errlen, -EINVAL, "empty destination path");
        if (stat(dest, &st) >= 0 && S_ISDIR(st.st_mode)) {
                char *dir = realpath(dest, NULL);
                if (!dir)
                        return errbuf_set(err, errlen, -errno, "'%s': %s", dest, strerror(errno));
                *ret = (UnpackPlan) { .kind = DEST_INTO, .dir = dir };
                return 0;
        }
        copy = strdup(dest);
        if (!copy)
                return errbuf_set(err, errlen, -ENOMEM, "out of memory");
        n = strlen(copy);
        if (copy[n - 1] == '/')
                return errbuf_set(err, errlen, -ENOENT, "'%s': no such directory", dest);
        char *slash = strrchr(copy, '/');
        if (slash) {
                name = strdup(slash + 1);
                *slash = '\0';
                parent = strdup(slash == copy ? "/" : copy);
        } else {
                name = strdup(copy);
                parent = strdup(".");
        }
        if (!name || !parent)
                return errbuf_set(err, errlen, -ENOMEM, "out of memory");
        if (streq(name, ".") || streq(name, ".."))
                return errbuf_set(err, errlen, -EINVAL, "'%s': not a valid destination name", dest);
        char *dir = realpath(parent, NULL);
        if (!dir)
                return errbuf_set(err, errlen, -errno, "'%s': %s", parent, strerror(errno));
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                free(dir);
                return errbuf_set(err, errlen, -ENOTDIR, "'%s': not a directory", parent);
        }
        *ret = (UnpackPlan) {
                .kind = DEST_AS,
                .dir = dir,
                .as = TAKE_PTR(name),
                .dest_exists = lstat(dest, &st) >= 0,
        };
        return 0;
}

/* Where the archive's NAME goes (malloc'd in *ret); IS_DIR: the entry is a directory. */
static int plan_map(UnpackPlan *p, const char *name, bool is_dir, char **ret, char *err, size_t errlen) {
        _cleanup_free_ char *top = NULL;
        const char *rest, *base;
        char *out;
        int r;

        r = name_split(name, &top, &rest);
        if (r == -ENOMEM)
                return errbuf_set(err, errlen, r, "out of memory");
        if (r < 0)
                return errbuf_set(err, errlen, r, "'%s': an absolute name or one with '..' in the archive", name);

        if (p->kind == DEST_INTO) {
                const char *sep = streq(p->dir, "/") ? "" : "/";
                if (streq(top, "."))
                        r = rest ? asprintf(&out, "%s%s%s", p->dir, sep, rest) : asprintf(&out, "%s", p->dir);
                else
                        r = asprintf(&out, "%s%s%s%s%s", p->dir, sep, top, rest ? "/" : "", rest ?: "");
                if (r < 0)
                        return errbuf_set(err, errlen, -ENOMEM, "out of memory");
                *ret = out;
                return 0;
        }

        if (!p->top) {
                p->top = strdup(top);
                if (!p->top)
                        return errbuf_set(err, errlen, -ENOMEM, "out of memory");
        } else if (!streq(p->top, top))
                return errbuf_set(err, errlen, -EINVAL,
                            "the archive has more than one top-level entry ('%s', '%s'): the destination must be "
                            "an existing directory", p->top, top);
        if (p->dest_exists && (rest || is_dir))
                return errbuf_set(err, errlen, -EISDIR, "cannot copy the directory '%s' over the non-directory '%s'",
                            top, p->as);
        base = p->as;
        r = asprintf(&out, "%s%s%s%s%s", p->dir, streq(p->dir, "/") ? "" : "/", base, rest ? "/" : "", rest ?: "");
        if (r < 0)
                return errbuf_set(err, errlen, -ENOMEM, "out of memory");
        *ret = out;
        return 0;
}

int copytar_unpack(int in_fd, const char *dest, const CopyTarOptions *o, CopyTarReport *ret_report, char *err,
                   size_t errlen) {
        _cleanup_(archive_freep) struct archive *a = NULL, *disk = NULL;
        _cleanup_(unpack_plan_done) UnpackPlan plan = {};
        uint64_t max_entries = o && o->max_entries > 0 ? o->max_entries : COPYTAR_MAX_ENTRIES_DEFAULT;
        _cleanup_close_ int dir_fd = -EBADF;
        CopyTarReport rep = {};
        struct archive_entry *e;
        int r;

        r = copytar_load(err, errlen);
        if (r < 0)
                return r;
        r = plan_make(dest, &plan, err, errlen);
        if (r < 0)
                return r;
        /* Written data may reach the disk (and meet a disk bound, or an I/O error) only after the write()
         * that libarchive checks, and it does not check close(): syncfs() on a descriptor opened before
         * reports every writeback error of the file system since (errseq). */
        dir_fd = open(plan.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return errbuf_set(err, errlen, -errno, "'%s': %s", plan.dir, strerror(errno));

        a = archive_read_new();
        disk = archive_write_disk_new();
        if (!a || !disk)
                return errbuf_set(err, errlen, -ENOMEM, "out of memory");
        if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_open_fd(a, in_fd, COPY_BLOCK) != ARCHIVE_OK)
                return errbuf_set(err, errlen, archive_error(a), "the archive: %s", archive_message(a));
        /* Not OWNER: files belong to whoever unpacks. Not XATTR, ACL, FFLAGS. */
        if (archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                                         ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                         ARCHIVE_EXTRACT_SECURE_NODOTDOT) != ARCHIVE_OK)
                return errbuf_set(err, errlen, archive_error(disk), "%s", archive_message(disk));

        for (;;) {
                _cleanup_free_ char *target = NULL, *link_target = NULL, *name = NULL;
                const char *hardlink;
                mode_t type;

                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return errbuf_set(err, errlen, archive_error(a), "the archive: %s", archive_message(a));
                if (rep.entries >= max_entries)
                        return errbuf_set(err, errlen, -E2BIG, "the archive has more than %" PRIu64 " entries", max_entries);
                rep.entries++;

                /* Our copy: the entry's own string goes when we rename it below. */
                name = strdup(archive_entry_pathname(e) ?: "");
                if (!name)
                        return errbuf_set(err, errlen, -ENOMEM, "out of memory");
                type = archive_entry_filetype(e);
                if (type == AE_IFCHR || type == AE_IFBLK)
                        return errbuf_set(err, errlen, -EPERM, "'%s': device nodes are not copied", name);
                r = plan_map(&plan, name, type == AE_IFDIR, &target, err, errlen);
                if (r < 0)
                        return r;
                hardlink = archive_entry_hardlink(e);
                bool is_hardlink = hardlink;
                if (hardlink) {
                        r = plan_map(&plan, hardlink, false, &link_target, err, errlen);
                        if (r < 0)
                                return r;
                        archive_entry_set_hardlink(e, link_target);
                }
                archive_entry_set_pathname(e, target);
                if (!(o && o->keep_setid))
                        archive_entry_set_perm(e, archive_entry_perm(e) & ~(mode_t) (S_ISUID | S_ISGID));

                r = archive_write_header(disk, e);
                if (r < ARCHIVE_WARN)
                        return errbuf_set(err, errlen, archive_error(disk), "'%s': %s", name, archive_message(disk));
                if (type == AE_IFREG && archive_entry_size(e) > 0 && !is_hardlink)
                        for (;;) {
                                const void *buf;
                                size_t n;
                                la_int64_t off;

                                r = archive_read_data_block(a, &buf, &n, &off);
                                if (r == ARCHIVE_EOF)
                                        break;
                                if (r < ARCHIVE_WARN)
                                        return errbuf_set(err, errlen, archive_error(a), "'%s': %s", name,
                                                    archive_message(a));
                                if (archive_write_data_block(disk, buf, n, off) < ARCHIVE_WARN)
                                        return errbuf_set(err, errlen, archive_error(disk), "'%s': %s", name,
                                                    archive_message(disk));
                                rep.bytes += n;
                        }
                r = archive_write_finish_entry(disk);
                if (r < ARCHIVE_WARN)
                        return errbuf_set(err, errlen, archive_error(disk), "'%s': %s", name, archive_message(disk));
        }
        if (rep.entries == 0)
                return errbuf_set(err, errlen, -EINVAL, "the archive is empty");
        /* Directories' modes and times are set here, after their contents. */
        if (archive_write_close(disk) < ARCHIVE_WARN)
                return errbuf_set(err, errlen, archive_error(disk), "%s", archive_message(disk));
        if (syncfs(dir_fd) < 0)
                return errbuf_set(err, errlen, -errno, "writing to '%s': %s", dest, strerror(errno));
        if (ret_report)
                *ret_report = rep;
        return 0;
}
