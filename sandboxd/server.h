/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "daemon-config.h"

/* Serve LISTEN_FD until idle for IDLE_USEC (0: never) or SIGTERM/SIGINT. Returns 0 or -errno. */
int server_run(int listen_fd, const char *state_dir, const char *data_dir, const DaemonConfig *config,
               uint64_t idle_usec);
