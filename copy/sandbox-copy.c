/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-copy: the helper of sandbox_copy_start() (runtime/copy.c), not a command for people. It is
 * started by the runtime as host root, in the sandbox's program cgroup, with
 *
 *   argv:  sandbox-copy out|in PATH
 *   fd 0:  in: the tar stream to unpack (the client's pipe); out: /dev/null
 *   fd 1:  out: where the tar stream goes (the client's pipe); in: /dev/null
 *   fd 2:  a pipe for one line saying why it failed (exit status 1), read by the runtime
 *   fd 3:  a pidfd of the sandbox's init
 *
 * Before it touches any path it drops its supplementary groups (still host root), joins the init's user
 * and mount namespaces, and becomes the sandbox's root (uid and gid 0 inside: the sandbox's first host
 * id); from then on PATH, and every name in the stream, is resolved in the sandbox's root with the
 * sandbox's root's rights, never as host root. It stays outside the sandbox's pid namespace, so nothing
 * inside can signal it, and is not dumpable, so nothing inside can ptrace it. Its memory counts against
 * the sandbox; what it writes goes through the sandbox's union (or tmpfs, or volume), whose bounds apply.
 */
#include <errno.h>
#include <grp.h>
#include <iconv.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "copytar.h"
#include "macro.h"

/* Under AddressSanitizer: LeakSanitizer reads /proc/self/task at exit, which a non-dumpable process whose
 * ids changed may not; and our environment is empty, so ASAN_OPTIONS cannot say so. */
#if defined(__SANITIZE_ADDRESS__)
#  define SANDBOX_COPY_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SANDBOX_COPY_ASAN 1
#  endif
#endif
#ifdef SANDBOX_COPY_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
        return "detect_leaks=0";
}
#endif

static int die(const char *what, int r) {
        char line[COPYTAR_ERROR_MAX + 64];
        int n = snprintf(line, sizeof line, "%s\n", what && *what ? what : strerror(-r));
        if (n > 0)
                (void) !write(STDERR_FILENO, line, (size_t) MIN(n, (int) sizeof line - 1));
        return 1;
}

int main(int argc, char *argv[]) {
        char err[COPYTAR_ERROR_MAX] = "";
        bool in;
        int r;

        if (argc != 3 || (!streq(argv[1], "in") && !streq(argv[1], "out")) || argv[2][0] != '/')
                return die("usage: sandbox-copy in|out /PATH (a helper of the sandbox runtime)", -EINVAL);
        in = streq(argv[1], "in");

        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return die("cannot become non-dumpable", -errno);
        /* A writer that went away must not kill us silently: the write fails with EPIPE instead. */
        signal(SIGPIPE, SIG_IGN);
        /* glibc loads its character set conversion tables on the first iconv_open(), from the root it then
         * has: load them now, from the host's, not from a file the sandbox wrote. */
        iconv_t cd = iconv_open("UTF-8", "ANSI_X3.4-1968");
        if (cd != (iconv_t) -1)
                iconv_close(cd);
        /* libarchive too is loaded when first used (copytar.h): now, from the host's root. */
        r = copytar_load(err, sizeof err);
        if (r < 0)
                return die(err, r);

        if (setgroups(0, NULL) < 0)
                return die("cannot drop the supplementary groups", -errno);
        if (setns(3, CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return die("cannot join the sandbox's namespaces", -errno);
        (void) close(3);
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return die("cannot become the sandbox's root", -errno);
        /* The id change may have made us dumpable again. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return die("cannot become non-dumpable", -errno);
        if (chdir("/") < 0)
                return die("cannot enter the sandbox's root", -errno);

        if (in) {
                CopyTarOptions o = { .keep_setid = true };
                r = copytar_unpack(STDIN_FILENO, argv[2], &o, NULL, err, sizeof err);
        } else
                r = copytar_pack(argv[2], STDOUT_FILENO, NULL, err, sizeof err);
        if (r < 0)
                return die(err, r);
        return 0;
}
