/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The command line of `sandbox-run` and `sandboxctl exec`: one parser, one spec, so the two cannot
 * drift apart. Parsing stops at the first non-option (or "--"): the rest is the command, which an image
 * of the store may give instead (--image NAME: its Entrypoint and Cmd).
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "msg.h"
#include "spec.h"

typedef enum ExecOptionsMode {
        EXEC_OPTIONS_RUN,       /* sandbox-run, and sandboxctl exec without --in */
        EXEC_OPTIONS_EXEC,      /* sandboxctl exec: --in ID|NAME too (then only -e, -w, -u, -t, --timeout) */
        EXEC_OPTIONS_CREATE,    /* sandboxctl create: no command, no -t, --timeout, --cpu-time; --name, --ttl,
                                 * --idle-ttl, --json */
} ExecOptionsMode;

typedef struct ExecOptions {
        SandboxSpec spec;
        char *store;            /* --store DIR (sandbox-run's; sandboxd has its own) */
        char *user_arg;         /* -u as given, until the end of the parse decides what it is */
        char *stats_path;       /* --stats FILE, written by the client */
        int stats_fd;           /* --stats fd:N (the caller's descriptor), else -EBADF */
        bool show_help;
        bool show_version;
        ExecOptionsMode mode;
        char in[MSG_TARGET_MAX + 1];    /* EXEC: --in ID|NAME, "" without */
        char name[MSG_NAME_MAX + 1];    /* CREATE: --name */
        uint64_t ttl_usec;              /* CREATE: --ttl, 0: none given */
        uint64_t idle_ttl_usec;         /* CREATE: --idle-ttl */
        bool json;                      /* CREATE: --json */
        MsgVolumeMount volumes[MSG_VOLUMES_MAX]; /* EXEC (without --in) and CREATE: --volume */
        size_t n_volumes;
} ExecOptions;

/* Returns 0, or -EINVAL after printing what is wrong to stderr (prefixed with the program name). */
int exec_options_parse(int argc, char *argv[], ExecOptions *ret);
/* The same in MODE. */
int exec_options_parse_mode(int argc, char *argv[], ExecOptionsMode mode, ExecOptions *ret);
void exec_options_done(ExecOptions *o);
/* The options and the default bounds; DAEMON: for sandboxctl exec (the daemon's caps apply). */
void exec_options_help(FILE *f, bool daemon);

/* "1.5" → 1500000 µs; "1.5s", "200ms" also work. */
int parse_seconds(const char *s, uint64_t *ret_usec);
