/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of runtime/filter.c, the seccomp policies.
 *
 * Parsing: every kind of policy-file error gives -EINVAL and "NAME:LINE: message" with the right
 * line, the limits hold at their edges, failures leave *ret_program alone, "unconfined" is NULL.
 *
 * The compiled BPF, evaluated here by a small classic-BPF interpreter on synthetic seccomp_data:
 * the argument checks (ioctl, socket, personality, clone) are right for many values, including
 * ones with bits 32-63 set, and foreign ABIs are killed.
 *
 * Real behaviour: a forked child sets no_new_privs, installs the filter and makes raw syscalls;
 * failures come back over a pipe and are printed as TAP diagnostics. The arguments of the refused
 * calls are chosen to be harmless should the filter ever let them through (bad pointers, paths
 * that do not exist, invalid flags). A child killed by the filter is asserted from its wait
 * status. Real programs (sh, python3, node, java) run under the default policy where installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "runtime/filter.h"
#include "tap.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define NAME "test.policy"

static char tmp_dir[256];

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

/* ---- parsing --------------------------------------------------------------------------------- */

static int compile(const char *text, size_t size, FilterProgram **ret, char **ret_error) {
        return filter_compile_text(NAME, text, size, ret, ret_error);
}

/* Expect TEXT to fail with R and a message starting with MSG, leaving *ret_program alone. */
static int expect_error(const char *text, size_t size, int r, const char *msg) {
        FilterProgram *marker = (FilterProgram *) (uintptr_t) 0x1, *p = marker;
        _cleanup_free_ char *error = NULL;
        int got = compile(text, size, &p, &error);

        if (got >= 0)
                filter_program_free(p);
        CHECK_EQ(got, r);
        CHECK(p == marker);
        CHECK(error);
        if (!strneq(error, msg, strlen(msg))) {
                printf("# message \"%s\", expected it to start with \"%s\"\n", error, msg);
                return -1;
        }
        return 0;
}

#define EXPECT_ERROR(text, r, msg) CHECK(expect_error((text), strlen(text), (r), (msg)) == 0)

static int expect_ok(const char *text, size_t size) {
        _cleanup_(filter_program_freep) FilterProgram *p = NULL;
        char *error = (char *) (uintptr_t) 0x1;
        int r = compile(text, size, &p, &error);

        if (r < 0 && error != (char *) (uintptr_t) 0x1) {
                printf("# unexpected error: %s\n", error ?: "(null)");
                free(error);
        }
        CHECK_EQ(r, 0);
        CHECK(p);
        CHECK(error == (char *) (uintptr_t) 0x1); /* left alone on success */
        CHECK(filter_program_size(p) > 0);
        return 0;
}

#define EXPECT_OK(text) CHECK(expect_ok((text), strlen(text)) == 0)

static int test_parse_errors(void) {
        EXPECT_ERROR("default allow\n# a comment\nallow read nosuchcall write\n", -EINVAL,
                     NAME ":3: unknown syscall 'nosuchcall'");
        EXPECT_ERROR("\n\n  \t\nfrobnicate read\n", -EINVAL, NAME ":4: unknown action 'frobnicate'");
        EXPECT_ERROR("default allow\nallow read\ndefault kill\n", -EINVAL, NAME ":3: second 'default' line");
        EXPECT_ERROR("default\n", -EINVAL, NAME ":1: expected 'default ACTION'");
        EXPECT_ERROR("default allow kill\n", -EINVAL, NAME ":1: expected 'default ACTION'");
        EXPECT_ERROR("default errno:EBOGUS\n", -EINVAL, NAME ":1: unknown errno 'EBOGUS'");
        EXPECT_ERROR("allow read\nerrno:0 write\n", -EINVAL, NAME ":2: unknown errno '0'");
        EXPECT_ERROR("errno:4096 write\n", -EINVAL, NAME ":1: unknown errno '4096'");
        EXPECT_ERROR("errno: write\n", -EINVAL, NAME ":1: unknown errno ''");
        EXPECT_ERROR("Allow read\n", -EINVAL, NAME ":1: unknown action 'Allow'");
        EXPECT_ERROR("allow\n", -EINVAL, NAME ":1: expected 'ACTION SYSCALL...'");
        EXPECT_ERROR("allow # read\n", -EINVAL, NAME ":1: expected 'ACTION SYSCALL...'");
        EXPECT_ERROR("allow read\ninclude default\n", -EINVAL,
                     NAME ":2: 'include default' must come before every other line");
        EXPECT_ERROR("include default\ninclude default\n", -EINVAL,
                     NAME ":2: 'include default' must come before every other line");
        EXPECT_ERROR("include strict\n", -EINVAL, NAME ":1: only 'include default' can be included");
        EXPECT_ERROR("include\n", -EINVAL, NAME ":1: only 'include default' can be included");
        /* the last line without a newline still counts */
        EXPECT_ERROR("allow read\nallow bogus", -EINVAL, NAME ":2: unknown syscall 'bogus'");
        /* a NUL byte inside the text */
        CHECK(expect_error("allow read\nallow\0write\n", 22, -EINVAL, NAME ":2: NUL byte in the line") == 0);
        /* NULL name */
        {
                _cleanup_free_ char *error = NULL;
                FilterProgram *p = NULL;
                CHECK_EQ(filter_compile_text(NULL, "bad", 3, &p, &error), -EINVAL);
                CHECK_STREQ(error, "<policy>:1: unknown action 'bad' (expected allow, kill, log, errno or "
                                   "errno:NAME)");
        }
        /* no message wanted */
        {
                FilterProgram *p = NULL;
                CHECK_EQ(filter_compile_text(NAME, "bad line", 8, &p, NULL), -EINVAL);
                CHECK(!p);
        }
        return 0;
}

static int test_parse_limits(void) {
        _cleanup_free_ char *text = NULL;
        size_t max = FILTER_POLICY_MAX_SIZE, len;

        text = malloc(max + 2 * FILTER_POLICY_MAX_LINE);
        CHECK(text);

        /* a line of exactly FILTER_POLICY_MAX_LINE bytes is fine, one more is not */
        len = (size_t) sprintf(text, "allow read\n#");
        memset(text + len, 'x', FILTER_POLICY_MAX_LINE - 1);
        len += FILTER_POLICY_MAX_LINE - 1;
        text[len++] = '\n';
        CHECK(expect_ok(text, len) == 0);
        text[len - 1] = 'x';
        text[len++] = '\n';
        CHECK(expect_error(text, len, -EINVAL, NAME ":2: line longer than 4096 bytes") == 0);
        /* also without a final newline */
        CHECK(expect_error(text, len - 1, -EINVAL, NAME ":2: line longer than 4096 bytes") == 0);

        /* exactly FILTER_POLICY_MAX_SIZE bytes of comment lines compile, one more byte does not */
        for (size_t i = 0; i < max; i += FILTER_POLICY_MAX_LINE) {
                memset(text + i, '#', FILTER_POLICY_MAX_LINE - 1);
                text[i + FILTER_POLICY_MAX_LINE - 1] = '\n';
        }
        CHECK(expect_ok(text, max) == 0);
        text[max] = '\n';
        CHECK(expect_error(text, max + 1, -EINVAL, NAME ": policy larger than 1048576 bytes") == 0);

        /* FILTER_POLICY_MAX_NAMES syscall names, then one more */
        len = 0;
        for (unsigned i = 0; i < FILTER_POLICY_MAX_NAMES; i++) {
                if (i % 100 == 0)
                        len += (size_t) sprintf(text + len, "%sallow", i ? "\n" : "");
                len += (size_t) sprintf(text + len, " %s", i % 2 ? "read" : "write");
        }
        text[len++] = '\n';
        CHECK(expect_ok(text, len) == 0);
        len += (size_t) sprintf(text + len, "allow getpid\n");
        CHECK(expect_error(text, len, -EINVAL, NAME ":42: more than 4096 syscall names in the policy") == 0);
        return 0;
}

static int test_parse_valid(void) {
        EXPECT_OK("");
        EXPECT_OK("# only a comment\n");
        EXPECT_OK("default allow\n");
        EXPECT_OK("default kill\nallow read write exit_group # trailing comment\n");
        EXPECT_OK("\tdefault\terrno:ENOSYS\r\nallow read\r\nerrno:EACCES open openat\r\nlog getpid\n");
        EXPECT_OK("default errno\nerrno:13 getcwd\nallow getcwd\n"); /* later lines override */
        EXPECT_OK("include default\nallow clone3 unshare\nkill ptrace\ndefault log\n");
        /* a syscall of another architecture only is accepted and ignored (portable policies) */
        EXPECT_OK("default allow\nerrno fstat64 _llseek socketcall\n");
        /* rules that repeat the default action */
        EXPECT_OK("default errno:ENOSYS\nerrno:ENOSYS getpid\nerrno:38 read\n");
        return 0;
}

static int write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        size_t n = strlen(text);
        if (write(fd, text, n) != (ssize_t) n)
                return -EIO;
        return 0;
}

static int test_compile_names(void) {
        _cleanup_(filter_program_freep) FilterProgram *p = (FilterProgram *) (uintptr_t) 0x1;
        _cleanup_free_ char *error = NULL;
        char path[300];

        /* "unconfined" is NULL, and installing NULL is refused rather than doing nothing */
        CHECK_EQ(filter_compile("unconfined", &p, &error), 0);
        CHECK(!p);
        CHECK(!error);
        CHECK_EQ(filter_install(NULL), -EINVAL);
        CHECK_EQ(filter_program_size(NULL), 0);

        CHECK_EQ(filter_compile("default", &p, &error), 0);
        CHECK(p);
        printf("# default policy: %zu BPF instructions\n", filter_program_size(p));
        CHECK(filter_program_size(p) > 100 && filter_program_size(p) <= BPF_MAXINSNS);
        CHECK(filter_program_fprog(p)->len == filter_program_size(p));
        /* a file with only "include default" compiles to the same program */
        {
                _cleanup_(filter_program_freep) FilterProgram *q = NULL;
                CHECK_EQ(compile("include default\n", 16, &q, NULL), 0);
                CHECK_EQ(filter_program_size(q), filter_program_size(p));
                CHECK(memcmp(filter_program_fprog(q)->filter, filter_program_fprog(p)->filter,
                             filter_program_size(p) * sizeof(struct sock_filter)) == 0);
        }
        p = filter_program_free(p);

        CHECK_EQ(filter_compile("", &p, &error), -EINVAL);
        CHECK_EQ(filter_compile(NULL, &p, &error), -EINVAL);

        /* a file */
        snprintf(path, sizeof path, "%s/ok.policy", tmp_dir);
        CHECK_EQ(write_file(path, "include default\nerrno:EACCES getcwd\n"), 0);
        CHECK_EQ(filter_compile(path, &p, &error), 0);
        CHECK(p);
        p = filter_program_free(p);

        /* an error names the path and line */
        snprintf(path, sizeof path, "%s/bad.policy", tmp_dir);
        CHECK_EQ(write_file(path, "default allow\nallow nosuchcall\n"), 0);
        CHECK_EQ(filter_compile(path, &p, &error), -EINVAL);
        CHECK(!p);
        {
                char want[400];
                snprintf(want, sizeof want, "%s:2: unknown syscall 'nosuchcall'", path);
                CHECK_STREQ(error, want);
        }
        error = mfree(error);

        /* missing file, directory, FIFO (must not block) */
        snprintf(path, sizeof path, "%s/missing.policy", tmp_dir);
        CHECK_EQ(filter_compile(path, &p, &error), -ENOENT);
        CHECK(error && strstr(error, "missing.policy: No such file or directory"));
        error = mfree(error);
        CHECK_EQ(filter_compile(tmp_dir, &p, &error), -EINVAL);
        CHECK(error && strstr(error, ": not a regular file"));
        error = mfree(error);
        snprintf(path, sizeof path, "%s/fifo", tmp_dir);
        CHECK_EQ(mkfifo(path, 0600), 0);
        CHECK_EQ(filter_compile(path, &p, &error), -EINVAL);
        CHECK(error && strstr(error, ": not a regular file"));
        error = mfree(error);

        /* too big on disk */
        snprintf(path, sizeof path, "%s/big.policy", tmp_dir);
        {
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                CHECK(fd >= 0);
                CHECK_EQ(ftruncate(fd, FILTER_POLICY_MAX_SIZE + 1), 0);
        }
        CHECK_EQ(filter_compile(path, &p, &error), -EINVAL);
        CHECK(error && strstr(error, "big.policy: policy larger than 1048576 bytes"));
        CHECK(!p);
        return 0;
}

/* ---- evaluating the BPF ---------------------------------------------------------------------- */

#if defined(__x86_64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef NATIVE_AUDIT_ARCH
/* A classic BPF interpreter for what libseccomp emits; returns the filter's return value, or
 * UINT32_MAX for an instruction it does not know or a jump out of the program. */
static uint32_t bpf_run(const struct sock_fprog *prog, const struct seccomp_data *d) {
        uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};

        for (size_t pc = 0; pc < prog->len; pc++) {
                const struct sock_filter *f = &prog->filter[pc];
                uint32_t k = f->k;

                switch (f->code) {
                case BPF_LD | BPF_W | BPF_ABS:
                        if (k > sizeof *d - 4 || k % 4)
                                return UINT32_MAX;
                        memcpy(&a, (const uint8_t *) d + k, 4);
                        break;
                case BPF_LD | BPF_IMM:
                        a = k;
                        break;
                case BPF_LDX | BPF_IMM:
                        x = k;
                        break;
                case BPF_LD | BPF_MEM:
                        if (k >= BPF_MEMWORDS)
                                return UINT32_MAX;
                        a = mem[k];
                        break;
                case BPF_LDX | BPF_MEM:
                        if (k >= BPF_MEMWORDS)
                                return UINT32_MAX;
                        x = mem[k];
                        break;
                case BPF_ST:
                        if (k >= BPF_MEMWORDS)
                                return UINT32_MAX;
                        mem[k] = a;
                        break;
                case BPF_STX:
                        if (k >= BPF_MEMWORDS)
                                return UINT32_MAX;
                        mem[k] = x;
                        break;
                case BPF_ALU | BPF_AND | BPF_K:
                        a &= k;
                        break;
                case BPF_ALU | BPF_OR | BPF_K:
                        a |= k;
                        break;
                case BPF_MISC | BPF_TAX:
                        x = a;
                        break;
                case BPF_MISC | BPF_TXA:
                        a = x;
                        break;
                case BPF_JMP | BPF_JA:
                        pc += k;
                        break;
                case BPF_JMP | BPF_JEQ | BPF_K:
                        pc += a == k ? f->jt : f->jf;
                        break;
                case BPF_JMP | BPF_JGT | BPF_K:
                        pc += a > k ? f->jt : f->jf;
                        break;
                case BPF_JMP | BPF_JGE | BPF_K:
                        pc += a >= k ? f->jt : f->jf;
                        break;
                case BPF_JMP | BPF_JSET | BPF_K:
                        pc += (a & k) ? f->jt : f->jf;
                        break;
                case BPF_RET | BPF_K:
                        return k;
                case BPF_RET | BPF_A:
                        return a;
                default:
                        printf("# unknown BPF instruction 0x%04x at %zu\n", f->code, pc);
                        return UINT32_MAX;
                }
        }
        return UINT32_MAX;
}

static uint32_t eval(const FilterProgram *p, uint32_t arch, int nr, uint64_t a0, uint64_t a1) {
        struct seccomp_data d = {
                .nr = nr,
                .arch = arch,
                .args = { a0, a1 },
        };
        return bpf_run(filter_program_fprog(p), &d);
}

#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | (uint32_t) (e))

/* Check VALUE of argument ARG of NR, with and without junk in bits 32-63. */
static int check_arg(const FilterProgram *p, int nr, unsigned arg, uint32_t value, uint32_t want) {
        static const uint64_t highs[] = { 0, UINT64_C(1) << 32, UINT64_C(0xffffffff) << 32 };
        for (size_t i = 0; i < ELEMENTSOF(highs); i++) {
                uint64_t v = highs[i] | value;
                uint32_t got = eval(p, NATIVE_AUDIT_ARCH, nr, arg == 0 ? v : 3, arg == 1 ? v : 3);
                if (got != want) {
                        printf("# syscall %d arg%u=0x%llx: filter returns 0x%08x, expected 0x%08x\n", nr, arg,
                               (unsigned long long) v, got, want);
                        return -1;
                }
        }
        return 0;
}

/* Values near the interesting ones, every single bit, and pseudo-random ones. */
static int sweep(const FilterProgram *p, int nr, unsigned arg, uint32_t (*expected)(uint32_t)) {
        static const uint32_t centres[] = { 0, 8, AF_VSOCK, TIOCSTI, TIOCLINUX, TIOCSETD, 0x20000, 0x80000000,
                                            0xffffffff };
        uint32_t seed = 0x12345678;

        for (size_t c = 0; c < ELEMENTSOF(centres); c++)
                for (int64_t d = -300; d <= 300; d++) {
                        uint32_t v = centres[c] + (uint32_t) d;
                        CHECK(check_arg(p, nr, arg, v, expected(v)) == 0);
                }
        for (unsigned b = 0; b < 32; b++) {
                CHECK(check_arg(p, nr, arg, UINT32_C(1) << b, expected(UINT32_C(1) << b)) == 0);
                CHECK(check_arg(p, nr, arg, ~(UINT32_C(1) << b), expected(~(UINT32_C(1) << b))) == 0);
                CHECK(check_arg(p, nr, arg, TIOCSTI ^ (UINT32_C(1) << b), expected(TIOCSTI ^ (UINT32_C(1) << b))) == 0);
        }
        for (unsigned i = 0; i < 20000; i++) {
                seed = seed * 1103515245 + 12345;
                CHECK(check_arg(p, nr, arg, seed, expected(seed)) == 0);
        }
        return 0;
}

static uint32_t expected_ioctl(uint32_t cmd) {
        return cmd == TIOCSTI || cmd == TIOCLINUX || cmd == TIOCSETD ? RET_ERRNO(EPERM) : SECCOMP_RET_ALLOW;
}

static uint32_t expected_socket(uint32_t family) {
        switch (family) {
        case AF_UNIX:
        case AF_INET:
        case AF_INET6:
        case AF_NETLINK:
                return SECCOMP_RET_ALLOW;
        case AF_VSOCK:
                return RET_ERRNO(EPERM);
        default:
                return RET_ERRNO(EAFNOSUPPORT);
        }
}

static uint32_t expected_personality(uint32_t persona) {
        switch (persona) {
        case PER_LINUX:
        case PER_LINUX32:
        case UNAME26:
        case UNAME26 | PER_LINUX32:
        case 0xffffffff:
                return SECCOMP_RET_ALLOW;
        default:
                return RET_ERRNO(EPERM);
        }
}

static uint32_t expected_clone(uint32_t flags) {
        const uint32_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                            CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME;
        return flags & ns ? RET_ERRNO(EPERM) : SECCOMP_RET_ALLOW;
}

static int test_bpf_default(void) {
        _cleanup_(filter_program_freep) FilterProgram *p = NULL;

        CHECK_EQ(filter_compile("default", &p, NULL), 0);

        CHECK(sweep(p, SYS_ioctl, 1, expected_ioctl) == 0);
        CHECK(sweep(p, SYS_socket, 0, expected_socket) == 0);
        CHECK(sweep(p, SYS_socketpair, 0, expected_socket) == 0); /* the same families */
        CHECK(sweep(p, SYS_personality, 0, expected_personality) == 0);
        CHECK(sweep(p, SYS_clone, 0, expected_clone) == 0);
        for (unsigned b = 0; b < 32; b++)
                CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_clone, (UINT64_C(1) << b) | SIGCHLD, 0),
                         expected_clone((UINT32_C(1) << b) | SIGCHLD));

        /* plain rules, the default, the ABI checks */
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_read, 0, 0), SECCOMP_RET_ALLOW);
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_mount, 0, 0), RET_ERRNO(EPERM));
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_clone3, 0, 0), RET_ERRNO(ENOSYS));
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, 1000, 0, 0), RET_ERRNO(ENOSYS));
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, -1, 0, 0), RET_ERRNO(ENOSYS));
        CHECK_EQ(eval(p, AUDIT_ARCH_I386, SYS_read, 0, 0), SECCOMP_RET_KILL_PROCESS);
        CHECK_EQ(eval(p, AUDIT_ARCH_ARM, SYS_read, 0, 0), SECCOMP_RET_KILL_PROCESS);
#ifdef __x86_64__
        CHECK_EQ(eval(p, AUDIT_ARCH_X86_64, 0x40000000 | SYS_getpid, 0, 0), SECCOMP_RET_KILL_PROCESS);
        CHECK_EQ(eval(p, AUDIT_ARCH_X86_64, 0x40000000, 0, 0), SECCOMP_RET_KILL_PROCESS);
        CHECK_EQ(eval(p, AUDIT_ARCH_X86_64, 0x7fffffff, 0, 0), SECCOMP_RET_KILL_PROCESS);
#endif
        return 0;
}

static int test_bpf_policy_file(void) {
        _cleanup_(filter_program_freep) FilterProgram *p = NULL;
        const char *text = "include default\n"
                           "default kill\n"
                           "errno:EACCES getcwd\n"
                           "log getppid\n"
                           "allow ioctl\n"; /* lifts the TIOCSTI check */

        CHECK_EQ(compile(text, strlen(text), &p, NULL), 0);
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_getcwd, 0, 0), RET_ERRNO(EACCES));
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_getppid, 0, 0), SECCOMP_RET_LOG);
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_ioctl, 0, TIOCSTI), SECCOMP_RET_ALLOW);
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, 1000, 0, 0), SECCOMP_RET_KILL_PROCESS);
        /* the argument checks of the default policy keep their own "else" actions */
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_socket, AF_PACKET, 0), RET_ERRNO(EAFNOSUPPORT));
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_clone, CLONE_NEWNET, 0), RET_ERRNO(EPERM));
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_clone, SIGCHLD, 0), SECCOMP_RET_ALLOW);
        CHECK_EQ(eval(p, NATIVE_AUDIT_ARCH, SYS_mount, 0, 0), RET_ERRNO(EPERM));
        return 0;
}
#else
static int test_bpf_default(void) {
        return tap_skip("no BPF evaluation for this architecture");
}
static int test_bpf_policy_file(void) {
        return tap_skip("no BPF evaluation for this architecture");
}
#endif

/* ---- real behaviour -------------------------------------------------------------------------- */

typedef int (*ChildFunc)(int report, const void *userdata);

/* In the child: report a failed expectation on the pipe and fail. */
#define CHILD_CHECK(expr)                                                                      \
        do {                                                                                   \
                if (!(expr)) {                                                                 \
                        dprintf(report, "%s:%d: failed: %s (errno %s)\n", __FILE__, __LINE__, #expr, \
                                strerrorname_np(errno) ?: "0");                                 \
                        return 1;                                                              \
                }                                                                              \
        } while (false)

/* In the child: CALL (a raw syscall) must fail with errno E. */
#define CHILD_FAILS(call, e)                                                                   \
        do {                                                                                   \
                errno = 0;                                                                     \
                long _r = (call);                                                              \
                int _e = errno;                                                                \
                if (_r != -1 || _e != (e)) {                                                   \
                        dprintf(report, "%s:%d: %s returned %ld (%s), expected -1 (%s)\n", __FILE__, \
                                __LINE__, #call, _r, _r == -1 ? strerrorname_np(_e) : "-",      \
                                strerrorname_np(e));                                           \
                        return 1;                                                              \
                }                                                                              \
        } while (false)

/* Fork a child that sets no_new_privs, installs PROGRAM (if not NULL) and returns FUNC's result as
 * its exit status; its reports are printed as TAP diagnostics. Returns the wait status. */
static int run_child(const FilterProgram *program, ChildFunc func, const void *userdata, int *ret_status) {
        int pipefd[2], status;
        char buf[4096];
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                int report = pipefd[1], r;
                const struct rlimit no_core = {};

                close(pipefd[0]);
                /* a child killed by SIGSYS must not leave core files */
                (void) setrlimit(RLIMIT_CORE, &no_core);
                (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
                (void) setsid(); /* no controlling terminal: vhangup() would be harmless */
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                        dprintf(report, "PR_SET_NO_NEW_PRIVS: %m\n");
                        syscall(SYS_exit_group, 120);
                }
                if (program) {
                        r = filter_install(program);
                        if (r < 0) {
                                dprintf(report, "filter_install: %s\n", strerrorname_np(-r));
                                syscall(SYS_exit_group, 121);
                        }
                }
                /* exit_group directly: no atexit handlers or sanitizer hooks under the filter */
                syscall(SYS_exit_group, func(report, userdata));
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                buf[n] = '\0';
                for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
                        printf("# child: %s\n", line);
        }
        close(pipefd[0]);
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        *ret_status = status;
        return 0;
}

static int expect_exit(int status, int code) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == code)
                return 0;
        if (WIFEXITED(status))
                printf("# child exited with %d, expected %d\n", WEXITSTATUS(status), code);
        else if (WIFSIGNALED(status))
                printf("# child killed by %s, expected exit %d\n", sigabbrev_np(WTERMSIG(status)) ?: "?", code);
        return -1;
}

static int expect_signal(int status, int sig) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == sig)
                return 0;
        if (WIFEXITED(status))
                printf("# child exited with %d, expected SIG%s\n", WEXITSTATUS(status), sigabbrev_np(sig));
        else if (WIFSIGNALED(status))
                printf("# child killed by SIG%s, expected SIG%s\n", sigabbrev_np(WTERMSIG(status)) ?: "?",
                       sigabbrev_np(sig));
        return -1;
}

static int run_default(ChildFunc func, const void *userdata, int *ret_status) {
        _cleanup_(filter_program_freep) FilterProgram *p = NULL;
        int r = filter_compile("default", &p, NULL);
        if (r < 0)
                return r;
        return run_child(p, func, userdata, ret_status);
}

static int run_text(const char *text, ChildFunc func, const void *userdata, int *ret_status) {
        _cleanup_(filter_program_freep) FilterProgram *p = NULL;
        _cleanup_free_ char *error = NULL;
        int r = compile(text, strlen(text), &p, &error);
        if (r < 0) {
                printf("# %s\n", error ?: "(no message)");
                return r;
        }
        return run_child(p, func, userdata, ret_status);
}

#define EXPECT_CHILD_EXIT(run, code)                                                           \
        do {                                                                                   \
                int _status;                                                                   \
                CHECK_EQ((run), 0);                                                            \
                CHECK(expect_exit(_status, (code)) == 0);                                      \
        } while (false)
#define EXPECT_CHILD_SIGNAL(run, sig)                                                          \
        do {                                                                                   \
                int _status;                                                                   \
                CHECK_EQ((run), 0);                                                            \
                CHECK(expect_signal(_status, (sig)) == 0);                                     \
        } while (false)

static int child_status_file(int report, const void *userdata) {
        char buf[8192];
        ssize_t n;
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

        CHILD_CHECK(fd >= 0);
        n = read(fd, buf, sizeof buf - 1);
        CHILD_CHECK(n > 0);
        buf[n] = '\0';
        close(fd);
        CHILD_CHECK(strstr(buf, "\nSeccomp:\t2\n"));
        CHILD_CHECK(strstr(buf, "\nSeccomp_filters:\t1\n"));
        CHILD_CHECK(strstr(buf, "\nNoNewPrivs:\t1\n"));
        return 0;
}

static int test_installed(void) {
        EXPECT_CHILD_EXIT(run_default(child_status_file, NULL, &_status), 0);
        return 0;
}

static int child_refused(int report, const void *userdata) {
        char longname[1000];
        memset(longname, 'x', sizeof longname);

        /* mount tree */
        CHILD_FAILS(syscall(SYS_mount, NULL, "/nonexistent-sbx", NULL, 0, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_umount2, "/nonexistent-sbx", 0), EPERM);
        CHILD_FAILS(syscall(SYS_pivot_root, "/nonexistent-sbx-a", "/nonexistent-sbx-b"), EPERM);
        CHILD_FAILS(syscall(SYS_fsopen, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_fsmount, -1, 0, 0), EPERM);
        CHILD_FAILS(syscall(SYS_fspick, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_move_mount, -1, NULL, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_open_tree, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_mount_setattr, -1, NULL, 0, NULL, 0), EPERM);
        /* namespaces: unshare(0) would succeed without the filter (CLONE_NEWUSER is tried last,
         * as it would change what the calls below are allowed to do should it succeed) */
        CHILD_FAILS(syscall(SYS_unshare, 0), EPERM);
        CHILD_FAILS(syscall(SYS_setns, -1, 0), EPERM);
        /* clone3 is ENOSYS, so that glibc falls back to clone (checked below) */
        CHILD_FAILS(syscall(SYS_clone3, NULL, 0), ENOSYS);
        /* keyrings */
        CHILD_FAILS(syscall(SYS_keyctl, 0x7fffffff, 0, 0, 0, 0), EPERM);
        CHILD_FAILS(syscall(SYS_add_key, "user", NULL, NULL, 0, 0), EPERM);
        CHILD_FAILS(syscall(SYS_request_key, "user", NULL, NULL, 0), EPERM);
        /* attack surface */
        CHILD_FAILS(syscall(SYS_bpf, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
        CHILD_FAILS(syscall(SYS_userfaultfd, ~0u), EPERM);
        CHILD_FAILS(syscall(SYS_io_uring_setup, 0, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_io_uring_register, -1, 0, NULL, 0), EPERM);
        /* kernel code */
        CHILD_FAILS(syscall(SYS_kexec_load, 0, 0, NULL, 0xffffffffUL), EPERM);
#ifdef SYS_kexec_file_load
        CHILD_FAILS(syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xffffffffUL), EPERM);
#endif
        CHILD_FAILS(syscall(SYS_init_module, NULL, 0, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_finit_module, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_delete_module, NULL, 0), EPERM);
        /* file handles */
        CHILD_FAILS(syscall(SYS_open_by_handle_at, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_name_to_handle_at, -1, NULL, NULL, NULL, 0), EPERM);
        /* host-wide state */
        CHILD_FAILS(syscall(SYS_acct, "/nonexistent-sbx/acct"), EPERM);
        CHILD_FAILS(syscall(SYS_swapon, "/nonexistent-sbx", 0), EPERM);
        CHILD_FAILS(syscall(SYS_swapoff, "/nonexistent-sbx"), EPERM);
        CHILD_FAILS(syscall(SYS_reboot, 0, 0, 0, NULL), EPERM); /* bad magic: EINVAL without us */
        CHILD_FAILS(syscall(SYS_sethostname, longname, sizeof longname), EPERM);
        CHILD_FAILS(syscall(SYS_setdomainname, longname, sizeof longname), EPERM);
        CHILD_FAILS(syscall(SYS_vhangup), EPERM);
        /* clocks */
        CHILD_FAILS(syscall(SYS_settimeofday, (void *) 1, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_clock_settime, CLOCK_REALTIME, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_clock_adjtime, CLOCK_REALTIME, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_adjtimex, NULL), EPERM);
        /* ports, quotas, kernel log, fanotify, obsolete */
#if defined(__x86_64__) || defined(__i386__)
        CHILD_FAILS(syscall(SYS_iopl, 4), EPERM);
        CHILD_FAILS(syscall(SYS_ioperm, 0x10000, 1, 1), EPERM);
#endif
        CHILD_FAILS(syscall(SYS_quotactl, 0, NULL, 0, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_quotactl_fd, -1, 0, 0, NULL), EPERM);
        CHILD_FAILS(syscall(SYS_syslog, -1, NULL, 0), EPERM);
        CHILD_FAILS(syscall(SYS_fanotify_init, ~0u, 0), EPERM);
        CHILD_FAILS(syscall(SYS_fanotify_mark, -1, 0, 0, -1, NULL), EPERM);
#ifdef SYS_lookup_dcookie
        CHILD_FAILS(syscall(SYS_lookup_dcookie, 0, NULL, 0), EPERM);
#endif
#ifdef SYS_nfsservctl
        CHILD_FAILS(syscall(SYS_nfsservctl, 0, NULL, NULL), EPERM);
#endif
        /* personality: the ones that weaken hardening */
        CHILD_FAILS(syscall(SYS_personality, ADDR_NO_RANDOMIZE), EPERM);
        CHILD_FAILS(syscall(SYS_personality, READ_IMPLIES_EXEC), EPERM);
        CHILD_CHECK(syscall(SYS_personality, 0xffffffffUL) == PER_LINUX);
        CHILD_CHECK(syscall(SYS_personality, PER_LINUX) == PER_LINUX);
        CHILD_FAILS(syscall(SYS_unshare, CLONE_NEWUSER), EPERM);
        return 0;
}

static int test_refused(void) {
        EXPECT_CHILD_EXIT(run_default(child_refused, NULL, &_status), 0);
        return 0;
}

static int child_unknown(int report, const void *userdata) {
        CHILD_FAILS(syscall(1000), ENOSYS);
        CHILD_FAILS(syscall(-1), ENOSYS);
        /* real syscalls that are not in the allow-list; the kernel alone would say EBADF/EINVAL */
        CHILD_FAILS(syscall(SYS_process_madvise, -1, NULL, 0, 0, 0), ENOSYS);
        CHILD_FAILS(syscall(SYS_migrate_pages, -1, 0, NULL, NULL), ENOSYS);
#ifdef SYS_modify_ldt
        CHILD_FAILS(syscall(SYS_modify_ldt, 0, NULL, 0), ENOSYS);
#endif
        return 0;
}

static int test_unknown_enosys(void) {
        EXPECT_CHILD_EXIT(run_default(child_unknown, NULL, &_status), 0);
        return 0;
}

static void *thread_main(void *arg) {
        *(int *) arg = 42;
        return NULL;
}

static int child_clone(int report, const void *userdata) {
        static const unsigned long flags[] = {
                CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                CLONE_NEWCGROUP, CLONE_NEWUSER | CLONE_NEWNS, CLONE_NEWUSER | (1UL << 32),
        };
        int status, value = 0;
        pthread_t t;
        pid_t pid;

        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                errno = 0;
                long r = syscall(SYS_clone, flags[i] | SIGCHLD, NULL, NULL, NULL, 0);
                if (r == 0)
                        syscall(SYS_exit_group, 0); /* the filter let it through: end the copy */
                if (r > 0)
                        (void) waitpid((pid_t) r, NULL, 0);
                if (r != -1 || errno != EPERM) {
                        dprintf(report, "clone(0x%lx) returned %ld (%s), expected EPERM\n", flags[i], r,
                                strerrorname_np(errno) ?: "0");
                        return 1;
                }
        }

        /* fork() and a raw clone without namespace flags work */
        pid = fork();
        CHILD_CHECK(pid >= 0);
        if (pid == 0)
                syscall(SYS_exit_group, 7);
        CHILD_CHECK(waitpid(pid, &status, 0) == pid);
        CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);

        pid = (pid_t) syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
        CHILD_CHECK(pid >= 0);
        if (pid == 0)
                syscall(SYS_exit_group, 8);
        CHILD_CHECK(waitpid(pid, &status, 0) == pid);
        CHILD_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 8);

        /* threads: glibc tries clone3, gets ENOSYS and falls back to clone */
        CHILD_CHECK(pthread_create(&t, NULL, thread_main, &value) == 0);
        CHILD_CHECK(pthread_join(t, NULL) == 0);
        CHILD_CHECK(value == 42);
        return 0;
}

static int test_clone(void) {
        EXPECT_CHILD_EXIT(run_default(child_clone, NULL, &_status), 0);
        return 0;
}

static int child_ioctl(int report, const void *userdata) {
        struct termios tio;
        struct winsize ws;
        char c = 'x', sub = 0;
        int n;
        int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

        CHILD_CHECK(fd >= 0);
        CHILD_CHECK(grantpt(fd) == 0);
        CHILD_CHECK(unlockpt(fd) == 0);
        CHILD_FAILS(syscall(SYS_ioctl, fd, TIOCSTI, &c), EPERM);
        CHILD_FAILS(syscall(SYS_ioctl, fd, (1UL << 32) | TIOCSTI, &c), EPERM); /* high bits ignored */
        CHILD_FAILS(syscall(SYS_ioctl, fd, TIOCLINUX, &sub), EPERM);
        int ldisc = N_TTY; /* the discipline a pty already has: unfiltered, the call would succeed */
        CHILD_FAILS(syscall(SYS_ioctl, fd, TIOCSETD, &ldisc), EPERM);
        CHILD_FAILS(syscall(SYS_ioctl, fd, (1UL << 32) | TIOCSETD, &ldisc), EPERM);
        CHILD_CHECK(ioctl(fd, TIOCGETD, &ldisc) == 0 && ldisc == N_TTY); /* reading it is fine */
        CHILD_CHECK(tcgetattr(fd, &tio) == 0);
        CHILD_CHECK(ioctl(fd, TIOCGWINSZ, &ws) == 0);
        CHILD_CHECK(ioctl(fd, FIONREAD, &n) == 0);
        CHILD_CHECK(isatty(fd));
        close(fd);
        return 0;
}

static int test_ioctl(void) {
        EXPECT_CHILD_EXIT(run_default(child_ioctl, NULL, &_status), 0);
        return 0;
}

static int child_socket(int report, const void *userdata) {
        int fd, sv[2];

        CHILD_FAILS(syscall(SYS_socket, AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), EPERM);
        CHILD_FAILS(syscall(SYS_socket, (1UL << 32) | AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), EPERM);
        CHILD_FAILS(syscall(SYS_socket, AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0), EAFNOSUPPORT);
        CHILD_FAILS(syscall(SYS_socket, AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), EAFNOSUPPORT);
        CHILD_FAILS(syscall(SYS_socket, AF_BLUETOOTH, SOCK_STREAM | SOCK_CLOEXEC, 0), EAFNOSUPPORT);

        CHILD_CHECK((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
        close(fd);
        CHILD_CHECK((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
        close(fd);
        CHILD_CHECK((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0 /* NETLINK_ROUTE */)) >= 0);
        close(fd);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHILD_CHECK(fd >= 0 || errno == EAFNOSUPPORT); /* IPv6 may be disabled on the host */
        if (fd >= 0)
                close(fd);
        CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        close(sv[0]);
        close(sv[1]);
        CHILD_CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
        close(sv[0]);
        close(sv[1]);

        /* socketpair() gets socket()'s family check: refused families never reach the kernel. */
        CHILD_FAILS(syscall(SYS_socketpair, AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), EPERM);
        CHILD_FAILS(syscall(SYS_socketpair, (1UL << 32) | AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), EPERM);
        CHILD_FAILS(syscall(SYS_socketpair, AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), EAFNOSUPPORT);
        CHILD_FAILS(syscall(SYS_socketpair, AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), EAFNOSUPPORT);
        CHILD_FAILS(syscall(SYS_socketpair, AF_TIPC, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), EAFNOSUPPORT);
        CHILD_FAILS(syscall(SYS_socketpair, AF_BLUETOOTH, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), EAFNOSUPPORT);
        /* Allowed families reach the kernel, which has no pairs of them. */
        CHILD_FAILS(syscall(SYS_socketpair, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), EOPNOTSUPP);
        CHILD_FAILS(syscall(SYS_socketpair, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0, sv), EOPNOTSUPP);
        return 0;
}

static int test_socket(void) {
        EXPECT_CHILD_EXIT(run_default(child_socket, NULL, &_status), 0);
        return 0;
}

static int child_allowed(int report, const void *userdata) {
        struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
        char buf[256];
        struct statx stx;
        int fd;

        CHILD_CHECK(syscall(SYS_getpid) > 0);
        CHILD_CHECK(getcwd(buf, sizeof buf));
        CHILD_CHECK(syscall(SYS_getrandom, buf, 16, 0) == 16);
        CHILD_CHECK((fd = memfd_create("test", MFD_CLOEXEC)) >= 0);
        close(fd);
        CHILD_CHECK(statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx) == 0);
        CHILD_CHECK((fd = (int) syscall(SYS_pidfd_open, getpid(), 0)) >= 0);
        CHILD_CHECK(syscall(SYS_close_range, fd, fd, 0) == 0);
        CHILD_CHECK(syscall(SYS_faccessat2, AT_FDCWD, "/", R_OK, 0) == 0);
        CHILD_CHECK((fd = (int) syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how)) >= 0);
        close(fd);
        CHILD_CHECK(syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */) > 0 ||
                    errno == EOPNOTSUPP);
        CHILD_CHECK(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &(uint32_t) { SECCOMP_RET_LOG }) == 0);
        CHILD_CHECK(syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
        CHILD_CHECK(syscall(SYS_sched_yield) == 0);
        CHILD_CHECK((fd = (int) syscall(SYS_eventfd2, 0, EFD_CLOEXEC)) >= 0);
        close(fd);
        /* chroot passes the filter (the kernel still wants CAP_SYS_CHROOT): a missing path says so */
        CHILD_CHECK(syscall(SYS_chroot, "/nonexistent-sbx") < 0 && errno == ENOENT);
        return 0;
}

static int test_allowed(void) {
        EXPECT_CHILD_EXIT(run_default(child_allowed, NULL, &_status), 0);
        return 0;
}

#ifdef __x86_64__
static int child_x32(int report, const void *userdata) {
        syscall(0x40000000 | SYS_getpid); /* x32 getpid: __X32_SYSCALL_BIT on the x86_64 entry */
        dprintf(report, "x32 syscall returned\n");
        return 1;
}
#endif

static int test_x32_killed(void) {
#ifdef __x86_64__
        EXPECT_CHILD_SIGNAL(run_default(child_x32, NULL, &_status), SIGSYS);
        return 0;
#else
        return tap_skip("x86_64 only");
#endif
}

#ifdef __x86_64__
static long int80_getpid(void) {
        long ret;
        /* the i386 ABI from a 64-bit process: getpid is 20 there */
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "r8", "r9", "r10", "r11");
        return ret;
}

static int child_i386(int report, const void *userdata) {
        long pid = int80_getpid();
        dprintf(report, "int $0x80 getpid returned %ld\n", pid);
        return 1;
}

static int child_i386_probe(int report, const void *userdata) {
        return int80_getpid() == getpid() ? 0 : 1;
}
#endif

static int test_i386_killed(void) {
#ifdef __x86_64__
        int status;

        /* Without a filter first: the kernel may lack IA32 emulation (then int 0x80 is SIGSEGV). */
        CHECK_EQ(run_child(NULL, child_i386_probe, NULL, &status), 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return tap_skip("no i386 emulation in this kernel");
        EXPECT_CHILD_SIGNAL(run_default(child_i386, NULL, &_status), SIGSYS);
        return 0;
#else
        return tap_skip("x86_64 only");
#endif
}

static int child_custom(int report, const void *userdata) {
        char buf[256];

        CHILD_FAILS(syscall(SYS_getcwd, buf, sizeof buf), EACCES);
        CHILD_FAILS(syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-sbx/x", 0700), EROFS);
        CHILD_CHECK(syscall(SYS_getppid) > 0); /* log: allowed, and logged */
        CHILD_FAILS(syscall(SYS_mount, NULL, "/nonexistent-sbx", NULL, 0, NULL), EPERM); /* from the default */
        return 0;
}

static int child_uname(int report, const void *userdata) {
        struct utsname u;
        syscall(SYS_uname, &u);
        dprintf(report, "uname returned\n");
        return 1;
}

static int child_exit5(int report, const void *userdata) {
        return 5;
}

static int child_getppid(int report, const void *userdata) {
        syscall(SYS_getppid);
        return 6;
}

static int child_default_allow(int report, const void *userdata) {
        CHILD_FAILS(syscall(SYS_mkdirat, AT_FDCWD, "/nonexistent-sbx/x", 0700), EPERM);
        CHILD_CHECK(syscall(SYS_getppid) > 0);
        CHILD_CHECK(syscall(SYS_unshare, 0) == 0); /* not refused any more */
        return 0;
}

static int test_custom_policy(void) {
        const char *text = "include default\n"
                           "errno:EACCES getcwd\n"
                           "errno:EROFS mkdir mkdirat\n"
                           "log getppid\n"
                           "kill uname\n";

        EXPECT_CHILD_EXIT(run_text(text, child_custom, NULL, &_status), 0);
        EXPECT_CHILD_SIGNAL(run_text(text, child_uname, NULL, &_status), SIGSYS);
        /* default kill: only what is listed may run */
        EXPECT_CHILD_EXIT(run_text("default kill\nallow exit_group\n", child_exit5, NULL, &_status), 5);
        EXPECT_CHILD_SIGNAL(run_text("default kill\nallow exit_group\n", child_getppid, NULL, &_status), SIGSYS);
        /* default allow: a deny-list */
        EXPECT_CHILD_EXIT(run_text("default allow\nerrno mkdirat\n", child_default_allow, NULL, &_status), 0);
        return 0;
}

/* Run a real program under the default policy: its stdout goes to /dev/null (it would corrupt the
 * TAP stream), its stderr to the report pipe. */
static int child_exec(int report, const void *userdata) {
        char *const *argv = (char *const *) userdata;
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        CHILD_CHECK(null >= 0);
        CHILD_CHECK(dup2(null, STDOUT_FILENO) == STDOUT_FILENO);
        CHILD_CHECK(dup2(report, STDERR_FILENO) == STDERR_FILENO);
        execv(argv[0], argv);
        dprintf(report, "execv %s: %s\n", argv[0], strerrorname_np(errno) ?: "?");
        return 127;
}

static int run_program(const char *const *argv, int code) {
        if (access(argv[0], X_OK) < 0)
                return 1;
        EXPECT_CHILD_EXIT(run_default(child_exec, argv, &_status), code);
        return 0;
}

static int test_programs(void) {
        static const char *const sh[] = {
                "/bin/sh", "-c",
                "set -e; x=$(echo hi | cat); test \"$x\" = hi; ls / >/dev/null; f=$(mktemp); "
                "echo data >\"$f\"; grep -q data \"$f\"; rm \"$f\"; (exit 3) || test $? = 3; exit 7",
                NULL,
        };
        static const char *const python[] = {
                "/usr/bin/python3", "-I", "-c",
                "import os, socket, subprocess, tempfile, threading, hashlib, json, multiprocessing\n"
                "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
                "assert subprocess.run(['/bin/true']).returncode == 0\n"
                "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()\n"
                "with tempfile.TemporaryDirectory() as d:\n"
                "    open(os.path.join(d, 'f'), 'w').write('x')\n"
                "with multiprocessing.Pool(2) as p: assert p.map(abs, [-1, -2]) == [1, 2]\n"
                "os.sched_getaffinity(0)\n"
                "raise SystemExit(9)\n",
                NULL,
        };
        static const char *const node[] = {
                "/usr/bin/node", "-e",
                "const fs = require('fs'), cp = require('child_process'), os = require('os');"
                "cp.execFileSync('/bin/true'); fs.readdirSync('/');"
                "const f = os.tmpdir() + '/sbx-test-' + process.pid;"
                "fs.promises.writeFile(f, 'x').then(() => fs.promises.readFile(f, 'utf8'))"
                ".then(s => { fs.unlinkSync(f); setTimeout(() => process.exit(s === 'x' ? 11 : 1), 10); });",
                NULL,
        };
        static const char *const java[] = { "/usr/bin/java", "-Xshare:auto", "--version", NULL };
        unsigned ran = 0;
        int r;

        CHECK((r = run_program(sh, 7)) >= 0);
        ran += r == 0;
        CHECK((r = run_program(python, 9)) >= 0);
        ran += r == 0;
        CHECK((r = run_program(node, 11)) >= 0);
        ran += r == 0;
        CHECK((r = run_program(java, 0)) >= 0);
        ran += r == 0;
        printf("# %u of 4 programs found and run\n", ran);
        if (ran == 0)
                return tap_skip("no programs found");
        return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(parse_errors),    TAP_TEST(parse_limits),    TAP_TEST(parse_valid),
                TAP_TEST(compile_names),   TAP_TEST(bpf_default),     TAP_TEST(bpf_policy_file),
                TAP_TEST(installed),       TAP_TEST(refused),         TAP_TEST(unknown_enosys),
                TAP_TEST(clone),           TAP_TEST(ioctl),           TAP_TEST(socket),
                TAP_TEST(allowed),         TAP_TEST(x32_killed),      TAP_TEST(i386_killed),
                TAP_TEST(custom_policy),   TAP_TEST(programs),
        };
        int r;

        if (tap_scratch_dir(tmp_dir, sizeof tmp_dir, "test-filter") < 0)
                return 1;
        r = tap_run(tests, ELEMENTSOF(tests));
        tap_remove_tree(tmp_dir);
        return r;
}
