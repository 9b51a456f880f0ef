/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox NAT/forwarding table over NETLINK_NETFILTER (see nft.h for the ruleset). Parent side,
 * CAP_NET_ADMIN in the network namespace of the bridges. What this file does:
 *   - builds nf_tables objects with libnftnl and frames them as ONE NFNL batch (BATCH_BEGIN,
 *     messages, BATCH_END) per change, every message with NLM_F_ACK and its own sequence number, so
 *     that the kernel either commits all of it or nothing, and every message's ack (or error) can
 *     be told apart: the first failing message names the step in the error message;
 *   - changes that depend on what it read (publish_add's conflict check, publish_remove's handles)
 *     carry the ruleset generation it read in the batch header (NFNL_BATCH_GENID): if anybody changed
 *     the ruleset in between, the kernel refuses the whole batch with ERESTART and we read again;
 *   - reads chain "published" back with a GETRULE dump filtered by table and chain.
 * What it does not do: touch any other table, run nft/iptables, log above debug level, set sysctls.
 * Everything the kernel sends back is bounds-checked (ack lengths, extack TLVs, rule userdata TLVs)
 * before use; the number of rules read and messages sent is bounded.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "log.h"
#include "macro.h"
#include "nft.h"

#define BATCH_LIMIT (64 * 1024)       /* bytes of one batch; libmnl wants a buffer twice that */
#define BATCH_LIMIT_MAX (1024 * 1024) /* of a set-up's batch, sized by its number of messages */
#define BATCH_MSG_SIZE 768            /* bytes a set-up message takes, at most on average (a rule with
                                       * a 128-byte comment and 12 expressions is about 600) */
#define SOCKET_BUF_SIZE (2048 * 1024) /* > BATCH_LIMIT_MAX, and room for an ack per message of a batch */
#define BATCH_MSGS_MAX 1024           /* messages of one batch, begin/end not counted */
#define RECV_BUF_SIZE (64 * 1024)     /* > the largest dump skb the kernel sends (32 KiB) */
#define RECV_TIMEOUT_SEC 5            /* no reply within this: -ETIMEDOUT, never hang */
#define RETRIES_MAX 8                 /* re-reads after ERESTART or an interrupted dump */
#define PER_SANDBOX_MAX 512           /* published rules of one sandbox */
#define SBX_COMMENT_PREFIX "sbx:"

static const char CHAIN_PUBLISHED[] = "published";

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_table *, nftnl_table_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_chain *, nftnl_chain_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_rule *, nftnl_rule_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_gen *, nftnl_gen_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_expr_iter *, nftnl_expr_iter_destroy);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_udata_buf *, nftnl_udata_buf_free);

/* ------------------------------------------------------------------------------------------------
 * Errors and names
 */

static const char *errstr(int r) {
        const char *s = r < 0 ? strerrordesc_np(-r) : NULL;
        return s ?: "Unknown error";
}

/* Store a message in *ret_error (if ret_error is not NULL) and return R. */
static int error_set(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int error_set(char **ret_error, int r, const char *fmt, ...) {
        assert(r < 0);
        if (ret_error) {
                char *s = NULL;
                va_list ap;

                va_start(ap, fmt);
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL; /* OOM: no message, the error code still tells */
                va_end(ap);
                *ret_error = s;
        }
        return r;
}

static bool name_chars_valid(const char *s, size_t max) {
        size_t n = strnlen(s, max + 1);
        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(strchr("_.-", s[i]) || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9')))
                        return false;
        return true;
}

/* Also a valid nft identifier, so that `nft list table ip NAME` works on it. */
static bool table_name_valid(const char *s) {
        return s && name_chars_valid(s, NETFILTER_TABLE_NAME_MAX) && !strchr(s, '.') &&
               ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'));
}

static bool ifname_valid(const char *s) {
        return s && name_chars_valid(s, IFNAMSIZ - 1) && !streq(s, ".") && !streq(s, "..");
}

static bool sandbox_id_valid(const char *s) {
        return s && name_chars_valid(s, NETFILTER_SANDBOX_ID_MAX);
}

static const char *proto_name(int proto) {
        return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp" : "?";
}

static uint32_t prefix_mask(unsigned prefixlen) {
        assert(prefixlen <= 32);
        return prefixlen == 0 ? 0 : htonl(UINT32_MAX << (32 - prefixlen));
}

/* ------------------------------------------------------------------------------------------------
 * The netlink socket
 */

typedef struct Nfnl {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;      /* the last sequence number used */
        char *buf;         /* RECV_BUF_SIZE bytes for replies */
} Nfnl;

static void nfnl_done(Nfnl *n) {
        if (n->nl)
                mnl_socket_close(n->nl);
        free(n->buf);
        *n = (Nfnl) {};
}

static int nfnl_open(Nfnl *ret, char **ret_error) {
        struct timeval tv = { .tv_sec = RECV_TIMEOUT_SEC };
        Nfnl n = {};
        int one = 1, r;

        n.buf = malloc(RECV_BUF_SIZE);
        if (!n.buf)
                return -ENOMEM;
        n.nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
        if (!n.nl) {
                r = negative_errno();
                goto fail;
        }
        /* Acks without a copy of our request (CAP_ACK) and with the kernel's explanation, if any
         * (EXT_ACK). Both are optional: without them acks are just longer and terser. */
        (void) mnl_socket_setsockopt(n.nl, NETLINK_CAP_ACK, &one, sizeof one);
        (void) mnl_socket_setsockopt(n.nl, NETLINK_EXT_ACK, &one, sizeof one);
        /* The kernel refuses a batch larger than the send buffer, and drops acks that do not fit the
         * receive buffer: both a little larger than the default, if we may. */
        for (int opt = 0; opt < 2; opt++) {
                int size = SOCKET_BUF_SIZE, fd = mnl_socket_get_fd(n.nl);
                if (setsockopt(fd, SOL_SOCKET, opt == 0 ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, &size, sizeof size) < 0)
                        (void) setsockopt(fd, SOL_SOCKET, opt == 0 ? SO_SNDBUF : SO_RCVBUF, &size, sizeof size);
        }
        if (setsockopt(mnl_socket_get_fd(n.nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            mnl_socket_bind(n.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                r = negative_errno();
                goto fail;
        }
        n.portid = mnl_socket_get_portid(n.nl);
        n.seq = 0;
        *ret = n;
        return 0;
fail:
        nfnl_done(&n);
        return error_set(ret_error, r, "cannot open a NETLINK_NETFILTER socket: %s", errstr(r));
}

/* libmnl stops at a message marked NLM_F_DUMP_INTR: read the rest of that dump (up to its DONE or
 * error) so the socket is clean for the retry, then report -EINTR. K: bytes in n->buf. */
static int nfnl_drain(Nfnl *n, size_t k) {
        for (;;) {
                int left = (int) k;
                for (const struct nlmsghdr *h = (const struct nlmsghdr *) n->buf; mnl_nlmsg_ok(h, left);
                     h = mnl_nlmsg_next(h, &left))
                        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
                                return -EINTR;
                ssize_t got = mnl_socket_recvfrom(n->nl, n->buf, RECV_BUF_SIZE);
                if (got < 0 && errno == EINTR)
                        got = 0;
                if (got < 0)
                        return errno == EAGAIN ? -ETIMEDOUT : negative_errno();
                k = (size_t) got;
        }
}

/* Send one request and feed the replies to CB until the kernel says done (an ack or NLMSG_DONE). */
static int nfnl_request(Nfnl *n, const struct nlmsghdr *nlh, mnl_cb_t cb, void *data) {
        uint32_t seq = nlh->nlmsg_seq;

        if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        for (;;) {
                ssize_t k = mnl_socket_recvfrom(n->nl, n->buf, RECV_BUF_SIZE);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? -ETIMEDOUT : negative_errno();
                }
                errno = 0;
                int r = mnl_cb_run(n->buf, (size_t) k, seq, n->portid, cb, data);
                if (r < 0 && errno == EINTR)
                        return nfnl_drain(n, (size_t) k); /* NLM_F_DUMP_INTR: the caller reads again */
                if (r < 0)
                        return negative_errno();
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

static int gen_cb(const struct nlmsghdr *nlh, void *data) {
        _cleanup_(nftnl_gen_freep) struct nftnl_gen *g = NULL;
        uint32_t *genid = data;

        if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWGEN)
                return MNL_CB_OK;
        g = nftnl_gen_alloc();
        if (!g) {
                errno = ENOMEM;
                return MNL_CB_ERROR;
        }
        if (nftnl_gen_nlmsg_parse(nlh, g) < 0 || !nftnl_gen_is_set(g, NFTNL_GEN_ID)) {
                errno = EBADMSG;
                return MNL_CB_ERROR;
        }
        *genid = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
        return MNL_CB_OK;
}

/* The ruleset generation: a batch carrying it is refused (ERESTART) if the ruleset changed since. */
static int nfnl_get_genid(Nfnl *n, uint32_t *ret_genid) {
        uint64_t buf[64]; /* aligned */
        uint32_t genid = 0;
        struct nlmsghdr *nlh;
        int r;

        nlh = nftnl_nlmsg_build_hdr((char *) buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, ++n->seq);
        r = nfnl_request(n, nlh, gen_cb, &genid);
        if (r < 0)
                return r;
        if (genid == 0) /* 0 would disable the check; the kernel's generation starts at 1 */
                return -EBADMSG;
        *ret_genid = genid;
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * One NFNL batch
 */

typedef enum Hint {
        HINT_NONE,
        HINT_NAT,        /* a nat chain or nat/masq expression */
        HINT_EXPRS,      /* a rule using fib/ct/meta */
        HINT_SETUP,      /* needs the table and chains of netfilter_setup() */
} Hint;

typedef enum ObjKind {
        OBJ_TABLE,
        OBJ_CHAIN,
        OBJ_RULE,
} ObjKind;

typedef struct Batch {
        char *buf;                        /* twice the batch's limit, as libmnl wants */
        struct mnl_nlmsg_batch *b;
        uint32_t seq_begin;               /* message i (0-based) has sequence number seq_begin + 1 + i */
        size_t n;
        char *what[BATCH_MSGS_MAX];       /* "create chain 'x' in table 'y'", for the error message */
        Hint hint[BATCH_MSGS_MAX];
        int error[BATCH_MSGS_MAX];        /* the ack: 0 or -errno */
        bool acked[BATCH_MSGS_MAX];
} Batch;

static Batch *batch_free(Batch *b) {
        if (!b)
                return NULL;
        if (b->b)
                mnl_nlmsg_batch_stop(b->b);
        for (size_t i = 0; i < b->n; i++)
                free(b->what[i]);
        free(b->buf);
        free(b);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Batch *, batch_free);

static void put_batch_marker(struct mnl_nlmsg_batch *b, uint16_t type, uint32_t seq, uint32_t genid) {
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(b));
        struct nfgenmsg *g;

        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        nlh->nlmsg_seq = seq;
        g = mnl_nlmsg_put_extra_header(nlh, sizeof *g);
        g->nfgen_family = AF_UNSPEC;
        g->version = NFNETLINK_V0;
        g->res_id = htons(NFNL_SUBSYS_NFTABLES);
        if (genid != 0)
                mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(genid));
}

/* A batch with its BATCH_BEGIN, of at most LIMIT bytes (messages may not be larger); GENID 0: no
 * generation check. */
static int batch_new_sized(Nfnl *n, uint32_t genid, size_t limit, Batch **ret) {
        _cleanup_(batch_freep) Batch *b = calloc(1, sizeof(Batch));
        if (!b)
                return -ENOMEM;
        b->buf = malloc(2 * limit);
        if (!b->buf)
                return -ENOMEM;
        b->b = mnl_nlmsg_batch_start(b->buf, limit);
        if (!b->b)
                return -ENOMEM;
        b->seq_begin = ++n->seq;
        put_batch_marker(b->b, NFNL_MSG_BATCH_BEGIN, b->seq_begin, genid);
        if (!mnl_nlmsg_batch_next(b->b))
                return -E2BIG;
        *ret = TAKE_PTR(b);
        return 0;
}

/* A batch for a few messages (a published port, a teardown). */
static int batch_new(Nfnl *n, uint32_t genid, Batch **ret) {
        return batch_new_sized(n, genid, BATCH_LIMIT, ret);
}

/* Append one message, which FMT describes for the error message ("create chain 'x' in table 'y'").
 * Every message we put is far smaller than BATCH_LIMIT (bounded names, <= 10 expressions), which is
 * what keeps libnftnl's unchecked writes inside the second half of the buffer. */
static int batch_add(Batch *b, uint16_t type, uint16_t flags, ObjKind kind, void *obj, Hint hint, const char *fmt,
                     ...) __attribute__((format(printf, 7, 8)));
static int batch_add(Batch *b, uint16_t type, uint16_t flags, ObjKind kind, void *obj, Hint hint, const char *fmt,
                     ...) {
        _cleanup_free_ char *w = NULL;
        struct nlmsghdr *nlh;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&w, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        if (b->n >= BATCH_MSGS_MAX)
                return -E2BIG;
        nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b->b), type, NFPROTO_IPV4, flags | NLM_F_ACK,
                                    b->seq_begin + 1 + (uint32_t) b->n);
        switch (kind) {
        case OBJ_TABLE:
                nftnl_table_nlmsg_build_payload(nlh, obj);
                break;
        case OBJ_CHAIN:
                nftnl_chain_nlmsg_build_payload(nlh, obj);
                break;
        case OBJ_RULE:
                nftnl_rule_nlmsg_build_payload(nlh, obj);
                break;
        }
        if (!mnl_nlmsg_batch_next(b->b))
                return -E2BIG;
        b->what[b->n] = TAKE_PTR(w);
        b->hint[b->n] = hint;
        b->n++;
        return 0;
}

static const char *hint_text(Hint hint, int r) {
        if (r == -EPERM)
                return "needs CAP_NET_ADMIN in this network namespace";
        switch (hint) {
        case HINT_NAT:
                if (r == -EOPNOTSUPP || r == -ENOENT || r == -EAFNOSUPPORT)
                        return "is nf_tables nat available?";
                break;
        case HINT_EXPRS:
                if (r == -EOPNOTSUPP || r == -ENOENT)
                        return "are nf_tables fib, ct, meta and nat available?";
                break;
        case HINT_SETUP:
                if (r == -ENOENT)
                        return "no such table or chain: call netfilter_setup() first";
                break;
        case HINT_NONE:
                break;
        }
        return NULL;
}

/* The kernel's own explanation of an error ack (NLMSGERR_ATTR_MSG), if it sent one. */
static void extack_message(const struct nlmsghdr *h, char *ret, size_t size) {
        const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
        size_t payload = mnl_nlmsg_get_payload_len(h), off = sizeof(struct nlmsgerr);

        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        if (!(h->nlmsg_flags & NLM_F_CAPPED)) { /* the request follows, then the TLVs */
                if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
                        return;
                off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
        }
        off = MNL_ALIGN(off);
        if (off >= payload)
                return;
        const struct nlattr *a = (const struct nlattr *) ((const char *) e + off);
        int left = (int) (payload - off);
        while (mnl_attr_ok(a, left)) {
                if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0) {
                        snprintf(ret, size, "%s", mnl_attr_get_str(a));
                        return;
                }
                left -= MNL_ALIGN(a->nla_len);
                a = mnl_attr_next(a);
        }
}

/* Append BATCH_END, send, and collect the ack of every message. Returns 0 when the kernel committed
 * the batch; else the first failing message's -errno (the kernel then applied nothing) with a
 * message naming that step. -ERESTART: the ruleset changed after the genid was read. */
static int batch_send(Nfnl *n, Batch *b, char **ret_error) {
        uint32_t seq_end = b->seq_begin + 1 + (uint32_t) b->n;
        char extack[256] = "";
        size_t pending = b->n, first = SIZE_MAX, failed = 0;
        int batch_error = 0;

        put_batch_marker(b->b, NFNL_MSG_BATCH_END, seq_end, 0);
        if (!mnl_nlmsg_batch_next(b->b))
                return error_set(ret_error, -E2BIG, "netlink batch too large");
        n->seq = seq_end;

        if (mnl_socket_sendto(n->nl, mnl_nlmsg_batch_head(b->b), mnl_nlmsg_batch_size(b->b)) < 0) {
                int r = negative_errno();
                return error_set(ret_error, r, "cannot send the netlink batch: %s", errstr(r));
        }

        /* The kernel processes the batch within sendmsg() and queues one ack per message (also after
         * an error: it goes on to report every failing message, then aborts). An error on the BEGIN
         * message is about the whole batch (ERESTART, commit failure, OOM): no per-message acks are
         * guaranteed then. */
        while (pending > 0 && batch_error == 0) {
                ssize_t k = mnl_socket_recvfrom(n->nl, n->buf, RECV_BUF_SIZE);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = errno == EAGAIN ? -ETIMEDOUT : negative_errno();
                        return error_set(ret_error, r,
                                         "cannot read the acknowledgements of the netlink batch (%zu of %zu missing): %s",
                                         pending, b->n, errstr(r));
                }
                int remaining = (int) k;
                for (const struct nlmsghdr *h = (const struct nlmsghdr *) n->buf; mnl_nlmsg_ok(h, remaining);
                     h = mnl_nlmsg_next(h, &remaining)) {
                        if (h->nlmsg_pid != n->portid || h->nlmsg_type != NLMSG_ERROR)
                                continue;
                        if (h->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr)))
                                return error_set(ret_error, -EBADMSG, "truncated netlink acknowledgement");
                        const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
                        int err = e->error <= 0 ? e->error : -EPROTO;
                        uint32_t off = h->nlmsg_seq - b->seq_begin;
                        if (off == 0 || h->nlmsg_seq == seq_end) {
                                if (err < 0) {
                                        batch_error = err;
                                        extack_message(h, extack, sizeof extack);
                                }
                                continue;
                        }
                        if (off > b->n || b->acked[off - 1])
                                continue;
                        size_t i = off - 1;
                        b->acked[i] = true;
                        b->error[i] = err;
                        pending--;
                        if (err < 0) {
                                failed++;
                                if (i < first) {
                                        first = i;
                                        extack[0] = '\0';
                                        extack_message(h, extack, sizeof extack);
                                }
                        }
                }
        }

        if (batch_error < 0) {
                if (batch_error == -ERESTART)
                        log_debug("nft: the ruleset changed while we prepared our batch, retrying");
                return error_set(ret_error, batch_error, "the kernel refused the netlink batch: %s%s%s",
                                 errstr(batch_error), extack[0] ? ": " : "", extack);
        }
        if (first == SIZE_MAX)
                return 0;

        int r = b->error[first];
        const char *hint = hint_text(b->hint[first], r);
        char more[64] = "";
        if (failed > 1)
                snprintf(more, sizeof more, " (and %zu later step%s failed)", failed - 1, failed > 2 ? "s" : "");
        return error_set(ret_error, r, "cannot %s: %s%s%s%s%s%s%s", b->what[first], errstr(r),
                         hint ? " (" : "", hint ?: "", hint ? ")" : "", extack[0] ? ": " : "", extack, more);
}

/* ------------------------------------------------------------------------------------------------
 * Objects and expressions
 */

static int set_comment(struct nftnl_udata_buf **ret, uint8_t type, const char *comment) {
        _cleanup_(nftnl_udata_buf_freep) struct nftnl_udata_buf *u = NULL;

        if (strlen(comment) >= NFTNL_UDATA_COMMENT_MAXLEN)
                return -EINVAL;
        u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
        if (!u)
                return -ENOMEM;
        if (!nftnl_udata_put_strz(u, type, comment))
                return -ENOMEM;
        *ret = TAKE_PTR(u);
        return 0;
}

static int table_new(const char *name, const char *comment, struct nftnl_table **ret) {
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = nftnl_table_alloc();
        _cleanup_(nftnl_udata_buf_freep) struct nftnl_udata_buf *u = NULL;
        int r;

        if (!t)
                return -ENOMEM;
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_IPV4);
        if (nftnl_table_set_str(t, NFTNL_TABLE_NAME, name) < 0)
                return -ENOMEM;
        if (comment) {
                r = set_comment(&u, NFTNL_UDATA_TABLE_COMMENT, comment);
                if (r < 0)
                        return r;
                if (nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

/* A regular chain if TYPE is NULL, else a base chain with policy accept. */
static int chain_new(const char *table, const char *name, const char *type, uint32_t hook, int32_t prio,
                     struct nftnl_chain **ret) {
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *c = nftnl_chain_alloc();

        if (!c)
                return -ENOMEM;
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_IPV4);
        if (nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table) < 0 || nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name) < 0)
                return -ENOMEM;
        if (type) {
                if (nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type) < 0)
                        return -ENOMEM;
                nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
                nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
                nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* An empty rule of TABLE/CHAIN, with COMMENT (if not NULL) as its userdata. */
static int rule_new(const char *table, const char *chain, const char *comment, struct nftnl_rule **ret) {
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = nftnl_rule_alloc();
        _cleanup_(nftnl_udata_buf_freep) struct nftnl_udata_buf *u = NULL;
        int r;

        if (!rule)
                return -ENOMEM;
        nftnl_rule_set_u32(rule, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
        if (nftnl_rule_set_str(rule, NFTNL_RULE_TABLE, table) < 0 ||
            nftnl_rule_set_str(rule, NFTNL_RULE_CHAIN, chain) < 0)
                return -ENOMEM;
        if (comment) {
                r = set_comment(&u, NFTNL_UDATA_RULE_COMMENT, comment);
                if (r < 0)
                        return r;
                if (nftnl_rule_set_data(rule, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(rule);
        return 0;
}

/* A new expression NAME appended to RULE (which owns it); NULL on OOM. */
static struct nftnl_expr *rule_expr(struct nftnl_rule *rule, const char *name) {
        struct nftnl_expr *e = nftnl_expr_alloc(name);
        if (e)
                nftnl_rule_add_expr(rule, e);
        return e;
}

/* All loads go to NFT_REG_1, as nft does for these simple matches. */
static int expr_meta(struct nftnl_rule *rule, uint32_t key) {
        struct nftnl_expr *e = rule_expr(rule, "meta");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
        return 0;
}

static int expr_payload(struct nftnl_rule *rule, uint32_t base, uint32_t offset, uint32_t len) {
        struct nftnl_expr *e = rule_expr(rule, "payload");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        return 0;
}

static int expr_ct(struct nftnl_rule *rule, uint32_t key) {
        struct nftnl_expr *e = rule_expr(rule, "ct");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
        return 0;
}

static int expr_fib_daddr_type(struct nftnl_rule *rule) {
        struct nftnl_expr *e = rule_expr(rule, "fib");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
        nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
        return 0;
}

static int expr_cmp(struct nftnl_rule *rule, uint32_t op, const void *data, size_t len) {
        struct nftnl_expr *e = rule_expr(rule, "cmp");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
        return nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, (uint32_t) len) < 0 ? -ENOMEM : 0;
}

/* reg1 = reg1 & MASK (^ 0) over LEN bytes. */
static int expr_and(struct nftnl_rule *rule, const void *mask, size_t len) {
        static const uint8_t zero[16] = {};
        struct nftnl_expr *e = rule_expr(rule, "bitwise");

        assert(len <= sizeof zero);
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, (uint32_t) len);
        if (nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, (uint32_t) len) < 0 ||
            nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, (uint32_t) len) < 0)
                return -ENOMEM;
        return 0;
}

static int expr_immediate(struct nftnl_rule *rule, uint32_t dreg, const void *data, size_t len) {
        struct nftnl_expr *e = rule_expr(rule, "immediate");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
        return nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, (uint32_t) len) < 0 ? -ENOMEM : 0;
}

/* accept, drop, or jump CHAIN. */
static int expr_verdict(struct nftnl_rule *rule, int verdict, const char *chain) {
        struct nftnl_expr *e = rule_expr(rule, "immediate");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t) verdict);
        if (chain && nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain) < 0)
                return -ENOMEM;
        return 0;
}

static int expr_masq(struct nftnl_rule *rule) {
        return rule_expr(rule, "masq") ? 0 : -ENOMEM;
}

/* dnat to the address in reg1, the port in reg2 (as nft: flags "proto specified"). */
static int expr_dnat(struct nftnl_rule *rule) {
        struct nftnl_expr *e = rule_expr(rule, "nat");
        if (!e)
                return -ENOMEM;
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
        nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
        return 0;
}

/* iifname/oifname OP "IFNAME": the name NUL-padded to IFNAMSIZ, as nft compares it. */
static int match_ifname(struct nftnl_rule *rule, uint32_t key, uint32_t op, const char *ifname) {
        char name[IFNAMSIZ] = {};
        size_t l = strlen(ifname);
        int r;

        assert(l < IFNAMSIZ);
        memcpy(name, ifname, l);
        r = expr_meta(rule, key);
        return r < 0 ? r : expr_cmp(rule, op, name, sizeof name);
}

/* ip saddr/daddr (header OFFSET 12/16) OP ADDR/PREFIXLEN, in the bytecode nft generates (which is
 * also what it decodes back to "ip saddr A/N"): a byte-aligned prefix loads only the bytes it covers,
 * any other loads the whole address and masks it. */
static int match_ip_prefix(struct nftnl_rule *rule, uint32_t offset, uint32_t op, struct in_addr addr,
                           unsigned prefixlen) {
        uint32_t mask = prefix_mask(prefixlen), a = addr.s_addr & mask;
        size_t len = prefixlen % 8 == 0 ? prefixlen / 8 : sizeof(uint32_t);
        int r;

        assert(prefixlen >= 1 && prefixlen <= 32);
        r = expr_payload(rule, NFT_PAYLOAD_NETWORK_HEADER, offset, (uint32_t) len);
        if (r >= 0 && prefixlen % 8 != 0)
                r = expr_and(rule, &mask, len);
        return r < 0 ? r : expr_cmp(rule, op, &a, len);
}

/* ct KEY & BITS != 0, e.g. "ct state established,related" */
static int match_ct_bits(struct nftnl_rule *rule, uint32_t key, uint32_t bits) {
        uint32_t zero = 0;
        int r = expr_ct(rule, key);
        if (r >= 0)
                r = expr_and(rule, &bits, sizeof bits);
        return r < 0 ? r : expr_cmp(rule, NFT_CMP_NEQ, &zero, sizeof zero);
}

static int match_fib_daddr_local(struct nftnl_rule *rule) {
        uint32_t type = RTN_LOCAL;
        int r = expr_fib_daddr_type(rule);
        return r < 0 ? r : expr_cmp(rule, NFT_CMP_EQ, &type, sizeof type);
}

/* ------------------------------------------------------------------------------------------------
 * Reading chain "published"
 */

typedef struct PublishedRule {
        uint64_t handle;
        char id[NETFILTER_SANDBOX_ID_MAX + 1]; /* "" when the comment is not "sbx:<valid id>" */
        int proto;
        uint16_t host_port, port;
        struct in_addr addr;
} PublishedRule;

typedef struct PublishedList {
        PublishedRule *rules;
        size_t n, allocated;
        bool interrupted; /* NLM_F_DUMP_INTR: the ruleset changed during the dump */
} PublishedList;

static void published_list_done(PublishedList *l) {
        free(l->rules);
        *l = (PublishedList) {};
}

/* The comment in rule userdata: TLVs of (u8 type, u8 len, value), walked with bounds checks rather
 * than with nftnl_udata_parse(), which trusts the lengths. NULL if absent or not a C string. */
static const char *udata_comment(const uint8_t *data, size_t len) {
        size_t off = 0;

        while (off + 2 <= len) {
                uint8_t type = data[off], vlen = data[off + 1];
                const char *value = (const char *) data + off + 2;
                if (off + 2 + vlen > len)
                        return NULL;
                if (type == NFTNL_UDATA_RULE_COMMENT)
                        return vlen > 0 && strnlen(value, vlen) == (size_t) vlen - 1 ? value : NULL;
                off += 2 + (size_t) vlen;
        }
        return NULL;
}

/* What we recognise of one of our DNAT rules: meta l4proto == P, th dport == N, immediates. */
static int published_rule_parse(struct nftnl_rule *rule, PublishedRule *ret) {
        _cleanup_(nftnl_expr_iter_destroyp) struct nftnl_expr_iter *it = NULL;
        enum { LOAD_NONE, LOAD_L4PROTO, LOAD_DPORT } load = LOAD_NONE;
        PublishedRule p = {};

        p.handle = nftnl_rule_get_u64(rule, NFTNL_RULE_HANDLE);
        if (nftnl_rule_is_set(rule, NFTNL_RULE_USERDATA)) {
                uint32_t len = 0;
                const void *ud = nftnl_rule_get_data(rule, NFTNL_RULE_USERDATA, &len);
                const char *comment = ud ? udata_comment(ud, len) : NULL;
                const char *id = comment ? startswith(comment, SBX_COMMENT_PREFIX) : NULL;
                if (id && sandbox_id_valid(id))
                        snprintf(p.id, sizeof p.id, "%s", id);
        }

        it = nftnl_expr_iter_create(rule);
        if (!it)
                return -ENOMEM;
        for (struct nftnl_expr *e; (e = nftnl_expr_iter_next(it));) {
                const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
                const void *d;
                uint32_t len = 0;

                if (!name)
                        load = LOAD_NONE;
                else if (streq(name, "meta"))
                        load = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_L4PROTO ? LOAD_L4PROTO
                                                                                              : LOAD_NONE;
                else if (streq(name, "payload"))
                        load = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE) == NFT_PAYLOAD_TRANSPORT_HEADER &&
                                               nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET) == 2 &&
                                               nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN) == 2
                                       ? LOAD_DPORT
                                       : LOAD_NONE;
                else if (streq(name, "cmp")) {
                        d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
                        if (d && nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP) == NFT_CMP_EQ) {
                                if (load == LOAD_L4PROTO && len == 1) {
                                        uint8_t proto = *(const uint8_t *) d;
                                        p.proto = proto == IPPROTO_TCP || proto == IPPROTO_UDP ? proto : 0;
                                } else if (load == LOAD_DPORT && len == 2) {
                                        uint16_t be;
                                        memcpy(&be, d, sizeof be);
                                        p.host_port = ntohs(be);
                                }
                        }
                        load = LOAD_NONE;
                } else if (streq(name, "immediate")) {
                        uint32_t dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG);
                        d = nftnl_expr_is_set(e, NFTNL_EXPR_IMM_DATA) ? nftnl_expr_get(e, NFTNL_EXPR_IMM_DATA, &len)
                                                                       : NULL;
                        if (d && dreg == NFT_REG_1 && len == 4)
                                memcpy(&p.addr, d, 4);
                        else if (d && dreg == NFT_REG_2 && len == 2) {
                                uint16_t be;
                                memcpy(&be, d, sizeof be);
                                p.port = ntohs(be);
                        }
                        load = LOAD_NONE;
                } else
                        load = LOAD_NONE;
        }
        *ret = p;
        return 0;
}

static int dump_fail(int r) {
        errno = -r;
        return MNL_CB_ERROR;
}

static int published_dump_cb(const struct nlmsghdr *nlh, void *data) {
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
        PublishedList *l = data;
        const char *chain;
        int r;

        if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
                l->interrupted = true;
        if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWRULE)
                return MNL_CB_OK;
        rule = nftnl_rule_alloc();
        if (!rule)
                return dump_fail(-ENOMEM);
        if (nftnl_rule_nlmsg_parse(nlh, rule) < 0)
                return dump_fail(-EBADMSG);
        chain = nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN);
        if (!chain || !streq(chain, CHAIN_PUBLISHED)) /* the kernel filtered for us; be sure */
                return MNL_CB_OK;
        if (l->n >= NETFILTER_PUBLISHED_MAX)
                return dump_fail(-E2BIG);
        if (l->n == l->allocated) {
                size_t a = MAX(l->allocated * 2, (size_t) 16);
                PublishedRule *p = reallocarray(l->rules, a, sizeof *p);
                if (!p)
                        return dump_fail(-ENOMEM);
                l->rules = p;
                l->allocated = a;
        }
        r = published_rule_parse(rule, &l->rules[l->n]);
        if (r < 0)
                return dump_fail(r);
        l->n++;
        return MNL_CB_OK;
}

/* The rules of chain "published" of TABLE; none if the table or chain does not exist. A dump the
 * kernel marks as interrupted (the ruleset changed meanwhile) is read again. */
static int dump_published(Nfnl *n, const char *table, PublishedList *ret) {
        for (unsigned attempt = 0; attempt < RETRIES_MAX; attempt++) {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *filter = NULL;
                PublishedList l = {};
                uint64_t buf[512]; /* aligned */
                struct nlmsghdr *nlh;
                int r;

                r = rule_new(table, CHAIN_PUBLISHED, NULL, &filter);
                if (r < 0)
                        return r;
                nlh = nftnl_nlmsg_build_hdr((char *) buf, NFT_MSG_GETRULE, NFPROTO_IPV4, NLM_F_DUMP, ++n->seq);
                nftnl_rule_nlmsg_build_payload(nlh, filter);
                r = nfnl_request(n, nlh, published_dump_cb, &l);
                if (r == -EINTR)
                        l.interrupted = true;
                else if (r == -ENOENT) {
                        published_list_done(&l);
                        *ret = (PublishedList) {};
                        return 0;
                }
                if (r < 0 && !l.interrupted) {
                        published_list_done(&l);
                        return r;
                }
                if (l.interrupted) {
                        log_debug("nft: rule dump of table '%s' interrupted, reading again", table);
                        published_list_done(&l);
                        continue;
                }
                *ret = l;
                return 0;
        }
        return -EAGAIN;
}

/* ------------------------------------------------------------------------------------------------
 * The ruleset, as tables of chains and rules
 */

typedef struct ChainSpec {
        const char *name;       /* for a bridge's chains: the prefix of "<name>-<bridge>" */
        const char *type;       /* "nat" or "filter" */
        uint32_t hook;
        int32_t prio;
} ChainSpec;

/* Every table has these; their rules never change. */
static const ChainSpec shared_chains[] = {
        { "prerouting", "nat", NF_INET_PRE_ROUTING, -100 },   /* dstnat */
        { "output", "nat", NF_INET_LOCAL_OUT, -100 },         /* dstnat */
};

/* Each bridge has these, named "<name>-<bridge>". */
static const ChainSpec bridge_chains[] = {
        { "postrouting", "nat", NF_INET_POST_ROUTING, 100 },  /* srcnat */
        { "forward", "filter", NF_INET_FORWARD, 0 },          /* filter */
        { "input", "filter", NF_INET_LOCAL_IN, 0 },           /* filter */
};

/* Base chains of the earlier layout, shared by all bridges: removed where found. */
static const char *const legacy_chains[] = { "postrouting", "forward" };

#define CHAIN_NAME_MAX (sizeof("postrouting-") + IFNAMSIZ)

typedef enum MatchKind {
        MATCH_IIFNAME,          /* iifname == NAME */
        MATCH_OIFNAME,          /* oifname == NAME */
        MATCH_OIFNAME_NOT,      /* oifname != NAME */
        MATCH_SADDR,            /* ip saddr ADDR/PREFIXLEN (nothing for /0) */
        MATCH_DADDR,            /* ip daddr ADDR/PREFIXLEN (nothing for /0) */
        MATCH_DPORT,            /* PROTO dport PORT */
        MATCH_CT_REPLIES,       /* ct state established,related */
        MATCH_CT_DNAT,          /* ct status dnat */
        MATCH_DADDR_LOCAL,      /* fib daddr type local */
} MatchKind;

typedef struct Match {
        MatchKind kind;
        const char *ifname;
        struct in_addr addr;
        unsigned prefixlen;
        uint8_t proto;
        uint16_t port;
} Match;

typedef enum Action {
        ACTION_ACCEPT,
        ACTION_DROP,
        ACTION_MASQUERADE,
        ACTION_JUMP_PUBLISHED,
} Action;

#define RULE_MATCHES_MAX 3

typedef struct RuleSpec {
        char chain[CHAIN_NAME_MAX];
        char comment[NFTNL_UDATA_COMMENT_MAXLEN];
        Match match[RULE_MATCHES_MAX];
        size_t n_match;
        Action action;
} RuleSpec;

/* Shared: 2; per bridge: postrouting 2, forward <= 7 + 5 + 2 * CIDRS + 2 * DNS, input <= 3 + CIDRS +
 * 2 * DNS. */
#define RULES_MAX (2 + NETFILTER_BRIDGES_MAX * (2 + 12 + 3 * NETFILTER_CIDRS_MAX + 4 * NETFILTER_DNS_MAX + 3))

typedef struct RuleList {
        RuleSpec *rules;
        size_t n, allocated;
} RuleList;

static void rule_list_done(RuleList *l) {
        free(l->rules);
        *l = (RuleList) {};
}

/* A new rule of CHAIN with ACTION and a formatted comment; matches are added with rule_match(). */
static RuleSpec *rule_add(RuleList *l, const char *chain, Action action, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static RuleSpec *rule_add(RuleList *l, const char *chain, Action action, const char *fmt, ...) {
        RuleSpec *r;
        va_list ap;

        assert(l->n < l->allocated);
        r = &l->rules[l->n++];
        *r = (RuleSpec) { .action = action };
        snprintf(r->chain, sizeof r->chain, "%s", chain);
        va_start(ap, fmt);
        vsnprintf(r->comment, sizeof r->comment, fmt, ap);
        va_end(ap);
        return r;
}

static void rule_match(RuleSpec *r, Match m) {
        assert(r->n_match < RULE_MATCHES_MAX);
        r->match[r->n_match++] = m;
}

static const char *cidr_str(struct in_addr addr, unsigned prefixlen, char *buf, size_t size) {
        struct in_addr net = { .s_addr = addr.s_addr & prefix_mask(prefixlen) };
        char a[INET_ADDRSTRLEN] = "?";

        (void) inet_ntop(AF_INET, &net, a, sizeof a);
        snprintf(buf, size, "%s/%u", a, prefixlen);
        return buf;
}

static bool cidr_contains(const NetfilterCidr *c, struct in_addr a) {
        uint32_t m = prefix_mask(c->prefixlen);
        return (a.s_addr & m) == (c->addr.s_addr & m);
}

/* The rules of the shared chains. */
static void shared_rules(RuleList *l) {
        /* Connections to one of our own addresses go through "published" (Docker's "-m addrtype
         * --dst-type LOCAL -j DOCKER"). */
        RuleSpec *r = rule_add(l, "prerouting", ACTION_JUMP_PUBLISHED, "sandbox: published ports");
        rule_match(r, (Match) { MATCH_DADDR_LOCAL });
        /* The same for connections the host itself makes, 127.0.0.1 included: the bridges have
         * route_localnet, and postrouting-<bridge> masquerades the loopback source. */
        r = rule_add(l, "output", ACTION_JUMP_PUBLISHED, "sandbox: published ports, from the host");
        rule_match(r, (Match) { MATCH_DADDR_LOCAL });
}

/* For each of V[0..N): "iifname X ip daddr V[k] ACTION", commented "sandbox: WHAT V[k]". */
static void cidr_rules(RuleList *l, const char *chain, const char *x, Action action, const char *what,
                       const NetfilterCidr *v, size_t n) {
        char cidr[32];

        for (size_t k = 0; k < n; k++) {
                RuleSpec *r = rule_add(l, chain, action, "sandbox: %s %s", what,
                                       cidr_str(v[k].addr, v[k].prefixlen, cidr, sizeof cidr));
                rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
                rule_match(r, (Match) { MATCH_DADDR, .addr = v[k].addr, .prefixlen = v[k].prefixlen });
        }
}

/* For each name server of DNS[0..N): "iifname X ip daddr DNS[k] udp dport 53 accept", and for tcp. */
static void dns_rules(RuleList *l, const char *chain, const char *x, const struct in_addr *dns, size_t n) {
        char a[INET_ADDRSTRLEN];

        for (size_t k = 0; k < n * 2; k++) {
                uint8_t proto = k % 2 == 0 ? IPPROTO_UDP : IPPROTO_TCP;
                (void) inet_ntop(AF_INET, &dns[k / 2], a, sizeof a);
                RuleSpec *r = rule_add(l, chain, ACTION_ACCEPT, "sandbox: name server %s, %s", a, proto_name(proto));
                rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
                rule_match(r, (Match) { MATCH_DADDR, .addr = dns[k / 2], .prefixlen = 32 });
                rule_match(r, (Match) { MATCH_DPORT, .proto = proto, .port = 53 });
        }
}

/* The rules of bridge I's chains. */
static void bridge_rules(RuleList *l, const NetfilterConfig *c, size_t i) {
        const NetfilterBridge *br = &c->bridges[i];
        const char *x = br->ifname;
        const struct in_addr loopback = { .s_addr = htonl(INADDR_LOOPBACK) };
        const struct in_addr link_local = { .s_addr = htonl(0xa9fe0000) }; /* 169.254.0.0 */
        char post[CHAIN_NAME_MAX], fwd[CHAIN_NAME_MAX], in[CHAIN_NAME_MAX], cidr[32];
        struct in_addr dns[NETFILTER_DNS_MAX];
        size_t n_dns = 0;
        RuleSpec *r;

        snprintf(post, sizeof post, "postrouting-%s", x);
        snprintf(fwd, sizeof fwd, "forward-%s", x);
        snprintf(in, sizeof in, "input-%s", x);

        /* The name servers no egress-deny covers (the sandbox's configuration is asked for). */
        for (size_t k = 0; k < c->n_dns; k++) {
                bool denied = false;
                for (size_t j = 0; j < c->n_egress_deny; j++)
                        denied = denied || cidr_contains(&c->egress_deny[j], c->dns[k]);
                if (!denied)
                        dns[n_dns++] = c->dns[k];
        }

        /* postrouting: masquerade what the subnet sends out of anything but its own bridge, and what
         * the host sends from a loopback address to a published port on 127.0.0.1. */
        r = rule_add(l, post, ACTION_MASQUERADE, "sandbox: masquerade %s from %s",
                     cidr_str(br->subnet, br->prefixlen, cidr, sizeof cidr), x);
        rule_match(r, (Match) { MATCH_SADDR, .addr = br->subnet, .prefixlen = br->prefixlen });
        rule_match(r, (Match) { MATCH_OIFNAME_NOT, .ifname = x });
        r = rule_add(l, post, ACTION_MASQUERADE, "sandbox: published ports, from the host's loopback");
        rule_match(r, (Match) { MATCH_OIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_SADDR, .addr = loopback, .prefixlen = 8 });

        /* forward: nothing to the other sandbox bridges; then replies, and traffic between the
         * bridge's own sandboxes; then egress: allowed, name servers, link-local and egress-deny
         * dropped, the rest accepted. */
        for (size_t j = 0; j < c->n_bridges; j++) {
                if (j == i)
                        continue;
                r = rule_add(l, fwd, ACTION_DROP, "sandbox: isolate %s from %s", x, c->bridges[j].ifname);
                rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
                rule_match(r, (Match) { MATCH_OIFNAME, .ifname = c->bridges[j].ifname });
        }
        r = rule_add(l, fwd, ACTION_ACCEPT, "sandbox: replies");
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_CT_REPLIES });
        r = rule_add(l, fwd, ACTION_ACCEPT, "sandbox: between the sandboxes of %s", x);
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_OIFNAME, .ifname = x });
        cidr_rules(l, fwd, x, ACTION_ACCEPT, "egress-allow", c->egress_allow, c->n_egress_allow);
        dns_rules(l, fwd, x, dns, n_dns);
        r = rule_add(l, fwd, ACTION_DROP, "sandbox: no link-local addresses (cloud metadata)");
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_DADDR, .addr = link_local, .prefixlen = 16 });
        cidr_rules(l, fwd, x, ACTION_DROP, "egress-deny", c->egress_deny, c->n_egress_deny);
        r = rule_add(l, fwd, ACTION_ACCEPT, "sandbox: out of %s", x);
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
        r = rule_add(l, fwd, ACTION_ACCEPT, "sandbox: to published ports");
        rule_match(r, (Match) { MATCH_OIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_CT_DNAT });

        /* input: the host itself, on any of its addresses (the bridge's too): replies, egress-allow
         * and the name servers; never a loopback address; nothing else. */
        r = rule_add(l, in, ACTION_ACCEPT, "sandbox: replies");
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_CT_REPLIES });
        r = rule_add(l, in, ACTION_DROP, "sandbox: not the host's loopback");
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
        rule_match(r, (Match) { MATCH_DADDR, .addr = loopback, .prefixlen = 8 });
        cidr_rules(l, in, x, ACTION_ACCEPT, "egress-allow", c->egress_allow, c->n_egress_allow);
        dns_rules(l, in, x, dns, n_dns);
        r = rule_add(l, in, ACTION_DROP, "sandbox: not the host from %s", x);
        rule_match(r, (Match) { MATCH_IIFNAME, .ifname = x });
}

#define IP_SADDR_OFFSET 12 /* offsetof(struct iphdr, saddr) */
#define IP_DADDR_OFFSET 16 /* offsetof(struct iphdr, daddr) */

static int expr_match(struct nftnl_rule *rule, const Match *m) {
        int r;

        switch (m->kind) {
        case MATCH_IIFNAME:
                return match_ifname(rule, NFT_META_IIFNAME, NFT_CMP_EQ, m->ifname);
        case MATCH_OIFNAME:
                return match_ifname(rule, NFT_META_OIFNAME, NFT_CMP_EQ, m->ifname);
        case MATCH_OIFNAME_NOT:
                return match_ifname(rule, NFT_META_OIFNAME, NFT_CMP_NEQ, m->ifname);
        case MATCH_SADDR:
        case MATCH_DADDR:
                if (m->prefixlen == 0)
                        return 0; /* every address */
                return match_ip_prefix(rule, m->kind == MATCH_SADDR ? IP_SADDR_OFFSET : IP_DADDR_OFFSET, NFT_CMP_EQ,
                                       m->addr, m->prefixlen);
        case MATCH_DPORT: {
                uint16_t be = htons(m->port);
                r = expr_meta(rule, NFT_META_L4PROTO);
                if (r >= 0)
                        r = expr_cmp(rule, NFT_CMP_EQ, &m->proto, sizeof m->proto);
                if (r >= 0)
                        r = expr_payload(rule, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2); /* dport of tcp and udp */
                return r < 0 ? r : expr_cmp(rule, NFT_CMP_EQ, &be, sizeof be);
        }
        case MATCH_CT_REPLIES:
                return match_ct_bits(rule, NFT_CT_STATE,
                                     NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
        case MATCH_CT_DNAT:
                return match_ct_bits(rule, NFT_CT_STATUS, IPS_DST_NAT);
        case MATCH_DADDR_LOCAL:
                return match_fib_daddr_local(rule);
        }
        return -EINVAL;
}

static int expr_action(struct nftnl_rule *rule, Action a) {
        switch (a) {
        case ACTION_ACCEPT:
                return expr_verdict(rule, NF_ACCEPT, NULL);
        case ACTION_DROP:
                return expr_verdict(rule, NF_DROP, NULL);
        case ACTION_MASQUERADE:
                return expr_masq(rule);
        case ACTION_JUMP_PUBLISHED:
                return expr_verdict(rule, NFT_JUMP, CHAIN_PUBLISHED);
        }
        return -EINVAL;
}

/* What to say when the kernel refuses the rule: the modules it may lack. */
static Hint rule_hint(const RuleSpec *s) {
        if (s->action == ACTION_MASQUERADE)
                return HINT_NAT;
        for (size_t i = 0; i < s->n_match; i++)
                if (s->match[i].kind == MATCH_CT_REPLIES || s->match[i].kind == MATCH_CT_DNAT ||
                    s->match[i].kind == MATCH_DADDR_LOCAL)
                        return HINT_EXPRS;
        return HINT_NONE;
}

static int batch_add_rules(Batch *b, const char *table, const RuleList *l) {
        for (size_t i = 0; i < l->n; i++) {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                const RuleSpec *s = &l->rules[i];
                int r;

                r = rule_new(table, s->chain, s->comment, &rule);
                for (size_t k = 0; r >= 0 && k < s->n_match; k++)
                        r = expr_match(rule, &s->match[k]);
                if (r >= 0)
                        r = expr_action(rule, s->action);
                if (r < 0)
                        return r;
                r = batch_add(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, OBJ_RULE, rule, rule_hint(s),
                              "add rule '%s' to chain '%s' of table '%s'", s->comment, s->chain, table);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int validate_cidrs(const NetfilterCidr *v, size_t n, const char *what, char **ret_error) {
        if (n > NETFILTER_CIDRS_MAX || (n > 0 && !v))
                return error_set(ret_error, -EINVAL, "invalid number of %s entries: %zu (at most %d)", what, n,
                                 NETFILTER_CIDRS_MAX);
        for (size_t i = 0; i < n; i++)
                if (v[i].prefixlen > 32)
                        return error_set(ret_error, -EINVAL, "invalid prefix length %u in %s (0..32)", v[i].prefixlen,
                                         what);
        return 0;
}

static int validate_config(const NetfilterConfig *c, char **ret_error) {
        int r;

        if (!c || !table_name_valid(c->table))
                return error_set(ret_error, -EINVAL, "invalid table name '%s'", c && c->table ? c->table : "(null)");
        if (c->n_bridges > NETFILTER_BRIDGES_MAX || (c->n_bridges > 0 && !c->bridges))
                return error_set(ret_error, -EINVAL, "invalid number of bridges: %zu (at most %d)", c->n_bridges,
                                 NETFILTER_BRIDGES_MAX);
        for (size_t i = 0; i < c->n_bridges; i++) {
                const NetfilterBridge *br = &c->bridges[i];
                if (!ifname_valid(br->ifname))
                        return error_set(ret_error, -EINVAL, "invalid bridge name '%s'", br->ifname ?: "(null)");
                if (br->prefixlen > 32)
                        return error_set(ret_error, -EINVAL, "invalid prefix length %u of bridge '%s' (0..32)",
                                         br->prefixlen, br->ifname);
                for (size_t j = 0; j < i; j++)
                        if (streq(c->bridges[j].ifname, br->ifname))
                                return error_set(ret_error, -EINVAL, "bridge '%s' given twice", br->ifname);
        }
        r = validate_cidrs(c->egress_allow, c->n_egress_allow, "egress-allow", ret_error);
        if (r >= 0)
                r = validate_cidrs(c->egress_deny, c->n_egress_deny, "egress-deny", ret_error);
        if (r < 0)
                return r;
        if (c->n_dns > NETFILTER_DNS_MAX || (c->n_dns > 0 && !c->dns))
                return error_set(ret_error, -EINVAL, "invalid number of name servers: %zu (at most %d)", c->n_dns,
                                 NETFILTER_DNS_MAX);
        return 0;
}

/* Chain NAME anew: make sure it exists (a regular chain if it did not, an update without changes if
 * it did: no hook is given), flush it, delete it, and unless SPEC is NULL create it as SPEC says.
 * Deleting instead of updating also replaces a base chain whose hook or priority differs. */
static int batch_replace_chain(Batch *b, const char *table, const char *name, const ChainSpec *spec) {
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *plain = NULL, *base = NULL;
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *flush = NULL;
        int r;

        r = chain_new(table, name, NULL, 0, 0, &plain);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, OBJ_CHAIN, plain, HINT_NONE,
                      "look up chain '%s' in table '%s'", name, table);
        if (r < 0)
                return r;
        r = rule_new(table, name, NULL, &flush);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_DELRULE, 0, OBJ_RULE, flush, HINT_NONE,
                      "flush chain '%s' in table '%s'", name, table);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_DELCHAIN, 0, OBJ_CHAIN, plain, HINT_NONE,
                      "delete old chain '%s' in table '%s'", name, table);
        if (r < 0 || !spec)
                return r;
        r = chain_new(table, name, spec->type, spec->hook, spec->prio, &base);
        if (r < 0)
                return r;
        return batch_add(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, OBJ_CHAIN, base,
                         streq(spec->type, "nat") ? HINT_NAT : HINT_NONE,
                         "create chain '%s' in table '%s'", name, table);
}

/* The table (kept if it exists), "published" (kept, with its rules), the shared chains anew, the
 * legacy chains removed. */
static int setup_shared(Batch *b, const char *table) {
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = NULL;
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *pub = NULL;
        int r;

        /* No NLM_F_EXCL: an existing table is kept, with its chain "published". Its comment is set
         * only when it is created. */
        r = table_new(table, "sandbox NAT and forwarding, managed by sandboxd", &t);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, OBJ_TABLE, t, HINT_NONE,
                      "create table ip '%s'", table);
        if (r < 0)
                return r;
        r = chain_new(table, CHAIN_PUBLISHED, NULL, 0, 0, &pub);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, OBJ_CHAIN, pub, HINT_NONE,
                      "create chain '%s' in table '%s'", CHAIN_PUBLISHED, table);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(legacy_chains); i++) {
                r = batch_replace_chain(b, table, legacy_chains[i], NULL);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(shared_chains); i++) {
                r = batch_replace_chain(b, table, shared_chains[i].name, &shared_chains[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int setup_bridge_chains(Batch *b, const char *table, const char *ifname) {
        for (size_t i = 0; i < ELEMENTSOF(bridge_chains); i++) {
                char name[CHAIN_NAME_MAX];
                int r;

                snprintf(name, sizeof name, "%s-%s", bridge_chains[i].name, ifname);
                r = batch_replace_chain(b, table, name, &bridge_chains[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int chain_exists_cb(const struct nlmsghdr *nlh, void *data) {
        if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWCHAIN)
                *(bool *) data = true;
        return MNL_CB_OK;
}

/* Does chain NAME of TABLE exist? */
static int chain_exists(Nfnl *n, const char *table, const char *name, bool *ret) {
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *c = NULL;
        uint64_t buf[256]; /* aligned */
        struct nlmsghdr *nlh;
        bool found = false;
        int r;

        r = chain_new(table, name, NULL, 0, 0, &c);
        if (r < 0)
                return r;
        nlh = nftnl_nlmsg_build_hdr((char *) buf, NFT_MSG_GETCHAIN, NFPROTO_IPV4, NLM_F_ACK, ++n->seq);
        nftnl_chain_nlmsg_build_payload(nlh, c);
        r = nfnl_request(n, nlh, chain_exists_cb, &found);
        if (r == -ENOENT)
                found = false;
        else if (r < 0)
                return r;
        *ret = found;
        return 0;
}

/* One batch carrying GENID (0: none): the shared part and the chains of the bridges in BUILD. */
static int setup_batch(Nfnl *n, const NetfilterConfig *c, const bool *build, uint32_t genid, char **ret_error) {
        _cleanup_(rule_list_done) RuleList l = {};
        _cleanup_(batch_freep) Batch *b = NULL;
        int r;

        size_t built = 0, n_rules, n_msgs;

        for (size_t i = 0; i < c->n_bridges; i++)
                built += build[i];
        /* The most rules bridge_rules() makes for one bridge; the chain messages of setup_shared() and
         * setup_bridge_chains(). */
        n_rules = 2 + built * (2 + c->n_bridges + 4 + 2 * c->n_egress_allow + c->n_egress_deny + 4 * c->n_dns + 3);
        n_msgs = 2 + 4 * ELEMENTSOF(legacy_chains) + 4 * ELEMENTSOF(shared_chains) +
                 built * 4 * ELEMENTSOF(bridge_chains) + n_rules;
        assert(n_rules <= RULES_MAX);
        l.rules = calloc(n_rules, sizeof *l.rules);
        if (!l.rules)
                return error_set(ret_error, -ENOMEM, "out of memory");
        l.allocated = n_rules;
        shared_rules(&l);
        for (size_t i = 0; i < c->n_bridges; i++)
                if (build[i])
                        bridge_rules(&l, c, i);

        r = batch_new_sized(n, genid, MIN(MAX(n_msgs * BATCH_MSG_SIZE, (size_t) BATCH_LIMIT), (size_t) BATCH_LIMIT_MAX),
                            &b);
        if (r >= 0)
                r = setup_shared(b, c->table);
        for (size_t i = 0; r >= 0 && i < c->n_bridges; i++)
                if (build[i])
                        r = setup_bridge_chains(b, c->table, c->bridges[i].ifname);
        if (r >= 0)
                r = batch_add_rules(b, c->table, &l);
        if (r < 0)
                return error_set(ret_error, r, "cannot prepare the batch for table '%s': %s", c->table, errstr(r));
        return batch_send(n, b, ret_error);
}

int netfilter_setup(const NetfilterConfig *c, char **ret_error) {
        _cleanup_(nfnl_done) Nfnl n = {};
        bool build[NETFILTER_BRIDGES_MAX] = {};
        int r;

        r = validate_config(c, ret_error);
        if (r < 0)
                return r;
        r = nfnl_open(&n, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_bridges; i++)
                build[i] = c->bridges[i].prefixlen > 0;
        if (!c->keep_existing)
                return setup_batch(&n, c, build, 0, ret_error);

        /* Only the bridges without chains, decided from what we read, sent with the generation we read
         * it at: if anybody changed the ruleset in between, the kernel refuses the batch. */
        for (unsigned attempt = 0; attempt < RETRIES_MAX; attempt++) {
                _cleanup_free_ char *err = NULL;
                bool any = false;
                uint32_t genid;

                r = nfnl_get_genid(&n, &genid);
                if (r < 0)
                        return error_set(ret_error, r, "cannot read the nf_tables ruleset generation: %s", errstr(r));
                for (size_t i = 0; i < c->n_bridges; i++) {
                        char name[CHAIN_NAME_MAX];
                        bool exists = false;

                        if (c->bridges[i].prefixlen == 0)
                                continue;
                        snprintf(name, sizeof name, "input-%s", c->bridges[i].ifname);
                        r = chain_exists(&n, c->table, name, &exists);
                        if (r < 0)
                                return error_set(ret_error, r, "cannot look up chain '%s' of table '%s': %s", name,
                                                 c->table, errstr(r));
                        build[i] = !exists;
                        any = any || build[i];
                }
                if (!any)
                        return 0;
                r = setup_batch(&n, c, build, genid, &err);
                if (r == -ERESTART)
                        continue;
                if (r < 0 && ret_error)
                        *ret_error = TAKE_PTR(err);
                return r;
        }
        return error_set(ret_error, -EAGAIN, "cannot set up table '%s': the ruleset kept changing", c->table);
}

/* ------------------------------------------------------------------------------------------------
 * The API
 */

/* Read the generation, then the chain: a batch carrying that generation is refused if anything
 * changed after it was read, so what we decide from the list still holds when the kernel applies it. */
static int read_published(Nfnl *n, const char *table, uint32_t *ret_genid, PublishedList *ret, char **ret_error) {
        uint32_t genid;
        int r;

        r = nfnl_get_genid(n, &genid);
        if (r < 0)
                return error_set(ret_error, r, "cannot read the nf_tables ruleset generation: %s", errstr(r));
        r = dump_published(n, table, ret);
        if (r < 0)
                return error_set(ret_error, r, "cannot list chain '%s' of table '%s': %s", CHAIN_PUBLISHED, table,
                                 errstr(r));
        *ret_genid = genid;
        return 0;
}

/* meta l4proto PROTO th dport HOST_PORT dnat to ADDR:PORT, as nft builds "tcp dport N dnat to A:P". */
static int publish_rule(const char *table, const char *comment, int proto, uint16_t host_port, struct in_addr addr,
                        uint16_t port, struct nftnl_rule **ret) {
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
        uint8_t l4 = (uint8_t) proto;
        uint16_t be_host_port = htons(host_port), be_port = htons(port);
        int r;

        r = rule_new(table, CHAIN_PUBLISHED, comment, &rule);
        if (r >= 0)
                r = expr_meta(rule, NFT_META_L4PROTO);
        if (r >= 0)
                r = expr_cmp(rule, NFT_CMP_EQ, &l4, sizeof l4);
        if (r >= 0)
                r = expr_payload(rule, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2); /* dport of tcp and udp */
        if (r >= 0)
                r = expr_cmp(rule, NFT_CMP_EQ, &be_host_port, sizeof be_host_port);
        if (r >= 0)
                r = expr_immediate(rule, NFT_REG_1, &addr.s_addr, sizeof addr.s_addr);
        if (r >= 0)
                r = expr_immediate(rule, NFT_REG_2, &be_port, sizeof be_port);
        if (r >= 0)
                r = expr_dnat(rule);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rule);
        return 0;
}

int netfilter_publish_add(const char *table, const char *sandbox_id, int proto, uint16_t host_port,
                          struct in_addr addr, uint16_t port, char **ret_error) {
        _cleanup_(nfnl_done) Nfnl n = {};
        char comment[NFTNL_UDATA_COMMENT_MAXLEN], a[INET_ADDRSTRLEN];
        int r;

        if (!table_name_valid(table))
                return error_set(ret_error, -EINVAL, "invalid table name '%s'", table ?: "(null)");
        if (!sandbox_id_valid(sandbox_id))
                return error_set(ret_error, -EINVAL, "invalid sandbox id '%s'", sandbox_id ?: "(null)");
        if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
                return error_set(ret_error, -EPROTONOSUPPORT, "cannot publish protocol %d: only tcp and udp", proto);
        if (host_port == 0 || port == 0 || addr.s_addr == htonl(INADDR_ANY) || !inet_ntop(AF_INET, &addr, a, sizeof a))
                return error_set(ret_error, -EINVAL, "invalid port mapping for sandbox '%s'", sandbox_id);
        snprintf(comment, sizeof comment, SBX_COMMENT_PREFIX "%s", sandbox_id);

        r = nfnl_open(&n, ret_error);
        if (r < 0)
                return r;
        for (unsigned attempt = 0; attempt < RETRIES_MAX; attempt++) {
                _cleanup_(published_list_done) PublishedList l = {};
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                _cleanup_(batch_freep) Batch *b = NULL;
                _cleanup_free_ char *err = NULL;
                size_t mine = 0;
                uint32_t genid;

                r = read_published(&n, table, &genid, &l, ret_error);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < l.n; i++) {
                        const PublishedRule *p = &l.rules[i];
                        if (streq(p->id, sandbox_id))
                                mine++;
                        if (p->proto != proto || p->host_port != host_port)
                                continue;
                        if (streq(p->id, sandbox_id) && p->addr.s_addr == addr.s_addr && p->port == port)
                                return 0; /* already there */
                        return error_set(ret_error, -EADDRINUSE,
                                         "cannot publish %s port %u for sandbox '%s': already published %s%s%s",
                                         proto_name(proto), host_port, sandbox_id,
                                         p->id[0] ? "by sandbox '" : "by a rule not made by sandboxd", p->id,
                                         p->id[0] ? "'" : "");
                }
                if (l.n >= NETFILTER_PUBLISHED_MAX || mine >= PER_SANDBOX_MAX)
                        return error_set(ret_error, -ENOSPC,
                                         "cannot publish %s port %u for sandbox '%s': too many published ports",
                                         proto_name(proto), host_port, sandbox_id);

                r = batch_new(&n, genid, &b);
                if (r >= 0)
                        r = publish_rule(table, comment, proto, host_port, addr, port, &rule);
                if (r >= 0)
                        r = batch_add(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, OBJ_RULE, rule, HINT_SETUP,
                                      "add rule '%s dport %u dnat to %s:%u' for sandbox '%s' to chain '%s' of table '%s'",
                                      proto_name(proto), host_port, a, port, sandbox_id, CHAIN_PUBLISHED, table);
                if (r < 0)
                        return error_set(ret_error, r, "cannot prepare the batch for table '%s': %s", table, errstr(r));
                r = batch_send(&n, b, &err);
                if (r == -ERESTART)
                        continue;
                if (r < 0 && ret_error)
                        *ret_error = TAKE_PTR(err);
                return r;
        }
        return error_set(ret_error, -EAGAIN, "cannot publish %s port %u for sandbox '%s': the ruleset kept changing",
                         proto_name(proto), host_port, sandbox_id);
}

int netfilter_publish_remove(const char *table, const char *sandbox_id, char **ret_error) {
        _cleanup_(nfnl_done) Nfnl n = {};
        int r;

        if (!table_name_valid(table))
                return error_set(ret_error, -EINVAL, "invalid table name '%s'", table ?: "(null)");
        if (!sandbox_id_valid(sandbox_id))
                return error_set(ret_error, -EINVAL, "invalid sandbox id '%s'", sandbox_id ?: "(null)");

        r = nfnl_open(&n, ret_error);
        if (r < 0)
                return r;
        for (unsigned attempt = 0; attempt < RETRIES_MAX; attempt++) {
                _cleanup_(published_list_done) PublishedList l = {};
                _cleanup_(batch_freep) Batch *b = NULL;
                _cleanup_free_ char *err = NULL;
                size_t count = 0;
                uint32_t genid;

                r = read_published(&n, table, &genid, &l, ret_error);
                if (r < 0)
                        return r;
                r = batch_new(&n, genid, &b);
                for (size_t i = 0; r >= 0 && i < l.n; i++) {
                        _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;

                        if (!streq(l.rules[i].id, sandbox_id))
                                continue;
                        r = rule_new(table, CHAIN_PUBLISHED, NULL, &rule);
                        if (r < 0)
                                break;
                        nftnl_rule_set_u64(rule, NFTNL_RULE_HANDLE, l.rules[i].handle);
                        r = batch_add(b, NFT_MSG_DELRULE, 0, OBJ_RULE, rule, HINT_NONE,
                                      "delete rule %" PRIu64 " of sandbox '%s' from chain '%s' of table '%s'",
                                      l.rules[i].handle, sandbox_id, CHAIN_PUBLISHED, table);
                        count++;
                }
                if (r < 0)
                        return error_set(ret_error, r, "cannot prepare the batch for table '%s': %s", table, errstr(r));
                if (count == 0)
                        return 0;
                r = batch_send(&n, b, &err);
                if (r == -ERESTART)
                        continue;
                if (r < 0) {
                        if (ret_error)
                                *ret_error = TAKE_PTR(err);
                        return r;
                }
                return (int) count;
        }
        return error_set(ret_error, -EAGAIN,
                         "cannot remove the published ports of sandbox '%s': the ruleset kept changing", sandbox_id);
}

static int read_published_only(const char *table, PublishedList *ret) {
        _cleanup_(nfnl_done) Nfnl n = {};
        int r;

        if (!table_name_valid(table))
                return -EINVAL;
        r = nfnl_open(&n, NULL);
        if (r < 0)
                return r;
        return dump_published(&n, table, ret);
}

int netfilter_list_published(const char *table, int (*cb)(const NetfilterPublished *p, void *userdata),
                             void *userdata) {
        _cleanup_(published_list_done) PublishedList l = {};
        int r;

        if (!cb)
                return -EINVAL;
        r = read_published_only(table, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                const PublishedRule *p = &l.rules[i];
                NetfilterPublished e = {
                        .sandbox_id = p->id,
                        .proto = p->proto,
                        .host_port = p->host_port,
                        .addr = p->addr,
                        .port = p->port,
                        .handle = p->handle,
                };
                r = cb(&e, userdata);
                if (r < 0)
                        return r;
        }
        return (int) l.n;
}

static int rule_id_compare(const void *a, const void *b) {
        return strcmp(((const PublishedRule *) a)->id, ((const PublishedRule *) b)->id);
}

int netfilter_list_sandboxes(const char *table, int (*cb)(const char *sandbox_id, void *userdata), void *userdata) {
        _cleanup_(published_list_done) PublishedList l = {};
        int r, count = 0;

        if (!cb)
                return -EINVAL;
        r = read_published_only(table, &l);
        if (r < 0)
                return r;
        if (l.n > 0)
                qsort(l.rules, l.n, sizeof *l.rules, rule_id_compare);
        for (size_t i = 0; i < l.n; i++) {
                if (!l.rules[i].id[0] || (i > 0 && streq(l.rules[i].id, l.rules[i - 1].id)))
                        continue;
                r = cb(l.rules[i].id, userdata);
                if (r < 0)
                        return r;
                count++;
        }
        return count;
}

int netfilter_teardown(const char *table, char **ret_error) {
        _cleanup_(nfnl_done) Nfnl n = {};
        _cleanup_(batch_freep) Batch *b = NULL;
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (!table_name_valid(table))
                return error_set(ret_error, -EINVAL, "invalid table name '%s'", table ?: "(null)");
        r = nfnl_open(&n, ret_error);
        if (r < 0)
                return r;
        r = batch_new(&n, 0, &b);
        if (r >= 0)
                r = table_new(table, NULL, &t);
        if (r >= 0)
                r = batch_add(b, NFT_MSG_DELTABLE, 0, OBJ_TABLE, t, HINT_NONE,
                              "delete table ip '%s'", table);
        if (r < 0)
                return error_set(ret_error, r, "cannot prepare the batch for table '%s': %s", table, errstr(r));
        r = batch_send(&n, b, &err);
        if (r == -ENOENT)
                return 0;
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(err);
        return r;
}
