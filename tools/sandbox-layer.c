/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer: snapshot, squash, merge, digest, verify, import and export of overlay layers.
 * This file only dispatches; each verb lives in its own layer-*.c.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "macro.h"
#include "sandbox-layer.h"

static const struct {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *synopsis;
} verbs[] = {
        { "snapshot", layer_cmd_snapshot, "snapshot MOUNTPOINT DEST        copy a mounted sandbox-unionfs's upper layer, online" },
        { "squash",   layer_cmd_squash,   "squash -o lowerdir=TOP:...:BOTTOM[,upperdir=DIR] [--keep-whiteouts] DEST\n"
                                          "                                   one layer equal to the merged view of a stack" },
        { "merge",    layer_cmd_merge,    "merge UPPER LOWER               fold UPPER into LOWER in place (crash-safe)" },
        { "digest",   layer_cmd_digest,   "digest [--mtime] [-q] DIR       canonical content digest of a layer" },
        { "verify",   layer_cmd_verify,   "verify [--mtime] DIR DIGEST     check a layer against a digest or a digest listing" },
        { "import",   layer_cmd_import,   "import TAR DEST                 unpack an OCI layer tar (plain, gzip, zstd) into a layer" },
        { "export",   layer_cmd_export,   "export DIR TAR                  write a layer as an OCI layer tar" },
};

static void help(FILE *f) {
        fprintf(f, "Usage: sandbox-layer COMMAND [OPTIONS] ARGS...\n\n"
                   "Layers of the overlay on-disk format: snapshots, folding, digests and OCI tars.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %s\n", verbs[i].synopsis);
        fprintf(f, "\n  -h, --help     show this help (COMMAND --help: that command's)\n"
                   "  --version      show the version\n\n"
                   "Exit status: 0 success, 1 failure (verify: the digest differs), 2 bad usage.\n"
                   "See sandbox-layer(1) and docs/layers.md.\n");
}

int main(int argc, char *argv[]) {
        if (argc < 2) {
                help(stderr);
                return LAYER_EXIT_USAGE;
        }
        if (streq(argv[1], "-h") || streq(argv[1], "--help")) {
                help(stdout);
                return LAYER_EXIT_OK;
        }
        if (streq(argv[1], "--version")) {
                printf("sandbox-layer %s\n", PROJECT_VERSION);
                return LAYER_EXIT_OK;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name))
                        return verbs[i].run(argc - 1, argv + 1);
        fprintf(stderr, "sandbox-layer: unknown command '%s' (see --help)\n", argv[1]);
        return LAYER_EXIT_USAGE;
}
