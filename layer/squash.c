/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Squash; see squash.h and docs/layers.md. One depth-first walk of the merged view:
 *
 *  - every merged directory is a Stack: the directories that make it up, topmost first, each with its
 *    path in its own layer (a redirect makes that differ from the merged path), plus "below": the path
 *    at which a layer under the whole stack would be searched (NULL when the merge stopped);
 *  - a name is looked up as kernel overlayfs does (lookup_child()); the topmost entry wins;
 *  - objects are copied with copyup_make_temp() straight into the temporary result tree and renamed to
 *    their name; directories are created 0700 and get their mode and times last (post-order), so a
 *    read-only directory can still be filled and its mtime is not disturbed by its children.
 *
 * The temporary tree root is ours and 0700, and stays so: the result may hold set-id files and
 * devices, so its root is private (common/rootattr.h), with the mode and owner the merged root shows
 * in its record. It is synced with syncfs() (one flush for the whole tree instead of an fsync per
 * file) and then renamed with RENAME_NOREPLACE onto the destination.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copyup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "ovl.h"
#include "progress.h"
#include "rootattr.h"
#include "squash.h"
#include "tree.h"
#include "whiteout.h"
#include "xattr.h"

#define TEMP_NAME_ATTEMPTS 16

typedef struct StackEntry {
        size_t layer;
        int fd;     /* the directory in that layer, open for reading */
        char *path; /* its path from that layer's root, "" for the root */
} StackEntry;

typedef struct Stack {
        StackEntry *e; /* by layer, topmost first */
        size_t n;
        char *below;   /* where a layer below the bottom one would be searched; NULL: the merge stopped */
} Stack;

typedef struct LinkEntry {
        bool used;
        size_t layer;       /* source identity: same layer, same (dev, ino) */
        dev_t dev;
        ino_t ino;
        dev_t dst_dev;      /* the first copy, checked again before linking to it */
        ino_t dst_ino;
        char *path;         /* of the first copy, from the result's root */
} LinkEntry;

typedef struct Squash {
        const int *layer_fds;
        size_t n_layers;
        unsigned flags;
        const char *ns;     /* for the markers we write */
        int root_fd;        /* the temporary result's root */
        Progress *progress;
        LinkEntry *links;   /* open addressing; cap is 0 or a power of two */
        size_t n_links, cap_links;
} Squash;

typedef enum Found {
        FOUND_NONE,
        FOUND_WHITEOUT,
        FOUND_NONDIR,
        FOUND_DIR,
} Found;

typedef struct Child {
        Found kind;
        struct stat st;     /* NONDIR, DIR: the topmost object */
        size_t layer;       /* NONDIR: its layer */
        int parent_fd;      /* NONDIR: its directory (borrowed from the parent's stack) */
        bool metacopy;      /* NONDIR: a metacopy file (overlay.metacopy): its data is DATA_FD, the first
                             * regular file below it that is not a metacopy file itself */
        int data_fd;
        Stack stack;        /* DIR */
} Child;

static void stack_done(Stack *s);
static void child_done(Child *c) {
        stack_done(&c->stack);
        c->data_fd = safe_close(c->data_fd);
}

static void stack_done(Stack *s) {
        for (size_t i = 0; i < s->n; i++) {
                safe_close(s->e[i].fd);
                free(s->e[i].path);
        }
        free(s->e);
        free(s->below);
        *s = (Stack) {};
}

static int stack_push(Stack *s, size_t layer, int fd, char *path) {
        StackEntry *e = reallocarray(s->e, s->n + 1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        s->e = e;
        s->e[s->n++] = (StackEntry) { .layer = layer, .fd = fd, .path = path };
        return 0;
}

/* "A/B", or "B" when A is empty; bounded by PATH_MAX. */
static int path_join(const char *a, const char *b, char **ret) {
        size_t la = strlen(a), lb = strlen(b);
        if (la + lb + 2 > PATH_MAX)
                return -ENAMETOOLONG;
        char *p = malloc(la + lb + 2);
        if (!p)
                return -ENOMEM;
        if (la) {
                memcpy(p, a, la);
                p[la++] = '/';
        }
        memcpy(p + la, b, lb + 1);
        *ret = p;
        return 0;
}

static bool xattr_is_marker(const char *name) {
        /* xattr_is_private() leaves "<ns>overlay.overlay.X" alone: that is a user's escaped xattr. */
        return xattr_is_private(name, OVL_NS_TRUSTED "overlay.") || xattr_is_private(name, OVL_NS_USER "overlay.");
}

/* Directories: every xattr but the overlay markers of either namespace. */
static int copy_xattrs(int src_fd, int dst_fd) {
        _cleanup_free_ char *list = NULL;
        size_t size;
        int r;

        r = xattr_list_malloc(src_fd, &list, &size);
        if (r == -EOPNOTSUPP)
                return 0;
        if (r < 0)
                return r;
        for (const char *name = list; name < list + size; name += strlen(name) + 1) {
                _cleanup_free_ char *value = NULL;
                size_t value_size;

                if (!*name || xattr_is_marker(name))
                        continue;
                r = xattr_get_malloc(src_fd, name, &value, &value_size);
                if (r == -ENODATA)
                        continue;
                if (r < 0)
                        return r;
                r = xattr_set(dst_fd, name, value, value_size, 0);
                if (r == -EOPNOTSUPP) /* as copy-up: a namespace the destination lacks is skipped */
                        continue;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* copyup_make_temp() drops the trusted.overlay.* markers; the user.overlay.* ones go here. */
static int strip_user_markers(int fd) {
        _cleanup_free_ char *list = NULL;
        size_t size;
        int r;

        r = xattr_list_malloc(fd, &list, &size);
        if (r == -EOPNOTSUPP)
                return 0;
        if (r < 0)
                return r;
        for (const char *name = list; name < list + size; name += strlen(name) + 1)
                if (*name && xattr_is_private(name, OVL_NS_USER "overlay.")) {
                        r = xattr_remove(fd, name);
                        if (r < 0 && r != -ENODATA)
                                return r;
                }
        return 0;
}

/* A redirect xattr on the directory FD, decoded against PARENT_LOWER (for a relative one). 1 and
 * *ret_absolute for a valid redirect, 0 for none. An invalid value is ignored, as the unionfs does. */
static int read_redirect(int fd, const char *parent_lower, char **ret, bool *ret_absolute) {
        static const char *const names[] = { OVL_NS_TRUSTED "overlay.redirect", OVL_NS_USER "overlay.redirect" };
        char buf[PATH_MAX];

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ssize_t n = xattr_get(fd, names[i], buf, sizeof buf);
                if (n == -ENODATA || n == -EOPNOTSUPP || n == -ERANGE)
                        continue;
                if (n < 0)
                        return (int) n;
                if (whiteout_redirect_decode(buf, (size_t) n, parent_lower, ret) < 0)
                        continue;
                *ret_absolute = buf[0] == '/';
                return 1;
        }
        return 0;
}

typedef enum Walk {
        WALK_OK,         /* every directory on the way exists: *ret_fd is the last component */
        WALK_ABSENT,     /* missing in this layer: nothing here, go on below */
        WALK_STOP,       /* a whiteout or non-directory on the way hides the rest: stop */
        WALK_STOP_AFTER, /* an opaque directory on the way: this layer counts, none below it */
} Walk;

/* Resolve a clean multi-component PATH (from a redirect) in the layer ROOT_FD one component at a time,
 * as overlayfs walks a redirect, so whatever hides a directory on the way also hides its target. */
static int walk_path(int root_fd, const char *path, Walk *ret_walk, int *ret_fd) {
        _cleanup_close_ int cur = -EBADF;
        char comp[NAME_MAX + 1];
        bool stop_after = false;
        int r;

        for (const char *p = path;;) {
                const char *slash = strchr(p, '/');
                size_t n = slash ? (size_t) (slash - p) : strlen(p);
                if (n == 0 || n > NAME_MAX)
                        return -EINVAL; /* whiteout_redirect_decode() let it through: cannot happen */
                memcpy(comp, p, n);
                comp[n] = '\0';

                int fd = openat(cur >= 0 ? cur : root_fd, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENOENT) {
                                *ret_walk = WALK_ABSENT;
                                return 0;
                        }
                        return -errno;
                }
                safe_close(cur);
                cur = fd;
                if (!slash)
                        break;

                struct stat st;
                if (fstat(cur, &st) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode)) {
                        *ret_walk = WALK_STOP;
                        return 0;
                }
                r = ovl_dir_is_opaque(cur);
                if (r < 0)
                        return r;
                if (r > 0)
                        stop_after = true;
                p = slash + 1;
        }
        *ret_walk = stop_after ? WALK_STOP_AFTER : WALK_OK;
        *ret_fd = TAKE_FD(cur);
        return 0;
}

/* Directory part of PATH ("" for a single component), for relative redirects met after an absolute one. */
static int path_dirname(const char *path, char **ret) {
        const char *slash = strrchr(path, '/');
        char *d = slash ? strndup(path, (size_t) (slash - path)) : strdup("");
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

/* Look NAME up in the merged directory PARENT with overlayfs rules. In "parent mode" the name (or the
 * name a relative redirect gave) is searched in the parent's own directories, below the last layer
 * searched; after an absolute redirect ("root mode") the path is searched from the root of every
 * layer below. */
static int lookup_child(Squash *s, const Stack *parent, const char *name, Child *ret) {
        _cleanup_free_ char *cur = NULL; /* parent mode: a redirected name; root mode: the path */
        Child c = { .kind = FOUND_NONE, .parent_fd = -EBADF, .data_fd = -EBADF };
        bool root_mode = false, stop = false;
        size_t next_layer = 0, pi = 0;
        int r;

        for (;;) {
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *path = NULL;
                const StackEntry *pe = NULL;
                bool stop_after = false;
                size_t layer;
                struct stat st;

                if (!root_mode) {
                        while (pi < parent->n && parent->e[pi].layer < next_layer)
                                pi++;
                        if (pi >= parent->n)
                                break;
                        pe = &parent->e[pi++];
                        layer = pe->layer;
                        /* one clean component below a directory fd: openat cannot leave the layer */
                        fd = openat(pe->fd, cur ?: name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0) {
                                if (errno != ENOENT) {
                                        r = -errno;
                                        goto fail;
                                }
                                next_layer = layer + 1;
                                continue;
                        }
                } else {
                        if (next_layer >= s->n_layers)
                                break;
                        layer = next_layer;
                        Walk w = WALK_ABSENT;
                        r = walk_path(s->layer_fds[layer], cur, &w, &fd);
                        if (r < 0)
                                goto fail;
                        if (w == WALK_STOP) {
                                stop = true;
                                break;
                        }
                        if (w == WALK_ABSENT) {
                                next_layer = layer + 1;
                                continue;
                        }
                        stop_after = w == WALK_STOP_AFTER;
                }
                next_layer = layer + 1;

                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        goto fail;
                }
                if (ovl_is_whiteout(&st)) {
                        if (c.kind == FOUND_NONE)
                                c.kind = FOUND_WHITEOUT;
                        stop = true;
                        break;
                }
                if (!S_ISDIR(st.st_mode)) {
                        bool found_now = c.kind == FOUND_NONE;
                        if (found_now) {
                                /* only ever in parent mode: redirects come from directories found */
                                assert(pe);
                                c.kind = FOUND_NONDIR;
                                c.st = st;
                                c.layer = layer;
                                c.parent_fd = pe->fd;
                        }
                        if (c.kind != FOUND_NONDIR || !(found_now || c.metacopy) || !S_ISREG(st.st_mode)) {
                                stop = true; /* a non-directory below a directory is hidden and ends the merge */
                                break;
                        }
                        /* A metacopy file (kernel overlayfs's metacopy=on, sandbox-unionfs -o metacopy=on)
                         * has our metadata but not its data: that is the next regular file below, at the
                         * same name or at the file's redirect; metacopy files on the way are passed. */
                        r = ovl_is_metacopy(fd);
                        if (r < 0)
                                goto fail;
                        if (r == 0) {
                                if (!found_now) {
                                        char proc[32];
                                        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
                                        c.data_fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                                        if (c.data_fd < 0) {
                                                r = -errno;
                                                goto fail;
                                        }
                                }
                                stop = true;
                                break;
                        }
                        c.metacopy = true;
                        _cleanup_free_ char *plower = NULL, *redirect = NULL;
                        bool absolute = false;
                        if (root_mode) {
                                r = path_dirname(cur, &plower);
                                if (r < 0)
                                        goto fail;
                        }
                        r = read_redirect(fd, plower ?: "", &redirect, &absolute);
                        if (r < 0)
                                goto fail;
                        if (r > 0) {
                                root_mode = root_mode || absolute;
                                free(cur);
                                cur = TAKE_PTR(redirect);
                        }
                        continue;
                }
                if (c.metacopy) {
                        stop = true; /* a directory where the data should be */
                        break;
                }

                if (c.kind == FOUND_NONE) {
                        c.kind = FOUND_DIR;
                        c.st = st;
                }
                if (root_mode)
                        r = (path = strdup(cur)) ? 0 : -ENOMEM;
                else
                        r = path_join(pe->path, cur ?: name, &path);
                if (r < 0)
                        goto fail;
                int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0) {
                        r = -errno;
                        goto fail;
                }
                r = stack_push(&c.stack, layer, dfd, path);
                if (r < 0) {
                        safe_close(dfd);
                        goto fail;
                }
                TAKE_PTR(path);

                r = ovl_dir_is_opaque(fd);
                if (r < 0)
                        goto fail;
                if (r > 0 || stop_after) {
                        stop = true;
                        break;
                }

                _cleanup_free_ char *plower = NULL, *redirect = NULL;
                bool absolute = false;
                if (root_mode) {
                        r = path_dirname(cur, &plower);
                        if (r < 0)
                                goto fail;
                }
                r = read_redirect(fd, plower ?: "", &redirect, &absolute);
                if (r < 0)
                        goto fail;
                if (r > 0) {
                        /* relative in parent mode: a sibling name in the parent's directories below;
                         * otherwise a path from the root of every layer below */
                        root_mode = root_mode || absolute;
                        free(cur);
                        cur = TAKE_PTR(redirect);
                }
        }

        if (c.metacopy && c.data_fd < 0) {
                r = -ENODATA; /* a metacopy file whose data is not in any layer below */
                goto fail;
        }
        if (c.kind == FOUND_DIR && !stop) {
                if (root_mode)
                        c.stack.below = strdup(cur);
                else if (parent->below) {
                        r = path_join(parent->below, cur ?: name, &c.stack.below);
                        if (r < 0)
                                goto fail;
                }
                if (root_mode && !c.stack.below) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        *ret = c;
        return 0;

fail:
        child_done(&c);
        return r;
}

static uint64_t link_hash(size_t layer, dev_t dev, ino_t ino) {
        uint64_t h = (uint64_t) ino * UINT64_C(0x9E3779B97F4A7C15);
        h ^= ((uint64_t) dev + (uint64_t) layer * UINT64_C(0x100000001B3)) * UINT64_C(0xC2B2AE3D27D4EB4F);
        return h ^ (h >> 31);
}

static LinkEntry *link_find(Squash *s, size_t layer, dev_t dev, ino_t ino) {
        if (s->cap_links == 0)
                return NULL;
        for (size_t i = link_hash(layer, dev, ino) & (s->cap_links - 1);; i = (i + 1) & (s->cap_links - 1)) {
                LinkEntry *e = &s->links[i];
                if (!e->used)
                        return e;
                if (e->layer == layer && e->dev == dev && e->ino == ino)
                        return e;
        }
}

static int link_add(Squash *s, const LinkEntry *add) {
        if ((s->n_links + 1) * 2 > s->cap_links) {
                size_t ncap = s->cap_links ? s->cap_links * 2 : 64;
                LinkEntry *n = calloc(ncap, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                LinkEntry *old = s->links;
                size_t ocap = s->cap_links;
                s->links = n;
                s->cap_links = ncap;
                for (size_t i = 0; i < ocap; i++)
                        if (old[i].used)
                                *link_find(s, old[i].layer, old[i].dev, old[i].ino) = old[i];
                free(old);
        }
        LinkEntry *e = link_find(s, add->layer, add->dev, add->ino);
        *e = *add;
        e->used = true;
        s->n_links++;
        return 0;
}

static void links_free(Squash *s) {
        for (size_t i = 0; i < s->cap_links; i++)
                free(s->links[i].path);
        free(s->links);
        s->links = NULL;
        s->n_links = s->cap_links = 0;
}

/* A second name of an inode already copied: link to our copy, after checking it is still ours. */
static int link_to_copy(Squash *s, const LinkEntry *e, int dest_fd, const char *name) {
        char proc[sizeof("/proc/self/fd/") + 12];
        struct stat st;

        _cleanup_close_ int fd = open_beneath(s->root_fd, e->path, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_dev != e->dst_dev || st.st_ino != e->dst_ino)
                return -ESTALE;
        /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the magic link works for the owner of the fd. */
        if (linkat(fd, "", dest_fd, name, AT_EMPTY_PATH) >= 0)
                return 0;
        if (errno != ENOENT && errno != EPERM)
                return -errno;
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        return RET_NERRNO(linkat(AT_FDCWD, proc, dest_fd, name, AT_SYMLINK_FOLLOW));
}

static int copy_nondir(Squash *s, const Child *c, const char *name, int dest_fd, const char *dest_path) {
        char tmp[COPYUP_TEMP_NAME_MAX];
        bool linked = c->st.st_nlink > 1;
        int r;

        if (linked) {
                LinkEntry *e = link_find(s, c->layer, c->st.st_dev, c->st.st_ino);
                if (e && e->used) {
                        r = link_to_copy(s, e, dest_fd, name);
                        if (r >= 0)
                                progress_add(s->progress, 0, 1);
                        return r;
                }
        }

        r = copyup_make_temp(c->parent_fd, name, &c->st, dest_fd, NULL, OVL_NS_TRUSTED "overlay.",
                             COPYUP_NO_FSYNC | (c->metacopy ? COPYUP_META_ONLY : 0), tmp, sizeof tmp);
        if (r < 0)
                return r;
        if (c->metacopy) {
                /* the metadata is the metacopy file's, the data comes from below */
                _cleanup_close_ int wfd = openat(dest_fd, tmp, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
                const struct timespec ts[2] = { c->st.st_atim, c->st.st_mtim };
                r = wfd < 0 ? -errno : copyup_data(c->data_fd, wfd, (uint64_t) c->st.st_size);
                if (r >= 0)
                        r = RET_NERRNO(futimens(wfd, ts));
                if (r < 0) {
                        (void) unlinkat(dest_fd, tmp, 0);
                        return r;
                }
        }

        _cleanup_close_ int fd = openat(dest_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                r = -errno;
        else
                r = strip_user_markers(fd);
        if (r >= 0)
                r = RET_NERRNO(renameat2(dest_fd, tmp, dest_fd, name, RENAME_NOREPLACE));
        if (r < 0) {
                (void) unlinkat(dest_fd, tmp, 0);
                return r;
        }

        if (linked) {
                LinkEntry add = { .layer = c->layer, .dev = c->st.st_dev, .ino = c->st.st_ino,
                                  .dst_dev = st.st_dev, .dst_ino = st.st_ino };
                r = path_join(dest_path, name, &add.path);
                if (r < 0)
                        return r;
                r = link_add(s, &add);
                if (r < 0) {
                        free(add.path);
                        return r;
                }
        }
        progress_add(s->progress, S_ISREG(c->st.st_mode) ? (uint64_t) c->st.st_size : 0, 1);
        return 0;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* All names of the merged directory, sorted, each once; with TOP_ONLY those of layer 0 only. */
static int merged_names(const Stack *stack, bool top_only, char ***ret, size_t *ret_n) {
        char **names = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; i < stack->n && r >= 0; i++) {
                TreeList l = {};
                if (top_only && stack->e[i].layer != 0)
                        continue;
                r = tree_list(stack->e[i].fd, &l);
                if (r < 0)
                        break;
                char **nn = reallocarray(names, n + l.n + 1, sizeof(char *));
                if (!nn)
                        r = -ENOMEM;
                else {
                        names = nn;
                        for (size_t j = 0; j < l.n; j++)
                                names[n++] = TAKE_PTR(l.entries[j].name);
                }
                tree_list_free(&l);
        }
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return r;
        }
        if (n > 1)
                qsort(names, n, sizeof(char *), name_cmp);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && streq(names[k - 1], names[i]))
                        free(names[i]);
                else
                        names[k++] = names[i];
        }
        *ret = names;
        *ret_n = k;
        return 0;
}

static void names_free(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static int squash_dir(Squash *s, const Stack *stack, const struct stat *st, int dest_fd, const char *dest_path,
                      unsigned depth);

/* Create the merged directory NAME inside DEST_FD and fill it. */
static int squash_subdir(Squash *s, const Stack *parent, Child *c, const char *name, int dest_fd,
                         const char *dest_path, unsigned depth) {
        _cleanup_free_ char *path = NULL, *natural = NULL, *redirect = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t redirect_size = 0;
        int r;

        if (depth >= SQUASH_DEPTH_MAX)
                return -ELOOP;
        r = path_join(dest_path, name, &path);
        if (r < 0)
                return r;

        if (s->flags & SQUASH_KEEP_WHITEOUTS && c->stack.below) {
                /* Below the result, the kernel looks for NAME at the parent's lower path; if our
                 * contents below live elsewhere, say where, as an absolute path from the layer root. */
                if (parent->below) {
                        r = path_join(parent->below, name, &natural);
                        if (r < 0)
                                return r;
                }
                if (!natural || !streq(natural, c->stack.below)) {
                        r = whiteout_redirect_encode(c->stack.below, &redirect, &redirect_size);
                        if (r < 0)
                                return r;
                }
        }

        if (mkdirat(dest_fd, name, 0700) < 0)
                return -errno;
        fd = openat(dest_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (s->flags & SQUASH_KEEP_WHITEOUTS) {
                char xname[64];
                if (!c->stack.below) {
                        r = ovl_dir_set_opaque(fd, s->ns);
                        if (r < 0)
                                return r;
                } else if (redirect) {
                        snprintf(xname, sizeof xname, "%soverlay.redirect", s->ns);
                        r = xattr_set(fd, xname, redirect, redirect_size, 0);
                        if (r < 0)
                                return r;
                }
        }
        return squash_dir(s, &c->stack, &c->st, fd, path, depth + 1);
}

/* Fill DEST_FD (created by us, still 0700) with the merged directory STACK whose topmost directory has
 * the stat ST, then give it ST's owner, xattrs, mode and times. */
static int squash_dir(Squash *s, const Stack *stack, const struct stat *st, int dest_fd, const char *dest_path,
                      unsigned depth) {
        const struct timespec times[2] = { st->st_atim, st->st_mtim };
        char **names = NULL;
        size_t n_names = 0;
        int r;

        /* owner first: chown may clear bits that the xattrs and the mode set. The result's root stays
         * ours and 0700 (squash_layers() records what it shows): no window in which it is open. */
        bool is_root = *dest_path == '\0';
        if (!is_root && fchown(dest_fd, st->st_uid, st->st_gid) < 0)
                return -errno;
        r = copy_xattrs(stack->e[0].fd, dest_fd);
        if (r < 0)
                return r;

        r = merged_names(stack, s->flags & SQUASH_TOP_ONLY, &names, &n_names);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_names && r >= 0; i++) {
                Child c = { .data_fd = -EBADF };
                r = lookup_child(s, stack, names[i], &c);
                if (r < 0)
                        break;
                switch (c.kind) {
                case FOUND_NONE:
                        break;
                case FOUND_WHITEOUT:
                        /* worth keeping only where a layer below the result would be searched */
                        if (s->flags & SQUASH_KEEP_WHITEOUTS && stack->below)
                                r = ovl_make_whiteout(dest_fd, names[i]);
                        break;
                case FOUND_NONDIR:
                        r = copy_nondir(s, &c, names[i], dest_fd, dest_path);
                        break;
                case FOUND_DIR:
                        r = squash_subdir(s, stack, &c, names[i], dest_fd, dest_path, depth);
                        break;
                }
                if (r < 0)
                        log_debug_errno(r, "Failed to squash '%s%s%s': %m", dest_path, *dest_path ? "/" : "",
                                        names[i]);
                child_done(&c);
        }
        names_free(names, n_names);
        if (r < 0)
                return r;

        /* last: the mode could forbid writing the children, and every child changed the mtime */
        if (!is_root && fchmod(dest_fd, st->st_mode & 07777) < 0)
                return -errno;
        if (futimens(dest_fd, times) < 0)
                return -errno;
        progress_add(s->progress, 0, 1);
        return 0;
}

int squash_layers(const int *layer_fds, size_t n_layers, int dest_dirfd, const char *dest_name, unsigned flags,
                  Progress *progress) {
        _cleanup_(stack_done) Stack root = {};
        _cleanup_close_ int root_fd = -EBADF;
        Squash s = {
                .layer_fds = layer_fds,
                .n_layers = n_layers,
                .flags = flags,
                .ns = ovl_default_ns(),
                .progress = progress,
        };
        char tmp[64];
        struct stat st;
        int r;

        assert_return(layer_fds && n_layers > 0 && n_layers <= SQUASH_LAYERS_MAX, -EINVAL);
        assert_return(dest_dirfd >= 0 && dest_name && filename_is_valid(dest_name), -EINVAL);

        Progress dummy;
        if (!s.progress) {
                progress_init(&dummy, "squash");
                dummy.enabled = false;
                s.progress = &dummy;
        }

        if (fstatat(dest_dirfd, dest_name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return -EEXIST;
        if (errno != ENOENT)
                return -errno;

        /* The root merges every layer, whatever markers the roots carry. */
        for (size_t i = 0; i < n_layers; i++) {
                int fd = fcntl(layer_fds[i], F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                char *p = strdup("");
                if (!p) {
                        safe_close(fd);
                        return -ENOMEM;
                }
                r = stack_push(&root, i, fd, p);
                if (r < 0) {
                        safe_close(fd);
                        free(p);
                        return r;
                }
        }
        root.below = strdup("");
        if (!root.below)
                return -ENOMEM;
        if (fstat(layer_fds[0], &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        /* The merged root has the topmost root's mode and owner: its record if it is private. */
        RootAttr logical;
        r = rootattr_logical(layer_fds[0], NULL, &logical);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;

        for (unsigned attempt = 0;; attempt++) {
                snprintf(tmp, sizeof tmp, ".#squash-%ld-%u", (long) getpid(), attempt);
                if (mkdirat(dest_dirfd, tmp, 0700) >= 0)
                        break;
                if (errno != EEXIST || attempt + 1 >= TEMP_NAME_ATTEMPTS)
                        return -errno;
        }
        root_fd = openat(dest_dirfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root_fd < 0) {
                r = -errno;
                goto fail;
        }
        s.root_fd = root_fd;

        r = squash_dir(&s, &root, &st, root_fd, "", 0);
        if (r < 0)
                goto fail;
        /* Private root (common/rootattr.h): the result may hold set-id files and devices. */
        r = rootattr_make_private(root_fd, s.ns, &logical);
        if (r < 0)
                goto fail;
        /* One flush of the filesystem instead of an fsync per object: everything we wrote is on it. */
        if (syncfs(root_fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (renameat2(dest_dirfd, tmp, dest_dirfd, dest_name, RENAME_NOREPLACE) < 0) {
                r = -errno;
                goto fail;
        }
        links_free(&s);
        /* The rename itself is durable once the directory holding it is synced. */
        return RET_NERRNO(fsync(dest_dirfd));

fail:
        links_free(&s);
        root_fd = safe_close(root_fd);
        (void) copyup_remove_temp(dest_dirfd, tmp);
        return r;
}
