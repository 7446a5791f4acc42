/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "frame.h"

#define VNET TAPOTUN_VNET_HDR_SIZE

/* A real `ping -c1 10.10.0.1` from 10.10.0.2: IPv4, ICMP echo request, 56 data bytes, both checksums
 * valid. */
static const uint8_t icmp_echo[84] = {
        0x45, 0x00, 0x00, 0x54, 0xa3, 0xf1, 0x40, 0x00, 0x40, 0x01, 0x82, 0xa1,
        0x0a, 0x0a, 0x00, 0x02, 0x0a, 0x0a, 0x00, 0x01, 0x08, 0x00, 0x8c, 0x1c,
        0x1c, 0x2b, 0x00, 0x01, 0x6b, 0x2f, 0x8c, 0x65, 0x00, 0x00, 0x00, 0x00,
        0x8e, 0x4f, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13,
        0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
        0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
};

/* The complete frame for it: len 84 (54 00), all-zero virtio-net header. */
static const uint8_t icmp_echo_frame_head[2 + VNET] = {
        0x54, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* A TSO super-packet as a TUN with TUN_F_TSO4 hands it out: two 1448-byte segments of TCP with
 * timestamps, checksum left partial (NEEDS_CSUM, csum_start 20, csum_offset 16), hdr_len 52. */
static const uint8_t tcp_gso_vnet[VNET] = {
        0x01,       /* flags: NEEDS_CSUM */
        0x01,       /* gso_type: TCPV4 */
        0x34, 0x00, /* hdr_len 52 */
        0xa8, 0x05, /* gso_size 1448 */
        0x14, 0x00, /* csum_start 20 */
        0x10, 0x00, /* csum_offset 16 */
        0x00, 0x00, /* num_buffers */
};

static const uint8_t tcp_gso_headers[52] = {
        0x45, 0x00, 0x0b, 0x84, 0x1d, 0x2e, 0x40, 0x00, 0x40, 0x06, 0xfe, 0x2f,
        0x0a, 0x0a, 0x00, 0x01, 0x0a, 0x0a, 0x00, 0x02, 0xa9, 0xc4, 0x14, 0x51,
        0x3b, 0x9a, 0xca, 0x01, 0x00, 0xbc, 0x61, 0x4e, 0x80, 0x18, 0x01, 0xf5,
        0x1f, 0x8d, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x00, 0x12, 0xd6, 0x87,
        0x5c, 0x4b, 0x1e, 0x90,
};

#define TCP_GSO_PACKET_LEN (52 + 2 * 1448)

static FrameParser *parser_new(void) {
        FrameParser *p = g_new(FrameParser, 1);

        frame_parser_reset(p);
        return p;
}

static void test_keepalive(void) {
        static const uint8_t two[] = { 0x00, 0x00, 0x14 };
        g_autofree FrameParser *p = parser_new();
        const uint8_t *data = two, *frame = NULL;
        size_t size = 2, len = 0;

        g_assert_cmpmem(frame_keepalive, sizeof(frame_keepalive), two, 2);

        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_KEEPALIVE);
        g_assert_true(data == two + 2);
        g_assert_cmpuint(size, ==, 0);
        g_assert_null(frame);

        /* Split between its two bytes. */
        data = two;
        size = 1;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_NEED_MORE);
        g_assert_cmpuint(size, ==, 0);
        size = 1;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_KEEPALIVE);
        g_assert_cmpuint(size, ==, 0);
        g_assert_true(data == two + 2);

        /* The parser is at a boundary again: the next byte starts a length field. */
        size = 1;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_NEED_MORE);
        g_assert_cmpuint(p->have, ==, 1);
}

static void test_write_header(void) {
        static const struct {
                size_t len;
                int r;
                uint8_t out[2];
        } table[] = {
                { 0,                                  -EINVAL, {} },
                { VNET,                               -EINVAL, {} },
                { VNET + TAPOTUN_PACKET_MIN - 1,      -EINVAL, {} },
                { VNET + TAPOTUN_PACKET_MIN,          0,       { 0x14, 0x00 } },
                { VNET + sizeof(icmp_echo),           0,       { 0x54, 0x00 } },
                { VNET + 256,                         0,       { 0x00, 0x01 } },
                { VNET + TCP_GSO_PACKET_LEN,          0,       { 0x84, 0x0b } },
                { VNET + TAPOTUN_PACKET_MAX,          0,       { 0xff, 0xff } },
                { VNET + TAPOTUN_PACKET_MAX + 1,      -EINVAL, {} },
                { SIZE_MAX,                           -EINVAL, {} },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                uint8_t out[2] = { 0xaa, 0xaa };

                g_test_message("len %zu", table[i].len);
                g_assert_cmpint(frame_write_header(out, table[i].len), ==, table[i].r);
                if (table[i].r == 0)
                        g_assert_cmpmem(out, 2, table[i].out, 2);
                else
                        g_assert_true(out[0] == 0xaa && out[1] == 0xaa);
        }
}

static void test_icmp_echo(void) {
        g_autofree FrameParser *p = parser_new();
        uint8_t stream[2 + VNET + sizeof(icmp_echo)] = {};
        const uint8_t *data = stream, *frame;
        size_t size = sizeof(stream), len;

        g_assert_cmpint(frame_write_header(stream, VNET + sizeof(icmp_echo)), ==, 0);
        memcpy(stream + 2 + VNET, icmp_echo, sizeof(icmp_echo));
        g_assert_cmpmem(stream, sizeof(icmp_echo_frame_head), icmp_echo_frame_head,
                        sizeof(icmp_echo_frame_head));

        g_assert_cmpint(frame_validate(stream + 2, VNET + sizeof(icmp_echo)), ==, FRAME_ERROR_NONE);
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
        g_assert_cmpuint(size, ==, 0);
        g_assert_cmpmem(frame, len, stream + 2, VNET + sizeof(icmp_echo));
        g_assert_cmpmem(frame + VNET, len - VNET, icmp_echo, sizeof(icmp_echo));
}

static void test_tcp_gso(void) {
        g_autofree FrameParser *p = parser_new();
        g_autofree uint8_t *stream = g_malloc(2 + VNET + TCP_GSO_PACKET_LEN);
        const uint8_t *data, *frame;
        size_t size, len;

        g_assert_cmpint(frame_write_header(stream, VNET + TCP_GSO_PACKET_LEN), ==, 0);
        g_assert_cmpint(stream[0], ==, 0x84);
        g_assert_cmpint(stream[1], ==, 0x0b);
        memcpy(stream + 2, tcp_gso_vnet, VNET);
        memcpy(stream + 2 + VNET, tcp_gso_headers, sizeof(tcp_gso_headers));
        for (size_t i = sizeof(tcp_gso_headers); i < TCP_GSO_PACKET_LEN; i++)
                stream[2 + VNET + i] = (uint8_t) (i * 7);

        /* Split inside the virtio-net header, as a TCP read might. */
        data = stream;
        size = 9;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_NEED_MORE);
        g_assert_cmpuint(size, ==, 0);
        size = 2 + VNET + TCP_GSO_PACKET_LEN - 9;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
        g_assert_cmpuint(size, ==, 0);
        g_assert_cmpmem(frame, len, stream + 2, VNET + TCP_GSO_PACKET_LEN);
        g_assert_cmpmem(frame, VNET, tcp_gso_vnet, VNET);
}

static void test_zero_copy(void) {
        g_autofree FrameParser *p = parser_new();
        uint8_t stream[2 * (2 + VNET + sizeof(icmp_echo)) + 2] = {};
        const size_t flen = 2 + VNET + sizeof(icmp_echo);
        const uint8_t *data = stream, *frame;
        size_t size, len;

        for (size_t i = 0; i < 2; i++) {
                memcpy(stream + i * flen, icmp_echo_frame_head, sizeof(icmp_echo_frame_head));
                memcpy(stream + i * flen + 2 + VNET, icmp_echo, sizeof(icmp_echo));
        }

        /* Both frames complete in the input: handed out in place. */
        size = 2 * flen + 1;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
        g_assert_true(frame == stream + 2);
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
        g_assert_true(frame == stream + flen + 2);
        g_assert_cmpuint(size, ==, 1);

        /* A frame whose length field arrived earlier is reassembled in the parser. */
        frame_parser_reset(p);
        data = stream;
        size = 1;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_NEED_MORE);
        size = flen - 1;
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
        g_assert_true(frame == p->buf + 2);
        g_assert_cmpmem(frame, len, stream + 2, flen - 2);
}

typedef struct Expected {
        bool keepalive;
        size_t offset; /* of the body (vnet header) in the stream */
        size_t len;
} Expected;

/* A stream of valid frames and keepalives; returns the expected events. */
static GArray *stream_generate(GByteArray *stream, size_t n_frames, bool extremes) {
        GArray *expected = g_array_new(false, false, sizeof(Expected));

        for (size_t i = 0; i < n_frames; i++) {
                Expected e = {};
                uint8_t head[2 + VNET] = {};
                size_t plen;

                if (g_test_rand_int_range(0, 8) == 0) {
                        e.keepalive = true;
                        g_byte_array_append(stream, frame_keepalive, sizeof(frame_keepalive));
                        g_array_append_val(expected, e);
                        continue;
                }

                if (extremes && i % 3 != 2)
                        plen = i % 3 == 0 ? TAPOTUN_PACKET_MIN : TAPOTUN_PACKET_MAX;
                else if (g_test_rand_bit())
                        plen = (size_t) g_test_rand_int_range(TAPOTUN_PACKET_MIN, 1601);
                else
                        plen = (size_t) g_test_rand_int_range(TAPOTUN_PACKET_MIN, TAPOTUN_PACKET_MAX + 1);

                g_assert_cmpint(frame_write_header(head, VNET + plen), ==, 0);
                switch (g_test_rand_int_range(0, 3)) {
                case 0: /* checksum partial at the start of the packet */
                        head[2] = 0x01;
                        break;
                case 1: /* TSO */
                        head[2] = 0x01;
                        head[3] = 0x01;
                        head[4] = TAPOTUN_PACKET_MIN;
                        head[6] = 0xa8;
                        head[7] = 0x05;
                        break;
                default:
                        break;
                }

                e.offset = stream->len + 2;
                e.len = VNET + plen;
                g_byte_array_append(stream, head, sizeof(head));
                for (size_t j = 0; j < plen; j++) {
                        uint8_t b = (uint8_t) g_test_rand_int();

                        if (j == 0)
                                b = plen >= 40 && g_test_rand_bit() ? 0x60 : 0x45;
                        g_byte_array_append(stream, &b, 1);
                }
                g_array_append_val(expected, e);
        }

        return expected;
}

/* Feeds STREAM in pieces of sizes from NEXT_CHUNK and checks every event against EXPECTED. */
static void stream_check(const GByteArray *stream, const GArray *expected, size_t (*next_chunk)(void)) {
        g_autofree FrameParser *p = parser_new();
        size_t pos = 0, seen = 0;

        while (pos < stream->len) {
                size_t chunk = next_chunk();
                const uint8_t *data = stream->data + pos;
                size_t size;

                chunk = MIN(chunk, stream->len - pos);
                size = chunk;

                for (;;) {
                        const uint8_t *frame;
                        size_t len;
                        int r;

                        r = frame_parser_next(p, &data, &size, &frame, &len);
                        g_assert_cmpint(r, >=, 0);
                        if (r == FRAME_NEED_MORE) {
                                g_assert_cmpuint(size, ==, 0);
                                break;
                        }

                        g_assert_cmpuint(seen, <, expected->len);
                        const Expected *e = &g_array_index(expected, Expected, seen);
                        if (e->keepalive)
                                g_assert_cmpint(r, ==, FRAME_KEEPALIVE);
                        else {
                                g_assert_cmpint(r, ==, FRAME_DATA);
                                g_assert_cmpmem(frame, len, stream->data + e->offset, e->len);
                        }
                        seen++;
                }
                pos += chunk;
        }

        g_assert_cmpuint(seen, ==, expected->len);
        g_assert_cmpuint(p->have, ==, 0);
        g_assert_cmpuint(p->need, ==, 0);
}

static size_t chunk_random(void) {
        static const int32_t max[] = { 1, 3, 16, 1500, 16384, 70000, 300000 };

        return (size_t) g_test_rand_int_range(1, max[g_test_rand_int_range(0, G_N_ELEMENTS(max))] + 1);
}

static size_t chunk_one(void) {
        return 1;
}

static void test_random_splits(void) {
        g_autoptr(GByteArray) stream = g_byte_array_new();
        g_autoptr(GArray) expected = stream_generate(stream, 400, false);

        g_test_message("%u bytes, %u events", stream->len, expected->len);
        for (unsigned i = 0; i < 10; i++)
                stream_check(stream, expected, chunk_random);
}

static void test_one_byte(void) {
        g_autoptr(GByteArray) stream = g_byte_array_new();
        g_autoptr(GArray) expected = stream_generate(stream, 60, true);

        stream_check(stream, expected, chunk_one);
}

static void test_bad_length(void) {
        for (unsigned l = 1; l < TAPOTUN_PACKET_MIN; l++) {
                g_autofree FrameParser *p = parser_new();
                uint8_t stream[2 + VNET + 64] = { (uint8_t) l, 0x00 };
                const uint8_t *data = stream, *frame;
                size_t size = sizeof(stream), len;

                stream[2 + VNET] = 0x45;
                g_test_message("len %u", l);

                /* Fails at the length field without touching the bytes behind it. */
                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, -EBADMSG);
                g_assert_cmpint(p->error, ==, FRAME_ERROR_LENGTH);
                g_assert_true(data == stream + 2);

                /* Also when that is all there is, and when it arrives a byte at a time. */
                frame_parser_reset(p);
                data = stream;
                size = 2;
                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, -EBADMSG);
                g_assert_cmpint(p->error, ==, FRAME_ERROR_LENGTH);

                frame_parser_reset(p);
                data = stream;
                size = 1;
                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_NEED_MORE);
                size = 1;
                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, -EBADMSG);
                g_assert_cmpint(p->error, ==, FRAME_ERROR_LENGTH);
        }
}

/* Runs a frame body through frame_validate() and through the parser both in one piece and split, and
 * checks that all three agree. */
static void check_frame(const uint8_t *body, size_t len, FrameError expected) {
        g_autofree uint8_t *stream = g_malloc(len + 2);
        g_autofree FrameParser *p = parser_new();
        const uint8_t *data, *frame;
        size_t size, flen;
        int r;

        g_assert_cmpint(frame_validate(body, len), ==, expected);

        g_assert_cmpint(frame_write_header(stream, len), ==, 0);
        memcpy(stream + 2, body, len);

        for (size_t split = 0; split < 2; split++) {
                frame_parser_reset(p);
                data = stream;
                size = split ? len / 2 : len + 2;
                r = frame_parser_next(p, &data, &size, &frame, &flen);
                if (split) {
                        g_assert_cmpint(r, ==, FRAME_NEED_MORE);
                        size = len + 2 - len / 2;
                        r = frame_parser_next(p, &data, &size, &frame, &flen);
                }

                if (expected == FRAME_ERROR_NONE) {
                        g_assert_cmpint(r, ==, FRAME_DATA);
                        g_assert_cmpmem(frame, flen, body, len);
                } else {
                        g_assert_cmpint(r, ==, -EBADMSG);
                        g_assert_cmpint(p->error, ==, expected);
                }
        }
}

static void test_vnet_header(void) {
        static const struct {
                const char *name;
                uint8_t flags, gso_type;
                uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
                FrameError error;
        } table[] = {
                { "zero",              0x00, 0x00, 0,  0,    0,      0,      0,      FRAME_ERROR_NONE },
                { "needs-csum",        0x01, 0x00, 0,  0,    20,     16,     0,      FRAME_ERROR_NONE },
                { "csum-at-end",       0x01, 0x00, 0,  0,    42,     16,     0,      FRAME_ERROR_NONE },
                { "csum-past-end",     0x01, 0x00, 0,  0,    43,     16,     0,      FRAME_ERROR_VNET_HDR },
                { "csum-overflow",     0x01, 0x00, 0,  0,    0xffff, 0xffff, 0,      FRAME_ERROR_VNET_HDR },
                { "csum-unflagged",    0x00, 0x00, 0,  0,    0xffff, 0xffff, 0,      FRAME_ERROR_NONE },
                { "data-valid",        0x02, 0x00, 0,  0,    0,      0,      0,      FRAME_ERROR_NONE },
                { "csum-data-valid",   0x03, 0x00, 0,  0,    20,     6,      0,      FRAME_ERROR_NONE },
                { "flag-rsc-info",     0x04, 0x00, 0,  0,    0,      0,      0,      FRAME_ERROR_VNET_HDR },
                { "flag-unknown",      0x80, 0x00, 0,  0,    0,      0,      0,      FRAME_ERROR_VNET_HDR },
                { "gso-tcpv4",         0x01, 0x01, 52, 1448, 20,     16,     0,      FRAME_ERROR_NONE },
                { "gso-tcpv4-ecn",     0x01, 0x81, 52, 1448, 20,     16,     0,      FRAME_ERROR_NONE },
                { "gso-udp",           0x01, 0x03, 28, 1472, 20,     6,      0,      FRAME_ERROR_NONE },
                { "gso-tcpv6",         0x01, 0x04, 52, 1428, 20,     16,     0,      FRAME_ERROR_NONE },
                { "gso-udp-l4",        0x01, 0x05, 28, 1472, 20,     6,      0,      FRAME_ERROR_NONE },
                { "gso-type-2",        0x01, 0x02, 52, 1448, 20,     16,     0,      FRAME_ERROR_VNET_HDR },
                { "gso-type-6",        0x01, 0x06, 52, 1448, 20,     16,     0,      FRAME_ERROR_VNET_HDR },
                { "gso-type-0x7f",     0x01, 0x7f, 52, 1448, 20,     16,     0,      FRAME_ERROR_VNET_HDR },
                { "gso-none-ecn",      0x00, 0x80, 0,  0,    0,      0,      0,      FRAME_ERROR_VNET_HDR },
                { "gso-ecn-only",      0x01, 0x80, 52, 1448, 20,     16,     0,      FRAME_ERROR_VNET_HDR },
                { "gso-size-zero",     0x01, 0x01, 52, 0,    20,     16,     0,      FRAME_ERROR_VNET_HDR },
                { "hdr-len-at-end",    0x00, 0x00, 60, 0,    0,      0,      0,      FRAME_ERROR_NONE },
                { "hdr-len-past-end",  0x00, 0x00, 61, 0,    0,      0,      0,      FRAME_ERROR_VNET_HDR },
                { "num-buffers",       0x00, 0x00, 0,  0,    0,      0,      0xffff, FRAME_ERROR_NONE },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                uint8_t body[VNET + 60] = {};

                g_test_message("%s", table[i].name);
                body[0] = table[i].flags;
                body[1] = table[i].gso_type;
                body[2] = table[i].hdr_len & 0xff;
                body[3] = table[i].hdr_len >> 8;
                body[4] = table[i].gso_size & 0xff;
                body[5] = table[i].gso_size >> 8;
                body[6] = table[i].csum_start & 0xff;
                body[7] = table[i].csum_start >> 8;
                body[8] = table[i].csum_offset & 0xff;
                body[9] = table[i].csum_offset >> 8;
                body[10] = table[i].num_buffers & 0xff;
                body[11] = table[i].num_buffers >> 8;
                body[VNET] = 0x45;

                check_frame(body, sizeof(body), table[i].error);
        }
}

static void test_ip_header(void) {
        static const struct {
                uint8_t first;
                size_t packet_len;
                FrameError error;
        } table[] = {
                { 0x45, 20,    FRAME_ERROR_NONE },
                { 0x45, 65535, FRAME_ERROR_NONE },
                { 0x46, 20,    FRAME_ERROR_IP_HEADER },
                { 0x46, 24,    FRAME_ERROR_NONE },
                { 0x4f, 59,    FRAME_ERROR_IP_HEADER },
                { 0x4f, 60,    FRAME_ERROR_NONE },
                { 0x44, 100,   FRAME_ERROR_IP_HEADER },
                { 0x40, 100,   FRAME_ERROR_IP_HEADER },
                { 0x60, 39,    FRAME_ERROR_IP_HEADER },
                { 0x60, 20,    FRAME_ERROR_IP_HEADER },
                { 0x60, 40,    FRAME_ERROR_NONE },
                { 0x6f, 1280,  FRAME_ERROR_NONE },
                { 0x00, 100,   FRAME_ERROR_NOT_IP },
                { 0x10, 100,   FRAME_ERROR_NOT_IP },
                { 0x50, 100,   FRAME_ERROR_NOT_IP },
                { 0x75, 100,   FRAME_ERROR_NOT_IP },
                { 0xf5, 100,   FRAME_ERROR_NOT_IP },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                g_autofree uint8_t *body = g_malloc0(VNET + table[i].packet_len);

                g_test_message("first byte 0x%02x, %zu bytes", table[i].first, table[i].packet_len);
                body[VNET] = table[i].first;
                check_frame(body, VNET + table[i].packet_len, table[i].error);
        }
}

static void test_validate_length(void) {
        g_autofree uint8_t *body = g_malloc0(VNET + TAPOTUN_PACKET_MAX + 1);

        body[VNET] = 0x45;
        g_assert_cmpint(frame_validate(body, 0), ==, FRAME_ERROR_LENGTH);
        g_assert_cmpint(frame_validate(body, VNET + TAPOTUN_PACKET_MIN - 1), ==, FRAME_ERROR_LENGTH);
        g_assert_cmpint(frame_validate(body, VNET + TAPOTUN_PACKET_MIN), ==, FRAME_ERROR_NONE);
        g_assert_cmpint(frame_validate(body, VNET + TAPOTUN_PACKET_MAX), ==, FRAME_ERROR_NONE);
        g_assert_cmpint(frame_validate(body, VNET + TAPOTUN_PACKET_MAX + 1), ==, FRAME_ERROR_LENGTH);
}

static void test_error_sticks(void) {
        g_autofree FrameParser *p = parser_new();
        uint8_t stream[2 * (2 + VNET + sizeof(icmp_echo))] = {};
        const size_t flen = 2 + VNET + sizeof(icmp_echo);
        const uint8_t *data = stream, *frame;
        size_t size = sizeof(stream), len;

        for (size_t i = 0; i < 2; i++) {
                memcpy(stream + i * flen, icmp_echo_frame_head, sizeof(icmp_echo_frame_head));
                memcpy(stream + i * flen + 2 + VNET, icmp_echo, sizeof(icmp_echo));
        }
        stream[2 + VNET] = 0x35; /* first frame: not IP */

        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, -EBADMSG);
        g_assert_cmpint(p->error, ==, FRAME_ERROR_NOT_IP);
        g_assert_true(data == stream + flen);

        /* The valid frame behind it is not handed out, and nothing is consumed. */
        for (unsigned i = 0; i < 3; i++) {
                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, -EBADMSG);
                g_assert_cmpint(p->error, ==, FRAME_ERROR_NOT_IP);
                g_assert_true(data == stream + flen);
                g_assert_cmpuint(size, ==, flen);
        }

        frame_parser_reset(p);
        g_assert_cmpint(p->error, ==, FRAME_ERROR_NONE);
        g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
        g_assert_cmpmem(frame + VNET, len - VNET, icmp_echo, sizeof(icmp_echo));
}

static void test_reset_mid_frame(void) {
        uint8_t stream[2 + VNET + sizeof(icmp_echo)] = {};
        g_autofree FrameParser *p = parser_new();

        memcpy(stream, icmp_echo_frame_head, sizeof(icmp_echo_frame_head));
        memcpy(stream + 2 + VNET, icmp_echo, sizeof(icmp_echo));

        /* Interrupted after 1 byte (inside the length), inside the header, and one byte short. */
        static const size_t cut[] = { 1, 2, 9, sizeof(stream) - 1 };
        for (size_t i = 0; i < G_N_ELEMENTS(cut); i++) {
                const uint8_t *data = stream, *frame;
                size_t size = cut[i], len;

                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_NEED_MORE);
                frame_parser_reset(p);

                /* The new request body starts at a boundary: the same frame parses whole. */
                data = stream;
                size = sizeof(stream);
                g_assert_cmpint(frame_parser_next(p, &data, &size, &frame, &len), ==, FRAME_DATA);
                g_assert_cmpuint(size, ==, 0);
                g_assert_cmpmem(frame, len, stream + 2, sizeof(stream) - 2);
        }
}

static void test_error_to_string(void) {
        static const struct {
                FrameError e;
                const char *s;
        } table[] = {
                { FRAME_ERROR_NONE,       "no error" },
                { FRAME_ERROR_LENGTH,     "invalid length" },
                { FRAME_ERROR_VNET_HDR,   "invalid virtio-net header" },
                { FRAME_ERROR_NOT_IP,     "not an IP packet" },
                { FRAME_ERROR_IP_HEADER,  "truncated IP header" },
                { _FRAME_ERROR_MAX,       NULL },
                { (FrameError) -1,        NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++)
                g_assert_cmpstr(frame_error_to_string(table[i].e), ==, table[i].s);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/frame/keepalive/bytes", test_keepalive);
        g_test_add_func("/frame/write_header/table", test_write_header);
        g_test_add_func("/frame/parser_next/icmp-echo", test_icmp_echo);
        g_test_add_func("/frame/parser_next/tcp-gso", test_tcp_gso);
        g_test_add_func("/frame/parser_next/zero-copy", test_zero_copy);
        g_test_add_func("/frame/parser_next/random-splits", test_random_splits);
        g_test_add_func("/frame/parser_next/one-byte", test_one_byte);
        g_test_add_func("/frame/parser_next/bad-length", test_bad_length);
        g_test_add_func("/frame/parser_next/error-sticks", test_error_sticks);
        g_test_add_func("/frame/parser_next/reset-mid-frame", test_reset_mid_frame);
        g_test_add_func("/frame/validate/vnet-header", test_vnet_header);
        g_test_add_func("/frame/validate/ip-header", test_ip_header);
        g_test_add_func("/frame/validate/length", test_validate_length);
        g_test_add_func("/frame/error_to_string/table", test_error_to_string);

        return g_test_run();
}
