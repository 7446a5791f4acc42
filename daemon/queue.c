/* SPDX-License-Identifier: MIT */
#include <tapotun/plugin.h>

#include "frame.h"
#include "queue.h"

/* Each entry: header, then the wire frame, padded to 8 bytes. An entry never wraps: when the tail has no
 * room for it, a zero-size marker sends the reader back to the start. */
typedef struct Entry {
        uint64_t time;
        uint32_t size; /* wire bytes; 0 marks "wrap to the start" */
        uint32_t pad;
} Entry;

struct Queue {
        uint8_t *ring;
        size_t capacity;     /* of ring, which grows on demand */
        size_t max_capacity; /* the bound */
        size_t min_capacity; /* what it starts with, and returns to when trimmed */
        size_t head; /* offset of the oldest entry */
        size_t tail; /* offset where the next entry goes */
        size_t bytes;  /* wire bytes queued */
        size_t frames;
        uint64_t max_age;

        uint8_t *reserved; /* where queue_reserve() said the next body goes, NULL when it said nothing */

        /* The loan (queue_lend()): the oldest N_LENT entries, still queued; 0 when none is out. */
        size_t n_lent;
        uint8_t *lent_ring; /* the ring the loan points into, once a bigger one replaced it */
};

#define ENTRY_SPACE(size) ((sizeof(Entry) + (size) + 7u) & ~(size_t) 7u)

/* The ring a queue starts with: two biggest frames, always room for the next one while it is empty. */
#define QUEUE_INITIAL_CAPACITY (2 * ENTRY_SPACE(TAPOTUN_FRAME_MAX))

/* What queue_reserve() makes room for: the length field and a read of QUEUE_RESERVE_SIZE bytes (one more
 * than the biggest body, so that the reader can tell an oversized packet). */
#define RESERVE_SPACE ENTRY_SPACE(TAPOTUN_LEN_SIZE + QUEUE_RESERVE_SIZE)

int queue_new(size_t max_bytes, uint64_t max_age_usec, Queue **ret) {
        Queue *q;

        /* Room for a reservation at the tail beside a biggest frame, whatever the configured bound. */
        max_bytes = MAX(max_bytes, (size_t) QUEUE_INITIAL_CAPACITY);
        max_bytes = MAX(max_bytes, ENTRY_SPACE(TAPOTUN_FRAME_MAX) + RESERVE_SPACE);
        max_bytes = (max_bytes + 7u) & ~(size_t) 7u;

        q = calloc(1, sizeof(Queue));
        if (!q)
                return -ENOMEM;
        /* Most peers never queue much: the ring grows towards the bound only when frames wait. */
        q->capacity = MIN(max_bytes, (size_t) QUEUE_INITIAL_CAPACITY);
        q->ring = malloc(q->capacity);
        if (!q->ring) {
                free(q);
                return -ENOMEM;
        }
        q->max_capacity = max_bytes;
        q->min_capacity = q->capacity;
        q->max_age = max_age_usec;
        *ret = q;
        return 0;
}

Queue *queue_free(Queue *q) {
        if (!q)
                return NULL;
        free(q->lent_ring);
        free(q->ring);
        return mfree(q);
}

static Entry *entry_at(const Queue *q, size_t off) {
        return (Entry *) (q->ring + off);
}

/* The offset of the entry at or after OFF, past a wrap marker. */
static size_t entry_skip_marker(const Queue *q, size_t off) {
        if (q->capacity - off < sizeof(Entry) || entry_at(q, off)->size == 0)
                return 0;
        return off;
}

/* Moves the entries, oldest first, to the start of a ring of at least NEED more bytes, up to the bound. A
 * ring that a loan points into is kept until the loan returns. */
static int queue_grow(Queue *q, size_t need) {
        size_t capacity, h = q->head, off = 0, live = 0;
        uint8_t *ring;

        if (q->capacity >= q->max_capacity)
                return -ENOBUFS;
        /* What the entries take without the space lost at the wrap. */
        for (size_t k = 0, at = h; k < q->frames; k++) {
                at = entry_skip_marker(q, at);
                live += ENTRY_SPACE(entry_at(q, at)->size);
                at += ENTRY_SPACE(entry_at(q, at)->size);
        }
        capacity = MIN(q->max_capacity, MAX(2 * q->capacity, live + need));
        capacity = (capacity + 7u) & ~(size_t) 7u;
        if (live + need > capacity)
                return -ENOBUFS;

        ring = malloc(capacity);
        if (!ring)
                return -ENOMEM;
        for (size_t k = 0; k < q->frames; k++) {
                size_t space;

                h = entry_skip_marker(q, h);
                space = ENTRY_SPACE(entry_at(q, h)->size);
                memcpy(ring + off, q->ring + h, space);
                off += space;
                h += space;
        }
        if (q->n_lent > 0 && !q->lent_ring)
                q->lent_ring = q->ring;
        else
                free(q->ring);
        q->ring = ring;
        q->capacity = capacity;
        q->head = 0;
        q->tail = off;
        return 0;
}

/* Makes [tail, tail + NEED) free, growing the ring or wrapping to its start. */
static int queue_make_room(Queue *q, size_t need) {
        if (q->frames == 0) {
                /* Empty: start over at the front. */
                q->head = q->tail = 0;
                return need <= q->capacity ? 0 : queue_grow(q, need);
        }

        if (q->tail <= q->head) {
                /* Free space is [tail, head). */
                if (q->head - q->tail >= need)
                        return 0;
                return queue_grow(q, need);
        }

        /* Free space is [tail, capacity) and [0, head). */
        if (q->capacity - q->tail >= need)
                return 0;
        if (q->head < need)
                return queue_grow(q, need);
        if (q->capacity - q->tail >= sizeof(Entry))
                *entry_at(q, q->tail) = (Entry) { .size = 0 };
        q->tail = 0;
        return 0;
}

uint8_t *queue_reserve(Queue *q) {
        q->reserved = NULL;
        if (queue_make_room(q, RESERVE_SPACE) < 0)
                return NULL;
        q->reserved = (uint8_t *) (entry_at(q, q->tail) + 1) + TAPOTUN_LEN_SIZE;
        return q->reserved;
}

bool queue_is_reserved(const Queue *q, const void *body) {
        return body && body == q->reserved;
}

int queue_push(Queue *q, const void *body, size_t len, uint64_t now) {
        size_t wire = TAPOTUN_LEN_SIZE + len;
        bool in_place = queue_is_reserved(q, body);
        Entry *e;
        int r;

        q->reserved = NULL;
        if (len < TAPOTUN_VNET_HDR_SIZE)
                return -EINVAL;
        /* The reservation made room for the biggest body already. */
        if (!in_place) {
                r = queue_make_room(q, ENTRY_SPACE(wire));
                if (r < 0)
                        return r;
        }

        e = entry_at(q, q->tail);
        r = frame_write_header((uint8_t *) (e + 1), len);
        if (r < 0)
                return r;
        e->time = now;
        e->size = (uint32_t) wire;
        if (!in_place)
                memcpy((uint8_t *) (e + 1) + TAPOTUN_LEN_SIZE, body, len);

        q->tail += ENTRY_SPACE(wire);
        if (q->tail == q->capacity)
                q->tail = 0;
        q->bytes += wire;
        q->frames++;
        return 0;
}

/* Moves head past markers to the oldest real entry. */
static Entry *queue_peek(Queue *q) {
        if (q->frames == 0)
                return NULL;
        q->head = entry_skip_marker(q, q->head);
        return entry_at(q, q->head);
}

static void queue_pop(Queue *q, Entry *e) {
        q->bytes -= e->size;
        q->frames--;
        q->head += ENTRY_SPACE(e->size);
        if (q->head == q->capacity)
                q->head = 0;
        if (q->frames == 0)
                q->head = q->tail = 0;
}

uint64_t queue_expire(Queue *q, uint64_t now) {
        uint64_t n = 0;
        Entry *e;

        q->reserved = NULL;
        if (q->max_age == 0 || q->n_lent > 0)
                return 0;
        while ((e = queue_peek(q)) && e->time + q->max_age < now) {
                queue_pop(q, e);
                n++;
        }
        return n;
}

size_t queue_pull(Queue *q, void *buf, size_t size, uint64_t now, uint64_t *ret_stale, size_t *ret_frames) {
        uint8_t *out = buf;
        size_t n = 0, frames = 0;
        uint64_t stale;
        Entry *e;

        stale = queue_expire(q, now);
        while (q->n_lent == 0 && (e = queue_peek(q)) && n + e->size <= size) {
                memcpy(out + n, e + 1, e->size);
                n += e->size;
                frames++;
                queue_pop(q, e);
        }
        *ret_stale = stale;
        *ret_frames = frames;
        return n;
}

int queue_lend(Queue *q, size_t size, uint8_t *copy, struct iovec *iov, size_t max_iov, uint64_t now,
               QueueLoan *ret) {
        size_t copied = 0, at;

        if (q->n_lent > 0)
                return -EBUSY;
        *ret = (QueueLoan) {
                .stale = queue_expire(q, now),
        };

        at = q->head;
        for (size_t k = 0; k < q->frames; k++) {
                const uint8_t *wire;
                size_t len;
                struct iovec *last = ret->n_iov > 0 ? &iov[ret->n_iov - 1] : NULL;

                at = entry_skip_marker(q, at);
                wire = (const uint8_t *) (entry_at(q, at) + 1);
                len = entry_at(q, at)->size;
                if (ret->bytes + len > size)
                        break;
                if (len <= QUEUE_LEND_COPY_MAX) {
                        /* Small frames are copied, back to back, extending the copy's piece when it is the
                         * last one. */
                        if (!(last && last->iov_base == copy + copied - last->iov_len)) {
                                if (ret->n_iov == max_iov)
                                        break;
                                iov[ret->n_iov++] = (struct iovec) { copy + copied, 0 };
                                last = &iov[ret->n_iov - 1];
                        }
                        memcpy(copy + copied, wire, len);
                        copied += len;
                        last->iov_len += len;
                } else {
                        if (ret->n_iov == max_iov)
                                break;
                        iov[ret->n_iov++] = (struct iovec) { (void *) wire, len };
                }
                ret->bytes += len;
                ret->frames++;
                at += ENTRY_SPACE(len);
        }

        q->n_lent = ret->frames;
        return 0;
}

void queue_return(Queue *q) {
        q->reserved = NULL;
        for (; q->n_lent > 0; q->n_lent--)
                queue_pop(q, queue_peek(q));
        q->lent_ring = mfree(q->lent_ring);
}

bool queue_lent(const Queue *q) {
        return q->n_lent > 0;
}

size_t queue_bytes(const Queue *q) {
        return q->bytes;
}

size_t queue_frames(const Queue *q) {
        return q->frames;
}

size_t queue_capacity(const Queue *q) {
        return q->capacity;
}

bool queue_trim(Queue *q) {
        uint8_t *ring;

        if (q->frames > 0 || q->capacity <= q->min_capacity)
                return false;
        ring = malloc(q->min_capacity);
        if (!ring)
                return false; /* keeps the bigger one, which works as well */
        q->reserved = NULL;
        free(q->ring);
        q->ring = ring;
        q->capacity = q->min_capacity;
        q->head = q->tail = 0;
        return true;
}
