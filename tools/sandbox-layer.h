/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-layer's verbs. Each takes its own argv (argv[0] is the verb), parses its options (with
 * -h/--help), reports errors on stderr as "sandbox-layer VERB: ..." and returns the exit status:
 * LAYER_EXIT_OK, LAYER_EXIT_FAILURE (the operation failed or, for verify, the digest differs) or
 * LAYER_EXIT_USAGE (bad command line).
 */
#pragma once

enum {
        LAYER_EXIT_OK = 0,
        LAYER_EXIT_FAILURE = 1,
        LAYER_EXIT_USAGE = 2,
};

int layer_cmd_snapshot(int argc, char *argv[]);
int layer_cmd_squash(int argc, char *argv[]);
int layer_cmd_merge(int argc, char *argv[]);
int layer_cmd_digest(int argc, char *argv[]);
int layer_cmd_verify(int argc, char *argv[]);
int layer_cmd_import(int argc, char *argv[]);
int layer_cmd_export(int argc, char *argv[]);

/* layer-common.c */
/* Deep trees want one fd per level (per layer): allow as many as the hard limit does. */
void layer_raise_nofile(void);
