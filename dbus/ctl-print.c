/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <langinfo.h>
#include <libintl.h>
#include <stdio.h>
#include <time.h>
#include <wchar.h>

#include "bus-names.h"
#include "ctl-print.h"

struct Table {
        size_t n_columns;
        bool *right;
        const char *separator;
        char **cells;
        size_t n_cells;
};

int table_new(size_t n_columns, Table **ret) {
        Table *t;

        t = calloc(1, sizeof(Table));
        if (!t)
                return -ENOMEM;
        t->right = calloc(n_columns, sizeof(bool));
        if (!t->right) {
                free(t);
                return -ENOMEM;
        }
        t->n_columns = n_columns;
        t->separator = "  ";
        *ret = t;
        return 0;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        return mfree(t);
}

void table_align_right(Table *t, size_t column) {
        if (column < t->n_columns)
                t->right[column] = true;
}

void table_set_separator(Table *t, const char *separator) {
        t->separator = separator;
}

int table_add(Table *t, const char *cell) {
        char **a, *c;

        a = reallocarray(t->cells, t->n_cells + 1, sizeof(char *));
        if (!a)
                return -ENOMEM;
        t->cells = a;
        c = strdup(cell && cell[0] ? cell : "-");
        if (!c)
                return -ENOMEM;
        t->cells[t->n_cells++] = c;
        return 0;
}

/* Columns on the terminal: Cyrillic takes two bytes a column, CJK one character two columns. */
size_t display_width(const char *s) {
        _cleanup_free_ wchar_t *w = NULL;
        size_t n = mbstowcs(NULL, s, 0);
        int width;

        if (n == (size_t) -1)
                return strlen(s);
        w = calloc(n + 1, sizeof(wchar_t));
        if (!w)
                return strlen(s);
        (void) mbstowcs(w, s, n + 1);
        width = wcswidth(w, n);
        return width < 0 ? n : (size_t) width;
}

void table_print(const Table *t, const char *indent) {
        _cleanup_free_ size_t *width = NULL;

        width = calloc(t->n_columns, sizeof(size_t));
        if (!width)
                return;
        for (size_t i = 0; i < t->n_cells; i++)
                width[i % t->n_columns] = MAX(width[i % t->n_columns], display_width(t->cells[i]));

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_columns, pad = width[col] - display_width(t->cells[i]);
                bool last = col == t->n_columns - 1 || i == t->n_cells - 1;

                if (col == 0)
                        fputs(indent, stdout);
                if (t->right[col])
                        printf("%*s", (int) pad, "");
                fputs(t->cells[i], stdout);
                if (last)
                        putchar('\n');
                else
                        printf("%*s%s", t->right[col] ? 0 : (int) pad, "", t->separator);
        }
}

const char *format_bytes(uint64_t n, char buf[static FORMAT_BYTES_MAX]) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) n / 1024.0;
        size_t u = 0;

        if (n < 1024) {
                (void) snprintf(buf, FORMAT_BYTES_MAX, "%" PRIu64 " B", n);
                return buf;
        }
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        (void) snprintf(buf, FORMAT_BYTES_MAX, "%.1f %s", v, units[u]);
        return buf;
}

static uint64_t now_realtime(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

const char *format_ago(uint64_t usec, char buf[static FORMAT_TIME_MAX]) {
        uint64_t now = now_realtime();
        unsigned long long s;

        if (usec == 0)
                return NULL;
        s = now > usec ? (now - usec) / 1000000u : 0;
        if (s < 60)
                (void) snprintf(buf, FORMAT_TIME_MAX, _("%llus ago"), s);
        else if (s < 3600)
                (void) snprintf(buf, FORMAT_TIME_MAX, _("%llumin %llus ago"), s / 60, s % 60);
        else if (s < 86400)
                (void) snprintf(buf, FORMAT_TIME_MAX, _("%lluh %llumin ago"), s / 3600, s % 3600 / 60);
        else
                (void) snprintf(buf, FORMAT_TIME_MAX, _("%llud %lluh ago"), s / 86400, s % 86400 / 3600);
        return buf;
}

const char *format_timestamp(uint64_t usec, char buf[static FORMAT_TIME_MAX]) {
        time_t t = (time_t) (usec / 1000000u);
        char date[48], ago[FORMAT_TIME_MAX];
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) ||
            strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                return NULL;
        (void) snprintf(buf, FORMAT_TIME_MAX, "%s (%.40s)", date, format_ago(usec, ago));
        return buf;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reading Describe()'s JSON (dbus/org.tapotun1.Manager.md). */

static const char *jstr(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static uint64_t jnum(json_t *o, const char *key) {
        json_int_t v = json_integer_value(json_object_get(o, key));

        return v > 0 ? (uint64_t) v : 0;
}

/* The strings of the array at KEY joined by SEP; NULL when there are none (or on OOM: the table shows
 * "-" either way, and nothing here is worth failing the command for). */
static char *jjoin(json_t *o, const char *key, const char *sep) {
        json_t *a = json_object_get(o, key), *v;
        size_t len = 1, i;
        char *s, *e;

        if (json_array_size(a) == 0)
                return NULL;
        json_array_foreach(a, i, v)
                len += strlen(json_string_value(v) ?: "") + strlen(sep);
        s = e = malloc(len);
        if (!s)
                return NULL;
        *s = '\0';
        json_array_foreach(a, i, v)
                e = stpcpy(stpcpy(e, i > 0 ? sep : ""), json_string_value(v) ?: "");
        return s;
}

/* "no-route 3, stale 1"; NULL when nothing was dropped. */
static char *format_drops(json_t *drops) {
        char *s = NULL, *n;
        const char *reason;
        json_t *v;

        json_object_foreach(drops, reason, v) {
                json_int_t c = json_integer_value(v);

                if (c <= 0)
                        continue;
                if (asprintf(&n, "%s%s%s %lld", s ?: "", s ? ", " : "", reason, (long long) c) < 0)
                        break;
                free(s);
                s = n;
        }
        return s;
}

static const char *glyph_bullet(void) {
        return streq(nl_langinfo(CODESET), "UTF-8") ? "\u25cf" : "*";
}

/* "12 packets (1.5 KiB)" */
static void format_traffic(uint64_t packets, uint64_t bytes, char *buf, size_t size) {
        char b[FORMAT_BYTES_MAX];

        (void) snprintf(buf, size,
                        ngettext("%llu packet (%s)", "%llu packets (%s)", (unsigned long) packets),
                        (unsigned long long) packets, format_bytes(bytes, b));
}

static void table_add_key(Table *t, const char *label) {
        char buf[128];

        (void) snprintf(buf, sizeof buf, "%s:", label);
        (void) table_add(t, buf);
}

/* ---------------------------------------------------------------------------------------------- */

void print_json(json_t *j) {
        (void) json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
}

/* Adds the peers of TUNNEL and how many of them are connected to *TOTAL and *CONNECTED. */
static void count_peers(json_t *tunnel, size_t *total, size_t *connected) {
        json_t *p;
        size_t i;

        json_array_foreach(json_object_get(tunnel, "peers"), i, p) {
                (*total)++;
                *connected += streq_ptr(jstr(p, "state"), "connected");
        }
}

static void count_all_peers(json_t *describe, size_t *ret_total, size_t *ret_connected) {
        size_t i, total = 0, connected = 0;
        json_t *t;

        json_array_foreach(json_object_get(describe, "tunnels"), i, t)
                count_peers(t, &total, &connected);
        *ret_total = total;
        *ret_connected = connected;
}

void print_instances(json_t *instances) {
        _cleanup_(table_freep) Table *t = NULL;
        json_t *d;
        size_t i;

        if (table_new(5, &t) < 0)
                return;
        for (size_t c = 1; c <= 3; c++)
                table_align_right(t, c);
        (void) table_add(t, _("INSTANCE"));
        (void) table_add(t, _("TUNNELS"));
        (void) table_add(t, _("PEERS"));
        (void) table_add(t, _("CONNECTED"));
        (void) table_add(t, _("CONFIGURATION"));

        json_array_foreach(instances, i, d) {
                char n[3][32];
                size_t total, connected;

                count_all_peers(d, &total, &connected);
                (void) snprintf(n[0], sizeof n[0], "%zu", json_array_size(json_object_get(d, "tunnels")));
                (void) snprintf(n[1], sizeof n[1], "%zu", total);
                (void) snprintf(n[2], sizeof n[2], "%zu", connected);
                (void) table_add(t, jstr(d, "instance"));
                (void) table_add(t, n[0]);
                (void) table_add(t, n[1]);
                (void) table_add(t, n[2]);
                (void) table_add(t, jstr(d, "config"));
        }
        table_print(t, "");
        printf(ngettext("\n%zu instance listed.\n", "\n%zu instances listed.\n", (unsigned long) i), i);
}

static void print_tunnel_peers(json_t *tunnel) {
        _cleanup_(table_freep) Table *t = NULL;
        json_t *p;
        size_t i;

        if (json_array_size(json_object_get(tunnel, "peers")) == 0 || table_new(7, &t) < 0)
                return;
        table_align_right(t, 5);
        table_align_right(t, 6);
        (void) table_add(t, _("PEER"));
        (void) table_add(t, _("STATE"));
        (void) table_add(t, _("REMOTE"));
        (void) table_add(t, _("SINCE"));
        (void) table_add(t, _("LAST SEEN"));
        (void) table_add(t, _("RX"));
        (void) table_add(t, _("TX"));
        json_array_foreach(json_object_get(tunnel, "peers"), i, p) {
                char since[FORMAT_TIME_MAX], seen[FORMAT_TIME_MAX];
                char rx[FORMAT_BYTES_MAX], tx[FORMAT_BYTES_MAX];

                (void) table_add(t, jstr(p, "name"));
                (void) table_add(t, jstr(p, "state"));
                (void) table_add(t, jstr(p, "remote"));
                (void) table_add(t, format_ago(jnum(p, "connected_since"), since));
                (void) table_add(t, format_ago(jnum(p, "last_seen"), seen));
                (void) table_add(t, format_bytes(jnum(p, "rx_bytes"), rx));
                (void) table_add(t, format_bytes(jnum(p, "tx_bytes"), tx));
        }
        putchar('\n');
        table_print(t, "    ");
}

static void print_tunnel(json_t *tunnel) {
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *addresses = NULL, *routes = NULL, *offloads = NULL, *drops = NULL;
        char mtu[32], from[128], to[160], peers[64];
        size_t total = 0, connected = 0;

        if (table_new(2, &t) < 0)
                return;
        table_align_right(t, 0);
        table_set_separator(t, " ");

        if (streq_ptr(jstr(tunnel, "mode"), "server"))
                printf(_("%s %s: server, listening on %s\n"), glyph_bullet(), jstr(tunnel, "name"),
                       jstr(tunnel, "listen") ?: "-");
        else
                printf(_("%s %s: client of %s\n"), glyph_bullet(), jstr(tunnel, "name"),
                       jstr(tunnel, "server") ?: "-");

        addresses = jjoin(tunnel, "addresses", ", ");
        routes = jjoin(tunnel, "routes", ", ");
        offloads = jjoin(tunnel, "offloads", " ");
        drops = format_drops(json_object_get(tunnel, "drops"));
        (void) snprintf(mtu, sizeof mtu, "%llu", (unsigned long long) jnum(tunnel, "mtu"));
        format_traffic(jnum(tunnel, "read_packets"), jnum(tunnel, "read_bytes"), from, sizeof from);
        format_traffic(jnum(tunnel, "written_packets"), jnum(tunnel, "written_bytes"), to, sizeof to);
        if (jnum(tunnel, "write_drops") > 0) {
                size_t n = strlen(to);

                (void) snprintf(to + n, sizeof to - n, _(", %llu dropped"),
                                (unsigned long long) jnum(tunnel, "write_drops"));
        }
        count_peers(tunnel, &total, &connected);
        (void) snprintf(peers, sizeof peers, _("%zu of %zu connected"), connected, total);

        table_add_key(t, _("Addresses"));
        (void) table_add(t, addresses);
        table_add_key(t, _("Routes"));
        (void) table_add(t, routes);
        table_add_key(t, _("MTU"));
        (void) table_add(t, jnum(tunnel, "mtu") > 0 ? mtu : NULL);
        table_add_key(t, _("Offloads"));
        (void) table_add(t, offloads);
        table_add_key(t, _("From the TUN"));
        (void) table_add(t, from);
        table_add_key(t, _("To the TUN"));
        (void) table_add(t, to);
        table_add_key(t, _("Dropped"));
        (void) table_add(t, drops ?: _("nothing"));
        if (jnum(tunnel, "unreachables_sent") > 0) {
                char n[32];

                (void) snprintf(n, sizeof n, "%llu", (unsigned long long) jnum(tunnel, "unreachables_sent"));
                table_add_key(t, _("ICMP unreachable sent"));
                (void) table_add(t, n);
        }
        table_add_key(t, _("Peers"));
        (void) table_add(t, peers);
        table_print(t, "  ");
        print_tunnel_peers(tunnel);
}

/* The "update" of Describe(): "0.2.0 available (checked 5s ago)". */
static void format_update(json_t *update, char *buf, size_t size) {
        const char *state = jstr(update, "state"), *available = jstr(update, "available");
        char what[160], ago[FORMAT_TIME_MAX];

        if (streq_ptr(state, "installed"))
                (void) snprintf(what, sizeof what, _("%s installed; restart the service to run it"),
                                available ?: "?");
        else if (streq_ptr(state, "downloading"))
                (void) snprintf(what, sizeof what, _("downloading %s"), available ?: "?");
        else if (available)
                (void) snprintf(what, sizeof what, _("%s available"), available);
        else if (streq_ptr(state, "up-to-date"))
                (void) snprintf(what, sizeof what, "%s", _("up to date"));
        else if (streq_ptr(state, "failed"))
                (void) snprintf(what, sizeof what, "%s", _("unknown, the last check failed"));
        else if (streq_ptr(state, "checking"))
                (void) snprintf(what, sizeof what, "%s", _("checking now"));
        else
                (void) snprintf(what, sizeof what, "%s", _("not checked yet"));

        if (format_ago(jnum(update, "last_check"), ago))
                (void) snprintf(buf, size, _("%s (checked %s)"), what, ago);
        else
                (void) snprintf(buf, size, "%s", what);
}

void print_status(json_t *describe) {
        _cleanup_(table_freep) Table *t = NULL;
        size_t total, connected, i;
        char peers[64], tunnels[32], update_text[256];
        json_t *tunnel, *update;

        if (table_new(2, &t) < 0)
                return;
        table_align_right(t, 0);
        table_set_separator(t, " ");
        count_all_peers(describe, &total, &connected);
        (void) snprintf(peers, sizeof peers, _("%zu of %zu connected"), connected, total);
        (void) snprintf(tunnels, sizeof tunnels, "%zu",
                        json_array_size(json_object_get(describe, "tunnels")));

        printf("%s %s (" TAPOTUN_BUS_NAME_PREFIX "%s)\n", glyph_bullet(), jstr(describe, "instance"),
               jstr(describe, "instance"));
        table_add_key(t, _("Configuration"));
        (void) table_add(t, jstr(describe, "config"));
        table_add_key(t, _("Version"));
        (void) table_add(t, jstr(describe, "version"));
        update = json_object_get(describe, "update");
        if (json_is_object(update)) {
                format_update(update, update_text, sizeof update_text);
                table_add_key(t, _("Update"));
                (void) table_add(t, update_text);
                if (jstr(update, "error")) {
                        table_add_key(t, _("Update error"));
                        (void) table_add(t, jstr(update, "error"));
                }
        }
        table_add_key(t, _("Tunnels"));
        (void) table_add(t, tunnels);
        table_add_key(t, _("Peers"));
        (void) table_add(t, peers);
        table_print(t, "  ");

        json_array_foreach(json_object_get(describe, "tunnels"), i, tunnel) {
                putchar('\n');
                print_tunnel(tunnel);
        }
}

void print_peers(json_t *peers, bool with_instance) {
        _cleanup_(table_freep) Table *t = NULL;
        size_t n = with_instance ? 9 : 8, i;
        json_t *p;

        if (table_new(n, &t) < 0)
                return;
        table_align_right(t, n - 2);
        table_align_right(t, n - 1);
        if (with_instance)
                (void) table_add(t, _("INSTANCE"));
        (void) table_add(t, _("TUNNEL"));
        (void) table_add(t, _("PEER"));
        (void) table_add(t, _("STATE"));
        (void) table_add(t, _("REMOTE"));
        (void) table_add(t, _("SINCE"));
        (void) table_add(t, _("LAST SEEN"));
        (void) table_add(t, _("RX"));
        (void) table_add(t, _("TX"));
        json_array_foreach(peers, i, p) {
                char since[FORMAT_TIME_MAX], seen[FORMAT_TIME_MAX];
                char rx[FORMAT_BYTES_MAX], tx[FORMAT_BYTES_MAX];

                if (with_instance)
                        (void) table_add(t, jstr(p, "instance"));
                (void) table_add(t, jstr(p, "tunnel"));
                (void) table_add(t, jstr(p, "name"));
                (void) table_add(t, jstr(p, "state"));
                (void) table_add(t, jstr(p, "remote"));
                (void) table_add(t, format_ago(jnum(p, "connected_since"), since));
                (void) table_add(t, format_ago(jnum(p, "last_seen"), seen));
                (void) table_add(t, format_bytes(jnum(p, "rx_bytes"), rx));
                (void) table_add(t, format_bytes(jnum(p, "tx_bytes"), tx));
        }
        table_print(t, "");
        printf(ngettext("\n%zu peer listed.\n", "\n%zu peers listed.\n", (unsigned long) i), i);
}

void print_peer(json_t *peer) {
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *addresses = NULL, *routes = NULL, *sources = NULL, *offloads = NULL;
        _cleanup_free_ char *drops = NULL;
        char since[FORMAT_TIME_MAX], seen[FORMAT_TIME_MAX], rx[128], tx[128], queued[FORMAT_BYTES_MAX];

        if (table_new(2, &t) < 0)
                return;
        table_align_right(t, 0);
        table_set_separator(t, " ");
        addresses = jjoin(peer, "addresses", ", ");
        routes = jjoin(peer, "routes", ", ");
        sources = jjoin(peer, "sources", ", ");
        offloads = jjoin(peer, "offloads", " ");
        drops = format_drops(json_object_get(peer, "drops"));
        format_traffic(jnum(peer, "rx_packets"), jnum(peer, "rx_bytes"), rx, sizeof rx);
        format_traffic(jnum(peer, "tx_packets"), jnum(peer, "tx_bytes"), tx, sizeof tx);

        printf("%s %s/%s (%s)\n", glyph_bullet(), jstr(peer, "tunnel"), jstr(peer, "name"),
               jstr(peer, "instance"));
        table_add_key(t, _("State"));
        (void) table_add(t, jstr(peer, "state"));
        table_add_key(t, _("Remote"));
        (void) table_add(t, jstr(peer, "remote"));
        table_add_key(t, _("Connected since"));
        (void) table_add(t, format_timestamp(jnum(peer, "connected_since"), since));
        table_add_key(t, _("Last seen"));
        (void) table_add(t, format_ago(jnum(peer, "last_seen"), seen) ?: _("never"));
        table_add_key(t, _("Last error"));
        (void) table_add(t, jstr(peer, "last_error"));
        table_add_key(t, _("Addresses"));
        (void) table_add(t, addresses);
        table_add_key(t, _("Routes"));
        (void) table_add(t, routes);
        table_add_key(t, _("Sources"));
        (void) table_add(t, sources);
        table_add_key(t, _("Offloads"));
        (void) table_add(t, offloads);
        table_add_key(t, _("Received"));
        (void) table_add(t, rx);
        table_add_key(t, _("Sent"));
        (void) table_add(t, tx);
        table_add_key(t, _("Queued"));
        (void) table_add(t, format_bytes(jnum(peer, "queued_bytes"), queued));
        table_add_key(t, _("Dropped"));
        (void) table_add(t, drops ?: _("nothing"));
        /* The protocol has no echo and the transports do not report TCP's estimate. */
        table_add_key(t, _("RTT"));
        (void) table_add(t, _("unknown (not measured)"));
        table_print(t, "  ");
}
