/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sandboxes that outlive the process that made them (sandboxd restarting, or crashing): sandbox_detach()
 * and sandbox_adopt() (sandbox.h).
 *
 * The keeper is a small process of the host, forked by sandbox_detach(), that holds what the sandbox's
 * life needs and that would otherwise go with its maker: the locks of its state and data directories
 * (a free lock means "stale" to sandbox_cleanup_stale()), its host id range, its upper's lock, its image's
 * pin, its network lease and reserved host ports, and the read end of its union server's quota pipe. It
 * holds nothing else (every other descriptor is closed), runs no code but poll(), and ends when the init
 * ends, or when its maker says so (a 'q' on its socket, sandbox_keeper_done()). A maker that dies closes
 * the socket without a 'q': the keeper then waits for the init alone. The init itself was told
 * (CHILD_REQUEST_DETACH) to outlive its maker.
 *
 * The record, STATE/ID/record (runtime/record.h), says what an adopter needs: the pids and start times of
 * the init, the union's server and the keeper (a pid reused by another process is never taken for
 * them), the host id range, the network lease, the seccomp program, the capabilities and the spec. It is
 * written with a temp name, fsync and rename, in the state directory (root's only), and read back as
 * untrusted input all the same (record_decode() bounds and checks every field, and is fuzzed).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "macro.h"
#include "msg.h"
#include "record.h"
#include "sandbox-internal.h"
#include "time-util.h"

#define KEEPER_QUIT 'q'
/* How long an adopter waits for a keeper to go once the init is gone. */
#define KEEPER_WAIT_MSEC 5000

static int pidfd_open_pid(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

/* Field 22 of /proc/PID/stat: when it started, in clock ticks after boot. */
static int process_start_time(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024];
        _cleanup_close_ int fd = -EBADF;
        unsigned long long v;
        ssize_t n;
        char *p;

        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return n < 0 ? -errno : -EIO;
        buf[n] = '\0';
        /* "pid (comm) state ..."; comm may hold anything: the last ')' ends it. Field 3 is the state. */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        p++;
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EIO;
        }
        if (sscanf(p, " %llu", &v) != 1)
                return -EIO;
        *ret = v;
        return 0;
}

/* A pidfd for the process the record names, or -ESRCH if that process is gone (its pid may be another's
 * now: the start time says). The pidfd first, then the check: the pidfd then refers to the process
 * checked. */
static int open_recorded(const RecordProcess *p) {
        _cleanup_close_ int fd = pidfd_open_pid(p->pid);
        uint64_t start;

        if (fd < 0)
                return -errno == -ESRCH ? -ESRCH : -errno;
        if (process_start_time(p->pid, &start) < 0 || start != p->start_time)
                return -ESRCH;
        return TAKE_FD(fd);
}

static int record_process(pid_t pid, RecordProcess *ret) {
        uint64_t start;
        int r = process_start_time(pid, &start);

        if (r < 0)
                return r;
        *ret = (RecordProcess) { .pid = pid, .start_time = start };
        return 0;
}

/* The keeper's life: poll() until the init ends or the maker says so. Only system calls: it is a copy of
 * one thread of a possibly threaded process. */
_Noreturn static void keeper_run(int init_pidfd, int sock, int *keep, size_t n_keep) {
        struct pollfd p[2] = {
                { .fd = init_pidfd, .events = POLLIN },
                { .fd = sock, .events = POLLIN },
        };
        sigset_t all;

        (void) setsid();
        sigfillset(&all);
        /* SIGKILL stays: an adopter that must end it can. */
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        if (close_all_fds_but(keep, n_keep) < 0)
                _exit(1);
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (p[0].revents)
                        _exit(0);
                if (p[1].revents) {
                        char c;
                        ssize_t k = read(sock, &c, 1);
                        if (k == 1 && c == KEEPER_QUIT)
                                _exit(0);
                        if (k <= 0 && !(k < 0 && errno == EINTR))
                                p[1].fd = -1; /* the maker is gone: the init alone says when */
                }
        }
}

static int write_record(Sandbox *s, const void *owner, size_t owner_size) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_close_ int fd = -EBADF;
        SandboxRecord r = {
                .host_first = s->host_first,
                .upper_work = s->upper_work,
                .image_id = (char *) sandbox_image_id(s),
                .cap_set = s->cap_set,
                .quota = s->quota_fd >= 0,
                .created_usec = s->created_realtime_usec,
                .owner = (uint8_t *) owner,
                .owner_size = owner_size,
                .spec = *s->spec,
                .net_mode = s->spec->net,
        };
        int k;

        snprintf(r.id, sizeof r.id, "%s", s->id);
        if ((k = record_process(s->pid, &r.init)) < 0 || (k = record_process(s->server_pid, &r.server)) < 0 ||
            (k = record_process(s->keeper_pid, &r.keeper)) < 0)
                return k;
        if (s->lease) {
                r.net_address = net_lease_address(s->lease).s_addr;
                r.net_table = (char *) net_lease_table(s->lease);
        }
        if (s->filter) {
                const struct sock_fprog *f = filter_program_fprog(s->filter);
                r.filter = (uint8_t *) f->filter;
                r.filter_size = (size_t) f->len * sizeof(struct sock_filter);
        }
        /* The record's spec is the resolved one; tmpfs sizes and all are in it already. bind_fds are
         * descriptors of the past: the binds are mounted. */
        r.spec.bind_fds = NULL;
        k = record_encode(&r, &b);
        if (k < 0)
                return k;
        fd = openat(s->dir_fd, "record.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < b.size;) {
                ssize_t n = write(fd, b.data + off, b.size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                off += (size_t) n;
        }
        if (fsync(fd) < 0 || renameat(s->dir_fd, "record.tmp", s->dir_fd, "record") < 0)
                return -errno;
        return fsync(s->dir_fd) < 0 ? -errno : 0;
}

int sandbox_detach(Sandbox *s, const void *owner, size_t owner_size, SandboxError *err) {
        _cleanup_close_ int keeper_end = -EBADF;
        int keep[16 + 64], sp[2], n_keep = 0, r;
        char req = CHILD_REQUEST_DETACH;
        pid_t pid;

        if (s->detached)
                return 0;
        if (!s->idle || s->finished || s->collected || s->pid <= 0 || s->server_pid <= 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Only a live sandbox without a program of its own "
                                         "can outlive its maker");
        if (owner_size > RECORD_OWNER_MAX)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "The record's owner data is too large");
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "socketpair: %m");
        s->keeper_sock = sp[0];
        keeper_end = sp[1];

        /* What the keeper holds: dups would do as well, but these are ours until it forked. */
        int fds[] = { s->lock_fd, s->idlock_fd, s->data_lock_fd, s->upper_lock_fd, s->image_lock_fd,
                      s->image_run ? image_run_pin_fd(s->image_run) : -EBADF, s->quota_fd, s->pidfd, keeper_end };
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (fds[i] >= 0)
                        keep[n_keep++] = fds[i];
        n_keep += (int) net_lease_fds(s->lease, keep + n_keep, ELEMENTSOF(keep) - (size_t) n_keep);

        pid = (pid_t) syscall(SYS_clone, (unsigned long) SIGCHLD, 0UL, 0UL, 0UL, 0UL);
        if (pid < 0)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot start the sandbox's keeper: %m");
        if (pid == 0)
                keeper_run(s->pidfd, keeper_end, keep, (size_t) n_keep);
        s->keeper_pid = pid;
        s->keeper_pidfd = pidfd_open_pid(pid);

        /* From now on the init does not end with us (nor with its status socket). */
        if (send(s->status_fd, &req, 1, MSG_NOSIGNAL) != 1) {
                r = -errno;
                sandbox_keeper_done(s);
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot tell the sandbox's init to outlive us: %s",
                                         strerror(-r));
        }
        r = write_record(s, owner, owner_size);
        if (r < 0) {
                sandbox_keeper_done(s);
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot write the sandbox's record: %s",
                                         strerror(-r));
        }
        s->detached = true;
        return 0;
}

Sandbox *sandbox_forget(Sandbox *s) {
        if (!s)
                return NULL;
        if (!s->detached)
                return sandbox_free(s);
        /* Our end of the keeper's socket closes without a 'q': it keeps holding. */
        s->keeper_sock = safe_close(s->keeper_sock);
        s->keeper_pid = 0;
        s->pid = s->server_pid = 0;
        s->finished = s->collected = true;
        s->lease = net_lease_forget(s->lease);
        return sandbox_free(s);
}

void sandbox_keeper_done(Sandbox *s) {
        if (s->keeper_sock >= 0) {
                char q = KEEPER_QUIT;
                (void) !write(s->keeper_sock, &q, 1);
        }
        s->keeper_sock = safe_close(s->keeper_sock);
        if (s->keeper_pid > 0) {
                siginfo_t si;
                struct pollfd p = { .fd = s->keeper_pidfd, .events = POLLIN };

                if (!s->adopted && s->keeper_pidfd >= 0)
                        (void) waitid(P_PIDFD, (id_t) s->keeper_pidfd, &si, WEXITED);
                else if (!s->adopted)
                        (void) waitpid(s->keeper_pid, NULL, 0);
                else if (s->keeper_pidfd >= 0 && poll(&p, 1, KEEPER_WAIT_MSEC) <= 0)
                        /* It ends with the init, which is gone: if it did not, it must. */
                        (void) syscall(SYS_pidfd_send_signal, s->keeper_pidfd, SIGKILL, NULL, 0);
        }
        s->keeper_pid = 0;
        s->keeper_pidfd = safe_close(s->keeper_pidfd);
}

/* An adoption that failed: SIGKILL to what of it is verified to be its own (its cgroup's members, the
 * processes whose pidfds we hold), so that nothing runs unwatched; the stale clean-up removes the rest once
 * the keeper has let go of its locks (it ends with the init). Frees S without touching its directories. */
static void adopt_fail(const char *id, Sandbox *s) {
        Cgroup *cg = s->cgroup;
        char name[64];

        if (!cg) {
                snprintf(name, sizeof name, "sandbox-%s", id);
                if (cgroup_open(name, &cg) < 0)
                        cg = NULL;
        }
        if (cg)
                (void) cgroup_kill_all(cg);
        if (cg != s->cgroup)
                cgroup_free(cg);
        for (int *fd = (int[]) { s->pidfd, s->server_pidfd, s->keeper_pidfd }, i = 0; i < 3; i++)
                if (fd[i] >= 0)
                        (void) syscall(SYS_pidfd_send_signal, fd[i], SIGKILL, NULL, 0);
        s->pid = s->server_pid = s->keeper_pid = 0;
        s->finished = s->collected = true;
        /* The keeper ends with the init; its locks then free the sandbox for the stale clean-up. Wait for
         * that a moment (a keeper we could not verify is never signalled). */
        if (s->dir_fd >= 0) {
                _cleanup_close_ int lock = openat(s->dir_fd, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
                for (int i = 0; lock >= 0 && i < 100; i++) {
                        if (flock(lock, LOCK_EX | LOCK_NB) >= 0) {
                                (void) flock(lock, LOCK_UN);
                                break;
                        }
                        (void) usleep(30 * 1000);
                }
        }
        sandbox_free(s);
}

int sandbox_adopt(const SandboxConfig *cfg, const char *id, Sandbox **ret, void **ret_owner, size_t *ret_owner_size,
                  SandboxError *err) {
        _cleanup_(record_done) SandboxRecord rec = {};
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int data_dir = -EBADF;
        const char *e = NULL;
        char name[64];
        size_t size = 0;
        Sandbox *s;
        int r;

        if (!msg_id_is_valid(id))
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Not a sandbox id");
        s = sandbox_new(cfg);
        if (!s)
                return sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
        snprintf(s->id, sizeof s->id, "%s", id);
        s->adopted = s->detached = s->idle = true;
        s->start_usec = now_usec();

        s->state_fd = open(s->state_dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (s->state_fd < 0 ||
            (s->dir_fd = openat(s->state_fd, id, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY)) < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot open its state directory: %m");
                goto fail;
        }
        r = read_file_at(s->dir_fd, "record", RECORD_SIZE_MAX, &data, &size);
        if (r < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot read its record: %s", strerror(-r));
                goto fail;
        }
        r = record_decode(data, size, &rec, &e);
        if (r >= 0 && !streq(rec.id, id))
                r = -EBADMSG, e = "the record is another sandbox's";
        if (r < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Its record is invalid: %s", e ?: strerror(-r));
                goto fail;
        }
        /* Its processes, each checked to be the one recorded. */
        s->pidfd = open_recorded(&rec.init);
        s->server_pidfd = open_recorded(&rec.server);
        s->keeper_pidfd = open_recorded(&rec.keeper);
        if (s->pidfd < 0 || s->server_pidfd < 0 || s->keeper_pidfd < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Its %s is gone",
                                      s->pidfd < 0 ? "init" : s->server_pidfd < 0 ? "file system's server" : "keeper");
                goto fail;
        }
        s->pid = rec.init.pid;
        s->server_pid = rec.server.pid;
        s->keeper_pid = rec.keeper.pid;
        s->host_first = rec.host_first;
        s->cap_set = rec.cap_set;
        s->created_realtime_usec = rec.created_usec ?: realtime_usec();

        s->owned_spec = malloc(sizeof *s->owned_spec);
        if (!s->owned_spec) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
                goto fail;
        }
        *s->owned_spec = rec.spec;
        rec.spec = (SandboxSpec) {};
        s->resolved = *s->owned_spec;
        s->spec = &s->resolved;
        s->memory_default = false;
        s->pids_default = false;
        if (rec.image_id && !(s->image_id = strdup(rec.image_id))) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
                goto fail;
        }
        if (rec.upper_work && !(s->upper_work = strdup(rec.upper_work))) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
                goto fail;
        }
        if (rec.filter_size > 0) {
                r = filter_program_from_bpf(rec.filter, rec.filter_size, &s->filter);
                if (r < 0) {
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Its seccomp program is invalid");
                        goto fail;
                }
        }
        snprintf(name, sizeof name, "sandbox-%s", id);
        r = cgroup_open(name, &s->cgroup);
        if (r < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Cannot open its cgroup: %s", strerror(-r));
                goto fail;
        }
        if (rec.net_table) {
                struct in_addr a = { .s_addr = rec.net_address };
                s->lease = net_lease_restore(rec.net_table, id, a);
                if (!s->lease) {
                        r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "Out of memory");
                        goto fail;
                }
        }
        /* DATA/sandboxes/ID: its upper, removed with it. */
        data_dir = open(s->data_dir, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (data_dir >= 0)
                s->sandboxes_fd = openat(data_dir, "sandboxes", O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        if (s->sandboxes_fd >= 0)
                s->data_fd = openat(s->sandboxes_fd, id, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
        s->wait_fd = epoll_create1(EPOLL_CLOEXEC);
        if (s->wait_fd < 0 ||
            epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, s->pidfd, &(struct epoll_event) { .events = EPOLLIN }) < 0 ||
            epoll_ctl(s->wait_fd, EPOLL_CTL_ADD, s->server_pidfd, &(struct epoll_event) { .events = EPOLLIN }) < 0) {
                r = sandbox_set_error(err, SANDBOX_EXIT_SETUP, "epoll: %m");
                goto fail;
        }
        if (ret_owner) {
                *ret_owner = TAKE_PTR(rec.owner);
                *ret_owner_size = rec.owner_size;
        }
        *ret = s;
        return 0;
fail:
        /* Nothing of it may live on unwatched: end what is left of it (the keeper goes with the init), so
         * that the stale clean-up removes the rest. */
        adopt_fail(id, s);
        return r;
}
