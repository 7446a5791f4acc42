/* SPDX-License-Identifier: MIT */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <strings.h>

#include "frame.h"
#include "icmp.h"
#include "iface.h"
#include "log.h"
#include "manager.h"

static const char *const drop_reason_table[_TAPOTUN_DROP_MAX] = {
        [TAPOTUN_DROP_NO_ROUTE] = "no-route",
        [TAPOTUN_DROP_SPOOFED] = "spoofed",
        [TAPOTUN_DROP_NOT_IP] = "not-ip",
        [TAPOTUN_DROP_QUEUE_FULL] = "queue-full",
        [TAPOTUN_DROP_STALE] = "stale",
        [TAPOTUN_DROP_INVALID] = "invalid",
        [TAPOTUN_DROP_LINK_LOCAL] = "link-local",
};

DEFINE_STRING_TABLE_LOOKUP(drop_reason, TapotunDropReason);

#define RT_TABLE_MAIN_ID 254u

static void on_tun_read(Tunnel *t, const uint8_t *frame, size_t len, void *userdata) {
        Iface *i = userdata;

        (void) iface_forward(i, NULL, frame, len);
}

static void on_tun_writable(Tunnel *t, void *userdata) {
        Iface *i = userdata;

        i->congested = false;
        for (size_t j = 0; j < i->n_peers; j++)
                peer_wake_rx(i->peers[j]);
}

static int iface_create_tun(Iface *i, uint32_t offloads) {
        int r;

        r = tunnel_new(i->manager->event, i->manager->netlink, i->cfg->name, offloads, &i->tun);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to create the TUN device: %m");
        tunnel_set_handlers(i->tun, on_tun_read, on_tun_writable, i);
        r = tunnel_start(i->tun);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to start reading the TUN: %m");
        return 0;
}

static int iface_add_address(Iface *i, const TapotunPrefix *a) {
        char s[64];
        int r;

        r = tunnel_add_address(i->tun, a);
        if (r < 0) {
                wire_prefix_format(a, s, sizeof s);
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to add address %s: %m", s);
        }
        return 0;
}

static int iface_add_route(Iface *i, const TapotunPrefix *dst, uint32_t table) {
        char s[64];
        int r;

        r = tunnel_add_route(i->tun, dst, table);
        if (r < 0) {
                wire_prefix_format(dst, s, sizeof s);
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to add route %s (table %u): %m",
                                             s, table);
        }
        return 0;
}

static int iface_add_mark(Iface *i, bool v6) {
        const TapotunIfaceConfig *c = i->cfg;
        int r;

        if (c->mark_value == 0)
                return 0;
        r = tunnel_add_mark(i->tun, c->mark_value, c->mark_table, c->mark_priority, v6);
        if (r < 0)
                return log_tunnel_full_errno(c->name, LOG_ERR, r,
                                             "Failed to set up fwmark %u policy routing with table %u: %m",
                                             c->mark_value, c->mark_table);
        return 0;
}

int iface_new(Manager *m, const TapotunIfaceConfig *cfg, Iface **ret) {
        _cleanup_(iface_freep) Iface *i = NULL;
        int r;

        i = calloc(1, sizeof(Iface));
        if (!i)
                return -ENOMEM;
        i->manager = m;
        i->cfg = cfg;

        i->n_peers = cfg->mode == TAPOTUN_MODE_SERVER ? cfg->n_clients : 1;
        i->peers = calloc(MAX(i->n_peers, 1u), sizeof(Peer *));
        if (!i->peers)
                return -ENOMEM;
        for (size_t j = 0; j < i->n_peers; j++) {
                if (cfg->mode == TAPOTUN_MODE_SERVER)
                        r = peer_new(i, j, cfg->clients[j].name, &cfg->clients[j], &i->peers[j]);
                else
                        r = peer_new(i, j, "server", NULL, &i->peers[j]);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(i);
        return 0;
}

static int iface_start_server(Iface *i) {
        const TapotunIfaceConfig *c = i->cfg;
        const TapotunPlugin *router = manager_plugin(i->manager, TAPOTUN_PLUGIN_ROUTER);
        int r;

        r = iface_create_tun(i, WIRE_OFFLOAD_V1);
        if (r < 0)
                return r;

        r = tunnel_set_mtu_up(i->tun, c->mtu);
        if (r < 0)
                return log_tunnel_full_errno(c->name, LOG_ERR, r, "Failed to set MTU %u and bring it up: %m",
                                             c->mtu);
        /* Our "destination unreachable" answers come from the server's own address: the kernel must
         * take them in from the TUN instead of dropping them as martians. */
        r = tunnel_set_accept_local(i->tun, true);
        if (r < 0)
                return log_tunnel_full_errno(c->name, LOG_ERR, r, "Failed to set accept_local: %m");
        if (c->net.family != 0) {
                r = iface_add_address(i, &c->net);
                if (r < 0)
                        return r;
        }
        if (c->net6.family != 0) {
                r = iface_add_address(i, &c->net6);
                if (r < 0)
                        return r;
        }
        for (size_t j = 0; j < c->n_ips; j++) {
                r = iface_add_address(i, &c->ips[j]);
                if (r < 0)
                        return r;
        }
        /* Networks behind clients are reached through the tunnel by the server host itself, marked or
         * not: the main table. */
        for (size_t j = 0; j < c->n_clients; j++)
                for (size_t k = 0; k < c->clients[j].n_routes; k++) {
                        r = iface_add_route(i, &c->clients[j].routes[k], RT_TABLE_MAIN_ID);
                        if (r < 0)
                                return r;
                }
        r = iface_add_mark(i, c->net6.family != 0);
        if (r < 0)
                return r;

        i->router_ops = router->ops;
        r = i->router_ops->instance_new(&i->manager->host, c, &i->router);
        if (r < 0)
                return log_tunnel_full_errno(c->name, LOG_ERR, r, "Router plugin failed to start: %m");
        return 0;
}

int iface_start(Iface *i) {
        TapotunPluginKind kind = i->cfg->mode == TAPOTUN_MODE_SERVER ? TAPOTUN_PLUGIN_SERVER_TRANSPORT
                                                                     : TAPOTUN_PLUGIN_CLIENT_TRANSPORT;
        const TapotunPlugin *transport = manager_plugin(i->manager, kind);
        int r;

        if (i->cfg->mode == TAPOTUN_MODE_SERVER) {
                r = iface_start_server(i);
                if (r < 0)
                        return r;
        }

        i->transport_ops = transport->ops;
        r = i->transport_ops->instance_new(&i->manager->host, i, i->cfg, &i->transport);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Transport plugin '%s' failed to start: %m",
                                             transport->name);
        return 0;
}

Iface *iface_free(Iface *i) {
        if (!i)
                return NULL;

        if (i->transport)
                i->transport_ops->instance_free(i->transport);
        if (i->router)
                i->router_ops->instance_free(i->router);
        for (size_t j = 0; j < i->n_peers; j++)
                peer_free(i->peers[j]);
        free(i->peers);
        tunnel_free(i->tun);
        free(i->pushed_routes);
        return mfree(i);
}

static int iface_tun_write(Iface *i, const uint8_t *frame, size_t len) {
        int r;

        r = tunnel_write(i->tun, frame, len);
        if (r < 0)
                return 0; /* counted by the tunnel */
        if (r > 0)
                i->congested = true;
        return r;
}

#define ICMP_RATE_PER_SEC 100u

/* Tells the sender of an undeliverable packet read from the TUN, at most ICMP_RATE_PER_SEC a second. */
static void iface_answer_unreachable(Iface *i, const uint8_t *ip, size_t ip_len) {
        uint8_t out[ICMP_ANSWER_MAX];
        uint64_t now = manager_now(i->manager);
        size_t n;

        if (now - i->icmp_refilled >= 1000000u) {
                i->icmp_tokens = ICMP_RATE_PER_SEC;
                i->icmp_refilled = now;
        }
        if (i->icmp_tokens == 0)
                return;

        n = icmp_unreachable(ip, ip_len, &i->cfg->net, &i->cfg->net6, out);
        if (n == 0)
                return;
        i->icmp_tokens--;
        if (tunnel_write(i->tun, out, n) >= 0)
                i->icmp_sent++;
}

int iface_forward(Iface *i, Peer *from, const uint8_t *frame, size_t len) {
        const uint8_t *ip = frame + TAPOTUN_VNET_HDR_SIZE;
        size_t ip_len = len - TAPOTUN_VNET_HDR_SIZE;
        int to;

        if (len < TAPOTUN_VNET_HDR_SIZE + 1)
                return 0;

        if (i->cfg->mode == TAPOTUN_MODE_CLIENT) {
                if (from)
                        return iface_tun_write(i, frame, len);
                (void) peer_send(i->peers[0], frame, len);
                return 0;
        }

        to = i->router_ops->route(i->router, from ? (int) from->index : TAPOTUN_ROUTE_TUNNEL, ip, ip_len);
        if (to == TAPOTUN_ROUTE_TUNNEL)
                return from ? iface_tun_write(i, frame, len) : 0;
        if (to < 0) {
                TapotunDropReason reason = (TapotunDropReason) -to;

                if (from && reason == TAPOTUN_DROP_SPOOFED)
                        peer_drop_spoofed(from, ip, ip_len);
                else if (from)
                        peer_count_drop(from, reason);
                else if (reason < _TAPOTUN_DROP_MAX) {
                        i->drops[reason]++;
                        if (reason == TAPOTUN_DROP_NO_ROUTE)
                                iface_answer_unreachable(i, ip, ip_len);
                }
                return 0;
        }
        if ((size_t) to >= i->n_peers)
                return 0;
        (void) peer_send(i->peers[to], frame, len);
        return 0;
}

int iface_host_receive(TapotunPeer *p, void *stream, const void *frame, size_t len) {
        Iface *i = p->iface;
        int r;

        if (frame_validate(frame, len) != FRAME_ERROR_NONE) {
                peer_count_drop(p, TAPOTUN_DROP_INVALID);
                return -EBADMSG;
        }
        if (!i->tun) {
                /* A client gets frames only after the GET configured the TUN; a transport that hands them
                 * over earlier is dropped rather than trusted. */
                peer_count_drop(p, TAPOTUN_DROP_NO_ROUTE);
                return 0;
        }

        p->stats.rx_packets++;
        p->stats.rx_bytes += len;
        r = iface_forward(i, p, frame, len);
        if (r > 0) {
                for (size_t k = 0; k < p->n_rx; k++)
                        if (p->rx[k].stream == stream)
                                p->rx[k].paused = true;
                return 1;
        }
        return 0;
}

int iface_host_authenticate(TapotunTunnel *t, const char *key, size_t key_len, TapotunPeer **ret) {
        unsigned char md[SHA_DIGEST_LENGTH];
        Peer *found = NULL;

        if (t->cfg->mode != TAPOTUN_MODE_SERVER || !key)
                return -EACCES;

        SHA1((const unsigned char *) key, key_len, md);
        /* Every configured token is compared, in constant time, so timing reveals nothing. */
        for (size_t j = 0; j < t->n_peers; j++)
                if (CRYPTO_memcmp(md, t->peers[j]->client->token_sha1, SHA_DIGEST_LENGTH) == 0)
                        found = t->peers[j];
        if (!found)
                return -EACCES;
        *ret = found;
        return 0;
}

static const char *header_get(const TapotunHeader *h, size_t n, const char *name) {
        for (size_t k = 0; k < n; k++)
                if (h[k].name && strcasecmp(h[k].name, name) == 0)
                        return h[k].value;
        return NULL;
}

static int iface_apply_conf(Iface *i, const TunConf *c, const TapotunPrefix *c6) {
        TapotunPrefix a;
        int r;

        if (i->configured && i->conf.mtu == c->mtu && i->conf.prefixlen == c->prefixlen &&
            i->conf.address.s_addr == c->address.s_addr && wire_prefix_equal(&i->conf6, c6))
                return 0;

        if (i->configured) {
                log_tunnel_full_errno(i->cfg->name, LOG_NOTICE, 0, "Server changed the interface parameters, "
                                      "reconfiguring.");
                if (i->conf.address.s_addr != 0) {
                        a = (TapotunPrefix) { .family = AF_INET, .prefixlen = i->conf.prefixlen,
                                              .addr.in = i->conf.address };
                        (void) tunnel_remove_address(i->tun, &a);
                }
                if (i->conf6.family != 0)
                        (void) tunnel_remove_address(i->tun, &i->conf6);
        }

        r = tunnel_set_mtu_up(i->tun, c->mtu);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to set MTU %u and bring it up: %m",
                                             c->mtu);
        if (c->address.s_addr != 0) {
                a = (TapotunPrefix) { .family = AF_INET, .prefixlen = c->prefixlen, .addr.in = c->address };
                r = iface_add_address(i, &a);
                if (r < 0)
                        return r;
        }
        if (c6->family != 0) {
                r = iface_add_address(i, c6);
                if (r < 0)
                        return r;
        }

        i->conf = *c;
        i->conf6 = *c6;
        i->configured = true;
        return 0;
}

static int iface_apply_routes(Iface *i, const char *value) {
        _cleanup_free_ TapotunPrefix *routes = NULL;
        uint32_t table = i->cfg->mark_value ? i->cfg->mark_table : RT_TABLE_MAIN_ID;
        size_t n = 0;
        int r;

        if (value) {
                r = wire_prefixes_parse(value, &routes, &n);
                if (r < 0)
                        return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r,
                                                     "Server sent an invalid x-tun-routes header: \"%.64s\"",
                                                     value);
        }

        /* Routes no longer pushed go away, new ones are added. A route that cannot be installed (it
         * conflicts with one of the host's own, say) is skipped with a warning: the tunnel still works. */
        for (size_t k = 0; k < i->n_pushed_routes; k++) {
                bool keep = false;
                for (size_t l = 0; l < n && !keep; l++)
                        keep = wire_prefix_equal(&i->pushed_routes[k], &routes[l]);
                if (!keep)
                        (void) tunnel_remove_route(i->tun, &i->pushed_routes[k], table);
        }
        for (size_t l = 0; l < n; l++) {
                char s[64];

                wire_prefix_format(&routes[l], s, sizeof s);
                if (!wire_prefix_is_network(&routes[l])) {
                        log_tunnel_full_errno(i->cfg->name, LOG_WARNING, 0,
                                              "Server pushed %s, which has host bits set; ignoring it.", s);
                        continue;
                }
                r = tunnel_add_route(i->tun, &routes[l], table);
                if (r < 0)
                        log_tunnel_full_errno(i->cfg->name, LOG_WARNING, r,
                                              "Cannot route %s (pushed by the server) into the tunnel: %m", s);
        }

        free(i->pushed_routes);
        i->pushed_routes = TAKE_PTR(routes);
        i->n_pushed_routes = n;
        return 0;
}

int iface_host_configure(TapotunPeer *p, const TapotunHeader *resp, size_t n_resp) {
        Iface *i = p->iface;
        const char *conf = header_get(resp, n_resp, "x-tun-conf");
        const char *conf6 = header_get(resp, n_resp, "x-tun-conf6");
        const char *offload = header_get(resp, n_resp, "x-tun-offload");
        TunConf c = {};
        TapotunPrefix c6 = {};
        int r;

        if (i->cfg->mode != TAPOTUN_MODE_CLIENT)
                return -EINVAL;
        if (!conf && !conf6)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, EBADMSG,
                                             "Server sent no x-tun-conf header; is this a tapotun server?");
        if (conf) {
                r = wire_tun_conf_decode(conf, &c);
                if (r < 0)
                        return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r,
                                                     "Server sent an invalid x-tun-conf header: \"%.64s\"", conf);
        } else
                c.mtu = 1280;
        if (conf6) {
                r = wire_prefix_parse(conf6, false, &c6);
                if (r < 0 || c6.family != AF_INET6)
                        return log_tunnel_full_errno(i->cfg->name, LOG_ERR, EBADMSG,
                                                     "Server sent an invalid x-tun-conf6 header: \"%.64s\"",
                                                     conf6);
        }
        p->offloads = offload ? wire_offload_parse(offload) : WIRE_OFFLOAD_V1;

        if (!i->tun) {
                /* Our TUN hands us only what the server accepts. */
                r = iface_create_tun(i, p->offloads);
                if (r < 0)
                        return r;
        }

        r = iface_apply_conf(i, &c, &c6);
        if (r < 0)
                return r;
        r = iface_add_mark(i, c6.family != 0);
        if (r < 0)
                return r;
        return iface_apply_routes(i, i->cfg->accept_routes ? header_get(resp, n_resp, "x-tun-routes") : NULL);
}

int iface_host_take_listen_fd(TapotunTunnel *t) {
        return manager_take_listen_fd(t->manager, t->cfg->name);
}

size_t iface_host_n_peers(TapotunTunnel *t) {
        return t->n_peers;
}

TapotunPeer *iface_host_peer(TapotunTunnel *t, size_t i) {
        return i < t->n_peers ? t->peers[i] : NULL;
}
