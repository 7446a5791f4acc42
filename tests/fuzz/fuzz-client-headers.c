/* SPDX-License-Identifier: MIT */
/* The client's side of a GET response head: arbitrary header lines, taken apart as the client transport's
 * curl header callback does (plugins/http-client/http-client.c: one line per call, a status line starts
 * the head over, names lowercased, values trimmed, at most 32 fields and 8 KiB), then decided by
 * wire_server_conf_parse() as the daemon does before it touches the TUN. Whatever it accepts must be a
 * configuration the kernel can take, and must come out the same when sent again as a server would;
 * whatever it refuses must name the header at fault.
 * Input: one byte of flags (bit 0: accept_routes), then the head. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

#define INPUT_MAX (16u * 1024u)
#define HEADERS_MAX 32u
#define HEADER_BYTES_MAX 8192u

typedef struct Head {
        TapotunHeader h[HEADERS_MAX];
        size_t n;
        char buf[HEADER_BYTES_MAX];
        size_t used;
        bool overflow;
        bool informational; /* the status line was 1xx: another head follows */
} Head;

/* Returns true at the empty line that ends the final head. */
static bool head_take_line(Head *head, const char *line, size_t n) {
        const char *colon, *value;
        size_t name_len, value_len;
        char *p;

        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
                n--;
        if (n == 0) {
                if (!head->informational)
                        return true;
                *head = (Head) {};
                return false;
        }
        if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
                const char *sp = memchr(line, ' ', n);

                *head = (Head) { .informational = sp && sp + 1 < line + n && sp[1] == '1' };
                return false;
        }
        colon = memchr(line, ':', n);
        if (!colon || head->overflow)
                return false;
        name_len = (size_t) (colon - line);
        value = colon + 1;
        value_len = (size_t) (line + n - value);
        while (value_len > 0 && (*value == ' ' || *value == '\t')) {
                value++;
                value_len--;
        }
        while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
                value_len--;
        if (head->n >= HEADERS_MAX || name_len + value_len + 2 > sizeof head->buf - head->used) {
                /* The transport aborts the request: nothing reaches the daemon. */
                head->overflow = true;
                return false;
        }

        p = head->buf + head->used;
        for (size_t i = 0; i < name_len; i++)
                p[i] = line[i] >= 'A' && line[i] <= 'Z' ? (char) (line[i] - 'A' + 'a') : line[i];
        p[name_len] = '\0';
        memcpy(p + name_len + 1, value, value_len);
        p[name_len + 1 + value_len] = '\0';
        head->h[head->n++] = (TapotunHeader) { .name = p, .value = p + name_len + 1 };
        head->used += name_len + value_len + 2;
        return false;
}

static bool is_ours(const char *name) {
        return strcmp(name, "x-tun-conf") == 0 || strcmp(name, "x-tun-conf6") == 0 ||
               strcmp(name, "x-tun-offload") == 0 || strcmp(name, "x-tun-routes") == 0;
}

static bool has_header(const Head *head, const char *name) {
        for (size_t i = 0; i < head->n; i++)
                if (strcmp(head->h[i].name, name) == 0)
                        return true;
        return false;
}

/* What a server sends for C, parsed again, must be C. */
static void check_round_trip(const WireServerConf *c) {
        char conf[WIRE_TUN_CONF_STRLEN + 1], conf6[64], offload[64], *routes;
        TapotunHeader h[4];
        const TapotunHeader *bad = NULL;
        WireServerConf d = {};
        size_t n = 0;

        wire_tun_conf_encode(&c->conf, conf);
        h[n++] = (TapotunHeader) { "x-tun-conf", conf };
        if (c->conf6.family != 0) {
                wire_prefix_format(&c->conf6, conf6, sizeof conf6);
                h[n++] = (TapotunHeader) { "x-tun-conf6", conf6 };
        }
        wire_offload_format(c->offloads, offload, sizeof offload);
        h[n++] = (TapotunHeader) { "x-tun-offload", offload };
        routes = wire_prefixes_format(c->routes, c->n_routes);
        fuzz_check(routes);
        h[n++] = (TapotunHeader) { "x-tun-routes", routes };

        fuzz_check(wire_server_conf_parse(h, n, true, &d, &bad) == 0);
        fuzz_check(d.conf.mtu == c->conf.mtu && d.conf.prefixlen == c->conf.prefixlen &&
                   d.conf.address.s_addr == c->conf.address.s_addr);
        fuzz_check(wire_prefix_equal(&d.conf6, &c->conf6));
        fuzz_check(d.offloads == c->offloads);
        fuzz_check(d.n_routes == c->n_routes && d.n_routes_ignored == 0);
        for (size_t i = 0; i < d.n_routes; i++)
                fuzz_check(wire_prefix_equal(&d.routes[i], &c->routes[i]));
        wire_server_conf_done(&d);
        free(routes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Head head;
        const TapotunHeader *bad = NULL;
        WireServerConf c = {};
        const char *line;
        bool accept_routes;
        char *s;
        size_t n;
        int r;

        if (size < 1 || size > INPUT_MAX)
                return 0;
        accept_routes = data[0] & 1;
        data++;
        size--;

        /* curl hands over one line at a time, each ending in its '\n' (the last one maybe without). */
        s = malloc(size + 1);
        fuzz_check(s);
        memcpy(s, data, size);
        s[size] = '\0';
        head = (Head) {};
        for (line = s, n = size; n > 0;) {
                const char *nl = memchr(line, '\n', n);
                size_t k = nl ? (size_t) (nl - line) + 1 : n;

                if (head_take_line(&head, line, k))
                        break;
                line += k;
                n -= k;
        }
        if (head.overflow) {
                free(s);
                return 0;
        }

        r = wire_server_conf_parse(head.h, head.n, accept_routes, &c, &bad);
        if (r == 0) {
                fuzz_check(c.conf.mtu >= 68 && c.conf.prefixlen <= 32);
                fuzz_check(c.conf6.family == 0 || (c.conf6.family == AF_INET6 && c.conf6.prefixlen <= 128));
                fuzz_check((c.conf6.family != 0) == has_header(&head, "x-tun-conf6"));
                fuzz_check((c.offloads & ~WIRE_OFFLOAD_ALL) == 0);
                fuzz_check((c.routes != NULL) == (c.n_routes > 0));
                fuzz_check(c.n_routes + c.n_routes_ignored <= 1024);
                if (!accept_routes)
                        fuzz_check(c.n_routes == 0 && c.n_routes_ignored == 0);
                for (size_t i = 0; i < c.n_routes; i++)
                        fuzz_check(wire_prefix_is_network(&c.routes[i]));
                check_round_trip(&c);
                wire_server_conf_done(&c);
                fuzz_check(!c.routes && c.n_routes == 0);
        } else if (r == -ENODATA)
                fuzz_check(!has_header(&head, "x-tun-conf") && !has_header(&head, "x-tun-conf6"));
        else {
                fuzz_check(r == -EBADMSG);
                fuzz_check(bad >= head.h && bad < head.h + head.n);
                fuzz_check(is_ours(bad->name));
        }

        free(s);
        return 0;
}
