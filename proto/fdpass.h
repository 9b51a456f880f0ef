/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The socket side of the protocol, and the only I/O in proto/: sending a frame with its descriptors
 * (SCM_RIGHTS on the frame's first byte), receiving bytes and descriptors into a WireDecoder
 * (MSG_CMSG_CLOEXEC, truncated control data refused), a blocking "read one frame" for the client, and
 * the peer's credentials (SO_PEERCRED, SO_PEERGROUPS). No logging; no policy: deciding what a peer
 * may do with its credentials is the daemon's business.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "wire.h"

#define WIRE_PEER_GROUPS_MAX 65536 /* NGROUPS_MAX */

/* Send one frame; loops over partial writes (MSG_NOSIGNAL; waits with poll() if FD is non-blocking).
 * The descriptors go with the first byte. -EMSGSIZE if SIZE > WIRE_PAYLOAD_MAX, -EINVAL if
 * N_FDS > WIRE_FDS_MAX, else -errno of sendmsg() (-EPIPE when the peer is gone). The caller keeps
 * its descriptors. */
int wire_send_frame(int fd, uint16_t type, const void *payload, size_t size, const int *fds, size_t n_fds);

/* One non-blocking sendmsg() of the first SIZE (> 0) bytes of DATA, a frame or what is left of one,
 * for an event loop that keeps what did not fit. FDS go with these bytes: pass them with a frame's
 * first byte only. Returns the number of bytes sent (> 0; the descriptors went with them), -EAGAIN
 * when the socket's buffer is full (nothing was sent), or -errno (-EPIPE: the peer is gone). The
 * caller keeps its descriptors. */
ssize_t wire_send_some(int fd, const void *data, size_t size, const int *fds, size_t n_fds);
/* One recvmsg() of at most WIRE_READ_CHUNK bytes into D, for an event loop. Returns the number of
 * bytes read (> 0), 0 at end of stream on a frame boundary, -EBADMSG at end of stream inside a frame,
 * -EMSGSIZE if descriptors were truncated (MSG_CTRUNC) or more than WIRE_FDS_MAX arrived (all that
 * arrived are closed), -EAGAIN on a non-blocking socket with nothing to read, -EBUSY (nothing read)
 * while WIRE_DECODER_QUEUE_MAX frames wait to be popped, or a decoder error (sticky). */
int wire_decoder_read_from_fd(WireDecoder *d, int fd);

/* Read exactly one frame, never any byte beyond it (so calls can follow each other on one socket).
 * -ECONNRESET if the stream ended before the frame began, else as above. *RET is the caller's. */
int wire_recv_frame_blocking(int fd, WireFrame **ret);

/* The peer's pid/uid/gid as the kernel recorded them at connect() (SO_PEERCRED). */
int wire_get_peer_cred(int fd, struct ucred *ret);
/* The peer's supplementary groups (SO_PEERGROUPS), at most WIRE_PEER_GROUPS_MAX; *ret is the caller's
 * (NULL when there are none). */
int wire_get_peer_groups(int fd, gid_t **ret, size_t *ret_n);
