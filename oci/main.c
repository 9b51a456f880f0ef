/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-oci: an OCI runtime with runc's command line (create, start, state, kill, delete, exec, ps, features,
 * spec), on the runtime library that sandbox-run and sandboxd use.
 *
 * `create` forks a monitor that starts the sandbox with sandbox_create() (everything made, the program held),
 * and returns once it is created. The monitor is the container's pid (the --pid-file's): the engine's shim or
 * conmon, as subreaper, inherits it when `create` exits and waits for it; it exits with the program's status
 * (128+N for a signal) after removing what the sandbox used (sandbox_finish()). The other commands talk to the
 * monitor over ROOT/ID/ctl (a SOCK_SEQPACKET socket, root only): "start", "kill SIG ALL". The state (ROOT/ID/
 * state.json) is written by the monitor, atomically; a monitor that is gone is a stopped container.
 */
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/nsfs.h>
#include <sched.h>

#include "bundle.h"
#include "cgroup.h"
#include "config.h"
#include "exec.h"
#include "filter.h"
#include "fs.h"
#include "macro.h"
#include "parse.h"
#include "sandbox.h"
#include "setup.h"
#include "state.h"
#include "systemd-cgroup.h"

#define DEFAULT_ROOT "/run/sandbox-oci"
#define CTL_MESSAGE_MAX 4096
#define HOOK_DEFAULT_TIMEOUT_SEC 60

static const char *arg_root = DEFAULT_ROOT;
static FILE *log_file;
static bool log_json;
static bool stderr_quiet;       /* the monitor: stderr is /dev/null or the log already */
static bool arg_systemd_cgroup; /* --systemd-cgroup: the container's cgroup is a systemd scope */

/* ---- messages: stderr, and the --log file (text or runc's JSON lines, which containerd reads back) ---- */

__attribute__((format(printf, 1, 2)))
static int error(const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (!stderr_quiet)
                fprintf(stderr, "sandbox-oci: %s\n", msg);
        if (log_file) {
                if (log_json) {
                        char ts[64];
                        time_t t = time(NULL);
                        struct tm tm;
                        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
                        json_t *o = json_pack("{s:s,s:s,s:s}", "level", "error", "msg", msg, "time", ts);
                        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
                        if (line)
                                fprintf(log_file, "%s\n", line);
                        free(line);
                        json_decref(o);
                } else
                        fprintf(log_file, "sandbox-oci: %s\n", msg);
                fflush(log_file);
        }
        return -1;
}

/* ---- ids and the state directory ---- */

static int open_root(bool create) {
        int fd;

        if (create) {
                /* As runc: the parents too (containerd passes /run/containerd/runc/NAMESPACE). */
                char buf[1024];
                snprintf(buf, sizeof buf, "%s", arg_root);
                for (char *p = buf + 1; *p; p++)
                        if (*p == '/') {
                                *p = '\0';
                                if (mkdir(buf, 0711) < 0 && errno != EEXIST)
                                        return -errno;
                                *p = '/';
                        }
                if (mkdir(arg_root, 0700) < 0 && errno != EEXIST)
                        return -errno;
        }
        fd = open(arg_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        return fd;
}

static int open_container(const char *id, int *ret_root) {
        _cleanup_close_ int root = -EBADF;
        int fd;

        if (!id_valid(id))
                return error("'%s' is not a valid container ID (1-%d letters, digits, '_', '.', '-', '+')", id,
                             ID_MAX - 1), -EINVAL;
        root = open_root(false);
        if (root < 0)
                return error("container %s does not exist (%s: %s)", id, arg_root, strerror(-root)), root;
        fd = openat(root, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return error("container %s does not exist", id), -ENOENT;
        if (ret_root)
                *ret_root = TAKE_FD(root);
        return fd;
}

static int state_write(int dir, json_t *doc) {
        _cleanup_free_ char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                return -ENOMEM;
        return write_file_atomic_at(dir, "state.json", s, strlen(s), 0600);
}

/* ---- the monitor's control socket ---- */

static int ctl_address(int dir, struct sockaddr_un *sa, socklen_t *len) {
        /* By the directory's fd: the path may be longer than sun_path. */
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        int n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/ctl", dir);
        if (n < 0 || (size_t) n >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + (size_t) n + 1);
        return 0;
}

/* Send REQUEST to the monitor, and its answer ("ok" or "error: ...") into REPLY. */
static int ctl_call(int dir, const char *request, char *reply, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t len;
        ssize_t n;
        int r;

        r = ctl_address(dir, &sa, &len);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0)
                return -errno;
        do
                n = recv(fd, reply, size - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return n < 0 ? -errno : -ECONNRESET;
        reply[n] = '\0';
        return 0;
}

/* ---- hooks: the state on stdin, a timeout each ---- */

/* Where a hook runs. createContainer: in the container's namespaces but its user and pid ones (as host root, as
 * runc runs it before pivot_root), its root directory the host's so that its path and libraries resolve in the
 * runtime's namespace, its working directory the container's root. startContainer: in the container, as its root,
 * with the container's bounding set, no_new_privs, our seccomp allow-list and the engine's profile, in its cgroups;
 * its path resolves in the container. */
typedef enum HookWhere {
        HOOK_RUNTIME,
        HOOK_CONTAINER_MOUNTS,
        HOOK_CONTAINER,
} HookWhere;

static const OciBundle *hook_bundle;    /* for HOOK_CONTAINER: the capabilities and the engine's profile */

/* In the forked hook process: enter what WHERE says. A failure: -errno. May fork once more (the pid namespace
 * applies to children only): the parent then waits and _exit()s with the hook's status. */
static int hook_enter(HookWhere where, pid_t init) {
        _cleanup_close_ int pidfd = -EBADF, host_root = -EBADF, croot = -EBADF;
        char path[64];

        if (where == HOOK_RUNTIME)
                return 0;
        pidfd = (int) syscall(SYS_pidfd_open, init, 0);
        if (pidfd < 0)
                return -errno;
        /* Nothing of the host's comes along: no supplementary groups, not dumpable. */
        if (setgroups(0, NULL) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        if (where == HOOK_CONTAINER_MOUNTS) {
                /* As the container's root (host root owns nothing in its union: it maps only the container's
                 * ids), not in its pid namespace: nothing in the container sees the hook. */
                snprintf(path, sizeof path, "/proc/%d/root", init);
                host_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                croot = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (host_root < 0 || croot < 0)
                        return -errno;
                if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                                 CLONE_NEWCGROUP) < 0 ||
                    setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 ||
                    fchdir(host_root) < 0 || chroot(".") < 0 || fchdir(croot) < 0)
                        return -errno;
                return 0;
        }
        if (oci_join_cgroups(init) < 0)
                return -errno;
        if (setns(pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP |
                         CLONE_NEWPID) < 0 ||
            setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return -errno;
        uint64_t caps = spec_capabilities(&hook_bundle->spec);
        for (int c = 0; c <= CAP_LAST_CAP; c++)
                if (!(caps & (UINT64_C(1) << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || chdir("/") < 0)
                return -errno;
        pid_t child = fork();
        if (child < 0)
                return -errno;
        if (child > 0) {
                int status;
                while (waitpid(child, &status, 0) < 0)
                        if (errno != EINTR)
                                _exit(127);
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        _cleanup_(filter_program_freep) FilterProgram *filter = NULL;
        int r = filter_compile("default", &filter, NULL);
        if (r < 0)
                return r;
        if (filter_install(filter) < 0 || (hook_bundle->seccomp && filter_install(hook_bundle->seccomp) < 0))
                return -errno;
        return 0;
}

static int run_hook(const OciHook *h, const char *state_json, const char *kind, HookWhere where, pid_t init) {
        int in[2];
        pid_t pid;
        int status;

        if (pipe2(in, O_CLOEXEC) < 0)
                return error("hook %s %s: %m", kind, h->path);
        pid = fork();
        if (pid < 0)
                return error("hook %s %s: %m", kind, h->path);
        if (pid == 0) {
                char *const empty[] = { NULL };
                char *const argv0[] = { h->path, NULL };
                if (dup2(in[0], 0) < 0)
                        _exit(127);
                close(in[1]); /* a process of ours that stays (HOOK_CONTAINER) must not keep the hook's EOF away */
                int r = hook_enter(where, init);
                if (r < 0) {
                        fprintf(stderr, "sandbox-oci: hook %s %s: cannot enter the container: %s\n", kind, h->path,
                                strerror(-r));
                        _exit(127);
                }
                /* Hooks write to our stderr; their stdout is ours too (runc does the same). */
                execve(h->path, h->args ?: argv0, h->env ?: empty);
                fprintf(stderr, "sandbox-oci: hook %s %s: %m\n", kind, h->path);
                _exit(127);
        }
        close(in[0]);
        (void) !write(in[1], state_json, strlen(state_json));
        close(in[1]);

        unsigned timeout = h->timeout ?: HOOK_DEFAULT_TIMEOUT_SEC;
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        if (pidfd >= 0 && poll(&p, 1, (int) timeout * 1000) == 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                close(pidfd);
                return error("hook %s %s did not end within %u s", kind, h->path, timeout);
        }
        safe_close(pidfd);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return error("hook %s %s failed (%s %d)", kind, h->path, WIFEXITED(status) ? "exit status" : "signal",
                             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 0;
}

static int run_hooks(const OciBundle *b, OciHookKind kind, json_t *state) {
        HookWhere where = kind == OCI_HOOK_CREATE_CONTAINER ? HOOK_CONTAINER_MOUNTS :
                          kind == OCI_HOOK_START_CONTAINER ? HOOK_CONTAINER : HOOK_RUNTIME;
        pid_t init = (pid_t) json_integer_value(json_object_get(state, "initPid"));
        _cleanup_free_ char *s = NULL;

        if (b->n_hooks[kind] == 0)
                return 0;
        json_t *copy = json_deep_copy(state);
        json_object_del(copy, "monitorStartTime");
        json_object_del(copy, "initPid");
        json_object_del(copy, "startError");
        s = json_dumps(copy, JSON_COMPACT);
        json_decref(copy);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_hooks[kind]; i++)
                if (run_hook(&b->hooks[kind][i], s, oci_hook_kind_to_string(kind), where, init) < 0)
                        return -EIO;
        return 0;
}

/* The runtime-spec state of a container. */
static json_t *state_new(const char *id, const char *status, pid_t pid, const char *bundle, const char *created) {
        return json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:{}}", "ociVersion", "1.0.2", "id", id, "status", status, "pid",
                         (json_int_t) pid, "bundle", bundle, "created", created, "annotations");
}

static int read_bundle(const char *bundle_arg, char **ret_bundle, OciBundle *ret) {
        _cleanup_free_ char *bundle = NULL, *buf = NULL;
        _cleanup_close_ int dir = -EBADF;
        char err[1024];
        size_t size;
        int r;

        bundle = realpath(bundle_arg ?: ".", NULL);
        if (!bundle)
                return error("bundle %s: %m", bundle_arg ?: ".");
        dir = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return error("bundle %s: %m", bundle);
        r = read_file_at(dir, "config.json", OCI_CONFIG_SIZE_MAX, &buf, &size);
        if (r == -EFBIG || r == -E2BIG)
                return error("%s/config.json is larger than %" PRIu64 " bytes", bundle, OCI_CONFIG_SIZE_MAX);
        if (r < 0)
                return error("%s/config.json: %s", bundle, strerror(-r));
        r = oci_bundle_parse(buf, size, bundle, ret, err, sizeof err);
        if (r < 0)
                return error("%s/config.json: %s", bundle, err);
        struct stat st;
        if (stat(ret->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
                error("root.path %s is not a directory", ret->root);
                oci_bundle_done(ret);
                return -1;
        }
        *ret_bundle = TAKE_PTR(bundle);
        return 0;
}

/* ---- the console socket ---- */

static int send_console(const char *socket_path, int pty) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char name[] = "/dev/ptmx";
        struct iovec iov = { .iov_base = name, .iov_len = sizeof name - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };

        if (strlen(socket_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pty, sizeof(int));
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

/* ---- the monitor ---- */

typedef struct Monitor {
        const char *id;
        const char *bundle_path;
        OciBundle *bundle;
        int dir;
        json_t *state;
        Sandbox *sandbox;
        int ready_fd;           /* the create command waits here: "ok" or the error */
        const OciScope *scope;  /* --systemd-cgroup: the scope to make and divide; NULL: cgroupfs */
} Monitor;

static void monitor_set_status(Monitor *m, const char *status) {
        json_object_set_new(m->state, "status", json_string(status));
        (void) state_write(m->dir, m->state);
}

__attribute__((format(printf, 2, 3)))
_Noreturn static void monitor_fail(Monitor *m, const char *fmt, ...) {
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (m->ready_fd >= 0)
                (void) !write(m->ready_fd, msg, strlen(msg));
        else
                error("%s", msg);
        if (m->sandbox) {
                (void) sandbox_finish(m->sandbox, true, NULL);
                sandbox_free(m->sandbox);
        }
        (void) sandbox_remove_cgroup_parent();
        _exit(1);
}

/* Every process of the sandbox (in its pid namespace) but the init: SIG to each. */
static void signal_all(pid_t init, int sig) {
        char path[64];
        struct stat ns;
        DIR *d;
        struct dirent *de;

        snprintf(path, sizeof path, "/proc/%d/ns/pid", init);
        if (stat(path, &ns) < 0)
                return;
        d = opendir("/proc");
        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                struct stat st;
                if (*end || pid <= 0 || pid == init)
                        continue;
                snprintf(path, sizeof path, "/proc/%ld/ns/pid", pid);
                if (stat(path, &st) == 0 && st.st_ino == ns.st_ino && st.st_dev == ns.st_dev)
                        (void) kill((pid_t) pid, sig);
        }
        closedir(d);
}

static void monitor_handle(Monitor *m, int fd) {
        char req[CTL_MESSAGE_MAX + 1], reply[2048] = "ok";
        SandboxError serr = {};
        ssize_t n;
        int r;

        n = recv(fd, req, CTL_MESSAGE_MAX, 0);
        if (n <= 0)
                return;
        req[n] = '\0';
        if (streq(req, "start")) {
                if (!sandbox_is_held(m->sandbox))
                        snprintf(reply, sizeof reply, "error: container %s is not in the created state", m->id);
                else if (run_hooks(m->bundle, OCI_HOOK_START_CONTAINER, m->state) < 0) {
                        /* As the runtime-spec says: an error, and the container stopped. */
                        snprintf(reply, sizeof reply, "error: a startContainer hook failed: the container is stopped");
                        (void) kill(sandbox_pid(m->sandbox), SIGKILL);
                } else if (sandbox_release(m->sandbox, &serr) < 0) {
                        snprintf(reply, sizeof reply, "error: %s", serr.message);
                        json_object_set_new(m->state, "startError", json_string(serr.message));
                } else {
                        monitor_set_status(m, "running");
                        if (run_hooks(m->bundle, OCI_HOOK_POSTSTART, m->state) < 0)
                                snprintf(reply, sizeof reply, "error: a poststart hook failed");
                }
        } else if (streq(req, "pause") || streq(req, "resume")) {
                bool pause = streq(req, "pause");
                const char *status = json_string_value(json_object_get(m->state, "status"));
                if (sandbox_is_held(m->sandbox) || !status || !streq(status, pause ? "running" : "paused"))
                        snprintf(reply, sizeof reply, "error: container %s is %s, not %s", m->id, status ?: "?",
                                 pause ? "running" : "paused");
                else if ((r = pause ? sandbox_pause(m->sandbox) : sandbox_resume(m->sandbox)) < 0)
                        snprintf(reply, sizeof reply, "error: cannot %s the container: %s", pause ? "pause" : "resume",
                                 r == -EOPNOTSUPP ? "no freezer cgroup" : strerror(-r));
                else
                        monitor_set_status(m, pause ? "paused" : "running");
        } else if (strneq(req, "update ", 7)) {
                SandboxUpdate u = {};
                unsigned long long mem, pids;
                unsigned cpus;
                if (sscanf(req + 7, "%llu %llu %u", &mem, &pids, &cpus) != 3)
                        snprintf(reply, sizeof reply, "error: bad request");
                else {
                        u = (SandboxUpdate) { .memory_max = mem, .pids_max = pids, .cpus_milli = cpus };
                        r = sandbox_update(m->sandbox, &u);
                        if (r < 0)
                                snprintf(reply, sizeof reply, "error: cannot update the container's bounds: %s",
                                         r == -EOPNOTSUPP ? "the container has no cgroup of that controller (a "
                                         "CPU bound can be changed only if it was created with one on cgroup v2, "
                                         "or without run.sandbox.limits=none on v1)" : strerror(-r));
                }
        } else if (strneq(req, "kill ", 5)) {
                int sig = 0, all = 0;
                if (sscanf(req + 5, "%d %d", &sig, &all) != 2 || sig <= 0 || sig >= _NSIG)
                        snprintf(reply, sizeof reply, "error: bad request");
                else if (sandbox_is_held(m->sandbox)) {
                        /* Nothing of the program runs yet: any signal that would end it ends the sandbox. */
                        if (sig != SIGCHLD && sig != SIGCONT && sig != SIGWINCH && sig != SIGURG)
                                (void) kill(sandbox_pid(m->sandbox), SIGKILL);
                } else if (all && sig != SIGKILL)
                        signal_all(sandbox_pid(m->sandbox), sig);
                else if (sig == SIGKILL) {
                        (void) kill(sandbox_pid(m->sandbox), SIGKILL); /* the pid namespace ends with its init */
                        (void) sandbox_resume(m->sandbox); /* a paused one dies only once thawed (v1) */
                }
                else if (sandbox_signal(m->sandbox, sig) < 0)
                        snprintf(reply, sizeof reply, "error: %m");
        } else
                snprintf(reply, sizeof reply, "error: unknown request");
        (void) send(fd, reply, strlen(reply), MSG_NOSIGNAL);
}

/* An engine names a namespace of another container of ours by its pid, /proc/PID/ns/TYPE (containerd: a pod's
 * IPC and UTS namespaces, those of its sandbox container; podman: --network container:NAME). That pid is the
 * container's monitor, which is in the host's namespaces: the namespace meant is its init's. For PATH of that
 * form naming a live monitor of a container under --root, *RET gets /proc/INIT/ns/TYPE; else NULL. */
static int monitor_ns_path(const char *path, char **ret) {
        _cleanup_close_ int root = -EBADF;
        char type[16];
        int pid, n = 0;
        DIR *d;

        *ret = NULL;
        if (sscanf(path, "/proc/%d/ns/%15[a-z]%n", &pid, type, &n) != 2 || path[n] != '\0' || pid <= 0)
                return 0;
        root = open_root(false);
        if (root < 0)
                return 0;
        d = fdopendir(fcntl(root, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                if (!id_valid(de->d_name))
                        continue;
                _cleanup_close_ int dir = openat(root, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                State st = {};
                if (dir < 0 || state_read(dir, &st) < 0)
                        continue;
                pid_t init = (pid_t) json_integer_value(json_object_get(st.doc, "initPid"));
                bool match = st.alive && st.pid == pid && init > 0;
                state_done(&st);
                if (match) {
                        closedir(d);
                        return asprintf(ret, "/proc/%d/ns/%s", init, type) < 0 ? -ENOMEM : 1;
                }
        }
        closedir(d);
        return 0;
}

/* PATH, an nsfs file of the namespace type J (a bind mount as `ip netns add` makes, or /proc/PID/ns/...). Never
 * our own (the host's): a UTS one would get the container's hostname, set from outside. -EEXIST then. */
static int open_namespace(const char *path, OciJoin j) {
        static const int types[_OCI_JOIN_MAX] = {
                [OCI_JOIN_NET] = CLONE_NEWNET, [OCI_JOIN_IPC] = CLONE_NEWIPC, [OCI_JOIN_UTS] = CLONE_NEWUTS,
        };
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        int type;

        if (fd < 0)
                return -errno;
        type = ioctl(fd, NS_GET_NSTYPE);
        if (type < 0)
                return errno == ENOTTY ? -EINVAL : -errno;
        if (type != types[j])
                return -EINVAL;
        static const char *const own[_OCI_JOIN_MAX] = {
                [OCI_JOIN_NET] = "/proc/self/ns/net", [OCI_JOIN_IPC] = "/proc/self/ns/ipc",
                [OCI_JOIN_UTS] = "/proc/self/ns/uts",
        };
        struct stat a, b;
        if (fstat(fd, &a) < 0 || stat(own[j], &b) < 0)
                return -errno;
        if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                return -EEXIST;
        return TAKE_FD(fd);
}

_Noreturn static void monitor_run(Monitor *m, int listen_fd, const char *console_socket) {
        SandboxError serr = {};
        SandboxResult res = {};
        SandboxConfig cfg = { .state_dir = getenv("SANDBOX_STATE_DIR"), .data_dir = getenv("SANDBOX_DATA_DIR"),
                              .engine_filter = m->bundle->seccomp, .groups = m->bundle->gids,
                              .n_groups = m->bundle->n_gids,
                              .cpuset_io = m->bundle->has_cpuset_io ? &m->bundle->cpuset_io : NULL };
        int stdio[3] = { 0, 1, 2 };
        sigset_t mask;
        int sfd, r;
        char err[1024];

        (void) setsid();
        /* --systemd-cgroup: into the container's scope, then divided as a delegated scope is (the sandbox's
         * cgroup beside our leaf). */
        if (m->scope) {
                char desc[128];
                snprintf(desc, sizeof desc, "sandbox-oci container %s", m->id);
                if (oci_systemd_scope_join(m->scope, desc, err, sizeof err) < 0)
                        monitor_fail(m, "%s", err);
                if (sandbox_setup_cgroups("supervisor", NULL) <= 0)
                        monitor_fail(m, "--systemd-cgroup: the scope %s is not delegated to us (systemd marks "
                                     "Delegate=yes scopes since version 251)", m->scope->unit);
        }
        /* Forwarded to the program: what an engine may send our pid directly. */
        sigemptyset(&mask);
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig != SIGSEGV && sig != SIGBUS &&
                    sig != SIGILL && sig != SIGFPE && sig != SIGABRT && sig != SIGTTIN && sig != SIGTTOU && sig != SIGTSTP &&
                    sig < SIGRTMIN)
                        sigaddset(&mask, sig);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        /* A hard limit above ours needs CAP_SYS_RESOURCE, which root lacks on some hosts (engines ask for
         * RLIMIT_NOFILE 1048576 as a matter of course): what we cannot raise is clamped to what we have. */
        for (size_t i = 0; i < m->bundle->spec.n_rlimits; i++) {
                SpecRlimit *rl = &m->bundle->spec.rlimits[i];
                struct rlimit own;
                if (getrlimit(rl->resource, &own) < 0 || own.rlim_max == RLIM_INFINITY || rl->hard <= own.rlim_max)
                        continue;
                if (prlimit(0, rl->resource, &(struct rlimit) { .rlim_cur = own.rlim_cur, .rlim_max = rl->hard }, NULL) == 0)
                        continue; /* we may raise it */
                rl->hard = own.rlim_max;
                rl->soft = MIN(rl->soft, rl->hard);
        }
        /* The engine's stdio is the program's only: the init gets it (none with a terminal, whose program's
         * stdio is its pty), we and what we start (the union's server) get /dev/null. containerd's shim waits
         * for the end of create's output before it goes on, conmon for the end of the program's. */
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        int engine[3] = { -EBADF, -EBADF, -EBADF };
        if (null_fd < 0)
                monitor_fail(m, "/dev/null: %m");
        for (int i = 0; i < 3; i++) {
                engine[i] = m->bundle->spec.tty ? -EBADF : fcntl(i, F_DUPFD_CLOEXEC, 3);
                stdio[i] = m->bundle->spec.tty ? null_fd : engine[i];
                if (stdio[i] < 0)
                        monitor_fail(m, "stdio: %m");
        }
        for (int i = 0; i < 3; i++)
                if (dup2(i == 2 && log_file ? fileno(log_file) : null_fd, i) < 0)
                        monitor_fail(m, "stdio: %m");
        stderr_quiet = true;
        /* No CPU bound in config.json: on cgroup v1, one of every CPU of the host (which throttles nothing), so
         * that the sandbox has its cpu cgroup and `update` can bound it later. (On v2 the cpu controller is
         * enabled only for a bound asked for: where it is not offered, the container would not start.) */
        CgroupLayout layout;
        if (m->bundle->spec.cpus_milli == 0 && !m->bundle->no_limits && cgroup_detect_layout(&layout) >= 0 &&
            layout == CGROUP_LAYOUT_V1) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                m->bundle->spec.cpus_milli = (uint32_t) MIN(MAX(n, 1L), 1024L) * 1000;
        }
        /* process.oomScoreAdj, but never below the union's server (our own score, which it inherits): the
         * program must stay the OOM killer's choice before the server it depends on. */
        int oom = 0;
        if (m->bundle->has_oom_score_adj) {
                oom = oci_program_oom_score_adj(m->bundle->oom_score_adj, oci_own_oom_score_adj());
                cfg.oom_score_adj = &oom;
        }
        SandboxJoin join = { .net_fd = -EBADF, .ipc_fd = -EBADF, .uts_fd = -EBADF };
        int *join_fds[_OCI_JOIN_MAX] = { [OCI_JOIN_NET] = &join.net_fd, [OCI_JOIN_IPC] = &join.ipc_fd,
                                         [OCI_JOIN_UTS] = &join.uts_fd };
        for (OciJoin j = 0; j < _OCI_JOIN_MAX; j++) {
                if (!m->bundle->join[j])
                        continue;
                _cleanup_free_ char *mapped = NULL;
                r = monitor_ns_path(m->bundle->join[j], &mapped);
                if (r < 0)
                        monitor_fail(m, "linux.namespaces: the %s namespace %s: %s", oci_join_to_string(j),
                                     m->bundle->join[j], strerror(-r));
                r = open_namespace(mapped ?: m->bundle->join[j], j);
                if (r < 0)
                        monitor_fail(m, "linux.namespaces: the %s namespace %s: %s", oci_join_to_string(j),
                                     m->bundle->join[j], r == -EINVAL ? "not a namespace of this type" :
                                     r == -EEXIST ? "it is the host's own (leave the path out for the host's "
                                     "network; a container shares the host's IPC and UTS namespaces never)" :
                                     strerror(-r));
                *join_fds[j] = r;
                cfg.join = &join;
        }
        r = sandbox_create(&m->bundle->spec, &cfg, stdio, m->bundle->umask, &m->sandbox, &serr);
        for (OciJoin j = 0; j < _OCI_JOIN_MAX; j++)
                safe_close(*join_fds[j]);
        for (int i = 0; i < 3; i++)
                safe_close(engine[i]);
        if (r < 0)
                monitor_fail(m, "%s", serr.message);
        if (m->bundle->spec.tty) {
                if (!console_socket)
                        monitor_fail(m, "process.terminal is true but there is no --console-socket");
                r = send_console(console_socket, sandbox_pty_fd(m->sandbox));
                if (r < 0)
                        monitor_fail(m, "--console-socket %s: %s", console_socket, strerror(-r));
        }
        r = oci_setup_apply(m->bundle, sandbox_pid(m->sandbox), err, sizeof err);
        if (r < 0)
                monitor_fail(m, "%s", err);
        json_object_set_new(m->state, "status", json_string("created"));
        json_object_set_new(m->state, "initPid", json_integer(sandbox_pid(m->sandbox)));
        hook_bundle = m->bundle;
        if (run_hooks(m->bundle, OCI_HOOK_PRESTART, m->state) < 0 ||
            run_hooks(m->bundle, OCI_HOOK_CREATE_RUNTIME, m->state) < 0 ||
            run_hooks(m->bundle, OCI_HOOK_CREATE_CONTAINER, m->state) < 0)
                monitor_fail(m, "a prestart, createRuntime or createContainer hook failed");
        r = state_write(m->dir, m->state);
        if (r < 0)
                monitor_fail(m, "Cannot write the state: %s", strerror(-r));
        (void) !write(m->ready_fd, "ok", 2);
        m->ready_fd = safe_close(m->ready_fd);

        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        for (;;) {
                struct pollfd p[3] = {
                        { .fd = listen_fd, .events = POLLIN },
                        { .fd = sandbox_pidfd(m->sandbox), .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                };
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                if (p[2].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof si) == sizeof si) {
                                if (sandbox_is_held(m->sandbox))
                                        (void) kill(sandbox_pid(m->sandbox), SIGKILL);
                                else
                                        (void) sandbox_signal(m->sandbox, (int) si.ssi_signo);
                        }
                }
                if (p[0].revents & POLLIN) {
                        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd >= 0) {
                                monitor_handle(m, fd);
                                close(fd);
                        }
                }
        }
        (void) sandbox_collect(m->sandbox, true, &res);
        json_object_set_new(m->state, "exitStatus", json_integer(res.status));
        monitor_set_status(m, "stopped");
        (void) sandbox_cleanup(m->sandbox);
        sandbox_free(m->sandbox);
        (void) sandbox_remove_cgroup_parent();
        _exit(res.status & 0xff);
}

/* ---- commands ---- */

static int write_pid_file(const char *path, pid_t pid) {
        char buf[32];
        _cleanup_free_ char *dir = NULL, *name = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int r;

        r = path_split(path, &dir, &name);
        if (r < 0)
                return r;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        snprintf(buf, sizeof buf, "%d", pid);
        return write_file_atomic_at(dfd, name, buf, strlen(buf), 0644);
}

static int cmd_create(const char *id, const char *bundle_arg, const char *pid_file, const char *console_socket) {
        _cleanup_free_ char *bundle = NULL;
        _cleanup_close_ int root = -EBADF, dir = -EBADF, listen_fd = -EBADF;
        OciBundle b = { .umask = -1 };
        OciScope scope = {};
        int ready[2];
        char created[64], msg[2048];
        struct sockaddr_un sa;
        socklen_t len;
        pid_t pid;
        ssize_t n;
        int r;

        if (!id_valid(id))
                return error("'%s' is not a valid container ID (1-%d letters, digits, '_', '.', '-', '+')", id,
                             ID_MAX - 1);
        if (read_bundle(bundle_arg, &bundle, &b) < 0)
                return -1;
        root = open_root(true);
        if (root < 0) {
                oci_bundle_done(&b);
                return error("--root %s: %s", arg_root, strerror(-root));
        }
        if (mkdirat(root, id, 0700) < 0) {
                int e = errno;
                oci_bundle_done(&b);
                return error(e == EEXIST ? "container %s exists already" : "container %s: %s", id, strerror(e));
        }
        dir = openat(root, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (dir < 0 || listen_fd < 0 || ctl_address(dir, &sa, &len) < 0 ||
            bind(listen_fd, (struct sockaddr *) &sa, len) < 0 || listen(listen_fd, 16) < 0 ||
            pipe2(ready, O_CLOEXEC) < 0) {
                r = error("container %s: cannot make its state directory: %m", id);
                goto fail;
        }
        {
                time_t t = time(NULL);
                struct tm tm;
                strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        }
        /* The container's cgroup (v2): below linux.cgroupsPath when the engine names one (as runc, made
         * where missing), else below ours, which must then be a delegated scope of its own. The monitor,
         * forked next, makes the sandbox's cgroup there; what it made is removed with the container. */
        sandbox_set_cgroup_opt_out("set no limits in config.json and the annotation " OCI_ANNOTATION_LIMITS
                                   "=none to run without them");
        if (arg_systemd_cgroup) {
                r = oci_systemd_scope_parse(b.cgroups_path, id, &scope, msg, sizeof msg);
                if (r < 0) {
                        r = error("%s", msg);
                        goto fail;
                }
        } else if (b.cgroups_path && strchr(b.cgroups_path, ':')) {
                r = error("linux.cgroupsPath '%s' is in systemd's form (slice:prefix:name), which needs "
                          "--systemd-cgroup; without it sandbox-oci takes the cgroupfs form /a/b", b.cgroups_path);
                goto fail;
        } else if (b.cgroups_path) {
                r = sandbox_setup_cgroup_parent(b.cgroups_path);
                if (r < 0) {
                        r = error(r == -EINVAL ? "linux.cgroupsPath '%s' is not a cgroup path (at most 16 names, no '.' "
                                                 "or '..')" : "linux.cgroupsPath '%s': cannot make it: %s",
                                  b.cgroups_path, strerror(-r));
                        goto fail;
                }
        } else
                (void) sandbox_setup_cgroups("supervisor", "run sandbox-oci as the command of a delegated scope "
                                             "(systemd-run --scope -p Delegate=yes), or name linux.cgroupsPath");

        /* What `state` says while the monitor starts: creating, without a pid. */
        json_t *state = state_new(id, "creating", 0, bundle, created);
        if (!state) {
                r = error("Out of memory");
                goto fail;
        }
        (void) state_write(dir, state);

        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                r = error("fork: %m");
                json_decref(state);
                goto fail;
        }
        if (pid == 0) {
                close(ready[0]);
                json_object_set_new(state, "pid", json_integer(getpid()));
                json_object_set_new(state, "monitorStartTime", json_integer((json_int_t) pid_start_time(getpid())));
                Monitor m = { .id = id, .bundle_path = bundle, .bundle = &b, .dir = dir, .state = state,
                              .ready_fd = ready[1], .scope = arg_systemd_cgroup ? &scope : NULL };
                monitor_run(&m, listen_fd, console_socket);
        }
        json_decref(state);
        close(ready[1]);
        do
                n = read(ready[0], msg, sizeof msg - 1);
        while (n < 0 && errno == EINTR);
        close(ready[0]);
        if (n < 0)
                n = 0;
        msg[n] = '\0';
        if (!streq(msg, "ok")) {
                (void) waitpid(pid, NULL, 0);
                r = error("%s", *msg ? msg : "the container's monitor died during the start");
                goto fail;
        }
        if (pid_file && (r = write_pid_file(pid_file, pid)) < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                r = error("--pid-file %s: %s", pid_file, strerror(-r));
                goto fail;
        }
        oci_bundle_done(&b);
        return 0;
fail:
        oci_bundle_done(&b);
        (void) sandbox_remove_cgroup_parent();
        (void) unlinkat(root, id, 0);
        if (dir >= 0) {
                (void) unlinkat(dir, "ctl", 0);
                (void) unlinkat(dir, "state.json", 0);
        }
        (void) unlinkat(root, id, AT_REMOVEDIR);
        return -1;
}

/* Send REQUEST to the monitor of container ID, which must be alive and in status WANT (NULL: any). */
static int monitor_request(const char *id, const char *want, const char *request) {
        _cleanup_close_ int dir = -EBADF;
        State st = {};
        char reply[2048];
        int r;

        dir = open_container(id, NULL);
        if (dir < 0)
                return -1;
        if (state_read(dir, &st) < 0)
                return error("container %s: its state cannot be read", id);
        if (!st.alive || (want && !streq(st.status, want))) {
                r = want ? error("container %s is %s, not %s", id, st.alive ? st.status : "stopped", want)
                         : error("container %s is not running", id);
                state_done(&st);
                return r;
        }
        state_done(&st);
        r = ctl_call(dir, request, reply, sizeof reply);
        if (r < 0)
                return error("container %s: its monitor does not answer: %s", id, strerror(-r));
        if (!streq(reply, "ok"))
                return error("container %s: %s", id, strneq(reply, "error: ", 7) ? reply + 7 : reply);
        return 0;
}

static int cmd_start(const char *id) {
        return monitor_request(id, "created", "start");
}

static int cmd_state(const char *id) {
        _cleanup_close_ int dir = -EBADF;
        State st = {};

        dir = open_container(id, NULL);
        if (dir < 0)
                return -1;
        if (state_read(dir, &st) < 0)
                return error("container %s: its state cannot be read", id);
        json_t *out = json_deep_copy(st.doc);
        json_object_set_new(out, "status", json_string(st.status));
        json_object_del(out, "monitorStartTime");
        json_object_del(out, "startError");
        json_object_del(out, "initPid");
        if (!st.alive || streq(st.status, "stopped"))
                json_object_del(out, "pid");
        char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (s)
                printf("%s\n", s);
        free(s);
        json_decref(out);
        state_done(&st);
        return 0;
}

static int parse_signal(const char *s, int *ret) {
        static const struct {
                const char *name;
                int sig;
        } names[] = {
                { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },   { "TRAP", SIGTRAP },
                { "ABRT", SIGABRT }, { "BUS", SIGBUS },   { "FPE", SIGFPE },   { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
                { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
                { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
                { "TTOU", SIGTTOU }, { "URG", SIGURG },   { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM },
                { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },   { "PWR", SIGPWR },   { "SYS", SIGSYS },
        };
        char *end;
        long n = strtol(s, &end, 10);

        if (*s && !*end) {
                if (n <= 0 || n >= _NSIG)
                        return -EINVAL;
                *ret = (int) n;
                return 0;
        }
        if (strneq(s, "SIG", 3))
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i].name) == 0) {
                        *ret = names[i].sig;
                        return 0;
                }
        return -EINVAL;
}

static int cmd_kill(const char *id, const char *signame, bool all) {
        _cleanup_close_ int dir = -EBADF;
        State st = {};
        char req[64], reply[2048];
        int sig = SIGTERM, r;

        if (signame && parse_signal(signame, &sig) < 0)
                return error("'%s' is not a signal (a name like TERM or SIGTERM, or a number 1-%d)", signame, _NSIG - 1);
        dir = open_container(id, NULL);
        if (dir < 0)
                return -1;
        if (state_read(dir, &st) < 0)
                return error("container %s: its state cannot be read", id);
        if (!st.alive) {
                state_done(&st);
                return error("container %s is not running", id);
        }
        state_done(&st);
        snprintf(req, sizeof req, "kill %d %d", sig, all ? 1 : 0);
        r = ctl_call(dir, req, reply, sizeof reply);
        if (r < 0)
                return error("container %s: its monitor does not answer: %s", id, strerror(-r));
        if (!streq(reply, "ok"))
                return error("container %s: %s", id, strneq(reply, "error: ", 7) ? reply + 7 : reply);
        return 0;
}

static int wait_pid_gone(pid_t pid, uint64_t start_time, int timeout_ms) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return 0;
        if (pid_start_time(pid) != start_time) {
                close(fd);
                return 0;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        close(fd);
        return r > 0 ? 0 : -ETIMEDOUT;
}

static int cmd_delete(const char *id, bool force) {
        _cleanup_close_ int dir = -EBADF, root = -EBADF;
        State st = {};
        char reply[256];
        int r;

        if (!id_valid(id))
                return error("'%s' is not a valid container ID", id);
        root = open_root(false);
        dir = root >= 0 ? openat(root, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -EBADF;
        if (dir < 0) {
                if (force)
                        return 0; /* runc: delete --force of a container that is not there succeeds */
                return error("container %s does not exist", id);
        }
        if (state_read(dir, &st) < 0) {
                if (!force)
                        return error("container %s: its state cannot be read (delete --force removes it)", id);
        } else if (st.alive) {
                if ((streq(st.status, "running") || streq(st.status, "paused")) && !force) {
                        r = error("container %s is %s: stop it first, or delete --force", id, st.status);
                        state_done(&st);
                        return r;
                }
                r = ctl_call(dir, "kill 9 1", reply, sizeof reply);
                if (r < 0)
                        (void) kill(st.pid, SIGKILL);
                if (wait_pid_gone(st.pid, st.start_time, 30000) < 0) {
                        (void) kill(st.pid, SIGKILL);
                        if (wait_pid_gone(st.pid, st.start_time, 10000) < 0) {
                                state_done(&st);
                                return error("container %s: its monitor (pid %d) does not end", id, st.pid);
                        }
                }
        }
        /* poststop hooks, from the bundle as it was created. */
        const char *bundle = st.doc ? json_string_value(json_object_get(st.doc, "bundle")) : NULL;
        if (bundle) {
                _cleanup_free_ char *real = NULL;
                OciBundle b = { .umask = -1 };
                if (read_bundle(bundle, &real, &b) == 0) {
                        json_t *s = json_deep_copy(st.doc);
                        json_object_set_new(s, "status", json_string("stopped"));
                        json_object_del(s, "monitorStartTime");
                        json_object_del(s, "initPid");
                        (void) run_hooks(&b, OCI_HOOK_POSTSTOP, s); /* a failing poststop hook is only logged */
                        json_decref(s);
                        oci_bundle_done(&b);
                }
        }
        state_done(&st);
        /* A monitor that was killed left its sandbox's state behind: remove what no live sandbox holds. */
        SandboxConfig cfg = { .state_dir = getenv("SANDBOX_STATE_DIR"), .data_dir = getenv("SANDBOX_DATA_DIR") };
        unsigned removed = 0;
        (void) sandbox_cleanup_stale(&cfg, &removed);
        (void) unlinkat(dir, "ctl", 0);
        (void) unlinkat(dir, "state.json", 0);
        if (unlinkat(root, id, AT_REMOVEDIR) < 0)
                return error("container %s: cannot remove %s/%s: %m", id, arg_root, id);
        return 0;
}

static int cmd_ps(const char *id, const char *format) {
        _cleanup_close_ int dir = -EBADF;
        State st = {};
        char reply[64];

        dir = open_container(id, NULL);
        if (dir < 0)
                return -1;
        if (state_read(dir, &st) < 0)
                return error("container %s: its state cannot be read", id);
        json_t *pids = json_array();
        if (st.alive) {
                /* The init's pid: the monitor's child. */
                char path[64], line[256];
                pid_t init = 0;
                snprintf(path, sizeof path, "/proc/%d/task/%d/children", st.pid, st.pid);
                FILE *f = fopen(path, "re");
                if (f) {
                        while (fgets(line, sizeof line, f)) {
                                char *save = NULL;
                                for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
                                        /* the sandbox's init is the child in another pid namespace */
                                        char a[64], b[64];
                                        struct stat sa, sb;
                                        snprintf(a, sizeof a, "/proc/%s/ns/pid", t);
                                        snprintf(b, sizeof b, "/proc/%d/ns/pid", st.pid);
                                        if (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino != sb.st_ino)
                                                init = (pid_t) atoi(t);
                                }
                        }
                        fclose(f);
                }
                if (init > 0) {
                        snprintf(path, sizeof path, "/proc/%d/ns/pid", init);
                        struct stat ns;
                        DIR *d = stat(path, &ns) == 0 ? opendir("/proc") : NULL;
                        struct dirent *de;
                        while (d && (de = readdir(d))) {
                                char *end;
                                long pid = strtol(de->d_name, &end, 10);
                                struct stat s2;
                                if (*end || pid <= 0)
                                        continue;
                                snprintf(path, sizeof path, "/proc/%ld/ns/pid", pid);
                                if (stat(path, &s2) == 0 && s2.st_ino == ns.st_ino && s2.st_dev == ns.st_dev)
                                        json_array_append_new(pids, json_integer(pid));
                        }
                        if (d)
                                closedir(d);
                }
        }
        (void) reply;
        if (format && streq(format, "json")) {
                char *s = json_dumps(pids, JSON_COMPACT);
                printf("%s\n", s ?: "[]");
                free(s);
        } else {
                printf("PID\n");
                for (size_t i = 0; i < json_array_size(pids); i++)
                        printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(json_array_get(pids, i)));
        }
        json_decref(pids);
        state_done(&st);
        return 0;
}

static int cmd_features(void) {
        static const char features[] =
                "{\n"
                "  \"ociVersionMin\": \"1.0.0\",\n"
                "  \"ociVersionMax\": \"1.1.0\",\n"
                "  \"hooks\": [\"prestart\", \"createRuntime\", \"createContainer\", \"startContainer\", \"poststart\", \"poststop\"],\n"
                "  \"mountOptions\": [\"bind\", \"rbind\", \"ro\", \"rw\", \"nosuid\", \"nodev\", \"noexec\", \"size\", "
                "\"mode\", \"private\", \"rprivate\", \"relatime\"],\n"
                "  \"linux\": {\n"
                "    \"namespaces\": [\"pid\", \"network\", \"ipc\", \"uts\", \"mount\", \"user\", \"cgroup\"],\n"
                "    \"capabilities\": [],\n"
                "    \"cgroup\": {\"v1\": true, \"v2\": true, \"systemd\": true, \"systemdUser\": false},\n"
                "    \"seccomp\": {\"enabled\": true,\n"
                "      \"actions\": [\"SCMP_ACT_ALLOW\", \"SCMP_ACT_ERRNO\", \"SCMP_ACT_KILL\", \"SCMP_ACT_KILL_THREAD\",\n"
                "                  \"SCMP_ACT_KILL_PROCESS\", \"SCMP_ACT_TRAP\", \"SCMP_ACT_TRACE\", \"SCMP_ACT_LOG\"],\n"
                "      \"operators\": [\"SCMP_CMP_NE\", \"SCMP_CMP_LT\", \"SCMP_CMP_LE\", \"SCMP_CMP_EQ\", \"SCMP_CMP_GE\",\n"
                "                    \"SCMP_CMP_GT\", \"SCMP_CMP_MASKED_EQ\"],\n"
                "      \"archs\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\", \"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_ARM\"],\n"
                "      \"knownFlags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_SPEC_ALLOW\", \"SECCOMP_FILTER_FLAG_LOG\"],\n"
                "      \"supportedFlags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"]},\n"
                "    \"apparmor\": {\"enabled\": false},\n"
                "    \"selinux\": {\"enabled\": false}\n"
                "  },\n"
                "  \"annotations\": {\n"
                "    \"" OCI_ANNOTATION_LIMITS "\": \"default | none\",\n"
                "    \"" OCI_ANNOTATION_SECCOMP "\": \"ours\",\n"
                "    \"" OCI_ANNOTATION_USERNS "\": \"private\"\n"
                "  }\n"
                "}\n";
        fputs(features, stdout);
        return 0;
}

static int cmd_spec(const char *bundle) {
        static const char spec[] =
                "{\n"
                "  \"ociVersion\": \"1.0.2\",\n"
                "  \"process\": {\n"
                "    \"terminal\": true,\n"
                "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
                "    \"args\": [\"sh\"],\n"
                "    \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],\n"
                "    \"cwd\": \"/\",\n"
                "    \"capabilities\": {\n"
                "      \"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
                "      \"effective\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
                "      \"permitted\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]\n"
                "    },\n"
                "    \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],\n"
                "    \"noNewPrivileges\": true\n"
                "  },\n"
                "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
                "  \"hostname\": \"sandbox\",\n"
                "  \"mounts\": [\n"
                "    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
                "    {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\", \"options\": [\"nosuid\", "
                "\"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
                "    {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\"},\n"
                "    {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\", \"options\": [\"nosuid\", "
                "\"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},\n"
                "    {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\"},\n"
                "    {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\", \"options\": [\"ro\"]},\n"
                "    {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\", \"options\": "
                "[\"ro\"]}\n"
                "  ],\n"
                "  \"linux\": {\n"
                "    \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},\n"
                "    \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"}, "
                "{\"type\": \"mount\"}, {\"type\": \"user\"}, {\"type\": \"cgroup\"}],\n"
                "    \"maskedPaths\": [\"/proc/acpi\", \"/proc/kcore\", \"/proc/keys\", \"/proc/latency_stats\", "
                "\"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\"],\n"
                "    \"readonlyPaths\": [\"/proc/asound\", \"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", "
                "\"/proc/sysrq-trigger\"]\n"
                "  }\n"
                "}\n";
        _cleanup_close_ int dir = open(bundle ?: ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return error("--bundle %s: %m", bundle ?: ".");
        if (faccessat(dir, "config.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return error("%s/config.json exists already", bundle ?: ".");
        int r = write_file_atomic_at(dir, "config.json", spec, strlen(spec), 0644);
        if (r < 0)
                return error("%s/config.json: %s", bundle ?: ".", strerror(-r));
        return 0;
}

/* pause, resume: the monitor freezes or thaws the program's cgroup (the union's server stays running). */
static int cmd_pause(const char *id, bool pause) {
        return monitor_request(id, pause ? "running" : "paused", pause ? "pause" : "resume");
}

#define UPDATE_RESOURCES_MAX (UINT64_C(1) << 20)

/* update: new memory, pids and CPU bounds (never none: a container stays bounded). */
static int cmd_update(const char *id, const char *resources, uint64_t memory, uint64_t pids, int64_t quota,
                      int64_t period) {
        char req[128];
        uint32_t cpus_milli = 0;
        int r;

        if (resources) {
                _cleanup_free_ char *buf = NULL;
                char err[1024];
                size_t size;
                _cleanup_close_ int fd = streq(resources, "-") ? -EBADF : open(resources, O_RDONLY | O_CLOEXEC);
                if (!streq(resources, "-") && fd < 0)
                        return error("--resources %s: %m", resources);
                size_t cap = 0;
                size = 0;
                for (;;) {
                        if (size == cap) {
                                if (cap >= UPDATE_RESOURCES_MAX)
                                        return error("--resources: more than %" PRIu64 " bytes", UPDATE_RESOURCES_MAX);
                                cap = cap ? cap * 2 : 4096;
                                char *n = realloc(buf, cap + 1);
                                if (!n)
                                        return error("Out of memory");
                                buf = n;
                        }
                        ssize_t k = read(fd >= 0 ? fd : 0, buf + size, cap - size);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return error("--resources %s: %m", resources);
                        if (k == 0)
                                break;
                        size += (size_t) k;
                }
                uint64_t m = 0, p = 0;
                r = oci_resources_parse(buf ?: "", size, &m, &p, &cpus_milli, err, sizeof err);
                if (r < 0)
                        return error("%s", err);
                if (!memory)
                        memory = m;
                if (!pids)
                        pids = p;
        }
        if (quota > 0) {
                if (period <= 0)
                        period = 100000;
                if (period < 1000 || period > 1000000)
                        return error("--cpu-period must be 1000-1000000 microseconds");
                uint64_t milli = (uint64_t) quota * 1000 / (uint64_t) period;
                if (milli < 1 || milli > 1024 * 1000)
                        return error("--cpu-quota/--cpu-period is out of range (0.001 to 1024 CPUs)");
                cpus_milli = (uint32_t) milli;
        } else if (quota != -2 && quota != -1) /* -2: not given; -1: "no bound", refused below */
                return error("--cpu-quota must be a positive number of microseconds");
        if (memory == SPEC_UNLIMITED || pids == SPEC_UNLIMITED || quota == -1)
                return error("update cannot lift a bound (-1): a container stays bounded; give a value");
        if (!memory && !pids && !cpus_milli)
                return error("update: nothing to change (--memory, --pids-limit, --cpu-quota or --resources)");

        snprintf(req, sizeof req, "update %" PRIu64 " %" PRIu64 " %" PRIu32, memory, pids, cpus_milli);
        return monitor_request(id, NULL, req);
}

/* Each command's --help. */
static const struct {
        const char *name;
        const char *text;
} command_help[] = {
        { "create", "Usage: sandbox-oci create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] ID\n"
                    "Create the container ID from the bundle DIR (default: .): everything made, its program held until\n"
                    "start. Returns once it is created; its monitor is the container's pid.\n\n"
                    "Options:\n"
                    "  --bundle DIR           the bundle (config.json and its root file system)\n"
                    "  --pid-file FILE        write the container's pid (its monitor's) to FILE\n"
                    "  --console-socket SOCKET  send the pty of a process.terminal container to this socket\n"
                    "  -h, --help             this help\n" },
        { "start", "Usage: sandbox-oci start ID\nRun the program of the created container ID (after the startContainer\n"
                   "hooks), then the poststart hooks.\n\nOptions:\n  -h, --help             this help\n" },
        { "state", "Usage: sandbox-oci state ID\nPrint the runtime-spec state of the container ID (JSON).\n\n"
                   "Options:\n  -h, --help             this help\n" },
        { "kill", "Usage: sandbox-oci kill [--all] ID [SIGNAL]\nSend SIGNAL (a name like TERM or SIGTERM, or a number; "
                  "default TERM)\nto the container's program.\n\nOptions:\n"
                  "  --all                  to every process of the container\n"
                  "  -h, --help             this help\n" },
        { "delete", "Usage: sandbox-oci delete [--force] ID\nRemove a stopped or created container (and run the "
                    "poststop hooks).\n\nOptions:\n"
                    "  --force                kill a running or paused one first\n"
                    "  -h, --help             this help\n" },
        { "exec", "Usage: sandbox-oci exec [--process FILE | ...] [--tty] [--detach] [--pid-file FILE]\n"
                  "       [--console-socket SOCKET] [--cwd DIR] [--env NAME=VALUE] [--user UID[:GID]] ID [COMMAND...]\n"
                  "Run one more process in the running container ID: COMMAND, or the process of FILE (a\n"
                  "runtime-spec process object).\n\nOptions:\n"
                  "  --process FILE         the process to run\n"
                  "  --tty                  on a new pty of the container (sent to --console-socket)\n"
                  "  --detach               return once it runs\n"
                  "  --pid-file FILE        write its pid to FILE\n"
                  "  --console-socket SOCKET  where its pty goes\n"
                  "  --cwd DIR              its working directory\n"
                  "  --env NAME=VALUE       one more variable (repeatable)\n"
                  "  --user UID[:GID]       its user\n"
                  "  -h, --help             this help\n" },
        { "ps", "Usage: sandbox-oci ps [--format table|json] ID\nList the processes of the container ID.\n\n"
                "Options:\n  --format table|json    the output (default table)\n"
                "  -h, --help             this help\n" },
        { "pause", "Usage: sandbox-oci pause ID\nFreeze every process of the running container ID (its freezer cgroup).\n\n"
                   "Options:\n  -h, --help             this help\n" },
        { "resume", "Usage: sandbox-oci resume ID\nThaw the paused container ID.\n\n"
                    "Options:\n  -h, --help             this help\n" },
        { "update", "Usage: sandbox-oci update [--memory BYTES] [--pids-limit N] [--cpu-quota USEC] [--cpu-period USEC]\n"
                    "       [--resources FILE] ID\n"
                    "Change the bounds of the running container ID. A bound is never lifted (-1 is refused); what\n"
                    "the runtime cannot bound is refused naming the field.\n\nOptions:\n"
                    "  --memory BYTES         the memory bound (suffixes K, M, G)\n"
                    "  --pids-limit N         the bound on its processes\n"
                    "  --cpu-quota USEC       CPU time per period (with --cpu-period, default 100000)\n"
                    "  --cpu-period USEC      the period of --cpu-quota\n"
                    "  --resources FILE       a runtime-spec linux.resources object (JSON; - for stdin)\n"
                    "  -h, --help             this help\n" },
        { "features", "Usage: sandbox-oci features\nPrint what sandbox-oci supports (runtime-spec features JSON).\n\n"
                      "Options:\n  -h, --help             this help\n" },
        { "spec", "Usage: sandbox-oci spec [--bundle DIR]\nWrite a default config.json into DIR (default: .).\n\n"
                  "Options:\n  --bundle DIR           the bundle directory\n"
                  "  -h, --help             this help\n" },
};

/* COMMAND --help (or -h) before its first argument (exec: before its ID; the command's own options after it are
 * not ours). */
static bool wants_command_help(const char *cmd, int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--"))
                        return false;
                if (streq(argv[i], "--help") || streq(argv[i], "-h"))
                        return true;
                if (argv[i][0] != '-' && streq(cmd, "exec") && i > 1 && argv[i - 1][0] != '-')
                        return false;
        }
        return false;
}

static void help(void) {
        printf("Usage: sandbox-oci [GLOBAL OPTIONS] COMMAND [OPTIONS] ID ...\n"
               "An OCI runtime (runc's command line) that runs containers as sandboxes: a private user id range,\n"
               "the sandbox's seccomp allow-list and default bounds (sandbox-oci(1), docs/oci-runtime.md).\n\n"
               "Commands:\n"
               "  create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] ID\n"
               "  start ID\n"
               "  state ID\n"
               "  kill [--all] ID [SIGNAL]            (default TERM)\n"
               "  delete [--force] ID\n"
               "  pause ID\n"
               "  resume ID\n"
               "  update [--memory BYTES] [--pids-limit N] [--cpu-quota USEC] [--cpu-period USEC] [--resources FILE] ID\n"
               "  exec [--process FILE | ARGS...] [--tty] [--detach] [--pid-file FILE] [--console-socket SOCKET]\n"
               "       [--cwd DIR] [--env NAME=VALUE] [--user UID[:GID]] ID\n"
               "  ps [--format table|json] ID\n"
               "  features\n"
               "  spec [--bundle DIR]\n"
               "Each command takes --help.\n\n"
               "Global options:\n"
               "  --root DIR         state directory (default " DEFAULT_ROOT ")\n"
               "  --log FILE         also write errors to FILE\n"
               "  --log-format text|json\n"
               "  --systemd-cgroup   the container's cgroup is a systemd scope (cgroupsPath slice:prefix:name)\n"
               "  --debug            accepted, no effect\n"
               "  -h, --help         this help\n"
               "  -v, --version      the version\n\n"
               "Exit status: 0 on success, 1 on failure, 2 for a usage error.\n");
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("sandbox-oci: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs(" (see sandbox-oci --help)\n", stderr);
        return 2;
}

int main(int argc, char *argv[]) {
        enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_SYSTEMD_CGROUP, OPT_DEBUG, OPT_ROOTLESS };
        static const struct option global[] = {
                { "root", required_argument, NULL, OPT_ROOT },
                { "log", required_argument, NULL, OPT_LOG },
                { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
                { "systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP },
                { "debug", no_argument, NULL, OPT_DEBUG },
                { "rootless", required_argument, NULL, OPT_ROOTLESS },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },
                {}
        };
        const char *log_path = NULL;
        int c;

        /* Global options come before the command. */
        while ((c = getopt_long(argc, argv, "+hv", global, NULL)) >= 0)
                switch (c) {
                case OPT_ROOT:
                        if (optarg[0] != '/' || strlen(optarg) >= 1024)
                                return usage_error("--root must be an absolute path shorter than 1024 bytes");
                        arg_root = optarg;
                        break;
                case OPT_LOG:
                        log_path = optarg;
                        break;
                case OPT_LOG_FORMAT:
                        if (streq(optarg, "json"))
                                log_json = true;
                        else if (!streq(optarg, "text"))
                                return usage_error("--log-format must be text or json");
                        break;
                case OPT_SYSTEMD_CGROUP:
                        arg_systemd_cgroup = true;
                        break;
                case OPT_DEBUG:
                case OPT_ROOTLESS:
                        break;
                case 'h':
                        help();
                        return 0;
                case 'v':
                        printf("sandbox-oci %s\nspec: 1.0.2\n", PROJECT_VERSION);
                        return 0;
                default:
                        return 2;
                }
        if (log_path) {
                log_file = fopen(log_path, "ae");
                if (!log_file)
                        return usage_error("--log %s: %m", log_path);
        }
        if (optind >= argc)
                return usage_error("a command is required");
        if (geteuid() != 0)
                return error("sandbox-oci must run as root (it maps each container to a private id range)") < 0;

        const char *cmd = argv[optind];
        argc -= optind;
        argv += optind;
        optind = 1;

        for (size_t i = 0; i < ELEMENTSOF(command_help); i++)
                if (streq(cmd, command_help[i].name) && wants_command_help(cmd, argc, argv)) {
                        fputs(command_help[i].text, stdout);
                        return 0;
                }
        if (streq(cmd, "pause") || streq(cmd, "resume")) {
                if (argc != 2)
                        return usage_error("%s takes one container ID", cmd);
                return cmd_pause(argv[1], streq(cmd, "pause")) < 0 ? 1 : 0;
        }
        if (streq(cmd, "update")) {
                static const struct option o[] = {
                        { "memory", required_argument, NULL, 'm' },
                        { "pids-limit", required_argument, NULL, 'p' },
                        { "cpu-quota", required_argument, NULL, 'q' },
                        { "cpu-period", required_argument, NULL, 'P' },
                        { "resources", required_argument, NULL, 'r' },
                        {}
                };
                const char *resources = NULL;
                uint64_t memory = 0, pids = 0;
                int64_t quota = -2, period = 0;
                char *end;
                while ((c = getopt_long(argc, argv, "r:", o, NULL)) >= 0)
                        switch (c) {
                        case 'm':
                                if (streq(optarg, "-1"))
                                        memory = SPEC_UNLIMITED;
                                else if (parse_size(optarg, &memory) < 0 || memory == 0)
                                        return usage_error("--memory must be a size in bytes (suffixes K, M, G)");
                                break;
                        case 'p': {
                                errno = 0;
                                long long n = strtoll(optarg, &end, 10);
                                if (errno || *end || !*optarg || n == 0 || n < -1)
                                        return usage_error("--pids-limit must be a positive number");
                                pids = n < 0 ? SPEC_UNLIMITED : (uint64_t) n;
                                break;
                        }
                        case 'q':
                        case 'P': {
                                errno = 0;
                                long long v = strtoll(optarg, &end, 10);
                                if (errno || *end || !*optarg)
                                        return usage_error("--%s must be a number of microseconds",
                                                           c == 'q' ? "cpu-quota" : "cpu-period");
                                if (c == 'q')
                                        quota = v;
                                else
                                        period = v;
                                break;
                        }
                        case 'r':
                                resources = optarg;
                                break;
                        default:
                                return 2;
                        }
                if (argc - optind != 1)
                        return usage_error("update takes one container ID");
                if (period && quota == -2)
                        return usage_error("--cpu-period needs --cpu-quota");
                return cmd_update(argv[optind], resources, memory, pids, quota, period) < 0 ? 1 : 0;
        }
        if (streq(cmd, "create") || streq(cmd, "run")) {
                static const struct option o[] = {
                        { "bundle", required_argument, NULL, 'b' },
                        { "pid-file", required_argument, NULL, 'p' },
                        { "console-socket", required_argument, NULL, 'c' },
                        { "no-pivot", no_argument, NULL, 'N' },
                        { "no-new-keyring", no_argument, NULL, 'K' },
                        { "preserve-fds", required_argument, NULL, 'P' },
                        {}
                };
                const char *bundle = NULL, *pid_file = NULL, *console = NULL;
                if (streq(cmd, "run"))
                        return usage_error("run is not supported: use create and start");
                while ((c = getopt_long(argc, argv, "+b:", o, NULL)) >= 0)
                        switch (c) {
                        case 'b':
                                bundle = optarg;
                                break;
                        case 'p':
                                pid_file = optarg;
                                break;
                        case 'c':
                                console = optarg;
                                break;
                        case 'N':
                        case 'K':
                                break;
                        case 'P':
                                if (!streq(optarg, "0"))
                                        return usage_error("--preserve-fds is not supported");
                                break;
                        default:
                                return 2;
                        }
                if (optind != argc - 1)
                        return usage_error("create takes one container ID");
                return cmd_create(argv[optind], bundle, pid_file, console) < 0 ? 1 : 0;
        }
        if (streq(cmd, "start") || streq(cmd, "state")) {
                if (argc != 2)
                        return usage_error("%s takes one container ID", cmd);
                return (streq(cmd, "start") ? cmd_start(argv[1]) : cmd_state(argv[1])) < 0 ? 1 : 0;
        }
        if (streq(cmd, "kill")) {
                static const struct option o[] = { { "all", no_argument, NULL, 'a' }, {} };
                bool all = false;
                while ((c = getopt_long(argc, argv, "a", o, NULL)) >= 0)
                        if (c == 'a')
                                all = true;
                        else
                                return 2;
                if (argc - optind < 1 || argc - optind > 2)
                        return usage_error("kill takes a container ID and optionally a signal");
                return cmd_kill(argv[optind], argc - optind == 2 ? argv[optind + 1] : NULL, all) < 0 ? 1 : 0;
        }
        if (streq(cmd, "delete")) {
                static const struct option o[] = { { "force", no_argument, NULL, 'f' }, {} };
                bool force = false;
                while ((c = getopt_long(argc, argv, "f", o, NULL)) >= 0)
                        if (c == 'f')
                                force = true;
                        else
                                return 2;
                if (argc - optind != 1)
                        return usage_error("delete takes one container ID");
                return cmd_delete(argv[optind], force) < 0 ? 1 : 0;
        }
        if (streq(cmd, "ps")) {
                static const struct option o[] = { { "format", required_argument, NULL, 'f' }, {} };
                const char *format = "table";
                while ((c = getopt_long(argc, argv, "f:", o, NULL)) >= 0)
                        if (c == 'f')
                                format = optarg;
                        else
                                return 2;
                if (!streq(format, "table") && !streq(format, "json"))
                        return usage_error("--format must be table or json");
                if (argc - optind < 1)
                        return usage_error("ps takes a container ID");
                return cmd_ps(argv[optind], format) < 0 ? 1 : 0;
        }
        if (streq(cmd, "exec"))
                return oci_exec_main(arg_root, argc, argv);
        if (streq(cmd, "features"))
                return cmd_features() < 0 ? 1 : 0;
        if (streq(cmd, "spec")) {
                static const struct option o[] = { { "bundle", required_argument, NULL, 'b' },
                                                   { "rootless", no_argument, NULL, 'r' }, {} };
                const char *bundle = NULL;
                while ((c = getopt_long(argc, argv, "b:", o, NULL)) >= 0)
                        if (c == 'b')
                                bundle = optarg;
                        else if (c != 'r')
                                return 2;
                return cmd_spec(bundle) < 0 ? 1 : 0;
        }
        return usage_error("unknown command '%s'", cmd);
}
