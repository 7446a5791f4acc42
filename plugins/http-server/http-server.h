/* SPDX-License-Identifier: MIT */
/* Internals of the http-server transport plugin, shared by its source files:
 *   http-server.c      instance, libuv-in-sd-event embedding, listener, request heads, hand-off to h2o
 *   http-server-put.c  the streaming PUT reader (our own, since libh2o 2.2.5 buffers request bodies)
 *   http-server-get.c  the h2o handler that serves every other method as the downstream
 *   http-server-metrics.c  the metrics listener (/metrics, /healthz) on an address of its own
 *   http-server-auth.c  authorisation of every complete request head, the failed-attempt log
 *   request-head.c     request heads and PUT bodies, bytes in and decisions out (fuzzed on its own) */
#pragma once

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>
#include <syslog.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <systemd/sd-event.h>
#include <tapotun/plugin.h>

#include "frame.h"
#include "macro.h"
#include "request-head.h"

#define PLUGIN_NAME "http-server"

#define HEAD_TIMEOUT_USEC (10u * 1000000u)     /* a head must be complete this long after accept */
#define WRITE_TIMEOUT_USEC (10u * 1000000u)    /* a final response must be written within this */
/* Frames pulled or lent per h2o_send. What h2o has been given cannot be taken back: a GET that stops
 * reading gets this much late when it reads again, while what still waits in the queue expires (stale).
 * A quarter of the default queue keeps that small, and is still four 64 KiB super-packets per write. */
#define GET_BUF_SIZE (256u * 1024u)
#define GET_IOV_MAX 64u                        /* pieces of frames lent per h2o_send */
#define PUT_READ_SIZE (512u * 1024u)          /* socket read size of a PUT */
#define ADDR_MAX 64                            /* "[ipv6]:port" */
#define REMOTE_MAX 192                         /* ADDR_MAX plus " (x-forwarded-for: ...)" */

typedef struct Server Server;
typedef struct Conn Conn;
typedef struct GetStream GetStream;
typedef struct Metrics Metrics;

/* At most RATELIMIT_BURST messages per second; the rest are counted and summed up in one line. */
typedef struct RateLimit {
        Server *server;
        const char *what;
        uint64_t begin;
        unsigned n;
        unsigned suppressed;
        sd_event_source *flush;
} RateLimit;

/* Failed authentications: the first AUTH_LOG_BURST of an AUTH_LOG_INTERVAL_USEC are logged one by one,
 * the rest only counted, per source address (AUTH_LOG_SOURCES of them, then "other addresses"), and
 * summed up when the interval ends. Fixed size: a flood of attempts costs no memory. */
#define AUTH_LOG_BURST 3u
#define AUTH_LOG_INTERVAL_USEC (10u * 1000000u)
#define AUTH_LOG_SOURCES 8u

typedef struct AuthSource {
        char name[REMOTE_MAX]; /* the address without its port, plus any X-Forwarded-For */
        unsigned n;
} AuthSource;

typedef struct AuthLog {
        Server *server;
        uint64_t begin;          /* CLOCK_MONOTONIC start of the interval; 0: none running */
        unsigned n;              /* failures in the interval */
        unsigned logged;         /* of which logged one by one */
        AuthSource sources[AUTH_LOG_SOURCES];
        unsigned n_sources;
        unsigned other;          /* failures from sources beyond the table */
        sd_event_source *timer;  /* the end of the interval, armed once something was not logged */
} AuthLog;

typedef enum ConnState {
        CONN_HEAD,    /* reading the request head with our own parser */
        CONN_PUT,     /* streaming a tunnel PUT body into the frame parser */
        CONN_CLOSING, /* writing our final response, then closing */
        CONN_H2O,     /* handed to h2o, which owns it until the socket closes */
} ConnState;

/* The downstream of one GET: lives in the h2o request's memory pool, so h2o disposes it with the request. */
struct GetStream {
        Server *server;
        GetStream *prev, *next;
        Conn *conn;
        h2o_req_t *req;
        h2o_generator_t generator;
        TapotunPeer *peer;
        bool attached;
        bool in_flight;          /* an h2o_send() is being written; proceed() continues */
        bool lent;               /* what is being written was lent by the host (stream_lend) */
        bool ended;              /* the end was sent or is due after the write in flight */
        const char *end_reason;  /* for stream_detach(), NULL for a clean end */
        uint8_t *buf;
        sd_event_source *wake;
        sd_event_source *keepalive;
        uint64_t sent_usec;       /* CLOCK_MONOTONIC of the last send: the keepalive timer checks it */
        sd_event_source *hangup;  /* the client closed its side */
};

/* Every accepted TCP connection, from accept until its socket closes (also while h2o owns it, so that
 * max_connections counts it and instance_free can close it). */
struct Conn {
        Server *server;
        Conn *prev, *next;
        h2o_socket_t *sock;
        struct timeval connected_at;
        ConnState state;
        char addr[ADDR_MAX];     /* "ip:port" of the TCP peer */
        char remote[REMOTE_MAX]; /* addr, plus the X-Forwarded-For value when there is one */
        sd_event_source *timer;  /* head deadline, PUT inactivity, or final write deadline */

        RequestHead head;        /* the head, then the body of a PUT */

        /* PUT */
        TapotunPeer *peer;
        bool attached;
        bool paused;             /* reading stopped until the host wakes the stream */
        uint64_t read_usec;      /* CLOCK_MONOTONIC of the last read: the inactivity timer checks it */
        bool message_done;
        FrameParser *frames;
        size_t body_len;         /* the decoded body in the input buffer ends here */
        size_t body_fed;         /* ... and the frame parser has seen it up to here */
        sd_event_source *wake;

        /* our own responses: one write in flight, one queued behind it */
        bool writing;
        bool close_after_write;
        h2o_iovec_t queued;
        bool queued_close;

        /* the downstream stream on a connection h2o owns */
        GetStream *get;
};

struct Server {
        const TapotunHost *host;
        TapotunTunnel *tunnel;
        char *listen;
        uint16_t port;
        uint64_t keepalive_usec;
        uint64_t peer_timeout_usec;
        bool can_lend;           /* the host has stream_lend: the downstream is sent without a copy */
        uint32_t max_connections;
        uint32_t max_puts;

        uv_loop_t loop;
        bool loop_initialized;
        uv_tcp_t listener;
        bool listener_initialized;
        h2o_globalconf_t h2o_config;
        bool h2o_config_initialized;
        h2o_context_t h2o_ctx;
        bool h2o_ctx_initialized;
        h2o_accept_ctx_t accept_ctx;

        sd_event_source *uv_io;    /* uv_backend_fd() */
        sd_event_source *uv_timer; /* uv_backend_timeout() */
        uint64_t uv_deadline;      /* when uv_timer fires, while it is armed */
        sd_event_source *uv_kick;  /* runs libuv after we queued work for it outside uv_run() */

        Conn *conns;
        unsigned n_conns;
        GetStream *gets;

        RateLimit reject_log;
        RateLimit busy_log;
        AuthLog auth_log;

        Metrics *metrics; /* the metrics listener, NULL when not configured */
};

#define server_log(s, level, error, object, ...)                                                   \
        tapotun_host_log((s)->host, (level), (error), PLUGIN_NAME, (object), __VA_ARGS__)

/* http-server.c */
/* Runs libuv on the next turn of the loop (server_kick), or now: only from the top of an sd-event callback,
 * never from within libuv's or the host's (server_run). */
void server_kick(Server *s);
void server_run(Server *s);
int ratelimit_init(RateLimit *rl, Server *s, const char *what);
void ratelimit_done(RateLimit *rl);
bool ratelimit_allow(RateLimit *rl);
void conn_set_forwarded(Conn *c, const char *value, size_t len);
void conn_write(Conn *c, const char *data, size_t len, bool close_after);
void conn_respond_close(Conn *c, const char *response);
void conn_close(Conn *c, const char *reason);
void sock_abort_h2o(h2o_socket_t *sock);
int conn_timer_set(Conn *c, uint64_t usec);
uint64_t server_now(Server *s);

extern const char RESPONSE_400[];
extern const char RESPONSE_403[];
extern const char RESPONSE_429[];
extern const char RESPONSE_500[];

/* http-server-auth.c */
int auth_log_init(AuthLog *l, Server *s);
void auth_log_done(AuthLog *l);
/* The client whose x-api-key the head carries. Otherwise the connection is answered (403, or 500
 * when the host failed) and closing: -EACCES, or the host's error. */
int conn_authorize(Conn *c, TapotunPeer **ret);

/* http-server-put.c */
void put_start(Conn *c, TapotunPeer *peer);
void put_detach(Conn *c, const char *reason);

/* http-server-metrics.c: metrics_start() is a no-op without `metrics`; metrics_stop() closes what runs in
 * the loop, before the loop is drained, and metrics_free() releases the rest afterwards. */
int metrics_start(Server *s, const TapotunIfaceConfig *cfg, const char *name);
void metrics_stop(Metrics *m);
Metrics *metrics_free(Metrics *m);

/* http-server-get.c */
void get_handler_register(Server *s, h2o_pathconf_t *pathconf);
void get_stream_end(GetStream *g, const char *reason);
void get_stream_abort(GetStream *g, const char *reason);
