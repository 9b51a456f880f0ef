/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-image's verbs (one file per group: image-fetch.c pull and import, image-query.c ls and
 * inspect, image-manage.c tag, rm and prune). Each takes its own argv (argv[0] is the verb), parses its
 * options (with -h/--help and --store), prints errors as "sandbox-image VERB: ..." and returns the exit
 * status.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "image.h"

enum {
        IMAGE_EXIT_OK = 0,
        IMAGE_EXIT_FAILURE = 1,
        IMAGE_EXIT_USAGE = 2,
};

/* --store from before the verb (or the default); a verb's own --store replaces it. */
extern const char *arg_store;

int image_cmd_pull(int argc, char *argv[]);
int image_cmd_import(int argc, char *argv[]);
int image_cmd_ls(int argc, char *argv[]);
int image_cmd_inspect(int argc, char *argv[]);
int image_cmd_tag(int argc, char *argv[]);
int image_cmd_rm(int argc, char *argv[]);
int image_cmd_prune(int argc, char *argv[]);

/* Open the store for VERB (creating it when CREATE), printing the error. NULL on failure. */
ImageStore *image_tool_open_store(const char *verb, bool create);
/* Print "sandbox-image VERB: <report or strerror>". Returns IMAGE_EXIT_FAILURE. */
int image_tool_fail(const char *verb, int r, const ImageReport *rep);
/* Refuse (message, false) unless we are root: layers keep their files' owners. */
bool image_tool_require_root(const char *verb);
/* Options of a verb that takes only --store and -h: 0, or -1 after printing the help (exit 0), or -2
 * after a usage error (exit 2). */
int image_tool_simple_options(int argc, char *argv[], void (*help)(FILE *f));
/* "12.3 MiB" into BUF. */
const char *image_tool_size(uint64_t bytes, char *buf, size_t size);
