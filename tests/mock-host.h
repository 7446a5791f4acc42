/* SPDX-License-Identifier: MIT */
/* An in-memory TapotunHost for the plugin suite: real plugins, no TUN, no routing. Frames a plugin
 * receives are recorded per peer; frames queued with mock_peer_queue() are what it pulls. */
#pragma once

#include <glib.h>
#include <tapotun/plugin.h>

struct TapotunPeer {
        size_t index;
        char *name;
        char token_hex[41];
        GQueue tx;              /* GBytes: frame bodies (vnet header + packet) waiting to be pulled */
        GPtrArray *received;    /* GBytes: frame bodies received from the remote side */
        void *tx_stream;        /* current TX stream, superseded ones pull -ESTALE */
        TapotunWakeFn tx_wake;
        GPtrArray *rx_streams;  /* attached RX streams */
        GHashTable *wakes;      /* stream -> TapotunWakeFn, for RX wakes */
        bool congested;         /* stream_receive returns 1 while set */
        unsigned n_connected, n_disconnected, n_accepts, n_configures;
        char *last_remote, *last_reason;
        char conf_b64[16];      /* server: x-tun-conf value sent on accept */
        char *offload_request;  /* server: x-tun-offload seen on accept; client: response value */
        char *configured_conf;  /* client: x-tun-conf received */
        int configure_result;   /* client: what peer_configure returns (default 0) */
        void *loan_stream;      /* the stream whose stream_lend() pieces are out */
        unsigned n_lends, n_returns;
        unsigned n_backoffs;    /* peer_event(TAPOTUN_PEER_BACKOFF) calls */
        char *last_backoff;     /* and the detail of the last one */
};

struct TapotunTunnel {
        TapotunIfaceConfig *cfg;
        GPtrArray *peers;       /* TapotunPeer* */
        int listen_fd;          /* returned once by take_listen_fd, else -ENOENT */
};

typedef struct MockHost {
        TapotunHost host;
        struct TapotunTunnel tunnel;
} MockHost;

/* CFG is borrowed; one peer per cfg->clients[] (server) or a single peer "server" (client). */
MockHost *mock_host_new(sd_event *e, TapotunIfaceConfig *cfg);
void mock_host_free(MockHost *m);
TapotunPeer *mock_host_peer(MockHost *m, size_t i);

/* Queues a frame body for the peer's TX stream and wakes it. */
void mock_peer_queue(TapotunPeer *p, const void *frame, size_t len);
/* Clears congestion and wakes every RX stream. */
void mock_peer_uncongest(TapotunPeer *p);

/* Runs the loop until COND(userdata) is true or TIMEOUT_MS passes; returns COND's last value. */
bool mock_run_until(sd_event *e, bool (*cond)(void *userdata), void *userdata, unsigned timeout_ms);

/* A valid frame body: zero vnet header + an IPv4 UDP packet of PAYLOAD bytes 10.10.0.2 -> 10.10.0.1
 * filled with SEED-derived bytes. */
GBytes *mock_make_frame(size_t payload, unsigned seed);

/* dlopen()s NAME.so from the directories in $TAPOTUN_PLUGIN_PATH (colon-separated) and returns its
 * descriptor; fails the test when it cannot. */
const TapotunPlugin *mock_load_plugin(const char *name);
