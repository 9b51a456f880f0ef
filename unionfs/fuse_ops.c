/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * FUSE low-level handlers. Each handler computes a negative errno r and replies exactly once; all
 * union logic lives in lookup.c, cow.c and dirent.c. Node ids are Node pointers (the root is
 * FUSE_ROOT_ID). Objects are reached only through layer_open*() (beneath the layer fd, no symlink
 * followed); attributes are changed on O_PATH fds or with AT_SYMLINK_NOFOLLOW, so a name swapped
 * for a symlink between two steps is never followed out of the layer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "control.h"
#include "copyup.h"
#include "fs.h"
#include "fuse_ops.h"
#include "log.h"
#include "macro.h"
#include "snapshot.h"
#include "whiteout.h"
#include "worker.h"
#include "xattr.h"

static UnionFuseConfig config = { .writeback = true };
static uid_t server_uid; /* who creates objects in the upper: the owner they start with */
static gid_t server_gid;
static struct fuse_session *session; /* for notifications to the kernel */

void union_fuse_configure(const UnionFuseConfig *c) {
        config = *c;
        server_uid = geteuid();
        server_gid = getegid();
}

void union_fuse_set_session(struct fuse_session *se) {
        session = se;
}

/* With the writeback cache a write() only fills the kernel's page cache; a WRITE we refuse at the
 * quota later fails fsync() and close(), not the write() itself. So after such a refusal the node
 * is marked (qrefused) and its attributes are invalidated: the kernel then asks for them (GETATTR
 * with the file handle) before the next write() into its cache, and op_getattr() answers ENOSPC
 * while the quota is nearly full. Attributes of a marked node are given with no cache time
 * meanwhile, so a stat() in between does not make them valid again. A write() that could not fit
 * fails at once, also in a program that never checks close(); other files, whose writes were never
 * refused, can still rewrite their allocated data. The margin is one request: a refusal happened at
 * most max_write bytes below the quota. */
#define QUOTA_WRITE_MARGIN (UINT64_C(1024) * 1024)

static bool quota_refuses_cached_writes(Union *u, Node *n) {
        if (!__atomic_load_n(&n->qrefused, __ATOMIC_ACQUIRE))
                return false;
        if (quota_nearly_full(&u->quota, QUOTA_WRITE_MARGIN))
                return true;
        __atomic_store_n(&n->qrefused, false, __ATOMIC_RELEASE); /* space was freed */
        return false;
}

static double attr_timeout(Union *u, Node *n) {
        return quota_refuses_cached_writes(u, n) ? 0 : u->timeout;
}

/* Smaller reads and writes are handled inline by the reading thread: a hand-over costs more than
 * copying a few pages through the page cache. */
#define WORKER_HANDOFF_BYTES (128 * 1024)

typedef struct Handle {
        int fd;
        bool lower;           /* opened in a lower layer: reopened from the upper after a copy-up */
        bool data_only;       /* the lower data of a metacopy file: read through it, but its attributes
                               * are the node's; reopened once the data is copied up */
        int flags;
        Node *node;
        unsigned breaks;      /* node->breaks when fd was opened: reopened after a break */
        bool writer;          /* counted in Union.writers as (wdev, wino) */
        dev_t wdev;
        ino_t wino;
        pthread_mutex_t lock;
} Handle;

/* The merged listing is taken at the first readdir (and again after a rewind), not at opendir: when
 * the kernel serves a listing from its cache it opens the directory but never reads it from us. */
typedef struct DirHandle {
        DirList list;
        bool loaded;
} DirHandle;

static Union *req_union(fuse_req_t req) {
        return fuse_req_userdata(req);
}

static Node *node_of(Union *u, fuse_ino_t ino) {
        return ino == FUSE_ROOT_ID ? u->root : (Node *) (uintptr_t) ino;
}

static fuse_ino_t id_of(Union *u, Node *n) {
        return n == u->root ? FUSE_ROOT_ID : (fuse_ino_t) (uintptr_t) n;
}

/* ESTALE never reaches the kernel: the VFS answers it by walking the path again with revalidation,
 * which would pick up whatever a changed layer now holds (a planted symlink, say). A layer that
 * changed under the mount is an I/O error. */
static int kernel_errno(int r) {
        return r == -ESTALE ? EIO : -r;
}

static void reply_err(fuse_req_t req, int r) {
        assert_return(r < 0, (void) fuse_reply_err(req, EIO));
        fuse_reply_err(req, kernel_errno(r));
}

/* For operations whose only reply is a status. */
static void reply_status(fuse_req_t req, int r) {
        fuse_reply_err(req, r < 0 ? kernel_errno(r) : 0);
}

static void shown_attr(Union *u, struct stat *st) {
        st->st_uid = u->squash_uid >= 0 ? (uid_t) u->squash_uid : idmap_to_shown(&u->uidmap, st->st_uid);
        st->st_gid = u->squash_gid >= 0 ? (gid_t) u->squash_gid : idmap_to_shown(&u->gidmap, st->st_gid);
}

/* Waiting for the name tree lock is blocking: hand the request loop over first. */
static void ns_read(Union *u) {
        if (pthread_rwlock_tryrdlock(&u->ns_lock) == 0)
                return;
        worker_may_block();
        pthread_rwlock_rdlock(&u->ns_lock);
}

static void ns_write(Union *u) {
        if (pthread_rwlock_trywrlock(&u->ns_lock) == 0)
                return;
        worker_may_block();
        pthread_rwlock_wrlock(&u->ns_lock);
}

static void ns_unlock(Union *u) {
        pthread_rwlock_unlock(&u->ns_lock);
}

/* ns_read() for an operation about to change N's upper file: first break its sharing with a
 * snapshot, if any. The copy is made under the read lock, so that only name changes and snapshots
 * wait for it; putting it in place needs the write lock. Under the read lock no snapshot can share
 * the file again, so the check is repeated there. On failure the lock is not held. */
static int ns_read_unshared(Union *u, Node *n) {
        for (;;) {
                CowBreak c;
                ns_read(u);
                if (!cow_is_shared(u, n))
                        return 0;
                int r = cow_unshare_prepare(u, n, &c);
                ns_unlock(u);
                if (r < 0)
                        return r;
                ns_write(u);
                r = cow_unshare_commit(u, n, &c);
                ns_unlock(u);
                if (r < 0)
                        return r;
        }
}

/* ns_write() for an operation that gives N's upper file another name: first break its sharing with a
 * snapshot, the copy made under the read lock as in ns_read_unshared(). A snapshot may share the file
 * again before the write lock is ours: then it is copied under the write lock. On failure the lock is
 * not held. */
static int ns_write_unshared(Union *u, Node *n) {
        CowBreak c;
        ns_read(u);
        int r = cow_is_shared(u, n) ? cow_unshare_prepare(u, n, &c) : 0;
        ns_unlock(u);
        if (r < 0)
                return r;
        ns_write(u);
        if (r > 0)
                r = cow_unshare_commit(u, n, &c);
        if (r >= 0)
                r = cow_unshare(u, n);
        if (r < 0)
                ns_unlock(u);
        return r;
}

/* Data writes, which take no ns_lock: a snapshot holds this exclusively while it copies. */
static void change_begin(Union *u) {
        if (pthread_rwlock_tryrdlock(&u->change_lock) == 0)
                return;
        worker_may_block();
        pthread_rwlock_rdlock(&u->change_lock);
}

static void change_end(Union *u) {
        pthread_rwlock_unlock(&u->change_lock);
}

static void fill_entry(Union *u, Node *n, const struct stat *st, struct fuse_entry_param *e) {
        *e = (struct fuse_entry_param) {
                .ino = id_of(u, n),
                .attr = *st,
                .attr_timeout = attr_timeout(u, n),
                .entry_timeout = u->timeout,
        };
        e->attr.st_ino = (ino_t) n->ino;
        shown_attr(u, &e->attr);
}

int union_root_init(Union *u) {
        struct stat st;
        Node *root = calloc(1, sizeof *root);

        if (!root)
                return -ENOMEM;
        if (fstat(u->layers[0].fd, &st) < 0) {
                free(root);
                return -errno;
        }
        root->type = S_IFDIR;
        root->layer = 0;
        root->last_layer = (int) u->n_layers - 1;
        root->merged = u->n_layers > 1;
        root->ino = union_ino(u, st.st_dev, st.st_ino);
        root->refs = 1;
        root->upper_fd = -EBADF; /* the upper layer's own fd serves */
        root->orphan_fd = -EBADF;
        root->qblocks = u->has_upper ? (int64_t) st.st_blocks : -1; /* its growth counts, not itself */
        root->hashed = false; /* found through FUSE_ROOT_ID, never by number */
        u->root = root;
        return 0;
}

/* ---------- names ---------- */

static int lookup_entry(Union *u, Node *parent, const char *name, bool kernel, Node **ret_node,
                        struct stat *ret_st) {
        _cleanup_(lookup_result_done) LookupResult r = {};
        Node *n;
        int e;

        e = union_lookup(u, parent, name, &r);
        if (e < 0)
                return e;
        e = node_obtain(u, parent, name, &r, kernel, &n);
        if (e < 0)
                return e;
        /* The node may be older than this lookup (a hard link seen before): its own view wins. */
        e = union_node_stat(u, n, ret_st);
        if (e < 0) {
                if (kernel)
                        node_forget(u, n, 1);
                else
                        node_unref(u, n, 1);
                return e;
        }
        *ret_node = n;
        return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        Union *u = req_union(req);
        struct fuse_entry_param e;
        struct stat st;
        Node *n;

        ns_read(u);
        int r = lookup_entry(u, node_of(u, parent), name, true, &n, &st);
        ns_unlock(u);
        if (r == -ENOENT) {
                /* a negative entry the kernel may cache: names only change through us */
                e = (struct fuse_entry_param) { .ino = 0, .entry_timeout = u->timeout };
                fuse_reply_entry(req, &e);
                return;
        }
        if (r < 0)
                return reply_err(req, r);
        fill_entry(u, n, &st, &e);
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        Union *u = req_union(req);
        node_forget(u, node_of(u, ino), nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        Union *u = req_union(req);
        for (size_t i = 0; i < count; i++)
                node_forget(u, node_of(u, forgets[i].ino), forgets[i].nlookup);
        fuse_reply_none(req);
}

/* ---------- attributes ---------- */

static int handle_fd(Union *u, Handle *h);

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        Node *n = node_of(u, ino);
        struct stat st;
        int r;

        Handle *h = fi && fi->fh ? (Handle *) (uintptr_t) fi->fh : NULL;
        /* Asked before a write() into the page cache after a WRITE was refused: see QUOTA_WRITE_MARGIN. */
        if (h && (h->flags & O_ACCMODE) != O_RDONLY && quota_refuses_cached_writes(u, n))
                return reply_err(req, -ENOSPC);
        if (h && (handle_fd(u, h), !h->data_only)) {
                int fd = h->fd;
                r = RET_NERRNO(fstat(fd, &st));
                if (r >= 0) {
                        union_override_stat(u, fd, &st);
                        if (!h->lower)
                                union_fix_nlink(u, fd, &st);
                        else if (node_unlinked(u, n) && !S_ISDIR(st.st_mode) && st.st_nlink > 0)
                                st.st_nlink--; /* the lower keeps the name the merged view lost */
                        st.st_ino = (ino_t) n->ino;
                        if (n == u->root)
                                union_root_attr_apply(u, &st);
                }
        } else {
                ns_read(u);
                r = union_node_stat(u, n, &st);
                ns_unlock(u);
        }
        if (r < 0)
                return reply_err(req, r);
        shown_attr(u, &st);
        fuse_reply_attr(req, &st, attr_timeout(u, n));
}

static int proc_fd_path(int fd, char buf[static 32]) {
        snprintf(buf, 32, "/proc/self/fd/%d", fd);
        return 0;
}

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452 /* Linux 6.6, the same number on every architecture */
#endif

/* chmod of NAME beneath DIRFD (or of DIRFD itself for ""), never following a symlink. */
static int chmod_nofollow(int dirfd, const char *name, mode_t mode) {
        static bool no_fchmodat2;
        char proc[32];

        if (!__atomic_load_n(&no_fchmodat2, __ATOMIC_RELAXED)) {
                if (syscall(__NR_fchmodat2, dirfd, name, mode, *name ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH) == 0)
                        return 0;
                if (errno != ENOSYS)
                        return -errno;
                __atomic_store_n(&no_fchmodat2, true, __ATOMIC_RELAXED);
        }
        /* Older kernels: through the magic link of an O_PATH fd, which leads to exactly that inode. */
        _cleanup_close_ int fd = *name ? open_beneath(dirfd, name, O_PATH | O_NOFOLLOW, 0) : -EBADF;
        if (*name && fd < 0)
                return fd;
        proc_fd_path(*name ? fd : dirfd, proc);
        return RET_NERRNO(fchmodat(AT_FDCWD, proc, mode, 0));
}

static int do_setattr(Union *u, Node *n, struct stat *attr, int to_set, struct fuse_file_info *fi) {
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        _cleanup_close_ int fd = -EBADF;
        char name[NAME_MAX + 1] = "";
        int dirfd, r;

        /* Only a new size needs the data (-o metacopy=on: mode, owner and times copy none); a size of
         * 0 needs none either. */
        r = cow_node_flags(u, n, !(to_set & FUSE_SET_ATTR_SIZE) ? COW_META : attr->st_size == 0 ? COW_TRUNC : 0);
        if (r < 0)
                return r;
        /* Changes go to NAME beneath its upper directory with *at(AT_SYMLINK_NOFOLLOW) calls; the root,
         * index copies and objects without a name any more through an O_PATH fd of their own. */
        if (n != u->root && !__atomic_load_n(&n->indexed, __ATOMIC_ACQUIRE) && !node_unlinked(u, n)) {
                r = union_upper_parent(u, n, name, &pd);
                if (r < 0)
                        return r;
                dirfd = pd.fd;
        } else {
                fd = union_node_open(u, n, O_PATH, NULL);
                if (fd < 0)
                        return fd;
                dirfd = fd;
        }

        /* A private root (common/rootattr.h) stays 0700 root:root on disk: its record changes. */
        bool recorded = false;
        if (n == u->root && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
                mode_t mode = attr->st_mode & 07777;
                uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? idmap_to_disk(&u->uidmap, attr->st_uid) : (uid_t) -1;
                gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? idmap_to_disk(&u->gidmap, attr->st_gid) : (gid_t) -1;
                r = union_root_attr_update(u, (to_set & FUSE_SET_ATTR_MODE) ? &mode : NULL, &uid, &gid);
                if (r < 0)
                        return r;
                recorded = r > 0;
        }
        if ((to_set & FUSE_SET_ATTR_MODE) && !recorded) {
                if (S_ISLNK(n->type))
                        return -EOPNOTSUPP;
                r = chmod_nofollow(dirfd, name, attr->st_mode & 07777);
                if (r < 0)
                        return r;
        }
        if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && !recorded) {
                uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? idmap_to_disk(&u->uidmap, attr->st_uid) : (uid_t) -1;
                gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? idmap_to_disk(&u->gidmap, attr->st_gid) : (gid_t) -1;
                if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
                        return -errno;
        }
        if (to_set & FUSE_SET_ATTR_SIZE) {
                Handle *h = fi && fi->fh ? (Handle *) (uintptr_t) fi->fh : NULL;
                /* Growing a file allocates nothing (a hole): only what is left counts. */
                if (h && !h->lower && (h->flags & O_ACCMODE) != O_RDONLY) {
                        r = RET_NERRNO(ftruncate(h->fd, attr->st_size));
                        quota_observe_fd(&u->quota, &n->qblocks, h->fd);
                } else {
                        _cleanup_close_ int wfd = union_node_open(u, n, O_WRONLY, NULL);
                        r = wfd < 0 ? wfd : RET_NERRNO(ftruncate(wfd, attr->st_size));
                        quota_observe_fd(&u->quota, &n->qblocks, wfd);
                }
                if (r < 0)
                        return r;
        }
        if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
                struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
                if (to_set & FUSE_SET_ATTR_ATIME_NOW)
                        ts[0].tv_nsec = UTIME_NOW;
                else if (to_set & FUSE_SET_ATTR_ATIME)
                        ts[0] = attr->st_atim;
                if (to_set & FUSE_SET_ATTR_MTIME_NOW)
                        ts[1].tv_nsec = UTIME_NOW;
                else if (to_set & FUSE_SET_ATTR_MTIME)
                        ts[1] = attr->st_mtim;
                if (*name)
                        r = RET_NERRNO(utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW));
                else {
                        char proc[32]; /* the root or an index copy: never a symlink */
                        proc_fd_path(dirfd, proc);
                        r = RET_NERRNO(utimensat(AT_FDCWD, proc, ts, 0));
                }
                if (r < 0)
                        return r;
        }
        if (u->override_xattr && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
                /* xattr_permissions=: the override xattr, which wins when shown, follows the change */
                struct stat st;
                _cleanup_close_ int ofd = union_node_open(u, n, O_PATH, NULL);
                if (ofd < 0)
                        return ofd;
                if (fstat(ofd, &st) < 0)
                        return -errno;
                r = union_write_override(u, ofd, &st);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether a setattr only sets N's times to the values they have. */
static bool setattr_is_noop(Union *u, Node *n, const struct stat *attr, int to_set) {
        struct stat st;

        if (to_set & ~(FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME))
                return false;
        if (union_node_stat(u, n, &st) < 0)
                return false;
        if ((to_set & FUSE_SET_ATTR_ATIME) && (attr->st_atim.tv_sec != st.st_atim.tv_sec ||
                                               attr->st_atim.tv_nsec != st.st_atim.tv_nsec))
                return false;
        if ((to_set & FUSE_SET_ATTR_MTIME) && (attr->st_mtim.tv_sec != st.st_mtim.tv_sec ||
                                               attr->st_mtim.tv_nsec != st.st_mtim.tv_nsec))
                return false;
        return true;
}

#define SETATTR_TIMES (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME | \
                       FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)

/* Times for an object that has no name any more. With the writeback cache the kernel keeps an inode's
 * times itself and flushes them later, also after the last name is gone (unlink changes ctime): a
 * failure there would fail the next syncfs() on the mount. Nothing on disk can be reached by name,
 * so only an open handle can carry them; without one the flush is a no-op. */
static int setattr_unlinked(Node *n, const struct stat *attr, int to_set, struct fuse_file_info *fi,
                            struct stat *ret) {
        Handle *h = fi && fi->fh ? (Handle *) (uintptr_t) fi->fh : NULL;
        if (h && !h->lower && h->fd >= 0) {
                struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
                if (to_set & FUSE_SET_ATTR_ATIME)
                        ts[0] = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? (struct timespec) { .tv_nsec = UTIME_NOW } : attr->st_atim;
                if (to_set & FUSE_SET_ATTR_MTIME)
                        ts[1] = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? (struct timespec) { .tv_nsec = UTIME_NOW } : attr->st_mtim;
                if (futimens(h->fd, ts) < 0)
                        return -errno;
                return RET_NERRNO(fstat(h->fd, ret));
        }
        *ret = (struct stat) {
                .st_mode = n->type, /* the kernel only checks that the type did not change */
                .st_nlink = 0,
                .st_atim = attr->st_atim,
                .st_mtim = attr->st_mtim,
                .st_ctim = attr->st_ctim,
        };
        return 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        Node *n = node_of(u, ino);
        struct stat st;

        bool noop = false;
        int r = 0;

        ns_read(u);
        if (node_unlinked(u, n) && !(to_set & ~SETATTR_TIMES) &&
            ((n->orphan_fd < 0 && !__atomic_load_n(&n->indexed, __ATOMIC_ACQUIRE)) ||
             setattr_is_noop(u, n, attr, to_set))) {
                r = setattr_unlinked(n, attr, to_set, fi, &st);
                ns_unlock(u);
                if (r < 0)
                        return reply_err(req, r);
                st.st_ino = n->ino;
                shown_attr(u, &st);
                return (void) fuse_reply_attr(req, &st, attr_timeout(u, n));
        }
        if (cow_is_shared(u, n)) {
                /* The kernel flushes the times it keeps (writeback cache) after a rename, say: setting a
                 * shared file's times to what they are is no change and needs no copy. */
                if (setattr_is_noop(u, n, attr, to_set))
                        noop = true;
                else {
                        ns_unlock(u);
                        r = ns_read_unshared(u, n);
                        if (r < 0)
                                return reply_err(req, r);
                }
        }
        if (!noop)
                r = do_setattr(u, n, attr, to_set, fi);
        if (r >= 0)
                r = union_node_stat(u, n, &st);
        ns_unlock(u);
        if (r < 0)
                return reply_err(req, r);
        shown_attr(u, &st);
        fuse_reply_attr(req, &st, attr_timeout(u, n));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
        Union *u = req_union(req);
        char buf[PATH_MAX + 1];
        ssize_t k;

        ns_read(u);
        int fd = union_node_open(u, node_of(u, ino), O_PATH, NULL);
        ns_unlock(u);
        if (fd < 0)
                return reply_err(req, fd);
        k = readlinkat(fd, "", buf, sizeof buf - 1);
        int r = k < 0 ? -errno : 0;
        safe_close(fd);
        if (r < 0)
                return reply_err(req, r);
        buf[k] = '\0';
        fuse_reply_readlink(req, buf);
}

/* ---------- creating objects ---------- */

typedef struct NewObject {
        mode_t mode;          /* type and permission bits */
        dev_t rdev;
        const char *target;   /* symlinks */
        Node *link_src;       /* hard links */
} NewObject;

/* Owner of a new object, on disk: the caller's ids mapped back, or the directory's group when
 * it is setgid (the upper directory carries the same bits as the merged one; a private root
 * its record). */
static void new_owner(Union *u, fuse_req_t req, Node *parent, int pfd, uid_t *ret_uid, gid_t *ret_gid,
                      bool *ret_sgid_dir) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        struct stat pst;

        *ret_uid = idmap_to_disk(&u->uidmap, ctx->uid);
        *ret_gid = idmap_to_disk(&u->gidmap, ctx->gid);
        *ret_sgid_dir = false;
        if (fstat(pfd, &pst) < 0)
                return;
        if (parent == u->root)
                union_root_attr_apply(u, &pst);
        if (pst.st_mode & S_ISGID) {
                *ret_gid = pst.st_gid;
                *ret_sgid_dir = true;
        }
}

static int make_object(Union *u, int dirfd, const char *name, const NewObject *o, int open_flags, int *ret_fd) {
        switch (o->mode & S_IFMT) {
        case S_IFREG: {
                int fd = openat(dirfd, name, open_flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, o->mode & 07777);
                if (fd < 0)
                        return -errno;
                *ret_fd = fd;
                return 0;
        }
        case S_IFDIR:
                return RET_NERRNO(mkdirat(dirfd, name, o->mode & 07777));
        case S_IFLNK:
                return RET_NERRNO(symlinkat(o->target, dirfd, name));
        default:
                return RET_NERRNO(mknodat(dirfd, name, o->mode, o->rdev));
        }
}

/* IN_PLACE: NAME was created in its final directory (not in the work directory, which is never
 * set-group-ID), so it got our ids, or the directory's group when that is set-group-ID. */
static int set_owner(int dirfd, const char *name, const NewObject *o, uid_t uid, gid_t gid, bool sgid_dir,
                     bool in_place) {
        if (in_place && uid == server_uid && (sgid_dir || gid == server_gid))
                return 0; /* already owned as asked */
        if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        /* chown clears set-id bits on files; put back what the caller asked for */
        mode_t want = o->mode & 07777;
        if (S_ISDIR(o->mode) && sgid_dir)
                want |= S_ISGID;
        if (!S_ISLNK(o->mode) && (want & (S_ISUID | S_ISGID))) {
                _cleanup_close_ int fd = open_beneath(dirfd, name, O_PATH | O_NOFOLLOW, 0);
                char proc[32];
                if (fd < 0)
                        return fd;
                proc_fd_path(fd, proc);
                if (fchmodat(AT_FDCWD, proc, want, 0) < 0)
                        return -errno;
        }
        return 0;
}

static int open_flags_for(int flags) {
        /* Only what open(2) accepts from users: the kernel's own bits in f_flags (the exec-open
         * bit of execve(), say) would make openat2() fail with EINVAL. */
        flags &= O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | O_NOATIME | O_LARGEFILE;
        /* With the writeback cache the kernel also reads through write-only files and does
         * O_APPEND itself. */
        if (config.writeback) {
                if ((flags & O_ACCMODE) == O_WRONLY)
                        flags = (flags & ~O_ACCMODE) | O_RDWR;
                flags &= ~O_APPEND;
        }
        return flags;
}

/* Create NAME in PARENT: directly in the upper when the name is free there, or built in the work
 * directory and renamed over the whiteout that hides a deleted lower object (a new directory there is
 * made opaque, so the old lower contents stay hidden). */
static int create_object(Union *u, fuse_req_t req, Node *parent, const char *name, const NewObject *o,
                         int open_flags, Node **ret_node, struct stat *ret_st, int *ret_fd) {
        _cleanup_(lookup_result_done) LookupResult lr = {};
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        _cleanup_close_ int fd = -EBADF;
        int pfd;
        uid_t uid;
        gid_t gid;
        bool sgid_dir;
        int r;

        if (strlen(name) > NAME_MAX)
                return -ENAMETOOLONG;
        if (node_layer(parent) == UPPER && parent->last_layer == UPPER && u->has_upper) {
                /* Only the upper has this directory: O_EXCL below is the whole existence check,
                 * and a whiteout found in the way (left by another overlay) is replaced. */
                lr.lower_exists = true;
        } else {
                r = union_lookup(u, parent, name, &lr);
                if (r >= 0)
                        return -EEXIST;
                if (r != -ENOENT)
                        return r;
        }
        /* A new inode, or for a hard link only a name: a full quota refuses both. */
        r = quota_check(&u->quota, 0, o->link_src ? 0 : 1);
        if (r < 0)
                return r;
        r = cow_node(u, parent);
        if (r < 0)
                return r;
        r = union_upper_dir(u, parent, &pd);
        if (r < 0)
                return r;
        pfd = pd.fd;
        new_owner(u, req, parent, pfd, &uid, &gid, &sgid_dir);
        /* Made in place, a new object takes the group of a set-group-ID directory from the file
         * system; a private root is not set-group-ID on disk, whatever its record says. */
        bool in_place = !(parent == u->root && __atomic_load_n(&u->has_root_attr, __ATOMIC_RELAXED));

        if (o->link_src) {
                /* Link from the index copy for a hard link kept there (its names may not all be in the
                 * upper yet), else from the source's upper name. */
                char sname[NAME_MAX + 1];
                _cleanup_(dir_ref_done) DirRef spd = DIR_REF_NULL;
                int spfd;
                if (__atomic_load_n(&o->link_src->indexed, __ATOMIC_ACQUIRE)) {
                        index_key(sname, o->link_src->lower_dev, o->link_src->lower_ino);
                        spfd = u->index_fd;
                } else {
                        r = union_upper_parent(u, o->link_src, sname, &spd);
                        if (r < 0)
                                return r;
                        spfd = spd.fd;
                }
                if (linkat(spfd, sname, pfd, name, 0) == 0)
                        goto created;
                if (errno != EEXIST)
                        return -errno;
                char tmp[64];
                snprintf(tmp, sizeof tmp, "#ln-%d-%lx", getpid(), (unsigned long) pthread_self());
                if (linkat(spfd, sname, u->work_fd, tmp, 0) < 0)
                        return -errno;
                if (renameat(u->work_fd, tmp, pfd, name) < 0) {
                        r = -errno;
                        (void) unlinkat(u->work_fd, tmp, 0);
                        return r;
                }
                quota_add(&u->quota, 0, -1); /* the whiteout it replaced */
                goto created;
        }

        r = make_object(u, pfd, name, o, open_flags, &fd);
        if (r == 0) {
                r = set_owner(pfd, name, o, uid, gid, sgid_dir, in_place);
                if (r < 0) {
                        (void) unlinkat(pfd, name, S_ISDIR(o->mode) ? AT_REMOVEDIR : 0);
                        return r;
                }
                goto created;
        }
        if (r != -EEXIST || !lr.lower_exists)
                return r;

        /* A whiteout is in the way: build the object in the work directory and swap it in. */
        {
                char tmp[64];
                struct stat wst;
                snprintf(tmp, sizeof tmp, "#new-%d-%lx", getpid(), (unsigned long) pthread_self());
                if (fstatat(pfd, name, &wst, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!whiteout_is_whiteout(&wst))
                        return -EEXIST;
                r = make_object(u, u->work_fd, tmp, o, open_flags, &fd);
                if (r < 0)
                        return r;
                r = set_owner(u->work_fd, tmp, o, uid, gid, sgid_dir, false);
                if (r >= 0 && S_ISDIR(o->mode))
                        r = cow_set_opaque(u, u->work_fd, tmp);
                if (r >= 0) {
                        if (S_ISDIR(o->mode)) {
                                /* a directory cannot replace a device: exchange, then drop the whiteout */
                                if (renameat2(u->work_fd, tmp, pfd, name, RENAME_EXCHANGE) < 0)
                                        r = -errno;
                                else
                                        (void) unlinkat(u->work_fd, tmp, 0);
                        } else if (renameat(u->work_fd, tmp, pfd, name) < 0)
                                r = -errno;
                        if (r >= 0)
                                quota_add(&u->quota, 0, -1); /* the whiteout it replaced */
                }
                if (r < 0) {
                        fd = safe_close(fd);
                        (void) copyup_remove_temp(u->work_fd, tmp);
                        return r;
                }
        }

created:;
        LookupResult nr = { .layer = UPPER, .last_layer = UPPER };
        if (fstatat(pfd, name, &nr.st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        /* The new inode as it is (its node starts from these blocks), and what the name cost the
         * directory. */
        if (!o->link_src)
                quota_add(&u->quota, (int64_t) nr.st.st_blocks * 512, 1);
        quota_observe_fd(&u->quota, &parent->qblocks, pfd);
        Node *n;
        if (o->link_src) {
                /* the new name belongs to the existing node */
                r = node_add_alias(u, o->link_src, parent, name);
                if (r < 0)
                        return r;
                pthread_mutex_lock(&u->table_lock);
                o->link_src->refs++;
                o->link_src->nlookup++;
                pthread_mutex_unlock(&u->table_lock);
                n = o->link_src;
        } else {
                nr.st.st_ino = (ino_t) union_ino(u, nr.st.st_dev, nr.st.st_ino);
                r = node_obtain(u, parent, name, &nr, true, &n);
                if (r < 0)
                        return r;
        }
        r = union_node_stat(u, n, ret_st);
        if (r < 0) {
                node_forget(u, n, 1);
                return r;
        }
        /* The kernel asks for security.capability before every write: a file we just made, and that
         * inherited no xattr, can answer without a syscall until someone sets one (through us). */
        if (fd >= 0 && !o->link_src && flistxattr(fd, NULL, 0) == 0)
                __atomic_store_n(&n->no_xattrs, true, __ATOMIC_RELEASE);
        *ret_node = n;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

static void reply_new_entry(fuse_req_t req, Union *u, Node *parent, const char *name, const NewObject *o) {
        struct fuse_entry_param e;
        struct stat st;
        Node *n;
        int r;

        if (o->link_src) {
                r = ns_write_unshared(u, o->link_src); /* a second upper name would change the snapshot's nlink */
                if (r < 0)
                        return reply_err(req, r);
        } else
                ns_read(u);
        r = o->link_src ? cow_node(u, o->link_src) : 0;
        if (r >= 0)
                r = create_object(u, req, parent, name, o, 0, &n, &st, NULL);
        ns_unlock(u);
        if (r < 0)
                return reply_err(req, r);
        fill_entry(u, n, &st, &e);
        fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
        Union *u = req_union(req);
        /* A character device 0/0 is a whiteout on disk: nobody may create one through the mount. */
        if (S_ISCHR(mode) && major(rdev) == 0 && minor(rdev) == 0)
                return reply_err(req, -EPERM);
        reply_new_entry(req, u, node_of(u, parent), name, &(NewObject) { .mode = mode, .rdev = rdev });
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
        Union *u = req_union(req);
        reply_new_entry(req, u, node_of(u, parent), name, &(NewObject) { .mode = S_IFDIR | (mode & 07777) });
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
        Union *u = req_union(req);
        reply_new_entry(req, u, node_of(u, parent), name, &(NewObject) { .mode = S_IFLNK | 0777, .target = target });
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
        Union *u = req_union(req);
        Node *src = node_of(u, ino);
        if (S_ISDIR(src->type))
                return reply_err(req, -EPERM);
        reply_new_entry(req, u, node_of(u, newparent), newname, &(NewObject) { .mode = src->type, .link_src = src });
}

/* ---------- removing and renaming ---------- */

/* The number of entries of the upper directory NAME beneath PFD (whiteouts: it is empty in the merged
 * view), for the quota. */
static int64_t upper_dir_entries(int pfd, const char *name) {
        _cleanup_closedir_ DIR *d = NULL;
        int64_t n = 0;
        int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || !(d = fdopendir(fd))) {
                safe_close(fd);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        return n;
}

/* Remove NAME (held by N) from the upper PFD, leaving a whiteout when a lower layer has the name.
 * RET_INODES: inodes added (the whiteout) and removed (whiteouts inside a directory), not counting
 * the object itself. */
static int remove_upper(Union *u, int pfd, const char *name, bool is_dir, bool lower_exists, int64_t *ret_inodes) {
        char tmp[64];

        *ret_inodes = 0;
        if (!lower_exists) {
                if (is_dir) {
                        _cleanup_close_ int dfd = open_beneath(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
                        if (dfd < 0)
                                return dfd;
                        int r = dir_remove_whiteouts(u, dfd);
                        if (r < 0)
                                return r;
                        *ret_inodes = -r;
                }
                return RET_NERRNO(unlinkat(pfd, name, is_dir ? AT_REMOVEDIR : 0));
        }
        int64_t inside = is_dir && quota_enabled(&u->quota) ? upper_dir_entries(pfd, name) : 0;
        /* Atomically replace the name with a whiteout, then drop the old object from the work dir. */
        snprintf(tmp, sizeof tmp, "#rm-%d-%lx", getpid(), (unsigned long) pthread_self());
        if (renameat2(pfd, name, u->work_fd, tmp, RENAME_WHITEOUT) < 0)
                return -errno;
        (void) copyup_remove_temp(u->work_fd, tmp);
        *ret_inodes = 1 - inside;
        return 0;
}

/* Before N loses NAME in PARENT: when that is its last name and the kernel still knows N (an open
 * file, a cwd, an O_PATH fd may keep using it), an O_PATH fd of its object, to keep as its orphan fd
 * once the name is gone (node_keep_orphan()). -EBADF when not needed or not possible. UPPER_DIRFD: the
 * upper directory holding NAME when N's object is in the upper. */
static int orphan_prepare(Union *u, Node *n, Node *parent, const char *name, int upper_dirfd) {
        bool last;

        if (n == u->root || __atomic_load_n(&n->indexed, __ATOMIC_ACQUIRE) || n->orphan_fd >= 0 ||
            __atomic_load_n(&u->n_orphan_fds, __ATOMIC_RELAXED) >= UNION_MAX_ORPHAN_FDS)
                return -EBADF;
        pthread_mutex_lock(&u->table_lock);
        last = n->nlookup > 0 && n->n_aliases == 1 && n->aliases[0].parent == parent &&
               streq(n->aliases[0].name, name);
        pthread_mutex_unlock(&u->table_lock);
        if (!last)
                return -EBADF;
        if (node_layer(n) == UPPER)
                return upper_dirfd >= 0 ? open_beneath(upper_dirfd, name, O_PATH | O_NOFOLLOW, 0) : -EBADF;
        return union_node_open(u, n, O_PATH, NULL);
}

/* An upper object, as ST said before, lost NAME (unlink, rmdir, rename over it), and N (may be NULL)
 * was its node: if that was its last name in the upper, give its inode and blocks back to the quota.
 * A file shared with a snapshot also has the snapshot's name and one in the shared directory. An
 * open file keeps its blocks until it is closed: what is written to it meanwhile is given back at
 * its last release (qgone). */
static void quota_name_removed(Union *u, Node *n, const struct stat *st, bool shared) {
        if (!quota_enabled(&u->quota))
                return;
        if (!S_ISDIR(st->st_mode) && st->st_nlink > (shared ? 3u : 1u))
                return; /* other names (or the hard link index) keep the inode */
        quota_add(&u->quota, 0, -1);
        if (n) {
                quota_forget(&u->quota, &n->qblocks);
                __atomic_store_n(&n->qgone, true, __ATOMIC_RELEASE);
        } else
                quota_add(&u->quota, -(int64_t) st->st_blocks * 512, 0);
}

static int do_remove(Union *u, Node *parent, const char *name, bool is_dir) {
        _cleanup_(lookup_result_done) LookupResult lr = {};
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        _cleanup_close_ int ofd = -EBADF;
        Node *n = NULL;
        bool lower_exists;
        int r;

        if (strlen(name) > NAME_MAX)
                return -ENAMETOOLONG;
        r = union_lookup(u, parent, name, &lr);
        if (r < 0)
                return r;
        if (is_dir && !S_ISDIR(lr.st.st_mode))
                return -ENOTDIR;
        if (!is_dir && S_ISDIR(lr.st.st_mode))
                return -EISDIR;
        if (u->readonly)
                return -EROFS;

        r = node_obtain(u, parent, name, &lr, false, &n);
        if (r < 0)
                return r;
        if (is_dir) {
                bool empty, wh;
                r = dir_is_empty(u, n, &empty, &wh);
                if (r < 0)
                        goto out;
                if (!empty) {
                        r = -ENOTEMPTY;
                        goto out;
                }
        }
        r = union_name_in_lower(u, parent, name, &lower_exists);
        if (r < 0)
                goto out;
        r = cow_node(u, parent);
        if (r < 0)
                goto out;
        r = union_upper_dir(u, parent, &pd);
        if (r < 0)
                goto out;
        ofd = orphan_prepare(u, n, parent, name, pd.fd);
        if (lr.layer == UPPER) {
                struct stat st;
                int64_t inodes;
                bool known = fstatat(pd.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
                bool shared = known && S_ISREG(st.st_mode) && inocount_has(&u->shared, st.st_dev, st.st_ino);
                r = remove_upper(u, pd.fd, name, is_dir, lower_exists, &inodes);
                if (r >= 0) {
                        quota_add(&u->quota, 0, inodes);
                        if (known)
                                quota_name_removed(u, n, &st, shared);
                }
                if (r >= 0 && known)
                        union_forget_upper(u, &st);
        } else {
                /* Deleting always works, also past the quota: a whiteout has no data. */
                r = cow_make_whiteout(u, pd.fd, name);
                if (r >= 0)
                        quota_add(&u->quota, 0, 1);
        }
        if (r >= 0) {
                quota_observe_fd(&u->quota, &parent->qblocks, pd.fd);
                node_remove_alias(u, n, parent, name);
                if (node_unlinked(u, n))
                        node_keep_orphan(u, n, TAKE_FD(ofd));
        }
out:
        node_unref(u, n, 1);
        return r;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
        Union *u = req_union(req);
        ns_write(u);
        int r = do_remove(u, node_of(u, parent), name, false);
        ns_unlock(u);
        reply_status(req, r);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
        Union *u = req_union(req);
        ns_write(u);
        int r = do_remove(u, node_of(u, parent), name, true);
        ns_unlock(u);
        reply_status(req, r);
}

/* What a directory needs before it moves to a name whose lower layers have an entry (DST_LOWER): a
 * redirect to where its own lower contents are, or, without lower contents, opaqueness so that the
 * entry at its new name does not merge into it. */
#define REDIRECT_MAX 256

typedef struct MovePlan {
        char *redirect;
        bool opaque;
} MovePlan;

static void move_plan_done(MovePlan *p) {
        free(p->redirect);
}

static int plan_move(Union *u, Node *n, bool dst_lower, MovePlan *ret) {
        *ret = (MovePlan) {};
        if (!S_ISDIR(n->type))
                return 0;
        if (node_layer(n) == UPPER && n->last_layer == UPPER) {
                ret->opaque = dst_lower;
                return 0;
        }
        if (n->redirect && n->redirect_layer == UPPER)
                return 0; /* moved before: its redirect already says where its contents are */
        if (!u->redirect_dir)
                return -EXDEV;
        int r = node_layer_path(u, n, MAX(node_layer(n), 1), &ret->redirect);
        if (r < 0)
                return r;
        /* Kernel overlayfs neither writes nor follows redirects longer than this (its redirect_max):
         * refuse like it does, so the upper stays readable by it; mv then copies instead. */
        if (strlen(ret->redirect) + 1 > REDIRECT_MAX) {
                move_plan_done(ret);
                *ret = (MovePlan) {};
                return -EXDEV;
        }
        return 0;
}

/* Mark the (copied-up) directory NAME in the upper PFD as the plan says, before it is renamed. */
static int apply_move(Union *u, Node *n, int pfd, const char *name, const MovePlan *p) {
        if (p->redirect) {
                _cleanup_free_ char *value = NULL;
                size_t size;
                int r = whiteout_redirect_encode(p->redirect, &value, &size);
                if (r < 0)
                        return r;
                _cleanup_close_ int dfd = open_beneath(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
                r = dfd < 0 ? dfd : xattr_set(dfd, u->xattr_redirect, value, size, 0);
                if (r < 0)
                        return r;
        }
        if (p->opaque)
                return cow_set_opaque(u, pfd, name);
        return 0;
}

/* After the rename: the node's view follows its marks. */
static void commit_move(Node *n, MovePlan *p) {
        if (p->redirect) {
                free(n->redirect);
                n->redirect = TAKE_PTR(p->redirect);
                n->redirect_layer = UPPER;
        }
        if (p->opaque)
                n->last_layer = UPPER;
}

/* An upper directory that is empty in the merged view holds only whiteouts: clear them so a directory
 * can be renamed over it. A whiteout cannot be replaced by a directory: drop it first. Returns the
 * number of whiteouts removed. */
static int clear_target(Union *u, int pfd, const char *name, bool moving_dir) {
        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                _cleanup_close_ int dfd = open_beneath(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
                return dfd < 0 ? dfd : dir_remove_whiteouts(u, dfd);
        }
        if (moving_dir && whiteout_is_whiteout(&st))
                return unlinkat(pfd, name, 0) < 0 ? -errno : 1;
        return 0;
}

static int do_rename(Union *u, Node *p1, const char *name, Node *p2, const char *newname, unsigned flags) {
        _cleanup_(lookup_result_done) LookupResult src = {}, dst = {};
        _cleanup_(move_plan_done) MovePlan splan = {}, dplan = {};
        _cleanup_(dir_ref_done) DirRef pd1 = DIR_REF_NULL, pd2 = DIR_REF_NULL;
        _cleanup_close_ int ofd = -EBADF;
        int pfd1, pfd2;
        Node *sn = NULL, *dn = NULL;
        bool exchange = flags & RENAME_EXCHANGE;
        bool src_lower, dst_lower, dst_exists, is_dir;
        int r;

        if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
            (flags & (RENAME_NOREPLACE | RENAME_EXCHANGE)) == (RENAME_NOREPLACE | RENAME_EXCHANGE))
                return -EINVAL; /* RENAME_WHITEOUT is ours alone */
        if (strlen(name) > NAME_MAX || strlen(newname) > NAME_MAX)
                return -ENAMETOOLONG;
        if (u->readonly)
                return -EROFS;

        r = union_lookup(u, p1, name, &src);
        if (r < 0)
                return r;
        r = union_lookup(u, p2, newname, &dst);
        if (r < 0 && (r != -ENOENT || exchange))
                return r;
        dst_exists = r == 0;
        is_dir = S_ISDIR(src.st.st_mode);

        if (dst_exists) {
                if (flags & RENAME_NOREPLACE)
                        return -EEXIST;
                if (dst.st.st_ino == src.st.st_ino)
                        return 0; /* two names of one inode: POSIX says do nothing */
                if (!exchange && is_dir && !S_ISDIR(dst.st.st_mode))
                        return -ENOTDIR;
                if (!exchange && !is_dir && S_ISDIR(dst.st.st_mode))
                        return -EISDIR;
        }

        r = node_obtain(u, p1, name, &src, false, &sn);
        if (r < 0)
                return r;
        if (dst_exists) {
                r = node_obtain(u, p2, newname, &dst, false, &dn);
                if (r < 0)
                        goto out;
                if (!exchange && S_ISDIR(dn->type)) {
                        bool empty, wh;
                        r = dir_is_empty(u, dn, &empty, &wh);
                        if (r < 0)
                                goto out;
                        if (!empty) {
                                r = -ENOTEMPTY;
                                goto out;
                        }
                }
        }

        if ((r = union_name_in_lower(u, p1, name, &src_lower)) < 0 ||
            (r = union_name_in_lower(u, p2, newname, &dst_lower)) < 0)
                goto out;
        if ((r = plan_move(u, sn, dst_lower, &splan)) < 0 ||
            (exchange && (r = plan_move(u, dn, src_lower, &dplan)) < 0))
                goto out;

        /* A file moves with its metadata only (-o metacopy=on): a metacopy file gets a redirect to its
         * data below, or, where the path is too long for one, its data. */
        if ((r = cow_node(u, p1)) < 0 || (r = cow_node(u, p2)) < 0 || (r = cow_node_flags(u, sn, COW_META)) < 0 ||
            (exchange && (r = cow_node_flags(u, dn, COW_META)) < 0))
                goto out;
        if ((r = union_upper_dir(u, p1, &pd1)) < 0 || (r = union_upper_dir(u, p2, &pd2)) < 0)
                goto out;
        pfd1 = pd1.fd;
        pfd2 = pd2.fd;
        if ((r = cow_name(u, sn, pfd1, name)) < 0 || (exchange && (r = cow_name(u, dn, pfd2, newname)) < 0))
                goto out;
        /* The redirect (or the data) goes into the upper inode: one a snapshot shares gets its own
         * first (we hold ns_lock for writing, as cow_unshare() wants). */
        if (node_is_metacopy(sn) && (r = cow_unshare(u, sn)) < 0)
                goto out;
        if ((r = cow_metacopy_redirect(u, sn, pfd1, name)) == -EXDEV)
                r = cow_node(u, sn);
        if (r >= 0 && exchange && node_is_metacopy(dn))
                r = cow_unshare(u, dn);
        if (r >= 0 && exchange && (r = cow_metacopy_redirect(u, dn, pfd2, newname)) == -EXDEV)
                r = cow_node(u, dn);
        if (r < 0)
                goto out;
        if (dn && !exchange)
                ofd = orphan_prepare(u, dn, p2, newname, pfd2);
        if (!exchange) {
                r = clear_target(u, pfd2, newname, is_dir);
                if (r < 0)
                        goto out;
                quota_add(&u->quota, 0, -r);
        }
        if ((r = apply_move(u, sn, pfd1, name, &splan)) < 0 ||
            (exchange && (r = apply_move(u, dn, pfd2, newname, &dplan)) < 0))
                goto out;

        /* Both names survive an exchange; otherwise a lower entry at the old name needs a whiteout,
         * left in the same step. */
        unsigned how = exchange ? RENAME_EXCHANGE : src_lower ? RENAME_WHITEOUT : 0;
        struct stat replaced;
        bool replacing = !exchange && fstatat(pfd2, newname, &replaced, AT_SYMLINK_NOFOLLOW) == 0;
        bool replaced_shared = replacing && S_ISREG(replaced.st_mode) &&
                               inocount_has(&u->shared, replaced.st_dev, replaced.st_ino);
        if (renameat2(pfd1, name, pfd2, newname, how) < 0) {
                r = -errno;
                goto out;
        }
        if (how == RENAME_WHITEOUT)
                quota_add(&u->quota, 0, 1);
        if (replacing)
                quota_name_removed(u, whiteout_is_whiteout(&replaced) ? NULL : dn, &replaced, replaced_shared);
        quota_observe_fd(&u->quota, &p1->qblocks, pfd1);
        if (p2 != p1)
                quota_observe_fd(&u->quota, &p2->qblocks, pfd2);
        if (splan.redirect || splan.opaque)
                quota_observe_at(&u->quota, &sn->qblocks, pfd2, newname);
        if (exchange && (dplan.redirect || dplan.opaque))
                quota_observe_at(&u->quota, &dn->qblocks, pfd1, name);
        if (replacing)
                union_forget_upper(u, &replaced);

        if (dn && !exchange) {
                node_remove_alias(u, dn, p2, newname);
                if (node_unlinked(u, dn))
                        node_keep_orphan(u, dn, TAKE_FD(ofd));
        }
        r = node_move_alias(u, sn, p1, name, p2, newname);
        if (r >= 0 && exchange)
                r = node_move_alias(u, dn, p2, newname, p1, name);
        commit_move(sn, &splan);
        if (exchange)
                commit_move(dn, &dplan);
out:
        node_unref(u, dn, dn ? 1 : 0);
        node_unref(u, sn, sn ? 1 : 0);
        return r;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
        Union *u = req_union(req);
        ns_write(u);
        int r = do_rename(u, node_of(u, parent), name, node_of(u, newparent), newname, flags);
        ns_unlock(u);
        reply_status(req, r);
}

/* ---------- files ---------- */

/* BREAKS: n->breaks read before FD was opened. */
static Handle *handle_new(int fd, int flags, bool lower, Node *n, unsigned breaks) {
        Handle *h = calloc(1, sizeof *h);
        if (!h)
                return NULL;
        *h = (Handle) { .fd = fd, .flags = flags, .lower = lower, .node = n, .breaks = breaks };
        pthread_mutex_init(&h->lock, NULL);
        return h;
}

static bool flags_may_write(int flags) {
        return (flags & O_ACCMODE) != O_RDONLY;
}

/* A handle that may write FD (an upper file) is counted in Union.writers, so a snapshot copies that
 * file instead of sharing its inode. Called with ns_lock held, so no snapshot runs in between. */
static int writer_add(Union *u, int fd, dev_t *ret_dev, ino_t *ret_ino) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        int r = inocount_add(&u->writers, st.st_dev, st.st_ino, 1);
        if (r < 0)
                return r;
        *ret_dev = st.st_dev;
        *ret_ino = st.st_ino;
        return 0;
}

/* Reading a file shared with a snapshot must not move the snapshot's atime either. Best effort: not
 * allowed for a server that does not own the file and lacks CAP_FOWNER. */
static void noatime_if_shared(Union *u, int fd) {
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !inocount_has(&u->shared, st.st_dev, st.st_ino))
                return;
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
                (void) fcntl(fd, F_SETFL, fl | O_NOATIME);
}

static void handle_free(Union *u, Handle *h) {
        /* A file that lost its last name while open: its blocks go with its last fd. */
        if (h->writer && __atomic_load_n(&h->node->qgone, __ATOMIC_ACQUIRE))
                quota_forget(&u->quota, &h->node->qblocks);
        safe_close(h->fd);
        if (h->writer)
                (void) inocount_add(&u->writers, h->wdev, h->wino, -1);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

static void set_open_flags(Union *u, struct fuse_file_info *fi) {
        /* Lower layers never change and the upper only changes through us: the page cache stays
         * valid across opens. */
        fi->keep_cache = 1;
        if (fi->flags & O_DIRECT)
                fi->direct_io = 1;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        struct fuse_entry_param e;
        struct stat st;
        Node *n;
        int fd = -EBADF;
        int flags = open_flags_for(fi->flags);
        bool writer = false;
        dev_t wdev = 0;
        ino_t wino = 0;

        ns_read(u);
        int r = create_object(u, req, node_of(u, parent), name, &(NewObject) { .mode = S_IFREG | (mode & 07777) },
                              flags, &n, &st, &fd);
        if (r >= 0 && flags_may_write(flags)) {
                r = writer_add(u, fd, &wdev, &wino);
                if (r < 0) {
                        fd = safe_close(fd);
                        node_forget(u, n, 1);
                } else
                        writer = true;
        }
        ns_unlock(u);
        if (r < 0)
                return reply_err(req, r);
        Handle *h = handle_new(fd, flags, false, n, __atomic_load_n(&n->breaks, __ATOMIC_ACQUIRE));
        if (!h) {
                safe_close(fd);
                if (writer)
                        (void) inocount_add(&u->writers, wdev, wino, -1);
                node_forget(u, n, 1);
                return reply_err(req, -ENOMEM);
        }
        h->writer = writer;
        h->wdev = wdev;
        h->wino = wino;
        fi->fh = (uint64_t) (uintptr_t) h;
        set_open_flags(u, fi);
        fill_entry(u, n, &st, &e);
        if (fuse_reply_create(req, &e, fi) < 0)
                /* the kernel did not take it (interrupted): undo what it will never release */
                handle_free(u, h);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        Node *n = node_of(u, ino);
        int acc = fi->flags & O_ACCMODE;
        bool trunc = fi->flags & O_TRUNC;
        /* O_TRUNC truncates whatever the access mode, O_RDONLY included, as open(2) does. Access mode 3
         * (neither read nor write: ioctls only) changes nothing and needs no copy. */
        bool writing = acc == O_WRONLY || acc == O_RDWR || trunc;
        int flags = open_flags_for(fi->flags);
        int layer = -1, fd, r = 0;
        bool writer = false, data_only = false;
        dev_t wdev = 0;
        ino_t wino = 0;
        unsigned breaks;

        if (acc == O_ACCMODE)
                flags = (flags & ~O_ACCMODE) | O_RDONLY; /* the kernel refuses reads and writes on it */

        /* Writing: a file shared with a snapshot gets its own copy first, and a writable handle is
         * never on a shared inode (a snapshot copies files open for writing). */
        if (writing) {
                r = ns_read_unshared(u, n);
                if (r < 0)
                        return reply_err(req, r);
        } else
                ns_read(u);
        breaks = __atomic_load_n(&n->breaks, __ATOMIC_ACQUIRE);
        /* Copy up at open, never on first write: with the writeback cache writes arrive late. A copy
         * about to be truncated needs no data. */
        if (writing)
                r = cow_node_flags(u, n, trunc ? COW_TRUNC : 0);
        else
                data_only = node_is_metacopy(n);
        fd = r < 0 ? r : union_node_open(u, n, flags, &layer);
        if (fd >= 0 && trunc) {
                if ((flags & O_ACCMODE) == O_RDONLY) {
                        /* a read-only handle: truncate through a writable fd of the same (upper) file */
                        _cleanup_close_ int wfd = union_node_open(u, n, O_WRONLY, NULL);
                        r = wfd < 0 ? wfd : RET_NERRNO(ftruncate(wfd, 0));
                } else
                        r = RET_NERRNO(ftruncate(fd, 0));
                if (r < 0)
                        fd = safe_close(fd);
                else
                        quota_observe_fd(&u->quota, &n->qblocks, fd);
        }
        if (fd >= 0 && flags_may_write(flags) && layer == UPPER && u->has_upper) {
                r = writer_add(u, fd, &wdev, &wino);
                if (r < 0)
                        fd = safe_close(fd);
                else
                        writer = true;
        } else if (fd >= 0 && layer == UPPER && u->has_upper && !inocount_empty(&u->shared))
                noatime_if_shared(u, fd);
        ns_unlock(u);
        if (fd < 0)
                return reply_err(req, r < 0 ? r : fd);

        Handle *h = handle_new(fd, flags, u->has_upper && layer != UPPER, n, breaks);
        if (!h) {
                safe_close(fd);
                if (writer)
                        (void) inocount_add(&u->writers, wdev, wino, -1);
                return reply_err(req, -ENOMEM);
        }
        h->data_only = data_only && layer != UPPER;
        h->writer = writer;
        h->wdev = wdev;
        h->wino = wino;
        fi->fh = (uint64_t) (uintptr_t) h;
        set_open_flags(u, fi);
        if (fuse_reply_open(req, fi) < 0)
                handle_free(u, h);
}

/* A read-only handle opened before its file was copied up, or before the upper file was replaced by
 * a break (cow_unshare()), or on the lower data of a metacopy file that got its data since, must see the
 * copy from then on: the other handles and the kernel's page cache for the node do. (Writable handles
 * never need this: they are never on a shared inode, nor on a lower one.) */
static bool handle_stale(Handle *h) {
        if (h->data_only)
                return !node_is_metacopy(h->node);
        if (h->lower)
                return node_layer(h->node) == UPPER;
        return __atomic_load_n(&h->breaks, __ATOMIC_ACQUIRE) != __atomic_load_n(&h->node->breaks, __ATOMIC_ACQUIRE);
}

static int handle_fd(Union *u, Handle *h) {
        if (!handle_stale(h))
                return h->fd;
        pthread_mutex_lock(&h->lock);
        if (handle_stale(h)) {
                int layer = -1;
                ns_read(u);
                unsigned breaks = __atomic_load_n(&h->node->breaks, __ATOMIC_ACQUIRE);
                bool data_only = node_is_metacopy(h->node);
                int fd = union_node_open(u, h->node, h->flags, &layer);
                ns_unlock(u);
                if (fd >= 0) {
                        int old = h->fd;
                        /* dup2 keeps the number stable for threads that already read h->fd */
                        if (dup3(fd, old, O_CLOEXEC) >= 0) {
                                h->lower = layer != UPPER;
                                h->data_only = data_only && layer != UPPER;
                                __atomic_store_n(&h->breaks, breaks, __ATOMIC_RELEASE);
                        }
                        safe_close(fd);
                }
        }
        pthread_mutex_unlock(&h->lock);
        return h->fd;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        Handle *h = (Handle *) (uintptr_t) fi->fh;
        struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

        if (size >= WORKER_HANDOFF_BYTES)
                worker_may_block(); /* a large transfer: let other requests go on meanwhile */

        buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        buf.buf[0].fd = handle_fd(u, h);
        buf.buf[0].pos = off;
        fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi) {
        Union *u = req_union(req);
        Handle *h = (Handle *) (uintptr_t) fi->fh;
        size_t size = fuse_buf_size(in);

        if (quota_enabled(&u->quota)) {
                /* A write from the page cache is all or nothing; one from a program (writeback
                 * off, O_DIRECT) may be short, as on a file system that is full. */
                int r = quota_check_write(&u->quota, h->fd, off, size, !fi->writepage, &size);
                if (r < 0) {
                        if (fi->writepage)
                                __atomic_store_n(&h->node->qrefused, true, __ATOMIC_RELEASE);
                        reply_err(req, r);
                        if (fi->writepage && session)
                                /* After the reply: a kernel evicting the inode may wait for it. */
                                (void) fuse_lowlevel_notify_inval_inode(session, ino, -1, 0);
                        return;
                }
        }
        struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);

        if (size >= WORKER_HANDOFF_BYTES)
                worker_may_block(); /* a large transfer: let other requests go on meanwhile */

        out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        out.buf[0].fd = h->fd;
        out.buf[0].pos = off;
        change_begin(u);
        ssize_t k = fuse_buf_copy(&out, in, 0);
        change_end(u);
        if (k > 0)
                quota_observe_fd(&u->quota, &h->node->qblocks, h->fd);
        if (k < 0)
                return reply_err(req, (int) k);
        fuse_reply_write(req, (size_t) k);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        handle_free(req_union(req), (Handle *) (uintptr_t) fi->fh);
        fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
        Handle *h = (Handle *) (uintptr_t) fi->fh;
        /* volatile (fsync=0): nothing is flushed. ENOSYS makes the kernel answer every later fsync of
         * the mount with success by itself, without asking us again. */
        if (!req_union(req)->sync_copyup)
                return (void) fuse_reply_err(req, ENOSYS);
        worker_may_block();
        int r = RET_NERRNO(datasync ? fdatasync(h->fd) : fsync(h->fd));
        reply_status(req, r);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
        Handle *h = (Handle *) (uintptr_t) fi->fh;
        worker_may_block();
        Union *u = req_union(req);
        int r = 0;
        /* Punching and collapsing free space; everything else may allocate. */
        if (!h->lower && !(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE)) && len > 0)
                r = quota_check_write(&u->quota, h->fd, off, (size_t) len, false, NULL);
        if (r < 0)
                return reply_status(req, r);
        change_begin(u);
        r = h->lower ? -EBADF : RET_NERRNO(fallocate(h->fd, mode, off, len));
        change_end(u);
        if (!h->lower)
                quota_observe_fd(&u->quota, &h->node->qblocks, h->fd);
        reply_status(req, r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        Handle *h = (Handle *) (uintptr_t) fi->fh;
        off_t r = lseek(handle_fd(u, h), off, whence);
        if (r < 0)
                return reply_err(req, -errno);
        fuse_reply_lseek(req, r);
}

/* ---------- directories ---------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        DirHandle *d = calloc(1, sizeof *d);
        if (!d)
                return reply_err(req, -ENOMEM);
        fi->fh = (uint64_t) (uintptr_t) d;
        fi->keep_cache = 1;
        fi->cache_readdir = 1;
        if (fuse_reply_open(req, fi) < 0) {
                dir_list_done(&d->list);
                free(d);
        }
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, bool plus) {
        Union *u = req_union(req);
        DirHandle *d = (DirHandle *) (uintptr_t) fi->fh;
        Node *dir = node_of(u, ino);
        _cleanup_free_ char *buf = malloc(size);
        size_t used = 0;

        if (!buf)
                return reply_err(req, -ENOMEM);
        if (off == 0 || !d->loaded) {
                DirList l = {};
                ns_read(u);
                int r = dir_list_read(u, dir, true, &l);
                ns_unlock(u);
                if (r < 0)
                        return reply_err(req, r);
                dir_list_done(&d->list);
                d->list = l;
                d->loaded = true;
        }
        if (plus)
                ns_read(u);
        for (size_t i = (size_t) MAX(off, 0); i < d->list.n_entries; i++) {
                DirEntry *de = &d->list.entries[i];
                size_t k;

                if (!plus) {
                        struct stat st = { .st_ino = (ino_t) de->ino, .st_mode = (mode_t) DTTOIF(de->type) };
                        k = fuse_add_direntry(req, buf + used, size - used, de->name, &st, (off_t) i + 1);
                        if (k > size - used)
                                break;
                        used += k;
                        continue;
                }

                struct fuse_entry_param e = { .attr.st_ino = (ino_t) de->ino, .attr.st_mode = (mode_t) DTTOIF(de->type) };
                Node *n = NULL;
                if (!streq(de->name, ".") && !streq(de->name, "..")) {
                        struct stat st;
                        if (lookup_entry(u, dir, de->name, true, &n, &st) >= 0)
                                fill_entry(u, n, &st, &e);
                        /* a name that vanished meanwhile is listed without attributes */
                }
                k = fuse_add_direntry_plus(req, buf + used, size - used, de->name, &e, (off_t) i + 1);
                if (k > size - used) {
                        if (n)
                                node_forget(u, n, 1); /* not sent: the kernel will not count it */
                        break;
                }
                used += k;
        }
        if (plus)
                ns_unlock(u);
        fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
        do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        DirHandle *d = (DirHandle *) (uintptr_t) fi->fh;
        dir_list_done(&d->list);
        free(d);
        fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
        Union *u = req_union(req);
        if (!u->sync_copyup)
                return (void) fuse_reply_err(req, ENOSYS); /* volatile: as op_fsync() */
        worker_may_block();
        ns_read(u);
        int fd = union_node_open(u, node_of(u, ino), O_RDONLY | O_DIRECTORY, NULL);
        ns_unlock(u);
        int r = fd < 0 ? fd : RET_NERRNO(datasync ? fdatasync(fd) : fsync(fd));
        safe_close(fd);
        reply_status(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        Union *u = req_union(req);
        struct statvfs sv;
        if (fstatvfs(u->layers[0].fd, &sv) < 0)
                return reply_err(req, -errno);
        /* With a quota, df and package managers see it as the size of the file system. */
        quota_statvfs(&u->quota, &sv);
        fuse_reply_statfs(req, &sv);
}

/* ---------- extended attributes ---------- */

/*
 * Names in our own namespace ("trusted.overlay.") are escaped as the kernel does (6.7+), so that a
 * union can itself be a layer of another one: "trusted.overlay.X" through the mount is stored as
 * "trusted.overlay.overlay.X", and our real markers (opaque, redirect, ...) are never visible.
 */
static int xattr_disk_name(Union *u, const char *name, char **ret) {
        size_t n = strlen(u->xattr_prefix);
        if (!strneq(name, u->xattr_prefix, n)) {
                *ret = NULL;
                return 0;
        }
        if (asprintf(ret, "%soverlay.%s", u->xattr_prefix, name + n) < 0)
                return -ENOMEM;
        if (strlen(*ret) > XATTR_NAME_MAX) {
                free(*ret);
                *ret = NULL;
                return -ERANGE;
        }
        return 1;
}

/* The name to list for a name found on disk, or NULL to hide it. */
static const char *xattr_shown_name(Union *u, const char *disk, char *buf, size_t size) {
        size_t n = strlen(u->xattr_prefix);
        if (!strneq(disk, u->xattr_prefix, n))
                return disk;
        if (!strneq(disk + n, "overlay.", 8) || disk[n + 8] == '\0')
                return NULL;
        if ((size_t) snprintf(buf, size, "%s%s", u->xattr_prefix, disk + n + 8) >= size)
                return NULL;
        return buf;
}

static bool node_has_no_xattrs(Node *n) {
        return __atomic_load_n(&n->no_xattrs, __ATOMIC_ACQUIRE);
}

/* xattr_permissions=: fuse-overlayfs's override xattrs are the mount's bookkeeping, not the user's. */
static bool xattr_is_override(Union *u, const char *name) {
        return u->override_xattr && (streq(name, "security.fuseoverlayfs.override_stat") ||
                                     streq(name, "user.containers.override_stat") ||
                                     streq(name, "user.fuseoverlayfs.override_stat"));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
        Union *u = req_union(req);
        _cleanup_free_ char *buf = NULL, *disk = NULL;

        if (u->noxattrs)
                return reply_err(req, -EOPNOTSUPP);
        if (node_has_no_xattrs(node_of(u, ino)) || xattr_is_override(u, name))
                return reply_err(req, -ENODATA);

        int r = xattr_disk_name(u, name, &disk);
        if (r < 0)
                return reply_err(req, r);
        if (size > 0 && !(buf = malloc(size)))
                return reply_err(req, -ENOMEM);
        ns_read(u);
        int fd = union_node_open(u, node_of(u, ino), O_PATH, NULL);
        ns_unlock(u);
        if (fd < 0)
                return reply_err(req, fd);
        ssize_t k = xattr_get(fd, disk ?: name, buf, size);
        safe_close(fd);
        if (k < 0)
                return reply_err(req, (int) k);
        if (size == 0)
                fuse_reply_xattr(req, (size_t) k);
        else
                fuse_reply_buf(req, buf, (size_t) k);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
        Union *u = req_union(req);
        _cleanup_free_ char *list = NULL, *out = NULL;
        size_t n = 0, used = 0;

        if (u->noxattrs)
                return reply_err(req, -EOPNOTSUPP);
        if (node_has_no_xattrs(node_of(u, ino))) {
                if (size == 0)
                        fuse_reply_xattr(req, 0);
                else
                        fuse_reply_buf(req, NULL, 0);
                return;
        }

        ns_read(u);
        int fd = union_node_open(u, node_of(u, ino), O_PATH, NULL);
        ns_unlock(u);
        if (fd < 0)
                return reply_err(req, fd);
        int r = xattr_list_malloc(fd, &list, &n);
        safe_close(fd);
        if (r < 0)
                return reply_err(req, r);
        out = malloc(n + 1);
        if (!out)
                return reply_err(req, -ENOMEM);
        for (size_t i = 0; i < n;) {
                char buf[XATTR_NAME_MAX + 1];
                size_t len = strnlen(list + i, n - i);
                const char *shown = xattr_shown_name(u, list + i, buf, sizeof buf);
                if (shown && !xattr_is_override(u, shown)) {
                        size_t k = strlen(shown) + 1; /* never longer than the name on disk */
                        memcpy(out + used, shown, k);
                        used += k;
                }
                i += len + 1;
        }
        if (size == 0)
                fuse_reply_xattr(req, used);
        else if (size < used)
                reply_err(req, -ERANGE);
        else
                fuse_reply_buf(req, out, used);
}

static int change_xattr(Union *u, Node *n, const char *name, const char *value, size_t size, int flags, bool remove) {
        _cleanup_free_ char *disk = NULL;
        if (u->noxattrs)
                return -EOPNOTSUPP;
        if (xattr_is_override(u, name))
                return -EPERM;
        int r = xattr_disk_name(u, name, &disk);
        if (r < 0)
                return r;
        /* A value may need a block of its own. */
        if (!remove) {
                r = quota_check(&u->quota, size + strlen(name), 0);
                if (r < 0)
                        return r;
        }
        r = cow_node_flags(u, n, COW_META);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = union_node_open(u, n, O_PATH, NULL);
        if (fd < 0)
                return fd;
        if (!remove)
                __atomic_store_n(&n->no_xattrs, false, __ATOMIC_RELEASE); /* before: never miss one */
        r = remove ? xattr_remove(fd, disk ?: name) : xattr_set(fd, disk ?: name, value, size, flags);
        quota_observe_fd(&u->quota, &n->qblocks, fd);
        return r;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
        Union *u = req_union(req);
        int r = ns_read_unshared(u, node_of(u, ino));
        if (r < 0)
                return reply_status(req, r);
        r = change_xattr(u, node_of(u, ino), name, value, size, flags, false);
        ns_unlock(u);
        reply_status(req, r);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
        Union *u = req_union(req);
        int r = ns_read_unshared(u, node_of(u, ino));
        if (r < 0)
                return reply_status(req, r);
        r = change_xattr(u, node_of(u, ino), name, NULL, 0, 0, true);
        ns_unlock(u);
        reply_status(req, r);
}

/* ---------- control ---------- */

/* UNIONFS_IOC_SNAPSHOT on the root directory (control.h). Only the user the server runs as may ask:
 * the copy is made with the server's privileges, anywhere that user can name. */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
                     unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz) {
        Union *u = req_union(req);
        struct unionfs_snapshot_req q;
        SnapshotResult res;

        if (cmd != UNIONFS_IOC_SNAPSHOT || ino != FUSE_ROOT_ID || !(flags & FUSE_IOCTL_DIR))
                return reply_err(req, -ENOTTY);
        if (in_bufsz != sizeof q || out_bufsz != sizeof q || !in_buf)
                return reply_err(req, -EINVAL);
        if (fuse_req_ctx(req)->uid != server_uid)
                return reply_err(req, -EPERM);
        if (!u->snapshot)
                return reply_err(req, -EOPNOTSUPP);
        memcpy(&q, in_buf, sizeof q);
        if (q.version != UNIONFS_SNAPSHOT_VERSION || q.flags != 0 || !memchr(q.dest, '\0', sizeof q.dest))
                return reply_err(req, -EINVAL);

        /* DEST's path may lead through a FUSE mount, this one included: keep requests being read. */
        worker_may_block();
        int r = snapshot_take(u, q.dest, &res);
        if (r < 0) {
                log_debug_errno(r, "Snapshot to '%s' failed: %m", q.dest);
                return reply_err(req, r);
        }
        log_debug("Snapshot to '%s': %" PRIu64 " entries (%" PRIu64 " files hard-linked, shared until changed), "
                  "changes paused for %" PRIu64 " ns.", q.dest, res.entries, res.linked, res.pause_ns);
        q.pause_ns = res.pause_ns;
        q.entries = res.entries;
        fuse_reply_ioctl(req, 0, &q, sizeof q);
}

/* ---------- session ---------- */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        unsigned want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ |
                        FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_READDIRPLUS |
                        FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_ASYNC_READ |
                        FUSE_CAP_ASYNC_DIO | FUSE_CAP_IOCTL_DIR;
        if (config.writeback)
                want |= FUSE_CAP_WRITEBACK_CACHE;
        conn->want |= want & conn->capable;
        /* Locks stay in the kernel: one mount, one lock space. */
        conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
        conn->max_write = 1024 * 1024;
        conn->max_readahead = 1024 * 1024;
        if (config.max_read)
                conn->max_read = config.max_read;
        conn->time_gran = 1;
}

static void op_destroy(void *userdata) {
}

const struct fuse_lowlevel_ops union_fuse_ops = {
        .init = op_init,
        .destroy = op_destroy,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .readlink = op_readlink,
        .mknod = op_mknod,
        .mkdir = op_mkdir,
        .symlink = op_symlink,
        .link = op_link,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .rename = op_rename,
        .create = op_create,
        .open = op_open,
        .read = op_read,
        .write_buf = op_write_buf,
        .release = op_release,
        .fsync = op_fsync,
        .fallocate = op_fallocate,
        .lseek = op_lseek,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .readdirplus = op_readdirplus,
        .releasedir = op_releasedir,
        .fsyncdir = op_fsyncdir,
        .statfs = op_statfs,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .setxattr = op_setxattr,
        .removexattr = op_removexattr,
        .ioctl = op_ioctl,
};
