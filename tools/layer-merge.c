/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer merge [--workdir DIR] [--keep-whiteouts] UPPER LOWER: fold UPPER into LOWER in place.
 * Only the command line and the messages live here; the merge itself is layer/merge.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "merge.h"
#include "rootattr.h"
#include "sandbox-layer.h"

static void help(FILE *f) {
        fprintf(f,
                "Usage: sandbox-layer merge [OPTIONS] UPPER LOWER\n\n"
                "Fold the overlay layer UPPER into LOWER, in place: UPPER's whiteouts delete, its opaque\n"
                "directories replace, its files and attributes replace. UPPER is not changed.\n"
                "Crash-safe: if interrupted, run the same command again to complete the merge.\n\n"
                "  --workdir DIR       journal directory, on LOWER's file system\n"
                "                      (default: .<name of LOWER>.merge beside LOWER)\n"
                "  --keep-whiteouts    LOWER is a middle layer: keep UPPER's whiteouts and opaque\n"
                "                      directories as markers instead of applying them\n"
                "  -h, --help          show this help\n");
}

/* R == 0: WHAT says it all, no errno text. */
static int fail(int r, const char *what, const char *path) {
        fprintf(stderr, "sandbox-layer merge: %s%s%s%s%s%s\n", what, path ? " '" : "", path ? path : "",
                path ? "'" : "", r ? ": " : "", r ? strerror(-r) : "");
        return LAYER_EXIT_FAILURE;
}

int layer_cmd_merge(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "workdir", required_argument, NULL, 'w' },
                { "keep-whiteouts", no_argument, NULL, 'k' },
                {}
        };
        MergeParams p = {};
        _cleanup_free_ char *path = NULL;
        bool started = false;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(stdout);
                        return LAYER_EXIT_OK;
                case 'w':
                        if (!*optarg) {
                                fprintf(stderr, "sandbox-layer merge: --workdir needs a directory\n");
                                return LAYER_EXIT_USAGE;
                        }
                        p.workdir = optarg;
                        break;
                case 'k':
                        p.flags |= MERGE_KEEP_WHITEOUTS;
                        break;
                default:
                        fprintf(stderr, "sandbox-layer merge: unknown or incomplete option '%s' (see --help)\n",
                                argv[optind - 1]);
                        return LAYER_EXIT_USAGE;
                }
        if (argc - optind != 2) {
                fprintf(stderr, "sandbox-layer merge: expected UPPER and LOWER (see --help)\n");
                return LAYER_EXIT_USAGE;
        }
        p.upper = argv[optind];
        p.lower = argv[optind + 1];
        if (!*p.upper || !*p.lower) {
                fprintf(stderr, "sandbox-layer merge: empty path\n");
                return LAYER_EXIT_USAGE;
        }

        /* Name the argument that is wrong; layer_merge() opens them again, by itself. */
        const char *const args[][2] = { { "UPPER", p.upper }, { "LOWER", p.lower } };
        for (size_t i = 0; i < ELEMENTSOF(args); i++) {
                struct stat st;
                if (stat(args[i][1], &st) < 0)
                        r = -errno;
                else
                        r = S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
                if (r < 0) {
                        fprintf(stderr, "sandbox-layer merge: %s '%s': %s\n", args[i][0], args[i][1], strerror(-r));
                        return LAYER_EXIT_FAILURE;
                }
        }

        /* The merge makes LOWER's root private (common/rootattr.h) before anything of UPPER's lands in
         * it: say so when that changes who can reach LOWER. */
        struct stat before, after;
        bool was_private = stat(p.lower, &before) == 0 && rootattr_stat_is_private(&before);
        r = layer_merge(&p, &path, &started);
        if (!was_private && stat(p.lower, &after) == 0 && rootattr_stat_is_private(&after))
                fprintf(stderr, "sandbox-layer merge: note: LOWER '%s' was open to other users (mode %04o, owner "
                                "%u:%u); its root is now private (%04o, owner %u:%u), the mode and owner it shows "
                                "kept in its %s" ROOTATTR_XATTR " record, since UPPER may hold set-id files or "
                                "devices (see docs/security.md)\n",
                        p.lower, (unsigned) (before.st_mode & 07777), (unsigned) before.st_uid,
                        (unsigned) before.st_gid, (unsigned) (after.st_mode & 07777), (unsigned) after.st_uid,
                        (unsigned) after.st_gid, geteuid() == 0 ? ROOTATTR_NS_TRUSTED : ROOTATTR_NS_USER);
        if (r >= 0)
                return LAYER_EXIT_OK;

        if (started) {
                fprintf(stderr, "sandbox-layer merge: failed%s%s%s: %s\n"
                                "sandbox-layer merge: LOWER is partly merged; every entry is either old or new. "
                                "Fix the cause and run the same command again to complete the merge.\n",
                        path ? " at '" : "", path ? path : "", path ? "'" : "", strerror(-r));
                return LAYER_EXIT_FAILURE;
        }
        switch (r) {
        case -EXDEV:
                fprintf(stderr, "sandbox-layer merge: the work directory%s%s%s must be on the same file system "
                                "(and mount) as LOWER; nothing was changed\n",
                        p.workdir ? " '" : "", p.workdir ? p.workdir : "", p.workdir ? "'" : "");
                return LAYER_EXIT_FAILURE;
        case -ELOOP:
                return fail(0, "UPPER, LOWER and the work directory must not contain each other (or a tree "
                               "is deeper than 256 levels)", NULL);
        case -EBUSY:
                return fail(0, "another merge is running with this work directory", p.workdir);
        case -ENOTEMPTY:
                return fail(0, "the work directory exists and is not a merge journal; remove it or choose "
                               "another with --workdir", p.workdir);
        case -ESTALE:
                return fail(0, "the work directory holds the journal of an unfinished merge of other layers "
                               "or with other options; complete that one first", p.workdir);
        case -EILSEQ:
                return fail(r, "the journal in the work directory is corrupt", p.workdir);
        case -EMEDIUMTYPE:
                fprintf(stderr, "sandbox-layer merge: UPPER has a redirect directory or a metacopy file at "
                                "'%s', which cannot be merged in place; use 'sandbox-layer squash' instead. "
                                "Nothing was changed.\n", path ? path : "?");
                return LAYER_EXIT_FAILURE;
        default:
                return fail(r, "cannot merge (nothing was changed)", NULL);
        }
}
