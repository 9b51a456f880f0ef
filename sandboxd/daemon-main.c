/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandboxd: socket-activated (or --listen), one sd-event loop serving many clients. It exits by
 * itself after --idle-timeout seconds without clients or sandboxes; SIGTERM ends every sandbox
 * cleanly first. At start it cleans up what a crashed predecessor left in the state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "daemon-config.h"
#include "log.h"
#include "macro.h"
#include "parse.h"
#include "sandbox.h"
#include "server.h"

#define DEFAULT_STATE_DIR "/run/sandboxd"
#define DEFAULT_DATA_DIR "/var/lib/sandboxd"
#define DEFAULT_CONFIG "/etc/sandboxd.conf"
#define NOFILE_WANTED 524288
/* Exit statuses (sandboxd(8)): 0 after an idle exit or SIGTERM, 1 on a failure, 2 for bad usage. */
#define EXIT_USAGE 2

static void help(void) {
        printf("Usage: %s [OPTIONS]\n\n"
               "Run programs in throw-away sandboxes for clients of the socket (sandboxctl).\n"
               "Normally started by systemd socket activation (sandboxd.socket).\n\n"
               "      --listen PATH          listen on PATH instead of socket activation (removed at exit)\n"
               "      --state-dir DIR        state directory (default %s)\n"
               "      --data-dir DIR         the sandboxes' throw-away upper layers, on disk (default %s)\n"
               "      --config FILE          configuration file (default %s, optional)\n"
               "      --store DIR            the image store for --image NAME (default /var/lib/sandbox;\n"
               "                             over the configuration's store=)\n"
               "      --idle-timeout SECONDS exit after this long with no client and no sandbox\n"
               "                             (default 30; 0: never)\n"
               "  -h, --help                 show this help\n"
               "      --version              show the version\n\n"
               "Exit status: 0 after an idle exit or SIGTERM, 1 on a failure, 2 for bad usage.\n"
               "See sandboxd(8); the bounds every sandbox gets, and the caps (max-memory, max-pids,\n"
               "max-timeout, max-disk, ...) for clients other than root: docs/limits.md.\n",
               program_invocation_short_name, DEFAULT_STATE_DIR, DEFAULT_DATA_DIR, DEFAULT_CONFIG);
}

/* --listen: our own socket, 0660 and group "sandbox" when that group exists, like the unit's. RET_ST:
 * the socket file as bound, to remove at exit only if it is still ours. */
static int listen_on(const char *path, struct stat *ret_st) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct group *g;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || stat(path, ret_st) < 0)
                return -errno;
        g = getgrnam("sandbox");
        if (chmod(path, 0660) < 0 || (g && chown(path, 0, g->gr_gid) < 0))
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int main(int argc, char *argv[]) {
        enum { ARG_LISTEN = 0x100, ARG_STATE_DIR, ARG_DATA_DIR, ARG_CONFIG, ARG_IDLE, ARG_VERSION, ARG_STORE };
        static const struct option options[] = {
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "data-dir", required_argument, NULL, ARG_DATA_DIR },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "idle-timeout", required_argument, NULL, ARG_IDLE },
                { "store", required_argument, NULL, ARG_STORE },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        const char *listen_path = NULL, *state_dir = DEFAULT_STATE_DIR, *config_path = DEFAULT_CONFIG, *store = NULL;
        const char *data_dir = DEFAULT_DATA_DIR;
        bool config_given = false;
        uint32_t idle = 30;
        DaemonConfig config;
        char errbuf[512];
        int c, r, listen_fd = -EBADF;
        unsigned removed = 0;
        struct stat listen_st = {};

        /* Under a service manager stderr goes to the journal, which reads "<N>" priorities. */
        log_setup("sandboxd", getenv("JOURNAL_STREAM") != NULL);

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_LISTEN:
                        listen_path = optarg;
                        break;
                case ARG_STATE_DIR:
                        if (optarg[0] != '/') {
                                log_error("--state-dir '%s': must be an absolute path", optarg);
                                return EXIT_USAGE;
                        }
                        state_dir = optarg;
                        break;
                case ARG_STORE:
                        if (optarg[0] != '/' || strlen(optarg) >= sizeof config.store) {
                                log_error("--store '%s': must be an absolute path of at most %zu bytes", optarg,
                                          sizeof config.store - 1);
                                return EXIT_USAGE;
                        }
                        store = optarg;
                        break;
                case ARG_DATA_DIR:
                        if (optarg[0] != '/') {
                                log_error("--data-dir '%s': must be an absolute path", optarg);
                                return EXIT_USAGE;
                        }
                        data_dir = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        config_given = true;
                        break;
                case ARG_IDLE:
                        if (safe_atou32(optarg, &idle) < 0 || idle > 86400) {
                                log_error("--idle-timeout '%s': expected seconds from 0 to 86400", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("sandboxd %s\n", PROJECT_VERSION);
                        return 0;
                default:
                        return EXIT_USAGE; /* getopt said why */
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s' (see --help)", argv[optind]);
                return EXIT_USAGE;
        }
        if (geteuid() != 0) {
                log_error("sandboxd must run as root.");
                return 1;
        }

        config_init(&config);
        r = config_load(config_path, config_given, &config, errbuf, sizeof errbuf);
        if (r < 0) {
                log_error("Invalid configuration: %s", errbuf);
                return 1;
        }
        if (store)
                strcpy(config.store, store);

        if (listen_path) {
                listen_fd = listen_on(listen_path, &listen_st);
                if (listen_fd < 0) {
                        log_error_errno(listen_fd, "Failed to listen on '%s': %m", listen_path);
                        return 1;
                }
        } else {
                int n = sd_listen_fds(true);
                if (n < 0) {
                        log_error_errno(n, "Failed to get the sockets from the service manager: %m");
                        return 1;
                }
                if (n != 1) {
                        log_error("Expected exactly one socket from the service manager, got %d; use --listen PATH "
                                  "to run without socket activation.", n);
                        return 1;
                }
                listen_fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(listen_fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        log_error("The socket from the service manager is not a listening unix stream socket.");
                        return 1;
                }
                (void) fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
                (void) fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
        }

        /* Before any thread exists: sandboxes must not inherit our supplementary groups (sandbox_start()
         * drops them too, but in a threaded process that is a broadcast to every thread). */
        if (setgroups(0, NULL) < 0) {
                log_error_errno(-errno, "Failed to drop our supplementary groups: %m");
                return 1;
        }
        /* Every connection and every sandbox holds descriptors of ours: max-connections and
         * max-sandboxes need more than the usual soft limit of 1024. Up to the hard limit needs no
         * privilege; a sandbox gets its own limit (sandbox_start()). */
        {
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < MIN(rl.rlim_max, (rlim_t) NOFILE_WANTED)) {
                        rl.rlim_cur = MIN(rl.rlim_max, (rlim_t) NOFILE_WANTED);
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                log_warning_errno(-errno, "Failed to raise our limit of open files, ignoring: %m");
                }
        }

        /* Under systemd with Delegate=yes on a cgroup v2 host our cgroup is ours to divide: move into
         * a leaf and enable the controllers for the sandboxes beside it. */
        r = sandbox_setup_cgroups("supervisor", "run sandboxd under its unit (sandboxd.service, which has "
                                  "Delegate=yes)");
        if (r < 0)
                log_warning_errno(r, "Failed to set up our delegated cgroup, limits may not work: %m");

        /* What a predecessor that crashed (or was killed) left behind. */
        r = sandbox_cleanup_stale(&(SandboxConfig) { .state_dir = state_dir, .data_dir = data_dir, .net = &config.net },
                                  &removed);
        if (r < 0)
                log_warning_errno(r, "Failed to clean up all stale sandboxes in '%s', ignoring: %m", state_dir);
        else if (removed > 0)
                log_notice("Removed %u stale sandbox(es) left by an earlier run.", removed);

        r = server_run(listen_fd, state_dir, data_dir, &config, (uint64_t) idle * 1000000);
        safe_close(listen_fd);
        /* Our socket file goes with us; not one that another daemon bound at that path meanwhile. */
        if (listen_path) {
                struct stat st;
                if (stat(listen_path, &st) >= 0 && st.st_dev == listen_st.st_dev && st.st_ino == listen_st.st_ino)
                        (void) unlink(listen_path);
        }
        return r < 0 ? 1 : 0;
}
