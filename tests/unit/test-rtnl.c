/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of net/rtnl.c against the real kernel, as root. Without root, only the name
 * validation runs and every other case is skipped.
 *
 * Isolation: as root, main() first moves the whole test process into a network namespace of its
 * own (unshare(CLONE_NEWNET)); that namespace, H, plays the host. The host's real namespace is never
 * used by any socket or `ip` command of this test, so its interfaces cannot be touched, and no
 * traffic can leave. The "sandboxes" A and B are further anonymous namespaces, held only by fds
 * (no `ip netns add`, nothing under /run/netns): they disappear with those fds, also when the test
 * dies. Links in H are named with a per-run prefix ("sx<4 hex>"); after every case (also a failed
 * one) every link with that prefix is deleted by rtnl_link_list() + rtnl_link_delete(), and the last
 * case checks that H, A and B hold nothing but lo, with rtnl and with `ip -j` as an oracle.
 *
 * Cases: name validation (-EINVAL before sending); bridge create/-EEXIST/kind/ext-ack/delete/
 * -ENODEV; veth with the peer created in another namespace (and atomically refused when the peer's
 * name exists there); master (-ENODEV for a missing one)/up/rename to eth0/address/default route,
 * read back with rtnl and `ip -j`; port isolation (read back with rtnl and `ip -j -d`) and a real TCP
 * connect between two sandboxes on the bridge, which works, fails with both ports isolated, and
 * works again with one; rtnl_open_in_netns() with a bad fd leaves the thread where it was.
 * Output is TAP.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "rtnl.h"
#include "tap.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Rtnl *, rtnl_close);
#define _cleanup_rtnl_ _cleanup_(rtnl_closep)

static bool is_root;
static char pfx[8]; /* "sx" + 4 hex digits: names "<pfx>br", "<pfx>ha", ... fit in 15 bytes */
static pid_t live_kids[8];

/* ------------------------------------------------------------------------------------------------
 * Helpers
 */

static const char *name(const char *suffix) {
        static char bufs[8][16];
        static unsigned i;
        char *b = bufs[i++ % ELEMENTSOF(bufs)];
        snprintf(b, sizeof bufs[0], "%s%s", pfx, suffix);
        return b;
}

static struct in_addr ip4(const char *s) {
        struct in_addr a = {};
        if (inet_pton(AF_INET, s, &a) != 1)
                abort();
        return a;
}

static void track_kid(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++)
                if (live_kids[i] == 0) {
                        live_kids[i] = pid;
                        return;
                }
        abort();
}

static int reap_kid(pid_t pid) {
        int status;
        pid_t r;
        do
                r = waitpid(pid, &status, 0);
        while (r < 0 && errno == EINTR);
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++)
                if (live_kids[i] == pid)
                        live_kids[i] = 0;
        return r < 0 ? -errno : status;
}

static void kill_kids(void) {
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++)
                if (live_kids[i] > 0) {
                        (void) kill(live_kids[i], SIGKILL);
                        (void) waitpid(live_kids[i], NULL, 0);
                        live_kids[i] = 0;
                }
}

static void fatal_signal(int sig) {
        /* Links and namespaces go away with this process (they live in its private namespaces);
         * only the kids need ending. */
        printf("# signal %d: cleaning up\n", sig);
        kill_kids();
        _exit(1);
}

/* A new anonymous network namespace, held by the returned fd; the caller stays where it is. */
static int new_netns(void) {
        _cleanup_close_ int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        int fd;

        if (orig < 0)
                return -errno;
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                fd = -errno;
        if (setns(orig, CLONE_NEWNET) < 0) {
                printf("Bail out! cannot return to the test's namespace: %m\n");
                _exit(1);
        }
        return fd;
}

static ino_t own_netns_ino(void) {
        struct stat st;
        return stat("/proc/thread-self/ns/net", &st) < 0 ? 0 : st.st_ino;
}

/* Run `ip ARGS...` in namespace NETNS_FD (-1: H); its stdout into OUT. Returns the exit status
 * (0 on success) or -errno. The oracle: never used by the code under test. */
static int run_ip(int netns_fd, char *out, size_t size, const char *const *args) {
        const char *argv[16] = { "ip" };
        int pipefd[2];
        size_t n = 0, k;
        pid_t pid;
        int status;

        for (k = 0; args[k] && k + 2 < ELEMENTSOF(argv); k++)
                argv[k + 1] = args[k];
        argv[k + 1] = NULL;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -errno;
        }
        if (pid == 0) {
                if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
                        _exit(126);
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(126);
                execvp("ip", (char **) argv);
                _exit(127);
        }
        track_kid(pid);
        close(pipefd[1]);
        for (;;) {
                ssize_t m = read(pipefd[0], out + n, size - 1 - n);
                if (m < 0 && errno == EINTR)
                        continue;
                if (m <= 0)
                        break;
                n += (size_t) m;
                if (n == size - 1)
                        break;
        }
        out[n] = '\0';
        close(pipefd[0]);
        status = reap_kid(pid);
        if (status < 0)
                return status;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define IP(ns, buf, ...) run_ip(ns, buf, sizeof(buf), (const char *const[]) { __VA_ARGS__, NULL })

typedef struct Names {
        char names[16][16];
        unsigned n;
        bool only_prefixed;
} Names;

static int collect_cb(const char *ifname, int ifindex, const char *kind, void *userdata) {
        Names *s = userdata;
        CHECK(ifindex > 0);
        CHECK(kind);
        if (s->only_prefixed && !startswith(ifname, pfx))
                return 0;
        if (s->n >= ELEMENTSOF(s->names))
                return -ENOBUFS;
        snprintf(s->names[s->n++], sizeof s->names[0], "%s", ifname);
        return 0;
}

static bool names_contain(const Names *s, const char *ifname) {
        for (unsigned i = 0; i < s->n; i++)
                if (streq(s->names[i], ifname))
                        return true;
        return false;
}

/* Delete every link of H with our prefix (what a runtime does after a crash). */
static int remove_leftovers(void) {
        _cleanup_rtnl_ Rtnl *r = NULL;
        Names s = { .only_prefixed = true };
        int k;

        k = rtnl_open(&r);
        if (k < 0)
                return k;
        k = rtnl_link_list(r, collect_cb, &s);
        if (k < 0)
                return k;
        for (unsigned i = 0; i < s.n; i++) {
                k = rtnl_link_delete(r, s.names[i]);
                /* -ENODEV: the other end of a veth pair deleted just before. */
                if (k < 0 && k != -ENODEV)
                        return k;
        }
        return (int) s.n;
}

/* Exactly "lo" in the namespace of R, by a dump and by `ip -j link` in NETNS_FD (-1: H). */
static int check_only_lo(Rtnl *r, int netns_fd) {
        Names s = {};
        char out[4096];

        CHECK_EQ(rtnl_link_list(r, collect_cb, &s), 0);
        CHECK_EQ(s.n, 1);
        CHECK_STREQ(s.names[0], "lo");
        CHECK_EQ(IP(netns_fd, out, "-j", "link", "show"), 0);
        CHECK(strstr(out, "\"ifname\":\"lo\""));
        CHECK(!strstr(out, pfx));
        CHECK(!strstr(out, "eth0"));
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * TCP reachability between two namespaces: a listener child in one, a client child in the other.
 * Returns 0 if the client connected (and the listener accepted), else the client's errno as -errno.
 */

static void listener_main(int netns_fd, uint16_t port, int ready_fd, int timeout_ms) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        struct pollfd p;
        char c = 'r', got[2] = {};
        int s, one = 1, a;

        alarm(20);
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                _exit(10);
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(s, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(s, 4) < 0)
                _exit(11);
        if (write(ready_fd, &c, 1) != 1)
                _exit(12);
        p = (struct pollfd) { .fd = s, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) != 1)
                _exit(13);
        a = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (a < 0)
                _exit(14);
        p = (struct pollfd) { .fd = a, .events = POLLIN };
        if (poll(&p, 1, 2000) != 1 || read(a, got, 2) != 2 || memcmp(got, "hi", 2) != 0)
                _exit(15);
        _exit(0);
}

static void client_main(int netns_fd, struct in_addr dst, uint16_t port, int timeout_ms) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = dst };
        struct timespec start, now;
        int last = ETIMEDOUT;

        alarm(20);
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                _exit(250);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                int s, left, err = 0;
                socklen_t l = sizeof err;
                struct pollfd p;

                clock_gettime(CLOCK_MONOTONIC, &now);
                left = timeout_ms - (int) ((now.tv_sec - start.tv_sec) * 1000 +
                                           (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left <= 0)
                        _exit(last);
                s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (s < 0)
                        _exit(251);
                if (connect(s, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS) {
                        last = errno;
                        close(s);
                        usleep(100000);
                        continue;
                }
                p = (struct pollfd) { .fd = s, .events = POLLOUT };
                if (poll(&p, 1, left) != 1) {
                        close(s);
                        _exit(ETIMEDOUT);
                }
                if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        _exit(252);
                if (err == 0) {
                        if (write(s, "hi", 2) != 2)
                                _exit(253);
                        _exit(0);
                }
                last = err;
                close(s);
                usleep(100000);
        }
}

static int tcp_connect_check(int listen_ns, int connect_ns, const char *dst, uint16_t port, int timeout_ms) {
        int ready[2], status_l, status_c;
        struct pollfd p;
        pid_t listener, client;
        char c;

        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        listener = fork();
        if (listener < 0)
                return -errno;
        if (listener == 0)
                listener_main(listen_ns, port, ready[1], timeout_ms + 1000);
        track_kid(listener);
        close(ready[1]);
        p = (struct pollfd) { .fd = ready[0], .events = POLLIN };
        if (poll(&p, 1, 5000) != 1 || read(ready[0], &c, 1) != 1) {
                close(ready[0]);
                printf("# listener not ready\n");
                kill_kids();
                return -EIO;
        }
        close(ready[0]);

        client = fork();
        if (client < 0)
                return -errno;
        if (client == 0)
                client_main(connect_ns, ip4(dst), port, timeout_ms);
        track_kid(client);
        status_c = reap_kid(client);
        if (status_c >= 0 && WIFEXITED(status_c) && WEXITSTATUS(status_c) == 0) {
                status_l = reap_kid(listener);
                if (status_l < 0 || !WIFEXITED(status_l) || WEXITSTATUS(status_l) != 0) {
                        printf("# listener status 0x%x\n", status_l);
                        return -EIO;
                }
                return 0;
        }
        kill_kids();
        if (status_c < 0 || !WIFEXITED(status_c))
                return -EIO;
        return -WEXITSTATUS(status_c);
}

/* ------------------------------------------------------------------------------------------------
 * Cases
 */

static int test_ifname_validation(void) {
        static const char *const good[] = { "eth0", "a", "br-sbx", "x123456789abcde", "veth.1", "..." };
        static const char *const bad[] = { "", ".", "..", "a/b", "a b", "a\tb", "a:1", "x123456789abcdef",
                                           "\x01x", "a\nb" };
        _cleanup_rtnl_ Rtnl *r = NULL;

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                CHECK(rtnl_ifname_is_valid(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(!rtnl_ifname_is_valid(bad[i]));
        CHECK(!rtnl_ifname_is_valid(NULL));

        if (!is_root)
                return 0; /* no socket outside a private namespace */

        /* Refused before anything is sent: no ext-ack, and nothing created. */
        CHECK_EQ(rtnl_open(&r), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int idx = 0;
                char kind[16];
                CHECK_EQ(rtnl_bridge_create(r, bad[i], 0), -EINVAL);
                CHECK_EQ(rtnl_veth_create(r, "sxok", bad[i], 0, -1), -EINVAL);
                CHECK_EQ(rtnl_veth_create(r, bad[i], "sxok", 0, -1), -EINVAL);
                CHECK_EQ(rtnl_link_rename(r, "lo", bad[i]), -EINVAL);
                CHECK_EQ(rtnl_link_index(r, bad[i], &idx), -EINVAL);
                CHECK_EQ(rtnl_link_kind(r, bad[i], kind, sizeof kind), -EINVAL);
                CHECK_EQ(rtnl_link_delete(r, bad[i]), -EINVAL);
                CHECK_EQ(rtnl_link_set_master(r, "lo", bad[i]), -EINVAL);
                CHECK_EQ(idx, 0);
                CHECK(!rtnl_last_error(r));
        }
        CHECK_EQ(rtnl_addr_add(r, "lo", ip4("10.9.9.9"), 33), -EINVAL);
        return 0;
}

static int test_open_in_netns_bad_fd(void) {
        _cleanup_close_ int fd = -EBADF;
        Rtnl *r = NULL;
        ino_t before = own_netns_ino();

        if (!is_root)
                return tap_skip("needs root");
        CHECK(before != 0);
        /* Not a namespace fd: setns() fails, nothing opened, still in H. */
        fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(rtnl_open_in_netns(fd, &r), -EINVAL);
        CHECK(!r);
        CHECK_EQ(rtnl_open_in_netns(-1, &r), -EBADF);
        CHECK(own_netns_ino() == before);
        return 0;
}

static int test_bridge(void) {
        _cleanup_rtnl_ Rtnl *r = NULL;
        char kind[16] = "unchanged", tiny[3] = "xx";
        int idx = -1, idx2 = -1;

        if (!is_root)
                return tap_skip("needs root");
        CHECK_EQ(rtnl_open(&r), 0);

        CHECK_EQ(rtnl_bridge_create(r, name("br"), 1400), 0);
        CHECK(!rtnl_last_error(r));
        CHECK_EQ(rtnl_link_index(r, name("br"), &idx), 0);
        CHECK(idx > 1);
        CHECK_EQ(rtnl_link_kind(r, name("br"), kind, sizeof kind), 0);
        CHECK_STREQ(kind, "bridge");
        CHECK_EQ(rtnl_link_kind(r, name("br"), tiny, sizeof tiny), -ERANGE);
        CHECK_STREQ(tiny, "xx");
        CHECK_EQ(rtnl_link_kind(r, "lo", kind, sizeof kind), 0);
        CHECK_STREQ(kind, "");

        /* A second create fails, whatever its kind. */
        CHECK_EQ(rtnl_bridge_create(r, name("br"), 0), -EEXIST);
        printf("# bridge exists: %s (kernel: %s)\n", strerror(EEXIST), rtnl_last_error(r) ?: "no message");
        CHECK_EQ(rtnl_veth_create(r, name("br"), name("p"), 0, -1), -EEXIST);
        CHECK_EQ(rtnl_link_index(r, name("p"), &idx2), -ENODEV); /* nothing half-made */
        CHECK_EQ(rtnl_bridge_create(r, "lo", 0), -EEXIST);

        /* An error with the kernel's extended ACK message, which the next success clears. */
        CHECK_EQ(rtnl_bridge_create(r, name("bx"), 70000), -EINVAL);
        CHECK(rtnl_last_error(r));
        printf("# mtu 70000: %s (kernel: %s)\n", strerror(EINVAL), rtnl_last_error(r));
        CHECK(strstr(rtnl_last_error(r), "mtu"));
        CHECK_EQ(rtnl_link_index(r, name("bx"), &idx2), -ENODEV);
        CHECK_EQ(rtnl_link_set_mtu(r, name("br"), 1300), 0);
        CHECK(!rtnl_last_error(r));

        CHECK_EQ(rtnl_link_set_up(r, name("br")), 0);
        {
                char out[4096];
                CHECK_EQ(IP(-1, out, "-j", "-d", "link", "show", "dev", name("br")), 0);
                CHECK(strstr(out, "\"info_kind\":\"bridge\""));
                CHECK(strstr(out, "\"mtu\":1300"));
                CHECK(strstr(out, "\"UP\""));
        }

        CHECK_EQ(rtnl_link_delete(r, name("br")), 0);
        CHECK_EQ(rtnl_link_delete(r, name("br")), -ENODEV);
        CHECK_EQ(rtnl_link_index(r, name("br"), &idx2), -ENODEV);
        CHECK_EQ(rtnl_link_kind(r, name("br"), kind, sizeof kind), -ENODEV);
        CHECK_EQ(rtnl_link_set_up(r, name("br")), -ENODEV);
        CHECK_EQ(idx2, -1);
        return 0;
}

static int test_veth_peer_in_netns(void) {
        _cleanup_rtnl_ Rtnl *h = NULL, *a = NULL;
        _cleanup_close_ int ns_a = -EBADF;
        char kind[16], out[8192];
        Names s = {};
        int idx;

        if (!is_root)
                return tap_skip("needs root");
        ns_a = new_netns();
        CHECK(ns_a >= 0);
        CHECK_EQ(rtnl_open(&h), 0);
        CHECK_EQ(rtnl_open_in_netns(ns_a, &a), 0);

        CHECK_EQ(rtnl_veth_create(h, name("ha"), name("pa"), 1400, ns_a), 0);
        /* The host end here, the peer only there. */
        CHECK_EQ(rtnl_link_kind(h, name("ha"), kind, sizeof kind), 0);
        CHECK_STREQ(kind, "veth");
        CHECK_EQ(rtnl_link_index(h, name("pa"), &idx), -ENODEV);
        CHECK_EQ(rtnl_link_kind(a, name("pa"), kind, sizeof kind), 0);
        CHECK_STREQ(kind, "veth");
        CHECK_EQ(rtnl_link_index(a, name("ha"), &idx), -ENODEV);
        CHECK_EQ(rtnl_link_list(a, collect_cb, &s), 0);
        CHECK_EQ(s.n, 2);
        CHECK(names_contain(&s, "lo"));
        CHECK(names_contain(&s, name("pa")));
        CHECK_EQ(IP(ns_a, out, "-j", "link", "show", "dev", name("pa")), 0);
        CHECK(strstr(out, "\"mtu\":1400"));
        CHECK_EQ(IP(-1, out, "-j", "link", "show", "dev", name("ha")), 0);
        CHECK(strstr(out, "\"mtu\":1400"));

        /* Same host name: -EEXIST. New host name but the peer's name taken there: -EEXIST, and the
         * host end was not left behind either. */
        CHECK_EQ(rtnl_veth_create(h, name("ha"), name("pz"), 0, ns_a), -EEXIST);
        printf("# veth exists: %s (kernel: %s)\n", strerror(EEXIST), rtnl_last_error(h) ?: "no message");
        CHECK_EQ(rtnl_veth_create(h, name("hb"), name("pa"), 0, ns_a), -EEXIST);
        printf("# peer exists: %s (kernel: %s)\n", strerror(EEXIST), rtnl_last_error(h) ?: "no message");
        CHECK_EQ(rtnl_link_index(h, name("hb"), &idx), -ENODEV);
        CHECK_EQ(rtnl_link_index(a, name("pz"), &idx), -ENODEV);

        /* A missing master. */
        CHECK_EQ(rtnl_link_set_master(h, name("ha"), name("nobr")), -ENODEV);
        CHECK_EQ(rtnl_link_set_master(h, name("nx"), "lo"), -ENODEV);

        /* Deleting the host end takes the peer with it. */
        CHECK_EQ(rtnl_link_delete(h, name("ha")), 0);
        CHECK_EQ(rtnl_link_index(a, name("pa"), &idx), -ENODEV);
        CHECK_EQ(check_only_lo(a, ns_a), 0);
        return 0;
}

typedef struct Sandbox {
        const char *letter; /* "a", "b" */
        const char *addr;
        int ns;
        Rtnl *rtnl;
} Sandbox;

/* What the runtime does for one sandbox: veth, host end on the bridge and up, peer renamed to eth0,
 * up, addressed, default route via the bridge. */
static int wire_sandbox(Rtnl *h, Sandbox *sb) {
        char host[16], peer[16];
        snprintf(host, sizeof host, "%sh%s", pfx, sb->letter);
        snprintf(peer, sizeof peer, "%sp%s", pfx, sb->letter);

        CHECK_EQ(rtnl_veth_create(h, host, peer, 1500, sb->ns), 0);
        CHECK_EQ(rtnl_link_set_master(h, host, name("br")), 0);
        CHECK_EQ(rtnl_link_set_up(h, host), 0);
        CHECK_EQ(rtnl_link_rename(sb->rtnl, peer, "eth0"), 0);
        CHECK_EQ(rtnl_link_set_up(sb->rtnl, "eth0"), 0);
        CHECK_EQ(rtnl_link_set_up(sb->rtnl, "lo"), 0);
        CHECK_EQ(rtnl_addr_add(sb->rtnl, "eth0", ip4(sb->addr), 24), 0);
        CHECK_EQ(rtnl_route_add_default(sb->rtnl, ip4("10.213.0.1"), "eth0"), 0);
        return 0;
}

static int check_sandbox(Sandbox *sb) {
        char out[8192], want[128], host[16];
        int idx;

        snprintf(host, sizeof host, "%sh%s", pfx, sb->letter);
        CHECK_EQ(rtnl_link_index(sb->rtnl, "eth0", &idx), 0);
        CHECK_EQ(IP(sb->ns, out, "-j", "addr", "show", "dev", "eth0"), 0);
        snprintf(want, sizeof want, "\"family\":\"inet\",\"local\":\"%s\",\"prefixlen\":24", sb->addr);
        CHECK(strstr(out, want));
        CHECK(strstr(out, "\"broadcast\":\"10.213.0.255\""));
        CHECK(strstr(out, "\"UP\""));
        CHECK_EQ(IP(sb->ns, out, "-j", "route", "show", "default"), 0);
        CHECK(strstr(out, "\"dst\":\"default\",\"gateway\":\"10.213.0.1\",\"dev\":\"eth0\""));
        CHECK(strstr(out, "\"protocol\":\"static\""));
        CHECK_EQ(IP(-1, out, "-j", "link", "show", "dev", host), 0);
        snprintf(want, sizeof want, "\"master\":\"%s\"", name("br"));
        CHECK(strstr(out, want));
        /* The same default route again. */
        CHECK_EQ(rtnl_route_add_default(sb->rtnl, ip4("10.213.0.1"), NULL), -EEXIST);
        CHECK_EQ(rtnl_addr_add(sb->rtnl, "eth0", ip4(sb->addr), 24), -EEXIST);
        return 0;
}

static int check_isolated(Rtnl *h, const char *host, bool on) {
        char out[8192];
        bool got = !on;

        CHECK_EQ(rtnl_bridge_port_get_isolated(h, host, &got), 0);
        CHECK_EQ(got, on);
        CHECK_EQ(IP(-1, out, "-j", "-d", "link", "show", "dev", host), 0);
        CHECK(strstr(out, on ? "\"isolated\":true" : "\"isolated\":false"));
        return 0;
}

static int test_wire_and_isolate(void) {
        _cleanup_rtnl_ Rtnl *h = NULL, *ra = NULL, *rb = NULL;
        _cleanup_close_ int ns_a = -EBADF, ns_b = -EBADF;
        Sandbox a = { "a", "10.213.0.2", -1, NULL }, b = { "b", "10.213.0.3", -1, NULL };
        bool dummy;
        int c;

        if (!is_root)
                return tap_skip("needs root");
        ns_a = a.ns = new_netns();
        ns_b = b.ns = new_netns();
        CHECK(ns_a >= 0 && ns_b >= 0);
        CHECK_EQ(rtnl_open(&h), 0);
        CHECK_EQ(rtnl_open_in_netns(ns_a, &ra), 0);
        CHECK_EQ(rtnl_open_in_netns(ns_b, &rb), 0);
        a.rtnl = ra;
        b.rtnl = rb;

        CHECK_EQ(rtnl_bridge_create(h, name("br"), 1500), 0);
        CHECK_EQ(rtnl_addr_add(h, name("br"), ip4("10.213.0.1"), 24), 0);
        CHECK_EQ(rtnl_link_set_up(h, name("br")), 0);
        CHECK_EQ(wire_sandbox(h, &a), 0);
        CHECK_EQ(wire_sandbox(h, &b), 0);
        CHECK_EQ(check_sandbox(&a), 0);
        CHECK_EQ(check_sandbox(&b), 0);

        /* Not a bridge port: the flag can be neither set nor read. */
        CHECK_EQ(rtnl_bridge_port_get_isolated(a.rtnl, "eth0", &dummy), -EOPNOTSUPP);
        CHECK_EQ(rtnl_bridge_port_set_isolated(a.rtnl, "eth0", true), -EOPNOTSUPP);
        CHECK_EQ(rtnl_bridge_port_set_isolated(h, name("nx"), true), -ENODEV);

        /* Both ports open: A reaches a listener in B. */
        CHECK_EQ(check_isolated(h, name("ha"), false), 0);
        CHECK_EQ(tcp_connect_check(ns_b, ns_a, b.addr, 7001, 3000), 0);

        /* Both isolated: no connection. */
        CHECK_EQ(rtnl_bridge_port_set_isolated(h, name("ha"), true), 0);
        CHECK_EQ(rtnl_bridge_port_set_isolated(h, name("hb"), true), 0);
        CHECK_EQ(check_isolated(h, name("ha"), true), 0);
        CHECK_EQ(check_isolated(h, name("hb"), true), 0);
        c = tcp_connect_check(ns_b, ns_a, b.addr, 7002, 1500);
        printf("# connect A->B with both ports isolated: %s\n", tap_errname(c));
        CHECK(c < 0);

        /* And back with one port open (an isolated port may talk to a non-isolated one). */
        CHECK_EQ(rtnl_bridge_port_set_isolated(h, name("hb"), false), 0);
        CHECK_EQ(check_isolated(h, name("hb"), false), 0);
        CHECK_EQ(tcp_connect_check(ns_b, ns_a, b.addr, 7003, 3000), 0);

        /* Tear down: the host ends (their peers go too) and the bridge; nothing but lo is left. */
        CHECK_EQ(rtnl_link_delete(h, name("ha")), 0);
        CHECK_EQ(rtnl_link_delete(h, name("hb")), 0);
        CHECK_EQ(rtnl_link_delete(h, name("br")), 0);
        CHECK_EQ(check_only_lo(a.rtnl, ns_a), 0);
        CHECK_EQ(check_only_lo(b.rtnl, ns_b), 0);
        CHECK_EQ(check_only_lo(h, -1), 0);
        return 0;
}

static int test_leftovers_listed_and_removed(void) {
        _cleanup_rtnl_ Rtnl *h = NULL;
        _cleanup_close_ int ns_a = -EBADF;
        char out[4096];
        Names s = { .only_prefixed = true };

        if (!is_root)
                return tap_skip("needs root");
        ns_a = new_netns();
        CHECK(ns_a >= 0);
        CHECK_EQ(rtnl_open(&h), 0);
        CHECK_EQ(rtnl_bridge_create(h, name("br"), 0), 0);
        CHECK_EQ(rtnl_veth_create(h, name("h1"), "eth0", 0, ns_a), 0);
        CHECK_EQ(rtnl_veth_create(h, name("h2"), name("p2"), 0, -1), 0);

        /* A callback error stops the calls but leaves the socket usable. */
        CHECK_EQ(rtnl_link_list(h, collect_cb, &(Names) { .n = ELEMENTSOF(s.names) }), -ENOBUFS);
        CHECK_EQ(rtnl_link_list(h, collect_cb, &s), 0);
        CHECK_EQ(s.n, 4);
        CHECK(names_contain(&s, name("br")));
        CHECK(names_contain(&s, name("h1")));
        CHECK(names_contain(&s, name("h2")));
        CHECK(names_contain(&s, name("p2")));

        CHECK_EQ(remove_leftovers(), 4);
        CHECK_EQ(remove_leftovers(), 0);
        CHECK_EQ(check_only_lo(h, -1), 0);
        {
                _cleanup_rtnl_ Rtnl *a = NULL;
                CHECK_EQ(rtnl_open_in_netns(ns_a, &a), 0);
                CHECK_EQ(check_only_lo(a, ns_a), 0);
        }
        /* No named namespace was ever made by this test. */
        CHECK_EQ(IP(-1, out, "netns", "list"), 0);
        CHECK(!strstr(out, pfx));
        return 0;
}

int main(int argc, char *argv[]) {
        static const TapTest tests[] = {
                TAP_TEST(ifname_validation),
                TAP_TEST(open_in_netns_bad_fd),
                TAP_TEST(bridge),
                TAP_TEST(veth_peer_in_netns),
                TAP_TEST(wire_and_isolate),
                TAP_TEST(leftovers_listed_and_removed),
        };
        unsigned rnd = 0;
        int failed = 0;

        if (getenv("SBX_TEST_DEBUG")) {
                log_setup("test-rtnl", false);
                log_set_max_level(LOG_DEBUG);
        }
        if (getrandom(&rnd, sizeof rnd, 0) < 0)
                rnd = (unsigned) time(NULL) ^ (unsigned) getpid();
        snprintf(pfx, sizeof pfx, "sx%04x", rnd & 0xffff);

        is_root = geteuid() == 0;
        if (is_root && unshare(CLONE_NEWNET) < 0) {
                printf("Bail out! unshare(CLONE_NEWNET): %m\n");
                return 1;
        }

        struct sigaction sa = { .sa_handler = fatal_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        alarm(55);

        /* tap_run(), with the leftovers of a failed case removed after it. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("1..%zu\n", ELEMENTSOF(tests));
        for (size_t i = 0; i < ELEMENTSOF(tests); i++) {
                tap_skip_reason[0] = '\0';
                int r = tests[i].func();
                kill_kids();
                if (is_root) {
                        int n = remove_leftovers();
                        if (n != 0)
                                printf("# removed %d leftover link(s) after '%s' (%s)\n", n, tests[i].name,
                                       tap_errname(n));
                        if (n != 0 && r == 0)
                                r = -1; /* a passing case must clean up after itself */
                }
                if (r == TAP_SKIP && tap_must_run()) {
                        printf("not ok %zu - %s # skipped (%s) but SBX_TESTS_MUST_RUN=1\n", i + 1,
                               tests[i].name, tap_skip_reason);
                        failed++;
                } else if (r == TAP_SKIP)
                        printf("ok %zu - %s # SKIP %s\n", i + 1, tests[i].name, tap_skip_reason);
                else if (r == 0)
                        printf("ok %zu - %s\n", i + 1, tests[i].name);
                else {
                        printf("not ok %zu - %s\n", i + 1, tests[i].name);
                        failed++;
                }
        }
        return failed ? 1 : 0;
}
