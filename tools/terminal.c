/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of the program's stdio: see terminal.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "terminal.h"

static struct termios saved;
static int saved_fd = -1;

void terminal_restore(void) {
        if (saved_fd >= 0)
                (void) tcsetattr(saved_fd, TCSADRAIN, &saved);
        saved_fd = -1;
}

void terminal_copy_size(int tty, int pty) {
        struct winsize ws;

        if (ioctl(tty, TIOCGWINSZ, &ws) == 0)
                (void) ioctl(pty, TIOCSWINSZ, &ws);
}

void terminal_setup(int tty, int pty) {
        static bool registered;
        struct termios raw;

        terminal_copy_size(tty, pty);
        if (tcgetattr(tty, &saved) < 0)
                return;
        saved_fd = tty;
        if (!registered) {
                atexit(terminal_restore);
                registered = true;
        }
        raw = saved;
        cfmakeraw(&raw);
        (void) tcsetattr(tty, TCSADRAIN, &raw);
}

bool terminal_pump(int in, int out) {
        char buf[16384];
        ssize_t n = read(in, buf, sizeof buf);

        if (n <= 0)
                return n < 0 && (errno == EAGAIN || errno == EINTR);
        for (ssize_t off = 0; off < n;) {
                ssize_t w = write(out, buf + off, (size_t) (n - off));
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = out, .events = POLLOUT };
                                (void) poll(&p, 1, 1000);
                                continue;
                        }
                        return false;
                }
                off += w;
        }
        return true;
}

/* ---- without -t: pipes in front of our terminal ---- */

static void close_fd(int *fd) {
        if (*fd >= 0)
                (void) close(*fd);
        *fd = -1;
}

static bool same_terminal(int a, int b) {
        struct stat sa, sb;
        return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISCHR(sa.st_mode) && S_ISCHR(sb.st_mode) &&
               sa.st_rdev == sb.st_rdev;
}

int stdio_relay_init(StdioRelay *r) {
        int p[2];

        *r = (StdioRelay) {
                .fds = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO },
                .own = { -1, -1, -1 },
                .in_w = -1,
                .out_r = { -1, -1 },
                .in_room = true,
        };
        if (isatty(STDIN_FILENO)) {
                if (pipe2(p, O_CLOEXEC) < 0)
                        goto fail;
                /* One page: the pipe reads as writable only once the program took everything. */
                (void) fcntl(p[1], F_SETPIPE_SZ, 4096);
                (void) fcntl(p[1], F_SETFL, O_NONBLOCK);
                r->fds[0] = r->own[0] = p[0];
                r->in_w = p[1];
        }
        for (int i = 1; i <= 2; i++) {
                if (!isatty(i))
                        continue;
                if (i == 2 && r->out_r[0] >= 0 && same_terminal(STDOUT_FILENO, STDERR_FILENO)) {
                        r->fds[2] = r->fds[1];
                        continue;
                }
                if (pipe2(p, O_CLOEXEC) < 0)
                        goto fail;
                (void) fcntl(p[0], F_SETFL, O_NONBLOCK);
                r->fds[i] = r->own[i] = p[1];
                r->out_r[i - 1] = p[0];
        }
        return 0;
fail:;
        int e = -errno;
        stdio_relay_done(r);
        return e;
}

void stdio_relay_started(StdioRelay *r) {
        for (int i = 0; i < 3; i++) {
                close_fd(&r->own[i]);
                r->fds[i] = -1;
        }
}

/* Whether our process group is the foreground job of the terminal on FD. */
static bool foreground(int fd) {
        pid_t fg = tcgetpgrp(fd);
        return fg < 0 || fg == getpgrp();
}

void stdio_relay_pollfds(StdioRelay *r, struct pollfd p[static STDIO_RELAY_POLLFDS]) {
        bool want_input = r->in_w >= 0 && r->len == 0 && r->in_room;

        p[0] = (struct pollfd) { .fd = want_input && foreground(STDIN_FILENO) ? STDIN_FILENO : -1, .events = POLLIN };
        /* Room in the pipe (it is one page: empty), or the program closed its end. */
        p[1] = (struct pollfd) { .fd = r->in_w >= 0 && !r->in_room ? r->in_w : -1, .events = POLLOUT };
        p[2] = (struct pollfd) { .fd = r->out_r[0], .events = POLLIN };
        p[3] = (struct pollfd) { .fd = r->out_r[1], .events = POLLIN };
}

static void push_input(StdioRelay *r) {
        while (r->off < r->len) {
                ssize_t n = write(r->in_w, r->buf + r->off, r->len - r->off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        close_fd(&r->in_w); /* EPIPE: the program closed its stdin */
                        break;
                }
                r->off += (size_t) n;
        }
        if (r->off >= r->len || r->in_w < 0)
                r->off = r->len = 0;
        r->in_room = false;
}

void stdio_relay_process(StdioRelay *r, const struct pollfd p[static STDIO_RELAY_POLLFDS]) {
        if (p[1].fd >= 0 && p[1].revents) {
                if (p[1].revents & (POLLERR | POLLHUP))
                        close_fd(&r->in_w);
                else {
                        r->in_room = true;
                        if (r->len > 0)
                                push_input(r);
                }
        }
        if (p[0].fd >= 0 && p[0].revents && r->in_w >= 0) {
                ssize_t n = read(STDIN_FILENO, r->buf, sizeof r->buf);
                if (n > 0) {
                        r->len = (size_t) n;
                        r->off = 0;
                        push_input(r);
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                        close_fd(&r->in_w); /* ^D, or our terminal is gone: EOF for the program */
        }
        for (int i = 0; i < 2; i++)
                if (p[2 + i].fd >= 0 && p[2 + i].revents && !terminal_pump(r->out_r[i], STDOUT_FILENO + i))
                        close_fd(&r->out_r[i]);
}

void stdio_relay_drain(StdioRelay *r) {
        char buf[16384];

        for (int i = 0; i < 2; i++)
                while (r->out_r[i] >= 0) {
                        ssize_t n = read(r->out_r[i], buf, sizeof buf);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break; /* EOF, or EAGAIN: a copy of the write end lives on elsewhere */
                        for (ssize_t off = 0; off < n;) {
                                ssize_t w = write(STDOUT_FILENO + i, buf + off, (size_t) (n - off));
                                if (w < 0 && errno == EINTR)
                                        continue;
                                if (w < 0 && errno == EAGAIN) {
                                        struct pollfd pw = { .fd = STDOUT_FILENO + i, .events = POLLOUT };
                                        (void) poll(&pw, 1, 1000);
                                        continue;
                                }
                                if (w < 0) {
                                        close_fd(&r->out_r[i]);
                                        break;
                                }
                                off += w;
                        }
                }
}

void stdio_relay_done(StdioRelay *r) {
        for (int i = 0; i < 3; i++)
                close_fd(&r->own[i]);
        close_fd(&r->in_w);
        close_fd(&r->out_r[0]);
        close_fd(&r->out_r[1]);
}
