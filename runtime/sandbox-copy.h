/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Files in and out of a live sandbox (runtime/copy.c), as `docker cp` moves them: a tar stream on a
 * descriptor the caller gives (a client's pipe: the data never passes through the caller), packed or
 * unpacked inside the sandbox by the sandbox-copy helper as the sandbox's root, never as host root. The
 * sandbox's bounds apply to the helper (its memory, and the disk bound of whatever it writes to). Part
 * of the runtime's public API (runtime/sandbox.h).
 */
#pragma once

#include <stdbool.h>

#include "sandbox.h"

typedef enum SandboxCopyDirection {
        SANDBOX_COPY_OUT,       /* PATH in the sandbox -> a tar stream written to DATA_FD */
        SANDBOX_COPY_IN,        /* a tar stream read from DATA_FD -> PATH in the sandbox */
        _SANDBOX_COPY_DIRECTION_MAX,
} SandboxCopyDirection;

typedef struct SandboxCopy SandboxCopy;

/* Start the helper. PATH: absolute, inside the sandbox, < PATH_MAX; its meaning is copytar.h's (docker
 * cp's): OUT names what to pack ("/." at the end: a directory's contents), IN where to unpack. DATA_FD is
 * duplicated: the caller may close its copy. Errors: -EINVAL a bad PATH or direction, -ESRCH the sandbox
 * has ended, others from starting the helper; ERR (status 125) says what. */
int sandbox_copy_start(Sandbox *s, SandboxCopyDirection direction, const char *path, int data_fd,
                       SandboxCopy **ret_copy, SandboxError *ret_error);
/* Polls readable when the helper has ended. */
int sandbox_copy_pidfd(const SandboxCopy *c);
/* Kill the helper (the client went away), not waiting. */
void sandbox_copy_kill(SandboxCopy *c);
/* Wait for the helper. 0: the copy is complete; -EIO: it failed and ERR (status 1) says why, in the
 * helper's words (naming the path or the entry); -EINTR: it was killed. */
int sandbox_copy_finish(SandboxCopy *c, SandboxError *ret_error);
/* Kills and reaps the helper if that was not done. Returns NULL. */
SandboxCopy *sandbox_copy_free(SandboxCopy *c);

/* All three: start, wait, free. */
int sandbox_copy(Sandbox *s, SandboxCopyDirection direction, const char *path, int data_fd, SandboxError *ret_error);
