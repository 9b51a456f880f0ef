/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox-oci's config.json translation (oci/bundle.c): what each honoured field becomes in the spec, the
 * sandbox's defaults where config.json sets nothing, and refusals that name the field.
 */
#include <sys/resource.h>

#include "bundle.h"
#include "macro.h"
#include "tap.h"

#define BASE_PROCESS "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/w\",\"user\":{\"uid\":0,\"gid\":0}"

static int parse(const char *json, OciBundle *b, char *err, size_t errlen) {
        *b = (OciBundle) { .umask = -1 };
        return oci_bundle_parse(json, strlen(json), "/bundle", b, err, errlen);
}

static int test_minimal(void) {
        OciBundle b;
        char err[512];

        CHECK_EQ(parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"}," BASE_PROCESS "}}", &b, err, sizeof err), 0);
        CHECK_STREQ(b.root, "/bundle/rootfs");
        CHECK_STREQ(b.spec.image, "/bundle/rootfs");
        CHECK_STREQ(b.spec.workdir, "/w");
        CHECK_EQ(b.spec.n_argv, 1);
        /* no linux section: the host's network; no limits: the defaults (0); no capabilities: none */
        CHECK_EQ(b.spec.net, SPEC_NET_HOST);
        CHECK_EQ(b.spec.memory_max, 0);
        CHECK_EQ(b.spec.pids_max, 0);
        CHECK_EQ(spec_capabilities(&b.spec), 0);
        oci_bundle_done(&b);
        return 0;
}

static int test_fields(void) {
        OciBundle b;
        char err[512];
        const char *json =
                "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\",\"readonly\":true},\"hostname\":\"h1\","
                BASE_PROCESS ",\"terminal\":true,\"env\":[\"A=1\"],"
                "\"capabilities\":{\"bounding\":[\"CAP_CHOWN\",\"CAP_SYS_ADMIN\"],\"permitted\":[\"CAP_CHOWN\",\"CAP_SYS_ADMIN\"]},"
                "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":20}]},"
                "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\"},{\"destination\":\"/d\",\"type\":\"bind\","
                "\"source\":\"data\",\"options\":[\"ro\"]},{\"destination\":\"/t\",\"type\":\"tmpfs\",\"options\":[\"size=1m\"]},"
                "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"options\":[\"ro\"]}],"
                "\"linux\":{\"namespaces\":[{\"type\":\"network\"},{\"type\":\"pid\"}],"
                "\"resources\":{\"memory\":{\"limit\":-1},\"pids\":{\"limit\":5},\"cpu\":{\"quota\":50000,\"period\":100000}},"
                "\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"]},"
                "\"hooks\":{\"poststop\":[{\"path\":\"/bin/true\",\"timeout\":3}]}}";

        CHECK_EQ(parse(json, &b, err, sizeof err), 0);
        CHECK(b.root_readonly);
        CHECK(b.spec.tty);
        CHECK_STREQ(b.spec.hostname, "h1");
        CHECK_EQ(b.spec.net, SPEC_NET_NONE);
        CHECK_EQ(spec_capabilities(&b.spec), SPEC_CAP(0) | SPEC_CAP(21));
        CHECK_EQ(b.spec.n_rlimits, 1);
        CHECK_EQ(b.spec.rlimits[0].resource, RLIMIT_NOFILE);
        CHECK_EQ(b.spec.rlimits[0].hard, 20);
        CHECK_EQ(b.spec.n_binds, 1);
        CHECK_STREQ(b.spec.binds[0].source, "/bundle/data");
        CHECK(b.spec.binds[0].readonly);
        CHECK_EQ(b.spec.n_tmpfs, 1);
        CHECK_EQ(b.spec.tmpfs[0].size, 1 << 20);
        CHECK_STREQ(b.cgroup_dest, "/sys/fs/cgroup");
        CHECK(b.cgroup_readonly);
        CHECK_EQ(b.spec.memory_max, SPEC_UNLIMITED);
        CHECK_EQ(b.spec.pids_max, 5);
        CHECK_EQ(b.spec.cpus_milli, 500);
        CHECK_EQ(b.n_sysctl, 1);
        CHECK_EQ(b.n_masked, 1);
        CHECK_EQ(b.n_readonly, 1);
        CHECK_EQ(b.n_hooks[OCI_HOOK_POSTSTOP], 1);
        CHECK_EQ(b.hooks[OCI_HOOK_POSTSTOP][0].timeout, 3);
        oci_bundle_done(&b);
        return 0;
}

static int test_limits_annotation(void) {
        OciBundle b;
        char err[512];

        CHECK_EQ(parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},"
                       "\"annotations\":{\"run.sandbox.limits\":\"none\"},\"linux\":{\"resources\":{\"pids\":{\"limit\":7}}}}",
                       &b, err, sizeof err), 0);
        CHECK_EQ(b.spec.memory_max, SPEC_UNLIMITED);
        CHECK_EQ(b.spec.pids_max, 7);
        oci_bundle_done(&b);
        return 0;
}

static int test_refusals(void) {
        static const struct {
                const char *extra;
                const char *want;
        } cases[] = {
                { "\"linux\":{\"namespaces\":[{\"type\":\"net\"}]}", "'net' namespace" },
                { "\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/x\"}]}", "linux.namespaces[0].path" },
                { "\"linux\":{\"namespaces\":[{\"type\":\"ipc\",\"path\":\"x\"}]}", "must be an absolute path" },
                { "\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_X\"}}", "linux.seccomp.defaultAction" },
                { "\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],"
                  "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_XX\"}]}]}}",
                  "linux.seccomp.syscalls[0].args[0].op" },
                { "\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultErrnoRet\":99999}}",
                  "linux.seccomp.defaultErrnoRet" },
                { "\"linux\":{\"intelRdt\":{\"closID\":\"x\"}}", "linux.intelRdt" },
                { "\"linux\":{\"resources\":{\"blockIO\":{\"weight\":1}}}", "linux.resources.blockIO.weight is out of range" },
                { "\"linux\":{\"resources\":{\"blockIO\":{\"leafWeight\":10}}}", "linux.resources.blockIO.leafWeight is not" },
                { "\"linux\":{\"resources\":{\"blockIO\":{\"weightDevice\":[{\"major\":8,\"minor\":0,\"weight\":10}]}}}",
                  "linux.resources.blockIO.weightDevice is not" },
                { "\"linux\":{\"resources\":{\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":1}]}}",
                  "linux.resources.hugepageLimits is not" },
                { "\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"0-\"}}}", "linux.resources.cpu.cpus: '0-' is not a list" },
                { "\"linux\":{\"resources\":{\"cpu\":{\"mems\":\"3-1\"}}}", "linux.resources.cpu.mems: '3-1'" },
                { "\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"0,70000\"}}}", "numbers at most 65535" },
                { "\"linux\":{\"resources\":{\"cpu\":{\"cpus\":7}}}", "linux.resources.cpu.cpus must be a string" },
                { "\"linux\":{\"resources\":{\"blockIO\":{\"throttleReadBpsDevice\":[{\"minor\":0,\"rate\":1}]}}}",
                  "linux.resources.blockIO.throttleReadBpsDevice[0].major is missing" },
                { "\"linux\":{\"resources\":{\"blockIO\":{\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":0,\"rate\":-1}]}}}",
                  "throttleWriteIOPSDevice[0].rate is out of range" },
                { "\"linux\":{\"resources\":{\"blockIO\":{\"throttleReadBpsDevice\":{}}}}",
                  "throttleReadBpsDevice must be an array" },
                { "\"linux\":{\"sysctl\":{\"kernel.panic\":\"1\"}}", "linux.sysctl[kernel.panic]" },
                { "\"hooks\":{\"startContainer\":[{\"path\":\"x\"}]}", "hooks.startContainer[0].path" },
                { "\"mounts\":[{\"destination\":\"/x\",\"type\":\"nfs\"}]", "type 'nfs'" },
                { "\"mounts\":[{\"destination\":\"/a/../b\",\"type\":\"tmpfs\"}]", "mounts[0].destination" },
                { "\"annotations\":{\"run.sandbox.userns\":\"host\"}", "private id range" },
                { "\"domainname\":\"x\"", "domainname" },
                { "\"linux\":{\"cgroupsPath\":7}", "linux.cgroupsPath must be a string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char json[2048], err[512] = "";
                OciBundle b;
                snprintf(json, sizeof json, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},%s}",
                         cases[i].extra);
                CHECK_EQ(parse(json, &b, err, sizeof err), -EINVAL);
                if (!strstr(err, cases[i].want))
                        printf("# case %zu: '%s' not in '%s'\n", i, cases[i].want, err);
                CHECK(strstr(err, cases[i].want));
        }
        return 0;
}

static int test_bounds(void) {
        char err[512];
        OciBundle b;
        size_t n = 300 * 16 + 256;
        char *json = malloc(n);
        size_t len;

        CHECK(json);
        len = (size_t) snprintf(json, n, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},"
                                         "\"linux\":{\"maskedPaths\":[");
        for (int i = 0; i < 300; i++)
                len += (size_t) snprintf(json + len, n - len, "%s\"/p%d\"", i ? "," : "", i);
        snprintf(json + len, n - len, "]}}");
        CHECK_EQ(parse(json, &b, err, sizeof err), -E2BIG);
        CHECK(strstr(err, "linux.maskedPaths"));
        free(json);
        /* deeper than the nesting bound */
        char deep[200];
        len = (size_t) snprintf(deep, sizeof deep, "{\"ociVersion\":\"1.0.2\",\"x\":");
        for (int i = 0; i < 40; i++)
                deep[len++] = '[';
        for (int i = 0; i < 40; i++)
                deep[len++] = ']';
        deep[len++] = '}';
        deep[len] = '\0';
        CHECK(parse(deep, &b, err, sizeof err) < 0);
        return 0;
}

/* cpuset and blockIO: honoured (SandboxConfig.cpuset_io), one entry per device, bounded; not for update. */
static int test_cpuset_io(void) {
        OciBundle b;
        char err[512] = "", json[4096];
        size_t len;

        CHECK_EQ(parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},\"linux\":{\"resources\":"
                       "{\"cpu\":{\"quota\":50000,\"cpus\":\"0-1,3\",\"mems\":\"0\"},\"blockIO\":{\"weight\":300,"
                       "\"leafWeight\":null,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":1048576}],"
                       "\"throttleWriteBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":2048},{\"major\":253,\"minor\":1,\"rate\":0}],"
                       "\"throttleReadIOPSDevice\":[{\"major\":259,\"minor\":3,\"rate\":50}],"
                       "\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":0,\"rate\":70}]}}}}",
                       &b, err, sizeof err), 0);
        CHECK(b.has_cpuset_io);
        CHECK_STREQ(b.cpuset_io.cpus, "0-1,3");
        CHECK_STREQ(b.cpuset_io.mems, "0");
        CHECK_EQ(b.cpuset_io.io_weight, 300);
        CHECK_EQ(b.spec.cpus_milli, 500);
        CHECK_EQ(b.cpuset_io.n_devices, 2); /* rate 0 is no bound: 253:1 has none */
        CHECK_EQ(b.cpuset_io.devices[0].major, 8);
        CHECK_EQ(b.cpuset_io.devices[0].minor, 0);
        CHECK_EQ(b.cpuset_io.devices[0].rbps, 1048576);
        CHECK_EQ(b.cpuset_io.devices[0].wbps, 2048);
        CHECK_EQ(b.cpuset_io.devices[0].riops, 0);
        CHECK_EQ(b.cpuset_io.devices[0].wiops, 70);
        CHECK_EQ(b.cpuset_io.devices[1].major, 259);
        CHECK_EQ(b.cpuset_io.devices[1].riops, 50);
        oci_bundle_done(&b);

        /* Nothing asked (empty strings, an empty object): nothing to do, as before. */
        CHECK_EQ(parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},\"linux\":{\"resources\":"
                       "{\"cpu\":{\"cpus\":\"\",\"mems\":\"\"},\"blockIO\":{}}}}", &b, err, sizeof err), 0);
        CHECK(!b.has_cpuset_io);
        oci_bundle_done(&b);

        /* More than CGROUP_IO_DEVICES_MAX devices, and a list longer than the bound. */
        len = (size_t) snprintf(json, sizeof json, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},"
                                "\"linux\":{\"resources\":{\"blockIO\":{\"throttleReadBpsDevice\":[");
        for (int i = 0; i < 9; i++)
                len += (size_t) snprintf(json + len, sizeof json - len, "%s{\"major\":8,\"minor\":%d,\"rate\":1}", i ? "," : "", i);
        len += (size_t) snprintf(json + len, sizeof json - len, "],\"throttleWriteBpsDevice\":[");
        for (int i = 0; i < 9; i++)
                len += (size_t) snprintf(json + len, sizeof json - len, "%s{\"major\":9,\"minor\":%d,\"rate\":1}", i ? "," : "", i);
        snprintf(json + len, sizeof json - len, "]}}}}");
        CHECK_EQ(parse(json, &b, err, sizeof err), -E2BIG);
        CHECK(strstr(err, "more than 16 devices"));
        len = (size_t) snprintf(json, sizeof json, "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},"
                                "\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"0");
        for (int i = 0; i < 100; i++)
                len += (size_t) snprintf(json + len, sizeof json - len, ",%d", i);
        snprintf(json + len, sizeof json - len, "\"}}}}");
        CHECK_EQ(parse(json, &b, err, sizeof err), -E2BIG);
        CHECK(strstr(err, "linux.resources.cpu.cpus is longer than 255 bytes"));

        /* update --resources: set when the cgroup is made, refused on a running container, naming the field. */
        uint64_t mem, pids;
        uint32_t cpus;
        const char *upd = "{\"cpu\":{\"cpus\":\"0\"}}";
        CHECK_EQ(oci_resources_parse(upd, strlen(upd), &mem, &pids, &cpus, err, sizeof err), -EOPNOTSUPP);
        CHECK(strstr(err, "linux.resources.cpu.cpus cannot be changed"));
        upd = "{\"blockIO\":{\"weight\":100}}";
        CHECK_EQ(oci_resources_parse(upd, strlen(upd), &mem, &pids, &cpus, err, sizeof err), -EOPNOTSUPP);
        CHECK(strstr(err, "linux.resources.blockIO cannot"));
        return 0;
}

static int test_join_and_seccomp(void) {
        char err[512] = "";
        OciBundle b;

        CHECK_EQ(parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},\"linux\":{"
                       "\"namespaces\":[{\"type\":\"network\",\"path\":\"/run/netns/x\"},{\"type\":\"uts\",\"path\":\"/u\"},"
                       "{\"type\":\"ipc\"}],\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
                       "{\"names\":[\"mkdir\",\"unknown_syscall\"],\"action\":\"SCMP_ACT_ERRNO\"},"
                       "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}]}}}", &b, err, sizeof err), 0);
        CHECK(b.join[OCI_JOIN_NET] && streq(b.join[OCI_JOIN_NET], "/run/netns/x"));
        CHECK(b.join[OCI_JOIN_UTS] && streq(b.join[OCI_JOIN_UTS], "/u"));
        CHECK(!b.join[OCI_JOIN_IPC]);
        CHECK_EQ(b.spec.net, SPEC_NET_HOST);     /* a joined network: nothing of ours in it */
        CHECK(b.seccomp && filter_program_size(b.seccomp) > 0);
        oci_bundle_done(&b);
        /* the annotation drops the engine's profile */
        CHECK_EQ(parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"/r\"}," BASE_PROCESS "},"
                       "\"annotations\":{\"run.sandbox.seccomp\":\"ours\"},"
                       "\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\"}}}", &b, err, sizeof err), 0);
        CHECK(!b.seccomp);
        oci_bundle_done(&b);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(minimal),
                TAP_TEST(fields),
                TAP_TEST(limits_annotation),
                TAP_TEST(refusals),
                TAP_TEST(bounds),
                TAP_TEST(cpuset_io),
                TAP_TEST(join_and_seccomp),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
