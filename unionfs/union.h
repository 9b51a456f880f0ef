/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The union's state, shared by the server's modules (not an exported API).
 *
 * Layers are held as O_PATH directory fds; objects inside them are only ever reached by relative paths
 * resolved beneath those fds (layer_open*), never by host paths and never through a symlink.
 * A Node is one inode of the merged view, identified by the inode number we show (st_ino), so hard
 * links share one Node (and one kernel page cache). It remembers the names it is known by (aliases)
 * and which layer holds its topmost real object; paths are rebuilt from the aliases for each operation.
 *
 * Locks, always taken in this order:
 *   ns_lock  (rwlock)  the name tree: aliases, redirects, dir merge ranges. Read-held by every
 *                      operation that resolves paths, write-held by rename/unlink/rmdir/link so that a
 *                      path computed for a node cannot change under an operation.
 *   change_lock (rwlock) read-held by data writes (write, fallocate), which do not take ns_lock;
 *                      write-held together with ns_lock by a snapshot, so that it sees the upper
 *                      between two changes (every other change runs under ns_lock).
 *                      A break (cow_unshare: an upper file shared with a snapshot replaced by a copy of
 *                      itself) copies under ns_lock read-held and renames the copy into place with it
 *                      write-held: no lookup sees the name between the two inodes.
 *   cow_lock (mutex)   serializes copy-ups; Node.layer only changes under it (and is read atomically).
 *   table_lock (mutex) the node hash table and reference counts.
 *   InoMap.lock        the inode number maps.
 *   InoCount.lock      the snapshot's tables (writers, shared); nothing is taken while one is held.
 *   Quota.lock         quota observations (an fstat and a Node's qblocks); nothing is taken under it.
 */
#pragma once

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "copyup.h"
#include "idmap.h"
#include "options.h"
#include "quota.h"
#include "rootattr.h"

#define UPPER 0 /* index of the upper layer in Union.layers when there is one */
/* Directories keep their upper copy open (O_PATH) while the kernel knows them, up to this many; past it
 * they are opened per operation. Well below the usual 20,000-fd limit, with room for open files. */
#define UNION_MAX_CACHED_FDS 4096
/* Objects whose last name is gone while the kernel still knows them (an open file, a cwd, an O_PATH
 * fd of a process) keep an O_PATH fd of their object, so fstat, fchmod, f*xattr... still reach it, up
 * to this many at once; past it such an object answers ENOENT as when it had none. */
#define UNION_MAX_ORPHAN_FDS 4096

typedef struct Layer {
        int fd;           /* O_PATH|O_DIRECTORY on the layer's root */
        dev_t dev;
        char *path;       /* for messages only */
} Layer;

typedef struct InoEntry InoEntry;
typedef struct InoMap {
        pthread_mutex_t lock;
        InoEntry **buckets;
        size_t n_buckets, n_entries;
} InoMap;

/* (dev, ino) -> count, for the snapshot's tables (snapshot.c). */
typedef struct InoCountEntry InoCountEntry;
typedef struct InoCount {
        pthread_mutex_t lock;
        InoCountEntry **buckets;
        size_t n_buckets;
        size_t n_entries;     /* also read without the lock (atomically): 0 is the fast path */
} InoCount;

typedef struct Node Node;
typedef struct LookupResult LookupResult;

typedef struct Alias {
        Node *parent;
        char *name;
} Alias;

struct Node {
        uint64_t ino;         /* shown st_ino and the table key; fixed */
        mode_t type;          /* S_IFMT bits; fixed */
        uint64_t refs;        /* kernel lookups + children + temporary refs (table_lock) */
        uint64_t nlookup;     /* kernel lookups only (table_lock) */
        unsigned n_children;  /* aliases of other nodes naming this one as parent (table_lock) */
        int layer;            /* topmost real object: index in Union.layers (atomic, cow_lock) */
        int last_layer;       /* dirs: lowest layer merged into this directory (ns_lock) */
        bool merged;          /* dirs: more than one layer contributes (ns_lock) */
        bool indexed;         /* lower hard link whose copy lives in the index (cow_lock) */
        bool hashed;          /* present in the table; false once its last name is gone (table_lock) */
        bool no_xattrs;       /* created through us without xattrs, none set since (atomic) */
        unsigned breaks;      /* times its upper file was replaced by cow_unshare() (atomic) */
        int upper_fd;         /* dirs: cached O_PATH fd of the upper copy, or -1 (set once, atomic) */
        int orphan_fd;        /* O_PATH fd of the object once its last name is gone, or -1 (ns_lock write
                               * to set; replaced under cow_lock by the anonymous copy-up of a lower one) */
        bool metacopy;        /* regular files: the upper copy has our metadata only, the data is still
                               * DATA_PATH in layer DATA_LAYER (atomic: cleared by the data copy-up) */
        int data_layer;
        char *data_path;      /* set once, before metacopy is set; kept until the node is freed */
        dev_t lower_dev;      /* regular files from a lower: identity of the lower object, for */
        ino_t lower_ino;      /*   the hard link index key */
        char *redirect;       /* dirs: path of this dir in the layers below redirect_layer (ns_lock) */
        int redirect_layer;   /* the layer whose copy of this dir carries the redirect */
        int64_t qblocks;      /* st_blocks of its object on the upper file system as last counted by the
                               * quota, -1 while it has none (Quota.lock) */
        bool qgone;           /* its object left the upper with its last name but is still open: the
                               * last release gives back what was written to it since (atomic) */
        bool qrefused;        /* a write from the page cache was refused at the quota (atomic) */
        Alias *aliases;       /* names; [0] is used to build paths (ns_lock) */
        size_t n_aliases;
        Node *hash_next;
        Node *gone_prev, *gone_next; /* in Union.gone while out of the table but still held (table_lock) */
};

typedef struct Union {
        Layer layers[UNION_MAX_LOWER + 1];
        size_t n_layers;
        bool has_upper;
        bool readonly;
        int work_fd;          /* workdir/work: temporary objects, O_PATH */
        int index_fd;         /* workdir/index: copies of lower hard links, O_PATH */
        int shared_fd;        /* workdir/sandbox-shared: one link to each inode shared with a snapshot,
                               * so that a remount still knows them; O_PATH, -EBADF without an upper */
        const char *xattr_prefix;      /* "trusted.overlay." or "user.overlay." */
        char xattr_opaque[48], xattr_redirect[48], xattr_origin[48], xattr_metacopy[48];
        IdMap uidmap, gidmap;
        bool redirect_dir, sync_copyup;
        bool metacopy;        /* -o metacopy=on: metadata changes copy up no data; metacopy files are followed */
        bool static_nlink;    /* fuse-overlayfs options, see options.h */
        bool noxattrs;
        int64_t squash_uid, squash_gid; /* shown owner of everything, or -1 */
        const char *override_xattr;     /* xattr_permissions=1|2: fuse-overlayfs's "uid:gid:mode" xattr */
        bool snapshot;        /* UNIONFS_IOC_SNAPSHOT allowed (-o snapshot=1, the default) */
        double timeout;
        void (*may_block)(void);  /* called before slow work: lets the request loop go on elsewhere */

        pthread_rwlock_t ns_lock;
        pthread_rwlock_t change_lock;
        pthread_mutex_t cow_lock;
        pthread_mutex_t table_lock;
        Node **table;
        size_t n_table, n_nodes;
        Node *root;
        Node *gone;           /* nodes taken out of the table (no name left, number reused) that the
                               * kernel still holds: freed at the end if it never forgets them */

        pthread_mutex_t fs_lock;
        dev_t fs_devs[4096];  /* filesystem index (high bits of inode numbers) by device */
        unsigned n_fs;
        unsigned n_cached_fds; /* upper directory fds cached on nodes (atomic), at most UNION_MAX_CACHED_FDS */
        unsigned n_orphan_fds; /* Node.orphan_fd in use (atomic), at most UNION_MAX_ORPHAN_FDS */
        InoMap copied_up;     /* (upper dev, ino) of copied-up objects -> their shown inode number */
        InoMap big_inos;      /* (dev, ino) whose ino does not fit the low bits -> synthetic number */
        InoCount writers;     /* upper (dev, ino) -> open handles of ours that may write it */
        InoCount shared;      /* upper (dev, ino) hard-linked into a snapshot and not broken since */
        InoCount retired;     /* upper (dev, ino) left to a snapshot by a break: the node kept its number,
                               * so a new object reusing the inode gets a synthetic one */
        uint64_t next_big_ino;

        /* The root directory's mode and owner as recorded in the top layer's root
         * ("<ns>overlay.sandbox.rootattr", common/rootattr.h): a private root (0700 root:root on disk)
         * shows these instead, and chmod/chown of the root change the record. root_attr_lock guards
         * both fields and the record on disk; nothing is taken while it is held. */
        pthread_mutex_t root_attr_lock;
        bool has_root_attr;
        RootAttr root_attr;
        Quota quota;          /* the upper's disk quota (quota.h); disabled without quota_* options */
} Union;

/* --- layer.c: opening objects inside layers, inode numbers --- */
int union_init(Union *u, const UnionOptions *o);
void union_done(Union *u);
int layer_open(const Union *u, int layer, const char *path, int flags);
int layer_open_parent(const Union *u, int layer, const char *path, const char **ret_name);
int layer_lstat(const Union *u, int layer, const char *path, struct stat *ret);
uint64_t union_ino(Union *u, dev_t dev, ino_t ino);
void union_note_copyup(Union *u, dev_t dev, ino_t ino, uint64_t shown_ino);
/* An upper object (ST, as on disk) is being deleted: its inode number may be reused by the upper
 * filesystem, so it must not keep the number of the lower object it was copied from. */
void union_forget_upper(Union *u, const struct stat *st);
/* Drop whatever number (dev, ino) was given, unconditionally. */
void union_forget_ino(Union *u, dev_t dev, ino_t ino);
/* The root's record: ST (the top layer's root as on disk) gets the recorded mode bits and owner. */
void union_root_attr_apply(Union *u, struct stat *st);
/* chmod/chown of the root (NULL: unchanged): with a record, change the record (on disk first) and
 * return 1; without one return 0 and let the caller change the directory. */
int union_root_attr_update(Union *u, const mode_t *mode, const uid_t *uid, const gid_t *gid);

/* --- snapshot.c: upper files shared with snapshots (hard links), see snapshot.h --- */
int inocount_init(InoCount *c);
void inocount_done(InoCount *c);
/* Add DELTA to the count of (dev, ino); an entry that reaches 0 is dropped. -ENOMEM only when adding. */
int inocount_add(InoCount *c, dev_t dev, ino_t ino, int delta);
bool inocount_has(InoCount *c, dev_t dev, ino_t ino);
/* Drop (dev, ino); whether it was there. */
bool inocount_remove(InoCount *c, dev_t dev, ino_t ino);
static inline bool inocount_empty(InoCount *c) {
        return __atomic_load_n(&c->n_entries, __ATOMIC_ACQUIRE) == 0;
}
/* An upper file (ST, as on disk) shared with a snapshot has one name in the upper, one in the snapshot
 * and one in the shared directory: show the one link the mount knows of. */
void snapshot_fix_nlink(Union *u, struct stat *st);
/* (dev, ino) is no longer shared (broken, or its upper name is gone): forget it, here and on disk.
 * Whether it was shared. */
bool snapshot_unshared(Union *u, dev_t dev, ino_t ino);
/* At mount time: the shared inodes recorded in u->shared_fd; entries only the directory still holds
 * (the snapshot and the upper name both deleted) are removed. */
int snapshot_load_shared(Union *u);

/* --- node.c: the node table and paths --- */
int node_table_init(Union *u);
void node_table_done(Union *u);
Node *node_get(Union *u, uint64_t ino);                 /* +1 temporary ref, or NULL */
void node_unref(Union *u, Node *n, uint64_t count);     /* drops temporary refs or lookups */
void node_forget(Union *u, Node *n, uint64_t nlookup);
int node_add_alias(Union *u, Node *n, Node *parent, const char *name);
void node_remove_alias(Union *u, Node *n, Node *parent, const char *name);
int node_move_alias(Union *u, Node *n, Node *oldparent, const char *oldname, Node *newparent, const char *newname);
/* Find or create the node for a looked-up name, add the name to it, and take one reference
 * (a kernel lookup if KERNEL, else a temporary one). Consumes r->redirect. */
int node_obtain(Union *u, Node *parent, const char *name, struct LookupResult *r, bool kernel, Node **ret);
int node_path(const Union *u, const Node *n, char **ret);        /* path in the upper (merged path) */
/* path of N inside LAYER: the merged path, except below a directory renamed by a redirect */
int node_layer_path(const Union *u, const Node *n, int layer, char **ret);
int path_join(const char *dir, const char *name, char **ret);
/* N has no name any more (unlinked or replaced while the kernel still holds it). ns_lock held. */
static inline bool node_unlinked(const Union *u, const Node *n) {
        return n != u->root && n->n_aliases == 0;
}
/* Keep FD (an O_PATH fd of N's object, taken before its last name went) as N's orphan fd; consumes
 * it. Past UNION_MAX_ORPHAN_FDS it is closed. ns_lock held for writing. */
void node_keep_orphan(Union *u, Node *n, int fd);
static inline bool node_is_metacopy(const Node *n) {
        return __atomic_load_n(&n->metacopy, __ATOMIC_ACQUIRE);
}
static inline int node_layer(const Node *n) {
        return __atomic_load_n(&n->layer, __ATOMIC_ACQUIRE);
}
static inline void node_set_layer(Node *n, int layer) {
        __atomic_store_n(&n->layer, layer, __ATOMIC_RELEASE);
}

/* --- lookup.c: finding a name across the layers --- */
struct LookupResult {
        struct stat st;        /* of the topmost real object (st_ino already the shown one) */
        int layer;             /* where the topmost object is */
        int last_layer;        /* dirs: lowest merged layer */
        bool merged;
        bool indexed;
        bool lower_exists;     /* some lower layer has this name (a whiteout is needed to delete it) */
        dev_t lower_dev;
        ino_t lower_ino;
        char *redirect;        /* dirs: path in the layers below redirect_layer, if redirected */
        int redirect_layer;
        bool metacopy;         /* a metacopy file (-o metacopy=on): its data is DATA_PATH in DATA_LAYER */
        int data_layer;
        char *data_path;
};
void lookup_result_done(LookupResult *r);
int union_lookup(Union *u, Node *parent, const char *name, LookupResult *ret);
int union_name_in_lower(Union *u, Node *parent, const char *name, bool *ret);
int union_node_stat(Union *u, Node *n, struct stat *ret);
/* xattr_permissions=: the owner and mode FD (any fd of the object) carries in the override xattr, if
 * any, replace those of ST. */
void union_override_stat(Union *u, int fd, struct stat *st);
/* Record ST's owner and mode in the override xattr of FD (xattr_permissions=1|2). */
int union_write_override(Union *u, int fd, const struct stat *st);
/* Link count of an upper file that shares its inode with the hard link index (see lookup.c). */
void union_fix_nlink(Union *u, int fd, struct stat *st);
int union_node_open(Union *u, Node *n, int flags, int *ret_layer);
/* A directory fd to work beneath: either borrowed from a node's cache (valid while the node is held)
 * or opened for this use only (then also in .owned, which dir_ref_done() closes). */
typedef struct DirRef {
        int fd;
        int owned;
} DirRef;
#define DIR_REF_NULL ((DirRef) { .fd = -EBADF, .owned = -EBADF })
static inline void dir_ref_done(DirRef *d) {
        if (d->owned >= 0)
                (void) close(d->owned);
        *d = DIR_REF_NULL;
}
/* The upper copy of directory DIR (already in the upper), as an O_PATH fd. */
int union_upper_dir(Union *u, Node *dir, DirRef *ret);
/* The upper directory that holds N's first name, which is copied to NAME. */
int union_upper_parent(Union *u, Node *n, char name[static NAME_MAX + 1], DirRef *ret);
/* The key of a lower hard link in the index directory: "<dev>-<ino>" in hex (also the origin xattr). */
void index_key(char buf[static 64], dev_t dev, ino_t ino);

/* --- cow.c: copy-up --- */
typedef enum CowFlags {
        COW_META = 1 << 0,  /* for a change of metadata only: with -o metacopy=on a lower regular file is
                             * copied without its data (and a metacopy file is left as it is) */
        COW_TRUNC = 1 << 1, /* the data is about to be truncated to 0: copy none */
} CowFlags;
/* Bring N into the upper, parents first; without COW_META also its data (completing a metacopy file).
 * A node without a name (unlinked while open) is copied to an anonymous file that only its orphan fd
 * holds. */
int cow_node_flags(Union *u, Node *n, unsigned flags);
static inline int cow_node(Union *u, Node *n) {
        return cow_node_flags(u, n, 0);
}
/* The upper file of metacopy node N gets the redirect to its data (before a rename), so that the data
 * is found from any name: 0, or -EXDEV when the path is too long for a redirect. */
int cow_metacopy_redirect(Union *u, Node *n, int upper_dirfd, const char *name);
/* After cow_node(): make sure NAME in the upper directory holds N. Copy-up is per name for hard
 * links: a name whose sibling was copied up is linked to the index copy here. */
int cow_name(Union *u, Node *n, int upper_dirfd, const char *name);
int cow_make_whiteout(Union *u, int upper_dirfd, const char *name);
int cow_set_opaque(Union *u, int dirfd, const char *name);
/* Whether N's upper file is shared with a snapshot (see snapshot.h); ns_lock held (read is enough: a
 * snapshot, the only thing that shares inodes, takes it for writing). Errors count as not shared. */
bool cow_is_shared(Union *u, Node *n);
/* Break N's sharing with a snapshot before it is changed: the upper name gets a complete copy of the
 * file (owner, mode, xattrs, times, data), renamed over it; the snapshot keeps the old inode. N keeps
 * its inode number. Nothing to do (0) when not shared. ns_lock must be held for writing. */
int cow_unshare(Union *u, Node *n);
/* The same in two steps, so that the copy, which may be long, holds ns_lock only for reading (other
 * operations go on; only name changes and snapshots wait): prepare copies the shared file into the
 * work dir (1; 0 when not shared), commit renames it over N's upper name under ns_lock write-held if
 * that is still the inode that was copied, and otherwise throws the copy away. */
typedef struct CowBreak {
        struct stat st;                 /* the shared inode that was copied */
        char tmp[COPYUP_TEMP_NAME_MAX]; /* its copy in the work dir; "" when none */
} CowBreak;
int cow_unshare_prepare(Union *u, Node *n, CowBreak *ret);
int cow_unshare_commit(Union *u, Node *n, CowBreak *c);
void cow_unshare_discard(Union *u, CowBreak *c);

/* --- dirent.c: merged directory listings --- */
typedef struct DirEntry {
        char *name;
        uint64_t ino;
        unsigned char type;    /* DT_* */
} DirEntry;
typedef struct DirList {
        DirEntry *entries;
        size_t n_entries;
} DirList;
void dir_list_done(DirList *l);
int dir_list_read(Union *u, Node *dir, bool include_dots, DirList *ret);
int dir_is_empty(Union *u, Node *dir, bool *ret_empty, bool *ret_upper_has_whiteouts);
/* Remove the whiteouts in an upper directory that holds nothing else (-ENOTEMPTY otherwise): how many. */
int dir_remove_whiteouts(Union *u, int upper_dirfd);
