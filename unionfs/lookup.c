/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Finding a name in the merged view, with kernel overlayfs rules: the topmost entry wins; a
 * whiteout hides everything below it; a directory merges with the directories of the same name
 * below it until a non-directory, a whiteout or an opaque directory ends the merge; a redirect
 * on the topmost directory says where its lower contents are. Also: the stat and open of a node's
 * real object. Callers hold ns_lock (read or write).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "union.h"
#include "whiteout.h"
#include "xattr.h"

void lookup_result_done(LookupResult *r) {
        free(r->redirect);
        r->redirect = NULL;
        free(r->data_path);
        r->data_path = NULL;
}

static bool dir_is_opaque(const Union *u, int fd) {
        char v[2];
        return xattr_get(fd, u->xattr_opaque, v, sizeof v) == 1 && v[0] == 'y';
}

static int read_redirect(const Union *u, int fd, const char *parent_lower, char **ret) {
        char buf[PATH_MAX];
        ssize_t n = xattr_get(fd, u->xattr_redirect, buf, sizeof buf);
        if (n == -ENODATA || n == -EOPNOTSUPP)
                return 0;
        if (n < 0)
                return (int) n;
        /* An invalid redirect from a layer is ignored, as if absent: never a path we did not check. */
        if (whiteout_redirect_decode(buf, (size_t) n, parent_lower, ret) < 0)
                return 0;
        return buf[0] == '/' ? 2 : 1; /* absolute: found from the root, in all layers below */
}

/* Whether the regular file FD (ST) is a metacopy file: an upper copy with metadata only, whose data
 * is the file of the same path (or of its redirect) in a layer below. 1 yes, 0 no; -EPERM when the
 * mount does not follow them (no -o metacopy=on), as overlayfs refuses them then. Without metacopy=on
 * only files with fewer bytes allocated than their size are asked (a metacopy file is one hole of the
 * data's size, plus at most a block of xattrs), so that ordinary lookups cost no getxattr; a metacopy
 * file under 4 KiB whose xattrs took a block of their own is then read as a plain (sparse) file. */
static int file_is_metacopy(const Union *u, int fd, const struct stat *st) {
        if (!S_ISREG(st->st_mode) || (!u->metacopy && st->st_size <= st->st_blocks * 512))
                return 0;
        ssize_t n = xattr_get(fd, u->xattr_metacopy, NULL, 0);
        if (n == -ENODATA || n == -EOPNOTSUPP)
                return 0;
        if (n < 0)
                return (int) n;
        return u->metacopy ? 1 : -EPERM;
}

void index_key(char buf[static 64], dev_t dev, ino_t ino) {
        snprintf(buf, 64, "%llx-%llx", (unsigned long long) dev, (unsigned long long) ino);
}

/* An upper regular file with several links may be a copy-up kept in the index. Its origin xattr,
 * "<lower dev>-<lower ino>:<lower link count>", gives the inode number of the lower file, so every
 * name shows one and the same inode, and the link count as overlayfs would show it: the index's
 * own link is not one of the user's names, and names still only in the lower count too. */
static bool read_origin(Union *u, int fd, unsigned long long *ret_dev, unsigned long long *ret_ino,
                        unsigned *ret_nlink) {
        char buf[128];
        ssize_t n = xattr_get(fd, u->xattr_origin, buf, sizeof buf - 1);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        *ret_nlink = 1;
        return sscanf(buf, "%llx-%llx:%u", ret_dev, ret_ino, ret_nlink) >= 2;
}

static void apply_origin(Union *u, int fd, LookupResult *r) {
        unsigned long long dev, ino;
        unsigned nlink;
        if (!read_origin(u, fd, &dev, &ino, &nlink))
                return;
        r->st.st_ino = (ino_t) union_ino(u, (dev_t) dev, (ino_t) ino);
        r->st.st_nlink = MAX((nlink_t) nlink, r->st.st_nlink - 1);
        r->indexed = true; /* one of the names of an index copy: reach it through the index */
        r->lower_dev = (dev_t) dev;
        r->lower_ino = (ino_t) ino;
}

void union_fix_nlink(Union *u, int fd, struct stat *st) {
        unsigned long long dev, ino;
        unsigned nlink;
        snapshot_fix_nlink(u, st);
        if (S_ISREG(st->st_mode) && st->st_nlink > 1 && read_origin(u, fd, &dev, &ino, &nlink))
                st->st_nlink = MAX((nlink_t) nlink, st->st_nlink - 1);
}

int union_upper_dir(Union *u, Node *dir, DirRef *ret) {
        _cleanup_free_ char *path = NULL;
        int fd, r;

        if (dir == u->root) {
                *ret = (DirRef) { .fd = u->layers[UPPER].fd, .owned = -EBADF };
                return 0;
        }
        fd = __atomic_load_n(&dir->upper_fd, __ATOMIC_ACQUIRE);
        if (fd >= 0) {
                *ret = (DirRef) { .fd = fd, .owned = -EBADF };
                return 0;
        }

        r = node_path(u, dir, &path);
        if (r < 0)
                return r;
        fd = layer_open(u, UPPER, path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        /* Keep it on the node: the fd follows the directory through renames. */
        if (__atomic_add_fetch(&u->n_cached_fds, 1, __ATOMIC_RELAXED) <= UNION_MAX_CACHED_FDS) {
                int expected = -EBADF;
                if (!__atomic_compare_exchange_n(&dir->upper_fd, &expected, fd, false, __ATOMIC_ACQ_REL,
                                                 __ATOMIC_ACQUIRE)) {
                        safe_close(fd); /* another thread was first */
                        __atomic_sub_fetch(&u->n_cached_fds, 1, __ATOMIC_RELAXED);
                        fd = expected;
                }
                *ret = (DirRef) { .fd = fd, .owned = -EBADF };
                return 0;
        }
        __atomic_sub_fetch(&u->n_cached_fds, 1, __ATOMIC_RELAXED);
        *ret = (DirRef) { .fd = fd, .owned = fd };
        return 0;
}

int union_upper_parent(Union *u, Node *n, char name[static NAME_MAX + 1], DirRef *ret) {
        Node *parent;

        pthread_mutex_lock(&u->table_lock);
        if (n->n_aliases == 0) {
                pthread_mutex_unlock(&u->table_lock);
                return n == u->root ? -EINVAL : -ENOENT;
        }
        parent = n->aliases[0].parent;
        snprintf(name, NAME_MAX + 1, "%s", n->aliases[0].name);
        pthread_mutex_unlock(&u->table_lock);
        /* the parent stays: our name pins it, and names only go under the exclusive ns_lock */
        return union_upper_dir(u, parent, ret);
}

typedef enum RedirectWalk {
        WALK_OK,          /* every directory on the way exists: look at the last component */
        WALK_ABSENT,      /* the path is missing in this layer: nothing here, go on below */
        WALK_STOP,        /* a whiteout or non-directory on the way hides the rest: stop here */
        WALK_STOP_AFTER,  /* an opaque directory on the way: this layer counts, none below it */
} RedirectWalk;

/* A redirect path is walked in each lower layer as overlayfs does, so that what hides a directory on the
 * way (whiteout, non-directory, opaque directory) also hides what the redirect points to. */
static RedirectWalk walk_redirect_prefix(Union *u, int layer, const char *path) {
        RedirectWalk w = WALK_OK;
        size_t n = strlen(path);
        _cleanup_free_ char *prefix = malloc(n + 1);

        if (!prefix)
                return WALK_STOP;
        for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
                struct stat st;
                memcpy(prefix, path, (size_t) (slash - path));
                prefix[slash - path] = '\0';
                _cleanup_close_ int fd = layer_open(u, layer, prefix, O_PATH | O_NOFOLLOW);
                if (fd < 0)
                        return fd == -ENOENT ? WALK_ABSENT : WALK_STOP;
                if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
                        return WALK_STOP; /* whiteouts included */
                if (dir_is_opaque(u, fd))
                        w = WALK_STOP_AFTER;
        }
        return w;
}

int union_lookup(Union *u, Node *parent, const char *name, LookupResult *ret) {
        LookupResult r = { .layer = -1, .last_layer = -1 };
        _cleanup_free_ char *plower = NULL, *lpath = NULL;
        bool found = false, is_dir = false, stop = false;
        int player = node_layer(parent);
        int last = parent->last_layer; /* the lowest layer to search */
        int n;

        if (strlen(name) > NAME_MAX)
                return -ENAMETOOLONG;
        if (!S_ISDIR(parent->type))
                return -ENOTDIR;

        if (u->has_upper && player == UPPER) {
                _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
                n = union_upper_dir(u, parent, &pd);
                if (n < 0)
                        return n;
                int pfd = pd.fd;
                if (fstatat(pfd, name, &r.st, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (whiteout_is_whiteout(&r.st)) {
                                *ret = (LookupResult) { .lower_exists = true, .layer = -1 };
                                return -ENOENT;
                        }
                        found = true;
                        r.layer = r.last_layer = UPPER;
                        if (!S_ISDIR(r.st.st_mode)) {
                                ino_t real = r.st.st_ino;
                                snapshot_fix_nlink(u, &r.st); /* before: needs the real number */
                                r.st.st_ino = (ino_t) union_ino(u, r.st.st_dev, real);
                                bool ask_metacopy = S_ISREG(r.st.st_mode) &&
                                                    (u->metacopy || r.st.st_size > r.st.st_blocks * 512);
                                if (S_ISREG(r.st.st_mode) && (r.st.st_nlink > 1 || ask_metacopy)) {
                                        _cleanup_close_ int fd = open_beneath(pfd, name, O_PATH | O_NOFOLLOW, 0);
                                        if (fd >= 0 && r.st.st_nlink > 1)
                                                apply_origin(u, fd, &r);
                                        n = fd >= 0 && !r.indexed ? file_is_metacopy(u, fd, &r.st) : 0;
                                        if (n < 0)
                                                return n;
                                        if (n > 0) {
                                                /* the data is below: go on looking, at the redirect if any */
                                                n = node_layer_path(u, parent, UPPER + 1, &plower);
                                                if (n < 0)
                                                        return n;
                                                n = read_redirect(u, fd, plower, &r.redirect);
                                                if (n < 0)
                                                        return n;
                                                if (n == 2)
                                                        last = u->root->last_layer;
                                                r.redirect_layer = UPPER;
                                                r.metacopy = true;
                                        }
                                }
                                if (!r.metacopy) {
                                        *ret = r;
                                        return 0;
                                }
                        } else {
                                is_dir = true;
                                r.st.st_ino = (ino_t) union_ino(u, r.st.st_dev, r.st.st_ino);
                                _cleanup_close_ int fd = open_beneath(pfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
                                if (fd < 0)
                                        return fd == -ENOTDIR || fd == -ELOOP ? -EIO : fd; /* swapped meanwhile */
                                if (dir_is_opaque(u, fd))
                                        stop = true;
                                else {
                                        /* a relative redirect names a sibling in the parent's lower directory */
                                        n = node_layer_path(u, parent, UPPER + 1, &plower);
                                        if (n < 0)
                                                return n;
                                        n = read_redirect(u, fd, plower, &r.redirect);
                                        if (n < 0)
                                                return n;
                                        if (n == 2)
                                                last = u->root->last_layer;
                                        r.redirect_layer = UPPER;
                                }
                        }
                } else if (errno != ENOENT)
                        return -errno;
        }

        /* Below the upper: every lower layer the parent merges. The name's path there is the parent's
         * path in that layer plus the name, until a redirect on the name's own directory takes over. */
        int first = u->has_upper ? MAX(player, 1) : player;
        bool stop_after = false;
        for (int i = first; !stop && i <= last; i++, stop = stop || stop_after) {
                struct stat st;
                if (!r.redirect) {
                        free(lpath);
                        lpath = NULL;
                        free(plower);
                        plower = NULL;
                        n = node_layer_path(u, parent, i, &plower);
                        if (n < 0 || (n = path_join(plower, name, &lpath)) < 0) {
                                lookup_result_done(&r);
                                return n;
                        }
                } else if (!lpath && !(lpath = strdup(r.redirect))) {
                        lookup_result_done(&r);
                        return -ENOMEM;
                }
                if (r.redirect) {
                        RedirectWalk w = walk_redirect_prefix(u, i, lpath);
                        if (w == WALK_STOP)
                                break;
                        if (w == WALK_ABSENT)
                                continue;
                        if (w == WALK_STOP_AFTER)
                                stop_after = true;
                }
                _cleanup_close_ int fd = layer_open(u, i, lpath, O_PATH | O_NOFOLLOW);
                if (fd < 0) {
                        /* ENOENT/ENOTDIR: not in this layer. ELOOP: the parent is a symlink here,
                         * which the merge above already excluded; treat as absent. */
                        if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
                                continue;
                        lookup_result_done(&r);
                        return fd;
                }
                if (fstat(fd, &st) < 0) {
                        lookup_result_done(&r);
                        return -errno;
                }
                r.lower_exists = true;
                if (r.metacopy && !r.data_path) {
                        /* The data of the metacopy file found above: the first regular file below that
                         * is not a metacopy file itself (those are passed, following their redirect). */
                        if (!S_ISREG(st.st_mode))
                                break;
                        n = file_is_metacopy(u, fd, &st);
                        if (n < 0) {
                                lookup_result_done(&r);
                                return n;
                        }
                        if (n > 0) {
                                char *redir = NULL;
                                _cleanup_free_ char *pl = NULL;
                                int kind = node_layer_path(u, parent, i + 1, &pl) >= 0 ? read_redirect(u, fd, pl, &redir) : 0;
                                if (kind > 0) {
                                        if (kind == 2)
                                                last = u->root->last_layer;
                                        free(lpath);
                                        lpath = NULL;
                                        free(r.redirect);
                                        r.redirect = redir;
                                }
                                continue;
                        }
                        r.data_layer = i;
                        r.data_path = TAKE_PTR(lpath);
                        break;
                }
                if (whiteout_is_whiteout(&st))
                        break;
                if (!found) {
                        found = true;
                        r.st = st;
                        r.layer = r.last_layer = i;
                        if (!S_ISDIR(st.st_mode)) {
                                r.st.st_ino = (ino_t) union_ino(u, st.st_dev, st.st_ino);
                                if (S_ISREG(st.st_mode) && st.st_nlink > 1 && u->has_upper) {
                                        char key[64];
                                        struct stat ist;
                                        index_key(key, st.st_dev, st.st_ino);
                                        r.lower_dev = st.st_dev;
                                        r.lower_ino = st.st_ino;
                                        if (fstatat(u->index_fd, key, &ist, AT_SYMLINK_NOFOLLOW) == 0 &&
                                            S_ISREG(ist.st_mode)) {
                                                /* copied up through another name: show the copy */
                                                ino_t shown = r.st.st_ino;
                                                nlink_t lower_links = st.st_nlink;
                                                r.st = ist;
                                                r.st.st_ino = shown;
                                                r.st.st_nlink = MAX(lower_links, ist.st_nlink - 1);
                                                r.indexed = true;
                                        }
                                } else if (S_ISREG(st.st_mode)) {
                                        r.lower_dev = st.st_dev;
                                        r.lower_ino = st.st_ino;
                                }
                                n = S_ISREG(st.st_mode) && !r.indexed ? file_is_metacopy(u, fd, &st) : 0;
                                if (n < 0) {
                                        lookup_result_done(&r);
                                        return n;
                                }
                                if (n > 0) {
                                        /* a lower layer made from an upper: its data is further down */
                                        char *redir = NULL;
                                        _cleanup_free_ char *pl = NULL;
                                        int kind = node_layer_path(u, parent, i + 1, &pl) >= 0 ?
                                                   read_redirect(u, fd, pl, &redir) : 0;
                                        if (kind > 0) {
                                                if (kind == 2)
                                                        last = u->root->last_layer;
                                                free(lpath);
                                                lpath = NULL;
                                                free(r.redirect);
                                                r.redirect = redir;
                                        }
                                        r.metacopy = true;
                                        continue;
                                }
                                break;
                        }
                        is_dir = true;
                        r.st.st_ino = (ino_t) union_ino(u, st.st_dev, st.st_ino);
                        if (dir_is_opaque(u, fd))
                                break;
                        char *redir = NULL;
                        _cleanup_free_ char *pl = NULL;
                        int kind = node_layer_path(u, parent, i + 1, &pl) >= 0 ? read_redirect(u, fd, pl, &redir) : 0;
                        if (kind > 0) {
                                if (kind == 2)
                                        last = u->root->last_layer;
                                free(lpath);
                                lpath = NULL; /* recomputed from the redirect for the layers below */
                                free(r.redirect);
                                r.redirect = redir;
                                r.redirect_layer = i;
                        }
                        continue;
                }
                if (!is_dir || !S_ISDIR(st.st_mode))
                        break; /* a non-directory below a directory is hidden and ends the merge */
                r.merged = true;
                r.last_layer = i;
                if (dir_is_opaque(u, fd))
                        break;
        }

        if (!found) {
                bool lower = r.lower_exists;
                lookup_result_done(&r);
                *ret = (LookupResult) { .lower_exists = lower, .layer = -1 };
                return -ENOENT;
        }
        if (!is_dir) {
                /* A file's redirect only leads to its data; nodes keep that as data_path. */
                free(r.redirect);
                r.redirect = NULL;
                if (r.metacopy && !r.data_path) {
                        lookup_result_done(&r);
                        return -EIO; /* as overlayfs: a metacopy file whose data is nowhere below */
                }
        }
        if (is_dir && r.layer == UPPER && r.last_layer > UPPER)
                r.merged = true;
        *ret = r;
        return 0;
}

int union_name_in_lower(Union *u, Node *parent, const char *name, bool *ret) {
        int player = node_layer(parent);
        int r;

        *ret = false;
        if (parent->last_layer == UPPER && player == UPPER)
                return 0; /* a directory only the upper contributes to */
        for (int i = u->has_upper ? MAX(player, 1) : player; i <= parent->last_layer; i++) {
                _cleanup_free_ char *ppath = NULL, *path = NULL;
                struct stat st;
                r = node_layer_path(u, parent, i, &ppath);
                if (r < 0 || (r = path_join(ppath, name, &path)) < 0)
                        return r;
                r = layer_lstat(u, i, path, &st);
                if (r == 0) {
                        *ret = true;
                        return 0;
                }
                if (r != -ENOENT && r != -ENOTDIR && r != -ELOOP)
                        return r;
        }
        return 0;
}

/* A new fd on the object N's orphan fd holds (see Node.orphan_fd), with FLAGS: through the fd's magic
 * link, which leads to exactly that inode (the object has no name to be opened by). */
static int orphan_open(const Node *n, int flags) {
        char p[32];

        if (flags & O_PATH)
                return RET_NERRNO(fcntl(n->orphan_fd, F_DUPFD_CLOEXEC, 3));
        if (S_ISLNK(n->type))
                return -ELOOP;
        (void) snprintf(p, sizeof p, "/proc/self/fd/%d", n->orphan_fd);
        return RET_NERRNO(open(p, (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC | O_NOCTTY));
}

/* Open the real object of N. For a lower hard link already copied up, that is the index copy; for a
 * metacopy file opened for reading (not O_PATH), its data in the layer below. Upper objects are opened
 * beneath their parent's cached directory fd. Nothing but the upper is ever opened for writing. */
int union_node_open(Union *u, Node *n, int flags, int *ret_layer) {
        _cleanup_free_ char *path = NULL;
        int layer = node_layer(n);
        int r;

        if (u->has_upper && __atomic_load_n(&n->indexed, __ATOMIC_ACQUIRE)) {
                /* Every upper name of a hard link copied up through the index is a link to the index
                 * copy, and names not copied up yet show it too: the index entry is the object. */
                char key[64];
                index_key(key, n->lower_dev, n->lower_ino);
                r = open_beneath(u->index_fd, key, flags | O_NOFOLLOW, 0);
                layer = UPPER;
        } else if (!(flags & O_PATH) && node_is_metacopy(n)) {
                if ((flags & O_ACCMODE) != O_RDONLY)
                        return -EIO; /* the data must be copied up first (cow_node) */
                r = layer_open(u, n->data_layer, n->data_path, flags | O_NOFOLLOW);
                layer = n->data_layer;
        } else if (node_unlinked(u, n)) {
                if (n->orphan_fd < 0)
                        return -ENOENT; /* unlinked, and nothing kept: reachable through open handles only */
                r = orphan_open(n, flags);
        } else if (u->has_upper && layer == UPPER && S_ISDIR(n->type)) {
                _cleanup_(dir_ref_done) DirRef d = DIR_REF_NULL;
                r = union_upper_dir(u, n, &d);
                if (r < 0)
                        return r;
                r = open_beneath(d.fd, ".", flags | O_NOFOLLOW, 0);
        } else if (u->has_upper && layer == UPPER) {
                char name[NAME_MAX + 1];
                _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
                r = union_upper_parent(u, n, name, &pd);
                if (r < 0)
                        return r;
                r = open_beneath(pd.fd, name, flags | O_NOFOLLOW, 0);
        } else {
                if ((flags & O_ACCMODE) != O_RDONLY && !(flags & O_PATH))
                        return -EROFS; /* a lower layer: copy-up comes first */
                r = node_layer_path(u, n, layer, &path);
                if (r < 0)
                        return r;
                r = layer_open(u, layer, path, flags | O_NOFOLLOW);
        }
        if (r >= 0 && ret_layer)
                *ret_layer = layer;
        return r;
}

void union_override_stat(Union *u, int fd, struct stat *st) {
        char buf[96];
        unsigned uid, gid, mode;

        if (!u->override_xattr)
                return;
        ssize_t n = xattr_get(fd, u->override_xattr, buf, sizeof buf - 1);
        if (n == -ENODATA && streq(u->override_xattr, "user.containers.override_stat"))
                n = xattr_get(fd, "user.fuseoverlayfs.override_stat", buf, sizeof buf - 1);
        if (n <= 0)
                return;
        buf[n] = '\0';
        /* "UID:GID:MODE", later versions append ":TYPE..." */
        if (sscanf(buf, "%u:%u:%o", &uid, &gid, &mode) != 3)
                return;
        st->st_uid = uid;
        st->st_gid = gid;
        st->st_mode = (st->st_mode & S_IFMT) | (mode & 07777);
}

int union_write_override(Union *u, int fd, const struct stat *st) {
        char buf[96];

        if (!u->override_xattr)
                return 0;
        int len = snprintf(buf, sizeof buf, "%u:%u:%o", (unsigned) st->st_uid, (unsigned) st->st_gid,
                           (unsigned) (st->st_mode & 07777));
        return xattr_set(fd, u->override_xattr, buf, (size_t) len, 0);
}

int union_node_stat(Union *u, Node *n, struct stat *ret) {
        struct stat st;
        int layer = node_layer(n);

        if (u->has_upper && layer == UPPER && !S_ISDIR(n->type) && !__atomic_load_n(&n->indexed, __ATOMIC_ACQUIRE) &&
            !node_unlinked(u, n)) {
                /* the common case, in one call: an upper file seen from its parent */
                char name[NAME_MAX + 1];
                _cleanup_(dir_ref_done) DirRef pd = DIR_REF_NULL;
                int r = union_upper_parent(u, n, name, &pd);
                if (r < 0)
                        return r;
                if (fstatat(pd.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                snapshot_fix_nlink(u, &st);
                if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
                        _cleanup_close_ int fd = open_beneath(pd.fd, name, O_PATH | O_NOFOLLOW, 0);
                        if (fd >= 0)
                                union_fix_nlink(u, fd, &st);
                }
        } else {
                _cleanup_close_ int fd = union_node_open(u, n, O_PATH, &layer);
                if (fd < 0)
                        return fd;
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (layer == UPPER)
                        union_fix_nlink(u, fd, &st);
        }
        if ((st.st_mode & S_IFMT) != n->type)
                return -EIO; /* the name now holds another object: the layer changed under us */
        if (node_unlinked(u, n) && layer != UPPER && !S_ISDIR(st.st_mode) && st.st_nlink > 0)
                st.st_nlink--; /* a lower object keeps its name there: count the one the merged view lost */
        if (node_is_metacopy(n)) {
                /* the blocks are the data's (an upper metacopy file is one hole), as overlayfs shows */
                struct stat dst;
                _cleanup_close_ int dfd = layer_open(u, n->data_layer, n->data_path, O_PATH | O_NOFOLLOW);
                if (dfd >= 0 && fstat(dfd, &dst) >= 0)
                        st.st_blocks = dst.st_blocks;
        }
        st.st_ino = (ino_t) n->ino;
        if (S_ISDIR(st.st_mode) && (u->static_nlink || __atomic_load_n(&n->merged, __ATOMIC_RELAXED)))
                st.st_nlink = 1; /* as overlayfs: counting subdirectories of every layer is not worth it */
        if (u->override_xattr) {
                _cleanup_close_ int ofd = union_node_open(u, n, O_PATH, NULL);
                if (ofd >= 0)
                        union_override_stat(u, ofd, &st);
        }
        if (n == u->root)
                union_root_attr_apply(u, &st); /* a private root shows its recorded mode and owner */
        *ret = st;
        return 0;
}
