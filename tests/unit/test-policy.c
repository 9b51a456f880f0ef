/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of sandboxd/policy.c: for a client other than root, a bound left out takes min(default,
 * cap) (the wall clock: the cap), one above its cap or unlimited under a cap is refused with a message
 * naming the option, the cap and its value, the per-uid totals hold, --rlimit may only lower limits
 * and core stays 0; root is not capped; --cpus above the host's CPUs is refused for everyone. A
 * refused spec is left as it came. Output is TAP.
 */
#include <string.h>
#include <sys/resource.h>

#include "daemon-config.h"
#include "macro.h"
#include "policy.h"
#include "tap.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

static PolicyHost host(void) {
        PolicyHost h = { .cpus = 2 };
        for (int i = 0; i < RLIM_NLIMITS; i++)
                h.rlimit_hard[i] = UINT64_MAX;
        h.rlimit_hard[RLIMIT_NOFILE] = 65536;
        h.rlimit_hard[RLIMIT_CORE] = 0;
        h.rlimit_hard[RLIMIT_RTPRIO] = 0;
        return h;
}

/* policy_check() as a client other than root (ROOT false) or root; MSG is "" on success. */
static int check(const DaemonConfig *c, bool root, const PolicyUsage *used, SandboxSpec *s, char *msg,
                 size_t size) {
        PolicyHost h = host();
        PolicyUsage none = {};
        msg[0] = '\0';
        return policy_check(c, &h, root, used ?: &none, s, msg, size);
}

static int test_defaults_filled_in(void) {
        DaemonConfig c;
        SandboxSpec s = {};
        char msg[512];

        config_init(&c);
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), 0);
        CHECK_U64(s.memory_max, 2 * GiB);
        CHECK_U64(s.pids_max, 1024);
        CHECK_U64(s.disk_max, 10 * GiB);
        CHECK_U64(s.disk_inodes_max, 1000000);
        CHECK_U64(s.timeout_usec, UINT64_C(3600) * 1000000);

        /* A cap below the default is the default; a value below the cap stays. */
        c.max_memory = 512 * MiB;
        c.max_timeout_usec = UINT64_C(20) * 1000000;
        s = (SandboxSpec) { .pids_max = 10, .timeout_usec = 5000000 };
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), 0);
        CHECK_U64(s.memory_max, 512 * MiB);
        CHECK_U64(s.pids_max, 10);
        CHECK_U64(s.timeout_usec, 5000000);

        /* No cap: the default all the same, and no wall clock. */
        c.max_memory = c.max_timeout_usec = UINT64_MAX;
        s = (SandboxSpec) {};
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), 0);
        CHECK_U64(s.memory_max, 2 * GiB);
        CHECK_U64(s.timeout_usec, 0);
        return 0;
}

static int test_refusals(void) {
        static const struct {
                SandboxSpec spec;
                const char *message;
        } cases[] = {
                { { .memory_max = 4 * GiB }, "--memory 4 GiB is above this daemon's max-memory (2 GiB)" },
                { { .memory_max = UINT64_MAX }, "--memory unlimited: this daemon's max-memory is 2 GiB" },
                { { .pids_max = 1025 }, "--pids 1025 is above this daemon's max-pids (1024)" },
                { { .pids_max = UINT64_MAX }, "--pids unlimited: this daemon's max-pids is 1024" },
                { { .disk_max = 11 * GiB }, "--disk 11 GiB is above this daemon's max-disk (10 GiB)" },
                { { .disk_max = UINT64_MAX }, "--disk unlimited: this daemon's max-disk is 10 GiB" },
                { { .disk_inodes_max = 1000001 },
                  "--disk inodes=1000001 is above this daemon's max-disk-inodes (1000000)" },
                { { .timeout_usec = UINT64_C(7200) * 1000000 },
                  "--timeout 7200 s is above this daemon's max-timeout (3600 s)" },
        };
        DaemonConfig c;
        char msg[512];

        config_init(&c);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SandboxSpec s = cases[i].spec;
                if (check(&c, false, NULL, &s, msg, sizeof msg) != -EPERM || !strstr(msg, cases[i].message)) {
                        printf("# case %zu: message '%s', expected '%s'\n", i, msg, cases[i].message);
                        return -1;
                }
                /* Left as it came: nothing filled in. */
                CHECK(memcmp(&s, &cases[i].spec, sizeof s) == 0);
                /* Root may ask for all of it. */
                CHECK_EQ(check(&c, true, NULL, &s, msg, sizeof msg), 0);
                CHECK(memcmp(&s, &cases[i].spec, sizeof s) == 0);
        }
        return 0;
}

static int test_totals(void) {
        DaemonConfig c;
        SandboxSpec s = {}, running = {};
        PolicyUsage used = {};
        char msg[512];

        config_init(&c);
        /* Three default sandboxes run: a fourth fits (8 GiB), a fifth does not. */
        CHECK_EQ(check(&c, false, NULL, &running, msg, sizeof msg), 0);
        for (int i = 0; i < 3; i++)
                policy_usage_add(&used, &running);
        CHECK_U64(used.memory, 6 * GiB);
        CHECK_U64(used.pids, 3072);
        CHECK_U64(used.disk, 30 * GiB);
        CHECK_EQ(check(&c, false, &used, &s, msg, sizeof msg), 0);
        policy_usage_add(&used, &s);
        s = (SandboxSpec) {};
        CHECK_EQ(check(&c, false, &used, &s, msg, sizeof msg), -EPERM);
        CHECK(strstr(msg, "--memory 2 GiB: your running sandboxes hold 8 GiB already, and this daemon's "
                          "max-memory-per-client is 8 GiB"));
        CHECK_U64(s.memory_max, 0);
        /* A smaller sandbox still fits in what is left of every total? Not of memory: none is left. */
        s = (SandboxSpec) { .memory_max = 64 * MiB };
        CHECK_EQ(check(&c, false, &used, &s, msg, sizeof msg), -EPERM);

        /* With room for memory, pids are the next total. */
        used = (PolicyUsage) { .memory = 0, .pids = 4000 };
        s = (SandboxSpec) { .memory_max = 64 * MiB };
        CHECK_EQ(check(&c, false, &used, &s, msg, sizeof msg), -EPERM);
        CHECK(strstr(msg, "--pids 1024: your running sandboxes hold 4000 already, and this daemon's "
                          "max-pids-per-client is 4096"));
        s = (SandboxSpec) { .memory_max = 64 * MiB, .pids_max = 96 };
        CHECK_EQ(check(&c, false, &used, &s, msg, sizeof msg), 0);

        /* No per-sandbox cap, a total: unlimited cannot fit in it. */
        c.max_memory = UINT64_MAX;
        s = (SandboxSpec) { .memory_max = UINT64_MAX };
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), -EPERM);
        CHECK(strstr(msg, "--memory unlimited: your running sandboxes hold 0 bytes already"));
        c.max_memory_per_client = UINT64_MAX;
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), 0);
        CHECK_U64(s.memory_max, UINT64_MAX);

        /* Root's sandboxes count for nothing, and root is never refused for a total. */
        config_init(&c);
        used = (PolicyUsage) { .memory = 100 * GiB };
        s = (SandboxSpec) {};
        CHECK_EQ(check(&c, true, &used, &s, msg, sizeof msg), 0);
        return 0;
}

static int test_rlimits(void) {
        static const struct {
                SpecRlimit rl;
                const char *message;    /* NULL: allowed */
        } cases[] = {
                { { RLIMIT_CORE, 1, 1 }, "--rlimit core: core dumps stay off for users other than root (core must be 0, not 1 bytes)" },
                { { RLIMIT_CORE, 0, UINT64_MAX }, "--rlimit core: core dumps stay off for users other than root (core must be 0, not unlimited)" },
                { { RLIMIT_CORE, 0, 0 }, NULL },
                { { RLIMIT_NOFILE, 1024, 65537 },
                  "--rlimit nofile: the hard limit 65537 is above what a sandbox gets by default (65536)" },
                { { RLIMIT_NOFILE, UINT64_MAX, UINT64_MAX }, "--rlimit nofile: the hard limit unlimited" },
                { { RLIMIT_NOFILE, 64, 65536 }, NULL },
                { { RLIMIT_RTPRIO, 0, 50 },
                  "--rlimit rtprio: the hard limit 50 is above what a sandbox gets by default (0)" },
                { { RLIMIT_FSIZE, 100 * MiB, 100 * MiB }, NULL },
                { { RLIMIT_FSIZE, 0, UINT64_MAX }, NULL }, /* what it gets anyway */
        };
        DaemonConfig c;
        char msg[512];

        config_init(&c);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SandboxSpec s = { .n_rlimits = 1 };
                int r;

                s.rlimits[0] = cases[i].rl;
                r = check(&c, false, NULL, &s, msg, sizeof msg);
                if (cases[i].message ? r != -EPERM || !strstr(msg, cases[i].message) : r != 0) {
                        printf("# case %zu: r=%d message '%s', expected '%s'\n", i, r, msg,
                               cases[i].message ?: "(allowed)");
                        return -1;
                }
                CHECK_EQ(check(&c, true, NULL, &s, msg, sizeof msg), 0);
        }
        return 0;
}

static int test_cpus(void) {
        DaemonConfig c;
        SandboxSpec s = { .cpus_milli = 2001 };
        char msg[512];

        config_init(&c);
        CHECK_EQ(check(&c, true, NULL, &s, msg, sizeof msg), -EPERM);
        CHECK(strstr(msg, "--cpus 2.001: this host has 2 CPUs"));
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), -EPERM);
        s.cpus_milli = 2000;
        CHECK_EQ(check(&c, false, NULL, &s, msg, sizeof msg), 0);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(defaults_filled_in),
                TAP_TEST(refusals),
                TAP_TEST(totals),
                TAP_TEST(rlimits),
                TAP_TEST(cpus),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
