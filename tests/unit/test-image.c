/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of runtime/image.c, the generated host image, on an /etc of the test's own (the host's is
 * never touched): what is copied (allow-listed entries, symlinks as symlinks even when they point out of
 * /etc, modes without set-id bits), what is not (entries off the allow-list, files and directories
 * others may not read, fifos), that the image is reused while the source is unchanged and replaced when
 * it changes (a file written in place, a symlink switched, a mode changed), that an image in use is
 * never removed and an unused one is, that concurrent builders end with one image, the depth bound,
 * and the host name layer. The key cache: a long-lived process stops walking /etc once it watches it,
 * every kind of change still gives a new image at the next acquire, without inotify every acquire
 * walks, and a mount over an entry (no inotify event) is seen once the cache's age bound has passed.
 * Runs unprivileged (the mount in a user namespace of its own). Output is TAP.
 */
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "runtime.h"
#include "tap.h"

static char tmp_root[256];
static int n_case;

static int put(int dirfd, const char *path, const char *content, mode_t mode) {
        int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, content, strlen(content));
        int r = n == (ssize_t) strlen(content) && fchmod(fd, mode) == 0 ? 0 : -EIO;
        close(fd);
        return r;
}

static int get(int dirfd, const char *path, char *buf, size_t size) {
        int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return (int) n;
}

static bool exists(int dirfd, const char *path) {
        struct stat st;
        return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int count_images(int images_fd, const char *prefix) {
        int fd = openat(images_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        int n = 0;
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));)
                if (startswith(de->d_name, prefix))
                        n++;
        closedir(d);
        return n;
}

/* A fresh case directory with etc/ (a fake host /etc) and images/; returns 0 and the two fds. */
static int new_case(char *path, size_t size, int *ret_etc, int *ret_images) {
        snprintf(path, size, "%s/case%d", tmp_root, n_case++);
        if (mkdir(path, 0755) < 0)
                return -errno;
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || mkdirat(dfd, "etc", 0755) < 0 || mkdirat(dfd, "images", 0700) < 0 ||
            mkdirat(dfd, "outside", 0755) < 0) {
                safe_close(dfd);
                return -errno;
        }
        *ret_etc = openat(dfd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *ret_images = openat(dfd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        safe_close(dfd);
        return *ret_etc >= 0 && *ret_images >= 0 ? 0 : -errno;
}

/* A small Debian-like /etc with a trap of each kind. */
static int fill_etc(int etc, const char *outside) {
        int r = 0;
        r |= mkdirat(etc, "alternatives", 0755);
        r |= symlinkat("/usr/bin/mawk", etc, "alternatives/awk");
        r |= symlinkat("/etc/shadow", etc, "alternatives/shadow-link");
        r |= put(etc, "alternatives/README", "alternatives\n", 0644);
        r |= mkdirat(etc, "ssl", 0755);
        r |= mkdirat(etc, "ssl/certs", 0755);
        r |= put(etc, "ssl/certs/ca-certificates.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
        r |= symlinkat("ca-certificates.crt", etc, "ssl/certs/1234abcd.0");
        r |= mkdirat(etc, "ssl/private", 0710);
        r |= put(etc, "ssl/private/key.pem", "PRIVATE KEY\n", 0640);
        r |= put(etc, "ssl/openssl.cnf", "# openssl\n", 0644);
        r |= put(etc, "ld.so.cache", "glibc-ld.so.cache1.1", 0644);
        r |= put(etc, "ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n", 0644);
        r |= mkdirat(etc, "ld.so.conf.d", 0755);
        r |= put(etc, "ld.so.conf.d/x86_64.conf", "/usr/lib/x86_64-linux-gnu\n", 0644);
        r |= put(etc, "ld.so.conf.d/setid.conf", "# set-id\n", 06755);
        r |= mkfifoat(etc, "ld.so.conf.d/fifo", 0644);
        r |= put(etc, "ld.so.conf.d/private.conf", "root only\n", 0600);
        r |= symlinkat("/usr/share/zoneinfo/Asia/Tokyo", etc, "localtime");
        r |= symlinkat("../usr/lib/os-release", etc, "os-release");
        r |= mkdirat(etc, "python3.11", 0755);
        r |= put(etc, "python3.11/sitecustomize.py", "# site\n", 0644);
        r |= symlinkat(outside, etc, "perl"); /* an allow-listed name that leads out of /etc */
        r |= put(etc, "shadow", "root:$6$secret:1:0:99999:7:::\n", 0640);
        r |= put(etc, "machine-id", "0123456789abcdef0123456789abcdef\n", 0444);
        r |= put(etc, "gitconfig", "[credential]\n", 0644);
        r |= mkdirat(etc, "ssh", 0755);
        r |= put(etc, "ssh/ssh_host_ed25519_key", "PRIVATE\n", 0600);
        r |= put(etc, "passwd", "root:x:0:0:host root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
                 0644);
        return r == 0 ? 0 : -EIO;
}

static int acquire(int images, int etc, char **ret_name, int *ret_lock) {
        char why[256] = "";
        int r = image_host_acquire(images, etc, ret_name, ret_lock, why, sizeof why);
        if (r < 0)
                printf("# image_host_acquire: %s (%s)\n", why, strerror(-r));
        return r;
}

static int test_copy(void) {
        char path[PATH_MAX], outside[PATH_MAX + 16], buf[256];
        _cleanup_close_ int etc = -EBADF, images = -EBADF, lock = -EBADF, img = -EBADF;
        _cleanup_free_ char *name = NULL;
        struct stat st;

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        snprintf(outside, sizeof outside, "%s/outside", path);
        CHECK_EQ(fill_etc(etc, outside), 0);
        _cleanup_close_ int out = open(outside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK_EQ(put(out, "Config.pm", "# outside /etc\n", 0644), 0);
        CHECK_EQ(acquire(images, etc, &name, &lock), 0);
        CHECK(startswith(name, "host-") && strlen(name) == 21);
        img = openat(images, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(img >= 0);

        /* The skeleton and the generated files, not the host's. */
        CHECK_EQ(readlinkat(img, "bin", buf, sizeof buf), 7);
        CHECK_EQ(get(img, "etc/passwd", buf, sizeof buf) > 0, 1);
        CHECK(strstr(buf, "alice") == NULL && strstr(buf, "root:x:0:0:root:/root:/bin/sh"));
        CHECK_EQ(get(img, "etc/hostname", buf, sizeof buf), 8);
        CHECK_STREQ(buf, "sandbox\n");
        CHECK_EQ(readlinkat(img, "etc/mtab", buf, sizeof buf), 19);

        /* Allow-listed entries: symlinks as symlinks (never followed), files with their content. */
        ssize_t n = readlinkat(img, "etc/alternatives/awk", buf, sizeof buf - 1);
        CHECK_EQ(n, 13);
        buf[n] = '\0';
        CHECK_STREQ(buf, "/usr/bin/mawk");
        n = readlinkat(img, "etc/alternatives/shadow-link", buf, sizeof buf - 1);
        CHECK_EQ(n, 11); /* a link to a secret is a dangling link in the image: the secret is not there */
        n = readlinkat(img, "etc/localtime", buf, sizeof buf - 1);
        buf[MAX(n, 0)] = '\0';
        CHECK_STREQ(buf, "/usr/share/zoneinfo/Asia/Tokyo");
        CHECK_EQ(fstatat(img, "etc/perl", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK(S_ISLNK(st.st_mode)); /* copied as the link, not as the directory it points at */
        CHECK_EQ(get(img, "etc/ssl/certs/ca-certificates.crt", buf, sizeof buf), 28);
        CHECK_EQ(fstatat(img, "etc/ssl/certs/ca-certificates.crt", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_mode, S_IFREG | 0644);
        CHECK_EQ(get(img, "etc/ld.so.cache", buf, sizeof buf), 20);
        CHECK_EQ(get(img, "etc/python3.11/sitecustomize.py", buf, sizeof buf), 7);
        CHECK_EQ(fstatat(img, "etc/ld.so.conf.d/setid.conf", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_mode, S_IFREG | 0755); /* no set-id bits */
        CHECK_EQ(fstatat(img, "etc/ssl", &st, AT_SYMLINK_NOFOLLOW), 0);
        CHECK_EQ(st.st_mode, S_IFDIR | 0755);

        /* Left out: off the allow-list, closed to others on the host, not a file/directory/link. */
        static const char *const absent[] = {
                "etc/shadow", "etc/machine-id", "etc/gitconfig", "etc/ssh", "etc/ssl/private",
                "etc/ld.so.conf.d/fifo", "etc/ld.so.conf.d/private.conf",
        };
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                if (exists(img, absent[i])) {
                        printf("# %s is in the image\n", absent[i]);
                        return -1;
                }
        CHECK_EQ(count_images(images, ".build-"), 0);
        return 0;
}

static int test_reuse_and_follow_changes(void) {
        char path[PATH_MAX], outside[PATH_MAX + 16];
        _cleanup_close_ int etc = -EBADF, images = -EBADF, l1 = -EBADF, l2 = -EBADF, l3 = -EBADF, l4 = -EBADF,
                            l5 = -EBADF;
        _cleanup_free_ char *n1 = NULL, *n2 = NULL, *n3 = NULL, *n4 = NULL, *n5 = NULL;
        struct stat a, b;

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        snprintf(outside, sizeof outside, "%s/outside", path);
        CHECK_EQ(fill_etc(etc, outside), 0);
        CHECK_EQ(acquire(images, etc, &n1, &l1), 0);
        CHECK_EQ(fstatat(images, n1, &a, 0), 0);

        /* Unchanged (a change off the allow-list does not count): the same image, not rebuilt. */
        CHECK_EQ(put(etc, "gitconfig", "[other]\n", 0644), 0);
        CHECK_EQ(acquire(images, etc, &n2, &l2), 0);
        CHECK_STREQ(n2, n1);
        CHECK_EQ(fstatat(images, n2, &b, 0), 0);
        CHECK_EQ(b.st_ino, a.st_ino);

        /* A file written in place (same inode, same directory): a new image with the new content. */
        int fd = openat(etc, "ld.so.conf.d/x86_64.conf", O_WRONLY | O_APPEND | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(write(fd, "/opt/lib\n", 9), 9);
        close(fd);
        CHECK_EQ(acquire(images, etc, &n3, &l3), 0);
        CHECK(!streq(n3, n1));
        char buf[128];
        _cleanup_close_ int img3 = openat(images, n3, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK_EQ(get(img3, "etc/ld.so.conf.d/x86_64.conf", buf, sizeof buf), 35);
        /* The old one is still held (l1, l2): not removed. */
        CHECK(exists(images, n1));

        /* An alternative switched (a new link renamed over the old one, as update-alternatives does). */
        CHECK_EQ(symlinkat("/usr/bin/gawk", etc, "alternatives/awk.new"), 0);
        CHECK_EQ(renameat(etc, "alternatives/awk.new", etc, "alternatives/awk"), 0);
        l1 = safe_close(l1);
        l2 = safe_close(l2);
        CHECK_EQ(acquire(images, etc, &n4, &l4), 0);
        CHECK(!streq(n4, n3));
        _cleanup_close_ int img4 = openat(images, n4, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ssize_t k = readlinkat(img4, "etc/alternatives/awk", buf, sizeof buf - 1);
        CHECK_EQ(k, 13);
        buf[k] = '\0';
        CHECK_STREQ(buf, "/usr/bin/gawk");
        /* The first image was unused now: the build removed it; the held one stays. */
        CHECK(!exists(images, n1));
        CHECK(exists(images, n3));

        /* A mode change that closes a file to others: a new image without it. */
        CHECK_EQ(fchmodat(etc, "ld.so.cache", 0600, 0), 0);
        CHECK_EQ(acquire(images, etc, &n5, &l5), 0);
        CHECK(!streq(n5, n4));
        _cleanup_close_ int img5 = openat(images, n5, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(!exists(img5, "etc/ld.so.cache"));
        CHECK_EQ(count_images(images, "host-"), 3); /* n3, n4, n5: all held */
        return 0;
}

static int test_concurrent_builders(void) {
        char path[PATH_MAX], outside[PATH_MAX + 16];
        _cleanup_close_ int etc = -EBADF, images = -EBADF, lock = -EBADF;
        _cleanup_free_ char *name = NULL;
        int pipes[2];
        pid_t pids[6];

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        snprintf(outside, sizeof outside, "%s/outside", path);
        CHECK_EQ(fill_etc(etc, outside), 0);
        CHECK_EQ(pipe2(pipes, O_CLOEXEC), 0);
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                pids[i] = fork();
                CHECK(pids[i] >= 0);
                if (pids[i] == 0) {
                        char *n = NULL;
                        int l = -1;
                        char why[256];
                        if (image_host_acquire(images, etc, &n, &l, why, sizeof why) < 0)
                                _exit(1);
                        char line[64];
                        snprintf(line, sizeof line, "%-21s\n", n);
                        _exit(write(pipes[1], line, 22) == 22 ? 0 : 1);
                }
        }
        close(pipes[1]);
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                int status;
                CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        char all[22 * ELEMENTSOF(pids) + 1];
        ssize_t n = read(pipes[0], all, sizeof all);
        close(pipes[0]);
        CHECK_EQ(n, 22 * (ssize_t) ELEMENTSOF(pids));
        for (size_t i = 1; i < ELEMENTSOF(pids); i++)
                CHECK(memcmp(all, all + 22 * i, 22) == 0);
        CHECK_EQ(count_images(images, "host-"), 1);
        CHECK_EQ(count_images(images, ".build-"), 0);
        CHECK_EQ(acquire(images, etc, &name, &lock), 0);
        CHECK(memcmp(all, name, strlen(name)) == 0);
        return 0;
}

static int test_depth_bound(void) {
        char path[PATH_MAX], deep[PATH_MAX] = "ld.so.conf.d";
        _cleanup_close_ int etc = -EBADF, images = -EBADF, lock = -EBADF;
        _cleanup_free_ char *name = NULL;
        char why[256] = "";

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        CHECK_EQ(mkdirat(etc, deep, 0755), 0);
        for (int i = 0; i < 20; i++) {
                strcat(deep, "/d");
                CHECK_EQ(mkdirat(etc, deep, 0755), 0);
        }
        CHECK_EQ(image_host_acquire(images, etc, &name, &lock, why, sizeof why), -ELOOP);
        printf("# %s\n", why);
        CHECK(strstr(why, "levels deep"));
        CHECK_EQ(lock, -EBADF);
        CHECK_EQ(count_images(images, ""), 2); /* "." and "..": nothing left behind */
        return 0;
}

static int test_hostname_layer(void) {
        char path[PATH_MAX], buf[256];
        _cleanup_close_ int etc = -EBADF, images = -EBADF;
        struct stat st;

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        CHECK_EQ(image_make_hostname_layer(images, "layer", "box-1"), 0);
        _cleanup_close_ int l = openat(images, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(l >= 0);
        CHECK_EQ(get(l, "etc/hostname", buf, sizeof buf), 6);
        CHECK_STREQ(buf, "box-1\n");
        CHECK_EQ(get(l, "etc/hosts", buf, sizeof buf) > 0, 1);
        CHECK(strstr(buf, "127.0.1.1\tbox-1\n"));
        CHECK_EQ(fstatat(l, "etc", &st, 0), 0);
        CHECK_EQ(st.st_mode, S_IFDIR | 0755);
        CHECK_EQ(fstat(l, &st), 0);
        CHECK_EQ(st.st_mode, S_IFDIR | 0755);
        return 0;
}

/* Acquire and keep only the name (the lock is dropped at once); NULL on failure. */
static char *acquire_name(int images, int etc) {
        char *name = NULL;
        int lock = -EBADF;

        if (acquire(images, etc, &name, &lock) < 0)
                return NULL;
        safe_close(lock);
        return name;
}

/* A long-lived process reuses the key: the first acquire walks (and watches nothing: a one-shot process
 * holds no inotify instance), the second walks and watches, the next ones walk no more, even when /etc
 * changes off the allow-list. */
static int test_key_cache_hits(void) {
        char path[PATH_MAX], outside[PATH_MAX + 16];
        _cleanup_close_ int etc = -EBADF, images = -EBADF;
        _cleanup_free_ char *n1 = NULL, *n2 = NULL;

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        snprintf(outside, sizeof outside, "%s/outside", path);
        CHECK_EQ(fill_etc(etc, outside), 0);
        image_host_cache_reset_for_test(0, 0);
        CHECK((n1 = acquire_name(images, etc)));
        CHECK_EQ(image_host_walks_for_test(), 1);
        CHECK((n2 = acquire_name(images, etc)));
        CHECK_STREQ(n2, n1);
        CHECK_EQ(image_host_walks_for_test(), 2);
        for (int i = 0; i < 5; i++) {
                _cleanup_free_ char *n = NULL;
                if (i == 3)
                        CHECK_EQ(put(etc, "gitconfig", "[other]\n", 0644), 0);
                CHECK((n = acquire_name(images, etc)));
                CHECK_STREQ(n, n1);
                CHECK_EQ(image_host_walks_for_test(), 2);
        }
        /* Another /etc (here a directory of the same contents) is not the cached one's. */
        _cleanup_close_ int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK_EQ(mkdirat(dir, "etc2", 0755), 0);
        _cleanup_close_ int etc2 = openat(dir, "etc2", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK_EQ(put(etc2, "networks", "default 0.0.0.0\n", 0644), 0);
        _cleanup_free_ char *n3 = acquire_name(images, etc2);
        CHECK(n3 && !streq(n3, n1));
        CHECK_EQ(image_host_walks_for_test(), 3);
        return 0;
}

/* One change of each kind to the fake /etc, and where it shows in the next image. */
static int change_etc(int etc, int i, const char **ret_what, const char **ret_path, bool *ret_exists) {
        int fd, r = 0;

        switch (i) {
        case 0:
                *ret_what = "a file written in place, in a subdirectory";
                fd = openat(etc, "ld.so.conf.d/x86_64.conf", O_WRONLY | O_APPEND | O_CLOEXEC);
                r = fd >= 0 && write(fd, "/opt/lib\n", 9) == 9 ? 0 : -EIO;
                safe_close(fd);
                *ret_path = "etc/ld.so.conf.d/x86_64.conf", *ret_exists = true;
                break;
        case 1:
                *ret_what = "a new file, two levels down";
                r = put(etc, "ssl/certs/new.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
                *ret_path = "etc/ssl/certs/new.pem", *ret_exists = true;
                break;
        case 2:
                *ret_what = "a file removed";
                r = unlinkat(etc, "python3.11/sitecustomize.py", 0);
                *ret_path = "etc/python3.11/sitecustomize.py", *ret_exists = false;
                break;
        case 3:
                *ret_what = "a chmod in a subdirectory";
                r = fchmodat(etc, "ssl/openssl.cnf", 0600, 0);
                *ret_path = "etc/ssl/openssl.cnf", *ret_exists = false;
                break;
        case 4:
                *ret_what = "a rename in a subdirectory";
                r = renameat(etc, "ssl/certs/ca-certificates.crt", etc, "ssl/certs/ca.crt");
                *ret_path = "etc/ssl/certs/ca.crt", *ret_exists = true;
                break;
        case 5:
                *ret_what = "a new directory";
                r = mkdirat(etc, "ld.so.conf.d/extra", 0755);
                *ret_path = "etc/ld.so.conf.d/extra", *ret_exists = true;
                break;
        case 6:
                *ret_what = "a file in the directory new since the last walk";
                r = put(etc, "ld.so.conf.d/extra/a.conf", "/opt/a\n", 0644);
                *ret_path = "etc/ld.so.conf.d/extra/a.conf", *ret_exists = true;
                break;
        case 7:
                *ret_what = "an alternative switched (a link renamed over another)";
                r = symlinkat("/usr/bin/gawk", etc, "alternatives/awk.new");
                if (r == 0)
                        r = renameat(etc, "alternatives/awk.new", etc, "alternatives/awk");
                *ret_path = "etc/alternatives/awk.new", *ret_exists = false;
                break;
        case 8:
                *ret_what = "a new allow-listed file in /etc";
                r = put(etc, "networks", "default 0.0.0.0\n", 0644);
                *ret_path = "etc/networks", *ret_exists = true;
                break;
        case 9:
                *ret_what = "a subdirectory renamed away";
                r = renameat(etc, "python3.11", etc, "python3.11.old");
                *ret_path = "etc/python3.11", *ret_exists = false;
                break;
        default:
                return 0;
        }
        return r < 0 ? -errno : 1;
}

/* Once the cache holds a key, every change a package install may make gives a new image at the next
 * acquire, and the acquire after that reuses the new key. */
static int test_key_cache_follows_changes(void) {
        char path[PATH_MAX], outside[PATH_MAX + 16];
        _cleanup_close_ int etc = -EBADF, images = -EBADF;
        _cleanup_free_ char *prev = NULL, *again = NULL;

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        snprintf(outside, sizeof outside, "%s/outside", path);
        CHECK_EQ(fill_etc(etc, outside), 0);
        image_host_cache_reset_for_test(0, 0);
        CHECK((prev = acquire_name(images, etc)));
        CHECK((again = acquire_name(images, etc)));
        CHECK_STREQ(again, prev);
        for (int i = 0;; i++) {
                const char *what = NULL, *in_image = NULL;
                bool exists_in_image = false;
                int r = change_etc(etc, i, &what, &in_image, &exists_in_image);
                CHECK(r >= 0);
                if (r == 0)
                        break;
                unsigned walks = image_host_walks_for_test();
                _cleanup_free_ char *n = acquire_name(images, etc), *m = NULL;
                CHECK(n);
                if (streq(n, prev)) {
                        printf("# %s: the same image, %s\n", what, n);
                        return -1;
                }
                CHECK_EQ(image_host_walks_for_test(), walks + 1);
                _cleanup_close_ int img = openat(images, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                CHECK(img >= 0);
                if (exists(img, in_image) != exists_in_image) {
                        printf("# %s: %s %s in the new image\n", what, in_image,
                               exists_in_image ? "is not" : "is");
                        return -1;
                }
                /* Watching again: the next acquire reuses the new key. */
                CHECK((m = acquire_name(images, etc)));
                CHECK_STREQ(m, n);
                CHECK_EQ(image_host_walks_for_test(), walks + 1);
                free(prev);
                prev = TAKE_PTR(n);
        }
        return 0;
}

/* Without inotify (no instance: EMFILE; no watch: ENOSPC, max_user_watches), every acquire walks, as
 * before the cache, and sees every change. */
static int test_key_cache_without_inotify(void) {
        static const struct {
                int init_error, watch_error;
        } faults[] = { { -EMFILE, 0 }, { 0, -ENOSPC } };

        for (size_t f = 0; f < ELEMENTSOF(faults); f++) {
                char path[PATH_MAX], outside[PATH_MAX + 16];
                _cleanup_close_ int etc = -EBADF, images = -EBADF;
                _cleanup_free_ char *n1 = NULL, *n2 = NULL, *n3 = NULL, *n4 = NULL;

                CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
                snprintf(outside, sizeof outside, "%s/outside", path);
                CHECK_EQ(fill_etc(etc, outside), 0);
                image_host_cache_reset_for_test(faults[f].init_error, faults[f].watch_error);
                CHECK((n1 = acquire_name(images, etc)));
                CHECK((n2 = acquire_name(images, etc)));
                CHECK((n3 = acquire_name(images, etc)));
                CHECK_STREQ(n2, n1);
                CHECK_STREQ(n3, n1);
                CHECK_EQ(image_host_walks_for_test(), 3);
                CHECK_EQ(put(etc, "ssl/certs/new.pem", "-----BEGIN CERTIFICATE-----\n", 0644), 0);
                CHECK((n4 = acquire_name(images, etc)));
                CHECK(!streq(n4, n1));
                CHECK_EQ(image_host_walks_for_test(), 4);
        }
        image_host_cache_reset_for_test(0, 0);
        return 0;
}

static int write_proc(const char *file, const char *content) {
        _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC);
        return fd >= 0 && write(fd, content, strlen(content)) == (ssize_t) strlen(content) ? 0 : -errno;
}

/* In a mount namespace of its own: a file mounted over an /etc entry changes what the walk sees without
 * an inotify event; the key follows once the cache's age bound has passed. */
static int age_bound_child(const char *path, int images) {
        char target[PATH_MAX + 32], source[PATH_MAX + 32], map[64];
        uid_t uid = geteuid();
        gid_t gid = getegid();

        if (uid == 0 ? unshare(CLONE_NEWNS) < 0 : unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return TAP_SKIP;
        if (uid != 0) {
                snprintf(map, sizeof map, "%u %u 1\n", (unsigned) uid, (unsigned) uid);
                if (write_proc("/proc/self/uid_map", map) < 0 ||
                    write_proc("/proc/self/setgroups", "deny") < 0)
                        return TAP_SKIP;
                snprintf(map, sizeof map, "%u %u 1\n", (unsigned) gid, (unsigned) gid);
                if (write_proc("/proc/self/gid_map", map) < 0)
                        return TAP_SKIP;
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return TAP_SKIP;
        /* An fd opened before leads into the old namespace's mounts: not the one we mount on. */
        snprintf(target, sizeof target, "%s/etc", path);
        _cleanup_close_ int etc = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(etc >= 0);

        _cleanup_free_ char *n1 = NULL, *n2 = NULL, *n3 = NULL, *n4 = NULL;
        image_host_cache_reset_for_test(0, 0);
        CHECK((n1 = acquire_name(images, etc)));
        CHECK((n2 = acquire_name(images, etc)));
        CHECK_EQ(image_host_walks_for_test(), 2);
        snprintf(source, sizeof source, "%s/outside/ld.so.cache", path);
        snprintf(target, sizeof target, "%s/etc/ld.so.cache", path);
        CHECK_EQ(put(AT_FDCWD, source, "another ld.so.cache", 0644), 0);
        CHECK_EQ(mount(source, target, NULL, MS_BIND, NULL), 0);
        /* Within the bound: no event, no walk, the old key. */
        CHECK((n3 = acquire_name(images, etc)));
        CHECK_STREQ(n3, n1);
        CHECK_EQ(image_host_walks_for_test(), 2);
        /* Past it: a walk, which sees the mount. */
        image_host_cache_max_age_for_test(0);
        CHECK((n4 = acquire_name(images, etc)));
        CHECK(!streq(n4, n1));
        CHECK_EQ(image_host_walks_for_test(), 3);
        _cleanup_close_ int img = openat(images, n4, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char buf[64];
        CHECK_EQ(get(img, "etc/ld.so.cache", buf, sizeof buf), 19);
        return 0;
}

static int test_key_cache_age_bound(void) {
        char path[PATH_MAX], outside[PATH_MAX + 16];
        _cleanup_close_ int etc = -EBADF, images = -EBADF;
        int status;

        CHECK_EQ(new_case(path, sizeof path, &etc, &images), 0);
        snprintf(outside, sizeof outside, "%s/outside", path);
        CHECK_EQ(fill_etc(etc, outside), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                int r = age_bound_child(path, images);
                fflush(stdout);
                _exit(r == 0 ? 0 : r == TAP_SKIP ? TAP_SKIP : 1);
        }
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        if (WEXITSTATUS(status) == TAP_SKIP)
                return tap_skip("no mount namespace of our own");
        CHECK_EQ(WEXITSTATUS(status), 0);
        return 0;
}

int main(void) {
        static const TapTest tests[] = {
                TAP_TEST(copy),
                TAP_TEST(reuse_and_follow_changes),
                TAP_TEST(concurrent_builders),
                TAP_TEST(depth_bound),
                TAP_TEST(hostname_layer),
                TAP_TEST(key_cache_hits),
                TAP_TEST(key_cache_follows_changes),
                TAP_TEST(key_cache_without_inotify),
                TAP_TEST(key_cache_age_bound),
        };
        if (tap_scratch_dir(tmp_root, sizeof tmp_root, "test-image") < 0)
                return 1;
        int r = tap_run(tests, ELEMENTSOF(tests));
        tap_remove_tree(tmp_root);
        return r;
}
