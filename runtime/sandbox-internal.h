/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Sandbox object, shared by the runtime's parent-side modules (sandbox.c: start, collect, clean-up;
 * exec.c: more programs in a live sandbox). Nothing outside runtime/ includes this.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "filter.h"
#include "network.h"
#include "runtime.h"
#include "sandbox.h"

struct Sandbox {
        char id[17];
        DeferredProgram *deferred;      /* SANDBOX_START_DEFERRED, until sandbox_go(): mmap()ed, shared with the init */
        bool deferred_gone;             /* sandbox_go() was called (the program is in DEFERRED) */
        bool init_said;                 /* a whole message of the init came (wait_started()) */
        const SandboxSpec *spec;        /* &resolved */
        SandboxSpec resolved;           /* the caller's spec with the defaults applied: it points into the
                                         * caller's, except for its own tmpfs array */
        char *state_dir;
        int state_fd;           /* STATE */
        int dir_fd;             /* STATE/ID */
        char *data_dir;
        int sandboxes_fd;       /* DATA/sandboxes */
        int data_fd;            /* DATA/sandboxes/ID */
        int data_lock_fd;       /* DATA/sandboxes/ID/lock, flock()ed while we live */
        char *upper_work;       /* with --upper: the work directory beside it */
        int upper_lock_fd;      /* with --upper: the upper directory, flock()ed while we live */
        bool memory_default;    /* the spec left the memory bound to the default */
        bool pids_default;
        ImageRun *image_run;    /* --image NAME: the image, pinned while we live; resolved points into it */

        pid_t pid;
        int pidfd;
        int status_fd;
        int pty_fd;
        pid_t server_pid;
        int server_pidfd;
        int quota_fd;           /* the union's quota_notify_fd pipe, our end: disk_limit_hit */
        int wait_fd;            /* epoll: the init's and the server's pidfds (sandbox_pidfd()) */
        bool union_failed;      /* the server ended while the sandbox ran */
        int union_status;       /* its siginfo si_code/si_status, for the message */
        int union_code;

        Cgroup *cgroup;
        NetLease *lease;
        int idlock_fd;
        int lock_fd;            /* STATE/ID/lock, flock()ed while we live: a free lock means stale */
        int image_lock_fd;      /* the shared host image we use, flock()ed (shared) while we live */
        uint32_t host_first;

        uint64_t start_usec;
        SandboxLimitHit limit;
        uint64_t kill_deadline; /* a limit was hit: the init was asked to end the program; by then we
                                 * kill the whole cgroup ourselves (0: not asked) */
        bool have_status;
        int raw_status;
        uint64_t max_rss;       /* bytes, from the init's report */
        bool held;              /* sandbox_create(): the program waits for sandbox_release() */
        bool collected;         /* sandbox_collect() done */
        bool finished;          /* sandbox_cleanup() done */

        /* Sandboxes without a program of their own (SANDBOX_START_IDLE): programs come through
         * sandbox_exec(), which needs these after the start. */
        bool idle;
        FilterProgram *filter;  /* the compiled seccomp policy (NULL: unconfined) */
        uint64_t cap_set;       /* spec_capabilities(), checked against the kernel's list at the start */
        bool quota_hit;         /* the union's server reported a refusal at the disk bound (sticky) */
        uint64_t created_realtime_usec;

        /* detach.c: a sandbox that outlives its maker. */
        bool detached;          /* sandbox_detach() done: its keeper holds what its life needs */
        bool adopted;           /* sandbox_adopt() made it: its init, server and keeper are not our children */
        pid_t keeper_pid;
        int keeper_pidfd;
        int keeper_sock;        /* ours: the keeper knows we are done with the sandbox when it closes */
        char *image_id;         /* adopted with --image NAME: the image's ID */
        SandboxSpec *owned_spec; /* adopted: the spec from its record (resolved is a copy of it) */
};

/* sandbox.c */
__attribute__((format(printf, 3, 4)))
int sandbox_set_error(SandboxError *e, int status, const char *fmt, ...);
/* The environment of a program of S: PATH, HOME and TERM by default, then the sandbox's own entries (its
 * spec's, after an image's config), then EXTRA (N_EXTRA entries) over them; the last of duplicates wins.
 * UID: the program's (HOME is /root for 0, else /, unless an entry sets it). NULL on OOM. */
char **sandbox_build_env(const SandboxSpec *spec, char *const *extra, size_t n_extra, uint32_t uid);
void sandbox_strv_free(char **v);
/* Did the union's server report a refusal at the disk bound (now or before)? */
bool sandbox_quota_was_hit(Sandbox *s);
/* A Sandbox with every fd -EBADF, its directories' names set: for sandbox_start_with() and sandbox_adopt(). */
Sandbox *sandbox_new(const SandboxConfig *cfg);
/* The program's capabilities, checked at the start (also for sandbox_adopt()'s). */
/* detach.c: reap what the cleanup killed (the keeper, when it is our child) and let it go. */
void sandbox_keeper_done(Sandbox *s);
