/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-image ls and inspect: the store's images as a table or as JSON (the same object for both:
 * ID, manifest, references, platform, creation time, size, the config the runtime applies, and the
 * layers topmost first with their directories).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "macro.h"
#include "sandbox-image.h"

static json_t *strv_json(char **l) {
        if (!l)
                return json_null();
        json_t *a = json_array();
        for (char **p = l; a && *p; p++)
                if (json_array_append_new(a, json_string(*p)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *opt_string(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *image_json(const Image *img) {
        const OciConfig *c = img->config;
        json_t *layers = json_array();
        for (size_t i = 0; layers && i < img->n_layers; i++) {
                const ImageLayer *l = &img->layers[i];
                if (json_array_append_new(layers, json_pack("{s:s, s:s, s:I, s:I}", "DiffId", l->diff_id, "Path",
                                                            l->path, "Size", (json_int_t) l->size, "Entries",
                                                            (json_int_t) l->entries)) < 0) {
                        json_decref(layers);
                        return NULL;
                }
        }
        return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:{s:o, s:o, s:o, s:o, s:o}, s:o}",
                         "Id", img->id,
                         "Manifest", img->manifest[0] ? json_string(img->manifest) : json_null(),
                         "References", img->refs ? strv_json(img->refs) : json_array(),
                         "Os", opt_string(c->os),
                         "Architecture", opt_string(c->architecture),
                         "Variant", opt_string(c->variant),
                         "Created", opt_string(c->created),
                         "Size", (json_int_t) img->size,
                         "Config",
                         "Env", strv_json(c->env),
                         "Entrypoint", strv_json(c->entrypoint),
                         "Cmd", strv_json(c->cmd),
                         "WorkingDir", opt_string(c->working_dir),
                         "User", opt_string(c->user),
                         "Layers", layers);
}

static int print_json(json_t *a) {
        char *text = a ? json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(a);
        if (!text) {
                fprintf(stderr, "sandbox-image: out of memory\n");
                return IMAGE_EXIT_FAILURE;
        }
        puts(text);
        free(text);
        return IMAGE_EXIT_OK;
}

static void ls_help(FILE *f) {
        fprintf(f, "Usage: sandbox-image ls [OPTIONS]\n\n"
                   "List the images of the store: one line per name (by tag; with --digests also by digest),\n"
                   "with the image ID, the creation time and the size of its layers.\n\n"
                   "  --json        all images as a JSON array (the objects inspect prints)\n"
                   "  --digests     also the NAME@DIGEST names\n"
                   "  --store DIR   the store (default %s)\n"
                   "  -h, --help    show this help\n", IMAGE_STORE_DEFAULT);
}

int image_cmd_ls(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, 'j' },
                { "digests", no_argument, NULL, 'd' },
                { "store", required_argument, NULL, 's' },
                {},
        };
        bool json = false, digests = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        ls_help(stdout);
                        return IMAGE_EXIT_OK;
                case 'j':
                        json = true;
                        break;
                case 'd':
                        digests = true;
                        break;
                case 's':
                        arg_store = optarg;
                        break;
                default:
                        ls_help(stderr);
                        return IMAGE_EXIT_USAGE;
                }
        if (argc != optind) {
                ls_help(stderr);
                return IMAGE_EXIT_USAGE;
        }
        _cleanup_(image_store_freep) ImageStore *s = image_tool_open_store("ls", false);
        if (!s)
                return IMAGE_EXIT_FAILURE;
        Image **l = NULL;
        size_t n = 0;
        ImageReport rep = {};
        int r = image_store_list(s, &l, &n, &rep);
        if (r < 0)
                return image_tool_fail("ls", r, &rep);
        if (json) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < n; i++)
                        if (json_array_append_new(a, image_json(l[i])) < 0) {
                                json_decref(a);
                                a = NULL;
                        }
                image_list_free(l, n);
                return print_json(a);
        }
        printf("%-60s %-12s %-20s %s\n", "NAME", "IMAGE ID", "CREATED", "SIZE");
        for (size_t i = 0; i < n; i++) {
                char created[20] = "", size[32];
                if (l[i]->config->created) {
                        snprintf(created, sizeof(created), "%s", l[i]->config->created);
                        char *t = strchr(created, 'T');
                        if (t)
                                *t = ' ';
                }
                image_tool_size(l[i]->size, size, sizeof(size));
                bool shown = false;
                for (char **ref = l[i]->refs; ref && *ref; ref++) {
                        if (strchr(*ref, '@') && !digests)
                                continue;
                        printf("%-60s %-12.12s %-20s %s\n", *ref, digest_hex(l[i]->id), created, size);
                        shown = true;
                }
                if (!shown) /* pulled by digest only, or nameless */
                        printf("%-60s %-12.12s %-20s %s\n", l[i]->refs ? l[i]->refs[0] : "<none>",
                               digest_hex(l[i]->id), created, size);
        }
        image_list_free(l, n);
        return IMAGE_EXIT_OK;
}

static void inspect_help(FILE *f) {
        fprintf(f, "Usage: sandbox-image inspect [OPTIONS] REFERENCE...\n\n"
                   "Print the images REFERENCE names (a name, NAME@DIGEST, an image ID or a prefix of one) as a\n"
                   "JSON array: ID, manifest digest, names, platform, config (Env, Entrypoint, Cmd, WorkingDir,\n"
                   "User) and the layers, topmost first, with their directories in the store.\n\n"
                   "  --store DIR   the store (default %s)\n"
                   "  -h, --help    show this help\n", IMAGE_STORE_DEFAULT);
}

int image_cmd_inspect(int argc, char *argv[]) {
        int k = image_tool_simple_options(argc, argv, inspect_help);
        if (k < 0)
                return k == -1 ? IMAGE_EXIT_OK : IMAGE_EXIT_USAGE;
        if (argc == optind) {
                inspect_help(stderr);
                return IMAGE_EXIT_USAGE;
        }
        _cleanup_(image_store_freep) ImageStore *s = image_tool_open_store("inspect", false);
        if (!s)
                return IMAGE_EXIT_FAILURE;
        json_t *a = json_array();
        for (int i = optind; a && i < argc; i++) {
                ImageReport rep = {};
                _cleanup_(image_freep) Image *img = NULL;
                int r = image_store_lookup(s, argv[i], &img, &rep);
                if (r < 0) {
                        json_decref(a);
                        return image_tool_fail("inspect", r, &rep);
                }
                if (json_array_append_new(a, image_json(img)) < 0) {
                        json_decref(a);
                        a = NULL;
                }
        }
        return print_json(a);
}
