/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The child's side of clone(): the sandbox's PID 1. It runs as root of the new user namespace
 * (an unprivileged range on the host), builds the root, starts the program and then stays as a
 * small init: it reaps orphans, forwards the signals the parent sends, and reports the program's
 * end. Each step that can fail reports (step, errno) over the status socket and exits.
 *
 * The order matters and is the one in docs/security.md: namespaces (made by clone), ids, mounts,
 * pivot_root, network, then for the program: terminal, bounding set, ids, capabilities (the
 * sandbox's own set, or none), no_new_privs, fds, and the seccomp filter last, just before execve().
 *
 * The parent may be a thread of a multi-threaded process (sandboxd starts sandboxes on worker
 * threads). clone3() copied only that thread, with a snapshot of memory in which another thread may
 * have held a lock (malloc's, stdio's, glibc's thread list). So nothing here allocates, logs or takes
 * a lock: plain system calls and async-signal-safe functions only. glibc's fork() and set*id()
 * wrappers are avoided for that reason (fork() takes malloc's locks, set*id() signals the threads it
 * believes exist); the raw system calls below act on this process alone, which is all there is.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "macro.h"
#include "runtime.h"
#include "sandbox.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static const char *const step_names[_STEP_MAX] = {
        [STEP_SYNC] = "wait for the parent",
        [STEP_IDS] = "become root of the user namespace",
        [STEP_CGROUP_NS] = "enter a cgroup namespace",
        [STEP_HOSTNAME] = "set the host name",
        [STEP_PROPAGATION] = "make mounts private",
        [STEP_ROOT] = "attach the union root",
        [STEP_USR] = "mount /usr",
        [STEP_PROC] = "mount /proc",
        [STEP_DEV] = "set up /dev",
        [STEP_SYS] = "mount /sys",
        [STEP_TMP] = "mount /tmp",
        [STEP_RESOLV] = "bind-mount /etc/resolv.conf",
        [STEP_BIND] = "bind-mount",
        [STEP_TMPFS] = "mount a tmpfs on",
        [STEP_PIVOT] = "switch to the new root",
        [STEP_LOOPBACK] = "bring up the loopback interface",
        [STEP_PTY] = "open a terminal",
        [STEP_FORK] = "start the program's process",
        [STEP_OOM_SCORE] = "reset the program's OOM score",
        [STEP_USER] = "switch to the requested user",
        [STEP_CAPS] = "set the program's capabilities",
        [STEP_WORKDIR] = "change to the working directory",
        [STEP_SECCOMP] = "install the seccomp filter",
        [STEP_SESSION] = "leave the caller's session",
        [STEP_JOIN] = "join the sandbox's namespaces",
        [STEP_LOOKUP_USER] = "look the user up in the sandbox's /etc/passwd",
};

const char *child_step_to_string(ChildStep step) {
        return step >= 0 && step < _STEP_MAX ? step_names[step] : "set up";
}

/* setresuid()/setresgid() for this process, which has one thread (see the top of the file). */
int raw_setresgid(gid_t gid) {
#ifdef SYS_setresgid32
        return (int) syscall(SYS_setresgid32, gid, gid, gid);
#else
        return (int) syscall(SYS_setresgid, gid, gid, gid);
#endif
}

int raw_setresuid(uid_t uid) {
#ifdef SYS_setresuid32
        return (int) syscall(SYS_setresuid32, uid, uid, uid);
#else
        return (int) syscall(SYS_setresuid, uid, uid, uid);
#endif
}

/* fork() without glibc's fork handlers: a plain copy of this (single-threaded) process. */
static pid_t raw_fork(void) {
        return (pid_t) syscall(SYS_clone, (unsigned long) SIGCHLD, 0UL, 0UL, 0UL, 0UL);
}

static void sort_fds(int *fds, size_t n) {
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
                        int t = fds[j];
                        fds[j] = fds[j - 1];
                        fds[j - 1] = t;
                }
}

int close_all_fds_but(int *keep, size_t n) {
        unsigned from = 3;

        sort_fds(keep, n);
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < (int) from)
                        continue;
                if ((unsigned) keep[i] > from && syscall(SYS_close_range, from, (unsigned) keep[i] - 1, 0U) < 0)
                        return -errno;
                from = (unsigned) keep[i] + 1;
        }
        return RET_NERRNO((int) syscall(SYS_close_range, from, ~0U, 0U));
}

/* The fd table came whole from the parent: in a daemon it holds other clients' connections and the
 * descriptors of other sandboxes being started (their union mounts, status sockets, pidfds). A copy
 * of another sandbox's detached union would keep its FUSE connection alive, a copy of its status
 * socket would hide its init's death. Close everything but stdio and what this sandbox needs. */
static int close_other_fds(const ChildContext *c) {
        int keep[7 + SPEC_MOUNTS_MAX];
        size_t n = 0;

        keep[n++] = c->status_fd;
        for (size_t i = 0; i < 3; i++)
                keep[n++] = c->stdio[i];
        keep[n++] = c->union_fd;
        keep[n++] = c->usr_fd;
        keep[n++] = c->resolv_fd;
        for (size_t i = 0; i < c->spec->n_binds && i < SPEC_MOUNTS_MAX; i++)
                keep[n++] = c->binds[i].tree_fd;
        return close_all_fds_but(keep, n);
}

static void send_message(int fd, const ChildMessage *m, int pass_fd) {
        struct iovec iov = { .iov_base = (void *) m, .iov_len = sizeof *m };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (pass_fd >= 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof control.buf;
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        }
        (void) sendmsg(fd, &mh, MSG_NOSIGNAL);
}

_Noreturn static void fail(const ChildContext *c, ChildStep step, int error, int detail) {
        ChildMessage m = {
                .type = CHILD_SETUP_FAILED,
                .step = step,
                .error = error < 0 ? -error : error,
                .detail = detail,
        };
        send_message(c->status_fd, &m, -EBADF);
        _exit(SANDBOX_EXIT_SETUP);
}

_Noreturn static void program_fail(int report_fd, ChildStep step, int error) {
        ExecReport rep = { .step = step, .error = error < 0 ? -error : error };
        (void) !write(report_fd, &rep, sizeof rep);
        _exit(SANDBOX_EXIT_SETUP);
}

/* Keep only the capabilities in KEEP in the bounding set: nothing outside it can ever come back, not
 * even through a file's capabilities or a set-uid binary (no_new_privs and nosuid forbid those too). */
static int limit_bounding_set(uint64_t keep) {
        for (unsigned long cap = 0;; cap++) {
                if (cap < 64 && (keep & (UINT64_C(1) << cap)))
                        continue;
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno == EINVAL) /* past the last capability this kernel knows */
                                return cap > 0 ? 0 : -EINVAL;
                        return -errno;
                }
        }
}

static int drop_bounding_set(void) {
        return limit_bounding_set(0);
}

/* Permitted and effective PERMITTED, inheritable and ambient AMBIENT (a subset of it); the rest
 * cleared. */
static int set_capabilities(uint64_t permitted, uint64_t ambient) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {
                { .effective = (uint32_t) permitted, .permitted = (uint32_t) permitted,
                  .inheritable = (uint32_t) ambient },
                { .effective = (uint32_t) (permitted >> 32), .permitted = (uint32_t) (permitted >> 32),
                  .inheritable = (uint32_t) (ambient >> 32) },
        };

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                return -errno;
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        for (unsigned long cap = 0; cap < 64; cap++)
                if ((ambient & (UINT64_C(1) << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                        return -errno;
        return 0;
}

static int clear_capabilities(void) {
        return set_capabilities(0, 0);
}

static int loopback_up(void) {
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {};

        if (s < 0)
                return -errno;
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        return RET_NERRNO(ioctl(s, SIOCSIFFLAGS, &ifr));
}

/* mkdir -p PATH (absolute, at most SPEC_STRING_MAX bytes) in our root, as root of the sandbox: an image's
 * WorkingDir that its layers lack (docker makes it too). No allocation: a copy on our stack. */
static int make_workdir(const char *path) {
        char buf[SPEC_STRING_MAX];
        size_t n = strnlen(path, sizeof buf);

        if (n == 0 || n >= sizeof buf || path[0] != '/')
                return -EINVAL;
        memcpy(buf, path, n + 1);
        for (char *p = buf + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                if (p > buf + 1 && p[-1] != '/' && mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = c;
                if (c == '\0')
                        return 0;
        }
}

/* A sandbox made ahead (deferred), while it waits for its program: look up now what the start of every
 * dynamically linked program looks up in the root (the symlinks to /usr, the loader's preload list, which
 * is usually missing, and its cache, read once), so that the program finds them in the kernel's caches
 * (the union gives entries, symlinks and pages long timeouts) instead of asking the union's server for
 * each: about a dozen round trips less on the request's path. Lookups and one read: nothing changes in the
 * sandbox, and what fails is ignored (the program meets the same failure). No allocation (see the top). */
static void warm_loader_paths(void) {
        static const char *const links[] = { "/bin", "/sbin", "/lib", "/lib64" };
        char buf[4096];
        int fd;

        for (size_t i = 0; i < ELEMENTSOF(links); i++)
                (void) readlink(links[i], buf, sizeof buf);
        (void) access("/etc/ld.so.preload", F_OK);
        fd = open("/etc/ld.so.cache", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return;
        for (size_t total = 0; total < (size_t) 16 << 20;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n <= 0)
                        break;
                total += (size_t) n;
        }
        safe_close(fd);
}

/* Make fds 0, 1, 2 the program's stdio without clobbering one source with another. */
static int install_stdio(const int stdio[3]) {
        int tmp[3];

        for (int i = 0; i < 3; i++) {
                tmp[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
                if (tmp[i] < 0)
                        return -errno;
        }
        for (int i = 0; i < 3; i++) {
                if (dup2(tmp[i], i) < 0)
                        return -errno;
                safe_close(tmp[i]);
        }
        return 0;
}

/* The program's oom_score_adj becomes PROGRAM_OOM_SCORE_ADJ (1000), whatever its caller has: the
 * OOM killer's first choice, before the union's server in the same cgroup (which root without
 * CAP_SYS_RESOURCE cannot shield: lowering needs it, raising does not) and before host processes.
 * Our /proc/self files belong to host root while we are not dumpable (the id change made us so), and
 * host root is not mapped here: be dumpable for this one write, then not again. Should the kernel
 * refuse, the caller's value stays if it is not negative. Any other failure is fatal: a program the
 * OOM killer might not end must never run. */
static int program_reset_oom_score(const char *value) {
        _cleanup_close_ int fd = -EBADF;
        char buf[16];
        ssize_t n;
        int r = 0;

        if (!value)
                value = PROGRAM_OOM_SCORE_ADJ;

        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
                return -errno;
        fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                r = -errno;
        else if (write(fd, value, strlen(value)) != (ssize_t) strlen(value)) {
                r = -errno;
                n = r == -EACCES ? pread(fd, buf, sizeof buf - 1, 0) : -1;
                if (n > 0 && buf[0] >= '0' && buf[0] <= '9')
                        r = 0; /* not negative: killable */
        }
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 && r == 0)
                r = -errno;
        return r;
}

/* The one set-up of a program's process, for the init's child and for sandbox_exec()'s (see runtime.h). */
_Noreturn void program_run(const ProgramContext *p, int report_fd, int gate_fd) {
        sigset_t none;
        int r;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);

        if (p->stdio) {
                r = install_stdio(p->stdio);
                if (r < 0)
                        program_fail(report_fd, STEP_FORK, r);
        }
        if (p->pty_master >= 0) {
                /* Its own session with the pty as controlling terminal: job control works. */
                int slave;
                if (setsid() < 0)
                        program_fail(report_fd, STEP_PTY, -errno);
                slave = ioctl(p->pty_master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
                if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
                        program_fail(report_fd, STEP_PTY, -errno);
                for (int i = 0; i < 3; i++)
                        if (dup2(slave, i) < 0)
                                program_fail(report_fd, STEP_PTY, -errno);
                if (slave > 2)
                        close(slave);
        } else if (p->new_session && setsid() < 0)
                program_fail(report_fd, STEP_SESSION, -errno);

        /* The init is shielded from the OOM killer (oom_score_adj -1000, where the parent may set it);
         * the program must not inherit that, or a memory limit hit finds nothing to kill and the
         * kernel retries the program's allocation forever. It is the first choice instead, before the
         * union's server that it depends on and that shares its cgroup (docs/cgroups.md). */
        r = program_reset_oom_score(p->oom_score_adj);
        if (r < 0)
                program_fail(report_fd, STEP_OOM_SCORE, r);

        /* Capabilities (docs/security.md): they act on this user namespace only, whose ids are all the
         * sandbox's. Root inside keeps p->cap_permitted as permitted and effective (execve() gives root
         * its bounding set, which is the same); another uid keeps what --cap-add named, as ambient
         * capabilities, across the id change (KEEPCAPS, which execve() clears). */
        r = limit_bounding_set(p->cap_bounding);
        if (r < 0)
                program_fail(report_fd, STEP_CAPS, r);
        if (p->cap_ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                program_fail(report_fd, STEP_CAPS, -errno);
        /* Supplementary groups, ids of the sandbox's only (its user namespace maps nothing else). */
        if (p->n_groups > 0) {
                gid_t groups[SANDBOX_GROUPS_MAX];
                size_t n = MIN(p->n_groups, (size_t) SANDBOX_GROUPS_MAX);
                for (size_t i = 0; i < n; i++)
                        groups[i] = p->groups[i];
                if (syscall(SYS_setgroups, n, groups) < 0)
                        program_fail(report_fd, STEP_USER, -errno);
        }
        if (raw_setresgid(p->gid) < 0 || raw_setresuid(p->uid) < 0)
                program_fail(report_fd, STEP_USER, -errno);
        r = set_capabilities(p->cap_permitted, p->cap_ambient);
        if (r < 0)
                program_fail(report_fd, STEP_CAPS, r);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                program_fail(report_fd, STEP_CAPS, -errno);
        /* As the program's user: the working directory is resolved with its rights, in its root. */
        if (chdir(p->workdir ?: "/") < 0)
                program_fail(report_fd, STEP_WORKDIR, -errno);

        /* Nothing of ours reaches the program: every fd above stdio is closed by execve(). */
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                program_fail(report_fd, STEP_FORK, -errno);

        /* The init gives up its privileges first: the program never runs beside a privileged init.
         * EOF instead of the byte: the init died. */
        if (gate_fd >= 0) {
                char go;
                if (read(gate_fd, &go, 1) != 1)
                        _exit(SANDBOX_EXIT_SETUP);
        }

        environ = (char **) p->envp; /* execvp() searches the PATH of the environment it runs in */
        if (p->filter) {
                r = filter_install(p->filter);
                if (r < 0)
                        program_fail(report_fd, STEP_SECCOMP, r);
        }
        if (p->engine_filter) {
                r = filter_install(p->engine_filter);
                if (r < 0)
                        program_fail(report_fd, STEP_SECCOMP, r);
        }
        execvp(p->argv[0], p->argv);

        ExecReport rep = { .step = -1, .error = errno };
        (void) !write(report_fd, &rep, sizeof rep);
        _exit(SANDBOX_EXIT_NOT_FOUND);
}

/* Before the program may exec: the init keeps no privilege. It takes the program's ids, so that it
 * can still pass signals on without any capability (an idle init, which has no program, becomes root
 * of the user namespace without capabilities: the programs sandbox_exec() starts never run beside a
 * privileged init either). */
static void init_drop_privileges(uid_t uid, gid_t gid) {
        (void) drop_bounding_set();
        if (raw_setresgid(gid) < 0 || raw_setresuid(uid) < 0)
                _exit(SANDBOX_EXIT_SETUP);
        if (clear_capabilities() < 0)
                _exit(SANDBOX_EXIT_SETUP);
        (void) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        /* The id change cleared these two. Not dumpable: the program (same uid, no capability) can
         * neither ptrace us nor read our memory. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* After the program started: the init keeps nothing of the caller's. */
static void init_close_fds(const ChildContext *c) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        for (int i = 0; i < 3; i++)
                if (null >= 0)
                        (void) dup2(null, i);
        safe_close(null);
        if (c->status_fd > 3)
                (void) syscall(SYS_close_range, 3U, (unsigned) c->status_fd - 1, 0U);
        (void) syscall(SYS_close_range, (unsigned) c->status_fd + 1, ~0U, 0U);
}

/* The program ended: its status, and the largest resident set of the processes we reaped (it, and
 * through it its own waited-for children; orphans we reaped ourselves). */
_Noreturn static void init_report_exit(const ChildContext *c, int status) {
        ChildMessage m = { .type = CHILD_EXITED, .status = status };
        struct rusage ru;

        if (getrusage(RUSAGE_CHILDREN, &ru) >= 0 && ru.ru_maxrss > 0)
                m.max_rss = (uint64_t) ru.ru_maxrss * 1024; /* KiB */
        send_message(c->status_fd, &m, -EBADF);
        _exit(0);
}

/* MAIN_PID 0: an idle init (no program of its own); it only reaps, until it is killed. */
_Noreturn static void init_loop(const ChildContext *c, pid_t main_pid, int sfd) {
        bool attached = true;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = sfd, .events = POLLIN },
                        { .fd = attached ? c->status_fd : -1, .events = POLLIN },
                };
                struct signalfd_siginfo si;
                ssize_t n;

                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(SANDBOX_EXIT_SETUP);
                }
                if (p[1].revents) {
                        char req;
                        n = recv(c->status_fd, &req, 1, MSG_DONTWAIT);
                        /* kill(-1) in our pid namespace: every process but us, the init. The program
                         * has our uid and no capability, so none of them escapes it. */
                        if (n == 1 && req == CHILD_REQUEST_KILL)
                                (void) kill(-1, SIGKILL);
                        else if (n == 1 && req == CHILD_REQUEST_DETACH && main_pid == 0) {
                                /* We outlive our creator (sandboxd restarting): whoever adopts the
                                 * sandbox watches our pidfd, and kills our cgroup to end it. */
                                (void) prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
                                attached = false;
                        } else if (n == 0)
                                _exit(SANDBOX_EXIT_SETUP); /* the parent is gone (PDEATHSIG follows) */
                }
                if (!(p[0].revents & POLLIN))
                        continue;
                n = read(sfd, &si, sizeof si);
                if (n != sizeof si) {
                        if (n < 0 && errno == EINTR)
                                continue;
                        _exit(SANDBOX_EXIT_SETUP);
                }
                if (si.ssi_signo == SIGCHLD) {
                        int status;
                        pid_t pid;
                        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                                if (main_pid > 0 && pid == main_pid)
                                        init_report_exit(c, status);
                        continue;
                }
                /* Forward only what comes from outside our pid namespace (the parent: si_pid reads 0
                 * here) and not from the kernel; the program cannot make us signal anyone. */
                if (si.ssi_pid == 0 && si.ssi_code != SI_KERNEL)
                        (void) kill(main_pid, (int) si.ssi_signo);
        }
}

_Noreturn void child_run(const ChildContext *c) {
        const SandboxSpec *s = c->spec;
        _cleanup_close_ int root_fd = -EBADF;
        int report[2], gate[2], pty_master = -EBADF, sfd, r;
        sigset_t all;
        char go;
        pid_t pid;

        /* Everything is blocked from here on; the init reads signals through a signalfd. */
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        /* The "parent" is the thread that cloned us: it must outlive the sandbox. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        r = close_other_fds(c);
        if (r < 0)
                fail(c, STEP_SYNC, r, 0);
        /* A session of our own, without a controlling terminal: nothing in the sandbox can open the
         * caller's terminal as /dev/tty (ENXIO), make itself its foreground job or get its signals.
         * Only a session leader can take a terminal, and we never open one without O_NOCTTY; with -t
         * the program makes the sandbox's own pty its terminal in a session of its own. */
        if (setsid() < 0)
                fail(c, STEP_SESSION, -errno, 0);

        /* The parent writes our id maps, then says go. EOF: it died. */
        if (read(c->status_fd, &go, 1) != 1)
                _exit(SANDBOX_EXIT_SETUP);

        if (raw_setresgid(0) < 0 || raw_setresuid(0) < 0)
                fail(c, STEP_IDS, -errno, 0);
        /* In our own network namespace, ports below 1024 are the sandbox's to use (as in Docker):
         * the program has no capability, and -p 8080:80 must work. Before /proc/sys turns read-only. */
        if (!c->net_host) {
                int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void) !write(fd, "0", 1);
                        close(fd);
                }
        }
        /* Changing ids cleared the parent-death signal: set it again. Had the parent died in
         * between, the second go below never comes (EOF) and we exit all the same. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
                fail(c, STEP_HOSTNAME, -errno, 0);
        r = install_stdio(c->stdio);
        if (r < 0)
                fail(c, STEP_SYNC, r, 0);

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                fail(c, STEP_PROPAGATION, -errno, 0);
        if (syscall(SYS_move_mount, c->union_fd, "", AT_FDCWD, c->root_path, 0x4 /* MOVE_MOUNT_F_EMPTY_PATH */) < 0)
                fail(c, STEP_ROOT, -errno, 0);
        root_fd = open(c->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                fail(c, STEP_ROOT, -errno, 0);
        if (c->usr_fd >= 0) {
                r = mount_attach_tree(c->usr_fd, root_fd, "/usr", true);
                if (r < 0)
                        fail(c, STEP_USR, r, 0);
        }
        /* /proc before the old root goes: the kernel allows a new proc only while one is visible. */
        r = mount_proc(root_fd);
        if (r < 0)
                fail(c, STEP_PROC, r, 0);
        r = mount_dev(root_fd, SPEC_DEFAULT_TMPFS, !c->ipc_joined);
        if (r < 0)
                fail(c, STEP_DEV, r, 0);
        /* sysfs belongs to a network namespace: only ours may be mounted (none with --net host). */
        if (!c->net_host) {
                r = mount_sys(root_fd);
                if (r < 0)
                        fail(c, STEP_SYS, r, 0);
        }
        /* /tmp and /dev/shm are bounded by default; a --tmpfs on either is mounted over ours. */
        r = mount_tmpfs_at(root_fd, "/tmp", SPEC_DEFAULT_TMPFS, "1777");
        if (r < 0)
                fail(c, STEP_TMP, r, 0);
        /* Our /etc/resolv.conf (bridged, isolated and host networks), under the user's binds. An image
         * whose /etc/resolv.conf is a symlink to nowhere keeps it (ENOENT): nothing to mount over. */
        if (c->resolv_fd >= 0) {
                r = mount_attach_tree(c->resolv_fd, root_fd, "/etc/resolv.conf", false);
                if (r < 0 && r != -ENOENT)
                        fail(c, STEP_RESOLV, r, 0);
        }
        for (size_t i = 0; i < s->n_binds; i++) {
                r = mount_attach_tree(c->binds[i].tree_fd, root_fd, c->binds[i].dest, c->binds[i].is_dir);
                if (r < 0)
                        fail(c, STEP_BIND, r, (int) i);
        }
        for (size_t i = 0; i < s->n_tmpfs; i++) {
                r = mount_tmpfs_at(root_fd, s->tmpfs[i].dest, s->tmpfs[i].size, "1777");
                if (r < 0)
                        fail(c, STEP_TMPFS, r, (int) i);
        }
        root_fd = safe_close(root_fd);
        r = mount_pivot_root(c->root_path);
        if (r < 0)
                fail(c, STEP_PIVOT, r, 0);
        if (c->workdir_create && s->workdir) {
                r = make_workdir(s->workdir);
                if (r < 0)
                        fail(c, STEP_WORKDIR, r, 0);
        }
        if (!c->net_host) {
                r = loopback_up();
                if (r < 0)
                        fail(c, STEP_LOOPBACK, r, 0);
        }

        if (s->tty && !c->idle) {
                pty_master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
                int unlock = 0;
                if (pty_master < 0 || ioctl(pty_master, TIOCSPTLCK, &unlock) < 0)
                        fail(c, STEP_PTY, -errno, 0);
        }

        /* Meanwhile the parent moved us into the sandbox's cgroup (slow on v1, so it overlaps with
         * the mounts above) and set the limits; nothing of the program's runs before this go. */
        if (c->deferred) {
                /* The program came later: its stdio with the go, the rest in the shared area. */
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(3 * sizeof(int))];
                } control = {};
                struct iovec iov = { .iov_base = &go, .iov_len = 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                                     .msg_controllen = sizeof control.buf };
                struct cmsghdr *cm;
                int fds[3];

                warm_loader_paths();
                if (recvmsg(c->status_fd, &mh, MSG_CMSG_CLOEXEC) != 1 || !(cm = CMSG_FIRSTHDR(&mh)) ||
                    cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
                    cm->cmsg_len != CMSG_LEN(3 * sizeof(int)))
                        _exit(SANDBOX_EXIT_SETUP);
                memcpy(fds, CMSG_DATA(cm), sizeof fds);
                r = install_stdio(fds);
                if (r < 0)
                        fail(c, STEP_SYNC, r, 0);
                for (size_t i = 0; i < 3; i++)
                        if (fds[i] > 2)
                                safe_close(fds[i]);
        } else if (read(c->status_fd, &go, 1) != 1)
                _exit(SANDBOX_EXIT_SETUP);
        if (unshare(CLONE_NEWCGROUP) < 0)
                fail(c, STEP_CGROUP_NS, -errno, 0);
        /* sandbox_create(): the sandbox is complete and the program waits for sandbox_release(). Anything but
         * the go (EOF: the parent died) ends it. */
        if (c->hold) {
                ChildMessage m = { .type = CHILD_CREATED };
                send_message(c->status_fd, &m, pty_master);
                if (read(c->status_fd, &go, 1) != 1 || go != 'g')
                        _exit(SANDBOX_EXIT_SETUP);
                if (c->program_umask >= 0)
                        umask((mode_t) c->program_umask);
        }

        /* An idle sandbox, or one made ahead that became one (sandbox_go_idle(): read after the go). */
        if (c->idle || (c->deferred && c->deferred->idle)) {
                ChildMessage m = { .type = CHILD_STARTED };
                init_drop_privileges(0, 0);
                send_message(c->status_fd, &m, -EBADF);
                init_close_fds(c);
                sfd = signalfd(-1, &all, SFD_CLOEXEC);
                if (sfd < 0)
                        _exit(SANDBOX_EXIT_SETUP);
                init_loop(c, 0, sfd);
        }

        if (pipe2(report, O_CLOEXEC) < 0 || pipe2(gate, O_CLOEXEC) < 0)
                fail(c, STEP_FORK, -errno, 0);
        pid = raw_fork();
        if (pid < 0)
                fail(c, STEP_FORK, -errno, 0);
        if (pid == 0) {
                const ProgramContext p = {
                        .argv = c->deferred ? c->deferred->argv : s->argv,
                        .envp = c->deferred ? c->deferred->envp : c->envp,
                        .uid = s->uid,
                        .gid = s->gid,
                        .workdir = c->deferred ? c->deferred->workdir : s->workdir,
                        .filter = c->filter,
                        .engine_filter = c->engine_filter,
                        .oom_score_adj = c->oom_score_adj,
                        .groups = c->groups,
                        .n_groups = c->n_groups,
                        .cap_bounding = c->cap_bounding,
                        .cap_permitted = c->cap_permitted,
                        .cap_ambient = c->cap_ambient,
                        .pty_master = pty_master,
                };
                close(report[0]);
                close(gate[1]);
                program_run(&p, report[1], gate[0]);
        }
        close(report[1]);
        close(gate[0]);
        init_drop_privileges(s->uid, s->gid);
        /* EPIPE (SIGPIPE is blocked): the program failed its set-up and the report says why. */
        (void) !write(gate[1], "x", 1);
        close(gate[1]);

        ExecReport rep;
        ssize_t n;
        do
                n = read(report[0], &rep, sizeof rep);
        while (n < 0 && errno == EINTR);
        close(report[0]);
        if (n == sizeof rep) {
                ChildMessage m = {
                        .type = rep.step < 0 ? CHILD_EXEC_FAILED : CHILD_SETUP_FAILED,
                        .step = rep.step,
                        .error = rep.error,
                };
                (void) waitpid(pid, NULL, 0);
                send_message(c->status_fd, &m, -EBADF);
                _exit(SANDBOX_EXIT_SETUP);
        }

        {
                ChildMessage m = { .type = CHILD_STARTED };
                /* Held: the pty went with CHILD_CREATED already. */
                send_message(c->status_fd, &m, c->hold ? -EBADF : pty_master);
        }
        safe_close(pty_master);
        init_close_fds(c);
        /* Signals stayed blocked, so none was lost before the signalfd exists. */
        sfd = signalfd(-1, &all, SFD_CLOEXEC);
        if (sfd < 0)
                _exit(SANDBOX_EXIT_SETUP);
        init_loop(c, pid, sfd);
}
