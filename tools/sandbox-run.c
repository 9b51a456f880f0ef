/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-run: start one sandbox without a daemon, wait for it, exit with its status.
 * The loop watches the sandbox's init (pidfd), our signals (forwarded to the program), the limit
 * timer, and with -t shuttles bytes between our terminal and the sandbox's pty; without -t, between
 * our terminal and the pipes that stand in for it (terminal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "exec-options.h"
#include "macro.h"
#include "parse.h"
#include "sandbox.h"
#include "time-util.h"
#include "stats.h"
#include "terminal.h"

static int run(ExecOptions *o) {
        static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
        Sandbox *s = NULL;
        SandboxError err = {};
        SandboxResult res = {};
        _cleanup_close_ int sfd = -EBADF;
        _cleanup_(stdio_relay_done) StdioRelay relay = { .own = { -1, -1, -1 }, .in_w = -1, .out_r = { -1, -1 } };
        sigset_t mask;
        int pty, r;
        bool stdin_open = true, pty_open = true;
        const StatsTarget stats = { .path = o->stats_path, .fd = o->stats_fd };

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&mask, forwarded[i]);
        /* Not forwarded: it only wakes the loop when the shell resumes us (fg), to see whether we are
         * the terminal's foreground job now. */
        sigaddset(&mask, SIGCONT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                fprintf(stderr, "sandbox-run: signalfd: %m\n");
                return SANDBOX_EXIT_SETUP;
        }

        /* On a cgroup v2 host the sandbox's cgroup goes below ours: divide ours when it is delegated
         * to us (systemd-run --scope -p Delegate=yes), as sandboxd does under its unit. A refusal is
         * reported by sandbox_start(), once a limit needs a controller. */
        (void) sandbox_setup_cgroups("supervisor",
                                     "run sandbox-run as the command of a delegated scope: systemd-run --scope "
                                     "-p Delegate=yes sandbox-run ..., or use sandboxctl exec");

        /* The network defaults, with the name servers from elsewhere if asked (tests, hosts whose
         * resolvers are not in /etc/resolv.conf). The rules a bridge already has (a configured
         * sandboxd's) are kept: net.replace_rules stays false. */
        NetConfig net;
        net_config_init(&net);
        {
                const char *keys[] = { "SANDBOX_RESOLV_CONF", "SANDBOX_RESOLV_CONF_UPSTREAM" };
                char *dst[] = { net.resolv_conf, net.resolv_conf_upstream };
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        const char *v = getenv(keys[i]);
                        if (!v)
                                continue;
                        if (v[0] != '/' || strlen(v) >= sizeof net.resolv_conf) {
                                fprintf(stderr, "sandbox-run: $%s: expected an absolute path of at most %zu bytes\n",
                                        keys[i], sizeof net.resolv_conf - 1);
                                return SANDBOX_EXIT_SETUP;
                        }
                        strcpy(dst[i], v);
                }
        }

        /* What an earlier sandbox-run left when it was killed: tidy it up first. */
        SandboxConfig cfg = { .state_dir = getenv("SANDBOX_STATE_DIR"), .data_dir = getenv("SANDBOX_DATA_DIR"),
                              .net = &net, .store = o->store };
        (void) sandbox_cleanup_stale(&cfg, NULL);

        if (!o->spec.tty) {
                r = stdio_relay_init(&relay);
                if (r < 0) {
                        fprintf(stderr, "sandbox-run: cannot make pipes for the program's stdio: %s\n", strerror(-r));
                        return SANDBOX_EXIT_SETUP;
                }
        }
        r = sandbox_start(&o->spec, &cfg, o->spec.tty ? NULL : relay.fds, &s, &err);
        if (r < 0) {
                fprintf(stderr, "sandbox-run: %s\n", err.message);
                if (stats.path || stats.fd >= 0)
                        (void) stats_write_error(&stats, err.status, err.message);
                return err.status;
        }
        stdio_relay_started(&relay);
        /* A program that closes its end of a pipe we feed gives EPIPE, not our death. Only now: the
         * sandbox's processes, forked above, keep the default. */
        (void) signal(SIGPIPE, SIG_IGN);

        pty = sandbox_pty_fd(s);
        if (pty >= 0) {
                if (isatty(STDIN_FILENO))
                        terminal_setup(STDIN_FILENO, pty);
                (void) fcntl(pty, F_SETFL, O_NONBLOCK);
        }

        for (;;) {
                struct pollfd p[4 + STDIO_RELAY_POLLFDS] = {
                        { .fd = sandbox_pidfd(s), .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                        { .fd = pty >= 0 && stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
                        { .fd = pty >= 0 && pty_open ? pty : -1, .events = POLLIN },
                };
                stdio_relay_pollfds(&relay, p + 4);
                uint64_t next = sandbox_check_limits(s), now = now_usec();
                int timeout = next == 0 ? -1 : next <= now ? 0 : (int) MIN((next - now + 999) / 1000, (uint64_t) INT32_MAX);

                r = poll(p, ELEMENTSOF(p), timeout);
                if (r < 0 && errno != EINTR)
                        break;
                if (p[3].revents) {
                        if (!terminal_pump(pty, STDOUT_FILENO))
                                pty_open = false;
                }
                stdio_relay_process(&relay, p + 4);
                if (p[0].revents & POLLIN) {
                        /* Drain what the program wrote before it ended. */
                        while (pty >= 0 && pty_open && terminal_pump(pty, STDOUT_FILENO))
                                ;
                        stdio_relay_drain(&relay);
                        break;
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof si) == sizeof si) {
                                if (si.ssi_signo == SIGCONT)
                                        continue;
                                if (si.ssi_signo == SIGWINCH) {
                                        if (pty >= 0)
                                                terminal_copy_size(STDIN_FILENO, pty);
                                        continue;
                                }
                                /* The sandbox has a session of its own: a terminal's ^C, ^\ or
                                 * hang-up reaches only us, and we pass it on. */
                                (void) sandbox_signal(s, (int) si.ssi_signo);
                        }
                }
                if (p[2].revents) {
                        if (!terminal_pump(STDIN_FILENO, pty)) {
                                stdin_open = false;
                                /* Our input ended: pass EOF on as the terminal would (^D). */
                                (void) !write(pty, "\004", 1);
                        }
                }
        }

        r = sandbox_finish(s, false, &res);
        if (r < 0)
                fprintf(stderr, "sandbox-run: warning: cleaning up the sandbox failed: %s\n", strerror(-r));
        terminal_restore();
        if (res.limit == SANDBOX_LIMIT_MEMORY && o->spec.memory_max == SPEC_UNLIMITED)
                fprintf(stderr, "sandbox-run: the program was killed for lack of memory (with --memory unlimited)\n");
        else if (res.limit == SANDBOX_LIMIT_MEMORY) {
                /* The limit in force: the one given, or the default. */
                uint64_t limit = o->spec.memory_max ?: SPEC_DEFAULT_MEMORY;
                char buf[FORMAT_SIZE_MAX];
                fprintf(stderr, "sandbox-run: the memory limit (%s%s) was exceeded; the program was killed\n",
                        format_size(limit, buf, sizeof buf), o->spec.memory_max ? "" : ", the default");
        } else if (res.limit == SANDBOX_LIMIT_TIMEOUT)
                fprintf(stderr, "sandbox-run: the time limit (--timeout %.3g s) was reached; the program was killed\n",
                        (double) o->spec.timeout_usec / 1e6);
        else if (res.limit == SANDBOX_LIMIT_CPU_TIME)
                fprintf(stderr, "sandbox-run: the CPU time limit (--cpu-time %.3g s) was reached; the program was "
                        "killed\n", (double) o->spec.cpu_time_usec / 1e6);
        if (res.union_failed && res.limit == SANDBOX_LIMIT_NONE) {
                if (res.union_signal)
                        fprintf(stderr, "sandbox-run: the sandbox's file system server was killed (%s); the sandbox "
                                "was stopped\n", strsignal(res.union_signal));
                else
                        fprintf(stderr, "sandbox-run: the sandbox's file system server failed; the sandbox was "
                                "stopped\n");
        }
        if (res.disk_limit_hit)
                fprintf(stderr, "sandbox-run: the disk limit (--disk) was reached: writes past it failed with "
                        "'No space left on device'\n");
        if (stats.path || stats.fd >= 0) {
                r = stats_write(&stats, &res);
                if (r < 0)
                        fprintf(stderr, "sandbox-run: cannot write --stats '%s': %s\n",
                                stats_target_name(&stats, (char[4200]) {}, 4200), strerror(-r));
        }
        sandbox_free(s);
        return res.status;
}

int main(int argc, char *argv[]) {
        _cleanup_(exec_options_done) ExecOptions o = {};

        if (exec_options_parse(argc, argv, &o) < 0)
                return SANDBOX_EXIT_SETUP;
        if (o.show_help) {
                printf("Usage: %s [OPTIONS] [--] CMD [ARGS...]\n"
                       "       %s [OPTIONS] --image NAME [--] [ARGS...]\n\n"
                       "Run CMD in a throw-away sandbox: its own copy-on-write root, pids, host name, IPC\n"
                       "and network, no privilege on the host, and the limits given. With an image of the\n"
                       "store and no command, the image's Entrypoint and Cmd.\n\n",
                       program_invocation_short_name,
                       program_invocation_short_name);
                exec_options_help(stdout, false);
                printf("\nSee sandbox-run(1).\n");
                return 0;
        }
        if (o.show_version) {
                printf("sandbox-run %s\n", PROJECT_VERSION);
                return 0;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "sandbox-run: needs root (it sets up the sandbox's namespaces, cgroup and union as "
                        "host root).\nAs another user, run the same options through the daemon: sandboxctl exec "
                        "[OPTIONS] -- CMD (see sandboxctl(1); members of group 'sandbox' may use it).\n");
                return SANDBOX_EXIT_SETUP;
        }
        return run(&o);
}
