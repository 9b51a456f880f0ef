/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Frame header, TLV encoding and decoding, and the incremental stream decoder (see wire.h and
 * docs/protocol.md). Everything read here comes from an untrusted peer: every length is checked
 * against what is left before it is used, and nothing is allocated beyond what has actually arrived
 * (a frame's payload buffer grows with the bytes received, never to the length the header claims).
 * No I/O and no logging; the only system call is close() on descriptors the decoder owns.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "wire.h"

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = v & 0xff;
        p[1] = v >> 8;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (v >> (8 * i)) & 0xff;
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (unsigned i = 0; i < 8; i++)
                p[i] = (v >> (8 * i)) & 0xff;
}

static uint16_t get_le16(const uint8_t *p) {
        return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p) {
        uint32_t v = 0;
        for (unsigned i = 0; i < 4; i++)
                v |= (uint32_t) p[i] << (8 * i);
        return v;
}

static uint64_t get_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

static void close_many(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

/* ---- frame header ---- */

void wire_header_pack(uint16_t type, uint32_t length, uint8_t out[static WIRE_HEADER_SIZE]) {
        put_le32(out, WIRE_MAGIC);
        put_le16(out + 4, WIRE_VERSION);
        put_le16(out + 6, type);
        put_le32(out + 8, length);
        put_le32(out + 12, 0);
}

int wire_header_unpack(const uint8_t in[static WIRE_HEADER_SIZE], uint16_t *ret_type, uint32_t *ret_length) {
        uint32_t length;

        if (get_le32(in) != WIRE_MAGIC)
                return -EBADMSG;
        if (get_le16(in + 4) != WIRE_VERSION)
                return -EPROTO;
        if (get_le32(in + 12) != 0)
                return -EBADMSG;
        length = get_le32(in + 8);
        if (length > WIRE_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (ret_type)
                *ret_type = get_le16(in + 6);
        if (ret_length)
                *ret_length = length;
        return 0;
}

/* ---- building a payload ---- */

void wire_buffer_done(WireBuffer *b) {
        if (!b)
                return;
        free(b->data);
        *b = (WireBuffer) {};
}

void wire_buffer_reset(WireBuffer *b) {
        b->size = 0;
        b->n_nested = 0;
}

/* Room for EXTRA more bytes, within WIRE_PAYLOAD_MAX. */
static int buffer_reserve(WireBuffer *b, size_t extra) {
        size_t need, n;
        uint8_t *p;

        if (extra > WIRE_PAYLOAD_MAX - b->size)
                return -EMSGSIZE;
        need = b->size + extra;
        if (need <= b->allocated)
                return 0;
        n = MAX(need, MIN((size_t) WIRE_PAYLOAD_MAX, MAX(b->allocated * 2, (size_t) 256)));
        p = realloc(b->data, n);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->allocated = n;
        return 0;
}

static int put_field(WireBuffer *b, uint16_t tag, const void *value, size_t n) {
        int r;

        if (n > WIRE_PAYLOAD_MAX)
                return -EMSGSIZE;
        r = buffer_reserve(b, WIRE_FIELD_HEADER_SIZE + n);
        if (r < 0)
                return r;
        put_le16(b->data + b->size, tag);
        put_le16(b->data + b->size + 2, 0);
        put_le32(b->data + b->size + 4, (uint32_t) n);
        if (n > 0)
                memcpy(b->data + b->size + WIRE_FIELD_HEADER_SIZE, value, n);
        b->size += WIRE_FIELD_HEADER_SIZE + n;
        return 0;
}

int wire_put_u32(WireBuffer *b, uint16_t tag, uint32_t v) {
        uint8_t le[4];
        put_le32(le, v);
        return put_field(b, tag, le, sizeof le);
}

int wire_put_i32(WireBuffer *b, uint16_t tag, int32_t v) {
        return wire_put_u32(b, tag, (uint32_t) v);
}

int wire_put_u64(WireBuffer *b, uint16_t tag, uint64_t v) {
        uint8_t le[8];
        put_le64(le, v);
        return put_field(b, tag, le, sizeof le);
}

int wire_put_bytes(WireBuffer *b, uint16_t tag, const void *p, size_t n) {
        assert(p || n == 0);
        return put_field(b, tag, p, n);
}

int wire_put_string_max(WireBuffer *b, uint16_t tag, const char *s, size_t max) {
        size_t n;

        if (!s)
                return -EINVAL;
        n = strnlen(s, max + 1);
        if (n > max)
                return -EINVAL;
        return put_field(b, tag, s, n);
}

int wire_put_string(WireBuffer *b, uint16_t tag, const char *s) {
        return wire_put_string_max(b, tag, s, WIRE_STRING_MAX);
}

int wire_begin_nested(WireBuffer *b, uint16_t tag) {
        size_t off = b->size;
        int r;

        if (b->n_nested >= WIRE_NESTED_MAX)
                return -E2BIG;
        r = put_field(b, tag, NULL, 0);
        if (r < 0)
                return r;
        b->nested[b->n_nested++] = off;
        return 0;
}

int wire_end_nested(WireBuffer *b) {
        size_t off;

        if (b->n_nested == 0)
                return -EINVAL;
        off = b->nested[--b->n_nested];
        /* The whole payload is at most WIRE_PAYLOAD_MAX, so this fits in 32 bits. */
        put_le32(b->data + off + 4, (uint32_t) (b->size - off - WIRE_FIELD_HEADER_SIZE));
        return 0;
}

/* ---- reading a payload ---- */

void wire_reader_init(WireReader *r, const void *data, size_t size) {
        assert(data || size == 0);
        *r = (WireReader) { .data = data, .size = size };
}

int wire_reader_next(WireReader *r, WireField *ret) {
        const uint8_t *p;
        uint32_t length;

        if (r->offset == r->size)
                return 0;
        if (r->size - r->offset < WIRE_FIELD_HEADER_SIZE)
                return -EBADMSG;
        p = r->data + r->offset;
        if (get_le16(p + 2) != 0)
                return -EBADMSG;
        length = get_le32(p + 4);
        if (length > r->size - r->offset - WIRE_FIELD_HEADER_SIZE)
                return -EBADMSG;
        *ret = (WireField) {
                .tag = get_le16(p),
                .value = p + WIRE_FIELD_HEADER_SIZE,
                .length = length,
        };
        r->offset += WIRE_FIELD_HEADER_SIZE + length;
        return 1;
}

int wire_field_get_u32(const WireField *f, uint32_t *ret) {
        if (f->length != 4)
                return -EBADMSG;
        *ret = get_le32(f->value);
        return 0;
}

int wire_field_get_i32(const WireField *f, int32_t *ret) {
        if (f->length != 4)
                return -EBADMSG;
        *ret = (int32_t) get_le32(f->value);
        return 0;
}

int wire_field_get_u64(const WireField *f, uint64_t *ret) {
        if (f->length != 8)
                return -EBADMSG;
        *ret = get_le64(f->value);
        return 0;
}

int wire_field_get_bool(const WireField *f, bool *ret) {
        uint32_t v;
        int r;

        r = wire_field_get_u32(f, &v);
        if (r < 0)
                return r;
        if (v > 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int check_string(const WireField *f, size_t max) {
        if (f->length > max)
                return -EMSGSIZE;
        if (f->length > 0 && memchr(f->value, 0, f->length))
                return -EBADMSG;
        return 0;
}

int wire_field_get_string(const WireField *f, size_t max, char **ret) {
        char *s;
        int r;

        r = check_string(f, max);
        if (r < 0)
                return r;
        s = malloc(f->length + 1);
        if (!s)
                return -ENOMEM;
        if (f->length > 0)
                memcpy(s, f->value, f->length);
        s[f->length] = '\0';
        *ret = s;
        return 0;
}

int wire_field_copy_string(const WireField *f, char *buf, size_t size) {
        int r;

        assert(size > 0);
        r = check_string(f, size - 1);
        if (r < 0)
                return r;
        if (f->length > 0)
                memcpy(buf, f->value, f->length);
        buf[f->length] = '\0';
        return 0;
}

void wire_field_open_nested(const WireField *f, WireReader *ret) {
        wire_reader_init(ret, f->value, f->length);
}

/* ---- frames ---- */

void wire_frame_close_fds(WireFrame *f) {
        close_many(f->fds, f->n_fds);
        f->n_fds = 0;
}

WireFrame *wire_frame_free(WireFrame *f) {
        if (!f)
                return NULL;
        wire_frame_close_fds(f);
        free(f->payload);
        free(f);
        return NULL;
}

int wire_frame_take_fd(WireFrame *f, size_t i) {
        if (i >= f->n_fds)
                return -EBADF;
        return TAKE_FD(f->fds[i]);
}

static WireFrame *frame_new(void) {
        WireFrame *f = calloc(1, sizeof *f);
        if (!f)
                return NULL;
        for (size_t i = 0; i < WIRE_FDS_MAX; i++)
                f->fds[i] = -EBADF;
        return f;
}

/* ---- the stream decoder ---- */

struct WireDecoder {
        /* The frame being received: allocated with its first byte, queued when complete. */
        WireFrame *current;
        uint8_t header[WIRE_HEADER_SIZE];
        size_t header_got;
        size_t length;          /* payload length, once the header is complete */
        size_t allocated;       /* of current->payload */

        WireFrame *queue_head, *queue_tail;
        size_t n_queued;
        size_t queued_bytes;    /* payload bytes of the queued frames */

        int error;              /* sticky: the stream cannot be resynchronized */
};

WireDecoder *wire_decoder_new(void) {
        return calloc(1, sizeof(WireDecoder));
}

WireDecoder *wire_decoder_free(WireDecoder *d) {
        if (!d)
                return NULL;
        wire_frame_free(d->current);
        while (d->queue_head) {
                WireFrame *f = d->queue_head;
                d->queue_head = f->queue_next;
                wire_frame_free(f);
        }
        free(d);
        return NULL;
}

int wire_decoder_set_error(WireDecoder *d, int r) {
        assert(r < 0);
        if (d->error == 0)
                d->error = r;
        d->current = wire_frame_free(d->current);
        d->header_got = 0;
        d->allocated = 0;
        return d->error;
}

static void decoder_enqueue(WireDecoder *d) {
        WireFrame *f = TAKE_PTR(d->current);

        f->queue_next = NULL;
        if (d->queue_tail)
                d->queue_tail->queue_next = f;
        else
                d->queue_head = f;
        d->queue_tail = f;
        d->n_queued++;
        d->queued_bytes += f->size;
        d->header_got = 0;
        d->length = d->allocated = 0;
}

/* Append up to SIZE bytes to the current payload; grows the buffer with what has arrived. */
static size_t decoder_take_payload(WireDecoder *d, const uint8_t *p, size_t size, int *r) {
        WireFrame *f = d->current;
        size_t n = MIN(size, d->length - f->size);

        if (f->size + n > d->allocated) {
                size_t a = MAX(f->size + n, MIN(d->length, MAX(d->allocated * 2, (size_t) 4096)));
                uint8_t *q = realloc(f->payload, a);
                if (!q) {
                        *r = -ENOMEM;
                        return 0;
                }
                f->payload = q;
                d->allocated = a;
        }
        memcpy(f->payload + f->size, p, n);
        f->size += n;
        *r = 0;
        return n;
}

int wire_decoder_feed(WireDecoder *d, const void *data, size_t size, int *fds, size_t n_fds) {
        const uint8_t *p = data;
        WireFrame *target = NULL; /* the last frame that begins in this chunk */
        int r;

        assert(d);
        assert(data || size == 0);
        assert(fds || n_fds == 0);

        if (d->error) {
                close_many(fds, n_fds);
                return d->error;
        }
        if (n_fds > WIRE_FDS_MAX) {
                close_many(fds, n_fds);
                return wire_decoder_set_error(d, -EMSGSIZE);
        }

        while (size > 0) {
                size_t n;

                if (!d->current) {
                        d->current = frame_new();
                        if (!d->current) {
                                close_many(fds, n_fds);
                                return wire_decoder_set_error(d, -ENOMEM);
                        }
                        d->header_got = d->length = d->allocated = 0;
                        target = d->current;
                }

                if (d->header_got < WIRE_HEADER_SIZE) {
                        uint16_t type;
                        uint32_t length;

                        n = MIN(size, WIRE_HEADER_SIZE - d->header_got);
                        memcpy(d->header + d->header_got, p, n);
                        d->header_got += n;
                        p += n;
                        size -= n;
                        if (d->header_got < WIRE_HEADER_SIZE)
                                break;
                        /* Checked before anything is allocated for the payload. */
                        r = wire_header_unpack(d->header, &type, &length);
                        if (r < 0) {
                                close_many(fds, n_fds);
                                return wire_decoder_set_error(d, r);
                        }
                        d->current->type = type;
                        d->length = length;
                } else {
                        n = decoder_take_payload(d, p, size, &r);
                        if (r < 0) {
                                close_many(fds, n_fds);
                                return wire_decoder_set_error(d, r);
                        }
                        p += n;
                        size -= n;
                }

                if (d->current->size == d->length)
                        decoder_enqueue(d);
        }

        if (n_fds > 0) {
                if (!target) {
                        close_many(fds, n_fds);
                        return wire_decoder_set_error(d, -EBADMSG);
                }
                memcpy(target->fds, fds, n_fds * sizeof(int));
                target->n_fds = n_fds;
        }
        return 0;
}

int wire_decoder_pop(WireDecoder *d, WireFrame **ret) {
        WireFrame *f = d->queue_head;

        if (!f)
                return d->error;
        d->queue_head = f->queue_next;
        if (!d->queue_head)
                d->queue_tail = NULL;
        d->n_queued--;
        d->queued_bytes -= f->size;
        f->queue_next = NULL;
        *ret = f;
        return 1;
}

bool wire_decoder_at_boundary(const WireDecoder *d) {
        return !d->current;
}

size_t wire_decoder_wanted(const WireDecoder *d) {
        if (d->error)
                return 0;
        if (!d->current || d->header_got < WIRE_HEADER_SIZE)
                return WIRE_HEADER_SIZE - d->header_got;
        return d->length - d->current->size;
}

size_t wire_decoder_queued(const WireDecoder *d) {
        return d->n_queued;
}

size_t wire_decoder_buffered(const WireDecoder *d) {
        return (d->current ? WIRE_HEADER_SIZE + d->allocated : 0) + d->queued_bytes +
               d->n_queued * WIRE_HEADER_SIZE;
}

int wire_decoder_error(const WireDecoder *d) {
        return d->error;
}
