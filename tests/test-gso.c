/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <glib.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>

#include <tapotun/plugin.h>

#include "gso.h"
#include "wire.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80

/* ---------------------------------------------------------------------------------------------- */
/* A reference checksum, written independently of gso.c: big-endian 16-bit words, one at a time. */

static uint32_t ref_sum(uint32_t sum, const uint8_t *d, size_t n) {
        for (size_t i = 0; i + 1 < n; i += 2)
                sum += (uint32_t) d[i] << 8 | d[i + 1];
        if (n % 2)
                sum += (uint32_t) d[n - 1] << 8;
        return sum;
}

static uint16_t ref_fold(uint32_t sum) {
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) sum;
}

static uint32_t ref_pseudo(const uint8_t *ip, uint8_t proto, size_t l4_len) {
        if (ip[0] >> 4 == 4)
                return ref_sum(0, ip + 12, 8) + proto + (uint32_t) l4_len;
        return ref_sum(0, ip + 8, 32) + proto + (uint32_t) (l4_len >> 16) + (uint32_t) (l4_len & 0xffff);
}

static uint16_t be16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p) {
        return (uint32_t) be16(p) << 16 | be16(p + 2);
}

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static void put32(uint8_t *p, uint32_t v) {
        put16(p, (uint16_t) (v >> 16));
        put16(p + 2, (uint16_t) v);
}

/* The classic example header (RFC 1071 style) whose checksum is 0xb861: anchors gso_csum_* to a known
 * value, and the reference to gso_csum_*. */
static void test_csum_known(void) {
        static const uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                       0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
        uint16_t c = (uint16_t) ~gso_csum_fold(gso_csum_add(0, h, sizeof h));
        const uint8_t *b = (const uint8_t *) &c;

        g_assert_cmpuint(b[0], ==, 0xb8);
        g_assert_cmpuint(b[1], ==, 0x61);
        g_assert_cmpuint((uint16_t) ~ref_fold(ref_sum(0, h, sizeof h)), ==, 0xb861);
        /* Odd lengths pad with a zero byte. */
        c = gso_csum_fold(gso_csum_add(0, (const uint8_t[]) { 0x12, 0x34, 0x56 }, 3));
        g_assert_cmpuint(b[0], ==, 0x68);
        g_assert_cmpuint(b[1], ==, 0x34);
}

/* ---------------------------------------------------------------------------------------------- */
/* Building super-packets the way the kernel hands them out of a TUN with offloads. */

typedef struct Built {
        uint8_t frame[GSO_BUF_SIZE];
        size_t len;
        size_t l4, hlen;
} Built;

/* IP (4 or 6) + TCP or UDP header + PAYLOAD bytes; NEEDS_CSUM with the pseudo-header sum in the
 * checksum field, and GSO_TYPE/MSS in the vnet header. */
static void build(Built *b, int version, uint8_t proto, size_t payload, uint8_t gso_type, uint16_t mss,
                  uint8_t tcp_flags) {
        struct virtio_net_hdr h = {
                .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                .gso_type = gso_type,
                .gso_size = htole16(mss),
        };
        uint8_t *ip = b->frame + TAPOTUN_VNET_HDR_SIZE, *l4;
        size_t l4hdr = proto == IPPROTO_TCP ? 20 : 8, total;
        uint16_t partial;

        memset(b->frame, 0, sizeof b->frame);
        b->l4 = version == 4 ? 20 : 40;
        b->hlen = b->l4 + l4hdr;
        total = b->hlen + payload;
        if (version == 4) {
                ip[0] = 0x45;
                put16(ip + 2, (uint16_t) total);
                put16(ip + 4, 0x1234);
                ip[6] = 0x40; /* DF */
                ip[8] = 64;
                ip[9] = proto;
                memcpy(ip + 12, (const uint8_t[]) { 10, 10, 0, 1, 10, 10, 0, 2 }, 8);
                put16(ip + 10, (uint16_t) ~ref_fold(ref_sum(0, ip, 20)));
        } else {
                ip[0] = 0x60;
                put16(ip + 4, (uint16_t) (total - 40));
                ip[6] = proto;
                ip[7] = 64;
                ip[8] = 0xfd;
                ip[23] = 1;
                ip[24] = 0xfd;
                ip[39] = 2;
        }
        l4 = ip + b->l4;
        put16(l4, 40000);
        put16(l4 + 2, 5201);
        if (proto == IPPROTO_TCP) {
                put32(l4 + 4, 0xfffff000u); /* wraps inside the packet */
                put32(l4 + 8, 77);
                l4[12] = 5 << 4;
                l4[13] = tcp_flags;
                put16(l4 + 14, 512);
        } else
                put16(l4 + 4, (uint16_t) (total - b->l4));
        for (size_t i = 0; i < payload; i++)
                ip[b->hlen + i] = (uint8_t) (i * 7 + i / 251);

        partial = ref_fold(ref_pseudo(ip, proto, total - b->l4));
        put16(l4 + (proto == IPPROTO_TCP ? 16 : 6), partial);
        h.hdr_len = htole16((uint16_t) b->hlen);
        h.csum_start = htole16((uint16_t) b->l4);
        h.csum_offset = htole16(proto == IPPROTO_TCP ? 16 : 6);
        memcpy(b->frame, &h, sizeof h);
        b->len = TAPOTUN_VNET_HDR_SIZE + total;
}

typedef struct Collected {
        size_t n;
        uint8_t *frames[128];
        size_t lens[128];
        int fail_at; /* emit returns -ENOBUFS for this frame (1-based), 0: never */
} Collected;

static int collect(const uint8_t *frame, size_t len, void *userdata) {
        Collected *c = userdata;

        if (c->fail_at > 0 && c->n + 1 == (size_t) c->fail_at)
                return -ENOBUFS;
        g_assert_cmpuint(c->n, <, G_N_ELEMENTS(c->frames));
        c->frames[c->n] = g_memdup2(frame, len);
        c->lens[c->n++] = len;
        return 0;
}

static void collected_clear(Collected *c) {
        for (size_t i = 0; i < c->n; i++)
                g_free(c->frames[i]);
        c->n = 0;
}

/* The checksum of a segment's transport part, completed as a receiver would (the field holding the
 * pseudo-header sum when PARTIAL), must verify. */
static void assert_l4_checksum(const uint8_t *frame, size_t len, size_t l4, uint8_t proto, bool partial) {
        struct virtio_net_hdr h;
        const uint8_t *ip = frame + TAPOTUN_VNET_HDR_SIZE;
        size_t ip_len = len - TAPOTUN_VNET_HDR_SIZE, at = l4 + (proto == IPPROTO_TCP ? 16 : 6);

        memcpy(&h, frame, sizeof h);
        if (partial) {
                uint8_t copy[GSO_BUF_SIZE];

                g_assert_cmpuint(h.flags, ==, VIRTIO_NET_HDR_F_NEEDS_CSUM);
                g_assert_cmpuint(le16toh(h.csum_start), ==, l4);
                g_assert_cmpuint(le16toh(h.csum_offset), ==, at - l4);
                g_assert_cmpuint(be16(ip + at), ==, ref_fold(ref_pseudo(ip, proto, ip_len - l4)));
                memcpy(copy, ip, ip_len);
                put16(copy + at, (uint16_t) ~ref_fold(ref_sum(0, copy + l4, ip_len - l4)));
                g_assert_cmpuint(ref_fold(ref_pseudo(copy, proto, ip_len - l4) + ref_sum(0, copy + l4, ip_len - l4)),
                                 ==, 0xffff);
        } else {
                g_assert_cmpuint(h.flags, ==, 0);
                g_assert_cmpuint(be16(ip + at), !=, 0);
                g_assert_cmpuint(ref_fold(ref_pseudo(ip, proto, ip_len - l4) + ref_sum(0, ip + l4, ip_len - l4)), ==,
                                 0xffff);
        }
}

typedef struct SegmentCase {
        const char *name;
        int version;
        uint8_t proto;
        uint8_t gso_type;
        size_t payload;
        uint16_t mss;
        uint32_t offloads; /* of the receiver */
        uint8_t tcp_flags;
} SegmentCase;

static const SegmentCase segment_cases[] = {
        { "/gso/segment/tcp4-full", 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV4, 2500, 1000, 0,
          TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR },
        { "/gso/segment/tcp4-partial", 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV4, 4000, 1448, WIRE_OFFLOAD_CSUM,
          TCP_ACK | TCP_PSH },
        { "/gso/segment/tcp4-ecn", 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 3000, 1448,
          WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4 | WIRE_OFFLOAD_TSO6, TCP_ACK | TCP_CWR },
        { "/gso/segment/tcp4-exact", 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV4, 3000, 1000, 0, TCP_ACK | TCP_FIN },
        { "/gso/segment/tcp6-full", 6, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV6, 65000, 1428, 0,
          TCP_ACK | TCP_PSH | TCP_CWR },
        { "/gso/segment/tcp6-partial", 6, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV6, 2000, 1200,
          WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4, TCP_ACK | TCP_PSH },
        { "/gso/segment/udp4-full", 4, IPPROTO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, 6000, 1472, 0, 0 },
        { "/gso/segment/udp4-partial", 4, IPPROTO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, 2401, 1200, WIRE_OFFLOAD_V1, 0 },
        { "/gso/segment/udp6-full", 6, IPPROTO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, 3000, 1000, WIRE_OFFLOAD_USO4, 0 },
};

static void test_segment(gconstpointer data) {
        const SegmentCase *t = data;
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE];
        bool partial = t->offloads & WIRE_OFFLOAD_CSUM;
        size_t n_expected = (t->payload + t->mss - 1) / t->mss, l4hdr = t->proto == IPPROTO_TCP ? 20 : 8;
        const uint8_t *in_ip;
        Collected c = {};
        int r;

        build(&b, t->version, t->proto, t->payload, t->gso_type, t->mss, t->tcp_flags);
        in_ip = b.frame + TAPOTUN_VNET_HDR_SIZE;
        r = gso_segment(b.frame, b.len, t->offloads, buf, collect, &c);
        g_assert_cmpint(r, ==, (int) n_expected);
        g_assert_cmpuint(c.n, ==, n_expected);

        for (size_t i = 0; i < c.n; i++) {
                const uint8_t *ip = c.frames[i] + TAPOTUN_VNET_HDR_SIZE, *l4 = ip + b.l4;
                size_t seg = MIN((size_t) t->mss, t->payload - i * t->mss), total = b.hlen + seg;
                struct virtio_net_hdr h;
                bool first = i == 0, last = i + 1 == c.n;

                memcpy(&h, c.frames[i], sizeof h);
                g_assert_cmpuint(h.gso_type, ==, VIRTIO_NET_HDR_GSO_NONE);
                g_assert_cmpuint(h.gso_size, ==, 0);
                g_assert_cmpuint(c.lens[i], ==, TAPOTUN_VNET_HDR_SIZE + total);

                if (t->version == 4) {
                        g_assert_cmpuint(be16(ip + 2), ==, total);
                        g_assert_cmpuint(be16(ip + 4), ==, 0x1234 + i);
                        g_assert_cmpuint(ip[6], ==, 0x40);
                        g_assert_cmpmem(ip + 8, 2, in_ip + 8, 2);    /* ttl, protocol */
                        g_assert_cmpmem(ip + 12, 8, in_ip + 12, 8);  /* addresses */
                        g_assert_cmpuint(ref_fold(ref_sum(0, ip, 20)), ==, 0xffff);
                } else {
                        g_assert_cmpuint(be16(ip + 4), ==, total - 40);
                        g_assert_cmpmem(ip + 6, 34, in_ip + 6, 34); /* next header, hop limit, addresses */
                }

                if (t->proto == IPPROTO_TCP) {
                        uint8_t flags = t->tcp_flags;

                        g_assert_cmpuint(be32(l4 + 4), ==, 0xfffff000u + (uint32_t) (i * t->mss));
                        g_assert_cmpuint(be32(l4 + 8), ==, 77);
                        if (!last)
                                flags &= (uint8_t) ~(TCP_FIN | TCP_PSH);
                        if (!first)
                                flags &= (uint8_t) ~TCP_CWR;
                        g_assert_cmpuint(l4[13], ==, flags);
                        g_assert_cmpuint(be16(l4 + 14), ==, 512);
                } else
                        g_assert_cmpuint(be16(l4 + 4), ==, total - b.l4);
                g_assert_cmpmem(l4, 4, in_ip + b.l4, 4); /* ports */
                g_assert_cmpmem(ip + b.hlen, seg, in_ip + b.hlen + i * t->mss, seg);
                assert_l4_checksum(c.frames[i], c.lens[i], b.l4, t->proto, partial);
        }
        g_assert_cmpuint(b.hlen, ==, b.l4 + l4hdr);
        collected_clear(&c);
}

/* A frame the receiver accepts as it is goes out untouched, without a copy. */
static void test_pass_through(void) {
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE];
        Collected c = {};

        build(&b, 4, IPPROTO_TCP, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 1448, TCP_ACK);
        g_assert_cmpint(gso_segment(b.frame, b.len, WIRE_OFFLOAD_V1, buf, collect, &c), ==, 1);
        g_assert_cmpuint(c.n, ==, 1);
        g_assert_cmpmem(c.frames[0], c.lens[0], b.frame, b.len);
        collected_clear(&c);

        build(&b, 6, IPPROTO_UDP, 3000, VIRTIO_NET_HDR_GSO_UDP_L4, 1000, 0);
        g_assert_cmpint(gso_segment(b.frame, b.len, WIRE_OFFLOAD_ALL, buf, collect, &c), ==, 1);
        g_assert_cmpmem(c.frames[0], c.lens[0], b.frame, b.len);
        collected_clear(&c);
}

/* NEEDS_CSUM without GSO, to a peer without csum: the checksum is completed, the flag cleared. */
static void test_complete_checksum(void) {
        static const struct {
                int version;
                uint8_t proto;
                size_t payload;
        } cases[] = {
                { 4, IPPROTO_TCP, 1000 }, { 4, IPPROTO_UDP, 999 }, { 6, IPPROTO_TCP, 1 }, { 6, IPPROTO_UDP, 1400 },
        };
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE];

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                Collected c = {};
                size_t at;

                build(&b, cases[i].version, cases[i].proto, cases[i].payload, VIRTIO_NET_HDR_GSO_NONE, 0, TCP_ACK);
                g_assert_cmpuint(gso_frame_needs(b.frame, b.len), ==, WIRE_OFFLOAD_CSUM);
                g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &c), ==, 1);
                g_assert_cmpuint(c.lens[0], ==, b.len);
                assert_l4_checksum(c.frames[0], c.lens[0], b.l4, cases[i].proto, false);
                /* Nothing but the checksum and the vnet header changed. */
                at = TAPOTUN_VNET_HDR_SIZE + b.l4 + (cases[i].proto == IPPROTO_TCP ? 16 : 6);
                g_assert_cmpmem(c.frames[0] + TAPOTUN_VNET_HDR_SIZE, at - TAPOTUN_VNET_HDR_SIZE,
                                b.frame + TAPOTUN_VNET_HDR_SIZE, at - TAPOTUN_VNET_HDR_SIZE);
                g_assert_cmpmem(c.frames[0] + at + 2, b.len - at - 2, b.frame + at + 2, b.len - at - 2);
                collected_clear(&c);
        }
}

static void test_frame_needs(void) {
        static const struct {
                int version;
                uint8_t proto, gso_type;
                uint32_t needs;
        } cases[] = {
                { 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_NONE, WIRE_OFFLOAD_CSUM },
                { 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV4, WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4 },
                { 6, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV6, WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO6 },
                { 4, IPPROTO_TCP, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
                  WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4 | WIRE_OFFLOAD_ECN },
                { 4, IPPROTO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_USO4 },
                { 6, IPPROTO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4, WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_USO6 },
        };
        static Built b;

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                build(&b, cases[i].version, cases[i].proto, 3000, cases[i].gso_type, 1000, TCP_ACK);
                g_assert_cmpuint(gso_frame_needs(b.frame, b.len), ==, cases[i].needs);
        }
        /* A plain packet with a full checksum needs nothing. */
        b.frame[0] = 0;
        b.frame[1] = VIRTIO_NET_HDR_GSO_NONE;
        g_assert_cmpuint(gso_frame_needs(b.frame, b.len), ==, 0);
}

/* Headers that contradict the vnet header are refused, not trusted. */
static void test_bad(void) {
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE];
        Collected c = {};

        /* TCPV4 on an IPv6 packet. */
        build(&b, 6, IPPROTO_TCP, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 1000, TCP_ACK);
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &c), ==, -EBADMSG);
        /* An IPv4 total length beyond the frame. */
        build(&b, 4, IPPROTO_TCP, 3000, VIRTIO_NET_HDR_GSO_TCPV4, 1000, TCP_ACK);
        put16(b.frame + TAPOTUN_VNET_HDR_SIZE + 2, 60000);
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &c), ==, -EBADMSG);
        /* A checksum location outside the packet. */
        build(&b, 4, IPPROTO_UDP, 100, VIRTIO_NET_HDR_GSO_NONE, 0, 0);
        b.frame[6] = 0xff;
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &c), ==, -EBADMSG);
        /* UDP GSO on a TCP packet. */
        build(&b, 4, IPPROTO_TCP, 3000, VIRTIO_NET_HDR_GSO_UDP_L4, 1000, TCP_ACK);
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &c), ==, -EBADMSG);
        g_assert_cmpuint(c.n, ==, 0);
}

/* The receiver's error (a full queue) stops the segmentation and is returned. */
static void test_emit_error(void) {
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE];
        Collected c = { .fail_at = 3 };

        build(&b, 4, IPPROTO_TCP, 10000, VIRTIO_NET_HDR_GSO_TCPV4, 1000, TCP_ACK);
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &c), ==, -ENOBUFS);
        g_assert_cmpuint(c.n, ==, 2);
        collected_clear(&c);
}

/* ---------------------------------------------------------------------------------------------- */
/* GRO */

/* Segments (full checksums, as a TUN without offloads hands them out) joined again make the super-packet
 * they came from, which segments back into the same bytes. */
static void test_gro_round_trip(gconstpointer data) {
        int version = GPOINTER_TO_INT(data);
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE], buf2[GSO_BUF_SIZE];
        static GsoGro g;
        Collected segs = {}, again = {};
        const uint8_t *frame;
        size_t len;
        struct virtio_net_hdr h;

        build(&b, version, IPPROTO_TCP, 14000, version == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6,
              1400, TCP_ACK | TCP_PSH);
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &segs), ==, 10);

        g.len = 0;
        for (size_t i = 0; i < segs.n; i++)
                g_assert_true(gso_gro_add(&g, segs.frames[i], segs.lens[i], WIRE_OFFLOAD_ALL));
        /* The PSH segment was the last: nothing joins after it. */
        g_assert_false(gso_gro_add(&g, segs.frames[1], segs.lens[1], WIRE_OFFLOAD_ALL));
        g_assert_true(gso_gro_take(&g, &frame, &len));
        g_assert_cmpuint(g.len, ==, 0);

        g_assert_cmpuint(len, ==, b.len);
        memcpy(&h, frame, sizeof h);
        g_assert_cmpuint(h.flags, ==, VIRTIO_NET_HDR_F_NEEDS_CSUM);
        g_assert_cmpuint(h.gso_type, ==, version == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6);
        g_assert_cmpuint(le16toh(h.gso_size), ==, 1400);
        g_assert_cmpuint(le16toh(h.csum_start), ==, b.l4);
        g_assert_cmpuint(le16toh(h.csum_offset), ==, 16);
        g_assert_cmpuint(le16toh(h.hdr_len), ==, b.hlen);
        /* The IP packet is the original one, partial checksum included. */
        g_assert_cmpmem(frame + TAPOTUN_VNET_HDR_SIZE, len - TAPOTUN_VNET_HDR_SIZE, b.frame + TAPOTUN_VNET_HDR_SIZE,
                        b.len - TAPOTUN_VNET_HDR_SIZE);

        g_assert_cmpint(gso_segment(frame, len, 0, buf2, collect, &again), ==, 10);
        for (size_t i = 0; i < segs.n; i++)
                g_assert_cmpmem(again.frames[i], again.lens[i], segs.frames[i], segs.lens[i]);
        collected_clear(&segs);
        collected_clear(&again);
}

/* What must not be joined is refused, and one segment alone comes back as it went in. */
static void test_gro_refuse(void) {
        static Built b;
        static uint8_t buf[GSO_BUF_SIZE], seg[GSO_BUF_SIZE];
        static GsoGro g;
        Collected segs = {};
        const uint8_t *frame;
        size_t len;

        build(&b, 4, IPPROTO_TCP, 5000, VIRTIO_NET_HDR_GSO_TCPV4, 1000, TCP_ACK);
        g_assert_cmpint(gso_segment(b.frame, b.len, 0, buf, collect, &segs), ==, 5);

        /* Not for a TUN without TSO, nor a super-packet, nor a SYN. */
        g.len = 0;
        g_assert_false(gso_gro_add(&g, segs.frames[0], segs.lens[0], WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO6));
        g_assert_false(gso_gro_add(&g, b.frame, b.len, WIRE_OFFLOAD_ALL));
        memcpy(seg, segs.frames[0], segs.lens[0]);
        seg[TAPOTUN_VNET_HDR_SIZE + 20 + 13] |= 0x02;
        g_assert_false(gso_gro_add(&g, seg, segs.lens[0], WIRE_OFFLOAD_ALL));
        g_assert_cmpuint(g.len, ==, 0);

        /* A gap in the sequence, another port, another IPv4 id: each ends the packet. */
        g_assert_true(gso_gro_add(&g, segs.frames[0], segs.lens[0], WIRE_OFFLOAD_ALL));
        g_assert_false(gso_gro_add(&g, segs.frames[2], segs.lens[2], WIRE_OFFLOAD_ALL));
        memcpy(seg, segs.frames[1], segs.lens[1]);
        seg[TAPOTUN_VNET_HDR_SIZE + 20 + 1] ^= 1;
        g_assert_false(gso_gro_add(&g, seg, segs.lens[1], WIRE_OFFLOAD_ALL));
        memcpy(seg, segs.frames[1], segs.lens[1]);
        seg[TAPOTUN_VNET_HDR_SIZE + 5] ^= 1;
        g_assert_false(gso_gro_add(&g, seg, segs.lens[1], WIRE_OFFLOAD_ALL));

        /* One segment held: it comes back untouched, full checksum and all. */
        g_assert_true(gso_gro_take(&g, &frame, &len));
        g_assert_cmpmem(frame, len, segs.frames[0], segs.lens[0]);
        g_assert_false(gso_gro_take(&g, &frame, &len));
        collected_clear(&segs);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/gso/csum/known", test_csum_known);
        for (size_t i = 0; i < G_N_ELEMENTS(segment_cases); i++)
                g_test_add_data_func(segment_cases[i].name, &segment_cases[i], test_segment);
        g_test_add_func("/gso/segment/pass-through", test_pass_through);
        g_test_add_func("/gso/segment/complete-checksum", test_complete_checksum);
        g_test_add_func("/gso/segment/bad", test_bad);
        g_test_add_func("/gso/segment/emit-error", test_emit_error);
        g_test_add_func("/gso/frame-needs/table", test_frame_needs);
        g_test_add_data_func("/gso/gro/round-trip-v4", GINT_TO_POINTER(4), test_gro_round_trip);
        g_test_add_data_func("/gso/gro/round-trip-v6", GINT_TO_POINTER(6), test_gro_round_trip);
        g_test_add_func("/gso/gro/refuse", test_gro_refuse);
        return g_test_run();
}
