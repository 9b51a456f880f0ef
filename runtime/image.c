/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "host" image: the lowest layer of a sandbox started without --image. Its /bin, /lib, /lib64 and
 * /sbin point into /usr (the host's, which the child binds read-only over it); its /etc holds what we
 * generate (passwd, group, hosts, hostname, resolv.conf, nsswitch.conf, mtab) and copies of the host
 * /etc entries that the host's /usr needs, from the allow-list etc_allow[] (the reasons are in
 * docs/security.md). The copy never follows a host symlink (a symlink is copied as a symlink), and
 * leaves out what others may not read on the host (files without o+r, directories without o+rx, with
 * everything below them), set-id bits, owners (everything is root's in the image) and anything that
 * is not a file, directory or symlink. It is bounded in depth, entries and bytes.
 *
 * The image is built once and shared, read-only, by every sandbox: STATE/images/host-KEY, where KEY
 * hashes this code's version, the boot and the metadata (inode, type, mode, size, times) of every
 * host entry the copy looks at. A start needs the key of the host's /etc as it is now, so that a
 * package install or an alternative switch gives a new image at the next start, never a stale one. The
 * key is computed by walking those entries with fstatat() only (no data is read): ~900 entries, ~0.6 ms
 * of CPU here. A long-lived process (sandboxd) does not walk at every start: the walk also puts an
 * inotify watch on every directory it reads, and the key is reused while no event says that something
 * it hashed may have changed and the walk is younger than KEY_CACHE_MAX_AGE_USEC (a mount over an /etc
 * entry changes it without an event). The first walk of a process sets no watches (a one-shot
 * sandbox-run holds no inotify instance); without inotify every start walks, as before. A copy that
 * raced with a change is named by what it saw before and is replaced at the next start. The boot is in
 * the key because the image is not synced to disk: an image from before a crash is never used. Every
 * user of an image holds a shared flock() on its directory; a build removes the other images it can lock
 * exclusively (nobody uses them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs.h"
#include "macro.h"
#include "rmtree.h"
#include "runtime.h"
#include "time-util.h"

/* Bump when what image_build() writes changes: it is part of every image's key. */
#define HOST_IMAGE_VERSION "2"
#define HOST_IMAGE_PREFIX "host-"
#define BUILD_PREFIX ".build-"

/* Bounds of the copy of the host's /etc (this host's allow-listed entries: ~900 entries, ~1.2 MB). */
#define ETC_MAX_DEPTH 16U
#define ETC_MAX_ENTRIES 100000U
#define ETC_MAX_BYTES (UINT64_C(256) << 20)
#define COPY_BUF_SIZE (64U * 1024U)

/* The key cache (see the top): what a walk watches, and for how long its key is trusted. */
#define KEY_CACHE_EVENTS                                                                                   \
        (IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVED_FROM | \
         IN_MOVED_TO | IN_MOVE_SELF | IN_UNMOUNT)
#define KEY_CACHE_MAX_AGE_USEC (10 * USEC_PER_SEC)  /* what no event shows (a mount) is seen this late */
#define KEY_CACHE_RETRY_USEC (60 * USEC_PER_SEC)    /* after inotify failed: no watches for this long */
#define KEY_CACHE_MAX_WATCHES 512U                  /* directories watched (this host's allow-list: 24) */

/* Host /etc entries copied into the host image: only what programs of the host's /usr read there
 * (see docs/security.md, "The host image", for each one's reason). A name, or a prefix and '*'. Never add a
 * name image_build() generates, nor anything that holds secrets or host identity (shadow, gshadow,
 * ssh/, machine-id, sudoers, security/, ...). */
static const char *const etc_allow[] = {
        "alternatives",                 /* awk, cc, editor, java...: /usr/bin links through it */
        "ca-certificates",              /* update-ca-certificates' hooks and configuration */
        "ca-certificates.conf",
        "debian_version",
        "fonts",                        /* fontconfig's configuration */
        "gai.conf",                     /* getaddrinfo() address sorting */
        "groff",                        /* /usr/share/groff/site-tmac links here */
        "host.conf",                    /* the resolver's configuration */
        "java-*",                       /* the JDK's conf/ and jvm.cfg link here */
        "ld.so.cache",                  /* the dynamic loader's cache and configuration */
        "ld.so.conf",
        "ld.so.conf.d",
        "locale.alias",                 /* /usr/share/locale/locale.alias links here */
        "localtime",                    /* the host's time zone (a symlink into /usr/share/zoneinfo) */
        "lsb-release",
        "maven",                        /* /usr/share/maven/conf links here */
        "mime.types",                   /* MIME types (Python's mimetypes, ...) */
        "networks",                     /* the "files" databases nsswitch.conf names */
        "os-release",                   /* what distribution /usr is (a symlink into /usr/lib) */
        "perl",                         /* the first directory of Debian perl's @INC */
        "protocols",
        "python3*",                     /* Debian's Python links sitecustomize.py here */
        "rpc",
        "services",
        "ssl",                          /* OpenSSL's CA store and openssl.cnf (/usr/lib/ssl links here) */
        "timezone",
};

static bool etc_allowed(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(etc_allow); i++) {
                const char *p = etc_allow[i];
                size_t l = strlen(p);
                if (p[l - 1] == '*' ? strncmp(name, p, l - 1) == 0 : streq(name, p))
                        return true;
        }
        return false;
}

__attribute__((format(printf, 4, 5)))
static int fail(char *why, size_t size, int r, const char *fmt, ...) {
        va_list ap;
        if (why && size > 0 && !why[0]) {
                va_start(ap, fmt);
                vsnprintf(why, size, fmt, ap);
                va_end(ap);
        }
        return r;
}

static int write_file(int dirfd, const char *name, const char *content, mode_t mode) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        size_t n = strlen(content);

        if (fd < 0)
                return -errno;
        if (write(fd, content, n) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        if (fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

static int write_hosts(int etc, const char *hostname) {
        char hosts[256], hn[128];
        int r;

        snprintf(hosts, sizeof hosts,
                 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", hostname);
        snprintf(hn, sizeof hn, "%s\n", hostname);
        if ((r = write_file(etc, "hosts", hosts, 0644)) < 0 || (r = write_file(etc, "hostname", hn, 0644)) < 0)
                return r;
        return 0;
}

/* ---- the copy of the host's /etc, and its key ---- */

/* What a walk for the key cache watches: every directory it reads, from before it reads it. */
typedef struct EtcWatch {
        int fd;                         /* the inotify instance (not ours); -EBADF: watching stopped */
        int etc_wd;                     /* /etc's own watch */
        unsigned n;                     /* watches added */
        int error;                      /* why watching stopped: inotify's -errno, or -E2BIG (the bound) */
        bool changed;                   /* a directory changed between its fstatat() and its watch */
} EtcWatch;

typedef struct EtcWalk {
        XXH3_state_t *hash;
        EtcWatch *watch;                /* NULL: no watches (a build's copy, or the cache is off) */
        uint64_t entries, bytes;
        char *buf;                      /* COPY_BUF_SIZE: copying; NULL: only hashing */
        char path[PATH_MAX];            /* relative to /etc, for the key and messages */
        char *why;
        size_t why_size;
} EtcWalk;

/* What the key sees of an entry: enough that any change to it (a new inode by rename, a write, a
 * chmod) changes the key. */
static void hash_entry(EtcWalk *w, const struct stat *st) {
        const uint64_t v[] = {
                st->st_mode, st->st_ino, st->st_dev, (uint64_t) st->st_size,
                (uint64_t) st->st_mtim.tv_sec, (uint64_t) st->st_mtim.tv_nsec,
                (uint64_t) st->st_ctim.tv_sec, (uint64_t) st->st_ctim.tv_nsec,
        };
        (void) XXH3_64bits_update(w->hash, w->path, strlen(w->path) + 1);
        (void) XXH3_64bits_update(w->hash, v, sizeof v);
}

/* The state of the key cache, this process's. The lock is taken in host_key() and the test hooks only,
 * for the lookup or walk of a key, never while an image is built; the caller may hold its own lock
 * around image_host_acquire() (sandbox.c's image_lock), which comes first. */
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
        pid_t pid;                      /* whose state this is: a forked child starts afresh */
        bool armed;                     /* a walk happened: from the next one on, walks set watches */
        int inotify_fd;                 /* >= 0: KEY is valid while no event on it says otherwise */
        int etc_wd;
        dev_t etc_dev;                  /* the /etc it is the key of */
        ino_t etc_ino;
        uint64_t key;
        uint64_t walked_usec;           /* when the walk that gave KEY began */
        uint64_t retry_usec;            /* after inotify failed: no watches before this */
        uint64_t max_age_usec;
        unsigned walks;                 /* for the tests: walks made to compute a key */
        int fault_init, fault_watch;    /* for the tests: make inotify fail with this -errno */
} key_cache = {
        .inotify_fd = -EBADF,
        .etc_wd = -1,
        .max_age_usec = KEY_CACHE_MAX_AGE_USEC,
};

/* Watch the directory FD (held by the walk, not read yet) for changes of what the key hashes. By the
 * fd's /proc/self/fd link, which leads to exactly the directory the walk holds (no name is resolved
 * again, so nothing can be swapped in); IN_DONT_FOLLOW cannot go with it (it would name the link
 * itself). A failure stops the watching, not the walk: its key is then not cached. */
static int watch_dir(EtcWatch *wt, int fd) {
        char path[64];
        int wd;

        if (wt->fd < 0)
                return -EBADF;
        if (wt->n >= KEY_CACHE_MAX_WATCHES) {
                wt->error = -E2BIG;
                wt->fd = -EBADF;
                return wt->error;
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (key_cache.fault_watch < 0) {
                wd = -1;
                errno = -key_cache.fault_watch;
        } else
                wd = inotify_add_watch(wt->fd, path, KEY_CACHE_EVENTS | IN_ONLYDIR);
        if (wd < 0) {
                wt->error = negative_errno();
                wt->fd = -EBADF;
                return wt->error;
        }
        wt->n++;
        return wd;
}

/* The directory FD, just watched, against what its parent's fstatat() saw (ST, hashed already): a change
 * in between has no event, so this walk's key must not be trusted. */
static void watch_check_unchanged(EtcWatch *wt, int fd, const struct stat *st) {
        struct stat now;

        if (fstat(fd, &now) < 0 || now.st_dev != st->st_dev || now.st_ino != st->st_ino ||
            now.st_mode != st->st_mode || now.st_size != st->st_size ||
            now.st_mtim.tv_sec != st->st_mtim.tv_sec || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec ||
            now.st_ctim.tv_sec != st->st_ctim.tv_sec || now.st_ctim.tv_nsec != st->st_ctim.tv_nsec)
                wt->changed = true;
}

static int copy_data(EtcWalk *w, int in, int out, uint64_t size) {
        while (size > 0) {
                ssize_t n = read(in, w->buf, MIN(size, (uint64_t) COPY_BUF_SIZE));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break; /* it shrank meanwhile: the key names the old one, the next start rebuilds */
                for (ssize_t done = 0; done < n;) {
                        ssize_t k = write(out, w->buf + done, (size_t) (n - done));
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return -errno;
                        done += k;
                }
                size -= (uint64_t) n;
        }
        return 0;
}

static int copy_file(EtcWalk *w, int src, int dst, const char *name, const struct stat *st) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        struct stat now;
        int r;

        /* O_NONBLOCK: if a fifo took its place since the fstatat(), the open must not hang. */
        in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (in < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(in, &now) < 0)
                return -errno;
        if (!S_ISREG(now.st_mode))
                return 0; /* replaced meanwhile: the next start sees the change and rebuilds */
        if ((uint64_t) now.st_size > ETC_MAX_BYTES - w->bytes)
                return fail(w->why, w->why_size, -EFBIG, "/etc/%s: more than %" PRIu64 " MiB to copy", w->path,
                            ETC_MAX_BYTES >> 20);
        out = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        r = copy_data(w, in, out, (uint64_t) now.st_size);
        if (r < 0)
                return r;
        /* Permission bits only: no set-id bit, and the owner is the image's root. */
        if (fchmod(out, st->st_mode & 0777) < 0 ||
            futimens(out, (const struct timespec[2]) { st->st_mtim, st->st_mtim }) < 0)
                return -errno;
        return 0;
}

static int walk_dir(EtcWalk *w, int src, int dst, unsigned depth);

/* The entry NAME (of readdir type TYPE, inode INO) of the host directory SRC (w->path names it),
 * hashed and, with DST, copied there. */
static int walk_entry(EtcWalk *w, int src, int dst, const char *name, unsigned char type, ino_t ino,
                      unsigned depth) {
        struct stat st;
        int r;

        if (++w->entries > ETC_MAX_ENTRIES)
                return fail(w->why, w->why_size, -E2BIG, "/etc/%s: more than %u entries to copy", w->path,
                            ETC_MAX_ENTRIES);
        if (type == DT_LNK) {
                /* A symlink cannot change in place: a new one is a new inode and changes the directory's
                 * times, which its parent hashed. So no fstatat() for the ~800 links of a Debian /etc
                 * (alternatives/, ssl/certs/): the name and inode number are its whole key. */
                const uint64_t v = ino;
                (void) XXH3_64bits_update(w->hash, w->path, strlen(w->path) + 1);
                (void) XXH3_64bits_update(w->hash, &v, sizeof v);
                st.st_mode = S_IFLNK;
        } else {
                if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                hash_entry(w, &st);
        }

        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n;
                if (dst < 0)
                        return 0;
                /* Copied as a link, never followed: it resolves inside the sandbox's root. */
                n = readlinkat(src, name, target, sizeof target - 1);
                if (n < 0)
                        return errno == ENOENT || errno == EINVAL ? 0 : -errno;
                target[n] = '\0';
                if (symlinkat(target, dst, name) < 0)
                        return -errno;
                return 0;
        }
        if (S_ISREG(st.st_mode)) {
                if (!(st.st_mode & S_IROTH))
                        return 0; /* only some host users may read it: not for a sandbox */
                if (dst < 0)
                        return 0;
                return copy_file(w, src, dst, name, &st);
        }
        if (!S_ISDIR(st.st_mode) || (st.st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH))
                return 0; /* devices, fifos, sockets; directories closed to others, with their contents */
        if (depth >= ETC_MAX_DEPTH)
                return fail(w->why, w->why_size, -ELOOP, "/etc/%s: more than %u levels deep", w->path,
                            ETC_MAX_DEPTH);

        _cleanup_close_ int sub = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int dsub = -EBADF;
        if (sub < 0)
                return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
        /* Watched before it is read: a change from here on has an event, and one before shows below. */
        if (w->watch && watch_dir(w->watch, sub) >= 0)
                watch_check_unchanged(w->watch, sub, &st);
        if (dst >= 0) {
                if (mkdirat(dst, name, 0700) < 0)
                        return -errno;
                dsub = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dsub < 0)
                        return -errno;
        }
        r = walk_dir(w, TAKE_FD(sub), dsub, depth + 1);
        if (r < 0)
                return r;
        /* Mode and times after the contents (writing them changed the mtime). */
        if (dsub >= 0 && (fchmod(dsub, st.st_mode & 01777) < 0 ||
                          futimens(dsub, (const struct timespec[2]) { st.st_mtim, st.st_mtim }) < 0))
                return -errno;
        return 0;
}

/* Every entry of SRC (which this takes) in readdir order: an unchanged directory lists in the same
 * order, and a changed one has a new mtime in the key anyway. */
static int walk_dir(EtcWalk *w, int src, int dst, unsigned depth) {
        _cleanup_closedir_ DIR *d = NULL;
        size_t plen = strlen(w->path);
        int r = 0;

        d = fdopendir(src);
        if (!d) {
                safe_close(src);
                return -errno;
        }
        src = dirfd(d);
        for (struct dirent *de; r >= 0 && (errno = 0, de = readdir(d));) {
                size_t l = strlen(de->d_name);
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (plen + 1 + l >= sizeof w->path)
                        return fail(w->why, w->why_size, -ENAMETOOLONG, "/etc/%s: path too long", w->path);
                w->path[plen] = '/';
                memcpy(w->path + plen + 1, de->d_name, l + 1);
                r = walk_entry(w, src, dst, de->d_name, de->d_type, de->d_ino, depth);
                w->path[plen] = '\0';
        }
        if (r >= 0 && errno != 0)
                r = -errno;
        return r;
}

typedef struct TopEntry {
        char *name;
        unsigned char type;
        ino_t ino;
} TopEntry;

static int top_entry_cmp(const void *a, const void *b) {
        return strcmp(((const TopEntry *) a)->name, ((const TopEntry *) b)->name);
}

/* Walk the allow-listed entries of the host's /etc (ETC_FD) in name order, copying them into DST (the
 * image's etc/) unless it is -EBADF, watching what it reads with WATCH unless it is NULL, and return the
 * key of what was seen. */
static int etc_walk(int etc_fd, int dst, char *buf, EtcWatch *watch, uint64_t *ret_key, char *why,
                    size_t why_size) {
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ EtcWalk *w = NULL;
        TopEntry names[ELEMENTSOF(etc_allow) * 4];
        size_t n = 0;
        char boot[64] = "";
        int fd, r = 0;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->buf = buf;
        w->watch = watch;
        w->why = why;
        w->why_size = why_size;
        w->hash = XXH3_createState();
        if (!w->hash)
                return -ENOMEM;
        (void) XXH3_64bits_reset(w->hash);
        (void) XXH3_64bits_update(w->hash, HOST_IMAGE_VERSION, sizeof HOST_IMAGE_VERSION);
        fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                ssize_t k = read(fd, boot, sizeof boot - 1);
                boot[MAX(k, 0)] = '\0';
                safe_close(fd);
        }
        (void) XXH3_64bits_update(w->hash, boot, strlen(boot) + 1);

        /* A description of our own: a dup would share (and move) the caller's directory offset. */
        fd = openat(etc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        if (watch)
                watch->etc_wd = watch_dir(watch, fd);
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                goto out;
        }
        for (struct dirent *de; (errno = 0, de = readdir(d));) {
                if (!etc_allowed(de->d_name))
                        continue;
                if (n == ELEMENTSOF(names)) {
                        r = fail(why, why_size, -E2BIG, "/etc: more than %zu entries match the allow-list", n);
                        goto out;
                }
                names[n] = (TopEntry) { .name = strdup(de->d_name), .type = de->d_type, .ino = de->d_ino };
                if (!names[n].name) {
                        r = -ENOMEM;
                        goto out;
                }
                n++;
        }
        if (errno != 0) {
                r = -errno;
                goto out;
        }
        /* The top level in a fixed order: what else changes in /etc does not reorder it. */
        qsort(names, n, sizeof names[0], top_entry_cmp);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                snprintf(w->path, sizeof w->path, "%s", names[i].name);
                r = walk_entry(w, etc_fd, dst, names[i].name, names[i].type, names[i].ino, 0);
        }
        if (r >= 0)
                *ret_key = XXH3_64bits_digest(w->hash);
out:
        for (size_t i = 0; i < n; i++)
                free(names[i].name);
        XXH3_freeState(w->hash);
        return r;
}

/* ---- building, finding and holding the image ---- */

static int image_build(int dirfd, const char *name, int etc_fd, uint64_t *ret_key, char *why, size_t why_size) {
        static const struct {
                const char *path;
                mode_t mode;
        } dirs[] = {
                { "usr", 0755 }, { "etc", 0755 }, { "proc", 0555 }, { "dev", 0755 }, { "sys", 0555 },
                { "tmp", 01777 }, { "root", 0700 }, { "home", 0755 }, { "run", 0755 }, { "var", 0755 },
                { "var/tmp", 01777 }, { "mnt", 0755 }, { "opt", 0755 },
        };
        static const char *const usr_links[] = { "bin", "sbin", "lib", "lib64", "lib32", "libx32" };
        _cleanup_close_ int fd = -EBADF, etc = -EBADF;
        _cleanup_free_ char *buf = NULL;
        int r;

        fd = openat(dirfd, name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (mkdirat(fd, dirs[i].path, dirs[i].mode) < 0)
                        return -errno;
                /* mkdir applies the umask; these modes are exact. */
                if (fchmodat(fd, dirs[i].path, dirs[i].mode, 0) < 0)
                        return -errno;
        }
        /* The merged-usr links, for what the host's /usr has. */
        for (size_t i = 0; i < ELEMENTSOF(usr_links); i++) {
                char target[32], usrpath[32];
                snprintf(usrpath, sizeof usrpath, "/usr/%s", usr_links[i]);
                if (access(usrpath, F_OK) < 0)
                        continue;
                snprintf(target, sizeof target, "usr/%s", usr_links[i]);
                if (symlinkat(target, fd, usr_links[i]) < 0)
                        return -errno;
        }

        etc = openat(fd, "etc", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (etc < 0)
                return -errno;
        if ((r = write_file(etc, "passwd",
                            "root:x:0:0:root:/root:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0644)) < 0 ||
            (r = write_file(etc, "group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0644)) < 0 ||
            (r = write_hosts(etc, IMAGE_DEFAULT_HOSTNAME)) < 0 ||
            (r = write_file(etc, "resolv.conf", "# No name servers: this sandbox has no network.\n", 0644)) < 0 ||
            (r = write_file(etc, "nsswitch.conf",
                            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                            "networks: files\nprotocols: files\nservices: files\nrpc: files\n", 0644)) < 0)
                return r;
        if (symlinkat("../proc/self/mounts", etc, "mtab") < 0)
                return -errno;

        buf = malloc(COPY_BUF_SIZE);
        if (!buf)
                return -ENOMEM;
        return etc_walk(etc_fd, etc, buf, NULL, ret_key, why, why_size);
}

/* Lock FD (a directory just opened as NAME in DIRFD) with OP and check that NAME still is it: a removal
 * may have taken the name away while we waited. 1: locked and current; 0: gone, try again. */
static int lock_current(int dirfd, const char *name, int fd, int op) {
        struct stat a, b;

        if (flock(fd, op) < 0)
                return -errno;
        if (fstat(fd, &a) < 0)
                return -errno;
        if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static bool is_image_name(const char *name) {
        const char *k = startswith(name, HOST_IMAGE_PREFIX);
        if (!k || strlen(k) != 16)
                return false;
        return strspn(k, "0123456789abcdef") == 16;
}

/* Remove the images (and abandoned builds) nobody holds, except KEEP. Images of the older naming
 * ("host-1") are left alone: a binary of that version may be using one without a lock. */
static void remove_unused(int images_fd, const char *keep) {
        _cleanup_closedir_ DIR *d = NULL;
        int fd = openat(images_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, keep) || (!is_image_name(de->d_name) && !startswith(de->d_name, BUILD_PREFIX)))
                        continue;
                _cleanup_close_ int dfd = openat(images_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0 || flock(dfd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                /* Ours now: a sandbox that opens it meanwhile waits for the lock and then finds the name
                 * gone (lock_current), so it never uses a half-removed image. */
                (void) rm_tree_at(images_fd, de->d_name);
        }
}

/* Build the image for the host's /etc now: under a name of its own, held exclusively while it is
 * written, and renamed into place complete, so a reader never sees half of it and of two concurrent
 * builders one wins and the other throws its copy away. 1: built as *NAME, *RET_FD its directory,
 * still locked exclusively; 0: try again. */
static int build_locked(int images_fd, int etc_fd, char name[static 64], int *ret_fd, char *why, size_t why_size) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t rnd = 0, key;
        char tmp[64];
        int r;

        (void) getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        snprintf(tmp, sizeof tmp, BUILD_PREFIX "%016" PRIx64, rnd);
        if (mkdirat(images_fd, tmp, 0755) < 0)
                return -errno;
        fd = openat(images_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                (void) unlinkat(images_fd, tmp, AT_REMOVEDIR);
                return r;
        }
        r = lock_current(images_fd, tmp, fd, LOCK_EX);
        if (r <= 0)
                return r; /* removed by a concurrent clean-up before we locked it */
        if (fchmod(fd, 0755) < 0)
                r = -errno;
        else
                r = image_build(images_fd, tmp, etc_fd, &key, why, why_size);
        if (r >= 0) {
                snprintf(name, 64, HOST_IMAGE_PREFIX "%016" PRIx64, key);
                if (renameat2(images_fd, tmp, images_fd, name, RENAME_NOREPLACE) < 0)
                        r = -errno;
        }
        if (r < 0) {
                (void) rm_tree_at(images_fd, tmp);
                return r == -EEXIST ? 0 : r; /* EEXIST: another build of the same won */
        }
        *ret_fd = TAKE_FD(fd);
        return 1;
}

/* ---- the key, cached ---- */

/* Whether anything the last watching walk hashed may have changed since: the pending events, read without
 * blocking. An event in /etc itself about a name off the allow-list tells nothing and is used up; after
 * one that tells something the rest does not matter (the next walk replaces the instance). */
static bool key_cache_changed(void) {
        union {
                struct inotify_event e;
                char buf[4096];
        } u;

        for (;;) {
                ssize_t n = read(key_cache.inotify_fd, &u, sizeof u);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno != EAGAIN; /* nothing pending, or inotify failed: walk */
                for (size_t off = 0; off < (size_t) n;) {
                        const struct inotify_event *e = (const struct inotify_event *) (u.buf + off);
                        if ((size_t) n - off < sizeof *e || e->len > (size_t) n - off - sizeof *e)
                                return true;
                        off += sizeof *e + e->len;
                        /* IN_Q_OVERFLOW (events were lost) and IN_IGNORED (a watch is gone) always count. */
                        if (e->wd == key_cache.etc_wd && e->len > 0 && e->name[0] &&
                            !(e->mask & (IN_Q_OVERFLOW | IN_IGNORED)) && !etc_allowed(e->name))
                                continue;
                        return true;
                }
        }
}

/* This process's own state: after a fork, the inherited instance shares the parent's queue, which is not
 * the child's to read (closing the child's copy leaves the parent's open). */
static void key_cache_own(void) {
        pid_t pid = getpid();

        if (key_cache.pid == pid)
                return;
        key_cache.inotify_fd = safe_close(key_cache.inotify_fd);
        key_cache.pid = pid;
        key_cache.armed = false;
        key_cache.retry_usec = 0;
}

/* The key of the host /etc ETC_FD: the cached one if USE_CACHE and nothing it saw may have changed
 * since, else a new walk's, which the cache keeps if it watched the whole walk. *RET_CACHED: whether the
 * key came from the cache. */
static int host_key(int etc_fd, bool use_cache, uint64_t *ret_key, bool *ret_cached, char *why,
                    size_t why_size) {
        _cleanup_close_ int ifd = -EBADF;
        EtcWatch watch = { .fd = -EBADF, .etc_wd = -1 };
        uint64_t now, key;
        struct stat st;
        int r;

        if (fstat(etc_fd, &st) < 0)
                return -errno;
        pthread_mutex_lock(&key_cache_lock);
        key_cache_own();
        now = now_usec();
        if (use_cache && key_cache.inotify_fd >= 0 && key_cache.etc_dev == st.st_dev &&
            key_cache.etc_ino == st.st_ino && now - key_cache.walked_usec < key_cache.max_age_usec &&
            !key_cache_changed()) {
                key = key_cache.key;
                pthread_mutex_unlock(&key_cache_lock);
                *ret_key = key;
                *ret_cached = true;
                return 0;
        }

        key_cache.inotify_fd = safe_close(key_cache.inotify_fd);
        /* Not at a process's first walk: a one-shot process (sandbox-run) walks once, and an inotify
         * instance held for its life would count against the user's few (max_user_instances, 128). */
        if (key_cache.armed && now >= key_cache.retry_usec) {
                if (key_cache.fault_init < 0)
                        watch.error = key_cache.fault_init;
                else if ((ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
                        watch.error = negative_errno();
                watch.fd = ifd;
        }
        r = etc_walk(etc_fd, -EBADF, NULL, ifd >= 0 ? &watch : NULL, &key, why, why_size);
        key_cache.walks++;
        key_cache.armed = true;
        if (r >= 0 && watch.fd >= 0 && watch.etc_wd >= 0 && !watch.changed) {
                key_cache.inotify_fd = TAKE_FD(ifd);
                key_cache.etc_wd = watch.etc_wd;
                key_cache.etc_dev = st.st_dev;
                key_cache.etc_ino = st.st_ino;
                key_cache.key = key;
                key_cache.walked_usec = now;
        } else if (watch.error < 0)
                /* ENOSPC (max_user_watches), EMFILE, our bound: walk at every start for a while. */
                key_cache.retry_usec = now + KEY_CACHE_RETRY_USEC;
        pthread_mutex_unlock(&key_cache_lock);
        if (r < 0)
                return r;
        *ret_key = key;
        *ret_cached = false;
        return 0;
}

static void key_cache_forget(void) {
        pthread_mutex_lock(&key_cache_lock);
        key_cache_own();
        key_cache.inotify_fd = safe_close(key_cache.inotify_fd);
        pthread_mutex_unlock(&key_cache_lock);
}

unsigned image_host_walks_for_test(void) {
        unsigned n;

        pthread_mutex_lock(&key_cache_lock);
        n = key_cache.walks;
        pthread_mutex_unlock(&key_cache_lock);
        return n;
}

void image_host_cache_reset_for_test(int init_error, int watch_error) {
        pthread_mutex_lock(&key_cache_lock);
        key_cache.inotify_fd = safe_close(key_cache.inotify_fd);
        key_cache.pid = getpid();
        key_cache.armed = false;
        key_cache.retry_usec = 0;
        key_cache.max_age_usec = KEY_CACHE_MAX_AGE_USEC;
        key_cache.walks = 0;
        key_cache.fault_init = init_error;
        key_cache.fault_watch = watch_error;
        pthread_mutex_unlock(&key_cache_lock);
}

void image_host_cache_max_age_for_test(uint64_t usec) {
        pthread_mutex_lock(&key_cache_lock);
        key_cache.max_age_usec = usec;
        pthread_mutex_unlock(&key_cache_lock);
}

int image_host_acquire(int images_fd, int etc_fd, char **ret_name, int *ret_lock_fd, char *why, size_t why_size) {
        bool use_cache = true;
        int r;

        if (why && why_size > 0)
                why[0] = '\0';
        for (unsigned walks = 0; walks < 4;) {
                _cleanup_close_ int fd = -EBADF;
                char name[64], key_name[64];
                uint64_t key = 0;
                bool cached = false;

                r = host_key(etc_fd, use_cache, &key, &cached, why, why_size);
                if (r < 0)
                        return r;
                /* A cached key is tried once: if its image is gone, the next round walks. */
                use_cache = false;
                if (!cached)
                        walks++;
                snprintf(key_name, sizeof key_name, HOST_IMAGE_PREFIX "%016" PRIx64, key);
                memcpy(name, key_name, sizeof name);
                fd = openat(images_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 && errno != ENOENT)
                        return -errno;
                if (fd < 0 && cached)
                        continue;
                if (fd < 0) {
                        r = build_locked(images_fd, etc_fd, name, &fd, why, why_size);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                        /* The copy saw another /etc than the walk (it is named by what it saw): the
                         * walk's key is not trusted, whatever its watches say. */
                        if (!streq(name, key_name))
                                key_cache_forget();
                        remove_unused(images_fd, name);
                }
                /* Shared from here on (for a new build the conversion from exclusive is not atomic: a
                 * clean-up may have come in between, so the name is checked again). */
                r = lock_current(images_fd, name, fd, LOCK_SH);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                if (ret_name && !(*ret_name = strdup(name)))
                        return -ENOMEM;
                *ret_lock_fd = TAKE_FD(fd);
                return 0;
        }
        return fail(why, why_size, -EBUSY, "the host's /etc kept changing while the image was built");
}

int image_make_hostname_layer(int dirfd, const char *name, const char *hostname) {
        _cleanup_close_ int fd = -EBADF, etc = -EBADF;

        if (mkdirat(dirfd, name, 0755) < 0)
                return -errno;
        fd = openat(dirfd, name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (fd < 0)
                return -errno;
        /* The same modes as the image's: the union shows the topmost layer's directory. */
        if (fchmod(fd, 0755) < 0 || mkdirat(fd, "etc", 0755) < 0 || fchmodat(fd, "etc", 0755, 0) < 0)
                return -errno;
        etc = openat(fd, "etc", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (etc < 0)
                return -errno;
        return write_hosts(etc, hostname);
}
