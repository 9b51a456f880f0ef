/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of net/nft.c on the real kernel, as root. Every case first moves this process into
 * a network namespace of its own (unshare(CLONE_NEWNET)), so the tables, interfaces, sysctls and
 * traffic of a case exist only there and vanish with the process, also when it is killed; the
 * host's namespace, its ip_forward and its tables are never touched (the original namespace is only
 * entered to read its ip_forward at the end and check that it did not change).
 *
 * `nft` and `jq` serve as the ORACLE (the module itself never runs them):
 *   - structure: after netfilter_setup() + publish_add(), `nft -j list table ip T` canonicalised by
 *     jq (handles and table name dropped) equals the same for a reference table loaded with
 *     `nft -f` from the ruleset text written below, i.e. our bytecode decodes exactly as nft's
 *     (with and without egress-allow, egress-deny and name servers); keep_existing leaves a
 *     bridge's chains alone; the earlier layout's chains go; the largest configuration fits;
 *   - setup twice is identical to setup once; publish_remove removes exactly that sandbox's rules;
 *     teardown removes the table; an unrelated table (even one holding a chain "published" with
 *     "sbx:" comments) is byte-for-byte identical (handles included) after everything;
 *   - failing batches (publish into a missing table; a setup whose batch fails in its middle) return
 *     a message naming the step and leave the whole ruleset exactly as it was.
 * traffic: namespaces "host" (bridges br-x 10.77.0.1/24 and br-y 10.78.0.1/24, uplink 192.0.2.1/24,
 * ip_forward=1, our table), "sbx1" on br-x (10.77.0.2), "sbx2" on br-y (10.78.0.2), "upstream"
 * (192.0.2.2): outbound TCP is masqueraded to 192.0.2.1, a published port reaches sbx1 from
 * upstream and from the host itself (also on 127.0.0.1), sbx2 cannot reach sbx1 (isolation) but can
 * reach upstream, and neither sandbox reaches a service of the host that upstream reaches.
 * Output is TAP; a case that lacks root, nft, jq or network namespaces is skipped with the reason.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "nft.h"
#include "tap.h"

#define OUT_MAX (1024 * 1024)

static char run_id[64];   /* sbxnf-<pid>-<random> */
static char table[64];    /* the table under test: sbxnf_<pid>_<random> */
static char reftab[80];   /* the reference table made with nft */
static char other[80];    /* an unrelated table made with nft */
static int orig_ns = -EBADF;  /* the namespace we started in: only read from */
static int home_ns = -EBADF;  /* the current case's "host" namespace */
static volatile pid_t running_child;

/* ------------------------------------------------------------------------------------------------
 * Processes and namespaces
 */

static void fatal_signal(int sig) {
        pid_t c = running_child;
        if (c > 0)
                (void) kill(c, SIGKILL);
        /* Our namespaces die with us: nothing else to clean up. */
        static const char msg[] = "# fatal signal: giving up\n";
        (void) !write(STDOUT_FILENO, msg, sizeof msg - 1);
        _exit(1);
}

/* Run ARGV in namespace NSFD (-1: the current one) with INPUT on stdin (NULL: /dev/null) and
 * stdout in OUT (NULL: discarded; truncated to OUTSIZE-1 bytes, NUL-terminated). stderr is
 * discarded unless SBX_TEST_DEBUG is set. Returns the exit status, or -errno. */
static int run(int nsfd, const char *const *argv, const char *input, char *out, size_t outsize) {
        int in_pipe[2] = { -1, -1 }, out_pipe[2] = { -1, -1 }, status;
        size_t len = 0;
        pid_t pid;

        if (pipe2(in_pipe, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out_pipe, O_CLOEXEC) < 0) {
                close(in_pipe[0]);
                close(in_pipe[1]);
                return -errno;
        }
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(in_pipe[0]), close(in_pipe[1]), close(out_pipe[0]), close(out_pipe[1]);
                return r;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
                        _exit(126);
                if (dup2(input ? in_pipe[0] : null, STDIN_FILENO) < 0 ||
                    dup2(out ? out_pipe[1] : null, STDOUT_FILENO) < 0 ||
                    (!getenv("SBX_TEST_DEBUG") && dup2(null, STDERR_FILENO) < 0))
                        _exit(126);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        running_child = pid;
        close(in_pipe[0]);
        close(out_pipe[1]);
        if (input) {
                size_t n = strlen(input), done = 0; /* small: fits the pipe before the child reads */
                while (done < n) {
                        ssize_t k = write(in_pipe[1], input + done, n - done);
                        if (k <= 0)
                                break;
                        done += (size_t) k;
                }
        }
        close(in_pipe[1]);
        for (;;) {
                char buf[4096];
                ssize_t k = read(out_pipe[0], buf, sizeof buf);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (out && len + 1 < outsize) {
                        size_t m = MIN((size_t) k, outsize - 1 - len);
                        memcpy(out + len, buf, m);
                        len += m;
                }
        }
        close(out_pipe[0]);
        if (out && outsize > 0)
                out[len] = '\0';
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        running_child = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* A command line of words separated by single spaces (no quoting), formatted, run in NSFD. */
static int cmd(int nsfd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cmd(int nsfd, const char *fmt, ...) {
        char line[512], *argv[32], *save = NULL;
        size_t n = 0;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        char copy[512];
        snprintf(copy, sizeof copy, "%s", line);
        for (char *w = strtok_r(line, " ", &save); w && n + 1 < ELEMENTSOF(argv); w = strtok_r(NULL, " ", &save))
                argv[n++] = w;
        argv[n] = NULL;
        int r = run(nsfd, (const char *const *) argv, NULL, NULL, 0);
        if (r != 0)
                printf("# '%s' failed: %d\n", copy, r);
        return r;
}

static bool have_program(const char *name, const char *version_option) {
        const char *const argv[] = { name, version_option, NULL };
        return run(-1, argv, NULL, NULL, 0) == 0;
}

/* Move into a new network namespace; it becomes the case's home. Its loopback is brought up. */
static int fresh_ns(void) {
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        safe_close(home_ns);
        home_ns = fd;
        return cmd(-1, "ip link set lo up") == 0 ? 0 : -EIO;
}

/* Another namespace (for sandboxes and upstream), the home stays current. */
static int other_ns(int *ret_fd) {
        int fd, r = 0;
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                r = -errno;
        if (setns(home_ns, CLONE_NEWNET) < 0) /* cannot fail for a namespace we were just in */
                abort();
        if (r < 0)
                return r;
        if (cmd(fd, "ip link set lo up") != 0) {
                close(fd);
                return -EIO;
        }
        *ret_fd = fd;
        return 0;
}

static int case_skip_reason(bool need_tools) {
        if (geteuid() != 0)
                return tap_skip("needs root");
        if (need_tools && !have_program("nft", "--version"))
                return tap_skip("needs nft (the oracle)");
        if (need_tools && !have_program("jq", "--version"))
                return tap_skip("needs jq (to canonicalise nft's JSON)");
        if (!have_program("ip", "-V"))
                return tap_skip("needs ip (iproute2)");
        return 0;
}

/* Every case starts like this: skip when impossible, else a fresh namespace. */
#define CASE_BEGIN(need_tools)                                                                   \
        do {                                                                                     \
                int _s = case_skip_reason(need_tools);                                           \
                if (_s)                                                                          \
                        return _s;                                                               \
                int _r = fresh_ns();                                                             \
                if (_r == -EPERM || _r == -EINVAL || _r == -ENOSYS)                              \
                        return tap_skip("cannot create a network namespace");                    \
                CHECK_EQ(_r, 0);                                                                 \
        } while (false)

/* ------------------------------------------------------------------------------------------------
 * The oracle
 */

static char *out_buf(void) {
        static char *b;
        if (!b)
                b = malloc(OUT_MAX);
        return b;
}

/* `nft -j list table ip NAME` as is (handles included) into OUT; the exit status of nft. */
static int nft_json(const char *name, char *out, size_t size) {
        const char *const argv[] = { "nft", "-j", "list", "table", "ip", name, NULL };
        return run(-1, argv, NULL, out, size);
}

static int nft_ruleset_json(char *out, size_t size) {
        const char *const argv[] = { "nft", "-j", "list", "ruleset", NULL };
        return run(-1, argv, NULL, out, size);
}

/* The table's objects, one per line, without handles and the table's name: comparable between
 * two tables with the same content. */
static int nft_canon(const char *name, char *out, size_t size) {
        /* Chains sorted by name (their order means nothing), rules by chain (stable: their order in
         * a chain is kept). */
        static const char filter[] =
                "[.nftables[] | select(has(\"metainfo\") | not) | "
                "if has(\"table\") then {table: (.table | del(.handle, .name))} "
                "elif has(\"chain\") then {chain: (.chain | del(.handle, .table))} "
                "elif has(\"rule\") then {rule: (.rule | del(.handle, .table))} else . end] | "
                "sort_by(if has(\"table\") then 0 elif has(\"chain\") then 1 else 2 end, "
                "(.chain.name // .rule.chain // \"\")) | .[]";
        const char *const argv[] = { "jq", "-c", filter, NULL };
        char *json = out_buf();
        int r;

        if (!json)
                return -ENOMEM;
        r = nft_json(name, json, OUT_MAX);
        if (r != 0)
                return r > 0 ? -EIO : r;
        r = run(-1, argv, json, out, size);
        return r == 0 ? 0 : r > 0 ? -EIO : r;
}

static int nft_load(const char *text) {
        const char *const argv[] = { "nft", "-f", "-", NULL };
        int r = run(-1, argv, text, NULL, 0);
        if (r != 0)
                printf("# nft -f failed (%d) on:\n# %s\n", r, text);
        return r;
}

static int count_lines_with(const char *text, const char *needle) {
        int n = 0;
        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* ------------------------------------------------------------------------------------------------
 * The configurations
 */

static NetfilterBridge bridges[2];
static NetfilterConfig config;

static struct in_addr ip4(const char *s) {
        struct in_addr a = {};
        if (inet_pton(AF_INET, s, &a) != 1)
                abort();
        return a;
}

static NetfilterCidr egress_allow[2], egress_deny[3];
static struct in_addr dns[2];

static void config_init(void) {
        bridges[0] = (NetfilterBridge) { "br-x", ip4("10.77.0.1"), 24 }; /* host bits are ignored */
        bridges[1] = (NetfilterBridge) { "br-y", ip4("10.78.0.0"), 20 };
        config = (NetfilterConfig) { .table = table, .bridges = bridges, .n_bridges = 2 };
}

/* config_init() plus egress-allow, egress-deny and two name servers, one of them denied. */
static void config_egress(void) {
        config_init();
        egress_allow[0] = (NetfilterCidr) { ip4("10.1.2.3"), 16 }; /* host bits are ignored */
        egress_allow[1] = (NetfilterCidr) { ip4("192.0.2.10"), 32 };
        egress_deny[0] = (NetfilterCidr) { ip4("10.0.0.0"), 8 };
        egress_deny[1] = (NetfilterCidr) { ip4("172.16.0.0"), 12 };
        egress_deny[2] = (NetfilterCidr) { ip4("198.51.100.0"), 24 };
        /* 10.0.0.53 is inside egress-deny 10.0.0.0/8: no exception for it. */
        dns[0] = ip4("10.0.0.53");
        dns[1] = ip4("192.0.2.53");
        config.egress_allow = egress_allow;
        config.n_egress_allow = 2;
        config.egress_deny = egress_deny;
        config.n_egress_deny = 3;
        config.dns = dns;
        config.n_dns = 2;
}

/* The chains of bridge X (SUBNET) in nft's syntax, isolated from OTHER; EGRESS: with the egress and
 * name server settings of config_egress(). */
static void expected_bridge(char *buf, size_t size, const char *x, const char *subnet, const char *isolated_from,
                            bool egress) {
        snprintf(buf, size,
                 "  chain postrouting-%1$s {\n"
                 "    type nat hook postrouting priority srcnat; policy accept;\n"
                 "    ip saddr %2$s oifname != \"%1$s\" masquerade comment \"sandbox: masquerade %2$s from %1$s\"\n"
                 "    oifname \"%1$s\" ip saddr 127.0.0.0/8 masquerade comment \"sandbox: published ports, from the host's loopback\"\n"
                 "  }\n"
                 "  chain forward-%1$s {\n"
                 "    type filter hook forward priority filter; policy accept;\n"
                 "    iifname \"%1$s\" oifname \"%3$s\" drop comment \"sandbox: isolate %1$s from %3$s\"\n"
                 "    iifname \"%1$s\" ct state established,related accept comment \"sandbox: replies\"\n"
                 "    iifname \"%1$s\" oifname \"%1$s\" accept comment \"sandbox: between the sandboxes of %1$s\"\n"
                 "%4$s"
                 "    iifname \"%1$s\" ip daddr 169.254.0.0/16 drop comment \"sandbox: no link-local addresses (cloud metadata)\"\n"
                 "%5$s"
                 "    iifname \"%1$s\" accept comment \"sandbox: out of %1$s\"\n"
                 "    oifname \"%1$s\" ct status dnat accept comment \"sandbox: to published ports\"\n"
                 "  }\n"
                 "  chain input-%1$s {\n"
                 "    type filter hook input priority filter; policy accept;\n"
                 "    iifname \"%1$s\" ct state established,related accept comment \"sandbox: replies\"\n"
                 "    iifname \"%1$s\" ip daddr 127.0.0.0/8 drop comment \"sandbox: not the host's loopback\"\n"
                 "%6$s"
                 "    iifname \"%1$s\" drop comment \"sandbox: not the host from %1$s\"\n"
                 "  }\n",
                 x, subnet, isolated_from,
                 !egress ? "" :
                 "    iifname \"XX\" ip daddr 10.1.0.0/16 accept comment \"sandbox: egress-allow 10.1.0.0/16\"\n"
                 "    iifname \"XX\" ip daddr 192.0.2.10 accept comment \"sandbox: egress-allow 192.0.2.10/32\"\n"
                 "    iifname \"XX\" ip daddr 192.0.2.53 udp dport 53 accept comment \"sandbox: name server 192.0.2.53, udp\"\n"
                 "    iifname \"XX\" ip daddr 192.0.2.53 tcp dport 53 accept comment \"sandbox: name server 192.0.2.53, tcp\"\n",
                 !egress ? "" :
                 "    iifname \"XX\" ip daddr 10.0.0.0/8 drop comment \"sandbox: egress-deny 10.0.0.0/8\"\n"
                 "    iifname \"XX\" ip daddr 172.16.0.0/12 drop comment \"sandbox: egress-deny 172.16.0.0/12\"\n"
                 "    iifname \"XX\" ip daddr 198.51.100.0/24 drop comment \"sandbox: egress-deny 198.51.100.0/24\"\n",
                 !egress ? "" :
                 "    iifname \"XX\" ip daddr 10.1.0.0/16 accept comment \"sandbox: egress-allow 10.1.0.0/16\"\n"
                 "    iifname \"XX\" ip daddr 192.0.2.10 accept comment \"sandbox: egress-allow 192.0.2.10/32\"\n"
                 "    iifname \"XX\" ip daddr 192.0.2.53 udp dport 53 accept comment \"sandbox: name server 192.0.2.53, udp\"\n"
                 "    iifname \"XX\" ip daddr 192.0.2.53 tcp dport 53 accept comment \"sandbox: name server 192.0.2.53, tcp\"\n");
        /* The egress lines name the bridge as XX (a format cannot repeat an argument inside one). */
        for (char *p = buf; (p = strstr(p, "\"XX\"")); p += 4) {
                size_t l = strlen(x);
                memmove(p + 2 + l, p + 4, strlen(p + 4) + 1);
                memcpy(p + 1, x, l);
                p[1 + l] = '"';
        }
}

/* The expected table, in nft's syntax (PUBLISHED: the body of chain published), for config_init()'s
 * two bridges (EGRESS: with config_egress()'s settings). */
static void expected_ruleset(char *buf, size_t size, const char *name, const char *published, bool egress) {
        char x[4096], y[4096];

        expected_bridge(x, sizeof x, "br-x", "10.77.0.0/24", "br-y", egress);
        expected_bridge(y, sizeof y, "br-y", "10.78.0.0/20", "br-x", egress);
        snprintf(buf, size,
                 "table ip %s {\n"
                 "  comment \"sandbox NAT and forwarding, managed by sandboxd\"\n"
                 "  chain published {\n%s  }\n"
                 "  chain prerouting {\n"
                 "    type nat hook prerouting priority dstnat; policy accept;\n"
                 "    fib daddr type local jump published comment \"sandbox: published ports\"\n"
                 "  }\n"
                 "  chain output {\n"
                 "    type nat hook output priority -100; policy accept;\n"
                 "    fib daddr type local jump published comment \"sandbox: published ports, from the host\"\n"
                 "  }\n"
                 "%s%s"
                 "}\n",
                 name, published, x, y);
}

#define PUB_A1 "    tcp dport 8080 dnat to 10.77.0.2:80 comment \"sbx:a\"\n"
#define PUB_B1 "    udp dport 5353 dnat to 10.77.0.3:53 comment \"sbx:b\"\n"
#define PUB_A2 "    tcp dport 8443 dnat to 10.77.0.2:443 comment \"sbx:a\"\n"
#define PUB_AB "    tcp dport 9000 dnat to 10.77.0.4:9000 comment \"sbx:ab\"\n"

/* Canonical listing of our table == that of a reference table loaded from the expected text. */
static int check_table_is_egress(const char *published, bool egress) {
        static char ours[OUT_MAX], ref[OUT_MAX], text[16384];
        char del[128];

        CHECK_EQ(nft_canon(table, ours, sizeof ours), 0);
        expected_ruleset(text, sizeof text, reftab, published, egress);
        CHECK_EQ(nft_load(text), 0);
        CHECK_EQ(nft_canon(reftab, ref, sizeof ref), 0);
        snprintf(del, sizeof del, "delete table ip %s", reftab);
        CHECK_EQ(nft_load(del), 0);
        if (!streq(ours, ref)) {
                printf("# our table:\n%s# expected (from nft):\n%s", ours, ref);
                return -1;
        }
        return 0;
}

static int check_table_is(const char *published) {
        return check_table_is_egress(published, false);
}

static int publish_std(void) {
        char *err = NULL;
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_TCP, 8080, ip4("10.77.0.2"), 80, &err), 0);
        CHECK_EQ(netfilter_publish_add(table, "b", IPPROTO_UDP, 5353, ip4("10.77.0.3"), 53, &err), 0);
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_TCP, 8443, ip4("10.77.0.2"), 443, &err), 0);
        CHECK(!err);
        return 0;
}

typedef struct Ids {
        char ids[8][NETFILTER_SANDBOX_ID_MAX + 1];
        size_t n;
} Ids;

static int collect_id(const char *id, void *userdata) {
        Ids *ids = userdata;
        if (ids->n >= ELEMENTSOF(ids->ids))
                return -E2BIG;
        snprintf(ids->ids[ids->n++], sizeof ids->ids[0], "%s", id);
        return 0;
}

static int collect_published(const NetfilterPublished *p, void *userdata) {
        NetfilterPublished *out = userdata;
        for (size_t i = 0; i < 8; i++)
                if (out[i].handle == 0) {
                        out[i] = *p;
                        out[i].sandbox_id = NULL; /* only valid during the call */
                        return 0;
                }
        return -E2BIG;
}

/* ------------------------------------------------------------------------------------------------
 * Cases: structure
 */

static int test_setup_structure(void) {
        char *err = NULL;

        CASE_BEGIN(true);
        config_init();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK(!err);
        if (check_table_is("") < 0)
                return -1;
        CHECK_EQ(publish_std(), 0);
        if (check_table_is(PUB_A1 PUB_B1 PUB_A2) < 0)
                return -1;

        /* Every rule carries a comment (the canonical listing has one "comment" per rule). */
        static char ours[OUT_MAX];
        CHECK_EQ(nft_canon(table, ours, sizeof ours), 0);
        CHECK_EQ(count_lines_with(ours, "{\"rule\":"), 27);
        CHECK_EQ(count_lines_with(ours, "\"comment\":"), 27);
        /* nft 1.0.6 leaves the table's comment out of its JSON: look at the text. */
        const char *const text_argv[] = { "nft", "list", "table", "ip", table, NULL };
        CHECK_EQ(run(-1, text_argv, NULL, ours, sizeof ours), 0);
        CHECK(strstr(ours, "\tcomment \"sandbox NAT and forwarding, managed by sandboxd\"\n"));

        /* What we read back. */
        NetfilterPublished p[8] = {};
        CHECK_EQ(netfilter_list_published(table, collect_published, p), 3);
        CHECK_EQ(p[0].proto, IPPROTO_TCP);
        CHECK_EQ(p[0].host_port, 8080);
        CHECK_EQ(p[0].port, 80);
        CHECK_EQ(p[0].addr.s_addr, ip4("10.77.0.2").s_addr);
        CHECK_EQ(p[1].proto, IPPROTO_UDP);
        CHECK_EQ(p[1].host_port, 5353);
        CHECK_EQ(p[1].addr.s_addr, ip4("10.77.0.3").s_addr);
        CHECK_EQ(p[2].host_port, 8443);
        CHECK(p[0].handle != 0 && p[1].handle != p[0].handle);

        Ids ids = {};
        CHECK_EQ(netfilter_list_sandboxes(table, collect_id, &ids), 2);
        CHECK_STREQ(ids.ids[0], "a");
        CHECK_STREQ(ids.ids[1], "b");
        return 0;
}

static int test_setup_idempotent(void) {
        static char once[OUT_MAX], twice[OUT_MAX];
        char *err = NULL;

        CASE_BEGIN(true);
        config_init();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(publish_std(), 0);
        CHECK_EQ(nft_canon(table, once, sizeof once), 0);
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK(!err);
        CHECK_EQ(nft_canon(table, twice, sizeof twice), 0);
        CHECK_STREQ(twice, once); /* no duplicate rules; published ports kept */
        if (check_table_is(PUB_A1 PUB_B1 PUB_A2) < 0)
                return -1;

        /* Publishing the same mapping again changes nothing; the port for someone else is taken. */
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_TCP, 8080, ip4("10.77.0.2"), 80, &err), 0);
        CHECK_EQ(nft_canon(table, twice, sizeof twice), 0);
        CHECK_STREQ(twice, once);
        CHECK_EQ(netfilter_publish_add(table, "c", IPPROTO_TCP, 8080, ip4("10.77.0.9"), 80, &err), -EADDRINUSE);
        CHECK(err && strstr(err, "already published by sandbox 'a'"));
        printf("# %s\n", err);
        free(err);
        err = NULL;
        /* The same port over the other protocol is a different port. */
        CHECK_EQ(netfilter_publish_add(table, "c", IPPROTO_UDP, 8080, ip4("10.77.0.9"), 80, &err), 0);
        CHECK_EQ(netfilter_publish_remove(table, "c", &err), 1);

        /* Set up again with br-x only (br-y only named): br-y's chains stay as they are. */
        NetfilterBridge named[2] = { bridges[0], { "br-y", {}, 0 } };
        NetfilterConfig one = { .table = table, .bridges = named, .n_bridges = 2 };
        CHECK_EQ(netfilter_setup(&one, &err), 0);
        if (check_table_is(PUB_A1 PUB_B1 PUB_A2) < 0)
                return -1;
        one.n_bridges = 1; /* br-x alone: no rule isolates it from br-y any more */
        CHECK_EQ(netfilter_setup(&one, &err), 0);
        CHECK_EQ(nft_canon(table, twice, sizeof twice), 0);
        CHECK_EQ(count_lines_with(twice, "isolate br-x from br-y"), 0);
        CHECK_EQ(count_lines_with(twice, "isolate br-y from br-x"), 1);
        CHECK_EQ(count_lines_with(twice, "\"comment\":\"sbx:"), 3);

        /* The egress settings, for both bridges. */
        config_egress();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK(!err);
        if (check_table_is_egress(PUB_A1 PUB_B1 PUB_A2, true) < 0)
                return -1;
        /* egress-deny 0.0.0.0/0: everything but the bridge itself and egress-allow, name servers too. */
        egress_deny[2] = (NetfilterCidr) { ip4("0.0.0.0"), 0 };
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(nft_canon(table, twice, sizeof twice), 0);
        CHECK_EQ(count_lines_with(twice, "name server"), 0);
        CHECK_EQ(count_lines_with(twice, "{\"match\":{\"op\":\"==\",\"left\":{\"meta\":{\"key\":\"iifname\"}},"
                                         "\"right\":\"br-x\"}},{\"drop\":null}]"), 2); /* deny /0, input's last */
        CHECK_EQ(count_lines_with(twice, "egress-deny 0.0.0.0/0"), 2);
        /* keep_existing, with other settings: both bridges have their chains, nothing changes. */
        config_init();
        config.keep_existing = true;
        CHECK_EQ(nft_canon(table, once, sizeof once), 0);
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(nft_canon(table, twice, sizeof twice), 0);
        CHECK_STREQ(twice, once);
        /* ... but a bridge whose chains are missing gets them (br-y: the plain settings), while br-x
         * keeps its egress rules. */
        char del[256];
        for (size_t i = 0; i < 3; i++) {
                snprintf(del, sizeof del, "delete chain ip %s %s-br-y", table,
                         (const char *[]) { "postrouting", "forward", "input" }[i]);
                CHECK_EQ(nft_load(del), 0);
        }
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK(!err);
        CHECK_EQ(nft_canon(table, twice, sizeof twice), 0);
        CHECK_EQ(count_lines_with(twice, "\"chain\":\"forward-br-y\""), 6); /* the plain rules */
        CHECK_EQ(count_lines_with(twice, "egress-deny"), 3);  /* br-x's */
        CHECK_EQ(count_lines_with(twice, "egress-allow"), 4); /* br-x's: forward and input */
        config_init();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        if (check_table_is(PUB_A1 PUB_B1 PUB_A2) < 0)
                return -1;
        return 0;
}

/* The largest configuration fits one batch: 8 bridges, every list full. */
static int test_setup_largest(void) {
        NetfilterBridge br[NETFILTER_BRIDGES_MAX];
        NetfilterCidr allow[NETFILTER_CIDRS_MAX], deny[NETFILTER_CIDRS_MAX];
        struct in_addr ns[NETFILTER_DNS_MAX];
        char names[NETFILTER_BRIDGES_MAX][16], *err = NULL;
        static char ours[OUT_MAX];

        CASE_BEGIN(true);
        for (size_t i = 0; i < NETFILTER_BRIDGES_MAX; i++) {
                snprintf(names[i], sizeof names[i], "sbxbridge-%zu", i);
                br[i] = (NetfilterBridge) { names[i], { htonl(0x0a500000 + ((uint32_t) i << 16)) }, 16 };
        }
        for (size_t i = 0; i < NETFILTER_CIDRS_MAX; i++) {
                allow[i] = (NetfilterCidr) { { htonl(0xc6336400 + (uint32_t) i) }, 32 };
                deny[i] = (NetfilterCidr) { { htonl(0xac100000 + ((uint32_t) i << 8)) }, 24 };
        }
        for (size_t i = 0; i < NETFILTER_DNS_MAX; i++)
                ns[i] = (struct in_addr) { htonl(0xc0000235 + (uint32_t) i) };
        NetfilterConfig c = {
                .table = table, .bridges = br, .n_bridges = NETFILTER_BRIDGES_MAX,
                .egress_allow = allow, .n_egress_allow = NETFILTER_CIDRS_MAX,
                .egress_deny = deny, .n_egress_deny = NETFILTER_CIDRS_MAX,
                .dns = ns, .n_dns = NETFILTER_DNS_MAX,
        };
        CHECK_EQ(netfilter_setup(&c, &err), 0);
        if (err)
                printf("# %s\n", err);
        CHECK(!err);
        CHECK_EQ(nft_canon(table, ours, sizeof ours), 0);
        /* Per bridge: 2 + (7 + 2 + 16 + 16 + 1 + 16 + 2) + (2 + 16 + 16 + 1); and the 2 shared. */
        CHECK_EQ(count_lines_with(ours, "{\"rule\":"), 2 + NETFILTER_BRIDGES_MAX * (2 + 60 + 35));
        return 0;
}

/* A table of the earlier layout (base chains "postrouting" and "forward" shared by all bridges) loses
 * them on setup: nothing of it stays to masquerade or accept. */
static int test_setup_replaces_legacy_layout(void) {
        char text[1024], *err = NULL;
        static char ours[OUT_MAX];

        CASE_BEGIN(true);
        config_init();
        snprintf(text, sizeof text,
                 "table ip %1$s {\n"
                 "  chain published { tcp dport 8080 dnat to 10.77.0.2:80 comment \"sbx:a\"; }\n"
                 "  chain postrouting { type nat hook postrouting priority srcnat; ip saddr 10.77.0.0/24 oifname != \"br-x\" masquerade; }\n"
                 "  chain forward { type filter hook forward priority 0; policy accept; iifname \"br-x\" accept; }\n"
                 "}\n", table);
        CHECK_EQ(nft_load(text), 0);
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK(!err);
        if (check_table_is(PUB_A1) < 0)
                return -1;
        CHECK_EQ(nft_canon(table, ours, sizeof ours), 0);
        CHECK_EQ(count_lines_with(ours, "\"name\":\"postrouting\""), 0);
        CHECK_EQ(count_lines_with(ours, "\"name\":\"forward\""), 0);
        return 0;
}

static int test_publish_remove(void) {
        static char before[OUT_MAX];
        char *err = NULL;
        Ids ids = {};

        CASE_BEGIN(true);
        config_init();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(publish_std(), 0);
        CHECK_EQ(netfilter_publish_add(table, "ab", IPPROTO_TCP, 9000, ip4("10.77.0.4"), 9000, &err), 0);
        if (check_table_is(PUB_A1 PUB_B1 PUB_A2 PUB_AB) < 0)
                return -1;

        /* Exactly the rules of "a": not those of "ab" (whose comment starts like a's). */
        CHECK_EQ(netfilter_publish_remove(table, "a", &err), 2);
        CHECK(!err);
        if (check_table_is(PUB_B1 PUB_AB) < 0)
                return -1;
        CHECK_EQ(netfilter_list_sandboxes(table, collect_id, &ids), 2);
        CHECK_STREQ(ids.ids[0], "ab");
        CHECK_STREQ(ids.ids[1], "b");

        /* Nothing left to remove; unknown sandbox; missing table: all 0 and no change. */
        CHECK_EQ(nft_canon(table, before, sizeof before), 0);
        CHECK_EQ(netfilter_publish_remove(table, "a", &err), 0);
        CHECK_EQ(netfilter_publish_remove(table, "zzz", &err), 0);
        CHECK_EQ(netfilter_publish_remove("sbxnfnosuchtable", "a", &err), 0);
        CHECK_EQ(netfilter_list_sandboxes("sbxnfnosuchtable", collect_id, &ids), 0);
        if (check_table_is(PUB_B1 PUB_AB) < 0)
                return -1;

        CHECK_EQ(netfilter_publish_remove(table, "b", &err), 1);
        CHECK_EQ(netfilter_publish_remove(table, "ab", &err), 1);
        if (check_table_is("") < 0)
                return -1;
        CHECK(!err);
        return 0;
}

static int test_teardown(void) {
        static char out[OUT_MAX];
        char *err = NULL;
        Ids ids = {};

        CASE_BEGIN(true);
        config_init();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(publish_std(), 0);
        CHECK_EQ(nft_json(table, out, sizeof out), 0);
        CHECK_EQ(netfilter_teardown(table, &err), 0);
        CHECK(nft_json(table, out, sizeof out) != 0); /* gone */
        CHECK_EQ(netfilter_teardown(table, &err), 0); /* gone already: fine */
        CHECK_EQ(netfilter_list_sandboxes(table, collect_id, &ids), 0);
        CHECK(!err);
        /* And set up again from nothing. */
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        if (check_table_is("") < 0)
                return -1;
        CHECK_EQ(netfilter_teardown(table, &err), 0);
        CHECK_EQ(nft_ruleset_json(out, sizeof out), 0);
        CHECK(!strstr(out, table));
        return 0;
}

static int test_other_tables_untouched(void) {
        static char before[OUT_MAX], after[OUT_MAX], inet_before[OUT_MAX], inet_after[OUT_MAX];
        char text[2048], *err = NULL;

        CASE_BEGIN(true);
        config_init();
        /* Looks like ours on purpose: a chain "published" with "sbx:a" rules, nat base chains. */
        snprintf(text, sizeof text,
                 "table ip %1$s {\n"
                 "  chain published { tcp dport 8080 dnat to 10.9.9.9:80 comment \"sbx:a\"; }\n"
                 "  chain postrouting { type nat hook postrouting priority srcnat; masquerade comment \"sbx:a\"; }\n"
                 "  chain forward { type filter hook forward priority 0; policy accept; iifname \"br-x\" counter; }\n"
                 "}\n"
                 "table inet %1$s {\n  chain forward { type filter hook forward priority 10; counter; }\n}\n",
                 other);
        CHECK_EQ(nft_load(text), 0);
        CHECK_EQ(nft_json(other, before, sizeof before), 0);
        const char *const inet_argv[] = { "nft", "-j", "list", "table", "inet", other, NULL };
        CHECK_EQ(run(-1, inet_argv, NULL, inet_before, sizeof inet_before), 0);

        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(publish_std(), 0);
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(netfilter_publish_remove(table, "a", &err), 2);
        Ids ids = {};
        CHECK_EQ(netfilter_list_sandboxes(table, collect_id, &ids), 1);
        CHECK_EQ(netfilter_teardown(table, &err), 0);
        CHECK(!err);

        CHECK_EQ(nft_json(other, after, sizeof after), 0);
        CHECK_EQ(run(-1, inet_argv, NULL, inet_after, sizeof inet_after), 0);
        CHECK_STREQ(after, before); /* byte for byte, handles included */
        CHECK_STREQ(inet_after, inet_before);
        CHECK(strstr(after, "\"sbx:a\"")); /* still there */
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Cases: errors
 */

static int test_invalid_arguments(void) {
        char *err = NULL;
        NetfilterBridge bad_br[2] = { { "br-x", ip4("10.77.0.0"), 24 }, { "br-x", ip4("10.78.0.0"), 24 } };
        NetfilterConfig c = { .table = table, .bridges = bad_br, .n_bridges = 2 };

        /* Validation happens before any netlink (every call below is invalid, so none of them
         * touches the namespace this case runs in): no root needed. */
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "'br-x' given twice"));
        free(err), err = NULL;
        bad_br[1] = (NetfilterBridge) { "br/y", ip4("10.78.0.0"), 24 };
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "invalid bridge name 'br/y'"));
        free(err), err = NULL;
        bad_br[1] = (NetfilterBridge) { "br-y", ip4("0.0.0.0"), 0 };
        NetfilterCidr cidrs[NETFILTER_CIDRS_MAX + 1] = {};
        struct in_addr ns[NETFILTER_DNS_MAX + 1] = {};
        c.egress_deny = cidrs;
        c.n_egress_deny = NETFILTER_CIDRS_MAX + 1;
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "egress-deny"));
        free(err), err = NULL;
        c.n_egress_deny = 1;
        cidrs[0].prefixlen = 33;
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "prefix length 33 in egress-deny"));
        free(err), err = NULL;
        c.n_egress_deny = 0;
        c.egress_allow = cidrs;
        c.n_egress_allow = 1;
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "egress-allow"));
        free(err), err = NULL;
        c.n_egress_allow = 0;
        c.dns = ns;
        c.n_dns = NETFILTER_DNS_MAX + 1;
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "name servers"));
        free(err), err = NULL;
        c.n_dns = 0;
        bad_br[1] = (NetfilterBridge) { "name-of-16-chars", ip4("10.78.0.0"), 24 }; /* IFNAMSIZ - 1 is 15 */
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        free(err), err = NULL;
        bad_br[1] = (NetfilterBridge) { "br-y", ip4("10.78.0.0"), 33 };
        CHECK_EQ(netfilter_setup(&c, NULL), -EINVAL);
        bad_br[1] = (NetfilterBridge) { NULL, ip4("10.78.0.0"), 24 };
        CHECK_EQ(netfilter_setup(&c, NULL), -EINVAL);
        c.n_bridges = NETFILTER_BRIDGES_MAX + 1;
        CHECK_EQ(netfilter_setup(&c, &err), -EINVAL);
        CHECK(err && strstr(err, "invalid number of bridges"));
        free(err), err = NULL;
        c.n_bridges = 1;
        c.table = "1table";
        CHECK_EQ(netfilter_setup(&c, NULL), -EINVAL);
        c.table = "bad name";
        CHECK_EQ(netfilter_setup(&c, NULL), -EINVAL);
        c.table = NULL;
        CHECK_EQ(netfilter_setup(&c, NULL), -EINVAL);
        CHECK_EQ(netfilter_setup(NULL, NULL), -EINVAL);

        CHECK_EQ(netfilter_publish_add(table, "a b", IPPROTO_TCP, 1, ip4("10.77.0.2"), 1, &err), -EINVAL);
        CHECK(err && strstr(err, "invalid sandbox id"));
        free(err), err = NULL;
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_ICMP, 1, ip4("10.77.0.2"), 1, &err), -EPROTONOSUPPORT);
        free(err), err = NULL;
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_TCP, 0, ip4("10.77.0.2"), 1, NULL), -EINVAL);
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_TCP, 1, ip4("10.77.0.2"), 0, NULL), -EINVAL);
        CHECK_EQ(netfilter_publish_add(table, "a", IPPROTO_TCP, 1, ip4("0.0.0.0"), 1, NULL), -EINVAL);
        CHECK_EQ(netfilter_publish_remove(table, "", NULL), -EINVAL);
        CHECK_EQ(netfilter_publish_remove("", "a", NULL), -EINVAL);
        CHECK_EQ(netfilter_teardown("x;y", NULL), -EINVAL);
        CHECK_EQ(netfilter_list_sandboxes(table, NULL, NULL), -EINVAL);
        char id[NETFILTER_SANDBOX_ID_MAX + 2];
        memset(id, 'a', sizeof id - 1);
        id[sizeof id - 1] = '\0';
        CHECK_EQ(netfilter_publish_remove(table, id, NULL), -EINVAL);
        return 0;
}

static int test_failing_batches_change_nothing(void) {
        static char before[OUT_MAX], after[OUT_MAX];
        char text[1024], *err = NULL;

        CASE_BEGIN(true);
        config_init();
        CHECK_EQ(netfilter_setup(&config, &err), 0);
        CHECK_EQ(publish_std(), 0);

        /* A publish into a table that does not exist: ENOENT, with the step named. */
        CHECK_EQ(nft_ruleset_json(before, sizeof before), 0);
        CHECK_EQ(netfilter_publish_add("sbxnfnosuchtable", "a", IPPROTO_TCP, 80, ip4("10.77.0.2"), 80, &err),
                 -ENOENT);
        printf("# %s\n", err ?: "(no message)");
        CHECK(err && strstr(err, "cannot add rule 'tcp dport 80 dnat to 10.77.0.2:80' for sandbox 'a' to chain "
                                 "'published' of table 'sbxnfnosuchtable': No such file or directory"));
        free(err), err = NULL;
        CHECK_EQ(nft_ruleset_json(after, sizeof after), 0);
        CHECK_STREQ(after, before);

        /* A setup whose batch fails in its middle: chain "output" of the table exists and is the
         * target of a jump, so deleting it fails (EBUSY) after the table, "published" and the first
         * steps went through, and later steps fail too. The kernel must apply none of it. */
        snprintf(text, sizeof text,
                 "table ip %1$s {\n  chain output { counter; }\n  chain foo { jump output; }\n}\n", reftab);
        CHECK_EQ(nft_load(text), 0);
        CHECK_EQ(nft_ruleset_json(before, sizeof before), 0);
        NetfilterConfig c = config;
        c.table = reftab;
        CHECK_EQ(netfilter_setup(&c, &err), -EBUSY);
        printf("# %s\n", err ?: "(no message)");
        CHECK(err && strstr(err, "cannot delete old chain 'output' in table '") &&
              strstr(err, "Device or resource busy") && strstr(err, " later step"));
        free(err), err = NULL;
        CHECK_EQ(nft_ruleset_json(after, sizeof after), 0);
        CHECK_STREQ(after, before); /* handles included: nothing was created, deleted or flushed */

        /* Teardown of a table that is in use elsewhere? Not possible in nf_tables; a plain one works. */
        CHECK_EQ(netfilter_teardown(reftab, &err), 0);
        CHECK(!err);
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Case: real traffic
 */

static int socket_in(int nsfd) {
        int fd;
        if (setns(nsfd, CLONE_NEWNET) < 0)
                return -errno;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int r = fd < 0 ? -errno : fd;
        if (setns(home_ns, CLONE_NEWNET) < 0)
                abort();
        return r;
}

static struct sockaddr_in sin4(const char *addr, uint16_t port) {
        return (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = ip4(addr) };
}

static int listen_in(int nsfd, const char *addr, uint16_t port) {
        struct sockaddr_in sa = sin4(addr, port);
        int fd = socket_in(nsfd), one = 1;
        if (fd < 0)
                return fd;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* A connected socket from namespace NSFD, or -errno (-ECONNREFUSED, -ETIMEDOUT, ...). */
static int connect_in(int nsfd, const char *addr, uint16_t port, int timeout_ms) {
        struct sockaddr_in sa = sin4(addr, port);
        int fd = socket_in(nsfd), err = 0;
        socklen_t len = sizeof err;

        if (fd < 0)
                return fd;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS) {
                err = errno;
                close(fd);
                return -err;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int k = poll(&p, 1, timeout_ms);
        if (k <= 0) {
                close(fd);
                return k == 0 ? -ETIMEDOUT : -errno;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                close(fd);
                return err ? -err : -EIO;
        }
        return fd;
}

/* Accept on LFD within TIMEOUT_MS, check that one byte arrives, return the peer address. */
static int accept_peer(int lfd, int timeout_ms, struct sockaddr_in *ret_peer) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        struct sockaddr_in peer = {};
        socklen_t len = sizeof peer;
        char c;

        if (poll(&p, 1, timeout_ms) <= 0)
                return -ETIMEDOUT;
        int fd = accept4(lfd, (struct sockaddr *) &peer, &len, SOCK_CLOEXEC);
        if (fd < 0)
                return -errno;
        p = (struct pollfd) { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms) > 0 && read(fd, &c, 1) == 1 && c == 'x' ? 0 : -EIO;
        close(fd);
        if (r == 0)
                *ret_peer = peer;
        return r;
}

/* Connect (retrying briefly on refusal: the first DNAT connection right after set-up was once
 * refused on this machine), send a byte, accept it on LFD and return the peer the listener saw. */
static int exchange(int from_ns, const char *addr, uint16_t port, int lfd, struct sockaddr_in *ret_peer) {
        int fd = -ECONNREFUSED;
        for (int i = 0; i < 10 && (fd == -ECONNREFUSED || fd == -ETIMEDOUT); i++) {
                if (i > 0)
                        usleep(100 * 1000);
                fd = connect_in(from_ns, addr, port, 1000);
        }
        if (fd < 0)
                return fd;
        int r = write(fd, "x", 1) == 1 ? accept_peer(lfd, 2000, ret_peer) : -errno;
        close(fd);
        return r;
}

static const char *peer_str(const struct sockaddr_in *sa) {
        static char buf[INET_ADDRSTRLEN];
        return inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof buf) ?: "?";
}

static int read_ip_forward(char *buf, size_t size) {
        int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t k = read(fd, buf, size - 1);
        close(fd);
        if (k < 0)
                return -errno;
        buf[k] = '\0';
        return 0;
}

static int write_ip_forward(const char *v) {
        int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t k = write(fd, v, strlen(v));
        close(fd);
        return k == (ssize_t) strlen(v) ? 0 : -EIO;
}

static int test_traffic(void) {
        _cleanup_close_ int sbx1 = -EBADF, sbx2 = -EBADF, up = -EBADF, l_up = -EBADF, l_sbx = -EBADF;
        NetfilterBridge br[2] = { { "br-x", ip4("10.77.0.0"), 24 }, { "br-y", ip4("10.78.0.0"), 24 } };
        NetfilterConfig c = { .table = table, .bridges = br, .n_bridges = 2 };
        char fwd_orig_before[16], fwd_orig_after[16], *err = NULL;
        struct sockaddr_in peer;
        pid_t self = getpid();

        CASE_BEGIN(false);
        CHECK_EQ(setns(orig_ns, CLONE_NEWNET), 0);
        CHECK_EQ(read_ip_forward(fwd_orig_before, sizeof fwd_orig_before), 0);
        CHECK_EQ(setns(home_ns, CLONE_NEWNET), 0);

        CHECK_EQ(other_ns(&sbx1), 0);
        CHECK_EQ(other_ns(&sbx2), 0);
        CHECK_EQ(other_ns(&up), 0);

        /* "host": two bridges, a veth to each sandbox, an uplink veth to "upstream". */
        CHECK_EQ(cmd(-1, "ip link add br-x type bridge"), 0);
        CHECK_EQ(cmd(-1, "ip addr add 10.77.0.1/24 dev br-x"), 0);
        CHECK_EQ(cmd(-1, "ip link set br-x up"), 0);
        CHECK_EQ(cmd(-1, "ip link add br-y type bridge"), 0);
        CHECK_EQ(cmd(-1, "ip addr add 10.78.0.1/24 dev br-y"), 0);
        CHECK_EQ(cmd(-1, "ip link set br-y up"), 0);
        CHECK_EQ(cmd(-1, "ip link add vh-s1 type veth peer name eth0 netns /proc/%d/fd/%d", self, sbx1), 0);
        CHECK_EQ(cmd(-1, "ip link set vh-s1 master br-x up"), 0);
        CHECK_EQ(cmd(-1, "ip link add vh-s2 type veth peer name eth0 netns /proc/%d/fd/%d", self, sbx2), 0);
        CHECK_EQ(cmd(-1, "ip link set vh-s2 master br-y up"), 0);
        CHECK_EQ(cmd(-1, "ip link add uplink type veth peer name eth0 netns /proc/%d/fd/%d", self, up), 0);
        CHECK_EQ(cmd(-1, "ip addr add 192.0.2.1/24 dev uplink"), 0);
        CHECK_EQ(cmd(-1, "ip link set uplink up"), 0);
        CHECK_EQ(write_ip_forward("1\n"), 0); /* in the test's "host" namespace only */

        CHECK_EQ(cmd(sbx1, "ip addr add 10.77.0.2/24 dev eth0"), 0);
        CHECK_EQ(cmd(sbx1, "ip link set eth0 up"), 0);
        CHECK_EQ(cmd(sbx1, "ip route add default via 10.77.0.1"), 0);
        CHECK_EQ(cmd(sbx2, "ip addr add 10.78.0.2/24 dev eth0"), 0);
        CHECK_EQ(cmd(sbx2, "ip link set eth0 up"), 0);
        CHECK_EQ(cmd(sbx2, "ip route add default via 10.78.0.1"), 0);
        CHECK_EQ(cmd(up, "ip addr add 192.0.2.2/24 dev eth0"), 0); /* no route back to 10.77/10.78 */
        CHECK_EQ(cmd(up, "ip link set eth0 up"), 0);

        CHECK_EQ(netfilter_setup(&c, &err), 0);
        CHECK_EQ(netfilter_publish_add(table, "s1", IPPROTO_TCP, 8080, ip4("10.77.0.2"), 80, &err), 0);
        CHECK(!err);

        l_up = listen_in(up, "192.0.2.2", 9000);
        CHECK(l_up >= 0);
        l_sbx = listen_in(sbx1, "0.0.0.0", 80);
        CHECK(l_sbx >= 0);

        /* Masquerade: upstream sees the host's uplink address, from both sandboxes. */
        CHECK_EQ(exchange(sbx1, "192.0.2.2", 9000, l_up, &peer), 0);
        CHECK_STREQ(peer_str(&peer), "192.0.2.1");
        CHECK_EQ(exchange(sbx2, "192.0.2.2", 9000, l_up, &peer), 0);
        CHECK_STREQ(peer_str(&peer), "192.0.2.1");

        /* DNAT from upstream to the published port: sbx1 sees upstream's own address. */
        CHECK_EQ(exchange(up, "192.0.2.1", 8080, l_sbx, &peer), 0);
        CHECK_STREQ(peer_str(&peer), "192.0.2.2");
        /* ... and from the host itself (chain output), also on 127.0.0.1 (with route_localnet on
         * the bridge, which the runtime sets): masqueraded to the bridge's address. */
        CHECK_EQ(exchange(home_ns, "192.0.2.1", 8080, l_sbx, &peer), 0);
        CHECK_EQ(cmd(-1, "sysctl -q -w net.ipv4.conf.br-x.route_localnet=1"), 0);
        CHECK_EQ(exchange(home_ns, "127.0.0.1", 8080, l_sbx, &peer), 0);
        CHECK_STREQ(peer_str(&peer), "10.77.0.1");

        /* The host itself is closed to the sandboxes: a service on all its addresses answers
         * upstream but neither sandbox, at the uplink's address or at its bridge's. */
        _cleanup_close_ int l_host = listen_in(home_ns, "0.0.0.0", 7100);
        CHECK(l_host >= 0);
        CHECK_EQ(exchange(up, "192.0.2.1", 7100, l_host, &peer), 0);
        CHECK_EQ(connect_in(sbx1, "192.0.2.1", 7100, 700), -ETIMEDOUT);
        CHECK_EQ(connect_in(sbx1, "10.77.0.1", 7100, 700), -ETIMEDOUT);
        CHECK_EQ(connect_in(sbx2, "10.78.0.1", 7100, 700), -ETIMEDOUT);

        /* Isolation: sbx2 (br-y) cannot reach sbx1 (br-x), directly or via the published port. */
        int fd = connect_in(sbx2, "10.77.0.2", 80, 700);
        CHECK_EQ(fd, -ETIMEDOUT);
        fd = connect_in(sbx2, "10.78.0.1", 8080, 700);
        CHECK_EQ(fd, -ETIMEDOUT);

        /* Unpublished: refused now (nothing listens on the host's 8080). */
        CHECK_EQ(netfilter_publish_remove(table, "s1", &err), 1);
        fd = connect_in(up, "192.0.2.1", 8080, 1000);
        CHECK_EQ(fd, -ECONNREFUSED);

        /* Torn down: no masquerade, so upstream cannot answer 10.77.0.2 (no route back). */
        CHECK_EQ(netfilter_teardown(table, &err), 0);
        fd = connect_in(sbx1, "192.0.2.2", 9000, 700);
        CHECK_EQ(fd, -ETIMEDOUT);

        CHECK_EQ(setns(orig_ns, CLONE_NEWNET), 0);
        CHECK_EQ(read_ip_forward(fwd_orig_after, sizeof fwd_orig_after), 0);
        CHECK_EQ(setns(home_ns, CLONE_NEWNET), 0);
        CHECK_STREQ(fwd_orig_after, fwd_orig_before);
        return 0;
}

int main(int argc, char *argv[]) {
        static const TapTest tests[] = {
                TAP_TEST(invalid_arguments),
                TAP_TEST(setup_structure),
                TAP_TEST(setup_idempotent),
                TAP_TEST(setup_replaces_legacy_layout),
                TAP_TEST(setup_largest),
                TAP_TEST(publish_remove),
                TAP_TEST(teardown),
                TAP_TEST(other_tables_untouched),
                TAP_TEST(failing_batches_change_nothing),
                TAP_TEST(traffic),
        };
        unsigned rnd = 0;
        int r;

        if (getenv("SBX_TEST_DEBUG")) {
                log_setup("test-netfilter", false);
                log_set_max_level(LOG_DEBUG);
        }
        if (getrandom(&rnd, sizeof rnd, 0) < 0)
                rnd = (unsigned) time(NULL);
        snprintf(run_id, sizeof run_id, "sbxnf-%ld-%08x", (long) getpid(), rnd);
        snprintf(table, sizeof table, "sbxnf_%ld_%08x", (long) getpid(), rnd);
        snprintf(reftab, sizeof reftab, "%s_ref", table);
        snprintf(other, sizeof other, "%s_other", table);

        orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (orig_ns < 0) {
                printf("Bail out! /proc/self/ns/net: %m\n");
                return 1;
        }
        struct sigaction sa = { .sa_handler = fatal_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        alarm(55);

        printf("# run %s\n", run_id);
        r = tap_run(tests, ELEMENTSOF(tests));
        safe_close(home_ns);
        safe_close(orig_ns);
        free(out_buf());
        return r;
}
