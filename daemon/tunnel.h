/* SPDX-License-Identifier: MIT */
/* One TUN interface: IFF_TUN|IFF_NO_PI|IFF_VNET_HDR with offloads, non-blocking I/O on the event loop,
 * and the kernel state (addresses, routes, fwmark rules) the daemon adds for it and removes again. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <tapotun/plugin.h>

#include "macro.h"
#include "netlink.h"

typedef struct Tunnel Tunnel;

/* Called for each packet read from the TUN: vnet header + IP packet. */
typedef void (*TunnelReadHandler)(Tunnel *t, const uint8_t *frame, size_t len, void *userdata);
/* Called when the write queue, after tunnel_write() returned 1, has drained below its low mark. */
typedef void (*TunnelWritableHandler)(Tunnel *t, void *userdata);
/* Called before each read for where the packet goes (TUNNEL_READ_SIZE bytes), so that it can be read
 * straight into the queue of the peer it is likely for; NULL means the tunnel's own buffer. */
typedef uint8_t *(*TunnelReadBuffer)(Tunnel *t, void *userdata);

/* What a read may take: vnet header, the biggest packet, and one byte more to see oversized ones. */
#define TUNNEL_READ_SIZE (TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX + 1u)

/* Creates (or attaches to) the TUN NAME and enables the offloads in WANTED (WIRE_OFFLOAD_* bits) that
 * the kernel accepts, probing down to what it takes. Reading starts with tunnel_start(). */
int tunnel_new(sd_event *e, Netlink *nl, const char *name, uint32_t wanted_offloads, Tunnel **ret);
/* Removes what tunnel_* added to the kernel (synchronously), then closes the device. NULL-safe. */
Tunnel *tunnel_free(Tunnel *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Tunnel *, tunnel_free);

const char *tunnel_get_name(const Tunnel *t);
int tunnel_get_ifindex(const Tunnel *t);
uint32_t tunnel_get_offloads(const Tunnel *t);
/* Changes the offloads (e.g. after negotiation with the peer); returns the set accepted. */
int tunnel_set_offloads(Tunnel *t, uint32_t wanted, uint32_t *ret_accepted);

void tunnel_set_handlers(Tunnel *t, TunnelReadHandler on_read, TunnelWritableHandler on_writable,
                         void *userdata);
void tunnel_set_read_buffer(Tunnel *t, TunnelReadBuffer read_buffer);
int tunnel_start(Tunnel *t);

/* Writes one frame body (vnet header + IP packet) in one write(). When the TUN is full the frame is kept
 * in a bounded queue that the event loop drains. Returns 0, 1 when the queue is above its high mark
 * (the caller should stop feeding until on_writable), or -ENOBUFS when the frame was dropped. */
int tunnel_write(Tunnel *t, const void *frame, size_t len);
/* The same for frames from peers: consecutive TCP segments of one flow are joined into one super-packet
 * (GRO, gso.h) when the TUN takes TSO, and written before the next frame that does not join or at the
 * end of the loop iteration. */
int tunnel_write_coalesced(Tunnel *t, const void *frame, size_t len);

/* Kernel configuration, synchronous (netlink requests flushed), idempotent: objects that already
 * exist are kept and not removed later; objects this tunnel added are removed by tunnel_free() or by
 * the matching tunnel_*_remove. */
int tunnel_set_mtu_up(Tunnel *t, uint32_t mtu);
/* IPv4 accept_local on the device (see netlink_link_accept_local()). */
int tunnel_set_accept_local(Tunnel *t, bool accept);
int tunnel_add_address(Tunnel *t, const TapotunPrefix *a);
int tunnel_remove_address(Tunnel *t, const TapotunPrefix *a);
int tunnel_add_route(Tunnel *t, const TapotunPrefix *dst, uint32_t table);
int tunnel_remove_route(Tunnel *t, const TapotunPrefix *dst, uint32_t table);
/* fwmark policy routing as the original did: a default route via the TUN in TABLE (IPv4, and IPv6
 * when V6) plus "fwmark MARK lookup TABLE" rules with PRIORITY. */
int tunnel_add_mark(Tunnel *t, uint32_t mark, uint32_t table, uint32_t priority, bool v6);
int tunnel_remove_mark(Tunnel *t);

/* Counters */
typedef struct TunnelStats {
        uint64_t rx_packets, rx_bytes; /* read from the TUN */
        uint64_t tx_packets, tx_bytes; /* written to the TUN */
        uint64_t tx_dropped;           /* write queue full or write error */
} TunnelStats;
void tunnel_get_stats(const Tunnel *t, TunnelStats *ret);
