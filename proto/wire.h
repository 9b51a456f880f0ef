/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The framing layer of the sandboxctl <-> sandboxd protocol (docs/protocol.md): the 16-byte frame
 * header, a growable buffer with TLV "put" helpers, a bounds-checked TLV reader over a payload, and an
 * incremental stream decoder that turns bytes and file descriptors, fed in pieces as they arrive, into
 * complete frames. Pure data handling: no system calls other than close() on descriptors it owns (the
 * socket I/O is in fdpass.h), no logging, no knowledge of message types (that is msg.h).
 *
 * Errors: -EBADMSG for a malformed frame or field, -EMSGSIZE for anything over a limit, -EPROTO for a
 * frame of a protocol version this code does not speak, -ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC UINT32_C(0x31584253)    /* "SBX1" in memory order (little-endian u32) */
#define WIRE_VERSION 1                     /* version of the framing, in every frame header */
#define WIRE_HEADER_SIZE 16
#define WIRE_PAYLOAD_MAX (UINT32_C(2) << 20)  /* 2 MiB = 2097152 payload bytes per frame */
#define WIRE_FDS_MAX 3                     /* file descriptors attached to one frame */
#define WIRE_FIELD_HEADER_SIZE 8           /* tag u16, reserved u16, length u32 */
#define WIRE_STRING_MAX 4096               /* default bound on a string field, in bytes */
#define WIRE_TAG_SKIPPABLE 0x8000          /* unknown tags with this bit are ignored, others refused */
#define WIRE_NESTED_MAX 4                  /* open nested records in one WireBuffer */
#define WIRE_DECODER_QUEUE_MAX 64          /* complete frames queued before reading stops (-EBUSY) */
#define WIRE_READ_CHUNK (64u * 1024)       /* bytes taken from the socket per read */

/* ---- frame header ---- */

/* Write the header of a frame of TYPE carrying LENGTH payload bytes. */
void wire_header_pack(uint16_t type, uint32_t length, uint8_t out[static WIRE_HEADER_SIZE]);
/* Check magic (-EBADMSG), version (-EPROTO), reserved (-EBADMSG) and length (-EMSGSIZE). */
int wire_header_unpack(const uint8_t in[static WIRE_HEADER_SIZE], uint16_t *ret_type, uint32_t *ret_length);

/* ---- building a payload ---- */

typedef struct WireBuffer {
        uint8_t *data;
        size_t size;
        size_t allocated;
        size_t nested[WIRE_NESTED_MAX]; /* offsets of the open nested fields' headers */
        unsigned n_nested;
} WireBuffer;

void wire_buffer_done(WireBuffer *b);
/* Empty the buffer but keep its memory. */
void wire_buffer_reset(WireBuffer *b);

/* Append one field. All fail with -EMSGSIZE when the payload would exceed WIRE_PAYLOAD_MAX, and with
 * -EINVAL for a string longer than MAX (wire_put_string_max) or containing nothing it can send. */
int wire_put_u32(WireBuffer *b, uint16_t tag, uint32_t v);
int wire_put_i32(WireBuffer *b, uint16_t tag, int32_t v);
int wire_put_u64(WireBuffer *b, uint16_t tag, uint64_t v);
int wire_put_bytes(WireBuffer *b, uint16_t tag, const void *p, size_t n);
/* S without its NUL; -EINVAL if longer than MAX bytes. */
int wire_put_string_max(WireBuffer *b, uint16_t tag, const char *s, size_t max);
int wire_put_string(WireBuffer *b, uint16_t tag, const char *s); /* MAX = WIRE_STRING_MAX */
/* A nested record: fields put between begin and end form the value of field TAG. */
int wire_begin_nested(WireBuffer *b, uint16_t tag);
int wire_end_nested(WireBuffer *b);

/* ---- reading a payload ---- */

typedef struct WireField {
        uint16_t tag;
        const uint8_t *value; /* points into the payload; LENGTH bytes */
        size_t length;
} WireField;

typedef struct WireReader {
        const uint8_t *data;
        size_t size;
        size_t offset;
} WireReader;

void wire_reader_init(WireReader *r, const void *data, size_t size);
/* 1 and the next field, 0 at the end, -EBADMSG if a field's header or value runs past the end or its
 * reserved bits are set. After an error the reader stays at the bad field. */
int wire_reader_next(WireReader *r, WireField *ret);

static inline bool wire_tag_is_skippable(uint16_t tag) {
        return tag & WIRE_TAG_SKIPPABLE;
}

/* Getters: -EBADMSG unless the value has exactly the integer's size; bool is a u32 of 0 or 1. */
int wire_field_get_u32(const WireField *f, uint32_t *ret);
int wire_field_get_i32(const WireField *f, int32_t *ret);
int wire_field_get_u64(const WireField *f, uint64_t *ret);
int wire_field_get_bool(const WireField *f, bool *ret);
/* A newly allocated NUL-terminated copy: -EMSGSIZE if longer than MAX bytes, -EBADMSG if it has a NUL. */
int wire_field_get_string(const WireField *f, size_t max, char **ret);
/* The same into a caller's buffer of SIZE bytes (string at most SIZE-1 bytes, else -EMSGSIZE). */
int wire_field_copy_string(const WireField *f, char *buf, size_t size);
/* A reader over the field's value, for a nested record. */
void wire_field_open_nested(const WireField *f, WireReader *ret);

/* ---- frames and the stream decoder ---- */

typedef struct WireFrame {
        uint16_t type;
        uint8_t *payload; /* NULL when size is 0 */
        size_t size;
        int fds[WIRE_FDS_MAX]; /* owned; a message decoder moves the ones it uses out (-EBADF) */
        size_t n_fds;
        struct WireFrame *queue_next; /* private to the decoder */
} WireFrame;

/* Closes the descriptors still in the frame. Accepts NULL, returns NULL. */
WireFrame *wire_frame_free(WireFrame *f);
static inline void wire_frame_freep(WireFrame **f) {
        wire_frame_free(*f);
}
/* Close every descriptor still in the frame and forget them. */
void wire_frame_close_fds(WireFrame *f);
/* Move descriptor I out of the frame (the frame then no longer closes it); -EBADF if there is none. */
int wire_frame_take_fd(WireFrame *f, size_t i);

typedef struct WireDecoder WireDecoder;

WireDecoder *wire_decoder_new(void);
WireDecoder *wire_decoder_free(WireDecoder *d);
static inline void wire_decoder_freep(WireDecoder **d) {
        wire_decoder_free(*d);
}

/* Feed the next SIZE bytes of the stream and the descriptors that arrived with them (taken over in
 * every case: kept with a frame, or closed on error). Descriptors belong to the last frame whose
 * header begins within these bytes (the sender attaches them to a frame's first byte); descriptors
 * in a chunk where no frame begins are an error (-EBADMSG), and so are more than WIRE_FDS_MAX
 * (-EMSGSIZE). Returns 0, or the error that made the stream unusable: the decoder then keeps
 * returning it, and pop returns the frames completed before it, then the error. */
int wire_decoder_feed(WireDecoder *d, const void *data, size_t size, int *fds, size_t n_fds);
/* 1 and the oldest complete frame (the caller frees it), 0 if none is complete yet, or the error. */
int wire_decoder_pop(WireDecoder *d, WireFrame **ret);
/* No partial frame is pending (EOF here is a clean end of stream). */
bool wire_decoder_at_boundary(const WireDecoder *d);
/* How many bytes would complete the part of the current frame being read (header, then payload). A
 * reader that never asks for more does not consume bytes of the following frame. */
size_t wire_decoder_wanted(const WireDecoder *d);
/* Complete frames waiting to be popped. */
size_t wire_decoder_queued(const WireDecoder *d);
/* The memory the decoder holds for the peer: the partial frame's buffer (as allocated, which grows
 * with the bytes received, never beyond the frame's length) and the frames waiting to be popped. */
size_t wire_decoder_buffered(const WireDecoder *d);
/* The error the decoder stopped at, or 0. */
int wire_decoder_error(const WireDecoder *d);
/* Make the decoder fail with R (< 0) from now on; returns R. Used by the socket reader (fdpass.c). */
int wire_decoder_set_error(WireDecoder *d, int r);
