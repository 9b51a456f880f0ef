/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Volumes (sandboxd's `--volume NAME:/path`), the runtime's part: a volume is a file holding an ext4 file
 * system (made by sandboxd, docs/volumes.md), which we attach to a loop device and mount as a detached
 * mount, idmapped through the sandbox's own id range (on-disk 0..65535 are the sandbox's 0..65535, so
 * the files keep their owners whichever range the next sandbox gets), nosuid and nodev, read-only where
 * asked. The file system's size is the volume's quota: a write past it fails with ENOSPC inside.
 *
 * The loop device is set up with LO_FLAGS_AUTOCLEAR: it goes when the last mount of the file system goes
 * (the sandbox's mount namespace ends); and with LO_FLAGS_DIRECT_IO, so that the image's data is not cached
 * a second time below the volume's own page cache (the kernel falls back to buffered I/O where the file
 * system of the image cannot do direct I/O). A file system still mounted there (a sandbox of the same volume
 * that is ending) is found by the image's device and inode and mounted again from the same loop device,
 * which gives the same superblock: one image is never mounted through two loop devices at once. The
 * search and the attach run under a lock of the image (flock), so that two starts never race each other.
 * Parent's side, as host root. Nothing here logs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "mount-syscalls.h"
#include "runtime.h"

/* How often a loop device that another attach took meanwhile is tried again. */
#define LOOP_ATTEMPTS 16

/* Whether loop device INDEX is backed by the file of ST. */
static bool loop_backs(unsigned index, const struct stat *st) {
        struct loop_info64 info;
        char path[64];
        int fd, r;

        snprintf(path, sizeof path, "/dev/loop%u", index);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return false;
        r = ioctl(fd, LOOP_GET_STATUS64, &info);
        close(fd);
        return r >= 0 && info.lo_device == (uint64_t) st->st_dev && info.lo_inode == (uint64_t) st->st_ino;
}

/* The loop device already backed by the file of ST (a mount of it that is still there), or -ENOENT. */
static int loop_find(const struct stat *st, unsigned *ret_index) {
        _cleanup_closedir_ DIR *d = opendir("/sys/block");
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                struct loop_info64 info;
                char path[64];
                unsigned n;
                int fd;

                if (sscanf(de->d_name, "loop%u", &n) != 1)
                        continue;
                snprintf(path, sizeof path, "/dev/loop%u", n);
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0)
                        continue;
                int r = ioctl(fd, LOOP_GET_STATUS64, &info);
                close(fd);
                if (r < 0)
                        continue;
                if (info.lo_device == (uint64_t) st->st_dev && info.lo_inode == (uint64_t) st->st_ino) {
                        *ret_index = n;
                        return 0;
                }
        }
        return -ENOENT;
}

/* A free loop device backed by IMAGE_FD, cleared when its last user goes. */
static int loop_attach(int image_fd, unsigned *ret_index, int *ret_fd) {
        _cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);

        if (ctl < 0)
                return -errno;
        for (unsigned i = 0; i < LOOP_ATTEMPTS; i++) {
                struct loop_config cfg = {
                        .fd = (uint32_t) image_fd,
                        .info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO,
                };
                char path[64];
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (n < 0)
                        return -errno;
                snprintf(path, sizeof path, "/dev/loop%d", n);
                _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (ioctl(fd, LOOP_CONFIGURE, &cfg) < 0) {
                        if (errno == EBUSY)
                                continue; /* taken meanwhile by someone else */
                        return -errno;
                }
                *ret_index = (unsigned) n;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        return -EBUSY;
}

static int mount_loop(unsigned index, bool readonly, int *ret_fd) {
        _cleanup_close_ int fs = -EBADF, mnt = -EBADF;
        char source[64];

        snprintf(source, sizeof source, "/dev/loop%u", index);
        fs = sys_fsopen("ext4", FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        /* The superblock is read-write even for a read-only volume: a mount of the same device that is
         * still there (read-write) must be shared, not refused. The mount itself is read-only. */
        if (sys_fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_STRING, "errors", "remount-ro", 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        mnt = sys_fsmount(fs, FSMOUNT_CLOEXEC,
                          MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0));
        if (mnt < 0)
                return -errno;
        *ret_fd = TAKE_FD(mnt);
        return 0;
}

int volume_mount_image(int image_fd, bool readonly, uid_t host_first, gid_t host_first_gid, int *ret_fd) {
        _cleanup_close_ int userns = -EBADF, mnt = -EBADF, lock = -EBADF;
        struct stat st;
        int r;

        if (fstat(image_fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        /* Our own description of the file: a lock of the descriptor the caller passed would be shared with
         * every copy of it. */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", image_fd);
        lock = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (lock < 0)
                return -errno;
        if (flock(lock, LOCK_EX) < 0)
                return -errno;
        for (unsigned attempt = 0; attempt < LOOP_ATTEMPTS && mnt < 0; attempt++) {
                _cleanup_close_ int loop = -EBADF;
                unsigned index = 0;

                r = loop_find(&st, &index);
                if (r == -ENOENT)
                        r = loop_attach(lock, &index, &loop);
                if (r < 0)
                        return r;
                r = mount_loop(index, readonly, &mnt);
                /* A device found while its last mount went (cleared meanwhile): look again. */
                if (r == -ENXIO || r == -ENODEV || r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                /* A device found while its last mount went could even have been taken for another file
                 * before we opened it. Now that our mount holds it, it cannot change: check it. */
                if (loop < 0 && !loop_backs(index, &st))
                        mnt = safe_close(mnt);
        }
        if (mnt < 0)
                return -EBUSY;
        r = userns_make_range(host_first, host_first_gid, SANDBOX_IDS_PER_RANGE, &userns);
        if (r < 0)
                return r;
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_IDMAP,
                .userns_fd = (uint64_t) userns,
        };
        if (sys_mount_setattr(mnt, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
                return -errno;
        *ret_fd = TAKE_FD(mnt);
        return 0;
}
