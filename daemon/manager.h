/* SPDX-License-Identifier: MIT */
/* The daemon: one sd-event loop, the loaded plugins, the configured interfaces. */
#pragma once

#include <systemd/sd-event.h>

#include <tapotun/plugin.h>

#include "conf.h"
#include "iface.h"
#include "macro.h"
#include "netlink.h"
#include "plugin-loader.h"

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

/* CLOCK_MONOTONIC in usec, as the loop last saw it. */
uint64_t manager_now(Manager *m);
/* A peer changed state: refresh the service status. */
void manager_peer_changed(Manager *m, Peer *p);
/* The plugin loaded for KIND, or NULL. */
const TapotunPlugin *manager_plugin(Manager *m, TapotunPluginKind kind);
/* Takes the systemd-passed socket named NAME; -ENOENT when there is none. */
int manager_take_listen_fd(Manager *m, const char *name);
