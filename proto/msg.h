/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The typed messages of the sandboxctl <-> sandboxd protocol (docs/protocol.md is the reference):
 * their type codes, field tags and bounds, and for each an encoder (struct -> TLV payload in a
 * WireBuffer) and a decoder (WireFrame -> struct) that checks every field: exact integer sizes,
 * string bounds, no NUL in strings, ranges, no duplicate singular field, every required field present,
 * repeated fields bounded, unknown tags refused unless skippable, and the descriptors the type
 * carries. The EXEC decoder also runs spec_validate(). No I/O, no logging, no policy (who may run
 * what is decided by the daemon from the peer's credentials).
 *
 * Decoders: 0 on success, -EBADMSG for a malformed or out-of-range field, -EMSGSIZE for a field or a
 * count over its limit, -ENOMEM; -EINVAL from spec_validate() for an EXEC whose spec is invalid. On
 * failure, *ret_error (if RET_ERROR is not NULL) is a static message naming the problem, the output
 * is untouched and the frame keeps its descriptors (wire_frame_free() closes them). On success a
 * decoder moves the descriptors it returns out of the frame. Frames carrying descriptors their type
 * does not take are refused.
 *
 * Encoders reset the buffer, and fail with -EINVAL for a field out of its bounds (what the decoder
 * would refuse) and -EMSGSIZE if the payload would exceed WIRE_PAYLOAD_MAX.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "wire.h"

#define MSG_PROTOCOL_VERSION 5       /* the newest message-level version this code speaks */
#define MSG_PROTOCOL_VERSION_MIN 1   /* the oldest */
#define MSG_VERSION_STRING_MAX 64    /* client_version, daemon_version */
#define MSG_ID_LENGTH 16             /* sandbox ids: exactly 16 lowercase hex digits */
#define MSG_ERROR_MESSAGE_MAX 1024
#define MSG_COMMAND_MAX 4096         /* LIST_REPLY command */
#define MSG_LIST_ENTRIES_MAX 4096
#define MSG_SIGNAL_MAX 64            /* _NSIG - 1 */
#define MSG_STATUS_MAX 255           /* exit statuses */
#define MSG_NAME_MAX 63              /* a created sandbox's name: [A-Za-z0-9][A-Za-z0-9_.-]*, not an id */
#define MSG_TARGET_MAX 64            /* an id or a name */
#define MSG_IMAGE_MAX 4096           /* LIST_REPLY image: a reference, an image ID, a directory or "host" */
#define MSG_COPY_PATH_MAX 4096      /* COPY path: bytes with the NUL (PATH_MAX) */
#define MSG_SNAPSHOT_IMAGE_MAX 256   /* SNAPSHOT image: NAME[:TAG], bytes with the NUL */
#define MSG_REFERENCE_MAX 512        /* SNAPSHOT_REPLY reference: the store's canonical name, with the NUL */
#define MSG_DIGEST_MAX 72            /* "sha256:" + 64 lowercase hex, with the NUL */
#define MSG_VOLUME_NAME_MAX 64       /* a volume's name: [A-Za-z0-9][A-Za-z0-9_.-]* */
#define MSG_VOLUMES_MAX 8            /* volumes one sandbox mounts */
#define MSG_VOLUME_ENTRIES_MAX 4096  /* VOLUME_LIST_REPLY entries */
#define MSG_TTL_MAX_USEC (UINT64_C(365) * 24 * 3600 * 1000000) /* ttl, idle_ttl, a stop's grace: a year */

typedef enum MsgType {
        MSG_HELLO = 1,
        MSG_HELLO_REPLY = 2,
        MSG_EXEC = 3,
        MSG_STARTED = 4,
        MSG_SIGNAL = 5,
        MSG_RESIZE = 6,
        MSG_EXIT = 7,
        MSG_LIST = 8,
        MSG_LIST_REPLY = 9,
        MSG_KILL = 10,
        MSG_ERROR = 11,
        MSG_OK = 12,
        MSG_BIND_FDS = 13,      /* version 3 */
        MSG_CREATE = 14,        /* version 4 */
        MSG_CREATED = 15,       /* version 4 */
        MSG_STOP = 16,          /* version 4 */
        MSG_RM = 17,            /* version 4 */
        MSG_PAUSE = 18,         /* version 4 */
        MSG_RESUME = 19,        /* version 4 */
        MSG_COPY = 20,          /* version 4: a tar stream into or out of a created sandbox (sandboxctl cp) */
        MSG_SNAPSHOT = 21,      /* version 4: a created sandbox's changes as a new image of the store */
        MSG_SNAPSHOT_REPLY = 22, /* version 4 */
        MSG_VOLUME_CREATE = 23, /* version 5: a volume of the client's (sandboxctl volume create) */
        MSG_VOLUME_LIST = 24,   /* version 5 */
        MSG_VOLUME_LIST_REPLY = 25, /* version 5 */
        MSG_VOLUME_RM = 26,     /* version 5 */
        _MSG_TYPE_MAX,
        _MSG_TYPE_INVALID = -EINVAL,
} MsgType;

/* "HELLO", …; NULL for a type this protocol does not define. */
const char *msg_type_to_string(int type);

/* Field tags, per message (and per nested record). Tags at or above WIRE_TAG_SKIPPABLE are never
 * defined here: they are for optional extensions an older peer may ignore. */
enum {
        MSG_HELLO_MIN_VERSION = 1,      /* u32, required */
        MSG_HELLO_MAX_VERSION = 2,      /* u32, required, >= min_version */
        MSG_HELLO_CLIENT_VERSION = 3,   /* string <= 64, required */
};
enum {
        MSG_HELLO_REPLY_VERSION = 1,        /* u32, required */
        MSG_HELLO_REPLY_DAEMON_VERSION = 2, /* string <= 64, required */
};
enum {
        MSG_EXEC_ARGV = 1,              /* string, repeated 1..SPEC_ARGS_MAX (0.. with image_ref) */
        MSG_EXEC_ENV = 2,               /* string, repeated 0..SPEC_ENV_MAX */
        MSG_EXEC_IMAGE = 3,             /* string */
        MSG_EXEC_LAYER = 4,             /* string, repeated 0..SPEC_LAYERS_MAX */
        MSG_EXEC_UPPER = 5,             /* string */
        MSG_EXEC_WORKDIR = 6,           /* string */
        MSG_EXEC_UID = 7,               /* u32 */
        MSG_EXEC_GID = 8,               /* u32 */
        MSG_EXEC_HOSTNAME = 9,          /* string <= SPEC_HOSTNAME_MAX */
        MSG_EXEC_TTY = 10,              /* bool */
        MSG_EXEC_BIND = 11,             /* nested MSG_BIND_*, repeated 0..SPEC_MOUNTS_MAX */
        MSG_EXEC_TMPFS = 12,            /* nested MSG_TMPFS_*, repeated 0..SPEC_MOUNTS_MAX */
        MSG_EXEC_MEMORY_MAX = 13,       /* u64 */
        MSG_EXEC_PIDS_MAX = 14,         /* u64 */
        MSG_EXEC_CPUS_MILLI = 15,       /* u32 */
        MSG_EXEC_TIMEOUT_USEC = 16,     /* u64 */
        MSG_EXEC_CPU_TIME_USEC = 17,    /* u64 */
        MSG_EXEC_RLIMIT = 18,           /* nested MSG_RLIMIT_*, repeated 0..SPEC_RLIMITS_MAX */
        MSG_EXEC_SECCOMP = 19,          /* string */
        MSG_EXEC_NET = 20,              /* u32, a SpecNet */
        MSG_EXEC_PUBLISH = 21,          /* nested MSG_PUBLISH_*, repeated 0..SPEC_PUBLISH_MAX */
        MSG_EXEC_DISK_MAX = 22,         /* u64 (version 2) */
        MSG_EXEC_DISK_INODES_MAX = 23,  /* u64 (version 2) */
        MSG_EXEC_IMAGE_REF = 24,        /* string <= SPEC_IMAGE_REF_MAX (version 3) */
        MSG_EXEC_ENTRYPOINT = 25,       /* string, may be empty (version 3) */
        MSG_EXEC_USER = 26,             /* string < SPEC_USER_MAX (version 3) */
        MSG_EXEC_CAP_ADD = 27,          /* u64, a capability mask within SPEC_CAPS_ALL (version 3) */
        MSG_EXEC_CAP_DROP = 28,         /* u64, the same (version 3) */
        MSG_EXEC_IN = 29,               /* string, an id or a name: run in that created sandbox (version 4) */
        /* CREATE: tags 1..28 as EXEC's (but argv, tty, timeout_usec, cpu_time_usec), and these: */
        MSG_CREATE_NAME = 30,           /* string <= MSG_NAME_MAX (version 4) */
        MSG_CREATE_TTL_USEC = 31,       /* u64 <= MSG_TTL_MAX_USEC, 0: none (version 4) */
        MSG_CREATE_IDLE_TTL_USEC = 32,  /* u64 <= MSG_TTL_MAX_USEC, 0: none (version 4) */
        /* EXEC (without in) and CREATE: */
        MSG_EXEC_VOLUME = 33,           /* nested MSG_VOLUME_MOUNT_*, repeated 0..MSG_VOLUMES_MAX (version 5) */
};
enum {
        MSG_VOLUME_MOUNT_NAME = 1,      /* string, a volume name, required */
        MSG_VOLUME_MOUNT_DEST = 2,      /* string, absolute, no "..", not "/", required */
        MSG_VOLUME_MOUNT_READONLY = 3,  /* bool, default 0 */
};
enum {
        MSG_VOLUME_NAME = 1,            /* VOLUME_CREATE, VOLUME_RM: string, a volume name, required */
        MSG_VOLUME_SIZE = 2,            /* VOLUME_CREATE: u64 bytes, 0: the daemon's default */
        MSG_VOLUME_UID = 3,             /* VOLUME_RM (root only): u32, whose volume; absent: the client's */
};
enum {
        MSG_VOLUME_LIST_REPLY_ENTRY = 1, /* nested MSG_VOLUME_ENTRY_*, repeated 0..4096 */
};
enum {
        MSG_VOLUME_ENTRY_NAME = 1,      /* string, a volume name, required */
        MSG_VOLUME_ENTRY_UID = 2,       /* u32, whose it is, required */
        MSG_VOLUME_ENTRY_SIZE = 3,      /* u64, its quota in bytes, required */
        MSG_VOLUME_ENTRY_USED = 4,      /* u64, bytes its image takes on the host's disk */
        MSG_VOLUME_ENTRY_CREATED_USEC = 5, /* u64, CLOCK_REALTIME */
        MSG_VOLUME_ENTRY_IN_USE_BY = 6, /* string, the id of the sandbox that mounts it; absent: none */
};
enum {
        MSG_BIND_SOURCE = 1,            /* string, required */
        MSG_BIND_DEST = 2,              /* string, required */
        MSG_BIND_READONLY = 3,          /* bool, default 0 */
        MSG_BIND_IDMAP = 4,             /* bool, default 0 (version 3) */
        MSG_BIND_FD = 5,                /* bool, default 0: the source is the next descriptor of the
                                         * BIND_FDS frames before this EXEC (version 3) */
};
enum {
        MSG_TMPFS_DEST = 1,             /* string, required */
        MSG_TMPFS_SIZE = 2,             /* u64, default 0 */
};
enum {
        MSG_PUBLISH_PROTO = 1,          /* u32, required: 6 (tcp) or 17 (udp) */
        MSG_PUBLISH_HOST_PORT = 2,      /* u32, required, 1..65535 */
        MSG_PUBLISH_PORT = 3,           /* u32, required, 1..65535 */
};

enum {
        MSG_RLIMIT_RESOURCE = 1,        /* u32, required */
        MSG_RLIMIT_SOFT = 2,            /* u64, required */
        MSG_RLIMIT_HARD = 3,            /* u64, required */
};
enum {
        MSG_STARTED_ID = 1,             /* string, 16 lowercase hex, required */
        MSG_STARTED_PID = 2,            /* u32 >= 1, required */
};
enum {
        MSG_SIGNAL_SIGNAL = 1,          /* u32 1..64, required */
};
enum {
        MSG_RESIZE_ROWS = 1,            /* u32 1..65535, required */
        MSG_RESIZE_COLS = 2,            /* u32 1..65535, required */
};
enum {
        MSG_EXIT_STATUS = 1,            /* i32 0..255, required */
        MSG_EXIT_EXIT_CODE = 2,         /* i32 -1..255, required */
        MSG_EXIT_SIGNAL = 3,            /* i32 0..64, required */
        MSG_EXIT_LIMIT = 4,             /* u32 MsgLimit, required */
        MSG_EXIT_WALL_USEC = 5,         /* u64, required */
        MSG_EXIT_CPU_USEC = 6,          /* u64, required */
        MSG_EXIT_MEMORY_PEAK = 7,       /* u64, required */
        MSG_EXIT_PIDS_LIMIT_HIT = 8,    /* bool, default 0 (version 2) */
        MSG_EXIT_DISK_LIMIT_HIT = 9,    /* bool, default 0 (version 2) */
        MSG_EXIT_MAX_RSS = 10,          /* u64, default 0 (version 2) */
        MSG_EXIT_UNION_FAILED = 11,     /* bool, default 0 (version 2) */
};
enum {
        MSG_LIST_REPLY_ENTRY = 1,       /* nested MSG_ENTRY_*, repeated 0..4096 */
};
enum {
        MSG_ENTRY_ID = 1,               /* string, 16 lowercase hex, required */
        MSG_ENTRY_UID = 2,              /* u32, required */
        MSG_ENTRY_PID = 3,              /* u32 < 2^31; 0 (or absent): none, a stopped sandbox (version 4) */
        MSG_ENTRY_COMMAND = 4,          /* string <= 4096, required */
        MSG_ENTRY_STARTED_USEC = 5,     /* u64, required */
        MSG_ENTRY_NAME = 6,             /* string <= MSG_NAME_MAX (version 4) */
        MSG_ENTRY_KIND = 7,             /* u32 MsgKind (version 4) */
        MSG_ENTRY_STATE = 8,            /* u32 MsgState (version 4) */
        MSG_ENTRY_IMAGE = 9,            /* string <= MSG_IMAGE_MAX (version 4) */
        MSG_ENTRY_MEMORY_BYTES = 10,    /* u64: in use now (version 4) */
        MSG_ENTRY_MEMORY_MAX = 11,      /* u64: its bound, UINT64_MAX none (version 4) */
        MSG_ENTRY_CPU_USEC = 12,        /* u64: CPU time so far (version 4) */
        MSG_ENTRY_DISK_BYTES = 13,      /* u64: what it added to its upper (version 4) */
        MSG_ENTRY_DISK_MAX = 14,        /* u64: its bound, UINT64_MAX none (version 4) */
        MSG_ENTRY_EXECS = 15,           /* u32: exec --in programs running (version 4) */
        MSG_ENTRY_EXPIRES_USEC = 16,    /* u64: CLOCK_REALTIME end of its ttl, 0 none (version 4) */
        MSG_ENTRY_IDLE_TTL_USEC = 17,   /* u64: its idle ttl, 0 none (version 4) */
};
enum {
        MSG_CREATED_ID = 1,             /* string, 16 lowercase hex, required */
        MSG_CREATED_NAME = 2,           /* string <= MSG_NAME_MAX, default "" */
};
enum {
        MSG_TARGET_TARGET = 1,          /* string: an id or a name, required (STOP, RM, PAUSE, RESUME) */
        MSG_STOP_TIMEOUT_USEC = 2,      /* STOP: u64 <= MSG_TTL_MAX_USEC, SIGTERM to SIGKILL, default 10 s */
        MSG_RM_FORCE = 2,               /* RM: bool, end it if it runs */
};
enum {
        MSG_COPY_TARGET = 1,            /* string: an id or a name, required */
        MSG_COPY_PATH = 2,              /* string: absolute, < MSG_COPY_PATH_MAX bytes, required */
        MSG_COPY_DIRECTION = 3,         /* u32 MsgCopyDirection, required */
};
enum {
        MSG_SNAPSHOT_TARGET = 1,        /* string: an id or a name, required */
        MSG_SNAPSHOT_IMAGE = 2,         /* string: NAME[:TAG], < MSG_SNAPSHOT_IMAGE_MAX bytes, required */
};
enum {
        MSG_SNAPSHOT_REPLY_ID = 1,      /* string: the image ID, "sha256:" + 64 lowercase hex, required */
        MSG_SNAPSHOT_REPLY_REFERENCE = 2, /* string < MSG_REFERENCE_MAX: the store's name for it, required */
        MSG_SNAPSHOT_REPLY_LAYER_BYTES = 3, /* u64: file data of its new layer */
        MSG_SNAPSHOT_REPLY_PAUSE_USEC = 4,  /* u64: how long the sandbox's programs were frozen */
};
enum {
        MSG_KILL_ID = 1,                /* string, 16 lowercase hex, required */
        MSG_KILL_SIGNAL = 2,            /* u32 1..64, required */
};
enum {
        MSG_ERROR_STATUS = 1,           /* i32 1..255, required */
        MSG_ERROR_ERROR = 2,            /* i32 >= 0 (positive errno), default 0 */
        MSG_ERROR_MESSAGE = 3,          /* string <= 1024, default "" */
};

/* LIST_REPLY: what an entry is, and its state. */
typedef enum MsgKind {
        MSG_KIND_EXEC = 0,              /* a one-shot sandbox of EXEC, living as long as its connection */
        MSG_KIND_CREATED = 1,           /* made by CREATE */
        _MSG_KIND_MAX,
        _MSG_KIND_INVALID = -EINVAL,
} MsgKind;

typedef enum MsgState {
        MSG_STATE_RUNNING = 0,
        MSG_STATE_PAUSED = 1,
        MSG_STATE_STOPPING = 2,         /* stop or rm -f under way */
        MSG_STATE_STOPPED = 3,          /* nothing runs; its record stays until rm or its ttl */
        _MSG_STATE_MAX,
        _MSG_STATE_INVALID = -EINVAL,
} MsgState;

const char *msg_state_to_string(MsgState s);
const char *msg_kind_to_string(MsgKind k);

typedef enum MsgLimit {
        MSG_LIMIT_NONE = 0,
        MSG_LIMIT_TIMEOUT = 1,
        MSG_LIMIT_CPU_TIME = 2,
        MSG_LIMIT_MEMORY = 3,
        _MSG_LIMIT_MAX,
        _MSG_LIMIT_INVALID = -EINVAL,
} MsgLimit;

typedef struct MsgHello {
        uint32_t min_version, max_version;
        char client_version[MSG_VERSION_STRING_MAX + 1];
} MsgHello;

typedef struct MsgHelloReply {
        uint32_t version;
        char daemon_version[MSG_VERSION_STRING_MAX + 1];
} MsgHelloReply;

/* EXEC as received: the spec, and stdin/stdout/stderr (all -EBADF when spec.tty). With IN (version 4) the
 * program runs in that created sandbox, and the spec holds only argv, env, workdir, user, tty and
 * timeout_usec (user may then name a user without an image: the sandbox's /etc/passwd says who). */
/* --volume NAME:DEST[:ro] (version 5). */
typedef struct MsgVolumeMount {
        char name[MSG_VOLUME_NAME_MAX + 1];
        char *dest;
        bool readonly;
} MsgVolumeMount;

typedef struct MsgExec {
        SandboxSpec spec;
        int stdio[3];
        char in[MSG_TARGET_MAX + 1];    /* "" unless version 4's exec --in */
        MsgVolumeMount volumes[MSG_VOLUMES_MAX]; /* version 5, never with in */
        size_t n_volumes;
} MsgExec;

/* CREATE (version 4): a sandbox without a program of its own; no descriptors (bind sources come in
 * BIND_FDS before it). */
typedef struct MsgCreate {
        SandboxSpec spec;
        char name[MSG_NAME_MAX + 1];
        uint64_t ttl_usec;              /* 0: none (the daemon may cap it) */
        uint64_t idle_ttl_usec;         /* 0: none */
        MsgVolumeMount volumes[MSG_VOLUMES_MAX]; /* version 5 */
        size_t n_volumes;
} MsgCreate;

/* VOLUME_CREATE and VOLUME_RM (version 5): answered by OK or ERROR. */
typedef struct MsgVolume {
        char name[MSG_VOLUME_NAME_MAX + 1];
        uint64_t size;                  /* VOLUME_CREATE: bytes, 0: the daemon's default */
        uint32_t uid;                   /* VOLUME_RM: with has_uid, whose (root only) */
        bool has_uid;
} MsgVolume;

typedef struct MsgVolumeEntry {
        char name[MSG_VOLUME_NAME_MAX + 1];
        uint32_t uid;
        uint64_t size, used, created_usec;
        char in_use_by[MSG_ID_LENGTH + 1]; /* "": not in use */
} MsgVolumeEntry;

typedef struct MsgVolumeListReply {
        MsgVolumeEntry *entries;
        size_t n_entries;
} MsgVolumeListReply;

typedef struct MsgCreated {
        char id[MSG_ID_LENGTH + 1];
        char name[MSG_NAME_MAX + 1];
} MsgCreated;

/* PAUSE, RESUME (target only), STOP (and timeout_usec), RM (and force). */
typedef struct MsgTarget {
        char target[MSG_TARGET_MAX + 1];
        uint64_t timeout_usec;
        bool force;
} MsgTarget;

/* COPY (version 4): one descriptor, the client's end of a pipe: the tar stream is read from it (IN) or
 * written to it (OUT) by the sandbox's side, never by the daemon. The answer is OK once the copy is
 * complete, or ERROR. */
typedef enum MsgCopyDirection {
        MSG_COPY_OUT = 0,               /* PATH in the sandbox -> the stream */
        MSG_COPY_IN = 1,                /* the stream -> PATH in the sandbox */
        _MSG_COPY_DIRECTION_MAX,
        _MSG_COPY_DIRECTION_INVALID = -EINVAL,
} MsgCopyDirection;

typedef struct MsgCopy {
        char target[MSG_TARGET_MAX + 1];
        char path[MSG_COPY_PATH_MAX];
        uint32_t direction;             /* MsgCopyDirection */
        int fd;
} MsgCopy;

/* SNAPSHOT (version 4): the target's changes become image IMAGE (NAME[:TAG]: printable ASCII without spaces;
 * the daemon checks it is a reference). Answered by SNAPSHOT_REPLY or ERROR. */
typedef struct MsgSnapshot {
        char target[MSG_TARGET_MAX + 1];
        char image[MSG_SNAPSHOT_IMAGE_MAX];
} MsgSnapshot;

typedef struct MsgSnapshotReply {
        char id[MSG_DIGEST_MAX];
        char reference[MSG_REFERENCE_MAX];
        uint64_t layer_bytes;
        uint64_t pause_usec;
} MsgSnapshotReply;

typedef struct MsgStarted {
        char id[MSG_ID_LENGTH + 1];
        uint32_t pid;
        int pty_fd;             /* the pty master when the sandbox has a tty, else -EBADF */
} MsgStarted;

typedef struct MsgSignal {
        uint32_t signal;
} MsgSignal;

typedef struct MsgResize {
        uint32_t rows, cols;
} MsgResize;

typedef struct MsgExit {
        int32_t status;         /* what the client exits with */
        int32_t exit_code;      /* the command's exit code, -1 if it was killed */
        int32_t signal;         /* the signal that killed it, 0 if none */
        MsgLimit limit;         /* the limit that ended it, if any */
        uint64_t wall_usec, cpu_usec, memory_peak;
        /* Version 2; a daemon leaves them out (0) for a version-1 client. */
        bool pids_limit_hit;    /* a fork or clone failed at the pids bound */
        bool disk_limit_hit;    /* a write was refused at the disk bound */
        uint64_t max_rss;       /* bytes: the largest resident set of one of the program's processes */
        bool union_failed;      /* the sandbox's file system server ended while it ran: it was stopped */
} MsgExit;

typedef struct MsgListEntry {
        char id[MSG_ID_LENGTH + 1];
        uint32_t uid;           /* who started it (the peer's uid) */
        uint32_t pid;           /* the sandbox init's host pid; 0: none (stopped) */
        char *command;          /* argv[0] ("" for a created sandbox) */
        uint64_t started_usec;  /* CLOCK_REALTIME */
        /* Version 4; a daemon leaves them out for older clients. */
        char name[MSG_NAME_MAX + 1];
        MsgKind kind;
        MsgState state;
        char *image;            /* NULL: not said */
        uint64_t memory_bytes, memory_max, cpu_usec, disk_bytes, disk_max;
        uint32_t execs;
        uint64_t expires_usec, idle_ttl_usec;
} MsgListEntry;

typedef struct MsgListReply {
        MsgListEntry *entries;
        size_t n_entries;
} MsgListReply;

typedef struct MsgKill {
        char id[MSG_ID_LENGTH + 1];
        uint32_t signal;
} MsgKill;

/* BIND_FDS as received: 1..WIRE_FDS_MAX descriptors, bind sources for the EXEC that follows. */
typedef struct MsgBindFds {
        int fds[WIRE_FDS_MAX];
        size_t n_fds;
} MsgBindFds;

typedef struct MsgError {
        int32_t status;         /* exit status for the client: 125 (daemon/setup), 126, 127 */
        int32_t error;          /* positive errno, 0 if none */
        char message[MSG_ERROR_MESSAGE_MAX + 1];
} MsgError;

/* The version both sides speak: the highest in [min, max] ∩ [MSG_PROTOCOL_VERSION_MIN,
 * MSG_PROTOCOL_VERSION]; -EPROTONOSUPPORT if there is none. */
int msg_hello_negotiate(const MsgHello *m, uint32_t *ret_version);

/* A sandbox id: exactly MSG_ID_LENGTH lowercase hex digits. */
bool msg_id_is_valid(const char *id);
/* A name for a created sandbox: 1..MSG_NAME_MAX of [A-Za-z0-9_.-], starting with a letter or digit, and
 * not an id (so that an id or a name always says which one it is). */
bool msg_name_is_valid(const char *name);
/* An id or a name. */
bool msg_target_is_valid(const char *target);

int msg_hello_encode(const MsgHello *m, WireBuffer *b);
int msg_hello_decode(WireFrame *f, MsgHello *ret, const char **ret_error);

int msg_hello_reply_encode(const MsgHelloReply *m, WireBuffer *b);
int msg_hello_reply_decode(WireFrame *f, MsgHelloReply *ret, const char **ret_error);

/* The spec's own bounds are checked by the decoder (spec_validate()), not by the encoder. The caller
 * sends 3 descriptors (stdin, stdout, stderr) with the frame unless spec->tty. */
int msg_exec_encode(const SandboxSpec *spec, WireBuffer *b);
/* EXEC with IN (an id or a name): a program for that created sandbox (version 4). */
int msg_exec_in_encode(const SandboxSpec *spec, const char *in, WireBuffer *b);
int msg_exec_decode(WireFrame *f, MsgExec *ret, const char **ret_error);
/* Frees the spec and closes the descriptors. */
void msg_exec_done(MsgExec *m);

/* The pty master, if any, is sent as the frame's one descriptor. */
int msg_started_encode(const MsgStarted *m, WireBuffer *b);
int msg_started_decode(WireFrame *f, MsgStarted *ret, const char **ret_error);
void msg_started_done(MsgStarted *m);

int msg_signal_encode(const MsgSignal *m, WireBuffer *b);
int msg_signal_decode(WireFrame *f, MsgSignal *ret, const char **ret_error);

int msg_resize_encode(const MsgResize *m, WireBuffer *b);
int msg_resize_decode(WireFrame *f, MsgResize *ret, const char **ret_error);

int msg_exit_encode(const MsgExit *m, WireBuffer *b);
int msg_exit_decode(WireFrame *f, MsgExit *ret, const char **ret_error);

/* LIST and OK have no fields: encoding gives an empty payload, decoding checks that every field is
 * skippable and that no descriptor came. */
int msg_empty_encode(WireBuffer *b);
int msg_list_decode(WireFrame *f, const char **ret_error);
int msg_ok_decode(WireFrame *f, const char **ret_error);

int msg_list_reply_encode(const MsgListReply *m, WireBuffer *b);
/* For a client of protocol VERSION: before 4, only the first five fields of each entry, and every entry
 * must have a pid (-EINVAL). */
int msg_list_reply_encode_version(const MsgListReply *m, uint32_t version, WireBuffer *b);
int msg_list_reply_decode(WireFrame *f, MsgListReply *ret, const char **ret_error);
void msg_list_reply_done(MsgListReply *m);

int msg_kill_encode(const MsgKill *m, WireBuffer *b);
int msg_kill_decode(WireFrame *f, MsgKill *ret, const char **ret_error);

/* CREATE: the spec as EXEC's (no command, tty or time limit), checked with spec_validate_flags(
 * SPEC_VALIDATE_NO_COMMAND). */
int msg_create_encode(const MsgCreate *m, WireBuffer *b);
int msg_create_decode(WireFrame *f, MsgCreate *ret, const char **ret_error);
void msg_create_done(MsgCreate *m);

int msg_created_encode(const MsgCreated *m, WireBuffer *b);
int msg_created_decode(WireFrame *f, MsgCreated *ret, const char **ret_error);

/* STOP, RM, PAUSE, RESUME: TYPE says which (their fields differ: see MsgTarget). */
int msg_target_encode(MsgType type, const MsgTarget *m, WireBuffer *b);
int msg_target_decode(WireFrame *f, MsgTarget *ret, const char **ret_error);

/* COPY: exactly one descriptor; the path absolute, without NUL, shorter than MSG_COPY_PATH_MAX. The decoder
 * moves the descriptor into ret->fd (msg_copy_done() closes it); the encoder takes no descriptor (the
 * sender attaches it). */
int msg_copy_encode(const MsgCopy *m, WireBuffer *b);
int msg_copy_decode(WireFrame *f, MsgCopy *ret, const char **ret_error);
void msg_copy_done(MsgCopy *m);
/* SNAPSHOT: image non-empty, printable ASCII without spaces. SNAPSHOT_REPLY: id "sha256:" + 64 lowercase hex,
 * reference non-empty printable ASCII without spaces. */
int msg_snapshot_encode(const MsgSnapshot *m, WireBuffer *b);
int msg_snapshot_decode(WireFrame *f, MsgSnapshot *ret, const char **ret_error);
int msg_snapshot_reply_encode(const MsgSnapshotReply *m, WireBuffer *b);
int msg_snapshot_reply_decode(WireFrame *f, MsgSnapshotReply *ret, const char **ret_error);

/* The spec's fields (EXEC's tags) alone, for records kept outside a frame (the runtime's state files):
 * encoded into B, decoded from SIZE bytes at DATA and checked with spec_validate_flags(FLAGS). */
int msg_spec_encode(const SandboxSpec *spec, WireBuffer *b);
int msg_spec_decode(const void *data, size_t size, unsigned flags, SandboxSpec *ret, const char **ret_error);

/* BIND_FDS has no fields (msg_empty_encode()); the sender attaches 1..3 descriptors. */
int msg_bind_fds_decode(WireFrame *f, MsgBindFds *ret, const char **ret_error);
/* Closes the descriptors still held. */
void msg_bind_fds_done(MsgBindFds *m);

/* A volume's name: 1..MSG_VOLUME_NAME_MAX of [A-Za-z0-9_.-], starting with a letter or digit. */
bool msg_volume_name_is_valid(const char *name);
/* Where a volume goes: absolute, no "." or ".." component, not "/", shorter than SPEC_STRING_MAX. */
bool msg_volume_dest_is_valid(const char *dest);
/* EXEC (without in): appends N volume mounts to B, which holds an encoded EXEC (version 5). */
int msg_exec_encode_volumes(const MsgVolumeMount *v, size_t n, WireBuffer *b);
void msg_volume_mounts_done(MsgVolumeMount *v, size_t *n);

int msg_volume_encode(MsgType type, const MsgVolume *m, WireBuffer *b);
int msg_volume_decode(WireFrame *f, MsgVolume *ret, const char **ret_error);
int msg_volume_list_decode(WireFrame *f, const char **ret_error);
int msg_volume_list_reply_encode(const MsgVolumeListReply *m, WireBuffer *b);
int msg_volume_list_reply_decode(WireFrame *f, MsgVolumeListReply *ret, const char **ret_error);
void msg_volume_list_reply_done(MsgVolumeListReply *m);

int msg_error_encode(const MsgError *m, WireBuffer *b);
int msg_error_decode(WireFrame *f, MsgError *ret, const char **ret_error);
