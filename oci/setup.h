/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What sandbox-oci applies to a created sandbox before its program runs, from the host side: masked and
 * read-only paths, a read-only root, the emulated cgroup mount, an mqueue mount and namespaced sysctls. Each is
 * done by a short-lived child of ours that joins the sandbox's namespaces (setns into the init's), while the
 * sandbox's init waits (sandbox_create()), so the program never runs without them.
 */
#pragma once

#include <sys/types.h>

#include "bundle.h"

/* INIT_PID: the sandbox's init (sandbox_pid()). On failure ERR says what. */
int oci_setup_apply(const OciBundle *b, pid_t init_pid, char *err, size_t errlen);
