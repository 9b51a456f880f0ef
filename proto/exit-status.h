/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The exit statuses of sandbox-run and sandboxctl exec, and the status field of the protocol's EXIT
 * and ERROR messages: the program's own status, or one of these.
 */
#pragma once

#define SANDBOX_EXIT_TIMEOUT 124
#define SANDBOX_EXIT_SETUP 125          /* also: bad usage */
#define SANDBOX_EXIT_CANNOT_EXEC 126
#define SANDBOX_EXIT_NOT_FOUND 127
#define SANDBOX_EXIT_OOM 137
