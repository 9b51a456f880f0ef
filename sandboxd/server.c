/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's event loop: clients on the socket, their sandboxes, the idle timer and SIGTERM.
 * One client connection starts at most one sandbox (EXEC) and gets its EXIT; the same connection
 * carries SIGNAL and RESIZE for it. LIST and KILL work on any connection. Who may do what is decided
 * here from the peer's credentials (SO_PEERCRED), never from anything the client says.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "config.h"
#include "fdpass.h"
#include "log.h"
#include "macro.h"
#include "msg.h"
#include "sandbox.h"
#include "server.h"

#define CLIENTS_MAX 1024

typedef struct Server Server;
typedef struct Client Client;
typedef struct Session Session;

struct Session {
        Server *server;
        Client *client;         /* NULL once its client has gone (then it is killed) */
        Sandbox *sandbox;
        SandboxSpec spec;       /* the sandbox points into it */
        sd_event_source *exit_source, *limit_timer;
        uid_t uid;
        uint64_t started_realtime_usec;
        Session *next;
};

struct Client {
        Server *server;
        int fd;
        sd_event_source *io;
        WireDecoder *decoder;
        struct ucred cred;
        bool hello_done;
        uint32_t version;       /* negotiated in HELLO */
        bool closing;           /* an error was sent: no more requests */
        Session *session;
        Client *next;
};

struct Server {
        sd_event *event;
        const DaemonConfig *config;
        const char *state_dir;
        SandboxConfig runtime;
        uint64_t idle_usec;
        sd_event_source *idle_timer;
        Client *clients;
        unsigned n_clients;
        Session *sessions;
        unsigned n_sessions;
        bool journal;
};

static void server_update(Server *s);

/* Structured fields for the journal when there is one; a plain line otherwise. */
static void log_sandbox(Server *srv, int level, const Session *se, const char *what) {
        const char *cmd = se->spec.argv ? se->spec.argv[0] : "";
        const char *id = se->sandbox ? sandbox_id(se->sandbox) : "-";

        if (srv->journal)
                (void) sd_journal_send("MESSAGE=Sandbox %s (uid %u, %s): %s", id, (unsigned) se->uid, cmd, what,
                                       "PRIORITY=%i", level, "SANDBOX_ID=%s", id, "SANDBOX_UID=%u",
                                       (unsigned) se->uid, "SANDBOX_COMMAND=%s", cmd, NULL);
        else
                log_full(level, "Sandbox %s (uid %u, %s): %s", id, (unsigned) se->uid, cmd, what);
}

static int send_message(Client *c, MsgType type, WireBuffer *b, const int *fds, size_t n_fds) {
        return wire_send_frame(c->fd, (uint16_t) type, b ? b->data : NULL, b ? b->size : 0, fds, n_fds);
}

/* Refuse a request: ERROR, then no more requests on this connection. */
static void client_fail(Client *c, int status, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void client_fail(Client *c, int status, int error, const char *fmt, ...) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgError m = { .status = status, .error = error < 0 ? -error : error };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(m.message, sizeof m.message, fmt, ap);
        va_end(ap);
        if (msg_error_encode(&m, &b) >= 0)
                (void) send_message(c, MSG_ERROR, &b, NULL, 0);
        c->closing = true;
        if (c->io)
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
}

static Session *session_free(Session *se) {
        Server *srv;

        if (!se)
                return NULL;
        srv = se->server;
        for (Session **p = &srv->sessions; *p; p = &(*p)->next)
                if (*p == se) {
                        *p = se->next;
                        srv->n_sessions--;
                        break;
                }
        if (se->client)
                se->client->session = NULL;
        sd_event_source_disable_unref(se->exit_source);
        sd_event_source_disable_unref(se->limit_timer);
        sandbox_free(se->sandbox);
        spec_done(&se->spec);
        free(se);
        return NULL;
}

/* The sandbox ended (or must end): collect it, tell its client, forget it. */
static void session_finish(Session *se, bool kill) {
        SandboxResult res = {};
        Client *c = se->client;
        int r;

        (void) sandbox_collect(se->sandbox, kill, &res);
        {
                char what[128];
                snprintf(what, sizeof what, "ended with status %d", res.status);
                log_sandbox(se->server, LOG_INFO, se, what);
        }
        if (c && !c->closing) {
                _cleanup_(wire_buffer_done) WireBuffer b = {};
                MsgExit m = {
                        .status = res.status,
                        .exit_code = res.signal ? -1 : res.exit_code,
                        .signal = res.signal,
                        .limit = res.limit == SANDBOX_LIMIT_TIMEOUT ? MSG_LIMIT_TIMEOUT :
                                 res.limit == SANDBOX_LIMIT_CPU_TIME ? MSG_LIMIT_CPU_TIME :
                                 res.limit == SANDBOX_LIMIT_MEMORY ? MSG_LIMIT_MEMORY : MSG_LIMIT_NONE,
                        .wall_usec = res.wall_usec,
                        .cpu_usec = res.cpu_usec,
                        .memory_peak = res.memory_peak,
                };
                if (c->version >= 2) {
                        m.pids_limit_hit = res.pids_limit_hit;
                        m.disk_limit_hit = res.disk_limit_hit;
                        m.max_rss = res.max_rss;
                }
                if (msg_exit_encode(&m, &b) >= 0)
                        (void) send_message(c, MSG_EXIT, &b, NULL, 0);
        }
        /* The client has its answer; now the slower part. */
        r = sandbox_cleanup(se->sandbox);
        if (r < 0)
                log_warning_errno(r, "Failed to clean up sandbox %s completely, ignoring: %m", sandbox_id(se->sandbox));
        Server *srv = se->server;
        session_free(se);
        server_update(srv);
}

static int on_sandbox_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        session_finish(userdata, false);
        return 0;
}

static int arm_limit_timer(Session *se);

static int on_limit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return arm_limit_timer(userdata);
}

static int arm_limit_timer(Session *se) {
        uint64_t next = sandbox_check_limits(se->sandbox);

        if (next == 0)
                return sd_event_source_set_enabled(se->limit_timer, SD_EVENT_OFF);
        if (!se->limit_timer)
                return sd_event_add_time(se->server->event, &se->limit_timer, CLOCK_MONOTONIC, next, 1000,
                                         on_limit_timer, se);
        (void) sd_event_source_set_time(se->limit_timer, next);
        return sd_event_source_set_enabled(se->limit_timer, SD_EVENT_ONESHOT);
}

static Client *client_free(Client *c) {
        Server *srv;

        if (!c)
                return NULL;
        srv = c->server;
        for (Client **p = &srv->clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        srv->n_clients--;
                        break;
                }
        /* A sandbox whose client went away has nobody to report to: end it. */
        if (c->session) {
                c->session->client = NULL;
                session_finish(c->session, true);
        }
        sd_event_source_disable_unref(c->io);
        wire_decoder_free(c->decoder);
        safe_close(c->fd);
        free(c);
        server_update(srv);
        return NULL;
}

static bool peer_in_group(int fd, const struct ucred *cred, gid_t gid) {
        _cleanup_free_ gid_t *groups = NULL;
        size_t n = 0;

        if (cred->gid == gid)
                return true;
        if (wire_get_peer_groups(fd, &groups, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

static bool client_authorized(Client *c) {
        const DaemonConfig *cfg = c->server->config;
        struct group *g;

        if (c->cred.uid == 0)
                return true;
        g = getgrnam("sandbox");
        if (g && peer_in_group(c->fd, &c->cred, g->gr_gid))
                return true;
        for (size_t i = 0; i < cfg->n_allow_users; i++)
                if (cfg->allow_users[i] == c->cred.uid)
                        return true;
        for (size_t i = 0; i < cfg->n_allow_groups; i++)
                if (peer_in_group(c->fd, &c->cred, cfg->allow_groups[i]))
                        return true;
        return false;
}

/* The configuration's caps, for everyone but root. Returns a message, or NULL if the spec is fine. */
static const char *check_policy(Client *c, SandboxSpec *spec) {
        const DaemonConfig *cfg = c->server->config;
        unsigned mine = 0;

        if (c->server->n_sessions >= cfg->max_sandboxes)
                return "the daemon runs as many sandboxes as it may (max-sandboxes)";
        if (c->cred.uid == 0)
                return NULL;
        for (Session *se = c->server->sessions; se; se = se->next)
                if (se->uid == c->cred.uid)
                        mine++;
        if (mine >= cfg->max_per_client)
                return "you run as many sandboxes as you may (max-sandboxes-per-client)";
        if (!cfg->allow_host_paths && (spec->image || spec->n_layers > 0 || spec->upper || spec->n_binds > 0))
                return "only root may use host paths (--image DIR, --layer, --upper, --bind) unless "
                       "allow-host-paths is set";
        if (spec->seccomp && !streq(spec->seccomp, "default"))
                return "only root may choose another seccomp policy";
        if (spec->net == SPEC_NET_HOST && !cfg->allow_net_host)
                return "only root may use --net host (unless allow-net-host is set)";
        /* A missing limit takes the cap; a larger one is refused. */
        if (cfg->max_memory) {
                if (spec->memory_max > cfg->max_memory)
                        return "--memory is above this daemon's max-memory";
                if (!spec->memory_max)
                        spec->memory_max = cfg->max_memory;
        }
        if (cfg->max_pids) {
                if (spec->pids_max > cfg->max_pids)
                        return "--pids is above this daemon's max-pids";
                if (!spec->pids_max)
                        spec->pids_max = cfg->max_pids;
        }
        if (cfg->max_timeout_usec) {
                if (spec->timeout_usec > cfg->max_timeout_usec)
                        return "--timeout is above this daemon's max-timeout";
                if (!spec->timeout_usec)
                        spec->timeout_usec = cfg->max_timeout_usec;
        }
        return NULL;
}

static void handle_hello(Client *c, WireFrame *f) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgHello m;
        MsgHelloReply reply = {};
        const char *err = NULL;
        int r;

        r = msg_hello_decode(f, &m, &err);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed HELLO: %s", err ?: "invalid");
        r = msg_hello_negotiate(&m, &reply.version);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r,
                                   "no common protocol version: the client speaks %u..%u, the daemon %u..%u",
                                   m.min_version, m.max_version, MSG_PROTOCOL_VERSION_MIN, MSG_PROTOCOL_VERSION);
        snprintf(reply.daemon_version, sizeof reply.daemon_version, "%s", PROJECT_VERSION);
        if (msg_hello_reply_encode(&reply, &b) < 0 || send_message(c, MSG_HELLO_REPLY, &b, NULL, 0) < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EIO, "cannot reply");
        c->hello_done = true;
        c->version = reply.version;
}

static void handle_exec(Client *c, WireFrame *f) {
        _cleanup_(msg_exec_done) MsgExec m = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        SandboxError err = {};
        const char *e = NULL;
        Session *se;
        int r, pty;

        if (c->session)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "this connection already runs a sandbox");
        r = msg_exec_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed EXEC: %s", e ?: "invalid");
        e = check_policy(c, &m.spec);
        if (e)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM, "permission denied: %s", e);

        se = calloc(1, sizeof *se);
        if (!se)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
        se->server = c->server;
        se->uid = c->cred.uid;
        se->spec = m.spec;
        m.spec = (SandboxSpec) {};
        se->started_realtime_usec = (uint64_t) time(NULL) * 1000000;

        r = sandbox_start(&se->spec, &c->server->runtime, se->spec.tty ? NULL : m.stdio, &se->sandbox, &err);
        if (r < 0) {
                log_sandbox(c->server, LOG_NOTICE, se, err.message);
                session_free(se);
                return client_fail(c, err.status, r, "%s", err.message);
        }
        se->client = c;
        c->session = se;
        se->next = c->server->sessions;
        c->server->sessions = se;
        c->server->n_sessions++;
        log_sandbox(c->server, LOG_INFO, se, "started");

        r = sd_event_add_io(c->server->event, &se->exit_source, sandbox_pidfd(se->sandbox), EPOLLIN, on_sandbox_exit, se);
        if (r >= 0)
                r = arm_limit_timer(se);
        if (r < 0) {
                session_finish(se, true);
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot watch the sandbox");
        }

        MsgStarted started = { .pid = (uint32_t) sandbox_pid(se->sandbox), .pty_fd = -EBADF };
        snprintf(started.id, sizeof started.id, "%s", sandbox_id(se->sandbox));
        pty = sandbox_pty_fd(se->sandbox);
        if (msg_started_encode(&started, &b) < 0 || send_message(c, MSG_STARTED, &b, &pty, pty >= 0 ? 1 : 0) < 0)
                session_finish(se, true); /* nobody to report to */
        server_update(c->server);
}

static void handle_signal(Client *c, WireFrame *f) {
        MsgSignal m;
        const char *e = NULL;
        int r = msg_signal_decode(f, &m, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed SIGNAL: %s", e ?: "invalid");
        if (c->session)
                (void) sandbox_signal(c->session->sandbox, (int) m.signal);
}

static void handle_resize(Client *c, WireFrame *f) {
        MsgResize m;
        const char *e = NULL;
        int r = msg_resize_decode(f, &m, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed RESIZE: %s", e ?: "invalid");
        if (c->session && sandbox_pty_fd(c->session->sandbox) >= 0) {
                struct winsize ws = { .ws_row = (unsigned short) m.rows, .ws_col = (unsigned short) m.cols };
                (void) ioctl(sandbox_pty_fd(c->session->sandbox), TIOCSWINSZ, &ws);
        }
}

static void handle_list(Client *c, WireFrame *f) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_free_ MsgListEntry *entries = NULL;
        const char *e = NULL;
        size_t n = 0;
        int r = msg_list_decode(f, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed LIST: %s", e ?: "invalid");
        entries = calloc(c->server->n_sessions + 1, sizeof *entries);
        if (!entries)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
        /* Root sees every sandbox; others see their own. */
        for (Session *se = c->server->sessions; se && n < MSG_LIST_ENTRIES_MAX; se = se->next) {
                if (c->cred.uid != 0 && se->uid != c->cred.uid)
                        continue;
                MsgListEntry *en = &entries[n++];
                snprintf(en->id, sizeof en->id, "%s", sandbox_id(se->sandbox));
                en->uid = se->uid;
                en->pid = (uint32_t) sandbox_pid(se->sandbox);
                en->command = se->spec.argv[0];
                en->started_usec = se->started_realtime_usec;
        }
        MsgListReply reply = { .entries = entries, .n_entries = n };
        if (msg_list_reply_encode(&reply, &b) < 0 || send_message(c, MSG_LIST_REPLY, &b, NULL, 0) < 0)
                client_fail(c, SANDBOX_EXIT_SETUP, -EIO, "cannot reply");
}

static void handle_kill(Client *c, WireFrame *f) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgKill m;
        const char *e = NULL;
        int r = msg_kill_decode(f, &m, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed KILL: %s", e ?: "invalid");
        for (Session *se = c->server->sessions; se; se = se->next) {
                if (!streq(sandbox_id(se->sandbox), m.id))
                        continue;
                if (c->cred.uid != 0 && se->uid != c->cred.uid)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM,
                                           "permission denied: sandbox %s is not yours", m.id);
                r = sandbox_signal(se->sandbox, (int) m.signal);
                if (r < 0)
                        return client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot signal sandbox %s: %s", m.id, strerror(-r));
                if (msg_empty_encode(&b) >= 0)
                        (void) send_message(c, MSG_OK, &b, NULL, 0);
                return;
        }
        client_fail(c, SANDBOX_EXIT_SETUP, -ESRCH, "no sandbox with id %s", m.id);
}

static void client_dispatch(Client *c, WireFrame *f) {
        if (!c->hello_done && f->type != MSG_HELLO)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: HELLO must come first");
        switch (f->type) {
        case MSG_HELLO:
                if (c->hello_done)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: a second HELLO");
                return handle_hello(c, f);
        case MSG_EXEC:
                return handle_exec(c, f);
        case MSG_SIGNAL:
                return handle_signal(c, f);
        case MSG_RESIZE:
                return handle_resize(c, f);
        case MSG_LIST:
                return handle_list(c, f);
        case MSG_KILL:
                return handle_kill(c, f);
        default:
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: unexpected message type %u",
                                   f->type);
        }
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        bool eof;
        int r;

        r = wire_decoder_read_from_fd(c->decoder, c->fd);
        if (r == -EAGAIN || r == -EINTR)
                return 0;
        eof = r == 0;
        if (r < 0 && r != -EBUSY) {
                /* Garbage, a frame cut short, too many descriptors: say so (if it still listens), then
                 * drop the connection. */
                log_debug_errno(r, "Client (uid %u) sent something invalid: %m", (unsigned) c->cred.uid);
                if (r != -ECONNRESET)
                        client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed frame: %s", strerror(-r));
                client_free(c);
                return 0;
        }
        for (;;) {
                _cleanup_(wire_frame_freep) WireFrame *f = NULL;
                r = wire_decoder_pop(c->decoder, &f);
                if (r < 0 || !f)
                        break;
                if (!c->closing)
                        client_dispatch(c, f);
        }
        if (r < 0 && !c->closing)
                client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed frame: %s", strerror(-r));
        /* At EOF the client is gone: a sandbox it started is ended. After an ERROR we sent, the
         * connection ends too. */
        if (eof || c->closing || (revents & (EPOLLHUP | EPOLLERR)))
                client_free(c);
        return 0;
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Server *srv = userdata;

        for (;;) {
                _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                socklen_t len;
                Client *c;
                int r;

                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(-errno, "accept() failed, ignoring: %m");
                        return 0;
                }
                if (srv->n_clients >= CLIENTS_MAX)
                        continue; /* closed: the client sees the connection end */
                c = calloc(1, sizeof *c);
                if (!c)
                        continue;
                c->server = srv;
                c->fd = TAKE_FD(cfd);
                c->decoder = wire_decoder_new();
                len = sizeof c->cred;
                if (!c->decoder || getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                        wire_decoder_free(c->decoder);
                        safe_close(c->fd);
                        free(c);
                        continue;
                }
                c->next = srv->clients;
                srv->clients = c;
                srv->n_clients++;
                r = sd_event_add_io(srv->event, &c->io, c->fd, EPOLLIN, on_client_io, c);
                if (r < 0) {
                        client_free(c);
                        continue;
                }
                if (!client_authorized(c)) {
                        log_notice("Refused a client: uid %u is not allowed to run sandboxes.", (unsigned) c->cred.uid);
                        client_fail(c, SANDBOX_EXIT_SETUP, -EACCES,
                                    "permission denied: uid %u may not run sandboxes (root, group 'sandbox' and "
                                    "users allowed in the daemon's configuration may)", (unsigned) c->cred.uid);
                        client_free(c);
                        continue;
                }
                server_update(srv);
        }
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Server *srv = userdata;

        log_info("Idle: exiting.");
        return sd_event_exit(srv->event, 0);
}

/* The status line, and the idle timer: armed when nothing is going on. */
static void server_update(Server *srv) {
        (void) sd_notifyf(false, "STATUS=%u sandbox(es) running, %u client(s)", srv->n_sessions, srv->n_clients);
        if (srv->idle_usec == 0 || !srv->idle_timer)
                return;
        if (srv->n_clients == 0 && srv->n_sessions == 0) {
                uint64_t now;
                (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_source_set_time(srv->idle_timer, now + srv->idle_usec);
                (void) sd_event_source_set_enabled(srv->idle_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(srv->idle_timer, SD_EVENT_OFF);
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Server *srv = userdata;

        log_info("Received %s: ending %u sandbox(es).", strsignal((int) si->ssi_signo), srv->n_sessions);
        return sd_event_exit(srv->event, 0);
}

int server_run(int listen_fd, const char *state_dir, const DaemonConfig *config, uint64_t idle_usec) {
        Server srv = {
                .config = config,
                .state_dir = state_dir,
                .idle_usec = idle_usec,
                .journal = getenv("JOURNAL_STREAM") != NULL,
                .runtime = {
                        .state_dir = state_dir,
                        .host_id_base = config->id_base,
                        .host_id_ranges = config->id_ranges,
                        .unionfs_binary = config->unionfs[0] ? config->unionfs : NULL,
                        .net = &config->net,
                },
        };
        sd_event_source *listen_source = NULL;
        sigset_t mask;
        int r;

        r = sd_event_default(&srv.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* A client that vanishes while we write must not kill us. */
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(srv.event, NULL, SIGTERM, on_terminate, &srv)) < 0 ||
            (r = sd_event_add_signal(srv.event, NULL, SIGINT, on_terminate, &srv)) < 0 ||
            (r = sd_event_add_io(srv.event, &listen_source, listen_fd, EPOLLIN, on_listen, &srv)) < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto finish;
        }
        if (idle_usec > 0) {
                r = sd_event_add_time_relative(srv.event, &srv.idle_timer, CLOCK_MONOTONIC, idle_usec, 100000,
                                               on_idle, &srv);
                if (r < 0) {
                        log_error_errno(r, "Failed to set up the idle timer: %m");
                        goto finish;
                }
        }
        (void) sd_notify(false, "READY=1");
        server_update(&srv);
        log_info("Ready (state in %s).", state_dir);

        r = sd_event_loop(srv.event);
        if (r < 0)
                log_error_errno(r, "The event loop failed: %m");

finish:
        (void) sd_notify(false, "STOPPING=1");
        /* End every sandbox cleanly: tell its client why, kill, collect, remove what it used. */
        while (srv.sessions) {
                if (srv.sessions->client && !srv.sessions->client->closing)
                        client_fail(srv.sessions->client, SANDBOX_EXIT_SETUP, -ESHUTDOWN,
                                    "sandboxd is stopping: the sandbox was ended");
                session_finish(srv.sessions, true);
        }
        while (srv.clients)
                client_free(srv.clients);
        /* Our bridges and NAT table go with us, unless another runtime's sandbox still uses them. */
        (void) net_teardown_if_unused(&config->net);
        sd_event_source_disable_unref(listen_source);
        sd_event_source_disable_unref(srv.idle_timer);
        srv.idle_timer = NULL;
        sd_event_unref(srv.event);
        return r < 0 ? r : 0;
}
