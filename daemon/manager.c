/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "metrics.h"

static const char *const plugin_names[_TAPOTUN_PLUGIN_KIND_MAX] = {
        [TAPOTUN_PLUGIN_SERVER_TRANSPORT] = "http-server",
        [TAPOTUN_PLUGIN_CLIENT_TRANSPORT] = "http-client",
        [TAPOTUN_PLUGIN_ROUTER] = "router",
};

_printf_(5, 0)
static int host_logv(int level, int error, const char *plugin, const char *object, const char *format,
                     va_list ap) {
        char buf[1536];
        int saved = error < 0 ? -error : error;

        errno = saved;
        (void) vsnprintf(buf, sizeof buf, format, ap);
        if (object)
                return log_internal(level, saved, "TAPOTUN_PLUGIN", plugin, "%s: %s", object, buf);
        return log_internal(level, saved, "TAPOTUN_PLUGIN", plugin, "%s", buf);
}

int manager_new(Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return log_error_errno(ENOMEM, "Out of memory.");

        /* Not sd_event_default(): its loop asks the kernel for the thread id on every iteration
         * (a gettid() per wake-up, to check it runs in its own thread), and nothing here shares it. */
        r = sd_event_new(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        (void) sd_event_set_watchdog(m->event, true);

        r = netlink_new(m->event, &m->netlink);
        if (r < 0)
                return log_error_errno(r, "Failed to open the rtnetlink socket: %m");

        m->host = (TapotunHost) {
                .version = TAPOTUN_HOST_VERSION,
                .struct_size = sizeof(TapotunHost),
                .event = m->event,
                .logv = host_logv,
                .peer_authenticate = iface_host_authenticate,
                .peer_name = peer_host_name,
                .peer_accept = peer_host_accept,
                .peer_request_headers = peer_host_request_headers,
                .peer_configure = iface_host_configure,
                .stream_attach = peer_host_stream_attach,
                .stream_detach = peer_host_stream_detach,
                .stream_pull = peer_host_stream_pull,
                .stream_lend = peer_host_stream_lend,
                .stream_return = peer_host_stream_return,
                .stream_receive = iface_host_receive,
                .take_listen_fd = iface_host_take_listen_fd,
                .tunnel_n_peers = iface_host_n_peers,
                .tunnel_peer = iface_host_peer,
                .peer_event = peer_host_event,
                .render_metrics = metrics_host_render,
                .render_health = metrics_host_health,
        };

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        /* Off the bus first: nobody is to see the interfaces go, nor look at them while they do. */
        manager_bus_stop(m);
        /* An update download in progress is abandoned, its staging file removed. */
        m->updater = updater_free(m->updater);

        /* Interfaces first: their transports and TUNs remove what they added while the loop and the
         * netlink socket still exist. Each leaves the array before it goes, since streams that end while
         * it is freed look at the others. */
        m->stopping = true;
        for (; m->n_ifaces > 0; m->n_ifaces--)
                iface_free(m->ifaces[m->n_ifaces - 1]);
        free(m->ifaces);

        for (size_t i = 0; i < _TAPOTUN_PLUGIN_KIND_MAX; i++)
                plugin_unload(m->plugins[i]);

        for (size_t i = 0; i < m->n_listen_fds; i++) {
                safe_close(m->listen_fds[i].fd);
                free(m->listen_fds[i].name);
        }
        free(m->listen_fds);

        config_free(m->config);
        free(m->config_path);
        free(m->reload_problem);
        netlink_free(m->netlink);
        sd_event_unref(m->event);
        return mfree(m);
}

int manager_load_config(Manager *m, const char *path) {
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = config_load(path, &m->config, &errors);
        if (r < 0) {
                for (char **e = errors; e && *e; e++)
                        log_error("%s", *e);
                if (!errors)
                        return log_error_errno(r, "Failed to load %s: %m", path);
                return r;
        }

        m->config_path = strdup(path);
        if (!m->config_path)
                return log_error_errno(ENOMEM, "Out of memory.");
        return 0;
}

static int manager_collect_listen_fds(Manager *m) {
        char **names = NULL;
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to receive sockets from systemd: %m");
        if (n == 0)
                return 0;

        m->listen_fds = calloc((size_t) n, sizeof(ListenFd));
        if (!m->listen_fds) {
                for (int i = 0; i < n; i++)
                        safe_close(SD_LISTEN_FDS_START + i);
                strv_free(names);
                return log_error_errno(ENOMEM, "Out of memory.");
        }
        for (int i = 0; i < n; i++)
                m->listen_fds[i] = (ListenFd) { .fd = SD_LISTEN_FDS_START + i, .name = names[i] };
        m->n_listen_fds = (size_t) n;
        free(names);

        /* The server transport accepts on these as they are: anything but a listening TCP socket (a
         * ListenDatagram= or a path in the .socket unit, say) is a mistake in the unit. */
        for (size_t i = 0; i < m->n_listen_fds; i++)
                if (sd_is_socket_inet(m->listen_fds[i].fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0)
                        return log_error_errno(EINVAL,
                                               "systemd passed the socket '%s' (fd %i), which is not a "
                                               "listening TCP socket; use ListenStream= with an IP address "
                                               "and port in the .socket unit.",
                                               m->listen_fds[i].name ?: "", m->listen_fds[i].fd);
        return 0;
}

int manager_take_listen_fd(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_listen_fds; i++)
                if (m->listen_fds[i].fd >= 0 && streq_ptr(m->listen_fds[i].name, name))
                        return TAKE_FD(m->listen_fds[i].fd);
        return -ENOENT;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        m->stopping = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
        return sd_event_exit(m->event, 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        /* manager_reload() logs and reports everything itself; the daemon runs on in any case. */
        (void) manager_reload(m, NULL);
        return 0;
}

static void on_update_changed(Updater *u, void *userdata) {
        manager_bus_update_changed(userdata);
}

int manager_load_plugin(Manager *m, TapotunPluginKind kind) {
        if (m->plugins[kind])
                return 0;
        return plugin_load(plugin_names[kind], kind, &m->host, &m->plugins[kind]);
}

int manager_start(Manager *m) {
        bool need[_TAPOTUN_PLUGIN_KIND_MAX] = {};
        int r;

        r = manager_collect_listen_fds(m);
        if (r < 0)
                return r;

        for (size_t i = 0; i < m->config->n_ifaces; i++)
                if (m->config->ifaces[i].mode == TAPOTUN_MODE_SERVER) {
                        need[TAPOTUN_PLUGIN_SERVER_TRANSPORT] = true;
                        need[TAPOTUN_PLUGIN_ROUTER] = true;
                } else
                        need[TAPOTUN_PLUGIN_CLIENT_TRANSPORT] = true;

        for (size_t k = 0; k < _TAPOTUN_PLUGIN_KIND_MAX; k++) {
                if (!need[k])
                        continue;
                r = manager_load_plugin(m, (TapotunPluginKind) k);
                if (r < 0)
                        return r;
        }

        m->ifaces = calloc(m->config->n_ifaces, sizeof(Iface *));
        if (!m->ifaces && m->config->n_ifaces > 0)
                return log_error_errno(ENOMEM, "Out of memory.");

        for (size_t i = 0; i < m->config->n_ifaces; i++) {
                r = iface_new(m, &m->config->ifaces[i], &m->ifaces[i]);
                if (r < 0)
                        return log_error_errno(r, "%s: failed to set up the interface: %m",
                                               m->config->ifaces[i].name);
                m->n_ifaces++;

                r = iface_start(m->ifaces[i]);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < m->n_listen_fds; i++)
                if (m->listen_fds[i].fd >= 0)
                        return log_error_errno(EINVAL,
                                               "systemd passed a socket named '%s' but no server interface "
                                               "of %s has that name; set FileDescriptorName= to the "
                                               "interface name.",
                                               m->listen_fds[i].name ?: "", m->config_path);

        r = updater_new(m->event, on_update_changed, m, &m->updater);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the update check: %m");
        /* Without its update check the daemon still carries traffic. */
        r = updater_configure(m->updater, &m->config->update);
        if (r < 0)
                log_warning_errno(r, "Cannot start the update check: %m");

        r = sd_event_add_signal(m->event, NULL, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM: %m");
        r = sd_event_add_signal(m->event, NULL, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGINT: %m");
        r = sd_event_add_signal(m->event, NULL, SIGHUP | SD_EVENT_SIGNAL_PROCMASK, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGHUP: %m");

        /* Last, so that the name is owned (and READY=1 may follow) only once everything is up. */
        return manager_bus_start(m);
}

void manager_update_status(Manager *m) {
        size_t connected = 0, total = 0, failing = 0;

        if (m->stopping)
                return;

        /* A client interface without its server is failing; a server's client that is away is not. */
        for (size_t i = 0; i < m->n_ifaces; i++)
                for (size_t j = 0; j < m->ifaces[i]->n_peers; j++) {
                        bool up = m->ifaces[i]->peers[j]->state == PEER_CONNECTED;

                        total++;
                        connected += up;
                        failing += !up && m->ifaces[i]->cfg->mode == TAPOTUN_MODE_CLIENT;
                }
        (void) sd_notifyf(false, "STATUS=%zu of %zu peers connected, %zu failing%s%s", connected, total,
                          failing, m->reload_problem ? "; " : "", m->reload_problem ?: "");
}

void manager_notify_ready(Manager *m) {
        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
}

void manager_peer_changed(Manager *m, Peer *p) {
        manager_update_status(m);
        manager_bus_peer_changed(m, p);
}

int manager_run(Manager *m) {
        int r;

        manager_notify_ready(m);
        log_info("Started with %zu interface(s) from %s.", m->n_ifaces, m->config_path);

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

uint64_t manager_now(Manager *m) {
        uint64_t t;

        if (sd_event_now(m->event, CLOCK_MONOTONIC, &t) < 0)
                return 0;
        return t;
}

const TapotunPlugin *manager_plugin(Manager *m, TapotunPluginKind kind) {
        return m->plugins[kind] ? m->plugins[kind]->desc : NULL;
}
