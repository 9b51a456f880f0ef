/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unit test of proto/: the frame header, TLV encoding, the incremental decoder, every message's
 * encoder and decoder, and descriptor passing over a real socketpair. Round trips of every message
 * (a spec with every field set, and a minimal one); the decoder fed a byte at a time and in random
 * chunks; every prefix of a frame is incomplete; and each way a hostile peer can break a frame
 * (oversized length, bad magic/version/reserved, unknown required tags, duplicates, missing fields,
 * nested overruns, NUL in strings, wrong integer sizes, too many entries, wrong descriptor counts,
 * too many descriptors) fails cleanly without leaking a descriptor (counted in /proc/self/fd).
 * Unprivileged. Output is TAP.
 *
 * "test-proto --write-corpus DIR" writes the seed inputs of tests/fuzz/corpus/proto/ into DIR.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "proto/fdpass.h"
#include "proto/msg.h"
#include "proto/wire.h"
#include "tap.h"

/* ---- helpers ---- */

static int count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        if (!d)
                return -errno;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

static int devnull(void) {
        return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/* The raw bytes of a frame: header then payload. */
static uint8_t *frame_bytes(uint16_t type, const void *payload, size_t size, size_t *ret_n) {
        uint8_t *p = malloc(WIRE_HEADER_SIZE + size);
        if (!p)
                return NULL;
        wire_header_pack(type, (uint32_t) size, p);
        if (size)
                memcpy(p + WIRE_HEADER_SIZE, payload, size);
        *ret_n = WIRE_HEADER_SIZE + size;
        return p;
}

/* A frame as the decoder makes it from the bytes of TYPE + PAYLOAD, with N_FDS fresh /dev/null fds. */
static WireFrame *make_frame(uint16_t type, const void *payload, size_t size, size_t n_fds) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        _cleanup_free_ uint8_t *bytes = NULL;
        int fds[WIRE_FDS_MAX + 8];
        WireFrame *f = NULL;
        size_t n;

        bytes = frame_bytes(type, payload, size, &n);
        if (!d || !bytes || n_fds > ELEMENTSOF(fds))
                return NULL;
        for (size_t i = 0; i < n_fds; i++)
                fds[i] = devnull();
        if (wire_decoder_feed(d, bytes, n, fds, n_fds) < 0)
                return NULL;
        if (wire_decoder_pop(d, &f) != 1)
                return NULL;
        return f;
}

static WireFrame *make_frame_b(uint16_t type, const WireBuffer *b, size_t n_fds) {
        return make_frame(type, b->data, b->size, n_fds);
}

static char **strv_make(size_t n, const char *const *src) {
        char **v = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; v && i < n; i++)
                v[i] = strdup(src[i]);
        return v;
}

static void full_spec(SandboxSpec *s, bool tty) {
        static const char *const argv[] = { "/bin/echo", "hello", "", "wörld with spaces" };
        static const char *const env[] = { "A=1", "PATH=/usr/bin:/bin", "EMPTY=" };
        static const char *const layers[] = { "/layers/a", "/layers/b" };

        *s = (SandboxSpec) {
                .argv = strv_make(4, argv),
                .n_argv = 4,
                .env = strv_make(3, env),
                .n_env = 3,
                .image = strdup("/var/lib/images/debian"),
                .layers = strv_make(2, layers),
                .n_layers = 2,
                .upper = strdup("/var/lib/upper"),
                .workdir = strdup("/home/user"),
                .uid = 1000,
                .gid = 1001,
                .hostname = strdup("box-1.example"),
                .tty = tty,
                .binds = calloc(2, sizeof(SpecBind)),
                .n_binds = 2,
                .tmpfs = calloc(2, sizeof(SpecTmpfs)),
                .n_tmpfs = 2,
                .memory_max = UINT64_C(512) << 20,
                .pids_max = 100,
                .disk_max = UINT64_C(5) << 29,
                .disk_inodes_max = SPEC_UNLIMITED,
                .cpus_milli = 1500,
                .timeout_usec = UINT64_C(30000000),
                .cpu_time_usec = UINT64_C(10000000),
                .rlimits = {
                        { RLIMIT_NOFILE, 1024, 4096 },
                        { RLIMIT_CORE, 0, 0 },
                        { RLIMIT_STACK, UINT64_C(8) << 20, UINT64_MAX },
                },
                .n_rlimits = 3,
                .seccomp = strdup("default"),
                .net = SPEC_NET_BRIDGE,
                .publish = {
                        { IPPROTO_TCP, 8080, 80 },
                        { IPPROTO_UDP, 5353, 53 },
                },
                .n_publish = 2,
                .cap_add = SPEC_CAP(13) | SPEC_CAP(40),
                .cap_drop = SPEC_CAP(0),
        };
        s->binds[0] = (SpecBind) { strdup("/src"), strdup("/dst"), true };
        s->binds[1] = (SpecBind) { strdup("/data"), strdup("/mnt/data"), false, .idmap = true, .by_fd = true };
        s->tmpfs[0] = (SpecTmpfs) { strdup("/tmp"), UINT64_C(64) << 20 };
        s->tmpfs[1] = (SpecTmpfs) { strdup("/run"), 0 };
}

static void minimal_spec(SandboxSpec *s, bool tty) {
        static const char *const argv[] = { "true" };
        *s = (SandboxSpec) { .argv = strv_make(1, argv), .n_argv = 1, .tty = tty };
}

/* An image of the store: no argv (the image's Entrypoint and Cmd), --entrypoint '', a user by name. */
static void image_spec(SandboxSpec *s, bool tty) {
        static const char *const env[] = { "A=1" };
        *s = (SandboxSpec) {
                .env = strv_make(1, env),
                .n_env = 1,
                .image_ref = strdup("127.0.0.1:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                .entrypoint = strdup(""),
                .user = strdup("app:staff"),
                .tty = tty,
        };
}

static int check_strv(char **a, size_t na, char **b, size_t nb) {
        CHECK_EQ(na, nb);
        if (na == 0)
                return 0;
        CHECK(a && b);
        for (size_t i = 0; i < na; i++)
                CHECK_STREQ(a[i], b[i]);
        CHECK(!a[na]);
        return 0;
}

static int check_spec_equal(const SandboxSpec *a, const SandboxSpec *b) {
        CHECK_EQ(check_strv(a->argv, a->n_argv, b->argv, b->n_argv), 0);
        CHECK_EQ(check_strv(a->env, a->n_env, b->env, b->n_env), 0);
        CHECK_STREQ(a->image, b->image);
        CHECK_STREQ(a->image_ref, b->image_ref);
        CHECK_STREQ(a->entrypoint, b->entrypoint);
        CHECK_STREQ(a->user, b->user);
        CHECK_EQ(check_strv(a->layers, a->n_layers, b->layers, b->n_layers), 0);
        CHECK_STREQ(a->upper, b->upper);
        CHECK_STREQ(a->workdir, b->workdir);
        CHECK_EQ(a->uid, b->uid);
        CHECK_EQ(a->gid, b->gid);
        CHECK_STREQ(a->hostname, b->hostname);
        CHECK_EQ(a->tty, b->tty);
        CHECK_EQ(a->n_binds, b->n_binds);
        for (size_t i = 0; i < a->n_binds; i++) {
                CHECK_STREQ(a->binds[i].source, b->binds[i].source);
                CHECK_STREQ(a->binds[i].dest, b->binds[i].dest);
                CHECK_EQ(a->binds[i].readonly, b->binds[i].readonly);
                CHECK_EQ(a->binds[i].idmap, b->binds[i].idmap);
                CHECK_EQ(a->binds[i].by_fd, b->binds[i].by_fd);
        }
        CHECK_EQ(a->n_tmpfs, b->n_tmpfs);
        for (size_t i = 0; i < a->n_tmpfs; i++) {
                CHECK_STREQ(a->tmpfs[i].dest, b->tmpfs[i].dest);
                CHECK_U64(a->tmpfs[i].size, b->tmpfs[i].size);
        }
        CHECK_U64(a->memory_max, b->memory_max);
        CHECK_U64(a->pids_max, b->pids_max);
        CHECK_U64(a->disk_max, b->disk_max);
        CHECK_U64(a->disk_inodes_max, b->disk_inodes_max);
        CHECK_EQ(a->cpus_milli, b->cpus_milli);
        CHECK_U64(a->timeout_usec, b->timeout_usec);
        CHECK_U64(a->cpu_time_usec, b->cpu_time_usec);
        CHECK_EQ(a->n_rlimits, b->n_rlimits);
        for (size_t i = 0; i < a->n_rlimits; i++) {
                CHECK_EQ(a->rlimits[i].resource, b->rlimits[i].resource);
                CHECK_U64(a->rlimits[i].soft, b->rlimits[i].soft);
                CHECK_U64(a->rlimits[i].hard, b->rlimits[i].hard);
        }
        CHECK_STREQ(a->seccomp, b->seccomp);
        CHECK_EQ(a->net, b->net);
        CHECK_EQ(a->n_publish, b->n_publish);
        for (size_t i = 0; i < a->n_publish; i++) {
                CHECK_EQ(a->publish[i].proto, b->publish[i].proto);
                CHECK_EQ(a->publish[i].host_port, b->publish[i].host_port);
                CHECK_EQ(a->publish[i].port, b->publish[i].port);
        }
        CHECK_U64(a->cap_add, b->cap_add);
        CHECK_U64(a->cap_drop, b->cap_drop);
        return 0;
}

/* Decode PAYLOAD as TYPE with N_FDS descriptors through the matching decoder; returns its result and
 * checks that no descriptor outlives the frame. */
static int decode_as(uint16_t type, const void *payload, size_t size, size_t n_fds, const char **ret_error) {
        int before = count_fds(), r = -ENOTRECOVERABLE;
        WireFrame *f = make_frame(type, payload, size, n_fds);
        union {
                MsgHello hello;
                MsgHelloReply hello_reply;
                MsgExec exec;
                MsgStarted started;
                MsgSignal signal;
                MsgResize resize;
                MsgExit exit;
                MsgListReply list_reply;
                MsgKill kill;
                MsgError error;
                MsgBindFds bind_fds;
                MsgCreate create;
                MsgCreated created;
                MsgTarget target;
                MsgCopy copy;
                MsgSnapshot snapshot;
                MsgSnapshotReply snapshot_reply;
                MsgVolume volume;
                MsgVolumeListReply volume_list_reply;
        } m;

        if (!f)
                return -ENOMEM;
        switch (type) {
        case MSG_HELLO: r = msg_hello_decode(f, &m.hello, ret_error); break;
        case MSG_HELLO_REPLY: r = msg_hello_reply_decode(f, &m.hello_reply, ret_error); break;
        case MSG_EXEC:
                r = msg_exec_decode(f, &m.exec, ret_error);
                if (r >= 0)
                        msg_exec_done(&m.exec);
                break;
        case MSG_STARTED:
                r = msg_started_decode(f, &m.started, ret_error);
                if (r >= 0)
                        msg_started_done(&m.started);
                break;
        case MSG_SIGNAL: r = msg_signal_decode(f, &m.signal, ret_error); break;
        case MSG_RESIZE: r = msg_resize_decode(f, &m.resize, ret_error); break;
        case MSG_EXIT: r = msg_exit_decode(f, &m.exit, ret_error); break;
        case MSG_LIST: r = msg_list_decode(f, ret_error); break;
        case MSG_LIST_REPLY:
                r = msg_list_reply_decode(f, &m.list_reply, ret_error);
                if (r >= 0)
                        msg_list_reply_done(&m.list_reply);
                break;
        case MSG_KILL: r = msg_kill_decode(f, &m.kill, ret_error); break;
        case MSG_ERROR: r = msg_error_decode(f, &m.error, ret_error); break;
        case MSG_OK: r = msg_ok_decode(f, ret_error); break;
        case MSG_BIND_FDS:
                r = msg_bind_fds_decode(f, &m.bind_fds, ret_error);
                if (r >= 0)
                        msg_bind_fds_done(&m.bind_fds);
                break;
        case MSG_CREATE:
                r = msg_create_decode(f, &m.create, ret_error);
                if (r >= 0)
                        msg_create_done(&m.create);
                break;
        case MSG_CREATED: r = msg_created_decode(f, &m.created, ret_error); break;
        case MSG_STOP:
        case MSG_RM:
        case MSG_PAUSE:
        case MSG_RESUME: r = msg_target_decode(f, &m.target, ret_error); break;
        case MSG_SNAPSHOT: r = msg_snapshot_decode(f, &m.snapshot, ret_error); break;
        case MSG_SNAPSHOT_REPLY: r = msg_snapshot_reply_decode(f, &m.snapshot_reply, ret_error); break;
        case MSG_VOLUME_CREATE:
        case MSG_VOLUME_RM: r = msg_volume_decode(f, &m.volume, ret_error); break;
        case MSG_VOLUME_LIST: r = msg_volume_list_decode(f, ret_error); break;
        case MSG_VOLUME_LIST_REPLY:
                r = msg_volume_list_reply_decode(f, &m.volume_list_reply, ret_error);
                if (r >= 0)
                        msg_volume_list_reply_done(&m.volume_list_reply);
                break;
        case MSG_COPY:
                r = msg_copy_decode(f, &m.copy, ret_error);
                if (r >= 0)
                        msg_copy_done(&m.copy);
                break;
        }
        wire_frame_free(f);
        if (count_fds() != before) {
                printf("# decoding type %u leaked a descriptor\n", type);
                return -ENOTRECOVERABLE;
        }
        return r;
}

static int put_tlv(uint8_t *p, uint16_t tag, uint16_t reserved, uint32_t length) {
        p[0] = tag & 0xff, p[1] = tag >> 8, p[2] = reserved & 0xff, p[3] = reserved >> 8;
        for (unsigned i = 0; i < 4; i++)
                p[4 + i] = (length >> (8 * i)) & 0xff;
        return WIRE_FIELD_HEADER_SIZE;
}

/* A valid HELLO payload into B. */
static int hello_payload(WireBuffer *b) {
        MsgHello h = { .min_version = 1, .max_version = 1 };
        strcpy(h.client_version, "sandboxctl 0.1.0");
        return msg_hello_encode(&h, b);
}

/* ---- header and TLV basics ---- */

static int test_header(void) {
        uint8_t h[WIRE_HEADER_SIZE];
        uint16_t type;
        uint32_t length;

        wire_header_pack(MSG_EXEC, 1234, h);
        CHECK(memcmp(h, "SBX1", 4) == 0);
        CHECK_EQ(h[4], 1);
        CHECK_EQ(h[5], 0);
        CHECK_EQ(h[6], MSG_EXEC);
        CHECK_EQ(wire_header_unpack(h, &type, &length), 0);
        CHECK_EQ(type, MSG_EXEC);
        CHECK_EQ(length, 1234);

        wire_header_pack(MSG_OK, WIRE_PAYLOAD_MAX, h);
        CHECK_EQ(wire_header_unpack(h, &type, &length), 0);
        CHECK_EQ(length, WIRE_PAYLOAD_MAX);
        wire_header_pack(MSG_OK, WIRE_PAYLOAD_MAX + 1, h);
        CHECK_EQ(wire_header_unpack(h, &type, &length), -EMSGSIZE);
        wire_header_pack(MSG_OK, UINT32_MAX, h);
        CHECK_EQ(wire_header_unpack(h, &type, &length), -EMSGSIZE);

        wire_header_pack(MSG_OK, 0, h);
        h[0] ^= 1;
        CHECK_EQ(wire_header_unpack(h, &type, &length), -EBADMSG);
        wire_header_pack(MSG_OK, 0, h);
        h[4] = 2;
        CHECK_EQ(wire_header_unpack(h, &type, &length), -EPROTO);
        wire_header_pack(MSG_OK, 0, h);
        h[15] = 1;
        CHECK_EQ(wire_header_unpack(h, &type, &length), -EBADMSG);
        return 0;
}

static int test_tlv_reader(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        WireReader r, n;
        WireField f;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        bool yes;
        _cleanup_free_ char *s = NULL;
        char small[4];

        CHECK_EQ(wire_put_u32(&b, 1, 0xdeadbeef), 0);
        CHECK_EQ(wire_put_i32(&b, 2, -5), 0);
        CHECK_EQ(wire_put_u64(&b, 3, UINT64_C(0x0123456789abcdef)), 0);
        CHECK_EQ(wire_put_string(&b, 4, "hi"), 0);
        CHECK_EQ(wire_begin_nested(&b, 5), 0);
        CHECK_EQ(wire_put_u32(&b, 1, 1), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(wire_end_nested(&b), -EINVAL);
        CHECK_EQ(b.size, 8 + 4 + 8 + 4 + 8 + 8 + 8 + 2 + 8 + 12);
        /* little-endian on the wire */
        CHECK(memcmp(b.data, "\x01\x00\x00\x00\x04\x00\x00\x00\xef\xbe\xad\xde", 12) == 0);

        wire_reader_init(&r, b.data, b.size);
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        CHECK_EQ(wire_field_get_u32(&f, &u32), 0);
        CHECK_U64(u32, 0xdeadbeef);
        CHECK_EQ(wire_field_get_u64(&f, &u64), -EBADMSG);
        CHECK_EQ(wire_field_get_bool(&f, &yes), -EBADMSG);
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        CHECK_EQ(wire_field_get_i32(&f, &i32), 0);
        CHECK_EQ(i32, -5);
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        CHECK_EQ(wire_field_get_u32(&f, &u32), -EBADMSG);
        CHECK_EQ(wire_field_get_u64(&f, &u64), 0);
        CHECK_U64(u64, UINT64_C(0x0123456789abcdef));
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        CHECK_EQ(wire_field_get_string(&f, 1, &s), -EMSGSIZE);
        CHECK_EQ(wire_field_copy_string(&f, small, 2), -EMSGSIZE);
        CHECK_EQ(wire_field_copy_string(&f, small, 3), 0);
        CHECK_STREQ(small, "hi");
        CHECK_EQ(wire_field_get_string(&f, 2, &s), 0);
        CHECK_STREQ(s, "hi");
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        CHECK_EQ(f.tag, 5);
        wire_field_open_nested(&f, &n);
        CHECK_EQ(wire_reader_next(&n, &f), 1);
        CHECK_EQ(wire_field_get_bool(&f, &yes), 0);
        CHECK(yes);
        CHECK_EQ(wire_reader_next(&n, &f), 0);
        CHECK_EQ(wire_reader_next(&r, &f), 0);

        /* a string with a NUL inside */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_bytes(&b, 1, "a\0b", 3), 0);
        wire_reader_init(&r, b.data, b.size);
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        free(s);
        s = NULL;
        CHECK_EQ(wire_field_get_string(&f, 100, &s), -EBADMSG);
        CHECK(!s);

        /* truncated field header, overrunning value, reserved bits */
        uint8_t raw[32];
        put_tlv(raw, 1, 0, 4);
        wire_reader_init(&r, raw, 7);
        CHECK_EQ(wire_reader_next(&r, &f), -EBADMSG);
        wire_reader_init(&r, raw, 11);
        CHECK_EQ(wire_reader_next(&r, &f), -EBADMSG);
        wire_reader_init(&r, raw, 12);
        CHECK_EQ(wire_reader_next(&r, &f), 1);
        put_tlv(raw, 1, 1, 4);
        wire_reader_init(&r, raw, 12);
        CHECK_EQ(wire_reader_next(&r, &f), -EBADMSG);
        put_tlv(raw, 1, 0, UINT32_MAX);
        wire_reader_init(&r, raw, sizeof raw);
        CHECK_EQ(wire_reader_next(&r, &f), -EBADMSG);

        /* bounds when building */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string_max(&b, 1, "toolong", 3), -EINVAL);
        CHECK_EQ(wire_put_string(&b, 1, NULL), -EINVAL);
        for (unsigned i = 0; i < WIRE_NESTED_MAX; i++)
                CHECK_EQ(wire_begin_nested(&b, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, 1), -E2BIG);
        return 0;
}

static int test_buffer_limit(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_free_ uint8_t *big = calloc(1, WIRE_PAYLOAD_MAX);

        CHECK(big);
        CHECK_EQ(wire_put_bytes(&b, 1, big, WIRE_PAYLOAD_MAX - WIRE_FIELD_HEADER_SIZE), 0);
        CHECK_EQ(b.size, WIRE_PAYLOAD_MAX);
        CHECK_EQ(wire_put_u32(&b, 2, 0), -EMSGSIZE);
        CHECK_EQ(b.size, WIRE_PAYLOAD_MAX);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_bytes(&b, 1, big, WIRE_PAYLOAD_MAX), -EMSGSIZE);
        return 0;
}

/* ---- round trips of every message ---- */

static int test_roundtrip_hello(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        MsgHello h = { .min_version = 1, .max_version = 7 }, g;
        MsgHelloReply hr = { .version = 1 }, gr;
        uint32_t v;

        strcpy(h.client_version, "sandboxctl 0.1.0");
        CHECK_EQ(msg_hello_encode(&h, &b), 0);
        CHECK((f = make_frame_b(MSG_HELLO, &b, 0)));
        CHECK_EQ(msg_hello_decode(f, &g, NULL), 0);
        CHECK_EQ(g.min_version, 1);
        CHECK_EQ(g.max_version, 7);
        CHECK_STREQ(g.client_version, "sandboxctl 0.1.0");
        CHECK_EQ(msg_hello_negotiate(&g, &v), 0);
        CHECK_EQ(v, MSG_PROTOCOL_VERSION);
        g.min_version = MSG_PROTOCOL_VERSION + 1;
        g.max_version = MSG_PROTOCOL_VERSION + 5;
        CHECK_EQ(msg_hello_negotiate(&g, &v), -EPROTONOSUPPORT);

        strcpy(hr.daemon_version, "sandboxd 0.1.0");
        CHECK_EQ(msg_hello_reply_encode(&hr, &b), 0);
        f = wire_frame_free(f);
        CHECK((f = make_frame_b(MSG_HELLO_REPLY, &b, 0)));
        CHECK_EQ(msg_hello_reply_decode(f, &gr, NULL), 0);
        CHECK_EQ(gr.version, 1);
        CHECK_STREQ(gr.daemon_version, "sandboxd 0.1.0");

        /* the encoder refuses what the decoder would */
        h.min_version = 3;
        h.max_version = 2;
        CHECK_EQ(msg_hello_encode(&h, &b), -EINVAL);
        h.min_version = 0;
        h.max_version = 2;
        CHECK_EQ(msg_hello_encode(&h, &b), -EINVAL);
        return 0;
}

static int exec_roundtrip(void (*make)(SandboxSpec *, bool), bool tty) {
        _cleanup_(spec_done) SandboxSpec s = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        MsgExec m;
        const char *error = NULL;
        int before = count_fds();

        make(&s, tty);
        CHECK_EQ(spec_validate(&s, &error), 0);
        CHECK_EQ(msg_exec_encode(&s, &b), 0);
        CHECK((f = make_frame_b(MSG_EXEC, &b, tty ? 0 : 3)));
        CHECK_EQ(msg_exec_decode(f, &m, &error), 0);
        CHECK_EQ(f->n_fds, 0);
        CHECK_EQ(check_spec_equal(&m.spec, &s), 0);
        for (size_t i = 0; i < 3; i++)
                CHECK(tty ? m.stdio[i] < 0 : fd_is_open(m.stdio[i]));
        msg_exec_done(&m);
        f = wire_frame_free(f);
        CHECK_EQ(count_fds(), before);
        return 0;
}

static int test_roundtrip_exec_full(void) {
        CHECK_EQ(exec_roundtrip(full_spec, false), 0);
        CHECK_EQ(exec_roundtrip(full_spec, true), 0);
        return 0;
}

static int test_roundtrip_exec_minimal(void) {
        _cleanup_(spec_done) SandboxSpec s = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};

        CHECK_EQ(exec_roundtrip(minimal_spec, false), 0);
        CHECK_EQ(exec_roundtrip(minimal_spec, true), 0);
        /* absent fields are zero/NULL: the minimal spec is only its argv on the wire */
        minimal_spec(&s, false);
        CHECK_EQ(msg_exec_encode(&s, &b), 0);
        CHECK_EQ(b.size, WIRE_FIELD_HEADER_SIZE + 4);
        return 0;
}

static int test_roundtrip_exec_image(void) {
        _cleanup_(spec_done) SandboxSpec s = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};

        CHECK_EQ(exec_roundtrip(image_spec, false), 0);
        CHECK_EQ(exec_roundtrip(image_spec, true), 0);
        /* "" is sent as an empty string, not left out: --entrypoint '' means no entrypoint */
        image_spec(&s, true);
        CHECK_EQ(msg_exec_encode(&s, &b), 0);
        CHECK(memmem(b.data, b.size, "app:staff", 9));
        /* without an image, a spec needs its argv: the encoder refuses what the decoder would */
        free(s.image_ref);
        s.image_ref = NULL;
        CHECK_EQ(msg_exec_encode(&s, &b), -EINVAL);
        return 0;
}

static int test_roundtrip_started(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        MsgStarted m = { .id = "0123456789abcdef", .pid = 4242, .pty_fd = -EBADF }, g;
        int before = count_fds();

        CHECK_EQ(msg_started_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_STARTED, &b, 0)));
        CHECK_EQ(msg_started_decode(f, &g, NULL), 0);
        CHECK_STREQ(g.id, "0123456789abcdef");
        CHECK_EQ(g.pid, 4242);
        CHECK(g.pty_fd < 0);
        f = wire_frame_free(f);

        CHECK((f = make_frame_b(MSG_STARTED, &b, 1)));
        CHECK_EQ(msg_started_decode(f, &g, NULL), 0);
        CHECK(fd_is_open(g.pty_fd));
        CHECK_EQ(f->n_fds, 0);
        msg_started_done(&g);
        f = wire_frame_free(f);
        CHECK((f = make_frame_b(MSG_STARTED, &b, 2)));
        CHECK_EQ(msg_started_decode(f, &g, NULL), -EBADMSG);
        f = wire_frame_free(f);
        CHECK_EQ(count_fds(), before);

        strcpy(m.id, "0123456789ABCDEF");
        CHECK_EQ(msg_started_encode(&m, &b), -EINVAL);
        return 0;
}

static int test_roundtrip_small(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        MsgSignal sig = { .signal = 15 }, gsig;
        MsgResize rs = { .rows = 50, .cols = 65535 }, grs;
        MsgExit ex = { .status = 137, .exit_code = -1, .signal = 9, .limit = MSG_LIMIT_MEMORY,
                       .wall_usec = UINT64_C(123456789), .cpu_usec = 42, .memory_peak = UINT64_MAX,
                       .pids_limit_hit = true, .disk_limit_hit = true, .max_rss = UINT64_C(3) << 29 },
                gex;
        MsgKill k = { .id = "ffffffffffffffff", .signal = 64 }, gk;
        MsgError e = { .status = 127, .error = ENOENT }, ge;
        MsgError e0 = { .status = 125 }, ge0;

        CHECK_EQ(msg_signal_encode(&sig, &b), 0);
        CHECK((f = make_frame_b(MSG_SIGNAL, &b, 0)));
        CHECK_EQ(msg_signal_decode(f, &gsig, NULL), 0);
        CHECK_EQ(gsig.signal, 15);
        f = wire_frame_free(f);

        CHECK_EQ(msg_resize_encode(&rs, &b), 0);
        CHECK((f = make_frame_b(MSG_RESIZE, &b, 0)));
        CHECK_EQ(msg_resize_decode(f, &grs, NULL), 0);
        CHECK_EQ(grs.rows, 50);
        CHECK_EQ(grs.cols, 65535);
        f = wire_frame_free(f);

        CHECK_EQ(msg_exit_encode(&ex, &b), 0);
        CHECK((f = make_frame_b(MSG_EXIT, &b, 0)));
        CHECK_EQ(msg_exit_decode(f, &gex, NULL), 0);
        CHECK_EQ(gex.status, 137);
        CHECK_EQ(gex.exit_code, -1);
        CHECK_EQ(gex.signal, 9);
        CHECK_EQ(gex.limit, MSG_LIMIT_MEMORY);
        CHECK_U64(gex.wall_usec, 123456789);
        CHECK_U64(gex.cpu_usec, 42);
        CHECK_U64(gex.memory_peak, UINT64_MAX);
        CHECK(gex.pids_limit_hit && gex.disk_limit_hit && !gex.union_failed);
        CHECK_U64(gex.max_rss, UINT64_C(3) << 29);
        f = wire_frame_free(f);
        /* the sandbox stopped because its file system server ended */
        ex.union_failed = true;
        ex.pids_limit_hit = false;
        CHECK_EQ(msg_exit_encode(&ex, &b), 0);
        CHECK((f = make_frame_b(MSG_EXIT, &b, 0)));
        CHECK_EQ(msg_exit_decode(f, &gex, NULL), 0);
        CHECK(gex.disk_limit_hit && gex.union_failed && !gex.pids_limit_hit);
        f = wire_frame_free(f);
        /* all of EXIT's version-1 fields are required, zeros too; the version-2 ones default to 0 */
        ex = (MsgExit) {};
        CHECK_EQ(msg_exit_encode(&ex, &b), 0);
        CHECK((f = make_frame_b(MSG_EXIT, &b, 0)));
        gex.pids_limit_hit = gex.disk_limit_hit = true;
        gex.max_rss = 1;
        CHECK_EQ(msg_exit_decode(f, &gex, NULL), 0);
        CHECK_EQ(gex.status, 0);
        CHECK(!gex.pids_limit_hit && !gex.disk_limit_hit);
        CHECK_U64(gex.max_rss, 0);
        f = wire_frame_free(f);

        CHECK_EQ(msg_kill_encode(&k, &b), 0);
        CHECK((f = make_frame_b(MSG_KILL, &b, 0)));
        CHECK_EQ(msg_kill_decode(f, &gk, NULL), 0);
        CHECK_STREQ(gk.id, "ffffffffffffffff");
        CHECK_EQ(gk.signal, 64);
        f = wire_frame_free(f);

        strcpy(e.message, "sandboxd: cannot find 'foo'");
        CHECK_EQ(msg_error_encode(&e, &b), 0);
        CHECK((f = make_frame_b(MSG_ERROR, &b, 0)));
        CHECK_EQ(msg_error_decode(f, &ge, NULL), 0);
        CHECK_EQ(ge.status, 127);
        CHECK_EQ(ge.error, ENOENT);
        CHECK_STREQ(ge.message, "sandboxd: cannot find 'foo'");
        f = wire_frame_free(f);
        /* error and message are optional */
        CHECK_EQ(msg_error_encode(&e0, &b), 0);
        CHECK_EQ(b.size, WIRE_FIELD_HEADER_SIZE + 4);
        CHECK((f = make_frame_b(MSG_ERROR, &b, 0)));
        CHECK_EQ(msg_error_decode(f, &ge0, NULL), 0);
        CHECK_EQ(ge0.status, 125);
        CHECK_EQ(ge0.error, 0);
        CHECK_STREQ(ge0.message, "");
        f = wire_frame_free(f);

        CHECK_EQ(msg_empty_encode(&b), 0);
        CHECK_EQ(b.size, 0);
        CHECK((f = make_frame_b(MSG_LIST, &b, 0)));
        CHECK(!f->payload);
        CHECK_EQ(msg_list_decode(f, NULL), 0);
        f = wire_frame_free(f);
        CHECK((f = make_frame_b(MSG_OK, &b, 0)));
        CHECK_EQ(msg_ok_decode(f, NULL), 0);
        f = wire_frame_free(f);

        /* encoders refuse out-of-range values */
        sig.signal = 0;
        CHECK_EQ(msg_signal_encode(&sig, &b), -EINVAL);
        rs.rows = 65536;
        CHECK_EQ(msg_resize_encode(&rs, &b), -EINVAL);
        e.status = 0;
        CHECK_EQ(msg_error_encode(&e, &b), -EINVAL);
        return 0;
}

static int test_roundtrip_list_reply(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_(msg_list_reply_done) MsgListReply g = {};
        MsgListEntry entries[3] = {
                { .id = "0000000000000001", .uid = 0, .pid = 1, .command = (char *) "/bin/sh", .started_usec = 1 },
                { .id = "a1b2c3d4e5f60718", .uid = 1000, .pid = 99999, .command = (char *) "",
                  .started_usec = UINT64_C(1700000000000000) },
                { .id = "ffffffffffffffff", .uid = UINT32_MAX, .pid = INT32_MAX, .command = (char *) "python3",
                  .started_usec = UINT64_MAX },
        };
        MsgListReply m = { .entries = entries, .n_entries = 3 };

        CHECK_EQ(msg_list_reply_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_LIST_REPLY, &b, 0)));
        CHECK_EQ(msg_list_reply_decode(f, &g, NULL), 0);
        CHECK_EQ(g.n_entries, 3);
        for (size_t i = 0; i < 3; i++) {
                CHECK_STREQ(g.entries[i].id, entries[i].id);
                CHECK_EQ(g.entries[i].uid, entries[i].uid);
                CHECK_EQ(g.entries[i].pid, entries[i].pid);
                CHECK_STREQ(g.entries[i].command, entries[i].command);
                CHECK_U64(g.entries[i].started_usec, entries[i].started_usec);
        }
        msg_list_reply_done(&g);
        f = wire_frame_free(f);

        /* no entries: an empty payload */
        m.n_entries = 0;
        CHECK_EQ(msg_list_reply_encode(&m, &b), 0);
        CHECK_EQ(b.size, 0);
        CHECK((f = make_frame_b(MSG_LIST_REPLY, &b, 0)));
        CHECK_EQ(msg_list_reply_decode(f, &g, NULL), 0);
        CHECK_EQ(g.n_entries, 0);

        /* a missing command cannot be encoded */
        entries[0].command = NULL;
        m.n_entries = 1;
        CHECK_EQ(msg_list_reply_encode(&m, &b), -EINVAL);
        return 0;
}

static int test_names(void) {
        CHECK(msg_name_is_valid("web"));
        CHECK(msg_name_is_valid("A1_b.c-d"));
        CHECK(msg_name_is_valid("0123456789abcdeX"));
        CHECK(!msg_name_is_valid("0123456789abcdef")); /* an id */
        CHECK(!msg_name_is_valid(""));
        CHECK(!msg_name_is_valid("-x"));
        CHECK(!msg_name_is_valid(".x"));
        CHECK(!msg_name_is_valid("_x"));
        CHECK(!msg_name_is_valid("a b"));
        CHECK(!msg_name_is_valid("a/b"));
        CHECK(!msg_name_is_valid("a:b"));
        CHECK(!msg_name_is_valid(NULL));
        char long_name[MSG_NAME_MAX + 2];
        memset(long_name, 'a', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = '\0';
        CHECK(!msg_name_is_valid(long_name));
        long_name[MSG_NAME_MAX] = '\0';
        CHECK(msg_name_is_valid(long_name));
        CHECK(msg_target_is_valid("0123456789abcdef"));
        CHECK(msg_target_is_valid("web"));
        CHECK(msg_target_is_valid("0123456789ABCDEF0")); /* a name */
        CHECK(!msg_target_is_valid("-x"));
        CHECK_STREQ(msg_state_to_string(MSG_STATE_PAUSED), "paused");
        CHECK_STREQ(msg_kind_to_string(MSG_KIND_CREATED), "created");
        CHECK(!msg_state_to_string(_MSG_STATE_MAX));
        return 0;
}

static int test_roundtrip_create(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_(msg_create_done) MsgCreate m = { .name = "box-1", .ttl_usec = 3600 * UINT64_C(1000000),
                                                   .idle_ttl_usec = 60 * UINT64_C(1000000) };
        _cleanup_(msg_create_done) MsgCreate g = {};
        static const char *const env[] = { "A=1" };
        const char *error = NULL;

        m.spec.env = strv_make(1, env);
        m.spec.n_env = 1;
        m.spec.memory_max = 1 << 30;
        m.spec.workdir = strdup("/work");
        m.spec.image_ref = strdup("debian:bookworm");
        CHECK(m.spec.env && m.spec.workdir && m.spec.image_ref);
        CHECK_EQ(msg_create_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_CREATE, &b, 0)));
        CHECK_EQ(msg_create_decode(f, &g, &error), 0);
        CHECK_STREQ(g.name, "box-1");
        CHECK_U64(g.ttl_usec, m.ttl_usec);
        CHECK_U64(g.idle_ttl_usec, m.idle_ttl_usec);
        CHECK_EQ(g.spec.n_argv, 0);
        CHECK_STREQ(g.spec.env[0], "A=1");
        CHECK_STREQ(g.spec.workdir, "/work");
        CHECK_STREQ(g.spec.image_ref, "debian:bookworm");
        CHECK_U64(g.spec.memory_max, UINT64_C(1) << 30);
        f = wire_frame_free(f);
        /* no name, no ttl: both left out */
        m.name[0] = '\0';
        m.ttl_usec = m.idle_ttl_usec = 0;
        CHECK_EQ(msg_create_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_CREATE, &b, 0)));
        msg_create_done(&g);
        CHECK_EQ(msg_create_decode(f, &g, NULL), 0);
        CHECK_STREQ(g.name, "");
        CHECK_U64(g.ttl_usec, 0);
        f = wire_frame_free(f);

        /* what a sandbox without a program cannot have: a command, a tty, time limits; descriptors */
        static const uint16_t refused[] = { MSG_EXEC_ARGV, MSG_EXEC_TTY, MSG_EXEC_TIMEOUT_USEC, MSG_EXEC_CPU_TIME_USEC };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                CHECK_EQ(msg_create_encode(&m, &b), 0);
                if (refused[i] == MSG_EXEC_ARGV)
                        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "sh"), 0);
                else if (refused[i] == MSG_EXEC_TTY)
                        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
                else
                        CHECK_EQ(wire_put_u64(&b, refused[i], 5), 0);
                CHECK_EQ(decode_as(MSG_CREATE, b.data, b.size, 0, &error), -EBADMSG);
                CHECK(startswith(error, "CREATE: a sandbox without a program"));
        }
        CHECK_EQ(msg_create_encode(&m, &b), 0);
        CHECK_EQ(decode_as(MSG_CREATE, b.data, b.size, 1, &error), -EBADMSG);
        /* names that are not names, ttls above a year, repeated fields */
        static const char *const bad_names[] = { "", "0123456789abcdef", "-a", "a b", "a/b" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                CHECK_EQ(msg_create_encode(&m, &b), 0);
                CHECK_EQ(wire_put_string(&b, MSG_CREATE_NAME, bad_names[i]), 0);
                CHECK_EQ(decode_as(MSG_CREATE, b.data, b.size, 0, &error), -EBADMSG);
                CHECK(strstr(error, "name"));
        }
        CHECK_EQ(msg_create_encode(&m, &b), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_CREATE_TTL_USEC, MSG_TTL_MAX_USEC + 1), 0);
        CHECK_EQ(decode_as(MSG_CREATE, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "ttl_usec"));
        CHECK_EQ(msg_create_encode(&m, &b), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_CREATE_IDLE_TTL_USEC, 1), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_CREATE_IDLE_TTL_USEC, 2), 0);
        CHECK_EQ(decode_as(MSG_CREATE, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "idle_ttl_usec is repeated"));
        /* EXEC's own in is not CREATE's */
        CHECK_EQ(msg_create_encode(&m, &b), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IN, "web"), 0);
        CHECK_EQ(decode_as(MSG_CREATE, b.data, b.size, 0, &error), -EBADMSG);
        /* ... and CREATE's fields are not EXEC's */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_CREATE_NAME, "web"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        /* the encoder refuses what the decoder would */
        m.spec.tty = true;
        CHECK_EQ(msg_create_encode(&m, &b), -EINVAL);
        m.spec.tty = false;
        strcpy(m.name, "0123456789abcdef");
        CHECK_EQ(msg_create_encode(&m, &b), -EINVAL);

        MsgCreated c = { .id = "0123456789abcdef", .name = "web" }, gc;
        CHECK_EQ(msg_created_encode(&c, &b), 0);
        CHECK((f = make_frame_b(MSG_CREATED, &b, 0)));
        CHECK_EQ(msg_created_decode(f, &gc, NULL), 0);
        CHECK_STREQ(gc.id, c.id);
        CHECK_STREQ(gc.name, "web");
        return 0;
}

static int test_roundtrip_exec_in(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_(spec_done) SandboxSpec s = {};
        static const char *const argv[] = { "sh", "-c", "id" };
        static const char *const env[] = { "X=1" };
        const char *error = NULL;
        MsgExec g = { .stdio = { -EBADF, -EBADF, -EBADF } };

        s.argv = strv_make(3, argv);
        s.n_argv = 3;
        s.env = strv_make(1, env);
        s.n_env = 1;
        s.workdir = strdup("/srv");
        s.user = strdup("postgres"); /* a name without an image: the sandbox's /etc/passwd says */
        s.timeout_usec = 5000000;
        s.tty = true;
        CHECK(s.argv && s.env && s.workdir && s.user);
        CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
        CHECK((f = make_frame_b(MSG_EXEC, &b, 0)));
        CHECK_EQ(msg_exec_decode(f, &g, &error), 0);
        CHECK_STREQ(g.in, "web");
        CHECK_STREQ(g.spec.user, "postgres");
        CHECK_STREQ(g.spec.argv[2], "id");
        CHECK_U64(g.spec.timeout_usec, 5000000);
        msg_exec_done(&g);
        f = wire_frame_free(f);
        /* an id works as well; a bad target does not encode */
        CHECK_EQ(msg_exec_in_encode(&s, "0123456789abcdef", &b), 0);
        CHECK_EQ(msg_exec_in_encode(&s, "no way", &b), -EINVAL);
        /* without in, a user name needs an image */
        CHECK_EQ(msg_exec_encode(&s, &b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);
        /* with in, nothing of the sandbox's own may come */
        static const uint16_t sandbox_fields[] = { MSG_EXEC_MEMORY_MAX, MSG_EXEC_PIDS_MAX, MSG_EXEC_DISK_MAX,
                                                   MSG_EXEC_CPU_TIME_USEC, MSG_EXEC_CAP_ADD };
        for (size_t i = 0; i < ELEMENTSOF(sandbox_fields); i++) {
                CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
                CHECK_EQ(wire_put_u64(&b, sandbox_fields[i], 1), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
                CHECK(startswith(error, "EXEC with in: only argv"));
        }
        CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_HOSTNAME, "h"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE_REF, "debian"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        /* in twice, an in that is neither an id nor a name, an exec --in without argv */
        CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IN, "web"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "in is repeated"));
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IN, "a b"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "in is not"));
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IN, "web"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "argv is missing"));
        /* stdio: as for any EXEC */
        s.tty = false;
        CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 3, NULL), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, NULL), -EBADMSG);
        return 0;
}

static int test_roundtrip_targets(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;
        static const uint16_t types[] = { MSG_STOP, MSG_RM, MSG_PAUSE, MSG_RESUME };

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                MsgTarget m = { .target = "web", .timeout_usec = types[i] == MSG_STOP ? 2000000 : 0,
                                .force = types[i] == MSG_RM }, g;
                WireFrame *f;

                CHECK_EQ(msg_target_encode(types[i], &m, &b), 0);
                CHECK((f = make_frame_b(types[i], &b, 0)));
                CHECK_EQ(msg_target_decode(f, &g, NULL), 0);
                wire_frame_free(f);
                CHECK_STREQ(g.target, "web");
                CHECK_U64(g.timeout_usec, m.timeout_usec);
                CHECK_EQ(g.force, m.force);
                /* what another type has is not this one's */
                if (types[i] != MSG_RM) {
                        m.force = true;
                        CHECK_EQ(msg_target_encode(types[i], &m, &b), -EINVAL);
                }
                m.force = false;
                m.timeout_usec = types[i] != MSG_STOP;
                CHECK_EQ(msg_target_encode(types[i], &m, &b), types[i] == MSG_STOP ? 0 : -EINVAL);
                m.timeout_usec = 0;
                CHECK_EQ(msg_target_encode(types[i], &m, &b), 0);
                CHECK_EQ(wire_put_u32(&b, 3, 1), 0);
                CHECK_EQ(decode_as(types[i], b.data, b.size, 0, &error), -EBADMSG);
                CHECK(strstr(error, "unknown field"));
                /* not a target */
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_string(&b, MSG_TARGET_TARGET, "x y"), 0);
                CHECK_EQ(decode_as(types[i], b.data, b.size, 0, &error), -EBADMSG);
                CHECK(strstr(error, "target"));
        }
        MsgTarget big = { .target = "web", .timeout_usec = MSG_TTL_MAX_USEC + 1 };
        CHECK_EQ(msg_target_encode(MSG_STOP, &big, &b), -EINVAL);
        CHECK_EQ(msg_target_encode(MSG_OK, &big, &b), -EINVAL);
        return 0;
}

static int test_roundtrip_snapshot(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;
        MsgSnapshot m = { .target = "web", .image = "work:v1" }, g;
        MsgSnapshotReply rm = { .id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                .reference = "snapshots.sandbox.local/uid-1000/work:v1", .layer_bytes = 42,
                                .pause_usec = 7 }, rg;
        WireFrame *f;

        CHECK_EQ(msg_snapshot_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_SNAPSHOT, &b, 0)));
        CHECK_EQ(msg_snapshot_decode(f, &g, NULL), 0);
        wire_frame_free(f);
        CHECK_STREQ(g.target, "web");
        CHECK_STREQ(g.image, "work:v1");
        CHECK_EQ(msg_snapshot_reply_encode(&rm, &b), 0);
        CHECK((f = make_frame_b(MSG_SNAPSHOT_REPLY, &b, 0)));
        CHECK_EQ(msg_snapshot_reply_decode(f, &rg, NULL), 0);
        wire_frame_free(f);
        CHECK_STREQ(rg.id, rm.id);
        CHECK_STREQ(rg.reference, rm.reference);
        CHECK_EQ(rg.layer_bytes, 42u);
        CHECK_EQ(rg.pause_usec, 7u);
        /* an empty image, one with a space or a control character, a missing target, a bad digest, a descriptor */
        strcpy(m.image, "a b");
        CHECK_EQ(msg_snapshot_encode(&m, &b), -EINVAL);
        m.image[0] = 0;
        CHECK_EQ(msg_snapshot_encode(&m, &b), -EINVAL);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_SNAPSHOT_TARGET, "web") | wire_put_string(&b, MSG_SNAPSHOT_IMAGE, "a\tb"), 0);
        CHECK_EQ(decode_as(MSG_SNAPSHOT, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "image"));
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_SNAPSHOT_IMAGE, "a"), 0);
        CHECK_EQ(decode_as(MSG_SNAPSHOT, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "target"));
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_SNAPSHOT_TARGET, "web") | wire_put_string(&b, MSG_SNAPSHOT_IMAGE, "a"), 0);
        CHECK_EQ(decode_as(MSG_SNAPSHOT, b.data, b.size, 1, &error), -EBADMSG);
        {
                char long_image[MSG_SNAPSHOT_IMAGE_MAX + 1];
                memset(long_image, 'a', sizeof long_image - 1);
                long_image[sizeof long_image - 1] = 0;
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_string(&b, MSG_SNAPSHOT_TARGET, "web") |
                         wire_put_string(&b, MSG_SNAPSHOT_IMAGE, long_image), 0);
                CHECK(decode_as(MSG_SNAPSHOT, b.data, b.size, 0, &error) < 0);
                CHECK(strstr(error, "255"));
        }
        strcpy(rm.id, "sha256:0123");
        CHECK_EQ(msg_snapshot_reply_encode(&rm, &b), -EINVAL);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_SNAPSHOT_REPLY_ID, "sha256:0123") |
                 wire_put_string(&b, MSG_SNAPSHOT_REPLY_REFERENCE, "x"), 0);
        CHECK_EQ(decode_as(MSG_SNAPSHOT_REPLY, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "sha256"));
        return 0;
}

static int test_roundtrip_volumes(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;
        MsgVolume v = { .name = "data", .size = 1 << 30 }, g;
        WireFrame *f;

        CHECK(msg_volume_name_is_valid("a") && msg_volume_name_is_valid("Data_1.x-y") &&
              msg_volume_name_is_valid("0123456789abcdef"));
        CHECK(!msg_volume_name_is_valid("") && !msg_volume_name_is_valid("-a") && !msg_volume_name_is_valid(".a") &&
              !msg_volume_name_is_valid("a/b") && !msg_volume_name_is_valid("a b"));
        {
                char n[MSG_VOLUME_NAME_MAX + 2];
                memset(n, 'a', sizeof n - 1);
                n[sizeof n - 1] = 0;
                CHECK(!msg_volume_name_is_valid(n));
                n[MSG_VOLUME_NAME_MAX] = 0;
                CHECK(msg_volume_name_is_valid(n));
        }
        CHECK(msg_volume_dest_is_valid("/data") && msg_volume_dest_is_valid("/a/b/") && msg_volume_dest_is_valid("//x"));
        CHECK(!msg_volume_dest_is_valid("/") && !msg_volume_dest_is_valid("//") && !msg_volume_dest_is_valid("data") &&
              !msg_volume_dest_is_valid("/a/../b") && !msg_volume_dest_is_valid("/a/..") &&
              !msg_volume_dest_is_valid("/./a") && !msg_volume_dest_is_valid(""));
        /* VOLUME_CREATE and VOLUME_RM (with a uid) round trip; a create has no uid */
        CHECK_EQ(msg_volume_encode(MSG_VOLUME_CREATE, &v, &b), 0);
        CHECK((f = make_frame_b(MSG_VOLUME_CREATE, &b, 0)));
        CHECK_EQ(msg_volume_decode(f, &g, NULL), 0);
        wire_frame_free(f);
        CHECK_STREQ(g.name, "data");
        CHECK_EQ(g.size, (uint64_t) 1 << 30);
        CHECK(!g.has_uid);
        v.has_uid = true;
        v.uid = 1000;
        CHECK_EQ(msg_volume_encode(MSG_VOLUME_CREATE, &v, &b), -EINVAL);
        CHECK_EQ(msg_volume_encode(MSG_VOLUME_RM, &v, &b), 0);
        CHECK((f = make_frame_b(MSG_VOLUME_RM, &b, 0)));
        CHECK_EQ(msg_volume_decode(f, &g, NULL), 0);
        wire_frame_free(f);
        CHECK(g.has_uid && g.uid == 1000);
        strcpy(v.name, "a/b");
        CHECK_EQ(msg_volume_encode(MSG_VOLUME_RM, &v, &b), -EINVAL);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_VOLUME_NAME, "../x"), 0);
        CHECK_EQ(decode_as(MSG_VOLUME_RM, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "volume name"));
        CHECK_EQ(wire_put_u32(&b, MSG_VOLUME_UID, 1), 0);
        CHECK_EQ(decode_as(MSG_VOLUME_CREATE, b.data, b.size, 0, &error), -EBADMSG);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_VOLUME_NAME, "x") | wire_put_u32(&b, MSG_VOLUME_UID, 1) |
                 wire_put_u32(&b, MSG_VOLUME_UID, 2), 0);
        CHECK_EQ(decode_as(MSG_VOLUME_RM, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "uid"));
        wire_buffer_reset(&b);
        CHECK_EQ(decode_as(MSG_VOLUME_CREATE, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_EQ(decode_as(MSG_VOLUME_LIST, b.data, b.size, 0, &error), 0);
        CHECK_EQ(decode_as(MSG_VOLUME_LIST, b.data, b.size, 1, &error), -EBADMSG);

        /* VOLUME_LIST_REPLY */
        MsgVolumeEntry e[2] = { { .name = "a", .uid = 1, .size = 16 << 20, .used = 4096, .created_usec = 5,
                                  .in_use_by = "0123456789abcdef" },
                                { .name = "b", .uid = 2, .size = 1 << 30 } };
        MsgVolumeListReply lr = { .entries = e, .n_entries = 2 }, lg = {};
        CHECK_EQ(msg_volume_list_reply_encode(&lr, &b), 0);
        CHECK((f = make_frame_b(MSG_VOLUME_LIST_REPLY, &b, 0)));
        CHECK_EQ(msg_volume_list_reply_decode(f, &lg, NULL), 0);
        wire_frame_free(f);
        CHECK_EQ(lg.n_entries, 2u);
        CHECK_STREQ(lg.entries[0].in_use_by, "0123456789abcdef");
        CHECK_STREQ(lg.entries[1].in_use_by, "");
        CHECK_EQ(lg.entries[1].size, (uint64_t) 1 << 30);
        msg_volume_list_reply_done(&lg);
        strcpy(e[1].in_use_by, "nothex");
        CHECK_EQ(msg_volume_list_reply_encode(&lr, &b), -EINVAL);

        /* EXEC and CREATE carry volumes; EXEC with in does not; at most 8 */
        {
                SandboxSpec s;
                MsgExec x = { .stdio = { -EBADF, -EBADF, -EBADF } };
                MsgVolumeMount vm[MSG_VOLUMES_MAX + 1];
                for (size_t i = 0; i < ELEMENTSOF(vm); i++) {
                        vm[i] = (MsgVolumeMount) { .dest = (char *) "/v", .readonly = i == 1 };
                        snprintf(vm[i].name, sizeof vm[i].name, "v%zu", i);
                }
                minimal_spec(&s, true);
                CHECK_EQ(msg_exec_encode(&s, &b), 0);
                CHECK_EQ(msg_exec_encode_volumes(vm, 2, &b), 0);
                CHECK((f = make_frame_b(MSG_EXEC, &b, 0)));
                CHECK_EQ(msg_exec_decode(f, &x, NULL), 0);
                wire_frame_free(f);
                CHECK_EQ(x.n_volumes, 2u);
                CHECK_STREQ(x.volumes[1].name, "v1");
                CHECK_STREQ(x.volumes[1].dest, "/v");
                CHECK(x.volumes[1].readonly && !x.volumes[0].readonly);
                msg_exec_done(&x);
                CHECK_EQ(msg_exec_encode_volumes(vm, MSG_VOLUMES_MAX + 1, &b), -EINVAL);
                CHECK_EQ(msg_exec_encode(&s, &b), 0);
                for (size_t i = 0; i < ELEMENTSOF(vm); i++)
                        CHECK_EQ(msg_exec_encode_volumes(vm + i, 1, &b), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EMSGSIZE);
                CHECK(strstr(error, "8 volumes"));
                CHECK_EQ(msg_exec_in_encode(&s, "web", &b), 0);
                CHECK_EQ(msg_exec_encode_volumes(vm, 1, &b), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
                CHECK(strstr(error, "volumes"));
                CHECK_EQ(msg_exec_encode(&s, &b), 0);
                CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_VOLUME) | wire_put_string(&b, MSG_VOLUME_MOUNT_NAME, "v") |
                         wire_put_string(&b, MSG_VOLUME_MOUNT_DEST, "/a/../etc") | wire_end_nested(&b), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
                CHECK(strstr(error, "dest"));
                spec_done(&s);
                /* a spec record (the runtime's) takes no volumes */
                MsgCreate c = { .n_volumes = 1 };
                c.volumes[0] = (MsgVolumeMount) { .name = "v", .dest = strdup("/v") };
                CHECK_EQ(msg_create_encode(&c, &b), 0);
                MsgCreate cg;
                CHECK((f = make_frame_b(MSG_CREATE, &b, 0)));
                CHECK_EQ(msg_create_decode(f, &cg, NULL), 0);
                wire_frame_free(f);
                CHECK_EQ(cg.n_volumes, 1u);
                CHECK_STREQ(cg.volumes[0].dest, "/v");
                msg_create_done(&cg);
                SandboxSpec rs;
                CHECK_EQ(msg_spec_decode(b.data, b.size, SPEC_VALIDATE_NO_COMMAND, &rs, &error), -EBADMSG);
                msg_create_done(&c);
        }
        return 0;
}

static int test_roundtrip_copy(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;
        MsgCopy m = { .target = "web", .path = "/root/a b/ü", .direction = MSG_COPY_IN, .fd = -EBADF }, g;
        WireFrame *f;

        CHECK_EQ(msg_copy_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_COPY, &b, 1)));
        CHECK_EQ(msg_copy_decode(f, &g, NULL), 0);
        wire_frame_free(f);
        CHECK_STREQ(g.target, "web");
        CHECK_STREQ(g.path, "/root/a b/ü");
        CHECK_EQ(g.direction, MSG_COPY_IN);
        CHECK(g.fd >= 0);
        msg_copy_done(&g);
        CHECK_EQ(g.fd, -EBADF);
        /* exactly one descriptor */
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "descriptor"));
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 2, &error), -EBADMSG);
        /* a relative or empty path, a direction out of range, a missing field */
        m.path[0] = 'r';
        CHECK_EQ(msg_copy_encode(&m, &b), -EINVAL);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_COPY_TARGET, "web") | wire_put_string(&b, MSG_COPY_PATH, "root") |
                 wire_put_u32(&b, MSG_COPY_DIRECTION, 0), 0);
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 1, &error), -EBADMSG);
        CHECK(strstr(error, "absolute"));
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_COPY_TARGET, "web") | wire_put_string(&b, MSG_COPY_PATH, "/") |
                 wire_put_u32(&b, MSG_COPY_DIRECTION, 2), 0);
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 1, &error), -EBADMSG);
        CHECK(strstr(error, "direction"));
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_COPY_TARGET, "web") | wire_put_u32(&b, MSG_COPY_DIRECTION, 0), 0);
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 1, &error), -EBADMSG);
        CHECK(strstr(error, "path"));
        /* a path of 4096 bytes (no room for the NUL) */
        _cleanup_free_ char *big = malloc(MSG_COPY_PATH_MAX + 1);
        CHECK(big);
        memset(big, 'a', MSG_COPY_PATH_MAX);
        big[0] = '/';
        big[MSG_COPY_PATH_MAX] = 0;
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_COPY_TARGET, "web") | wire_put_string(&b, MSG_COPY_PATH, big) |
                 wire_put_u32(&b, MSG_COPY_DIRECTION, 0), 0);
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 1, &error), -EMSGSIZE);
        CHECK(strstr(error, "4095"));
        /* not a target */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_COPY_TARGET, "x/y") | wire_put_string(&b, MSG_COPY_PATH, "/") |
                 wire_put_u32(&b, MSG_COPY_DIRECTION, 0), 0);
        CHECK_EQ(decode_as(MSG_COPY, b.data, b.size, 1, &error), -EBADMSG);
        CHECK(strstr(error, "target"));
        return 0;
}

static int test_list_reply_versions(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        _cleanup_(msg_list_reply_done) MsgListReply g = {};
        MsgListEntry e[2] = {
                { .id = "0000000000000001", .uid = 1000, .pid = 42, .command = (char *) "", .started_usec = 7,
                  .name = "web", .kind = MSG_KIND_CREATED, .state = MSG_STATE_PAUSED, .image = (char *) "debian",
                  .memory_bytes = 1 << 20, .memory_max = UINT64_MAX, .cpu_usec = 9, .disk_bytes = 4096,
                  .disk_max = UINT64_C(10) << 30, .execs = 3, .expires_usec = 99, .idle_ttl_usec = 60 },
                { .id = "0000000000000002", .uid = 1000, .command = (char *) "", .started_usec = 8,
                  .kind = MSG_KIND_CREATED, .state = MSG_STATE_STOPPED },
        };
        MsgListReply m = { .entries = e, .n_entries = 2 };

        CHECK_EQ(msg_list_reply_encode(&m, &b), 0);
        CHECK((f = make_frame_b(MSG_LIST_REPLY, &b, 0)));
        CHECK_EQ(msg_list_reply_decode(f, &g, NULL), 0);
        CHECK_EQ(g.n_entries, 2);
        CHECK_STREQ(g.entries[0].name, "web");
        CHECK_EQ(g.entries[0].kind, MSG_KIND_CREATED);
        CHECK_EQ(g.entries[0].state, MSG_STATE_PAUSED);
        CHECK_STREQ(g.entries[0].image, "debian");
        CHECK_U64(g.entries[0].memory_bytes, UINT64_C(1) << 20);
        CHECK_U64(g.entries[0].memory_max, UINT64_MAX);
        CHECK_U64(g.entries[0].disk_max, UINT64_C(10) << 30);
        CHECK_EQ(g.entries[0].execs, 3);
        CHECK_U64(g.entries[0].expires_usec, 99);
        CHECK_U64(g.entries[0].idle_ttl_usec, 60);
        CHECK_EQ(g.entries[1].pid, 0);
        CHECK_EQ(g.entries[1].state, MSG_STATE_STOPPED);
        CHECK(!g.entries[1].image);
        msg_list_reply_done(&g);
        f = wire_frame_free(f);
        /* a version-3 client: no entry without a pid, and none of the new fields */
        CHECK_EQ(msg_list_reply_encode_version(&m, 3, &b), -EINVAL);
        m.n_entries = 1;
        CHECK_EQ(msg_list_reply_encode_version(&m, 3, &b), 0);
        CHECK((f = make_frame_b(MSG_LIST_REPLY, &b, 0)));
        CHECK_EQ(msg_list_reply_decode(f, &g, NULL), 0);
        CHECK_EQ(g.entries[0].pid, 42);
        CHECK_STREQ(g.entries[0].name, "");
        CHECK_EQ(g.entries[0].kind, MSG_KIND_EXEC);
        CHECK(!g.entries[0].image);
        CHECK_U64(g.entries[0].memory_bytes, 0);
        /* out of range */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_begin_nested(&b, MSG_LIST_REPLY_ENTRY), 0);
        CHECK_EQ(wire_put_string(&b, MSG_ENTRY_ID, "0123456789abcdef"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_ENTRY_UID, 0), 0);
        CHECK_EQ(wire_put_string(&b, MSG_ENTRY_COMMAND, ""), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_ENTRY_STARTED_USEC, 0), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_ENTRY_STATE, _MSG_STATE_MAX), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_LIST_REPLY, b.data, b.size, 0, NULL), -EBADMSG);
        return 0;
}

static int test_spec_record(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_(spec_done) SandboxSpec s = {}, g = {};
        const char *error = NULL;

        full_spec(&s, false);
        CHECK_EQ(msg_spec_encode(&s, &b), 0);
        CHECK_EQ(msg_spec_decode(b.data, b.size, 0, &g, &error), 0);
        CHECK_EQ(g.n_argv, s.n_argv);
        CHECK_STREQ(g.argv[0], s.argv[0]);
        CHECK_EQ(g.n_binds, s.n_binds);
        CHECK_U64(g.memory_max, s.memory_max);
        spec_done(&g);
        /* a sandbox without a program: no argv, which only NO_COMMAND accepts */
        spec_done(&s);
        s.memory_max = 1 << 30;
        CHECK_EQ(msg_spec_encode(&s, &b), 0);
        CHECK_EQ(msg_spec_decode(b.data, b.size, 0, &g, &error), -EINVAL);
        CHECK_EQ(msg_spec_decode(b.data, b.size, SPEC_VALIDATE_NO_COMMAND, &g, &error), 0);
        CHECK_U64(g.memory_max, UINT64_C(1) << 30);
        spec_done(&g);
        /* garbage */
        static const uint8_t junk[] = { 1, 0, 0, 0, 200, 0, 0, 0, 'x' };
        CHECK_EQ(msg_spec_decode(junk, sizeof junk, SPEC_VALIDATE_NO_COMMAND, &g, &error), -EBADMSG);
        return 0;
}

static int test_type_names(void) {
        CHECK_STREQ(msg_type_to_string(MSG_HELLO), "HELLO");
        CHECK_STREQ(msg_type_to_string(MSG_OK), "OK");
        CHECK_STREQ(msg_type_to_string(MSG_LIST_REPLY), "LIST_REPLY");
        CHECK(!msg_type_to_string(0));
        CHECK_STREQ(msg_type_to_string(MSG_BIND_FDS), "BIND_FDS");
        CHECK_STREQ(msg_type_to_string(MSG_CREATE), "CREATE");
        CHECK_STREQ(msg_type_to_string(MSG_RESUME), "RESUME");
        CHECK_STREQ(msg_type_to_string(MSG_COPY), "COPY");
        CHECK(!msg_type_to_string(_MSG_TYPE_MAX));
        CHECK(!msg_type_to_string(-1));
        CHECK(!msg_type_to_string(0xffff));
        CHECK(msg_id_is_valid("0123456789abcdef"));
        CHECK(!msg_id_is_valid("0123456789abcde"));
        CHECK(!msg_id_is_valid("0123456789abcdef0"));
        CHECK(!msg_id_is_valid("0123456789abcdeg"));
        CHECK(!msg_id_is_valid(NULL));
        return 0;
}

/* ---- the stream decoder ---- */

#define N_SAMPLES 14

typedef struct Sample {
        uint16_t type;
        WireBuffer b;
} Sample;

/* One frame of every type (and one of an unknown type) with valid payloads. */
static int make_samples(Sample s[static N_SAMPLES]) {
        _cleanup_(spec_done) SandboxSpec spec = {}, tty_spec = {};
        MsgHello h = { .min_version = 1, .max_version = 1, .client_version = "sandboxctl 0.1.0" };
        MsgHelloReply hr = { .version = 1, .daemon_version = "sandboxd 0.1.0" };
        MsgStarted st = { .id = "0123456789abcdef", .pid = 4242 };
        MsgSignal sig = { .signal = 2 };
        MsgResize rs = { .rows = 24, .cols = 80 };
        MsgExit ex = { .status = 3, .exit_code = 3, .wall_usec = 1000, .cpu_usec = 500, .memory_peak = 1 << 20 };
        MsgListEntry e[2] = {
                { .id = "0123456789abcdef", .uid = 1000, .pid = 4242, .command = (char *) "/bin/sh",
                  .started_usec = UINT64_C(1700000000000000) },
                { .id = "fedcba9876543210", .uid = 0, .pid = 77, .command = (char *) "make",
                  .started_usec = UINT64_C(1700000000000001) },
        };
        MsgListReply lr = { .entries = e, .n_entries = 2 };
        MsgKill k = { .id = "0123456789abcdef", .signal = 9 };
        MsgError er = { .status = 125, .error = EPERM, .message = "permission denied" };
        int r = 0;

        full_spec(&spec, false);
        full_spec(&tty_spec, true);
        memset(s, 0, sizeof(Sample) * N_SAMPLES);
        s[0].type = MSG_HELLO, r |= msg_hello_encode(&h, &s[0].b);
        s[1].type = MSG_HELLO_REPLY, r |= msg_hello_reply_encode(&hr, &s[1].b);
        s[2].type = MSG_EXEC, r |= msg_exec_encode(&spec, &s[2].b);
        s[3].type = MSG_EXEC, r |= msg_exec_encode(&tty_spec, &s[3].b);
        s[4].type = MSG_STARTED, r |= msg_started_encode(&st, &s[4].b);
        s[5].type = MSG_SIGNAL, r |= msg_signal_encode(&sig, &s[5].b);
        s[6].type = MSG_RESIZE, r |= msg_resize_encode(&rs, &s[6].b);
        s[7].type = MSG_EXIT, r |= msg_exit_encode(&ex, &s[7].b);
        s[8].type = MSG_LIST, r |= msg_empty_encode(&s[8].b);
        s[9].type = MSG_LIST_REPLY, r |= msg_list_reply_encode(&lr, &s[9].b);
        s[10].type = MSG_KILL, r |= msg_kill_encode(&k, &s[10].b);
        s[11].type = MSG_ERROR, r |= msg_error_encode(&er, &s[11].b);
        s[12].type = MSG_OK, r |= msg_empty_encode(&s[12].b);
        s[13].type = 0x4242; /* unknown to this protocol: framed all the same */
        r |= wire_put_string(&s[13].b, 0x8001, "from the future");
        return r ? -EINVAL : 0;
}

static void samples_done(Sample s[static N_SAMPLES]) {
        for (size_t i = 0; i < N_SAMPLES; i++)
                wire_buffer_done(&s[i].b);
}

static uint8_t *samples_stream(const Sample s[static N_SAMPLES], size_t *ret_n) {
        size_t n = 0;
        uint8_t *p;

        for (size_t i = 0; i < N_SAMPLES; i++)
                n += WIRE_HEADER_SIZE + s[i].b.size;
        p = malloc(n);
        if (!p)
                return NULL;
        n = 0;
        for (size_t i = 0; i < N_SAMPLES; i++) {
                wire_header_pack(s[i].type, (uint32_t) s[i].b.size, p + n);
                if (s[i].b.size)
                        memcpy(p + n + WIRE_HEADER_SIZE, s[i].b.data, s[i].b.size);
                n += WIRE_HEADER_SIZE + s[i].b.size;
        }
        *ret_n = n;
        return p;
}

static int check_frame(const WireFrame *f, const Sample *s) {
        CHECK_EQ(f->type, s->type);
        CHECK_EQ(f->size, s->b.size);
        CHECK(f->size == 0 || memcmp(f->payload, s->b.data, f->size) == 0);
        return 0;
}

/* Feed STREAM in chunks of sizes from NEXT_CHUNK; pop after every chunk; compare with the samples. */
static int feed_in_chunks(const Sample s[static N_SAMPLES], const uint8_t *stream, size_t n,
                          size_t (*next_chunk)(void)) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        size_t got = 0, done = 0;

        CHECK(d);
        for (size_t off = 0; off < n;) {
                size_t k = next_chunk(); /* not inside MIN(), which evaluates twice */
                k = MIN(k, n - off);
                WireFrame *f;
                int r;

                CHECK_EQ(wire_decoder_feed(d, stream + off, k, NULL, 0), 0);
                off += k;
                while ((r = wire_decoder_pop(d, &f)) > 0) {
                        CHECK(got < N_SAMPLES);
                        done += WIRE_HEADER_SIZE + s[got].b.size;
                        r = check_frame(f, &s[got++]);
                        wire_frame_free(f);
                        CHECK_EQ(r, 0);
                }
                CHECK_EQ(r, 0);
                CHECK(wire_decoder_at_boundary(d) == (off == done));
        }
        CHECK_EQ(got, N_SAMPLES);
        CHECK(wire_decoder_at_boundary(d));
        return 0;
}

static size_t one(void) {
        return 1;
}

static size_t random_chunk(void) {
        /* mostly small, sometimes large, to cross every boundary */
        return (random() % 8 == 0) ? (size_t) (random() % 70000) + 1 : (size_t) (random() % 37) + 1;
}

static size_t whole(void) {
        return SIZE_MAX;
}

static int test_decoder_chunks(void) {
        Sample s[N_SAMPLES];
        _cleanup_free_ uint8_t *stream = NULL;
        size_t n;
        int r = -1;

        CHECK_EQ(make_samples(s), 0);
        stream = samples_stream(s, &n);
        if (!stream)
                goto finish;
        if (feed_in_chunks(s, stream, n, whole) < 0 || feed_in_chunks(s, stream, n, one) < 0)
                goto finish;
        srandom(12345);
        for (unsigned i = 0; i < 200; i++)
                if (feed_in_chunks(s, stream, n, random_chunk) < 0)
                        goto finish;
        r = 0;
finish:
        samples_done(s);
        return r;
}

/* Every strict prefix of a valid frame is incomplete: never a frame, never an error. */
static int test_decoder_prefixes(void) {
        Sample s[N_SAMPLES];
        int r = -1;

        CHECK_EQ(make_samples(s), 0);
        for (size_t i = 0; i < N_SAMPLES; i++) {
                _cleanup_free_ uint8_t *bytes = NULL;
                size_t n;

                bytes = frame_bytes(s[i].type, s[i].b.data, s[i].b.size, &n);
                if (!bytes)
                        goto finish;
                for (size_t k = 0; k < n; k++) {
                        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
                        WireFrame *f = NULL;

                        if (!d || wire_decoder_feed(d, bytes, k, NULL, 0) != 0 || wire_decoder_pop(d, &f) != 0 ||
                            f || wire_decoder_at_boundary(d) != (k == 0)) {
                                printf("# sample %zu, prefix %zu of %zu: not incomplete\n", i, k, n);
                                goto finish;
                        }
                        /* and the rest completes it */
                        if (wire_decoder_feed(d, bytes + k, n - k, NULL, 0) != 0 || wire_decoder_pop(d, &f) != 1 ||
                            check_frame(f, &s[i]) < 0) {
                                printf("# sample %zu, prefix %zu of %zu: rest does not complete it\n", i, k, n);
                                wire_frame_free(f);
                                goto finish;
                        }
                        wire_frame_free(f);
                }
        }
        r = 0;
finish:
        samples_done(s);
        return r;
}

static int feed_header(uint16_t type, uint32_t length, void (*mangle)(uint8_t *)) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        uint8_t h[WIRE_HEADER_SIZE];
        WireFrame *f = NULL;
        int r;

        if (!d)
                return -ENOMEM;
        wire_header_pack(type, length, h);
        if (mangle)
                mangle(h);
        r = wire_decoder_feed(d, h, sizeof h, NULL, 0);
        /* sticky */
        if (r < 0 && (wire_decoder_feed(d, h, 1, NULL, 0) != r || wire_decoder_pop(d, &f) != r))
                return -ENOTRECOVERABLE;
        return r;
}

static void bad_magic(uint8_t *h) {
        memcpy(h, "SBX2", 4);
}
static void bad_version(uint8_t *h) {
        h[4] = 0;
}
static void bad_reserved(uint8_t *h) {
        h[12] = 0x80;
}

static int test_decoder_bad_headers(void) {
        CHECK_EQ(feed_header(MSG_EXEC, WIRE_PAYLOAD_MAX + 1, NULL), -EMSGSIZE);
        CHECK_EQ(feed_header(MSG_EXEC, UINT32_MAX, NULL), -EMSGSIZE);
        CHECK_EQ(feed_header(MSG_EXEC, WIRE_PAYLOAD_MAX, NULL), 0);
        CHECK_EQ(feed_header(MSG_OK, 0, bad_magic), -EBADMSG);
        CHECK_EQ(feed_header(MSG_OK, 0, bad_version), -EPROTO);
        CHECK_EQ(feed_header(MSG_OK, 0, bad_reserved), -EBADMSG);
        /* unknown types are framed; the message layer refuses them */
        CHECK_EQ(feed_header(0, 0, NULL), 0);
        CHECK_EQ(feed_header(0xffff, 0, NULL), 0);
        return 0;
}

/* A frame that claims 2 MiB allocates only what arrived. */
static int test_decoder_no_eager_allocation(void) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        uint8_t h[WIRE_HEADER_SIZE], x[10] = {};
        struct rusage a, b;

        CHECK(d);
        CHECK_EQ(getrusage(RUSAGE_SELF, &a), 0);
        for (unsigned i = 0; i < 64; i++) {
                _cleanup_(wire_decoder_freep) WireDecoder *e = wire_decoder_new();
                wire_header_pack(MSG_EXEC, WIRE_PAYLOAD_MAX, h);
                CHECK_EQ(wire_decoder_feed(e, h, sizeof h, NULL, 0), 0);
                CHECK_EQ(wire_decoder_feed(e, x, sizeof x, NULL, 0), 0);
                CHECK_EQ(wire_decoder_wanted(e), WIRE_PAYLOAD_MAX - sizeof x);
        }
        CHECK_EQ(getrusage(RUSAGE_SELF, &b), 0);
        /* 64 eager 2 MiB buffers would be 128 MiB; allow far less (the rest of the test allocates) */
        CHECK(b.ru_maxrss - a.ru_maxrss < 16 * 1024);
        return 0;
}

/* What the decoder holds: the partial frame as allocated, and the queued frames. */
static int test_decoder_buffered(void) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        _cleanup_free_ uint8_t *x = calloc(1, 300 * 1024);
        uint8_t h[WIRE_HEADER_SIZE];
        WireFrame *f;

        CHECK(d && x);
        CHECK_EQ(wire_decoder_buffered(d), 0);
        wire_header_pack(MSG_EXEC, WIRE_PAYLOAD_MAX, h);
        CHECK_EQ(wire_decoder_feed(d, h, 7, NULL, 0), 0);
        CHECK_EQ(wire_decoder_buffered(d), WIRE_HEADER_SIZE);
        CHECK_EQ(wire_decoder_feed(d, h + 7, sizeof h - 7, NULL, 0), 0);
        /* 300 KiB of a 2 MiB frame, in 64 KiB reads as a socket gives them: the buffer doubles */
        for (size_t off = 0; off < 300 * 1024; off += WIRE_READ_CHUNK)
                CHECK_EQ(wire_decoder_feed(d, x + off, MIN((size_t) WIRE_READ_CHUNK, 300 * 1024 - off), NULL, 0), 0);
        CHECK(wire_decoder_buffered(d) >= WIRE_HEADER_SIZE + 300 * 1024);
        CHECK(wire_decoder_buffered(d) <= WIRE_HEADER_SIZE + 600 * 1024);
        wire_decoder_free(d);

        /* complete frames count until popped */
        CHECK((d = wire_decoder_new()));
        wire_header_pack(MSG_LIST, 0, h);
        CHECK_EQ(wire_decoder_feed(d, h, sizeof h, NULL, 0), 0);
        wire_header_pack(MSG_HELLO, 1000, h);
        CHECK_EQ(wire_decoder_feed(d, h, sizeof h, NULL, 0), 0);
        CHECK_EQ(wire_decoder_feed(d, x, 1000, NULL, 0), 0);
        CHECK_EQ(wire_decoder_queued(d), 2);
        CHECK_EQ(wire_decoder_buffered(d), 2 * WIRE_HEADER_SIZE + 1000);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        wire_frame_free(f);
        CHECK_EQ(wire_decoder_buffered(d), WIRE_HEADER_SIZE + 1000);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        wire_frame_free(f);
        CHECK_EQ(wire_decoder_buffered(d), 0);
        /* an error drops the partial frame */
        wire_header_pack(MSG_EXEC, 5000, h);
        CHECK_EQ(wire_decoder_feed(d, h, sizeof h, NULL, 0), 0);
        CHECK_EQ(wire_decoder_feed(d, x, 4000, NULL, 0), 0);
        CHECK(wire_decoder_buffered(d) >= 4000);
        CHECK_EQ(wire_decoder_set_error(d, -EBADMSG), -EBADMSG);
        CHECK_EQ(wire_decoder_buffered(d), 0);
        return 0;
}

static int test_decoder_error_after_frames(void) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        uint8_t bytes[3 * WIRE_HEADER_SIZE];
        WireFrame *f;

        CHECK(d);
        wire_header_pack(MSG_LIST, 0, bytes);
        wire_header_pack(MSG_OK, 0, bytes + WIRE_HEADER_SIZE);
        wire_header_pack(MSG_OK, 0, bytes + 2 * WIRE_HEADER_SIZE);
        bytes[2 * WIRE_HEADER_SIZE] = 'X';
        CHECK_EQ(wire_decoder_feed(d, bytes, sizeof bytes, NULL, 0), -EBADMSG);
        CHECK_EQ(wire_decoder_error(d), -EBADMSG);
        CHECK_EQ(wire_decoder_queued(d), 2);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        CHECK_EQ(f->type, MSG_LIST);
        wire_frame_free(f);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        CHECK_EQ(f->type, MSG_OK);
        wire_frame_free(f);
        CHECK_EQ(wire_decoder_pop(d, &f), -EBADMSG);
        CHECK_EQ(wire_decoder_pop(d, &f), -EBADMSG);
        return 0;
}

static int test_decoder_fd_attribution(void) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        uint8_t bytes[2 * WIRE_HEADER_SIZE + 8];
        WireFrame *f;
        int fds[WIRE_FDS_MAX + 1];
        int before = count_fds();

        CHECK(d);
        wire_header_pack(MSG_LIST, 0, bytes);
        wire_header_pack(MSG_STARTED, 8, bytes + WIRE_HEADER_SIZE);
        memset(bytes + 2 * WIRE_HEADER_SIZE, 0, 8);

        /* the fd arrives with a chunk holding the first frame and the start of the second: it is the second's */
        fds[0] = devnull();
        CHECK_EQ(wire_decoder_feed(d, bytes, WIRE_HEADER_SIZE + 3, fds, 1), 0);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        CHECK_EQ(f->type, MSG_LIST);
        CHECK_EQ(f->n_fds, 0);
        wire_frame_free(f);
        CHECK_EQ(wire_decoder_feed(d, bytes + WIRE_HEADER_SIZE + 3, sizeof bytes - WIRE_HEADER_SIZE - 3, NULL, 0), 0);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        CHECK_EQ(f->type, MSG_STARTED);
        CHECK_EQ(f->n_fds, 1);
        CHECK(fd_is_open(f->fds[0]));
        wire_frame_free(f);
        CHECK_EQ(count_fds(), before);

        /* descriptors with bytes in the middle of a frame: no frame begins there */
        wire_decoder_free(d);
        CHECK((d = wire_decoder_new()));
        CHECK_EQ(wire_decoder_feed(d, bytes + WIRE_HEADER_SIZE, 5, NULL, 0), 0);
        fds[0] = devnull();
        fds[1] = devnull();
        CHECK_EQ(wire_decoder_feed(d, bytes + WIRE_HEADER_SIZE + 5, 5, fds, 2), -EBADMSG);
        CHECK_EQ(count_fds(), before);
        /* and with no bytes at all */
        wire_decoder_free(d);
        CHECK((d = wire_decoder_new()));
        fds[0] = devnull();
        CHECK_EQ(wire_decoder_feed(d, NULL, 0, fds, 1), -EBADMSG);
        CHECK_EQ(count_fds(), before);
        /* more than WIRE_FDS_MAX */
        wire_decoder_free(d);
        CHECK((d = wire_decoder_new()));
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = devnull();
        CHECK_EQ(wire_decoder_feed(d, bytes, WIRE_HEADER_SIZE, fds, ELEMENTSOF(fds)), -EMSGSIZE);
        CHECK_EQ(count_fds(), before);
        /* after an error, fed descriptors are closed too */
        fds[0] = devnull();
        CHECK_EQ(wire_decoder_feed(d, bytes, WIRE_HEADER_SIZE, fds, 1), -EMSGSIZE);
        CHECK_EQ(count_fds(), before);
        /* a partial frame's descriptors are closed with the decoder */
        wire_decoder_free(d);
        CHECK((d = wire_decoder_new()));
        fds[0] = devnull();
        CHECK_EQ(wire_decoder_feed(d, bytes + WIRE_HEADER_SIZE, 20, fds, 1), 0);
        d = wire_decoder_free(d);
        CHECK_EQ(count_fds(), before);
        return 0;
}

/* ---- malformed messages ---- */

static int test_unknown_tags(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        /* skippable: ignored, at the top level and inside a nested record */
        CHECK_EQ(hello_payload(&b), 0);
        CHECK_EQ(wire_put_string(&b, 0x8000, "ignored"), 0);
        CHECK_EQ(wire_put_u64(&b, 0xffff, 1), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, NULL), 0);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, 0x9000, 1), 0);
        CHECK_EQ(decode_as(MSG_LIST, b.data, b.size, 0, NULL), 0);
        CHECK_EQ(decode_as(MSG_OK, b.data, b.size, 0, NULL), 0);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_BIND), 0);
        CHECK_EQ(wire_put_string(&b, MSG_BIND_SOURCE, "/a"), 0);
        CHECK_EQ(wire_put_string(&b, 0x8123, "x"), 0);
        CHECK_EQ(wire_put_string(&b, MSG_BIND_DEST, "/b"), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), 0);

        /* required (not skippable): refused */
        CHECK_EQ(hello_payload(&b), 0);
        CHECK_EQ(wire_put_string(&b, 0x7fff, "x"), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_STREQ(error, "HELLO has an unknown field");
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, 0, 0), 0);
        CHECK_EQ(decode_as(MSG_LIST, b.data, b.size, 0, NULL), -EBADMSG);
        CHECK_EQ(decode_as(MSG_OK, b.data, b.size, 0, NULL), -EBADMSG);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_TMPFS), 0);
        CHECK_EQ(wire_put_string(&b, MSG_TMPFS_DEST, "/tmp"), 0);
        CHECK_EQ(wire_put_u32(&b, 3, 1), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_STREQ(error, "EXEC: a tmpfs has an unknown field");
        return 0;
}

static int test_duplicates(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        CHECK_EQ(hello_payload(&b), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MIN_VERSION, 1), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "min_version"));

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "again is fine: argv repeats"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE, "/img"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE, "/img2"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "image"));

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_BIND), 0);
        CHECK_EQ(wire_put_string(&b, MSG_BIND_SOURCE, "/a"), 0);
        CHECK_EQ(wire_put_string(&b, MSG_BIND_SOURCE, "/a"), 0);
        CHECK_EQ(wire_put_string(&b, MSG_BIND_DEST, "/b"), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "source"));
        return 0;
}

static int test_missing_required(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MIN_VERSION, 1), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MAX_VERSION, 1), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "client_version"));

        /* no argv */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(startswith(error, "EXEC: argv is missing"));
        CHECK_EQ(decode_as(MSG_EXEC, NULL, 0, 3, &error), -EBADMSG);
        /* ... unless an image of the store gives it */
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE_REF, "busybox"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), 0);

        /* an rlimit without hard */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_RLIMIT), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_RLIMIT_RESOURCE, RLIMIT_NOFILE), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_RLIMIT_SOFT, 10), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "hard"));

        /* a LIST_REPLY entry without command (version 4: pid may be left out, a stopped sandbox has
         * none); EXIT without memory_peak; empty STARTED, KILL, SIGNAL... */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_begin_nested(&b, MSG_LIST_REPLY_ENTRY), 0);
        CHECK_EQ(wire_put_string(&b, MSG_ENTRY_ID, "0123456789abcdef"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_ENTRY_UID, 0), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_ENTRY_STARTED_USEC, 0), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_LIST_REPLY, b.data, b.size, 0, &error), -EBADMSG);
        CHECK(strstr(error, "command"));

        /* STOP, RM, PAUSE, RESUME without a target; CREATED without an id */
        static const uint16_t targets[] = { MSG_STOP, MSG_RM, MSG_PAUSE, MSG_RESUME, MSG_CREATED };
        for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
                CHECK_EQ(decode_as(targets[i], NULL, 0, 0, &error), -EBADMSG);
                CHECK(strstr(error, targets[i] == MSG_CREATED ? "id" : "target"));
        }

        static const uint16_t needs_fields[] = { MSG_HELLO, MSG_HELLO_REPLY, MSG_STARTED, MSG_SIGNAL,
                                                 MSG_RESIZE, MSG_EXIT, MSG_KILL, MSG_ERROR };
        for (size_t i = 0; i < ELEMENTSOF(needs_fields); i++)
                CHECK_EQ(decode_as(needs_fields[i], NULL, 0, 0, NULL), -EBADMSG);
        return 0;
}

static int test_nested_overrun(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;
        size_t bind_at, inner_at;

        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        bind_at = b.size;
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_BIND), 0);
        CHECK_EQ(wire_put_string(&b, MSG_BIND_SOURCE, "/a"), 0);
        inner_at = b.size;
        CHECK_EQ(wire_put_string(&b, MSG_BIND_DEST, "/b"), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_WORKDIR, "/w"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), 0);

        /* the inner dest claims more bytes than its record holds (though the payload has them) */
        b.data[inner_at + 4] = 2 + 8;
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        b.data[inner_at + 4] = 2;
        /* the record claims more than the payload holds */
        b.data[bind_at + 4] = 0xff;
        b.data[bind_at + 5] = 0xff;
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        /* a record one byte short: its last field is cut */
        b.data[bind_at + 4] = 2 * WIRE_FIELD_HEADER_SIZE + 4 - 1;
        b.data[bind_at + 5] = 0;
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        /* a top-level field cut by the end of the payload */
        b.data[bind_at + 4] = 2 * WIRE_FIELD_HEADER_SIZE + 4;
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size - 1, 0, &error), -EBADMSG);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size - 11, 0, &error), -EBADMSG);
        /* reserved bits in a field header */
        b.data[2] = 1;
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        return 0;
}

static int test_string_nul(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MIN_VERSION, 1), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MAX_VERSION, 1), 0);
        CHECK_EQ(wire_put_bytes(&b, MSG_HELLO_CLIENT_VERSION, "a\0b", 3), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, &error), -EBADMSG);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_bytes(&b, MSG_EXEC_ARGV, "/bin/true\0-rf", 13), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_bytes(&b, MSG_EXEC_WORKDIR, "/tmp\0", 5), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        return 0;
}

static int test_integer_sizes(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        uint8_t x[8] = { 2 };

        /* u32 as 3, 5 and 8 bytes; u64 as 4 */
        for (size_t len = 0; len <= 8; len++) {
                if (len == 4)
                        continue;
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_bytes(&b, MSG_SIGNAL_SIGNAL, x, len), 0);
                CHECK_EQ(decode_as(MSG_SIGNAL, b.data, b.size, 0, NULL), -EBADMSG);
        }
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_bytes(&b, MSG_SIGNAL_SIGNAL, x, 4), 0);
        CHECK_EQ(decode_as(MSG_SIGNAL, b.data, b.size, 0, NULL), 0);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_MEMORY_MAX, 1 << 20), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, NULL), -EBADMSG);

        /* bool: only 0 and 1 */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 2), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, NULL), -EBADMSG);
        return 0;
}

static int test_ranges(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;
        static const uint32_t bad_signals[] = { 0, 65, UINT32_MAX };
        static const struct {
                const char *id;
                int r;
        } bad_ids[] = {
                { "", -EBADMSG },
                { "0123456789abcde", -EBADMSG },
                { "0123456789ABCDEF", -EBADMSG },
                { "0123456789abcdeg", -EBADMSG },
                { "0123456789abcdef0", -EMSGSIZE },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad_signals); i++) {
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_u32(&b, MSG_SIGNAL_SIGNAL, bad_signals[i]), 0);
                CHECK_EQ(decode_as(MSG_SIGNAL, b.data, b.size, 0, NULL), -EBADMSG);
        }
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, MSG_RESIZE_ROWS, 0), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_RESIZE_COLS, 80), 0);
        CHECK_EQ(decode_as(MSG_RESIZE, b.data, b.size, 0, NULL), -EBADMSG);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, MSG_RESIZE_ROWS, 24), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_RESIZE_COLS, 65536), 0);
        CHECK_EQ(decode_as(MSG_RESIZE, b.data, b.size, 0, NULL), -EBADMSG);

        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_string(&b, MSG_KILL_ID, bad_ids[i].id), 0);
                CHECK_EQ(wire_put_u32(&b, MSG_KILL_SIGNAL, 9), 0);
                CHECK_EQ(decode_as(MSG_KILL, b.data, b.size, 0, NULL), bad_ids[i].r);
        }

        /* HELLO min > max */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MIN_VERSION, 2), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MAX_VERSION, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_HELLO_CLIENT_VERSION, "x"), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_STREQ(error, "HELLO: min_version is above max_version");
        /* client_version over 64 bytes */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MIN_VERSION, 1), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_HELLO_MAX_VERSION, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_HELLO_CLIENT_VERSION,
                                 "01234567890123456789012345678901234567890123456789012345678901234"), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 0, NULL), -EMSGSIZE);

        /* EXIT limit 4, exit_code -2; ERROR status 0; STARTED pid 0; EXEC net 4 */
        MsgExit ex = { .status = 1 };
        CHECK_EQ(msg_exit_encode(&ex, &b), 0);
        b.data[3 * (WIRE_FIELD_HEADER_SIZE + 4) + WIRE_FIELD_HEADER_SIZE] = 4;
        CHECK_EQ(decode_as(MSG_EXIT, b.data, b.size, 0, NULL), -EBADMSG);
        ex = (MsgExit) { .status = 1, .exit_code = -1 };
        CHECK_EQ(msg_exit_encode(&ex, &b), 0);
        b.data[WIRE_FIELD_HEADER_SIZE + 4 + WIRE_FIELD_HEADER_SIZE] = 0xfe; /* -1 -> -2 */
        CHECK_EQ(decode_as(MSG_EXIT, b.data, b.size, 0, NULL), -EBADMSG);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_i32(&b, MSG_ERROR_STATUS, 0), 0);
        CHECK_EQ(decode_as(MSG_ERROR, b.data, b.size, 0, NULL), -EBADMSG);
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_i32(&b, MSG_ERROR_STATUS, 125), 0);
        CHECK_EQ(wire_put_i32(&b, MSG_ERROR_ERROR, -1), 0);
        CHECK_EQ(decode_as(MSG_ERROR, b.data, b.size, 0, NULL), -EBADMSG);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_STARTED_ID, "0123456789abcdef"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_STARTED_PID, 0), 0);
        CHECK_EQ(decode_as(MSG_STARTED, b.data, b.size, 0, NULL), -EBADMSG);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_NET, _SPEC_NET_MAX), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, NULL), -EBADMSG);
        return 0;
}

static int test_exec_validate(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        /* well-formed, but not a valid spec: spec_validate() speaks */
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_WORKDIR, "relative"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);
        CHECK_STREQ(error, "--workdir must be an absolute path");

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, ""), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);
        CHECK_STREQ(error, "the command is empty");

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ENV, "NOEQUALS"), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);

        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_RLIMIT), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_RLIMIT_RESOURCE, 9999), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_RLIMIT_SOFT, 1), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_RLIMIT_HARD, 1), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);

        /* images of the store: what spec_validate() refuses */
        static const struct {
                uint16_t tag;
                const char *value;
                bool with_ref;
                const char *error;
        } image_cases[] = {
                { MSG_EXEC_IMAGE_REF, "/abs", false, "--image: an image reference" },
                { MSG_EXEC_IMAGE_REF, "./rel", false, "--image: an image reference" },
                { MSG_EXEC_IMAGE_REF, "-opt", false, "--image: an image reference" },
                { MSG_EXEC_IMAGE_REF, "with space", false, "--image: an image reference" },
                { MSG_EXEC_IMAGE_REF, "tab\tinside", false, "--image: an image reference" },
                { MSG_EXEC_IMAGE, "/dir", true, "--image: a directory and an image of the store at once" },
                { MSG_EXEC_ENTRYPOINT, "/bin/sh", false, "--entrypoint needs" },
                { MSG_EXEC_USER, "app", false, "--user as a name needs" },
                { MSG_EXEC_USER, "", true, "--user as a name needs" },
                { MSG_EXEC_USER, "a\x7f", true, "--user as a name needs" },
        };
        for (size_t i = 0; i < ELEMENTSOF(image_cases); i++) {
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
                CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
                CHECK_EQ(wire_put_string(&b, image_cases[i].tag, image_cases[i].value), 0);
                if (image_cases[i].with_ref)
                        CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE_REF, "busybox:1"), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);
                CHECK(startswith(error, image_cases[i].error));
        }
        {
                char big[SPEC_IMAGE_REF_MAX + 2];
                memset(big, 'a', sizeof big - 1);
                big[sizeof big - 1] = '\0';
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
                CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE_REF, big), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EMSGSIZE);
                big[SPEC_IMAGE_REF_MAX] = '\0';
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
                CHECK_EQ(wire_put_string(&b, MSG_EXEC_IMAGE_REF, big), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), 0);
        }

        /* an rlimit resource above INT_MAX is malformed before spec_validate() */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_begin_nested(&b, MSG_EXEC_RLIMIT), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_RLIMIT_RESOURCE, 0x80000000u), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_RLIMIT_SOFT, 1), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_RLIMIT_HARD, 1), 0);
        CHECK_EQ(wire_end_nested(&b), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);

        /* capabilities: known ones only; the same one added and dropped is an error, unless one side
         * is ALL */
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
        CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
        CHECK_EQ(wire_put_u64(&b, MSG_EXEC_CAP_ADD, SPEC_CAP(SPEC_CAP_LAST + 1)), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EINVAL);
        CHECK(strstr(error, "unknown capability"));
        static const struct {
                uint64_t add, drop;
                int r;
        } cases[] = {
                { SPEC_CAP(13), SPEC_CAP(13), -EINVAL },
                { SPEC_CAPS_ALL, SPEC_CAPS_ALL, -EINVAL },
                { SPEC_CAPS_ALL, SPEC_CAP(0), 0 },
                { SPEC_CAP(13), SPEC_CAPS_ALL, 0 },
                { SPEC_CAPS_ALL, 0, 0 },
                { 0, SPEC_CAPS_ALL, 0 },
                { SPEC_CAP(SPEC_CAP_LAST), 0, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                wire_buffer_reset(&b);
                CHECK_EQ(wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true"), 0);
                CHECK_EQ(wire_put_u32(&b, MSG_EXEC_TTY, 1), 0);
                CHECK_EQ(wire_put_u64(&b, MSG_EXEC_CAP_ADD, cases[i].add), 0);
                CHECK_EQ(wire_put_u64(&b, MSG_EXEC_CAP_DROP, cases[i].drop), 0);
                CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), cases[i].r);
        }
        return 0;
}

/* What root inside gets: podman's default set, --cap-drop and --cap-add applied to it, ALL on either
 * side; another uid only what was added. */
static int test_capabilities(void) {
        SandboxSpec s = {};
        char buf[64];
        int cap;

        CHECK_U64(spec_capabilities(&s), UINT64_C(0x800405fb));
        CHECK_U64(spec_capabilities_added(&s), 0);
        s.cap_drop = SPEC_CAPS_ALL;
        CHECK_U64(spec_capabilities(&s), 0);
        s.cap_add = SPEC_CAP(13);
        CHECK_U64(spec_capabilities(&s), SPEC_CAP(13));
        CHECK_U64(spec_capabilities_added(&s), SPEC_CAP(13));
        s = (SandboxSpec) { .cap_add = SPEC_CAPS_ALL, .cap_drop = SPEC_CAP(21) };
        CHECK_U64(spec_capabilities(&s), SPEC_CAPS_ALL & ~SPEC_CAP(21));
        CHECK_U64(spec_capabilities_added(&s), SPEC_CAPS_ALL & ~SPEC_CAP(21));
        s = (SandboxSpec) { .cap_add = SPEC_CAP(0) | SPEC_CAP(12), .cap_drop = SPEC_CAP(7) };
        CHECK_U64(spec_capabilities(&s), (UINT64_C(0x800405fb) & ~SPEC_CAP(7)) | SPEC_CAP(12));
        /* CHOWN is a default one: adding it again gives a non-root user that one too */
        CHECK_U64(spec_capabilities_added(&s), SPEC_CAP(0) | SPEC_CAP(12));

        CHECK_EQ(spec_cap_from_string("chown", &cap), 0);
        CHECK_EQ(cap, 0);
        CHECK_EQ(spec_cap_from_string("CAP_NET_RAW", &cap), 0);
        CHECK_EQ(cap, 13);
        CHECK_EQ(spec_cap_from_string("checkpoint_restore", &cap), 0);
        CHECK_EQ(cap, SPEC_CAP_LAST);
        CHECK_EQ(spec_cap_from_string("ALL", &cap), -EINVAL);
        CHECK_EQ(spec_cap_from_string("CAP_", &cap), -EINVAL);
        CHECK_EQ(spec_cap_from_string("NET_RAWX", &cap), -EINVAL);
        CHECK(!spec_cap_to_string(SPEC_CAP_LAST + 1));
        CHECK_STREQ(spec_cap_to_string(31), "SETFCAP");
        spec_caps_format(SPEC_CAP(0) | SPEC_CAP(13), buf, sizeof buf);
        CHECK_STREQ(buf, "CHOWN,NET_RAW");
        spec_caps_format(0, buf, sizeof buf);
        CHECK_STREQ(buf, "none");
        spec_caps_format(SPEC_CAPS_ALL, buf, 16);
        CHECK_EQ(strlen(buf), 15u);
        CHECK_STREQ(buf + 12, "...");
        return 0;
}

/* BIND_FDS: no fields, 1..3 descriptors, taken over by the message. */
static int test_bind_fds(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        CHECK_EQ(msg_empty_encode(&b), 0);
        for (size_t n = 1; n <= WIRE_FDS_MAX; n++)
                CHECK_EQ(decode_as(MSG_BIND_FDS, b.data, b.size, n, &error), 0);
        CHECK_EQ(decode_as(MSG_BIND_FDS, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_STREQ(error, "BIND_FDS carries no file descriptor");
        CHECK_EQ(wire_put_u32(&b, 1, 1), 0);
        CHECK_EQ(decode_as(MSG_BIND_FDS, b.data, b.size, 1, &error), -EBADMSG);
        CHECK_STREQ(error, "BIND_FDS has an unknown field");
        wire_buffer_reset(&b);
        CHECK_EQ(wire_put_u32(&b, 0x8001, 1), 0); /* skippable */
        CHECK_EQ(decode_as(MSG_BIND_FDS, b.data, b.size, 2, &error), 0);
        return 0;
}

static int put_many(WireBuffer *b, size_t n, int (*put)(WireBuffer *b, size_t i)) {
        for (size_t i = 0; i < n; i++) {
                int r = put(b, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int put_arg(WireBuffer *b, size_t i) {
        return wire_put_string(b, MSG_EXEC_ARGV, "a");
}
static int put_env(WireBuffer *b, size_t i) {
        return wire_put_string(b, MSG_EXEC_ENV, "A=1");
}
static int put_layer(WireBuffer *b, size_t i) {
        return wire_put_string(b, MSG_EXEC_LAYER, "/l");
}
static int put_bind(WireBuffer *b, size_t i) {
        int r = wire_begin_nested(b, MSG_EXEC_BIND);
        r = r ?: wire_put_string(b, MSG_BIND_SOURCE, "/a");
        r = r ?: wire_put_string(b, MSG_BIND_DEST, "/b");
        return r ?: wire_end_nested(b);
}
static int put_tmpfs(WireBuffer *b, size_t i) {
        int r = wire_begin_nested(b, MSG_EXEC_TMPFS);
        r = r ?: wire_put_string(b, MSG_TMPFS_DEST, "/t");
        return r ?: wire_end_nested(b);
}
static int put_rlimit(WireBuffer *b, size_t i) {
        int r = wire_begin_nested(b, MSG_EXEC_RLIMIT);
        r = r ?: wire_put_u32(b, MSG_RLIMIT_RESOURCE, RLIMIT_NOFILE);
        r = r ?: wire_put_u64(b, MSG_RLIMIT_SOFT, 1);
        r = r ?: wire_put_u64(b, MSG_RLIMIT_HARD, 1);
        return r ?: wire_end_nested(b);
}
static int put_entry(WireBuffer *b, size_t i) {
        int r = wire_begin_nested(b, MSG_LIST_REPLY_ENTRY);
        r = r ?: wire_put_string(b, MSG_ENTRY_ID, "0123456789abcdef");
        r = r ?: wire_put_u32(b, MSG_ENTRY_UID, 1);
        r = r ?: wire_put_u32(b, MSG_ENTRY_PID, 1);
        r = r ?: wire_put_string(b, MSG_ENTRY_COMMAND, "c");
        r = r ?: wire_put_u64(b, MSG_ENTRY_STARTED_USEC, 1);
        return r ?: wire_end_nested(b);
}

static int exec_with_many(int (*put)(WireBuffer *b, size_t i), size_t n, const char **ret_error) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};

        if (put != put_arg && wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true") < 0)
                return -ENOMEM;
        if (wire_put_u32(&b, MSG_EXEC_TTY, 1) < 0 || put_many(&b, n, put) < 0)
                return -ENOMEM;
        return decode_as(MSG_EXEC, b.data, b.size, 0, ret_error);
}

static int test_too_many(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        const char *error = NULL;

        CHECK_EQ(exec_with_many(put_arg, SPEC_ARGS_MAX, &error), 0);
        CHECK_EQ(exec_with_many(put_arg, SPEC_ARGS_MAX + 1, &error), -EMSGSIZE);
        CHECK(strstr(error, "4096 arguments"));
        CHECK_EQ(exec_with_many(put_env, SPEC_ENV_MAX, &error), 0);
        CHECK_EQ(exec_with_many(put_env, SPEC_ENV_MAX + 1, &error), -EMSGSIZE);
        CHECK_EQ(exec_with_many(put_layer, SPEC_LAYERS_MAX, &error), 0);
        CHECK_EQ(exec_with_many(put_layer, SPEC_LAYERS_MAX + 1, &error), -EMSGSIZE);
        CHECK_EQ(exec_with_many(put_bind, SPEC_MOUNTS_MAX, &error), 0);
        CHECK_EQ(exec_with_many(put_bind, SPEC_MOUNTS_MAX + 1, &error), -EMSGSIZE);
        CHECK_EQ(exec_with_many(put_tmpfs, SPEC_MOUNTS_MAX, &error), 0);
        CHECK_EQ(exec_with_many(put_tmpfs, SPEC_MOUNTS_MAX + 1, &error), -EMSGSIZE);
        CHECK_EQ(exec_with_many(put_rlimit, SPEC_RLIMITS_MAX, &error), 0);
        CHECK_EQ(exec_with_many(put_rlimit, SPEC_RLIMITS_MAX + 1, &error), -EMSGSIZE);

        CHECK_EQ(put_many(&b, MSG_LIST_ENTRIES_MAX, put_entry), 0);
        CHECK_EQ(decode_as(MSG_LIST_REPLY, b.data, b.size, 0, NULL), 0);
        CHECK_EQ(put_entry(&b, 0), 0);
        CHECK_EQ(decode_as(MSG_LIST_REPLY, b.data, b.size, 0, &error), -EMSGSIZE);
        CHECK_STREQ(error, "LIST_REPLY: more than 4096 entries");
        return 0;
}

static int test_encode_limits(void) {
        _cleanup_(spec_done) SandboxSpec s = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_free_ char *big = malloc(SPEC_ARG_BYTES_MAX);

        CHECK(big);
        memset(big, 'x', SPEC_ARG_BYTES_MAX - 1);
        big[SPEC_ARG_BYTES_MAX - 1] = '\0';
        minimal_spec(&s, true);
        /* one 1 MiB - 1 argument is encodable; three exceed the payload limit */
        s.argv = reallocarray(s.argv, 4, sizeof(char *));
        CHECK(s.argv);
        s.argv[1] = strdup(big);
        s.argv[2] = NULL;
        s.n_argv = 2;
        CHECK_EQ(msg_exec_encode(&s, &b), 0);
        s.argv[2] = strdup(big);
        s.argv[3] = NULL;
        s.n_argv = 3;
        CHECK_EQ(msg_exec_encode(&s, &b), -EMSGSIZE);
        /* a string over its bound is refused */
        free(s.argv[2]);
        s.argv[2] = NULL;
        s.n_argv = 2;
        s.hostname = strdup("0123456789012345678901234567890123456789012345678901234567890123456789");
        CHECK_EQ(msg_exec_encode(&s, &b), -EINVAL);
        return 0;
}

/* Descriptors on messages that take none are refused and closed with the frame. */
static int test_unexpected_fds(void) {
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        MsgSignal sig = { .signal = 1 };
        const char *error = NULL;

        CHECK_EQ(msg_signal_encode(&sig, &b), 0);
        CHECK_EQ(decode_as(MSG_SIGNAL, b.data, b.size, 1, &error), -EBADMSG);
        CHECK_STREQ(error, "the message carries file descriptors its type does not take");
        CHECK_EQ(decode_as(MSG_LIST, NULL, 0, 3, &error), -EBADMSG);
        CHECK_EQ(hello_payload(&b), 0);
        CHECK_EQ(decode_as(MSG_HELLO, b.data, b.size, 2, &error), -EBADMSG);
        return 0;
}

static int test_exec_fd_count(void) {
        _cleanup_(spec_done) SandboxSpec s = {}, t = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {}, c = {};
        const char *error = NULL;

        full_spec(&s, false);
        full_spec(&t, true);
        CHECK_EQ(msg_exec_encode(&s, &b), 0);
        CHECK_EQ(msg_exec_encode(&t, &c), 0);
        /* decode_as() checks that /proc/self/fd holds as many entries after as before */
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 3, &error), 0);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 2, &error), -EBADMSG);
        CHECK(strstr(error, "exactly 3"));
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 0, &error), -EBADMSG);
        CHECK_EQ(decode_as(MSG_EXEC, b.data, b.size, 1, &error), -EBADMSG);
        CHECK_EQ(decode_as(MSG_EXEC, c.data, c.size, 0, &error), 0);
        CHECK_EQ(decode_as(MSG_EXEC, c.data, c.size, 1, &error), -EBADMSG);
        CHECK_EQ(decode_as(MSG_EXEC, c.data, c.size, 3, &error), -EBADMSG);
        CHECK_STREQ(error, "EXEC with a tty carries no file descriptors");
        return 0;
}

/* ---- over a real socket ---- */

static int socket_pair(int sv[2]) {
        return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
}

/* The non-blocking sender: what fits, then -EAGAIN; descriptors with the first bytes only. */
static int test_socket_send_some(void) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        _cleanup_free_ uint8_t *frame = NULL;
        size_t size = WIRE_HEADER_SIZE + WIRE_PAYLOAD_MAX, sent = 0;
        int sv[2], fd = devnull(), before;
        ssize_t n;
        WireFrame *f;
        bool blocked = false;

        CHECK(d);
        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        CHECK_EQ(fcntl(a, F_SETFL, O_NONBLOCK), 0);
        CHECK((frame = calloc(1, size)));
        wire_header_pack(MSG_STARTED, WIRE_PAYLOAD_MAX, frame);
        before = count_fds();
        /* 2 MiB do not fit in a socket's buffer: the first call sends part, with the descriptor */
        n = wire_send_some(a, frame, size, &fd, 1);
        CHECK(n > 0 && (size_t) n < size);
        sent = (size_t) n;
        while (sent < size) {
                n = wire_send_some(a, frame + sent, size - sent, NULL, 0);
                if (n == -EAGAIN) {
                        /* the reader makes room */
                        blocked = true;
                        CHECK(wire_decoder_read_from_fd(d, b) > 0);
                        continue;
                }
                CHECK(n > 0);
                sent += (size_t) n;
        }
        CHECK(blocked);
        while (wire_decoder_queued(d) == 0)
                CHECK(wire_decoder_read_from_fd(d, b) > 0);
        CHECK_EQ(wire_decoder_pop(d, &f), 1);
        CHECK_EQ(f->type, MSG_STARTED);
        CHECK_EQ(f->size, (size_t) WIRE_PAYLOAD_MAX);
        CHECK_EQ(f->n_fds, 1);
        wire_frame_free(f);
        CHECK_EQ(count_fds(), before);
        /* the peer gone: -EPIPE, not SIGPIPE */
        b = safe_close(b);
        CHECK_EQ(wire_send_some(a, frame, WIRE_HEADER_SIZE, NULL, 0), -EPIPE);
        CHECK_EQ(wire_send_some(a, frame, 0, NULL, 0), -EINVAL);
        safe_close(fd);
        return 0;
}

static int test_socket_exec_fds(void) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_(spec_done) SandboxSpec s = {};
        _cleanup_(wire_buffer_done) WireBuffer buf = {};
        _cleanup_(wire_frame_freep) WireFrame *f = NULL;
        int sv[2], in[2], out[2], err[2];
        MsgExec m;
        char text[16] = {};
        int before = count_fds();

        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        CHECK_EQ(pipe2(in, O_CLOEXEC), 0);
        CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
        CHECK_EQ(pipe2(err, O_CLOEXEC), 0);

        full_spec(&s, false);
        CHECK_EQ(msg_exec_encode(&s, &buf), 0);
        int stdio[3] = { in[0], out[1], err[1] };
        CHECK_EQ(wire_send_frame(a, MSG_EXEC, buf.data, buf.size, stdio, 3), 0);
        /* the sender keeps its descriptors */
        close(in[0]);
        close(out[1]);
        close(err[1]);

        CHECK_EQ(wire_recv_frame_blocking(b, &f), 0);
        CHECK_EQ(f->type, MSG_EXEC);
        CHECK_EQ(f->n_fds, 3);
        CHECK_EQ(msg_exec_decode(f, &m, NULL), 0);
        CHECK_EQ(check_spec_equal(&m.spec, &s), 0);
        for (size_t i = 0; i < 3; i++)
                CHECK((fcntl(m.stdio[i], F_GETFD) & FD_CLOEXEC) != 0);

        /* stdin: written at one end, read through the received descriptor */
        CHECK_EQ(write(in[1], "hello", 5), 5);
        CHECK_EQ(read(m.stdio[0], text, sizeof text), 5);
        CHECK(memcmp(text, "hello", 5) == 0);
        /* stdout and stderr: written through the received ones */
        CHECK_EQ(write(m.stdio[1], "out", 3), 3);
        CHECK_EQ(write(m.stdio[2], "err", 3), 3);
        CHECK_EQ(read(out[0], text, sizeof text), 3);
        CHECK(memcmp(text, "out", 3) == 0);
        CHECK_EQ(read(err[0], text, sizeof text), 3);
        CHECK(memcmp(text, "err", 3) == 0);

        msg_exec_done(&m);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        f = wire_frame_free(f);
        a = safe_close(a);
        b = safe_close(b);
        CHECK_EQ(count_fds(), before);
        return 0;
}

/* Several frames with descriptors back to back: each frame gets its own, the blocking reader never
 * reads into the next frame, and the event-loop reader sorts them out from larger reads. */
static int test_socket_sequence(void) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_(wire_buffer_done) WireBuffer buf = {};
        int sv[2], p[2];
        MsgStarted st = { .id = "0123456789abcdef", .pid = 1 };
        int before = count_fds();

        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
        CHECK_EQ(msg_started_encode(&st, &buf), 0);

        for (unsigned mode = 0; mode < 2; mode++) {
                _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
                unsigned got = 0;

                CHECK(d);
                /* LIST, STARTED(pipe read end), OK, STARTED(pipe write end), LIST */
                CHECK_EQ(wire_send_frame(a, MSG_LIST, NULL, 0, NULL, 0), 0);
                CHECK_EQ(wire_send_frame(a, MSG_STARTED, buf.data, buf.size, &p[0], 1), 0);
                CHECK_EQ(wire_send_frame(a, MSG_OK, NULL, 0, NULL, 0), 0);
                CHECK_EQ(wire_send_frame(a, MSG_STARTED, buf.data, buf.size, &p[1], 1), 0);
                CHECK_EQ(wire_send_frame(a, MSG_LIST, NULL, 0, NULL, 0), 0);

                while (got < 5) {
                        static const uint16_t types[] = { MSG_LIST, MSG_STARTED, MSG_OK, MSG_STARTED, MSG_LIST };
                        _cleanup_(wire_frame_freep) WireFrame *f = NULL;

                        if (mode == 0)
                                CHECK_EQ(wire_recv_frame_blocking(b, &f), 0);
                        else {
                                int r = wire_decoder_pop(d, &f);
                                CHECK(r >= 0);
                                if (r == 0) {
                                        CHECK(wire_decoder_read_from_fd(d, b) > 0);
                                        continue;
                                }
                        }
                        CHECK_EQ(f->type, types[got]);
                        CHECK_EQ(f->n_fds, types[got] == MSG_STARTED ? 1 : 0);
                        if (types[got] == MSG_STARTED) {
                                struct stat x, y;
                                CHECK_EQ(fstat(f->fds[0], &x), 0);
                                CHECK_EQ(fstat(got == 1 ? p[0] : p[1], &y), 0);
                                CHECK(x.st_ino == y.st_ino);
                                /* the read end is the read end */
                                CHECK_EQ(fcntl(f->fds[0], F_GETFL) & O_ACCMODE, got == 1 ? O_RDONLY : O_WRONLY);
                        }
                        got++;
                }
                CHECK_EQ(wire_decoder_queued(d), 0);
        }
        close(p[0]);
        close(p[1]);
        a = safe_close(a);
        b = safe_close(b);
        CHECK_EQ(count_fds(), before);
        return 0;
}

static int test_socket_eof(void) {
        uint8_t h[WIRE_HEADER_SIZE + 4];
        int sv[2];

        wire_header_pack(MSG_SIGNAL, 12, h);
        memset(h + WIRE_HEADER_SIZE, 0, 4);
        for (size_t k = 0; k <= sizeof h; k++) {
                _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
                _cleanup_close_ int b = -EBADF;
                WireFrame *f = NULL;
                int r;

                CHECK(d);
                CHECK_EQ(socket_pair(sv), 0);
                b = sv[1];
                CHECK_EQ(write(sv[0], h, k), (ssize_t) k);
                close(sv[0]);
                /* event loop: read what there is, then the end */
                while ((r = wire_decoder_read_from_fd(d, b)) > 0)
                        ;
                CHECK_EQ(r, k == 0 ? 0 : -EBADMSG);
                CHECK_EQ(wire_decoder_pop(d, &f), k == 0 ? 0 : -EBADMSG);
        }

        /* blocking: end of stream before a frame, and inside one */
        CHECK_EQ(socket_pair(sv), 0);
        close(sv[0]);
        WireFrame *f = NULL;
        CHECK_EQ(wire_recv_frame_blocking(sv[1], &f), -ECONNRESET);
        close(sv[1]);
        CHECK_EQ(socket_pair(sv), 0);
        CHECK_EQ(write(sv[0], h, 20), 20);
        close(sv[0]);
        CHECK_EQ(wire_recv_frame_blocking(sv[1], &f), -EBADMSG);
        close(sv[1]);
        /* the peer is gone: sending fails with EPIPE and no SIGPIPE */
        CHECK_EQ(socket_pair(sv), 0);
        close(sv[1]);
        CHECK_EQ(wire_send_frame(sv[0], MSG_LIST, NULL, 0, NULL, 0), -EPIPE);
        close(sv[0]);
        return 0;
}

/* A peer sends 10 descriptors with a frame: the receiver takes at most 3, so the kernel truncates the
 * control data (and drops the rest); the read fails and nothing leaks. */
static int test_socket_ctrunc(void) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        int sv[2], fds[10], before;
        uint8_t h[WIRE_HEADER_SIZE];
        union {
                struct cmsghdr c;
                uint8_t buf[CMSG_SPACE(sizeof fds)];
        } control = {};
        struct iovec iov = { .iov_base = h, .iov_len = sizeof h };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof control.buf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        WireFrame *f = NULL;

        CHECK(d);
        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        before = count_fds();
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                CHECK((fds[i] = devnull()) >= 0);
        wire_header_pack(MSG_LIST, 0, h);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof fds);
        memcpy(CMSG_DATA(cm), fds, sizeof fds);
        CHECK_EQ(sendmsg(a, &mh, MSG_NOSIGNAL), (ssize_t) sizeof h);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);

        CHECK_EQ(wire_decoder_read_from_fd(d, b), -EMSGSIZE);
        CHECK_EQ(wire_decoder_pop(d, &f), -EMSGSIZE);
        CHECK_EQ(count_fds(), before);

        /* 4 descriptors fit the control buffer's alignment padding without MSG_CTRUNC: refused as well */
        wire_decoder_free(d);
        CHECK((d = wire_decoder_new()));
        for (size_t i = 0; i < 4; i++)
                CHECK((fds[i] = devnull()) >= 0);
        cm->cmsg_len = CMSG_LEN(4 * sizeof(int));
        mh.msg_controllen = CMSG_SPACE(4 * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, 4 * sizeof(int));
        CHECK_EQ(sendmsg(a, &mh, MSG_NOSIGNAL), (ssize_t) sizeof h);
        for (size_t i = 0; i < 4; i++)
                close(fds[i]);
        CHECK_EQ(wire_decoder_read_from_fd(d, b), -EMSGSIZE);
        CHECK_EQ(count_fds(), before);

        /* the blocking reader too */
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                CHECK((fds[i] = devnull()) >= 0);
        cm->cmsg_len = CMSG_LEN(sizeof fds);
        mh.msg_controllen = sizeof control.buf;
        memcpy(CMSG_DATA(cm), fds, sizeof fds);
        CHECK_EQ(sendmsg(a, &mh, MSG_NOSIGNAL), (ssize_t) sizeof h);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        CHECK_EQ(wire_recv_frame_blocking(b, &f), -EMSGSIZE);
        CHECK_EQ(count_fds(), before);

        /* and the sender refuses more than 3 */
        CHECK_EQ(wire_send_frame(a, MSG_LIST, NULL, 0, fds, 4), -EINVAL);
        return 0;
}

static int test_socket_exec_wrong_fds(void) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_(spec_done) SandboxSpec s = {}, t = {};
        _cleanup_(wire_buffer_done) WireBuffer bs = {}, bt = {};
        int sv[2], fds[3], before;
        const char *error = NULL;

        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        full_spec(&s, false);
        full_spec(&t, true);
        CHECK_EQ(msg_exec_encode(&s, &bs), 0);
        CHECK_EQ(msg_exec_encode(&t, &bt), 0);
        before = count_fds();
        for (size_t i = 0; i < 3; i++)
                CHECK((fds[i] = devnull()) >= 0);

        CHECK_EQ(wire_send_frame(a, MSG_EXEC, bs.data, bs.size, fds, 2), 0);
        CHECK_EQ(wire_send_frame(a, MSG_EXEC, bt.data, bt.size, fds, 3), 0);
        for (size_t i = 0; i < 3; i++)
                close(fds[i]);
        for (unsigned i = 0; i < 2; i++) {
                _cleanup_(wire_frame_freep) WireFrame *f = NULL;
                MsgExec m;

                CHECK_EQ(wire_recv_frame_blocking(b, &f), 0);
                CHECK_EQ(f->n_fds, i == 0 ? 2 : 3);
                CHECK_EQ(msg_exec_decode(f, &m, &error), -EBADMSG);
        }
        CHECK_EQ(count_fds(), before);
        return 0;
}

static int test_socket_queue_limit(void) {
        _cleanup_(wire_decoder_freep) WireDecoder *d = wire_decoder_new();
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        uint8_t frames[(WIRE_DECODER_QUEUE_MAX + 1) * WIRE_HEADER_SIZE];
        WireFrame *f;
        int sv[2];

        CHECK(d);
        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        for (size_t i = 0; i <= WIRE_DECODER_QUEUE_MAX; i++)
                wire_header_pack(MSG_LIST, 0, frames + i * WIRE_HEADER_SIZE);
        CHECK_EQ(write(a, frames, sizeof frames), (ssize_t) sizeof frames);
        CHECK_EQ(write(a, frames, WIRE_HEADER_SIZE), WIRE_HEADER_SIZE);
        CHECK_EQ(wire_decoder_read_from_fd(d, b), (int) (sizeof frames + WIRE_HEADER_SIZE));
        CHECK_EQ(wire_decoder_queued(d), WIRE_DECODER_QUEUE_MAX + 2);
        CHECK_EQ(wire_decoder_read_from_fd(d, b), -EBUSY);
        while (wire_decoder_pop(d, &f) > 0)
                wire_frame_free(f);
        CHECK_EQ(wire_decoder_error(d), 0);
        CHECK_EQ(fcntl(b, F_SETFL, O_NONBLOCK), 0);
        CHECK_EQ(wire_decoder_read_from_fd(d, b), -EAGAIN);
        return 0;
}

static int test_peer_cred(void) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_free_ gid_t *groups = NULL;
        struct ucred uc;
        size_t n = 0;
        int sv[2], ng;

        CHECK_EQ(socket_pair(sv), 0);
        a = sv[0], b = sv[1];
        CHECK_EQ(wire_get_peer_cred(b, &uc), 0);
        CHECK_EQ(uc.pid, getpid());
        CHECK_EQ(uc.uid, getuid());
        CHECK_EQ(uc.gid, getgid());
        CHECK_EQ(wire_get_peer_groups(b, &groups, &n), 0);
        ng = getgroups(0, NULL);
        CHECK(ng >= 0);
        CHECK_EQ(n, (size_t) ng);
        CHECK_EQ(wire_get_peer_cred(-1, &uc), -EBADF);
        return 0;
}

/* ---- fuzz corpus seeds ---- */

static int write_file(int dirfd, const char *name, const void *p, size_t n) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, p, n) != (ssize_t) n) {
                fprintf(stderr, "%s: %m\n", name);
                return -1;
        }
        return 0;
}

static int write_frame(int dirfd, const char *name, uint16_t type, const WireBuffer *b) {
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t n;

        bytes = frame_bytes(type, b->data, b->size, &n);
        return bytes ? write_file(dirfd, name, bytes, n) : -1;
}

static int write_corpus(const char *dir) {
        static const char *const names[N_SAMPLES] = {
                "hello", "hello-reply", "exec-full", "exec-full-tty", "started", "signal", "resize", "exit",
                "list", "list-reply", "kill", "error", "ok", "unknown-type",
        };
        _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_(spec_done) SandboxSpec s = {};
        _cleanup_(wire_buffer_done) WireBuffer b = {};
        _cleanup_free_ uint8_t *stream = NULL;
        Sample samples[N_SAMPLES];
        size_t n;
        int r = 0;

        if (dirfd < 0 || make_samples(samples) < 0)
                return 1;
        for (size_t i = 0; i < N_SAMPLES; i++)
                r |= write_frame(dirfd, names[i], samples[i].type, &samples[i].b);
        stream = samples_stream(samples, &n);
        r |= stream ? write_file(dirfd, "session-all-types", stream, n) : -1;
        samples_done(samples);

        minimal_spec(&s, true);
        r |= msg_exec_encode(&s, &b) < 0 ? -1 : write_frame(dirfd, "exec-minimal-tty", MSG_EXEC, &b);
        spec_done(&s);
        image_spec(&s, true);
        r |= msg_exec_encode(&s, &b) < 0 ? -1 : write_frame(dirfd, "exec-image-tty", MSG_EXEC, &b);
        /* malformed seeds, each one step from valid */
        wire_buffer_reset(&b);
        r |= wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true") | wire_put_u32(&b, MSG_EXEC_TTY, 1) |
             wire_begin_nested(&b, MSG_EXEC_BIND) | wire_put_string(&b, MSG_BIND_SOURCE, "/a") |
             wire_put_string(&b, 0x8001, "skip me") | wire_put_string(&b, MSG_BIND_DEST, "/b") | wire_end_nested(&b);
        r |= write_frame(dirfd, "exec-bind-skippable", MSG_EXEC, &b);
        b.data[b.size - 1] = 0; /* a NUL in dest */
        r |= write_frame(dirfd, "exec-bind-nul", MSG_EXEC, &b);
        wire_buffer_reset(&b);
        r |= hello_payload(&b) | wire_put_u32(&b, MSG_HELLO_MIN_VERSION, 1);
        r |= write_frame(dirfd, "hello-duplicate", MSG_HELLO, &b);
        uint8_t h[WIRE_HEADER_SIZE];
        wire_header_pack(MSG_EXEC, WIRE_PAYLOAD_MAX + 1, h);
        r |= write_file(dirfd, "oversized", h, sizeof h);
        wire_header_pack(MSG_OK, 0, h);
        h[4] = 2;
        r |= write_file(dirfd, "version-2", h, sizeof h);
        /* version 4: created sandboxes */
        {
                MsgCreate c = { .name = "web", .ttl_usec = 3600000000, .idle_ttl_usec = 600000000 };
                minimal_spec(&c.spec, false);
                free(c.spec.argv[0]);
                free(c.spec.argv);
                c.spec.argv = NULL;
                c.spec.n_argv = 0;
                c.spec.memory_max = 1 << 28;
                r |= msg_create_encode(&c, &b) < 0 ? -1 : write_frame(dirfd, "create", MSG_CREATE, &b);
                msg_create_done(&c);
                MsgCreated cd = { .id = "0123456789abcdef", .name = "web" };
                r |= msg_created_encode(&cd, &b) < 0 ? -1 : write_frame(dirfd, "created", MSG_CREATED, &b);
                static const uint16_t tt[] = { MSG_STOP, MSG_RM, MSG_PAUSE, MSG_RESUME };
                static const char *const tn[] = { "stop", "rm", "pause", "resume" };
                for (size_t i = 0; i < ELEMENTSOF(tt); i++) {
                        MsgTarget t = { .target = "web", .timeout_usec = tt[i] == MSG_STOP ? 1000000 : 0,
                                        .force = tt[i] == MSG_RM };
                        r |= msg_target_encode(tt[i], &t, &b) < 0 ? -1 : write_frame(dirfd, tn[i], tt[i], &b);
                }
                MsgCopy cp = { .target = "web", .path = "/root/out", .direction = MSG_COPY_OUT };
                r |= msg_copy_encode(&cp, &b) < 0 ? -1 : write_frame(dirfd, "copy", MSG_COPY, &b);
                MsgSnapshot sn = { .target = "web", .image = "work:v1" };
                r |= msg_snapshot_encode(&sn, &b) < 0 ? -1 : write_frame(dirfd, "snapshot", MSG_SNAPSHOT, &b);
                MsgSnapshotReply sr = {
                        .id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        .reference = "snapshots.sandbox.local/uid-1000/work:v1", .layer_bytes = 4096 };
                r |= msg_snapshot_reply_encode(&sr, &b) < 0 ? -1 :
                        write_frame(dirfd, "snapshot-reply", MSG_SNAPSHOT_REPLY, &b);
                minimal_spec(&s, true);
                r |= msg_exec_in_encode(&s, "web", &b) < 0 ? -1 : write_frame(dirfd, "exec-in-tty", MSG_EXEC, &b);
                spec_done(&s);
        }
        /* version 5: volumes */
        {
                MsgVolume vc = { .name = "data", .size = 1 << 30 }, vr = { .name = "data", .uid = 1000, .has_uid = true };
                r |= msg_volume_encode(MSG_VOLUME_CREATE, &vc, &b) < 0 ? -1 :
                        write_frame(dirfd, "volume-create", MSG_VOLUME_CREATE, &b);
                r |= msg_volume_encode(MSG_VOLUME_RM, &vr, &b) < 0 ? -1 : write_frame(dirfd, "volume-rm", MSG_VOLUME_RM, &b);
                r |= msg_empty_encode(&b) | write_frame(dirfd, "volume-list", MSG_VOLUME_LIST, &b);
                MsgVolumeEntry ve[2] = { { .name = "data", .uid = 1000, .size = 1 << 30, .used = 1 << 20,
                                           .created_usec = 1, .in_use_by = "0123456789abcdef" },
                                         { .name = "other", .uid = 0, .size = 16 << 20 } };
                MsgVolumeListReply vl = { .entries = ve, .n_entries = 2 };
                r |= msg_volume_list_reply_encode(&vl, &b) < 0 ? -1 :
                        write_frame(dirfd, "volume-list-reply", MSG_VOLUME_LIST_REPLY, &b);
                MsgVolumeMount vm[2] = { { .name = "data", .dest = (char *) "/data" },
                                         { .name = "cache", .dest = (char *) "/var/cache/x", .readonly = true } };
                minimal_spec(&s, true);
                r |= msg_exec_encode(&s, &b) < 0 || msg_exec_encode_volumes(vm, 2, &b) < 0 ? -1 :
                        write_frame(dirfd, "exec-volumes-tty", MSG_EXEC, &b);
                spec_done(&s);
        }
        /* version 3: bind sources as descriptors (the replay attaches 3 to the first frame) */
        wire_buffer_reset(&b);
        r |= msg_empty_encode(&b) | write_frame(dirfd, "bind-fds", MSG_BIND_FDS, &b);
        r |= wire_put_u32(&b, MSG_BIND_FD, 1);
        r |= write_frame(dirfd, "bind-fds-field", MSG_BIND_FDS, &b);
        wire_buffer_reset(&b);
        r |= wire_put_string(&b, MSG_EXEC_ARGV, "/bin/true") | wire_put_u32(&b, MSG_EXEC_TTY, 1) |
             wire_put_u64(&b, MSG_EXEC_CAP_ADD, SPEC_CAPS_ALL) | wire_put_u64(&b, MSG_EXEC_CAP_DROP, SPEC_CAP(21)) |
             wire_begin_nested(&b, MSG_EXEC_BIND) | wire_put_string(&b, MSG_BIND_SOURCE, "/home/u/out") |
             wire_put_string(&b, MSG_BIND_DEST, "/out") | wire_put_u32(&b, MSG_BIND_IDMAP, 1) |
             wire_put_u32(&b, MSG_BIND_FD, 1) | wire_end_nested(&b);
        r |= write_frame(dirfd, "exec-caps-idmap-fd", MSG_EXEC, &b);
        return r ? 1 : 0;
}

int main(int argc, char **argv) {
        static const TapTest tests[] = {
                TAP_TEST(header),
                TAP_TEST(tlv_reader),
                TAP_TEST(buffer_limit),
                TAP_TEST(roundtrip_hello),
                TAP_TEST(roundtrip_exec_full),
                TAP_TEST(roundtrip_exec_minimal),
                TAP_TEST(roundtrip_exec_image),
                TAP_TEST(roundtrip_started),
                TAP_TEST(roundtrip_small),
                TAP_TEST(roundtrip_list_reply),
                TAP_TEST(type_names),
                TAP_TEST(names),
                TAP_TEST(roundtrip_create),
                TAP_TEST(roundtrip_exec_in),
                TAP_TEST(roundtrip_targets),
                TAP_TEST(roundtrip_copy),
                TAP_TEST(roundtrip_snapshot),
                TAP_TEST(roundtrip_volumes),
                TAP_TEST(list_reply_versions),
                TAP_TEST(spec_record),
                TAP_TEST(capabilities),
                TAP_TEST(bind_fds),
                TAP_TEST(decoder_chunks),
                TAP_TEST(decoder_prefixes),
                TAP_TEST(decoder_bad_headers),
                TAP_TEST(decoder_no_eager_allocation),
                TAP_TEST(decoder_buffered),
                TAP_TEST(decoder_error_after_frames),
                TAP_TEST(decoder_fd_attribution),
                TAP_TEST(unknown_tags),
                TAP_TEST(duplicates),
                TAP_TEST(missing_required),
                TAP_TEST(nested_overrun),
                TAP_TEST(string_nul),
                TAP_TEST(integer_sizes),
                TAP_TEST(ranges),
                TAP_TEST(exec_validate),
                TAP_TEST(too_many),
                TAP_TEST(encode_limits),
                TAP_TEST(unexpected_fds),
                TAP_TEST(exec_fd_count),
                TAP_TEST(socket_send_some),
                TAP_TEST(socket_exec_fds),
                TAP_TEST(socket_sequence),
                TAP_TEST(socket_eof),
                TAP_TEST(socket_ctrunc),
                TAP_TEST(socket_exec_wrong_fds),
                TAP_TEST(socket_queue_limit),
                TAP_TEST(peer_cred),
        };

        if (argc == 3 && streq(argv[1], "--write-corpus"))
                return write_corpus(argv[2]);
        return tap_run(tests, ELEMENTSOF(tests));
}
