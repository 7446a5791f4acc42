/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "bus-names.h"
#include "iface-bus.h"
#include "manager-bus.h"
#include "peer-bus.h"

int iface_bus_path(const Iface *i, char **ret) {
        return sd_bus_path_encode(TAPOTUN_BUS_TUNNEL_PATH, i->cfg->name, ret);
}

int iface_bus_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                   sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Iface *i;
        int r;

        r = sd_bus_path_decode(path, TAPOTUN_BUS_TUNNEL_PATH, &name);
        if (r <= 0)
                return r;
        i = manager_bus_find_iface(userdata, name);
        if (!i)
                return 0;
        *ret_found = i;
        return 1;
}

int iface_bus_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes,
                              sd_bus_error *error) {
        _cleanup_(strv_freep) char **l = NULL;
        Manager *m = userdata;
        int r;

        l = calloc(m->n_ifaces + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t k = 0; k < m->n_ifaces; k++) {
                r = iface_bus_path(m->ifaces[k], &l[k]);
                if (r < 0)
                        return r;
        }
        *ret_nodes = TAKE_PTR(l);
        return 1;
}

/* A server's addresses come from its configuration; a client's from its server, once connected. */
static int iface_addresses(Iface *i, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        const TapotunIfaceConfig *c = i->cfg;
        int r = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (c->mode == TAPOTUN_MODE_SERVER) {
                r = bus_strv_append_prefix(&l, &c->net, false);
                if (r >= 0)
                        r = bus_strv_append_prefix(&l, &c->net6, false);
                for (size_t k = 0; k < c->n_ips && r >= 0; k++)
                        r = bus_strv_append_prefix(&l, &c->ips[k], false);
        } else if (i->configured) {
                if (i->conf.address.s_addr != 0) {
                        TapotunPrefix a = { .family = AF_INET, .prefixlen = i->conf.prefixlen,
                                            .addr.in = i->conf.address };

                        r = bus_strv_append_prefix(&l, &a, false);
                }
                if (r >= 0)
                        r = bus_strv_append_prefix(&l, &i->conf6, false);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

/* A server's local networks ("routes"); the networks a client's server pushed. */
static int iface_routes(Iface *i, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        const TapotunPrefix *p = i->cfg->mode == TAPOTUN_MODE_SERVER ? i->cfg->routes : i->pushed_routes;
        size_t n = i->cfg->mode == TAPOTUN_MODE_SERVER ? i->cfg->n_routes : i->n_pushed_routes;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                r = bus_strv_append_prefix(&l, &p[k], false);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static uint32_t iface_mtu(Iface *i) {
        if (i->cfg->mode == TAPOTUN_MODE_SERVER)
                return i->cfg->mtu;
        return i->configured ? i->conf.mtu : 0;
}

/* "127.0.0.1:8080", "[::]:8080"; "" on a client. */
static void iface_listen(Iface *i, char *buf, size_t size) {
        const TapotunIfaceConfig *c = i->cfg;

        if (c->mode != TAPOTUN_MODE_SERVER || !c->listen)
                buf[0] = '\0';
        else
                (void) snprintf(buf, size, strchr(c->listen, ':') ? "[%s]:%u" : "%s:%u", c->listen, c->port);
}

static TunnelStats iface_stats(Iface *i) {
        TunnelStats s = {};

        if (i->tun)
                tunnel_get_stats(i->tun, &s);
        return s;
}

static int iface_peer_paths(Iface *i, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        l = calloc(i->n_peers + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t j = 0; j < i->n_peers; j++) {
                r = peer_bus_path(i->peers[j], &l[j]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Iface *i = userdata;

        return sd_bus_message_append(reply, "s", i->cfg->name);
}

static int property_get_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Iface *i = userdata;

        return sd_bus_message_append(reply, "s", tapotun_mode_to_string(i->cfg->mode));
}

static int property_get_server(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Iface *i = userdata;

        return sd_bus_message_append(reply, "s", i->cfg->mode == TAPOTUN_MODE_CLIENT ? i->cfg->server : "");
}

static int property_get_listen(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        char buf[INET6_ADDRSTRLEN + 16];

        iface_listen(userdata, buf, sizeof buf);
        return sd_bus_message_append(reply, "s", buf);
}

static int property_get_strv(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **l = NULL;
        Iface *i = userdata;
        int r;

        if (streq(property, "Addresses"))
                r = iface_addresses(i, &l);
        else if (streq(property, "Routes"))
                r = iface_routes(i, &l);
        else
                r = bus_strv_from_offloads(i->tun ? tunnel_get_offloads(i->tun) : 0, &l);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, l);
}

static int property_get_mtu(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", iface_mtu(userdata));
}

static int property_get_peers(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **l = NULL;
        int r;

        r = iface_peer_paths(userdata, &l);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (char **p = l; *p; p++) {
                r = sd_bus_message_append(reply, "o", *p);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_counter(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Iface *i = userdata;
        TunnelStats s = iface_stats(i);
        uint64_t v;

        if (streq(property, "ReadPackets"))
                v = s.rx_packets;
        else if (streq(property, "ReadBytes"))
                v = s.rx_bytes;
        else if (streq(property, "WrittenPackets"))
                v = s.tx_packets;
        else if (streq(property, "WrittenBytes"))
                v = s.tx_bytes;
        else if (streq(property, "WriteDrops"))
                v = s.tx_dropped;
        else
                v = i->icmp_sent;
        return sd_bus_message_append(reply, "t", v);
}

static int property_get_drops(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Iface *i = userdata;

        return bus_append_drops(reply, i->drops);
}

/* Name and Mode identify the object. The rest changes with a reload or, on a client, with what its
 * server pushes, and is read when asked for (EmitsChangedSignal=false); the peers' state is signalled. */
const sd_bus_vtable iface_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Mode", "s", property_get_mode, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Server", "s", property_get_server, 0, 0),
        SD_BUS_PROPERTY("Listen", "s", property_get_listen, 0, 0),
        SD_BUS_PROPERTY("Addresses", "as", property_get_strv, 0, 0),
        SD_BUS_PROPERTY("Routes", "as", property_get_strv, 0, 0),
        SD_BUS_PROPERTY("MTU", "u", property_get_mtu, 0, 0),
        SD_BUS_PROPERTY("Offloads", "as", property_get_strv, 0, 0),
        SD_BUS_PROPERTY("Peers", "ao", property_get_peers, 0, 0),
        SD_BUS_PROPERTY("ReadPackets", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("ReadBytes", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("WrittenPackets", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("WrittenBytes", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("WriteDrops", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("UnreachablesSent", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Drops", "a{st}", property_get_drops, 0, 0),
        SD_BUS_VTABLE_END,
};

int iface_bus_describe(Iface *i, json_t **ret) {
        _cleanup_(strv_freep) char **addresses = NULL, **routes = NULL, **offloads = NULL;
        _cleanup_free_ char *path = NULL;
        json_auto_t *peers = NULL;
        char listen[INET6_ADDRSTRLEN + 16];
        TunnelStats s = iface_stats(i);
        json_t *o;
        int r;

        r = iface_bus_path(i, &path);
        if (r < 0)
                return r;
        r = iface_addresses(i, &addresses);
        if (r < 0)
                return r;
        r = iface_routes(i, &routes);
        if (r < 0)
                return r;
        r = bus_strv_from_offloads(i->tun ? tunnel_get_offloads(i->tun) : 0, &offloads);
        if (r < 0)
                return r;
        iface_listen(i, listen, sizeof listen);

        peers = json_array();
        if (!peers)
                return -ENOMEM;
        for (size_t j = 0; j < i->n_peers; j++) {
                json_t *p;

                r = peer_bus_describe(i->peers[j], &p);
                if (r < 0)
                        return r;
                if (json_array_append_new(peers, p) < 0)
                        return -ENOMEM;
        }

        /* "o" takes the references, also when packing fails on a NULL from an allocation. */
        o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:I, s:o, s:o, s:o,"
                      " s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:O}",
                      "name", i->cfg->name,
                      "path", path,
                      "mode", tapotun_mode_to_string(i->cfg->mode),
                      "listen", listen[0] ? listen : NULL,
                      "server", i->cfg->mode == TAPOTUN_MODE_CLIENT ? i->cfg->server : NULL,
                      "mtu", (json_int_t) iface_mtu(i),
                      "addresses", bus_json_strv(addresses),
                      "routes", bus_json_strv(routes),
                      "offloads", bus_json_strv(offloads),
                      "read_packets", (json_int_t) s.rx_packets,
                      "read_bytes", (json_int_t) s.rx_bytes,
                      "written_packets", (json_int_t) s.tx_packets,
                      "written_bytes", (json_int_t) s.tx_bytes,
                      "write_drops", (json_int_t) s.tx_dropped,
                      "unreachables_sent", (json_int_t) i->icmp_sent,
                      "drops", bus_json_drops(i->drops),
                      "peers", peers);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}
