/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Internals shared by the runtime's modules: what the parent prepares for the child, and the
 * messages the child sends back over the status socket.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "filter.h"
#include "macro.h"
#include "spec.h"

#define SANDBOX_IDS_PER_RANGE 65536u

/* Steps of the child's set-up, named in error messages. */
typedef enum ChildStep {
        STEP_SYNC,
        STEP_IDS,
        STEP_CGROUP_NS,
        STEP_HOSTNAME,
        STEP_PROPAGATION,
        STEP_ROOT,
        STEP_USR,
        STEP_PROC,
        STEP_DEV,
        STEP_SYS,
        STEP_TMP,
        STEP_RESOLV,
        STEP_BIND,
        STEP_TMPFS,
        STEP_PIVOT,
        STEP_LOOPBACK,
        STEP_PTY,
        STEP_FORK,
        STEP_OOM_SCORE,
        STEP_USER,
        STEP_CAPS,
        STEP_WORKDIR,
        STEP_SECCOMP,
        STEP_SESSION,
        STEP_JOIN,              /* sandbox_exec(): join the sandbox's namespaces */
        STEP_LOOKUP_USER,       /* sandbox_exec(): the user's name in the sandbox's /etc/passwd */
        _STEP_MAX,
} ChildStep;

const char *child_step_to_string(ChildStep step);

typedef enum ChildMessageType {
        CHILD_SETUP_FAILED = 1, /* step, error */
        CHILD_EXEC_FAILED,      /* error */
        CHILD_STARTED,          /* with the pty master attached when there is a tty */
        CHILD_EXITED,           /* status (as from waitpid) */
        CHILD_CREATED,          /* sandbox_create(): all set up, the program waits for a go (with the pty master
                                 * attached when there is a tty) */
} ChildMessageType;

typedef struct ChildMessage {
        uint32_t type;
        int32_t step;
        int32_t error;          /* positive errno */
        int32_t status;
        int32_t detail;         /* index of the --bind or --tmpfs that failed */
        uint64_t max_rss;       /* CHILD_EXITED: bytes, the largest resident set of the program's processes
                                 * the init reaped (getrusage(RUSAGE_CHILDREN)) */
} ChildMessage;

/* What the parent may send the init once the program runs (one byte on the status socket). */
#define CHILD_REQUEST_KILL 'k'  /* a limit was hit: SIGKILL every process of the sandbox but the init, which
                                 * then reports the program's end (and its accounting) as usual */
#define CHILD_REQUEST_DETACH 'd' /* an idle init outlives its creator from now on: no parent-death signal,
                                  * and the end of the status socket is no longer its end */

typedef struct ChildBind {
        int tree_fd;            /* a detached mount (open_tree) made by the parent */
        bool is_dir;
        const char *dest;
} ChildBind;

/* How a program is set up in its process, after fork (the init's child) or clone (sandbox_exec()'s):
 * one code path for both (program_run()). Everything is prepared before the fork; the process only reads
 * it. */
typedef struct ProgramContext {
        char *const *argv;
        char *const *envp;      /* the whole environment */
        uint32_t uid, gid;      /* inside the sandbox */
        const char *workdir;    /* NULL: / */
        const FilterProgram *filter; /* NULL: unconfined */
        const FilterProgram *engine_filter; /* SandboxConfig.engine_filter, after FILTER; NULL: none */
        const char *oom_score_adj; /* NULL: PROGRAM_OOM_SCORE_ADJ */
        const uint32_t *groups; /* supplementary groups (SandboxConfig.groups); n_groups 0: none */
        size_t n_groups;
        uint64_t cap_bounding;  /* the program's capabilities: at most these, ever */
        uint64_t cap_permitted; /* permitted and effective after the id change (uid 0: the whole set) */
        uint64_t cap_ambient;   /* inheritable and ambient (another uid: what --cap-add gave it) */
        const int *stdio;       /* NULL: 0, 1 and 2 are the program's already */
        int pty_master;         /* -EBADF: no terminal; else its peer becomes stdio and controlling tty */
        bool new_session;       /* a session of its own also without a terminal */
} ProgramContext;

/* spawn.c: the program's own set-up (signals, terminal, OOM score, bounding set, ids, capabilities,
 * no_new_privs, working directory, fds, seccomp last) and execve(). A failure before execve() is
 * reported as an ExecReport on REPORT_FD (a CLOEXEC pipe: a successful exec closes it). GATE_FD >= 0: a
 * byte must come there before the program may execute (EOF: _exit). Never returns. */
_Noreturn void program_run(const ProgramContext *p, int report_fd, int gate_fd);

/* What the program's process reports before execve(): (step, errno); step -1: execve() itself failed. */
typedef struct ExecReport {
        int32_t step;
        int32_t error;
} ExecReport;

/* Everything the child needs, prepared by the parent before clone(): the child only reads it. */
/* A program given after its sandbox was made (SANDBOX_START_DEFERRED): the parent writes it into this
 * mapping (MAP_SHARED, made before the clone) just before the init's go; the init reads it only after the
 * go. The pointers point into DATA, which has the same address on both sides. */
#define DEFERRED_DATA_MAX (SPEC_ARG_BYTES_MAX + 8192u)
typedef struct DeferredProgram {
        char *argv[SPEC_ARGS_MAX + 1];
        char *envp[SPEC_ENV_MAX + 8];   /* the spec's entries and the defaults (PATH, HOME, TERM) */
        char *workdir;                  /* NULL: "/" */
        bool idle;                      /* no program: the init becomes an idle one (sandbox_go_idle()) */
        char data[DEFERRED_DATA_MAX];
} DeferredProgram;

typedef struct ChildContext {
        const SandboxSpec *spec;
        int status_fd;          /* SOCK_SEQPACKET to the parent */
        int stdio[3];
        const char *root_path;  /* where the union is attached inside the child's mount namespace */
        int union_fd;           /* the union, a detached mount */
        int usr_fd;             /* the host's /usr, read-only and detached; -EBADF with --image DIR */
        int resolv_fd;          /* the sandbox's /etc/resolv.conf, a detached mount; -EBADF: none */
        bool workdir_create;    /* the working directory is an image's WorkingDir: made if it is missing */
        ChildBind *binds;
        const FilterProgram *filter;
        const FilterProgram *engine_filter; /* SandboxConfig.engine_filter */
        const char *oom_score_adj; /* SandboxConfig.oom_score_adj; NULL: PROGRAM_OOM_SCORE_ADJ */
        const uint32_t *groups; /* SandboxConfig.groups */
        size_t n_groups;
        char **envp;            /* the program's whole environment */
        const char *hostname;   /* NULL: keep the UTS namespace's (a joined one) */
        bool ipc_joined;        /* a joined IPC namespace (SandboxJoin): no mqueue mount of ours */
        bool net_host;          /* --net host: the host's network namespace (no lo to bring up, no /sys) */
        uint64_t cap_bounding;  /* the program's capabilities: at most these, ever */
        uint64_t cap_permitted; /* permitted and effective after the id change (uid 0: the whole set) */
        uint64_t cap_ambient;   /* inheritable and ambient (another uid: what --cap-add gave it) */
        bool idle;              /* no program: the init waits and reaps (programs come through sandbox_exec()) */
        const DeferredProgram *deferred; /* SANDBOX_START_DEFERRED: the program, its stdio with the go */
        bool hold;              /* sandbox_create(): say CHILD_CREATED and wait for one more go before the program */
        int program_umask;      /* sandbox_create(): the program's umask; -1: ours */
} ChildContext;

/* spawn.c: the child's side. Never returns. */
_Noreturn void child_run(const ChildContext *c);

/* spawn.c: set-id system calls for a process that is a copy of one thread of a threaded parent (glibc's
 * wrappers would signal threads that are not there), and fd set-up. Async-signal-safe. */
int raw_setresuid(uid_t uid);
int raw_setresgid(gid_t gid);
/* Close every fd from 3 up but the KEEP[0..N) (negative entries ignored). */
int close_all_fds_but(int *keep, size_t n);

/* mount.c */
int mount_detached_tree(const char *path, bool readonly, bool *ret_is_dir, int *ret_fd);
/* A detached, recursive, nosuid,nodev (and read-only) copy of PATH beneath DIRFD, or of DIRFD itself when
 * PATH is NULL. IDMAP_USERNS_FD >= 0: idmapped through that user namespace (userns_make_idmapping());
 * -EOPNOTSUPP when the file system (or a mount below it) cannot be idmapped. -EINVAL: not a directory,
 * file or character device (or, from open_tree(), a descriptor of another mount namespace). */
int mount_detached_tree_at(int dirfd, const char *path, bool readonly, int idmap_userns_fd, bool *ret_is_dir,
                           int *ret_fd);
/* The file system type of FD's mount as /proc/self/mountinfo names it ("ext4", "fuse.sshfs"). */
int mount_fstype(int fd, char *buf, size_t size);
int mount_attach_tree(int tree_fd, int root_fd, const char *dest, bool is_dir);
int mount_union_fd(int fuse_fd, const char *sandbox_id, int *ret_fd);
int mount_union_bound_dirty(int union_fd, uint64_t bytes);
int mount_proc(int root_fd);
/* SHM_SIZE: of /dev/shm, as for mount_tmpfs_at(). */
int mount_dev(int root_fd, uint64_t shm_size, bool mqueue);
int mount_sys(int root_fd);
/* SIZE: bytes, SPEC_UNLIMITED for the kernel's default. */
int mount_tmpfs_at(int root_fd, const char *dest, uint64_t size, const char *mode);
int mount_pivot_root(const char *root_path);
int make_dir_in_root(int root_fd, const char *path, bool is_dir, int *ret_fd);

/* image.c: the generated host image (see image.c and docs/security.md, "The host image"). */
#define IMAGE_DEFAULT_HOSTNAME "sandbox"
/* The shared host image for the host /etc ETC_FD, found in or built into IMAGES_FD (a directory of
 * root's that nobody else may write): *ret_name is its name there, and *ret_lock_fd holds it (a shared
 * flock) until closed, so no clean-up removes it while a sandbox uses it. On failure WHY may say what
 * bound the host's /etc exceeded. From a process's second call on, ETC_FD's key is cached while inotify
 * reports no change (image.c). Thread-safe; a caller's lock around it comes before image.c's own. */
int image_host_acquire(int images_fd, int etc_fd, char **ret_name, int *ret_lock_fd, char *why, size_t why_size);
/* For the unit tests: how many walks of the host's /etc this process made to compute a key (the key cache
 * saves the others); forget the cache, as in a new process, and make inotify_init1() (INIT_ERROR) or
 * inotify_add_watch() (WATCH_ERROR) fail with that -errno (0: not); set how old a key may get. */
unsigned image_host_walks_for_test(void);
void image_host_cache_reset_for_test(int init_error, int watch_error);
void image_host_cache_max_age_for_test(uint64_t usec);
/* NAME in DIRFD: a layer for above the host image with etc/hostname and etc/hosts for HOSTNAME. */
int image_make_hostname_layer(int dirfd, const char *name, const char *hostname);

/* image-run.c: --image NAME, an image of the store (see image-run.c). */
typedef struct ImageRun ImageRun;
typedef struct OciConfig OciConfig;
/* Look SPEC->image_ref up in the store at STORE_PATH (NULL: the default), pin its layers until
 * image_run_free(), and resolve its config against SPEC. NEED_COMMAND: neither SPEC nor the image giving a
 * command is an error. On failure ERR says what and why. */
int image_run_prepare(const char *store_path, const SandboxSpec *spec, bool need_command, ImageRun **ret, char *err,
                      size_t errlen);
ImageRun *image_run_free(ImageRun *r);
/* Release the pin early (the sandbox is gone); the rest stays until image_run_free(). */
void image_run_unpin(ImageRun *r);
/* The descriptor that holds the pin, -EBADF without one. */
int image_run_pin_fd(const ImageRun *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageRun *, image_run_free);
/* Point SPEC's argv, env, workdir, uid and gid at what the image resolved to (IR keeps them). */
void image_run_apply(const ImageRun *ir, SandboxSpec *spec);
/* The image's layer directories, topmost first. */
char *const *image_run_layers(const ImageRun *ir, size_t *ret_n);
bool image_run_workdir_from_image(const ImageRun *ir);
const char *image_run_id(const ImageRun *ir);
/* The merge of image config CFG under SPEC (argv, env, workdir: see image-run.c) into IR; HOME: the user's
 * home directory in the image ("" or NULL: unknown). For the unit tests. */
int image_run_merge(const SandboxSpec *spec, const OciConfig *cfg, const char *home, ImageRun *ir, char *err,
                    size_t errlen);
ImageRun *image_run_new(void);
char *const *image_run_argv(const ImageRun *ir, size_t *ret_n);
char *const *image_run_env(const ImageRun *ir, size_t *ret_n);
const char *image_run_workdir(const ImageRun *ir);
/* userns.c: a user namespace whose maps are FROM_UID -> TO_UID and FROM_GID -> TO_GID (one id each, host
 * ids both): as the idmapping of an idmapped mount, files of FROM_UID:FROM_GID on disk show as
 * TO_UID:TO_GID, and what TO_UID:TO_GID creates is FROM_UID:FROM_GID on disk; every other id is unmapped
 * (shown as the overflow id, and cannot create). The caller must be host root. *ret_fd: its
 * /proc/PID/ns/user. */
int userns_make_idmapping(uid_t from_uid, gid_t from_gid, uid_t to_uid, gid_t to_gid, int *ret_fd);
/* The same for COUNT ids from 0: on-disk 0..COUNT-1 show as TO_UID.. and TO_GID.. (a volume's mapping). */
int userns_make_range(uid_t to_uid, gid_t to_gid, unsigned count, int *ret_fd);

/* volume.c: the ext4 file system in the regular file IMAGE_FD (a volume of sandboxd) as a detached mount
 * (*ret_fd) on a loop device of its own (or the one a mount of it still uses), nosuid, nodev, read-only
 * if READONLY, idmapped so that on-disk ids 0..65535 are HOST_FIRST.. (the sandbox's range). Host root. */
int volume_mount_image(int image_fd, bool readonly, uid_t host_first, gid_t host_first_gid, int *ret_fd);

/* idpool.c: a 65536-id host range per live sandbox, held by a lock that dies with the process. */
#define IDPOOL_LOCK_DIR "/run/sandbox-ids"

/* The program's processes (and the init, where it cannot be shielded) are the OOM killer's first
 * choice, before the union's server in the same cgroup and before host processes (docs/cgroups.md). */
#define PROGRAM_OOM_SCORE_ADJ "1000"
int idpool_acquire(const char *lock_dir, uint32_t base, uint32_t ranges, uint32_t *ret_first, int *ret_lock_fd);
