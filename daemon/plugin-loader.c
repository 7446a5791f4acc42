/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdio.h>

#include "log.h"
#include "plugin-loader.h"

static const char *const plugin_kind_table[_TAPOTUN_PLUGIN_KIND_MAX] = {
        [TAPOTUN_PLUGIN_SERVER_TRANSPORT] = "server-transport",
        [TAPOTUN_PLUGIN_CLIENT_TRANSPORT] = "client-transport",
        [TAPOTUN_PLUGIN_ROUTER] = "router",
};

DEFINE_STRING_TABLE_LOOKUP(plugin_kind, TapotunPluginKind);

static const char *strna_kind(TapotunPluginKind k) {
        const char *s = plugin_kind_to_string(k);
        return s ?: "unknown";
}

const char *plugin_search_path(void) {
        const char *e = getenv("TAPOTUN_PLUGIN_PATH");

        return e && *e ? e : PLUGINDIR;
}

static int plugin_find(const char *name, char **ret) {
        const char *path = plugin_search_path();

        if (strchr(name, '/')) {
                char *p = strdup(name);
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }

        for (const char *d = path; *d;) {
                size_t n = strcspn(d, ":");
                char *f;

                if (n > 0) {
                        if (asprintf(&f, "%.*s/%s.so", (int) n, d, name) < 0)
                                return -ENOMEM;
                        if (access(f, F_OK) == 0) {
                                *ret = f;
                                return 0;
                        }
                        free(f);
                }
                d += n;
                if (*d == ':')
                        d++;
        }
        return -ENOENT;
}

/* The smallest descriptor and ops this daemon can use: every field up to the last one it calls. */
#define DESC_MIN_SIZE (offsetof(TapotunPlugin, ops) + sizeof(void *))

static int plugin_check(const char *name, const char *path, const TapotunPlugin *d, TapotunPluginKind kind) {
        const uint32_t *ops_version;

        if (!d)
                return log_error_errno(EPROTO, "Plugin '%s' (%s) does not export '%s'.", name, path,
                                       TAPOTUN_PLUGIN_SYMBOL);
        if (d->abi_major != TAPOTUN_PLUGIN_ABI_MAJOR)
                return log_error_errno(EPROTO, "Plugin '%s' (%s) was built for plugin ABI %u, this daemon "
                                       "speaks ABI %u; rebuild the plugin.",
                                       name, path, d->abi_major, TAPOTUN_PLUGIN_ABI_MAJOR);
        if (d->struct_size < DESC_MIN_SIZE)
                return log_error_errno(EPROTO, "Plugin '%s' (%s) has a truncated descriptor (%u bytes, "
                                       "at least %zu needed).",
                                       name, path, d->struct_size, DESC_MIN_SIZE);
        if (!d->name || !d->version)
                return log_error_errno(EPROTO, "Plugin '%s' (%s) has no name or version.", name, path);
        if (d->kind != kind)
                return log_error_errno(EPROTO, "Plugin '%s' (%s) is a %s plugin, a %s plugin is needed here.",
                                       name, path, strna_kind(d->kind), plugin_kind_to_string(kind));
        ops_version = d->ops;
        if (!ops_version || *ops_version == 0)
                return log_error_errno(EPROTO, "Plugin '%s' (%s) has no %s ops.", name, path,
                                       plugin_kind_to_string(kind));

        if (kind == TAPOTUN_PLUGIN_ROUTER) {
                const TapotunRouterOps *o = d->ops;
                if (!o->instance_new || !o->instance_free || !o->route)
                        return log_error_errno(EPROTO, "Plugin '%s' (%s) lacks a required router operation.",
                                               name, path);
        } else {
                const TapotunTransportOps *o = d->ops;
                if (!o->instance_new || !o->instance_free || !o->disconnect)
                        return log_error_errno(EPROTO,
                                               "Plugin '%s' (%s) lacks a required transport operation.",
                                               name, path);
        }
        return 0;
}

int plugin_load(const char *name, TapotunPluginKind kind, const TapotunHost *host, Plugin **ret) {
        _cleanup_(plugin_unloadp) Plugin *p = NULL;
        int r;

        p = calloc(1, sizeof(Plugin));
        if (!p)
                return log_error_errno(ENOMEM, "Out of memory.");

        r = plugin_find(name, &p->path);
        if (r == -ENOENT)
                return log_error_errno(r, "Plugin '%s' not found in %s.", name, plugin_search_path());
        if (r < 0)
                return log_error_errno(r, "Out of memory.");

        p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
        if (!p->handle)
                return log_error_errno(ELIBBAD, "Plugin '%s': cannot load %s: %s", name, p->path, dlerror());

        p->desc = dlsym(p->handle, TAPOTUN_PLUGIN_SYMBOL);
        r = plugin_check(name, p->path, p->desc, kind);
        if (r < 0)
                return r;

        if (p->desc->init) {
                r = p->desc->init(host);
                if (r < 0)
                        return log_error_errno(r, "Plugin '%s' (%s) failed to initialise: %m", name, p->path);
        }
        p->initialized = true;

        log_debug("Loaded %s plugin '%s' %s from %s.", plugin_kind_to_string(kind), p->desc->name,
                  p->desc->version, p->path);
        *ret = TAKE_PTR(p);
        return 0;
}

Plugin *plugin_unload(Plugin *p) {
        if (!p)
                return NULL;
        if (p->initialized && p->desc->done)
                p->desc->done();
        if (p->handle)
                (void) dlclose(p->handle);
        free(p->path);
        return mfree(p);
}
