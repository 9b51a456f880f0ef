/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-image tag, rm and prune: names, and the garbage collection behind them. rm removes names and
 * then collects if the store is free (it does not wait for a running pull); prune always collects, and
 * waits for running pulls, imports and pinnings to finish.
 */
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "macro.h"
#include "ojson.h"
#include "sandbox-image.h"

static void tag_help(FILE *f) {
        fprintf(f, "Usage: sandbox-image tag [--store DIR] SOURCE TARGET\n\n"
                   "Make TARGET (NAME[:TAG], \":latest\" when no tag) name the image SOURCE names (a name, an\n"
                   "image ID or a prefix of one). A TARGET that named another image names this one now.\n");
}

int image_cmd_tag(int argc, char *argv[]) {
        int k = image_tool_simple_options(argc, argv, tag_help);
        if (k < 0)
                return k == -1 ? IMAGE_EXIT_OK : IMAGE_EXIT_USAGE;
        if (argc - optind != 2) {
                tag_help(stderr);
                return IMAGE_EXIT_USAGE;
        }
        _cleanup_(image_store_freep) ImageStore *s = image_tool_open_store("tag", false);
        if (!s)
                return IMAGE_EXIT_FAILURE;
        ImageReport rep = {};
        int r = image_store_tag(s, argv[optind], argv[optind + 1], &rep);
        return r < 0 ? image_tool_fail("tag", r, &rep) : IMAGE_EXIT_OK;
}

static void gc_summary(const ImageGcReport *g) {
        char b[32];
        printf("Removed %u layer%s, %u blob%s, %u leftover%s and %u stale pin%s; freed %s",
               g->layers_removed, g->layers_removed == 1 ? "" : "s", g->blobs_removed, g->blobs_removed == 1 ? "" : "s",
               g->temporaries_removed, g->temporaries_removed == 1 ? "" : "s", g->pins_stale,
               g->pins_stale == 1 ? "" : "s", image_tool_size(g->bytes_freed, b, sizeof(b)));
        if (g->pins_live > 0)
                printf(" (%u running sandbox%s pin%s images)", g->pins_live, g->pins_live == 1 ? "" : "es",
                       g->pins_live == 1 ? "s" : "");
        putchar('\n');
}

static void rm_help(FILE *f) {
        fprintf(f, "Usage: sandbox-image rm [--store DIR] REFERENCE...\n\n"
                   "Remove the name REFERENCE (NAME[:TAG] or NAME@DIGEST), or all names of an image given by its\n"
                   "ID (or a prefix of one). Then the layers and blobs no image and no running sandbox uses are\n"
                   "removed, unless a pull or import is running (sandbox-image prune does it later).\n");
}

int image_cmd_rm(int argc, char *argv[]) {
        int k = image_tool_simple_options(argc, argv, rm_help);
        if (k < 0)
                return k == -1 ? IMAGE_EXIT_OK : IMAGE_EXIT_USAGE;
        if (argc == optind) {
                rm_help(stderr);
                return IMAGE_EXIT_USAGE;
        }
        _cleanup_(image_store_freep) ImageStore *s = image_tool_open_store("rm", false);
        if (!s)
                return IMAGE_EXIT_FAILURE;
        int ret = IMAGE_EXIT_OK;
        for (int i = optind; i < argc; i++) {
                ImageReport rep = {};
                char **removed = NULL;
                int r = image_store_untag(s, argv[i], &removed, &rep);
                if (r < 0) {
                        ret = image_tool_fail("rm", r, &rep);
                        continue;
                }
                for (char **p = removed; p && *p; p++)
                        printf("Untagged: %s\n", *p);
                strv_free(removed);
        }
        ImageReport rep = {};
        ImageGcReport g = {};
        int r = image_store_gc(s, false, &g, &rep);
        if (r == -EBUSY)
                fprintf(stderr, "sandbox-image rm: the store is in use (a pull or import is running): the layers "
                        "are left for 'sandbox-image prune'\n");
        else if (r < 0)
                ret = image_tool_fail("rm", r, &rep);
        else
                gc_summary(&g);
        return ret;
}

static void prune_help(FILE *f) {
        fprintf(f, "Usage: sandbox-image prune [--store DIR]\n\n"
                   "Remove every layer and blob that no image and no running sandbox uses, leftovers of\n"
                   "interrupted pulls and imports (partial downloads too), and stale pins. Waits for running\n"
                   "pulls and imports to finish first.\n");
}

int image_cmd_prune(int argc, char *argv[]) {
        int k = image_tool_simple_options(argc, argv, prune_help);
        if (k < 0)
                return k == -1 ? IMAGE_EXIT_OK : IMAGE_EXIT_USAGE;
        if (argc != optind) {
                prune_help(stderr);
                return IMAGE_EXIT_USAGE;
        }
        _cleanup_(image_store_freep) ImageStore *s = image_tool_open_store("prune", false);
        if (!s)
                return IMAGE_EXIT_FAILURE;
        ImageReport rep = {};
        ImageGcReport g = {};
        int r = image_store_gc(s, false, &g, &rep);
        if (r == -EBUSY) {
                fprintf(stderr, "sandbox-image prune: waiting for the pulls and imports that use the store...\n");
                rep = (ImageReport) {};
                r = image_store_gc(s, true, &g, &rep);
        }
        if (r < 0)
                return image_tool_fail("prune", r, &rep);
        gc_summary(&g);
        return IMAGE_EXIT_OK;
}
