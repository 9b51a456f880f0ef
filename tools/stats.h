/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --stats FILE: the sandbox's accounting as one JSON object, written atomically. */
#pragma once

#include "sandbox.h"

int stats_write(const char *path, const SandboxResult *res);
/* For a sandbox that never started: the status and why. */
int stats_write_error(const char *path, int status, const char *message);
