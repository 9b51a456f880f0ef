/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Building the sandbox's root. The parent (host root) prepares detached mount trees with the new
 * mount API: the union (fsopen/fsmount on a /dev/fuse fd), the host's /usr and every --bind source
 * (open_tree, from a path or from a descriptor a daemon client opened; idmapped where asked), so the
 * host never sees them mounted and the child never needs to reach a host path
 * that its unprivileged ids could not. The child attaches them in its own mount namespace; every
 * destination is resolved inside the new root (RESOLVE_IN_ROOT), so an image's symlinks cannot send a
 * mount outside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "mount-syscalls.h"
#include "runtime.h"

static int sys_pivot_root(const char *new_root, const char *put_old) {
        return (int) syscall(SYS_pivot_root, new_root, put_old);
}

/* mount(2) takes paths; "/proc/self/fd/N" names exactly the directory we resolved. */
typedef struct FdPath {
        char s[32];
} FdPath;

static FdPath fd_path(int fd) {
        FdPath p;
        snprintf(p.s, sizeof p.s, "/proc/self/fd/%d", fd);
        return p;
}

int mount_union_fd(int fuse_fd, const char *sandbox_id, int *ret_fd) {
        _cleanup_close_ int fs = -EBADF;
        char fdstr[16], source[64];
        int fd;

        /* The source names the sandbox, so that its union is told apart from any other one in
         * mountinfo (it names no host path: the sandbox sees it). */
        if (snprintf(source, sizeof source, "sandbox-unionfs:%s", sandbox_id) >= (int) sizeof source)
                return -EINVAL;

        fs = sys_fsopen("fuse", FSOPEN_CLOEXEC);
        if (fs < 0)
                return -errno;
        snprintf(fdstr, sizeof fdstr, "%d", fuse_fd);
        /* user_id/group_id 0 with allow_other: the server is root, and every sandbox process may use
         * the mount; default_permissions makes the kernel check modes against the ids we show. */
        if (sys_fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_STRING, "subtype", "sandbox-unionfs", 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_STRING, "fd", fdstr, 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_STRING, "rootmode", "40755", 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_STRING, "user_id", "0", 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_STRING, "group_id", "0", 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_FLAG, "allow_other", NULL, 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_SET_FLAG, "default_permissions", NULL, 0) < 0 ||
            sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        fd = sys_fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

/* The kernel keeps what programs write to the union in its page cache until it writes the pages back
 * to the server, and lets that grow to the strict limit of every FUSE mount: 1% of what the host may
 * have dirty, more than a small sandbox's whole memory cgroup. Those pages are charged to the sandbox;
 * when they fill it, the reclaim that would free them waits for the server to write them back, and the
 * server needs memory in the same cgroup to do so: a large write under a small --memory stalls for
 * minutes (on cgroup v1, until the flusher's 30 s expiry comes round, again and again). The mount's
 * backing device takes a bound in bytes (sysfs, root only; Linux 6.2); writers are then throttled to
 * what the server writes back before the cgroup fills. The device is the mount's st_dev, read from the
 * detached mount without a request to the server (it serves none yet). */
int mount_union_bound_dirty(int union_fd, uint64_t bytes) {
        struct statx stx;
        char path[64], value[24];

        if (statx(union_fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) < 0)
                return -errno;
        snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/max_bytes", stx.stx_dev_major, stx.stx_dev_minor);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        int n = snprintf(value, sizeof value, "%" PRIu64, bytes);
        ssize_t k = write(fd, value, (size_t) n);
        if (k < 0)
                return -errno;
        return k == n ? 0 : -EIO;
}

int mount_detached_tree_at(int dirfd, const char *path, bool readonly, int idmap_userns_fd, bool *ret_is_dir,
                           int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct mount_attr attr = {
                .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0),
        };
        struct stat st;

        fd = sys_open_tree(dirfd, path ?: "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
                                              (path ? 0 : AT_EMPTY_PATH));
        if (fd < 0)
                return -errno;
        /* On the detached copy, which nobody else sees yet: idmapping is allowed only there. */
        if (idmap_userns_fd >= 0) {
                attr.attr_set |= MOUNT_ATTR_IDMAP;
                attr.userns_fd = (uint64_t) idmap_userns_fd;
        }
        if (sys_mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
                return idmap_userns_fd >= 0 && (errno == EINVAL || errno == EOPNOTSUPP || errno == EPERM) ?
                       -EOPNOTSUPP : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
                return -EINVAL;
        *ret_is_dir = S_ISDIR(st.st_mode);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int mount_detached_tree(const char *path, bool readonly, bool *ret_is_dir, int *ret_fd) {
        return mount_detached_tree_at(AT_FDCWD, path, readonly, -EBADF, ret_is_dir, ret_fd);
}

int mount_fstype(int fd, char *buf, size_t size) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        struct statx sx;
        size_t n = 0;

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) < 0)
                return -errno;
        if (!(sx.stx_mask & STATX_MNT_ID))
                return -EOPNOTSUPP;
        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        /* "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
        while (getline(&line, &n, f) > 0) {
                unsigned long long id;
                const char *sep;
                if (sscanf(line, "%llu", &id) != 1 || id != sx.stx_mnt_id || !(sep = strstr(line, " - ")))
                        continue;
                sep += 3;
                size_t len = strcspn(sep, " \n");
                if (len == 0 || len >= size)
                        return -ENAMETOOLONG;
                memcpy(buf, sep, len);
                buf[len] = '\0';
                return 0;
        }
        return -ENOENT;
}

static int open_in_root(int root_fd, const char *path, int *ret_fd) {
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        int fd;

        while (*path == '/')
                path++;
        fd = (int) syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof how);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

/* Create the last component of BUF (NAME_OFF: where it starts) inside the root unless it exists:
 * a directory or (IS_DIR false) an empty file. */
static int make_one_in_root(int root_fd, char *buf, size_t name_off, bool is_dir) {
        _cleanup_close_ int fd = -EBADF, parent_fd = -EBADF, dir = -EBADF;
        char c;
        int r;

        r = open_in_root(root_fd, buf, &fd);
        if (r != -ENOENT)
                return r;
        c = buf[name_off];
        buf[name_off] = '\0';
        r = open_in_root(root_fd, buf, &parent_fd);
        buf[name_off] = c;
        if (r < 0)
                return r;
        /* The parent was resolved inside the root; reopen it as a real directory to create in. */
        dir = openat(parent_fd, ".", O_DIRECTORY | O_CLOEXEC | O_RDONLY);
        if (dir < 0)
                return -errno;
        if (is_dir)
                r = mkdirat(dir, buf + name_off, 0755);
        else {
                fd = openat(dir, buf + name_off, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                r = fd < 0 ? -1 : 0;
        }
        if (r < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Open PATH inside the root, creating it (and its parents, as directories) if missing. The sandbox's
 * init calls this after clone(), so it allocates nothing: one path buffer on the stack. */
int make_dir_in_root(int root_fd, const char *path, bool is_dir, int *ret_fd) {
        char buf[SPEC_STRING_MAX + 1];
        const char *name;
        size_t len = strlen(path);
        int r;

        r = open_in_root(root_fd, path, ret_fd);
        if (r != -ENOENT)
                return r;
        if (len >= sizeof buf)
                return -ENAMETOOLONG;
        memcpy(buf, path, len + 1);
        name = strrchr(buf, '/');
        if (!name)
                return -EINVAL;
        name++;
        if (!*name || streq(name, ".") || streq(name, ".."))
                return -EINVAL;

        /* Each component from the top: the missing ones are made, directories but for the last. */
        for (char *p = buf;;) {
                char *end, saved;

                p += strspn(p, "/");
                end = p + strcspn(p, "/");
                saved = *end;
                *end = '\0';
                r = make_one_in_root(root_fd, buf, (size_t) (p - buf), saved == '\0' ? is_dir : true);
                *end = saved;
                if (r < 0)
                        return r;
                if (saved == '\0')
                        break;
                p = end;
        }
        return open_in_root(root_fd, path, ret_fd);
}

int mount_attach_tree(int tree_fd, int root_fd, const char *dest, bool is_dir) {
        _cleanup_close_ int target = -EBADF;
        int r;

        r = make_dir_in_root(root_fd, dest, is_dir, &target);
        if (r < 0)
                return r;
        return RET_NERRNO(sys_move_mount(tree_fd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

static int mount_at(int root_fd, const char *dest, bool is_dir, const char *source, const char *fstype,
                    unsigned long flags, const char *data) {
        _cleanup_close_ int target = -EBADF;
        int r;

        r = make_dir_in_root(root_fd, dest, is_dir, &target);
        if (r < 0)
                return r;
        return RET_NERRNO(mount(source, fd_path(target).s, fstype, flags, data));
}

/* Bind a path onto itself and make it read-only (a missing path is fine: nothing to protect). */
static int make_readonly(int root_fd, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        int r = open_in_root(root_fd, path, &fd);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (mount(fd_path(fd).s, fd_path(fd).s, NULL, MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        safe_close(fd);
        r = open_in_root(root_fd, path, &fd);
        if (r < 0)
                return r;
        return RET_NERRNO(mount(NULL, fd_path(fd).s, NULL,
                                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
}

/* Hide a file (by /dev/null) or a directory (by an empty read-only tmpfs). */
static int mask_path(int root_fd, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r = open_in_root(root_fd, path, &fd);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return RET_NERRNO(mount("tmpfs", fd_path(fd).s, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                        "size=0,mode=0555"));
        return RET_NERRNO(mount("/dev/null", fd_path(fd).s, NULL, MS_BIND, NULL));
}

int mount_proc(int root_fd) {
        /* What leaks about the host or lets root inside poke the kernel. */
        static const char *const masked[] = {
                "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
                "/proc/kallsyms", "/proc/kpagecount", "/proc/kpageflags", "/proc/kpagecgroup",
                "/proc/acpi", "/proc/scsi", "/proc/asound",
        };
        static const char *const readonly[] = {
                "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs",
        };
        int r;

        r = mount_at(root_fd, "/proc", true, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(masked); i++) {
                r = mask_path(root_fd, masked[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(readonly); i++) {
                r = make_readonly(root_fd, readonly[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int mount_dev(int root_fd, uint64_t shm_size, bool mqueue) {
        static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
        static const struct {
                const char *name, *target;
        } links[] = {
                { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
                { "stderr", "/proc/self/fd/2" }, { "ptmx", "pts/ptmx" },
        };
        _cleanup_close_ int dev = -EBADF;
        char path[64];
        int r;

        r = mount_at(root_fd, "/dev", true, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=256k,nr_inodes=256");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                /* No mknod in a user namespace: bind the host's nodes (these six are harmless). */
                snprintf(path, sizeof path, "/dev/%s", nodes[i]);
                r = mount_at(root_fd, path, false, path, NULL, MS_BIND, NULL);
                if (r < 0)
                        return r;
        }
        r = open_in_root(root_fd, "/dev", &dev);
        if (r < 0)
                return r;
        {
                _cleanup_close_ int d = openat(dev, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
                if (d < 0)
                        return -errno;
                for (size_t i = 0; i < ELEMENTSOF(links); i++)
                        if (symlinkat(links[i].target, d, links[i].name) < 0)
                                return -errno;
        }
        /* Our own devpts instance: the sandbox's ptys are invisible to the host and to others. */
        r = mount_at(root_fd, "/dev/pts", true, "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                     "newinstance,ptmxmode=0666,mode=0620,gid=5");
        if (r < 0)
                return r;
        r = mount_tmpfs_at(root_fd, "/dev/shm", shm_size, "1777");
        if (r < 0)
                return r;
        /* An mqueue instance belongs to the IPC namespace's user namespace: none in a joined one. */
        if (!mqueue)
                return 0;
        return mount_at(root_fd, "/dev/mqueue", true, "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

int mount_sys(int root_fd) {
        int r;

        /* sysfs of our own network namespace, read-only; firmware tables are the host's: hide them. */
        r = mount_at(root_fd, "/sys", true, "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        if (r < 0)
                return r;
        return mask_path(root_fd, "/sys/firmware");
}

/* The mount options of a tmpfs of SIZE bytes (SPEC_UNLIMITED: the kernel's defaults, half of RAM):
 * one inode per KiB of size, at least 1024, so that inodes are bounded as well as bytes. */
static void tmpfs_options(char *buf, size_t n, uint64_t size, const char *mode) {
        if (size == SPEC_UNLIMITED || size == 0)
                snprintf(buf, n, "mode=%s", mode);
        else
                snprintf(buf, n, "mode=%s,size=%llu,nr_inodes=%llu", mode, (unsigned long long) size,
                         (unsigned long long) MAX(size / 1024, (uint64_t) 1024));
}

int mount_tmpfs_at(int root_fd, const char *dest, uint64_t size, const char *mode) {
        char data[96];

        tmpfs_options(data, sizeof data, size, mode);
        return mount_at(root_fd, dest, true, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, data);
}

int mount_pivot_root(const char *root_path) {
        /* pivot_root(".", "."): the old root ends up on top of the new one, and is detached at once,
         * so no path to the host's tree is left in this mount namespace. */
        if (chdir(root_path) < 0)
                return -errno;
        if (sys_pivot_root(".", ".") < 0)
                return -errno;
        if (umount2(".", MNT_DETACH) < 0)
                return -errno;
        return RET_NERRNO(chdir("/"));
}
