/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The worker pool (see workers.h): one mutex guards the queue of items to run and the list of items
 * that ran; threads wait on a condition variable; each item that ran is announced to the loop with an
 * eventfd increment. The loop's thread takes the whole "ran" list at once and calls done() in the
 * order the items ran. No item is ever lost: workpool_free() drains before it stops the threads.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "workers.h"

struct WorkPool {
        /* Lock order: only this one. Held briefly, never across run() or done(). */
        pthread_mutex_t lock;
        pthread_cond_t wake;
        Work *queue_head, *queue_tail;  /* to run */
        Work *ran_head, *ran_tail;      /* ran, done() not called yet */
        bool stopping;

        pthread_t *threads;
        unsigned n_threads;
        int efd;
        sd_event_source *source;
        unsigned pending;               /* submitted, done() not called yet: the loop's thread only */
};

static void list_append(Work **head, Work **tail, Work *w) {
        w->next = NULL;
        if (*tail)
                (*tail)->next = w;
        else
                *head = w;
        *tail = w;
}

static void *worker_main(void *userdata) {
        WorkPool *p = userdata;

        for (;;) {
                Work *w;

                pthread_mutex_lock(&p->lock);
                while (!p->queue_head && !p->stopping)
                        pthread_cond_wait(&p->wake, &p->lock);
                w = p->queue_head;
                if (!w) {
                        pthread_mutex_unlock(&p->lock);
                        return NULL;
                }
                p->queue_head = w->next;
                if (!p->queue_head)
                        p->queue_tail = NULL;
                pthread_mutex_unlock(&p->lock);

                w->run(w);

                pthread_mutex_lock(&p->lock);
                list_append(&p->ran_head, &p->ran_tail, w);
                pthread_mutex_unlock(&p->lock);
                /* Cannot fail short of a counter at 2^64-1. */
                (void) eventfd_write(p->efd, 1);
        }
}

/* On the loop's thread: done() for everything that ran. */
static void dispatch_ran(WorkPool *p) {
        Work *w;
        eventfd_t v;

        (void) eventfd_read(p->efd, &v);
        pthread_mutex_lock(&p->lock);
        w = p->ran_head;
        p->ran_head = p->ran_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        while (w) {
                Work *next = w->next;
                assert(p->pending > 0);
                p->pending--;
                w->done(w);
                w = next;
        }
}

static int on_ran(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        dispatch_ran(userdata);
        return 0;
}

int workpool_new(sd_event *event, unsigned n_threads, WorkPool **ret) {
        WorkPool *p;
        sigset_t all, old;
        int r;

        assert_return(event && n_threads > 0 && ret, -EINVAL);
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->efd = -EBADF;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        p->threads = calloc(n_threads, sizeof *p->threads);
        if (!p->threads) {
                r = -ENOMEM;
                goto fail;
        }
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &p->source, p->efd, EPOLLIN, on_ran, p);
        if (r < 0)
                goto fail;

        /* The threads get no signal: SIGTERM and friends are the loop's (signalfd). */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (; p->n_threads < n_threads; p->n_threads++) {
                r = -pthread_create(&p->threads[p->n_threads], NULL, worker_main, p);
                if (r < 0)
                        break;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        *ret = p;
        return 0;

fail:
        workpool_free(p);
        return r;
}

void workpool_submit(WorkPool *p, Work *w) {
        assert(p && w && w->run && w->done);
        p->pending++;
        pthread_mutex_lock(&p->lock);
        list_append(&p->queue_head, &p->queue_tail, w);
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
}

unsigned workpool_pending(const WorkPool *p) {
        return p ? p->pending : 0;
}

void workpool_drain(WorkPool *p) {
        if (!p)
                return;
        while (p->pending > 0) {
                struct pollfd pfd = { .fd = p->efd, .events = POLLIN };
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        break;
                dispatch_ran(p);
        }
}

WorkPool *workpool_free(WorkPool *p) {
        if (!p)
                return NULL;
        if (p->n_threads > 0)
                workpool_drain(p);
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                (void) pthread_join(p->threads[i], NULL);
        sd_event_source_disable_unref(p->source);
        safe_close(p->efd);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p->threads);
        free(p);
        return NULL;
}
