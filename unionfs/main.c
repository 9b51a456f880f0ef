/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-unionfs: parse the command line, check the layers, mount, serve until unmounted.
 * Exit status: 0 after a clean unmount, 1 for a wrong layer or a failed mount, 2 for bad usage.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "config.h"
#include "fuse_ops.h"
#include "log.h"
#include "macro.h"
#include "options.h"
#include "union.h"
#include "worker.h"

#define EXIT_USAGE 2

/* libfuse writes one message in several calls; collect them up to the newline (per thread). */
__attribute__((format(printf, 2, 0)))
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap) {
        static __thread char line[1024];
        static __thread size_t used;

        vsnprintf(line + used, sizeof line - used, fmt, ap);
        used = strlen(line);
        if (used == 0 || (line[used - 1] != '\n' && used < sizeof line - 1))
                return;
        while (used > 0 && line[used - 1] == '\n')
                line[--used] = '\0';
        /* The end of a session whose unmount met a read in progress is not an error (worker.c). */
        if (strstr(line, "reading device: ") && strstr(line, strerror(ECONNABORTED)))
                level = FUSE_LOG_DEBUG;
        log_full((int) level, "%s", line);
        used = 0;
        line[0] = '\0';
}

static int build_fuse_args(const UnionOptions *o, const Union *u, struct fuse_args *args, const char *argv0) {
        _cleanup_free_ char *opts = NULL;
        /* default_permissions is not optional: we run as root, the kernel must check the caller. */
        if (asprintf(&opts, "default_permissions,fsname=%s,subtype=sandbox-unionfs%s%s%s",
                     o->upperdir ? "sandbox-unionfs" : "sandbox-unionfs-ro",
                     u->readonly && !o->readonly ? ",ro" : "",
                     o->fuse_opts ? "," : "", o->fuse_opts ? o->fuse_opts : "") < 0)
                return -ENOMEM;
        if (fuse_opt_add_arg(args, argv0) < 0 || fuse_opt_add_arg(args, "-o") < 0 || fuse_opt_add_arg(args, opts) < 0)
                return -ENOMEM;
        if (o->debug && fuse_opt_add_arg(args, "-d") < 0)
                return -ENOMEM;
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(union_options_done) UnionOptions o = {};
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse_session *se = NULL;
        Union u;
        int r, ret = 1;

        log_setup("sandbox-unionfs", false);
        fuse_set_log_func(fuse_log_to_ours);
        /* Modes arrive already masked by the caller's umask; ours must not mask them again. */
        umask(0);

        r = union_options_parse(argc, argv, &o);
        if (r < 0)
                return EXIT_USAGE;
        if (o.show_help) {
                union_options_help(program_invocation_short_name);
                return 0;
        }
        if (o.show_version) {
                printf("sandbox-unionfs %s\nFUSE library %s\n", PROJECT_VERSION, fuse_pkgversion());
                return 0;
        }
        if (o.debug)
                log_set_max_level(LOG_DEBUG);
        if (union_options_check(&o) < 0)
                return 1;

        r = union_init(&u, &o);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the layers: %m");
                goto out_union;
        }
        r = union_root_init(&u);
        if (r < 0) {
                log_error_errno(r, "Failed to read the root directory: %m");
                goto out_union;
        }
        union_fuse_configure(&(UnionFuseConfig) { .writeback = o.writeback && !u.readonly, .max_read = o.max_read });

        if (build_fuse_args(&o, &u, &args, argv[0]) < 0) {
                log_error("Out of memory.");
                goto out_union;
        }
        se = fuse_session_new(&args, &union_fuse_ops, sizeof union_fuse_ops, &u);
        if (!se) {
                ret = EXIT_USAGE; /* libfuse said why: an option it does not know */
                goto out_args;
        }
        union_fuse_set_session(se);
        if (fuse_set_signal_handlers(se) < 0)
                goto out_session;
        if (fuse_session_mount(se, o.mountpoint) < 0)
                goto out_signals;
        if (fuse_daemonize(o.foreground) < 0)
                goto out_unmount;

        u.may_block = worker_may_block;
        r = worker_loop_run(se, o.max_threads ? o.max_threads : 16);
        if (r < 0)
                log_error_errno(r, "Failed to serve requests: %m");
        ret = r < 0 ? 1 : 0;

out_unmount:
        fuse_session_unmount(se);
out_signals:
        fuse_remove_signal_handlers(se);
out_session:
        fuse_session_destroy(se);
out_args:
        fuse_opt_free_args(&args);
out_union:
        union_done(&u);
        return ret;
}
