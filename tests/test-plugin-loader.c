/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <glib.h>

#include "log.h"
#include "plugin-loader.h"

static const TapotunHost host = {
        .version = TAPOTUN_HOST_VERSION,
        .struct_size = sizeof(TapotunHost),
};

static void test_load_good(void) {
        _cleanup_(plugin_unloadp) Plugin *p = NULL;
        int (*count)(void);
        const TapotunRouterOps *ops;
        void *inst = NULL;

        g_assert_cmpint(plugin_load("test-plugin-good", TAPOTUN_PLUGIN_ROUTER, &host, &p), ==, 0);
        g_assert_nonnull(p);
        g_assert_cmpstr(p->desc->name, ==, "test");
        g_assert_true(g_str_has_suffix(p->path, "/test-plugin-good.so"));

        count = (int (*)(void)) dlsym(p->handle, "test_plugin_init_count");
        g_assert_nonnull(count);
        g_assert_cmpint(count(), ==, 1);

        ops = p->desc->ops;
        g_assert_cmpint(ops->instance_new(&host, NULL, &inst), ==, 0);
        g_assert_true(inst == &host);
        g_assert_cmpint(ops->route(inst, 0, NULL, 0), ==, TAPOTUN_ROUTE_TUNNEL);
        ops->instance_free(inst);
}

static void test_load_by_path(void) {
        _cleanup_(plugin_unloadp) Plugin *p = NULL;
        g_autofree char *path = g_build_filename(g_getenv("TAPOTUN_BUILD_ROOT"), "tests",
                                                 "test-plugin-good.so", NULL);

        g_assert_cmpint(plugin_load(path, TAPOTUN_PLUGIN_ROUTER, &host, &p), ==, 0);
        g_assert_cmpstr(p->path, ==, path);
}

typedef struct RefuseCase {
        const char *plugin;
        TapotunPluginKind kind;
        int error;
        const char *message;
} RefuseCase;

static const RefuseCase refuse_cases[] = {
        { "test-plugin-missing", TAPOTUN_PLUGIN_ROUTER, -ENOENT, "not found in" },
        { "test-plugin-abi", TAPOTUN_PLUGIN_ROUTER, -EPROTO, "was built for plugin ABI 2, this daemon speaks ABI 1" },
        { "test-plugin-kind", TAPOTUN_PLUGIN_ROUTER, -EPROTO, "is a server-transport plugin, a router plugin is needed" },
        { "test-plugin-nosym", TAPOTUN_PLUGIN_ROUTER, -EPROTO, "does not export 'tapotun_plugin'" },
        { "test-plugin-short", TAPOTUN_PLUGIN_ROUTER, -EPROTO, "has a truncated descriptor" },
        { "test-plugin-noops", TAPOTUN_PLUGIN_ROUTER, -EPROTO, "lacks a required router operation" },
        { "test-plugin-initfail", TAPOTUN_PLUGIN_ROUTER, -ENOTSUP, "failed to initialise" },
        { "test-plugin-good", TAPOTUN_PLUGIN_CLIENT_TRANSPORT, -EPROTO, "is a router plugin, a client-transport plugin is needed" },
        { "test-plugin-notelf", TAPOTUN_PLUGIN_ROUTER, -ELIBBAD, "cannot load" },
};

static void test_refuse(gconstpointer data) {
        const RefuseCase *c = data;
        g_autofree char *pattern = NULL;

        if (g_test_subprocess()) {
                Plugin *p = NULL;
                int r = plugin_load(c->plugin, c->kind, &host, &p);

                g_assert_cmpint(r, ==, c->error);
                g_assert_null(p);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        pattern = g_strdup_printf("*%s*", c->message);
        g_test_trap_assert_stderr(pattern);
}

int main(int argc, char *argv[]) {
        g_autofree char *notelf = NULL;

        g_test_init(&argc, &argv, NULL);
        log_open();

        /* A file with the plugin name that is not a shared object. */
        notelf = g_build_filename(g_getenv("TAPOTUN_BUILD_ROOT"), "tests", "test-plugin-notelf.so", NULL);
        g_assert_true(g_file_set_contents(notelf, "not an ELF file\n", -1, NULL));

        g_test_add_func("/plugin-loader/load/good", test_load_good);
        g_test_add_func("/plugin-loader/load/by-path", test_load_by_path);
        for (size_t i = 0; i < G_N_ELEMENTS(refuse_cases); i++) {
                g_autofree char *name = g_strdup_printf("/plugin-loader/load/refuse-%s-%s",
                                                        refuse_cases[i].plugin + strlen("test-plugin-"),
                                                        plugin_kind_to_string(refuse_cases[i].kind));
                g_test_add_data_func(name, &refuse_cases[i], test_refuse);
        }
        return g_test_run();
}
