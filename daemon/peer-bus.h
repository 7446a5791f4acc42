/* SPDX-License-Identifier: MIT */
/* org.tapotun1.Peer: one object per peer (a configured client on a server, the server on a client) at
 * TAPOTUN_BUS_PEER_PATH/<tunnel>/<peer> (dbus/org.tapotun1.Peer.md). */
#pragma once

#include <jansson.h>
#include <systemd/sd-bus.h>

#include "peer.h"

extern const sd_bus_vtable peer_vtable[];

int peer_bus_path(const Peer *p, char **ret);
/* Fallback vtable lookup and node enumerator; USERDATA is the Manager. */
int peer_bus_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **ret_found,
                  sd_bus_error *error);
int peer_bus_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***ret_nodes,
                             sd_bus_error *error);

/* PropertiesChanged for the properties that signal their changes. */
int peer_bus_emit_changed(sd_bus *bus, Peer *p);

/* Everything about P as a JSON object (part of the Describe() method's answer). */
int peer_bus_describe(Peer *p, json_t **ret);
