/* SPDX-License-Identifier: MIT */
/* Internals of the http-server transport plugin, shared by its three source files:
 *   http-server.c      instance, libuv-in-sd-event embedding, listener, request heads, hand-off to h2o
 *   http-server-put.c  the streaming PUT reader (our own, since libh2o 2.2.5 buffers request bodies)
 *   http-server-get.c  the h2o handler that serves every other method as the downstream */
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

#define PLUGIN_NAME "http-server"

#define HEAD_MAX (16u * 1024u)                 /* a request head larger than this gets 431 */
#define HEAD_TIMEOUT_USEC (10u * 1000000u)     /* a head must be complete this long after accept */
#define WRITE_TIMEOUT_USEC (10u * 1000000u)    /* a final response must be written within this */
#define GET_BUF_SIZE (256u * 1024u)            /* frames pulled per h2o_send */
#define PUT_READ_SIZE (128u * 1024u)           /* socket read size of a PUT */
#define ADDR_MAX 64                            /* "[ipv6]:port" */
#define REMOTE_MAX 192                         /* ADDR_MAX plus " (x-forwarded-for: ...)" */

typedef struct Server Server;
typedef struct Conn Conn;
typedef struct GetStream GetStream;

/* At most RATELIMIT_BURST messages per second; the rest are counted and summed up in one line. */
typedef struct RateLimit {
        Server *server;
        const char *what;
        uint64_t begin;
        unsigned n;
        unsigned suppressed;
        sd_event_source *flush;
} RateLimit;

typedef enum ConnState {
        CONN_HEAD,    /* reading the request head with our own parser */
        CONN_PUT,     /* streaming a tunnel PUT body into the frame parser */
        CONN_CLOSING, /* writing our final response, then closing */
        CONN_H2O,     /* handed to h2o, which owns it until the socket closes */
} ConnState;

/* A request header found in the head, as offsets into the socket's input buffer (which may move). */
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

        http_parser parser;
        size_t parsed;           /* head bytes of the input buffer fed to the parser */
        HeadPart part;
        Span field, value;       /* the header being parsed */
        Span api_key, forwarded, expect;
        bool head_done;

        /* PUT */
        TapotunPeer *peer;
        bool attached;
        bool paused;             /* reading stopped until the host wakes the stream */
        uint64_t read_usec;      /* CLOCK_MONOTONIC of the last read: the inactivity timer checks it */
        bool message_done;
        FrameParser *frames;
        size_t body_len;         /* decoded body bytes at the start of the input buffer */
        size_t body_fed;         /* ... of which the frame parser has seen this many */
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
};

#define server_log(s, level, error, object, ...)                                                   \
        tapotun_host_log((s)->host, (level), (error), PLUGIN_NAME, (object), __VA_ARGS__)

/* http-server.c */
void server_kick(Server *s);
bool ratelimit_allow(RateLimit *rl);
void conn_set_forwarded(Conn *c, const char *value, size_t len);
void conn_write(Conn *c, const char *data, size_t len, bool close_after);
void conn_respond_close(Conn *c, const char *response);
void conn_close(Conn *c, const char *reason);
int conn_timer_set(Conn *c, uint64_t usec);
uint64_t server_now(Server *s);
const char *span_value(Conn *c, const Span *s, size_t *ret_len);

extern const char RESPONSE_400[];
extern const char RESPONSE_403[];
extern const char RESPONSE_429[];
extern const char RESPONSE_500[];

/* http-server-put.c */
void put_start(Conn *c);
void put_detach(Conn *c, const char *reason);

/* http-server-get.c */
void get_handler_register(Server *s, h2o_pathconf_t *pathconf);
void get_stream_end(GetStream *g, const char *reason);
void get_stream_abort(GetStream *g, const char *reason);
