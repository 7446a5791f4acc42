/* SPDX-License-Identifier: MIT */
/* Software segmentation and checksumming of frames (vnet header + IP packet) for a peer whose TUN does not
 * accept the offload a frame relies on (PROTOCOL.md section 4, x-tun-offload): a TCP super-packet (TSO)
 * becomes MSS-sized segments, a UDP one (USO, gso_type UDP_L4) datagrams, and a partial checksum
 * (NEEDS_CSUM) is completed. No I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <tapotun/plugin.h>

#include "wire.h"

/* Room for one output frame: vnet header + the largest IP packet. */
#define GSO_BUF_SIZE (TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX)

/* The WIRE_OFFLOAD_* bits a TUN must accept to take FRAME (a valid frame body) as it is. */
uint32_t gso_frame_needs(const uint8_t *frame, size_t len);

/* Takes one output frame; it lives in the caller's buffer only until the next call. */
typedef int (*GsoEmitFn)(const uint8_t *frame, size_t len, void *userdata);

/* Turns FRAME into frames that a TUN accepting OFFLOADS takes, each built in BUF (GSO_BUF_SIZE bytes) and
 * handed to EMIT: segments when the frame's GSO type is not in OFFLOADS, with checksums completed when
 * OFFLOADS lacks WIRE_OFFLOAD_CSUM (else left partial, for the receiver to finish). Returns the number
 * of frames emitted, -EBADMSG when the headers do not describe a packet that can be segmented, or the
 * first negative value EMIT returned. */
int gso_segment(const uint8_t *frame, size_t len, uint32_t offloads, uint8_t *buf, GsoEmitFn emit,
                void *userdata);

/* The Internet checksum (RFC 1071) over DATA, added to SUM (unfolded, host order pairs). */
uint64_t gso_csum_add(uint64_t sum, const uint8_t *data, size_t len);
/* Folds SUM to 16 bits (not complemented), in network byte order as stored in a header. */
uint16_t gso_csum_fold(uint64_t sum);

/* The offloads a client's TUN may accept under its configured offloads_mask (TapotunIfaceConfig). */
static inline uint32_t gso_offloads_allowed(uint32_t mask) {
        return mask & TAPOTUN_OFFLOADS_SET ? mask & WIRE_OFFLOAD_ALL : WIRE_OFFLOAD_ALL;
}

/* GRO: consecutive TCP segments of one flow, from a peer whose TUN has no TSO, joined into one super-packet
 * for a TUN that takes TSO, so that its kernel handles one packet instead of dozens. */
typedef struct GsoGro {
        uint8_t frame[GSO_BUF_SIZE]; /* the packet being built, vnet header first */
        size_t len;                  /* 0: nothing held */
        size_t l4, hlen;             /* TCP header and payload offsets in the IP packet */
        size_t mss;                  /* payload of the first segment: every one but the last has it */
        size_t segments;
        bool closed;                 /* the last segment was short or had PSH: nothing may follow */
        uint32_t next_seq;
        uint16_t next_id;
} GsoGro;

/* Offers FRAME to G for a TUN accepting OFFLOADS. Returns true when G took it (started or extended the
 * held packet); false when it cannot join: take what G holds, then offer FRAME again, and write it as it
 * is when even an empty G refuses it. */
bool gso_gro_add(GsoGro *g, const uint8_t *frame, size_t len, uint32_t offloads);
/* Hands out the held packet (a super-packet with a partial checksum, or the one segment as it came), valid
 * until the next gso_gro_add(), and empties G. False when nothing is held. */
bool gso_gro_take(GsoGro *g, const uint8_t **ret_frame, size_t *ret_len);
