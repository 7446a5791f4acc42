/* SPDX-License-Identifier: MIT */
/* A bounded FIFO of frames for one peer's downstream (server) or upstream (client). Frames are stored
 * in wire form (length field + vnet header + packet) in one ring, which starts at two biggest frames and
 * doubles when frames wait, up to the bound: an idle peer costs little, and queueing allocates only while
 * the ring grows. Frames older than the age limit are dropped instead of being delivered late
 * (PROTOCOL.md section 5). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <tapotun/plugin.h>

#include "macro.h"

typedef struct Queue Queue;

int queue_new(size_t max_bytes, uint64_t max_age_usec, Queue **ret);
Queue *queue_free(Queue *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Queue *, queue_free);

/* Queues a frame body (vnet header + IP packet) received at NOW (without a copy when BODY is what
 * queue_reserve() returned). -ENOBUFS when it does not fit, -EINVAL for a body outside the frame limits. */
int queue_push(Queue *q, const void *body, size_t len, uint64_t now);

/* Copies whole wire frames into BUF (at most SIZE bytes), oldest first, after dropping frames older than
 * the age limit at NOW (counted in *ret_stale). Returns the bytes copied (0 when empty, or while a loan is
 * out); *ret_frames says how many frames they hold. */
size_t queue_pull(Queue *q, void *buf, size_t size, uint64_t now, uint64_t *ret_stale, size_t *ret_frames);

/* Room at the tail for the biggest frame body, for reading a packet straight into the queue: returns where
 * the body (vnet header first, then the packet; QUEUE_RESERVE_SIZE bytes of room) goes, or NULL when the
 * queue cannot take a biggest frame now. A queue_push() of that very pointer then queues the body without
 * copying it; any other change to Q forgets the reservation (the room is simply not used). */
#define QUEUE_RESERVE_SIZE (TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX + 1u)
uint8_t *queue_reserve(Queue *q);
/* Whether BODY is the room queue_reserve() last returned, and still reserved. */
bool queue_is_reserved(const Queue *q, const void *body);

/* Frames up to this size are copied rather than lent: a piece per ACK would cost more than the copy. */
#define QUEUE_LEND_COPY_MAX 512u

typedef struct QueueLoan {
        size_t n_iov;
        size_t bytes;   /* wire bytes in the pieces */
        size_t frames;
        uint64_t stale; /* dropped for their age before lending */
} QueueLoan;

/* Like queue_pull() without copying the frames: the oldest whole frames, at most SIZE bytes, are lent out
 * as up to MAX_IOV pieces in IOV that point into the queue, except that frames of QUEUE_LEND_COPY_MAX bytes
 * or less are copied back to back into COPY (SIZE bytes). They stay queued (and in place, even when the
 * ring grows) until queue_return(); until then nothing more is lent or pulled, while pushing goes on.
 * RET->bytes is 0 when nothing is queued. Returns 0, or -EBUSY while a loan is out. */
int queue_lend(Queue *q, size_t size, uint8_t *copy, struct iovec *iov, size_t max_iov, uint64_t now,
               QueueLoan *ret);
/* Ends the loan: its frames leave the queue. */
void queue_return(Queue *q);
bool queue_lent(const Queue *q);

/* Drops everything older than the age limit (but what is lent); returns how many were dropped. */
uint64_t queue_expire(Queue *q, uint64_t now);

size_t queue_bytes(const Queue *q);
size_t queue_frames(const Queue *q);
/* Bytes the ring takes now, between its starting size and the bound. */
size_t queue_capacity(const Queue *q);

/* An empty queue gives back what the ring grew to in a burst: without it every peer that once queued
 * much would keep its whole bound. True when memory was returned. */
bool queue_trim(Queue *q);
