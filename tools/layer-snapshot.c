/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer snapshot MOUNTPOINT DEST: ask a mounted sandbox-unionfs to copy its upper layer, as it
 * is between two changes, to the new directory DEST (UNIONFS_IOC_SNAPSHOT on the mount's root, see
 * unionfs/control.h). The server does the copying; this side checks the arguments, flushes the kernel's
 * writeback cache so that data written before the call is in the upper, and explains errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "control.h"
#include "fs.h"
#include "macro.h"
#include "sandbox-layer.h"

static void help(FILE *f) {
        fprintf(f, "Usage: sandbox-layer snapshot [-v] MOUNTPOINT DEST\n\n"
                   "Copy the upper layer of the sandbox-unionfs mounted at MOUNTPOINT to the new directory\n"
                   "DEST while the mount keeps running. Changes through the mount wait while the copy is\n"
                   "made, so DEST shows the upper as it was at one instant (whiteouts and markers included).\n"
                   "Only the user the file system server runs as may take a snapshot.\n\n"
                   "  -v, --verbose  print how long changes were paused and how many objects were copied\n"
                   "  -h, --help     show this help\n");
}

/* DEST made absolute: its parent must exist (resolved here, symlinks and all, as the user named it),
 * its last component is taken as given and must not exist. */
static int absolute_dest(const char *dest, char **ret) {
        _cleanup_free_ char *parent = NULL, *name = NULL, *real = NULL, *abs = NULL;
        int r = path_split(dest, &parent, &name);
        if (r < 0)
                return r;
        real = realpath(parent, NULL);
        if (!real)
                return -errno;
        if (asprintf(&abs, "%s/%s", streq(real, "/") ? "" : real, name) < 0)
                return -ENOMEM;
        if (strlen(abs) >= PATH_MAX)
                return -ENAMETOOLONG;
        *ret = TAKE_PTR(abs);
        return 0;
}

static void explain(const char *mountpoint, const char *dest, int err) {
        const char *p = "sandbox-layer snapshot";

        switch (err) {
        case EPERM:
                fprintf(stderr, "%s: not the owner of the mount '%s' (only the user its server runs as may snapshot)\n",
                        p, mountpoint);
                break;
        case ENOTTY:
        case ENOSYS:
                fprintf(stderr, "%s: '%s' is not a sandbox-unionfs mount or too old to take snapshots\n", p,
                        mountpoint);
                break;
        case EOPNOTSUPP:
                fprintf(stderr, "%s: snapshots are disabled on '%s' (mounted with snapshot=0, or no upper layer)\n",
                        p, mountpoint);
                break;
        case EEXIST:
                fprintf(stderr, "%s: '%s' already exists\n", p, dest);
                break;
        case EXDEV:
                fprintf(stderr, "%s: '%s' is on a FUSE file system; choose a destination on a local file system\n",
                        p, dest);
                break;
        case EINVAL:
                fprintf(stderr, "%s: '%s' is not a valid destination: it must not be inside a layer or the work "
                                "directory of the mount\n",
                        p, dest);
                break;
        default:
                fprintf(stderr, "%s: snapshot of '%s' to '%s' failed: %s\n", p, mountpoint, dest, strerror(err));
        }
}

int layer_cmd_snapshot(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "verbose", no_argument, NULL, 'v' },
                {},
        };
        _cleanup_free_ char *dest = NULL;
        _cleanup_close_ int fd = -EBADF, parent_fd = -EBADF;
        struct unionfs_snapshot_req *req = NULL;
        bool verbose = false;
        struct statfs sfs;
        struct stat st, pst;
        int c, r;

        optind = 0; /* argv is the verb's own: restart getopt */
        while ((c = getopt_long(argc, argv, "+hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(stdout);
                        return LAYER_EXIT_OK;
                case 'v':
                        verbose = true;
                        break;
                default:
                        help(stderr);
                        return LAYER_EXIT_USAGE;
                }
        if (argc - optind != 2) {
                fprintf(stderr, "sandbox-layer snapshot: expected MOUNTPOINT and DEST (see --help)\n");
                return LAYER_EXIT_USAGE;
        }
        const char *mountpoint = argv[optind], *dest_arg = argv[optind + 1];

        fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "sandbox-layer snapshot: cannot open '%s': %m\n", mountpoint);
                return LAYER_EXIT_FAILURE;
        }
        if (fstatfs(fd, &sfs) < 0 || (unsigned long) sfs.f_type != UNIONFS_FUSE_SUPER_MAGIC) {
                fprintf(stderr, "sandbox-layer snapshot: '%s' is not a sandbox-unionfs mount\n", mountpoint);
                return LAYER_EXIT_FAILURE;
        }
        /* The ioctl is served on the root only: a different device above means we are at the root. */
        parent_fd = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0 || fstat(fd, &st) < 0 || fstat(parent_fd, &pst) < 0) {
                fprintf(stderr, "sandbox-layer snapshot: cannot stat '%s': %m\n", mountpoint);
                return LAYER_EXIT_FAILURE;
        }
        if (st.st_dev == pst.st_dev) {
                fprintf(stderr, "sandbox-layer snapshot: '%s' is not the root of a sandbox-unionfs mount\n",
                        mountpoint);
                return LAYER_EXIT_FAILURE;
        }

        r = absolute_dest(dest_arg, &dest);
        if (r == -EINVAL) {
                fprintf(stderr, "sandbox-layer snapshot: '%s' is not a valid destination name\n", dest_arg);
                return LAYER_EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "sandbox-layer snapshot: cannot resolve the directory of '%s': %s\n", dest_arg,
                        strerror(-r));
                return LAYER_EXIT_FAILURE;
        }
        if (lstat(dest, &st) == 0) {
                explain(mountpoint, dest, EEXIST);
                return LAYER_EXIT_FAILURE;
        }

        /* With the writeback cache, data written before this call may still be in the kernel only.
         * syncfs() reports a writeback error once per fd after the whole pass, and an older server
         * failed the flush of a deleted file's times: a second pass tells whether anything is still
         * failing. */
        if (syncfs(fd) < 0 && syncfs(fd) < 0) {
                fprintf(stderr, "sandbox-layer snapshot: cannot flush '%s': %m\n", mountpoint);
                return LAYER_EXIT_FAILURE;
        }

        req = calloc(1, sizeof *req);
        if (!req) {
                fprintf(stderr, "sandbox-layer snapshot: out of memory\n");
                return LAYER_EXIT_FAILURE;
        }
        req->version = UNIONFS_SNAPSHOT_VERSION;
        memcpy(req->dest, dest, strlen(dest) + 1);
        if (ioctl(fd, UNIONFS_IOC_SNAPSHOT, req) < 0) {
                explain(mountpoint, dest, errno);
                free(req);
                return LAYER_EXIT_FAILURE;
        }
        if (verbose)
                printf("%s: %" PRIu64 " objects, changes paused for %.3f ms\n", dest, req->entries,
                       (double) req->pause_ns / 1e6);
        free(req);
        return LAYER_EXIT_OK;
}
