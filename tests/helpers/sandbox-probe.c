/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-probe: run INSIDE a sandbox by tests/integration/test_sandbox_run.py to check what a shell
 * or Python cannot do easily. Each subcommand prints line-based "key=value" results on stdout.
 *
 *   syscalls          every syscall the default seccomp policy must refuse, raw via syscall(2), as
 *                     name=ERRNO (e.g. mount=EPERM), or name=OK when it succeeded
 *   fds               the open fds (from /proc/self/fd, without the directory's own fd): "fd=N target"
 *   tiocsti [FD]      try to push characters into the terminal on FD (default 0): tiocsti=ERRNO|OK
 *   tty-steal [SECS]  what a program does to take over its caller's terminal: isatty of 0-2, open
 *                     /dev/tty, setpgid + tcsetpgrp, turn off echo, TIOCSCTTY from a session of its
 *                     own, on /dev/tty and each of 0-2 (NAME_FD=ERRNO|OK|notty); then "stolen=done",
 *                     and sleep SECS with echo off wherever that worked (so the test can look)
 *   ptrace-init       try to ptrace, signal, stop and read PID 1, then tell whether it is still alive
 *   forkbomb N [hold] fork up to N sleeping children; print forked=K err=ERRNO; then kill them all, or
 *                     with "hold" keep everything and sleep forever (for --timeout to end it)
 *   hog MB            allocate and touch MB mebibytes (1 MiB at a time), print allocated=MB, exit 0
 *   spin              burn CPU forever
 *   msgget KEY        create a SysV message queue with KEY (decimal), print msqid=ID
 *   msgcheck KEY      whether a SysV message queue with KEY exists: msg=present|ENOENT|...
 *   hold SECONDS      sleep SECONDS (argv stays visible to the host as a marker)
 *
 * Safety: this program is meant to be confined. Every call in "syscalls" uses arguments that are
 * invalid or harmless, in a form where the kernel would fail on the arguments (EINVAL, EFAULT,
 * EBADF, ...) or refuse for lack of a capability if the filter let the call through: seccomp
 * decides before the kernel looks at the arguments, so EPERM from a call whose unfiltered result
 * is something else means the filter refused it. Calls that could change this process's state
 * if they succeeded (unshare, clone, setns, personality) run in a throw-away child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* An address no process has mapped: the kernel answers EFAULT when it reads it. */
#define BAD_PTR ((void *) (uintptr_t) 1)

static const char *err_name(int e) {
        const char *n = strerrorname_np(e);
        static char buf[32];

        if (n)
                return n;
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
}

static void report(const char *name, long r, int e) {
        if (r < 0)
                printf("%s=%s\n", name, err_name(e));
        else
                printf("%s=OK\n", name);
        fflush(stdout);
}

#define TRY(name, call)                         \
        do {                                    \
                errno = 0;                      \
                long _r = (long) (call);        \
                report(name, _r, errno);        \
        } while (0)

/* A raw clone with FLAGS in a child of ours: returns the result as the child saw it. A process
 * that clone creates _exits at once. */
static void try_clone(const char *name, unsigned long flags) {
        errno = 0;
        long r = syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
        if (r == 0)
                _exit(0);
        int e = errno;
        if (r > 0)
                (void) waitpid((pid_t) r, NULL, 0);
        report(name, r, e);
}

/* Run FN in a forked child and report what it returned (an errno, 0 for success) or how it died. */
static void in_child(const char *name, int (*fn)(void)) {
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                printf("%s=fork-failed-%s\n", name, err_name(errno));
                return;
        }
        if (pid == 0)
                _exit(fn());
        if (waitpid(pid, &status, 0) < 0) {
                printf("%s=wait-failed\n", name);
                return;
        }
        if (WIFSIGNALED(status))
                printf("%s=SIGNAL%d\n", name, WTERMSIG(status));
        else if (WEXITSTATUS(status) == 0)
                printf("%s=OK\n", name);
        else
                printf("%s=%s\n", name, err_name(WEXITSTATUS(status)));
        fflush(stdout);
}

static int child_unshare_user(void) {
        return syscall(SYS_unshare, CLONE_NEWUSER) < 0 ? errno : 0;
}
static int child_unshare_ns(void) {
        return syscall(SYS_unshare, CLONE_NEWNS) < 0 ? errno : 0;
}
static int child_setns(void) {
        return syscall(SYS_setns, -1, 0) < 0 ? errno : 0;
}
static int child_personality(void) {
        /* ADDR_NO_RANDOMIZE weakens ASLR of what this child would execute; it executes nothing. */
        return syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE) < 0 ? errno : 0;
}
static int child_clone3(void) {
        struct clone_args ca = { .flags = CLONE_NEWNS, .exit_signal = SIGCHLD };
        long r = syscall(SYS_clone3, &ca, sizeof ca);
        if (r == 0)
                _exit(0);
        if (r > 0) {
                (void) waitpid((pid_t) r, NULL, 0);
                return 0;
        }
        return errno;
}
static int child_x32(void) {
        /* getpid through the x32 ABI: the filter kills the process; without it, ENOSYS or a pid. */
        return syscall(0x40000000 | 39) < 0 ? errno : 0;
}

/* A fresh pty slave of our own (not our controlling terminal), or -1. */
static int open_pty_slave(void) {
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
                return -1;
        char *n = ptsname(m);
        if (!n)
                return -1;
        return open(n, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static int cmd_syscalls(void) {
        static const char module[] = "sandbox-probe-no-such-module";
        int tty_fd = isatty(0) ? 0 : open_pty_slave();
        char c = '#';

        TRY("mount", syscall(SYS_mount, "none", "/", BAD_PTR, 0UL, NULL));
        TRY("umount2", syscall(SYS_umount2, "/sandbox-probe-nonexistent", 0x80000000UL));
        TRY("pivot_root", syscall(SYS_pivot_root, BAD_PTR, BAD_PTR));
        TRY("chroot", syscall(SYS_chroot, BAD_PTR));
        TRY("open_tree", syscall(SYS_open_tree, -1, BAD_PTR, 0xffffffffU));
        TRY("fsopen", syscall(SYS_fsopen, BAD_PTR, 0xffffffffU));
        TRY("fsconfig", syscall(SYS_fsconfig, -1, 0xffff, NULL, NULL, 0));
        TRY("fsmount", syscall(SYS_fsmount, -1, 0xffffffffU, 0xffffffffU));
        TRY("fspick", syscall(SYS_fspick, -1, BAD_PTR, 0xffffffffU));
        TRY("move_mount", syscall(SYS_move_mount, -1, BAD_PTR, -1, BAD_PTR, 0xffffffffU));
        TRY("mount_setattr", syscall(SYS_mount_setattr, -1, BAD_PTR, 0xffffffffU, NULL, 0));
        in_child("unshare_user", child_unshare_user);
        in_child("unshare_ns", child_unshare_ns);
        try_clone("clone_newns", CLONE_NEWNS);
        try_clone("clone_newuser", CLONE_NEWUSER);
        try_clone("clone_newnet", CLONE_NEWNET);
        in_child("clone3", child_clone3);
        in_child("setns", child_setns);
        TRY("keyctl", syscall(SYS_keyctl, 0x7fffffff, 0, 0, 0, 0));
        TRY("add_key", syscall(SYS_add_key, BAD_PTR, BAD_PTR, NULL, 0, 0));
        TRY("request_key", syscall(SYS_request_key, BAD_PTR, BAD_PTR, NULL, 0));
        TRY("bpf", syscall(SYS_bpf, 0x7fffffff, NULL, 0));
        TRY("perf_event_open", syscall(SYS_perf_event_open, NULL, -1, -1, -1, 0xffffffffUL));
        TRY("userfaultfd", syscall(SYS_userfaultfd, 0x1 /* UFFD_USER_MODE_ONLY */ | 0x40000000));
        TRY("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL));
        TRY("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
        TRY("io_uring_register", syscall(SYS_io_uring_register, -1, 0xffff, NULL, 0));
        TRY("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0xffffffffUL));
        TRY("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xffffffffUL));
        TRY("init_module", syscall(SYS_init_module, NULL, 0, ""));
        TRY("finit_module", syscall(SYS_finit_module, -1, "", 0xffffffff));
        TRY("delete_module", syscall(SYS_delete_module, module, O_NONBLOCK));
        TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
        TRY("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0xffffffff));
        TRY("acct", syscall(SYS_acct, BAD_PTR));
        TRY("swapon", syscall(SYS_swapon, BAD_PTR, 0));
        TRY("swapoff", syscall(SYS_swapoff, BAD_PTR));
        /* Invalid magic numbers: even a privileged caller gets EINVAL. */
        TRY("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
        TRY("sethostname", syscall(SYS_sethostname, BAD_PTR, 1));
        TRY("setdomainname", syscall(SYS_setdomainname, BAD_PTR, 1));
        TRY("settimeofday", syscall(SYS_settimeofday, BAD_PTR, NULL));
        TRY("clock_settime", syscall(SYS_clock_settime, CLOCK_REALTIME, BAD_PTR));
        TRY("adjtimex", syscall(SYS_adjtimex, BAD_PTR));
        TRY("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, BAD_PTR));
        TRY("iopl", syscall(SYS_iopl, 4));
        TRY("ioperm", syscall(SYS_ioperm, 0UL, 0UL, 1));
        TRY("quotactl", syscall(SYS_quotactl, 0x7fffff00, BAD_PTR, 0, NULL));
        TRY("syslog", syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
        TRY("fanotify_init", syscall(SYS_fanotify_init, 0xffffffffU, 0xffffffffU));
        TRY("lookup_dcookie", syscall(SYS_lookup_dcookie, 0ULL, NULL, 0));
        TRY("nfsservctl", syscall(SYS_nfsservctl, 0, NULL, NULL));
        if (tty_fd >= 0) {
                TRY("ioctl_tiocsti", syscall(SYS_ioctl, tty_fd, TIOCSTI, &c));
                TRY("ioctl_tioclinux", syscall(SYS_ioctl, tty_fd, TIOCLINUX, BAD_PTR));
                /* The line discipline the terminal already has: without the filter this succeeds and
                 * changes nothing. */
                int ldisc = N_TTY;
                TRY("ioctl_tiocsetd", syscall(SYS_ioctl, tty_fd, TIOCSETD, &ldisc));
        } else
                printf("ioctl_tiocsti=no-tty\nioctl_tioclinux=no-tty\nioctl_tiocsetd=no-tty\n");
        {
                errno = 0;
                int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                report("socket_vsock", s, errno);
                if (s >= 0)
                        close(s);
        }
        {
                /* The kernel has no vsock pairs (EOPNOTSUPP): EPERM comes from the filter. */
                int sv[2];
                TRY("socketpair_vsock", syscall(SYS_socketpair, AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        }
        in_child("personality_addr_no_randomize", child_personality);
        /* Not in any list: the default answer is ENOSYS. */
        TRY("unknown_1000", syscall(1000));
        TRY("unknown_500", syscall(500));
        in_child("x32_getpid", child_x32);
        /* Allowed ones, to show the filter is not refusing everything. */
        TRY("getpid", syscall(SYS_getpid));
        try_clone("clone_plain", 0);
        {
                int sv[2];
                errno = 0;
                long r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
                report("socketpair_unix", r, errno);
                if (r == 0) {
                        close(sv[0]);
                        close(sv[1]);
                }
        }
        return 0;
}

static int cmd_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d) {
                printf("error=%s\n", err_name(errno));
                return 1;
        }
        while ((de = readdir(d))) {
                char path[300], target[4096];
                ssize_t n;
                if (de->d_name[0] == '.')
                        continue;
                if (atoi(de->d_name) == dirfd(d))
                        continue;
                snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
                n = readlink(path, target, sizeof target - 1);
                target[n < 0 ? 0 : n] = '\0';
                printf("fd=%s %s\n", de->d_name, target);
        }
        closedir(d);
        return 0;
}

static int cmd_tiocsti(int fd) {
        static const char text[] = "#sbx-tiocsti\n";
        int ok = 0, first_err = 0;

        printf("isatty=%d\n", isatty(fd));
        for (size_t i = 0; i < sizeof text - 1; i++) {
                if (ioctl(fd, TIOCSTI, &text[i]) == 0)
                        ok++;
                else if (!first_err)
                        first_err = errno;
        }
        printf("tiocsti=%s\npushed=%d\n", ok ? "OK" : err_name(first_err), ok);
        return 0;
}

/* From a session of our own (a child: we stay where we are), make FD our controlling terminal. */
static void try_sctty(const char *name, int fd) {
        int status;
        pid_t pid;

        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                if (setsid() < 0)
                        _exit(errno);
                _exit(ioctl(fd, TIOCSCTTY, 1) < 0 ? errno : 0);
        }
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
                printf("%s=child-failed\n", name);
                return;
        }
        report(name, WEXITSTATUS(status) ? -1 : 0, WEXITSTATUS(status));
}

static int cmd_tty_steal(long hold) {
        int fds[4] = { -1, 0, 1, 2 };
        char name[32];

        /* As a shell taking a terminal does: tcsetpgrp and tcsetattr from a background job would
         * stop us with SIGTTOU otherwise. */
        (void) signal(SIGTTOU, SIG_IGN);
        (void) signal(SIGTTIN, SIG_IGN);
        for (int i = 0; i < 3; i++)
                printf("isatty_%d=%d\n", i, isatty(i));
        errno = 0;
        fds[0] = open("/dev/tty", O_RDWR | O_CLOEXEC);
        report("dev_tty", fds[0], errno);
        TRY("setpgid", setpgid(0, 0));
        for (int i = 0; i < 4; i++) {
                const char *fdname = i == 0 ? "tty" : (const char[][2]) { "0", "1", "2" }[i - 1];
                struct termios t;
                if (fds[i] < 0) {
                        printf("tcsetpgrp_%s=notty\nstty_%s=notty\nsctty_%s=notty\n", fdname, fdname, fdname);
                        continue;
                }
                snprintf(name, sizeof name, "tcsetpgrp_%s", fdname);
                TRY(name, tcsetpgrp(fds[i], getpgrp()));
                snprintf(name, sizeof name, "stty_%s", fdname);
                errno = 0;
                if (tcgetattr(fds[i], &t) < 0)
                        report(name, -1, errno);
                else {
                        t.c_lflag &= ~(tcflag_t) ECHO;
                        TRY(name, tcsetattr(fds[i], TCSANOW, &t));
                }
                snprintf(name, sizeof name, "sctty_%s", fdname);
                try_sctty(name, fds[i]);
        }
        printf("stolen=done\n");
        fflush(stdout);
        struct timespec ts = { .tv_sec = hold };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        return 0;
}

static int cmd_ptrace_init(void) {
        char state = '?';
        int fd;

        printf("pid=%d\nppid=%d\n", (int) getpid(), (int) getppid());
        TRY("ptrace_attach", ptrace(PTRACE_ATTACH, 1, NULL, NULL));
        TRY("ptrace_seize", ptrace(PTRACE_SEIZE, 1, NULL, NULL));
        errno = 0;
        fd = open("/proc/1/mem", O_RDONLY | O_CLOEXEC);
        report("open_mem", fd, errno);
        if (fd >= 0)
                close(fd);
        errno = 0;
        fd = open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                char buf[64];
                ssize_t n = read(fd, buf, sizeof buf);
                report("read_environ", n, errno);
                close(fd);
        } else
                report("read_environ", fd, errno);
        {
                char buf[8];
                struct iovec local = { buf, sizeof buf }, remote = { (void *) 0x400000, sizeof buf };
                TRY("process_vm_readv", process_vm_readv(1, &local, 1, &remote, 1, 0));
        }
        {
                errno = 0;
                int pfd = (int) syscall(SYS_pidfd_open, 1, 0);
                report("pidfd_open", pfd, errno);
                if (pfd >= 0) {
                        TRY("pidfd_getfd", syscall(SYS_pidfd_getfd, pfd, 0, 0));
                        close(pfd);
                }
        }
        TRY("kill_term", kill(1, SIGTERM));
        TRY("kill_int", kill(1, SIGINT));
        TRY("kill_stop", kill(1, SIGSTOP));
        TRY("kill_kill", kill(1, SIGKILL));
        TRY("kill_segv", kill(1, SIGSEGV));
        usleep(200 * 1000);
        {
                char buf[512];
                FILE *f = fopen("/proc/1/stat", "re");
                if (f && fgets(buf, sizeof buf, f)) {
                        char *p = strrchr(buf, ')');
                        if (p && p[1] == ' ')
                                state = p[2];
                }
                if (f)
                        fclose(f);
        }
        printf("init_alive=%d\ninit_state=%c\n", kill(1, 0) == 0 ? 1 : 0, state);
        return 0;
}

static int cmd_forkbomb(long n, int hold) {
        pid_t *kids = calloc((size_t) n, sizeof *kids);
        long k = 0;
        int e = 0;

        if (!kids)
                return 1;
        for (; k < n; k++) {
                pid_t p = fork();
                if (p < 0) {
                        e = errno;
                        break;
                }
                if (p == 0) {
                        for (;;)
                                pause();
                }
                kids[k] = p;
        }
        printf("forked=%ld\nerr=%s\n", k, e ? err_name(e) : "none");
        fflush(stdout);
        if (hold)
                for (;;)
                        pause();
        for (long i = 0; i < k; i++)
                kill(kids[i], SIGKILL);
        for (long i = 0; i < k; i++)
                waitpid(kids[i], NULL, 0);
        free(kids);
        return 0;
}

static int cmd_hog(long mb) {
        long i;
        for (i = 0; i < mb; i++) {
                char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED) {
                        printf("allocated=%ld\nerr=%s\n", i, err_name(errno));
                        return 1;
                }
                memset(p, 0x5a, 1 << 20);
        }
        printf("allocated=%ld\n", i);
        return 0;
}

_Noreturn static void cmd_spin(void) {
        volatile unsigned long x = 0;
        for (;;)
                x++;
}

static int cmd_msgget(long key) {
        int id = msgget((key_t) key, IPC_CREAT | IPC_EXCL | 0600);
        if (id < 0) {
                printf("msgget=%s\n", err_name(errno));
                return 1;
        }
        printf("msqid=%d\n", id);
        return 0;
}

static int cmd_msgcheck(long key) {
        int id = msgget((key_t) key, 0);
        printf("msg=%s\n", id >= 0 ? "present" : err_name(errno));
        return 0;
}

static int usage(void) {
        fprintf(stderr, "usage: sandbox-probe syscalls|fds|tiocsti [FD]|tty-steal [SECS]|ptrace-init|"
                        "forkbomb N [hold]|hog MB|spin|msgget KEY|msgcheck KEY|hold SECONDS\n");
        return 2;
}

int main(int argc, char *argv[]) {
        if (argc < 2)
                return usage();
        const char *c = argv[1];
        if (!strcmp(c, "syscalls"))
                return cmd_syscalls();
        if (!strcmp(c, "fds"))
                return cmd_fds();
        if (!strcmp(c, "tiocsti"))
                return cmd_tiocsti(argc > 2 ? atoi(argv[2]) : 0);
        if (!strcmp(c, "tty-steal"))
                return cmd_tty_steal(argc > 2 ? atol(argv[2]) : 0);
        if (!strcmp(c, "ptrace-init"))
                return cmd_ptrace_init();
        if (!strcmp(c, "forkbomb") && argc > 2)
                return cmd_forkbomb(atol(argv[2]), argc > 3 && !strcmp(argv[3], "hold"));
        if (!strcmp(c, "hog") && argc > 2)
                return cmd_hog(atol(argv[2]));
        if (!strcmp(c, "spin"))
                cmd_spin();
        if (!strcmp(c, "msgget") && argc > 2)
                return cmd_msgget(atol(argv[2]));
        if (!strcmp(c, "msgcheck") && argc > 2)
                return cmd_msgcheck(atol(argv[2]));
        if (!strcmp(c, "hold") && argc > 2) {
                struct timespec ts = { .tv_sec = atol(argv[2]) };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                return 0;
        }
        return usage();
}
