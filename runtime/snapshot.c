/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox_snapshot(); see sandbox-snapshot.h. The union's mount lives in the sandbox's mount namespace
 * only; we reach its root as host root through the init's /proc/PID/root (the init never changes its root
 * after pivot_root), check that the init is still the one of our pidfd (so the pid was not reused) and
 * that the directory is a FUSE mount's root, and talk to the server with the ioctl of its control ABI
 * (unionfs/control.h: the server's interface, like its command line; the runtime links nothing of the
 * union). Freezing the programs first makes the snapshot hold every write they completed: with the
 * writeback cache, data written just before may still be in the kernel only, so it is written back
 * (syncfs) while nothing can write more. Nothing here logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "control.h"
#include "macro.h"
#include "sandbox-internal.h"
#include "sandbox-snapshot.h"
#include "time-util.h"

static const char *snapshot_error(int e) {
        switch (e) {
        case EEXIST:
                return "the destination exists";
        case EXDEV:
                return "the destination is on a FUSE file system";
        case EOPNOTSUPP:
                return "the sandbox's union takes no snapshots";
        case ELOOP:
                return "the sandbox's changes are deeper than 256 directories";
        default:
                return strerror(e);
        }
}

int sandbox_snapshot(Sandbox *s, const char *dest, unsigned flags, SandboxSnapshotResult *ret, SandboxError *err) {
        _cleanup_close_ int root_fd = -EBADF;
        _cleanup_free_ struct unionfs_snapshot_req *req = NULL;
        SandboxSnapshotResult res = {};
        char proc[64];
        struct statfs sfs;
        struct stat st, pst;
        uint64_t t0 = 0;
        int r, e = 0;

        if (!dest || dest[0] != '/' || strlen(dest) >= PATH_MAX) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The snapshot's destination must be an absolute path "
                                  "shorter than %d bytes", PATH_MAX);
                return -EINVAL;
        }
        if (s->finished || s->collected || s->pidfd < 0 || s->pid <= 0) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The sandbox has ended");
                return -ESRCH;
        }
        snprintf(proc, sizeof proc, "/proc/%d/root", (int) s->pid);
        root_fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0 || syscall(SYS_pidfd_send_signal, s->pidfd, 0, NULL, 0) < 0) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The sandbox has ended");
                return -ESRCH;
        }
        /* Its root, served by our union: a FUSE mount whose root is the init's root (".." leaves the mount, or
         * stays where it is at the top of the sandbox's mount namespace). */
        _cleanup_close_ int parent_fd = openat(root_fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fstatfs(root_fd, &sfs) < 0 || (unsigned long) sfs.f_type != UNIONFS_FUSE_SUPER_MAGIC ||
            parent_fd < 0 || fstat(root_fd, &st) < 0 || fstat(parent_fd, &pst) < 0 ||
            (st.st_dev == pst.st_dev && st.st_ino != pst.st_ino)) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The sandbox's root is not its union");
                return -EOPNOTSUPP;
        }

        req = calloc(1, sizeof *req);
        if (!req)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        req->version = UNIONFS_SNAPSHOT_VERSION;
        memcpy(req->dest, dest, strlen(dest) + 1);

        /* Freeze: on -ETIMEDOUT the freezing goes on (a program inside a long request of the union); the
         * snapshot is still one instant of the union, taken then. */
        if (s->cgroup && !(flags & SANDBOX_SNAPSHOT_KEEP_FROZEN)) {
                t0 = now_usec();
                r = cgroup_child_freeze(s->cgroup, CGROUP_CHILD_PROGRAM, true);
                res.frozen = r >= 0;
                if (r < 0 && r != -ETIMEDOUT && r != -EOPNOTSUPP)
                        return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot freeze the sandbox: %s",
                                                 strerror(-r));
        } else if (flags & SANDBOX_SNAPSHOT_KEEP_FROZEN)
                res.frozen = true;

        /* Written back twice: syncfs() reports a writeback error once per descriptor, after the whole pass. */
        if (syncfs(root_fd) < 0 && syncfs(root_fd) < 0)
                e = errno;
        else if (ioctl(root_fd, UNIONFS_IOC_SNAPSHOT, req) < 0)
                e = errno;

        if (t0 > 0) {
                r = cgroup_child_freeze(s->cgroup, CGROUP_CHILD_PROGRAM, false);
                res.pause_usec = now_usec() - t0;
                if (r < 0 && e == 0) {
                        sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot thaw the sandbox after its snapshot: %s",
                                          strerror(-r));
                        return r;
                }
        }
        if (e != 0) {
                sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot snapshot the sandbox to '%s': %s", dest,
                                  snapshot_error(e));
                return -e;
        }
        res.union_pause_ns = req->pause_ns;
        res.entries = req->entries;
        if (ret)
                *ret = res;
        return 0;
}
