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
        size_t used; /* ring bytes in use, markers and padding included */
        size_t bytes;  /* wire bytes queued */
        size_t frames;
        uint64_t max_age;
};

#define ENTRY_SPACE(size) ((sizeof(Entry) + (size) + 7u) & ~(size_t) 7u)

/* The ring a queue starts with: two biggest frames, always room for the next one while it is empty. */
#define QUEUE_INITIAL_CAPACITY (2 * ENTRY_SPACE(TAPOTUN_FRAME_MAX))

int queue_new(size_t max_bytes, uint64_t max_age_usec, Queue **ret) {
        Queue *q;

        /* Room for at least one biggest frame, whatever the configured bound. */
        max_bytes = MAX(max_bytes, QUEUE_INITIAL_CAPACITY);
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
        free(q->ring);
        return mfree(q);
}

static Entry *entry_at(const Queue *q, size_t off) {
        return (Entry *) (q->ring + off);
}

/* Moves the entries, oldest first, to the start of a ring of at least NEED more bytes, up to the bound. */
static int queue_grow(Queue *q, size_t need) {
        size_t capacity, h = q->head, off = 0, live = 0;
        uint8_t *ring;

        if (q->capacity >= q->max_capacity)
                return -ENOBUFS;
        /* What the entries take without the space lost at the wrap. */
        for (size_t k = 0, at = h; k < q->frames; k++) {
                if (q->capacity - at < sizeof(Entry) || entry_at(q, at)->size == 0)
                        at = 0;
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

                if (q->capacity - h < sizeof(Entry) || entry_at(q, h)->size == 0)
                        h = 0;
                space = ENTRY_SPACE(entry_at(q, h)->size);
                memcpy(ring + off, q->ring + h, space);
                off += space;
                h += space;
        }
        free(q->ring);
        q->ring = ring;
        q->capacity = capacity;
        q->head = 0;
        q->tail = off;
        q->used = off;
        return 0;
}

int queue_push(Queue *q, const void *body, size_t len, uint64_t now) {
        size_t need, wire = TAPOTUN_LEN_SIZE + len, waste = 0;
        Entry *e;
        int r;

        if (len < TAPOTUN_VNET_HDR_SIZE)
                return -EINVAL;
        need = ENTRY_SPACE(wire);

        if (q->frames > 0 && q->tail <= q->head) {
                /* Free space is [tail, head). */
                if (q->head - q->tail < need) {
                        r = queue_grow(q, need);
                        if (r < 0)
                                return r;
                }
        }
        if (!(q->frames > 0 && q->tail <= q->head)) {
                /* Free space is [tail, capacity) and [0, head). */
                if (q->capacity - q->tail < need && q->head < need && q->frames > 0) {
                        r = queue_grow(q, need);
                        if (r < 0)
                                return r;
                }
                if (q->capacity - q->tail < need) {
                        if (q->head < need && q->frames > 0)
                                return -ENOBUFS;
                        if (q->capacity - q->tail >= sizeof(Entry))
                                *entry_at(q, q->tail) = (Entry) { .size = 0 };
                        waste = q->capacity - q->tail;
                        if (q->frames == 0)
                                q->head = 0;
                        q->tail = 0;
                }
        }

        e = entry_at(q, q->tail);
        r = frame_write_header((uint8_t *) (e + 1), len);
        if (r < 0)
                return r;
        e->time = now;
        e->size = (uint32_t) wire;
        memcpy((uint8_t *) (e + 1) + TAPOTUN_LEN_SIZE, body, len);

        if (q->frames == 0)
                q->head = q->tail;
        q->tail += need;
        if (q->tail == q->capacity)
                q->tail = 0;
        q->used += need + waste;
        q->bytes += wire;
        q->frames++;
        return 0;
}

/* Moves head past markers to the oldest real entry. */
static Entry *queue_peek(Queue *q) {
        Entry *e;

        if (q->frames == 0)
                return NULL;
        if (q->capacity - q->head < sizeof(Entry) || entry_at(q, q->head)->size == 0) {
                q->used -= q->capacity - q->head;
                q->head = 0;
        }
        e = entry_at(q, q->head);
        return e;
}

static void queue_pop(Queue *q, Entry *e) {
        size_t space = ENTRY_SPACE(e->size);

        q->bytes -= e->size;
        q->frames--;
        q->used -= space;
        q->head += space;
        if (q->head == q->capacity)
                q->head = 0;
        if (q->frames == 0) {
                q->head = q->tail = 0;
                q->used = 0;
        }
}

uint64_t queue_expire(Queue *q, uint64_t now) {
        uint64_t n = 0;
        Entry *e;

        if (q->max_age == 0)
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
        while ((e = queue_peek(q)) && n + e->size <= size) {
                memcpy(out + n, e + 1, e->size);
                n += e->size;
                frames++;
                queue_pop(q, e);
        }
        *ret_stale = stale;
        *ret_frames = frames;
        return n;
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
        free(q->ring);
        q->ring = ring;
        q->capacity = q->min_capacity;
        q->head = q->tail = q->used = 0;
        return true;
}
