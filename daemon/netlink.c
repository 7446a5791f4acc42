/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "netlink.h"

/* Requests in flight. A request lives in slot seq % NETLINK_PENDING_MAX, so completion is O(1). */
#define NETLINK_PENDING_MAX 4096u
/* Room for every ACK of a full pending table (each costs about 1 KiB of skb truesize), so the kernel never
 * has to drop one. */
#define NETLINK_RCVBUF_SIZE (8 * 1024 * 1024)
/* Our requests carry a fixed header and a few small attributes. */
#define NETLINK_REQUEST_SIZE 512u
/* ACKs are capped (NETLINK_CAP_ACK): the header, struct nlmsgerr and an extended-ACK message. */
#define NETLINK_ACK_BUFFER_SIZE 8192u
/* Datagrams per IO dispatch, so a flood of ACKs does not starve other event sources. */
#define NETLINK_RECEIVE_BATCH 256u
/* A dump datagram is at most 32 KiB (the kernel's cap for dump skbs). */
#define NETLINK_DUMP_BUFFER_SIZE 32768u
#define NETLINK_DUMP_ATTEMPTS 4
#define NETLINK_DUMP_TIMEOUT_SEC 5
/* The protocol our routes and rules carry, so "ip route show proto static" lists them. */
#define NETLINK_PROTOCOL RTPROT_STATIC

typedef struct NetlinkPending {
        uint32_t seq;    /* 0 when the slot is free */
        bool remove;     /* a delete: "no such object" errors are reported as -ENOENT */
        NetlinkCallback callback;
        void *userdata;
} NetlinkPending;

struct Netlink {
        struct mnl_socket *socket;
        sd_event_source *io;
        uint32_t seq;
        unsigned n_pending;
        NetlinkPending pending[NETLINK_PENDING_MAX];
};

typedef union NetlinkRequestBuffer {
        uint8_t bytes[NETLINK_REQUEST_SIZE];
        struct nlmsghdr align;
} NetlinkRequestBuffer;

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void mnl_socket_closep(struct mnl_socket **s) {
        if (*s)
                (void) mnl_socket_close(*s);
}

static size_t family_address_size(int family) {
        switch (family) {
        case AF_INET:
                return sizeof(struct in_addr);
        case AF_INET6:
                return sizeof(struct in6_addr);
        default:
                return 0;
        }
}

static int prefix_validate(const TapotunPrefix *p) {
        size_t size = family_address_size(p->family);

        if (size == 0)
                return -EAFNOSUPPORT;
        if (p->prefixlen > size * 8)
                return -EINVAL;
        return 0;
}

static void netlink_complete(Netlink *nl, uint32_t seq, int error) {
        NetlinkPending *p = &nl->pending[seq % NETLINK_PENDING_MAX];
        NetlinkCallback callback;
        void *userdata;

        /* An ACK for a request that was already failed (flush timeout, lost ACKs) finds its slot free or
         * reused. */
        if (seq == 0 || p->seq != seq)
                return;

        /* Deleting a missing address reports -EADDRNOTAVAIL, a missing route -ESRCH, a missing rule
         * -ENOENT: callers get one code. */
        if (p->remove && (error == -EADDRNOTAVAIL || error == -ESRCH))
                error = -ENOENT;

        callback = p->callback;
        userdata = p->userdata;
        *p = (NetlinkPending) {};
        nl->n_pending--;

        if (callback)
                callback(nl, error, userdata);
}

/* Completes every pending request with ERROR, e.g. after the kernel dropped ACKs we can no longer match. */
static void netlink_fail_all(Netlink *nl, int error) {
        for (size_t i = 0; i < NETLINK_PENDING_MAX && nl->n_pending > 0; i++)
                if (nl->pending[i].seq != 0)
                        netlink_complete(nl, nl->pending[i].seq, error);
}

static int ext_ack_cb(const struct nlattr *attr, void *data) {
        const char **msg = data;

        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
                *msg = mnl_attr_get_str(attr);
        return MNL_CB_OK;
}

static void netlink_handle_error(Netlink *nl, const struct nlmsghdr *nlh, size_t avail) {
        const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
        const char *msg = NULL;

        if (err->error < 0 && (nlh->nlmsg_flags & NLM_F_ACK_TLVS) && nlh->nlmsg_len <= avail) {
                size_t offset = sizeof(*err);

                if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
                        offset += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
                if (NLMSG_HDRLEN + offset <= nlh->nlmsg_len)
                        (void) mnl_attr_parse(nlh, (unsigned) offset, ext_ack_cb, &msg);
        }
        if (err->error < 0)
                log_debug_errno(err->error, "netlink: request %" PRIu32 " failed: %s%s%m", nlh->nlmsg_seq,
                                msg ?: "", msg ? ": " : "");

        netlink_complete(nl, nlh->nlmsg_seq, err->error);
}

/* Reads one datagram and completes the requests it acknowledges. Returns 1 when one was read, 0 when the
 * socket is drained, or a negative errno. The buffer is on the stack because callbacks may flush, which
 * reads this socket again. */
static int netlink_receive_one(Netlink *nl) {
        union {
                uint8_t bytes[NETLINK_ACK_BUFFER_SIZE];
                struct nlmsghdr align;
        } buf;
        struct sockaddr_nl sender = {};
        struct iovec iov = { .iov_base = buf.bytes, .iov_len = sizeof buf.bytes };
        struct msghdr mh = {
                .msg_name = &sender,
                .msg_namelen = sizeof sender,
                .msg_iov = &iov,
                .msg_iovlen = 1,
        };
        ssize_t n;
        size_t len;

        n = recvmsg(mnl_socket_get_fd(nl->socket), &mh, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                if (errno == ENOBUFS) {
                        /* The kernel dropped messages: some ACKs are gone and nothing says which. */
                        log_debug("netlink: receive buffer overrun, failing %u pending requests",
                                  nl->n_pending);
                        netlink_fail_all(nl, -ENOBUFS);
                        return 1;
                }
                return -errno;
        }
        if (sender.nl_pid != 0) /* only the kernel talks to us */
                return 1;

        /* A truncated datagram still carries the error code and sequence number of its messages. */
        len = MIN((size_t) n, sizeof buf.bytes);
        for (size_t off = 0; off + NLMSG_HDRLEN <= len;) {
                const struct nlmsghdr *nlh = (const struct nlmsghdr *) (buf.bytes + off);
                size_t avail = len - off;

                if (nlh->nlmsg_len < NLMSG_HDRLEN)
                        break;
                if (nlh->nlmsg_type == NLMSG_ERROR && avail >= NLMSG_HDRLEN + sizeof(struct nlmsgerr))
                        netlink_handle_error(nl, nlh, avail);
                off += NLMSG_ALIGN(nlh->nlmsg_len);
        }
        return 1;
}

static int on_netlink_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Netlink *nl = userdata;

        for (unsigned i = 0; i < NETLINK_RECEIVE_BATCH; i++) {
                int r = netlink_receive_one(nl);
                if (r < 0) {
                        /* A broken socket would never deliver the ACKs: fail what waits for them. */
                        log_debug_errno(r, "netlink: failed to receive: %m");
                        netlink_fail_all(nl, r);
                        break;
                }
                if (r == 0)
                        break;
        }
        return 0;
}

int netlink_new(sd_event *e, Netlink **ret) {
        _cleanup_(netlink_freep) Netlink *nl = NULL;
        int fd, one = 1, size = NETLINK_RCVBUF_SIZE, r;

        assert(e);
        assert(ret);

        nl = calloc(1, sizeof *nl);
        if (!nl)
                return -ENOMEM;

        nl->socket = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!nl->socket)
                return -errno;
        if (mnl_socket_bind(nl->socket, 0, MNL_SOCKET_AUTOPID) < 0)
                return -errno;
        fd = mnl_socket_get_fd(nl->socket);

        /* FORCE needs CAP_NET_ADMIN, which configuring routes needs anyway; without it take what rmem_max
         * allows. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        /* Small ACKs without a copy of the request, and the kernel's error text for the debug log. Both
         * are optional: older kernels work without. */
        (void) setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
        (void) setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);

        r = sd_event_add_io(e, &nl->io, fd, EPOLLIN, on_netlink_io, nl);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(nl->io, "netlink");

        *ret = TAKE_PTR(nl);
        return 0;
}

/* Pending callbacks are dropped without being called: their owners are being torn down too. */
Netlink *netlink_free(Netlink *nl) {
        if (!nl)
                return NULL;

        sd_event_source_disable_unref(nl->io);
        if (nl->socket)
                (void) mnl_socket_close(nl->socket);
        return mfree(nl);
}

/* On return nothing is pending: on a timeout or a socket error every request still waiting completes with
 * that error, so no callback can run after the caller's stack frame is gone. */
int netlink_flush(Netlink *nl, uint64_t timeout_usec) {
        uint64_t deadline;

        assert(nl);

        deadline = now_usec() + timeout_usec;
        while (nl->n_pending > 0) {
                struct pollfd pfd = { .fd = mnl_socket_get_fd(nl->socket), .events = POLLIN };
                uint64_t now;
                int r;

                r = netlink_receive_one(nl);
                if (r < 0) {
                        netlink_fail_all(nl, r);
                        return r;
                }
                if (r > 0)
                        continue;

                now = now_usec();
                if (now >= deadline) {
                        netlink_fail_all(nl, -ETIMEDOUT);
                        return -ETIMEDOUT;
                }
                /* Round up so we never spin on a sub-millisecond remainder. */
                r = poll(&pfd, 1, (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX));
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        netlink_fail_all(nl, r);
                        return r;
                }
        }
        return 0;
}

static int netlink_send(Netlink *nl, struct nlmsghdr *nlh, bool remove, NetlinkCallback cb, void *userdata) {
        uint32_t seq;

        if (nl->n_pending >= NETLINK_PENDING_MAX)
                return -EBUSY;

        /* Skip sequence numbers whose slot an older request still holds; there is a free slot. */
        do
                seq = ++nl->seq;
        while (seq == 0 || nl->pending[seq % NETLINK_PENDING_MAX].seq != 0);

        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = seq;
        if (mnl_socket_sendto(nl->socket, nlh, nlh->nlmsg_len) < 0)
                return -errno;

        nl->pending[seq % NETLINK_PENDING_MAX] = (NetlinkPending) {
                .seq = seq,
                .remove = remove,
                .callback = cb,
                .userdata = userdata,
        };
        nl->n_pending++;
        return 0;
}

int netlink_link_set(Netlink *nl, int ifindex, uint32_t mtu, bool up, NetlinkCallback cb, void *userdata) {
        NetlinkRequestBuffer buf;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;

        assert(nl);

        if (ifindex <= 0)
                return -EINVAL;

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = RTM_NEWLINK;
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        ifi->ifi_change = IFF_UP;
        ifi->ifi_flags = up ? IFF_UP : 0;
        if (mtu > 0)
                mnl_attr_put_u32(nlh, IFLA_MTU, mtu);

        return netlink_send(nl, nlh, false, cb, userdata);
}

int netlink_link_accept_local(Netlink *nl, int ifindex, bool accept, NetlinkCallback cb, void *userdata) {
        NetlinkRequestBuffer buf;
        struct nlmsghdr *nlh;
        struct ifinfomsg *ifi;
        struct nlattr *spec, *inet, *conf;

        assert(nl);

        if (ifindex <= 0)
                return -EINVAL;

        /* IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { [IPV4_DEVCONF_ACCEPT_LOCAL] = u32 } } }: the devconf
         * setting without /proc/sys, which a hardened service sees read-only. */
        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = RTM_NEWLINK;
        ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
        inet = mnl_attr_nest_start(nlh, AF_INET);
        conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
        mnl_attr_put_u32(nlh, IPV4_DEVCONF_ACCEPT_LOCAL, accept);
        mnl_attr_nest_end(nlh, conf);
        mnl_attr_nest_end(nlh, inet);
        mnl_attr_nest_end(nlh, spec);

        return netlink_send(nl, nlh, false, cb, userdata);
}

int netlink_address(Netlink *nl, bool add, int ifindex, const TapotunPrefix *address, NetlinkCallback cb,
                    void *userdata) {
        NetlinkRequestBuffer buf;
        struct nlmsghdr *nlh;
        struct ifaddrmsg *ifa;
        size_t size;
        int r;

        assert(nl);
        assert(address);

        if (ifindex <= 0)
                return -EINVAL;
        r = prefix_validate(address);
        if (r < 0)
                return r;
        size = family_address_size(address->family);

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
        if (add)
                nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
        ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
        ifa->ifa_family = (uint8_t) address->family;
        ifa->ifa_prefixlen = address->prefixlen;
        ifa->ifa_scope = RT_SCOPE_UNIVERSE;
        ifa->ifa_index = (uint32_t) ifindex;

        if (address->family == AF_INET) {
                /* On a point-to-point device IFA_ADDRESS is the peer; equal to IFA_LOCAL it means none. */
                mnl_attr_put(nlh, IFA_LOCAL, size, address->addr.bytes);
                mnl_attr_put(nlh, IFA_ADDRESS, size, address->addr.bytes);
        } else {
                mnl_attr_put(nlh, IFA_ADDRESS, size, address->addr.bytes);
                if (add) {
                        /* Where the kernel runs duplicate address detection (not on a TUN, which has no
                         * link layer), it keeps the address unusable for a second or more. */
                        ifa->ifa_flags = IFA_F_NODAD;
                        mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
                }
        }

        return netlink_send(nl, nlh, !add, cb, userdata);
}

int netlink_route(Netlink *nl, bool add, int ifindex, const TapotunPrefix *dst, uint32_t table,
                  NetlinkCallback cb, void *userdata) {
        NetlinkRequestBuffer buf;
        struct nlmsghdr *nlh;
        struct rtmsg *rtm;
        int r;

        assert(nl);
        assert(dst);

        if (ifindex <= 0 || table == RT_TABLE_UNSPEC)
                return -EINVAL;
        r = prefix_validate(dst);
        if (r < 0)
                return r;

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
        if (add)
                nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
        rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
        rtm->rtm_family = (uint8_t) dst->family;
        rtm->rtm_dst_len = dst->prefixlen;
        rtm->rtm_table = table < 256 ? (uint8_t) table : RT_TABLE_UNSPEC;
        rtm->rtm_protocol = NETLINK_PROTOCOL;
        /* A delete matches any scope and type, like "ip route del"; the protocol and device still keep it
         * off routes that are not ours. */
        rtm->rtm_scope = add ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE;
        rtm->rtm_type = add ? RTN_UNICAST : RTN_UNSPEC;

        mnl_attr_put_u32(nlh, RTA_TABLE, table);
        if (dst->prefixlen > 0)
                mnl_attr_put(nlh, RTA_DST, family_address_size(dst->family), dst->addr.bytes);
        mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t) ifindex);

        return netlink_send(nl, nlh, !add, cb, userdata);
}

/* PRIORITY 0 lets the kernel choose the preference (as "ip rule add" without "pref" does) instead of
 * putting the rule at 0, in front of the local table. */
int netlink_rule(Netlink *nl, bool add, int family, uint32_t fwmark, uint32_t table, uint32_t priority,
                 NetlinkCallback cb, void *userdata) {
        NetlinkRequestBuffer buf;
        struct nlmsghdr *nlh;
        struct fib_rule_hdr *frh;

        assert(nl);

        if (family_address_size(family) == 0)
                return -EAFNOSUPPORT;
        /* fwmark 0 would match every packet. */
        if (fwmark == 0 || table == RT_TABLE_UNSPEC)
                return -EINVAL;

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = add ? RTM_NEWRULE : RTM_DELRULE;
        if (add)
                nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
        frh = mnl_nlmsg_put_extra_header(nlh, sizeof *frh);
        frh->family = (uint8_t) family;
        frh->table = table < 256 ? (uint8_t) table : RT_TABLE_UNSPEC;
        frh->action = FR_ACT_TO_TBL;

        mnl_attr_put_u32(nlh, FRA_FWMARK, fwmark);
        mnl_attr_put_u32(nlh, FRA_FWMASK, UINT32_MAX);
        mnl_attr_put_u32(nlh, FRA_TABLE, table);
        if (priority > 0)
                mnl_attr_put_u32(nlh, FRA_PRIORITY, priority);
        mnl_attr_put_u8(nlh, FRA_PROTOCOL, NETLINK_PROTOCOL);

        return netlink_send(nl, nlh, !add, cb, userdata);
}

/* ------------------------------------------------------------------------------------------------ */
/* Read-back through dumps on a short-lived blocking socket, so they never interleave with the ACKs of the
 * main socket. */

typedef struct AttrTable {
        const struct nlattr **tb;
        uint16_t max;
} AttrTable;

static int attr_table_cb(const struct nlattr *attr, void *data) {
        AttrTable *t = data;
        uint16_t type = mnl_attr_get_type(attr);

        if (type <= t->max)
                t->tb[type] = attr;
        return MNL_CB_OK;
}

static int attrs_parse(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb, uint16_t max) {
        AttrTable t = { .tb = tb, .max = max };

        if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
                return -EBADMSG;
        if (mnl_attr_parse(nlh, (unsigned) hdrlen, attr_table_cb, &t) < 0)
                return -EBADMSG;
        return 0;
}

/* An absent attribute reads as DEF; one of the wrong size as never matching. */
static bool attr_u32_equal(const struct nlattr *a, uint32_t def, uint32_t want) {
        if (!a)
                return def == want;
        return mnl_attr_get_payload_len(a) == sizeof(uint32_t) && mnl_attr_get_u32(a) == want;
}

static bool attr_address_equal(const struct nlattr *a, const TapotunPrefix *p) {
        static const uint8_t zero[16] = {};
        size_t size = family_address_size(p->family);

        if (!a) /* a default route has no RTA_DST */
                return p->prefixlen == 0 && memcmp(p->addr.bytes, zero, size) == 0;
        return mnl_attr_get_payload_len(a) == size &&
               memcmp(mnl_attr_get_payload(a), p->addr.bytes, size) == 0;
}

static int netlink_dump_once(struct nlmsghdr *request, mnl_cb_t cb, void *data) {
        _cleanup_(mnl_socket_closep) struct mnl_socket *sock = NULL;
        _cleanup_(freep) uint8_t *buf = NULL;
        struct timeval tv = { .tv_sec = NETLINK_DUMP_TIMEOUT_SEC };
        int one = 1;
        uint32_t portid;

        sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!sock)
                return -errno;
        if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0)
                return -errno;
        portid = mnl_socket_get_portid(sock);
        /* A dump should finish at once; never let a stuck one hang the daemon. */
        if (setsockopt(mnl_socket_get_fd(sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
                return -errno;
        /* Lets the kernel filter by the header fields and attributes we set (Linux >= 4.20); we filter
         * again ourselves for older kernels. */
        (void) setsockopt(mnl_socket_get_fd(sock), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof one);

        buf = malloc(NETLINK_DUMP_BUFFER_SIZE);
        if (!buf)
                return -ENOMEM;

        request->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        request->nlmsg_seq = 1;
        if (mnl_socket_sendto(sock, request, request->nlmsg_len) < 0)
                return -errno;

        for (;;) {
                ssize_t n;
                int r;

                n = mnl_socket_recvfrom(sock, buf, NETLINK_DUMP_BUFFER_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? -ETIMEDOUT : -errno;
                }
                r = mnl_cb_run(buf, (size_t) n, 1, portid, cb, data);
                if (r < 0)
                        return -errno; /* -EINTR when the dump was interrupted by a change */
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

/* FOUND is the flag CB sets in DATA; it is cleared before every attempt. */
static int netlink_dump(struct nlmsghdr *request, mnl_cb_t cb, void *data, bool *found) {
        int r;

        for (int attempt = 1;; attempt++) {
                *found = false;
                r = netlink_dump_once(request, cb, data);
                /* An interrupted dump may have missed objects: retry on a fresh socket. */
                if (r != -EINTR || attempt >= NETLINK_DUMP_ATTEMPTS)
                        return r;
        }
}

typedef struct AddressMatch {
        int ifindex;
        const TapotunPrefix *address;
        bool found;
} AddressMatch;

static int address_match_cb(const struct nlmsghdr *nlh, void *data) {
        const struct nlattr *tb[IFA_MAX + 1] = {};
        AddressMatch *m = data;
        const struct ifaddrmsg *ifa;

        if (nlh->nlmsg_type != RTM_NEWADDR || attrs_parse(nlh, sizeof *ifa, tb, IFA_MAX) < 0)
                return MNL_CB_OK;
        ifa = mnl_nlmsg_get_payload(nlh);
        if (ifa->ifa_family != m->address->family || (int) ifa->ifa_index != m->ifindex ||
            ifa->ifa_prefixlen != m->address->prefixlen)
                return MNL_CB_OK;
        if (!attr_address_equal(tb[IFA_LOCAL] ?: tb[IFA_ADDRESS], m->address))
                return MNL_CB_OK;

        m->found = true;
        return MNL_CB_STOP;
}

int netlink_address_exists(Netlink *nl, int ifindex, const TapotunPrefix *address) {
        NetlinkRequestBuffer buf;
        AddressMatch m = { .ifindex = ifindex, .address = address };
        struct nlmsghdr *nlh;
        struct ifaddrmsg *ifa;
        int r;

        assert(nl);
        assert(address);

        r = prefix_validate(address);
        if (r < 0)
                return r;

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = RTM_GETADDR;
        ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
        ifa->ifa_family = (uint8_t) address->family;
        ifa->ifa_index = (uint32_t) ifindex;

        r = netlink_dump(nlh, address_match_cb, &m, &m.found);
        if (r < 0)
                return r;
        return m.found;
}

typedef struct RouteMatch {
        int ifindex;
        const TapotunPrefix *dst;
        uint32_t table;
        bool found;
} RouteMatch;

static int route_match_cb(const struct nlmsghdr *nlh, void *data) {
        const struct nlattr *tb[RTA_MAX + 1] = {};
        RouteMatch *m = data;
        const struct rtmsg *rtm;

        if (nlh->nlmsg_type != RTM_NEWROUTE || attrs_parse(nlh, sizeof *rtm, tb, RTA_MAX) < 0)
                return MNL_CB_OK;
        rtm = mnl_nlmsg_get_payload(nlh);
        if (rtm->rtm_family != m->dst->family || rtm->rtm_dst_len != m->dst->prefixlen ||
            rtm->rtm_type != RTN_UNICAST)
                return MNL_CB_OK;
        if (!attr_u32_equal(tb[RTA_TABLE], rtm->rtm_table, m->table) ||
            !attr_u32_equal(tb[RTA_OIF], 0, (uint32_t) m->ifindex) ||
            !attr_address_equal(tb[RTA_DST], m->dst))
                return MNL_CB_OK;

        m->found = true;
        return MNL_CB_STOP;
}

int netlink_route_exists(Netlink *nl, int ifindex, const TapotunPrefix *dst, uint32_t table) {
        NetlinkRequestBuffer buf;
        RouteMatch m = { .ifindex = ifindex, .dst = dst, .table = table };
        struct nlmsghdr *nlh;
        struct rtmsg *rtm;
        int r;

        assert(nl);
        assert(dst);

        r = prefix_validate(dst);
        if (r < 0)
                return r;

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = RTM_GETROUTE;
        rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
        rtm->rtm_family = (uint8_t) dst->family;
        mnl_attr_put_u32(nlh, RTA_TABLE, table);
        mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t) ifindex);

        r = netlink_dump(nlh, route_match_cb, &m, &m.found);
        if (r == -ENOENT) /* strict dumps of a table that does not exist */
                return 0;
        if (r < 0)
                return r;
        return m.found;
}

typedef struct RuleMatch {
        int family;
        uint32_t fwmark, table, priority;
        bool found;
} RuleMatch;

static int rule_match_cb(const struct nlmsghdr *nlh, void *data) {
        const struct nlattr *tb[FRA_MAX + 1] = {};
        RuleMatch *m = data;
        const struct fib_rule_hdr *frh;

        if (nlh->nlmsg_type != RTM_NEWRULE || attrs_parse(nlh, sizeof *frh, tb, FRA_MAX) < 0)
                return MNL_CB_OK;
        frh = mnl_nlmsg_get_payload(nlh);
        /* Only the plain "fwmark M lookup T": any further selector makes it another rule. */
        if (frh->family != m->family || frh->action != FR_ACT_TO_TBL || frh->src_len != 0 ||
            frh->dst_len != 0 || frh->tos != 0 || (frh->flags & FIB_RULE_INVERT) || tb[FRA_IIFNAME] ||
            tb[FRA_OIFNAME])
                return MNL_CB_OK;
        if (!attr_u32_equal(tb[FRA_FWMARK], 0, m->fwmark) ||
            !attr_u32_equal(tb[FRA_FWMASK], UINT32_MAX, UINT32_MAX) ||
            !attr_u32_equal(tb[FRA_TABLE], frh->table, m->table))
                return MNL_CB_OK;
        if (m->priority > 0 && !attr_u32_equal(tb[FRA_PRIORITY], 0, m->priority))
                return MNL_CB_OK;

        m->found = true;
        return MNL_CB_STOP;
}

/* PRIORITY 0 matches a rule of any preference, as netlink_rule() leaves the choice to the kernel. */
int netlink_rule_exists(Netlink *nl, int family, uint32_t fwmark, uint32_t table, uint32_t priority) {
        NetlinkRequestBuffer buf;
        RuleMatch m = { .family = family, .fwmark = fwmark, .table = table, .priority = priority };
        struct nlmsghdr *nlh;
        struct fib_rule_hdr *frh;
        int r;

        assert(nl);

        if (family_address_size(family) == 0)
                return -EAFNOSUPPORT;

        nlh = mnl_nlmsg_put_header(buf.bytes);
        nlh->nlmsg_type = RTM_GETRULE;
        frh = mnl_nlmsg_put_extra_header(nlh, sizeof *frh);
        frh->family = (uint8_t) family;

        r = netlink_dump(nlh, rule_match_cb, &m, &m.found);
        if (r < 0)
                return r;
        return m.found;
}
