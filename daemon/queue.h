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

#include "macro.h"

typedef struct Queue Queue;

int queue_new(size_t max_bytes, uint64_t max_age_usec, Queue **ret);
Queue *queue_free(Queue *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Queue *, queue_free);

/* Queues a frame body (vnet header + IP packet) received at NOW. -ENOBUFS when it does not fit,
 * -EINVAL for a body outside the frame limits. */
int queue_push(Queue *q, const void *body, size_t len, uint64_t now);

/* Copies whole wire frames into BUF (at most SIZE bytes), oldest first, after dropping frames older than
 * the age limit at NOW (counted in *ret_stale). Returns the bytes copied (0 when empty); *ret_frames
 * says how many frames they hold. */
size_t queue_pull(Queue *q, void *buf, size_t size, uint64_t now, uint64_t *ret_stale, size_t *ret_frames);

/* Drops everything older than the age limit; returns how many were dropped. */
uint64_t queue_expire(Queue *q, uint64_t now);

size_t queue_bytes(const Queue *q);
size_t queue_frames(const Queue *q);
/* Bytes the ring takes now, between its starting size and the bound. */
size_t queue_capacity(const Queue *q);

/* An empty queue gives back what the ring grew to in a burst: without it every peer that once queued
 * much would keep its whole bound. True when memory was returned. */
bool queue_trim(Queue *q);
