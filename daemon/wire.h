/* SPDX-License-Identifier: MIT */
/* Header codecs of PROTOCOL.md sections 4 and 6 (x-tun-conf, x-tun-conf6, x-tun-offload,
 * x-tun-routes). No I/O; linked into the plugins too (static library tapotun-wire). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tapotun/plugin.h>

/* TUN offload bits, as TUNSETOFFLOAD takes them (USO values from newer kernel headers). */
#define WIRE_OFFLOAD_CSUM 0x01u
#define WIRE_OFFLOAD_TSO4 0x02u
#define WIRE_OFFLOAD_TSO6 0x04u
#define WIRE_OFFLOAD_ECN 0x08u
#define WIRE_OFFLOAD_USO4 0x20u
#define WIRE_OFFLOAD_USO6 0x40u
#define WIRE_OFFLOAD_V1 (WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4 | WIRE_OFFLOAD_TSO6 | WIRE_OFFLOAD_ECN)
#define WIRE_OFFLOAD_ALL (WIRE_OFFLOAD_V1 | WIRE_OFFLOAD_USO4 | WIRE_OFFLOAD_USO6)

typedef struct TunConf {
        uint16_t mtu;
        uint8_t prefixlen;
        struct in_addr address;
} TunConf;

/* x-tun-conf: standard Base64 of 7 bytes (12 characters + NUL in RET). */
#define WIRE_TUN_CONF_STRLEN 12
void wire_tun_conf_encode(const TunConf *c, char ret[static WIRE_TUN_CONF_STRLEN + 1]);
/* -EBADMSG on bad Base64, a wrong length or a prefix above 32. */
int wire_tun_conf_decode(const char *s, TunConf *ret);

/* x-tun-offload: "csum,tso4,..." <-> bits. Unknown names are ignored (a newer peer), as is whitespace.
 * Format writes into RET (at least 64 bytes). */
uint32_t wire_offload_parse(const char *s);
void wire_offload_format(uint32_t bits, char *ret, size_t size);

/* Prefix text "a.b.c.d/p", "x::y/p"; a missing "/p" means a host prefix. Host bits must be zero only
 * when NETWORK is true. -EINVAL on anything else. */
int wire_prefix_parse(const char *s, bool network, TapotunPrefix *ret);
/* "a.b.c.d/p"; RET at least 64 bytes. */
void wire_prefix_format(const TapotunPrefix *p, char *ret, size_t size);
/* Whether every host bit of P is zero. */
bool wire_prefix_is_network(const TapotunPrefix *p);
bool wire_prefix_contains(const TapotunPrefix *net, const TapotunPrefix *addr);
bool wire_prefix_overlaps(const TapotunPrefix *a, const TapotunPrefix *b);
bool wire_prefix_equal(const TapotunPrefix *a, const TapotunPrefix *b);

/* x-tun-routes / x-tun-conf6: comma-separated prefixes. Parse allocates *RET (free()); -EBADMSG names no
 * position; at most 1024 entries. */
int wire_prefixes_parse(const char *s, TapotunPrefix **ret, size_t *ret_n);
/* Returns a malloc()ed string, NULL on OOM. */
char *wire_prefixes_format(const TapotunPrefix *p, size_t n);

/* What a server's GET response tells its client (PROTOCOL.md sections 4 and 6). */
typedef struct WireServerConf {
        TunConf conf;            /* without x-tun-conf (an IPv6-only client): MTU 1280, no address */
        TapotunPrefix conf6;     /* family 0 without x-tun-conf6 */
        uint32_t offloads;       /* what the server sends: WIRE_OFFLOAD_V1 without x-tun-offload */
        TapotunPrefix *routes;   /* x-tun-routes without the entries that have host bits set (free()) */
        size_t n_routes;
        size_t n_routes_ignored; /* those entries */
} WireServerConf;

/* Decides the client's configuration from the response headers H, as the client transport hands them
 * over (names compared case-insensitively; the first of repeated headers counts). x-tun-routes is read
 * only when ACCEPT_ROUTES. -ENODATA when neither x-tun-conf nor x-tun-conf6 is there; -EBADMSG with
 * *RET_BAD pointing at the header that does not decode. */
int wire_server_conf_parse(const TapotunHeader *h, size_t n, bool accept_routes, WireServerConf *ret,
                           const TapotunHeader **ret_bad);
void wire_server_conf_done(WireServerConf *c);

/* Standard Base64 with padding. Encode writes a NUL-terminated string (4*ceil(n/3)+1 bytes). Decode
 * returns the byte count or -EBADMSG. */
void wire_base64_encode(const void *data, size_t n, char *ret);
ssize_t wire_base64_decode(const char *s, void *ret, size_t size);
