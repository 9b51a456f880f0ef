/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
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
