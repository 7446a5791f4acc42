/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <inttypes.h>
#include <strings.h>
#include <time.h>

#include "gso.h"
#include "iface.h"
#include "log.h"
#include "manager.h"
#include "peer.h"

#define PEER_QUEUE_MAX_AGE_USEC (100u * 1000u)

static const char *const peer_state_table[_PEER_STATE_MAX] = {
        [PEER_DISCONNECTED] = "disconnected",
        [PEER_CONNECTING] = "connecting",
        [PEER_CONNECTED] = "connected",
        [PEER_BACKOFF] = "backoff",
};

DEFINE_STRING_TABLE_LOOKUP(peer_state, PeerState);

static uint64_t now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int peer_new(Iface *iface, size_t index, const char *name, const TapotunClientConfig *client, Peer **ret) {
        _cleanup_(peer_freep) Peer *p = NULL;
        int r;

        p = calloc(1, sizeof(Peer));
        if (!p)
                return -ENOMEM;
        p->iface = iface;
        p->index = index;
        p->client = client;
        p->down_since = manager_now(iface->manager);
        p->name = strdup(name);
        if (!p->name)
                return -ENOMEM;

        r = queue_new(iface->cfg->queue_bytes ?: 12u * 1024u * 1024u, PEER_QUEUE_MAX_AGE_USEC, &p->queue);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

Peer *peer_free(Peer *p) {
        if (!p)
                return NULL;
        queue_free(p->queue);
        free(p->routes_header);
        free(p->name);
        free(p->remote);
        free(p->last_error);
        return mfree(p);
}

/* Replaces *S with a copy of VALUE (NULL clears it); returns whether it changed. On OOM the old value
 * stays: it only feeds the bus. */
static bool peer_set_string(char **s, const char *value) {
        char *c = NULL;

        if (streq_ptr(*s, value))
                return false;
        if (value) {
                c = strdup(value);
                if (!c)
                        return false;
        }
        free(*s);
        *s = c;
        return true;
}

void peer_count_drop(Peer *p, TapotunDropReason reason) {
        if (reason > 0 && reason < _TAPOTUN_DROP_MAX)
                p->stats.drops[reason]++;
}

void peer_count_rx(Peer *p, size_t len) {
        uint64_t now;

        p->stats.rx_packets++;
        p->stats.rx_bytes += len;
        /* The loop's timestamp: one clock read per iteration, not per frame. */
        if (sd_event_now(p->iface->manager->event, CLOCK_REALTIME, &now) < 0)
                now = now_realtime();
        p->last_seen = now;
}

#define SPOOF_LOG_INTERVAL_USEC (10u * 1000000u)

void peer_drop_spoofed(Peer *p, const uint8_t *ip, size_t len) {
        uint64_t now = manager_now(p->iface->manager), n;
        char src[INET6_ADDRSTRLEN] = "?", dst[INET6_ADDRSTRLEN] = "?";

        peer_count_drop(p, TAPOTUN_DROP_SPOOFED);
        if (p->spoof_logged != 0 && now - p->spoof_logged < SPOOF_LOG_INTERVAL_USEC)
                return;

        if (len >= 20 && ip[0] >> 4 == 4) {
                inet_ntop(AF_INET, ip + 12, src, sizeof src);
                inet_ntop(AF_INET, ip + 16, dst, sizeof dst);
        } else if (len >= 40 && ip[0] >> 4 == 6) {
                inet_ntop(AF_INET6, ip + 8, src, sizeof src);
                inet_ntop(AF_INET6, ip + 24, dst, sizeof dst);
        }
        n = p->stats.drops[TAPOTUN_DROP_SPOOFED] - p->spoof_reported;
        log_peer_full_errno(p->name, LOG_NOTICE, 0,
                            "Dropped %" PRIu64 " packet(s) whose source address does not belong to this client "
                            "(last: %s -> %s); set allow_spoofing to accept them.",
                            n, src, dst);
        p->spoof_logged = now;
        p->spoof_reported = p->stats.drops[TAPOTUN_DROP_SPOOFED];
}

static int peer_queue_frame(const uint8_t *frame, size_t len, void *userdata) {
        Peer *p = userdata;
        int r;

        r = queue_push(p->queue, frame, len, manager_now(p->iface->manager));
        if (r < 0)
                peer_count_drop(p, TAPOTUN_DROP_QUEUE_FULL);
        return r;
}

int peer_send(Peer *p, const void *frame, size_t len) {
        /* Segments for a peer whose TUN lacks an offload the frame uses are built here, one at a time: the
         * loop is single-threaded. */
        static uint8_t gso_buf[GSO_BUF_SIZE];
        static uint8_t reserved_copy[QUEUE_RESERVE_SIZE];
        int r;

        if (gso_frame_needs(frame, len) & ~p->offloads) {
                /* Segments go where a frame read into the queue lies (iface.c avoids this; be safe). */
                if (queue_is_reserved(p->queue, frame) && len <= sizeof reserved_copy)
                        frame = memcpy(reserved_copy, frame, len);
                r = gso_segment(frame, len, p->offloads, gso_buf, peer_queue_frame, p);
                if (r == -EBADMSG)
                        peer_count_drop(p, TAPOTUN_DROP_INVALID);
        } else
                r = peer_queue_frame(frame, len, p);
        if (r < 0)
                return r;
        if (p->tx_stream && p->tx_wake)
                p->tx_wake(p->tx_stream);
        return 0;
}

uint8_t *peer_reserve(Peer *p) {
        return queue_reserve(p->queue);
}

void peer_wake_rx(Peer *p) {
        for (size_t i = 0; i < p->n_rx; i++)
                if (p->rx[i].paused) {
                        p->rx[i].paused = false;
                        p->rx[i].wake(p->rx[i].stream);
                }
}

/* Derives the state from the attached streams and tells the manager when it changed, or when CHANGED says
 * that another property it publishes (remote, last_error) did. */
static void peer_update_state(Peer *p, bool changed) {
        PeerState s;

        if (p->tx_stream && p->n_rx > 0)
                s = PEER_CONNECTED;
        else if (p->backoff)
                s = PEER_BACKOFF;
        else if (p->tx_stream || p->n_rx > 0)
                s = PEER_CONNECTING;
        else
                s = PEER_DISCONNECTED;

        if (s == p->state && !changed)
                return;
        if (s == PEER_CONNECTED && p->state != PEER_CONNECTED) {
                p->connected_since = p->last_connected = now_realtime();
                p->connects++;
                log_peer_full_errno(p->name, LOG_INFO, 0, "Connected from %s.", p->remote ?: "?");
        } else if (s != PEER_CONNECTED && p->state == PEER_CONNECTED) {
                p->connected_since = 0;
                p->down_since = manager_now(p->iface->manager);
                log_peer_full_errno(p->name, LOG_INFO, 0, "Disconnected.");
        }
        p->state = s;
        /* A retired peer is no longer part of the interface: nobody is to hear of it again. */
        if (!p->retired)
                manager_peer_changed(p->iface->manager, p);
}

static const char *header_get(const TapotunHeader *h, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (h[i].name && strcasecmp(h[i].name, name) == 0)
                        return h[i].value;
        return NULL;
}

static int push_add(TapotunPrefix **l, size_t *n, const TapotunPrefix *a) {
        TapotunPrefix *m;

        if (a->family == 0)
                return 0;
        for (size_t i = 0; i < *n; i++)
                if (wire_prefix_equal(&(*l)[i], a))
                        return 0;
        m = reallocarray(*l, *n + 1, sizeof(TapotunPrefix));
        if (!m)
                return -ENOMEM;
        m[(*n)++] = *a;
        *l = m;
        return 0;
}

/* The networks this peer is told to route into its tunnel (x-tun-routes): the configured push_routes,
 * and with push_local_routes / push_client_routes the server's local networks and the other clients'
 * addresses and networks. Sets p->routes_header, NULL when there is nothing to push. */
static int peer_build_routes_header(Peer *p) {
        const TapotunIfaceConfig *cfg = p->iface->cfg;
        _cleanup_free_ TapotunPrefix *l = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; i < cfg->n_push_routes && r >= 0; i++)
                r = push_add(&l, &n, &cfg->push_routes[i]);
        for (size_t i = 0; cfg->push_local_routes && i < cfg->n_routes && r >= 0; i++)
                r = push_add(&l, &n, &cfg->routes[i]);
        for (size_t j = 0; cfg->push_client_routes && j < cfg->n_clients && r >= 0; j++) {
                const TapotunClientConfig *c = &cfg->clients[j];

                if (c == p->client)
                        continue;
                r = push_add(&l, &n, &c->ip);
                if (r >= 0)
                        r = push_add(&l, &n, &c->ip6);
                for (size_t k = 0; k < c->n_routes && r >= 0; k++)
                        r = push_add(&l, &n, &c->routes[k]);
        }
        if (r < 0)
                return r;

        p->routes_header = mfree(p->routes_header);
        if (n == 0)
                return 0;
        p->routes_header = wire_prefixes_format(l, n);
        return p->routes_header ? 0 : -ENOMEM;
}

int peer_host_accept(TapotunPeer *p, const TapotunHeader *req, size_t n_req, TapotunHeader *ret,
                     size_t *n_ret) {
        const TapotunIfaceConfig *cfg = p->iface->cfg;
        const char *o;
        size_t n = 0;
        int r;

        if (!p->client || *n_ret < 4)
                return -EINVAL;

        /* Version 1 peers send no x-tun-offload and take csum,tso4,tso6,ecn. */
        o = header_get(req, n_req, "x-tun-offload");
        p->offloads = o ? wire_offload_parse(o) : WIRE_OFFLOAD_V1;

        if (p->client->ip.family == AF_INET) {
                TunConf c = {
                        .mtu = (uint16_t) cfg->mtu,
                        .prefixlen = cfg->net.prefixlen,
                        .address = p->client->ip.addr.in,
                };
                wire_tun_conf_encode(&c, p->conf);
                ret[n++] = (TapotunHeader) { "x-tun-conf", p->conf };
        }
        if (p->client->ip6.family == AF_INET6) {
                TapotunPrefix a = p->client->ip6;

                a.prefixlen = cfg->net6.prefixlen;
                wire_prefix_format(&a, p->conf6, sizeof p->conf6);
                ret[n++] = (TapotunHeader) { "x-tun-conf6", p->conf6 };
        }
        wire_offload_format(tunnel_get_offloads(p->iface->tun) & p->offloads, p->offload_header,
                            sizeof p->offload_header);
        ret[n++] = (TapotunHeader) { "x-tun-offload", p->offload_header };

        r = peer_build_routes_header(p);
        if (r < 0)
                return r;
        if (p->routes_header)
                ret[n++] = (TapotunHeader) { "x-tun-routes", p->routes_header };

        *n_ret = n;
        return 0;
}

int peer_pushed_config(Peer *p, char **ret) {
        TapotunHeader h[8];
        size_t n = ELEMENTSOF(h), len = 1;
        uint32_t offloads = p->offloads;
        char *s, *e;
        int r;

        /* The answer to a request without headers; the offloads it negotiates are the connected
         * client's business, so they are left as they were and not compared. */
        r = peer_host_accept(p, NULL, 0, h, &n);
        p->offloads = offloads;
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++)
                len += strlen(h[i].name) + strlen(h[i].value) + 3;
        s = e = malloc(len);
        if (!s)
                return -ENOMEM;
        *s = 0;
        for (size_t i = 0; i < n; i++)
                if (!streq(h[i].name, "x-tun-offload"))
                        e = stpcpy(stpcpy(stpcpy(stpcpy(e, h[i].name), ": "), h[i].value), "\n");
        *ret = s;
        return 0;
}

int peer_host_request_headers(TapotunPeer *p, TapotunHeader *ret, size_t *n_ret) {
        uint32_t accept = p->iface->tun ? tunnel_get_offloads(p->iface->tun)
                                        : gso_offloads_allowed(p->iface->cfg->offloads_mask);

        if (*n_ret < 1)
                return -EINVAL;
        wire_offload_format(accept, p->offload_header, sizeof p->offload_header);
        ret[0] = (TapotunHeader) { "x-tun-offload", p->offload_header };
        *n_ret = 1;
        return 0;
}

int peer_host_stream_attach(TapotunPeer *p, TapotunStreamDirection dir, void *stream, TapotunWakeFn wake,
                            const char *remote) {
        if (!stream || !wake)
                return -EINVAL;
        if (p->retired)
                return -ESTALE;

        if (dir == TAPOTUN_STREAM_TX) {
                void *old = p->tx_stream;
                TapotunWakeFn old_wake = p->tx_wake;

                p->tx_stream = stream;
                p->tx_wake = wake;
                /* The superseded stream learns from its next pull (-ESTALE) that it must end. */
                if (old && old != stream)
                        old_wake(old);
                if (queue_frames(p->queue) > 0)
                        wake(stream);
        } else {
                if (p->n_rx >= PEER_MAX_RX_STREAMS)
                        return -EBUSY;
                p->rx[p->n_rx++] = (RxStream) { .stream = stream, .wake = wake };
        }

        p->backoff = false;
        peer_update_state(p, remote && peer_set_string(&p->remote, remote));
        return 0;
}

void peer_host_stream_detach(TapotunPeer *p, void *stream, const char *reason) {
        peer_host_stream_return(p, stream);
        if (p->tx_stream == stream) {
                p->tx_stream = NULL;
                p->tx_wake = NULL;
        }
        for (size_t i = 0; i < p->n_rx; i++)
                if (p->rx[i].stream == stream) {
                        p->rx[i] = p->rx[--p->n_rx];
                        break;
                }
        if (reason)
                log_peer_full_errno(p->name, LOG_DEBUG, 0, "Stream ended: %s", reason);
        peer_update_state(p, reason && peer_set_string(&p->last_error, reason));
        if (p->retired && !peer_has_streams(p))
                iface_retired_peer_idle(p->iface);
}

static void peer_count_tx(Peer *p, uint64_t stale, size_t frames, size_t bytes) {
        p->stats.drops[TAPOTUN_DROP_STALE] += stale;
        p->stats.tx_packets += frames;
        p->stats.tx_bytes += bytes;
}

ssize_t peer_host_stream_pull(TapotunPeer *p, void *stream, void *buf, size_t size) {
        uint64_t stale;
        size_t n, frames;

        if (stream != p->tx_stream || p->retired)
                return -ESTALE;
        if (size < TAPOTUN_FRAME_MAX)
                return -EINVAL;

        n = queue_pull(p->queue, buf, size, manager_now(p->iface->manager), &stale, &frames);
        if (n == 0 && queue_lent(p->queue))
                p->loan_waiter = true;
        peer_count_tx(p, stale, frames, n);
        return (ssize_t) n;
}

ssize_t peer_host_stream_lend(TapotunPeer *p, void *stream, void *copy, size_t size, struct iovec *iov,
                              size_t *n_iov) {
        QueueLoan l;
        int r;

        if (stream != p->tx_stream || p->retired)
                return -ESTALE;
        if (size < TAPOTUN_FRAME_MAX || *n_iov == 0)
                return -EINVAL;

        r = queue_lend(p->queue, size, copy, iov, *n_iov, manager_now(p->iface->manager), &l);
        if (r == -EBUSY) {
                /* A superseded stream's frames are still on their way. */
                p->loan_waiter = true;
                *n_iov = 0;
                return 0;
        }
        if (r < 0)
                return r;
        peer_count_tx(p, l.stale, l.frames, l.bytes);
        if (l.frames > 0)
                p->loan_stream = stream;
        *n_iov = l.n_iov;
        return (ssize_t) l.bytes;
}

void peer_host_stream_return(TapotunPeer *p, void *stream) {
        if (!stream || p->loan_stream != stream)
                return;
        queue_return(p->queue);
        p->loan_stream = NULL;
        if (p->loan_waiter && p->tx_stream && p->tx_stream != stream) {
                p->loan_waiter = false;
                p->tx_wake(p->tx_stream);
        }
}

const char *peer_host_name(TapotunPeer *p) {
        return p->name;
}

void peer_host_event(TapotunPeer *p, TapotunPeerEvent event, const char *detail) {
        bool changed = false;

        switch (event) {
        case TAPOTUN_PEER_CONNECTED:
                changed = detail && peer_set_string(&p->remote, detail);
                break;
        case TAPOTUN_PEER_DISCONNECTED:
                changed = detail && peer_set_string(&p->last_error, detail);
                break;
        case TAPOTUN_PEER_BACKOFF:
                changed = detail && peer_set_string(&p->last_error, detail);
                p->backoff = true;
                break;
        default: /* from a newer plugin: nothing we could show */
                return;
        }
        peer_update_state(p, changed);
}
