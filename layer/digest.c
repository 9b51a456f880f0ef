/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
/* The shared libxxhash picks AVX2/AVX512 at run time; an inlined copy would be built for the
 * baseline (SSE2) and, at about half the speed, become the limit on cached data. */
#include <xxh_x86dispatch.h>
#endif

#include "buf.h"
#include "digest.h"
#include "macro.h"
#include "ovl.h"
#include "rootattr.h"
#include "tree.h"
#include "xattr.h"

/* Big enough that read() syscalls do not dominate, small enough to stay in L1/L2 between the copy out of
 * the page cache and the hash: measured here, 64 KiB reads ran 1.5x faster than 128 KiB ones. */
#define IO_BUFFER_SIZE (64 * 1024)

static int buf_u8(Buf *b, uint8_t v) {
        return buf_put(b, &v, 1);
}

static int buf_u32(Buf *b, uint32_t v) {
        uint8_t le[4] = { v, v >> 8, v >> 16, v >> 24 };
        return buf_put(b, le, sizeof(le));
}

static int buf_u64(Buf *b, uint64_t v) {
        uint8_t le[8];
        for (size_t i = 0; i < 8; i++)
                le[i] = v >> (8 * i);
        return buf_put(b, le, sizeof(le));
}

static void hash_to_bytes(XXH128_hash_t h, uint8_t out[LAYER_DIGEST_SIZE]) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, h);
        memcpy(out, c.digest, LAYER_DIGEST_SIZE);
}

struct LayerDigestCombiner {
        XXH3_state_t *state;
};

LayerDigestCombiner *layer_digest_combiner_new(void) {
        LayerDigestCombiner *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        c->state = XXH3_createState();
        if (!c->state) {
                free(c);
                return NULL;
        }
        XXH3_128bits_reset(c->state);
        return c;
}

void layer_digest_combiner_add(LayerDigestCombiner *c, const uint8_t hash[LAYER_DIGEST_SIZE]) {
        XXH3_128bits_update(c->state, hash, LAYER_DIGEST_SIZE);
}

void layer_digest_combiner_finish(LayerDigestCombiner *c, uint8_t ret[LAYER_DIGEST_SIZE]) {
        hash_to_bytes(XXH3_128bits_digest(c->state), ret);
}

void layer_digest_combiner_free(LayerDigestCombiner *c) {
        if (!c)
                return;
        XXH3_freeState(c->state);
        free(c);
}


typedef struct Walk {
        unsigned flags;
        LayerDigestEntryFn on_entry;
        void *userdata;
        Progress *progress;
        LayerDigestCombiner *total;
        XXH3_state_t *content;
        uint8_t *io;
        Buf rec;
        Buf path; /* NUL-terminated current path */
} Walk;

static int hash_content(Walk *w, int fd, const struct stat *st, uint8_t out[LAYER_DIGEST_SIZE]) {
        /* Only worth a syscall where a cold read would profit from a larger readahead. */
        if (st->st_size >= (off_t) (8 * IO_BUFFER_SIZE))
                (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        XXH3_128bits_reset(w->content);
        uint64_t total = 0;
        for (;;) {
                ssize_t n = read(fd, w->io, IO_BUFFER_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                XXH3_128bits_update(w->content, w->io, (size_t) n);
                total += (uint64_t) n;
                if (w->progress)
                        progress_add(w->progress, (uint64_t) n, 0);
                if (total > (uint64_t) st->st_size)
                        break;
        }
        /* A file that grew or shrank under us has no well-defined digest. */
        if (total != (uint64_t) st->st_size)
                return -ESTALE;
        hash_to_bytes(XXH3_128bits_digest(w->content), out);
        return 0;
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The object's xattr names, listed once per object: most objects have none or a few, so a buffer on
 * the stack saves the size probe; *heap is set only when the list does not fit. */
typedef struct XattrNames {
        char stack[1024];
        char *heap;
        const char *list;
        size_t size;
} XattrNames;

static int xattr_names_read(int fd, XattrNames *x) {
        ssize_t n = xattr_list(fd, x->stack, sizeof(x->stack));
        if (n >= 0) {
                x->list = x->stack;
                x->size = (size_t) n;
                return 0;
        }
        if (n == -EOPNOTSUPP) {
                x->list = x->stack;
                x->size = 0;
                return 0;
        }
        if (n != -ERANGE)
                return (int) n;
        int r = xattr_list_malloc(fd, &x->heap, &x->size);
        if (r < 0)
                return r;
        x->list = x->heap;
        return 0;
}

static bool xattr_names_have(const XattrNames *x, const char *name) {
        for (size_t i = 0; i < x->size; i += strlen(x->list + i) + 1)
                if (streq(x->list + i, name))
                        return true;
        return false;
}

/* The xattr section: count, then (name, NUL, len, value) sorted by name, overlay markers left out. */
static int add_xattrs(Walk *w, int fd, const XattrNames *x) {
        size_t n = 0;
        for (size_t i = 0; i < x->size; i += strlen(x->list + i) + 1)
                n++;
        if (n == 0)
                return buf_u32(&w->rec, 0);
        _cleanup_free_ const char **names = calloc(n, sizeof(char *));
        if (!names)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < x->size; i += strlen(x->list + i) + 1)
                if (x->list[i] != 0 && !ovl_xattr_is_marker(x->list + i, NULL))
                        names[k++] = x->list + i;
        qsort(names, k, sizeof(char *), cmp_strp);

        int r = buf_u32(&w->rec, (uint32_t) k);
        for (size_t i = 0; r >= 0 && i < k; i++) {
                _cleanup_free_ char *value = NULL;
                size_t value_size = 0;
                r = xattr_get_malloc(fd, names[i], &value, &value_size);
                if (r < 0)
                        return r == -ENODATA ? -ESTALE : r;
                r = buf_put(&w->rec, names[i], strlen(names[i]) + 1);
                if (r >= 0)
                        r = buf_u32(&w->rec, (uint32_t) value_size);
                if (r >= 0)
                        r = buf_put(&w->rec, value, value_size);
        }
        return r;
}

/* A marker of the directory at FD in either namespace, trusted first: *ret malloc'd or NULL. */
static int get_marker(int fd, const XattrNames *x, const char *suffix, char **ret, size_t *ret_size) {
        static const char *const ns[] = { OVL_NS_TRUSTED, OVL_NS_USER };
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                char name[64];
                snprintf(name, sizeof(name), "%soverlay.%s", ns[i], suffix);
                if (!xattr_names_have(x, name))
                        continue;
                int r = xattr_get_malloc(fd, name, ret, ret_size);
                if (r >= 0)
                        return 1;
                return r == -ENODATA ? -ESTALE : r;
        }
        *ret = NULL;
        *ret_size = 0;
        return 0;
}

static int add_dir_markers(Walk *w, int fd, const XattrNames *x) {
        _cleanup_free_ char *opaque = NULL, *redirect = NULL;
        size_t opaque_size, redirect_size;
        int r = get_marker(fd, x, "opaque", &opaque, &opaque_size);
        if (r < 0)
                return r;
        r = buf_u8(&w->rec, opaque && opaque_size == 1 && opaque[0] == 'y');
        if (r < 0)
                return r;
        r = get_marker(fd, x, "redirect", &redirect, &redirect_size);
        if (r < 0)
                return r;
        r = buf_u32(&w->rec, (uint32_t) redirect_size);
        if (r >= 0)
                r = buf_put(&w->rec, redirect, redirect_size);
        return r;
}

static char type_char(const struct stat *st) {
        if (ovl_is_whiteout(st))
                return 'w';
        switch (st->st_mode & S_IFMT) {
        case S_IFREG:  return 'f';
        case S_IFDIR:  return 'd';
        case S_IFLNK:  return 'l';
        case S_IFCHR:  return 'c';
        case S_IFBLK:  return 'b';
        case S_IFIFO:  return 'p';
        case S_IFSOCK: return 's';
        default:       return 0;
        }
}

static int emit(Walk *w) {
        uint8_t h[LAYER_DIGEST_SIZE];
        hash_to_bytes(XXH3_128bits(w->rec.data, w->rec.size), h);
        layer_digest_combiner_add(w->total, h);
        if (w->progress)
                progress_add(w->progress, 0, 1);
        return w->on_entry ? w->on_entry((const char *) w->path.data, h, w->userdata) : 0;
}

static bool same_inode(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
               (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT);
}

static int walk_dir(Walk *w, int dirfd, unsigned depth);

/* Record the object NAME in PARENT_FD (lstat ST), whose path is in w->path; SELF_FD is the object's
 * own directory fd for the root (NAME NULL). */
static int walk_object(Walk *w, int parent_fd, const char *name, int self_fd, const struct stat *st,
                       unsigned depth) {
        char t = type_char(st);
        if (t == 0)
                return -EBADMSG;

        w->rec.size = 0;
        int r = buf_put(&w->rec, w->path.data, strlen((const char *) w->path.data) + 1);
        if (r >= 0)
                r = buf_u8(&w->rec, (uint8_t) t);
        if (r < 0)
                return r;
        if (t == 'w')
                /* A whiteout means "deleted": its own mode, owner and times carry nothing. */
                return emit(w);

        _cleanup_close_ int fd = -EBADF;
        if (self_fd >= 0)
                fd = fcntl(self_fd, F_DUPFD_CLOEXEC, 3);
        else if (t == 'f')
                fd = openat(parent_fd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        else if (t == 'd')
                fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        else
                fd = openat(parent_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat fst;
        if (fstat(fd, &fst) < 0)
                return -errno;
        if (!same_inode(st, &fst))
                return -ESTALE;
        _cleanup_free_ char *xheap = NULL;
        XattrNames x = {};
        r = xattr_names_read(fd, &x);
        xheap = x.heap;
        if (r < 0)
                return r;
        /* A metacopy file (overlay.metacopy) holds metadata only; its data is in a layer below, which
         * this walk does not have: its content cannot be digested here. */
        if (t == 'f' && (xattr_names_have(&x, OVL_NS_TRUSTED "overlay.metacopy") ||
                         xattr_names_have(&x, OVL_NS_USER "overlay.metacopy")))
                return -EMEDIUMTYPE;

        uint64_t size = t == 'f' || t == 'l' ? (uint64_t) st->st_size : 0;
        r = buf_u32(&w->rec, st->st_mode & 07777);
        if (r >= 0)
                r = buf_u32(&w->rec, st->st_uid);
        if (r >= 0)
                r = buf_u32(&w->rec, st->st_gid);
        if (r >= 0)
                r = buf_u64(&w->rec, size);
        if (r < 0)
                return r;

        if (t == 'f') {
                uint8_t h[LAYER_DIGEST_SIZE];
                r = hash_content(w, fd, st, h);
                if (r >= 0)
                        r = buf_put(&w->rec, h, sizeof(h));
        } else if (t == 'l') {
                if (st->st_size <= 0 || st->st_size > 65536)
                        return -EBADMSG;
                char target[65537];
                ssize_t n = readlinkat(fd, "", target, sizeof(target));
                if (n < 0)
                        return -errno;
                if (n != st->st_size)
                        return -ESTALE;
                r = buf_put(&w->rec, target, (size_t) n);
        } else if (t == 'c' || t == 'b') {
                r = buf_u32(&w->rec, major(st->st_rdev));
                if (r >= 0)
                        r = buf_u32(&w->rec, minor(st->st_rdev));
        }
        if (r >= 0 && (w->flags & LAYER_DIGEST_MTIME)) {
                r = buf_u64(&w->rec, (uint64_t) (int64_t) st->st_mtim.tv_sec);
                if (r >= 0)
                        r = buf_u32(&w->rec, (uint32_t) st->st_mtim.tv_nsec);
        }
        if (r >= 0 && t == 'd')
                r = add_dir_markers(w, fd, &x);
        if (r >= 0)
                r = add_xattrs(w, fd, &x);
        if (r >= 0)
                r = emit(w);
        if (r < 0 || t != 'd')
                return r;

        if (depth >= LAYER_DIGEST_MAX_DEPTH)
                return -ELOOP;
        return walk_dir(w, fd, depth + 1);
}

static int walk_dir(Walk *w, int dirfd, unsigned depth) {
        _cleanup_(tree_list_free) TreeList l = {};
        int r = tree_list(dirfd, &l);
        if (r < 0)
                return r;

        size_t base = strlen((const char *) w->path.data);
        for (size_t i = 0; i < l.n; i++) {
                /* path = parent + "/" + name, the root's children without a doubled slash */
                w->path.size = base;
                if (base != 1)
                        r = buf_u8(&w->path, '/');
                if (r >= 0)
                        r = buf_put(&w->path, l.entries[i].name, strlen(l.entries[i].name) + 1);
                if (r >= 0)
                        r = walk_object(w, dirfd, l.entries[i].name, -EBADF, &l.entries[i].st, depth);
                if (r < 0)
                        return r;
        }
        w->path.data[base] = 0;
        w->path.size = base + 1;
        return 0;
}

int layer_digest(int dirfd, unsigned flags, LayerDigestEntryFn on_entry, void *userdata, Progress *progress,
                 uint8_t ret[LAYER_DIGEST_SIZE], char **ret_failed_path) {
        struct stat st;
        if (fstat(dirfd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;

        _cleanup_(layer_digest_combiner_freep) LayerDigestCombiner *total = layer_digest_combiner_new();
        Walk w = {
                .flags = flags,
                .on_entry = on_entry,
                .userdata = userdata,
                .progress = progress,
                .total = total,
                .content = XXH3_createState(),
                .io = malloc(IO_BUFFER_SIZE),
        };
        int r = total && w.content && w.io ? buf_put(&w.path, "/", 2) : -ENOMEM;
        if (r >= 0) {
                /* A private root counts with the mode and owner it shows (its record), so that making
                 * a layer's root private does not change its digest. */
                RootAttr a;
                int k = rootattr_read(dirfd, NULL, &a);
                if (k > 0) {
                        st.st_mode = (st.st_mode & S_IFMT) | a.mode;
                        st.st_uid = a.uid;
                        st.st_gid = a.gid;
                } else if (k < 0)
                        r = k == -EINVAL ? -EBADMSG : k;
        }
        if (r >= 0)
                r = walk_object(&w, -EBADF, NULL, dirfd, &st, 0);
        if (r >= 0)
                layer_digest_combiner_finish(total, ret);
        else if (ret_failed_path && w.path.data)
                *ret_failed_path = strdup((const char *) w.path.data);

        XXH3_freeState(w.content);
        free(w.io);
        buf_free(&w.rec);
        buf_free(&w.path);
        return r;
}

char *layer_digest_format(const uint8_t d[LAYER_DIGEST_SIZE], char buf[static LAYER_DIGEST_STRING_MAX]) {
        char *p = stpcpy(buf, LAYER_DIGEST_PREFIX);
        for (size_t i = 0; i < LAYER_DIGEST_SIZE; i++)
                p += sprintf(p, "%02x", d[i]);
        return buf;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int layer_digest_parse(const char *s, uint8_t ret[LAYER_DIGEST_SIZE]) {
        const char *h = startswith(s, LAYER_DIGEST_PREFIX);
        if (!h || strlen(h) != 2 * LAYER_DIGEST_SIZE)
                return -EINVAL;
        for (size_t i = 0; i < LAYER_DIGEST_SIZE; i++) {
                int hi = unhex(h[2 * i]), lo = unhex(h[2 * i + 1]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                ret[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

char *layer_path_escape(const char *path) {
        size_t len = strlen(path);
        if (len > (SIZE_MAX - 1) / 4)
                return NULL;
        char *out = malloc(4 * len + 1), *p = out;
        if (!out)
                return NULL;
        for (const unsigned char *s = (const unsigned char *) path; *s; s++) {
                if (*s == '\\') {
                        *p++ = '\\';
                        *p++ = '\\';
                } else if (*s < 0x20 || *s >= 0x7f)
                        p += sprintf(p, "\\x%02x", *s);
                else
                        *p++ = (char) *s;
        }
        *p = 0;
        return out;
}

int layer_path_unescape(const char *s, char **ret) {
        char *out = malloc(strlen(s) + 1), *p = out;
        if (!out)
                return -ENOMEM;
        for (; *s; s++) {
                if (*s != '\\') {
                        *p++ = *s;
                        continue;
                }
                if (s[1] == '\\') {
                        *p++ = '\\';
                        s++;
                } else if (s[1] == 'x' && s[2] && s[3] && unhex(s[2]) >= 0 && unhex(s[3]) >= 0 &&
                           (unhex(s[2]) | unhex(s[3])) != 0) {
                        *p++ = (char) (unhex(s[2]) << 4 | unhex(s[3]));
                        s += 3;
                } else {
                        free(out);
                        return -EINVAL;
                }
        }
        *p = 0;
        *ret = out;
        return 0;
}

int layer_path_compare(const char *a, const char *b) {
        for (;; a++, b++) {
                unsigned char ca = (unsigned char) *a, cb = (unsigned char) *b;
                if (ca == cb) {
                        if (ca == 0)
                                return 0;
                        continue;
                }
                /* '/' ends a component: it sorts before any byte a longer component could have. */
                int ka = ca == '/' ? 1 : ca == 0 ? 0 : ca + 1;
                int kb = cb == '/' ? 1 : cb == 0 ? 0 : cb + 1;
                return ka < kb ? -1 : 1;
        }
}
