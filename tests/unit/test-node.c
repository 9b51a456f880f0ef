/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of unionfs/node.c, the node table, without any layer: each case builds a Union with only
 * what node.c touches (its locks, the table, a root node made as union_root_init() makes it) and feeds
 * node_obtain() hand-made LookupResults. Checked: one node per inode number with exact reference and
 * lookup counts, hard-link aliases, freeing on forget (and of parents that only children pinned),
 * inode number reuse, renames (node_move_alias), and the merged and per-layer paths built from aliases
 * and redirects, including chains deeper than build_path()'s on-stack array. Pure logic. Output is TAP.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "tap.h"
#include "unionfs/union.h"

#define ROOT_INO 1

static Union *test_union_new(void) {
        Union *u = calloc(1, sizeof *u);
        if (!u)
                return NULL;
        pthread_rwlock_init(&u->ns_lock, NULL);
        pthread_mutex_init(&u->cow_lock, NULL);
        pthread_mutex_init(&u->table_lock, NULL);
        if (node_table_init(u) < 0) {
                free(u);
                return NULL;
        }
        /* as union_root_init(), without looking at a layer */
        Node *root = calloc(1, sizeof *root);
        if (!root) {
                node_table_done(u);
                free(u);
                return NULL;
        }
        root->type = S_IFDIR;
        root->ino = ROOT_INO;
        root->refs = 1;
        root->hashed = false;
        u->root = root;
        u->n_layers = 2;
        return u;
}

static void test_union_freep(Union **up) {
        Union *u = *up;
        if (!u)
                return;
        node_table_done(u);
        free(u->root);
        pthread_mutex_destroy(&u->table_lock);
        pthread_mutex_destroy(&u->cow_lock);
        pthread_rwlock_destroy(&u->ns_lock);
        free(u);
}

#define _cleanup_union_ _cleanup_(test_union_freep)

/* Look NAME up under PARENT as if lookup.c had found inode INO of type TYPE in layer 1. */
static int obtain_full(Union *u, Node *parent, const char *name, uint64_t ino, mode_t type, bool kernel,
                       const char *redirect, int redirect_layer, Node **ret) {
        LookupResult r = {};
        r.st.st_ino = (ino_t) ino;
        r.st.st_mode = type | 0755;
        r.layer = 1;
        r.last_layer = 1;
        if (redirect) {
                r.redirect = strdup(redirect);
                if (!r.redirect)
                        return -ENOMEM;
                r.redirect_layer = redirect_layer;
        }
        int e = node_obtain(u, parent, name, &r, kernel, ret);
        free(r.redirect);
        return e;
}

static Node *obtain(Union *u, Node *parent, const char *name, uint64_t ino, mode_t type) {
        Node *n = NULL;
        if (obtain_full(u, parent, name, ino, type, true, NULL, 0, &n) < 0)
                return NULL;
        return n;
}

/* The path of N in LAYER (-1: node_path(), the merged path), or "<ERRNO>". */
static char path_buf[8192];
static const char *path_of(const Union *u, const Node *n, int layer) {
        char *p = NULL;
        int r = layer < 0 ? node_path(u, n, &p) : node_layer_path(u, n, layer, &p);
        if (r < 0)
                snprintf(path_buf, sizeof path_buf, "<%s>", tap_errname(r));
        else
                snprintf(path_buf, sizeof path_buf, "%s", p);
        free(p);
        return path_buf;
}

#define MERGED (-1)

/* Is INO in the table? node_get() takes a temporary reference, given back at once. */
static bool in_table(Union *u, uint64_t ino) {
        Node *n = node_get(u, ino);
        node_unref(u, n, 1);
        return n != NULL;
}

static int test_obtain_twice(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);
        Node *root = u->root;

        Node *a = obtain(u, root, "a", 100, S_IFDIR);
        CHECK(a);
        CHECK_U64(a->ino, 100);
        CHECK_EQ(a->type, S_IFDIR);
        CHECK_EQ(a->layer, 1);
        CHECK_U64(a->refs, 1);
        CHECK_U64(a->nlookup, 1);
        CHECK_EQ(a->n_aliases, 1);
        CHECK(a->aliases[0].parent == root);
        CHECK_STREQ(a->aliases[0].name, "a");
        CHECK(a->hashed);
        CHECK_U64(root->refs, 2);      /* its own + one child alias */
        CHECK_EQ(root->n_children, 1);
        CHECK_EQ(u->n_nodes, 1);

        Node *again = obtain(u, root, "a", 100, S_IFDIR);
        CHECK(again == a);
        CHECK_U64(a->refs, 2);
        CHECK_U64(a->nlookup, 2);
        CHECK_EQ(a->n_aliases, 1);     /* the same name is not added twice */
        CHECK_U64(root->refs, 2);
        CHECK_EQ(root->n_children, 1);
        CHECK_EQ(u->n_nodes, 1);

        /* a temporary (non-kernel) hold counts as a reference but not as a lookup */
        Node *t = NULL;
        CHECK_EQ(obtain_full(u, root, "a", 100, S_IFDIR, false, NULL, 0, &t), 0);
        CHECK(t == a);
        CHECK_U64(a->refs, 3);
        CHECK_U64(a->nlookup, 2);
        node_unref(u, a, 1);
        CHECK_U64(a->refs, 2);

        node_forget(u, a, 2);
        CHECK(!in_table(u, 100));
        CHECK_U64(root->refs, 1);
        CHECK_EQ(root->n_children, 0);
        CHECK_EQ(u->n_nodes, 0);
        return 0;
}

static int test_get_unref(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);

        Node *f = obtain(u, u->root, "f", 200, S_IFREG);
        CHECK(f);
        CHECK(node_get(u, 201) == NULL);
        CHECK(node_get(u, ROOT_INO) == NULL); /* the root is found by FUSE_ROOT_ID, not by number */
        Node *g = node_get(u, 200);
        CHECK(g == f);
        CHECK_U64(f->refs, 2);
        CHECK_U64(f->nlookup, 1);

        /* the kernel forgets, the temporary holder keeps the node alive */
        node_forget(u, f, 1);
        CHECK_U64(f->refs, 1);
        CHECK_U64(f->nlookup, 0);
        CHECK(node_get(u, 200) == f);
        node_unref(u, f, 2);
        CHECK(!in_table(u, 200));
        CHECK_U64(u->root->refs, 1);
        node_unref(u, NULL, 1); /* accepted */
        return 0;
}

static int test_forget_clamped(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);

        Node *f = obtain(u, u->root, "f", 300, S_IFREG);
        CHECK(f);
        CHECK(obtain(u, u->root, "f", 300, S_IFREG) == f);
        Node *hold = node_get(u, 300);
        CHECK(hold == f);
        CHECK_U64(f->refs, 3);
        /* forgetting more lookups than the kernel made only drops those it made */
        node_forget(u, f, 1000);
        CHECK_U64(f->nlookup, 0);
        CHECK_U64(f->refs, 1);
        CHECK(in_table(u, 300));
        node_forget(u, f, 1); /* a double forget: nothing left to drop */
        CHECK_U64(f->refs, 1);
        node_unref(u, f, 1);
        CHECK(!in_table(u, 300));
        CHECK_U64(u->root->refs, 1);
        return 0;
}

static int test_parent_pinned_by_children(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);

        Node *d = obtain(u, u->root, "d", 400, S_IFDIR);
        CHECK(d);
        Node *x = obtain(u, d, "x", 401, S_IFREG);
        Node *y = obtain(u, d, "y", 402, S_IFREG);
        CHECK(x && y);
        CHECK_U64(d->refs, 3);
        CHECK_EQ(d->n_children, 2);

        node_forget(u, d, 1); /* the kernel is done with d, but its children still name it */
        CHECK_U64(d->refs, 2);
        CHECK(in_table(u, 400));
        CHECK_STREQ(path_of(u, x, MERGED), "d/x");

        node_forget(u, x, 1);
        CHECK(!in_table(u, 401));
        CHECK(in_table(u, 400));
        CHECK_U64(d->refs, 1);
        CHECK_EQ(d->n_children, 1);
        CHECK_STREQ(path_of(u, y, MERGED), "d/y");

        node_forget(u, y, 1); /* last child: d goes too */
        CHECK(!in_table(u, 402));
        CHECK(!in_table(u, 400));
        CHECK_U64(u->root->refs, 1);
        CHECK_EQ(u->root->n_children, 0);
        CHECK_EQ(u->n_nodes, 0);
        return 0;
}

#define DEEP 1100 /* more than build_path()'s 512 on-stack entries, and than twice that */

static int test_deep_chain(void) {
        _cleanup_union_ Union *u = test_union_new();
        static Node *chain[DEEP];
        CHECK(u);

        Node *p = u->root;
        for (unsigned i = 0; i < DEEP; i++) {
                chain[i] = obtain(u, p, i % 2 ? "b" : "a", 1000 + i, i + 1 < DEEP ? S_IFDIR : S_IFREG);
                CHECK(chain[i]);
                p = chain[i];
        }
        char *path = NULL;
        CHECK_EQ(node_path(u, chain[DEEP - 1], &path), 0);
        CHECK_EQ(strlen(path), 2 * DEEP - 1);
        for (unsigned i = 0; i < DEEP; i++) {
                if (path[2 * i] != (i % 2 ? 'b' : 'a') || (i + 1 < DEEP && path[2 * i + 1] != '/')) {
                        printf("# wrong path at component %u: '%.20s'\n", i, path + 2 * i);
                        free(path);
                        return -1;
                }
        }
        free(path);
        CHECK_STREQ(path_of(u, chain[2], MERGED), "a/b/a");

        /* the kernel forgets every directory first; the leaf pins them all */
        for (unsigned i = 0; i + 1 < DEEP; i++)
                node_forget(u, chain[i], 1);
        CHECK_EQ(u->n_nodes, DEEP);
        CHECK(in_table(u, 1000));
        /* then the leaf: the whole chain is freed, iteratively */
        node_forget(u, chain[DEEP - 1], 1);
        CHECK_EQ(u->n_nodes, 0);
        CHECK(!in_table(u, 1000));
        CHECK_U64(u->root->refs, 1);
        return 0;
}

static int test_hard_links(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);
        Node *root = u->root;

        Node *d = obtain(u, root, "d", 500, S_IFDIR);
        Node *f = obtain(u, root, "f1", 501, S_IFREG);
        CHECK(d && f);
        Node *f2 = obtain(u, d, "f2", 501, S_IFREG); /* the same inode under another name */
        CHECK(f2 == f);
        Node *f3 = obtain(u, root, "f3", 501, S_IFREG);
        CHECK(f3 == f);
        CHECK_EQ(f->n_aliases, 3);
        CHECK_U64(f->nlookup, 3);
        CHECK_U64(f->refs, 3);
        CHECK_U64(d->refs, 2);
        CHECK_U64(root->refs, 4); /* own + d + f1 + f3 */
        CHECK_EQ(u->n_nodes, 2);
        /* paths are built from the first alias */
        CHECK_STREQ(path_of(u, f, MERGED), "f1");

        node_remove_alias(u, f, root, "f1"); /* unlink f1 */
        CHECK_EQ(f->n_aliases, 2);
        CHECK_STREQ(path_of(u, f, MERGED), "d/f2");
        CHECK_U64(root->refs, 3);
        CHECK(in_table(u, 501));
        node_remove_alias(u, f, root, "no-such-name"); /* unknown: nothing changes */
        CHECK_EQ(f->n_aliases, 2);
        CHECK_U64(root->refs, 3);

        /* adding an alias by hand (link) */
        CHECK_EQ(node_add_alias(u, f, d, "f4"), 0);
        CHECK_EQ(f->n_aliases, 3);
        CHECK_U64(d->refs, 3);
        CHECK_EQ(node_add_alias(u, f, d, "f4"), 0); /* twice: once */
        CHECK_EQ(f->n_aliases, 3);
        CHECK_U64(d->refs, 3);

        node_forget(u, d, 1);
        node_forget(u, f, 2);
        CHECK(in_table(u, 501));
        node_forget(u, f, 1);
        CHECK(!in_table(u, 501));
        CHECK(!in_table(u, 500)); /* d was pinned only by f's aliases */
        CHECK_U64(root->refs, 1);
        CHECK_EQ(root->n_children, 0);
        CHECK_EQ(u->n_nodes, 0);
        return 0;
}

/* A file hard-linked into more directories than unref_locked()'s 8-entry parent array, where the
 * kernel already forgot the directories (its dentries for them were evicted): freeing the file must
 * free every directory, not only the first eight. */
static int test_hard_links_many_parents(void) {
        _cleanup_union_ Union *u = test_union_new();
        enum { N = 12 };
        Node *dirs[N], *f = NULL;
        char name[16];
        CHECK(u);

        for (unsigned i = 0; i < N; i++) {
                snprintf(name, sizeof name, "d%u", i);
                dirs[i] = obtain(u, u->root, name, 600 + i, S_IFDIR);
                CHECK(dirs[i]);
                Node *n = obtain(u, dirs[i], "link", 700, S_IFREG);
                CHECK(n);
                CHECK(!f || n == f);
                f = n;
        }
        CHECK_EQ(f->n_aliases, N);
        for (unsigned i = 0; i < N; i++)
                node_forget(u, dirs[i], 1);
        CHECK_EQ(u->n_nodes, N + 1);
        CHECK_U64(u->root->refs, 1 + N);

        node_forget(u, f, N);
        CHECK(!in_table(u, 700));
        unsigned survivors = 0;
        for (unsigned i = 0; i < N; i++) {
                Node *n = node_get(u, 600 + i);
                if (n) {
                        printf("# directory d%u (ino %u) survived with refs %llu, n_children %u\n", i,
                               600 + i, (unsigned long long) n->refs - 1, n->n_children);
                        node_unref(u, n, 1); /* (which frees a node left at refs 0) */
                        survivors++;
                }
        }
        CHECK_EQ(survivors, 0);
        CHECK_EQ(u->n_nodes, 0);
        CHECK_U64(u->root->refs, 1);
        CHECK_EQ(u->root->n_children, 0);
        return 0;
}

static int test_last_name_removed(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);

        Node *f = obtain(u, u->root, "f", 800, S_IFREG);
        CHECK(f);
        node_remove_alias(u, f, u->root, "f");
        /* still alive for the kernel (open file), but never found by number again */
        CHECK_EQ(f->n_aliases, 0);
        CHECK(!f->hashed);
        CHECK(!in_table(u, 800));
        CHECK_EQ(u->n_nodes, 0);
        CHECK_STREQ(path_of(u, f, MERGED), "<ENOENT>");
        CHECK_STREQ(path_of(u, f, 1), "<ENOENT>");
        CHECK_U64(u->root->refs, 1);

        /* the upper filesystem reuses the number for a new file: a new node */
        Node *g = obtain(u, u->root, "g", 800, S_IFREG);
        CHECK(g);
        CHECK(g != f);
        CHECK_STREQ(path_of(u, g, MERGED), "g");
        CHECK_U64(f->refs, 1);

        node_forget(u, f, 1); /* freed although not in the table */
        CHECK(in_table(u, 800));
        CHECK(node_get(u, 800) == g);
        node_unref(u, g, 1);
        node_forget(u, g, 1);
        CHECK(!in_table(u, 800));
        CHECK_U64(u->root->refs, 1);
        return 0;
}

static int test_ino_reused_other_type(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);

        Node *f = obtain(u, u->root, "f", 900, S_IFREG);
        CHECK(f);
        /* the same number, now a directory (the file is gone, the kernel still holds f) */
        Node *d = obtain(u, u->root, "d", 900, S_IFDIR);
        CHECK(d);
        CHECK(d != f);
        CHECK_EQ(d->type, S_IFDIR);
        CHECK(!f->hashed);
        CHECK(d->hashed);
        CHECK(node_get(u, 900) == d);
        node_unref(u, d, 1);
        CHECK_EQ(u->n_nodes, 1);

        node_forget(u, f, 1);
        CHECK(node_get(u, 900) == d);
        node_unref(u, d, 1);
        node_forget(u, d, 1);
        CHECK(!in_table(u, 900));
        CHECK_U64(u->root->refs, 1);
        return 0;
}


static int test_move_alias(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);
        Node *root = u->root;

        Node *a = obtain(u, root, "a", 1100, S_IFDIR);
        Node *b = obtain(u, root, "b", 1101, S_IFDIR);
        Node *f = obtain(u, a, "f", 1102, S_IFREG);
        CHECK(a && b && f);

        /* rename within a directory */
        CHECK_EQ(node_move_alias(u, f, a, "f", a, "g"), 0);
        CHECK_STREQ(path_of(u, f, MERGED), "a/g");
        CHECK_EQ(f->n_aliases, 1);
        CHECK_U64(a->refs, 2);

        /* to another directory: the child reference moves with it */
        CHECK_EQ(node_move_alias(u, f, a, "g", b, "h"), 0);
        CHECK_STREQ(path_of(u, f, MERGED), "b/h");
        CHECK_U64(a->refs, 1);
        CHECK_EQ(a->n_children, 0);
        CHECK_U64(b->refs, 2);
        CHECK_EQ(b->n_children, 1);

        /* over another name of the same inode: the old name just goes */
        CHECK_EQ(node_add_alias(u, f, a, "link"), 0);
        CHECK_EQ(f->n_aliases, 2);
        CHECK_EQ(node_move_alias(u, f, b, "h", a, "link"), 0);
        CHECK_EQ(f->n_aliases, 1);
        CHECK_STREQ(path_of(u, f, MERGED), "a/link");
        CHECK_U64(b->refs, 1);
        CHECK_EQ(b->n_children, 0);
        CHECK_U64(a->refs, 2);

        /* renaming a name we never saw: the new one is learnt */
        CHECK_EQ(node_move_alias(u, f, b, "never-seen", b, "learnt"), 0);
        CHECK_EQ(f->n_aliases, 2);
        CHECK_STREQ(f->aliases[1].name, "learnt");
        CHECK_U64(b->refs, 2);
        /* and renaming to itself changes nothing */
        CHECK_EQ(node_move_alias(u, f, a, "link", a, "link"), 0);
        CHECK_EQ(f->n_aliases, 2);
        CHECK_U64(a->refs, 2);

        node_forget(u, a, 1);
        node_forget(u, b, 1);
        node_forget(u, f, 1);
        CHECK_EQ(u->n_nodes, 0);
        CHECK_U64(root->refs, 1);
        return 0;
}

static int test_move_alias_frees_old_parent(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);

        Node *a = obtain(u, u->root, "a", 1200, S_IFDIR);
        Node *f = obtain(u, a, "f", 1201, S_IFREG);
        CHECK(a && f);
        node_forget(u, a, 1); /* only f pins a now */
        CHECK(in_table(u, 1200));
        CHECK_EQ(node_move_alias(u, f, a, "f", u->root, "f"), 0);
        CHECK(!in_table(u, 1200));
        CHECK_STREQ(path_of(u, f, MERGED), "f");
        CHECK_U64(u->root->refs, 2);
        node_forget(u, f, 1);
        CHECK_EQ(u->n_nodes, 0);
        CHECK_U64(u->root->refs, 1);
        return 0;
}

static int test_layer_path_redirect(void) {
        _cleanup_union_ Union *u = test_union_new();
        CHECK(u);
        Node *root = u->root, *a = NULL, *b, *c, *d = NULL, *e = NULL;
        u->n_layers = 3; /* upper, two lowers */

        for (int l = MERGED; l < 3; l++)
                CHECK_STREQ(path_of(u, root, l), "");

        /* a was renamed in the upper from x/y: below the upper its contents live at x/y */
        LookupResult r = {};
        r.st.st_ino = 1300;
        r.st.st_mode = S_IFDIR | 0755;
        r.redirect = strdup("x/y");
        r.redirect_layer = UPPER;
        CHECK(r.redirect);
        CHECK_EQ(node_obtain(u, root, "a", &r, true, &a), 0);
        CHECK(r.redirect == NULL); /* consumed */
        CHECK_STREQ(a->redirect, "x/y");
        CHECK_EQ(a->redirect_layer, UPPER);

        b = obtain(u, a, "b", 1301, S_IFDIR);
        c = obtain(u, b, "c", 1302, S_IFREG);
        CHECK(b && c);
        CHECK_STREQ(path_of(u, a, MERGED), "a");
        CHECK_STREQ(path_of(u, a, UPPER), "a");
        CHECK_STREQ(path_of(u, a, 1), "x/y");
        CHECK_STREQ(path_of(u, a, 2), "x/y");
        CHECK_STREQ(path_of(u, b, UPPER), "a/b");
        CHECK_STREQ(path_of(u, b, 1), "x/y/b");
        CHECK_STREQ(path_of(u, c, MERGED), "a/b/c");
        CHECK_STREQ(path_of(u, c, UPPER), "a/b/c");
        CHECK_STREQ(path_of(u, c, 1), "x/y/b/c");
        CHECK_STREQ(path_of(u, c, 2), "x/y/b/c");

        /* d carries a redirect in lower layer 1 (an old upper): it applies to layer 2 only, and there
         * the nearest redirect wins */
        CHECK_EQ(obtain_full(u, b, "d", 1303, S_IFDIR, true, "elsewhere", 1, &d), 0);
        CHECK_EQ(obtain_full(u, d, "e", 1304, S_IFREG, true, NULL, 0, &e), 0);
        CHECK_STREQ(path_of(u, e, MERGED), "a/b/d/e");
        CHECK_STREQ(path_of(u, e, UPPER), "a/b/d/e");
        CHECK_STREQ(path_of(u, e, 1), "x/y/b/d/e");
        CHECK_STREQ(path_of(u, e, 2), "elsewhere/e");
        CHECK_STREQ(path_of(u, d, 1), "x/y/b/d");
        CHECK_STREQ(path_of(u, d, 2), "elsewhere");

        /* a later lookup of an existing node does not replace its redirect: the node's view wins */
        Node *again = NULL;
        CHECK_EQ(obtain_full(u, root, "a", 1300, S_IFDIR, true, "other", 0, &again), 0);
        CHECK(again == a);
        CHECK_STREQ(a->redirect, "x/y");

        /* node_move_alias() only moves the name (giving b a redirect is rename's job in fuse_ops.c):
         * without one, the lower paths follow the merged path */
        CHECK_EQ(node_move_alias(u, b, a, "b", root, "moved"), 0);
        CHECK_STREQ(path_of(u, c, MERGED), "moved/c");
        CHECK_STREQ(path_of(u, c, 1), "moved/c");
        CHECK_STREQ(path_of(u, e, 1), "moved/d/e");
        CHECK_STREQ(path_of(u, e, 2), "elsewhere/e");

        node_forget(u, e, 1);
        node_forget(u, d, 1);
        node_forget(u, c, 1);
        node_forget(u, b, 1);
        node_forget(u, a, 2);
        CHECK_EQ(u->n_nodes, 0);
        CHECK_U64(root->refs, 1);
        return 0;
}

static int test_path_join(void) {
        char *p = NULL;
        CHECK_EQ(path_join("", "a", &p), 0);
        CHECK_STREQ(p, "a");
        free(p);
        CHECK_EQ(path_join("a/b", "c", &p), 0);
        CHECK_STREQ(p, "a/b/c");
        free(p);
        return 0;
}

static int test_table_growth(void) {
        _cleanup_union_ Union *u = test_union_new();
        enum { N = 5000 };
        static Node *nodes[N];
        char name[32];
        CHECK(u);

        for (unsigned i = 0; i < N; i++) {
                snprintf(name, sizeof name, "f%u", i);
                /* numbers that collide in the low bits too */
                nodes[i] = obtain(u, u->root, name, ((uint64_t) i << 32) | 7, S_IFREG);
                CHECK(nodes[i]);
        }
        CHECK_EQ(u->n_nodes, N);
        CHECK(u->n_table >= N);
        for (unsigned i = 0; i < N; i++) {
                Node *n = node_get(u, ((uint64_t) i << 32) | 7);
                CHECK(n == nodes[i]);
                node_unref(u, n, 1);
        }
        CHECK(!in_table(u, 7 | ((uint64_t) N << 32)));
        for (unsigned i = 0; i < N; i += 2)
                node_forget(u, nodes[i], 1);
        CHECK_EQ(u->n_nodes, N / 2);
        for (unsigned i = 1; i < N; i += 2)
                CHECK(in_table(u, ((uint64_t) i << 32) | 7));
        for (unsigned i = 1; i < N; i += 2)
                node_forget(u, nodes[i], 1);
        CHECK_EQ(u->n_nodes, 0);
        CHECK_U64(u->root->refs, 1);
        return 0;
}

/* Several threads looking the same names up and forgetting them: the counts must add up. */
typedef struct Worker {
        Union *u;
        Node *dir;
        unsigned id;
        int r;
} Worker;

static void *worker(void *arg) {
        Worker *w = arg;
        char name[16];
        for (unsigned i = 0; i < 20000; i++) {
                Node *n = NULL;
                snprintf(name, sizeof name, "n%u", i % 7);
                /* names n0..n6 are the same inodes for every thread */
                w->r = obtain_full(w->u, w->dir, name, 2000 + i % 7, S_IFREG, (i + w->id) % 2 == 0, NULL, 0, &n);
                if (w->r < 0)
                        return NULL;
                if ((i + w->id) % 2 == 0)
                        node_forget(w->u, n, 1);
                else
                        node_unref(w->u, n, 1);
        }
        return NULL;
}

static int test_threads(void) {
        _cleanup_union_ Union *u = test_union_new();
        pthread_t t[4];
        Worker w[4];
        CHECK(u);

        Node *dir = obtain(u, u->root, "dir", 1999, S_IFDIR);
        CHECK(dir);
        for (unsigned i = 0; i < ELEMENTSOF(t); i++) {
                w[i] = (Worker) { .u = u, .dir = dir, .id = i };
                CHECK_EQ(pthread_create(&t[i], NULL, worker, &w[i]), 0);
        }
        for (unsigned i = 0; i < ELEMENTSOF(t); i++) {
                CHECK_EQ(pthread_join(t[i], NULL), 0);
                CHECK_EQ(w[i].r, 0);
        }
        CHECK_EQ(u->n_nodes, 1);
        CHECK_U64(dir->refs, 1);
        CHECK_EQ(dir->n_children, 0);
        node_forget(u, dir, 1);
        CHECK_EQ(u->n_nodes, 0);
        CHECK_U64(u->root->refs, 1);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(obtain_twice),
                TAP_TEST(get_unref),
                TAP_TEST(forget_clamped),
                TAP_TEST(parent_pinned_by_children),
                TAP_TEST(deep_chain),
                TAP_TEST(hard_links),
                TAP_TEST(hard_links_many_parents),
                TAP_TEST(last_name_removed),
                TAP_TEST(ino_reused_other_type),
                TAP_TEST(move_alias),
                TAP_TEST(move_alias_frees_old_parent),
                TAP_TEST(layer_path_redirect),
                TAP_TEST(path_join),
                TAP_TEST(table_growth),
                TAP_TEST(threads),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
