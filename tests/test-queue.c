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

/* A packet read straight into the reserved room is queued without a copy, and comes out as pushed. */
static void test_reserve_in_place(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[1500], buf[TAPOTUN_FRAME_MAX];
        uint32_t pulled = 0;
        uint64_t stale;
        size_t frames;
        uint8_t *room;

        g_assert_cmpint(queue_new(1 << 20, 0, &q), ==, 0);
        for (uint32_t i = 0; i < 100; i++) {
                size_t len = 100 + i * 600;

                room = queue_reserve(q);
                g_assert_nonnull(room);
                make_body(room, len, i);
                g_assert_cmpint(queue_push(q, room, len, 0), ==, 0);
                if (i % 3 == 2)
                        while (queue_pull(q, buf, sizeof buf, 0, &stale, &frames) > 0)
                                for (size_t f = 0, off = 0; f < frames; f++, pulled++) {
                                        check_body(buf + off, 100 + pulled * 600, pulled);
                                        off += 2 + 100 + pulled * 600;
                                }
        }
        g_assert_cmpuint(pulled, ==, 99);
        g_assert_cmpuint(queue_pull(q, buf, sizeof buf, 0, &stale, &frames), ==, 2 + 100 + 99 * 600);
        check_body(buf, 100 + 99 * 600, 99);
        /* What was reserved and not used is simply forgotten: a push of another body still copies it. */
        g_assert_nonnull(queue_reserve(q));
        make_body(body, sizeof body, 7);
        g_assert_cmpint(queue_push(q, body, sizeof body, 0), ==, 0);
        g_assert_cmpuint(queue_pull(q, buf, sizeof buf, 0, &stale, &frames), ==, 2 + sizeof body);
        check_body(buf, sizeof body, 7);
        g_assert_cmpuint(queue_frames(q), ==, 0);
}

/* A queue that cannot take a biggest frame reserves nothing, while a small frame still fits. */
static void test_reserve_full(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[60000];

        g_assert_cmpint(queue_new(0, 0, &q), ==, 0);
        g_assert_nonnull(queue_reserve(q));
        while (queue_reserve(q))
                g_assert_cmpint(queue_push(q, body, sizeof body, 0), ==, 0);
        g_assert_cmpuint(queue_frames(q), >=, 1);
        g_assert_cmpint(queue_push(q, body, 100, 0), ==, 0);
}

/* Joins the pieces of a loan. */
#define IOV_MAX_TEST 128u
static struct iovec iov[IOV_MAX_TEST];

static int lend(Queue *q, size_t size, uint8_t *copy, uint64_t now, QueueLoan *ret) {
        return queue_lend(q, size, copy, iov, IOV_MAX_TEST, now, ret);
}

static size_t loan_join(const QueueLoan *l, uint8_t *out) {
        size_t n = 0;

        for (size_t i = 0; i < l->n_iov; i++) {
                memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
                n += iov[i].iov_len;
        }
        return n;
}

/* Big frames are lent where they are, small ones copied back to back; they stay queued until returned, and
 * nothing else is lent or pulled meanwhile. */
static void test_lend(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[TAPOTUN_FRAME_MAX], copy[256 * 1024], joined[256 * 1024], buf[TAPOTUN_FRAME_MAX];
        static const size_t lens[] = { 40000, 60, 70, 80, 3000, 65547, 90 };
        size_t off = 0, frames;
        uint64_t stale;
        QueueLoan l, l2;

        g_assert_cmpint(queue_new(4 << 20, 0, &q), ==, 0);
        g_assert_cmpint(lend(q, sizeof copy, copy, 0, &l), ==, 0);
        g_assert_cmpuint(l.bytes, ==, 0);
        g_assert_false(queue_lent(q));

        for (uint32_t i = 0; i < ELEMENTSOF(lens); i++) {
                make_body(body, lens[i], i);
                g_assert_cmpint(queue_push(q, body, lens[i], 0), ==, 0);
        }
        g_assert_cmpint(lend(q, sizeof copy, copy, 0, &l), ==, 0);
        g_assert_true(queue_lent(q));
        g_assert_cmpuint(l.frames, ==, ELEMENTSOF(lens));
        /* 40000 | 60 70 80 (copied, one piece) | 3000 | 65547 | 90 (copied) */
        g_assert_cmpuint(l.n_iov, ==, 5);
        g_assert_true((uint8_t *) iov[1].iov_base == copy);
        g_assert_cmpuint(iov[1].iov_len, ==, 3 * 2 + 60 + 70 + 80);
        g_assert_cmpuint(loan_join(&l, joined), ==, l.bytes);
        for (uint32_t i = 0; i < ELEMENTSOF(lens); i++) {
                check_body(joined + off, lens[i], i);
                off += 2 + lens[i];
        }
        g_assert_cmpuint(off, ==, l.bytes);

        /* Lent frames are still queued; nothing more is handed out until they return. */
        g_assert_cmpuint(queue_frames(q), ==, ELEMENTSOF(lens));
        g_assert_cmpint(lend(q, sizeof copy, copy, 0, &l2), ==, -EBUSY);
        make_body(body, 500, 99);
        g_assert_cmpint(queue_push(q, body, 500, 0), ==, 0);
        g_assert_cmpuint(queue_pull(q, buf, sizeof buf, 0, &stale, &frames), ==, 0);
        g_assert_false(queue_trim(q));

        queue_return(q);
        g_assert_false(queue_lent(q));
        g_assert_cmpuint(queue_frames(q), ==, 1);
        g_assert_cmpint(lend(q, sizeof copy, copy, 0, &l), ==, 0);
        g_assert_cmpuint(l.frames, ==, 1);
        g_assert_cmpuint(loan_join(&l, joined), ==, 502);
        check_body(joined, 500, 99);
        queue_return(q);
        g_assert_cmpuint(queue_frames(q), ==, 0);
        g_assert_cmpuint(queue_bytes(q), ==, 0);
}

/* A loan holds only whole frames within its size and its number of pieces. */
static void test_lend_limits(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[2000], copy[1 << 20];
        QueueLoan l;

        g_assert_cmpint(queue_new(4 << 20, 0, &q), ==, 0);
        for (uint32_t i = 0; i < 3; i++)
                g_assert_cmpint(queue_push(q, body, 2000, 0), ==, 0);
        g_assert_cmpint(lend(q, 2 * 2002 + 1000, copy, 0, &l), ==, 0);
        g_assert_cmpuint(l.frames, ==, 2);
        g_assert_cmpuint(l.bytes, ==, 2 * 2002);
        queue_return(q);
        g_assert_cmpuint(queue_frames(q), ==, 1);
        queue_return(q); /* without a loan: nothing */
        g_assert_cmpuint(queue_frames(q), ==, 1);

        for (uint32_t i = 0; i < 2 * IOV_MAX_TEST; i++)
                g_assert_cmpint(queue_push(q, body, 1000, 0), ==, 0);
        g_assert_cmpint(lend(q, sizeof copy, copy, 0, &l), ==, 0);
        g_assert_cmpuint(l.n_iov, ==, IOV_MAX_TEST);
        g_assert_cmpuint(l.frames, ==, IOV_MAX_TEST);
        queue_return(q);
        g_assert_cmpuint(queue_frames(q), ==, IOV_MAX_TEST + 1);
}

/* Growing the ring while frames are lent leaves the lent bytes where they are until the loan returns. */
static void test_lend_grow(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[50000], copy[256 * 1024], joined[256 * 1024], buf[TAPOTUN_FRAME_MAX];
        size_t initial, frames, n;
        uint32_t seq = 0, pulled;
        uint64_t stale;
        QueueLoan l;

        g_assert_cmpint(queue_new(8 << 20, 0, &q), ==, 0);
        initial = queue_capacity(q);
        for (; seq < 2; seq++) {
                make_body(body, sizeof body, seq);
                g_assert_cmpint(queue_push(q, body, sizeof body, 0), ==, 0);
        }
        g_assert_cmpint(lend(q, sizeof copy, copy, 0, &l), ==, 0);
        g_assert_cmpuint(l.frames, ==, 2);
        /* Twice as big, and again. */
        for (; seq < 40; seq++) {
                make_body(body, sizeof body, seq);
                g_assert_cmpint(queue_push(q, body, sizeof body, 0), ==, 0);
        }
        g_assert_cmpuint(queue_capacity(q), >=, 4 * initial);
        g_assert_cmpuint(loan_join(&l, joined), ==, 2 * (2 + sizeof body));
        check_body(joined, sizeof body, 0);
        check_body(joined + 2 + sizeof body, sizeof body, 1);
        queue_return(q);

        for (pulled = 2; (n = queue_pull(q, buf, sizeof buf, 0, &stale, &frames)) > 0; pulled++) {
                g_assert_cmpuint(frames, ==, 1);
                check_body(buf, sizeof body, pulled);
        }
        g_assert_cmpuint(pulled, ==, seq);
}

/* Stale frames are dropped before lending, never while lent. */
static void test_lend_stale(void) {
        _cleanup_(queue_freep) Queue *q = NULL;
        static uint8_t body[1000], copy[256 * 1024], joined[256 * 1024];
        QueueLoan l;

        g_assert_cmpint(queue_new(1 << 20, 100000, &q), ==, 0);
        make_body(body, 1000, 1);
        g_assert_cmpint(queue_push(q, body, 1000, 1000000), ==, 0);
        make_body(body, 1000, 2);
        g_assert_cmpint(queue_push(q, body, 1000, 1150000), ==, 0);
        g_assert_cmpint(lend(q, sizeof copy, copy, 1160000, &l), ==, 0);
        g_assert_cmpuint(l.stale, ==, 1);
        g_assert_cmpuint(l.frames, ==, 1);
        loan_join(&l, joined);
        check_body(joined, 1000, 2);
        g_assert_cmpuint(queue_expire(q, 9000000), ==, 0);
        g_assert_cmpuint(queue_frames(q), ==, 1);
        queue_return(q);
        g_assert_cmpuint(queue_frames(q), ==, 0);
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
        g_test_add_func("/queue/reserve/in-place", test_reserve_in_place);
        g_test_add_func("/queue/reserve/full", test_reserve_full);
        g_test_add_func("/queue/lend/pieces", test_lend);
        g_test_add_func("/queue/lend/limits", test_lend_limits);
        g_test_add_func("/queue/lend/grow", test_lend_grow);
        g_test_add_func("/queue/lend/stale", test_lend_stale);
        return g_test_run();
}
