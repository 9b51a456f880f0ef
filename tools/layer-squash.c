/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer squash -o lowerdir=TOP:...:BOTTOM[,upperdir=DIR] [--keep-whiteouts] DEST
 *
 * The command line only: the -o list goes through the unionfs option parser (the same spelling as
 * the mount), layers and DEST are opened here, and layer/squash.c does the work on the fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "macro.h"
#include "options.h"
#include "progress.h"
#include "sandbox-layer.h"
#include "squash.h"

static void help(FILE *f) {
        fprintf(f,
                "Usage: sandbox-layer squash -o lowerdir=TOP:...:BOTTOM[,upperdir=DIR] [--keep-whiteouts] DEST\n\n"
                "Write DEST, one layer whose content is the merged view of the stack, as overlayfs\n"
                "mounts it. The layers are only read. DEST must not exist; it appears complete or not at all.\n\n"
                "  -o OPTIONS          overlay mount options: lowerdir= (leftmost on top), upperdir= (above\n"
                "                      all lower layers); workdir= and mount-only options are ignored\n"
                "      --keep-whiteouts  keep whiteouts, opaque directories and redirects, for a result\n"
                "                      that will sit on top of other layers (default: a flat base layer)\n"
                "  -h, --help          show this help\n\n"
                "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

/* The options that only matter to a mount went to fuse_opts; accept those we know, refuse the rest. */
static int check_fuse_opts(const char *opts) {
        static const char *const harmless[] = { "ro", "rw", "noatime", "relatime", "nodev", "nosuid", "noexec" };
        _cleanup_free_ char *copy = opts ? strdup(opts) : NULL;
        char *save = NULL;

        if (!opts)
                return 0;
        if (!copy)
                return log_error_errno(-ENOMEM, "Out of memory.");
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                bool ok = false;
                for (size_t i = 0; i < ELEMENTSOF(harmless); i++)
                        ok = ok || streq(o, harmless[i]);
                if (!ok) {
                        log_error("Unknown option '%s' in -o. See --help.", o);
                        return -EINVAL;
                }
        }
        return 0;
}

static bool path_beneath(const char *dir, const char *path) {
        size_t n = strlen(dir);
        if (n == 1 && dir[0] == '/')
                return true;
        return strneq(dir, path, n) && (path[n] == '/' || path[n] == '\0');
}

int layer_cmd_squash(int argc, char *argv[]) {
        static const struct option longopts[] = {
                { "help", no_argument, NULL, 'h' },
                { "keep-whiteouts", no_argument, NULL, 'k' },
                {}
        };
        _cleanup_(union_options_done) UnionOptions o = {};
        _cleanup_free_ char *parent = NULL, *name = NULL, *parent_real = NULL;
        _cleanup_close_ int parent_fd = -EBADF;
        int layer_fds[SQUASH_LAYERS_MAX];
        size_t n_layers = 0;
        const char *layer_paths[SQUASH_LAYERS_MAX];
        unsigned flags = 0;
        int c, r, ret = LAYER_EXIT_FAILURE;

        log_setup("sandbox-layer squash", false);

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(stdout);
                        return LAYER_EXIT_OK;
                case 'k':
                        flags |= SQUASH_KEEP_WHITEOUTS;
                        break;
                case 'o':
                        if (union_options_parse_list(&o, optarg) < 0)
                                return LAYER_EXIT_USAGE; /* the parser said what is wrong */
                        break;
                default:
                        log_error("See --help.");
                        return LAYER_EXIT_USAGE;
                }
        if (optind + 1 != argc) {
                log_error(optind >= argc ? "Missing DEST. See --help." : "Too many arguments. See --help.");
                return LAYER_EXIT_USAGE;
        }
        if (o.n_lowerdirs == 0) {
                log_error("Missing 'lowerdir=' option: at least one layer is needed. See --help.");
                return LAYER_EXIT_USAGE;
        }
        if (o.uidmap.n_ranges > 0 || o.gidmap.n_ranges > 0) {
                log_error("Options 'uidmapping=' and 'gidmapping=' are not supported by squash.");
                return LAYER_EXIT_USAGE;
        }
        if (check_fuse_opts(o.fuse_opts) < 0)
                return LAYER_EXIT_USAGE;

        if (o.upperdir)
                layer_paths[n_layers++] = o.upperdir;
        for (size_t i = 0; i < o.n_lowerdirs; i++)
                layer_paths[n_layers++] = o.lowerdirs[i];

        /* DEST: a new name in an existing directory */
        r = path_split(argv[optind], &parent, &name);
        if (r == -ENOMEM) {
                log_error("Out of memory.");
                return LAYER_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error("Invalid DEST '%s'.", argv[optind]);
                return LAYER_EXIT_USAGE;
        }

        for (size_t i = 0; i < SQUASH_LAYERS_MAX; i++)
                layer_fds[i] = -EBADF;

        parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0) {
                log_error_errno(errno, "Cannot open the directory of '%s': %m", argv[optind]);
                goto finish;
        }
        if (faccessat(parent_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) >= 0) {
                log_error("'%s' exists already; squash writes a new directory.", argv[optind]);
                goto finish;
        }
        parent_real = realpath(parent, NULL);
        if (!parent_real) {
                log_error_errno(errno, "Cannot resolve '%s': %m", parent);
                goto finish;
        }

        layer_raise_nofile(); /* every layer deep and every level open at once */

        for (size_t i = 0; i < n_layers; i++) {
                layer_fds[i] = open(layer_paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (layer_fds[i] < 0) {
                        log_error_errno(errno, "Cannot open layer '%s': %m", layer_paths[i]);
                        goto finish;
                }
                _cleanup_free_ char *real = realpath(layer_paths[i], NULL);
                if (!real) {
                        log_error_errno(errno, "Cannot resolve layer '%s': %m", layer_paths[i]);
                        goto finish;
                }
                /* we would read our own output while writing it */
                if (path_beneath(real, parent_real)) {
                        log_error("DEST '%s' must not be inside the layer '%s'.", argv[optind], layer_paths[i]);
                        goto finish;
                }
        }

        Progress p;
        progress_init(&p, "squash");
        r = squash_layers(layer_fds, n_layers, parent_fd, name, flags, &p);
        progress_done(&p);
        if (r == -EEXIST) {
                log_error("'%s' appeared while squashing; left it alone.", argv[optind]);
                goto finish;
        }
        if (r == -ELOOP) {
                log_error("Failed to squash into '%s': the tree is deeper than %d directory levels.",
                          argv[optind], SQUASH_DEPTH_MAX);
                goto finish;
        }
        if (r == -ENODATA) {
                log_error("Failed to squash into '%s': a metacopy file (overlay.metacopy) has no data in any layer "
                          "below it; give every lower layer of the stack it was made on.", argv[optind]);
                goto finish;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to squash into '%s': %m", argv[optind]);
                goto finish;
        }
        ret = LAYER_EXIT_OK;
finish:
        for (size_t i = 0; i < n_layers; i++)
                safe_close(layer_fds[i]);
        return ret;
}
