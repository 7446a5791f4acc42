/* SPDX-License-Identifier: MIT */
/* The frame parser on an arbitrary byte stream. Input: 4 bytes that seed the split positions, then the
 * stream. The stream is parsed once in one piece and once split into chunks; both runs must report the
 * same events at the same stream offsets, every frame handed out must pass frame_validate() and match
 * the stream bytes, and no run may consume more than it was given. */
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"

typedef struct Event {
        int r;
        FrameError error;
        size_t end;    /* stream offset after the event */
        size_t offset; /* FRAME_DATA: offset of the frame body */
        size_t len;
} Event;

/* The buffers are too large for the stack of a fuzzing thread. */
static FrameParser whole, split;

static uint32_t xorshift(uint32_t *state) {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        return *state;
}

/* Parses DATA in one call per event; returns the number of events stored in EVENTS. */
static size_t parse_whole(const uint8_t *data, size_t size, Event *events) {
        const uint8_t *d = data;
        size_t s = size, n = 0;

        frame_parser_reset(&whole);
        for (;;) {
                const uint8_t *frame;
                size_t len;
                int r;

                r = frame_parser_next(&whole, &d, &s, &frame, &len);
                fuzz_check(s <= size && d == data + (size - s));
                if (r == FRAME_NEED_MORE) {
                        fuzz_check(s == 0);
                        return n;
                }

                events[n] = (Event) { .r = r, .error = whole.error, .end = (size_t) (d - data) };

                if (r < 0) {
                        fuzz_check(r == -EBADMSG);
                        fuzz_check(whole.error > FRAME_ERROR_NONE && whole.error < _FRAME_ERROR_MAX);
                        fuzz_check(frame_error_to_string(whole.error));

                        /* Failed stays failed, and consumes nothing more. */
                        fuzz_check(frame_parser_next(&whole, &d, &s, &frame, &len) == -EBADMSG);
                        fuzz_check(d == data + events[n].end);
                        return n + 1;
                }

                fuzz_check(whole.error == FRAME_ERROR_NONE);
                if (r == FRAME_DATA) {
                        uint8_t head[TAPOTUN_LEN_SIZE];

                        /* All of the stream is in this input, so every frame comes without a copy and
                         * ends where the parser stopped. */
                        fuzz_check(frame + len == d);
                        fuzz_check(frame >= data + TAPOTUN_LEN_SIZE);
                        fuzz_check(frame_validate(frame, len) == FRAME_ERROR_NONE);
                        fuzz_check(frame_write_header(head, len) == 0);
                        fuzz_check(memcmp(head, frame - TAPOTUN_LEN_SIZE, sizeof(head)) == 0);
                        events[n].offset = (size_t) (frame - data);
                        events[n].len = len;
                } else
                        fuzz_check(r == FRAME_KEEPALIVE);
                n++;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t chunk_max[] = { 1, 2, 3, 15, 64, 1500, 16384, 70000 };
        const Event *e;
        Event *events;
        size_t n_events, seen = 0, pos = 0, max;
        uint32_t state;
        bool failed = false;

        if (size < 4)
                return 0;
        state = (uint32_t) data[0] | (uint32_t) data[1] << 8 | (uint32_t) data[2] << 16 |
                (uint32_t) data[3] << 24;
        max = chunk_max[data[0] % (sizeof(chunk_max) / sizeof(chunk_max[0]))];
        state |= 1; /* xorshift must not start at zero */
        data += 4;
        size -= 4;

        /* Every event consumes at least two bytes, an error at least none more. */
        events = calloc(size / 2 + 1, sizeof(Event));
        fuzz_check(events);
        n_events = parse_whole(data, size, events);

        frame_parser_reset(&split);
        while (pos < size && !failed) {
                size_t chunk = 1 + xorshift(&state) % max;
                const uint8_t *d = data + pos, *chunk_start = d;
                size_t s;

                if (chunk > size - pos)
                        chunk = size - pos;
                s = chunk;

                for (;;) {
                        const uint8_t *frame;
                        size_t len;
                        int r;

                        r = frame_parser_next(&split, &d, &s, &frame, &len);
                        fuzz_check(s <= chunk && d == chunk_start + (chunk - s));
                        if (r == FRAME_NEED_MORE) {
                                fuzz_check(s == 0);
                                break;
                        }

                        fuzz_check(seen < n_events);
                        e = &events[seen++];
                        fuzz_check(r == e->r);
                        fuzz_check(split.error == e->error);
                        fuzz_check((size_t) (d - data) == e->end);
                        if (r < 0) {
                                failed = true;
                                break;
                        }
                        if (r == FRAME_DATA) {
                                /* Either in place in this chunk or reassembled in the parser. */
                                fuzz_check(frame == split.buf + TAPOTUN_LEN_SIZE ||
                                           (frame >= chunk_start && frame + len == d));
                                fuzz_check(len == e->len);
                                fuzz_check(memcmp(frame, data + e->offset, len) == 0);
                                fuzz_check(frame_validate(frame, len) == FRAME_ERROR_NONE);
                        }
                }
                pos += chunk;
        }

        fuzz_check(seen == n_events);
        if (!failed) {
                /* Both hold the same partial frame. */
                fuzz_check(split.have == whole.have);
                fuzz_check(split.need == whole.need);
                fuzz_check(memcmp(split.buf, whole.buf, split.have) == 0);
        }

        free(events);
        return 0;
}
