/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What to run and how: the one description of a sandbox that sandbox-run fills from its command
 * line, sandboxctl sends over the wire and the runtime executes. Every field is bounded so that a
 * spec from an untrusted peer can be checked with spec_validate() before anything acts on it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPEC_ARGS_MAX 4096
#define SPEC_ENV_MAX 1024
#define SPEC_LAYERS_MAX 64
#define SPEC_MOUNTS_MAX 64
#define SPEC_RLIMITS_MAX 16
#define SPEC_PUBLISH_MAX 32
#define SPEC_STRING_MAX 4096           /* PATH_MAX: any single path or argument */
#define SPEC_HOSTNAME_MAX 64           /* HOST_NAME_MAX */
#define SPEC_ARG_BYTES_MAX (1u << 20)  /* all of argv and env together */
#define SPEC_IMAGE_REF_MAX 1024        /* an image reference (docs/images.md: IMAGE_REF_INPUT_MAX) */
#define SPEC_USER_MAX 256              /* --user NAME[:GROUP] */
/* Where the image store is unless --store (sandbox-run) or store= (sandboxd) say otherwise; the image
 * library's IMAGE_STORE_DEFAULT (image/image.h), which test-image-spec checks this against. */
#define SPEC_IMAGE_STORE_DEFAULT "/var/lib/sandbox"

/* Bounds every sandbox gets when its spec leaves them at 0, through sandbox-run and sandboxd alike
 * (docs/limits.md has the table; sandboxd's caps for other users default to the same values).
 * SPEC_UNLIMITED asks for no bound at all (root only, through the daemon). */
#define SPEC_UNLIMITED UINT64_MAX
#define SPEC_DEFAULT_MEMORY (UINT64_C(2) << 30)        /* cgroup memory (swap capped to 0) */
#define SPEC_DEFAULT_PIDS UINT64_C(1024)               /* processes and threads */
#define SPEC_DEFAULT_DISK (UINT64_C(10) << 30)         /* bytes the sandbox adds to its upper */
#define SPEC_DEFAULT_DISK_INODES UINT64_C(1000000)     /* inodes it adds to its upper */
#define SPEC_DEFAULT_TMPFS (UINT64_C(512) << 20)       /* /tmp, /dev/shm and each --tmpfs */
#define SPEC_DEFAULT_NOFILE_SOFT UINT64_C(1024)        /* RLIMIT_NOFILE */
#define SPEC_DEFAULT_NOFILE_HARD UINT64_C(65536)
/* sandboxd only: the wall-clock limit of a sandbox of a client other than root (its max-timeout). An
 * hour: a typical compile-and-test job fits, and a forgotten sandbox holds its bounds (memory, pids,
 * a client slot) for at most that long. */
#define SPEC_DEFAULT_CLIENT_TIMEOUT_USEC (UINT64_C(3600) * 1000000)

/* Capabilities, as in <linux/capability.h>: bit N of a mask is capability N. SPEC_CAP_LAST is the last
 * one this code names (CAP_CHECKPOINT_RESTORE, Linux 5.9). They act inside the sandbox's user
 * namespace only (docs/security.md, "Capabilities"). */
#define SPEC_CAP_LAST 40
#define SPEC_CAPS_ALL ((UINT64_C(1) << (SPEC_CAP_LAST + 1)) - 1)
#define SPEC_CAP(n) (UINT64_C(1) << (n))
/* podman's default set: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
 * NET_BIND_SERVICE, SYS_CHROOT, SETFCAP. */
#define SPEC_CAPS_DEFAULT                                                                         \
        (SPEC_CAP(0) | SPEC_CAP(1) | SPEC_CAP(3) | SPEC_CAP(4) | SPEC_CAP(5) | SPEC_CAP(6) |      \
         SPEC_CAP(7) | SPEC_CAP(8) | SPEC_CAP(10) | SPEC_CAP(18) | SPEC_CAP(31))

typedef enum SpecNet {
        SPEC_NET_NONE,          /* an empty network namespace with lo up */
        SPEC_NET_BRIDGE,
        SPEC_NET_ISOLATED,
        SPEC_NET_HOST,
        _SPEC_NET_MAX,
} SpecNet;

typedef struct SpecBind {
        char *source;           /* host path; with a descriptor (by_fd), only named in messages */
        char *dest;             /* absolute path inside the sandbox */
        bool readonly;
        bool idmap;             /* an idmapped mount: what root inside writes belongs to the source's
                                 * owner and group, not to the sandbox's host ids (--bind SRC:DST:idmap) */
        bool by_fd;             /* the source comes as a descriptor (SandboxSpec.bind_fds): a daemon
                                 * client opened it with its own credentials; nobody resolves `source` */
        bool volume;            /* with by_fd: the descriptor is a volume's file system image, which the
                                 * runtime mounts (runtime/volume.c); set by sandboxd only, never on the wire */
} SpecBind;

typedef struct SpecTmpfs {
        char *dest;
        uint64_t size;          /* bytes; 0 = SPEC_DEFAULT_TMPFS, SPEC_UNLIMITED = the kernel's default */
} SpecTmpfs;

typedef struct SpecRlimit {
        int resource;           /* RLIMIT_* */
        uint64_t soft, hard;    /* UINT64_MAX = unlimited */
} SpecRlimit;

typedef struct SpecPublish {
        uint32_t proto;         /* IPPROTO_TCP or IPPROTO_UDP */
        uint32_t host_port;     /* 1..65535 */
        uint32_t port;          /* inside the sandbox, 1..65535 */
} SpecPublish;

typedef struct SandboxSpec {
        char **argv;            /* NULL-terminated, at least one element (none: with image_ref, the
                                 * image's Entrypoint and Cmd) */
        size_t n_argv;
        char **env;             /* K=V from the user, NULL-terminated */
        size_t n_env;

        char *image;            /* a directory; NULL: image_ref, or else the host's /usr with a generated
                                 * /etc */
        char *image_ref;        /* an image of the store (docs/images.md): NAME[:TAG][@DIGEST] or an image ID,
                                 * resolved by the runtime; never with image */
        char *entrypoint;       /* with image_ref: NULL = the image's Entrypoint and Cmd; else a program that
                                 * replaces both ("" = none) */
        char **layers;          /* more lower layers, topmost first */
        size_t n_layers;
        char *upper;            /* NULL: a fresh upper, discarded at exit */

        char *workdir;          /* NULL: "/" */
        uint32_t uid, gid;      /* inside the sandbox */
        char *user;             /* with image_ref: --user as given (NAME|UID[:GROUP|GID], names looked up in
                                 * the image's /etc/passwd and /etc/group); NULL: the image's User */
        char *hostname;         /* NULL: "sandbox" */
        bool tty;

        SpecBind *binds;
        size_t n_binds;
        const int *bind_fds;    /* NULL, or n_binds entries: the source of binds[i] as a descriptor
                                 * (-EBADF: resolve binds[i].source). Not owned by the spec, never
                                 * sent as such (the protocol passes descriptors beside the spec). */
        SpecTmpfs *tmpfs;
        size_t n_tmpfs;

        /* For these four: 0 = the default (SPEC_DEFAULT_*), SPEC_UNLIMITED = no bound. */
        uint64_t memory_max;    /* bytes */
        uint64_t pids_max;
        uint64_t disk_max;      /* bytes the sandbox may add to its upper (--disk) */
        uint64_t disk_inodes_max; /* inodes it may add (--disk SIZE,inodes=N) */
        uint32_t cpus_milli;    /* thousandths of a CPU, 0 = none */
        uint64_t timeout_usec;  /* wall clock, 0 = none */
        uint64_t cpu_time_usec; /* whole sandbox, 0 = none */
        SpecRlimit rlimits[SPEC_RLIMITS_MAX];
        size_t n_rlimits;

        char *seccomp;          /* NULL or "default", "unconfined", or a policy file */
        SpecNet net;
        SpecPublish publish[SPEC_PUBLISH_MAX];  /* -p: host ports forwarded to the sandbox */
        size_t n_publish;

        /* Capabilities (--cap-add, --cap-drop): bit N is capability N; SPEC_CAPS_ALL is "ALL". Both 0:
         * root inside gets SPEC_CAPS_DEFAULT. See spec_capabilities(). */
        uint64_t cap_add;
        uint64_t cap_drop;
} SandboxSpec;

void spec_done(SandboxSpec *spec);

/* Check every field (sizes, absolute paths, names, ranges). Returns -EINVAL and, if RET_ERROR is not
 * NULL, a static message naming the field. */
int spec_validate(const SandboxSpec *spec, const char **ret_error);

typedef enum SpecValidateFlags {
        SPEC_VALIDATE_NO_COMMAND = 1 << 0, /* a sandbox without a program of its own (sandboxctl create): no
                                            * command needed */
        SPEC_VALIDATE_EXEC_IN = 1 << 1,    /* a program for a sandbox that exists (exec --in): --user may name a
                                            * user without an image, the sandbox's /etc/passwd says who it is */
} SpecValidateFlags;

/* spec_validate() with FLAGS (SpecValidateFlags). */
int spec_validate_flags(const SandboxSpec *spec, unsigned flags, const char **ret_error);

/* Replace every 0 that means "the default" by the default's value (memory, pids, disk, inodes, tmpfs
 * sizes). SPEC_UNLIMITED stays. Idempotent. (RLIMIT_NOFILE's default is the runtime's: it depends on
 * the limit the runtime itself runs with.) */
void spec_apply_defaults(SandboxSpec *spec);

/* The capabilities the program gets as uid 0 inside (and the bounding set of any user): with
 * --cap-add ALL every capability but the dropped ones, else the default set without the dropped ones
 * and with the added ones. A program of another uid gets only what was added explicitly (as ambient
 * capabilities): spec_capabilities_added(). */
uint64_t spec_capabilities(const SandboxSpec *spec);
uint64_t spec_capabilities_added(const SandboxSpec *spec);

/* "CHOWN", "cap_chown", "Chown" → 0 (CAP_CHOWN); "ALL" is not a name (the parser handles it). */
int spec_cap_from_string(const char *name, int *ret_cap);
/* 0 → "CHOWN"; NULL beyond SPEC_CAP_LAST. */
const char *spec_cap_to_string(int cap);
/* "CHOWN,SETUID" into BUF (at most SIZE bytes, cut with "..." when longer); "none" for 0. */
void spec_caps_format(uint64_t caps, char *buf, size_t size);

const char *spec_net_to_string(SpecNet net);
int spec_net_from_string(const char *s, SpecNet *ret);

/* "nofile" → RLIMIT_NOFILE, and back. */
int spec_rlimit_from_string(const char *name, int *ret_resource);
const char *spec_rlimit_to_string(int resource);
/* Whether the resource's values are bytes (as, core, data, fsize, memlock, msgqueue, rss, stack). */
bool spec_rlimit_is_size(int resource);
/* The I-th known name, in alphabetical order; NULL past the last. */
const char *spec_rlimit_name_at(size_t i);
