/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * See worker.h. Built on libfuse's public fuse_session_receive_buf()/fuse_session_process_buf().
 * Threads are started on demand (when the reader hands over and nobody is idle) and kept.
 * Shutdown: the reader sees unmount (ENODEV) or an exit request and wakes the main thread, which
 * wakes the idle threads and cancels the ones blocked in the device read (the only point where
 * cancellation is enabled, as in libfuse's own loop).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>

#include <fuse_lowlevel.h>

#include "log.h"
#include "macro.h"
#include "worker.h"

#define WORKER_MAX_THREADS 64

typedef struct WorkerLoop {
        struct fuse_session *se;
        pthread_mutex_t lock;
        pthread_cond_t cond;     /* an idle thread may take the reader role */
        sem_t finished;          /* posted when serving should end */
        bool reader_taken;
        bool done;
        unsigned n_idle, n_threads, max_threads;
        pthread_t threads[WORKER_MAX_THREADS];
        int error;
} WorkerLoop;

static __thread WorkerLoop *t_loop;
static __thread bool t_reader;

static void *worker_main(void *arg);

/* Called with l->lock held. */
static void finish_locked(WorkerLoop *l, int error) {
        if (!l->done) {
                l->done = true;
                l->error = error;
                pthread_cond_broadcast(&l->cond);
                sem_post(&l->finished);
        }
}

/* Called with l->lock held: make sure some thread will take the free reader role. */
static void hand_over_locked(WorkerLoop *l) {
        if (l->n_idle > 0) {
                pthread_cond_signal(&l->cond);
                return;
        }
        if (l->n_threads >= l->max_threads)
                return; /* all busy: the first to finish reads next */
        if (pthread_create(&l->threads[l->n_threads], NULL, worker_main, l) == 0)
                l->n_threads++;
}

void worker_may_block(void) {
        WorkerLoop *l = t_loop;

        if (!l || !t_reader)
                return;
        t_reader = false;
        pthread_mutex_lock(&l->lock);
        l->reader_taken = false;
        hand_over_locked(l);
        pthread_mutex_unlock(&l->lock);
}

static void *worker_main(void *arg) {
        WorkerLoop *l = arg;
        struct fuse_buf buf = {};

        t_loop = l;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        for (;;) {
                pthread_mutex_lock(&l->lock);
                while (l->reader_taken && !l->done) {
                        l->n_idle++;
                        pthread_cond_wait(&l->cond, &l->lock);
                        l->n_idle--;
                }
                if (l->done) {
                        pthread_mutex_unlock(&l->lock);
                        break;
                }
                l->reader_taken = true;
                pthread_mutex_unlock(&l->lock);

                /* Keep the reader role, request after request, until a handler hands it over. */
                t_reader = true;
                while (t_reader) {
                        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
                        int r = fuse_session_receive_buf(l->se, &buf);
                        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
                        if (r == -EINTR && !fuse_session_exited(l->se))
                                continue;
                        if (r <= 0 || fuse_session_exited(l->se)) {
                                pthread_mutex_lock(&l->lock);
                                /* -ENODEV is the normal end: the filesystem was unmounted. So is
                                 * -ECONNABORTED when the unmount's teardown meets a read that had already
                                 * taken a request (the kernel's queue was disconnected under it). */
                                finish_locked(l, r < 0 && r != -ENODEV && r != -ECONNABORTED && r != -EINTR ? r : 0);
                                pthread_mutex_unlock(&l->lock);
                                t_reader = false;
                                goto out;
                        }
                        fuse_session_process_buf(l->se, &buf);
                }
        }
out:
        free(buf.mem);
        return NULL;
}

int worker_loop_run(struct fuse_session *se, unsigned max_threads) {
        WorkerLoop l = {
                .se = se,
                .max_threads = MIN(MAX(max_threads, 1u), (unsigned) WORKER_MAX_THREADS),
        };
        int r;

        pthread_mutex_init(&l.lock, NULL);
        pthread_cond_init(&l.cond, NULL);
        sem_init(&l.finished, 0, 0);

        pthread_mutex_lock(&l.lock);
        r = pthread_create(&l.threads[0], NULL, worker_main, &l);
        if (r == 0)
                l.n_threads = 1;
        pthread_mutex_unlock(&l.lock);
        if (r != 0)
                return -r;

        /* Signals (libfuse's handlers call fuse_session_exit()) interrupt the wait. */
        while (!fuse_session_exited(se)) {
                if (sem_wait(&l.finished) == 0)
                        break;
        }

        pthread_mutex_lock(&l.lock);
        finish_locked(&l, 0);
        unsigned n = l.n_threads;
        for (unsigned i = 0; i < n; i++)
                pthread_cancel(l.threads[i]); /* only takes effect inside the device read */
        pthread_mutex_unlock(&l.lock);
        for (unsigned i = 0; i < n; i++)
                pthread_join(l.threads[i], NULL);

        r = l.error;
        sem_destroy(&l.finished);
        pthread_cond_destroy(&l.cond);
        pthread_mutex_destroy(&l.lock);
        return r;
}
