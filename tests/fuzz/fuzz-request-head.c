/* SPDX-License-Identifier: MIT */
/* The server plugin's request-head path (plugins/http-server/request-head.c) on an arbitrary byte stream:
 * the head is parsed once from one buffer and once as it trickles in, each read into a buffer of its own
 * (the socket's input buffer moves as it grows); both must reach the same decision (more, tunnel PUT,
 * hand-off to h2o, 400, 431) at the same offset with the same headers. For a tunnel PUT the rest of the
 * stream is its body: decoded in place once whole and once in random splits, both must give the same
 * bytes, which then go through the frame parser as the plugin feeds them.
 * Input: 4 bytes that seed the split positions, then the stream. */
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"
#include "request-head.h"

#define INPUT_MAX (64u * 1024u)

static FrameParser frames;

static uint32_t xorshift(uint32_t *state) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        return *state;
}

static void check_span(const RequestHead *h, const char *buf, const Span *s) {
        const char *v;
        size_t len;

        v = request_head_value(h, buf, s, &len);
        if (!s->set) {
                fuzz_check(!v);
                return;
        }
        fuzz_check(v == buf + s->off);
        fuzz_check(len <= s->len);
        fuzz_check(s->off + s->len <= h->parsed);
        /* A value never spans a line end: obs-fold is refused. */
        fuzz_check(!memchr(v, '\n', len));
}

static bool span_equal(const Span *a, const Span *b) {
        return a->set == b->set && (!a->set || (a->off == b->off && a->len == b->len));
}

/* Feeds DATA in growing prefixes, each copied to a fresh allocation of exactly its size. */
static int head_split(RequestHead *h, const uint8_t *data, size_t size, uint32_t *state, size_t max) {
        size_t have = 0;
        int r = HEAD_MORE;

        request_head_init(h);
        while (r == HEAD_MORE && have < size) {
                size_t step = 1 + xorshift(state) % max;
                char *buf;

                have = step > size - have ? size : have + step;
                buf = malloc(have);
                fuzz_check(buf);
                memcpy(buf, data, have);
                r = request_head_feed(h, buf, have);
                free(buf);
        }
        return r;
}

/* Decodes BODY whole into OUT; returns the decoder's result. */
static int body_whole(RequestHead *h, const uint8_t *body, size_t size, uint8_t *out, size_t *ret_len) {
        char *buf = malloc(size + 1);
        size_t start = 0, len = 0;
        int r;

        fuzz_check(buf);
        memcpy(buf, body, size);
        r = request_body_decode(h, buf, size, &start, &len);
        if (r >= 0) {
                fuzz_check(start <= size && len <= size - start);
                memcpy(out, buf + start, len);
                *ret_len = len;
        }
        free(buf);
        return r;
}

/* Decodes BODY in random pieces, each in a buffer of its own as a socket read would hand it over,
 * appending the decoded bytes to OUT and feeding them to the frame parser. */
static int body_split(RequestHead *h, const uint8_t *body, size_t size, uint32_t *state, size_t max,
                      uint8_t *out, size_t *ret_len) {
        size_t pos = 0, total = 0;
        int r = 0;

        frame_parser_reset(&frames);
        while (pos < size && r == 0) {
                size_t step = 1 + xorshift(state) % max, start = 0, len = 0;
                const uint8_t *d;
                char *buf;

                if (step > size - pos)
                        step = size - pos;
                buf = malloc(step);
                fuzz_check(buf);
                memcpy(buf, body + pos, step);
                r = request_body_decode(h, buf, step, &start, &len);
                if (r >= 0) {
                        size_t s = len;

                        fuzz_check(start <= step && len <= step - start);
                        memcpy(out + total, buf + start, len);
                        total += len;

                        d = (const uint8_t *) buf + start;
                        while (s > 0 && !frames.error) {
                                const uint8_t *frame;
                                size_t flen;

                                if (frame_parser_next(&frames, &d, &s, &frame, &flen) == FRAME_DATA)
                                        fuzz_check(frame_validate(frame, flen) == FRAME_ERROR_NONE);
                        }
                }
                free(buf);
                pos += step;
        }
        *ret_len = total;
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t step_max[] = { 1, 2, 7, 64, 1500, 20000 };
        RequestHead whole, split;
        uint8_t *out_whole, *out_split;
        size_t max, start_whole = 0, len_whole = 0, len_split = 0;
        uint32_t state;
        char *buf;
        int r, rs;

        if (size < 4 || size > INPUT_MAX)
                return 0;
        state = ((uint32_t) data[0] | (uint32_t) data[1] << 8 | (uint32_t) data[2] << 16 |
                 (uint32_t) data[3] << 24) | 1;
        max = step_max[data[1] % (sizeof(step_max) / sizeof(step_max[0]))];
        data += 4;
        size -= 4;

        buf = malloc(size + 1);
        fuzz_check(buf);
        memcpy(buf, data, size);
        request_head_init(&whole);
        r = request_head_feed(&whole, buf, size);
        fuzz_check(r == HEAD_MORE || r == HEAD_TUNNEL || r == HEAD_HAND_OFF || r == -EBADMSG ||
                   r == -E2BIG || r == -EPROTO);
        fuzz_check(whole.parsed <= size && whole.parsed <= HEAD_MAX);
        if (r == HEAD_MORE)
                fuzz_check(whole.parsed == size && size < HEAD_MAX);
        if (r == -E2BIG)
                fuzz_check(whole.parsed == HEAD_MAX);
        if (r < 0)
                fuzz_check(request_head_error(&whole));
        if (r == HEAD_TUNNEL || r == HEAD_HAND_OFF || r == -EPROTO) {
                fuzz_check(whole.head_done);
                fuzz_check((whole.parser.method == HTTP_PUT) == (r != HEAD_HAND_OFF));
                check_span(&whole, buf, &whole.api_key);
                check_span(&whole, buf, &whole.forwarded);
                check_span(&whole, buf, &whole.expect);
                (void) request_head_expects_continue(&whole, buf);
                /* Fed once more, a finished head stays as it was. */
                fuzz_check(request_head_feed(&whole, buf, size) == -EINVAL);
        }

        rs = head_split(&split, data, size, &state, max);
        fuzz_check(rs == r);
        if (r != HEAD_MORE && r != -EBADMSG)
                fuzz_check(split.parsed == whole.parsed);
        if (r == HEAD_TUNNEL || r == HEAD_HAND_OFF || r == -EPROTO) {
                fuzz_check(span_equal(&split.api_key, &whole.api_key));
                fuzz_check(span_equal(&split.forwarded, &whole.forwarded));
                fuzz_check(span_equal(&split.expect, &whole.expect));
        }

        if (r == HEAD_TUNNEL) {
                const uint8_t *body = data + whole.parsed;
                size_t body_size = size - whole.parsed;

                out_whole = malloc(body_size + 1);
                out_split = malloc(body_size + 1);
                fuzz_check(out_whole && out_split);
                r = body_whole(&whole, body, body_size, out_whole, &len_whole);
                rs = body_split(&split, body, body_size, &state, max, out_split, &len_split);
                fuzz_check(r == 0 || r == 1 || r == -EBADMSG);
                fuzz_check((r < 0) == (rs < 0));
                if (r >= 0) {
                        fuzz_check(rs == r);
                        fuzz_check(len_split == len_whole);
                        fuzz_check(memcmp(out_split, out_whole, len_whole) == 0);
                }
                /* A finished body yields nothing more. */
                if (r == 1) {
                        fuzz_check(request_body_decode(&whole, buf, size, &start_whole, &len_whole) == 1);
                        fuzz_check(len_whole == 0);
                }
                free(out_whole);
                free(out_split);
        } else if (!whole.head_done)
                fuzz_check(request_body_decode(&whole, buf, size, &start_whole, &len_whole) == -EINVAL);

        free(buf);
        return 0;
}
