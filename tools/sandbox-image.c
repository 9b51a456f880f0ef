/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-image: the image store's command line (pull, import, ls, inspect, tag, rm, prune). This file
 * parses the options before the verb, dispatches, and holds the helpers the verbs share; the work is
 * in the image library (image/image.h), the verbs in image-*.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "sandbox-image.h"

const char *arg_store = IMAGE_STORE_DEFAULT;

static const struct {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *synopsis;
} verbs[] = {
        { "pull",    image_cmd_pull,    "pull [--platform OS/ARCH] [--ca-file FILE] [--authfile FILE] REFERENCE\n"
                                        "                              fetch an image from its registry" },
        { "import",  image_cmd_import,  "import [--tag NAME[:TAG]] PATH  add the images of an OCI layout, an oci-archive\n"
                                        "                              or a docker/podman save tar" },
        { "ls",      image_cmd_ls,      "ls [--json] [--digests]       list the images" },
        { "inspect", image_cmd_inspect, "inspect REFERENCE...          an image's config and layers, as JSON" },
        { "tag",     image_cmd_tag,     "tag SOURCE TARGET             give an image another name" },
        { "rm",      image_cmd_rm,      "rm REFERENCE...               remove names (an image ID: all of them), then\n"
                                        "                              the layers nothing uses any more" },
        { "prune",   image_cmd_prune,   "prune                         remove layers, blobs and leftovers nothing uses" },
};

static void help(FILE *f) {
        fprintf(f, "Usage: sandbox-image [--store DIR] COMMAND [OPTIONS] ARGS...\n\n"
                   "The image store: OCI images from registries and archives, verified by their sha256\n"
                   "digests, each layer unpacked once and shared read-only by every sandbox.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %s\n", verbs[i].synopsis);
        fprintf(f, "\n  --store DIR    the store (default %s; root's, mode 0700)\n"
                   "  -h, --help     show this help (COMMAND --help: that command's)\n"
                   "  --version      show the version\n\n"
                   "Exit status: 0 success, 1 failure, 2 bad usage. See sandbox-image(1) and docs/images.md.\n",
                IMAGE_STORE_DEFAULT);
}

ImageStore *image_tool_open_store(const char *verb, bool create) {
        ImageStore *s = NULL;
        ImageReport rep = {};
        int r = image_store_open(arg_store, create, &s, &rep);
        if (r == -ENOENT && !create) {
                fprintf(stderr, "sandbox-image %s: there is no image store at '%s' yet (sandbox-image pull or import "
                        "makes it)\n", verb, arg_store);
                return NULL;
        }
        if (r < 0) {
                image_tool_fail(verb, r, &rep);
                return NULL;
        }
        return s;
}

int image_tool_fail(const char *verb, int r, const ImageReport *rep) {
        fprintf(stderr, "sandbox-image %s: %s\n", verb, rep && rep->error[0] ? rep->error : strerror(-r));
        return IMAGE_EXIT_FAILURE;
}

bool image_tool_require_root(const char *verb) {
        if (geteuid() == 0)
                return true;
        fprintf(stderr, "sandbox-image %s: must run as root: layers keep their files' owners, and the store is "
                "root's\n", verb);
        return false;
}

int image_tool_simple_options(int argc, char *argv[], void (*verb_help)(FILE *f)) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "store", required_argument, NULL, 's' },
                {},
        };
        int c;
        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        verb_help(stdout);
                        return -1;
                case 's':
                        arg_store = optarg;
                        break;
                default:
                        verb_help(stderr);
                        return -2;
                }
        return 0;
}

const char *image_tool_size(uint64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double) bytes;
        size_t u = 0;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", (unsigned long long) bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

int main(int argc, char *argv[]) {
        int i = 1;
        log_setup("sandbox-image", false);
        /* Options before the verb. */
        while (i < argc && argv[i][0] == '-') {
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        help(stdout);
                        return IMAGE_EXIT_OK;
                }
                if (streq(argv[i], "--version")) {
                        printf("sandbox-image %s\n", PROJECT_VERSION);
                        return IMAGE_EXIT_OK;
                }
                if (streq(argv[i], "--store") && i + 1 < argc) {
                        arg_store = argv[i + 1];
                        i += 2;
                        continue;
                }
                const char *v = startswith(argv[i], "--store=");
                if (v) {
                        arg_store = v;
                        i++;
                        continue;
                }
                fprintf(stderr, "sandbox-image: unknown option '%s' (see --help)\n", argv[i]);
                return IMAGE_EXIT_USAGE;
        }
        if (i >= argc) {
                help(stderr);
                return IMAGE_EXIT_USAGE;
        }
        if (!*arg_store) {
                fprintf(stderr, "sandbox-image: --store needs a directory\n");
                return IMAGE_EXIT_USAGE;
        }
        for (size_t k = 0; k < ELEMENTSOF(verbs); k++)
                if (streq(argv[i], verbs[k].name))
                        return verbs[k].run(argc - i, argv + i);
        fprintf(stderr, "sandbox-image: unknown command '%s' (see --help)\n", argv[i]);
        return IMAGE_EXIT_USAGE;
}
