/* SPDX-License-Identifier: MIT */
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <string.h>

#include "icmp.h"
#include "macro.h"

/* RFC 1812 4.3.2.3: the answer stays within 576 bytes. */
#define ICMP4_ANSWER_MAX 576u
/* RFC 4443 2.4 (c): within the IPv6 minimum MTU. */
#define ICMP6_ANSWER_MAX 1280u

static uint32_t sum16(const uint8_t *b, size_t n, uint32_t sum) {
        for (size_t i = 0; i + 1 < n; i += 2)
                sum += (uint32_t) (b[i] << 8 | b[i + 1]);
        if (n & 1)
                sum += (uint32_t) (b[n - 1] << 8);
        return sum;
}

static uint16_t fold(uint32_t sum) {
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) ~sum;
}

static void put16(uint8_t *p, uint16_t v) {
        p[0] = v >> 8;
        p[1] = v & 0xff;
}

static size_t icmp4(const uint8_t *ip, size_t len, const TapotunPrefix *from, uint8_t *out) {
        size_t ihl, quote, total;
        uint8_t *hdr = out, *icmp;
        uint32_t dst, src;

        if (!from || from->family != AF_INET || len < 20)
                return 0;
        ihl = (size_t) (ip[0] & 0x0f) * 4;
        if (ihl < 20 || ihl > len)
                return 0;
        memcpy(&src, ip + 12, 4);
        memcpy(&dst, ip + 16, 4);
        src = ntohl(src);
        dst = ntohl(dst);

        /* Never for fragments after the first, multicast/broadcast destinations, unusable sources. */
        if ((((uint32_t) ip[6] << 8 | ip[7]) & 0x1fff) != 0)
                return 0;
        if ((dst >> 28) == 0xe || dst == 0xffffffffu || src == 0 || (src >> 28) == 0xe || (src >> 24) == 127)
                return 0;
        /* Never about an ICMP error: only echo and the other queries get answers. */
        if (ip[9] == IPPROTO_ICMP) {
                uint8_t type;
                if (len < ihl + 1)
                        return 0;
                type = ip[ihl];
                if (type != ICMP_ECHO && type != ICMP_TIMESTAMP && type != ICMP_INFO_REQUEST &&
                    type != ICMP_ADDRESS)
                        return 0;
        }

        quote = MIN(len, ICMP4_ANSWER_MAX - 20 - 8);
        total = 20 + 8 + quote;

        memset(hdr, 0, 28);
        hdr[0] = 0x45;
        put16(hdr + 2, (uint16_t) total);
        hdr[8] = 64;
        hdr[9] = IPPROTO_ICMP;
        memcpy(hdr + 12, &from->addr.in, 4);
        memcpy(hdr + 16, ip + 12, 4);
        put16(hdr + 10, fold(sum16(hdr, 20, 0)));

        icmp = hdr + 20;
        icmp[0] = ICMP_DEST_UNREACH;
        icmp[1] = ICMP_HOST_UNREACH;
        memcpy(icmp + 8, ip, quote);
        put16(icmp + 2, fold(sum16(icmp, 8 + quote, 0)));
        return total;
}

static bool in6_multicast(const uint8_t *a) {
        return a[0] == 0xff;
}

static bool in6_unspecified(const uint8_t *a) {
        static const uint8_t zero[16] = {};
        return memcmp(a, zero, 16) == 0;
}

static size_t icmp6(const uint8_t *ip, size_t len, const TapotunPrefix *from, uint8_t *out) {
        size_t quote, total;
        uint8_t *hdr = out, *icmp;
        uint32_t sum;

        if (!from || from->family != AF_INET6 || len < 40)
                return 0;
        if (in6_multicast(ip + 24) || in6_multicast(ip + 8) || in6_unspecified(ip + 8))
                return 0;
        /* An ICMPv6 error (type < 128) right after the fixed header gets no answer. Extension headers
         * are not walked: such packets are answered, which RFC 4443 allows. */
        if (ip[6] == IPPROTO_ICMPV6 && (len < 41 || ip[40] < 128))
                return 0;

        quote = MIN(len, ICMP6_ANSWER_MAX - 40 - 8);
        total = 40 + 8 + quote;

        memset(hdr, 0, 48);
        hdr[0] = 0x60;
        put16(hdr + 4, (uint16_t) (8 + quote));
        hdr[6] = IPPROTO_ICMPV6;
        hdr[7] = 64;
        memcpy(hdr + 8, &from->addr.in6, 16);
        memcpy(hdr + 24, ip + 8, 16);

        icmp = hdr + 40;
        icmp[0] = ICMP6_DST_UNREACH;
        icmp[1] = ICMP6_DST_UNREACH_NOROUTE;
        memcpy(icmp + 8, ip, quote);

        /* Pseudo-header: addresses, upper-layer length, next header. */
        sum = sum16(hdr + 8, 32, 0);
        sum += (uint32_t) (8 + quote);
        sum += IPPROTO_ICMPV6;
        put16(icmp + 2, fold(sum16(icmp, 8 + quote, sum)));
        return total;
}

size_t icmp_unreachable(const uint8_t *packet, size_t len, const TapotunPrefix *from4,
                        const TapotunPrefix *from6, uint8_t out[static ICMP_ANSWER_MAX]) {
        size_t n;

        if (len < 1)
                return 0;
        memset(out, 0, TAPOTUN_VNET_HDR_SIZE);
        switch (packet[0] >> 4) {
        case 4:
                n = icmp4(packet, len, from4, out + TAPOTUN_VNET_HDR_SIZE);
                break;
        case 6:
                n = icmp6(packet, len, from6, out + TAPOTUN_VNET_HDR_SIZE);
                break;
        default:
                n = 0;
        }
        return n > 0 ? TAPOTUN_VNET_HDR_SIZE + n : 0;
}
