/* SPDX-License-Identifier: MIT */
/* The frame codec of PROTOCOL.md section 3. No I/O: callers feed bytes and take frames. Also linked into
 * the transport plugins (as the static library tapotun-wire), so it calls no daemon services. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <tapotun/plugin.h>

typedef enum FrameResult {
        FRAME_NEED_MORE = 0, /* all input consumed, no complete frame */
        FRAME_DATA = 1,      /* *ret_frame, *ret_len: vnet header + IP packet */
        FRAME_KEEPALIVE = 2, /* a `00 00` keepalive was consumed */
} FrameResult;

typedef enum FrameError {
        FRAME_ERROR_NONE,
        FRAME_ERROR_LENGTH,      /* len 1..19 */
        FRAME_ERROR_VNET_HDR,    /* a vnet header the TUN would reject */
        FRAME_ERROR_NOT_IP,      /* payload is neither IPv4 nor IPv6 */
        FRAME_ERROR_IP_HEADER,   /* IP header shorter than its version requires */
        _FRAME_ERROR_MAX,
} FrameError;

const char *frame_error_to_string(FrameError e);

/* Incremental parser that accepts any split of the byte stream. */
typedef struct FrameParser {
        size_t have;      /* bytes of the current frame (length field included) held in buf */
        size_t need;      /* total size of the current frame once its length is known, else 0 */
        FrameError error; /* why the last call failed */
        uint8_t buf[TAPOTUN_FRAME_MAX];
} FrameParser;

/* Resets to a frame boundary; call at the start of every HTTP request body. */
void frame_parser_reset(FrameParser *p);

/* Consumes bytes from *DATA, *SIZE (advancing both) until one frame is complete or the input is used
 * up. On FRAME_DATA, *RET_FRAME points either into the caller's input (when the frame arrived in one
 * piece: no copy) or into P->buf, valid until the next call. Returns a FrameResult, or -EBADMSG with
 * P->error set; after an error the parser stays failed until reset. */
int frame_parser_next(FrameParser *p, const uint8_t **data, size_t *size, const uint8_t **ret_frame,
                      size_t *ret_len);

/* Checks one frame body (vnet header + IP packet) as the parser does; FRAME_ERROR_NONE when valid. */
FrameError frame_validate(const uint8_t *frame, size_t len);

/* Writes the 2-byte length field for a frame body of LEN bytes (vnet header included) to OUT.
 * Returns -EINVAL when the packet length is outside 20..65535. */
int frame_write_header(uint8_t out[static TAPOTUN_LEN_SIZE], size_t len);

/* The keepalive frame. */
extern const uint8_t frame_keepalive[TAPOTUN_LEN_SIZE];
