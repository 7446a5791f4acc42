/* SPDX-License-Identifier: MIT */
/* Finds, dlopen()s and checks plugins. */
#pragma once

#include <tapotun/plugin.h>

#include "macro.h"

typedef struct Plugin {
        void *handle;
        char *path;
        const TapotunPlugin *desc;
        bool initialized;
} Plugin;

/* The directories searched, in order: $TAPOTUN_PLUGIN_PATH (colon-separated) when set, else PLUGINDIR. */
const char *plugin_search_path(void);

/* Loads NAME.so from the search path (or PATH when NAME contains a '/'), checks its descriptor against
 * the ABI and KIND, and runs its init() with HOST. Logs why it refuses: -ENOENT (not found), -ELIBBAD
 * (dlopen failed), -EPROTO (no descriptor, wrong ABI, wrong kind, missing ops), or init()'s error. */
int plugin_load(const char *name, TapotunPluginKind kind, const TapotunHost *host, Plugin **ret);

/* Runs done() and dlclose()s. NULL-safe. */
Plugin *plugin_unload(Plugin *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Plugin *, plugin_unload);

const char *plugin_kind_to_string(TapotunPluginKind k);
TapotunPluginKind plugin_kind_from_string(const char *s);
