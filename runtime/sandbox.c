/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The parent's side: prepare everything as host root (state directory, id range, the cgroup, the
 * union and its FUSE server, detached mount trees, the seccomp program), clone the sandbox's init
 * into new namespaces, map its ids, let it go, and later collect it and remove every trace.
 *
 * Where things live (STATE = SandboxConfig.state_dir, default /run/sandbox; DATA = .data_dir, default
 * /var/lib/sandbox, on disk: a throw-away upper may grow to the disk quota, 10 GiB by default, which a
 * /run of a tenth of the RAM could not hold; the image store's default is the same directory, whose
 * entries do not meet ours):
 *   STATE/ID/root            the union's mount point inside the sandbox's mount namespace only
 *   STATE/ID/lock            flock()ed while the sandbox's owner lives
 *   STATE/images/host-KEY    the generated host image, built once per state of the host's /etc (image.c)
 *   DATA/sandboxes/ID/       mode 0700: lock, upper/, work/, hostname/ (a layer over the host image for
 *                            another host name, and over an image of the store for its /etc/hosts,
 *                            hostname and resolv.conf)
 * An image of the store (--image NAME) is looked up, pinned and its config applied first (image-run.c);
 * its layers, in the store, are the union's lowest layers.
 * STATE and STATE/ID are 0711 so the child, unprivileged on the host, can reach root/ by name; DATA
 * is 0700 root: only the union's server (root) uses it.
 *
 * Threads: sandbox_start() and sandbox_cleanup() may run on several threads at once (sandboxd does).
 * Each sandbox's state is its own; what is shared is serialized here: the seccomp compiler
 * (libseccomp keeps process-wide state) and its cache, the build of the shared host image, and the
 * network (net/ reads and changes the bridges and the NAT table as a whole, one caller at a time).
 * cgroup.c's caches are atomics, the id pool and address leases are file locks, and what
 * sandbox_setup_cgroups() records is written before the caller makes its threads. The child of clone()
 * is a copy of one thread: see spawn.c for what it may do; the union server's child likewise makes
 * only system calls before it executes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"
#include "filter.h"
#include "macro.h"
#include "parse.h"
#include "rmtree.h"
#include "rootattr.h"
#include "runtime.h"
#include "sandbox-internal.h"
#include "sandbox.h"
#include "time-util.h"
#include "vmclone.h"

#define DEFAULT_STATE_DIR "/run/sandbox"
#define DEFAULT_DATA_DIR "/var/lib/sandbox"
/* A sandbox does not start on a file system with less free than this: it would fail at once, and
 * take the host's last space with it. The data directory holds the throw-away uppers. */
#define DATA_MIN_FREE (UINT64_C(64) << 20)
#define DATA_MIN_INODES UINT64_C(4096)
#define STATE_MIN_FREE (UINT64_C(1) << 20)
#define STATE_MIN_INODES UINT64_C(256)
/* The union's server: threads= (default 16) workers and the main thread, with room to spare; its
 * share of the sandbox's CPU bound is the highest weight, so a spinning program does not starve
 * the file system it waits for. */
#define UNION_PIDS_MAX UINT64_C(64)
#define UNION_CPU_WEIGHT 10000u
#define DEFAULT_ID_BASE 0x40000000u
#define DEFAULT_ID_RANGES 4096u
#define START_TIMEOUT_MS 60000
#define DEFAULT_HOSTNAME IMAGE_DEFAULT_HOSTNAME
/* sandbox-unionfs's UNION_MAX_LOWER: the lower layers a union takes. */
#define UNION_LOWERS_MAX 128

/* Lock order: none is taken while another is held. */
static pthread_mutex_t filter_lock = PTHREAD_MUTEX_INITIALIZER; /* libseccomp, the filter cache */
static pthread_mutex_t image_lock = PTHREAD_MUTEX_INITIALIZER;  /* building the shared host image */
static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;    /* net_attach(), net_detach() */


int sandbox_set_error(SandboxError *e, int status, const char *fmt, ...) {
        va_list ap;
        if (e) {
                e->status = status;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof e->message, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

#define set_error sandbox_set_error

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *s = '/';
                }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* sandbox-unionfs next to us (installed, or a build tree's unionfs/), else the installed one. */
static int find_unionfs(const SandboxConfig *cfg, char *buf, size_t size) {
        char self[2048];
        ssize_t n;

        if (cfg && cfg->unionfs_binary) {
                snprintf(buf, size, "%s", cfg->unionfs_binary);
                return access(buf, X_OK) < 0 ? -errno : 0;
        }
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        snprintf(buf, size, "%s/sandbox-unionfs", self);
                        if (access(buf, X_OK) == 0)
                                return 0;
                        snprintf(buf, size, "%s/../unionfs/sandbox-unionfs", self);
                        if (access(buf, X_OK) == 0)
                                return 0;
                }
        }
        snprintf(buf, size, "%s/sandbox-unionfs", SANDBOX_BINDIR);
        return access(buf, X_OK) < 0 ? -errno : 0;
}

/* lowerdir= takes ':' and ',' as separators; escape them (and '\') in a path. */
static int append_escaped(char **buf, size_t *len, const char *s) {
        size_t need = *len + 2 * strlen(s) + 2;
        char *n = realloc(*buf, need);
        if (!n)
                return -ENOMEM;
        *buf = n;
        for (; *s; s++) {
                if (*s == ':' || *s == ',' || *s == '\\')
                        n[(*len)++] = '\\';
                n[(*len)++] = *s;
        }
        n[*len] = '\0';
        return 0;
}

static int append(char **buf, size_t *len, const char *s) {
        size_t l = strlen(s);
        char *n = realloc(*buf, *len + l + 1);
        if (!n)
                return -ENOMEM;
        memcpy(n + *len, s, l + 1);
        *buf = n;
        *len += l;
        return 0;
}

/* Why the union's server could not start, on the pipe that its execve() closes. */
typedef struct UnionStartReport {
        int step;       /* UNION_STEP_* */
        int error;
} UnionStartReport;

enum {
        UNION_STEP_CGROUP,      /* moving itself into its cgroup (v1) */
        UNION_STEP_EXEC,        /* setting up its fds, or its execve() */
};

/* What the union server's child reads until it executes: at the start of the mapping that is also its
 * stack (CLONE_VFORK: we unmap it once it executed). */
typedef struct UnionChild {
        int procs[CGROUP_PROCS_FDS_MAX];
        size_t n_procs;
        int exec_w, fuse_fd, quota_w;
        char binary[4200];
        char opts[];
} UnionChild;

/* The union server's child, before it executes sandbox-unionfs: plain system calls only (it shares the
 * daemon's memory, vmclone.h). Its failure goes to EXEC_W. */
static int union_server_exec(const UnionChild *c, const char *opts) {
        UnionStartReport rep = { .step = UNION_STEP_CGROUP };

        /* v1: into its cgroup, every hierarchy, before anything else ("0": the writer). */
        for (size_t i = 0; i < c->n_procs; i++) {
                ssize_t k;
                do
                        k = write(c->procs[i], "0", 1);
                while (k < 0 && errno == EINTR);
                if (k != 1) {
                        rep.error = k < 0 ? errno : EIO;
                        (void) !write(c->exec_w, &rep, sizeof rep);
                        return 127;
                }
        }
        rep.step = UNION_STEP_EXEC;

        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int fuse = fcntl(c->fuse_fd, F_DUPFD_CLOEXEC, 5);
        /* Shielded from the OOM killer where we may lower the score (CAP_SYS_RESOURCE): without it the
         * sandbox's file system is gone. Elsewhere the program's +1000 keeps it the first choice. The
         * server's memory is bounded by the sandbox's cgroup either way. */
        int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (adj >= 0) {
                (void) !write(adj, "-1000", 5);
                close(adj);
        }
        /* Its own session: a terminal's ^C is for the program, not for its filesystem. */
        (void) setsid();
        if (fuse < 0 || null < 0 || dup2(fuse, 3) < 0 || (c->quota_w >= 0 && dup2(c->quota_w, 4) < 0) ||
            dup2(null, 0) < 0 || dup2(null, 1) < 0) {
                rep.error = errno;
                (void) !write(c->exec_w, &rep, sizeof rep);
                return 127;
        }
        /* The fd table came whole from the parent (other sandboxes' fds too): exec closes all but stdio,
         * the FUSE connection and the quota pipe. */
        (void) syscall(SYS_close_range, c->quota_w >= 0 ? 5U : 4U, ~0U, CLOSE_RANGE_CLOEXEC);
        sigset_t none;
        sigemptyset(&none);
        (void) syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8);
        const char *const argv[] = { "sandbox-unionfs", "-f", "-o", opts, "/dev/fd/3", NULL };
        (void) syscall(SYS_execve, c->binary, argv, environ);
        rep.error = errno;
        (void) !write(c->exec_w, &rep, sizeof rep);
        return 127;
}

static int union_server_child(void *arg) {
        const UnionChild *c = arg;

        return union_server_exec(c, c->opts);
}

/* The union's server, in the sandbox's cgroup (its "union" child: born there on v2, moving itself there
 * before it executes anything on v1), so that what it does for the sandbox (copy-up, the page cache
 * of the upper's writes) is charged to the sandbox; in its own session; with the disk quota and a
 * pipe on which it reports the first write refused at it. Returns once the server executed (it shares
 * our memory until then, vmclone.h), or as soon as a copy of us exists where it cannot; *RET_EXEC_FD says
 * whether it could (union_server_started()). lowerdir=: the --layer
 * directories, HOST_LAYER (the per-sandbox /etc layer, or NULL), then IMAGE (a directory) or else the
 * N_IMAGE_LAYERS of an image of the store. */
static int start_union_server(Sandbox *s, const SandboxConfig *cfg, const char *image, char *const *image_layers,
                              size_t n_image_layers, const char *host_layer, const char *upper, const char *work,
                              bool throwaway, int fuse_fd, int *ret_exec_fd, SandboxError *err) {
        _cleanup_free_ char *opts = NULL;
        _cleanup_close_ int quota_w = -EBADF, exec_r = -EBADF, exec_w = -EBADF, cgroup_fd = -EBADF;
        int procs[CGROUP_PROCS_FDS_MAX];
        size_t n_procs = 0;
        char binary[4200], idmap[96], quota[128] = "";
        size_t len = 0;
        int r;

        r = find_unionfs(cfg, binary, sizeof binary);
        if (r < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot find sandbox-unionfs: %s", strerror(-r));

        r = append(&opts, &len, "lowerdir=");
        for (size_t i = 0; r >= 0 && i < s->spec->n_layers; i++) {
                r = append_escaped(&opts, &len, s->spec->layers[i]);
                if (r >= 0)
                        r = append(&opts, &len, ":");
        }
        if (r >= 0 && host_layer) {
                r = append_escaped(&opts, &len, host_layer);
                if (r >= 0)
                        r = append(&opts, &len, ":");
        }
        if (r >= 0 && image)
                r = append_escaped(&opts, &len, image);
        for (size_t i = 0; r >= 0 && !image && i < n_image_layers; i++) {
                r = append_escaped(&opts, &len, image_layers[i]);
                if (r >= 0 && i + 1 < n_image_layers)
                        r = append(&opts, &len, ":");
        }
        if (r >= 0)
                r = append(&opts, &len, ",upperdir=");
        if (r >= 0)
                r = append_escaped(&opts, &len, upper);
        if (r >= 0)
                r = append(&opts, &len, ",workdir=");
        if (r >= 0)
                r = append_escaped(&opts, &len, work);
        snprintf(idmap, sizeof idmap, ",uidmapping=0:%u:%u,gidmapping=0:%u:%u", s->host_first,
                 SANDBOX_IDS_PER_RANGE, s->host_first, SANDBOX_IDS_PER_RANGE);
        if (r >= 0)
                r = append(&opts, &len, idmap);
        /* A throw-away upper needs no durability (volatile: no fsync of copy-ups, fsync() does nothing),
         * and no kernel overlayfs mounts it: metacopy=on, so that metadata changes (a chown -R of the
         * image, say) copy up no data (the layer tools read such files from the lowers or refuse them,
         * docs/layers.md). A kept upper (--upper) keeps both off, so that any overlayfs and every
         * sandbox-layer verb reads it as it is. */
        if (r >= 0 && throwaway)
                r = append(&opts, &len, ",volatile,metacopy=on");
        /* The disk quota: what the sandbox may add to its upper (a kept one counts what it holds). */
        if (s->spec->disk_max != SPEC_UNLIMITED)
                snprintf(quota, sizeof quota, ",quota_bytes=%llu", (unsigned long long) s->spec->disk_max);
        if (s->spec->disk_inodes_max != SPEC_UNLIMITED)
                snprintf(quota + strlen(quota), sizeof quota - strlen(quota), ",quota_inodes=%llu",
                         (unsigned long long) s->spec->disk_inodes_max);
        if (r >= 0 && *quota) {
                r = append(&opts, &len, quota);
                if (r >= 0)
                        r = append(&opts, &len, ",quota_notify_fd=4");
        }
        if (r < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");

        if (*quota) {
                int q[2];
                if (pipe2(q, O_CLOEXEC) < 0)
                        return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: pipe: %m");
                s->quota_fd = q[0];
                (void) fcntl(s->quota_fd, F_SETFL, O_NONBLOCK);
                /* Above 4, so that moving the fds into place in the child clobbers none of them. */
                quota_w = fcntl(q[1], F_DUPFD_CLOEXEC, 5);
                safe_close(q[1]);
        }
        /* The child says why it failed before it could execute; a successful exec closes it. */
        {
                int e[2];
                if (pipe2(e, O_CLOEXEC) < 0)
                        return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: pipe: %m");
                exec_r = e[0];
                exec_w = fcntl(e[1], F_DUPFD_CLOEXEC, 5);
                safe_close(e[1]);
        }
        if ((*quota && quota_w < 0) || exec_w < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: %m");

        /* v2: born in its cgroup, as the init is; v1 (no fd): it moves itself there, through the
         * cgroup.procs files we open now, before it executes anything. The child is a copy of this one
         * thread (the caller may have others, sandboxd does): until it executes it makes plain system
         * calls only, as the init's child does (spawn.c). */
        cgroup_fd = cgroup_child_v2_fd(s->cgroup, CGROUP_CHILD_UNION);
        if (cgroup_fd < 0) {
                r = cgroup_child_procs_open(s->cgroup, CGROUP_CHILD_UNION, procs, &n_procs);
                if (r < 0)
                        return set_error(err, SANDBOX_EXIT_SETUP, "Cannot move the union server into its cgroup: %s",
                                         strerror(-r));
        }
        /* It shares our memory until it executes (CLONE_VFORK: this thread waits that long, on v1 through
         * its move into its cgroup) rather than copying this process (vmclone.h); a copy where the
         * trampoline is missing. Measured on v1: 1 to 1.7 ms less CPU per sandbox, and no slower a start
         * (docs/performance.md). */
        size_t opts_len = strlen(opts) + 1;
        size_t size = ((sizeof(UnionChild) + opts_len + 4095U) & ~(size_t) 4095U) + VMCLONE_STACK_SIZE;
        UnionChild *child = HAVE_VMCLONE ? vmclone_stack(size) : NULL;
        UnionChild copy_child = {};
        if (!child)
                child = &copy_child;
        memcpy(child->procs, procs, n_procs * sizeof procs[0]);
        child->n_procs = n_procs;
        child->exec_w = exec_w;
        child->fuse_fd = fuse_fd;
        child->quota_w = quota_w;
        snprintf(child->binary, sizeof child->binary, "%s", binary);
        struct clone_args ca = {
                .flags = CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t) (uintptr_t) &s->server_pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = cgroup_fd >= 0 ? (uint64_t) cgroup_fd : 0,
        };
        if (child != &copy_child) {
                memcpy(child->opts, opts, opts_len);
                r = vmclone(&ca, union_server_child, child, child, size);
                /* It executed or ended: the mapping is ours again. */
                vmclone_stack_free(child, size);
        } else {
                /* A copy: it reads OPTS where it is. */
                r = (int) syscall(SYS_clone3, &ca, sizeof ca);
                if (r == 0)
                        _exit(union_server_exec(child, opts));
                r = r < 0 ? -errno : r;
        }
        if (r < 0) {
                s->server_pid = 0;
                for (size_t i = 0; i < n_procs; i++)
                        safe_close(procs[i]);
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: %s", strerror(-r));
        }
        s->server_pid = r;
        for (size_t i = 0; i < n_procs; i++)
                safe_close(procs[i]);
        *ret_exec_fd = TAKE_FD(exec_r);
        return 0;
}

/* The union's server executed (EOF on EXEC_FD), or why it could not. Until then a request to the union
 * (the init's first lookups) just waits in the kernel's queue. */
static int union_server_started(int exec_fd, SandboxError *err) {
        UnionStartReport rep = {};
        ssize_t n;

        do
                n = read(exec_fd, &rep, sizeof rep);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: %m");
        if (n == 0)
                return 0;
        if (n != (ssize_t) sizeof rep)
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: short report");
        if (rep.step == UNION_STEP_CGROUP)
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot move the union server into its cgroup: %s",
                                 strerror(rep.error));
        return set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the union server: %s", strerror(rep.error));
}

static int write_proc_file(pid_t pid, const char *name, const char *content) {
        char path[64];
        _cleanup_close_ int fd = -EBADF;
        size_t n = strlen(content);

        snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, content, n) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

char **sandbox_build_env(const SandboxSpec *spec, char *const *extra, size_t n_extra, uint32_t uid) {
        const char *term = getenv("TERM");
        size_t total = spec->n_env + n_extra, n = 0;
        char **env = calloc(total + 4, sizeof(char *));

        if (!env)
                return NULL;
        static const char *const defaults[] = {
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL, NULL,
        };
        char home[32], termbuf[256];
        snprintf(home, sizeof home, "HOME=%s", uid == 0 ? "/root" : "/");
        const char *d[3] = { defaults[0], home, NULL };
        if (term && strlen(term) < 200) {
                snprintf(termbuf, sizeof termbuf, "TERM=%s", term);
                d[2] = termbuf;
        }
        /* The spec's entries, then EXTRA's: entry I of the two lists together. */
#define ENTRY(i) ((i) < spec->n_env ? spec->env[i] : extra[(i) - spec->n_env])
        for (size_t i = 0; i < 3; i++) {
                if (!d[i])
                        continue;
                size_t klen = strchr(d[i], '=') - d[i] + 1;
                bool overridden = false;
                for (size_t j = 0; j < total; j++)
                        if (strncmp(ENTRY(j), d[i], klen) == 0)
                                overridden = true;
                if (!overridden && !(env[n++] = strdup(d[i])))
                        goto oom;
        }
        for (size_t j = 0; j < total; j++) {
                /* The last of duplicate user entries wins. */
                size_t klen = strchr(ENTRY(j), '=') - ENTRY(j) + 1;
                bool later = false;
                for (size_t k = j + 1; k < total; k++)
                        if (strncmp(ENTRY(k), ENTRY(j), klen) == 0)
                                later = true;
                if (!later && !(env[n++] = strdup(ENTRY(j))))
                        goto oom;
        }
#undef ENTRY
        return env;
oom:
        sandbox_strv_free(env);
        return NULL;
}

void sandbox_strv_free(char **v) {
        if (v)
                for (char **p = v; *p; p++)
                        free(*p);
        free(v);
}

static void strv_freep(char ***v) {
        sandbox_strv_free(*v);
        *v = NULL;
}

static const char *error_name(int e) {
        return strerror(e);
}

/* Wait for the init's first word: started, or why not. CANCEL_FD readable: stop waiting. */
static int wait_started(Sandbox *s, int cancel_fd, SandboxError *err) {
        ChildMessage m = {};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof m };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        struct pollfd p[2] = {
                { .fd = s->status_fd, .events = POLLIN },
                { .fd = cancel_fd, .events = POLLIN },
        };
        uint64_t deadline = now_usec() + (uint64_t) START_TIMEOUT_MS * 1000;
        ssize_t n;
        int r;

        for (;;) {
                uint64_t now = now_usec();
                r = now >= deadline ? 0 : poll(p, cancel_fd >= 0 ? 2 : 1, (int) ((deadline - now + 999) / 1000));
                if (r >= 0 || errno != EINTR)
                        break;
        }
        if (r == 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "The sandbox did not start within %d s", START_TIMEOUT_MS / 1000);
        if (r > 0 && !(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                set_error(err, SANDBOX_EXIT_SETUP, "The start was cancelled");
                return -ECANCELED;
        }
        n = recvmsg(s->status_fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Lost the sandbox's init: %m");
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&s->pty_fd, CMSG_DATA(cm), sizeof(int));
        if (n != sizeof m)
                return set_error(err, SANDBOX_EXIT_SETUP, "The sandbox's init ended during set-up");
        s->init_said = true;

        switch (m.type) {
        case CHILD_CREATED:
        case CHILD_STARTED:
                if (s->spec->tty && s->pty_fd < 0)
                        return set_error(err, SANDBOX_EXIT_SETUP, "No terminal came back from the sandbox");
                return 0;
        case CHILD_EXEC_FAILED:
                if (m.error == ENOENT)
                        return set_error(err, SANDBOX_EXIT_NOT_FOUND, "%s: command not found", s->spec->argv[0]);
                return set_error(err, SANDBOX_EXIT_CANNOT_EXEC, "%s: cannot execute: %s", s->spec->argv[0],
                                 error_name(m.error));
        case CHILD_SETUP_FAILED: {
                const char *what = "";
                if (m.step == STEP_BIND && m.detail >= 0 && (size_t) m.detail < s->spec->n_binds)
                        what = s->spec->binds[m.detail].dest;
                else if (m.step == STEP_TMPFS && m.detail >= 0 && (size_t) m.detail < s->spec->n_tmpfs)
                        what = s->spec->tmpfs[m.detail].dest;
                else if (m.step == STEP_WORKDIR)
                        what = s->spec->workdir ?: "/";
                return set_error(err, SANDBOX_EXIT_SETUP, "Failed to %s%s%s%s: %s", child_step_to_string(m.step),
                                 *what ? " '" : "", what, *what ? "'" : "", error_name(m.error));
        }
        default:
                return set_error(err, SANDBOX_EXIT_SETUP, "The sandbox's init said something unexpected");
        }
}

/* ---- sandbox_start(): one ordered list of named steps ----
 *
 * Everything a step makes is kept in the Start context (or the Sandbox) so that one failure path
 * undoes it all: sandbox_finish() kills what runs and removes what was made. The steps run in the
 * order of docs/security.md; each returns 0 or a negative errno with the error message set. */

typedef struct Start {
        Sandbox *s;
        const SandboxSpec *spec;
        const SandboxConfig *cfg;
        const int *stdio;
        int cancel_fd;          /* readable: give up waiting for the init */
        bool idle;              /* SANDBOX_START_IDLE */
        bool deferred;          /* SANDBOX_START_DEFERRED */
        bool hold;              /* sandbox_create() */
        int program_umask;
        SandboxError *err;

        FilterProgram *filter;
        char *root_path, *image_path, *host_layer_path, *upper_path, *work_path;
        char *const *image_layers;      /* --image NAME: its layers (the ImageRun's), topmost first */
        size_t n_image_layers;
        char **envp;
        ChildBind *binds;       /* spec->n_binds entries */
        int fuse_fd;            /* /dev/fuse, until the server holds it */
        int union_fd;           /* the union, a detached mount, until the child has it */
        int usr_fd;             /* the host's /usr, detached */
        int cgroup_fd;          /* v2: for CLONE_INTO_CGROUP */
        int resolv_fd;          /* DATA/sandboxes/ID/resolv.conf, detached, until the child has it */
        int union_exec_fd;      /* the union's server executed (EOF), or says why not; until step_union_started */
        struct in_addr dns[3];  /* the IPv4 name servers it names */
        size_t n_dns;
        int sp[2];              /* the status socket: ours, the child's */
        uint64_t cap_bounding;  /* the program's capabilities (step_capabilities) */
        uint64_t cap_permitted;
        uint64_t cap_ambient;
        char oom_score_adj[16]; /* SandboxConfig.oom_score_adj, or PROGRAM_OOM_SCORE_ADJ */
} Start;

static void start_done(Start *st) {
        filter_program_free(st->filter);
        free(st->root_path);
        free(st->image_path);
        free(st->host_layer_path);
        free(st->upper_path);
        free(st->work_path);
        strv_freep(&st->envp);
        for (size_t i = 0; st->binds && i < st->spec->n_binds; i++)
                safe_close(st->binds[i].tree_fd);
        free(st->binds);
        safe_close(st->fuse_fd);
        safe_close(st->union_fd);
        safe_close(st->usr_fd);
        safe_close(st->cgroup_fd);
        safe_close(st->resolv_fd);
        safe_close(st->union_exec_fd);
        safe_close(st->sp[0]);
        safe_close(st->sp[1]);
}

#define OOM(st) set_error((st)->err, SANDBOX_EXIT_SETUP, "Out of memory")

/* --image NAME: look it up in the store, pin it, and apply its config (image-run.c), before anything is
 * made: a missing image or a user it does not have costs nothing. */
static int step_store_image(Start *st) {
        Sandbox *s = st->s;
        const char *verr = NULL;
        char why[sizeof st->err->message];
        size_t n_layers;
        int r;

        if (!st->spec->image_ref)
                return 0;
        r = image_run_prepare(st->cfg ? st->cfg->store : NULL, st->spec, !st->idle, &s->image_run, why, sizeof why);
        if (r == -ENOMEM)
                return OOM(st);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "%s", why);
        image_run_apply(s->image_run, &s->resolved);
        /* What the image gave is bounded as a command line is. */
        if (spec_validate_flags(&s->resolved, st->idle ? SPEC_VALIDATE_NO_COMMAND : 0, &verr) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--image '%s': with its config: %s",
                                 st->spec->image_ref, verr);
        st->image_layers = image_run_layers(s->image_run, &n_layers);
        st->n_image_layers = n_layers;
        /* The union's lowers: the --layer directories, our /etc layer, the image's. */
        if (st->spec->n_layers + 1 + n_layers > UNION_LOWERS_MAX)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--image '%s': its %zu layers and %zu --layer "
                                 "directories are more than the %d lower layers a union takes",
                                 st->spec->image_ref, n_layers, st->spec->n_layers, UNION_LOWERS_MAX - 1);
        return 0;
}

/* Check what the user named before building anything, for messages that name it. */
static int step_check_paths(Start *st) {
        const SandboxSpec *spec = st->spec;
        struct stat sb;

        if (spec->image && (stat(spec->image, &sb) < 0 || !S_ISDIR(sb.st_mode)))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--image '%s': %s", spec->image,
                                 errno && !S_ISDIR(sb.st_mode) ? strerror(errno) : "not a directory");
        for (size_t i = 0; i < spec->n_layers; i++)
                if (stat(spec->layers[i], &sb) < 0 || !S_ISDIR(sb.st_mode))
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "--layer '%s': not a directory", spec->layers[i]);
        for (size_t i = 0; i < spec->n_binds; i++) {
                const SpecBind *b = &spec->binds[i];
                int fd = spec->bind_fds ? spec->bind_fds[i] : -EBADF;

                if (b->by_fd && fd < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "--bind '%s': no descriptor came for it",
                                         b->source);
                if ((fd >= 0 ? fstat(fd, &sb) : stat(b->source, &sb)) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "--bind '%s': %m", b->source);
                /* What root inside writes there becomes the source owner's: never host root's (a
                 * set-uid file, or file capabilities, made there by the sandbox would then be real). */
                if (b->idmap && (sb.st_uid == 0 || sb.st_gid == 0))
                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                         "--bind '%s:%s:idmap': the source belongs to %s %u; files the sandbox "
                                         "writes there would be host root's: idmap only to another owner "
                                         "(chown the source to the user the files are for)", b->source, b->dest,
                                         sb.st_uid == 0 ? "uid" : "gid",
                                         (unsigned) (sb.st_uid == 0 ? sb.st_uid : sb.st_gid));
        }
        return 0;
}

/* The program's capabilities (docs/security.md, "Capabilities"): as uid 0 inside, the set the spec
 * asks for (the default set unless --cap-add/--cap-drop) as permitted and effective; as another uid
 * only what was added explicitly, as ambient capabilities; either way no more than that set in its
 * bounding set. They are checked against the kernel's list here, before anything is made. */
static int step_capabilities(Start *st) {
        const SandboxSpec *spec = st->spec;
        uint64_t set = spec_capabilities(spec), known = SPEC_CAPS_ALL;
        _cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
        unsigned last;

        if (f && fscanf(f, "%u", &last) == 1 && last < SPEC_CAP_LAST)
                known = (UINT64_C(1) << (last + 1)) - 1;
        if (set & ~known) {
                char names[256];
                spec_caps_format(set & ~known, names, sizeof names);
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--cap-add: this kernel does not know %s", names);
        }
        st->cap_bounding = set;
        st->s->cap_set = set;
        st->cap_permitted = spec->uid == 0 ? set : spec_capabilities_added(spec);
        st->cap_ambient = spec->uid == 0 ? 0 : st->cap_permitted;
        return 0;
}

/* A kept upper: created (0700, ours) when missing, and locked for the sandbox's life. Two sandboxes
 * writing one upper through two unions would corrupt it (each union caches what it saw). */
static int step_upper_lock(Start *st) {
        const char *upper = st->spec->upper;
        Sandbox *s = st->s;
        struct stat sb;

        if (!upper)
                return 0;
        if (mkdir(upper, 0700) >= 0) {
                /* Whatever our umask: 0700, owned by root (us), like a fresh throw-away upper's data. */
                if (chmod(upper, 0700) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "--upper '%s': %m", upper);
        } else if (errno != EEXIST)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--upper '%s': cannot create it: %m%s", upper,
                                 errno == ENOENT ? " (its parent directory must exist)" : "");
        s->upper_lock_fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->upper_lock_fd < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--upper '%s': %s", upper,
                                 errno == ENOTDIR ? "not a directory" : strerror(errno));
        if (fstat(s->upper_lock_fd, &sb) < 0 || !S_ISDIR(sb.st_mode))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--upper '%s': not a directory", upper);
        if (flock(s->upper_lock_fd, LOCK_EX | LOCK_NB) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "--upper '%s': %s", upper,
                                 errno == EWOULDBLOCK ? "in use by another sandbox (an upper serves one sandbox at "
                                                        "a time)" : strerror(errno));
        return 0;
}

/* Refuse to start on a file system too full for a sandbox: it would fail at once, and take what the
 * host has left. What an unprivileged user may still use counts, not root's reserve. */
static int check_free(Start *st, int fd, const char *what, const char *path, uint64_t min_free,
                      uint64_t min_inodes) {
        struct statvfs sv;
        char a[32], b[32];

        if (fstatvfs(fd, &sv) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot check the free space of the %s '%s': %m",
                                 what, path);
        uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
        if (avail < min_free)
                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                 "The %s '%s' is too full to start a sandbox: %s free, at least %s needed", what,
                                 path, format_size(avail, a, sizeof a), format_size(min_free, b, sizeof b));
        /* Some file systems have no inode count (f_files 0): nothing to check there. */
        if (sv.f_files > 0 && (uint64_t) sv.f_favail < min_inodes)
                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                 "The %s '%s' is too full to start a sandbox: %llu inodes free, at least %llu needed",
                                 what, path, (unsigned long long) sv.f_favail, (unsigned long long) min_inodes);
        return 0;
}

/* A directory of ours (made with MODE if missing): owned by root and writable by nobody else. */
static int open_own_dir(Start *st, const char *what, const char *path, mode_t mode, int *ret_fd) {
        struct stat sb;
        int r;

        r = mkdir_p(path, mode);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the %s '%s': %s", what, path,
                                 strerror(-r));
        *ret_fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*ret_fd < 0 || fstat(*ret_fd, &sb) < 0 || sb.st_uid != 0 || (sb.st_mode & 022))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "The %s '%s' must be a directory owned "
                                 "by root and writable by nobody else", what, path);
        return 0;
}

static int step_state_dir(Start *st) {
        Sandbox *s = st->s;
        _cleanup_close_ int data = -EBADF;
        int r;

        r = open_own_dir(st, "state directory", s->state_dir, 0711, &s->state_fd);
        if (r < 0)
                return r;
        r = check_free(st, s->state_fd, "state directory", s->state_dir, STATE_MIN_FREE, STATE_MIN_INODES);
        if (r < 0)
                return r;
        /* The data directory holds the throw-away uppers: only the union's server (root) goes there. */
        r = open_own_dir(st, "data directory", s->data_dir, 0700, &data);
        if (r < 0)
                return r;
        r = check_free(st, data, "data directory", s->data_dir, DATA_MIN_FREE, DATA_MIN_INODES);
        if (r < 0)
                return r;
        if (mkdirat(data, "sandboxes", 0700) < 0 && errno != EEXIST)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create '%s/sandboxes': %m", s->data_dir);
        s->sandboxes_fd = openat(data, "sandboxes", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (s->sandboxes_fd < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot open '%s/sandboxes': %m", s->data_dir);
        return 0;
}

/* The compiled default policy is cached in the state directory (root only). */
static int step_filter(Start *st) {
        _cleanup_free_ char *why = NULL;
        _cleanup_close_ int cache = -EBADF;
        int r;

        if (mkdirat(st->s->state_fd, "cache", 0700) >= 0 || errno == EEXIST)
                cache = openat(st->s->state_fd, "cache", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        pthread_mutex_lock(&filter_lock);
        r = filter_compile_cached(st->spec->seccomp ?: "default", cache, &st->filter, &why);
        pthread_mutex_unlock(&filter_lock);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Invalid seccomp policy: %s", why ?: strerror(-r));
        return 0;
}

static int step_host_ids(Start *st) {
        const SandboxConfig *cfg = st->cfg;
        int r;

        r = idpool_acquire(IDPOOL_LOCK_DIR, cfg && cfg->host_id_base ? cfg->host_id_base : DEFAULT_ID_BASE,
                           cfg && cfg->host_id_ranges ? cfg->host_id_ranges : DEFAULT_ID_RANGES,
                           &st->s->host_first, &st->s->idlock_fd);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot get a host id range: %s", strerror(-r));
        return 0;
}

/* DIR_FD/lock, flock()ed before it has its name: a "lock" that a stale clean-up can take is a dead
 * one. */
static int make_lock(int dir_fd, int *ret_fd) {
        *ret_fd = openat(dir_fd, "lock.new", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (*ret_fd < 0 || flock(*ret_fd, LOCK_EX) < 0 || renameat(dir_fd, "lock.new", dir_fd, "lock") < 0)
                return -errno;
        return 0;
}

static int step_sandbox_dir(Start *st) {
        Sandbox *s = st->s;
        uint64_t rnd = 0;

        (void) getrandom(&rnd, sizeof rnd, 0);
        snprintf(s->id, sizeof s->id, "%016llx", (unsigned long long) rnd);
        if (mkdirat(s->state_fd, s->id, 0711) < 0 ||
            (s->dir_fd = openat(s->state_fd, s->id, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY)) < 0 ||
            fchmod(s->dir_fd, 0711) < 0 || make_lock(s->dir_fd, &s->lock_fd) < 0 ||
            mkdirat(s->dir_fd, "root", 0755) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the sandbox's directory in '%s': %m",
                                 s->state_dir);
        if (mkdirat(s->sandboxes_fd, s->id, 0700) < 0 ||
            (s->data_fd = openat(s->sandboxes_fd, s->id, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY)) < 0 ||
            make_lock(s->data_fd, &s->data_lock_fd) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                 "Cannot create the sandbox's directory in '%s/sandboxes': %m", s->data_dir);
        if (asprintf(&st->root_path, "%s/%s/root", s->state_dir, s->id) < 0) {
                st->root_path = NULL;
                return OOM(st);
        }
        return 0;
}

/* The image: the user's, or the shared host image (with the host's /usr over its /usr), under a
 * layer of its own for another host name. */
static int step_image(Start *st) {
        const SandboxSpec *spec = st->spec;
        Sandbox *s = st->s;
        _cleanup_close_ int images = -EBADF, etc = -EBADF;
        _cleanup_free_ char *name = NULL;
        char why[256] = "";
        int r;

        if (spec->image) {
                st->image_path = strdup(spec->image);
                return st->image_path ? 0 : OOM(st);
        }
        if (spec->image_ref) {
                /* Its /etc/hostname and /etc/hosts name this sandbox, as the host image's do; an empty
                 * /etc/resolv.conf is where the child binds ours (an image may have none, or a symlink). */
                r = image_make_hostname_layer(s->data_fd, "hostname", spec->hostname ?: DEFAULT_HOSTNAME);
                if (r >= 0 && spec->net != SPEC_NET_NONE) {
                        _cleanup_close_ int fd = openat(s->data_fd, "hostname/etc/resolv.conf",
                                                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                                        0644);
                        r = fd < 0 || fchmod(fd, 0644) < 0 ? -errno : 0;
                }
                if (r < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                         "Cannot create the /etc layer of the sandbox: %s", strerror(-r));
                if (asprintf(&st->host_layer_path, "%s/sandboxes/%s/hostname", s->data_dir, s->id) < 0) {
                        st->host_layer_path = NULL;
                        return OOM(st);
                }
                return 0;
        }
        if ((mkdirat(s->state_fd, "images", 0700) < 0 && errno != EEXIST) ||
            (images = openat(s->state_fd, "images", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY)) < 0 ||
            (etc = open("/etc", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY)) < 0)
                r = -errno;
        else {
                /* One thread at a time in this process: after a change of the host's /etc, one builds
                 * the new image and the others find it built (other processes are kept apart by
                 * image.c's locks, at the cost of a copy each). */
                pthread_mutex_lock(&image_lock);
                r = image_host_acquire(images, etc, &name, &s->image_lock_fd, why, sizeof why);
                pthread_mutex_unlock(&image_lock);
        }
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the host image: %s",
                                 why[0] ? why : strerror(-r));
        if (asprintf(&st->image_path, "%s/images/%s", s->state_dir, name) < 0) {
                st->image_path = NULL;
                return OOM(st);
        }
        if (spec->hostname && !streq(spec->hostname, DEFAULT_HOSTNAME)) {
                /* Its /etc/hosts and /etc/hostname name this sandbox. */
                r = image_make_hostname_layer(s->data_fd, "hostname", spec->hostname);
                if (r < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the host name layer: %s",
                                         strerror(-r));
                if (asprintf(&st->host_layer_path, "%s/sandboxes/%s/hostname", s->data_dir, s->id) < 0) {
                        st->host_layer_path = NULL;
                        return OOM(st);
                }
        }
        return 0;
}

/* A kept upper holds what the sandbox wrote, set-id files and files of any owner among it: its root on
 * disk becomes private (root's, 0700), the mode and owner the sandbox sees for / recorded in it
 * (common/rootattr.h; sandbox-unionfs shows the record). An upper that has no record yet shows what
 * it is, unless it is empty (new): that one shows 0755 root:root, as a throw-away upper does. */
static int make_upper_private(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = NULL;
        RootAttr logical;
        struct dirent *de;
        bool empty = true;
        int r;

        if (fd < 0)
                return -errno;
        r = rootattr_read(fd, ROOTATTR_NS_TRUSTED, &logical);
        if (r == -EINVAL)
                return -EBADMSG;
        if (r < 0)
                return r;
        if (r == 0) {
                d = fdopendir(fcntl(fd, F_DUPFD_CLOEXEC, 3));
                if (!d)
                        return -errno;
                while ((de = readdir(d)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                                empty = false;
                                break;
                        }
                if (empty)
                        logical = (RootAttr) { .mode = 0755 };
                else {
                        r = rootattr_logical(fd, ROOTATTR_NS_TRUSTED, &logical);
                        if (r < 0)
                                return r;
                }
        }
        r = rootattr_make_private(fd, ROOTATTR_NS_TRUSTED, &logical);
        return r < 0 ? r : 0;
}

static int step_upper(Start *st) {
        const SandboxSpec *spec = st->spec;
        Sandbox *s = st->s;

        if (spec->upper) {
                /* The work directory must be on the upper's filesystem: beside it, removed at exit. */
                _cleanup_free_ char *copy = strdup(spec->upper);
                char *slash = copy ? strrchr(copy, '/') : NULL;
                if (slash) {
                        *slash = '\0';
                        if (asprintf(&s->upper_work, "%s/.%s.sandbox-work-%s", *copy ? copy : "", slash + 1, s->id) < 0)
                                s->upper_work = NULL;
                }
                if (!s->upper_work || mkdir(s->upper_work, 0700) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                         "Cannot create a work directory beside --upper '%s': %m", spec->upper);
                _cleanup_close_ int wfd = open(s->upper_work, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int r = wfd < 0 ? set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot open '%s': %m", s->upper_work)
                                : check_free(st, wfd, "file system of --upper", spec->upper, DATA_MIN_FREE,
                                             DATA_MIN_INODES);
                if (r < 0)
                        return r;
                r = make_upper_private(spec->upper);
                if (r < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "--upper '%s': cannot make its root private: %s",
                                         spec->upper, r == -EBADMSG ? "its " ROOTATTR_NS_TRUSTED ROOTATTR_XATTR
                                         " record is malformed" : strerror(-r));
                st->upper_path = strdup(spec->upper);
                st->work_path = strdup(s->upper_work);
        } else {
                /* The upper root's mode is the sandbox root's: 0755, owned by root inside. */
                if (mkdirat(s->data_fd, "upper", 0755) < 0 || fchmodat(s->data_fd, "upper", 0755, 0) < 0 ||
                    mkdirat(s->data_fd, "work", 0700) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the upper layer: %m");
                if (asprintf(&st->upper_path, "%s/sandboxes/%s/upper", s->data_dir, s->id) < 0)
                        st->upper_path = NULL;
                if (asprintf(&st->work_path, "%s/sandboxes/%s/work", s->data_dir, s->id) < 0)
                        st->work_path = NULL;
        }
        return st->upper_path && st->work_path ? 0 : OOM(st);
}

/* The union: mounted by us, detached, served by sandbox-unionfs in the host's namespaces, in the
 * sandbox's cgroup beside the program (its "union" child). It ends when the last mount of it (the
 * sandbox's) goes. */
#define UNION_DIRTY_MIN (UINT64_C(4) << 20)
#define UNION_DIRTY_MAX (UINT64_C(64) << 20)

static int step_union(Start *st) {
        int r;

        st->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (st->fuse_fd < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot open /dev/fuse: %m");
        r = mount_union_fd(st->fuse_fd, st->s->id, &st->union_fd);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the union mount: %s", strerror(-r));
        /* An eighth of the sandbox's memory may wait to be written, between 4 and 64 MiB (mount.c).
         * Best effort: before Linux 6.2 the kernel's own bound stays. */
        if (st->spec->memory_max != SPEC_UNLIMITED)
                (void) mount_union_bound_dirty(st->union_fd, MIN(MAX(st->spec->memory_max / 8, UNION_DIRTY_MIN),
                                                                 UNION_DIRTY_MAX));
        return 0;
}

/* The union's server, once the init exists. On v1 it moves itself into its cgroup, and we move the init
 * right after: the first migration makes the kernel's cgroup lock wait for an RCU grace period, the
 * second finds it still in that mode and waits for none (measured: "join the cgroup" 68-104 µs). The init
 * needs the server only after the first go (its root's lookups wait in the kernel's queue until the
 * server runs). */
static int step_union_server(Start *st) {
        int r;

        r = start_union_server(st->s, st->cfg, st->image_path, st->image_layers, st->n_image_layers,
                               st->host_layer_path, st->upper_path, st->work_path, !st->spec->upper, st->fuse_fd,
                               &st->union_exec_fd, st->err);
        if (r < 0)
                return r;
        st->fuse_fd = safe_close(st->fuse_fd); /* the server holds it now; if it dies, the mount fails fast */
        return 0;
}

/* /usr (for the host image) and every --bind source, cloned as detached trees by us, before the
 * child exists: the child, unprivileged on the host, never walks a host path. A source that came as a
 * descriptor is cloned from it and never resolved by name. An idmapped bind gets the mapping
 * "source's owner and group <-> the sandbox's root" (userns.c). */
static int step_trees(Start *st) {
        const SandboxSpec *spec = st->spec;
        _cleanup_close_ int userns = -EBADF;
        uid_t userns_uid = 0;
        gid_t userns_gid = 0;
        int r;

        if (!spec->image && !spec->image_ref) {
                bool is_dir;
                r = mount_detached_tree("/usr", true, &is_dir, &st->usr_fd);
                if (r < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot bind the host's /usr: %s", strerror(-r));
        }
        st->binds = calloc(spec->n_binds + 1, sizeof *st->binds);
        if (!st->binds)
                return OOM(st);
        for (size_t i = 0; i < spec->n_binds; i++)
                st->binds[i].tree_fd = -EBADF;
        for (size_t i = 0; i < spec->n_binds; i++) {
                const SpecBind *b = &spec->binds[i];
                _cleanup_close_ int own = -EBADF;
                int src = spec->bind_fds && spec->bind_fds[i] >= 0 ? spec->bind_fds[i] : -EBADF;
                struct stat sb;

                st->binds[i].dest = b->dest;
                if (src < 0) {
                        /* The caller is trusted with host paths (sandbox-run's root, sandboxd's root or
                         * allow-host-paths): resolved once, then used through the descriptor. */
                        own = open(b->source, O_PATH | O_CLOEXEC);
                        if (own < 0)
                                return set_error(st->err, SANDBOX_EXIT_SETUP, "--bind '%s': %m", b->source);
                        src = own;
                }
                if (b->volume) {
                        /* A volume of sandboxd: its file system, idmapped through our id range. */
                        r = volume_mount_image(src, b->readonly, st->s->host_first, st->s->host_first,
                                               &st->binds[i].tree_fd);
                        if (r < 0)
                                return set_error(st->err, SANDBOX_EXIT_SETUP, "--volume '%s:%s': cannot mount it: %s",
                                                 b->source, b->dest, strerror(-r));
                        st->binds[i].is_dir = true;
                        continue;
                }
                if (b->idmap) {
                        if (fstat(src, &sb) < 0)
                                return set_error(st->err, SANDBOX_EXIT_SETUP, "--bind '%s': %m", b->source);
                        if (sb.st_uid == 0 || sb.st_gid == 0) /* step_check_paths() said why */
                                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                                 "--bind '%s:%s:idmap': the source belongs to host root",
                                                 b->source, b->dest);
                        if (userns < 0 || userns_uid != sb.st_uid || userns_gid != sb.st_gid) {
                                userns = safe_close(userns);
                                r = userns_make_idmapping(sb.st_uid, sb.st_gid, st->s->host_first,
                                                          st->s->host_first, &userns);
                                if (r < 0)
                                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                                         "--bind '%s': cannot make its idmapping: %s", b->source,
                                                         strerror(-r));
                                userns_uid = sb.st_uid;
                                userns_gid = sb.st_gid;
                        }
                }
                r = mount_detached_tree_at(src, NULL, b->readonly, b->idmap ? userns : -EBADF, &st->binds[i].is_dir,
                                           &st->binds[i].tree_fd);
                if (r == -EOPNOTSUPP) {
                        char type[64] = "?";
                        (void) mount_fstype(src, type, sizeof type);
                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                         "--bind '%s:%s:idmap': its file system (%s) cannot be idmapped (or a "
                                         "mount below it cannot); bind it without idmap, or use a directory on "
                                         "a file system that supports idmapped mounts (ext4, xfs, btrfs, tmpfs, ...)",
                                         b->source, b->dest, type);
                }
                if (r == -EINVAL && b->by_fd)
                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                         "--bind '%s': not a directory, file or character device, or not in our "
                                         "mount namespace (the client's and sandboxd's must be the same)", b->source);
                if (r < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "--bind '%s': %s", b->source,
                                         r == -EINVAL ? "not a directory, file or character device" : strerror(-r));
        }
        return 0;
}

/* What sandbox_setup_cgroups() found, for the message of a limit that cannot be applied. */
static char cgroup_setup_note[256];
static char cgroup_setup_advice[256];
static char cgroup_setup_opt_out[160];
static bool cgroup_setup_delegated;

int sandbox_setup_cgroup_parent(const char *path) {
        CgroupLayout layout;
        int r;

        if (cgroup_detect_layout(&layout) < 0 || layout != CGROUP_LAYOUT_V2)
                return 0;
        r = cgroup_v2_set_parent(path);
        if (r < 0)
                return r;
        cgroup_setup_delegated = true;
        return 1;
}

int sandbox_remove_cgroup_parent(void) {
        return cgroup_v2_remove_parent();
}

void sandbox_set_cgroup_opt_out(const char *text) {
        snprintf(cgroup_setup_opt_out, sizeof cgroup_setup_opt_out, "%s", text ?: "");
}

int sandbox_setup_cgroups(const char *leaf, const char *advice) {
        _cleanup_free_ char *own = NULL;
        CgroupLayout layout;
        int r;

        snprintf(cgroup_setup_advice, sizeof cgroup_setup_advice, "%s", advice ?: "");
        cgroup_setup_note[0] = '\0';
        if (cgroup_detect_layout(&layout) < 0 || layout != CGROUP_LAYOUT_V2)
                return 0;
        (void) cgroup_get_own_path(NULL, &own);
        r = cgroup_v2_own_is_delegated();
        if (r == 0) {
                snprintf(cgroup_setup_note, sizeof cgroup_setup_note,
                         "our cgroup '%s' is not delegated to us (no Delegate=yes)", own ?: "?");
                return 0;
        }
        if (r > 0)
                r = cgroup_v2_prepare_delegated(leaf);
        if (r >= 0) {
                cgroup_setup_delegated = true;
                return 1;
        }
        if (r == -EBUSY)
                snprintf(cgroup_setup_note, sizeof cgroup_setup_note,
                         "our cgroup '%s' is delegated, but other processes live in it; we must be the "
                         "only one there (the scope's own command)", own ?: "?");
        else
                snprintf(cgroup_setup_note, sizeof cgroup_setup_note,
                         "our delegated cgroup '%s' could not be prepared: %s", own ?: "?", strerror(-r));
        return r;
}

/* "memory" is one of the words of LIST ("memory, pids"). */
static bool in_list(const char *list, const char *word) {
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
                        return true;
        return false;
}

/* A bound whose controller is missing: never run without it silently. Say which bounds and their
 * values, what is missing where and why (when known), how to run without them, and what to do. */
static int cgroup_unsupported_error(Start *st, const CgroupLimits *limits) {
        const SandboxSpec *spec = st->spec;
        _cleanup_free_ char *missing = NULL, *parent = NULL;
        char bounds[256] = "", lift[64] = "", opt_out[160], cause[320], v[FORMAT_SIZE_MAX];
        bool mem, pids, cpu, note;

        if (cgroup_explain_unsupported(limits, &missing, &parent) < 0 || !*missing)
                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                 "Cannot create the sandbox's cgroup: a requested limit is not supported on this host");
        mem = in_list(missing, "memory");
        pids = in_list(missing, "pids");
        cpu = in_list(missing, "cpu");

        if (mem) {
                snprintf(bounds, sizeof bounds, "the memory bound (%s%s)", format_size(spec->memory_max, v, sizeof v),
                         st->s->memory_default ? ", the default" : "");
                strcat(lift, " --memory unlimited");
        }
        if (pids) {
                snprintf(bounds + strlen(bounds), sizeof bounds - strlen(bounds), "%sthe pids bound (%" PRIu64 "%s)",
                         mem ? " and " : "", spec->pids_max, st->s->pids_default ? ", the default" : "");
                strcat(lift, " --pids unlimited");
        }
        if (cpu)
                snprintf(bounds + strlen(bounds), sizeof bounds - strlen(bounds), "%sthe CPU bound (--cpus %u.%03u)",
                         mem || pids ? " and " : "", spec->cpus_milli / 1000, spec->cpus_milli % 1000);
        if (*cgroup_setup_opt_out)
                snprintf(opt_out, sizeof opt_out, "%s", cgroup_setup_opt_out);
        else
                snprintf(opt_out, sizeof opt_out, "%s%s%s%s to run without %s", *lift ? "pass" : "", lift,
                         *lift && cpu ? " and " : "", cpu ? "leave out --cpus" : "",
                         mem + pids + cpu > 1 ? "them" : "it");

        note = parent && !cgroup_setup_delegated && *cgroup_setup_note;
        if (!parent)
                snprintf(cause, sizeof cause, "no cgroup v1 hierarchy for the %s controller%s", missing,
                         strchr(missing, ',') ? "s" : "");
        else if (cgroup_setup_delegated)
                /* Delegated and prepared: the host does not hand these controllers down to our cgroup. */
                snprintf(cause, sizeof cause, "the %s controller%s %s not available in our delegated cgroup '%s' "
                         "(not in its cgroup.controllers)", missing, strchr(missing, ',') ? "s" : "",
                         strchr(missing, ',') ? "are" : "is", parent);
        else
                snprintf(cause, sizeof cause, "the %s controller%s cannot be enabled for cgroup '%s'%s%s", missing,
                         strchr(missing, ',') ? "s" : "", parent, note ? ": " : "", note ? cgroup_setup_note : "");
        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot apply %s: %s; %s%s%s", bounds, cause, opt_out,
                         note && *cgroup_setup_advice ? "; or " : "", note ? cgroup_setup_advice : "");
}

static const NetConfig *net_config(const Start *st, NetConfig *defaults) {
        if (st->cfg && st->cfg->net)
                return st->cfg->net;
        net_config_init(defaults);
        return defaults;
}

/* /etc/resolv.conf: the host's name servers as this sandbox can use them (net/resolv.h), written into
 * its data directory and bind-mounted read-only by the child over the image's, which stays as it is
 * (the generated host image is shared). Bridged, isolated and host networks: with --net none there
 * is nobody to ask. */
static int step_resolv(Start *st) {
        const SandboxSpec *spec = st->spec;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        NetConfig defaults;
        char text[4096];
        bool is_dir;
        size_t len;
        int r;

        if (spec->net == SPEC_NET_NONE)
                return 0;
        r = net_resolv_conf(net_config(st, &defaults), spec->net, text, sizeof text, st->dns, &st->n_dns);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot make the sandbox's /etc/resolv.conf: %s",
                                 strerror(-r));
        len = strlen(text);
        fd = openat(st->s->data_fd, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, len) != (ssize_t) len || fchmod(fd, 0644) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot write the sandbox's /etc/resolv.conf: %m");
        if (asprintf(&path, "%s/sandboxes/%s/resolv.conf", st->s->data_dir, st->s->id) < 0) {
                path = NULL;
                return OOM(st);
        }
        r = mount_detached_tree(path, true, &is_dir, &st->resolv_fd);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot bind the sandbox's /etc/resolv.conf: %s",
                                 strerror(-r));
        return 0;
}

/* The sandbox's cgroup holds the whole sandbox's memory and CPU bounds, so that the union server's
 * work for it (copy-up, the page cache of the upper's writes) counts too; its children are the
 * program (the init and everything below it, with the pids bound; what a kill ends) and the union's
 * server (its own small pids bound, so a fork bomb cannot starve it of threads; never frozen). */
static int step_cgroup(Start *st) {
        const SandboxSpec *spec = st->spec;
        uint64_t pids = spec->pids_max == SPEC_UNLIMITED ? 0 : spec->pids_max;
        char name[32];
        CgroupLimits limits = {
                .memory_max = spec->memory_max == SPEC_UNLIMITED ? 0 : spec->memory_max,
                .pids_max = pids ? pids + UNION_PIDS_MAX : 0,
                .cpu_quota_us = (uint64_t) spec->cpus_milli * 100,
                .cpu_period_us = spec->cpus_milli ? 100000 : 0,
                .split = true,
                .program_pids_max = pids,
                .union_pids_max = UNION_PIDS_MAX,
                .union_cpu_weight = spec->cpus_milli ? UNION_CPU_WEIGHT : 0,
                .cpuset_io = st->cfg ? st->cfg->cpuset_io : NULL,
        };
        int r;

        snprintf(name, sizeof name, "sandbox-%s", st->s->id);
        r = cgroup_create(name, &limits, &st->s->cgroup);
        if (limits.cpuset_io && (r == -EOPNOTSUPP || r == -EINVAL || r == -ERANGE || r == -ENODEV)) {
                /* Only sandbox-oci asks for these (its linux.resources fields named here); was it them? */
                _cleanup_free_ char *missing = NULL, *parent = NULL;
                bool cpuset = false, io = false;
                if (r != -EOPNOTSUPP) /* EINVAL, ERANGE (no such CPU), ENODEV (no such device) */
                        return set_error(st->err, SANDBOX_EXIT_SETUP,
                                         "Cannot create the sandbox's cgroup: the kernel refused "
                                         "linux.resources.cpu.cpus, cpu.mems or blockIO (%s: CPUs and memory nodes "
                                         "must be among the parent cgroup's, throttled devices must be whole block "
                                         "devices that exist)",
                                         strerror(-r));
                if (cgroup_explain_unsupported(&limits, &missing, &parent) >= 0) {
                        cpuset = in_list(missing, "cpuset");
                        io = in_list(missing, "io") || in_list(missing, "blkio");
                        if (cpuset || io)
                                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                                 "Cannot create the sandbox's cgroup: %s%s%s need%s the %s "
                                                 "controller%s, which this host does not offer us",
                                                 cpuset ? "linux.resources.cpu.cpus/mems" : "",
                                                 cpuset && io ? " and " : "", io ? "linux.resources.blockIO" : "",
                                                 cpuset && io ? "" : "s", missing, strchr(missing, ',') ? "s" : "");
                        if (!*missing && limits.cpuset_io->io_weight > 0)
                                return set_error(st->err, SANDBOX_EXIT_SETUP,
                                                 "Cannot create the sandbox's cgroup: "
                                                 "linux.resources.blockIO.weight needs io.weight (v2) or blkio.weight "
                                                 "or blkio.bfq.weight (v1: the bfq I/O scheduler), which this host "
                                                 "does not have");
                }
        }
        if (r == -EOPNOTSUPP)
                return cgroup_unsupported_error(st, &limits);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the sandbox's cgroup: %s", strerror(-r));
        /* On cgroup v2 the child is born in its cgroup: no migration (which costs an RCU grace period
         * on the kernel's side). */
        st->cgroup_fd = cgroup_child_v2_fd(st->s->cgroup, CGROUP_CHILD_PROGRAM);
        return 0;
}

static int step_environment(Start *st) {
        st->envp = sandbox_build_env(st->spec, NULL, 0, st->spec->uid);
        return st->envp ? 0 : OOM(st);
}

/* SandboxJoin: this thread enters the namespaces to join (as host root: setns into a namespace needs
 * CAP_SYS_ADMIN over the user namespace that owns it, which the init, in its own user namespace, never has),
 * so that the init cloned next inherits them; RET_SAVED gets this thread's own, for join_restore(). UTS: the
 * hostname asked for is set here, from outside, as runc does in a joined one. */
static const struct {
        int type;
        const char *name;
        size_t offset;
} join_types[] = {
        { CLONE_NEWNET, "net", offsetof(SandboxJoin, net_fd) },
        { CLONE_NEWIPC, "ipc", offsetof(SandboxJoin, ipc_fd) },
        { CLONE_NEWUTS, "uts", offsetof(SandboxJoin, uts_fd) },
};

static int join_fd(const SandboxJoin *j, size_t i) {
        return j ? *(const int *) ((const char *) j + join_types[i].offset) : -EBADF;
}

static void join_restore(int saved[static 3]) {
        for (size_t i = 0; i < ELEMENTSOF(join_types); i++)
                if (saved[i] >= 0) {
                        /* Our own namespaces back; failing that, this thread must not go on in the joined one. */
                        if (setns(saved[i], join_types[i].type) < 0)
                                abort();
                        saved[i] = safe_close(saved[i]);
                }
}

static int join_enter(Start *st, int saved[static 3]) {
        const SandboxJoin *j = st->cfg ? st->cfg->join : NULL;
        char path[64];

        for (size_t i = 0; i < ELEMENTSOF(join_types); i++) {
                int fd = join_fd(j, i);
                if (fd < 0)
                        continue;
                snprintf(path, sizeof path, "/proc/thread-self/ns/%s", join_types[i].name);
                saved[i] = open(path, O_RDONLY | O_CLOEXEC);
                if (saved[i] < 0 || setns(fd, join_types[i].type) < 0) {
                        int e = errno;
                        saved[i] = safe_close(saved[i]);
                        join_restore(saved);
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot join the %s namespace: %s",
                                         join_types[i].name, strerror(e));
                }
                if (join_types[i].type == CLONE_NEWUTS && st->spec->hostname &&
                    sethostname(st->spec->hostname, strlen(st->spec->hostname)) < 0) {
                        int e = errno;
                        join_restore(saved);
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot set the hostname of the joined UTS "
                                         "namespace: %s", strerror(e));
                }
        }
        return 0;
}

/* The init, in new user, mount, pid, UTS, IPC and (unless --net host) network namespaces; UTS, IPC and network
 * ones of SandboxConfig.join instead where it names them. */
static int step_clone(Start *st) {
        const SandboxSpec *spec = st->spec;
        const SandboxJoin *j = st->cfg ? st->cfg->join : NULL;
        const bool uts_joined = join_fd(j, 2) >= 0;
        int saved[3] = { -EBADF, -EBADF, -EBADF };
        Sandbox *s = st->s;
        int r;

        if (st->cfg && st->cfg->oom_score_adj && (*st->cfg->oom_score_adj < -1000 || *st->cfg->oom_score_adj > 1000))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Invalid sandbox: an OOM score adjustment of %d "
                                 "(-1000..1000)", *st->cfg->oom_score_adj);
        if (st->cfg && st->cfg->oom_score_adj)
                snprintf(st->oom_score_adj, sizeof st->oom_score_adj, "%d", *st->cfg->oom_score_adj);
        else
                snprintf(st->oom_score_adj, sizeof st->oom_score_adj, "%s", PROGRAM_OOM_SCORE_ADJ);
        if (st->cfg && (st->cfg->n_groups > SANDBOX_GROUPS_MAX || (st->cfg->n_groups > 0 && !st->cfg->groups)))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Invalid sandbox: more than %d supplementary groups",
                                 SANDBOX_GROUPS_MAX);
        for (size_t i = 0; st->cfg && st->cfg->groups && i < st->cfg->n_groups; i++)
                if (st->cfg->groups[i] >= SANDBOX_IDS_PER_RANGE)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Invalid sandbox: supplementary group %u is "
                                         "not an id of the sandbox (0-%u)", st->cfg->groups[i], SANDBOX_IDS_PER_RANGE - 1);
        if (join_fd(j, 0) >= 0 && spec->net != SPEC_NET_HOST)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Invalid sandbox: a joined network namespace "
                                 "has no network of ours (--net %s)", spec_net_to_string(spec->net));
        /* The child must not carry our supplementary groups (host gid 0 among them): inside, with
         * setgroups denied, it could never drop them. A threaded caller drops them once before its
         * threads start: setgroups() there is a broadcast to every thread (glibc's setxid). */
        int n_groups = getgroups(0, NULL);
        if (n_groups < 0 || (n_groups > 0 && setgroups(0, NULL) < 0))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot drop supplementary groups: %m");
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, st->sp) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "socketpair: %m");
        if (st->deferred) {
                /* Only touched pages cost memory: a program's size, at sandbox_go(). */
                void *m = mmap(NULL, sizeof(DeferredProgram), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (m == MAP_FAILED)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot map the program's area: %m");
                s->deferred = m;
        }

        ChildContext ctx = {
                .spec = spec,
                .status_fd = st->sp[1],
                .stdio = { st->stdio ? st->stdio[0] : 0, st->stdio ? st->stdio[1] : 1, st->stdio ? st->stdio[2] : 2 },
                .root_path = st->root_path,
                .union_fd = st->union_fd,
                .usr_fd = st->usr_fd,
                .resolv_fd = st->resolv_fd,
                .binds = st->binds,
                .filter = st->filter,
                .engine_filter = st->cfg ? st->cfg->engine_filter : NULL,
                .oom_score_adj = st->oom_score_adj,
                .groups = st->cfg ? st->cfg->groups : NULL,
                .n_groups = st->cfg ? st->cfg->n_groups : 0,
                .envp = st->envp,
                .hostname = uts_joined ? NULL : spec->hostname ?: DEFAULT_HOSTNAME,
                .ipc_joined = join_fd(j, 1) >= 0,
                .net_host = spec->net == SPEC_NET_HOST,
                .workdir_create = s->image_run && image_run_workdir_from_image(s->image_run),
                .cap_bounding = st->cap_bounding,
                .cap_permitted = st->cap_permitted,
                .cap_ambient = st->cap_ambient,
                .idle = st->idle,
                .deferred = s->deferred,
                .hold = st->hold,
                .program_umask = st->hold ? st->program_umask : -1,
        };
        struct clone_args ca = {
                .flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | (uts_joined ? 0 : CLONE_NEWUTS) |
                         (ctx.ipc_joined ? 0 : CLONE_NEWIPC) | (spec->net == SPEC_NET_HOST ? 0 : CLONE_NEWNET) |
                         CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) &s->pidfd,
                .exit_signal = SIGCHLD,
        };
        if (st->cgroup_fd >= 0) {
                ca.flags |= CLONE_INTO_CGROUP;
                ca.cgroup = (uint64_t) st->cgroup_fd;
        }
        r = join_enter(st, saved);
        if (r < 0)
                return r;
        pid_t pid = (pid_t) syscall(SYS_clone3, &ca, sizeof ca);
        if (pid == 0) {
                for (size_t i = 0; i < ELEMENTSOF(saved); i++)
                        safe_close(saved[i]);
                safe_close(st->sp[0]);
                child_run(&ctx);
        }
        int e = errno;
        join_restore(saved);
        if (pid < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot create the sandbox's namespaces: %s", strerror(e));
        s->pid = pid;
        /* The init has the program's area; no later clone of ours (another sandbox's init, a union server,
         * an exec helper) gets a copy: the program written there is this sandbox's alone. */
        if (s->deferred)
                (void) madvise(s->deferred, sizeof(DeferredProgram), MADV_DONTFORK);
        s->status_fd = TAKE_FD(st->sp[0]);
        st->sp[1] = safe_close(st->sp[1]);
        /* The child has its copies. Ours must go now: while we hold the union's mount, a failed sandbox
         * would keep its FUSE connection (and server) alive. */
        st->union_fd = safe_close(st->union_fd);
        st->usr_fd = safe_close(st->usr_fd);
        st->resolv_fd = safe_close(st->resolv_fd);
        for (size_t i = 0; i < spec->n_binds; i++)
                st->binds[i].tree_fd = safe_close(st->binds[i].tree_fd);
        return 0;
}

static int step_id_maps(Start *st) {
        Sandbox *s = st->s;
        char map[64];
        int r;

        snprintf(map, sizeof map, "0 %u %u\n", s->host_first, SANDBOX_IDS_PER_RANGE);
        /* setgroups() inside: only with CAP_SETGID (apt, su, ... set the groups of the user they become), or
         * for the program's own supplementary groups (SandboxConfig.groups).
         * It can only name the sandbox's own gids, and the init starts with no supplementary group (we
         * dropped ours before the clone), so nothing the host gave is left to drop. */
        bool setgroups_ok = ((st->cap_permitted | st->cap_ambient) & SPEC_CAP(CAP_SETGID)) ||
                            (st->cfg && st->cfg->n_groups > 0);
        if ((r = write_proc_file(s->pid, "uid_map", map)) < 0 ||
            (!setgroups_ok && (r = write_proc_file(s->pid, "setgroups", "deny")) < 0) ||
            (r = write_proc_file(s->pid, "gid_map", map)) < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot map the sandbox's ids: %s", strerror(-r));
        /* The child builds its root from here on, while we do the steps below. */
        if (send(s->status_fd, "g", 1, MSG_NOSIGNAL) != 1)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "The sandbox's init died before set-up: %m");
        return 0;
}

static int step_cgroup_attach(Start *st) {
        int r;

        if (st->cgroup_fd >= 0)
                return 0; /* born there */
        r = cgroup_child_attach(st->s->cgroup, CGROUP_CHILD_PROGRAM, st->s->pid);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot move the sandbox into its cgroup: %s", strerror(-r));
        return 0;
}

/* The network, while the child builds its root; the program starts only after it. */
static int step_network(Start *st) {
        const SandboxSpec *spec = st->spec;
        NetConfig defaults;
        char why[512];
        int r;

        if (spec->net != SPEC_NET_BRIDGE && spec->net != SPEC_NET_ISOLATED)
                return 0;
        pthread_mutex_lock(&net_lock);
        r = net_attach(net_config(st, &defaults), spec->net, st->s->id, st->s->pid, spec->publish, spec->n_publish,
                       st->dns, st->n_dns, &st->s->lease, why, sizeof why);
        pthread_mutex_unlock(&net_lock);
        if (r < 0)
                return set_error(st->err, SANDBOX_EXIT_SETUP, "%s", why);
        return 0;
}

static int step_rlimits(Start *st) {
        const SandboxSpec *spec = st->spec;
        pid_t pid = st->s->pid;
        bool core_set = false, nofile_set = false;

        /* The init must survive the OOM killer so that it can report how the program ended. That needs
         * CAP_SYS_RESOURCE; without it the init goes first with the program (raising needs nothing),
         * never the union's server. */
        if (write_proc_file(pid, "oom_score_adj", "-1000") < 0)
                (void) write_proc_file(pid, "oom_score_adj", st->oom_score_adj);
        for (size_t i = 0; i < spec->n_rlimits; i++) {
                struct rlimit rl = {
                        .rlim_cur = spec->rlimits[i].soft == UINT64_MAX ? RLIM_INFINITY : spec->rlimits[i].soft,
                        .rlim_max = spec->rlimits[i].hard == UINT64_MAX ? RLIM_INFINITY : spec->rlimits[i].hard,
                };
                if (spec->rlimits[i].resource == RLIMIT_CORE)
                        core_set = true;
                if (spec->rlimits[i].resource == RLIMIT_NOFILE)
                        nofile_set = true;
                if (prlimit(pid, spec->rlimits[i].resource, &rl, NULL) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot set --rlimit %s: %m",
                                         spec_rlimit_to_string(spec->rlimits[i].resource));
        }
        /* No core dumps by default: the host's core_pattern may hand them to a host helper. */
        if (!core_set)
                (void) prlimit(pid, RLIMIT_CORE, &(struct rlimit) {}, NULL);
        /* Open files: the default, never above what we run with ourselves (raising a hard limit needs
         * CAP_SYS_RESOURCE). */
        if (!nofile_set) {
                struct rlimit own, rl;
                if (getrlimit(RLIMIT_NOFILE, &own) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "getrlimit: %m");
                rl.rlim_max = MIN(own.rlim_max, (rlim_t) SPEC_DEFAULT_NOFILE_HARD);
                rl.rlim_cur = MIN(rl.rlim_max, (rlim_t) SPEC_DEFAULT_NOFILE_SOFT);
                if (prlimit(pid, RLIMIT_NOFILE, &rl, NULL) < 0)
                        return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot bound open files: %m");
        }
        return 0;
}

/* What the front end waits on: the init's end, and the union server's, which a sandbox does not
 * outlive (its file system is gone); with a program, also the init's word that the program ended
 * (CHILD_EXITED, the only message after CHILD_STARTED), which comes before the init's own end: that
 * waits for its namespaces' teardown (a ms or more, an RCU grace period under load), which the answer
 * need not wait for (sandbox_collect()). */
static int step_watch(Start *st) {
        Sandbox *s = st->s;

        s->wait_fd = epoll_create1(EPOLL_CLOEXEC);
        if (s->wait_fd < 0 ||
            epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, s->pidfd, &(struct epoll_event) { .events = EPOLLIN }) < 0 ||
            epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, s->server_pidfd, &(struct epoll_event) { .events = EPOLLIN }) < 0 ||
            (!st->idle &&
             epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, s->status_fd, &(struct epoll_event) { .events = EPOLLIN }) < 0))
                return set_error(st->err, SANDBOX_EXIT_SETUP, "Cannot watch the sandbox: %m");
        return 0;
}

/* The union's server, started by step_union, executed meanwhile (or why not): before anything may use the
 * sandbox's root but the init's set-up, which waits for the server in the kernel's queue. */
static int step_union_started(Start *st) {
        int r = union_server_started(st->union_exec_fd, st->err);

        st->union_exec_fd = safe_close(st->union_exec_fd);
        return r;
}

/* The second go: the init starts the program and says whether it could. */
static int step_go(Start *st) {
        Sandbox *s = st->s;
        int r;

        if (st->deferred)
                return 0; /* sandbox_go() */

        s->start_usec = now_usec();
        if (send(s->status_fd, "g", 1, MSG_NOSIGNAL) != 1) {
                r = wait_started(s, st->cancel_fd, st->err); /* it failed during set-up: say why */
                if (r >= 0)
                        r = set_error(st->err, SANDBOX_EXIT_SETUP, "The sandbox's init died during set-up");
                return r;
        }
        return wait_started(s, st->cancel_fd, st->err);
}

typedef struct StartStep {
        const char *name;
        int (*run)(Start *st);
} StartStep;

/* The parent's side of docs/security.md's table, in order. */
static const StartStep start_steps[] = {
        { "image of the store",         step_store_image },
        { "check the paths",            step_check_paths },
        { "capabilities",               step_capabilities },
        { "lock the upper",             step_upper_lock },
        { "state directory",            step_state_dir },
        { "seccomp filter",             step_filter },
        { "host id range",              step_host_ids },
        { "sandbox directory",          step_sandbox_dir },
        { "image",                      step_image },
        { "upper layer",                step_upper },
        { "cgroup",                     step_cgroup },
        { "union mount",                step_union },
        { "host trees",                 step_trees },
        { "name resolution",            step_resolv },
        { "environment",                step_environment },
        { "clone the init",             step_clone },
        { "union server",               step_union_server },
        { "id maps",                    step_id_maps },
        { "join the cgroup",            step_cgroup_attach },
        { "network",                    step_network },
        { "resource limits",            step_rlimits },
        { "union server started",       step_union_started },
        { "watch",                      step_watch },
        { "start the program",          step_go },
};

Sandbox *sandbox_new(const SandboxConfig *cfg) {
        Sandbox *s = calloc(1, sizeof *s);

        if (!s)
                return NULL;
        *s = (Sandbox) {
                .state_fd = -EBADF, .dir_fd = -EBADF, .pidfd = -EBADF, .status_fd = -EBADF,
                .pty_fd = -EBADF, .server_pidfd = -EBADF, .idlock_fd = -EBADF, .lock_fd = -EBADF,
                .image_lock_fd = -EBADF, .sandboxes_fd = -EBADF, .data_fd = -EBADF, .data_lock_fd = -EBADF,
                .quota_fd = -EBADF, .wait_fd = -EBADF, .upper_lock_fd = -EBADF, .keeper_pidfd = -EBADF,
                .keeper_sock = -EBADF, .created_realtime_usec = realtime_usec(),
        };
        s->spec = &s->resolved;
        s->state_dir = strdup(cfg && cfg->state_dir ? cfg->state_dir : DEFAULT_STATE_DIR);
        s->data_dir = strdup(cfg && cfg->data_dir ? cfg->data_dir : DEFAULT_DATA_DIR);
        if (!s->state_dir || !s->data_dir) {
                free(s->state_dir);
                free(s->data_dir);
                free(s);
                return NULL;
        }
        return s;
}

int sandbox_start(const SandboxSpec *spec, const SandboxConfig *cfg, const int stdio[3], Sandbox **ret,
                  SandboxError *err) {
        return sandbox_start_cancellable(spec, cfg, stdio, -EBADF, ret, err);
}

int sandbox_start_cancellable(const SandboxSpec *spec, const SandboxConfig *cfg, const int stdio[3], int cancel_fd,
                              Sandbox **ret, SandboxError *err) {
        const SandboxStartOptions o = { .stdio = stdio, .cancel_fd = cancel_fd };
        return sandbox_start_with(spec, cfg, &o, ret, err);
}

static int start_full(const SandboxSpec *spec, const SandboxConfig *cfg, const SandboxStartOptions *o, bool hold,
                      int program_umask, Sandbox **ret, SandboxError *err) {
        const bool idle = o && (o->flags & SANDBOX_START_IDLE);
        const bool deferred = o && (o->flags & SANDBOX_START_DEFERRED);
        const char *verr = NULL;
        Sandbox *s;
        int r = 0;

        if (spec_validate_flags(spec, idle || deferred ? SPEC_VALIDATE_NO_COMMAND : 0, &verr) < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Invalid sandbox: %s", verr);
        if (idle && deferred)
                return set_error(err, SANDBOX_EXIT_SETUP, "Invalid sandbox: idle and deferred at once");
        if ((idle || deferred) && (spec->tty || spec->timeout_usec || spec->cpu_time_usec))
                return set_error(err, SANDBOX_EXIT_SETUP, "Invalid sandbox: one without a program of its own has no "
                                 "terminal, --timeout or --cpu-time (they are each program's)");

        s = sandbox_new(cfg);
        if (!s)
                return set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        s->resolved = *spec;
        s->memory_default = spec->memory_max == 0;
        s->pids_default = spec->pids_max == 0;
        s->idle = idle;
        s->resolved.tmpfs = spec->n_tmpfs > 0 ? calloc(spec->n_tmpfs, sizeof *spec->tmpfs) : NULL;
        if (spec->n_tmpfs > 0 && !s->resolved.tmpfs) {
                sandbox_free(s);
                return set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        }
        if (spec->n_tmpfs > 0)
                memcpy(s->resolved.tmpfs, spec->tmpfs, spec->n_tmpfs * sizeof *spec->tmpfs);
        spec_apply_defaults(&s->resolved);

        Start st = {
                .s = s, .spec = s->spec, .cfg = cfg, .stdio = o ? o->stdio : NULL,
                .cancel_fd = o ? o->cancel_fd : -EBADF, .idle = idle, .deferred = deferred, .hold = hold,
                .program_umask = program_umask, .err = err,
                .fuse_fd = -EBADF, .union_fd = -EBADF, .usr_fd = -EBADF, .cgroup_fd = -EBADF,
                .resolv_fd = -EBADF, .union_exec_fd = -EBADF,
                .sp = { -EBADF, -EBADF },
        };
        /* SANDBOX_TRACE in the environment: one line on stderr per start, the time of each step (µs), for
         * bench/exec-latency.sh's breakdown. Off by default; nothing else is written. */
        const bool trace = getenv("SANDBOX_TRACE");
        uint64_t trace_us[ELEMENTSOF(start_steps)] = {}, t0 = trace ? now_usec() : 0, t = t0;
        for (size_t i = 0; i < ELEMENTSOF(start_steps); i++) {
                r = start_steps[i].run(&st);
                if (trace) {
                        uint64_t n = now_usec();
                        trace_us[i] = n - t;
                        t = n;
                }
                if (r < 0)
                        break;
        }
        if (trace && r >= 0) {
                char line[2048];
                size_t k = (size_t) snprintf(line, sizeof line, "sandbox-trace: start %s%s total=%" PRIu64,
                                             s->id, idle ? " idle" : deferred ? " deferred" : "", t - t0);
                for (size_t i = 0; i < ELEMENTSOF(start_steps) && k < sizeof line; i++)
                        k += (size_t) snprintf(line + k, sizeof line - k, " | %s=%" PRIu64, start_steps[i].name,
                                               trace_us[i]);
                if (k < sizeof line)
                        (void) dprintf(STDERR_FILENO, "%s\n", line);
        }
        /* Programs started later (sandbox_exec()) get the same seccomp program; a deferred sandbox may
         * become an idle one (sandbox_go_idle()). */
        if (r >= 0 && (idle || deferred))
                s->filter = TAKE_PTR(st.filter);
        /* Our mount of the union (if the clone did not happen) must go before we wait for its server. */
        start_done(&st);
        /* The caller's descriptors were for the start only. */
        s->resolved.bind_fds = NULL;
        if (r < 0) {
                (void) sandbox_finish(s, true, NULL);
                sandbox_free(s);
                return r;
        }
        s->held = hold;
        *ret = s;
        return 0;
}

/* Copy STR into the area at *POS; NULL when it does not fit. */
static char *deferred_put(DeferredProgram *d, size_t *pos, const char *str) {
        size_t n = strlen(str) + 1;

        if (n > sizeof d->data - *pos)
                return NULL;
        char *p = memcpy(d->data + *pos, str, n);
        *pos += n;
        return p;
}

/* The go of a deferred sandbox, with the program's STDIO (what is in DEFERRED is written). */
static int deferred_send_go(Sandbox *s, const int stdio[3]) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(3 * sizeof(int))];
        } control = {};
        char go = 'g';
        struct iovec iov = { .iov_base = &go, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
        memcpy(CMSG_DATA(cm), stdio, 3 * sizeof(int));
        s->start_usec = now_usec();
        return sendmsg(s->status_fd, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int sandbox_go(Sandbox *s, const SandboxGoOptions *o, SandboxError *err) {
        DeferredProgram *d = s->deferred;
        static const int own[3] = { 0, 1, 2 };
        const int *stdio = o->stdio ?: own;
        struct pollfd pf = { .fd = s->wait_fd, .events = POLLIN };
        size_t pos = 0;
        char **envp;

        const uint64_t trace_t0 = getenv("SANDBOX_TRACE") ? now_usec() : 0;

        if (!d || s->deferred_gone)
                return set_error(err, SANDBOX_EXIT_SETUP, "The sandbox is not waiting for a program");
        if (o->n_argv == 0 || o->n_argv > SPEC_ARGS_MAX || !o->argv || !o->argv[0] || !*o->argv[0] ||
            o->n_env > SPEC_ENV_MAX)
                return set_error(err, SANDBOX_EXIT_SETUP, "Invalid program");
        if (o->workdir && o->workdir[0] != '/')
                return set_error(err, SANDBOX_EXIT_SETUP, "--workdir must be an absolute path");
        /* Its init or union server ended meanwhile (killed, out of memory): not usable. */
        if (s->finished || s->collected || poll(&pf, 1, 0) != 0)
                return -ESTALE;

        envp = sandbox_build_env(s->spec, o->env, o->n_env, s->spec->uid);
        if (!envp)
                return set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        size_t i = 0;
        for (; i < o->n_argv; i++)
                if (!(d->argv[i] = deferred_put(d, &pos, o->argv[i])))
                        break;
        d->argv[i] = NULL;
        bool fits = i == o->n_argv;
        size_t k = 0;
        for (; fits && envp[k] && k < ELEMENTSOF(d->envp) - 1; k++)
                if (!(d->envp[k] = deferred_put(d, &pos, envp[k])))
                        fits = false;
        fits = fits && !envp[k];
        d->envp[k] = NULL;
        sandbox_strv_free(envp);
        d->workdir = o->workdir ? deferred_put(d, &pos, o->workdir) : NULL;
        if (!fits || (o->workdir && !d->workdir))
                return -E2BIG;

        /* From here on it is the sandbox's own program, as if it had come with the start. */
        s->deferred_gone = true;
        s->resolved.argv = d->argv;
        s->resolved.n_argv = o->n_argv;
        s->resolved.timeout_usec = o->timeout_usec;
        s->resolved.workdir = d->workdir;
        /* Only an idle sandbox runs more programs (sandbox_exec()) with the filter. */
        s->filter = filter_program_free(s->filter);
        int r = deferred_send_go(s, stdio);
        uint64_t trace_sent = trace_t0 ? now_usec() : 0;
        int q = wait_started(s, o->cancel_fd, err);
        if (trace_t0 && q >= 0)
                /* SANDBOX_TRACE: the program written and sent, then the init's fork and the program's set-up
                 * and execve() until the init said it started. */
                (void) dprintf(STDERR_FILENO, "sandbox-trace: go %s total=%" PRIu64 " | write and send=%" PRIu64
                               " | the init starts the program=%" PRIu64 "\n", s->id, now_usec() - trace_t0,
                               trace_sent - trace_t0, now_usec() - trace_sent);
        /* The init ended without a word (killed between the check above and now): nothing ran. */
        if ((r < 0 || q < 0) && q != -ECANCELED && !s->init_said)
                return -ESTALE;
        return q;
}

int sandbox_go_idle(Sandbox *s, int cancel_fd, SandboxError *err) {
        DeferredProgram *d = s->deferred;
        struct pollfd pf = { .fd = s->wait_fd, .events = POLLIN };
        _cleanup_close_ int null = -EBADF;

        if (!d || s->deferred_gone)
                return set_error(err, SANDBOX_EXIT_SETUP, "The sandbox is not waiting for a program");
        if (s->finished || s->collected || poll(&pf, 1, 0) != 0)
                return -ESTALE;
        /* An idle init keeps nothing of the caller's: its stdio is /dev/null, as an idle start's. */
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
                return set_error(err, SANDBOX_EXIT_SETUP, "Cannot open /dev/null: %m");
        d->argv[0] = NULL;
        d->idle = true;
        s->deferred_gone = true;
        s->idle = true;
        int r = deferred_send_go(s, (const int[3]) { null, null, null });
        int q = wait_started(s, cancel_fd, err);
        if ((r < 0 || q < 0) && q != -ECANCELED && !s->init_said)
                return -ESTALE;
        return q;
}

int sandbox_start_with(const SandboxSpec *spec, const SandboxConfig *cfg, const SandboxStartOptions *o, Sandbox **ret,
                       SandboxError *err) {
        return start_full(spec, cfg, o, false, -1, ret, err);
}

int sandbox_create(const SandboxSpec *spec, const SandboxConfig *cfg, const int stdio[3], int program_umask,
                   Sandbox **ret, SandboxError *err) {
        const SandboxStartOptions o = { .stdio = stdio, .cancel_fd = -EBADF };

        if (program_umask > 0777)
                return set_error(err, SANDBOX_EXIT_SETUP, "Invalid umask %#o", program_umask);
        return start_full(spec, cfg, &o, true, program_umask, ret, err);
}

int sandbox_release(Sandbox *s, SandboxError *err) {
        if (!s->held || s->finished || s->collected)
                return set_error(err, SANDBOX_EXIT_SETUP, "The sandbox is not waiting to start");
        s->held = false;
        s->start_usec = now_usec();
        if (send(s->status_fd, "g", 1, MSG_NOSIGNAL) != 1) {
                int r = wait_started(s, -EBADF, err);
                return r < 0 ? r : set_error(err, SANDBOX_EXIT_SETUP, "The sandbox's init died before the start");
        }
        return wait_started(s, -EBADF, err);
}

bool sandbox_is_held(const Sandbox *s) {
        return s->held;
}

const char *sandbox_id(const Sandbox *s) {
        return s->id;
}

const char *sandbox_command(const Sandbox *s) {
        return s->spec->n_argv > 0 ? s->spec->argv[0] : "";
}

const char *sandbox_image_id(const Sandbox *s) {
        return s->image_run ? image_run_id(s->image_run) : s->image_id;
}

pid_t sandbox_pid(const Sandbox *s) {
        return s->pid;
}

int sandbox_pidfd(const Sandbox *s) {
        return s->wait_fd;
}

int sandbox_pty_fd(const Sandbox *s) {
        return s->pty_fd;
}

int sandbox_signal(Sandbox *s, int sig) {
        if (s->pidfd < 0 || s->finished)
                return -ESRCH;
        return RET_NERRNO((int) syscall(SYS_pidfd_send_signal, s->pidfd, sig, NULL, 0));
}

/* The program's processes, not its file system's server: that one ends by itself once the sandbox's
 * mount is gone (after writing back what the kernel still caches for a kept upper). */
static void sandbox_kill(Sandbox *s) {
        if (s->pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
        if (s->cgroup)
                (void) cgroup_child_kill(s->cgroup, CGROUP_CHILD_PROGRAM);
}

/* How long the init gets to end the program after a limit, before we kill the whole cgroup. */
#define LIMIT_KILL_GRACE_USEC (2 * UINT64_C(1000000))

/* A limit was hit: the init kills every other process and reports the program's end with its
 * accounting (max_rss). If it cannot (gone, stuck), the cgroup is killed at the deadline. */
static void sandbox_kill_for_limit(Sandbox *s, SandboxLimitHit limit, uint64_t now) {
        char req = CHILD_REQUEST_KILL;

        s->limit = limit;
        if (s->status_fd < 0 || send(s->status_fd, &req, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
                sandbox_kill(s);
                return;
        }
        s->kill_deadline = now + LIMIT_KILL_GRACE_USEC;
}

uint64_t sandbox_check_limits(Sandbox *s) {
        const SandboxSpec *spec = s->spec;
        uint64_t now = now_usec(), next = 0;

        if (s->finished)
                return 0;
        if (s->limit != SANDBOX_LIMIT_NONE) {
                if (s->kill_deadline == 0)
                        return 0;
                if (now < s->kill_deadline)
                        return s->kill_deadline;
                s->kill_deadline = 0;
                sandbox_kill(s);
                return 0;
        }
        if (spec->timeout_usec) {
                uint64_t deadline = s->start_usec + spec->timeout_usec;
                if (now >= deadline) {
                        sandbox_kill_for_limit(s, SANDBOX_LIMIT_TIMEOUT, now);
                        return s->kill_deadline;
                }
                next = deadline;
        }
        if (spec->cpu_time_usec && s->cgroup) {
                CgroupStats st;
                if (cgroup_get_stats(s->cgroup, &st) >= 0) {
                        if (st.cpu_usec >= spec->cpu_time_usec) {
                                sandbox_kill_for_limit(s, SANDBOX_LIMIT_CPU_TIME, now);
                                return s->kill_deadline;
                        }
                        /* CPU time grows at most by the number of CPUs per unit of wall time. */
                        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                        uint64_t wait = (spec->cpu_time_usec - st.cpu_usec) / (uint64_t) (ncpu > 0 ? ncpu : 1);
                        wait = MAX(wait, (uint64_t) 5000);
                        wait = MIN(wait, (uint64_t) 250000);
                        if (!next || now + wait < next)
                                next = now + wait;
                }
        }
        return next;
}

static void read_exit_status(Sandbox *s) {
        ChildMessage m;
        ssize_t n;

        while ((n = recv(s->status_fd, &m, sizeof m, MSG_DONTWAIT)) == sizeof m)
                if (m.type == CHILD_EXITED) {
                        s->have_status = true;
                        s->raw_status = m.status;
                        s->max_rss = m.max_rss;
                }
}

/* Did the union's server end before its sandbox was done with it? It ends by itself (status 0) only
 * once the sandbox's mount is gone; killed or failed, the sandbox has no file system left. Looks
 * without reaping (stop_server() reaps). */
static bool server_failed(Sandbox *s) {
        siginfo_t si = {};

        if (s->union_failed)
                return true;
        if (s->server_pidfd < 0 ||
            waitid(P_PIDFD, (id_t) s->server_pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                return false;
        if (si.si_code == CLD_EXITED && si.si_status == 0)
                return false;
        s->union_failed = true;
        s->union_code = si.si_code;
        s->union_status = si.si_status;
        return true;
}

/* The first refusal at the disk quota, as the server reported it on its quota_notify_fd. */
bool sandbox_quota_was_hit(Sandbox *s) {
        char buf[64];
        if (!s->quota_hit && s->quota_fd >= 0 && read(s->quota_fd, buf, sizeof buf) > 0)
                s->quota_hit = true;
        return s->quota_hit;
}

static void stop_server(Sandbox *s) {
        struct pollfd p = { .fd = s->server_pidfd, .events = POLLIN };

        if (s->server_pid <= 0)
                return;
        /* It exits by itself once the sandbox's mount namespace is gone; give it a moment. */
        if (s->server_pidfd < 0 || poll(&p, 1, 5000) <= 0)
                (void) kill(s->server_pid, SIGKILL);
        (void) waitpid(s->server_pid, NULL, 0);
        s->server_pid = 0;
}

/* Wait for the init's end and reap it. */
static void reap_init(Sandbox *s) {
        siginfo_t si = {};
        int k;

        if (s->pid <= 0)
                return;
        while ((k = waitid(P_PIDFD, (id_t) s->pidfd, &si, WEXITED)) < 0 && errno == EINTR)
                ;
        /* An adopted init is not our child: it is gone when its pidfd says so. */
        if (k < 0 && errno == ECHILD) {
                struct pollfd p = { .fd = s->pidfd, .events = POLLIN };
                (void) poll(&p, 1, 5000);
        }
        s->pid = 0;
}

int sandbox_collect(Sandbox *s, bool kill, SandboxResult *ret) {
        CgroupStats st = {};
        SandboxResult res = { .status = SANDBOX_EXIT_SETUP };

        if (s->collected)
                return -EALREADY;
        /* Without its file system the program cannot go on: end it. */
        if (kill || (s->pid > 0 && server_failed(s)))
                sandbox_kill(s);
        /* The init said how the program ended: the answer does not wait for the init's own end (the
         * teardown of its namespaces); sandbox_cleanup() reaps it. Otherwise it ended (or was killed)
         * without a word: reap it first. */
        if (!kill && s->pid > 0 && s->status_fd >= 0)
                read_exit_status(s);
        if (!s->have_status || kill)
                reap_init(s);
        res.wall_usec = s->start_usec ? now_usec() - s->start_usec : 0;
        if (s->status_fd >= 0)
                read_exit_status(s);
        /* The accounting before the cgroup goes (in sandbox_cleanup()). */
        if (s->cgroup)
                (void) cgroup_get_stats(s->cgroup, &st);
        s->collected = true;

        res.cpu_usec = st.cpu_usec;
        res.memory_peak = st.memory_peak;
        res.max_rss = s->max_rss;
        res.pids_limit_hit = st.pids_max_events > 0;
        res.host_uid = s->host_first;
        res.limit = s->limit;
        res.disk_limit_hit = sandbox_quota_was_hit(s);
        res.union_failed = server_failed(s);
        res.union_signal = s->union_failed && s->union_code != CLD_EXITED ? s->union_status : 0;
        if (s->have_status) {
                if (WIFEXITED(s->raw_status)) {
                        res.exit_code = WEXITSTATUS(s->raw_status);
                        res.status = res.exit_code;
                } else if (WIFSIGNALED(s->raw_status)) {
                        res.signal = WTERMSIG(s->raw_status);
                        res.status = 128 + res.signal;
                }
        } else {
                /* No word from the init: the whole sandbox was killed (by us at a limit, or by someone
                 * else). */
                res.signal = SIGKILL;
                res.status = 128 + SIGKILL;
        }
        if (res.limit == SANDBOX_LIMIT_NONE && st.oom_kills > 0 && res.signal == SIGKILL)
                res.limit = SANDBOX_LIMIT_MEMORY;
        if (res.limit == SANDBOX_LIMIT_TIMEOUT || res.limit == SANDBOX_LIMIT_CPU_TIME)
                res.status = SANDBOX_EXIT_TIMEOUT;
        else if (res.limit == SANDBOX_LIMIT_MEMORY)
                res.status = SANDBOX_EXIT_OOM;
        else if (res.union_failed)
                res.status = SANDBOX_EXIT_SETUP; /* the runtime failed the program, not the other way */
        if (ret)
                *ret = res;
        return 0;
}

int sandbox_cleanup(Sandbox *s) {
        int r = 0;

        if (s->finished)
                return -EALREADY;
        if (!s->collected)
                (void) sandbox_collect(s, true, NULL);
        /* Collected on the init's word: it is ending by itself (its program's processes with it). */
        reap_init(s);
        /* The server first: it ends by itself once the sandbox's mount is gone, after writing back
         * what the kernel cached; then the cgroup, whose program child is empty by now. */
        stop_server(s);
        if (s->cgroup) {
                r = cgroup_remove(s->cgroup);
                s->cgroup = cgroup_free(s->cgroup);
        }
        /* The union's server is gone: nothing reads the image's layers any more. */
        if (s->image_run)
                image_run_unpin(s->image_run);
        if (s->lease) {
                pthread_mutex_lock(&net_lock);
                s->lease = net_detach(s->lease);
                pthread_mutex_unlock(&net_lock);
        }

        if (s->data_fd >= 0) {
                int k = rm_tree_at(s->sandboxes_fd, s->id);
                if (k < 0 && k != -ENOENT && r == 0)
                        r = k;
                s->data_fd = safe_close(s->data_fd);
        }
        sandbox_keeper_done(s);
        if (s->dir_fd >= 0) {
                (void) unlinkat(s->dir_fd, "root", AT_REMOVEDIR);
                (void) unlinkat(s->dir_fd, "record", 0);
                (void) unlinkat(s->dir_fd, "record.tmp", 0);
                (void) unlinkat(s->dir_fd, "lock", 0);
                if (unlinkat(s->state_fd, s->id, AT_REMOVEDIR) < 0 && r == 0)
                        r = -errno;
        }
        if (s->upper_work) {
                _cleanup_free_ char *copy = strdup(s->upper_work);
                char *slash = copy ? strrchr(copy, '/') : NULL;
                if (slash) {
                        *slash = '\0';
                        _cleanup_close_ int parent = open(*copy ? copy : "/", O_DIRECTORY | O_CLOEXEC | O_RDONLY);
                        if (parent >= 0)
                                (void) rm_tree_at(parent, slash + 1);
                }
        }
        s->finished = true;
        return r;
}

int sandbox_finish(Sandbox *s, bool kill, SandboxResult *ret) {
        int r = sandbox_collect(s, kill, ret);
        if (r < 0)
                return r;
        return sandbox_cleanup(s);
}

Sandbox *sandbox_free(Sandbox *s) {
        if (!s)
                return NULL;
        if (!s->finished)
                (void) sandbox_finish(s, true, NULL);
        safe_close(s->pidfd);
        safe_close(s->status_fd);
        safe_close(s->pty_fd);
        safe_close(s->server_pidfd);
        safe_close(s->quota_fd);
        safe_close(s->wait_fd);
        safe_close(s->idlock_fd);
        safe_close(s->lock_fd);
        safe_close(s->image_lock_fd);
        safe_close(s->upper_lock_fd);
        safe_close(s->dir_fd);
        safe_close(s->state_fd);
        safe_close(s->data_lock_fd);
        safe_close(s->data_fd);
        safe_close(s->sandboxes_fd);
        safe_close(s->keeper_pidfd);
        safe_close(s->keeper_sock);
        if (s->deferred)
                (void) munmap(s->deferred, sizeof(DeferredProgram));
        free(s->upper_work);
        free(s->state_dir);
        free(s->data_dir);
        free(s->image_id);
        if (s->owned_spec) {
                spec_done(s->owned_spec);
                free(s->owned_spec);
        } else
                free(s->resolved.tmpfs);
        image_run_free(s->image_run);
        filter_program_free(s->filter);
        net_lease_forget(s->lease);
        /* Left by sandbox_forget() and a failed adoption (sandbox_cleanup() removed and freed it otherwise):
         * our handle only, the cgroup stays. */
        cgroup_free(s->cgroup);
        free(s);
        return NULL;
}

static bool is_sandbox_id(const char *name) {
        if (strlen(name) != 16)
                return false;
        for (const char *c = name; *c; c++)
                if (!strchr("0123456789abcdef", *c))
                        return false;
        return true;
}

/* Remove one stale sandbox: its cgroup (killing what may still run in it) and its directory. */
static int cleanup_one(int state_fd, const char *id) {
        _cleanup_close_ int dir = -EBADF, lock = -EBADF;
        Cgroup *cg = NULL;
        char name[32];
        struct stat st;
        int r = 0, k;

        dir = openat(state_fd, id, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (dir < 0)
                return errno == ENOENT ? 0 : -errno;
        lock = openat(dir, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (lock < 0) {
                /* No lock yet: being created right now, unless it is old. */
                if (errno != ENOENT || fstat(dir, &st) < 0 || st.st_mtime + 60 > time(NULL))
                        return 0;
        } else if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 0 : -errno; /* alive */

        snprintf(name, sizeof name, "sandbox-%s", id);
        if (cgroup_open(name, &cg) >= 0) {
                k = cgroup_remove(cg);
                if (k < 0)
                        r = k;
                cgroup_free(cg);
        }
        k = rm_tree_at(dir, "data");
        if (k < 0 && k != -ENOENT && r == 0)
                r = k;
        (void) unlinkat(dir, "root", AT_REMOVEDIR);
        (void) unlinkat(dir, "record", 0);
        (void) unlinkat(dir, "record.tmp", 0);
        (void) unlinkat(dir, "lock", 0);
        if (unlinkat(state_fd, id, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r < 0 ? r : 1;
}

/* Remove one stale data directory, DATA/sandboxes/ID: its owner (of whichever state directory) is
 * gone when its lock is free. */
static int cleanup_one_data(int sandboxes_fd, const char *id) {
        _cleanup_close_ int dir = -EBADF, lock = -EBADF;
        struct stat st;

        dir = openat(sandboxes_fd, id, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (dir < 0)
                return errno == ENOENT ? 0 : -errno;
        lock = openat(dir, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (lock < 0) {
                if (errno != ENOENT || fstat(dir, &st) < 0 || st.st_mtime + 60 > time(NULL))
                        return 0;
        } else if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 0 : -errno; /* alive */
        int r = rm_tree_at(sandboxes_fd, id);
        return r < 0 && r != -ENOENT ? r : 1;
}

/* Call FN(dir_fd, name) for each entry of DIR_FD that is a sandbox id; counts what FN removed. */
static int cleanup_ids(int dir_fd, int (*fn)(int, const char *), unsigned *n) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r = 0, dfd;

        dfd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d) {
                safe_close(dfd);
                return -errno;
        }
        while ((de = readdir(d)))
                if (is_sandbox_id(de->d_name)) {
                        int k = fn(dir_fd, de->d_name);
                        if (k > 0)
                                (*n)++;
                        else if (k < 0 && r == 0)
                                r = k;
                }
        return r;
}

int sandbox_cleanup_stale(const SandboxConfig *cfg, unsigned *ret_removed) {
        const char *state_dir = cfg ? cfg->state_dir : NULL, *data_dir = cfg ? cfg->data_dir : NULL;
        _cleanup_close_ int fd = -EBADF, data = -EBADF;
        unsigned n = 0;
        int r = 0;

        fd = open(state_dir ?: DEFAULT_STATE_DIR, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (fd < 0 && errno != ENOENT)
                return -errno;
        if (fd >= 0)
                r = cleanup_ids(fd, cleanup_one, &n);
        /* Throw-away uppers whose sandbox is gone (the state entry may be gone already). */
        {
                _cleanup_close_ int top = open(data_dir ?: DEFAULT_DATA_DIR, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
                                               O_RDONLY);
                if (top >= 0)
                        data = openat(top, "sandboxes", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
                if (data >= 0) {
                        unsigned m = 0;
                        int k = cleanup_ids(data, cleanup_one_data, &m);
                        if (k < 0 && r == 0)
                                r = k;
                }
        }
        {
                /* Published ports of sandboxes that are gone, whoever made them. */
                NetConfig defaults;
                net_config_init(&defaults);
                int k = net_cleanup_stale(cfg && cfg->net ? cfg->net : &defaults);
                if (k < 0 && r == 0)
                        r = k;
        }
        if (ret_removed)
                *ret_removed = n;
        return r;
}

struct in_addr sandbox_address(const Sandbox *s) {
        return s->lease ? net_lease_address(s->lease) : (struct in_addr) {};
}

int sandbox_pause(Sandbox *s) {
        if (s->finished || !s->cgroup)
                return -ESRCH;
        return cgroup_child_freeze(s->cgroup, CGROUP_CHILD_PROGRAM, true);
}

int sandbox_update(Sandbox *s, const SandboxUpdate *u) {
        int r;

        if (!u)
                return -EINVAL;
        if (s->finished || !s->cgroup)
                return -ESRCH;
        if (u->memory_max == SPEC_UNLIMITED || u->pids_max == SPEC_UNLIMITED || u->cpus_milli > 1024 * 1000)
                return -EINVAL;
        CgroupLimits l = {
                .memory_max = u->memory_max,
                .pids_max = u->pids_max ? u->pids_max + UNION_PIDS_MAX : 0,
                .program_pids_max = u->pids_max,
                .cpu_quota_us = (uint64_t) u->cpus_milli * 100,
                .cpu_period_us = u->cpus_milli ? 100000 : 0,
        };
        r = cgroup_update_limits(s->cgroup, &l);
        if (r < 0)
                return r;
        if (u->memory_max)
                s->resolved.memory_max = u->memory_max;
        if (u->pids_max)
                s->resolved.pids_max = u->pids_max;
        if (u->cpus_milli)
                s->resolved.cpus_milli = u->cpus_milli;
        return 0;
}

int sandbox_resume(Sandbox *s) {
        if (s->finished || !s->cgroup)
                return -ESRCH;
        return cgroup_child_freeze(s->cgroup, CGROUP_CHILD_PROGRAM, false);
}

int sandbox_terminate(Sandbox *s) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r;

        if (s->finished || !s->cgroup)
                return -ESRCH;
        r = cgroup_child_procs(s->cgroup, CGROUP_CHILD_PROGRAM, &pids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (pids[i] != s->pid)
                        (void) kill(pids[i], SIGTERM);
        return 0;
}

void sandbox_kill_all(Sandbox *s) {
        if (s->finished)
                return;
        if (s->cgroup)
                (void) cgroup_child_freeze(s->cgroup, CGROUP_CHILD_PROGRAM, false);
        sandbox_kill(s);
}

int sandbox_count_processes(Sandbox *s, size_t *ret_n) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, k = 0;
        int r;

        if (s->finished || !s->cgroup)
                return -ESRCH;
        r = cgroup_child_procs(s->cgroup, CGROUP_CHILD_PROGRAM, &pids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (pids[i] != s->pid)
                        k++;
        *ret_n = k;
        return 0;
}

int sandbox_usage_cgroup(Sandbox *s, SandboxUsage *ret) {
        SandboxUsage u = {};
        int r;

        if (s->finished || !s->cgroup)
                return -ESRCH;
        r = cgroup_get_memory_current(s->cgroup, &u.memory_bytes);
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        r = cgroup_get_cpu_usec(s->cgroup, &u.cpu_usec);
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        *ret = u;
        return 0;
}

int sandbox_root_fd(Sandbox *s) {
        char root[64];
        int fd;

        if (s->finished || s->pid <= 0)
                return -ESRCH;
        /* The magic link gives the root's dentry: no lookup, no open reaches the union's server. */
        snprintf(root, sizeof root, "/proc/%d/root", s->pid);
        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int sandbox_disk_usage_at(int root_fd, SandboxUsage *u) {
        struct statvfs sv;

        if (fstatvfs(root_fd, &sv) < 0)
                return -errno;
        if (sv.f_blocks < sv.f_bfree)
                return -EIO;
        u->disk_bytes = (uint64_t) (sv.f_blocks - sv.f_bfree) * sv.f_frsize;
        if (sv.f_files >= sv.f_ffree)
                u->disk_inodes = (uint64_t) (sv.f_files - sv.f_ffree);
        u->disk_known = true;
        return 0;
}

const SandboxSpec *sandbox_spec(const Sandbox *s) {
        return s->spec;
}

uint64_t sandbox_created_usec(const Sandbox *s) {
        return s->created_realtime_usec;
}
