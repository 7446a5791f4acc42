/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libintl.h>
#include <locale.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "conf.h"
#include "ctl-print.h"
#include "macro.h"

/* A token read from stdin longer than this is surely not a token. */
#define TOKEN_STDIN_MAX (64u * 1024u)

typedef struct Verb {
        const char *name;
        unsigned min_args; /* arguments after the verb */
        unsigned max_args;
        int (*handler)(int argc, char *argv[]); /* argv[0] is the verb; 0 or a negative errno */
        const char *args;  /* argument synopsis for --help, translatable */
        const char *help;  /* one line for --help, translatable */
        bool json;         /* takes --json */
} Verb;

static const char *program_name = "tapotunctl";
static bool arg_json = false;
static const char *arg_bus_address = NULL; /* NULL: the system bus */

static void print_summary(const TapotunIfaceConfig *cfg) {
        if (cfg->mode == TAPOTUN_MODE_SERVER) {
                char clients[64], where[INET6_ADDRSTRLEN + 16];

                (void) snprintf(clients, sizeof clients,
                                ngettext("%zu client", "%zu clients", (unsigned long) cfg->n_clients),
                                cfg->n_clients);
                (void) snprintf(where, sizeof where, strchr(cfg->listen, ':') ? "[%s]:%u" : "%s:%u",
                                cfg->listen, cfg->port);
                printf(_("%s: server, %s, listening on %s\n"), cfg->name, clients, where);
        } else
                printf(_("%s: client, server %s\n"), cfg->name, cfg->server);
}

static int verb_validate(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = config_load(argv[1], &c, &errors);
        if (r < 0) {
                if (!errors)
                        fprintf(stderr, _("Failed to load %s: %s\n"), argv[1], strerror(-r));
                for (char **e = errors; e && *e; e++)
                        fprintf(stderr, "%s\n", *e);
                return r;
        }

        for (size_t i = 0; i < c->n_ifaces; i++)
                print_summary(&c->ifaces[i]);
        return 0;
}

/* Reads all of stdin into BUF (SIZE bytes, NUL-terminated); -EFBIG when it does not fit. */
static int read_stdin(char *buf, size_t size, size_t *ret_len) {
        size_t n = 0;

        for (;;) {
                size_t k = fread(buf + n, 1, size - 1 - n, stdin);

                n += k;
                if (k == 0 || n == size - 1)
                        break;
        }
        if (ferror(stdin))
                return -EIO;
        if (n == size - 1 && fgetc(stdin) != EOF)
                return -EFBIG;

        buf[n] = '\0';
        *ret_len = n;
        return 0;
}

static int verb_hash_token(int argc, char *argv[]) {
        _cleanup_(freep) char *buf = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        const char *token = argv[1];
        unsigned md_len = 0;
        size_t n;
        int r;

        if (streq(token, "-")) {
                buf = malloc(TOKEN_STDIN_MAX + 1);
                if (!buf) {
                        fprintf(stderr, _("Out of memory.\n"));
                        return -ENOMEM;
                }
                r = read_stdin(buf, TOKEN_STDIN_MAX + 1, &n);
                if (r == -EFBIG) {
                        fprintf(stderr, _("The token on standard input is longer than %u bytes.\n"),
                                TOKEN_STDIN_MAX);
                        return r;
                }
                if (r < 0) {
                        fprintf(stderr, _("Failed to read the token from standard input: %s\n"), strerror(-r));
                        return r;
                }
                /* What "echo" or a here-string appends is not part of the token. */
                if (n > 0 && buf[n - 1] == '\n')
                        buf[--n] = '\0';
                if (n > 0 && buf[n - 1] == '\r')
                        buf[--n] = '\0';
                token = buf;
        } else
                n = strlen(token);

        /* The same rule as the client's "token": anything else could not be sent in x-api-key. */
        if (n == 0) {
                fprintf(stderr, _("The token must not be empty.\n"));
                r = -EINVAL;
                goto finish;
        }
        for (size_t i = 0; i < n; i++)
                if (token[i] <= ' ' || token[i] >= 0x7f) {
                        fprintf(stderr, _("The token must contain only printable ASCII characters without "
                                          "spaces.\n"));
                        r = -EINVAL;
                        goto finish;
                }

        if (EVP_Digest(token, n, md, &md_len, EVP_sha1(), NULL) != 1 || md_len != 20) {
                fprintf(stderr, _("Failed to compute SHA-1.\n"));
                r = -EIO;
                goto finish;
        }

        for (unsigned i = 0; i < md_len; i++)
                printf("%02x", md[i]);
        printf("\n");
        r = 0;

finish:
        if (buf)
                explicit_bzero(buf, TOKEN_STDIN_MAX + 1);
        return r;
}

/* ---------------------------------------------------------------------------------------------- */
/* The daemons on the bus. */

static int bus_open(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!arg_bus_address)
                r = sd_bus_open_system(&bus);
        else {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, arg_bus_address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, true);
                if (r >= 0)
                        r = sd_bus_start(bus);
        }
        if (r < 0) {
                if (arg_bus_address)
                        fprintf(stderr, _("Failed to connect to the bus at %s: %s\n"), arg_bus_address,
                                strerror(-r));
                else
                        fprintf(stderr, _("Failed to connect to the system bus: %s\n"), strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(bus);
        return 0;
}

/* INSTANCE, or a bus name org.tapotun1.INSTANCE, as the instance name. */
static int parse_instance(const char *arg, const char **ret) {
        const char *s = arg;

        if (strncmp(s, TAPOTUN_BUS_NAME_PREFIX, strlen(TAPOTUN_BUS_NAME_PREFIX)) == 0)
                s += strlen(TAPOTUN_BUS_NAME_PREFIX);
        if (!tapotun_bus_instance_valid(s)) {
                fprintf(stderr, _("Invalid instance name \"%s\"; \"%s list\" shows the running ones.\n"),
                        arg, program_name);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

#define CALL_ERROR_MAX 512

/* Why a call to INSTANCE failed: that no daemon has that name, or the bus error's own text. */
static const char *call_error(const char *instance, const sd_bus_error *error, int r,
                              char buf[static CALL_ERROR_MAX]) {
        if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                (void) snprintf(buf, CALL_ERROR_MAX,
                                _("no tapotun daemon \"%s\" is running (nobody owns %s%s on the bus)"),
                                instance, TAPOTUN_BUS_NAME_PREFIX, instance);
                return buf;
        }
        return error->message ?: strerror(-r);
}

/* Calls METHOD of the Manager of INSTANCE; TYPES and the rest are its arguments. */
static int call_manager(sd_bus *bus, const char *instance, const char *method, sd_bus_error *error,
                        sd_bus_message **ret, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char name[sizeof(TAPOTUN_BUS_NAME_PREFIX) + TAPOTUN_BUS_INSTANCE_MAX];
        va_list ap;
        int r;

        (void) snprintf(name, sizeof name, TAPOTUN_BUS_NAME_PREFIX "%s", instance);
        r = sd_bus_message_new_method_call(bus, &m, name, TAPOTUN_BUS_PATH, TAPOTUN_BUS_MANAGER_INTERFACE,
                                           method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = types ? sd_bus_message_appendv(m, types, ap) : 0;
        va_end(ap);
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, ret);
}

/* Describe() of INSTANCE, parsed. With GONE_OK, a daemon that is not there (any more) is -ENXIO, quietly. */
static int describe(sd_bus *bus, const char *instance, bool gone_ok, json_t **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char buf[CALL_ERROR_MAX];
        json_error_t jerr;
        const char *text;
        json_t *j;
        int r;

        r = call_manager(bus, instance, "Describe", &error, &reply, NULL);
        if (r < 0 && gone_ok &&
            sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return -ENXIO;
        if (r < 0) {
                fprintf(stderr, _("Failed to query %s: %s\n"), instance,
                        call_error(instance, &error, r, buf));
                return r;
        }
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0) {
                fprintf(stderr, _("Failed to query %s: %s\n"), instance, strerror(-r));
                return r;
        }
        j = json_loads(text, 0, &jerr);
        if (!json_is_object(j)) {
                json_decref(j);
                fprintf(stderr, _("%s sent a description that is not a JSON object: %s\n"), instance,
                        jerr.text);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

static int strv_compare(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The instance names of every tapotun daemon on the bus, sorted. */
static int list_instances(sd_bus *bus, char ***ret) {
        _cleanup_(strv_freep) char **names = NULL, **l = NULL;
        size_t n = 0, p = strlen(TAPOTUN_BUS_NAME_PREFIX);
        int r;

        r = sd_bus_list_names(bus, &names, NULL);
        if (r < 0) {
                fprintf(stderr, _("Failed to list the names on the bus: %s\n"), strerror(-r));
                return r;
        }
        l = calloc(strv_length(names) + 1, sizeof(char *));
        if (!l) {
                fprintf(stderr, _("Out of memory.\n"));
                return -ENOMEM;
        }
        for (char **s = names; *s; s++)
                if (strncmp(*s, TAPOTUN_BUS_NAME_PREFIX, p) == 0 && tapotun_bus_instance_valid(*s + p)) {
                        l[n] = strdup(*s + p);
                        if (!l[n]) {
                                fprintf(stderr, _("Out of memory.\n"));
                                return -ENOMEM;
                        }
                        n++;
                }
        qsort_safe(l, n, sizeof(char *), strv_compare);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Describe() of the instance ARG, or of every instance when ARG is NULL, as a JSON array. */
static int describe_instances(sd_bus *bus, const char *arg, json_t **ret) {
        _cleanup_(strv_freep) char **all = NULL;
        json_auto_t *a = json_array();
        const char *one[2] = {};
        const char *const *names;
        int r;

        if (!a) {
                fprintf(stderr, _("Out of memory.\n"));
                return -ENOMEM;
        }
        if (arg) {
                r = parse_instance(arg, &one[0]);
                if (r < 0)
                        return r;
                names = one;
        } else {
                r = list_instances(bus, &all);
                if (r < 0)
                        return r;
                names = (const char *const *) all;
        }

        for (const char *const *n = names; *n; n++) {
                json_t *d;

                /* A daemon that stopped since the listing is simply not there. */
                r = describe(bus, *n, !arg, &d);
                if (r == -ENXIO)
                        continue;
                if (r < 0)
                        return r;
                if (json_array_append_new(a, d) < 0) {
                        fprintf(stderr, _("Out of memory.\n"));
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static void print_none(void) {
        if (arg_bus_address)
                printf(_("No tapotun daemon is on the bus at %s.\n"), arg_bus_address);
        else
                printf(_("No tapotun daemon is on the system bus.\n"));
}

static int verb_list(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        json_auto_t *all = NULL;
        int r;

        r = bus_open(&bus);
        if (r < 0)
                return r;
        r = describe_instances(bus, NULL, &all);
        if (r < 0)
                return r;
        if (arg_json)
                print_json(all);
        else if (json_array_size(all) == 0)
                print_none();
        else
                print_instances(all);
        return 0;
}

static int verb_status(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        json_auto_t *all = NULL;
        json_t *d;
        size_t i;
        int r;

        r = bus_open(&bus);
        if (r < 0)
                return r;
        r = describe_instances(bus, argc > 1 ? argv[1] : NULL, &all);
        if (r < 0)
                return r;
        if (arg_json)
                /* One object for the instance asked for, an array for "all of them". */
                print_json(argc > 1 ? json_array_get(all, 0) : all);
        else if (json_array_size(all) == 0)
                print_none();
        else
                json_array_foreach(all, i, d) {
                        if (i > 0)
                                putchar('\n');
                        print_status(d);
                }
        return 0;
}

/* Every peer of the described instances, each with "instance" added, as one array. */
static int collect_peers(json_t *instances, json_t **ret) {
        json_auto_t *peers = json_array();
        json_t *d, *t, *p;
        size_t i, k, l;

        if (!peers)
                return -ENOMEM;
        json_array_foreach(instances, i, d)
                json_array_foreach(json_object_get(d, "tunnels"), k, t)
                        json_array_foreach(json_object_get(t, "peers"), l, p)
                                if (json_object_set(p, "instance", json_object_get(d, "instance")) < 0 ||
                                    json_array_append(peers, p) < 0)
                                        return -ENOMEM;
        *ret = TAKE_PTR(peers);
        return 0;
}

static int verb_peers(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        json_auto_t *all = NULL, *peers = NULL;
        int r;

        r = bus_open(&bus);
        if (r < 0)
                return r;
        r = describe_instances(bus, argc > 1 ? argv[1] : NULL, &all);
        if (r < 0)
                return r;
        r = collect_peers(all, &peers);
        if (r < 0) {
                fprintf(stderr, _("Out of memory.\n"));
                return r;
        }
        if (arg_json)
                print_json(peers);
        else if (json_array_size(all) == 0)
                print_none();
        else
                print_peers(peers, argc <= 1);
        return 0;
}

/* The peer SPEC ("TUNNEL/PEER", or "PEER" when one tunnel has it) of INSTANCE; a borrowed reference into
 * DESCRIBE. */
static int find_peer(json_t *describe, const char *instance, const char *spec, json_t **ret) {
        const char *slash = strchr(spec, '/'), *name = slash ? slash + 1 : spec;
        size_t tunnel_len = slash ? (size_t) (slash - spec) : 0, i, k;
        json_t *t, *p, *found = NULL;
        unsigned n = 0;

        json_array_foreach(json_object_get(describe, "tunnels"), i, t) {
                const char *tn = json_string_value(json_object_get(t, "name")) ?: "";

                if (slash && (strlen(tn) != tunnel_len || strncmp(tn, spec, tunnel_len) != 0))
                        continue;
                json_array_foreach(json_object_get(t, "peers"), k, p)
                        if (streq_ptr(json_string_value(json_object_get(p, "name")), name)) {
                                found = p;
                                n++;
                        }
        }
        if (n == 0) {
                fprintf(stderr, _("%s has no peer \"%s\"; \"%s peers %s\" lists them.\n"), instance, spec,
                        program_name, instance);
                return -ENOENT;
        }
        if (n > 1) {
                fprintf(stderr, _("More than one tunnel of %s has a peer \"%s\"; write TUNNEL/PEER.\n"),
                        instance, spec);
                return -EINVAL;
        }
        *ret = found;
        return 0;
}

static int verb_show(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        json_auto_t *d = NULL;
        const char *instance;
        json_t *p;
        int r;

        r = parse_instance(argv[1], &instance);
        if (r < 0)
                return r;
        r = bus_open(&bus);
        if (r < 0)
                return r;
        r = describe(bus, instance, false, &d);
        if (r < 0)
                return r;
        r = find_peer(d, instance, argv[2], &p);
        if (r < 0)
                return r;
        if (json_object_set_new(p, "instance", json_string(instance)) < 0) {
                fprintf(stderr, _("Out of memory.\n"));
                return -ENOMEM;
        }
        if (arg_json)
                print_json(p);
        else
                print_peer(p);
        return 0;
}

static int verb_reload(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **warnings = NULL;
        char buf[CALL_ERROR_MAX];
        const char *instance;
        int r;

        r = parse_instance(argv[1], &instance);
        if (r < 0)
                return r;
        r = bus_open(&bus);
        if (r < 0)
                return r;
        r = call_manager(bus, instance, "Reload", &error, &reply, NULL);
        if (r < 0 && sd_bus_error_has_name(&error, TAPOTUN_BUS_ERROR_INVALID_CONFIG)) {
                fprintf(stderr,
                        _("%s keeps running on its previous configuration; the file is invalid:\n%s\n"),
                        instance, error.message);
                return r;
        }
        if (r < 0) {
                fprintf(stderr, _("Failed to reload %s: %s\n"), instance,
                        call_error(instance, &error, r, buf));
                return r;
        }

        r = sd_bus_message_read_strv(reply, &warnings);
        if (r < 0) {
                fprintf(stderr, _("Failed to reload %s: %s\n"), instance, strerror(-r));
                return r;
        }
        for (char **w = warnings; w && *w; w++)
                fprintf(stderr, _("Warning: %s\n"), *w);
        return 0;
}

static int verb_disconnect(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        json_auto_t *d = NULL;
        char buf[CALL_ERROR_MAX];
        const char *instance;
        json_t *p;
        int r;

        r = parse_instance(argv[1], &instance);
        if (r < 0)
                return r;
        r = bus_open(&bus);
        if (r < 0)
                return r;
        r = describe(bus, instance, false, &d);
        if (r < 0)
                return r;
        r = find_peer(d, instance, argv[2], &p);
        if (r < 0)
                return r;
        r = call_manager(bus, instance, "DisconnectPeer", &error, NULL, "ss",
                         json_string_value(json_object_get(p, "tunnel")),
                         json_string_value(json_object_get(p, "name")));
        if (r < 0) {
                fprintf(stderr, _("Failed to disconnect %s/%s of %s: %s\n"),
                        json_string_value(json_object_get(p, "tunnel")),
                        json_string_value(json_object_get(p, "name")), instance,
                        call_error(instance, &error, r, buf));
                return r;
        }
        return 0;
}

static const Verb verbs[] = {
        { "list", 0, 0, verb_list, "",
          N_("List the running daemons (the default command)"), true },
        { "status", 0, 1, verb_status, N_("[INSTANCE]"),
          N_("Show the tunnels and peers of a daemon, or of every daemon"), true },
        { "peers", 0, 1, verb_peers, N_("[INSTANCE]"),
          N_("List the peers of a daemon, or of every daemon"), true },
        { "show", 2, 2, verb_show, N_("INSTANCE [TUNNEL/]PEER"),
          N_("Show everything about one peer"), true },
        { "reload", 1, 1, verb_reload, N_("INSTANCE"),
          N_("Make a daemon re-read its configuration file"), false },
        { "disconnect", 2, 2, verb_disconnect, N_("INSTANCE [TUNNEL/]PEER"),
          N_("End the streams of a peer (a client reconnects)"), false },
        { "validate", 1, 1, verb_validate, N_("FILE"),
          N_("Check a configuration file; print every problem, or a summary of each interface"), false },
        { "hash-token", 1, 1, verb_hash_token, N_("TOKEN|-"),
          N_("Print the SHA-1 of a client token for \"clients[].token\" (\"-\": read it from stdin)"),
          false },
};

static const char *verb_args(const Verb *v) {
        return v->args[0] ? _(v->args) : "";
}

static void help(void) {
        size_t width = 0;

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                width = MAX(width, strlen(verbs[i].name) + 1 + display_width(verb_args(&verbs[i])));

        printf(_("%s [OPTIONS...] COMMAND ...\n\n"
                 "Control the tapotun daemons and check their configuration.\n\n"
                 "Commands:\n"),
               program_name);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char left[128];

                (void) snprintf(left, sizeof left, "%s %s", verbs[i].name, verb_args(&verbs[i]));
                printf("  %s%*s  %s\n", left, (int) (width - display_width(left)), "", _(verbs[i].help));
        }
        printf(_("\nOptions:\n"
                 "  -h --help              Show this help\n"
                 "     --version           Show the package version\n"
                 "     --json              Print JSON (list, status, peers, show)\n"
                 "     --system            Talk to the daemons on the system bus (the default)\n"
                 "     --bus-address=ADDR  Talk to the daemons on the bus at ADDR instead\n"
                 "\nAn INSTANCE is a daemon's name on the bus without \"%s\": the name of its\n"
                 "configuration file without \".json\" unless it was started with --instance.\n"),
               TAPOTUN_BUS_NAME_PREFIX);
}

static int dispatch(int argc, char *argv[]) {
        const Verb *verb = NULL;
        unsigned n_args;

        static char *list_argv[] = { (char *) "list", NULL };

        /* A bare tapotunctl lists. */
        if (argc <= 0) {
                argc = 1;
                argv = list_argv;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[0]))
                        verb = &verbs[i];
        if (!verb) {
                fprintf(stderr, _("Unknown command \"%s\". Try \"%s --help\".\n"), argv[0], program_name);
                return -EINVAL;
        }
        if (arg_json && !verb->json) {
                fprintf(stderr,
                        _("\"%s\" does not print JSON; --json works with list, status, peers and show.\n"),
                        verb->name);
                return -EINVAL;
        }

        n_args = (unsigned) argc - 1;
        if (n_args < verb->min_args) {
                fprintf(stderr, _("Too few arguments for \"%s\"; usage: %s %s %s\n"), verb->name, program_name,
                        verb->name, verb_args(verb));
                return -EINVAL;
        }
        if (n_args > verb->max_args) {
                fprintf(stderr, _("Too many arguments for \"%s\"; usage: %s %s %s\n"), verb->name, program_name,
                        verb->name, verb_args(verb));
                return -EINVAL;
        }

        return verb->handler(argc, argv);
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_SYSTEM,
                ARG_BUS_ADDRESS,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                {},
        };
        int c;

        (void) setlocale(LC_ALL, "");
        /* TAPOTUN_LOCALEDIR: the translations of a build tree, for its tests. */
        (void) bindtextdomain(GETTEXT_PACKAGE, secure_getenv("TAPOTUN_LOCALEDIR") ?: LOCALEDIR);
        (void) textdomain(GETTEXT_PACKAGE);

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("%s %s\n", program_name, PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_SYSTEM:
                        arg_bus_address = NULL;
                        break;
                case ARG_BUS_ADDRESS:
                        arg_bus_address = optarg;
                        break;
                default: /* getopt_long() said what is wrong */
                        return EXIT_FAILURE;
                }

        return dispatch(argc - optind, argv + optind) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
