/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of tools/exec-options.c, the command line of sandbox-run and sandboxctl exec: sizes with
 * suffixes and fractions (--memory, --tmpfs, --disk, --rlimit of byte-valued resources), unlimited
 * where it is allowed, --disk SIZE[,inodes=N], --cpus within the host's CPUs, --stats FILE|fd:N, --image
 * host|DIR|NAME with --entrypoint, --user NAME and no command, --store, --cap-add/--cap-drop, the options
 * of --bind (ro, rw, idmap), and that every malformed value is refused (the messages themselves are checked end to end in
 * tests/integration). Output is TAP; the parser's messages go to stderr.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "exec-options.h"
#include "macro.h"
#include "tap.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* Parse the NULL-terminated options ARGS followed by the command "true". */
static int parse(ExecOptions *o, const char *const *args) {
        char *argv[32];
        int argc = 0;

        argv[argc++] = (char *) "sandbox-run";
        for (; *args && argc < 30; args++)
                argv[argc++] = (char *) *args;
        argv[argc++] = (char *) "true";
        argv[argc] = NULL;
        *o = (ExecOptions) {};
        return exec_options_parse(argc, argv, o);
}

#define PARSE(o, ...) parse(o, (const char *const[]) { __VA_ARGS__, NULL })

static int test_sizes(void) {
        _cleanup_(exec_options_done) ExecOptions o = {};

        CHECK_EQ(PARSE(&o, "--memory", "1.5g", "--tmpfs", "/x:1.5g", "--tmpfs", "/y:unlimited", "--tmpfs", "/z",
                       "--disk", "2.5g,inodes=5000", "--rlimit", "fsize=100m", "--rlimit", "stack=8m:unlimited"), 0);
        CHECK_U64(o.spec.memory_max, 3 * GiB / 2);
        CHECK_EQ(o.spec.n_tmpfs, 3);
        CHECK_U64(o.spec.tmpfs[0].size, 3 * GiB / 2);
        CHECK_U64(o.spec.tmpfs[1].size, SPEC_UNLIMITED);
        CHECK_U64(o.spec.tmpfs[2].size, 0); /* the default */
        CHECK_U64(o.spec.disk_max, 5 * GiB / 2);
        CHECK_U64(o.spec.disk_inodes_max, 5000);
        CHECK_EQ(o.spec.n_rlimits, 2);
        CHECK_EQ(o.spec.rlimits[0].resource, RLIMIT_FSIZE);
        CHECK_U64(o.spec.rlimits[0].soft, 100 * MiB);
        CHECK_U64(o.spec.rlimits[0].hard, 100 * MiB);
        CHECK_U64(o.spec.rlimits[1].soft, 8 * MiB);
        CHECK_U64(o.spec.rlimits[1].hard, UINT64_MAX);
        exec_options_done(&o);

        /* Counts are plain numbers; unlimited everywhere it means "no bound". */
        CHECK_EQ(PARSE(&o, "--rlimit", "nofile=64:128", "--memory", "unlimited", "--pids", "unlimited", "--disk",
                       "unlimited"), 0);
        CHECK_U64(o.spec.rlimits[0].soft, 64);
        CHECK_U64(o.spec.rlimits[0].hard, 128);
        CHECK_U64(o.spec.memory_max, SPEC_UNLIMITED);
        CHECK_U64(o.spec.pids_max, SPEC_UNLIMITED);
        CHECK_U64(o.spec.disk_max, SPEC_UNLIMITED);
        CHECK_U64(o.spec.disk_inodes_max, 0); /* not given: the default */
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--disk", "1g,inodes=unlimited"), 0);
        CHECK_U64(o.spec.disk_inodes_max, SPEC_UNLIMITED);
        return 0;
}

static int test_refused(void) {
        static const char *const bad[][3] = {
                { "--memory", "1.5" },                  /* a fraction of a byte */
                { "--memory", "512k" },                 /* below 1m */
                { "--tmpfs", "/x:0" },
                { "--tmpfs", "/x:lots" },
                { "--disk", "100k" },
                { "--disk", "1g,inodes=0" },
                { "--disk", "1g,files=5" },
                { "--disk", "1g," },
                { "--rlimit", "nofile=1k" },            /* a count, not a size */
                { "--rlimit", "fsize=1x" },
                { "--rlimit", "nofile=64:32" },
                { "--rlimit", "bogus=1" },
                { "--rlimit", "nofile" },
                { "--cpus", "0" },
                { "--cpus", "" },
                { "--stats", "fd:" },
                { "--stats", "fd:-1" },
                { "--stats", "fd:99999" },
                { "--stats", "" },
                { "--cap-add", "" },
                { "--cap-add", "," },
                { "--cap-add", "NET_RAWX" },
                { "--cap-drop", "CAP_" },
                { "--bind", "/a:/b:idmap,rx" },
                { "--bind", "/a:/b:ro,rw" },
                { "--bind", "/a:/b:" },
                { "--bind", "/a:/b:ro,,idmap" },
        };
        ExecOptions o;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (parse(&o, bad[i]) != -EINVAL) {
                        printf("# accepted: %s %s\n", bad[i][0], bad[i][1]);
                        exec_options_done(&o);
                        return -1;
                }
        return 0;
}

/* --cap-add and --cap-drop: names in any case, with or without CAP_, lists, ALL; the same capability on
 * both sides is refused unless one side is ALL. --bind options: ro, rw, idmap in any combination
 * but ro with rw. */
static int test_caps_and_binds(void) {
        _cleanup_(exec_options_done) ExecOptions o = {};

        CHECK_EQ(PARSE(&o, "--cap-add", "net_raw,CAP_SYS_PTRACE", "--cap-add", "Mknod", "--cap-drop", "chown"), 0);
        CHECK_U64(o.spec.cap_add, SPEC_CAP(13) | SPEC_CAP(19) | SPEC_CAP(27));
        CHECK_U64(o.spec.cap_drop, SPEC_CAP(0));
        CHECK_U64(spec_capabilities(&o.spec), (SPEC_CAPS_DEFAULT & ~SPEC_CAP(0)) | SPEC_CAP(13) | SPEC_CAP(19) |
                                              SPEC_CAP(27));
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--cap-drop", "ALL", "--cap-add", "SETUID"), 0);
        CHECK_U64(spec_capabilities(&o.spec), SPEC_CAP(7));
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--cap-add", "all", "--cap-drop", "SYS_ADMIN"), 0);
        CHECK_U64(spec_capabilities(&o.spec), SPEC_CAPS_ALL & ~SPEC_CAP(21));
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--cap-add", "NET_RAW", "--cap-drop", "net_raw"), -EINVAL);
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--cap-add", "ALL", "--cap-drop", "ALL"), -EINVAL);
        exec_options_done(&o);

        CHECK_EQ(PARSE(&o, "--bind", "/a:/b:idmap", "--bind", "/c:/d:ro,idmap", "--bind", "/e:/f:rw",
                       "--bind", "/g:/h"), 0);
        CHECK_EQ(o.spec.n_binds, 4);
        CHECK(o.spec.binds[0].idmap && !o.spec.binds[0].readonly && !o.spec.binds[0].by_fd);
        CHECK(o.spec.binds[1].idmap && o.spec.binds[1].readonly);
        CHECK(!o.spec.binds[2].idmap && !o.spec.binds[2].readonly);
        CHECK(!o.spec.binds[3].idmap && !o.spec.binds[3].readonly);
        CHECK_STREQ(o.spec.binds[1].source, "/c");
        CHECK_STREQ(o.spec.binds[1].dest, "/d");
        return 0;
}

static int test_cpus(void) {
        _cleanup_(exec_options_done) ExecOptions o = {};
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        char all[32], more[32];

        CHECK(n > 0);
        snprintf(all, sizeof all, "%ld", n);
        snprintf(more, sizeof more, "%ld.5", n);
        CHECK_EQ(PARSE(&o, "--cpus", all), 0);
        CHECK_EQ(o.spec.cpus_milli, (uint32_t) n * 1000);
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--cpus", more), -EINVAL);
        return 0;
}

static int test_stats(void) {
        _cleanup_(exec_options_done) ExecOptions o = {};
        int p[2], ro;
        char arg[32];

        CHECK_EQ(PARSE(&o, "--stats", "/tmp/s.json"), 0);
        CHECK_STREQ(o.stats_path, "/tmp/s.json");
        CHECK_EQ(o.stats_fd, -EBADF);
        exec_options_done(&o);

        CHECK_EQ(pipe(p), 0);
        snprintf(arg, sizeof arg, "fd:%d", p[1]);
        CHECK_EQ(PARSE(&o, "--stats", "/tmp/first", "--stats", arg), 0);
        CHECK_EQ(o.stats_fd, p[1]);
        CHECK(!o.stats_path);
        /* Ours only: nothing the tool starts inherits it. */
        CHECK(fcntl(p[1], F_GETFD) & FD_CLOEXEC);
        exec_options_done(&o);
        CHECK(fcntl(p[1], F_GETFD) >= 0); /* the caller's: never closed by the parser */

        /* The read end is not open for writing. */
        snprintf(arg, sizeof arg, "fd:%d", p[0]);
        CHECK_EQ(PARSE(&o, "--stats", arg), -EINVAL);
        ro = p[0];
        close(ro);
        close(p[1]);
        CHECK_EQ(PARSE(&o, "--stats", arg), -EINVAL); /* closed now */
        return 0;
}

/* ARGS as the whole command line (no command added). */
static int parse_all(ExecOptions *o, const char *const *args) {
        char *argv[32];
        int argc = 0;

        argv[argc++] = (char *) "sandbox-run";
        for (; *args && argc < 31; args++)
                argv[argc++] = (char *) *args;
        argv[argc] = NULL;
        *o = (ExecOptions) {};
        return exec_options_parse(argc, argv, o);
}

#define PARSE_ALL(o, ...) parse_all(o, (const char *const[]) { __VA_ARGS__, NULL })

static int test_image(void) {
        _cleanup_(exec_options_done) ExecOptions o = {};
        _cleanup_free_ char *cwd = getcwd(NULL, 0), *rel = NULL;

        CHECK(cwd && asprintf(&rel, "%s/./img", cwd) > 0);
        /* a directory: starts with / or . */
        CHECK_EQ(PARSE(&o, "--image", "/srv/img"), 0);
        CHECK_STREQ(o.spec.image, "/srv/img");
        CHECK(!o.spec.image_ref);
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--image", "./img"), 0);
        CHECK_STREQ(o.spec.image, rel);
        CHECK(!o.spec.image_ref);
        exec_options_done(&o);
        /* host, and the last --image wins */
        CHECK_EQ(PARSE(&o, "--image", "busybox", "--image", "host"), 0);
        CHECK(!o.spec.image && !o.spec.image_ref);
        exec_options_done(&o);
        /* anything else names an image of the store, as given (the store normalizes it) */
        CHECK_EQ(PARSE(&o, "--image", "/dir", "--image", "localhost:5000/app@sha256:abcd"), 0);
        CHECK_STREQ(o.spec.image_ref, "localhost:5000/app@sha256:abcd");
        CHECK(!o.spec.image);
        exec_options_done(&o);
        CHECK_EQ(PARSE(&o, "--image", "img"), 0); /* a relative directory needs ./ now */
        CHECK_STREQ(o.spec.image_ref, "img");
        exec_options_done(&o);

        /* no command: the image's; --entrypoint, a user by name, --store */
        CHECK_EQ(PARSE_ALL(&o, "--image", "app:1", "--entrypoint", "", "-u", "app:staff", "--store", "/s"), 0);
        CHECK_EQ(o.spec.n_argv, 0);
        CHECK_STREQ(o.spec.entrypoint, "");
        CHECK_STREQ(o.spec.user, "app:staff");
        CHECK_STREQ(o.store, "/s");
        CHECK_EQ(o.spec.uid, 0);
        exec_options_done(&o);
        /* with an image, a numeric --user is the image's to resolve too (its group comes from its passwd) */
        CHECK_EQ(PARSE(&o, "-u", "1000", "--image", "app:1"), 0);
        CHECK_STREQ(o.spec.user, "1000");
        exec_options_done(&o);
        /* without one, numbers as before */
        CHECK_EQ(PARSE(&o, "-u", "1000:5"), 0);
        CHECK(!o.spec.user);
        CHECK_EQ(o.spec.uid, 1000);
        CHECK_EQ(o.spec.gid, 5);
        exec_options_done(&o);

        static const char *const bad[][5] = {
                { "--image", "" },
                { "-u", "app" },                        /* a name needs an image */
                { "--entrypoint", "/bin/sh" },          /* so does --entrypoint */
                { "--image", "/dir", "--entrypoint", "x" },
                { "--image", "host", "-u", "app" },
                { "--store", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (parse(&o, bad[i]) != -EINVAL) {
                        printf("# accepted: %s %s %s %s\n", bad[i][0], bad[i][1], bad[i][2] ?: "", bad[i][3] ?: "");
                        return -1;
                }
        /* a command is needed unless an image of the store gives one */
        CHECK_EQ(PARSE_ALL(&o, "--image", "/dir"), -EINVAL);
        CHECK_EQ(PARSE_ALL(&o, "-e", "A=1"), -EINVAL);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(sizes),
                TAP_TEST(image),
                TAP_TEST(refused),
                TAP_TEST(caps_and_binds),
                TAP_TEST(cpus),
                TAP_TEST(stats),
        };
        return tap_run(tests, ELEMENTSOF(tests));
}
