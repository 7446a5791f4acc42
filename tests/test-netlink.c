/* SPDX-License-Identifier: MIT */
/* Root suite: real TUN devices, addresses, routes and rules. Every case runs in a subprocess that first
 * moves into a network namespace (and a mount namespace, for a /sys of that network namespace) of its
 * own, so nothing here can touch the machine's own network configuration. `ip -j` reads the state back
 * and pre-creates objects, always inside that namespace. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <jansson.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "netlink.h"
#include "tunnel.h"
#include "wire.h"

#define NETLINK_TIMEOUT_USEC (5 * G_USEC_PER_SEC)
#define ECHO_ID 0x7a7a

static const char *skip_reason;

/* ------------------------------------------------------------------------------------------------ */
/* write() under test control. A real TUN never says EAGAIN to a writer in practice: the kernel processes
 * each written packet and frees its buffer before write() returns, so even TUNSETSNDBUF=1 does not fill
 * the socket's send buffer (tried: 2000 of 2000 writes succeed). The queue tests therefore make write()
 * on the tunnel's fd report EAGAIN; everything else about the fd is real. Defining write() here binds
 * the daemon library's calls to it; shared libraries keep libc's (the symbol is not exported). */

static int write_fd = -1;
static long write_budget = -1; /* writes to WRITE_FD still allowed before EAGAIN; -1: unlimited */

ssize_t write(int fd, const void *buf, size_t count) {
        if (fd >= 0 && fd == write_fd && write_budget >= 0) {
                if (write_budget == 0) {
                        errno = EAGAIN;
                        return -1;
                }
                write_budget--;
        }
        return syscall(SYS_write, fd, buf, count);
}

/* The tunnel's fd: the /dev/net/tun file attached to NAME. */
static int find_tun_fd(const char *name) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int found = -1;

        g_assert_nonnull(d);
        while ((de = readdir(d))) {
                char target[64] = {};
                struct ifreq ifr = {};
                int fd = atoi(de->d_name);

                if (readlinkat(dirfd(d), de->d_name, target, sizeof target - 1) < 0 ||
                    !g_str_equal(target, "/dev/net/tun"))
                        continue;
                if (ioctl(fd, TUNGETIFF, &ifr) >= 0 && g_str_equal(ifr.ifr_name, name))
                        found = fd;
        }
        closedir(d);
        g_assert_cmpint(found, >=, 0);
        return found;
}

/* ------------------------------------------------------------------------------------------------ */
/* Namespaces */

static const char *check_prerequisites(void) {
        g_autofree char *ip = NULL;
        int fd, status;
        pid_t pid;

        if (geteuid() != 0)
                return "not running as root";
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return "/dev/net/tun cannot be opened";
        close(fd);
        ip = g_find_program_in_path("ip");
        if (!ip)
                return "the ip command (iproute2) is not installed";

        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0)
                _exit(unshare(CLONE_NEWNET | CLONE_NEWNS) < 0 ? 1 : 0);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return "cannot create network namespaces (unshare)";
        return NULL;
}

/* In the test process: runs the current case in a subprocess and returns false. In that subprocess:
 * enters fresh namespaces and returns true. */
static bool in_namespace(void) {
        if (skip_reason) {
                g_test_skip(skip_reason);
                return false;
        }
        if (!g_test_subprocess()) {
                g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
                g_test_trap_assert_passed();
                return false;
        }

        /* Abort rather than go on in the machine's namespace. */
        if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
                g_error("unshare(CLONE_NEWNET|CLONE_NEWNS): %s", g_strerror(errno));
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                g_error("making / private: %s", g_strerror(errno));
        if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0)
                g_error("mounting /sys for the new network namespace: %s", g_strerror(errno));
        return true;
}

/* ------------------------------------------------------------------------------------------------ */
/* `ip` */

static char *ip_spawn(const char *args, int *ret_status, char **ret_stderr) {
        g_autofree char *cmd = g_strdup_printf("ip %s", args);
        g_auto(GStrv) argv = NULL;
        GError *error = NULL;
        char *out = NULL;

        g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, ret_stderr,
                                   ret_status, &error));
        g_assert_no_error(error);
        return out;
}

static void ip_run(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void ip_run(const char *format, ...) {
        g_autofree char *args = NULL, *out = NULL, *err = NULL;
        va_list ap;
        int status;

        va_start(ap, format);
        args = g_strdup_vprintf(format, ap);
        va_end(ap);

        out = ip_spawn(args, &status, &err);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("'ip %s' failed: %s", args, err);
}

/* The JSON array `ip -j ARGS` prints. */
static json_t *ip_json(const char *format, ...) G_GNUC_PRINTF(1, 2);
static json_t *ip_json(const char *format, ...) {
        g_autofree char *args = NULL, *cmd = NULL, *out = NULL, *err = NULL;
        json_error_t jerr;
        json_t *j;
        va_list ap;
        int status;

        va_start(ap, format);
        args = g_strdup_vprintf(format, ap);
        va_end(ap);
        cmd = g_strdup_printf("-j %s", args);

        out = ip_spawn(cmd, &status, &err);
        if (!g_spawn_check_wait_status(status, NULL)) {
                /* Listing a routing table that does not exist fails; for us it is an empty one. */
                if (strstr(err, "does not exist"))
                        return json_array();
                g_error("'ip %s' failed: %s", cmd, err);
        }
        if (g_strstrip(out)[0] == '\0')
                return json_array();
        j = json_loads(out, 0, &jerr);
        if (!j)
                g_error("'ip %s' printed no JSON (%s): %s", cmd, jerr.text, out);
        g_assert_true(json_is_array(j));
        return j;
}

static bool json_str_eq(json_t *o, const char *key, const char *want) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) && g_str_equal(json_string_value(v), want);
}

static unsigned count_addresses(const char *dev, const char *family, const char *local, unsigned prefixlen) {
        json_t *links = ip_json("addr show dev %s", dev), *link, *addr;
        unsigned n = 0;
        size_t i, k;

        json_array_foreach(links, i, link)
                json_array_foreach(json_object_get(link, "addr_info"), k, addr)
                        if (json_str_eq(addr, "family", family) && json_str_eq(addr, "local", local) &&
                            json_integer_value(json_object_get(addr, "prefixlen")) == prefixlen)
                                n++;
        json_decref(links);
        return n;
}

/* Whether DEV's address LOCAL carries FLAG ("tentative", "nodad", ...). */
static bool address_flag(const char *dev, const char *local, const char *flag) {
        json_t *links = ip_json("addr show dev %s", dev), *link, *addr;
        bool set = false;
        size_t i, k;

        json_array_foreach(links, i, link)
                json_array_foreach(json_object_get(link, "addr_info"), k, addr)
                        if (json_str_eq(addr, "local", local) && json_is_true(json_object_get(addr, flag)))
                                set = true;
        json_decref(links);
        return set;
}

/* Routes to DST ("default", "10.1.0.0/16", a host without "/32") in TABLE via DEV. */
static unsigned count_routes(bool v6, uint32_t table, const char *dst, const char *dev) {
        json_t *routes = ip_json("%s route show table %u", v6 ? "-6" : "-4", table), *route;
        unsigned n = 0;
        size_t i;

        json_array_foreach(routes, i, route)
                if (json_str_eq(route, "dst", dst) && json_str_eq(route, "dev", dev))
                        n++;
        json_decref(routes);
        return n;
}

static unsigned count_rules(bool v6, uint32_t priority, uint32_t fwmark, uint32_t table) {
        json_t *rules = ip_json("%s rule show", v6 ? "-6" : "-4"), *rule;
        char mark[16], tab[16];
        unsigned n = 0;
        size_t i;

        snprintf(mark, sizeof mark, "0x%x", fwmark);
        snprintf(tab, sizeof tab, "%u", table);
        json_array_foreach(rules, i, rule)
                if (json_integer_value(json_object_get(rule, "priority")) == priority &&
                    json_str_eq(rule, "fwmark", mark) && json_str_eq(rule, "table", tab))
                        n++;
        json_decref(rules);
        return n;
}

/* ------------------------------------------------------------------------------------------------ */
/* Fixtures */

typedef struct Env {
        sd_event *event;
        Netlink *netlink;
} Env;

static void env_init(Env *env) {
        g_assert_cmpint(sd_event_new(&env->event), >=, 0);
        g_assert_cmpint(netlink_new(env->event, &env->netlink), ==, 0);
}

static void env_done(Env *env) {
        env->netlink = netlink_free(env->netlink);
        env->event = sd_event_unref(env->event);
}

static Tunnel *tunnel_create(Env *env, const char *name, uint32_t offloads) {
        Tunnel *t = NULL;

        g_assert_cmpint(tunnel_new(env->event, env->netlink, name, offloads, &t), ==, 0);
        g_assert_nonnull(t);
        g_assert_cmpstr(tunnel_get_name(t), ==, name);
        return t;
}

static TapotunPrefix prefix(const char *s) {
        g_auto(GStrv) parts = g_strsplit(s, "/", 2);
        TapotunPrefix p = {};

        if (inet_pton(AF_INET, parts[0], &p.addr.in) == 1)
                p.family = AF_INET;
        else if (inet_pton(AF_INET6, parts[0], &p.addr.in6) == 1)
                p.family = AF_INET6;
        else
                g_error("bad test prefix %s", s);
        p.prefixlen = parts[1] ? (uint8_t) atoi(parts[1]) : (p.family == AF_INET ? 32 : 128);
        return p;
}

static void on_netlink_done(Netlink *nl, int error, void *userdata) {
        *(int *) userdata = error;
}

/* Completes one netlink request (R is what sending it returned) and returns its result. */
static int netlink_wait(Env *env, int r, int *result) {
        g_assert_cmpint(r, ==, 0);
        *result = 1;
        g_assert_cmpint(netlink_flush(env->netlink, NETLINK_TIMEOUT_USEC), ==, 0);
        g_assert_cmpint(*result, <=, 0);
        return *result;
}

/* ethtool's view of an offload feature ("tx-tcp-segmentation", ...): whether it is active on DEV. */
static bool feature_active(const char *dev, const char *feature) {
        g_autofree struct ethtool_sset_info *sset = NULL;
        g_autofree struct ethtool_gstrings *strings = NULL;
        g_autofree struct ethtool_gfeatures *features = NULL;
        struct ifreq ifr = {};
        unsigned count, blocks, index = UINT_MAX;
        bool active;
        int fd;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        g_strlcpy(ifr.ifr_name, dev, sizeof ifr.ifr_name);

        sset = g_malloc0(sizeof *sset + sizeof(uint32_t));
        sset->cmd = ETHTOOL_GSSET_INFO;
        sset->sset_mask = 1ULL << ETH_SS_FEATURES;
        ifr.ifr_data = (void *) sset;
        g_assert_cmpint(ioctl(fd, SIOCETHTOOL, &ifr), ==, 0);
        count = sset->data[0];

        strings = g_malloc0(sizeof *strings + count * ETH_GSTRING_LEN);
        strings->cmd = ETHTOOL_GSTRINGS;
        strings->string_set = ETH_SS_FEATURES;
        strings->len = count;
        ifr.ifr_data = (void *) strings;
        g_assert_cmpint(ioctl(fd, SIOCETHTOOL, &ifr), ==, 0);
        for (unsigned i = 0; i < count; i++) {
                const char *name = (const char *) strings->data + i * ETH_GSTRING_LEN;

                if (strncmp(name, feature, ETH_GSTRING_LEN) == 0)
                        index = i;
        }
        g_assert_cmpuint(index, !=, UINT_MAX);

        blocks = (count + 31) / 32;
        features = g_malloc0(sizeof *features + blocks * sizeof(struct ethtool_get_features_block));
        features->cmd = ETHTOOL_GFEATURES;
        features->size = blocks;
        ifr.ifr_data = (void *) features;
        g_assert_cmpint(ioctl(fd, SIOCETHTOOL, &ifr), ==, 0);
        active = features->features[index / 32].active & (1u << (index % 32));

        close(fd);
        return active;
}

static void assert_kernel_offloads(const char *dev, uint32_t offloads) {
        static const struct {
                uint32_t bit;
                const char *feature;
        } map[] = {
                { WIRE_OFFLOAD_CSUM, "tx-checksum-ip-generic" },
                { WIRE_OFFLOAD_TSO4, "tx-tcp-segmentation" },
                { WIRE_OFFLOAD_TSO6, "tx-tcp6-segmentation" },
                { WIRE_OFFLOAD_ECN, "tx-tcp-ecn-segmentation" },
                { WIRE_OFFLOAD_USO4, "tx-udp-segmentation" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
                if (g_test_verbose())
                        g_printerr("%s: %s %s\n", dev, map[i].feature,
                                   feature_active(dev, map[i].feature) ? "on" : "off");
                g_assert_cmpint(feature_active(dev, map[i].feature), ==, !!(offloads & map[i].bit));
        }
}

/* ------------------------------------------------------------------------------------------------ */
/* Device */

static void test_tunnel_new_offloads(void) {
        static const struct {
                const char *name;
                uint32_t wanted;
                uint32_t expected; /* UINT32_MAX: "all": depends on the kernel, checked below */
        } cases[] = {
                { "all", WIRE_OFFLOAD_ALL, UINT32_MAX },
                { "v1", WIRE_OFFLOAD_V1, WIRE_OFFLOAD_V1 },
                /* The kernel takes USO4 only together with USO6: USO is dropped, the rest kept. */
                { "uso4-alone", WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4 | WIRE_OFFLOAD_TSO6 | WIRE_OFFLOAD_USO4,
                  WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_TSO4 | WIRE_OFFLOAD_TSO6 },
                /* ECN without TSO is refused, leaving CSUM. */
                { "ecn-without-tso", WIRE_OFFLOAD_CSUM | WIRE_OFFLOAD_ECN, WIRE_OFFLOAD_CSUM },
                /* TSO without CSUM is refused altogether. */
                { "tso-without-csum", WIRE_OFFLOAD_TSO4 | WIRE_OFFLOAD_TSO6, 0 },
                { "none", 0, 0 },
                /* Bits the kernel does not know are not even tried. */
                { "unknown-bits", WIRE_OFFLOAD_CSUM | 0x10000u, WIRE_OFFLOAD_CSUM },
        };
        Env env = {};

        if (!in_namespace())
                return;
        env_init(&env);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *name = g_strdup_printf("tt-off%zu", i), *sys = NULL;
                Tunnel *t = tunnel_create(&env, name, cases[i].wanted);
                uint32_t got = tunnel_get_offloads(t);
                json_t *links, *info;

                g_test_message("case %s: wanted 0x%x, accepted 0x%x", cases[i].name, cases[i].wanted, got);
                if (cases[i].expected == UINT32_MAX) {
                        /* Every kernel we run on has the V1 set; USO (Linux 6.2) comes as a pair. */
                        g_assert_cmphex(got & WIRE_OFFLOAD_V1, ==, WIRE_OFFLOAD_V1);
                        g_assert_cmphex(got & ~WIRE_OFFLOAD_ALL, ==, 0);
                        g_assert_cmpint(!!(got & WIRE_OFFLOAD_USO4), ==, !!(got & WIRE_OFFLOAD_USO6));
                } else
                        g_assert_cmphex(got, ==, cases[i].expected);

                /* The device exists, in this namespace, as a TUN with a vnet header and no packet info. */
                g_assert_cmpint(tunnel_get_ifindex(t), ==, (int) if_nametoindex(name));
                sys = g_strdup_printf("/sys/class/net/%s", name);
                g_assert_true(g_file_test(sys, G_FILE_TEST_IS_DIR));
                links = ip_json("-d link show dev %s", name);
                g_assert_cmpuint(json_array_size(links), ==, 1);
                info = json_object_get(json_object_get(json_array_get(links, 0), "linkinfo"), "info_data");
                g_assert_true(json_str_eq(info, "type", "tun"));
                g_assert_true(json_is_false(json_object_get(info, "pi")));
                g_assert_true(json_is_true(json_object_get(info, "vnet_hdr")));
                json_decref(links);

                /* What we recorded is what the device does. */
                assert_kernel_offloads(name, got);
                tunnel_free(t);
                g_assert_false(g_file_test(sys, G_FILE_TEST_EXISTS));
        }
        env_done(&env);
}

static void test_tunnel_set_offloads_change(void) {
        Env env = {};
        Tunnel *t;
        uint32_t accepted = 0;

        if (!in_namespace())
                return;
        env_init(&env);

        t = tunnel_create(&env, "tt-chg", 0);
        assert_kernel_offloads("tt-chg", 0);

        g_assert_cmpint(tunnel_set_offloads(t, WIRE_OFFLOAD_V1, &accepted), ==, 0);
        g_assert_cmphex(accepted, ==, WIRE_OFFLOAD_V1);
        g_assert_cmphex(tunnel_get_offloads(t), ==, WIRE_OFFLOAD_V1);
        assert_kernel_offloads("tt-chg", WIRE_OFFLOAD_V1);

        g_assert_cmpint(tunnel_set_offloads(t, WIRE_OFFLOAD_CSUM, NULL), ==, 0);
        g_assert_cmphex(tunnel_get_offloads(t), ==, WIRE_OFFLOAD_CSUM);
        assert_kernel_offloads("tt-chg", WIRE_OFFLOAD_CSUM);

        tunnel_free(t);
        env_done(&env);
}

static void test_tunnel_new_invalid(void) {
        Env env = {};
        Tunnel *t = NULL;

        if (!in_namespace())
                return;
        env_init(&env);

        g_assert_cmpint(tunnel_new(env.event, env.netlink, "a-name-far-too-long", 0, &t), ==, -EINVAL);
        g_assert_null(t);
        /* A TAP device of that name cannot be taken over as a TUN. */
        ip_run("tuntap add dev tt-tap mode tap");
        g_assert_cmpint(tunnel_new(env.event, env.netlink, "tt-tap", 0, &t), ==, -EINVAL);
        g_assert_null(t);

        env_done(&env);
}

static void test_tunnel_set_mtu_up(void) {
        Env env = {};
        json_t *links, *flags, *flag;
        bool up = false;
        Tunnel *t;
        size_t i;

        if (!in_namespace())
                return;
        env_init(&env);

        t = tunnel_create(&env, "tt-mtu", WIRE_OFFLOAD_V1);
        g_assert_cmpint(tunnel_set_mtu_up(t, 1400), ==, 0);

        links = ip_json("link show dev tt-mtu");
        g_assert_cmpint(json_integer_value(json_object_get(json_array_get(links, 0), "mtu")), ==, 1400);
        flags = json_object_get(json_array_get(links, 0), "flags");
        json_array_foreach(flags, i, flag)
                if (g_str_equal(json_string_value(flag), "UP"))
                        up = true;
        g_assert_true(up);
        json_decref(links);

        /* The kernel's own limit comes back as an error. */
        g_assert_cmpint(tunnel_set_mtu_up(t, 10), ==, -EINVAL);

        tunnel_free(t);
        env_done(&env);
}

/* ------------------------------------------------------------------------------------------------ */
/* Addresses, routes, rules */

static void test_tunnel_add_address(void) {
        static const struct {
                const char *prefix;
                const char *family;
        } cases[] = {
                { "10.10.0.1/24", "inet" },
                { "fd00:10::1/64", "inet6" },
                { "10.10.1.1/32", "inet" },
        };
        Env env = {};
        Tunnel *t;

        if (!in_namespace())
                return;
        env_init(&env);

        t = tunnel_create(&env, "tt-addr", WIRE_OFFLOAD_V1);
        g_assert_cmpint(tunnel_set_mtu_up(t, 1500), ==, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                TapotunPrefix p = prefix(cases[i].prefix);
                g_auto(GStrv) parts = g_strsplit(cases[i].prefix, "/", 2);

                g_assert_cmpint(netlink_address_exists(env.netlink, tunnel_get_ifindex(t), &p), ==, 0);
                g_assert_cmpint(tunnel_add_address(t, &p), ==, 0);
                g_assert_cmpuint(count_addresses("tt-addr", cases[i].family, parts[0], p.prefixlen), ==, 1);
                g_assert_cmpint(netlink_address_exists(env.netlink, tunnel_get_ifindex(t), &p), ==, 1);
                /* Usable at once, and IPv6 addresses are marked to skip duplicate address detection
                 * (which a TUN, having no link layer, skips anyway). */
                g_assert_false(address_flag("tt-addr", parts[0], "tentative"));
                g_assert_cmpint(address_flag("tt-addr", parts[0], "nodad"), ==, p.family == AF_INET6);

                /* Again: success, no duplicate. */
                g_assert_cmpint(tunnel_add_address(t, &p), ==, 0);
                g_assert_cmpuint(count_addresses("tt-addr", cases[i].family, parts[0], p.prefixlen), ==, 1);
        }

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                TapotunPrefix p = prefix(cases[i].prefix);
                g_auto(GStrv) parts = g_strsplit(cases[i].prefix, "/", 2);

                g_assert_cmpint(tunnel_remove_address(t, &p), ==, 0);
                g_assert_cmpuint(count_addresses("tt-addr", cases[i].family, parts[0], p.prefixlen), ==, 0);
                g_assert_cmpint(netlink_address_exists(env.netlink, tunnel_get_ifindex(t), &p), ==, 0);
                /* Removing what is gone is fine. */
                g_assert_cmpint(tunnel_remove_address(t, &p), ==, 0);
        }

        tunnel_free(t);
        env_done(&env);
}

static const struct {
        const char *prefix;
        const char *shown; /* as `ip route` prints the destination */
        uint32_t table;
} route_cases[] = {
        { "10.20.0.0/16", "10.20.0.0/16", RT_TABLE_MAIN },
        { "10.30.0.0/16", "10.30.0.0/16", 100 },
        { "10.30.0.7/32", "10.30.0.7", 100 },
        { "10.31.0.0/16", "10.31.0.0/16", 1000 },
        { "0.0.0.0/0", "default", 100 },
        { "fd00:20::/48", "fd00:20::/48", RT_TABLE_MAIN },
        { "fd00:30::/48", "fd00:30::/48", 100 },
        { "fd00:31::/48", "fd00:31::/48", 1000 },
        { "::/0", "default", 100 },
};

static void test_tunnel_add_route(void) {
        Env env = {};
        Tunnel *t;

        if (!in_namespace())
                return;
        env_init(&env);

        t = tunnel_create(&env, "tt-route", WIRE_OFFLOAD_V1);
        g_assert_cmpint(tunnel_set_mtu_up(t, 1500), ==, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(route_cases); i++) {
                TapotunPrefix p = prefix(route_cases[i].prefix);
                bool v6 = p.family == AF_INET6;
                uint32_t table = route_cases[i].table;
                json_t *routes, *route;
                size_t k;

                g_test_message("route %s table %u", route_cases[i].prefix, table);
                g_assert_cmpint(netlink_route_exists(env.netlink, tunnel_get_ifindex(t), &p, table), ==, 0);
                g_assert_cmpint(tunnel_add_route(t, &p, table), ==, 0);
                g_assert_cmpuint(count_routes(v6, table, route_cases[i].shown, "tt-route"), ==, 1);
                g_assert_cmpint(netlink_route_exists(env.netlink, tunnel_get_ifindex(t), &p, table), ==, 1);

                /* Marked as ours: proto static. */
                routes = ip_json("%s route show table %u", v6 ? "-6" : "-4", table);
                json_array_foreach(routes, k, route)
                        if (json_str_eq(route, "dst", route_cases[i].shown))
                                g_assert_true(json_str_eq(route, "protocol", "static"));
                json_decref(routes);

                g_assert_cmpint(tunnel_add_route(t, &p, table), ==, 0);
                g_assert_cmpuint(count_routes(v6, table, route_cases[i].shown, "tt-route"), ==, 1);
        }

        for (size_t i = 0; i < G_N_ELEMENTS(route_cases); i++) {
                TapotunPrefix p = prefix(route_cases[i].prefix);
                uint32_t table = route_cases[i].table;
                bool v6 = p.family == AF_INET6;

                g_assert_cmpint(tunnel_remove_route(t, &p, table), ==, 0);
                g_assert_cmpuint(count_routes(v6, table, route_cases[i].shown, "tt-route"), ==, 0);
                g_assert_cmpint(netlink_route_exists(env.netlink, tunnel_get_ifindex(t), &p, table), ==, 0);
        }

        tunnel_free(t);
        env_done(&env);
}

/* The same destination via another device is a conflict, reported and left alone. */
static void test_tunnel_add_route_conflict(void) {
        TapotunPrefix p4 = prefix("10.50.0.0/16"), p6 = prefix("fd00:50::/48");
        Env env = {};
        Tunnel *t, *other;

        if (!in_namespace())
                return;
        env_init(&env);

        t = tunnel_create(&env, "tt-mine", 0);
        other = tunnel_create(&env, "tt-other", 0);
        g_assert_cmpint(tunnel_set_mtu_up(t, 1500), ==, 0);
        g_assert_cmpint(tunnel_set_mtu_up(other, 1500), ==, 0);
        ip_run("-4 route add 10.50.0.0/16 dev tt-other table 100");
        ip_run("-6 route add fd00:50::/48 dev tt-other table 100");

        g_assert_cmpint(tunnel_add_route(t, &p4, 100), ==, -EEXIST);
        g_assert_cmpint(tunnel_add_route(t, &p6, 100), ==, -EEXIST);
        g_assert_cmpuint(count_routes(false, 100, "10.50.0.0/16", "tt-other"), ==, 1);
        g_assert_cmpuint(count_routes(true, 100, "fd00:50::/48", "tt-other"), ==, 1);

        tunnel_free(t);
        g_assert_cmpuint(count_routes(false, 100, "10.50.0.0/16", "tt-other"), ==, 1);
        g_assert_cmpuint(count_routes(true, 100, "fd00:50::/48", "tt-other"), ==, 1);
        tunnel_free(other);
        env_done(&env);
}

static void test_tunnel_add_mark(void) {
        static const struct {
                const char *name;
                uint32_t mark, table, priority;
                bool v6;
        } cases[] = {
                { "v4-v6", 0x1234, 100, 1000, true },
                { "v4-only", 0x1, 200, 1100, false },
                { "big-table", 0xff00, 1000, 1200, true },
        };
        Env env = {};

        if (!in_namespace())
                return;
        env_init(&env);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                uint32_t mark = cases[i].mark, table = cases[i].table, prio = cases[i].priority;
                bool v6 = cases[i].v6;
                Tunnel *t = tunnel_create(&env, "tt-mark", WIRE_OFFLOAD_V1);

                g_test_message("case %s", cases[i].name);
                g_assert_cmpint(tunnel_set_mtu_up(t, 1500), ==, 0);

                for (int pass = 0; pass < 2; pass++) {
                        /* The second pass finds everything in place and adds nothing. */
                        g_assert_cmpint(tunnel_add_mark(t, mark, table, prio, v6), ==, 0);
                        g_assert_cmpuint(count_routes(false, table, "default", "tt-mark"), ==, 1);
                        g_assert_cmpuint(count_routes(true, table, "default", "tt-mark"), ==, v6);
                        g_assert_cmpuint(count_rules(false, prio, mark, table), ==, 1);
                        g_assert_cmpuint(count_rules(true, prio, mark, table), ==, v6);
                        g_assert_cmpint(netlink_rule_exists(env.netlink, AF_INET, mark, table, prio), ==, 1);
                        g_assert_cmpint(netlink_rule_exists(env.netlink, AF_INET6, mark, table, prio), ==,
                                        v6);
                }

                g_assert_cmpint(tunnel_remove_mark(t), ==, 0);
                g_assert_cmpuint(count_routes(false, table, "default", "tt-mark"), ==, 0);
                g_assert_cmpuint(count_routes(true, table, "default", "tt-mark"), ==, 0);
                g_assert_cmpuint(count_rules(false, prio, mark, table), ==, 0);
                g_assert_cmpuint(count_rules(true, prio, mark, table), ==, 0);

                /* Again, then let tunnel_free() clean up: the rules would outlive the device. */
                g_assert_cmpint(tunnel_add_mark(t, mark, table, prio, v6), ==, 0);
                g_assert_cmpuint(count_rules(false, prio, mark, table), ==, 1);
                tunnel_free(t);
                g_assert_cmpuint(count_rules(false, prio, mark, table), ==, 0);
                g_assert_cmpuint(count_rules(true, prio, mark, table), ==, 0);
                g_assert_cmpint(netlink_rule_exists(env.netlink, AF_INET, mark, table, prio), ==, 0);
        }

        env_done(&env);
}

/* Changing the mark replaces the old rules instead of piling up. */
static void test_tunnel_add_mark_change(void) {
        Env env = {};
        Tunnel *t;

        if (!in_namespace())
                return;
        env_init(&env);

        t = tunnel_create(&env, "tt-mark", 0);
        g_assert_cmpint(tunnel_set_mtu_up(t, 1500), ==, 0);
        g_assert_cmpint(tunnel_add_mark(t, 0x10, 100, 1000, true), ==, 0);
        g_assert_cmpint(tunnel_add_mark(t, 0x20, 101, 1001, false), ==, 0);

        g_assert_cmpuint(count_rules(false, 1000, 0x10, 100), ==, 0);
        g_assert_cmpuint(count_rules(true, 1000, 0x10, 100), ==, 0);
        g_assert_cmpuint(count_routes(false, 100, "default", "tt-mark"), ==, 0);
        g_assert_cmpuint(count_rules(false, 1001, 0x20, 101), ==, 1);
        g_assert_cmpuint(count_rules(true, 1001, 0x20, 101), ==, 0);
        g_assert_cmpuint(count_routes(false, 101, "default", "tt-mark"), ==, 1);

        g_assert_cmpint(tunnel_add_mark(t, 0, 100, 1000, false), ==, -EINVAL);

        tunnel_free(t);
        g_assert_cmpuint(count_rules(false, 1001, 0x20, 101), ==, 0);
        env_done(&env);
}

/* What existed before is not ours: tunnel_free() leaves it, and removes exactly what it added. A
 * persistent device (which we attach to) keeps its addresses and routes after we close it, so both
 * halves show. */
static void test_tunnel_free_keeps_preexisting(void) {
        TapotunPrefix old_addr = prefix("10.10.0.5/24"), new_addr = prefix("10.10.0.6/24");
        TapotunPrefix old_addr6 = prefix("fd00:10::5/64"), new_addr6 = prefix("fd00:10::6/64");
        TapotunPrefix old_route = prefix("10.40.0.0/16"), new_route = prefix("10.41.0.0/16");
        Env env = {};
        Tunnel *t;
        int ifindex;

        if (!in_namespace())
                return;
        env_init(&env);

        ip_run("tuntap add dev tt-pers mode tun vnet_hdr");
        ip_run("link set tt-pers up");
        ifindex = (int) if_nametoindex("tt-pers");
        ip_run("addr add 10.10.0.5/24 dev tt-pers");
        ip_run("addr add fd00:10::5/64 dev tt-pers nodad");
        ip_run("route add 10.40.0.0/16 dev tt-pers table 100");
        ip_run("-4 route add default dev tt-pers table 100");
        ip_run("-4 rule add fwmark 0x99 lookup 100 pref 900");
        ip_run("-6 rule add fwmark 0x99 lookup 100 pref 900");

        t = tunnel_create(&env, "tt-pers", WIRE_OFFLOAD_V1);
        g_assert_cmpint(tunnel_get_ifindex(t), ==, ifindex);

        g_assert_cmpint(tunnel_add_address(t, &old_addr), ==, 0);
        g_assert_cmpint(tunnel_add_address(t, &new_addr), ==, 0);
        g_assert_cmpint(tunnel_add_address(t, &old_addr6), ==, 0);
        g_assert_cmpint(tunnel_add_address(t, &new_addr6), ==, 0);
        g_assert_cmpint(tunnel_add_route(t, &old_route, 100), ==, 0);
        g_assert_cmpint(tunnel_add_route(t, &new_route, 100), ==, 0);
        g_assert_cmpint(tunnel_add_mark(t, 0x99, 100, 900, true), ==, 0);

        g_assert_cmpuint(count_addresses("tt-pers", "inet", "10.10.0.5", 24), ==, 1);
        g_assert_cmpuint(count_addresses("tt-pers", "inet6", "fd00:10::5", 64), ==, 1);
        g_assert_cmpuint(count_routes(false, 100, "10.40.0.0/16", "tt-pers"), ==, 1);
        g_assert_cmpuint(count_routes(false, 100, "default", "tt-pers"), ==, 1);
        g_assert_cmpuint(count_routes(true, 100, "default", "tt-pers"), ==, 1);
        g_assert_cmpuint(count_rules(false, 900, 0x99, 100), ==, 1);
        g_assert_cmpuint(count_rules(true, 900, 0x99, 100), ==, 1);

        /* Removing something that is not ours is a no-op. */
        g_assert_cmpint(tunnel_remove_address(t, &old_addr), ==, 0);
        g_assert_cmpuint(count_addresses("tt-pers", "inet", "10.10.0.5", 24), ==, 1);

        tunnel_free(t);
        g_assert_cmpint((int) if_nametoindex("tt-pers"), ==, ifindex);

        /* Theirs */
        g_assert_cmpuint(count_addresses("tt-pers", "inet", "10.10.0.5", 24), ==, 1);
        g_assert_cmpuint(count_addresses("tt-pers", "inet6", "fd00:10::5", 64), ==, 1);
        g_assert_cmpuint(count_routes(false, 100, "10.40.0.0/16", "tt-pers"), ==, 1);
        g_assert_cmpuint(count_routes(false, 100, "default", "tt-pers"), ==, 1);
        g_assert_cmpuint(count_rules(false, 900, 0x99, 100), ==, 1);
        g_assert_cmpuint(count_rules(true, 900, 0x99, 100), ==, 1);
        /* Ours */
        g_assert_cmpuint(count_addresses("tt-pers", "inet", "10.10.0.6", 24), ==, 0);
        g_assert_cmpuint(count_addresses("tt-pers", "inet6", "fd00:10::6", 64), ==, 0);
        g_assert_cmpuint(count_routes(false, 100, "10.41.0.0/16", "tt-pers"), ==, 0);
        g_assert_cmpuint(count_routes(true, 100, "default", "tt-pers"), ==, 0);

        env_done(&env);
}

/* ------------------------------------------------------------------------------------------------ */
/* netlink directly */

/* One request, completed: its result. */
static int nl_address(Env *env, bool add, int ifindex, const TapotunPrefix *a) {
        int result;

        return netlink_wait(env, netlink_address(env->netlink, add, ifindex, a, on_netlink_done, &result),
                            &result);
}

static int nl_route(Env *env, bool add, int ifindex, const TapotunPrefix *dst, uint32_t table) {
        int result;

        return netlink_wait(env,
                            netlink_route(env->netlink, add, ifindex, dst, table, on_netlink_done, &result),
                            &result);
}

static int nl_rule(Env *env, bool add, int family, uint32_t fwmark, uint32_t table, uint32_t priority) {
        int result;

        return netlink_wait(env,
                            netlink_rule(env->netlink, add, family, fwmark, table, priority, on_netlink_done,
                                         &result),
                            &result);
}

static void test_netlink_errors(void) {
        TapotunPrefix a4 = prefix("10.60.0.1/24"), a6 = prefix("fd00:60::1/64");
        TapotunPrefix r4 = prefix("10.61.0.0/16"), r6 = prefix("fd00:61::/48"), bad = prefix("10.0.0.0/8");
        Env env = {};
        Tunnel *t;
        int ifindex;

        if (!in_namespace())
                return;
        env_init(&env);
        t = tunnel_create(&env, "tt-err", 0);
        g_assert_cmpint(tunnel_set_mtu_up(t, 1500), ==, 0);
        ifindex = tunnel_get_ifindex(t);

        /* No such device */
        g_assert_cmpint(nl_address(&env, true, 9999, &a4), ==, -ENODEV);

        /* Removing what is not there: -ENOENT for every kind. */
        g_assert_cmpint(nl_address(&env, false, ifindex, &a4), ==, -ENOENT);
        g_assert_cmpint(nl_address(&env, false, ifindex, &a6), ==, -ENOENT);
        g_assert_cmpint(nl_route(&env, false, ifindex, &r4, RT_TABLE_MAIN), ==, -ENOENT);
        g_assert_cmpint(nl_route(&env, false, ifindex, &r6, 100), ==, -ENOENT);
        g_assert_cmpint(nl_rule(&env, false, AF_INET, 0x5, 100, 500), ==, -ENOENT);
        g_assert_cmpint(nl_rule(&env, false, AF_INET6, 0x5, 100, 500), ==, -ENOENT);

        /* Adding twice: -EEXIST the second time. */
        for (int pass = 0; pass < 2; pass++) {
                int want = pass == 0 ? 0 : -EEXIST;

                g_assert_cmpint(nl_address(&env, true, ifindex, &a4), ==, want);
                g_assert_cmpint(nl_address(&env, true, ifindex, &a6), ==, want);
                g_assert_cmpint(nl_route(&env, true, ifindex, &r4, 100), ==, want);
                g_assert_cmpint(nl_route(&env, true, ifindex, &r6, 300), ==, want);
                g_assert_cmpint(nl_rule(&env, true, AF_INET, 0x5, 100, 500), ==, want);
                g_assert_cmpint(nl_rule(&env, true, AF_INET6, 0x5, 100, 500), ==, want);
        }
        g_assert_cmpuint(count_rules(false, 500, 0x5, 100), ==, 1);
        g_assert_cmpuint(count_rules(true, 500, 0x5, 100), ==, 1);

        /* A rule of someone else's with the same mark and table but another preference is not deleted by
         * ours: deletes match the preference. */
        ip_run("-4 rule add fwmark 0x5 lookup 100 pref 600");
        g_assert_cmpint(nl_rule(&env, false, AF_INET, 0x5, 100, 500), ==, 0);
        g_assert_cmpuint(count_rules(false, 500, 0x5, 100), ==, 0);
        g_assert_cmpuint(count_rules(false, 600, 0x5, 100), ==, 1);

        /* A route with host bits set is the kernel's to refuse. */
        bad.addr.bytes[3] = 1;
        g_assert_cmpint(nl_route(&env, true, ifindex, &bad, 100), ==, -EINVAL);

        /* Refused before sending */
        a4.prefixlen = 33;
        g_assert_cmpint(netlink_address(env.netlink, true, ifindex, &a4, NULL, NULL), ==, -EINVAL);
        a4.family = AF_UNIX;
        g_assert_cmpint(netlink_address(env.netlink, true, ifindex, &a4, NULL, NULL), ==, -EAFNOSUPPORT);
        g_assert_cmpint(netlink_rule(env.netlink, true, AF_INET, 0, 100, 500, NULL, NULL), ==, -EINVAL);
        g_assert_cmpint(netlink_rule(env.netlink, true, AF_UNIX, 1, 100, 500, NULL, NULL), ==, -EAFNOSUPPORT);
        g_assert_cmpint(netlink_route(env.netlink, true, 0, &r4, 100, NULL, NULL), ==, -EINVAL);
        g_assert_cmpint(netlink_rule_exists(env.netlink, AF_UNIX, 1, 100, 500), ==, -EAFNOSUPPORT);

        tunnel_free(t);
        env_done(&env);
}

static void on_count(Netlink *nl, int error, void *userdata) {
        unsigned *counts = userdata;

        counts[error == 0 ? 0 : 1]++;
}

static void test_netlink_flush_pending_limit(void) {
        unsigned counts[2] = {};
        Env env = {};
        Tunnel *t;
        int ifindex;

        if (!in_namespace())
                return;
        env_init(&env);
        t = tunnel_create(&env, "tt-many", 0);
        ifindex = tunnel_get_ifindex(t);

        /* The table takes 4096 requests in flight, no more; all their ACKs arrive. */
        for (unsigned i = 0; i < 4096; i++) {
                uint32_t mtu = 1400 + i % 100;

                g_assert_cmpint(netlink_link_set(env.netlink, ifindex, mtu, true, on_count, counts), ==, 0);
        }
        g_assert_cmpint(netlink_link_set(env.netlink, ifindex, 1500, true, on_count, counts), ==, -EBUSY);
        g_assert_cmpint(netlink_flush(env.netlink, NETLINK_TIMEOUT_USEC), ==, 0);
        g_assert_cmpuint(counts[0], ==, 4096);
        g_assert_cmpuint(counts[1], ==, 0);

        /* Completions also come through the event loop, without a flush. */
        counts[0] = 0;
        for (unsigned i = 0; i < 10; i++)
                g_assert_cmpint(netlink_link_set(env.netlink, ifindex, 1500, true, on_count, counts), ==, 0);
        for (gint64 deadline = g_get_monotonic_time() + NETLINK_TIMEOUT_USEC;
             counts[0] < 10 && g_get_monotonic_time() < deadline;)
                g_assert_cmpint(sd_event_run(env.event, 100000), >=, 0);
        g_assert_cmpuint(counts[0], ==, 10);
        /* Nothing left pending: a flush returns at once. */
        g_assert_cmpint(netlink_flush(env.netlink, 0), ==, 0);

        tunnel_free(t);
        env_done(&env);
}

/* ------------------------------------------------------------------------------------------------ */
/* Packets: ICMP echo requests from 10.10.0.2 to the tunnel's own 10.10.0.1, answered by the kernel. */

typedef struct Collector {
        GArray *seqs;        /* uint16_t sequence numbers of echo replies, in arrival order */
        GArray *sizes;       /* their ICMP payload sizes */
        unsigned n_gso;      /* replies whose vnet header was not GSO_NONE */
        unsigned n_writable; /* on_writable calls */
} Collector;

static uint16_t checksum(const uint8_t *p, size_t n) {
        uint32_t sum = 0;

        for (size_t i = 0; i + 1 < n; i += 2)
                sum += (uint32_t) (p[i] << 8 | p[i + 1]);
        if (n & 1)
                sum += (uint32_t) p[n - 1] << 8;
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return (uint16_t) ~sum;
}

static void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static uint16_t get16(const uint8_t *p) {
        return (uint16_t) (p[0] << 8 | p[1]);
}

typedef enum EchoFlavour {
        ECHO_VALID,
        ECHO_BAD_CHECKSUM,
        ECHO_NEEDS_CSUM,  /* checksum left to the kernel, as a sender with TX checksum offload does */
        ECHO_BAD_GSO,     /* a gso_type the kernel does not know */
} EchoFlavour;

/* Writes vnet header + IPv4 + ICMP echo request into BUF; returns the frame length. */
static size_t build_echo(uint8_t *buf, uint16_t seq, size_t payload, EchoFlavour flavour) {
        struct virtio_net_hdr_mrg_rxbuf *vh = (void *) buf;
        uint8_t *ip = buf + sizeof *vh, *icmp = ip + 20;
        size_t ip_len = 20 + 8 + payload;

        g_assert_cmpuint(sizeof *vh, ==, TAPOTUN_VNET_HDR_SIZE);
        memset(buf, 0, sizeof *vh + ip_len);
        ip[0] = 0x45;
        put16(ip + 2, (uint16_t) ip_len);
        put16(ip + 4, seq);
        ip[8] = 64;
        ip[9] = IPPROTO_ICMP;
        memcpy(ip + 12, (const uint8_t[]) { 10, 10, 0, 2 }, 4);
        memcpy(ip + 16, (const uint8_t[]) { 10, 10, 0, 1 }, 4);
        put16(ip + 10, checksum(ip, 20));

        icmp[0] = 8; /* echo request */
        put16(icmp + 4, ECHO_ID);
        put16(icmp + 6, seq);
        for (size_t i = 0; i < payload; i++)
                icmp[8 + i] = (uint8_t) (i + seq);

        switch (flavour) {
        case ECHO_VALID:
                put16(icmp + 2, checksum(icmp, 8 + payload));
                break;
        case ECHO_BAD_CHECKSUM:
                put16(icmp + 2, (uint16_t) (checksum(icmp, 8 + payload) ^ 0x5555));
                break;
        case ECHO_NEEDS_CSUM:
                vh->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
                vh->hdr.csum_start = 20;
                vh->hdr.csum_offset = 2;
                break;
        case ECHO_BAD_GSO:
                put16(icmp + 2, checksum(icmp, 8 + payload));
                vh->hdr.gso_type = 0x42;
                break;
        }
        return sizeof *vh + ip_len;
}

static void on_read_collect(Tunnel *t, const uint8_t *frame, size_t len, void *userdata) {
        const struct virtio_net_hdr_mrg_rxbuf *vh = (const void *) frame;
        const uint8_t *ip = frame + TAPOTUN_VNET_HDR_SIZE, *icmp;
        Collector *c = userdata;
        uint16_t seq, size;

        /* Skip what else the kernel sends (IPv6 router solicitations, MLD, ...). */
        if (len < TAPOTUN_VNET_HDR_SIZE + 28 || ip[0] != 0x45 || ip[9] != IPPROTO_ICMP)
                return;
        icmp = ip + 20;
        if (icmp[0] != 0 || get16(icmp + 4) != ECHO_ID)
                return;

        /* A whole packet after a 12-byte vnet header, from the tunnel's address to the peer's. */
        g_assert_cmpuint(get16(ip + 2), ==, len - TAPOTUN_VNET_HDR_SIZE);
        g_assert_cmpmem(ip + 12, 4, ((const uint8_t[]) { 10, 10, 0, 1 }), 4);
        g_assert_cmpmem(ip + 16, 4, ((const uint8_t[]) { 10, 10, 0, 2 }), 4);
        if (vh->hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE)
                c->n_gso++;

        seq = get16(icmp + 6);
        size = (uint16_t) (len - TAPOTUN_VNET_HDR_SIZE - 28);
        g_array_append_val(c->seqs, seq);
        g_array_append_val(c->sizes, size);
}

static void on_writable_count(Tunnel *t, void *userdata) {
        Collector *c = userdata;

        c->n_writable++;
}

#define RUN_LOOP_UNTIL(e, cond, timeout_usec)                                           \
        ({                                                                              \
                gint64 _deadline = g_get_monotonic_time() + (timeout_usec);             \
                while (!(cond) && g_get_monotonic_time() < _deadline)                   \
                        g_assert_cmpint(sd_event_run((e), 50000), >=, 0);               \
                (cond);                                                                 \
        })

static Tunnel *echo_tunnel(Env *env, Collector *c, const char *name, uint32_t mtu) {
        TapotunPrefix a = prefix("10.10.0.1/24");
        Tunnel *t = tunnel_create(env, name, WIRE_OFFLOAD_V1);

        g_assert_cmpint(tunnel_set_mtu_up(t, mtu), ==, 0);
        g_assert_cmpint(tunnel_add_address(t, &a), ==, 0);
        c->seqs = g_array_new(false, false, sizeof(uint16_t));
        c->sizes = g_array_new(false, false, sizeof(uint16_t));
        tunnel_set_handlers(t, on_read_collect, on_writable_count, c);
        g_assert_cmpint(tunnel_start(t), ==, 0);
        return t;
}

static void collector_done(Collector *c) {
        g_array_unref(c->seqs);
        g_array_unref(c->sizes);
}

static void test_tunnel_write_echo(void) {
        static const struct {
                const char *name;
                EchoFlavour flavour;
                int write_result;
                bool reply;
        } cases[] = {
                { "valid", ECHO_VALID, 0, true },
                /* The kernel checks the checksum: proof the packet really went in as written. */
                { "bad-checksum", ECHO_BAD_CHECKSUM, 0, false },
                /* ... unless the vnet header says it is still to be done: the header is honoured. */
                { "needs-csum", ECHO_NEEDS_CSUM, 0, true },
                /* Refused by the kernel: dropped and counted, not fatal. */
                { "bad-gso-type", ECHO_BAD_GSO, -EINVAL, false },
        };
        uint8_t buf[256];
        Collector c = {};
        Env env = {};
        Tunnel *t;

        if (!in_namespace())
                return;
        env_init(&env);
        t = echo_tunnel(&env, &c, "tt-echo", 1500);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                TunnelStats before, after;
                size_t len = build_echo(buf, (uint16_t) i, 64, cases[i].flavour);
                bool replied;

                g_test_message("case %s", cases[i].name);
                tunnel_get_stats(t, &before);
                g_array_set_size(c.seqs, 0);

                g_assert_cmpint(tunnel_write(t, buf, len), ==, cases[i].write_result);
                tunnel_get_stats(t, &after);
                if (cases[i].write_result == 0) {
                        g_assert_cmpuint(after.tx_packets, ==, before.tx_packets + 1);
                        g_assert_cmpuint(after.tx_bytes, ==, before.tx_bytes + len - TAPOTUN_VNET_HDR_SIZE);
                        g_assert_cmpuint(after.tx_dropped, ==, before.tx_dropped);
                } else {
                        g_assert_cmpuint(after.tx_packets, ==, before.tx_packets);
                        g_assert_cmpuint(after.tx_dropped, ==, before.tx_dropped + 1);
                }

                /* A reply comes within milliseconds; half a second of silence means none. */
                replied = RUN_LOOP_UNTIL(env.event, c.seqs->len > 0,
                                         (cases[i].reply ? 5 : 0.5) * G_USEC_PER_SEC);
                g_assert_cmpint(replied, ==, cases[i].reply);
                if (replied) {
                        g_assert_cmpuint(c.seqs->len, ==, 1);
                        g_assert_cmpuint(g_array_index(c.seqs, uint16_t, 0), ==, i);
                        g_assert_cmpuint(g_array_index(c.sizes, uint16_t, 0), ==, 64);
                        tunnel_get_stats(t, &after);
                        g_assert_cmpuint(after.rx_packets, >, before.rx_packets);
                        g_assert_cmpuint(after.rx_bytes, >=, before.rx_bytes + 92);
                }
        }
        g_assert_cmpuint(c.n_gso, ==, 0);

        /* Lengths outside a frame body are refused before the kernel sees them. */
        g_assert_cmpint(tunnel_write(t, buf, TAPOTUN_VNET_HDR_SIZE), ==, -EINVAL);
        g_assert_cmpint(tunnel_write(t, buf, TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX + 1), ==, -EINVAL);

        tunnel_free(t);
        collector_done(&c);
        env_done(&env);
}

/* The write queue, by frame count: small frames until it refuses, then the loop drains it in order. */
static void test_tunnel_write_queue_limit(void) {
        unsigned n_zero = 0, n_one = 0, n_nobufs = 0, accepted;
        g_autofree uint8_t *buf = g_malloc(256);
        TunnelStats st;
        Collector c = {};
        Env env = {};
        Tunnel *t;
        int last = 0;

        if (!in_namespace())
                return;
        env_init(&env);
        t = echo_tunnel(&env, &c, "tt-queue", 1500);
        write_fd = find_tun_fd("tt-queue");
        write_budget = 0;

        for (unsigned i = 0; i < 1500; i++) {
                int r = tunnel_write(t, buf, build_echo(buf, (uint16_t) i, 32, ECHO_VALID));

                /* 0 while there is room, 1 above the high mark, then -ENOBUFS: never back. */
                if (r == 0) {
                        g_assert_cmpint(last, ==, 0);
                        n_zero++;
                } else if (r == 1) {
                        g_assert_cmpint(last, !=, -ENOBUFS);
                        n_one++;
                } else {
                        g_assert_cmpint(r, ==, -ENOBUFS);
                        n_nobufs++;
                }
                last = r;
        }
        accepted = n_zero + n_one;
        g_test_message("queued %u (%u below the high mark), refused %u", accepted, n_zero, n_nobufs);
        g_assert_cmpuint(n_zero, >, 0);
        g_assert_cmpuint(n_one, >, 0);
        g_assert_cmpuint(n_nobufs, >, 0);
        /* A bounded queue, far below what 1500 frames would take. */
        g_assert_cmpuint(accepted, <=, 1024);
        tunnel_get_stats(t, &st);
        g_assert_cmpuint(st.tx_packets, ==, 0);
        g_assert_cmpuint(st.tx_dropped, ==, n_nobufs);
        g_assert_cmpuint(c.n_writable, ==, 0);

        /* Even when the device would take a frame, queued frames go first: this one finds the queue full. */
        write_budget = 1;
        g_assert_cmpint(tunnel_write(t, buf, build_echo(buf, 5000, 32, ECHO_VALID)), ==, -ENOBUFS);
        tunnel_get_stats(t, &st);
        g_assert_cmpuint(st.tx_packets, ==, 0);
        g_assert_cmpuint(st.tx_dropped, ==, n_nobufs + 1);

        /* The TUN takes frames again: everything queued goes in, in order, and on_writable fires once. */
        write_budget = -1;
        g_assert_true(RUN_LOOP_UNTIL(env.event, c.seqs->len >= accepted && c.n_writable > 0,
                                     10 * G_USEC_PER_SEC));
        tunnel_get_stats(t, &st);
        g_assert_cmpuint(st.tx_packets, ==, accepted);
        g_assert_cmpuint(c.n_writable, ==, 1);
        g_assert_cmpuint(c.seqs->len, ==, accepted);
        for (unsigned i = 0; i < accepted; i++)
                g_assert_cmpuint(g_array_index(c.seqs, uint16_t, i), ==, i);

        /* With the queue empty a write goes straight to the device. */
        g_assert_cmpint(tunnel_write(t, buf, build_echo(buf, 9999, 32, ECHO_VALID)), ==, 0);
        tunnel_get_stats(t, &st);
        g_assert_cmpuint(st.tx_packets, ==, accepted + 1);

        tunnel_free(t);
        write_fd = -1;
        collector_done(&c);
        env_done(&env);
}

/* The write queue, by bytes, with frames of many sizes: fill it, drain part, fill it to the limit (so
 * the ring wraps around), drain it all. Every frame comes out once, in order, intact. */
static void test_tunnel_write_queue_wrap(void) {
        g_autofree uint8_t *buf = g_malloc(TAPOTUN_VNET_HDR_SIZE + TAPOTUN_PACKET_MAX);
        g_autoptr(GArray) order = g_array_new(false, false, sizeof(uint16_t));
        TunnelStats st;
        Collector c = {};
        Env env = {};
        Tunnel *t;
        uint16_t seq = 0;
        int r;

        if (!in_namespace())
                return;
        env_init(&env);
        /* Replies up to 31 KB must come back unfragmented. */
        t = echo_tunnel(&env, &c, "tt-wrap", 65000);
        write_fd = find_tun_fd("tt-wrap");
        write_budget = 0;

#define PAYLOAD(s) ((size_t) 1000 + ((size_t) (s) * 7919u) % 30000u)

        /* Up to the high mark */
        do {
                r = tunnel_write(t, buf, build_echo(buf, seq, PAYLOAD(seq), ECHO_VALID));
                g_assert_cmpint(r, >=, 0);
                g_array_append_val(order, seq);
                seq++;
        } while (r == 0);
        g_test_message("high mark after %u frames", order->len);

        /* The device takes 40 frames, then is full again. */
        write_budget = 40;
        g_assert_true(RUN_LOOP_UNTIL(env.event, write_budget == 0, 5 * G_USEC_PER_SEC));
        tunnel_get_stats(t, &st);
        g_assert_cmpuint(st.tx_packets, ==, 40);
        g_assert_cmpuint(c.n_writable, ==, 0);

        /* Fill to the limit: below the high mark again (0), above it (1), full. */
        for (int last = 0;; last = r) {
                r = tunnel_write(t, buf, build_echo(buf, seq, PAYLOAD(seq), ECHO_VALID));
                if (r < 0)
                        break;
                g_assert_cmpint(r, >=, last);
                g_array_append_val(order, seq);
                seq++;
        }
        g_assert_cmpint(r, ==, -ENOBUFS);
        g_test_message("%u frames queued in all", order->len);

        write_budget = -1;
        g_assert_true(RUN_LOOP_UNTIL(env.event, c.seqs->len >= order->len, 20 * G_USEC_PER_SEC));
        g_assert_cmpuint(c.seqs->len, ==, order->len);
        for (unsigned i = 0; i < order->len; i++) {
                uint16_t s = g_array_index(c.seqs, uint16_t, i);

                g_assert_cmpuint(s, ==, g_array_index(order, uint16_t, i));
                g_assert_cmpuint(g_array_index(c.sizes, uint16_t, i), ==, PAYLOAD(s));
        }
        tunnel_get_stats(t, &st);
        g_assert_cmpuint(st.tx_packets, ==, order->len);
        g_assert_cmpuint(st.tx_dropped, ==, 1);
        g_assert_cmpuint(c.n_writable, ==, 1);

#undef PAYLOAD

        tunnel_free(t);
        write_fd = -1;
        collector_done(&c);
        env_done(&env);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        if (!g_test_subprocess()) {
                skip_reason = check_prerequisites();
                if (skip_reason) {
                        /* Loud: this suite is the only check of the kernel-facing code. */
                        fprintf(stderr,
                                "\n*** test-netlink: NOT RUNNING the root tests: %s. They need root, "
                                "/dev/net/tun and network namespaces. ***\n\n",
                                skip_reason);
                        if (getenv("TAPOTUN_REQUIRE_ROOT_TESTS"))
                                g_error("TAPOTUN_REQUIRE_ROOT_TESTS is set but %s", skip_reason);
                }
        }

        g_test_add_func("/netlink/tunnel_new/offloads", test_tunnel_new_offloads);
        g_test_add_func("/netlink/tunnel_new/invalid", test_tunnel_new_invalid);
        g_test_add_func("/netlink/tunnel_set_offloads/change", test_tunnel_set_offloads_change);
        g_test_add_func("/netlink/tunnel_set_mtu_up/basic", test_tunnel_set_mtu_up);
        g_test_add_func("/netlink/tunnel_add_address/v4-v6", test_tunnel_add_address);
        g_test_add_func("/netlink/tunnel_add_route/tables", test_tunnel_add_route);
        g_test_add_func("/netlink/tunnel_add_route/conflict", test_tunnel_add_route_conflict);
        g_test_add_func("/netlink/tunnel_add_mark/rules", test_tunnel_add_mark);
        g_test_add_func("/netlink/tunnel_add_mark/change", test_tunnel_add_mark_change);
        g_test_add_func("/netlink/tunnel_free/keeps-preexisting", test_tunnel_free_keeps_preexisting);
        g_test_add_func("/netlink/netlink/errors", test_netlink_errors);
        g_test_add_func("/netlink/netlink_flush/pending-limit", test_netlink_flush_pending_limit);
        g_test_add_func("/netlink/tunnel_write/echo", test_tunnel_write_echo);
        g_test_add_func("/netlink/tunnel_write/queue-limit", test_tunnel_write_queue_limit);
        g_test_add_func("/netlink/tunnel_write/queue-wrap", test_tunnel_write_queue_wrap);

        return g_test_run();
}
