/* SPDX-License-Identifier: MIT */
/* The downstream: every method but PUT, served by h2o. An authorised request gets a chunked 200 whose
 * body is the peer's frames, pulled from the host one buffer at a time with one h2o_send() in flight. */
#include <errno.h>

#include "http-server.h"

#define RESPONSE_HEADERS_MAX 16

typedef struct GetHandler {
        h2o_handler_t super;
        Server *server;
} GetHandler;

static void get_stream_send_iov(GetStream *g, h2o_iovec_t *bufs, size_t n) {
        Server *s = g->server;

        g->in_flight = true;
        g->sent_usec = server_now(s);
        /* Armed once: when it fires it waits out the rest of the period since the last send. */
        if (s->keepalive_usec > 0 && sd_event_source_get_enabled(g->keepalive, NULL) == 0) {
                (void) sd_event_source_set_time_relative(g->keepalive, s->keepalive_usec);
                (void) sd_event_source_set_enabled(g->keepalive, SD_EVENT_ONESHOT);
        }
        h2o_send(g->req, bufs, n, H2O_SEND_STATE_IN_PROGRESS);
}

static void get_stream_send(GetStream *g, const void *data, size_t len) {
        h2o_iovec_t buf = h2o_iovec_init(data, len);

        get_stream_send_iov(g, &buf, 1);
}

/* Takes what is queued: lent by the host where it can, else copied into g->buf. Returns the bytes, or a
 * negative error from the host. */
static ssize_t get_stream_take(GetStream *g, h2o_iovec_t *bufs, size_t *n_bufs) {
        Server *s = g->server;
        struct iovec iov[GET_IOV_MAX];
        size_t n_iov = ELEMENTSOF(iov);
        ssize_t n;

        if (!s->can_lend) {
                n = s->host->stream_pull(g->peer, g, g->buf, GET_BUF_SIZE);
                bufs[0] = h2o_iovec_init(g->buf, n > 0 ? (size_t) n : 0);
                *n_bufs = 1;
                return n;
        }
        n = s->host->stream_lend(g->peer, g, g->buf, GET_BUF_SIZE, iov, &n_iov);
        if (n <= 0)
                return n;
        g->lent = true;
        for (size_t i = 0; i < n_iov; i++)
                bufs[i] = h2o_iovec_init(iov[i].iov_base, iov[i].iov_len);
        *n_bufs = n_iov;
        return n;
}

/* Sends the final chunk now, or after the write in flight. G may be gone when this returns. */
void get_stream_end(GetStream *g, const char *reason) {
        if (g->ended)
                return;
        g->ended = true;
        g->end_reason = reason;
        if (!g->in_flight)
                h2o_send(g->req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* Breaks the stream off (shutdown, or the client hung up). An idle one gets a broken chunk, which
 * leaves a write in flight that fails or completes into a close (or it closes at once, without
 * chunking); a busy one ends after its write. */
void get_stream_abort(GetStream *g, const char *reason) {
        bool idle = !g->in_flight && !g->ended;

        if (!g->ended) {
                g->ended = true;
                g->end_reason = reason;
        }
        if (idle)
                h2o_send(g->req, NULL, 0, H2O_SEND_STATE_ERROR);
}

/* Pulls what is queued and sends it. FIRST sends the response head even with nothing queued: with a
 * keepalive frame then, since h2o 2.2.5 holds back a chunked head until there is body to send, and the
 * client needs the head (x-tun-conf) before anything else can flow. */
static void get_stream_pump(GetStream *g, bool first) {
        Server *s = g->server;
        h2o_iovec_t bufs[GET_IOV_MAX];
        size_t n_bufs = 0;
        ssize_t n;

        if (g->in_flight || g->ended)
                return;

        n = get_stream_take(g, bufs, &n_bufs);
        if (n == -ESTALE) {
                /* A newer GET took over: what was sent stays sent, the response ends cleanly. */
                get_stream_end(g, NULL);
                return;
        }
        if (n < 0) {
                server_log(s, LOG_ERR, (int) n, s->host->peer_name(g->peer),
                           "Failed to pull frames for %s: %m", g->conn ? g->conn->remote : "?");
                get_stream_end(g, "internal error");
                return;
        }
        if (n > 0)
                get_stream_send_iov(g, bufs, n_bufs);
        else if (first)
                get_stream_send(g, frame_keepalive, sizeof frame_keepalive);
}

static void on_get_proceed(h2o_generator_t *generator, h2o_req_t *req) {
        GetStream *g = H2O_STRUCT_FROM_MEMBER(GetStream, generator, generator);

        g->in_flight = false;
        if (g->lent) {
                /* Written: the frames leave the host's queue. */
                g->lent = false;
                g->server->host->stream_return(g->peer, g);
        }
        if (g->ended)
                h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        else
                get_stream_pump(g, false);
}

static int on_get_wake_defer(sd_event_source *es, void *userdata) {
        GetStream *g = userdata;
        Server *s = g->server;

        get_stream_pump(g, false);
        /* The write completes, and the next pull happens, in this turn of the loop. */
        server_run(s);
        return 0;
}

/* The host's wake: frames are queued, or this stream was superseded. Only schedule: we are inside host
 * code, possibly inside another stream's attach. */
static void on_get_wake(void *stream) {
        GetStream *g = stream;

        (void) sd_event_source_set_enabled(g->wake, SD_EVENT_ONESHOT);
}

static int on_get_keepalive(sd_event_source *es, uint64_t usec, void *userdata) {
        GetStream *g = userdata;
        Server *s = g->server;

        if (g->ended)
                return 0;
        if (g->in_flight) {
                /* Data is on its way already; look again a period later. */
                (void) sd_event_source_set_time_relative(g->keepalive, s->keepalive_usec);
                (void) sd_event_source_set_enabled(g->keepalive, SD_EVENT_ONESHOT);
                return 0;
        }
        if (server_now(s) < g->sent_usec + s->keepalive_usec) {
                /* Data went since the timer was set: wait out the period from then. */
                (void) sd_event_source_set_time(g->keepalive, g->sent_usec + s->keepalive_usec);
                (void) sd_event_source_set_enabled(g->keepalive, SD_EVENT_ONESHOT);
                return 0;
        }
        get_stream_send(g, frame_keepalive, sizeof frame_keepalive);
        server_kick(s);
        return 0;
}

/* h2o does not read while a response streams, so it would notice a client that went away only when a
 * write fails, a keepalive period later at worst. The kernel tells us at once. */
static int on_get_hangup(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        GetStream *g = userdata;
        Server *s = g->server;

        get_stream_abort(g, "connection closed by the client");
        server_kick(s);
        return 0;
}

/* h2o frees the request pool: the connection closed, or the response ended. */
static void get_stream_dispose(void *p) {
        GetStream *g = p;
        Server *s = g->server;

        if (g->attached)
                s->host->stream_detach(g->peer, g, g->ended ? g->end_reason : "connection closed");

        if (g->prev)
                g->prev->next = g->next;
        else
                s->gets = g->next;
        if (g->next)
                g->next->prev = g->prev;

        if (g->conn)
                g->conn->get = NULL;
        sd_event_source_disable_unref(g->wake);
        sd_event_source_disable_unref(g->keepalive);
        sd_event_source_disable_unref(g->hangup);
        free(g->buf);
}

static int get_respond(h2o_req_t *req, int status, const char *reason, const char *body) {
        req->res.status = status;
        req->res.reason = reason;
        req->res.content_length = strlen(body);
        h2o_send_inline(req, body, strlen(body));
        return 0;
}

static int get_reject(Server *s, Conn *c, h2o_req_t *req, const char *why) {
        if (ratelimit_allow(&s->reject_log))
                server_log(s, LOG_WARNING, 0, NULL, "Rejected %.*s from %s: %s",
                           (int) MIN(req->method.len, 16u), req->method.base, c->remote, why);
        return get_respond(req, 403, "Forbidden", "Forbidden");
}

static int get_stream_start(Server *s, Conn *c, h2o_req_t *req, TapotunPeer *peer) {
        TapotunHeader in[H2O_MAX_HEADERS], out[RESPONSE_HEADERS_MAX];
        size_t n_in = 0, n_out = ELEMENTSOF(out);
        GetStream *g;
        int r;

        for (size_t i = 0; i < req->headers.size && n_in < ELEMENTSOF(in); i++) {
                const h2o_header_t *h = req->headers.entries + i;

                in[n_in++] = (TapotunHeader) {
                        .name = h2o_strdup(&req->pool, h->name->base, h->name->len).base,
                        .value = h2o_strdup(&req->pool, h->value.base, h->value.len).base,
                };
        }
        r = s->host->peer_accept(peer, in, n_in, out, &n_out);
        if (r < 0) {
                server_log(s, LOG_ERR, r, s->host->peer_name(peer), "Failed to accept %.*s from %s: %m",
                           (int) MIN(req->method.len, 16u), req->method.base, c->remote);
                return get_respond(req, 500, "Internal Server Error", "Internal Server Error");
        }
        /* Copied now: the strings are the peer's only until its next call. */
        for (size_t i = 0; i < n_out; i++) {
                h2o_iovec_t name = h2o_strdup(&req->pool, out[i].name, SIZE_MAX);
                h2o_iovec_t value = h2o_strdup(&req->pool, out[i].value, SIZE_MAX);

                h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL,
                                      value.base, value.len);
        }

        if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
                return get_respond(req, 200, "OK", "");

        g = h2o_mem_alloc_shared(&req->pool, sizeof(GetStream), get_stream_dispose);
        *g = (GetStream) {
                .server = s,
                .conn = c,
                .req = req,
                .peer = peer,
                .generator = { .proceed = on_get_proceed },
                .next = s->gets,
        };
        if (s->gets)
                s->gets->prev = g;
        s->gets = g;
        c->get = g;

        g->buf = malloc(GET_BUF_SIZE);
        r = g->buf ? 0 : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_defer(s->host->event, &g->wake, on_get_wake_defer, g);
        if (r >= 0)
                r = sd_event_source_set_enabled(g->wake, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(s->host->event, &g->keepalive, CLOCK_MONOTONIC,
                                               s->keepalive_usec, 0, on_get_keepalive, g);
        if (r >= 0)
                r = sd_event_source_set_enabled(g->keepalive, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_io(s->host->event, &g->hangup, h2o_socket_get_fd(c->sock), EPOLLRDHUP,
                                    on_get_hangup, g);
        if (r >= 0)
                r = sd_event_source_set_enabled(g->hangup, SD_EVENT_ONESHOT);
        if (r >= 0)
                r = s->host->stream_attach(peer, TAPOTUN_STREAM_TX, g, on_get_wake, c->remote);
        if (r < 0) {
                server_log(s, LOG_ERR, r, s->host->peer_name(peer), "Failed to accept %.*s from %s: %m",
                           (int) MIN(req->method.len, 16u), req->method.base, c->remote);
                req->res.headers = (h2o_headers_t) {};
                return get_respond(req, 500, "Internal Server Error", "Internal Server Error");
        }
        g->attached = true;
        server_log(s, LOG_DEBUG, 0, s->host->peer_name(peer), "%.*s from %s",
                   (int) MIN(req->method.len, 16u), req->method.base, c->remote);

        req->res.status = 200;
        req->res.reason = "OK";
        h2o_start_response(req, &g->generator);
        get_stream_pump(g, true);
        return 0;
}

static int on_get_req(h2o_handler_t *self, h2o_req_t *req) {
        Server *s = ((GetHandler *) self)->server;
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        Conn *c = sock->on_close.data;
        TapotunPeer *peer;
        ssize_t i;
        int r;

        /* One request per connection: a later PUT must arrive on a fresh connection, to our reader. */
        req->http1_is_persistent = 0;

        i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-forwarded-for"), -1);
        if (i >= 0)
                conn_set_forwarded(c, req->headers.entries[i].value.base, req->headers.entries[i].value.len);

        i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1);
        if (i < 0)
                return get_reject(s, c, req, "missing x-api-key");
        r = s->host->peer_authenticate(s->tunnel, req->headers.entries[i].value.base,
                                       req->headers.entries[i].value.len, &peer);
        if (r == -EACCES)
                return get_reject(s, c, req, "unknown x-api-key");
        if (r < 0) {
                server_log(s, LOG_ERR, r, NULL, "Failed to authenticate a request from %s: %m", c->remote);
                return get_respond(req, 500, "Internal Server Error", "Internal Server Error");
        }
        return get_stream_start(s, c, req, peer);
}

void get_handler_register(Server *s, h2o_pathconf_t *pathconf) {
        GetHandler *h = (GetHandler *) h2o_create_handler(pathconf, sizeof(GetHandler));

        h->super.on_req = on_get_req;
        h->server = s;
}
