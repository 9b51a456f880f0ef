/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of --image NAME's parts that need no store: how an image's config merges under the command
 * line (runtime/image-run.c: Entrypoint and Cmd with and without a command and --entrypoint, Env under -e,
 * HOME, WorkingDir under -w), how a user is resolved in an image's /etc/passwd and /etc/group
 * (image/passwd.c: names, uids, groups, missing files and entries, malformed and hostile lines), and how
 * a file is read through layers (image/rootfs.c: the topmost layer decides, whiteouts, opaque directories,
 * non-directories, symlinks, devices, FIFOs and size bounds). The layer cases that need root (whiteouts
 * are devices, opaque markers trusted.* xattrs) are skipped without it. Output is TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image.h"
#include "macro.h"
#include "oci.h"
#include "passwd.h"
#include "rootfs.h"
#include "runtime.h"
#include "spec.h"
#include "tap.h"

static char **strv(const char *const *src) {
        size_t n = 0;
        while (src && src[n])
                n++;
        char **v = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; v && i < n; i++)
                v[i] = strdup(src[i]);
        return v;
}

#define STRV(...) strv((const char *const[]) { __VA_ARGS__, NULL })

typedef struct Merged {
        ImageRun *ir;
        char err[256];
        int r;
} Merged;

static void merged_done(Merged *m) {
        image_run_free(m->ir);
}

static int merge(const SandboxSpec *spec, const OciConfig *cfg, const char *home, Merged *ret) {
        *ret = (Merged) { .ir = image_run_new() };
        if (!ret->ir)
                return -ENOMEM;
        ret->r = image_run_merge(spec, cfg, home, ret->ir, ret->err, sizeof ret->err);
        return ret->r;
}

/* The merged argv joined with spaces. */
static const char *argv_of(const Merged *m, char *buf, size_t size) {
        size_t n, k = 0;
        char *const *v = image_run_argv(m->ir, &n);

        buf[0] = '\0';
        for (size_t i = 0; i < n; i++)
                k += (size_t) snprintf(buf + k, size - k, "%s%s", i ? " " : "", v[i]);
        return buf;
}

static const char *env_get(const Merged *m, const char *name) {
        size_t n, l = strlen(name);
        char *const *v = image_run_env(m->ir, &n);

        for (size_t i = 0; i < n; i++)
                if (strncmp(v[i], name, l) == 0 && v[i][l] == '=')
                        return v[i] + l + 1;
        return NULL;
}

static int test_defaults_agree(void) {
        CHECK_STREQ(SPEC_IMAGE_STORE_DEFAULT, IMAGE_STORE_DEFAULT);
        return 0;
}

static int test_command(void) {
        OciConfig cfg = { .entrypoint = STRV("/ep", "-x"), .cmd = STRV("c1", "c2") };
        SandboxSpec spec = { .image_ref = (char *) "img" };
        char buf[256];

        /* no command: Entrypoint then Cmd */
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), 0);
                CHECK_STREQ(argv_of(&m, buf, sizeof buf), "/ep -x c1 c2");
        }
        /* a command replaces Cmd, never Entrypoint */
        spec.argv = STRV("a", "b");
        spec.n_argv = 2;
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), 0);
                CHECK_STREQ(argv_of(&m, buf, sizeof buf), "/ep -x a b");
        }
        /* --entrypoint replaces both; the command follows it */
        spec.entrypoint = (char *) "/bin/sh";
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), 0);
                CHECK_STREQ(argv_of(&m, buf, sizeof buf), "/bin/sh a b");
        }
        /* --entrypoint '': the command alone; without one, nothing to run (Cmd is dropped as well) */
        spec.entrypoint = (char *) "";
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), 0);
                CHECK_STREQ(argv_of(&m, buf, sizeof buf), "a b");
        }
        strv_free(spec.argv);
        spec.argv = NULL;
        spec.n_argv = 0;
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), -EINVAL);
                CHECK(strstr(m.err, "nothing to run"));
        }
        spec.entrypoint = (char *) "/bin/true";
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), 0);
                CHECK_STREQ(argv_of(&m, buf, sizeof buf), "/bin/true");
        }
        spec.entrypoint = NULL;
        /* Cmd only; neither; an empty program */
        OciConfig cmd_only = { .cmd = STRV("/bin/sh", "-c", "echo hi") }, none = {}, empty = { .cmd = STRV("") };
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cmd_only, NULL, &m), 0);
                CHECK_STREQ(argv_of(&m, buf, sizeof buf), "/bin/sh -c echo hi");
        }
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &none, NULL, &m), -EINVAL);
                CHECK(strstr(m.err, "no Entrypoint and no Cmd: give a command"));
        }
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &empty, NULL, &m), -EINVAL);
        }
        strv_free(cfg.entrypoint);
        strv_free(cfg.cmd);
        strv_free(cmd_only.cmd);
        strv_free(empty.cmd);
        return 0;
}

static int test_env_workdir(void) {
        OciConfig cfg = { .env = STRV("PATH=/img/bin", "A=image", "A=image2", "B=b=c"), .cmd = STRV("x"),
                          .working_dir = (char *) "/app" };
        SandboxSpec spec = { .image_ref = (char *) "img", .env = STRV("A=mine", "C="), .n_env = 2 };

        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, "/home/app", &m), 0);
                CHECK_STREQ(env_get(&m, "PATH"), "/img/bin");
                CHECK_STREQ(env_get(&m, "A"), "mine");          /* -e wins */
                CHECK_STREQ(env_get(&m, "B"), "b=c");
                CHECK_STREQ(env_get(&m, "C"), "");
                CHECK_STREQ(env_get(&m, "HOME"), "/home/app");  /* the user's, as neither set it */
                size_t n;
                (void) image_run_env(m.ir, &n);
                CHECK_EQ(n, 5);                                 /* A once */
                CHECK_STREQ(image_run_workdir(m.ir), "/app");
                CHECK(image_run_workdir_from_image(m.ir));
        }
        /* -w wins; an image's HOME is kept; a relative WorkingDir is refused */
        spec.workdir = (char *) "/w";
        char **env = cfg.env;
        cfg.env = STRV("HOME=/from-image");
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, "/home/app", &m), 0);
                CHECK(!image_run_workdir(m.ir));
                CHECK(!image_run_workdir_from_image(m.ir));
                CHECK_STREQ(env_get(&m, "HOME"), "/from-image");
        }
        spec.workdir = NULL;
        cfg.working_dir = (char *) "app";
        {
                _cleanup_(merged_done) Merged m;
                CHECK_EQ(merge(&spec, &cfg, NULL, &m), -EINVAL);
                CHECK(strstr(m.err, "WorkingDir 'app' is not an absolute path"));
        }
        strv_free(env);
        strv_free(cfg.env);
        strv_free(cfg.cmd);
        strv_free(spec.env);
        return 0;
}

static const char passwd[] =
        "# comment\n"
        "root:x:0:0:root:/root:/bin/sh\n"
        "+nis:x:7:7::/nis:\n"
        "bad:x:notanumber:1::/bad:\n"
        "neg:x:-1:1::/neg:\n"
        "big:x:4294967295:1::/big:\n"
        "app:x:1234:2345:App,,,:/home/app:/bin/sh\r\n"
        "app:x:9999:9999::/second:\n"
        "short:x:77\n"
        "nohome:x:500:501\n"
        "relhome:x:600:601::home:\n"
        "toomany:x:1:1:a:/b:c:d\n"
        "nul\0:x:3:3::/nul:\n"
        "last:x:42:43::/last:/bin/sh"; /* no newline at the end */

static const char group[] =
        "root:x:0:\n"
        "staff:x:50:app,root\n"
        "weird:x:\n"
        "wheel:x:10";

static int resolve(const char *user, bool with_passwd, bool with_group, ImageUser *u, char *err, size_t errlen) {
        return image_user_resolve(user, with_passwd ? passwd : NULL, sizeof passwd - 1, with_group ? group : NULL,
                                  sizeof group - 1, u, err, errlen);
}

static int test_users(void) {
        ImageUser u;
        char err[256];

        CHECK_EQ(resolve("app", true, true, &u, err, sizeof err), 0);
        CHECK_EQ(u.uid, 1234);
        CHECK_EQ(u.gid, 2345);
        CHECK_STREQ(u.home, "/home/app");                       /* the first entry; \r\n is a line end */
        CHECK_EQ(resolve("root", true, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.uid, 0);
        CHECK_STREQ(u.home, "/root");
        CHECK_EQ(resolve("last", true, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.gid, 43);
        CHECK_EQ(resolve("nohome", true, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.uid, 500);
        CHECK_STREQ(u.home, "");
        CHECK_EQ(resolve("relhome", true, false, &u, err, sizeof err), 0);
        CHECK_STREQ(u.home, "");                                /* not absolute: not a HOME */
        /* a uid: its entry's group, or 0 when it has none */
        CHECK_EQ(resolve("1234", true, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.gid, 2345);
        CHECK_EQ(resolve("31337", true, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.uid, 31337);
        CHECK_EQ(u.gid, 0);
        CHECK_EQ(resolve("31337", false, false, &u, err, sizeof err), 0);
        /* groups by name and number */
        CHECK_EQ(resolve("app:staff", true, true, &u, err, sizeof err), 0);
        CHECK_EQ(u.uid, 1234);
        CHECK_EQ(u.gid, 50);
        CHECK_EQ(resolve("0:wheel", false, true, &u, err, sizeof err), 0);
        CHECK_EQ(u.gid, 10);
        CHECK_EQ(resolve("app:7", true, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.gid, 7);
        CHECK_EQ(resolve("5:6", false, false, &u, err, sizeof err), 0);
        CHECK_EQ(u.uid, 5);
        CHECK_EQ(u.gid, 6);

        /* what is not there, said so */
        CHECK_EQ(resolve("nobody", true, true, &u, err, sizeof err), -ENOENT);
        CHECK_STREQ(err, "user 'nobody' is not in the image's /etc/passwd");
        CHECK_EQ(resolve("app", false, true, &u, err, sizeof err), -ENOENT);
        CHECK(strstr(err, "has no /etc/passwd"));
        CHECK_EQ(resolve("app:nogroup", true, true, &u, err, sizeof err), -ENOENT);
        CHECK_STREQ(err, "group 'nogroup' is not in the image's /etc/group");
        CHECK_EQ(resolve("app:staff", true, false, &u, err, sizeof err), -ENOENT);
        CHECK(strstr(err, "has no /etc/group"));
        /* malformed lines never match */
        static const char *const unmatched[] = { "nis", "+nis", "bad", "neg", "big", "short", "toomany", "nul",
                                                 "root:weird" };
        for (size_t i = 0; i < ELEMENTSOF(unmatched); i++)
                if (resolve(unmatched[i], true, true, &u, err, sizeof err) != -ENOENT) {
                        printf("# '%s' resolved\n", unmatched[i]);
                        return -1;
                }
        /* malformed users */
        static const char *const malformed[] = { "", ":", "app:", ":staff", "a b", "a:b:c", "4294967295x:" };
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                if (resolve(malformed[i], true, true, &u, err, sizeof err) != -EINVAL) {
                        printf("# '%s' accepted\n", malformed[i]);
                        return -1;
                }
        char longname[300];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        CHECK_EQ(resolve(longname, true, true, &u, err, sizeof err), -EINVAL);
        /* "4294967295" is no uid: looked up as a name */
        CHECK_EQ(resolve("4294967295", true, true, &u, err, sizeof err), -ENOENT);
        return 0;
}

/* ---- layers ---- */

static char tmpl[] = "/tmp/test-image-run-XXXXXX";

static char *mfree(char *p) {
        free(p);
        return NULL;
}

static int put(const char *rel, const char *content) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpl, rel);
        FILE *f = fopen(p, "w");
        if (!f)
                return -errno;
        fputs(content, f);
        return fclose(f) == 0 ? 0 : -errno;
}

static int mk(const char *rel) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpl, rel);
        return mkdir(p, 0755) < 0 ? -errno : 0;
}

static int read_in(const char *const *layers, size_t n, const char *path, size_t max, char **ret) {
        char *full[8];
        size_t size;
        int r;

        for (size_t i = 0; i < n; i++)
                if (asprintf(&full[i], "%s/%s", tmpl, layers[i]) < 0)
                        return -ENOMEM;
        r = image_rootfs_read_file(full, n, path, max, ret, &size);
        for (size_t i = 0; i < n; i++)
                free(full[i]);
        return r;
}

#define READ(path, max, ret, ...) read_in((const char *const[]) { __VA_ARGS__ }, \
                                          ELEMENTSOF(((const char *const[]) { __VA_ARGS__ })), path, max, ret)

static int test_layers(void) {
        _cleanup_free_ char *s = NULL;
        char p[512];

        if (!mkdtemp(tmpl))
                return -1;
        /* bottom: etc/passwd; middle: nothing of etc; top: etc/group */
        CHECK_EQ(mk("bottom"), 0);
        CHECK_EQ(mk("bottom/etc"), 0);
        CHECK_EQ(put("bottom/etc/passwd", "bottom\n"), 0);
        CHECK_EQ(put("bottom/etc/group", "bottom-group\n"), 0);
        CHECK_EQ(mk("middle"), 0);
        CHECK_EQ(mk("top"), 0);
        CHECK_EQ(mk("top/etc"), 0);
        CHECK_EQ(put("top/etc/group", "top-group\n"), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "top", "middle", "bottom"), 0);
        CHECK_STREQ(s, "bottom\n");
        s = mfree(s);
        CHECK_EQ(READ("/etc/group", 100, &s, "top", "middle", "bottom"), 0);
        CHECK_STREQ(s, "top-group\n");                          /* the topmost layer decides */
        s = mfree(s);
        CHECK_EQ(READ("etc/shadow", 100, &s, "top", "middle", "bottom"), -ENOENT);
        CHECK_EQ(READ("etc/group", 5, &s, "top"), -EFBIG);      /* bounded */
        CHECK_EQ(READ("etc", 100, &s, "top"), -EISDIR);
        static const char *const bad_paths[] = { "", "/", "etc/../etc/passwd", "./etc/passwd" };
        for (size_t i = 0; i < ELEMENTSOF(bad_paths); i++)
                CHECK_EQ(READ(bad_paths[i], 100, &s, "top"), -EINVAL);

        /* symlinks are not followed: at the file, and on its way */
        CHECK_EQ(mk("link1"), 0);
        CHECK_EQ(mk("link1/etc"), 0);
        snprintf(p, sizeof p, "%s/link1/etc/passwd", tmpl);
        CHECK_EQ(symlink("/etc/shadow", p), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "link1", "bottom"), -ELOOP);
        CHECK_EQ(mk("link2"), 0);
        snprintf(p, sizeof p, "%s/link2/etc", tmpl);
        CHECK_EQ(symlink("/etc", p), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "link2", "bottom"), -ELOOP);
        /* a non-directory on the way hides what is below */
        CHECK_EQ(mk("file"), 0);
        CHECK_EQ(put("file/etc", "not a directory"), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "file", "bottom"), -ENOENT);
        /* a FIFO is never opened (it would block) */
        CHECK_EQ(mk("fifo"), 0);
        CHECK_EQ(mk("fifo/etc"), 0);
        snprintf(p, sizeof p, "%s/fifo/etc/passwd", tmpl);
        CHECK_EQ(mkfifo(p, 0644), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "fifo", "bottom"), -EPERM);

        if (geteuid() != 0)
                return tap_skip("whiteouts and opaque directories need root");
        /* a whiteout of the file, and of its directory */
        CHECK_EQ(mk("wh1"), 0);
        CHECK_EQ(mk("wh1/etc"), 0);
        snprintf(p, sizeof p, "%s/wh1/etc/passwd", tmpl);
        CHECK_EQ(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "wh1", "bottom"), -ENOENT);
        CHECK_EQ(READ("etc/group", 100, &s, "wh1", "bottom"), 0); /* the rest of etc shows */
        s = mfree(s);
        CHECK_EQ(mk("wh2"), 0);
        snprintf(p, sizeof p, "%s/wh2/etc", tmpl);
        CHECK_EQ(mknod(p, S_IFCHR | 0, makedev(0, 0)), 0);
        CHECK_EQ(READ("etc/group", 100, &s, "middle", "wh2", "bottom"), -ENOENT);
        /* another device is not a whiteout, and not read either */
        CHECK_EQ(mk("dev"), 0);
        CHECK_EQ(mk("dev/etc"), 0);
        snprintf(p, sizeof p, "%s/dev/etc/passwd", tmpl);
        CHECK_EQ(mknod(p, S_IFCHR | 0600, makedev(1, 3)), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "dev", "bottom"), -EPERM);
        /* an opaque etc ends the search in its layer */
        CHECK_EQ(mk("opaque"), 0);
        CHECK_EQ(mk("opaque/etc"), 0);
        CHECK_EQ(put("opaque/etc/group", "opaque-group\n"), 0);
        snprintf(p, sizeof p, "%s/opaque/etc", tmpl);
        CHECK_EQ(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "opaque", "bottom"), -ENOENT);
        CHECK_EQ(READ("etc/group", 100, &s, "middle", "opaque", "bottom"), 0);
        CHECK_STREQ(s, "opaque-group\n");
        s = mfree(s);
        /* user.overlay.opaque is not the union's marker: the layers below still show */
        CHECK_EQ(removexattr(p, "trusted.overlay.opaque"), 0);
        CHECK_EQ(setxattr(p, "user.overlay.opaque", "y", 1, 0), 0);
        CHECK_EQ(READ("etc/passwd", 100, &s, "opaque", "bottom"), 0);
        CHECK_STREQ(s, "bottom\n");
        return 0;
}

static void cleanup(void) {
        char cmd[600];
        if (strchr(tmpl, 'X'))
                return;
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
        (void) !system(cmd);
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(defaults_agree),
                TAP_TEST(command),
                TAP_TEST(env_workdir),
                TAP_TEST(users),
                TAP_TEST(layers),
        };
        int r = tap_run(tests, ELEMENTSOF(tests));
        cleanup();
        return r;
}
