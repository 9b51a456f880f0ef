/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rtnetlink over libmnl (see rtnl.h): request builders, one request/reply loop, reply parsers.
 *
 * Runs in the parent (the runtime), as root: creating links, addresses and routes needs
 * CAP_NET_ADMIN over the namespace the socket lives in; rtnl_open_in_netns() also needs
 * CAP_SYS_ADMIN for setns(). The only namespace switch is the one in rtnl_open_in_netns(), and the
 * calling thread always goes back.
 *
 * The loop (rtnl_call): every request carries NLM_F_ACK and a fresh sequence number; replies are
 * read into one bounded buffer (RTNL_RECV_BUFFER_SIZE, the largest MNL_SOCKET_BUFFER_SIZE, which is
 * also the most the kernel puts in one dump datagram once we read with that size); messages not
 * from the kernel (sender port != 0), not for our port, or with another sequence number (late
 * replies to an earlier request) are skipped. A truncated datagram fails the request, after the
 * rest of the reply was drained so that the next request starts clean. Receives are bounded by
 * SO_RCVTIMEO, although the kernel answers rtnetlink synchronously in sendmsg()/recvmsg().
 *
 * Library code: returns -errno, logs at debug level at most, writes ret_* only on success. Kernel
 * replies are parsed with length checks on every attribute (mnl_attr_validate).
 */
#include <errno.h>
#include <sys/random.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "log.h"
#include "macro.h"
#include "rtnl.h"

#define RTNL_RECV_BUFFER_SIZE 8192
/* Requests are a header plus a few names and integers. */
#define RTNL_REQUEST_SIZE 1024
#define RTNL_ERROR_MAX 256
#define RTNL_KIND_MAX 32
#define RTNL_RECV_TIMEOUT_SEC 10
/* Datagrams read to drain a reply we gave up on. */
#define RTNL_DRAIN_MAX 65536

struct Rtnl {
        struct mnl_socket *nl;
        uint32_t portid;
        uint32_t seq;
        char error[RTNL_ERROR_MAX]; /* the last failed request's ext-ack message, or "" */
        union {
                struct nlmsghdr align;
                uint8_t bytes[RTNL_RECV_BUFFER_SIZE];
        } buf;
};

typedef union RtnlRequest {
        struct nlmsghdr align;
        uint8_t bytes[RTNL_REQUEST_SIZE];
} RtnlRequest;

/* Called for every data message of a reply (not for ACKs, errors, NLMSG_DONE). */
typedef int (*RtnlMsgCallback)(const struct nlmsghdr *nlh, void *userdata);

bool rtnl_ifname_is_valid(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strnlen(name, IFNAMSIZ);
        if (n == 0 || n >= IFNAMSIZ)
                return false;
        if (streq(name, ".") || streq(name, ".."))
                return false;
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;
                /* The kernel refuses '/', ':' and whitespace; control characters we refuse too. */
                if (c == '/' || c == ':' || c <= ' ' || c == 0x7f)
                        return false;
        }
        return true;
}

/* ------------------------------------------------------------------------------------------------
 * Socket
 */

int rtnl_open(Rtnl **ret) {
        struct timeval tv = { .tv_sec = RTNL_RECV_TIMEOUT_SEC };
        Rtnl *r;
        int one = 1;

        assert_return(ret, -EINVAL);

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;

        r->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!r->nl)
                goto fail;
        /* The kernel's error messages; optional (older kernels), so failures are ignored. */
        if (mnl_socket_setsockopt(r->nl, NETLINK_EXT_ACK, &one, sizeof one) < 0)
                log_debug_errno(-errno, "rtnl: NETLINK_EXT_ACK not supported, ignoring: %m");
        /* ACKs without a copy of the request. */
        (void) mnl_socket_setsockopt(r->nl, NETLINK_CAP_ACK, &one, sizeof one);
        /* Strict header checks for GET requests (unknown attributes refused, not ignored). */
        (void) mnl_socket_setsockopt(r->nl, NETLINK_GET_STRICT_CHK, &one, sizeof one);
        if (setsockopt(mnl_socket_get_fd(r->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
                goto fail;
        if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0)
                goto fail;
        r->portid = mnl_socket_get_portid(r->nl);
        r->seq = (uint32_t) time(NULL);

        *ret = r;
        return 0;

fail:;
        int k = negative_errno();
        rtnl_close(r);
        return k;
}

static int open_own_netns(void) {
        char path[64];
        int fd;

        fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
                return fd >= 0 ? fd : -errno;
        /* Kernels before 3.17 have no /proc/thread-self. */
        snprintf(path, sizeof path, "/proc/self/task/%ld/ns/net", (long) syscall(SYS_gettid));
        return RET_NERRNO(open(path, O_RDONLY | O_CLOEXEC));
}

int rtnl_open_in_netns(int netns_fd, Rtnl **ret) {
        _cleanup_close_ int orig_fd = -EBADF;
        Rtnl *r = NULL;
        int k, q;

        assert_return(netns_fd >= 0, -EBADF);
        assert_return(ret, -EINVAL);

        orig_fd = open_own_netns();
        if (orig_fd < 0)
                return log_debug_errno(orig_fd, "rtnl: cannot open own network namespace: %m");

        /* Privileged step: the calling thread enters the target namespace (CAP_SYS_ADMIN), only for
         * socket(): a netlink socket belongs to the namespace it was created in, for good. */
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                return log_debug_errno(-errno, "rtnl: setns() into the target network namespace: %m");
        k = rtnl_open(&r);
        /* And back, whatever happened. */
        q = RET_NERRNO(setns(orig_fd, CLONE_NEWNET));
        if (q < 0) {
                rtnl_close(r);
                return log_debug_errno(q, "rtnl: cannot return to the original network namespace: %m");
        }
        if (k < 0)
                return k;

        *ret = r;
        return 0;
}

Rtnl *rtnl_close(Rtnl *rtnl) {
        if (!rtnl)
                return NULL;
        if (rtnl->nl)
                mnl_socket_close(rtnl->nl);
        free(rtnl);
        return NULL;
}

const char *rtnl_last_error(const Rtnl *rtnl) {
        return rtnl && rtnl->error[0] ? rtnl->error : NULL;
}

/* ------------------------------------------------------------------------------------------------
 * Attribute parsing helpers
 */

typedef struct AttrTable {
        const struct nlattr **tb;
        uint16_t max;
} AttrTable;

static int attr_table_cb(const struct nlattr *attr, void *userdata) {
        AttrTable *t = userdata;
        uint16_t type = mnl_attr_get_type(attr);

        if (type <= t->max)
                t->tb[type] = attr;
        return MNL_CB_OK;
}

/* Fill TB[0..MAX] (zeroed first) with the attributes of NLH after OFFSET payload bytes. */
static void parse_attrs(const struct nlmsghdr *nlh, size_t offset, const struct nlattr **tb, uint16_t max) {
        AttrTable t = { tb, max };

        memset(tb, 0, sizeof(*tb) * (max + 1u));
        if (offset > mnl_nlmsg_get_payload_len(nlh))
                return;
        (void) mnl_attr_parse(nlh, (unsigned) offset, attr_table_cb, &t);
}

static void parse_nested(const struct nlattr *nest, const struct nlattr **tb, uint16_t max) {
        AttrTable t = { tb, max };

        memset(tb, 0, sizeof(*tb) * (max + 1u));
        (void) mnl_attr_parse_nested(nest, attr_table_cb, &t);
}

/* A NUL-terminated string attribute of at most MAX bytes including the NUL, or NULL. */
static const char *attr_string(const struct nlattr *attr, size_t max) {
        if (!attr || mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
                return NULL;
        if (mnl_attr_get_payload_len(attr) > max)
                return NULL;
        return mnl_attr_get_str(attr);
}

/* The extended ACK TLVs of an NLMSG_ERROR or NLMSG_DONE message start OFFSET payload bytes in. */
static void save_ext_ack(Rtnl *r, const struct nlmsghdr *nlh, size_t offset) {
        const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
        const char *msg;

        if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        parse_attrs(nlh, offset, tb, NLMSGERR_ATTR_MAX);
        msg = attr_string(tb[NLMSGERR_ATTR_MSG], SIZE_MAX);
        if (msg)
                snprintf(r->error, sizeof r->error, "%s", msg);
}

/* ------------------------------------------------------------------------------------------------
 * Request/reply
 */

static struct nlmsghdr *request_start(RtnlRequest *req, uint16_t type, uint16_t flags) {
        struct nlmsghdr *nlh;

        memset(req, 0, sizeof *req);
        nlh = mnl_nlmsg_put_header(req->bytes);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        return nlh;
}

/* Read and drop whatever is queued, without blocking: the kernel produces every part of an
 * rtnetlink reply (also each further dump datagram) synchronously in sendmsg()/recvmsg(). */
static void drain(Rtnl *r) {
        int fd = mnl_socket_get_fd(r->nl);

        for (unsigned i = 0; i < RTNL_DRAIN_MAX; i++) {
                ssize_t n = recv(fd, r->buf.bytes, sizeof r->buf.bytes, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return;
        }
}

/* Send NLH (NLM_F_REQUEST|NLM_F_ACK set, sequence number assigned here) and read the reply to its
 * end: the ACK or error, or NLMSG_DONE for a dump. CB (may be NULL) sees every data message; after
 * it returned < 0 it is not called again, the reply is still read to its end, and its error is
 * returned unless the kernel reported one. */
static int rtnl_call(Rtnl *r, struct nlmsghdr *nlh, RtnlMsgCallback cb, void *userdata) {
        int fd = mnl_socket_get_fd(r->nl);
        int cb_r = 0, kernel_r = 0;
        bool interrupted = false;
        uint32_t seq;

        r->error[0] = '\0';
        if (++r->seq == 0)
                r->seq = 1;
        seq = nlh->nlmsg_seq = r->seq;
        nlh->nlmsg_pid = 0;

        if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
                return log_debug_errno(-errno, "rtnl: sendto: %m");

        for (;;) {
                struct sockaddr_nl sa = {};
                struct iovec iov = { r->buf.bytes, sizeof r->buf.bytes };
                struct msghdr mh = {
                        .msg_name = &sa,
                        .msg_namelen = sizeof sa,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                };
                bool final = false;
                ssize_t n;
                int len;

                n = recvmsg(fd, &mh, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) /* SO_RCVTIMEO */
                        return log_debug_errno(-ETIMEDOUT, "rtnl: no reply to request %" PRIu32 ": %m", seq);
                if (n < 0)
                        return log_debug_errno(-errno, "rtnl: recvmsg: %m");
                if (mh.msg_namelen != sizeof sa || sa.nl_family != AF_NETLINK || sa.nl_pid != 0)
                        continue; /* not from the kernel */
                if (mh.msg_flags & MSG_TRUNC) {
                        drain(r);
                        return log_debug_errno(-EMSGSIZE, "rtnl: reply larger than %d bytes: %m",
                                               RTNL_RECV_BUFFER_SIZE);
                }

                len = (int) n;
                for (const struct nlmsghdr *h = (const struct nlmsghdr *) r->buf.bytes; mnl_nlmsg_ok(h, len);
                     h = mnl_nlmsg_next(h, &len)) {
                        if (h->nlmsg_seq != seq || h->nlmsg_pid != r->portid)
                                continue; /* a late reply to an earlier request, or not ours */

                        if (h->nlmsg_type == NLMSG_NOOP)
                                continue;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
                                size_t offset = sizeof *e;

                                if (mnl_nlmsg_get_payload_len(h) < sizeof *e) {
                                        kernel_r = -EBADMSG;
                                        final = true;
                                        break;
                                }
                                if (e->error > 0 || e->error < -4095)
                                        kernel_r = -EPROTO;
                                else
                                        kernel_r = e->error;
                                if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN)
                                        offset += MNL_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
                                if (kernel_r < 0)
                                        save_ext_ack(r, h, offset);
                                final = true;
                                break;
                        }
                        if (h->nlmsg_type == NLMSG_DONE) {
                                /* A dump's end: an int error, then maybe ext-ack TLVs. */
                                if (mnl_nlmsg_get_payload_len(h) >= sizeof(int)) {
                                        int e;
                                        memcpy(&e, mnl_nlmsg_get_payload(h), sizeof e);
                                        kernel_r = e > 0 || e < -4095 ? -EPROTO : e;
                                        if (kernel_r < 0)
                                                save_ext_ack(r, h, sizeof e);
                                }
                                final = true;
                                break;
                        }
                        if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                                interrupted = true;
                        if (cb && cb_r >= 0)
                                cb_r = cb(h, userdata);
                }
                if (final)
                        break;
                if (len != 0) {
                        /* Garbage after the last complete message: the end may be lost. */
                        drain(r);
                        return log_debug_errno(-EBADMSG, "rtnl: malformed reply to request %" PRIu32 ": %m",
                                               seq);
                }
        }

        if (kernel_r < 0)
                return log_debug_errno(kernel_r, "rtnl: request %" PRIu32 " (type %u) failed: %m%s%s%s", seq,
                                       (unsigned) nlh->nlmsg_type, r->error[0] ? " (kernel: " : "", r->error,
                                       r->error[0] ? ")" : "");
        if (cb_r < 0)
                return cb_r;
        if (interrupted)
                return -EAGAIN;
        return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Links
 */

typedef struct LinkInfo {
        int ifindex;
        char name[IFNAMSIZ];
        char kind[RTNL_KIND_MAX];
        bool is_bridge_port;
        bool has_isolated;
        bool isolated;
} LinkInfo;

/* Parse an RTM_NEWLINK message: -EBADMSG if it is not one or lacks a valid name. */
static int parse_link(const struct nlmsghdr *nlh, LinkInfo *ret) {
        const struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
        const struct ifinfomsg *ifi;
        LinkInfo info = {};
        const char *s;

        if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof *ifi)
                return -EBADMSG;
        ifi = mnl_nlmsg_get_payload(nlh);
        if (ifi->ifi_index <= 0)
                return -EBADMSG;
        info.ifindex = ifi->ifi_index;

        parse_attrs(nlh, sizeof *ifi, tb, IFLA_MAX);
        s = attr_string(tb[IFLA_IFNAME], IFNAMSIZ);
        if (!s)
                return -EBADMSG;
        memcpy(info.name, s, strlen(s) + 1);

        if (tb[IFLA_LINKINFO] && mnl_attr_validate(tb[IFLA_LINKINFO], MNL_TYPE_NESTED) >= 0) {
                parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX);
                s = attr_string(li[IFLA_INFO_KIND], sizeof info.kind);
                if (s)
                        memcpy(info.kind, s, strlen(s) + 1);
                s = attr_string(li[IFLA_INFO_SLAVE_KIND], SIZE_MAX);
                info.is_bridge_port = s && streq(s, "bridge");
                if (info.is_bridge_port && li[IFLA_INFO_SLAVE_DATA] &&
                    mnl_attr_validate(li[IFLA_INFO_SLAVE_DATA], MNL_TYPE_NESTED) >= 0) {
                        const struct nlattr *bp[IFLA_BRPORT_MAX + 1];
                        parse_nested(li[IFLA_INFO_SLAVE_DATA], bp, IFLA_BRPORT_MAX);
                        const struct nlattr *iso = bp[IFLA_BRPORT_ISOLATED];
                        if (iso && mnl_attr_validate(iso, MNL_TYPE_U8) >= 0) {
                                info.has_isolated = true;
                                info.isolated = mnl_attr_get_u8(iso) != 0;
                        }
                }
        }

        *ret = info;
        return 0;
}

typedef struct LinkGet {
        LinkInfo info;
        bool found;
} LinkGet;

static int link_get_cb(const struct nlmsghdr *nlh, void *userdata) {
        LinkGet *g = userdata;
        int k;

        if (g->found)
                return 0;
        k = parse_link(nlh, &g->info);
        if (k < 0)
                return k;
        g->found = true;
        return 0;
}

/* IFLA_IFNAME NAME and, when MTU > 0, IFLA_MTU MTU: what a link is made or named with. */
static bool put_name_mtu(struct nlmsghdr *nlh, const char *name, uint32_t mtu) {
        return mnl_attr_put_strz_check(nlh, sizeof(RtnlRequest), IFLA_IFNAME, name) &&
               (mtu == 0 || mnl_attr_put_u32_check(nlh, sizeof(RtnlRequest), IFLA_MTU, mtu));
}

/* An RTM_{NEW,GET,SET,DEL}LINK request (FLAGS besides NLM_F_REQUEST | NLM_F_ACK) for the link NAME,
 * made with that name or found by the kernel by it (ifi_index 0, IFLA_IFNAME), with IFLA_MTU when
 * MTU > 0. NULL when it does not fit. */
static struct nlmsghdr *link_request(RtnlRequest *req, uint16_t type, uint16_t flags, const char *name,
                                     uint32_t mtu) {
        struct nlmsghdr *nlh = request_start(req, type, flags);
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);

        ifi->ifi_family = AF_UNSPEC;
        return put_name_mtu(nlh, name, mtu) ? nlh : NULL;
}

static int link_get(Rtnl *r, const char *name, LinkInfo *ret) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        LinkGet g = {};
        int k;

        assert_return(r, -EINVAL);
        if (!rtnl_ifname_is_valid(name))
                return -EINVAL;

        nlh = link_request(&req, RTM_GETLINK, 0, name, 0);
        if (!nlh || !mnl_attr_put_u32_check(nlh, sizeof req, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
                return -ENOBUFS;

        k = rtnl_call(r, nlh, link_get_cb, &g);
        if (k < 0)
                return k;
        if (!g.found)
                return -EBADMSG; /* an ACK without the link */
        *ret = g.info;
        return 0;
}

int rtnl_link_index(Rtnl *rtnl, const char *name, int *ret_ifindex) {
        LinkInfo info;
        int k;

        assert_return(ret_ifindex, -EINVAL);
        k = link_get(rtnl, name, &info);
        if (k < 0)
                return k;
        *ret_ifindex = info.ifindex;
        return 0;
}

int rtnl_link_kind(Rtnl *rtnl, const char *name, char *buf, size_t size) {
        LinkInfo info;
        size_t n;
        int k;

        assert_return(buf || size == 0, -EINVAL);
        k = link_get(rtnl, name, &info);
        if (k < 0)
                return k;
        n = strlen(info.kind);
        if (n >= size)
                return -ERANGE;
        memcpy(buf, info.kind, n + 1);
        return 0;
}

static int put_linkinfo_kind(struct nlmsghdr *nlh, size_t size, const char *kind, struct nlattr **ret_data) {
        struct nlattr *linkinfo;

        linkinfo = mnl_attr_nest_start_check(nlh, size, IFLA_LINKINFO);
        if (!linkinfo)
                return -ENOBUFS;
        if (!mnl_attr_put_strz_check(nlh, size, IFLA_INFO_KIND, kind))
                return -ENOBUFS;
        if (ret_data) {
                /* The caller fills IFLA_INFO_DATA and closes both nests. */
                struct nlattr *data = mnl_attr_nest_start_check(nlh, size, IFLA_INFO_DATA);
                if (!data)
                        return -ENOBUFS;
                *ret_data = data;
                return 0;
        }
        mnl_attr_nest_end(nlh, linkinfo);
        return 0;
}

int rtnl_bridge_create(Rtnl *rtnl, const char *name, uint32_t mtu) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        int k;

        assert_return(rtnl, -EINVAL);
        if (!rtnl_ifname_is_valid(name))
                return -EINVAL;

        nlh = link_request(&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name, mtu);
        if (!nlh)
                return -ENOBUFS;
        {
                /* A MAC of its own (random, locally administered): otherwise a bridge takes its
                 * smallest port's, and the gateway's MAC changes whenever that port goes, leaving the
                 * other ports' ARP caches pointing nowhere. */
                uint8_t mac[6];
                if (getrandom(mac, sizeof mac, 0) != sizeof mac)
                        return -EIO;
                mac[0] = (uint8_t) ((mac[0] & 0xfe) | 0x02);
                if (!mnl_attr_put_check(nlh, sizeof req, IFLA_ADDRESS, sizeof mac, mac))
                        return -ENOBUFS;
        }
        k = put_linkinfo_kind(nlh, sizeof req, "bridge", NULL);
        if (k < 0)
                return k;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_veth_create(Rtnl *rtnl, const char *name, const char *peer_name, uint32_t mtu, int peer_netns_fd) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct ifinfomsg *peer_ifi;
        struct nlattr *linkinfo, *data, *peer;
        int k;

        assert_return(rtnl, -EINVAL);
        if (!rtnl_ifname_is_valid(name) || !rtnl_ifname_is_valid(peer_name))
                return -EINVAL;

        nlh = link_request(&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, name, mtu);
        if (!nlh)
                return -ENOBUFS;

        linkinfo = mnl_nlmsg_get_payload_tail(nlh);
        k = put_linkinfo_kind(nlh, sizeof req, "veth", &data);
        if (k < 0)
                return k;

        /* VETH_INFO_PEER: a struct ifinfomsg, then the peer's own IFLA_* attributes. */
        peer = mnl_attr_nest_start_check(nlh, sizeof req, VETH_INFO_PEER);
        if (!peer || nlh->nlmsg_len + MNL_ALIGN(sizeof *peer_ifi) > sizeof req)
                return -ENOBUFS;
        peer_ifi = mnl_nlmsg_get_payload_tail(nlh);
        memset(peer_ifi, 0, MNL_ALIGN(sizeof *peer_ifi));
        peer_ifi->ifi_family = AF_UNSPEC;
        nlh->nlmsg_len += MNL_ALIGN(sizeof *peer_ifi);
        if (!put_name_mtu(nlh, peer_name, mtu))
                return -ENOBUFS;
        /* The peer is created in its namespace directly: never visible in ours. */
        if (peer_netns_fd >= 0 &&
            !mnl_attr_put_u32_check(nlh, sizeof req, IFLA_NET_NS_FD, (uint32_t) peer_netns_fd))
                return -ENOBUFS;
        mnl_attr_nest_end(nlh, peer);
        mnl_attr_nest_end(nlh, data);
        mnl_attr_nest_end(nlh, linkinfo);

        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_link_set_master(Rtnl *rtnl, const char *name, const char *master) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        int master_index = 0, k;

        assert_return(rtnl, -EINVAL);
        if (!rtnl_ifname_is_valid(name))
                return -EINVAL;
        if (master) {
                k = rtnl_link_index(rtnl, master, &master_index);
                if (k < 0)
                        return k;
        }

        nlh = link_request(&req, RTM_SETLINK, 0, name, 0);
        if (!nlh || !mnl_attr_put_u32_check(nlh, sizeof req, IFLA_MASTER, (uint32_t) master_index))
                return -ENOBUFS;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_link_set_up(Rtnl *rtnl, const char *name) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;

        assert_return(rtnl, -EINVAL);
        if (!rtnl_ifname_is_valid(name))
                return -EINVAL;

        nlh = link_request(&req, RTM_SETLINK, 0, name, 0);
        if (!nlh)
                return -ENOBUFS;
        ifi = mnl_nlmsg_get_payload(nlh);
        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_link_set_mtu(Rtnl *rtnl, const char *name, uint32_t mtu) {
        RtnlRequest req;
        struct nlmsghdr *nlh;

        assert_return(rtnl, -EINVAL);
        assert_return(mtu > 0, -EINVAL);
        if (!rtnl_ifname_is_valid(name))
                return -EINVAL;

        nlh = link_request(&req, RTM_SETLINK, 0, name, mtu);
        if (!nlh)
                return -ENOBUFS;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_link_rename(Rtnl *rtnl, const char *old_name, const char *new_name) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;
        int ifindex, k;

        assert_return(rtnl, -EINVAL);
        if (!rtnl_ifname_is_valid(old_name) || !rtnl_ifname_is_valid(new_name))
                return -EINVAL;

        /* IFLA_IFNAME is the new name here, so the link is named by its index. */
        k = rtnl_link_index(rtnl, old_name, &ifindex);
        if (k < 0)
                return k;

        nlh = request_start(&req, RTM_SETLINK, 0);
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        if (!mnl_attr_put_strz_check(nlh, sizeof req, IFLA_IFNAME, new_name))
                return -ENOBUFS;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_link_delete(Rtnl *rtnl, const char *name) {
        RtnlRequest req;
        struct nlmsghdr *nlh;

        assert_return(rtnl, -EINVAL);
        if (!rtnl_ifname_is_valid(name))
                return -EINVAL;

        nlh = link_request(&req, RTM_DELLINK, 0, name, 0);
        if (!nlh)
                return -ENOBUFS;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_bridge_port_set_isolated(Rtnl *rtnl, const char *name, bool on) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;
        struct nlattr *protinfo;
        int ifindex, k;

        assert_return(rtnl, -EINVAL);

        /* The AF_BRIDGE setlink handler finds the port by index only. */
        k = rtnl_link_index(rtnl, name, &ifindex);
        if (k < 0)
                return k;

        nlh = request_start(&req, RTM_SETLINK, 0);
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
        ifi->ifi_family = AF_BRIDGE;
        ifi->ifi_index = ifindex;
        /* NLA_F_NESTED is what tells the bridge code this is IFLA_BRPORT_* and not the old binary
         * port-state attribute. */
        protinfo = mnl_attr_nest_start_check(nlh, sizeof req, IFLA_PROTINFO | NLA_F_NESTED);
        if (!protinfo || !mnl_attr_put_u8_check(nlh, sizeof req, IFLA_BRPORT_ISOLATED, on ? 1 : 0))
                return -ENOBUFS;
        mnl_attr_nest_end(nlh, protinfo);
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_bridge_port_get_isolated(Rtnl *rtnl, const char *name, bool *ret_on) {
        LinkInfo info;
        int k;

        assert_return(ret_on, -EINVAL);
        k = link_get(rtnl, name, &info);
        if (k < 0)
                return k;
        if (!info.is_bridge_port)
                return -EOPNOTSUPP;
        if (!info.has_isolated)
                return -EBADMSG;
        *ret_on = info.isolated;
        return 0;
}

typedef struct LinkList {
        RtnlLinkCallback cb;
        void *userdata;
} LinkList;

static int link_list_cb(const struct nlmsghdr *nlh, void *userdata) {
        LinkList *l = userdata;
        LinkInfo info;

        if (parse_link(nlh, &info) < 0)
                return 0; /* not a link we can name: skip it */
        return l->cb(info.name, info.ifindex, info.kind, l->userdata);
}

int rtnl_link_list(Rtnl *rtnl, RtnlLinkCallback cb, void *userdata) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;
        LinkList l = { cb, userdata };

        assert_return(rtnl, -EINVAL);
        assert_return(cb, -EINVAL);

        nlh = request_start(&req, RTM_GETLINK, NLM_F_DUMP);
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
        ifi->ifi_family = AF_UNSPEC;
        if (!mnl_attr_put_u32_check(nlh, sizeof req, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
                return -ENOBUFS;
        return rtnl_call(rtnl, nlh, link_list_cb, &l);
}

/* ------------------------------------------------------------------------------------------------
 * Addresses and routes
 */

int rtnl_addr_add(Rtnl *rtnl, const char *ifname, struct in_addr addr, unsigned prefixlen) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct ifaddrmsg *ifa;
        int ifindex, k;

        assert_return(rtnl, -EINVAL);
        if (prefixlen > 32 || !rtnl_ifname_is_valid(ifname))
                return -EINVAL;

        k = rtnl_link_index(rtnl, ifname, &ifindex);
        if (k < 0)
                return k;

        nlh = request_start(&req, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
        ifa->ifa_family = AF_INET;
        ifa->ifa_prefixlen = (uint8_t) prefixlen;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = (uint32_t) ifindex;
        if (!mnl_attr_put_check(nlh, sizeof req, IFA_LOCAL, sizeof addr, &addr) ||
            !mnl_attr_put_check(nlh, sizeof req, IFA_ADDRESS, sizeof addr, &addr))
                return -ENOBUFS;
        if (prefixlen <= 30) {
                uint32_t host_mask = prefixlen == 0 ? UINT32_MAX : (UINT32_C(1) << (32 - prefixlen)) - 1;
                struct in_addr brd = { .s_addr = addr.s_addr | htonl(host_mask) };
                if (!mnl_attr_put_check(nlh, sizeof req, IFA_BROADCAST, sizeof brd, &brd))
                        return -ENOBUFS;
        }
        return rtnl_call(rtnl, nlh, NULL, NULL);
}

int rtnl_route_add_default(Rtnl *rtnl, struct in_addr gateway, const char *ifname) {
        RtnlRequest req;
        struct nlmsghdr *nlh;
        struct rtmsg *rtm;
        int ifindex = 0, k;

        assert_return(rtnl, -EINVAL);
        if (ifname) {
                k = rtnl_link_index(rtnl, ifname, &ifindex);
                if (k < 0)
                        return k;
        }

        nlh = request_start(&req, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
        rtm->rtm_family = AF_INET;
        rtm->rtm_dst_len = 0;
        rtm->rtm_table = RT_TABLE_MAIN;
        rtm->rtm_protocol = RTPROT_STATIC;
        rtm->rtm_scope = RT_SCOPE_UNIVERSE;
        rtm->rtm_type = RTN_UNICAST;
        if (!mnl_attr_put_check(nlh, sizeof req, RTA_GATEWAY, sizeof gateway, &gateway))
                return -ENOBUFS;
        if (ifindex > 0 && !mnl_attr_put_u32_check(nlh, sizeof req, RTA_OIF, (uint32_t) ifindex))
                return -ENOBUFS;
        return rtnl_call(rtnl, nlh, NULL, NULL);
}
