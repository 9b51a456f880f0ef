/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The node table: one Node per inode of the merged view, keyed by its shown inode number, with
 * reference counts (kernel lookups, children, temporary holds) and the names it is known by.
 * Paths are rebuilt from the names on demand, so a rename only touches the renamed node.
 * Locking: table_lock protects the table, counts and aliases; see union.h for the order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "macro.h"
#include "union.h"

static size_t bucket_of(const Union *u, uint64_t ino) {
        return (size_t) (XXH3_64bits(&ino, sizeof ino) & (u->n_table - 1));
}

int node_table_init(Union *u) {
        u->n_table = 1024;
        u->table = calloc(u->n_table, sizeof(Node *));
        return u->table ? 0 : -ENOMEM;
}

static void gone_remove(Union *u, Node *n) {
        if (n->gone_prev)
                n->gone_prev->gone_next = n->gone_next;
        else if (u->gone == n)
                u->gone = n->gone_next;
        if (n->gone_next)
                n->gone_next->gone_prev = n->gone_prev;
        n->gone_prev = n->gone_next = NULL;
}

static void node_free(Union *u, Node *n) {
        gone_remove(u, n);
        /* An object without a name (unlinked while open, an anonymous copy) is freed with its last fd. */
        if (__atomic_load_n(&n->qgone, __ATOMIC_ACQUIRE))
                quota_forget(&u->quota, &n->qblocks);
        if (n->upper_fd >= 0) {
                safe_close(n->upper_fd);
                __atomic_sub_fetch(&u->n_cached_fds, 1, __ATOMIC_RELAXED);
        }
        if (n->orphan_fd >= 0) {
                safe_close(n->orphan_fd);
                __atomic_sub_fetch(&u->n_orphan_fds, 1, __ATOMIC_RELAXED);
        }
        for (size_t i = 0; i < n->n_aliases; i++)
                free(n->aliases[i].name);
        free(n->aliases);
        free(n->redirect);
        free(n->data_path);
        free(n);
}

void node_keep_orphan(Union *u, Node *n, int fd) {
        if (fd < 0)
                return;
        if (n->orphan_fd >= 0 ||
            __atomic_add_fetch(&u->n_orphan_fds, 1, __ATOMIC_RELAXED) > UNION_MAX_ORPHAN_FDS) {
                if (n->orphan_fd < 0)
                        __atomic_sub_fetch(&u->n_orphan_fds, 1, __ATOMIC_RELAXED);
                safe_close(fd);
                return;
        }
        n->orphan_fd = fd;
}

static void unref_locked(Union *u, Node *n, uint64_t count);

/* At shutdown the kernel's references are gone: free the nodes leaves first (a parent is freed
 * once its last child is), pass after pass. */
void node_table_done(Union *u) {
        pthread_mutex_lock(&u->table_lock);
        for (bool progress = true; u->table && u->n_nodes > 0 && progress;) {
                progress = false;
                for (size_t b = 0; b < u->n_table; b++)
                        for (Node *n = u->table[b], *next; n; n = next) {
                                next = n->hash_next;
                                if (n->n_children > 0)
                                        continue;
                                n->refs = 1;
                                unref_locked(u, n, 1);
                                progress = true;
                                break; /* the chain may have changed under the cascade */
                        }
        }
        /* Then what was taken out of the table but never forgotten by the kernel (an unlinked file
         * still open at unmount, say), children before their parents as above. */
        for (bool progress = true; u->gone && progress;) {
                progress = false;
                for (Node *n = u->gone; n; n = n->gone_next)
                        if (n->n_children == 0) {
                                n->refs = 1;
                                unref_locked(u, n, 1);
                                progress = true;
                                break;
                        }
        }
        pthread_mutex_unlock(&u->table_lock);
        free(u->table);
        u->table = NULL;
        if (u->root) {
                node_free(u, u->root);
                u->root = NULL;
        }
}

static void table_grow(Union *u) {
        size_t nn = u->n_table * 2;
        Node **t = calloc(nn, sizeof(Node *));
        if (!t)
                return; /* keep the longer chains */
        for (size_t b = 0; b < u->n_table; b++)
                for (Node *n = u->table[b], *next; n; n = next) {
                        next = n->hash_next;
                        size_t nb = (size_t) (XXH3_64bits(&n->ino, sizeof n->ino) & (nn - 1));
                        n->hash_next = t[nb];
                        t[nb] = n;
                }
        free(u->table);
        u->table = t;
        u->n_table = nn;
}

static void table_insert(Union *u, Node *n) {
        if (u->n_nodes >= u->n_table)
                table_grow(u);
        size_t b = bucket_of(u, n->ino);
        n->hash_next = u->table[b];
        u->table[b] = n;
        n->hashed = true;
        u->n_nodes++;
}

static void table_remove(Union *u, Node *n) {
        if (!n->hashed)
                return;
        for (Node **p = &u->table[bucket_of(u, n->ino)]; *p; p = &(*p)->hash_next)
                if (*p == n) {
                        *p = n->hash_next;
                        break;
                }
        n->hashed = false;
        n->hash_next = NULL;
        u->n_nodes--;
        /* still held (by the kernel, an operation): remembered, so the end can free it */
        if (n->refs > 0 && n != u->root) {
                n->gone_prev = NULL;
                n->gone_next = u->gone;
                if (u->gone)
                        u->gone->gone_prev = n;
                u->gone = n;
        }
}

static Node *table_find(const Union *u, uint64_t ino) {
        for (Node *n = u->table[bucket_of(u, ino)]; n; n = n->hash_next)
                if (n->ino == ino)
                        return n;
        return NULL;
}

Node *node_get(Union *u, uint64_t ino) {
        pthread_mutex_lock(&u->table_lock);
        Node *n = table_find(u, ino);
        if (n)
                n->refs++;
        pthread_mutex_unlock(&u->table_lock);
        return n;
}

/* Drop COUNT references; frees nodes (and then their parents) that nothing references any more.
 * The first parent is followed in the loop (directories have one name, so a deep chain never
 * recurses); the other parents of a hard-linked node are released by recursion.
 * Called with table_lock held. */
static void unref_locked(Union *u, Node *n, uint64_t count) {
        while (n) {
                Node *next = NULL;

                if (n->refs < count)
                        count = n->refs; /* kernel bug or double forget: never underflow */
                n->refs -= count;
                if (n->refs > 0 || n == u->root)
                        return;

                table_remove(u, n);
                for (size_t i = 0; i < n->n_aliases; i++) {
                        Node *p = n->aliases[i].parent;
                        p->n_children--;
                        if (!next)
                                next = p;
                        else
                                unref_locked(u, p, 1);
                }
                node_free(u, n);
                n = next;
                count = 1;
        }
}

void node_unref(Union *u, Node *n, uint64_t count) {
        if (!n)
                return;
        pthread_mutex_lock(&u->table_lock);
        unref_locked(u, n, count);
        pthread_mutex_unlock(&u->table_lock);
}

void node_forget(Union *u, Node *n, uint64_t nlookup) {
        pthread_mutex_lock(&u->table_lock);
        if (nlookup > n->nlookup)
                nlookup = n->nlookup;
        n->nlookup -= nlookup;
        unref_locked(u, n, nlookup);
        pthread_mutex_unlock(&u->table_lock);
}

static ssize_t alias_find(const Node *n, const Node *parent, const char *name) {
        for (size_t i = 0; i < n->n_aliases; i++)
                if (n->aliases[i].parent == parent && streq(n->aliases[i].name, name))
                        return (ssize_t) i;
        return -1;
}

static int alias_add_locked(Node *n, Node *parent, const char *name) {
        if (alias_find(n, parent, name) >= 0)
                return 0;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        Alias *a = realloc(n->aliases, (n->n_aliases + 1) * sizeof(Alias));
        if (!a) {
                free(copy);
                return -ENOMEM;
        }
        n->aliases = a;
        n->aliases[n->n_aliases++] = (Alias) { .parent = parent, .name = copy };
        parent->n_children++;
        parent->refs++;
        return 0;
}

int node_add_alias(Union *u, Node *n, Node *parent, const char *name) {
        pthread_mutex_lock(&u->table_lock);
        int r = alias_add_locked(n, parent, name);
        pthread_mutex_unlock(&u->table_lock);
        return r;
}

void node_remove_alias(Union *u, Node *n, Node *parent, const char *name) {
        pthread_mutex_lock(&u->table_lock);
        ssize_t i = alias_find(n, parent, name);
        if (i >= 0) {
                free(n->aliases[i].name);
                memmove(n->aliases + i, n->aliases + i + 1, (n->n_aliases - (size_t) i - 1) * sizeof(Alias));
                n->n_aliases--;
                /* A node without names must not be found again by inode number: the number may be
                 * reused by the upper filesystem for a new file. */
                if (n->n_aliases == 0)
                        table_remove(u, n);
                parent->n_children--;
                unref_locked(u, parent, 1);
        }
        pthread_mutex_unlock(&u->table_lock);
}

int node_move_alias(Union *u, Node *n, Node *oldparent, const char *oldname, Node *newparent, const char *newname) {
        char *copy = strdup(newname);
        if (!copy)
                return -ENOMEM;

        pthread_mutex_lock(&u->table_lock);
        ssize_t i = alias_find(n, oldparent, oldname);
        ssize_t j = alias_find(n, newparent, newname);
        if (i < 0) {
                /* Unknown old name (never looked up under it): just learn the new one. */
                int r = j >= 0 ? 0 : alias_add_locked(n, newparent, newname);
                pthread_mutex_unlock(&u->table_lock);
                free(copy);
                return r;
        }
        if (j >= 0 && j != i) {
                /* Renaming one hard link over another: the old name simply goes away. */
                free(copy);
                free(n->aliases[i].name);
                memmove(n->aliases + i, n->aliases + i + 1, (n->n_aliases - (size_t) i - 1) * sizeof(Alias));
                n->n_aliases--;
                oldparent->n_children--;
                unref_locked(u, oldparent, 1);
                pthread_mutex_unlock(&u->table_lock);
                return 0;
        }
        free(n->aliases[i].name);
        n->aliases[i].name = copy;
        if (oldparent != newparent) {
                n->aliases[i].parent = newparent;
                newparent->n_children++;
                newparent->refs++;
                oldparent->n_children--;
                unref_locked(u, oldparent, 1);
        }
        pthread_mutex_unlock(&u->table_lock);
        return 0;
}

int path_join(const char *dir, const char *name, char **ret) {
        size_t a = strlen(dir), b = strlen(name);
        char *p = malloc(a + b + 2);
        if (!p)
                return -ENOMEM;
        if (a == 0)
                memcpy(p, name, b + 1);
        else {
                memcpy(p, dir, a);
                p[a] = '/';
                memcpy(p + a + 1, name, b + 1);
        }
        *ret = p;
        return 0;
}

/* Build the path of N in LAYER from its first aliases: stop at the nearest directory whose redirect
 * was found above LAYER and use the redirect as the prefix. The result is "" for the root. */
static int build_path(const Union *u, const Node *n, int layer, char **ret) {
        const Node *chain[512];
        const char *prefix = NULL;
        size_t depth = 0, len = 0;
        _cleanup_free_ const Node **big = NULL;
        const Node **c = chain;
        size_t cap = ELEMENTSOF(chain);

        pthread_mutex_lock((pthread_mutex_t *) &u->table_lock);
        for (const Node *p = n; p != u->root; p = p->aliases[0].parent) {
                if (p->redirect && p->redirect_layer < layer) {
                        prefix = p->redirect;
                        break;
                }
                if (p->n_aliases == 0) {
                        pthread_mutex_unlock((pthread_mutex_t *) &u->table_lock);
                        return -ENOENT; /* unlinked: reachable only through open files */
                }
                if (depth == cap) {
                        const Node **nb = realloc(big, cap * 2 * sizeof(Node *));
                        if (!nb) {
                                pthread_mutex_unlock((pthread_mutex_t *) &u->table_lock);
                                return -ENOMEM;
                        }
                        if (!big)
                                memcpy(nb, chain, sizeof chain);
                        big = nb;
                        c = big;
                        cap *= 2;
                }
                c[depth++] = p;
                len += strlen(p->aliases[0].name) + 1;
        }
        if (prefix)
                len += strlen(prefix) + 1;

        char *buf = malloc(len + 1), *q = buf;
        if (!buf) {
                pthread_mutex_unlock((pthread_mutex_t *) &u->table_lock);
                return -ENOMEM;
        }
        if (prefix) {
                q = stpcpy(q, prefix);
        }
        for (size_t i = depth; i > 0; i--) {
                if (q != buf)
                        *q++ = '/';
                q = stpcpy(q, c[i - 1]->aliases[0].name);
        }
        *q = '\0';
        pthread_mutex_unlock((pthread_mutex_t *) &u->table_lock);
        *ret = buf;
        return 0;
}

int node_path(const Union *u, const Node *n, char **ret) {
        return build_path(u, n, UPPER, ret);
}

int node_layer_path(const Union *u, const Node *n, int layer, char **ret) {
        return build_path(u, n, layer, ret);
}

int node_obtain(Union *u, Node *parent, const char *name, LookupResult *r, bool kernel, Node **ret) {
        int e;

        pthread_mutex_lock(&u->table_lock);
        Node *n = table_find(u, (uint64_t) r->st.st_ino);
        if (n && n->type != (r->st.st_mode & S_IFMT)) {
                /* The number was reused for a new object: the old node lives on for the kernel only. */
                table_remove(u, n);
                n = NULL;
        }
        if (!n) {
                n = calloc(1, sizeof *n);
                if (!n) {
                        pthread_mutex_unlock(&u->table_lock);
                        return -ENOMEM;
                }
                n->ino = (uint64_t) r->st.st_ino;
                n->type = r->st.st_mode & S_IFMT;
                n->upper_fd = -EBADF;
                n->orphan_fd = -EBADF;
                n->layer = r->layer;
                n->last_layer = r->last_layer;
                n->merged = r->merged;
                n->indexed = r->indexed;
                n->lower_dev = r->lower_dev;
                n->lower_ino = r->lower_ino;
                n->redirect = TAKE_PTR(r->redirect);
                n->redirect_layer = r->redirect_layer;
                if (r->metacopy) {
                        n->data_layer = r->data_layer;
                        n->data_path = TAKE_PTR(r->data_path);
                        n->metacopy = true;
                }
                /* What the quota counted for its object so far: all of it, if it is on the upper. */
                n->qblocks = u->has_upper && (r->layer == UPPER || r->indexed) ? (int64_t) r->st.st_blocks : -1;
                table_insert(u, n);
        }
        if (r->indexed && !n->indexed) {
                /* learnt through another name: this node's object is the index copy */
                n->lower_dev = r->lower_dev;
                n->lower_ino = r->lower_ino;
                __atomic_store_n(&n->indexed, true, __ATOMIC_RELEASE);
        }
        e = alias_add_locked(n, parent, name);
        if (e < 0) {
                if (n->refs == 0 && n->n_aliases == 0) {
                        table_remove(u, n);
                        node_free(u, n);
                }
                pthread_mutex_unlock(&u->table_lock);
                return e;
        }
        n->refs++;
        if (kernel)
                n->nlookup++;
        pthread_mutex_unlock(&u->table_lock);
        *ret = n;
        return 0;
}
