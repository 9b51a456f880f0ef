/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "parse.h"
#include "policy.h"

typedef enum BoundKind {
        BOUND_SIZE,             /* bytes */
        BOUND_COUNT,
        BOUND_USEC,             /* shown in seconds */
} BoundKind;

/* One bound of the spec, its default, its cap and per-uid total in the configuration. */
typedef struct Bound {
        const char *option;     /* as the user wrote it: "--memory", "--disk inodes=" */
        const char *cap_key, *total_key;
        size_t spec_offset;     /* uint64_t in SandboxSpec */
        size_t cap_offset;      /* uint64_t in DaemonConfig */
        size_t total_offset;    /* uint64_t in DaemonConfig; 0: no total */
        size_t usage_offset;    /* uint64_t in PolicyUsage */
        uint64_t default_value; /* what 0 in the spec means; 0: no bound (then the cap is the default) */
        BoundKind kind;
} Bound;

static const Bound bounds[] = {
        { "--memory", "max-memory", "max-memory-per-client", offsetof(SandboxSpec, memory_max),
          offsetof(DaemonConfig, max_memory), offsetof(DaemonConfig, max_memory_per_client),
          offsetof(PolicyUsage, memory), SPEC_DEFAULT_MEMORY, BOUND_SIZE },
        { "--pids", "max-pids", "max-pids-per-client", offsetof(SandboxSpec, pids_max),
          offsetof(DaemonConfig, max_pids), offsetof(DaemonConfig, max_pids_per_client),
          offsetof(PolicyUsage, pids), SPEC_DEFAULT_PIDS, BOUND_COUNT },
        { "--disk", "max-disk", "max-disk-per-client", offsetof(SandboxSpec, disk_max),
          offsetof(DaemonConfig, max_disk), offsetof(DaemonConfig, max_disk_per_client),
          offsetof(PolicyUsage, disk), SPEC_DEFAULT_DISK, BOUND_SIZE },
        { "--disk inodes=", "max-disk-inodes", NULL, offsetof(SandboxSpec, disk_inodes_max),
          offsetof(DaemonConfig, max_disk_inodes), 0, 0, SPEC_DEFAULT_DISK_INODES, BOUND_COUNT },
        { "--timeout", "max-timeout", NULL, offsetof(SandboxSpec, timeout_usec),
          offsetof(DaemonConfig, max_timeout_usec), 0, 0, 0, BOUND_USEC },
};

#define FIELD(base, offset) (*(uint64_t *) ((char *) (base) + (offset)))
#define CFIELD(base, offset) (*(const uint64_t *) ((const char *) (base) + (offset)))

static const char *format_value(BoundKind kind, uint64_t v, char *buf, size_t size) {
        if (v == SPEC_UNLIMITED)
                snprintf(buf, size, "unlimited");
        else if (kind == BOUND_SIZE)
                format_size(v, buf, size);
        else if (kind == BOUND_USEC)
                snprintf(buf, size, "%.6g s", (double) v / 1e6);
        else
                snprintf(buf, size, "%" PRIu64, v);
        return buf;
}

void policy_host_init(PolicyHost *ret) {
        PolicyHost h = {};

        for (int i = 0; i < RLIM_NLIMITS; i++) {
                struct rlimit rl;
                if (getrlimit(i, &rl) < 0 || rl.rlim_max == RLIM_INFINITY)
                        h.rlimit_hard[i] = UINT64_MAX;
                else
                        h.rlimit_hard[i] = rl.rlim_max;
        }
        /* What the runtime gives a sandbox that sets none (step_rlimits). */
        h.rlimit_hard[RLIMIT_NOFILE] = MIN(h.rlimit_hard[RLIMIT_NOFILE], SPEC_DEFAULT_NOFILE_HARD);
        h.rlimit_hard[RLIMIT_CORE] = 0;
        h.cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (h.cpus < 0)
                h.cpus = 0;
        *ret = h;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void policy_usage_add(PolicyUsage *usage, const SandboxSpec *spec) {
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++) {
                const Bound *b = &bounds[i];
                uint64_t v;

                if (!b->total_offset)
                        continue;
                v = CFIELD(spec, b->spec_offset) ?: b->default_value;
                FIELD(usage, b->usage_offset) = add_sat(CFIELD(usage, b->usage_offset), v);
        }
}

/* One bound for a client other than root: fill it in, or refuse it. */
static int check_bound(const Bound *b, const DaemonConfig *cfg, const PolicyUsage *used, SandboxSpec *spec,
                       char *msg, size_t size) {
        uint64_t cap = CFIELD(cfg, b->cap_offset), v = FIELD(spec, b->spec_offset);
        char vs[FORMAT_SIZE_MAX], cs[FORMAT_SIZE_MAX], us[FORMAT_SIZE_MAX];

        if (v == 0) {
                /* Left out: the default, never above the cap; a bound without a default (the wall
                 * clock) takes the cap. */
                if (b->default_value)
                        v = cap == SPEC_UNLIMITED ? b->default_value : MIN(b->default_value, cap);
                else
                        v = cap;
        } else if (v > cap) {
                if (v == SPEC_UNLIMITED)
                        snprintf(msg, size, "%s%sunlimited: this daemon's %s is %s (only root may lift it)", b->option,
                                 b->option[strlen(b->option) - 1] == '=' ? "" : " ", b->cap_key,
                                 format_value(b->kind, cap, cs, sizeof cs));
                else
                        snprintf(msg, size, "%s%s%s is above this daemon's %s (%s)", b->option,
                                 b->option[strlen(b->option) - 1] == '=' ? "" : " ",
                                 format_value(b->kind, v, vs, sizeof vs), b->cap_key,
                                 format_value(b->kind, cap, cs, sizeof cs));
                return -EPERM;
        }
        if (b->total_offset) {
                uint64_t total = CFIELD(cfg, b->total_offset), in_use = CFIELD(used, b->usage_offset);
                if (total != SPEC_UNLIMITED && (v == SPEC_UNLIMITED || add_sat(in_use, v) > total)) {
                        snprintf(msg, size, "%s %s: your running sandboxes hold %s already, and this daemon's %s is %s",
                                 b->option, format_value(b->kind, v, vs, sizeof vs),
                                 format_value(b->kind, in_use, us, sizeof us), b->total_key,
                                 format_value(b->kind, total, cs, sizeof cs));
                        return -EPERM;
                }
        }
        /* The wall clock: 0 is "none" in the spec, so no cap stays 0. */
        FIELD(spec, b->spec_offset) = v == SPEC_UNLIMITED && b->kind == BOUND_USEC ? 0 : v;
        return 0;
}

/* --rlimit may only lower what a sandbox gets anyway; core dumps stay off. */
static int check_rlimits(const PolicyHost *host, const SandboxSpec *spec, char *msg, size_t size) {
        for (size_t i = 0; i < spec->n_rlimits; i++) {
                const SpecRlimit *rl = &spec->rlimits[i];
                const char *name = spec_rlimit_to_string(rl->resource) ?: "?";
                char vs[FORMAT_SIZE_MAX], ds[FORMAT_SIZE_MAX];
                BoundKind kind = spec_rlimit_is_size(rl->resource) ? BOUND_SIZE : BOUND_COUNT;
                uint64_t hard;

                if (rl->resource < 0 || rl->resource >= RLIM_NLIMITS) {
                        snprintf(msg, size, "--rlimit: unknown resource %d", rl->resource);
                        return -EPERM;
                }
                hard = host->rlimit_hard[rl->resource];
                if (rl->resource == RLIMIT_CORE && (rl->soft != 0 || rl->hard != 0)) {
                        snprintf(msg, size, "--rlimit core: core dumps stay off for users other than root "
                                 "(core must be 0, not %s)", format_value(kind, rl->hard, vs, sizeof vs));
                        return -EPERM;
                }
                if (rl->hard > hard) {
                        snprintf(msg, size, "--rlimit %s: the hard limit %s is above what a sandbox gets by "
                                 "default (%s); users other than root may only lower limits", name,
                                 format_value(kind, rl->hard, vs, sizeof vs), format_value(kind, hard, ds, sizeof ds));
                        return -EPERM;
                }
        }
        return 0;
}

int policy_check(const DaemonConfig *cfg, const PolicyHost *host, bool root, const PolicyUsage *used,
                 SandboxSpec *spec, char *msg, size_t size) {
        int r;

        /* For everyone: more CPUs than the host has is a mistake, not a bound. */
        if (host->cpus > 0 && spec->cpus_milli > (uint64_t) host->cpus * 1000) {
                snprintf(msg, size, "--cpus %u.%03u: this host has %ld CPU%s", spec->cpus_milli / 1000,
                         spec->cpus_milli % 1000, host->cpus, host->cpus == 1 ? "" : "s");
                return -EPERM;
        }
        if (root)
                return 0;
        r = check_rlimits(host, spec, msg, size);
        if (r < 0)
                return r;
        /* Check all before filling in any: a refused spec is left as it came. */
        SandboxSpec copy = *spec;
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++) {
                r = check_bound(&bounds[i], cfg, used, &copy, msg, size);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++)
                FIELD(spec, bounds[i].spec_offset) = FIELD(&copy, bounds[i].spec_offset);
        return 0;
}

int policy_check_exec_in(const DaemonConfig *cfg, bool root, SandboxSpec *spec, char *msg, size_t size) {
        static const PolicyUsage none = {};

        if (root)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(bounds); i++)
                if (streq(bounds[i].option, "--timeout"))
                        return check_bound(&bounds[i], cfg, &none, spec, msg, size);
        return 0;
}

int policy_check_ttl(const DaemonConfig *cfg, bool root, uint64_t *ttl_usec, uint64_t *idle_ttl_usec, char *msg,
                     size_t size) {
        uint64_t cap = cfg->max_ttl_usec;
        char vs[FORMAT_SIZE_MAX], cs[FORMAT_SIZE_MAX];

        if (root || cap == SPEC_UNLIMITED)
                return 0;
        if (*ttl_usec > cap) {
                snprintf(msg, size, "--ttl %s is above this daemon's max-ttl (%s)",
                         format_value(BOUND_USEC, *ttl_usec, vs, sizeof vs), format_value(BOUND_USEC, cap, cs, sizeof cs));
                return -EPERM;
        }
        if (*idle_ttl_usec > cap) {
                snprintf(msg, size, "--idle-ttl %s is above this daemon's max-ttl (%s)",
                         format_value(BOUND_USEC, *idle_ttl_usec, vs, sizeof vs),
                         format_value(BOUND_USEC, cap, cs, sizeof cs));
                return -EPERM;
        }
        if (*ttl_usec == 0)
                *ttl_usec = cap;
        return 0;
}
