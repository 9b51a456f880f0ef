/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NULL-terminated string arrays, as the image library hands them out (Env, Cmd, references). */
#pragma once

#include <stddef.h>

#include "macro.h"

void strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
size_t strv_length(char *const *l);
