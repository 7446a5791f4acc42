/* SPDX-License-Identifier: MIT */
/* rtnetlink over libmnl, driven by the sd-event loop. Requests are asynchronous: each completes through
 * its callback with 0 or a negative errno. netlink_flush() runs the socket until every pending request
 * has completed, for start-up and shutdown paths that must finish before going on. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <tapotun/plugin.h>

#include "macro.h"

typedef struct Netlink Netlink;

typedef void (*NetlinkCallback)(Netlink *nl, int error, void *userdata);

int netlink_new(sd_event *e, Netlink **ret);
Netlink *netlink_free(Netlink *nl);
DEFINE_TRIVIAL_CLEANUP_FUNC(Netlink *, netlink_free);

/* Runs the socket until no request is pending (or TIMEOUT_USEC passes: -ETIMEDOUT). */
int netlink_flush(Netlink *nl, uint64_t timeout_usec);

/* Each returns 0 when the request was sent (CALLBACK may be NULL), or a negative errno. An add of an
 * object that already exists completes with -EEXIST; a remove of one that does not, with -ENOENT
 * (-ESRCH for addresses on some kernels): callers use that to stay idempotent. */
int netlink_link_set(Netlink *nl, int ifindex, uint32_t mtu, bool up, NetlinkCallback cb, void *userdata);
/* The IPv4 accept_local setting of the interface: whether it takes packets whose source is an address of
 * this host. */
int netlink_link_accept_local(Netlink *nl, int ifindex, bool accept, NetlinkCallback cb, void *userdata);
int netlink_address(Netlink *nl, bool add, int ifindex, const TapotunPrefix *address, NetlinkCallback cb,
                    void *userdata);
/* A route of DST via ifindex in TABLE (RT_TABLE_MAIN = 254); DST with prefixlen 0 is a default route. */
int netlink_route(Netlink *nl, bool add, int ifindex, const TapotunPrefix *dst, uint32_t table,
                  NetlinkCallback cb, void *userdata);
/* A policy rule "fwmark MARK lookup TABLE" with PRIORITY for FAMILY (AF_INET or AF_INET6). */
int netlink_rule(Netlink *nl, bool add, int family, uint32_t fwmark, uint32_t table, uint32_t priority,
                 NetlinkCallback cb, void *userdata);

/* Synchronous read-back, used to stay idempotent: whether the object exists now (1), not (0), or a
 * negative errno. */
int netlink_address_exists(Netlink *nl, int ifindex, const TapotunPrefix *address);
int netlink_route_exists(Netlink *nl, int ifindex, const TapotunPrefix *dst, uint32_t table);
int netlink_rule_exists(Netlink *nl, int family, uint32_t fwmark, uint32_t table, uint32_t priority);
