/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-oci exec: one more process in a running container. Everything that allocates or reads the host is
 * done first (the container's state and config, the process, the seccomp program, the sandbox's cgroups);
 * then this process joins the sandbox's cgroups and namespaces (user first: from there on it is root of the
 * sandbox's user namespace only, and the host is out of reach), and forks the program into the sandbox's pid
 * namespace. The program gets what the container's own program got: its capabilities at most, no_new_privs,
 * the rlimits, our seccomp allow-list last, OOM score 1000. With --detach this process exits once the program
 * runs (the engine's subreaper inherits it); otherwise it waits and exits with the program's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "bundle.h"
#include "exec.h"
#include "filter.h"
#include "fs.h"
#include "macro.h"
#include "state.h"

#define EXEC_ENV_MAX 1024

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
        va_list ap;
        fputs("sandbox-oci: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

static int read_config(const char *bundle, OciBundle *ret) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int dir = -EBADF;
        char err[1024];
        size_t size;
        int r;

        dir = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return fail("bundle %s: %m", bundle), -errno;
        r = read_file_at(dir, "config.json", OCI_CONFIG_SIZE_MAX, &buf, &size);
        if (r < 0)
                return fail("%s/config.json: %s", bundle, strerror(-r)), r;
        r = oci_bundle_parse(buf, size, bundle, ret, err, sizeof err);
        if (r < 0)
                return fail("%s/config.json: %s", bundle, err), r;
        return 0;
}

/* --process FILE: a runtime-spec process object, read as the process of a bundle whose root is "/". */
static int read_process(const char *path, OciBundle *ret) {
        _cleanup_free_ char *buf = NULL, *doc = NULL;
        char err[1024];
        size_t size;
        int r;

        r = read_file(path, OCI_CONFIG_SIZE_MAX / 2, &buf, &size);
        if (r < 0)
                return fail("--process %s: %s", path, strerror(-r)), r;
        if (memchr(buf, '\0', size))
                return fail("--process %s: not a JSON object", path), -EINVAL;
        if (asprintf(&doc, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/\"},\"process\":%.*s}", (int) size, buf) < 0)
                return fail("Out of memory"), -ENOMEM;
        r = oci_bundle_parse(doc, strlen(doc), "/", ret, err, sizeof err);
        if (r < 0)
                return fail("--process %s: %s", path, err), r;
        return 0;
}

static int send_console_fd(int fd, int pty) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char name[] = "/dev/ptmx";
        struct iovec iov = { .iov_base = name, .iov_len = sizeof name - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pty, sizeof(int));
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

/* Our pid into each of the sandbox's cgroups (as /proc/INIT/cgroup names them): its limits cover us too. */
int oci_join_cgroups(pid_t init) {
        char path[64], line[4096];
        FILE *f;
        int r = 0;

        snprintf(path, sizeof path, "/proc/%d/cgroup", init);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, procs[4096 + 128];
                if (!c2)
                        continue;
                *c2 = '\0';
                c2[1 + strcspn(c2 + 1, "\n")] = '\0';
                const char *name = c1[1] ? c1 + 1 : "unified";
                if (strneq(name, "name=", 5))
                        continue;
                snprintf(procs, sizeof procs, "/sys/fs/cgroup/%s%s/cgroup.procs", name, c2 + 1);
                int fd = open(procs, O_WRONLY | O_CLOEXEC);
                if (fd < 0) {
                        char first[64];
                        snprintf(first, sizeof first, "%.*s", (int) strcspn(name, ","), name);
                        snprintf(procs, sizeof procs, "/sys/fs/cgroup/%s%s/cgroup.procs", first, c2 + 1);
                        fd = open(procs, O_WRONLY | O_CLOEXEC);
                }
                if (fd < 0)
                        continue; /* a hierarchy the sandbox has no cgroup of its own in */
                if (write(fd, "0", 1) != 1 && r == 0)
                        r = -errno;
                close(fd);
        }
        fclose(f);
        return r;
}

static int set_caps(uint64_t keep, bool root) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};

        for (int cap = 0; cap <= 63; cap++) {
                if (keep & (UINT64_C(1) << cap))
                        continue;
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        }
        if (root) {
                d[0].effective = d[0].permitted = (uint32_t) keep;
                d[1].effective = d[1].permitted = (uint32_t) (keep >> 32);
        }
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        return 0;
}

_Noreturn static void program(const SandboxSpec *spec, int oom_score_adj, const uint32_t *gids, size_t n_gids,
                              char **envp,
                              const FilterProgram *filter, const FilterProgram *engine_filter, int pty, int report) {
        int e = 0;
        const char *what = "";

        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (pty >= 0) {
                int slave;
                if (setsid() < 0 || (slave = ioctl(pty, TIOCGPTPEER, O_RDWR | O_NOCTTY)) < 0 ||
                    ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) {
                        e = errno, what = "open the terminal";
                        goto fail;
                }
                if (slave > 2)
                        close(slave);
                close(pty);
        } else
                (void) setsid();
        /* 1000, or process.oomScoreAdj but not below the helper's own (what we inherited): raising is free,
         * lowering would need CAP_SYS_RESOURCE on the host, which nothing in the container has. */
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                char score[16];
                snprintf(score, sizeof score, "%d", oom_score_adj);
                (void) !write(fd, score, strlen(score));
                close(fd);
        }
        /* The container's defaults (as step_rlimits() sets them): no core dumps, open files bounded, never above
         * what we run with (raising a hard limit needs CAP_SYS_RESOURCE). */
        struct rlimit own;
        (void) setrlimit(RLIMIT_CORE, &(struct rlimit) {});
        if (getrlimit(RLIMIT_NOFILE, &own) == 0) {
                struct rlimit rl = { .rlim_max = MIN(own.rlim_max, (rlim_t) SPEC_DEFAULT_NOFILE_HARD) };
                rl.rlim_cur = MIN(rl.rlim_max, (rlim_t) SPEC_DEFAULT_NOFILE_SOFT);
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        for (size_t i = 0; i < spec->n_rlimits; i++) {
                struct rlimit rl = { .rlim_cur = spec->rlimits[i].soft, .rlim_max = spec->rlimits[i].hard }, cur;
                /* As at create: what we cannot raise (no CAP_SYS_RESOURCE) is clamped to what we have. */
                if (setrlimit(spec->rlimits[i].resource, &rl) < 0 && errno == EPERM &&
                    getrlimit(spec->rlimits[i].resource, &cur) == 0 && rl.rlim_max > cur.rlim_max) {
                        rl.rlim_max = cur.rlim_max;
                        rl.rlim_cur = MIN(rl.rlim_cur, rl.rlim_max);
                }
                if (setrlimit(spec->rlimits[i].resource, &rl) < 0) {
                        e = errno, what = "set an rlimit";
                        goto fail;
                }
        }
        uint64_t caps = spec_capabilities(spec);
        gid_t groups[OCI_GIDS_MAX];
        for (size_t i = 0; i < n_gids && i < OCI_GIDS_MAX; i++)
                groups[i] = gids[i];
        if (n_gids > 0 && setgroups(MIN(n_gids, (size_t) OCI_GIDS_MAX), groups) < 0) {
                e = errno, what = "set the supplementary groups";
                goto fail;
        }
        if (setresgid(spec->gid, spec->gid, spec->gid) < 0 || setresuid(spec->uid, spec->uid, spec->uid) < 0) {
                e = errno, what = "switch to the process's user";
                goto fail;
        }
        if (set_caps(caps, spec->uid == 0) < 0) {
                e = errno, what = "set the capabilities";
                goto fail;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                e = errno, what = "set no_new_privs";
                goto fail;
        }
        if (chdir(spec->workdir ?: "/") < 0) {
                e = errno, what = "change to the working directory";
                goto fail;
        }
        environ = envp;
        if (filter && filter_install(filter) < 0) {
                e = errno, what = "install the seccomp filter";
                goto fail;
        }
        /* The engine's profile (config.json's linux.seccomp), stacked on ours as for the container's program. */
        if (engine_filter && filter_install(engine_filter) < 0) {
                e = errno, what = "install the engine's seccomp filter";
                goto fail;
        }
        execvp(spec->argv[0], spec->argv);
        e = errno, what = "execute";
fail:
        dprintf(report, "%s %s: %s", what, spec->argv[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
}

int oci_exec_main(const char *root, int argc, char *argv[]) {
        static const struct option o[] = {
                { "process", required_argument, NULL, 'p' },
                { "tty", no_argument, NULL, 't' },
                { "detach", no_argument, NULL, 'd' },
                { "pid-file", required_argument, NULL, 'P' },
                { "console-socket", required_argument, NULL, 'c' },
                { "cwd", required_argument, NULL, 'w' },
                { "env", required_argument, NULL, 'e' },
                { "user", required_argument, NULL, 'u' },
                { "preserve-fds", required_argument, NULL, 'F' },
                { "no-new-privs", no_argument, NULL, 'N' },
                { "process-label", required_argument, NULL, 'L' },
                { "apparmor", required_argument, NULL, 'A' },
                { "cap", required_argument, NULL, 'C' },
                {}
        };
        const char *process = NULL, *pid_file = NULL, *console = NULL, *cwd = NULL, *user = NULL;
        char *env_add[EXEC_ENV_MAX];
        size_t n_env_add = 0;
        bool tty = false, detach = false;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+p:tdu:e:", o, NULL)) >= 0)
                switch (c) {
                case 'p':
                        process = optarg;
                        break;
                case 't':
                        tty = true;
                        break;
                case 'd':
                        detach = true;
                        break;
                case 'P':
                        pid_file = optarg;
                        break;
                case 'c':
                        console = optarg;
                        break;
                case 'w':
                        cwd = optarg;
                        break;
                case 'e':
                        if (n_env_add >= EXEC_ENV_MAX || !strchr(optarg, '=') || optarg[0] == '=')
                                return fail("--env needs NAME=VALUE (at most %d)", EXEC_ENV_MAX), 2;
                        env_add[n_env_add++] = optarg;
                        break;
                case 'u':
                        user = optarg;
                        break;
                case 'F':
                        if (!streq(optarg, "0"))
                                return fail("--preserve-fds is not supported"), 2;
                        break;
                case 'N':
                        break;
                case 'L':
                case 'A':
                        if (*optarg)
                                return fail("--process-label and --apparmor are not supported"), 2;
                        break;
                case 'C':
                        return fail("--cap is not supported: exec gets the container's capabilities"), 2;
                default:
                        return 2;
                }
        if (optind >= argc)
                return fail("exec takes a container ID (see sandbox-oci --help)"), 2;
        const char *id = argv[optind++];
        if (!process && optind >= argc)
                return fail("exec needs --process FILE or a command"), 2;
        if (process && optind < argc)
                return fail("exec takes --process FILE or a command, not both"), 2;
        if (!id_valid(id))
                return fail("'%s' is not a valid container ID", id);

        /* The container. */
        _cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_close_ int dir = rootfd >= 0 ? openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -EBADF;
        State st = {};
        if (dir < 0)
                return fail("container %s does not exist", id);
        if (state_read(dir, &st) < 0)
                return fail("container %s: its state cannot be read", id);
        if (!st.alive || !streq(st.status, "running")) {
                r = fail("container %s is %s, not running: exec needs a running container", id, st.status);
                state_done(&st);
                return r;
        }
        pid_t init = (pid_t) json_integer_value(json_object_get(st.doc, "initPid"));
        const char *bundle = json_string_value(json_object_get(st.doc, "bundle"));
        OciBundle cfg = { .umask = -1 }, proc = { .umask = -1 };
        if (init <= 0 || !bundle || read_config(bundle, &cfg) < 0) {
                state_done(&st);
                oci_bundle_done(&cfg);
                return fail("container %s: its configuration cannot be read", id);
        }
        state_done(&st);

        SandboxSpec *spec;
        const uint32_t *gids = cfg.gids;
        size_t n_gids = cfg.n_gids;
        const OciBundle *pb = &cfg;
        if (process) {
                if (read_process(process, &proc) < 0) {
                        oci_bundle_done(&cfg);
                        return 1;
                }
                spec = &proc.spec;
                gids = proc.gids;
                n_gids = proc.n_gids;
                pb = &proc;
                tty = tty || spec->tty;
        } else {
                spec = &cfg.spec;
                for (size_t i = 0; i < spec->n_argv; i++)
                        free(spec->argv[i]);
                free(spec->argv);
                spec->n_argv = (size_t) (argc - optind);
                spec->argv = calloc(spec->n_argv + 1, sizeof(char *));
                for (size_t i = 0; spec->argv && i < spec->n_argv; i++)
                        spec->argv[i] = strdup(argv[optind + i]);
                if (cwd) {
                        free(spec->workdir);
                        spec->workdir = strdup(cwd);
                }
                if (user) {
                        unsigned u, g;
                        int k = sscanf(user, "%u:%u", &u, &g);
                        if (k < 1 || u > 65535 || (k == 2 && g > 65535)) {
                                oci_bundle_done(&cfg);
                                return fail("--user must be UID[:GID], ids below 65536"), 2;
                        }
                        spec->uid = u;
                        spec->gid = k == 2 ? g : u;
                        n_gids = 0; /* another user: not the config's groups (as runc without --additional-gids) */
                }
                spec->tty = tty;
        }
        /* The environment: the process's, then --env; PATH if none. */
        char **envp = calloc(spec->n_env + n_env_add + 2, sizeof(char *));
        size_t n = 0;
        bool has_path = false;
        for (size_t i = 0; envp && i < spec->n_env; i++)
                envp[n++] = spec->env[i];
        for (size_t i = 0; envp && i < n_env_add; i++)
                envp[n++] = env_add[i];
        for (size_t i = 0; envp && i < n; i++)
                if (strneq(envp[i], "PATH=", 5))
                        has_path = true;
        if (envp && !has_path)
                envp[n++] = (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        if (!envp || !spec->argv) {
                oci_bundle_done(&cfg);
                oci_bundle_done(&proc);
                return fail("Out of memory");
        }
        if (tty && !console && !detach) {
                /* runc needs a console socket for a terminal; so do we. */
                oci_bundle_done(&cfg);
                oci_bundle_done(&proc);
                free(envp);
                return fail("--tty needs --console-socket");
        }

        /* Our seccomp allow-list, compiled before we join anything. */
        FilterProgram *filter = NULL;
        char *ferr = NULL;
        r = filter_compile("default", &filter, &ferr);
        if (r < 0) {
                fail("the seccomp policy: %s", ferr ?: strerror(-r));
                free(ferr);
                oci_bundle_done(&cfg);
                oci_bundle_done(&proc);
                free(envp);
                return 1;
        }

        /* The pid file's directory, while we are on the host. */
        _cleanup_close_ int pid_dir = -EBADF;
        _cleanup_free_ char *pid_name = NULL;
        if (pid_file) {
                _cleanup_free_ char *pd = NULL;
                if (path_split(pid_file, &pd, &pid_name) < 0 ||
                    (pid_dir = open(pd, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
                        fail("--pid-file %s: cannot open its directory", pid_file);
                        goto out;
                }
        }

        /* Namespace fds, then the cgroups, then join: UTS, IPC and network first, while we are host root (the
         * container may have joined ones of the host's user namespace: linux.namespaces[].path, which nothing
         * in the container's user namespace could enter), then the user namespace and the rest. */
        static const struct {
                const char *name;
                int type;
        } ns[] = { { "uts", CLONE_NEWUTS }, { "ipc", CLONE_NEWIPC }, { "net", CLONE_NEWNET }, { "user", CLONE_NEWUSER },
                   { "mnt", CLONE_NEWNS }, { "cgroup", CLONE_NEWCGROUP }, { "pid", CLONE_NEWPID } };
        int nsfd[ELEMENTSOF(ns)];
        int report[2] = { -EBADF, -EBADF }, info[2] = { -EBADF, -EBADF }, status = 0;
        pid_t helper;
        r = 1;
        for (size_t i = 0; i < ELEMENTSOF(ns); i++) {
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/ns/%s", init, ns[i].name);
                nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
                if (nsfd[i] < 0) {
                        fail("container %s: its namespaces are gone: %m", id);
                        for (size_t k = 0; k < i; k++)
                                close(nsfd[k]);
                        goto out;
                }
        }
        /* The net namespace may be the host's (no network namespace asked): then it is not joined. */
        {
                struct stat a, b;
                if (fstat(nsfd[2], &a) == 0 && stat("/proc/self/ns/net", &b) == 0 && a.st_ino == b.st_ino) {
                        close(nsfd[2]);
                        nsfd[2] = -EBADF;
                }
        }
        if (pipe2(info, O_CLOEXEC) < 0) {
                fail("pipe: %m");
                goto out_ns;
        }
        int want_umask = process ? proc.umask : cfg.umask;
        int oom_score_adj = pb->has_oom_score_adj ?
                oci_program_oom_score_adj(pb->oom_score_adj, oci_own_oom_score_adj()) : 1000;
        if (want_umask >= 0)
                umask((mode_t) want_umask);
        fflush(NULL);
        helper = fork();
        if (helper < 0) {
                fail("fork: %m");
                goto out_ns;
        }
        if (helper == 0) {
                /* The helper: joins, forks the program into the pid namespace, says its pid (or why not). */
                int console_fd = -EBADF, pty = -EBADF;
                pid_t child;
                char msg[1024];
                close(info[0]);
                if (console) {
                        struct sockaddr_un sa = { .sun_family = AF_UNIX };
                        console_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        if (strlen(console) >= sizeof sa.sun_path || console_fd < 0 ||
                            (strcpy(sa.sun_path, console), connect(console_fd, (struct sockaddr *) &sa, sizeof sa)) < 0) {
                                dprintf(info[1], "E--console-socket %s: %s", console, strerror(errno));
                                _exit(1);
                        }
                }
                /* Nothing of the host's comes along: no supplementary groups (host gid 0 among them would open
                 * group-readable files of binds), not dumpable (nothing in the sandbox may ptrace us). */
                if (setgroups(0, NULL) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                        dprintf(info[1], "Econtainer %s: cannot drop the host's groups: %s", id, strerror(errno));
                        _exit(1);
                }
                if (oci_join_cgroups(init) < 0) {
                        dprintf(info[1], "Econtainer %s: cannot join its cgroups: %s", id, strerror(errno));
                        _exit(1);
                }
                for (size_t i = 0; i < ELEMENTSOF(ns); i++)
                        if (nsfd[i] >= 0 && setns(nsfd[i], ns[i].type) < 0) {
                                dprintf(info[1], "Econtainer %s: cannot join its %s namespace: %s", id, ns[i].name,
                                        strerror(errno));
                                _exit(1);
                        }
                if (tty) {
                        int unlock = 0;
                        pty = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
                        if (pty < 0 || ioctl(pty, TIOCSPTLCK, &unlock) < 0) {
                                dprintf(info[1], "Econtainer %s: cannot open a terminal: %s", id, strerror(errno));
                                _exit(1);
                        }
                        if (console_fd >= 0 && (r = send_console_fd(console_fd, pty)) < 0) {
                                dprintf(info[1], "E--console-socket %s: %s", console, strerror(-r));
                                _exit(1);
                        }
                }
                if (pipe2(report, O_CLOEXEC) < 0 || (child = fork()) < 0) {
                        dprintf(info[1], "Efork: %s", strerror(errno));
                        _exit(1);
                }
                if (child == 0) {
                        close(report[0]);
                        program(spec, oom_score_adj, gids, n_gids, envp, filter, cfg.seccomp, pty, report[1]);
                }
                close(report[1]);
                safe_close(pty);
                ssize_t k = read(report[0], msg, sizeof msg - 1);
                if (k > 0) {
                        msg[k] = '\0';
                        (void) waitpid(child, &status, 0);
                        dprintf(info[1], "Econtainer %s: cannot %s", id, msg);
                        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
                }
                dprintf(info[1], "P%d", child);
                close(info[1]);
                if (detach)
                        _exit(0);
                while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                        ;
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        close(info[1]);
        info[1] = -EBADF;
        {
                char msg[1100];
                ssize_t k;
                do
                        k = read(info[0], msg, sizeof msg - 1);
                while (k < 0 && errno == EINTR);
                msg[k > 0 ? k : 0] = '\0';
                if (msg[0] != 'P') {
                        fail("%s", msg[0] == 'E' ? msg + 1 : "exec's helper died");
                        while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
                                ;
                        r = WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1;
                        goto out_ns;
                }
                if (pid_dir >= 0) {
                        int k2 = write_file_atomic_at(pid_dir, pid_name, msg + 1, strlen(msg + 1), 0644);
                        if (k2 < 0)
                                fail("--pid-file %s: %s", pid_file, strerror(-k2));
                }
        }
        while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
                ;
        r = detach ? 0 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out_ns:
        for (size_t i = 0; i < ELEMENTSOF(ns); i++)
                safe_close(nsfd[i]);
        safe_close(info[0]);
out:
        filter_program_free(filter);
        free(envp);
        oci_bundle_done(&cfg);
        oci_bundle_done(&proc);
        return r;
}
