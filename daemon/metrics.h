/* SPDX-License-Identifier: MIT */
/* Metrics and health (`metrics`, README "Metrics and health"): the texts the server transport serves on an
 * interface's metrics listener, rendered here because the daemon owns the peers and their counters; and,
 * for a client interface, the server transport's metrics-only instance that serves them. */
#pragma once

#include "iface.h"

/* The TapotunHost services render_metrics and render_health. */
int metrics_host_render(TapotunTunnel *t, char **ret_text, size_t *ret_len);
int metrics_host_health(TapotunTunnel *t, char **ret_text, size_t *ret_len);

/* A client interface with `metrics`: loads the server transport and starts its metrics-only instance
 * (a no-op for anything else). Logs its errors. */
int metrics_client_start(Iface *i);
void metrics_client_stop(Iface *i);
