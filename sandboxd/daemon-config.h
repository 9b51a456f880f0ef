/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's configuration file: who may run sandboxes, and the caps on what each client may ask.
 * "key = value" lines, '#' comments; see sandboxd(8) for every key.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "network.h"
#include "spec.h"

#define CONFIG_MAX_SIZE (64u * 1024u)
#define CONFIG_MAX_IDS 256u

/* The defaults of the daemon's own bounds (sandboxd(8) documents them). */
#define CONFIG_DEFAULT_MAX_CONNECTIONS 1024u
#define CONFIG_DEFAULT_MAX_CONNECTIONS_PER_UID 32u
#define CONFIG_DEFAULT_MAX_BUFFER_PER_UID (UINT64_C(16) << 20)
#define CONFIG_DEFAULT_MAX_STARTS 16u
#define CONFIG_DEFAULT_MAX_STARTS_PER_UID 4u
#define CONFIG_MAX_STARTS_LIMIT 1024u                   /* one worker thread each */
#define CONFIG_MIN_BUFFER_PER_UID (UINT64_C(64) << 10)  /* one read of the socket */
#define CONFIG_ALLOW_IMAGES_MAX 64u                     /* allow-images entries */
#define CONFIG_ALLOW_IMAGES_BYTES (16u * 1024u)         /* ... and their bytes together */

/* Defaults of the per-uid totals: four sandboxes of the default size. With 16 sandboxes per client,
 * the per-sandbox caps alone would let one uid ask for 32 GiB of memory and 16384 processes (half of a
 * 32768 pid_max): more than a 24 GiB host has. */
#define CONFIG_DEFAULT_MEMORY_PER_CLIENT (4 * SPEC_DEFAULT_MEMORY)
#define CONFIG_DEFAULT_PIDS_PER_CLIENT (4 * SPEC_DEFAULT_PIDS)
#define CONFIG_DEFAULT_DISK_PER_CLIENT (4 * SPEC_DEFAULT_DISK)
/* How long a created sandbox of a client other than root lives unless removed earlier: the hour of a
 * one-shot sandbox's wall clock, for the same reasons (a forgotten sandbox gives its bounds back). */
#define CONFIG_DEFAULT_MAX_CREATED_PER_UID 16
/* Snapshots (sandboxctl snapshot) of one uid other than root: how many it may keep in the store, and the
 * bytes of each one's layer tar. 16 of 4 GiB: at most 64 GiB of the store per uid. */
#define CONFIG_DEFAULT_MAX_SNAPSHOTS_PER_UID 16u
#define CONFIG_DEFAULT_MAX_SNAPSHOT_SIZE (UINT64_C(4) << 30)
/* Volumes (sandboxctl volume create) of one uid other than root: how many, and how large each may be.
 * 16 of 16 GiB: at most 256 GiB of the data directory per uid; a volume is 1 GiB unless --size says. */
#define CONFIG_DEFAULT_MAX_VOLUMES_PER_UID 16u
#define CONFIG_DEFAULT_MAX_VOLUME_SIZE (UINT64_C(16) << 30)
#define CONFIG_DEFAULT_VOLUME_SIZE (UINT64_C(1) << 30)
#define CONFIG_VOLUME_SIZE_MIN (UINT64_C(16) << 20)     /* the smallest ext4 worth having */
#define CONFIG_VOLUME_SIZE_MAX (UINT64_C(16) << 40)     /* what root may ask for */
#define CONFIG_DEFAULT_MAX_TTL_USEC (UINT64_C(3600) * 1000000)

/* The pool of sandboxes made ahead (pool.h; sandboxd(8) documents the keys). */
#define CONFIG_DEFAULT_POOL_SIZE 0u             /* off: pool-size = N turns it on */
#define CONFIG_POOL_SIZE_MAX 64u
#define CONFIG_DEFAULT_POOL_PER_SHAPE 2u
#define CONFIG_DEFAULT_POOL_MEMORY (UINT64_C(256) << 20)
#define CONFIG_DEFAULT_POOL_IDLE_USEC (60 * UINT64_C(1000000))
#define CONFIG_DEFAULT_POOL_MAX_AGE_USEC (600 * UINT64_C(1000000))
#define CONFIG_POOL_SHAPES_MAX 8u

/* A pool-shape line: what a request must ask for (after the daemon's caps) to take a pooled sandbox; the
 * rest is the defaults (no image: the host's /usr). */
typedef struct PoolShapeConfig {
        uint64_t memory_max, pids_max, disk_max;        /* 0: the default */
        uint32_t cpus_milli;
        SpecNet net;
} PoolShapeConfig;

typedef struct DaemonConfig {
        uid_t allow_users[CONFIG_MAX_IDS];
        size_t n_allow_users;
        gid_t allow_groups[CONFIG_MAX_IDS];
        size_t n_allow_groups;
        unsigned max_per_client;        /* concurrent sandboxes of one uid (root: no cap) */
        unsigned max_sandboxes;         /* concurrent sandboxes in all */
        unsigned max_created_per_uid;   /* sandboxes made by create (stopped ones too) of one uid (root: no cap) */
        unsigned max_snapshots_per_uid; /* snapshots one uid keeps in the store (root: no cap) */
        uint64_t max_snapshot_size;     /* bytes of one snapshot's layer tar of a uid other than root */
        unsigned max_volumes_per_uid;   /* volumes one uid keeps (root: no cap) */
        uint64_t max_volume_size;       /* bytes of one volume of a uid other than root */
        /* Caps for clients other than root (SPEC_UNLIMITED: no cap). A value a client leaves out takes
         * the smaller of the default (SPEC_DEFAULT_*) and the cap; max_timeout_usec is their wall-clock
         * limit when they give none. */
        uint64_t max_memory;
        uint64_t max_pids;
        uint64_t max_timeout_usec;
        uint64_t max_ttl_usec;          /* a created sandbox's --ttl and --idle-ttl (also their default) */
        uint64_t max_disk;
        uint64_t max_disk_inodes;
        /* The same summed over the running sandboxes of one uid (root: no cap). */
        uint64_t max_memory_per_client;
        uint64_t max_pids_per_client;
        uint64_t max_disk_per_client;
        bool allow_host_paths;          /* may non-root clients use --bind, --image, --layer, --upper? */
        uint32_t id_base, id_ranges;    /* host id pool; 0 = the runtime's default */
        char unionfs[256];              /* "" = next to sandboxd, or the installed one */
        char store[256];                /* the image store for --image NAME; "" = /var/lib/sandbox */
        /* The images of the store that clients other than root may run (references or image IDs, each
         * compared by the image it names when a sandbox starts), NUL-separated; not set: any image. */
        bool allow_images_set;
        char allow_images[CONFIG_ALLOW_IMAGES_BYTES];
        size_t n_allow_images;          /* 0 with allow_images_set: none ("allow-images = none") */
        bool allow_net_host;            /* may clients other than root use --net host? */
        uint64_t allow_cap_add;         /* capabilities clients other than root may add to the default set
                                         * (a mask as in spec.h; 0: none) */
        /* The daemon's own resources. Root is bound only by the totals. */
        unsigned max_connections;       /* client connections in all */
        unsigned max_connections_per_uid;
        uint64_t max_buffer_per_uid;    /* bytes held for one uid's connections: input not yet
                                         * decoded, output not yet sent */
        unsigned max_starts;            /* sandboxes being set up at once (worker threads) */
        unsigned max_starts_per_uid;    /* more wait their turn, in order */
        uint32_t min_published_port;    /* the lowest host port non-root clients may publish (1024) */
        NetConfig net;                  /* bridges, subnets, pool, egress, MTU, table, resolv.conf */
        unsigned pool_size;             /* sandboxes held ready in all; 0: no pool */
        unsigned pool_per_shape;        /* ... of one shape */
        uint64_t pool_memory;           /* bytes the held sandboxes may use together */
        uint64_t pool_idle_usec;        /* without a request this long, the pool ends what it holds */
        uint64_t pool_max_age_usec;     /* a held sandbox older than this is ended (and replaced) */
        PoolShapeConfig pool_shapes[CONFIG_POOL_SHAPES_MAX];
        size_t n_pool_shapes;
} DaemonConfig;

void config_init(DaemonConfig *c);

/* The I-th entry of allow-images (I < n_allow_images). */
const char *config_allow_image(const DaemonConfig *c, size_t i);

/* Load PATH over the defaults. A missing file is fine unless MUST_EXIST. On a bad line, -EINVAL and
 * a message "FILE:LINE: ..." in ERRBUF. */
int config_load(const char *path, bool must_exist, DaemonConfig *c, char *errbuf, size_t errsize);
/* The same for the SIZE bytes of TEXT (at most CONFIG_MAX_SIZE), named NAME in messages. */
int config_parse(const char *text, size_t size, const char *name, DaemonConfig *c, char *errbuf, size_t errsize);
