/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A pool of worker threads for the daemon's slow work (starting a sandbox, cleaning one up), so that
 * the event loop never waits for it. A Work item's run() is called on one of the pool's threads,
 * then its done() on the event loop's thread, which learns of it through an eventfd watched by the
 * loop. run() touches only what its item owns; the server's state belongs to the loop's thread.
 *
 * All threads are made with the pool and end only in workpool_free(). They must not end earlier: a
 * sandbox's init dies with the thread that cloned it (PR_SET_PDEATHSIG follows the thread), and a
 * thread made or ended while another clones would leave glibc's thread list locked in the child.
 */
#pragma once

#include <systemd/sd-event.h>

typedef struct Work Work;
struct Work {
        void (*run)(Work *w);   /* on a worker thread */
        void (*done)(Work *w);  /* then on the loop's thread; may free the item */
        Work *next;             /* the pool's */
};

typedef struct WorkPool WorkPool;

/* N_THREADS threads (all made now, with every signal blocked) and an eventfd in EVENT. */
int workpool_new(sd_event *event, unsigned n_threads, WorkPool **ret);
/* Queue W: run() on the first free thread, in submission order. */
void workpool_submit(WorkPool *p, Work *w);
/* Items submitted whose done() has not been called yet. */
unsigned workpool_pending(const WorkPool *p);
/* Without the event loop: wait until every item submitted (also those that done() callbacks submit
 * meanwhile) has run and had its done() called. */
void workpool_drain(WorkPool *p);
/* Drains, ends the threads and joins them. Accepts NULL, returns NULL. */
WorkPool *workpool_free(WorkPool *p);
