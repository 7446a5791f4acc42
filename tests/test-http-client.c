/* SPDX-License-Identifier: MIT */
/* The http-client plugin, loaded for real through the mock host, against a fake tapotun server on
 * loopback: a thread per connection, blocking I/O, scripted per test, recording what it sees. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "mock-host.h"

#define GET_HEAD                                                                                         \
        "HTTP/1.1 200 OK\r\n"                                                                            \
        "x-tun-conf: 3AUYCgoAAg==\r\n"                                                                   \
        "x-tun-offload: csum,tso4,tso6,ecn\r\n"                                                          \
        "Transfer-Encoding: chunked\r\n"                                                                 \
        "\r\n"
#define FORBIDDEN "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nForbidden"

/* ---------------------------------------------------------------------------------------------- */
/* The fake server. */

typedef struct FakeServer FakeServer;

typedef struct Request {
        char *method;
        char *path;
        char *version;
        GHashTable *headers; /* lowercase name -> value */
        gint64 at;           /* g_get_monotonic_time() when the head was in */
        unsigned index;      /* 0 for the first request of its method, ... */
} Request;

typedef struct Conn {
        FakeServer *server;
        int fd;
        GThread *thread;
        GByteArray *in; /* received, not consumed yet */
} Conn;

/* Serves one request; returns whether the connection may carry another. */
typedef bool (*Handler)(Conn *c, Request *req);

struct FakeServer {
        int listen_fd;
        uint16_t port;
        GThread *accept_thread;
        Handler on_get, on_put;
        void *data;       /* the test's script, read-only while the server runs */
        bool slow_reader; /* PUT bodies are read in bursts */

        GMutex lock;
        GCond cond; /* signalled on stop */
        bool stopping;
        GPtrArray *conns;       /* Conn* */
        GPtrArray *requests;    /* Request* */
        unsigned n_get, n_put;
        GPtrArray *put_frames;  /* GBytes: frame bodies decoded from the PUT bodies, in order */
        GArray *keepalives;     /* gint64: arrival of each 00 00 on a PUT */
        unsigned put_errors;    /* invalid framing on a PUT */
        unsigned get_closes;    /* GET connections the client closed */
        gint64 get_closed_at;
        unsigned put_closes;    /* PUT connections the client closed mid-body */
};

static void request_free(Request *r) {
        g_free(r->method);
        g_free(r->path);
        g_free(r->version);
        g_hash_table_unref(r->headers);
        g_free(r);
}

static bool server_stopping(FakeServer *s) {
        bool b;

        g_mutex_lock(&s->lock);
        b = s->stopping;
        g_mutex_unlock(&s->lock);
        return b;
}

/* Sleeps MS, or less when the server stops. */
static void server_sleep(FakeServer *s, unsigned ms) {
        gint64 end = g_get_monotonic_time() + (gint64) ms * 1000;

        g_mutex_lock(&s->lock);
        while (!s->stopping && g_cond_wait_until(&s->cond, &s->lock, end))
                ;
        g_mutex_unlock(&s->lock);
}

static bool conn_fill(Conn *c) {
        uint8_t buf[65536];
        ssize_t n;

        n = recv(c->fd, buf, sizeof buf, 0);
        if (n <= 0)
                return false;
        g_byte_array_append(c->in, buf, (guint) n);
        return true;
}

static char *conn_read_line(Conn *c) {
        for (;;) {
                const uint8_t *crlf = c->in->len > 0 ? memmem(c->in->data, c->in->len, "\r\n", 2) : NULL;

                if (crlf) {
                        size_t k = crlf - c->in->data;
                        char *line = g_strndup((const char *) c->in->data, k);

                        g_byte_array_remove_range(c->in, 0, (guint) k + 2);
                        return line;
                }
                if (c->in->len > 65536 || !conn_fill(c))
                        return NULL;
        }
}

static bool conn_read_exact(Conn *c, size_t n, GByteArray *out) {
        while (c->in->len < n)
                if (!conn_fill(c))
                        return false;
        g_byte_array_append(out, c->in->data, (guint) n);
        g_byte_array_remove_range(c->in, 0, (guint) n);
        return true;
}

static bool conn_send(Conn *c, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                p += n;
                len -= (size_t) n;
        }
        return true;
}

static bool conn_send_str(Conn *c, const char *s) {
        return conn_send(c, s, strlen(s));
}

/* Drops the connection with a reset, as a server that dies does. */
static void conn_reset(Conn *c) {
        FakeServer *s = c->server;

        (void) setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &(struct linger) { .l_onoff = 1 }, sizeof(struct linger));
        g_mutex_lock(&s->lock);
        close(c->fd);
        c->fd = -1;
        g_mutex_unlock(&s->lock);
}

/* Blocks until the client closes the connection (or the server stops); true when the client did. */
static bool conn_wait_close(Conn *c) {
        while (conn_fill(c))
                g_byte_array_set_size(c->in, 0);
        return !server_stopping(c->server);
}

static Request *conn_read_request(Conn *c) {
        g_autofree char *line = conn_read_line(c);
        g_auto(GStrv) parts = NULL;
        Request *r;

        if (!line)
                return NULL;
        parts = g_strsplit(line, " ", 3);
        if (g_strv_length(parts) != 3)
                return NULL;

        r = g_new0(Request, 1);
        r->method = g_strdup(parts[0]);
        r->path = g_strdup(parts[1]);
        r->version = g_strdup(parts[2]);
        r->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        for (;;) {
                g_autofree char *h = conn_read_line(c);
                const char *colon;

                if (!h) {
                        request_free(r);
                        return NULL;
                }
                if (!*h)
                        break;
                colon = strchr(h, ':');
                if (!colon)
                        continue;
                g_hash_table_replace(r->headers, g_ascii_strdown(h, colon - h), g_strstrip(g_strdup(colon + 1)));
        }
        r->at = g_get_monotonic_time();
        return r;
}

static gpointer conn_main(gpointer userdata) {
        Conn *c = userdata;
        FakeServer *s = c->server;

        for (;;) {
                Request *r = conn_read_request(c);
                Handler h = NULL;

                if (!r)
                        break;
                g_mutex_lock(&s->lock);
                if (g_str_equal(r->method, "GET")) {
                        r->index = s->n_get++;
                        h = s->on_get;
                } else if (g_str_equal(r->method, "PUT")) {
                        r->index = s->n_put++;
                        h = s->on_put;
                }
                g_ptr_array_add(s->requests, r);
                g_mutex_unlock(&s->lock);

                if (!h || !h(c, r))
                        break;
        }
        /* The client sees the end of the connection now, the fd is closed with the server. */
        if (c->fd >= 0)
                shutdown(c->fd, SHUT_RDWR);
        return NULL;
}

static gpointer accept_main(gpointer userdata) {
        FakeServer *s = userdata;

        for (;;) {
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                Conn *c;

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL;
                }
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));

                c = g_new0(Conn, 1);
                c->server = s;
                c->fd = fd;
                c->in = g_byte_array_new();
                g_mutex_lock(&s->lock);
                if (s->stopping) {
                        g_mutex_unlock(&s->lock);
                        close(fd);
                        g_byte_array_unref(c->in);
                        g_free(c);
                        return NULL;
                }
                c->thread = g_thread_new("fake-conn", conn_main, c);
                g_ptr_array_add(s->conns, c);
                g_mutex_unlock(&s->lock);
        }
}

static FakeServer *server_new(Handler on_get, Handler on_put, void *data, bool slow_reader) {
        FakeServer *s = g_new0(FakeServer, 1);
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof a;

        s->on_get = on_get;
        s->on_put = on_put;
        s->data = data;
        g_mutex_init(&s->lock);
        g_cond_init(&s->cond);
        s->conns = g_ptr_array_new();
        s->requests = g_ptr_array_new_with_free_func((GDestroyNotify) request_free);
        s->put_frames = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        s->keepalives = g_array_new(false, false, sizeof(gint64));

        s->slow_reader = slow_reader;
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(s->listen_fd, >=, 0);
        /* A small window (inherited by accepted sockets) makes a slow reader felt at once. */
        if (slow_reader)
                g_assert_cmpint(setsockopt(s->listen_fd, SOL_SOCKET, SO_RCVBUF, &(int) { 16384 }, sizeof(int)), ==, 0);
        g_assert_cmpint(bind(s->listen_fd, (struct sockaddr *) &a, sizeof a), ==, 0);
        g_assert_cmpint(listen(s->listen_fd, 16), ==, 0);
        g_assert_cmpint(getsockname(s->listen_fd, (struct sockaddr *) &a, &len), ==, 0);
        s->port = ntohs(a.sin_port);
        s->accept_thread = g_thread_new("fake-accept", accept_main, s);
        return s;
}

static void server_free(FakeServer *s) {
        g_mutex_lock(&s->lock);
        s->stopping = true;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);

        shutdown(s->listen_fd, SHUT_RDWR);
        g_thread_join(s->accept_thread);
        close(s->listen_fd);

        /* No new connections from here on. */
        g_mutex_lock(&s->lock);
        for (guint i = 0; i < s->conns->len; i++) {
                Conn *c = g_ptr_array_index(s->conns, i);

                if (c->fd >= 0)
                        shutdown(c->fd, SHUT_RDWR);
        }
        g_mutex_unlock(&s->lock);
        for (guint i = 0; i < s->conns->len; i++) {
                Conn *c = g_ptr_array_index(s->conns, i);

                g_thread_join(c->thread);
                if (c->fd >= 0)
                        close(c->fd);
                g_byte_array_unref(c->in);
                g_free(c);
        }
        g_ptr_array_unref(s->conns);
        g_ptr_array_unref(s->requests);
        g_ptr_array_unref(s->put_frames);
        g_array_unref(s->keepalives);
        g_mutex_clear(&s->lock);
        g_cond_clear(&s->cond);
        g_free(s);
}

/* Takes the complete frames off the front of PENDING; false on a length no sender may write. */
static bool server_take_put_frames(FakeServer *s, GByteArray *pending) {
        bool ok = true;

        g_mutex_lock(&s->lock);
        while (pending->len >= 2) {
                size_t len = pending->data[0] | pending->data[1] << 8;

                if (len == 0) {
                        gint64 now = g_get_monotonic_time();

                        g_array_append_val(s->keepalives, now);
                        g_byte_array_remove_range(pending, 0, 2);
                        continue;
                }
                if (len < 20) {
                        s->put_errors++;
                        ok = false;
                        break;
                }
                if (pending->len < 2 + 12 + len)
                        break;
                g_ptr_array_add(s->put_frames, g_bytes_new(pending->data + 2, 12 + len));
                g_byte_array_remove_range(pending, 0, (guint) (2 + 12 + len));
        }
        g_mutex_unlock(&s->lock);
        return ok;
}

/* The tapotun server's PUT: 100 Continue when asked, a chunked body of frames, 200 OK at its end. With
 * DROP_AFTER, the connection drops once that many body bytes are in, as when a server dies. */
static bool put_serve(Conn *c, Request *req, size_t drop_after) {
        FakeServer *s = c->server;
        g_autoptr(GByteArray) pending = g_byte_array_new();
        const char *expect = g_hash_table_lookup(req->headers, "expect");
        size_t body = 0;

        if (expect && g_ascii_strcasecmp(expect, "100-continue") == 0 &&
            !conn_send_str(c, "HTTP/1.1 100 Continue\r\n\r\n"))
                return false;

        for (size_t total = 0;;) {
                g_autofree char *size_line = conn_read_line(c);
                g_autofree char *crlf = NULL;
                guint64 n;

                if (!size_line)
                        goto aborted;
                n = g_ascii_strtoull(size_line, NULL, 16);
                if (n == 0)
                        break;
                if (!conn_read_exact(c, n, pending))
                        goto aborted;
                crlf = conn_read_line(c);
                if (!crlf || *crlf)
                        goto aborted;
                if (!server_take_put_frames(s, pending))
                        return false;

                body += n;
                if (drop_after > 0 && body >= drop_after) {
                        conn_reset(c);
                        return false;
                }
                total += n;
                if (s->slow_reader && total >= 128 * 1024) {
                        /* Let the client's socket fill up, so its sending blocks mid-body. */
                        server_sleep(s, 200);
                        total = 0;
                }
        }
        for (;;) { /* trailers */
                g_autofree char *line = conn_read_line(c);

                if (!line)
                        goto aborted;
                if (!*line)
                        break;
        }
        if (pending->len > 0) {
                /* A clean end inside a frame: the client split a frame across requests. */
                g_mutex_lock(&s->lock);
                s->put_errors++;
                g_mutex_unlock(&s->lock);
        }
        return conn_send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");

aborted:
        g_mutex_lock(&s->lock);
        if (!s->stopping)
                s->put_closes++;
        g_mutex_unlock(&s->lock);
        return false;
}

static bool put_accept(Conn *c, Request *req) {
        return put_serve(c, req, 0);
}

static bool put_drop_first(Conn *c, Request *req) {
        return put_serve(c, req, req->index == 0 ? 100 * 1024 : 0);
}

static bool refuse(Conn *c, Request *req) {
        conn_send_str(c, FORBIDDEN);
        return false;
}

/* Accepts and then says nothing. */
static bool stall(Conn *c, Request *req) {
        conn_wait_close(c);
        return false;
}

/* Holds a GET open until the client closes it, and counts that. */
static bool get_hold(Conn *c) {
        FakeServer *s = c->server;

        if (conn_wait_close(c)) {
                g_mutex_lock(&s->lock);
                s->get_closes++;
                s->get_closed_at = g_get_monotonic_time();
                g_mutex_unlock(&s->lock);
        }
        return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* Frames and chunked bodies. */

/* Frame bodies of varied sizes: mostly small packets, some large GSO-sized ones, one of maximum size. */
static GPtrArray *frames_new(unsigned n, unsigned seed) {
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);

        for (unsigned i = 0; i < n; i++) {
                size_t payload;

                if (i == n / 2)
                        payload = 65535 - 28;
                else if (i % 23 == 5)
                        payload = 20000 + (i * 7919u + seed) % 45000;
                else
                        payload = (i * 131u + seed) % 1473;
                g_ptr_array_add(a, mock_make_frame(payload, seed + i));
        }
        return a;
}

static void blob_append_frame(GByteArray *b, GBytes *frame) {
        gsize len;
        const uint8_t *d = g_bytes_get_data(frame, &len);
        uint8_t hdr[2] = { (len - 12) & 0xff, (len - 12) >> 8 };

        g_byte_array_append(b, hdr, 2);
        g_byte_array_append(b, d, (guint) len);
}

/* Frames [FROM, TO) as a byte stream, with a keepalive after every tenth frame. */
static GByteArray *blob_new(GPtrArray *frames, guint from, guint to) {
        GByteArray *b = g_byte_array_new();

        for (guint i = from; i < to; i++) {
                blob_append_frame(b, g_ptr_array_index(frames, i));
                if (i % 10 == 9)
                        g_byte_array_append(b, (const uint8_t[]) { 0, 0 }, 2);
        }
        return b;
}

/* Chunked encoding of DATA in chunks of 1..MAX_CHUNK bytes; the first chunk is 1 byte, so the first
 * length field is split. */
static GByteArray *chunked_new(const uint8_t *data, size_t len, size_t max_chunk, guint32 seed) {
        g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
        GByteArray *out = g_byte_array_new();
        size_t off = 0;

        while (off < len) {
                size_t n = off == 0 ? 1 : (size_t) g_rand_int_range(rand, 1, (gint32) max_chunk + 1);
                char head[32];

                n = MIN(n, len - off);
                snprintf(head, sizeof head, "%zx\r\n", n);
                g_byte_array_append(out, (const uint8_t *) head, (guint) strlen(head));
                g_byte_array_append(out, data + off, (guint) n);
                g_byte_array_append(out, (const uint8_t *) "\r\n", 2);
                off += n;
        }
        return out;
}

static bool conn_send_chunked(Conn *c, const uint8_t *data, size_t len, size_t max_chunk, guint32 seed) {
        g_autoptr(GByteArray) body = chunked_new(data, len, max_chunk, seed);

        return conn_send(c, body->data, body->len);
}

/* ---------------------------------------------------------------------------------------------- */
/* The client under test. */

typedef struct Fixture {
        sd_event *event;
        TapotunIfaceConfig cfg;
        char url[64];
        MockHost *mock;
        TapotunPeer *peer;
        const TapotunPlugin *plugin;
        const TapotunTransportOps *ops;
        void *instance;
        FakeServer *server;

        /* The script, read by the server's threads. */
        GPtrArray *frames;
        size_t max_chunk;
        unsigned hold_ms;
        const uint8_t *bad;
        size_t bad_len;

        unsigned want; /* for the wait conditions */
} Fixture;

static void fixture_init_full(Fixture *f, Handler on_get, Handler on_put, bool slow_reader) {
        *f = (Fixture) {
                .max_chunk = 3000,
        };
        g_assert_cmpint(sd_event_new(&f->event), >=, 0);
        f->server = server_new(on_get, on_put, f, slow_reader);
        snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u/tun", f->server->port);

        g_strlcpy(f->cfg.name, "tt0", sizeof f->cfg.name);
        f->cfg.mode = TAPOTUN_MODE_CLIENT;
        f->cfg.server = f->url;
        f->cfg.token = (char *) "test";
        f->cfg.keepalive_usec = 2 * G_USEC_PER_SEC;
        f->cfg.reconnect_min_usec = 200 * 1000;
        f->cfg.reconnect_max_usec = 2 * G_USEC_PER_SEC;
        f->cfg.stall_timeout_usec = 5 * G_USEC_PER_SEC;

        f->mock = mock_host_new(f->event, &f->cfg);
        f->peer = mock_host_peer(f->mock, 0);
        f->plugin = mock_load_plugin("http-client");
        g_assert_nonnull(f->plugin);
        g_assert_cmpuint(f->plugin->abi_major, ==, TAPOTUN_PLUGIN_ABI_MAJOR);
        g_assert_cmpint(f->plugin->kind, ==, TAPOTUN_PLUGIN_CLIENT_TRANSPORT);
        g_assert_cmpint(f->plugin->init(&f->mock->host), ==, 0);
        f->ops = f->plugin->ops;
}

static void fixture_init(Fixture *f, Handler on_get, Handler on_put) {
        fixture_init_full(f, on_get, on_put, false);
}

static void fixture_start(Fixture *f) {
        g_assert_cmpint(f->ops->instance_new(&f->mock->host, &f->mock->tunnel, &f->cfg, &f->instance), ==, 0);
}

static void fixture_done(Fixture *f) {
        f->ops->instance_free(f->instance);
        /* Freeing the instance ends its streams. */
        g_assert_null(f->peer->tx_stream);
        g_assert_cmpuint(f->peer->rx_streams->len, ==, 0);
        server_free(f->server);
        f->plugin->done();
        mock_host_free(f->mock);
        if (f->frames)
                g_ptr_array_unref(f->frames);
        sd_event_unref(f->event);
}

static Fixture *fixture_of(Conn *c) {
        return c->server->data;
}

static bool never(void *userdata) {
        return false;
}

static void run_for(Fixture *f, unsigned ms) {
        mock_run_until(f->event, never, NULL, ms);
}

static unsigned server_get_count(FakeServer *s, unsigned *field) {
        unsigned v;

        g_mutex_lock(&s->lock);
        v = *field;
        g_mutex_unlock(&s->lock);
        return v;
}

static bool cond_gets(void *userdata) {
        Fixture *f = userdata;
        return server_get_count(f->server, &f->server->n_get) >= f->want;
}

static bool cond_puts(void *userdata) {
        Fixture *f = userdata;
        return server_get_count(f->server, &f->server->n_put) >= f->want;
}

static bool cond_received(void *userdata) {
        Fixture *f = userdata;
        return f->peer->received->len >= f->want;
}

static bool cond_put_frames(void *userdata) {
        Fixture *f = userdata;
        bool b;

        g_mutex_lock(&f->server->lock);
        b = f->server->put_frames->len >= f->want;
        g_mutex_unlock(&f->server->lock);
        return b;
}

static bool cond_keepalives(void *userdata) {
        Fixture *f = userdata;
        bool b;

        g_mutex_lock(&f->server->lock);
        b = f->server->keepalives->len >= f->want;
        g_mutex_unlock(&f->server->lock);
        return b;
}

static bool cond_get_closes(void *userdata) {
        Fixture *f = userdata;
        return server_get_count(f->server, &f->server->get_closes) >= f->want;
}

static bool cond_tx_attached(void *userdata) {
        Fixture *f = userdata;
        return f->peer->tx_stream != NULL;
}

static void wait_for(Fixture *f, bool (*cond)(void *), unsigned want, unsigned timeout_ms) {
        f->want = want;
        g_assert_true(mock_run_until(f->event, cond, f, timeout_ms));
}

/* The Nth request of METHOD; the server must have seen it. */
static Request *server_request(FakeServer *s, const char *method, unsigned n) {
        Request *found = NULL;

        g_mutex_lock(&s->lock);
        for (guint i = 0; i < s->requests->len && !found; i++) {
                Request *r = g_ptr_array_index(s->requests, i);

                if (g_str_equal(r->method, method) && r->index == n)
                        found = r;
        }
        g_mutex_unlock(&s->lock);
        g_assert_nonnull(found);
        return found;
}

/* The peer received exactly these frames of F->frames, in this order. */
static void assert_received(Fixture *f, const unsigned *idx, size_t n) {
        g_assert_cmpuint(f->peer->received->len, ==, n);
        for (size_t i = 0; i < n; i++) {
                GBytes *want = g_ptr_array_index(f->frames, idx[i]);
                GBytes *got = g_ptr_array_index(f->peer->received, i);

                if (!g_bytes_equal(want, got))
                        g_error("received frame %zu differs from sent frame %u (%zu vs %zu bytes)", i, idx[i],
                                g_bytes_get_size(got), g_bytes_get_size(want));
        }
}

static void assert_received_range(Fixture *f, unsigned from, unsigned to) {
        g_autofree unsigned *idx = g_new(unsigned, to - from + 1);

        for (unsigned i = from; i < to; i++)
                idx[i - from] = i;
        assert_received(f, idx, to - from);
}

/* ---------------------------------------------------------------------------------------------- */
/* GET handlers. */

/* 200 with the tunnel configuration, all of F->frames, then held open. */
static bool get_frames(Conn *c, Request *req) {
        Fixture *f = fixture_of(c);
        g_autoptr(GByteArray) blob = NULL;

        if (!conn_send_str(c, GET_HEAD))
                return false;
        if (f->frames) {
                blob = blob_new(f->frames, 0, f->frames->len);
                if (!conn_send_chunked(c, blob->data, blob->len, f->max_chunk, req->index + 1))
                        return false;
        }
        return get_hold(c);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests. */

static void test_request_headers(void) {
        Fixture f;
        Request *get, *put;

        fixture_init(&f, get_frames, put_accept);
        fixture_start(&f);

        wait_for(&f, cond_gets, 1, 5000);
        wait_for(&f, cond_puts, 1, 5000);
        get = server_request(f.server, "GET", 0);
        put = server_request(f.server, "PUT", 0);

        for (Request *r = get; r; r = r == get ? put : NULL) {
                g_assert_cmpstr(r->path, ==, "/tun");
                g_assert_cmpstr(r->version, ==, "HTTP/1.1");
                g_assert_cmpstr(g_hash_table_lookup(r->headers, "x-api-key"), ==, "test");
                g_assert_cmpstr(g_hash_table_lookup(r->headers, "x-tun-offload"), ==, "csum,tso4,tso6,ecn,uso4,uso6");
                /* Frames do not compress; a decoder would only add latency. */
                g_assert_null(g_hash_table_lookup(r->headers, "accept-encoding"));
        }
        g_assert_null(g_hash_table_lookup(get->headers, "transfer-encoding"));
        g_assert_cmpstr(g_hash_table_lookup(put->headers, "transfer-encoding"), ==, "chunked");
        g_assert_cmpstr(g_hash_table_lookup(put->headers, "expect"), ==, "100-continue");

        /* The GET's 200 configures the TUN once, with the server's parameters. */
        g_assert_true(mock_run_until(f.event, cond_tx_attached, &f, 5000));
        run_for(&f, 300);
        g_assert_cmpuint(f.peer->n_configures, ==, 1);
        g_assert_cmpstr(f.peer->configured_conf, ==, "3AUYCgoAAg==");
        g_assert_cmpstr(f.peer->offload_request, ==, "csum,tso4,tso6,ecn");
        g_assert_cmpuint(f.peer->rx_streams->len, ==, 1);
        g_assert_nonnull(f.peer->tx_stream);
        g_assert_cmpuint(f.peer->n_connected, ==, 2);
        g_assert_cmpuint(f.peer->n_disconnected, ==, 0);
        g_assert_true(g_str_has_prefix(f.peer->last_remote, "127.0.0.1:"));

        fixture_done(&f);
}

typedef struct SplitCase {
        const char *name;
        unsigned n_frames;
        size_t max_chunk;
} SplitCase;

static const SplitCase split_cases[] = {
        { "bytewise", 40, 1 },
        { "small", 120, 7 },
        { "mixed", 300, 3000 },
        { "large", 300, 200000 },
};

static void test_get_frames(gconstpointer data) {
        const SplitCase *sc = data;
        Fixture f;

        fixture_init(&f, get_frames, put_accept);
        f.frames = frames_new(sc->n_frames, 7);
        f.max_chunk = sc->max_chunk;
        fixture_start(&f);

        wait_for(&f, cond_received, sc->n_frames, 20000);
        run_for(&f, 100);
        assert_received_range(&f, 0, sc->n_frames);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_get), ==, 1);

        fixture_done(&f);
}

typedef struct PutCase {
        const char *name;
        unsigned n_frames;
        bool slow_reader;
        uint64_t keepalive_usec;
} PutCase;

static const PutCase put_cases[] = {
        { "fast", 2000, false, 2 * G_USEC_PER_SEC },
        /* Sending blocks mid-frame for longer than the keepalive interval: still no 00 00 inside a
         * frame. */
        { "slow-reader", 300, true, 50 * 1000 },
};

static void test_put_frames(gconstpointer data) {
        const PutCase *pc = data;
        g_autoptr(GPtrArray) sent = frames_new(pc->n_frames, 11);
        guint first = MIN(500u, pc->n_frames / 4);
        Fixture f;

        fixture_init_full(&f, get_frames, put_accept, pc->slow_reader);
        f.cfg.keepalive_usec = pc->keepalive_usec;
        /* Some frames wait before the stream exists, the rest are queued while it runs. */
        for (guint i = 0; i < first; i++)
                mock_peer_queue(f.peer, g_bytes_get_data(g_ptr_array_index(sent, i), NULL),
                                g_bytes_get_size(g_ptr_array_index(sent, i)));
        fixture_start(&f);
        g_assert_true(mock_run_until(f.event, cond_tx_attached, &f, 5000));
        for (guint i = first; i < sent->len; i++) {
                mock_peer_queue(f.peer, g_bytes_get_data(g_ptr_array_index(sent, i), NULL),
                                g_bytes_get_size(g_ptr_array_index(sent, i)));
                if (i % 100 == 0)
                        run_for(&f, 5);
        }

        wait_for(&f, cond_put_frames, sent->len, 20000);
        run_for(&f, 100);
        g_mutex_lock(&f.server->lock);
        g_assert_cmpuint(f.server->put_frames->len, ==, sent->len);
        for (guint i = 0; i < sent->len; i++)
                if (!g_bytes_equal(g_ptr_array_index(sent, i), g_ptr_array_index(f.server->put_frames, i)))
                        g_error("PUT frame %u differs from the queued one", i);
        g_assert_cmpuint(f.server->put_errors, ==, 0);
        g_mutex_unlock(&f.server->lock);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_put), ==, 1);

        fixture_done(&f);
}

static bool cond_last_put_frame(void *userdata) {
        Fixture *f = userdata;
        GBytes *last = g_ptr_array_index(f->frames, f->frames->len - 1);
        bool b;

        g_mutex_lock(&f->server->lock);
        b = f->server->put_frames->len > 0 &&
                g_bytes_equal(g_ptr_array_index(f->server->put_frames, f->server->put_frames->len - 1), last);
        g_mutex_unlock(&f->server->lock);
        return b;
}

static void test_put_server_drops(void) {
        GPtrArray *sent;
        guint j = 0;
        Fixture f;

        fixture_init(&f, get_frames, put_drop_first);
        f.frames = sent = frames_new(450, 23);
        for (guint i = 0; i < 400; i++)
                mock_peer_queue(f.peer, g_bytes_get_data(g_ptr_array_index(sent, i), NULL),
                                g_bytes_get_size(g_ptr_array_index(sent, i)));
        fixture_start(&f);

        /* The first PUT drops after 100 KiB; more frames follow on the second. */
        wait_for(&f, cond_puts, 2, 10000);
        g_assert_true(mock_run_until(f.event, cond_tx_attached, &f, 5000));
        for (guint i = 400; i < sent->len; i++)
                mock_peer_queue(f.peer, g_bytes_get_data(g_ptr_array_index(sent, i), NULL),
                                g_bytes_get_size(g_ptr_array_index(sent, i)));
        g_assert_true(mock_run_until(f.event, cond_last_put_frame, &f, 10000));

        /* What was on its way when the connection dropped may be lost; the rest arrives in order, up to
         * the last queued frame, and the second PUT starts at a frame boundary. */
        g_mutex_lock(&f.server->lock);
        g_assert_cmpuint(f.server->put_errors, ==, 0);
        for (guint i = 0; i < f.server->put_frames->len; i++, j++) {
                while (j < sent->len && !g_bytes_equal(g_ptr_array_index(sent, j),
                                                       g_ptr_array_index(f.server->put_frames, i)))
                        j++;
                if (j == sent->len)
                        g_error("PUT frame %u is not the next of the queued frames", i);
        }
        g_assert_cmpuint(j, ==, sent->len);
        g_mutex_unlock(&f.server->lock);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_put), ==, 2);

        fixture_done(&f);
}

/* A 200 without the tunnel configuration, then frames. */
static bool get_unconfigured(Conn *c, Request *req) {
        Fixture *f = fixture_of(c);
        g_autoptr(GByteArray) blob = blob_new(f->frames, 0, f->frames->len);

        if (!conn_send_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") ||
            !conn_send_chunked(c, blob->data, blob->len, 1000, 1))
                return false;
        return get_hold(c);
}

static void test_get_unconfigured(void) {
        gint64 gap;
        Fixture f;

        fixture_init(&f, get_unconfigured, put_accept);
        f.frames = frames_new(5, 1);
        fixture_start(&f);

        wait_for(&f, cond_gets, 2, 5000);
        gap = server_request(f.server, "GET", 1)->at - server_request(f.server, "GET", 0)->at;
        g_assert_cmpint(gap, >=, 200 * 1000);
        /* The host refused the configuration: the stream never came up and no frame was taken. */
        g_assert_cmpuint(f.peer->n_configures, >=, 1);
        g_assert_cmpuint(f.peer->rx_streams->len, ==, 0);
        g_assert_cmpuint(f.peer->received->len, ==, 0);
        g_assert_cmpuint(server_get_count(f.server, &f.server->get_closes), >=, 1);

        fixture_done(&f);
}

static void test_get_refused(void) {
        gint64 at[4];
        Fixture f;

        fixture_init(&f, refuse, refuse);
        f.cfg.reconnect_min_usec = 200 * 1000;
        f.cfg.reconnect_max_usec = 1000 * 1000;
        fixture_start(&f);

        wait_for(&f, cond_gets, 4, 10000);
        for (unsigned i = 0; i < 4; i++)
                at[i] = server_request(f.server, "GET", i)->at;

        /* A random delay in [min, 3 min] first, doubling after each failure, capped at max. */
        g_assert_cmpint(at[1] - at[0], >=, 200 * 1000);
        g_assert_cmpint(at[1] - at[0], <=, 600 * 1000 + 300 * 1000);
        g_assert_cmpint(at[2] - at[1], >=, 400 * 1000);
        g_assert_cmpint(at[2] - at[1], <=, 1000 * 1000 + 300 * 1000);
        g_assert_cmpint(at[3] - at[2], >=, 800 * 1000);
        g_assert_cmpint(at[3] - at[2], <=, 1000 * 1000 + 300 * 1000);

        /* Never configured, never connected, nothing received. */
        g_assert_cmpuint(f.peer->n_configures, ==, 0);
        g_assert_cmpuint(f.peer->n_connected, ==, 0);
        g_assert_cmpuint(f.peer->received->len, ==, 0);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_put), >=, 2);

        fixture_done(&f);
}

/* GET 0: frames 0..4, HOLD_MS, then the body ends as HTTP intends. GET 1: frames 5..9, held open. */
static bool get_end_then_more(Conn *c, Request *req) {
        Fixture *f = fixture_of(c);
        g_autoptr(GByteArray) blob = blob_new(f->frames, req->index == 0 ? 0 : 5, req->index == 0 ? 5 : 10);

        if (!conn_send_str(c, GET_HEAD) || !conn_send_chunked(c, blob->data, blob->len, 100, req->index))
                return false;
        if (req->index > 0)
                return get_hold(c);
        server_sleep(c->server, f->hold_ms);
        return conn_send_str(c, "0\r\n\r\n");
}

typedef struct CleanEndCase {
        const char *name;
        unsigned hold_ms;
        bool immediate; /* reconnect at once, else only after the backoff */
} CleanEndCase;

static const CleanEndCase clean_end_cases[] = {
        { "rotation", 800, true },
        /* A server ending streams at once must not make the client loop. */
        { "too-soon", 0, false },
};

static void test_get_clean_end(gconstpointer data) {
        const CleanEndCase *cc = data;
        gint64 gap;
        Fixture f;

        fixture_init(&f, get_end_then_more, put_accept);
        f.frames = frames_new(10, 3);
        f.hold_ms = cc->hold_ms;
        f.cfg.reconnect_min_usec = 500 * 1000;
        fixture_start(&f);

        wait_for(&f, cond_received, 10, 10000);
        gap = server_request(f.server, "GET", 1)->at - server_request(f.server, "GET", 0)->at -
              (gint64) cc->hold_ms * 1000;
        if (cc->immediate)
                g_assert_cmpint(gap, <, 200 * 1000);
        else
                g_assert_cmpint(gap, >=, 500 * 1000);
        run_for(&f, 100);
        assert_received_range(&f, 0, 10);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_get), ==, 2);
        /* The TUN was configured by each GET; the stream ended without an error reason. */
        g_assert_cmpuint(f.peer->n_configures, ==, 2);

        fixture_done(&f);
}

/* GET 0: frames 0..2 and half of frame 3, then the connection drops. GET 1: frames 4..9. */
static bool get_die_mid_frame(Conn *c, Request *req) {
        Fixture *f = fixture_of(c);
        g_autoptr(GByteArray) blob = NULL;

        if (!conn_send_str(c, GET_HEAD))
                return false;
        if (req->index > 0) {
                blob = blob_new(f->frames, 4, 10);
                if (!conn_send_chunked(c, blob->data, blob->len, 50, 99))
                        return false;
                return get_hold(c);
        }
        blob = blob_new(f->frames, 0, 4);
        g_byte_array_set_size(blob, blob->len - (guint) g_bytes_get_size(g_ptr_array_index(f->frames, 3)) / 2);
        conn_send_chunked(c, blob->data, blob->len, 50, 98);
        return false;
}

static void test_get_die_mid_frame(void) {
        static const unsigned want[] = { 0, 1, 2, 4, 5, 6, 7, 8, 9 };
        Fixture f;

        fixture_init(&f, get_die_mid_frame, put_accept);
        f.frames = frames_new(10, 5);
        fixture_start(&f);

        wait_for(&f, cond_received, G_N_ELEMENTS(want), 10000);
        run_for(&f, 100);
        /* The half frame is lost; the next GET starts at a frame boundary. */
        assert_received(&f, want, G_N_ELEMENTS(want));
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_get), ==, 2);
        g_assert_nonnull(f.peer->last_reason);

        fixture_done(&f);
}

/* GET 0: frames 0..1 then F->bad, then held open until the client gives up. GET 1: frames 2..4. */
static bool get_invalid(Conn *c, Request *req) {
        Fixture *f = fixture_of(c);
        g_autoptr(GByteArray) blob = blob_new(f->frames, req->index == 0 ? 0 : 2, req->index == 0 ? 2 : 5);

        if (req->index == 0)
                g_byte_array_append(blob, f->bad, (guint) f->bad_len);
        if (!conn_send_str(c, GET_HEAD) || !conn_send_chunked(c, blob->data, blob->len, 64, req->index))
                return false;
        return get_hold(c);
}

typedef struct InvalidCase {
        const char *name;
        const uint8_t *bytes;
        size_t len;
} InvalidCase;

/* A 20-byte "packet" whose version nibble is 5. */
static const uint8_t bad_not_ip[2 + 12 + 20] = { 20, 0, [14] = 0x55 };
static const uint8_t bad_length[] = { 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 };

static const InvalidCase invalid_cases[] = {
        { "length", bad_length, sizeof bad_length },
        { "not-ip", bad_not_ip, sizeof bad_not_ip },
};

static void test_get_invalid(gconstpointer data) {
        const InvalidCase *ic = data;
        Fixture f;

        fixture_init(&f, get_invalid, put_accept);
        f.frames = frames_new(5, 9);
        f.bad = ic->bytes;
        f.bad_len = ic->len;
        fixture_start(&f);

        wait_for(&f, cond_received, 5, 10000);
        run_for(&f, 100);
        assert_received_range(&f, 0, 5);
        /* The client closed the bad GET itself and opened another. */
        g_assert_cmpuint(server_get_count(f.server, &f.server->get_closes), ==, 1);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_get), ==, 2);
        g_assert_true(g_str_has_prefix(f.peer->last_reason, "invalid frame from server"));

        fixture_done(&f);
}

static void test_put_keepalive(void) {
        g_autoptr(GBytes) frame = mock_make_frame(100, 1);
        gint64 start;
        Fixture f;

        fixture_init(&f, get_frames, put_accept);
        f.cfg.keepalive_usec = 300 * 1000;
        fixture_start(&f);

        g_assert_true(mock_run_until(f.event, cond_tx_attached, &f, 5000));
        start = g_get_monotonic_time();
        wait_for(&f, cond_keepalives, 3, 5000);
        g_mutex_lock(&f.server->lock);
        /* Not before the idle time has passed, and not more often than it. */
        g_assert_cmpint(g_array_index(f.server->keepalives, gint64, 0) - start, >=, 100 * 1000);
        for (guint i = 1; i < f.server->keepalives->len; i++)
                g_assert_cmpint(g_array_index(f.server->keepalives, gint64, i) -
                                g_array_index(f.server->keepalives, gint64, i - 1), >=, 250 * 1000);
        g_assert_cmpuint(f.server->put_frames->len, ==, 0);
        g_mutex_unlock(&f.server->lock);

        /* Data after keepalives is framed as usual. */
        mock_peer_queue(f.peer, g_bytes_get_data(frame, NULL), g_bytes_get_size(frame));
        wait_for(&f, cond_put_frames, 1, 5000);
        g_mutex_lock(&f.server->lock);
        g_assert_true(g_bytes_equal(g_ptr_array_index(f.server->put_frames, 0), frame));
        g_assert_cmpuint(f.server->put_errors, ==, 0);
        g_mutex_unlock(&f.server->lock);

        fixture_done(&f);
}

static void test_get_congestion(void) {
        Fixture f;

        fixture_init(&f, get_frames, put_accept);
        f.frames = frames_new(50, 13);
        f.cfg.stall_timeout_usec = 1000 * 1000;
        f.cfg.keepalive_usec = 300 * 1000;
        f.peer->congested = true;
        fixture_start(&f);

        /* The frame that reported congestion is the last one taken until the host wakes the stream,
         * however long that takes: waiting for the TUN is no stall. */
        wait_for(&f, cond_received, 1, 5000);
        run_for(&f, 1500);
        g_assert_cmpuint(f.peer->received->len, ==, 1);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_get), ==, 1);

        mock_peer_uncongest(f.peer);
        wait_for(&f, cond_received, 50, 5000);
        run_for(&f, 100);
        assert_received_range(&f, 0, 50);
        g_assert_cmpuint(server_get_count(f.server, &f.server->n_get), ==, 1);

        fixture_done(&f);
}

static void test_stall(void) {
        gint64 gap;
        Fixture f;

        fixture_init(&f, stall, stall);
        f.cfg.stall_timeout_usec = 1000 * 1000;
        f.cfg.reconnect_min_usec = 200 * 1000;
        fixture_start(&f);

        wait_for(&f, cond_gets, 2, 5000);
        gap = server_request(f.server, "GET", 1)->at - server_request(f.server, "GET", 0)->at;
        g_assert_cmpint(gap, >=, 1000 * 1000);
        g_assert_cmpint(gap, <=, 1000 * 1000 + 600 * 1000 + 300 * 1000);
        g_assert_cmpuint(f.peer->n_configures, ==, 0);

        fixture_done(&f);
}

/* Streams frames until the client goes away. */
static bool get_endless(Conn *c, Request *req) {
        Fixture *f = fixture_of(c);
        g_autoptr(GByteArray) blob = blob_new(f->frames, 0, f->frames->len);

        if (!conn_send_str(c, GET_HEAD))
                return false;
        for (unsigned i = 0; !server_stopping(c->server); i++)
                if (!conn_send_chunked(c, blob->data, blob->len, 5000, i))
                        break;
        return false;
}

static bool cond_busy(void *userdata) {
        Fixture *f = userdata;
        bool b;

        g_mutex_lock(&f->server->lock);
        b = f->server->put_frames->len >= 100;
        g_mutex_unlock(&f->server->lock);
        return b && f->peer->received->len >= 100;
}

static bool cond_put_closed(void *userdata) {
        Fixture *f = userdata;
        return server_get_count(f->server, &f->server->put_closes) >= 1;
}

static void test_free_mid_transfer(void) {
        g_autoptr(GPtrArray) sent = frames_new(3000, 17);
        Fixture f;

        fixture_init(&f, get_endless, put_accept);
        f.frames = frames_new(100, 19);
        for (guint i = 0; i < sent->len; i++)
                mock_peer_queue(f.peer, g_bytes_get_data(g_ptr_array_index(sent, i), NULL),
                                g_bytes_get_size(g_ptr_array_index(sent, i)));
        fixture_start(&f);
        g_assert_true(mock_run_until(f.event, cond_busy, &f, 10000));

        f.ops->instance_free(f.instance);
        f.instance = NULL;
        g_assert_null(f.peer->tx_stream);
        g_assert_cmpuint(f.peer->rx_streams->len, ==, 0);
        g_assert_cmpstr(f.peer->last_reason, ==, "interface stopped");
        /* The connections are closed; running the loop on touches nothing freed (ASan). */
        g_assert_true(mock_run_until(f.event, cond_put_closed, &f, 5000));

        fixture_done(&f);
}

static void test_disconnect(void) {
        gint64 at;
        Fixture f;

        fixture_init(&f, get_frames, put_accept);
        f.cfg.reconnect_min_usec = 300 * 1000;
        fixture_start(&f);
        g_assert_true(mock_run_until(f.event, cond_tx_attached, &f, 5000));
        wait_for(&f, cond_gets, 1, 5000);

        at = g_get_monotonic_time();
        f.ops->disconnect(f.instance, NULL);
        wait_for(&f, cond_get_closes, 1, 5000);
        g_assert_null(f.peer->tx_stream);
        g_assert_cmpuint(f.peer->rx_streams->len, ==, 0);
        g_assert_cmpstr(f.peer->last_reason, ==, "disconnected on request");

        /* Back after the minimum delay, not the randomised backoff. */
        wait_for(&f, cond_gets, 2, 5000);
        g_assert_cmpint(server_request(f.server, "GET", 1)->at - at, >=, 300 * 1000);
        g_assert_cmpint(server_request(f.server, "GET", 1)->at - at, <=, 300 * 1000 + 300 * 1000);
        g_assert_true(mock_run_until(f.event, cond_tx_attached, &f, 5000));

        fixture_done(&f);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/http-client/request/headers", test_request_headers);
        for (size_t i = 0; i < G_N_ELEMENTS(split_cases); i++) {
                g_autofree char *name = g_strdup_printf("/http-client/get/frames/%s", split_cases[i].name);
                g_test_add_data_func(name, &split_cases[i], test_get_frames);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(put_cases); i++) {
                g_autofree char *name = g_strdup_printf("/http-client/put/frames/%s", put_cases[i].name);
                g_test_add_data_func(name, &put_cases[i], test_put_frames);
        }
        g_test_add_func("/http-client/put/server-drops", test_put_server_drops);
        g_test_add_func("/http-client/get/refused", test_get_refused);
        g_test_add_func("/http-client/get/unconfigured", test_get_unconfigured);
        for (size_t i = 0; i < G_N_ELEMENTS(clean_end_cases); i++) {
                g_autofree char *name = g_strdup_printf("/http-client/get/clean-end/%s", clean_end_cases[i].name);
                g_test_add_data_func(name, &clean_end_cases[i], test_get_clean_end);
        }
        g_test_add_func("/http-client/get/die-mid-frame", test_get_die_mid_frame);
        for (size_t i = 0; i < G_N_ELEMENTS(invalid_cases); i++) {
                g_autofree char *name = g_strdup_printf("/http-client/get/invalid/%s", invalid_cases[i].name);
                g_test_add_data_func(name, &invalid_cases[i], test_get_invalid);
        }
        g_test_add_func("/http-client/put/keepalive", test_put_keepalive);
        g_test_add_func("/http-client/get/congestion", test_get_congestion);
        g_test_add_func("/http-client/transfer/stall", test_stall);
        g_test_add_func("/http-client/instance/free-mid-transfer", test_free_mid_transfer);
        g_test_add_func("/http-client/instance/disconnect", test_disconnect);

        return g_test_run();
}
