/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of unionfs/options.c: the sandbox-unionfs command line (-o lists with kernel-style
 * escapes, layer order, SOURCE MOUNTPOINT, options handed on to libfuse, the combinations that are
 * refused) and union_options_check() on real directories in a private temporary directory. The
 * "workdir on another filesystem" case mounts a tmpfs in a private mount namespace of a child
 * process and is skipped when not root. Error messages on stderr are expected. Output is TAP.
 */
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "tap.h"
#include "unionfs/options.h"

/* Sized so that -Wformat-truncation=2 can prove every path below fits. */
static char tmp_root[256];

/* Parse a NULL-terminated list of arguments (argv[0] is added). */
static int parse_args(const char *const *args, UnionOptions *ret) {
        char *argv[300];
        int argc = 0;

        argv[argc++] = (char *) "sandbox-unionfs";
        for (; *args; args++) {
                if (argc >= (int) ELEMENTSOF(argv) - 1)
                        return -E2BIG;
                argv[argc++] = (char *) *args;
        }
        argv[argc] = NULL;
        return union_options_parse(argc, argv, ret);
}

#define PARSE(o, ...) parse_args((const char *const[]) { __VA_ARGS__, NULL }, (o))

/* A failed parse must leave *ret alone: fill it with a marker first. */
static UnionOptions marker(void) {
        return (UnionOptions) { .n_lowerdirs = 4242, .mountpoint = (char *) "marker" };
}

/* Expect the parse to fail with R and to leave *ret alone. */
static int expect_fail(int r, const char *const *args) {
        UnionOptions m = marker();
        int got = parse_args(args, &m);
        if (got != r) {
                printf("# parse of");
                for (const char *const *a = args; *a; a++)
                        printf(" '%s'", *a);
                printf(" returned %d (%s), expected %d (%s)\n", got, tap_errname(got), r, tap_errname(r));
        }
        if (got >= 0) {
                union_options_done(&m);
                return -1;
        }
        CHECK_EQ(got, r);
        CHECK_EQ(m.n_lowerdirs, 4242);
        CHECK_STREQ(m.mountpoint, "marker");
        return 0;
}

#define EXPECT_FAIL(r, ...) CHECK(expect_fail((r), (const char *const[]) { __VA_ARGS__, NULL }) == 0)

static int test_basic(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/top:/mid:/bottom", "/mnt"), 0);
        CHECK_EQ(o.n_lowerdirs, 3);
        CHECK_STREQ(o.lowerdirs[0], "/top"); /* leftmost is the top layer */
        CHECK_STREQ(o.lowerdirs[1], "/mid");
        CHECK_STREQ(o.lowerdirs[2], "/bottom");
        CHECK_STREQ(o.mountpoint, "/mnt");
        CHECK_STREQ(o.upperdir, NULL);
        CHECK_STREQ(o.workdir, NULL);
        CHECK_STREQ(o.fuse_opts, NULL);
        /* defaults */
        CHECK(o.timeout == 86400);
        CHECK_EQ(o.max_threads, 0);
        CHECK(o.redirect_dir);
        CHECK(o.sync_copyup);
        CHECK(o.writeback);
        CHECK(!o.userxattr);
        CHECK(!o.readonly);
        CHECK(!o.foreground);
        CHECK(!o.debug);
        CHECK(!o.show_help);
        CHECK(!o.show_version);
        CHECK_EQ(o.uidmap.n_ranges, 0);
        CHECK_EQ(o.gidmap.n_ranges, 0);
        return 0;
}

static int test_upper_work(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,upperdir=/u,workdir=/w", "/mnt"), 0);
        CHECK_EQ(o.n_lowerdirs, 1);
        CHECK_STREQ(o.lowerdirs[0], "/l");
        CHECK_STREQ(o.upperdir, "/u");
        CHECK_STREQ(o.workdir, "/w");
        CHECK_STREQ(o.fuse_opts, NULL);
        return 0;
}

static int test_o_attached_and_repeated(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        /* "-oLIST", several -o, and later options winning */
        CHECK_EQ(PARSE(&o, "-olowerdir=/a", "-o", "upperdir=/u", "-o", "workdir=/w,lowerdir=/b:/c", "/mnt"), 0);
        CHECK_EQ(o.n_lowerdirs, 2);
        CHECK_STREQ(o.lowerdirs[0], "/b");
        CHECK_STREQ(o.lowerdirs[1], "/c");
        CHECK_STREQ(o.upperdir, "/u");
        CHECK_STREQ(o.workdir, "/w");
        return 0;
}

static int test_source_and_mountpoint(void) {
        _cleanup_(union_options_done) UnionOptions o = {}, p = {};

        /* mount(8) style: SOURCE MOUNTPOINT -o OPTS; SOURCE is ignored */
        CHECK_EQ(PARSE(&o, "none", "/mnt", "-o", "lowerdir=/l"), 0);
        CHECK_STREQ(o.mountpoint, "/mnt");
        CHECK_EQ(o.n_lowerdirs, 1);
        /* options between the positionals */
        CHECK_EQ(PARSE(&p, "overlay", "-o", "lowerdir=/l", "/target"), 0);
        CHECK_STREQ(p.mountpoint, "/target");

        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l", "a", "b", "c");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l");               /* no mount point */
        EXPECT_FAIL(-EINVAL, "/mnt");                            /* no lowerdir */
        EXPECT_FAIL(-EINVAL, "-o", "upperdir=/u,workdir=/w", "/mnt");
        return 0;
}

static int test_double_dash(void) {
        _cleanup_(union_options_done) UnionOptions o = {}, p = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l", "--", "-mnt"), 0);
        CHECK_STREQ(o.mountpoint, "-mnt");
        CHECK_EQ(PARSE(&p, "-o", "lowerdir=/l", "-"), 0); /* a lone "-" is an argument */
        CHECK_STREQ(p.mountpoint, "-");
        return 0;
}

static int test_flags(void) {
        _cleanup_(union_options_done) UnionOptions a = {}, b = {}, c = {}, d = {};

        CHECK_EQ(PARSE(&a, "-f", "-o", "lowerdir=/l", "/mnt"), 0);
        CHECK(a.foreground);
        CHECK(!a.debug);
        CHECK_EQ(PARSE(&b, "-d", "-o", "lowerdir=/l", "/mnt"), 0);
        CHECK(b.debug);
        CHECK(b.foreground); /* -d implies -f */
        CHECK_EQ(PARSE(&c, "--debug", "-s", "-o", "lowerdir=/l", "/mnt"), 0);
        CHECK(c.debug);
        CHECK(c.foreground);

        /* --help and --version need nothing else */
        CHECK_EQ(PARSE(&d, "--help"), 0);
        CHECK(d.show_help);
        union_options_done(&d);
        CHECK_EQ(PARSE(&d, "-h"), 0);
        CHECK(d.show_help);
        union_options_done(&d);
        CHECK_EQ(PARSE(&d, "-V"), 0);
        CHECK(d.show_version);
        union_options_done(&d);
        CHECK_EQ(PARSE(&d, "--version"), 0);
        CHECK(d.show_version);

        EXPECT_FAIL(-EINVAL, "-x", "-o", "lowerdir=/l", "/mnt");
        EXPECT_FAIL(-EINVAL, "--frobnicate", "-o", "lowerdir=/l", "/mnt");
        EXPECT_FAIL(-EINVAL, "/mnt", "-o");                      /* -o without its list */
        return 0;
}

static int test_lowerdir_escapes(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        /* C strings: "\\," is the two characters '\' ','. */
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/a\\,b:/c\\:d:/e\\\\f:/g h,upperdir=/u,workdir=/w", "/mnt"), 0);
        CHECK_EQ(o.n_lowerdirs, 4);
        CHECK_STREQ(o.lowerdirs[0], "/a,b");  /* "\," keeps the comma in the path */
        CHECK_STREQ(o.lowerdirs[1], "/c:d");  /* "\:" keeps the colon */
        CHECK_STREQ(o.lowerdirs[2], "/e\\f"); /* "\\" is one backslash */
        CHECK_STREQ(o.lowerdirs[3], "/g h");
        CHECK_STREQ(o.upperdir, "/u");
        CHECK_STREQ(o.workdir, "/w");
        return 0;
}

static int test_lowerdir_refused(void) {
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/a::/b", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/a:", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=:/a", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "upperdir=,lowerdir=/l,workdir=/w", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,upperdir=/u,workdir=", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,upperdir", "/mnt");
        return 0;
}

static int test_lowerdir_max(void) {
        _cleanup_(union_options_done) UnionOptions o = {};
        char buf[UNION_MAX_LOWER * 8 + 32];
        size_t n = (size_t) snprintf(buf, sizeof buf, "lowerdir=");

        for (unsigned i = 0; i < UNION_MAX_LOWER; i++)
                n += (size_t) snprintf(buf + n, sizeof buf - n, "%s/l%u", i ? ":" : "", i);
        CHECK_EQ(PARSE(&o, "-o", buf, "/mnt"), 0);
        CHECK_EQ(o.n_lowerdirs, UNION_MAX_LOWER);
        CHECK_STREQ(o.lowerdirs[0], "/l0");
        CHECK_STREQ(o.lowerdirs[UNION_MAX_LOWER - 1], "/l127");

        snprintf(buf + n, sizeof buf - n, ":/one-too-many");
        EXPECT_FAIL(-E2BIG, "-o", buf, "/mnt");
        return 0;
}

static int test_upper_without_work(void) {
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,upperdir=/u", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,workdir=/w", "/mnt");
        return 0;
}

/* Kernel overlayfs unescapes upperdir= and workdir= too ("\\" and "\:"), and so does fuse-overlayfs
 * (libfuse removes every backslash escape): the same -o string must name the same directory. */
static int test_upper_work_escapes(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,upperdir=/u\\,1,workdir=/w\\,2", "/mnt"), 0);
        CHECK_STREQ(o.upperdir, "/u,1");
        CHECK_STREQ(o.workdir, "/w,2");
        union_options_done(&o);

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,upperdir=/u\\:x,workdir=/w\\\\y", "/mnt"), 0);
        CHECK_STREQ(o.upperdir, "/u:x");
        CHECK_STREQ(o.workdir, "/w\\y");
        return 0;
}

static int test_fuse_passthrough(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "allow_other,lowerdir=/l,fsname=foo,rw,max_read=4096", "/mnt"), 0);
        /* unknown options go to libfuse in order; "rw" is dropped (libfuse 3 does not take it) */
        CHECK_STREQ(o.fuse_opts, "allow_other,fsname=foo,max_read=4096");
        CHECK(!o.readonly);
        union_options_done(&o);

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,ro", "/mnt"), 0);
        CHECK(o.readonly);
        CHECK_STREQ(o.fuse_opts, "ro"); /* and libfuse gets it too */
        union_options_done(&o);

        /* a key longer than any of ours is not truncated and matched */
        char longkey[200];
        memset(longkey, 'k', 100);
        strcpy(longkey + 100, "=v");
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l", "-o", longkey, "/mnt"), 0);
        CHECK_STREQ(o.fuse_opts, longkey);
        union_options_done(&o);

        /* empty list entries vanish */
        CHECK_EQ(PARSE(&o, "-o", ",lowerdir=/l,,allow_other,", "/mnt"), 0);
        CHECK_STREQ(o.fuse_opts, "allow_other");
        CHECK_EQ(o.n_lowerdirs, 1);
        return 0;
}

/* libfuse splits its -o list on unescaped commas again: a comma that was escaped for us must reach
 * it escaped, or "fsname=a\,b" becomes the two options "fsname=a" and "b". */
static int test_fuse_passthrough_escaped_comma(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,fsname=a\\,b", "/mnt"), 0);
        CHECK_STREQ(o.fuse_opts, "fsname=a\\,b");
        return 0;
}

static int test_ignored_overlay_options(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,index=off,xino=off,nfs_export=off,uuid=null,verity=off,"
                                 "metacopy=off,threaded=1", "/mnt"), 0);
        CHECK_STREQ(o.fuse_opts, NULL); /* none of them reaches libfuse */
        return 0;
}

static int test_metacopy(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l", "/mnt"), 0);
        CHECK(!o.metacopy); /* off by default, as in overlayfs */
        union_options_done(&o);
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,metacopy=off", "/mnt"), 0);
        CHECK(!o.metacopy);
        union_options_done(&o);
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,metacopy=on", "/mnt"), 0);
        CHECK(o.metacopy);
        CHECK_STREQ(o.fuse_opts, NULL);
        union_options_done(&o);
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,metacopy=on,redirect_dir=off", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,metacopy=maybe", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,metacopy", "/mnt");
        return 0;
}

/* fuse-overlayfs's options (docs/unionfs.md has the table). */
static int test_fuse_overlayfs_options(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l", "/mnt"), 0);
        CHECK(!o.squash_to_root && o.squash_uid == -1 && o.squash_gid == -1 && !o.static_nlink && !o.noxattrs);
        CHECK_EQ(o.xattr_permissions, 0u);
        union_options_done(&o);
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,squash_to_root,squash_to_uid=7,squash_to_gid=8,static_nlink,noacl,"
                                 "xattr_permissions=2,fsync=0,noxattrs=1,fast_ino=1,context=x,threaded=1,"
                                 "splice_read,splice_write,splice_move,kernel_cache", "/mnt"), 0);
        CHECK(o.squash_to_root && o.static_nlink && o.noxattrs && !o.sync_copyup);
        CHECK_EQ(o.squash_uid, 7);
        CHECK_EQ(o.squash_gid, 8);
        CHECK_EQ(o.xattr_permissions, 2u);
        CHECK_STREQ(o.fuse_opts, NULL); /* none of them reaches libfuse */
        union_options_done(&o);
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,squash_to_uid=x", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,squash_to_gid=", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,squash_to_uid=4294967295", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,squash_to_root=1", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,xattr_permissions=3", "/mnt");
        EXPECT_FAIL(-EOPNOTSUPP, "-o", "lowerdir=/l,plugins=/usr/lib/x.so", "/mnt");
        return 0;
}

static int test_redirect_dir(void) {
        static const struct {
                const char *opt;
                bool value;
        } ok[] = {
                { "redirect_dir=on", true },
                { "redirect_dir=off", false },
                { "redirect_dir=follow", false },
                { "redirect_dir=nofollow", false },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_(union_options_done) UnionOptions o = {};
                /* start from the opposite of the expected value */
                const char *pre = ok[i].value ? "redirect_dir=off" : "redirect_dir=on";
                CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l", "-o", pre, "-o", ok[i].opt, "/mnt"), 0);
                CHECK_EQ(o.redirect_dir, ok[i].value);
        }
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,redirect_dir=1", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,redirect_dir=", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,redirect_dir", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,redirect_dir=ON", "/mnt");
        return 0;
}

static int test_bool_options(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,userxattr,volatile,writeback=0", "/mnt"), 0);
        CHECK(o.userxattr);
        CHECK(!o.sync_copyup);
        CHECK(!o.writeback);
        union_options_done(&o);

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,fsync=0,writeback=off", "/mnt"), 0);
        CHECK(!o.sync_copyup);
        CHECK(!o.writeback);
        union_options_done(&o);

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,volatile,fsync=yes,writeback=true", "/mnt"), 0);
        CHECK(o.sync_copyup); /* the later option wins */
        CHECK(o.writeback);

        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,fsync=2", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,fsync", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,writeback=", "/mnt");
        return 0;
}

static int test_id_mappings(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,uidmapping=0:1000:1:1:100000:65536,gidmapping=0:2000:10", "/mnt"), 0);
        CHECK_EQ(o.uidmap.n_ranges, 2);
        CHECK_U64(o.uidmap.ranges[0].shown, 1000);
        CHECK_U64(o.uidmap.ranges[1].disk, 1);
        CHECK_U64(o.uidmap.ranges[1].count, 65536);
        CHECK_EQ(o.gidmap.n_ranges, 1);
        CHECK_U64(o.gidmap.ranges[0].shown, 2000);
        CHECK_U64(o.gidmap.ranges[0].count, 10);
        CHECK_STREQ(o.fuse_opts, NULL);

        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,uidmapping=0:1000", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,gidmapping=0::1", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,uidmapping=0:0:10:5:100:1", "/mnt");
        EXPECT_FAIL(-ERANGE, "-o", "lowerdir=/l,uidmapping=4294967295:0:2", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,uidmapping", "/mnt");
        return 0;
}

static int test_timeout_threads(void) {
        _cleanup_(union_options_done) UnionOptions o = {};

        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,timeout=1.5,threads=8", "/mnt"), 0);
        CHECK(o.timeout == 1.5);
        CHECK_EQ(o.max_threads, 8);
        union_options_done(&o);
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,timeout=0,threads=1", "/mnt"), 0);
        CHECK(o.timeout == 0);
        CHECK_EQ(o.max_threads, 1);
        union_options_done(&o);
        CHECK_EQ(PARSE(&o, "-o", "lowerdir=/l,threads=64", "/mnt"), 0);
        CHECK_EQ(o.max_threads, 64);

        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=-1", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=abc", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=1s", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=inf", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=1e10", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,threads=0", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,threads=65", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,threads=-1", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,threads=", "/mnt");
        return 0;
}

/* A timeout that is not a number of seconds must not reach the kernel as NaN or as 0 by accident. */
static int test_timeout_not_a_number(void) {
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=nan", "/mnt");
        EXPECT_FAIL(-EINVAL, "-o", "lowerdir=/l,timeout=", "/mnt");
        return 0;
}

/* ---- union_options_check on real directories ---- */

static int mkdir_in(const char *rel, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", tmp_root, rel);
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* One case's directories under tmp_root/<case>/ (all created). */
typedef struct Dirs {
        char lower[320], lower2[320], upper[320], work[320], mnt[320];
} Dirs;

/* Options naming the given directories; NULL ones stay unset. Nothing here is freed. */
static UnionOptions options_for(const char *lower, const char *lower2, const char *upper, const char *work,
                                const char *mnt) {
        UnionOptions o = {};
        o.lowerdirs[o.n_lowerdirs++] = (char *) lower;
        if (lower2)
                o.lowerdirs[o.n_lowerdirs++] = (char *) lower2;
        o.upperdir = (char *) upper;
        o.workdir = (char *) work;
        o.mountpoint = (char *) mnt;
        return o;
}

static int make_dirs(const char *c, Dirs *d) {
        char base[300];
        int r = mkdir_in(c, base, sizeof base);
        if (r < 0)
                return r;
        snprintf(d->lower, sizeof d->lower, "%s/lower", base);
        snprintf(d->lower2, sizeof d->lower2, "%s/lower2", base);
        snprintf(d->upper, sizeof d->upper, "%s/upper", base);
        snprintf(d->work, sizeof d->work, "%s/work", base);
        snprintf(d->mnt, sizeof d->mnt, "%s/mnt", base);
        const char *all[] = { d->lower, d->lower2, d->upper, d->work, d->mnt };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                if (mkdir(all[i], 0755) < 0)
                        return -errno;
        return 0;
}

static int test_check_ok(void) {
        Dirs d;
        CHECK_EQ(make_dirs("ok", &d), 0);

        UnionOptions o = options_for(d.lower, d.lower2, d.upper, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), 0);
        /* read-only: only the lowers and the mount point matter */
        o = options_for(d.lower, NULL, NULL, NULL, d.mnt);
        CHECK_EQ(union_options_check(&o), 0);
        /* siblings sharing a name prefix do not contain each other */
        char upper2[400];
        snprintf(upper2, sizeof upper2, "%s2", d.upper); /* ".../upper2" next to ".../upper" */
        CHECK_EQ(mkdir(upper2, 0755), 0);
        o = options_for(d.upper, NULL, upper2, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), 0);
        /* the mount point may be the lower itself (mounting over it, as containers do) */
        o = options_for(d.lower, NULL, d.upper, d.work, d.lower);
        CHECK_EQ(union_options_check(&o), 0);
        return 0;
}

static int test_check_missing_or_not_dir(void) {
        Dirs d;
        char missing[400], file[400];
        CHECK_EQ(make_dirs("missing", &d), 0);
        snprintf(missing, sizeof missing, "%s/nonexistent", d.mnt);
        snprintf(file, sizeof file, "%s/file", d.mnt);
        int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        CHECK(fd >= 0);
        close(fd);

        UnionOptions o = options_for(d.lower, missing, d.upper, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOENT);
        o = options_for(missing, NULL, NULL, NULL, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOENT);
        o = options_for(d.lower, file, NULL, NULL, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOTDIR);
        o = options_for(d.lower, NULL, NULL, NULL, missing);
        CHECK_EQ(union_options_check(&o), -ENOENT);
        o = options_for(d.lower, NULL, NULL, NULL, file);
        CHECK_EQ(union_options_check(&o), -ENOTDIR);
        o = options_for(d.lower, NULL, missing, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOENT);
        o = options_for(d.lower, NULL, file, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOTDIR);
        o = options_for(d.lower, NULL, d.upper, missing, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOENT);
        o = options_for(d.lower, NULL, d.upper, file, d.mnt);
        CHECK_EQ(union_options_check(&o), -ENOTDIR);
        return 0;
}

static int test_check_nesting(void) {
        Dirs d;
        char in_lower[400], in_upper[400], in_work[400], link[400];
        CHECK_EQ(make_dirs("nesting", &d), 0);
        snprintf(in_lower, sizeof in_lower, "%s/sub", d.lower2);
        snprintf(in_upper, sizeof in_upper, "%s/sub", d.upper);
        snprintf(in_work, sizeof in_work, "%s/sub", d.work);
        CHECK_EQ(mkdir(in_lower, 0755), 0);
        CHECK_EQ(mkdir(in_upper, 0755), 0);
        CHECK_EQ(mkdir(in_work, 0755), 0);

        UnionOptions o;
        /* upper inside a lower (not the top one) */
        o = options_for(d.lower, d.lower2, in_lower, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        /* lower inside upper */
        o = options_for(in_upper, NULL, d.upper, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        /* lower inside work */
        o = options_for(d.lower, in_work, d.upper, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        /* work inside upper, upper inside work, and the same directory for both */
        o = options_for(d.lower, NULL, d.upper, in_upper, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        o = options_for(d.lower, NULL, in_work, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        o = options_for(d.lower, NULL, d.upper, d.upper, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        /* upper equal to a lower */
        o = options_for(d.lower, NULL, d.lower, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        /* through a symlink and a "..": compared after resolution */
        snprintf(link, sizeof link, "%s/link-to-upper", d.mnt);
        CHECK_EQ(symlink(d.upper, link), 0);
        o = options_for(link, NULL, d.upper, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        snprintf(link, sizeof link, "%s/../upper/sub", d.work);
        o = options_for(link, NULL, d.upper, d.work, d.mnt);
        CHECK_EQ(union_options_check(&o), -EINVAL);
        return 0;
}

static int test_check_work_other_fs(void) {
        Dirs d;
        CHECK_EQ(make_dirs("otherfs", &d), 0);
        if (geteuid() != 0)
                return tap_skip("needs root to mount a tmpfs");

        /* A child in its own mount namespace mounts a tmpfs on work/: nothing leaks to the host. */
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0)
                        _exit(100);
                if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(101);
                if (mount("tmpfs", d.work, "tmpfs", 0, "size=1m,mode=0755") < 0)
                        _exit(102);
                UnionOptions o = options_for(d.lower, NULL, d.upper, d.work, d.mnt);
                int r = union_options_check(&o);
                _exit(r == -EXDEV ? 0 : r == 0 ? 103 : 104);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        if (WEXITSTATUS(status) == 100 || WEXITSTATUS(status) == 101)
                return tap_skip("cannot make a private mount namespace");
        CHECK_EQ(WEXITSTATUS(status), 0); /* 102: mount failed, 103: accepted, 104: other error */
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(basic),
                TAP_TEST(upper_work),
                TAP_TEST(o_attached_and_repeated),
                TAP_TEST(source_and_mountpoint),
                TAP_TEST(double_dash),
                TAP_TEST(flags),
                TAP_TEST(lowerdir_escapes),
                TAP_TEST(lowerdir_refused),
                TAP_TEST(lowerdir_max),
                TAP_TEST(upper_without_work),
                TAP_TEST(upper_work_escapes),
                TAP_TEST(fuse_passthrough),
                TAP_TEST(fuse_passthrough_escaped_comma),
                TAP_TEST(ignored_overlay_options),
                TAP_TEST(metacopy),
                TAP_TEST(fuse_overlayfs_options),
                TAP_TEST(redirect_dir),
                TAP_TEST(bool_options),
                TAP_TEST(id_mappings),
                TAP_TEST(timeout_threads),
                TAP_TEST(timeout_not_a_number),
                TAP_TEST(check_ok),
                TAP_TEST(check_missing_or_not_dir),
                TAP_TEST(check_nesting),
                TAP_TEST(check_work_other_fs),
        };

        /* The refusals log one error each: expected, and on stderr, apart from the TAP stream. */
        log_set_max_level(LOG_ERR);
        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-options") < 0)
                return 1;
        int r = tap_run(tests, ELEMENTSOF(tests));
        tap_remove_tree(tmp_root);
        return r;
}
