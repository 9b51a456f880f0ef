/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Setting up the union (layer fds, work and index directories) and reaching objects inside a layer.
 * All access to a layer goes through layer_open*(): openat2() beneath the layer's fd with no symlink
 * and no ".." allowed, so neither a hostile layer nor a concurrent rename can lead us outside.
 * Also home of the inode numbers we show: the real number with the filesystem's index in the top
 * bits, so numbers are unique across layers and stay the same when an object is copied up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "copyup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"
#include "union.h"

#define INO_BITS 48
#define INO_LOW_MASK ((UINT64_C(1) << INO_BITS) - 1)
#define FSIDX_BIG UINT64_C(0xffff) /* reserved index for synthetic numbers */

struct InoEntry {
        dev_t dev;
        ino_t ino;
        uint64_t value;
        InoEntry *next;
};

static uint64_t inomap_hash(dev_t dev, ino_t ino) {
        uint64_t key[2] = { (uint64_t) dev, (uint64_t) ino };
        return XXH3_64bits(key, sizeof key);
}

static int inomap_init(InoMap *m) {
        pthread_mutex_init(&m->lock, NULL);
        m->n_buckets = 256;
        m->buckets = calloc(m->n_buckets, sizeof(InoEntry *));
        return m->buckets ? 0 : -ENOMEM;
}

static void inomap_done(InoMap *m) {
        if (!m->buckets)
                return;
        for (size_t b = 0; b < m->n_buckets; b++)
                for (InoEntry *e = m->buckets[b], *next; e; e = next) {
                        next = e->next;
                        free(e);
                }
        free(m->buckets);
        m->buckets = NULL;
        pthread_mutex_destroy(&m->lock);
}

/* Look up (dev, ino); if absent and VALUE is non-zero, insert it. Returns the value, 0 if none. */
static uint64_t inomap_get_or_put(InoMap *m, dev_t dev, ino_t ino, uint64_t value, bool replace) {
        uint64_t r = 0;

        pthread_mutex_lock(&m->lock);
        size_t b = inomap_hash(dev, ino) & (m->n_buckets - 1);
        for (InoEntry *e = m->buckets[b]; e; e = e->next)
                if (e->dev == dev && e->ino == ino) {
                        if (replace && value)
                                e->value = value;
                        r = e->value;
                        goto out;
                }
        if (value) {
                InoEntry *e = malloc(sizeof *e);
                if (e) {
                        *e = (InoEntry) { .dev = dev, .ino = ino, .value = value, .next = m->buckets[b] };
                        m->buckets[b] = e;
                        m->n_entries++;
                        r = value;
                }
                if (m->n_entries > m->n_buckets * 2) {
                        size_t nn = m->n_buckets * 2;
                        InoEntry **nb = calloc(nn, sizeof(InoEntry *));
                        if (nb) {
                                for (size_t i = 0; i < m->n_buckets; i++)
                                        for (InoEntry *x = m->buckets[i], *next; x; x = next) {
                                                next = x->next;
                                                size_t k = inomap_hash(x->dev, x->ino) & (nn - 1);
                                                x->next = nb[k];
                                                nb[k] = x;
                                        }
                                free(m->buckets);
                                m->buckets = nb;
                                m->n_buckets = nn;
                        }
                }
        }
out:
        pthread_mutex_unlock(&m->lock);
        return r;
}

static unsigned fs_index(Union *u, dev_t dev) {
        unsigned i;

        pthread_mutex_lock(&u->fs_lock);
        for (i = 0; i < u->n_fs; i++)
                if (u->fs_devs[i] == dev)
                        goto out;
        if (u->n_fs < ELEMENTSOF(u->fs_devs))
                u->fs_devs[u->n_fs++] = dev;
        else
                i = (unsigned) FSIDX_BIG; /* absurdly many filesystems: fall back to synthetic numbers */
out:
        pthread_mutex_unlock(&u->fs_lock);
        return i;
}

uint64_t union_ino(Union *u, dev_t dev, ino_t ino) {
        uint64_t v = inomap_get_or_put(&u->copied_up, dev, ino, 0, false);
        if (v)
                return v;

        unsigned idx = fs_index(u, dev);
        if ((uint64_t) ino <= INO_LOW_MASK && idx != FSIDX_BIG && ino != 0 &&
            !inocount_has(&u->retired, dev, ino))
                return ((uint64_t) idx << INO_BITS) | (uint64_t) ino;

        /* Does not fit: hand out a synthetic number, the same one every time for this object. */
        uint64_t next = __atomic_add_fetch(&u->next_big_ino, 1, __ATOMIC_RELAXED);
        return inomap_get_or_put(&u->big_inos, dev, ino, (FSIDX_BIG << INO_BITS) | (next & INO_LOW_MASK),
                                 false);
}

void union_note_copyup(Union *u, dev_t dev, ino_t ino, uint64_t shown_ino) {
        (void) inomap_get_or_put(&u->copied_up, dev, ino, shown_ino, true);
}

void union_forget_ino(Union *u, dev_t dev, ino_t ino) {
        InoMap *m = &u->copied_up;

        pthread_mutex_lock(&m->lock);
        size_t b = inomap_hash(dev, ino) & (m->n_buckets - 1);
        for (InoEntry **e = &m->buckets[b]; *e; e = &(*e)->next)
                if ((*e)->dev == dev && (*e)->ino == ino) {
                        InoEntry *x = *e;
                        *e = x->next;
                        free(x);
                        m->n_entries--;
                        break;
                }
        pthread_mutex_unlock(&m->lock);
}

void union_forget_upper(Union *u, const struct stat *st) {
        /* A file shared with a snapshot has one upper name (link() breaks the sharing first): with it
         * the file leaves the union; its other links are the snapshot's and the shared directory's. */
        bool shared = S_ISREG(st->st_mode) && snapshot_unshared(u, st->st_dev, st->st_ino);

        /* Only when the inode itself goes: a hard link elsewhere keeps it and its number. */
        if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 && !shared)
                return;
        union_forget_ino(u, st->st_dev, st->st_ino);
}

/* Resolve PATH beneath DIRFD; paths longer than PATH_MAX are walked in pieces, each still beneath
 * the previous directory, so depth is not limited by the length of one syscall argument. */
static int open_beneath_long(int dirfd, const char *path, int flags) {
        size_t len = strlen(path);
        _cleanup_close_ int cur = -EBADF;

        if (len < PATH_MAX)
                return open_beneath(dirfd, path, flags, 0);

        char *chunk = malloc(PATH_MAX);
        if (!chunk)
                return -ENOMEM;
        while (len >= PATH_MAX) {
                /* cut at the last '/' that keeps the piece below PATH_MAX */
                size_t cut = PATH_MAX - 1;
                while (cut > 0 && path[cut] != '/')
                        cut--;
                if (cut == 0) {
                        free(chunk);
                        return -ENAMETOOLONG;
                }
                memcpy(chunk, path, cut);
                chunk[cut] = '\0';
                int fd = open_beneath(cur >= 0 ? cur : dirfd, chunk, O_PATH | O_DIRECTORY, 0);
                if (fd < 0) {
                        free(chunk);
                        return fd;
                }
                safe_close(cur);
                cur = fd;
                path += cut + 1;
                len -= cut + 1;
        }
        free(chunk);
        return open_beneath(cur, path, flags, 0);
}

int layer_open(const Union *u, int layer, const char *path, int flags) {
        return open_beneath_long(u->layers[layer].fd, path, flags);
}

int layer_open_parent(const Union *u, int layer, const char *path, const char **ret_name) {
        const char *slash = strrchr(path, '/');

        if (!*path)
                return -EINVAL; /* the root has no parent inside the layer */
        if (!slash) {
                int fd = fcntl(u->layers[layer].fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                *ret_name = path;
                return fd;
        }
        _cleanup_free_ char *dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        int fd = open_beneath_long(u->layers[layer].fd, dir, O_PATH | O_DIRECTORY);
        if (fd >= 0)
                *ret_name = slash + 1;
        return fd;
}

int layer_lstat(const Union *u, int layer, const char *path, struct stat *ret) {
        _cleanup_close_ int fd = layer_open(u, layer, path, O_PATH | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        return RET_NERRNO(fstat(fd, ret));
}

static int open_layer_dir(const char *path, Layer *ret) {
        struct stat st;
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open layer '%s': %m", path);
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return log_error_errno(r, "Cannot stat layer '%s': %m", path);
        }
        ret->fd = fd;
        ret->dev = st.st_dev;
        ret->path = strdup(path);
        return ret->path ? 0 : -ENOMEM;
}

static int open_work_subdir(int workfd, const char *name, int *ret) {
        if (mkdirat(workfd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = open_beneath(workfd, name, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        *ret = fd;
        return 0;
}

static const char *root_attr_ns(const Union *u) {
        return startswith(u->xattr_prefix, ROOTATTR_NS_USER) ? ROOTATTR_NS_USER : ROOTATTR_NS_TRUSTED;
}

void union_root_attr_apply(Union *u, struct stat *st) {
        pthread_mutex_lock(&u->root_attr_lock);
        if (u->has_root_attr) {
                st->st_mode = (st->st_mode & S_IFMT) | u->root_attr.mode;
                st->st_uid = u->root_attr.uid;
                st->st_gid = u->root_attr.gid;
        }
        pthread_mutex_unlock(&u->root_attr_lock);
}

int union_root_attr_update(Union *u, const mode_t *mode, const uid_t *uid, const gid_t *gid) {
        int r = 0;

        if (!u->has_upper)
                return u->has_root_attr ? -EROFS : 0; /* the record is on a lower layer: never written */
        pthread_mutex_lock(&u->root_attr_lock);
        if (u->has_root_attr) {
                RootAttr a = u->root_attr;
                if (mode)
                        a.mode = *mode & 07777;
                if (uid && *uid != (uid_t) -1)
                        a.uid = *uid;
                if (gid && *gid != (gid_t) -1)
                        a.gid = *gid;
                r = rootattr_write(u->layers[UPPER].fd, root_attr_ns(u), &a);
                if (r >= 0) {
                        u->root_attr = a;
                        r = 1;
                }
        }
        pthread_mutex_unlock(&u->root_attr_lock);
        return r;
}

/* With a quota, count what the upper already holds (a kept upper), with the index and the snapshot
 * links of the work directory: one walk, each inode once. */
static int union_quota_scan(Union *u, const UnionOptions *o) {
        QuotaSeen *seen = NULL;
        uint64_t start = now_usec();
        int r, n = 0;

        if (!quota_enabled(&u->quota))
                return 0;
        r = quota_scan_tree(&u->quota, u->layers[UPPER].fd, &seen);
        if (r >= 0) {
                n += r;
                r = quota_scan_tree(&u->quota, u->index_fd, &seen);
        }
        if (r >= 0) {
                n += r;
                r = quota_scan_tree(&u->quota, u->shared_fd, &seen);
        }
        quota_seen_free(seen);
        if (r < 0)
                return log_error_errno(r, "Cannot count what the upper layer '%s' holds for its quota: %m",
                                       o->upperdir);
        n += r;
        log_debug("Quota: the upper holds %llu bytes in %llu inodes (%d entries counted in %llu ms); "
                  "quota %llu bytes, %llu inodes.",
                  (unsigned long long) quota_used_bytes(&u->quota), (unsigned long long) quota_used_inodes(&u->quota),
                  n, (unsigned long long) ((now_usec() - start) / 1000),
                  (unsigned long long) u->quota.max_bytes, (unsigned long long) u->quota.max_inodes);
        return 0;
}

int union_init(Union *u, const UnionOptions *o) {
        int r;

        *u = (Union) { .work_fd = -EBADF, .index_fd = -EBADF, .shared_fd = -EBADF };
        quota_init(&u->quota, o->upperdir ? o->quota_bytes : 0, o->upperdir ? o->quota_inodes : 0,
                   o->quota_notify ? o->quota_notify_fd : -EBADF);
        if (o->quota_notify) {
                /* Ours alone from now on: never inherited, never blocking a handler. */
                (void) fcntl(o->quota_notify_fd, F_SETFD, FD_CLOEXEC);
                (void) fcntl(o->quota_notify_fd, F_SETFL, fcntl(o->quota_notify_fd, F_GETFL) | O_NONBLOCK);
        }
        pthread_rwlock_init(&u->ns_lock, NULL);
        pthread_rwlock_init(&u->change_lock, NULL);
        pthread_mutex_init(&u->cow_lock, NULL);
        pthread_mutex_init(&u->table_lock, NULL);
        pthread_mutex_init(&u->fs_lock, NULL);
        if (inomap_init(&u->copied_up) < 0 || inomap_init(&u->big_inos) < 0 ||
            inocount_init(&u->writers) < 0 || inocount_init(&u->shared) < 0 ||
            inocount_init(&u->retired) < 0)
                return -ENOMEM;

        u->uidmap = o->uidmap;
        u->gidmap = o->gidmap;
        u->redirect_dir = o->redirect_dir;
        u->sync_copyup = o->sync_copyup;
        u->metacopy = o->metacopy;
        u->static_nlink = o->static_nlink;
        u->noxattrs = o->noxattrs;
        /* squash_to_uid/gid win over squash_to_root, as in fuse-overlayfs */
        u->squash_uid = o->squash_uid >= 0 ? o->squash_uid : o->squash_to_root ? 0 : -1;
        u->squash_gid = o->squash_gid >= 0 ? o->squash_gid : o->squash_to_root ? 0 : -1;
        u->override_xattr = o->xattr_permissions == 1 ? "security.fuseoverlayfs.override_stat" :
                            o->xattr_permissions == 2 ? "user.containers.override_stat" : NULL;
        u->snapshot = o->snapshot;
        u->timeout = o->timeout;
        /* trusted.* needs CAP_SYS_ADMIN; without it (a rootless mount) use the user.* form, as the
         * kernel's "userxattr" does. */
        u->xattr_prefix = (o->userxattr || geteuid() != 0) ? "user.overlay." : "trusted.overlay.";
        snprintf(u->xattr_opaque, sizeof u->xattr_opaque, "%sopaque", u->xattr_prefix);
        snprintf(u->xattr_redirect, sizeof u->xattr_redirect, "%sredirect", u->xattr_prefix);
        snprintf(u->xattr_origin, sizeof u->xattr_origin, "%ssandbox.origin", u->xattr_prefix);
        snprintf(u->xattr_metacopy, sizeof u->xattr_metacopy, "%smetacopy", u->xattr_prefix);

        if (o->upperdir) {
                r = open_layer_dir(o->upperdir, &u->layers[u->n_layers]);
                if (r < 0)
                        return r;
                u->n_layers++;
                u->has_upper = true;
                (void) fs_index(u, u->layers[UPPER].dev); /* the upper's numbers show unchanged */
        }
        for (size_t i = 0; i < o->n_lowerdirs; i++) {
                r = open_layer_dir(o->lowerdirs[i], &u->layers[u->n_layers]);
                if (r < 0)
                        return r;
                (void) fs_index(u, u->layers[u->n_layers].dev);
                u->n_layers++;
        }
        u->readonly = !u->has_upper || o->readonly;

        /* A private root shows the mode and owner its record says (common/rootattr.h). */
        pthread_mutex_init(&u->root_attr_lock, NULL);
        r = rootattr_read(u->layers[0].fd, root_attr_ns(u), &u->root_attr);
        if (r == -EINVAL)
                return log_error_errno(r, "The root of layer '%s' has a malformed %s%s record",
                                       u->layers[0].path, root_attr_ns(u), ROOTATTR_XATTR);
        if (r < 0)
                return log_error_errno(r, "Cannot read the root record of layer '%s': %m", u->layers[0].path);
        u->has_root_attr = r > 0;

        if (u->has_upper) {
                _cleanup_close_ int workfd = open(o->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (workfd < 0)
                        return log_error_errno(errno, "Cannot open work directory '%s': %m", o->workdir);
                /* "work" is the kernel's name too: both clean it at mount time. The index is ours. */
                r = open_work_subdir(workfd, "work", &u->work_fd);
                if (r < 0)
                        return log_error_errno(r, "Cannot create '%s/work': %m", o->workdir);
                r = open_work_subdir(workfd, "sandbox-index", &u->index_fd);
                if (r < 0)
                        return log_error_errno(r, "Cannot create '%s/sandbox-index': %m", o->workdir);
                r = open_work_subdir(workfd, "sandbox-shared", &u->shared_fd);
                if (r < 0)
                        return log_error_errno(r, "Cannot create '%s/sandbox-shared': %m", o->workdir);
                r = snapshot_load_shared(u);
                if (r < 0)
                        return log_error_errno(r, "Cannot read '%s/sandbox-shared': %m", o->workdir);
                r = copyup_clean_workdir(u->work_fd);
                if (r < 0)
                        log_warning_errno(r, "Cannot clean '%s/work', ignoring: %m", o->workdir);
                r = union_quota_scan(u, o);
                if (r < 0)
                        return r;
        }

        r = node_table_init(u);
        if (r < 0)
                return r;
        return 0;
}

void union_done(Union *u) {
        node_table_done(u);
        for (size_t i = 0; i < u->n_layers; i++) {
                safe_close(u->layers[i].fd);
                free(u->layers[i].path);
        }
        safe_close(u->work_fd);
        safe_close(u->index_fd);
        safe_close(u->shared_fd);
        inomap_done(&u->copied_up);
        inomap_done(&u->big_inos);
        inocount_done(&u->writers);
        inocount_done(&u->shared);
        inocount_done(&u->retired);
        quota_done(&u->quota);
}
