/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sandboxd's configuration file: every key, and errors that name the file and line. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        CHECK_EQ(c.max_snapshots_per_uid, 16);
        CHECK_U64(c.max_snapshot_size, UINT64_C(4) << 30);
        CHECK_EQ(c.max_volumes_per_uid, 16);
        CHECK_U64(c.max_volume_size, UINT64_C(16) << 30);
        /* Bounded by default: the spec's defaults, an hour of wall clock, four default sandboxes per uid. */
        CHECK_U64(c.max_memory, UINT64_C(2) << 30);
        CHECK_U64(c.max_pids, 1024);
        CHECK_U64(c.max_timeout_usec, UINT64_C(3600) * 1000000);
        CHECK_U64(c.max_disk, UINT64_C(10) << 30);
        CHECK_U64(c.max_disk_inodes, 1000000);
        CHECK_U64(c.max_memory_per_client, UINT64_C(8) << 30);
        CHECK_U64(c.max_pids_per_client, 4096);
        CHECK_U64(c.max_disk_per_client, UINT64_C(40) << 30);
        CHECK(!c.allow_host_paths && !c.allow_net_host);
        CHECK_U64(c.allow_cap_add, 0);
        CHECK_STREQ(c.net.bridge, "sbx0");
        CHECK_STREQ(c.net.isolated_bridge, "sbx1");
        CHECK_STREQ(c.net.table, "sandbox");
        /* The subnets come from the pool 10.88.0.0/13 in /16s (none fixed). */
        CHECK_EQ(c.net.prefixlen, 0);
        CHECK_EQ(c.net.isolated_prefixlen, 0);
        CHECK_EQ(c.net.n_pool, 1);
        CHECK_EQ(ntohl(c.net.pool[0].addr.s_addr), 0x0a580000);
        CHECK_EQ(c.net.pool[0].prefixlen, 13);
        CHECK_EQ(c.net.pool_prefixlen, 16);
        CHECK_EQ(c.net.n_egress_allow, 0);
        CHECK_EQ(c.net.n_egress_deny, 0);
        CHECK_EQ(c.min_published_port, 1024);
        CHECK_STREQ(c.net.resolv_conf, "/etc/resolv.conf");
        CHECK_STREQ(c.net.resolv_conf_upstream, "/run/systemd/resolve/resolv.conf");
        CHECK(c.net.replace_rules); /* the daemon's configuration decides its bridges' rules */
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
                      "max-disk = 2.5g\n"
                      "max-disk-inodes = 5000\n"
                      "max-memory-per-client = 1.5g\n"
                      "max-pids-per-client = unlimited\n"
                      "max-disk-per-client = 100g\n"
                      "allow-host-paths = yes\n"
                      "allow-net-host = true\n"
                      "allow-cap-add = NET_RAW, cap_net_admin\n"
                      "allow-cap-add = sys_ptrace\n"
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
                      "max-starts-per-uid = 1\n"
                      "subnet-pool = 172.20.0.0/14, 192.168.128.0/17\n"
                      "subnet-pool = 10.200.0.0/16\n"
                      "subnet-pool-prefix = 20\n"
                      "egress-deny = 10.0.0.0/8 172.16.0.0/12\n"
                      "egress-deny = 0.0.0.0/0\n"
                      "egress-allow = 10.1.2.3, 192.0.2.0/24\n"
                      "min-published-port = 8000\n"
                      "resolv-conf = /srv/resolv.conf\n"
                      "resolv-conf-upstream = /srv/upstream.conf\n"
                      "max-snapshots-per-uid = 3\n"
                      "max-snapshot-size = 1g\n"
                      "max-volumes-per-uid = 4\n"
                      "max-volume-size = 2g\n", &c, err, sizeof err), 0);
        CHECK_EQ(c.max_snapshots_per_uid, 3);
        CHECK_U64(c.max_snapshot_size, UINT64_C(1) << 30);
        CHECK_EQ(c.max_volumes_per_uid, 4);
        CHECK_U64(c.max_volume_size, UINT64_C(2) << 30);
        CHECK_EQ(c.n_allow_users, 2);
        CHECK_EQ(c.allow_users[1], 65534);
        CHECK_EQ(c.n_allow_groups, 1);
        CHECK_EQ(c.max_sandboxes, 10);
        CHECK_EQ(c.max_per_client, 2);
        CHECK_U64(c.max_memory, UINT64_C(512) << 20);
        CHECK_U64(c.max_pids, 64);
        CHECK_U64(c.max_timeout_usec, UINT64_C(60000000));
        CHECK_U64(c.max_disk, UINT64_C(5) << 29);
        CHECK_U64(c.max_disk_inodes, 5000);
        CHECK_U64(c.max_memory_per_client, UINT64_C(3) << 29);
        CHECK_U64(c.max_pids_per_client, UINT64_MAX);
        CHECK_U64(c.max_disk_per_client, UINT64_C(100) << 30);
        CHECK(c.allow_host_paths && c.allow_net_host);
        CHECK_U64(c.allow_cap_add, (UINT64_C(1) << 13) | (UINT64_C(1) << 12) | (UINT64_C(1) << 19));
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
        /* The first subnet-pool line replaces the default pool, later ones add to it. */
        CHECK_EQ(c.net.n_pool, 3);
        CHECK_EQ(ntohl(c.net.pool[0].addr.s_addr), 0xac140000);
        CHECK_EQ(c.net.pool[0].prefixlen, 14);
        CHECK_EQ(ntohl(c.net.pool[1].addr.s_addr), 0xc0a88000);
        CHECK_EQ(c.net.pool[2].prefixlen, 16);
        CHECK_EQ(c.net.pool_prefixlen, 20);
        CHECK_EQ(c.net.n_egress_deny, 3);
        CHECK_EQ(c.net.egress_deny[1].prefixlen, 12);
        CHECK_EQ(c.net.egress_deny[2].prefixlen, 0);
        CHECK_EQ(c.net.n_egress_allow, 2);
        CHECK_EQ(ntohl(c.net.egress_allow[0].addr.s_addr), 0x0a010203);
        CHECK_EQ(c.net.egress_allow[0].prefixlen, 32);
        CHECK_EQ(c.min_published_port, 8000);
        CHECK_STREQ(c.net.resolv_conf, "/srv/resolv.conf");
        CHECK_STREQ(c.net.resolv_conf_upstream, "/srv/upstream.conf");
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

static int test_unlimited(void) {
        DaemonConfig c;
        char err[256];

        /* Every cap may be lifted; a per-sandbox cap lifted under a finite total is fine. */
        CHECK_EQ(load("max-memory = unlimited\nmax-pids = unlimited\nmax-timeout = unlimited\n"
                      "max-disk = unlimited\nmax-disk-inodes = unlimited\nmax-memory-per-client = unlimited\n",
                      &c, err, sizeof err), 0);
        CHECK_U64(c.max_memory, UINT64_MAX);
        CHECK_U64(c.max_pids, UINT64_MAX);
        CHECK_U64(c.max_timeout_usec, UINT64_MAX);
        CHECK_U64(c.max_disk, UINT64_MAX);
        CHECK_U64(c.max_disk_inodes, UINT64_MAX);
        CHECK_U64(c.max_memory_per_client, UINT64_MAX);
        CHECK_U64(c.max_pids_per_client, 4096);
        CHECK_U64(c.max_disk_per_client, UINT64_C(40) << 30);
        return 0;
}

static int test_images(void) {
        DaemonConfig c;
        char err[256], big[CONFIG_ALLOW_IMAGES_BYTES + 1024];
        size_t n = 0;

        /* Not set: any image of the store, in the default store. */
        CHECK_EQ(load("\n", &c, err, sizeof err), 0);
        CHECK(!c.allow_images_set);
        CHECK_STREQ(c.store, "");
        CHECK_EQ(load("store = /srv/images\nallow-images = busybox:1, 127.0.0.1:5000/app@sha256:"
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
                      "allow-images = sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1a2b\n",
                      &c, err, sizeof err), 0);
        CHECK_STREQ(c.store, "/srv/images");
        CHECK(c.allow_images_set);
        CHECK_EQ(c.n_allow_images, 4);
        CHECK_STREQ(config_allow_image(&c, 0), "busybox:1");
        CHECK(startswith(config_allow_image(&c, 1), "127.0.0.1:5000/app@sha256:"));
        CHECK(startswith(config_allow_image(&c, 2), "sha256:0123"));
        CHECK_STREQ(config_allow_image(&c, 3), "1a2b");
        /* none: only root runs images */
        CHECK_EQ(load("allow-images = none\n", &c, err, sizeof err), 0);
        CHECK(c.allow_images_set);
        CHECK_EQ(c.n_allow_images, 0);
        /* bounded: entries and bytes */
        for (unsigned i = 0; i <= CONFIG_ALLOW_IMAGES_MAX; i++)
                n += (size_t) snprintf(big + n, sizeof big - n, "%sallow-images = img%u\n", "", i);
        CHECK_EQ(load(big, &c, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "more than 64 entries"));
        /* 46 references of 359 bytes: under 64 entries, over 16 KiB */
        n = (size_t) snprintf(big, sizeof big, "allow-images =");
        for (unsigned i = 0; i < 46; i++) {
                n += (size_t) snprintf(big + n, sizeof big - n, " r.io/n%02u", i);
                memset(big + n, 'a', 230);
                n += 230;
                big[n++] = ':';
                memset(big + n, 't', 120);
                n += 120;
                big[n] = '\0';
        }
        n += (size_t) snprintf(big + n, sizeof big - n, "\n");
        CHECK_EQ(load(big, &c, err, sizeof err), -EINVAL);
        CHECK(strstr(err, "16384 bytes"));
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
                { "max-memory = 0\n", ":1: max-memory: expected a size of at least 1m like 2g, or unlimited" },
                { "max-pids = 0\n", ":1: max-pids: expected a number from 1 to 4194304, or unlimited" },
                { "max-pids = -1\n", ":1: max-pids: expected a number" },
                { "max-timeout = 0\n", ":1: max-timeout: expected seconds" },
                { "max-timeout = 1.5\n", ":1: max-timeout: expected seconds" },
                { "max-disk = 10\n", ":1: max-disk: expected a size of at least 1m" },
                { "max-disk-inodes = none\n", ":1: max-disk-inodes: expected a positive number, or unlimited" },
                { "max-memory-per-client = 1g\n", "max-memory-per-client is below max-memory" },
                { "max-pids = 100\nmax-pids-per-client = 99\n", "max-pids-per-client is below max-pids" },
                { "max-disk = 50g\n", "max-disk-per-client is below max-disk" },
                { "max-sandboxes = 0\n", ":1: max-sandboxes: expected a number from 1 to 65536" },
                { "max-snapshots-per-uid = 0\n", ":1: max-snapshots-per-uid: expected a number from 1 to 65536" },
                { "max-snapshot-size = 1\n", ":1: max-snapshot-size: expected a size from 4K to 1T" },
                { "max-snapshot-size = 2t\n", ":1: max-snapshot-size: expected a size from 4K to 1T" },
                { "max-volumes-per-uid = 0\n", ":1: max-volumes-per-uid: expected a number from 1 to 65536" },
                { "max-volume-size = 1m\n", ":1: max-volume-size: expected a size from 16M to 16T" },
                { "max-volume-size = 17t\n", ":1: max-volume-size: expected a size from 16M to 16T" },
                { "allow-host-paths = maybe\n", ":1: allow-host-paths: expected yes or no" },
                { "allow-cap-add = NET_RAW SYS_BOGUS\n", ":1: allow-cap-add: expected capability names" },
                { "allow-cap-add =\n", ":1: allow-cap-add: expected capability names" },
                { "id-base = 5\n", ":1: id-base: expected a number of at least 65536" },
                { "id-base = 4294000000\nid-ranges = 100\n", "beyond the last uid" },
                { "unionfs = relative\n", ":1: unionfs: expected an absolute path" },
                { "subnet = 10.88.0.0\n", ":1: subnet: expected an IPv4 subnet" },
                { "subnet = 10.88.0.1/16\n", "network address" },
                { "subnet = 10.88.0.0/16\nisolated-subnet = 10.88.0.0/16\n", "overlap" },
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
                { "egress-deny = 10.0.0.1/8\n", ":1: egress-deny: expected IPv4 addresses or subnets" },
                { "egress-allow = example.com\n", ":1: egress-allow: expected IPv4" },
                { "egress-deny = 10.0.0.0/33\n", ":1: egress-deny: expected IPv4" },
                { "egress-deny = 10.0.0.0/\n", ":1: egress-deny: expected IPv4" },
                { "egress-deny = 1.0.0.0/8 2.0.0.0/8 3.0.0.0/8 4.0.0.0/8 5.0.0.0/8 6.0.0.0/8 7.0.0.0/8 "
                  "8.0.0.0/8 9.0.0.0/8\negress-deny = 11.0.0.0/8 12.0.0.0/8 13.0.0.0/8 14.0.0.0/8 15.0.0.0/8 "
                  "16.0.0.0/8 17.0.0.0/8 18.0.0.0/8\n", ":2: egress-deny: more than 16 entries" },
                { "subnet-pool = 10.88.0.0\n", "subnet-pool entry must be from /8 up to subnet-pool-prefix" },
                { "subnet-pool = 10.88.0.1/13\n", ":1: subnet-pool: expected IPv4 subnets" },
                { "subnet-pool = 10.0.0.0/8\nsubnet-pool-prefix = 30\n", "at most 65536 subnets" },
                { "subnet-pool-prefix = 31\n", ":1: subnet-pool-prefix: expected a prefix length from 8 to 30" },
                { "subnet-pool = 10.88.0.0/16\nsubnet-pool-prefix = 12\n", "up to subnet-pool-prefix" },
                { "min-published-port = 0\n", ":1: min-published-port: expected a port from 1 to 65535" },
                { "min-published-port = 65536\n", ":1: min-published-port: expected a port" },
                { "resolv-conf = etc/resolv.conf\n", ":1: resolv-conf: expected an absolute path" },
                { "resolv-conf-upstream = \n", ":1: resolv-conf-upstream: expected an absolute path" },
                { "store = var/lib/sandbox\n", ":1: store: expected an absolute path" },
                { "allow-images = \n", ":1: allow-images: expected image references" },
                { "allow-images = Upper/Case\n", ":1: allow-images: 'Upper/Case' is not an image reference" },
                { "allow-images = a b\nallow-images = none\n", ":2: allow-images: 'none' cannot go with images" },
                { "allow-images = none\nallow-images = a\n", ":2: allow-images: 'none' cannot go with images" },
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

/* The pool: off by default, every key, the shapes, and bad values named with their bounds. */
static int test_pool(void) {
        DaemonConfig c;
        char err[256];

        CHECK_EQ(load("", &c, err, sizeof err), 0);
        CHECK_EQ(c.pool_size, 0);
        CHECK_EQ(c.pool_per_shape, 2);
        CHECK_U64(c.pool_memory, UINT64_C(256) << 20);
        CHECK_U64(c.pool_idle_usec, UINT64_C(60) * 1000000);
        CHECK_U64(c.pool_max_age_usec, UINT64_C(600) * 1000000);
        CHECK_EQ(c.n_pool_shapes, 0);

        CHECK_EQ(load("pool-size = 8\npool-per-shape = 3\npool-memory = 1g\npool-idle-timeout = 5\n"
                      "pool-max-age = 30\n"
                      "pool-shape = memory=256m, pids=64 ,cpus=0.5,disk=2g,net=bridge\n"
                      "pool-shape = net=isolated\npool-shape =\n", &c, err, sizeof err), 0);
        CHECK_EQ(c.pool_size, 8);
        CHECK_EQ(c.pool_per_shape, 3);
        CHECK_U64(c.pool_memory, UINT64_C(1) << 30);
        CHECK_U64(c.pool_idle_usec, UINT64_C(5) * 1000000);
        CHECK_U64(c.pool_max_age_usec, UINT64_C(30) * 1000000);
        CHECK_EQ(c.n_pool_shapes, 3);
        CHECK_U64(c.pool_shapes[0].memory_max, UINT64_C(256) << 20);
        CHECK_U64(c.pool_shapes[0].pids_max, 64);
        CHECK_EQ(c.pool_shapes[0].cpus_milli, 500);
        CHECK_U64(c.pool_shapes[0].disk_max, UINT64_C(2) << 30);
        CHECK_EQ(c.pool_shapes[0].net, SPEC_NET_BRIDGE);
        CHECK_EQ(c.pool_shapes[1].net, SPEC_NET_ISOLATED);
        CHECK_U64(c.pool_shapes[2].memory_max, 0);
        CHECK_EQ(c.pool_shapes[2].net, SPEC_NET_NONE);

        static const char *const bad[][2] = {
                { "pool-size = 65\n", "pool-size: expected a number from 0 (no pool) to 64" },
                { "pool-per-shape = 0\n", "pool-per-shape: expected a number from 1 to 64" },
                { "pool-memory = 10k\n", "pool-memory: expected a size of at least 1m" },
                { "pool-idle-timeout = 0\n", "pool-idle-timeout: expected seconds from 1 to 86400" },
                { "pool-max-age = 0\n", "pool-max-age: expected seconds from 1 to 86400" },
                { "pool-max-age = 86401\n", "pool-max-age: expected seconds from 1 to 86400" },
                { "pool-shape = net=host\n", "pool-shape: expected comma-separated" },
                { "pool-shape = memory\n", "pool-shape: expected comma-separated" },
                { "pool-shape = cpus=0\n", "pool-shape: expected comma-separated" },
                { "pool-shape = image=/x\n", "pool-shape: expected comma-separated" },
                { "pool-sizes = 1\n", "unknown key 'pool-sizes'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_EQ(load(bad[i][0], &c, err, sizeof err), -EINVAL);
                CHECK(strstr(err, bad[i][1]));
                CHECK(strstr(err, ":1:"));
        }
        CHECK_EQ(load("pool-shape = pids=1\npool-shape = pids=2\npool-shape = pids=3\npool-shape = pids=4\n"
                      "pool-shape = pids=5\npool-shape = pids=6\npool-shape = pids=7\npool-shape = pids=8\n"
                      "pool-shape = pids=9\n", &c, err, sizeof err), -EINVAL);
        CHECK(strstr(err, ":9: pool-shape: more than 8 shapes"));
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                { "defaults", test_defaults },
                { "every_key", test_every_key },
                { "unlimited", test_unlimited },
                { "errors", test_errors },
                { "images", test_images },
                { "daemon_bounds", test_daemon_bounds },
                { "line_numbers", test_line_numbers },
                { "pool", test_pool },
        };
        int fd = mkstemp(path), r;

        if (fd < 0)
                return 1;
        close(fd);
        r = tap_run(tests, ELEMENTSOF(tests));
        unlink(path);
        return r;
}
