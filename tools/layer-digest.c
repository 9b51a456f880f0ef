/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer digest / verify: print a layer's canonical digest (with a per-entry listing that
 * verify can later use to name the first differing path), or check a layer against one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "macro.h"
#include "sandbox-layer.h"

/* A listing line is "<32 hex>  <escaped path>": bound it so a hostile file cannot make us swallow
 * gigabytes into one line (escaped paths are at most 4x the longest path we ever produce). */
static inline const char *strempty(const char *s) {
        return s ? s : "";
}

#define LISTING_LINE_MAX (2 * LAYER_DIGEST_SIZE + 2 + 4 * 65536 + 2)

static void hex(const uint8_t h[LAYER_DIGEST_SIZE], char out[2 * LAYER_DIGEST_SIZE + 1]) {
        for (size_t i = 0; i < LAYER_DIGEST_SIZE; i++)
                sprintf(out + 2 * i, "%02x", h[i]);
}

static int print_entry(const char *path, const uint8_t h[LAYER_DIGEST_SIZE], void *userdata) {
        Progress *p = userdata;
        _cleanup_free_ char *e = layer_path_escape(path);
        if (!e)
                return -ENOMEM;
        char x[2 * LAYER_DIGEST_SIZE + 1];
        hex(h, x);
        progress_done(p);
        if (printf("%s  %s\n", x, e) < 0)
                return -EIO;
        return 0;
}

static int walk_error(const char *verb, const char *dir, const char *path, int r) {
        if (r == -ESTALE)
                fprintf(stderr, "sandbox-layer %s: %s%s: changed while being read; digest a layer nobody writes to\n",
                        verb, dir, path && !streq(path, "/") ? path : "");
        else if (r == -ELOOP)
                fprintf(stderr, "sandbox-layer %s: %s%s: tree deeper than %d levels\n", verb, dir, path ? path : "",
                        LAYER_DIGEST_MAX_DEPTH);
        else if (r == -EMEDIUMTYPE)
                fprintf(stderr, "sandbox-layer %s: %s%s: a metacopy file (overlay.metacopy): its data is in a layer "
                        "below, not in this one; digest the stack flattened by 'sandbox-layer squash' instead\n",
                        verb, dir, path ? path : "");
        else if (r == -EBADMSG)
                fprintf(stderr, "sandbox-layer %s: %s%s: object of a kind a layer cannot hold\n", verb, dir,
                        path ? path : "");
        else
                fprintf(stderr, "sandbox-layer %s: %s%s: %s\n", verb, dir, path && !streq(path, "/") ? path : "",
                        strerror(-r));
        return LAYER_EXIT_FAILURE;
}

static int open_layer(const char *verb, const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                fprintf(stderr, "sandbox-layer %s: %s: %m\n", verb, dir);
        return fd;
}

static void digest_help(FILE *f) {
        fputs("Usage: sandbox-layer digest [--mtime] [-q] DIR\n\n"
              "Print the canonical content digest of the layer DIR: one line per object\n"
              "(\"<record hash>  <path>\", sorted), then the digest \"xxh128:<32 hex>\".\n"
              "Save the output to let 'sandbox-layer verify' name the first differing path.\n\n"
              "  --mtime      include modification times (left out by default)\n"
              "  -q, --quiet  print only the digest\n"
              "  -h, --help   show this help\n", f);
}

int layer_cmd_digest(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "mtime", no_argument, NULL, 'm' },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        unsigned flags = 0;
        bool quiet = false;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "qh", opts, NULL)) >= 0)
                switch (c) {
                case 'm': flags |= LAYER_DIGEST_MTIME; break;
                case 'q': quiet = true; break;
                case 'h': digest_help(stdout); return LAYER_EXIT_OK;
                default: digest_help(stderr); return LAYER_EXIT_USAGE;
                }
        if (argc - optind != 1) {
                fputs("sandbox-layer digest: expected one DIR (see --help)\n", stderr);
                return LAYER_EXIT_USAGE;
        }
        const char *dir = argv[optind];
        _cleanup_close_ int fd = open_layer("digest", dir);
        if (fd < 0)
                return LAYER_EXIT_FAILURE;

        Progress p;
        progress_init(&p, "digest");
        uint8_t d[LAYER_DIGEST_SIZE];
        _cleanup_free_ char *failed = NULL;
        int r = layer_digest(fd, flags, quiet ? NULL : print_entry, &p, &p, d, &failed);
        progress_done(&p);
        if (r < 0)
                return walk_error("digest", dir, failed, r);
        char s[LAYER_DIGEST_STRING_MAX];
        printf("%s\n", layer_digest_format(d, s));
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "sandbox-layer digest: writing the output: %m\n");
                return LAYER_EXIT_FAILURE;
        }
        return LAYER_EXIT_OK;
}

typedef struct ListEntry {
        char *path;
        uint8_t hash[LAYER_DIGEST_SIZE];
} ListEntry;

typedef struct Listing {
        ListEntry *e;
        size_t n, cap;
        uint8_t digest[LAYER_DIGEST_SIZE];
} Listing;

static void listing_free(Listing *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->e[i].path);
        free(l->e);
}

static int parse_hex(const char *s, uint8_t out[LAYER_DIGEST_SIZE]) {
        char buf[LAYER_DIGEST_STRING_MAX];
        snprintf(buf, sizeof(buf), "%s%.*s", LAYER_DIGEST_PREFIX, 2 * LAYER_DIGEST_SIZE, s);
        return layer_digest_parse(buf, out);
}

/* Read a listing written by digest; on error *ret_line is the offending line number (0: none). */
static int listing_read(FILE *f, Listing *l, size_t *ret_line) {
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, lineno = 0;
        bool have_digest = false;
        ssize_t n;
        _cleanup_(layer_digest_combiner_freep) LayerDigestCombiner *c = layer_digest_combiner_new();
        if (!c)
                return -ENOMEM;
        *ret_line = 0;
        while ((n = getline(&line, &cap, f)) >= 0) {
                lineno++;
                *ret_line = lineno;
                if (n > LISTING_LINE_MAX)
                        return -E2BIG;
                if (n > 0 && line[n - 1] == '\n')
                        line[--n] = 0;
                if (have_digest)
                        return -EBADMSG; /* nothing may follow the digest */
                if (startswith(line, LAYER_DIGEST_PREFIX)) {
                        if (layer_digest_parse(line, l->digest) < 0)
                                return -EBADMSG;
                        have_digest = true;
                        continue;
                }
                if ((size_t) n < 2 * LAYER_DIGEST_SIZE + 3 || line[2 * LAYER_DIGEST_SIZE] != ' ' ||
                    line[2 * LAYER_DIGEST_SIZE + 1] != ' ')
                        return -EBADMSG;
                if (l->n == l->cap) {
                        size_t ncap = l->cap ? 2 * l->cap : 1024;
                        ListEntry *e = reallocarray(l->e, ncap, sizeof(*e));
                        if (!e)
                                return -ENOMEM;
                        l->e = e;
                        l->cap = ncap;
                }
                ListEntry *e = &l->e[l->n];
                if (parse_hex(line, e->hash) < 0)
                        return -EBADMSG;
                int r = layer_path_unescape(line + 2 * LAYER_DIGEST_SIZE + 2, &e->path);
                if (r < 0)
                        return r == -ENOMEM ? r : -EBADMSG;
                l->n++;
                if (e->path[0] != '/' || (l->n > 1 && layer_path_compare(l->e[l->n - 2].path, e->path) >= 0))
                        return -EBADMSG; /* not a path, or out of order: not what digest writes */
                layer_digest_combiner_add(c, e->hash);
        }
        if (ferror(f))
                return -EIO;
        *ret_line = 0;
        if (!have_digest || l->n == 0)
                return -ENODATA;
        uint8_t d[LAYER_DIGEST_SIZE];
        layer_digest_combiner_finish(c, d);
        if (memcmp(d, l->digest, sizeof(d)) != 0)
                return -EBADE; /* the lines do not add up to the digest below them */
        return 0;
}

typedef enum Difference {
        DIFF_NONE,
        DIFF_CHANGED,    /* in both, content or metadata differs */
        DIFF_MISSING,    /* in the listing, not in DIR */
        DIFF_EXTRA,      /* in DIR, not in the listing */
} Difference;

typedef struct Compare {
        const Listing *l;
        size_t next;
        Difference diff;
        const char *where;
        char *extra_path;
        Progress *progress;
} Compare;

static int compare_entry(const char *path, const uint8_t h[LAYER_DIGEST_SIZE], void *userdata) {
        Compare *c = userdata;
        if (c->next < c->l->n) {
                const ListEntry *e = &c->l->e[c->next];
                int k = layer_path_compare(e->path, path);
                if (k < 0) {
                        c->diff = DIFF_MISSING;
                        c->where = e->path;
                        return -ECANCELED;
                }
                if (k == 0) {
                        c->next++;
                        if (memcmp(e->hash, h, LAYER_DIGEST_SIZE) == 0)
                                return 0;
                        c->diff = DIFF_CHANGED;
                        c->where = e->path;
                        return -ECANCELED;
                }
        }
        c->diff = DIFF_EXTRA;
        c->extra_path = strdup(path);
        return c->extra_path ? -ECANCELED : -ENOMEM;
}

static void verify_help(FILE *f) {
        fputs("Usage: sandbox-layer verify [--mtime] DIR DIGEST\n\n"
              "Check the layer DIR against DIGEST: either \"xxh128:<32 hex>\" or a file holding the\n"
              "output of 'sandbox-layer digest' (\"-\": standard input). With a listing, a mismatch\n"
              "names the first differing path.\n\n"
              "  --mtime      include modification times (the digest must have been made with it)\n"
              "  -h, --help   show this help\n\n"
              "Exit status: 0 the layer matches, 1 it does not (or it could not be read), 2 bad usage.\n", f);
}

int layer_cmd_verify(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "mtime", no_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        unsigned flags = 0;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'm': flags |= LAYER_DIGEST_MTIME; break;
                case 'h': verify_help(stdout); return LAYER_EXIT_OK;
                default: verify_help(stderr); return LAYER_EXIT_USAGE;
                }
        if (argc - optind != 2) {
                fputs("sandbox-layer verify: expected DIR and DIGEST (see --help)\n", stderr);
                return LAYER_EXIT_USAGE;
        }
        const char *dir = argv[optind], *expected = argv[optind + 1];

        _cleanup_(listing_free) Listing l = {};
        bool bare = startswith(expected, LAYER_DIGEST_PREFIX) && !strchr(expected, '/');
        if (bare) {
                if (layer_digest_parse(expected, l.digest) < 0) {
                        fprintf(stderr, "sandbox-layer verify: '%s' is not a digest (xxh128:<32 hex>)\n", expected);
                        return LAYER_EXIT_USAGE;
                }
        } else {
                _cleanup_fclose_ FILE *owned = NULL;
                FILE *f = stdin;
                if (!streq(expected, "-")) {
                        owned = f = fopen(expected, "re");
                        if (!f) {
                                fprintf(stderr, "sandbox-layer verify: %s: %m\n", expected);
                                return LAYER_EXIT_FAILURE;
                        }
                }
                size_t line = 0;
                int r = listing_read(f, &l, &line);
                if (r == -EBADE)
                        fprintf(stderr, "sandbox-layer verify: %s: corrupt listing: its entries do not add up to its digest\n", expected);
                else if (r == -ENODATA)
                        fprintf(stderr, "sandbox-layer verify: %s: not a digest listing (no entries or no final xxh128: line)\n", expected);
                else if (r < 0 && line > 0)
                        fprintf(stderr, "sandbox-layer verify: %s:%zu: corrupt listing line\n", expected, line);
                else if (r < 0)
                        fprintf(stderr, "sandbox-layer verify: %s: %s\n", expected, strerror(-r));
                if (r < 0)
                        return LAYER_EXIT_FAILURE;
        }

        _cleanup_close_ int fd = open_layer("verify", dir);
        if (fd < 0)
                return LAYER_EXIT_FAILURE;
        Progress p;
        progress_init(&p, "verify");
        Compare cmp = { .l = &l, .progress = &p };
        uint8_t d[LAYER_DIGEST_SIZE];
        _cleanup_free_ char *failed = NULL;
        int r = layer_digest(fd, flags, bare ? NULL : compare_entry, &cmp, &p, d, &failed);
        progress_done(&p);
        if (r < 0 && r != -ECANCELED)
                return walk_error("verify", dir, failed, r);
        if (r >= 0 && !bare && cmp.next < l.n) {
                cmp.diff = DIFF_MISSING;
                cmp.where = l.e[cmp.next].path;
        }
        _cleanup_free_ char *shown = NULL;
        switch (cmp.diff) {
        case DIFF_NONE:
                if (memcmp(d, l.digest, sizeof(d)) == 0) {
                        printf("%s: OK\n", dir);
                        return LAYER_EXIT_OK;
                }
                char have[LAYER_DIGEST_STRING_MAX], want[LAYER_DIGEST_STRING_MAX];
                printf("%s: FAILED: digest is %s, expected %s\n", dir, layer_digest_format(d, have),
                       layer_digest_format(l.digest, want));
                if (bare)
                        printf("%s: (a bare digest cannot name the differing path: verify against a listing saved "
                               "with 'sandbox-layer digest DIR > FILE')\n", dir);
                return LAYER_EXIT_FAILURE;
        case DIFF_CHANGED:
                shown = layer_path_escape(cmp.where);
                printf("%s: FAILED: first difference at %s: content or metadata differs\n", dir, strempty(shown));
                return LAYER_EXIT_FAILURE;
        case DIFF_MISSING:
                shown = layer_path_escape(cmp.where);
                printf("%s: FAILED: first difference at %s: missing from %s\n", dir, strempty(shown), dir);
                return LAYER_EXIT_FAILURE;
        case DIFF_EXTRA:
                shown = layer_path_escape(cmp.extra_path);
                free(cmp.extra_path);
                printf("%s: FAILED: first difference at %s: not in the listing\n", dir, strempty(shown));
                return LAYER_EXIT_FAILURE;
        }
        return LAYER_EXIT_FAILURE;
}
