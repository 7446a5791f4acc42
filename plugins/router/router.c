/* SPDX-License-Identifier: MIT */
/* The server's forwarding decision for one interface (README.md in this directory has the rules). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include <tapotun/plugin.h>

#include "prefix-table.h"

#define PLUGIN_NAME "router"

/* The return value space of route(): client indices, the tunnel, negated drop reasons. */
_Static_assert(-TAPOTUN_DROP_NO_ROUTE != TAPOTUN_ROUTE_TUNNEL, "drop reasons overlap TAPOTUN_ROUTE_TUNNEL");

/* Owner value for "skip no owner" in lookups: no client has this index. */
#define NO_CLIENT UINT32_MAX

typedef struct Router {
        size_t n_clients;
        bool *allow_spoofing;  /* per client */
        PrefixTable *owned;    /* client addresses and client routes -> client */
        PrefixTable *sources;  /* pinned source addresses -> client */
        PrefixTable *local;    /* the server's own addresses and the top-level routes */
} Router;

typedef struct Packet {
        bool v6;
        PrefixAddr src;
        PrefixAddr dst;
} Packet;

static void router_free(void *instance) {
        Router *r = instance;

        if (!r)
                return;
        prefix_table_free(r->owned);
        prefix_table_free(r->sources);
        prefix_table_free(r->local);
        free(r->allow_spoofing);
        free(r);
}

/* The prefixes of one table, collected from the configuration before the table is built. */
typedef struct Builder {
        const TapotunHost *host;
        const TapotunIfaceConfig *cfg;
        PrefixItem *items;
        size_t n_items;
} Builder;

static int builder_init(Builder *b, const TapotunHost *host, const TapotunIfaceConfig *cfg, size_t n_max) {
        *b = (Builder) {
                .host = host,
                .cfg = cfg,
                .items = calloc(n_max > 0 ? n_max : 1, sizeof(PrefixItem)),
        };
        return b->items ? 0 : -ENOMEM;
}

/* Appends one prefix, or logs what is wrong with it: CLIENT (NULL at the top level), WHAT and INDEX
 * (SIZE_MAX for a single value) say where it is. ADDRESS takes only the address of P. */
static int builder_add(Builder *b, const char *client, const char *what, size_t index,
                       const TapotunPrefix *p, bool address, uint32_t owner) {
        char where[32] = "";
        int r;

        r = prefix_item_init(p, address, owner, &b->items[b->n_items]);
        if (r < 0) {
                if (index != SIZE_MAX)
                        snprintf(where, sizeof where, "[%zu]", index);
                return tapotun_host_log(b->host, LOG_ERR, EINVAL, PLUGIN_NAME, b->cfg->name,
                                        "%s%s%s%s%s %s.", client ? "client '" : "", client ?: "",
                                        client ? "': " : "", what, where,
                                        r == -EAFNOSUPPORT ? "has no known address family"
                                                           : "has a prefix length beyond its family's");
        }
        b->n_items++;
        return 0;
}

/* Builds the table and releases the items, whatever R (the collection's result) is. */
static int builder_finish(Builder *b, int r, PrefixTable **ret) {
        if (r >= 0)
                r = prefix_table_new(b->items, b->n_items, ret);
        free(b->items);
        return r;
}

static const char *client_label(const TapotunClientConfig *c) {
        return c->name ?: "(unnamed)";
}

static int router_build_owned(const TapotunHost *host, const TapotunIfaceConfig *cfg, PrefixTable **ret) {
        size_t n_max = 0;
        Builder b;
        int r;

        for (size_t i = 0; i < cfg->n_clients; i++)
                n_max += 2 + cfg->clients[i].n_routes;
        r = builder_init(&b, host, cfg, n_max);
        if (r < 0)
                return r;

        for (size_t i = 0; i < cfg->n_clients && r >= 0; i++) {
                const TapotunClientConfig *c = &cfg->clients[i];

                /* A client's address is a single address, whatever prefix length came with it. */
                if (c->ip.family != 0)
                        r = builder_add(&b, client_label(c), "ip", SIZE_MAX, &c->ip, true, i);
                if (r >= 0 && c->ip6.family != 0)
                        r = builder_add(&b, client_label(c), "ip6", SIZE_MAX, &c->ip6, true, i);
                for (size_t j = 0; j < c->n_routes && r >= 0; j++)
                        r = builder_add(&b, client_label(c), "routes", j, &c->routes[j], false, i);
        }
        return builder_finish(&b, r, ret);
}

static int router_build_sources(const TapotunHost *host, const TapotunIfaceConfig *cfg, PrefixTable **ret) {
        size_t n_max = 0;
        Builder b;
        int r;

        for (size_t i = 0; i < cfg->n_clients; i++)
                n_max += cfg->clients[i].n_sources;
        r = builder_init(&b, host, cfg, n_max);
        if (r < 0)
                return r;

        for (size_t i = 0; i < cfg->n_clients && r >= 0; i++) {
                const TapotunClientConfig *c = &cfg->clients[i];

                for (size_t j = 0; j < c->n_sources && r >= 0; j++) {
                        const TapotunPrefix *s = &c->sources[j];

                        /* A pinned source is matched exactly; a network here is a configuration error, not
                         * something to widen or narrow silently. */
                        if ((s->family == AF_INET || s->family == AF_INET6) &&
                            s->prefixlen != (s->family == AF_INET6 ? 128 : 32))
                                r = tapotun_host_log(host, LOG_ERR, EINVAL, PLUGIN_NAME, cfg->name,
                                                     "client '%s': sources[%zu] is a network (/%u), not a "
                                                     "single address.",
                                                     client_label(c), j, s->prefixlen);
                        else
                                r = builder_add(&b, client_label(c), "sources", j, s, true, i);
                }
        }
        return builder_finish(&b, r, ret);
}

static int router_build_local(const TapotunHost *host, const TapotunIfaceConfig *cfg, PrefixTable **ret) {
        Builder b;
        int r;

        r = builder_init(&b, host, cfg, 2 + cfg->n_ips + cfg->n_routes);
        if (r < 0)
                return r;

        /* net, net6 and ips carry the server's address with the tunnel's prefix length: only the address
         * is the server's. */
        if (cfg->net.family != 0)
                r = builder_add(&b, NULL, "net", SIZE_MAX, &cfg->net, true, 0);
        if (r >= 0 && cfg->net6.family != 0)
                r = builder_add(&b, NULL, "net6", SIZE_MAX, &cfg->net6, true, 0);
        for (size_t i = 0; i < cfg->n_ips && r >= 0; i++)
                r = builder_add(&b, NULL, "ips", i, &cfg->ips[i], true, 0);
        for (size_t i = 0; i < cfg->n_routes && r >= 0; i++)
                r = builder_add(&b, NULL, "routes", i, &cfg->routes[i], false, 0);
        return builder_finish(&b, r, ret);
}

static int router_new(const TapotunHost *host, const TapotunIfaceConfig *cfg, void **ret) {
        Router *router;
        int r;

        if (!host || !host->logv || !cfg || !ret)
                return -EINVAL;
        if (cfg->mode != TAPOTUN_MODE_SERVER)
                return tapotun_host_log(host, LOG_ERR, EINVAL, PLUGIN_NAME, cfg->name,
                                        "Routing is only done on a server interface.");
        /* route() returns client indices as int, and the owner tables hold them as uint32_t. */
        if (cfg->n_clients > INT_MAX || cfg->n_clients >= NO_CLIENT)
                return tapotun_host_log(host, LOG_ERR, E2BIG, PLUGIN_NAME, cfg->name,
                                        "Too many clients (%zu).", cfg->n_clients);

        router = calloc(1, sizeof(Router));
        if (!router)
                return -ENOMEM;
        router->n_clients = cfg->n_clients;
        router->allow_spoofing = calloc(cfg->n_clients > 0 ? cfg->n_clients : 1, sizeof(bool));
        if (!router->allow_spoofing) {
                router_free(router);
                return -ENOMEM;
        }
        for (size_t i = 0; i < cfg->n_clients; i++)
                router->allow_spoofing[i] = cfg->clients[i].allow_spoofing;

        r = router_build_owned(host, cfg, &router->owned);
        if (r >= 0)
                r = router_build_sources(host, cfg, &router->sources);
        if (r >= 0)
                r = router_build_local(host, cfg, &router->local);
        if (r < 0) {
                router_free(router);
                return r;
        }

        tapotun_host_log(host, LOG_DEBUG, 0, PLUGIN_NAME, cfg->name,
                         "Routing %zu clients: %zu client prefixes, %zu pinned sources, %zu local prefixes.",
                         router->n_clients, prefix_table_size(router->owned),
                         prefix_table_size(router->sources), prefix_table_size(router->local));
        *ret = router;
        return 0;
}

static int packet_parse(const uint8_t *p, size_t len, Packet *ret) {
        size_t header, total;

        if (!p || len == 0)
                return -TAPOTUN_DROP_NOT_IP;

        switch (p[0] >> 4) {
        case 4:
                if (len < 20)
                        return -TAPOTUN_DROP_INVALID;
                header = (size_t) (p[0] & 0x0f) * 4;
                total = (size_t) p[2] << 8 | p[3];
                if (header < 20 || header > len || total < header || total > len)
                        return -TAPOTUN_DROP_INVALID;
                *ret = (Packet) {
                        .src = prefix_addr_from_bytes(false, p + 12),
                        .dst = prefix_addr_from_bytes(false, p + 16),
                };
                return 0;
        case 6:
                if (len < 40)
                        return -TAPOTUN_DROP_INVALID;
                total = 40 + ((size_t) p[4] << 8 | p[5]);
                if (total > len)
                        return -TAPOTUN_DROP_INVALID;
                *ret = (Packet) {
                        .v6 = true,
                        .src = prefix_addr_from_bytes(true, p + 8),
                        .dst = prefix_addr_from_bytes(true, p + 24),
                };
                return 0;
        default:
                return -TAPOTUN_DROP_NOT_IP;
        }
}

/* The first owner other than SKIP of the longest prefix of T containing A that has one; -1 when none. */
static int64_t lookup_owner(const PrefixTable *t, bool v6, PrefixAddr a, uint32_t skip) {
        unsigned cursor = 0;
        const PrefixEntry *e;

        /* Owners are distinct: when the first is SKIP, the second is not. */
        while ((e = prefix_table_next(t, v6, a, &cursor)))
                if (e->owners[0] != skip)
                        return e->owners[0];
                else if (e->n_owners > 1)
                        return e->owners[1];
        return -1;
}

/* Whether any prefix of T containing A has OWNER among its owners. */
static bool lookup_has_owner(const PrefixTable *t, bool v6, PrefixAddr a, uint32_t owner) {
        unsigned cursor = 0;
        const PrefixEntry *e;

        while ((e = prefix_table_next(t, v6, a, &cursor))) {
                size_t lo = 0, hi = e->n_owners;

                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;

                        if (e->owners[mid] == owner)
                                return true;
                        if (e->owners[mid] < owner)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
        }
        return false;
}

static bool lookup_any(const PrefixTable *t, bool v6, PrefixAddr a) {
        unsigned cursor = 0;

        return prefix_table_next(t, v6, a, &cursor);
}

/* Multicast, broadcast and IPv6 link-local traffic belongs to one link: the kernel's neighbour and router
 * discovery on the TUNs, never forwarded between hosts. */
static bool packet_link_scoped(const Packet *p) {
        if (!p->v6)
                return (p->dst.lo >> 28) == 0xe || p->dst.lo == 0xffffffffu;
        return (p->dst.hi >> 56) == 0xff || (p->src.hi >> 54) == (0xfe80u >> 6) ||
               (p->dst.hi >> 54) == (0xfe80u >> 6);
}

static int router_route(void *instance, int from, const uint8_t *packet, size_t len) {
        const Router *r = instance;
        Packet p;
        int64_t to;
        uint32_t c;
        int k;

        k = packet_parse(packet, len, &p);
        if (k < 0)
                return k;
        if (packet_link_scoped(&p))
                return -TAPOTUN_DROP_LINK_LOCAL;

        if (from == TAPOTUN_ROUTE_TUNNEL) {
                to = lookup_owner(r->owned, p.v6, p.dst, NO_CLIENT);
                if (to < 0)
                        to = lookup_owner(r->sources, p.v6, p.src, NO_CLIENT);
                return to >= 0 ? (int) to : -TAPOTUN_DROP_NO_ROUTE;
        }

        if (from < 0 || (size_t) from >= r->n_clients)
                return -TAPOTUN_DROP_INVALID;
        c = (uint32_t) from;

        if (!r->allow_spoofing[c] && !lookup_has_owner(r->owned, p.v6, p.src, c) &&
            !lookup_has_owner(r->sources, p.v6, p.src, c))
                return -TAPOTUN_DROP_SPOOFED;

        to = lookup_owner(r->owned, p.v6, p.dst, c);
        if (to >= 0)
                return (int) to;

        /* A source pinned to another client follows its pin, except towards the server itself and the
         * networks behind it. */
        to = lookup_owner(r->sources, p.v6, p.src, c);
        if (to >= 0 && !lookup_any(r->local, p.v6, p.dst))
                return (int) to;

        return TAPOTUN_ROUTE_TUNNEL;
}

static const TapotunRouterOps router_ops = {
        .version = TAPOTUN_ROUTER_OPS_VERSION,
        .instance_new = router_new,
        .instance_free = router_free,
        .route = router_route,
};

TAPOTUN_PLUGIN_EXPORT const TapotunPlugin tapotun_plugin = {
        .abi_major = TAPOTUN_PLUGIN_ABI_MAJOR,
        .struct_size = sizeof(TapotunPlugin),
        .name = PLUGIN_NAME,
        .version = PACKAGE_VERSION,
        .kind = TAPOTUN_PLUGIN_ROUTER,
        .ops = &router_ops,
};
