/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An OCI bundle's config.json (runtime-spec 1.x), translated into the runtime library's SandboxSpec and
 * what sandbox-oci itself applies around it (hooks, masked and read-only paths, sysctls, the emulated
 * cgroup mount, the read-only root). config.json is outside input: its size, nesting and every count are
 * bounded, and a field the runtime cannot honour is refused with a message naming it (docs/oci-runtime.md
 * has the table). No jansson type appears here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "filter.h"
#include "spec.h"

#define OCI_CONFIG_SIZE_MAX (UINT64_C(4) << 20)
#define OCI_CONFIG_DEPTH_MAX 32
#define OCI_HOOKS_MAX 32                /* per kind */
#define OCI_HOOK_ARGS_MAX 256
#define OCI_PATHS_MAX 256               /* masked and read-only paths, each */
#define OCI_SYSCTL_MAX 128
#define OCI_ANNOTATIONS_MAX 1024
#define OCI_NAMESPACES_MAX 16
#define OCI_IDMAPS_MAX 64
#define OCI_GIDS_MAX 64
#define OCI_CGROUPS_PATH_MAX 1024       /* linux.cgroupsPath, bytes */
#define OCI_DEVICES_MAX 64

/* Our annotations (docs/oci-runtime.md). */
#define OCI_ANNOTATION_LIMITS "run.sandbox.limits"          /* "none": no default memory and pids bounds */
#define OCI_ANNOTATION_SECCOMP "run.sandbox.seccomp"        /* "ours": the engine's profile is dropped, ours stays;
                                                             * without it the engine's is stacked on ours */
#define OCI_ANNOTATION_USERNS "run.sandbox.userns"          /* "host" is refused: always a private range */

typedef enum OciHookKind {
        OCI_HOOK_PRESTART,
        OCI_HOOK_CREATE_RUNTIME,
        OCI_HOOK_POSTSTART,
        OCI_HOOK_POSTSTOP,
        OCI_HOOK_CREATE_CONTAINER,      /* in the container's mount namespace, its path the host's */
        OCI_HOOK_START_CONTAINER,       /* in the container, as its root, before the program */
        _OCI_HOOK_MAX,
} OciHookKind;

typedef struct OciHook {
        char *path;
        char **args;            /* NULL-terminated; NULL: just the path */
        char **env;             /* NULL-terminated; NULL: empty */
        unsigned timeout;       /* seconds, 0: none */
} OciHook;

/* The namespaces a container may join by path (linux.namespaces[].path). */
typedef enum OciJoin {
        OCI_JOIN_NET,
        OCI_JOIN_IPC,
        OCI_JOIN_UTS,
        _OCI_JOIN_MAX,
} OciJoin;

/* A device of linux.devices at another path than our /dev has it: a bind mount of ours there. */
typedef struct OciDevice {
        char *path;             /* absolute, under /dev */
        const char *node;       /* ours: "/dev/null", ... */
} OciDevice;

typedef struct OciSysctl {
        char *key;              /* net.ipv4.ping_group_range */
        char *value;
} OciSysctl;

typedef struct OciBundle {
        SandboxSpec spec;       /* owns everything it points to (spec_done()) */
        char *oci_version;
        char *root;             /* the rootfs, absolute */
        bool root_readonly;
        int umask;              /* -1: not set */
        char **masked;
        size_t n_masked;
        char **readonly;
        size_t n_readonly;
        OciSysctl *sysctl;
        size_t n_sysctl;
        OciHook *hooks[_OCI_HOOK_MAX];
        size_t n_hooks[_OCI_HOOK_MAX];
        char *cgroup_dest;      /* a cgroup mount was asked for here: emulated; NULL: none */
        char *cgroups_path;     /* linux.cgroupsPath (cgroupfs form); NULL: none */
        bool cgroup_readonly;
        char *mqueue_dest;      /* an mqueue mount; NULL: none */
        bool no_limits;         /* OCI_ANNOTATION_LIMITS=none */
        char *join[_OCI_JOIN_MAX];      /* a namespace to join, its path; NULL: a new one */
        FilterProgram *seccomp;         /* the engine's linux.seccomp, installed after ours; NULL: none */
        uint32_t gids[OCI_GIDS_MAX];    /* process.user.additionalGids */
        size_t n_gids;
        OciDevice *devices;             /* linux.devices that need a bind mount */
        size_t n_devices;
        bool has_oom_score_adj;         /* process.oomScoreAdj */
        int oom_score_adj;
        bool has_cpuset_io;             /* linux.resources.cpu.cpus/mems or blockIO asked for something */
        CgroupCpusetIo cpuset_io;       /* then: what (SandboxConfig.cpuset_io) */
} OciBundle;

/* Parse config.json (BUF, LEN bytes) of the bundle in BUNDLE_DIR (absolute: relative paths in it are
 * relative to the bundle) into RET. On failure (-EINVAL, -E2BIG, -ENOMEM) ERR says what and names the field.
 * RET is untouched on failure. */
int oci_bundle_parse(const char *buf, size_t len, const char *bundle_dir, OciBundle *ret, char *err, size_t errlen);
void oci_bundle_done(OciBundle *b);

/* `update --resources`: BUF is a linux.resources object (runtime-spec), read as config.json's is (the same
 * refusals). What it sets: memory and pids bounds (0: not set, SPEC_UNLIMITED: -1), CPUs in thousandths. */
int oci_resources_parse(const char *buf, size_t len, uint64_t *ret_memory, uint64_t *ret_pids, uint32_t *ret_cpus_milli,
                        char *err, size_t errlen);

const char *oci_hook_kind_to_string(OciHookKind k);
const char *oci_join_to_string(OciJoin j);     /* its linux.namespaces[].type */
