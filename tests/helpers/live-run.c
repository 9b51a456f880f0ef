/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * live-run [--disk BYTES] OP...: a sandbox without a program of its own (SANDBOX_START_IDLE, the defaults
 * otherwise; SANDBOX_STATE_DIR and SANDBOX_DATA_DIR as for sandbox-run,
 * SANDBOX_UNIONFS: the sandbox-unionfs to use) and the runtime's copies into and
 * out of it, for tests/integration/test_copy.py. Each OP, in order:
 *   in:PATH:TARFILE    unpack the tar file TARFILE (opened here, as host root: a test's own file) to PATH
 *   out:PATH:TARFILE   pack PATH into the new file TARFILE
 *   sh:COMMAND         run /bin/sh -c COMMAND in the sandbox (its output is ours); must exit 0
 *   bg:COMMAND         start /bin/sh -c COMMAND in the sandbox and go on (killed at the end)
 *   snap:DEST          sandbox_snapshot() to DEST; prints "snapshot DEST entries=N pause_usec=U frozen=0|1"
 *   sleep:MS           wait MS milliseconds
 * The first that fails ends it: "live-run: OP: why" on stderr, exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
#include "sandbox-copy.h"
#include "sandbox-snapshot.h"
#include "sandbox.h"

#define BG_MAX 16
static SandboxExec *bg[BG_MAX];
static size_t n_bg;

static int run_op(Sandbox *s, const char *op, SandboxError *err) {
        if (strncmp(op, "bg:", 3) == 0) {
                char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) op + 3, NULL };
                SandboxExecOptions o = { .argv = argv, .n_argv = 3, .cancel_fd = -EBADF };
                if (n_bg >= BG_MAX) {
                        snprintf(err->message, sizeof err->message, "too many bg:");
                        return -E2BIG;
                }
                return sandbox_exec(s, &o, &bg[n_bg++], err);
        }
        if (strncmp(op, "snap:", 5) == 0) {
                SandboxSnapshotResult res = {};
                int r = sandbox_snapshot(s, op + 5, 0, &res, err);
                if (r < 0)
                        return r;
                printf("snapshot %s entries=%llu pause_usec=%llu frozen=%d\n", op + 5,
                       (unsigned long long) res.entries, (unsigned long long) res.pause_usec, res.frozen);
                fflush(stdout);
                return 0;
        }
        if (strncmp(op, "sleep:", 6) == 0) {
                usleep((useconds_t) atoi(op + 6) * 1000);
                return 0;
        }
        if (strncmp(op, "sh:", 3) == 0) {
                char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) op + 3, NULL };
                SandboxExecOptions o = { .argv = argv, .n_argv = 3, .cancel_fd = -EBADF };
                SandboxExec *e = NULL;
                SandboxResult res = {};
                int r = sandbox_exec(s, &o, &e, err);
                if (r < 0)
                        return r;
                r = sandbox_exec_collect(e, false, &res);
                sandbox_exec_free(e);
                if (r < 0 || res.status != 0) {
                        snprintf(err->message, sizeof err->message, "the command exited with status %d", res.status);
                        return -EIO;
                }
                return 0;
        }
        bool in = strncmp(op, "in:", 3) == 0;
        if (!in && strncmp(op, "out:", 4) != 0) {
                snprintf(err->message, sizeof err->message, "unknown operation");
                return -EINVAL;
        }
        char *path = strdup(op + (in ? 3 : 4));
        char *file = path ? strrchr(path, ':') : NULL;
        if (!file) {
                free(path);
                snprintf(err->message, sizeof err->message, "expected PATH:TARFILE");
                return -EINVAL;
        }
        *file++ = '\0';
        int fd = in ? open(file, O_RDONLY | O_CLOEXEC) : open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                snprintf(err->message, sizeof err->message, "%s: %s", file, strerror(errno));
                free(path);
                return -errno;
        }
        int r = sandbox_copy(s, in ? SANDBOX_COPY_IN : SANDBOX_COPY_OUT, path, fd, err);
        close(fd);
        free(path);
        return r;
}

int main(int argc, char *argv[]) {
        SandboxSpec spec = {};
        SandboxConfig cfg = { .state_dir = getenv("SANDBOX_STATE_DIR"), .data_dir = getenv("SANDBOX_DATA_DIR"),
                              .unionfs_binary = getenv("SANDBOX_UNIONFS") };
        SandboxStartOptions so = { .cancel_fd = -EBADF, .flags = SANDBOX_START_IDLE };
        SandboxError err = {};
        Sandbox *s = NULL;
        int i = 1, ret = 0;

        char *layers[1];
        for (;;) {
                if (i + 1 < argc && strcmp(argv[i], "--disk") == 0) {
                        if (parse_size(argv[i + 1], &spec.disk_max) < 0) {
                                fprintf(stderr, "live-run: bad --disk '%s'\n", argv[i + 1]);
                                return 2;
                        }
                        i += 2;
                } else if (i + 1 < argc && strcmp(argv[i], "--layer") == 0) {
                        layers[0] = argv[i + 1];
                        spec.layers = layers;
                        spec.n_layers = 1;
                        i += 2;
                } else
                        break;
        }
        if (i >= argc) {
                fprintf(stderr, "usage: live-run [--disk BYTES] [--layer DIR] OP...\n");
                return 2;
        }
        if (sandbox_start_with(&spec, &cfg, &so, &s, &err) < 0) {
                fprintf(stderr, "live-run: start: %s\n", err.message);
                return err.status;
        }
        for (; i < argc; i++) {
                memset(&err, 0, sizeof err);
                if (run_op(s, argv[i], &err) < 0) {
                        fprintf(stderr, "live-run: %s: %s\n", argv[i], err.message);
                        ret = 1;
                        break;
                }
        }
        for (size_t k = 0; k < n_bg; k++)
                sandbox_exec_free(bg[k]);
        sandbox_finish(s, true, NULL);
        return ret;
}
