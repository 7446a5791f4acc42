/* SPDX-License-Identifier: MIT */
/* Reload: re-reads the configuration file and moves the running interfaces to it. Interfaces are matched
 * by name, a server's clients by token, so that clients whose settings did not change keep their
 * sessions. What cannot change while an interface runs is reported and left as it was. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager.h"

typedef enum Action {
        ACTION_CREATE, /* a new entry: a new interface */
        ACTION_UPDATE, /* same name and mode: the difference is applied */
        ACTION_KEEP,   /* renamed, or its mode changed: runs on as it was until a restart */
} Action;

typedef struct Plan {
        Action action;
        Iface *iface;         /* the running interface; NULL for ACTION_CREATE */
        IfaceUpdate *update;  /* a server's ACTION_UPDATE */
        bool restart;         /* a client's ACTION_UPDATE whose settings changed */
} Plan;

typedef struct Reload {
        Manager *manager;
        Config *config; /* the new one */
        Plan *plans;    /* one per entry of config */
        size_t n_plans;
        bool *matched;  /* per running interface: an entry of config took it */
        char **problems;
        size_t n_problems;
} Reload;

static void reload_done(Reload *rl) {
        for (size_t k = 0; k < rl->n_plans; k++)
                iface_update_free(rl->plans[k].update);
        free(rl->plans);
        free(rl->matched);
        strv_free(rl->problems);
        config_free(rl->config);
}

/* Logs a problem and keeps it for the caller. */
_printf_(2, 3)
static int reload_problem(Reload *rl, const char *format, ...) {
        char **l, *s;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return log_error_errno(ENOMEM, "Out of memory.");
        log_warning("Reload: %s", s);

        l = reallocarray(rl->problems, rl->n_problems + 2, sizeof(char *));
        if (!l) {
                free(s);
                return log_error_errno(ENOMEM, "Out of memory.");
        }
        l[rl->n_problems++] = s;
        l[rl->n_problems] = NULL;
        rl->problems = l;
        return 0;
}

static ssize_t manager_find_iface(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_ifaces; i++)
                if (streq(m->ifaces[i]->cfg->name, name))
                        return (ssize_t) i;
        return -1;
}

/* Server settings the transport copied when it started: a change waits for a restart. */
typedef struct FixedField {
        const char *key;
        size_t offset;
        size_t size;
        uint64_t unit; /* the JSON value is the field divided by this */
} FixedField;

#define FIXED(key, field, unit)                                                                          \
        { key, offsetof(TapotunIfaceConfig, field), sizeof(((TapotunIfaceConfig *) 0)->field), unit }

static const FixedField fixed_server_fields[] = {
        FIXED("port", port, 1),
        FIXED("keepalive", keepalive_usec, 1000000),
        FIXED("peer_timeout", peer_timeout_usec, 1000000),
        FIXED("max_connections", max_connections, 1),
        FIXED("max_puts_per_client", max_puts_per_client, 1),
        FIXED("queue_bytes", queue_bytes, 1),
};

static uint64_t field_get(const TapotunIfaceConfig *c, const FixedField *f) {
        const uint8_t *p = (const uint8_t *) c + f->offset;

        switch (f->size) {
        case sizeof(uint16_t):
                return *(const uint16_t *) p;
        case sizeof(uint32_t):
                return *(const uint32_t *) p;
        default:
                return *(const uint64_t *) p;
        }
}

/* Puts the running value of every setting that cannot change live back into NEW, and reports it. */
static int reload_keep_fixed(Reload *rl, const TapotunIfaceConfig *old, TapotunIfaceConfig *new) {
        const char *old_listen = old->listen ?: CONFIG_DEFAULT_LISTEN;
        int r;

        for (size_t j = 0; j < ELEMENTSOF(fixed_server_fields); j++) {
                const FixedField *f = &fixed_server_fields[j];
                uint64_t a = field_get(old, f), b = field_get(new, f);

                if (a == b)
                        continue;
                r = reload_problem(rl, _("%s: \"%s\" changed from %" PRIu64 " to %" PRIu64 ", which needs a "
                                         "restart of the service; still using %" PRIu64),
                                   new->name, f->key, a / f->unit, b / f->unit, a / f->unit);
                if (r < 0)
                        return r;
                memcpy((uint8_t *) new + f->offset, (const uint8_t *) old + f->offset, f->size);
        }

        if (!streq(old_listen, new->listen ?: CONFIG_DEFAULT_LISTEN)) {
                char *s;

                r = reload_problem(rl, _("%s: \"listen\" changed from \"%s\" to \"%s\", which needs a restart of "
                                         "the service; still listening on \"%s\""),
                                   new->name, old_listen, new->listen ?: CONFIG_DEFAULT_LISTEN, old_listen);
                if (r < 0)
                        return r;
                s = strdup(old_listen);
                if (!s)
                        return log_error_errno(ENOMEM, "Out of memory.");
                free(new->listen);
                new->listen = s;
        }
        return 0;
}

/* "127.0.0.1:9586", "[::1]:9586", or "off". */
static const char *metrics_listen_format(const TapotunIfaceConfig *c, char *buf, size_t size) {
        if (!c->metrics_listen)
                return _("off");
        (void) snprintf(buf, size, strchr(c->metrics_listen, ':') ? "[%s]:%u" : "%s:%u", c->metrics_listen,
                        c->metrics_port);
        return buf;
}

/* The metrics listener binds when its interface starts: a new address waits for a restart (the tunnel's own
 * port does too). unhealthy_after is read on every request and changes live. */
static int reload_keep_metrics(Reload *rl, const TapotunIfaceConfig *old, TapotunIfaceConfig *new) {
        char a[INET6_ADDRSTRLEN + 16], b[INET6_ADDRSTRLEN + 16];
        char *s = NULL;
        int r;

        if (streq_ptr(old->metrics_listen, new->metrics_listen) && old->metrics_port == new->metrics_port)
                return 0;

        r = reload_problem(rl, _("%s: the metrics listener changed from %s to %s, which needs a restart of "
                                 "the service; it stays as it was"),
                           new->name, metrics_listen_format(old, a, sizeof a),
                           metrics_listen_format(new, b, sizeof b));
        if (r < 0)
                return r;

        if (old->metrics_listen) {
                s = strdup(old->metrics_listen);
                if (!s)
                        return log_error_errno(ENOMEM, "Out of memory.");
        }
        free(new->metrics_listen);
        new->metrics_listen = s;
        new->metrics_port = old->metrics_port;
        return 0;
}

/* Whether the client transport must start over: it copied all of these when it started. */
static bool client_changed(const TapotunIfaceConfig *a, const TapotunIfaceConfig *b) {
        return !streq_ptr(a->server, b->server) || !streq_ptr(a->token, b->token) || !streq_ptr(a->ca, b->ca) ||
               a->insecure != b->insecure || a->keepalive_usec != b->keepalive_usec ||
               a->reconnect_min_usec != b->reconnect_min_usec || a->reconnect_max_usec != b->reconnect_max_usec ||
               a->stall_timeout_usec != b->stall_timeout_usec || a->mark_value != b->mark_value ||
               a->mark_table != b->mark_table || a->mark_priority != b->mark_priority ||
               a->accept_routes != b->accept_routes || a->http_version != b->http_version ||
               a->offloads_mask != b->offloads_mask;
}

static bool same_endpoint(const TapotunIfaceConfig *a, const TapotunIfaceConfig *b) {
        if (a->mode != b->mode)
                return false;
        if (a->mode == TAPOTUN_MODE_SERVER)
                return a->port == b->port;
        return streq_ptr(a->server, b->server);
}

/* Decides what happens to every entry of the new file and prepares what can fail, changing nothing. */
static int reload_plan(Reload *rl) {
        Manager *m = rl->manager;
        Config *c = rl->config;
        int r;

        rl->plans = calloc(MAX(c->n_ifaces, 1u), sizeof(Plan));
        rl->matched = calloc(MAX(m->n_ifaces, 1u), sizeof(bool));
        if (!rl->plans || !rl->matched)
                return log_error_errno(ENOMEM, "Out of memory.");
        rl->n_plans = c->n_ifaces;

        for (size_t k = 0; k < c->n_ifaces; k++) {
                TapotunIfaceConfig *new = &c->ifaces[k];
                ssize_t i = manager_find_iface(m, new->name);

                if (i < 0)
                        continue;
                rl->matched[i] = true;
                rl->plans[k].iface = m->ifaces[i];
                if (m->ifaces[i]->cfg->mode == new->mode) {
                        rl->plans[k].action = ACTION_UPDATE;
                        continue;
                }
                rl->plans[k].action = ACTION_KEEP;
                r = reload_problem(rl, _("%s: changing an interface between server and client needs a restart "
                                         "of the service; it runs on as a %s"),
                                   new->name, tapotun_mode_to_string(m->ifaces[i]->cfg->mode));
                if (r < 0)
                        return r;
        }

        /* An entry whose name is new where a running interface's entry was, of the same mode and on the
         * same port (server) or server URL (client), is that interface renamed. The name is what
         * systemd's socket, the bus and the TUN know it by, so a new name waits for a restart; anything
         * else unmatched is added or removed. */
        for (size_t k = 0; k < c->n_ifaces; k++) {
                TapotunIfaceConfig *new = &c->ifaces[k];

                if (rl->plans[k].iface || k >= m->config->n_ifaces)
                        continue;
                for (size_t i = 0; i < m->n_ifaces; i++) {
                        Iface *f = m->ifaces[i];

                        if (rl->matched[i] || f->cfg != &m->config->ifaces[k] || !same_endpoint(f->cfg, new))
                                continue;
                        rl->matched[i] = true;
                        rl->plans[k] = (Plan) { .action = ACTION_KEEP, .iface = f };
                        r = reload_problem(rl, _("%s: renaming interface \"%s\" to \"%s\" needs a restart of the "
                                                 "service; it runs on as \"%s\" with its previous settings"),
                                           new->name, f->cfg->name, new->name, f->cfg->name);
                        if (r < 0)
                                return r;
                        break;
                }
        }

        for (size_t k = 0; k < c->n_ifaces; k++) {
                Plan *p = &rl->plans[k];
                TapotunIfaceConfig *new = &c->ifaces[k];

                if (p->action != ACTION_UPDATE)
                        continue;
                r = reload_keep_metrics(rl, p->iface->cfg, new);
                if (r < 0)
                        return r;
                if (new->mode == TAPOTUN_MODE_CLIENT) {
                        p->restart = client_changed(p->iface->cfg, new);
                        continue;
                }
                r = reload_keep_fixed(rl, p->iface->cfg, new);
                if (r < 0)
                        return r;
                r = iface_update_prepare(p->iface, new, &p->update);
                if (r < 0)
                        return reload_problem(rl, _("%s: the new configuration cannot be applied: %s; nothing "
                                                    "was changed"), new->name, strerror(-r)) ?: r;
        }
        return 0;
}

static int reload_create(Reload *rl, const TapotunIfaceConfig *cfg, Iface **ret) {
        Manager *m = rl->manager;
        _cleanup_(iface_freep) Iface *i = NULL;
        int r;

        if (cfg->mode == TAPOTUN_MODE_SERVER) {
                r = manager_load_plugin(m, TAPOTUN_PLUGIN_ROUTER);
                if (r >= 0)
                        r = manager_load_plugin(m, TAPOTUN_PLUGIN_SERVER_TRANSPORT);
        } else
                r = manager_load_plugin(m, TAPOTUN_PLUGIN_CLIENT_TRANSPORT);
        if (r >= 0)
                r = iface_new(m, cfg, &i);
        if (r >= 0)
                r = iface_start(i);
        if (r < 0)
                return reload_problem(rl, _("%s: the new interface could not be set up: %s (see the journal)"),
                                      cfg->name, strerror(-r)) ?: r;

        log_tunnel_full_errno(cfg->name, LOG_INFO, 0, "Interface added.");
        *ret = TAKE_PTR(i);
        return 0;
}

/* Moves everything to the new configuration. Nothing here fails as a whole: what does not work out is
 * logged and reported, and the rest goes on. */
static void reload_commit(Reload *rl, Iface **ifaces, size_t *n_ifaces) {
        Manager *m = rl->manager;
        Config *c = rl->config;
        size_t n = 0, n_added = 0, n_removed = 0;
        int r;

        /* Removed interfaces go first, so that a new one may take their name, port or addresses. Each
         * leaves m->ifaces before it is freed: ending streams refresh the status, which walks them. */
        for (size_t i = m->n_ifaces; i > 0; i--) {
                Iface *f = m->ifaces[i - 1];

                if (rl->matched[i - 1])
                        continue;
                log_tunnel_full_errno(f->cfg->name, LOG_INFO, 0, "Interface removed from the configuration.");
                memmove(m->ifaces + i - 1, m->ifaces + i, (m->n_ifaces - i) * sizeof(Iface *));
                m->n_ifaces--;
                iface_free(f);
                n_removed++;
        }

        for (size_t k = 0; k < c->n_ifaces; k++) {
                Plan *p = &rl->plans[k];
                TapotunIfaceConfig *new = &c->ifaces[k];

                switch (p->action) {

                case ACTION_KEEP: {
                        /* The running entry moves into the new configuration whole, in place of the new
                         * one, which leaves with the old configuration. */
                        TapotunIfaceConfig *old = (TapotunIfaceConfig *) p->iface->cfg, t = *new;

                        *new = *old;
                        *old = t;
                        p->iface->cfg = new;
                        ifaces[n++] = p->iface;
                        break;
                }

                case ACTION_UPDATE:
                        if (p->update) {
                                r = iface_update_apply(p->iface, TAKE_PTR(p->update));
                                if (r < 0)
                                        (void) reload_problem(rl, _("%s: part of the new configuration could not "
                                                                    "be applied: %s (see the journal)"),
                                                              new->name, strerror(-r));
                        } else if (p->restart) {
                                log_tunnel_full_errno(new->name, LOG_INFO, 0,
                                                      "Settings changed, reconnecting to the server.");
                                r = iface_restart_client(p->iface, new);
                                if (r < 0)
                                        (void) reload_problem(rl, _("%s: the new settings could not be applied: "
                                                                    "%s (see the journal)"),
                                                              new->name, strerror(-r));
                        } else
                                p->iface->cfg = new;
                        ifaces[n++] = p->iface;
                        break;

                case ACTION_CREATE:
                        if (reload_create(rl, new, &ifaces[n]) >= 0) {
                                n++;
                                n_added++;
                        }
                        break;
                }
        }

        log_info("Reloaded %s: %zu interface(s) added, %zu removed, %zu kept, %zu problem(s).",
                 m->config_path, n_added, n_removed, n - n_added, rl->n_problems);
        *n_ifaces = n;
}

int manager_reload(Manager *m, char ***ret_errors) {
        _cleanup_(reload_done) Reload rl = { .manager = m };
        _cleanup_(strv_freep) char **errors = NULL;
        Iface **ifaces;
        Config *old;
        size_t n;
        int r;

        if (ret_errors)
                *ret_errors = NULL;
        log_info("Reloading %s.", m->config_path);
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading %s...", m->config_path);

        r = config_load(m->config_path, &rl.config, &errors);
        if (r < 0) {
                char *problem = NULL;

                if (!errors)
                        log_error_errno(r, "Reload: failed to read %s: %m", m->config_path);
                for (char **e = errors; e && *e; e++)
                        log_error("Reload: %s", *e);
                log_error("Reload failed; still running on the previous configuration.");

                if (asprintf(&problem, "reload failed, running on the previous configuration: %s%s",
                             errors && errors[0] ? errors[0] : strerror(-r),
                             strv_length(errors) > 1 ? " (and more, see the journal)" : "") >= 0) {
                        free(m->reload_problem);
                        m->reload_problem = problem;
                }
                manager_notify_ready(m);
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                return r;
        }

        ifaces = calloc(MAX(rl.config->n_ifaces, 1u), sizeof(Iface *));
        if (!ifaces)
                r = log_error_errno(ENOMEM, "Out of memory.");
        else
                r = reload_plan(&rl);
        if (r < 0) {
                free(ifaces);
                log_error("Reload failed; still running on the previous configuration.");
                free(m->reload_problem);
                m->reload_problem = strdup("reload failed, running on the previous configuration "
                                           "(see the journal)");
                manager_notify_ready(m);
                if (ret_errors)
                        *ret_errors = TAKE_PTR(rl.problems);
                return r;
        }

        reload_commit(&rl, ifaces, &n);

        /* Every running interface and peer points into the new configuration now. */
        free(m->ifaces);
        m->ifaces = ifaces;
        m->n_ifaces = n;
        old = m->config;
        m->config = TAKE_PTR(rl.config);
        rl.config = old;

        /* The update check copies its settings and starts over only when they changed. */
        if (m->updater) {
                r = updater_configure(m->updater, &m->config->update);
                if (r < 0)
                        (void) reload_problem(&rl, _("the new \"update\" settings could not be applied: %s; "
                                                     "the update check keeps its previous settings"),
                                              strerror(-r));
        }

        m->reload_problem = mfree(m->reload_problem);
        if (rl.n_problems > 0 &&
            asprintf(&m->reload_problem, "last reload: %s%s", rl.problems[0],
                     rl.n_problems > 1 ? " (and more, see the journal)" : "") < 0)
                m->reload_problem = NULL;
        manager_notify_ready(m);

        if (ret_errors)
                *ret_errors = TAKE_PTR(rl.problems);
        return 0;
}
