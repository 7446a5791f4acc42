/* SPDX-License-Identifier: MIT */
#include <linux/capability.h>
#include <stdio.h>

#include "bus-names.h"
#include "iface-bus.h"
#include "log.h"
#include "manager-bus.h"
#include "peer-bus.h"

int manager_bus_set_options(Manager *m, const char *address, const char *instance) {
        if (instance && !tapotun_bus_instance_valid(instance))
                return log_error_errno(EINVAL,
                                       "Invalid instance name \"%.64s\": expected 1 to %u characters from "
                                       "A-Z a-z 0-9 _ -, not starting with a digit.",
                                       instance, TAPOTUN_BUS_INSTANCE_MAX);

        if (address) {
                m->bus_address = strdup(address);
                if (!m->bus_address)
                        return log_error_errno(ENOMEM, "Out of memory.");
        }
        if (instance) {
                m->bus_instance = strdup(instance);
                if (!m->bus_instance)
                        return log_error_errno(ENOMEM, "Out of memory.");
        }
        return 0;
}

/* The configuration file's name without its directory and ".json", made a valid bus name element: every
 * other character becomes "_", and a leading digit gets "_" in front. */
static int instance_from_path(const char *path, char **ret) {
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        size_t n = strlen(base), k = 0;
        char *s;

        if (n > 5 && streq(base + n - 5, ".json"))
                n -= 5;
        if (n == 0 || n >= TAPOTUN_BUS_INSTANCE_MAX)
                return -EINVAL;

        s = malloc(n + 2);
        if (!s)
                return -ENOMEM;
        if (base[0] >= '0' && base[0] <= '9')
                s[k++] = '_';
        for (size_t i = 0; i < n; i++) {
                char c = base[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '_' || c == '-';

                s[k++] = ok ? c : '_';
        }
        s[k] = '\0';
        *ret = s;
        return 0;
}

Iface *manager_bus_find_iface(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_ifaces; i++)
                if (streq(m->ifaces[i]->cfg->name, name))
                        return m->ifaces[i];
        return NULL;
}

Peer *manager_bus_find_peer(Iface *i, const char *name) {
        for (size_t j = 0; j < i->n_peers; j++)
                if (streq(i->peers[j]->name, name))
                        return i->peers[j];
        return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Helpers for the object files. */

int bus_strv_append_prefix(char ***l, const TapotunPrefix *p, bool host) {
        size_t n = strv_length(*l);
        char buf[64], **a;

        if (p->family == 0)
                return 0;
        wire_prefix_format(p, buf, sizeof buf);
        if (host && p->prefixlen == (p->family == AF_INET ? 32 : 128) && strchr(buf, '/'))
                *strchr(buf, '/') = '\0';
        a = reallocarray(*l, n + 2, sizeof(char *));
        if (!a)
                return -ENOMEM;
        *l = a;
        a[n] = strdup(buf);
        a[n + 1] = NULL;
        return a[n] ? 0 : -ENOMEM;
}

int bus_strv_from_offloads(uint32_t bits, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        char buf[64], *state = NULL;
        size_t n = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        wire_offload_format(bits, buf, sizeof buf);
        for (char *w = strtok_r(buf, ",", &state); w; w = strtok_r(NULL, ",", &state)) {
                char **a = reallocarray(l, n + 2, sizeof(char *));

                if (!a)
                        return -ENOMEM;
                l = a;
                l[n] = strdup(w);
                l[n + 1] = NULL;
                if (!l[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

json_t *bus_json_strv(char *const *l) {
        json_t *a = json_array();

        if (!a)
                return NULL;
        for (char *const *s = l; s && *s; s++)
                if (json_array_append_new(a, json_string(*s)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

json_t *bus_json_drops(const uint64_t drops[static _TAPOTUN_DROP_MAX]) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (int r = TAPOTUN_DROP_NO_ROUTE; r < _TAPOTUN_DROP_MAX; r++)
                if (json_object_set_new(o, drop_reason_to_string((TapotunDropReason) r),
                                        json_integer((json_int_t) drops[r])) < 0) {
                        json_decref(o);
                        return NULL;
                }
        return o;
}

int bus_append_drops(sd_bus_message *reply, const uint64_t drops[static _TAPOTUN_DROP_MAX]) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{st}");
        if (r < 0)
                return r;
        for (int k = TAPOTUN_DROP_NO_ROUTE; k < _TAPOTUN_DROP_MAX; k++) {
                r = sd_bus_message_append(reply, "{st}", drop_reason_to_string((TapotunDropReason) k),
                                          drops[k]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* ---------------------------------------------------------------------------------------------- */
/* org.tapotun1.Manager */

/* Mutating methods: the bus policy admits only root; this holds even where the policy is missing. */
static int bus_verify_privileged(sd_bus_message *message, sd_bus_error *error) {
        int r;

        r = sd_bus_query_sender_privilege(message, CAP_NET_ADMIN);
        if (r < 0)
                return r;
        if (r == 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "This needs root or CAP_NET_ADMIN.");
        return 0;
}

static int bus_find_iface_or_error(Manager *m, const char *name, Iface **ret, sd_bus_error *error) {
        Iface *i = manager_bus_find_iface(m, name);

        if (!i)
                return sd_bus_error_setf(error, TAPOTUN_BUS_ERROR_NO_SUCH_TUNNEL,
                                         "No tunnel \"%.64s\" in %s.", name, m->config_path);
        *ret = i;
        return 0;
}

static int bus_find_peer_or_error(Manager *m, const char *tunnel, const char *peer, Peer **ret,
                                  sd_bus_error *error) {
        Iface *i = NULL;
        Peer *p = NULL;
        int r;

        r = bus_find_iface_or_error(m, tunnel, &i, error);
        if (r < 0)
                return r;
        p = manager_bus_find_peer(i, peer);
        if (!p)
                return sd_bus_error_setf(error, TAPOTUN_BUS_ERROR_NO_SUCH_PEER,
                                         "Tunnel %s has no peer \"%.64s\".", i->cfg->name, peer);
        *ret = p;
        return 0;
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

/* The Update* properties: what the update check found (update.h). */
static int property_get_update(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Updater *u = ((Manager *) userdata)->updater;

        if (streq(property, "UpdateLastCheck"))
                return sd_bus_message_append(reply, "t", u ? updater_last_check(u) : UINT64_C(0));
        if (streq(property, "UpdateState"))
                return sd_bus_message_append(reply, "s",
                                             update_state_to_string(u ? updater_state(u) : UPDATE_DISABLED));
        if (streq(property, "UpdateAvailable"))
                return sd_bus_message_append(reply, "s", u ? updater_available(u) ?: "" : "");
        return sd_bus_message_append(reply, "s", u ? updater_error(u) ?: "" : "");
}

/* Describe()'s "update": null when the check is off. */
static int manager_bus_describe_update(Manager *m, json_t **ret) {
        Updater *u = m->updater;
        json_t *o;

        if (!u || updater_state(u) == UPDATE_DISABLED) {
                *ret = json_null();
                return 0;
        }
        o = json_pack("{s:s, s:s, s:s?, s:s?, s:o}",
                      "url", updater_url(u),
                      "state", update_state_to_string(updater_state(u)),
                      "available", updater_available(u),
                      "error", updater_error(u),
                      "last_check", updater_last_check(u) > 0 ? json_integer((json_int_t) updater_last_check(u))
                                                              : json_null());
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int bus_manager_method_list_tunnels(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sso)");
        if (r < 0)
                return r;
        for (size_t k = 0; k < m->n_ifaces; k++) {
                _cleanup_free_ char *path = NULL;
                Iface *i = m->ifaces[k];

                r = iface_bus_path(i, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(sso)", i->cfg->name, tapotun_mode_to_string(i->cfg->mode),
                                          path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int bus_manager_method_list_peers(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssso)");
        if (r < 0)
                return r;
        for (size_t k = 0; k < m->n_ifaces; k++)
                for (size_t j = 0; j < m->ifaces[k]->n_peers; j++) {
                        _cleanup_free_ char *path = NULL;
                        Peer *p = m->ifaces[k]->peers[j];

                        r = peer_bus_path(p, &path);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_append(reply, "(ssso)", m->ifaces[k]->cfg->name, p->name,
                                                  peer_state_to_string(p->state), path);
                        if (r < 0)
                                return r;
                }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int bus_manager_method_get_tunnel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        Manager *m = userdata;
        const char *name;
        Iface *i = NULL;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = bus_find_iface_or_error(m, name, &i, error);
        if (r < 0)
                return r;
        r = iface_bus_path(i, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "o", path);
}

static int bus_manager_method_get_peer(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        Manager *m = userdata;
        const char *tunnel, *name;
        Peer *p = NULL;
        int r;

        r = sd_bus_message_read(message, "ss", &tunnel, &name);
        if (r < 0)
                return r;
        r = bus_find_peer_or_error(m, tunnel, name, &p, error);
        if (r < 0)
                return r;
        r = peer_bus_path(p, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "o", path);
}

static int manager_bus_describe(Manager *m, char **ret) {
        json_auto_t *tunnels = NULL, *root = NULL;
        json_t *update;
        int r;

        tunnels = json_array();
        if (!tunnels)
                return -ENOMEM;
        for (size_t k = 0; k < m->n_ifaces; k++) {
                json_t *t;

                r = iface_bus_describe(m->ifaces[k], &t);
                if (r < 0)
                        return r;
                if (json_array_append_new(tunnels, t) < 0)
                        return -ENOMEM;
        }

        r = manager_bus_describe_update(m, &update);
        if (r < 0)
                return r;
        root = json_pack("{s:s?, s:s, s:s, s:O, s:o}",
                         "instance", m->bus_instance,
                         "version", PACKAGE_VERSION,
                         "config", m->config_path,
                         "tunnels", tunnels,
                         "update", update);
        if (!root)
                return -ENOMEM;
        *ret = json_dumps(root, JSON_COMPACT);
        return *ret ? 0 : -ENOMEM;
}

static int bus_manager_method_describe(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = manager_bus_describe(userdata, &text);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "s", text);
}

static int bus_manager_method_disconnect_peer(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *tunnel, *name;
        Peer *p = NULL;
        int r;

        r = sd_bus_message_read(message, "ss", &tunnel, &name);
        if (r < 0)
                return r;
        r = bus_verify_privileged(message, error);
        if (r < 0)
                return r;
        r = bus_find_peer_or_error(m, tunnel, name, &p, error);
        if (r < 0)
                return r;

        log_peer_full_errno(p->name, LOG_INFO, 0, "Disconnecting on request of %s.",
                            sd_bus_message_get_sender(message) ?: "?");
        p->iface->transport_ops->disconnect(p->iface->transport, p);
        return sd_bus_reply_method_return(message, NULL);
}

/* The problems, one per line, for the error message. */
static char *strv_join_lines(char *const *l) {
        size_t len = 1;
        char *s, *e;

        for (char *const *x = l; *x; x++)
                len += strlen(*x) + 1;
        s = e = malloc(len);
        if (!s)
                return NULL;
        *s = '\0';
        for (char *const *x = l; *x; x++)
                e = stpcpy(stpcpy(e, *x), x[1] ? "\n" : "");
        return s;
}

static int bus_manager_method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(strv_freep) char **problems = NULL;
        Manager *m = userdata;
        int r;

        r = bus_verify_privileged(message, error);
        if (r < 0)
                return r;

        log_info("Reloading on request of %s.", sd_bus_message_get_sender(message) ?: "?");
        r = manager_reload(m, &problems);
        if (r < 0) {
                _cleanup_free_ char *text = NULL;

                if (!problems || !problems[0])
                        return sd_bus_error_set_errnof(error, r, "Failed to reload %s: %m", m->config_path);
                text = strv_join_lines(problems);
                if (!text)
                        return -ENOMEM;
                return sd_bus_error_set(error, TAPOTUN_BUS_ERROR_INVALID_CONFIG, text);
        }

        /* Applied; what could not change without a restart comes back as warnings. */
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(reply, problems);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Instance", "s", NULL, offsetof(Manager, bus_instance),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ConfigFile", "s", NULL, offsetof(Manager, config_path),
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("UpdateState", "s", property_get_update, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdateAvailable", "s", property_get_update, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdateError", "s", property_get_update, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdateLastCheck", "t", property_get_update, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("ListTunnels",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sso)", tunnels),
                                bus_manager_method_list_tunnels,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPeers",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ssso)", peers),
                                bus_manager_method_list_peers,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetTunnel",
                                SD_BUS_ARGS("s", name),
                                SD_BUS_RESULT("o", path),
                                bus_manager_method_get_tunnel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetPeer",
                                SD_BUS_ARGS("s", tunnel, "s", peer),
                                SD_BUS_RESULT("o", path),
                                bus_manager_method_get_peer,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Describe",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("s", json),
                                bus_manager_method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        /* Privileged, checked in the handlers: sd-bus would otherwise ask for CAP_SYS_ADMIN. */
        SD_BUS_METHOD_WITH_ARGS("DisconnectPeer",
                                SD_BUS_ARGS("s", tunnel, "s", peer),
                                SD_BUS_NO_RESULT,
                                bus_manager_method_disconnect_peer,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("as", warnings),
                                bus_manager_method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---------------------------------------------------------------------------------------------- */
/* The connection. */

void manager_bus_peer_changed(Manager *m, Peer *p) {
        if (m->bus)
                (void) peer_bus_emit_changed(m->bus, p);
}

void manager_bus_update_changed(Manager *m) {
        if (m->bus)
                (void) sd_bus_emit_properties_changed(m->bus, TAPOTUN_BUS_PATH, TAPOTUN_BUS_MANAGER_INTERFACE,
                                                      "UpdateState", "UpdateAvailable", "UpdateError",
                                                      "UpdateLastCheck", NULL);
}

static int on_bus_disconnected(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        log_warning("Lost the connection to the bus; the tunnels keep running without the D-Bus interface.");
        return 0;
}

static int manager_bus_open(Manager *m, const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address)
                return sd_bus_open_system_with_description(ret, "tapotund");

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_description(bus, "tapotund");
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static int manager_bus_register(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, TAPOTUN_BUS_PATH, TAPOTUN_BUS_MANAGER_INTERFACE,
                                     manager_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, TAPOTUN_BUS_TUNNEL_PATH, TAPOTUN_BUS_TUNNEL_INTERFACE,
                                       iface_vtable, iface_bus_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, TAPOTUN_BUS_TUNNEL_PATH, iface_bus_node_enumerator, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, TAPOTUN_BUS_PEER_PATH, TAPOTUN_BUS_PEER_INTERFACE,
                                       peer_vtable, peer_bus_find, m);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, TAPOTUN_BUS_PEER_PATH, peer_bus_node_enumerator, m);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(bus, NULL, TAPOTUN_BUS_PATH);
        if (r < 0)
                return r;
        return sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                   "org.freedesktop.DBus.Local", "Disconnected", on_bus_disconnected, m);
}

int manager_bus_start(Manager *m) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *name = NULL;
        const char *address = m->bus_address;
        int r;

        if (!m->bus_instance) {
                r = instance_from_path(m->config_path, &m->bus_instance);
                if (r == -ENOMEM)
                        return log_error_errno(r, "Out of memory.");
                if (r < 0)
                        return log_error_errno(r, "Cannot make a bus name from the file name %s; name the "
                                               "instance with --instance=NAME.", m->config_path);
        }
        if (asprintf(&name, TAPOTUN_BUS_NAME_PREFIX "%s", m->bus_instance) < 0)
                return log_error_errno(ENOMEM, "Out of memory.");

        if (!address) {
                address = getenv(TAPOTUN_BUS_ADDRESS_ENV);
                if (address && !address[0])
                        address = NULL;
        }

        /* A router without D-Bus runs its tunnels all the same: one warning, then nothing more. */
        r = manager_bus_open(m, address, &bus);
        if (r < 0) {
                log_warning_errno(r, "Cannot connect to %s (%m); running without the D-Bus interface, so "
                                  "tapotunctl cannot see this daemon.", address ?: "the system bus");
                return 0;
        }

        r = manager_bus_register(m, bus);
        if (r < 0)
                return log_error_errno(r, "Failed to register the bus objects: %m");
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");

        r = sd_bus_request_name(bus, name, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Another process owns %s on the bus: is this configuration "
                                       "running twice? Use --instance=NAME for a second daemon.", name);
        if (r < 0) {
                log_warning_errno(r, "Cannot own %s on the bus (%m; is dbus/org.tapotun1.conf installed?); "
                                  "running without the D-Bus interface.", name);
                return 0;
        }

        log_debug("Owning %s on the bus.", name);
        m->bus = TAKE_PTR(bus);
        return 0;
}

void manager_bus_stop(Manager *m) {
        m->bus = sd_bus_flush_close_unref(m->bus);
        m->bus_address = mfree(m->bus_address);
        m->bus_instance = mfree(m->bus_instance);
}
