/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tree removal; see rmtree.h. Library code: returns -errno, never logs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "rmtree.h"

/* Directories deeper than this below the top are moved up into the top and removed in the next
 * pass, so neither the stack nor the fd table grows with the tree. */
#define RM_TREE_FD_DEPTH 32

static void keep_first(int *r, int k) {
        if (k < 0 && k != -ENOENT && *r == 0)
                *r = k;
}

/* Move directory NAME in FD up into TOP_FD under a fresh name. */
static int move_up(int fd, const char *name, int top_fd, unsigned *moved) {
        for (unsigned tries = 0; tries < 1000; tries++) {
                char fresh[32];
                snprintf(fresh, sizeof fresh, ".rm-tree-%u", (*moved)++);
                if (renameat2(fd, name, top_fd, fresh, RENAME_NOREPLACE) == 0)
                        return 0;
                if (errno == EINVAL) {
                        /* No RENAME_NOREPLACE here; the tree is being removed, so a check will do. */
                        if (faccessat(top_fd, fresh, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                                continue;
                        return RET_NERRNO(renameat(fd, name, top_fd, fresh));
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* Empty the directory FD; the caller keeps FD. */
static int remove_children(int fd, int top_fd, unsigned depth, unsigned *moved) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int dup_fd, r = 0;

        /* readdir needs an fd of its own (FD may be O_PATH, and the DIR consumes it). */
        dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dup_fd < 0)
                return -errno;
        d = fdopendir(dup_fd);
        if (!d) {
                safe_close(dup_fd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                /* unlink removes anything but a directory as itself (symlinks too) without a stat,
                 * and says EISDIR for a directory, whatever d_type claimed. */
                if (unlinkat(fd, de->d_name, 0) == 0)
                        continue;
                if (errno != EISDIR) {
                        keep_first(&r, -errno);
                        continue;
                }
                _cleanup_close_ int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0) {
                        keep_first(&r, -errno);
                        continue;
                }
                /* Ours to remove: a read-only mode must stop neither emptying it nor moving it (a
                 * directory that changes parent needs write permission on itself, for its ".."). */
                (void) fchmod(sub, 0700);
                if (depth >= RM_TREE_FD_DEPTH) {
                        keep_first(&r, move_up(fd, de->d_name, top_fd, moved));
                        continue;
                }
                keep_first(&r, remove_children(sub, top_fd, depth + 1, moved));
                if (unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0)
                        keep_first(&r, -errno);
        }
        if (errno != 0)
                keep_first(&r, -errno);
        return r;
}

int rm_tree_children(int dir_fd) {
        unsigned moved, total = 0;
        int r;

        assert_return(dir_fd >= 0, -EINVAL);
        /* Each pass removes everything within RM_TREE_FD_DEPTH levels and moves what lies deeper up
         * into DIR_FD, so every pass makes the tree shallower; it ends when nothing had to move. */
        do {
                moved = total;
                r = remove_children(dir_fd, dir_fd, 0, &total);
                if (r < 0)
                        return r;
        } while (total != moved);
        return 0;
}

int rm_tree_at(int dirfd, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        assert_return(dirfd >= 0 || dirfd == AT_FDCWD, -EINVAL);
        assert_return(filename_is_valid(name), -EINVAL);
        if (unlinkat(dirfd, name, 0) == 0)
                return 0;
        if (errno != EISDIR)
                return -errno;
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) fchmod(fd, 0700);
        r = rm_tree_children(fd);
        if (r < 0)
                return r;
        return RET_NERRNO(unlinkat(dirfd, name, AT_REMOVEDIR));
}
