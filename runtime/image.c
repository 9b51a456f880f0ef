/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The "host" image: an almost empty layer whose /bin, /lib, /lib64 and /sbin point into /usr (the
 * host's, bound read-only over it) and whose /etc is generated, never the host's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "rmtree.h"
#include "runtime.h"

static int write_file(int dirfd, const char *name, const char *content, mode_t mode) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        size_t n = strlen(content);

        if (fd < 0)
                return -errno;
        if (write(fd, content, n) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

int image_make_host(int dirfd, const char *name, const char *hostname) {
        static const struct {
                const char *path;
                mode_t mode;
        } dirs[] = {
                { "usr", 0755 }, { "etc", 0755 }, { "proc", 0555 }, { "dev", 0755 }, { "sys", 0555 },
                { "tmp", 01777 }, { "root", 0700 }, { "home", 0755 }, { "run", 0755 }, { "var", 0755 },
                { "var/tmp", 01777 }, { "mnt", 0755 }, { "opt", 0755 },
        };
        static const char *const usr_links[] = { "bin", "sbin", "lib", "lib64", "lib32", "libx32" };
        _cleanup_close_ int fd = -EBADF, etc = -EBADF;
        char hosts[256], hn[128];
        int r;

        if (mkdirat(dirfd, name, 0755) < 0)
                return -errno;
        fd = openat(dirfd, name, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (fd < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (mkdirat(fd, dirs[i].path, dirs[i].mode) < 0)
                        return -errno;
                /* mkdir applies the umask; these modes are exact. */
                if (fchmodat(fd, dirs[i].path, dirs[i].mode, 0) < 0)
                        return -errno;
        }
        /* The merged-usr links, for what the host's /usr has. */
        for (size_t i = 0; i < ELEMENTSOF(usr_links); i++) {
                char target[32], usrpath[32];
                snprintf(usrpath, sizeof usrpath, "/usr/%s", usr_links[i]);
                if (access(usrpath, F_OK) < 0)
                        continue;
                snprintf(target, sizeof target, "usr/%s", usr_links[i]);
                if (symlinkat(target, fd, usr_links[i]) < 0)
                        return -errno;
        }

        etc = openat(fd, "etc", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (etc < 0)
                return -errno;
        snprintf(hosts, sizeof hosts,
                 "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", hostname);
        snprintf(hn, sizeof hn, "%s\n", hostname);
        if ((r = write_file(etc, "passwd",
                            "root:x:0:0:root:/root:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0644)) < 0 ||
            (r = write_file(etc, "group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0644)) < 0 ||
            (r = write_file(etc, "hosts", hosts, 0644)) < 0 ||
            (r = write_file(etc, "hostname", hn, 0644)) < 0 ||
            (r = write_file(etc, "resolv.conf", "# No name servers: this sandbox has no network.\n", 0644)) < 0 ||
            (r = write_file(etc, "nsswitch.conf",
                            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                            "networks: files\nprotocols: files\nservices: files\n", 0644)) < 0)
                return r;
        return 0;
}

int image_ensure_host(int dirfd, const char *name, const char *hostname) {
        char tmp[64];
        uint64_t rnd = 0;
        struct stat st;
        int r;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                return 0;
        /* Built under a temporary name and renamed into place: a reader never sees half of it,
         * and of two concurrent builders one wins and the other throws its copy away. */
        (void) getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        snprintf(tmp, sizeof tmp, ".tmp-%016llx", (unsigned long long) rnd);
        r = image_make_host(dirfd, tmp, hostname);
        if (r >= 0 && renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0)
                r = errno == EEXIST ? 0 : -errno;
        else if (r >= 0)
                return 0;
        (void) rm_tree_at(dirfd, tmp);
        return r;
}
