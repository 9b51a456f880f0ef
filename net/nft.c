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
        char *buf;                        /* 2 * BATCH_LIMIT bytes, as libmnl wants */
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

/* A batch with its BATCH_BEGIN; GENID 0: no generation check. */
static int batch_new(Nfnl *n, uint32_t genid, Batch **ret) {
        _cleanup_(batch_freep) Batch *b = calloc(1, sizeof(Batch));
        if (!b)
                return -ENOMEM;
        b->buf = malloc(2 * BATCH_LIMIT);
        if (!b->buf)
                return -ENOMEM;
        b->b = mnl_nlmsg_batch_start(b->buf, BATCH_LIMIT);
        if (!b->b)
                return -ENOMEM;
        b->seq_begin = ++n->seq;
        put_batch_marker(b->b, NFNL_MSG_BATCH_BEGIN, b->seq_begin, genid);
        if (!mnl_nlmsg_batch_next(b->b))
                return -E2BIG;
        *ret = TAKE_PTR(b);
        return 0;
}

/* Append one message. WHAT is taken (freed on failure too); NULL means OOM. Every message we put
 * is far smaller than BATCH_LIMIT (bounded names, <= 10 expressions), which is what keeps libnftnl's
 * unchecked writes inside the second half of the buffer. */
static int batch_add(Batch *b, uint16_t type, uint16_t flags, ObjKind kind, void *obj, Hint hint, char *what) {
        _cleanup_free_ char *w = what;
        struct nlmsghdr *nlh;

        if (!w)
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
 * The API
 */

typedef struct BaseChain {
        const char *name, *type;
        uint32_t hook;
        int32_t prio;
} BaseChain;

static const BaseChain base_chains[] = {
        { "postrouting", "nat", NF_INET_POST_ROUTING, 100 },  /* srcnat */
        { "prerouting", "nat", NF_INET_PRE_ROUTING, -100 },   /* dstnat */
        { "output", "nat", NF_INET_LOCAL_OUT, -100 },         /* dstnat */
        { "forward", "filter", NF_INET_FORWARD, 0 },          /* filter */
};

static int validate_config(const NetfilterConfig *c, char **ret_error) {
        if (!c || !table_name_valid(c->table))
                return error_set(ret_error, -EINVAL, "invalid table name '%s'", c && c->table ? c->table : "(null)");
        if (c->n_bridges > NETFILTER_BRIDGES_MAX || (c->n_bridges > 0 && !c->bridges))
                return error_set(ret_error, -EINVAL, "invalid number of bridges: %zu (at most %d)", c->n_bridges,
                                 NETFILTER_BRIDGES_MAX);
        for (size_t i = 0; i < c->n_bridges; i++) {
                const NetfilterBridge *br = &c->bridges[i];
                if (!ifname_valid(br->ifname))
                        return error_set(ret_error, -EINVAL, "invalid bridge name '%s'", br->ifname ?: "(null)");
                if (br->prefixlen < 1 || br->prefixlen > 32)
                        return error_set(ret_error, -EINVAL, "invalid prefix length %u of bridge '%s' (1..32)",
                                         br->prefixlen, br->ifname);
                for (size_t j = 0; j < i; j++)
                        if (streq(c->bridges[j].ifname, br->ifname))
                                return error_set(ret_error, -EINVAL, "bridge '%s' given twice", br->ifname);
        }
        return 0;
}

static int add_rule(Batch *b, struct nftnl_rule *rule, Hint hint, const char *table, const char *chain,
                    const char *comment) {
        char *what = NULL;
        if (asprintf(&what, "add rule '%s' to chain '%s' of table '%s'", comment, chain, table) < 0)
                what = NULL;
        return batch_add(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, OBJ_RULE, rule, hint, what);
}

static int setup_chains(Batch *b, const char *table) {
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = NULL;
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *pub = NULL;
        char *what;
        int r;

        /* Create the table if missing (no NLM_F_EXCL: an existing one is kept, with its chain
         * "published"). Its comment is set only when it is created. */
        r = table_new(table, "sandbox NAT and forwarding, managed by sandboxd", &t);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, OBJ_TABLE, t, HINT_NONE,
                      asprintf(&what, "create table ip '%s'", table) < 0 ? NULL : what);
        if (r < 0)
                return r;
        r = chain_new(table, CHAIN_PUBLISHED, NULL, 0, 0, &pub);
        if (r < 0)
                return r;
        r = batch_add(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, OBJ_CHAIN, pub, HINT_NONE,
                      asprintf(&what, "create chain '%s' in table '%s'", CHAIN_PUBLISHED, table) < 0 ? NULL : what);
        if (r < 0)
                return r;

        /* Each base chain from scratch: make sure it exists (a regular chain if it did not, an
         * update without changes if it did: no hook is given), flush it, delete it, create it anew.
         * Deleting instead of updating also replaces a base chain whose hook or priority differs. */
        for (size_t i = 0; i < ELEMENTSOF(base_chains); i++) {
                const BaseChain *bc = &base_chains[i];
                _cleanup_(nftnl_chain_freep) struct nftnl_chain *plain = NULL, *base = NULL;
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *flush = NULL;

                r = chain_new(table, bc->name, NULL, 0, 0, &plain);
                if (r < 0)
                        return r;
                r = batch_add(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, OBJ_CHAIN, plain, HINT_NONE,
                              asprintf(&what, "look up chain '%s' in table '%s'", bc->name, table) < 0 ? NULL : what);
                if (r < 0)
                        return r;
                r = rule_new(table, bc->name, NULL, &flush);
                if (r < 0)
                        return r;
                r = batch_add(b, NFT_MSG_DELRULE, 0, OBJ_RULE, flush, HINT_NONE,
                              asprintf(&what, "flush chain '%s' in table '%s'", bc->name, table) < 0 ? NULL : what);
                if (r < 0)
                        return r;
                r = batch_add(b, NFT_MSG_DELCHAIN, 0, OBJ_CHAIN, plain, HINT_NONE,
                              asprintf(&what, "delete old chain '%s' in table '%s'", bc->name, table) < 0 ? NULL : what);
                if (r < 0)
                        return r;
                r = chain_new(table, bc->name, bc->type, bc->hook, bc->prio, &base);
                if (r < 0)
                        return r;
                r = batch_add(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, OBJ_CHAIN, base,
                              streq(bc->type, "nat") ? HINT_NAT : HINT_NONE,
                              asprintf(&what, "create chain '%s' in table '%s'", bc->name, table) < 0 ? NULL : what);
                if (r < 0)
                        return r;
        }
        return 0;
}


#define IP_SADDR_OFFSET 12 /* offsetof(struct iphdr, saddr) */
#define IP_DADDR_OFFSET 16 /* offsetof(struct iphdr, daddr) */

/* The common tail of building a rule: R is the result of its matches and statements so far. */
static int rule_finish(Batch *b, struct nftnl_rule *rule, int r, Hint hint, const char *table, const char *chain,
                       const char *comment) {
        return r < 0 ? r : add_rule(b, rule, hint, table, chain, comment);
}

static int setup_rules(Batch *b, const char *table, const NetfilterConfig *c) {
        const struct in_addr loopback = { .s_addr = htonl(INADDR_LOOPBACK) };
        char comment[NFTNL_UDATA_COMMENT_MAXLEN];
        int r;

        /* postrouting: masquerade what a sandbox subnet sends out of anything but its own bridge. */
        for (size_t i = 0; i < c->n_bridges; i++) {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                const NetfilterBridge *br = &c->bridges[i];
                struct in_addr net = { .s_addr = br->subnet.s_addr & prefix_mask(br->prefixlen) };
                char a[INET_ADDRSTRLEN];

                if (!inet_ntop(AF_INET, &net, a, sizeof a))
                        return -EINVAL;
                snprintf(comment, sizeof comment, "sandbox: masquerade %s/%u from %s", a, br->prefixlen, br->ifname);
                r = rule_new(table, "postrouting", comment, &rule);
                if (r >= 0)
                        r = match_ip_prefix(rule, IP_SADDR_OFFSET, NFT_CMP_EQ, net, br->prefixlen);
                if (r >= 0)
                        r = match_ifname(rule, NFT_META_OIFNAME, NFT_CMP_NEQ, br->ifname);
                if (r >= 0)
                        r = expr_masq(rule);
                r = rule_finish(b, rule, r, HINT_NAT, table, "postrouting", comment);
                if (r < 0)
                        return r;
        }

        /* prerouting: connections to one of our own addresses go through "published" (Docker's
         * "-m addrtype --dst-type LOCAL -j DOCKER"). */
        {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                const char *cm = "sandbox: published ports";
                r = rule_new(table, "prerouting", cm, &rule);
                if (r >= 0)
                        r = match_fib_daddr_local(rule);
                if (r >= 0)
                        r = expr_verdict(rule, NFT_JUMP, CHAIN_PUBLISHED);
                r = rule_finish(b, rule, r, HINT_EXPRS, table, "prerouting", cm);
                if (r < 0)
                        return r;
        }

        /* output: the same for connections the host itself makes, except to 127.0.0.0/8 (which
         * cannot be routed to a bridge after DNAT). */
        {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                const char *cm = "sandbox: published ports, from the host";
                r = rule_new(table, "output", cm, &rule);
                if (r >= 0)
                        r = match_ip_prefix(rule, IP_DADDR_OFFSET, NFT_CMP_NEQ, loopback, 8);
                if (r >= 0)
                        r = match_fib_daddr_local(rule);
                if (r >= 0)
                        r = expr_verdict(rule, NFT_JUMP, CHAIN_PUBLISHED);
                r = rule_finish(b, rule, r, HINT_EXPRS, table, "output", cm);
                if (r < 0)
                        return r;
        }

        /* forward: first the only drops, between two different sandbox bridges (both ways: each
         * ordered pair); then what bridged sandboxes need, accepted. */
        for (size_t i = 0; i < c->n_bridges; i++)
                for (size_t j = 0; j < c->n_bridges; j++) {
                        _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                        if (i == j)
                                continue;
                        snprintf(comment, sizeof comment, "sandbox: isolate %s from %s", c->bridges[i].ifname,
                                 c->bridges[j].ifname);
                        r = rule_new(table, "forward", comment, &rule);
                        if (r >= 0)
                                r = match_ifname(rule, NFT_META_IIFNAME, NFT_CMP_EQ, c->bridges[i].ifname);
                        if (r >= 0)
                                r = match_ifname(rule, NFT_META_OIFNAME, NFT_CMP_EQ, c->bridges[j].ifname);
                        if (r >= 0)
                                r = expr_verdict(rule, NF_DROP, NULL);
                        r = rule_finish(b, rule, r, HINT_NONE, table, "forward", comment);
                        if (r < 0)
                                return r;
                }
        {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                const char *cm = "sandbox: replies";
                r = rule_new(table, "forward", cm, &rule);
                if (r >= 0)
                        r = match_ct_bits(rule, NFT_CT_STATE,
                                          NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
                if (r >= 0)
                        r = expr_verdict(rule, NF_ACCEPT, NULL);
                r = rule_finish(b, rule, r, HINT_EXPRS, table, "forward", cm);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < c->n_bridges; i++) {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                snprintf(comment, sizeof comment, "sandbox: out of %s", c->bridges[i].ifname);
                r = rule_new(table, "forward", comment, &rule);
                if (r >= 0)
                        r = match_ifname(rule, NFT_META_IIFNAME, NFT_CMP_EQ, c->bridges[i].ifname);
                if (r >= 0)
                        r = expr_verdict(rule, NF_ACCEPT, NULL);
                r = rule_finish(b, rule, r, HINT_NONE, table, "forward", comment);
                if (r < 0)
                        return r;
        }
        {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *rule = NULL;
                const char *cm = "sandbox: to published ports";
                r = rule_new(table, "forward", cm, &rule);
                if (r >= 0)
                        r = match_ct_bits(rule, NFT_CT_STATUS, IPS_DST_NAT);
                if (r >= 0)
                        r = expr_verdict(rule, NF_ACCEPT, NULL);
                r = rule_finish(b, rule, r, HINT_EXPRS, table, "forward", cm);
                if (r < 0)
                        return r;
        }
        return 0;
}

int netfilter_setup(const NetfilterConfig *c, char **ret_error) {
        _cleanup_(nfnl_done) Nfnl n = {};
        _cleanup_(batch_freep) Batch *b = NULL;
        int r;

        r = validate_config(c, ret_error);
        if (r < 0)
                return r;
        r = nfnl_open(&n, ret_error);
        if (r < 0)
                return r;
        r = batch_new(&n, 0, &b);
        if (r >= 0)
                r = setup_chains(b, c->table);
        if (r >= 0)
                r = setup_rules(b, c->table, c);
        if (r < 0)
                return error_set(ret_error, r, "cannot prepare the batch for table '%s': %s", c->table, errstr(r));
        return batch_send(&n, b, ret_error);
}

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
                char *what;

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
                                      asprintf(&what,
                                               "add rule '%s dport %u dnat to %s:%u' for sandbox '%s' to chain '%s' of table '%s'",
                                               proto_name(proto), host_port, a, port, sandbox_id, CHAIN_PUBLISHED,
                                               table) < 0
                                              ? NULL
                                              : what);
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
                        char *what;

                        if (!streq(l.rules[i].id, sandbox_id))
                                continue;
                        r = rule_new(table, CHAIN_PUBLISHED, NULL, &rule);
                        if (r < 0)
                                break;
                        nftnl_rule_set_u64(rule, NFTNL_RULE_HANDLE, l.rules[i].handle);
                        r = batch_add(b, NFT_MSG_DELRULE, 0, OBJ_RULE, rule, HINT_NONE,
                                      asprintf(&what, "delete rule %" PRIu64 " of sandbox '%s' from chain '%s' of table '%s'",
                                               l.rules[i].handle, sandbox_id, CHAIN_PUBLISHED, table) < 0
                                              ? NULL
                                              : what);
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
        char *what;
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
                              asprintf(&what, "delete table ip '%s'", table) < 0 ? NULL : what);
        if (r < 0)
                return error_set(ret_error, r, "cannot prepare the batch for table '%s': %s", table, errstr(r));
        r = batch_send(&n, b, &err);
        if (r == -ENOENT)
                return 0;
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(err);
        return r;
}
