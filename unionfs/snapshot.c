/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Online snapshot of the upper layer; see snapshot.h. Library code: returns -errno, never logs.
 *
 * The copy is built in a temporary directory beside DEST and renamed to DEST when complete, so DEST
 * either does not exist or is whole. While the upper is read, ns_lock and change_lock are held
 * exclusively: every change through the mount (names, attributes, xattrs, copy-ups under ns_lock; data
 * writes under change_lock) waits, so the copy shows the upper between two operations.
 *
 * To keep that pause short, a regular file is hard-linked into the copy instead of copied when it can
 * be (same file system, one name in the upper, no handle of ours open for writing on it) and recorded
 * in Union.shared; before anything changes it through the mount, cow_unshare() gives the upper name a
 * copy of its own ("break before change"), so the snapshot's inode never changes after the pause.
 * Everything else (directories, symlinks, devices, whiteouts, hard-link groups, files open for
 * writing) is copied during the pause, as a copy made later could see later writes. Flushing the
 * copy to disk (syncfs) and the final rename happen after the locks are dropped.
 *
 * Hard links inside the upper stay hard links in the copy. Objects are copied with copyup_make_temp(),
 * every xattr included (the overlay's own markers are the point of the copy), and never followed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "copyup.h"
#include "fs.h"
#include "macro.h"
#include "snapshot.h"
#include "union.h"

#define SNAPSHOT_DEPTH_MAX 256   /* directories open at once during the walk (one fd each) */
#define SNAPSHOT_PARENTS_MAX 4096 /* ".." steps when checking that DEST is outside the layers */
#define LINK_BUCKETS 1024

static atomic_ulong snapshot_counter = 0;

/* ---------- (dev, ino) counts: Union.writers and Union.shared ---------- */

struct InoCountEntry {
        dev_t dev;
        ino_t ino;
        uint64_t count;
        InoCountEntry *next;
};

int inocount_init(InoCount *c) {
        pthread_mutex_init(&c->lock, NULL);
        c->n_buckets = 256;
        c->n_entries = 0;
        c->buckets = calloc(c->n_buckets, sizeof(InoCountEntry *));
        return c->buckets ? 0 : -ENOMEM;
}

void inocount_done(InoCount *c) {
        if (!c->buckets)
                return;
        for (size_t b = 0; b < c->n_buckets; b++)
                while (c->buckets[b]) {
                        InoCountEntry *e = c->buckets[b];
                        c->buckets[b] = e->next;
                        free(e);
                }
        free(c->buckets);
        c->buckets = NULL;
        pthread_mutex_destroy(&c->lock);
}

static size_t inocount_bucket(size_t n_buckets, dev_t dev, ino_t ino) {
        uint64_t h = ((uint64_t) ino * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t) dev * 0xC2B2AE3D27D4EB4FULL);
        return (size_t) (h ^ (h >> 29)) & (n_buckets - 1);
}

/* Called with the lock held. */
static InoCountEntry **inocount_find(InoCount *c, dev_t dev, ino_t ino) {
        InoCountEntry **e = &c->buckets[inocount_bucket(c->n_buckets, dev, ino)];
        for (; *e; e = &(*e)->next)
                if ((*e)->dev == dev && (*e)->ino == ino)
                        break;
        return e;
}

static void inocount_grow(InoCount *c) {
        size_t nn = c->n_buckets * 2;
        InoCountEntry **nb = calloc(nn, sizeof(InoCountEntry *));
        if (!nb)
                return; /* longer chains, still correct */
        for (size_t b = 0; b < c->n_buckets; b++)
                while (c->buckets[b]) {
                        InoCountEntry *e = c->buckets[b];
                        c->buckets[b] = e->next;
                        size_t k = inocount_bucket(nn, e->dev, e->ino);
                        e->next = nb[k];
                        nb[k] = e;
                }
        free(c->buckets);
        c->buckets = nb;
        c->n_buckets = nn;
}

/* Unlink the entry *E points at and free it; c->lock held. */
static void inocount_drop(InoCount *c, InoCountEntry **e) {
        InoCountEntry *x = *e;
        *e = x->next;
        free(x);
        __atomic_store_n(&c->n_entries, c->n_entries - 1, __ATOMIC_RELEASE);
}

int inocount_add(InoCount *c, dev_t dev, ino_t ino, int delta) {
        int r = 0;

        pthread_mutex_lock(&c->lock);
        InoCountEntry **e = inocount_find(c, dev, ino);
        if (*e) {
                if (delta < 0 && (*e)->count <= (uint64_t) -delta)
                        inocount_drop(c, e);
                else
                        (*e)->count += (uint64_t) (int64_t) delta;
        } else if (delta > 0) {
                InoCountEntry *x = malloc(sizeof *x);
                if (!x)
                        r = -ENOMEM;
                else {
                        *x = (InoCountEntry) { .dev = dev, .ino = ino, .count = (uint64_t) delta, .next = NULL };
                        *e = x;
                        __atomic_store_n(&c->n_entries, c->n_entries + 1, __ATOMIC_RELEASE);
                        if (c->n_entries > c->n_buckets * 2)
                                inocount_grow(c);
                }
        }
        pthread_mutex_unlock(&c->lock);
        return r;
}

bool inocount_has(InoCount *c, dev_t dev, ino_t ino) {
        if (inocount_empty(c))
                return false;
        pthread_mutex_lock(&c->lock);
        bool found = *inocount_find(c, dev, ino) != NULL;
        pthread_mutex_unlock(&c->lock);
        return found;
}

bool inocount_remove(InoCount *c, dev_t dev, ino_t ino) {
        if (inocount_empty(c))
                return false;
        pthread_mutex_lock(&c->lock);
        InoCountEntry **e = inocount_find(c, dev, ino);
        bool found = *e != NULL;
        if (found)
                inocount_drop(c, e);
        pthread_mutex_unlock(&c->lock);
        return found;
}

void snapshot_fix_nlink(Union *u, struct stat *st) {
        if (S_ISREG(st->st_mode) && st->st_nlink > 1 && inocount_has(&u->shared, st->st_dev, st->st_ino))
                st->st_nlink = 1;
}

static void shared_key(char buf[static 64], dev_t dev, ino_t ino) {
        (void) snprintf(buf, 64, "%llx-%llx", (unsigned long long) dev, (unsigned long long) ino);
}

bool snapshot_unshared(Union *u, dev_t dev, ino_t ino) {
        char key[64];

        if (!inocount_remove(&u->shared, dev, ino))
                return false;
        shared_key(key, dev, ino);
        (void) unlinkat(u->shared_fd, key, 0);
        return true;
}

int snapshot_load_shared(Union *u) {
        _cleanup_closedir_ DIR *d = NULL;
        int fd, r;

        fd = open_beneath(u->shared_fd, ".", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        for (;;) {
                struct dirent *de;
                struct stat st;
                char key[64];

                errno = 0;
                de = readdir(d);
                if (!de)
                        return -errno;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                shared_key(key, st.st_dev, st.st_ino);
                if (!S_ISREG(st.st_mode) || st.st_nlink == 1 || !streq(key, de->d_name)) {
                        /* Nobody else holds it any more (or it is not ours): drop it. */
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                return -errno;
                        continue;
                }
                r = inocount_add(&u->shared, st.st_dev, st.st_ino, 1);
                if (r < 0)
                        return r;
        }
}

/* ---------- the copy ---------- */

/* An upper inode with more than one name, by where its first name went in the copy. */
typedef struct LinkEntry {
        dev_t dev;
        ino_t ino;
        char *path; /* relative to the copy's root */
        struct LinkEntry *next;
} LinkEntry;

typedef struct Walk {
        Union *u;
        int root_fd;      /* the copy's root */
        dev_t root_dev;   /* ... never copied into itself */
        ino_t root_ino;
        bool can_link;    /* the copy is on the upper's file system: files may be hard-linked */
        LinkEntry *links[LINK_BUCKETS];
        uint64_t entries, linked;
        struct { dev_t dev; ino_t ino; char *path; } *shared; /* added to Union.shared by this walk */
        size_t n_shared, n_shared_alloc;
} Walk;

static void walk_done(Walk *w) {
        for (size_t i = 0; i < w->n_shared; i++)
                free(w->shared[i].path);
        free(w->shared);
        for (size_t i = 0; i < LINK_BUCKETS; i++)
                while (w->links[i]) {
                        LinkEntry *e = w->links[i];
                        w->links[i] = e->next;
                        free(e->path);
                        free(e);
                }
}

static size_t link_bucket(dev_t dev, ino_t ino) {
        return (size_t) ((ino * 0x9E3779B97F4A7C15ULL) ^ dev) % LINK_BUCKETS;
}

static const char *link_find(Walk *w, const struct stat *st) {
        for (LinkEntry *e = w->links[link_bucket(st->st_dev, st->st_ino)]; e; e = e->next)
                if (e->dev == st->st_dev && e->ino == st->st_ino)
                        return e->path;
        return NULL;
}

static int link_add(Walk *w, const struct stat *st, const char *path) {
        LinkEntry *e = calloc(1, sizeof *e);
        size_t b = link_bucket(st->st_dev, st->st_ino);

        if (!e)
                return -ENOMEM;
        e->path = strdup(path);
        if (!e->path) {
                free(e);
                return -ENOMEM;
        }
        e->dev = st->st_dev;
        e->ino = st->st_ino;
        e->next = w->links[b];
        w->links[b] = e;
        return 0;
}

static int join(const char *dir, const char *name, char **ret) {
        if (asprintf(ret, "%s%s%s", dir, *dir ? "/" : "", name) < 0)
                return -ENOMEM;
        return 0;
}

static int copy_dir(Walk *w, int src_fd, int dst_fd, const char *rel, unsigned depth);

/* Hard-link the regular file NAME (ST) of SRC_FD into DST_FD instead of copying it, and record it as
 * shared: 1 if done, 0 if the file must be copied. Only a file with a single name (a hard-link group
 * keeps its own links: a link to it would join the snapshot to the group) that no handle of ours may
 * write (every change of it through the mount then breaks the sharing first, see cow_unshare()). */
static int link_entry(Walk *w, int src_fd, int dst_fd, const char *name, const char *path, const struct stat *st) {
        struct stat lst;
        int r;

        if (!w->can_link || !S_ISREG(st->st_mode))
                return 0;
        /* Shared already (with an older snapshot, or its snapshot was deleted): its links are
         * that snapshot's and ours, and it is broken before any change anyway. */
        bool was_shared = inocount_has(&w->u->shared, st->st_dev, st->st_ino);
        if ((st->st_nlink != 1 && !was_shared) || inocount_has(&w->u->writers, st->st_dev, st->st_ino))
                return 0;
        if (w->n_shared == w->n_shared_alloc) {
                size_t n = MAX(w->n_shared_alloc * 2, (size_t) 64);
                void *p = reallocarray(w->shared, n, sizeof w->shared[0]);
                if (!p)
                        return -ENOMEM;
                w->shared = p;
                w->n_shared_alloc = n;
        }
        /* flags 0: never follows a symlink (NAME was a regular file when stat'ed; checked below). */
        if (linkat(src_fd, name, dst_fd, name, 0) < 0) {
                /* Copy instead: another mount of the same file system (EXDEV: so will every other
                 * file), a file we may not link (protected_hardlinks, a server without CAP_FOWNER),
                 * too many links. */
                if (errno == EXDEV)
                        w->can_link = false;
                return errno == EXDEV || errno == EPERM || errno == EMLINK ? 0 : -errno;
        }
        if (fstatat(dst_fd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (lst.st_dev != st->st_dev || lst.st_ino != st->st_ino)
                return -ESTALE; /* the upper changed under the mount */
        w->linked++;
        w->entries++;
        /* Counted once per snapshot sharing it: a failed snapshot takes back only its own share. */
        char *p = was_shared ? NULL : strdup(path);
        if (!was_shared && !p)
                return -ENOMEM;
        r = inocount_add(&w->u->shared, st->st_dev, st->st_ino, 1);
        if (r < 0) {
                free(p);
                return r;
        }
        w->shared[w->n_shared].dev = st->st_dev;
        w->shared[w->n_shared].ino = st->st_ino;
        w->shared[w->n_shared].path = p;
        w->n_shared++;
        return 1;
}

/* Copy NAME of SRC_FD (a directory being read) into DST_FD, and a directory's contents after it. */
static int copy_entry(Walk *w, int src_fd, int dst_fd, const char *rel, const char *name, unsigned depth) {
        _cleanup_free_ char *path = NULL;
        char tmp[COPYUP_TEMP_NAME_MAX];
        struct stat st;
        int r;

        if (fstatat(src_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode) && st.st_dev == w->root_dev && st.st_ino == w->root_ino)
                return 0; /* the copy itself: refused up front, but never recurse into it */
        r = join(rel, name, &path);
        if (r < 0)
                return r;

        bool linked = !S_ISDIR(st.st_mode) && st.st_nlink > 1;
        if (linked) {
                const char *first = link_find(w, &st);
                if (first) {
                        /* The copy's root is ours and fresh; AT flags 0: a symlink is linked as itself. */
                        if (linkat(w->root_fd, first, dst_fd, name, 0) < 0)
                                return -errno;
                        w->entries++;
                        return 0;
                }
        }

        r = link_entry(w, src_fd, dst_fd, name, path, &st);
        if (r != 0)
                return r < 0 ? r : 0;

        /* No fsync per file: one syncfs() of the whole copy after the pause. */
        r = copyup_make_temp(src_fd, name, &st, dst_fd, NULL, NULL, COPYUP_NO_FSYNC, tmp, sizeof tmp);
        if (r < 0)
                return r;
        if (renameat2(dst_fd, tmp, dst_fd, name, RENAME_NOREPLACE) < 0) {
                r = -errno;
                (void) copyup_remove_temp(dst_fd, tmp);
                return r;
        }
        w->entries++;
        if (linked)
                return link_add(w, &st, path);
        if (!S_ISDIR(st.st_mode))
                return 0;

        if (depth >= SNAPSHOT_DEPTH_MAX)
                return -ELOOP;
        _cleanup_close_ int sub_src = open_beneath(src_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (sub_src < 0)
                return sub_src;
        _cleanup_close_ int sub_dst = open_beneath(dst_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (sub_dst < 0)
                return sub_dst;
        r = copy_dir(w, sub_src, sub_dst, path, depth + 1);
        if (r < 0)
                return r;
        /* Adding the children changed the copy's mtime. */
        const struct timespec times[2] = { st.st_atim, st.st_mtim };
        return RET_NERRNO(futimens(sub_dst, times));
}

/* Copy the contents of SRC_FD into DST_FD. Both are real (not O_PATH) directory fds, kept open. */
static int copy_dir(Walk *w, int src_fd, int dst_fd, const char *rel, unsigned depth) {
        _cleanup_closedir_ DIR *d = NULL;
        int fd, r;

        fd = fcntl(src_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                return r;
        }
        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de)
                        return -errno;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = copy_entry(w, dirfd(d), dst_fd, rel, de->d_name, depth);
                if (r < 0)
                        return r;
        }
}

/* The root of the copy gets the upper root's xattrs (an opaque root, say) and times, and stays private
 * (common/rootattr.h): owned by us, mode 0700, with the mode and owner the upper's root shows (its
 * record, or its own) in its record. A set-id file or device a sandbox made is then no more reachable
 * by other users in the copy than in the upper. */
static int copy_root_attrs(Union *u, int upper_fd, int dst_fd) {
        const char *ns = startswith(u->xattr_prefix, ROOTATTR_NS_USER) ? ROOTATTR_NS_USER : ROOTATTR_NS_TRUSTED;
        RootAttr logical;
        struct stat st;
        int r;

        if (fstat(upper_fd, &st) < 0)
                return -errno;
        r = rootattr_logical(upper_fd, ns, &logical);
        if (r < 0)
                return r;
        r = copyup_xattrs(upper_fd, dst_fd, NULL);
        if (r < 0)
                return r;
        r = rootattr_make_private(dst_fd, ns, &logical);
        if (r < 0)
                return r;
        const struct timespec times[2] = { st.st_atim, st.st_mtim };
        return RET_NERRNO(futimens(dst_fd, times));
}

static bool same_inode(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* -EINVAL if DIR_FD is a layer, the workdir, or below one of them: the copy would contain itself, or
 * change a layer under the mount. Walks up with "..", in the server's view of the file system. */
static int check_outside_layers(Union *u, int dir_fd) {
        struct stat forbidden[UNION_MAX_LOWER + 2];
        size_t n = 0;
        _cleanup_close_ int fd = -EBADF;

        for (size_t i = 0; i < u->n_layers; i++)
                if (fstat(u->layers[i].fd, &forbidden[n++]) < 0)
                        return -errno;
        if (u->work_fd >= 0) {
                /* work_fd is workdir/work: its parent is the workdir the user named. */
                _cleanup_close_ int wfd = openat(u->work_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (wfd < 0 || fstat(wfd, &forbidden[n++]) < 0)
                        return -errno;
        }

        fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        for (unsigned step = 0; step < SNAPSHOT_PARENTS_MAX; step++) {
                struct stat st, pst;

                if (fstat(fd, &st) < 0)
                        return -errno;
                for (size_t i = 0; i < n; i++)
                        if (same_inode(&st, &forbidden[i]))
                                return -EINVAL;
                int pfd = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (pfd < 0)
                        return -errno;
                if (fstat(pfd, &pst) < 0) {
                        safe_close(pfd);
                        return -errno;
                }
                safe_close(fd);
                fd = pfd;
                if (same_inode(&st, &pst))
                        return 0; /* the root */
        }
        return -ELOOP;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* Split the absolute DEST into its parent (a new string) and last component (inside DEST). */
static int split_dest(const char *dest, char **ret_parent, char **ret_name) {
        size_t len = strnlen(dest, PATH_MAX);

        /* A protocol field: absolute, and naming the entry exactly (no trailing '/'). */
        if (len == 0 || len >= PATH_MAX || dest[0] != '/' || dest[len - 1] == '/')
                return -EINVAL;
        return path_split(dest, ret_parent, ret_name);
}

/* After the pause, before DEST can exist: record each newly shared inode in the workdir, so that a
 * remount still breaks it before a change. Under ns_lock (read): no break or unlink of an upper name
 * (both take it for writing) runs between the check and the link; one that ran since the pause has
 * already unshared the inode, which then needs no record. The copy is our own 0700 directory. An
 * entry of that name can only be this inode: it holds the number. */
static int record_shared(Union *u, Walk *w) {
        int r = 0;

        if (u->may_block)
                u->may_block();
        pthread_rwlock_rdlock(&u->ns_lock);
        for (size_t i = 0; i < w->n_shared && r >= 0; i++) {
                struct stat st;
                char key[64];

                if (!w->shared[i].path || !inocount_has(&u->shared, w->shared[i].dev, w->shared[i].ino))
                        continue; /* recorded before, or unshared since */
                shared_key(key, w->shared[i].dev, w->shared[i].ino);
                if (linkat(w->root_fd, w->shared[i].path, u->shared_fd, key, 0) < 0 && errno != EEXIST)
                        r = -errno;
                else if (fstatat(u->shared_fd, key, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        r = -errno;
                else if (st.st_dev != w->shared[i].dev || st.st_ino != w->shared[i].ino)
                        r = -ESTALE;
        }
        pthread_rwlock_unlock(&u->ns_lock);
        return r;
}

/* The copy failed and is gone: its inodes are no longer shared. */
static void walk_unshare(Walk *w) {
        Union *u = w->u;
        char key[64];

        if (w->n_shared == 0)
                return;
        if (u->may_block)
                u->may_block();
        /* as a break: no snapshot shares an inode meanwhile */
        pthread_rwlock_wrlock(&u->ns_lock);
        for (size_t i = 0; i < w->n_shared; i++) {
                (void) inocount_add(&u->shared, w->shared[i].dev, w->shared[i].ino, -1);
                if (inocount_has(&u->shared, w->shared[i].dev, w->shared[i].ino))
                        continue; /* another snapshot shares it too */
                shared_key(key, w->shared[i].dev, w->shared[i].ino);
                (void) unlinkat(u->shared_fd, key, 0);
        }
        pthread_rwlock_unlock(&u->ns_lock);
}

static int snapshot_copy(Union *u, int tmp_fd, Walk *w, SnapshotResult *res) {
        _cleanup_close_ int upper = open_beneath(u->layers[UPPER].fd, ".", O_RDONLY | O_DIRECTORY, 0);
        if (upper < 0)
                return upper;

        if (u->may_block)
                u->may_block(); /* waiting for the locks and copying: let other requests be read */
        pthread_rwlock_wrlock(&u->ns_lock);
        pthread_rwlock_wrlock(&u->change_lock);
        uint64_t start = now_ns();

        int r = copy_dir(w, upper, tmp_fd, "", 0);
        if (r >= 0)
                r = copy_root_attrs(u, upper, tmp_fd);

        res->pause_ns = now_ns() - start;
        pthread_rwlock_unlock(&u->change_lock);
        pthread_rwlock_unlock(&u->ns_lock);
        res->entries = w->entries;
        res->linked = w->linked;
        return r;
}

int snapshot_take(Union *u, const char *dest, SnapshotResult *ret) {
        _cleanup_free_ char *parent = NULL, *name = NULL;
        _cleanup_close_ int parent_fd = -EBADF, tmp_fd = -EBADF;
        _cleanup_(walk_done) Walk w = {};
        SnapshotResult res = {};
        char tmp[64];
        struct statfs sfs;
        struct stat st;
        int r;

        assert_return(u && dest && ret, -EINVAL);
        if (!u->has_upper)
                return -EOPNOTSUPP;
        r = split_dest(dest, &parent, &name);
        if (r < 0)
                return r;

        /* The parent is resolved as an ordinary path: only the server's owner may ask (the caller
         * checked), who could write there anyway. Below it nothing is ever followed. */
        parent_fd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0)
                return -errno;
        if (fstatfs(parent_fd, &sfs) < 0)
                return -errno;
        /* A FUSE file system could be this very mount: writing there while holding our locks would
         * wait for ourselves. */
        if ((unsigned long) sfs.f_type == UNIONFS_FUSE_SUPER_MAGIC)
                return -EXDEV;
        r = check_outside_layers(u, parent_fd);
        if (r < 0)
                return r;
        if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return -EEXIST;
        if (errno != ENOENT)
                return -errno;

        (void) snprintf(tmp, sizeof tmp, ".#snapshot-%ld-%lu", (long) getpid(),
                        atomic_fetch_add(&snapshot_counter, 1));
        if (mkdirat(parent_fd, tmp, 0700) < 0)
                return -errno;
        tmp_fd = open_beneath(parent_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        if (tmp_fd < 0) {
                r = tmp_fd;
                goto fail;
        }
        if (fstat(tmp_fd, &st) < 0) {
                r = -errno;
                goto fail;
        }
        w.u = u;
        w.root_fd = tmp_fd;
        w.root_dev = st.st_dev;
        w.root_ino = st.st_ino;
        w.can_link = st.st_dev == u->layers[UPPER].dev;

        r = snapshot_copy(u, tmp_fd, &w, &res);
        if (r < 0)
                goto fail;
        r = record_shared(u, &w);
        if (r < 0)
                goto fail;

        if (syncfs(tmp_fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (renameat2(parent_fd, tmp, parent_fd, name, RENAME_NOREPLACE) < 0) {
                r = -errno;
                goto fail;
        }
        {
                /* Make the rename durable too; failing that, DEST exists but may not survive a crash. */
                _cleanup_close_ int pdir = open_beneath(parent_fd, ".", O_RDONLY | O_DIRECTORY, 0);
                if (pdir >= 0)
                        (void) fsync(pdir);
        }

        *ret = res;
        return 0;

fail:
        tmp_fd = safe_close(tmp_fd);
        (void) copyup_remove_temp(parent_fd, tmp);
        walk_unshare(&w);
        return r;
}
