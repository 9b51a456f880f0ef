/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The detached sandbox's record (record.h): its encoder and its parser. Pure: no I/O, no logging.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "msg.h"
#include "record.h"

enum {
        REC_ID = 1,             /* string, 16 lowercase hex, required */
        REC_HOST_FIRST = 2,     /* u32 >= 65536, required */
        REC_INIT_PID = 3,       /* u32 1..2^31-1, required */
        REC_INIT_START = 4,     /* u64, required */
        REC_SERVER_PID = 5,
        REC_SERVER_START = 6,
        REC_KEEPER_PID = 7,
        REC_KEEPER_START = 8,
        REC_CGROUP_PARENT = 9,  /* string <= 4096, absolute */
        REC_NET_MODE = 10,      /* u32 < _SPEC_NET_MAX */
        REC_NET_ADDRESS = 11,   /* u32 */
        REC_NET_TABLE = 12,     /* string 1..31 */
        REC_UPPER_WORK = 13,    /* string <= 4096, absolute */
        REC_IMAGE_ID = 14,      /* string <= 128 */
        REC_FILTER = 15,        /* bytes, a multiple of 8, at most RECORD_FILTER_MAX */
        REC_CAP_SET = 16,       /* u64 within SPEC_CAPS_ALL */
        REC_QUOTA = 17,         /* bool */
        REC_CREATED_USEC = 18,  /* u64 */
        REC_SPEC = 19,          /* nested: EXEC's spec fields, required */
        REC_OWNER = 20,         /* bytes <= RECORD_OWNER_MAX: the adopter's own (sandboxd: uid, name, ttls) */
        _REC_MAX,
};

#define REQUIRED_TAGS                                                                                        \
        ((1u << REC_ID) | (1u << REC_HOST_FIRST) | (1u << REC_INIT_PID) | (1u << REC_INIT_START) |             \
         (1u << REC_SERVER_PID) | (1u << REC_SERVER_START) | (1u << REC_KEEPER_PID) | (1u << REC_KEEPER_START) | \
         (1u << REC_SPEC))

void record_done(SandboxRecord *r) {
        if (!r)
                return;
        free(r->cgroup_parent);
        free(r->net_table);
        free(r->upper_work);
        free(r->image_id);
        free(r->filter);
        free(r->owner);
        spec_done(&r->spec);
        *r = (SandboxRecord) {};
}

static bool process_ok(const RecordProcess *p) {
        return p->pid > 0;
}

static bool path_ok(const char *p) {
        return !p || (p[0] == '/' && strnlen(p, 4097) <= 4096);
}

int record_encode(const SandboxRecord *r, WireBuffer *b) {
        WireBuffer spec = {};
        int k;

        assert_return(r && b, -EINVAL);
        if (!msg_id_is_valid(r->id) || r->host_first < 65536 || !process_ok(&r->init) || !process_ok(&r->server) ||
            !process_ok(&r->keeper) || !path_ok(r->cgroup_parent) || !path_ok(r->upper_work) ||
            r->net_mode >= _SPEC_NET_MAX || (r->net_table && (!*r->net_table || strlen(r->net_table) > 31)) ||
            (r->image_id && strlen(r->image_id) > 128) || r->filter_size % 8 != 0 ||
            r->filter_size > RECORD_FILTER_MAX || (r->filter_size > 0 && !r->filter) || (r->cap_set & ~SPEC_CAPS_ALL) ||
            r->owner_size > RECORD_OWNER_MAX || (r->owner_size > 0 && !r->owner))
                return -EINVAL;

        /* The magic is not a field: the buffer starts with it, the fields follow. */
        wire_buffer_reset(b);
        if (b->allocated < RECORD_MAGIC_SIZE) {
                uint8_t *n = realloc(b->data, RECORD_MAGIC_SIZE);
                if (!n)
                        return -ENOMEM;
                b->data = n;
                b->allocated = RECORD_MAGIC_SIZE;
        }
        memcpy(b->data, RECORD_MAGIC, RECORD_MAGIC_SIZE);
        b->size = RECORD_MAGIC_SIZE;
        k = wire_put_string(b, REC_ID, r->id);
        if (k >= 0)
                k = wire_put_u32(b, REC_HOST_FIRST, r->host_first);
        if (k >= 0)
                k = wire_put_u32(b, REC_INIT_PID, (uint32_t) r->init.pid);
        if (k >= 0)
                k = wire_put_u64(b, REC_INIT_START, r->init.start_time);
        if (k >= 0)
                k = wire_put_u32(b, REC_SERVER_PID, (uint32_t) r->server.pid);
        if (k >= 0)
                k = wire_put_u64(b, REC_SERVER_START, r->server.start_time);
        if (k >= 0)
                k = wire_put_u32(b, REC_KEEPER_PID, (uint32_t) r->keeper.pid);
        if (k >= 0)
                k = wire_put_u64(b, REC_KEEPER_START, r->keeper.start_time);
        if (k >= 0 && r->cgroup_parent)
                k = wire_put_string(b, REC_CGROUP_PARENT, r->cgroup_parent);
        if (k >= 0 && r->net_mode)
                k = wire_put_u32(b, REC_NET_MODE, r->net_mode);
        if (k >= 0 && r->net_address)
                k = wire_put_u32(b, REC_NET_ADDRESS, r->net_address);
        if (k >= 0 && r->net_table)
                k = wire_put_string(b, REC_NET_TABLE, r->net_table);
        if (k >= 0 && r->upper_work)
                k = wire_put_string(b, REC_UPPER_WORK, r->upper_work);
        if (k >= 0 && r->image_id)
                k = wire_put_string(b, REC_IMAGE_ID, r->image_id);
        if (k >= 0 && r->filter_size > 0)
                k = wire_put_bytes(b, REC_FILTER, r->filter, r->filter_size);
        if (k >= 0 && r->cap_set)
                k = wire_put_u64(b, REC_CAP_SET, r->cap_set);
        if (k >= 0 && r->quota)
                k = wire_put_u32(b, REC_QUOTA, 1);
        if (k >= 0 && r->created_usec)
                k = wire_put_u64(b, REC_CREATED_USEC, r->created_usec);
        if (k >= 0 && r->owner_size > 0)
                k = wire_put_bytes(b, REC_OWNER, r->owner, r->owner_size);
        if (k >= 0)
                k = msg_spec_encode(&r->spec, &spec);
        if (k >= 0)
                k = wire_put_bytes(b, REC_SPEC, spec.data, spec.size);
        wire_buffer_done(&spec);
        return k < 0 ? k : 0;
}

static int fail(const char **ret_error, int r, const char *message) {
        if (ret_error)
                *ret_error = message;
        return r;
}

static int get_string(const WireField *w, size_t max, char **field) {
        char *s;
        int r = wire_field_get_string(w, max, &s);
        if (r < 0)
                return r;
        free(*field);
        *field = s;
        return 0;
}

static int get_pid(const WireField *w, pid_t *ret) {
        uint32_t v;
        int r = wire_field_get_u32(w, &v);
        if (r < 0)
                return r;
        if (v == 0 || v > INT32_MAX)
                return -EBADMSG;
        *ret = (pid_t) v;
        return 0;
}

int record_decode(const void *data, size_t size, SandboxRecord *ret, const char **ret_error) {
        _cleanup_(record_done) SandboxRecord r = {};
        const WireField *spec = NULL;
        WireField spec_field;
        uint32_t seen = 0;
        WireReader rd;
        int k;

        assert_return(ret && (data || size == 0), -EINVAL);
        if (size > RECORD_SIZE_MAX)
                return fail(ret_error, -EMSGSIZE, "the record is larger than 4 MiB");
        if (size < RECORD_MAGIC_SIZE || memcmp(data, RECORD_MAGIC, RECORD_MAGIC_SIZE) != 0)
                return fail(ret_error, -EBADMSG, "not a sandbox record (no " RECORD_MAGIC ")");
        wire_reader_init(&rd, (const uint8_t *) data + RECORD_MAGIC_SIZE, size - RECORD_MAGIC_SIZE);
        for (;;) {
                WireField w;
                uint32_t v32;

                k = wire_reader_next(&rd, &w);
                if (k < 0)
                        return fail(ret_error, -EBADMSG, "a field runs past the end of the record");
                if (k == 0)
                        break;
                if (w.tag == 0 || w.tag >= _REC_MAX) {
                        if (wire_tag_is_skippable(w.tag))
                                continue;
                        return fail(ret_error, -EBADMSG, "the record has an unknown field");
                }
                if (seen & (1u << w.tag))
                        return fail(ret_error, -EBADMSG, "the record has a field twice");
                seen |= 1u << w.tag;
                switch (w.tag) {
                case REC_ID:
                        k = wire_field_copy_string(&w, r.id, sizeof r.id);
                        if (k >= 0 && !msg_id_is_valid(r.id))
                                k = -EBADMSG;
                        break;
                case REC_HOST_FIRST:
                        k = wire_field_get_u32(&w, &r.host_first);
                        if (k >= 0 && r.host_first < 65536)
                                k = -EBADMSG;
                        break;
                case REC_INIT_PID:
                        k = get_pid(&w, &r.init.pid);
                        break;
                case REC_INIT_START:
                        k = wire_field_get_u64(&w, &r.init.start_time);
                        break;
                case REC_SERVER_PID:
                        k = get_pid(&w, &r.server.pid);
                        break;
                case REC_SERVER_START:
                        k = wire_field_get_u64(&w, &r.server.start_time);
                        break;
                case REC_KEEPER_PID:
                        k = get_pid(&w, &r.keeper.pid);
                        break;
                case REC_KEEPER_START:
                        k = wire_field_get_u64(&w, &r.keeper.start_time);
                        break;
                case REC_CGROUP_PARENT:
                        k = get_string(&w, 4096, &r.cgroup_parent);
                        if (k >= 0 && !path_ok(r.cgroup_parent))
                                k = -EBADMSG;
                        break;
                case REC_NET_MODE:
                        k = wire_field_get_u32(&w, &v32);
                        if (k >= 0 && v32 >= _SPEC_NET_MAX)
                                k = -EBADMSG;
                        r.net_mode = v32;
                        break;
                case REC_NET_ADDRESS:
                        k = wire_field_get_u32(&w, &r.net_address);
                        break;
                case REC_NET_TABLE:
                        k = get_string(&w, 31, &r.net_table);
                        if (k >= 0 && !*r.net_table)
                                k = -EBADMSG;
                        break;
                case REC_UPPER_WORK:
                        k = get_string(&w, 4096, &r.upper_work);
                        if (k >= 0 && !path_ok(r.upper_work))
                                k = -EBADMSG;
                        break;
                case REC_IMAGE_ID:
                        k = get_string(&w, 128, &r.image_id);
                        break;
                case REC_FILTER:
                        if (w.length == 0 || w.length % 8 != 0 || w.length > RECORD_FILTER_MAX) {
                                k = -EBADMSG;
                                break;
                        }
                        r.filter = malloc(w.length);
                        if (!r.filter)
                                return fail(ret_error, -ENOMEM, "out of memory");
                        memcpy(r.filter, w.value, w.length);
                        r.filter_size = w.length;
                        k = 0;
                        break;
                case REC_CAP_SET:
                        k = wire_field_get_u64(&w, &r.cap_set);
                        if (k >= 0 && (r.cap_set & ~SPEC_CAPS_ALL))
                                k = -EBADMSG;
                        break;
                case REC_QUOTA:
                        k = wire_field_get_bool(&w, &r.quota);
                        break;
                case REC_CREATED_USEC:
                        k = wire_field_get_u64(&w, &r.created_usec);
                        break;
                case REC_OWNER:
                        if (w.length == 0 || w.length > RECORD_OWNER_MAX) {
                                k = -EBADMSG;
                                break;
                        }
                        r.owner = malloc(w.length);
                        if (!r.owner)
                                return fail(ret_error, -ENOMEM, "out of memory");
                        memcpy(r.owner, w.value, w.length);
                        r.owner_size = w.length;
                        k = 0;
                        break;
                case REC_SPEC:
                        spec_field = w;
                        spec = &spec_field;
                        k = 0;
                        break;
                }
                if (k == -ENOMEM)
                        return fail(ret_error, k, "out of memory");
                if (k < 0)
                        return fail(ret_error, -EBADMSG, "a field of the record is malformed or out of range");
        }
        if ((seen & REQUIRED_TAGS) != REQUIRED_TAGS)
                return fail(ret_error, -EBADMSG, "the record lacks a required field");
        if ((r.net_mode == SPEC_NET_BRIDGE || r.net_mode == SPEC_NET_ISOLATED) != (r.net_table != NULL))
                return fail(ret_error, -EBADMSG, "the record's network fields do not go together");
        k = msg_spec_decode(spec->value, spec->length, SPEC_VALIDATE_NO_COMMAND, &r.spec, ret_error);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return fail(ret_error, -EBADMSG, "the record's spec is malformed or invalid");
        if (r.spec.net != (SpecNet) r.net_mode)
                return fail(ret_error, -EBADMSG, "the record's network fields do not go together");
        *ret = r;
        r = (SandboxRecord) {};
        return 0;
}
