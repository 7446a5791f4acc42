/* SPDX-License-Identifier: MIT */
/* The tapotun plugin ABI: the only header a plugin includes.
 *
 * A plugin is a shared object that exports one data symbol, `tapotun_plugin`, a const TapotunPlugin.
 * The daemon loads it with RTLD_LOCAL and passes its services in through TapotunHost; a plugin never
 * calls a daemon symbol. Every struct here starts with a version or size and only grows at the end, so
 * an older plugin keeps working with a newer daemon of the same abi_major. */
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <systemd/sd-event.h>

#define TAPOTUN_PLUGIN_ABI_MAJOR 1u
#define TAPOTUN_PLUGIN_SYMBOL "tapotun_plugin"
#define TAPOTUN_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Wire constants, PROTOCOL.md section 3. */
#define TAPOTUN_LEN_SIZE 2u
#define TAPOTUN_VNET_HDR_SIZE 12u
#define TAPOTUN_PACKET_MIN 20u
#define TAPOTUN_PACKET_MAX 65535u
#define TAPOTUN_FRAME_MAX (TAPOTUN_LEN_SIZE + TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX)
#define TAPOTUN_KEEPALIVE_USEC (55u * 1000000u)

/* ---------------------------------------------------------------------------------------------- */
/* Configuration, as validated by the daemon (see the README for the JSON format). */

typedef struct TapotunPrefix {
        int family; /* AF_INET or AF_INET6; 0 when unset */
        uint8_t prefixlen;
        union {
                struct in_addr in;
                struct in6_addr in6;
                uint8_t bytes[16];
        } addr;
} TapotunPrefix;

typedef enum TapotunMode {
        TAPOTUN_MODE_SERVER,
        TAPOTUN_MODE_CLIENT,
        _TAPOTUN_MODE_MAX,
        _TAPOTUN_MODE_INVALID = -EINVAL,
} TapotunMode;

typedef struct TapotunClientConfig {
        char *name;            /* label for logs and the bus: `name`, or "client<N>" */
        char token[41];        /* lowercase hex SHA-1 of the raw token */
        uint8_t token_sha1[20];
        TapotunPrefix ip;      /* the client's IPv4 address (host prefix) or unset */
        TapotunPrefix ip6;     /* the client's IPv6 address (host prefix) or unset */
        TapotunPrefix *routes;
        size_t n_routes;
        TapotunPrefix *sources; /* host prefixes */
        size_t n_sources;
        bool allow_spoofing;   /* accept any source address from this client */
} TapotunClientConfig;

/* The client's HTTP version towards the server (`http`). */
typedef enum TapotunHttpVersion {
        TAPOTUN_HTTP_1_1, /* two HTTP/1.1 connections, as in version 1 */
        TAPOTUN_HTTP_2,   /* HTTP/2 over TLS (ALPN), both streams on one connection */
        _TAPOTUN_HTTP_VERSION_MAX,
        _TAPOTUN_HTTP_VERSION_INVALID = -EINVAL,
} TapotunHttpVersion;

typedef struct TapotunIfaceConfig {
        char name[16];
        TapotunMode mode;
        uint32_t mark_value;   /* 0: no fwmark policy routing */
        uint32_t mark_table;
        uint32_t mark_priority;
        uint32_t mtu;
        uint64_t keepalive_usec; /* send a keepalive frame after this long without data (55 s) */

        /* server */
        char *listen;          /* address to bind, default "127.0.0.1" */
        uint16_t port;
        TapotunPrefix net;     /* the server's IPv4 address and prefix on the tunnel, or unset */
        TapotunPrefix net6;    /* the server's IPv6 address and prefix on the tunnel, or unset */
        TapotunPrefix *ips;
        size_t n_ips;
        TapotunPrefix *routes;
        size_t n_routes;
        TapotunClientConfig *clients;
        size_t n_clients;
        uint64_t peer_timeout_usec; /* drop a stream that sent nothing for this long */
        uint32_t max_connections;
        uint32_t max_puts_per_client;
        uint64_t queue_bytes;  /* per-client downstream queue bound */

        /* client */
        char *server;          /* http:// or https:// URL */
        char *token;           /* the raw token sent in x-api-key */
        char *ca;              /* CA bundle file, NULL: system store */
        bool insecure;         /* skip TLS verification */
        uint64_t reconnect_min_usec; /* first retry after a random delay in [min, 3 x min] (3 s) */
        uint64_t reconnect_max_usec; /* retries back off, doubling, up to this (60 s) */
        uint64_t stall_timeout_usec; /* abort a transfer without progress for this long (60 s) */

        /* server: networks pushed to every client in x-tun-routes */
        TapotunPrefix *push_routes;
        size_t n_push_routes;
        bool push_local_routes;  /* also push `routes` */
        bool push_client_routes; /* also push the other clients' addresses and routes */
        /* client: install the networks the server pushes */
        bool accept_routes;
        /* client: the HTTP version spoken to the server */
        TapotunHttpVersion http_version;
        /* client: WIRE_OFFLOAD_* its TUN may accept (`offloads`), with TAPOTUN_OFFLOADS_SET so that an empty
         * list can be told from none; 0 = all */
        uint32_t offloads_mask;

        /* Both modes: the metrics and health listener (`metrics`), served by the server transport. Only a
         * host whose TapotunHost has render_metrics fills these in: check its struct_size first. */
        char *metrics_listen;          /* IPv4 or IPv6 address literal to bind; NULL: no metrics listener */
        uint16_t metrics_port;
        uint64_t unhealthy_after_usec; /* /healthz fails for a peer not connected for this long (60 s) */
} TapotunIfaceConfig;

/* Set in offloads_mask when `offloads` is configured. */
#define TAPOTUN_OFFLOADS_SET 0x80000000u

/* ---------------------------------------------------------------------------------------------- */
/* Services of the daemon. */

typedef struct TapotunTunnel TapotunTunnel; /* one configured interface */
typedef struct TapotunPeer TapotunPeer;     /* server: one configured client; client: the server */

typedef struct TapotunHeader {
        const char *name;
        const char *value;
} TapotunHeader;

typedef enum TapotunStreamDirection {
        TAPOTUN_STREAM_RX, /* frames from the remote side: server PUT, client GET */
        TAPOTUN_STREAM_TX, /* frames to the remote side: server GET, client PUT */
} TapotunStreamDirection;

/* Called by the host when a TX stream has frames to pull (or was superseded: its next pull returns
 * -ESTALE) and when an RX stream that was told to pause may read again. */
typedef void (*TapotunWakeFn)(void *stream);

typedef enum TapotunPeerEvent {
        TAPOTUN_PEER_CONNECTED,    /* a stream of this peer started; detail: remote address */
        TAPOTUN_PEER_DISCONNECTED, /* a stream ended; detail: reason, or NULL when it ended cleanly */
        TAPOTUN_PEER_BACKOFF,      /* client: waiting before a reconnect; detail: reason */
} TapotunPeerEvent;

#define TAPOTUN_HOST_VERSION 1u

typedef struct TapotunHost {
        uint32_t version;
        uint32_t struct_size;
        sd_event *event;

        /* Log through the daemon; plugin and object name the source (object may be NULL). ERROR and
         * the return value behave as in log_*_errno(). */
        int (*logv)(int level, int error, const char *plugin, const char *object, const char *format,
                    va_list ap);

        /* Server: the peer whose token hashes to KEY (the raw x-api-key value), compared in constant
         * time; -EACCES when none. */
        int (*peer_authenticate)(TapotunTunnel *t, const char *key, size_t key_len, TapotunPeer **ret);
        const char *(*peer_name)(TapotunPeer *p);

        /* Server, on an authorised GET: negotiates from the request headers and fills RET (up to *N_RET
         * entries, strings owned by the peer until the next call) with the response headers to send
         * (x-tun-conf, ...); *N_RET is set to the count. */
        int (*peer_accept)(TapotunPeer *p, const TapotunHeader *req, size_t n_req, TapotunHeader *ret,
                           size_t *n_ret);

        /* Client: the request headers to send (same ownership rules), and the configuration step on a
         * successful GET's response headers, which creates and configures the TUN. */
        int (*peer_request_headers)(TapotunPeer *p, TapotunHeader *ret, size_t *n_ret);
        int (*peer_configure)(TapotunPeer *p, const TapotunHeader *resp, size_t n_resp);

        /* Streams. A new TX stream replaces the previous one, which is woken and then drained: its
         * pulls return -ESTALE. Any number of RX streams may be attached. */
        int (*stream_attach)(TapotunPeer *p, TapotunStreamDirection dir, void *stream, TapotunWakeFn wake,
                             const char *remote);
        void (*stream_detach)(TapotunPeer *p, void *stream, const char *reason);

        /* TX: copies whole frames (length + vnet header + packet) into BUF; 0 when nothing is queued;
         * -ESTALE when this stream was superseded. SIZE must be at least TAPOTUN_FRAME_MAX. */
        ssize_t (*stream_pull)(TapotunPeer *p, void *stream, void *buf, size_t size);

        /* RX: one received frame without its length field (vnet header + IP packet). Returns 0, or 1
         * when the destination is congested: the stream should stop reading until woken. Returns
         * -EBADMSG for an invalid vnet header or non-IP payload: the stream must be closed. */
        int (*stream_receive)(TapotunPeer *p, void *stream, const void *frame, size_t len);

        /* Server with socket activation: a listening socket systemd passed for tunnel T (matched by
         * FileDescriptorName=), or -ENOENT. The caller owns the fd. */
        int (*take_listen_fd)(TapotunTunnel *t);

        /* Peers of a server tunnel, in `clients` order. */
        size_t (*tunnel_n_peers)(TapotunTunnel *t);
        TapotunPeer *(*tunnel_peer)(TapotunTunnel *t, size_t i);

        /* What the host cannot learn from attach/detach, e.g. that a client transport waits before it
         * reconnects (TAPOTUN_PEER_BACKOFF): shown on the bus. DETAIL may be NULL. A host built before
         * this member existed has a smaller struct_size: check it before calling. */
        void (*peer_event)(TapotunPeer *p, TapotunPeerEvent event, const char *detail);

        /* The metrics listener (TapotunIfaceConfig.metrics_*); a host built before these members existed has
         * a smaller struct_size and no metrics fields in the configuration. Both return a malloc()ed text in
         * *RET_TEXT (the caller frees it) of *RET_LEN bytes. render_metrics: tunnel T's metrics in the
         * Prometheus text format 0.0.4. render_health: 0 and "ok\n" when every peer of T is connected or was
         * away for less than unhealthy_after, else 1 and one line per peer that is not. */
        int (*render_metrics)(TapotunTunnel *t, char **ret_text, size_t *ret_len);
        int (*render_health)(TapotunTunnel *t, char **ret_text, size_t *ret_len);

        /* TX without the copy of stream_pull: whole frames, at most SIZE bytes, as up to *N_IOV pieces in IOV
         * (*N_IOV is set to the count) that point into the host's queue; small frames are copied into COPY
         * (SIZE bytes) on the way. The pieces stay valid, and nothing more of this peer is lent or pulled,
         * until stream_return(); detaching the stream returns them too. Returns the bytes lent, 0 when
         * nothing is queued (also while another stream's loan is out: this one is woken when it comes
         * back), -ESTALE when this stream was superseded. A host built before these members existed has a
         * smaller struct_size: use stream_pull there. */
        ssize_t (*stream_lend)(TapotunPeer *p, void *stream, void *copy, size_t size, struct iovec *iov,
                               size_t *n_iov);
        void (*stream_return)(TapotunPeer *p, void *stream);
} TapotunHost;

/* ---------------------------------------------------------------------------------------------- */
/* Plugin kinds and their ops. */

typedef enum TapotunPluginKind {
        TAPOTUN_PLUGIN_SERVER_TRANSPORT,
        TAPOTUN_PLUGIN_CLIENT_TRANSPORT,
        TAPOTUN_PLUGIN_ROUTER,
        _TAPOTUN_PLUGIN_KIND_MAX,
        _TAPOTUN_PLUGIN_KIND_INVALID = -EINVAL,
} TapotunPluginKind;

#define TAPOTUN_TRANSPORT_OPS_VERSION 2u

/* Server and client transports: one instance per configured interface. */
typedef struct TapotunTransportOps {
        uint32_t version;
        int (*instance_new)(const TapotunHost *host, TapotunTunnel *t, const TapotunIfaceConfig *cfg,
                            void **ret);
        void (*instance_free)(void *instance);
        /* Ends every stream of peer P (or of every peer when P is NULL). */
        void (*disconnect)(void *instance, TapotunPeer *p);
        /* Version 2, optional: an instance that serves only the metrics listener of CFG (a client interface
         * with `metrics`), freed with instance_free(). */
        int (*metrics_instance_new)(const TapotunHost *host, TapotunTunnel *t, const TapotunIfaceConfig *cfg,
                                    void **ret);
} TapotunTransportOps;

#define TAPOTUN_ROUTER_OPS_VERSION 1u

/* Where route() sends a packet: an index into cfg->clients, or one of these. */
#define TAPOTUN_ROUTE_TUNNEL (-1)

typedef enum TapotunDropReason {
        TAPOTUN_DROP_NO_ROUTE = 2, /* not 1: -1 is TAPOTUN_ROUTE_TUNNEL */
        TAPOTUN_DROP_SPOOFED,
        TAPOTUN_DROP_NOT_IP,
        TAPOTUN_DROP_QUEUE_FULL,
        TAPOTUN_DROP_STALE,
        TAPOTUN_DROP_INVALID,
        TAPOTUN_DROP_LINK_LOCAL, /* multicast, broadcast or link-local: does not cross the tunnel */
        _TAPOTUN_DROP_MAX,
} TapotunDropReason;

typedef struct TapotunRouterOps {
        uint32_t version;
        int (*instance_new)(const TapotunHost *host, const TapotunIfaceConfig *cfg, void **ret);
        void (*instance_free)(void *instance);
        /* FROM is the index of the client the packet came from, or TAPOTUN_ROUTE_TUNNEL. PACKET is the IP
         * packet (no vnet header). Returns a client index, TAPOTUN_ROUTE_TUNNEL, or -TapotunDropReason. */
        int (*route)(void *instance, int from, const uint8_t *packet, size_t len);
} TapotunRouterOps;

typedef struct TapotunPlugin {
        uint32_t abi_major;
        uint32_t struct_size;
        const char *name;
        const char *version;
        TapotunPluginKind kind;
        int (*init)(const TapotunHost *host);
        void (*done)(void);
        const void *ops; /* TapotunTransportOps or TapotunRouterOps, by kind */
} TapotunPlugin;

static inline int tapotun_host_log(const TapotunHost *host, int level, int error, const char *plugin,
                                   const char *object, const char *format, ...)
        __attribute__((format(printf, 6, 7)));
static inline int tapotun_host_log(const TapotunHost *host, int level, int error, const char *plugin,
                                   const char *object, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = host->logv(level, error, plugin, object, format, ap);
        va_end(ap);
        return r;
}
