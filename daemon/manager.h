/* SPDX-License-Identifier: MIT */
/* The daemon: one sd-event loop, the loaded plugins, the configured interfaces. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <tapotun/plugin.h>

#include "conf.h"
#include "iface.h"
#include "macro.h"
#include "netlink.h"
#include "plugin-loader.h"
#include "update.h"

typedef struct ListenFd {
        int fd;
        char *name;
} ListenFd;

struct Manager {
        sd_event *event;
        Netlink *netlink;

        char *config_path;
        Config *config;
        Iface **ifaces;
        size_t n_ifaces;

        TapotunHost host;
        Plugin *plugins[_TAPOTUN_PLUGIN_KIND_MAX];

        /* Sockets passed by systemd, by FileDescriptorName=. */
        ListenFd *listen_fds;
        size_t n_listen_fds;

        /* D-Bus (manager-bus.c): the connection, NULL when there is none; the address to use instead of
         * the system bus and the instance name, both NULL unless given on the command line. */
        sd_bus *bus;
        char *bus_address;
        char *bus_instance;

        /* The update check (update.c); present from manager_start() on, idle unless configured. */
        Updater *updater;

        /* What went wrong in the last reload, kept in STATUS= until a reload succeeds; NULL when nothing. */
        char *reload_problem;
        /* STOPPING=1 was sent: later status lines would only hide it. */
        bool stopping;
};

int manager_new(Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Reads and validates the configuration; logs every problem. */
int manager_load_config(Manager *m, const char *path);
/* Loads the plugins the configuration needs and brings every interface up. */
int manager_start(Manager *m);
/* Runs the loop until SIGTERM/SIGINT. */
int manager_run(Manager *m);

/* Re-reads the configuration file and applies the difference without dropping the sessions of unchanged
 * clients. When the new file is invalid, keeps running on the old one and returns -EINVAL with every
 * problem in *RET_ERRORS (strv, caller frees); settings that cannot change live are reported there too
 * (and the rest is applied). Returns 0 when the new file is in effect; *RET_ERRORS is then NULL unless
 * something was not applied. RET_ERRORS may be NULL. (reload.c) */
int manager_reload(Manager *m, char ***ret_errors);

/* The one place READY=1 is sent: at startup once the interfaces are up and the plugins loaded, and to end
 * a reload (RELOADING=1). Also refreshes STATUS=. */
void manager_notify_ready(Manager *m);
/* Sends the one-line summary in STATUS= ("2 of 3 peers connected, 0 failing"). */
void manager_update_status(Manager *m);
/* Loads the plugin for KIND unless it is loaded already. */
int manager_load_plugin(Manager *m, TapotunPluginKind kind);

/* CLOCK_MONOTONIC in usec, as the loop last saw it. */
uint64_t manager_now(Manager *m);
/* A peer changed state: refresh the service status. */
void manager_peer_changed(Manager *m, Peer *p);
/* The plugin loaded for KIND, or NULL. */
const TapotunPlugin *manager_plugin(Manager *m, TapotunPluginKind kind);
/* Takes the systemd-passed socket named NAME; -ENOENT when there is none. */
int manager_take_listen_fd(Manager *m, const char *name);
