/* SPDX-License-Identifier: MIT */
/* The upstream: a PUT whose body (chunked or Content-Length) streams into the frame parser as it
 * arrives. request_body_decode() decodes it in place in the socket's input buffer, so no copy is kept. */
#include <errno.h>

#include "http-server.h"

static const char RESPONSE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char RESPONSE_200[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK";

typedef enum PutResult {
        PUT_MORE,   /* everything consumed: read on */
        PUT_PAUSED, /* the tunnel is congested: reading stopped until the wake */
        PUT_DONE,   /* answered or closed: the connection must not be touched */
} PutResult;

void put_detach(Conn *c, const char *reason) {
        if (!c->attached)
                return;
        c->attached = false;
        c->server->host->stream_detach(c->peer, c, reason);
}

static PutResult put_fail(Conn *c, const char *reason) {
        Server *s = c->server;

        server_log(s, LOG_WARNING, 0, s->host->peer_name(c->peer), "Closing PUT from %s: %s", c->remote,
                   reason);
        conn_close(c, reason);
        return PUT_DONE;
}

static PutResult put_finish(Conn *c) {
        Server *s = c->server;

        if (c->frames->have > 0)
                server_log(s, LOG_DEBUG, 0, s->host->peer_name(c->peer),
                           "PUT from %s ended inside a frame, dropped its %zu bytes", c->remote,
                           c->frames->have);
        conn_respond_close(c, RESPONSE_200);
        return PUT_DONE;
}

static void put_pause(Conn *c) {
        c->paused = true;
        h2o_socket_read_stop(c->sock);
        /* We stopped reading, not the client sending: no inactivity timeout while paused. */
        (void) conn_timer_set(c, 0);
}

/* Feeds the decoded body to the tunnel, then decodes what was read since. */
static PutResult put_process(Conn *c) {
        Server *s = c->server;
        h2o_buffer_t *in;
        int r;

        for (;;) {
                in = c->sock->input;
                while (c->body_fed < c->body_len) {
                        const uint8_t *data = (const uint8_t *) in->bytes + c->body_fed, *frame;
                        size_t size = c->body_len - c->body_fed, len;

                        r = frame_parser_next(c->frames, &data, &size, &frame, &len);
                        c->body_fed = c->body_len - size;
                        if (r < 0)
                                return put_fail(c, frame_error_to_string(c->frames->error));
                        if (r != FRAME_DATA)
                                continue;

                        r = s->host->stream_receive(c->peer, c, frame, len);
                        if (r == -EBADMSG)
                                return put_fail(c, "frame refused by the tunnel");
                        if (r < 0) {
                                server_log(s, LOG_ERR, r, s->host->peer_name(c->peer),
                                           "Failed to take a frame from %s: %m", c->remote);
                                conn_close(c, "internal error");
                                return PUT_DONE;
                        }
                        if (r > 0) {
                                put_pause(c);
                                return PUT_PAUSED;
                        }
                }
                if (c->body_len > 0) {
                        /* Fed to the last byte: the buffer held nothing else. */
                        in->size = 0;
                        c->body_len = c->body_fed = 0;
                }
                if (c->message_done)
                        return put_finish(c);
                if (in->size == 0)
                        return PUT_MORE;

                r = request_body_decode(&c->head, in->bytes, in->size, &c->body_fed, &c->body_len);
                if (r < 0)
                        return put_fail(c, request_head_error(&c->head));
                c->message_done = r > 0;
                /* Every raw byte is parsed; only the decoded body is left, up to its end. */
                c->body_len += c->body_fed;
                in->size = c->body_len;
        }
}

static void on_put_read(h2o_socket_t *sock, const char *err) {
        Conn *c = sock->data;

        if (err) {
                server_log(c->server, LOG_DEBUG, 0, c->server->host->peer_name(c->peer),
                           "PUT from %s ended before its body: %s", c->remote, err);
                conn_close(c, err);
                return;
        }
        /* Only noted: the inactivity timer moves its own deadline when it fires (on_conn_timer()), which
         * is cheaper than re-arming it on every read. */
        c->read_usec = server_now(c->server);
        (void) put_process(c);
}

static int on_put_wake_defer(sd_event_source *es, void *userdata) {
        Conn *c = userdata;
        Server *s = c->server;

        if (c->state == CONN_PUT && c->paused && put_process(c) == PUT_MORE) {
                c->paused = false;
                c->read_usec = server_now(s);
                (void) conn_timer_set(c, s->peer_timeout_usec);
                h2o_socket_read_start(c->sock, on_put_read);
        }
        server_kick(s);
        return 0;
}

/* The host's wake: the tunnel takes frames again. Called from inside host code, so only schedule. */
static void on_put_wake(void *stream) {
        Conn *c = stream;

        if (c->paused)
                (void) sd_event_source_set_enabled(c->wake, SD_EVENT_ONESHOT);
}

static size_t puts_of_peer(Server *s, TapotunPeer *p) {
        size_t n = 0;

        for (Conn *c = s->conns; c; c = c->next)
                if (c->state == CONN_PUT && c->peer == p)
                        n++;
        return n;
}

/* The head of a PUT is complete and authorised: attach it before reading a single body byte. */
void put_start(Conn *c, TapotunPeer *peer) {
        Server *s = c->server;
        int r;

        if (puts_of_peer(s, peer) >= s->max_puts) {
                if (ratelimit_allow(&s->reject_log))
                        server_log(s, LOG_WARNING, 0, s->host->peer_name(peer),
                                   "Rejected PUT from %s: already %u PUTs open (max_puts_per_client)",
                                   c->remote, s->max_puts);
                conn_respond_close(c, RESPONSE_429);
                return;
        }

        c->frames = malloc(sizeof(FrameParser));
        if (!c->frames) {
                server_log(s, LOG_ERR, ENOMEM, s->host->peer_name(peer), "Failed to accept PUT from %s: %m",
                           c->remote);
                conn_respond_close(c, RESPONSE_500);
                return;
        }
        frame_parser_reset(c->frames);

        r = sd_event_add_defer(s->host->event, &c->wake, on_put_wake_defer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->wake, SD_EVENT_OFF);
        if (r >= 0)
                r = s->host->stream_attach(peer, TAPOTUN_STREAM_RX, c, on_put_wake, c->remote);
        if (r < 0) {
                server_log(s, LOG_ERR, r, s->host->peer_name(peer), "Failed to accept PUT from %s: %m",
                           c->remote);
                conn_respond_close(c, RESPONSE_500);
                return;
        }
        c->peer = peer;
        c->attached = true;
        c->state = CONN_PUT;
        server_log(s, LOG_DEBUG, 0, s->host->peer_name(peer), "PUT from %s", c->remote);

        if (request_head_expects_continue(&c->head, c->sock->input->bytes))
                conn_write(c, RESPONSE_100, strlen(RESPONSE_100), false);

        /* The head is done with: the body starts at the front of the buffer, which gets room for big
         * reads. */
        h2o_buffer_consume(&c->sock->input, c->head.parsed);
        (void) h2o_buffer_reserve(&c->sock->input, PUT_READ_SIZE);

        c->read_usec = server_now(s);
        (void) conn_timer_set(c, s->peer_timeout_usec);
        h2o_socket_read_start(c->sock, on_put_read);
        (void) put_process(c);
}
