/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --systemd-cgroup: the container's scope, made by the service manager (see systemd-cgroup.c). */
#pragma once

#include <stddef.h>

typedef struct OciScope {
        char slice[128];        /* "system.slice" */
        char unit[256];         /* "PREFIX-NAME.scope" */
} OciScope;

/* linux.cgroupsPath in systemd's form "SLICE:PREFIX:NAME" (runc's): the scope PREFIX-NAME.scope in
 * SLICE; an empty SLICE is system.slice; an empty or missing path is system.slice and
 * sandbox-oci-ID.scope. -EINVAL with ERR naming the problem for anything else. */
int oci_systemd_scope_parse(const char *cgroups_path, const char *id, OciScope *ret, char *err, size_t errlen);

/* Ask systemd for the scope with the calling process in it (Delegate=yes), and wait until we are in
 * it (at most 10 s). -errno with ERR saying what failed. */
int oci_systemd_scope_join(const OciScope *s, const char *description, char *err, size_t errlen);
