/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's bounds on what a client may ask for: the caps of the configuration (max-memory, max-pids,
 * max-timeout, max-disk, max-disk-inodes), the per-uid totals (max-*-per-client), --cpus within the
 * host's CPUs, and --rlimit only lowering limits (core dumps stay off). A value a client other than
 * root leaves out is filled in (the smaller of the default and the cap), so the spec that goes to the
 * runtime says every bound, and the server can sum a uid's running sandboxes from their specs.
 *
 * Pure: no I/O besides policy_rlimits_init() (getrlimit, sysconf), no logging. Who the client is
 * (root or not, its uid's usage) is the caller's to say, from the peer's credentials.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "daemon-config.h"
#include "spec.h"

/* What a uid's running sandboxes hold, summed from their (filled-in) specs. */
typedef struct PolicyUsage {
        uint64_t memory, pids, disk;
} PolicyUsage;

/* The hard limit of each resource that a sandbox gets when its spec sets none (what the runtime
 * leaves it: the daemon's own, RLIMIT_NOFILE's default, no core dumps), and the host's CPUs. */
typedef struct PolicyHost {
        uint64_t rlimit_hard[RLIM_NLIMITS];    /* UINT64_MAX: unlimited */
        long cpus;                              /* 0: unknown */
} PolicyHost;

void policy_host_init(PolicyHost *ret);

/* Add SPEC's bounds to USAGE (for the sums of one uid). */
void policy_usage_add(PolicyUsage *usage, const SandboxSpec *spec);

/* Check SPEC against the policy for a client (ROOT: the caps do not apply to it) whose uid already
 * holds USED, and fill in what a client other than root left out. Returns 0, or -EPERM with a
 * message in MSG naming the option, the cap and its value. */
int policy_check(const DaemonConfig *cfg, const PolicyHost *host, bool root, const PolicyUsage *used,
                 SandboxSpec *spec, char *msg, size_t size);

/* A program for a created sandbox (exec --in): its wall clock, capped by max-timeout for a client other
 * than root (left out: the cap), as a one-shot sandbox's. 0 or -EPERM with a message. */
int policy_check_exec_in(const DaemonConfig *cfg, bool root, SandboxSpec *spec, char *msg, size_t size);

/* A created sandbox's --ttl and --idle-ttl (µs, 0: none): for a client other than root capped by max-ttl,
 * and --ttl left out takes it. 0 or -EPERM with a message. */
int policy_check_ttl(const DaemonConfig *cfg, bool root, uint64_t *ttl_usec, uint64_t *idle_ttl_usec, char *msg,
                     size_t size);
