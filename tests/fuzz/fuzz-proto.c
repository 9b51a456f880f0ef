/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the protocol's parsers (proto/wire.c, proto/msg.c): what sandboxd reads from any
 * local user. The input is a byte stream as it would arrive on the socket. It is fed to one
 * WireDecoder at once and to another in chunks of pseudo-random sizes (derived from the input), the
 * first chunk carrying three descriptors (duplicates of /dev/null). Every frame is then decoded by
 * every message decoder (the frame's type set to each in turn).
 * Properties: chunking changes nothing (the same frames, the same final error); decoder errors are
 * the documented ones and come with a message; whatever a decoder accepts re-encodes, and decoding
 * that encoding gives the same encoding again (a canonical form); no descriptor outlives its frame
 * or message. ASan/LSan catch the rest (overreads, leaks).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/msg.h"
#include "proto/wire.h"
#include "fuzz.h"

/* Room for a few frames of a realistic EXEC; larger payloads only take longer to say the same. */
#define FUZZ_MAX_INPUT (256 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
static int devnull = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        ASSERT(devnull >= 0);
        return 0;
}

static uint64_t rng;

/* Which of the descriptors 0..FD_PROBE-1 are open: a leak shows as one more at the end of an input. */
#define FD_PROBE 128

static void open_fds(bool ret[static FD_PROBE]) {
        for (int fd = 0; fd < FD_PROBE; fd++)
                ret[fd] = fcntl(fd, F_GETFD) >= 0;
}

static uint64_t next_random(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static bool is_frame_error(int r) {
        return r == -EBADMSG || r == -EMSGSIZE || r == -EPROTO;
}

static bool is_decode_error(int type, int r) {
        return r == -EBADMSG || r == -EMSGSIZE || r == -ENOMEM ||
               ((type == MSG_EXEC || type == MSG_CREATE) && r == -EINVAL);
}

/* A frame of TYPE holding a copy of B, and N_FDS fresh descriptors. */
static WireFrame *frame_from_buffer(uint16_t type, const WireBuffer *b, size_t n_fds) {
        WireFrame *f = calloc(1, sizeof *f);

        ASSERT(f);
        f->type = type;
        f->size = b->size;
        if (b->size > 0) {
                f->payload = malloc(b->size);
                ASSERT(f->payload);
                memcpy(f->payload, b->data, b->size);
        }
        for (size_t i = 0; i < WIRE_FDS_MAX; i++)
                f->fds[i] = -EBADF;
        for (size_t i = 0; i < n_fds; i++) {
                f->fds[i] = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
                ASSERT(f->fds[i] >= 0);
        }
        f->n_fds = n_fds;
        return f;
}

static bool buffers_equal(const WireBuffer *a, const WireBuffer *b) {
        return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

/* Decode F as TYPE (F's own type is restored); if it decodes, encode the result into *ENCODED (when
 * not NULL) and return 0. */
static int decode_and_encode(WireFrame *f, uint16_t type, WireBuffer *encoded) {
        uint16_t saved = f->type;
        const char *error = NULL;
        WireBuffer scratch = {};
        WireBuffer *out = encoded ?: &scratch;
        int r = 0;

        f->type = type;
        switch (type) {
        case MSG_HELLO: {
                MsgHello m;
                r = msg_hello_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_hello_encode(&m, out) == 0);
                break;
        }
        case MSG_HELLO_REPLY: {
                MsgHelloReply m;
                r = msg_hello_reply_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_hello_reply_encode(&m, out) == 0);
                break;
        }
        case MSG_EXEC: {
                MsgExec m;
                r = msg_exec_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(f->n_fds == 0);
                        for (size_t i = 0; i < 3; i++)
                                ASSERT(m.spec.tty ? m.stdio[i] < 0 : m.stdio[i] >= 0);
                        /* A valid spec may still exceed the payload on re-encoding only if the
                         * input did too, which the frame size forbids. */
                        ASSERT((m.in[0] ? msg_exec_in_encode(&m.spec, m.in, out) : msg_exec_encode(&m.spec, out)) == 0);
                        ASSERT(m.n_volumes <= MSG_VOLUMES_MAX && (!m.in[0] || m.n_volumes == 0));
                        for (size_t i = 0; i < m.n_volumes; i++)
                                ASSERT(msg_volume_name_is_valid(m.volumes[i].name) &&
                                       msg_volume_dest_is_valid(m.volumes[i].dest));
                        ASSERT(msg_exec_encode_volumes(m.volumes, m.n_volumes, out) == 0);
                        msg_exec_done(&m);
                }
                break;
        }
        case MSG_STARTED: {
                MsgStarted m;
                r = msg_started_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(f->n_fds == 0);
                        ASSERT(msg_started_encode(&m, out) == 0);
                        msg_started_done(&m);
                }
                break;
        }
        case MSG_SIGNAL: {
                MsgSignal m;
                r = msg_signal_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_signal_encode(&m, out) == 0);
                break;
        }
        case MSG_RESIZE: {
                MsgResize m;
                r = msg_resize_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_resize_encode(&m, out) == 0);
                break;
        }
        case MSG_EXIT: {
                MsgExit m;
                r = msg_exit_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_exit_encode(&m, out) == 0);
                break;
        }
        case MSG_LIST:
                r = msg_list_decode(f, &error);
                if (r >= 0)
                        ASSERT(msg_empty_encode(out) == 0);
                break;
        case MSG_LIST_REPLY: {
                MsgListReply m;
                r = msg_list_reply_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(m.n_entries <= MSG_LIST_ENTRIES_MAX);
                        ASSERT(msg_list_reply_encode(&m, out) == 0);
                        msg_list_reply_done(&m);
                }
                break;
        }
        case MSG_KILL: {
                MsgKill m;
                r = msg_kill_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_kill_encode(&m, out) == 0);
                break;
        }
        case MSG_ERROR: {
                MsgError m;
                r = msg_error_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_error_encode(&m, out) == 0);
                break;
        }
        case MSG_OK:
                r = msg_ok_decode(f, &error);
                if (r >= 0)
                        ASSERT(msg_empty_encode(out) == 0);
                break;
        case MSG_BIND_FDS: {
                MsgBindFds m;
                r = msg_bind_fds_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(f->n_fds == 0);
                        ASSERT(m.n_fds >= 1 && m.n_fds <= WIRE_FDS_MAX);
                        for (size_t i = 0; i < m.n_fds; i++)
                                ASSERT(m.fds[i] >= 0);
                        ASSERT(msg_empty_encode(out) == 0);
                        msg_bind_fds_done(&m);
                }
                break;
        }
        case MSG_CREATE: {
                MsgCreate m;
                r = msg_create_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(m.spec.n_argv == 0 && !m.spec.tty);
                        ASSERT(msg_create_encode(&m, out) == 0);
                        msg_create_done(&m);
                }
                break;
        }
        case MSG_CREATED: {
                MsgCreated m;
                r = msg_created_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_created_encode(&m, out) == 0);
                break;
        }
        case MSG_STOP:
        case MSG_RM:
        case MSG_PAUSE:
        case MSG_RESUME: {
                MsgTarget m;
                r = msg_target_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(msg_target_is_valid(m.target));
                        ASSERT(msg_target_encode(type, &m, out) == 0);
                }
                break;
        }
        case MSG_SNAPSHOT: {
                MsgSnapshot m;
                r = msg_snapshot_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(msg_target_is_valid(m.target));
                        ASSERT(msg_snapshot_encode(&m, out) == 0);
                }
                break;
        }
        case MSG_SNAPSHOT_REPLY: {
                MsgSnapshotReply m;
                r = msg_snapshot_reply_decode(f, &m, &error);
                if (r >= 0)
                        ASSERT(msg_snapshot_reply_encode(&m, out) == 0);
                break;
        }
        case MSG_COPY: {
                MsgCopy m;
                r = msg_copy_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(m.fd >= 0 && f->n_fds == 0);
                        ASSERT(msg_target_is_valid(m.target) && m.path[0] == '/');
                        ASSERT(m.direction < _MSG_COPY_DIRECTION_MAX);
                        ASSERT(msg_copy_encode(&m, out) == 0);
                        msg_copy_done(&m);
                }
                break;
        }
        case MSG_VOLUME_CREATE:
        case MSG_VOLUME_RM: {
                MsgVolume m;
                r = msg_volume_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(msg_volume_name_is_valid(m.name));
                        ASSERT(type == MSG_VOLUME_RM || !m.has_uid);
                        ASSERT(msg_volume_encode(type, &m, out) == 0);
                }
                break;
        }
        case MSG_VOLUME_LIST:
                r = msg_volume_list_decode(f, &error);
                if (r >= 0)
                        ASSERT(msg_empty_encode(out) == 0);
                break;
        case MSG_VOLUME_LIST_REPLY: {
                MsgVolumeListReply m;
                r = msg_volume_list_reply_decode(f, &m, &error);
                if (r >= 0) {
                        ASSERT(m.n_entries <= MSG_VOLUME_ENTRIES_MAX);
                        ASSERT(msg_volume_list_reply_encode(&m, out) == 0);
                        msg_volume_list_reply_done(&m);
                }
                break;
        }
        default:
                ASSERT(false);
        }
        f->type = saved;
        if (r < 0) {
                ASSERT(is_decode_error(type, r));
                ASSERT(error && error[0]);
        }
        wire_buffer_done(&scratch);
        return r;
}

/* A message that decoded has a canonical encoding: decoding it and encoding again is stable. */
static void check_canonical(uint16_t type, const WireBuffer *b1, size_t n_fds) {
        WireBuffer b2 = {};
        WireFrame *f = frame_from_buffer(type, b1, n_fds);

        ASSERT(decode_and_encode(f, type, &b2) == 0);
        ASSERT(buffers_equal(b1, &b2));
        wire_buffer_done(&b2);
        wire_frame_free(f);
}

static void check_frame(WireFrame *f) {
        for (uint16_t type = 1; type < _MSG_TYPE_MAX; type++) {
                WireBuffer b = {};
                size_t n_fds = f->n_fds;

                if (decode_and_encode(f, type, &b) == 0) {
                        /* the descriptors went with the message (and were closed with it) */
                        if (type == MSG_EXEC || type == MSG_STARTED || type == MSG_BIND_FDS)
                                ASSERT(f->n_fds == 0);
                        check_canonical(type, &b, n_fds);
                } else
                        ASSERT(f->n_fds == n_fds);
                wire_buffer_done(&b);
        }
}

static bool frames_equal(const WireFrame *a, const WireFrame *b) {
        return a->type == b->type && a->size == b->size && (a->size == 0 || memcmp(a->payload, b->payload, a->size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        WireDecoder *whole, *chunked;
        bool open_before[FD_PROBE], open_after[FD_PROBE];
        int fds[3], r;
        size_t off = 0;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        if (devnull < 0)
                LLVMFuzzerInitialize(NULL, NULL);
        open_fds(open_before);

        whole = wire_decoder_new();
        chunked = wire_decoder_new();
        ASSERT(whole && chunked);

        r = wire_decoder_feed(whole, data, size, NULL, 0);
        ASSERT(r == 0 || is_frame_error(r));

        /* FNV-1a of the input seeds the chunk sizes */
        rng = UINT64_C(0xcbf29ce484222325);
        for (size_t i = 0; i < size; i++)
                rng = (rng ^ data[i]) * UINT64_C(0x100000001b3);
        rng |= 1;

        for (size_t i = 0; i < 3; i++) {
                fds[i] = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
                ASSERT(fds[i] >= 0);
        }

        do {
                uint64_t x = next_random();
                size_t k = (x & 3) == 0 ? (size_t) (x >> 8) % 4096 : (size_t) (x >> 8) % 64;
                WireFrame *f;

                k = k < size - off ? k : size - off;
                if (off == 0 && size > 0 && k == 0)
                        k = 1; /* the descriptors need a byte to travel with */
                r = wire_decoder_feed(chunked, data + off, k, off == 0 && size > 0 ? fds : NULL,
                                      off == 0 && size > 0 ? 3 : 0);
                ASSERT(r == 0 || is_frame_error(r));
                off += k;

                while ((r = wire_decoder_pop(chunked, &f)) > 0) {
                        WireFrame *g = NULL;
                        ASSERT(wire_decoder_pop(whole, &g) == 1);
                        ASSERT(frames_equal(f, g));
                        wire_frame_free(g);
                        check_frame(f);
                        wire_frame_free(f);
                }
                if (r < 0)
                        break;
        } while (off < size);

        /* the same end: the same error, or no error and nothing left */
        {
                WireFrame *g = NULL;
                int rw = wire_decoder_pop(whole, &g);
                ASSERT(rw <= 0);
                ASSERT(rw == r);
                ASSERT(wire_decoder_at_boundary(whole) == wire_decoder_at_boundary(chunked));
        }

        if (size == 0)
                for (size_t i = 0; i < 3; i++)
                        close(fds[i]);
        wire_decoder_free(whole);
        wire_decoder_free(chunked);
        /* no descriptor outlived its frame or message */
        open_fds(open_after);
        ASSERT(memcmp(open_before, open_after, sizeof open_before) == 0);
        return 0;
}
