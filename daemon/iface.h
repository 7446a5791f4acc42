/* SPDX-License-Identifier: MIT */
/* One configured interface: its TUN (created at start on a server, on the first successful GET on a
 * client), its peers, and the plugin instances that serve it. */
#pragma once

#include <tapotun/plugin.h>

#include "macro.h"
#include "peer.h"
#include "tunnel.h"
#include "wire.h"

typedef struct Manager Manager;

struct TapotunTunnel {
        Manager *manager;
        const TapotunIfaceConfig *cfg;
        Tunnel *tun;

        Peer **peers;
        size_t n_peers;
        /* Peers a reload removed while they still had streams (Peer.retired); freed once those ended. */
        Peer **retired;
        size_t n_retired;
        sd_event_source *sweep;
        sd_event_source *trim; /* gives back the memory of peer queues that grew and emptied */

        const TapotunTransportOps *transport_ops;
        void *transport;
        const TapotunRouterOps *router_ops;
        void *router;
        /* Client with `metrics`: the server transport's metrics-only instance (metrics.c). */
        const TapotunTransportOps *metrics_ops;
        void *metrics;

        /* The TUN's write queue is above its high mark: RX streams were told to pause. */
        bool congested;
        /* Server: the peer the last packet from the TUN went to, where the next one is read into. */
        size_t last_to;

        /* Client: what the server pushed and was applied. */
        bool configured;
        TunConf conf;
        TapotunPrefix conf6;
        TapotunPrefix *pushed_routes;
        size_t n_pushed_routes;

        uint64_t drops[_TAPOTUN_DROP_MAX]; /* packets read from the TUN and dropped */
        uint64_t icmp_sent;                /* "destination unreachable" answers */

        /* Token bucket that bounds those answers. */
        uint64_t icmp_refilled;
        unsigned icmp_tokens;
};

int iface_new(Manager *m, const TapotunIfaceConfig *cfg, Iface **ret);
/* Creates the kernel side (server) and starts the transport. Logs its own errors. */
int iface_start(Iface *i);
Iface *iface_free(Iface *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Iface *, iface_free);

/* Reload: the move of a server interface to an entry of a new configuration, prepared in full before
 * anything changes, so that a failure leaves everything as it was. */
typedef struct IfaceUpdate IfaceUpdate;
int iface_update_prepare(Iface *i, const TapotunIfaceConfig *cfg, IfaceUpdate **ret);
IfaceUpdate *iface_update_free(IfaceUpdate *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(IfaceUpdate *, iface_update_free);
/* Makes the move and frees U. Clients are matched by token: one whose token is gone is disconnected and
 * retired; one kept keeps its session unless what it is told on connecting changed, then it reconnects.
 * Addresses, MTU, client routes and the fwmark rules follow. Returns < 0 when a kernel change failed
 * (logged); the rest is applied anyway. */
int iface_update_apply(Iface *i, IfaceUpdate *u);
/* Client: restarts the transport with CFG; the TUN and the peer's queue stay. */
int iface_restart_client(Iface *i, const TapotunIfaceConfig *cfg);
/* The last stream of a retired peer detached: free it from the loop, not from inside the transport. */
void iface_retired_peer_idle(Iface *i);

/* Routes a frame that arrived from peer FROM (NULL: read from the TUN). Returns 1 when its destination
 * is congested. */
int iface_forward(Iface *i, Peer *from, const uint8_t *frame, size_t len);

/* The TapotunHost services that act on interfaces. */
int iface_host_authenticate(TapotunTunnel *t, const char *key, size_t key_len, TapotunPeer **ret);
int iface_host_configure(TapotunPeer *p, const TapotunHeader *resp, size_t n_resp);
int iface_host_receive(TapotunPeer *p, void *stream, const void *frame, size_t len);
int iface_host_take_listen_fd(TapotunTunnel *t);
size_t iface_host_n_peers(TapotunTunnel *t);
TapotunPeer *iface_host_peer(TapotunTunnel *t, size_t i);

const char *drop_reason_to_string(TapotunDropReason r);
TapotunDropReason drop_reason_from_string(const char *s);
