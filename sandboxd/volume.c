/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Volumes in the data directory (volume.h): made, listed, opened and removed. Every path is resolved
 * beneath the data directory's descriptor, one component at a time with O_NOFOLLOW, from names we
 * checked (msg_volume_name_is_valid()); only root ever reaches these directories. A volume's file
 * system is made by mke2fs (e2fsprogs), run on the image we opened, with nothing of the client's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "rmtree.h"
#include "time-util.h"
#include "volume.h"

extern char **environ;

static int open_dir_at(int dirfd, const char *name, bool create, int *ret_fd) {
        int fd;

        if (create && mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static int open_uid_dir(int data_fd, uid_t uid, bool create, int *ret_fd) {
        _cleanup_close_ int vols = -EBADF;
        char name[32];
        int r;

        r = open_dir_at(data_fd, VOLUMES_DIR, create, &vols);
        if (r < 0)
                return r;
        snprintf(name, sizeof name, "uid-%u", (unsigned) uid);
        return open_dir_at(vols, name, create, ret_fd);
}

static int count_volumes(int uid_fd, unsigned *ret) {
        _cleanup_close_ int fd = fcntl(uid_fd, F_DUPFD_CLOEXEC, 3);
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        rewinddir(d);
        while ((de = readdir(d)))
                if (msg_volume_name_is_valid(de->d_name))
                        n++;
        closedir(d);
        *ret = n;
        return 0;
}

static const char *find_mke2fs(void) {
        static const char *const paths[] = { "/usr/sbin/mke2fs", "/sbin/mke2fs", "/usr/bin/mke2fs" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

/* mke2fs on the image (as fd 3 of the child), with its messages in ERR. */
static int make_fs(int image_fd, const char *label, char *err, size_t errlen) {
        const char *mke2fs = find_mke2fs();
        posix_spawn_file_actions_t fa;
        _cleanup_close_ int rd = -EBADF, wr = -EBADF;
        char opts[64];
        int p[2], status, r;
        pid_t pid;

        if (!mke2fs) {
                snprintf(err, errlen, "mke2fs (e2fsprogs) is not installed: volumes need it");
                return -ENOENT;
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        rd = p[0];
        wr = p[1];
        snprintf(opts, sizeof opts, "root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1");
        char *argv[] = { (char *) "mke2fs", (char *) "-q", (char *) "-F", (char *) "-t", (char *) "ext4",
                         (char *) "-m", (char *) "0", (char *) "-E", opts, (char *) "-L", (char *) label,
                         (char *) "/dev/fd/3", NULL };
        char *envp[] = { (char *) "PATH=/usr/sbin:/usr/bin:/sbin:/bin", (char *) "LC_ALL=C", NULL };
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, wr, 1);
        posix_spawn_file_actions_adddup2(&fa, wr, 2);
        posix_spawn_file_actions_adddup2(&fa, image_fd, 3);
        r = posix_spawn(&pid, mke2fs, &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        wr = safe_close(wr);
        size_t off = 0;
        for (;;) {
                char buf[256];
                ssize_t n = read(rd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n && off + 1 < errlen; i++)
                        if (buf[i] != '\n' || off > 0)
                                err[off++] = buf[i] == '\n' ? ' ' : buf[i];
        }
        if (errlen > 0)
                err[off < errlen ? off : errlen - 1] = '\0';
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (off == 0)
                        snprintf(err, errlen, "mke2fs failed");
                return -EIO;
        }
        return 0;
}

int volume_create(int data_fd, uid_t uid, const char *name, uint64_t size, unsigned max_count, char *err,
                  size_t errlen) {
        _cleanup_close_ int uid_fd = -EBADF, dir_fd = -EBADF, image = -EBADF;
        char tmp[MSG_VOLUME_NAME_MAX + 32], meta[VOLUME_META_MAX], fserr[512] = "";
        VolumeMeta m = { .size = size, .created_usec = realtime_usec() };
        unsigned n = 0;
        uint32_t rnd;
        int r, k;

        if (!msg_volume_name_is_valid(name) || size < VOLUME_SIZE_MIN || size > VOLUME_SIZE_MAX)
                return -EINVAL;
        r = open_uid_dir(data_fd, uid, true, &uid_fd);
        if (r < 0) {
                snprintf(err, errlen, "cannot make the volume directory: %s", strerror(-r));
                return r;
        }
        if (faccessat(uid_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                snprintf(err, errlen, "you have a volume named '%s' already", name);
                return -EEXIST;
        }
        r = count_volumes(uid_fd, &n);
        if (r < 0) {
                snprintf(err, errlen, "cannot read the volume directory: %s", strerror(-r));
                return r;
        }
        if (max_count > 0 && n >= max_count) {
                snprintf(err, errlen, "you have %u volumes (max-volumes-per-uid = %u): remove one first "
                         "(sandboxctl volume rm)", n, max_count);
                return -EDQUOT;
        }
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                rnd = (uint32_t) getpid() ^ (uint32_t) m.created_usec;
        snprintf(tmp, sizeof tmp, ".new-%s-%08x", name, rnd);
        r = open_dir_at(uid_fd, tmp, true, &dir_fd);
        if (r < 0) {
                snprintf(err, errlen, "cannot make the volume: %s", strerror(-r));
                return r;
        }
        image = openat(dir_fd, "image", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (image < 0 || ftruncate(image, (off_t) size) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot make the volume's image: %s", strerror(-r));
                goto fail;
        }
        char label[17]; /* ext4's label holds 16 bytes */
        snprintf(label, sizeof label, "%.16s", name);
        r = make_fs(image, label, fserr, sizeof fserr);
        if (r < 0) {
                snprintf(err, errlen, "cannot make the volume's file system: %s", fserr);
                goto fail;
        }
        k = volume_meta_format(&m, meta, sizeof meta);
        r = k < 0 ? k : write_file_atomic_at(dir_fd, "meta", meta, (size_t) k, 0600);
        if (r >= 0 && (fsync(image) < 0 || fsync(dir_fd) < 0))
                r = -errno;
        if (r >= 0 && renameat2(uid_fd, tmp, uid_fd, name, RENAME_NOREPLACE) < 0)
                r = -errno;
        if (r >= 0 && fsync(uid_fd) < 0)
                r = -errno;
        if (r < 0) {
                if (r == -EEXIST)
                        snprintf(err, errlen, "you have a volume named '%s' already", name);
                else
                        snprintf(err, errlen, "cannot store the volume: %s", strerror(-r));
                goto fail;
        }
        return 0;
fail:
        (void) rm_tree_at(uid_fd, tmp);
        return r;
}

int volume_remove(int data_fd, uid_t uid, const char *name) {
        _cleanup_close_ int uid_fd = -EBADF;
        char tmp[MSG_VOLUME_NAME_MAX + 32];
        uint32_t rnd = 0;
        struct stat st;
        int r;

        if (!msg_volume_name_is_valid(name))
                return -ENOENT;
        r = open_uid_dir(data_fd, uid, false, &uid_fd);
        if (r < 0)
                return r;
        if (fstatat(uid_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOENT;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                rnd = (uint32_t) getpid();
        snprintf(tmp, sizeof tmp, ".rm-%s-%08x", name, rnd);
        if (renameat2(uid_fd, name, uid_fd, tmp, RENAME_NOREPLACE) < 0)
                return -errno;
        (void) fsync(uid_fd);
        return rm_tree_at(uid_fd, tmp);
}

int volume_open(int data_fd, uid_t uid, const char *name, int *ret_fd) {
        _cleanup_close_ int uid_fd = -EBADF, dir_fd = -EBADF;
        struct stat st;
        int r, fd;

        if (!msg_volume_name_is_valid(name))
                return -ENOENT;
        r = open_uid_dir(data_fd, uid, false, &uid_fd);
        if (r < 0)
                return r;
        r = open_dir_at(uid_fd, name, false, &dir_fd);
        if (r < 0)
                return r == -ENOTDIR ? -ENOENT : r;
        fd = openat(dir_fd, "image", O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADF;
        }
        *ret_fd = fd;
        return 0;
}

static int read_info(int uid_fd, uid_t uid, const char *name, VolumeInfo *ret) {
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        VolumeInfo v = { .uid = uid };
        size_t size;
        struct stat st;
        int r;

        r = open_dir_at(uid_fd, name, false, &dir_fd);
        if (r < 0)
                return r;
        r = read_file_at(dir_fd, "meta", VOLUME_META_MAX, &data, &size);
        if (r < 0)
                return r;
        r = volume_meta_parse(data, size, &v.meta);
        if (r < 0)
                return r;
        if (fstatat(dir_fd, "image", &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        v.used = (uint64_t) st.st_blocks * 512;
        if (strlen(name) >= sizeof v.name)
                return -ENAMETOOLONG;
        memcpy(v.name, name, strlen(name) + 1);
        *ret = v;
        return 0;
}

static int cmp_info(const void *a, const void *b) {
        const VolumeInfo *x = a, *y = b;
        if (x->uid != y->uid)
                return x->uid < y->uid ? -1 : 1;
        return strcmp(x->name, y->name);
}

static int list_uid(int uid_fd, uid_t uid, VolumeInfo **v, size_t *n, size_t *allocated) {
        _cleanup_close_ int fd = fcntl(uid_fd, F_DUPFD_CLOEXEC, 3);
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        while ((de = readdir(d))) {
                VolumeInfo info;
                if (!msg_volume_name_is_valid(de->d_name))
                        continue;
                if (read_info(uid_fd, uid, de->d_name, &info) < 0)
                        continue; /* not a volume (any more) */
                if (*n >= MSG_VOLUME_ENTRIES_MAX)
                        break;
                if (*n >= *allocated) {
                        size_t a = *allocated ? *allocated * 2 : 16;
                        VolumeInfo *p = reallocarray(*v, a, sizeof *p);
                        if (!p) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        *v = p;
                        *allocated = a;
                }
                (*v)[(*n)++] = info;
        }
        closedir(d);
        return 0;
}

int volume_list(int data_fd, bool all, uid_t uid, VolumeInfo **ret, size_t *ret_n) {
        _cleanup_free_ VolumeInfo *v = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (!all) {
                _cleanup_close_ int uid_fd = -EBADF;
                r = open_uid_dir(data_fd, uid, false, &uid_fd);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0) {
                        r = list_uid(uid_fd, uid, &v, &n, &allocated);
                        if (r < 0)
                                return r;
                }
        } else {
                _cleanup_close_ int vols = -EBADF;
                struct dirent *de;
                DIR *d;

                r = open_dir_at(data_fd, VOLUMES_DIR, false, &vols);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0) {
                        d = fdopendir(vols);
                        if (!d)
                                return -errno;
                        TAKE_FD(vols);
                        while ((de = readdir(d))) {
                                _cleanup_close_ int uid_fd = -EBADF;
                                unsigned u;
                                char check[32];
                                if (sscanf(de->d_name, "uid-%u", &u) != 1)
                                        continue;
                                snprintf(check, sizeof check, "uid-%u", u);
                                if (strcmp(check, de->d_name) != 0 ||
                                    open_dir_at(dirfd(d), de->d_name, false, &uid_fd) < 0)
                                        continue;
                                r = list_uid(uid_fd, (uid_t) u, &v, &n, &allocated);
                                if (r < 0) {
                                        closedir(d);
                                        return r;
                                }
                        }
                        closedir(d);
                }
        }
        if (n > 0)
                qsort(v, n, sizeof *v, cmp_info);
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

int volume_clean_leftovers(int data_fd) {
        _cleanup_close_ int vols = -EBADF;
        struct dirent *de;
        DIR *d;
        int r, ret = 0;

        r = open_dir_at(data_fd, VOLUMES_DIR, false, &vols);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        d = fdopendir(vols);
        if (!d)
                return -errno;
        TAKE_FD(vols);
        while ((de = readdir(d))) {
                _cleanup_close_ int uid_fd = -EBADF;
                if (strncmp(de->d_name, "uid-", 4) != 0 || open_dir_at(dirfd(d), de->d_name, false, &uid_fd) < 0)
                        continue;
                _cleanup_close_ int fd = fcntl(uid_fd, F_DUPFD_CLOEXEC, 3);
                DIR *u = fd >= 0 ? fdopendir(fd) : NULL;
                if (!u)
                        continue;
                TAKE_FD(fd);
                struct dirent *e;
                while ((e = readdir(u)))
                        if (strncmp(e->d_name, ".new-", 5) == 0 || strncmp(e->d_name, ".rm-", 4) == 0) {
                                r = rm_tree_at(uid_fd, e->d_name);
                                if (r < 0 && ret == 0)
                                        ret = r;
                        }
                closedir(u);
        }
        closedir(d);
        return ret;
}
