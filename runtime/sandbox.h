/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox runtime's public API, used by sandbox-run and sandboxd. A sandbox is started with
 * sandbox_start(), which returns once the program has been executed (or says why it could not),
 * watched through sandbox_pidfd() (readable when it has ended) and the limit timer
 * (sandbox_check_limits), and collected with sandbox_finish(), which also removes everything the
 * sandbox used: cgroups, mounts, the FUSE server, the throw-away upper layer.
 *
 * The calling process must be root on the host. It may start and clean up sandboxes on several
 * threads at once, if it dropped its supplementary groups (setgroups(0)) before it made its threads,
 * and if a thread that started a sandbox outlives it: the sandbox's init gets SIGKILL when the thread
 * that cloned it ends (PR_SET_PDEATHSIG follows the thread, not the process).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "exit-status.h"
#include "network.h"
#include "spec.h"

typedef struct SandboxConfig {
        const char *state_dir;          /* NULL: /run/sandbox */
        const char *data_dir;           /* NULL: /var/lib/sandbox (throw-away uppers, on disk) */
        uint32_t host_id_base;          /* first host uid/gid of the pool; 0: the default pool */
        uint32_t host_id_ranges;        /* 65536-id ranges in the pool */
        const char *unionfs_binary;     /* NULL: next to our own binary, or the installed one */
        const NetConfig *net;           /* --net bridge/isolated; NULL: the defaults */
        const char *store;              /* the image store for --image NAME; NULL: /var/lib/sandbox */
        const struct SandboxJoin *join; /* namespaces to join rather than make; NULL: every one new */
        const int *oom_score_adj;       /* the program's (-1000..1000); NULL: 1000, the OOM killer's first choice.
                                         * Lower than the caller's own it is only where the init could be shielded
                                         * (root with CAP_SYS_RESOURCE); otherwise the program keeps the init's */
        const uint32_t *groups;         /* the program's supplementary groups (gids inside, < 65536), at most */
        size_t n_groups;                /* SANDBOX_GROUPS_MAX; then setgroups() is allowed in its user namespace */
        const struct FilterProgram *engine_filter; /* a second seccomp program, installed after ours (the
                                         * kernel runs both; the most restrictive result wins); NULL: none */
        const struct CgroupCpusetIo *cpuset_io; /* CPUs, memory nodes and io bounds of the sandbox's cgroup
                                         * (sandbox-oci's linux.resources); NULL: none, the cpuset and io
                                         * controllers are not used */
} SandboxConfig;

/* Namespaces the sandbox joins instead of making its own (sandbox-oci: linux.namespaces[].path), each an
 * open nsfs descriptor of its type or -EBADF. They are joined by the thread that clones the init, as host
 * root, just around the clone (setns into a namespace of the host's user namespace is impossible from
 * inside the sandbox's), so the init inherits them while its user namespace is still its own. A joined
 * network namespace needs SPEC_NET_HOST (nothing of ours is set up in it: no lo, no sysfs); in a joined
 * UTS namespace spec.hostname, if any, is set from outside; a joined IPC namespace has no /dev/mqueue. */
typedef struct SandboxJoin {
        int net_fd;
        int ipc_fd;
        int uts_fd;
} SandboxJoin;

#define SANDBOX_GROUPS_MAX 64

typedef enum SandboxLimitHit {
        SANDBOX_LIMIT_NONE,
        SANDBOX_LIMIT_TIMEOUT,
        SANDBOX_LIMIT_CPU_TIME,
        SANDBOX_LIMIT_MEMORY,
} SandboxLimitHit;

typedef struct SandboxResult {
        int status;                     /* what a front end exits with (see SANDBOX_EXIT_*) */
        int exit_code;                  /* the program's, when it exited */
        int signal;                     /* the signal that killed it, else 0 */
        SandboxLimitHit limit;
        uint64_t wall_usec;
        uint64_t cpu_usec;
        uint64_t memory_peak;           /* bytes: the cgroup's peak (page cache and the union's work too) */
        uint64_t max_rss;               /* bytes: the largest resident set of one of the program's processes */
        bool pids_limit_hit;            /* a fork or clone failed at the pids bound */
        bool disk_limit_hit;            /* a write to the upper was refused at the disk bound */
        bool union_failed;              /* the union's server ended while the sandbox ran (killed, crashed):
                                         * the sandbox was stopped, status 125 */
        int union_signal;               /* the signal that killed the server, else 0 */
        uid_t host_uid;                 /* the host uid that root inside was mapped to */
} SandboxResult;

/* Why a sandbox could not start: the exit status to use (125, 126, 127) and a one-line message. */
typedef struct SandboxError {
        int status;
        char message[1024];     /* MSG_ERROR_MESSAGE_MAX: what the daemon can pass on whole */
} SandboxError;

typedef struct Sandbox Sandbox;

/* Once at start-up, single-threaded, before the first sandbox_start(): where sandbox cgroups go.
 * On a cgroup v2 host whose own cgroup systemd delegated to us (Delegate=yes, which marks the cgroup
 * with the trusted.delegate xattr), move into the leaf LEAF ("supervisor" if NULL) and enable the
 * memory, pids and cpu controllers for the sandboxes' cgroups beside it. Nothing changes on a v1 or
 * hybrid host, or when our cgroup is not delegated. Whatever the outcome, a later sandbox_start()
 * that cannot apply a limit says what is missing, and then ADVICE (what the user can do, e.g. "run
 * it with systemd-run --scope -p Delegate=yes"; may be NULL). Returns 1 when it prepared a delegated
 * cgroup, 0 when there was nothing to do, -errno when a delegated cgroup could not be prepared. */
int sandbox_setup_cgroups(const char *leaf, const char *advice);

/* Instead of sandbox_setup_cgroups(), for a caller whose engine names the cgroup (OCI
 * linux.cgroupsPath, cgroupfs form): on a cgroup v2 host the sandbox's cgroup goes below PATH ("/a/b"
 * from the cgroup2 root, "a/b" below our own cgroup), made where missing, with memory, pids and cpu
 * enabled along it (cgroup_v2_set_parent()). Returns 1 when PATH is the parent now, 0 on a v1 or hybrid
 * host (the sandbox's cgroups go below our own there), -EINVAL for a bad PATH, -errno otherwise.
 * sandbox_remove_cgroup_parent() removes the levels it made, after the sandbox is gone. */
int sandbox_setup_cgroup_parent(const char *path);
int sandbox_remove_cgroup_parent(void);

/* How to run without the bounds a host cannot apply, in the caller's terms, for the message of
 * sandbox_start(); NULL: sandbox-run's and sandboxctl's options ("pass --memory unlimited ..."). */
void sandbox_set_cgroup_opt_out(const char *text);

typedef enum SandboxStartFlags {
        /* No program of its own: the init waits (and reaps) until the sandbox is ended; programs come
         * through sandbox_exec(). The spec's command (and --timeout, --cpu-time, which bound a program)
         * must be left out; its environment, working directory and ids are those programs' defaults. */
        SANDBOX_START_IDLE = 1 << 0,
        /* Made up to the last step before the program: namespaces, ids, cgroup and limits, union, network,
         * the init waiting; the program comes once, by sandbox_go(), and the sandbox is then as one started
         * with it (its end is the program's). As with IDLE, the spec has no command, terminal, --timeout or
         * --cpu-time; its environment and working directory are replaced by sandbox_go()'s. */
        SANDBOX_START_DEFERRED = 1 << 1,
} SandboxStartFlags;

typedef struct SandboxStartOptions {
        const int *stdio;       /* the program's stdin, stdout and stderr (ignored with spec->tty and IDLE);
                                 * NULL: ours */
        int cancel_fd;          /* readable while the start waits for the init: -ECANCELED; -EBADF: none */
        unsigned flags;         /* SandboxStartFlags */
} SandboxStartOptions;

/* STDIO: the program's stdin, stdout and stderr (ignored with spec->tty). */
int sandbox_start(const SandboxSpec *spec, const SandboxConfig *config, const int stdio[3],
                  Sandbox **ret_sandbox, SandboxError *ret_error);
/* The same, and when CANCEL_FD (an eventfd or a pipe; -EBADF: none) turns readable while the start
 * waits for the sandbox's init, it gives up: -ECANCELED, and everything made so far is removed. */
int sandbox_start_cancellable(const SandboxSpec *spec, const SandboxConfig *config, const int stdio[3],
                              int cancel_fd, Sandbox **ret_sandbox, SandboxError *ret_error);
/* Both, and FLAGS. */
int sandbox_start_with(const SandboxSpec *spec, const SandboxConfig *config, const SandboxStartOptions *options,
                       Sandbox **ret_sandbox, SandboxError *ret_error);
/* The same as sandbox_start(), but the program is not executed yet: the sandbox is complete (namespaces, mounts,
 * cgroup, limits, the pty with spec->tty) and its init waits with the program's process not yet made.
 * sandbox_release() executes it and returns as sandbox_start() does (status 126/127 when it cannot be
 * executed). The two halves of an OCI runtime's create and start (sandbox-oci). PROGRAM_UMASK: the program's
 * umask (0-0777), -1: the caller's. */
int sandbox_create(const SandboxSpec *spec, const SandboxConfig *config, const int stdio[3], int program_umask,
                   Sandbox **ret_sandbox, SandboxError *ret_error);
int sandbox_release(Sandbox *s, SandboxError *ret_error);
/* Made by sandbox_create() and not released yet. */
bool sandbox_is_held(const Sandbox *s);

/* The program of a sandbox started with SANDBOX_START_DEFERRED, once. */
typedef struct SandboxGoOptions {
        char *const *argv;      /* the program and its arguments (N_ARGV, at least one) */
        size_t n_argv;
        char *const *env;       /* NAME=VALUE: the program's environment (with PATH, HOME, TERM as for a start) */
        size_t n_env;
        const char *workdir;    /* NULL: "/" */
        uint64_t timeout_usec;  /* wall clock from now, 0: none */
        const int *stdio;       /* stdin, stdout, stderr; NULL: ours */
        int cancel_fd;          /* as sandbox_start_with()'s */
} SandboxGoOptions;

/* Returns once the program has been executed, or says why it could not, as sandbox_start() (and then the
 * sandbox is to be finished). -ESTALE: the sandbox had ended before (its init or union server died), nothing
 * was run: the caller may start another; -E2BIG: the program does not fit (SPEC_ARG_BYTES_MAX), nothing was
 * run. */
int sandbox_go(Sandbox *s, const SandboxGoOptions *options, SandboxError *ret_error);
/* Instead of a program: the sandbox becomes one started with SANDBOX_START_IDLE (programs join it with
 * sandbox_exec(); it can be detached). Returns, errors and -ESTALE as sandbox_go(). */
int sandbox_go_idle(Sandbox *s, int cancel_fd, SandboxError *ret_error);

const char *sandbox_id(const Sandbox *s);
/* The host pid of the sandbox's init, and an fd that polls readable when the sandbox must be collected
 * (sandbox_collect()): its init has ended, or the union's server has, without which the sandbox cannot
 * go on. */
pid_t sandbox_pid(const Sandbox *s);
int sandbox_pidfd(const Sandbox *s);
/* The program's argv[0] (with --image NAME, what the image's Entrypoint or Cmd made it). */
const char *sandbox_command(const Sandbox *s);
/* With --image NAME: the image's ID (sha256:...), else NULL. */
const char *sandbox_image_id(const Sandbox *s);
/* With spec->tty: the pty master (owned by the sandbox), else -EBADF. */
int sandbox_pty_fd(const Sandbox *s);

/* Deliver SIG to the program (through the init). */
int sandbox_signal(Sandbox *s, int sig);

/* Enforce --timeout and --cpu-time: kills the sandbox when one is exceeded. Returns the monotonic
 * time (µs) at which to call again, or 0 when there is no limit to watch. */
uint64_t sandbox_check_limits(Sandbox *s);

/* Wait for the sandbox to end (killing it first if KILL) and collect the result. */
int sandbox_collect(Sandbox *s, bool kill, SandboxResult *ret_result);
/* Remove everything it used: cgroups, the union's server, the throw-away upper. A daemon calls this
 * after it has answered its client, so the answer does not wait for the clean-up. */
int sandbox_cleanup(Sandbox *s);
/* Both. */
int sandbox_finish(Sandbox *s, bool kill, SandboxResult *ret_result);

/* Kills and cleans up a sandbox that was not finished. */
Sandbox *sandbox_free(Sandbox *s);

/* Remove what sandboxes of processes that died (kill -9, a crash) left in the state directory and the
 * data directory: their cgroups, directories, throw-away uppers and published ports. Their processes
 * died with them (the init has PDEATHSIG), and with them the union's mount and its server. Live
 * sandboxes (of any state directory) are left alone. */
int sandbox_cleanup_stale(const SandboxConfig *config, unsigned *ret_removed);

/* The sandbox's address with --net bridge/isolated (INADDR_ANY otherwise). */
struct in_addr sandbox_address(const Sandbox *s);

/* Freeze (pause) or thaw (resume) the sandbox's programs: the processes of its program cgroup (the init and
 * what it and sandbox_exec() started), never the union's server. Waits until they are (about 2 s at most:
 * -ETIMEDOUT, the freezing goes on). */
int sandbox_pause(Sandbox *s);

/* New bounds for a live sandbox; a field 0 stays as it is. Bounds are never lifted (no SPEC_UNLIMITED): a
 * sandbox stays bounded. -EINVAL for an out-of-range value, -EOPNOTSUPP where a controller is missing. */
typedef struct SandboxUpdate {
        uint64_t memory_max;    /* bytes */
        uint64_t pids_max;      /* the program's processes */
        uint32_t cpus_milli;    /* 1000 = one CPU */
} SandboxUpdate;
int sandbox_update(Sandbox *s, const SandboxUpdate *u);
int sandbox_resume(Sandbox *s);
/* SIGTERM to every process of the sandbox but its init (a graceful end: sandbox_finish() kills the rest). */
int sandbox_terminate(Sandbox *s);
/* SIGKILL to its init and every process of its programs (thawed first), not waiting: their pidfds (the
 * sandbox's, sandbox_exec_pidfd()) then poll readable. */
void sandbox_kill_all(Sandbox *s);
/* Processes of the sandbox besides its init. */
int sandbox_count_processes(Sandbox *s, size_t *ret_n);

typedef struct SandboxUsage {
        uint64_t memory_bytes;          /* in use now, the union's server's work included */
        uint64_t cpu_usec;              /* CPU time so far */
        uint64_t disk_bytes;            /* what it added to its upper (by its disk bound's count; 0 without one) */
        uint64_t disk_inodes;
        bool disk_known;                /* it has a disk bound to count by */
} SandboxUsage;

/* Its memory and CPU time only (its cgroup's files): for an event loop. */
int sandbox_usage_cgroup(Sandbox *s, SandboxUsage *ret);
/* An O_PATH descriptor of its root (the union, as its init sees it), and its disk use through it (statfs,
 * which its union's server answers: not for an event loop). */
int sandbox_root_fd(Sandbox *s);
int sandbox_disk_usage_at(int root_fd, SandboxUsage *u);

/* ---- sandboxes that outlive their maker (detach.c) ----
 *
 * sandbox_detach(): S (started with SANDBOX_START_IDLE) no longer ends with the process that made it: its
 * init outlives it, a keeper process holds its locks, id range, image pin and network lease, and
 * STATE/ID/record says how to adopt it (with OWNER, OWNER_SIZE bytes of the caller's own, at most 4096).
 * Nothing changes for the caller otherwise: sandbox_finish() ends it as any other (and the keeper).
 * sandbox_adopt(): a Sandbox for the detached sandbox ID of the state directory of CONFIG, made by a process
 * that is gone, with the owner bytes (*RET_OWNER, freed by the caller). Its processes are checked to be the
 * ones recorded (pid and start time); when anything does not fit, what is left of it is killed (the stale
 * clean-up, sandbox_cleanup_stale(), then removes it) and an error returned. An adopted sandbox takes
 * sandbox_exec(), sandbox_pause(), sandbox_usage_cgroup() and sandbox_finish() like one we started; its union's
 * disk-bound refusals are no longer reported. */
int sandbox_detach(Sandbox *s, const void *owner, size_t owner_size, SandboxError *ret_error);
int sandbox_adopt(const SandboxConfig *config, const char *id, Sandbox **ret_sandbox, void **ret_owner,
                  size_t *ret_owner_size, SandboxError *ret_error);
/* Free a detached S without ending it: it lives on, for another process to adopt. Closes our descriptors
 * only (the keeper keeps what it holds). Returns NULL. */
Sandbox *sandbox_forget(Sandbox *s);

/* The spec it runs with (the defaults applied, an image's config resolved). */
const SandboxSpec *sandbox_spec(const Sandbox *s);
/* When it started, CLOCK_REALTIME µs. */
uint64_t sandbox_created_usec(const Sandbox *s);

/* ---- more programs in a live sandbox (exec.c) ----
 *
 * sandbox_exec() starts a program in a sandbox that runs (an idle one, SANDBOX_START_IDLE, or any other):
 * in all its namespaces, in its cgroup (its limits cover all its programs together), with its
 * capabilities, seccomp policy and rlimits, set up by the same code as the sandbox's own program. The
 * program is a child of the calling process (waitable), in a session of its own; it ends by itself, by
 * sandbox_exec_signal(), or at its timeout (sandbox_exec_deadline(), then sandbox_exec_collect() with KILL kills its session). Its
 * end does not end the sandbox, nor the processes it left in other sessions. The caller must be host
 * root, may be threaded, and keeps S alive as long as the SandboxExec. */

typedef struct SandboxExec SandboxExec;

typedef struct SandboxExecOptions {
        char *const *argv;      /* the program and its arguments */
        size_t n_argv;
        char *const *env;       /* NAME=VALUE over the sandbox's environment (N_ENV entries) */
        size_t n_env;
        const char *workdir;    /* NULL: the sandbox's */
        const char *user;       /* NAME, UID, NAME:GROUP or UID:GID, names looked up in the sandbox's own
                                 * /etc/passwd and /etc/group (as its root sees them); NULL: the sandbox's
                                 * user */
        bool tty;               /* a terminal of the sandbox's own (sandbox_exec_pty_fd()) */
        const int *stdio;       /* stdin, stdout, stderr (not with TTY); NULL: ours */
        uint64_t timeout_usec;  /* wall clock, 0: none */
        int cancel_fd;          /* readable while the start waits: -ECANCELED; -EBADF: none */
} SandboxExecOptions;

/* Returns once the program has been executed, or says why it could not (status 125, 126 or 127, as a
 * sandbox's start). */
int sandbox_exec(Sandbox *s, const SandboxExecOptions *options, SandboxExec **ret_exec, SandboxError *ret_error);
/* The program's host pid, and a pidfd that polls readable when it ended. */
pid_t sandbox_exec_pid(const SandboxExec *e);
int sandbox_exec_pidfd(const SandboxExec *e);
/* With TTY: the pty master (owned by E), else -EBADF. */
int sandbox_exec_pty_fd(const SandboxExec *e);
int sandbox_exec_signal(SandboxExec *e, int sig);
/* When its timeout ends (CLOCK_MONOTONIC µs), 0: none. The caller then collects it with KILL. */
uint64_t sandbox_exec_deadline(const SandboxExec *e);
/* Kill every process of the program's session (the program, and what it started that stayed in its
 * session); looks again for up to a second for members that forked meanwhile. Does not wait for them. */
void sandbox_exec_kill(SandboxExec *e);
/* Wait for the program to end (killing its session first if KILL) and collect the result: its status (124
 * when it was killed, here or by sandbox_exec_kill(), at or past its deadline), wall clock, CPU time and largest resident set (of it and the
 * children it waited for), whether the sandbox's memory bound ended it (137), whether forks failed at the
 * pids bound while it ran; memory_peak is the sandbox's, disk_limit_hit whether the sandbox's disk bound
 * was ever reached. Without KILL it must have ended (its pidfd polled readable), or this waits. */
int sandbox_exec_collect(SandboxExec *e, bool kill, SandboxResult *ret_result);
/* Kills and collects it if that was not done. Returns NULL. */
SandboxExec *sandbox_exec_free(SandboxExec *e);
