/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The cgroup backends (see cgroup.h and docs/cgroups.md): one cgroup per sandbox, created below our
 * own cgroup, limited, attached, accounted, killed and removed; v2 (one directory) and v1 (one
 * directory per hierarchy: memory, pids, cpu, cpuacct, freezer). With CgroupLimits.split the sandbox's
 * cgroup keeps the whole sandbox's limits and gets two children, "program" (the init and everything it
 * starts: what kill acts on) and "union" (the union's server: charged to the sandbox, never frozen).
 * What differs between v1 and v2 is one table of operations (CgroupOps); the public functions only
 * dispatch.
 *
 * Runs in the parent. Needs root, or ownership of a delegated subtree. Every access goes through
 * an O_PATH fd of the hierarchy root and *at() calls beneath it (open_beneath: no symlinks, no
 * "..") and every fd is O_CLOEXEC. The only directories this file creates or removes are the
 * sandbox cgroups and their two children, the supervisor leaf of cgroup_v2_prepare_delegated(), and
 * the levels of an engine's cgroupsPath that cgroup_v2_set_parent() makes; the only writes to a cgroup
 * we did not create are those two functions': to our own delegated cgroup, and cgroup.subtree_control
 * along the path an engine named.
 *
 * Library code: returns -errno, logs at debug level at most, writes ret_* only on success. Not
 * done here: cgroups the sandbox makes itself (it is never given its cgroup to manage, so it cannot
 * make any; one would make removal fail with -EBUSY).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "fs.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "time-util.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"
#define CGROUP_DEFAULT_PERIOD_US UINT64_C(100000)
#define CGROUP_SUPERVISOR_LEAF "supervisor"
/* Bounds: how long removal waits for members to go away, freezing may take, rmdir retries EBUSY. */
#define CGROUP_EMPTY_TIMEOUT_USEC (5 * UINT64_C(1000000))
#define CGROUP_FREEZE_TIMEOUT_USEC (2 * UINT64_C(1000000))
#define CGROUP_KILL_LOOP_TIMEOUT_USEC (1 * UINT64_C(1000000))
#define CGROUP_RMDIR_RETRY_USEC (1 * UINT64_C(1000000))
/* The small kernel files we parse (cpu.stat, memory.events, memory.oom_control, ...). */
#define CGROUP_STAT_FILE_MAX 4096

typedef enum CgroupController {
        CGROUP_MEMORY,
        CGROUP_PIDS,
        CGROUP_CPU,
        CGROUP_CPUACCT,
        CGROUP_FREEZER,
        CGROUP_CPUSET,  /* only with CgroupLimits.cpuset_io's cpus or mems */
        CGROUP_BLKIO,   /* only with CgroupLimits.cpuset_io's io bounds */
        _CGROUP_CONTROLLER_MAX,
} CgroupController;

static const char *const controller_names[_CGROUP_CONTROLLER_MAX] = {
        [CGROUP_MEMORY] = "memory",
        [CGROUP_PIDS] = "pids",
        [CGROUP_CPU] = "cpu",
        [CGROUP_CPUACCT] = "cpuacct",
        [CGROUP_FREEZER] = "freezer",
        [CGROUP_CPUSET] = "cpuset",
        [CGROUP_BLKIO] = "blkio",
};

static const char *const child_names[_CGROUP_CHILD_MAX] = {
        [CGROUP_CHILD_PROGRAM] = "program",
        [CGROUP_CHILD_UNION] = "union",
};

/* One directory we created: on v2 the only one of a node, on v1 one per distinct hierarchy. */
typedef struct CgroupDir {
        char *hierarchy; /* "" on v2; the hierarchy directory's name on v1 ("memory", "cpu,cpuacct") */
        int parent_fd;   /* O_PATH|O_DIRECTORY of the parent cgroup */
        int fd;          /* O_PATH|O_DIRECTORY of our cgroup; -EBADF once removed */
        bool borrowed;   /* parent_fd is the sandbox's own fd (a child's dir): not ours to close */
} CgroupDir;

/* One cgroup of ours: the sandbox's, or one of its children. */
typedef struct CgroupNode {
        const char *name;                       /* the directory's name in each hierarchy */
        CgroupDir dirs[_CGROUP_CONTROLLER_MAX]; /* in creation order; v2 uses dirs[0] */
        size_t n_dirs;
        int index[_CGROUP_CONTROLLER_MAX];      /* v1: controller → dirs[] index, -1 if none */
} CgroupNode;

typedef struct CgroupOps CgroupOps;

struct Cgroup {
        CgroupLayout layout;
        const CgroupOps *ops;
        char *name;
        CgroupNode self;
        bool split;                                /* has the two children */
        CgroupNode children[_CGROUP_CHILD_MAX];
        CgroupTestHooks hooks;
};

/* Detection caches, the only process-wide state: 0 = not detected yet, else layout + 1. */
static int cached_layout;
/* Set by cgroup_v2_prepare_delegated(): the delegated cgroup (relative to the cgroup2 mount) that
 * sandbox cgroups are created in, since /proc/self/cgroup names the leaf we moved into. */
static char *delegated_base;

static void sleep_usec(uint64_t usec) {
        struct timespec ts = {
                .tv_sec = (time_t) (usec / 1000000),
                .tv_nsec = (long) (usec % 1000000) * 1000,
        };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ------------------------------------------------------------------------------------------------
 * File access beneath a cgroup directory fd
 */

/* Write VALUE to FILE in one write(): cgroup files take one value per write. */
static int cg_write(int dir_fd, const char *file, const char *value) {
        _cleanup_close_ int fd = -EBADF;
        size_t n = strlen(value);
        ssize_t k;

        fd = open_beneath(dir_fd, file, O_WRONLY | O_NOCTTY, 0);
        if (fd < 0)
                return fd;
        do
                k = write(fd, value, n);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if ((size_t) k != n)
                return -EIO;
        return 0;
}

static int cg_write_u64(int dir_fd, const char *file, uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return cg_write(dir_fd, file, buf);
}

/* A whole small text file; a NUL byte inside is malformed. */
static int cg_read(int dir_fd, const char *file, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        r = read_file_at(dir_fd, file, CGROUP_STAT_FILE_MAX, &buf, &size);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        if (strlen(buf) != size)
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* A file holding one number and an optional newline ("1234\n"). */
static int parse_single_u64(const char *text, uint64_t *ret) {
        char buf[32];
        size_t n = strlen(text);

        if (n > 0 && text[n - 1] == '\n')
                n--;
        if (n == 0 || n >= sizeof buf)
                return -EBADMSG;
        memcpy(buf, text, n);
        buf[n] = '\0';
        if (safe_atou64(buf, ret) < 0)
                return -EBADMSG;
        return 0;
}

/* A flat keyed file: lines "KEY VALUE". Every line must have that shape; KEY must appear exactly
 * once with a decimal VALUE. Other keys' values are not interpreted. */
static int parse_keyed_u64(const char *text, const char *key, uint64_t *ret) {
        size_t keylen = strlen(key);
        bool found = false;
        uint64_t v = 0;

        for (const char *p = text; *p;) {
                const char *eol = strchrnul(p, '\n');
                size_t len = (size_t) (eol - p);
                const char *sp = memchr(p, ' ', len);

                if (!sp || sp == p || sp + 1 == eol)
                        return -EBADMSG;
                if ((size_t) (sp - p) == keylen && memcmp(p, key, keylen) == 0) {
                        char buf[32];
                        size_t vlen = (size_t) (eol - sp - 1);

                        if (found || vlen >= sizeof buf)
                                return -EBADMSG;
                        memcpy(buf, sp + 1, vlen);
                        buf[vlen] = '\0';
                        if (safe_atou64(buf, &v) < 0)
                                return -EBADMSG;
                        found = true;
                }
                p = *eol ? eol + 1 : eol;
        }
        if (!found)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int cg_read_single_u64(int dir_fd, const char *file, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r = cg_read(dir_fd, file, &text);
        if (r < 0)
                return r;
        return parse_single_u64(text, ret);
}

static int cg_read_keyed_u64(int dir_fd, const char *file, const char *key, uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r = cg_read(dir_fd, file, &text);
        if (r < 0)
                return r;
        return parse_keyed_u64(text, key, ret);
}

/* True if WORD is one of the space-separated words of TEXT (cgroup.controllers, subtree_control). */
static bool word_in_list(const char *text, const char *word) {
        size_t n = strlen(word);
        for (const char *p = text; *p;) {
                p += strspn(p, " \t\n");
                size_t len = strcspn(p, " \t\n");
                if (len == n && memcmp(p, word, n) == 0)
                        return true;
                p += len;
        }
        return false;
}

/* Call FN for each pid listed in FILE (cgroup.procs), streaming: the list has no size bound.
 * Returns the number of pids seen. */
static int cg_for_each_pid_full(int dir_fd, const char *file, void (*fn)(pid_t pid, void *userdata),
                                void *userdata) {
        _cleanup_close_ int fd = -EBADF;
        char buf[4096], num[16];
        size_t nlen = 0;
        int count = 0;

        fd = open_beneath(dir_fd, file, O_RDONLY | O_NOCTTY, 0);
        if (fd < 0)
                return fd;
        for (;;) {
                ssize_t k = read(fd, buf, sizeof buf);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                for (ssize_t i = 0; i < k; i++) {
                        if (buf[i] != '\n') {
                                if (nlen + 1 >= sizeof num)
                                        return -EBADMSG;
                                num[nlen++] = buf[i];
                                continue;
                        }
                        if (nlen == 0)
                                continue;
                        num[nlen] = '\0';
                        nlen = 0;

                        uint32_t pid;
                        if (safe_atou32(num, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                                return -EBADMSG;
                        if (fn)
                                fn((pid_t) pid, userdata);
                        count++;
                }
        }
        if (nlen > 0)
                return -EBADMSG; /* the kernel ends every line */
        return count;
}

static void kill_pid(pid_t pid, void *userdata) {
        (void) kill(pid, SIGKILL); /* ESRCH: it is gone already */
}

static int cg_for_each_pid(int dir_fd, const char *file, void (*fn)(pid_t pid, void *userdata)) {
        return cg_for_each_pid_full(dir_fd, file, fn, NULL);
}

/* ------------------------------------------------------------------------------------------------
 * Finding mounts and our own cgroups
 */

/* Open absolute PATH as an O_PATH directory, refusing symlinks anywhere in it. */
static int open_abs_dir(const char *path) {
        _cleanup_close_ int slash = -EBADF;

        if (!path || path[0] != '/')
                return -EINVAL;
        slash = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (slash < 0)
                return -errno;
        return open_beneath(slash, path + strspn(path, "/"), O_PATH | O_DIRECTORY, 0);
}

static int fd_check_fs(int fd, long magic) {
        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0)
                return -errno;
        return (long) sfs.f_type == magic ? 0 : -ENOENT;
}

int cgroup_detect_layout(CgroupLayout *ret_layout) {
        int cached = __atomic_load_n(&cached_layout, __ATOMIC_ACQUIRE);
        struct statfs sfs;
        CgroupLayout layout;

        assert_return(ret_layout, -EINVAL);
        if (cached > 0) {
                *ret_layout = (CgroupLayout) (cached - 1);
                return 0;
        }
        if (statfs(CGROUP_MOUNT, &sfs) < 0)
                return -errno;
        if ((long) sfs.f_type == CGROUP2_SUPER_MAGIC)
                layout = CGROUP_LAYOUT_V2;
        else if ((long) sfs.f_type == TMPFS_MAGIC)
                layout = CGROUP_LAYOUT_V1;
        else
                return log_debug_errno(-EOPNOTSUPP, "Unknown file system type 0x%lx on " CGROUP_MOUNT,
                                       (long) sfs.f_type);
        __atomic_store_n(&cached_layout, (int) layout + 1, __ATOMIC_RELEASE);
        *ret_layout = layout;
        return 0;
}

/* True if CONTROLLER is one of the comma-separated names in LIST ("cpu,cpuacct"). */
static bool controller_in_list(const char *list, size_t len, const char *controller) {
        size_t n = strlen(controller);
        for (const char *p = list, *end = list + len; p < end;) {
                const char *comma = memchr(p, ',', (size_t) (end - p));
                size_t l = comma ? (size_t) (comma - p) : (size_t) (end - p);
                if (l == n && memcmp(p, controller, n) == 0)
                        return true;
                p += l + 1;
        }
        return false;
}

int cgroup_get_own_path(const char *controller, char **ret_path) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        ssize_t n;

        assert_return(ret_path, -EINVAL);
        assert_return(!controller || (*controller && !strchr(controller, ',')), -EINVAL);

        f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        while ((n = getline(&line, &size, f)) >= 0) {
                /* "ID:CONTROLLERS:PATH"; PATH may itself contain ':' */
                char *c1, *c2;

                if (n > 0 && line[n - 1] == '\n')
                        line[n - 1] = '\0';
                c1 = strchr(line, ':');
                if (!c1)
                        continue;
                c2 = strchr(c1 + 1, ':');
                if (!c2)
                        continue;
                if (controller) {
                        if (!controller_in_list(c1 + 1, (size_t) (c2 - c1 - 1), controller))
                                continue;
                } else if (!(c1 - line == 1 && line[0] == '0' && c2 == c1 + 1))
                        continue;
                if (c2[1] != '/')
                        return -EBADMSG;
                char *p = strdup(c2 + 1);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }
        if (ferror(f))
                return -EIO;
        return -ENOENT;
}

/* The directory of hierarchy CONTROLLER below the v1 root: a directory named after it, or a symlink
 * to a sibling directory (co-mounted "cpu" -> "cpu,cpuacct"), which we resolve by hand, one level
 * only, staying beneath ROOT_FD. Returns 0 and fd -EBADF if there is none. */
static int open_v1_hierarchy(int root_fd, const char *controller, bool check_fs, int *ret_fd,
                             char **ret_dirname) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dirname = NULL;
        char target[256];
        int r;

        fd = open_beneath(root_fd, controller, O_PATH | O_DIRECTORY, 0);
        if (fd == -ELOOP) {
                ssize_t k = readlinkat(root_fd, controller, target, sizeof target - 1);
                if (k < 0)
                        return -errno;
                target[k] = '\0';
                if (!filename_is_valid(target))
                        return log_debug_errno(-ELOOP, "Hierarchy link '%s' -> '%s' leaves the root",
                                               controller, target);
                fd = open_beneath(root_fd, target, O_PATH | O_DIRECTORY, 0);
                if (fd >= 0)
                        dirname = strdup(target);
        } else if (fd >= 0)
                dirname = strdup(controller);
        if (fd == -ENOENT) {
                *ret_fd = -EBADF;
                *ret_dirname = NULL;
                return 0;
        }
        if (fd < 0)
                return fd;
        if (!dirname)
                return -ENOMEM;
        if (check_fs) {
                r = fd_check_fs(fd, CGROUP_SUPER_MAGIC);
                if (r == -ENOENT) { /* an empty mount point: the hierarchy is not mounted */
                        *ret_fd = -EBADF;
                        *ret_dirname = NULL;
                        return 0;
                }
                if (r < 0)
                        return r;
        }
        *ret_fd = TAKE_FD(fd);
        *ret_dirname = TAKE_PTR(dirname);
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Object life cycle
 */

struct CgroupOps {
        /* Make (or with OPEN_EXISTING find) C's own directories below PARENTS (relative to ROOT_FD;
         * v2 uses [0]) and its children when LIMITS asks for them; apply the limits. */
        int (*create)(Cgroup *c, int root_fd, char *const parents[_CGROUP_CONTROLLER_MAX],
                      const CgroupLimits *limits, bool check_fs, bool may_enable, bool open_existing);
        /* SIGKILL every member of N (not waiting). */
        int (*kill)(Cgroup *c, CgroupNode *n);
        /* Wait until N has no member, until DEADLINE: -EBUSY then. */
        int (*wait_empty)(CgroupNode *n, uint64_t deadline);
        int (*get_cpu_usec)(Cgroup *c, uint64_t *ret);
        /* memory_peak and oom_kills of the whole sandbox, children included. */
        int (*get_memory_stats)(Cgroup *c, CgroupStats *s);
        /* N's directory in the pids hierarchy, or -EBADF. */
        int (*pids_fd)(const CgroupNode *n);
        /* Freeze (or thaw) N's members, and wait (bounded) until they are. */
        int (*freeze)(Cgroup *c, CgroupNode *n, bool freeze);
        /* The memory the whole sandbox uses now (bytes); -EOPNOTSUPP when not accounted. */
        int (*get_memory_current)(Cgroup *c, uint64_t *ret);
};

static const CgroupOps v1_ops, v2_ops;

static void cgroup_dir_done(CgroupDir *d) {
        d->fd = safe_close(d->fd);
        d->parent_fd = d->borrowed ? -EBADF : safe_close(d->parent_fd);
        free(d->hierarchy);
        d->hierarchy = NULL;
}

static void node_init(CgroupNode *n, const char *name) {
        *n = (CgroupNode) { .name = name };
        for (size_t i = 0; i < ELEMENTSOF(n->dirs); i++)
                n->dirs[i] = (CgroupDir) { .parent_fd = -EBADF, .fd = -EBADF };
        for (size_t i = 0; i < ELEMENTSOF(n->index); i++)
                n->index[i] = -1;
}

static void node_done(CgroupNode *n) {
        for (size_t i = 0; i < n->n_dirs; i++)
                cgroup_dir_done(&n->dirs[i]);
        n->n_dirs = 0;
}

Cgroup *cgroup_free(Cgroup *cgroup) {
        if (!cgroup)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(cgroup->children); i++)
                node_done(&cgroup->children[i]);
        node_done(&cgroup->self);
        free(cgroup->name);
        free(cgroup);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Cgroup *, cgroup_free);

static Cgroup *cgroup_new(CgroupLayout layout, const char *name, const CgroupTestHooks *hooks) {
        Cgroup *c = calloc(1, sizeof *c);
        if (!c)
                return NULL;
        c->layout = layout;
        c->ops = layout == CGROUP_LAYOUT_V2 ? &v2_ops : &v1_ops;
        c->name = strdup(name);
        if (!c->name)
                return cgroup_free(c);
        node_init(&c->self, c->name);
        for (size_t i = 0; i < ELEMENTSOF(c->children); i++)
                node_init(&c->children[i], child_names[i]);
        if (hooks)
                c->hooks = *hooks;
        return c;
}

static bool node_is_live(const CgroupNode *n) {
        for (size_t i = 0; i < n->n_dirs; i++)
                if (n->dirs[i].fd >= 0)
                        return true;
        return false;
}

static bool cgroup_is_live(const Cgroup *c) {
        if (node_is_live(&c->self))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(c->children); i++)
                if (node_is_live(&c->children[i]))
                        return true;
        return false;
}

/* The node of a child, or NULL when C has none (not split, or the child is gone). */
static CgroupNode *child_node(Cgroup *c, CgroupChild child) {
        if (!c->split || child < 0 || child >= _CGROUP_CHILD_MAX || !node_is_live(&c->children[child]))
                return NULL;
        return &c->children[child];
}

/* Record DIR_FD (of N's directory below PARENT_FD) as one of N's dirs. Takes both fds, except a
 * BORROWED parent fd (a child's parent is the sandbox's own directory, which it outlives). */
static int node_add_dir(CgroupNode *n, int parent_fd, bool borrowed, int dir_fd, const char *hierarchy) {
        char *h = strdup(hierarchy);
        if (!h) {
                safe_close(dir_fd);
                if (!borrowed)
                        safe_close(parent_fd);
                return -ENOMEM;
        }
        n->dirs[n->n_dirs++] = (CgroupDir) { .hierarchy = h, .parent_fd = parent_fd, .fd = dir_fd, .borrowed = borrowed };
        return 0;
}

/* mkdir N's name below PARENT_FD and record it as one of N's dirs. Takes PARENT_FD unless BORROWED. */
static int node_make_dir(Cgroup *c, CgroupNode *n, int parent_fd, bool borrowed, const char *hierarchy) {
        int fd, r;

        if (mkdirat(parent_fd, n->name, 0755) < 0) {
                r = log_debug_errno(-errno, "Failed to create cgroup '%s' in '%s': %m", n->name, hierarchy);
                if (!borrowed)
                        safe_close(parent_fd);
                return r;
        }
        fd = open_beneath(parent_fd, n->name, O_PATH | O_DIRECTORY, 0);
        if (fd < 0) {
                /* We made it an instant ago; it is empty, so a plain rmdir removes it. */
                (void) unlinkat(parent_fd, n->name, AT_REMOVEDIR);
                if (!borrowed)
                        safe_close(parent_fd);
                return fd;
        }
        r = node_add_dir(n, parent_fd, borrowed, fd, hierarchy);
        if (r < 0)
                return r;
        if (c->hooks.after_mkdir) {
                CgroupDir *d = &n->dirs[n->n_dirs - 1];
                r = c->hooks.after_mkdir(d->fd, d->hierarchy, c->hooks.userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Record an existing directory of N below PARENT_FD (to remove what a crashed run left). Takes
 * PARENT_FD unless BORROWED. Returns 0 when there is nothing there. */
static int node_open_dir(CgroupNode *n, int parent_fd, bool borrowed, const char *hierarchy) {
        int fd = open_beneath(parent_fd, n->name, O_PATH | O_DIRECTORY, 0);
        if (fd < 0) {
                if (!borrowed)
                        safe_close(parent_fd);
                return fd == -ENOENT ? 0 : fd;
        }
        int r = node_add_dir(n, parent_fd, borrowed, fd, hierarchy);
        return r < 0 ? r : 1;
}

/* rmdir one directory, retrying briefly on EBUSY (the kernel may still be tearing the last member
 * down). ENOENT counts as removed. */
static int node_dir_remove(Cgroup *c, CgroupNode *n, CgroupDir *d) {
        uint64_t deadline = now_usec() + CGROUP_RMDIR_RETRY_USEC;
        int r;

        if (d->fd < 0)
                return 0;
        if (c->hooks.before_rmdir) {
                r = c->hooks.before_rmdir(d->fd, d->hierarchy, c->hooks.userdata);
                if (r < 0)
                        return r;
        }
        for (;;) {
                if (unlinkat(d->parent_fd, n->name, AT_REMOVEDIR) >= 0 || errno == ENOENT)
                        break;
                r = -errno;
                if (r != -EBUSY || now_usec() >= deadline)
                        return log_debug_errno(r, "Failed to remove cgroup '%s' in '%s': %m", n->name,
                                               d->hierarchy);
                sleep_usec(10000);
        }
        d->fd = safe_close(d->fd);
        d->parent_fd = d->borrowed ? -EBADF : safe_close(d->parent_fd);
        return 0;
}

/* Remove every directory: the children's first, each node's in the reverse of creation order. Keep
 * going on errors (a child that cannot go keeps its parent), return the first. */
static int cgroup_remove_dirs(Cgroup *c) {
        int ret = 0;

        for (size_t k = 0; k <= ELEMENTSOF(c->children); k++) {
                CgroupNode *n = k < ELEMENTSOF(c->children) ? &c->children[k] : &c->self;
                for (size_t i = n->n_dirs; i > 0; i--) {
                        int r = node_dir_remove(c, n, &n->dirs[i - 1]);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
        }
        return ret;
}

/* ------------------------------------------------------------------------------------------------
 * Limits, in both layouts
 */

/* A limit file that must exist: ENOENT means the controller is not there. */
static int limit_write(int dir_fd, const char *file, const char *value) {
        int r = cg_write(dir_fd, file, value);
        if (r == -ENOENT)
                return log_debug_errno(-EOPNOTSUPP, "No '%s' in the cgroup", file);
        if (r < 0)
                return log_debug_errno(r, "Failed to write '%s' to '%s': %m", value, file);
        return 0;
}

static int limit_write_u64(int dir_fd, const char *file, uint64_t v) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return limit_write(dir_fd, file, buf);
}

/* What each child gets with CgroupLimits.split: the program's pids bound is required, the union
 * server's bounds are best effort (applied where the controller is there). */
static CgroupLimits child_limits(const CgroupLimits *l, CgroupChild child) {
        if (child == CGROUP_CHILD_PROGRAM)
                return (CgroupLimits) { .pids_max = l->program_pids_max };
        return (CgroupLimits) { .pids_max = l->union_pids_max, .cpu_weight = l->union_cpu_weight };
}

/* ------------------------------------------------------------------------------------------------
 * v2
 */

/* The first V2_DEFAULT_CONTROLLERS are enabled wherever we divide a cgroup; cpuset and io only when asked. */
static const char *const v2_limit_controllers[] = { "memory", "pids", "cpu", "cpuset", "io" };
enum { V2_MEMORY = 1 << 0, V2_PIDS = 1 << 1, V2_CPU = 1 << 2, V2_CPUSET = 1 << 3, V2_IO = 1 << 4 };
#define V2_DEFAULT_CONTROLLERS 3

static bool limits_want_cpuset(const CgroupLimits *l) {
        return l->cpuset_io && (l->cpuset_io->cpus[0] || l->cpuset_io->mems[0]);
}

static bool limits_want_io(const CgroupLimits *l) {
        return l->cpuset_io && (l->cpuset_io->io_weight > 0 || l->cpuset_io->n_devices > 0);
}

static unsigned v2_limit_mask(const CgroupLimits *l) {
        return (l->memory_max > 0 ? V2_MEMORY : 0) | (l->pids_max > 0 ? V2_PIDS : 0) |
               (l->cpu_quota_us > 0 ? V2_CPU : 0) | (limits_want_cpuset(l) ? V2_CPUSET : 0) |
               (limits_want_io(l) ? V2_IO : 0);
}

/* v1: one bound of a device, "MAJ:MIN VALUE", to its blkio.throttle.* file (none for 0). */
static int io_write_device(int fd, const char *file, const CgroupIoDevice *d, uint64_t v) {
        char buf[64];

        if (v == 0)
                return 0;
        snprintf(buf, sizeof buf, "%" PRIu32 ":%" PRIu32 " %" PRIu64, d->major, d->minor, v);
        return limit_write(fd, file, buf);
}

/* v2: a device's bounds in one line of io.max, "MAJ:MIN rbps=N wbps=N riops=N wiops=N" (those set). */
static int io_write_max(int fd, const CgroupIoDevice *d) {
        const uint64_t v[4] = { d->rbps, d->wbps, d->riops, d->wiops };
        static const char *const key[4] = { "rbps", "wbps", "riops", "wiops" };
        char buf[160];
        int n;

        n = snprintf(buf, sizeof buf, "%" PRIu32 ":%" PRIu32, d->major, d->minor);
        for (size_t i = 0; i < 4; i++)
                if (v[i] > 0)
                        n += snprintf(buf + n, sizeof buf - (size_t) n, " %s=%" PRIu64, key[i], v[i]);
        return limit_write(fd, "io.max", buf);
}

/* Make sure the controllers in REQUIRED are enabled for FD's children: already in its
 * cgroup.subtree_control, or (MAY_ENABLE: FD is ours to divide) offered by its cgroup.controllers
 * and enabled now; otherwise -EOPNOTSUPP. Those in OPTIONAL are enabled when offered. The mask of
 * what is enabled goes to RET_ENABLED (may be NULL). */
static int v2_enable_controllers(int fd, unsigned required, unsigned optional, bool may_enable,
                                 unsigned *ret_enabled) {
        _cleanup_free_ char *subtree = NULL, *available = NULL;
        unsigned enabled = 0;
        char enable[64] = "";
        int r;

        if ((required | optional) == 0)
                goto done;
        r = cg_read(fd, "cgroup.subtree_control", &subtree);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(v2_limit_controllers); i++) {
                const char *ctl = v2_limit_controllers[i];
                unsigned bit = 1u << i;

                if (!((required | optional) & bit))
                        continue;
                if (word_in_list(subtree, ctl)) {
                        enabled |= bit;
                        continue;
                }
                if (!may_enable) {
                        if (required & bit)
                                return log_debug_errno(-EOPNOTSUPP, "Controller '%s' is not enabled for children",
                                                       ctl);
                        continue;
                }
                if (!available) {
                        r = cg_read(fd, "cgroup.controllers", &available);
                        if (r < 0)
                                return r;
                }
                if (!word_in_list(available, ctl)) {
                        if (required & bit)
                                return log_debug_errno(-EOPNOTSUPP, "Controller '%s' is not available", ctl);
                        continue;
                }
                strcat(enable, *enable ? " +" : "+");
                strcat(enable, ctl);
                enabled |= bit;
        }
        if (*enable) {
                r = cg_write(fd, "cgroup.subtree_control", enable);
                if (r < 0)
                        return log_debug_errno(r, "Failed to enable '%s' for children: %m", enable);
        }
done:
        if (ret_enabled)
                *ret_enabled = enabled;
        return 0;
}

static int v2_apply_limits(int fd, const CgroupLimits *l) {
        int r;

        if (l->memory_max > 0) {
                r = limit_write_u64(fd, "memory.max", l->memory_max);
                if (r < 0)
                        return r;
                /* Without swap accounting (or swap) the file does not exist: nothing to escape to. */
                r = cg_write(fd, "memory.swap.max", "0");
                if (r < 0 && r != -ENOENT)
                        return log_debug_errno(r, "Failed to write memory.swap.max: %m");
        }
        if (l->pids_max > 0) {
                r = limit_write_u64(fd, "pids.max", l->pids_max);
                if (r < 0)
                        return r;
        }
        if (l->cpu_quota_us > 0) {
                char buf[64];
                snprintf(buf, sizeof buf, "%" PRIu64 " %" PRIu64, l->cpu_quota_us,
                         l->cpu_period_us ?: CGROUP_DEFAULT_PERIOD_US);
                r = limit_write(fd, "cpu.max", buf);
                if (r < 0)
                        return r;
        }
        if (l->cpu_weight > 0) {
                r = limit_write_u64(fd, "cpu.weight", MIN(l->cpu_weight, 10000u));
                if (r < 0)
                        return r;
        }
        if (l->cpuset_io) {
                const CgroupCpusetIo *x = l->cpuset_io;
                if (x->cpus[0] && (r = limit_write(fd, "cpuset.cpus", x->cpus)) < 0)
                        return r;
                if (x->mems[0] && (r = limit_write(fd, "cpuset.mems", x->mems)) < 0)
                        return r;
                if (x->io_weight > 0 && (r = limit_write_u64(fd, "io.weight", x->io_weight)) < 0)
                        return r;
                for (size_t i = 0; i < MIN(x->n_devices, (size_t) CGROUP_IO_DEVICES_MAX); i++) {
                        const CgroupIoDevice *d = &x->devices[i];
                        r = io_write_max(fd, d);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The two children, with pids (required for the program's bound) and cpu (for the server's weight)
 * enabled in the sandbox's own cgroup.subtree_control: it is ours, and has no members of its own. */
static int v2_make_children(Cgroup *c, const CgroupLimits *l) {
        int fd = c->self.dirs[0].fd;
        unsigned enabled;
        int r;

        r = v2_enable_controllers(fd, l->program_pids_max > 0 ? V2_PIDS : 0,
                                  (l->union_pids_max > 0 ? V2_PIDS : 0) | (l->union_cpu_weight > 0 ? V2_CPU : 0),
                                  true, &enabled);
        if (r < 0)
                return r;
        for (CgroupChild k = 0; k < _CGROUP_CHILD_MAX; k++) {
                CgroupLimits cl = child_limits(l, k);
                r = node_make_dir(c, &c->children[k], fd, true, "");
                if (r < 0)
                        return r;
                if (!(enabled & V2_PIDS))
                        cl.pids_max = 0;
                if (!(enabled & V2_CPU))
                        cl.cpu_weight = 0;
                r = v2_apply_limits(c->children[k].dirs[0].fd, &cl);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int v2_create(Cgroup *c, int root_fd, char *const parents[_CGROUP_CONTROLLER_MAX],
                     const CgroupLimits *limits, bool check_fs, bool may_enable, bool open_existing) {
        _cleanup_close_ int pfd = -EBADF;
        const char *parent = parents[0];
        int r;

        pfd = open_beneath(root_fd, parent + strspn(parent, "/"), O_PATH | O_DIRECTORY, 0);
        if (pfd < 0)
                return log_debug_errno(pfd, "Failed to open parent cgroup '%s': %m", parent);
        if (open_existing) {
                r = node_open_dir(&c->self, TAKE_FD(pfd), false, "");
                if (r <= 0)
                        return r == 0 ? -ENOENT : r;
                for (CgroupChild k = 0; k < _CGROUP_CHILD_MAX; k++) {
                        r = node_open_dir(&c->children[k], c->self.dirs[0].fd, true, "");
                        if (r < 0)
                                return r;
                        if (r > 0)
                                c->split = true;
                }
                return 0;
        }
        /* Checked before mkdir: an unsupported limit leaves nothing behind, not even briefly. */
        r = v2_enable_controllers(pfd, v2_limit_mask(limits), 0, may_enable, NULL);
        if (r < 0)
                return r;
        r = node_make_dir(c, &c->self, TAKE_FD(pfd), false, "");
        if (r < 0)
                return r;
        r = v2_apply_limits(c->self.dirs[0].fd, limits);
        if (r < 0)
                return r;
        if (limits->split) {
                c->split = true;
                r = v2_make_children(c, limits);
        }
        return r;
}

/* The fallback without cgroup.kill or a freezer: SIGKILL whatever cgroup.procs lists, again and
 * again until it lists nothing (a member may fork between our read and our kill), bounded. A pid
 * read here may, in theory, exit and be reused before the kill; the freezer path has no such race. */
static int kill_loop(int dir_fd) {
        uint64_t deadline = now_usec() + CGROUP_KILL_LOOP_TIMEOUT_USEC;
        for (;;) {
                int n = cg_for_each_pid(dir_fd, "cgroup.procs", kill_pid);
                if (n <= 0)
                        return n;
                if (now_usec() >= deadline)
                        return 0; /* the members are dying; removal waits for them */
                sleep_usec(2000);
        }
}

static int v2_kill(Cgroup *c, CgroupNode *n) {
        /* cgroup.kill (kernel >= 5.14) kills every member, also those forked meanwhile, and every
         * member of the cgroups below. */
        int r = cg_write(n->dirs[0].fd, "cgroup.kill", "1");
        if (r == -ENOENT)
                return kill_loop(n->dirs[0].fd);
        return r;
}

/* v2: wait for "populated 0" in cgroup.events; the kernel signals changes with POLLPRI. */
static int v2_wait_events(int dir_fd, uint64_t deadline) {
        _cleanup_close_ int fd = -EBADF;
        char buf[256];

        fd = open_beneath(dir_fd, "cgroup.events", O_RDONLY | O_NOCTTY, 0);
        if (fd < 0)
                return fd;
        for (;;) {
                ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
                uint64_t populated, now;
                int r;

                if (k < 0)
                        return -errno;
                buf[k] = '\0';
                if (strlen(buf) != (size_t) k)
                        return -EBADMSG;
                r = parse_keyed_u64(buf, "populated", &populated);
                if (r < 0)
                        return r;
                if (populated == 0)
                        return 0;
                now = now_usec();
                if (now >= deadline)
                        return -EBUSY;

                struct pollfd p = { .fd = fd, .events = POLLPRI };
                int timeout_ms = (int) MIN((deadline - now + 999) / 1000, UINT64_C(1000));
                int n = poll(&p, 1, timeout_ms);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0 && !(p.revents & (POLLPRI | POLLERR)))
                        sleep_usec(10000); /* not a kernfs file (a fake tree): do not spin */
        }
}

/* v1 (and v2 without cgroup.events): poll cgroup.procs until it lists nobody. */
static int wait_procs_empty(int dir_fd, uint64_t deadline) {
        uint64_t delay = 1000;
        for (;;) {
                int n = cg_for_each_pid(dir_fd, "cgroup.procs", NULL);
                if (n <= 0)
                        return n;
                if (now_usec() >= deadline)
                        return -EBUSY;
                sleep_usec(delay);
                delay = MIN(delay * 2, UINT64_C(20000));
        }
}

static int v2_wait_empty(CgroupNode *n, uint64_t deadline) {
        if (n->n_dirs == 0 || n->dirs[0].fd < 0)
                return 0;
        int r = v2_wait_events(n->dirs[0].fd, deadline);
        if (r == -ENOENT)
                r = wait_procs_empty(n->dirs[0].fd, deadline);
        return r;
}

static int v2_get_cpu_usec(Cgroup *c, uint64_t *ret) {
        uint64_t v;
        /* Core cgroup2 accounting, of the whole subtree: present without the cpu controller. */
        int r = cg_read_keyed_u64(c->self.dirs[0].fd, "cpu.stat", "usage_usec", &v);
        if (r == -ENOENT)
                return -EOPNOTSUPP;
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* An optional stat: a missing file means "not accounted here", 0. */
static int optional_stat(int r, uint64_t *v) {
        if (r == -ENOENT) {
                *v = 0;
                return 0;
        }
        return r;
}

static int v2_get_memory_stats(Cgroup *c, CgroupStats *s) {
        int fd = c->self.dirs[0].fd, r;
        /* memory.peak: kernel >= 5.19 and the memory controller enabled for us. Both it and
         * memory.events count the children too. */
        r = optional_stat(cg_read_single_u64(fd, "memory.peak", &s->memory_peak), &s->memory_peak);
        if (r < 0)
                return r;
        return optional_stat(cg_read_keyed_u64(fd, "memory.events", "oom_kill", &s->oom_kills), &s->oom_kills);
}

static int v2_pids_fd(const CgroupNode *n) {
        return n->n_dirs > 0 ? n->dirs[0].fd : -EBADF;
}

/* cgroup.freeze (kernel >= 5.2, core cgroup2: no controller needed); done when cgroup.events says
 * "frozen" as wanted. */
static int v2_freeze(Cgroup *c, CgroupNode *n, bool freeze) {
        uint64_t deadline = now_usec() + CGROUP_FREEZE_TIMEOUT_USEC;
        _cleanup_close_ int fd = -EBADF;
        char buf[256];
        int r;

        if (n->n_dirs == 0 || n->dirs[0].fd < 0)
                return -ESTALE;
        r = cg_write(n->dirs[0].fd, "cgroup.freeze", freeze ? "1" : "0");
        if (r == -ENOENT)
                return -EOPNOTSUPP;
        if (r < 0)
                return r;
        fd = open_beneath(n->dirs[0].fd, "cgroup.events", O_RDONLY | O_NOCTTY, 0);
        if (fd < 0)
                return fd;
        for (;;) {
                ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
                uint64_t frozen, now;

                if (k < 0)
                        return -errno;
                buf[k] = '\0';
                if (strlen(buf) != (size_t) k)
                        return -EBADMSG;
                r = parse_keyed_u64(buf, "frozen", &frozen);
                if (r < 0)
                        return r;
                if ((frozen != 0) == freeze)
                        return 0;
                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                struct pollfd p = { .fd = fd, .events = POLLPRI };
                int n_ready = poll(&p, 1, (int) MIN((deadline - now + 999) / 1000, UINT64_C(100)));
                if (n_ready < 0 && errno != EINTR)
                        return -errno;
        }
}

static int v2_get_memory_current(Cgroup *c, uint64_t *ret) {
        int r = cg_read_single_u64(c->self.dirs[0].fd, "memory.current", ret);
        return r == -ENOENT ? -EOPNOTSUPP : r;
}

static const CgroupOps v2_ops = {
        .create = v2_create,
        .kill = v2_kill,
        .wait_empty = v2_wait_empty,
        .get_cpu_usec = v2_get_cpu_usec,
        .get_memory_stats = v2_get_memory_stats,
        .pids_fd = v2_pids_fd,
        .freeze = v2_freeze,
        .get_memory_current = v2_get_memory_current,
};

/* ------------------------------------------------------------------------------------------------
 * v1
 */

/* Whether a hierarchy is required (a requested limit needs it; missing → -EOPNOTSUPP) or only
 * wanted when present (memory and cpuacct for the stats, freezer for killing, pids for the union
 * server's best-effort bound). pids and cpu are otherwise only created when their limit is
 * requested. */
static bool v1_required(CgroupController ctl, const CgroupLimits *l) {
        switch (ctl) {
        case CGROUP_MEMORY:
                return l->memory_max > 0;
        case CGROUP_PIDS:
                return l->pids_max > 0 || (l->split && l->program_pids_max > 0);
        case CGROUP_CPU:
                return l->cpu_quota_us > 0;
        case CGROUP_CPUSET:
                return limits_want_cpuset(l);
        case CGROUP_BLKIO:
                return limits_want_io(l);
        case CGROUP_CPUACCT:
        case CGROUP_FREEZER:
        case _CGROUP_CONTROLLER_MAX:
                break;
        }
        return false;
}

static bool v1_wanted(CgroupController ctl, const CgroupLimits *l) {
        return v1_required(ctl, l) || ctl == CGROUP_MEMORY || ctl == CGROUP_CPUACCT || ctl == CGROUP_FREEZER ||
               (ctl == CGROUP_PIDS && l->split && l->union_pids_max > 0);
}

/* A controller's directory of node N, or -EBADF. */
static int v1_fd(const CgroupNode *n, CgroupController ctl) {
        return n->index[ctl] >= 0 ? n->dirs[n->index[ctl]].fd : -EBADF;
}

/* A new v1 cpuset cgroup has no CPUs and no memory nodes: write CPUS and MEMS, or ("" or NULL) copy the
 * parent's. A list that is not a subset of the parent's is the kernel's EINVAL. */
static int v1_cpuset_init(const CgroupNode *n, const char *cpus, const char *mems) {
        const char *const files[2] = { "cpuset.cpus", "cpuset.mems" };
        const char *asked[2] = { cpus, mems };
        int fd = v1_fd(n, CGROUP_CPUSET), r;

        if (fd < 0)
                return 0;
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *parent = NULL;
                const char *v = asked[i];

                if (!v || !*v) {
                        r = cg_read(n->dirs[n->index[CGROUP_CPUSET]].parent_fd, files[i], &parent);
                        if (r < 0)
                                return log_debug_errno(r == -ENOENT ? -EOPNOTSUPP : r,
                                                       "Failed to read the parent's %s: %m", files[i]);
                        parent[strcspn(parent, "\n")] = '\0';
                        v = parent;
                }
                r = limit_write(fd, files[i], v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int v1_apply_io(int fd, const CgroupCpusetIo *x) {
        int r;

        if (x->io_weight > 0) {
                /* blkio.weight (cfq, gone since 5.0) or blkio.bfq.weight (bfq), whichever the kernel offers. */
                r = cg_write_u64(fd, "blkio.weight", x->io_weight);
                if (r == -ENOENT)
                        r = cg_write_u64(fd, "blkio.bfq.weight", x->io_weight);
                if (r == -ENOENT)
                        return log_debug_errno(-EOPNOTSUPP, "No blkio.weight or blkio.bfq.weight in the cgroup");
                if (r < 0)
                        return log_debug_errno(r, "Failed to write the blkio weight: %m");
        }
        for (size_t i = 0; i < MIN(x->n_devices, (size_t) CGROUP_IO_DEVICES_MAX); i++) {
                const CgroupIoDevice *d = &x->devices[i];
                if ((r = io_write_device(fd, "blkio.throttle.read_bps_device", d, d->rbps)) < 0 ||
                    (r = io_write_device(fd, "blkio.throttle.write_bps_device", d, d->wbps)) < 0 ||
                    (r = io_write_device(fd, "blkio.throttle.read_iops_device", d, d->riops)) < 0 ||
                    (r = io_write_device(fd, "blkio.throttle.write_iops_device", d, d->wiops)) < 0)
                        return r;
        }
        return 0;
}

static int v1_apply_limits(CgroupNode *n, const CgroupLimits *l, bool best_effort) {
        int fd, r;

        if (l->memory_max > 0) {
                fd = v1_fd(n, CGROUP_MEMORY);
                /* memsw (memory+swap) must stay >= the memory limit: set the memory limit first,
                 * then memsw to the same value, so the sandbox cannot escape into swap. */
                r = limit_write_u64(fd, "memory.limit_in_bytes", l->memory_max);
                if (r < 0)
                        return r;
                r = cg_write_u64(fd, "memory.memsw.limit_in_bytes", l->memory_max);
                if (r < 0 && r != -ENOENT) /* no swap accounting: no file, no swap escape */
                        return log_debug_errno(r, "Failed to write memory.memsw.limit_in_bytes: %m");
        }
        fd = v1_fd(n, CGROUP_PIDS);
        if (l->pids_max > 0 && !(best_effort && fd < 0)) {
                r = limit_write_u64(fd, "pids.max", l->pids_max);
                if (r < 0)
                        return r;
        }
        fd = v1_fd(n, CGROUP_CPU);
        if (l->cpu_quota_us > 0) {
                r = limit_write_u64(fd, "cpu.cfs_period_us", l->cpu_period_us ?: CGROUP_DEFAULT_PERIOD_US);
                if (r < 0)
                        return r;
                r = limit_write_u64(fd, "cpu.cfs_quota_us", l->cpu_quota_us);
                if (r < 0)
                        return r;
        }
        if (l->cpu_weight > 0 && !(best_effort && fd < 0)) {
                /* v2's weight 100 is v1's 1024 shares; 10000 → 102400 (v1 allows 2..262144). */
                r = limit_write_u64(fd, "cpu.shares", MAX((uint64_t) MIN(l->cpu_weight, 10000u) * 1024 / 100, 2u));
                if (r < 0)
                        return r;
        }
        if (limits_want_cpuset(l)) {
                r = v1_cpuset_init(n, l->cpuset_io->cpus, l->cpuset_io->mems);
                if (r < 0)
                        return r;
        }
        if (limits_want_io(l)) {
                r = v1_apply_io(v1_fd(n, CGROUP_BLKIO), l->cpuset_io);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cgroup_update_limits(Cgroup *c, const CgroupLimits *l) {
        CgroupLimits self = { .memory_max = l->memory_max, .pids_max = l->pids_max, .cpu_quota_us = l->cpu_quota_us,
                              .cpu_period_us = l->cpu_period_us };
        CgroupLimits program = { .pids_max = l->program_pids_max };
        int r;

        assert_return(c, -EINVAL);
        if (c->layout == CGROUP_LAYOUT_V2) {
                r = v2_apply_limits(c->self.dirs[0].fd, &self);
                if (r >= 0 && c->split && program.pids_max > 0)
                        r = v2_apply_limits(c->children[CGROUP_CHILD_PROGRAM].dirs[0].fd, &program);
                return r;
        }
        /* A hierarchy the sandbox was made without (cpu when it had no CPU bound): not here. */
        if ((self.memory_max > 0 && v1_fd(&c->self, CGROUP_MEMORY) < 0) ||
            (self.pids_max > 0 && v1_fd(&c->self, CGROUP_PIDS) < 0) ||
            (self.cpu_quota_us > 0 && v1_fd(&c->self, CGROUP_CPU) < 0))
                return -EOPNOTSUPP;
        /* v1: memsw must stay >= the memory limit. Raising: memsw first; lowering: memory first (then memsw). */
        if (self.memory_max > 0) {
                int fd = v1_fd(&c->self, CGROUP_MEMORY);
                (void) cg_write_u64(fd, "memory.memsw.limit_in_bytes", self.memory_max);
        }
        r = v1_apply_limits(&c->self, &self, false);
        if (r >= 0 && c->split && program.pids_max > 0)
                r = v1_apply_limits(&c->children[CGROUP_CHILD_PROGRAM], &program, false);
        return r;
}

/* The children: a directory in each of the sandbox's hierarchies, but the union server's not in the
 * freezer (freezing the program must never freeze the server it waits for). */
static int v1_make_children(Cgroup *c, const CgroupLimits *l) {
        int r;

        for (CgroupChild k = 0; k < _CGROUP_CHILD_MAX; k++) {
                CgroupNode *n = &c->children[k];
                CgroupLimits cl = child_limits(l, k);

                for (size_t i = 0; i < c->self.n_dirs; i++) {
                        if (k == CGROUP_CHILD_UNION && (int) i == c->self.index[CGROUP_FREEZER])
                                continue;
                        r = node_make_dir(c, n, c->self.dirs[i].fd, true, c->self.dirs[i].hierarchy);
                        if (r < 0)
                                return r;
                        for (CgroupController ctl = 0; ctl < _CGROUP_CONTROLLER_MAX; ctl++)
                                if (c->self.index[ctl] == (int) i)
                                        n->index[ctl] = (int) n->n_dirs - 1;
                }
                /* Their cpuset is the sandbox's (a new v1 cpuset cgroup has none). */
                r = v1_cpuset_init(n, NULL, NULL);
                if (r < 0)
                        return r;
                r = v1_apply_limits(n, &cl, k == CGROUP_CHILD_UNION);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Find the children of an existing sandbox cgroup (to remove them with it). */
static int v1_open_children(Cgroup *c) {
        for (CgroupChild k = 0; k < _CGROUP_CHILD_MAX; k++)
                for (size_t i = 0; i < c->self.n_dirs; i++) {
                        int r = node_open_dir(&c->children[k], c->self.dirs[i].fd, true, c->self.dirs[i].hierarchy);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                        c->split = true;
                        for (CgroupController ctl = 0; ctl < _CGROUP_CONTROLLER_MAX; ctl++)
                                if (c->self.index[ctl] == (int) i)
                                        c->children[k].index[ctl] = (int) c->children[k].n_dirs - 1;
                }
        return 0;
}

/* PARENTS[ctl] is the parent path in each hierarchy (NULL: that hierarchy is not available). */
static int v1_create(Cgroup *c, int root_fd, char *const parents[_CGROUP_CONTROLLER_MAX],
                     const CgroupLimits *limits, bool check_fs, bool may_enable, bool open_existing) {
        struct stat roots[_CGROUP_CONTROLLER_MAX];
        CgroupNode *n = &c->self;
        int r;

        for (CgroupController ctl = 0; ctl < _CGROUP_CONTROLLER_MAX; ctl++) {
                _cleanup_close_ int hfd = -EBADF, pfd = -EBADF;
                _cleanup_free_ char *dirname = NULL;
                struct stat st;
                bool shared = false;

                if (!open_existing && !v1_wanted(ctl, limits))
                        continue;
                if (parents[ctl]) {
                        r = open_v1_hierarchy(root_fd, controller_names[ctl], check_fs, &hfd, &dirname);
                        if (r < 0)
                                return log_debug_errno(r, "Failed to open hierarchy '%s': %m",
                                                       controller_names[ctl]);
                }
                if (hfd < 0) {
                        if (!open_existing && v1_required(ctl, limits))
                                return log_debug_errno(-EOPNOTSUPP, "No '%s' hierarchy",
                                                       controller_names[ctl]);
                        continue;
                }
                /* Co-mounted controllers (cpu,cpuacct) share one hierarchy: one directory. */
                if (fstat(hfd, &st) < 0)
                        return -errno;
                for (CgroupController o = 0; o < ctl; o++)
                        if (n->index[o] >= 0 && roots[o].st_dev == st.st_dev &&
                            roots[o].st_ino == st.st_ino) {
                                n->index[ctl] = n->index[o];
                                shared = true;
                                break;
                        }
                roots[ctl] = st;
                if (shared)
                        continue;

                const char *parent = parents[ctl] + strspn(parents[ctl], "/");
                pfd = open_beneath(hfd, parent, O_PATH | O_DIRECTORY, 0);
                if (pfd < 0)
                        return log_debug_errno(pfd, "Failed to open parent cgroup '%s' in '%s': %m",
                                               parent, dirname);
                if (open_existing) {
                        r = node_open_dir(n, TAKE_FD(pfd), false, dirname);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                continue;
                } else {
                        r = node_make_dir(c, n, TAKE_FD(pfd), false, dirname);
                        if (r < 0)
                                return r;
                }
                n->index[ctl] = (int) n->n_dirs - 1;
        }
        if (open_existing)
                return n->n_dirs > 0 ? v1_open_children(c) : -ENOENT;
        if (n->n_dirs == 0)
                return log_debug_errno(-EOPNOTSUPP, "No usable cgroup v1 hierarchy");

        r = v1_apply_limits(n, limits, false);
        if (r < 0)
                return r;
        if (limits->split) {
                c->split = true;
                r = v1_make_children(c, limits);
        }
        return r;
}

static int v1_freezer_state_is(int fd, const char *state) {
        _cleanup_free_ char *s = NULL;
        int r = cg_read(fd, "freezer.state", &s);
        if (r < 0)
                return r;
        return strneq(s, state, strlen(state)) && (s[strlen(state)] == '\0' || s[strlen(state)] == '\n');
}

/* v1 has no cgroup.kill. Frozen members can neither fork nor exit, so the pids we read stay valid
 * and complete while we kill them; they die as soon as they are thawed. Freezing a node freezes
 * the cgroups below it too: the sandbox's freezer directory only has the program below it. */
static int v1_kill(Cgroup *c, CgroupNode *n) {
        int fd = v1_fd(n, CGROUP_FREEZER), r, ret = 0;

        if (fd >= 0) {
                uint64_t deadline = now_usec() + CGROUP_FREEZE_TIMEOUT_USEC, delay = 1000;

                r = cg_write(fd, "freezer.state", "FROZEN");
                if (r < 0)
                        return log_debug_errno(r, "Failed to freeze '%s': %m", n->name);
                /* FREEZING until every member stopped; a member in an uninterruptible sleep may
                 * hold that up: then we kill anyway and fall back to the loop below. */
                while ((r = v1_freezer_state_is(fd, "FROZEN")) == 0 && now_usec() < deadline) {
                        sleep_usec(delay);
                        delay = MIN(delay * 2, UINT64_C(20000));
                }
                if (r < 0)
                        ret = r;
                r = cg_for_each_pid(fd, "cgroup.procs", kill_pid);
                if (r < 0 && ret == 0)
                        ret = r;
                r = cg_write(fd, "freezer.state", "THAWED");
                if (r < 0 && ret == 0)
                        ret = log_debug_errno(r, "Failed to thaw '%s': %m", n->name);
        }
        /* Members the freezer did not hold (no freezer hierarchy, or not frozen in time). */
        for (size_t i = 0; i < n->n_dirs; i++) {
                if (n->dirs[i].fd < 0 || (int) i == n->index[CGROUP_FREEZER])
                        continue;
                if (fd >= 0 && ret == 0) {
                        /* Frozen and killed: anything still listed is already dying; one pass. */
                        r = cg_for_each_pid(n->dirs[i].fd, "cgroup.procs", kill_pid);
                } else
                        r = kill_loop(n->dirs[i].fd);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static int v1_wait_empty(CgroupNode *n, uint64_t deadline) {
        for (size_t i = 0; i < n->n_dirs; i++) {
                if (n->dirs[i].fd < 0)
                        continue;
                int r = wait_procs_empty(n->dirs[i].fd, deadline);
                if (r < 0)
                        return log_debug_errno(r, "Cgroup '%s' in '%s' did not become empty: %m", n->name,
                                               n->dirs[i].hierarchy);
        }
        return 0;
}

static int v1_get_cpu_usec(Cgroup *c, uint64_t *ret) {
        uint64_t v;
        int fd = v1_fd(&c->self, CGROUP_CPUACCT);
        if (fd < 0)
                return -EOPNOTSUPP;
        int r = cg_read_single_u64(fd, "cpuacct.usage", &v); /* nanoseconds, children included */
        if (r == -ENOENT)
                return -EOPNOTSUPP;
        if (r < 0)
                return r;
        *ret = v / 1000;
        return 0;
}

static int v1_get_memory_stats(Cgroup *c, CgroupStats *s) {
        int fd = v1_fd(&c->self, CGROUP_MEMORY), r;

        s->memory_peak = s->oom_kills = 0;
        if (fd < 0)
                return 0;
        /* The peak is hierarchical; v1 counts an OOM kill only in the victim's own cgroup. */
        r = optional_stat(cg_read_single_u64(fd, "memory.max_usage_in_bytes", &s->memory_peak), &s->memory_peak);
        if (r < 0)
                return r;
        for (size_t k = 0; k <= ELEMENTSOF(c->children); k++) {
                CgroupNode *n = k < ELEMENTSOF(c->children) ? &c->children[k] : &c->self;
                uint64_t kills;
                fd = v1_fd(n, CGROUP_MEMORY);
                if (fd < 0)
                        continue;
                /* "oom_kill N": kernel >= 4.13. */
                r = optional_stat(cg_read_keyed_u64(fd, "memory.oom_control", "oom_kill", &kills), &kills);
                if (r < 0)
                        return r;
                s->oom_kills += kills;
        }
        return 0;
}

static int v1_pids_fd(const CgroupNode *n) {
        return v1_fd(n, CGROUP_PIDS);
}

static int v1_freeze(Cgroup *c, CgroupNode *n, bool freeze) {
        int fd = v1_fd(n, CGROUP_FREEZER), r;
        uint64_t deadline = now_usec() + CGROUP_FREEZE_TIMEOUT_USEC, delay = 1000;

        if (fd < 0)
                return -EOPNOTSUPP;
        r = cg_write(fd, "freezer.state", freeze ? "FROZEN" : "THAWED");
        if (r < 0 || !freeze)
                return r;
        /* FREEZING until every member stopped. */
        while ((r = v1_freezer_state_is(fd, "FROZEN")) == 0) {
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                sleep_usec(delay);
                delay = MIN(delay * 2, UINT64_C(20000));
        }
        return r < 0 ? r : 0;
}

static int v1_get_memory_current(Cgroup *c, uint64_t *ret) {
        int fd = v1_fd(&c->self, CGROUP_MEMORY), r;

        if (fd < 0)
                return -EOPNOTSUPP;
        r = cg_read_single_u64(fd, "memory.usage_in_bytes", ret);
        return r == -ENOENT ? -EOPNOTSUPP : r;
}

static const CgroupOps v1_ops = {
        .create = v1_create,
        .kill = v1_kill,
        .wait_empty = v1_wait_empty,
        .get_cpu_usec = v1_get_cpu_usec,
        .get_memory_stats = v1_get_memory_stats,
        .pids_fd = v1_pids_fd,
        .freeze = v1_freeze,
        .get_memory_current = v1_get_memory_current,
};

/* ------------------------------------------------------------------------------------------------
 * Create
 */

typedef struct CreateArgs {
        CgroupLayout layout;
        const char *root;
        char *parents[_CGROUP_CONTROLLER_MAX]; /* v2 uses [0] */
        const char *name;
        const CgroupLimits *limits;
        const CgroupTestHooks *hooks;
        bool check_fs;
        bool may_enable;
        bool open_existing;
} CreateArgs;

static int cgroup_create_internal(const CreateArgs *a, Cgroup **ret_cgroup) {
        _cleanup_(cgroup_freep) Cgroup *c = NULL;
        _cleanup_close_ int root_fd = -EBADF;
        static const CgroupLimits no_limits = {};
        const CgroupLimits *limits = a->limits ?: &no_limits;
        int r;

        if (!filename_is_valid(a->name))
                return -EINVAL;
        if (limits->cpuset_io) {
                const CgroupCpusetIo *x = limits->cpuset_io;
                /* Each goes into a cgroup file as it is: nothing but a list, a number, a bounded table. */
                if ((x->cpus[0] && !cgroup_cpuset_list_valid(x->cpus)) ||
                    (x->mems[0] && !cgroup_cpuset_list_valid(x->mems)) ||
                    (x->io_weight > 0 && (x->io_weight < 10 || x->io_weight > 1000)) ||
                    x->n_devices > CGROUP_IO_DEVICES_MAX)
                        return -EINVAL;
        }
        if (a->layout != CGROUP_LAYOUT_V1 && a->layout != CGROUP_LAYOUT_V2)
                return -EINVAL;

        root_fd = open_abs_dir(a->root);
        if (root_fd < 0)
                return log_debug_errno(root_fd, "Failed to open '%s': %m", a->root);
        if (a->check_fs && a->layout == CGROUP_LAYOUT_V2) {
                r = fd_check_fs(root_fd, CGROUP2_SUPER_MAGIC);
                if (r < 0)
                        return log_debug_errno(r == -ENOENT ? -EOPNOTSUPP : r, "'%s' is not cgroup2",
                                               a->root);
        }

        c = cgroup_new(a->layout, a->name, a->hooks);
        if (!c)
                return -ENOMEM;
        r = c->ops->create(c, root_fd, a->parents, limits, a->check_fs, a->may_enable, a->open_existing);
        if (r < 0 && a->open_existing)
                return r;
        if (r < 0) {
                /* All or nothing. Nothing was attached yet, so the directories are empty. */
                (void) cgroup_remove_dirs(c);
                return r;
        }
        *ret_cgroup = TAKE_PTR(c);
        return 0;
}

static int create_at(CgroupLayout layout, const char *root, const char *parent, const char *name,
                     const CgroupLimits *limits, const CgroupTestHooks *hooks, bool check_fs,
                     Cgroup **ret_cgroup) {
        CreateArgs a = {
                .layout = layout,
                .root = root,
                .name = name,
                .limits = limits,
                .hooks = hooks,
                .check_fs = check_fs,
        };

        assert_return(root && parent && name && ret_cgroup, -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(a.parents); i++)
                a.parents[i] = (char *) parent;
        return cgroup_create_internal(&a, ret_cgroup);
}

int cgroup_create_at(CgroupLayout layout, const char *root, const char *parent, const char *name,
                     const CgroupLimits *limits, Cgroup **ret_cgroup) {
        return create_at(layout, root, parent, name, limits, NULL, true, ret_cgroup);
}

int cgroup_create_fake(CgroupLayout layout, const char *root, const char *parent, const char *name,
                       const CgroupLimits *limits, const CgroupTestHooks *hooks, Cgroup **ret_cgroup) {
        return create_at(layout, root, parent, name, limits, hooks, false, ret_cgroup);
}

static int create_or_open(const char *name, const CgroupLimits *limits, bool open_existing,
                          Cgroup **ret_cgroup) {
        CreateArgs a = {
                .root = CGROUP_MOUNT,
                .name = name,
                .limits = limits,
                .check_fs = true,
                .open_existing = open_existing,
        };
        int r;

        assert_return(name && ret_cgroup, -EINVAL);
        r = cgroup_detect_layout(&a.layout);
        if (r < 0)
                return r;

        if (a.layout == CGROUP_LAYOUT_V2) {
                const char *base = __atomic_load_n(&delegated_base, __ATOMIC_ACQUIRE);
                if (base) {
                        a.parents[0] = strdup(base);
                        a.may_enable = true;
                } else {
                        r = cgroup_get_own_path(NULL, &a.parents[0]);
                        if (r < 0)
                                return log_debug_errno(r, "Failed to find our own cgroup: %m");
                }
                if (!a.parents[0])
                        return -ENOMEM;
        } else
                for (CgroupController ctl = 0; ctl < _CGROUP_CONTROLLER_MAX; ctl++) {
                        r = cgroup_get_own_path(controller_names[ctl], &a.parents[ctl]);
                        if (r < 0 && r != -ENOENT) { /* ENOENT: not mounted, parents[ctl] stays NULL */
                                for (CgroupController o = 0; o < ctl; o++)
                                        free(a.parents[o]);
                                return r;
                        }
                }

        r = cgroup_create_internal(&a, ret_cgroup);
        for (size_t i = 0; i < ELEMENTSOF(a.parents); i++)
                free(a.parents[i]);
        return r;
}

int cgroup_create(const char *name, const CgroupLimits *limits, Cgroup **ret_cgroup) {
        return create_or_open(name, limits, false, ret_cgroup);
}

int cgroup_open(const char *name, Cgroup **ret_cgroup) {
        return create_or_open(name, NULL, true, ret_cgroup);
}

/* ------------------------------------------------------------------------------------------------
 * v2 delegation
 */

int cgroup_v2_own_is_delegated(void) {
        _cleanup_free_ char *own = NULL;
        _cleanup_close_ int root_fd = -EBADF, fd = -EBADF;
        static const char *const names[] = { "trusted.delegate", "user.delegate" };
        const char *base = __atomic_load_n(&delegated_base, __ATOMIC_ACQUIRE);
        CgroupLayout layout;
        char path[64];
        int r;

        r = cgroup_detect_layout(&layout);
        if (r < 0)
                return r;
        if (layout != CGROUP_LAYOUT_V2)
                return -EOPNOTSUPP;
        /* After cgroup_v2_prepare_delegated(), /proc/self/cgroup names the leaf: ask the base. */
        if (base) {
                own = strdup(base);
                if (!own)
                        return -ENOMEM;
        } else {
                r = cgroup_get_own_path(NULL, &own);
                if (r < 0)
                        return r;
        }
        root_fd = open_abs_dir(CGROUP_MOUNT);
        if (root_fd < 0)
                return root_fd;
        fd = open_beneath(root_fd, own + strspn(own, "/"), O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        /* getxattr needs a path; an O_PATH fd through /proc/self/fd is the fd's own directory. */
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char v[8];
                ssize_t k = getxattr(path, names[i], v, sizeof v);
                if (k == 1 && v[0] == '1')
                        return 1;
                if (k < 0 && errno != ENODATA && errno != EOPNOTSUPP && errno != EPERM)
                        return -errno;
        }
        return 0;
}

int cgroup_v2_prepare_delegated(const char *leaf) {
        _cleanup_free_ char *own = NULL, *available = NULL, *subtree = NULL, *base = NULL;
        _cleanup_close_ int root_fd = -EBADF, own_fd = -EBADF, leaf_fd = -EBADF;
        CgroupLayout layout;
        char enable[64] = "", pid[32];
        bool made_leaf = false, moved = false;
        int r;

        leaf = leaf ?: CGROUP_SUPERVISOR_LEAF;
        assert_return(filename_is_valid(leaf), -EINVAL);
        if (__atomic_load_n(&delegated_base, __ATOMIC_ACQUIRE))
                return 0;

        r = cgroup_detect_layout(&layout);
        if (r < 0)
                return r;
        if (layout != CGROUP_LAYOUT_V2)
                return -EOPNOTSUPP;
        r = cgroup_get_own_path(NULL, &own);
        if (r < 0)
                return r;
        if (streq(own, "/"))
                return log_debug_errno(-EPERM, "Our own cgroup is the root; refusing to touch it");

        root_fd = open_abs_dir(CGROUP_MOUNT);
        if (root_fd < 0)
                return root_fd;
        r = fd_check_fs(root_fd, CGROUP2_SUPER_MAGIC);
        if (r < 0)
                return r == -ENOENT ? -EOPNOTSUPP : r;
        own_fd = open_beneath(root_fd, own + 1, O_PATH | O_DIRECTORY, 0);
        if (own_fd < 0)
                return own_fd;

        /* The leaf: ours from an earlier run of this daemon may still exist. */
        if (mkdirat(own_fd, leaf, 0755) >= 0)
                made_leaf = true;
        else if (errno != EEXIST)
                return log_debug_errno(-errno, "Failed to create '%s/%s': %m", own, leaf);
        leaf_fd = open_beneath(own_fd, leaf, O_PATH | O_DIRECTORY, 0);
        if (leaf_fd < 0) {
                r = leaf_fd;
                goto undo;
        }
        /* cgroup.procs moves the whole process, every thread with it. */
        snprintf(pid, sizeof pid, "%ld", (long) getpid());
        r = cg_write(leaf_fd, "cgroup.procs", pid);
        if (r < 0) {
                log_debug_errno(r, "Failed to move ourselves into '%s/%s': %m", own, leaf);
                goto undo;
        }
        moved = true;

        r = cg_read(own_fd, "cgroup.controllers", &available);
        if (r < 0)
                goto undo;
        r = cg_read(own_fd, "cgroup.subtree_control", &subtree);
        if (r < 0)
                goto undo;
        for (size_t i = 0; i < V2_DEFAULT_CONTROLLERS; i++)
                if (word_in_list(available, v2_limit_controllers[i]) &&
                    !word_in_list(subtree, v2_limit_controllers[i])) {
                        strcat(enable, *enable ? " +" : "+");
                        strcat(enable, v2_limit_controllers[i]);
                }
        if (*enable) {
                /* EBUSY: other processes still live in our own cgroup. */
                r = cg_write(own_fd, "cgroup.subtree_control", enable);
                if (r < 0) {
                        log_debug_errno(r, "Failed to enable '%s' in '%s': %m", enable, own);
                        goto undo;
                }
        }

        base = strdup(own);
        if (!base) {
                r = -ENOMEM;
                goto undo;
        }
        char *expected = NULL;
        if (__atomic_compare_exchange_n(&delegated_base, &expected, base, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
                base = NULL; /* published; lives as long as the process */
        return 0;

undo:
        /* Leave things as we found them: back into our own cgroup, and the leaf gone if we made it
         * (an existing one may be another process's: its rmdir fails while that one lives in it). */
        if (moved)
                (void) cg_write(own_fd, "cgroup.procs", pid);
        if (made_leaf)
                (void) unlinkat(own_fd, leaf, AT_REMOVEDIR);
        return r;
}

/* The parent an engine names (OCI linux.cgroupsPath, cgroupfs form): "/a/b" from the cgroup2 root,
 * "a/b" below our own cgroup. At most CGROUP_PARENT_DEPTH_MAX components of valid file names, no "."
 * or "..". The components made by cgroup_v2_set_parent(), deepest last, for cgroup_v2_remove_parent(). */
#define CGROUP_PARENT_DEPTH_MAX 16
static char *made_parent;       /* the path relative to the cgroup2 root of the deepest we made */
static unsigned made_levels;    /* how many of its trailing components we made */

int cgroup_v2_set_parent(const char *path) {
        _cleanup_free_ char *full = NULL, *copy = NULL, *own = NULL;
        _cleanup_close_ int root_fd = -EBADF, fd = -EBADF;
        CgroupLayout layout;
        unsigned depth = 0, made = 0;
        size_t upto = 0;        /* FULL's length up to the level made or found last */
        char *save = NULL;
        int r;

        assert_return(path, -EINVAL);
        if (__atomic_load_n(&delegated_base, __ATOMIC_ACQUIRE))
                return -EBUSY;
        r = cgroup_detect_layout(&layout);
        if (r < 0)
                return r;
        if (layout != CGROUP_LAYOUT_V2)
                return -EOPNOTSUPP;
        if (path[0] == '/')
                full = strdup(path);
        else {
                r = cgroup_get_own_path(NULL, &own);
                if (r < 0)
                        return r;
                if (asprintf(&full, "%s/%s", streq(own, "/") ? "" : own, path) < 0)
                        full = NULL;
        }
        if (!full)
                return -ENOMEM;
        copy = strdup(full);
        if (!copy)
                return -ENOMEM;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save))
                if (!filename_is_valid(c) || ++depth > CGROUP_PARENT_DEPTH_MAX)
                        return -EINVAL;
        if (depth == 0)
                return -EINVAL;

        root_fd = open_abs_dir(CGROUP_MOUNT);
        if (root_fd < 0)
                return root_fd;
        r = fd_check_fs(root_fd, CGROUP2_SUPER_MAGIC);
        if (r < 0)
                return r == -ENOENT ? -EOPNOTSUPP : r;
        fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        strcpy(copy, full);
        save = NULL;
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                _cleanup_close_ int child = -EBADF;

                /* The controllers our limits use, for the children of each level where it offers them and
                 * they are off (as runc does along cgroupsPath); what cannot be enabled (a level that holds
                 * processes) is for cgroup_create() to report, naming the cgroup. */
                (void) v2_enable_controllers(fd, 0, V2_MEMORY | V2_PIDS | V2_CPU, true, NULL);
                if (mkdirat(fd, c, 0755) >= 0)
                        made++;
                else if (errno != EEXIST)
                        r = -errno;
                else
                        made = 0; /* only a trailing run of levels we made is ours to remove */
                if (r < 0)
                        goto undo;
                upto = (size_t) (c - copy) + strlen(c);
                child = open_beneath(fd, c, O_PATH | O_DIRECTORY, 0);
                if (child < 0) {
                        r = child;
                        goto undo;
                }
                safe_close(fd);
                fd = TAKE_FD(child);
        }
        (void) v2_enable_controllers(fd, 0, V2_MEMORY | V2_PIDS | V2_CPU, true, NULL);

        char *expected = NULL, *base = full;
        if (!__atomic_compare_exchange_n(&delegated_base, &expected, base, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
                r = -EBUSY;
                goto undo;
        }
        full = NULL; /* published; lives as long as the process */
        made_parent = strdup(base);
        made_levels = made_parent ? made : 0;
        return 0;

undo:
        full[upto] = '\0';
        made_levels = made;
        made_parent = TAKE_PTR(full);
        (void) cgroup_v2_remove_parent();
        return r;
}

int cgroup_v2_remove_parent(void) {
        _cleanup_close_ int root_fd = -EBADF;
        _cleanup_free_ char *p = TAKE_PTR(made_parent);
        int r = 0;

        if (!p || made_levels == 0)
                return 0;
        root_fd = open_abs_dir(CGROUP_MOUNT);
        if (root_fd < 0)
                return root_fd;
        for (; made_levels > 0; made_levels--) {
                char *slash = strrchr(p, '/');
                _cleanup_close_ int dir = -EBADF;

                if (!slash)
                        break;
                *slash = '\0';
                dir = *p ? open_beneath(root_fd, p + strspn(p, "/"), O_PATH | O_DIRECTORY, 0)
                         : fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
                if (dir < 0)
                        return dir;
                if (unlinkat(dir, slash + 1, AT_REMOVEDIR) < 0) {
                        r = -errno; /* busy: the engine put something there; it stays */
                        break;
                }
        }
        made_levels = 0;
        return r;
}

int cgroup_explain_unsupported(const CgroupLimits *limits, char **ret_missing, char **ret_parent) {
        _cleanup_free_ char *parent = NULL, *subtree = NULL, *available = NULL;
        _cleanup_close_ int root_fd = -EBADF, fd = -EBADF;
        const char *base = __atomic_load_n(&delegated_base, __ATOMIC_ACQUIRE);
        char missing[64] = "";
        CgroupLayout layout;
        int r;

        assert_return(limits && ret_missing && ret_parent, -EINVAL);
        r = cgroup_detect_layout(&layout);
        if (r < 0)
                return r;

        if (layout == CGROUP_LAYOUT_V1) {
                root_fd = open_abs_dir(CGROUP_MOUNT);
                if (root_fd < 0)
                        return root_fd;
                for (CgroupController ctl = 0; ctl < _CGROUP_CONTROLLER_MAX; ctl++) {
                        _cleanup_free_ char *own = NULL, *dirname = NULL;
                        _cleanup_close_ int hfd = -EBADF;

                        if (!v1_required(ctl, limits))
                                continue;
                        r = cgroup_get_own_path(controller_names[ctl], &own);
                        if (r >= 0)
                                r = open_v1_hierarchy(root_fd, controller_names[ctl], true, &hfd, &dirname);
                        if (r == -ENOENT || (r >= 0 && hfd < 0)) {
                                strcat(missing, *missing ? ", " : "");
                                strcat(missing, controller_names[ctl]);
                        } else if (r < 0)
                                return r;
                }
        } else {
                if (base)
                        parent = strdup(base);
                else {
                        r = cgroup_get_own_path(NULL, &parent);
                        if (r < 0)
                                return r;
                }
                if (!parent)
                        return -ENOMEM;
                root_fd = open_abs_dir(CGROUP_MOUNT);
                if (root_fd < 0)
                        return root_fd;
                fd = open_beneath(root_fd, parent + strspn(parent, "/"), O_PATH | O_DIRECTORY, 0);
                if (fd < 0)
                        return fd;
                r = cg_read(fd, "cgroup.subtree_control", &subtree);
                if (r < 0)
                        return r;
                r = cg_read(fd, "cgroup.controllers", &available);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < ELEMENTSOF(v2_limit_controllers); i++) {
                        const char *ctl = v2_limit_controllers[i];
                        if (!(v2_limit_mask(limits) & (1u << i)) || word_in_list(subtree, ctl) ||
                            (base && word_in_list(available, ctl)))
                                continue;
                        strcat(missing, *missing ? ", " : "");
                        strcat(missing, ctl);
                }
        }

        _cleanup_free_ char *m = strdup(missing);
        if (!m)
                return -ENOMEM;
        *ret_missing = TAKE_PTR(m);
        *ret_parent = TAKE_PTR(parent);
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Attach, stats
 */

static int node_attach(CgroupNode *n, pid_t pid) {
        char buf[32];
        int r;

        snprintf(buf, sizeof buf, "%ld", (long) pid);
        for (size_t i = 0; i < n->n_dirs; i++) {
                r = cg_write(n->dirs[i].fd, "cgroup.procs", buf);
                if (r < 0)
                        return log_debug_errno(r, "Failed to attach %ld to '%s' in '%s': %m", (long) pid,
                                               n->name, n->dirs[i].hierarchy);
        }
        return 0;
}

int cgroup_attach(Cgroup *cgroup, pid_t pid) {
        assert_return(cgroup, -EINVAL);
        assert_return(pid > 0, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        if (cgroup->split)
                return -EISDIR; /* its members live in its children */
        return node_attach(&cgroup->self, pid);
}

int cgroup_child_attach(Cgroup *cgroup, CgroupChild child, pid_t pid) {
        assert_return(cgroup, -EINVAL);
        assert_return(pid > 0, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        CgroupNode *n = child_node(cgroup, child);
        if (!n)
                return -ENOENT;
        return node_attach(n, pid);
}

int cgroup_child_procs_open(Cgroup *cgroup, CgroupChild child, int ret_fds[static CGROUP_PROCS_FDS_MAX],
                            size_t *ret_n) {
        int fds[CGROUP_PROCS_FDS_MAX];
        size_t n = 0;

        assert_return(cgroup && ret_n, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        CgroupNode *node = child_node(cgroup, child);
        if (!node)
                return -ENOENT;
        if (node->n_dirs > CGROUP_PROCS_FDS_MAX)
                return -E2BIG;
        for (; n < node->n_dirs; n++) {
                fds[n] = open_beneath(node->dirs[n].fd, "cgroup.procs", O_WRONLY | O_NOCTTY, 0);
                if (fds[n] < 0) {
                        int r = fds[n];
                        while (n > 0)
                                safe_close(fds[--n]);
                        return r;
                }
        }
        memcpy(ret_fds, fds, n * sizeof *fds);
        *ret_n = n;
        return 0;
}

static int node_v2_fd(const Cgroup *c, const CgroupNode *n) {
        if (c->layout != CGROUP_LAYOUT_V2)
                return -EOPNOTSUPP;
        if (!node_is_live(n))
                return -ESTALE;
        /* A real fd, not O_PATH: clone3() refuses O_PATH fds for CLONE_INTO_CGROUP. */
        return open_beneath(n->dirs[0].fd, ".", O_RDONLY | O_DIRECTORY, 0);
}

int cgroup_v2_fd(Cgroup *cgroup) {
        assert_return(cgroup, -EINVAL);
        if (cgroup->layout == CGROUP_LAYOUT_V2 && cgroup->split)
                return -EISDIR;
        return node_v2_fd(cgroup, &cgroup->self);
}

int cgroup_child_v2_fd(Cgroup *cgroup, CgroupChild child) {
        assert_return(cgroup, -EINVAL);
        if (cgroup->layout != CGROUP_LAYOUT_V2)
                return -EOPNOTSUPP;
        CgroupNode *n = child_node(cgroup, child);
        if (!n)
                return cgroup_is_live(cgroup) ? -ENOENT : -ESTALE;
        return node_v2_fd(cgroup, n);
}

int cgroup_get_cpu_usec(Cgroup *cgroup, uint64_t *ret_usec) {
        assert_return(cgroup && ret_usec, -EINVAL);
        if (!node_is_live(&cgroup->self))
                return -ESTALE;
        return cgroup->ops->get_cpu_usec(cgroup, ret_usec);
}

/* Forks refused at the pids limit: the program's (the split layout bounds it in its own child), else
 * the cgroup's own. A missing pids.events (no pids controller or hierarchy) counts as 0. */
static int get_pids_events(Cgroup *c, CgroupStats *s) {
        const CgroupNode *n = c->split && node_is_live(&c->children[CGROUP_CHILD_PROGRAM]) ?
                &c->children[CGROUP_CHILD_PROGRAM] : &c->self;
        int fd = c->ops->pids_fd(n);

        s->pids_max_events = 0;
        if (fd < 0)
                return 0;
        return optional_stat(cg_read_keyed_u64(fd, "pids.events", "max", &s->pids_max_events),
                             &s->pids_max_events);
}

int cgroup_get_stats(Cgroup *cgroup, CgroupStats *ret_stats) {
        CgroupStats s = {};
        int r;

        assert_return(cgroup && ret_stats, -EINVAL);
        if (!node_is_live(&cgroup->self))
                return -ESTALE;

        r = cgroup->ops->get_cpu_usec(cgroup, &s.cpu_usec);
        if (r == -EOPNOTSUPP)
                s.cpu_usec = 0;
        else if (r < 0)
                return r;
        r = cgroup->ops->get_memory_stats(cgroup, &s);
        if (r < 0)
                return r;
        r = get_pids_events(cgroup, &s);
        if (r < 0)
                return r;
        *ret_stats = s;
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Kill and remove
 */

int cgroup_kill_all(Cgroup *cgroup) {
        int r, ret = 0;

        assert_return(cgroup, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        /* The program first (it may be waiting on the server), then the server, then anything left. */
        for (size_t k = 0; k <= ELEMENTSOF(cgroup->children); k++) {
                CgroupNode *n = k < ELEMENTSOF(cgroup->children) ? &cgroup->children[k] : &cgroup->self;
                if (!node_is_live(n))
                        continue;
                r = cgroup->ops->kill(cgroup, n);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int cgroup_child_kill(Cgroup *cgroup, CgroupChild child) {
        assert_return(cgroup, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        CgroupNode *n = child_node(cgroup, child);
        if (!n)
                return -ENOENT;
        return cgroup->ops->kill(cgroup, n);
}

int cgroup_remove(Cgroup *cgroup) {
        uint64_t deadline = now_usec() + CGROUP_EMPTY_TIMEOUT_USEC;
        int r;

        assert_return(cgroup, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return 0;

        r = cgroup_kill_all(cgroup);
        if (r < 0)
                log_debug_errno(r, "Failed to kill the members of '%s', removing anyway: %m", cgroup->name);

        for (size_t k = 0; k <= ELEMENTSOF(cgroup->children); k++) {
                CgroupNode *n = k < ELEMENTSOF(cgroup->children) ? &cgroup->children[k] : &cgroup->self;
                if (!node_is_live(n))
                        continue;
                r = cgroup->ops->wait_empty(n, deadline);
                if (r < 0)
                        return log_debug_errno(r, "Cgroup '%s' of '%s' did not become empty: %m", n->name,
                                               cgroup->name);
        }
        return cgroup_remove_dirs(cgroup);
}

/* ------------------------------------------------------------------------------------------------
 * Freezing, members, the memory in use
 */

int cgroup_child_freeze(Cgroup *cgroup, CgroupChild child, bool freeze) {
        assert_return(cgroup, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        CgroupNode *n = child_node(cgroup, child);
        if (!n)
                return -ENOENT;
        return cgroup->ops->freeze(cgroup, n, freeze);
}

typedef struct PidList {
        pid_t *pids;
        size_t n, allocated;
        int r;
} PidList;

static void pid_list_add(pid_t pid, void *userdata) {
        PidList *l = userdata;

        if (l->r < 0)
                return;
        if (l->n == l->allocated) {
                size_t a = MAX(l->allocated * 2, (size_t) 64);
                pid_t *p = reallocarray(l->pids, a, sizeof *p);
                if (!p) {
                        l->r = -ENOMEM;
                        return;
                }
                l->pids = p;
                l->allocated = a;
        }
        l->pids[l->n++] = pid;
}

int cgroup_child_procs(Cgroup *cgroup, CgroupChild child, pid_t **ret_pids, size_t *ret_n) {
        PidList l = {};
        int r;

        assert_return(cgroup && ret_pids && ret_n, -EINVAL);
        if (!cgroup_is_live(cgroup))
                return -ESTALE;
        CgroupNode *n = child_node(cgroup, child);
        if (!n)
                return -ENOENT;
        r = cg_for_each_pid_full(n->dirs[0].fd, "cgroup.procs", pid_list_add, &l);
        if (r >= 0 && l.r < 0)
                r = l.r;
        if (r < 0) {
                free(l.pids);
                return r;
        }
        *ret_pids = l.pids;
        *ret_n = l.n;
        return 0;
}

int cgroup_get_memory_current(Cgroup *cgroup, uint64_t *ret_bytes) {
        assert_return(cgroup && ret_bytes, -EINVAL);
        if (!node_is_live(&cgroup->self))
                return -ESTALE;
        return cgroup->ops->get_memory_current(cgroup, ret_bytes);
}
