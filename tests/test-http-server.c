/* SPDX-License-Identifier: MIT */
/* The http-server plugin, loaded as built, behind the mock host, driven by raw loopback sockets. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mock-host.h"

#define TOKEN_TEST_SHA1 "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3" /* sha1("test") */
#define CONF_B64 "3AUYCgoAAg=="
#define WAIT_MS 5000u
#define USEC_PER_SEC 1000000ull

#define PUT_HEAD                                                                                   \
        "PUT /tunnel HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\nTransfer-Encoding: chunked\r\n\r\n"
#define GET_HEAD "GET /tunnel HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\n\r\n"
#define CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* ---------------------------------------------------------------------------------------------- */
/* Fixture: one sd_event, the mock host with two clients, the plugin instance on a loopback socket. */

typedef struct Client {
        int fd;
        GByteArray *rx;
        bool eof;
        bool no_read; /* leave received data in the kernel, to make the server's writes block */
} Client;

typedef struct Tweak {
        uint64_t keepalive_usec;
        uint64_t peer_timeout_usec;
        uint32_t max_connections;
        uint32_t max_puts;
} Tweak;

typedef struct Fixture {
        sd_event *event;
        TapotunClientConfig clients[2];
        TapotunIfaceConfig cfg;
        MockHost *m;
        const TapotunTransportOps *ops;
        void *instance;
        uint16_t port;
        GPtrArray *conns; /* Client*, all read while the loop runs */
} Fixture;

static void client_free(gpointer p) {
        Client *c = p;

        if (c->fd >= 0)
                close(c->fd);
        g_byte_array_unref(c->rx);
        g_free(c);
}

static void fixture_setup(Fixture *f, gconstpointer data) {
        const Tweak *t = data;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        g_autofree char *other = g_compute_checksum_for_string(G_CHECKSUM_SHA1, "other", -1);
        const TapotunPlugin *plugin;
        int fd;

        g_assert_cmpint(sd_event_new(&f->event), >=, 0);

        /* The README's example client, and a second one. */
        f->clients[0] = (TapotunClientConfig) {
                .name = g_strdup("client0"),
                .ip = { .family = AF_INET, .prefixlen = 32, .addr.in.s_addr = htonl(0x0a0a0002) },
        };
        g_strlcpy(f->clients[0].token, TOKEN_TEST_SHA1, sizeof f->clients[0].token);
        f->clients[1] = (TapotunClientConfig) {
                .name = g_strdup("client1"),
                .ip = { .family = AF_INET, .prefixlen = 32, .addr.in.s_addr = htonl(0x0a0a0003) },
        };
        g_strlcpy(f->clients[1].token, other, sizeof f->clients[1].token);

        f->cfg = (TapotunIfaceConfig) {
                .mode = TAPOTUN_MODE_SERVER,
                .mtu = 1500,
                .keepalive_usec = t && t->keepalive_usec ? t->keepalive_usec : TAPOTUN_KEEPALIVE_USEC,
                .listen = g_strdup("127.0.0.1"),
                .net = { .family = AF_INET, .prefixlen = 24, .addr.in.s_addr = htonl(0x0a0a0001) },
                .clients = f->clients,
                .n_clients = 2,
                .peer_timeout_usec = t && t->peer_timeout_usec ? t->peer_timeout_usec : 180 * USEC_PER_SEC,
                .max_connections = t && t->max_connections ? t->max_connections : 64,
                .max_puts_per_client = t && t->max_puts ? t->max_puts : 4,
                .queue_bytes = 12u << 20,
        };
        g_strlcpy(f->cfg.name, "tt0", sizeof f->cfg.name);
        f->m = mock_host_new(f->event, &f->cfg);

        /* As systemd would pass it: a bound, listening socket the plugin takes over. */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(listen(fd, 64), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        f->port = ntohs(sa.sin_port);
        f->m->tunnel.listen_fd = fd;

        plugin = mock_load_plugin("http-server");
        g_assert_nonnull(plugin);
        g_assert_cmpuint(plugin->abi_major, ==, TAPOTUN_PLUGIN_ABI_MAJOR);
        g_assert_cmpint(plugin->kind, ==, TAPOTUN_PLUGIN_SERVER_TRANSPORT);
        g_assert_cmpstr(plugin->name, ==, "http-server");
        if (plugin->init)
                g_assert_cmpint(plugin->init(&f->m->host), ==, 0);
        f->ops = plugin->ops;
        g_assert_cmpuint(f->ops->version, ==, TAPOTUN_TRANSPORT_OPS_VERSION);
        g_assert_cmpint(f->ops->instance_new(&f->m->host, &f->m->tunnel, &f->cfg, &f->instance), ==, 0);
        g_assert_cmpint(f->m->tunnel.listen_fd, ==, -1);

        f->conns = g_ptr_array_new_with_free_func(client_free);
}

static void fixture_teardown(Fixture *f, gconstpointer data) {
        /* Every test ends with its connections still open: instance_free must close them all. */
        if (f->instance)
                f->ops->instance_free(f->instance);
        g_ptr_array_unref(f->conns);
        mock_host_free(f->m);
        sd_event_unref(f->event);
        g_free(f->cfg.listen);
        g_free(f->clients[0].name);
        g_free(f->clients[1].name);
}

/* ---------------------------------------------------------------------------------------------- */
/* Raw clients */

static Client *client_connect(Fixture *f) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(f->port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        Client *c = g_new0(Client, 1);
        int one = 1;

        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(c->fd, >=, 0);
        /* Completes in the kernel's backlog before the server accepts. */
        g_assert_cmpint(connect(c->fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), ==, 0);
        g_assert_cmpint(fcntl(c->fd, F_SETFL, O_NONBLOCK), ==, 0);
        c->rx = g_byte_array_new();
        g_ptr_array_add(f->conns, c);
        return c;
}

static void client_read(Client *c) {
        uint8_t buf[65536];
        ssize_t n;

        if (c->eof || c->no_read)
                return;
        for (;;) {
                n = recv(c->fd, buf, sizeof buf, 0);
                if (n > 0) {
                        g_byte_array_append(c->rx, buf, (guint) n);
                        continue;
                }
                if (n == 0 || errno == ECONNRESET)
                        c->eof = true;
                else
                        g_assert_cmpint(errno, ==, EAGAIN);
                return;
        }
}

static void clients_read(Fixture *f) {
        for (guint i = 0; i < f->conns->len; i++)
                client_read(g_ptr_array_index(f->conns, i));
}

/* Sends all of DATA, running the loop while the socket is full; false when the server closed it. */
static bool client_send_try(Fixture *f, Client *c, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

                if (n > 0) {
                        p += n;
                        len -= (size_t) n;
                        continue;
                }
                if (errno == EPIPE || errno == ECONNRESET)
                        return false;
                g_assert_cmpint(errno, ==, EAGAIN);
                clients_read(f);
                g_assert_cmpint(sd_event_run(f->event, 10000), >=, 0);
        }
        return true;
}

static void client_send(Fixture *f, Client *c, const void *data, size_t len) {
        g_assert_true(client_send_try(f, c, data, len));
}

static void client_sendf(Fixture *f, Client *c, const char *format, ...) G_GNUC_PRINTF(3, 4);
static void client_sendf(Fixture *f, Client *c, const char *format, ...) {
        g_autofree char *s = NULL;
        va_list ap;

        va_start(ap, format);
        s = g_strdup_vprintf(format, ap);
        va_end(ap);
        client_send(f, c, s, strlen(s));
}

/* Sends DATA as one HTTP chunk. */
static void client_send_chunk(Fixture *f, Client *c, const void *data, size_t len) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        char head[32];

        snprintf(head, sizeof head, "%zx\r\n", len);
        g_byte_array_append(b, (const guint8 *) head, strlen(head));
        g_byte_array_append(b, data, len);
        g_byte_array_append(b, (const guint8 *) "\r\n", 2);
        client_send(f, c, b->data, b->len);
}

/* ---------------------------------------------------------------------------------------------- */
/* Responses */

typedef struct Response {
        bool cont;          /* a 100 Continue came first */
        int status;
        char *head;
        bool chunked;
        GByteArray *body;   /* de-chunked */
        bool complete;      /* the terminating chunk arrived */
        GPtrArray *frames;  /* GBytes: frame bodies decoded from the body */
        unsigned keepalives;
} Response;

static void response_clear(Response *r) {
        g_free(r->head);
        if (r->body)
                g_byte_array_unref(r->body);
        if (r->frames)
                g_ptr_array_unref(r->frames);
        *r = (Response) {};
}

static char *header_get(const char *head, const char *name) {
        g_auto(GStrv) lines = g_strsplit(head, "\r\n", -1);
        size_t n = strlen(name);

        for (char **l = lines + 1; *l; l++)
                if (g_ascii_strncasecmp(*l, name, n) == 0 && (*l)[n] == ':')
                        return g_strstrip(g_strdup(*l + n + 1));
        return NULL;
}

static void dechunk(const uint8_t *p, size_t n, GByteArray *out, bool *ret_complete) {
        size_t i = 0;

        *ret_complete = false;
        for (;;) {
                const uint8_t *crlf = memmem(p + i, n - i, "\r\n", 2);
                size_t size = 0, data;

                if (!crlf)
                        return;
                for (const uint8_t *h = p + i; h < crlf && g_ascii_isxdigit(*h); h++)
                        size = size * 16 + (size_t) g_ascii_xdigit_value(*h);
                data = (size_t) (crlf - p) + 2;
                if (size == 0) {
                        *ret_complete = n - data >= 2 && memcmp(p + data, "\r\n", 2) == 0;
                        return;
                }
                if (n - data < size + 2)
                        return;
                g_assert_cmpmem(p + data + size, 2, "\r\n", 2);
                g_byte_array_append(out, p + data, (guint) size);
                i = data + size + 2;
        }
}

static void frames_decode(const GByteArray *body, GPtrArray *frames, unsigned *keepalives) {
        size_t i = 0;

        while (body->len - i >= 2) {
                size_t len = body->data[i] | (size_t) body->data[i + 1] << 8;

                if (len == 0) {
                        (*keepalives)++;
                        i += 2;
                        continue;
                }
                if (body->len - i < 2 + 12 + len)
                        return;
                g_ptr_array_add(frames, g_bytes_new(body->data + i + 2, 12 + len));
                i += 2 + 12 + len;
        }
}

/* Parses what C received so far; false until a whole response head is there. */
static bool response_parse(Client *c, Response *r) {
        const char *p = (const char *) c->rx->data, *end;
        size_t n = c->rx->len, body_len;

        response_clear(r);
        if (n >= strlen(CONTINUE) && memcmp(p, CONTINUE, strlen(CONTINUE)) == 0) {
                r->cont = true;
                p += strlen(CONTINUE);
                n -= strlen(CONTINUE);
        }
        end = n > 0 ? memmem(p, n, "\r\n\r\n", 4) : NULL;
        if (!end)
                return false;
        r->head = g_strndup(p, (gsize) (end - p));
        g_assert_cmpint(sscanf(r->head, "HTTP/1.%*d %d", &r->status), ==, 1);
        {
                g_autofree char *te = header_get(r->head, "transfer-encoding");
                r->chunked = te && g_ascii_strcasecmp(te, "chunked") == 0;
        }
        r->body = g_byte_array_new();
        body_len = n - (size_t) (end + 4 - p);
        if (r->chunked)
                dechunk((const uint8_t *) end + 4, body_len, r->body, &r->complete);
        else
                g_byte_array_append(r->body, (const guint8 *) end + 4, (guint) body_len);
        r->frames = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        frames_decode(r->body, r->frames, &r->keepalives);
        return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* Waiting: the loop runs (mock_run_until) and every client reads until the condition holds. */

typedef struct Wait Wait;
struct Wait {
        Fixture *f;
        bool (*pred)(Wait *w);
        Client *c;
        const char *needle;
        size_t n;
        TapotunPeer *peer;
};

static bool wait_cond(void *userdata) {
        Wait *w = userdata;

        clients_read(w->f);
        return w->pred(w);
}

static bool run_until(Fixture *f, Wait w, unsigned ms) {
        w.f = f;
        return mock_run_until(f->event, wait_cond, &w, ms);
}

static bool pred_never(Wait *w) {
        return false;
}

static bool pred_eof(Wait *w) {
        return w->c->eof;
}

static bool pred_contains(Wait *w) {
        return w->c->rx->len > 0 && memmem(w->c->rx->data, w->c->rx->len, w->needle, strlen(w->needle));
}

static bool pred_received(Wait *w) {
        return w->peer->received->len >= w->n;
}

static bool pred_disconnected(Wait *w) {
        return w->peer->n_disconnected >= w->n;
}

static bool pred_rx_streams(Wait *w) {
        return w->peer->rx_streams->len >= w->n;
}

static bool pred_head(Wait *w) {
        Response r = {};
        bool ok = response_parse(w->c, &r);

        response_clear(&r);
        return ok;
}

static bool pred_frames(Wait *w) {
        Response r = {};
        bool ok = response_parse(w->c, &r) && r.frames->len >= w->n;

        response_clear(&r);
        return ok;
}

static bool pred_keepalives(Wait *w) {
        Response r = {};
        bool ok = response_parse(w->c, &r) && r.keepalives >= w->n;

        response_clear(&r);
        return ok;
}

static bool pred_complete(Wait *w) {
        Response r = {};
        bool ok = response_parse(w->c, &r) && r.complete;

        response_clear(&r);
        return ok;
}

static void run_for(Fixture *f, unsigned ms) {
        (void) run_until(f, (Wait) { .pred = pred_never }, ms);
}

/* ---------------------------------------------------------------------------------------------- */
/* Frames */

/* Frame bodies of several sizes, the first and last short enough to split inside their header. */
static GPtrArray *golden_frames(unsigned n, size_t payload_step) {
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);

        for (unsigned i = 0; i < n; i++)
                g_ptr_array_add(a, mock_make_frame(i * payload_step % 1400, i + 1));
        return a;
}

static void frame_encode(GByteArray *out, GBytes *frame) {
        gsize len;
        const guint8 *d = g_bytes_get_data(frame, &len);
        guint8 hdr[2] = { (len - 12) & 0xff, (len - 12) >> 8 };

        g_byte_array_append(out, hdr, 2);
        g_byte_array_append(out, d, (guint) len);
}

/* The wire form of FRAMES, with a keepalive after the first. */
static GByteArray *frames_wire(GPtrArray *frames) {
        GByteArray *b = g_byte_array_new();

        for (guint i = 0; i < frames->len; i++) {
                frame_encode(b, g_ptr_array_index(frames, i));
                if (i == 0)
                        g_byte_array_append(b, (const guint8 *) "\0\0", 2);
        }
        return b;
}

static void assert_frames(GPtrArray *got, GPtrArray *want) {
        g_assert_cmpuint(got->len, ==, want->len);
        for (guint i = 0; i < want->len; i++) {
                gsize a, b;
                const void *da = g_bytes_get_data(g_ptr_array_index(got, i), &a);
                const void *db = g_bytes_get_data(g_ptr_array_index(want, i), &b);

                g_assert_cmpmem(da, a, db, b);
        }
}

static void peer_queue_all(TapotunPeer *p, GPtrArray *frames, guint from, guint to) {
        for (guint i = from; i < to; i++) {
                gsize len;
                const void *d = g_bytes_get_data(g_ptr_array_index(frames, i), &len);

                mock_peer_queue(p, d, len);
        }
}

static GPtrArray *frames_slice(GPtrArray *frames, guint from, guint to) {
        GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);

        for (guint i = from; i < to; i++)
                g_ptr_array_add(a, g_bytes_ref(g_ptr_array_index(frames, i)));
        return a;
}

/* Waits for the PUT's answer and the close, and checks it is the 200 "OK". */
static void assert_put_ok(Fixture *f, Client *c) {
        Response r = {};

        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, WAIT_MS));
        g_assert_true(response_parse(c, &r));
        g_assert_cmpint(r.status, ==, 200);
        g_assert_cmpmem(r.body->data, r.body->len, "OK", 2);
        response_clear(&r);
}

static void assert_status_and_close(Fixture *f, Client *c, int status) {
        Response r = {};

        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, WAIT_MS));
        g_assert_true(response_parse(c, &r));
        g_assert_cmpint(r.status, ==, status);
        response_clear(&r);
}

/* ---------------------------------------------------------------------------------------------- */
/* GET */

static void test_get_stream(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(4, 700);
        g_autofree char *conf = NULL, *offload = NULL, *length = NULL;
        Response r = {};
        Client *c;

        /* Queued before the GET: delivered once it attaches. */
        peer_queue_all(p, golden, 0, 1);

        c = client_connect(f);
        client_sendf(f, c,
                     "GET /whatever?x=1 HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\nx-tun-offload: csum\r\n"
                     "X-Forwarded-For: 192.0.2.7\r\n\r\n");
        g_assert_true(run_until(f, (Wait) { .pred = pred_frames, .c = c, .n = 1 }, WAIT_MS));

        peer_queue_all(p, golden, 1, golden->len);
        g_assert_true(run_until(f, (Wait) { .pred = pred_frames, .c = c, .n = golden->len }, WAIT_MS));
        g_assert_true(response_parse(c, &r));

        g_assert_true(g_str_has_prefix(r.head, "HTTP/1.1 200"));
        conf = header_get(r.head, "x-tun-conf");
        g_assert_cmpstr(conf, ==, CONF_B64);
        offload = header_get(r.head, "x-tun-offload");
        g_assert_cmpstr(offload, ==, "csum,tso4,tso6,ecn");
        length = header_get(r.head, "content-length");
        g_assert_null(length);
        g_assert_true(r.chunked);
        g_assert_false(r.complete);
        assert_frames(r.frames, golden);
        g_assert_cmpuint(r.keepalives, ==, 0);

        /* The host saw the request headers and the remote address. */
        g_assert_cmpuint(p->n_accepts, ==, 1);
        g_assert_cmpstr(p->offload_request, ==, "csum");
        g_assert_nonnull(p->tx_stream);
        g_assert_true(g_str_has_prefix(p->last_remote, "127.0.0.1:"));
        g_assert_true(g_str_has_suffix(p->last_remote, " (x-forwarded-for: 192.0.2.7)"));
        g_assert_cmpuint(mock_host_peer(f->m, 1)->n_connected, ==, 0);
        response_clear(&r);

        /* The client goes away: the stream is detached. */
        g_ptr_array_remove_index(f->conns, 0);
        peer_queue_all(p, golden, 0, 1);
        g_assert_true(run_until(f, (Wait) { .pred = pred_disconnected, .peer = p, .n = 1 }, WAIT_MS));
        g_assert_cmpstr(p->last_reason, !=, NULL);
        g_assert_null(p->tx_stream);
}

static void test_get_any_method(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 1);
        g_autofree char *conf = NULL;
        Response r = {};
        Client *c;

        /* Every method but PUT is the downstream, on any path. */
        c = client_connect(f);
        client_sendf(f, c, "POST /some/other/path HTTP/1.1\r\nHost: test\r\nx-api-key: other\r\n"
                           "Content-Length: 0\r\n\r\n");
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = c }, WAIT_MS));
        g_assert_true(response_parse(c, &r));
        g_assert_cmpint(r.status, ==, 200);
        conf = header_get(r.head, "x-tun-conf");
        g_assert_cmpstr(conf, ==, CONF_B64);
        g_assert_true(r.chunked);
        g_assert_cmpuint(p->n_accepts, ==, 1);
        g_assert_nonnull(p->tx_stream);
        response_clear(&r);

        c = client_connect(f);
        client_sendf(f, c, "DELETE /x HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_status_and_close(f, c, 403);

        c = client_connect(f);
        client_sendf(f, c, "GET / HTTP/1.0\r\n\r\n");
        assert_status_and_close(f, c, 403);
}

typedef struct ForbiddenCase {
        const char *method;
        const char *key;
} ForbiddenCase;

static void test_forbidden(Fixture *f, gconstpointer data) {
        static const ForbiddenCase cases[] = {
                { "GET", "" },
                { "GET", "x-api-key: wrong\r\n" },
                { "GET", "x-api-key:\r\n" },
                { "GET", "X-Api-Key: TEST\r\n" },
                { "PUT", "" },
                { "PUT", "x-api-key: wrong\r\n" },
                { "PUT", "x-api-key: test2\r\n" },
                { "POST", "x-api-key: nope\r\n" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                Client *c = client_connect(f);
                Response r = {};

                g_test_message("%s with \"%s\"", cases[i].method, cases[i].key);
                /* A PUT announces a body, but sends none: the answer must come first. */
                client_sendf(f, c, "%s / HTTP/1.1\r\nHost: test\r\n%s%s\r\n", cases[i].method, cases[i].key,
                             g_str_equal(cases[i].method, "PUT") ? "Transfer-Encoding: chunked\r\n" : "");
                g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, WAIT_MS));
                g_assert_true(response_parse(c, &r));
                g_assert_cmpint(r.status, ==, 403);
                g_assert_cmpmem(r.body->data, r.body->len, "Forbidden", 9);
                response_clear(&r);
        }
        g_assert_cmpuint(mock_host_peer(f->m, 0)->n_connected, ==, 0);
        g_assert_cmpuint(mock_host_peer(f->m, 1)->n_connected, ==, 0);
}

/* Log lines of the plugin, for the tests that count them. */
static GPtrArray *captured_log;

static int capture_logv(int level, int error, const char *plugin, const char *object, const char *format,
                        va_list ap) {
        g_ptr_array_add(captured_log, g_strdup_vprintf(format, ap));
        return error < 0 ? error : -error;
}

static unsigned log_count(const char *needle) {
        unsigned n = 0;

        for (guint i = 0; i < captured_log->len; i++)
                if (strstr(g_ptr_array_index(captured_log, i), needle))
                        n++;
        return n;
}

#define AUTH_FLOOD 100u

/* A flood of bad keys: every attempt gets its 403, only the first three are logged one by one, the rest
 * are summed up per address; the valid client gets in all along. */
static void test_auth_flood(Fixture *f, gconstpointer data) {
        static const char *const keys[] = { "x-api-key: wrong\r\n", "" };
        g_autofree char *summary = g_strdup_printf("%u failed authentication attempts from 127.0.0.1 in the "
                                                   "last 10 s", AUTH_FLOOD);
        gint64 t0 = g_get_monotonic_time(), elapsed;
        Client *good;

        captured_log = g_ptr_array_new_with_free_func(g_free);
        f->m->host.logv = capture_logv;

        for (unsigned i = 0; i < AUTH_FLOOD; i++) {
                const char *method = i % 3 == 0 ? "PUT" : i % 3 == 1 ? "GET" : "HEAD";
                Client *c = client_connect(f);
                g_autofree char *got = NULL;

                client_sendf(f, c, "%s / HTTP/1.1\r\nHost: test\r\n%s\r\n", method, keys[i % 2]);
                g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, WAIT_MS));
                got = g_strndup((const char *) c->rx->data, c->rx->len);
                g_assert_true(g_str_has_prefix(got, "HTTP/1.1 403 Forbidden\r\n"));
                /* No body for HEAD. */
                g_assert_true(g_str_has_suffix(got, g_str_equal(method, "HEAD") ? "\r\n\r\n" : "Forbidden"));
                g_ptr_array_remove(f->conns, c);

                if (i == AUTH_FLOOD / 2) {
                        good = client_connect(f);
                        client_sendf(f, good, GET_HEAD);
                        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = good }, WAIT_MS));
                }
        }
        elapsed = g_get_monotonic_time() - t0;
        g_assert_cmpuint(mock_host_peer(f->m, 0)->n_connected, ==, 1);

        /* The summary comes when the 10 s are over, or when the server stops. */
        f->ops->instance_free(f->instance);
        f->instance = NULL;
        for (guint i = 0; i < captured_log->len; i++)
                g_test_message("log: %s", (const char *) g_ptr_array_index(captured_log, i));
        if (elapsed < 9 * (gint64) USEC_PER_SEC) {
                g_assert_cmpuint(log_count("Rejected "), ==, 3);
                g_assert_cmpuint(log_count(summary), ==, 1);
        } else
                /* A machine this slow spread the flood over several intervals. */
                g_assert_cmpuint(log_count("Rejected "), <=,
                                 3 * (1 + elapsed / (10 * (gint64) USEC_PER_SEC)));
        g_clear_pointer(&captured_log, g_ptr_array_unref);
}

static void test_get_supersede(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(5, 333);
        g_autoptr(GPtrArray) first = frames_slice(golden, 0, 3);
        g_autoptr(GPtrArray) second = frames_slice(golden, 3, 5);
        Response r = {};
        Client *g1, *g2;

        g1 = client_connect(f);
        client_sendf(f, g1, GET_HEAD);
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = g1 }, WAIT_MS));
        peer_queue_all(p, golden, 0, 3);
        g_assert_true(run_until(f, (Wait) { .pred = pred_frames, .c = g1, .n = 3 }, WAIT_MS));

        g2 = client_connect(f);
        client_sendf(f, g2, GET_HEAD);
        /* The first response ends cleanly with the terminating chunk, and its connection closes. */
        g_assert_true(run_until(f, (Wait) { .pred = pred_complete, .c = g1 }, WAIT_MS));
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = g1 }, WAIT_MS));
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = g2 }, WAIT_MS));

        peer_queue_all(p, golden, 3, 5);
        g_assert_true(run_until(f, (Wait) { .pred = pred_frames, .c = g2, .n = 2 }, WAIT_MS));

        g_assert_true(response_parse(g1, &r));
        g_assert_true(r.complete);
        assert_frames(r.frames, first);
        g_assert_true(response_parse(g2, &r));
        g_assert_cmpint(r.status, ==, 200);
        g_assert_false(r.complete);
        assert_frames(r.frames, second);
        response_clear(&r);

        g_assert_cmpuint(p->n_accepts, ==, 2);
        g_assert_cmpuint(p->n_disconnected, ==, 1);
        g_assert_null(p->last_reason);
        g_assert_false(g2->eof);
}

static const Tweak keepalive_tweak = { .keepalive_usec = USEC_PER_SEC };

static void test_get_keepalive(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(1, 0);
        Response r = {};
        Client *c;
        gint64 t0;

        c = client_connect(f);
        client_sendf(f, c, GET_HEAD);
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = c }, WAIT_MS));
        t0 = g_get_monotonic_time();

        /* With nothing queued the head goes out with one keepalive; the next waits for the period. */
        g_assert_true(run_until(f, (Wait) { .pred = pred_keepalives, .c = c, .n = 1 }, WAIT_MS));
        run_for(f, 600);
        g_assert_true(response_parse(c, &r));
        g_assert_cmpuint(r.keepalives, ==, 1);

        g_assert_true(run_until(f, (Wait) { .pred = pred_keepalives, .c = c, .n = 2 }, 3000));
        g_assert_cmpint(g_get_monotonic_time() - t0, >=, 900000);
        g_assert_true(run_until(f, (Wait) { .pred = pred_keepalives, .c = c, .n = 3 }, 3000));

        /* Data in between is decoded among them, and stays exact. */
        peer_queue_all(p, golden, 0, 1);
        g_assert_true(run_until(f, (Wait) { .pred = pred_frames, .c = c, .n = 1 }, WAIT_MS));
        g_assert_true(response_parse(c, &r));
        assert_frames(r.frames, golden);
        g_assert_false(r.complete);
        response_clear(&r);
}

/* ---------------------------------------------------------------------------------------------- */
/* PUT */

/* One TCP write per byte, the loop running in between, for head and body alike. */
static void test_put_bytewise(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(2, 3);
        g_autoptr(GByteArray) wire = frames_wire(golden);
        g_autoptr(GByteArray) req = g_byte_array_new();
        g_autofree char *chunk = g_strdup_printf("%x\r\n", wire->len);
        Client *c;

        g_byte_array_append(req, (const guint8 *) PUT_HEAD, strlen(PUT_HEAD));
        g_byte_array_append(req, (const guint8 *) chunk, strlen(chunk));
        g_byte_array_append(req, wire->data, wire->len);
        g_byte_array_append(req, (const guint8 *) "\r\n0\r\n\r\n", 7);

        c = client_connect(f);
        for (guint i = 0; i < req->len; i++) {
                client_send(f, c, req->data + i, 1);
                for (int k = 0; k < 4; k++)
                        g_assert_cmpint(sd_event_run(f->event, 0), >=, 0);
        }
        assert_put_ok(f, c);
        assert_frames(p->received, golden);
        g_assert_cmpuint(p->n_connected, ==, 1);
        g_assert_cmpuint(p->n_disconnected, ==, 1);
        g_assert_null(p->last_reason);
        g_assert_cmpuint(p->rx_streams->len, ==, 0);
}

/* HTTP chunks of every size from 1 to the whole body, one TCP write each. */
static void test_put_chunk_sizes(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(3, 50);
        g_autoptr(GByteArray) wire = frames_wire(golden);

        for (guint k = 1; k <= wire->len; k++) {
                Client *c = client_connect(f);

                client_sendf(f, c, PUT_HEAD);
                for (guint i = 0; i < wire->len; i += k)
                        client_send_chunk(f, c, wire->data + i, MIN(k, wire->len - i));
                client_sendf(f, c, "0\r\n\r\n");
                assert_put_ok(f, c);
                assert_frames(p->received, golden);
                g_ptr_array_set_size(p->received, 0);
                g_ptr_array_remove(f->conns, c);
        }
        g_assert_cmpuint(p->n_disconnected, ==, wire->len);
        g_assert_null(p->last_reason);
}

static void test_put_content_length(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 1);
        g_autoptr(GPtrArray) golden = golden_frames(6, 1000);
        g_autoptr(GByteArray) wire = frames_wire(golden);
        Client *c = client_connect(f);

        client_sendf(f, c, "PUT / HTTP/1.1\r\nHost: test\r\nx-api-key: other\r\nContent-Length: %u\r\n\r\n",
                     wire->len);
        client_send(f, c, wire->data, 100);
        g_assert_true(run_until(f, (Wait) { .pred = pred_received, .peer = p, .n = 1 }, WAIT_MS));
        client_send(f, c, wire->data + 100, wire->len - 100);
        assert_put_ok(f, c);
        assert_frames(p->received, golden);
        g_assert_cmpuint(mock_host_peer(f->m, 0)->received->len, ==, 0);
}

static void test_put_expect_continue(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(3, 200);
        g_autoptr(GByteArray) wire = frames_wire(golden);
        Response r = {};
        Client *c = client_connect(f);

        client_sendf(f, c, "PUT / HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\nExpect: 100-continue\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n");
        /* The interim answer comes before a single body byte was sent, and nothing else with it. */
        g_assert_true(run_until(f, (Wait) { .pred = pred_contains, .c = c, .needle = CONTINUE }, WAIT_MS));
        run_for(f, 100);
        g_assert_cmpmem(c->rx->data, c->rx->len, CONTINUE, strlen(CONTINUE));

        client_send_chunk(f, c, wire->data, wire->len);
        client_sendf(f, c, "0\r\n\r\n");
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, WAIT_MS));
        g_assert_true(response_parse(c, &r));
        g_assert_true(r.cont);
        g_assert_cmpint(r.status, ==, 200);
        response_clear(&r);
        assert_frames(p->received, golden);
}

static void test_put_invalid_frame(Fixture *f, gconstpointer data) {
        static const uint8_t bad[] = { 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 0, 0 };
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(2, 80);
        g_autoptr(GByteArray) one = g_byte_array_new(), two = g_byte_array_new();
        Client *a, *b;

        frame_encode(one, g_ptr_array_index(golden, 0));
        frame_encode(two, g_ptr_array_index(golden, 1));

        a = client_connect(f);
        b = client_connect(f);
        client_sendf(f, a, PUT_HEAD);
        client_sendf(f, b, PUT_HEAD);
        client_send_chunk(f, a, one->data, one->len);
        g_assert_true(run_until(f, (Wait) { .pred = pred_received, .peer = p, .n = 1 }, WAIT_MS));
        g_assert_cmpuint(p->rx_streams->len, ==, 2);

        /* A length of 5 is no frame: that PUT is closed, without an answer. */
        client_send_chunk(f, a, bad, sizeof bad);
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = a }, WAIT_MS));
        g_assert_cmpuint(a->rx->len, ==, 0);
        g_assert_cmpuint(p->n_disconnected, ==, 1);
        g_assert_nonnull(p->last_reason);
        g_assert_cmpuint(p->rx_streams->len, ==, 1);

        /* The other PUT of the same token goes on. */
        client_send_chunk(f, b, two->data, two->len);
        client_sendf(f, b, "0\r\n\r\n");
        assert_put_ok(f, b);
        assert_frames(p->received, golden);
}

static const Tweak timeout_tweak = { .peer_timeout_usec = USEC_PER_SEC };

static void test_put_timeout(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        Client *silent, *talking;

        silent = client_connect(f);
        talking = client_connect(f);
        client_sendf(f, silent, PUT_HEAD);
        client_sendf(f, talking, PUT_HEAD);

        /* Keepalives every 300 ms are traffic; nothing at all is not. */
        for (int i = 0; i < 6; i++) {
                run_for(f, 300);
                client_send_chunk(f, talking, "\0\0", 2);
        }
        g_assert_true(silent->eof);
        g_assert_false(talking->eof);
        g_assert_cmpuint(p->n_disconnected, ==, 1);
        g_assert_nonnull(strstr(p->last_reason, "timeout"));

        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = talking }, 2500));
        g_assert_cmpuint(p->n_disconnected, ==, 2);
        g_assert_cmpuint(p->received->len, ==, 0);
}

/* A PUT that stops inside a frame is closed by the inactivity timeout; the half frame goes nowhere, and
 * the client's next PUT starts at a frame boundary again. */
static void test_put_stall_mid_frame(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(2, 300);
        g_autoptr(GByteArray) one = g_byte_array_new(), two = g_byte_array_new();
        Client *stalled, *next;

        frame_encode(one, g_ptr_array_index(golden, 0));
        frame_encode(two, g_ptr_array_index(golden, 1));

        stalled = client_connect(f);
        client_sendf(f, stalled, PUT_HEAD);
        client_send_chunk(f, stalled, one->data, one->len);
        client_send_chunk(f, stalled, two->data, two->len / 2);
        g_assert_true(run_until(f, (Wait) { .pred = pred_received, .peer = p, .n = 1 }, WAIT_MS));
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = stalled }, WAIT_MS));
        g_assert_cmpuint(stalled->rx->len, ==, 0);
        g_assert_nonnull(strstr(p->last_reason, "timeout"));
        g_assert_cmpuint(p->received->len, ==, 1);

        next = client_connect(f);
        client_sendf(f, next, PUT_HEAD);
        client_send_chunk(f, next, two->data, two->len);
        client_sendf(f, next, "0\r\n\r\n");
        assert_put_ok(f, next);
        assert_frames(p->received, golden);
}

static void test_put_congestion(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        g_autoptr(GPtrArray) golden = golden_frames(40, 997);
        g_autoptr(GByteArray) first = g_byte_array_new(), second = g_byte_array_new();
        Client *c = client_connect(f);

        for (guint i = 0; i < 20; i++)
                frame_encode(first, g_ptr_array_index(golden, i));
        for (guint i = 20; i < 40; i++)
                frame_encode(second, g_ptr_array_index(golden, i));

        p->congested = true;
        client_sendf(f, c, PUT_HEAD);
        client_send_chunk(f, c, first->data, first->len);
        g_assert_true(run_until(f, (Wait) { .pred = pred_received, .peer = p, .n = 1 }, WAIT_MS));

        /* The congested answer stops the stream right after that frame, whatever else arrives. */
        run_for(f, 300);
        g_assert_cmpuint(p->received->len, ==, 1);
        client_send_chunk(f, c, second->data, second->len);
        client_sendf(f, c, "0\r\n\r\n");
        run_for(f, 300);
        g_assert_cmpuint(p->received->len, ==, 1);
        g_assert_true(c->rx->len == 0);

        mock_peer_uncongest(p);
        assert_put_ok(f, c);
        assert_frames(p->received, golden);
}

/* ---------------------------------------------------------------------------------------------- */
/* Limits */

static void test_head_oversized(Fixture *f, gconstpointer data) {
        static const char *const methods[] = { "GET", "PUT" };
        g_autofree char *big = g_strnfill(20 * 1024, 'a');

        for (size_t i = 0; i < G_N_ELEMENTS(methods); i++) {
                Client *c = client_connect(f);

                client_sendf(f, c, "%s / HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\nX-Big: %s\r\n\r\n",
                             methods[i], big);
                assert_status_and_close(f, c, 431);
        }
        g_assert_cmpuint(mock_host_peer(f->m, 0)->n_connected, ==, 0);
}

/* Headers that never end: the server answers 431 once 16 KiB are in and reads no more, so the client
 * gets no further than what the socket buffers take. */
static void test_head_endless(Fixture *f, gconstpointer data) {
        static const char *const methods[] = { "GET", "PUT" };
        static const char line[] = "X-Endless: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

        for (size_t i = 0; i < G_N_ELEMENTS(methods); i++) {
                Client *c = client_connect(f);
                size_t sent = 0;

                client_sendf(f, c, "%s / HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\n", methods[i]);
                while (client_send_try(f, c, line, strlen(line))) {
                        sent += strlen(line);
                        /* Far beyond the head limit plus every socket buffer on the way. */
                        g_assert_cmpuint(sent, <, 64u << 20);
                }
                g_assert_cmpuint(sent, >=, 16u * 1024u - 256u);
                g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, WAIT_MS));
                /* The answer may be lost to the reset of the unread rest; if it arrived, it is 431. */
                if (c->rx->len > 0) {
                        g_autofree char *got = g_strndup((const char *) c->rx->data, c->rx->len);

                        g_assert_true(g_str_has_prefix(got, "HTTP/1.1 431 Request Header Fields Too Large"));
                }
        }
        g_assert_cmpuint(mock_host_peer(f->m, 0)->n_connected, ==, 0);
}

/* A header value folded onto a second line (obs-fold) is refused: h2o would read it differently. */
static void test_head_folded(Fixture *f, gconstpointer data) {
        static const char *const heads[] = {
                "GET / HTTP/1.1\r\nHost: test\r\nx-api-key: te\r\n st\r\n\r\n",
                "PUT / HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\nX-Other: a\r\n\tb\r\n"
                "Transfer-Encoding: chunked\r\n\r\n",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(heads); i++) {
                Client *c = client_connect(f);

                client_sendf(f, c, "%s", heads[i]);
                assert_status_and_close(f, c, 400);
        }
        g_assert_cmpuint(mock_host_peer(f->m, 0)->n_connected, ==, 0);
}

/* A head dripping in byte by byte still has to be complete 10 s after the connection. */
static void test_head_timeout(Fixture *f, gconstpointer data) {
        static const char head[] = "GET / HTTP/1.1\r\nHost: test\r\nx-api-key: test\r\n\r\n";
        Client *c = client_connect(f);
        gint64 t0 = g_get_monotonic_time();
        size_t i = 0;

        while (g_get_monotonic_time() - t0 < 8 * (gint64) USEC_PER_SEC) {
                client_send(f, c, head + i++, 1);
                run_for(f, 1000);
        }
        g_assert_false(c->eof);
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = c }, 4000));
        g_assert_cmpint(g_get_monotonic_time() - t0, >=, 9500000);
        g_assert_cmpuint(c->rx->len, ==, 0);
        g_assert_cmpuint(mock_host_peer(f->m, 0)->n_connected, ==, 0);
}

static const Tweak limits_tweak = { .max_connections = 3, .max_puts = 1 };

static void test_limits(Fixture *f, gconstpointer data) {
        TapotunPeer *p = mock_host_peer(f->m, 0);
        Client *put1, *put2, *idle1, *idle2, *get0, *refused, *late;

        put1 = client_connect(f);
        client_sendf(f, put1, PUT_HEAD);
        g_assert_true(run_until(f, (Wait) { .pred = pred_rx_streams, .peer = p, .n = 1 }, WAIT_MS));

        put2 = client_connect(f);
        client_sendf(f, put2, PUT_HEAD);
        assert_status_and_close(f, put2, 429);
        g_assert_cmpuint(p->rx_streams->len, ==, 1);

        /* put1 and two connections still sending their heads make three: a fourth takes the place of the
         * older of those two, which is closed unanswered (slowloris cannot lock clients out). */
        idle1 = client_connect(f);
        client_sendf(f, idle1, "GET");
        run_for(f, 100);
        idle2 = client_connect(f);
        client_sendf(f, idle2, "GET");
        run_for(f, 100);
        get0 = client_connect(f);
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = idle1 }, WAIT_MS));
        g_assert_cmpuint(idle1->rx->len, ==, 0);
        client_sendf(f, get0, GET_HEAD);
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = get0 }, WAIT_MS));
        g_assert_false(idle2->eof);
        g_assert_false(put1->eof);

        /* With every connection past its head, a fourth is closed at once, unanswered. */
        client_sendf(f, idle2, " / HTTP/1.1\r\nHost: test\r\nx-api-key: other\r\n\r\n");
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = idle2 }, WAIT_MS));
        refused = client_connect(f);
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = refused }, WAIT_MS));
        g_assert_cmpuint(refused->rx->len, ==, 0);
        g_assert_false(idle2->eof);
        g_assert_false(get0->eof);
        g_assert_false(put1->eof);

        /* A closed connection frees its slot. */
        g_ptr_array_remove(f->conns, idle2);
        run_for(f, 100);
        late = client_connect(f);
        client_sendf(f, late, GET_HEAD);
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = late }, WAIT_MS));
        g_assert_false(late->eof);
        g_assert_false(put1->eof);
}

/* ---------------------------------------------------------------------------------------------- */
/* Lifecycle */

static void test_disconnect(Fixture *f, gconstpointer data) {
        TapotunPeer *p0 = mock_host_peer(f->m, 0), *p1 = mock_host_peer(f->m, 1);
        g_autoptr(GPtrArray) golden = golden_frames(1, 0);
        Client *get0, *put0, *get1;

        get0 = client_connect(f);
        put0 = client_connect(f);
        get1 = client_connect(f);
        client_sendf(f, get0, GET_HEAD);
        client_sendf(f, put0, PUT_HEAD);
        client_sendf(f, get1, "GET / HTTP/1.1\r\nHost: test\r\nx-api-key: other\r\n\r\n");
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = get0 }, WAIT_MS));
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = get1 }, WAIT_MS));
        g_assert_cmpuint(p0->rx_streams->len, ==, 1);

        f->ops->disconnect(f->instance, p0);
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = get0 }, WAIT_MS));
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = put0 }, WAIT_MS));
        g_assert_true(pred_complete(&(Wait) { .c = get0 }));
        g_assert_cmpuint(p0->n_disconnected, ==, 2);
        g_assert_null(p0->tx_stream);
        g_assert_cmpuint(p0->rx_streams->len, ==, 0);

        /* The other peer is untouched until everyone is disconnected. */
        peer_queue_all(p1, golden, 0, 1);
        g_assert_true(run_until(f, (Wait) { .pred = pred_frames, .c = get1, .n = 1 }, WAIT_MS));
        g_assert_cmpuint(p1->n_disconnected, ==, 0);
        f->ops->disconnect(f->instance, NULL);
        g_assert_true(run_until(f, (Wait) { .pred = pred_eof, .c = get1 }, WAIT_MS));
        g_assert_cmpuint(p1->n_disconnected, ==, 1);
}

static void test_free_busy(Fixture *f, gconstpointer data) {
        TapotunPeer *p0 = mock_host_peer(f->m, 0), *p1 = mock_host_peer(f->m, 1);
        g_autoptr(GPtrArray) golden = golden_frames(1, 400);
        g_autoptr(GBytes) big = mock_make_frame(60000, 7);
        g_autoptr(GByteArray) half = g_byte_array_new();
        Client *blocked, *idle, *put, *head, *body;
        gsize len;
        const void *d = g_bytes_get_data(big, &len);

        /* A GET whose client reads nothing, with far more queued than the sockets hold. */
        blocked = client_connect(f);
        client_sendf(f, blocked, GET_HEAD);
        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = blocked }, WAIT_MS));
        blocked->no_read = true;
        for (int i = 0; i < 400; i++)
                mock_peer_queue(p0, d, len);

        /* An idle GET, a PUT inside a frame, a half head, and a request body h2o is reading. */
        idle = client_connect(f);
        client_sendf(f, idle, "GET / HTTP/1.1\r\nHost: test\r\nx-api-key: other\r\n\r\n");
        put = client_connect(f);
        client_sendf(f, put, PUT_HEAD);
        frame_encode(half, g_ptr_array_index(golden, 0));
        client_send_chunk(f, put, half->data, half->len / 2);
        head = client_connect(f);
        client_sendf(f, head, "GET / HTTP/1.1\r\nHo");
        body = client_connect(f);
        client_sendf(f, body, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789");

        g_assert_true(run_until(f, (Wait) { .pred = pred_head, .c = idle }, WAIT_MS));
        run_for(f, 300);
        g_assert_cmpuint(g_queue_get_length(&p0->tx), >, 0);
        g_assert_cmpuint(p0->rx_streams->len, ==, 1);

        f->ops->instance_free(f->instance);
        f->instance = NULL;

        g_assert_cmpuint(p0->n_disconnected, ==, 2);
        g_assert_cmpuint(p1->n_disconnected, ==, 1);
        g_assert_null(p0->tx_stream);
        g_assert_null(p1->tx_stream);
        g_assert_cmpuint(p0->rx_streams->len, ==, 0);
        g_assert_cmpuint(p0->received->len, ==, 0);

        /* Every socket is closed already: each client reads to its end without the loop. */
        blocked->no_read = false;
        for (guint i = 0; i < f->conns->len; i++) {
                Client *c = g_ptr_array_index(f->conns, i);

                while (!c->eof) {
                        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

                        g_assert_cmpint(poll(&pfd, 1, WAIT_MS), ==, 1);
                        client_read(c);
                }
        }
}

/* Without a socket from the host the plugin binds listen:port itself, or fails cleanly. */
static void test_bind(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        const TapotunPlugin *plugin = mock_load_plugin("http-server");
        const TapotunTransportOps *ops = plugin->ops;
        int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct {
                const char *listen;
                bool busy_port;
                int result;
        } cases[] = {
                { "127.0.0.1", false, 0 },
                { "[127.0.0.1", false, -EINVAL },
                { "localhost", false, -EINVAL },
                { "127.0.0.1", true, -EADDRINUSE },
        };

        /* A port somebody else listens on. */
        g_assert_cmpint(bind(busy, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(listen(busy, 1), ==, 0);
        g_assert_cmpint(getsockname(busy, (struct sockaddr *) &sa, &len), ==, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                TapotunIfaceConfig cfg = {
                        .mode = TAPOTUN_MODE_SERVER,
                        .listen = (char *) cases[i].listen,
                        .port = cases[i].busy_port ? ntohs(sa.sin_port) : 0,
                        .keepalive_usec = TAPOTUN_KEEPALIVE_USEC,
                        .peer_timeout_usec = 180 * USEC_PER_SEC,
                        .max_connections = 8,
                        .max_puts_per_client = 1,
                };
                sd_event *e = NULL;
                MockHost *m;

                g_strlcpy(cfg.name, "tt1", sizeof cfg.name);
                void *instance = NULL;

                g_test_message("listen \"%s\"%s", cases[i].listen, cases[i].busy_port ? " on a busy port" : "");
                g_assert_cmpint(sd_event_new(&e), >=, 0);
                m = mock_host_new(e, &cfg);
                g_assert_cmpint(ops->instance_new(&m->host, &m->tunnel, &cfg, &instance), ==, cases[i].result);
                g_assert_true((instance != NULL) == (cases[i].result == 0));
                if (instance)
                        ops->instance_free(instance);
                mock_host_free(m);
                sd_event_unref(e);
        }
        close(busy);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

#define ADD(path, tweak, fn) g_test_add(path, Fixture, tweak, fixture_setup, fn, fixture_teardown)
        ADD("/http-server/get/stream", NULL, test_get_stream);
        ADD("/http-server/get/any-method", NULL, test_get_any_method);
        ADD("/http-server/get/supersede", NULL, test_get_supersede);
        ADD("/http-server/get/keepalive", &keepalive_tweak, test_get_keepalive);
        ADD("/http-server/auth/forbidden", NULL, test_forbidden);
        ADD("/http-server/auth/flood", NULL, test_auth_flood);
        ADD("/http-server/put/bytewise", NULL, test_put_bytewise);
        ADD("/http-server/put/chunk-sizes", NULL, test_put_chunk_sizes);
        ADD("/http-server/put/content-length", NULL, test_put_content_length);
        ADD("/http-server/put/expect-continue", NULL, test_put_expect_continue);
        ADD("/http-server/put/invalid-frame", NULL, test_put_invalid_frame);
        ADD("/http-server/put/timeout", &timeout_tweak, test_put_timeout);
        ADD("/http-server/put/stall-mid-frame", &timeout_tweak, test_put_stall_mid_frame);
        ADD("/http-server/put/congestion", NULL, test_put_congestion);
        ADD("/http-server/head/oversized", NULL, test_head_oversized);
        ADD("/http-server/head/timeout", NULL, test_head_timeout);
        ADD("/http-server/head/endless", NULL, test_head_endless);
        ADD("/http-server/head/folded", NULL, test_head_folded);
        ADD("/http-server/limits/connections-and-puts", &limits_tweak, test_limits);
        ADD("/http-server/instance/disconnect", NULL, test_disconnect);
        ADD("/http-server/instance/free-busy", NULL, test_free_busy);
#undef ADD
        g_test_add_func("/http-server/instance/bind", test_bind);

        return g_test_run();
}
