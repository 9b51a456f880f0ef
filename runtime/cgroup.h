/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One cgroup per sandbox, on cgroup v2 (a child of our own cgroup, controllers enabled in our
 * delegated subtree) or on v1 (a child of our own cgroup in each of the memory, pids, cpu, cpuacct
 * and freezer hierarchies; cpuset and blkio too, only when CgroupLimits.cpuset_io asks for them).
 * With CgroupLimits.split it holds the whole sandbox's limits and has two
 * children: "program" (the sandbox's init and everything it starts; what cgroup_child_kill() ends)
 * and "union" (the union's server, whose work for the sandbox is charged to it, and which is never
 * frozen: on v1 it is not in the freezer hierarchy). We only ever create, write to and remove
 * cgroups we made ourselves; the one exception is cgroup_v2_prepare_delegated(), which the caller
 * invokes explicitly when our own cgroup was delegated to us. Runs in the parent (the runtime), as
 * root or as the owner of a delegated subtree. A Cgroup object is used by one thread at a time; see
 * docs/cgroups.md.
 */
#pragma once

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum CgroupLayout {
        CGROUP_LAYOUT_V2,       /* /sys/fs/cgroup is cgroup2 */
        CGROUP_LAYOUT_V1,       /* /sys/fs/cgroup is a tmpfs of v1 hierarchies (maybe with unified/) */
} CgroupLayout;

typedef enum CgroupChild {
        CGROUP_CHILD_PROGRAM,   /* "program": the init and everything below it */
        CGROUP_CHILD_UNION,     /* "union": the union's server */
        _CGROUP_CHILD_MAX,
} CgroupChild;

/* cpuset and io bounds, only when asked (sandbox-oci's linux.resources.cpu.cpus/mems and blockIO): without them
 * the cpuset and io (v1: blkio) controllers are not used at all. */
#define CGROUP_CPUSET_LIST_MAX 256      /* bytes of a list, with its NUL */
#define CGROUP_CPUSET_ID_MAX 65535      /* the largest CPU or node number in a list */
#define CGROUP_IO_DEVICES_MAX 16

typedef struct CgroupIoDevice {
        uint32_t major, minor;
        uint64_t rbps, wbps, riops, wiops;      /* 0 = no bound */
} CgroupIoDevice;

typedef struct CgroupCpusetIo {
        char cpus[CGROUP_CPUSET_LIST_MAX];      /* "0-1,3"; "" = not asked (v1: the parent's copied) */
        char mems[CGROUP_CPUSET_LIST_MAX];      /* memory nodes, the same form */
        uint32_t io_weight;                     /* 10..1000 (v2 io.weight, v1 blkio.weight or blkio.bfq.weight),
                                                 * 0 = unset */
        CgroupIoDevice devices[CGROUP_IO_DEVICES_MAX]; /* v2 io.max, v1 blkio.throttle.* */
        size_t n_devices;
} CgroupCpusetIo;

/* True if TEXT is a CPU or node list the kernel's cpuset files take: "N" or "N-M" (N <= M <=
 * CGROUP_CPUSET_ID_MAX), comma-separated, shorter than CGROUP_CPUSET_LIST_MAX. */
static inline bool cgroup_cpuset_list_valid(const char *text) {
        const char *p = text;

        if (!text || !*text || strnlen(text, CGROUP_CPUSET_LIST_MAX) >= CGROUP_CPUSET_LIST_MAX)
                return false;
        for (;;) {
                unsigned long a, b;
                char *end;

                if (!isdigit((unsigned char) *p))
                        return false;
                errno = 0;
                a = strtoul(p, &end, 10);
                if (errno != 0 || a > CGROUP_CPUSET_ID_MAX)
                        return false;
                b = a;
                p = end;
                if (*p == '-') {
                        p++;
                        if (!isdigit((unsigned char) *p))
                                return false;
                        b = strtoul(p, &end, 10);
                        if (errno != 0 || b > CGROUP_CPUSET_ID_MAX || b < a)
                                return false;
                        p = end;
                }
                if (*p == '\0')
                        return true;
                if (*p != ',')
                        return false;
                p++;
        }
}

typedef struct CgroupLimits {
        uint64_t memory_max;    /* bytes, 0 = no limit; swap is limited to 0 too where possible */
        uint64_t pids_max;      /* 0 = no limit */
        uint64_t cpu_quota_us;  /* 0 = no limit; per cpu_period_us */
        uint64_t cpu_period_us; /* 0 = 100000 */
        uint32_t cpu_weight;    /* 1..10000 (v2's cpu.weight; v1 cpu.shares = weight * 1024 / 100), 0 = unset */
        const CgroupCpusetIo *cpuset_io; /* NULL: none. Required (-EOPNOTSUPP without the controllers it needs);
                                          * the children inherit (v1: their cpuset is the sandbox's) */
        /* The two children, made with the cgroup when SPLIT. The limits above are then the whole
         * sandbox's (both children together); the children add their own bounds: */
        bool split;
        uint64_t program_pids_max; /* required (-EOPNOTSUPP without the pids controller), 0 = none */
        uint64_t union_pids_max;   /* best effort: applied where the pids controller is there */
        uint32_t union_cpu_weight; /* best effort: applied where the cpu controller is there */
} CgroupLimits;

typedef struct CgroupStats {
        uint64_t cpu_usec;      /* user+system cpu time of all members, ever; 0 when not accounted */
        uint64_t memory_peak;   /* bytes; 0 when the kernel does not tell */
        uint64_t oom_kills;     /* processes the OOM killer ended in this cgroup; 0 when not accounted */
        uint64_t pids_max_events; /* forks refused at the pids limit ("max" of pids.events); 0 when not
                                   * accounted (no pids limit) */
} CgroupStats;

typedef struct Cgroup Cgroup;

/* statfs("/sys/fs/cgroup"): cgroup2 → V2, tmpfs → V1 (hybrid or legacy), else -EOPNOTSUPP. Cached. */
int cgroup_detect_layout(CgroupLayout *ret_layout);

/* The calling process's own cgroup as listed in /proc/self/cgroup ("/" or "/a/b"): CONTROLLER is a
 * v1 controller name ("memory"), or NULL for the cgroup2 ("0::") entry. -ENOENT if not listed. */
int cgroup_get_own_path(const char *controller, char **ret_path);

/* Create cgroup NAME (a single path component) below the calling process's own cgroup(s) and apply
 * LIMITS. -EEXIST if it exists. -EOPNOTSUPP if a requested limit's controller is not available
 * (v2: not enabled in the parent's cgroup.subtree_control, and not enablable; v1: no hierarchy).
 * All or nothing: on failure, no directory is left behind. LIMITS may be NULL (no limits).
 * On v2 after cgroup_v2_prepare_delegated(), the parent is the delegated cgroup, not the leaf we
 * moved into, and controllers a limit needs are enabled in it on demand. */
int cgroup_create(const char *name, const CgroupLimits *limits, Cgroup **ret_cgroup);

/* Find cgroup NAME (below our own cgroups, in every hierarchy where it exists, with the children it
 * has) as made by an earlier cgroup_create() of a process that is gone, so that cgroup_remove() can
 * remove it. -ENOENT when it exists nowhere. */
int cgroup_open(const char *name, Cgroup **ret_cgroup);

/* The same below an explicit mount root and parent path, for the cgroup2 mechanics on a hybrid
 * host: ROOT is the absolute path of the cgroup2 mount (v2) or of the directory holding the
 * per-controller mounts (v1); PARENT is relative to it (v2) or to each controller mount (v1), a
 * leading '/' is ignored. Each mount must be a real cgroup file system. Never enables controllers. */
int cgroup_create_at(CgroupLayout layout, const char *root, const char *parent, const char *name,
                     const CgroupLimits *limits, Cgroup **ret_cgroup);

/* For unit tests on a fake tree: plain directories standing in for the cgroup mounts. No kernel
 * creates a cgroup's interface files on mkdir or drops them before rmdir there, so these hooks do:
 * after_mkdir right after our mkdirat() of a cgroup and before any write to it, before_rmdir right
 * before each unlinkat(AT_REMOVEDIR) (also on the rollback of a failed create). DIR_FD is an O_PATH
 * fd of the cgroup directory; HIERARCHY is "" on v2, the hierarchy directory's name on v1
 * ("memory", "cpu,cpuacct"). A hook returns 0 or -errno. */
typedef struct CgroupTestHooks {
        int (*after_mkdir)(int dir_fd, const char *hierarchy, void *userdata);
        int (*before_rmdir)(int dir_fd, const char *hierarchy, void *userdata);
        void *userdata;
} CgroupTestHooks;

/* cgroup_create_at() without the file system type checks, calling HOOKS (copied; may be NULL). */
int cgroup_create_fake(CgroupLayout layout, const char *root, const char *parent, const char *name,
                       const CgroupLimits *limits, const CgroupTestHooks *hooks, Cgroup **ret_cgroup);

/* v2 under a delegated subtree (systemd Delegate=yes): our own cgroup still holds our process, and
 * the no-internal-processes rule forbids enabling controllers for its children while it does. So:
 * create <own>/LEAF (NULL = "supervisor"; an existing one is reused), move this whole process into it,
 * and enable those of memory, pids and cpu that <own>/cgroup.controllers offers in
 * <own>/cgroup.subtree_control. From then on cgroup_create() creates sandboxes in <own> (a sibling
 * of LEAF), not in LEAF. Call once at start-up, before other threads use this module; calling it
 * again after success returns 0. -EOPNOTSUPP on v1, -EPERM if our own cgroup is the root, -EBUSY
 * if other processes remain in <own>. On failure we are back in <own> and a leaf we made is gone.
 * Only call it when the subtree really is delegated to us. */
int cgroup_v2_prepare_delegated(const char *leaf);

/* v2: make PATH the parent of the cgroups cgroup_create() makes from now on, as an OCI engine's
 * linux.cgroupsPath names it (cgroupfs form): "/a/b" from the cgroup2 root, "a/b" below our own cgroup.
 * Missing levels are made (0755), and at each level memory, pids and cpu are enabled for its children
 * where offered and off. Call once, before other threads use this module. -EINVAL for a bad path (at
 * most 16 components, no "." or ".."), -EOPNOTSUPP on v1, -EBUSY after cgroup_v2_prepare_delegated().
 * On failure nothing made is left. */
int cgroup_v2_set_parent(const char *path);

/* Remove the trailing levels of that parent which cgroup_v2_set_parent() made, deepest first, once the
 * sandbox's cgroup below them is gone; a level that is not empty stays (-EBUSY). */
int cgroup_v2_remove_parent(void);

/* Why cgroup_create() with LIMITS returned -EOPNOTSUPP: *RET_MISSING lists the names of the
 * controllers a requested limit needs that cannot be used below our own cgroup ("memory, pids";
 * "" when all can), *RET_PARENT the cgroup (relative to the cgroup2 mount) where they would have to be
 * enabled on v2, NULL on v1 (where a hierarchy is missing). Both are the caller's to free. */
int cgroup_explain_unsupported(const CgroupLimits *limits, char **ret_missing, char **ret_parent);

/* > 0 if our own v2 cgroup carries systemd's delegation mark (xattr trusted.delegate or
 * user.delegate = "1", systemd >= 251), 0 if not, -errno on error. A hint for the caller. */
int cgroup_v2_own_is_delegated(void);

/* Move PID into the cgroup (every hierarchy on v1). -EISDIR for a split cgroup: its members go into
 * its children. */
int cgroup_attach(Cgroup *cgroup, pid_t pid);
/* Move PID into CHILD of a split cgroup (each of the child's hierarchies on v1); -ENOENT without it. */
int cgroup_child_attach(Cgroup *cgroup, CgroupChild child, pid_t pid);

/* The cgroup.procs files of CHILD of a split cgroup, opened O_WRONLY|O_CLOEXEC, one per hierarchy (v1; one on
 * v2), at most CGROUP_PROCS_FDS_MAX: for a child process that moves itself ("0") into CHILD while its parent
 * goes on (a migration on v1 waits for an RCU grace period). The caller closes them; -ENOENT without CHILD. */
#define CGROUP_PROCS_FDS_MAX 16
int cgroup_child_procs_open(Cgroup *cgroup, CgroupChild child, int ret_fds[static CGROUP_PROCS_FDS_MAX],
                            size_t *ret_n);

/* An O_RDONLY|O_DIRECTORY|O_CLOEXEC fd of the v2 cgroup (the caller closes it), for
 * clone3(CLONE_INTO_CGROUP); -EOPNOTSUPP on v1, -EISDIR for a split cgroup. */
int cgroup_v2_fd(Cgroup *cgroup);
/* The same for CHILD of a split cgroup. */
int cgroup_child_v2_fd(Cgroup *cgroup, CgroupChild child);

/* Accounting of the members, past and present, children included. Values the host does not account
 * are 0. Malformed kernel files give -EBADMSG. */
int cgroup_get_stats(Cgroup *cgroup, CgroupStats *ret_stats);

/* Only the cpu time (cheap enough to poll for a cpu-time limit); -EOPNOTSUPP when not accounted
 * (v1 without a cpuacct hierarchy). */
int cgroup_get_cpu_usec(Cgroup *cgroup, uint64_t *ret_usec);

/* SIGKILL every member, children included (cgroup.kill on v2; freeze, kill, thaw on v1). Does not
 * wait for them. */
int cgroup_kill_all(Cgroup *cgroup);
/* SIGKILL the members of CHILD only: the program's, leaving the union's server alone. */
int cgroup_child_kill(Cgroup *cgroup, CgroupChild child);

/* Freeze (FREEZE) or thaw the members of CHILD (cgroup.freeze on v2, the freezer on v1; on v1 "union" is not in
 * the freezer hierarchy at all), and wait, at most about 2 s, until they are: -ETIMEDOUT then (the freezing
 * goes on). -EOPNOTSUPP without a freezer. */
int cgroup_child_freeze(Cgroup *cgroup, CgroupChild child, bool freeze);
/* Change the bounds of a live cgroup: each of memory_max, pids_max (and program_pids_max on the program's
 * child), cpu_quota_us/cpu_period_us that is not 0 is written; the rest stay. A memory bound below what the
 * members use now makes the kernel reclaim, or fails (-EBUSY on v1). */
int cgroup_update_limits(Cgroup *cgroup, const CgroupLimits *limits);
/* The pids cgroup.procs of CHILD lists now (malloc'ed, the caller frees *RET_PIDS). */
int cgroup_child_procs(Cgroup *cgroup, CgroupChild child, pid_t **ret_pids, size_t *ret_n);
/* The memory the cgroup (children included) uses now: v2 memory.current, v1 memory.usage_in_bytes;
 * -EOPNOTSUPP when not accounted. */
int cgroup_get_memory_current(Cgroup *cgroup, uint64_t *ret_bytes);

/* Kill what is left, wait (bounded, about 5 s) until empty, remove every directory we created
 * (the children first).
 * On failure (-EBUSY: members did not go away) what could not be removed is kept, and the call
 * may be repeated. Once everything is removed, further calls return 0 and the other functions
 * return -ESTALE. */
int cgroup_remove(Cgroup *cgroup);

/* Frees memory only; call cgroup_remove() first to remove the cgroup itself. Returns NULL. */
Cgroup *cgroup_free(Cgroup *cgroup);
