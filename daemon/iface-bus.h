/* SPDX-License-Identifier: MIT */
/* org.tapotun1.Tunnel: one object per configured interface at TAPOTUN_BUS_TUNNEL_PATH/<name>
 * (dbus/org.tapotun1.Tunnel.md). */
#pragma once

#include <jansson.h>
#include <systemd/sd-bus.h>

#include "iface.h"

extern const sd_bus_vtable iface_vtable[];

int iface_bus_path(const Iface *i, char **ret);
/* Fallback vtable lookup and node enumerator; USERDATA is the Manager. */
int iface_bus_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                   sd_bus_error *error);
int iface_bus_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes,
                              sd_bus_error *error);

/* Everything about I and its peers as a JSON object (the Describe() method). */
int iface_bus_describe(Iface *i, json_t **ret);
