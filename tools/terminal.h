/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The client side of the program's stdio, shared by sandbox-run and sandboxctl.
 *
 * With -t: our terminal in raw mode while the sandbox's pty has it, and byte pumping between the two.
 *
 * Without -t: the program never gets a terminal of ours. Each of our stdio descriptors that is a
 * terminal is replaced, for the sandbox, by a pipe whose other end we copy to or from that terminal
 * (stdout and stderr on the same terminal share one pipe, so their order is kept). A terminal
 * descriptor would let the program change the terminal's settings (stty -echo), take it over from a
 * session of its own, or read what the user types to the shell while we run in the background; a
 * pipe allows none of that, and we, in the caller's job, are the only ones touching the terminal, so
 * the shell's job control applies to us as to any program. Other descriptors (files, pipes, sockets)
 * are passed on as they are.
 *
 * Terminal input is copied only while we are the terminal's foreground job (a background reader
 * would be stopped by SIGTTIN at every keystroke meant for the shell), and one read (one line, in
 * the terminal's usual mode) at a time into a one-page pipe: the next is read when the program has
 * taken all of the last. So at most one line the program never asks for is taken from the terminal;
 * the rest of what is typed ahead stays there for the shell after the program.
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/* Copy TTY's window size to PTY and put TTY in raw mode until terminal_restore() (also at exit). */
void terminal_setup(int tty, int pty);
void terminal_restore(void);
/* Copy the window size of TTY to PTY (on SIGWINCH). */
void terminal_copy_size(int tty, int pty);
/* Copy what is available from IN to OUT; false at EOF or on an error of IN or OUT. */
bool terminal_pump(int in, int out);

#define STDIO_RELAY_POLLFDS 4

typedef struct StdioRelay {
        int fds[3];             /* what the sandbox gets as its stdin, stdout, stderr */
        int own[3];             /* fds[i] when it is a pipe end we made (ours to close), else -1 */
        int in_w;               /* our end of the program's stdin pipe, or -1 */
        int out_r[2];           /* our ends of its stdout and stderr pipes, or -1 */
        char buf[4096];         /* terminal input not yet in the pipe */
        size_t len, off;
        bool in_room;           /* the stdin pipe was empty when last seen */
} StdioRelay;

/* Set R up for stdio 0, 1, 2: a pipe for each terminal, the descriptor itself otherwise. */
int stdio_relay_init(StdioRelay *r);
/* The sandbox has its copies of R->fds: close the pipe ends that are the program's. */
void stdio_relay_started(StdioRelay *r);
/* Fill P[0..STDIO_RELAY_POLLFDS) with what to wait for (fd -1 for nothing). */
void stdio_relay_pollfds(StdioRelay *r, struct pollfd p[static STDIO_RELAY_POLLFDS]);
/* Copy what P says is ready. */
void stdio_relay_process(StdioRelay *r, const struct pollfd p[static STDIO_RELAY_POLLFDS]);
/* The sandbox has ended: copy what its output pipes still hold to the terminal. */
void stdio_relay_drain(StdioRelay *r);
void stdio_relay_done(StdioRelay *r);
