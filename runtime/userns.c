/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The user namespaces that idmapped binds (--bind SRC:DST:idmap) use as their idmapping. The parent's
 * side, as host root, before the sandbox exists. mount_setattr(MOUNT_ATTR_IDMAP) takes a user
 * namespace and reads only its maps: an id on disk is looked up as an id inside that namespace and
 * shown as the host id it maps to. We make one with a single line per map, FROM (the source's owner on
 * disk) to TO (the host id of the sandbox's root), so that files of SRC's owner show as root's inside,
 * and what root inside creates is SRC's owner's on disk; no other id is mapped.
 *
 * A user namespace needs a process to be created in: a short-lived child cloned with CLONE_NEWUSER
 * waits on a pipe while we write its maps (as host root we may map any host ids) and open its
 * /proc/PID/ns/user, then it exits when we close the pipe. The child is a copy of a possibly threaded
 * process (sandboxd's workers): it does nothing but a read() and _exit(). Nothing here logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "runtime.h"

static int write_map(pid_t pid, const char *name, unsigned long from, unsigned long to, unsigned long count) {
        _cleanup_close_ int fd = -EBADF;
        char path[64], line[64];
        int n;

        snprintf(path, sizeof path, "/proc/%d/%s", (int) pid, name);
        n = snprintf(line, sizeof line, "%lu %lu %lu\n", from, to, count);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, line, (size_t) n) != n)
                return negative_errno();
        return 0;
}

static int make_userns(uid_t from_uid, gid_t from_gid, uid_t to_uid, gid_t to_gid, unsigned count, int *ret_fd) {
        _cleanup_close_ int rd = -EBADF, wr = -EBADF, ns = -EBADF;
        char path[64];
        int p[2], r;
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        rd = p[0];
        wr = p[1];
        /* A plain copy of this process (no fork handlers, see spawn.c) in a new user namespace. */
        pid = (pid_t) syscall(SYS_clone, (unsigned long) (CLONE_NEWUSER | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char c;
                (void) syscall(SYS_close, p[1]);
                /* EOF when the parent is done with us (or dies). */
                (void) syscall(SYS_read, p[0], &c, 1UL);
                syscall(SYS_exit_group, 0);
        }
        r = write_map(pid, "uid_map", from_uid, to_uid, count);
        if (r >= 0)
                r = write_map(pid, "gid_map", from_gid, to_gid, count);
        if (r >= 0) {
                snprintf(path, sizeof path, "/proc/%d/ns/user", (int) pid);
                ns = open(path, O_RDONLY | O_CLOEXEC);
                if (ns < 0)
                        r = -errno;
        }
        wr = safe_close(wr);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(ns);
        return 0;
}

int userns_make_idmapping(uid_t from_uid, gid_t from_gid, uid_t to_uid, gid_t to_gid, int *ret_fd) {
        return make_userns(from_uid, from_gid, to_uid, to_gid, 1, ret_fd);
}

int userns_make_range(uid_t to_uid, gid_t to_gid, unsigned count, int *ret_fd) {
        return make_userns(0, 0, to_uid, to_gid, count, ret_fd);
}
