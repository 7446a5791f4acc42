/* SPDX-License-Identifier: MIT */
/* ceiling-relay: the least a tapotun-like tunnel has to do, for bench/run.sh. A TUN with the virtio-net
 * header and TSO, relayed to and from one TCP connection in tapotun's framing (u16 LE length, vnet header,
 * packet), without HTTP: its throughput is the ceiling of the design on a machine.
 *
 *     ceiling-relay server|client ADDR PORT TUNNAME [nooffload]
 *
 * With "nooffload" the TUN takes no offload (no TSO, no checksum offload): MTU-sized packets both ways,
 * the ceiling for a peer that cannot take super-packets.
 * The TUN is created first (the caller configures its address and MTU), then the server accepts one
 * connection or the client connects; the relay ends when the connection does. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define VNET_HDR 12
#define FRAME_MAX (2 + VNET_HDR + 65535)
#define BUF_SIZE (4u << 20)

static int tun_open(const char *name, bool offload) {
        struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR };
        int fd, size = VNET_HDR;

        fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ||
            ioctl(fd, TUNSETOFFLOAD,
                  offload ? (unsigned long) (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) : 0ul) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int tcp_open(bool server, const char *addr, const char *port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(port)) };
        int fd, one = 1, size = (int) BUF_SIZE;

        if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
                return -EINVAL;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
        if (server) {
                int l = fd;

                (void) setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (bind(l, (struct sockaddr *) &a, sizeof a) < 0 || listen(l, 1) < 0)
                        return -errno;
                fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
                close(l);
                if (fd < 0)
                        return -errno;
        } else
                while (connect(fd, (struct sockaddr *) &a, sizeof a) < 0) {
                        if (errno != ECONNREFUSED)
                                return -errno;
                        usleep(100000);
                }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void) fcntl(fd, F_SETFL, O_NONBLOCK);
        return fd;
}

int main(int argc, char **argv) {
        static uint8_t out[BUF_SIZE], in[BUF_SIZE];
        size_t out_len = 0, in_len = 0;
        int tun, sock;

        if (argc < 5 || argc > 6 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0) ||
            (argc == 6 && strcmp(argv[5], "nooffload") != 0)) {
                fprintf(stderr, "usage: ceiling-relay server|client ADDR PORT TUNNAME [nooffload]\n");
                return 2;
        }
        tun = tun_open(argv[4], argc == 5);
        if (tun < 0) {
                fprintf(stderr, "TUN %s: %s\n", argv[4], strerror(-tun));
                return 1;
        }
        sock = tcp_open(strcmp(argv[1], "server") == 0, argv[2], argv[3]);
        if (sock < 0) {
                fprintf(stderr, "TCP %s:%s: %s\n", argv[2], argv[3], strerror(-sock));
                return 1;
        }

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = tun, .events = out_len < BUF_SIZE / 2 ? POLLIN : 0 },
                        { .fd = sock, .events = POLLIN | (out_len > 0 ? POLLOUT : 0) },
                };
                size_t off = 0;
                ssize_t n;

                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        return 1;

                /* TUN -> socket: frames gathered into one buffer, sent with one write. */
                for (int i = 0; i < 64 && out_len + FRAME_MAX <= BUF_SIZE; i++) {
                        n = read(tun, out + out_len + 2, FRAME_MAX - 2);
                        if (n <= VNET_HDR)
                                break;
                        out[out_len] = (uint8_t) ((n - VNET_HDR) & 0xff);
                        out[out_len + 1] = (uint8_t) ((n - VNET_HDR) >> 8);
                        out_len += 2 + (size_t) n;
                }
                if (out_len > 0) {
                        n = write(sock, out, out_len);
                        if (n > 0) {
                                memmove(out, out + n, out_len - (size_t) n);
                                out_len -= (size_t) n;
                        } else if (n < 0 && errno != EAGAIN)
                                return 1;
                }

                /* socket -> TUN: one write per frame. */
                n = read(sock, in + in_len, BUF_SIZE - in_len);
                if (n == 0)
                        return 0;
                if (n < 0 && errno != EAGAIN)
                        return 1;
                if (n > 0)
                        in_len += (size_t) n;
                while (in_len - off >= 2) {
                        size_t len = (size_t) in[off] | (size_t) in[off + 1] << 8;

                        if (in_len - off < 2 + VNET_HDR + len)
                                break;
                        if (write(tun, in + off + 2, VNET_HDR + len) < 0) {
                                /* Not taken (queue full, or EIO while the TUN is not up yet): dropped, as
                                 * a router would. */
                        }
                        off += 2 + VNET_HDR + len;
                }
                memmove(in, in + off, in_len - off);
                in_len -= off;
        }
}
