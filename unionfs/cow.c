/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Copy-up: bring a node's object into the upper layer before anything changes it, parents first.
 * The copy is built complete in the work directory (copyup.c) and renamed into place with
 * RENAME_NOREPLACE, so a crash leaves either nothing or the whole copy visible. A lower regular
 * file with several hard links is copied once into the index directory and linked from there to
 * each name as it is copied up, so its names stay one inode, also across remounts.
 * Callers hold ns_lock; copy-ups are serialized by cow_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "copyup.h"
#include "fs.h"
#include "macro.h"
#include "union.h"
#include "whiteout.h"
#include "xattr.h"

int cow_make_whiteout(Union *u, int upper_dirfd, const char *name) {
        return RET_NERRNO(mknodat(upper_dirfd, name, S_IFCHR | 0000, makedev(0, 0)));
}

int cow_set_opaque(Union *u, int dirfd, const char *name) {
        _cleanup_close_ int fd = open_beneath(dirfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        return xattr_set(fd, u->xattr_opaque, "y", 1, 0);
}

static int note_upper(Union *u, Node *n, int dirfd, const char *name) {
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        union_note_copyup(u, st.st_dev, st.st_ino, n->ino);
        return 0;
}

/* The index copy TMP (in the work directory) of the lower file ST records where it comes from. */
static int set_index_origin(Union *u, const char *tmp, const char *key, const struct stat *st) {
        char origin[96];
        int len = snprintf(origin, sizeof origin, "%s:%u", key, (unsigned) st->st_nlink);
        _cleanup_close_ int fd = open_beneath(u->work_fd, tmp, O_PATH | O_NOFOLLOW, 0);
        return fd < 0 ? fd : xattr_set(fd, u->xattr_origin, origin, (size_t) len, 0);
}

/* Copy a lower hard link into the index once, then link the index copy to NAME in the upper. */
static int cow_indexed(Union *u, Node *n, int srcdir, const char *srcname, const struct stat *st,
                       int updir, const char *name) {
        char key[64], tmp[64];
        int r;

        index_key(key, st->st_dev, st->st_ino);
        if (linkat(u->index_fd, key, updir, name, 0) == 0)
                goto done;
        if (errno != ENOENT)
                return -errno;
        r = quota_check(&u->quota, (uint64_t) st->st_blocks * 512, 1);
        if (r < 0)
                return r;

        r = copyup_make_temp(srcdir, srcname, st, u->work_fd, &(CopyupIds) { st->st_uid, st->st_gid },
                             u->xattr_prefix, u->sync_copyup ? 0 : COPYUP_NO_FSYNC, tmp, sizeof tmp);
        if (r < 0)
                return r;
        r = set_index_origin(u, tmp, key, st);
        if (r >= 0 && renameat2(u->work_fd, tmp, u->index_fd, key, RENAME_NOREPLACE) < 0)
                r = -errno;
        if (r < 0) {
                (void) copyup_remove_temp(u->work_fd, tmp);
                if (r != -EEXIST)
                        return r;
        } else {
                /* The index copy is the new inode; the names linked to it add none. */
                quota_add(&u->quota, 0, 1);
                quota_observe_at(&u->quota, &n->qblocks, u->index_fd, key);
        }
        if (linkat(u->index_fd, key, updir, name, 0) < 0)
                return -errno;
done:
        n->lower_dev = st->st_dev;
        n->lower_ino = st->st_ino;
        __atomic_store_n(&n->indexed, true, __ATOMIC_RELEASE);
        return 0;
}

/* Copy-up is not a change the user made: put back the upper parent's times that adding the copy moved,
 * as overlayfs does. */
static void restore_parent_times(int updir, const struct stat *before) {
        char proc[32];
        struct timespec ts[2] = { before->st_atim, before->st_mtim };
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", updir);
        (void) utimensat(AT_FDCWD, proc, ts, 0);
}

/* What adding NAME to the upper directory UPDIR cost it: the directory is N's parent's upper copy. */
static void quota_parent_grew(Union *u, Node *n, int updir) {
        Node *parent = n->n_aliases ? n->aliases[0].parent : NULL;
        if (parent)
                quota_observe_fd(&u->quota, &parent->qblocks, updir);
}

/* Mark the copy TMP in the work directory as a metacopy file (its data is still below). */
static int set_metacopy(Union *u, const char *tmp) {
        _cleanup_close_ int fd = open_beneath(u->work_fd, tmp, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        /* An empty value, as overlayfs writes it without fs-verity. */
        return xattr_set(fd, u->xattr_metacopy, "", 0, 0);
}

/* Complete metacopy node N: its data into its upper file, in place (the file is one hole of the data's
 * size, and reads still go to the data below until the marker is removed), then the marker goes. With
 * COW_TRUNC the data is not needed: the file is truncated instead. cow_lock held. */
static int cow_data(Union *u, Node *n, unsigned flags) {
        _cleanup_close_ int pfd = -EBADF, wfd = -EBADF, src = -EBADF;
        struct stat st;
        char proc[32];
        int r;

        pfd = union_node_open(u, n, O_PATH, NULL); /* the upper file itself (or the orphan) */
        if (pfd < 0)
                return pfd;
        if (fstat(pfd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EIO;
        (void) snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        wfd = open(proc, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (wfd < 0)
                return -errno;
        if (flags & COW_TRUNC)
                r = RET_NERRNO(ftruncate(wfd, 0));
        else {
                struct stat sst;
                src = layer_open(u, n->data_layer, n->data_path, O_RDONLY | O_NOFOLLOW);
                if (src < 0)
                        return src == -ENOENT || src == -ELOOP || src == -ENOTDIR ? -EIO : src;
                /* the data allocates about what it does below (holes stay holes) */
                if (fstat(src, &sst) < 0)
                        return -errno;
                r = quota_check(&u->quota, (uint64_t) sst.st_blocks * 512, 0);
                if (r < 0)
                        return r;
                r = copyup_data(src, wfd, (uint64_t) st.st_size);
                if (r >= 0 && u->sync_copyup)
                        r = RET_NERRNO(fsync(wfd));
                if (r >= 0) {
                        /* writing the data is not a change the user made */
                        const struct timespec ts[2] = { st.st_atim, st.st_mtim };
                        r = RET_NERRNO(futimens(wfd, ts));
                }
        }
        quota_observe_fd(&u->quota, &n->qblocks, wfd);
        if (r < 0)
                return r;
        r = xattr_remove(pfd, u->xattr_metacopy);
        if (r < 0 && r != -ENODATA)
                return r;
        r = xattr_remove(pfd, u->xattr_redirect);
        if (r < 0 && r != -ENODATA)
                return r;
        __atomic_store_n(&n->metacopy, false, __ATOMIC_RELEASE);
        return 0;
}

static void node_set_metacopy(Node *n, int data_layer, char *data_path) {
        if (!n->data_path) {
                n->data_layer = data_layer;
                n->data_path = data_path;
        } else
                free(data_path);
        __atomic_store_n(&n->metacopy, true, __ATOMIC_RELEASE);
}

/* N has no name any more (unlinked or replaced while open) and is still in a lower layer: copy its
 * object to an anonymous upper file that only N's orphan fd holds, so that a change through an open fd
 * applies to the open file, as on any filesystem. cow_lock held. */
static int cow_orphan(Union *u, Node *n, unsigned flags) {
        _cleanup_close_ int ofd = -EBADF;
        struct stat st;
        char tmp[COPYUP_TEMP_NAME_MAX];
        unsigned cflags = u->sync_copyup ? 0 : COPYUP_NO_FSYNC;
        bool metacopy = node_is_metacopy(n);
        int r;

        if (n->orphan_fd < 0)
                return -ENOENT; /* unlinked while open, and nothing kept of it */
        if (fstat(n->orphan_fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !metacopy && u->has_upper) {
                /* A lower hard link whose other names stay: its copy is the index copy they will
                 * show too, as after a copy-up through a name (cow_indexed()). */
                char key[64];
                index_key(key, st.st_dev, st.st_ino);
                if (faccessat(u->index_fd, key, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        r = quota_check(&u->quota, (uint64_t) st.st_blocks * 512, 1);
                        if (r < 0)
                                return r;
                        r = copyup_make_temp_fd(n->orphan_fd, &st, u->work_fd, &(CopyupIds) { st.st_uid, st.st_gid },
                                                u->xattr_prefix, cflags & ~COPYUP_EMPTY, tmp, sizeof tmp);
                        if (r < 0)
                                return r;
                        r = set_index_origin(u, tmp, key, &st);
                        if (r >= 0 && renameat2(u->work_fd, tmp, u->index_fd, key, RENAME_NOREPLACE) < 0)
                                r = -errno;
                        if (r < 0) {
                                (void) copyup_remove_temp(u->work_fd, tmp);
                                return r;
                        }
                        quota_add(&u->quota, 0, 1);
                        quota_observe_at(&u->quota, &n->qblocks, u->index_fd, key);
                }
                n->lower_dev = st.st_dev;
                n->lower_ino = st.st_ino;
                __atomic_store_n(&n->indexed, true, __ATOMIC_RELEASE);
                node_set_layer(n, UPPER);
                if (flags & COW_TRUNC) {
                        _cleanup_close_ int wfd = open_beneath(u->index_fd, key, O_WRONLY | O_NOFOLLOW, 0);
                        if (wfd < 0 || ftruncate(wfd, 0) < 0)
                                return wfd < 0 ? wfd : -errno;
                        quota_observe_fd(&u->quota, &n->qblocks, wfd);
                }
                return 0;
        }
        if (S_ISREG(st.st_mode) && ((flags & COW_TRUNC) || metacopy))
                cflags |= (flags & COW_TRUNC) ? COPYUP_EMPTY : COPYUP_META_ONLY;
        /* The anonymous copy has no name: like an open file whose last name went (qgone), its blocks
         * count while the node lives, its inode does not. A metacopy file's data is further down. */
        r = quota_check(&u->quota, S_ISREG(st.st_mode) && !(flags & COW_TRUNC) ?
                        (uint64_t) (metacopy ? st.st_size : st.st_blocks * 512) : 0, 0);
        if (r < 0)
                return r;
        r = copyup_make_temp_fd(n->orphan_fd, &st, u->work_fd, &(CopyupIds) { st.st_uid, st.st_gid },
                                u->xattr_prefix, cflags, tmp, sizeof tmp);
        if (r < 0)
                return r;
        if (metacopy && !(flags & COW_TRUNC)) {
                /* the data is elsewhere: fill the copy from there */
                _cleanup_close_ int src = layer_open(u, n->data_layer, n->data_path, O_RDONLY | O_NOFOLLOW);
                _cleanup_close_ int dst = open_beneath(u->work_fd, tmp, O_WRONLY | O_NOFOLLOW, 0);
                r = src < 0 ? src : dst < 0 ? dst : copyup_data(src, dst, (uint64_t) st.st_size);
                if (r >= 0) {
                        const struct timespec ts[2] = { st.st_atim, st.st_mtim };
                        r = RET_NERRNO(futimens(dst, ts));
                }
        }
        if (r >= 0) {
                ofd = open_beneath(u->work_fd, tmp, O_PATH | O_NOFOLLOW, 0);
                if (ofd < 0)
                        r = ofd;
        }
        if (r < 0) {
                (void) copyup_remove_temp(u->work_fd, tmp);
                return r;
        }
        if (unlinkat(u->work_fd, tmp, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
                return -errno;
        /* The same fd number now holds the copy: a thread that just read it gets either object. */
        if (dup3(ofd, n->orphan_fd, O_CLOEXEC) < 0)
                return -errno;
        __atomic_store_n(&n->qgone, true, __ATOMIC_RELEASE);
        quota_observe_fd(&u->quota, &n->qblocks, n->orphan_fd);
        __atomic_store_n(&n->metacopy, false, __ATOMIC_RELEASE);
        node_set_layer(n, UPPER);
        return 0;
}

static int cow_one(Union *u, Node *n, unsigned flags) {
        _cleanup_free_ char *lpath = NULL;
        _cleanup_(dir_ref_done) DirRef upd = DIR_REF_NULL;
        _cleanup_close_ int srcdir = -EBADF;
        int updir;
        const char *srcname;
        char name[NAME_MAX + 1];
        struct stat st, pst;
        char tmp[64];
        int layer = node_layer(n);
        bool meta = false;
        int r;

        if (layer == UPPER)
                return 0;

        r = union_upper_parent(u, n, name, &upd);
        if (r < 0)
                return r;
        updir = upd.fd;
        if (fstat(updir, &pst) < 0)
                return -errno;

        if (n->indexed) {
                char key[64];
                index_key(key, n->lower_dev, n->lower_ino);
                r = quota_check(&u->quota, 0, 0);
                if (r < 0)
                        return r;
                if (linkat(u->index_fd, key, updir, name, 0) < 0)
                        return -errno;
                restore_parent_times(updir, &pst);
                quota_parent_grew(u, n, updir);
                r = note_upper(u, n, updir, name);
                if (r < 0)
                        return r;
                node_set_layer(n, UPPER);
                return 0;
        }

        r = node_layer_path(u, n, layer, &lpath);
        if (r < 0)
                return r;
        srcdir = layer_open_parent(u, layer, lpath, &srcname);
        if (srcdir < 0)
                return srcdir;
        if (fstatat(srcdir, srcname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if ((st.st_mode & S_IFMT) != n->type)
                return -ESTALE; /* lower layers must not change under a mount */

        if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !node_is_metacopy(n)) {
                r = cow_indexed(u, n, srcdir, srcname, &st, updir, name);
                if (r < 0)
                        return r;
        } else {
                unsigned cflags = u->sync_copyup ? 0 : COPYUP_NO_FSYNC;
                /* metadata only: for a change of metadata with -o metacopy=on, and always for a
                 * metacopy file of a lower layer (its data is further down; cow_data() fetches it) */
                meta = S_ISREG(st.st_mode) && !(flags & COW_TRUNC) &&
                       (node_is_metacopy(n) || ((flags & COW_META) && u->metacopy));
                if (meta)
                        cflags |= COPYUP_META_ONLY;
                else if (S_ISREG(st.st_mode) && (flags & COW_TRUNC))
                        cflags |= COPYUP_EMPTY;
                /* The copy allocates about what the source does (holes stay holes); a metadata-only or
                 * empty copy, an inode. */
                r = quota_check(&u->quota, S_ISREG(st.st_mode) && !meta && !(flags & COW_TRUNC) ?
                                (uint64_t) st.st_blocks * 512 : 0, 1);
                if (r < 0)
                        return r;
                r = copyup_make_temp(srcdir, srcname, &st, u->work_fd, &(CopyupIds) { st.st_uid, st.st_gid },
                                     u->xattr_prefix, cflags, tmp, sizeof tmp);
                if (r < 0)
                        return r;
                if (meta)
                        r = set_metacopy(u, tmp);
                if (r >= 0 && renameat2(u->work_fd, tmp, updir, name, RENAME_NOREPLACE) < 0)
                        r = -errno;
                if (r < 0) {
                        (void) copyup_remove_temp(u->work_fd, tmp);
                        return r;
                }
                quota_add(&u->quota, 0, 1);
                quota_observe_at(&u->quota, &n->qblocks, updir, name);
        }
        restore_parent_times(updir, &pst);
        quota_parent_grew(u, n, updir);
        r = note_upper(u, n, updir, name);
        if (r < 0)
                return r;
        if (S_ISDIR(st.st_mode))
                __atomic_store_n(&n->merged, true, __ATOMIC_RELAXED); /* upper + lower from now on */
        if (meta && !node_is_metacopy(n))
                node_set_metacopy(n, layer, TAKE_PTR(lpath));
        if (!meta && (flags & COW_TRUNC))
                __atomic_store_n(&n->metacopy, false, __ATOMIC_RELEASE);
        node_set_layer(n, UPPER);
        return 0;
}

int cow_node_flags(Union *u, Node *n, unsigned flags) {
        Node *chain[256];
        size_t depth = 0;
        int r = 0;

        if (node_layer(n) == UPPER && ((flags & COW_META) || !node_is_metacopy(n)))
                return 0;
        if (!u->has_upper || u->readonly)
                return -EROFS;
        if (u->may_block)
                u->may_block(); /* copying data: let other requests be read meanwhile */

        pthread_mutex_lock(&u->cow_lock);
        /* Ancestors below the nearest upper directory, copied top-down. Very deep lower-only trees
         * are handled by repeating from the top until everything above N is in the upper. */
        for (;;) {
                depth = 0;
                pthread_mutex_lock(&u->table_lock);
                for (Node *p = n->n_aliases ? n->aliases[0].parent : NULL; p && node_layer(p) != UPPER;
                     p = p->n_aliases ? p->aliases[0].parent : NULL) {
                        if (depth == ELEMENTSOF(chain))
                                memmove(chain, chain + 1, sizeof chain - sizeof chain[0]), depth--;
                        chain[depth++] = p;
                }
                pthread_mutex_unlock(&u->table_lock);
                if (depth == 0)
                        break;
                for (size_t i = depth; i > 0; i--) {
                        r = cow_one(u, chain[i - 1], 0);
                        if (r < 0)
                                goto out;
                }
        }
        if (node_layer(n) != UPPER)
                r = node_unlinked(u, n) ? cow_orphan(u, n, flags) : cow_one(u, n, flags);
        if (r >= 0 && !(flags & COW_META) && node_is_metacopy(n))
                r = cow_data(u, n, flags);
out:
        pthread_mutex_unlock(&u->cow_lock);
        return r;
}

int cow_metacopy_redirect(Union *u, Node *n, int upper_dirfd, const char *name) {
        _cleanup_free_ char *value = NULL;
        size_t size;
        int r;

        if (!node_is_metacopy(n))
                return 0;
        /* Absolute, so that it holds wherever the file goes; as long as overlayfs takes one. */
        if (strlen(n->data_path) + 2 > 256)
                return -EXDEV;
        r = whiteout_redirect_encode(n->data_path, &value, &size);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open_beneath(upper_dirfd, name, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        return xattr_set(fd, u->xattr_redirect, value, size, 0);
}

int cow_name(Union *u, Node *n, int upper_dirfd, const char *name) {
        struct stat st;
        char key[64];

        if (fstatat(upper_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        if (errno != ENOENT)
                return -errno;
        /* A lower hard link copied up through another of its names: link this name to the copy. */
        if (!n->indexed)
                return -ENOENT;
        index_key(key, n->lower_dev, n->lower_ino);
        if (linkat(u->index_fd, key, upper_dirfd, name, 0) < 0)
                return -errno;
        return 0;
}

/* The upper name of N, a regular file with one name that is not an index copy, and its stat. */
static int shared_candidate(Union *u, Node *n, char name[static NAME_MAX + 1], DirRef *ret_pd, struct stat *ret_st) {
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        int r;

        if (!S_ISREG(n->type) || node_layer(n) != UPPER || n == u->root || !u->has_upper ||
            __atomic_load_n(&n->indexed, __ATOMIC_ACQUIRE) || n->n_aliases == 0)
                return 0;
        r = union_upper_parent(u, n, name, &pd);
        if (r < 0)
                return r;
        if (fstatat(pd.fd, name, ret_st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISREG(ret_st->st_mode) || !inocount_has(&u->shared, ret_st->st_dev, ret_st->st_ino))
                return 0;
        *ret_pd = pd;
        pd = DIR_REF_NULL;
        return 1;
}

bool cow_is_shared(Union *u, Node *n) {
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        char name[NAME_MAX + 1];
        struct stat st;

        if (inocount_empty(&u->shared))
                return false; /* no snapshot shares anything: no syscall */
        return shared_candidate(u, n, name, &pd, &st) > 0;
}

int cow_unshare_prepare(Union *u, Node *n, CowBreak *ret) {
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        char name[NAME_MAX + 1];
        int r;

        ret->tmp[0] = '\0';
        if (inocount_empty(&u->shared))
                return 0;
        r = shared_candidate(u, n, name, &pd, &ret->st);
        if (r <= 0)
                return r;
        if (u->may_block)
                u->may_block(); /* copying data: let other requests be read meanwhile */
        /* Everything of the file as it is (owner, mode, every xattr, times, data with holes): the mount
         * must not see a difference, the snapshot keeps the old inode unchanged. While it is shared,
         * nothing changes that inode (every change through the mount breaks the sharing first, under
         * ns_lock write-held), so the copy stays exact until cow_unshare_commit(). */
        r = copyup_make_temp(pd.fd, name, &ret->st, u->work_fd, NULL, NULL, u->sync_copyup ? 0 : COPYUP_NO_FSYNC,
                             ret->tmp, sizeof ret->tmp);
        if (r < 0) {
                ret->tmp[0] = '\0';
                return r;
        }
        return 1;
}

void cow_unshare_discard(Union *u, CowBreak *c) {
        if (c->tmp[0])
                (void) copyup_remove_temp(u->work_fd, c->tmp);
        c->tmp[0] = '\0';
}

int cow_unshare_commit(Union *u, Node *n, CowBreak *c) {
        _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
        char name[NAME_MAX + 1];
        struct stat st, pst, nst;
        int r;

        if (!c->tmp[0])
                return 0;
        /* Still the inode that was copied, at N's name as it is now (a rename may have moved it)?
         * Otherwise another break or a change came first: the copy is not needed. */
        r = shared_candidate(u, n, name, &pd, &st);
        if (r <= 0 || st.st_dev != c->st.st_dev || st.st_ino != c->st.st_ino) {
                cow_unshare_discard(u, c);
                return r < 0 ? r : 0;
        }
        if (fstat(pd.fd, &pst) < 0) {
                r = -errno;
                cow_unshare_discard(u, c);
                return r;
        }
        /* N keeps showing the old inode's number: no other object may get it when the inode is reused. */
        if (!inocount_has(&u->retired, st.st_dev, st.st_ino)) {
                r = inocount_add(&u->retired, st.st_dev, st.st_ino, 1);
                if (r < 0) {
                        cow_unshare_discard(u, c);
                        return r;
                }
        }
        /* Atomic: the name holds the old inode or the copy, never nothing. */
        if (renameat(u->work_fd, c->tmp, pd.fd, name) < 0) {
                r = -errno;
                cow_unshare_discard(u, c);
                return r;
        }
        c->tmp[0] = '\0';
        restore_parent_times(pd.fd, &pst);
        (void) snapshot_unshared(u, st.st_dev, st.st_ino);
        /* The old inode lives on only in the snapshot: its number may be reused by the upper once the
         * snapshot is deleted. The copy shows the node's number, as after a copy-up. */
        union_forget_ino(u, st.st_dev, st.st_ino);
        if (fstatat(pd.fd, name, &nst, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        /* One inode for another in the upper: the copy's blocks replace the shared one's. */
        quota_observe_at(&u->quota, &n->qblocks, pd.fd, name);
        union_note_copyup(u, nst.st_dev, nst.st_ino, n->ino);
        /* read-only handles opened before reopen the copy (handle_fd()) */
        __atomic_add_fetch(&n->breaks, 1, __ATOMIC_RELEASE);
        return 0;
}

int cow_unshare(Union *u, Node *n) {
        CowBreak c;
        int r = cow_unshare_prepare(u, n, &c);
        if (r <= 0)
                return r;
        return cow_unshare_commit(u, n, &c);
}
