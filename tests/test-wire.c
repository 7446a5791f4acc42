/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "wire.h"

static TunConf tun_conf(uint16_t mtu, uint8_t prefixlen, const char *address) {
        TunConf c = { .mtu = mtu, .prefixlen = prefixlen };

        g_assert_cmpint(inet_pton(AF_INET, address, &c.address), ==, 1);
        return c;
}

static void test_tun_conf_golden(void) {
        static const uint8_t bytes[] = { 0xdc, 0x05, 0x18, 0x0a, 0x0a, 0x00, 0x02 };
        TunConf c = tun_conf(1500, 24, "10.10.0.2"), d = {};
        char s[WIRE_TUN_CONF_STRLEN + 1];
        uint8_t raw[8];

        /* PROTOCOL.md section 4. */
        wire_tun_conf_encode(&c, s);
        g_assert_cmpstr(s, ==, "3AUYCgoAAg==");
        g_assert_cmpint(wire_base64_decode(s, raw, sizeof(raw)), ==, sizeof(bytes));
        g_assert_cmpmem(raw, sizeof(bytes), bytes, sizeof(bytes));

        g_assert_cmpint(wire_tun_conf_decode("3AUYCgoAAg==", &d), ==, 0);
        g_assert_cmpuint(d.mtu, ==, 1500);
        g_assert_cmpuint(d.prefixlen, ==, 24);
        g_assert_cmpuint(d.address.s_addr, ==, htonl(0x0a0a0002));
}

static void test_tun_conf_round_trip(void) {
        static const struct {
                uint16_t mtu;
                uint8_t prefixlen;
                const char *address;
        } table[] = {
                { 68,    0,  "0.0.0.0" },
                { 1280,  32, "255.255.255.255" },
                { 1420,  16, "192.0.2.77" },
                { 9000,  30, "198.51.100.1" },
                { 65535, 8,  "203.0.113.254" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                TunConf c = tun_conf(table[i].mtu, table[i].prefixlen, table[i].address), d = {};
                char s[WIRE_TUN_CONF_STRLEN + 1];

                wire_tun_conf_encode(&c, s);
                g_test_message("%s -> %s", table[i].address, s);
                g_assert_cmpuint(strlen(s), ==, WIRE_TUN_CONF_STRLEN);
                g_assert_cmpint(wire_tun_conf_decode(s, &d), ==, 0);
                g_assert_cmpuint(d.mtu, ==, c.mtu);
                g_assert_cmpuint(d.prefixlen, ==, c.prefixlen);
                g_assert_cmpuint(d.address.s_addr, ==, c.address.s_addr);
        }
}

static void test_tun_conf_invalid(void) {
        static const char *const table[] = {
                "",
                "3AUYCgoAAg",      /* padding missing */
                "3AUYCgoAAg=",     /* padding short */
                "3AUYCgoAAg===",
                " 3AUYCgoAAg==",
                "3AUYCgoAAg== ",
                "3AUYCgo AAg==",
                "3AUY\nCgoAAg==",
                "3AUY*goAAg==",    /* not in the alphabet */
                "3AUY-goAAg==",    /* URL-safe alphabet */
                "3AUYCgoAAh==",    /* non-zero bits under the padding */
                "3AUYCgoAAgA=",    /* 8 bytes */
                "3AUYCgoA",        /* 6 bytes */
                "3AUYCgoAAgAA",    /* 9 bytes */
                "3AUYCgoAAg==AAAA",
                "3AUhCgoAAg==",    /* prefix 33 */
                "3AX/CgoAAg==",    /* prefix 255 */
                "QwAYCgoAAg==",    /* MTU 67 */
                "AAAYCgoAAg==",    /* MTU 0 */
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                TunConf d = { .mtu = 1 };

                g_test_message("\"%s\"", table[i]);
                g_assert_cmpint(wire_tun_conf_decode(table[i], &d), ==, -EBADMSG);
                g_assert_cmpuint(d.mtu, ==, 1);
        }

        /* The limits themselves are fine: MTU 68, prefix 32. */
        TunConf d;
        g_assert_cmpint(wire_tun_conf_decode("RAAgCgoAAg==", &d), ==, 0);
        g_assert_cmpuint(d.mtu, ==, 68);
        g_assert_cmpuint(d.prefixlen, ==, 32);
}

static void test_base64_vectors(void) {
        /* RFC 4648 section 10. */
        static const struct {
                const char *data, *encoded;
        } table[] = {
                { "",       "" },
                { "f",      "Zg==" },
                { "fo",     "Zm8=" },
                { "foo",    "Zm9v" },
                { "foob",   "Zm9vYg==" },
                { "fooba",  "Zm9vYmE=" },
                { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                size_t n = strlen(table[i].data);
                char s[16];
                uint8_t d[16];

                wire_base64_encode(table[i].data, n, s);
                g_assert_cmpstr(s, ==, table[i].encoded);
                g_assert_cmpint(wire_base64_decode(table[i].encoded, d, sizeof(d)), ==, (ssize_t) n);
                g_assert_cmpmem(d, n, table[i].data, n);
        }
}

static void test_base64_binary(void) {
        uint8_t data[256], d[256];
        char s[4 * 86 + 1];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (255 - i);

        /* Every length, so every padding case meets every byte value. */
        for (size_t n = 0; n <= sizeof(data); n++) {
                wire_base64_encode(data, n, s);
                g_assert_cmpuint(strlen(s), ==, 4 * ((n + 2) / 3));
                g_assert_cmpint(wire_base64_decode(s, d, sizeof(d)), ==, (ssize_t) n);
                g_assert_cmpmem(d, n, data, n);
        }

        wire_base64_encode("\xfb\xff\xbf", 3, s);
        g_assert_cmpstr(s, ==, "+/+/");
}

static void test_base64_invalid(void) {
        static const char *const table[] = {
                "Z", "Zg", "Zg=", "Zg===", "=Zg=", "Z===", "====", "Zg==Zg==", "Zm=v",
                "Zm9v\n", "Zm9v ", " Zm9v", "Zm\t9v", "Zm9_", "Zm9-", "Zm9.", "Zm9v\x7fxyz",
                "Zm9v\xc3\xa9yz", "Zh==", "Zm9=",
        };
        uint8_t d[16];

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                g_test_message("\"%s\"", table[i]);
                g_assert_cmpint(wire_base64_decode(table[i], d, sizeof(d)), ==, -EBADMSG);
        }

        /* A buffer too small is refused, not overrun. */
        memset(d, 0xaa, sizeof(d));
        g_assert_cmpint(wire_base64_decode("Zm9vYmFy", d, 5), ==, -EBADMSG);
        g_assert_cmpint(d[5], ==, 0xaa);
        g_assert_cmpint(wire_base64_decode("Zm9vYmFy", d, 6), ==, 6);
}

static void test_offload_parse(void) {
        static const struct {
                const char *s;
                uint32_t bits;
        } table[] = {
                { "",                                  0 },
                { "csum",                              WIRE_OFFLOAD_CSUM },
                { "csum,tso4,tso6,ecn",                WIRE_OFFLOAD_V1 },
                { "csum,tso4,tso6,ecn,uso4,uso6",      WIRE_OFFLOAD_ALL },
                { "uso6,uso4,ecn,tso6,tso4,csum",      WIRE_OFFLOAD_ALL },
                { " csum , uso4\t",                    WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_USO4 },
                { "csum,gro,tso6",                     WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO6 },
                { "csum,csum",                         WIRE_OFFLOAD_CSUM },
                { ",,ecn,,",                           WIRE_OFFLOAD_ECN },
                { "csumx,tso,tso44,xcsum",             0 },
                { "cs um",                             0 },
                { "CSUM",                              0 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                g_test_message("\"%s\"", table[i].s);
                g_assert_cmphex(wire_offload_parse(table[i].s), ==, table[i].bits);
        }
}

static void test_offload_format(void) {
        static const struct {
                uint32_t bits;
                const char *s;
        } table[] = {
                { 0,                                     "" },
                { WIRE_OFFLOAD_V1,                       "csum,tso4,tso6,ecn" },
                { WIRE_OFFLOAD_ALL,                      "csum,tso4,tso6,ecn,uso4,uso6" },
                { WIRE_OFFLOAD_TSO6 | WIRE_OFFLOAD_USO6, "tso6,uso6" },
                { 0x10 | 0x80 | 0x80000000u,             "" }, /* no name: UFO and beyond */
        };
        char s[64];

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                wire_offload_format(table[i].bits, s, sizeof(s));
                g_assert_cmpstr(s, ==, table[i].s);
        }

        /* Every combination of named bits survives the round trip. */
        for (uint32_t bits = 0; bits <= 0x7f; bits++) {
                wire_offload_format(bits, s, sizeof(s));
                g_assert_cmphex(wire_offload_parse(s), ==, bits & WIRE_OFFLOAD_ALL);
        }

        /* A short buffer gets whole names only. */
        wire_offload_format(WIRE_OFFLOAD_ALL, s, 12);
        g_assert_cmpstr(s, ==, "csum,tso4");
}

typedef struct PrefixCase {
        const char *s;
        int r;
        int family;
        uint8_t prefixlen;
        const char *formatted;
} PrefixCase;

static void test_prefix_parse(void) {
        static const PrefixCase host[] = {
                { "10.0.0.1",             0, AF_INET,  32,  "10.0.0.1/32" },
                { "10.0.0.1/24",          0, AF_INET,  24,  "10.0.0.1/24" },
                { "10.0.0.0/24",          0, AF_INET,  24,  "10.0.0.0/24" },
                { "0.0.0.0/0",            0, AF_INET,  0,   "0.0.0.0/0" },
                { "255.255.255.255/32",   0, AF_INET,  32,  "255.255.255.255/32" },
                { "192.0.2.1/0",          0, AF_INET,  0,   "192.0.2.1/0" },
                { "fd00::1",              0, AF_INET6, 128, "fd00::1/128" },
                { "fd00::1/64",           0, AF_INET6, 64,  "fd00::1/64" },
                { "FD00:0:0::/8",         0, AF_INET6, 8,   "fd00::/8" },
                { "::/0",                 0, AF_INET6, 0,   "::/0" },
                { "::ffff:192.0.2.1/128", 0, AF_INET6, 128, "::ffff:192.0.2.1/128" },
                { "",                     -EINVAL },
                { "/24",                  -EINVAL },
                { "10.0.0.1/",            -EINVAL },
                { "10.0.0.1/33",          -EINVAL },
                { "10.0.0.1/024",         -EINVAL },
                { "10.0.0.1/00",          -EINVAL },
                { "10.0.0.1/+8",          -EINVAL },
                { "10.0.0.1/-1",          -EINVAL },
                { "10.0.0.1/8x",          -EINVAL },
                { "10.0.0.1/8/8",         -EINVAL },
                { "10.0.0.1/ 8",          -EINVAL },
                { "10.0.0.1/4294967304",  -EINVAL },
                { " 10.0.0.1",            -EINVAL },
                { "10.0.0.1 ",            -EINVAL },
                { "10.0.0.1 /8",          -EINVAL },
                { "10.0.0",               -EINVAL },
                { "10.0.0.256",           -EINVAL },
                { "010.0.0.1",            -EINVAL },
                { "0x0a.0.0.1",           -EINVAL },
                { "10.0.0.1.",            -EINVAL },
                { "fd00::1/129",          -EINVAL },
                { "fd00::1%eth0",         -EINVAL },
                { "fd00:::1",             -EINVAL },
                { "[fd00::1]",            -EINVAL },
                { "localhost",            -EINVAL },
                { "0000:0000:0000:0000:0000:ffff:192.000.002.001", -EINVAL },
        };
        static const PrefixCase network[] = {
                { "10.0.0.0/8",           0, AF_INET,  8,   "10.0.0.0/8" },
                { "10.0.0.1",             0, AF_INET,  32,  "10.0.0.1/32" },
                { "10.0.0.1/24",          -EINVAL },
                { "10.0.0.128/25",        0, AF_INET,  25,  "10.0.0.128/25" },
                { "10.0.0.129/25",        -EINVAL },
                { "0.0.0.0/0",            0, AF_INET,  0,   "0.0.0.0/0" },
                { "0.0.0.1/0",            -EINVAL },
                { "fd00::/8",             0, AF_INET6, 8,   "fd00::/8" },
                { "fd80::/8",             -EINVAL },
                { "fd00::1/127",          -EINVAL },
                { "fd00::2/127",          0, AF_INET6, 127, "fd00::2/127" },
                { "2001:db8::/32",        0, AF_INET6, 32,  "2001:db8::/32" },
        };
        static const struct {
                const PrefixCase *cases;
                size_t n;
                bool network;
        } sets[] = {
                { host, G_N_ELEMENTS(host), false },
                { network, G_N_ELEMENTS(network), true },
        };

        for (size_t k = 0; k < G_N_ELEMENTS(sets); k++)
                for (size_t i = 0; i < sets[k].n; i++) {
                        const PrefixCase *c = &sets[k].cases[i];
                        TapotunPrefix p = { .family = -1 }, q;
                        char s[64];

                        g_test_message("\"%s\" network=%d", c->s, sets[k].network);
                        g_assert_cmpint(wire_prefix_parse(c->s, sets[k].network, &p), ==, c->r);
                        if (c->r < 0) {
                                g_assert_cmpint(p.family, ==, -1);
                                continue;
                        }

                        g_assert_cmpint(p.family, ==, c->family);
                        g_assert_cmpuint(p.prefixlen, ==, c->prefixlen);
                        wire_prefix_format(&p, s, sizeof(s));
                        g_assert_cmpstr(s, ==, c->formatted);

                        g_assert_cmpint(wire_prefix_parse(s, sets[k].network, &q), ==, 0);
                        g_assert_true(wire_prefix_equal(&p, &q));
                }
}

static TapotunPrefix prefix(const char *s) {
        TapotunPrefix p;

        g_assert_cmpint(wire_prefix_parse(s, false, &p), ==, 0);
        return p;
}

static void test_prefix_format_unset(void) {
        TapotunPrefix p = {};
        char s[64] = "x";

        wire_prefix_format(&p, s, sizeof(s));
        g_assert_cmpstr(s, ==, "");
}

static void test_prefix_relations(void) {
        static const struct {
                const char *a, *b;
                bool a_contains_b, b_contains_a, overlaps, equal;
        } table[] = {
                { "10.0.0.0/8",      "10.1.2.3",         true,  false, true,  false },
                { "10.0.0.0/8",      "10.0.0.0/8",       true,  true,  true,  true  },
                { "10.0.0.0/8",      "10.0.0.0/16",      true,  false, true,  false },
                { "10.0.0.0/8",      "11.0.0.0/8",       false, false, false, false },
                { "10.0.0.0/9",      "10.128.0.0/9",     false, false, false, false },
                { "10.0.0.1/24",     "10.0.0.2/24",      true,  true,  true,  false },
                { "10.10.0.0/24",    "10.10.0.255",      true,  false, true,  false },
                { "10.10.0.0/24",    "10.10.1.0",        false, false, false, false },
                { "10.10.0.0/23",    "10.10.1.0",        true,  false, true,  false },
                { "0.0.0.0/0",       "203.0.113.9",      true,  false, true,  false },
                { "0.0.0.0/0",       "::/0",             false, false, false, false },
                { "10.0.0.1",        "::ffff:10.0.0.1",  false, false, false, false },
                { "fd00::/8",        "fd12:3456::1",     true,  false, true,  false },
                { "fd00::/8",        "fe80::1",          false, false, false, false },
                { "2001:db8::/127",  "2001:db8::1",      true,  false, true,  false },
                { "2001:db8::/127",  "2001:db8::2",      false, false, false, false },
                { "2001:db8::1",     "2001:db8::1/128",  true,  true,  true,  true  },
                { "2001:db8::1",     "2001:db8::1/64",   false, true,  true,  false },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                TapotunPrefix a = prefix(table[i].a), b = prefix(table[i].b);

                g_test_message("%s, %s", table[i].a, table[i].b);
                g_assert_cmpint(wire_prefix_contains(&a, &b), ==, table[i].a_contains_b);
                g_assert_cmpint(wire_prefix_contains(&b, &a), ==, table[i].b_contains_a);
                g_assert_cmpint(wire_prefix_overlaps(&a, &b), ==, table[i].overlaps);
                g_assert_cmpint(wire_prefix_overlaps(&b, &a), ==, table[i].overlaps);
                g_assert_cmpint(wire_prefix_equal(&a, &b), ==, table[i].equal);
                g_assert_cmpint(wire_prefix_equal(&b, &a), ==, table[i].equal);
        }

        /* An unset prefix contains and overlaps nothing. */
        TapotunPrefix unset = {}, any = prefix("0.0.0.0/0");
        g_assert_false(wire_prefix_contains(&unset, &unset));
        g_assert_false(wire_prefix_contains(&any, &unset));
        g_assert_false(wire_prefix_overlaps(&unset, &any));
        g_assert_false(wire_prefix_overlaps(&unset, &unset));
}

static void test_prefixes_parse(void) {
        static const struct {
                const char *s;
                int r;
                size_t n;
                const char *formatted;
        } table[] = {
                { "",                                     0,        0, "" },
                { "  ",                                   0,        0, "" },
                { "10.0.0.0/8",                           0,        1, "10.0.0.0/8" },
                { "10.0.0.0/8,fd00::/8",                  0,        2, "10.0.0.0/8,fd00::/8" },
                { " 10.0.0.0/8 ,\tfd00::/8 , 192.0.2.1 ", 0,        3, "10.0.0.0/8,fd00::/8,192.0.2.1/32" },
                { "fd00::2/64",                           0,        1, "fd00::2/64" },
                { ",",                                    -EBADMSG, 0, NULL },
                { "10.0.0.0/8,",                          -EBADMSG, 0, NULL },
                { ",10.0.0.0/8",                          -EBADMSG, 0, NULL },
                { "10.0.0.0/8,,fd00::/8",                 -EBADMSG, 0, NULL },
                { "10.0.0.0/8, ,fd00::/8",                -EBADMSG, 0, NULL },
                { "10.0.0.0/8;fd00::/8",                  -EBADMSG, 0, NULL },
                { "10.0.0.0/8 fd00::/8",                  -EBADMSG, 0, NULL },
                { "10.0.0.0/33",                          -EBADMSG, 0, NULL },
                { "10.0.0.0/8,bogus",                     -EBADMSG, 0, NULL },
                { "10.0.0.0/8\n",                         -EBADMSG, 0, NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                g_autofree TapotunPrefix *p = NULL;
                g_autofree char *s = NULL;
                size_t n = 99;

                g_test_message("\"%s\"", table[i].s);
                g_assert_cmpint(wire_prefixes_parse(table[i].s, &p, &n), ==, table[i].r);
                if (table[i].r < 0) {
                        g_assert_null(p);
                        g_assert_cmpuint(n, ==, 99);
                        continue;
                }

                g_assert_cmpuint(n, ==, table[i].n);
                s = wire_prefixes_format(p, n);
                g_assert_cmpstr(s, ==, table[i].formatted);
        }
}

static void test_prefixes_limit(void) {
        g_autoptr(GString) s = g_string_new(NULL);
        g_autofree TapotunPrefix *p = NULL;
        g_autofree char *f = NULL;
        size_t n;

        for (unsigned i = 0; i < 1024; i++)
                g_string_append_printf(s, "%s2001:db8:%x::/48", i > 0 ? "," : "", i + 1);

        g_assert_cmpint(wire_prefixes_parse(s->str, &p, &n), ==, 0);
        g_assert_cmpuint(n, ==, 1024);
        f = wire_prefixes_format(p, n);
        g_assert_nonnull(f);
        g_assert_true(g_str_equal(f, s->str)); /* not cmpstr: 18 KiB in a failure message */

        g_string_append(s, ",10.0.0.0/8");
        g_clear_pointer(&p, g_free);
        g_assert_cmpint(wire_prefixes_parse(s->str, &p, &n), ==, -EBADMSG);
        g_assert_null(p);

        /* Longest text of one entry, formatted back in full. */
        TapotunPrefix big = prefix("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128");
        TapotunPrefix three[3] = { big, big, big };
        g_clear_pointer(&f, g_free);
        f = wire_prefixes_format(three, 3);
        g_assert_cmpstr(f, ==,
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128,"
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128,"
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
}

static void test_prefix_is_network(void) {
        static const struct {
                const char *s;
                bool network;
        } cases[] = {
                { "10.1.2.0/24", true },   { "10.1.2.3/24", false }, { "10.1.2.3", true },
                { "0.0.0.0/0", true },     { "fd00::/64", true },    { "fd00::1/64", false },
                { "fd00::1", true },       { "::/0", true },         { "10.1.2.128/25", true },
        };
        TapotunPrefix unset = {};

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                TapotunPrefix p;

                g_assert_cmpint(wire_prefix_parse(cases[i].s, false, &p), ==, 0);
                if (wire_prefix_is_network(&p) != cases[i].network)
                        g_error("%s: expected %s", cases[i].s, cases[i].network ? "a network" : "host bits");
        }
        g_assert_false(wire_prefix_is_network(&unset));
}

/* What a client takes from the server's response headers, from whichever headers are there. */
static void test_server_conf_parse(void) {
        static const struct {
                const char *conf, *conf6, *offload, *routes;
                bool accept_routes;
                int result;
                const char *bad;     /* the header reported on -EBADMSG */
                uint16_t mtu;
                const char *address; /* x-tun-conf's */
                uint8_t prefixlen;
                const char *address6;
                uint32_t offloads;
                size_t n_routes, n_ignored;
        } cases[] = {
                /* The golden x-tun-conf alone: version 1, the v1 offloads. */
                { "3AUYCgoAAg==", NULL, NULL, NULL, true, 0, NULL, 1500, "10.10.0.2", 24, NULL, WIRE_OFFLOAD_V1, 0, 0 },
                { "3AUYCgoAAg==", "fd00:10::2/64", "csum,tso4", "10.20.0.0/24,fd00:20::/64", true, 0, NULL, 1500,
                  "10.10.0.2", 24, "fd00:10::2", WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4, 2, 0 },
                /* Routes are read only when the client accepts them. */
                { "3AUYCgoAAg==", NULL, NULL, "10.20.0.0/24", false, 0, NULL, 1500, "10.10.0.2", 24, NULL,
                  WIRE_OFFLOAD_V1, 0, 0 },
                /* Host bits set: not a network, left out and counted. */
                { "3AUYCgoAAg==", NULL, NULL, "10.20.0.1/24,10.30.0.0/16", true, 0, NULL, 1500, "10.10.0.2", 24,
                  NULL, WIRE_OFFLOAD_V1, 1, 1 },
                /* IPv6 only: MTU 1280, no IPv4 address. */
                { NULL, "fd00:10::2/64", NULL, NULL, true, 0, NULL, 1280, "0.0.0.0", 0, "fd00:10::2",
                  WIRE_OFFLOAD_V1, 0, 0 },
                /* Garbage offloads: nothing the server could send in one piece. */
                { "3AUYCgoAAg==", NULL, "\x01garbage", NULL, true, 0, NULL, 1500, "10.10.0.2", 24, NULL, 0, 0, 0 },
                { NULL, NULL, "csum", NULL, true, -ENODATA, NULL, 0, NULL, 0, NULL, 0, 0, 0 },
                { "not base64!", NULL, NULL, NULL, true, -EBADMSG, "x-tun-conf", 0, NULL, 0, NULL, 0, 0, 0 },
                { "3AUYCgoAAg==", "10.10.0.2/24", NULL, NULL, true, -EBADMSG, "x-tun-conf6", 0, NULL, 0, NULL, 0, 0,
                  0 },
                { "3AUYCgoAAg==", "fd00::zz/64", NULL, NULL, true, -EBADMSG, "x-tun-conf6", 0, NULL, 0, NULL, 0, 0,
                  0 },
                { "3AUYCgoAAg==", NULL, NULL, "10.20.0.0/24,,", true, -EBADMSG, "x-tun-routes", 0, NULL, 0, NULL, 0,
                  0, 0 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                TapotunHeader h[5];
                size_t n = 0;
                const TapotunHeader *bad = NULL;
                WireServerConf c = {};
                char buf[INET6_ADDRSTRLEN];
                int r;

                /* Other headers around them, and names in another case: both as a transport hands them. */
                h[n++] = (TapotunHeader) { .name = "content-type", .value = "application/octet-stream" };
                if (cases[i].conf)
                        h[n++] = (TapotunHeader) { .name = "X-Tun-Conf", .value = cases[i].conf };
                if (cases[i].conf6)
                        h[n++] = (TapotunHeader) { .name = "x-tun-conf6", .value = cases[i].conf6 };
                if (cases[i].offload)
                        h[n++] = (TapotunHeader) { .name = "x-tun-offload", .value = cases[i].offload };
                if (cases[i].routes)
                        h[n++] = (TapotunHeader) { .name = "X-TUN-ROUTES", .value = cases[i].routes };

                r = wire_server_conf_parse(h, n, cases[i].accept_routes, &c, &bad);
                g_test_message("case %zu: %d", i, r);
                g_assert_cmpint(r, ==, cases[i].result);
                if (r == -EBADMSG) {
                        g_assert_nonnull(bad);
                        g_assert_cmpint(g_ascii_strcasecmp(bad->name, cases[i].bad), ==, 0);
                        continue;
                }
                if (r < 0)
                        continue;
                g_assert_cmpuint(c.conf.mtu, ==, cases[i].mtu);
                g_assert_cmpstr(inet_ntop(AF_INET, &c.conf.address, buf, sizeof buf), ==, cases[i].address);
                g_assert_cmpuint(c.conf.prefixlen, ==, cases[i].prefixlen);
                if (cases[i].address6) {
                        g_assert_cmpint(c.conf6.family, ==, AF_INET6);
                        g_assert_cmpstr(inet_ntop(AF_INET6, &c.conf6.addr.in6, buf, sizeof buf), ==,
                                        cases[i].address6);
                } else
                        g_assert_cmpint(c.conf6.family, ==, 0);
                g_assert_cmpuint(c.offloads, ==, cases[i].offloads);
                g_assert_cmpuint(c.n_routes, ==, cases[i].n_routes);
                g_assert_cmpuint(c.n_routes_ignored, ==, cases[i].n_ignored);
                wire_server_conf_done(&c);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/wire/tun_conf/golden", test_tun_conf_golden);
        g_test_add_func("/wire/tun_conf/round-trip", test_tun_conf_round_trip);
        g_test_add_func("/wire/tun_conf/invalid", test_tun_conf_invalid);
        g_test_add_func("/wire/base64/vectors", test_base64_vectors);
        g_test_add_func("/wire/base64/binary", test_base64_binary);
        g_test_add_func("/wire/base64/invalid", test_base64_invalid);
        g_test_add_func("/wire/offload_parse/table", test_offload_parse);
        g_test_add_func("/wire/offload_format/table", test_offload_format);
        g_test_add_func("/wire/prefix_parse/table", test_prefix_parse);
        g_test_add_func("/wire/prefix_format/unset", test_prefix_format_unset);
        g_test_add_func("/wire/prefix_contains/table", test_prefix_relations);
        g_test_add_func("/wire/prefixes_parse/table", test_prefixes_parse);
        g_test_add_func("/wire/prefixes_parse/limit", test_prefixes_limit);

        g_test_add_func("/wire/prefix/is-network", test_prefix_is_network);
        g_test_add_func("/wire/server_conf_parse/table", test_server_conf_parse);
        return g_test_run();
}
