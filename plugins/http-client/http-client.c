/* SPDX-License-Identifier: MIT */
/* The client transport: a GET carrying frames from the server and a PUT carrying frames to it, both to the
 * configured URL, each kept up on its own with a randomised, doubling backoff (PROTOCOL.md section 5).
 * README.md in this directory lists the configuration it reads. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include <curl/curl.h>
#include <tapotun/plugin.h>

#include "curl-glue.h"
#include "frame.h"
#include "macro.h"

#define PLUGIN_NAME "http-client"

/* curl's receive and send buffers, and the PUT's staging buffer: many frames per read()/send(). */
#define IO_BUFFER_SIZE (1024u * 1024u)
_Static_assert(IO_BUFFER_SIZE >= TAPOTUN_FRAME_MAX, "the staging buffer must hold a whole frame");

#define SOCKET_BUFFER_SIZE (4 * 1024 * 1024)

/* A stream that stayed up this long clears the backoff. */
#define BACKOFF_RESET_USEC (60 * USEC_PER_SEC)

/* Limits on what a server can make us keep of a response head. */
#define RESPONSE_HEADERS_MAX 32u
#define RESPONSE_HEADER_BYTES_MAX 8192u

#define REQUEST_HEADERS_MAX 16u

/* Our own timers need no coalescing slack beyond this. */
#define TIMER_ACCURACY_USEC USEC_PER_MSEC

typedef struct Client Client;

typedef enum TransferKind {
        TRANSFER_GET, /* downstream: frames from the server */
        TRANSFER_PUT, /* upstream: frames to the server */
} TransferKind;

typedef enum TransferEnd {
        TRANSFER_END_CLEAN,     /* ended as HTTP intends (rotation, superseded): reconnect at once */
        TRANSFER_END_FAILED,    /* error, refusal, invalid data or stall: reconnect after the backoff */
        TRANSFER_END_REQUESTED, /* disconnect(): reconnect after the minimum delay */
} TransferEnd;

/* One direction. The object lives as long as the client; each request reuses it, so it is also the
 * stream handle the host sees. */
typedef struct Transfer {
        Client *client;
        TransferKind kind;

        CURL *easy; /* the current request, NULL between requests */
        struct curl_slist *request_headers;
        char errbuf[CURL_ERROR_SIZE];
        char *abort_reason; /* why one of our callbacks failed the request */
        bool refused;       /* abort_reason is a non-2xx answer */
        bool attached;      /* the host knows this stream */
        bool paused;        /* curl holds the request paused for us */
        uint64_t start_usec, attach_usec, progress_usec;

        sd_event_source *retry_source;   /* time: start the next request */
        sd_event_source *stall_source;   /* time: abort a request that makes no progress */
        sd_event_source *unpause_source; /* defer: the host woke us, resume outside curl's callbacks */

        unsigned n_failures; /* consecutive, for the backoff */
        char *failure_key;   /* what the last failure was, so a repeated failure logs at debug only */
        bool up;             /* the last state logged above debug was "connected" */

        /* The head of the final (non-1xx) response. */
        long status;
        char status_text[64];
        TapotunHeader headers[RESPONSE_HEADERS_MAX];
        size_t n_headers;
        char header_buf[RESPONSE_HEADER_BYTES_MAX];
        size_t header_used;
        bool head_done;

        /* GET */
        FrameParser *parser;
        size_t skip; /* bytes at the start of the data curl hands again after a pause, already taken */

        /* PUT */
        uint8_t *staging;                /* whole frames pulled from the host */
        size_t staged_start, staged_end; /* [start, end) not handed to curl yet */
        bool ending;                     /* superseded: end the body once the staged frames are out */
        bool keepalive_due;
        uint64_t data_usec; /* when the body last got bytes */
        sd_event_source *keepalive_source;
} Transfer;

struct Client {
        const TapotunHost *host;
        TapotunPeer *peer;
        char name[16];

        char *server;
        char *token;
        char *ca;
        bool insecure;
        TapotunHttpVersion http_version;
        uint64_t keepalive_usec;
        uint64_t reconnect_min_usec;
        uint64_t reconnect_max_usec;
        uint64_t stall_timeout_usec;

        CurlGlue *glue;
        sd_event_source *disconnect_source; /* defer: disconnect() may be called from within curl */
        Transfer get;
        Transfer put;
};

static const char *const transfer_kind_table[] = {
        [TRANSFER_GET] = "GET",
        [TRANSFER_PUT] = "PUT",
};

#define client_log(c, level, error, ...)                                                                \
        tapotun_host_log((c)->host, (level), (error), PLUGIN_NAME, (c)->name, __VA_ARGS__)
#define transfer_log(t, level, error, fmt, ...)                                                         \
        client_log((t)->client, (level), (error), "%s: " fmt, transfer_kind_table[(t)->kind], ##__VA_ARGS__)

static uint64_t client_now(Client *c) {
        uint64_t now;
        struct timespec ts;

        if (sd_event_now(c->host->event, CLOCK_BOOTTIME, &now) >= 0)
                return now;
        (void) clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t random_u64(void) {
        uint64_t v;
        struct timespec ts;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;
        /* Only spreads reconnects; a weak value is fine when the pool is not ready yet. */
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_nsec * 6364136223846793005ull + (uint64_t) getpid();
}

static int timer_arm(sd_event_source *s, uint64_t usec) {
        int r;

        r = sd_event_source_set_time(s, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* A header value must not end the line curl writes it on. */
static bool header_text_valid(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 && *s != '\t')
                        return false;
        return true;
}

/* Records why the request is being failed from within a curl callback; the first reason wins. With
 * ERROR, %m in FORMAT is its text. */
static void transfer_set_abort_reason(Transfer *t, int error, const char *format, ...) _printf_(3, 4);
static void transfer_set_abort_reason(Transfer *t, int error, const char *format, ...) {
        va_list ap;
        int r;

        if (t->abort_reason)
                return;
        errno = error < 0 ? -error : error;
        va_start(ap, format);
        r = vasprintf(&t->abort_reason, format, ap);
        va_end(ap);
        if (r < 0)
                t->abort_reason = NULL;
        if (!t->abort_reason)
                t->abort_reason = strdup("out of memory");
}

/* ---------------------------------------------------------------------------------------------- */
/* Scheduling. */

static uint64_t transfer_backoff_usec(Transfer *t) {
        Client *c = t->client;
        uint64_t d;

        d = c->reconnect_min_usec + random_u64() % (2 * c->reconnect_min_usec + 1);
        for (unsigned i = 1; i < t->n_failures && d < c->reconnect_max_usec; i++)
                d *= 2;
        return MIN(d, c->reconnect_max_usec);
}

static void transfer_schedule(Transfer *t, uint64_t delay_usec) {
        int r;

        r = timer_arm(t->retry_source, client_now(t->client) + delay_usec);
        if (r < 0)
                transfer_log(t, LOG_ERR, r, "Cannot schedule the next request, giving up: %m");
}

/* PUT: a frame partly handed to curl is lost with its request; whole frames after it go out on the next
 * one, which starts at a frame boundary. */
static void transfer_keep_whole_frames(Transfer *t) {
        size_t b = 0;

        while (b < t->staged_start && b + TAPOTUN_LEN_SIZE <= t->staged_end) {
                size_t len = unaligned_read_le16(t->staging + b);

                b += TAPOTUN_LEN_SIZE + (len > 0 ? TAPOTUN_VNET_HDR_SIZE + len : 0);
        }
        if (b < t->staged_start || b >= t->staged_end) {
                t->staged_start = t->staged_end = 0;
                return;
        }
        memmove(t->staging, t->staging + b, t->staged_end - b);
        t->staged_end -= b;
        t->staged_start = 0;
}

/* Ends the current request, if any, tells the host, and schedules the next request as END says.
 * REASON (may be NULL for a clean end) goes to the log and the host; KEY identifies the kind of failure
 * so that the same failure again logs at debug level only. Never call it from within a curl callback. */
static void transfer_end(Transfer *t, TransferEnd end, const char *reason, const char *key) {
        Client *c = t->client;
        uint64_t now = client_now(c), delay;
        int level;

        curl_glue_remove_and_free(c->glue, TAKE_PTR(t->easy));
        curl_slist_free_all(TAKE_PTR(t->request_headers));
        (void) sd_event_source_set_enabled(t->stall_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(t->unpause_source, SD_EVENT_OFF);
        if (t->keepalive_source)
                (void) sd_event_source_set_enabled(t->keepalive_source, SD_EVENT_OFF);
        t->paused = false;
        if (t->kind == TRANSFER_PUT)
                transfer_keep_whole_frames(t);

        if (t->attached) {
                if (now - t->attach_usec >= BACKOFF_RESET_USEC)
                        t->n_failures = 0;
                c->host->stream_detach(c->peer, t, end == TRANSFER_END_CLEAN ? NULL : reason);
                t->attached = false;
        }

        switch (end) {
        case TRANSFER_END_CLEAN:
                transfer_log(t, LOG_DEBUG, 0, "Stream ended, reconnecting.");
                transfer_schedule(t, 0);
                break;

        case TRANSFER_END_REQUESTED:
                transfer_log(t, LOG_DEBUG, 0, "%s, reconnecting in %.1f s.", reason,
                             (double) c->reconnect_min_usec / USEC_PER_SEC);
                t->up = false;
                t->failure_key = mfree(t->failure_key);
                transfer_schedule(t, c->reconnect_min_usec);
                break;

        case TRANSFER_END_FAILED:
                t->n_failures++;
                delay = transfer_backoff_usec(t);
                if (!t->up && streq_ptr(t->failure_key, key))
                        level = LOG_DEBUG;
                else
                        level = t->refused ? LOG_ERR : LOG_WARNING;
                transfer_log(t, level, 0, "%s; retrying in %.1f s.", reason, (double) delay / USEC_PER_SEC);
                t->up = false;
                free(t->failure_key);
                t->failure_key = strdup(key);
                transfer_schedule(t, delay);
                break;
        }

        /* The wait shows on the bus as the peer's state; a host without peer_event only logs it. */
        if (end != TRANSFER_END_CLEAN && c->host->struct_size > offsetof(TapotunHost, peer_event) &&
            c->host->peer_event)
                c->host->peer_event(c->peer, TAPOTUN_PEER_BACKOFF, reason);
}

static void transfer_fail(Transfer *t, const char *reason) {
        transfer_end(t, TRANSFER_END_FAILED, reason, reason);
}

/* ---------------------------------------------------------------------------------------------- */
/* Streams as the host sees them. */

static void on_wake(void *stream) {
        Transfer *t = stream;

        /* The host may wake us from anywhere, including from within a curl callback: resume later. */
        if (t->easy && t->paused)
                (void) sd_event_source_set_enabled(t->unpause_source, SD_EVENT_ONESHOT);
}

/* From within a curl callback; on failure the abort reason is set. */
static int transfer_attach(Transfer *t) {
        Client *c = t->client;
        char remote[128] = "";
        const char *ip = NULL;
        long port = 0, version, local_port;
        int r;

        if (curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip &&
            curl_easy_getinfo(t->easy, CURLINFO_PRIMARY_PORT, &port) == CURLE_OK)
                snprintf(remote, sizeof remote, strchr(ip, ':') ? "[%s]:%ld" : "%s:%ld", ip, port);
        if (curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK)
                version = 0;
        if (curl_easy_getinfo(t->easy, CURLINFO_LOCAL_PORT, &local_port) != CURLE_OK)
                local_port = 0;

        r = c->host->stream_attach(c->peer, t->kind == TRANSFER_GET ? TAPOTUN_STREAM_RX : TAPOTUN_STREAM_TX,
                                   t, on_wake, remote);
        if (r < 0) {
                transfer_set_abort_reason(t, r, "the host refused the stream: %m");
                return r;
        }
        t->attached = true;
        t->attach_usec = client_now(c);
        /* The HTTP version and the local port show whether HTTP/2 was negotiated and both streams share
         * one connection. A PUT over HTTP/2 has had no response yet, so curl cannot tell its version. */
        if (!t->up)
                transfer_log(t, LOG_INFO, 0, "Connected to %s%s, local port %ld.", remote[0] ? remote : c->server,
                             version == CURL_HTTP_VERSION_2_0   ? " over HTTP/2"
                             : version == CURL_HTTP_VERSION_1_1 ? " over HTTP/1.1"
                             : version == CURL_HTTP_VERSION_1_0 ? " over HTTP/1.0"
                                                                : "",
                             local_port);
        t->up = true;
        t->failure_key = mfree(t->failure_key);
        return 0;
}

/* Resumes a request we paused. Not from within a curl callback: unpausing delivers data at once. */
static void transfer_resume(Transfer *t) {
        CURLcode code;

        if (!t->easy || !t->paused)
                return;
        t->paused = false;
        t->progress_usec = client_now(t->client);
        code = curl_easy_pause(t->easy, CURLPAUSE_CONT);
        if (code != CURLE_OK) {
                transfer_fail(t, t->abort_reason ?: curl_easy_strerror(code));
                return;
        }
        /* curl asked to be run "now": do it in this turn of the loop. T may be gone afterwards. */
        curl_glue_run_now(t->client->glue);
}

static int on_unpause(sd_event_source *s, void *userdata) {
        transfer_resume(userdata);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Response heads. */

/* The end of the final response head: decides whether the stream is usable. */
static int transfer_head_done(Transfer *t) {
        Client *c = t->client;
        int r;

        if (t->status < 200 || t->status > 299 || (t->kind == TRANSFER_GET && t->status != 200)) {
                t->refused = true;
                transfer_set_abort_reason(t, 0, "server refused: %s", t->status_text);
                return -EACCES;
        }
        if (t->kind == TRANSFER_PUT)
                return 0;

        /* Creates or reconfigures the TUN. */
        r = c->host->peer_configure(c->peer, t->headers, t->n_headers);
        if (r < 0) {
                transfer_set_abort_reason(t, r, "unusable tunnel configuration from server: %m");
                return r;
        }
        r = transfer_attach(t);
        if (r < 0)
                return r;
        t->n_failures = 0;
        return 0;
}

static void transfer_head_reset(Transfer *t) {
        t->status = 0;
        t->status_text[0] = '\0';
        t->n_headers = 0;
        t->header_used = 0;
        t->head_done = false;
}

static int transfer_take_status(Transfer *t, const char *line, size_t n) {
        const char *sp = memchr(line, ' ', n);
        size_t k;

        transfer_head_reset(t);
        if (!sp || (size_t) (line + n - sp) < 4) {
                transfer_set_abort_reason(t, 0, "malformed status line from server");
                return -EBADMSG;
        }
        sp++;
        k = MIN((size_t) (line + n - sp), sizeof t->status_text - 1);
        for (size_t i = 0; i < k; i++)
                /* Server text goes to logs: keep it printable. */
                t->status_text[i] = sp[i] >= 0x20 && sp[i] < 0x7f ? sp[i] : '?';
        t->status_text[k] = '\0';
        t->status = strtol(t->status_text, NULL, 10);
        return 0;
}

static int transfer_take_header(Transfer *t, const char *line, size_t n) {
        const char *colon = memchr(line, ':', n), *value;
        size_t name_len, value_len;
        char *p;

        if (!colon)
                return 0; /* not a field: nothing we use */
        name_len = colon - line;
        value = colon + 1;
        value_len = line + n - value;
        while (value_len > 0 && (*value == ' ' || *value == '\t')) {
                value++;
                value_len--;
        }
        while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
                value_len--;

        if (t->n_headers >= RESPONSE_HEADERS_MAX ||
            name_len + value_len + 2 > sizeof t->header_buf - t->header_used) {
                transfer_set_abort_reason(t, 0, "response head from server exceeds %u fields or %u bytes",
                                          RESPONSE_HEADERS_MAX, RESPONSE_HEADER_BYTES_MAX);
                return -E2BIG;
        }

        /* Field names compare case-insensitively: hand them to the host in lowercase. */
        p = t->header_buf + t->header_used;
        for (size_t i = 0; i < name_len; i++)
                p[i] = line[i] >= 'A' && line[i] <= 'Z' ? line[i] - 'A' + 'a' : line[i];
        p[name_len] = '\0';
        memcpy(p + name_len + 1, value, value_len);
        p[name_len + 1 + value_len] = '\0';
        t->headers[t->n_headers++] = (TapotunHeader) { .name = p, .value = p + name_len + 1 };
        t->header_used += name_len + value_len + 2;
        return 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userdata) {
        Transfer *t = userdata;
        size_t n = size * nitems, k = n;
        int r;

        t->progress_usec = client_now(t->client);
        if (t->head_done)
                return n; /* chunked trailers */

        while (k > 0 && (data[k - 1] == '\r' || data[k - 1] == '\n'))
                k--;

        if (k == 0) {
                if (t->status >= 100 && t->status < 200) {
                        /* 100 Continue: the final head follows. */
                        transfer_head_reset(t);
                        return n;
                }
                t->head_done = true;
                r = transfer_head_done(t);
        } else if (k >= 5 && memcmp(data, "HTTP/", 5) == 0)
                r = transfer_take_status(t, data, k);
        else if (t->kind == TRANSFER_GET)
                r = transfer_take_header(t, data, k);
        else
                r = 0; /* the PUT uses no response field */

        return r < 0 ? 0 : n;
}

/* ---------------------------------------------------------------------------------------------- */
/* Bodies. */

static size_t on_get_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;
        Client *c = t->client;
        const uint8_t *data = (const uint8_t *) ptr;
        size_t n = size * nmemb, left = n, skip;

        t->progress_usec = client_now(c);

        skip = MIN(t->skip, left);
        data += skip;
        left -= skip;
        t->skip -= skip;

        while (left > 0) {
                const uint8_t *frame;
                size_t len;
                int r;

                r = frame_parser_next(t->parser, &data, &left, &frame, &len);
                if (r < 0) {
                        transfer_set_abort_reason(t, 0, "invalid frame from server: %s",
                                                  frame_error_to_string(t->parser->error));
                        return 0;
                }
                if (r != FRAME_DATA)
                        continue;

                r = c->host->stream_receive(c->peer, t, frame, len);
                if (r < 0) {
                        transfer_set_abort_reason(t, r, "frame from server refused: %m");
                        return 0;
                }
                if (r > 0) {
                        /* The TUN is congested. curl will hand all of this data again once resumed;
                         * remember how much of it is already taken. */
                        t->skip = n - left;
                        t->paused = true;
                        return CURL_WRITEFUNC_PAUSE;
                }
        }
        return n;
}

static size_t on_put_read(char *buf, size_t size, size_t nitems, void *userdata) {
        Transfer *t = userdata;
        Client *c = t->client;
        size_t n = size * nitems, k;

        /* curl asks for the body once the server accepted the request (100 Continue): the stream is up. */
        if (!t->attached && transfer_attach(t) < 0)
                return CURL_READFUNC_ABORT;

        if (t->staged_start == t->staged_end) {
                /* With room for the largest frame, frames go straight into curl's buffer; the staging
                 * buffer only serves curl's smaller requests (a copy less per byte on the upload). */
                bool direct = n >= TAPOTUN_FRAME_MAX;
                uint8_t *dest = direct ? (uint8_t *) buf : t->staging;
                ssize_t pulled;

                t->staged_start = t->staged_end = 0;
                if (t->ending)
                        return 0;

                pulled = c->host->stream_pull(c->peer, t, dest, direct ? n : IO_BUFFER_SIZE);
                if (pulled == -ESTALE) {
                        /* Superseded: end the body here, at a frame boundary, with nothing left behind. */
                        t->ending = true;
                        return 0;
                }
                if (pulled < 0) {
                        transfer_set_abort_reason(t, (int) pulled, "taking queued frames failed: %m");
                        return CURL_READFUNC_ABORT;
                }
                if (pulled == 0 && t->keepalive_due) {
                        memcpy(dest, frame_keepalive, sizeof frame_keepalive);
                        pulled = sizeof frame_keepalive;
                }
                if (pulled == 0) {
                        t->paused = true;
                        return CURL_READFUNC_PAUSE;
                }
                t->keepalive_due = false;
                if (direct) {
                        t->data_usec = t->progress_usec = client_now(c);
                        return (size_t) pulled;
                }
                t->staged_end = (size_t) pulled;
        }

        k = MIN(n, t->staged_end - t->staged_start);
        memcpy(buf, t->staging + t->staged_start, k);
        t->staged_start += k;
        t->data_usec = t->progress_usec = client_now(c);
        return k;
}

/* The PUT's response body ("OK"): only proof of life. */
static size_t on_put_response(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Transfer *t = userdata;

        t->progress_usec = client_now(t->client);
        return size * nmemb;
}

/* ---------------------------------------------------------------------------------------------- */
/* Timers. */

static int on_stall_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Transfer *t = userdata;
        Client *c = t->client;
        uint64_t now = client_now(c);
        char reason[64];

        /* A GET we paused waits for the TUN, not for the network. */
        if (t->kind == TRANSFER_GET && t->paused)
                t->progress_usec = now;

        if (now < t->progress_usec + c->stall_timeout_usec) {
                (void) timer_arm(s, t->progress_usec + c->stall_timeout_usec);
                return 0;
        }
        snprintf(reason, sizeof reason, "no progress for %.1f s",
                 (double) c->stall_timeout_usec / USEC_PER_SEC);
        transfer_fail(t, reason);
        return 0;
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata) {
        Transfer *t = userdata;
        Client *c = t->client;
        uint64_t now = client_now(c);

        if (now < t->data_usec + c->keepalive_usec) {
                (void) timer_arm(s, t->data_usec + c->keepalive_usec);
                return 0;
        }
        t->keepalive_due = true;
        (void) timer_arm(s, now + c->keepalive_usec);
        transfer_resume(t);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Requests. */

static int transfer_build_headers(Transfer *t) {
        Client *c = t->client;
        TapotunHeader h[REQUEST_HEADERS_MAX];
        size_t n = ELEMENTSOF(h);
        struct curl_slist *l;
        char *line;
        int r;

        if (asprintf(&line, "x-api-key: %s", c->token) < 0)
                return -ENOMEM;
        l = curl_slist_append(NULL, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!l)
                return -ENOMEM;
        t->request_headers = l;

        r = c->host->peer_request_headers(c->peer, h, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!header_text_valid(h[i].name) || !header_text_valid(h[i].value) || strchr(h[i].name, ':'))
                        return -EINVAL;
                /* "name:" would make curl drop the field; "name;" sends it empty. */
                if (h[i].value[0] ? asprintf(&line, "%s: %s", h[i].name, h[i].value) < 0
                                  : asprintf(&line, "%s;", h[i].name) < 0)
                        return -ENOMEM;
                l = curl_slist_append(t->request_headers, line);
                free(line);
                if (!l)
                        return -ENOMEM;
        }
        return 0;
}

/* Big socket buffers for fast links, as the server's: the FORCE options need CAP_NET_ADMIN, which the
 * daemon has; without it the kernel's autotuning stays in charge. */
static int on_sockopt(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        int v = SOCKET_BUFFER_SIZE;

        if (purpose == CURLSOCKTYPE_IPCXN) {
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v);
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v);
        }
        return CURL_SOCKOPT_OK;
}

static void curl_easy_cleanupp(CURL **easy) {
        if (*easy)
                curl_easy_cleanup(*easy);
}

static int transfer_start(Transfer *t) {
        Client *c = t->client;
        _cleanup_(curl_easy_cleanupp) CURL *easy = NULL;
        bool get = t->kind == TRANSFER_GET;
        uint64_t now;
        int r;

        t->abort_reason = mfree(t->abort_reason);
        t->refused = false;
        t->errbuf[0] = '\0';
        t->paused = false;
        transfer_head_reset(t);
        if (get) {
                /* Every request body starts at a frame boundary. */
                frame_parser_reset(t->parser);
                t->skip = 0;
        } else {
                t->ending = false;
                t->keepalive_due = false;
        }

        r = transfer_build_headers(t);
        if (r < 0)
                return r;

        easy = curl_easy_init();
        if (!easy)
                return -ENOMEM;

        /* HTTP/1.1 by contract (PROTOCOL.md section 1) unless `http` asks for HTTP/2, which ALPN may still
         * turn down to HTTP/1.1; no Accept-Encoding: frames do not compress and a decoder would buffer.
         * Over HTTP/1.1 the PUT keeps curl's "Expect: 100-continue": a refused PUT then gets its 403 before
         * curl asks for the body, so no queued frame is pulled into a dead request, and version 1 servers
         * expect it. HTTP/2 has no such wait. */
        if (curl_easy_setopt(easy, CURLOPT_URL, c->server) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PRIVATE, t) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HTTP_VERSION,
                             c->http_version == TAPOTUN_HTTP_2 ? (long) CURL_HTTP_VERSION_2TLS
                                                               : (long) CURL_HTTP_VERSION_1_1) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, on_sockopt) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, (long) IO_BUFFER_SIZE) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->request_headers) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HEADERDATA, t) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, get ? on_get_write : on_put_response) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEDATA, t) != CURLE_OK)
                return -EIO;

        if (!get &&
            (curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, (long) IO_BUFFER_SIZE) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_put_read) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_READDATA, t) != CURLE_OK))
                return -EIO;

        /* The second request waits for the first one's connection and shares it rather than opening its
         * own before the server's ALPN answer is known. */
        if (c->http_version == TAPOTUN_HTTP_2 && curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L) != CURLE_OK)
                return -EIO;

        if (c->ca && curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca) != CURLE_OK)
                return -EIO;
        if (c->insecure &&
            (curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
             curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK))
                return -EIO;

        r = curl_glue_add(c->glue, easy);
        if (r < 0)
                return r;
        t->easy = TAKE_PTR(easy);

        now = client_now(c);
        t->start_usec = t->progress_usec = t->data_usec = now;
        (void) timer_arm(t->stall_source, now + c->stall_timeout_usec);
        if (t->keepalive_source)
                (void) timer_arm(t->keepalive_source, now + c->keepalive_usec);

        transfer_log(t, LOG_DEBUG, 0, "Requesting %s.", c->server);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Transfer *t = userdata;
        char reason[128];
        int r;

        r = transfer_start(t);
        if (r < 0) {
                errno = -r;
                snprintf(reason, sizeof reason, "cannot start a request: %m");
                transfer_fail(t, reason);
        }
        return 0;
}

static void on_transfer_finished(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Client *c = userdata;
        Transfer *t = NULL;
        char reason[CURL_ERROR_SIZE + 64], key[32];

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t) != CURLE_OK || !t)
                return;

        if (t->abort_reason) {
                /* A refusal keyed by its status only, so it logs once however its text varies. */
                snprintf(reason, sizeof reason, "%s", t->abort_reason);
                if (t->refused)
                        snprintf(key, sizeof key, "status %ld", t->status);
                transfer_end(t, TRANSFER_END_FAILED, reason, t->refused ? key : reason);
                return;
        }
        if (result != CURLE_OK) {
                /* curl's message varies (timings, addresses); its code says what failed. */
                snprintf(reason, sizeof reason, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(result));
                snprintf(key, sizeof key, "curl %d", (int) result);
                transfer_end(t, TRANSFER_END_FAILED, reason, key);
                return;
        }
        if (!t->head_done) {
                transfer_fail(t, "server sent no response");
                return;
        }
        if (t->kind == TRANSFER_GET && t->parser->have > 0) {
                transfer_fail(t, "stream ended inside a frame");
                return;
        }
        /* A stream that ends at once would otherwise be reopened in a tight loop (two clients sharing a
         * token take the GET from each other). */
        if (client_now(c) - t->start_usec < c->reconnect_min_usec) {
                transfer_fail(t, "stream ended right after it started");
                return;
        }
        transfer_end(t, TRANSFER_END_CLEAN, NULL, NULL);
}

static int on_disconnect(sd_event_source *s, void *userdata) {
        Client *c = userdata;

        client_log(c, LOG_INFO, 0, "Disconnecting on request.");
        transfer_end(&c->get, TRANSFER_END_REQUESTED, "disconnected on request", NULL);
        transfer_end(&c->put, TRANSFER_END_REQUESTED, "disconnected on request", NULL);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Instances. */

static int transfer_init(Transfer *t, Client *c, TransferKind kind) {
        sd_event *e = c->host->event;
        int r;

        *t = (Transfer) {
                .client = c,
                .kind = kind,
        };

        if (kind == TRANSFER_GET) {
                t->parser = malloc(sizeof(FrameParser));
                if (!t->parser)
                        return -ENOMEM;
                frame_parser_reset(t->parser);
        } else {
                t->staging = malloc(IO_BUFFER_SIZE);
                if (!t->staging)
                        return -ENOMEM;
                if (c->keepalive_usec > 0) {
                        r = sd_event_add_time(e, &t->keepalive_source, CLOCK_BOOTTIME, 0, TIMER_ACCURACY_USEC,
                                              on_keepalive, t);
                        if (r < 0)
                                return r;
                        r = sd_event_source_set_enabled(t->keepalive_source, SD_EVENT_OFF);
                        if (r < 0)
                                return r;
                }
        }

        r = sd_event_add_time(e, &t->retry_source, CLOCK_BOOTTIME, 0, TIMER_ACCURACY_USEC, on_retry, t);
        if (r < 0)
                return r;
        r = sd_event_add_time(e, &t->stall_source, CLOCK_BOOTTIME, 0, TIMER_ACCURACY_USEC, on_stall_check, t);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(t->stall_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = sd_event_add_defer(e, &t->unpause_source, on_unpause, t);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(t->unpause_source, SD_EVENT_OFF);
        if (r < 0)
                return r;

        /* The retry timer starts armed at time 0: the first request goes out on the first iteration. */
        return sd_event_source_set_enabled(t->retry_source, SD_EVENT_ONESHOT);
}

static void transfer_done(Transfer *t) {
        Client *c = t->client;

        if (!c)
                return;
        curl_glue_remove_and_free(c->glue, TAKE_PTR(t->easy));
        curl_slist_free_all(t->request_headers);
        if (t->attached)
                c->host->stream_detach(c->peer, t, "interface stopped");
        sd_event_source_disable_unref(t->retry_source);
        sd_event_source_disable_unref(t->stall_source);
        sd_event_source_disable_unref(t->unpause_source);
        sd_event_source_disable_unref(t->keepalive_source);
        free(t->abort_reason);
        free(t->failure_key);
        free(t->parser);
        free(t->staging);
}

static void client_free(void *instance) {
        Client *c = instance;

        if (!c)
                return;
        transfer_done(&c->get);
        transfer_done(&c->put);
        curl_glue_free(c->glue);
        sd_event_source_disable_unref(c->disconnect_source);
        free(c->server);
        if (c->token)
                explicit_bzero(c->token, strlen(c->token));
        free(c->token);
        free(c->ca);
        free(c);
}

static inline void client_freep(Client **c) {
        client_free(*c);
}

static int client_new(const TapotunHost *host, TapotunTunnel *tunnel, const TapotunIfaceConfig *cfg,
                      void **ret) {
        _cleanup_(client_freep) Client *c = NULL;
        int r;

        if (!cfg->server || !cfg->token)
                return tapotun_host_log(host, LOG_ERR, EINVAL, PLUGIN_NAME, cfg->name,
                                        "Interface has no server URL or no token.");
        if (!header_text_valid(cfg->token))
                return tapotun_host_log(host, LOG_ERR, EINVAL, PLUGIN_NAME, cfg->name,
                                        "Token contains control characters.");

        c = calloc(1, sizeof(Client));
        if (!c)
                return -ENOMEM;
        c->host = host;
        memcpy(c->name, cfg->name, sizeof c->name);
        c->name[sizeof c->name - 1] = '\0';
        c->peer = host->tunnel_peer(tunnel, 0);
        if (!c->peer)
                return client_log(c, LOG_ERR, ENXIO, "The host has no peer for this interface.");

        c->insecure = cfg->insecure;
        c->http_version = cfg->http_version;
        c->keepalive_usec = cfg->keepalive_usec;
        c->reconnect_min_usec = cfg->reconnect_min_usec;
        c->reconnect_max_usec = MAX(cfg->reconnect_max_usec, cfg->reconnect_min_usec);
        c->stall_timeout_usec = cfg->stall_timeout_usec;
        c->server = strdup(cfg->server);
        c->token = strdup(cfg->token);
        if (!c->server || !c->token)
                return -ENOMEM;
        if (cfg->ca) {
                c->ca = strdup(cfg->ca);
                if (!c->ca)
                        return -ENOMEM;
        }

        r = curl_glue_new(host->event, on_transfer_finished, c, &c->glue);
        if (r < 0)
                return client_log(c, LOG_ERR, r, "Cannot set up libcurl: %m");

        r = sd_event_add_defer(host->event, &c->disconnect_source, on_disconnect, c);
        if (r < 0)
                return client_log(c, LOG_ERR, r, "Cannot set up the event loop: %m");
        r = sd_event_source_set_enabled(c->disconnect_source, SD_EVENT_OFF);
        if (r < 0)
                return client_log(c, LOG_ERR, r, "Cannot set up the event loop: %m");

        r = transfer_init(&c->get, c, TRANSFER_GET);
        if (r >= 0)
                r = transfer_init(&c->put, c, TRANSFER_PUT);
        if (r < 0)
                return client_log(c, LOG_ERR, r, "Cannot set up the streams: %m");

        if (c->insecure)
                client_log(c, LOG_WARNING, 0,
                           "TLS verification is off ('insecure'): the server's identity is not checked.");

        *ret = TAKE_PTR(c);
        return 0;
}

static void client_disconnect(void *instance, TapotunPeer *p) {
        Client *c = instance;

        if (p && p != c->peer)
                return;
        (void) sd_event_source_set_enabled(c->disconnect_source, SD_EVENT_ONESHOT);
}

static int plugin_init(const TapotunHost *host) {
        CURLcode code;

        code = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (code != CURLE_OK)
                return tapotun_host_log(host, LOG_ERR, EIO, PLUGIN_NAME, NULL, "Cannot initialise libcurl: %s",
                                        curl_easy_strerror(code));
        return 0;
}

static void plugin_done(void) {
        curl_global_cleanup();
}

static const TapotunTransportOps client_ops = {
        .version = TAPOTUN_TRANSPORT_OPS_VERSION,
        .instance_new = client_new,
        .instance_free = client_free,
        .disconnect = client_disconnect,
};

TAPOTUN_PLUGIN_EXPORT const TapotunPlugin tapotun_plugin = {
        .abi_major = TAPOTUN_PLUGIN_ABI_MAJOR,
        .struct_size = sizeof(TapotunPlugin),
        .name = PLUGIN_NAME,
        .version = PACKAGE_VERSION,
        .kind = TAPOTUN_PLUGIN_CLIENT_TRANSPORT,
        .init = plugin_init,
        .done = plugin_done,
        .ops = &client_ops,
};
