/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandboxd's configuration file: every key, and errors that name the file and line. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon-config.h"
#include "macro.h"
#include "tap.h"

static char path[] = "/tmp/sbx-config-XXXXXX";

static int load(const char *text, DaemonConfig *c, char *err, size_t errsize) {
        FILE *f = fopen(path, "w");
        if (!f)
                return -errno;
        fputs(text, f);
        fclose(f);
        config_init(c);
        err[0] = '\0';
        return config_load(path, true, c, err, errsize);
}

static int test_defaults(void) {
        DaemonConfig c;
        char err[256];

        CHECK_EQ(load("# nothing\n\n", &c, err, sizeof err), 0);
        CHECK_EQ(c.max_per_client, 16);
        CHECK_EQ(c.max_sandboxes, 256);
        CHECK_EQ(c.max_connections, 1024);
        CHECK_EQ(c.max_connections_per_uid, 32);
        CHECK_U64(c.max_buffer_per_uid, UINT64_C(16) << 20);
        CHECK_EQ(c.max_starts, 16);
        CHECK_EQ(c.max_starts_per_uid, 4);
        CHECK(!c.allow_host_paths && !c.allow_net_host);
        CHECK_STREQ(c.net.bridge, "sbx0");
        CHECK_STREQ(c.net.isolated_bridge, "sbx1");
        CHECK_STREQ(c.net.table, "sandbox");
        CHECK_EQ(c.net.prefixlen, 16);
        CHECK_EQ(ntohl(c.net.subnet.s_addr), 0x0a580000);
        /* A missing file is fine when not asked for explicitly, an error when it is. */
        config_init(&c);
        CHECK_EQ(config_load("/nonexistent/sandboxd.conf", false, &c, err, sizeof err), 0);
        CHECK_EQ(config_load("/nonexistent/sandboxd.conf", true, &c, err, sizeof err), -ENOENT);
        return 0;
}

static int test_every_key(void) {
        DaemonConfig c;
        char err[256];

        CHECK_EQ(load("allow-users = 0 65534\n"
                      "allow-groups = 0\n"
                      "  max-sandboxes = 10  \n"
                      "max-sandboxes-per-client=2\n"
                      "max-memory = 512m\n"
                      "max-pids = 64\n"
                      "max-timeout = 60\n"
                      "allow-host-paths = yes\n"
                      "allow-net-host = true\n"
                      "id-base = 1000000000\n"
                      "id-ranges = 10\n"
                      "unionfs = /opt/sandbox-unionfs\n"
                      "bridge = br-test\n"
                      "subnet = 172.30.0.0/24\n"
                      "isolated-bridge = br-iso\n"
                      "isolated-subnet = 172.31.0.0/24\n"
                      "mtu = 1400\n"
                      "netfilter-table = sbxtest\n"
                      "max-connections = 300\n"
                      "max-connections-per-uid = 3\n"
                      "max-buffer-per-uid = 3m\n"
                      "max-starts = 7\n"
                      "max-starts-per-uid = 1\n", &c, err, sizeof err), 0);
        CHECK_EQ(c.n_allow_users, 2);
        CHECK_EQ(c.allow_users[1], 65534);
        CHECK_EQ(c.n_allow_groups, 1);
        CHECK_EQ(c.max_sandboxes, 10);
        CHECK_EQ(c.max_per_client, 2);
        CHECK_U64(c.max_memory, UINT64_C(512) << 20);
        CHECK_U64(c.max_pids, 64);
        CHECK_U64(c.max_timeout_usec, UINT64_C(60000000));
        CHECK(c.allow_host_paths && c.allow_net_host);
        CHECK_EQ(c.id_base, 1000000000);
        CHECK_EQ(c.id_ranges, 10);
        CHECK_STREQ(c.unionfs, "/opt/sandbox-unionfs");
        CHECK_STREQ(c.net.bridge, "br-test");
        CHECK_STREQ(c.net.isolated_bridge, "br-iso");
        CHECK_EQ(c.net.prefixlen, 24);
        CHECK_EQ(ntohl(c.net.isolated_subnet.s_addr), 0xac1f0000);
        CHECK_EQ(c.net.mtu, 1400);
        CHECK_STREQ(c.net.table, "sbxtest");
        CHECK_EQ(c.max_connections, 300);
        CHECK_EQ(c.max_connections_per_uid, 3);
        CHECK_U64(c.max_buffer_per_uid, UINT64_C(3) << 20);
        CHECK_EQ(c.max_starts, 7);
        CHECK_EQ(c.max_starts_per_uid, 1);
        return 0;
}

/* The daemon's own bounds: their ranges, and that a message names the key and the range. */
static int test_daemon_bounds(void) {
        DaemonConfig c;
        char err[256];

        CHECK_EQ(load("max-connections = 65536\nmax-starts = 1024\nmax-buffer-per-uid = 64k\n", &c, err,
                      sizeof err), 0);
        CHECK_EQ(c.max_connections, 65536);
        CHECK_EQ(c.max_starts, 1024);
        CHECK_U64(c.max_buffer_per_uid, UINT64_C(65536));
        /* Parsed in any order, the last one wins. */
        CHECK_EQ(load("max-starts-per-uid = 2\nmax-starts-per-uid = 9\n", &c, err, sizeof err), 0);
        CHECK_EQ(c.max_starts_per_uid, 9);
        return 0;
}

/* Lines are counted as the file has them, blank ones too. */
static int test_line_numbers(void) {
        DaemonConfig c;
        char err[256];

        CHECK_EQ(load("# one\n\n\nmax-pids = 1\n\nnope = 2\n", &c, err, sizeof err), -EINVAL);
        CHECK(strstr(err, ":6: unknown key 'nope'"));
        /* From memory, as the fuzzer calls it: named as told, no NUL needed at the end. */
        config_init(&c);
        CHECK_EQ(config_parse("max-starts = 3\nmax-starts = x", 14, "mem", &c, err, sizeof err), 0);
        CHECK_EQ(c.max_starts, 3);
        CHECK_EQ(config_parse("max-starts = 0\n", 15, "mem", &c, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "mem:1: max-starts"));
        return 0;
}

static int test_errors(void) {
        static const struct {
                const char *text;
                const char *message;
        } cases[] = {
                { "max-pids = 1\nbogus = 1\n", ":2: unknown key 'bogus'" },
                { "no equals sign\n", ":1: expected 'key = value'" },
                { "allow-users = nosuchuser-xyz\n", ":1: allow-users: unknown user" },
                { "max-memory = lots\n", ":1: max-memory: expected a size" },
                { "max-sandboxes = 0\n", ":1: max-sandboxes: expected a number from 1 to 65536" },
                { "allow-host-paths = maybe\n", ":1: allow-host-paths: expected yes or no" },
                { "id-base = 5\n", ":1: id-base: expected a number of at least 65536" },
                { "id-base = 4294000000\nid-ranges = 100\n", "beyond the last uid" },
                { "unionfs = relative\n", ":1: unionfs: expected an absolute path" },
                { "subnet = 10.88.0.0\n", ":1: subnet: expected an IPv4 subnet" },
                { "subnet = 10.88.0.1/16\n", "network address" },
                { "isolated-subnet = 10.88.0.0/16\n", "overlap" },
                { "bridge = sbx1\n", "differ" },
                { "bridge = name-longer-than-15\n", ":1: bridge: expected an interface name" },
                { "mtu = 100\n", "MTU" },
                { "max-connections = 0\n", ":1: max-connections: expected a number from 1 to 65536" },
                { "max-connections = 65537\n", ":1: max-connections: expected a number from 1 to 65536" },
                { "max-connections-per-uid = -1\n", ":1: max-connections-per-uid: expected a number from 1 to" },
                { "max-starts = 1025\n", ":1: max-starts: expected a number from 1 to 1024" },
                { "max-starts-per-uid = two\n", ":1: max-starts-per-uid: expected a number from 1 to 1024" },
                { "max-buffer-per-uid = 1000\n", ":1: max-buffer-per-uid: expected a size of at least 64k" },
                { "max-buffer-per-uid = much\n", ":1: max-buffer-per-uid: expected a size" },
        };
        DaemonConfig c;
        char err[256];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = load(cases[i].text, &c, err, sizeof err);
                if (r != -EINVAL || !strstr(err, cases[i].message) || !strstr(err, path)) {
                        printf("# case %zu: r=%d message '%s', expected one containing '%s' and the path\n", i, r,
                               err, cases[i].message);
                        return -1;
                }
        }
        /* A NUL byte is refused, not silently cut. */
        {
                FILE *f = fopen(path, "w");
                CHECK(f);
                fwrite("max-pids = 1\0\n", 1, 14, f);
                fclose(f);
                config_init(&c);
                CHECK_EQ(config_load(path, true, &c, err, sizeof err), -EINVAL);
        }
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                { "defaults", test_defaults },
                { "every_key", test_every_key },
                { "errors", test_errors },
                { "daemon_bounds", test_daemon_bounds },
                { "line_numbers", test_line_numbers },
        };
        int fd = mkstemp(path), r;

        if (fd < 0)
                return 1;
        close(fd);
        r = tap_run(tests, ELEMENTSOF(tests));
        unlink(path);
        return r;
}
