/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of -t: our terminal in raw mode while the sandbox's pty has it, and byte pumping. */
#pragma once

#include <stdbool.h>

/* Copy TTY's window size to PTY and put TTY in raw mode until terminal_restore() (also at exit). */
void terminal_setup(int tty, int pty);
void terminal_restore(void);
/* Copy the window size of TTY to PTY (on SIGWINCH). */
void terminal_copy_size(int tty, int pty);
/* Copy what is available from IN to OUT; false at EOF or on an error of IN or OUT. */
bool terminal_pump(int in, int out);
