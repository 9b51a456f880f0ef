/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Frames over a unix stream socket (see fdpass.h). Descriptors are attached with SCM_RIGHTS to the
 * sendmsg() that carries a frame's header, so the kernel queues them with the frame's first byte. On
 * receipt, Linux returns a unix stream socket's descriptors with the read that reaches the first byte
 * they were sent with, and ends that read after the buffer that carried them: the descriptors of one
 * read belong to the last frame that begins within it, which is what WireDecoder assumes.
 * Every descriptor is received with MSG_CMSG_CLOEXEC, and a control buffer with room for little more
 * than WIRE_FDS_MAX: a peer that sends more makes the kernel set MSG_CTRUNC (and drop the rest), and
 * the read fails after closing what did arrive.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fdpass.h"
#include "macro.h"

static int wait_fd(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };

        for (;;) {
                int r = poll(&p, 1, -1);
                if (r >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

typedef union FdControl {
        struct cmsghdr h;
        uint8_t buf[CMSG_SPACE(sizeof(int) * WIRE_FDS_MAX)];
} FdControl;

/* Attach N_FDS (at most WIRE_FDS_MAX) descriptors to MH as SCM_RIGHTS, in CONTROL. */
static void attach_fds(struct msghdr *mh, FdControl *control, const int *fds, size_t n_fds) {
        struct cmsghdr *cm;

        mh->msg_control = control->buf;
        mh->msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        cm = CMSG_FIRSTHDR(mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
}

int wire_send_frame(int fd, uint16_t type, const void *payload, size_t size, const int *fds, size_t n_fds) {
        FdControl control = {};
        uint8_t header[WIRE_HEADER_SIZE];
        struct iovec iov[2];
        size_t left;
        bool fds_sent = n_fds == 0;

        assert_return(fd >= 0, -EBADF);
        assert_return(payload || size == 0, -EINVAL);
        assert_return(fds || n_fds == 0, -EINVAL);
        if (size > WIRE_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (n_fds > WIRE_FDS_MAX)
                return -EINVAL;

        wire_header_pack(type, (uint32_t) size, header);
        iov[0] = (struct iovec) { .iov_base = header, .iov_len = sizeof header };
        iov[1] = (struct iovec) { .iov_base = (void *) payload, .iov_len = size };
        left = sizeof header + size;

        while (left > 0) {
                struct msghdr mh = {
                        .msg_iov = iov[0].iov_len > 0 ? iov : iov + 1,
                        .msg_iovlen = iov[0].iov_len > 0 ? 2 : 1,
                };
                ssize_t n;

                if (!fds_sent)
                        attach_fds(&mh, &control, fds, n_fds);

                n = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (n < 0) {
                        int r = -errno;
                        if (r == -EINTR)
                                continue;
                        if (r == -EAGAIN) {
                                r = wait_fd(fd, POLLOUT);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return r;
                }
                fds_sent = true;
                left -= (size_t) n;
                for (size_t i = 0; i < 2 && n > 0; i++) {
                        size_t k = MIN((size_t) n, iov[i].iov_len);
                        iov[i].iov_base = (uint8_t *) iov[i].iov_base + k;
                        iov[i].iov_len -= k;
                        n -= (ssize_t) k;
                }
        }
        return 0;
}

ssize_t wire_send_some(int fd, const void *data, size_t size, const int *fds, size_t n_fds) {
        FdControl control = {};
        struct iovec iov = { .iov_base = (void *) data, .iov_len = size };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        assert_return(fd >= 0, -EBADF);
        assert_return(data && size > 0, -EINVAL);
        assert_return(fds || n_fds == 0, -EINVAL);
        if (n_fds > WIRE_FDS_MAX)
                return -EINVAL;
        if (n_fds > 0)
                attach_fds(&mh, &control, fds, n_fds);
        do
                n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n;
}

/* One recvmsg() of at most MAX bytes, fed to D with the descriptors that came with it. */
static int read_some(WireDecoder *d, int fd, size_t max) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * WIRE_FDS_MAX)];
        } control;
        /* Room for every descriptor the control buffer can hold, even past WIRE_FDS_MAX. */
        int fds[sizeof control / sizeof(int)];
        size_t n_fds = 0;
        _cleanup_free_ uint8_t *buf = NULL;
        struct iovec iov;
        struct msghdr mh;
        ssize_t n;
        int r;

        r = wire_decoder_error(d);
        if (r < 0)
                return r;
        max = MIN(max, (size_t) WIRE_READ_CHUNK);
        assert(max > 0);
        buf = malloc(max);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                iov = (struct iovec) { .iov_base = buf, .iov_len = max };
                mh = (struct msghdr) {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf,
                };
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n >= 0)
                        break;
                if (errno != EINTR)
                        return -errno;
        }

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                size_t k;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue; /* e.g. SCM_CREDENTIALS: holds no resources */
                k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int x;
                        memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                        if (n_fds < ELEMENTSOF(fds))
                                fds[n_fds++] = x;
                        else
                                safe_close(x);
                }
        }

        if ((mh.msg_flags & MSG_CTRUNC) || n_fds > WIRE_FDS_MAX) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                return wire_decoder_set_error(d, -EMSGSIZE);
        }
        if (n == 0) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                if (!wire_decoder_at_boundary(d))
                        return wire_decoder_set_error(d, -EBADMSG); /* a truncated frame */
                return 0;
        }

        r = wire_decoder_feed(d, buf, (size_t) n, fds, n_fds);
        if (r < 0)
                return r;
        return (int) n;
}

int wire_decoder_read_from_fd(WireDecoder *d, int fd) {
        assert_return(d, -EINVAL);
        assert_return(fd >= 0, -EBADF);

        if (wire_decoder_queued(d) >= WIRE_DECODER_QUEUE_MAX)
                return -EBUSY;
        return read_some(d, fd, WIRE_READ_CHUNK);
}

int wire_recv_frame_blocking(int fd, WireFrame **ret) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = NULL;

        assert_return(fd >= 0, -EBADF);
        assert_return(ret, -EINVAL);

        d = wire_decoder_new();
        if (!d)
                return -ENOMEM;

        for (;;) {
                WireFrame *f;
                int r;

                r = wire_decoder_pop(d, &f);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret = f;
                        return 0;
                }
                /* Ask for no more than completes this frame: the next one stays in the socket. */
                r = read_some(d, fd, wire_decoder_wanted(d));
                if (r == -EAGAIN) {
                        r = wait_fd(fd, POLLIN);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ECONNRESET;
        }
}

int wire_get_peer_cred(int fd, struct ucred *ret) {
        struct ucred uc = {};
        socklen_t len = sizeof uc;

        assert_return(fd >= 0, -EBADF);
        assert_return(ret, -EINVAL);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        if (len != sizeof uc)
                return -EIO;
        *ret = uc;
        return 0;
}

int wire_get_peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        socklen_t len = 64 * sizeof(gid_t);

        assert_return(fd >= 0, -EBADF);
        assert_return(ret && ret_n, -EINVAL);

        /* The list may grow between the calls (it cannot in practice: it is fixed at connect()). */
        for (unsigned attempt = 0; attempt < 4; attempt++) {
                _cleanup_free_ gid_t *g = NULL;
                socklen_t n = len;

                g = malloc(len);
                if (!g)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &n) >= 0) {
                        if (n % sizeof(gid_t) != 0 || n > len)
                                return -EIO;
                        *ret_n = n / sizeof(gid_t);
                        *ret = n > 0 ? TAKE_PTR(g) : NULL;
                        return 0;
                }
                if (errno != ERANGE)
                        return -errno;
                /* The kernel wrote the size it needs into N. */
                if (n <= len || n > WIRE_PEER_GROUPS_MAX * sizeof(gid_t))
                        return -E2BIG;
                len = n;
        }
        return -EAGAIN;
}
