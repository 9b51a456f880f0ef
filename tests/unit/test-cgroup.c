/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of runtime/cgroup.c, in three parts:
 *   fake_*  unprivileged, on a fake tree in a private temporary directory (T): plain directories
 *           standing in for the cgroup mounts, whose interface files the CgroupTestHooks create
 *           after each mkdir and delete before each rmdir. Asserts the exact values written to the
 *           limit files, the parsing of the stat files (and -EBADMSG for malformed ones), the
 *           rollback of a failed create and the v1 freeze/kill/thaw sequence.
 *             T/v2/parent/                    a cgroup2 mount and the parent cgroup
 *             T/v1/{memory,pids,cpu,cpuacct,freezer}/parent/
 *             T/v1c/{memory,cpu,cpuacct}/parent/  with cpu,cpuacct co-mounted: cpu and cpuacct
 *                                             are symlinks to "cpu,cpuacct", no pids, no freezer
 *   v1_*    root, on this host's real v1 hierarchies through cgroup_create(): attach, OOM kill,
 *           a bounded fork bomb, cpu accounting, kill_all (also of a stopped member), rollback,
 *           and 100 sandboxes in a row; every cgroup gone afterwards (checked with stat).
 *   v2_*    root, the cgroup2 mechanics under /sys/fs/cgroup/unified (no controllers there):
 *           create_at, attach, clone3(CLONE_INTO_CGROUP), cgroup.kill, stats, -EOPNOTSUPP for
 *           limits, removal; and cgroup_v2_prepare_delegated() in a private mount namespace where
 *           /sys/fs/cgroup is that cgroup2 mount.
 * Every real case runs under a unique per-run name and cleans up after itself, also when an
 * assertion fails (kill the children, remove the cgroups), and on SIGALRM/SIGINT/SIGTERM.
 * Output is TAP.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"
#include "macro.h"
#include "tap.h"

#define MiB (UINT64_C(1024) * 1024)

static char tmp_root[256];
static char run_id[64]; /* "sbxtest-<pid>-<random>" */

/* ------------------------------------------------------------------------------------------------
 * Clean-up registry: what a failed assertion leaves behind is removed after each case and at exit.
 */

static Cgroup *live_cgroups[8];
static pid_t live_kids[32];

static void track_cgroup(Cgroup *c) {
        for (size_t i = 0; i < ELEMENTSOF(live_cgroups); i++)
                if (!live_cgroups[i]) {
                        live_cgroups[i] = c;
                        return;
                }
        abort(); /* a test bug */
}

/* cgroup_remove() + cgroup_free() + forget; returns cgroup_remove()'s result. */
static int drop_cgroup(Cgroup *c) {
        int r = cgroup_remove(c);
        if (r < 0)
                printf("# cgroup_remove: %s\n", tap_errname(r));
        for (size_t i = 0; i < ELEMENTSOF(live_cgroups); i++)
                if (live_cgroups[i] == c)
                        live_cgroups[i] = NULL;
        cgroup_free(c);
        return r;
}

static void track_kid(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++)
                if (live_kids[i] == 0) {
                        live_kids[i] = pid;
                        return;
                }
        abort();
}

/* Reap PID (blocking; the global alarm bounds it) and forget it. */
static int reap_kid(pid_t pid, int *ret_status) {
        int status;
        pid_t r;
        do
                r = waitpid(pid, &status, 0);
        while (r < 0 && errno == EINTR);
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++)
                if (live_kids[i] == pid)
                        live_kids[i] = 0;
        if (r < 0)
                return -errno;
        *ret_status = status;
        return 0;
}

/* Kill the kids first, then remove the cgroups (which also thaws a freezer that an interrupted
 * cgroup_kill_all() left FROZEN: a frozen kid cannot die), then reap, bounded. */
static volatile sig_atomic_t cleanup_running, exit_pending;
static void remove_tmp_root(void);

static void cleanup_all(void) {
        if (cleanup_running)
                return;
        cleanup_running = 1;
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++)
                if (live_kids[i] > 0)
                        (void) kill(live_kids[i], SIGKILL);
        for (size_t i = 0; i < ELEMENTSOF(live_cgroups); i++)
                if (live_cgroups[i]) {
                        printf("# cleaning up a cgroup left by a failed case\n");
                        (void) drop_cgroup(live_cgroups[i]);
                }
        for (size_t i = 0; i < ELEMENTSOF(live_kids); i++) {
                for (int tries = 0; live_kids[i] > 0 && tries < 200; tries++) {
                        pid_t r = waitpid(live_kids[i], NULL, WNOHANG);
                        if (r == live_kids[i] || (r < 0 && errno == ECHILD))
                                live_kids[i] = 0;
                        else
                                usleep(10000);
                }
                if (live_kids[i] > 0)
                        printf("# kid %ld did not go away\n", (long) live_kids[i]);
                live_kids[i] = 0;
        }
        cleanup_running = 0;
        if (exit_pending) { /* a signal arrived meanwhile: this clean-up was its clean-up */
                remove_tmp_root();
                _exit(1);
        }
}

static void remove_tmp_root(void) {
        if (tmp_root[0])
                tap_remove_tree(tmp_root);
        tmp_root[0] = '\0';
}

static void fatal_signal(int sig) {
        /* Not async-signal-safe, but the alternative is leaving cgroups and a fork bomb behind. */
        printf("# signal %d: cleaning up\n", sig);
        if (cleanup_running) {
                exit_pending = 1;
                return;
        }
        cleanup_all();
        remove_tmp_root();
        _exit(1);
}

/* ------------------------------------------------------------------------------------------------
 * Small file helpers
 */

static int read_str(const char *path, char *buf, size_t size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        int r = n < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return r;
        buf[n] = '\0';
        return (int) n;
}

static int write_str_len(const char *path, const char *s, size_t n) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t k = write(fd, s, n);
        int r = k < 0 ? -errno : (size_t) k == n ? 0 : -EIO;
        close(fd);
        return r;
}

static int write_str(const char *path, const char *s) {
        return write_str_len(path, s, strlen(s));
}

/* The content of T/REL, or "(error)". */
static const char *fake_read(const char *rel) {
        static char buf[256];
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
        if (read_str(path, buf, sizeof buf) < 0)
                return "(error)";
        return buf;
}

static int fake_write(const char *rel, const char *s) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
        return write_str(path, s);
}

static bool fake_exists(const char *rel) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
        return lstat(path, &st) >= 0;
}

static int mkfile_at(int dfd, const char *name, const char *content) {
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        size_t n = strlen(content);
        ssize_t k = n ? write(fd, content, n) : 0;
        close(fd);
        return k == (ssize_t) n ? 0 : -EIO;
}

/* ------------------------------------------------------------------------------------------------
 * The fake tree's hooks: what the kernel does on mkdir and rmdir of a cgroup
 */

typedef struct FakeOpts {
        bool no_swap_file; /* no memory.swap.max / memory.memsw.limit_in_bytes (no swap accounting) */
        bool no_pids_file; /* pids.max missing although the parent says pids is enabled */
        bool fail_mkdir;   /* the hook itself fails */
        bool no_io_weight; /* v1 blkio without blkio.bfq.weight (no bfq scheduler) */
        unsigned mkdirs, rmdirs;
} FakeOpts;

typedef struct FakeFile {
        const char *name, *content;
} FakeFile;

static const FakeFile v2_files[] = {
        { "cgroup.procs", "" },     { "cgroup.kill", "" },     { "cgroup.events", "populated 0\nfrozen 0\n" },
        { "cgroup.controllers", "cpu memory pids\n" }, { "cgroup.subtree_control", "" },
        { "memory.max", "" },       { "memory.swap.max", "" }, { "pids.max", "" },
        { "cpu.max", "" },          { "cpu.weight", "" },
        { "cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n" },
        { "memory.peak", "0\n" },   { "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n" },
        { "pids.events", "max 0\n" },
        { "cpuset.cpus", "" },      { "cpuset.mems", "" },     { "io.weight", "" }, { "io.max", "" },
};

static const FakeFile v1_memory_files[] = {
        { "memory.limit_in_bytes", "" },
        { "memory.memsw.limit_in_bytes", "" },
        { "memory.max_usage_in_bytes", "0\n" },
        { "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n" },
};
static const FakeFile v1_pids_files[] = { { "pids.max", "" }, { "pids.events", "max 0\n" } };
static const FakeFile v1_cpu_files[] = { { "cpu.cfs_period_us", "" }, { "cpu.cfs_quota_us", "" }, { "cpu.shares", "" } };
static const FakeFile v1_cpuacct_files[] = { { "cpuacct.usage", "0\n" } };
static const FakeFile v1_freezer_files[] = { { "freezer.state", "THAWED\n" } };
static const FakeFile v1_cpuset_files[] = { { "cpuset.cpus", "" }, { "cpuset.mems", "" } };
/* As on kernels since 5.0: no blkio.weight (cfq is gone), bfq's own file when bfq is there. */
static const FakeFile v1_blkio_files[] = {
        { "blkio.bfq.weight", "" }, { "blkio.throttle.read_bps_device", "" }, { "blkio.throttle.write_bps_device", "" },
        { "blkio.throttle.read_iops_device", "" }, { "blkio.throttle.write_iops_device", "" },
};

static int make_files(int dfd, const FakeFile *files, size_t n, const FakeOpts *o) {
        for (size_t i = 0; i < n; i++) {
                if (o && o->no_swap_file &&
                    (streq(files[i].name, "memory.swap.max") ||
                     streq(files[i].name, "memory.memsw.limit_in_bytes")))
                        continue;
                if (o && o->no_pids_file && streq(files[i].name, "pids.max"))
                        continue;
                if (o && o->no_io_weight && streq(files[i].name, "blkio.bfq.weight"))
                        continue;
                int r = mkfile_at(dfd, files[i].name, files[i].content);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int fake_after_mkdir(int dir_fd, const char *hierarchy, void *userdata) {
        FakeOpts *o = userdata;
        int r;

        if (o) {
                o->mkdirs++;
                if (o->fail_mkdir)
                        return -EIO;
        }
        if (!*hierarchy)
                return make_files(dir_fd, v2_files, ELEMENTSOF(v2_files), o);
        r = mkfile_at(dir_fd, "cgroup.procs", "");
        if (r >= 0 && strstr(hierarchy, "memory"))
                r = make_files(dir_fd, v1_memory_files, ELEMENTSOF(v1_memory_files), o);
        if (r >= 0 && strstr(hierarchy, "pids"))
                r = make_files(dir_fd, v1_pids_files, ELEMENTSOF(v1_pids_files), o);
        /* "cpu" is also a prefix of "cpuacct": test the comma-separated names exactly. */
        if (r >= 0 && (streq(hierarchy, "cpu") || strneq(hierarchy, "cpu,", 4)))
                r = make_files(dir_fd, v1_cpu_files, ELEMENTSOF(v1_cpu_files), o);
        if (r >= 0 && strstr(hierarchy, "cpuacct"))
                r = make_files(dir_fd, v1_cpuacct_files, ELEMENTSOF(v1_cpuacct_files), o);
        if (r >= 0 && strstr(hierarchy, "freezer"))
                r = make_files(dir_fd, v1_freezer_files, ELEMENTSOF(v1_freezer_files), o);
        if (r >= 0 && strstr(hierarchy, "cpuset"))
                r = make_files(dir_fd, v1_cpuset_files, ELEMENTSOF(v1_cpuset_files), o);
        if (r >= 0 && strstr(hierarchy, "blkio"))
                r = make_files(dir_fd, v1_blkio_files, ELEMENTSOF(v1_blkio_files), o);
        return r;
}

static int fake_before_rmdir(int dir_fd, const char *hierarchy, void *userdata) {
        FakeOpts *o = userdata;
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_type == DT_REG)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        if (o)
                o->rmdirs++;
        return 0;
}

static int fake_create(CgroupLayout layout, const char *tree, const char *name, const CgroupLimits *l,
                       FakeOpts *o, Cgroup **ret) {
        char root[512];
        CgroupTestHooks hooks = {
                .after_mkdir = fake_after_mkdir,
                .before_rmdir = fake_before_rmdir,
                .userdata = o,
        };
        snprintf(root, sizeof root, "%s/%s", tmp_root, tree);
        return cgroup_create_fake(layout, root, "/parent", name, l, &hooks, ret);
}

static int setup_fake_tree(void) {
        char p[512];
        static const char *const v2_dirs[] = { "v2", "v2/parent" };
        static const char *const v1_dirs[] = { "memory", "pids", "cpu", "cpuacct", "freezer" };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(v2_dirs); i++) {
                snprintf(p, sizeof p, "%s/%s", tmp_root, v2_dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return -errno;
        }
        if ((r = fake_write("v2/cgroup.controllers", "cpuset cpu io memory pids\n")) < 0 ||
            (r = fake_write("v2/cgroup.subtree_control", "cpu memory pids\n")) < 0 ||
            (r = fake_write("v2/parent/cgroup.controllers", "cpu memory pids\n")) < 0 ||
            (r = fake_write("v2/parent/cgroup.subtree_control", "memory pids cpu\n")) < 0)
                return r;

        snprintf(p, sizeof p, "%s/v1", tmp_root);
        if (mkdir(p, 0755) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(v1_dirs); i++) {
                snprintf(p, sizeof p, "%s/v1/%s", tmp_root, v1_dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return -errno;
                snprintf(p, sizeof p, "%s/v1/%s/parent", tmp_root, v1_dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return -errno;
        }

        /* v1x: a host with cpuset and blkio hierarchies; its parent's cpuset is CPUs 0-3 and node 0. */
        static const char *const v1x_dirs[] = { "v1x", "v1x/memory", "v1x/memory/parent", "v1x/cpuacct",
                                                "v1x/cpuacct/parent", "v1x/freezer", "v1x/freezer/parent",
                                                "v1x/cpuset", "v1x/cpuset/parent", "v1x/blkio", "v1x/blkio/parent" };
        for (size_t i = 0; i < ELEMENTSOF(v1x_dirs); i++) {
                snprintf(p, sizeof p, "%s/%s", tmp_root, v1x_dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return -errno;
        }
        if ((r = fake_write("v1x/cpuset/parent/cpuset.cpus", "0-3\n")) < 0 ||
            (r = fake_write("v1x/cpuset/parent/cpuset.mems", "0\n")) < 0)
                return r;

        static const char *const v1c_dirs[] = { "v1c", "v1c/memory", "v1c/memory/parent", "v1c/cpu,cpuacct",
                                                "v1c/cpu,cpuacct/parent" };
        for (size_t i = 0; i < ELEMENTSOF(v1c_dirs); i++) {
                snprintf(p, sizeof p, "%s/%s", tmp_root, v1c_dirs[i]);
                if (mkdir(p, 0755) < 0)
                        return -errno;
        }
        snprintf(p, sizeof p, "%s/v1c/cpu", tmp_root);
        if (symlink("cpu,cpuacct", p) < 0)
                return -errno;
        snprintf(p, sizeof p, "%s/v1c/cpuacct", tmp_root);
        if (symlink("cpu,cpuacct", p) < 0)
                return -errno;
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Fake tree: v2
 */

static int test_fake_invalid_names(void) {
        static const char *const bad[] = { "", ".", "..", "a/b", "/x" };
        Cgroup *c = NULL;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", bad[i], NULL, NULL, &c), -EINVAL);
                CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", bad[i], NULL, NULL, &c), -EINVAL);
        }
        CHECK(!c);
        /* A relative root is refused too. */
        CHECK_EQ(cgroup_create_fake(CGROUP_LAYOUT_V2, "tmp", "", "x", NULL, NULL, &c), -EINVAL);
        return 0;
}

static int test_fake_v2_limits(void) {
        CgroupLimits l = { .memory_max = 64 * MiB, .pids_max = 20,
                           .cpu_quota_us = 50000, .cpu_period_us = 100000 };
        FakeOpts o = {};
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "a", &l, &o, &c), 0);
        CHECK(c);
        CHECK_EQ(o.mkdirs, 1);
        CHECK_STREQ(fake_read("v2/parent/a/memory.max"), "67108864");
        CHECK_STREQ(fake_read("v2/parent/a/memory.swap.max"), "0");
        CHECK_STREQ(fake_read("v2/parent/a/pids.max"), "20");
        CHECK_STREQ(fake_read("v2/parent/a/cpu.max"), "50000 100000");
        /* Nothing outside our cgroup was written. */
        CHECK_STREQ(fake_read("v2/parent/cgroup.subtree_control"), "memory pids cpu\n");
        CHECK_EQ(cgroup_remove(c), 0);
        CHECK(!fake_exists("v2/parent/a"));
        CHECK_EQ(o.rmdirs, 1);
        CHECK_EQ(cgroup_remove(c), 0); /* idempotent */
        CHECK_EQ(cgroup_attach(c, getpid()), -ESTALE);
        cgroup_free(c);

        /* Period 0 means 100000; only the limits asked for are written. */
        CgroupLimits cpu_only = { .cpu_quota_us = 25000 };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "b", &cpu_only, NULL, &c), 0);
        CHECK_STREQ(fake_read("v2/parent/b/cpu.max"), "25000 100000");
        CHECK_STREQ(fake_read("v2/parent/b/memory.max"), "");
        CHECK_STREQ(fake_read("v2/parent/b/memory.swap.max"), "");
        CHECK_STREQ(fake_read("v2/parent/b/pids.max"), "");
        CHECK_EQ(cgroup_remove(c), 0);
        cgroup_free(c);
        CHECK(!fake_exists("v2/parent/b"));

        /* Without swap accounting there is no memory.swap.max: fine. */
        CgroupLimits mem = { .memory_max = 4096 };
        o = (FakeOpts) { .no_swap_file = true };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "c", &mem, &o, &c), 0);
        CHECK_STREQ(fake_read("v2/parent/c/memory.max"), "4096");
        CHECK(!fake_exists("v2/parent/c/memory.swap.max"));
        CHECK_EQ(cgroup_remove(c), 0);
        cgroup_free(c);
        return 0;
}

static int test_fake_v2_unsupported(void) {
        CgroupLimits pids = { .pids_max = 5 }, mem = { .memory_max = 1 * MiB };
        FakeOpts o = {};
        Cgroup *c = NULL;

        /* pids is not enabled for the parent's children: refused before mkdir. */
        CHECK_EQ(fake_write("v2/parent/cgroup.subtree_control", "memory\n"), 0);
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "u", &pids, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, 0);
        CHECK(!fake_exists("v2/parent/u"));
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "u", &mem, &o, &c), 0);
        CHECK_EQ(cgroup_remove(c), 0);
        cgroup_free(c);
        /* ... and cgroup_create_fake never enables a controller. */
        CHECK_STREQ(fake_read("v2/parent/cgroup.subtree_control"), "memory\n");
        CHECK_EQ(fake_write("v2/parent/cgroup.subtree_control", "memory pids cpu\n"), 0);

        /* Enabled, but the file is missing in the new cgroup: rolled back. */
        o = (FakeOpts) { .no_pids_file = true };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "u", &pids, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, 1);
        CHECK_EQ(o.rmdirs, 1);
        CHECK(!fake_exists("v2/parent/u"));

        /* A failing step right after mkdir: rolled back too. */
        o = (FakeOpts) { .fail_mkdir = true };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "u", NULL, &o, &c), -EIO);
        CHECK(!fake_exists("v2/parent/u"));
        return 0;
}

static int test_fake_v2_exists(void) {
        Cgroup *c = NULL;
        char p[512];

        snprintf(p, sizeof p, "%s/v2/parent/taken", tmp_root);
        CHECK_EQ(mkdir(p, 0755), 0);
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "taken", NULL, NULL, &c), -EEXIST);
        CHECK(!c);
        CHECK(fake_exists("v2/parent/taken")); /* not ours: left alone */
        CHECK_EQ(rmdir(p), 0);
        /* A parent that does not exist, or a symlinked one, is not followed. */
        CHECK_EQ(cgroup_create_fake(CGROUP_LAYOUT_V2, tmp_root, "v2/nope", "x", NULL, NULL, &c), -ENOENT);
        snprintf(p, sizeof p, "%s/v2/link", tmp_root);
        CHECK_EQ(symlink("parent", p), 0);
        CHECK_EQ(cgroup_create_fake(CGROUP_LAYOUT_V2, tmp_root, "v2/link", "x", NULL, NULL, &c), -ELOOP);
        CHECK_EQ(unlink(p), 0);
        return 0;
}

static int test_fake_v2_stats(void) {
        CgroupStats s = {};
        uint64_t u = 0;
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "s", NULL, NULL, &c), 0);
        CHECK_EQ(fake_write("v2/parent/s/cpu.stat", "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n"
                                                    "core_sched.force_idle_usec 0\n"), 0);
        CHECK_EQ(fake_write("v2/parent/s/memory.peak", "4096\n"), 0);
        CHECK_EQ(fake_write("v2/parent/s/memory.events",
                            "low 0\nhigh 0\nmax 3\noom 2\noom_group_kill 5\noom_kill 1\n"), 0);
        CHECK_EQ(fake_write("v2/parent/s/pids.events", "max 17\nmax.imposed 3\n"), 0);
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        CHECK_U64(s.cpu_usec, 1234);
        CHECK_U64(s.memory_peak, 4096);
        CHECK_U64(s.oom_kills, 1);
        CHECK_U64(s.pids_max_events, 17);
        CHECK_EQ(cgroup_get_cpu_usec(c, &u), 0);
        CHECK_U64(u, 1234);

        /* No memory controller: no memory.peak, no memory.events; 0, not an error. */
        CHECK_EQ(fake_write("v2/parent/s/cpu.stat", "usage_usec 7"), 0); /* no final newline: fine */
        char p[512];
        snprintf(p, sizeof p, "%s/v2/parent/s/memory.peak", tmp_root);
        CHECK_EQ(unlink(p), 0);
        snprintf(p, sizeof p, "%s/v2/parent/s/memory.events", tmp_root);
        CHECK_EQ(unlink(p), 0);
        snprintf(p, sizeof p, "%s/v2/parent/s/pids.events", tmp_root);
        CHECK_EQ(unlink(p), 0);
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        CHECK_U64(s.cpu_usec, 7);
        CHECK_U64(s.memory_peak, 0);
        CHECK_U64(s.oom_kills, 0);
        CHECK_U64(s.pids_max_events, 0);

        /* No cpu.stat at all: not accounted. */
        snprintf(p, sizeof p, "%s/v2/parent/s/cpu.stat", tmp_root);
        CHECK_EQ(unlink(p), 0);
        CHECK_EQ(cgroup_get_cpu_usec(c, &u), -EOPNOTSUPP);
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        CHECK_U64(s.cpu_usec, 0);

        CHECK_EQ(cgroup_remove(c), 0);
        cgroup_free(c);
        return 0;
}

/* Put CONTENT (N bytes) into T/REL and expect cgroup_get_stats() to fail with -EBADMSG without
 * touching its output. */
static int expect_malformed(Cgroup *c, const char *rel, const char *content, size_t n) {
        char path[512];
        CgroupStats s = { .cpu_usec = 42, .memory_peak = 42, .oom_kills = 42 };
        snprintf(path, sizeof path, "%s/%s", tmp_root, rel);
        CHECK_EQ(write_str_len(path, content, n), 0);
        int r = cgroup_get_stats(c, &s);
        if (r != -EBADMSG)
                printf("# %s = \"%.*s\"\n", rel, (int) n, content);
        CHECK_EQ(r, -EBADMSG);
        CHECK_U64(s.cpu_usec, 42);
        CHECK_U64(s.memory_peak, 42);
        CHECK_U64(s.oom_kills, 42);
        return 0;
}

#define MALFORMED(c, rel, lit) CHECK_EQ(expect_malformed(c, rel, lit, sizeof(lit) - 1), 0)

static int test_fake_v2_stats_malformed(void) {
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "m", NULL, NULL, &c), 0);
        track_cgroup(c);
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec abc\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec \n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec 12 34\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec -1\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec +1\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec 99999999999999999999999\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec 1\nusage_usec 2\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "user_usec 5\nsystem_usec 6\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "garbage\nusage_usec 5\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "usage_usec 5\0\n");
        MALFORMED(c, "v2/parent/m/cpu.stat", "");
        CHECK_EQ(fake_write("v2/parent/m/cpu.stat", "usage_usec 5\n"), 0);
        MALFORMED(c, "v2/parent/m/memory.peak", "");
        MALFORMED(c, "v2/parent/m/memory.peak", "\n");
        MALFORMED(c, "v2/parent/m/memory.peak", "12a\n");
        MALFORMED(c, "v2/parent/m/memory.peak", "max\n");
        MALFORMED(c, "v2/parent/m/memory.peak", "1\n\n");
        CHECK_EQ(fake_write("v2/parent/m/memory.peak", "1\n"), 0);
        MALFORMED(c, "v2/parent/m/memory.events", "oom_kill x\n");
        MALFORMED(c, "v2/parent/m/memory.events", "oom 1\n");
        MALFORMED(c, "v2/parent/m/memory.events", "oom_kills 1\n");
        CHECK_EQ(drop_cgroup(c), 0);
        return 0;
}

static int test_fake_v2_kill_fd(void) {
        Cgroup *c = NULL;
        struct stat st;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "k", NULL, NULL, &c), 0);
        track_cgroup(c);
        CHECK_EQ(cgroup_kill_all(c), 0);
        CHECK_STREQ(fake_read("v2/parent/k/cgroup.kill"), "1");
        int fd = cgroup_v2_fd(c);
        CHECK(fd >= 0);
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK(S_ISDIR(st.st_mode));
        CHECK_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        CHECK((fcntl(fd, F_GETFL) & O_PATH) == 0); /* clone3 refuses O_PATH fds */
        close(fd);
        /* Removal reads cgroup.events "populated 0". */
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK(!fake_exists("v2/parent/k"));
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Fake tree: v1
 */

static int test_fake_v1_limits(void) {
        CgroupLimits l = { .memory_max = 32 * MiB, .pids_max = 20,
                           .cpu_quota_us = 50000, .cpu_period_us = 100000 };
        FakeOpts o = {};
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "a", &l, &o, &c), 0);
        CHECK_EQ(o.mkdirs, 5);
        CHECK_STREQ(fake_read("v1/memory/parent/a/memory.limit_in_bytes"), "33554432");
        CHECK_STREQ(fake_read("v1/memory/parent/a/memory.memsw.limit_in_bytes"), "33554432");
        CHECK_STREQ(fake_read("v1/pids/parent/a/pids.max"), "20");
        CHECK_STREQ(fake_read("v1/cpu/parent/a/cpu.cfs_period_us"), "100000");
        CHECK_STREQ(fake_read("v1/cpu/parent/a/cpu.cfs_quota_us"), "50000");
        CHECK(fake_exists("v1/cpuacct/parent/a"));
        CHECK(fake_exists("v1/freezer/parent/a"));
        CHECK_EQ(cgroup_v2_fd(c), -EOPNOTSUPP);
        /* A fork refused at the pids limit is counted in the pids hierarchy. */
        CgroupStats st;
        CHECK_EQ(cgroup_get_stats(c, &st), 0);
        CHECK_U64(st.pids_max_events, 0);
        CHECK_EQ(fake_write("v1/pids/parent/a/pids.events", "max 4\n"), 0);
        CHECK_EQ(cgroup_get_stats(c, &st), 0);
        CHECK_U64(st.pids_max_events, 4);
        CHECK_EQ(cgroup_remove(c), 0);
        CHECK_EQ(o.rmdirs, 5);
        cgroup_free(c);
        static const char *const gone[] = { "v1/memory/parent/a", "v1/pids/parent/a", "v1/cpu/parent/a",
                                            "v1/cpuacct/parent/a", "v1/freezer/parent/a" };
        for (size_t i = 0; i < ELEMENTSOF(gone); i++)
                CHECK(!fake_exists(gone[i]));

        /* No limits: memory, cpuacct (stats) and freezer (kill) only; pids and cpu not created. */
        o = (FakeOpts) {};
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "b", NULL, &o, &c), 0);
        CHECK_EQ(o.mkdirs, 3);
        CHECK(fake_exists("v1/memory/parent/b"));
        CHECK(!fake_exists("v1/pids/parent/b"));
        CHECK(!fake_exists("v1/cpu/parent/b"));
        CHECK_STREQ(fake_read("v1/memory/parent/b/memory.limit_in_bytes"), "");
        CHECK_EQ(cgroup_remove(c), 0);
        cgroup_free(c);

        /* Without swap accounting: no memsw file, fine. */
        CgroupLimits mem = { .memory_max = 8192 };
        o = (FakeOpts) { .no_swap_file = true };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "c", &mem, &o, &c), 0);
        CHECK_STREQ(fake_read("v1/memory/parent/c/memory.limit_in_bytes"), "8192");
        CHECK_EQ(cgroup_remove(c), 0);
        cgroup_free(c);

        /* pids.max missing in the new cgroup: everything created so far is rolled back. */
        o = (FakeOpts) { .no_pids_file = true };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "d", &l, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, 5);
        CHECK_EQ(o.rmdirs, 5);
        for (size_t i = 0; i < ELEMENTSOF(gone); i++) {
                char rel[128];
                snprintf(rel, sizeof rel, "%.*sd", (int) strlen(gone[i]) - 1, gone[i]);
                CHECK(!fake_exists(rel));
        }
        return 0;
}

static int test_fake_v1_comount(void) {
        CgroupLimits cpu = { .cpu_quota_us = 20000, .cpu_period_us = 50000 };
        CgroupLimits pids = { .pids_max = 3 };
        CgroupStats s;
        FakeOpts o = {};
        Cgroup *c = NULL;

        /* cpu and cpuacct share one directory, "cpu,cpuacct"; no freezer, no pids here. */
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1c", "a", &cpu, &o, &c), 0);
        track_cgroup(c);
        CHECK_EQ(o.mkdirs, 2);
        CHECK_STREQ(fake_read("v1c/cpu,cpuacct/parent/a/cpu.cfs_period_us"), "50000");
        CHECK_STREQ(fake_read("v1c/cpu,cpuacct/parent/a/cpu.cfs_quota_us"), "20000");
        CHECK_EQ(fake_write("v1c/cpu,cpuacct/parent/a/cpuacct.usage", "5000000\n"), 0);
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        CHECK_U64(s.cpu_usec, 5000);
        /* The symlinks themselves are untouched. */
        struct stat st;
        char p[512];
        snprintf(p, sizeof p, "%s/v1c/cpu", tmp_root);
        CHECK_EQ(lstat(p, &st), 0);
        CHECK(S_ISLNK(st.st_mode));
        /* Without a freezer, kill_all walks cgroup.procs (empty here). */
        CHECK_EQ(cgroup_kill_all(c), 0);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(o.rmdirs, 2);
        CHECK(!fake_exists("v1c/cpu,cpuacct/parent/a"));
        CHECK(!fake_exists("v1c/memory/parent/a"));

        /* A limit whose hierarchy is missing: -EOPNOTSUPP, nothing left anywhere. */
        o = (FakeOpts) {};
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1c", "b", &pids, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, o.rmdirs);
        CHECK(!fake_exists("v1c/cpu,cpuacct/parent/b"));
        CHECK(!fake_exists("v1c/memory/parent/b"));

        /* A hierarchy symlink that leaves the root is refused. */
        snprintf(p, sizeof p, "%s/v1c/cpuacct", tmp_root);
        CHECK_EQ(unlink(p), 0);
        CHECK_EQ(symlink("../v1/cpuacct", p), 0);
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1c", "c", NULL, NULL, &c), -ELOOP);
        CHECK(!fake_exists("v1c/memory/parent/c"));
        CHECK(!fake_exists("v1/cpuacct/parent/c"));
        CHECK_EQ(unlink(p), 0);
        CHECK_EQ(symlink("cpu,cpuacct", p), 0);
        return 0;
}

static int test_fake_v1_stats(void) {
        CgroupStats s = {};
        uint64_t u;
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "s", NULL, NULL, &c), 0);
        track_cgroup(c);
        CHECK_EQ(fake_write("v1/cpuacct/parent/s/cpuacct.usage", "123456789\n"), 0);
        CHECK_EQ(fake_write("v1/memory/parent/s/memory.max_usage_in_bytes", "8192\n"), 0);
        CHECK_EQ(fake_write("v1/memory/parent/s/memory.oom_control",
                            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0);
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        CHECK_U64(s.cpu_usec, 123456); /* ns → us */
        CHECK_U64(s.memory_peak, 8192);
        CHECK_U64(s.oom_kills, 2);
        CHECK_EQ(cgroup_get_cpu_usec(c, &u), 0);
        CHECK_U64(u, 123456);

        MALFORMED(c, "v1/cpuacct/parent/s/cpuacct.usage", "12 34\n");
        MALFORMED(c, "v1/cpuacct/parent/s/cpuacct.usage", "");
        MALFORMED(c, "v1/cpuacct/parent/s/cpuacct.usage", "-5\n");
        CHECK_EQ(fake_write("v1/cpuacct/parent/s/cpuacct.usage", "999\n"), 0);
        MALFORMED(c, "v1/memory/parent/s/memory.max_usage_in_bytes", "x\n");
        CHECK_EQ(fake_write("v1/memory/parent/s/memory.max_usage_in_bytes", "0\n"), 0);
        MALFORMED(c, "v1/memory/parent/s/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
        MALFORMED(c, "v1/memory/parent/s/memory.oom_control", "oom_kill_disable 0\noom_kill\n");
        CHECK_EQ(fake_write("v1/memory/parent/s/memory.oom_control", "oom_kill 0\n"), 0);
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        CHECK_U64(s.cpu_usec, 0); /* 999 ns */
        CHECK_EQ(drop_cgroup(c), 0);
        return 0;
}

/* A child that only pauses (ended by the test or, at the latest, by its alarm). */
static pid_t spawn_paused(void) {
        pid_t pid = fork();
        if (pid == 0) {
                signal(SIGALRM, SIG_DFL);
                alarm(20);
                for (;;)
                        pause();
        }
        if (pid > 0)
                track_kid(pid);
        return pid;
}

static int test_fake_v1_attach_kill(void) {
        static const char *const procs[] = { "v1/memory/parent/k/cgroup.procs",
                                             "v1/cpuacct/parent/k/cgroup.procs",
                                             "v1/freezer/parent/k/cgroup.procs" };
        Cgroup *c = NULL;
        char want[32], line[32];
        int status;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "k", NULL, NULL, &c), 0);
        track_cgroup(c);
        pid_t pid = spawn_paused();
        CHECK(pid > 0);
        CHECK_EQ(cgroup_attach(c, pid), 0);
        CHECK_EQ(cgroup_attach(c, 0), -EINVAL);
        snprintf(want, sizeof want, "%ld", (long) pid);
        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                CHECK_STREQ(fake_read(procs[i]), want);

        /* What the kernel would list: kill_all freezes, kills each listed pid, thaws. */
        snprintf(line, sizeof line, "%ld\n", (long) pid);
        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                CHECK_EQ(fake_write(procs[i], line), 0);
        CHECK_EQ(cgroup_kill_all(c), 0);
        CHECK_EQ(reap_kid(pid, &status), 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CHECK_STREQ(fake_read("v1/freezer/parent/k/freezer.state"), "THAWED\n");

        /* The kid is reaped: its pid must leave the fake lists before anything reads them again, or
         * a later kill would hit whoever gets that pid next. */
        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                CHECK_EQ(fake_write(procs[i], ""), 0);
        /* A garbage cgroup.procs is an error, not a kill of something random. */
        CHECK_EQ(fake_write(procs[2], "12x\n"), 0);
        CHECK_EQ(cgroup_kill_all(c), -EBADMSG);
        CHECK_EQ(fake_write(procs[2], ""), 0);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK(!fake_exists("v1/freezer/parent/k"));
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Fake tree: the split layout (the sandbox's limits, a "program" and a "union" child)
 */

static const CgroupLimits split_limits = {
        .memory_max = 64 * MiB, .pids_max = 84, .cpu_quota_us = 50000, .split = true,
        .program_pids_max = 20, .union_pids_max = 64, .union_cpu_weight = 10000,
};

static int test_fake_v2_split(void) {
        FakeOpts o = {};
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "s", &split_limits, &o, &c), 0);
        track_cgroup(c);
        CHECK_EQ(o.mkdirs, 3);
        CHECK_STREQ(fake_read("v2/parent/s/memory.max"), "67108864");
        CHECK_STREQ(fake_read("v2/parent/s/pids.max"), "84");
        CHECK_STREQ(fake_read("v2/parent/s/cpu.max"), "50000 100000");
        /* pids and cpu enabled for the children in the sandbox's own cgroup, which has no member */
        CHECK_STREQ(fake_read("v2/parent/s/cgroup.subtree_control"), "+pids +cpu");
        CHECK_STREQ(fake_read("v2/parent/s/program/pids.max"), "20");
        CHECK_STREQ(fake_read("v2/parent/s/program/cpu.weight"), "");
        CHECK_STREQ(fake_read("v2/parent/s/program/memory.max"), "");
        CHECK_STREQ(fake_read("v2/parent/s/union/pids.max"), "64");
        CHECK_STREQ(fake_read("v2/parent/s/union/cpu.weight"), "10000");
        /* Members go into the children only. */
        CHECK_EQ(cgroup_attach(c, getpid()), -EISDIR);
        CHECK_EQ(cgroup_v2_fd(c), -EISDIR);
        int fd = cgroup_child_v2_fd(c, CGROUP_CHILD_PROGRAM);
        CHECK(fd >= 0);
        struct stat a, b;
        char p[512];
        snprintf(p, sizeof p, "%s/v2/parent/s/program", tmp_root);
        CHECK_EQ(fstat(fd, &a), 0);
        CHECK_EQ(stat(p, &b), 0);
        CHECK(a.st_ino == b.st_ino);
        close(fd);
        /* Killing the program writes its cgroup.kill only. */
        CHECK_EQ(cgroup_child_kill(c, CGROUP_CHILD_PROGRAM), 0);
        CHECK_STREQ(fake_read("v2/parent/s/program/cgroup.kill"), "1");
        CHECK_STREQ(fake_read("v2/parent/s/union/cgroup.kill"), "");
        CHECK_STREQ(fake_read("v2/parent/s/cgroup.kill"), "");
        CHECK_EQ(cgroup_child_kill(c, _CGROUP_CHILD_MAX), -ENOENT);
        /* Removal: the children first. */
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(o.rmdirs, 3);
        CHECK(!fake_exists("v2/parent/s"));

        /* The program's pids bound is required, the server's are not. */
        CHECK_EQ(fake_write("v2/parent/cgroup.controllers", "memory\n"), 0);
        o = (FakeOpts) {};
        CgroupLimits only_union = { .split = true, .union_pids_max = 64, .union_cpu_weight = 100 };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "t", &only_union, &o, &c), 0);
        track_cgroup(c);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(fake_write("v2/parent/cgroup.controllers", "cpu memory pids\n"), 0);
        return 0;
}

/* cgroup_update_limits(): new bounds of a live sandbox, where its first ones were written (v1 and v2); a field 0
 * stays; a controller the sandbox has no cgroup of is -EOPNOTSUPP. */
static int test_fake_update(void) {
        const CgroupLimits u = { .memory_max = 128 * MiB, .pids_max = 114, .program_pids_max = 50,
                                 .cpu_quota_us = 20000, .cpu_period_us = 100000 };
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "u", &split_limits, NULL, &c), 0);
        track_cgroup(c);
        CHECK_EQ(cgroup_update_limits(c, &u), 0);
        CHECK_STREQ(fake_read("v2/parent/u/memory.max"), "134217728");
        CHECK_STREQ(fake_read("v2/parent/u/pids.max"), "114");
        CHECK_STREQ(fake_read("v2/parent/u/program/pids.max"), "50");
        CHECK_STREQ(fake_read("v2/parent/u/cpu.max"), "20000 100000");
        CHECK_EQ(cgroup_update_limits(c, &(CgroupLimits) { .pids_max = 115 }), 0); /* same length: the fake files are not truncated */
        CHECK_STREQ(fake_read("v2/parent/u/pids.max"), "115");
        CHECK_STREQ(fake_read("v2/parent/u/memory.max"), "134217728");
        CHECK_EQ(drop_cgroup(c), 0);

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "u", &split_limits, NULL, &c), 0);
        track_cgroup(c);
        CHECK_EQ(cgroup_update_limits(c, &u), 0);
        CHECK_STREQ(fake_read("v1/memory/parent/u/memory.limit_in_bytes"), "134217728");
        CHECK_STREQ(fake_read("v1/memory/parent/u/memory.memsw.limit_in_bytes"), "134217728");
        CHECK_STREQ(fake_read("v1/pids/parent/u/pids.max"), "114");
        CHECK_STREQ(fake_read("v1/pids/parent/u/program/pids.max"), "50");
        CHECK_STREQ(fake_read("v1/cpu/parent/u/cpu.cfs_quota_us"), "20000");
        CHECK_STREQ(fake_read("v1/cpu/parent/u/cpu.cfs_period_us"), "100000");
        CHECK_EQ(drop_cgroup(c), 0);

        /* made without a CPU bound: no cpu cgroup of its own on v1 */
        CgroupLimits no_cpu = split_limits;
        no_cpu.cpu_quota_us = 0;
        no_cpu.union_cpu_weight = 0;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "n", &no_cpu, NULL, &c), 0);
        track_cgroup(c);
        CHECK_EQ(cgroup_update_limits(c, &(CgroupLimits) { .cpu_quota_us = 1000 }), -EOPNOTSUPP);
        CHECK_EQ(drop_cgroup(c), 0);
        return 0;
}

static int test_fake_v1_split(void) {
        FakeOpts o = {};
        Cgroup *c = NULL;

        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "s", &split_limits, &o, &c), 0);
        track_cgroup(c);
        /* 5 hierarchies for the sandbox, 5 for the program, 4 for the server (no freezer). */
        CHECK_EQ(o.mkdirs, 14);
        CHECK_STREQ(fake_read("v1/memory/parent/s/memory.limit_in_bytes"), "67108864");
        CHECK_STREQ(fake_read("v1/memory/parent/s/program/memory.limit_in_bytes"), "");
        CHECK_STREQ(fake_read("v1/pids/parent/s/pids.max"), "84");
        CHECK_STREQ(fake_read("v1/pids/parent/s/program/pids.max"), "20");
        CHECK_STREQ(fake_read("v1/pids/parent/s/union/pids.max"), "64");
        CHECK_STREQ(fake_read("v1/cpu/parent/s/cpu.cfs_quota_us"), "50000");
        CHECK_STREQ(fake_read("v1/cpu/parent/s/union/cpu.shares"), "102400");
        CHECK_STREQ(fake_read("v1/cpu/parent/s/program/cpu.shares"), "");
        CHECK(fake_exists("v1/freezer/parent/s/program"));
        CHECK(!fake_exists("v1/freezer/parent/s/union"));
        CHECK(fake_exists("v1/cpuacct/parent/s/union"));

        /* Attach a kid to the program: its pid is in the program's directories, not the server's. */
        pid_t pid = spawn_paused();
        CHECK(pid > 0);
        CHECK_EQ(cgroup_attach(c, pid), -EISDIR);
        CHECK_EQ(cgroup_child_attach(c, CGROUP_CHILD_PROGRAM, pid), 0);
        char want[32], line[32];
        snprintf(want, sizeof want, "%ld", (long) pid);
        CHECK_STREQ(fake_read("v1/freezer/parent/s/program/cgroup.procs"), want);
        CHECK_STREQ(fake_read("v1/memory/parent/s/union/cgroup.procs"), "");
        /* Killing the program freezes, kills and thaws the program's freezer cgroup. */
        static const char *const procs[] = { "v1/freezer/parent/s/program/cgroup.procs",
                                             "v1/memory/parent/s/program/cgroup.procs",
                                             "v1/cpuacct/parent/s/program/cgroup.procs",
                                             "v1/pids/parent/s/program/cgroup.procs",
                                             "v1/cpu/parent/s/program/cgroup.procs" };
        snprintf(line, sizeof line, "%ld\n", (long) pid);
        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                CHECK_EQ(fake_write(procs[i], line), 0);
        CHECK_EQ(cgroup_child_kill(c, CGROUP_CHILD_PROGRAM), 0);
        int status;
        CHECK_EQ(reap_kid(pid, &status), 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CHECK_STREQ(fake_read("v1/freezer/parent/s/program/freezer.state"), "THAWED\n");
        CHECK_STREQ(fake_read("v1/freezer/parent/s/freezer.state"), "THAWED\n");
        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                CHECK_EQ(fake_write(procs[i], ""), 0);

        /* OOM kills: v1 counts them in the victim's cgroup only; the sandbox's sum covers both. */
        CHECK_EQ(fake_write("v1/memory/parent/s/program/memory.oom_control", "oom_kill 2\n"), 0);
        CHECK_EQ(fake_write("v1/memory/parent/s/union/memory.oom_control", "oom_kill 1\n"), 0);
        CgroupStats st;
        CHECK_EQ(cgroup_get_stats(c, &st), 0);
        CHECK_U64(st.oom_kills, 3);

        /* Removed whole, the children first. */
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(o.rmdirs, 14);
        CHECK(!fake_exists("v1/memory/parent/s"));
        CHECK(!fake_exists("v1/freezer/parent/s"));
        return 0;
}

/* cpuset and io, only when asked: the sandbox's own cpuset (v1: the children's copied from it, a bound not asked
 * copied from the parent), blkio.bfq.weight where blkio.weight is gone, one throttle line per device. */
static const CgroupCpusetIo cpuset_io = {
        .cpus = "1-2", .io_weight = 500, .n_devices = 2,
        .devices = { { .major = 8, .minor = 0, .rbps = 1048576, .wiops = 100 }, { .major = 253, .minor = 1, .wbps = 4096 } },
};

static int test_fake_v1_cpuset_io(void) {
        CgroupLimits l = split_limits;
        FakeOpts o = {};
        Cgroup *c = NULL;

        l.pids_max = l.program_pids_max = l.union_pids_max = 0; /* v1x has no pids or cpu hierarchy */
        l.cpu_quota_us = 0;
        l.union_cpu_weight = 0;
        /* Not asked: no cpuset or blkio cgroup at all, as before. */
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1x", "n", &l, &o, &c), 0);
        CHECK(!fake_exists("v1x/cpuset/parent/n"));
        CHECK(!fake_exists("v1x/blkio/parent/n"));
        CHECK_EQ(drop_cgroup(c), 0);

        l.cpuset_io = &cpuset_io;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1x", "s", &l, &o, &c), 0);
        track_cgroup(c);
        CHECK_STREQ(fake_read("v1x/cpuset/parent/s/cpuset.cpus"), "1-2");
        CHECK_STREQ(fake_read("v1x/cpuset/parent/s/cpuset.mems"), "0");
        CHECK_STREQ(fake_read("v1x/cpuset/parent/s/program/cpuset.cpus"), "1-2");
        CHECK_STREQ(fake_read("v1x/cpuset/parent/s/program/cpuset.mems"), "0");
        CHECK_STREQ(fake_read("v1x/cpuset/parent/s/union/cpuset.cpus"), "1-2");
        CHECK_STREQ(fake_read("v1x/blkio/parent/s/blkio.bfq.weight"), "500");
        CHECK_STREQ(fake_read("v1x/blkio/parent/s/blkio.throttle.read_bps_device"), "8:0 1048576");
        CHECK_STREQ(fake_read("v1x/blkio/parent/s/blkio.throttle.write_iops_device"), "8:0 100");
        CHECK_STREQ(fake_read("v1x/blkio/parent/s/blkio.throttle.write_bps_device"), "253:1 4096");
        CHECK_STREQ(fake_read("v1x/blkio/parent/s/blkio.throttle.read_iops_device"), "");
        CHECK_STREQ(fake_read("v1x/blkio/parent/s/program/blkio.bfq.weight"), "");
        CHECK(fake_exists("v1x/blkio/parent/s/union"));
        CHECK_STREQ(fake_read("v1x/cpuset/parent/cpuset.cpus"), "0-3\n"); /* the parent's is untouched */
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK(!fake_exists("v1x/cpuset/parent/s"));
        CHECK(!fake_exists("v1x/blkio/parent/s"));

        /* Only the memory nodes asked: the CPUs are the parent's. */
        CgroupCpusetIo mems = { .mems = "0" };
        l.cpuset_io = &mems;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1x", "m", &l, &o, &c), 0);
        CHECK_STREQ(fake_read("v1x/cpuset/parent/m/cpuset.cpus"), "0-3");
        CHECK_STREQ(fake_read("v1x/cpuset/parent/m/program/cpuset.cpus"), "0-3");
        CHECK(!fake_exists("v1x/blkio/parent/m"));
        CHECK_EQ(drop_cgroup(c), 0);

        /* A weight without any weight file: refused, nothing left. */
        CgroupCpusetIo weight = { .io_weight = 100 };
        l.cpuset_io = &weight;
        o = (FakeOpts) { .no_io_weight = true };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1x", "w", &l, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, o.rmdirs);
        CHECK(!fake_exists("v1x/blkio/parent/w"));
        CHECK(!fake_exists("v1x/memory/parent/w"));

        /* A list that is not one, a weight out of range: -EINVAL before anything is made. */
        CgroupCpusetIo bad = { .cpus = "0\n1" };
        l.cpuset_io = &bad;
        o = (FakeOpts) {};
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1x", "b", &l, &o, &c), -EINVAL);
        bad = (CgroupCpusetIo) { .io_weight = 5 };
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1x", "b", &l, &o, &c), -EINVAL);
        CHECK_EQ(o.mkdirs, 0);

        /* No cpuset or blkio hierarchy on the host: refused, nothing left. */
        l.cpuset_io = &cpuset_io;
        o = (FakeOpts) {};
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V1, "v1", "x", &l, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, o.rmdirs);
        CHECK(!fake_exists("v1/memory/parent/x"));
        return 0;
}

static int test_fake_v2_cpuset_io(void) {
        CgroupLimits l = split_limits;
        FakeOpts o = {};
        Cgroup *c = NULL;

        /* Not enabled for the parent's children (and the fake never enables): refused before mkdir. */
        l.cpuset_io = &cpuset_io;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "x", &l, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, 0);
        CHECK(!fake_exists("v2/parent/x"));
        /* io enabled, cpuset not: CPUs alone are refused too. */
        static const CgroupCpusetIo cpus_only = { .cpus = "0" };
        CHECK_EQ(fake_write("v2/parent/cgroup.subtree_control", "memory pids cpu io\n"), 0);
        l.cpuset_io = &cpus_only;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "x", &l, &o, &c), -EOPNOTSUPP);
        CHECK_EQ(o.mkdirs, 0);

        CHECK_EQ(fake_write("v2/parent/cgroup.subtree_control", "memory pids cpu cpuset io\n"), 0);
        /* Not asked: nothing of cpuset or io written, as before. */
        l.cpuset_io = NULL;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "n", &l, &o, &c), 0);
        CHECK_STREQ(fake_read("v2/parent/n/cpuset.cpus"), "");
        CHECK_STREQ(fake_read("v2/parent/n/io.weight"), "");
        CHECK_EQ(drop_cgroup(c), 0);

        CgroupCpusetIo one = cpuset_io;
        one.n_devices = 1;
        snprintf(one.mems, sizeof one.mems, "0");
        l.cpuset_io = &one;
        CHECK_EQ(fake_create(CGROUP_LAYOUT_V2, "v2", "s", &l, &o, &c), 0);
        track_cgroup(c);
        CHECK_STREQ(fake_read("v2/parent/s/cpuset.cpus"), "1-2");
        CHECK_STREQ(fake_read("v2/parent/s/cpuset.mems"), "0");
        CHECK_STREQ(fake_read("v2/parent/s/io.weight"), "500");
        CHECK_STREQ(fake_read("v2/parent/s/io.max"), "8:0 rbps=1048576 wiops=100");
        /* The children inherit (v2 cpusets and io bounds are hierarchical): nothing written, nothing enabled. */
        CHECK_STREQ(fake_read("v2/parent/s/program/cpuset.cpus"), "");
        CHECK_STREQ(fake_read("v2/parent/s/union/io.max"), "");
        CHECK(!strstr(fake_read("v2/parent/s/cgroup.subtree_control"), "cpuset"));
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(fake_write("v2/parent/cgroup.subtree_control", "memory pids cpu\n"), 0);
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Real cgroups: helpers
 */

static bool is_fs(const char *path, long magic) {
        struct statfs sfs;
        return statfs(path, &sfs) >= 0 && (long) sfs.f_type == magic;
}

static void make_name(char *buf, size_t size, const char *what) {
        snprintf(buf, size, "%s-%s", run_id, what);
}

/* The path of cgroup NAME in v1 hierarchy CONTROLLER below our own cgroup there. */
static int v1_path(const char *controller, const char *name, char *buf, size_t size) {
        _cleanup_free_ char *own = NULL;
        int r = cgroup_get_own_path(controller, &own);
        if (r < 0)
                return r;
        snprintf(buf, size, "/sys/fs/cgroup/%s%s/%s", controller, streq(own, "/") ? "" : own, name);
        return 0;
}

/* How many of the v1 directories of NAME exist (memory, pids, cpu, cpuacct, freezer). Asserting
 * removal is CHECK_EQ(v1_dirs_present(name), 0). */
static int v1_dirs_present(const char *name) {
        static const char *const ctls[] = { "memory", "pids", "cpu", "cpuacct", "freezer" };
        int n = 0;
        for (size_t i = 0; i < ELEMENTSOF(ctls); i++) {
                char p[512];
                struct stat st;
                if (v1_path(ctls[i], name, p, sizeof p) < 0)
                        continue;
                if (stat(p, &st) >= 0)
                        n++;
        }
        return n;
}

/* The line of /proc/PID/cgroup that starts with PREFIX ("4:memory:" or "0::"), rest returned. */
static int proc_cgroup_of(pid_t pid, const char *controller, char *buf, size_t size) {
        char path[64], text[2048];
        snprintf(path, sizeof path, "/proc/%ld/cgroup", (long) pid);
        int r = read_str(path, text, sizeof text);
        if (r < 0)
                return r;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                bool match = controller ? (strstr(c1 + 1, controller) != NULL) : streq(line, "0:");
                if (match) {
                        snprintf(buf, size, "%s", c2 + 1);
                        return 0;
                }
        }
        return -ENOENT;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

typedef enum KidKind {
        KID_PAUSE,
        KID_SPIN,
        KID_HOG,  /* touches 200 MiB */
        KID_BOMB, /* forks until EAGAIN, reports that once per process on the report fd */
        KID_FORKER, /* forks (a child that exits) every 20 ms, reports 'y' or 'n' on the report fd */
} KidKind;

static void kid_main(KidKind kind, int go_fd, int report_fd) {
        char b;
        signal(SIGALRM, SIG_DFL); /* not the parent's clean-up handler */
        /* Wait to be attached. */
        while (read(go_fd, &b, 1) < 0 && errno == EINTR)
                ;
        close(go_fd);
        alarm(20); /* whatever happens to the parent, the kids end */
        switch (kind) {
        case KID_PAUSE:
                for (;;)
                        pause();
        case KID_SPIN:
                for (volatile unsigned long i = 0;; i++)
                        ;
        case KID_HOG: {
                size_t size = 200 * MiB;
                char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED)
                        _exit(2);
                for (size_t i = 0; i < size; i += 4096)
                        p[i] = 1;
                _exit(0); /* survived: the limit did not hold */
        }
        case KID_FORKER:
                for (;;) {
                        pid_t pid = fork();
                        if (pid == 0)
                                _exit(0);
                        (void) !write(report_fd, pid > 0 ? "y" : "n", 1);
                        if (pid > 0)
                                (void) waitpid(pid, NULL, 0);
                        struct timespec ts = { 0, 20000000 };
                        nanosleep(&ts, NULL);
                }
        case KID_BOMB: {
                bool reported = false;
                for (;;) {
                        pid_t pid = fork();
                        if (pid == 0) {
                                alarm(20);
                                reported = false;
                                continue;
                        }
                        if (pid < 0 && errno == EAGAIN && !reported) {
                                (void) write(report_fd, "x", 1);
                                reported = true;
                        }
                        if (pid < 0) {
                                struct timespec ts = { 0, 1000000 };
                                nanosleep(&ts, NULL);
                        }
                }
        }
        }
        _exit(3);
}

typedef struct Kid {
        pid_t pid;
        int go_fd;
} Kid;

/* Fork a kid that waits until kid_go(). REPORT_FD: the write end for KID_BOMB's reports. */
static int kid_spawn(KidKind kind, int report_fd, Kid *ret) {
        int go[2];
        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(go[0]);
                close(go[1]);
                return r;
        }
        if (pid == 0) {
                close(go[1]);
                kid_main(kind, go[0], report_fd);
        }
        close(go[0]);
        track_kid(pid);
        *ret = (Kid) { .pid = pid, .go_fd = go[1] };
        return 0;
}

static int kid_go(Kid *k) {
        ssize_t n = write(k->go_fd, "g", 1);
        k->go_fd = safe_close(k->go_fd);
        return n == 1 ? 0 : -EIO;
}

static int kid_killed(Kid *k) {
        int status;
        k->go_fd = safe_close(k->go_fd);
        int r = reap_kid(k->pid, &status);
        if (r < 0)
                return r;
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
                printf("# kid %ld: status 0x%x, not SIGKILL\n", (long) k->pid, status);
                return -1;
        }
        return 0;
}

static void msleep(unsigned ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Read C's stats into S1 until its spinning member has used 50 ms of CPU more than S0 says, or 10 s
 * have passed: on a loaded machine a spinner may get far less than its wall time. */
static int wait_cpu(Cgroup *c, const CgroupStats *s0, CgroupStats *s1) {
        for (unsigned i = 0; i < 200; i++) {
                msleep(50);
                int r = cgroup_get_stats(c, s1);
                if (r < 0)
                        return r;
                if (s1->cpu_usec >= s0->cpu_usec + 50000)
                        break;
        }
        return 0;
}

static const char *v1_skip_reason(void) {
        CgroupLayout layout;
        if (geteuid() != 0)
                return "needs root";
        if (cgroup_detect_layout(&layout) < 0 || layout != CGROUP_LAYOUT_V1)
                return "host is not cgroup v1/hybrid";
        if (!is_fs("/sys/fs/cgroup/memory", CGROUP_SUPER_MAGIC))
                return "no v1 memory hierarchy";
        return NULL;
}

/* Every real case: the body, then the clean-up whatever happened. */
#define REAL_TEST(name, skip_fn)                                                \
        static int do_##name(void);                                             \
        static int test_##name(void) {                                          \
                const char *why = skip_fn();                                    \
                if (why)                                                        \
                        return tap_skip(why);                                   \
                int _r = do_##name();                                           \
                cleanup_all();                                                  \
                return _r;                                                      \
        }                                                                       \
        static int do_##name(void)

/* ------------------------------------------------------------------------------------------------
 * Real v1
 */

REAL_TEST(v1_attach_cpu, v1_skip_reason) {
        char name[128], where[512];
        CgroupStats s0, s1;
        Cgroup *c = NULL;
        Kid k;

        make_name(name, sizeof name, "cpu");
        CHECK_EQ(cgroup_create(name, NULL, &c), 0);
        track_cgroup(c);
        CHECK_EQ(v1_dirs_present(name), 3); /* memory, cpuacct, freezer */
        CHECK_EQ(cgroup_create(name, NULL, &(Cgroup *) { NULL }), -EEXIST);
        CHECK_EQ(v1_dirs_present(name), 3); /* the failed create did not remove the first one's */
        CHECK_EQ(cgroup_v2_fd(c), -EOPNOTSUPP);

        CHECK_EQ(kid_spawn(KID_SPIN, -1, &k), 0);
        CHECK_EQ(cgroup_attach(c, k.pid), 0);
        CHECK_EQ(proc_cgroup_of(k.pid, "memory", where, sizeof where), 0);
        CHECK(ends_with(where, name));
        CHECK_EQ(proc_cgroup_of(k.pid, "freezer", where, sizeof where), 0);
        CHECK(ends_with(where, name));
        CHECK_EQ(cgroup_get_stats(c, &s0), 0);
        CHECK_EQ(kid_go(&k), 0);
        CHECK_EQ(wait_cpu(c, &s0, &s1), 0);
        printf("# cpu_usec %llu -> %llu\n", (unsigned long long) s0.cpu_usec,
               (unsigned long long) s1.cpu_usec);
        CHECK(s1.cpu_usec >= s0.cpu_usec + 50000);
        /* No memory_peak check: v1 does not move a task's charges with it, and a spinner charges
         * nothing new (v1_oom checks the peak). */
        CHECK_U64(s1.oom_kills, 0);

        CHECK_EQ(cgroup_kill_all(c), 0);
        CHECK_EQ(kid_killed(&k), 0);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(v1_dirs_present(name), 0);
        return 0;
}

REAL_TEST(v1_oom, v1_skip_reason) {
        CgroupLimits l = { .memory_max = 32 * MiB };
        char name[128], p[512];
        CgroupStats s;
        Cgroup *c = NULL;
        Kid k;

        make_name(name, sizeof name, "oom");
        CHECK_EQ(cgroup_create(name, &l, &c), 0);
        track_cgroup(c);
        CHECK_EQ(v1_path("memory", name, p, sizeof p), 0);
        strcat(p, "/memory.memsw.limit_in_bytes");
        char buf[64];
        if (read_str(p, buf, sizeof buf) >= 0)
                CHECK_STREQ(buf, "33554432\n");

        CHECK_EQ(kid_spawn(KID_HOG, -1, &k), 0);
        CHECK_EQ(cgroup_attach(c, k.pid), 0);
        CHECK_EQ(kid_go(&k), 0);
        CHECK_EQ(kid_killed(&k), 0); /* the OOM killer's SIGKILL */
        CHECK_EQ(cgroup_get_stats(c, &s), 0);
        printf("# oom_kills %llu, memory_peak %llu\n", (unsigned long long) s.oom_kills,
               (unsigned long long) s.memory_peak);
        CHECK(s.oom_kills >= 1);
        CHECK(s.memory_peak > 0);
        CHECK(s.memory_peak <= 32 * MiB + 1 * MiB);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(v1_dirs_present(name), 0);
        return 0;
}

static int count_lines(const char *path) {
        char buf[4096];
        int n = read_str(path, buf, sizeof buf), lines = 0;
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                lines += buf[i] == '\n';
        return lines;
}

REAL_TEST(v1_fork_bomb, v1_skip_reason) {
        CgroupLimits l = { .pids_max = 20 };
        char name[128], p[512], buf[64];
        Cgroup *c = NULL;
        int report[2] = { -EBADF, -EBADF };
        Kid k;

        make_name(name, sizeof name, "bomb");
        CHECK_EQ(cgroup_create(name, &l, &c), 0);
        track_cgroup(c);
        CHECK_EQ(v1_dirs_present(name), 4); /* + pids */
        CHECK_EQ(v1_path("pids", name, p, sizeof p), 0);
        size_t plen = strlen(p);
        strcat(p, "/pids.max");
        CHECK_EQ(read_str(p, buf, sizeof buf) > 0, true);
        CHECK_STREQ(buf, "20\n");

        CHECK_EQ(pipe2(report, O_CLOEXEC), 0);
        int r = kid_spawn(KID_BOMB, report[1], &k);
        report[1] = safe_close(report[1]);
        CHECK_EQ(r, 0);
        CHECK_EQ(cgroup_attach(c, k.pid), 0);
        CHECK_EQ(kid_go(&k), 0);

        /* Some bomb process hit EAGAIN (the limit), within 5 s. */
        struct pollfd pfd = { .fd = report[0], .events = POLLIN };
        r = poll(&pfd, 1, 5000);
        CHECK_EQ(r, 1);
        msleep(200); /* let it push against the limit a little longer */
        p[plen] = '\0';
        strcat(p, "/pids.current");
        CHECK_EQ(read_str(p, buf, sizeof buf) > 0, true);
        printf("# pids.current %s", buf);
        CHECK(atoi(buf) <= 20 && atoi(buf) >= 2);
        p[plen] = '\0';
        strcat(p, "/cgroup.procs");
        CHECK(count_lines(p) <= 20);

        CHECK_EQ(cgroup_kill_all(c), 0);
        CHECK_EQ(kid_killed(&k), 0);
        CHECK_EQ(drop_cgroup(c), 0); /* waits until all of them are gone */
        report[0] = safe_close(report[0]);
        CHECK_EQ(v1_dirs_present(name), 0);
        return 0;
}

REAL_TEST(v1_kill_all_stopped, v1_skip_reason) {
        CgroupLimits l = { .cpu_quota_us = 50000, .cpu_period_us = 100000, .pids_max = 100 };
        char name[128], p[512], buf[64];
        Cgroup *c = NULL;
        Kid k[3];
        int status;

        make_name(name, sizeof name, "kill");
        CHECK_EQ(cgroup_create(name, &l, &c), 0);
        track_cgroup(c);
        CHECK_EQ(v1_dirs_present(name), 5);
        CHECK_EQ(v1_path("cpu", name, p, sizeof p), 0);
        strcat(p, "/cpu.cfs_quota_us");
        CHECK_EQ(read_str(p, buf, sizeof buf) > 0, true);
        CHECK_STREQ(buf, "50000\n");

        static const KidKind kinds[] = { KID_PAUSE, KID_PAUSE, KID_SPIN };
        for (size_t i = 0; i < ELEMENTSOF(k); i++) {
                CHECK_EQ(kid_spawn(kinds[i], -1, &k[i]), 0);
                CHECK_EQ(cgroup_attach(c, k[i].pid), 0);
                CHECK_EQ(kid_go(&k[i]), 0);
        }
        /* k[1] is stopped. */
        CHECK_EQ(kill(k[1].pid, SIGSTOP), 0);
        CHECK_EQ(waitpid(k[1].pid, &status, WUNTRACED), k[1].pid);
        CHECK(WIFSTOPPED(status));

        CHECK_EQ(cgroup_kill_all(c), 0);
        for (size_t i = 0; i < ELEMENTSOF(k); i++)
                CHECK_EQ(kid_killed(&k[i]), 0);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(v1_dirs_present(name), 0);
        return 0;
}

REAL_TEST(v1_rollback, v1_skip_reason) {
        /* The kernel refuses a quota below 1 ms after memory, pids, cpu... were made. */
        CgroupLimits l = { .memory_max = 64 * MiB, .pids_max = 10, .cpu_quota_us = 1 };
        char name[128];
        Cgroup *c = NULL;

        make_name(name, sizeof name, "rollback");
        CHECK_EQ(cgroup_create(name, &l, &c), -EINVAL);
        CHECK(!c);
        CHECK_EQ(v1_dirs_present(name), 0);
        return 0;
}

REAL_TEST(v1_hundred, v1_skip_reason) {
        CgroupLimits l = { .memory_max = 64 * MiB, .pids_max = 50, .cpu_quota_us = 100000 };
        struct timespec t0, t1;
        char name[128];

        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 100; i++) {
                char what[32];
                Cgroup *c = NULL;
                Kid k;

                snprintf(what, sizeof what, "many-%d", i);
                make_name(name, sizeof name, what);
                CHECK_EQ(cgroup_create(name, &l, &c), 0);
                track_cgroup(c);
                CHECK_EQ(kid_spawn(KID_PAUSE, -1, &k), 0);
                CHECK_EQ(cgroup_attach(c, k.pid), 0);
                CHECK_EQ(kid_go(&k), 0);
                CHECK_EQ(drop_cgroup(c), 0); /* kills it, waits, removes */
                CHECK_EQ(kid_killed(&k), 0);
                CHECK_EQ(v1_dirs_present(name), 0);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("# 100 sandboxes in %.2f s\n",
               (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        return 0;
}

/* The last byte the forker reported within a second, or 0. */
static char forker_last(int fd) {
        char buf[256], last = 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        for (int i = 0; i < 50 && last == 0; i++) {
                if (poll(&p, 1, 20) == 1) {
                        ssize_t n = read(fd, buf, sizeof buf);
                        if (n > 0)
                                last = buf[n - 1];
                }
        }
        return last;
}

/* The split layout on real v1 hierarchies: a fork bomb and an OOM in the program's child; a process
 * in the union's child keeps forking meanwhile, is not in the sandbox's freezer cgroup, survives
 * cgroup_child_kill() of the program, and a stale sandbox is found with its children and removed. */
REAL_TEST(v1_split, v1_skip_reason) {
        CgroupLimits l = { .memory_max = 48 * MiB, .pids_max = 40, .split = true,
                           .program_pids_max = 20, .union_pids_max = 20 };
        char name[128], p[512], where[512], own_freezer[512];
        int bomb_report[2] = { -EBADF, -EBADF }, fork_report[2] = { -EBADF, -EBADF };
        CgroupStats st;
        Cgroup *c = NULL;
        Kid bomb, server, hog;

        make_name(name, sizeof name, "split");
        CHECK_EQ(cgroup_create(name, &l, &c), 0);
        track_cgroup(c);
        CHECK_EQ(v1_dirs_present(name), 4); /* memory, pids, cpuacct, freezer */
        CHECK_EQ(v1_path("freezer", name, p, sizeof p), 0);
        strcat(p, "/union");
        CHECK_EQ(access(p, F_OK), -1); /* the server is never in the sandbox's freezer cgroup */
        CHECK_EQ(v1_path("pids", name, p, sizeof p), 0);
        strcat(p, "/program/pids.max");
        char buf[64];
        CHECK_EQ(read_str(p, buf, sizeof buf) > 0, true);
        CHECK_STREQ(buf, "20\n");

        CHECK_EQ(pipe2(bomb_report, O_CLOEXEC), 0);
        CHECK_EQ(pipe2(fork_report, O_CLOEXEC | O_NONBLOCK), 0);
        CHECK_EQ(kid_spawn(KID_FORKER, fork_report[1], &server), 0);
        CHECK_EQ(cgroup_child_attach(c, CGROUP_CHILD_UNION, server.pid), 0);
        CHECK_EQ(kid_go(&server), 0);
        CHECK_EQ(proc_cgroup_of(server.pid, "memory", where, sizeof where), 0);
        CHECK(ends_with(where, "/union"));
        CHECK_EQ(proc_cgroup_of(getpid(), "freezer", own_freezer, sizeof own_freezer), 0);
        CHECK_EQ(proc_cgroup_of(server.pid, "freezer", where, sizeof where), 0);
        CHECK_STREQ(where, own_freezer);
        CHECK_EQ(forker_last(fork_report[0]), 'y');

        int r = kid_spawn(KID_BOMB, bomb_report[1], &bomb);
        bomb_report[1] = safe_close(bomb_report[1]);
        CHECK_EQ(r, 0);
        CHECK_EQ(cgroup_child_attach(c, CGROUP_CHILD_PROGRAM, bomb.pid), 0);
        CHECK_EQ(kid_go(&bomb), 0);
        struct pollfd pfd = { .fd = bomb_report[0], .events = POLLIN };
        CHECK_EQ(poll(&pfd, 1, 5000), 1); /* the bomb hit the program's bound */
        msleep(100);
        CHECK_EQ(forker_last(fork_report[0]), 'y'); /* ... and the server can still fork */

        CHECK_EQ(cgroup_child_kill(c, CGROUP_CHILD_PROGRAM), 0);
        CHECK_EQ(kid_killed(&bomb), 0);
        CHECK_EQ(kill(server.pid, 0), 0);
        CHECK_EQ(forker_last(fork_report[0]), 'y'); /* still running, not frozen */

        /* The memory limit is the whole sandbox's; an OOM kill in a child is counted. */
        CHECK_EQ(kid_spawn(KID_HOG, -1, &hog), 0);
        CHECK_EQ(cgroup_child_attach(c, CGROUP_CHILD_PROGRAM, hog.pid), 0);
        CHECK_EQ(kid_go(&hog), 0);
        CHECK_EQ(kid_killed(&hog), 0);
        CHECK_EQ(cgroup_get_stats(c, &st), 0);
        printf("# oom_kills %llu, memory_peak %llu\n", (unsigned long long) st.oom_kills,
               (unsigned long long) st.memory_peak);
        CHECK(st.oom_kills >= 1);
        CHECK(st.memory_peak <= 48 * MiB + 1 * MiB);
        CHECK_EQ(kill(server.pid, 0), 0);

        /* As after a crash: the object is gone, the cgroups and the server are not. */
        for (size_t i = 0; i < ELEMENTSOF(live_cgroups); i++)
                if (live_cgroups[i] == c)
                        live_cgroups[i] = NULL;
        cgroup_free(c);
        c = NULL;
        CHECK_EQ(cgroup_open(name, &c), 0);
        track_cgroup(c);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(kid_killed(&server), 0);
        CHECK_EQ(v1_dirs_present(name), 0);
        safe_close(bomb_report[0]);
        safe_close(fork_report[0]);
        safe_close(fork_report[1]);
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Real v2 mechanics under /sys/fs/cgroup/unified
 */

#define UNIFIED "/sys/fs/cgroup/unified"

static const char *v2_skip_reason(void) {
        if (geteuid() != 0)
                return "needs root";
        if (!is_fs(UNIFIED, CGROUP2_SUPER_MAGIC))
                return "no cgroup2 at " UNIFIED;
        return NULL;
}

static int v2_path(const char *name, char *buf, size_t size) {
        _cleanup_free_ char *own = NULL;
        int r = cgroup_get_own_path(NULL, &own);
        if (r < 0)
                return r;
        snprintf(buf, size, UNIFIED "%s/%s", streq(own, "/") ? "" : own, name);
        return 0;
}

static bool v2_present(const char *name) {
        char p[512];
        struct stat st;
        return v2_path(name, p, sizeof p) >= 0 && stat(p, &st) >= 0;
}

REAL_TEST(v2_mechanics, v2_skip_reason) {
        _cleanup_free_ char *own = NULL;
        char name[128], where[512];
        CgroupStats s0, s1;
        Cgroup *c = NULL;
        Kid k;

        CHECK_EQ(cgroup_get_own_path(NULL, &own), 0);
        make_name(name, sizeof name, "v2");
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, NULL, &c), 0);
        track_cgroup(c);
        CHECK(v2_present(name));
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, NULL, &(Cgroup *) { NULL }), -EEXIST);
        /* The v1 side of this hybrid host is not cgroup2. */
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, "/sys/fs/cgroup/memory", "/", name, NULL,
                                  &(Cgroup *) { NULL }),
                 -EOPNOTSUPP);

        CHECK_EQ(kid_spawn(KID_SPIN, -1, &k), 0);
        CHECK_EQ(cgroup_attach(c, k.pid), 0);
        CHECK_EQ(proc_cgroup_of(k.pid, NULL, where, sizeof where), 0);
        CHECK(ends_with(where, name));
        CHECK_EQ(cgroup_get_stats(c, &s0), 0);
        CHECK_EQ(kid_go(&k), 0);
        CHECK_EQ(wait_cpu(c, &s0, &s1), 0);
        printf("# cpu_usec %llu -> %llu\n", (unsigned long long) s0.cpu_usec,
               (unsigned long long) s1.cpu_usec);
        CHECK(s1.cpu_usec >= s0.cpu_usec + 50000);
        CHECK_U64(s1.memory_peak, 0); /* no memory controller here */
        CHECK_U64(s1.oom_kills, 0);

        CHECK_EQ(cgroup_kill_all(c), 0); /* cgroup.kill */
        CHECK_EQ(kid_killed(&k), 0);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK(!v2_present(name));
        return 0;
}

static pid_t clone3_into(int cgroup_fd) {
        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t) cgroup_fd,
        };
        return (pid_t) syscall(SYS_clone3, &args, sizeof args);
}

REAL_TEST(v2_clone_into_and_remove, v2_skip_reason) {
        _cleanup_free_ char *own = NULL;
        char name[128], where[512];
        Cgroup *c = NULL;
        int status;

        CHECK_EQ(cgroup_get_own_path(NULL, &own), 0);
        make_name(name, sizeof name, "v2clone");
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, NULL, &c), 0);
        track_cgroup(c);
        int fd = cgroup_v2_fd(c);
        CHECK(fd >= 0);
        pid_t pid = clone3_into(fd);
        if (pid == 0) {
                signal(SIGALRM, SIG_DFL);
                alarm(20);
                for (;;)
                        pause();
        }
        close(fd);
        CHECK(pid > 0);
        track_kid(pid);
        CHECK_EQ(proc_cgroup_of(pid, NULL, where, sizeof where), 0);
        CHECK(ends_with(where, name));
        /* Removal with a live member: cgroup.kill, wait for "populated 0", rmdir. */
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK(!v2_present(name));
        CHECK_EQ(reap_kid(pid, &status), 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        return 0;
}

/* The split layout's mechanics on cgroup2 (no controllers here): the program is born in its child
 * with CLONE_INTO_CGROUP, the server is attached to its own; killing the program leaves the server;
 * removal takes both. */
REAL_TEST(v2_split, v2_skip_reason) {
        _cleanup_free_ char *own = NULL;
        CgroupLimits split = { .split = true, .union_pids_max = 64 };
        char name[128], where[512], p[600];
        Cgroup *c = NULL;
        Kid server;
        int status;

        CHECK_EQ(cgroup_get_own_path(NULL, &own), 0);
        make_name(name, sizeof name, "v2split");
        /* The program's pids bound needs the pids controller, which this cgroup2 does not have. */
        CgroupLimits needs_pids = { .split = true, .program_pids_max = 10 };
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, &needs_pids, &c), -EOPNOTSUPP);
        CHECK(!v2_present(name));
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, &split, &c), 0);
        track_cgroup(c);
        CHECK_EQ(cgroup_v2_fd(c), -EISDIR);
        int fd = cgroup_child_v2_fd(c, CGROUP_CHILD_PROGRAM);
        CHECK(fd >= 0);
        pid_t pid = clone3_into(fd);
        if (pid == 0) {
                signal(SIGALRM, SIG_DFL);
                alarm(20);
                for (;;)
                        pause();
        }
        close(fd);
        CHECK(pid > 0);
        track_kid(pid);
        CHECK_EQ(proc_cgroup_of(pid, NULL, where, sizeof where), 0);
        snprintf(p, sizeof p, "%s/program", name);
        CHECK(ends_with(where, p));

        CHECK_EQ(kid_spawn(KID_PAUSE, -1, &server), 0);
        CHECK_EQ(cgroup_child_attach(c, CGROUP_CHILD_UNION, server.pid), 0);
        CHECK_EQ(kid_go(&server), 0);
        CHECK_EQ(proc_cgroup_of(server.pid, NULL, where, sizeof where), 0);
        snprintf(p, sizeof p, "%s/union", name);
        CHECK(ends_with(where, p));

        CHECK_EQ(cgroup_child_kill(c, CGROUP_CHILD_PROGRAM), 0);
        CHECK_EQ(reap_kid(pid, &status), 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        msleep(50);
        CHECK_EQ(waitpid(server.pid, &status, WNOHANG), 0); /* the server lives on */

        CHECK_EQ(drop_cgroup(c), 0);
        CHECK_EQ(kid_killed(&server), 0);
        CHECK(!v2_present(name));
        return 0;
}

REAL_TEST(v2_limits_unsupported, v2_skip_reason) {
        static const CgroupLimits limits[] = {
                { .memory_max = 64 * MiB },
                { .pids_max = 10 },
                { .cpu_quota_us = 50000 },
        };
        _cleanup_free_ char *own = NULL;
        char name[128];

        CHECK_EQ(cgroup_get_own_path(NULL, &own), 0);
        make_name(name, sizeof name, "v2limit");
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                Cgroup *c = NULL;
                CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, &limits[i], &c), -EOPNOTSUPP);
                CHECK(!c);
                CHECK(!v2_present(name));
        }
        return 0;
}

/* cgroup_v2_prepare_delegated() needs /sys/fs/cgroup to be cgroup2. A child enters cgroup T (made
 * here under unified/), makes a private mount namespace with unified/ bound over /sys/fs/cgroup and
 * re-executes this binary as delegated_helper(), a fresh process with no cached layout, which
 * treats T as its delegated cgroup. T has no controllers (none are enabled at the root here), so
 * what is exercised is the move into the leaf and creating sandboxes beside it, not the enabling. */
static int delegated_helper(const char *own) {
        _cleanup_free_ char *p = NULL;
        CgroupLimits mem = { .memory_max = 64 * MiB };
        CgroupLayout layout;
        Cgroup *c = NULL;
        char path[512];
        struct stat st;

        if (cgroup_detect_layout(&layout) < 0 || layout != CGROUP_LAYOUT_V2)
                return 10;
        if (cgroup_get_own_path(NULL, &p) < 0 || !streq(p, own))
                return 11;
        free(p);
        p = NULL;
        if (cgroup_v2_own_is_delegated() != 0) /* no systemd mark here */
                return 12;
        if (cgroup_v2_prepare_delegated(NULL) != 0)
                return 13;
        if (cgroup_get_own_path(NULL, &p) < 0 || !ends_with(p, "/supervisor") || !strneq(p, own, strlen(own)))
                return 14;
        if (cgroup_v2_prepare_delegated(NULL) != 0) /* again: nothing to do */
                return 15;
        if (cgroup_create("box", &mem, &c) != -EOPNOTSUPP)
                return 16;
        {
                /* T offers no controller: the memory limit's is what is missing, in T. */
                CgroupLimits all = { .memory_max = 64 * MiB, .pids_max = 10, .cpu_quota_us = 50000 };
                _cleanup_free_ char *missing = NULL, *parent = NULL;
                if (cgroup_explain_unsupported(&all, &missing, &parent) != 0 ||
                    !streq(missing, "memory, pids, cpu") || !parent || !streq(parent, own))
                        return 21;
        }
        if (cgroup_create("box", NULL, &c) != 0)
                return 17;
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/box", own); /* beside the leaf, not in it */
        if (stat(path, &st) < 0)
                return 18;
        if (cgroup_remove(c) != 0 || stat(path, &st) >= 0)
                return 19;
        cgroup_free(c);
        if (cgroup_create("supervisor", NULL, &c) != -EEXIST)
                return 20;
        return 0;
}

REAL_TEST(v2_delegated, v2_skip_reason) {
        _cleanup_free_ char *own = NULL;
        char name[128], t[512], leaf[600];
        Cgroup *c = NULL;
        int status;

        CHECK_EQ(cgroup_get_own_path(NULL, &own), 0);
        make_name(name, sizeof name, "deleg");
        CHECK_EQ(cgroup_create_at(CGROUP_LAYOUT_V2, UNIFIED, own, name, NULL, &c), 0);
        track_cgroup(c);
        snprintf(t, sizeof t, "%s/%s", streq(own, "/") ? "" : own, name);

        pid_t pid = fork();
        if (pid == 0) {
                char *argv[] = { (char *) "test-cgroup", (char *) "--delegated-helper", t, NULL };
                signal(SIGALRM, SIG_DFL);
                alarm(20);
                if (cgroup_attach(c, getpid()) < 0)
                        _exit(2);
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount(UNIFIED, "/sys/fs/cgroup", NULL, MS_BIND, NULL) < 0)
                        _exit(3);
                execv("/proc/self/exe", argv);
                _exit(4);
        }
        CHECK(pid > 0);
        track_kid(pid);
        CHECK_EQ(reap_kid(pid, &status), 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                printf("# helper status 0x%x (exit %d)\n", status,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* The helper's leaf is left (empty, it exited); remove it, then T. */
        snprintf(leaf, sizeof leaf, UNIFIED "%s/supervisor", t);
        CHECK_EQ(rmdir(leaf), 0);
        CHECK_EQ(drop_cgroup(c), 0);
        CHECK(!v2_present(name));
        return 0;
}

/* ------------------------------------------------------------------------------------------------ */

static int test_own_path(void) {
        _cleanup_free_ char *p = NULL;
        CgroupLayout layout;

        CHECK_EQ(cgroup_detect_layout(&layout), 0);
        CHECK(layout == CGROUP_LAYOUT_V1 || layout == CGROUP_LAYOUT_V2);
        CHECK_EQ(cgroup_get_own_path(NULL, &p), 0);
        CHECK(p[0] == '/');
        CHECK_EQ(cgroup_get_own_path("cpu,cpuacct", &(char *) { NULL }), -EINVAL);
        CHECK_EQ(cgroup_get_own_path("no-such-controller", &(char *) { NULL }), -ENOENT);
        if (layout == CGROUP_LAYOUT_V1) {
                CHECK_EQ(cgroup_v2_prepare_delegated(NULL), -EOPNOTSUPP);
                CHECK_EQ(cgroup_v2_own_is_delegated(), -EOPNOTSUPP);
        }
        if (layout == CGROUP_LAYOUT_V1 && access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0 &&
            access("/sys/fs/cgroup/pids/pids.max", F_OK) == 0) {
                /* This host's v1 hierarchies: memory and pids are there, nothing missing, no parent. */
                CgroupLimits l = { .memory_max = 64 * MiB, .pids_max = 10 };
                _cleanup_free_ char *missing = NULL, *parent = NULL;
                CHECK_EQ(cgroup_explain_unsupported(&l, &missing, &parent), 0);
                CHECK(streq(missing, ""));
                CHECK(!parent);
        }
        CHECK_EQ(cgroup_v2_prepare_delegated("a/b"), -EINVAL);
        return 0;
}

int main(int argc, char *argv[]) {
        static const TapTest tests[] = {
                TAP_TEST(own_path),
                TAP_TEST(fake_invalid_names),
                TAP_TEST(fake_v2_limits),
                TAP_TEST(fake_v2_unsupported),
                TAP_TEST(fake_v2_exists),
                TAP_TEST(fake_v2_stats),
                TAP_TEST(fake_v2_stats_malformed),
                TAP_TEST(fake_v2_kill_fd),
                TAP_TEST(fake_v1_limits),
                TAP_TEST(fake_v1_comount),
                TAP_TEST(fake_v1_stats),
                TAP_TEST(fake_v1_attach_kill),
                TAP_TEST(fake_v2_split),
                TAP_TEST(fake_v1_split),
                TAP_TEST(fake_update),
                TAP_TEST(fake_v1_cpuset_io),
                TAP_TEST(fake_v2_cpuset_io),
                TAP_TEST(v1_attach_cpu),
                TAP_TEST(v1_oom),
                TAP_TEST(v1_fork_bomb),
                TAP_TEST(v1_kill_all_stopped),
                TAP_TEST(v1_rollback),
                TAP_TEST(v1_hundred),
                TAP_TEST(v1_split),
                TAP_TEST(v2_mechanics),
                TAP_TEST(v2_clone_into_and_remove),
                TAP_TEST(v2_split),
                TAP_TEST(v2_limits_unsupported),
                TAP_TEST(v2_delegated),
        };
        unsigned rnd = 0;
        int r;

        /* SBX_TEST_DEBUG=1: the module's debug messages on stderr. */
        if (getenv("SBX_TEST_DEBUG")) {
                log_setup("test-cgroup", false);
                log_set_max_level(LOG_DEBUG);
        }
        if (argc == 3 && streq(argv[1], "--delegated-helper"))
                return delegated_helper(argv[2]);

        if (getrandom(&rnd, sizeof rnd, 0) < 0)
                rnd = (unsigned) time(NULL);
        snprintf(run_id, sizeof run_id, "sbxtest-%ld-%08x", (long) getpid(), rnd);
        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-cgroup") < 0)
                return 1;

        /* Whatever happens, no cgroup and no kid outlives the test. */
        atexit(cleanup_all);
        struct sigaction sa = { .sa_handler = fatal_signal };
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGALRM);
        sigaddset(&sa.sa_mask, SIGINT);
        sigaddset(&sa.sa_mask, SIGTERM);
        sigaction(SIGALRM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        alarm(55);

        r = setup_fake_tree();
        if (r < 0) {
                printf("Bail out! setup: %s\n", tap_errname(r));
                r = 1;
        } else
                r = tap_run(tests, ELEMENTSOF(tests));
        cleanup_all();
        remove_tmp_root();
        return r;
}
