/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The upper layer's disk quota: counters, checks, observations and the walk that counts a tree at
 * mount time. See quota.h for the model and docs/unionfs.md ("Disk quota") for what it guarantees.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "quota.h"

#define QUOTA_BLOCK 4096u

void quota_init(Quota *q, uint64_t max_bytes, uint64_t max_inodes, int notify_fd) {
        *q = (Quota) { .max_bytes = max_bytes, .max_inodes = max_inodes, .notify_fd = notify_fd };
        pthread_mutex_init(&q->lock, NULL);
}

void quota_done(Quota *q) {
        q->notify_fd = safe_close(q->notify_fd);
        pthread_mutex_destroy(&q->lock);
}

static uint64_t clamp0(int64_t v) {
        return v < 0 ? 0 : (uint64_t) v;
}

uint64_t quota_used_bytes(Quota *q) {
        return clamp0(__atomic_load_n(&q->used_bytes, __ATOMIC_RELAXED));
}

uint64_t quota_used_inodes(Quota *q) {
        return clamp0(__atomic_load_n(&q->used_inodes, __ATOMIC_RELAXED));
}

void quota_add(Quota *q, int64_t bytes, int64_t inodes) {
        if (bytes != 0)
                __atomic_add_fetch(&q->used_bytes, bytes, __ATOMIC_RELAXED);
        if (inodes != 0)
                __atomic_add_fetch(&q->used_inodes, inodes, __ATOMIC_RELAXED);
}

/* The first refusal of each kind goes to the notify fd: the runtime reports it as disk_limit_hit. */
static int refuse(Quota *q, QuotaHit what) {
        unsigned before = __atomic_fetch_or(&q->hit, (unsigned) what, __ATOMIC_ACQ_REL);
        if (!(before & what)) {
                const char *line = what == QUOTA_HIT_BYTES ? "bytes\n" : "inodes\n";
                log_debug("Disk quota reached (%s): %llu of %llu bytes, %llu of %llu inodes used.",
                          what == QUOTA_HIT_BYTES ? "bytes" : "inodes",
                          (unsigned long long) quota_used_bytes(q), (unsigned long long) q->max_bytes,
                          (unsigned long long) quota_used_inodes(q), (unsigned long long) q->max_inodes);
                if (q->notify_fd >= 0)
                        (void) !write(q->notify_fd, line, strlen(line));
        }
        return -ENOSPC;
}

int quota_check(Quota *q, uint64_t bytes, uint64_t inodes) {
        if (q->max_bytes > 0) {
                uint64_t used = quota_used_bytes(q);
                if (used >= q->max_bytes || bytes > q->max_bytes - used)
                        return refuse(q, QUOTA_HIT_BYTES);
        }
        if (q->max_inodes > 0 && inodes > 0) {
                uint64_t used = quota_used_inodes(q);
                if (used >= q->max_inodes || inodes > q->max_inodes - used)
                        return refuse(q, QUOTA_HIT_INODES);
        }
        return 0;
}

int quota_check_write(Quota *q, int fd, off_t off, size_t size, bool partial, size_t *ret_allowed) {
        uint64_t used, left;

        if (q->max_bytes == 0 || size == 0)
                goto all;
        used = quota_used_bytes(q);
        left = used >= q->max_bytes ? 0 : q->max_bytes - used;
        if (size <= left)
                goto all;
        /* Rewriting data that is allocated already allocates nothing: a full file system allows it. */
        off_t hole = lseek(fd, off, SEEK_HOLE);
        if (hole >= 0 && (uint64_t) hole >= (uint64_t) off + size)
                goto all;
        if (partial && left >= QUOTA_BLOCK) {
                if (ret_allowed)
                        *ret_allowed = (size_t) (left / QUOTA_BLOCK * QUOTA_BLOCK);
                return 0;
        }
        return refuse(q, QUOTA_HIT_BYTES);
all:
        if (ret_allowed)
                *ret_allowed = size;
        return 0;
}

static void observe_locked(Quota *q, int64_t *last, const struct stat *st) {
        int64_t now = (int64_t) st->st_blocks, before = *last < 0 ? 0 : *last;
        *last = now;
        if (now != before)
                quota_add(q, (now - before) * 512, 0);
}

void quota_observe_fd(Quota *q, int64_t *last, int fd) {
        struct stat st;

        if (!quota_enabled(q) || fd < 0)
                return;
        pthread_mutex_lock(&q->lock);
        if (fstat(fd, &st) == 0)
                observe_locked(q, last, &st);
        pthread_mutex_unlock(&q->lock);
}

void quota_observe_at(Quota *q, int64_t *last, int dir_fd, const char *name) {
        struct stat st;

        if (!quota_enabled(q) || dir_fd < 0)
                return;
        pthread_mutex_lock(&q->lock);
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) == 0)
                observe_locked(q, last, &st);
        pthread_mutex_unlock(&q->lock);
}

void quota_forget(Quota *q, int64_t *last) {
        if (!quota_enabled(q))
                return;
        pthread_mutex_lock(&q->lock);
        if (*last > 0)
                quota_add(q, -*last * 512, 0);
        *last = 0;
        pthread_mutex_unlock(&q->lock);
}

bool quota_nearly_full(Quota *q, uint64_t margin) {
        if (q->max_bytes == 0)
                return false;
        uint64_t used = quota_used_bytes(q);
        return used >= q->max_bytes || margin > q->max_bytes - used;
}

void quota_statvfs(Quota *q, struct statvfs *sv) {
        if (q->max_bytes > 0 && sv->f_frsize > 0) {
                uint64_t used = quota_used_bytes(q);
                fsblkcnt_t total = (fsblkcnt_t) (q->max_bytes / sv->f_frsize);
                fsblkcnt_t left = (fsblkcnt_t) (used >= q->max_bytes ? 0 : (q->max_bytes - used) / sv->f_frsize);
                sv->f_blocks = total;
                sv->f_bfree = MIN(sv->f_bfree, left);
                sv->f_bavail = MIN(sv->f_bavail, left);
        }
        if (q->max_inodes > 0) {
                uint64_t used = quota_used_inodes(q);
                fsfilcnt_t left = (fsfilcnt_t) (used >= q->max_inodes ? 0 : q->max_inodes - used);
                sv->f_files = (fsfilcnt_t) q->max_inodes;
                sv->f_ffree = MIN(sv->f_ffree, left);
                sv->f_favail = MIN(sv->f_favail, left);
        }
}

/* ------------------------------------------------------------------------------------------------
 * The walk at mount time
 */

/* (dev, ino) of multiply linked files already counted: open addressing, grown at half full. */
struct QuotaSeen {
        struct { dev_t dev; ino_t ino; } *slots;
        size_t n_slots, n_used;
};

QuotaSeen *quota_seen_free(QuotaSeen *s) {
        if (s) {
                free(s->slots);
                free(s);
        }
        return NULL;
}

static size_t seen_hash(dev_t dev, ino_t ino) {
        uint64_t x = (uint64_t) ino * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t) dev;
        x ^= x >> 31;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        return (size_t) (x ^ (x >> 29));
}

/* 1 if (DEV, INO) was new (and is now recorded), 0 if seen before. */
static int seen_add(QuotaSeen *s, dev_t dev, ino_t ino) {
        if (s->n_used * 2 >= s->n_slots) {
                size_t nn = s->n_slots ? s->n_slots * 2 : 1024;
                QuotaSeen bigger = { .slots = calloc(nn, sizeof *s->slots), .n_slots = nn };
                if (!bigger.slots)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_slots; i++)
                        if (s->slots[i].ino != 0) {
                                size_t k = seen_hash(s->slots[i].dev, s->slots[i].ino) & (nn - 1);
                                while (bigger.slots[k].ino != 0)
                                        k = (k + 1) & (nn - 1);
                                bigger.slots[k] = s->slots[i];
                        }
                free(s->slots);
                s->slots = bigger.slots;
                s->n_slots = nn;
        }
        size_t k = seen_hash(dev, ino) & (s->n_slots - 1);
        for (; s->slots[k].ino != 0; k = (k + 1) & (s->n_slots - 1))
                if (s->slots[k].dev == dev && s->slots[k].ino == ino)
                        return 0;
        s->slots[k].dev = dev;
        s->slots[k].ino = ino == 0 ? (ino_t) -1 : ino; /* 0 marks a free slot */
        s->n_used++;
        return 1;
}

/* One directory on the way down: the names still to visit (read whole, so that no fd is kept open
 * per level) and its identity, to check the way back up. */
typedef struct ScanLevel {
        char **names;
        size_t n, next;
        dev_t dev;
        ino_t ino;
} ScanLevel;

static void scan_level_done(ScanLevel *l) {
        for (size_t i = l->next; i < l->n; i++)
                free(l->names[i]);
        free(l->names);
        *l = (ScanLevel) {};
}

static int read_names(int dir_fd, ScanLevel *ret) {
        _cleanup_closedir_ DIR *d = NULL;
        ScanLevel l = {};
        struct dirent *de;
        size_t cap = 0;
        int fd;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        for (errno = 0; (de = readdir(d)); errno = 0) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (l.n == cap) {
                        size_t nc = cap ? cap * 2 : 16;
                        char **nn = realloc(l.names, nc * sizeof *nn);
                        if (!nn)
                                goto oom;
                        l.names = nn;
                        cap = nc;
                }
                l.names[l.n] = strdup(de->d_name);
                if (!l.names[l.n])
                        goto oom;
                l.n++;
        }
        if (errno != 0) {
                int r = -errno;
                scan_level_done(&l);
                return r;
        }
        *ret = l;
        return 0;
oom:
        scan_level_done(&l);
        return -ENOMEM;
}

int quota_scan_tree(Quota *q, int dir_fd, QuotaSeen **seen) {
        _cleanup_free_ ScanLevel *stack = NULL;
        _cleanup_close_ int cur = -EBADF;
        size_t depth = 0, cap = 0;
        struct stat st;
        int64_t bytes = 0, inodes = 0;
        int r = 0, count = 0;

        if (!*seen) {
                *seen = calloc(1, sizeof **seen);
                if (!*seen)
                        return -ENOMEM;
        }
        cur = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        if (fstat(cur, &st) < 0)
                return -errno;
        dev_t fs_dev = st.st_dev;

        for (;;) {
                if (depth == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        ScanLevel *ns = realloc(stack, nc * sizeof *ns);
                        if (!ns) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        stack = ns;
                        cap = nc;
                }
                stack[depth] = (ScanLevel) {};
                r = read_names(cur, &stack[depth]);
                if (r < 0)
                        goto finish;
                stack[depth].dev = st.st_dev;
                stack[depth].ino = st.st_ino;
                depth++;

                /* Visit names until one is a directory to descend into, climbing back up as levels end. */
                for (;;) {
                        ScanLevel *l = &stack[depth - 1];
                        if (l->next == l->n) {
                                scan_level_done(l);
                                if (--depth == 0)
                                        goto finish;
                                _cleanup_close_ int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                                O_CLOEXEC);
                                struct stat ust;
                                if (up < 0 || fstat(up, &ust) < 0) {
                                        r = -errno;
                                        goto finish;
                                }
                                if (ust.st_dev != stack[depth - 1].dev || ust.st_ino != stack[depth - 1].ino) {
                                        r = -ESTALE; /* the tree changed under us */
                                        goto finish;
                                }
                                safe_close(cur);
                                cur = TAKE_FD(up);
                                continue;
                        }
                        _cleanup_free_ char *name = l->names[l->next];
                        l->names[l->next++] = NULL;
                        if (fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                if (errno == ENOENT)
                                        continue;
                                r = -errno;
                                goto finish;
                        }
                        if (st.st_dev != fs_dev)
                                continue; /* a mount point inside: not ours to count */
                        count++;
                        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                                r = seen_add(*seen, st.st_dev, st.st_ino);
                                if (r < 0)
                                        goto finish;
                                if (r == 0)
                                        continue; /* another name of an inode counted already */
                        }
                        inodes++;
                        bytes += (int64_t) st.st_blocks * 512;
                        if (!S_ISDIR(st.st_mode))
                                continue;
                        int fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        struct stat dst;
                        if (fd < 0 || fstat(fd, &dst) < 0 || dst.st_dev != st.st_dev || dst.st_ino != st.st_ino) {
                                r = fd < 0 ? -errno : -ESTALE;
                                safe_close(fd);
                                goto finish;
                        }
                        safe_close(cur);
                        cur = fd;
                        break; /* read its names at the top of the outer loop */
                }
        }
finish:
        while (depth > 0)
                scan_level_done(&stack[--depth]);
        if (r < 0)
                return r;
        quota_add(q, bytes, inodes);
        return count;
}
