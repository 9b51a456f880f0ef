/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers shared by sandbox-layer's verbs; see sandbox-layer.h. */
#include <sys/resource.h>

#include "sandbox-layer.h"

void layer_raise_nofile(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}
