/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <glib.h>

#include "icmp.h"
#include "wire.h"

static uint16_t csum(const uint8_t *b, size_t n, uint32_t sum) {
        for (size_t i = 0; i + 1 < n; i += 2)
                sum += (uint32_t) (b[i] << 8 | b[i + 1]);
        if (n & 1)
                sum += (uint32_t) (b[n - 1] << 8);
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) ~sum;
}

static TapotunPrefix prefix(const char *s) {
        TapotunPrefix p;

        g_assert_cmpint(wire_prefix_parse(s, false, &p), ==, 0);
        return p;
}

/* An IPv4 packet of LEN bytes SRC -> DST with protocol PROTO and first payload byte TYPE. */
static size_t ip4(uint8_t *b, size_t len, const char *src, const char *dst, uint8_t proto, uint8_t type,
                  uint16_t frag) {
        memset(b, 0xab, len);
        b[0] = 0x45;
        b[1] = 0;
        b[2] = len >> 8;
        b[3] = len & 0xff;
        b[6] = frag >> 8;
        b[7] = frag & 0xff;
        b[8] = 64;
        b[9] = proto;
        g_assert_cmpint(inet_pton(AF_INET, src, b + 12), ==, 1);
        g_assert_cmpint(inet_pton(AF_INET, dst, b + 16), ==, 1);
        b[20] = type;
        return len;
}

static size_t ip6(uint8_t *b, size_t len, const char *src, const char *dst, uint8_t next, uint8_t type) {
        memset(b, 0xcd, len);
        b[0] = 0x60;
        b[1] = b[2] = b[3] = 0;
        b[4] = (len - 40) >> 8;
        b[5] = (len - 40) & 0xff;
        b[6] = next;
        b[7] = 64;
        g_assert_cmpint(inet_pton(AF_INET6, src, b + 8), ==, 1);
        g_assert_cmpint(inet_pton(AF_INET6, dst, b + 24), ==, 1);
        b[40] = type;
        return len;
}

static void test_ipv4_echo(void) {
        TapotunPrefix from4 = prefix("10.10.0.1");
        uint8_t in[100], out[ICMP_ANSWER_MAX];
        size_t n = icmp_unreachable(in, ip4(in, sizeof in, "10.10.0.2", "203.0.113.9", 1, 8, 0x4000), &from4, NULL,
                                    out);
        const uint8_t *ip = out + TAPOTUN_VNET_HDR_SIZE, *icmp = ip + 20;
        char a[INET_ADDRSTRLEN];

        g_assert_cmpuint(n, ==, 12 + 20 + 8 + 100);
        for (size_t i = 0; i < TAPOTUN_VNET_HDR_SIZE; i++)
                g_assert_cmpuint(out[i], ==, 0);
        g_assert_cmphex(ip[0], ==, 0x45);
        g_assert_cmpuint(ip[2] << 8 | ip[3], ==, 128);
        g_assert_cmpuint(ip[9], ==, 1);
        g_assert_cmpstr(inet_ntop(AF_INET, ip + 12, a, sizeof a), ==, "10.10.0.1");
        g_assert_cmpstr(inet_ntop(AF_INET, ip + 16, a, sizeof a), ==, "10.10.0.2");
        g_assert_cmphex(csum(ip, 20, 0), ==, 0);
        g_assert_cmpuint(icmp[0], ==, 3); /* destination unreachable */
        g_assert_cmpuint(icmp[1], ==, 1); /* host unreachable */
        g_assert_cmphex(csum(icmp, 8 + 100, 0), ==, 0);
        g_assert_cmpmem(icmp + 8, 100, in, 100);
}

static void test_ipv4_quote_bounded(void) {
        TapotunPrefix from4 = prefix("10.10.0.1");
        static uint8_t in[1400], out[ICMP_ANSWER_MAX];
        size_t n = icmp_unreachable(in, ip4(in, sizeof in, "10.10.0.2", "203.0.113.9", 17, 0, 0), &from4, NULL, out);

        /* RFC 1812: no more than 576 bytes. */
        g_assert_cmpuint(n, ==, 12 + 576);
        g_assert_cmphex(csum(out + 12 + 20, 576 - 20, 0), ==, 0);
}

typedef struct NoAnswer {
        const char *name;
        const char *src, *dst;
        uint8_t proto, type;
        uint16_t frag;
} NoAnswer;

static const NoAnswer no_answer4[] = {
        { "icmp-error", "10.10.0.2", "203.0.113.9", 1, 3, 0 },
        { "icmp-time-exceeded", "10.10.0.2", "203.0.113.9", 1, 11, 0 },
        { "multicast", "10.10.0.2", "224.0.0.251", 17, 0, 0 },
        { "broadcast", "10.10.0.2", "255.255.255.255", 17, 0, 0 },
        { "unspecified-source", "0.0.0.0", "203.0.113.9", 17, 0, 0 },
        { "loopback-source", "127.0.0.1", "203.0.113.9", 17, 0, 0 },
        { "later-fragment", "10.10.0.2", "203.0.113.9", 17, 0, 0x0010 },
};

static void test_ipv4_no_answer(gconstpointer data) {
        const NoAnswer *c = data;
        TapotunPrefix from4 = prefix("10.10.0.1");
        uint8_t in[60], out[ICMP_ANSWER_MAX];

        ip4(in, sizeof in, c->src, c->dst, c->proto, c->type, c->frag);
        g_assert_cmpuint(icmp_unreachable(in, sizeof in, &from4, NULL, out), ==, 0);
}

static void test_no_source(void) {
        TapotunPrefix from6 = prefix("fd00:10::1");
        uint8_t in[60], out[ICMP_ANSWER_MAX];

        /* An IPv4 packet but only an IPv6 server address: nothing to answer from. */
        ip4(in, sizeof in, "10.10.0.2", "203.0.113.9", 17, 0, 0);
        g_assert_cmpuint(icmp_unreachable(in, sizeof in, NULL, &from6, out), ==, 0);
        g_assert_cmpuint(icmp_unreachable(in, 10, &from6, &from6, out), ==, 0);
}

static void test_ipv6_echo(void) {
        TapotunPrefix from6 = prefix("fd00:10::1");
        uint8_t in[200], out[ICMP_ANSWER_MAX];
        size_t n = icmp_unreachable(in, ip6(in, sizeof in, "fd00:10::2", "2001:db8::9", 58, 128), NULL, &from6, out);
        const uint8_t *ip = out + TAPOTUN_VNET_HDR_SIZE, *icmp = ip + 40;
        char a[INET6_ADDRSTRLEN];
        uint32_t pseudo = 0;

        g_assert_cmpuint(n, ==, 12 + 40 + 8 + 200);
        g_assert_cmphex(ip[0] >> 4, ==, 6);
        g_assert_cmpuint(ip[4] << 8 | ip[5], ==, 208);
        g_assert_cmpuint(ip[6], ==, 58);
        g_assert_cmpstr(inet_ntop(AF_INET6, ip + 8, a, sizeof a), ==, "fd00:10::1");
        g_assert_cmpstr(inet_ntop(AF_INET6, ip + 24, a, sizeof a), ==, "fd00:10::2");
        g_assert_cmpuint(icmp[0], ==, 1); /* destination unreachable */
        g_assert_cmpuint(icmp[1], ==, 0); /* no route */
        g_assert_cmpmem(icmp + 8, 200, in, 200);

        for (size_t i = 8; i < 40; i += 2)
                pseudo += (uint32_t) (ip[i] << 8 | ip[i + 1]);
        pseudo += 208 + 58;
        g_assert_cmphex(csum(icmp, 208, pseudo), ==, 0);
}

static void test_ipv6_bounded(void) {
        TapotunPrefix from6 = prefix("fd00:10::1");
        static uint8_t in[1400], out[ICMP_ANSWER_MAX];

        g_assert_cmpuint(icmp_unreachable(in, ip6(in, sizeof in, "fd00:10::2", "2001:db8::9", 17, 0), NULL, &from6,
                                          out), ==, 12 + 1280);
}

static const NoAnswer no_answer6[] = {
        { "icmp6-error", "fd00:10::2", "2001:db8::9", 58, 1, 0 },
        { "icmp6-packet-too-big", "fd00:10::2", "2001:db8::9", 58, 2, 0 },
        { "multicast", "fe80::1", "ff02::2", 58, 133, 0 },
        { "unspecified-source", "::", "2001:db8::9", 17, 0, 0 },
};

static void test_ipv6_no_answer(gconstpointer data) {
        const NoAnswer *c = data;
        TapotunPrefix from6 = prefix("fd00:10::1");
        uint8_t in[80], out[ICMP_ANSWER_MAX];

        ip6(in, sizeof in, c->src, c->dst, c->proto, c->type);
        g_assert_cmpuint(icmp_unreachable(in, sizeof in, NULL, &from6, out), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/icmp/unreachable/ipv4-echo", test_ipv4_echo);
        g_test_add_func("/icmp/unreachable/ipv4-quote-bounded", test_ipv4_quote_bounded);
        for (size_t i = 0; i < G_N_ELEMENTS(no_answer4); i++) {
                g_autofree char *n = g_strdup_printf("/icmp/unreachable/ipv4-none-%s", no_answer4[i].name);
                g_test_add_data_func(n, &no_answer4[i], test_ipv4_no_answer);
        }
        g_test_add_func("/icmp/unreachable/no-source", test_no_source);
        g_test_add_func("/icmp/unreachable/ipv6-echo", test_ipv6_echo);
        g_test_add_func("/icmp/unreachable/ipv6-bounded", test_ipv6_bounded);
        for (size_t i = 0; i < G_N_ELEMENTS(no_answer6); i++) {
                g_autofree char *n = g_strdup_printf("/icmp/unreachable/ipv6-none-%s", no_answer6[i].name);
                g_test_add_data_func(n, &no_answer6[i], test_ipv6_no_answer);
        }
        return g_test_run();
}
