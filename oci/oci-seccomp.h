/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.json's linux.seccomp (the runtime-spec's JSON form) compiled to a seccomp program with libseccomp,
 * stacked on our own allow-list by the runtime (seccomp.c says how, and what is refused).
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "filter.h"

#define OCI_SECCOMP_RULES_MAX 1024      /* linux.seccomp.syscalls entries */
#define OCI_SECCOMP_NAMES_MAX 8192      /* names in all of them */
#define OCI_SECCOMP_ARCHES_MAX 16

/* V, the linux.seccomp object, into *RET. On failure (-EINVAL, -ENOMEM) ERR names the field. */
int oci_seccomp_parse(const json_t *v, FilterProgram **ret, char *err, size_t errlen);
