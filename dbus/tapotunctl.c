/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libintl.h>
#include <locale.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
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
} Verb;

static const char *program_name = "tapotunctl";

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

static const Verb verbs[] = {
        { "validate", 1, 1, verb_validate, N_("FILE"),
          N_("Check a configuration file; print every problem, or a summary of each interface") },
        { "hash-token", 1, 1, verb_hash_token, N_("TOKEN|-"),
          N_("Print the SHA-1 of a client token for \"clients[].token\" (\"-\": read it from stdin)") },
};

static void help(void) {
        int width = 0;

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                width = MAX(width, (int) (strlen(verbs[i].name) + 1 + strlen(_(verbs[i].args))));

        printf(_("%s [OPTIONS...] COMMAND ...\n\n"
                 "Control the tapotun daemon and check its configuration.\n\n"
                 "Commands:\n"),
               program_name);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char left[128];

                (void) snprintf(left, sizeof left, "%s %s", verbs[i].name, _(verbs[i].args));
                printf("  %-*s  %s\n", width, left, _(verbs[i].help));
        }
        printf(_("\nOptions:\n"
                 "  -h --help     Show this help\n"
                 "     --version  Show the package version\n"));
}

static int dispatch(int argc, char *argv[]) {
        const Verb *verb = NULL;
        unsigned n_args;

        if (argc <= 0) {
                fprintf(stderr, _("Missing command. Try \"%s --help\".\n"), program_name);
                return -EINVAL;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[0]))
                        verb = &verbs[i];
        if (!verb) {
                fprintf(stderr, _("Unknown command \"%s\". Try \"%s --help\".\n"), argv[0], program_name);
                return -EINVAL;
        }

        n_args = (unsigned) argc - 1;
        if (n_args < verb->min_args) {
                fprintf(stderr, _("Too few arguments for \"%s\"; usage: %s %s %s\n"), verb->name, program_name,
                        verb->name, _(verb->args));
                return -EINVAL;
        }
        if (n_args > verb->max_args) {
                fprintf(stderr, _("Too many arguments for \"%s\"; usage: %s %s %s\n"), verb->name, program_name,
                        verb->name, _(verb->args));
                return -EINVAL;
        }

        return verb->handler(argc, argv);
}

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        (void) setlocale(LC_ALL, "");
        (void) bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
        (void) textdomain(GETTEXT_PACKAGE);

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("%s %s\n", program_name, PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default: /* getopt_long() said what is wrong */
                        return EXIT_FAILURE;
                }

        return dispatch(argc - optind, argv + optind) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
