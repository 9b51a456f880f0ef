/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd's pool of sandboxes made ahead of demand: see pool.h. The shapes, the list of ready sandboxes
 * and the counters belong to the event loop's thread; a fill (sandbox_start_with(SANDBOX_START_DEFERRED)) and a
 * discard (sandbox_finish()) run on the pool's one worker thread and touch only their own entry. The
 * sandboxes' inits die with that thread (PR_SET_PDEATHSIG), which lives as long as the pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "msg.h"
#include "pool.h"
#include "time-util.h"
#include "workers.h"

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

/* Before a sandbox of a shape was measured: what one idle sandbox with its union server uses here. */
#define POOL_MEMORY_GUESS (UINT64_C(8) << 20)

typedef struct PoolShape {
        uint8_t *key;
        size_t key_size;
        bool configured;
        unsigned hits;          /* requests within the window that began at window_usec */
        uint64_t window_usec;
        uint64_t last_usec;     /* the last request (monotonic) */
        unsigned ready, filling;
        unsigned failures;      /* fills that failed in a row */
        uint64_t memory;        /* what its last sandbox used when made (bytes), 0: not known */
} PoolShape;

typedef struct PoolEntry PoolEntry;
struct PoolEntry {
        Pool *pool;
        Work work;
        uint8_t *key;           /* its shape's (a copy: the shape may be forgotten meanwhile) */
        size_t key_size;
        SandboxSpec spec;       /* decoded from the key, for the fill */
        Sandbox *sandbox;
        int r;
        SandboxError error;
        uint64_t memory;
        uint64_t made_usec;
        sd_event_source *watch;
        PoolEntry *next;
};

struct Pool {
        sd_event *event;
        const DaemonConfig *config;
        const SandboxConfig *runtime;
        WorkPool *worker;
        PoolShape shapes[POOL_SHAPES_MAX];
        size_t n_shapes;
        PoolEntry *ready;       /* oldest first */
        unsigned n_ready, n_filling, n_discarding;
        unsigned max_sandboxes; /* pool-size, and half the id ranges */
        uint64_t last_usec;     /* the last request (monotonic) */
        sd_event_source *idle_timer;
        sd_event_source *refill_timer; /* a take's refill, put off (pool_request_done()) */
        sd_event_source *age_timer;     /* the oldest held sandbox reaches pool-max-age */
        bool stopping;
        unsigned taken, missed;
};

static void entry_free(PoolEntry *e) {
        if (!e)
                return;
        sd_event_source_disable_unref(e->watch);
        spec_done(&e->spec);
        free(e->key);
        free(e);
}

int pool_shape_key(const SandboxSpec *spec, uint8_t **ret_key, size_t *ret_size) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        SandboxSpec shape = *spec;
        int r;

        /* What a program started later cannot have, or what is the client's own. */
        if (spec->n_binds > 0 || spec->n_publish > 0 || spec->upper || spec->image_ref || spec->user ||
            spec->entrypoint || spec->tty || spec->cpu_time_usec)
                return -EOPNOTSUPP;
        /* The program's fields are not the sandbox's. */
        shape.argv = NULL;
        shape.n_argv = 0;
        shape.env = NULL;
        shape.n_env = 0;
        shape.workdir = NULL;
        shape.timeout_usec = 0;
        shape.bind_fds = NULL;
        /* "The default" and the default's value make the same sandbox. */
        if (shape.memory_max == 0)
                shape.memory_max = SPEC_DEFAULT_MEMORY;
        if (shape.pids_max == 0)
                shape.pids_max = SPEC_DEFAULT_PIDS;
        if (shape.disk_max == 0)
                shape.disk_max = SPEC_DEFAULT_DISK;
        if (shape.disk_inodes_max == 0)
                shape.disk_inodes_max = SPEC_DEFAULT_DISK_INODES;
        r = msg_spec_encode(&shape, &b);
        if (r < 0)
                return r;
        if (b.size > POOL_KEY_MAX)
                return -E2BIG;
        *ret_size = b.size;
        *ret_key = TAKE_PTR(b.data);
        return 0;
}

static PoolShape *find_shape(Pool *p, const uint8_t *key, size_t size) {
        for (size_t i = 0; i < p->n_shapes; i++)
                if (p->shapes[i].key_size == size && memcmp(p->shapes[i].key, key, size) == 0)
                        return &p->shapes[i];
        return NULL;
}

/* Pooled while asked for: a configured shape since the last request (or the start) within the idle time,
 * a learned one once asked for POOL_LEARN_HITS times within it. */
static bool shape_active(const Pool *p, const PoolShape *sh, uint64_t now) {
        if (sh->failures >= POOL_FAILURES_MAX)
                return false;
        if (now - p->last_usec >= p->config->pool_idle_usec)
                return false;
        return sh->configured || (sh->hits >= POOL_LEARN_HITS && now - sh->last_usec < p->config->pool_idle_usec);
}

static void fill_run(Work *w);
static void fill_done(Work *w);
static void discard_run(Work *w);
static void discard_done(Work *w);

static void discard(Pool *p, PoolEntry *e) {
        e->watch = sd_event_source_disable_unref(e->watch);
        e->work = (Work) { .run = discard_run, .done = discard_done };
        p->n_discarding++;
        workpool_submit(p->worker, &e->work);
}

static void discard_run(Work *w) {
        PoolEntry *e = container_of(w, PoolEntry, work);

        if (e->sandbox) {
                (void) sandbox_finish(e->sandbox, true, NULL);
                e->sandbox = sandbox_free(e->sandbox);
        }
}

static void discard_done(Work *w) {
        PoolEntry *e = container_of(w, PoolEntry, work);

        e->pool->n_discarding--;
        entry_free(e);
}

/* Take E off the ready list. */
static void unlink_ready(Pool *p, PoolEntry *e) {
        PoolShape *sh = find_shape(p, e->key, e->key_size);

        for (PoolEntry **q = &p->ready; *q; q = &(*q)->next)
                if (*q == e) {
                        *q = e->next;
                        break;
                }
        e->next = NULL;
        p->n_ready--;
        if (sh && sh->ready > 0)
                sh->ready--;
}

static uint64_t ready_memory(const Pool *p) {
        uint64_t sum = 0;

        for (PoolEntry *e = p->ready; e; e = e->next)
                sum += e->memory;
        return sum;
}

/* Start one more sandbox, of the active shape that lacks the most, within the budget. One at a time. */
static void refill(Pool *p) {
        uint64_t now = now_usec();
        PoolShape *best = NULL;
        unsigned best_lack = 0;
        const char *e = NULL;

        if (p->stopping || p->n_filling > 0 || p->n_ready + p->n_filling >= p->max_sandboxes)
                return;
        for (size_t i = 0; i < p->n_shapes; i++) {
                PoolShape *sh = &p->shapes[i];
                unsigned have = sh->ready + sh->filling;

                if (!shape_active(p, sh, now) || have >= p->config->pool_per_shape)
                        continue;
                if (!best || p->config->pool_per_shape - have > best_lack ||
                    (p->config->pool_per_shape - have == best_lack && sh->last_usec > best->last_usec)) {
                        best = sh;
                        best_lack = p->config->pool_per_shape - have;
                }
        }
        if (!best)
                return;
        if (ready_memory(p) + (best->memory ?: POOL_MEMORY_GUESS) > p->config->pool_memory) {
                log_debug("pool: at its memory budget (%" PRIu64 " bytes), not filling", p->config->pool_memory);
                return;
        }

        PoolEntry *en = calloc(1, sizeof *en);
        if (!en)
                return;
        *en = (PoolEntry) { .pool = p, .key = malloc(best->key_size), .key_size = best->key_size, .r = -EAGAIN };
        if (!en->key) {
                free(en);
                return;
        }
        memcpy(en->key, best->key, best->key_size);
        if (msg_spec_decode(en->key, en->key_size, SPEC_VALIDATE_NO_COMMAND, &en->spec, &e) < 0) {
                log_warning("pool: a shape's spec does not decode (%s), forgetting it", e ?: "invalid");
                best->failures = POOL_FAILURES_MAX;
                entry_free(en);
                return;
        }
        best->filling++;
        p->n_filling++;
        en->work = (Work) { .run = fill_run, .done = fill_done };
        workpool_submit(p->worker, &en->work);
}

static void fill_run(Work *w) {
        PoolEntry *e = container_of(w, PoolEntry, work);
        _cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        const int stdio[3] = { null, null, null };
        const SandboxStartOptions o = { .stdio = stdio, .cancel_fd = -EBADF, .flags = SANDBOX_START_DEFERRED };
        SandboxUsage u = {};

        if (null < 0) {
                e->r = -errno;
                snprintf(e->error.message, sizeof e->error.message, "Cannot open /dev/null: %s", strerror(errno));
                return;
        }
        e->r = sandbox_start_with(&e->spec, e->pool->runtime, &o, &e->sandbox, &e->error);
        if (e->r < 0)
                return;
        e->made_usec = now_usec();
        e->memory = sandbox_usage_cgroup(e->sandbox, &u) >= 0 ? u.memory_bytes : POOL_MEMORY_GUESS;
}

static int on_entry_ended(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PoolEntry *e = userdata;
        Pool *p = e->pool;

        /* Its init or its union's server ended (killed from outside, out of memory): never handed out. */
        log_debug("pool: held sandbox %s ended, removing it", sandbox_id(e->sandbox));
        unlink_ready(p, e);
        discard(p, e);
        refill(p);
        return 0;
}

/* The timer for the oldest held sandbox's pool-max-age (the list is oldest first); an armed one is for an
 * older or the same sandbox, and rearms itself. */
static void arm_age_timer(Pool *p) {
        if (!p->age_timer || !p->ready || sd_event_source_get_enabled(p->age_timer, NULL) > 0)
                return;
        (void) sd_event_source_set_time(p->age_timer, p->ready->made_usec + p->config->pool_max_age_usec);
        (void) sd_event_source_set_enabled(p->age_timer, SD_EVENT_ONESHOT);
}

/* Held sandboxes that reached pool-max-age end; those of shapes still asked for are replaced. */
static int on_age_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        uint64_t now = now_usec();

        while (p->ready && now - p->ready->made_usec >= p->config->pool_max_age_usec) {
                PoolEntry *e = p->ready;
                log_debug("pool: held sandbox %s reached pool-max-age, ending it", sandbox_id(e->sandbox));
                unlink_ready(p, e);
                discard(p, e);
        }
        arm_age_timer(p);
        refill(p);
        return 0;
}

static void fill_done(Work *w) {
        PoolEntry *e = container_of(w, PoolEntry, work);
        Pool *p = e->pool;
        PoolShape *sh = find_shape(p, e->key, e->key_size);

        p->n_filling--;
        if (sh)
                sh->filling--;
        if (e->r < 0) {
                if (sh && ++sh->failures == POOL_FAILURES_MAX)
                        log_warning("pool: a sandbox of a pooled shape failed to start %u times (%s): not pooling it",
                                    POOL_FAILURES_MAX, e->error.message);
                else
                        log_debug("pool: a sandbox failed to start: %s", e->error.message);
                entry_free(e);
                return;
        }
        if (!sh || p->stopping || !shape_active(p, sh, now_usec()) ||
            sd_event_add_io(p->event, &e->watch, sandbox_pidfd(e->sandbox), EPOLLIN, on_entry_ended, e) < 0) {
                discard(p, e);
                return;
        }
        sh->failures = 0;
        sh->memory = e->memory;
        sh->ready++;
        p->n_ready++;
        PoolEntry **q;
        for (q = &p->ready; *q; q = &(*q)->next)
                ;
        *q = e;
        arm_age_timer(p);
        refill(p);
}

/* Nothing asked for the idle time: end every held sandbox, forget the learned counts. */
static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        uint64_t now = now_usec();

        if (now - p->last_usec < p->config->pool_idle_usec) {
                (void) sd_event_source_set_time(s, p->last_usec + p->config->pool_idle_usec);
                return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        if (p->n_ready > 0)
                log_debug("pool: idle, ending the %u sandboxes held", p->n_ready);
        while (p->ready) {
                PoolEntry *e = p->ready;
                unlink_ready(p, e);
                discard(p, e);
        }
        for (size_t i = 0; i < p->n_shapes; i++)
                p->shapes[i].hits = 0;
        return 0;
}

static void note_request(Pool *p, const uint8_t *key, size_t size, uint64_t now) {
        PoolShape *sh = find_shape(p, key, size);

        p->last_usec = now;
        if (p->idle_timer) {
                (void) sd_event_source_set_time(p->idle_timer, now + p->config->pool_idle_usec);
                (void) sd_event_source_set_enabled(p->idle_timer, SD_EVENT_ONESHOT);
        }
        if (!sh) {
                /* A new shape: a free slot, or the least recently asked learned one that holds nothing. */
                if (p->n_shapes < POOL_SHAPES_MAX)
                        sh = &p->shapes[p->n_shapes];
                else
                        for (size_t i = 0; i < p->n_shapes; i++) {
                                PoolShape *c = &p->shapes[i];
                                if (c->configured || c->ready > 0 || c->filling > 0)
                                        continue;
                                if (!sh || c->last_usec < sh->last_usec)
                                        sh = c;
                        }
                if (!sh)
                        return;
                uint8_t *k = malloc(size);
                if (!k)
                        return;
                memcpy(k, key, size);
                if (sh == &p->shapes[p->n_shapes])
                        p->n_shapes++;
                else
                        free(sh->key);
                *sh = (PoolShape) { .key = k, .key_size = size, .window_usec = now };
        }
        if (now - sh->window_usec >= p->config->pool_idle_usec) {
                sh->window_usec = now;
                sh->hits = 0;
        }
        sh->hits++;
        sh->last_usec = now;
}

Sandbox *pool_take(Pool *p, const SandboxSpec *spec) {
        _cleanup_free_ uint8_t *key = NULL;
        uint64_t now = now_usec();
        Sandbox *s = NULL;
        size_t size;

        if (!p || p->stopping || pool_shape_key(spec, &key, &size) < 0)
                return NULL;
        note_request(p, key, size, now);
        for (PoolEntry *e = p->ready, *next; e; e = next) {
                next = e->next;
                if (e->key_size != size || memcmp(e->key, key, size) != 0)
                        continue;
                /* Killed or ended meanwhile (its watch may not have run yet), or held too long. */
                struct pollfd pf = { .fd = sandbox_pidfd(e->sandbox), .events = POLLIN };
                bool ended = poll(&pf, 1, 0) != 0;
                unlink_ready(p, e);
                if (ended || now - e->made_usec >= p->config->pool_max_age_usec) {
                        discard(p, e);
                        continue;
                }
                s = TAKE_PTR(e->sandbox);
                entry_free(e);
                break;
        }
        if (s)
                p->taken++;
        else if (find_shape(p, key, size) && shape_active(p, find_shape(p, key, size), now))
                p->missed++;
        /* Not now: the request's own start runs now, on the same CPUs. After its answer, or at the latest
         * after POOL_REFILL_DELAY_USEC (a program that runs long), without postponing an armed one. */
        if (p->refill_timer && sd_event_source_get_enabled(p->refill_timer, NULL) == 0) {
                (void) sd_event_source_set_time(p->refill_timer, now + POOL_REFILL_DELAY_USEC);
                (void) sd_event_source_set_enabled(p->refill_timer, SD_EVENT_ONESHOT);
        } else if (!p->refill_timer)
                refill(p);
        return s;
}

static int on_refill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        refill(userdata);
        return 0;
}

void pool_request_done(Pool *p) {
        if (!p)
                return;
        if (p->refill_timer)
                (void) sd_event_source_set_enabled(p->refill_timer, SD_EVENT_OFF);
        refill(p);
}

int pool_make_idle(Sandbox *s, int cancel_fd, SandboxError *ret_error) {
        return sandbox_go_idle(s, cancel_fd, ret_error);
}

int pool_exec(Sandbox *s, const SandboxSpec *spec, const int stdio[3], int cancel_fd, SandboxError *ret_error) {
        const SandboxGoOptions o = {
                .argv = spec->argv,
                .n_argv = spec->n_argv,
                .env = spec->env,
                .n_env = spec->n_env,
                .workdir = spec->workdir,
                .timeout_usec = spec->timeout_usec,
                .stdio = stdio,
                .cancel_fd = cancel_fd,
        };

        return sandbox_go(s, &o, ret_error);
}

void pool_stop(Pool *p) {
        if (!p)
                return;
        p->stopping = true;
        while (p->ready) {
                PoolEntry *e = p->ready;
                unlink_ready(p, e);
                discard(p, e);
        }
}

void pool_get_stats(const Pool *p, PoolStats *ret) {
        *ret = (PoolStats) {};
        if (!p)
                return;
        *ret = (PoolStats) {
                .ready = p->n_ready, .filling = p->n_filling, .discarding = p->n_discarding,
                .taken = p->taken, .missed = p->missed, .memory = ready_memory(p),
        };
}

int pool_new(sd_event *event, const DaemonConfig *config, const SandboxConfig *runtime, Pool **ret) {
        _cleanup_free_ Pool *p = NULL;
        uint64_t now = now_usec();
        uint32_t ranges = config->id_ranges ?: 4096;
        int r;

        if (config->pool_size == 0) {
                *ret = NULL;
                return 0;
        }
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (Pool) {
                .event = event, .config = config, .runtime = runtime, .last_usec = now,
                .max_sandboxes = MIN(config->pool_size, ranges / 2),
        };
        for (size_t i = 0; i < config->n_pool_shapes && p->n_shapes < POOL_SHAPES_MAX; i++) {
                const PoolShapeConfig *c = &config->pool_shapes[i];
                char *argv[] = { (char *) "true", NULL };
                const SandboxSpec spec = {
                        .argv = argv, .n_argv = 1, .memory_max = c->memory_max, .pids_max = c->pids_max,
                        .disk_max = c->disk_max, .cpus_milli = c->cpus_milli, .net = c->net,
                };
                uint8_t *key;
                size_t size;

                r = pool_shape_key(&spec, &key, &size);
                if (r < 0)
                        return r;
                if (find_shape(p, key, size)) {
                        free(key);
                        continue;
                }
                p->shapes[p->n_shapes++] = (PoolShape) {
                        .key = key, .key_size = size, .configured = true, .last_usec = now, .window_usec = now,
                };
        }
        r = sd_event_add_time(event, &p->idle_timer, CLOCK_MONOTONIC, now + config->pool_idle_usec, 100000, on_idle,
                              p);
        if (r >= 0)
                r = sd_event_add_time(event, &p->refill_timer, CLOCK_MONOTONIC, now, 1000, on_refill_timer, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->refill_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(event, &p->age_timer, CLOCK_MONOTONIC, now, 100000, on_age_timer, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->age_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = workpool_new(event, 1, &p->worker);
        if (r < 0) {
                for (size_t i = 0; i < p->n_shapes; i++)
                        free(p->shapes[i].key);
                sd_event_source_disable_unref(p->idle_timer);
                sd_event_source_disable_unref(p->refill_timer);
                sd_event_source_disable_unref(p->age_timer);
                return r;
        }
        refill(p);
        *ret = TAKE_PTR(p);
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        pool_stop(p);
        /* Fills that finish now are discarded by fill_done() (stopping), and that discard runs too. */
        workpool_drain(p->worker);
        p->worker = workpool_free(p->worker);
        sd_event_source_disable_unref(p->idle_timer);
        sd_event_source_disable_unref(p->refill_timer);
        sd_event_source_disable_unref(p->age_timer);
        for (size_t i = 0; i < p->n_shapes; i++)
                free(p->shapes[i].key);
        free(p);
        return NULL;
}
