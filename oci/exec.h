/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandbox-oci exec (exec.c). */
#pragma once

/* ARGV[0] is "exec". Returns the exit status: the program's (without --detach), 0, 1 on failure, 2 for a usage
 * error. */
int oci_exec_main(const char *root, int argc, char *argv[]);

/* Our pid into each of the cgroups of the container whose init is INIT: its limits cover us too. */
int oci_join_cgroups(pid_t init);
