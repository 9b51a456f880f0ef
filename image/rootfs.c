/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An image's files as its layers merge them, read without mounting anything; see rootfs.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "ovl.h"
#include "rootfs.h"
#include "xattr.h"

/* Components per path: /etc/passwd has two; a bound keeps a hostile caller's path walk short. */
#define ROOTFS_MAX_DEPTH 16
#define ROOTFS_NAME_MAX 255

/* NAME (one component) beneath DIRFD, never through a symlink or a mount. */
static int open_component(int dirfd, const char *name, int flags) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC | O_NOFOLLOW),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        long r;

        do
                r = syscall(SYS_openat2, dirfd, name, &how, sizeof how);
        while (r < 0 && errno == EAGAIN);
        return r < 0 ? -errno : (int) r;
}

/* The union's opaque marker: trusted.overlay.opaque = "y" (sandbox-unionfs reads the trusted namespace). */
static int dir_is_opaque(int fd) {
        char v[2];
        ssize_t n = xattr_get(fd, OVL_NS_TRUSTED "overlay.opaque", v, sizeof v);

        if (n == -ENODATA || n == -EOPNOTSUPP || n == -ERANGE)
                return 0;
        if (n < 0)
                return (int) n;
        return n == 1 && v[0] == 'y';
}

static int read_regular(int dirfd, const char *name, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        /* Non-blocking, and checked again once open: never a FIFO or a device, whatever was swapped in. */
        fd = open_component(dirfd, name, O_RDONLY | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EPERM;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        return read_fd_all(fd, max, ret, ret_size); /* -EFBIG too if it grew meanwhile */
}

/* One layer: 1 and the file when this layer has it, 0 when the search goes on below (with *RET_STOP when
 * an opaque directory on the way ends it), or -errno (-ENOENT: hidden here). */
static int read_in_layer(const char *layer, char *const *comps, size_t n_comps, size_t max, bool *ret_stop,
                         char **ret, size_t *ret_size) {
        _cleanup_close_ int dir = -EBADF;
        bool opaque = false;
        int r;

        /* The layer's directory is the store's (an administrator's path), not the image's. */
        dir = open(layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return -errno;
        for (size_t i = 0; i < n_comps; i++) {
                struct stat st;

                if (fstatat(dir, comps[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        *ret_stop = opaque;
                        return 0; /* not in this layer */
                }
                if (ovl_is_whiteout(&st))
                        return -ENOENT;
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (i + 1 == n_comps) {
                        if (S_ISDIR(st.st_mode))
                                return -EISDIR;
                        if (!S_ISREG(st.st_mode))
                                return -EPERM;
                        r = read_regular(dir, comps[i], max, ret, ret_size);
                        return r < 0 ? r : 1;
                }
                if (!S_ISDIR(st.st_mode))
                        return -ENOENT; /* a non-directory hides everything below */
                int sub = open_component(dir, comps[i], O_PATH | O_DIRECTORY);
                if (sub < 0)
                        return sub;
                safe_close(dir);
                dir = sub;
                r = dir_is_opaque(dir);
                if (r < 0)
                        return r;
                if (r > 0)
                        opaque = true;
        }
        return -EINVAL; /* not reached: n_comps > 0 */
}

int image_rootfs_read_file(char *const *layers, size_t n, const char *path, size_t max, char **ret,
                           size_t *ret_size) {
        char copy[ROOTFS_MAX_DEPTH * (ROOTFS_NAME_MAX + 1)];
        char *comps[ROOTFS_MAX_DEPTH];
        size_t n_comps = 0;

        if (!path || !ret || !ret_size || (n > 0 && !layers) || strlen(path) >= sizeof copy)
                return -EINVAL;
        strcpy(copy, path);
        for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (streq(c, ".") || streq(c, "..") || strlen(c) > ROOTFS_NAME_MAX ||
                    n_comps >= ROOTFS_MAX_DEPTH)
                        return -EINVAL;
                comps[n_comps++] = c;
        }
        if (n_comps == 0)
                return -EINVAL;

        for (size_t i = 0; i < n; i++) {
                bool stop = false;
                int r = read_in_layer(layers[i], comps, n_comps, max, &stop, ret, ret_size);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (stop)
                        break;
        }
        return -ENOENT;
}
