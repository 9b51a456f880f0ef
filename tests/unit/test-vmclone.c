/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of runtime/vmclone.c: the child runs the function on the stack it was given, in the
 * caller's memory (what it writes, the caller reads), with the stack aligned as the ABI wants (a
 * misaligned one crashes SSE code in the child), and exits with the function's value; vmclone()
 * returns only after the child executed or ended (CLONE_VFORK), and the child's oom_score_adj stays its
 * own; CLONE_PIDFD gives a pidfd; bad arguments fail
 * without a child; without the trampoline (not x86-64, an ASan build) it is -ENOSYS. Unprivileged.
 * Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "tap.h"
#include "vmclone.h"

typedef struct Shared {
        int value;
        uintptr_t sp, stack_lo, stack_hi;       /* where the child's stack was, and the range it was given */
        bool aligned;
        char text[64];
        const char *exec_path;
} Shared;

static int child_write(void *arg) {
        Shared *s = arg;
        alignas(16) long double x = 2.5L;
        int here;

        s->sp = (uintptr_t) &here;
        s->aligned = ((uintptr_t) &x % 16) == 0;
        /* Formatting a double uses SSE moves that need the ABI's stack alignment. */
        snprintf(s->text, sizeof s->text, "%.3f %Lf", 1.25, x);
        s->value = 4242;
        return 42;
}

static int child_exec(void *arg) {
        Shared *s = arg;
        const char *const argv[] = { s->exec_path, NULL };
        const char *const envp[] = { NULL };

        s->value = 7;
        (void) syscall(SYS_execve, s->exec_path, argv, envp);
        return 127;
}

/* Raises its own oom_score_adj (anyone may raise theirs). */
static int child_oom(void *arg) {
        Shared *s = arg;
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return 10;
        if (write(fd, "777", 3) != 3)
                return 11;
        close(fd);
        s->value = 1;
        return 0;
}

static int read_oom_score_adj(const char *path) {
        char buf[32] = "";
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return -10000;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        return n > 0 ? atoi(buf) : -10000;
}

static int wait_status(pid_t pid) {
        int status;

        if (waitpid(pid, &status, 0) != pid)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* FN(S) in a child of vmclone() on a stack of its own (its range in S), with FLAGS; the pid, or -errno. The
 * stack is unmapped at once: vmclone() returns after the child executed or ended. */
static pid_t spawn(int (*fn)(void *), Shared *s, uint64_t flags, int *ret_pidfd) {
        struct clone_args ca = {
                .flags = flags,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
        };
        void *stack = vmclone_stack(VMCLONE_STACK_SIZE);

        if (!stack)
                return -ENOMEM;
        s->stack_lo = (uintptr_t) stack;
        s->stack_hi = (uintptr_t) stack + VMCLONE_STACK_SIZE;
        pid_t pid = vmclone(&ca, fn, s, stack, VMCLONE_STACK_SIZE);
        vmclone_stack_free(stack, VMCLONE_STACK_SIZE);
        return pid;
}

/* Where there is no trampoline (not x86-64, an ASan build) vmclone() says so and makes no
 * child: the callers copy instead. */
static int test_without_trampoline(void) {
        if (HAVE_VMCLONE)
                return 0;
        Shared s = {};
        char stack[8192];
        struct clone_args ca = { .exit_signal = SIGCHLD };
        CHECK_EQ(vmclone(&ca, child_write, &s, stack, sizeof stack), -ENOSYS);
        CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
        CHECK_EQ(s.value, 0);
        return 0;
}

static int test_shared_memory_and_status(void) {
        if (!HAVE_VMCLONE)
                return 0; /* test_without_trampoline */
        Shared s = {};
        pid_t pid = spawn(child_write, &s, 0, NULL);
        CHECK(pid > 0);
        CHECK_EQ(wait_status(pid), 42);
        /* What it wrote is in our memory, and it ran on the stack we gave it. */
        CHECK_EQ(s.value, 4242);
        CHECK(streq(s.text, "1.250 2.500000"));
        CHECK(s.aligned);
        CHECK(s.sp > s.stack_lo && s.sp < s.stack_hi);
        return 0;
}

static int test_vfork_returns_after_exec(void) {
        if (!HAVE_VMCLONE)
                return 0; /* test_without_trampoline */
        Shared s = { .exec_path = "/bin/true" };
        int pidfd = -EBADF;
        pid_t pid = spawn(child_exec, &s, CLONE_PIDFD, &pidfd);
        CHECK(pid > 0);
        /* CLONE_VFORK: it has executed, so its write is there (and its stack was ours again). */
        CHECK_EQ(s.value, 7);
        CHECK(pidfd >= 0);
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 10000), 1);
        CHECK_EQ(wait_status(pid), 0);
        safe_close(pidfd);
        return 0;
}

static int test_exec_failure_is_reported(void) {
        if (!HAVE_VMCLONE)
                return 0; /* test_without_trampoline */
        Shared s = { .exec_path = "/nonexistent/program" };
        pid_t pid = spawn(child_exec, &s, 0, NULL);
        CHECK(pid > 0);
        CHECK_EQ(wait_status(pid), 127);
        return 0;
}

/* The kernel keeps one oom_score_adj for processes that share memory, but for a vfork child: the union
 * server's -1000 must not become the daemon's. */
static int test_oom_score_adj_stays_the_childs(void) {
        if (!HAVE_VMCLONE)
                return 0; /* test_without_trampoline */
        Shared s = {};
        int before = read_oom_score_adj("/proc/self/oom_score_adj");
        CHECK(before > -1000 && before < 777);
        pid_t pid = spawn(child_oom, &s, 0, NULL);
        CHECK(pid > 0);
        CHECK_EQ(wait_status(pid), 0);
        CHECK_EQ(s.value, 1);
        CHECK_EQ(read_oom_score_adj("/proc/self/oom_score_adj"), before);
        return 0;
}

static int test_bad_arguments(void) {
        if (!HAVE_VMCLONE)
                return 0; /* test_without_trampoline */
        Shared s = {};
        struct clone_args ca = { .exit_signal = SIGCHLD };
        CHECK_EQ(vmclone(&ca, child_write, &s, NULL, VMCLONE_STACK_SIZE), -EINVAL);
        void *stack = vmclone_stack(VMCLONE_STACK_SIZE);
        CHECK(stack);
        CHECK_EQ(vmclone(&ca, child_write, &s, stack, 100), -EINVAL);
        /* The kernel refuses a thread without shared signal handlers: no child, our errno back. */
        struct clone_args bad = { .flags = CLONE_THREAD };
        CHECK_EQ(vmclone(&bad, child_write, &s, stack, VMCLONE_STACK_SIZE), -EINVAL);
        CHECK_EQ(s.value, 0);
        CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
        vmclone_stack_free(stack, VMCLONE_STACK_SIZE);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(without_trampoline),
                TAP_TEST(shared_memory_and_status),
                TAP_TEST(vfork_returns_after_exec),
                TAP_TEST(exec_failure_is_reported),
                TAP_TEST(oom_score_adj_stays_the_childs),
                TAP_TEST(bad_arguments),
        };

        return tap_run(tests, ELEMENTSOF(tests));
}
