/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's pool of sandboxes made ahead of demand (issue 17, docs/performance.md). A pooled sandbox is
 * started without its program (SANDBOX_START_DEFERRED): namespaces made, ids mapped, cgroup made with its
 * limits, union mounted, network wired, its init waiting for the go. A request whose spec, but for what
 * only its program says (command, environment, working directory, timeout), is that of a pooled sandbox
 * takes it and gives it its program with sandbox_go(): the init starts it as it starts a fresh sandbox's
 * (already in the sandbox's cgroup: no migration), and from then on it is the sandbox's own program, which
 * the sandbox ends with. Never reused; requests that match none start a sandbox as before.
 *
 * Which specs are pooled ("shapes"): those of pool-shape lines in the configuration, and those asked for
 * at least twice within pool-idle-timeout (at most POOL_SHAPES_MAX shapes are tracked; the least recently
 * asked learned one makes room). The pool never holds more than pool-size sandboxes (nor more than half
 * of the host id ranges: one range each), nor more than pool-per-shape of one shape, and it stops filling
 * when the memory its sandboxes use together reaches pool-memory. It is filled one sandbox at a time on a
 * thread of its own, never on a request's path: the refill after a take waits until a request was answered
 * (pool_request_done()), or POOL_REFILL_DELAY_USEC for a request that runs long, so that a fill (the
 * union's server, the init's clone: several ms of CPU) does not compete with the request for the CPUs. After pool-idle-timeout
 * without a request it ends every sandbox it holds and forgets what it learned. A held sandbox whose init
 * or union server ended is removed at once; one held longer than pool-max-age is ended (and replaced while its
 * shape is asked for), and never handed out.
 *
 * Everything here but the fill and discard work items runs on the event loop's thread.
 */
#pragma once

#include <systemd/sd-event.h>

#include "daemon-config.h"
#include "sandbox.h"

#define POOL_SHAPES_MAX 16u                     /* shapes tracked (configured and learned) */
#define POOL_KEY_MAX 4096u                      /* bytes of a shape's encoded spec; larger: not pooled */
#define POOL_LEARN_HITS 2u                      /* requests of a shape within the window that make it pooled */
#define POOL_FAILURES_MAX 3u                    /* failed fills in a row after which a shape is not filled */
#define POOL_REFILL_DELAY_USEC (200 * UINT64_C(1000)) /* a take's refill, at the latest (see pool_request_done()) */

typedef struct Pool Pool;

typedef struct PoolStats {
        unsigned ready, filling, discarding;
        unsigned taken, missed;         /* requests of a pooled shape served from the pool, or not */
        uint64_t memory;                /* bytes the ready sandboxes used when they were made */
} PoolStats;

/* The pool of CONFIG (NULL with pool-size 0). Makes its one thread now: call it with the other workers'
 * pools, before any sandbox starts. RUNTIME and CONFIG must outlive it. */
int pool_new(sd_event *event, const DaemonConfig *config, const SandboxConfig *runtime, Pool **ret);
/* Ends every sandbox it holds (waiting for that, without the event loop). Accepts NULL, returns NULL. */
Pool *pool_free(Pool *p);
/* The daemon stops: end what it holds, fill no more. */
void pool_stop(Pool *p);

/* A request for SPEC (after the daemon's policy; an exec, or a create): learn from it, and return a pooled sandbox of its shape
 * that still runs, or NULL. The caller owns it and runs the request's program in it with pool_exec(). */
Sandbox *pool_take(Pool *p, const SandboxSpec *spec);

/* On a worker: SPEC's program (command, environment, working directory, timeout) in the pooled sandbox S
 * with STDIO: sandbox_go(). Then S is as a sandbox started for SPEC. -ESTALE (it had ended) and -E2BIG (the
 * program does not fit): nothing ran, the caller ends S and starts a sandbox as without a pool. */
int pool_exec(Sandbox *s, const SandboxSpec *spec, const int stdio[3], int cancel_fd, SandboxError *ret_error);

/* A request (pooled or not) was answered: the refill a take put off may run now. Accepts NULL. */
void pool_request_done(Pool *p);

/* On a worker: the pooled sandbox S becomes a created one (an idle sandbox, as SANDBOX_START_IDLE makes):
 * sandbox_go_idle(). -ESTALE as pool_exec(). Only for a create whose spec has no environment or working
 * directory of its own (the pooled sandbox has none: they are a program's in the shape). */
int pool_make_idle(Sandbox *s, int cancel_fd, SandboxError *ret_error);

void pool_get_stats(const Pool *p, PoolStats *ret);

/* For tests and the unit tests: whether SPEC can be pooled at all (no binds, published ports, own upper,
 * image of the store, terminal or --cpu-time), and its shape's key (the spec without its program's
 * fields, defaults filled in, encoded). */
int pool_shape_key(const SandboxSpec *spec, uint8_t **ret_key, size_t *ret_size);
