/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox_exec(): one more program in a sandbox that runs. The parent (host root, possibly a thread of a
 * threaded daemon) clones a short-lived helper, born in the sandbox's program cgroup (clone3
 * CLONE_INTO_CGROUP on v2; on v1 the parent moves it there before it may go on). The helper, a copy of
 * one thread that makes only system calls:
 *
 *   1. becomes non-dumpable (nothing inside can ptrace it, or open its /proc/PID/{mem,exe,fd} later),
 *      and closes every descriptor but the few it was given (the parent's fd table holds other
 *      clients' and other sandboxes' descriptors);
 *   2. joins the sandbox init's user, mount, pid, UTS, IPC, network and cgroup namespaces at once
 *      (setns() with its pidfd). Having joined the user namespace it has no capability on the host any
 *      more, but it still has host uid 0: so
 *   3. it takes the sandbox's root (uid and gid 0 inside, the sandbox's first host id) before it
 *      resolves any path: every path from here on (the pty, /etc/passwd, the working directory, the
 *      program) is resolved in the sandbox's root with the sandbox's rights, never as host root;
 *   4. opens a pty of the sandbox's own devpts for -t, reads the sandbox's /etc/passwd and /etc/group
 *      (regular files only, 1 MiB at most, the fuzzed parser of image/passwd.h) for a user name;
 *   5. clones the program with CLONE_PARENT: the program is the caller's child (it waits for it with its
 *      pidfd and gets its rusage) and lives in the sandbox's pid namespace, born in the helper's
 *      cgroup. The program's own set-up is spawn.c's program_run(), the code the sandbox's own program
 *      runs: stdio or pty, session, OOM score, bounding set, ids, capabilities, no_new_privs, working
 *      directory, fds, seccomp last, execve();
 *   6. sends the program's pid, its pidfd and the pty master to the parent and exits.
 *
 * Orphans the program leaves are reaped by the sandbox's init (the reaper of its pid namespace). A
 * timeout kills the program's session (the processes whose session is the program's: what it started
 * and that did not start a session of its own, i.e. did not daemonize). Nothing here logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "passwd.h"
#include "macro.h"
#include "runtime.h"
#include "sandbox-internal.h"
#include "time-util.h"

#define EXEC_START_TIMEOUT_USEC (60 * USEC_PER_SEC)
/* /etc/passwd and /etc/group of the sandbox, read for a user name (image/rootfs.h's bound). */
#define ETC_FILE_MAX (UINT64_C(1) << 20)
/* How long a kill of the program's session keeps looking for members that forked meanwhile. */
#define SESSION_KILL_USEC (1 * USEC_PER_SEC)

struct SandboxExec {
        Sandbox *sandbox;
        pid_t pid;
        int pidfd;
        int pty_fd;
        uint64_t start_usec;
        uint64_t timeout_usec;
        bool timed_out;
        bool killed;            /* sandbox_exec_kill() was called */
        bool collected;
        CgroupStats before;     /* the sandbox's counters just before the program was started */
};

/* What the helper says: the program started (step -1, pid), or the step that failed and its errno. */
typedef struct HelperMessage {
        int32_t step;
        int32_t error;
        int32_t pid;
        uint32_t uid, gid;      /* what a user name resolved to */
        char detail[256];       /* a message (user look-up) */
} HelperMessage;

/* Prepared by the parent before the clone; the helper only reads it (and its own copy of USER_OUT). */
typedef struct Helper {
        int init_pidfd;
        int ns_flags;
        int sock;               /* SOCK_SEQPACKET to the parent */
        int report_w;           /* the program's ExecReport pipe */
        int go_r;               /* v1: the parent moved us into the cgroup; -EBADF on v2 */
        const int *stdio;
        const char *user;
        char *passwd, *group;   /* ETC_FILE_MAX + 1 bytes each, for a user name */
        bool tty;
        int home_index;         /* envp's default HOME= entry, replaced by the user's home; -1: none */
        char home[IMAGE_USER_HOME_MAX + 6];
        uint64_t caps_set;      /* the sandbox's capabilities: uid 0's, and every program's bounding set */
        uint64_t caps_added;    /* what --cap-add named: another uid's (ambient) */
        struct rlimit rlimits[RLIM_NLIMITS]; /* the init's: what the sandbox's own program has */
        ProgramContext program;
} Helper;

/* A program of uid UID: uid 0 gets the sandbox's set as permitted and effective, another uid only what
 * --cap-add named, as ambient capabilities (docs/security.md, "Capabilities"). */
static void program_caps(ProgramContext *p, uint64_t set, uint64_t added, uint32_t uid) {
        p->cap_bounding = set;
        p->cap_permitted = uid == 0 ? set : added & set;
        p->cap_ambient = uid == 0 ? 0 : added & set;
}

static void helper_send(int sock, const HelperMessage *m, const int *fds, size_t n_fds) {
        struct iovec iov = { .iov_base = (void *) m, .iov_len = sizeof *m };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
        }
        (void) sendmsg(sock, &mh, MSG_NOSIGNAL);
}

_Noreturn static void helper_fail(const Helper *h, ChildStep step, int error) {
        HelperMessage m = { .step = step, .error = error < 0 ? -error : error };
        helper_send(h->sock, &m, NULL, 0);
        _exit(SANDBOX_EXIT_SETUP);
}

/* PATH of the sandbox (as its root, in its root): a regular file, at most ETC_FILE_MAX bytes, into BUF.
 * Missing: *RET_SIZE 0 and 0 (the resolver says what is missing). O_NONBLOCK: a FIFO planted there does not
 * hold us up. */
static int helper_read_etc(const char *path, char *buf, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        size_t n = 0;

        *ret_size = 0;
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EPERM;
        while (n <= ETC_FILE_MAX) {
                ssize_t k = read(fd, buf + n, ETC_FILE_MAX + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > ETC_FILE_MAX)
                return -EFBIG;
        *ret_size = n;
        return 0;
}

/* The helper: see the top of the file. A copy of one thread of the parent: system calls only. */
_Noreturn static void helper_run(Helper *h) {
        ProgramContext p = h->program;
        HelperMessage m = { .step = -1 };
        int keep[8], pty = -EBADF, pidfd = -EBADF, r;
        size_t n_keep = 0;
        sigset_t all;
        char go;

        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        /* Never dumpable from here on: while we hold privileges in the sandbox's namespaces, nothing in it may
         * ptrace us or open our /proc files. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                helper_fail(h, STEP_JOIN, -errno);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        keep[n_keep++] = h->init_pidfd;
        keep[n_keep++] = h->sock;
        keep[n_keep++] = h->report_w;
        keep[n_keep++] = h->go_r;
        for (size_t i = 0; i < 3; i++)
                keep[n_keep++] = h->stdio ? h->stdio[i] : -EBADF;
        r = close_all_fds_but(keep, n_keep);
        if (r < 0)
                helper_fail(h, STEP_JOIN, r);
        /* v1: in the sandbox's program cgroup once the parent says so (EOF: it could not move us). */
        if (h->go_r >= 0 && read(h->go_r, &go, 1) != 1)
                _exit(SANDBOX_EXIT_SETUP);
        /* The sandbox's resource limits (the init's), not the caller's, while we still may set them. */
        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (setrlimit(i, &h->rlimits[i]) < 0)
                        helper_fail(h, STEP_JOIN, -errno);

        /* All of the init's namespaces in one step. After it we have every capability in the sandbox's user
         * namespace, none on the host, and still host uid 0, which we give up before any path is used. */
        if (setns(h->init_pidfd, h->ns_flags) < 0)
                helper_fail(h, STEP_JOIN, -errno);
        if (raw_setresgid(0) < 0 || raw_setresuid(0) < 0)
                helper_fail(h, STEP_IDS, -errno);
        /* The id change may have made us dumpable again (it follows fs.suid_dumpable): not so. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                helper_fail(h, STEP_IDS, -errno);
        if (chdir("/") < 0)
                helper_fail(h, STEP_JOIN, -errno);

        if (h->user) {
                ImageUser u;
                size_t np = 0, ng = 0;
                r = helper_read_etc("/etc/passwd", h->passwd, &np);
                if (r >= 0)
                        r = helper_read_etc("/etc/group", h->group, &ng);
                if (r < 0)
                        helper_fail(h, STEP_LOOKUP_USER, r);
                r = image_user_resolve(h->user, np ? h->passwd : NULL, np, ng ? h->group : NULL, ng, &u, m.detail,
                                       sizeof m.detail);
                if (r < 0) {
                        m.step = STEP_LOOKUP_USER;
                        m.error = -r;
                        helper_send(h->sock, &m, NULL, 0);
                        _exit(SANDBOX_EXIT_SETUP);
                }
                if (u.uid > 65535 || u.gid > 65535)
                        helper_fail(h, STEP_LOOKUP_USER, -ERANGE);
                p.uid = u.uid;
                p.gid = u.gid;
                m.uid = u.uid;
                m.gid = u.gid;
                program_caps(&p, h->caps_set, h->caps_added, p.uid);
                /* HOME: the entry's home directory, unless the environment sets one. Our copy of envp
                 * (the parent's array, copied with our memory) points at our own buffer. */
                if (h->home_index >= 0) {
                        const char *home = u.home[0] ? u.home : p.uid == 0 ? "/root" : "/";
                        size_t k = strlen(home);
                        memcpy(h->home, "HOME=", 5);
                        memcpy(h->home + 5, home, k + 1);
                        ((char **) p.envp)[h->home_index] = h->home;
                }
        }
        if (h->tty) {
                int unlock = 0;
                pty = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
                if (pty < 0 || ioctl(pty, TIOCSPTLCK, &unlock) < 0)
                        helper_fail(h, STEP_PTY, -errno);
                p.pty_master = pty;
                p.stdio = NULL;
        }

        /* The program: our parent's child (CLONE_PARENT), in the sandbox's pid namespace and our cgroup. Its
         * exit signal is ours (SIGCHLD to that parent). */
        struct clone_args ca = {
                .flags = CLONE_PARENT | CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
        };
        pid_t pid = (pid_t) syscall(SYS_clone3, &ca, sizeof ca);
        if (pid < 0)
                helper_fail(h, STEP_FORK, -errno);
        if (pid == 0) {
                close(h->sock);
                close(h->init_pidfd);
                program_run(&p, h->report_w, -EBADF);
        }
        m.pid = pid;
        int fds[2] = { pidfd, pty };
        helper_send(h->sock, &m, fds, pty >= 0 ? 2 : 1);
        _exit(0);
}

static int poll_until(int fd, int cancel_fd, uint64_t deadline) {
        struct pollfd p[2] = {
                { .fd = fd, .events = POLLIN },
                { .fd = cancel_fd, .events = POLLIN },
        };
        for (;;) {
                uint64_t now = now_usec();
                int r;
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(p, cancel_fd >= 0 ? 2 : 1, (int) ((deadline - now + 999) / 1000));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                if (p[0].revents)
                        return 0;
                return -ECANCELED;
        }
}

static int recv_helper(int sock, HelperMessage *m, int *ret_pidfd, int *ret_pty) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        ssize_t n;

        *ret_pidfd = *ret_pty = -EBADF;
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int fds[2] = { -EBADF, -EBADF };
                        memcpy(fds, CMSG_DATA(cm), MIN(k, (size_t) 2) * sizeof(int));
                        *ret_pidfd = fds[0];
                        *ret_pty = k > 1 ? fds[1] : -EBADF;
                }
        if (n != (ssize_t) sizeof *m) {
                *ret_pidfd = safe_close(*ret_pidfd);
                *ret_pty = safe_close(*ret_pty);
                return -EBADMSG;
        }
        return 0;
}

static bool env_sets(char *const *env, size_t n, const char *name) {
        size_t k = strlen(name);
        for (size_t i = 0; i < n; i++)
                if (strncmp(env[i], name, k) == 0 && env[i][k] == '=')
                        return true;
        return false;
}

static void reap(pid_t pid) {
        while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
                ;
}

int sandbox_exec(Sandbox *s, const SandboxExecOptions *o, SandboxExec **ret, SandboxError *err) {
        _cleanup_close_ int sock_r = -EBADF, sock_w = -EBADF, report_r = -EBADF, report_w = -EBADF;
        _cleanup_close_ int go_r = -EBADF, go_w = -EBADF, cgroup_fd = -EBADF, helper_pidfd = -EBADF;
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        char **envp = NULL;
        const SandboxSpec *spec = s->spec;
        const char *argv0 = o->n_argv > 0 ? o->argv[0] : "";
        HelperMessage m = {};
        int pidfd = -EBADF, pty = -EBADF, r;
        uint64_t deadline, trace_t0 = getenv("SANDBOX_TRACE") ? now_usec() : 0;
        pid_t helper;

        if (s->finished || s->collected || s->pidfd < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The sandbox has ended");
        if (o->n_argv == 0 || !o->argv || !o->argv[0] || !*o->argv[0])
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "A command is required");
        if (o->workdir && o->workdir[0] != '/')
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "--workdir must be an absolute path");

        /* The counters before anything of this program exists: a program refused a fork at once (a
         * shell at the pids bound ends within milliseconds) must still count as having hit it. */
        CgroupStats before = {};
        if (s->cgroup)
                (void) cgroup_get_stats(s->cgroup, &before);

        uint32_t uid = spec->uid, gid = spec->gid;
        envp = sandbox_build_env(spec, o->env, o->n_env, uid);
        if (!envp)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        if (o->user) {
                passwd = malloc(ETC_FILE_MAX + 1);
                group = malloc(ETC_FILE_MAX + 1);
                if (!passwd || !group) {
                        sandbox_strv_free(envp);
                        return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
                }
        }

        Helper h = {
                .init_pidfd = s->pidfd,
                /* --net host: the init is in the host's network namespace; joining it again is harmless. */
                .ns_flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                            CLONE_NEWCGROUP,
                .sock = -EBADF,
                .report_w = -EBADF,
                .go_r = -EBADF,
                .stdio = o->tty ? NULL : o->stdio,
                .user = o->user,
                .passwd = passwd,
                .group = group,
                .tty = o->tty,
                .program = {
                        .argv = o->argv,
                        .envp = envp,
                        .uid = uid,
                        .gid = gid,
                        .workdir = o->workdir ?: spec->workdir,
                        .filter = s->filter,
                        .stdio = o->tty ? NULL : o->stdio,
                        .pty_master = -EBADF,
                        .new_session = true,
                },
        };
        h.caps_set = s->cap_set;
        h.caps_added = spec_capabilities_added(spec);
        for (int i = 0; i < RLIM_NLIMITS; i++)
                if (prlimit(s->pid, i, NULL, &h.rlimits[i]) < 0) {
                        sandbox_strv_free(envp);
                        return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot read the sandbox's resource limits: %m");
                }
        /* With a user name the ids are known only in the helper, which sets the capabilities then. */
        program_caps(&h.program, h.caps_set, h.caps_added, uid);
        h.home_index = -1;
        if (o->user && !env_sets(spec->env, spec->n_env, "HOME") && !env_sets(o->env, o->n_env, "HOME"))
                for (size_t i = 0; envp[i]; i++)
                        if (strncmp(envp[i], "HOME=", 5) == 0)
                                h.home_index = (int) i;
        if (!o->tty && !o->stdio) {
                static const int own[3] = { 0, 1, 2 };
                h.stdio = h.program.stdio = own;
        }

        {
                int sp[2], rp[2];
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "socketpair: %m");
                        goto fail;
                }
                sock_r = sp[0];
                sock_w = sp[1];
                if (pipe2(rp, O_CLOEXEC) < 0) {
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "pipe: %m");
                        goto fail;
                }
                report_r = rp[0];
                report_w = rp[1];
        }
        h.sock = sock_w;
        h.report_w = report_w;

        /* v2: born in the sandbox's program cgroup, as the init was (no migration); the program inherits it.
         * v1: moved there by us before it may go on. */
        cgroup_fd = s->cgroup ? cgroup_child_v2_fd(s->cgroup, CGROUP_CHILD_PROGRAM) : -EBADF;
        if (cgroup_fd < 0) {
                int g[2];
                if (pipe2(g, O_CLOEXEC) < 0) {
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "pipe: %m");
                        goto fail;
                }
                go_r = g[0];
                go_w = g[1];
                h.go_r = go_r;
        }

        struct clone_args ca = {
                .flags = CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t) (uintptr_t) &helper_pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = cgroup_fd >= 0 ? (uint64_t) cgroup_fd : 0,
        };
        uint64_t started = now_usec();
        helper = (pid_t) syscall(SYS_clone3, &ca, sizeof ca);
        if (helper < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot start a program in the sandbox: %s",
                                      errno == EAGAIN ? "its process limit is reached" : strerror(errno));
                goto fail;
        }
        if (helper == 0)
                helper_run(&h);
        sock_w = safe_close(sock_w);
        report_w = safe_close(report_w);
        go_r = safe_close(go_r);
        if (go_w >= 0) {
                r = cgroup_child_attach(s->cgroup, CGROUP_CHILD_PROGRAM, helper);
                if (r < 0 || write(go_w, "g", 1) != 1) {
                        (void) syscall(SYS_pidfd_send_signal, helper_pidfd, SIGKILL, NULL, 0);
                        reap(helper);
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot move a program into the sandbox's "
                                              "cgroup: %s", strerror(r < 0 ? -r : errno));
                        goto fail;
                }
                go_w = safe_close(go_w);
        }

        deadline = started + EXEC_START_TIMEOUT_USEC;
        r = poll_until(sock_r, o->cancel_fd, deadline);
        if (r >= 0)
                r = recv_helper(sock_r, &m, &pidfd, &pty);
        if (r < 0) {
                (void) syscall(SYS_pidfd_send_signal, helper_pidfd, SIGKILL, NULL, 0);
                reap(helper);
                if (r == -ECANCELED)
                        sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The start was cancelled");
                else if (r == -ETIMEDOUT)
                        sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The program did not start within %d s",
                                          (int) (EXEC_START_TIMEOUT_USEC / USEC_PER_SEC));
                else
                        sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The program's helper ended during set-up%s%s",
                                          r == -EAGAIN ? "" : ": ", r == -EAGAIN ? "" : strerror(-r));
                goto fail;
        }
        reap(helper);
        if (m.step >= 0) {
                if (m.step == STEP_LOOKUP_USER && m.detail[0]) {
                        /* The resolver speaks of an image's files; these are the sandbox's. */
                        char detail[sizeof m.detail + 16], *at;
                        m.detail[sizeof m.detail - 1] = '\0';
                        snprintf(detail, sizeof detail, "%s", m.detail);
                        at = strstr(detail, "the image's");
                        if (at)
                                snprintf(at, sizeof detail - (size_t) (at - detail), "the sandbox's%s",
                                         strstr(m.detail, "the image's") + strlen("the image's"));
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "--user '%s': %s", o->user, detail);
                } else if (m.step == STEP_LOOKUP_USER)
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "--user '%s': cannot read the sandbox's "
                                              "/etc/passwd or /etc/group: %s", o->user,
                                              m.error == EPERM ? "not a regular file" :
                                              m.error == EFBIG ? "larger than 1 MiB" : strerror(m.error));
                else if (m.step == STEP_FORK && m.error == EAGAIN)
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the program: the sandbox's "
                                              "process limit is reached");
                else
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Failed to %s: %s", child_step_to_string(m.step),
                                              strerror(m.error));
                goto fail;
        }
        if (pidfd < 0 || m.pid <= 0 || (o->tty && pty < 0)) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The program's helper said something unexpected");
                goto fail_program;
        }

        /* The program reports a failure before execve() on the report pipe; execve() closes it. */
        {
                ExecReport rep;
                ssize_t n = 0;
                r = poll_until(report_r, o->cancel_fd, deadline);
                if (r >= 0) {
                        do
                                n = read(report_r, &rep, sizeof rep);
                        while (n < 0 && errno == EINTR);
                }
                if (r < 0) {
                        sandbox_set_error(err, SANDBOX_EXIT_SETUP, r == -ECANCELED ? "The start was cancelled" :
                                          "The program did not start within %d s",
                                          (int) (EXEC_START_TIMEOUT_USEC / USEC_PER_SEC));
                        goto fail_program;
                }
                if (n == (ssize_t) sizeof rep) {
                        if (rep.step < 0 && rep.error == ENOENT)
                                r = sandbox_set_error(err, SANDBOX_EXIT_NOT_FOUND, "%s: command not found", argv0);
                        else if (rep.step < 0)
                                r = sandbox_set_error(err, SANDBOX_EXIT_CANNOT_EXEC, "%s: cannot execute: %s", argv0,
                                                      strerror(rep.error));
                        else if (rep.step == STEP_WORKDIR)
                                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Failed to %s '%s': %s",
                                                      child_step_to_string(rep.step),
                                                      o->workdir ?: spec->workdir ?: "/", strerror(rep.error));
                        else
                                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Failed to %s: %s",
                                                      child_step_to_string(rep.step), strerror(rep.error));
                        r = -EINVAL;
                        goto fail_program;
                }
        }

        SandboxExec *e = calloc(1, sizeof *e);
        if (!e) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
                goto fail_program;
        }
        *e = (SandboxExec) {
                .sandbox = s,
                .pid = m.pid,
                .pidfd = pidfd,
                .pty_fd = pty,
                .start_usec = started,
                .timeout_usec = o->timeout_usec,
                .before = before,
        };
        sandbox_strv_free(envp);
        if (trace_t0)
                /* SANDBOX_TRACE: see sandbox_start_with(). */
                (void) dprintf(STDERR_FILENO, "sandbox-trace: exec %s total=%" PRIu64 "\n", s->id, now_usec() - trace_t0);
        *ret = e;
        return 0;

fail_program:
        if (pidfd >= 0) {
                (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                if (m.pid > 0)
                        reap(m.pid);
        }
        safe_close(pidfd);
        safe_close(pty);
fail:
        sandbox_strv_free(envp);
        return r < 0 ? r : -EINVAL;
}

pid_t sandbox_exec_pid(const SandboxExec *e) {
        return e->pid;
}

int sandbox_exec_pidfd(const SandboxExec *e) {
        return e->pidfd;
}

int sandbox_exec_pty_fd(const SandboxExec *e) {
        return e->pty_fd;
}

int sandbox_exec_signal(SandboxExec *e, int sig) {
        if (e->collected || e->pidfd < 0)
                return -ESRCH;
        return RET_NERRNO((int) syscall(SYS_pidfd_send_signal, e->pidfd, sig, NULL, 0));
}

/* The session of host pid PID as /proc says it (in our pid namespace), or -1. */
static pid_t session_of(pid_t pid) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        /* "pid (comm) state ppid pgrp session ...": comm may hold anything, the last ')' ends it. */
        char *p = strrchr(buf, ')');
        int state_ppid_pgrp_session[4] = {};
        char st;
        if (!p || sscanf(p + 1, " %c %d %d %d", &st, &state_ppid_pgrp_session[1], &state_ppid_pgrp_session[2],
                         &state_ppid_pgrp_session[3]) != 4)
                return -1;
        return state_ppid_pgrp_session[3];
}

void sandbox_exec_kill(SandboxExec *e) {
        uint64_t deadline = now_usec() + SESSION_KILL_USEC;

        if (e->collected)
                return;
        e->killed = true;
        (void) sandbox_exec_signal(e, SIGKILL);
        if (!e->sandbox->cgroup)
                return;
        /* Members of the program's session: what it started, where it did not start a session of its own. The
         * program is our child and not yet reaped, so its pid (the session's id) is not someone else's. */
        for (;;) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0, found = 0;
                if (cgroup_child_procs(e->sandbox->cgroup, CGROUP_CHILD_PROGRAM, &pids, &n) < 0)
                        return;
                for (size_t i = 0; i < n; i++)
                        if (pids[i] != e->pid && session_of(pids[i]) == e->pid) {
                                (void) kill(pids[i], SIGKILL);
                                found++;
                        }
                if (found == 0 || now_usec() >= deadline)
                        return;
                (void) usleep(2000);
        }
}

uint64_t sandbox_exec_deadline(const SandboxExec *e) {
        return e->timeout_usec ? e->start_usec + e->timeout_usec : 0;
}

int sandbox_exec_collect(SandboxExec *e, bool kill, SandboxResult *ret) {
        SandboxResult res = { .status = SANDBOX_EXIT_SETUP };
        CgroupStats after = {};
        struct rusage ru = {};
        int status = 0;
        pid_t p;

        if (e->collected)
                return -EALREADY;
        if ((kill || e->killed) && e->timeout_usec && now_usec() >= sandbox_exec_deadline(e))
                e->timed_out = true;
        if (kill)
                sandbox_exec_kill(e);
        do
                p = wait4(e->pid, &status, __WALL, &ru);
        while (p < 0 && errno == EINTR);
        e->collected = true;
        res.wall_usec = now_usec() - e->start_usec;
        if (p == e->pid) {
                if (WIFEXITED(status)) {
                        res.exit_code = WEXITSTATUS(status);
                        res.status = res.exit_code;
                } else if (WIFSIGNALED(status)) {
                        res.signal = WTERMSIG(status);
                        res.status = 128 + res.signal;
                }
        }
        res.cpu_usec = (uint64_t) ru.ru_utime.tv_sec * USEC_PER_SEC + (uint64_t) ru.ru_utime.tv_usec +
                       (uint64_t) ru.ru_stime.tv_sec * USEC_PER_SEC + (uint64_t) ru.ru_stime.tv_usec;
        res.max_rss = ru.ru_maxrss > 0 ? (uint64_t) ru.ru_maxrss * 1024 : 0;
        if (e->sandbox->cgroup && cgroup_get_stats(e->sandbox->cgroup, &after) >= 0) {
                res.memory_peak = after.memory_peak;
                res.pids_limit_hit = after.pids_max_events > e->before.pids_max_events;
                if (res.signal == SIGKILL && !e->timed_out && after.oom_kills > e->before.oom_kills)
                        res.limit = SANDBOX_LIMIT_MEMORY;
        }
        res.disk_limit_hit = sandbox_quota_was_hit(e->sandbox);
        res.host_uid = e->sandbox->host_first;
        if (e->timed_out) {
                res.limit = SANDBOX_LIMIT_TIMEOUT;
                res.status = SANDBOX_EXIT_TIMEOUT;
                if (!res.signal) {
                        res.signal = SIGKILL;
                        res.exit_code = 0;
                }
        } else if (res.limit == SANDBOX_LIMIT_MEMORY)
                res.status = SANDBOX_EXIT_OOM;
        if (ret)
                *ret = res;
        return 0;
}

SandboxExec *sandbox_exec_free(SandboxExec *e) {
        if (!e)
                return NULL;
        if (!e->collected)
                (void) sandbox_exec_collect(e, true, NULL);
        safe_close(e->pidfd);
        safe_close(e->pty_fd);
        free(e);
        return NULL;
}
