/* SPDX-License-Identifier: MIT */
/* One remote end of a tunnel interface: on a server, a configured client (keyed by its token); on a
 * client, the server. Holds the queue of frames to send and the streams the transport attached. */
#pragma once

#include <tapotun/plugin.h>

#include "macro.h"
#include "queue.h"
#include "wire.h"

typedef struct TapotunTunnel Iface;
typedef struct TapotunPeer Peer;

typedef enum PeerState {
        PEER_DISCONNECTED, /* no stream */
        PEER_CONNECTING,   /* some streams, but not both directions */
        PEER_CONNECTED,    /* a TX and an RX stream */
        PEER_BACKOFF,      /* client: waiting to reconnect */
        _PEER_STATE_MAX,
} PeerState;

const char *peer_state_to_string(PeerState s);
PeerState peer_state_from_string(const char *s);

typedef struct PeerStats {
        uint64_t rx_packets, rx_bytes; /* frames received from the remote side */
        uint64_t tx_packets, tx_bytes; /* frames handed to the transport for the remote side */
        uint64_t drops[_TAPOTUN_DROP_MAX];
} PeerStats;

typedef struct RxStream {
        void *stream;
        TapotunWakeFn wake;
        bool paused; /* told to stop reading: woken when the destination drains */
} RxStream;

#define PEER_MAX_RX_STREAMS 64

struct TapotunPeer {
        Iface *iface;
        size_t index;
        char *name;
        const TapotunClientConfig *client; /* server mode; NULL once retired */
        /* Removed by a reload: no longer in iface->peers; freed when its last stream has detached. */
        bool retired;

        Queue *queue;
        void *loan_stream; /* the stream whose stream_lend() frames are out, NULL when none */
        bool loan_waiter;  /* a stream was told "nothing" while another one's loan was out */
        void *tx_stream;
        TapotunWakeFn tx_wake;
        RxStream rx[PEER_MAX_RX_STREAMS];
        size_t n_rx;

        PeerState state;
        uint64_t connected_since; /* CLOCK_REALTIME usec, 0 when disconnected */
        uint64_t last_connected;  /* CLOCK_REALTIME usec it last became connected, 0: never */
        uint64_t connects;        /* how often it became connected */
        uint64_t down_since;      /* CLOCK_MONOTONIC usec since when it is not connected: created or left */
        uint64_t last_seen;       /* CLOCK_REALTIME usec of the last frame received */
        char *remote;
        uint32_t offloads; /* what the remote side's TUN accepts */
        char *last_error;  /* why a stream last ended or a reconnect was delayed; NULL: nothing went wrong */
        bool backoff;      /* client: the transport waits before it reconnects (shown as PEER_BACKOFF) */

        /* Strings handed out through peer_accept()/peer_request_headers(). */
        char conf[WIRE_TUN_CONF_STRLEN + 1];
        char conf6[64];
        char offload_header[64];
        char *routes_header;

        PeerStats stats;
        uint64_t spoof_logged;   /* CLOCK_MONOTONIC usec of the last spoofing message */
        uint64_t spoof_reported; /* drops[SPOOFED] at that message */
};

int peer_new(Iface *iface, size_t index, const char *name, const TapotunClientConfig *client, Peer **ret);
Peer *peer_free(Peer *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Peer *, peer_free);

/* Queues a frame body for the remote side and wakes the TX stream. Counts a drop when the queue is
 * full. */
int peer_send(Peer *p, const void *frame, size_t len);
/* Room in the queue for reading the next frame into (queue_reserve()), for a peer_send() without a copy;
 * NULL when it has none now. */
uint8_t *peer_reserve(Peer *p);
/* Wakes the RX streams that were paused for congestion. */
void peer_wake_rx(Peer *p);
void peer_count_drop(Peer *p, TapotunDropReason reason);
/* Counts a frame of LEN bytes received from the remote side and notes when it came (last_seen). */
void peer_count_rx(Peer *p, size_t len);
/* Counts a packet dropped for its foreign source address and says so in the log, at most every 10 s. */
void peer_drop_spoofed(Peer *p, const uint8_t *ip, size_t len);

static inline bool peer_has_streams(const Peer *p) {
        return p->tx_stream || p->n_rx > 0;
}
/* Server: what P's client is told when it connects (x-tun-conf, x-tun-conf6, x-tun-routes) under the
 * current p->iface->cfg and p->client, as one string. A reload compares it before and after: a client
 * whose answer changed must reconnect. */
int peer_pushed_config(Peer *p, char **ret);

/* The TapotunHost services that act on peers. */
int peer_host_accept(TapotunPeer *p, const TapotunHeader *req, size_t n_req, TapotunHeader *ret, size_t *n_ret);
int peer_host_request_headers(TapotunPeer *p, TapotunHeader *ret, size_t *n_ret);
int peer_host_stream_attach(TapotunPeer *p, TapotunStreamDirection dir, void *stream, TapotunWakeFn wake,
                            const char *remote);
void peer_host_stream_detach(TapotunPeer *p, void *stream, const char *reason);
ssize_t peer_host_stream_pull(TapotunPeer *p, void *stream, void *buf, size_t size);
ssize_t peer_host_stream_lend(TapotunPeer *p, void *stream, void *copy, size_t size, struct iovec *iov,
                              size_t *n_iov);
void peer_host_stream_return(TapotunPeer *p, void *stream);
const char *peer_host_name(TapotunPeer *p);
void peer_host_event(TapotunPeer *p, TapotunPeerEvent event, const char *detail);
