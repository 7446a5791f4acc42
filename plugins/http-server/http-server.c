/* SPDX-License-Identifier: MIT */
/* The server transport (PROTOCOL.md): one listener per tunnel, served on h2o's libuv flavour embedded in
 * the host's sd-event loop. libh2o 2.2.5 reads a whole request body before it calls a handler, so it
 * cannot serve the streaming PUT: we read the head of every new connection ourselves, keep a PUT for
 * our own streaming reader, and hand everything else to h2o with the head still in the socket buffer. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "http-server.h"

#define LISTEN_BACKLOG 1024
#define SOCKET_BUFFER_SIZE (4 * 1024 * 1024)
#define RATELIMIT_INTERVAL_USEC 1000000u
#define RATELIMIT_BURST 5u
#define FORWARDED_MAX 96u
#define UV_DRAIN_ROUNDS 16

const char RESPONSE_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\n"
                            "Bad Request";
const char RESPONSE_403[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                            "Forbidden";
const char RESPONSE_429[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 17\r\n"
                            "Connection: close\r\n\r\nToo Many Requests";
static const char RESPONSE_431[] = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 31\r\n"
                                   "Connection: close\r\n\r\nRequest Header Fields Too Large";
const char RESPONSE_500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 21\r\n"
                            "Connection: close\r\n\r\nInternal Server Error";

/* ---------------------------------------------------------------------------------------------- */
/* Rate-limited logging */

static void ratelimit_flush(RateLimit *rl) {
        if (rl->suppressed == 0)
                return;
        server_log(rl->server, LOG_WARNING, 0, NULL, "%u more %s", rl->suppressed, rl->what);
        rl->suppressed = 0;
}

static int on_ratelimit_flush(sd_event_source *es, uint64_t usec, void *userdata) {
        ratelimit_flush(userdata);
        return 0;
}

int ratelimit_init(RateLimit *rl, Server *s, const char *what) {
        rl->server = s;
        rl->what = what;
        return sd_event_add_time(s->host->event, &rl->flush, CLOCK_MONOTONIC, 0, 0, on_ratelimit_flush, rl);
}

void ratelimit_done(RateLimit *rl) {
        if (!rl->server)
                return;
        ratelimit_flush(rl);
        rl->flush = sd_event_source_disable_unref(rl->flush);
}

bool ratelimit_allow(RateLimit *rl) {
        uint64_t now = 0;

        (void) sd_event_now(rl->server->host->event, CLOCK_MONOTONIC, &now);
        if (now >= rl->begin + RATELIMIT_INTERVAL_USEC) {
                ratelimit_flush(rl);
                rl->begin = now;
                rl->n = 0;
        }
        if (rl->n < RATELIMIT_BURST) {
                rl->n++;
                return true;
        }
        if (rl->suppressed++ == 0 && rl->flush) {
                /* Sum up the rest when this second is over, even if nothing else happens. */
                (void) sd_event_source_set_time(rl->flush, rl->begin + RATELIMIT_INTERVAL_USEC);
                (void) sd_event_source_set_enabled(rl->flush, SD_EVENT_ONESHOT);
        }
        return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* libuv inside sd-event: the backend fd wakes us, the backend timeout is a time source, and uv_run()
 * never blocks. */

/* The loop's time: one clock read per iteration. */
uint64_t server_now(Server *s) {
        uint64_t now = 0;

        (void) sd_event_now(s->host->event, CLOCK_MONOTONIC, &now);
        return now;
}

void server_kick(Server *s) {
        (void) sd_event_source_set_enabled(s->uv_kick, SD_EVENT_ONESHOT);
}

static void server_arm_uv_timer(Server *s) {
        uint64_t now = 0, deadline;
        int timeout;

        timeout = uv_backend_timeout(&s->loop);
        if (timeout < 0 || !uv_loop_alive(&s->loop)) {
                (void) sd_event_source_set_enabled(s->uv_timer, SD_EVENT_OFF);
                return;
        }
        if (timeout == 0) {
                /* The timer stays as it is: switching it off and on again on every turn of a busy loop
                 * would reprogram sd-event's timerfd each time. Firing early is harmless. */
                server_kick(s);
                return;
        }
        (void) sd_event_now(s->host->event, CLOCK_MONOTONIC, &now);
        deadline = now + (uint64_t) timeout * 1000u;
        /* h2o pushes its I/O timeouts back on every read and write: moving the timer along would reprogram
         * sd-event's timerfd on every turn of a busy loop. An armed timer that fires before the deadline
         * only runs libuv early, which arms it again. */
        if (sd_event_source_get_enabled(s->uv_timer, NULL) > 0 && s->uv_deadline <= deadline)
                return;
        (void) sd_event_source_set_time(s->uv_timer, deadline);
        (void) sd_event_source_set_enabled(s->uv_timer, SD_EVENT_ONESHOT);
        s->uv_deadline = deadline;
}

void server_run(Server *s) {
        (void) uv_run(&s->loop, UV_RUN_NOWAIT);
        server_arm_uv_timer(s);
}

static int on_uv_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        server_run(userdata);
        return 0;
}

static int on_uv_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        server_run(userdata);
        return 0;
}

static int on_uv_kick(sd_event_source *es, void *userdata) {
        server_run(userdata);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Addresses */

static void sockaddr_format(const struct sockaddr *sa, char *buf, size_t size) {
        char ip[INET6_ADDRSTRLEN];

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
                snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
                snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
        } else
                snprintf(buf, size, "(unknown)");
}

void conn_set_forwarded(Conn *c, const char *value, size_t len) {
        char clean[FORWARDED_MAX + 1];
        size_t n = MIN(len, (size_t) FORWARDED_MAX);

        if (!value) {
                snprintf(c->remote, sizeof c->remote, "%s", c->addr);
                return;
        }
        /* The value is the client's word only: keep it printable and short for the logs. */
        for (size_t i = 0; i < n; i++)
                clean[i] = value[i] >= 0x20 && value[i] < 0x7f ? value[i] : '?';
        clean[n] = 0;
        snprintf(c->remote, sizeof c->remote, "%s (x-forwarded-for: %s%s)", c->addr, clean,
                 len > n ? "..." : "");
}

/* ---------------------------------------------------------------------------------------------- */
/* Connections */

static void on_tcp_closed(uv_handle_t *handle) {
        free(handle);
}

/* h2o calls this when it disposes the socket, whoever closed it (us, h2o, or a dead peer). */
static void on_sock_closed(void *data) {
        Conn *c = data;
        Server *s = c->server;

        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;

        if (c->get)
                c->get->conn = NULL;
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->wake);
        free(c->frames);
        free(c);
}

/* Closes a connection we own; C is freed before this returns. */
void conn_close(Conn *c, const char *reason) {
        assert(c->state != CONN_H2O);

        put_detach(c, reason);
        h2o_socket_close(c->sock);
}

int conn_timer_set(Conn *c, uint64_t usec) {
        int r;

        if (usec == 0)
                return sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        r = sd_event_source_set_time_relative(c->timer, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void on_conn_written(h2o_socket_t *sock, const char *err) {
        Conn *c = sock->data;
        h2o_iovec_t next;

        c->writing = false;
        if (err) {
                conn_close(c, err);
                return;
        }
        if (c->queued.base) {
                next = c->queued;
                c->queued = (h2o_iovec_t) {};
                c->writing = true;
                c->close_after_write = c->queued_close;
                h2o_socket_write(sock, &next, 1, on_conn_written);
                return;
        }
        if (c->close_after_write)
                conn_close(c, NULL);
}

/* Writes DATA, which must stay valid (our responses are static), behind any write in flight. */
void conn_write(Conn *c, const char *data, size_t len, bool close_after) {
        h2o_iovec_t buf = h2o_iovec_init(data, len);

        if (close_after) {
                c->state = CONN_CLOSING;
                h2o_socket_read_stop(c->sock);
                (void) conn_timer_set(c, WRITE_TIMEOUT_USEC);
        }
        if (c->writing) {
                c->queued = buf;
                c->queued_close = close_after;
                return;
        }
        c->writing = true;
        c->close_after_write = close_after;
        h2o_socket_write(c->sock, &buf, 1, on_conn_written);
}

void conn_respond_close(Conn *c, const char *response) {
        put_detach(c, NULL);
        conn_write(c, response, strlen(response), true);
}

static int on_conn_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        Server *s = c->server;

        switch (c->state) {
        case CONN_HEAD:
                server_log(s, LOG_DEBUG, 0, NULL,
                           "Closing connection from %s: no complete request head in %u s", c->remote,
                           HEAD_TIMEOUT_USEC / 1000000u);
                conn_close(c, NULL);
                break;
        case CONN_PUT:
                if (server_now(s) < c->read_usec + s->peer_timeout_usec) {
                        /* Data came since the timer was set: wait for the rest of the period. */
                        (void) sd_event_source_set_time(c->timer, c->read_usec + s->peer_timeout_usec);
                        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
                        return 0;
                }
                server_log(s, LOG_WARNING, 0, s->host->peer_name(c->peer),
                           "Closing PUT from %s: nothing received for %.1f s", c->remote,
                           (double) s->peer_timeout_usec / 1e6);
                conn_close(c, "timeout: nothing received");
                break;
        case CONN_CLOSING:
                conn_close(c, NULL);
                break;
        case CONN_H2O:
                break;
        }
        server_kick(s);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Request heads */

static void conn_hand_off(Conn *c) {
        Server *s = c->server;
        h2o_socket_t *sock = c->sock;

        c->state = CONN_H2O;
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        /* h2o parses the head again from sock->input, which still holds every byte read so far. From
         * here on sock->data is h2o's; sock->on_close stays ours. */
        h2o_http1_accept(&s->accept_ctx, sock, c->connected_at);
}

static void conn_head_process(Conn *c) {
        Server *s = c->server;
        h2o_buffer_t *in = c->sock->input;
        TapotunPeer *peer;
        const char *v;
        size_t len;
        int r;

        r = request_head_feed(&c->head, in->bytes, in->size);
        if (r == HEAD_MORE)
                return;
        if (r == -E2BIG) {
                if (ratelimit_allow(&s->reject_log))
                        server_log(s, LOG_WARNING, 0, NULL,
                                   "Rejected request from %s: head larger than %u bytes", c->remote,
                                   HEAD_MAX);
                conn_respond_close(c, RESPONSE_431);
                return;
        }
        if (r == -EPROTO) {
                server_log(s, LOG_DEBUG, 0, NULL, "Rejected PUT from %s: protocol upgrade requested",
                           c->remote);
                conn_respond_close(c, RESPONSE_400);
                return;
        }
        if (r < 0) {
                server_log(s, LOG_DEBUG, 0, NULL, "Bad request head from %s: %s", c->remote,
                           request_head_error(&c->head));
                conn_respond_close(c, RESPONSE_400);
                return;
        }

        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        v = request_head_value(&c->head, in->bytes, &c->head.forwarded, &len);
        conn_set_forwarded(c, v, v ? len : 0);
        if (conn_authorize(c, &peer) < 0)
                return;
        if (r == HEAD_TUNNEL)
                put_start(c, peer);
        else
                conn_hand_off(c);
}

static void on_head_read(h2o_socket_t *sock, const char *err) {
        Conn *c = sock->data;

        if (err) {
                conn_close(c, NULL);
                return;
        }
        conn_head_process(c);
}

static int conn_new(Server *s, uv_tcp_t *tcp) {
        struct sockaddr_storage ss = {};
        int len = sizeof ss, r;
        Conn *c;

        c = calloc(1, sizeof(Conn));
        if (!c)
                return -ENOMEM;
        c->server = s;
        c->state = CONN_HEAD;
        (void) gettimeofday(&c->connected_at, NULL);
        if (uv_tcp_getpeername(tcp, (struct sockaddr *) &ss, &len) < 0)
                ss.ss_family = AF_UNSPEC;
        sockaddr_format((struct sockaddr *) &ss, c->addr, sizeof c->addr);
        conn_set_forwarded(c, NULL, 0);

        r = sd_event_add_time_relative(s->host->event, &c->timer, CLOCK_MONOTONIC, HEAD_TIMEOUT_USEC, 0,
                                       on_conn_timer, c);
        if (r < 0) {
                free(c);
                return r;
        }

        (void) uv_tcp_nodelay(tcp, 1);
        /* From here the h2o socket owns the handle; closing it frees C through on_sock_closed(). */
        c->sock = h2o_uv_socket_create((uv_stream_t *) tcp, on_tcp_closed);
        c->sock->data = c;
        c->sock->on_close.cb = on_sock_closed;
        c->sock->on_close.data = c;

        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;

        request_head_init(&c->head);
        h2o_socket_read_start(c->sock, on_head_read);
        return 0;
}

/* At max_connections, a new connection takes the place of the oldest one still sending its head: clients
 * that trickle heads in (slowloris) cannot lock out those that send theirs at once. Returns whether one
 * was closed. */
static bool server_evict_head(Server *s) {
        Conn *oldest = NULL;

        for (Conn *c = s->conns; c; c = c->next)
                if (c->state == CONN_HEAD)
                        oldest = c;
        if (!oldest)
                return false;
        if (ratelimit_allow(&s->busy_log))
                server_log(s, LOG_WARNING, 0, NULL,
                           "Closed the connection from %s, the oldest without a complete request head, to "
                           "make room for a new one (max_connections)", oldest->remote);
        conn_close(oldest, NULL);
        return true;
}

static void on_accept(uv_stream_t *listener, int status) {
        Server *s = listener->data;
        uv_tcp_t *tcp;
        int r;

        if (status < 0) {
                if (ratelimit_allow(&s->busy_log))
                        server_log(s, LOG_WARNING, status, NULL, "Failed to accept a connection: %m");
                return;
        }

        /* libuv stops accepting until the pending connection is taken, so take it even to drop it. */
        tcp = h2o_mem_alloc(sizeof(uv_tcp_t));
        (void) uv_tcp_init(&s->loop, tcp);
        r = uv_accept(listener, (uv_stream_t *) tcp);
        if (r < 0) {
                uv_close((uv_handle_t *) tcp, on_tcp_closed);
                return;
        }

        if (s->n_conns >= s->max_connections && !server_evict_head(s)) {
                if (ratelimit_allow(&s->busy_log))
                        server_log(s, LOG_WARNING, 0, NULL,
                                   "Refused a connection: %u connections open (max_connections)",
                                   s->n_conns);
                uv_close((uv_handle_t *) tcp, on_tcp_closed);
                return;
        }

        r = conn_new(s, tcp);
        if (r < 0) {
                server_log(s, LOG_ERR, r, NULL, "Failed to set up a connection: %m");
                uv_close((uv_handle_t *) tcp, on_tcp_closed);
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* Listener */

static int listen_address_parse(const char *listen, uint16_t port, struct sockaddr_storage *ret,
                                 socklen_t *ret_len) {
        struct sockaddr_in *in = (struct sockaddr_in *) ret;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ret;
        char buf[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(listen);

        *ret = (struct sockaddr_storage) {};
        if (inet_pton(AF_INET, listen, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                *ret_len = sizeof(*in);
                return 0;
        }
        /* An IPv6 literal, bare or in brackets. */
        if (n >= 2 && n < sizeof buf && listen[0] == '[' && listen[n - 1] == ']') {
                memcpy(buf, listen + 1, n - 2);
                buf[n - 2] = 0;
                listen = buf;
        }
        if (inet_pton(AF_INET6, listen, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                *ret_len = sizeof(*in6);
                return 0;
        }
        return -EINVAL;
}

/* Big buffers for fast links; only with CAP_NET_ADMIN (the FORCE options), since a plain SO_RCVBUF is
 * capped at net.core.rmem_max and would turn off autotuning below its default maximum. Connections
 * inherit them from the listener. */
static void socket_set_buffers(int fd) {
        int v = SOCKET_BUFFER_SIZE;

        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v);
}

static int server_listen(Server *s, const char *name) {
        _cleanup_(closep) int fd = -EBADF;
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        char addr[ADDR_MAX];
        int r, len, one = 1;

        r = s->host->take_listen_fd(s->tunnel);
        if (r >= 0)
                fd = r;
        else if (r != -ENOENT)
                return server_log(s, LOG_ERR, r, name, "Failed to get the listening socket: %m");
        else {
                r = listen_address_parse(s->listen, s->port, &ss, &sslen);
                if (r < 0)
                        return server_log(s, LOG_ERR, r, name, "Invalid listen address \"%s\"", s->listen);
                sockaddr_format((struct sockaddr *) &ss, addr, sizeof addr);

                fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
                if (fd < 0)
                        return server_log(s, LOG_ERR, errno, name, "Failed to create a socket for %s: %m",
                                          addr);
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                        return server_log(s, LOG_ERR, errno, name, "Failed to set SO_REUSEADDR: %m");
                if (bind(fd, (struct sockaddr *) &ss, sslen) < 0)
                        return server_log(s, LOG_ERR, errno, name, "Failed to bind %s: %m", addr);
        }
        socket_set_buffers(fd);

        r = uv_tcp_init(&s->loop, &s->listener);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to set up the listener: %m");
        s->listener_initialized = true;
        s->listener.data = s;
        r = uv_tcp_open(&s->listener, fd);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to set up the listener: %m");
        TAKE_FD(fd);

        r = uv_listen((uv_stream_t *) &s->listener, LISTEN_BACKLOG, on_accept);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to listen: %m");

        len = sizeof ss;
        if (uv_tcp_getsockname(&s->listener, (struct sockaddr *) &ss, &len) < 0)
                ss.ss_family = AF_UNSPEC;
        sockaddr_format((struct sockaddr *) &ss, addr, sizeof addr);
        server_log(s, LOG_INFO, 0, name, "Listening on %s", addr);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Instances */

/* h2o has no call to close a connection it owns, so fail its pending I/O as a vanished peer would: its
 * callback closes the connection, and libuv cancels the write itself when the handle closes. */
void sock_abort_h2o(h2o_socket_t *sock) {
        h2o_socket_cb cb;

        if (sock->_cb.write) {
                cb = sock->_cb.write;
                sock->_cb.write = NULL;
                cb(sock, h2o_socket_error_closed);
        } else if (sock->_cb.read)
                sock->_cb.read(sock, h2o_socket_error_closed);
}

static void server_close_all(Server *s) {
        GetStream *g, *gn;
        Conn *c, *cn;

        /* First end idle downstreams, so that each has a write in flight to fail below. */
        for (g = s->gets; g; g = gn) {
                gn = g->next;
                get_stream_abort(g, "server stopping");
        }
        for (c = s->conns; c; c = cn) {
                cn = c->next;
                if (c->state == CONN_H2O)
                        sock_abort_h2o(c->sock);
                else
                        conn_close(c, "server stopping");
        }
        if (s->conns)
                server_log(s, LOG_ERR, 0, NULL, "%u connections could not be closed", s->n_conns);
}

static void server_free(void *instance) {
        Server *s = instance;

        if (!s)
                return;

        metrics_stop(s->metrics);
        if (s->h2o_ctx_initialized)
                server_close_all(s);
        if (s->listener_initialized)
                uv_close((uv_handle_t *) &s->listener, NULL);
        if (s->h2o_ctx_initialized)
                h2o_context_dispose(&s->h2o_ctx);
        if (s->loop_initialized) {
                /* Closing handles finish in the loop; nothing is active any more, so this ends. */
                for (unsigned i = 0; i < UV_DRAIN_ROUNDS && uv_loop_alive(&s->loop); i++)
                        (void) uv_run(&s->loop, UV_RUN_NOWAIT);
                if (uv_loop_close(&s->loop) < 0)
                        server_log(s, LOG_ERR, 0, NULL, "libuv loop still busy at shutdown, leaking it");
        }
        s->metrics = metrics_free(s->metrics);
        if (s->h2o_config_initialized)
                h2o_config_dispose(&s->h2o_config);

        sd_event_source_disable_unref(s->uv_io);
        sd_event_source_disable_unref(s->uv_timer);
        sd_event_source_disable_unref(s->uv_kick);
        ratelimit_done(&s->reject_log);
        ratelimit_done(&s->busy_log);
        auth_log_done(&s->auth_log);
        free(s->listen);
        free(s);
}

static void server_freep(Server **s) {
        server_free(*s);
}

static void server_setup_h2o(Server *s) {
        h2o_hostconf_t *hostconf;

        h2o_config_init(&s->h2o_config);
        s->h2o_config_initialized = true;
        s->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("tapotun"));
        /* Only version 1 requests: no h2c upgrade, no request bodies worth keeping. */
        s->h2o_config.http1.upgrade_to_http2 = 0;
        s->h2o_config.http1.req_timeout = HEAD_TIMEOUT_USEC / 1000u;
        s->h2o_config.max_request_entity_size = HEAD_MAX;

        hostconf = h2o_config_register_host(&s->h2o_config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
        /* The path does not matter: every request lands on the fallback path. */
        hostconf->fallback_path.error_log.emit_request_errors = 0;
        get_handler_register(s, &hostconf->fallback_path);

        h2o_context_init(&s->h2o_ctx, &s->loop, &s->h2o_config);
        s->h2o_ctx_initialized = true;
        s->accept_ctx = (h2o_accept_ctx_t) {
                .ctx = &s->h2o_ctx,
                .hosts = s->h2o_config.hosts,
        };
}

/* TUNNEL: the tunnel listener; without it, only the metrics listener (a client interface's). */
static int server_new_role(const TapotunHost *host, TapotunTunnel *t, const TapotunIfaceConfig *cfg,
                           bool tunnel, void **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        const char *name;
        int r;

        /* Every service used here, up to take_listen_fd, is in version 1 of the host. */
        if (!host ||
            host->struct_size < offsetof(TapotunHost, take_listen_fd) + sizeof(host->take_listen_fd))
                return -EPROTO;

        s = calloc(1, sizeof(Server));
        if (!s)
                return -ENOMEM;
        s->host = host;
        s->tunnel = t;
        s->port = cfg->port;
        s->keepalive_usec = cfg->keepalive_usec;
        s->peer_timeout_usec = cfg->peer_timeout_usec;
        s->can_lend = host->struct_size > offsetof(TapotunHost, stream_return) && host->stream_lend &&
                      host->stream_return;
        s->max_connections = cfg->max_connections;
        s->max_puts = cfg->max_puts_per_client;
        s->listen = strdup(cfg->listen ?: "127.0.0.1");
        if (!s->listen)
                return -ENOMEM;
        name = cfg->name[0] ? cfg->name : NULL;

        r = ratelimit_init(&s->reject_log, s, "requests rejected");
        if (r >= 0)
                r = ratelimit_init(&s->busy_log, s, "connections refused or closed at max_connections");
        if (r >= 0)
                r = auth_log_init(&s->auth_log, s);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to set up a timer: %m");

        r = uv_loop_init(&s->loop);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to set up a libuv loop: %m");
        s->loop_initialized = true;

        r = sd_event_add_io(host->event, &s->uv_io, uv_backend_fd(&s->loop), EPOLLIN, on_uv_io, s);
        if (r >= 0)
                r = sd_event_add_time(host->event, &s->uv_timer, CLOCK_MONOTONIC, 0, 1000, on_uv_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->uv_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(host->event, &s->uv_kick, on_uv_kick, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->uv_kick, SD_EVENT_OFF);
        /* After the sources that queue libuv work in the same iteration, so one uv_run() serves them. */
        if (r >= 0)
                r = sd_event_source_set_priority(s->uv_kick, SD_EVENT_PRIORITY_NORMAL + 1);
        if (r < 0)
                return server_log(s, LOG_ERR, r, name, "Failed to hook libuv into the event loop: %m");

        if (tunnel) {
                server_setup_h2o(s);
                r = server_listen(s, name);
                if (r < 0)
                        return r;
        }
        r = metrics_start(s, cfg, name);
        if (r < 0)
                return r;

        server_arm_uv_timer(s);
        *ret = TAKE_PTR(s);
        return 0;
}

static int server_new(const TapotunHost *host, TapotunTunnel *t, const TapotunIfaceConfig *cfg, void **ret) {
        return server_new_role(host, t, cfg, true, ret);
}

static int server_metrics_new(const TapotunHost *host, TapotunTunnel *t, const TapotunIfaceConfig *cfg,
                              void **ret) {
        if (!host || host->struct_size < offsetof(TapotunHost, render_health) + sizeof(host->render_health))
                return -EPROTO;
        if (!cfg->metrics_listen)
                return -EINVAL;
        return server_new_role(host, t, cfg, false, ret);
}

static void server_disconnect(void *instance, TapotunPeer *p) {
        Server *s = instance;
        GetStream *g, *gn;
        Conn *c, *cn;

        for (g = s->gets; g; g = gn) {
                gn = g->next;
                if (!p || g->peer == p)
                        get_stream_end(g, "disconnected by the server");
        }
        for (c = s->conns; c; c = cn) {
                cn = c->next;
                if (c->state == CONN_PUT && (!p || c->peer == p))
                        conn_close(c, "disconnected by the server");
        }
        server_kick(s);
}

static int plugin_init(const TapotunHost *host) {
        struct sigaction sa;

        /* libuv writes to sockets with write(2): a client that vanished must not kill the process. */
        if (sigaction(SIGPIPE, NULL, &sa) >= 0 && sa.sa_handler == SIG_DFL)
                (void) signal(SIGPIPE, SIG_IGN);
        return 0;
}

static const TapotunTransportOps server_ops = {
        .version = TAPOTUN_TRANSPORT_OPS_VERSION,
        .instance_new = server_new,
        .instance_free = server_free,
        .disconnect = server_disconnect,
        .metrics_instance_new = server_metrics_new,
};

TAPOTUN_PLUGIN_EXPORT const TapotunPlugin tapotun_plugin = {
        .abi_major = TAPOTUN_PLUGIN_ABI_MAJOR,
        .struct_size = sizeof(TapotunPlugin),
        .name = PLUGIN_NAME,
        .version = PACKAGE_VERSION,
        .kind = TAPOTUN_PLUGIN_SERVER_TRANSPORT,
        .init = plugin_init,
        .ops = &server_ops,
};
