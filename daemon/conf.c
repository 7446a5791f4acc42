/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

#include "conf.h"
#include "wire.h"

/* A configuration is written by the administrator, but a broken one must still not cost much. */
#define CONFIG_FILE_SIZE_MAX (16u * 1024u * 1024u)
#define ERRORS_MAX 1000u

/* User strings in messages are quoted, escaped and cut after this many characters. */
#define QUOTE_CHARS_MAX 64u
#define QUOTE_MAX (QUOTE_CHARS_MAX * 6u + 8u)
#define DESCRIBE_MAX (QUOTE_MAX + 64u)
#define REF_MAX (QUOTE_MAX + 32u)
#define ADDR_MAX 64u
#define PATH_SIZE 256u
#define EDIT_DISTANCE_LEN_MAX 32u

#define IFACE_NAME_MAX 15u
#define CLIENT_NAME_MAX 64u
#define TOKEN_HEX_LEN 40u
#define MTU_MIN 68u
#define MTU_MIN_IPV6 1280u
#define MTU_MAX 65535u
#define PEER_TIMEOUT_MIN 10u
#define PEER_TIMEOUT_MAX 86400u
#define MAX_CONNECTIONS_MAX 1000000u
#define MAX_PUTS_MAX 64u
#define QUEUE_BYTES_MIN 65536u
#define QUEUE_BYTES_MAX (1024u * 1024u * 1024u)

/* Timers, in seconds in the JSON; the defaults are the original's. */
#define CONFIG_KEEPALIVE_USEC ((uint64_t) TAPOTUN_KEEPALIVE_USEC)
#define CONFIG_RECONNECT_MIN_USEC (3u * 1000000ull)
#define CONFIG_RECONNECT_MAX_USEC (60u * 1000000ull)
#define CONFIG_STALL_TIMEOUT_USEC (60u * 1000000ull)
#define KEEPALIVE_MAX 3600u
#define RECONNECT_MAX 3600u
#define STALL_TIMEOUT_MIN 5u
#define STALL_TIMEOUT_MAX 3600u
#define UNHEALTHY_AFTER_MAX 86400u
#define CONFIG_DEFAULT_UNHEALTHY_AFTER_USEC (60u * 1000000ull)

static const char *const tapotun_mode_table[_TAPOTUN_MODE_MAX] = {
        [TAPOTUN_MODE_SERVER] = "server",
        [TAPOTUN_MODE_CLIENT] = "client",
};

DEFINE_STRING_TABLE_LOOKUP(tapotun_mode, TapotunMode);

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        if (!l)
                return 0;
        while (l[n])
                n++;
        return n;
}

/* ---------------------------------------------------------------------------------------------- */
/* Error collection */

typedef struct Parser {
        const char *label;
        char path[PATH_SIZE]; /* of the value being parsed, e.g. "[0].clients[1]" */
        size_t path_len;
        char **errors;
        size_t n_errors;
        size_t n_allocated;
        size_t n_suppressed;
        bool oom;
} Parser;

static void parser_done(Parser *p) {
        p->errors = strv_free(p->errors);
}

static char *strdup_vprintf(const char *format, va_list ap) _printf_(1, 0);
static char *strdup_vprintf(const char *format, va_list ap) {
        va_list aq;
        char *s;
        int n;

        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, format, aq);
        va_end(aq);
        if (n < 0)
                return NULL;

        s = malloc((size_t) n + 1);
        if (!s)
                return NULL;
        (void) vsnprintf(s, (size_t) n + 1, format, ap);
        return s;
}

static char *strdup_printf(const char *format, ...) _printf_(1, 2);
static char *strdup_printf(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        s = strdup_vprintf(format, ap);
        va_end(ap);
        return s;
}

static void parser_add(Parser *p, char *line) {
        if (!line) {
                p->oom = true;
                return;
        }

        if (p->n_errors + 2 > p->n_allocated) {
                size_t n = MAX(p->n_allocated * 2, 16u);
                char **l = realloc(p->errors, n * sizeof(char *));

                if (!l) {
                        free(line);
                        p->oom = true;
                        return;
                }
                p->errors = l;
                p->n_allocated = n;
        }

        p->errors[p->n_errors++] = line;
        p->errors[p->n_errors] = NULL;
}

static void report_pathv(Parser *p, const char *path, const char *format, va_list ap) _printf_(3, 0);
static void report_pathv(Parser *p, const char *path, const char *format, va_list ap) {
        _cleanup_(freep) char *msg = NULL;

        if (p->oom)
                return;
        if (p->n_errors >= ERRORS_MAX) {
                p->n_suppressed++;
                return;
        }

        msg = strdup_vprintf(format, ap);
        if (!msg) {
                p->oom = true;
                return;
        }

        parser_add(p, strdup_printf("%s: %s: %s", p->label, path[0] ? path : _("top level"), msg));
}

static size_t path_push_format(Parser *p, const char *format, ...) _printf_(2, 3);
static size_t path_push_format(Parser *p, const char *format, ...) {
        size_t saved = p->path_len;
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(p->path + p->path_len, sizeof p->path - p->path_len, format, ap);
        va_end(ap);

        p->path_len = MIN(p->path_len + (size_t) MAX(n, 0), sizeof p->path - 1);
        return saved;
}

static size_t path_push_key(Parser *p, const char *key) {
        return path_push_format(p, "%s%s", p->path_len > 0 ? "." : "", key);
}

static size_t path_push_index(Parser *p, size_t index) {
        return path_push_format(p, "[%zu]", index);
}

static void path_pop(Parser *p, size_t saved) {
        p->path_len = saved;
        p->path[saved] = '\0';
}

/* Reports at the current path, extended by ".KEY" when KEY is not NULL. */
static void report(Parser *p, const char *key, const char *format, ...) _printf_(3, 4);
static void report(Parser *p, const char *key, const char *format, ...) {
        size_t saved = key ? path_push_key(p, key) : p->path_len;
        va_list ap;

        va_start(ap, format);
        report_pathv(p, p->path, format, ap);
        va_end(ap);

        path_pop(p, saved);
}

/* Reports at the current path extended by ".clients[CLIENT]", then ".KEY" when KEY is not NULL and
 * "[INDEX]" when INDEX is not negative: for the checks that compare clients after all were parsed. */
static void report_client(Parser *p, size_t client, const char *key, ssize_t index, const char *format, ...)
        _printf_(5, 6);
static void report_client(Parser *p, size_t client, const char *key, ssize_t index, const char *format, ...) {
        size_t saved = path_push_format(p, ".clients[%zu]", client);
        va_list ap;

        if (key)
                (void) path_push_key(p, key);
        if (index >= 0)
                (void) path_push_index(p, (size_t) index);

        va_start(ap, format);
        report_pathv(p, p->path, format, ap);
        va_end(ap);

        path_pop(p, saved);
}

/* ---------------------------------------------------------------------------------------------- */
/* Formatting values for messages */

/* S as a JSON-style quoted string, control characters escaped, cut after QUOTE_CHARS_MAX characters. */
static const char *quote(const char *s, char buf[static QUOTE_MAX]) {
        size_t o = 0, chars = 0;

        buf[o++] = '"';
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if ((*c & 0xc0) != 0x80) { /* not a UTF-8 continuation byte: a new character */
                        if (chars == QUOTE_CHARS_MAX) {
                                memcpy(buf + o, "...", 3);
                                o += 3;
                                break;
                        }
                        chars++;
                }

                if (*c == '"' || *c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char) *c;
                } else if (*c < 0x20 || *c == 0x7f)
                        o += (size_t) snprintf(buf + o, QUOTE_MAX - o, "\\u%04x", *c);
                else
                        buf[o++] = (char) *c;
        }
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}
#define QUOTE(s) quote((s), (char[QUOTE_MAX]) {})

/* What a JSON value is, for "expected X, got Y". */
static const char *describe(const json_t *v, bool with_value, char buf[static DESCRIBE_MAX]) {
        char num[64];

        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return _("an object");
        case JSON_ARRAY:
                return _("an array");
        case JSON_TRUE:
                return "true";
        case JSON_FALSE:
                return "false";
        case JSON_NULL:
                return "null";
        case JSON_STRING:
                if (!with_value)
                        return _("a string");
                (void) snprintf(buf, DESCRIBE_MAX, _("the string %s"), QUOTE(json_string_value(v)));
                return buf;
        case JSON_INTEGER:
                if (!with_value)
                        return _("an integer");
                (void) snprintf(buf, DESCRIBE_MAX, _("the integer %lld"), (long long) json_integer_value(v));
                return buf;
        case JSON_REAL:
                if (!with_value)
                        return _("a number");
                (void) snprintf(num, sizeof num, "%.15g", json_real_value(v));
                /* Show 1e3 as 1000.0, so that it does not look like the integer it is not. */
                if (!strpbrk(num, ".eni"))
                        (void) strncat(num, ".0", sizeof num - strlen(num) - 1);
                (void) snprintf(buf, DESCRIBE_MAX, _("the number %s"), num);
                return buf;
        }
        return "?";
}
#define DESCRIBE(v) describe((v), true, (char[DESCRIBE_MAX]) {})

static const char *format_addr(const TapotunPrefix *a, char buf[static ADDR_MAX]) {
        if (!inet_ntop(a->family, a->addr.bytes, buf, ADDR_MAX))
                buf[0] = '\0';
        return buf;
}
#define FORMAT_ADDR(a) format_addr((a), (char[ADDR_MAX]) {})

static const char *format_prefix(const TapotunPrefix *a, char buf[static ADDR_MAX]) {
        wire_prefix_format(a, buf, ADDR_MAX);
        return buf;
}
#define FORMAT_PREFIX(a) format_prefix((a), (char[ADDR_MAX]) {})

/* ---------------------------------------------------------------------------------------------- */
/* Address arithmetic the checks need beyond wire.h */

static unsigned family_bits(int family) {
        return family == AF_INET ? 32 : 128;
}

static int family_version(int family) {
        return family == AF_INET ? 4 : 6;
}

/* A with its bits past LEN cleared, and prefix length LEN. */
static TapotunPrefix prefix_masked(const TapotunPrefix *a, unsigned len) {
        TapotunPrefix m = *a;

        for (unsigned bit = len; bit < family_bits(a->family); bit++)
                m.addr.bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
        m.prefixlen = (uint8_t) len;
        return m;
}

/* Whether all bits of A past LEN are VALUE. */
static bool host_bits_all(const TapotunPrefix *a, unsigned len, bool value) {
        for (unsigned bit = len; bit < family_bits(a->family); bit++)
                if (!!(a->addr.bytes[bit / 8] & (0x80u >> (bit % 8))) != value)
                        return false;
        return true;
}

static bool addr_equal(const TapotunPrefix *a, const TapotunPrefix *b) {
        return a->family != 0 && a->family == b->family &&
               memcmp(a->addr.bytes, b->addr.bytes, a->family == AF_INET ? 4 : 16) == 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Typed getters: each reports what is wrong and returns -EINVAL, or 0 with the value. KEY extends the
 * current path (NULL: the value at the current path itself). */

static int expect_string(Parser *p, const char *key, const json_t *v, const char **ret) {
        if (!json_is_string(v)) {
                report(p, key, _("expected a string, got %s"), DESCRIBE(v));
                return -EINVAL;
        }
        *ret = json_string_value(v);
        return 0;
}

static int expect_bool(Parser *p, const char *key, const json_t *v, bool *ret) {
        if (!json_is_boolean(v)) {
                report(p, key, _("expected true or false, got %s"), DESCRIBE(v));
                return -EINVAL;
        }
        *ret = json_is_true(v);
        return 0;
}

static int expect_uint(Parser *p, const char *key, const json_t *v, uint64_t min, uint64_t max,
                       uint64_t *ret) {
        json_int_t i;

        if (!json_is_integer(v)) {
                report(p, key, _("expected an integer, got %s"), DESCRIBE(v));
                return -EINVAL;
        }

        i = json_integer_value(v);
        if (i < 0 || (uint64_t) i < min || (uint64_t) i > max) {
                report(p, key, _("must be between %llu and %llu, got %lld"), (unsigned long long) min,
                       (unsigned long long) max, (long long) i);
                return -EINVAL;
        }

        *ret = (uint64_t) i;
        return 0;
}

/* Interface and client names: they end up in interface names, bus paths and log fields. */
static int expect_name(Parser *p, const char *key, const json_t *v, size_t max, const char **ret) {
        const char *s;
        size_t n;
        int r;

        r = expect_string(p, key, v, &s);
        if (r < 0)
                return r;

        n = strlen(s);
        if (n == 0) {
                report(p, key, _("must not be empty"));
                return -EINVAL;
        }
        if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n) {
                report(p, key, _("may contain only ASCII letters, digits, \"_\", \".\" and \"-\", got %s"),
                       QUOTE(s));
                return -EINVAL;
        }
        if (n > max) {
                report(p, key, _("must be at most %zu characters long, got %zu: %s"), max, n, QUOTE(s));
                return -EINVAL;
        }
        if (streq(s, ".") || streq(s, "..")) {
                report(p, key, _("%s is not allowed as a name"), QUOTE(s));
                return -EINVAL;
        }

        *ret = s;
        return 0;
}

typedef enum PrefixKind {
        PREFIX_PLAIN,       /* an address, no "/" at all (listen) */
        PREFIX_HOST,        /* an address, optionally with its full host prefix length */
        PREFIX_ADDRESS,     /* an address with a prefix length; a missing one means a host prefix */
        PREFIX_ADDRESS_LEN, /* an address with a prefix length that must be given */
        PREFIX_NETWORK,     /* a network: host bits zero; a missing prefix length means a host route */
} PrefixKind;

static int expect_prefix(Parser *p, const char *key, const json_t *v, PrefixKind kind, TapotunPrefix *ret) {
        char addr[INET6_ADDRSTRLEN];
        TapotunPrefix a;
        const char *s, *slash;
        size_t n;
        int r;

        r = expect_string(p, key, v, &s);
        if (r < 0)
                return r;

        slash = strchr(s, '/');
        n = slash ? (size_t) (slash - s) : strlen(s);
        if (n == 0 || n >= sizeof addr) {
                report(p, key, _("%s is not a valid IPv4 or IPv6 address"), QUOTE(s));
                return -EINVAL;
        }
        memcpy(addr, s, n);
        addr[n] = '\0';
        if (wire_prefix_parse(addr, /* network= */ false, &a) < 0) {
                report(p, key, _("%s is not a valid IPv4 or IPv6 address"), QUOTE(s));
                return -EINVAL;
        }

        if (slash) {
                const char *l = slash + 1;
                size_t digits = strspn(l, "0123456789");
                unsigned len;

                if (kind == PREFIX_PLAIN) {
                        report(p, key, _("expected an address without a prefix length, got %s"), QUOTE(s));
                        return -EINVAL;
                }
                if (digits == 0 || digits > 3 || l[digits] != '\0' || (digits > 1 && l[0] == '0')) {
                        report(p, key, _("%s has an invalid prefix length"), QUOTE(s));
                        return -EINVAL;
                }
                len = (unsigned) strtoul(l, NULL, 10);
                if (len > family_bits(a.family)) {
                        report(p, key, _("prefix length %u in %s is out of range for IPv%i (0..%u)"), len,
                               QUOTE(s), family_version(a.family), family_bits(a.family));
                        return -EINVAL;
                }
        } else if (kind == PREFIX_ADDRESS_LEN) {
                report(p, key, _("%s has no prefix length; write the address with its prefix, e.g. %s"),
                       QUOTE(s), a.family == AF_INET ? "\"10.10.0.1/24\"" : "\"fd00:10::1/64\"");
                return -EINVAL;
        }

        if (wire_prefix_parse(s, /* network= */ false, &a) < 0) {
                report(p, key, _("%s is not a valid IPv4 or IPv6 prefix"), QUOTE(s));
                return -EINVAL;
        }

        if (kind == PREFIX_HOST && a.prefixlen != family_bits(a.family)) {
                report(p, key, _("%s is not a host address; write a plain address without a prefix length"),
                       QUOTE(s));
                return -EINVAL;
        }

        if (kind == PREFIX_NETWORK) {
                TapotunPrefix m = prefix_masked(&a, a.prefixlen);

                if (!wire_prefix_equal(&a, &m)) {
                        report(p, key, _("%s has host bits set; did you mean \"%s\"?"), QUOTE(s),
                               FORMAT_PREFIX(&m));
                        return -EINVAL;
                }
        }

        *ret = a;
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Field tables */

#define MODE_SERVER (1u << TAPOTUN_MODE_SERVER)
#define MODE_CLIENT (1u << TAPOTUN_MODE_CLIENT)
#define MODE_ANY (MODE_SERVER | MODE_CLIENT)

typedef struct Field {
        const char *name;
        unsigned modes;
} Field;

static const Field iface_fields[] = {
        { "name", MODE_ANY },
        { "mark", MODE_ANY },
        { "keepalive", MODE_ANY },
        { "port", MODE_SERVER },
        { "listen", MODE_SERVER },
        { "net", MODE_SERVER },
        { "mtu", MODE_SERVER },
        { "ips", MODE_SERVER },
        { "routes", MODE_SERVER },
        { "clients", MODE_SERVER },
        { "peer_timeout", MODE_SERVER },
        { "max_connections", MODE_SERVER },
        { "max_puts_per_client", MODE_SERVER },
        { "queue_bytes", MODE_SERVER },
        { "push_routes", MODE_SERVER },
        { "push_local_routes", MODE_SERVER },
        { "push_client_routes", MODE_SERVER },
        { "accept_routes", MODE_CLIENT },
        { "server", MODE_CLIENT },
        { "token", MODE_CLIENT },
        { "ca", MODE_CLIENT },
        { "insecure", MODE_CLIENT },
        { "reconnect_min", MODE_CLIENT },
        { "reconnect_max", MODE_CLIENT },
        { "stall_timeout", MODE_CLIENT },
        { "http", MODE_CLIENT },
        { "offloads", MODE_CLIENT },
        { "metrics", MODE_ANY },
};

static const Field metrics_fields[] = {
        { "listen", MODE_ANY },
        { "unhealthy_after", MODE_ANY },
};

static const Field mark_fields[] = {
        { "value", MODE_ANY },
        { "table", MODE_ANY },
        { "priority", MODE_ANY },
};

static const Field client_fields[] = {
        { "token", MODE_ANY },
        { "ip", MODE_ANY },
        { "name", MODE_ANY },
        { "routes", MODE_ANY },
        { "sources", MODE_ANY },
        { "allow_spoofing", MODE_ANY },
};

/* Levenshtein distance with a swap of two neighbours counted as one edit ("optimal string alignment"),
 * because "prot" for "port" is a typical typo. */
static unsigned edit_distance(const char *a, const char *b) {
        unsigned rows[3][EDIT_DISTANCE_LEN_MAX + 1];
        size_t la = strlen(a), lb = strlen(b);

        if (la > EDIT_DISTANCE_LEN_MAX || lb > EDIT_DISTANCE_LEN_MAX)
                return UINT_MAX;

        for (size_t j = 0; j <= lb; j++)
                rows[0][j] = (unsigned) j;

        for (size_t i = 1; i <= la; i++) {
                unsigned *prev2 = rows[(i + 1) % 3], *prev = rows[(i - 1) % 3], *cur = rows[i % 3];

                cur[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned cost = a[i - 1] != b[j - 1];

                        cur[j] = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                cur[j] = MIN(cur[j], prev2[j - 2] + 1);
                }
        }
        return rows[la % 3][lb];
}

/* Reports every key of OBJ that is not in FIELDS, with the nearest field allowed in MODES as a hint,
 * and every known key not allowed in MODES (a single mode when MODES is not MODE_ANY). */
static void check_fields(Parser *p, const json_t *obj, const Field *fields, size_t n_fields, unsigned modes) {
        const char *key;
        json_t *v;

        json_object_foreach((json_t *) obj, key, v) {
                const Field *found = NULL, *best = NULL;
                unsigned best_d = UINT_MAX;

                for (size_t i = 0; i < n_fields; i++)
                        if (streq(fields[i].name, key))
                                found = &fields[i];

                if (found) {
                        if (found->modes & modes)
                                continue;
                        if (modes == MODE_SERVER)
                                report(p, key, _("only allowed for a client (an interface with \"server\"); "
                                                 "this interface is a server (it has \"port\")"));
                        else
                                report(p, key, _("only allowed for a server (an interface with \"port\"); "
                                                 "this interface is a client (it has \"server\")"));
                        continue;
                }

                for (size_t i = 0; i < n_fields; i++) {
                        unsigned d;

                        if (!(fields[i].modes & modes))
                                continue;
                        d = edit_distance(key, fields[i].name);
                        /* Also below the name's length: "xy" is not a typo of "ip". */
                        if (d <= 2 && d < strlen(fields[i].name) && d < best_d) {
                                best = &fields[i];
                                best_d = d;
                        }
                }

                if (best)
                        report(p, NULL, _("unknown field %s; did you mean \"%s\"?"), QUOTE(key), best->name);
                else
                        report(p, NULL, _("unknown field %s"), QUOTE(key));
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* Interfaces */

/* What the checks across clients and interfaces need to know about where things came from. */
typedef struct ClientAux {
        ssize_t ip_index[2]; /* IPv4, IPv6: index in the "ip" array, -1 for a plain string */
        bool name_given;
} ClientAux;

typedef struct IfaceAux {
        TapotunPrefix listen; /* family 0 when invalid */
        TapotunPrefix metrics; /* the metrics listen address, family 0 when none or invalid */
        bool name_ok;
        bool port_ok;
        bool net_error;     /* "net" was reported: do not also complain about what depends on it */
        bool uses_ipv6;
        ClientAux *clients;
} IfaceAux;

static size_t family_slot(int family) {
        return family == AF_INET ? 0 : 1;
}

static void parse_mark(Parser *p, const json_t *v, TapotunIfaceConfig *cfg) {
        static const char *const reserved[] = { [253] = "default", [254] = "main", [255] = "local" };
        size_t saved;
        uint64_t u;
        json_t *f;

        if (!json_is_object(v)) {
                report(p, "mark", _("expected an object with \"value\" and \"table\", got %s"), DESCRIBE(v));
                return;
        }

        saved = path_push_key(p, "mark");
        check_fields(p, v, mark_fields, ELEMENTSOF(mark_fields), MODE_ANY);

        f = json_object_get(v, "value");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "value");
        else if (expect_uint(p, "value", f, 0, UINT32_MAX, &u) >= 0)
                cfg->mark_value = (uint32_t) u;

        f = json_object_get(v, "table");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "table");
        else if (expect_uint(p, "table", f, 1, UINT32_MAX, &u) >= 0) {
                if (u < ELEMENTSOF(reserved) && reserved[u])
                        report(p, "table", _("table %u is the kernel's \"%s\" table; use another number"),
                               (unsigned) u, reserved[u]);
                else
                        cfg->mark_table = (uint32_t) u;
        }

        f = json_object_get(v, "priority");
        if (f && expect_uint(p, "priority", f, 1, UINT32_MAX, &u) >= 0)
                cfg->mark_priority = (uint32_t) u;

        path_pop(p, saved);
}

/* Calls PARSE for V if it is a string, or for each element if it is an array (at least one). */
static int foreach_string_or_array(Parser *p, const char *key, const json_t *v,
                                   void (*parse)(Parser *p, const json_t *v, ssize_t index, void *userdata),
                                   void *userdata) {
        size_t saved, i;
        json_t *e;

        if (json_is_string(v)) {
                saved = path_push_key(p, key);
                parse(p, v, -1, userdata);
                path_pop(p, saved);
                return 0;
        }
        if (!json_is_array(v)) {
                report(p, key, _("expected a string or an array of strings, got %s"), DESCRIBE(v));
                return -EINVAL;
        }
        if (json_array_size(v) == 0) {
                report(p, key, _("must not be an empty array"));
                return -EINVAL;
        }

        saved = path_push_key(p, key);
        json_array_foreach(v, i, e) {
                size_t s = path_push_index(p, i);
                parse(p, e, (ssize_t) i, userdata);
                path_pop(p, s);
        }
        path_pop(p, saved);
        return 0;
}

typedef struct NetState {
        TapotunIfaceConfig *cfg;
        IfaceAux *aux;
} NetState;

static void parse_net_one(Parser *p, const json_t *v, ssize_t index, void *userdata) {
        NetState *st = userdata;
        TapotunPrefix a, *slot;
        unsigned bits;

        if (expect_prefix(p, NULL, v, PREFIX_ADDRESS_LEN, &a) < 0) {
                st->aux->net_error = true;
                return;
        }

        slot = a.family == AF_INET ? &st->cfg->net : &st->cfg->net6;
        if (slot->family != 0) {
                report(p, NULL, _("a second IPv%i prefix; \"net\" takes at most one IPv4 and one IPv6 prefix"),
                       family_version(a.family));
                st->aux->net_error = true;
                return;
        }

        /* The server's own address goes here; the network or broadcast address is a common slip. Keep
         * the prefix anyway, so that the clients are still checked against it. */
        *slot = a;
        bits = family_bits(a.family);
        if (a.prefixlen + 2u <= bits && host_bits_all(&a, a.prefixlen, false)) {
                TapotunPrefix s = a;

                s.addr.bytes[bits / 8 - 1] |= 1;
                report(p, NULL, _("%s is the network address; \"net\" takes the server's address with the "
                                  "prefix length, did you mean \"%s\"?"),
                       QUOTE(json_string_value(v)), FORMAT_PREFIX(&s));
                st->aux->net_error = true;
        } else if (a.family == AF_INET && a.prefixlen + 2u <= bits && host_bits_all(&a, a.prefixlen, true)) {
                report(p, NULL, _("%s is the broadcast address; \"net\" takes the server's address with the "
                                  "prefix length"),
                       QUOTE(json_string_value(v)));
                st->aux->net_error = true;
        }
}

/* A list of prefixes of KIND at KEY: one slot per element (family 0 where an element was bad), and
 * elements equal to an earlier one reported. */
static void parse_prefix_list(Parser *p, const json_t *obj, const char *key, PrefixKind kind,
                              TapotunPrefix **ret, size_t *ret_n) {
        TapotunPrefix *l;
        size_t saved, i;
        json_t *v, *e;

        v = json_object_get(obj, key);
        if (!v)
                return;
        if (!json_is_array(v)) {
                report(p, key, _("expected an array of strings, got %s"), DESCRIBE(v));
                return;
        }
        if (json_array_size(v) == 0)
                return;

        l = calloc(json_array_size(v), sizeof(TapotunPrefix));
        if (!l) {
                p->oom = true;
                return;
        }
        *ret = l;
        *ret_n = json_array_size(v);

        saved = path_push_key(p, key);
        json_array_foreach(v, i, e) {
                size_t s = path_push_index(p, i);

                if (expect_prefix(p, NULL, e, kind, &l[i]) >= 0)
                        for (size_t j = 0; j < i; j++)
                                if (wire_prefix_equal(&l[i], &l[j])) {
                                        report(p, NULL, _("%s is listed twice (also %s[%zu])"),
                                               QUOTE(json_string_value(e)), key, j);
                                        break;
                                }
                path_pop(p, s);
        }
        path_pop(p, saved);
}

static bool prefixes_use_ipv6(const TapotunPrefix *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (l[i].family == AF_INET6)
                        return true;
        return false;
}

typedef struct ClientIpState {
        TapotunIfaceConfig *cfg;
        IfaceAux *aux;
        TapotunClientConfig *client;
        ClientAux *client_aux;
} ClientIpState;

static void parse_client_ip_one(Parser *p, const json_t *v, ssize_t index, void *userdata) {
        ClientIpState *st = userdata;
        const TapotunPrefix *net;
        TapotunPrefix a, *slot;
        const char *s;

        if (expect_prefix(p, NULL, v, PREFIX_HOST, &a) < 0)
                return;
        s = json_string_value(v);

        slot = a.family == AF_INET ? &st->client->ip : &st->client->ip6;
        if (slot->family != 0) {
                report(p, NULL, _("a second IPv%i address; \"ip\" takes at most one IPv4 and one IPv6 address"),
                       family_version(a.family));
                return;
        }

        net = a.family == AF_INET ? &st->cfg->net : &st->cfg->net6;
        if (net->family == 0) {
                if (!st->aux->net_error)
                        report(p, NULL, _("%s is an IPv%i address, but \"net\" has no IPv%i prefix"), QUOTE(s),
                               family_version(a.family), family_version(a.family));
                return;
        }
        if (!wire_prefix_contains(net, &a)) {
                TapotunPrefix m = prefix_masked(net, net->prefixlen);

                report(p, NULL, _("%s is outside the interface's net %s"), QUOTE(s), FORMAT_PREFIX(&m));
                return;
        }
        if (addr_equal(&a, net)) {
                report(p, NULL, _("%s is the server's own address (\"net\")"), QUOTE(s));
                return;
        }
        if (net->prefixlen + 2u <= family_bits(a.family)) {
                TapotunPrefix m = prefix_masked(net, net->prefixlen);

                if (host_bits_all(&a, net->prefixlen, false)) {
                        report(p, NULL, _("%s is the network address of %s"), QUOTE(s), FORMAT_PREFIX(&m));
                        return;
                }
                if (a.family == AF_INET && host_bits_all(&a, net->prefixlen, true)) {
                        report(p, NULL, _("%s is the broadcast address of %s"), QUOTE(s), FORMAT_PREFIX(&m));
                        return;
                }
        }
        for (size_t i = 0; i < st->cfg->n_ips; i++)
                if (addr_equal(&a, &st->cfg->ips[i])) {
                        report(p, NULL, _("%s is also a server address (ips[%zu])"), QUOTE(s), i);
                        return;
                }

        *slot = a;
        st->client_aux->ip_index[family_slot(a.family)] = index;
}

static void parse_client(Parser *p, const json_t *v, size_t index, TapotunIfaceConfig *cfg, IfaceAux *aux) {
        TapotunClientConfig *c = &cfg->clients[index];
        ClientAux *ca = &aux->clients[index];
        const char *s;
        bool b;
        json_t *f;

        ca->ip_index[0] = ca->ip_index[1] = -1;

        if (!json_is_object(v)) {
                report(p, NULL, _("expected a client object, got %s"), DESCRIBE(v));
                return;
        }
        check_fields(p, v, client_fields, ELEMENTSOF(client_fields), MODE_ANY);

        f = json_object_get(v, "token");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "token");
        else if (expect_string(p, "token", f, &s) >= 0) {
                if (strlen(s) != TOKEN_HEX_LEN || strspn(s, "0123456789abcdef") != TOKEN_HEX_LEN)
                        report(p, "token",
                               _("expected 40 lowercase hex digits (SHA-1 of the client token), got %s"),
                               QUOTE(s));
                else {
                        memcpy(c->token, s, TOKEN_HEX_LEN + 1);
                        for (size_t i = 0; i < sizeof c->token_sha1; i++) {
                                unsigned byte;

                                (void) sscanf(s + 2 * i, "%2x", &byte);
                                c->token_sha1[i] = (uint8_t) byte;
                        }
                }
        }

        f = json_object_get(v, "ip");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "ip");
        else
                (void) foreach_string_or_array(p, "ip", f, parse_client_ip_one,
                                               &(ClientIpState) { cfg, aux, c, ca });

        f = json_object_get(v, "name");
        if (!f) {
                c->name = strdup_printf("client%zu", index);
                if (!c->name)
                        p->oom = true;
        } else if (expect_name(p, "name", f, CLIENT_NAME_MAX, &s) >= 0) {
                c->name = strdup(s);
                if (!c->name)
                        p->oom = true;
                ca->name_given = true;
        }

        parse_prefix_list(p, v, "routes", PREFIX_NETWORK, &c->routes, &c->n_routes);
        parse_prefix_list(p, v, "sources", PREFIX_HOST, &c->sources, &c->n_sources);

        f = json_object_get(v, "allow_spoofing");
        if (f && expect_bool(p, "allow_spoofing", f, &b) >= 0)
                c->allow_spoofing = b;

        if (c->ip6.family != 0 || prefixes_use_ipv6(c->routes, c->n_routes) ||
            prefixes_use_ipv6(c->sources, c->n_sources))
                aux->uses_ipv6 = true;
}

static const char *client_ref(const TapotunIfaceConfig *cfg, size_t i, char buf[static REF_MAX]) {
        if (cfg->clients[i].name)
                (void) snprintf(buf, REF_MAX, "clients[%zu] (%s)", i, QUOTE(cfg->clients[i].name));
        else
                (void) snprintf(buf, REF_MAX, "clients[%zu]", i);
        return buf;
}
#define CLIENT_REF(cfg, i) client_ref((cfg), (i), (char[REF_MAX]) {})

/* The checks across clients find their problems in address order; they are reported in client order. */
typedef enum ClientField {
        FIELD_TOKEN,
        FIELD_NAME,
        FIELD_IP,
        FIELD_ROUTES,
        FIELD_SOURCES,
} ClientField;

static const char *const client_field_key[] = {
        [FIELD_TOKEN] = "token",
        [FIELD_NAME] = "name",
        [FIELD_IP] = "ip",
        [FIELD_ROUTES] = "routes",
        [FIELD_SOURCES] = "sources",
};

typedef struct Finding {
        size_t client;
        ClientField field;
        bool whole_client; /* reported at the client itself, not at FIELD */
        ssize_t index;     /* in the field's array, -1: none */
        size_t seq;
        char *message;
} Finding;

typedef struct Findings {
        Finding *items;
        size_t n, allocated;
} Findings;

static void findings_done(Findings *f) {
        for (size_t i = 0; i < f->n; i++)
                free(f->items[i].message);
        free(f->items);
}

static void finding_add(Parser *p, Findings *f, size_t client, ClientField field, bool whole_client,
                        ssize_t index, const char *format, ...) _printf_(7, 8);
static void finding_add(Parser *p, Findings *f, size_t client, ClientField field, bool whole_client,
                        ssize_t index, const char *format, ...) {
        va_list ap;
        char *m;

        if (p->oom)
                return;

        if (f->n == f->allocated) {
                size_t n = MAX(f->allocated * 2, 16u);
                Finding *l = realloc(f->items, n * sizeof(Finding));

                if (!l) {
                        p->oom = true;
                        return;
                }
                f->items = l;
                f->allocated = n;
        }

        va_start(ap, format);
        m = strdup_vprintf(format, ap);
        va_end(ap);
        if (!m) {
                p->oom = true;
                return;
        }

        f->items[f->n] = (Finding) { client, field, whole_client, index, f->n, m };
        f->n++;
}

static int finding_compare(const void *a, const void *b) {
        const Finding *x = a, *y = b;

        if (x->client != y->client)
                return x->client < y->client ? -1 : 1;
        if (x->field != y->field)
                return x->field < y->field ? -1 : 1;
        if (x->index != y->index)
                return x->index < y->index ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

typedef struct NamedClient {
        const char *key;
        size_t client;
} NamedClient;

static int named_client_compare(const void *a, const void *b) {
        const NamedClient *x = a, *y = b;
        int r = strcmp(x->key, y->key);

        if (r != 0)
                return r;
        return x->client < y->client ? -1 : x->client > y->client;
}

typedef enum EntryKind {
        ENTRY_ROUTE,
        ENTRY_IP,
        ENTRY_SOURCE,
} EntryKind;

typedef struct Entry {
        const TapotunPrefix *prefix;
        size_t client;
        EntryKind kind;
        ssize_t index; /* in routes or sources; for ENTRY_IP the path index of "ip" */
} Entry;

/* Address order with a containing network before what it contains (a route before an equal address), so
 * that one sweep finds overlaps. */
static int entry_compare(const void *a, const void *b) {
        const Entry *x = a, *y = b;
        int r;

        if (x->prefix->family != y->prefix->family)
                return x->prefix->family < y->prefix->family ? -1 : 1;
        r = memcmp(x->prefix->addr.bytes, y->prefix->addr.bytes, x->prefix->family == AF_INET ? 4 : 16);
        if (r != 0)
                return r;
        if (x->prefix->prefixlen != y->prefix->prefixlen)
                return x->prefix->prefixlen < y->prefix->prefixlen ? -1 : 1;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->client != y->client)
                return x->client < y->client ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Clients whose KEY equals that of an earlier client, reported against the first one. */
static void find_duplicate_keys(Parser *p, Findings *f, const TapotunIfaceConfig *cfg, const IfaceAux *aux,
                                ClientField field) {
        _cleanup_(freep) NamedClient *l = calloc(cfg->n_clients, sizeof(NamedClient));
        size_t n = 0;

        if (!l) {
                p->oom = true;
                return;
        }

        for (size_t i = 0; i < cfg->n_clients; i++) {
                const char *key = field == FIELD_TOKEN ? cfg->clients[i].token : cfg->clients[i].name;

                if (key && key[0])
                        l[n++] = (NamedClient) { key, i };
        }
        qsort_safe(l, n, sizeof(NamedClient), named_client_compare);

        for (size_t i = 1, first = 0; i < n; i++) {
                size_t c = l[i].client;

                if (!streq(l[i].key, l[first].key)) {
                        first = i;
                        continue;
                }
                if (field == FIELD_TOKEN)
                        finding_add(p, f, c, field, false, -1, _("the same token as %s"),
                                    CLIENT_REF(cfg, l[first].client));
                else if (aux->clients[c].name_given)
                        finding_add(p, f, c, field, false, -1, _("name %s is already used by %s"), QUOTE(l[i].key),
                                    CLIENT_REF(cfg, l[first].client));
                else
                        finding_add(p, f, c, field, true, -1,
                                    _("the default name %s is already used by %s; set \"name\""), QUOTE(l[i].key),
                                    CLIENT_REF(cfg, l[first].client));
        }
}

/* One route R of a client against an entry E of another client that R contains. */
static void find_route_conflict(Parser *p, Findings *f, const TapotunIfaceConfig *cfg, const Entry *r,
                                const Entry *e) {
        if (e->kind == ENTRY_IP)
                finding_add(p, f, r->client, FIELD_ROUTES, false, r->index, _("%s contains %s, the address of %s"),
                            FORMAT_PREFIX(r->prefix), FORMAT_ADDR(e->prefix), CLIENT_REF(cfg, e->client));
        else {
                /* Reported at the later client, naming the earlier one. */
                const Entry *later = r->client > e->client ? r : e, *earlier = later == r ? e : r;

                if (wire_prefix_equal(r->prefix, e->prefix))
                        finding_add(p, f, later->client, FIELD_ROUTES, false, later->index,
                                    _("%s is also routed to %s"), FORMAT_PREFIX(later->prefix),
                                    CLIENT_REF(cfg, earlier->client));
                else
                        finding_add(p, f, later->client, FIELD_ROUTES, false, later->index,
                                    _("%s overlaps %s, routed to %s"), FORMAT_PREFIX(later->prefix),
                                    FORMAT_PREFIX(earlier->prefix), CLIENT_REF(cfg, earlier->client));
        }
}

/* Addresses, routes and sources of all clients, sorted, in one pass: equal addresses, equal sources, and
 * routes that contain another client's route or address. */
static void find_address_conflicts(Parser *p, Findings *f, const TapotunIfaceConfig *cfg, const IfaceAux *aux) {
        _cleanup_(freep) Entry *l = NULL;
        _cleanup_(freep) const Entry **open = NULL; /* routes containing the current entry */
        const Entry *first_ip = NULL, *first_source = NULL;
        size_t n = 0, total = 0, n_open = 0;

        for (size_t i = 0; i < cfg->n_clients; i++)
                total += 2 + cfg->clients[i].n_routes + cfg->clients[i].n_sources;
        l = calloc(total, sizeof(Entry));
        open = calloc(total, sizeof(Entry *));
        if (!l || !open) {
                p->oom = true;
                return;
        }

        for (size_t i = 0; i < cfg->n_clients; i++) {
                const TapotunClientConfig *c = &cfg->clients[i];

                if (c->ip.family != 0)
                        l[n++] = (Entry) { &c->ip, i, ENTRY_IP, aux->clients[i].ip_index[0] };
                if (c->ip6.family != 0)
                        l[n++] = (Entry) { &c->ip6, i, ENTRY_IP, aux->clients[i].ip_index[1] };
                for (size_t k = 0; k < c->n_routes; k++)
                        if (c->routes[k].family != 0)
                                l[n++] = (Entry) { &c->routes[k], i, ENTRY_ROUTE, (ssize_t) k };
                for (size_t k = 0; k < c->n_sources; k++)
                        if (c->sources[k].family != 0)
                                l[n++] = (Entry) { &c->sources[k], i, ENTRY_SOURCE, (ssize_t) k };
        }
        qsort_safe(l, n, sizeof(Entry), entry_compare);

        for (size_t i = 0; i < n; i++) {
                const Entry *e = &l[i], **first;

                /* Equal addresses and equal sources: the first of each (in client order) owns it. */
                if (i == 0 || !wire_prefix_equal(l[i - 1].prefix, e->prefix))
                        first_ip = first_source = NULL;
                first = e->kind == ENTRY_IP ? &first_ip : e->kind == ENTRY_SOURCE ? &first_source : NULL;
                if (first && !*first)
                        *first = e;
                else if (first && (*first)->client != e->client) {
                        if (e->kind == ENTRY_IP)
                                finding_add(p, f, e->client, FIELD_IP, false, e->index,
                                            _("%s is already the address of %s"), FORMAT_ADDR(e->prefix),
                                            CLIENT_REF(cfg, (*first)->client));
                        else
                                finding_add(p, f, e->client, FIELD_SOURCES, false, e->index,
                                            _("%s is already pinned to %s"), FORMAT_ADDR(e->prefix),
                                            CLIENT_REF(cfg, (*first)->client));
                }

                if (e->kind == ENTRY_SOURCE)
                        continue;

                while (n_open > 0 && !wire_prefix_contains(open[n_open - 1]->prefix, e->prefix))
                        n_open--;
                for (size_t j = 0; j < n_open; j++)
                        if (open[j]->client != e->client)
                                find_route_conflict(p, f, cfg, open[j], e);
                if (e->kind == ENTRY_ROUTE)
                        open[n_open++] = e;
        }
}

/* What can only be checked with all clients parsed: uniqueness and who gets which traffic. */
static void check_clients(Parser *p, const TapotunIfaceConfig *cfg, const IfaceAux *aux) {
        _cleanup_(findings_done) Findings f = {};

        for (size_t j = 0; j < cfg->n_clients; j++) {
                const TapotunClientConfig *c = &cfg->clients[j];

                for (size_t k = 0; k < c->n_routes; k++) {
                        const TapotunPrefix *r = &c->routes[k];
                        const TapotunPrefix *nets[] = { &cfg->net, &cfg->net6 };

                        if (r->family == 0)
                                continue;
                        for (size_t n = 0; n < ELEMENTSOF(nets); n++) {
                                TapotunPrefix m = prefix_masked(nets[n], nets[n]->prefixlen);

                                if (nets[n]->family != 0 && wire_prefix_equal(r, &m))
                                        finding_add(p, &f, j, FIELD_ROUTES, false, (ssize_t) k,
                                                    _("%s is the interface's own net"), FORMAT_PREFIX(r));
                        }
                        for (size_t n = 0; n < cfg->n_routes; n++)
                                if (wire_prefix_equal(r, &cfg->routes[n]))
                                        finding_add(p, &f, j, FIELD_ROUTES, false, (ssize_t) k,
                                                    _("%s is also a local network of the server (routes[%zu])"),
                                                    FORMAT_PREFIX(r), n);
                }
        }

        find_duplicate_keys(p, &f, cfg, aux, FIELD_TOKEN);
        find_duplicate_keys(p, &f, cfg, aux, FIELD_NAME);
        find_address_conflicts(p, &f, cfg, aux);

        qsort_safe(f.items, f.n, sizeof(Finding), finding_compare);
        for (size_t i = 0; i < f.n; i++) {
                const Finding *x = &f.items[i];

                report_client(p, x->client, x->whole_client ? NULL : client_field_key[x->field], x->index, "%s",
                              x->message);
        }
}

static void parse_server(Parser *p, const json_t *v, TapotunIfaceConfig *cfg, IfaceAux *aux) {
        bool mtu_given = false, b;
        const char *s;
        size_t saved, i;
        uint64_t u;
        json_t *f, *e;

        cfg->mtu = CONFIG_DEFAULT_MTU;
        cfg->peer_timeout_usec = CONFIG_DEFAULT_PEER_TIMEOUT_USEC;
        cfg->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
        cfg->max_puts_per_client = CONFIG_DEFAULT_MAX_PUTS;
        cfg->queue_bytes = CONFIG_DEFAULT_QUEUE_BYTES;

        if (expect_uint(p, "port", json_object_get(v, "port"), 1, UINT16_MAX, &u) >= 0) {
                cfg->port = (uint16_t) u;
                aux->port_ok = true;
        }

        f = json_object_get(v, "listen");
        if (!f) {
                s = CONFIG_DEFAULT_LISTEN;
                (void) wire_prefix_parse(s, /* network= */ false, &aux->listen);
        } else if (expect_prefix(p, "listen", f, PREFIX_PLAIN, &aux->listen) >= 0)
                s = json_string_value(f);
        else
                s = NULL;
        if (s) {
                cfg->listen = strdup(s);
                if (!cfg->listen)
                        p->oom = true;
        }

        f = json_object_get(v, "net");
        if (!f) {
                report(p, NULL, _("missing required field \"%s\""), "net");
                aux->net_error = true;
        } else if (foreach_string_or_array(p, "net", f, parse_net_one, &(NetState) { cfg, aux }) < 0)
                aux->net_error = true;

        f = json_object_get(v, "mtu");
        if (f && expect_uint(p, "mtu", f, MTU_MIN, MTU_MAX, &u) >= 0) {
                cfg->mtu = (uint32_t) u;
                mtu_given = true;
        }

        parse_prefix_list(p, v, "ips", PREFIX_ADDRESS, &cfg->ips, &cfg->n_ips);
        for (i = 0; i < cfg->n_ips; i++) {
                const TapotunPrefix *a = &cfg->ips[i];

                if (addr_equal(a, &cfg->net) || addr_equal(a, &cfg->net6)) {
                        saved = path_push_key(p, "ips");
                        (void) path_push_index(p, i);
                        report(p, NULL, _("%s is already the server's address in \"net\""), FORMAT_ADDR(a));
                        path_pop(p, saved);
                }
        }
        parse_prefix_list(p, v, "routes", PREFIX_NETWORK, &cfg->routes, &cfg->n_routes);
        parse_prefix_list(p, v, "push_routes", PREFIX_NETWORK, &cfg->push_routes, &cfg->n_push_routes);
        f = json_object_get(v, "push_local_routes");
        if (f && expect_bool(p, "push_local_routes", f, &b) >= 0)
                cfg->push_local_routes = b;
        f = json_object_get(v, "push_client_routes");
        if (f && expect_bool(p, "push_client_routes", f, &b) >= 0)
                cfg->push_client_routes = b;

        f = json_object_get(v, "clients");
        if (!f)
                report(p, NULL, _("missing required field \"%s\" (it may be an empty array)"), "clients");
        else if (!json_is_array(f))
                report(p, "clients", _("expected an array of client objects, got %s"), DESCRIBE(f));
        else if (json_array_size(f) > 0) {
                cfg->clients = calloc(json_array_size(f), sizeof(TapotunClientConfig));
                aux->clients = calloc(json_array_size(f), sizeof(ClientAux));
                if (!cfg->clients || !aux->clients) {
                        p->oom = true;
                        return;
                }
                cfg->n_clients = json_array_size(f);

                saved = path_push_key(p, "clients");
                json_array_foreach(f, i, e) {
                        size_t s2 = path_push_index(p, i);
                        parse_client(p, e, i, cfg, aux);
                        path_pop(p, s2);
                }
                path_pop(p, saved);

                check_clients(p, cfg, aux);
        }

        f = json_object_get(v, "peer_timeout");
        if (f && expect_uint(p, "peer_timeout", f, PEER_TIMEOUT_MIN, PEER_TIMEOUT_MAX, &u) >= 0)
                cfg->peer_timeout_usec = u * USEC_PER_SEC;

        f = json_object_get(v, "max_connections");
        if (f && expect_uint(p, "max_connections", f, 1, MAX_CONNECTIONS_MAX, &u) >= 0)
                cfg->max_connections = (uint32_t) u;

        f = json_object_get(v, "max_puts_per_client");
        if (f && expect_uint(p, "max_puts_per_client", f, 1, MAX_PUTS_MAX, &u) >= 0)
                cfg->max_puts_per_client = (uint32_t) u;

        f = json_object_get(v, "queue_bytes");
        if (f && expect_uint(p, "queue_bytes", f, QUEUE_BYTES_MIN, QUEUE_BYTES_MAX, &u) >= 0)
                cfg->queue_bytes = u;

        /* Linux turns IPv6 off on a link whose MTU is below the IPv6 minimum. */
        if (cfg->net6.family != 0 || prefixes_use_ipv6(cfg->ips, cfg->n_ips) ||
            prefixes_use_ipv6(cfg->routes, cfg->n_routes))
                aux->uses_ipv6 = true;
        if (mtu_given && aux->uses_ipv6 && cfg->mtu < MTU_MIN_IPV6)
                report(p, "mtu", _("must be at least %u because the interface carries IPv6, got %u"),
                       MTU_MIN_IPV6, cfg->mtu);
}

static bool url_port_valid(const char *s, size_t n) {
        unsigned long port = 0;

        if (n == 0 || n > 5 || strspn(s, "0123456789") < n)
                return false;
        for (size_t i = 0; i < n; i++)
                port = port * 10 + (unsigned long) (s[i] - '0');
        return port >= 1 && port <= UINT16_MAX;
}

/* An http:// or https:// URL under KEY (the client's server, the update feed): libcurl checks the rest;
 * this catches what is surely a mistake. */
static void parse_http_url(Parser *p, const char *key, const json_t *f, char **ret) {
        const char *s, *authority, *host, *end, *port = NULL;
        size_t n;

        if (expect_string(p, key, f, &s) < 0)
                return;

        if (strncasecmp(s, "http://", 7) == 0)
                authority = s + 7;
        else if (strncasecmp(s, "https://", 8) == 0)
                authority = s + 8;
        else {
                report(p, key, _("expected an http:// or https:// URL, got %s"), QUOTE(s));
                return;
        }

        for (const unsigned char *c = (const unsigned char *) s; *c; c++)
                if (*c <= ' ' || *c >= 0x7f) {
                        report(p, key, _("URL %s contains spaces, control or non-ASCII characters"),
                               QUOTE(s));
                        return;
                }

        n = strcspn(authority, "/?#");
        end = authority + n;
        host = authority;
        for (const char *c = authority; c < end; c++)
                if (*c == '@') /* user information */
                        host = c + 1;

        if (*host == '[') {
                const char *close = memchr(host, ']', (size_t) (end - host));
                char buf[INET6_ADDRSTRLEN];
                struct in6_addr a6;
                size_t l;

                l = close ? (size_t) (close - host - 1) : 0;
                if (!close || l == 0 || l >= sizeof buf) {
                        report(p, key, _("URL %s has an invalid IPv6 host"), QUOTE(s));
                        return;
                }
                memcpy(buf, host + 1, l);
                buf[l] = '\0';
                if (inet_pton(AF_INET6, buf, &a6) != 1) {
                        report(p, key, _("URL %s has an invalid IPv6 host"), QUOTE(s));
                        return;
                }
                if (close + 1 < end) {
                        if (close[1] != ':') {
                                report(p, key, _("URL %s has an invalid IPv6 host"), QUOTE(s));
                                return;
                        }
                        port = close + 2;
                }
        } else {
                port = memchr(host, ':', (size_t) (end - host));
                if ((port ?: end) == host) {
                        report(p, key, _("URL %s has no host"), QUOTE(s));
                        return;
                }
                if (port)
                        port++;
        }

        if (port && !url_port_valid(port, (size_t) (end - port))) {
                report(p, key, _("URL %s has an invalid port; expected 1 to 65535"), QUOTE(s));
                return;
        }

        *ret = strdup(s);
        if (!*ret)
                p->oom = true;
}

/* `offloads`: the TUN offloads a client may accept and announce, for a peer (or a kernel) that cannot
 * take the rest; the server then segments in software. */
static void parse_offloads(Parser *p, const json_t *f, TapotunIfaceConfig *cfg) {
        static const char *const names[] = { "csum", "tso4", "tso6", "ecn", "uso4", "uso6" };
        uint32_t mask = TAPOTUN_OFFLOADS_SET;
        size_t i, saved;
        json_t *e;

        if (!json_is_array(f)) {
                report(p, "offloads", _("expected an array of strings, got %s"), DESCRIBE(f));
                return;
        }
        saved = path_push_key(p, "offloads");
        json_array_foreach(f, i, e) {
                const char *s = json_is_string(e) ? json_string_value(e) : NULL;
                size_t entry = path_push_index(p, i);
                uint32_t bit = 0;

                for (size_t k = 0; s && k < ELEMENTSOF(names); k++)
                        if (streq(s, names[k]))
                                bit = wire_offload_parse(names[k]);
                if (!s)
                        report(p, NULL, _("expected a string, got %s"), DESCRIBE(e));
                else if (bit == 0)
                        report(p, NULL, _("unknown offload %s; expected csum, tso4, tso6, ecn, uso4 or uso6"),
                               QUOTE(s));
                mask |= bit;
                path_pop(p, entry);
        }
        path_pop(p, saved);
        cfg->offloads_mask = mask;
}

static void parse_client_mode(Parser *p, const json_t *v, TapotunIfaceConfig *cfg) {
        const char *s;
        json_t *f;
        bool b;

        parse_http_url(p, "server", json_object_get(v, "server"), &cfg->server);

        /* The raw token is a secret: messages never show it. */
        f = json_object_get(v, "token");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "token");
        else if (!json_is_string(f))
                report(p, "token", _("expected a string, got %s"), describe(f, false, (char[DESCRIBE_MAX]) {}));
        else {
                s = json_string_value(f);
                if (s[0] == '\0')
                        report(p, "token", _("must not be empty"));
                else if (strspn(s, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                   "abcdefghijklmnopqrstuvwxyz{|}~") != strlen(s))
                        report(p, "token", _("must contain only printable ASCII characters without spaces"));
                else {
                        cfg->token = strdup(s);
                        if (!cfg->token)
                                p->oom = true;
                }
        }

        f = json_object_get(v, "ca");
        if (f && expect_string(p, "ca", f, &s) >= 0) {
                if (s[0] != '/')
                        report(p, "ca", _("must be an absolute path, got %s"), QUOTE(s));
                else {
                        cfg->ca = strdup(s);
                        if (!cfg->ca)
                                p->oom = true;
                }
        }

        f = json_object_get(v, "insecure");
        if (f && expect_bool(p, "insecure", f, &b) >= 0)
                cfg->insecure = b;

        cfg->accept_routes = true;
        f = json_object_get(v, "accept_routes");
        if (f && expect_bool(p, "accept_routes", f, &b) >= 0)
                cfg->accept_routes = b;

        f = json_object_get(v, "http");
        if (f && expect_string(p, "http", f, &s) >= 0) {
                if (streq(s, "1.1"))
                        cfg->http_version = TAPOTUN_HTTP_1_1;
                else if (!streq(s, "2"))
                        report(p, "http", _("expected \"1.1\" or \"2\", got %s"), QUOTE(s));
                /* HTTP/2 is chosen in the TLS handshake (ALPN); the tapotun server itself speaks HTTP/1.1
                 * only, so cleartext HTTP/2 would reach nothing that understands it. */
                else if (cfg->server && strncasecmp(cfg->server, "https://", 8) != 0)
                        report(p, "http", _("\"2\" needs an https:// server URL (HTTP/2 is negotiated in "
                                            "the TLS handshake); use \"1.1\" for http://"));
                else
                        cfg->http_version = TAPOTUN_HTTP_2;
        }

        f = json_object_get(v, "offloads");
        if (f)
                parse_offloads(p, f, cfg);
}

static void parse_client_timers(Parser *p, const json_t *v, TapotunIfaceConfig *cfg) {
        uint64_t u, min = 0, max = 0;
        json_t *f;

        cfg->reconnect_min_usec = CONFIG_RECONNECT_MIN_USEC;
        cfg->reconnect_max_usec = CONFIG_RECONNECT_MAX_USEC;
        cfg->stall_timeout_usec = CONFIG_STALL_TIMEOUT_USEC;

        f = json_object_get(v, "reconnect_min");
        if (f && expect_uint(p, "reconnect_min", f, 1, RECONNECT_MAX, &min) >= 0)
                cfg->reconnect_min_usec = min * USEC_PER_SEC;
        f = json_object_get(v, "reconnect_max");
        if (f && expect_uint(p, "reconnect_max", f, 1, RECONNECT_MAX, &max) >= 0)
                cfg->reconnect_max_usec = max * USEC_PER_SEC;
        if (cfg->reconnect_max_usec < cfg->reconnect_min_usec && (min > 0 || max > 0))
                report(p, max > 0 ? "reconnect_max" : "reconnect_min",
                       _("reconnect_max (%llu s) must not be below reconnect_min (%llu s)"),
                       (unsigned long long) (cfg->reconnect_max_usec / USEC_PER_SEC),
                       (unsigned long long) (cfg->reconnect_min_usec / USEC_PER_SEC));

        f = json_object_get(v, "stall_timeout");
        if (f && expect_uint(p, "stall_timeout", f, STALL_TIMEOUT_MIN, STALL_TIMEOUT_MAX, &u) >= 0)
                cfg->stall_timeout_usec = u * USEC_PER_SEC;
}

/* "127.0.0.1:9586", "[::1]:9586" */
static const char *format_endpoint(const TapotunPrefix *a, uint16_t port, char buf[static ADDR_MAX]) {
        (void) snprintf(buf, ADDR_MAX, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", FORMAT_ADDR(a), port);
        return buf;
}
#define FORMAT_ENDPOINT(a, port) format_endpoint((a), (port), (char[ADDR_MAX]) {})

/* metrics.listen: "ADDRESS:PORT", "[IPV6]:PORT", or a port alone (number or string) on 127.0.0.1. */
static int parse_metrics_listen(Parser *p, const json_t *v, TapotunPrefix *ret_addr, uint16_t *ret_port) {
        char addr[INET6_ADDRSTRLEN];
        const char *s, *a, *port;
        TapotunPrefix pfx;
        size_t n;
        uint64_t u;

        if (json_is_integer(v)) {
                if (expect_uint(p, "listen", v, 1, UINT16_MAX, &u) < 0)
                        return -EINVAL;
                (void) wire_prefix_parse(CONFIG_DEFAULT_LISTEN, /* network= */ false, ret_addr);
                *ret_port = (uint16_t) u;
                return 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0) {
                report(p, "listen",
                       _("expected \"ADDRESS:PORT\", \"[IPV6]:PORT\" or a port number, got %s"), DESCRIBE(v));
                return -EINVAL;
        }

        s = json_string_value(v);
        port = strrchr(s, ':');
        if (!port) {
                a = CONFIG_DEFAULT_LISTEN;
                n = strlen(a);
                port = s;
        } else if (s[0] == '[') {
                if (port[-1] != ']') {
                        report(p, "listen",
                               _("expected \"ADDRESS:PORT\", \"[IPV6]:PORT\" or a port number, got %s"),
                               QUOTE(s));
                        return -EINVAL;
                }
                a = s + 1;
                n = (size_t) (port - 1 - a);
                port++;
        } else {
                a = s;
                n = (size_t) (port - s);
                port++;
                if (memchr(a, ':', n)) {
                        report(p, "listen",
                               _("%s has an IPv6 address without brackets; write \"[ADDRESS]:PORT\""), QUOTE(s));
                        return -EINVAL;
                }
        }

        if (!url_port_valid(port, strlen(port))) {
                report(p, "listen", _("%s has an invalid port; expected 1 to 65535"), QUOTE(s));
                return -EINVAL;
        }
        if (n == 0 || n >= sizeof addr || memchr(a, '/', n)) {
                report(p, "listen", _("%s is not a valid IPv4 or IPv6 address"), QUOTE(s));
                return -EINVAL;
        }
        memcpy(addr, a, n);
        addr[n] = '\0';
        if (wire_prefix_parse(addr, /* network= */ false, &pfx) < 0) {
                report(p, "listen", _("%s is not a valid IPv4 or IPv6 address"), QUOTE(addr));
                return -EINVAL;
        }

        *ret_addr = pfx;
        *ret_port = (uint16_t) strtoul(port, NULL, 10);
        return 0;
}

static void parse_metrics(Parser *p, const json_t *v, TapotunIfaceConfig *cfg, IfaceAux *aux) {
        size_t saved;
        uint64_t u;
        json_t *f;

        if (!json_is_object(v)) {
                report(p, "metrics", _("expected an object with \"listen\", got %s"), DESCRIBE(v));
                return;
        }

        saved = path_push_key(p, "metrics");
        check_fields(p, v, metrics_fields, ELEMENTSOF(metrics_fields), MODE_ANY);

        f = json_object_get(v, "listen");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "listen");
        else if (parse_metrics_listen(p, f, &aux->metrics, &cfg->metrics_port) >= 0) {
                cfg->metrics_listen = strdup(FORMAT_ADDR(&aux->metrics));
                if (!cfg->metrics_listen)
                        p->oom = true;
        }

        f = json_object_get(v, "unhealthy_after");
        if (f && expect_uint(p, "unhealthy_after", f, 1, UNHEALTHY_AFTER_MAX, &u) >= 0)
                cfg->unhealthy_after_usec = u * USEC_PER_SEC;

        path_pop(p, saved);
}

static void parse_iface(Parser *p, const json_t *v, TapotunIfaceConfig *cfg, IfaceAux *aux) {
        const json_t *port, *server, *f;
        const char *s;
        unsigned modes;
        uint64_t u;

        cfg->mark_priority = CONFIG_DEFAULT_MARK_PRIORITY;
        cfg->keepalive_usec = CONFIG_KEEPALIVE_USEC;
        cfg->unhealthy_after_usec = CONFIG_DEFAULT_UNHEALTHY_AFTER_USEC;

        if (!json_is_object(v)) {
                report(p, NULL, _("expected an interface object, got %s"), DESCRIBE(v));
                return;
        }

        port = json_object_get(v, "port");
        server = json_object_get(v, "server");
        if (port && server) {
                report(p, NULL, _("has both \"port\" (a server) and \"server\" (a client); "
                                  "an interface is one or the other"));
                modes = MODE_ANY;
        } else if (!port && !server) {
                report(p, NULL, _("has neither \"port\" (a server) nor \"server\" (a client)"));
                modes = MODE_ANY;
        } else {
                cfg->mode = port ? TAPOTUN_MODE_SERVER : TAPOTUN_MODE_CLIENT;
                modes = 1u << cfg->mode;
        }

        check_fields(p, v, iface_fields, ELEMENTSOF(iface_fields), modes);

        f = json_object_get(v, "name");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "name");
        else if (expect_name(p, "name", f, IFACE_NAME_MAX, &s) >= 0) {
                strcpy(cfg->name, s);
                aux->name_ok = true;
        }

        f = json_object_get(v, "mark");
        if (f)
                parse_mark(p, f, cfg);

        f = json_object_get(v, "keepalive");
        if (f && expect_uint(p, "keepalive", f, 1, KEEPALIVE_MAX, &u) >= 0)
                cfg->keepalive_usec = u * USEC_PER_SEC;

        if (modes == MODE_SERVER)
                parse_server(p, v, cfg, aux);
        else if (modes == MODE_CLIENT) {
                parse_client_timers(p, v, cfg);
                parse_client_mode(p, v, cfg);
        }

        f = json_object_get(v, "metrics");
        if (f)
                parse_metrics(p, f, cfg, aux);
}

static bool listen_conflicts(const TapotunPrefix *a, const TapotunPrefix *b) {
        static const uint8_t any[16] = {};

        if (a->family == 0 || a->family != b->family)
                return false;
        return addr_equal(a, b) || memcmp(a->addr.bytes, any, a->family == AF_INET ? 4 : 16) == 0 ||
               memcmp(b->addr.bytes, any, b->family == AF_INET ? 4 : 16) == 0;
}

/* The metrics listener of interface J shares no port with a tunnel listener, nor with the metrics listener
 * of an earlier interface. */
static void check_metrics_conflicts(Parser *p, const Config *c, const IfaceAux *aux, size_t j) {
        static const uint8_t any[16] = {};
        const TapotunIfaceConfig *b = &c->ifaces[j];
        const TapotunPrefix *m = &aux[j].metrics;

        if (m->family == 0)
                return;
        for (size_t i = 0; i < c->n_ifaces; i++) {
                const TapotunIfaceConfig *a = &c->ifaces[i];
                const TapotunPrefix *t = &aux[i].listen;
                /* A tunnel listening on "::" takes the IPv4 port too (its socket is dual-stack). */
                bool dual = t->family == AF_INET6 && m->family == AF_INET && memcmp(t->addr.bytes, any, 16) == 0;

                if (a->mode == TAPOTUN_MODE_SERVER && aux[i].port_ok && a->port == b->metrics_port &&
                    (dual || listen_conflicts(t, m))) {
                        if (i == j)
                                report(p, "metrics.listen",
                                       _("%s conflicts with the tunnel listener of this interface on %s; the "
                                         "metrics need a port of their own"),
                                       FORMAT_ENDPOINT(m, b->metrics_port),
                                       FORMAT_ENDPOINT(&aux[i].listen, a->port));
                        else
                                report(p, "metrics.listen",
                                       _("%s conflicts with the tunnel listener of [%zu] (%s) on %s"),
                                       FORMAT_ENDPOINT(m, b->metrics_port), i, QUOTE(a->name),
                                       FORMAT_ENDPOINT(&aux[i].listen, a->port));
                }
                if (i < j && aux[i].metrics.family != 0 && a->metrics_port == b->metrics_port &&
                    listen_conflicts(&aux[i].metrics, m))
                        report(p, "metrics.listen",
                               _("%s conflicts with the metrics listener of [%zu] (%s) on %s"),
                               FORMAT_ENDPOINT(m, b->metrics_port), i, QUOTE(a->name),
                               FORMAT_ENDPOINT(&aux[i].metrics, a->metrics_port));
        }
}

static void check_ifaces(Parser *p, const Config *c, const IfaceAux *aux) {
        for (size_t j = 0; j < c->n_ifaces; j++) {
                const TapotunIfaceConfig *b = &c->ifaces[j];
                size_t saved = path_push_index(p, j);

                check_metrics_conflicts(p, c, aux, j);
                for (size_t i = 0; i < j; i++) {
                        const TapotunIfaceConfig *a = &c->ifaces[i];

                        if (aux[j].name_ok && aux[i].name_ok && streq(a->name, b->name))
                                report(p, "name", _("interface name %s is already used by [%zu]"),
                                       QUOTE(b->name), i);

                        if (a->mode == TAPOTUN_MODE_SERVER && b->mode == TAPOTUN_MODE_SERVER &&
                            aux[i].port_ok && aux[j].port_ok && a->port == b->port &&
                            listen_conflicts(&aux[i].listen, &aux[j].listen))
                                report(p, "port", _("port %u on %s conflicts with [%zu] (%s), listening on %s"),
                                       b->port, FORMAT_ADDR(&aux[j].listen), i, QUOTE(a->name),
                                       FORMAT_ADDR(&aux[i].listen));
                }
                path_pop(p, saved);
        }
}

/* The interface array: the root itself, or "interfaces" of a root object (the path then starts there). */
static void parse_ifaces(Parser *p, const json_t *ifaces, Config *c, IfaceAux *aux) {
        size_t i;
        json_t *v;

        json_array_foreach(ifaces, i, v) {
                size_t saved = path_push_index(p, i);
                parse_iface(p, v, &c->ifaces[i], &aux[i]);
                path_pop(p, saved);
        }

        check_ifaces(p, c, aux);
}

/* ---------------------------------------------------------------------------------------------- */
/* The root object and "update" */

#define UPDATE_INTERVAL_MIN 60u
#define UPDATE_INTERVAL_MAX (30u * 86400u)
#define UPDATE_TIMEOUT_MAX 3600u

static const Field root_fields[] = {
        { "interfaces", MODE_ANY },
        { "update", MODE_ANY },
};

static const Field update_fields[] = {
        { "url", MODE_ANY },
        { "interval", MODE_ANY },
        { "timeout", MODE_ANY },
        { "install", MODE_ANY },
        { "path", MODE_ANY },
};

/* UPDATE_INTERVAL_MIN, or the smaller minimum the tests set in the environment. */
static uint64_t update_interval_min(void) {
        const char *e = secure_getenv(CONFIG_UPDATE_MIN_INTERVAL_ENV);
        unsigned long long v;
        char *end;

        if (!e || !*e)
                return UPDATE_INTERVAL_MIN;
        errno = 0;
        v = strtoull(e, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > UPDATE_INTERVAL_MIN)
                return UPDATE_INTERVAL_MIN;
        return v;
}

static void parse_update(Parser *p, const json_t *v, UpdateConfig *u) {
        const char *s;
        size_t saved;
        uint64_t n;
        json_t *f;
        bool b;

        if (!json_is_object(v)) {
                report(p, "update", _("expected an object with \"url\", got %s"), DESCRIBE(v));
                return;
        }

        saved = path_push_key(p, "update");
        check_fields(p, v, update_fields, ELEMENTSOF(update_fields), MODE_ANY);

        f = json_object_get(v, "url");
        if (!f)
                report(p, NULL, _("missing required field \"%s\""), "url");
        else
                parse_http_url(p, "url", f, &u->url);

        u->interval_usec = CONFIG_DEFAULT_UPDATE_INTERVAL_USEC;
        f = json_object_get(v, "interval");
        if (f && expect_uint(p, "interval", f, update_interval_min(), UPDATE_INTERVAL_MAX, &n) >= 0)
                u->interval_usec = n * USEC_PER_SEC;

        u->timeout_usec = CONFIG_DEFAULT_UPDATE_TIMEOUT_USEC;
        f = json_object_get(v, "timeout");
        if (f && expect_uint(p, "timeout", f, 1, UPDATE_TIMEOUT_MAX, &n) >= 0)
                u->timeout_usec = n * USEC_PER_SEC;

        f = json_object_get(v, "install");
        if (f && expect_bool(p, "install", f, &b) >= 0)
                u->install = b;

        f = json_object_get(v, "path");
        if (f && expect_string(p, "path", f, &s) >= 0) {
                if (s[0] != '/')
                        report(p, "path", _("must be an absolute path, got %s"), QUOTE(s));
                else if (s[strlen(s) - 1] == '/')
                        report(p, "path", _("must name a file, not a directory, got %s"), QUOTE(s));
                else {
                        u->path = strdup(s);
                        if (!u->path)
                                p->oom = true;
                }
        }

        path_pop(p, saved);
}

void update_config_done(UpdateConfig *c) {
        c->url = mfree(c->url);
        c->path = mfree(c->path);
}

int update_config_copy(UpdateConfig *dest, const UpdateConfig *src) {
        UpdateConfig c = *src;

        c.url = src->url ? strdup(src->url) : NULL;
        c.path = src->path ? strdup(src->path) : NULL;
        if ((src->url && !c.url) || (src->path && !c.path)) {
                update_config_done(&c);
                return -ENOMEM;
        }
        *dest = c;
        return 0;
}

bool update_config_equal(const UpdateConfig *a, const UpdateConfig *b) {
        return streq_ptr(a->url, b->url) && a->interval_usec == b->interval_usec &&
               a->timeout_usec == b->timeout_usec && a->install == b->install && streq_ptr(a->path, b->path);
}

/* ---------------------------------------------------------------------------------------------- */

static void iface_config_done(TapotunIfaceConfig *cfg) {
        free(cfg->listen);
        free(cfg->ips);
        free(cfg->routes);
        free(cfg->push_routes);
        for (size_t i = 0; i < cfg->n_clients; i++) {
                free(cfg->clients[i].name);
                free(cfg->clients[i].routes);
                free(cfg->clients[i].sources);
        }
        free(cfg->clients);
        free(cfg->server);
        if (cfg->token)
                explicit_bzero(cfg->token, strlen(cfg->token));
        free(cfg->token);
        free(cfg->ca);
        free(cfg->metrics_listen);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_ifaces; i++)
                iface_config_done(&c->ifaces[i]);
        free(c->ifaces);
        update_config_done(&c->update);
        return mfree(c);
}

const TapotunIfaceConfig *config_find(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_ifaces; i++)
                if (streq(c->ifaces[i].name, name))
                        return &c->ifaces[i];
        return NULL;
}

static void iface_aux_free(IfaceAux *aux, size_t n) {
        if (!aux)
                return;
        for (size_t i = 0; i < n; i++)
                free(aux[i].clients);
        free(aux);
}

static bool json_text_blank(const char *text, size_t size) {
        for (size_t i = 0; i < size; i++)
                if (!strchr(" \t\r\n", text[i]) || text[i] == '\0')
                        return false;
        return true;
}

static int parser_finish(Parser *p, char ***ret_errors) {
        if (p->oom)
                return -ENOMEM;

        if (p->n_suppressed > 0) {
                parser_add(p, strdup_printf(_("%s: %zu more errors not shown"), p->label, p->n_suppressed));
                if (p->oom)
                        return -ENOMEM;
        }

        if (ret_errors)
                *ret_errors = TAKE_PTR(p->errors);
        return -EINVAL;
}

int config_parse(const char *text, size_t size, const char *label, Config **ret, char ***ret_errors) {
        _cleanup_(parser_done) Parser p = { .label = label ?: "config" };
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        const json_t *ifaces = NULL, *update = NULL;
        const char *ifaces_key = NULL;
        IfaceAux *aux = NULL;
        json_error_t e;
        size_t n;

        if (!text && size > 0)
                return -EINVAL;

        if (json_text_blank(text, size)) {
                report(&p, NULL, _("the document is empty; expected an array of interface objects"));
                return parser_finish(&p, ret_errors);
        }

        root = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                if (json_error_code(&e) == json_error_out_of_memory)
                        return -ENOMEM;
                parser_add(&p, strdup_printf("%s:%i:%i: %s", p.label, e.line, e.column, e.text));
                return parser_finish(&p, ret_errors);
        }

        if (json_is_array(root))
                ifaces = root;
        else if (json_is_object(root)) {
                /* The object form: the interfaces, and the settings of the daemon as a whole. */
                check_fields(&p, root, root_fields, ELEMENTSOF(root_fields), MODE_ANY);
                ifaces_key = "interfaces";
                ifaces = json_object_get(root, "interfaces");
                update = json_object_get(root, "update");
                if (!ifaces)
                        report(&p, NULL, _("missing required field \"%s\""), "interfaces");
                else if (!json_is_array(ifaces)) {
                        report(&p, "interfaces", _("expected an array of interface objects, got %s"),
                               DESCRIBE(ifaces));
                        ifaces = NULL;
                }
        } else {
                report(&p, NULL, _("expected an array of interface objects or an object with \"interfaces\", "
                                   "got %s"),
                       DESCRIBE(root));
                return parser_finish(&p, ret_errors);
        }
        if (ifaces && json_array_size(ifaces) == 0) {
                report(&p, ifaces_key, _("no interfaces configured; expected at least one interface object"));
                ifaces = NULL;
        }
        n = ifaces ? json_array_size(ifaces) : 0;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        c->ifaces = calloc(MAX(n, 1u), sizeof(TapotunIfaceConfig));
        aux = calloc(MAX(n, 1u), sizeof(IfaceAux));
        if (!c->ifaces || !aux) {
                free(aux);
                return -ENOMEM;
        }
        c->n_ifaces = n;

        if (ifaces) {
                size_t saved = ifaces_key ? path_push_key(&p, ifaces_key) : 0;

                parse_ifaces(&p, ifaces, c, aux);
                path_pop(&p, saved);
        }
        iface_aux_free(aux, n);

        if (update)
                parse_update(&p, update, &c->update);

        if (p.oom || p.n_errors > 0 || p.n_suppressed > 0)
                return parser_finish(&p, ret_errors);

        if (ret_errors)
                *ret_errors = NULL;
        if (ret)
                *ret = TAKE_PTR(c);
        return 0;
}

static int load_error(const char *path, int error, char ***ret_errors) {
        char **l;

        if (!ret_errors)
                return error;

        l = calloc(2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (error == -EFBIG)
                l[0] = strdup_printf(_("%s: the file is larger than %u MiB"), path,
                                     CONFIG_FILE_SIZE_MAX / 1024u / 1024u);
        else
                l[0] = strdup_printf(_("%s: cannot read: %s"), path, strerror(-error));
        if (!l[0]) {
                free(l);
                return -ENOMEM;
        }

        *ret_errors = l;
        return error;
}

int config_load(const char *path, Config **ret, char ***ret_errors) {
        _cleanup_(closep) int fd = -EBADF;
        _cleanup_(freep) char *buf = NULL;
        size_t size = 0, allocated = 0;
        struct stat st;

        if (!path)
                return -EINVAL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return load_error(path, -errno, ret_errors);
        if (fstat(fd, &st) < 0)
                return load_error(path, -errno, ret_errors);
        if (S_ISDIR(st.st_mode))
                return load_error(path, -EISDIR, ret_errors);

        for (;;) {
                ssize_t n;

                if (size == allocated) {
                        char *b;

                        if (allocated > CONFIG_FILE_SIZE_MAX)
                                return load_error(path, -EFBIG, ret_errors);
                        allocated = MIN(MAX(allocated * 2, (size_t) 64u * 1024u), CONFIG_FILE_SIZE_MAX + 1u);
                        b = realloc(buf, allocated);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }

                n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return load_error(path, -errno, ret_errors);
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        if (size > CONFIG_FILE_SIZE_MAX)
                return load_error(path, -EFBIG, ret_errors);

        return config_parse(buf ?: "", size, path, ret, ret_errors);
}
