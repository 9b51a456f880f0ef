/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host side's finishing touches on a created sandbox (setup.h). One child process does them all: it opens
 * what it needs on the host first (the sandbox's cgroup directories, as detached mounts), then joins the
 * sandbox's user namespace (it is the sandbox's root from there on, nothing more) and mount namespace (setns moves its root and working directory into the sandbox's root), and mounts.
 * Sysctls are written by a second child that joins the sandbox's user, network and IPC namespaces, so that
 * values naming ids (net.ipv4.ping_group_range) mean the sandbox's ids. A failure is reported through a pipe
 * as (step, errno) and the caller ends the sandbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "setup.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#endif

#define CGROUP_HIERARCHIES_MAX 16

typedef struct Report {
        int step;
        int error;
        int index;
} Report;

enum {
        SETUP_NS,
        SETUP_MASK,
        SETUP_READONLY,
        SETUP_ROOT,
        SETUP_MQUEUE,
        SETUP_CGROUP,
        SETUP_SYSCTL,
        SETUP_DEVICE,
};

static const char *const step_names[] = {
        [SETUP_NS] = "join the container's namespaces",
        [SETUP_MASK] = "mask",
        [SETUP_READONLY] = "make read-only",
        [SETUP_ROOT] = "make the root read-only",
        [SETUP_MQUEUE] = "mount mqueue on",
        [SETUP_CGROUP] = "mount the container's cgroups on",
        [SETUP_SYSCTL] = "set sysctl",
        [SETUP_DEVICE] = "bind the device at",
};

_Noreturn static void child_fail(int fd, int step, int error, int index) {
        Report rep = { .step = step, .error = error, .index = index };
        (void) !write(fd, &rep, sizeof rep);
        _exit(1);
}

static unsigned long mount_flags_of(const char *path) {
        struct statvfs sv;
        unsigned long f = 0;

        if (statvfs(path, &sv) < 0)
                return 0;
        if (sv.f_flag & ST_NOSUID)
                f |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                f |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                f |= MS_NOEXEC;
        return f;
}

static int remount_readonly(const char *path) {
        if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of(path), NULL) < 0)
                return -errno;
        return 0;
}

static int mkdir_p(const char *path, mode_t mode) {
        char buf[4096];

        if (strlen(path) >= sizeof buf)
                return -ENAMETOOLONG;
        strcpy(buf, path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(buf, mode) < 0) {
                if (errno != EEXIST)
                        return -errno;
        } else if (chmod(buf, mode) < 0) /* exact, whatever the umask (the program's) */
                return -errno;
        return 0;
}

typedef struct Hierarchy {
        char name[64];          /* memory, cpu,cpuacct, unified */
        int tree_fd;
} Hierarchy;

/* The sandbox's own cgroup of each hierarchy, as the host sees it in /proc/PID/cgroup: a detached mount. */
static int open_cgroups(pid_t pid, Hierarchy *h, size_t *n) {
        char path[64], line[4096];
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        *n = 0;
        while (fgets(line, sizeof line, f) && *n < CGROUP_HIERARCHIES_MAX) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, dir[4096 + 128];
                const char *name;
                if (!c2)
                        continue;
                *c2 = '\0';
                line[strcspn(line, "\n")] = '\0';
                c2[1 + strcspn(c2 + 1, "\n")] = '\0';
                name = c1 + 1;
                if (*name == '\0')
                        name = "unified";
                else if (strneq(name, "name=", 5))
                        continue; /* named hierarchies (systemd's): not the container's business */
                if (strlen(name) >= sizeof h->name)
                        continue;
                /* The runtime splits a sandbox's cgroup (docs/cgroups.md): its memory and CPU bounds are on the
                 * sandbox's cgroup, the rest on its program child. Show the container the one with its bounds. */
                char *cg = c2 + 1;
                size_t len = strlen(cg);
                if ((strstr(name, "memory") || strstr(name, "cpu")) && !strstr(name, "cpuset") && len > 8 &&
                    streq(cg + len - 8, "/program"))
                        cg[len - 8] = '\0';
                snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s%s", name, cg);
                int fd = (int) syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | O_CLOEXEC);
                if (fd < 0) {
                        /* cpu,cpuacct may be mounted under either name alone. */
                        char first[64];
                        snprintf(first, sizeof first, "%.*s", (int) strcspn(name, ","), name);
                        snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s%s", first, cg);
                        fd = (int) syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | O_CLOEXEC);
                }
                if (fd < 0)
                        continue;
                snprintf(h[*n].name, sizeof h[*n].name, "%s", name);
                h[*n].tree_fd = fd;
                (*n)++;
        }
        fclose(f);
        return 0;
}

_Noreturn static void mounts_child(const OciBundle *b, pid_t pid, int report_fd) {
        Hierarchy h[CGROUP_HIERARCHIES_MAX];
        size_t n_h = 0;
        char path[64];
        int user_fd, mnt_fd, ipc_fd = -EBADF, r;

        if (setgroups(0, NULL) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                child_fail(report_fd, SETUP_NS, errno, -1);
        if (b->cgroup_dest && (r = open_cgroups(pid, h, &n_h)) < 0)
                child_fail(report_fd, SETUP_CGROUP, -r, -1);
        snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
        user_fd = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
        mnt_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (b->mqueue_dest) {
                snprintf(path, sizeof path, "/proc/%d/ns/ipc", pid);
                ipc_fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        if (user_fd < 0 || mnt_fd < 0 || (b->mqueue_dest && ipc_fd < 0))
                child_fail(report_fd, SETUP_NS, errno, -1);
        /* As the sandbox's root: an mqueue mount belongs to the user namespace of its IPC namespace. */
        if (setns(user_fd, CLONE_NEWUSER) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                child_fail(report_fd, SETUP_NS, errno, -1);
        if (ipc_fd >= 0 && setns(ipc_fd, CLONE_NEWIPC) < 0)
                child_fail(report_fd, SETUP_NS, errno, -1);
        if (setns(mnt_fd, CLONE_NEWNS) < 0)
                child_fail(report_fd, SETUP_NS, errno, -1);

        for (size_t i = 0; i < b->n_masked; i++) {
                struct stat st;
                if (lstat(b->masked[i], &st) < 0) {
                        if (errno == ENOENT)
                                continue;
                        child_fail(report_fd, SETUP_MASK, errno, (int) i);
                }
                if (S_ISDIR(st.st_mode))
                        r = mount("tmpfs", b->masked[i], "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
                else
                        r = mount("/dev/null", b->masked[i], NULL, MS_BIND, NULL);
                if (r < 0)
                        child_fail(report_fd, SETUP_MASK, errno, (int) i);
        }
        for (size_t i = 0; i < b->n_readonly; i++) {
                r = remount_readonly(b->readonly[i]);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        child_fail(report_fd, SETUP_READONLY, -r, (int) i);
        }
        if (b->mqueue_dest) {
                r = mkdir_p(b->mqueue_dest, 0755);
                if (r < 0 || mount("mqueue", b->mqueue_dest, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                        child_fail(report_fd, SETUP_MQUEUE, r < 0 ? -r : errno, -1);
        }
        if (b->cgroup_dest) {
                char dir[4096 + 80];
                r = mkdir_p(b->cgroup_dest, 0755);
                if (r < 0 || mount("tmpfs", b->cgroup_dest, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0)
                        child_fail(report_fd, SETUP_CGROUP, r < 0 ? -r : errno, -1);
                for (size_t i = 0; i < n_h; i++) {
                        snprintf(dir, sizeof dir, "%s/%s", b->cgroup_dest, h[i].name);
                        if (mkdir(dir, 0755) < 0 || chmod(dir, 0755) < 0 ||
                            syscall(SYS_move_mount, h[i].tree_fd, "", AT_FDCWD, dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                                child_fail(report_fd, SETUP_CGROUP, errno, -1);
                        if (b->cgroup_readonly &&
                            mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                                child_fail(report_fd, SETUP_CGROUP, errno, -1);
                        /* "cpu,cpuacct": the single names too, as symlinks (as on the host). */
                        if (strchr(h[i].name, ',')) {
                                char copy[64], *save = NULL;
                                memcpy(copy, h[i].name, sizeof copy);
                                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                                        snprintf(dir, sizeof dir, "%s/%s", b->cgroup_dest, t);
                                        (void) symlink(h[i].name, dir);
                                }
                        }
                }
                if (mount(NULL, b->cgroup_dest, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "mode=0755,size=64k") < 0)
                        child_fail(report_fd, SETUP_CGROUP, errno, -1);
        }
        /* linux.devices at another path: our node (a bind of the host's) bound there, on an empty file. */
        for (size_t i = 0; i < b->n_devices; i++) {
                char dir[300];
                snprintf(dir, sizeof dir, "%s", b->devices[i].path);
                *strrchr(dir, '/') = '\0';
                r = mkdir_p(dir, 0755);
                if (r < 0)
                        child_fail(report_fd, SETUP_DEVICE, -r, (int) i);
                int fd = open(b->devices[i].path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0666);
                if (fd < 0 || mount(b->devices[i].node, b->devices[i].path, NULL, MS_BIND, NULL) < 0)
                        child_fail(report_fd, SETUP_DEVICE, errno, (int) i);
                close(fd);
        }
        if (b->root_readonly &&
            mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | mount_flags_of("/"), NULL) < 0)
                child_fail(report_fd, SETUP_ROOT, errno, -1);
        _exit(0);
}

static void write_sysctl(const OciSysctl *sc, int i, int report_fd) {
        char path[512];
        int n = snprintf(path, sizeof path, "/proc/sys/%s", sc->key);
        if (n < 0 || (size_t) n >= sizeof path)
                child_fail(report_fd, SETUP_SYSCTL, ENAMETOOLONG, i);
        for (char *c = path + 10; *c; c++)
                if (*c == '.')
                        *c = '/';
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t len = strlen(sc->value);
        if (fd < 0 || write(fd, sc->value, len) != (ssize_t) len)
                child_fail(report_fd, SETUP_SYSCTL, errno, i);
        close(fd);
}

/* Is the sysctl KEY one of a joined namespace? */
static bool sysctl_joined(const OciBundle *b, const char *key) {
        return strneq(key, "net.", 4) ? !!b->join[OCI_JOIN_NET] : !!b->join[OCI_JOIN_IPC];
}

_Noreturn static void sysctl_child(const OciBundle *b, pid_t pid, int report_fd) {
        static const struct {
                const char *name;
                int type;
                int join;       /* its OciJoin, or -1 */
        } order[] = { { "user", CLONE_NEWUSER, -1 }, { "net", CLONE_NEWNET, OCI_JOIN_NET },
                      { "ipc", CLONE_NEWIPC, OCI_JOIN_IPC } };
        int fds[3];

        if (setgroups(0, NULL) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                child_fail(report_fd, SETUP_NS, errno, -1);

        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, order[i].name);
                fds[i] = open(path, O_RDONLY | O_CLOEXEC);
                if (fds[i] < 0)
                        child_fail(report_fd, SETUP_NS, errno, -1);
        }
        /* A joined namespace's sysctls as host root, in it (as runc: the engine that named the namespace asks);
         * its owner is not the sandbox's user namespace, whose root could not write them. */
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                if (order[i].join >= 0 && b->join[order[i].join] && setns(fds[i], order[i].type) < 0)
                        child_fail(report_fd, SETUP_NS, errno, -1);
        for (size_t i = 0; i < b->n_sysctl; i++)
                if (sysctl_joined(b, b->sysctl[i].key))
                        write_sysctl(&b->sysctl[i], (int) i, report_fd);
        /* The others as the sandbox's root, in its own namespaces. */
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                if (order[i].join >= 0 && b->join[order[i].join])
                        continue;
                if (setns(fds[i], order[i].type) < 0 || (i == 0 && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)))
                        child_fail(report_fd, SETUP_NS, errno, -1);
        }
        for (size_t i = 0; i < b->n_sysctl; i++)
                if (!sysctl_joined(b, b->sysctl[i].key))
                        write_sysctl(&b->sysctl[i], (int) i, report_fd);
        _exit(0);
}

static int run_child(const OciBundle *b, pid_t pid, bool sysctl, char *err, size_t errlen) {
        int p[2], status;
        Report rep;
        pid_t child;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        child = fork();
        if (child < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        if (child == 0) {
                close(p[0]);
                if (sysctl)
                        sysctl_child(b, pid, p[1]);
                mounts_child(b, pid, p[1]);
        }
        close(p[1]);
        do
                n = read(p[0], &rep, sizeof rep);
        while (n < 0 && errno == EINTR);
        close(p[0]);
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        if (n == sizeof rep) {
                const char *what = "";
                if (rep.step == SETUP_MASK && rep.index >= 0 && (size_t) rep.index < b->n_masked)
                        what = b->masked[rep.index];
                else if (rep.step == SETUP_READONLY && rep.index >= 0 && (size_t) rep.index < b->n_readonly)
                        what = b->readonly[rep.index];
                else if (rep.step == SETUP_SYSCTL && rep.index >= 0 && (size_t) rep.index < b->n_sysctl)
                        what = b->sysctl[rep.index].key;
                else if (rep.step == SETUP_DEVICE && rep.index >= 0 && (size_t) rep.index < b->n_devices)
                        what = b->devices[rep.index].path;
                else if (rep.step == SETUP_MQUEUE)
                        what = b->mqueue_dest;
                else if (rep.step == SETUP_CGROUP)
                        what = b->cgroup_dest;
                snprintf(err, errlen, "Cannot %s %s: %s", step_names[rep.step], what, strerror(rep.error));
                return -rep.error;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                snprintf(err, errlen, "The set-up of the container's mounts failed");
                return -EIO;
        }
        return 0;
}

int oci_setup_apply(const OciBundle *b, pid_t init_pid, char *err, size_t errlen) {
        int r;

        if (b->n_masked || b->n_readonly || b->root_readonly || b->mqueue_dest || b->cgroup_dest || b->n_devices) {
                r = run_child(b, init_pid, false, err, errlen);
                if (r < 0)
                        return r;
        }
        if (b->n_sysctl > 0) {
                r = run_child(b, init_pid, true, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}
