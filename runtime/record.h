/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The record of a detached sandbox (sandbox_detach()), STATE/ID/record: what a later process needs to
 * adopt it (sandbox_adopt()): the ids of its init, union server and keeper (pid and start time, so that
 * a reused pid is never taken for them), its host id range, cgroup, network lease, seccomp program, its
 * capability set and its spec (EXEC's field encoding, proto/msg.h). Written by the runtime (temp name,
 * fsync, rename) in a directory only root can write; read back at the start of the next sandboxd, which
 * treats it as untrusted all the same: every field is bounded and checked, and the parser is fuzzed
 * (tests/fuzz/fuzz-record.c).
 *
 * Format: the 8 bytes "SBXREC01", then TLV fields as in docs/protocol.md §2 (tags below). Pure: no I/O.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spec.h"
#include "wire.h"

#define RECORD_MAGIC "SBXREC01"
#define RECORD_MAGIC_SIZE 8
#define RECORD_SIZE_MAX (UINT32_C(4) << 20)     /* a spec is at most a frame (2 MiB), the rest is small */
#define RECORD_FILTER_MAX (4096 * 8)            /* BPF_MAXINSNS instructions of 8 bytes */
#define RECORD_ID_SIZE 17
#define RECORD_OWNER_MAX 4096

typedef struct RecordProcess {
        pid_t pid;              /* host pid, 1..2^31-1 */
        uint64_t start_time;    /* field 22 of /proc/PID/stat: clock ticks after boot */
} RecordProcess;

typedef struct SandboxRecord {
        char id[RECORD_ID_SIZE];        /* 16 lowercase hex digits */
        uint32_t host_first;            /* the first host uid/gid of its range */
        RecordProcess init, server, keeper;
        char *cgroup_parent;            /* NULL: below the adopter's own cgroups, as cgroup_open() finds it */
        uint32_t net_mode;              /* SpecNet */
        uint32_t net_address;           /* with a lease: its IPv4 address, network byte order */
        char *net_table;                /* with a lease: the netfilter table of its published ports */
        char *upper_work;               /* with --upper: the work directory beside it */
        char *image_id;                 /* with --image NAME: the image's ID */
        uint8_t *filter;                /* the seccomp program's instructions; NULL: unconfined */
        size_t filter_size;
        uint64_t cap_set;
        bool quota;                     /* its server reports the disk bound on its fd 4 */
        uint64_t created_usec;          /* CLOCK_REALTIME */
        uint8_t *owner;                 /* the adopter's own bytes (opaque here), NULL: none */
        size_t owner_size;
        SandboxSpec spec;               /* as it runs: defaults applied, an image's config resolved */
} SandboxRecord;

void record_done(SandboxRecord *r);

/* R into *B (reset first): the magic, then the fields. -EINVAL for a record that would not decode. */
int record_encode(const SandboxRecord *r, WireBuffer *b);
/* SIZE bytes at DATA into *RET; -EBADMSG (with a static message in *RET_ERROR) for anything malformed or
 * out of range, -EMSGSIZE above RECORD_SIZE_MAX, -ENOMEM. */
int record_decode(const void *data, size_t size, SandboxRecord *ret, const char **ret_error);
