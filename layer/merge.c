/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Merge: fold the layer UPPER into LOWER in place. UPPER is only read. Library code: returns -errno,
 * logs at debug level at most.
 *
 * It runs in two phases, with a journal in a work directory on LOWER's file system:
 *  1. plan: walk UPPER in sorted pre-order and write the list of operations ("plan", written to a
 *     temporary name, fsync'ed, renamed). Nothing in LOWER changes before the plan is durable, and
 *     everything we refuse (redirects, metacopy) is refused here.
 *  2. apply: run the operations in order; "progress" records how far we got (an append-only file of
 *     8-byte records; a torn last record is ignored).
 * Every operation is atomic for each LOWER entry it changes (objects are staged complete in the work
 * directory and renamed into place; rename(2) replaces a non-directory atomically, and
 * renameat2(RENAME_EXCHANGE) swaps a directory with a non-directory) and idempotent: it may be
 * repeated any number of times, partially done or not, even after later operations ran, and the
 * result is the same. That is why progress needs no fsync and may lag: a re-run repeats a few
 * operations. Directory attributes are the one thing not atomic: they are set one by one, each
 * idempotently. Directory times are set last, deepest first, because every rename touches them.
 *
 * The staging name of operation N is "op-N" (a re-run finds it again); what is found there tells
 * which step was reached: a PUT of a non-directory finding a directory, or a DIR finding a
 * non-directory, sees the old object that RENAME_EXCHANGE moved out, so only its removal is left.
 * Opaque directories are not swapped as a whole: their LOWER entries that UPPER lacks are deleted one
 * by one ("exact" directories), so that no swap of two directories, which a re-run could not tell
 * apart, is ever needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "buf.h"
#include "copyup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "merge.h"
#include "ovl.h"
#include "progress.h"
#include "rootattr.h"
#include "tree.h"
#include "xattr.h"

#define MERGE_DEPTH_MAX 256                      /* bounds the planning walk's recursion and fds */
#define MERGE_OPS_MAX ((uint32_t) 8 << 20)
#define MERGE_PLAN_MAX ((size_t) 256 << 20)      /* bytes of operation records */
#define MERGE_PROGRESS_MAX ((size_t) 16 << 20)
#define MERGE_PARENT_WALK_MAX 4096
#define PROGRESS_EVERY 64
#define LINK_NONE UINT32_MAX

#define PLAN_NAME "plan"
#define PROGRESS_NAME "progress"
#define PLAN_MAGIC "sbx-layer-merge1"

enum {
        OP_DIR = 1, /* make LOWER/P a directory with UPPER/P's attributes (but times) */
        OP_PUT,     /* replace LOWER/P by a copy of UPPER/P (a non-directory) */
        OP_DELETE,  /* remove LOWER/P (UPPER has a whiteout) */
        OP_TIMES,   /* set LOWER/P's atime/mtime from UPPER/P (a directory) */
};

enum {
        OPF_EXACT = 1 << 0,  /* OP_DIR: delete LOWER entries that UPPER/P lacks (opaque or below one) */
        OPF_OPAQUE = 1 << 1, /* OP_DIR: LOWER/P must be opaque (MERGE_KEEP_WHITEOUTS) */
};

typedef struct PlanHeader {
        char magic[16];
        uint64_t upper_dev, upper_ino, lower_dev, lower_ino;
        uint32_t flags, n_ops;
        uint64_t size; /* bytes of records following; an XXH3-64 of everything before it ends the file */
} PlanHeader;

typedef struct OpRecord {
        uint8_t type, flags;
        uint16_t path_len;
        uint32_t link; /* OP_PUT: index of the OP_PUT of another name of the same UPPER inode */
} OpRecord;

typedef struct Op {
        uint8_t type, flags;
        uint32_t link;
        const char *path; /* "" for the root */
} Op;


typedef struct LinkRef {
        dev_t dev;
        ino_t ino;
        uint32_t index;
        size_t offset;
} LinkRef;

typedef struct Planner {
        Buf ops, times;
        uint32_t n_main, n_times;
        LinkRef *links;
        size_t n_links, cap_links;
        unsigned flags;
        char path[PATH_MAX];
        char *bad_path;
} Planner;

typedef struct Merge {
        int upper_fd, lower_fd, work_fd, progress_fd;
        unsigned flags;
        Op *ops;
        uint32_t n_ops;
        char *paths;
        char *bad_path;
        Progress progress;
} Merge;

static void set_bad_path(char **slot, const char *path) {
        free(*slot);
        *slot = strdup(path);
}

/* ---------------------------------------------------------------- plan */

static int plan_add(Planner *pl, Buf *b, uint8_t type, uint8_t flags, size_t len, size_t *ret_offset) {
        OpRecord rec = { .type = type, .flags = flags, .path_len = (uint16_t) len, .link = LINK_NONE };
        size_t offset = b->size;
        int r;

        if (pl->n_main + pl->n_times >= MERGE_OPS_MAX)
                return -EFBIG;
        r = buf_put(b, &rec, sizeof rec);
        if (r < 0)
                return r;
        r = buf_put(b, pl->path, len);
        if (r < 0)
                return r;
        if (b == &pl->times)
                pl->n_times++;
        else
                pl->n_main++;
        if (ret_offset)
                *ret_offset = offset;
        return 0;
}

/* An overlay marker "<ns>overlay.SUFFIX" in either namespace: 1 present, 0 absent, or -errno. */
static int has_marker(int path_fd, const char *suffix) {
        const char *const ns[] = { OVL_NS_TRUSTED, OVL_NS_USER };
        char name[64];

        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                (void) snprintf(name, sizeof name, "%soverlay.%s", ns[i], suffix);
                ssize_t n = xattr_get(path_fd, name, NULL, 0);
                if (n >= 0)
                        return 1;
                if (n != -ENODATA && n != -EOPNOTSUPP)
                        return (int) n;
        }
        return 0;
}

static int plan_dir(Planner *pl, int dirfd, size_t len, unsigned depth, bool exact) {
        _cleanup_(tree_list_free) TreeList l = {};
        bool keep = pl->flags & MERGE_KEEP_WHITEOUTS;
        int r;

        r = tree_list(dirfd, &l);
        if (r < 0)
                return r;

        for (size_t i = 0; i < l.n; i++) {
                const TreeEntry *e = &l.entries[i];
                size_t nl = strlen(e->name), plen = len ? len + 1 + nl : nl;

                if (plen >= PATH_MAX || plen > UINT16_MAX)
                        return -ENAMETOOLONG;
                if (len)
                        pl->path[len] = '/';
                memcpy(pl->path + (len ? len + 1 : 0), e->name, nl + 1);

                if (ovl_is_whiteout(&e->st)) {
                        /* In an exact directory nothing below shows through: a whiteout there would
                         * only be listed as a device by readdir. */
                        r = plan_add(pl, &pl->ops, keep && !exact ? OP_PUT : OP_DELETE, 0, plen, NULL);
                } else if (S_ISDIR(e->st.st_mode)) {
                        _cleanup_close_ int fd = -EBADF;
                        bool opaque;

                        if (depth + 1 >= MERGE_DEPTH_MAX)
                                return -ELOOP;
                        fd = tree_open_dir(dirfd, e->name);
                        if (fd < 0)
                                return fd;
                        /* A redirect's lower contents are found by path in layers below LOWER too: we
                         * cannot materialize them from LOWER alone. Refused before anything changes. */
                        r = has_marker(fd, "redirect");
                        if (r > 0) {
                                set_bad_path(&pl->bad_path, pl->path);
                                return -EMEDIUMTYPE;
                        }
                        if (r < 0)
                                return r;
                        r = ovl_dir_is_opaque(fd);
                        if (r < 0)
                                return r;
                        opaque = r > 0;
                        r = plan_add(pl, &pl->ops, OP_DIR,
                                     (exact || opaque ? OPF_EXACT : 0) | (keep && opaque ? OPF_OPAQUE : 0),
                                     plen, NULL);
                        if (r < 0)
                                return r;
                        r = plan_dir(pl, fd, plen, depth + 1, exact || opaque);
                        if (r < 0)
                                return r;
                        /* plan_dir() wrote deeper paths into pl->path: restore ours. */
                        if (len)
                                pl->path[len] = '/';
                        memcpy(pl->path + (len ? len + 1 : 0), e->name, nl + 1);
                        r = plan_add(pl, &pl->times, OP_TIMES, 0, plen, NULL);
                } else {
                        size_t offset;

                        if (S_ISREG(e->st.st_mode)) {
                                /* A metacopy file has no data of its own: refuse it like a redirect. */
                                _cleanup_close_ int fd = openat(dirfd, e->name,
                                                                O_PATH | O_NOFOLLOW | O_CLOEXEC);
                                if (fd < 0)
                                        return -errno;
                                r = has_marker(fd, "metacopy");
                                if (r > 0) {
                                        set_bad_path(&pl->bad_path, pl->path);
                                        return -EMEDIUMTYPE;
                                }
                                if (r < 0)
                                        return r;
                        }
                        r = plan_add(pl, &pl->ops, OP_PUT, 0, plen, &offset);
                        if (r >= 0 && S_ISREG(e->st.st_mode) && e->st.st_nlink > 1) {
                                if (pl->n_links == pl->cap_links) {
                                        size_t ncap = MAX(pl->cap_links * 2, (size_t) 64);
                                        LinkRef *n = reallocarray(pl->links, ncap, sizeof *n);
                                        if (!n)
                                                return -ENOMEM;
                                        pl->links = n;
                                        pl->cap_links = ncap;
                                }
                                pl->links[pl->n_links++] = (LinkRef) {
                                        .dev = e->st.st_dev, .ino = e->st.st_ino,
                                        .index = pl->n_main - 1, .offset = offset,
                                };
                        }
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int link_cmp(const void *a, const void *b) {
        const LinkRef *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Build the plan file's contents for UPPER_FD. */
static int plan_build(int upper_fd, const PlanHeader *h, unsigned flags, Buf *ret, char **ret_bad_path) {
        Planner pl = { .flags = flags, .ops.max = MERGE_PLAN_MAX, .times.max = MERGE_PLAN_MAX };
        Buf out = { .max = MERGE_PLAN_MAX };
        PlanHeader hdr = *h;
        bool root_opaque;
        uint64_t sum;
        int r;

        /* The root: its attributes, and "exact" if UPPER's root is opaque. */
        r = ovl_dir_is_opaque(upper_fd);
        if (r < 0)
                goto finish;
        root_opaque = r > 0;
        pl.path[0] = '\0';
        r = plan_add(&pl, &pl.ops, OP_DIR,
                     (root_opaque ? OPF_EXACT : 0) |
                     (root_opaque && (flags & MERGE_KEEP_WHITEOUTS) ? OPF_OPAQUE : 0), 0, NULL);
        if (r < 0)
                goto finish;
        r = plan_dir(&pl, upper_fd, 0, 0, root_opaque);
        if (r < 0)
                goto finish;
        pl.path[0] = '\0';
        r = plan_add(&pl, &pl.times, OP_TIMES, 0, 0, NULL);
        if (r < 0)
                goto finish;

        /* Hard links inside UPPER stay hard links: every later name links to the first one's copy. */
        if (pl.n_links > 1)
                qsort(pl.links, pl.n_links, sizeof pl.links[0], link_cmp);
        for (size_t i = 1; i < pl.n_links; i++) {
                size_t first = i;
                while (first > 0 && pl.links[first - 1].dev == pl.links[i].dev &&
                       pl.links[first - 1].ino == pl.links[i].ino)
                        first--;
                if (first == i)
                        continue;
                uint32_t link = pl.links[first].index;
                memcpy(pl.ops.data + pl.links[i].offset + offsetof(OpRecord, link), &link, sizeof link);
        }

        hdr.n_ops = pl.n_main + pl.n_times;
        hdr.size = pl.ops.size + pl.times.size;
        r = buf_put(&out, &hdr, sizeof hdr);
        if (r >= 0)
                r = buf_put(&out, pl.ops.data, pl.ops.size);
        if (r >= 0)
                r = buf_put(&out, pl.times.data, pl.times.size);
        if (r >= 0) {
                sum = XXH3_64bits(out.data, out.size);
                r = buf_put(&out, &sum, sizeof sum);
        }
        if (r >= 0) {
                *ret = out;
                out = (Buf) {};
        }
finish:
        if (r == -EMEDIUMTYPE && ret_bad_path)
                *ret_bad_path = TAKE_PTR(pl.bad_path);
        free(out.data);
        free(pl.ops.data);
        free(pl.times.data);
        free(pl.links);
        free(pl.bad_path);
        return r;
}

/* Check a plan file (checksum, header, every record) and index it into M. */
static int plan_parse(Merge *m, const uint8_t *data, size_t size, const PlanHeader *want) {
        PlanHeader h;
        uint64_t sum;
        size_t off = sizeof h;

        if (size < sizeof h + sizeof sum)
                return -EILSEQ;
        memcpy(&sum, data + size - sizeof sum, sizeof sum);
        if (sum != XXH3_64bits(data, size - sizeof sum))
                return -EILSEQ;
        memcpy(&h, data, sizeof h);
        if (memcmp(h.magic, PLAN_MAGIC, sizeof h.magic) != 0)
                return -EILSEQ;
        if (h.upper_dev != want->upper_dev || h.upper_ino != want->upper_ino ||
            h.lower_dev != want->lower_dev || h.lower_ino != want->lower_ino || h.flags != want->flags)
                return -ESTALE;
        if (h.n_ops == 0 || h.n_ops > MERGE_OPS_MAX || h.size != size - sizeof h - sizeof sum)
                return -EILSEQ;

        m->ops = calloc(h.n_ops, sizeof *m->ops);
        m->paths = malloc(h.size + h.n_ops);
        if (!m->ops || !m->paths)
                return -ENOMEM;
        char *p = m->paths;
        for (uint32_t i = 0; i < h.n_ops; i++) {
                OpRecord rec;

                if (size - sizeof sum - off < sizeof rec)
                        return -EILSEQ;
                memcpy(&rec, data + off, sizeof rec);
                off += sizeof rec;
                if (rec.type < OP_DIR || rec.type > OP_TIMES || rec.path_len >= PATH_MAX ||
                    size - sizeof sum - off < rec.path_len)
                        return -EILSEQ;
                if (rec.path_len == 0 && rec.type != OP_DIR && rec.type != OP_TIMES)
                        return -EILSEQ;
                if (rec.link != LINK_NONE && (rec.type != OP_PUT || rec.link >= i))
                        return -EILSEQ;
                memcpy(p, data + off, rec.path_len);
                p[rec.path_len] = '\0';
                off += rec.path_len;
                /* Paths are resolved with RESOLVE_BENEATH anyway; reject what we never write. */
                if (strlen(p) != rec.path_len || p[0] == '/' || strstr(p, "//") ||
                    (rec.path_len > 0 && p[rec.path_len - 1] == '/'))
                        return -EILSEQ;
                m->ops[i] = (Op) { .type = rec.type, .flags = rec.flags, .link = rec.link, .path = p };
                p += rec.path_len + 1;
        }
        for (uint32_t i = 0; i < h.n_ops; i++)
                if (m->ops[i].link != LINK_NONE && m->ops[m->ops[i].link].type != OP_PUT)
                        return -EILSEQ;
        if (off != size - sizeof sum)
                return -EILSEQ;
        m->n_ops = h.n_ops;
        return 0;
}

/* ---------------------------------------------------------------- progress */

static int progress_read(int work_fd, uint32_t n_ops, uint32_t *ret) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        uint32_t done = 0;
        int r;

        r = read_file_at(work_fd, PROGRESS_NAME, MERGE_PROGRESS_MAX, &data, &size);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        /* Whole records only: a torn last one (killed during write) is ignored. */
        for (size_t off = 0; off + 8 <= size; off += 8) {
                uint32_t v[2];
                memcpy(v, data + off, sizeof v);
                if (v[1] == ~v[0] && v[0] <= n_ops)
                        done = MAX(done, v[0]);
        }
        *ret = done;
        return 0;
}

static int progress_write(Merge *m, uint32_t done) {
        uint32_t v[2] = { done, ~done };

        if (m->progress_fd < 0) {
                m->progress_fd = openat(m->work_fd, PROGRESS_NAME,
                                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (m->progress_fd < 0)
                        return -errno;
        }
        ssize_t k = write(m->progress_fd, v, sizeof v);
        if (k < 0)
                return -errno;
        return k == sizeof v ? 0 : -EIO;
}

/* ---------------------------------------------------------------- apply */

/* Remove overlay markers (both namespaces) from the staged object NAME: LOWER becomes the merged view. */
static int strip_markers(int work_fd, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *list = NULL;
        size_t size;
        bool removed = false;
        int r;

        fd = open_beneath(work_fd, name, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        r = xattr_list_malloc(fd, &list, &size);
        if (r == -EOPNOTSUPP)
                return 0;
        if (r < 0)
                return r;
        for (const char *x = list; x < list + size; x += strlen(x) + 1) {
                if (!ovl_xattr_is_marker(x, NULL))
                        continue;
                r = xattr_remove(fd, x);
                if (r < 0 && r != -ENODATA)
                        return r;
                removed = true;
        }
        if (removed) {
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int wfd = open_beneath(work_fd, name, O_RDONLY | O_NOFOLLOW, 0);
                        if (wfd < 0)
                                return wfd;
                        if (fsync(wfd) < 0)
                                return -errno;
                }
        }
        return 0;
}

static void op_name(char buf[static 32], const char *prefix, uint32_t i) {
        (void) snprintf(buf, 32, "%s-%" PRIu32, prefix, i);
}

/* Stage a copy of UPPER's UNAME in UP as STAGE_NAME in the work directory, complete and fsync'ed. */
static int stage_copy(Merge *m, int up, const char *uname, const struct stat *ust, const char *stage_name) {
        char tmp[COPYUP_TEMP_NAME_MAX];
        int r;

        r = copyup_make_temp(up, uname, ust, m->work_fd, NULL, OVL_NS_TRUSTED "overlay.", 0, tmp, sizeof tmp);
        if (r < 0)
                return r;
        r = strip_markers(m->work_fd, tmp);
        if (r >= 0)
                r = RET_NERRNO(renameat(m->work_fd, tmp, m->work_fd, stage_name));
        if (r < 0)
                (void) copyup_remove_temp(m->work_fd, tmp);
        else if (S_ISREG(ust->st_mode))
                progress_add(&m->progress, (uint64_t) ust->st_size, 0);
        return r;
}

/* Another name of the same UPPER file was placed in LOWER by op FIRST: link STAGE_NAME to it.
 * 1 if it does not look like that copy (then the caller copies instead). */
static int stage_link(Merge *m, const Op *first, const struct stat *ust, const char *stage_name) {
        _cleanup_close_ int lp = -EBADF;
        const char *lname;
        struct stat st;

        lp = open_parent_beneath(m->lower_fd, first->path, &lname);
        if (lp < 0)
                return lp == -ENOENT ? 1 : lp;
        if (fstatat(lp, lname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 1 : -errno;
        if (!S_ISREG(st.st_mode) || st.st_size != ust->st_size || st.st_mode != ust->st_mode ||
            st.st_uid != ust->st_uid || st.st_gid != ust->st_gid ||
            st.st_mtim.tv_sec != ust->st_mtim.tv_sec || st.st_mtim.tv_nsec != ust->st_mtim.tv_nsec)
                return 1;
        return RET_NERRNO(linkat(lp, lname, m->work_fd, stage_name, 0));
}

/* Remove LOWER's NAME in LP: one rename into the work directory (it disappears atomically, subtree
 * and all), then the slow removal there. */
static int delete_entry(Merge *m, uint32_t i, int lp, const char *name) {
        char trash[32];
        int r;

        op_name(trash, "del", i);
        r = copyup_remove_temp(m->work_fd, trash); /* a leftover of a killed run */
        if (r < 0 && r != -ENOENT)
                return r;
        r = RET_NERRNO(renameat2(lp, name, m->work_fd, trash, RENAME_NOREPLACE));
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return copyup_remove_temp(m->work_fd, trash);
}

static int apply_put(Merge *m, uint32_t i, const Op *op) {
        _cleanup_close_ int up = -EBADF, lp = -EBADF;
        const char *uname, *lname;
        char stage[32];
        struct stat st;
        int r;

        op_name(stage, "op", i);
        lp = open_parent_beneath(m->lower_fd, op->path, &lname);
        if (lp < 0)
                return lp;

        r = RET_NERRNO(fstatat(m->work_fd, stage, &st, AT_SYMLINK_NOFOLLOW));
        if (r < 0 && r != -ENOENT)
                return r;
        /* What a PUT stages is never a directory: this is LOWER's old directory, swapped out by
         * RENAME_EXCHANGE before we were killed. The new object is in place already. */
        if (r >= 0 && S_ISDIR(st.st_mode))
                return copyup_remove_temp(m->work_fd, stage);
        /* A non-directory there is a complete staged copy: it got its name only once complete. */
        if (r == -ENOENT) {
                struct stat ust;

                up = open_parent_beneath(m->upper_fd, op->path, &uname);
                if (up < 0)
                        return up;
                if (fstatat(up, uname, &ust, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (S_ISDIR(ust.st_mode))
                        return -ESTALE; /* UPPER changed under us */
                r = 1;
                if (op->link != LINK_NONE)
                        r = stage_link(m, &m->ops[op->link], &ust, stage);
                if (r > 0)
                        r = stage_copy(m, up, uname, &ust, stage);
                if (r < 0)
                        return r;
        }

        r = RET_NERRNO(fstatat(lp, lname, &st, AT_SYMLINK_NOFOLLOW));
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == -ENOENT || !S_ISDIR(st.st_mode)) {
                /* rename(2) replaces a non-directory atomically. */
                r = RET_NERRNO(renameat(m->work_fd, stage, lp, lname));
                if (r < 0)
                        return r;
                /* Renaming a name onto another link of the same inode does nothing and leaves the
                 * source: a repeated hard-link step. */
                if (unlinkat(m->work_fd, stage, 0) < 0 && errno != ENOENT)
                        return -errno;
                return 0;
        }
        r = RET_NERRNO(renameat2(m->work_fd, stage, lp, lname, RENAME_EXCHANGE));
        if (r < 0)
                return r;
        return copyup_remove_temp(m->work_fd, stage);
}

static int apply_delete(Merge *m, uint32_t i, const Op *op) {
        _cleanup_close_ int lp = -EBADF;
        const char *lname;

        lp = open_parent_beneath(m->lower_fd, op->path, &lname);
        if (lp == -ENOENT)
                return 0;
        if (lp < 0)
                return lp;
        return delete_entry(m, i, lp, lname);
}

static const char *opaque_ns(int upper_dir_fd) {
        if (xattr_get(upper_dir_fd, OVL_NS_TRUSTED "overlay.opaque", NULL, 0) >= 0)
                return OVL_NS_TRUSTED;
        if (xattr_get(upper_dir_fd, OVL_NS_USER "overlay.opaque", NULL, 0) >= 0)
                return OVL_NS_USER;
        return ovl_default_ns();
}

static int xattr_list_or_empty(int fd, char **ret, size_t *ret_size) {
        int r = xattr_list_malloc(fd, ret, ret_size);
        if (r == -EOPNOTSUPP) {
                *ret = NULL;
                *ret_size = 0;
                return 0;
        }
        return r;
}

static bool list_has(const char *list, size_t size, const char *name) {
        for (const char *x = list; x && x < list + size; x += strlen(x) + 1)
                if (streq(x, name))
                        return true;
        return false;
}

/* Give the existing directory DFD the owner, xattrs (but markers) and mode of UFD, one attribute at a
 * time, each only if it differs: the one non-atomic step, idempotent so a re-run converges. */
static int dir_meta(int ufd, int dfd, const Op *op) {
        _cleanup_free_ char *ulist = NULL, *dlist = NULL;
        size_t usize, dsize;
        struct stat ust, dst;
        int r;

        if (fstat(ufd, &ust) < 0 || fstat(dfd, &dst) < 0)
                return -errno;
        /* LOWER's root becomes private before anything of UPPER's lands in it (this is the first
         * operation): UPPER may hold set-id files and devices. Its record takes the mode and owner
         * UPPER's root shows (common/rootattr.h); on disk it stays root's, 0700. */
        bool root = !*op->path;
        if (root) {
                RootAttr logical;
                r = rootattr_logical(ufd, NULL, &logical);
                if (r < 0)
                        return r == -EINVAL ? -EBADMSG : r;
                r = rootattr_make_private(dfd, ovl_default_ns(), &logical);
                if (r < 0)
                        return r;
        }
        /* Owner first: chown may clear set-id bits, which chmod then restores. */
        if (!root && (ust.st_uid != dst.st_uid || ust.st_gid != dst.st_gid) && fchown(dfd, ust.st_uid, ust.st_gid) < 0)
                return -errno;

        r = xattr_list_or_empty(ufd, &ulist, &usize);
        if (r < 0)
                return r;
        r = xattr_list_or_empty(dfd, &dlist, &dsize);
        if (r < 0)
                return r;
        for (const char *x = ulist; x && x < ulist + usize; x += strlen(x) + 1) {
                _cleanup_free_ char *uv = NULL, *dv = NULL;
                size_t uvs, dvs;

                if (!*x || ovl_xattr_is_marker(x, NULL))
                        continue;
                r = xattr_get_malloc(ufd, x, &uv, &uvs);
                if (r == -ENODATA)
                        continue;
                if (r < 0)
                        return r;
                r = xattr_get_malloc(dfd, x, &dv, &dvs);
                if (r >= 0 && uvs == dvs && memcmp(uv, dv, uvs) == 0)
                        continue;
                if (r < 0 && r != -ENODATA)
                        return r;
                r = xattr_set(dfd, x, uv, uvs, 0);
                if (r < 0)
                        return r;
        }
        for (const char *x = dlist; x && x < dlist + dsize; x += strlen(x) + 1) {
                if (!*x || ovl_xattr_is_marker(x, NULL) || list_has(ulist, usize, x))
                        continue;
                r = xattr_remove(dfd, x);
                if (r < 0 && r != -ENODATA)
                        return r;
        }

        /* Mode after the xattrs: setting an ACL rewrites the group bits. */
        if (fstat(dfd, &dst) < 0)
                return -errno;
        if (!root && (dst.st_mode & 07777) != (ust.st_mode & 07777) && fchmod(dfd, ust.st_mode & 07777) < 0)
                return -errno;

        if (op->flags & OPF_OPAQUE) {
                r = ovl_dir_is_opaque(dfd);
                if (r == 0)
                        r = ovl_dir_set_opaque(dfd, opaque_ns(ufd));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Delete every entry of LOWER's directory DFD that UPPER's UFD does not have. */
static int prune(Merge *m, uint32_t i, int ufd, int dfd) {
        _cleanup_(tree_list_free) TreeList ul = {}, dl = {};
        size_t a = 0;
        int r;

        r = tree_list(ufd, &ul);
        if (r < 0)
                return r;
        r = tree_list(dfd, &dl);
        if (r < 0)
                return r;
        for (size_t b = 0; b < dl.n; b++) {
                int c = 1;
                while (a < ul.n && (c = strcmp(ul.entries[a].name, dl.entries[b].name)) < 0)
                        a++;
                if (a < ul.n && c == 0)
                        continue;
                r = delete_entry(m, i, dfd, dl.entries[b].name);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int apply_dir(Merge *m, uint32_t i, const Op *op) {
        _cleanup_close_ int up = -EBADF, lp = -EBADF, ufd = -EBADF, dfd = -EBADF;
        const char *uname, *lname;
        char stage[32];
        bool staged = false, placed = false;
        struct stat st, lst;
        int r;

        if (!*op->path) {
                ufd = openat(m->upper_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                dfd = openat(m->lower_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (ufd < 0 || dfd < 0)
                        return -errno;
                goto meta;
        }

        up = open_parent_beneath(m->upper_fd, op->path, &uname);
        if (up < 0)
                return up;
        lp = open_parent_beneath(m->lower_fd, op->path, &lname);
        if (lp < 0)
                return lp;
        ufd = tree_open_dir(up, uname);
        if (ufd < 0)
                return ufd == -ENOTDIR || ufd == -ELOOP ? -ESTALE : ufd;

        op_name(stage, "op", i);
        r = RET_NERRNO(fstatat(m->work_fd, stage, &st, AT_SYMLINK_NOFOLLOW));
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                if (S_ISDIR(st.st_mode))
                        staged = true;
                /* A DIR stages a directory: a non-directory here is LOWER's old object that
                 * RENAME_EXCHANGE swapped out; the new directory is in place. */
                else if (unlinkat(m->work_fd, stage, 0) < 0)
                        return -errno;
        }

        r = RET_NERRNO(fstatat(lp, lname, &lst, AT_SYMLINK_NOFOLLOW));
        if (r < 0 && r != -ENOENT)
                return r;
        bool exists = r >= 0;
        if (exists && S_ISDIR(lst.st_mode)) {
                if (staged) {
                        r = copyup_remove_temp(m->work_fd, stage);
                        if (r < 0)
                                return r;
                }
        } else {
                if (!staged) {
                        struct stat ust;
                        if (fstat(ufd, &ust) < 0)
                                return -errno;
                        /* An empty directory with UPPER's attributes (copyup copies no children). */
                        r = stage_copy(m, up, uname, &ust, stage);
                        if (r < 0)
                                return r;
                        /* Keeping LOWER a middle layer: a directory that replaces a non-directory must
                         * go on hiding what the layers below have under this name. */
                        if ((m->flags & MERGE_KEEP_WHITEOUTS) && (exists || (op->flags & OPF_OPAQUE))) {
                                _cleanup_close_ int sfd = open_beneath(m->work_fd, stage,
                                                                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
                                if (sfd < 0)
                                        return sfd;
                                r = ovl_dir_set_opaque(sfd, opaque_ns(ufd));
                                if (r < 0)
                                        return r;
                        }
                }
                if (!exists)
                        r = RET_NERRNO(renameat2(m->work_fd, stage, lp, lname, RENAME_NOREPLACE));
                else {
                        r = RET_NERRNO(renameat2(m->work_fd, stage, lp, lname, RENAME_EXCHANGE));
                        if (r >= 0)
                                r = RET_NERRNO(unlinkat(m->work_fd, stage, 0));
                }
                if (r < 0)
                        return r;
                placed = true;
        }
        dfd = tree_open_dir(lp, lname);
        if (dfd < 0)
                return dfd;
meta:
        if (!placed) {
                r = dir_meta(ufd, dfd, op);
                if (r < 0)
                        return r;
        }
        if (op->flags & OPF_EXACT)
                return prune(m, i, ufd, dfd);
        return 0;
}

static int apply_times(Merge *m, const Op *op) {
        _cleanup_close_ int ufd = -EBADF, dfd = -EBADF;
        struct stat ust;

        ufd = open_beneath(m->upper_fd, op->path, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
        if (ufd < 0)
                return ufd;
        dfd = open_beneath(m->lower_fd, op->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (dfd < 0)
                return dfd;
        if (fstat(ufd, &ust) < 0)
                return -errno;
        const struct timespec times[2] = { ust.st_atim, ust.st_mtim };
        return RET_NERRNO(futimens(dfd, times));
}

static int apply_op(Merge *m, uint32_t i) {
        const Op *op = &m->ops[i];

        switch (op->type) {
        case OP_DIR:
                return apply_dir(m, i, op);
        case OP_PUT:
                return apply_put(m, i, op);
        case OP_DELETE:
                return apply_delete(m, i, op);
        case OP_TIMES:
                return apply_times(m, op);
        default:
                return -EILSEQ;
        }
}

/* ---------------------------------------------------------------- work directory */

static bool is_op_name(const char *name) {
        const char *s = startswith(name, "op-");
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* Without a plan, the work directory may only hold what a killed plan phase or a killed clean-up leaves:
 * ".#plan.<pid>" and "progress". Anything else means the directory is not ours. */
static int work_check_fresh(int work_fd) {
        _cleanup_(tree_list_free) TreeList l = {};
        int r;

        r = tree_list(work_fd, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++)
                if (!startswith(l.entries[i].name, ".#" PLAN_NAME ".") && !streq(l.entries[i].name, PROGRESS_NAME))
                        return -ENOTEMPTY;
        for (size_t i = 0; i < l.n; i++) {
                r = copyup_remove_temp(work_fd, l.entries[i].name);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

/* Remove leftovers of a killed run that no operation will look for: temporary copies ("#cu-*"),
 * deleted entries ("del-*"), plan temporaries. Staged "op-N" stay: operation N needs to see them. */
static int work_clean_garbage(int work_fd) {
        _cleanup_(tree_list_free) TreeList l = {};
        int r;

        r = tree_list(work_fd, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                const char *n = l.entries[i].name;
                if (streq(n, PLAN_NAME) || streq(n, PROGRESS_NAME) || is_op_name(n))
                        continue;
                r = copyup_remove_temp(work_fd, n);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

/* 1 if the directory FD is ANC or below it (following ".." up to the root), 0 if not. */
static int is_below(int fd, const struct stat *anc) {
        _cleanup_close_ int cur = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        for (unsigned n = 0; n < MERGE_PARENT_WALK_MAX; n++) {
                struct stat st, pst;
                if (fstat(cur, &st) < 0)
                        return -errno;
                if (st.st_dev == anc->st_dev && st.st_ino == anc->st_ino)
                        return 1;
                int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (parent < 0)
                        return -errno;
                if (fstat(parent, &pst) < 0) {
                        safe_close(parent);
                        return -errno;
                }
                safe_close(cur);
                cur = parent;
                if (pst.st_dev == st.st_dev && pst.st_ino == st.st_ino)
                        return 0; /* the root */
        }
        return -ELOOP;
}

static int mount_id(int fd, uint64_t *ret) {
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0)
                return -errno;
        *ret = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
        return 0;
}

static int work_path(const MergeParams *p, char **ret_parent, char **ret_name) {
        _cleanup_free_ char *lower = NULL, *parent = NULL, *name = NULL;
        int r;

        if (p->workdir)
                return path_split(p->workdir, ret_parent, ret_name);
        lower = realpath(p->lower, NULL);
        if (!lower)
                return -errno;
        r = path_split(lower, &parent, &name);
        if (r < 0)
                return r;
        char *wn;
        if (asprintf(&wn, ".%s.merge", name) < 0)
                return -ENOMEM;
        if (strlen(wn) > NAME_MAX) {
                free(wn);
                return -ENAMETOOLONG;
        }
        *ret_parent = TAKE_PTR(parent);
        *ret_name = wn;
        return 0;
}

static void merge_done(Merge *m) {
        safe_close(m->upper_fd);
        safe_close(m->lower_fd);
        safe_close(m->work_fd);
        safe_close(m->progress_fd);
        free(m->ops);
        free(m->paths);
        free(m->bad_path);
}

int layer_merge(const MergeParams *p, char **ret_path, bool *ret_started) {
        _cleanup_(merge_done) Merge m = {
                .upper_fd = -EBADF, .lower_fd = -EBADF, .work_fd = -EBADF, .progress_fd = -EBADF,
        };
        _cleanup_free_ char *wparent = NULL, *wname = NULL, *plan = NULL;
        _cleanup_close_ int parent_fd = -EBADF;
        struct stat ust, lst, pst, wst;
        uint64_t lower_mnt, parent_mnt;
        bool created = false;
        uint32_t start;
        size_t plan_size;
        int r;

        assert_return(p && p->upper && p->lower, -EINVAL);
        if (ret_started)
                *ret_started = false;
        m.flags = p->flags;

        m.upper_fd = open(p->upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (m.upper_fd < 0)
                return -errno;
        m.lower_fd = open(p->lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (m.lower_fd < 0)
                return -errno;
        if (fstat(m.upper_fd, &ust) < 0 || fstat(m.lower_fd, &lst) < 0)
                return -errno;
        /* Neither may contain the other: the merge would walk or delete what it is writing. */
        r = is_below(m.upper_fd, &lst);
        if (r == 0)
                r = is_below(m.lower_fd, &ust);
        if (r != 0)
                return r > 0 ? -ELOOP : r;

        r = work_path(p, &wparent, &wname);
        if (r < 0)
                return r;
        parent_fd = open(wparent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0)
                return -errno;
        if (fstat(parent_fd, &pst) < 0)
                return -errno;
        /* rename(2) only works within one mount: same device and same mount. */
        r = mount_id(m.lower_fd, &lower_mnt);
        if (r >= 0)
                r = mount_id(parent_fd, &parent_mnt);
        if (r < 0)
                return r;
        if (pst.st_dev != lst.st_dev || lower_mnt != parent_mnt)
                return -EXDEV;
        r = is_below(parent_fd, &lst);
        if (r == 0)
                r = is_below(parent_fd, &ust);
        if (r != 0)
                return r > 0 ? -ELOOP : r;

        if (mkdirat(parent_fd, wname, 0700) >= 0)
                created = true;
        else if (errno != EEXIST)
                return -errno;
        m.work_fd = openat(parent_fd, wname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m.work_fd < 0)
                return -errno;
        if (created && fsync(parent_fd) < 0)
                return -errno;
        if (fstat(m.work_fd, &wst) < 0)
                return -errno;
        if (wst.st_dev != lst.st_dev)
                return -EXDEV;
        /* Staged copies (set-id files of UPPER among them) wait here before their rename into LOWER:
         * nobody else may reach them, whatever mode a --workdir given to us had. */
        if (!rootattr_stat_is_private(&wst) &&
            (fchown(m.work_fd, geteuid(), getegid()) < 0 || fchmod(m.work_fd, 0700) < 0))
                return -errno;
        if ((wst.st_ino == lst.st_ino) || (wst.st_dev == ust.st_dev && wst.st_ino == ust.st_ino))
                return -ELOOP;
        /* One merge per work directory. The lock goes away with the process, also on kill -9. */
        if (flock(m.work_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;

        PlanHeader want = {
                .upper_dev = ust.st_dev, .upper_ino = ust.st_ino,
                .lower_dev = lst.st_dev, .lower_ino = lst.st_ino,
                .flags = p->flags,
        };
        memcpy(want.magic, PLAN_MAGIC, sizeof want.magic);

        r = read_file_at(m.work_fd, PLAN_NAME, sizeof(PlanHeader) + MERGE_PLAN_MAX + 8, &plan, &plan_size);
        if (r == -ENOENT) {
                Buf b = { .max = MERGE_PLAN_MAX };

                r = work_check_fresh(m.work_fd);
                if (r < 0)
                        return r;
                r = plan_build(m.upper_fd, &want, p->flags, &b, ret_path);
                if (r >= 0)
                        r = write_file_atomic_at(m.work_fd, PLAN_NAME, b.data, b.size, 0600);
                if (r < 0) {
                        free(b.data);
                        /* Nothing changed in LOWER: leave no work directory behind either. */
                        m.work_fd = safe_close(m.work_fd);
                        (void) unlinkat(parent_fd, wname, AT_REMOVEDIR);
                        return r;
                }
                plan = (char *) b.data;
                plan_size = b.size;
        } else if (r < 0)
                return r;

        r = plan_parse(&m, (const uint8_t *) plan, plan_size, &want);
        if (r < 0)
                return r;
        free(TAKE_PTR(plan));
        r = progress_read(m.work_fd, m.n_ops, &start);
        if (r < 0)
                return r;
        /* Start a fresh progress file holding just where we are, so that it stays small however often
         * the merge is interrupted. */
        uint32_t rec[2] = { start, ~start };
        r = write_file_atomic_at(m.work_fd, PROGRESS_NAME, rec, sizeof rec, 0600);
        if (r < 0)
                return r;
        r = work_clean_garbage(m.work_fd);
        if (r < 0)
                return r;

        if (ret_started)
                *ret_started = true;
        progress_init(&m.progress, "merge");
        for (uint32_t i = start; i < m.n_ops; i++) {
                r = apply_op(&m, i);
                if (r < 0) {
                        progress_done(&m.progress);
                        log_debug_errno(r, "merge: operation %" PRIu32 " on '%s' failed: %m", i, m.ops[i].path);
                        if (ret_path)
                                *ret_path = strdup(*m.ops[i].path ? m.ops[i].path : ".");
                        return r;
                }
                progress_add(&m.progress, 0, 1);
                if ((i + 1) % PROGRESS_EVERY == 0) {
                        r = progress_write(&m, i + 1);
                        if (r < 0)
                                return r;
                }
        }
        progress_done(&m.progress);

        /* Everything we renamed into LOWER must be on disk before the journal goes: after that, a
         * crash leaves nothing to resume from. */
        if (syncfs(m.lower_fd) < 0)
                return -errno;
        /* The commit point: without a plan the merge is complete. */
        if (unlinkat(m.work_fd, PLAN_NAME, 0) < 0)
                return -errno;
        if (fsync(m.work_fd) < 0)
                return -errno;
        m.progress_fd = safe_close(m.progress_fd);
        r = copyup_clean_workdir(m.work_fd);
        if (r < 0)
                return r;
        /* Removed while we still hold the lock: nobody can start using it in between. */
        if (unlinkat(parent_fd, wname, AT_REMOVEDIR) < 0)
                return -errno;
        return RET_NERRNO(fsync(parent_fd));
}
