/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>

#include "gso.h"
#include "log.h"
#include "tunnel.h"
#include "wire.h"

/* Debian 12's kernel headers predate UDP segmentation offload (Linux 6.2). */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* The wire names the TUNSETOFFLOAD bits themselves, so they pass through unchanged. */
_Static_assert(WIRE_OFFLOAD_CSUM == TUN_F_CSUM, "offload bits");
_Static_assert(WIRE_OFFLOAD_TSO4 == TUN_F_TSO4, "offload bits");
_Static_assert(WIRE_OFFLOAD_TSO6 == TUN_F_TSO6, "offload bits");
_Static_assert(WIRE_OFFLOAD_ECN == TUN_F_TSO_ECN, "offload bits");
_Static_assert(WIRE_OFFLOAD_USO4 == TUN_F_USO4, "offload bits");
_Static_assert(WIRE_OFFLOAD_USO6 == TUN_F_USO6, "offload bits");

/* A frame body: vnet header + IP packet. */
#define TUNNEL_FRAME_MAX (TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX)
/* Frames per read dispatch and per write-queue drain: enough to amortise the wakeup, small enough that
 * one busy tunnel does not starve the other sources of the loop. */
#define TUNNEL_READ_BATCH 64u
#define TUNNEL_WRITE_BATCH 64u

/* The write queue holds at most this much; above 3/4 tunnel_write() asks the caller to pause, below 1/4
 * on_writable resumes it. */
#define TUNNEL_QUEUE_FRAMES_MAX 1024u
#define TUNNEL_QUEUE_BYTES_MAX (4u * 1024u * 1024u)
#define TUNNEL_QUEUE_RECORD_SIZE(len) ((sizeof(uint32_t) + (size_t) (len) + 3u) & ~(size_t) 3u)
/* Ring size such that whatever the limits above admit always fits: per frame a length word and up to 3
 * bytes of padding, plus the gap of at most one record left at the end when the ring wraps. */
#define TUNNEL_QUEUE_SIZE                                                                                \
        (TUNNEL_QUEUE_BYTES_MAX + TUNNEL_QUEUE_FRAMES_MAX * 8u + TUNNEL_QUEUE_RECORD_SIZE(TUNNEL_FRAME_MAX))
/* Length word meaning "the next record starts at offset 0". */
#define TUNNEL_QUEUE_WRAP UINT32_MAX

#define TUNNEL_NETLINK_TIMEOUT_USEC (5u * 1000000u)
/* Kernel objects one tunnel may own; a server pushes at most 1024 routes (wire.h). */
#define TUNNEL_OBJECTS_MAX 8192u

#define TUNNEL_LOG_INTERVAL_USEC (10u * 1000000u)
#define TUNNEL_LOG_BURST 10u

/* A device deleted under us is created again at once; when that fails (the name taken by another kind of
 * interface, say), again after 1 s, doubling up to 30 s. */
#define TUNNEL_REOPEN_DELAY_MIN_USEC (1u * 1000000u)
#define TUNNEL_REOPEN_DELAY_MAX_USEC (30u * 1000000u)

/* A FIFO of frames in one ring of bytes, allocated at the first EAGAIN, so queueing allocates nothing
 * per packet. Each record is a uint32_t length and the frame, padded to 4 bytes. */
typedef struct TunnelQueue {
        uint8_t *buf;
        size_t head, tail; /* read and write offsets */
        size_t n_frames;
        size_t n_bytes; /* frame bytes queued, the quantity the limits are about */
} TunnelQueue;

typedef enum TunnelObjectType {
        TUNNEL_OBJECT_ADDRESS,
        TUNNEL_OBJECT_ROUTE,
        TUNNEL_OBJECT_RULE,
} TunnelObjectType;

/* One piece of kernel state this tunnel added and must remove again. */
typedef struct TunnelObject {
        TunnelObjectType type;
        bool mark;             /* added by tunnel_add_mark() */
        TapotunPrefix prefix;  /* address, route destination; for a rule only the family */
        uint32_t table;        /* route, rule */
        uint32_t fwmark;       /* rule */
        uint32_t priority;     /* rule */
} TunnelObject;

typedef struct RateLimit {
        uint64_t begin;
        unsigned n;
} RateLimit;

struct Tunnel {
        sd_event *event;
        Netlink *netlink; /* not ours: outlives the tunnel */
        sd_event_source *io;
        int fd;
        int ifindex;
        char name[IFNAMSIZ];
        uint32_t offloads;
        bool reading;
        bool failed;    /* the device went away: I/O stopped until tunnel_reopen() */
        bool throttled; /* tunnel_write() returned 1 or -ENOBUFS; on_writable is owed */
        sd_event_source *reopen; /* time: creates a failed device again */
        unsigned n_reopen_failures;

        TunnelReadHandler on_read;
        TunnelReadBuffer read_buffer;
        TunnelWritableHandler on_writable;
        void *userdata;

        uint8_t *rbuf; /* TUNNEL_READ_SIZE */
        TunnelQueue queue;
        GsoGro *gro;                /* allocated by the first tunnel_write_coalesced() */
        sd_event_source *gro_flush; /* writes what gro holds at the end of the loop iteration */

        /* What a recreated device gets again, besides the objects: 0 until tunnel_set_mtu_up(). */
        uint32_t mtu;
        bool accept_local_set, accept_local;

        TunnelObject *objects;
        size_t n_objects, n_objects_allocated;
        bool mark_set;
        uint32_t mark, mark_table, mark_priority;
        bool mark_v6;

        TunnelStats stats;
        RateLimit log_limit;
};

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static bool ratelimit_below(RateLimit *rl) {
        uint64_t now = now_usec();

        if (rl->begin == 0 || now - rl->begin >= TUNNEL_LOG_INTERVAL_USEC) {
                rl->begin = now;
                rl->n = 0;
        }
        return rl->n++ < TUNNEL_LOG_BURST;
}

/* ------------------------------------------------------------------------------------------------ */
/* Write queue */

static bool queue_above_high(const TunnelQueue *q) {
        return q->n_frames >= TUNNEL_QUEUE_FRAMES_MAX / 4 * 3 || q->n_bytes >= TUNNEL_QUEUE_BYTES_MAX / 4 * 3;
}

static bool queue_below_low(const TunnelQueue *q) {
        return q->n_frames <= TUNNEL_QUEUE_FRAMES_MAX / 4 && q->n_bytes <= TUNNEL_QUEUE_BYTES_MAX / 4;
}

static int queue_push(TunnelQueue *q, const void *frame, size_t len) {
        size_t need = TUNNEL_QUEUE_RECORD_SIZE(len);
        uint32_t word = (uint32_t) len;

        if (q->n_frames >= TUNNEL_QUEUE_FRAMES_MAX || q->n_bytes + len > TUNNEL_QUEUE_BYTES_MAX)
                return -ENOBUFS;
        if (!q->buf) {
                q->buf = malloc(TUNNEL_QUEUE_SIZE);
                if (!q->buf)
                        return -ENOMEM;
        }
        if (q->n_frames == 0)
                q->head = q->tail = 0;
        else if (q->tail == q->head)
                return -ENOBUFS;

        if (q->tail > q->head || q->n_frames == 0) {
                /* Free space is [tail, end) and [0, head): wrap when the record does not fit at the end. */
                if (TUNNEL_QUEUE_SIZE - q->tail < need) {
                        if (q->head < need)
                                return -ENOBUFS;
                        if (q->tail < TUNNEL_QUEUE_SIZE) {
                                uint32_t wrap = TUNNEL_QUEUE_WRAP;
                                memcpy(q->buf + q->tail, &wrap, sizeof wrap);
                        }
                        q->tail = 0;
                }
        } else if (q->head - q->tail < need)
                return -ENOBUFS;

        memcpy(q->buf + q->tail, &word, sizeof word);
        memcpy(q->buf + q->tail + sizeof word, frame, len);
        q->tail += need;
        q->n_frames++;
        q->n_bytes += len;
        return 0;
}

static const uint8_t *queue_peek(TunnelQueue *q, size_t *ret_len) {
        uint32_t word;

        assert(q->n_frames > 0);

        if (q->head == TUNNEL_QUEUE_SIZE)
                q->head = 0;
        memcpy(&word, q->buf + q->head, sizeof word);
        if (word == TUNNEL_QUEUE_WRAP) {
                q->head = 0;
                memcpy(&word, q->buf, sizeof word);
        }
        *ret_len = word;
        return q->buf + q->head + sizeof word;
}

static void queue_pop(TunnelQueue *q, size_t len) {
        q->head += TUNNEL_QUEUE_RECORD_SIZE(len);
        q->n_frames--;
        q->n_bytes -= len;
        if (q->n_frames == 0)
                q->head = q->tail = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* I/O */

static int tunnel_update_io(Tunnel *t) {
        uint32_t events = 0;
        int r;

        if (!t->failed) {
                if (t->reading)
                        events |= EPOLLIN;
                if (t->queue.n_frames > 0)
                        events |= EPOLLOUT;
        }
        if (events == 0)
                return sd_event_source_set_enabled(t->io, SD_EVENT_OFF);

        r = sd_event_source_set_io_events(t->io, events);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(t->io, SD_EVENT_ON);
}

static void tunnel_schedule_reopen(Tunnel *t, uint64_t delay_usec);

/* The device is gone (deleted under us: reads fail with EBADFD) or broken: stop polling it rather than
 * spin on EPOLLERR, and create it again from the loop, outside the handlers of this one. */
static void tunnel_fail(Tunnel *t, int error) {
        t->failed = true;
        (void) tunnel_update_io(t);
        log_tunnel_full_errno(t->name, LOG_ERR, error,
                              "TUN device %s failed (%m; deleted?): creating it again with its addresses, "
                              "routes and rules.", t->name);
        tunnel_schedule_reopen(t, 0);
}

static int tunnel_drop(Tunnel *t, int error) {
        t->stats.tx_dropped++;
        if (ratelimit_below(&t->log_limit))
                log_tunnel_full_errno(t->name, LOG_DEBUG, error, "TUN refused a frame, dropped: %m");
        return error;
}

/* Byte counters count IP packets, without the vnet header, like the interface's own counters. */
static void tunnel_count_tx(Tunnel *t, size_t len) {
        t->stats.tx_packets++;
        t->stats.tx_bytes += len - TAPOTUN_VNET_HDR_SIZE;
}

static int tunnel_read_batch(Tunnel *t) {
        for (unsigned i = 0; i < TUNNEL_READ_BATCH; i++) {
                uint8_t *buf = t->read_buffer ? t->read_buffer(t, t->userdata) : NULL;
                ssize_t n;

                if (!buf)
                        buf = t->rbuf;
                n = read(t->fd, buf, TUNNEL_READ_SIZE);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                if ((size_t) n <= TAPOTUN_VNET_HDR_SIZE || (size_t) n > TUNNEL_FRAME_MAX) {
                        if (ratelimit_below(&t->log_limit))
                                log_tunnel_full_errno(t->name, LOG_DEBUG, 0,
                                                      "Ignoring a %zd byte read from the TUN", n);
                        continue;
                }

                t->stats.rx_packets++;
                t->stats.rx_bytes += (size_t) n - TAPOTUN_VNET_HDR_SIZE;
                if (t->on_read)
                        t->on_read(t, buf, (size_t) n, t->userdata);
        }
        return 0;
}

static void tunnel_drain(Tunnel *t) {
        int r;

        for (unsigned i = 0; i < TUNNEL_WRITE_BATCH && t->queue.n_frames > 0; i++) {
                const uint8_t *frame;
                size_t len;
                ssize_t n;

                frame = queue_peek(&t->queue, &len);
                n = write(t->fd, frame, len);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n < 0)
                        (void) tunnel_drop(t, -errno);
                else
                        tunnel_count_tx(t, len);
                queue_pop(&t->queue, len);
        }

        r = tunnel_update_io(t);
        if (r < 0)
                log_tunnel_full_errno(t->name, LOG_DEBUG, r, "Failed to update TUN event source: %m");

        if (t->throttled && queue_below_low(&t->queue)) {
                t->throttled = false;
                if (t->on_writable)
                        t->on_writable(t, t->userdata);
        }
}

/* The handlers must not free the tunnel. */
static int on_tunnel_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Tunnel *t = userdata;
        int r;

        if (revents & EPOLLOUT)
                tunnel_drain(t);

        if (t->reading && (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                r = tunnel_read_batch(t);
                if (r < 0)
                        tunnel_fail(t, r);
        } else if (revents & (EPOLLERR | EPOLLHUP))
                tunnel_fail(t, -EIO);

        return 0;
}

int tunnel_write(Tunnel *t, const void *frame, size_t len) {
        int r;

        assert(t);
        assert(frame);

        if (len <= TAPOTUN_VNET_HDR_SIZE || len > TUNNEL_FRAME_MAX) {
                t->stats.tx_dropped++;
                return -EINVAL;
        }

        /* Frames already waiting go first. */
        if (t->queue.n_frames == 0) {
                if (write(t->fd, frame, len) >= 0) {
                        tunnel_count_tx(t, len);
                        return 0;
                }
                if (errno != EAGAIN && errno != EINTR)
                        return tunnel_drop(t, -errno);
        }

        r = queue_push(&t->queue, frame, len);
        if (r < 0) {
                t->stats.tx_dropped++;
                t->throttled = true;
                return r;
        }
        r = tunnel_update_io(t);
        if (r < 0)
                return r;

        if (queue_above_high(&t->queue)) {
                t->throttled = true;
                return 1;
        }
        return 0;
}

/* Writes what GRO holds. */
static int tunnel_gro_flush(Tunnel *t) {
        const uint8_t *frame;
        size_t len;

        if (!t->gro || !gso_gro_take(t->gro, &frame, &len))
                return 0;
        return tunnel_write(t, frame, len);
}

static int on_gro_flush(sd_event_source *s, void *userdata) {
        (void) tunnel_gro_flush(userdata);
        return 0;
}

int tunnel_write_coalesced(Tunnel *t, const void *frame, size_t len) {
        int r;

        assert(t);
        assert(frame);

        if (!t->gro) {
                t->gro = malloc(sizeof(GsoGro));
                if (!t->gro || sd_event_add_defer(t->event, &t->gro_flush, on_gro_flush, t) < 0) {
                        t->gro = mfree(t->gro);
                        return tunnel_write(t, frame, len);
                }
                t->gro->len = 0;
                (void) sd_event_source_set_description(t->gro_flush, "tunnel-gro");
                (void) sd_event_source_set_enabled(t->gro_flush, SD_EVENT_OFF);
        }

        if (gso_gro_add(t->gro, frame, len, t->offloads))
                r = 0;
        else {
                /* It does not continue what is held: that goes first. */
                r = tunnel_gro_flush(t);
                if (!gso_gro_add(t->gro, frame, len, t->offloads)) {
                        int k = tunnel_write(t, frame, len);

                        return k < 0 ? k : MAX(k, MAX(r, 0));
                }
        }
        (void) sd_event_source_set_enabled(t->gro_flush, SD_EVENT_ONESHOT);
        if (r < 0)
                return 0; /* the flushed packet was counted as dropped; this frame is held */
        return r > 0 || queue_above_high(&t->queue) ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Device */

/* The kernel refuses (EINVAL) any bit it does not know, TSO without CSUM, ECN without TSO and USO4 without
 * USO6. Drop what newer kernels added first, then the rest step by step. */
static int tunnel_probe_offloads(int fd, uint32_t wanted, uint32_t *ret) {
        const uint32_t uso = WIRE_OFFLOAD_USO4 | WIRE_OFFLOAD_USO6;
        uint32_t candidates[] = {
                wanted,
                wanted & ~uso,
                wanted & ~(uso | WIRE_OFFLOAD_ECN),
                wanted & WIRE_OFFLOAD_CSUM,
                0,
        };

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                if (i > 0 && candidates[i] == candidates[i - 1])
                        continue;
                if (ioctl(fd, TUNSETOFFLOAD, (unsigned long) candidates[i]) >= 0) {
                        *ret = candidates[i];
                        return 0;
                }
                if (errno != EINVAL)
                        return -errno;
        }
        return -EINVAL;
}

/* Opens the device NAME ("" or NULL: the kernel chooses) on a new descriptor with the offloads in WANTED
 * that the kernel accepts, and starts watching it. On failure the caller closes t->fd. */
static int tunnel_open(Tunnel *t, const char *name, uint32_t wanted_offloads) {
        struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR };
        int vnet_hdr_size = TAPOTUN_VNET_HDR_SIZE, r;
        unsigned ifindex;

        t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (t->fd < 0)
                return -errno;
        if (name)
                memcpy(ifr.ifr_name, name, strlen(name));
        if (ioctl(t->fd, TUNSETIFF, &ifr) < 0)
                return -errno;
        memcpy(t->name, ifr.ifr_name, IFNAMSIZ - 1);

        /* virtio_net_hdr_mrg_rxbuf, which the wire protocol carries. */
        if (ioctl(t->fd, TUNSETVNETHDRSZ, &vnet_hdr_size) < 0)
                return -errno;
        r = tunnel_probe_offloads(t->fd, wanted_offloads & WIRE_OFFLOAD_ALL, &t->offloads);
        if (r < 0)
                return r;

        ifindex = if_nametoindex(t->name);
        if (ifindex == 0)
                return -errno;
        t->ifindex = (int) ifindex;

        r = sd_event_add_io(t->event, &t->io, t->fd, EPOLLIN, on_tunnel_io, t);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(t->io, "tunnel");
        return tunnel_update_io(t);
}

int tunnel_new(sd_event *e, Netlink *nl, const char *name, uint32_t wanted_offloads, Tunnel **ret) {
        _cleanup_(tunnel_freep) Tunnel *t = NULL;
        int r;

        assert(e);
        assert(nl);
        assert(ret);

        /* NULL or "" lets the kernel choose (tun%d). */
        if (name && strlen(name) >= IFNAMSIZ)
                return -EINVAL;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->fd = -EBADF;
        t->event = sd_event_ref(e);
        t->netlink = nl;

        t->rbuf = malloc(TUNNEL_READ_SIZE);
        if (!t->rbuf)
                return -ENOMEM;

        r = tunnel_open(t, name, wanted_offloads);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(t);
        return 0;
}

const char *tunnel_get_name(const Tunnel *t) {
        assert(t);
        return t->name;
}

int tunnel_get_ifindex(const Tunnel *t) {
        assert(t);
        return t->ifindex;
}

uint32_t tunnel_get_offloads(const Tunnel *t) {
        assert(t);
        return t->offloads;
}

int tunnel_set_offloads(Tunnel *t, uint32_t wanted, uint32_t *ret_accepted) {
        uint32_t accepted;
        int r;

        assert(t);

        r = tunnel_probe_offloads(t->fd, wanted & WIRE_OFFLOAD_ALL, &accepted);
        if (r < 0)
                return r;
        t->offloads = accepted;
        if (ret_accepted)
                *ret_accepted = accepted;
        return 0;
}

void tunnel_set_handlers(Tunnel *t, TunnelReadHandler on_read, TunnelWritableHandler on_writable,
                         void *userdata) {
        assert(t);

        t->on_read = on_read;
        t->on_writable = on_writable;
        t->userdata = userdata;
}

void tunnel_set_read_buffer(Tunnel *t, TunnelReadBuffer read_buffer) {
        assert(t);

        t->read_buffer = read_buffer;
}

int tunnel_start(Tunnel *t) {
        assert(t);

        if (t->failed)
                return -EIO;
        t->reading = true;
        return tunnel_update_io(t);
}

void tunnel_get_stats(const Tunnel *t, TunnelStats *ret) {
        assert(t);
        assert(ret);

        *ret = t->stats;
}

/* ------------------------------------------------------------------------------------------------ */
/* Kernel configuration */

static void on_request_done(Netlink *nl, int error, void *userdata) {
        *(int *) userdata = error;
}

/* Waits for the one request just sent (R is what sending returned). netlink_flush() leaves nothing
 * pending, so RESULT is written before we return whatever happens. */
static int tunnel_wait(Tunnel *t, int r, const int *result) {
        if (r < 0)
                return r;
        r = netlink_flush(t->netlink, TUNNEL_NETLINK_TIMEOUT_USEC);
        if (r < 0)
                return r;
        return *result;
}

static size_t prefix_size(const TapotunPrefix *p) {
        return p->family == AF_INET6 ? sizeof(struct in6_addr) : sizeof(struct in_addr);
}

static bool prefix_equal(const TapotunPrefix *a, const TapotunPrefix *b) {
        return a->family == b->family && a->prefixlen == b->prefixlen &&
               memcmp(a->addr.bytes, b->addr.bytes, prefix_size(a)) == 0;
}

static bool object_equal(const TunnelObject *a, const TunnelObject *b) {
        if (a->type != b->type)
                return false;
        switch (a->type) {
        case TUNNEL_OBJECT_ADDRESS:
                return prefix_equal(&a->prefix, &b->prefix);
        case TUNNEL_OBJECT_ROUTE:
                return prefix_equal(&a->prefix, &b->prefix) && a->table == b->table;
        case TUNNEL_OBJECT_RULE:
                return a->prefix.family == b->prefix.family && a->fwmark == b->fwmark &&
                       a->table == b->table && a->priority == b->priority;
        }
        return false;
}

static void object_format(const TunnelObject *o, char *ret, size_t size) {
        char addr[INET6_ADDRSTRLEN] = "?";

        if (o->type != TUNNEL_OBJECT_RULE)
                (void) inet_ntop(o->prefix.family, o->prefix.addr.bytes, addr, sizeof addr);

        switch (o->type) {
        case TUNNEL_OBJECT_ADDRESS:
                (void) snprintf(ret, size, "address %s/%u", addr, o->prefix.prefixlen);
                break;
        case TUNNEL_OBJECT_ROUTE:
                (void) snprintf(ret, size, "route %s/%u table %" PRIu32, addr, o->prefix.prefixlen, o->table);
                break;
        case TUNNEL_OBJECT_RULE:
                (void) snprintf(ret, size, "%s rule fwmark 0x%" PRIx32 " table %" PRIu32 " pref %" PRIu32,
                                o->prefix.family == AF_INET6 ? "IPv6" : "IPv4", o->fwmark, o->table,
                                o->priority);
                break;
        }
}

static int tunnel_object_apply(Tunnel *t, const TunnelObject *o, bool add) {
        int result = 0, r = -EINVAL;

        switch (o->type) {
        case TUNNEL_OBJECT_ADDRESS:
                r = netlink_address(t->netlink, add, t->ifindex, &o->prefix, on_request_done, &result);
                break;
        case TUNNEL_OBJECT_ROUTE:
                r = netlink_route(t->netlink, add, t->ifindex, &o->prefix, o->table, on_request_done,
                                  &result);
                break;
        case TUNNEL_OBJECT_RULE:
                r = netlink_rule(t->netlink, add, o->prefix.family, o->fwmark, o->table, o->priority,
                                 on_request_done, &result);
                break;
        }
        return tunnel_wait(t, r, &result);
}

static int tunnel_object_exists(Tunnel *t, const TunnelObject *o) {
        switch (o->type) {
        case TUNNEL_OBJECT_ADDRESS:
                return netlink_address_exists(t->netlink, t->ifindex, &o->prefix);
        case TUNNEL_OBJECT_ROUTE:
                return netlink_route_exists(t->netlink, t->ifindex, &o->prefix, o->table);
        case TUNNEL_OBJECT_RULE:
                return netlink_rule_exists(t->netlink, o->prefix.family, o->fwmark, o->table, o->priority);
        }
        return -EINVAL;
}

static ssize_t tunnel_find_object(const Tunnel *t, const TunnelObject *o) {
        for (size_t i = 0; i < t->n_objects; i++)
                if (object_equal(&t->objects[i], o))
                        return (ssize_t) i;
        return -1;
}

static int tunnel_reserve_object(Tunnel *t) {
        TunnelObject *objects;
        size_t n;

        if (t->n_objects < t->n_objects_allocated)
                return 0;
        if (t->n_objects >= TUNNEL_OBJECTS_MAX)
                return -E2BIG;

        n = MAX(t->n_objects_allocated * 2, (size_t) 16);
        objects = reallocarray(t->objects, n, sizeof *objects);
        if (!objects)
                return -ENOMEM;
        t->objects = objects;
        t->n_objects_allocated = n;
        return 0;
}

/* Adds O unless it exists. Only what we added is remembered, so removal never takes away what the
 * administrator (or another program) put there. */
static int tunnel_add_object(Tunnel *t, const TunnelObject *o) {
        int r;

        if (tunnel_find_object(t, o) >= 0)
                return 0;
        r = tunnel_reserve_object(t);
        if (r < 0)
                return r;

        /* The kernel's "exists" for rules compares more fields than we set (the protocol, say): ask first,
         * or an equal rule of the administrator's would be duplicated. Rule lists are short. */
        if (o->type == TUNNEL_OBJECT_RULE) {
                r = tunnel_object_exists(t, o);
                if (r != 0)
                        return MIN(r, 0);
        }

        r = tunnel_object_apply(t, o, true);
        if (r == -EEXIST) {
                /* Either it is there as we want it (not ours, keep it), or something conflicting is, e.g.
                 * the same route via another device: that stays an error. */
                r = tunnel_object_exists(t, o);
                if (r < 0)
                        return r;
                return r > 0 ? 0 : -EEXIST;
        }
        if (r < 0)
                return r;

        t->objects[t->n_objects++] = *o;
        return 0;
}

static int tunnel_remove_object_at(Tunnel *t, size_t i) {
        int r;

        /* -ENODEV: the device was deleted under us, and its addresses with it. */
        r = tunnel_object_apply(t, &t->objects[i], false);
        if (r < 0 && r != -ENOENT && r != -ENODEV)
                return r;

        memmove(t->objects + i, t->objects + i + 1, (t->n_objects - i - 1) * sizeof *t->objects);
        t->n_objects--;
        return 0;
}

/* Objects that are not ours stay, and removing them is not an error. */
static int tunnel_remove_object(Tunnel *t, const TunnelObject *o) {
        ssize_t i = tunnel_find_object(t, o);

        if (i < 0)
                return 0;
        return tunnel_remove_object_at(t, (size_t) i);
}

static TunnelObject object_address(const TapotunPrefix *a) {
        TunnelObject o = { .type = TUNNEL_OBJECT_ADDRESS };

        o.prefix.family = a->family;
        o.prefix.prefixlen = a->prefixlen;
        memcpy(o.prefix.addr.bytes, a->addr.bytes, prefix_size(a));
        return o;
}

static TunnelObject object_route(const TapotunPrefix *dst, uint32_t table) {
        TunnelObject o = object_address(dst);

        o.type = TUNNEL_OBJECT_ROUTE;
        o.table = table;
        return o;
}

static TunnelObject object_rule(int family, uint32_t fwmark, uint32_t table, uint32_t priority) {
        return (TunnelObject) {
                .type = TUNNEL_OBJECT_RULE,
                .prefix.family = family,
                .table = table,
                .fwmark = fwmark,
                .priority = priority,
        };
}

static int prefix_check(const TapotunPrefix *p) {
        if (p->family != AF_INET && p->family != AF_INET6)
                return -EAFNOSUPPORT;
        if (p->prefixlen > prefix_size(p) * 8)
                return -EINVAL;
        return 0;
}

int tunnel_set_mtu_up(Tunnel *t, uint32_t mtu) {
        int result = 0, r;

        assert(t);

        /* Remembered even when it fails, as the device may be away: a recreated one gets it. */
        t->mtu = mtu;
        r = netlink_link_set(t->netlink, t->ifindex, mtu, true, on_request_done, &result);
        return tunnel_wait(t, r, &result);
}

int tunnel_set_accept_local(Tunnel *t, bool accept) {
        int result = 0, r;

        assert(t);

        t->accept_local_set = true;
        t->accept_local = accept;
        r = netlink_link_accept_local(t->netlink, t->ifindex, accept, on_request_done, &result);
        return tunnel_wait(t, r, &result);
}

int tunnel_add_address(Tunnel *t, const TapotunPrefix *a) {
        TunnelObject o;
        int r;

        assert(t);
        assert(a);

        r = prefix_check(a);
        if (r < 0)
                return r;
        o = object_address(a);
        return tunnel_add_object(t, &o);
}

int tunnel_remove_address(Tunnel *t, const TapotunPrefix *a) {
        TunnelObject o;
        int r;

        assert(t);
        assert(a);

        r = prefix_check(a);
        if (r < 0)
                return r;
        o = object_address(a);
        return tunnel_remove_object(t, &o);
}

int tunnel_add_route(Tunnel *t, const TapotunPrefix *dst, uint32_t table) {
        TunnelObject o;
        int r;

        assert(t);
        assert(dst);

        r = prefix_check(dst);
        if (r < 0)
                return r;
        o = object_route(dst, table);
        return tunnel_add_object(t, &o);
}

int tunnel_remove_route(Tunnel *t, const TapotunPrefix *dst, uint32_t table) {
        TunnelObject o;
        int r;

        assert(t);
        assert(dst);

        r = prefix_check(dst);
        if (r < 0)
                return r;
        o = object_route(dst, table);
        return tunnel_remove_object(t, &o);
}

/* Routes first, then rules: a marked packet never meets a rule pointing at an empty table. On failure
 * what was added stays recorded, and tunnel_remove_mark() or tunnel_free() removes it. */
int tunnel_add_mark(Tunnel *t, uint32_t mark, uint32_t table, uint32_t priority, bool v6) {
        static const int families[] = { AF_INET, AF_INET6 };
        int r;

        assert(t);

        if (mark == 0 || table == RT_TABLE_UNSPEC)
                return -EINVAL;

        if (t->mark_set && (t->mark != mark || t->mark_table != table || t->mark_priority != priority ||
                            t->mark_v6 != v6)) {
                r = tunnel_remove_mark(t);
                if (r < 0)
                        return r;
        }
        t->mark_set = true;
        t->mark = mark;
        t->mark_table = table;
        t->mark_priority = priority;
        t->mark_v6 = v6;

        for (size_t i = 0; i < (v6 ? 2u : 1u); i++) {
                TapotunPrefix any = { .family = families[i] };
                TunnelObject o = object_route(&any, table);

                o.mark = true;
                r = tunnel_add_object(t, &o);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < (v6 ? 2u : 1u); i++) {
                TunnelObject o = object_rule(families[i], mark, table, priority);

                o.mark = true;
                r = tunnel_add_object(t, &o);
                if (r < 0)
                        return r;
        }
        return 0;
}

int tunnel_remove_mark(Tunnel *t) {
        int ret = 0;

        assert(t);

        for (size_t i = t->n_objects; i > 0; i--) {
                int r;

                if (!t->objects[i - 1].mark)
                        continue;
                r = tunnel_remove_object_at(t, i - 1);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        if (ret == 0)
                t->mark_set = false;
        return ret;
}

/* ------------------------------------------------------------------------------------------------ */
/* Recreating a device deleted under us */

/* Adds O again on the new device; a rule (not tied to the device) is usually still there. */
static int tunnel_object_restore(Tunnel *t, const TunnelObject *o) {
        int r;

        if (o->type == TUNNEL_OBJECT_RULE) {
                r = tunnel_object_exists(t, o);
                if (r != 0)
                        return MIN(r, 0);
        }
        r = tunnel_object_apply(t, o, true);
        return r == -EEXIST ? 0 : r;
}

/* Opens the device again under its name, then gives it what it had: MTU and up, accept_local, and every
 * object in the order they were added. Frames queued for the old device are lost (counted as dropped).
 * An object that cannot be restored is logged and skipped: the device works without it. */
static int tunnel_reopen(Tunnel *t) {
        int r;

        t->stats.tx_dropped += t->queue.n_frames;
        t->queue.n_frames = t->queue.n_bytes = 0;
        t->queue.head = t->queue.tail = 0;
        t->io = sd_event_source_disable_unref(t->io);
        t->fd = safe_close(t->fd);
        t->failed = false;

        r = tunnel_open(t, t->name, t->offloads);
        if (r < 0) {
                t->failed = true;
                return log_tunnel_full_errno(t->name, LOG_ERR, r, "Failed to create TUN device %s again: %m",
                                             t->name);
        }

        if (t->mtu > 0) {
                r = tunnel_set_mtu_up(t, t->mtu);
                if (r < 0)
                        log_tunnel_full_errno(t->name, LOG_ERR, r, "Failed to set MTU %" PRIu32 " again: %m",
                                              t->mtu);
        }
        if (t->accept_local_set) {
                r = tunnel_set_accept_local(t, t->accept_local);
                if (r < 0)
                        log_tunnel_full_errno(t->name, LOG_ERR, r, "Failed to set accept_local again: %m");
        }
        for (size_t i = 0; i < t->n_objects; i++) {
                r = tunnel_object_restore(t, &t->objects[i]);
                if (r < 0) {
                        char what[160];

                        object_format(&t->objects[i], what, sizeof what);
                        log_tunnel_full_errno(t->name, LOG_ERR, r, "Failed to restore %s: %m", what);
                }
        }

        log_tunnel_full_errno(t->name, LOG_NOTICE, 0,
                              "TUN device %s created again (ifindex %i) with its %zu address(es), route(s) "
                              "and rule(s).", t->name, t->ifindex, t->n_objects);

        /* The queue is empty now: whoever was told to pause may go on. */
        if (t->throttled) {
                t->throttled = false;
                if (t->on_writable)
                        t->on_writable(t, t->userdata);
        }
        return 0;
}

static int on_reopen(sd_event_source *s, uint64_t usec, void *userdata) {
        Tunnel *t = userdata;
        uint64_t delay = TUNNEL_REOPEN_DELAY_MIN_USEC;

        if (tunnel_reopen(t) >= 0) {
                t->n_reopen_failures = 0;
                return 0;
        }
        for (unsigned i = 0; i < t->n_reopen_failures && delay < TUNNEL_REOPEN_DELAY_MAX_USEC; i++)
                delay *= 2;
        t->n_reopen_failures++;
        log_tunnel_full_errno(t->name, LOG_NOTICE, 0, "Trying again in %" PRIu64 " s.",
                              MIN(delay, (uint64_t) TUNNEL_REOPEN_DELAY_MAX_USEC) / 1000000u);
        tunnel_schedule_reopen(t, MIN(delay, (uint64_t) TUNNEL_REOPEN_DELAY_MAX_USEC));
        return 0;
}

static void tunnel_schedule_reopen(Tunnel *t, uint64_t delay_usec) {
        int r;

        if (!t->reopen) {
                r = sd_event_add_time_relative(t->event, &t->reopen, CLOCK_MONOTONIC, delay_usec, 0,
                                               on_reopen, t);
                if (r >= 0)
                        (void) sd_event_source_set_description(t->reopen, "tunnel-reopen");
        } else {
                r = sd_event_source_set_time_relative(t->reopen, delay_usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(t->reopen, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_tunnel_full_errno(t->name, LOG_ERR, r,
                                      "Cannot schedule creating TUN device %s again (%m); restart the "
                                      "service.", t->name);
}

Tunnel *tunnel_free(Tunnel *t) {
        if (!t)
                return NULL;

        /* Newest first, the reverse of how they were added. Closing the device would take addresses
         * and routes with it, but not rules, nor anything on a persistent device we attached to. */
        for (size_t i = t->n_objects; i > 0; i--) {
                int r = tunnel_remove_object_at(t, i - 1);
                if (r < 0) {
                        char what[160];

                        object_format(&t->objects[i - 1], what, sizeof what);
                        log_tunnel_full_errno(t->name, LOG_WARNING, r, "Failed to remove %s: %m", what);
                        t->n_objects--;
                }
        }

        sd_event_source_disable_unref(t->reopen);
        sd_event_source_disable_unref(t->gro_flush);
        free(t->gro);
        sd_event_source_disable_unref(t->io);
        safe_close(t->fd);
        sd_event_unref(t->event);
        free(t->objects);
        free(t->queue.buf);
        free(t->rbuf);
        return mfree(t);
}
