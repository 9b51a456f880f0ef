/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request loop: one thread at a time reads requests and handles them inline, so consecutive
 * requests find a running thread instead of waking a sleeping one (on a VM each cross-CPU wakeup
 * costs tens of microseconds, which tripled the time of metadata-heavy work). A handler that is about
 * to block (copy-up, data I/O, fsync, a contended lock) calls worker_may_block(): another thread takes
 * over reading, so slow requests still run in parallel with everything else.
 */
#pragma once

struct fuse_session;

/* Serve SE until unmount or fuse_session_exit(); at most MAX_THREADS threads. 0 or -errno. */
int worker_loop_run(struct fuse_session *se, unsigned max_threads);

/* Called by request handlers; a no-op outside the loop or when already handed over. */
void worker_may_block(void);
