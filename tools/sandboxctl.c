/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxctl: the client of sandboxd. `exec` takes exactly sandbox-run's options and exit statuses:
 * our stdin/stdout/stderr go to the daemon as file descriptors (or, with -t, the daemon hands us the
 * sandbox's pty master and we shuttle bytes ourselves); our signals become SIGNAL messages; EXIT
 * brings back the status. `ps`, `kill` and `version` are small requests. `cp` packs or unpacks the host's
 * side itself (copy/copytar.c, with the caller's own rights) on a pipe whose other end goes to the
 * daemon, which hands it to the sandbox's side.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "copytar.h"
#include "exec-options.h"
#include "fdpass.h"
#include "macro.h"
#include "msg.h"
#include "parse.h"
#include "sandbox.h"
#include "stats.h"
#include "terminal.h"

#define DEFAULT_SOCKET "/run/sandboxd/sandboxd.sock"
#define EXIT_DAEMON SANDBOX_EXIT_SETUP
/* Bad usage: one status for every command, sandbox-run's (the others are the program's). */
#define EXIT_USAGE SANDBOX_EXIT_SETUP

static const char *socket_path = DEFAULT_SOCKET;

static int connect_daemon(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(socket_path) >= sizeof sa.sun_path) {
                fprintf(stderr, "sandboxctl: socket path too long: %s\n", socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int e = errno;
                if (e == EACCES || e == EPERM) {
                        fprintf(stderr, "sandboxctl: permission denied on %s: only root and members of group "
                                "'sandbox' may use sandboxd\n", socket_path);
                        safe_close(fd);
                        return -e;
                }
                fprintf(stderr,
                        "sandboxctl: cannot reach sandboxd at %s: %s\n"
                        "Start it with 'systemctl start sandboxd.socket' (socket activation), or run\n"
                        "'sandboxd --listen %s' as root; use --socket PATH for another daemon.\n",
                        socket_path, strerror(e), socket_path);
                safe_close(fd);
                return -e;
        }
        return fd;
}

/* Print an ERROR frame and return the exit status it asks for; with O (exec) and its --stats, also
 * write the status and the message there, as sandbox-run does for a sandbox that did not start. */
static int report_exec_error(WireFrame *f, const ExecOptions *o) {
        MsgError m;
        const char *e = NULL;
        int status;

        if (msg_error_decode(f, &m, &e) < 0) {
                fprintf(stderr, "sandboxctl: the daemon sent a malformed error (%s)\n", e ?: "?");
                return EXIT_DAEMON;
        }
        fprintf(stderr, "sandboxctl: %s\n", m.message);
        status = m.status > 0 && m.status <= 255 ? m.status : EXIT_DAEMON;
        if (o && (o->stats_path || o->stats_fd >= 0)) {
                const StatsTarget t = { .path = o->stats_path, .fd = o->stats_fd };
                int r = stats_write_error(&t, status, m.message);
                if (r < 0)
                        fprintf(stderr, "sandboxctl: cannot write --stats '%s': %s\n",
                                stats_target_name(&t, (char[4200]) {}, 4200), strerror(-r));
        }
        return status;
}

static int report_error(WireFrame *f) {
        return report_exec_error(f, NULL);
}

static int send_msg(int fd, MsgType type, WireBuffer *b, const int *fds, size_t n_fds) {
        int r = wire_send_frame(fd, (uint16_t) type, b ? b->data : NULL, b ? b->size : 0, fds, n_fds);
        if (r < 0)
                fprintf(stderr, "sandboxctl: cannot send to the daemon: %s\n", strerror(-r));
        return r;
}

static int recv_msg(int fd, WireFrame **ret) {
        int r = wire_recv_frame_blocking(fd, ret);
        if (r < 0)
                fprintf(stderr, "sandboxctl: %s\n", r == -ECONNRESET ? "the daemon closed the connection"
                                                                        : "cannot read from the daemon");
        return r;
}

/* Connect and say HELLO; returns the socket, or a negative exit status to use. *RET_VERSION (may be NULL):
 * the protocol version the daemon chose. */
static int open_session(char *daemon_version, size_t size, uint32_t *ret_version) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        MsgHello hello = { .min_version = MSG_PROTOCOL_VERSION_MIN, .max_version = MSG_PROTOCOL_VERSION };
        MsgHelloReply reply;
        const char *e = NULL;

        fd = connect_daemon();
        if (fd < 0)
                return -EXIT_DAEMON;
        snprintf(hello.client_version, sizeof hello.client_version, "%s", PROJECT_VERSION);
        if (msg_hello_encode(&hello, &b) < 0)
                return -EXIT_DAEMON;
        /* A daemon that refuses us says why and closes at once: then our HELLO meets a closed socket,
         * but its ERROR is still there to read. */
        if (wire_send_frame(fd, MSG_HELLO, b.data, b.size, NULL, 0) < 0) {
                if (wire_recv_frame_blocking(fd, &f) >= 0 && f->type == MSG_ERROR)
                        return -report_error(f);
                fprintf(stderr, "sandboxctl: the daemon closed the connection\n");
                return -EXIT_DAEMON;
        }
        if (recv_msg(fd, &f) < 0)
                return -EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return -report_error(f);
        if (f->type != MSG_HELLO_REPLY || msg_hello_reply_decode(f, &reply, &e) < 0) {
                fprintf(stderr, "sandboxctl: the daemon answered HELLO with %s\n", msg_type_to_string(f->type));
                return -EXIT_DAEMON;
        }
        if (daemon_version)
                snprintf(daemon_version, size, "%s", reply.daemon_version);
        if (ret_version)
                *ret_version = reply.version;
        return TAKE_FD(fd);
}

static void write_stats(const ExecOptions *o, const MsgExit *m) {
        const StatsTarget t = { .path = o->stats_path, .fd = o->stats_fd };
        SandboxResult res = {
                .status = m->status,
                .exit_code = m->exit_code,
                .signal = m->signal,
                .limit = m->limit == MSG_LIMIT_TIMEOUT ? SANDBOX_LIMIT_TIMEOUT :
                         m->limit == MSG_LIMIT_CPU_TIME ? SANDBOX_LIMIT_CPU_TIME :
                         m->limit == MSG_LIMIT_MEMORY ? SANDBOX_LIMIT_MEMORY : SANDBOX_LIMIT_NONE,
                .wall_usec = m->wall_usec,
                .cpu_usec = m->cpu_usec,
                .memory_peak = m->memory_peak,
                .max_rss = m->max_rss,
                .pids_limit_hit = m->pids_limit_hit,
                .disk_limit_hit = m->disk_limit_hit,
                .union_failed = m->union_failed,
        };
        int r = stats_write(&t, &res);
        if (r < 0)
                fprintf(stderr, "sandboxctl: cannot write --stats '%s': %s\n",
                        stats_target_name(&t, (char[4200]) {}, 4200), strerror(-r));
}

static int finish_exit(WireFrame *f, const ExecOptions *o) {
        MsgExit m;
        const char *e = NULL;

        if (msg_exit_decode(f, &m, &e) < 0) {
                fprintf(stderr, "sandboxctl: the daemon sent a malformed EXIT (%s)\n", e ?: "?");
                return EXIT_DAEMON;
        }
        terminal_restore();
        if (m.limit == MSG_LIMIT_MEMORY) {
                char buf[FORMAT_SIZE_MAX];
                /* The daemon may have lowered a limit not given to its cap: name only one we gave. */
                if (o->spec.memory_max && o->spec.memory_max != SPEC_UNLIMITED)
                        fprintf(stderr, "sandboxctl: the memory limit (%s) was exceeded; the program was killed\n",
                                format_size(o->spec.memory_max, buf, sizeof buf));
                else
                        fprintf(stderr, "sandboxctl: the memory limit (the default, or the daemon's max-memory) was "
                                "exceeded; the program was killed\n");
        }
        else if (m.limit == MSG_LIMIT_TIMEOUT && o->spec.timeout_usec)
                fprintf(stderr, "sandboxctl: the time limit (--timeout %.3g s) was reached; the program was killed\n",
                        (double) o->spec.timeout_usec / 1e6);
        else if (m.limit == MSG_LIMIT_TIMEOUT)
                fprintf(stderr, "sandboxctl: the time limit (the daemon's max-timeout) was reached; the program was "
                        "killed\n");
        else if (m.limit == MSG_LIMIT_CPU_TIME)
                fprintf(stderr, "sandboxctl: the CPU time limit (--cpu-time) was reached; the program was killed\n");
        else if (m.union_failed)
                fprintf(stderr, "sandboxctl: the sandbox's file system server ended unexpectedly; the sandbox was "
                        "stopped\n");
        if (m.disk_limit_hit)
                fprintf(stderr, "sandboxctl: the disk limit (--disk) was reached: writes past it failed with "
                        "'No space left on device'\n");
        if (o->stats_path || o->stats_fd >= 0)
                write_stats(o, &m);
        return m.status >= 0 && m.status <= 255 ? m.status : EXIT_DAEMON;
}

/* Each --bind source, opened by us, with our credentials: the daemon takes the descriptor and never
 * resolves our path (as root, it could reach what we cannot). O_PATH: a directory we may search
 * but not list is still ours to name; the daemon checks what we may do with it. Root names host paths
 * to the daemon as it does to sandbox-run: a descriptor only works when the daemon shares our mount
 * namespace (the kernel clones mounts of the caller's own namespace only), a path works in both. */
static int open_bind_sources(SandboxSpec *spec, int fds[static SPEC_MOUNTS_MAX]) {
        if (geteuid() == 0)
                return 0;
        for (size_t i = 0; i < spec->n_binds && i < SPEC_MOUNTS_MAX; i++) {
                fds[i] = open(spec->binds[i].source, O_PATH | O_CLOEXEC);
                if (fds[i] < 0) {
                        fprintf(stderr, "sandboxctl: --bind '%s': cannot open it: %m\n", spec->binds[i].source);
                        return SANDBOX_EXIT_SETUP;
                }
                spec->binds[i].by_fd = true;
        }
        return 0;
}

/* BIND_FDS frames of up to 3 descriptors each, before the EXEC. A daemon older than protocol 3 takes
 * paths only (as root, or with allow-host-paths) and knows neither capabilities nor idmap. */
static int send_bind_sources(int fd, uint32_t version, SandboxSpec *spec, const int fds[static SPEC_MOUNTS_MAX]) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};

        if (version < 3) {
                bool idmap = false;
                for (size_t i = 0; i < spec->n_binds; i++) {
                        spec->binds[i].by_fd = false;
                        idmap = idmap || spec->binds[i].idmap;
                }
                if (idmap || spec->cap_add || spec->cap_drop) {
                        fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u; --cap-add, --cap-drop "
                                "and --bind ...:idmap need version 3 (a newer sandboxd)\n", version);
                        return EXIT_DAEMON;
                }
                return 0;
        }
        if (spec->n_binds == 0 || !spec->binds[0].by_fd)
                return 0; /* root's binds are paths (open_bind_sources()) */
        if (msg_empty_encode(&b) < 0)
                return EXIT_DAEMON;
        for (size_t i = 0; i < spec->n_binds; i += WIRE_FDS_MAX) {
                size_t n = MIN(spec->n_binds - i, (size_t) WIRE_FDS_MAX);
                if (send_msg(fd, MSG_BIND_FDS, &b, fds + i, n) < 0)
                        return EXIT_DAEMON;
        }
        return 0;
}

static void close_fds(int (*fds)[SPEC_MOUNTS_MAX]) {
        for (size_t i = 0; i < SPEC_MOUNTS_MAX; i++)
                safe_close((*fds)[i]);
}

static int cmd_exec(int argc, char *argv[]) {
        static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
        _cleanup_(exec_options_done) ExecOptions o = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_decoder_freep) WireDecoder *d = NULL;
        _cleanup_close_ int fd = -EBADF, sfd = -EBADF, pty = -EBADF;
        _cleanup_(stdio_relay_done) StdioRelay relay = { .own = { -1, -1, -1 }, .in_w = -1, .out_r = { -1, -1 } };
        bool stdin_open = true, pty_open = true;
        _cleanup_(close_fds) int bind_fds[SPEC_MOUNTS_MAX];
        uint32_t version = 0;
        sigset_t mask;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(bind_fds); i++)
                bind_fds[i] = -EBADF;
        /* getopt names argv[0] in its messages: "sandboxctl", not "exec". */
        argv[0] = program_invocation_short_name;
        if (exec_options_parse_mode(argc, argv, EXEC_OPTIONS_EXEC, &o) < 0)
                return EXIT_USAGE;
        if (o.show_help) {
                printf("Usage: sandboxctl [--socket PATH] exec [OPTIONS] [--] CMD [ARGS...]\n"
                       "       sandboxctl [--socket PATH] exec [OPTIONS] --image NAME [--] [ARGS...]\n"
                       "       sandboxctl [--socket PATH] exec --in ID|NAME [-t] [-e ...] [-w DIR] [-u USER]\n"
                       "                  [--timeout S] [--stats ...] [--] CMD [ARGS...]\n\n"
                       "Run CMD in a sandbox of sandboxd; the options and exit statuses are sandbox-run's.\n"
                       "--image NAME names an image of the daemon's store (it resolves it; its configuration may\n"
                       "restrict which images users other than root may run).\n"
                       "--in ID|NAME runs CMD in a sandbox made by 'sandboxctl create' instead of a new one: in its\n"
                       "file systems, namespaces and limits (shared by all its programs); --timeout (for users other\n"
                       "than root capped by the daemon's max-timeout) bounds this program only. -u NAME is looked up\n"
                       "in the sandbox's /etc/passwd.\n\n");
                exec_options_help(stdout, true);
                return 0;
        }
        if (o.store) {
                fprintf(stderr, "sandboxctl: --store is sandbox-run's: sandboxd uses its own store (store= in its "
                        "configuration, or its --store)\n");
                return EXIT_USAGE;
        }

        r = open_bind_sources(&o.spec, bind_fds);
        if (r != 0)
                return r;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&mask, forwarded[i]);
        sigaddset(&mask, SIGCONT); /* wakes the loop after fg: see sandbox-run.c */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (o.in[0] && version < 4) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no created sandboxes "
                        "(exec --in needs version 4): update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        /* Version 3 brought images of the store; an older daemon would refuse the fields as unknown. */
        if (version < 3 && (o.spec.image_ref || o.spec.entrypoint || o.spec.user)) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no images of the store "
                        "(--image NAME, --entrypoint, --user NAME need version 3): update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        r = send_bind_sources(fd, version, &o.spec, bind_fds);
        if (r != 0)
                return r;
        if (o.n_volumes > 0 && version < 5) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no volumes (--volume "
                        "needs version 5): update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        if ((o.in[0] ? msg_exec_in_encode(&o.spec, o.in, &b) : msg_exec_encode(&o.spec, &b)) < 0 ||
            msg_exec_encode_volumes(o.volumes, o.n_volumes, &b) < 0) {
                fprintf(stderr, "sandboxctl: out of memory\n");
                return EXIT_DAEMON;
        }
        /* Without -t the daemon gets pipes for our terminals, never a terminal (terminal.h). */
        if (!o.spec.tty) {
                r = stdio_relay_init(&relay);
                if (r < 0) {
                        fprintf(stderr, "sandboxctl: cannot make pipes for the program's stdio: %s\n", strerror(-r));
                        return EXIT_DAEMON;
                }
        }
        r = send_msg(fd, MSG_EXEC, &b, o.spec.tty ? NULL : relay.fds, o.spec.tty ? 0 : 3);
        stdio_relay_started(&relay); /* the daemon has its copies */
        if (r < 0)
                return EXIT_DAEMON;
        (void) signal(SIGPIPE, SIG_IGN); /* a program that closed its stdin: EPIPE for us, not death */

        /* STARTED or ERROR comes first. */
        {
                _cleanup_(wire_frame_freep) WireFrame *f = NULL;
                MsgStarted st;
                const char *e = NULL;

                if (recv_msg(fd, &f) < 0)
                        return EXIT_DAEMON;
                if (f->type == MSG_ERROR)
                        return report_exec_error(f, &o);
                if (f->type != MSG_STARTED || msg_started_decode(f, &st, &e) < 0) {
                        fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s\n", msg_type_to_string(f->type));
                        return EXIT_DAEMON;
                }
                pty = st.pty_fd;
        }
        /* We no longer need our copies of stdio in the daemon's direction; keep ours for the pty. */
        if (pty >= 0) {
                if (isatty(STDIN_FILENO))
                        terminal_setup(STDIN_FILENO, pty);
                (void) fcntl(pty, F_SETFL, O_NONBLOCK);
        }
        d = wire_decoder_new();
        if (!d)
                return EXIT_DAEMON;

        for (;;) {
                struct pollfd p[4 + STDIO_RELAY_POLLFDS] = {
                        { .fd = fd, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                        { .fd = pty >= 0 && stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
                        { .fd = pty >= 0 && pty_open ? pty : -1, .events = POLLIN },
                };
                stdio_relay_pollfds(&relay, p + 4);
                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                stdio_relay_process(&relay, p + 4);
                if (p[3].revents && !terminal_pump(pty, STDOUT_FILENO))
                        pty_open = false;
                if (p[2].revents && !terminal_pump(STDIN_FILENO, pty)) {
                        stdin_open = false;
                        (void) !write(pty, "\004", 1); /* our input ended: EOF for the program */
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof si) == sizeof si) {
                                _cleanup_(wire_buffer_done) WireBuffer sb = {};
                                if (si.ssi_signo == SIGCONT)
                                        continue;
                                if (si.ssi_signo == SIGWINCH) {
                                        if (pty >= 0)
                                                terminal_copy_size(STDIN_FILENO, pty);
                                        continue;
                                }
                                /* The sandbox is in a session of its own: a terminal's ^C, ^\ or
                                 * hang-up reaches only us (with -t our terminal is raw: ^C is a byte). */
                                MsgSignal m = { .signal = si.ssi_signo };
                                if (msg_signal_encode(&m, &sb) >= 0)
                                        (void) send_msg(fd, MSG_SIGNAL, &sb, NULL, 0);
                        }
                }
                if (p[0].revents) {
                        r = wire_decoder_read_from_fd(d, fd);
                        if (r == -EAGAIN || r == -EINTR)
                                continue;
                        for (;;) {
                                _cleanup_(wire_frame_freep) WireFrame *f = NULL;
                                if (wire_decoder_pop(d, &f) <= 0 || !f)
                                        break;
                                if (f->type == MSG_EXIT) {
                                        while (pty >= 0 && pty_open && terminal_pump(pty, STDOUT_FILENO))
                                                ;
                                        stdio_relay_drain(&relay);
                                        return finish_exit(f, &o);
                                }
                                if (f->type == MSG_ERROR)
                                        return report_exec_error(f, &o);
                        }
                        if (r <= 0) {
                                terminal_restore();
                                fprintf(stderr, "sandboxctl: the daemon closed the connection before the sandbox ended\n");
                                return EXIT_DAEMON;
                        }
                }
        }
        return EXIT_DAEMON;
}

static void print_json_string(const char *s) {
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        printf("\\%c", *s);
                else if ((unsigned char) *s < 0x20)
                        printf("\\u%04x", (unsigned char) *s);
                else
                        putchar(*s);
        }
        putchar('"');
}

static const char *age_string(uint64_t started_usec, char *buf, size_t size) {
        uint64_t now = (uint64_t) time(NULL) * 1000000, s = now > started_usec ? (now - started_usec) / 1000000 : 0;

        if (s < 120)
                snprintf(buf, size, "%" PRIu64 "s", s);
        else if (s < 7200)
                snprintf(buf, size, "%" PRIu64 "m", s / 60);
        else if (s < 172800)
                snprintf(buf, size, "%" PRIu64 "h", s / 3600);
        else
                snprintf(buf, size, "%" PRIu64 "d", s / 86400);
        return buf;
}

/* "USED/MAX", "USED" without a bound, "-" when the daemon did not say. */
static const char *usage_string(uint64_t used, uint64_t max, char *buf, size_t size) {
        char u[FORMAT_SIZE_MAX], m[FORMAT_SIZE_MAX];

        if (max == 0)
                return "-";
        format_size(used, u, sizeof u);
        if (max == UINT64_MAX)
                snprintf(buf, size, "%s", u);
        else
                snprintf(buf, size, "%s/%s", u, format_size(max, m, sizeof m));
        return buf;
}

static void print_json_u64_or_null(const char *key, uint64_t v, bool known) {
        if (known)
                printf(", \"%s\": %" PRIu64, key, v);
        else
                printf(", \"%s\": null", key);
}

static int cmd_ps(int argc, char *argv[]) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_(msg_list_reply_done) MsgListReply reply = {};
        _cleanup_close_ int fd = -EBADF;
        const char *e = NULL;
        uint32_t version = 0;
        bool json = false;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        json = true;
                else if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        printf("Usage: sandboxctl ps [--json]\n\n"
                               "List sandboxes (root sees all, others their own): one-shot ones of exec and created\n"
                               "ones, with their state, age, image and memory, CPU and disk use.\n");
                        return 0;
                } else {
                        fprintf(stderr, "sandboxctl ps: unknown argument '%s'\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (msg_empty_encode(&b) < 0 || send_msg(fd, MSG_LIST, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return report_error(f);
        if (f->type != MSG_LIST_REPLY || msg_list_reply_decode(f, &reply, &e) < 0) {
                fprintf(stderr, "sandboxctl: unexpected answer from the daemon\n");
                return EXIT_DAEMON;
        }
        if (json) {
                printf("[");
                for (size_t i = 0; i < reply.n_entries; i++) {
                        const MsgListEntry *en = &reply.entries[i];
                        bool v4 = version >= 4;
                        printf("%s\n  {\"id\": \"%s\", \"uid\": %u, \"pid\": %u, \"command\": ", i ? "," : "", en->id,
                               en->uid, en->pid);
                        print_json_string(en->command);
                        printf(", \"started_usec\": %" PRIu64, en->started_usec);
                        if (v4) {
                                printf(", \"name\": ");
                                print_json_string(en->name);
                                printf(", \"kind\": \"%s\", \"state\": \"%s\", \"image\": ", msg_kind_to_string(en->kind),
                                       msg_state_to_string(en->state));
                                if (en->image)
                                        print_json_string(en->image);
                                else
                                        printf("null");
                                bool live = en->state != MSG_STATE_STOPPED && en->memory_max != 0;
                                print_json_u64_or_null("memory_bytes", en->memory_bytes, live);
                                print_json_u64_or_null("memory_max", en->memory_max,
                                                       live && en->memory_max != UINT64_MAX);
                                print_json_u64_or_null("cpu_usec", en->cpu_usec, live);
                                print_json_u64_or_null("disk_bytes", en->disk_bytes, live && en->disk_max != UINT64_MAX);
                                print_json_u64_or_null("disk_max", en->disk_max, live && en->disk_max != UINT64_MAX);
                                printf(", \"execs\": %u", en->execs);
                                print_json_u64_or_null("expires_usec", en->expires_usec, en->expires_usec != 0);
                                print_json_u64_or_null("idle_ttl_usec", en->idle_ttl_usec, en->idle_ttl_usec != 0);
                        }
                        printf("}");
                }
                printf("%s]\n", reply.n_entries ? "\n" : "");
                return 0;
        }
        if (version < 4) {
                printf("%-16s %8s %8s %-19s %s\n", "ID", "UID", "PID", "STARTED", "COMMAND");
                for (size_t i = 0; i < reply.n_entries; i++) {
                        const MsgListEntry *en = &reply.entries[i];
                        time_t t = (time_t) (en->started_usec / 1000000);
                        struct tm tm;
                        char when[32];
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
                        printf("%-16s %8u %8u %-19s %s\n", en->id, en->uid, en->pid, when, en->command);
                }
                return 0;
        }
        /* ID, UID and PID first, as before version 4; the command (argv[0]) last. */
        printf("%-16s %6s %8s %-16s %-8s %5s %-19s %-17s %8s %-17s %5s %s\n", "ID", "UID", "PID", "NAME", "STATE",
               "AGE", "IMAGE", "MEMORY", "CPU", "DISK", "EXECS", "COMMAND");
        for (size_t i = 0; i < reply.n_entries; i++) {
                const MsgListEntry *en = &reply.entries[i];
                bool live = en->state != MSG_STATE_STOPPED;
                char age[32], mem[2 * FORMAT_SIZE_MAX + 2], disk[2 * FORMAT_SIZE_MAX + 2], cpu[32], image[20];

                snprintf(image, sizeof image, "%.19s", en->image ?: "-");
                if (live)
                        snprintf(cpu, sizeof cpu, "%.1fs", (double) en->cpu_usec / 1e6);
                char pid[16] = "-";
                if (en->pid > 0)
                        snprintf(pid, sizeof pid, "%u", en->pid);
                printf("%-16s %6u %8s %-16s %-8s %5s %-19s %-17s %8s %-17s %5u %s\n", en->id, en->uid, pid,
                       en->name[0] ? en->name : "-", msg_state_to_string(en->state),
                       age_string(en->started_usec, age, sizeof age), image,
                       live ? usage_string(en->memory_bytes, en->memory_max, mem, sizeof mem) : "-",
                       live ? cpu : "-",
                       live && en->disk_max != UINT64_MAX ? usage_string(en->disk_bytes, en->disk_max, disk, sizeof disk) : "-",
                       en->execs, en->kind == MSG_KIND_CREATED ? "(created)" : en->command);
        }
        return 0;
}

/* CREATE: prints the new sandbox's id (with --json, its id and name). */
static int cmd_create(int argc, char *argv[]) {
        _cleanup_(exec_options_done) ExecOptions o = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_(close_fds) int bind_fds[SPEC_MOUNTS_MAX];
        _cleanup_(msg_create_done) MsgCreate m = {};
        MsgCreated created;
        const char *e = NULL;
        uint32_t version = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(bind_fds); i++)
                bind_fds[i] = -EBADF;
        argv[0] = program_invocation_short_name;
        if (exec_options_parse_mode(argc, argv, EXEC_OPTIONS_CREATE, &o) < 0)
                return EXIT_USAGE;
        if (o.show_help) {
                printf("Usage: sandboxctl [--socket PATH] create [OPTIONS] [--name NAME] [--ttl S] [--idle-ttl S]\n"
                       "                  [--json]\n\n"
                       "Make a sandbox that lives: it runs no program of its own; run programs in it with\n"
                       "'sandboxctl exec --in ID|NAME', end it with 'sandboxctl stop' and 'sandboxctl rm'. Prints its\n"
                       "id (--json: {\"id\": ..., \"name\": ...}). Its bounds (--memory, --pids, --disk, ...) cover all\n"
                       "its programs together.\n\n"
                       "      --name NAME     a name for it, unique among your sandboxes (1-63 of [A-Za-z0-9_.-])\n"
                       "      --ttl S         remove it S seconds after its creation (users other than root: at most,\n"
                       "                      and by default, the daemon's max-ttl, 1 hour unless configured)\n"
                       "      --idle-ttl S    remove it once no exec --in has run in it for S seconds\n"
                       "      --json          print its id and name as JSON\n\n"
                       "The sandbox options are exec's, but for -t, --timeout, --cpu-time, --stats and\n"
                       "--entrypoint, which are each program's (exec --in).\n\n");
                exec_options_help(stdout, true);
                return 0;
        }
        if (o.store) {
                fprintf(stderr, "sandboxctl: --store is sandbox-run's: sandboxd uses its own store\n");
                return EXIT_USAGE;
        }
        r = open_bind_sources(&o.spec, bind_fds);
        if (r != 0)
                return r;
        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (version < 4) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no created sandboxes "
                        "(create needs version 4): update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        r = send_bind_sources(fd, version, &o.spec, bind_fds);
        if (r != 0)
                return r;
        m.spec = o.spec;
        o.spec = (SandboxSpec) {};
        snprintf(m.name, sizeof m.name, "%s", o.name);
        m.ttl_usec = o.ttl_usec;
        m.idle_ttl_usec = o.idle_ttl_usec;
        if (o.n_volumes > 0 && version < 5) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no volumes (--volume "
                        "needs version 5): update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        memcpy(m.volumes, o.volumes, sizeof m.volumes);
        m.n_volumes = o.n_volumes;
        o.n_volumes = 0;
        if (msg_create_encode(&m, &b) < 0) {
                fprintf(stderr, "sandboxctl: cannot encode the request (too large?)\n");
                return EXIT_DAEMON;
        }
        if (send_msg(fd, MSG_CREATE, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return report_error(f);
        if (f->type != MSG_CREATED || msg_created_decode(f, &created, &e) < 0) {
                fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s\n", msg_type_to_string(f->type));
                return EXIT_DAEMON;
        }
        if (o.json) {
                printf("{\"id\": \"%s\", \"name\": ", created.id);
                print_json_string(created.name);
                printf("}\n");
        } else
                printf("%s\n", created.id);
        return 0;
}

/* STOP, RM, PAUSE, RESUME of each TARGET given, one connection each (an ERROR ends a connection). */
static int cmd_target(MsgType type, int argc, char *argv[]) {
        const char *verb = type == MSG_STOP ? "stop" : type == MSG_RM ? "rm" : type == MSG_PAUSE ? "pause" : "resume";
        MsgTarget m = {};
        int first = 0, status = 0;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        if (type == MSG_STOP)
                                printf("Usage: sandboxctl stop [-t|--time SECONDS] ID|NAME...\n\n"
                                       "Stop created sandboxes: SIGTERM to their processes, SIGKILL after SECONDS (10),\n"
                                       "then their file systems (and what was written there) are removed. The entry stays\n"
                                       "(ps shows it stopped) until 'sandboxctl rm' or its ttl.\n");
                        else if (type == MSG_RM)
                                printf("Usage: sandboxctl rm [-f|--force] ID|NAME...\n\n"
                                       "Remove stopped sandboxes; with -f also running ones (killed at once).\n");
                        else
                                printf("Usage: sandboxctl %s ID|NAME...\n\n%s\n", verb,
                                       type == MSG_PAUSE ? "Freeze every process of the sandboxes' programs (the cgroup freezer)."
                                                         : "Thaw paused sandboxes.");
                        return 0;
                } else if (type == MSG_RM && (streq(argv[i], "-f") || streq(argv[i], "--force")))
                        m.force = true;
                else if (type == MSG_STOP && (streq(argv[i], "-t") || streq(argv[i], "--time")) && i + 1 < argc) {
                        if (parse_seconds(argv[++i], &m.timeout_usec) < 0 || m.timeout_usec > MSG_TTL_MAX_USEC) {
                                fprintf(stderr, "sandboxctl stop: --time '%s': expected seconds, at most a year\n", argv[i]);
                                return EXIT_USAGE;
                        }
                        if (m.timeout_usec == 0)
                                m.timeout_usec = 1; /* 0 would mean the default */
                } else if (streq(argv[i], "--")) {
                        first = i + 1;
                        break;
                } else if (argv[i][0] == '-') {
                        fprintf(stderr, "sandboxctl %s: unknown option '%s' (see --help)\n", verb, argv[i]);
                        return EXIT_USAGE;
                } else {
                        first = i;
                        break;
                }
        }
        if (first == 0 || first >= argc) {
                fprintf(stderr, "sandboxctl %s: no sandbox given (an id or a name; see sandboxctl ps)\n", verb);
                return EXIT_USAGE;
        }
        for (int i = first; i < argc; i++)
                if (!msg_target_is_valid(argv[i])) {
                        fprintf(stderr, "sandboxctl %s: '%s' is not a sandbox id (16 hex digits) or name\n", verb, argv[i]);
                        return EXIT_USAGE;
                }
        for (int i = first; i < argc; i++) {
                _cleanup_(wire_buffer_done) WireBuffer b = {};
                _cleanup_(wire_frame_freep) WireFrame *f = NULL;
                _cleanup_close_ int fd = -EBADF;
                uint32_t version = 0;

                snprintf(m.target, sizeof m.target, "%s", argv[i]);
                fd = open_session(NULL, 0, &version);
                if (fd < 0)
                        return -fd;
                if (version < 4) {
                        fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no created "
                                "sandboxes (%s needs version 4): update sandboxd\n", version, verb);
                        return EXIT_DAEMON;
                }
                if (msg_target_encode(type, &m, &b) < 0 || send_msg(fd, type, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                        return EXIT_DAEMON;
                if (f->type == MSG_ERROR)
                        status = report_error(f);
                else if (f->type != MSG_OK) {
                        fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s\n", msg_type_to_string(f->type));
                        status = EXIT_DAEMON;
                }
        }
        return status;
}

static int cmd_kill(int argc, char *argv[]) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        MsgKill m = { .signal = SIGTERM };

        if (argc < 2 || argc > 3 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
                fprintf(argc == 2 ? stdout : stderr, "Usage: sandboxctl kill ID [SIGNAL]\n\n"
                        "Send SIGNAL (a number or a name like TERM, KILL; default TERM) to a sandbox's program.\n");
                return argc == 2 ? 0 : EXIT_USAGE;
        }
        if (!msg_id_is_valid(argv[1])) {
                fprintf(stderr, "sandboxctl kill: '%s' is not a sandbox id (16 hex digits; see sandboxctl ps)\n", argv[1]);
                return EXIT_USAGE;
        }
        snprintf(m.id, sizeof m.id, "%s", argv[1]);
        if (argc == 3) {
                const char *name = argv[2];
                uint32_t n;
                if (strncasecmp(name, "SIG", 3) == 0)
                        name += 3;
                if (safe_atou32(name, &n) >= 0 && n >= 1 && n <= MSG_SIGNAL_MAX)
                        m.signal = n;
                else {
                        m.signal = 0;
                        for (int s = 1; s < NSIG; s++) {
                                const char *abbrev = sigabbrev_np(s);
                                if (abbrev && strcasecmp(abbrev, name) == 0)
                                        m.signal = (uint32_t) s;
                        }
                        if (m.signal == 0) {
                                fprintf(stderr, "sandboxctl kill: unknown signal '%s'\n", argv[2]);
                                return EXIT_USAGE;
                        }
                }
        }
        fd = open_session(NULL, 0, NULL);
        if (fd < 0)
                return -fd;
        if (msg_kill_encode(&m, &b) < 0 || send_msg(fd, MSG_KILL, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return report_error(f);
        return f->type == MSG_OK ? 0 : EXIT_DAEMON;
}

static int cmd_version(int argc, char *argv[]) {
        char daemon_version[MSG_VERSION_STRING_MAX + 1] = "";
        uint32_t version = 0;
        bool json = false;
        int fd;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        json = true;
                else if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        printf("Usage: sandboxctl version [--json]\n\nShow the client's and the daemon's versions, and "
                               "the protocol version they agree on.\n");
                        return 0;
                } else {
                        fprintf(stderr, "sandboxctl version: unknown argument '%s'\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        if (!json)
                printf("sandboxctl %s (protocol %d..%d)\n", PROJECT_VERSION, MSG_PROTOCOL_VERSION_MIN,
                       MSG_PROTOCOL_VERSION);
        fd = open_session(daemon_version, sizeof daemon_version, &version);
        if (fd < 0)
                return -fd;
        close(fd);
        if (json) {
                printf("{\"client\": ");
                print_json_string(PROJECT_VERSION);
                printf(", \"client_protocol_min\": %d, \"client_protocol_max\": %d, \"daemon\": ",
                       MSG_PROTOCOL_VERSION_MIN, MSG_PROTOCOL_VERSION);
                print_json_string(daemon_version);
                printf(", \"protocol\": %u}\n", version);
        } else
                printf("sandboxd %s\n", daemon_version);
        return 0;
}

/* ID|NAME:PATH: the sandbox's side of cp (PATH absolute); 0 when ARG is a host path. */
static int cp_split(const char *arg, MsgCopy *m) {
        const char *colon = strchr(arg, ':');
        size_t n = colon ? (size_t) (colon - arg) : 0;
        char target[MSG_TARGET_MAX + 1];

        if (!colon || n == 0 || n > MSG_TARGET_MAX)
                return 0;
        memcpy(target, arg, n);
        target[n] = '\0';
        if (!msg_target_is_valid(target))
                return 0;
        if (colon[1] != '/' || strlen(colon + 1) >= sizeof m->path)
                return -EINVAL;
        memcpy(m->target, target, n + 1);
        strcpy(m->path, colon + 1);
        return 1;
}

static int cmd_cp(int argc, char *argv[]) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_close_ int fd = -EBADF, ours = -EBADF, theirs = -EBADF;
        char err[COPYTAR_ERROR_MAX] = "";
        MsgCopy m = { .fd = -EBADF };
        uint32_t version = 0;
        int r, local_r = 0;

        if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("Usage: sandboxctl cp SRC ID|NAME:PATH\n"
                       "       sandboxctl cp ID|NAME:PATH DST\n\n"
                       "Copy files into or out of a created sandbox, as docker cp does: a directory with everything\n"
                       "below it, symlinks as symlinks, modes and times kept, files owned by whoever receives\n"
                       "them (the sandbox's root inside; you on the host, without set-uid or set-gid bits).\n"
                       "DST an existing directory: SRC goes into it; otherwise SRC becomes DST. PATH/. copies a\n"
                       "directory's contents. SRC or DST '-': a tar stream on standard input or output.\n"
                       "Host files are read and written with your own rights; the sandbox's side is done inside\n"
                       "the sandbox as its root, and what comes in counts against its disk bound.\n");
                return 0;
        }
        if (argc != 3) {
                fprintf(stderr, "sandboxctl cp: expected SRC and DST, one of them ID|NAME:PATH (see --help)\n");
                return EXIT_USAGE;
        }
        int in_src = cp_split(argv[1], &m);
        MsgCopy m2 = { .fd = -EBADF };
        int in_dst = cp_split(argv[2], &m2);
        if (in_src < 0 || in_dst < 0) {
                fprintf(stderr, "sandboxctl cp: the path in the sandbox must be absolute and shorter than %d bytes\n",
                        MSG_COPY_PATH_MAX);
                return EXIT_USAGE;
        }
        if (in_src == in_dst) {
                fprintf(stderr, "sandboxctl cp: exactly one of SRC and DST must be ID|NAME:PATH (a sandbox's path)\n");
                return EXIT_USAGE;
        }
        if (in_dst)
                m = m2;
        m.direction = in_dst ? MSG_COPY_IN : MSG_COPY_OUT;
        const char *host = in_dst ? argv[1] : argv[2];

        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (version < 4) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no created sandboxes "
                        "(cp needs version 4): update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        if (streq(host, "-"))
                theirs = fcntl(in_dst ? STDIN_FILENO : STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        else {
                int p[2];
                if (pipe2(p, O_CLOEXEC) < 0) {
                        fprintf(stderr, "sandboxctl cp: pipe: %m\n");
                        return EXIT_DAEMON;
                }
                theirs = in_dst ? p[0] : p[1];
                ours = in_dst ? p[1] : p[0];
        }
        if (theirs < 0 || msg_copy_encode(&m, &b) < 0 || send_msg(fd, MSG_COPY, &b, &theirs, 1) < 0)
                return EXIT_DAEMON;
        theirs = safe_close(theirs);
        if (ours >= 0) {
                /* A sandbox side that fails stops reading: our writes then fail with EPIPE, not our death,
                 * and the daemon's answer says why. */
                (void) signal(SIGPIPE, SIG_IGN);
                if (in_dst)
                        local_r = copytar_pack(host, ours, NULL, err, sizeof err);
                else {
                        CopyTarOptions o = {};
                        local_r = copytar_unpack(ours, host, &o, NULL, err, sizeof err);
                }
                ours = safe_close(ours);
        }
        /* What failed first says why: our packing when we send (the sandbox's side then sees a short
         * stream) unless the other side went first (EPIPE), the sandbox's side when we receive (we then
         * see a short stream). */
        if (local_r < 0 && in_dst && local_r != -EPIPE) {
                fprintf(stderr, "sandboxctl cp: %s\n", err[0] ? err : strerror(-local_r));
                return 1;
        }
        if (recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR) {
                r = report_error(f);
                return r == EXIT_DAEMON ? r : 1;
        }
        if (f->type != MSG_OK) {
                fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s\n", msg_type_to_string(f->type));
                return EXIT_DAEMON;
        }
        if (local_r < 0) {
                fprintf(stderr, "sandboxctl cp: %s\n", err[0] ? err : strerror(-local_r));
                return 1;
        }
        return 0;
}

/* SNAPSHOT: the sandbox's changes as image IMAGE of the store (the daemon's answer, or --json). */
static int cmd_snapshot(int argc, char *argv[]) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *args[2];
        size_t n_args = 0;
        MsgSnapshot m = {};
        MsgSnapshotReply reply;
        const char *e = NULL;
        uint32_t version = 0;
        bool json = false, dashdash = false;

        for (int i = 1; i < argc; i++) {
                if (!dashdash && (streq(argv[i], "-h") || streq(argv[i], "--help"))) {
                        printf("Usage: sandboxctl snapshot ID|NAME IMAGE[:TAG] [--json]\n\n"
                               "Store a consistent snapshot of a created sandbox's changes (its programs are frozen\n"
                               "while it is taken) as the image IMAGE[:TAG] of the daemon's store, on top of the\n"
                               "sandbox's image; 'sandboxctl create --image IMAGE[:TAG]' then forks from it (its\n"
                               "layers are shared, nothing is copied). Your snapshots are yours: other users other\n"
                               "than root cannot see or use them. Taking a tag again moves it to the new snapshot.\n"
                               "The daemon bounds how many you keep (max-snapshots-per-uid) and their size\n"
                               "(max-snapshot-size).\n\n"
                               "      --json          print the image ID, its reference, the new layer's bytes and how\n"
                               "                      long the sandbox was frozen as JSON\n");
                        return 0;
                } else if (!dashdash && streq(argv[i], "--json"))
                        json = true;
                else if (!dashdash && streq(argv[i], "--"))
                        dashdash = true;
                else if (!dashdash && argv[i][0] == '-') {
                        fprintf(stderr, "sandboxctl snapshot: unknown option '%s' (see --help)\n", argv[i]);
                        return EXIT_USAGE;
                } else if (n_args >= 2) {
                        fprintf(stderr, "sandboxctl snapshot: too many arguments (ID|NAME IMAGE[:TAG])\n");
                        return EXIT_USAGE;
                } else
                        args[n_args++] = argv[i];
        }
        if (n_args != 2) {
                fprintf(stderr, "sandboxctl snapshot: expected a sandbox (an id or a name) and an image name IMAGE[:TAG]\n");
                return EXIT_USAGE;
        }
        if (!msg_target_is_valid(args[0])) {
                fprintf(stderr, "sandboxctl snapshot: '%s' is not a sandbox id (16 hex digits) or name\n", args[0]);
                return EXIT_USAGE;
        }
        snprintf(m.target, sizeof m.target, "%s", args[0]);
        if (strlen(args[1]) >= sizeof m.image) {
                fprintf(stderr, "sandboxctl snapshot: the image name is longer than %zu bytes\n", sizeof m.image - 1);
                return EXIT_USAGE;
        }
        snprintf(m.image, sizeof m.image, "%s", args[1]);
        if (msg_snapshot_encode(&m, &b) < 0) {
                fprintf(stderr, "sandboxctl snapshot: '%s' is not an image name (empty, or spaces or control "
                        "characters)\n", args[1]);
                return EXIT_USAGE;
        }
        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (version < 4) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no snapshots (version 4): "
                        "update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        if (send_msg(fd, MSG_SNAPSHOT, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return report_error(f);
        if (f->type != MSG_SNAPSHOT_REPLY) {
                fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s\n", msg_type_to_string(f->type));
                return EXIT_DAEMON;
        }
        if (msg_snapshot_reply_decode(f, &reply, &e) < 0) {
                fprintf(stderr, "sandboxctl: malformed answer from the daemon: %s\n", e ?: "invalid");
                return EXIT_DAEMON;
        }
        if (json) {
                printf("{\"id\": ");
                print_json_string(reply.id);
                printf(", \"reference\": ");
                print_json_string(reply.reference);
                printf(", \"layer_bytes\": %" PRIu64 ", \"pause_usec\": %" PRIu64 "}\n", reply.layer_bytes,
                       reply.pause_usec);
        } else
                printf("%s %s\n", reply.id, reply.reference);
        return 0;
}

static int volume_usage(void) {
        printf("Usage: sandboxctl [--socket PATH] volume create [--size SIZE] NAME\n"
               "       sandboxctl [--socket PATH] volume ls [--json]\n"
               "       sandboxctl [--socket PATH] volume rm [--uid UID] NAME...\n\n"
               "Volumes are storage of the daemon's that outlives sandboxes: mount one with\n"
               "'sandboxctl create|exec --volume NAME:/PATH[:ro]'. Each is yours (other users other than root\n"
               "cannot see, mount or remove it), has a size that is its quota (a write past it fails with\n"
               "ENOSPC inside), and is mounted by one sandbox at a time; rm refuses a volume in use.\n\n"
               "      --size SIZE     create: its size (like 512m, 4g; default 1G, at least 16M; users other than\n"
               "                      root at most the daemon's max-volume-size, 16G unless configured). The daemon\n"
               "                      keeps at most max-volumes-per-uid (16) of one user.\n"
               "      --json          ls: print them as JSON\n"
               "      --uid UID       rm (root only): remove that user's volume\n"
               "  -h, --help          show this help\n");
        return 0;
}

static int volume_request(MsgType type, const MsgVolume *m) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *e = NULL;
        uint32_t version = 0;

        if (msg_volume_encode(type, m, &b) < 0) {
                fprintf(stderr, "sandboxctl volume: cannot encode the request\n");
                return EXIT_USAGE;
        }
        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (version < 5) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no volumes (version 5): "
                        "update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        if (send_msg(fd, type, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return report_error(f);
        if (f->type != MSG_OK || msg_ok_decode(f, &e) < 0) {
                fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s\n", msg_type_to_string(f->type));
                return EXIT_DAEMON;
        }
        return 0;
}

static int volume_ls(bool json) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_(msg_volume_list_reply_done) MsgVolumeListReply reply = {};
        _cleanup_close_ int fd = -EBADF;
        const char *e = NULL;
        uint32_t version = 0;

        fd = open_session(NULL, 0, &version);
        if (fd < 0)
                return -fd;
        if (version < 5) {
                fprintf(stderr, "sandboxctl: the daemon speaks protocol version %u, which has no volumes (version 5): "
                        "update sandboxd\n", version);
                return EXIT_DAEMON;
        }
        if (msg_empty_encode(&b) < 0 || send_msg(fd, MSG_VOLUME_LIST, &b, NULL, 0) < 0 || recv_msg(fd, &f) < 0)
                return EXIT_DAEMON;
        if (f->type == MSG_ERROR)
                return report_error(f);
        if (f->type != MSG_VOLUME_LIST_REPLY || msg_volume_list_reply_decode(f, &reply, &e) < 0) {
                fprintf(stderr, "sandboxctl: unexpected answer from the daemon: %s%s%s\n", msg_type_to_string(f->type),
                        e ? ": " : "", e ?: "");
                return EXIT_DAEMON;
        }
        if (json) {
                printf("[");
                for (size_t i = 0; i < reply.n_entries; i++) {
                        const MsgVolumeEntry *v = &reply.entries[i];
                        printf("%s{\"name\": ", i ? ", " : "");
                        print_json_string(v->name);
                        printf(", \"uid\": %" PRIu32 ", \"size\": %" PRIu64 ", \"used\": %" PRIu64
                               ", \"created_usec\": %" PRIu64 ", \"in_use_by\": ", v->uid, v->size, v->used,
                               v->created_usec);
                        if (v->in_use_by[0])
                                print_json_string(v->in_use_by);
                        else
                                printf("null");
                        printf("}");
                }
                printf("]\n");
                return 0;
        }
        printf("%-24s %-8s %-8s %-8s %-8s %s\n", "NAME", "UID", "SIZE", "USED", "CREATED", "IN-USE-BY");
        for (size_t i = 0; i < reply.n_entries; i++) {
                const MsgVolumeEntry *v = &reply.entries[i];
                char size[FORMAT_SIZE_MAX], used[FORMAT_SIZE_MAX], age[32];
                printf("%-24s %-8" PRIu32 " %-8s %-8s %-8s %s\n", v->name, v->uid, format_size(v->size, size, sizeof size),
                       format_size(v->used, used, sizeof used), age_string(v->created_usec, age, sizeof age),
                       v->in_use_by[0] ? v->in_use_by : "-");
        }
        return 0;
}

static int cmd_volume(int argc, char *argv[]) {
        const char *verb = argc > 1 ? argv[1] : NULL;
        const char *names[64];
        size_t n_names = 0;
        uint64_t size = 0;
        uint32_t uid = 0;
        bool json = false, has_uid = false, dashdash = false;
        int status = 0;

        if (!verb || streq(verb, "-h") || streq(verb, "--help")) {
                if (!verb) {
                        fprintf(stderr, "sandboxctl volume: expected create, ls or rm (see --help)\n");
                        return EXIT_USAGE;
                }
                return volume_usage();
        }
        if (!streq(verb, "create") && !streq(verb, "ls") && !streq(verb, "rm")) {
                fprintf(stderr, "sandboxctl volume: unknown command '%s' (create, ls, rm)\n", verb);
                return EXIT_USAGE;
        }
        for (int i = 2; i < argc; i++) {
                const char *a = argv[i];
                if (!dashdash && (streq(a, "-h") || streq(a, "--help")))
                        return volume_usage();
                else if (!dashdash && streq(a, "--"))
                        dashdash = true;
                else if (!dashdash && streq(verb, "ls") && streq(a, "--json"))
                        json = true;
                else if (!dashdash && streq(verb, "create") && (streq(a, "--size") || startswith(a, "--size="))) {
                        const char *v = streq(a, "--size") ? (i + 1 < argc ? argv[++i] : NULL) : a + 7;
                        if (!v || parse_size(v, &size) < 0 || size == 0) {
                                fprintf(stderr, "sandboxctl volume create: --size '%s': expected a size like 512m or "
                                        "4g (from 16M to 16T)\n", v ?: "");
                                return EXIT_USAGE;
                        }
                } else if (!dashdash && streq(verb, "rm") && (streq(a, "--uid") || startswith(a, "--uid="))) {
                        const char *v = streq(a, "--uid") ? (i + 1 < argc ? argv[++i] : NULL) : a + 6;
                        if (!v || safe_atou32(v, &uid) < 0) {
                                fprintf(stderr, "sandboxctl volume rm: --uid '%s': expected a number\n", v ?: "");
                                return EXIT_USAGE;
                        }
                        has_uid = true;
                } else if (!dashdash && a[0] == '-') {
                        fprintf(stderr, "sandboxctl volume %s: unknown option '%s' (see --help)\n", verb, a);
                        return EXIT_USAGE;
                } else if (n_names >= ELEMENTSOF(names)) {
                        fprintf(stderr, "sandboxctl volume %s: too many names\n", verb);
                        return EXIT_USAGE;
                } else if (!msg_volume_name_is_valid(a)) {
                        fprintf(stderr, "sandboxctl volume %s: '%s' is not a volume name (1-%d letters, digits, '_', "
                                "'.' or '-', starting with a letter or digit)\n", verb, a, MSG_VOLUME_NAME_MAX);
                        return EXIT_USAGE;
                } else
                        names[n_names++] = a;
        }
        if (streq(verb, "ls")) {
                if (n_names > 0) {
                        fprintf(stderr, "sandboxctl volume ls: takes no names\n");
                        return EXIT_USAGE;
                }
                return volume_ls(json);
        }
        if (streq(verb, "create") && n_names != 1) {
                fprintf(stderr, "sandboxctl volume create: expected one name\n");
                return EXIT_USAGE;
        }
        if (n_names == 0) {
                fprintf(stderr, "sandboxctl volume rm: expected one or more names\n");
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < n_names; i++) {
                MsgVolume m = { .size = size, .uid = uid, .has_uid = has_uid };
                snprintf(m.name, sizeof m.name, "%s", names[i]);
                int r = volume_request(streq(verb, "create") ? MSG_VOLUME_CREATE : MSG_VOLUME_RM, &m);
                if (r != 0)
                        status = r;
        }
        return status;
}

static void help(void) {
        printf("Usage: sandboxctl [--socket PATH] COMMAND ...\n\n"
               "Talk to sandboxd.\n\n"
               "Commands:\n"
               "  exec [OPTIONS] [--] CMD [ARGS...]  run CMD in a new sandbox (options: sandboxctl exec --help)\n"
               "  exec --in ID|NAME [-t] [-e ENV] [-w DIR] [-u USER] [--timeout S] [--] CMD [ARGS...]\n"
               "                                     run CMD in a sandbox made by create\n"
               "  create [OPTIONS] [--name NAME] [--ttl S] [--idle-ttl S] [--json]\n"
               "                                     make a sandbox that lives; prints its id\n"
               "  stop [-t S] ID|NAME...             stop created sandboxes (SIGTERM, SIGKILL after S, 10)\n"
               "  rm [-f] ID|NAME...                 remove stopped (-f: also running) created sandboxes\n"
               "  pause ID|NAME...                   freeze a created sandbox's programs\n"
               "  resume ID|NAME...                  thaw them\n"
               "  cp SRC ID|NAME:PATH, cp ID|NAME:PATH DST\n"
               "                                     copy files into or out of a created sandbox (docker cp)\n"
               "  snapshot ID|NAME IMAGE[:TAG] [--json]\n"
               "                                     store a created sandbox's changes as an image to create from\n"
               "  volume create [--size SIZE] NAME   make a volume (storage that outlives sandboxes: --volume)\n"
               "  volume ls [--json]                 list your volumes: size, use, created, in use by\n"
               "  volume rm NAME...                  remove volumes no sandbox mounts\n"
               "  ps [--json]                        list sandboxes: state, age, image, memory/CPU/disk use\n"
               "  kill ID [SIGNAL]                   signal a one-shot sandbox's program (default TERM)\n"
               "  version [--json]                   show the client's and the daemon's versions\n\n"
               "Options:\n"
               "      --socket PATH   the daemon's socket (default %s)\n"
               "  -h, --help          show this help\n\n"
               "Exit status of exec: the program's, or 124 (time limit), 125 (a usage error, set-up, or the\n"
               "daemon cannot be reached), 126 (cannot execute), 127 (not found), 128+N (signal N), 137 (memory\n"
               "limit). Other commands: 0, or 125 for a usage error or when the daemon refused or cannot be\n"
               "reached.\n"
               "See sandboxctl(1).\n", DEFAULT_SOCKET);
}

int main(int argc, char *argv[]) {
        int i = 1;

        for (; i < argc && argv[i][0] == '-'; i++) {
                if (streq(argv[i], "--socket") && i + 1 < argc)
                        socket_path = argv[++i];
                else if (strncmp(argv[i], "--socket=", 9) == 0)
                        socket_path = argv[i] + 9;
                else if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
                        help();
                        return 0;
                } else if (streq(argv[i], "--version"))
                        return cmd_version(1, argv);
                else {
                        fprintf(stderr, "sandboxctl: unknown option '%s' (see --help)\n", argv[i]);
                        return EXIT_USAGE;
                }
        }
        if (i >= argc) {
                fprintf(stderr, "sandboxctl: no command given (exec, create, stop, rm, pause, resume, ps, kill, "
                        "version; see --help)\n");
                return EXIT_USAGE;
        }
        if (streq(argv[i], "exec"))
                return cmd_exec(argc - i, argv + i);
        if (streq(argv[i], "ps"))
                return cmd_ps(argc - i, argv + i);
        if (streq(argv[i], "kill"))
                return cmd_kill(argc - i, argv + i);
        if (streq(argv[i], "version"))
                return cmd_version(argc - i, argv + i);
        if (streq(argv[i], "create"))
                return cmd_create(argc - i, argv + i);
        if (streq(argv[i], "stop"))
                return cmd_target(MSG_STOP, argc - i, argv + i);
        if (streq(argv[i], "rm"))
                return cmd_target(MSG_RM, argc - i, argv + i);
        if (streq(argv[i], "pause"))
                return cmd_target(MSG_PAUSE, argc - i, argv + i);
        if (streq(argv[i], "resume"))
                return cmd_target(MSG_RESUME, argc - i, argv + i);
        if (streq(argv[i], "cp"))
                return cmd_cp(argc - i, argv + i);
        if (streq(argv[i], "snapshot"))
                return cmd_snapshot(argc - i, argv + i);
        if (streq(argv[i], "volume"))
                return cmd_volume(argc - i, argv + i);
        fprintf(stderr, "sandboxctl: unknown command '%s' (exec, create, stop, rm, pause, resume, cp, snapshot, "
                "volume, ps, kill, version)\n", argv[i]);
        return EXIT_USAGE;
}
