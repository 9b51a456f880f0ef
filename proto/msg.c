/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Typed messages over the TLV layer (see msg.h, docs/protocol.md). Each message's singular fields
 * are described by one table (tag, C type and member, required or not, range, error message) that
 * drives both the encoder and the decoder, so the two cannot disagree on a bound; repeated fields
 * and nested records (argv, env, layers, binds, tmpfs, rlimits, LIST_REPLY entries) are handled by
 * a per-message hook around the same table walker. Decoders work on a local copy and hand it over
 * only on success. Pure functions: no I/O, no logging.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "msg.h"

/* Enum members are read and written as 32-bit integers by the tables. */
_Static_assert(sizeof(MsgLimit) == sizeof(uint32_t), "MsgLimit is not 32-bit");
_Static_assert(sizeof(SpecNet) == sizeof(uint32_t), "SpecNet is not 32-bit");

static const char *const type_names[_MSG_TYPE_MAX] = {
        [MSG_HELLO] = "HELLO",
        [MSG_HELLO_REPLY] = "HELLO_REPLY",
        [MSG_EXEC] = "EXEC",
        [MSG_STARTED] = "STARTED",
        [MSG_SIGNAL] = "SIGNAL",
        [MSG_RESIZE] = "RESIZE",
        [MSG_EXIT] = "EXIT",
        [MSG_LIST] = "LIST",
        [MSG_LIST_REPLY] = "LIST_REPLY",
        [MSG_KILL] = "KILL",
        [MSG_ERROR] = "ERROR",
        [MSG_OK] = "OK",
        [MSG_BIND_FDS] = "BIND_FDS",
        [MSG_CREATE] = "CREATE",
        [MSG_CREATED] = "CREATED",
        [MSG_STOP] = "STOP",
        [MSG_RM] = "RM",
        [MSG_PAUSE] = "PAUSE",
        [MSG_RESUME] = "RESUME",
        [MSG_COPY] = "COPY",
        [MSG_SNAPSHOT] = "SNAPSHOT",
        [MSG_SNAPSHOT_REPLY] = "SNAPSHOT_REPLY",
        [MSG_VOLUME_CREATE] = "VOLUME_CREATE",
        [MSG_VOLUME_LIST] = "VOLUME_LIST",
        [MSG_VOLUME_LIST_REPLY] = "VOLUME_LIST_REPLY",
        [MSG_VOLUME_RM] = "VOLUME_RM",
};

static const char *const state_names[_MSG_STATE_MAX] = {
        [MSG_STATE_RUNNING] = "running",
        [MSG_STATE_PAUSED] = "paused",
        [MSG_STATE_STOPPING] = "stopping",
        [MSG_STATE_STOPPED] = "stopped",
};

const char *msg_state_to_string(MsgState st) {
        return st >= 0 && st < _MSG_STATE_MAX ? state_names[st] : NULL;
}

static const char *const kind_names[_MSG_KIND_MAX] = {
        [MSG_KIND_EXEC] = "exec",
        [MSG_KIND_CREATED] = "created",
};

const char *msg_kind_to_string(MsgKind k) {
        return k >= 0 && k < _MSG_KIND_MAX ? kind_names[k] : NULL;
}

const char *msg_type_to_string(int type) {
        return type > 0 && type < _MSG_TYPE_MAX ? type_names[type] : NULL;
}

int msg_hello_negotiate(const MsgHello *m, uint32_t *ret_version) {
        uint32_t lo = MAX(m->min_version, (uint32_t) MSG_PROTOCOL_VERSION_MIN);
        uint32_t hi = MIN(m->max_version, (uint32_t) MSG_PROTOCOL_VERSION);

        if (lo > hi)
                return -EPROTONOSUPPORT;
        *ret_version = hi;
        return 0;
}

bool msg_id_is_valid(const char *id) {
        if (!id || strnlen(id, MSG_ID_LENGTH + 1) != MSG_ID_LENGTH)
                return false;
        for (size_t i = 0; i < MSG_ID_LENGTH; i++)
                if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
                        return false;
        return true;
}

bool msg_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strnlen(name, MSG_NAME_MAX + 1);
        if (n == 0 || n > MSG_NAME_MAX || msg_id_is_valid(name))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || !strchr("_.-", c)))
                        return false;
        }
        return true;
}

bool msg_target_is_valid(const char *target) {
        return msg_id_is_valid(target) || msg_name_is_valid(target);
}

bool msg_volume_name_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strnlen(name, MSG_VOLUME_NAME_MAX + 1);
        if (n == 0 || n > MSG_VOLUME_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || !strchr("_.-", c)))
                        return false;
        }
        return true;
}

bool msg_volume_dest_is_valid(const char *dest) {
        size_t n;

        if (!dest || dest[0] != '/')
                return false;
        n = strnlen(dest, SPEC_STRING_MAX);
        if (n >= SPEC_STRING_MAX)
                return false;
        bool any = false;
        for (const char *p = dest; *p;) {
                size_t l;
                p += strspn(p, "/");
                l = strcspn(p, "/");
                if (l == 0)
                        break;
                if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                any = true;
                p += l;
        }
        return any;
}

static int fail(const char **ret_error, int r, const char *message) {
        assert(r < 0);
        if (ret_error)
                *ret_error = message;
        return r;
}

/* ---- table-driven fields ---- */

typedef enum FieldKind {
        KIND_U32,       /* uint32_t (or a 32-bit enum), range MIN..MAX */
        KIND_I32,       /* int32_t or int, range MIN..MAX; the same 4 bytes as a u32 on the wire */
        KIND_U64,       /* uint64_t, any value */
        KIND_BOOL,      /* bool; a u32 0 or 1 */
        KIND_CHARS,     /* char[SIZE]: a string of at most SIZE-1 bytes */
        KIND_ID,        /* char[MSG_ID_LENGTH + 1]: exactly 16 lowercase hex digits */
        KIND_STRING,    /* char *: a string of at most SIZE bytes (NULL when absent) */
        KIND_NAME,      /* char[MSG_NAME_MAX + 1]: a sandbox's name (msg_name_is_valid), "" when absent */
        KIND_TARGET,    /* char[MSG_TARGET_MAX + 1]: an id or a name */
} FieldKind;

typedef struct Field {
        uint16_t tag;
        FieldKind kind;
        bool required;  /* else absent means zero/NULL/"", and the encoder omits that value */
        size_t offset;
        size_t size;
        int64_t min, max;
        const char *error;
} Field;

#define MEMBER_SIZE(type, m) sizeof(((type *) NULL)->m)
#define F_U32(t, type, m, req, lo, hi, err) \
        { t, KIND_U32, req, offsetof(type, m), MEMBER_SIZE(type, m), lo, hi, err }
#define F_I32(t, type, m, req, lo, hi, err) \
        { t, KIND_I32, req, offsetof(type, m), MEMBER_SIZE(type, m), lo, hi, err }
#define F_U64(t, type, m, req, err) { t, KIND_U64, req, offsetof(type, m), MEMBER_SIZE(type, m), 0, 0, err }
#define F_BOOL(t, type, m, req, err) { t, KIND_BOOL, req, offsetof(type, m), MEMBER_SIZE(type, m), 0, 1, err }
#define F_CHARS(t, type, m, req, err) { t, KIND_CHARS, req, offsetof(type, m), MEMBER_SIZE(type, m), 0, 0, err }
#define F_ID(t, type, m, err) { t, KIND_ID, true, offsetof(type, m), MEMBER_SIZE(type, m), 0, 0, err }
#define F_STRING(t, type, m, req, max, err) { t, KIND_STRING, req, offsetof(type, m), max, 0, 0, err }
#define F_NAME(t, type, m, req, err) { t, KIND_NAME, req, offsetof(type, m), MEMBER_SIZE(type, m), 0, 0, err }
#define F_TARGET(t, type, m, err) { t, KIND_TARGET, true, offsetof(type, m), MEMBER_SIZE(type, m), 0, 0, err }

static void *member(void *base, const Field *d) {
        return (uint8_t *) base + d->offset;
}

static const void *member_const(const void *base, const Field *d) {
        return (const uint8_t *) base + d->offset;
}

static int decode_one(const Field *d, const WireField *w, void *out) {
        void *p = member(out, d);
        int r;

        switch (d->kind) {
        case KIND_U32: {
                uint32_t v;
                assert(d->size == sizeof v);
                r = wire_field_get_u32(w, &v);
                if (r < 0)
                        return r;
                if ((int64_t) v < d->min || (int64_t) v > d->max)
                        return -EBADMSG;
                memcpy(p, &v, sizeof v);
                return 0;
        }
        case KIND_I32: {
                int32_t v;
                assert(d->size == sizeof v);
                r = wire_field_get_i32(w, &v);
                if (r < 0)
                        return r;
                if (v < d->min || v > d->max)
                        return -EBADMSG;
                memcpy(p, &v, sizeof v);
                return 0;
        }
        case KIND_U64: {
                uint64_t v;
                assert(d->size == sizeof v);
                r = wire_field_get_u64(w, &v);
                if (r < 0)
                        return r;
                memcpy(p, &v, sizeof v);
                return 0;
        }
        case KIND_BOOL: {
                bool v;
                assert(d->size == sizeof v);
                r = wire_field_get_bool(w, &v);
                if (r < 0)
                        return r;
                memcpy(p, &v, sizeof v);
                return 0;
        }
        case KIND_CHARS:
                return wire_field_copy_string(w, p, d->size);
        case KIND_ID: {
                char id[MSG_ID_LENGTH + 1];
                assert(d->size == sizeof id);
                r = wire_field_copy_string(w, id, sizeof id);
                if (r < 0)
                        return r;
                if (!msg_id_is_valid(id))
                        return -EBADMSG;
                memcpy(p, id, sizeof id);
                return 0;
        }
        case KIND_STRING: {
                char *s;
                r = wire_field_get_string(w, d->size, &s);
                if (r < 0)
                        return r;
                free(*(char **) p);
                *(char **) p = s;
                return 0;
        }
        case KIND_NAME:
        case KIND_TARGET: {
                char v[MSG_TARGET_MAX + 1];
                assert(d->size <= sizeof v);
                r = wire_field_copy_string(w, v, d->size);
                if (r < 0)
                        return r;
                if (d->kind == KIND_NAME ? !msg_name_is_valid(v) : !msg_target_is_valid(v))
                        return -EBADMSG;
                memcpy(p, v, strlen(v) + 1);
                return 0;
        }
        }
        assert(false);
        return -EINVAL;
}

static void free_strings(const Field *fields, size_t n, void *out) {
        for (size_t i = 0; i < n; i++)
                if (fields[i].kind == KIND_STRING) {
                        char **s = member(out, &fields[i]);
                        free(*s);
                        *s = NULL;
                }
}

/* A hook for the fields a table does not describe (repeated ones): 1 if it took the field, 0 if
 * not, or an error (with *ret_error set). */
typedef int (*OtherField)(void *out, const WireField *w, void *userdata, const char **ret_error);

static const char *const error_overrun = "a field runs past the end of its message or record, or has reserved bits set";

/* Decode every field of R into OUT (zero-initialized by the caller). On failure, the table's strings
 * in OUT are freed again; what the hook stored is the caller's to free. */
static int decode_fields(
                WireReader *rd,
                const Field *fields,
                size_t n,
                void *out,
                OtherField other,
                void *userdata,
                const char *unknown_error,
                const char **ret_error) {

        uint64_t seen = 0;
        int r;

        assert(n <= 64);

        for (;;) {
                const Field *d = NULL;
                WireField w;

                r = wire_reader_next(rd, &w);
                if (r < 0) {
                        r = fail(ret_error, r, error_overrun);
                        goto fail;
                }
                if (r == 0)
                        break;

                for (size_t i = 0; i < n && !d; i++)
                        if (fields[i].tag == w.tag)
                                d = &fields[i];
                if (!d) {
                        if (other) {
                                r = other(out, &w, userdata, ret_error);
                                if (r < 0)
                                        goto fail;
                                if (r > 0)
                                        continue;
                        }
                        if (wire_tag_is_skippable(w.tag))
                                continue;
                        r = fail(ret_error, -EBADMSG, unknown_error);
                        goto fail;
                }

                uint64_t bit = UINT64_C(1) << (d - fields);
                if (seen & bit) {
                        r = fail(ret_error, -EBADMSG, d->error); /* a singular field twice */
                        goto fail;
                }
                seen |= bit;

                r = decode_one(d, &w, out);
                if (r < 0) {
                        r = fail(ret_error, r, d->error);
                        goto fail;
                }
        }

        for (size_t i = 0; i < n; i++)
                if (fields[i].required && !(seen & (UINT64_C(1) << i))) {
                        r = fail(ret_error, -EBADMSG, fields[i].error);
                        goto fail;
                }
        return 0;

fail:
        free_strings(fields, n, out);
        return r;
}

static int decode_nested(const WireField *w, const Field *fields, size_t n, void *out, const char *unknown_error,
                         const char **ret_error) {
        WireReader rd;

        wire_field_open_nested(w, &rd);
        return decode_fields(&rd, fields, n, out, NULL, NULL, unknown_error, ret_error);
}

static const char *const error_fds = "the message carries file descriptors its type does not take";

static int decode_frame(
                WireFrame *f,
                size_t max_fds,
                const Field *fields,
                size_t n,
                void *out,
                OtherField other,
                void *userdata,
                const char *unknown_error,
                const char **ret_error) {

        WireReader rd;

        if (f->n_fds > max_fds)
                return fail(ret_error, -EBADMSG, error_fds);
        wire_reader_init(&rd, f->payload, f->size);
        return decode_fields(&rd, fields, n, out, other, userdata, unknown_error, ret_error);
}

static int encode_one(WireBuffer *b, const Field *d, const void *in) {
        const void *p = member_const(in, d);

        switch (d->kind) {
        case KIND_U32: {
                uint32_t v;
                memcpy(&v, p, sizeof v);
                if (!d->required && v == 0)
                        return 0;
                if ((int64_t) v < d->min || (int64_t) v > d->max)
                        return -EINVAL;
                return wire_put_u32(b, d->tag, v);
        }
        case KIND_I32: {
                int32_t v;
                memcpy(&v, p, sizeof v);
                if (!d->required && v == 0)
                        return 0;
                if (v < d->min || v > d->max)
                        return -EINVAL;
                return wire_put_i32(b, d->tag, v);
        }
        case KIND_U64: {
                uint64_t v;
                memcpy(&v, p, sizeof v);
                if (!d->required && v == 0)
                        return 0;
                return wire_put_u64(b, d->tag, v);
        }
        case KIND_BOOL: {
                bool v;
                memcpy(&v, p, sizeof v);
                if (!d->required && !v)
                        return 0;
                return wire_put_u32(b, d->tag, v);
        }
        case KIND_CHARS: {
                const char *s = p;
                if (!d->required && s[0] == '\0')
                        return 0;
                return wire_put_string_max(b, d->tag, s, d->size - 1);
        }
        case KIND_ID:
                if (!msg_id_is_valid(p))
                        return -EINVAL;
                return wire_put_string(b, d->tag, p);
        case KIND_STRING: {
                const char *s = *(char *const *) p;
                if (!s)
                        return d->required ? -EINVAL : 0;
                return wire_put_string_max(b, d->tag, s, d->size);
        }
        case KIND_NAME:
        case KIND_TARGET: {
                const char *s = p;
                if (!d->required && s[0] == '\0')
                        return 0;
                if (d->kind == KIND_NAME ? !msg_name_is_valid(s) : !msg_target_is_valid(s))
                        return -EINVAL;
                return wire_put_string(b, d->tag, s);
        }
        }
        assert(false);
        return -EINVAL;
}

static int encode_fields(WireBuffer *b, const Field *fields, size_t n, const void *in) {
        for (size_t i = 0; i < n; i++) {
                int r = encode_one(b, &fields[i], in);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int encode_nested(WireBuffer *b, uint16_t tag, const Field *fields, size_t n, const void *in) {
        int r;

        r = wire_begin_nested(b, tag);
        if (r < 0)
                return r;
        r = encode_fields(b, fields, n, in);
        if (r < 0)
                return r;
        return wire_end_nested(b);
}

/* ---- HELLO, HELLO_REPLY ---- */

static const Field hello_fields[] = {
        F_U32(MSG_HELLO_MIN_VERSION, MsgHello, min_version, true, 1, UINT32_MAX,
              "HELLO: min_version is missing, repeated or not a u32 >= 1"),
        F_U32(MSG_HELLO_MAX_VERSION, MsgHello, max_version, true, 1, UINT32_MAX,
              "HELLO: max_version is missing, repeated or not a u32 >= 1"),
        F_CHARS(MSG_HELLO_CLIENT_VERSION, MsgHello, client_version, true,
                "HELLO: client_version is missing, repeated, longer than 64 bytes or contains NUL"),
};

int msg_hello_encode(const MsgHello *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        if (m->min_version > m->max_version)
                return -EINVAL;
        wire_buffer_reset(b);
        return encode_fields(b, hello_fields, ELEMENTSOF(hello_fields), m);
}

int msg_hello_decode(WireFrame *f, MsgHello *ret, const char **ret_error) {
        MsgHello m = {};
        int r;

        assert_return(f && f->type == MSG_HELLO && ret, -EINVAL);
        r = decode_frame(f, 0, hello_fields, ELEMENTSOF(hello_fields), &m, NULL, NULL,
                         "HELLO has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (m.min_version > m.max_version)
                return fail(ret_error, -EBADMSG, "HELLO: min_version is above max_version");
        *ret = m;
        return 0;
}

static const Field hello_reply_fields[] = {
        F_U32(MSG_HELLO_REPLY_VERSION, MsgHelloReply, version, true, 1, UINT32_MAX,
              "HELLO_REPLY: version is missing, repeated or not a u32 >= 1"),
        F_CHARS(MSG_HELLO_REPLY_DAEMON_VERSION, MsgHelloReply, daemon_version, true,
                "HELLO_REPLY: daemon_version is missing, repeated, longer than 64 bytes or contains NUL"),
};

int msg_hello_reply_encode(const MsgHelloReply *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        wire_buffer_reset(b);
        return encode_fields(b, hello_reply_fields, ELEMENTSOF(hello_reply_fields), m);
}

int msg_hello_reply_decode(WireFrame *f, MsgHelloReply *ret, const char **ret_error) {
        MsgHelloReply m = {};
        int r;

        assert_return(f && f->type == MSG_HELLO_REPLY && ret, -EINVAL);
        r = decode_frame(f, 0, hello_reply_fields, ELEMENTSOF(hello_reply_fields), &m, NULL, NULL,
                         "HELLO_REPLY has an unknown field", ret_error);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

/* ---- EXEC ---- */

static const Field exec_fields[] = {
        F_STRING(MSG_EXEC_IMAGE, SandboxSpec, image, false, SPEC_STRING_MAX,
                 "EXEC: image is repeated, longer than 4096 bytes or contains NUL"),
        F_STRING(MSG_EXEC_UPPER, SandboxSpec, upper, false, SPEC_STRING_MAX,
                 "EXEC: upper is repeated, longer than 4096 bytes or contains NUL"),
        F_STRING(MSG_EXEC_WORKDIR, SandboxSpec, workdir, false, SPEC_STRING_MAX,
                 "EXEC: workdir is repeated, longer than 4096 bytes or contains NUL"),
        F_U32(MSG_EXEC_UID, SandboxSpec, uid, false, 0, UINT32_MAX, "EXEC: uid is repeated or not a u32"),
        F_U32(MSG_EXEC_GID, SandboxSpec, gid, false, 0, UINT32_MAX, "EXEC: gid is repeated or not a u32"),
        F_STRING(MSG_EXEC_HOSTNAME, SandboxSpec, hostname, false, SPEC_HOSTNAME_MAX,
                 "EXEC: hostname is repeated, longer than 64 bytes or contains NUL"),
        F_BOOL(MSG_EXEC_TTY, SandboxSpec, tty, false, "EXEC: tty is repeated or not a u32 0 or 1"),
        F_U64(MSG_EXEC_MEMORY_MAX, SandboxSpec, memory_max, false, "EXEC: memory_max is repeated or not a u64"),
        F_U64(MSG_EXEC_PIDS_MAX, SandboxSpec, pids_max, false, "EXEC: pids_max is repeated or not a u64"),
        F_U32(MSG_EXEC_CPUS_MILLI, SandboxSpec, cpus_milli, false, 0, UINT32_MAX,
              "EXEC: cpus_milli is repeated or not a u32"),
        F_U64(MSG_EXEC_TIMEOUT_USEC, SandboxSpec, timeout_usec, false, "EXEC: timeout_usec is repeated or not a u64"),
        F_U64(MSG_EXEC_CPU_TIME_USEC, SandboxSpec, cpu_time_usec, false,
              "EXEC: cpu_time_usec is repeated or not a u64"),
        F_STRING(MSG_EXEC_SECCOMP, SandboxSpec, seccomp, false, SPEC_STRING_MAX,
                 "EXEC: seccomp is repeated, longer than 4096 bytes or contains NUL"),
        F_U32(MSG_EXEC_NET, SandboxSpec, net, false, 0, _SPEC_NET_MAX - 1, "EXEC: net is repeated or not 0..3"),
        F_U64(MSG_EXEC_DISK_MAX, SandboxSpec, disk_max, false, "EXEC: disk_max is repeated or not a u64"),
        F_U64(MSG_EXEC_DISK_INODES_MAX, SandboxSpec, disk_inodes_max, false,
              "EXEC: disk_inodes_max is repeated or not a u64"),
        F_STRING(MSG_EXEC_IMAGE_REF, SandboxSpec, image_ref, false, SPEC_IMAGE_REF_MAX,
                 "EXEC: image_ref is repeated, longer than 1024 bytes or contains NUL"),
        F_STRING(MSG_EXEC_ENTRYPOINT, SandboxSpec, entrypoint, false, SPEC_STRING_MAX,
                 "EXEC: entrypoint is repeated, longer than 4096 bytes or contains NUL"),
        F_STRING(MSG_EXEC_USER, SandboxSpec, user, false, SPEC_USER_MAX,
                 "EXEC: user is repeated, longer than 256 bytes or contains NUL"),
        F_U64(MSG_EXEC_CAP_ADD, SandboxSpec, cap_add, false, "EXEC: cap_add is repeated or not a u64"),
        F_U64(MSG_EXEC_CAP_DROP, SandboxSpec, cap_drop, false, "EXEC: cap_drop is repeated or not a u64"),
};

static const Field bind_fields[] = {
        F_STRING(MSG_BIND_SOURCE, SpecBind, source, true, SPEC_STRING_MAX,
                 "EXEC: a bind's source is missing, repeated, longer than 4096 bytes or contains NUL"),
        F_STRING(MSG_BIND_DEST, SpecBind, dest, true, SPEC_STRING_MAX,
                 "EXEC: a bind's dest is missing, repeated, longer than 4096 bytes or contains NUL"),
        F_BOOL(MSG_BIND_READONLY, SpecBind, readonly, false, "EXEC: a bind's readonly is repeated or not 0 or 1"),
        F_BOOL(MSG_BIND_IDMAP, SpecBind, idmap, false, "EXEC: a bind's idmap is repeated or not 0 or 1"),
        F_BOOL(MSG_BIND_FD, SpecBind, by_fd, false, "EXEC: a bind's fd is repeated or not 0 or 1"),
};

static const Field volume_mount_fields[] = {
        F_CHARS(MSG_VOLUME_MOUNT_NAME, MsgVolumeMount, name, true,
                "EXEC: a volume's name is missing, repeated or longer than 64 bytes"),
        F_STRING(MSG_VOLUME_MOUNT_DEST, MsgVolumeMount, dest, true, SPEC_STRING_MAX - 1,
                 "EXEC: a volume's dest is missing, repeated, longer than 4095 bytes or contains NUL"),
        F_BOOL(MSG_VOLUME_MOUNT_READONLY, MsgVolumeMount, readonly, false,
               "EXEC: a volume's readonly is repeated or not 0 or 1"),
};

static const Field tmpfs_fields[] = {
        F_STRING(MSG_TMPFS_DEST, SpecTmpfs, dest, true, SPEC_STRING_MAX,
                 "EXEC: a tmpfs's dest is missing, repeated, longer than 4096 bytes or contains NUL"),
        F_U64(MSG_TMPFS_SIZE, SpecTmpfs, size, false, "EXEC: a tmpfs's size is repeated or not a u64"),
};

static const Field publish_fields[] = {
        F_U32(MSG_PUBLISH_PROTO, SpecPublish, proto, true, 6, 17, "EXEC: a publish's proto is missing, repeated or not 6 or 17"),
        F_U32(MSG_PUBLISH_HOST_PORT, SpecPublish, host_port, true, 1, 65535,
              "EXEC: a publish's host_port is missing, repeated or not 1..65535"),
        F_U32(MSG_PUBLISH_PORT, SpecPublish, port, true, 1, 65535,
              "EXEC: a publish's port is missing, repeated or not 1..65535"),
};

static const Field rlimit_fields[] = {
        F_I32(MSG_RLIMIT_RESOURCE, SpecRlimit, resource, true, 0, INT32_MAX,
              "EXEC: an rlimit's resource is missing, repeated or not a u32 below 2^31"),
        F_U64(MSG_RLIMIT_SOFT, SpecRlimit, soft, true, "EXEC: an rlimit's soft is missing, repeated or not a u64"),
        F_U64(MSG_RLIMIT_HARD, SpecRlimit, hard, true, "EXEC: an rlimit's hard is missing, repeated or not a u64"),
};

typedef struct ExecState {
        size_t argv_allocated, env_allocated, layers_allocated, binds_allocated, tmpfs_allocated;
        /* EXEC's and CREATE's own fields (version 4), where the message has them (else NULL). */
        char *in;                       /* EXEC: [MSG_TARGET_MAX + 1] */
        MsgCreate *create;              /* CREATE */
        MsgVolumeMount *volumes;        /* EXEC and CREATE (version 5): [MSG_VOLUMES_MAX] */
        size_t *n_volumes;
        uint32_t seen;                  /* which of them came: a second one is malformed */
} ExecState;

/* Grow *V (of *N used, *ALLOCATED slots) for one more element and a NULL terminator. */
static int grow(void **v, size_t *allocated, size_t need, size_t size) {
        size_t a;
        void *p;

        if (need <= *allocated)
                return 0;
        a = MAX(need, MAX(*allocated * 2, (size_t) 8));
        p = reallocarray(*v, a, size);
        if (!p)
                return -ENOMEM;
        *v = p;
        *allocated = a;
        return 0;
}

static int strv_push_field(char ***v, size_t *n, size_t *allocated, size_t max_n, size_t max_len,
                           const WireField *w, const char *error, const char **ret_error) {
        char *s;
        int r;

        if (*n >= max_n)
                return fail(ret_error, -EMSGSIZE, error);
        r = wire_field_get_string(w, max_len, &s);
        if (r < 0)
                return fail(ret_error, r, error);
        r = grow((void **) v, allocated, *n + 2, sizeof(char *));
        if (r < 0) {
                free(s);
                return fail(ret_error, r, "out of memory");
        }
        (*v)[(*n)++] = s;
        (*v)[*n] = NULL;
        return 1;
}

static int exec_other(void *out, const WireField *w, void *userdata, const char **ret_error) {
        SandboxSpec *s = out;
        ExecState *st = userdata;
        int r;

        switch (w->tag) {
        case MSG_EXEC_ARGV:
                return strv_push_field(&s->argv, &s->n_argv, &st->argv_allocated, SPEC_ARGS_MAX,
                                       SPEC_ARG_BYTES_MAX - 1, w,
                                       "EXEC: more than 4096 arguments, or one is over 1 MiB or contains NUL",
                                       ret_error);
        case MSG_EXEC_ENV:
                return strv_push_field(&s->env, &s->n_env, &st->env_allocated, SPEC_ENV_MAX,
                                       SPEC_ARG_BYTES_MAX - 1, w,
                                       "EXEC: more than 1024 environment variables, or one is over 1 MiB or contains NUL",
                                       ret_error);
        case MSG_EXEC_LAYER:
                return strv_push_field(&s->layers, &s->n_layers, &st->layers_allocated, SPEC_LAYERS_MAX,
                                       SPEC_STRING_MAX, w,
                                       "EXEC: more than 64 layers, or one is over 4096 bytes or contains NUL",
                                       ret_error);
        case MSG_EXEC_BIND: {
                SpecBind b = {};
                if (s->n_binds >= SPEC_MOUNTS_MAX)
                        return fail(ret_error, -EMSGSIZE, "EXEC: more than 64 binds");
                r = decode_nested(w, bind_fields, ELEMENTSOF(bind_fields), &b, "EXEC: a bind has an unknown field",
                                  ret_error);
                if (r < 0)
                        return r;
                r = grow((void **) &s->binds, &st->binds_allocated, s->n_binds + 1, sizeof(SpecBind));
                if (r < 0) {
                        free_strings(bind_fields, ELEMENTSOF(bind_fields), &b);
                        return fail(ret_error, r, "out of memory");
                }
                s->binds[s->n_binds++] = b;
                return 1;
        }
        case MSG_EXEC_TMPFS: {
                SpecTmpfs t = {};
                if (s->n_tmpfs >= SPEC_MOUNTS_MAX)
                        return fail(ret_error, -EMSGSIZE, "EXEC: more than 64 tmpfs");
                r = decode_nested(w, tmpfs_fields, ELEMENTSOF(tmpfs_fields), &t,
                                  "EXEC: a tmpfs has an unknown field", ret_error);
                if (r < 0)
                        return r;
                r = grow((void **) &s->tmpfs, &st->tmpfs_allocated, s->n_tmpfs + 1, sizeof(SpecTmpfs));
                if (r < 0) {
                        free_strings(tmpfs_fields, ELEMENTSOF(tmpfs_fields), &t);
                        return fail(ret_error, r, "out of memory");
                }
                s->tmpfs[s->n_tmpfs++] = t;
                return 1;
        }
        case MSG_EXEC_RLIMIT: {
                SpecRlimit l = {};
                if (s->n_rlimits >= SPEC_RLIMITS_MAX)
                        return fail(ret_error, -EMSGSIZE, "EXEC: more than 16 rlimits");
                r = decode_nested(w, rlimit_fields, ELEMENTSOF(rlimit_fields), &l,
                                  "EXEC: an rlimit has an unknown field", ret_error);
                if (r < 0)
                        return r;
                s->rlimits[s->n_rlimits++] = l;
                return 1;
        }
        case MSG_EXEC_PUBLISH: {
                SpecPublish p = {};
                if (s->n_publish >= SPEC_PUBLISH_MAX)
                        return fail(ret_error, -EMSGSIZE, "EXEC: more than 32 publish");
                r = decode_nested(w, publish_fields, ELEMENTSOF(publish_fields), &p,
                                  "EXEC: a publish has an unknown field", ret_error);
                if (r < 0)
                        return r;
                s->publish[s->n_publish++] = p;
                return 1;
        }
        case MSG_EXEC_IN: {
                char v[MSG_TARGET_MAX + 1];
                if (!st->in)
                        return 0;
                if (st->seen & (1u << 0))
                        return fail(ret_error, -EBADMSG, "EXEC: in is repeated");
                st->seen |= 1u << 0;
                r = wire_field_copy_string(w, v, sizeof v);
                if (r < 0 || !msg_target_is_valid(v))
                        return fail(ret_error, r == -EMSGSIZE ? r : -EBADMSG,
                                    "EXEC: in is not a sandbox id (16 lowercase hex digits) or name (1-63 letters, "
                                    "digits, '_', '.' or '-', starting with a letter or digit)");
                memcpy(st->in, v, strlen(v) + 1);
                return 1;
        }
        case MSG_EXEC_VOLUME: {
                MsgVolumeMount v = {};
                if (!st->volumes)
                        return 0;
                if (*st->n_volumes >= MSG_VOLUMES_MAX)
                        return fail(ret_error, -EMSGSIZE, "EXEC: more than 8 volumes");
                r = decode_nested(w, volume_mount_fields, ELEMENTSOF(volume_mount_fields), &v,
                                  "EXEC: a volume has an unknown field", ret_error);
                if (r < 0)
                        return r;
                if (!msg_volume_name_is_valid(v.name) || !msg_volume_dest_is_valid(v.dest)) {
                        free(v.dest);
                        return fail(ret_error, -EBADMSG,
                                    "EXEC: a volume's name is not 1-64 letters, digits, '_', '.' or '-' starting with "
                                    "a letter or digit, or its dest is not an absolute path without '.' or '..' "
                                    "(and not '/')");
                }
                st->volumes[(*st->n_volumes)++] = v;
                return 1;
        }
        case MSG_CREATE_NAME: {
                char v[MSG_NAME_MAX + 1];
                if (!st->create)
                        return 0;
                if (st->seen & (1u << 1))
                        return fail(ret_error, -EBADMSG, "CREATE: name is repeated");
                st->seen |= 1u << 1;
                r = wire_field_copy_string(w, v, sizeof v);
                if (r < 0 || !msg_name_is_valid(v))
                        return fail(ret_error, r == -EMSGSIZE ? r : -EBADMSG,
                                    "CREATE: name is not 1-63 letters, digits, '_', '.' or '-' starting with a "
                                    "letter or digit (and not 16 hex digits, which is an id)");
                memcpy(st->create->name, v, strlen(v) + 1);
                return 1;
        }
        case MSG_CREATE_TTL_USEC:
        case MSG_CREATE_IDLE_TTL_USEC: {
                bool ttl = w->tag == MSG_CREATE_TTL_USEC;
                uint32_t bit = ttl ? 1u << 2 : 1u << 3;
                uint64_t v;
                if (!st->create)
                        return 0;
                if ((st->seen & bit) || wire_field_get_u64(w, &v) < 0 || v > MSG_TTL_MAX_USEC)
                        return fail(ret_error, -EBADMSG, ttl ? "CREATE: ttl_usec is repeated, not a u64 or above a year"
                                                             : "CREATE: idle_ttl_usec is repeated, not a u64 or above a "
                                                               "year");
                st->seen |= bit;
                *(ttl ? &st->create->ttl_usec : &st->create->idle_ttl_usec) = v;
                return 1;
        }
        default:
                return 0;
        }
}

/* The spec's fields (without descriptors). */
static int encode_spec(const SandboxSpec *s, WireBuffer *b, bool need_command) {
        int r;

        assert_return(s && b, -EINVAL);
        if ((s->n_argv == 0 && !s->image_ref && need_command) || s->n_argv > SPEC_ARGS_MAX ||
            (s->n_argv > 0 && !s->argv) ||
            s->n_env > SPEC_ENV_MAX ||
            s->n_layers > SPEC_LAYERS_MAX || s->n_binds > SPEC_MOUNTS_MAX || s->n_tmpfs > SPEC_MOUNTS_MAX ||
            s->n_rlimits > SPEC_RLIMITS_MAX || s->n_publish > SPEC_PUBLISH_MAX)
                return -EINVAL;
        if ((s->n_env > 0 && !s->env) || (s->n_layers > 0 && !s->layers) || (s->n_binds > 0 && !s->binds) ||
            (s->n_tmpfs > 0 && !s->tmpfs))
                return -EINVAL;

        wire_buffer_reset(b);
        for (size_t i = 0; i < s->n_argv; i++) {
                r = wire_put_string_max(b, MSG_EXEC_ARGV, s->argv[i], SPEC_ARG_BYTES_MAX - 1);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_env; i++) {
                r = wire_put_string_max(b, MSG_EXEC_ENV, s->env[i], SPEC_ARG_BYTES_MAX - 1);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_layers; i++) {
                r = wire_put_string_max(b, MSG_EXEC_LAYER, s->layers[i], SPEC_STRING_MAX);
                if (r < 0)
                        return r;
        }
        r = encode_fields(b, exec_fields, ELEMENTSOF(exec_fields), s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_binds; i++) {
                r = encode_nested(b, MSG_EXEC_BIND, bind_fields, ELEMENTSOF(bind_fields), &s->binds[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_tmpfs; i++) {
                r = encode_nested(b, MSG_EXEC_TMPFS, tmpfs_fields, ELEMENTSOF(tmpfs_fields), &s->tmpfs[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_rlimits; i++) {
                r = encode_nested(b, MSG_EXEC_RLIMIT, rlimit_fields, ELEMENTSOF(rlimit_fields), &s->rlimits[i]);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_publish; i++) {
                r = encode_nested(b, MSG_EXEC_PUBLISH, publish_fields, ELEMENTSOF(publish_fields), &s->publish[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int msg_exec_encode(const SandboxSpec *s, WireBuffer *b) {
        return encode_spec(s, b, true);
}

int msg_exec_in_encode(const SandboxSpec *s, const char *in, WireBuffer *b) {
        int r;

        assert_return(s && in && b, -EINVAL);
        if (!msg_target_is_valid(in))
                return -EINVAL;
        r = encode_spec(s, b, true);
        if (r < 0)
                return r;
        return wire_put_string(b, MSG_EXEC_IN, in);
}

int msg_spec_encode(const SandboxSpec *s, WireBuffer *b) {
        return encode_spec(s, b, false);
}

void msg_volume_mounts_done(MsgVolumeMount *v, size_t *n) {
        for (size_t i = 0; i < *n; i++) {
                free(v[i].dest);
                v[i].dest = NULL;
        }
        *n = 0;
}

int msg_exec_encode_volumes(const MsgVolumeMount *v, size_t n, WireBuffer *b) {
        assert_return(b && (v || n == 0), -EINVAL);
        if (n > MSG_VOLUMES_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (!msg_volume_name_is_valid(v[i].name) || !msg_volume_dest_is_valid(v[i].dest))
                        return -EINVAL;
                int r = encode_nested(b, MSG_EXEC_VOLUME, volume_mount_fields, ELEMENTSOF(volume_mount_fields), &v[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A spec that says only what one program of a sandbox that exists may say (EXEC with in). */
static bool spec_is_program_only(const SandboxSpec *s) {
        SandboxSpec only = *s;

        only.argv = NULL;
        only.n_argv = 0;
        only.env = NULL;
        only.n_env = 0;
        only.workdir = NULL;
        only.user = NULL;
        only.tty = false;
        only.timeout_usec = 0;
        return memcmp(&only, &(SandboxSpec) {}, sizeof only) == 0;
}

static int exec_decode_finish(WireFrame *f, SandboxSpec *sp, const char *in, MsgExec *ret, const char **ret_error);

int msg_exec_decode(WireFrame *f, MsgExec *ret, const char **ret_error) {
        _cleanup_(spec_done) SandboxSpec s = {};
        char in[MSG_TARGET_MAX + 1] = "";
        MsgVolumeMount volumes[MSG_VOLUMES_MAX] = {};
        size_t n_volumes = 0;
        ExecState st = { .in = in, .volumes = volumes, .n_volumes = &n_volumes };
        int r;

        assert_return(f && f->type == MSG_EXEC && ret, -EINVAL);

        /* Up to 3 descriptors may come; how many must come depends on tty, checked below. */
        r = decode_frame(f, 3, exec_fields, ELEMENTSOF(exec_fields), &s, exec_other, &st,
                         "EXEC has an unknown field", ret_error);
        if (r >= 0 && in[0] && n_volumes > 0)
                r = fail(ret_error, -EBADMSG, "EXEC with in: volumes are the sandbox's (give them to create)");
        if (r >= 0)
                r = exec_decode_finish(f, &s, in, ret, ret_error);
        if (r < 0) {
                msg_volume_mounts_done(volumes, &n_volumes);
                return r;
        }
        memcpy(ret->volumes, volumes, sizeof volumes);
        ret->n_volumes = n_volumes;
        return 0;
}

static int exec_decode_finish(WireFrame *f, SandboxSpec *sp, const char *in, MsgExec *ret, const char **ret_error) {
        _cleanup_(spec_done) SandboxSpec s = *sp;
        size_t want_fds;
        int r;

        *sp = (SandboxSpec) {};
        if (s.n_argv == 0 && (!s.image_ref || in[0]))
                return fail(ret_error, -EBADMSG,
                            "EXEC: argv is missing (it may be left out only with an image_ref)");
        if (in[0] && !spec_is_program_only(&s))
                return fail(ret_error, -EBADMSG,
                            "EXEC with in: only argv, env, workdir, user, tty and timeout_usec may be given (the "
                            "sandbox has the rest)");
        want_fds = s.tty ? 0 : 3;
        if (f->n_fds != want_fds)
                return fail(ret_error, -EBADMSG,
                            s.tty ? "EXEC with a tty carries no file descriptors"
                                  : "EXEC without a tty needs exactly 3 file descriptors (stdin, stdout, stderr)");
        r = spec_validate_flags(&s, in[0] ? SPEC_VALIDATE_EXEC_IN : 0, ret_error);
        if (r < 0)
                return r;

        *ret = (MsgExec) { .spec = s, .stdio = { -EBADF, -EBADF, -EBADF } };
        memcpy(ret->in, in, strlen(in) + 1);
        s = (SandboxSpec) {};
        for (size_t i = 0; i < want_fds; i++)
                ret->stdio[i] = wire_frame_take_fd(f, i);
        f->n_fds = 0;
        return 0;
}

int msg_spec_decode(const void *data, size_t size, unsigned flags, SandboxSpec *ret, const char **ret_error) {
        _cleanup_(spec_done) SandboxSpec s = {};
        ExecState st = {};
        WireReader rd;
        int r;

        assert_return(data || size == 0, -EINVAL);
        assert_return(ret, -EINVAL);
        wire_reader_init(&rd, data, size);
        r = decode_fields(&rd, exec_fields, ELEMENTSOF(exec_fields), &s, exec_other, &st, "a spec has an unknown field",
                          ret_error);
        if (r < 0)
                return r;
        r = spec_validate_flags(&s, flags, ret_error);
        if (r < 0)
                return r;
        *ret = s;
        s = (SandboxSpec) {};
        return 0;
}

/* ---- CREATE, CREATED ---- */

int msg_create_encode(const MsgCreate *m, WireBuffer *b) {
        int r;

        assert_return(m && b, -EINVAL);
        if (m->spec.n_argv > 0 || m->spec.tty || m->spec.timeout_usec || m->spec.cpu_time_usec ||
            m->ttl_usec > MSG_TTL_MAX_USEC || m->idle_ttl_usec > MSG_TTL_MAX_USEC ||
            (m->name[0] && !msg_name_is_valid(m->name)))
                return -EINVAL;
        r = encode_spec(&m->spec, b, false);
        if (r >= 0 && m->name[0])
                r = wire_put_string(b, MSG_CREATE_NAME, m->name);
        if (r >= 0 && m->ttl_usec)
                r = wire_put_u64(b, MSG_CREATE_TTL_USEC, m->ttl_usec);
        if (r >= 0 && m->idle_ttl_usec)
                r = wire_put_u64(b, MSG_CREATE_IDLE_TTL_USEC, m->idle_ttl_usec);
        if (r >= 0)
                r = msg_exec_encode_volumes(m->volumes, m->n_volumes, b);
        return r;
}

int msg_create_decode(WireFrame *f, MsgCreate *ret, const char **ret_error) {
        _cleanup_(msg_create_done) MsgCreate m = {};
        ExecState st = { .create = &m, .volumes = m.volumes, .n_volumes = &m.n_volumes };
        int r;

        assert_return(f && f->type == MSG_CREATE && ret, -EINVAL);
        r = decode_frame(f, 0, exec_fields, ELEMENTSOF(exec_fields), &m.spec, exec_other, &st,
                         "CREATE has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (m.spec.n_argv > 0 || m.spec.tty || m.spec.timeout_usec || m.spec.cpu_time_usec)
                return fail(ret_error, -EBADMSG,
                            "CREATE: a sandbox without a program of its own takes no argv, tty, timeout_usec or "
                            "cpu_time_usec (they are each exec's)");
        r = spec_validate_flags(&m.spec, SPEC_VALIDATE_NO_COMMAND, ret_error);
        if (r < 0)
                return r;
        *ret = m;
        m = (MsgCreate) {};
        return 0;
}

void msg_create_done(MsgCreate *m) {
        if (!m)
                return;
        spec_done(&m->spec);
        msg_volume_mounts_done(m->volumes, &m->n_volumes);
}

static const Field created_fields[] = {
        F_ID(MSG_CREATED_ID, MsgCreated, id, "CREATED: id is missing, repeated or not 16 lowercase hex digits"),
        F_NAME(MSG_CREATED_NAME, MsgCreated, name, false, "CREATED: name is repeated or not a sandbox name"),
};

int msg_created_encode(const MsgCreated *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        wire_buffer_reset(b);
        return encode_fields(b, created_fields, ELEMENTSOF(created_fields), m);
}

int msg_created_decode(WireFrame *f, MsgCreated *ret, const char **ret_error) {
        MsgCreated m = {};
        int r;

        assert_return(f && f->type == MSG_CREATED && ret, -EINVAL);
        r = decode_frame(f, 0, created_fields, ELEMENTSOF(created_fields), &m, NULL, NULL,
                         "CREATED has an unknown field", ret_error);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

/* ---- STOP, RM, PAUSE, RESUME ---- */

#define TARGET_ERROR(T) \
        T ": target is missing, repeated, or not a sandbox id (16 lowercase hex digits) or name (1-63 letters, " \
          "digits, '_', '.' or '-', starting with a letter or digit)"

static const Field stop_fields[] = {
        F_TARGET(MSG_TARGET_TARGET, MsgTarget, target, TARGET_ERROR("STOP")),
        F_U64(MSG_STOP_TIMEOUT_USEC, MsgTarget, timeout_usec, false, "STOP: timeout_usec is repeated or not a u64"),
};

static const Field rm_fields[] = {
        F_TARGET(MSG_TARGET_TARGET, MsgTarget, target, TARGET_ERROR("RM")),
        F_BOOL(MSG_RM_FORCE, MsgTarget, force, false, "RM: force is repeated or not 0 or 1"),
};

static const Field pause_fields[] = {
        F_TARGET(MSG_TARGET_TARGET, MsgTarget, target, TARGET_ERROR("PAUSE")),
};

static const Field resume_fields[] = {
        F_TARGET(MSG_TARGET_TARGET, MsgTarget, target, TARGET_ERROR("RESUME")),
};

static int target_fields(int type, const Field **ret, size_t *ret_n, const char **ret_unknown) {
        switch (type) {
        case MSG_STOP:
                *ret = stop_fields;
                *ret_n = ELEMENTSOF(stop_fields);
                *ret_unknown = "STOP has an unknown field";
                return 0;
        case MSG_RM:
                *ret = rm_fields;
                *ret_n = ELEMENTSOF(rm_fields);
                *ret_unknown = "RM has an unknown field";
                return 0;
        case MSG_PAUSE:
                *ret = pause_fields;
                *ret_n = ELEMENTSOF(pause_fields);
                *ret_unknown = "PAUSE has an unknown field";
                return 0;
        case MSG_RESUME:
                *ret = resume_fields;
                *ret_n = ELEMENTSOF(resume_fields);
                *ret_unknown = "RESUME has an unknown field";
                return 0;
        default:
                return -EINVAL;
        }
}

int msg_target_encode(MsgType type, const MsgTarget *m, WireBuffer *b) {
        const Field *fields;
        const char *unknown;
        size_t n;

        assert_return(m && b, -EINVAL);
        if (target_fields(type, &fields, &n, &unknown) < 0)
                return -EINVAL;
        if ((type != MSG_STOP && m->timeout_usec) || (type != MSG_RM && m->force) || m->timeout_usec > MSG_TTL_MAX_USEC)
                return -EINVAL;
        wire_buffer_reset(b);
        return encode_fields(b, fields, n, m);
}

int msg_target_decode(WireFrame *f, MsgTarget *ret, const char **ret_error) {
        MsgTarget m = {};
        const Field *fields;
        const char *unknown;
        size_t n;
        int r;

        assert_return(f && ret, -EINVAL);
        if (target_fields(f->type, &fields, &n, &unknown) < 0)
                return -EINVAL;
        r = decode_frame(f, 0, fields, n, &m, NULL, NULL, unknown, ret_error);
        if (r < 0)
                return r;
        if (m.timeout_usec > MSG_TTL_MAX_USEC)
                return fail(ret_error, -EBADMSG, "STOP: timeout_usec is above a year");
        *ret = m;
        return 0;
}

void msg_exec_done(MsgExec *m) {
        if (!m)
                return;
        spec_done(&m->spec);
        for (size_t i = 0; i < ELEMENTSOF(m->stdio); i++)
                m->stdio[i] = safe_close(m->stdio[i]);
        msg_volume_mounts_done(m->volumes, &m->n_volumes);
}

/* ---- STARTED ---- */

static const Field started_fields[] = {
        F_ID(MSG_STARTED_ID, MsgStarted, id, "STARTED: id is missing, repeated or not 16 lowercase hex digits"),
        F_U32(MSG_STARTED_PID, MsgStarted, pid, true, 1, INT32_MAX,
              "STARTED: pid is missing, repeated or not 1..2^31-1"),
};

int msg_started_encode(const MsgStarted *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        wire_buffer_reset(b);
        return encode_fields(b, started_fields, ELEMENTSOF(started_fields), m);
}

int msg_started_decode(WireFrame *f, MsgStarted *ret, const char **ret_error) {
        MsgStarted m = {};
        int r;

        assert_return(f && f->type == MSG_STARTED && ret, -EINVAL);
        r = decode_frame(f, 1, started_fields, ELEMENTSOF(started_fields), &m, NULL, NULL,
                         "STARTED has an unknown field", ret_error);
        if (r < 0)
                return r;
        m.pty_fd = f->n_fds > 0 ? wire_frame_take_fd(f, 0) : -EBADF;
        f->n_fds = 0;
        *ret = m;
        return 0;
}

void msg_started_done(MsgStarted *m) {
        if (m)
                m->pty_fd = safe_close(m->pty_fd);
}

/* ---- COPY ---- */

static const Field copy_fields[] = {
        F_TARGET(MSG_COPY_TARGET, MsgCopy, target, TARGET_ERROR("COPY")),
        F_CHARS(MSG_COPY_PATH, MsgCopy, path, true,
                "COPY: path is missing, repeated, or longer than 4095 bytes"),
        F_U32(MSG_COPY_DIRECTION, MsgCopy, direction, true, 0, _MSG_COPY_DIRECTION_MAX - 1,
              "COPY: direction is missing, repeated or not 0 (out) or 1 (in)"),
};

int msg_copy_encode(const MsgCopy *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        if (m->path[0] != '/' || strnlen(m->path, sizeof m->path) >= sizeof m->path)
                return -EINVAL;
        wire_buffer_reset(b);
        return encode_fields(b, copy_fields, ELEMENTSOF(copy_fields), m);
}

int msg_copy_decode(WireFrame *f, MsgCopy *ret, const char **ret_error) {
        MsgCopy m = { .fd = -EBADF };
        int r;

        assert_return(f && f->type == MSG_COPY && ret, -EINVAL);
        r = decode_frame(f, 1, copy_fields, ELEMENTSOF(copy_fields), &m, NULL, NULL, "COPY has an unknown field",
                         ret_error);
        if (r < 0)
                return r;
        if (m.path[0] != '/')
                return fail(ret_error, -EBADMSG, "COPY: path is not absolute");
        if (f->n_fds != 1)
                return fail(ret_error, -EBADMSG, "COPY: it carries one descriptor (the stream's pipe)");
        m.fd = wire_frame_take_fd(f, 0);
        f->n_fds = 0;
        *ret = m;
        return 0;
}

void msg_copy_done(MsgCopy *m) {
        if (m)
                m->fd = safe_close(m->fd);
}

/* ---- SNAPSHOT, SNAPSHOT_REPLY ---- */

/* Non-empty, printable ASCII, no spaces: an image name or reference (the daemon parses it further). */
static bool token_is_valid(const char *s, size_t size) {
        size_t n = strnlen(s, size);
        if (n == 0 || n >= size)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] >= 0x7f)
                        return false;
        return true;
}

static bool digest_string_is_valid(const char *s) {
        return strneq(s, "sha256:", 7) && strlen(s) == 7 + 64 && strspn(s + 7, "0123456789abcdef") == 64;
}

static const Field snapshot_fields[] = {
        F_TARGET(MSG_SNAPSHOT_TARGET, MsgSnapshot, target, TARGET_ERROR("SNAPSHOT")),
        F_CHARS(MSG_SNAPSHOT_IMAGE, MsgSnapshot, image, true,
                "SNAPSHOT: image is missing, repeated, or longer than 255 bytes"),
};

int msg_snapshot_encode(const MsgSnapshot *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        if (!token_is_valid(m->image, sizeof m->image))
                return -EINVAL;
        wire_buffer_reset(b);
        return encode_fields(b, snapshot_fields, ELEMENTSOF(snapshot_fields), m);
}

int msg_snapshot_decode(WireFrame *f, MsgSnapshot *ret, const char **ret_error) {
        MsgSnapshot m = {};
        int r;

        assert_return(f && f->type == MSG_SNAPSHOT && ret, -EINVAL);
        r = decode_frame(f, 0, snapshot_fields, ELEMENTSOF(snapshot_fields), &m, NULL, NULL,
                         "SNAPSHOT has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (!token_is_valid(m.image, sizeof m.image))
                return fail(ret_error, -EBADMSG, "SNAPSHOT: image is empty or has spaces or control characters");
        *ret = m;
        return 0;
}

static const Field snapshot_reply_fields[] = {
        F_CHARS(MSG_SNAPSHOT_REPLY_ID, MsgSnapshotReply, id, true,
                "SNAPSHOT_REPLY: id is missing, repeated or too long"),
        F_CHARS(MSG_SNAPSHOT_REPLY_REFERENCE, MsgSnapshotReply, reference, true,
                "SNAPSHOT_REPLY: reference is missing, repeated, or longer than 511 bytes"),
        F_U64(MSG_SNAPSHOT_REPLY_LAYER_BYTES, MsgSnapshotReply, layer_bytes, false,
              "SNAPSHOT_REPLY: layer_bytes is repeated or not a u64"),
        F_U64(MSG_SNAPSHOT_REPLY_PAUSE_USEC, MsgSnapshotReply, pause_usec, false,
              "SNAPSHOT_REPLY: pause_usec is repeated or not a u64"),
};

int msg_snapshot_reply_encode(const MsgSnapshotReply *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        if (!digest_string_is_valid(m->id) || !token_is_valid(m->reference, sizeof m->reference))
                return -EINVAL;
        wire_buffer_reset(b);
        return encode_fields(b, snapshot_reply_fields, ELEMENTSOF(snapshot_reply_fields), m);
}

int msg_snapshot_reply_decode(WireFrame *f, MsgSnapshotReply *ret, const char **ret_error) {
        MsgSnapshotReply m = {};
        int r;

        assert_return(f && f->type == MSG_SNAPSHOT_REPLY && ret, -EINVAL);
        r = decode_frame(f, 0, snapshot_reply_fields, ELEMENTSOF(snapshot_reply_fields), &m, NULL, NULL,
                         "SNAPSHOT_REPLY has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (!digest_string_is_valid(m.id))
                return fail(ret_error, -EBADMSG, "SNAPSHOT_REPLY: id is not sha256: and 64 lowercase hex digits");
        if (!token_is_valid(m.reference, sizeof m.reference))
                return fail(ret_error, -EBADMSG, "SNAPSHOT_REPLY: reference is empty or has spaces or control characters");
        *ret = m;
        return 0;
}

/* ---- SIGNAL, RESIZE, EXIT, KILL, ERROR: tables only ---- */

static const Field signal_fields[] = {
        F_U32(MSG_SIGNAL_SIGNAL, MsgSignal, signal, true, 1, MSG_SIGNAL_MAX,
              "SIGNAL: signal is missing, repeated or not 1..64"),
};

static const Field resize_fields[] = {
        F_U32(MSG_RESIZE_ROWS, MsgResize, rows, true, 1, 65535, "RESIZE: rows is missing, repeated or not 1..65535"),
        F_U32(MSG_RESIZE_COLS, MsgResize, cols, true, 1, 65535, "RESIZE: cols is missing, repeated or not 1..65535"),
};

static const Field exit_fields[] = {
        F_I32(MSG_EXIT_STATUS, MsgExit, status, true, 0, MSG_STATUS_MAX,
              "EXIT: status is missing, repeated or not 0..255"),
        F_I32(MSG_EXIT_EXIT_CODE, MsgExit, exit_code, true, -1, 255,
              "EXIT: exit_code is missing, repeated or not -1..255"),
        F_I32(MSG_EXIT_SIGNAL, MsgExit, signal, true, 0, MSG_SIGNAL_MAX,
              "EXIT: signal is missing, repeated or not 0..64"),
        F_U32(MSG_EXIT_LIMIT, MsgExit, limit, true, 0, _MSG_LIMIT_MAX - 1,
              "EXIT: limit is missing, repeated or not 0..3"),
        F_U64(MSG_EXIT_WALL_USEC, MsgExit, wall_usec, true, "EXIT: wall_usec is missing, repeated or not a u64"),
        F_U64(MSG_EXIT_CPU_USEC, MsgExit, cpu_usec, true, "EXIT: cpu_usec is missing, repeated or not a u64"),
        F_U64(MSG_EXIT_MEMORY_PEAK, MsgExit, memory_peak, true,
              "EXIT: memory_peak is missing, repeated or not a u64"),
        F_BOOL(MSG_EXIT_PIDS_LIMIT_HIT, MsgExit, pids_limit_hit, false,
               "EXIT: pids_limit_hit is repeated or not 0 or 1"),
        F_BOOL(MSG_EXIT_DISK_LIMIT_HIT, MsgExit, disk_limit_hit, false,
               "EXIT: disk_limit_hit is repeated or not 0 or 1"),
        F_U64(MSG_EXIT_MAX_RSS, MsgExit, max_rss, false, "EXIT: max_rss is repeated or not a u64"),
        F_BOOL(MSG_EXIT_UNION_FAILED, MsgExit, union_failed, false,
               "EXIT: union_failed is repeated or not 0 or 1"),
};

static const Field kill_fields[] = {
        F_ID(MSG_KILL_ID, MsgKill, id, "KILL: id is missing, repeated or not 16 lowercase hex digits"),
        F_U32(MSG_KILL_SIGNAL, MsgKill, signal, true, 1, MSG_SIGNAL_MAX,
              "KILL: signal is missing, repeated or not 1..64"),
};

static const Field error_fields[] = {
        F_I32(MSG_ERROR_STATUS, MsgError, status, true, 1, MSG_STATUS_MAX,
              "ERROR: status is missing, repeated or not 1..255"),
        F_I32(MSG_ERROR_ERROR, MsgError, error, false, 0, 4095, "ERROR: error is repeated or not 0..4095"),
        F_CHARS(MSG_ERROR_MESSAGE, MsgError, message, false,
                "ERROR: message is repeated, longer than 1024 bytes or contains NUL"),
};

#define DEFINE_SIMPLE(name, Type, TYPE, fields)                                                    \
        int msg_##name##_encode(const Type *m, WireBuffer *b) {                                   \
                assert_return(m && b, -EINVAL);                                                   \
                wire_buffer_reset(b);                                                             \
                return encode_fields(b, fields, ELEMENTSOF(fields), m);                           \
        }                                                                                         \
        int msg_##name##_decode(WireFrame *f, Type *ret, const char **ret_error) {                \
                Type m = {};                                                                      \
                int r;                                                                            \
                assert_return(f && f->type == TYPE && ret, -EINVAL);                              \
                r = decode_frame(f, 0, fields, ELEMENTSOF(fields), &m, NULL, NULL,                \
                                 #TYPE " has an unknown field", ret_error);                       \
                if (r < 0)                                                                        \
                        return r;                                                                 \
                *ret = m;                                                                         \
                return 0;                                                                         \
        }

DEFINE_SIMPLE(signal, MsgSignal, MSG_SIGNAL, signal_fields)
DEFINE_SIMPLE(resize, MsgResize, MSG_RESIZE, resize_fields)
DEFINE_SIMPLE(exit, MsgExit, MSG_EXIT, exit_fields)
DEFINE_SIMPLE(kill, MsgKill, MSG_KILL, kill_fields)
DEFINE_SIMPLE(error, MsgError, MSG_ERROR, error_fields)

/* ---- BIND_FDS ---- */

int msg_bind_fds_decode(WireFrame *f, MsgBindFds *ret, const char **ret_error) {
        MsgBindFds m = {};
        int r;

        assert_return(f && f->type == MSG_BIND_FDS && ret, -EINVAL);
        r = decode_frame(f, WIRE_FDS_MAX, NULL, 0, NULL, NULL, NULL, "BIND_FDS has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (f->n_fds == 0)
                return fail(ret_error, -EBADMSG, "BIND_FDS carries no file descriptor");
        for (size_t i = 0; i < f->n_fds; i++)
                m.fds[i] = wire_frame_take_fd(f, i);
        m.n_fds = f->n_fds;
        f->n_fds = 0;
        *ret = m;
        return 0;
}

void msg_bind_fds_done(MsgBindFds *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_fds; i++)
                m->fds[i] = safe_close(m->fds[i]);
        m->n_fds = 0;
}

/* ---- LIST, OK ---- */

int msg_empty_encode(WireBuffer *b) {
        assert_return(b, -EINVAL);
        wire_buffer_reset(b);
        return 0;
}

int msg_list_decode(WireFrame *f, const char **ret_error) {
        assert_return(f && f->type == MSG_LIST, -EINVAL);
        return decode_frame(f, 0, NULL, 0, NULL, NULL, NULL, "LIST has an unknown field", ret_error);
}

int msg_ok_decode(WireFrame *f, const char **ret_error) {
        assert_return(f && f->type == MSG_OK, -EINVAL);
        return decode_frame(f, 0, NULL, 0, NULL, NULL, NULL, "OK has an unknown field", ret_error);
}

/* ---- LIST_REPLY ---- */

static const Field entry_fields[] = {
        F_ID(MSG_ENTRY_ID, MsgListEntry, id,
             "LIST_REPLY: an entry's id is missing, repeated or not 16 lowercase hex digits"),
        F_U32(MSG_ENTRY_UID, MsgListEntry, uid, true, 0, UINT32_MAX,
              "LIST_REPLY: an entry's uid is missing, repeated or not a u32"),
        F_U32(MSG_ENTRY_PID, MsgListEntry, pid, false, 0, INT32_MAX,
              "LIST_REPLY: an entry's pid is repeated or not 0..2^31-1"),
        F_STRING(MSG_ENTRY_COMMAND, MsgListEntry, command, true, MSG_COMMAND_MAX,
                 "LIST_REPLY: an entry's command is missing, repeated, longer than 4096 bytes or contains NUL"),
        F_U64(MSG_ENTRY_STARTED_USEC, MsgListEntry, started_usec, true,
              "LIST_REPLY: an entry's started_usec is missing, repeated or not a u64"),
        F_NAME(MSG_ENTRY_NAME, MsgListEntry, name, false, "LIST_REPLY: an entry's name is repeated or not a name"),
        F_U32(MSG_ENTRY_KIND, MsgListEntry, kind, false, 0, _MSG_KIND_MAX - 1,
              "LIST_REPLY: an entry's kind is repeated or not 0..1"),
        F_U32(MSG_ENTRY_STATE, MsgListEntry, state, false, 0, _MSG_STATE_MAX - 1,
              "LIST_REPLY: an entry's state is repeated or not 0..3"),
        F_STRING(MSG_ENTRY_IMAGE, MsgListEntry, image, false, MSG_IMAGE_MAX,
                 "LIST_REPLY: an entry's image is repeated, longer than 4096 bytes or contains NUL"),
        F_U64(MSG_ENTRY_MEMORY_BYTES, MsgListEntry, memory_bytes, false,
              "LIST_REPLY: an entry's memory_bytes is repeated or not a u64"),
        F_U64(MSG_ENTRY_MEMORY_MAX, MsgListEntry, memory_max, false,
              "LIST_REPLY: an entry's memory_max is repeated or not a u64"),
        F_U64(MSG_ENTRY_CPU_USEC, MsgListEntry, cpu_usec, false,
              "LIST_REPLY: an entry's cpu_usec is repeated or not a u64"),
        F_U64(MSG_ENTRY_DISK_BYTES, MsgListEntry, disk_bytes, false,
              "LIST_REPLY: an entry's disk_bytes is repeated or not a u64"),
        F_U64(MSG_ENTRY_DISK_MAX, MsgListEntry, disk_max, false,
              "LIST_REPLY: an entry's disk_max is repeated or not a u64"),
        F_U32(MSG_ENTRY_EXECS, MsgListEntry, execs, false, 0, UINT32_MAX,
              "LIST_REPLY: an entry's execs is repeated or not a u32"),
        F_U64(MSG_ENTRY_EXPIRES_USEC, MsgListEntry, expires_usec, false,
              "LIST_REPLY: an entry's expires_usec is repeated or not a u64"),
        F_U64(MSG_ENTRY_IDLE_TTL_USEC, MsgListEntry, idle_ttl_usec, false,
              "LIST_REPLY: an entry's idle_ttl_usec is repeated or not a u64"),
};

/* What a client of VERSION < 4 is sent of an entry: the first five fields. */
#define ENTRY_FIELDS_V3 5

typedef struct ListState {
        size_t allocated;
} ListState;

static int list_reply_other(void *out, const WireField *w, void *userdata, const char **ret_error) {
        MsgListReply *m = out;
        ListState *st = userdata;
        MsgListEntry e = {};
        int r;

        if (w->tag != MSG_LIST_REPLY_ENTRY)
                return 0;
        if (m->n_entries >= MSG_LIST_ENTRIES_MAX)
                return fail(ret_error, -EMSGSIZE, "LIST_REPLY: more than 4096 entries");
        r = decode_nested(w, entry_fields, ELEMENTSOF(entry_fields), &e, "LIST_REPLY: an entry has an unknown field",
                          ret_error);
        if (r < 0)
                return r;
        r = grow((void **) &m->entries, &st->allocated, m->n_entries + 1, sizeof(MsgListEntry));
        if (r < 0) {
                free(e.command);
                free(e.image);
                return fail(ret_error, r, "out of memory");
        }
        m->entries[m->n_entries++] = e;
        return 1;
}

void msg_list_reply_done(MsgListReply *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_entries; i++) {
                free(m->entries[i].command);
                free(m->entries[i].image);
        }
        free(m->entries);
        *m = (MsgListReply) {};
}

int msg_list_reply_encode(const MsgListReply *m, WireBuffer *b) {
        return msg_list_reply_encode_version(m, MSG_PROTOCOL_VERSION, b);
}

int msg_list_reply_encode_version(const MsgListReply *m, uint32_t version, WireBuffer *b) {
        int r;

        assert_return(m && b, -EINVAL);
        if (m->n_entries > MSG_LIST_ENTRIES_MAX || (m->n_entries > 0 && !m->entries))
                return -EINVAL;
        wire_buffer_reset(b);
        for (size_t i = 0; i < m->n_entries; i++) {
                /* A client before version 4 requires pid, and knows none of the later fields. */
                if (version < 4 && m->entries[i].pid == 0)
                        return -EINVAL;
                r = encode_nested(b, MSG_LIST_REPLY_ENTRY, entry_fields,
                                  version < 4 ? ENTRY_FIELDS_V3 : ELEMENTSOF(entry_fields), &m->entries[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int msg_list_reply_decode(WireFrame *f, MsgListReply *ret, const char **ret_error) {
        _cleanup_(msg_list_reply_done) MsgListReply m = {};
        ListState st = {};
        int r;

        assert_return(f && f->type == MSG_LIST_REPLY && ret, -EINVAL);
        r = decode_frame(f, 0, NULL, 0, &m, list_reply_other, &st, "LIST_REPLY has an unknown field", ret_error);
        if (r < 0)
                return r;
        *ret = m;
        m = (MsgListReply) {};
        return 0;
}

/* ---- VOLUME_CREATE, VOLUME_RM, VOLUME_LIST, VOLUME_LIST_REPLY ---- */

static const Field volume_create_fields[] = {
        F_CHARS(MSG_VOLUME_NAME, MsgVolume, name, true, "VOLUME_CREATE: name is missing, repeated or longer than 64 bytes"),
        F_U64(MSG_VOLUME_SIZE, MsgVolume, size, false, "VOLUME_CREATE: size is repeated or not a u64"),
};

static const Field volume_rm_fields[] = {
        F_CHARS(MSG_VOLUME_NAME, MsgVolume, name, true, "VOLUME_RM: name is missing, repeated or longer than 64 bytes"),
};

static int volume_rm_other(void *out, const WireField *w, void *userdata, const char **ret_error) {
        MsgVolume *m = out;

        if (w->tag != MSG_VOLUME_UID)
                return 0;
        if (m->has_uid || wire_field_get_u32(w, &m->uid) < 0)
                return fail(ret_error, -EBADMSG, "VOLUME_RM: uid is repeated or not a u32");
        m->has_uid = true;
        return 1;
}

int msg_volume_encode(MsgType type, const MsgVolume *m, WireBuffer *b) {
        int r;

        assert_return(m && b && (type == MSG_VOLUME_CREATE || type == MSG_VOLUME_RM), -EINVAL);
        if (!msg_volume_name_is_valid(m->name) || (type == MSG_VOLUME_CREATE && m->has_uid))
                return -EINVAL;
        wire_buffer_reset(b);
        if (type == MSG_VOLUME_CREATE)
                return encode_fields(b, volume_create_fields, ELEMENTSOF(volume_create_fields), m);
        r = encode_fields(b, volume_rm_fields, ELEMENTSOF(volume_rm_fields), m);
        if (r >= 0 && m->has_uid)
                r = wire_put_u32(b, MSG_VOLUME_UID, m->uid);
        return r;
}

int msg_volume_decode(WireFrame *f, MsgVolume *ret, const char **ret_error) {
        MsgVolume m = {};
        int r;

        assert_return(f && (f->type == MSG_VOLUME_CREATE || f->type == MSG_VOLUME_RM) && ret, -EINVAL);
        if (f->type == MSG_VOLUME_CREATE)
                r = decode_frame(f, 0, volume_create_fields, ELEMENTSOF(volume_create_fields), &m, NULL, NULL,
                                 "VOLUME_CREATE has an unknown field", ret_error);
        else
                r = decode_frame(f, 0, volume_rm_fields, ELEMENTSOF(volume_rm_fields), &m, volume_rm_other, NULL,
                                 "VOLUME_RM has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (!msg_volume_name_is_valid(m.name))
                return fail(ret_error, -EBADMSG, "a volume name is 1-64 letters, digits, '_', '.' or '-', starting "
                                                 "with a letter or digit");
        *ret = m;
        return 0;
}

int msg_volume_list_decode(WireFrame *f, const char **ret_error) {
        assert_return(f && f->type == MSG_VOLUME_LIST, -EINVAL);
        return decode_frame(f, 0, NULL, 0, NULL, NULL, NULL, "VOLUME_LIST has an unknown field", ret_error);
}

static const Field volume_entry_fields[] = {
        F_CHARS(MSG_VOLUME_ENTRY_NAME, MsgVolumeEntry, name, true,
                "VOLUME_LIST_REPLY: an entry's name is missing, repeated or longer than 64 bytes"),
        F_U32(MSG_VOLUME_ENTRY_UID, MsgVolumeEntry, uid, true, 0, UINT32_MAX,
              "VOLUME_LIST_REPLY: an entry's uid is missing, repeated or not a u32"),
        F_U64(MSG_VOLUME_ENTRY_SIZE, MsgVolumeEntry, size, true,
              "VOLUME_LIST_REPLY: an entry's size is missing, repeated or not a u64"),
        F_U64(MSG_VOLUME_ENTRY_USED, MsgVolumeEntry, used, false,
              "VOLUME_LIST_REPLY: an entry's used is repeated or not a u64"),
        F_U64(MSG_VOLUME_ENTRY_CREATED_USEC, MsgVolumeEntry, created_usec, false,
              "VOLUME_LIST_REPLY: an entry's created_usec is repeated or not a u64"),
        F_CHARS(MSG_VOLUME_ENTRY_IN_USE_BY, MsgVolumeEntry, in_use_by, false,
                "VOLUME_LIST_REPLY: an entry's in_use_by is repeated or not a sandbox id"),
};

static int volume_list_reply_other(void *out, const WireField *w, void *userdata, const char **ret_error) {
        MsgVolumeListReply *m = out;
        ListState *st = userdata;
        MsgVolumeEntry e = {};
        int r;

        if (w->tag != MSG_VOLUME_LIST_REPLY_ENTRY)
                return 0;
        if (m->n_entries >= MSG_VOLUME_ENTRIES_MAX)
                return fail(ret_error, -EMSGSIZE, "VOLUME_LIST_REPLY: more than 4096 entries");
        r = decode_nested(w, volume_entry_fields, ELEMENTSOF(volume_entry_fields), &e,
                          "VOLUME_LIST_REPLY: an entry has an unknown field", ret_error);
        if (r < 0)
                return r;
        if (!msg_volume_name_is_valid(e.name) || (e.in_use_by[0] && !msg_id_is_valid(e.in_use_by)))
                return fail(ret_error, -EBADMSG, "VOLUME_LIST_REPLY: an entry's name is not a volume name, or its "
                                                 "in_use_by not a sandbox id");
        r = grow((void **) &m->entries, &st->allocated, m->n_entries + 1, sizeof(MsgVolumeEntry));
        if (r < 0)
                return fail(ret_error, r, "out of memory");
        m->entries[m->n_entries++] = e;
        return 1;
}

void msg_volume_list_reply_done(MsgVolumeListReply *m) {
        if (!m)
                return;
        free(m->entries);
        *m = (MsgVolumeListReply) {};
}

int msg_volume_list_reply_encode(const MsgVolumeListReply *m, WireBuffer *b) {
        assert_return(m && b, -EINVAL);
        if (m->n_entries > MSG_VOLUME_ENTRIES_MAX || (m->n_entries > 0 && !m->entries))
                return -EINVAL;
        wire_buffer_reset(b);
        for (size_t i = 0; i < m->n_entries; i++) {
                const MsgVolumeEntry *e = &m->entries[i];
                if (!msg_volume_name_is_valid(e->name) || (e->in_use_by[0] && !msg_id_is_valid(e->in_use_by)))
                        return -EINVAL;
                int r = encode_nested(b, MSG_VOLUME_LIST_REPLY_ENTRY, volume_entry_fields,
                                      ELEMENTSOF(volume_entry_fields), e);
                if (r < 0)
                        return r;
        }
        return 0;
}

int msg_volume_list_reply_decode(WireFrame *f, MsgVolumeListReply *ret, const char **ret_error) {
        _cleanup_(msg_volume_list_reply_done) MsgVolumeListReply m = {};
        ListState st = {};
        int r;

        assert_return(f && f->type == MSG_VOLUME_LIST_REPLY && ret, -EINVAL);
        r = decode_frame(f, 0, NULL, 0, &m, volume_list_reply_other, &st, "VOLUME_LIST_REPLY has an unknown field",
                         ret_error);
        if (r < 0)
                return r;
        *ret = m;
        m = (MsgVolumeListReply) {};
        return 0;
}
