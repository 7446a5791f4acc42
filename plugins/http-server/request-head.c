/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "request-head.h"

static size_t span_end(const Span *s) {
        return s->off + s->len;
}

static bool span_is(const RequestHead *h, const Span *s, const char *name) {
        size_t n = strlen(name);

        return s->len == n && strncasecmp(h->base + s->off, name, n) == 0;
}

static void head_header_done(RequestHead *h) {
        Span *dst = NULL;

        if (span_is(h, &h->field, "x-api-key"))
                dst = &h->api_key;
        else if (span_is(h, &h->field, "x-forwarded-for"))
                dst = &h->forwarded;
        else if (span_is(h, &h->field, "expect"))
                dst = &h->expect;
        /* The first of repeated headers counts, as for h2o, which serves what we hand off. */
        if (dst && !dst->set) {
                *dst = h->value;
                dst->set = true;
        }
}

/* A header arrives in pieces only where a read ended, so each piece continues the previous one. */
static int span_extend(RequestHead *h, Span *s, const char *at, size_t len) {
        size_t off = (size_t) (at - h->base);

        if (off != span_end(s))
                return -EBADMSG;
        s->len += len;
        return 0;
}

static int on_head_header_field(http_parser *p, const char *at, size_t len) {
        RequestHead *h = p->data;

        if (h->part == HEAD_PART_FIELD)
                return span_extend(h, &h->field, at, len) < 0;
        if (h->part == HEAD_PART_VALUE)
                head_header_done(h);
        h->part = HEAD_PART_FIELD;
        h->field = (Span) { .off = (size_t) (at - h->base), .len = len };
        return 0;
}

static int on_head_header_value(http_parser *p, const char *at, size_t len) {
        RequestHead *h = p->data;

        if (h->part == HEAD_PART_VALUE) {
                /* Anything else is a value folded onto a second line (obs-fold): RFC 7230 section 3.2.4
                 * lets a server refuse it, and h2o, which parses handed-off heads again, reads it
                 * differently from this parser. */
                if (span_extend(h, &h->value, at, len) < 0) {
                        h->folded = true;
                        return 1;
                }
                return 0;
        }
        h->part = HEAD_PART_VALUE;
        h->value = (Span) { .off = (size_t) (at - h->base), .len = len };
        return 0;
}

static int on_head_complete(http_parser *p) {
        RequestHead *h = p->data;

        if (h->part == HEAD_PART_VALUE)
                head_header_done(h);
        h->part = HEAD_PART_NONE;
        h->head_done = true;
        /* Stop here: what follows the head is decided outside the parser. */
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings head_settings = {
        .on_header_field = on_head_header_field,
        .on_header_value = on_head_header_value,
        .on_headers_complete = on_head_complete,
};

void request_head_init(RequestHead *h) {
        *h = (RequestHead) {};
        http_parser_init(&h->parser, HTTP_REQUEST);
        h->parser.data = h;
}

int request_head_feed(RequestHead *h, const char *buf, size_t size) {
        size_t limit = size < HEAD_MAX ? size : HEAD_MAX;
        enum http_errno e;

        if (h->head_done)
                return -EINVAL;

        h->base = buf;
        if (limit > h->parsed)
                h->parsed += http_parser_execute(&h->parser, &head_settings, buf + h->parsed,
                                                 limit - h->parsed);
        h->base = NULL;

        e = HTTP_PARSER_ERRNO(&h->parser);
        if (e == HPE_PAUSED && h->head_done) {
                http_parser_pause(&h->parser, 0);
                if (h->parser.method != HTTP_PUT)
                        return HEAD_HAND_OFF;
                /* Our reader streams a body; it speaks no other protocol. */
                return h->parser.upgrade ? -EPROTO : HEAD_TUNNEL;
        }
        if (e != HPE_OK)
                return -EBADMSG;
        if (h->parsed >= HEAD_MAX)
                return -E2BIG;
        return HEAD_MORE;
}

const char *request_head_error(const RequestHead *h) {
        if (h->folded)
                return "header value folded onto a second line";
        return http_errno_description(HTTP_PARSER_ERRNO(&h->parser));
}

const char *request_head_value(const RequestHead *h, const char *buf, const Span *s, size_t *ret_len) {
        const char *v;
        size_t len;

        if (!s->set)
                return NULL;
        v = buf + s->off;
        len = s->len;
        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
        *ret_len = len;
        return v;
}

bool request_head_expects_continue(const RequestHead *h, const char *buf) {
        const char *v;
        size_t len;

        v = request_head_value(h, buf, &h->expect, &len);
        return v && len == strlen("100-continue") && strncasecmp(v, "100-continue", len) == 0;
}

/* The first decoded bytes stay where they are; later ones move down to follow them, to where raw bytes
 * they came after have been: chunk framing only ever shrinks the stream, so nothing is overwritten before
 * it is parsed. */
static int on_body(http_parser *p, const char *at, size_t len) {
        RequestHead *h = p->data;

        if (!h->out)
                h->out = (char *) at;
        else if (at != h->out + h->out_len)
                memmove(h->out + h->out_len, at, len);
        h->out_len += len;
        return 0;
}

static int on_message_complete(http_parser *p) {
        RequestHead *h = p->data;

        h->body_done = true;
        /* Whatever a client pipelines after its upload is not ours to read. */
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings body_settings = {
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

int request_body_decode(RequestHead *h, char *buf, size_t size, size_t *ret_start, size_t *ret_len) {
        enum http_errno e;
        size_t start;

        if (!h->head_done)
                return -EINVAL;

        if (h->body_done) {
                *ret_start = *ret_len = 0;
                return 1;
        }

        h->out = NULL;
        h->out_len = 0;
        (void) http_parser_execute(&h->parser, &body_settings, buf, size);
        start = h->out ? (size_t) (h->out - buf) : 0;
        h->out = NULL;

        e = HTTP_PARSER_ERRNO(&h->parser);
        if (e != HPE_OK && !(e == HPE_PAUSED && h->body_done))
                return -EBADMSG;
        *ret_start = start;
        *ret_len = h->out_len;
        return h->body_done;
}
