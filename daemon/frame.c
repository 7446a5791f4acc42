/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "frame.h"
#include "macro.h"

/* Linux 6.2 uapi; the TUN accepts it with the USO offloads. */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

/* The wire carries struct virtio_net_hdr_mrg_rxbuf; num_buffers (the last two bytes) is ignored by the
 * TUN on write, so only struct virtio_net_hdr is checked. */
_Static_assert(sizeof(struct virtio_net_hdr) + sizeof(uint16_t) == TAPOTUN_VNET_HDR_SIZE,
               "virtio-net header size");

const uint8_t frame_keepalive[TAPOTUN_LEN_SIZE] = { 0x00, 0x00 };

static const char *const frame_error_table[_FRAME_ERROR_MAX] = {
        [FRAME_ERROR_NONE] = "no error",
        [FRAME_ERROR_LENGTH] = "invalid length",
        [FRAME_ERROR_VNET_HDR] = "invalid virtio-net header",
        [FRAME_ERROR_NOT_IP] = "not an IP packet",
        [FRAME_ERROR_IP_HEADER] = "truncated IP header",
};

const char *frame_error_to_string(FrameError e) {
        if ((size_t) e >= ELEMENTSOF(frame_error_table))
                return NULL;
        return frame_error_table[e];
}

void frame_parser_reset(FrameParser *p) {
        assert(p);

        p->have = 0;
        p->need = 0;
        p->error = FRAME_ERROR_NONE;
}

/* LEN counts the frame body: virtio-net header and IP packet. */
static bool body_len_valid(size_t len) {
        return len >= TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MIN &&
               len <= TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX;
}

/* Mirrors the checks of the kernel's virtio_net_hdr_to_skb() and tun_get_user(), so a frame that passes
 * here is not refused by the receiving TUN. */
static bool vnet_hdr_valid(const uint8_t *frame, size_t packet_len) {
        struct virtio_net_hdr h;

        memcpy(&h, frame, sizeof(h));

        if (h.flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
                return false;

        if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
                switch (h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
                case VIRTIO_NET_HDR_GSO_TCPV4:
                case VIRTIO_NET_HDR_GSO_TCPV6:
                case VIRTIO_NET_HDR_GSO_UDP:
                case VIRTIO_NET_HDR_GSO_UDP_L4:
                        break;
                default: /* including GSO_NONE with the ECN bit */
                        return false;
                }
                if (le16toh(h.gso_size) == 0)
                        return false;
        }

        if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
            (size_t) le16toh(h.csum_start) + le16toh(h.csum_offset) + 2 > packet_len)
                return false;

        return le16toh(h.hdr_len) <= packet_len;
}

FrameError frame_validate(const uint8_t *frame, size_t len) {
        const uint8_t *ip;
        size_t packet_len;

        assert(frame || len == 0);

        if (!body_len_valid(len))
                return FRAME_ERROR_LENGTH;

        ip = frame + TAPOTUN_VNET_HDR_SIZE;
        packet_len = len - TAPOTUN_VNET_HDR_SIZE;

        if (!vnet_hdr_valid(frame, packet_len))
                return FRAME_ERROR_VNET_HDR;

        switch (ip[0] >> 4) {
        case 4: {
                size_t ihl = ip[0] & 0x0f;

                /* packet_len >= 20 is guaranteed by the length check above. */
                if (ihl < 5 || ihl * 4 > packet_len)
                        return FRAME_ERROR_IP_HEADER;
                return FRAME_ERROR_NONE;
        }
        case 6:
                if (packet_len < 40)
                        return FRAME_ERROR_IP_HEADER;
                return FRAME_ERROR_NONE;
        default:
                return FRAME_ERROR_NOT_IP;
        }
}

static int parser_fail(FrameParser *p, FrameError e) {
        p->error = e;
        return -EBADMSG;
}

/* Hands out a complete frame body, or fails the parser. */
static int parser_finish(FrameParser *p, const uint8_t *frame, size_t len, const uint8_t **ret_frame,
                         size_t *ret_len) {
        FrameError e;

        e = frame_validate(frame, len);
        if (e != FRAME_ERROR_NONE)
                return parser_fail(p, e);

        *ret_frame = frame;
        *ret_len = len;
        return FRAME_DATA;
}

static void input_advance(const uint8_t **data, size_t *size, size_t n) {
        *data += n;
        *size -= n;
}

int frame_parser_next(FrameParser *p, const uint8_t **data, size_t *size, const uint8_t **ret_frame,
                      size_t *ret_len) {
        const uint8_t *frame;
        size_t n, len;

        assert(p);
        assert(data);
        assert(size);
        assert(*data || *size == 0);
        assert(ret_frame);
        assert(ret_len);

        if (p->error != FRAME_ERROR_NONE)
                return -EBADMSG;

        if (p->need == 0) {
                /* The length field, which may itself be split. */
                n = MIN(TAPOTUN_LEN_SIZE - p->have, *size);
                memcpy(p->buf + p->have, *data, n);
                input_advance(data, size, n);
                p->have += n;
                if (p->have < TAPOTUN_LEN_SIZE)
                        return FRAME_NEED_MORE;

                len = unaligned_read_le16(p->buf);
                if (len == 0) {
                        p->have = 0;
                        return FRAME_KEEPALIVE;
                }
                /* Refuse before reading on, so a garbage stream fails at its first two bytes. */
                if (len < TAPOTUN_PACKET_MIN)
                        return parser_fail(p, FRAME_ERROR_LENGTH);

                p->need = TAPOTUN_LEN_SIZE + TAPOTUN_VNET_HDR_SIZE + len;

                if (n == TAPOTUN_LEN_SIZE && *size >= p->need - TAPOTUN_LEN_SIZE) {
                        /* The whole frame is in this input: hand it out where it is. */
                        frame = *data;
                        len = p->need - TAPOTUN_LEN_SIZE;
                        input_advance(data, size, len);
                        p->have = p->need = 0;
                        return parser_finish(p, frame, len, ret_frame, ret_len);
                }
        }

        n = MIN(p->need - p->have, *size);
        memcpy(p->buf + p->have, *data, n);
        input_advance(data, size, n);
        p->have += n;
        if (p->have < p->need)
                return FRAME_NEED_MORE;

        frame = p->buf + TAPOTUN_LEN_SIZE;
        len = p->need - TAPOTUN_LEN_SIZE;
        p->have = p->need = 0;
        return parser_finish(p, frame, len, ret_frame, ret_len);
}

int frame_write_header(uint8_t out[static TAPOTUN_LEN_SIZE], size_t len) {
        assert(out);

        if (!body_len_valid(len))
                return -EINVAL;

        unaligned_write_le16(out, (uint16_t) (len - TAPOTUN_VNET_HDR_SIZE));
        return 0;
}
