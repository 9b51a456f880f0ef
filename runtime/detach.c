/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sandboxes that outlive the process that made them (sandboxd restarting): the keeper, a small process
 * of the host that holds what the sandbox's life needs and that dies with its maker otherwise (the locks
 * of its state and data directories, its host id range, its image's pin, its network lease and reserved
 * ports). Its end frees them, and the next runtime's stale clean-up removes the rest.
 */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox-internal.h"

void sandbox_keeper_done(Sandbox *s) {
        /* Closing our end tells the keeper we are done; it then lets go of what it holds and exits. */
        s->keeper_sock = safe_close(s->keeper_sock);
        if (s->keeper_pid > 0 && !s->adopted) {
                siginfo_t si;
                if (s->keeper_pidfd >= 0)
                        (void) waitid(P_PIDFD, (id_t) s->keeper_pidfd, &si, WEXITED);
                else
                        (void) waitpid(s->keeper_pid, NULL, 0);
        }
        s->keeper_pid = 0;
        s->keeper_pidfd = safe_close(s->keeper_pidfd);
}
