/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <string.h>

#include "gso.h"
#include "macro.h"
#include "wire.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define TCP_FLAG_FIN 0x01u
#define TCP_FLAG_PSH 0x08u
#define TCP_FLAG_CWR 0x80u
#define TCP_CHECK_OFFSET 16u
#define UDP_HEADER_SIZE 8u
#define UDP_CHECK_OFFSET 6u
#define IPV6_HEADER_SIZE 40u

/* A frame taken apart: the parts segmentation needs. */
typedef struct GsoPacket {
        struct virtio_net_hdr vnet;
        const uint8_t *ip;
        size_t ip_len; /* up to the end the IP header gives */
        int version;
        size_t l4;     /* offset of the TCP or UDP header in ip */
        size_t hlen;   /* all headers, l4 included */
} GsoPacket;

uint64_t gso_csum_add(uint64_t sum, const uint8_t *data, size_t len) {
        /* 32-bit words into a 64-bit accumulator: the carries collect in the upper half. The sum of
         * native-order words, folded and stored natively, is the checksum in network order (RFC 1071
         * section 2(B)). */
        for (; len >= 4; data += 4, len -= 4) {
                uint32_t w;

                memcpy(&w, data, 4);
                sum += w;
        }
        if (len >= 2) {
                uint16_t w;

                memcpy(&w, data, 2);
                sum += w;
                data += 2;
                len -= 2;
        }
        if (len > 0) {
                uint16_t w = 0;

                memcpy(&w, data, 1);
                sum += w;
        }
        return sum;
}

uint16_t gso_csum_fold(uint64_t sum) {
        sum = (sum & 0xffffffffu) + (sum >> 32);
        sum = (sum & 0xffffffffu) + (sum >> 32);
        sum = (sum & 0xffffu) + (sum >> 16);
        sum = (sum & 0xffffu) + (sum >> 16);
        return (uint16_t) sum;
}

static uint16_t read_be16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

static void write_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static uint32_t read_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void write_be32(uint8_t *p, uint32_t v) {
        write_be16(p, (uint16_t) (v >> 16));
        write_be16(p + 2, (uint16_t) v);
}

uint32_t gso_frame_needs(const uint8_t *frame, size_t len) {
        struct virtio_net_hdr h;
        uint32_t needs = 0;
        bool v6;

        if (len <= TAPOTUN_VNET_HDR_SIZE)
                return 0;
        memcpy(&h, frame, sizeof h);
        v6 = frame[TAPOTUN_VNET_HDR_SIZE] >> 4 == 6;

        if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
                needs |= WIRE_OFFLOAD_CSUM;
        switch (h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
        case VIRTIO_NET_HDR_GSO_TCPV4:
                needs |= WIRE_OFFLOAD_TSO4;
                break;
        case VIRTIO_NET_HDR_GSO_TCPV6:
                needs |= WIRE_OFFLOAD_TSO6;
                break;
        case VIRTIO_NET_HDR_GSO_UDP_L4:
                needs |= v6 ? WIRE_OFFLOAD_USO6 : WIRE_OFFLOAD_USO4;
                break;
        default: /* none, or UFO, which no offload bit names: passed on as it is */
                break;
        }
        if ((h.gso_type & VIRTIO_NET_HDR_GSO_ECN) && h.gso_type != VIRTIO_NET_HDR_GSO_ECN)
                needs |= WIRE_OFFLOAD_ECN;
        return needs;
}

/* Finds the IP and transport headers. PROTO is IPPROTO_TCP or IPPROTO_UDP, or 0 when only the checksum
 * location matters. */
static int gso_parse(const uint8_t *frame, size_t len, int proto, GsoPacket *ret) {
        GsoPacket p = {
                .ip = frame + TAPOTUN_VNET_HDR_SIZE,
                .ip_len = len - TAPOTUN_VNET_HDR_SIZE,
        };
        uint8_t next;

        memcpy(&p.vnet, frame, sizeof p.vnet);
        p.version = p.ip[0] >> 4;
        if (p.version == 4) {
                size_t ihl = (size_t) (p.ip[0] & 0x0f) * 4, total = read_be16(p.ip + 2);

                if (ihl < 20 || total < ihl || total > p.ip_len)
                        return -EBADMSG;
                p.ip_len = total;
                p.l4 = ihl;
                next = p.ip[9];
        } else if (p.version == 6) {
                size_t total = IPV6_HEADER_SIZE + read_be16(p.ip + 4);

                if (total > p.ip_len)
                        return -EBADMSG;
                p.ip_len = total;
                p.l4 = IPV6_HEADER_SIZE;
                next = p.ip[6];
        } else
                return -EBADMSG;

        /* csum_start is where the kernel found the transport header, past any IPv6 extension headers. */
        if (p.vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
                size_t start = le16toh(p.vnet.csum_start);

                if (start < p.l4 || start + le16toh(p.vnet.csum_offset) + 2 > p.ip_len)
                        return -EBADMSG;
                if (start != p.l4)
                        next = (uint8_t) proto;
                p.l4 = start;
        }

        if (proto == IPPROTO_TCP) {
                size_t thl;

                if (next != IPPROTO_TCP || p.l4 + 20 > p.ip_len)
                        return -EBADMSG;
                thl = (size_t) (p.ip[p.l4 + 12] >> 4) * 4;
                if (thl < 20 || p.l4 + thl > p.ip_len)
                        return -EBADMSG;
                p.hlen = p.l4 + thl;
        } else if (proto == IPPROTO_UDP) {
                if (next != IPPROTO_UDP || p.l4 + UDP_HEADER_SIZE > p.ip_len)
                        return -EBADMSG;
                p.hlen = p.l4 + UDP_HEADER_SIZE;
        }

        *ret = p;
        return 0;
}

/* The pseudo-header sum of a transport segment of L4_LEN bytes inside the IP packet IP. */
static uint64_t pseudo_header_sum(const uint8_t *ip, int version, uint8_t proto, size_t l4_len) {
        uint8_t tail[8] = {};
        uint64_t sum;

        if (version == 4) {
                sum = gso_csum_add(0, ip + 12, 8);
                tail[1] = proto;
                write_be16(tail + 2, (uint16_t) l4_len);
                return gso_csum_add(sum, tail, 4);
        }
        sum = gso_csum_add(0, ip + 8, 32);
        write_be32(tail, (uint32_t) l4_len);
        tail[7] = proto;
        return gso_csum_add(sum, tail, 8);
}

/* Completes OUT's checksum at CSUM_AT (inside the L4 part starting at L4) or leaves the partial
 * pseudo-header sum there for a receiver that finishes it, and writes the matching vnet header. */
static void finish_checksum(uint8_t *out, int version, uint8_t proto, size_t l4, size_t csum_at, size_t ip_len,
                            bool partial) {
        uint8_t *ip = out + TAPOTUN_VNET_HDR_SIZE;
        struct virtio_net_hdr h = {};
        uint64_t sum = pseudo_header_sum(ip, version, proto, ip_len - l4);
        uint16_t c;

        if (partial) {
                c = gso_csum_fold(sum);
                h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
                h.csum_start = htole16((uint16_t) l4);
                h.csum_offset = htole16((uint16_t) (csum_at - l4));
        } else {
                memset(ip + csum_at, 0, 2);
                c = (uint16_t) ~gso_csum_fold(gso_csum_add(sum, ip + l4, ip_len - l4));
                /* In UDP a zero checksum means "none": send its other form. */
                if (c == 0 && proto == IPPROTO_UDP)
                        c = 0xffff;
        }
        memcpy(ip + csum_at, &c, 2);
        memcpy(out, &h, sizeof h);
        memset(out + sizeof h, 0, TAPOTUN_VNET_HDR_SIZE - sizeof h);
}

static void ipv4_fix_header(uint8_t *ip, size_t total, uint16_t id) {
        size_t ihl = (size_t) (ip[0] & 0x0f) * 4;
        uint16_t c;

        write_be16(ip + 2, (uint16_t) total);
        write_be16(ip + 4, id);
        memset(ip + 10, 0, 2);
        c = (uint16_t) ~gso_csum_fold(gso_csum_add(0, ip, ihl));
        memcpy(ip + 10, &c, 2);
}

/* Splits the payload after p->hlen into pieces of gso_size bytes, each behind a copy of the headers. */
static int gso_split(const GsoPacket *p, uint8_t proto, bool partial, uint8_t *buf, GsoEmitFn emit,
                     void *userdata) {
        size_t mss = le16toh(p->vnet.gso_size), payload = p->ip_len - p->hlen, n, csum_at;
        uint16_t id = p->version == 4 ? read_be16(p->ip + 4) : 0;
        uint32_t seq = proto == IPPROTO_TCP ? read_be32(p->ip + p->l4 + 4) : 0;
        uint8_t *ip = buf + TAPOTUN_VNET_HDR_SIZE;
        int r;

        if (mss == 0)
                return -EBADMSG;
        n = payload == 0 ? 1 : (payload + mss - 1) / mss;
        csum_at = p->l4 + (proto == IPPROTO_TCP ? TCP_CHECK_OFFSET : UDP_CHECK_OFFSET);

        for (size_t i = 0; i < n; i++) {
                size_t off = i * mss, seg = MIN(mss, payload - off), total = p->hlen + seg;

                memcpy(ip, p->ip, p->hlen);
                memcpy(ip + p->hlen, p->ip + p->hlen + off, seg);

                if (p->version == 4)
                        ipv4_fix_header(ip, total, (uint16_t) (id + i));
                else
                        write_be16(ip + 4, (uint16_t) (total - IPV6_HEADER_SIZE));

                if (proto == IPPROTO_TCP) {
                        uint8_t *th = ip + p->l4;

                        write_be32(th + 4, seq + (uint32_t) off);
                        /* FIN and PSH end the super-packet, CWR starts it. */
                        if (i + 1 < n)
                                th[13] &= (uint8_t) ~(TCP_FLAG_FIN | TCP_FLAG_PSH);
                        if (i > 0)
                                th[13] &= (uint8_t) ~TCP_FLAG_CWR;
                } else
                        write_be16(ip + p->l4 + 4, (uint16_t) (total - p->l4));

                finish_checksum(buf, p->version, proto, p->l4, csum_at, total, partial);
                r = emit(buf, TAPOTUN_VNET_HDR_SIZE + total, userdata);
                if (r < 0)
                        return r;
        }
        return (int) n;
}

/* Copies P into OUT with its partial checksum completed and NEEDS_CSUM cleared. */
static void complete_checksum(const GsoPacket *p, uint8_t *out) {
        uint8_t *ip = out + TAPOTUN_VNET_HDR_SIZE;
        size_t at = p->l4 + le16toh(p->vnet.csum_offset);
        struct virtio_net_hdr h = p->vnet;
        uint16_t c;

        memcpy(out, p->ip - TAPOTUN_VNET_HDR_SIZE, TAPOTUN_VNET_HDR_SIZE + p->ip_len);
        /* The field holds the pseudo-header sum already: summing over it completes the checksum. 0 and
         * 0xffff are the same in one's complement; only the second is valid in UDP. */
        c = (uint16_t) ~gso_csum_fold(gso_csum_add(0, ip + p->l4, p->ip_len - p->l4));
        if (c == 0)
                c = 0xffff;
        memcpy(ip + at, &c, 2);
        h.flags &= (uint8_t) ~VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h.csum_start = h.csum_offset = 0;
        memcpy(out, &h, sizeof h);
}

int gso_segment(const uint8_t *frame, size_t len, uint32_t offloads, uint8_t *buf, GsoEmitFn emit,
                void *userdata) {
        uint32_t needs = gso_frame_needs(frame, len);
        bool partial = offloads & WIRE_OFFLOAD_CSUM;
        GsoPacket p;
        uint8_t gso;
        int r;

        if ((needs & ~offloads) == 0) {
                r = emit(frame, len, userdata);
                return r < 0 ? r : 1;
        }

        gso = frame[offsetof(struct virtio_net_hdr, gso_type)] & ~VIRTIO_NET_HDR_GSO_ECN;
        if (gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6 ||
            gso == VIRTIO_NET_HDR_GSO_UDP_L4) {
                uint8_t proto = gso == VIRTIO_NET_HDR_GSO_UDP_L4 ? IPPROTO_UDP : IPPROTO_TCP;

                r = gso_parse(frame, len, proto, &p);
                if (r < 0)
                        return r;
                if ((gso == VIRTIO_NET_HDR_GSO_TCPV4) != (p.version == 4) && proto == IPPROTO_TCP)
                        return -EBADMSG;
                return gso_split(&p, proto, partial, buf, emit, userdata);
        }

        /* Only the checksum is left to do (CSUM is what is missing). */
        r = gso_parse(frame, len, 0, &p);
        if (r < 0)
                return r;
        complete_checksum(&p, buf);
        r = emit(buf, TAPOTUN_VNET_HDR_SIZE + p.ip_len, userdata);
        return r < 0 ? r : 1;
}

#define TCP_FLAG_ACK 0x10u

/* A plain TCP segment that GRO may join: no GSO, IPv4 without options or fragmentation, or IPv6 without
 * extension headers, with payload, and flags no more than ACK and PSH. */
static bool gro_parse(const uint8_t *frame, size_t len, uint32_t offloads, GsoPacket *ret) {
        GsoPacket p;
        uint8_t flags;

        if (len <= TAPOTUN_VNET_HDR_SIZE + 20)
                return false;
        memcpy(&p.vnet, frame, sizeof p.vnet);
        if (p.vnet.gso_type != VIRTIO_NET_HDR_GSO_NONE ||
            (p.vnet.flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)))
                return false;
        p.ip = frame + TAPOTUN_VNET_HDR_SIZE;
        p.ip_len = len - TAPOTUN_VNET_HDR_SIZE;
        p.version = p.ip[0] >> 4;
        if (p.version == 4) {
                if (!(offloads & WIRE_OFFLOAD_TSO4) || p.ip[0] != 0x45 || read_be16(p.ip + 2) != p.ip_len ||
                    (read_be16(p.ip + 6) & 0x3fff) != 0 || p.ip[9] != IPPROTO_TCP)
                        return false;
                p.l4 = 20;
        } else if (p.version == 6) {
                if (!(offloads & WIRE_OFFLOAD_TSO6) || p.ip_len < IPV6_HEADER_SIZE + 20 ||
                    IPV6_HEADER_SIZE + read_be16(p.ip + 4) != p.ip_len || p.ip[6] != IPPROTO_TCP)
                        return false;
                p.l4 = IPV6_HEADER_SIZE;
        } else
                return false;
        if (!(offloads & WIRE_OFFLOAD_CSUM))
                return false;
        if ((p.vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
            (le16toh(p.vnet.csum_start) != p.l4 || le16toh(p.vnet.csum_offset) != TCP_CHECK_OFFSET))
                return false;

        p.hlen = p.l4 + (size_t) (p.ip[p.l4 + 12] >> 4) * 4;
        flags = p.ip[p.l4 + 13];
        if (p.hlen < p.l4 + 20 || p.hlen >= p.ip_len || (flags & ~(TCP_FLAG_ACK | TCP_FLAG_PSH)) != 0 ||
            !(flags & TCP_FLAG_ACK))
                return false;
        *ret = p;
        return true;
}

/* Whether P continues the packet G holds: same flow and headers, the next sequence number and IPv4 id. */
static bool gro_matches(const GsoGro *g, const GsoPacket *p) {
        const uint8_t *h = g->frame + TAPOTUN_VNET_HDR_SIZE, *ip = p->ip;
        size_t payload = p->ip_len - p->hlen;

        if (g->closed || (h[0] >> 4) != p->version || g->hlen != p->hlen || payload > g->mss ||
            g->len + payload > sizeof g->frame || g->len - TAPOTUN_VNET_HDR_SIZE + payload > TAPOTUN_PACKET_MAX)
                return false;
        if (p->version == 4) {
                /* Version, TOS; flags, TTL, protocol; addresses. */
                if (memcmp(h, ip, 2) != 0 || memcmp(h + 6, ip + 6, 4) != 0 || memcmp(h + 12, ip + 12, 8) != 0 ||
                    read_be16(ip + 4) != g->next_id)
                        return false;
        } else if (memcmp(h, ip, 4) != 0 || memcmp(h + 6, ip + 6, 34) != 0)
                return false;
        h += g->l4;
        ip += p->l4;
        /* Ports; acknowledgement, header length, flags (but PSH), window; urgent pointer and options. */
        return memcmp(h, ip, 4) == 0 && read_be32(ip + 4) == g->next_seq && memcmp(h + 8, ip + 8, 5) == 0 &&
               (h[13] & ~TCP_FLAG_PSH) == (ip[13] & ~TCP_FLAG_PSH) && memcmp(h + 14, ip + 14, 2) == 0 &&
               memcmp(h + 18, ip + 18, p->hlen - p->l4 - 18) == 0;
}

bool gso_gro_add(GsoGro *g, const uint8_t *frame, size_t len, uint32_t offloads) {
        GsoPacket p;
        size_t payload;

        if (!gro_parse(frame, len, offloads, &p))
                return false;
        payload = p.ip_len - p.hlen;

        if (g->len == 0) {
                memcpy(g->frame, frame, len);
                g->len = len;
                g->l4 = p.l4;
                g->hlen = p.hlen;
                g->mss = payload;
                g->segments = 1;
                g->next_id = p.version == 4 ? (uint16_t) (read_be16(p.ip + 4) + 1) : 0;
        } else {
                if (!gro_matches(g, &p))
                        return false;
                memcpy(g->frame + g->len, p.ip + p.hlen, payload);
                g->len += payload;
                g->segments++;
                g->next_id++;
                g->frame[TAPOTUN_VNET_HDR_SIZE + g->l4 + 13] |= p.ip[p.l4 + 13] & TCP_FLAG_PSH;
        }
        g->next_seq = read_be32(p.ip + p.l4 + 4) + (uint32_t) payload;
        g->closed = payload < g->mss || (p.ip[p.l4 + 13] & TCP_FLAG_PSH);
        return true;
}

bool gso_gro_take(GsoGro *g, const uint8_t **ret_frame, size_t *ret_len) {
        uint8_t *ip = g->frame + TAPOTUN_VNET_HDR_SIZE;
        size_t total = g->len - TAPOTUN_VNET_HDR_SIZE;
        struct virtio_net_hdr h = {
                .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                .hdr_len = htole16((uint16_t) g->hlen),
                .gso_size = htole16((uint16_t) g->mss),
                .csum_start = htole16((uint16_t) g->l4),
                .csum_offset = htole16(TCP_CHECK_OFFSET),
        };
        uint16_t c;

        if (g->len == 0)
                return false;
        if (g->segments > 1) {
                if ((ip[0] >> 4) == 4) {
                        h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
                        ipv4_fix_header(ip, total, read_be16(ip + 4));
                } else {
                        h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
                        write_be16(ip + 4, (uint16_t) (total - IPV6_HEADER_SIZE));
                }
                /* The receiving kernel completes the checksum over the whole payload. */
                c = gso_csum_fold(pseudo_header_sum(ip, ip[0] >> 4, IPPROTO_TCP, total - g->l4));
                memcpy(ip + g->l4 + TCP_CHECK_OFFSET, &c, 2);
                memcpy(g->frame, &h, sizeof h);
                memset(g->frame + sizeof h, 0, TAPOTUN_VNET_HDR_SIZE - sizeof h);
        }
        *ret_frame = g->frame;
        *ret_len = g->len;
        g->len = 0;
        return true;
}
