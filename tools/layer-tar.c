/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer import TAR DEST / export DIR TAR: the command lines around layer/tar.c. This file
 * parses options, opens the user-named paths (following symlinks there is the user's choice), makes
 * the output file crash-safe (temp beside TAR, fsync, rename) and prints the one error message.
 */
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
#include "ovl.h"
#include "parse.h"
#include "progress.h"
#include "rmtree.h"
#include "sandbox-layer.h"
#include "tar-probe.h"
#include "tar.h"

/* Open the parent directory of DEST; its last component goes to *RET_NAME. */
static int open_parent(const char *dest, char **ret_name) {
        _cleanup_free_ char *parent = NULL, *name = NULL;
        int r = path_split(dest, &parent, &name);
        if (r < 0)
                return r;
        int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_name = TAKE_PTR(name);
        return fd;
}

static int refuse_image_archive(const char *tar, TarKind kind) {
        if (streq(tar, "-"))
                fprintf(stderr, "sandbox-layer import: standard input is %s, not a layer tar: save it to a file and "
                        "add it to the image store with 'sandbox-image import FILE' instead\n", tar_kind_describe(kind));
        else
                fprintf(stderr, "sandbox-layer import: '%s' is %s, not a layer tar: add it to the image store with "
                        "'sandbox-image import %s' instead\n", tar, tar_kind_describe(kind), tar);
        return LAYER_EXIT_FAILURE;
}

static void import_help(FILE *f) {
        fprintf(f, "Usage: sandbox-layer import [OPTIONS] TAR DEST\n\n"
                   "Unpack an OCI image-layer tar (plain, gzip or zstd; \"-\" reads stdin) into the new layer\n"
                   "directory DEST: .wh.NAME becomes a whiteout, .wh..wh..opq an opaque directory.\n\n"
                   "  --max-size BYTES   largest uncompressed archive, and so any file and all data\n"
                   "                     (K/M/G/T suffixes; default 10G)\n"
                   "  --max-entries N    most members, counting the directories their paths imply\n"
                   "                     (default 1000000); directory metadata held in memory is\n"
                   "                     bounded at 64 bytes per entry, at least 64M\n"
                   "  --userxattr        write opaque markers as user.overlay.* (default: trusted.* as root)\n"
                   "  -h, --help         show this help\n\n"
                   "A bound that is reached stops the import with an error naming it; DEST is then not\n"
                   "created and nothing is left behind.\n");
}

int layer_cmd_import(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "max-size", required_argument, NULL, 'm' },
                { "max-entries", required_argument, NULL, 'n' },
                { "userxattr", no_argument, NULL, 'u' },
                {},
        };
        TarImportOptions o = { .ovl_ns = ovl_default_ns() };
        int c, r;

        log_setup("sandbox-layer import", false);
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        import_help(stdout);
                        return LAYER_EXIT_OK;
                case 'm':
                        if (parse_size(optarg, &o.limits.max_size) < 0 || o.limits.max_size == 0) {
                                fprintf(stderr, "sandbox-layer import: invalid --max-size '%s' (a size above 0, "
                                        "with an optional K/M/G/T suffix)\n", optarg);
                                return LAYER_EXIT_USAGE;
                        }
                        break;
                case 'n':
                        if (safe_atou64(optarg, &o.limits.max_entries) < 0 || o.limits.max_entries == 0) {
                                fprintf(stderr, "sandbox-layer import: invalid --max-entries '%s' (a number above "
                                        "0)\n", optarg);
                                return LAYER_EXIT_USAGE;
                        }
                        break;
                case 'u':
                        o.ovl_ns = OVL_NS_USER;
                        break;
                default:
                        import_help(stderr);
                        return LAYER_EXIT_USAGE;
                }
        if (argc - optind != 2) {
                import_help(stderr);
                return LAYER_EXIT_USAGE;
        }
        const char *tar = argv[optind], *dest = argv[optind + 1];

        _cleanup_close_ int in = streq(tar, "-") ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)
                                                 : open(tar, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0) {
                fprintf(stderr, "sandbox-layer import: cannot open '%s': %m\n", tar);
                return LAYER_EXIT_FAILURE;
        }
        /* An image archive is not a layer: unpacked, it would be a "layer" holding blobs/ and index.json. */
        TarKind kind = tar_probe_fd(in);
        if (kind != TAR_KIND_LAYER)
                return refuse_image_archive(tar, kind);
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int pfd = open_parent(dest, &name);
        if (pfd < 0) {
                errno = -pfd;
                fprintf(stderr, "sandbox-layer import: destination '%s': %m\n", dest);
                return pfd == -EINVAL ? LAYER_EXIT_USAGE : LAYER_EXIT_FAILURE;
        }

        Progress p;
        progress_init(&p, "import");
        o.progress = &p;
        TarReport rep = {};
        r = tar_import(in, pfd, name, &o, &rep);
        progress_done(&p);
        if (r < 0) {
                fprintf(stderr, "sandbox-layer import: %s: %s\n", tar, rep.error[0] ? rep.error : strerror(-r));
                return LAYER_EXIT_FAILURE;
        }
        /* A compressed or streamed archive could not be probed before: look at what it unpacked to. */
        _cleanup_close_ int dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd >= 0 && (kind = tar_probe_dir(dfd)) != TAR_KIND_LAYER) {
                r = rm_tree_at(pfd, name);
                if (r < 0)
                        fprintf(stderr, "sandbox-layer import: cannot remove '%s' again: %s\n", dest, strerror(-r));
                (void) fsync(pfd);
                return refuse_image_archive(tar, kind);
        }
        return LAYER_EXIT_OK;
}

static void export_help(FILE *f) {
        fprintf(f, "Usage: sandbox-layer export [OPTIONS] DIR TAR\n\n"
                   "Write the layer directory DIR as an OCI image-layer tar (pax, numeric owners, sorted:\n"
                   "the same tree gives the same bytes). TAR \"-\" writes to stdout.\n\n"
                   "  --compress none|gzip|zstd  default: by TAR's suffix (.gz/.tgz, .zst/.zstd), else none\n"
                   "  -h, --help                 show this help\n");
}

int layer_cmd_export(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "compress", required_argument, NULL, 'c' },
                {},
        };
        TarCompress compress = _TAR_COMPRESS_INVALID;
        int c, r;

        log_setup("sandbox-layer export", false);
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        export_help(stdout);
                        return LAYER_EXIT_OK;
                case 'c':
                        compress = tar_compress_from_string(optarg);
                        if (compress < 0) {
                                fprintf(stderr, "sandbox-layer export: invalid --compress '%s' (none, gzip, zstd)\n",
                                        optarg);
                                return LAYER_EXIT_USAGE;
                        }
                        break;
                default:
                        export_help(stderr);
                        return LAYER_EXIT_USAGE;
                }
        if (argc - optind != 2) {
                export_help(stderr);
                return LAYER_EXIT_USAGE;
        }
        const char *dir = argv[optind], *tar = argv[optind + 1];
        bool to_stdout = streq(tar, "-");
        if (compress < 0)
                compress = to_stdout ? TAR_COMPRESS_NONE : tar_compress_from_name(tar);
        if (to_stdout && isatty(STDOUT_FILENO)) {
                fprintf(stderr, "sandbox-layer export: refusing to write a tar to a terminal\n");
                return LAYER_EXIT_USAGE;
        }
        layer_raise_nofile();

        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                fprintf(stderr, "sandbox-layer export: cannot open directory '%s': %m\n", dir);
                return LAYER_EXIT_FAILURE;
        }

        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int pfd = -EBADF, out = -EBADF;
        char tmp[NAME_MAX + 64] = "";
        if (to_stdout)
                out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        else {
                pfd = open_parent(tar, &name);
                if (pfd < 0) {
                        errno = -pfd;
                        fprintf(stderr, "sandbox-layer export: '%s': %m\n", tar);
                        return pfd == -EINVAL ? LAYER_EXIT_USAGE : LAYER_EXIT_FAILURE;
                }
                snprintf(tmp, sizeof(tmp), ".%.200s.export-%d", name, (int) getpid());
                out = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        }
        if (out < 0) {
                fprintf(stderr, "sandbox-layer export: cannot create '%s': %m\n", to_stdout ? "stdout" : tmp);
                return LAYER_EXIT_FAILURE;
        }

        Progress p;
        progress_init(&p, "export");
        TarReport rep = {};
        r = tar_export(dfd, out, compress, &p, &rep);
        progress_done(&p);
        if (r >= 0 && !to_stdout && fsync(out) < 0)
                r = -errno, snprintf(rep.error, sizeof(rep.error), "cannot sync '%s': %s", tar, strerror(errno));
        if (r >= 0 && !to_stdout && renameat(pfd, tmp, pfd, name) < 0)
                r = -errno, snprintf(rep.error, sizeof(rep.error), "cannot rename into '%s': %s", tar, strerror(errno));
        if (r < 0) {
                if (!to_stdout)
                        (void) unlinkat(pfd, tmp, 0);
                fprintf(stderr, "sandbox-layer export: %s: %s\n", dir, rep.error[0] ? rep.error : strerror(-r));
                return LAYER_EXIT_FAILURE;
        }
        if (!to_stdout)
                (void) fsync(pfd);
        return LAYER_EXIT_OK;
}
