/* SPDX-License-Identifier: MIT */
/* The request head of every new connection and the body of a tunnel PUT, decoded with libhttp-parser.
 * Bytes in, decisions out: no socket, no h2o, no event loop, so that the fuzz target
 * (tests/fuzz/fuzz-request-head.c) compiles this file as the plugin does. */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#define HEAD_MAX (16u * 1024u) /* a request head larger than this gets 431 */

/* A request header found in the head, as offsets into the connection's input buffer (which may move
 * between reads). */
typedef struct Span {
        size_t off;
        size_t len;
        bool set;
} Span;

typedef enum HeadPart {
        HEAD_PART_NONE,
        HEAD_PART_FIELD,
        HEAD_PART_VALUE,
} HeadPart;

typedef enum HeadResult {
        HEAD_MORE,     /* not complete: read on */
        HEAD_TUNNEL,   /* a PUT: its body is the upstream, for our streaming reader */
        HEAD_HAND_OFF, /* any other method: h2o serves it */
} HeadResult;

typedef struct RequestHead {
        http_parser parser;
        size_t parsed;           /* bytes of the input buffer fed to the parser */
        HeadPart part;
        Span field, value;       /* the header being parsed */
        Span api_key, forwarded, expect;
        bool head_done;
        bool folded;             /* a header value continued on the next line (obs-fold) */
        bool body_done;

        /* Only during a call: the buffer the callbacks work on, and the decoded body bytes in it. */
        const char *base;
        char *out;
        size_t out_len;
} RequestHead;

void request_head_init(RequestHead *h);

/* BUF holds every byte read on the connection so far (SIZE of them); those past h->parsed are new.
 * Returns a HeadResult, -EBADMSG for a malformed head (400), -E2BIG when no head is complete within
 * HEAD_MAX bytes (431), -EPROTO for a PUT that asks for a protocol upgrade (400). After HEAD_TUNNEL the
 * body starts at BUF + h->parsed. */
int request_head_feed(RequestHead *h, const char *buf, size_t size);

/* Why the last call failed, for the log. */
const char *request_head_error(const RequestHead *h);

/* The value of a header the head recorded, without trailing whitespace; NULL when it was absent. */
const char *request_head_value(const RequestHead *h, const char *buf, const Span *s, size_t *ret_len);

/* Whether the head carries "Expect: 100-continue". */
bool request_head_expects_continue(const RequestHead *h, const char *buf);

/* Decodes the next raw body bytes of a tunnel PUT, BUF[0..SIZE), in place: the decoded bytes end up in one
 * piece, BUF[*RET_START..*RET_START + *RET_LEN), where the first of them was (only what follows a chunk
 * header moves). Returns 1 when the body ended (what follows it is not ours and was not decoded), 0 when
 * more is to come, -EBADMSG for a malformed body. */
int request_body_decode(RequestHead *h, char *buf, size_t size, size_t *ret_start, size_t *ret_len);
