/* SPDX-License-Identifier: MIT */
/* loadclients: many authenticated, idle tapotun clients against one server, to measure what a client
 * costs the server (bench/run.sh, kind "memory").
 *
 *     loadclients config N PORT          a server configuration with N clients (tokens "load-0" ...)
 *     loadclients hold N ADDR PORT SECS  opens a GET and a PUT for each of the N clients, prints "ready"
 *                                        once every GET has its 200 head, and holds them SECS seconds
 *
 * Each GET is read and discarded (keepalive frames); each PUT sends a keepalive frame every 30 s, so no
 * stream times out. Exits non-zero when a request is refused or a connection fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define KEEPALIVE_SEC 30
#define CONNECT_BATCH 64 /* connections opened per loop turn, so the server's backlog never overflows */

typedef struct Stream {
        int fd;
        bool put;
        bool connected;
        bool head_done;
        char head[512];
        size_t head_len;
} Stream;

static char request_buf[2][256];

static uint64_t now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec;
}

static int config(unsigned n, unsigned port) {
        printf("[{\"name\":\"bl0\",\"port\":%u,\"listen\":\"0.0.0.0\",\"net\":\"10.0.0.1/16\",\n"
               "  \"max_connections\":%u,\"clients\":[\n",
               port, 2 * n + 64);
        for (unsigned i = 0; i < n; i++) {
                unsigned char md[SHA_DIGEST_LENGTH];
                char token[32];

                snprintf(token, sizeof token, "load-%u", i);
                SHA1((const unsigned char *) token, strlen(token), md);
                printf("    {\"name\":\"c%u\",\"token\":\"", i);
                for (size_t k = 0; k < sizeof md; k++)
                        printf("%02x", md[k]);
                printf("\",\"ip\":\"10.0.%u.%u\"}%s\n", (i + 2) / 256, (i + 2) % 256, i + 1 < n ? "," : "");
        }
        printf("]}]\n");
        return 0;
}

static const char *request(const Stream *s, unsigned client, size_t *ret_len) {
        char *b = request_buf[s->put];
        int k;

        if (s->put)
                k = snprintf(b, sizeof request_buf[0],
                             "PUT / HTTP/1.1\r\nHost: bench\r\nx-api-key: load-%u\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n",
                             client);
        else
                k = snprintf(b, sizeof request_buf[0],
                             "GET / HTTP/1.1\r\nHost: bench\r\nx-api-key: load-%u\r\n"
                             "x-tun-offload: csum,tso4,tso6,ecn\r\n\r\n",
                             client);
        *ret_len = (size_t) k;
        return b;
}

static int stream_open(int ep, Stream *s, const struct sockaddr_in *a) {
        struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = s };

        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0)
                return -errno;
        if (connect(s->fd, (const struct sockaddr *) a, sizeof *a) < 0 && errno != EINPROGRESS)
                return -errno;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
                return -errno;
        return 0;
}

/* Returns 1 when the GET's response head just completed, 0 when nothing changed, < 0 on failure. */
static int stream_event(int ep, Stream *s, unsigned client, uint32_t events) {
        char buf[16384];
        ssize_t n;

        if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN))
                return -ECONNRESET;
        if ((events & EPOLLOUT) && !s->connected) {
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
                size_t len;
                const char *req = request(s, client, &len);

                s->connected = true;
                n = write(s->fd, req, len);
                if (n != (ssize_t) len)
                        return -EIO;
                if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) < 0)
                        return -errno;
        }
        if (!(events & EPOLLIN))
                return 0;
        n = read(s->fd, buf, sizeof buf);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        if (s->put)
                return -EPROTO; /* a PUT is answered only when refused */
        if (s->head_done)
                return 0;
        memcpy(s->head + s->head_len, buf, MIN((size_t) n, sizeof s->head - s->head_len - 1));
        s->head_len += MIN((size_t) n, sizeof s->head - s->head_len - 1);
        s->head[s->head_len] = 0;
        if (!strstr(s->head, "\r\n\r\n"))
                return s->head_len + 1 >= sizeof s->head ? -EPROTO : 0;
        if (strncmp(s->head, "HTTP/1.1 200", 12) != 0)
                return -EACCES;
        s->head_done = true;
        return 1;
}

static int hold(unsigned n, const char *addr, unsigned port, unsigned seconds) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        struct rlimit rl;
        unsigned opened = 0, heads = 0;
        uint64_t start, ready_at = 0, keepalive_at;
        Stream *streams;
        int ep;

        if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
                fprintf(stderr, "loadclients: invalid address %s\n", addr);
                return 2;
        }
        /* Two sockets per client and some spare. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * (rlim_t) n + 64) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < 2 * (rlim_t) n + 64) {
                        fprintf(stderr, "loadclients: RLIMIT_NOFILE %ju is below the %u descriptors needed\n",
                                (uintmax_t) rl.rlim_cur, 2 * n + 64);
                        return 1;
                }
        }

        streams = calloc(2 * (size_t) n, sizeof(Stream));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!streams || ep < 0) {
                fprintf(stderr, "loadclients: %s\n", strerror(errno));
                return 1;
        }
        start = now_sec();
        keepalive_at = start + KEEPALIVE_SEC;

        for (;;) {
                struct epoll_event ev[256];
                int k;

                for (unsigned b = 0; b < CONNECT_BATCH && opened < 2 * n; b++, opened++) {
                        Stream *s = &streams[opened];
                        int r;

                        s->put = opened % 2;
                        r = stream_open(ep, s, &a);
                        if (r < 0) {
                                fprintf(stderr, "loadclients: connection %u: %s\n", opened, strerror(-r));
                                return 1;
                        }
                }

                k = epoll_wait(ep, ev, 256, 100);
                for (int i = 0; i < k; i++) {
                        Stream *s = ev[i].data.ptr;
                        unsigned client = (unsigned) ((s - streams) / 2);
                        int r = stream_event(ep, s, client, ev[i].events);

                        if (r < 0) {
                                fprintf(stderr, "loadclients: client %u %s: %s%s%.40s\n", client,
                                        s->put ? "PUT" : "GET", strerror(-r), s->head_len ? ": " : "", s->head);
                                return 1;
                        }
                        heads += (unsigned) r;
                }

                if (heads == n && ready_at == 0) {
                        ready_at = now_sec();
                        printf("ready %u clients, %u connections, %" PRIu64 " s\n", n, 2 * n, ready_at - start);
                        fflush(stdout);
                }
                if (ready_at > 0 && now_sec() >= ready_at + seconds)
                        return 0;
                if (ready_at == 0 && now_sec() > start + 120) {
                        fprintf(stderr, "loadclients: only %u of %u GETs answered after 120 s\n", heads, n);
                        return 1;
                }
                if (now_sec() >= keepalive_at) {
                        static const char keepalive_chunk[] = "2\r\n\0\0\r\n";

                        for (unsigned i = 1; i < 2 * n; i += 2)
                                if (write(streams[i].fd, keepalive_chunk, sizeof keepalive_chunk - 1) < 0) {
                                        /* A full socket skips one keepalive (the stream is busy, so alive
                                         * anyway); a stream the server closed shows in the poll loop. */
                                }
                        keepalive_at = now_sec() + KEEPALIVE_SEC;
                }
        }
}

int main(int argc, char **argv) {
        if (argc == 4 && strcmp(argv[1], "config") == 0)
                return config((unsigned) atoi(argv[2]), (unsigned) atoi(argv[3]));
        if (argc == 6 && strcmp(argv[1], "hold") == 0)
                return hold((unsigned) atoi(argv[2]), argv[3], (unsigned) atoi(argv[4]), (unsigned) atoi(argv[5]));
        fprintf(stderr, "usage: loadclients config N PORT\n"
                        "       loadclients hold N ADDR PORT SECONDS\n");
        return 2;
}
