/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "manager.h"
#include "metrics.h"

/* Counters of the peer, by offset into Peer: the same values the bus shows (org.tapotun1.Peer). */
typedef struct PeerCounter {
        const char *name;
        const char *help;
        size_t offset;
} PeerCounter;

static const PeerCounter peer_counters[] = {
        { "tapotun_peer_receive_packets_total", "Frames received from the peer.",
          offsetof(Peer, stats.rx_packets) },
        { "tapotun_peer_receive_bytes_total",
          "Bytes of the frames received from the peer: virtio-net header and IP packet.",
          offsetof(Peer, stats.rx_bytes) },
        { "tapotun_peer_transmit_packets_total", "Frames handed to the transport for the peer.",
          offsetof(Peer, stats.tx_packets) },
        { "tapotun_peer_transmit_bytes_total",
          "Bytes of the frames handed to the transport for the peer: length field, virtio-net header and IP "
          "packet.",
          offsetof(Peer, stats.tx_bytes) },
        { "tapotun_peer_connects_total", "Times the peer became connected (a stream in each direction).",
          offsetof(Peer, connects) },
};

/* CLOCK_REALTIME microseconds of the peer, 0 for never. */
static const PeerCounter peer_timestamps[] = {
        { "tapotun_peer_last_connected_timestamp_seconds",
          "When the peer last became connected, 0 if it never was.", offsetof(Peer, last_connected) },
        { "tapotun_peer_last_receive_timestamp_seconds",
          "When the last frame came from the peer, 0 if none did.", offsetof(Peer, last_seen) },
};

typedef struct TunnelCounter {
        const char *name;
        const char *help;
        size_t offset;
} TunnelCounter;

static const TunnelCounter tunnel_counters[] = {
        { "tapotun_interface_read_packets_total",
          "Packets read from the TUN device: what the host sent into the tunnel.",
          offsetof(TunnelStats, rx_packets) },
        { "tapotun_interface_read_bytes_total",
          "Bytes read from the TUN device, virtio-net header included.",
          offsetof(TunnelStats, rx_bytes) },
        { "tapotun_interface_written_packets_total",
          "Packets written to the TUN device: what came out of the tunnel.",
          offsetof(TunnelStats, tx_packets) },
        { "tapotun_interface_written_bytes_total",
          "Bytes written to the TUN device, virtio-net header included.",
          offsetof(TunnelStats, tx_bytes) },
        { "tapotun_interface_write_dropped_packets_total",
          "Packets from the tunnel that could not be written to the TUN device (its queue was full).",
          offsetof(TunnelStats, tx_dropped) },
};

static uint64_t u64_at(const void *base, size_t offset) {
        uint64_t v;

        memcpy(&v, (const uint8_t *) base + offset, sizeof v);
        return v;
}

static uint64_t now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* A label value in the text format: backslash, double quote and newline escaped. */
static void put_label_value(FILE *f, const char *s) {
        for (; *s; s++)
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
}

static void put_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Starts a sample: NAME{interface="...",peer="..." (P may be NULL), left open for more labels. */
static void put_sample(FILE *f, const char *name, Iface *i, Peer *p) {
        fprintf(f, "%s{interface=\"", name);
        put_label_value(f, i->cfg->name);
        fputc('"', f);
        if (p) {
                fputs(",peer=\"", f);
                put_label_value(f, p->name);
                fputc('"', f);
        }
}

static void put_value(FILE *f, uint64_t v) {
        fprintf(f, "} %" PRIu64 "\n", v);
}

static void put_seconds(FILE *f, uint64_t usec) {
        if (usec % 1000000u == 0)
                put_value(f, usec / 1000000u);
        else
                fprintf(f, "} %" PRIu64 ".%06" PRIu64 "\n", usec / 1000000u, usec % 1000000u);
}

/* Drop reasons as Prometheus label values: the bus names with "_" for "-" ("no-route" is "no_route"). */
static void put_drops(FILE *f, const char *name, Iface *i, Peer *p,
                      const uint64_t drops[static _TAPOTUN_DROP_MAX]) {
        for (int r = 0; r < _TAPOTUN_DROP_MAX; r++) {
                const char *s = drop_reason_to_string((TapotunDropReason) r);

                if (!s)
                        continue;
                put_sample(f, name, i, p);
                fputs(",reason=\"", f);
                for (; *s; s++)
                        fputc(*s == '-' ? '_' : *s, f);
                fputc('"', f);
                put_value(f, drops[r]);
        }
}

static uint32_t iface_mtu(Iface *i) {
        if (i->cfg->mode == TAPOTUN_MODE_SERVER)
                return i->cfg->mtu;
        return i->configured ? i->conf.mtu : 0;
}

static void render_interface(FILE *f, Iface *i) {
        TunnelStats s = {};
        uint32_t mtu = iface_mtu(i);

        if (i->tun)
                tunnel_get_stats(i->tun, &s);

        put_family(f, "tapotun_build_info", "gauge", "The version of tapotund, as a label; always 1.");
        fputs("tapotun_build_info{version=\"", f);
        put_label_value(f, PACKAGE_VERSION);
        fputs("\"} 1\n", f);

        put_family(f, "tapotun_interface_info", "gauge", "The interface and its mode, as labels; always 1.");
        put_sample(f, "tapotun_interface_info", i, NULL);
        fprintf(f, ",mode=\"%s\"", tapotun_mode_to_string(i->cfg->mode));
        put_value(f, 1);

        put_family(f, "tapotun_interface_mtu_bytes", "gauge",
                   "MTU of the TUN device (a client learns it from the server when it first connects).");
        if (mtu > 0) {
                put_sample(f, "tapotun_interface_mtu_bytes", i, NULL);
                put_value(f, mtu);
        }

        put_family(f, "tapotun_interface_queue_limit_bytes", "gauge",
                   "Bound of each peer's queue (queue_bytes).");
        put_sample(f, "tapotun_interface_queue_limit_bytes", i, NULL);
        put_value(f, i->cfg->queue_bytes ?: CONFIG_DEFAULT_QUEUE_BYTES);

        for (size_t k = 0; k < ELEMENTSOF(tunnel_counters); k++) {
                put_family(f, tunnel_counters[k].name, "counter", tunnel_counters[k].help);
                put_sample(f, tunnel_counters[k].name, i, NULL);
                put_value(f, u64_at(&s, tunnel_counters[k].offset));
        }

        put_family(f, "tapotun_interface_dropped_packets_total", "counter",
                   "Packets read from the TUN device and dropped, by reason.");
        put_drops(f, "tapotun_interface_dropped_packets_total", i, NULL, i->drops);

        put_family(f, "tapotun_interface_unreachables_sent_total", "counter",
                   "ICMP destination unreachable answers sent for packets no client could take.");
        put_sample(f, "tapotun_interface_unreachables_sent_total", i, NULL);
        put_value(f, i->icmp_sent);
}

static void render_peers(FILE *f, Iface *i) {
        uint64_t mono = manager_now(i->manager), real = now_realtime();

        put_family(f, "tapotun_peer_up", "gauge",
                   "1 when the peer is connected (a stream in each direction).");
        for (size_t j = 0; j < i->n_peers; j++) {
                put_sample(f, "tapotun_peer_up", i, i->peers[j]);
                put_value(f, i->peers[j]->state == PEER_CONNECTED);
        }

        put_family(f, "tapotun_peer_state", "gauge",
                   "The peer's state, as on the bus: 1 for the current one.");
        for (size_t j = 0; j < i->n_peers; j++)
                for (int st = 0; st < _PEER_STATE_MAX; st++) {
                        put_sample(f, "tapotun_peer_state", i, i->peers[j]);
                        fprintf(f, ",state=\"%s\"", peer_state_to_string((PeerState) st));
                        put_value(f, i->peers[j]->state == (PeerState) st);
                }

        put_family(f, "tapotun_peer_down_since_timestamp_seconds", "gauge",
                   "Since when the peer is not connected (since it was configured, if it never was); "
                   "0 while it is.");
        for (size_t j = 0; j < i->n_peers; j++) {
                Peer *p = i->peers[j];
                uint64_t down = mono - MIN(p->down_since, mono);

                put_sample(f, "tapotun_peer_down_since_timestamp_seconds", i, p);
                put_seconds(f, p->state == PEER_CONNECTED ? 0 : real - MIN(down, real));
        }

        for (size_t k = 0; k < ELEMENTSOF(peer_timestamps); k++) {
                put_family(f, peer_timestamps[k].name, "gauge", peer_timestamps[k].help);
                for (size_t j = 0; j < i->n_peers; j++) {
                        put_sample(f, peer_timestamps[k].name, i, i->peers[j]);
                        put_seconds(f, u64_at(i->peers[j], peer_timestamps[k].offset));
                }
        }

        for (size_t k = 0; k < ELEMENTSOF(peer_counters); k++) {
                put_family(f, peer_counters[k].name, "counter", peer_counters[k].help);
                for (size_t j = 0; j < i->n_peers; j++) {
                        put_sample(f, peer_counters[k].name, i, i->peers[j]);
                        put_value(f, u64_at(i->peers[j], peer_counters[k].offset));
                }
        }

        put_family(f, "tapotun_peer_dropped_packets_total", "counter",
                   "Packets of the peer dropped, by reason.");
        for (size_t j = 0; j < i->n_peers; j++)
                put_drops(f, "tapotun_peer_dropped_packets_total", i, i->peers[j], i->peers[j]->stats.drops);

        put_family(f, "tapotun_peer_queued_bytes", "gauge",
                   "Bytes queued for the peer and not yet handed to the transport.");
        for (size_t j = 0; j < i->n_peers; j++) {
                put_sample(f, "tapotun_peer_queued_bytes", i, i->peers[j]);
                put_value(f, queue_bytes(i->peers[j]->queue));
        }
}

/* Runs FN on a memory stream; returns what FN returns, or -ENOMEM. */
static int render(Iface *i, int (*fn)(FILE *f, Iface *i), char **ret_text, size_t *ret_len) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        r = fn(f, i);
        if (ferror(f))
                r = -ENOMEM;
        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        if (r < 0)
                return r;

        *ret_text = TAKE_PTR(text);
        *ret_len = len;
        return r;
}

static int render_metrics(FILE *f, Iface *i) {
        render_interface(f, i);
        render_peers(f, i);
        return 0;
}

static int render_health(FILE *f, Iface *i) {
        uint64_t now = manager_now(i->manager), limit = i->cfg->unhealthy_after_usec;
        int r = 0;

        for (size_t j = 0; j < i->n_peers; j++) {
                Peer *p = i->peers[j];
                uint64_t down = now - MIN(p->down_since, now);

                if (p->state == PEER_CONNECTED || down <= limit)
                        continue;
                fprintf(f, "%s: peer \"%s\" not connected for %" PRIu64 " s (unhealthy_after: %" PRIu64
                        " s)\n", i->cfg->name, p->name, down / 1000000u, limit / 1000000u);
                r = 1;
        }
        if (r == 0)
                fputs("ok\n", f);
        return r;
}

int metrics_host_render(TapotunTunnel *t, char **ret_text, size_t *ret_len) {
        return render(t, render_metrics, ret_text, ret_len);
}

int metrics_host_health(TapotunTunnel *t, char **ret_text, size_t *ret_len) {
        return render(t, render_health, ret_text, ret_len);
}

int metrics_client_start(Iface *i) {
        const TapotunTransportOps *ops;
        const TapotunPlugin *plugin;
        int r;

        if (i->cfg->mode != TAPOTUN_MODE_CLIENT || !i->cfg->metrics_listen)
                return 0;

        /* The server transport serves the metrics of a client interface too; it logs why it cannot load. */
        r = manager_load_plugin(i->manager, TAPOTUN_PLUGIN_SERVER_TRANSPORT);
        if (r < 0)
                return r;
        plugin = manager_plugin(i->manager, TAPOTUN_PLUGIN_SERVER_TRANSPORT);
        ops = plugin->ops;
        if (ops->version < 2 || !ops->metrics_instance_new)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, EPROTO,
                                             "Transport plugin '%s' cannot serve the metrics of a client "
                                             "interface; it is older than this daemon.", plugin->name);

        r = ops->metrics_instance_new(&i->manager->host, i, i->cfg, &i->metrics);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r,
                                             "Transport plugin '%s' failed to start the metrics listener: "
                                             "%m", plugin->name);
        i->metrics_ops = ops;
        return 0;
}

void metrics_client_stop(Iface *i) {
        if (!i->metrics)
                return;
        i->metrics_ops->instance_free(i->metrics);
        i->metrics = NULL;
}
