/* SPDX-License-Identifier: MIT */
/* ICMP and ICMPv6 "destination unreachable" answers for packets the router cannot deliver, so senders
 * learn at once instead of timing out. No I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <tapotun/plugin.h>

/* Enough for the largest answer: an IPv6 minimum-MTU packet, plus the vnet header. */
#define ICMP_ANSWER_MAX (TAPOTUN_VNET_HDR_SIZE + 1280u)

/* Builds, into OUT, a frame body (zero vnet header + IP packet) that answers the IP packet PACKET with
 * "destination unreachable" from FROM4 (IPv4) or FROM6 (IPv6). Returns its length, or 0 when no answer
 * may be sent: the packet is an ICMP error itself, a non-first fragment, goes to a multicast or
 * broadcast address, comes from an unspecified or multicast address, or no source address of its
 * family is configured. */
size_t icmp_unreachable(const uint8_t *packet, size_t len, const TapotunPrefix *from4,
                        const TapotunPrefix *from6, uint8_t out[static ICMP_ANSWER_MAX]);
