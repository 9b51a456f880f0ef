/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox_copy_*(): files in and out of a live sandbox; see sandbox-copy.h. The parent (host root,
 * possibly a thread of a threaded daemon) finds the sandbox-copy helper (copy/sandbox-copy.c) and clones
 * a process born in the sandbox's program cgroup (clone3 CLONE_INTO_CGROUP on v2; on v1 moved there
 * before it may go on), which, a copy of one thread making only system calls, puts its descriptors in
 * place (0/1: the client's data and /dev/null, 2: the error pipe, 3: the init's pidfd), closes every
 * other one (the parent's table holds other clients' descriptors), asks for SIGKILL when its parent
 * thread ends, and executes the helper with an empty environment. The helper joins the sandbox and does
 * the copy as the sandbox's root. Nothing here logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "macro.h"
#include "sandbox-copy.h"
#include "sandbox-internal.h"

struct SandboxCopy {
        pid_t pid;
        int pidfd;
        int err_fd;     /* the helper's stderr: its reason */
        bool reaped;
};

/* sandbox-copy next to us (installed in the libexec directory, or a build tree's copy/), else the
 * installed one. */
static int find_helper(char *buf, size_t size) {
        static const char *const rel[] = { "sandbox-copy", "../copy/sandbox-copy", "../../copy/sandbox-copy",
                                           "../libexec/sandbox/sandbox-copy" };
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        for (size_t i = 0; i < ELEMENTSOF(rel); i++) {
                                int k = snprintf(buf, size, "%s/%s", self, rel[i]);
                                if (k > 0 && (size_t) k < size && access(buf, X_OK) == 0)
                                        return 0;
                        }
                }
        }
        snprintf(buf, size, "%s/sandbox-copy", SANDBOX_LIBEXECDIR);
        return access(buf, X_OK) < 0 ? -errno : 0;
}

/* The child: system calls only. FDS: what becomes 0, 1, 2 and 3, each a descriptor >= 4. */
_Noreturn static void child_exec(const char *helper, char *const argv[], const int fds[4], int go_r) {
        static char *const envp[] = { NULL };
        int keep[5] = { 0, 1, 2, 3, -EBADF };
        char go;

        for (int i = 0; i < 4; i++)
                if (dup2(fds[i], i) < 0)
                        _exit(127);
        /* The gate (>= 4, like every source above) stays open, and closes at execve (CLOEXEC). */
        keep[4] = go_r;
        if (close_all_fds_but(keep, 5) < 0)
                _exit(127);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        /* v1: in the sandbox's program cgroup once the parent says so (EOF: it could not move us). */
        if (go_r >= 0 && read(go_r, &go, 1) != 1)
                _exit(127);
        execve(helper, argv, envp);
        _exit(127);
}

static int dup_high(int fd) {
        return fcntl(fd, F_DUPFD_CLOEXEC, 4);
}

int sandbox_copy_start(Sandbox *s, SandboxCopyDirection direction, const char *path, int data_fd, SandboxCopy **ret,
                       SandboxError *err) {
        _cleanup_close_ int null_fd = -EBADF, data = -EBADF, init = -EBADF, err_r = -EBADF, err_w = -EBADF;
        _cleanup_close_ int go_r = -EBADF, go_w = -EBADF, cgroup_fd = -EBADF, pidfd = -EBADF;
        char helper[PATH_MAX];
        int r;

        if (direction < 0 || direction >= _SANDBOX_COPY_DIRECTION_MAX)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Bad copy direction");
        if (!path || path[0] != '/' || strlen(path) >= PATH_MAX) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The path in the sandbox must be absolute and shorter "
                                  "than %d bytes", PATH_MAX);
                return -EINVAL;
        }
        if (s->finished || s->collected || s->pidfd < 0) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The sandbox has ended");
                return -ESRCH;
        }
        r = find_helper(helper, sizeof helper);
        if (r < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot find the sandbox-copy helper: %s",
                                         strerror(-r));

        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "pipe: %m");
        err_r = p[0];
        err_w = p[1];
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        data = dup_high(data_fd);
        init = dup_high(s->pidfd);
        if (null_fd < 0 || data < 0 || init < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot prepare the helper's descriptors: %m");
        int null_high = dup_high(null_fd), err_high = dup_high(err_w);
        if (null_high < 0 || err_high < 0) {
                safe_close(null_high);
                safe_close(err_high);
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot prepare the helper's descriptors: %m");
        }
        safe_close(null_fd);
        null_fd = null_high;
        safe_close(err_w);
        err_w = err_high;

        int fds[4] = {
                direction == SANDBOX_COPY_IN ? data : null_fd,
                direction == SANDBOX_COPY_OUT ? data : null_fd,
                err_w,
                init,
        };
        char *const argv[] = { (char *) "sandbox-copy", (char *) (direction == SANDBOX_COPY_IN ? "in" : "out"),
                               (char *) path, NULL };

        cgroup_fd = s->cgroup ? cgroup_child_v2_fd(s->cgroup, CGROUP_CHILD_PROGRAM) : -EBADF;
        if (cgroup_fd < 0 && s->cgroup) {
                int g[2];
                if (pipe2(g, O_CLOEXEC) < 0)
                        return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "pipe: %m");
                go_r = dup_high(g[0]);
                safe_close(g[0]);
                go_w = g[1];
                if (go_r < 0)
                        return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "pipe: %m");
        }

        struct clone_args ca = {
                .flags = CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = cgroup_fd >= 0 ? (uint64_t) cgroup_fd : 0,
        };
        pid_t pid = (pid_t) syscall(SYS_clone3, &ca, sizeof ca);
        if (pid < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the copy helper: %s",
                                         errno == EAGAIN ? "the sandbox's process limit is reached" : strerror(errno));
        if (pid == 0)
                child_exec(helper, argv, fds, go_r);

        if (go_w >= 0) {
                r = cgroup_child_attach(s->cgroup, CGROUP_CHILD_PROGRAM, pid);
                if (r < 0 || write(go_w, "g", 1) != 1) {
                        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                        while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
                                ;
                        return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot move the copy helper into the "
                                                 "sandbox's cgroup: %s", strerror(r < 0 ? -r : errno));
                }
        }

        SandboxCopy *c = calloc(1, sizeof *c);
        if (!c) {
                (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
                        ;
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        }
        c->pid = pid;
        c->pidfd = TAKE_FD(pidfd);
        c->err_fd = TAKE_FD(err_r);
        *ret = c;
        return 0;
}

int sandbox_copy_pidfd(const SandboxCopy *c) {
        return c->pidfd;
}

void sandbox_copy_kill(SandboxCopy *c) {
        if (c && !c->reaped)
                (void) syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
}

int sandbox_copy_finish(SandboxCopy *c, SandboxError *err) {
        siginfo_t si = {};
        char msg[sizeof err->message] = "";
        size_t n = 0;

        if (c->reaped)
                return -ECHILD;
        /* Its end first, then its reason: one line, written before it exited, waiting in the pipe. Read
         * without blocking, so that a copy of the pipe's other end elsewhere cannot hold us up. */
        while (waitid(P_PIDFD, (id_t) c->pidfd, &si, WEXITED) < 0)
                if (errno != EINTR)
                        return -errno;
        c->reaped = true;
        (void) fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
        for (;;) {
                ssize_t k = read(c->err_fd, msg + n, sizeof msg - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (n >= sizeof msg - 1)
                        break;
        }
        msg[n] = '\0';
        while (n > 0 && msg[n - 1] == '\n')
                msg[--n] = '\0';
        if (si.si_code == CLD_EXITED && si.si_status == 0)
                return 0;
        if (si.si_code == CLD_EXITED && si.si_status == 127 && n == 0) {
                sandbox_set_error(err, 1, "the copy helper could not be started");
                return -EIO;
        }
        if (si.si_code == CLD_EXITED) {
                sandbox_set_error(err, 1, "%s", n > 0 ? msg : "the copy helper failed");
                return -EIO;
        }
        sandbox_set_error(err, 1, "the copy helper was killed by signal %d", si.si_status);
        return -EINTR;
}

SandboxCopy *sandbox_copy_free(SandboxCopy *c) {
        if (!c)
                return NULL;
        if (!c->reaped) {
                siginfo_t si;
                sandbox_copy_kill(c);
                while (waitid(P_PIDFD, (id_t) c->pidfd, &si, WEXITED) < 0 && errno == EINTR)
                        ;
        }
        safe_close(c->pidfd);
        safe_close(c->err_fd);
        free(c);
        return NULL;
}

int sandbox_copy(Sandbox *s, SandboxCopyDirection direction, const char *path, int data_fd, SandboxError *err) {
        SandboxCopy *c = NULL;
        int r = sandbox_copy_start(s, direction, path, data_fd, &c, err);
        if (r < 0)
                return r;
        r = sandbox_copy_finish(c, err);
        sandbox_copy_free(c);
        return r;
}
