/* SPDX-License-Identifier: MIT */
/* The metrics listener (`metrics`): GET /metrics (Prometheus text format) and GET /healthz on an address of
 * their own, never on the tunnel port. Plain h2o with a configuration and context of its own in the
 * instance's libuv loop: no request to the tunnel port can reach these handlers, nor the other way round.
 * The texts come from the host, which owns the peers and their counters. */
#include <errno.h>
#include <stdio.h>

#include "http-server.h"

#define METRICS_CONNECTIONS_MAX 16u
#define METRICS_BACKLOG 16
#define METRICS_REQUEST_BODY_MAX 1024u

typedef struct MetricsConn MetricsConn;

struct Metrics {
        Server *server;
        char addr[ADDR_MAX]; /* "127.0.0.1:9586", "[::1]:9586": for the logs */

        uv_tcp_t listener;
        bool listener_initialized;
        h2o_globalconf_t config;
        bool config_initialized;
        h2o_context_t ctx;
        bool ctx_initialized;
        h2o_accept_ctx_t accept_ctx;

        MetricsConn *conns;
        unsigned n_conns;
        RateLimit refuse_log;
};

/* Every accepted connection until its socket closes, so that metrics_stop() can close it. */
struct MetricsConn {
        Metrics *metrics;
        MetricsConn *prev, *next;
        h2o_socket_t *sock;
};

typedef struct MetricsHandler {
        h2o_handler_t super;
        Metrics *metrics;
} MetricsHandler;

static int respond(h2o_req_t *req, int status, const char *reason, const char *content_type,
                   const char *body, size_t len) {
        req->res.status = status;
        req->res.reason = reason;
        req->res.content_length = len;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
        h2o_send_inline(req, body, len);
        return 0;
}

#define respond_text(req, status, reason, body)                                                          \
        respond((req), (status), (reason), "text/plain; charset=utf-8", (body), strlen(body))

static int on_metrics_req(h2o_handler_t *self, h2o_req_t *req) {
        Metrics *m = ((MetricsHandler *) self)->metrics;
        const TapotunHost *host = m->server->host;
        _cleanup_free_ char *text = NULL;
        bool metrics;
        size_t len = 0;
        int r;

        if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/metrics")))
                metrics = true;
        else if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/healthz")))
                metrics = false;
        else
                return respond_text(req, 404, "Not Found", "Not Found\n");

        if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
            !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
                h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                               H2O_STRLIT("GET, HEAD"));
                return respond_text(req, 405, "Method Not Allowed", "Method Not Allowed\n");
        }

        r = metrics ? host->render_metrics(m->server->tunnel, &text, &len)
                    : host->render_health(m->server->tunnel, &text, &len);
        if (r < 0) {
                server_log(m->server, LOG_ERR, r, NULL, "Failed to render %s: %m",
                           metrics ? "metrics" : "health");
                return respond_text(req, 500, "Internal Server Error", "Internal Server Error\n");
        }
        if (metrics)
                return respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len);
        if (r > 0)
                return respond(req, 503, "Service Unavailable", "text/plain; charset=utf-8", text, len);
        return respond(req, 200, "OK", "text/plain; charset=utf-8", text, len);
}

static void on_metrics_tcp_closed(uv_handle_t *handle) {
        free(handle);
}

static void on_metrics_sock_closed(void *data) {
        MetricsConn *c = data;
        Metrics *m = c->metrics;

        if (c->prev)
                c->prev->next = c->next;
        else
                m->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_conns--;
        free(c);
}

static void on_metrics_accept(uv_stream_t *listener, int status) {
        Metrics *m = listener->data;
        Server *s = m->server;
        struct timeval now;
        MetricsConn *c;
        uv_tcp_t *tcp;

        if (status < 0) {
                if (ratelimit_allow(&m->refuse_log))
                        server_log(s, LOG_WARNING, status, NULL,
                                   "Failed to accept a metrics connection: %m");
                return;
        }

        /* libuv stops accepting until the pending connection is taken, so take it even to drop it. */
        tcp = h2o_mem_alloc(sizeof(uv_tcp_t));
        (void) uv_tcp_init(listener->loop, tcp);
        if (uv_accept(listener, (uv_stream_t *) tcp) < 0) {
                uv_close((uv_handle_t *) tcp, on_metrics_tcp_closed);
                return;
        }
        c = m->n_conns < METRICS_CONNECTIONS_MAX ? calloc(1, sizeof(MetricsConn)) : NULL;
        if (!c) {
                if (ratelimit_allow(&m->refuse_log))
                        server_log(s, LOG_WARNING, 0, NULL, "Refused a metrics connection: %u open",
                                   m->n_conns);
                uv_close((uv_handle_t *) tcp, on_metrics_tcp_closed);
                return;
        }

        c->metrics = m;
        c->sock = h2o_uv_socket_create((uv_stream_t *) tcp, on_metrics_tcp_closed);
        c->sock->on_close.cb = on_metrics_sock_closed;
        c->sock->on_close.data = c;
        c->next = m->conns;
        if (m->conns)
                m->conns->prev = c;
        m->conns = c;
        m->n_conns++;

        (void) gettimeofday(&now, NULL);
        h2o_http1_accept(&m->accept_ctx, c->sock, now);
}

static void metrics_setup_h2o(Metrics *m) {
        h2o_hostconf_t *hostconf;
        MetricsHandler *h;

        h2o_config_init(&m->config);
        m->config_initialized = true;
        m->config.server_name = h2o_iovec_init(H2O_STRLIT("tapotun"));
        m->config.http1.upgrade_to_http2 = 0;
        m->config.http1.req_timeout = HEAD_TIMEOUT_USEC / 1000u;
        m->config.max_request_entity_size = METRICS_REQUEST_BODY_MAX;

        hostconf = h2o_config_register_host(&m->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
        hostconf->fallback_path.error_log.emit_request_errors = 0;
        h = (MetricsHandler *) h2o_create_handler(&hostconf->fallback_path, sizeof(MetricsHandler));
        h->super.on_req = on_metrics_req;
        h->metrics = m;

        h2o_context_init(&m->ctx, &m->server->loop, &m->config);
        m->ctx_initialized = true;
        m->accept_ctx = (h2o_accept_ctx_t) {
                .ctx = &m->ctx,
                .hosts = m->config.hosts,
        };
}

static int metrics_listen(Metrics *m, const char *listen, uint16_t port, const char *name) {
        Server *s = m->server;
        struct sockaddr_storage ss = {};
        unsigned flags = 0;
        int r;

        if (uv_ip4_addr(listen, port, (struct sockaddr_in *) &ss) < 0) {
                if (uv_ip6_addr(listen, port, (struct sockaddr_in6 *) &ss) < 0)
                        return server_log(s, LOG_ERR, EINVAL, name, "Invalid metrics listen address \"%s\"",
                                          listen);
                /* IPv6 only, as the configuration check assumes: "[::]:9586" leaves 0.0.0.0:9586 free. */
                flags = UV_TCP_IPV6ONLY;
        }

        r = uv_tcp_init(&s->loop, &m->listener);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to set up the metrics listener: %m");
        m->listener_initialized = true;
        m->listener.data = m;

        /* libuv may report a failed bind only when listening starts. */
        r = uv_tcp_bind(&m->listener, (const struct sockaddr *) &ss, flags);
        if (r >= 0)
                r = uv_listen((uv_stream_t *) &m->listener, METRICS_BACKLOG, on_metrics_accept);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to listen for metrics on %s: %m", m->addr);

        server_log(s, LOG_INFO, 0, name, "Serving metrics on http://%s/metrics and /healthz", m->addr);
        return 0;
}

int metrics_start(Server *s, const TapotunIfaceConfig *cfg, const char *name) {
        Metrics *m;
        int r;

        /* A host without the render services has no metrics fields in its configuration either. */
        if (s->host->struct_size < offsetof(TapotunHost, render_health) + sizeof(s->host->render_health) ||
            !cfg->metrics_listen)
                return 0;

        m = calloc(1, sizeof(Metrics));
        if (!m)
                return -ENOMEM;
        m->server = s;
        s->metrics = m;
        (void) snprintf(m->addr, sizeof m->addr, strchr(cfg->metrics_listen, ':') ? "[%s]:%u" : "%s:%u",
                        cfg->metrics_listen, cfg->metrics_port);
        r = ratelimit_init(&m->refuse_log, s, "metrics connections refused");
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to set up a timer: %m");

        metrics_setup_h2o(m);
        return metrics_listen(m, cfg->metrics_listen, cfg->metrics_port, name);
}

void metrics_stop(Metrics *m) {
        MetricsConn *c, *cn;

        if (!m)
                return;
        for (c = m->conns; c; c = cn) {
                cn = c->next;
                sock_abort_h2o(c->sock);
        }
        if (m->conns)
                server_log(m->server, LOG_ERR, 0, NULL, "%u metrics connections could not be closed",
                           m->n_conns);
        if (m->listener_initialized)
                uv_close((uv_handle_t *) &m->listener, NULL);
        if (m->ctx_initialized)
                h2o_context_dispose(&m->ctx);
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        if (m->config_initialized)
                h2o_config_dispose(&m->config);
        ratelimit_done(&m->refuse_log);
        return mfree(m);
}
