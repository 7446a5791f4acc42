/* SPDX-License-Identifier: MIT */
#include "bus-names.h"
#include "iface-bus.h"
#include "iface.h"
#include "manager-bus.h"
#include "peer-bus.h"

int peer_bus_path(const Peer *p, char **ret) {
        return sd_bus_path_encode_many(ret, TAPOTUN_BUS_PEER_PATH "/%/%", p->iface->cfg->name, p->name);
}

int peer_bus_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                  sd_bus_error *error) {
        _cleanup_free_ char *tunnel = NULL, *name = NULL;
        Iface *i;
        Peer *p;
        int r;

        r = sd_bus_path_decode_many(path, TAPOTUN_BUS_PEER_PATH "/%/%", &tunnel, &name);
        if (r <= 0)
                return r;
        i = manager_bus_find_iface(userdata, tunnel);
        if (!i)
                return 0;
        p = manager_bus_find_peer(i, name);
        if (!p)
                return 0;
        *ret_found = p;
        return 1;
}

int peer_bus_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes,
                             sd_bus_error *error) {
        _cleanup_(strv_freep) char **l = NULL;
        Manager *m = userdata;
        size_t n = 0, k = 0;
        int r;

        for (size_t t = 0; t < m->n_ifaces; t++)
                n += m->ifaces[t]->n_peers;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t t = 0; t < m->n_ifaces; t++)
                for (size_t j = 0; j < m->ifaces[t]->n_peers; j++) {
                        r = peer_bus_path(m->ifaces[t]->peers[j], &l[k++]);
                        if (r < 0)
                                return r;
                }
        *ret_nodes = TAKE_PTR(l);
        return 1;
}

typedef enum PeerPrefixes {
        PEER_ADDRESSES,
        PEER_ROUTES,
        PEER_SOURCES,
} PeerPrefixes;

/* What the configuration says about the client behind P; nothing for the server peer of a client. */
static int peer_prefixes(Peer *p, PeerPrefixes which, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        const TapotunClientConfig *c = p->client;
        int r = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (c && which == PEER_ADDRESSES) {
                r = bus_strv_append_prefix(&l, &c->ip, true);
                if (r >= 0)
                        r = bus_strv_append_prefix(&l, &c->ip6, true);
        } else if (c && which == PEER_ROUTES) {
                for (size_t k = 0; k < c->n_routes && r >= 0; k++)
                        r = bus_strv_append_prefix(&l, &c->routes[k], false);
        } else if (c)
                for (size_t k = 0; k < c->n_sources && r >= 0; k++)
                        r = bus_strv_append_prefix(&l, &c->sources[k], true);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

/* The offloads frames of this connection may use: on a server what it answered in x-tun-offload, on a
 * client what its server answered. */
static uint32_t peer_offloads(Peer *p) {
        if (p->client)
                return p->iface->tun ? tunnel_get_offloads(p->iface->tun) & p->offloads : 0;
        return p->offloads;
}

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;

        return sd_bus_message_append(reply, "s", p->name);
}

static int property_get_tunnel(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *t = NULL;
        Peer *p = userdata;
        int r;

        r = iface_bus_path(p->iface, &t);
        if (r < 0)
                return r;
        return sd_bus_message_append(reply, "o", t);
}

static int property_get_prefixes(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        r = peer_prefixes(userdata,
                          streq(property, "Addresses") ? PEER_ADDRESSES :
                          streq(property, "Routes") ? PEER_ROUTES : PEER_SOURCES,
                          &l);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, l);
}

static int property_get_offloads(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        r = bus_strv_from_offloads(peer_offloads(userdata), &l);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, l);
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;

        return sd_bus_message_append(reply, "s", peer_state_to_string(p->state));
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;
        const char *s = streq(property, "Remote") ? p->remote : p->last_error;

        return sd_bus_message_append(reply, "s", s ?: "");
}

static int property_get_counter(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;
        uint64_t v;

        if (streq(property, "ConnectedSince"))
                v = p->connected_since;
        else if (streq(property, "LastSeen"))
                v = p->last_seen;
        else if (streq(property, "RxPackets"))
                v = p->stats.rx_packets;
        else if (streq(property, "RxBytes"))
                v = p->stats.rx_bytes;
        else if (streq(property, "TxPackets"))
                v = p->stats.tx_packets;
        else if (streq(property, "TxBytes"))
                v = p->stats.tx_bytes;
        else
                v = queue_bytes(p->queue);
        return sd_bus_message_append(reply, "t", v);
}

static int property_get_drops(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Peer *p = userdata;

        return bus_append_drops(reply, p->stats.drops);
}

/* State, LastError, ConnectedSince and Remote change together in peer_update_state(), which signals them;
 * counters and what follows from the configuration are read when asked for. */
const sd_bus_vtable peer_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Tunnel", "o", property_get_tunnel, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastError", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ConnectedSince", "t", property_get_counter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Remote", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastSeen", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Addresses", "as", property_get_prefixes, 0, 0),
        SD_BUS_PROPERTY("Routes", "as", property_get_prefixes, 0, 0),
        SD_BUS_PROPERTY("Sources", "as", property_get_prefixes, 0, 0),
        SD_BUS_PROPERTY("Offloads", "as", property_get_offloads, 0, 0),
        SD_BUS_PROPERTY("RxPackets", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("RxBytes", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("TxPackets", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("TxBytes", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("QueuedBytes", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Drops", "a{st}", property_get_drops, 0, 0),
        SD_BUS_VTABLE_END,
};

int peer_bus_emit_changed(sd_bus *bus, Peer *p) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = peer_bus_path(p, &path);
        if (r < 0)
                return r;
        return sd_bus_emit_properties_changed(bus, path, TAPOTUN_BUS_PEER_INTERFACE, "State", "LastError",
                                              "ConnectedSince", "Remote", NULL);
}

int peer_bus_describe(Peer *p, json_t **ret) {
        _cleanup_(strv_freep) char **addresses = NULL, **routes = NULL, **sources = NULL, **offloads = NULL;
        _cleanup_free_ char *path = NULL;
        json_t *o, *since, *seen;
        int r;

        r = peer_bus_path(p, &path);
        if (r < 0)
                return r;
        r = peer_prefixes(p, PEER_ADDRESSES, &addresses);
        if (r < 0)
                return r;
        r = peer_prefixes(p, PEER_ROUTES, &routes);
        if (r < 0)
                return r;
        r = peer_prefixes(p, PEER_SOURCES, &sources);
        if (r < 0)
                return r;
        r = bus_strv_from_offloads(peer_offloads(p), &offloads);
        if (r < 0)
                return r;

        /* Timestamps are CLOCK_REALTIME microseconds, null when there is none. */
        since = p->connected_since ? json_integer((json_int_t) p->connected_since) : json_null();
        seen = p->last_seen ? json_integer((json_int_t) p->last_seen) : json_null();
        o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:o, s:o, s:o, s:o, s:o, s:o,"
                      " s:I, s:I, s:I, s:I, s:I, s:o}",
                      "name", p->name,
                      "tunnel", p->iface->cfg->name,
                      "path", path,
                      "state", peer_state_to_string(p->state),
                      "last_error", p->last_error,
                      "remote", p->remote && p->remote[0] ? p->remote : NULL,
                      "connected_since", since,
                      "last_seen", seen,
                      "addresses", bus_json_strv(addresses),
                      "routes", bus_json_strv(routes),
                      "sources", bus_json_strv(sources),
                      "offloads", bus_json_strv(offloads),
                      "rx_packets", (json_int_t) p->stats.rx_packets,
                      "rx_bytes", (json_int_t) p->stats.rx_bytes,
                      "tx_packets", (json_int_t) p->stats.tx_packets,
                      "tx_bytes", (json_int_t) p->stats.tx_bytes,
                      "queued_bytes", (json_int_t) queue_bytes(p->queue),
                      "drops", bus_json_drops(p->stats.drops));
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}
