/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rtnetlink over libmnl: the few link, address and route operations the runtime needs to wire a
 * sandbox's network namespace to a bridge (host end of a veth pair on the bridge, the peer inside
 * the sandbox as eth0 with an address and a default route). Never runs `ip`.
 *
 * An Rtnl is one NETLINK_ROUTE socket; it acts on the network namespace it was opened in, whatever
 * namespace the calling thread is in later. Every request asks for an ACK and waits for it; the
 * kernel's extended ACK message of the last failed request is kept (rtnl_last_error()). Runs in the
 * parent, needs CAP_NET_ADMIN over the namespaces it touches (rtnl_open_in_netns() also needs
 * CAP_SYS_ADMIN for setns). An Rtnl is used by one thread at a time.
 *
 * Not done here: IPv6, link dumps filtered by the kernel, multicast notifications, moving an
 * existing link to another namespace (rtnl_veth_create() creates the peer there directly).
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Rtnl Rtnl;

/* A valid interface name: 1..15 bytes, no '/', ':', whitespace or control character, not "." or
 * "..". Every function below taking a name returns -EINVAL for an invalid one, before sending. */
bool rtnl_ifname_is_valid(const char *name);

/* A socket in the calling thread's current network namespace. */
int rtnl_open(Rtnl **ret);
/* A socket in the network namespace NETNS_FD (an fd of /proc/PID/ns/net or /run/netns/NAME): the
 * calling thread enters it, opens the socket and goes back to its original namespace, also on
 * failure. If even going back fails (never seen), the error is returned and the thread is left in
 * NETNS_FD's namespace: the caller should treat that as fatal for the thread. */
int rtnl_open_in_netns(int netns_fd, Rtnl **ret);
/* NULL is fine; returns NULL. */
Rtnl *rtnl_close(Rtnl *rtnl);

/* The kernel's extended ACK message for the last request that failed ("mtu greater than device
 * maximum"), or NULL if the kernel gave none or the last request succeeded. Valid until the next
 * request on RTNL. */
const char *rtnl_last_error(const Rtnl *rtnl);

/* The ifindex of link NAME; -ENODEV if there is none. */
int rtnl_link_index(Rtnl *rtnl, const char *name, int *ret_ifindex);
/* The kind of link NAME ("bridge", "veth"; "" for a link without one, e.g. lo) into BUF;
 * -ENODEV if there is no such link, -ERANGE if BUF is too small (BUF is then left alone). */
int rtnl_link_kind(Rtnl *rtnl, const char *name, char *buf, size_t size);

/* A bridge NAME, down, with STP off (the kernel's default). MTU 0 means the kernel's default.
 * -EEXIST if a link NAME exists (of whatever kind: check it with rtnl_link_kind()). Note that the
 * kernel may lower a bridge's MTU to its smallest port's unless the MTU is set after creation with
 * rtnl_link_set_mtu(). */
int rtnl_bridge_create(Rtnl *rtnl, const char *name, uint32_t mtu);

/* A veth pair in one request (RTM_NEWLINK, NLM_F_CREATE|NLM_F_EXCL): NAME in this namespace, its
 * peer PEER_NAME created directly in the namespace PEER_NETNS_FD (or in this one if it is < 0), so
 * that nothing is left behind if any part fails. Both ends get MTU (0: default) and stay down.
 * -EEXIST if NAME exists here or PEER_NAME exists in the peer's namespace. */
int rtnl_veth_create(Rtnl *rtnl, const char *name, const char *peer_name, uint32_t mtu, int peer_netns_fd);

/* Enslave link NAME to MASTER (a bridge), or release it from its master if MASTER is NULL.
 * -ENODEV if either link is missing. */
int rtnl_link_set_master(Rtnl *rtnl, const char *name, const char *master);
int rtnl_link_set_up(Rtnl *rtnl, const char *name);
int rtnl_link_set_mtu(Rtnl *rtnl, const char *name, uint32_t mtu);
/* Rename OLD_NAME to NEW_NAME (-EEXIST if taken; the kernel may refuse -EBUSY for a link that is
 * up, so rename before rtnl_link_set_up()). */
int rtnl_link_rename(Rtnl *rtnl, const char *old_name, const char *new_name);
/* -ENODEV if there is no link NAME. Deleting one end of a veth pair deletes both. */
int rtnl_link_delete(Rtnl *rtnl, const char *name);

/* The isolated flag of bridge port NAME (isolated ports only talk to non-isolated ones).
 * -EOPNOTSUPP if NAME is not a bridge port. */
int rtnl_bridge_port_set_isolated(Rtnl *rtnl, const char *name, bool on);
int rtnl_bridge_port_get_isolated(Rtnl *rtnl, const char *name, bool *ret_on);

/* ADDR/PREFIXLEN on IFNAME (IFA_LOCAL and IFA_ADDRESS, plus the broadcast address for prefixes up
 * to /30). PREFIXLEN > 32 is -EINVAL; -EEXIST if the address is already there. */
int rtnl_addr_add(Rtnl *rtnl, const char *ifname, struct in_addr addr, unsigned prefixlen);

/* A default route via GATEWAY in the main table (protocol "static"), through IFNAME if not NULL.
 * -EEXIST if there is a default route already; the kernel refuses a GATEWAY that is not on a
 * connected network of an up link (-ENETUNREACH, with an ext-ack message). */
int rtnl_route_add_default(Rtnl *rtnl, struct in_addr gateway, const char *ifname);

/* Call CB for every link of the namespace (a dump). KIND is "" for links without one. A negative
 * return from CB stops the calls and is returned (after the dump was read to its end, so RTNL stays
 * usable). -EAGAIN if the kernel reports that the links changed during the dump: try again. */
typedef int (*RtnlLinkCallback)(const char *name, int ifindex, const char *kind, void *userdata);
int rtnl_link_list(Rtnl *rtnl, RtnlLinkCallback cb, void *userdata);
