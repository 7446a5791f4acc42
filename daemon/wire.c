/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "wire.h"

/* The smallest MTU an IPv4 interface may have (RFC 791). */
#define WIRE_MTU_MIN 68u
#define WIRE_TUN_CONF_SIZE 7u
#define WIRE_PREFIXES_MAX 1024u
/* Room for one formatted prefix: the longest IPv6 text, "/128" and a separator. */
#define WIRE_PREFIX_STRLEN (INET6_ADDRSTRLEN + 5)

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void wire_base64_encode(const void *data, size_t n, char *ret) {
        const uint8_t *d = data;
        char *o = ret;
        uint32_t v;

        assert(d || n == 0);
        assert(ret);

        for (; n >= 3; d += 3, n -= 3) {
                v = (uint32_t) d[0] << 16 | (uint32_t) d[1] << 8 | d[2];
                *o++ = base64_alphabet[v >> 18];
                *o++ = base64_alphabet[(v >> 12) & 0x3f];
                *o++ = base64_alphabet[(v >> 6) & 0x3f];
                *o++ = base64_alphabet[v & 0x3f];
        }

        if (n > 0) {
                v = (uint32_t) d[0] << 16 | (n > 1 ? (uint32_t) d[1] << 8 : 0);
                *o++ = base64_alphabet[v >> 18];
                *o++ = base64_alphabet[(v >> 12) & 0x3f];
                *o++ = n > 1 ? base64_alphabet[(v >> 6) & 0x3f] : '=';
                *o++ = '=';
        }

        *o = '\0';
}

static int base64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -EBADMSG;
}

/* Strict: padding required, nothing but the alphabet, and the unused bits before the padding must be
 * zero, so every byte string has exactly one accepted encoding. */
ssize_t wire_base64_decode(const char *s, void *ret, size_t size) {
        uint8_t *out = ret;
        size_t len, n = 0;

        assert(s);
        assert(out || size == 0);

        len = strlen(s);
        if (len % 4 != 0)
                return -EBADMSG;

        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                unsigned pad = 0;
                uint32_t v = 0;

                for (size_t j = 0; j < 4; j++) {
                        int c;

                        if (s[i + j] == '=') {
                                if (!last || j < 2)
                                        return -EBADMSG;
                                pad++;
                                v <<= 6;
                                continue;
                        }
                        if (pad > 0) /* data after padding */
                                return -EBADMSG;

                        c = base64_value(s[i + j]);
                        if (c < 0)
                                return c;
                        v = v << 6 | (uint32_t) c;
                }

                if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
                        return -EBADMSG;
                if (size - n < 3 - pad)
                        return -EBADMSG;

                out[n++] = v >> 16;
                if (pad < 2)
                        out[n++] = (v >> 8) & 0xff;
                if (pad < 1)
                        out[n++] = v & 0xff;
        }

        return (ssize_t) n;
}

void wire_tun_conf_encode(const TunConf *c, char ret[static WIRE_TUN_CONF_STRLEN + 1]) {
        uint8_t b[WIRE_TUN_CONF_SIZE];

        assert(c);
        assert(ret);

        unaligned_write_le16(b, c->mtu);
        b[2] = c->prefixlen;
        memcpy(b + 3, &c->address.s_addr, 4);

        wire_base64_encode(b, sizeof(b), ret);
}

int wire_tun_conf_decode(const char *s, TunConf *ret) {
        uint8_t b[WIRE_TUN_CONF_SIZE];
        TunConf c = {};
        ssize_t n;

        assert(s);
        assert(ret);

        n = wire_base64_decode(s, b, sizeof(b));
        if (n < 0)
                return (int) n;
        if (n != WIRE_TUN_CONF_SIZE)
                return -EBADMSG;

        c.mtu = unaligned_read_le16(b);
        c.prefixlen = b[2];
        memcpy(&c.address.s_addr, b + 3, 4);

        if (c.mtu < WIRE_MTU_MIN || c.prefixlen > 32)
                return -EBADMSG;

        *ret = c;
        return 0;
}

static const struct {
        uint32_t bit;
        const char *name;
} offload_table[] = {
        { WIRE_OFFLOAD_CSUM, "csum" },
        { WIRE_OFFLOAD_TSO4, "tso4" },
        { WIRE_OFFLOAD_TSO6, "tso6" },
        { WIRE_OFFLOAD_ECN,  "ecn"  },
        { WIRE_OFFLOAD_USO4, "uso4" },
        { WIRE_OFFLOAD_USO6, "uso6" },
};

static bool is_ows(char c) {
        return c == ' ' || c == '\t';
}

/* Splits off the next comma-separated item of *S with surrounding whitespace removed; advances *S past
 * the comma. Returns false at the end of the string. */
static bool list_next(const char **s, const char **ret_item, size_t *ret_len) {
        const char *p = *s, *end;

        if (!p)
                return false;

        end = strchr(p, ',');
        *s = end ? end + 1 : NULL;
        if (!end)
                end = p + strlen(p);

        while (p < end && is_ows(*p))
                p++;
        while (end > p && is_ows(end[-1]))
                end--;

        *ret_item = p;
        *ret_len = (size_t) (end - p);
        return true;
}

uint32_t wire_offload_parse(const char *s) {
        const char *item;
        uint32_t bits = 0;
        size_t len;

        assert(s);

        while (list_next(&s, &item, &len))
                for (size_t i = 0; i < ELEMENTSOF(offload_table); i++) {
                        const char *name = offload_table[i].name;

                        if (strncmp(name, item, len) == 0 && name[len] == '\0')
                                bits |= offload_table[i].bit;
                }

        return bits;
}

void wire_offload_format(uint32_t bits, char *ret, size_t size) {
        size_t n = 0;

        assert(ret);
        assert(size > 0);

        ret[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(offload_table); i++) {
                int k;

                if (!(bits & offload_table[i].bit))
                        continue;

                k = snprintf(ret + n, size - n, "%s%s", n > 0 ? "," : "", offload_table[i].name);
                if (k < 0 || (size_t) k >= size - n) {
                        /* Never leave half a name behind. */
                        ret[n] = '\0';
                        return;
                }
                n += (size_t) k;
        }
}

static size_t family_addr_size(int family) {
        switch (family) {
        case AF_INET:
                return 4;
        case AF_INET6:
                return 16;
        default:
                return 0;
        }
}

static bool prefix_valid(const TapotunPrefix *p) {
        size_t size = family_addr_size(p->family);

        return size > 0 && p->prefixlen <= size * 8;
}

/* Strict decimal without sign, leading zeros or trailing garbage. */
static int parse_prefixlen(const char *s, unsigned max, uint8_t *ret) {
        unsigned v = 0;
        size_t n = strlen(s);

        if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
                return -EINVAL;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }

        if (v > max)
                return -EINVAL;

        *ret = (uint8_t) v;
        return 0;
}

static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned bits) {
        size_t full = bits / 8;
        uint8_t mask;

        if (memcmp(a, b, full) != 0)
                return false;
        if (bits % 8 == 0)
                return true;

        mask = (uint8_t) (0xff00u >> (bits % 8));
        return ((a[full] ^ b[full]) & mask) == 0;
}

static bool host_bits_zero(const TapotunPrefix *p) {
        static const uint8_t zero[16] = {};
        size_t size = family_addr_size(p->family);
        size_t i = p->prefixlen / 8;

        if (p->prefixlen % 8 != 0) {
                if (p->addr.bytes[i] & (0xffu >> (p->prefixlen % 8)))
                        return false;
                i++;
        }

        return i >= size || memcmp(p->addr.bytes + i, zero, size - i) == 0;
}

bool wire_prefix_is_network(const TapotunPrefix *p) {
        return p->family != 0 && host_bits_zero(p);
}

int wire_prefix_parse(const char *s, bool network, TapotunPrefix *ret) {
        char buf[INET6_ADDRSTRLEN];
        TapotunPrefix p = {};
        const char *slash;
        unsigned max;
        size_t n;
        int r;

        assert(s);
        assert(ret);

        slash = strchr(s, '/');
        n = slash ? (size_t) (slash - s) : strlen(s);
        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';

        if (inet_pton(AF_INET, buf, &p.addr.in) == 1) {
                p.family = AF_INET;
                max = 32;
        } else if (inet_pton(AF_INET6, buf, &p.addr.in6) == 1) {
                p.family = AF_INET6;
                max = 128;
        } else
                return -EINVAL;

        if (slash) {
                r = parse_prefixlen(slash + 1, max, &p.prefixlen);
                if (r < 0)
                        return r;
        } else
                p.prefixlen = (uint8_t) max;

        if (network && !host_bits_zero(&p))
                return -EINVAL;

        *ret = p;
        return 0;
}

void wire_prefix_format(const TapotunPrefix *p, char *ret, size_t size) {
        char buf[INET6_ADDRSTRLEN];

        assert(p);
        assert(ret);
        assert(size > 0);

        if (family_addr_size(p->family) == 0 || !inet_ntop(p->family, p->addr.bytes, buf, sizeof(buf))) {
                ret[0] = '\0';
                return;
        }

        (void) snprintf(ret, size, "%s/%u", buf, p->prefixlen);
}

bool wire_prefix_contains(const TapotunPrefix *net, const TapotunPrefix *addr) {
        assert(net);
        assert(addr);

        return prefix_valid(net) && prefix_valid(addr) && net->family == addr->family &&
               net->prefixlen <= addr->prefixlen &&
               bits_equal(net->addr.bytes, addr->addr.bytes, net->prefixlen);
}

bool wire_prefix_overlaps(const TapotunPrefix *a, const TapotunPrefix *b) {
        assert(a);
        assert(b);

        return prefix_valid(a) && prefix_valid(b) && a->family == b->family &&
               bits_equal(a->addr.bytes, b->addr.bytes, MIN(a->prefixlen, b->prefixlen));
}

bool wire_prefix_equal(const TapotunPrefix *a, const TapotunPrefix *b) {
        assert(a);
        assert(b);

        return a->family == b->family && a->prefixlen == b->prefixlen &&
               memcmp(a->addr.bytes, b->addr.bytes, family_addr_size(a->family)) == 0;
}

/* Entries may carry host bits: x-tun-conf6 is an address with its prefix, not a network. */
int wire_prefixes_parse(const char *s, TapotunPrefix **ret, size_t *ret_n) {
        _cleanup_(freep) TapotunPrefix *a = NULL;
        const char *item, *p;
        size_t n = 0, len, count = 1;

        assert(s);
        assert(ret);
        assert(ret_n);

        for (p = s; is_ows(*p); p++)
                ;
        if (*p == '\0') {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }

        /* Bound the allocation before making it. */
        for (p = s; (p = strchr(p, ',')); p++)
                if (++count > WIRE_PREFIXES_MAX)
                        return -EBADMSG;

        a = calloc(count, sizeof(TapotunPrefix));
        if (!a)
                return -ENOMEM;

        while (list_next(&s, &item, &len)) {
                char buf[WIRE_PREFIX_STRLEN];

                if (len >= sizeof(buf))
                        return -EBADMSG;
                memcpy(buf, item, len);
                buf[len] = '\0';

                if (wire_prefix_parse(buf, /* network= */ false, &a[n]) < 0)
                        return -EBADMSG;
                n++;
        }

        *ret = TAKE_PTR(a);
        *ret_n = n;
        return 0;
}

char *wire_prefixes_format(const TapotunPrefix *p, size_t n) {
        char *s, *o;

        assert(p || n == 0);

        if (n > (SIZE_MAX - 1) / WIRE_PREFIX_STRLEN)
                return NULL;

        s = malloc(n * WIRE_PREFIX_STRLEN + 1);
        if (!s)
                return NULL;

        o = s;
        *o = '\0';
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *o++ = ',';
                wire_prefix_format(&p[i], o, WIRE_PREFIX_STRLEN);
                o += strlen(o);
        }

        return s;
}

static const TapotunHeader *header_find(const TapotunHeader *h, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (h[i].name && h[i].value && strcasecmp(h[i].name, name) == 0)
                        return &h[i];
        return NULL;
}

int wire_server_conf_parse(const TapotunHeader *h, size_t n, bool accept_routes, WireServerConf *ret,
                           const TapotunHeader **ret_bad) {
        const TapotunHeader *conf, *conf6, *offload, *routes;
        _cleanup_free_ TapotunPrefix *nets = NULL;
        WireServerConf c = {};
        size_t n_nets = 0;
        int r;

        assert(h || n == 0);
        assert(ret);
        assert(ret_bad);

        conf = header_find(h, n, "x-tun-conf");
        conf6 = header_find(h, n, "x-tun-conf6");
        offload = header_find(h, n, "x-tun-offload");
        routes = accept_routes ? header_find(h, n, "x-tun-routes") : NULL;

        if (!conf && !conf6)
                return -ENODATA;
        if (conf) {
                if (wire_tun_conf_decode(conf->value, &c.conf) < 0) {
                        *ret_bad = conf;
                        return -EBADMSG;
                }
        } else
                c.conf.mtu = 1280; /* the least an IPv6 link has */
        if (conf6 && (wire_prefix_parse(conf6->value, /* network= */ false, &c.conf6) < 0 ||
                      c.conf6.family != AF_INET6)) {
                *ret_bad = conf6;
                return -EBADMSG;
        }
        c.offloads = offload ? wire_offload_parse(offload->value) : WIRE_OFFLOAD_V1;

        if (routes) {
                r = wire_prefixes_parse(routes->value, &nets, &n_nets);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        *ret_bad = routes;
                        return -EBADMSG;
                }
        }
        /* A route with host bits set is not a network: the kernel would refuse it anyway. */
        for (size_t i = 0; i < n_nets; i++)
                if (wire_prefix_is_network(&nets[i]))
                        nets[c.n_routes++] = nets[i];
                else
                        c.n_routes_ignored++;
        if (c.n_routes > 0)
                c.routes = TAKE_PTR(nets);

        *ret = c;
        return 0;
}

void wire_server_conf_done(WireServerConf *c) {
        c->routes = mfree(c->routes);
        c->n_routes = 0;
}
