/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's event loop: clients on the socket, their sandboxes, the idle timer and SIGTERM.
 * One client connection starts at most one sandbox (EXEC), or one program in a created sandbox (EXEC with
 * in), and gets its EXIT; the same connection carries SIGNAL and RESIZE for it. LIST, KILL, CREATE, STOP,
 * RM, PAUSE and RESUME work on any other connection, one at a time. A created sandbox (a Box) belongs to
 * no connection: it lives until RM, its ttl or its idle ttl, and holds the daemon up meanwhile. Who may do what is decided
 * here from the peer's credentials (SO_PEERCRED), never from anything the client says.
 *
 * The loop never waits for a client or a sandbox: setting a sandbox up (sandbox_start(), milliseconds
 * to a minute) and cleaning one up run on worker threads (workers.h), and output a client does not
 * read is kept in the connection's queue (reading from it pauses meanwhile). A session is QUEUED until
 * a start slot is free (max-starts in all, max-starts-per-uid), STARTING while a worker sets it up,
 * RUNNING while the loop watches it; when it ends, its EXIT is sent and a worker removes what it used.
 * The daemon's own resources are bounded per uid other than root: connections, and bytes held for its
 * connections (what they sent that is not decoded yet, and what they were sent and did not read).
 * Everything here runs on the loop's thread; a worker touches only its own item.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "config.h"
#include "fdpass.h"
#include "image.h"
#include "log.h"
#include "macro.h"
#include "msg.h"
#include "parse.h"
#include "policy.h"
#include "pool.h"
#include "ref.h"
#include "rmtree.h"
#include "sandbox-copy.h"
#include "sandbox-snapshot.h"
#include "sandbox.h"
#include "server.h"
#include "time-util.h"
#include "volume.h"
#include "workers.h"

/* Clean-ups run on threads of their own, so that a slow one never holds up a start. */
#define CLEANUP_THREADS 4
/* How long accepting pauses when we have no descriptor left for a connection. */
#define ACCEPT_PAUSE_USEC (100 * UINT64_C(1000))

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

/* Refusals can come as fast as a client connects: at most one log line a second for each kind,
 * which counts the ones not logged. */
typedef struct RateLimit {
        uint64_t last_usec;
        unsigned suppressed;
} RateLimit;

#define LOG_RATELIMIT_USEC (1000 * UINT64_C(1000))

typedef struct Server Server;
typedef struct Client Client;
typedef struct Session Session;
typedef struct Box Box;
typedef struct SnapshotWork SnapshotWork;
typedef struct VolumeWork VolumeWork;

/* The volumes a sandbox mounts (--volume), by name, of its uid: none of them may be mounted by another
 * sandbox, nor removed, meanwhile. A created sandbox's are in its record (Owner), so that they stay
 * claimed across a restart of the daemon. */
typedef struct VolumeClaims {
        char names[MSG_VOLUMES_MAX][MSG_VOLUME_NAME_MAX + 1];
        unsigned n;
} VolumeClaims;

/* Snapshots live in the store under this domain, one path per uid: "snapshots.sandbox.local/uid-1000/NAME:TAG"
 * (docs/protocol.md, SNAPSHOT). A client names its own as NAME:TAG. */
#define SNAPSHOT_DOMAIN "snapshots.sandbox.local"

typedef enum SessionKind {
        SESSION_EXEC,           /* a one-shot sandbox */
        SESSION_CREATE,         /* a sandbox that lives (a Box once started) */
        SESSION_EXEC_IN,        /* a program in a Box */
} SessionKind;

/* STOP's default grace between SIGTERM and SIGKILL. */
#define STOP_GRACE_USEC (10 * UINT64_C(1000000))
/* How often a stop looks whether the programs ended before the grace is over. */
#define STOP_POLL_USEC (50 * UINT64_C(1000))

/* A sandbox made by CREATE. It owns the spec the sandbox points into (spec.spec), and the sandbox until
 * it is stopped (then only its entry is left, until RM or its ttl). */
struct Box {
        Server *server;
        uid_t uid;
        char id[17];
        char name[MSG_NAME_MAX + 1];
        MsgExec spec;           /* the spec (no descriptors) */
        Sandbox *sandbox;       /* NULL once stopped */
        MsgState state;
        char *image;            /* what it runs, for LIST */
        uint64_t created_realtime_usec;
        uint64_t expires_usec;  /* CLOCK_MONOTONIC end of its ttl, 0: none */
        uint64_t expires_realtime_usec;
        uint64_t idle_ttl_usec; /* 0: none */
        uint64_t idle_since_usec; /* CLOCK_MONOTONIC: when its last program ended */
        unsigned n_execs;       /* EXEC-with-in sessions queued, starting or running in it */
        VolumeClaims volumes;   /* held while its sandbox is there (b->sandbox or b->cleaning) */
        bool cleaning;          /* its sandbox is on a clean-up worker */
        bool remove;            /* RM (or its ttl): its entry goes once it is stopped */
        bool release;           /* the daemon stops: the box goes, its sandbox lives on (detached) */
        uint64_t stop_deadline; /* STOPPING: when its programs are killed (0: they were) */
        sd_event_source *exit_source, *timer;
        Box *next;
};

typedef enum SessionState {
        SESSION_QUEUED,         /* waiting for a start slot */
        SESSION_STARTING,       /* sandbox_start() runs on a worker */
        SESSION_RUNNING,        /* the loop watches its pidfd and limit timer */
} SessionState;

struct Session {
        Server *server;
        Client *client;         /* NULL once its client has gone (then it is ended) */
        SessionKind kind;
        SessionState state;
        uid_t uid;
        gid_t gid;              /* the client's (SO_PEERCRED), with its groups: for the checks of the */
        gid_t *groups;          /* bind sources it sent as descriptors (check_bind_sources()) */
        size_t n_groups;
        int *bind_fds;          /* exec.spec.n_binds entries (exec.spec.bind_fds points here until the
                                 * start is done): the sources the client opened, -EBADF for paths */
        MsgExec exec;           /* the spec (the sandbox points into it); the stdio until started */
        int cancel_fd;          /* eventfd: a start in flight gives up waiting */
        Sandbox *sandbox;       /* RUNNING */
        Sandbox *pooled;        /* STARTING: a sandbox of the pool to give the program to (pool.h) */
        bool from_pool;
        sd_event_source *exit_source, *limit_timer;
        uint64_t started_realtime_usec;

        VolumeClaims volumes;   /* EXEC and CREATE: held from the request to the session's end */

        /* CREATE: */
        char name[MSG_NAME_MAX + 1];
        uint64_t ttl_usec, idle_ttl_usec;
        uint64_t expires_realtime_usec; /* set by the start (the sandbox's record has it) */
        /* EXEC with in: the Box (which lives at least as long as this session: n_execs), the program. */
        Box *box;
        SandboxExec *program;

        /* The start, on a worker: it reads exec and writes these. */
        bool own_snapshot;      /* the image is one of the client's snapshots (allow-images does not apply) */
        char *image_asked;      /* the image as the client named it (the spec then names it by its ID) */
        Work work;
        int start_r;
        Sandbox *started;
        SandboxExec *started_program;
        SandboxError start_error;

        Session *next;          /* every session, oldest first: the start queue's order */
};

/* A sandbox that ended (or must end): killed if need be and removed on a worker. It owns the sandbox
 * and the spec the sandbox points into. */
typedef struct Cleanup {
        Work work;
        Server *server;
        Sandbox *sandbox;
        Box *box;               /* a Box's sandbox: the box keeps the spec, and learns when it is done */
        MsgExec exec;
        bool kill;              /* the client left or the daemon stops: kill and collect first */
        uid_t uid;
        char id[17];
        int status;             /* of the collect, with KILL */
        int r;                  /* of sandbox_cleanup() */
} Cleanup;

/* A LIST reply being completed on a worker: the disk use of each sandbox (statfs of its union, which its
 * server answers, and which a busy sandbox may slow down) is read there, never on the loop. The entries
 * own their strings (the sandboxes may be gone by then); the loop only waits for the reply. */
typedef struct ListWork {
        Work work;
        Client *client;         /* NULL once the client has gone */
        MsgListEntry *entries;
        int *root_fds;          /* per entry: its union's root (O_PATH), -EBADF: no disk use to read */
        size_t n;
} ListWork;

/* A SNAPSHOT being stored as an image on a worker (handle_snapshot()). */
struct SnapshotWork {
        Work work;
        Server *server;
        Client *client;         /* NULL once it has gone */
        uid_t uid;
        char box_id[MSG_ID_LENGTH + 1];
        char base[MSG_DIGEST_MAX];      /* the sandbox's image ID */
        char reference[MSG_REFERENCE_MAX];
        char name[64];                  /* in DATA/snapshots */
        int dir_fd;                     /* DATA/snapshots */
        unsigned max_count;             /* 0: none */
        uint64_t max_size;              /* 0: the library's default */
        uint64_t pause_usec;
        /* the worker's result */
        int r;
        char error[MSG_ERROR_MESSAGE_MAX];
        char id[MSG_DIGEST_MAX];
        uint64_t layer_bytes;
};

/* A VOLUME_CREATE or VOLUME_RM on a worker (mke2fs, or removing a large image). */
struct VolumeWork {
        Work work;
        Server *server;
        Client *client;         /* NULL once it has gone */
        MsgType type;
        uid_t uid;              /* whose volume */
        char name[MSG_VOLUME_NAME_MAX + 1];
        uint64_t size;
        unsigned max_count;
        int data_fd;
        int r;
        char error[MSG_ERROR_MESSAGE_MAX];
};

/* A frame not sent yet: header and payload, and its descriptors (ours, dups) for its first byte. */
typedef struct OutFrame {
        struct OutFrame *next;
        size_t size, sent;
        int fds[WIRE_FDS_MAX];
        size_t n_fds;
        uint8_t data[];
} OutFrame;

struct Client {
        Server *server;
        int fd;
        sd_event_source *io;
        WireDecoder *decoder;   /* NULL once the connection takes no more requests */
        struct ucred cred;
        bool hello_done;
        uint32_t version;       /* negotiated in HELLO */
        bool closing;           /* no more requests: closed once its output is sent */
        bool broken;            /* the connection failed: closed at the next safe point */
        Session *session;
        Box *waiting;           /* a STOP or RM waits for this box to be stopped: no more requests meanwhile */
        struct ListWork *listing; /* a LIST whose disk use is being read on a worker */
        SandboxCopy *copy;      /* a COPY in progress (one per connection): no more requests meanwhile */
        SnapshotWork *snapshot; /* a SNAPSHOT on a worker: no more requests meanwhile */
        VolumeWork *volume;     /* a VOLUME_CREATE or VOLUME_RM on a worker: no more requests meanwhile */
        sd_event_source *copy_source;
        int bind_fds[SPEC_MOUNTS_MAX]; /* BIND_FDS received for the next EXEC or CREATE */
        size_t n_bind_fds;
        OutFrame *out_head, *out_tail;
        size_t out_bytes;
        Client *next;
};

struct Server {
        sd_event *event;
        const DaemonConfig *config;
        const char *state_dir;
        SandboxConfig runtime;
        PolicyHost host;        /* what a sandbox gets by default here (rlimits, CPUs), for the policy */
        uint64_t idle_usec;
        sd_event_source *idle_timer, *listen_source, *accept_timer;
        Client *clients;
        unsigned n_clients;
        Session *sessions;
        unsigned n_sessions;    /* every state */
        Box *boxes;
        unsigned n_boxes;
        unsigned n_starting;
        unsigned n_cleanups;
        WorkPool *starts, *cleanups;
        Pool *pool;             /* NULL: pool-size 0 */
        bool stopping;          /* SIGTERM: ending everything, then exiting */
        bool journal;
        RateLimit log_refused, log_buffer;
};

/* True if a line may be logged now; *RET_SUPPRESSED: how many were not since the last one. */
static bool ratelimit_ok(Server *srv, RateLimit *rl, unsigned *ret_suppressed) {
        uint64_t now = 0;

        (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
        if (rl->last_usec && now < rl->last_usec + LOG_RATELIMIT_USEC) {
                rl->suppressed++;
                return false;
        }
        rl->last_usec = now;
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}

static void server_update(Server *srv);
static void server_schedule(Server *srv);
static void client_check(Client *c);
static void client_process(Client *c);
static bool client_waits(const Client *c);
static void box_check(Box *b);

/* Structured fields for the journal when there is one; a plain line otherwise. */
static void log_sandbox_id(Server *srv, int level, const char *id, uid_t uid, const char *cmd, const char *what) {
        if (srv->journal)
                (void) sd_journal_send("MESSAGE=Sandbox %s (uid %u, %s): %s", id, (unsigned) uid, cmd, what,
                                       "PRIORITY=%i", level, "SANDBOX_ID=%s", id, "SANDBOX_UID=%u",
                                       (unsigned) uid, "SANDBOX_COMMAND=%s", cmd, NULL);
        else
                log_full(level, "Sandbox %s (uid %u, %s): %s", id, (unsigned) uid, cmd, what);
}

/* What a spec runs, for logs: its command, else (an image's own command) the image. */
static const char *spec_command(const SandboxSpec *spec) {
        return spec->n_argv > 0 ? spec->argv[0] : spec->image_ref ?: "";
}

static const char *session_command(const Session *se) {
        return se->sandbox ? sandbox_command(se->sandbox) : spec_command(&se->exec.spec);
}

static void log_sandbox(Server *srv, int level, const Session *se, const char *what) {
        log_sandbox_id(srv, level, se->sandbox ? sandbox_id(se->sandbox) : "-", se->uid, session_command(se), what);
}

/* ------------------------------------------------------------------------------------------------
 * Output: queued, sent as the socket takes it
 */

static OutFrame *out_frame_free(OutFrame *o) {
        for (size_t i = 0; i < o->n_fds; i++)
                safe_close(o->fds[i]);
        free(o);
        return NULL;
}

static void client_drop_output(Client *c) {
        while (c->out_head) {
                OutFrame *o = c->out_head;
                c->out_head = o->next;
                out_frame_free(o);
        }
        c->out_tail = NULL;
        c->out_bytes = 0;
}

/* What the loop waits for: output to drain, else requests (none once closing). */
static void client_update_events(Client *c) {
        uint32_t events = 0;

        if (!c->io)
                return;
        if (c->broken) {
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
                return;
        }
        if (c->out_head)
                events = EPOLLOUT;
        else if (!c->closing && c->decoder && !client_waits(c))
                events = EPOLLIN;
        /* With no events, epoll still reports EPOLLHUP and EPOLLERR: a peer that left is noticed. */
        (void) sd_event_source_set_io_events(c->io, events);
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
}

static void client_flush(Client *c) {
        while (c->out_head && !c->broken) {
                OutFrame *o = c->out_head;
                bool first = o->sent == 0;
                ssize_t n = wire_send_some(c->fd, o->data + o->sent, o->size - o->sent, first ? o->fds : NULL,
                                           first ? o->n_fds : 0);
                if (n == -EAGAIN)
                        break;
                if (n < 0) {
                        log_debug_errno((int) n, "Client (uid %u) does not take our output: %m", (unsigned) c->cred.uid);
                        c->broken = true;
                        client_drop_output(c);
                        break;
                }
                if (first)
                        for (size_t i = 0; i < o->n_fds; i++)
                                o->fds[i] = safe_close(o->fds[i]);
                o->sent += (size_t) n;
                c->out_bytes -= (size_t) n;
                if (o->sent == o->size) {
                        c->out_head = o->next;
                        if (!c->out_head)
                                c->out_tail = NULL;
                        out_frame_free(o);
                }
        }
        client_update_events(c);
}

static int send_message(Client *c, MsgType type, WireBuffer *b, const int *fds, size_t n_fds) {
        size_t payload = b ? b->size : 0;
        OutFrame *o;

        if (c->broken)
                return -EPIPE;
        if (payload > WIRE_PAYLOAD_MAX || n_fds > WIRE_FDS_MAX)
                return -EMSGSIZE;
        o = malloc(sizeof *o + WIRE_HEADER_SIZE + payload);
        if (!o)
                return -ENOMEM;
        *o = (OutFrame) { .size = WIRE_HEADER_SIZE + payload };
        wire_header_pack((uint16_t) type, (uint32_t) payload, o->data);
        if (payload > 0)
                memcpy(o->data + WIRE_HEADER_SIZE, b->data, payload);
        /* Ours until sent: the caller keeps (and may close) its own. */
        for (; o->n_fds < n_fds; o->n_fds++) {
                o->fds[o->n_fds] = fcntl(fds[o->n_fds], F_DUPFD_CLOEXEC, 3);
                if (o->fds[o->n_fds] < 0) {
                        int r = -errno;
                        out_frame_free(o);
                        return r;
                }
        }
        if (c->out_tail)
                c->out_tail->next = o;
        else
                c->out_head = o;
        c->out_tail = o;
        c->out_bytes += o->size;
        client_flush(c);
        return c->broken ? -EPIPE : 0;
}

/* Refuse a request: ERROR, then no more requests on this connection. */
static void client_fail(Client *c, int status, int error, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void client_fail(Client *c, int status, int error, const char *fmt, ...) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgError m = { .status = status, .error = error < 0 ? -error : error };
        va_list ap;

        if (c->closing)
                return;
        va_start(ap, fmt);
        vsnprintf(m.message, sizeof m.message, fmt, ap);
        va_end(ap);
        if (msg_error_encode(&m, &b) >= 0)
                (void) send_message(c, MSG_ERROR, &b, NULL, 0);
        c->closing = true;
        client_update_events(c);
}

/* ------------------------------------------------------------------------------------------------
 * Sessions
 */

static unsigned starting_of(Server *srv, uid_t uid) {
        unsigned n = 0;
        for (Session *se = srv->sessions; se; se = se->next)
                if (se->state == SESSION_STARTING && se->uid == uid)
                        n++;
        return n;
}

static void session_unlink(Session *se) {
        Server *srv = se->server;

        for (Session **p = &srv->sessions; *p; p = &(*p)->next)
                if (*p == se) {
                        *p = se->next;
                        srv->n_sessions--;
                        break;
                }
        if (se->client)
                se->client->session = NULL;
        se->client = NULL;
}

/* The sandbox has what it needed of the client's bind sources (its own mounts of them), or never will. */
static void session_close_bind_fds(Session *se) {
        if (se->bind_fds)
                for (size_t i = 0; i < se->exec.spec.n_binds; i++)
                        safe_close(se->bind_fds[i]);
        free(se->bind_fds);
        se->bind_fds = NULL;
        se->exec.spec.bind_fds = NULL;
}

/* A session without a live sandbox (queued, failed, or handed to a clean-up). */
static Session *session_free(Session *se) {
        if (!se)
                return NULL;
        assert(se->state != SESSION_STARTING);
        session_unlink(se);
        sd_event_source_disable_unref(se->exit_source);
        sd_event_source_disable_unref(se->limit_timer);
        sandbox_free(se->sandbox); /* NULL unless the caller kept it */
        /* Collected before (on_program_exit()), or never started. */
        sandbox_exec_free(se->program);
        sandbox_exec_free(se->started_program);
        sandbox_free(se->pooled);
        safe_close(se->cancel_fd);
        session_close_bind_fds(se);
        free(se->groups);
        free(se->image_asked);
        msg_exec_done(&se->exec);
        Box *b = se->box;
        free(se);
        if (b) {
                assert(b->n_execs > 0);
                if (--b->n_execs == 0)
                        b->idle_since_usec = now_usec();
                box_check(b);
        }
        return NULL;
}

static void cleanup_run(Work *w) {
        Cleanup *cl = container_of(w, Cleanup, work);
        SandboxResult res = {};

        if (cl->kill) {
                (void) sandbox_collect(cl->sandbox, true, &res);
                cl->status = res.status;
        }
        cl->r = sandbox_cleanup(cl->sandbox);
        cl->sandbox = sandbox_free(cl->sandbox);
}

static void cleanup_done(Work *w) {
        Cleanup *cl = container_of(w, Cleanup, work);
        Server *srv = cl->server;

        if (cl->box) {
                Box *b = cl->box;
                if (cl->r < 0)
                        log_warning_errno(cl->r, "Failed to clean up sandbox %s completely, ignoring: %m", cl->id);
                b->cleaning = false;
                free(cl);
                srv->n_cleanups--;
                box_check(b);
                server_update(srv);
                return;
        }
        if (cl->kill) {
                char what[128];
                snprintf(what, sizeof what, "ended (killed: %s), status %d",
                         srv->stopping ? "sandboxd is stopping" : "its client went away", cl->status);
                log_sandbox_id(srv, LOG_INFO, cl->id, cl->uid, spec_command(&cl->exec.spec), what);
        }
        if (cl->r < 0)
                log_warning_errno(cl->r, "Failed to clean up sandbox %s completely, ignoring: %m", cl->id);
        msg_exec_done(&cl->exec);
        free(cl);
        srv->n_cleanups--;
        server_update(srv);
}

/* The session ends here; its sandbox (ended, or to be killed) goes to a clean-up worker. */
static void session_end(Session *se, bool kill) {
        Server *srv = se->server;
        Cleanup *cl = calloc(1, sizeof *cl);

        if (!cl) {
                /* No memory for the hand-over: do it here, the loop waits this once. */
                log_warning("Out of memory: cleaning up sandbox %s on the event loop", sandbox_id(se->sandbox));
                (void) sandbox_finish(se->sandbox, kill, NULL);
                session_free(se);
                server_update(srv);
                return;
        }
        session_close_bind_fds(se);
        *cl = (Cleanup) {
                .work = { .run = cleanup_run, .done = cleanup_done },
                .server = srv,
                .sandbox = TAKE_PTR(se->sandbox),
                .exec = se->exec,
                .kill = kill,
                .uid = se->uid,
        };
        snprintf(cl->id, sizeof cl->id, "%s", sandbox_id(cl->sandbox));
        se->exec = (MsgExec) { .stdio = { -EBADF, -EBADF, -EBADF } };
        /* The loop stops watching it before the worker reaps it. */
        se->exit_source = sd_event_source_disable_unref(se->exit_source);
        se->limit_timer = sd_event_source_disable_unref(se->limit_timer);
        session_free(se);
        srv->n_cleanups++;
        workpool_submit(srv->cleanups, &cl->work);
        /* Answered: the pool's refill that a take put off may start. */
        pool_request_done(srv->pool);
        server_update(srv);
}

/* EXIT, the last message of a connection that ran a sandbox or a program: it ends once this is sent. */
static void send_exit(Client *c, const SandboxResult *r) {
        SandboxResult res = *r;

        {
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
                        m.union_failed = res.union_failed;
                }
                if (!c->closing && msg_exit_encode(&m, &b) >= 0)
                        (void) send_message(c, MSG_EXIT, &b, NULL, 0);
                /* EXIT is the last message: the connection ends once it is sent. */
                c->closing = true;
                client_update_events(c);
        }
}

/* The sandbox ended by itself: collect it (it has exited: no wait), answer, clean up off the loop. */
static int on_sandbox_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Session *se = userdata;
        Client *c = se->client;
        SandboxResult res = {};
        char what[64];

        (void) sandbox_collect(se->sandbox, false, &res);
        snprintf(what, sizeof what, "ended with status %d", res.status);
        log_sandbox(se->server, LOG_INFO, se, what);
        if (c) {
                c->session = NULL;
                se->client = NULL;
                send_exit(c, &res);
        }
        /* The client has its answer; the slower part runs on a worker. */
        session_end(se, false);
        if (c)
                client_check(c);
        return 0;
}

static int arm_limit_timer(Session *se);

static int on_limit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return arm_limit_timer(userdata);
}

static int arm_limit_timer(Session *se) {
        uint64_t next = sandbox_check_limits(se->sandbox);

        if (next == 0)
                return se->limit_timer ? sd_event_source_set_enabled(se->limit_timer, SD_EVENT_OFF) : 0;
        if (!se->limit_timer)
                return sd_event_add_time(se->server->event, &se->limit_timer, CLOCK_MONOTONIC, next, 1000,
                                         on_limit_timer, se);
        (void) sd_event_source_set_time(se->limit_timer, next);
        return sd_event_source_set_enabled(se->limit_timer, SD_EVENT_ONESHOT);
}

/* The store's name of UID's snapshot NAME ("NAME[:TAG]"). */
static int snapshot_reference(uid_t uid, const char *name, char *buf, size_t size) {
        int n = snprintf(buf, size, SNAPSHOT_DOMAIN "/uid-%u/%s", (unsigned) uid, name);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* Whether IMG is hidden from UID: another uid's snapshot (every name it has is a snapshot name, none UID's). */
static bool image_hidden_from(const Image *img, uid_t uid) {
        char own[64];
        bool other = false;

        if (uid == 0)
                return false;
        snprintf(own, sizeof own, SNAPSHOT_DOMAIN "/uid-%u/", (unsigned) uid);
        for (char **r = img->refs; r && *r; r++) {
                if (startswith(*r, own) || !startswith(*r, SNAPSHOT_DOMAIN "/"))
                        return false;
                other = true;
        }
        return other;
}

/* What image_store_lookup() says of REFERENCE when the store at PATH has no such image (image/store.c). */
static void missing_image_message(const char *reference, const char *path, char *buf, size_t size) {
        const char *hex = startswith(reference, "sha256:") ?: reference;
        size_t n = strlen(hex);

        if (n >= 4 && n <= 64 && strspn(hex, "0123456789abcdef") == n)
                snprintf(buf, size, "no image named '%s' and no image ID starting with it in the store '%s'",
                         reference, path);
        else
                snprintf(buf, size, "no image '%s' in the store '%s': pull it with 'sandbox-image pull %s'",
                         reference, path, reference);
}

/* --image NAME: the client's own snapshot of that name first; a client other than root never reaches another
 * uid's snapshots (by name or ID: the store's message for an image it does not have). The spec then names the
 * image by its ID. On a worker: the store is read. */
static int resolve_image(Session *se) {
        const DaemonConfig *cfg = se->server->config;
        _cleanup_(image_store_freep) ImageStore *store = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        SandboxSpec *spec = &se->exec.spec;
        const char *path = cfg->store[0] ? cfg->store : IMAGE_STORE_DEFAULT;
        char ref[MSG_REFERENCE_MAX];
        ImageReport rep = {};
        int r;

        if (!spec->image_ref)
                return 0;
        r = image_store_open(path, false, &store, &rep);
        if (r < 0)
                return 0; /* the start reports it */
        if (snapshot_reference(se->uid, spec->image_ref, ref, sizeof ref) >= 0 &&
            image_store_lookup(store, ref, &img, &rep) >= 0)
                se->own_snapshot = true;
        else {
                img = image_free(img);
                rep = (ImageReport) {};
                r = image_store_lookup(store, spec->image_ref, &img, &rep);
                if (r < 0 && se->uid == 0)
                        return 0; /* the start reports it, as before */
                if (r < 0 || image_hidden_from(img, se->uid)) {
                        /* Another uid's snapshot: the store's own words for an image it does not have. */
                        if (r >= 0)
                                missing_image_message(spec->image_ref, path, rep.error, sizeof rep.error);
                        se->start_error.status = SANDBOX_EXIT_SETUP;
                        snprintf(se->start_error.message, sizeof se->start_error.message, "--image '%.200s': %.700s",
                                 spec->image_ref, rep.error);
                        return -ENOENT;
                }
                char own[64];
                snprintf(own, sizeof own, SNAPSHOT_DOMAIN "/uid-%u/", (unsigned) se->uid);
                for (char **x = img->refs; x && *x; x++)
                        if (startswith(*x, own))
                                se->own_snapshot = true;
        }
        char *id = strdup(img->id);
        if (!id)
                return -ENOMEM;
        free(se->image_asked);
        se->image_asked = spec->image_ref;
        spec->image_ref = id;
        return 0;
}

/* allow-images, for a client other than root: the image its reference names must be one an entry names.
 * Then the spec names that image by its ID, so that what starts is what was checked (a tag that moves
 * meanwhile does not matter). On a worker: the store is read. */
static int check_allowed_image(Session *se) {
        const DaemonConfig *cfg = se->server->config;
        _cleanup_(image_store_freep) ImageStore *store = NULL;
        _cleanup_(image_freep) Image *img = NULL;
        SandboxSpec *spec = &se->exec.spec;
        const char *path = cfg->store[0] ? cfg->store : IMAGE_STORE_DEFAULT;
        ImageReport rep = {};
        const char *asked = se->image_asked ?: spec->image_ref;
        char *id;
        int r;

        if (!spec->image_ref || se->uid == 0 || !cfg->allow_images_set || se->own_snapshot)
                return 0;
        if (cfg->n_allow_images == 0) {
                se->start_error.status = SANDBOX_EXIT_SETUP;
                snprintf(se->start_error.message, sizeof se->start_error.message, "permission denied: --image '%.200s': "
                         "this daemon lets only root run images of the store (allow-images = none)", asked);
                return -EPERM;
        }
        r = image_store_open(path, false, &store, &rep);
        if (r >= 0)
                r = image_store_lookup(store, spec->image_ref, &img, &rep);
        if (r < 0) {
                se->start_error.status = SANDBOX_EXIT_SETUP;
                snprintf(se->start_error.message, sizeof se->start_error.message, "--image '%.200s': %.700s",
                         asked, rep.error);
                return r;
        }
        for (size_t i = 0; i < cfg->n_allow_images; i++) {
                _cleanup_(image_freep) Image *allowed = NULL;
                ImageReport arep = {};
                if (image_store_lookup(store, config_allow_image(cfg, i), &allowed, &arep) < 0 ||
                    !streq(allowed->id, img->id))
                        continue;
                id = strdup(img->id);
                if (!id)
                        return -ENOMEM;
                free(spec->image_ref);
                spec->image_ref = id;
                return 0;
        }
        se->start_error.status = SANDBOX_EXIT_SETUP;
        snprintf(se->start_error.message, sizeof se->start_error.message, "permission denied: --image '%.200s' (image %.19s) "
                 "is not one of the images this daemon lets users other than root run (allow-images)",
                 asked, img->id);
        return -EPERM;
}

/* Whether the client could open FD with MODE (access(2) bits) itself: a child of ours takes the client's
 * uid, gid and groups and asks the kernel (modes, ACLs, LSMs), so that nothing is granted through us.
 * The child is a copy of a threaded process: raw system calls only. 0, -EACCES (or the kernel's
 * answer), or another -errno when the check could not be made. */
static int access_as_client(const Session *se, int fd, int mode) {
        int status;
        pid_t pid;

        pid = (pid_t) syscall(SYS_clone, (unsigned long) SIGCHLD, 0UL, 0UL, 0UL, 0UL);
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                long r = syscall(SYS_setgroups, se->n_groups, se->groups);
                if (r >= 0)
                        r = syscall(SYS_setresgid, se->gid, se->gid, se->gid);
                if (r >= 0)
                        r = syscall(SYS_setresuid, se->uid, se->uid, se->uid);
                if (r < 0)
                        syscall(SYS_exit_group, 255);
                r = syscall(SYS_faccessat2, fd, "", mode, AT_EMPTY_PATH);
                syscall(SYS_exit_group, r < 0 ? errno : 0);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 255)
                return -ECHILD;
        return -WEXITSTATUS(status);
}

static bool session_in_group(const Session *se, gid_t gid) {
        if (gid == se->gid)
                return true;
        for (size_t i = 0; i < se->n_groups; i++)
                if (se->groups[i] == gid)
                        return true;
        return false;
}

/* The bind sources a client other than root sent as descriptors: a directory or a regular file that the
 * client itself may read (and search, and write unless the bind is read-only), and for an idmapped
 * bind one the client owns, of one of its groups, since what root inside writes there becomes the
 * source owner's. The runtime then never resolves them by name. */
static int check_bind_sources(Session *se, SandboxError *err) {
        const SandboxSpec *spec = &se->exec.spec;

        if (se->uid == 0)
                return 0;
        for (size_t i = 0; i < spec->n_binds; i++) {
                const SpecBind *b = &spec->binds[i];
                int fd = se->bind_fds ? se->bind_fds[i] : -EBADF, mode, r;
                struct stat st;

                if (!b->by_fd || fd < 0 || b->volume) /* a volume's image: ours, not the client's */
                        continue;
                if (fstat(fd, &st) < 0 || (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))) {
                        *err = (SandboxError) { .status = SANDBOX_EXIT_SETUP };
                        snprintf(err->message, sizeof err->message,
                                 "permission denied: --bind '%s': not a directory or regular file", b->source);
                        return -EPERM;
                }
                mode = R_OK | (S_ISDIR(st.st_mode) ? X_OK : 0) | (b->readonly ? 0 : W_OK);
                r = access_as_client(se, fd, mode);
                if (r < 0) {
                        *err = (SandboxError) { .status = SANDBOX_EXIT_SETUP };
                        snprintf(err->message, sizeof err->message,
                                 "permission denied: --bind '%s': uid %u may not %s it itself (%s)", b->source,
                                 (unsigned) se->uid, b->readonly ? "read" : "read and write", strerror(-r));
                        return -EPERM;
                }
                if (b->idmap && (st.st_uid != se->uid || !session_in_group(se, st.st_gid))) {
                        *err = (SandboxError) { .status = SANDBOX_EXIT_SETUP };
                        snprintf(err->message, sizeof err->message,
                                 "permission denied: --bind '%s:%s:idmap': the source belongs to %u:%u; an "
                                 "idmapped bind writes as the source's owner, so it must be yours (uid %u) and "
                                 "of one of your groups", b->source, b->dest, (unsigned) st.st_uid,
                                 (unsigned) st.st_gid, (unsigned) se->uid);
                        return -EPERM;
                }
        }
        return 0;
}

/* What the sandbox's record keeps for us (the owner bytes of sandbox_detach()): TLV as in the protocol. */
enum {
        OWNER_UID = 1,          /* u32, required */
        OWNER_NAME = 2,         /* string, a sandbox name */
        OWNER_EXPIRES = 3,      /* u64, CLOCK_REALTIME µs, 0: never */
        OWNER_IDLE_TTL = 4,     /* u64 <= MSG_TTL_MAX_USEC */
        OWNER_VOLUME = 5,       /* string, a volume name, repeated 0..MSG_VOLUMES_MAX */
};

typedef struct Owner {
        uid_t uid;
        char name[MSG_NAME_MAX + 1];
        uint64_t expires_realtime_usec;
        uint64_t idle_ttl_usec;
        VolumeClaims volumes;
} Owner;

static int owner_encode(const Owner *o, WireBuffer *b) {
        int r = wire_put_u32(b, OWNER_UID, (uint32_t) o->uid);
        if (r >= 0 && o->name[0])
                r = wire_put_string(b, OWNER_NAME, o->name);
        if (r >= 0 && o->expires_realtime_usec)
                r = wire_put_u64(b, OWNER_EXPIRES, o->expires_realtime_usec);
        if (r >= 0 && o->idle_ttl_usec)
                r = wire_put_u64(b, OWNER_IDLE_TTL, o->idle_ttl_usec);
        for (unsigned i = 0; r >= 0 && i < o->volumes.n; i++)
                r = wire_put_string(b, OWNER_VOLUME, o->volumes.names[i]);
        return r;
}

/* Read back from a record, which is ours but read as untrusted input: every field checked. */
static int owner_decode(const void *data, size_t size, Owner *ret) {
        Owner o = {};
        unsigned seen = 0;
        WireReader rd;
        WireField w;
        int r;

        wire_reader_init(&rd, data, size);
        while ((r = wire_reader_next(&rd, &w)) > 0) {
                uint32_t v;
                if (w.tag == OWNER_VOLUME) {
                        char *name = o.volumes.n < MSG_VOLUMES_MAX ? o.volumes.names[o.volumes.n] : NULL;
                        if (!name || wire_field_copy_string(&w, name, MSG_VOLUME_NAME_MAX + 1) < 0 ||
                            !msg_volume_name_is_valid(name))
                                return -EBADMSG;
                        o.volumes.n++;
                        continue;
                }
                if (w.tag < OWNER_UID || w.tag > OWNER_IDLE_TTL || (seen & (1u << w.tag)))
                        return -EBADMSG;
                seen |= 1u << w.tag;
                switch (w.tag) {
                case OWNER_UID:
                        r = wire_field_get_u32(&w, &v);
                        o.uid = (uid_t) v;
                        break;
                case OWNER_NAME:
                        r = wire_field_copy_string(&w, o.name, sizeof o.name);
                        if (r >= 0 && !msg_name_is_valid(o.name))
                                r = -EBADMSG;
                        break;
                case OWNER_EXPIRES:
                        r = wire_field_get_u64(&w, &o.expires_realtime_usec);
                        break;
                case OWNER_IDLE_TTL:
                        r = wire_field_get_u64(&w, &o.idle_ttl_usec);
                        if (r >= 0 && o.idle_ttl_usec > MSG_TTL_MAX_USEC)
                                r = -EBADMSG;
                        break;
                }
                if (r < 0)
                        return -EBADMSG;
        }
        if (r < 0 || !(seen & (1u << OWNER_UID)))
                return -EBADMSG;
        *ret = o;
        return 0;
}

/* A created sandbox outlives this daemon (a restart, a crash): detach it, with what we need to adopt it. */
static int detach_created(Session *se) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        Owner o = { .uid = se->uid, .idle_ttl_usec = se->idle_ttl_usec, .volumes = se->volumes };
        int r;

        snprintf(o.name, sizeof o.name, "%s", se->name);
        if (se->ttl_usec)
                o.expires_realtime_usec = se->expires_realtime_usec = realtime_usec() + se->ttl_usec;
        r = owner_encode(&o, &b);
        if (r < 0)
                return r;
        return sandbox_detach(se->started, b.data, b.size, &se->start_error);
}

static void start_run(Work *w) {
        Session *se = container_of(w, Session, work);

        se->start_r = resolve_image(se);
        if (se->start_r >= 0)
                se->start_r = check_allowed_image(se);
        if (se->start_r == -ENOMEM) {
                se->start_error.status = SANDBOX_EXIT_SETUP;
                snprintf(se->start_error.message, sizeof se->start_error.message, "out of memory");
        }
        if (se->start_r < 0)
                return;
        /* Here, not on the loop: a source on a slow file system must not hold up other clients. */
        se->start_r = check_bind_sources(se, &se->start_error);
        if (se->start_r < 0)
                return;
        if (se->kind == SESSION_CREATE) {
                SandboxStartOptions o = { .cancel_fd = se->cancel_fd, .flags = SANDBOX_START_IDLE };
                if (se->pooled) {
                        se->start_r = pool_make_idle(se->pooled, se->cancel_fd, &se->start_error);
                        if (se->start_r >= 0) {
                                se->started = TAKE_PTR(se->pooled);
                                se->from_pool = true;
                        } else {
                                (void) sandbox_finish(se->pooled, true, NULL);
                                se->pooled = sandbox_free(se->pooled);
                                if (se->start_r != -ESTALE)
                                        return;
                                se->start_error = (SandboxError) {};
                        }
                }
                if (!se->started)
                        se->start_r = sandbox_start_with(&se->exec.spec, &se->server->runtime, &o, &se->started,
                                                         &se->start_error);
                if (se->start_r >= 0) {
                        se->start_r = detach_created(se);
                        if (se->start_r < 0)
                                se->started = sandbox_free(se->started);
                }
                return;
        }
        if (se->pooled) {
                se->start_r = pool_exec(se->pooled, &se->exec.spec, se->exec.stdio, se->cancel_fd, &se->start_error);
                if (se->start_r >= 0) {
                        se->started = TAKE_PTR(se->pooled);
                        se->from_pool = true;
                        return;
                }
                (void) sandbox_finish(se->pooled, true, NULL);
                se->pooled = sandbox_free(se->pooled);
                /* Its program failed (not found, ...): that is the answer. */
                if (se->start_r != -ESTALE && se->start_r != -E2BIG)
                        return;
                /* It ended meanwhile, or the program does not fit: start one as if there were no pool. */
                se->start_error = (SandboxError) {};
        }
        se->start_r = sandbox_start_cancellable(&se->exec.spec, &se->server->runtime,
                                                se->exec.spec.tty ? NULL : se->exec.stdio, se->cancel_fd,
                                                &se->started, &se->start_error);
}

/* EXEC with in, on a worker: the Box's sandbox lives at least as long as this session (n_execs). */
static void start_program_run(Work *w) {
        Session *se = container_of(w, Session, work);
        const SandboxSpec *spec = &se->exec.spec;
        SandboxExecOptions o = {
                .argv = spec->argv,
                .n_argv = spec->n_argv,
                .env = spec->env,
                .n_env = spec->n_env,
                .workdir = spec->workdir,
                .user = spec->user,
                .tty = spec->tty,
                .stdio = spec->tty ? NULL : se->exec.stdio,
                .timeout_usec = spec->timeout_usec,
                .cancel_fd = se->cancel_fd,
        };

        se->start_r = sandbox_exec(se->box->sandbox, &o, &se->started_program, &se->start_error);
}

static Box *box_new(Session *se);
static Box *box_adopt(Server *srv, Sandbox *sb, const Owner *o);
static void box_free(Box *b);
static void box_arm_timer(Box *b);

static void send_created(Client *c, const Box *b) {
        _cleanup_(wire_buffer_done) WireBuffer buf = {};
        MsgCreated m = {};

        snprintf(m.id, sizeof m.id, "%s", b->id);
        snprintf(m.name, sizeof m.name, "%s", b->name);
        if (msg_created_encode(&m, &buf) < 0 || send_message(c, MSG_CREATED, &buf, NULL, 0) < 0)
                c->broken = true;
}

/* A created sandbox is set up: it becomes a Box, which lives without the session. */
static void create_done(Session *se) {
        Server *srv = se->server;
        Client *c = se->client;
        Box *b;

        if (!c || srv->stopping) {
                log_sandbox(srv, LOG_INFO, se, "created, but nobody waits for it any more: removing it");
                return session_end(se, true);
        }
        b = box_new(se);
        if (!b) {
                client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                session_end(se, true);
                return client_check(c);
        }
        {
                char what[128];
                snprintf(what, sizeof what, "created%s%s%s", b->name[0] ? " as " : "", b->name,
                         se->from_pool ? " (a sandbox of the pool)" : "");
                log_sandbox_id(srv, LOG_INFO, b->id, b->uid, b->image ?: "", what);
        }
        session_free(se);
        send_created(c, b);
        client_process(c);
        client_check(c);
}

static int on_program_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_program_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void start_program_done(Session *se) {
        Server *srv = se->server;
        Client *c = se->client;
        Box *b = se->box;
        int r;

        if (se->start_r < 0) {
                SandboxError e = se->start_error;
                int err = se->start_r;

                session_free(se);
                if (c) {
                        client_fail(c, e.status, err, "%s", e.message);
                        client_check(c);
                }
                return;
        }
        se->program = TAKE_PTR(se->started_program);
        if (!c || b->state != MSG_STATE_RUNNING)
                /* Nobody waits for it, or the sandbox is ending: its exit is collected as any other. */
                sandbox_exec_kill(se->program);
        r = sd_event_add_io(srv->event, &se->exit_source, sandbox_exec_pidfd(se->program), EPOLLIN,
                            on_program_exit, se);
        if (r < 0) {
                /* Cannot watch it: collect it here (killed: it cannot be waited for long). */
                (void) sandbox_exec_collect(se->program, true, NULL);
                session_free(se);
                if (c) {
                        client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot watch the program");
                        client_check(c);
                }
                return;
        }
        if (sandbox_exec_deadline(se->program) > 0)
                (void) sd_event_add_time(srv->event, &se->limit_timer, CLOCK_MONOTONIC,
                                         sandbox_exec_deadline(se->program), 1000, on_program_timer, se);
        if (c) {
                _cleanup_(wire_buffer_done) WireBuffer buf = {};
                MsgStarted started = { .pid = (uint32_t) sandbox_exec_pid(se->program), .pty_fd = -EBADF };
                int pty = sandbox_exec_pty_fd(se->program);

                snprintf(started.id, sizeof started.id, "%s", b->id);
                if (msg_started_encode(&started, &buf) < 0 ||
                    send_message(c, MSG_STARTED, &buf, &pty, pty >= 0 ? 1 : 0) < 0)
                        c->broken = true;
                client_check(c);
        }
}

static void start_done(Work *w) {
        Session *se = container_of(w, Session, work);
        Server *srv = se->server;
        Client *c = se->client;
        int r;

        if (se->kind == SESSION_EXEC_IN) {
                assert(srv->n_starting > 0);
                srv->n_starting--;
                for (size_t i = 0; i < ELEMENTSOF(se->exec.stdio); i++)
                        se->exec.stdio[i] = safe_close(se->exec.stdio[i]);
                se->state = SESSION_RUNNING;
                start_program_done(se);
                server_schedule(srv);
                server_update(srv);
                return;
        }

        assert(srv->n_starting > 0);
        srv->n_starting--;
        /* The sandbox has its own copies of the client's stdio and of its bind sources. */
        for (size_t i = 0; i < ELEMENTSOF(se->exec.stdio); i++)
                se->exec.stdio[i] = safe_close(se->exec.stdio[i]);
        session_close_bind_fds(se);
        se->state = SESSION_RUNNING; /* or about to be freed */

        if (se->start_r < 0) {
                SandboxError e = se->start_error;
                int err = se->start_r;

                if (c)
                        log_sandbox(srv, LOG_NOTICE, se, e.message);
                else {
                        char what[sizeof e.message + 64];
                        snprintf(what, sizeof what, "its client went away during the start, which ended: %s",
                                 e.message);
                        log_sandbox(srv, LOG_INFO, se, what);
                }
                session_free(se);
                if (c) {
                        client_fail(c, e.status, err, "%s", e.message);
                        client_check(c);
                }
                pool_request_done(srv->pool);
        } else if (se->kind == SESSION_CREATE) {
                se->sandbox = TAKE_PTR(se->started);
                create_done(se);
        } else {
                se->sandbox = TAKE_PTR(se->started);
                se->started_realtime_usec = (uint64_t) time(NULL) * 1000000;
                if (!c || srv->stopping) {
                        log_sandbox(srv, LOG_INFO, se, "started, but nobody waits for it any more: ending it");
                        session_end(se, true);
                } else {
                        log_sandbox(srv, LOG_INFO, se, se->from_pool ? "started (a sandbox of the pool)" : "started");
                        r = sd_event_add_io(srv->event, &se->exit_source, sandbox_pidfd(se->sandbox), EPOLLIN,
                                            on_sandbox_exit, se);
                        if (r >= 0)
                                r = arm_limit_timer(se);
                        if (r < 0) {
                                session_end(se, true);
                                client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot watch the sandbox");
                        } else {
                                _cleanup_(wire_buffer_done) WireBuffer b = {};
                                MsgStarted started = { .pid = (uint32_t) sandbox_pid(se->sandbox), .pty_fd = -EBADF };
                                int pty = sandbox_pty_fd(se->sandbox);

                                snprintf(started.id, sizeof started.id, "%s", sandbox_id(se->sandbox));
                                if (msg_started_encode(&started, &b) < 0 ||
                                    send_message(c, MSG_STARTED, &b, &pty, pty >= 0 ? 1 : 0) < 0)
                                        c->broken = true; /* nobody to report to: client_check() ends it */
                        }
                        client_check(c);
                }
        }
        server_schedule(srv);
        server_update(srv);
}

/* Hand queued sessions to the workers, oldest first, within max-starts and (but for root)
 * max-starts-per-uid: one uid's queue never holds up another uid's starts. */
static void server_schedule(Server *srv) {
        const DaemonConfig *cfg = srv->config;

        for (Session *se = srv->sessions; se && srv->n_starting < cfg->max_starts; se = se->next) {
                if (se->state != SESSION_QUEUED)
                        continue;
                if (se->uid != 0 && starting_of(srv, se->uid) >= cfg->max_starts_per_uid)
                        continue;
                se->state = SESSION_STARTING;
                /* A create takes one too, unless it has an environment or working directory of its own
                 * (a pooled sandbox has none: in its shape they are a program's). */
                if (se->kind == SESSION_EXEC ||
                    (se->kind == SESSION_CREATE && se->exec.spec.n_env == 0 && !se->exec.spec.workdir))
                        se->pooled = pool_take(srv->pool, &se->exec.spec);
                se->work = (Work) { .run = se->kind == SESSION_EXEC_IN ? start_program_run : start_run,
                                    .done = start_done };
                srv->n_starting++;
                workpool_submit(srv->starts, &se->work);
        }
}

/* The client of SE has gone (or the daemon stops; SE is detached from it): end what it asked for. */
static void session_abandon(Session *se) {
        switch (se->state) {
        case SESSION_QUEUED:
                session_free(se);
                break;
        case SESSION_STARTING:
                /* start_done() ends it (it still counts, for max-starts-per-uid too); meanwhile a wait
                 * for the init gives up. */
                (void) eventfd_write(se->cancel_fd, 1);
                break;
        case SESSION_RUNNING:
                if (se->kind == SESSION_EXEC_IN)
                        /* Its exit is collected when it comes (on_program_exit()). */
                        sandbox_exec_kill(se->program);
                else
                        session_end(se, true);
                break;
        }
}

/* A program of EXEC with in ended (by itself, or killed): what is left of its session is killed (as a
 * one-shot sandbox ends with its program; a daemon it started with a session of its own stays), it is
 * collected (no wait: it has exited) and answered. */
static int on_program_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Session *se = userdata;
        Client *c = se->client;
        SandboxResult res = {};

        (void) sandbox_exec_collect(se->program, true, &res);
        if (c) {
                c->session = NULL;
                se->client = NULL;
                send_exit(c, &res);
        }
        session_free(se);
        if (c)
                client_check(c);
        return 0;
}

/* Its timeout: kill its session; the exit follows (then its status is 124). */
static int on_program_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Session *se = userdata;

        sandbox_exec_kill(se->program);
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Created sandboxes (Box)
 */

/* What a sandbox runs, for LIST: its image's ID, its image directory, or the host's /usr. */
static const char *image_label(const Sandbox *sb) {
        return sandbox_image_id(sb) ?: sandbox_spec(sb)->image ?: "host";
}

static int on_box_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_box_timer(sd_event_source *s, uint64_t usec, void *userdata);
static void box_stop(Box *b, uint64_t grace_usec, bool remove);

/* A box for a sandbox a predecessor of ours created (sandbox_adopt()). */
static Box *box_adopt(Server *srv, Sandbox *sb, const Owner *o) {
        uint64_t now = realtime_usec();
        Session se = {
                .server = srv,
                .uid = o->uid,
                .sandbox = sb,
                .idle_ttl_usec = o->idle_ttl_usec,
                .expires_realtime_usec = o->expires_realtime_usec,
                /* A ttl that ended while no daemon ran ends it now (the timer fires at once). */
                .ttl_usec = o->expires_realtime_usec ? (o->expires_realtime_usec > now ?
                                                        o->expires_realtime_usec - now : 1) : 0,
                .exec = { .stdio = { -EBADF, -EBADF, -EBADF } },
        };
        Box *b;

        snprintf(se.name, sizeof se.name, "%s", o->name);
        se.volumes = o->volumes;
        b = box_new(&se);
        if (b)
                b->created_realtime_usec = sandbox_created_usec(sb);
        return b;
}

static Box *box_new(Session *se) {
        Server *srv = se->server;
        Box *b = calloc(1, sizeof *b);
        int r;

        if (!b)
                return NULL;
        *b = (Box) {
                .server = srv,
                .uid = se->uid,
                .state = MSG_STATE_RUNNING,
                .created_realtime_usec = realtime_usec(),
                .idle_ttl_usec = se->idle_ttl_usec,
                .idle_since_usec = now_usec(),
        };
        b->image = strdup(image_label(se->sandbox));
        if (!b->image) {
                free(b);
                return NULL;
        }
        r = sd_event_add_io(srv->event, &b->exit_source, sandbox_pidfd(se->sandbox), EPOLLIN, on_box_exit, b);
        if (r >= 0)
                r = sd_event_add_time(srv->event, &b->timer, CLOCK_MONOTONIC, 0, 100000, on_box_timer, b);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
        if (r < 0) {
                sd_event_source_disable_unref(b->exit_source);
                sd_event_source_disable_unref(b->timer);
                free(b->image);
                free(b);
                return NULL;
        }
        snprintf(b->id, sizeof b->id, "%s", sandbox_id(se->sandbox));
        snprintf(b->name, sizeof b->name, "%s", se->name);
        b->volumes = se->volumes;
        if (se->ttl_usec) {
                b->expires_usec = now_usec() + se->ttl_usec;
                b->expires_realtime_usec = se->expires_realtime_usec ?: b->created_realtime_usec + se->ttl_usec;
        }
        /* The box takes the sandbox and the spec it points into. */
        b->sandbox = TAKE_PTR(se->sandbox);
        b->spec = se->exec;
        se->exec = (MsgExec) { .stdio = { -EBADF, -EBADF, -EBADF } };
        b->next = srv->boxes;
        srv->boxes = b;
        srv->n_boxes++;
        box_arm_timer(b);
        return b;
}

static void box_free(Box *b) {
        Server *srv = b->server;

        assert(!b->sandbox && !b->cleaning && b->n_execs == 0);
        for (Box **p = &srv->boxes; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        srv->n_boxes--;
                        break;
                }
        for (Client *c = srv->clients; c; c = c->next)
                if (c->waiting == b)
                        c->waiting = NULL;
        sd_event_source_disable_unref(b->exit_source);
        sd_event_source_disable_unref(b->timer);
        msg_exec_done(&b->spec);
        free(b->image);
        free(b);
}

static void box_log(Box *b, int level, const char *what) {
        log_sandbox_id(b->server, level, b->id, b->uid, b->name[0] ? b->name : b->image, what);
}

/* When it must be looked at again: a stop's poll or deadline, its ttl, its idle ttl. */
static void box_arm_timer(Box *b) {
        uint64_t next = 0;

        if (b->state == MSG_STATE_STOPPING) {
                if (b->stop_deadline)
                        next = MIN(b->stop_deadline, now_usec() + STOP_POLL_USEC);
        } else if (!b->remove) {
                next = b->expires_usec;
                if (b->idle_ttl_usec && b->n_execs == 0 && b->state != MSG_STATE_STOPPED) {
                        uint64_t idle = b->idle_since_usec + b->idle_ttl_usec;
                        next = next ? MIN(next, idle) : idle;
                }
        }
        if (next == 0) {
                (void) sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(b->timer, next);
        (void) sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT);
}

static void reply_ok(Client *c) {
        _cleanup_(wire_buffer_done) WireBuffer buf = {};

        if (msg_empty_encode(&buf) < 0 || send_message(c, MSG_OK, &buf, NULL, 0) < 0)
                c->broken = true;
}

/* Moves a stop on as far as it can go now: SIGTERM given (box_stop()), then, once the programs ended or
 * the grace is over, everything killed; once every program of EXEC with in is collected, the sandbox
 * goes to a clean-up worker; once that is done, the box is stopped (and removed for RM). */
static void box_check(Box *b) {
        Server *srv = b->server;

        if (b->release && b->state != MSG_STATE_STOPPING && !b->cleaning) {
                /* The daemon stops: the sandbox lives on, detached, for the next one to adopt. Its
                 * programs were killed (they were our children, and their clients' connections go). */
                if (b->n_execs > 0)
                        return;
                if (b->sandbox) {
                        sandbox_forget(b->sandbox);
                        b->sandbox = NULL;
                }
                box_log(b, LOG_INFO, "left running for the next sandboxd");
                box_free(b);
                return server_update(srv);
        }
        if (b->state == MSG_STATE_STOPPING) {
                if (b->stop_deadline) {
                        size_t n = 1;
                        if (now_usec() < b->stop_deadline && sandbox_count_processes(b->sandbox, &n) >= 0 && n > 0)
                                return box_arm_timer(b);
                        b->stop_deadline = 0;
                        sandbox_kill_all(b->sandbox);
                        for (Session *se = srv->sessions; se; se = se->next)
                                if (se->box == b && se->state == SESSION_STARTING)
                                        (void) eventfd_write(se->cancel_fd, 1);
                                else if (se->box == b && se->state == SESSION_RUNNING)
                                        sandbox_exec_kill(se->program);
                }
                /* Its programs are collected first: they use the sandbox's cgroup until then. */
                if (b->n_execs > 0 || b->cleaning)
                        return box_arm_timer(b);
                if (b->sandbox) {
                        Cleanup *cl = calloc(1, sizeof *cl);
                        if (!cl) {
                                box_log(b, LOG_WARNING, "out of memory: cleaning it up on the event loop");
                                (void) sandbox_finish(b->sandbox, true, NULL);
                                b->sandbox = sandbox_free(b->sandbox);
                        } else {
                                *cl = (Cleanup) {
                                        .work = { .run = cleanup_run, .done = cleanup_done },
                                        .server = srv,
                                        .sandbox = TAKE_PTR(b->sandbox),
                                        .box = b,
                                        .exec = { .stdio = { -EBADF, -EBADF, -EBADF } },
                                        .kill = true,
                                        .uid = b->uid,
                                };
                                snprintf(cl->id, sizeof cl->id, "%s", b->id);
                                b->cleaning = true;
                                b->exit_source = sd_event_source_disable_unref(b->exit_source);
                                srv->n_cleanups++;
                                workpool_submit(srv->cleanups, &cl->work);
                                return box_arm_timer(b);
                        }
                }
                b->state = MSG_STATE_STOPPED;
                box_log(b, LOG_INFO, b->remove ? "removed" : "stopped");
        }
        if (b->state == MSG_STATE_STOPPED) {
                Client *waiting[64];
                size_t n = 0;

                /* Answer whoever waits (STOP, RM); their next requests are read after the box is gone. */
                for (Client *c = srv->clients; c; c = c->next)
                        if (c->waiting == b) {
                                c->waiting = NULL;
                                reply_ok(c);
                                if (n < ELEMENTSOF(waiting))
                                        waiting[n++] = c;
                        }
                if (b->remove)
                        box_free(b);
                else
                        box_arm_timer(b);
                for (size_t i = 0; i < n; i++)
                        for (Client *c = srv->clients; c; c = c->next)
                                if (c == waiting[i]) {
                                        client_process(c);
                                        client_check(c);
                                        break;
                                }
                return server_update(srv);
        }
        box_arm_timer(b);
}

/* STOP (GRACE between SIGTERM and SIGKILL), RM -f and ttls (no grace, REMOVE). */
static void box_stop(Box *b, uint64_t grace_usec, bool remove) {
        Server *srv = b->server;

        if (remove)
                b->remove = true;
        if (b->state == MSG_STATE_RUNNING || b->state == MSG_STATE_PAUSED) {
                if (b->state == MSG_STATE_PAUSED)
                        (void) sandbox_resume(b->sandbox);
                b->state = MSG_STATE_STOPPING;
                box_log(b, LOG_INFO, remove ? "removing" : "stopping");
                /* Programs waiting for a start slot never start. */
                for (Session *se = srv->sessions, *next; se; se = next) {
                        next = se->next;
                        if (se->box == b && se->state == SESSION_QUEUED) {
                                Client *c = se->client;
                                b->n_execs--;
                                se->box = NULL;
                                session_free(se);
                                if (c) {
                                        client_fail(c, SANDBOX_EXIT_SETUP, -ESRCH, "sandbox %s is being stopped",
                                                    b->id);
                                        client_check(c);
                                }
                        }
                }
                b->stop_deadline = now_usec();
                if (grace_usec > 0 && sandbox_terminate(b->sandbox) >= 0)
                        b->stop_deadline += grace_usec;
        } else if (b->state == MSG_STATE_STOPPING && grace_usec == 0 && b->stop_deadline)
                b->stop_deadline = now_usec();
        box_check(b);
}

/* Its init (or its union's server) ended while it was meant to run: it is stopped. */
static int on_box_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Box *b = userdata;

        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (b->state == MSG_STATE_RUNNING || b->state == MSG_STATE_PAUSED)
                box_log(b, LOG_NOTICE, "its init or its file system's server ended: stopping it");
        box_stop(b, 0, false);
        return 0;
}

static int on_box_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Box *b = userdata;
        uint64_t now = now_usec();

        if (b->state == MSG_STATE_STOPPING)
                box_check(b);
        else if (b->remove)
                ;
        else if (b->expires_usec && now >= b->expires_usec) {
                box_log(b, LOG_INFO, "its ttl is over: removing it");
                box_stop(b, 0, true);
        } else if (b->idle_ttl_usec && b->n_execs == 0 && b->state != MSG_STATE_STOPPED &&
                   now >= b->idle_since_usec + b->idle_ttl_usec) {
                box_log(b, LOG_INFO, "its idle ttl is over: removing it");
                box_stop(b, 0, true);
        } else
                box_arm_timer(b);
        return 0;
}

/* TARGET (an id or a name) among the boxes UID may see: its own; root's names are looked up among its own
 * first, then among every uid's when only one has it. Another uid's box is not found, as one that does
 * not exist. NULL with *RET_AMBIGUOUS when several uids have that name (root). */
static Box *box_lookup(Server *srv, uid_t uid, const char *target, bool *ret_ambiguous) {
        bool is_id = msg_id_is_valid(target);
        Box *found = NULL;
        unsigned n = 0;

        *ret_ambiguous = false;
        for (Box *b = srv->boxes; b; b = b->next) {
                if (uid != 0 && b->uid != uid)
                        continue;
                if (is_id ? streq(b->id, target) : (b->uid == uid && streq(b->name, target)))
                        return b;
        }
        if (is_id || uid != 0)
                return NULL;
        for (Box *b = srv->boxes; b; b = b->next)
                if (streq(b->name, target)) {
                        found = b;
                        n++;
                }
        if (n > 1) {
                *ret_ambiguous = true;
                return NULL;
        }
        return found;
}

/* ------------------------------------------------------------------------------------------------
 * Clients
 */

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
                Session *se = c->session;
                c->session = NULL;
                se->client = NULL;
                session_abandon(se);
        }
        if (c->listing)
                c->listing->client = NULL; /* list_done() frees it */
        /* A snapshot whose client went away is finished all the same, and its answer dropped. */
        if (c->snapshot)
                c->snapshot->client = NULL;
        if (c->volume)
                c->volume->client = NULL; /* volume_done() frees it */
        /* A copy whose client went away: its helper is killed and reaped (its pipe is the client's). */
        c->copy_source = sd_event_source_disable_unref(c->copy_source);
        c->copy = sandbox_copy_free(c->copy);
        sd_event_source_disable_unref(c->io);
        client_drop_output(c);
        for (size_t i = 0; i < c->n_bind_fds; i++)
                safe_close(c->bind_fds[i]);
        wire_decoder_free(c->decoder);
        safe_close(c->fd);
        free(c);
        server_update(srv);
        return NULL;
}

/* At a point where nobody up the stack holds C: close it if it is done with. */
static void client_check(Client *c) {
        if (c->broken || (c->closing && !c->out_head))
                client_free(c);
}

/* What the connections of UID hold in the daemon: input not yet decoded, output not yet sent. */
static size_t buffered_of(Server *srv, uid_t uid) {
        size_t n = 0;
        for (Client *c = srv->clients; c; c = c->next)
                if (c->cred.uid == uid)
                        n += (c->decoder ? wire_decoder_buffered(c->decoder) : 0) + c->out_bytes;
        return n;
}

static unsigned connections_of(Server *srv, uid_t uid) {
        unsigned n = 0;
        for (Client *c = srv->clients; c; c = c->next)
                if (c->cred.uid == uid)
                        n++;
        return n;
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

/* The configuration's caps, for everyone but root. Returns a message, or NULL if the spec is fine (then
 * every bound a client other than root left out is filled in). */
static const char *check_policy(Client *c, SandboxSpec *spec, char *buf, size_t size) {
        const DaemonConfig *cfg = c->server->config;
        PolicyUsage used = {};
        unsigned mine = 0, all = 0;

        /* Sandboxes: one-shot ones and created ones that run (a program of EXEC with in is not one). */
        for (Session *se = c->server->sessions; se; se = se->next)
                if (se->kind != SESSION_EXEC_IN)
                        all++;
        for (Box *b = c->server->boxes; b; b = b->next)
                if (b->sandbox || b->cleaning)
                        all++;
        if (all >= cfg->max_sandboxes)
                return "the daemon runs as many sandboxes as it may (max-sandboxes)";
        if (c->cred.uid != 0) {
                for (Session *se = c->server->sessions; se; se = se->next)
                        if (se->uid == c->cred.uid && se->kind != SESSION_EXEC_IN) {
                                mine++;
                                policy_usage_add(&used, &se->exec.spec);
                        }
                for (Box *b = c->server->boxes; b; b = b->next)
                        if (b->uid == c->cred.uid && (b->sandbox || b->cleaning)) {
                                mine++;
                                policy_usage_add(&used, b->sandbox ? sandbox_spec(b->sandbox) : &b->spec.spec);
                        }
                if (mine >= cfg->max_per_client)
                        return "you run as many sandboxes as you may (max-sandboxes-per-client)";
                /* Binds whose source the client opened itself (sandboxctl does) are checked against the
                 * client's credentials (check_bind_sources()); paths would be resolved as root. */
                bool path_binds = false;
                for (size_t i = 0; i < spec->n_binds; i++)
                        if (!spec->binds[i].by_fd)
                                path_binds = true;
                if (!cfg->allow_host_paths && (spec->image || spec->n_layers > 0 || spec->upper || path_binds))
                        return "only root may use host paths (--image DIR, --layer, --upper, and --bind by "
                               "path rather than by descriptor) unless allow-host-paths is set";
                /* Capabilities beyond the default set: only those the configuration allows. */
                uint64_t extra = spec_capabilities(spec) & ~(SPEC_CAPS_DEFAULT | cfg->allow_cap_add);
                if (extra) {
                        char names[160];
                        spec_caps_format(extra, names, sizeof names);
                        snprintf(buf, size, "--cap-add %s: only root may add capabilities beyond the default "
                                 "set, unless allow-cap-add names them", names);
                        return buf;
                }
                if (spec->seccomp && !streq(spec->seccomp, "default"))
                        return "only root may choose another seccomp policy";
                if (spec->net == SPEC_NET_HOST && !cfg->allow_net_host)
                        return "only root may use --net host (unless allow-net-host is set)";
                /* Host ports below the floor are the host's services' (22, 25, 53, 80, ...): root's to
                 * give away. (Whether a host socket already holds a port is checked for everybody when
                 * the runtime reserves it.) */
                for (size_t i = 0; i < spec->n_publish; i++)
                        if (spec->publish[i].host_port < cfg->min_published_port) {
                                snprintf(buf, size, "--publish %u:%u%s: host ports below %u are for root only "
                                         "(min-published-port)", spec->publish[i].host_port, spec->publish[i].port,
                                         spec->publish[i].proto == IPPROTO_UDP ? "/udp" : "",
                                         cfg->min_published_port);
                                return buf;
                        }
        }
        /* The bounds: a missing one takes min(default, cap), a larger one is refused. */
        if (policy_check(cfg, &c->server->host, c->cred.uid == 0, &used, spec, buf, size) < 0)
                return buf;
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

static Session *session_queue(Client *c, MsgExec *mp, size_t want, SessionKind kind, Box *box, int *vol_fds);
static void handle_exec_in(Client *c, MsgExec *m);

/* The data directory (made 0700 if missing, as the runtime makes it), for the volumes in it. */
static int open_data_dir(Server *srv) {
        int fd;

        if (mkdir(srv->runtime.data_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = open(srv->runtime.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Whether UID's volume NAME is mounted by a sandbox (or about to be), or being made or removed; *RET_BY:
 * the sandbox's id, "" while it starts, NULL for a VOLUME_CREATE or VOLUME_RM under way. */
static bool volume_claimed(Server *srv, uid_t uid, const char *name, const char **ret_by) {
        for (Box *b = srv->boxes; b; b = b->next)
                if (b->uid == uid && (b->sandbox || b->cleaning))
                        for (unsigned i = 0; i < b->volumes.n; i++)
                                if (streq(b->volumes.names[i], name)) {
                                        *ret_by = b->id;
                                        return true;
                                }
        for (Session *se = srv->sessions; se; se = se->next)
                if (se->uid == uid)
                        for (unsigned i = 0; i < se->volumes.n; i++)
                                if (streq(se->volumes.names[i], name)) {
                                        *ret_by = se->sandbox ? sandbox_id(se->sandbox) : "";
                                        return true;
                                }
        for (Client *c = srv->clients; c; c = c->next)
                if (c->volume && c->volume->uid == uid && streq(c->volume->name, name)) {
                        *ret_by = NULL;
                        return true;
                }
        return false;
}

static void vol_fds_close(int (*fds)[MSG_VOLUMES_MAX]) {
        for (size_t i = 0; i < MSG_VOLUMES_MAX; i++)
                (*fds)[i] = safe_close((*fds)[i]);
}

/* --volume NAME:DEST[:ro]: the client's own volumes (another uid's are not looked at, so they answer as
 * missing ones), none mounted by another sandbox, each as a bind of the spec whose descriptor is the
 * volume's image (VOL_FDS, in order), which the runtime mounts (runtime/volume.c). -errno after
 * client_fail(). */
static int attach_volumes(Client *c, SandboxSpec *spec, const MsgVolumeMount *vols, size_t n,
                          int (*vol_fds)[MSG_VOLUMES_MAX], VolumeClaims *ret_claims) {
        Server *srv = c->server;
        _cleanup_close_ int data_fd = -EBADF;
        VolumeClaims claims = {};
        int r;

        if (n == 0)
                return 0;
        if (spec->n_binds + n > SPEC_MOUNTS_MAX) {
                client_fail(c, SANDBOX_EXIT_SETUP, -E2BIG, "more than %d binds and volumes together", SPEC_MOUNTS_MAX);
                return -E2BIG;
        }
        data_fd = open_data_dir(srv);
        if (data_fd < 0) {
                r = data_fd;
                client_fail(c, SANDBOX_EXIT_SETUP, r, "--volume: cannot open %s: %s", srv->runtime.data_dir,
                            strerror(-r));
                return r;
        }
        SpecBind *binds = reallocarray(spec->binds, spec->n_binds + n, sizeof *binds);
        if (!binds) {
                client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        spec->binds = binds;
        for (size_t i = 0; i < n; i++) {
                const MsgVolumeMount *v = &vols[i];
                const char *by;
                char source[MSG_VOLUME_NAME_MAX + 64];

                for (size_t j = 0; j < i; j++)
                        if (streq(vols[j].name, v->name)) {
                                client_fail(c, SANDBOX_EXIT_SETUP, -EINVAL,
                                            "--volume '%s' is given twice: a sandbox mounts a volume once", v->name);
                                return -EINVAL;
                        }
                if (volume_claimed(srv, c->cred.uid, v->name, &by)) {
                        client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "volume '%s' is in use %s%s%s", v->name,
                                    !by ? "(being created or removed)" : !by[0] ? "by a sandbox being started" :
                                    "by sandbox ", by ?: "", by && by[0] ? ": a volume is mounted by one sandbox at a "
                                    "time" : "");
                        return -EBUSY;
                }
                r = volume_open(data_fd, c->cred.uid, v->name, &(*vol_fds)[i]);
                if (r == -ENOENT) {
                        client_fail(c, SANDBOX_EXIT_SETUP, r, "no volume '%s' (make it with 'sandboxctl volume create "
                                    "%s')", v->name, v->name);
                        return r;
                }
                if (r < 0) {
                        client_fail(c, SANDBOX_EXIT_SETUP, r, "volume '%s': cannot open it: %s", v->name, strerror(-r));
                        return r;
                }
                snprintf(source, sizeof source, "/" VOLUMES_DIR "/uid-%u/%s", (unsigned) c->cred.uid, v->name);
                SpecBind b = {
                        .source = strdup(source),
                        .dest = strdup(v->dest),
                        .readonly = v->readonly,
                        .by_fd = true,
                        .volume = true,
                };
                if (!b.source || !b.dest) {
                        free(b.source);
                        free(b.dest);
                        client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                        return -ENOMEM;
                }
                spec->binds[spec->n_binds++] = b;
                memcpy(claims.names[claims.n++], v->name, strlen(v->name) + 1);
        }
        *ret_claims = claims;
        return 0;
}

static void handle_exec(Client *c, WireFrame *f) {
        /* Not {}: msg_exec_done() would close our fds 0, 1 and 2 when the decoding fails. */
        _cleanup_(msg_exec_done) MsgExec m = { .stdio = { -EBADF, -EBADF, -EBADF } };
        const char *e = NULL;
        char why[512];
        int r;

        if (c->session)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "this connection already runs a sandbox");
        r = msg_exec_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed EXEC: %s", e ?: "invalid");
        if (m.in[0])
                return handle_exec_in(c, &m);
        if (c->version < 5 && m.n_volumes > 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: volumes need version 5");
        /* Each bind "by descriptor" takes the next of the descriptors BIND_FDS brought, in order. */
        size_t want = 0;
        for (size_t i = 0; i < m.spec.n_binds; i++)
                if (m.spec.binds[i].by_fd)
                        want++;
        if (want != c->n_bind_fds)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBADMSG,
                                   "malformed EXEC: %zu binds by descriptor, but %zu descriptors came before it",
                                   want, c->n_bind_fds);
        e = check_policy(c, &m.spec, why, sizeof why);
        if (e)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM, "permission denied: %s", e);
        _cleanup_(vol_fds_close) int vol_fds[MSG_VOLUMES_MAX] = { -EBADF, -EBADF, -EBADF, -EBADF,
                                                                 -EBADF, -EBADF, -EBADF, -EBADF };
        VolumeClaims claims = {};
        if (attach_volumes(c, &m.spec, m.volumes, m.n_volumes, &vol_fds, &claims) < 0)
                return;
        Session *se = session_queue(c, &m, want, SESSION_EXEC, NULL, vol_fds);
        if (se)
                se->volumes = claims;
}

/* A session for M (taken over on success) of KIND, in the start queue. NULL after client_fail(). */
static Session *session_queue(Client *c, MsgExec *mp, size_t want, SessionKind kind, Box *box, int *vol_fds) {
        _cleanup_(msg_exec_done) MsgExec m = *mp;
        Server *srv = c->server;
        Session *se, **p;
        int r;

        *mp = (MsgExec) { .stdio = { -EBADF, -EBADF, -EBADF } };

        /* The client's groups, for the checks of its bind sources as the client (on a worker). */
        _cleanup_free_ gid_t *groups = NULL;
        size_t n_groups = 0;
        if (c->cred.uid != 0 && want > 0) {
                r = wire_get_peer_groups(c->fd, &groups, &n_groups);
                if (r < 0) {
                        client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot read the client's groups: %s", strerror(-r));
                        return NULL;
                }
        }
        _cleanup_free_ int *bind_fds = m.spec.n_binds > 0 ? malloc(m.spec.n_binds * sizeof(int)) : NULL;
        if (m.spec.n_binds > 0 && !bind_fds) {
                client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                return NULL;
        }
        se = calloc(1, sizeof *se);
        if (!se) {
                client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                return NULL;
        }
        se->server = srv;
        se->kind = kind;
        se->uid = c->cred.uid;
        se->gid = c->cred.gid;
        se->state = SESSION_QUEUED;
        se->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (se->cancel_fd < 0) {
                r = -errno;
                free(se);
                client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot make an eventfd: %s", strerror(-r));
                return NULL;
        }
        /* Nothing fails from here on: the session takes the client's bind descriptors over. */
        for (size_t i = 0, k = 0, v = 0; i < m.spec.n_binds; i++)
                bind_fds[i] = m.spec.binds[i].volume ? TAKE_FD(vol_fds[v++]) :
                              m.spec.binds[i].by_fd ? c->bind_fds[k++] : -EBADF;
        c->n_bind_fds = 0;
        se->bind_fds = TAKE_PTR(bind_fds);
        se->groups = TAKE_PTR(groups);
        se->n_groups = n_groups;
        se->exec = m;
        se->exec.spec.bind_fds = se->bind_fds;
        m = (MsgExec) { .stdio = { -EBADF, -EBADF, -EBADF } };
        se->client = c;
        /* CREATE: no more requests until it is created (CREATED or ERROR answers; client_process()). */
        c->session = se;
        if (box) {
                se->box = box;
                box->n_execs++;
                box_arm_timer(box);
        }
        /* At the end: the start queue is the list's order. */
        for (p = &srv->sessions; *p; p = &(*p)->next)
                ;
        *p = se;
        srv->n_sessions++;
        server_schedule(srv);
        server_update(srv);
        return se;
}

/* EXEC with in: one more program in a created sandbox. */
static void handle_exec_in(Client *c, MsgExec *m) {
        const DaemonConfig *cfg = c->server->config;
        bool ambiguous;
        char why[512];
        Box *b;

        if (c->version < 4)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: EXEC with in needs version 4");
        if (c->n_bind_fds > 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBADMSG,
                                   "malformed EXEC: a program of a created sandbox takes no bind sources");
        b = box_lookup(c->server, c->cred.uid, m->in, &ambiguous);
        if (!b)
                return client_fail(c, SANDBOX_EXIT_SETUP, ambiguous ? -ENOTUNIQ : -ESRCH,
                                   ambiguous ? "sandbox name '%s' is used by several users: give its id"
                                             : "no sandbox '%s'", m->in);
        if (b->state == MSG_STATE_PAUSED)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "sandbox %s is paused: resume it first", m->in);
        if (b->state != MSG_STATE_RUNNING)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ESRCH, "sandbox %s is %s", m->in,
                                   msg_state_to_string(b->state));
        if (policy_check_exec_in(cfg, c->cred.uid == 0, &m->spec, why, sizeof why) < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM, "permission denied: %s", why);
        (void) session_queue(c, m, 0, SESSION_EXEC_IN, b, NULL);
}

static void handle_create(Client *c, WireFrame *f) {
        _cleanup_(msg_create_done) MsgCreate m = {};
        const DaemonConfig *cfg = c->server->config;
        Server *srv = c->server;
        uid_t uid = c->cred.uid;
        unsigned mine = 0;
        const char *e = NULL;
        char why[512];
        int r;

        if (c->version < 4)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: CREATE needs version 4");
        if (c->session)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "this connection already runs a sandbox");
        r = msg_create_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed CREATE: %s", e ?: "invalid");
        size_t want = 0;
        for (size_t i = 0; i < m.spec.n_binds; i++)
                if (m.spec.binds[i].by_fd)
                        want++;
        if (want != c->n_bind_fds)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBADMSG,
                                   "malformed CREATE: %zu binds by descriptor, but %zu descriptors came before it",
                                   want, c->n_bind_fds);
        /* Names are per uid; a created sandbox counts from its CREATE to its RM (stopped ones too). */
        for (Box *b = srv->boxes; b; b = b->next)
                if (b->uid == uid) {
                        if (m.name[0] && streq(b->name, m.name))
                                return client_fail(c, SANDBOX_EXIT_SETUP, -EEXIST,
                                                   "you have a sandbox named '%s' already (%s)", m.name, b->id);
                        mine++;
                }
        for (Session *se = srv->sessions; se; se = se->next)
                if (se->kind == SESSION_CREATE && se->uid == uid) {
                        if (m.name[0] && streq(se->name, m.name))
                                return client_fail(c, SANDBOX_EXIT_SETUP, -EEXIST,
                                                   "a sandbox named '%s' is being created already", m.name);
                        mine++;
                }
        if (uid != 0 && mine >= cfg->max_created_per_uid)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EUSERS,
                                   "permission denied: you have %u created sandboxes (max-created-per-uid = %u): "
                                   "remove one first (sandboxctl rm)", mine, cfg->max_created_per_uid);
        if (policy_check_ttl(cfg, uid == 0, &m.ttl_usec, &m.idle_ttl_usec, why, sizeof why) < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM, "permission denied: %s", why);
        e = check_policy(c, &m.spec, why, sizeof why);
        if (e)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM, "permission denied: %s", e);
        /* The policy fills in a one-shot sandbox's wall clock; here it bounds each program (exec --in). */
        m.spec.timeout_usec = 0;
        m.spec.cpu_time_usec = 0;

        _cleanup_(vol_fds_close) int vol_fds[MSG_VOLUMES_MAX] = { -EBADF, -EBADF, -EBADF, -EBADF,
                                                                 -EBADF, -EBADF, -EBADF, -EBADF };
        VolumeClaims claims = {};
        if (c->version < 5 && m.n_volumes > 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: volumes need version 5");
        if (attach_volumes(c, &m.spec, m.volumes, m.n_volumes, &vol_fds, &claims) < 0)
                return;
        MsgExec x = { .spec = m.spec, .stdio = { -EBADF, -EBADF, -EBADF } };
        m.spec = (SandboxSpec) {};
        Session *se = session_queue(c, &x, want, SESSION_CREATE, NULL, vol_fds);
        if (!se)
                return;
        se->volumes = claims;
        snprintf(se->name, sizeof se->name, "%s", m.name);
        se->ttl_usec = m.ttl_usec;
        se->idle_ttl_usec = m.idle_ttl_usec;
}

/* STOP, RM, PAUSE, RESUME. */
static void handle_target(Client *c, WireFrame *f) {
        const char *what = msg_type_to_string(f->type), *e = NULL;
        bool ambiguous;
        MsgTarget m;
        Box *b;
        int r;

        if (c->version < 4)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: %s needs version 4", what);
        r = msg_target_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed %s: %s", what, e ?: "invalid");
        if (m.timeout_usec > MSG_TTL_MAX_USEC)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EINVAL, "STOP: a grace of more than a year");
        b = box_lookup(c->server, c->cred.uid, m.target, &ambiguous);
        if (!b)
                return client_fail(c, SANDBOX_EXIT_SETUP, ambiguous ? -ENOTUNIQ : -ESRCH,
                                   ambiguous ? "sandbox name '%s' is used by several users: give its id"
                                             : "no sandbox '%s'", m.target);
        switch (f->type) {
        case MSG_PAUSE:
        case MSG_RESUME: {
                bool pause = f->type == MSG_PAUSE;
                if (b->state != MSG_STATE_RUNNING && b->state != MSG_STATE_PAUSED)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "sandbox %s is %s", m.target,
                                           msg_state_to_string(b->state));
                r = pause ? sandbox_pause(b->sandbox) : sandbox_resume(b->sandbox);
                if (r < 0)
                        return client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot %s sandbox %s: %s",
                                           pause ? "pause" : "resume", m.target, strerror(-r));
                b->state = pause ? MSG_STATE_PAUSED : MSG_STATE_RUNNING;
                box_log(b, LOG_INFO, pause ? "paused" : "resumed");
                return reply_ok(c);
        }
        case MSG_STOP:
                c->waiting = b;
                return box_stop(b, m.timeout_usec ?: STOP_GRACE_USEC, false);
        case MSG_RM:
                if (!m.force && b->state != MSG_STATE_STOPPED)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY,
                                           "sandbox %s is %s: stop it first, or remove it with rm -f", m.target,
                                           msg_state_to_string(b->state));
                c->waiting = b;
                return box_stop(b, 0, true);
        default:
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: unexpected %s", what);
        }
}

/* The copy's helper ended: OK, or ERROR with its reason (the connection then takes no more requests). */
static int on_copy_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        SandboxError err = {};
        int r;

        c->copy_source = sd_event_source_disable_unref(c->copy_source);
        r = sandbox_copy_finish(c->copy, &err);
        c->copy = sandbox_copy_free(c->copy);
        if (r < 0)
                client_fail(c, 1, r, "%s", err.message);
        else
                reply_ok(c);
        client_process(c);
        client_check(c);
        return 0;
}

/* COPY (sandboxctl cp): the helper packs or unpacks inside the sandbox, on the client's pipe; the loop
 * only watches it end. A running sandbox only (a paused one would freeze the helper too). */
static void handle_copy(Client *c, WireFrame *f) {
        _cleanup_(msg_copy_done) MsgCopy m = { .fd = -EBADF };
        const char *e = NULL;
        SandboxError err = {};
        bool ambiguous;
        Box *b;
        int r;

        if (c->version < 4)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: COPY needs version 4");
        r = msg_copy_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed COPY: %s", e ?: "invalid");
        b = box_lookup(c->server, c->cred.uid, m.target, &ambiguous);
        if (!b)
                return client_fail(c, SANDBOX_EXIT_SETUP, ambiguous ? -ENOTUNIQ : -ESRCH,
                                   ambiguous ? "sandbox name '%s' is used by several users: give its id"
                                             : "no sandbox '%s'", m.target);
        if (b->state != MSG_STATE_RUNNING || !b->sandbox)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "sandbox %s is %s: copies need a running sandbox",
                                   m.target, msg_state_to_string(b->state));
        r = sandbox_copy_start(b->sandbox, m.direction == MSG_COPY_IN ? SANDBOX_COPY_IN : SANDBOX_COPY_OUT, m.path,
                               m.fd, &c->copy, &err);
        if (r < 0)
                return client_fail(c, err.status ?: SANDBOX_EXIT_SETUP, r, "%s", err.message);
        /* Our copy of the client's pipe goes: the helper holds the only one on this side. */
        m.fd = safe_close(m.fd);
        r = sd_event_add_io(c->server->event, &c->copy_source, sandbox_copy_pidfd(c->copy), EPOLLIN, on_copy_done,
                            c);
        if (r < 0) {
                c->copy = sandbox_copy_free(c->copy);
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot watch the copy: %s", strerror(-r));
        }
}

/* SNAPSHOT: the union's snapshot of the sandbox's upper is taken here (the programs are frozen meanwhile),
 * into DATA/snapshots/; a worker turns it into an image of the store (image_store_commit()) and removes it. */

static void snapshot_run(Work *w) {
        SnapshotWork *sw = container_of(w, SnapshotWork, work);
        const DaemonConfig *cfg = sw->server->config;
        _cleanup_(image_store_freep) ImageStore *store = NULL;
        _cleanup_(image_freep) Image *base = NULL, *img = NULL;
        _cleanup_close_ int upper_fd = -EBADF;
        const char *path = cfg->store[0] ? cfg->store : IMAGE_STORE_DEFAULT;
        ImageReport rep = {};
        char created_by[128], own[64];
        int r;

        r = image_store_open(path, false, &store, &rep);
        if (r >= 0 && sw->max_count > 0) {
                Image **l = NULL;
                size_t n = 0;
                unsigned mine = 0;
                snprintf(own, sizeof own, SNAPSHOT_DOMAIN "/uid-%u/", (unsigned) sw->uid);
                r = image_store_list(store, &l, &n, &rep);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        for (char **x = l[i]->refs; x && *x; x++)
                                mine += startswith(*x, own) && !streq(*x, sw->reference);
                image_list_free(l, n);
                if (r >= 0 && mine >= sw->max_count) {
                        r = -EDQUOT;
                        snprintf(rep.error, sizeof rep.error, "you have %u snapshots (max-snapshots-per-uid = %u): "
                                 "this daemon keeps no more for one user", mine, sw->max_count);
                }
        }
        if (r >= 0)
                r = image_store_lookup(store, sw->base, &base, &rep);
        if (r >= 0) {
                upper_fd = openat(sw->dir_fd, sw->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (upper_fd < 0) {
                        r = -errno;
                        snprintf(rep.error, sizeof rep.error, "cannot open the snapshot: %s", strerror(-r));
                }
        }
        if (r >= 0) {
                snprintf(created_by, sizeof created_by, "sandboxctl snapshot %s (uid %u)", sw->box_id,
                         (unsigned) sw->uid);
                ImageCommitOptions o = { .name = sw->reference, .created_by = created_by, .max_size = sw->max_size };
                r = image_store_commit(store, base, upper_fd, &o, &img, &rep);
        }
        if (r >= 0) {
                snprintf(sw->id, sizeof sw->id, "%s", img->id);
                sw->layer_bytes = img->n_layers > 0 ? img->layers[0].size : 0;
        } else
                snprintf(sw->error, sizeof sw->error, "%s", rep.error[0] ? rep.error : strerror(-r));
        sw->r = r;
        upper_fd = safe_close(upper_fd);
        (void) rm_tree_at(sw->dir_fd, sw->name);
}

static void snapshot_done(Work *w) {
        SnapshotWork *sw = container_of(w, SnapshotWork, work);
        Server *srv = sw->server;
        Client *c = sw->client;

        if (sw->r >= 0)
                log_sandbox_id(srv, LOG_INFO, sw->box_id, sw->uid, sw->reference, "snapshot stored as an image");
        if (c) {
                c->snapshot = NULL;
                if (sw->r < 0)
                        client_fail(c, SANDBOX_EXIT_SETUP, sw->r, "snapshot: %s", sw->error);
                else {
                        _cleanup_(wire_buffer_done) WireBuffer buf = {};
                        MsgSnapshotReply m = { .layer_bytes = sw->layer_bytes, .pause_usec = sw->pause_usec };
                        snprintf(m.id, sizeof m.id, "%s", sw->id);
                        snprintf(m.reference, sizeof m.reference, "%s", sw->reference);
                        if (msg_snapshot_reply_encode(&m, &buf) < 0 ||
                            send_message(c, MSG_SNAPSHOT_REPLY, &buf, NULL, 0) < 0)
                                c->broken = true;
                }
        }
        safe_close(sw->dir_fd);
        free(sw);
        srv->n_cleanups--;
        if (c) {
                client_process(c);
                client_check(c);
        }
        server_update(srv);
}

static void handle_snapshot(Client *c, WireFrame *f) {
        Server *srv = c->server;
        const DaemonConfig *cfg = srv->config;
        _cleanup_free_ SnapshotWork *sw = NULL;
        _cleanup_close_ int data_fd = -EBADF;
        const char *e = NULL;
        SandboxSnapshotResult res = {};
        SandboxError err = {};
        MsgSnapshot m;
        char dest[PATH_MAX];
        bool ambiguous;
        Box *b;
        int r;

        if (c->version < 4)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: SNAPSHOT needs version 4");
        r = msg_snapshot_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed SNAPSHOT: %s", e ?: "invalid");
        b = box_lookup(srv, c->cred.uid, m.target, &ambiguous);
        if (!b)
                return client_fail(c, SANDBOX_EXIT_SETUP, ambiguous ? -ENOTUNIQ : -ESRCH,
                                   ambiguous ? "sandbox name '%s' is used by several users: give its id"
                                             : "no sandbox '%s'", m.target);
        if ((b->state != MSG_STATE_RUNNING && b->state != MSG_STATE_PAUSED) || !b->sandbox)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "sandbox %s is %s: snapshots need a running sandbox",
                                   m.target, msg_state_to_string(b->state));
        const char *base = sandbox_image_id(b->sandbox);
        const SandboxSpec *spec = sandbox_spec(b->sandbox);
        if (!base || !startswith(base, "sha256:") || strlen(base) >= MSG_DIGEST_MAX || spec->n_layers > 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EOPNOTSUPP,
                                   "sandbox %s does not run an image of the store alone: snapshots are taken of "
                                   "sandboxes made with create --image IMAGE (and no --layer)", m.target);
        if (strchr(m.image, '@'))
                return client_fail(c, SANDBOX_EXIT_SETUP, -EINVAL,
                                   "snapshot: '%s' is a digest: name the snapshot NAME[:TAG]", m.image);
        for (Client *o = srv->clients; o; o = o->next)
                if (o->snapshot && o->cred.uid == c->cred.uid)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY,
                                           "snapshot: another snapshot of yours is being stored: one at a time");

        sw = calloc(1, sizeof *sw);
        if (!sw)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
        *sw = (SnapshotWork) {
                .work = { .run = snapshot_run, .done = snapshot_done },
                .server = srv,
                .client = c,
                .uid = c->cred.uid,
                .dir_fd = -EBADF,
                .max_count = c->cred.uid == 0 ? 0 : cfg->max_snapshots_per_uid,
                .max_size = c->cred.uid == 0 ? 0 : cfg->max_snapshot_size,
        };
        snprintf(sw->box_id, sizeof sw->box_id, "%s", b->id);
        snprintf(sw->base, sizeof sw->base, "%s", base);
        if (snapshot_reference(c->cred.uid, m.image, sw->reference, sizeof sw->reference) < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENAMETOOLONG, "snapshot: the name '%s' is too long", m.image);
        {
                /* checked here, before the sandbox is frozen for nothing; the store keys it canonical */
                _cleanup_(image_ref_freep) ImageRef *ref = NULL;
                _cleanup_free_ char *canonical = NULL;
                char own[64];
                snprintf(own, sizeof own, SNAPSHOT_DOMAIN "/uid-%u/", (unsigned) c->cred.uid);
                if (image_ref_parse(sw->reference, &ref) < 0 || ref->digest || image_ref_string(ref, &canonical) < 0 ||
                    !startswith(canonical, own) || strlen(canonical) >= sizeof sw->reference)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EINVAL,
                                           "snapshot: '%s' is not an image name NAME[:TAG] (lowercase letters, "
                                           "digits, '.', '_', '-' and '/' in the name; a tag of up to 128 letters, "
                                           "digits, '.', '_', '-')", m.image);
                strcpy(sw->reference, canonical);
        }

        const char *data_dir = srv->runtime.data_dir;
        data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (data_fd < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -errno, "snapshot: cannot open %s: %m", data_dir);
        if (mkdirat(data_fd, "snapshots", 0700) < 0 && errno != EEXIST)
                return client_fail(c, SANDBOX_EXIT_SETUP, -errno, "snapshot: cannot make %s/snapshots: %m", data_dir);
        sw->dir_fd = openat(data_fd, "snapshots", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sw->dir_fd < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, -errno, "snapshot: cannot open %s/snapshots: %m", data_dir);
        static unsigned counter;
        snprintf(sw->name, sizeof sw->name, "%s-%u", b->id, counter++);
        (void) rm_tree_at(sw->dir_fd, sw->name);
        snprintf(dest, sizeof dest, "%s/snapshots/%s", data_dir, sw->name);
        r = sandbox_snapshot(b->sandbox, dest, b->state == MSG_STATE_PAUSED ? SANDBOX_SNAPSHOT_KEEP_FROZEN : 0, &res,
                             &err);
        if (r < 0) {
                (void) rm_tree_at(sw->dir_fd, sw->name);
                safe_close(sw->dir_fd);
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "%s", err.message);
        }
        sw->pause_usec = res.pause_usec;
        box_log(b, LOG_INFO, "snapshot taken");
        c->snapshot = sw;
        srv->n_cleanups++;
        workpool_submit(srv->cleanups, &TAKE_PTR(sw)->work);
}

/* Descriptors of bind sources for the EXEC that follows, opened by the client with its own credentials:
 * the daemon never resolves a client's path. At most SPEC_MOUNTS_MAX per connection. */
static void handle_bind_fds(Client *c, WireFrame *f) {
        _cleanup_(msg_bind_fds_done) MsgBindFds m = {};
        const char *e = NULL;
        int r;

        if (c->version < 3)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: BIND_FDS needs version 3");
        if (c->session)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: BIND_FDS after EXEC");
        r = msg_bind_fds_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed BIND_FDS: %s", e ?: "invalid");
        if (c->n_bind_fds + m.n_fds > SPEC_MOUNTS_MAX)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EMSGSIZE,
                                   "more than %d bind sources sent as descriptors", SPEC_MOUNTS_MAX);
        for (size_t i = 0; i < m.n_fds; i++) {
                c->bind_fds[c->n_bind_fds++] = m.fds[i];
                m.fds[i] = -EBADF;
        }
}

static Sandbox *running_sandbox(Client *c) {
        return c->session && c->session->state == SESSION_RUNNING ? c->session->sandbox : NULL;
}

/* The program of an exec --in session, while it runs. */
static SandboxExec *running_program(Client *c) {
        return c->session && c->session->state == SESSION_RUNNING ? c->session->program : NULL;
}

static void handle_signal(Client *c, WireFrame *f) {
        MsgSignal m;
        const char *e = NULL;
        int r = msg_signal_decode(f, &m, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed SIGNAL: %s", e ?: "invalid");
        if (running_program(c))
                /* exec --in: the signal is for that program (its session), not the sandbox's init */
                (void) sandbox_exec_signal(running_program(c), (int) m.signal);
        else if (running_sandbox(c))
                (void) sandbox_signal(running_sandbox(c), (int) m.signal);
}

static void handle_resize(Client *c, WireFrame *f) {
        MsgResize m;
        const char *e = NULL;
        int r = msg_resize_decode(f, &m, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed RESIZE: %s", e ?: "invalid");
        int pty = running_program(c) ? sandbox_exec_pty_fd(running_program(c)) :
                  running_sandbox(c) ? sandbox_pty_fd(running_sandbox(c)) : -EBADF;
        if (pty >= 0) {
                struct winsize ws = { .ws_row = (unsigned short) m.rows, .ws_col = (unsigned short) m.cols };
                (void) ioctl(pty, TIOCSWINSZ, &ws);
        }
}

/* What a sandbox uses now, for LIST (its disk use asks its union's server: statfs, which it answers from
 * its own counters). */

static ListWork *list_work_free(ListWork *lw) {
        for (size_t i = 0; i < lw->n; i++) {
                free(lw->entries[i].command);
                free(lw->entries[i].image);
                safe_close(lw->root_fds[i]);
        }
        free(lw->entries);
        free(lw->root_fds);
        free(lw);
        return NULL;
}

static void list_run(Work *w) {
        ListWork *lw = container_of(w, ListWork, work);

        for (size_t i = 0; i < lw->n; i++) {
                SandboxUsage u = {};
                if (lw->root_fds[i] >= 0 && sandbox_disk_usage_at(lw->root_fds[i], &u) >= 0)
                        lw->entries[i].disk_bytes = u.disk_bytes;
        }
}

static void list_done(Work *w) {
        ListWork *lw = container_of(w, ListWork, work);
        Client *c = lw->client;

        if (c) {
                _cleanup_(wire_buffer_done) WireBuffer b = {};
                MsgListReply reply = { .entries = lw->entries, .n_entries = lw->n };

                c->listing = NULL;
                if (msg_list_reply_encode_version(&reply, c->version, &b) < 0 ||
                    send_message(c, MSG_LIST_REPLY, &b, NULL, 0) < 0)
                        client_fail(c, SANDBOX_EXIT_SETUP, -EIO, "cannot reply");
                client_process(c);
                client_check(c);
        }
        list_work_free(lw);
}

/* What a sandbox runs and uses now (memory and CPU from its cgroup); its root for the disk use. */
static int list_fill(MsgListEntry *en, int *ret_root_fd, Sandbox *sb, const char *image) {
        const SandboxSpec *spec = sandbox_spec(sb);
        SandboxUsage u;

        en->image = strdup(image ?: image_label(sb));
        if (!en->image)
                return -ENOMEM;
        en->memory_max = spec->memory_max;
        en->disk_max = spec->disk_max;
        if (sandbox_usage_cgroup(sb, &u) >= 0) {
                en->memory_bytes = u.memory_bytes;
                en->cpu_usec = u.cpu_usec;
        }
        if (spec->disk_max != SPEC_UNLIMITED)
                *ret_root_fd = sandbox_root_fd(sb);
        return 0;
}

static void handle_list(Client *c, WireFrame *f) {
        Server *srv = c->server;
        const char *e = NULL;
        ListWork *lw;
        size_t max;
        int r = msg_list_decode(f, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed LIST: %s", e ?: "invalid");
        max = MIN((size_t) srv->n_sessions + srv->n_boxes, (size_t) MSG_LIST_ENTRIES_MAX);
        lw = calloc(1, sizeof *lw);
        if (lw) {
                lw->entries = calloc(max + 1, sizeof *lw->entries);
                lw->root_fds = malloc((max + 1) * sizeof *lw->root_fds);
        }
        if (!lw || !lw->entries || !lw->root_fds) {
                if (lw) {
                        free(lw->entries);
                        free(lw->root_fds);
                        free(lw);
                }
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
        }
        lw->work = (Work) { .run = list_run, .done = list_done };
        /* Root sees every sandbox; others see their own. Sandboxes still being set up have no id. */
        for (Session *se = srv->sessions; se && lw->n < max; se = se->next) {
                if (se->kind != SESSION_EXEC || se->state != SESSION_RUNNING ||
                    (c->cred.uid != 0 && se->uid != c->cred.uid))
                        continue;
                MsgListEntry *en = &lw->entries[lw->n];
                lw->root_fds[lw->n++] = -EBADF;
                snprintf(en->id, sizeof en->id, "%s", sandbox_id(se->sandbox));
                en->uid = se->uid;
                en->pid = (uint32_t) sandbox_pid(se->sandbox);
                en->command = strdup(sandbox_command(se->sandbox));
                en->started_usec = se->started_realtime_usec;
                en->kind = MSG_KIND_EXEC;
                en->state = MSG_STATE_RUNNING;
                if (!en->command || list_fill(en, &lw->root_fds[lw->n - 1], se->sandbox, NULL) < 0) {
                        list_work_free(lw);
                        return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                }
        }
        for (Box *bx = srv->boxes; bx && lw->n < max; bx = bx->next) {
                if ((c->cred.uid != 0 && bx->uid != c->cred.uid) || (c->version < 4 && !bx->sandbox))
                        continue;
                MsgListEntry *en = &lw->entries[lw->n];
                lw->root_fds[lw->n++] = -EBADF;
                snprintf(en->id, sizeof en->id, "%s", bx->id);
                snprintf(en->name, sizeof en->name, "%s", bx->name);
                en->uid = bx->uid;
                en->pid = bx->sandbox ? (uint32_t) sandbox_pid(bx->sandbox) : 0;
                en->command = strdup("");
                en->started_usec = bx->created_realtime_usec;
                en->kind = MSG_KIND_CREATED;
                en->state = bx->state;
                en->execs = bx->n_execs;
                en->expires_usec = bx->expires_realtime_usec;
                en->idle_ttl_usec = bx->idle_ttl_usec;
                if (!en->command ||
                    (bx->sandbox && !bx->cleaning ? list_fill(en, &lw->root_fds[lw->n - 1], bx->sandbox, bx->image)
                                                  : !(en->image = strdup(bx->image)) ? -ENOMEM : 0) < 0) {
                        list_work_free(lw);
                        return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
                }
        }
        lw->client = c;
        c->listing = lw;
        workpool_submit(srv->cleanups, &lw->work);
}

static void handle_kill(Client *c, WireFrame *f) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgKill m;
        const char *e = NULL;
        int r = msg_kill_decode(f, &m, &e);

        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed KILL: %s", e ?: "invalid");
        for (Session *se = c->server->sessions; se; se = se->next) {
                if (se->kind != SESSION_EXEC || se->state != SESSION_RUNNING || !streq(sandbox_id(se->sandbox), m.id))
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

/* ------------------------------------------------------------------------------------------------
 * Volumes
 */

static void volume_run(Work *w) {
        VolumeWork *vw = container_of(w, VolumeWork, work);

        if (vw->type == MSG_VOLUME_CREATE)
                vw->r = volume_create(vw->data_fd, vw->uid, vw->name, vw->size, vw->max_count, vw->error,
                                      sizeof vw->error);
        else {
                vw->r = volume_remove(vw->data_fd, vw->uid, vw->name);
                if (vw->r == -ENOENT)
                        snprintf(vw->error, sizeof vw->error, "no volume '%s'", vw->name);
                else if (vw->r < 0)
                        snprintf(vw->error, sizeof vw->error, "cannot remove volume '%s': %s", vw->name,
                                 strerror(-vw->r));
        }
}

static void volume_done(Work *w) {
        VolumeWork *vw = container_of(w, VolumeWork, work);
        Server *srv = vw->server;
        Client *c = vw->client;
        char what[MSG_VOLUME_NAME_MAX + 64];

        snprintf(what, sizeof what, "volume '%s' of uid %u %s", vw->name, (unsigned) vw->uid,
                 vw->type == MSG_VOLUME_CREATE ? "created" : "removed");
        if (vw->r >= 0)
                log_info("%s", what);
        if (c) {
                c->volume = NULL;
                if (vw->r < 0)
                        client_fail(c, SANDBOX_EXIT_SETUP, vw->r, "%s", vw->error);
                else
                        reply_ok(c);
        }
        safe_close(vw->data_fd);
        free(vw);
        srv->n_cleanups--;
        if (c) {
                client_process(c);
                client_check(c);
        }
        server_update(srv);
}

static void handle_volume(Client *c, WireFrame *f) {
        Server *srv = c->server;
        const DaemonConfig *cfg = srv->config;
        _cleanup_free_ VolumeWork *vw = NULL;
        const char *e = NULL, *by;
        MsgVolume m;
        uid_t uid;
        int r;

        if (c->version < 5)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: %s needs version 5",
                                   msg_type_to_string(f->type));
        r = msg_volume_decode(f, &m, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed %s: %s", msg_type_to_string(f->type),
                                   e ?: "invalid");
        uid = c->cred.uid;
        if (m.has_uid) {
                if (c->cred.uid != 0)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM,
                                           "permission denied: only root names another user's volume");
                uid = m.uid;
        }
        if (volume_claimed(srv, uid, m.name, &by))
                return client_fail(c, SANDBOX_EXIT_SETUP, -EBUSY, "volume '%s' is in use %s%s%s", m.name,
                                   !by ? "(being created or removed)" : !by[0] ? "by a sandbox being started" :
                                   "by sandbox ", by ?: "", by && by[0] ? ": remove the sandbox first" : "");
        if (f->type == MSG_VOLUME_CREATE) {
                if (m.size == 0)
                        m.size = uid == 0 ? CONFIG_DEFAULT_VOLUME_SIZE : MIN(CONFIG_DEFAULT_VOLUME_SIZE,
                                                                             cfg->max_volume_size);
                if (m.size < VOLUME_SIZE_MIN || m.size > VOLUME_SIZE_MAX)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EINVAL,
                                           "volume size %" PRIu64 " is out of range: a volume is from 16M to 16T",
                                           m.size);
                if (uid != 0 && m.size > cfg->max_volume_size)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EPERM,
                                           "permission denied: volume size %" PRIu64 " is above this daemon's "
                                           "max-volume-size (%" PRIu64 " bytes)", m.size, cfg->max_volume_size);
        }
        vw = calloc(1, sizeof *vw);
        if (!vw)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
        *vw = (VolumeWork) {
                .work = { .run = volume_run, .done = volume_done },
                .server = srv,
                .client = c,
                .type = f->type,
                .uid = uid,
                .size = m.size,
                .max_count = uid == 0 ? 0 : cfg->max_volumes_per_uid,
                .data_fd = open_data_dir(srv),
        };
        memcpy(vw->name, m.name, sizeof vw->name);
        if (vw->data_fd < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, vw->data_fd, "volume: cannot open %s: %s",
                                   srv->runtime.data_dir, strerror(-vw->data_fd));
        c->volume = vw;
        srv->n_cleanups++;
        workpool_submit(srv->cleanups, &TAKE_PTR(vw)->work);
}

static void handle_volume_list(Client *c, WireFrame *f) {
        Server *srv = c->server;
        _cleanup_(wire_buffer_done) WireBuffer buf = {};
        _cleanup_free_ VolumeInfo *v = NULL;
        _cleanup_free_ MsgVolumeEntry *entries = NULL;
        _cleanup_close_ int data_fd = -EBADF;
        const char *e = NULL;
        size_t n = 0;
        int r;

        if (c->version < 5)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: VOLUME_LIST needs version 5");
        r = msg_volume_list_decode(f, &e);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed VOLUME_LIST: %s", e ?: "invalid");
        data_fd = open_data_dir(srv);
        if (data_fd < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, data_fd, "volume: cannot open %s: %s", srv->runtime.data_dir,
                                   strerror(-data_fd));
        /* Root sees every uid's volumes; another uid its own only. */
        r = volume_list(data_fd, c->cred.uid == 0, c->cred.uid, &v, &n);
        if (r < 0)
                return client_fail(c, SANDBOX_EXIT_SETUP, r, "cannot list the volumes: %s", strerror(-r));
        entries = n > 0 ? calloc(n, sizeof *entries) : NULL;
        if (n > 0 && !entries)
                return client_fail(c, SANDBOX_EXIT_SETUP, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                const char *by;
                MsgVolumeEntry *en = &entries[i];
                memcpy(en->name, v[i].name, sizeof en->name);
                en->uid = (uint32_t) v[i].uid;
                en->size = v[i].meta.size;
                en->used = v[i].used;
                en->created_usec = v[i].meta.created_usec;
                if (volume_claimed(srv, v[i].uid, v[i].name, &by) && by && msg_id_is_valid(by))
                        memcpy(en->in_use_by, by, MSG_ID_LENGTH + 1);
        }
        MsgVolumeListReply reply = { .entries = entries, .n_entries = n };
        if (msg_volume_list_reply_encode(&reply, &buf) < 0 || send_message(c, MSG_VOLUME_LIST_REPLY, &buf, NULL, 0) < 0)
                c->broken = true;
}

static void client_dispatch(Client *c, WireFrame *f) {
        if (!c->hello_done && f->type != MSG_HELLO)
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: HELLO must come first");
        switch (f->type) {
        case MSG_HELLO:
                if (c->hello_done)
                        return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: a second HELLO");
                return handle_hello(c, f);
        case MSG_BIND_FDS:
                return handle_bind_fds(c, f);
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
        case MSG_CREATE:
                return handle_create(c, f);
        case MSG_STOP:
        case MSG_RM:
        case MSG_PAUSE:
        case MSG_RESUME:
                return handle_target(c, f);
        case MSG_COPY:
                return handle_copy(c, f);
        case MSG_SNAPSHOT:
                return handle_snapshot(c, f);
        case MSG_VOLUME_CREATE:
        case MSG_VOLUME_RM:
                return handle_volume(c, f);
        case MSG_VOLUME_LIST:
                return handle_volume_list(c, f);
        default:
                return client_fail(c, SANDBOX_EXIT_SETUP, -EPROTO, "protocol error: unexpected message type %u",
                                   f->type);
        }
}

/* A request waits for its answer: a STOP or RM for the box to stop, a CREATE for its sandbox. */
static bool client_waits(const Client *c) {
        return c->waiting || c->listing || c->copy || c->snapshot || c->volume ||
               (c->session && c->session->kind == SESSION_CREATE);
}

/* Requests in order, one reply at a time: while a reply waits to be sent (the client does not read) or
 * to be made, the next requests wait in the decoder, and nothing more is read. */
static void client_process(Client *c) {
        int r;

        while (c->decoder && !c->closing && !c->broken && !c->out_head && !client_waits(c)) {
                _cleanup_(wire_frame_freep) WireFrame *f = NULL;
                r = wire_decoder_pop(c->decoder, &f);
                if (r < 0) {
                        client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed frame: %s", strerror(-r));
                        break;
                }
                if (r == 0)
                        break;
                client_dispatch(c, f);
        }
        /* No more requests: what the decoder holds is of no use. */
        if (c->closing || c->broken)
                c->decoder = wire_decoder_free(c->decoder);
        client_update_events(c);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        const DaemonConfig *cfg = c->server->config;
        bool eof = false;
        int r;

        if (revents & EPOLLOUT)
                client_flush(c);
        if ((revents & EPOLLIN) && c->decoder && !c->closing && !c->out_head && !client_waits(c)) {
                r = wire_decoder_read_from_fd(c->decoder, c->fd);
                if (r == -EAGAIN || r == -EINTR)
                        r = 1;
                eof = r == 0;
                if (r < 0 && r != -EBUSY) {
                        /* Garbage, a frame cut short, too many descriptors: say so (if it still listens),
                         * then drop the connection. */
                        log_debug_errno(r, "Client (uid %u) sent something invalid: %m", (unsigned) c->cred.uid);
                        if (r == -ECONNRESET)
                                c->broken = true;
                        else
                                client_fail(c, SANDBOX_EXIT_SETUP, r, "malformed frame: %s", strerror(-r));
                } else if (c->cred.uid != 0) {
                        size_t held = buffered_of(c->server, c->cred.uid);
                        if (held > cfg->max_buffer_per_uid) {
                                char lim[FORMAT_SIZE_MAX];
                                unsigned more;
                                format_size(cfg->max_buffer_per_uid, lim, sizeof lim);
                                if (ratelimit_ok(c->server, &c->server->log_buffer, &more))
                                        log_notice("Closing a connection of uid %u: its connections hold %zu bytes "
                                                   "(max-buffer-per-uid = %s); %u more not logged.",
                                                   (unsigned) c->cred.uid, held, lim, more);
                                c->decoder = wire_decoder_free(c->decoder);
                                client_fail(c, SANDBOX_EXIT_SETUP, -ENOBUFS,
                                            "too much data held for uid %u: its connections to sandboxd hold "
                                            "%zu bytes not yet read or sent (max-buffer-per-uid = %s)",
                                            (unsigned) c->cred.uid, held, lim);
                        }
                }
        }
        client_process(c);
        /* At EOF the client is gone: a sandbox it started is ended. After an ERROR we sent, the
         * connection ends once the ERROR is out. */
        if (eof || (revents & (EPOLLHUP | EPOLLERR)))
                c->broken = true;
        client_update_events(c);
        client_check(c);
        return 0;
}

/* A refused connection: one try to say why, then closed. */
static void refuse(int fd, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(int fd, int error, const char *fmt, ...) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgError m = { .status = SANDBOX_EXIT_SETUP, .error = -error };
        uint8_t frame[WIRE_HEADER_SIZE + sizeof m.message + 64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(m.message, sizeof m.message, fmt, ap);
        va_end(ap);
        if (msg_error_encode(&m, &b) < 0 || b.size > sizeof frame - WIRE_HEADER_SIZE)
                return;
        wire_header_pack(MSG_ERROR, (uint32_t) b.size, frame);
        memcpy(frame + WIRE_HEADER_SIZE, b.data, b.size);
        (void) wire_send_some(fd, frame, WIRE_HEADER_SIZE + b.size, NULL, 0);
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Server *srv = userdata;
        const DaemonConfig *cfg = srv->config;

        for (;;) {
                _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                struct ucred cred;
                socklen_t len = sizeof cred;
                Client *c;
                int r;

                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* The connection stays in the backlog and the socket readable: pause,
                                 * rather than spin, until descriptors are free again. */
                                log_warning_errno(-errno, "accept() failed, pausing for %u ms: %m",
                                                  (unsigned) (ACCEPT_PAUSE_USEC / 1000));
                                (void) sd_event_source_set_enabled(srv->listen_source, SD_EVENT_OFF);
                                uint64_t now = 0;
                                (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
                                (void) sd_event_source_set_time(srv->accept_timer, now + ACCEPT_PAUSE_USEC);
                                (void) sd_event_source_set_enabled(srv->accept_timer, SD_EVENT_ONESHOT);
                        } else if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(-errno, "accept() failed, ignoring: %m");
                        return 0;
                }
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                        continue;
                if (srv->n_clients >= cfg->max_connections) {
                        unsigned more;
                        if (ratelimit_ok(srv, &srv->log_refused, &more))
                                log_notice("Refused a connection of uid %u: %u connections (max-connections); "
                                           "%u more refusals not logged.", (unsigned) cred.uid, srv->n_clients, more);
                        refuse(cfd, -EUSERS, "sandboxd is busy: it serves %u connections (max-connections = %u)",
                               srv->n_clients, cfg->max_connections);
                        continue;
                }
                c = calloc(1, sizeof *c);
                if (!c)
                        continue;
                c->server = srv;
                c->fd = TAKE_FD(cfd);
                c->cred = cred;
                c->decoder = wire_decoder_new();
                if (!c->decoder) {
                        safe_close(c->fd);
                        free(c);
                        continue;
                }
                if (!client_authorized(c)) {
                        unsigned more;
                        if (ratelimit_ok(srv, &srv->log_refused, &more))
                                log_notice("Refused a client: uid %u is not allowed to run sandboxes; %u more "
                                           "refusals not logged.", (unsigned) c->cred.uid, more);
                        refuse(c->fd, -EACCES,
                               "permission denied: uid %u may not run sandboxes (root, group 'sandbox' and "
                               "users allowed in the daemon's configuration may)", (unsigned) c->cred.uid);
                        wire_decoder_free(c->decoder);
                        safe_close(c->fd);
                        free(c);
                        continue;
                }
                if (c->cred.uid != 0) {
                        unsigned n = connections_of(srv, c->cred.uid);
                        if (n >= cfg->max_connections_per_uid) {
                                unsigned more;
                                if (ratelimit_ok(srv, &srv->log_refused, &more))
                                        log_notice("Refused a connection of uid %u: it has %u open "
                                                   "(max-connections-per-uid); %u more refusals not logged.",
                                                   (unsigned) c->cred.uid, n, more);
                                refuse(c->fd, -EUSERS,
                                       "too many connections: uid %u has %u connections to sandboxd open "
                                       "(max-connections-per-uid = %u)", (unsigned) c->cred.uid, n,
                                       cfg->max_connections_per_uid);
                                wire_decoder_free(c->decoder);
                                safe_close(c->fd);
                                free(c);
                                continue;
                        }
                }
                c->next = srv->clients;
                srv->clients = c;
                srv->n_clients++;
                r = sd_event_add_io(srv->event, &c->io, c->fd, EPOLLIN, on_client_io, c);
                if (r < 0) {
                        client_free(c);
                        continue;
                }
                server_update(srv);
        }
}

static int on_accept_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Server *srv = userdata;

        if (!srv->stopping)
                (void) sd_event_source_set_enabled(srv->listen_source, SD_EVENT_ON);
        return 0;
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Server *srv = userdata;

        log_info("Idle: exiting.");
        return sd_event_exit(srv->event, 0);
}

/* The status line, the idle timer (armed when nothing is going on), and the end of a stop. */
static void server_update(Server *srv) {
        /* Created sandboxes hold the daemon up as long as they live (stopped ones too: their entries). */
        bool idle = srv->n_clients == 0 && srv->n_sessions == 0 && srv->n_cleanups == 0 && srv->n_boxes == 0;

        unsigned running = 0, created = 0;
        for (Session *se = srv->sessions; se; se = se->next)
                if (se->kind == SESSION_EXEC)
                        running++;
        for (Box *b = srv->boxes; b; b = b->next)
                if (b->sandbox)
                        created++;
        running += created;
        /* "N sandbox(es) running, N client(s)" first, as before created sandboxes: scripts read it. */
        char more[64] = "";
        if (srv->n_starting > 0)
                snprintf(more, sizeof more, ", %u being set up", srv->n_starting);
        if (created > 0)
                snprintf(more + strlen(more), sizeof more - strlen(more), ", %u of them created", created);
        (void) sd_notifyf(false, "STATUS=%u sandbox(es) running, %u client(s)%s", running, srv->n_clients, more);
        if (srv->stopping) {
                /* Clients left without a sandbox do not hold the exit up. */
                if (srv->n_sessions == 0 && srv->n_cleanups == 0 && srv->n_boxes == 0)
                        (void) sd_event_exit(srv->event, 0);
                return;
        }
        if (srv->idle_usec == 0 || !srv->idle_timer)
                return;
        if (idle) {
                uint64_t now;
                (void) sd_event_now(srv->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_source_set_time(srv->idle_timer, now + srv->idle_usec);
                (void) sd_event_source_set_enabled(srv->idle_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(srv->idle_timer, SD_EVENT_OFF);
}

/* End every sandbox cleanly: tell its client why, kill, collect, remove what it used (on the
 * workers); the loop exits when the last clean-up is done (server_update()). */
static void server_stop(Server *srv) {
        if (srv->stopping)
                return;
        srv->stopping = true;
        pool_stop(srv->pool);
        (void) sd_event_source_set_enabled(srv->listen_source, SD_EVENT_OFF);
        if (srv->idle_timer)
                (void) sd_event_source_set_enabled(srv->idle_timer, SD_EVENT_OFF);
        for (Client *c = srv->clients, *next; c; c = next) {
                next = c->next;
                if (c->session)
                        client_fail(c, SANDBOX_EXIT_SETUP, -ESHUTDOWN, "sandboxd is stopping: the sandbox was ended");
                else
                        c->broken = true;
                /* Frees C, and abandons its session. */
                client_free(c);
        }
        /* Created sandboxes live on (a restart is not their end): once their programs are collected, the
         * boxes go and the sandboxes stay, detached. Those being stopped are stopped first. */
        for (Box *b = srv->boxes, *next; b; b = next) {
                next = b->next;
                b->release = true;
                for (Session *se = srv->sessions; se; se = se->next)
                        if (se->box == b && se->state == SESSION_RUNNING)
                                sandbox_exec_kill(se->program);
                        else if (se->box == b && se->state == SESSION_STARTING)
                                (void) eventfd_write(se->cancel_fd, 1);
                box_check(b);
        }
        server_update(srv);
}

/* The created sandboxes a predecessor of ours left (their records in the state directory): adopted as
 * boxes, or, when that cannot be, ended and removed. */
static void server_adopt(Server *srv) {
        _cleanup_close_ int dfd = open(srv->state_dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        unsigned adopted = 0, failed = 0;
        DIR *d;

        if (dfd < 0)
                return;
        d = fdopendir(dfd);
        if (!d)
                return;
        dfd = -EBADF;
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ void *owner_data = NULL;
                size_t owner_size = 0;
                SandboxError err = {};
                Sandbox *sb = NULL;
                Owner o;
                char path[MSG_ID_LENGTH + 16];
                int r;

                if (!msg_id_is_valid(de->d_name))
                        continue;
                snprintf(path, sizeof path, "%.16s/record", de->d_name);
                if (faccessat(dirfd(d), path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* a one-shot sandbox's: the stale clean-up's */
                r = sandbox_adopt(&srv->runtime, de->d_name, &sb, &owner_data, &owner_size, &err);
                if (r >= 0 && (!owner_data || owner_decode(owner_data, owner_size, &o) < 0)) {
                        snprintf(err.message, sizeof err.message, "its record's owner data is invalid");
                        r = -EBADMSG;
                }
                if (r >= 0)
                        for (Box *b = srv->boxes; b; b = b->next)
                                if (b->uid == o.uid && o.name[0] && streq(b->name, o.name)) {
                                        snprintf(err.message, sizeof err.message, "another sandbox has its name");
                                        r = -EEXIST;
                                }
                if (r >= 0) {
                        Box *b = box_adopt(srv, sb, &o);
                        if (b) {
                                /* A freezer state is not kept across us: it runs again. */
                                (void) sandbox_resume(b->sandbox);
                                box_log(b, LOG_INFO, "adopted from an earlier sandboxd");
                                adopted++;
                                continue;
                        }
                        snprintf(err.message, sizeof err.message, "out of memory");
                        r = -ENOMEM;
                }
                if (sb) {
                        (void) sandbox_finish(sb, true, NULL);
                        sandbox_free(sb);
                }
                log_notice("Sandbox %s: cannot adopt it (%s): removed.", de->d_name, err.message);
                failed++;
        }
        closedir(d);
        if (failed > 0)
                (void) sandbox_cleanup_stale(&srv->runtime, NULL);
        if (adopted > 0)
                log_info("Adopted %u created sandbox(es) of an earlier sandboxd.", adopted);
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Server *srv = userdata;

        log_info("Received %s: ending %u sandbox(es).", strsignal((int) si->ssi_signo), srv->n_sessions);
        server_stop(srv);
        return 0;
}

int server_run(int listen_fd, const char *state_dir, const char *data_dir, const DaemonConfig *config,
               uint64_t idle_usec) {
        Server srv = {
                .config = config,
                .state_dir = state_dir,
                .idle_usec = idle_usec,
                .journal = getenv("JOURNAL_STREAM") != NULL,
                .runtime = {
                        .state_dir = state_dir,
                        .data_dir = data_dir,
                        .host_id_base = config->id_base,
                        .host_id_ranges = config->id_ranges,
                        .unionfs_binary = config->unionfs[0] ? config->unionfs : NULL,
                        .net = &config->net,
                        .store = config->store[0] ? config->store : NULL,
                },
        };
        sigset_t mask;
        int r;

        policy_host_init(&srv.host);
        {
                /* Snapshots a predecessor was storing when it died: nobody waits for them any more. */
                _cleanup_close_ int data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (data_fd >= 0 && (r = rm_tree_at(data_fd, "snapshots")) < 0 && r != -ENOENT)
                        log_warning_errno(r, "Failed to remove %s/snapshots, ignoring: %m", data_dir);
                /* Volumes a predecessor was making or removing. */
                if (data_fd >= 0 && (r = volume_clean_leftovers(data_fd)) < 0)
                        log_warning_errno(r, "Failed to remove half-made volumes in %s/volumes, ignoring: %m",
                                          data_dir);
        }
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
            (r = sd_event_add_io(srv.event, &srv.listen_source, listen_fd, EPOLLIN, on_listen, &srv)) < 0 ||
            (r = sd_event_add_time_relative(srv.event, &srv.accept_timer, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC, 10000,
                                            on_accept_timer, &srv)) < 0 ||
            (r = sd_event_source_set_enabled(srv.accept_timer, SD_EVENT_OFF)) < 0) {
                log_error_errno(r, "Failed to set up the event loop: %m");
                goto finish;
        }
        /* Every worker now, none later: see workers.h. */
        if ((r = workpool_new(srv.event, config->max_starts, &srv.starts)) < 0 ||
            (r = workpool_new(srv.event, CLEANUP_THREADS, &srv.cleanups)) < 0 ||
            (r = pool_new(srv.event, config, &srv.runtime, &srv.pool)) < 0) {
                log_error_errno(r, "Failed to start the worker threads: %m");
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
        server_adopt(&srv);
        (void) sd_notify(false, "READY=1");
        server_update(&srv);
        log_info("Ready (state in %s).", state_dir);

        r = sd_event_loop(srv.event);
        if (r < 0)
                log_error_errno(r, "The event loop failed: %m");

finish:
        (void) sd_notify(false, "STOPPING=1");
        /* Normally everything has ended already; after an idle exit or a failure of the loop, end what
         * is left here, waiting for the workers without the loop. */
        server_stop(&srv);
        workpool_drain(srv.starts);
        workpool_drain(srv.cleanups);
        srv.pool = pool_free(srv.pool);
        srv.starts = workpool_free(srv.starts);
        srv.cleanups = workpool_free(srv.cleanups);
        while (srv.clients)
                client_free(srv.clients);
        /* Boxes whose stop did not get to its end (the loop failed): here, without the loop. */
        for (Session *se = srv.sessions, *next; se; se = next) {
                next = se->next;
                if (!se->box)
                        continue;
                if (se->program)
                        (void) sandbox_exec_collect(se->program, true, NULL);
                se->box = NULL;
                se->state = SESSION_RUNNING;
                session_free(se);
        }
        while (srv.boxes) {
                Box *b = srv.boxes;
                if (b->sandbox) {
                        (void) sandbox_finish(b->sandbox, true, NULL);
                        b->sandbox = sandbox_free(b->sandbox);
                }
                b->cleaning = false;
                b->n_execs = 0;
                box_free(b);
        }
        /* Our bridges and NAT table go with us, unless another runtime's sandbox still uses them. */
        (void) net_teardown_if_unused(&config->net);
        sd_event_source_disable_unref(srv.listen_source);
        sd_event_source_disable_unref(srv.accept_timer);
        sd_event_source_disable_unref(srv.idle_timer);
        srv.idle_timer = NULL;
        sd_event_unref(srv.event);
        return r < 0 ? r : 0;
}
