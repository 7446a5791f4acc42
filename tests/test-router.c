/* SPDX-License-Identifier: MIT */
/* The router plugin, loaded as the daemon loads it, against hand-built configurations and crafted
 * packets; a random table of 10,000 routes is checked against a plain linear reference. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <syslog.h>

#include <glib.h>

#include "mock-host.h"

#define T TAPOTUN_ROUTE_TUNNEL
#define NO_ROUTE (-TAPOTUN_DROP_NO_ROUTE)
#define SPOOFED (-TAPOTUN_DROP_SPOOFED)
#define NOT_IP (-TAPOTUN_DROP_NOT_IP)
#define INVALID (-TAPOTUN_DROP_INVALID)

static const TapotunRouterOps *ops;

/* ---------------------------------------------------------------------------------------------- */
/* Configuration and packets */

/* "a.b.c.d/p" or "x::y/p"; without "/p" a host prefix. The length is not checked, so that tests can
 * hand the router invalid ones. */
static TapotunPrefix prefix(const char *s) {
        g_autofree char *a = g_strdup(s);
        char *slash = strchr(a, '/');
        TapotunPrefix p = {};

        if (slash)
                *slash = '\0';
        if (inet_pton(AF_INET, a, &p.addr.in) == 1) {
                p.family = AF_INET;
                p.prefixlen = 32;
        } else {
                g_assert_cmpint(inet_pton(AF_INET6, a, &p.addr.in6), ==, 1);
                p.family = AF_INET6;
                p.prefixlen = 128;
        }
        if (slash)
                p.prefixlen = (uint8_t) g_ascii_strtoull(slash + 1, NULL, 10);
        return p;
}

static TapotunPrefix *prefixes(const char *const *list, size_t *ret_n) {
        size_t n = 0;
        TapotunPrefix *p;

        while (list[n])
                n++;
        p = g_new0(TapotunPrefix, n + 1);
        for (size_t i = 0; i < n; i++)
                p[i] = prefix(list[i]);
        *ret_n = n;
        return p;
}

typedef struct ClientSpec {
        const char *name;
        const char *ip;
        const char *ip6;
        const char *routes[4];
        const char *sources[3];
        bool allow_spoofing;
} ClientSpec;

/* Server 10.10.0.1/24 and fd00::1/64, with extra addresses and networks behind it. */
static const char *const server_ips[] = { "10.10.1.1/24", "fd01::1/64", NULL };
static const char *const server_routes[] = { "192.168.0.0/16", "fd10::/32", NULL };

static const ClientSpec clients[] = {
        { "alpha", "10.10.0.2", "fd00::2", { "172.16.0.0/12", "fd30::/16" }, { "198.51.100.7" } },
        { "beta", "10.10.0.3", "fd00::3", { "172.16.5.0/24", "10.20.0.0/16", "fd20::/48" },
          { "203.0.113.9", "2001:db8::9" } },
        { "gamma", "10.10.0.4", NULL, { "10.20.30.0/24", "fd20:0:0:1::/64" }, {}, .allow_spoofing = true },
        { "delta", "10.10.0.5", NULL, { "10.20.0.0/16" }, { "172.16.200.1" } },
        /* an address inside beta's and alpha's routes */
        { "epsilon", "172.16.5.50", NULL, {}, {} },
};

enum { ALPHA, BETA, GAMMA, DELTA, EPSILON };

static TapotunIfaceConfig *config_new_server(void) {
        TapotunIfaceConfig *cfg = g_new0(TapotunIfaceConfig, 1);

        g_strlcpy(cfg->name, "tt-router", sizeof cfg->name);
        cfg->mode = TAPOTUN_MODE_SERVER;
        cfg->net = prefix("10.10.0.1/24");
        cfg->net6 = prefix("fd00::1/64");
        cfg->ips = prefixes(server_ips, &cfg->n_ips);
        cfg->routes = prefixes(server_routes, &cfg->n_routes);
        return cfg;
}

static TapotunIfaceConfig *config_new(void) {
        TapotunIfaceConfig *cfg = config_new_server();

        cfg->n_clients = G_N_ELEMENTS(clients);
        cfg->clients = g_new0(TapotunClientConfig, cfg->n_clients);
        for (size_t i = 0; i < cfg->n_clients; i++) {
                const ClientSpec *s = &clients[i];
                TapotunClientConfig *c = &cfg->clients[i];

                c->name = g_strdup(s->name);
                if (s->ip)
                        c->ip = prefix(s->ip);
                if (s->ip6)
                        c->ip6 = prefix(s->ip6);
                c->routes = prefixes(s->routes, &c->n_routes);
                c->sources = prefixes(s->sources, &c->n_sources);
                c->allow_spoofing = s->allow_spoofing;
        }
        return cfg;
}

static void config_free(TapotunIfaceConfig *cfg) {
        for (size_t i = 0; i < cfg->n_clients; i++) {
                g_free(cfg->clients[i].name);
                g_free(cfg->clients[i].routes);
                g_free(cfg->clients[i].sources);
        }
        g_free(cfg->clients);
        g_free(cfg->ips);
        g_free(cfg->routes);
        g_free(cfg);
}

/* A UDP packet SRC -> DST (both IPv4 or both IPv6) in BUF (at least 48 bytes); returns its length. */
static size_t packet_make(const char *src, const char *dst, uint8_t *buf) {
        TapotunPrefix s = prefix(src), d = prefix(dst);

        g_assert_cmpint(s.family, ==, d.family);
        memset(buf, 0, 48);
        if (s.family == AF_INET) {
                buf[0] = 0x45;
                buf[3] = 28;
                buf[8] = 64;
                buf[9] = 17;
                memcpy(buf + 12, &s.addr.in, 4);
                memcpy(buf + 16, &d.addr.in, 4);
                buf[25] = 8;
                return 28;
        }
        buf[0] = 0x60;
        buf[5] = 8;
        buf[6] = 17;
        buf[7] = 64;
        memcpy(buf + 8, &s.addr.in6, 16);
        memcpy(buf + 24, &d.addr.in6, 16);
        buf[45] = 8;
        return 48;
}

/* A host whose log records the last message, so that tests can check what an error names. */
typedef struct LogHost {
        MockHost *mock;
        TapotunHost host;
} LogHost;

static char *last_log;

static int log_record(int level, int error, const char *plugin, const char *object, const char *format,
                      va_list ap) G_GNUC_PRINTF(5, 0);
static int log_record(int level, int error, const char *plugin, const char *object, const char *format,
                      va_list ap) {
        g_free(last_log);
        last_log = g_strdup_vprintf(format, ap);
        if (level <= LOG_INFO)
                g_test_message("[%s %s] %s", plugin, object ?: "", last_log);
        return error < 0 ? error : -error;
}

static void log_host_init(LogHost *h, TapotunIfaceConfig *cfg) {
        h->mock = mock_host_new(NULL, cfg);
        h->host = h->mock->host;
        h->host.logv = log_record;
}

static void log_host_done(LogHost *h) {
        mock_host_free(h->mock);
        g_clear_pointer(&last_log, g_free);
}

/* An instance for CFG, which is freed right away: the router must not keep pointers into it. */
static void *router_new_consuming(TapotunIfaceConfig *cfg) {
        LogHost h;
        void *inst = NULL;

        log_host_init(&h, cfg);
        g_assert_cmpint(ops->instance_new(&h.host, cfg, &inst), ==, 0);
        g_assert_nonnull(inst);
        config_free(cfg);
        log_host_done(&h);
        return inst;
}

/* ---------------------------------------------------------------------------------------------- */
/* The plugin descriptor */

static void test_descriptor(void) {
        const TapotunPlugin *p = mock_load_plugin("router");

        g_assert_cmpuint(p->abi_major, ==, TAPOTUN_PLUGIN_ABI_MAJOR);
        g_assert_cmpuint(p->struct_size, >=, sizeof(TapotunPlugin));
        g_assert_cmpstr(p->name, ==, "router");
        g_assert_cmpint(p->kind, ==, TAPOTUN_PLUGIN_ROUTER);
        g_assert_cmpuint(((const TapotunRouterOps *) p->ops)->version, ==, TAPOTUN_ROUTER_OPS_VERSION);
}

/* ---------------------------------------------------------------------------------------------- */
/* Forwarding rules */

typedef struct RouteCase {
        const char *name;
        int from;
        const char *src;
        const char *dst;
        int expect;
} RouteCase;

static const RouteCase route_cases[] = {
        /* from the server TUN: destinations */
        { "tunnel/client-address", T, "192.0.2.1", "10.10.0.2", ALPHA },
        { "tunnel/client-route", T, "192.0.2.1", "172.16.1.1", ALPHA },
        { "tunnel/longest-prefix", T, "192.0.2.1", "172.16.5.9", BETA },
        { "tunnel/longest-prefix-nested", T, "192.0.2.1", "10.20.30.5", GAMMA },
        { "tunnel/outside-longer-prefix", T, "192.0.2.1", "10.20.31.5", BETA },
        { "tunnel/duplicate-prefix-first-client", T, "192.0.2.1", "10.20.1.1", BETA },
        { "tunnel/address-beats-routes", T, "192.0.2.1", "172.16.5.50", EPSILON },
        { "tunnel/no-route", T, "192.0.2.1", "198.51.100.200", NO_ROUTE },
        { "tunnel/server-address", T, "192.0.2.1", "10.10.0.1", NO_ROUTE },
        { "tunnel/server-subnet", T, "192.0.2.1", "10.10.0.77", NO_ROUTE },
        /* from the server TUN: source pins */
        { "tunnel/source-pin", T, "203.0.113.9", "192.0.2.1", BETA },
        { "tunnel/destination-before-pin", T, "203.0.113.9", "10.10.0.2", ALPHA },
        { "tunnel/source-pin-exact", T, "203.0.113.10", "192.0.2.1", NO_ROUTE },
        { "tunnel6/client-address", T, "2001:db8:1::1", "fd00::2", ALPHA },
        { "tunnel6/client-route", T, "2001:db8:1::1", "fd20::1", BETA },
        { "tunnel6/longest-prefix", T, "2001:db8:1::1", "fd20:0:0:1::5", GAMMA },
        { "tunnel6/outside-longer-prefix", T, "2001:db8:1::1", "fd20:0:0:2::5", BETA },
        { "tunnel6/source-pin", T, "2001:db8::9", "2001:db8:ffff::1", BETA },
        { "tunnel6/no-route", T, "2001:db8:1::1", "fd99::1", NO_ROUTE },
        { "tunnel6/v4-mapped-is-not-v4", T, "2001:db8:1::1", "::ffff:10.10.0.2", NO_ROUTE },
        /* link-scoped traffic never crosses the tunnel, and is not "no route" (no ICMP answer) */
        { "tunnel/multicast", T, "10.10.0.1", "224.0.0.251", -TAPOTUN_DROP_LINK_LOCAL },
        { "tunnel/broadcast", T, "10.10.0.1", "255.255.255.255", -TAPOTUN_DROP_LINK_LOCAL },
        { "tunnel6/multicast", T, "fe80::1", "ff02::1", -TAPOTUN_DROP_LINK_LOCAL },
        { "tunnel6/link-local", T, "fd00::1", "fe80::2", -TAPOTUN_DROP_LINK_LOCAL },
        { "client6/router-solicitation", ALPHA, "fe80::2", "ff02::2", -TAPOTUN_DROP_LINK_LOCAL },
        { "client6/link-local-source", ALPHA, "fe80::2", "fd00::1", -TAPOTUN_DROP_LINK_LOCAL },

        /* from a client: anti-spoofing */
        { "client/spoofed", ALPHA, "192.0.2.99", "192.0.2.1", SPOOFED },
        { "client/spoofed-other-client-address", ALPHA, "10.10.0.3", "192.0.2.1", SPOOFED },
        { "client/spoofed-other-client-route", ALPHA, "10.20.1.1", "192.0.2.1", SPOOFED },
        { "client/spoofed-to-client", ALPHA, "192.0.2.99", "10.10.0.3", SPOOFED },
        { "client/own-address", ALPHA, "10.10.0.2", "192.0.2.1", T },
        { "client/source-in-own-route", ALPHA, "172.16.9.9", "192.0.2.1", T },
        { "client/own-source", ALPHA, "198.51.100.7", "192.0.2.1", T },
        { "client/allow-spoofing", GAMMA, "192.0.2.99", "192.0.2.1", T },
        { "client/allow-spoofing-to-client", GAMMA, "192.0.2.99", "10.10.0.2", ALPHA },
        /* from a client: destinations */
        { "client/to-client-address", ALPHA, "10.10.0.2", "10.10.0.3", BETA },
        { "client/to-client-route", ALPHA, "10.10.0.2", "10.20.30.5", GAMMA },
        { "client/to-server", ALPHA, "10.10.0.2", "10.10.0.1", T },
        { "client/to-itself", ALPHA, "10.10.0.2", "10.10.0.2", T },
        { "client/own-route-skipped", ALPHA, "10.10.0.2", "172.16.1.1", T },
        { "client/own-longer-route-skipped", BETA, "10.10.0.3", "172.16.5.9", ALPHA },
        { "client/duplicate-prefix-other-owner", BETA, "10.10.0.3", "10.20.1.1", DELTA },
        { "client/duplicate-prefix-first-other", DELTA, "10.10.0.5", "10.20.1.1", BETA },
        /* from a client: source pins */
        { "client/pinned-elsewhere-spoofed", ALPHA, "203.0.113.9", "192.0.2.1", SPOOFED },
        { "client/pinned-elsewhere-in-own-route", ALPHA, "172.16.200.1", "192.0.2.1", DELTA },
        { "client/pinned-elsewhere", GAMMA, "203.0.113.9", "192.0.2.1", BETA },
        { "client/pinned-elsewhere-destination-first", GAMMA, "203.0.113.9", "10.10.0.2", ALPHA },
        { "client/pin-exception-net", GAMMA, "203.0.113.9", "10.10.0.1", T },
        { "client/pin-exception-ips", GAMMA, "203.0.113.9", "10.10.1.1", T },
        { "client/pin-exception-routes", GAMMA, "203.0.113.9", "192.168.3.4", T },
        { "client/pin-no-exception-subnet", GAMMA, "203.0.113.9", "10.10.0.77", BETA },
        { "client/own-pin-not-followed", DELTA, "172.16.200.1", "192.0.2.1", T },
        { "client6/to-client-address", ALPHA, "fd00::2", "fd00::3", BETA },
        { "client6/to-client-route", ALPHA, "fd00::2", "fd20:0:0:1::5", GAMMA },
        { "client6/spoofed", ALPHA, "fd00::99", "fd00::3", SPOOFED },
        { "client6/v4-address-not-v6", DELTA, "::ffff:10.10.0.5", "fd00::2", SPOOFED },
        { "client6/source-in-own-route", ALPHA, "fd30::5", "2001:db8:1::1", T },
        { "client6/own-source", BETA, "2001:db8::9", "2001:db8:1::1", T },
        { "client6/allow-spoofing", GAMMA, "2001:db8:5::5", "2001:db8:1::1", T },
        { "client6/pinned-elsewhere", GAMMA, "2001:db8::9", "2001:db8:1::1", BETA },
        { "client6/pin-exception-net6", GAMMA, "2001:db8::9", "fd00::1", T },
        { "client6/pin-exception-ips", GAMMA, "2001:db8::9", "fd01::1", T },
        { "client6/pin-exception-routes", GAMMA, "2001:db8::9", "fd10::5", T },

        /* bad FROM */
        { "from/past-last-client", (int) G_N_ELEMENTS(clients), "10.10.0.2", "192.0.2.1", INVALID },
        { "from/negative", -2, "10.10.0.2", "192.0.2.1", INVALID },
};

static void test_route(gconstpointer data) {
        const RouteCase *c = data;
        void *inst = router_new_consuming(config_new());
        uint8_t buf[64];
        size_t len = packet_make(c->src, c->dst, buf);

        g_assert_cmpint(ops->route(inst, c->from, buf, len), ==, c->expect);
        ops->instance_free(inst);
}

/* ---------------------------------------------------------------------------------------------- */
/* Malformed packets */

typedef struct MalformedCase {
        const char *name;
        const char *src, *dst;   /* the valid packet to start from */
        int keep;                /* bytes to keep; negative: the whole packet */
        int offset, value;       /* byte to overwrite, unless offset is negative */
        int offset2, value2;
        int expect;
} MalformedCase;

static const MalformedCase malformed_cases[] = {
        { "empty", "10.10.0.2", "10.10.0.3", 0, -1, 0, -1, 0, NOT_IP },
        { "version-5", "10.10.0.2", "10.10.0.3", -1, 0, 0x55, -1, 0, NOT_IP },
        { "version-0", "10.10.0.2", "10.10.0.3", -1, 0, 0x05, -1, 0, NOT_IP },
        { "version-6-in-ipv4", "10.10.0.2", "10.10.0.3", -1, 0, 0x65, -1, 0, INVALID },
        { "ipv4-one-byte", "10.10.0.2", "10.10.0.3", 1, -1, 0, -1, 0, INVALID },
        { "ipv4-truncated-header", "10.10.0.2", "10.10.0.3", 19, 3, 19, -1, 0, INVALID },
        { "ipv4-ihl-below-5", "10.10.0.2", "10.10.0.3", -1, 0, 0x44, -1, 0, INVALID },
        { "ipv4-ihl-beyond-packet", "10.10.0.2", "10.10.0.3", -1, 0, 0x4f, -1, 0, INVALID },
        { "ipv4-total-beyond-packet", "10.10.0.2", "10.10.0.3", -1, 3, 29, -1, 0, INVALID },
        { "ipv4-total-below-header", "10.10.0.2", "10.10.0.3", -1, 3, 19, -1, 0, INVALID },
        { "ipv4-options", "10.10.0.2", "10.10.0.3", -1, 0, 0x46, -1, 0, BETA },
        { "ipv4-trailing-bytes", "10.10.0.2", "10.10.0.3", -1, 3, 20, -1, 0, BETA },
        { "ipv6-truncated-header", "fd00::2", "fd00::3", 39, 5, 0, -1, 0, INVALID },
        { "ipv6-payload-beyond-packet", "fd00::2", "fd00::3", -1, 5, 9, -1, 0, INVALID },
        { "ipv6-payload-far-beyond", "fd00::2", "fd00::3", -1, 4, 0xff, 5, 0xff, INVALID },
        { "ipv6-header-only", "fd00::2", "fd00::3", 40, 5, 0, -1, 0, BETA },
};

static void test_malformed(gconstpointer data) {
        const MalformedCase *c = data;
        void *inst = router_new_consuming(config_new());
        uint8_t buf[64];
        size_t len = packet_make(c->src, c->dst, buf);

        if (c->keep >= 0)
                len = (size_t) c->keep;
        if (c->offset >= 0)
                buf[c->offset] = (uint8_t) c->value;
        if (c->offset2 >= 0)
                buf[c->offset2] = (uint8_t) c->value2;

        /* The same verdict whichever side it came from. */
        g_assert_cmpint(ops->route(inst, T, buf, len), ==, c->expect);
        g_assert_cmpint(ops->route(inst, ALPHA, buf, len), ==, c->expect);
        ops->instance_free(inst);
}

static void test_malformed_null(void) {
        void *inst = router_new_consuming(config_new());

        g_assert_cmpint(ops->route(inst, T, NULL, 0), ==, NOT_IP);
        ops->instance_free(inst);
}

/* ---------------------------------------------------------------------------------------------- */
/* instance_new */

static void test_new_empty(void) {
        TapotunIfaceConfig *cfg = config_new_server();
        void *inst = router_new_consuming(cfg);
        uint8_t buf[64];
        size_t len = packet_make("192.0.2.1", "10.10.0.2", buf);

        g_assert_cmpint(ops->route(inst, T, buf, len), ==, NO_ROUTE);
        g_assert_cmpint(ops->route(inst, 0, buf, len), ==, INVALID);
        ops->instance_free(inst);
}

typedef struct NewErrorCase {
        const char *name;
        void (*mangle)(TapotunIfaceConfig *cfg);
        const char *message; /* what the log must name */
} NewErrorCase;

static void mangle_route_family(TapotunIfaceConfig *cfg) {
        cfg->clients[BETA].routes[1].family = 0;
}

static void mangle_route_v4_length(TapotunIfaceConfig *cfg) {
        cfg->clients[BETA].routes[1].prefixlen = 33;
}

static void mangle_route_v6_length(TapotunIfaceConfig *cfg) {
        cfg->clients[BETA].routes[2].prefixlen = 129;
}

static void mangle_client_ip_length(TapotunIfaceConfig *cfg) {
        cfg->clients[GAMMA].ip.prefixlen = 40;
}

static void mangle_source_network(TapotunIfaceConfig *cfg) {
        cfg->clients[BETA].sources[1] = prefix("2001:db8::/64");
}

static void mangle_top_route_family(TapotunIfaceConfig *cfg) {
        cfg->routes[1].family = 7;
}

static void mangle_ips_length(TapotunIfaceConfig *cfg) {
        cfg->ips[0].prefixlen = 200;
}

static void mangle_net6_family(TapotunIfaceConfig *cfg) {
        cfg->net6.family = AF_UNIX;
}

static void mangle_client_mode(TapotunIfaceConfig *cfg) {
        cfg->mode = TAPOTUN_MODE_CLIENT;
}

static const NewErrorCase new_error_cases[] = {
        { "route-family", mangle_route_family, "client 'beta': routes[1] has no known address family" },
        { "route-v4-length", mangle_route_v4_length, "client 'beta': routes[1] has a prefix length" },
        { "route-v6-length", mangle_route_v6_length, "client 'beta': routes[2] has a prefix length" },
        { "client-ip-length", mangle_client_ip_length, "client 'gamma': ip has a prefix length" },
        { "source-network", mangle_source_network, "client 'beta': sources[1] is a network (/64)" },
        { "top-route-family", mangle_top_route_family, "routes[1] has no known address family" },
        { "ips-length", mangle_ips_length, "ips[0] has a prefix length" },
        { "net6-family", mangle_net6_family, "net6 has no known address family" },
        { "client-mode", mangle_client_mode, "only done on a server" },
};

static void test_new_error(gconstpointer data) {
        const NewErrorCase *c = data;
        TapotunIfaceConfig *cfg = config_new();
        void *inst = NULL;
        LogHost h;

        c->mangle(cfg);
        log_host_init(&h, cfg);
        g_assert_cmpint(ops->instance_new(&h.host, cfg, &inst), ==, -EINVAL);
        g_assert_null(inst);
        g_assert_nonnull(last_log);
        if (!strstr(last_log, c->message))
                g_error("log \"%s\" does not contain \"%s\"", last_log, c->message);
        log_host_done(&h);
        config_free(cfg);
}

/* ---------------------------------------------------------------------------------------------- */
/* Scale: random tables against a linear reference */

#define SCALE_CLIENTS 200
#define SCALE_ROUTES 10000
#define SCALE_TOP_ROUTES 100
#define SCALE_LOOKUPS 100000

typedef struct Addr {
        int family;
        uint8_t b[16];
} Addr;

static unsigned max_len(int family) {
        return family == AF_INET6 ? 128 : 32;
}

/* Whether A lies in P (in its first LEN bits). */
static bool ref_in(const TapotunPrefix *p, unsigned len, const Addr *a) {
        unsigned full = len / 8, rest = len % 8;

        if (p->family != a->family)
                return false;
        if (memcmp(p->addr.bytes, a->b, full) != 0)
                return false;
        return rest == 0 || ((p->addr.bytes[full] ^ a->b[full]) & (0xff00 >> rest)) == 0;
}

static bool ref_is(const TapotunPrefix *p, const Addr *a) {
        return ref_in(p, max_len(a->family), a);
}

/* Client addresses and routes per family as flat lists in configuration order, for the linear scan. */
typedef struct RefEntry {
        uint64_t addr[2];
        uint64_t mask[2];
        int len;
        int owner;
} RefEntry;

typedef struct Ref {
        const TapotunIfaceConfig *cfg;
        GArray *owned[2]; /* RefEntry, IPv4 and IPv6 */
} Ref;

static void words(const uint8_t *b, uint64_t ret[2]) {
        ret[0] = ret[1] = 0;
        for (size_t i = 0; i < 16; i++)
                ret[i / 8] |= (uint64_t) b[i] << (56 - 8 * (i % 8));
}

static void ref_add(Ref *ref, const TapotunPrefix *p, unsigned len, int owner) {
        RefEntry e = { .len = (int) len, .owner = owner };

        if (p->family == 0)
                return;
        words(p->addr.bytes, e.addr);
        if (p->family == AF_INET)
                e.addr[0] &= UINT64_C(0xffffffff00000000);
        for (unsigned i = 0; i < len; i++)
                e.mask[i / 64] |= UINT64_C(1) << (63 - i % 64);
        g_array_append_val(ref->owned[p->family == AF_INET6], e);
}

static void ref_init(Ref *ref, const TapotunIfaceConfig *cfg) {
        ref->cfg = cfg;
        for (size_t f = 0; f < 2; f++)
                ref->owned[f] = g_array_new(false, false, sizeof(RefEntry));
        for (size_t i = 0; i < cfg->n_clients; i++) {
                const TapotunClientConfig *c = &cfg->clients[i];

                ref_add(ref, &c->ip, 32, (int) i);
                ref_add(ref, &c->ip6, 128, (int) i);
                for (size_t j = 0; j < c->n_routes; j++)
                        ref_add(ref, &c->routes[j], c->routes[j].prefixlen, (int) i);
        }
}

static void ref_done(Ref *ref) {
        for (size_t f = 0; f < 2; f++)
                g_array_unref(ref->owned[f]);
}

/* The spec, read literally, with linear scans. Ties go to the first client in configuration order. */
static int ref_owned(const Ref *ref, const Addr *dst, int skip) {
        const GArray *l = ref->owned[dst->family == AF_INET6];
        int best = -1, best_len = -1;
        uint64_t a[2];

        words(dst->b, a);
        for (guint i = 0; i < l->len; i++) {
                const RefEntry *e = &g_array_index(l, RefEntry, i);

                if (e->owner != skip && e->len > best_len && ((a[0] ^ e->addr[0]) & e->mask[0]) == 0 &&
                    ((a[1] ^ e->addr[1]) & e->mask[1]) == 0) {
                        best = e->owner;
                        best_len = e->len;
                }
        }
        return best;
}

static int ref_pinned(const TapotunIfaceConfig *cfg, const Addr *src, int skip) {
        for (int i = 0; i < (int) cfg->n_clients; i++) {
                if (i == skip)
                        continue;
                for (size_t j = 0; j < cfg->clients[i].n_sources; j++)
                        if (ref_is(&cfg->clients[i].sources[j], src))
                                return i;
        }
        return -1;
}

static bool ref_owns(const TapotunClientConfig *c, const Addr *src) {
        if (ref_is(&c->ip, src) || ref_is(&c->ip6, src))
                return true;
        for (size_t j = 0; j < c->n_routes; j++)
                if (ref_in(&c->routes[j], c->routes[j].prefixlen, src))
                        return true;
        for (size_t j = 0; j < c->n_sources; j++)
                if (ref_is(&c->sources[j], src))
                        return true;
        return false;
}

static bool ref_local(const TapotunIfaceConfig *cfg, const Addr *dst) {
        if (ref_is(&cfg->net, dst) || ref_is(&cfg->net6, dst))
                return true;
        for (size_t j = 0; j < cfg->n_ips; j++)
                if (ref_is(&cfg->ips[j], dst))
                        return true;
        for (size_t j = 0; j < cfg->n_routes; j++)
                if (ref_in(&cfg->routes[j], cfg->routes[j].prefixlen, dst))
                        return true;
        return false;
}

/* Multicast, broadcast, IPv6 link-local: never forwarded. */
static bool ref_link_scoped(const Addr *src, const Addr *dst) {
        if (dst->family == AF_INET)
                return (dst->b[0] & 0xf0) == 0xe0 || memcmp(dst->b, "\xff\xff\xff\xff", 4) == 0;
        return dst->b[0] == 0xff || (src->b[0] == 0xfe && (src->b[1] & 0xc0) == 0x80) ||
               (dst->b[0] == 0xfe && (dst->b[1] & 0xc0) == 0x80);
}

static int ref_route(const Ref *ref, int from, const Addr *src, const Addr *dst) {
        const TapotunIfaceConfig *cfg = ref->cfg;
        int k;

        if (ref_link_scoped(src, dst))
                return -TAPOTUN_DROP_LINK_LOCAL;
        if (from == T) {
                k = ref_owned(ref, dst, -1);
                if (k < 0)
                        k = ref_pinned(cfg, src, -1);
                return k >= 0 ? k : NO_ROUTE;
        }
        if (!cfg->clients[from].allow_spoofing && !ref_owns(&cfg->clients[from], src))
                return SPOOFED;
        k = ref_owned(ref, dst, from);
        if (k >= 0)
                return k;
        k = ref_pinned(cfg, src, from);
        if (k >= 0 && !ref_local(cfg, dst))
                return k;
        return T;
}

static void random_bytes(uint8_t *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) g_test_rand_int_range(0, 256);
}

static Addr random_addr(int family) {
        Addr a = { .family = family };

        random_bytes(a.b, family == AF_INET6 ? 16 : 4);
        return a;
}

/* IPv4 in 10.0.0.0/7, IPv6 in fd00::/15: dense enough that prefixes nest and overlap. */
static Addr region_addr(int family) {
        Addr a = random_addr(family);

        if (family == AF_INET)
                a.b[0] = 10 | (a.b[0] & 1);
        else {
                a.b[0] = 0xfd;
                a.b[1] &= 1;
        }
        return a;
}

static TapotunPrefix random_prefix(int family) {
        Addr a = region_addr(family);
        TapotunPrefix p = { .family = family };

        memcpy(p.addr.bytes, a.b, sizeof a.b);
        /* Host bits are left set: the router must mask them. */
        p.prefixlen = (uint8_t) g_test_rand_int_range(8, (int) max_len(family) + 1);
        return p;
}

static TapotunPrefix host_prefix(const Addr *a) {
        TapotunPrefix p = { .family = a->family, .prefixlen = (uint8_t) max_len(a->family) };

        memcpy(p.addr.bytes, a->b, sizeof a->b);
        return p;
}

/* An address inside P: its first prefixlen bits, random ones after. */
static Addr addr_in(const TapotunPrefix *p) {
        Addr a = random_addr(p->family);
        unsigned full = p->prefixlen / 8, rest = p->prefixlen % 8;

        memcpy(a.b, p->addr.bytes, full);
        if (rest)
                a.b[full] = (uint8_t) ((p->addr.bytes[full] & (0xff00 >> rest)) |
                                       (a.b[full] & ~(0xff00 >> rest)));
        return a;
}

static TapotunIfaceConfig *scale_config_new(void) {
        TapotunIfaceConfig *cfg = g_new0(TapotunIfaceConfig, 1);
        TapotunPrefix *all = g_new0(TapotunPrefix, SCALE_ROUTES);
        unsigned *owner = g_new0(unsigned, SCALE_ROUTES);

        g_strlcpy(cfg->name, "tt-scale", sizeof cfg->name);
        cfg->mode = TAPOTUN_MODE_SERVER;
        cfg->net = prefix("10.255.255.254/16");
        cfg->net6 = prefix("fd00:ffff::fffe/64");
        cfg->n_ips = 2;
        cfg->ips = g_new0(TapotunPrefix, cfg->n_ips);
        cfg->ips[0] = prefix("10.254.0.1/24");
        cfg->ips[1] = prefix("fdfe::1/64");
        cfg->n_routes = SCALE_TOP_ROUTES;
        cfg->routes = g_new0(TapotunPrefix, cfg->n_routes);
        for (size_t i = 0; i < cfg->n_routes; i++)
                cfg->routes[i] = random_prefix(i % 2 ? AF_INET6 : AF_INET);

        cfg->n_clients = SCALE_CLIENTS;
        cfg->clients = g_new0(TapotunClientConfig, cfg->n_clients);

        /* Spread the routes over the clients; one in twenty repeats an earlier prefix for another client. */
        for (size_t i = 0; i < SCALE_ROUTES; i++) {
                owner[i] = (unsigned) g_test_rand_int_range(0, SCALE_CLIENTS);
                if (i > 0 && g_test_rand_int_range(0, 20) == 0)
                        all[i] = all[g_test_rand_int_range(0, (int) i)];
                else
                        all[i] = random_prefix(i % 2 ? AF_INET6 : AF_INET);
                cfg->clients[owner[i]].n_routes++;
        }
        for (size_t i = 0; i < cfg->n_clients; i++) {
                TapotunClientConfig *c = &cfg->clients[i];
                Addr ip = { .family = AF_INET, .b = { 10, 255, (uint8_t) (i >> 8), (uint8_t) i } };
                Addr ip6 = { .family = AF_INET6, .b = { 0xfd, 0, 0xff, 0xff, [14] = (uint8_t) (i >> 8),
                                                        [15] = (uint8_t) i } };

                c->name = g_strdup_printf("client%zu", i);
                c->ip = host_prefix(&ip);
                if (i % 3 != 0)
                        c->ip6 = host_prefix(&ip6);
                c->routes = g_new0(TapotunPrefix, c->n_routes);
                c->n_routes = 0;
                c->n_sources = 2;
                c->sources = g_new0(TapotunPrefix, c->n_sources);
                for (size_t j = 0; j < c->n_sources; j++) {
                        Addr s = region_addr(j % 2 ? AF_INET6 : AF_INET);

                        c->sources[j] = host_prefix(&s);
                }
                /* some sources pinned twice */
                if (i > 0 && i % 10 == 0)
                        c->sources[1] = cfg->clients[i - 1].sources[1];
                c->allow_spoofing = i % 7 == 0;
        }
        for (size_t i = 0; i < SCALE_ROUTES; i++) {
                TapotunClientConfig *c = &cfg->clients[owner[i]];

                c->routes[c->n_routes++] = all[i];
        }
        g_free(all);
        g_free(owner);
        return cfg;
}

/* Some address of a random kind: a client's, inside a route, pinned, the server's, or anywhere. */
static Addr scale_pick(const TapotunIfaceConfig *cfg, int family, int client) {
        const TapotunClientConfig *c = &cfg->clients[client];
        const TapotunClientConfig *other = &cfg->clients[g_test_rand_int_range(0, (int) cfg->n_clients)];

        for (;;) {
                const TapotunPrefix *p = NULL;

                switch (g_test_rand_int_range(0, 10)) {
                case 0:
                        p = family == AF_INET ? &c->ip : &c->ip6;
                        break;
                case 1:
                case 2:
                        p = &c->routes[g_test_rand_int_range(0, (int) c->n_routes)];
                        break;
                case 3:
                        p = &other->routes[g_test_rand_int_range(0, (int) other->n_routes)];
                        break;
                case 4:
                        p = &other->sources[g_test_rand_int_range(0, (int) other->n_sources)];
                        break;
                case 5:
                        p = &c->sources[g_test_rand_int_range(0, (int) c->n_sources)];
                        break;
                case 6:
                        p = g_test_rand_bit() ? &cfg->routes[g_test_rand_int_range(0, (int) cfg->n_routes)]
                                              : family == AF_INET ? &cfg->net : &cfg->net6;
                        if (p == &cfg->net || p == &cfg->net6) {
                                Addr a = { .family = family };

                                memcpy(a.b, p->addr.bytes, sizeof a.b);
                                return a;
                        }
                        break;
                case 7:
                        return region_addr(family);
                default:
                        return random_addr(family);
                }
                if (p->family == family)
                        return addr_in(p);
        }
}

static size_t packet_from_addrs(const Addr *src, const Addr *dst, uint8_t *buf) {
        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

        inet_ntop(src->family, src->b, s, sizeof s);
        inet_ntop(dst->family, dst->b, d, sizeof d);
        return packet_make(s, d, buf);
}

static void test_scale(void) {
        TapotunIfaceConfig *cfg = scale_config_new();
        void *inst = NULL;
        Ref ref;
        unsigned n_tunnel = 0, n_client = 0, n_drop[_TAPOTUN_DROP_MAX] = {};
        gint64 start;
        LogHost h;

        ref_init(&ref, cfg);
        log_host_init(&h, cfg);
        start = g_get_monotonic_time();
        g_assert_cmpint(ops->instance_new(&h.host, cfg, &inst), ==, 0);
        g_test_message("built %d routes in %" G_GINT64_FORMAT " us", SCALE_ROUTES,
                       g_get_monotonic_time() - start);

        for (unsigned n = 0; n < SCALE_LOOKUPS; n++) {
                int family = g_test_rand_bit() ? AF_INET6 : AF_INET;
                int from = g_test_rand_int_range(0, 3) == 0 ? T : g_test_rand_int_range(0, SCALE_CLIENTS);
                int c = from == T ? g_test_rand_int_range(0, SCALE_CLIENTS) : from;
                Addr src = scale_pick(cfg, family, c);
                Addr dst = scale_pick(cfg, family, g_test_rand_int_range(0, SCALE_CLIENTS));
                uint8_t buf[64];
                size_t len = packet_from_addrs(&src, &dst, buf);
                int expect = ref_route(&ref, from, &src, &dst), got = ops->route(inst, from, buf, len);

                if (got != expect) {
                        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

                        g_test_message("lookup %u from %d: %s -> %s", n, from,
                                       inet_ntop(family, src.b, s, sizeof s),
                                       inet_ntop(family, dst.b, d, sizeof d));
                        g_assert_cmpint(got, ==, expect);
                }
                if (expect == T)
                        n_tunnel++;
                else if (expect >= 0)
                        n_client++;
                else
                        n_drop[-expect]++;
        }
        /* The random mix must exercise every outcome, or the comparison above proves little. */
        g_test_message("to the tunnel %u, to clients %u, no route %u, spoofed %u", n_tunnel, n_client,
                       n_drop[TAPOTUN_DROP_NO_ROUTE], n_drop[TAPOTUN_DROP_SPOOFED]);
        g_assert_cmpuint(n_tunnel, >, SCALE_LOOKUPS / 100);
        g_assert_cmpuint(n_client, >, SCALE_LOOKUPS / 100);
        g_assert_cmpuint(n_drop[TAPOTUN_DROP_NO_ROUTE], >, SCALE_LOOKUPS / 100);
        g_assert_cmpuint(n_drop[TAPOTUN_DROP_SPOOFED], >, SCALE_LOOKUPS / 100);

        ops->instance_free(inst);
        log_host_done(&h);
        ref_done(&ref);
        config_free(cfg);
}

int main(int argc, char *argv[]) {
        const TapotunPlugin *p;

        g_test_init(&argc, &argv, NULL);

        p = mock_load_plugin("router");
        ops = p->ops;

        g_test_add_func("/router/plugin/descriptor", test_descriptor);
        for (size_t i = 0; i < G_N_ELEMENTS(route_cases); i++) {
                g_autofree char *path = g_strdup_printf("/router/route/%s", route_cases[i].name);
                g_test_add_data_func(path, &route_cases[i], test_route);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(malformed_cases); i++) {
                g_autofree char *path = g_strdup_printf("/router/route/malformed/%s",
                                                        malformed_cases[i].name);
                g_test_add_data_func(path, &malformed_cases[i], test_malformed);
        }
        g_test_add_func("/router/route/malformed/null", test_malformed_null);
        g_test_add_func("/router/instance_new/empty", test_new_empty);
        for (size_t i = 0; i < G_N_ELEMENTS(new_error_cases); i++) {
                g_autofree char *path = g_strdup_printf("/router/instance_new/%s", new_error_cases[i].name);
                g_test_add_data_func(path, &new_error_cases[i], test_new_error);
        }
        g_test_add_func("/router/route/scale", test_scale);

        return g_test_run();
}
