/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The command line of `sandbox-run` and `sandboxctl exec`: one parser, one spec, so the two cannot
 * drift apart. Parsing stops at the first non-option (or "--"): the rest is the command, which an image
 * of the store may give instead (--image NAME: its Entrypoint and Cmd).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "spec.h"

typedef struct ExecOptions {
        SandboxSpec spec;
        char *store;            /* --store DIR (sandbox-run's; sandboxd has its own) */
        char *user_arg;         /* -u as given, until the end of the parse decides what it is */
        char *stats_path;       /* --stats FILE, written by the client */
        int stats_fd;           /* --stats fd:N (the caller's descriptor), else -EBADF */
        bool show_help;
        bool show_version;
} ExecOptions;

/* Returns 0, or -EINVAL after printing what is wrong to stderr (prefixed with the program name). */
int exec_options_parse(int argc, char *argv[], ExecOptions *ret);
void exec_options_done(ExecOptions *o);
/* The options and the default bounds; DAEMON: for sandboxctl exec (the daemon's caps apply). */
void exec_options_help(FILE *f, bool daemon);

/* "1.5" → 1500000 µs; "1.5s", "200ms" also work. */
int parse_seconds(const char *s, uint64_t *ret_usec);
