/* SPDX-License-Identifier: MIT */
#include <glib.h>

#include <tapotun/plugin.h>

#include "queue.h"

/* A frame body of LEN bytes whose content identifies it by SEQ. */
static void make_body(uint8_t *b, size_t len, uint32_t seq) {
        for (size_t i = 0; i < len; i++)
                b[i] = (uint8_t) (seq * 131 + i);
}

static void check_body(const uint8_t *wire, size_t len, uint32_t seq) {
        g_assert_cmpuint(wire[0] | (wire[1] << 8), ==, len - TAPOTUN_VNET_HDR_SIZE);
        for (size_t i = 0; i < len; i++)
                if (wire[2 + i] != (uint8_t) (seq * 131 + i))
                        g_error("frame %u byte %zu differs", seq, i);
}

static void test_fifo(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[2000], buf[TAPOTUN_FRAME_MAX * 2];
        uint64_t stale;
        size_t frames, n;

        g_assert_cmpint(queue_new(1 << 20, 0, &q), ==, 0);
        g_assert_cmpuint(queue_pull(q, buf, sizeof buf, 0, &stale, &frames), ==, 0);
        g_assert_cmpuint(frames, ==, 0);

        for (uint32_t i = 0; i < 3; i++) {
                make_body(body, 100 + i, i);
                g_assert_cmpint(queue_push(q, body, 100 + i, 0), ==, 0);
        }
        g_assert_cmpuint(queue_frames(q), ==, 3);
        g_assert_cmpuint(queue_bytes(q), ==, 3 * 2 + 100 + 101 + 102);

        n = queue_pull(q, buf, sizeof buf, 0, &stale, &frames);
        g_assert_cmpuint(n, ==, 3 * 2 + 303);
        g_assert_cmpuint(frames, ==, 3);
        g_assert_cmpuint(stale, ==, 0);
        check_body(buf, 100, 0);
        check_body(buf + 102, 101, 1);
        check_body(buf + 205, 102, 2);
        g_assert_cmpuint(queue_frames(q), ==, 0);
}

static void test_whole_frames_only(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[1000], buf[TAPOTUN_FRAME_MAX];
        uint64_t stale;
        size_t frames;

        g_assert_cmpint(queue_new(1 << 20, 0, &q), ==, 0);
        make_body(body, 1000, 7);
        g_assert_cmpint(queue_push(q, body, 1000, 0), ==, 0);
        g_assert_cmpint(queue_push(q, body, 1000, 0), ==, 0);
        /* Room for one and a half frames: only one comes out. */
        g_assert_cmpuint(queue_pull(q, buf, 1002 + 500, 0, &stale, &frames), ==, 1002);
        g_assert_cmpuint(frames, ==, 1);
        g_assert_cmpuint(queue_frames(q), ==, 1);
}

static void test_invalid(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[TAPOTUN_FRAME_MAX];

        g_assert_cmpint(queue_new(1 << 20, 0, &q), ==, 0);
        g_assert_cmpint(queue_push(q, body, 11, 0), ==, -EINVAL);
        g_assert_cmpint(queue_push(q, body, 12 + 19, 0), ==, -EINVAL);
        g_assert_cmpint(queue_push(q, body, 12 + 65536, 0), ==, -EINVAL);
        g_assert_cmpint(queue_push(q, body, 12 + 65535, 0), ==, 0);
        g_assert_cmpuint(queue_frames(q), ==, 1);
}

static void test_bounded(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[1500];
        size_t accepted = 0;
        int r;

        /* The bound is raised to two biggest frames (~128 KiB) at least. */
        g_assert_cmpint(queue_new(256 * 1024, 0, &q), ==, 0);
        while ((r = queue_push(q, body, sizeof body, 0)) == 0)
                accepted++;
        g_assert_cmpint(r, ==, -ENOBUFS);
        g_assert_cmpuint(queue_bytes(q), <=, 256 * 1024);
        g_assert_cmpuint(accepted, >, 150);
        g_assert_cmpuint(queue_frames(q), ==, accepted);
}

static void test_stale(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[100], buf[TAPOTUN_FRAME_MAX];
        uint64_t stale;
        size_t frames, n;

        g_assert_cmpint(queue_new(1 << 20, 100000, &q), ==, 0);
        make_body(body, 100, 1);
        g_assert_cmpint(queue_push(q, body, 100, 1000000), ==, 0);
        g_assert_cmpint(queue_push(q, body, 100, 1050000), ==, 0);
        make_body(body, 100, 3);
        g_assert_cmpint(queue_push(q, body, 100, 1150000), ==, 0);

        /* At 1.16 s the first two are older than 100 ms: dropped and counted, the third delivered. */
        n = queue_pull(q, buf, sizeof buf, 1160000, &stale, &frames);
        g_assert_cmpuint(stale, ==, 2);
        g_assert_cmpuint(frames, ==, 1);
        g_assert_cmpuint(n, ==, 102);
        check_body(buf, 100, 3);
}

/* Random sizes through a small ring, checked against the order they went in: exercises wrap-around. */
static void test_wrap_random(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[TAPOTUN_FRAME_MAX], buf[3 * TAPOTUN_FRAME_MAX];
        GQueue expect = G_QUEUE_INIT;
        uint32_t seq = 0, got = 0;
        GRand *rand = g_rand_new_with_seed(g_test_rand_int());

        g_assert_cmpint(queue_new(0, 0, &q), ==, 0);
        for (int round = 0; round < 20000; round++) {
                if (g_rand_int_range(rand, 0, 3) != 0) {
                        size_t len = g_rand_boolean(rand) ? (size_t) g_rand_int_range(rand, 32, 200)
                                                          : (size_t) g_rand_int_range(rand, 32, 65547);
                        make_body(body, len, seq);
                        if (queue_push(q, body, len, 0) == 0) {
                                g_queue_push_tail(&expect, GSIZE_TO_POINTER(len));
                                g_queue_push_tail(&expect, GUINT_TO_POINTER(seq));
                        }
                        seq++;
                } else {
                        uint64_t stale;
                        size_t frames, size = (size_t) g_rand_int_range(rand, TAPOTUN_FRAME_MAX, sizeof buf);
                        size_t n = queue_pull(q, buf, size, 0, &stale, &frames), off = 0;

                        for (size_t f = 0; f < frames; f++) {
                                size_t len = GPOINTER_TO_SIZE(g_queue_pop_head(&expect));
                                uint32_t s = GPOINTER_TO_UINT(g_queue_pop_head(&expect));

                                check_body(buf + off, len, s);
                                off += 2 + len;
                                got++;
                        }
                        g_assert_cmpuint(off, ==, n);
                }
                g_assert_cmpuint(queue_frames(q), ==, g_queue_get_length(&expect) / 2);
        }
        g_assert_cmpuint(got, >, 1000);
        g_queue_clear(&expect);
        g_rand_free(rand);
}

/* A ring that grows while it is wrapped keeps every frame in order, and stops at the bound. */
static void test_grow(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[1500], buf[TAPOTUN_FRAME_MAX];
        uint32_t pushed = 0, pulled = 0;
        uint64_t stale;
        size_t frames, n;
        int r;

        g_assert_cmpint(queue_new(4 << 20, 0, &q), ==, 0);
        /* Wrap the initial ring: push 100, pull what fits in one buffer, push 100 more. */
        for (int i = 0; i < 100; i++, pushed++) {
                make_body(body, 1000 + pushed % 500, pushed);
                g_assert_cmpint(queue_push(q, body, 1000 + pushed % 500, 0), ==, 0);
        }
        n = queue_pull(q, buf, sizeof buf, 0, &stale, &frames);
        for (size_t off = 0; off < n; off += 2 + 1000 + pulled % 500, pulled++)
                check_body(buf + off, 1000 + pulled % 500, pulled);
        for (;;) {
                make_body(body, 1000 + pushed % 500, pushed);
                r = queue_push(q, body, 1000 + pushed % 500, 0);
                if (r < 0)
                        break;
                pushed++;
        }
        g_assert_cmpint(r, ==, -ENOBUFS);
        /* Far beyond the initial two biggest frames, within the bound. */
        g_assert_cmpuint(queue_bytes(q), >, 3 << 20);
        g_assert_cmpuint(queue_bytes(q), <=, 4 << 20);

        while ((n = queue_pull(q, buf, sizeof buf, 0, &stale, &frames)) > 0)
                for (size_t off = 0; off < n; off += 2 + 1000 + pulled % 500, pulled++)
                        check_body(buf + off, 1000 + pulled % 500, pulled);
        g_assert_cmpuint(pulled, ==, pushed);
        g_assert_cmpuint(queue_frames(q), ==, 0);
}

/* A burst grows the ring; once drained, trimming returns it to its starting size, and not before. */
static void test_trim(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[60000], buf[1 << 20];
        size_t initial, frames;
        uint64_t stale;

        g_assert_cmpint(queue_new(4 << 20, 0, &q), ==, 0);
        initial = queue_capacity(q);
        g_assert_false(queue_trim(q));

        for (int i = 0; i < 40; i++)
                g_assert_cmpint(queue_push(q, body, sizeof body, 0), ==, 0);
        g_assert_cmpuint(queue_capacity(q), >=, 40 * sizeof body);
        g_assert_false(queue_trim(q)); /* frames wait: nothing is given back */
        g_assert_cmpuint(queue_pull(q, buf, sizeof buf, 0, &stale, &frames), >, 0);
        g_assert_false(queue_trim(q));

        while (queue_pull(q, buf, sizeof buf, 0, &stale, &frames) > 0)
                ;
        g_assert_true(queue_trim(q));
        g_assert_cmpuint(queue_capacity(q), ==, initial);
        g_assert_false(queue_trim(q));

        /* It works as before: frames go in and come out whole. */
        make_body(body, 1500, 7);
        g_assert_cmpint(queue_push(q, body, 1500, 0), ==, 0);
        g_assert_cmpuint(queue_pull(q, buf, sizeof buf, 0, &stale, &frames), ==, 2 + 1500);
        check_body(buf, 1500, 7);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/queue/pull/fifo", test_fifo);
        g_test_add_func("/queue/pull/whole-frames-only", test_whole_frames_only);
        g_test_add_func("/queue/push/invalid", test_invalid);
        g_test_add_func("/queue/push/bounded", test_bounded);
        g_test_add_func("/queue/pull/stale", test_stale);
        g_test_add_func("/queue/push/wrap-random", test_wrap_random);
        g_test_add_func("/queue/push/grow", test_grow);
        g_test_add_func("/queue/trim/after-burst", test_trim);
        return g_test_run();
}
