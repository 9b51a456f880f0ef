/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-image pull and import: options, progress on a terminal, and what is printed: the image ID on
 * standard output (one line per image), a summary on standard error unless -q.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "macro.h"
#include "oci.h"
#include "progress.h"
#include "sandbox-image.h"


static bool parse_platform(const char *verb, const char *s, OciPlatform *ret) {
        if (oci_platform_parse(s, ret) < 0 || !*ret->architecture) {
                fprintf(stderr, "sandbox-image %s: invalid --platform '%s' (OS/ARCH[/VARIANT], e.g. linux/amd64)\n",
                        verb, s);
                return false;
        }
        return true;
}

/* What pull and import share after their options: one PATH or REFERENCE, root, the store (made if missing),
 * and the progress line (none with -q). NULL (the message printed, *ret_exit set) when something is wrong. */
static ImageStore *fetch_prepare(const char *verb, int argc, void (*help)(FILE *f), bool quiet, Progress *p,
                                 int *ret_exit) {
        if (argc - optind != 1) {
                help(stderr);
                *ret_exit = IMAGE_EXIT_USAGE;
                return NULL;
        }
        *ret_exit = IMAGE_EXIT_FAILURE;
        if (!image_tool_require_root(verb))
                return NULL;
        ImageStore *s = image_tool_open_store(verb, true);
        if (!s)
                return NULL;
        progress_init(p, verb);
        if (quiet)
                p->enabled = false;
        return s;
}

static void pull_help(FILE *f) {
        char p[64];
        OciPlatform d;
        oci_platform_default(&d);
        fprintf(f, "Usage: sandbox-image pull [OPTIONS] REFERENCE\n\n"
                   "Fetch REFERENCE ([REGISTRY/]NAME[:TAG][@sha256:DIGEST]; docker.io when no registry is\n"
                   "named) from its registry into the store, verifying every blob against its digest.\n"
                   "Layers the store has are not downloaded again; an interrupted pull resumes.\n\n"
                   "  --platform OS/ARCH[/VARIANT]  the image to take from an index (default %s)\n"
                   "  --ca-file FILE     PEM CA certificates to trust instead of the system's\n"
                   "  --authfile FILE    credentials ({\"auths\": {\"REGISTRY\": {\"auth\": base64(USER:PASS)}}});\n"
                   "                     default $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,\n"
                   "                     /run/containers/UID/auth.json, then ~/.docker/config.json\n"
                   "  --store DIR        the store (default %s)\n"
                   "  -q, --quiet        print only the image ID\n"
                   "  -h, --help         show this help\n\n"
                   "HTTPS always, except a registry on the loopback (localhost, 127.0.0.0/8, ::1) that does\n"
                   "not speak TLS. Prints the image ID.\n",
                oci_platform_format(&d, p, sizeof(p)), IMAGE_STORE_DEFAULT);
}

int image_cmd_pull(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },
                { "platform", required_argument, NULL, 'p' },
                { "ca-file", required_argument, NULL, 'c' },
                { "authfile", required_argument, NULL, 'a' },
                { "store", required_argument, NULL, 's' },
                {},
        };
        ImagePullOptions o = {};
        bool quiet = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        pull_help(stdout);
                        return IMAGE_EXIT_OK;
                case 'q':
                        quiet = true;
                        break;
                case 'p':
                        if (!parse_platform("pull", optarg, &o.platform))
                                return IMAGE_EXIT_USAGE;
                        break;
                case 'c':
                        o.ca_file = optarg;
                        break;
                case 'a':
                        o.auth_file = optarg;
                        break;
                case 's':
                        arg_store = optarg;
                        break;
                default:
                        pull_help(stderr);
                        return IMAGE_EXIT_USAGE;
                }
        Progress p;
        int ret;
        _cleanup_(image_store_freep) ImageStore *s = fetch_prepare("pull", argc, pull_help, quiet, &p, &ret);
        if (!s)
                return ret;
        o.progress = &p;
        ImageReport rep = {};
        _cleanup_(image_freep) Image *img = NULL;
        int r = image_pull(s, argv[optind], &o, &img, &rep);
        progress_done(&p);
        if (r < 0)
                return image_tool_fail("pull", r, &rep);
        if (!quiet) {
                char b1[32], b2[32];
                fprintf(stderr, "Pulled %s: %s, %u layer%s (%u new), %s downloaded", argv[optind], img->id,
                        rep.layers, rep.layers == 1 ? "" : "s", rep.layers_new,
                        image_tool_size(rep.bytes_fetched, b1, sizeof(b1)));
                if (rep.bytes_resumed > 0)
                        fprintf(stderr, " (and %s resumed from an earlier pull)",
                                image_tool_size(rep.bytes_resumed, b2, sizeof(b2)));
                fputc('\n', stderr);
        }
        printf("%s\n", img->id);
        return IMAGE_EXIT_OK;
}

static void import_help(FILE *f) {
        fprintf(f, "Usage: sandbox-image import [OPTIONS] PATH\n\n"
                   "Add the images of PATH to the store: an OCI image layout directory, an oci-archive tar,\n"
                   "or a tar from docker save / podman save (plain, gzip or zstd). Images keep the names the\n"
                   "archive gives them (RepoTags, io.containerd.image.name, a full reference in\n"
                   "org.opencontainers.image.ref.name); others are kept by ID only.\n\n"
                   "  --tag NAME[:TAG]   name the image (PATH must hold exactly one)\n"
                   "  --platform OS/ARCH[/VARIANT]  the image to take from an index (default: this machine's)\n"
                   "  --store DIR        the store (default %s)\n"
                   "  -q, --quiet        print only the image IDs\n"
                   "  -h, --help         show this help\n\n"
                   "Prints one line per image: its ID, then its names.\n", IMAGE_STORE_DEFAULT);
}

int image_cmd_import(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "quiet", no_argument, NULL, 'q' },
                { "tag", required_argument, NULL, 't' },
                { "platform", required_argument, NULL, 'p' },
                { "store", required_argument, NULL, 's' },
                {},
        };
        ImageImportOptions o = {};
        bool quiet = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        import_help(stdout);
                        return IMAGE_EXIT_OK;
                case 'q':
                        quiet = true;
                        break;
                case 't':
                        o.tag = optarg;
                        break;
                case 'p':
                        if (!parse_platform("import", optarg, &o.platform))
                                return IMAGE_EXIT_USAGE;
                        break;
                case 's':
                        arg_store = optarg;
                        break;
                default:
                        import_help(stderr);
                        return IMAGE_EXIT_USAGE;
                }
        Progress p;
        int ret;
        _cleanup_(image_store_freep) ImageStore *s = fetch_prepare("import", argc, import_help, quiet, &p, &ret);
        if (!s)
                return ret;
        o.progress = &p;
        ImageReport rep = {};
        Image **images = NULL;
        size_t n = 0;
        int r = image_import(s, argv[optind], &o, &images, &n, &rep);
        progress_done(&p);
        if (r < 0)
                return image_tool_fail("import", r, &rep);
        for (size_t i = 0; i < n; i++) {
                printf("%s", images[i]->id);
                for (char **ref = images[i]->refs; ref && *ref; ref++)
                        printf(" %s", *ref);
                putchar('\n');
        }
        if (!quiet && n > 0) {
                char b[32];
                fprintf(stderr, "Imported %zu image%s from %s: %u layer%s (%u new), %s read\n", n, n == 1 ? "" : "s",
                        argv[optind], rep.layers, rep.layers == 1 ? "" : "s", rep.layers_new,
                        image_tool_size(rep.bytes_fetched, b, sizeof(b)));
        }
        image_list_free(images, n);
        return IMAGE_EXIT_OK;
}
