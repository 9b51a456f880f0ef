/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The seccomp module: turns a policy ("default", "unconfined" or a policy file) into a classic BPF
 * program in the parent, and installs that program in the child.
 *
 * Parent side (filter_compile*): parses the policy into a table (syscall number → action, or one
 * of a few built-in argument checks), builds a libseccomp context from it for the native
 * architecture only, exports the BPF into a memfd and keeps a copy. Needs no privilege. Logs at
 * debug level at most; every problem goes back to the caller as -errno plus a message.
 *
 * Child side (filter_install): one seccomp(2) call on the prepared program, nothing allocated, so
 * it is async-signal-safe and may be the last step before execve(). The caller must have set
 * PR_SET_NO_NEW_PRIVS (or hold CAP_SYS_ADMIN).
 *
 * What the default policy allows and denies, and why, is written down in docs/seccomp.md; keep
 * the two in step. Other ABIs on the same machine (i386 via int 0x80, x32 on x86_64) are not in
 * the filter and kill the process: libseccomp emits the architecture check, and for x86_64 also
 * a check on syscall numbers >= 0x40000000 (__X32_SYSCALL_BIT), since x32 shares the x86_64
 * audit architecture token. tests/unit/test-filter.c checks both.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <seccomp.h>

#include "config.h"
#include "filter.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "parse.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* The largest errno a filter may return (the kernel's MAX_ERRNO). */
#define FILTER_ERRNO_MAX 4095

struct FilterProgram {
        struct sock_fprog fprog; /* .filter points at insns below */
        struct sock_filter insns[];
};

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release);

/* ---- the policy table ------------------------------------------------------------------------ */

/* Syscalls whose default treatment depends on an argument; see add_arg_check(). */
typedef enum ArgCheck {
        ARG_CHECK_NONE,        /* one action for every call */
        ARG_CHECK_CLONE,       /* no namespace flags */
        ARG_CHECK_IOCTL,       /* no TIOCSTI, TIOCLINUX, TIOCSETD */
        ARG_CHECK_SOCKET,      /* AF_UNIX, AF_INET, AF_INET6, AF_NETLINK; AF_VSOCK is EPERM (socket and
                                * socketpair alike) */
        ARG_CHECK_PERSONALITY, /* the execution domains glibc and setarch(8) use */
        _ARG_CHECK_MAX,
        _ARG_CHECK_INVALID = -EINVAL,
} ArgCheck;

typedef struct Entry {
        int nr;
        uint32_t action; /* for ARG_CHECK_NONE */
        ArgCheck check;
} Entry;

typedef struct Policy {
        uint32_t default_action;
        Entry *entries; /* at most one per syscall number; a later setting replaces an earlier one */
        size_t n_entries, n_allocated;
} Policy;

static void policy_done(Policy *p) {
        free(p->entries);
        *p = (Policy) {};
}

static int policy_set(Policy *p, int nr, uint32_t action, ArgCheck check) {
        for (size_t i = 0; i < p->n_entries; i++)
                if (p->entries[i].nr == nr) {
                        p->entries[i] = (Entry) { .nr = nr, .action = action, .check = check };
                        return 0;
                }
        if (p->n_entries >= p->n_allocated) {
                size_t n = MAX(p->n_allocated * 2, (size_t) 64);
                Entry *e = reallocarray(p->entries, n, sizeof *e);
                if (!e)
                        return -ENOMEM;
                p->entries = e;
                p->n_allocated = n;
        }
        p->entries[p->n_entries++] = (Entry) { .nr = nr, .action = action, .check = check };
        return 0;
}

/* Returns the native syscall number of NAME, -ENOENT if libseccomp does not know the name at all,
 * or -EOPNOTSUPP if it names a syscall of another architecture (a rule for it is then dropped, so
 * that one policy works on x86_64 and aarch64). */
static int resolve_syscall(const char *name) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return -ENOENT;
        if (nr < 0)
                return -EOPNOTSUPP;
        return nr;
}

/* ---- the default policy ---------------------------------------------------------------------- */

/* Allowed without conditions. Names of other architectures are skipped when resolving, so the
 * compatibility variants (fstat64, *_time64, ...) can be listed once for all. Names this
 * libseccomp does not know yet are skipped too: such syscalls fall to the ENOSYS default. */
static const char *const default_allow[] = {
        /* file descriptors and I/O */
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
        "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "_llseek",
        "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock", "fsync", "fdatasync", "sync", "syncfs",
        "sync_file_range", "sync_file_range2", "arm_sync_file_range", "ftruncate", "ftruncate64",
        "truncate", "truncate64", "fallocate", "fadvise64", "fadvise64_64", "arm_fadvise64_64",
        "readahead", "sendfile", "sendfile64", "copy_file_range", "splice", "tee", "vmsplice", "pipe",
        "pipe2", "cachestat",
        /* file system names and metadata */
        "stat", "fstat", "lstat", "stat64", "fstat64", "lstat64", "newfstatat", "fstatat64", "statx",
        "statfs", "fstatfs", "statfs64", "fstatfs64", "access", "faccessat", "faccessat2", "readlink",
        "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat",
        /* with CAP_SYS_CHROOT (a default capability of root inside): a chroot never leaves the sandbox's
         * root, the root of its mount namespace (docs/security.md, "Capabilities") */
        "chroot",
        "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
        "symlinkat", "mknod", "mknodat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown",
        "lchown", "fchownat", "chown32", "fchown32", "lchown32", "umask", "utime", "utimes",
        "utimensat", "utimensat_time64", "futimesat", "getxattr", "lgetxattr", "fgetxattr",
        "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr",
        "lremovexattr", "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch",
        "inotify_rm_watch",
        /* memory */
        "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
        "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "memfd_create", "memfd_secret",
        "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "map_shadow_stack", "mseal",
        /* processes and threads (clone is checked, clone3 is ENOSYS: see below) */
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
        "kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
        "getsid", "setsid", "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "prctl",
        "arch_prctl", "set_thread_area", "get_thread_area", "set_tls", "cacheflush", "breakpoint",
        "riscv_flush_icache", "capget", "capset", "getpriority", "setpriority", "sched_yield",
        "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
        "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
        "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_getattr", "sched_setattr",
        "ioprio_get", "ioprio_set", "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getrusage",
        "times", "getcpu", "uname", "sysinfo", "pidfd_open", "pidfd_send_signal", "process_mrelease",
        /* debugging: gated by the kernel's ptrace access checks, see docs/seccomp.md */
        "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
        /* restricting oneself further */
        "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        /* credentials (meaningful only inside the sandbox's user namespace) */
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid",
        "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid",
        "setfsgid", "getuid32", "geteuid32", "getgid32", "getegid32", "getresuid32", "getresgid32",
        "getgroups32", "setuid32", "setgid32", "setreuid32", "setregid32", "setresuid32",
        "setresgid32", "setgroups32", "setfsuid32", "setfsgid32",
        /* signals */
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "sigaltstack", "signalfd", "signalfd4", "sigaction", "sigprocmask", "sigreturn", "sigsuspend",
        "sigpending", "pause", "alarm", "restart_syscall",
        /* time (reading it, sleeping, timers) */
        "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64", "clock_nanosleep",
        "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time", "getitimer", "setitimer",
        "timer_create", "timer_delete", "timer_gettime", "timer_gettime64", "timer_settime",
        "timer_settime64", "timer_getoverrun", "timerfd_create", "timerfd_gettime",
        "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
        /* waiting and events */
        "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "poll",
        "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64", "epoll_create",
        "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd",
        "eventfd2",
        /* POSIX AIO (not io_uring) */
        "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
        "io_pgetevents_time64",
        /* System V and POSIX IPC (the sandbox has its own IPC namespace) */
        "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semtimedop_time64",
        "semctl", "shmget", "shmat", "shmdt", "shmctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend",
        "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64", "mq_notify",
        "mq_getsetattr",
        /* sockets (socket and socketpair are checked) */
        "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
        "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "recvmmsg_time64", "send",
        "recv", "shutdown", "setsockopt", "getsockopt",
        /* misc */
        "getrandom",
};

/* Refused with EPERM: what these do is either host-wide (not namespaced), a large kernel attack
 * surface that untrusted code has no business with, or a way out of the sandbox's mount tree. */
static const char *const default_eperm[] = {
        /* the mount tree: the sandbox's root and mounts are set up by us, not by the payload */
        "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount",
        "fspick", "move_mount", "open_tree", "mount_setattr",
        /* new namespaces (nested user namespaces expose much kernel code) and joining others */
        "unshare", "setns",
        /* keyrings are not namespaced */
        "keyctl", "add_key", "request_key",
        /* large attack surfaces: the BPF verifier, perf, io_uring, and userfaultfd (used to win
         * kernel races) */
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
        "io_uring_register",
        /* kernel code */
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        /* file handles open any inode of a mounted file system, bypassing the mount tree */
        "open_by_handle_at", "name_to_handle_at",
        /* host-wide state */
        "acct", "swapon", "swapoff", "reboot", "sethostname", "setdomainname", "vhangup",
        /* the clocks are not namespaced (time namespaces only offset monotonic and boottime) */
        "settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime",
        "clock_adjtime64",
        /* raw I/O ports, quotas, the kernel log, file system wide monitoring */
        "iopl", "ioperm", "quotactl", "quotactl_fd", "syslog", "fanotify_init", "fanotify_mark",
        /* obsolete */
        "lookup_dcookie", "nfsservctl",
};

/* clone's flags argument: s390 swaps the first two arguments. */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

static const uint32_t clone_namespace_flags[] = {
        CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME,
};

/* TIOCSTI pushes input into a terminal, which a process outside the sandbox then reads as typed
 * by its user; TIOCLINUX can read the console's screen and select/paste; TIOCSETD changes a
 * terminal's line discipline, which would reach the caller's terminal when a file descriptor of it
 * is passed in and loads rarely used kernel code (the line disciplines of serial protocols, a
 * recurring source of kernel bugs) for any pty. */
static const uint32_t ioctl_eperm[] = { TIOCSTI, TIOCLINUX, TIOCSETD };

static const uint32_t socket_allow[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
/* AF_VSOCK talks to the hypervisor and other VMs and is not namespaced. */
static const uint32_t socket_eperm[] = { AF_VSOCK };

/* Querying (0xffffffff), Linux, 32-bit Linux (setarch i686/linux32) and the 2.6 version hack.
 * Others, ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC among them, weaken the payload's own
 * hardening and are EPERM. */
static const uint32_t personality_allow[] = {
        PER_LINUX, PER_LINUX32, UNAME26, UNAME26 | PER_LINUX32, UINT32_C(0xffffffff),
};

static int policy_set_names(Policy *p, const char *const *names, size_t n, uint32_t action) {
        for (size_t i = 0; i < n; i++) {
                int nr = resolve_syscall(names[i]);
                if (nr < 0) {
                        log_debug("seccomp: skipping '%s' (%s)", names[i],
                                  nr == -ENOENT ? "unknown to libseccomp" : "not on this architecture");
                        continue;
                }
                int r = policy_set(p, nr, action, ARG_CHECK_NONE);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int policy_set_check(Policy *p, const char *name, ArgCheck check) {
        int nr = resolve_syscall(name);
        if (nr < 0)
                return 0;
        return policy_set(p, nr, SCMP_ACT_ALLOW, check);
}

static int policy_load_default(Policy *p) {
        int r;

        p->default_action = SCMP_ACT_ERRNO(ENOSYS);
        r = policy_set_names(p, default_allow, ELEMENTSOF(default_allow), SCMP_ACT_ALLOW);
        if (r < 0)
                return r;
        r = policy_set_names(p, default_eperm, ELEMENTSOF(default_eperm), SCMP_ACT_ERRNO(EPERM));
        if (r < 0)
                return r;
        /* clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes glibc (2.34+)
         * fall back to clone, whose flags we do check. */
        r = policy_set_names(p, (const char *const[]) { "clone3" }, 1, SCMP_ACT_ERRNO(ENOSYS));
        if (r < 0)
                return r;

        r = policy_set_check(p, "clone", ARG_CHECK_CLONE);
        if (r >= 0)
                r = policy_set_check(p, "ioctl", ARG_CHECK_IOCTL);
        if (r >= 0)
                r = policy_set_check(p, "socket", ARG_CHECK_SOCKET);
        /* The same families for socketpair(): its first argument is the family too. */
        if (r >= 0)
                r = policy_set_check(p, "socketpair", ARG_CHECK_SOCKET);
        if (r >= 0)
                r = policy_set_check(p, "personality", ARG_CHECK_PERSONALITY);
        return r;
}

/* ---- compiling ------------------------------------------------------------------------------- */

static int add_rule(scmp_filter_ctx ctx, uint32_t default_action, uint32_t action, int nr, unsigned n_cmp,
                    const struct scmp_arg_cmp *cmp) {
        /* libseccomp refuses rules that repeat the default action; leaving them out means the same. */
        if (action == default_action)
                return 0;
        return seccomp_rule_add_array(ctx, action, nr, n_cmp, cmp);
}

/* All comparisons below are on the low 32 bits of an argument (SCMP_CMP_MASKED_EQ with a mask that
 * has no high bits): the arguments checked are int or unsigned int (clone's flags are an unsigned
 * long of which the kernel uses only the low 32 bits), so setting bits 32-63 of the register must
 * not dodge a check, as it would with SCMP_CMP_EQ/NE on the whole 64 bits. */
static struct scmp_arg_cmp arg_masked_eq(unsigned arg, uint32_t mask, uint32_t value) {
        return (struct scmp_arg_cmp) {
                .arg = arg,
                .op = SCMP_CMP_MASKED_EQ,
                .datum_a = mask,
                .datum_b = value,
        };
}

static int add_values(scmp_filter_ctx ctx, uint32_t default_action, uint32_t action, int nr, unsigned arg,
                      const uint32_t *values, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct scmp_arg_cmp cmp = arg_masked_eq(arg, UINT32_MAX, values[i]);
                int r = add_rule(ctx, default_action, action, nr, 1, &cmp);
                if (r < 0)
                        return r;
        }
        return 0;
}

static uint32_t high_bits_mask(unsigned n_bits) {
        return n_bits >= 32 ? UINT32_MAX : ~(UINT32_MAX >> n_bits);
}

static bool any_with_prefix(const uint32_t *const sets[], const size_t n_sets[], size_t k, uint32_t mask,
                            uint32_t prefix) {
        for (size_t s = 0; s < k; s++)
                for (size_t i = 0; i < n_sets[s]; i++)
                        if ((sets[s][i] & mask) == prefix)
                                return true;
        return false;
}

/* Add rules with ACTION for every 32-bit value of ARG that is in none of the K sets. libseccomp
 * cannot have an unconditional rule next to conditional ones for the same syscall (the
 * unconditional one silently wins), and which of several matching conditional rules applies
 * depends on its internal ordering. So the "everything else" case is written as the complement of
 * the listed values, a set of prefixes on the binary trie of the values: every value then matches
 * exactly one rule, whatever the order. At most 32 rules per listed value. DEPTH bits of PREFIX
 * are fixed. */
static int add_complement(scmp_filter_ctx ctx, uint32_t default_action, uint32_t action, int nr, unsigned arg,
                          const uint32_t *const sets[], const size_t n_sets[], size_t k, unsigned depth,
                          uint32_t prefix) {
        uint32_t mask = high_bits_mask(depth + 1);

        for (uint32_t bit = 0; bit <= 1; bit++) {
                uint32_t p = prefix | (bit << (31 - depth));
                int r;

                if (!any_with_prefix(sets, n_sets, k, mask, p)) {
                        struct scmp_arg_cmp cmp = arg_masked_eq(arg, mask, p);
                        r = add_rule(ctx, default_action, action, nr, 1, &cmp);
                } else if (depth + 1 < 32)
                        r = add_complement(ctx, default_action, action, nr, arg, sets, n_sets, k, depth + 1, p);
                else
                        r = 0; /* exactly a listed value */
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_arg_check(scmp_filter_ctx ctx, uint32_t def, const Entry *e) {
        const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
        int r;

        switch (e->check) {
        case ARG_CHECK_CLONE: {
                /* Allowed when no namespace flag is set; EPERM for each one that is. These rules
                 * overlap only where they agree. */
                uint32_t all = 0;
                for (size_t i = 0; i < ELEMENTSOF(clone_namespace_flags); i++) {
                        struct scmp_arg_cmp cmp = arg_masked_eq(CLONE_FLAGS_ARG, clone_namespace_flags[i],
                                                                clone_namespace_flags[i]);
                        r = add_rule(ctx, def, eperm, e->nr, 1, &cmp);
                        if (r < 0)
                                return r;
                        all |= clone_namespace_flags[i];
                }
                struct scmp_arg_cmp cmp = arg_masked_eq(CLONE_FLAGS_ARG, all, 0);
                return add_rule(ctx, def, SCMP_ACT_ALLOW, e->nr, 1, &cmp);
        }
        case ARG_CHECK_IOCTL: {
                /* ioctl's request is an unsigned int (arg 1). */
                const uint32_t *sets[] = { ioctl_eperm };
                const size_t n_sets[] = { ELEMENTSOF(ioctl_eperm) };
                r = add_values(ctx, def, eperm, e->nr, 1, ioctl_eperm, ELEMENTSOF(ioctl_eperm));
                if (r < 0)
                        return r;
                return add_complement(ctx, def, SCMP_ACT_ALLOW, e->nr, 1, sets, n_sets, 1, 0, 0);
        }
        case ARG_CHECK_SOCKET: {
                const uint32_t *sets[] = { socket_allow, socket_eperm };
                const size_t n_sets[] = { ELEMENTSOF(socket_allow), ELEMENTSOF(socket_eperm) };
                r = add_values(ctx, def, SCMP_ACT_ALLOW, e->nr, 0, socket_allow, ELEMENTSOF(socket_allow));
                if (r < 0)
                        return r;
                r = add_values(ctx, def, eperm, e->nr, 0, socket_eperm, ELEMENTSOF(socket_eperm));
                if (r < 0)
                        return r;
                return add_complement(ctx, def, SCMP_ACT_ERRNO(EAFNOSUPPORT), e->nr, 0, sets, n_sets, 2, 0,
                                      0);
        }
        case ARG_CHECK_PERSONALITY: {
                const uint32_t *sets[] = { personality_allow };
                const size_t n_sets[] = { ELEMENTSOF(personality_allow) };
                r = add_values(ctx, def, SCMP_ACT_ALLOW, e->nr, 0, personality_allow,
                               ELEMENTSOF(personality_allow));
                if (r < 0)
                        return r;
                return add_complement(ctx, def, eperm, e->nr, 0, sets, n_sets, 1, 0, 0);
        }
        case ARG_CHECK_NONE:
                return add_rule(ctx, def, e->action, e->nr, 0, NULL);
        case _ARG_CHECK_MAX:
        case _ARG_CHECK_INVALID:
                break;
        }
        return -EINVAL;
}

/* Export the BPF of CTX through a memfd (libseccomp 2.5 can only write it to an fd). */
static int export_program(scmp_filter_ctx ctx, FilterProgram **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ FilterProgram *p = NULL;
        struct stat st;
        size_t size, n = 0;
        int r;

        fd = memfd_create("sandbox-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        size = (size_t) st.st_size;
        if (size == 0 || size % sizeof(struct sock_filter) != 0)
                return -EIO;
        if (size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -E2BIG;

        p = malloc(sizeof *p + size);
        if (!p)
                return -ENOMEM;
        while (n < size) {
                ssize_t k = pread(fd, (uint8_t *) p->insns + n, size - n, (off_t) n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -EIO;
                n += (size_t) k;
        }
        p->fprog = (struct sock_fprog) {
                .len = (unsigned short) (size / sizeof(struct sock_filter)),
                .filter = p->insns,
        };
        *ret = TAKE_PTR(p);
        return 0;
}

static int policy_compile(const Policy *policy, FilterProgram **ret) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        ctx = seccomp_init(policy->default_action);
        if (!ctx)
                return -ENOMEM;
        /* Only the native ABI is in the filter; calls through any other ABI kill the process. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return r;

        for (size_t i = 0; i < policy->n_entries; i++) {
                r = add_arg_check(ctx, policy->default_action, &policy->entries[i]);
                if (r < 0)
                        return r;
        }
        /* A binary search over syscall numbers instead of a linear list. libseccomp < 2.5.4 got an
         * empty filter wrong with it, hence only with rules. */
        if (policy->n_entries > 0) {
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
                if (r < 0)
                        log_debug_errno(r, "seccomp: no binary tree optimisation, ignoring: %m");
        }
        return export_program(ctx, ret);
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Store "NAME:LINE: message" (or "NAME: message" for LINE 0) in *ret_error and return R. */
static int fail(char **ret_error, int r, const char *name, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int fail(char **ret_error, int r, const char *name, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        char *s = NULL;
        va_list ap;

        if (!ret_error)
                return r;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (msg && (line > 0 ? asprintf(&s, "%s:%u: %s", name, line, msg)
                             : asprintf(&s, "%s: %s", name, msg)) < 0)
                s = NULL;
        *ret_error = s;
        return r;
}

static const char *errno_text(int r) {
        const char *s = strerrordesc_np(r < 0 ? -r : r);
        return s ?: "unknown error";
}

/* ---- the policy file ------------------------------------------------------------------------- */

typedef struct Parser {
        const char *name;
        unsigned line;
        char **ret_error;
        Policy *policy;
        bool seen_default;  /* a "default" line */
        bool seen_anything; /* any directive ("include default" must come first) */
        bool included;
        size_t n_names;
} Parser;

static int parse_errno(const char *s, int *ret) {
        uint32_t u;

        if (safe_atou32(s, &u) >= 0) {
                if (u < 1 || u > FILTER_ERRNO_MAX)
                        return -ERANGE;
                *ret = (int) u;
                return 0;
        }
        for (int e = 1; e <= FILTER_ERRNO_MAX; e++) {
                const char *n = strerrorname_np(e);
                if (n && streq(n, s)) {
                        *ret = e;
                        return 0;
                }
        }
        return -ENOENT;
}

static int parse_action(Parser *ps, const char *word, uint32_t *ret) {
        int e, r;

        if (streq(word, "allow"))
                *ret = SCMP_ACT_ALLOW;
        else if (streq(word, "kill"))
                *ret = SCMP_ACT_KILL_PROCESS;
        else if (streq(word, "log"))
                *ret = SCMP_ACT_LOG;
        else if (streq(word, "errno"))
                *ret = SCMP_ACT_ERRNO(EPERM);
        else if (strneq(word, "errno:", 6)) {
                r = parse_errno(word + 6, &e);
                if (r < 0)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "unknown errno '%s'", word + 6);
                *ret = SCMP_ACT_ERRNO((uint32_t) e);
        } else
                return fail(ps->ret_error, -EINVAL, ps->name, ps->line,
                            "unknown action '%s' (expected allow, kill, log, errno or errno:NAME)", word);
        return 0;
}

/* Split LINE (modified) into at most MAX words on blanks; returns the count. */
static size_t split_words(char *line, char **words, size_t max) {
        size_t n = 0;
        char *p = line;

        for (;;) {
                p += strspn(p, " \t\r\v\f");
                if (*p == '\0' || n >= max)
                        return n;
                words[n++] = p;
                p += strcspn(p, " \t\r\v\f");
                if (*p == '\0')
                        return n;
                *p++ = '\0';
        }
}

static int parse_line(Parser *ps, char *line) {
        /* A line of FILTER_POLICY_MAX_LINE bytes has at most half as many words. */
        char *words[FILTER_POLICY_MAX_LINE / 2 + 1];
        uint32_t action;
        size_t n;
        int r;

        line[strcspn(line, "#")] = '\0';
        n = split_words(line, words, ELEMENTSOF(words));
        if (n == 0)
                return 0;

        if (streq(words[0], "include")) {
                if (n != 2 || !streq(words[1], "default"))
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line,
                                    "only 'include default' can be included");
                if (ps->seen_anything)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line,
                                    "'include default' must come before every other line");
                ps->seen_anything = ps->included = true;
                r = policy_load_default(ps->policy);
                if (r < 0)
                        return fail(ps->ret_error, r, ps->name, ps->line, "cannot load the default policy: %s",
                                    errno_text(r));
                return 0;
        }
        ps->seen_anything = true;

        if (streq(words[0], "default")) {
                if (n != 2)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "expected 'default ACTION'");
                if (ps->seen_default)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "second 'default' line");
                r = parse_action(ps, words[1], &action);
                if (r < 0)
                        return r;
                ps->seen_default = true;
                ps->policy->default_action = action;
                return 0;
        }

        r = parse_action(ps, words[0], &action);
        if (r < 0)
                return r;
        if (n < 2)
                return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "expected 'ACTION SYSCALL...'");
        for (size_t i = 1; i < n; i++) {
                if (++ps->n_names > FILTER_POLICY_MAX_NAMES)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line,
                                    "more than %u syscall names in the policy", FILTER_POLICY_MAX_NAMES);
                int nr = resolve_syscall(words[i]);
                if (nr == -ENOENT)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "unknown syscall '%s'",
                                    words[i]);
                if (nr < 0) {
                        log_debug("seccomp: %s:%u: '%s' is not a syscall of this architecture, ignoring",
                                  ps->name, ps->line, words[i]);
                        continue;
                }
                r = policy_set(ps->policy, nr, action, ARG_CHECK_NONE);
                if (r < 0)
                        return fail(ps->ret_error, r, ps->name, ps->line, "%s", errno_text(r));
        }
        return 0;
}

static int parse_text(Parser *ps, const char *text, size_t size) {
        char line[FILTER_POLICY_MAX_LINE + 1];
        size_t pos = 0;

        while (pos < size) {
                const char *start = text + pos, *nl = memchr(start, '\n', size - pos);
                size_t len = nl ? (size_t) (nl - start) : size - pos;
                int r;

                ps->line++;
                if (len > FILTER_POLICY_MAX_LINE)
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "line longer than %u bytes",
                                    FILTER_POLICY_MAX_LINE);
                if (memchr(start, '\0', len))
                        return fail(ps->ret_error, -EINVAL, ps->name, ps->line, "NUL byte in the line");
                memcpy(line, start, len);
                line[len] = '\0';
                r = parse_line(ps, line);
                if (r < 0)
                        return r;
                pos += len + (nl ? 1 : 0);
        }
        return 0;
}

/* ---- the API --------------------------------------------------------------------------------- */

int filter_compile_text(const char *name, const char *text, size_t size, FilterProgram **ret_program,
                        char **ret_error) {
        _cleanup_(policy_done) Policy policy = { .default_action = SCMP_ACT_ERRNO(ENOSYS) };
        FilterProgram *p = NULL;
        Parser ps = {
                .name = name ?: "<policy>",
                .ret_error = ret_error,
                .policy = &policy,
        };
        int r;

        assert_return(text || size == 0, -EINVAL);
        assert_return(ret_program, -EINVAL);

        if (size > FILTER_POLICY_MAX_SIZE)
                return fail(ret_error, -EINVAL, ps.name, 0, "policy larger than %u bytes",
                            FILTER_POLICY_MAX_SIZE);
        r = parse_text(&ps, text, size);
        if (r < 0)
                return r;
        r = policy_compile(&policy, &p);
        if (r < 0)
                return fail(ret_error, r, ps.name, 0, "cannot compile the seccomp filter: %s", errno_text(r));
        *ret_program = p;
        return 0;
}

static int read_policy_file(const char *path, char **ret, size_t *ret_size, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;
        int r;

        /* O_NONBLOCK: a FIFO must not hang us before fstat() tells it apart from a file. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                return fail(ret_error, r, path, 0, "%s", errno_text(r));
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                return fail(ret_error, r, path, 0, "%s", errno_text(r));
        }
        if (!S_ISREG(st.st_mode))
                return fail(ret_error, -EINVAL, path, 0, "not a regular file");
        if ((uint64_t) st.st_size > FILTER_POLICY_MAX_SIZE)
                return fail(ret_error, -EINVAL, path, 0, "policy larger than %u bytes", FILTER_POLICY_MAX_SIZE);

        buf = malloc(FILTER_POLICY_MAX_SIZE + 1);
        if (!buf)
                return fail(ret_error, -ENOMEM, path, 0, "%s", errno_text(ENOMEM));
        for (;;) { /* the file may grow after fstat(): read one byte past the limit to notice */
                ssize_t k = read(fd, buf + n, FILTER_POLICY_MAX_SIZE + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = negative_errno();
                        return fail(ret_error, r, path, 0, "%s", errno_text(r));
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > FILTER_POLICY_MAX_SIZE)
                        return fail(ret_error, -EINVAL, path, 0, "policy larger than %u bytes",
                                    FILTER_POLICY_MAX_SIZE);
        }
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int filter_compile(const char *policy, FilterProgram **ret_program, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        assert_return(policy && *policy, -EINVAL);
        assert_return(ret_program, -EINVAL);

        if (streq(policy, "unconfined")) {
                *ret_program = NULL;
                return 0;
        }
        if (streq(policy, "default")) {
                _cleanup_(policy_done) Policy p = {};
                FilterProgram *prog = NULL;

                r = policy_load_default(&p);
                if (r >= 0)
                        r = policy_compile(&p, &prog);
                if (r < 0)
                        return fail(ret_error, r, "default", 0, "cannot compile the seccomp filter: %s",
                                    errno_text(r));
                *ret_program = prog;
                return 0;
        }

        r = read_policy_file(policy, &text, &size, ret_error);
        if (r < 0)
                return r;
        return filter_compile_text(policy, text, size, ret_program, ret_error);
}

int filter_install(const FilterProgram *program) {
        if (!program)
                return -EINVAL;
        /* No flags: no TSYNC (the child is single-threaded), no SPEC_ALLOW (keep the speculation
         * mitigations the kernel applies to seccomp'ed tasks). */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program->fprog) < 0)
                return negative_errno();
        return 0;
}

size_t filter_program_size(const FilterProgram *program) {
        return program ? program->fprog.len : 0;
}

const struct sock_fprog *filter_program_fprog(const FilterProgram *program) {
        return program ? &program->fprog : NULL;
}

FilterProgram *filter_program_free(FilterProgram *program) {
        free(program);
        return NULL;
}

int filter_program_from_bpf(const void *insns, size_t size, FilterProgram **ret) {
        FilterProgram *p;

        if (size == 0 || size % sizeof(struct sock_filter) != 0 || size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -EINVAL;
        p = malloc(sizeof *p + size);
        if (!p)
                return -ENOMEM;
        memcpy(p->insns, insns, size);
        p->fprog = (struct sock_fprog) {
                .len = (unsigned short) (size / sizeof(struct sock_filter)),
                .filter = p->insns,
        };
        *ret = p;
        return 0;
}

int filter_export(void *scmp_ctx, FilterProgram **ret_program) {
        if (!scmp_ctx || !ret_program)
                return -EINVAL;
        return export_program((scmp_filter_ctx) scmp_ctx, ret_program);
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t size) {
        for (const uint8_t *c = data; size-- > 0; c++)
                h = (h ^ *c) * UINT64_C(0x100000001b3);
        return h;
}

/* The cache key: everything the compiled default policy depends on. Another libseccomp, kernel,
 * policy table or build of ours (the running binary's identity) gives another file name, so a stale
 * program is never loaded. */
static int default_cache_name(char *buf, size_t size) {
        _cleanup_(policy_done) Policy p = {};
        const struct scmp_version *v = seccomp_version();
        struct utsname u = {};
        struct stat exe = {};
        char key[512];
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        int r;

        r = policy_load_default(&p);
        if (r < 0)
                return r;
        if (uname(&u) < 0 || stat("/proc/self/exe", &exe) < 0)
                return -errno;
        snprintf(key, sizeof key, "%s|%u.%u.%u|%u|%s|%s|%llu:%llu:%lld:%lld.%ld", PROJECT_VERSION,
                 v ? v->major : 0, v ? v->minor : 0, v ? v->micro : 0, seccomp_api_get(), u.release, u.machine,
                 (unsigned long long) exe.st_dev, (unsigned long long) exe.st_ino, (long long) exe.st_size,
                 (long long) exe.st_mtim.tv_sec, exe.st_mtim.tv_nsec);
        h = fnv1a(h, key, strlen(key));
        h = fnv1a(h, &p.default_action, sizeof p.default_action);
        h = fnv1a(h, p.entries, p.n_entries * sizeof *p.entries);
        snprintf(buf, size, "default-%016llx.bpf", (unsigned long long) h);
        return 0;
}

int filter_compile_cached(const char *policy, int cache_dirfd, FilterProgram **ret_program, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        FilterProgram *prog = NULL;
        char name[64];
        size_t size;
        int r;

        assert_return(policy && ret_program, -EINVAL);
        if (cache_dirfd < 0 || !streq(policy, "default"))
                return filter_compile(policy, ret_program, ret_error);

        if (default_cache_name(name, sizeof name) < 0)
                return filter_compile(policy, ret_program, ret_error);
        if (read_file_at(cache_dirfd, name, BPF_MAXINSNS * sizeof(struct sock_filter), &data, &size) >= 0 &&
            filter_program_from_bpf(data, size, &prog) >= 0) {
                *ret_program = prog;
                return 0;
        }
        r = filter_compile(policy, &prog, ret_error);
        if (r < 0)
                return r;
        /* A cache that cannot be written only costs time next run. */
        (void) write_file_atomic_at(cache_dirfd, name, prog->insns, prog->fprog.len * sizeof(struct sock_filter), 0600);
        *ret_program = prog;
        return 0;
}
