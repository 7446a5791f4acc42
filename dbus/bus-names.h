/* SPDX-License-Identifier: MIT */
/* Names on the bus, shared by tapotund and tapotunctl. The API documents in this directory describe the
 * objects behind them. */
#pragma once

#include <stdbool.h>
#include <string.h>

/* Each daemon owns TAPOTUN_BUS_NAME_PREFIX + its instance name, e.g. "org.tapotun1.corp0" for
 * /etc/tapotun/corp0.json; dbus/org.tapotun1.conf lets root own exactly these names. */
#define TAPOTUN_BUS_NAME_PREFIX "org.tapotun1."
/* Longest instance name: a bus name has at most 255 characters. */
#define TAPOTUN_BUS_INSTANCE_MAX 200u

#define TAPOTUN_BUS_PATH "/org/tapotun1"
/* A tunnel is TAPOTUN_BUS_TUNNEL_PATH/<name>, a peer TAPOTUN_BUS_PEER_PATH/<tunnel>/<peer>, each name
 * escaped with sd_bus_path_encode(). */
#define TAPOTUN_BUS_TUNNEL_PATH TAPOTUN_BUS_PATH "/tunnel"
#define TAPOTUN_BUS_PEER_PATH TAPOTUN_BUS_PATH "/peer"

#define TAPOTUN_BUS_MANAGER_INTERFACE "org.tapotun1.Manager"
#define TAPOTUN_BUS_TUNNEL_INTERFACE "org.tapotun1.Tunnel"
#define TAPOTUN_BUS_PEER_INTERFACE "org.tapotun1.Peer"

#define TAPOTUN_BUS_ERROR_NO_SUCH_TUNNEL "org.tapotun1.Error.NoSuchTunnel"
#define TAPOTUN_BUS_ERROR_NO_SUCH_PEER "org.tapotun1.Error.NoSuchPeer"
#define TAPOTUN_BUS_ERROR_INVALID_CONFIG "org.tapotun1.Error.InvalidConfig"

/* The daemon's bus address when it is not given with --bus-address (default: the system bus). */
#define TAPOTUN_BUS_ADDRESS_ENV "TAPOTUN_BUS_ADDRESS"

/* An instance name is one element of a bus name: 1 to TAPOTUN_BUS_INSTANCE_MAX characters from
 * A-Z a-z 0-9 _ -, not starting with a digit. */
static inline bool tapotun_bus_instance_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > TAPOTUN_BUS_INSTANCE_MAX || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}
