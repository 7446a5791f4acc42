/* SPDX-License-Identifier: MIT */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <strings.h>

#include "frame.h"
#include "gso.h"
#include "icmp.h"
#include "iface.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"

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

_Static_assert(QUEUE_RESERVE_SIZE >= TUNNEL_READ_SIZE, "a read into a queue must fit its reservation");

/* Where the next packet from the TUN is read: straight into the queue of the peer it is likely for (a
 * client's server; on a server, the peer the previous packet went to), which saves copying every packet
 * (peer_send() queues it in place). Not for a peer whose TUN lacks an offload ours has: its frames are
 * segmented out of the packet, into that same queue. */

static uint8_t *on_tun_read_buffer(Tunnel *t, void *userdata) {
        Iface *i = userdata;
        size_t k = i->cfg->mode == TAPOTUN_MODE_CLIENT ? 0 : i->last_to;
        Peer *p;

        if (k >= i->n_peers || !i->peers[k])
                return NULL;
        p = i->peers[k];
        if (tunnel_get_offloads(t) & ~p->offloads)
                return NULL;
        return peer_reserve(p);
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
        tunnel_set_read_buffer(i->tun, on_tun_read_buffer);
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

        /* All the kernel offers: a peer whose TUN takes less gets its frames segmented (peer_send()). */
        r = iface_create_tun(i, WIRE_OFFLOAD_ALL);
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

/* A queue that stayed empty over a period is not in a burst: what it grew to goes back. */
#define QUEUE_TRIM_PERIOD_USEC (10 * USEC_PER_SEC)

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata) {
        Iface *i = userdata;

        for (size_t j = 0; j < i->n_peers; j++)
                (void) queue_trim(i->peers[j]->queue);
        (void) sd_event_source_set_time_relative(s, QUEUE_TRIM_PERIOD_USEC);
        return 0;
}

int iface_start(Iface *i) {
        TapotunPluginKind kind = i->cfg->mode == TAPOTUN_MODE_SERVER ? TAPOTUN_PLUGIN_SERVER_TRANSPORT
                                                                     : TAPOTUN_PLUGIN_CLIENT_TRANSPORT;
        const TapotunPlugin *transport = manager_plugin(i->manager, kind);
        int r;

        r = sd_event_add_time_relative(i->manager->event, &i->trim, CLOCK_MONOTONIC, QUEUE_TRIM_PERIOD_USEC,
                                       USEC_PER_SEC, on_trim, i);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to set up a timer: %m");
        (void) sd_event_source_set_enabled(i->trim, SD_EVENT_ON);

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
        return metrics_client_start(i);
}

Iface *iface_free(Iface *i) {
        if (!i)
                return NULL;

        metrics_client_stop(i);
        if (i->transport)
                i->transport_ops->instance_free(i->transport);
        if (i->router)
                i->router_ops->instance_free(i->router);
        for (size_t j = 0; j < i->n_peers; j++)
                peer_free(i->peers[j]);
        free(i->peers);
        for (size_t j = 0; j < i->n_retired; j++)
                peer_free(i->retired[j]);
        free(i->retired);
        sd_event_source_disable_unref(i->sweep);
        sd_event_source_disable_unref(i->trim);
        tunnel_free(i->tun);
        free(i->pushed_routes);
        return mfree(i);
}

static int iface_tun_write(Iface *i, const uint8_t *frame, size_t len) {
        int r;

        r = tunnel_write_coalesced(i->tun, frame, len);
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
        if (!from)
                i->last_to = (size_t) to;
        (void) peer_send(i->peers[to], frame, len);
        return 0;
}

int iface_host_receive(TapotunPeer *p, void *stream, const void *frame, size_t len) {
        Iface *i = p->iface;
        int r;

        /* Its index means another client now: nothing of it is forwarded. */
        if (p->retired)
                return 0;

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

        peer_count_rx(p, len);
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

/* Takes over SC's routes. */
static int iface_apply_routes(Iface *i, WireServerConf *sc) {
        _cleanup_free_ TapotunPrefix *routes = TAKE_PTR(sc->routes);
        uint32_t table = i->cfg->mark_value ? i->cfg->mark_table : RT_TABLE_MAIN_ID;
        size_t n = sc->n_routes;
        int r;

        if (sc->n_routes_ignored > 0)
                log_tunnel_full_errno(i->cfg->name, LOG_WARNING, 0,
                                      "Server pushed %zu route(s) with host bits set; ignoring them.",
                                      sc->n_routes_ignored);

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

                r = tunnel_add_route(i->tun, &routes[l], table);
                if (r < 0) {
                        wire_prefix_format(&routes[l], s, sizeof s);
                        log_tunnel_full_errno(i->cfg->name, LOG_WARNING, r,
                                              "Cannot route %s (pushed by the server) into the tunnel: %m", s);
                }
        }

        free(i->pushed_routes);
        i->pushed_routes = TAKE_PTR(routes);
        i->n_pushed_routes = n;
        return 0;
}

int iface_host_configure(TapotunPeer *p, const TapotunHeader *resp, size_t n_resp) {
        Iface *i = p->iface;
        _cleanup_(wire_server_conf_done) WireServerConf sc = {};
        const TapotunHeader *bad = NULL;
        int r;

        if (i->cfg->mode != TAPOTUN_MODE_CLIENT)
                return -EINVAL;
        r = wire_server_conf_parse(resp, n_resp, i->cfg->accept_routes, &sc, &bad);
        if (r == -ENODATA)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, EBADMSG,
                                             "Server sent no x-tun-conf header; is this a tapotun server?");
        if (r == -EBADMSG)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r,
                                             "Server sent an invalid %s header: \"%.64s\"", bad->name,
                                             bad->value);
        if (r < 0)
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r,
                                             "Failed to take the server's headers: %m");
        p->offloads = sc.offloads;

        if (!i->tun) {
                /* Our TUN hands us only what the server accepts, and takes only what it may. */
                r = iface_create_tun(i, p->offloads & gso_offloads_allowed(i->cfg->offloads_mask));
                if (r < 0)
                        return r;
        }

        r = iface_apply_conf(i, &sc.conf, &sc.conf6);
        if (r < 0)
                return r;
        r = iface_add_mark(i, sc.conf6.family != 0);
        if (r < 0)
                return r;
        return iface_apply_routes(i, &sc);
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

/* ---------------------------------------------------------------------------------------------- */
/* Reload */

struct IfaceUpdate {
        const TapotunIfaceConfig *cfg;
        const TapotunRouterOps *router_ops;
        void *router;
        size_t n_peers;
        Peer **peers;   /* in cfg->clients order: kept peers and new ones */
        bool *kept;     /* peers[j] existed before */
        char **names;   /* the new name of a kept peer whose name changed */
        char **pushed;  /* what a kept peer was told under the old configuration */
        Peer **retired; /* room for i->retired plus every peer this update removes */
};

IfaceUpdate *iface_update_free(IfaceUpdate *u) {
        if (!u)
                return NULL;
        if (u->router)
                u->router_ops->instance_free(u->router);
        for (size_t j = 0; j < u->n_peers; j++) {
                if (u->peers && !u->kept[j])
                        peer_free(u->peers[j]);
                free(u->names[j]);
                free(u->pushed[j]);
        }
        free(u->peers);
        free(u->kept);
        free(u->names);
        free(u->pushed);
        free(u->retired);
        return mfree(u);
}

static Peer *iface_find_peer_by_token(Iface *i, const uint8_t token_sha1[static SHA_DIGEST_LENGTH]) {
        for (size_t j = 0; j < i->n_peers; j++)
                if (memcmp(i->peers[j]->client->token_sha1, token_sha1, SHA_DIGEST_LENGTH) == 0)
                        return i->peers[j];
        return NULL;
}

int iface_update_prepare(Iface *i, const TapotunIfaceConfig *cfg, IfaceUpdate **ret) {
        _cleanup_(iface_update_freep) IfaceUpdate *u = NULL;
        size_t n = cfg->n_clients, n_kept = 0;
        int r;

        if (i->cfg->mode != TAPOTUN_MODE_SERVER || cfg->mode != TAPOTUN_MODE_SERVER)
                return -EINVAL;

        u = calloc(1, sizeof(IfaceUpdate));
        if (!u)
                return -ENOMEM;
        u->cfg = cfg;
        u->n_peers = n;
        u->peers = calloc(MAX(n, 1u), sizeof(Peer *));
        u->kept = calloc(MAX(n, 1u), sizeof(bool));
        u->names = calloc(MAX(n, 1u), sizeof(char *));
        u->pushed = calloc(MAX(n, 1u), sizeof(char *));
        if (!u->peers || !u->kept || !u->names || !u->pushed)
                return -ENOMEM;

        for (size_t j = 0; j < n; j++) {
                const TapotunClientConfig *c = &cfg->clients[j];
                Peer *p = iface_find_peer_by_token(i, c->token_sha1);

                if (!p) {
                        r = peer_new(i, j, c->name, c, &u->peers[j]);
                        if (r < 0)
                                return r;
                        continue;
                }
                u->peers[j] = p;
                u->kept[j] = true;
                n_kept++;
                if (!streq(p->name, c->name)) {
                        u->names[j] = strdup(c->name);
                        if (!u->names[j])
                                return -ENOMEM;
                }
                r = peer_pushed_config(p, &u->pushed[j]);
                if (r < 0)
                        return r;
        }

        /* Tokens are unique within an interface, so every peer not kept is removed. */
        u->retired = reallocarray(NULL, i->n_retired + (i->n_peers - n_kept) + 1, sizeof(Peer *));
        if (!u->retired)
                return -ENOMEM;

        u->router_ops = i->router_ops;
        /* The router logs what it finds wrong. */
        r = u->router_ops->instance_new(&i->manager->host, cfg, &u->router);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(u);
        return 0;
}

static bool cfg_has_address(const TapotunIfaceConfig *c, const TapotunPrefix *a) {
        if (wire_prefix_equal(&c->net, a) || wire_prefix_equal(&c->net6, a))
                return true;
        for (size_t j = 0; j < c->n_ips; j++)
                if (wire_prefix_equal(&c->ips[j], a))
                        return true;
        return false;
}

static bool cfg_has_client_route(const TapotunIfaceConfig *c, const TapotunPrefix *a) {
        for (size_t j = 0; j < c->n_clients; j++)
                for (size_t k = 0; k < c->clients[j].n_routes; k++)
                        if (wire_prefix_equal(&c->clients[j].routes[k], a))
                                return true;
        return false;
}

/* Calls F on every address of C that D does not have. */
static int foreach_address_not_in(Iface *i, const TapotunIfaceConfig *c, const TapotunIfaceConfig *d,
                                  int (*f)(Iface *i, const TapotunPrefix *a)) {
        int r, ret = 0;

        if (c->net.family != 0 && !cfg_has_address(d, &c->net) && (r = f(i, &c->net)) < 0 && ret == 0)
                ret = r;
        if (c->net6.family != 0 && !cfg_has_address(d, &c->net6) && (r = f(i, &c->net6)) < 0 && ret == 0)
                ret = r;
        for (size_t j = 0; j < c->n_ips; j++)
                if (!cfg_has_address(d, &c->ips[j]) && (r = f(i, &c->ips[j])) < 0 && ret == 0)
                        ret = r;
        return ret;
}

static int iface_remove_address(Iface *i, const TapotunPrefix *a) {
        char s[64];
        int r;

        r = tunnel_remove_address(i->tun, a);
        if (r < 0) {
                wire_prefix_format(a, s, sizeof s);
                return log_tunnel_full_errno(i->cfg->name, LOG_ERR, r, "Failed to remove address %s: %m", s);
        }
        return 0;
}

/* The kernel side of a server follows the move from OLD to i->cfg. */
static int iface_update_kernel(Iface *i, const TapotunIfaceConfig *old) {
        const TapotunIfaceConfig *c = i->cfg;
        char s[64];
        int r, ret = 0;

        if (old->mtu != c->mtu) {
                r = tunnel_set_mtu_up(i->tun, c->mtu);
                if (r < 0)
                        ret = log_tunnel_full_errno(c->name, LOG_ERR, r, "Failed to set MTU %u: %m", c->mtu);
        }

        /* Old addresses go first: the same address with another prefix length is a new one. */
        r = foreach_address_not_in(i, old, c, iface_remove_address);
        if (r < 0 && ret == 0)
                ret = r;
        r = foreach_address_not_in(i, c, old, iface_add_address);
        if (r < 0 && ret == 0)
                ret = r;

        for (size_t j = 0; j < old->n_clients; j++)
                for (size_t k = 0; k < old->clients[j].n_routes; k++) {
                        const TapotunPrefix *a = &old->clients[j].routes[k];

                        if (cfg_has_client_route(c, a))
                                continue;
                        r = tunnel_remove_route(i->tun, a, RT_TABLE_MAIN_ID);
                        if (r < 0) {
                                wire_prefix_format(a, s, sizeof s);
                                r = log_tunnel_full_errno(c->name, LOG_ERR, r, "Failed to remove route %s: %m",
                                                          s);
                                if (ret == 0)
                                        ret = r;
                        }
                }
        for (size_t j = 0; j < c->n_clients; j++)
                for (size_t k = 0; k < c->clients[j].n_routes; k++)
                        if (!cfg_has_client_route(old, &c->clients[j].routes[k])) {
                                r = iface_add_route(i, &c->clients[j].routes[k], RT_TABLE_MAIN_ID);
                                if (r < 0 && ret == 0)
                                        ret = r;
                        }

        if (old->mark_value != c->mark_value || old->mark_table != c->mark_table ||
            old->mark_priority != c->mark_priority || (old->net6.family != 0) != (c->net6.family != 0)) {
                if (c->mark_value == 0) {
                        r = tunnel_remove_mark(i->tun);
                        if (r < 0)
                                r = log_tunnel_full_errno(c->name, LOG_ERR, r,
                                                          "Failed to remove the fwmark policy routing: %m");
                } else
                        r = iface_add_mark(i, c->net6.family != 0);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static int on_sweep(sd_event_source *s, void *userdata) {
        Iface *i = userdata;
        size_t n = 0;

        for (size_t j = 0; j < i->n_retired; j++)
                if (peer_has_streams(i->retired[j]))
                        i->retired[n++] = i->retired[j];
                else
                        peer_free(i->retired[j]);
        i->n_retired = n;
        return 0;
}

void iface_retired_peer_idle(Iface *i) {
        if (!i->sweep && sd_event_add_defer(i->manager->event, &i->sweep, on_sweep, i) < 0)
                return; /* iface_free() frees it then */
        (void) sd_event_source_set_enabled(i->sweep, SD_EVENT_ONESHOT);
}

int iface_update_apply(Iface *i, IfaceUpdate *u) {
        _cleanup_(iface_update_freep) IfaceUpdate *freed = u;
        const TapotunIfaceConfig *old = i->cfg;
        void *old_router;
        Peer **old_peers;
        int r;

        /* Clients whose token is gone lose their sessions now; their peers wait for the streams to end. */
        if (i->n_retired > 0)
                memcpy(u->retired, i->retired, i->n_retired * sizeof(Peer *));
        free(i->retired);
        i->retired = TAKE_PTR(u->retired);
        for (size_t j = 0; j < i->n_peers; j++) {
                Peer *p = i->peers[j];
                bool kept = false;

                for (size_t k = 0; k < u->n_peers && !kept; k++)
                        kept = u->kept[k] && u->peers[k] == p;
                if (kept)
                        continue;

                log_peer_full_errno(p->name, LOG_INFO, 0, "Removed from the configuration%s.",
                                    peer_has_streams(p) ? ", disconnecting" : "");
                p->retired = true;
                p->client = NULL;
                if (i->transport)
                        i->transport_ops->disconnect(i->transport, p);
                if (peer_has_streams(p))
                        i->retired[i->n_retired++] = p;
                else
                        peer_free(p);
        }

        /* Router, peers and configuration change together: route() answers with indices into peers. */
        old_router = i->router;
        old_peers = i->peers;
        i->router = TAKE_PTR(u->router);
        i->peers = TAKE_PTR(u->peers);
        i->n_peers = u->n_peers;
        i->cfg = u->cfg;
        for (size_t j = 0; j < i->n_peers; j++) {
                Peer *p = i->peers[j];

                p->index = j;
                p->client = &i->cfg->clients[j];
                if (u->names[j]) {
                        free(p->name);
                        p->name = TAKE_PTR(u->names[j]);
                }
        }
        if (old_router)
                i->router_ops->instance_free(old_router);
        free(old_peers);

        /* A kept client that would now be told another address, MTU or routes reconnects to learn them. */
        for (size_t j = 0; j < i->n_peers; j++) {
                _cleanup_free_ char *now = NULL;
                Peer *p = i->peers[j];

                if (!u->kept[j])
                        continue;
                r = peer_pushed_config(p, &now);
                if (r >= 0 && streq(now, u->pushed[j]))
                        continue;
                if (peer_has_streams(p))
                        log_peer_full_errno(p->name, LOG_INFO, 0,
                                            "What this client is told on connecting changed, disconnecting it "
                                            "so that it reconnects.");
                if (i->transport)
                        i->transport_ops->disconnect(i->transport, p);
        }

        return iface_update_kernel(i, old);
}

int iface_restart_client(Iface *i, const TapotunIfaceConfig *cfg) {
        const TapotunIfaceConfig *old = i->cfg;
        const TapotunPlugin *transport = manager_plugin(i->manager, TAPOTUN_PLUGIN_CLIENT_TRANSPORT);
        bool mark_changed = old->mark_value != cfg->mark_value || old->mark_table != cfg->mark_table ||
                            old->mark_priority != cfg->mark_priority;
        int r, ret = 0;

        if (old->mode != TAPOTUN_MODE_CLIENT || cfg->mode != TAPOTUN_MODE_CLIENT || !transport)
                return -EINVAL;

        if (i->transport) {
                i->transport_ops->instance_free(i->transport);
                i->transport = NULL;
        }

        /* Pushed routes stay through the reconnect, so that their traffic does not leak past the tunnel
         * meanwhile, unless they now belong in another table or are no longer wanted. */
        if (i->tun && (mark_changed || old->accept_routes != cfg->accept_routes)) {
                uint32_t table = old->mark_value ? old->mark_table : RT_TABLE_MAIN_ID;

                for (size_t k = 0; k < i->n_pushed_routes; k++)
                        (void) tunnel_remove_route(i->tun, &i->pushed_routes[k], table);
                i->pushed_routes = mfree(i->pushed_routes);
                i->n_pushed_routes = 0;
        }

        i->cfg = cfg;
        if (i->tun && mark_changed) {
                if (cfg->mark_value == 0) {
                        r = tunnel_remove_mark(i->tun);
                        if (r < 0)
                                ret = log_tunnel_full_errno(cfg->name, LOG_ERR, r,
                                                            "Failed to remove the fwmark policy routing: %m");
                } else if (i->configured)
                        ret = iface_add_mark(i, i->conf6.family != 0);
        }

        i->transport_ops = transport->ops;
        r = i->transport_ops->instance_new(&i->manager->host, i, cfg, &i->transport);
        if (r < 0)
                return log_tunnel_full_errno(cfg->name, LOG_ERR, r, "Transport plugin '%s' failed to start: %m",
                                             transport->name);
        return ret;
}
