/* SPDX-License-Identifier: MIT */
/* The daemon on D-Bus: the connection, the org.tapotun1.Manager object at TAPOTUN_BUS_PATH with an
 * object manager, and the tunnel (iface-bus.c) and peer (peer-bus.c) objects below it. The API is
 * described in dbus/org.tapotun1.*.md. */
#pragma once

#include <jansson.h>
#include <systemd/sd-bus.h>

#include "manager.h"

/* Sets the bus address (NULL: $TAPOTUN_BUS_ADDRESS, else the system bus) and the instance name (NULL:
 * derived from the configuration file name). Logs and returns -EINVAL for an invalid instance name. */
int manager_bus_set_options(Manager *m, const char *address, const char *instance);

/* Connects, serves the objects and requests org.tapotun1.<instance>. Without a usable bus it logs one
 * warning and returns 0: the tunnels do not need it. Fails (logged) when another daemon owns the name. */
int manager_bus_start(Manager *m);
/* Releases the name, closes the connection and forgets the options (manager_free()). */
void manager_bus_stop(Manager *m);

/* Emits PropertiesChanged for P's state, remote address and last error. */
void manager_bus_peer_changed(Manager *m, Peer *p);
/* Emits PropertiesChanged for the Update* properties of the Manager. */
void manager_bus_update_changed(Manager *m);

Iface *manager_bus_find_iface(Manager *m, const char *name);
Peer *manager_bus_find_peer(Iface *i, const char *name);

/* Helpers shared by the -bus.c files. */
/* Appends P formatted ("10.10.0.1/24") to the strv *L; nothing when P is unset. With HOST, a full-length
 * prefix is written as a plain address ("10.10.0.2"). */
int bus_strv_append_prefix(char ***l, const TapotunPrefix *p, bool host);
/* The names of the offloads in BITS ("csum", "tso4", ...) as a strv. */
int bus_strv_from_offloads(uint32_t bits, char ***ret);
/* A JSON array of strings; NULL on OOM. */
json_t *bus_json_strv(char *const *l);
/* A JSON object {"no-route": N, ...} with every drop reason; NULL on OOM. */
json_t *bus_json_drops(const uint64_t drops[static _TAPOTUN_DROP_MAX]);
/* Appends an a{st} of every drop reason and its count. */
int bus_append_drops(sd_bus_message *reply, const uint64_t drops[static _TAPOTUN_DROP_MAX]);
