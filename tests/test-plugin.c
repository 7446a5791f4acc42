/* SPDX-License-Identifier: MIT */
/* A plugin for test-plugin-loader, built once per VARIANT to exercise each way the loader refuses one. */
#include <errno.h>
#include <tapotun/plugin.h>

__attribute__((unused)) static int route(void *instance, int from, const uint8_t *packet, size_t len) {
        return TAPOTUN_ROUTE_TUNNEL;
}

static int instance_new(const TapotunHost *host, const TapotunIfaceConfig *cfg, void **ret) {
        *ret = (void *) host;
        return 0;
}

static void instance_free(void *instance) {
}

static int init_count;

static int init(const TapotunHost *host) {
        if (host->version != TAPOTUN_HOST_VERSION || host->struct_size < sizeof(TapotunHost))
                return -EPROTO;
#if VARIANT == 6
        return -ENOTSUP;
#else
        init_count++;
        return 0;
#endif
}

static void done(void) {
        init_count--;
}

static const TapotunRouterOps ops = {
        .version = TAPOTUN_ROUTER_OPS_VERSION,
        .instance_new = instance_new,
        .instance_free = instance_free,
#if VARIANT != 5
        .route = route,
#endif
};

/* VARIANT 3 exports its descriptor under the wrong name. */
#if VARIANT == 3
#  define DESCRIPTOR tapotun_plugin_misspelt
#else
#  define DESCRIPTOR tapotun_plugin
#endif

TAPOTUN_PLUGIN_EXPORT const TapotunPlugin DESCRIPTOR = {
#  if VARIANT == 1
        .abi_major = TAPOTUN_PLUGIN_ABI_MAJOR + 1,
#  else
        .abi_major = TAPOTUN_PLUGIN_ABI_MAJOR,
#  endif
#  if VARIANT == 4
        .struct_size = 8,
#  else
        .struct_size = sizeof(TapotunPlugin),
#  endif
        .name = "test",
        .version = "1.0",
#  if VARIANT == 2
        .kind = TAPOTUN_PLUGIN_SERVER_TRANSPORT,
#  else
        .kind = TAPOTUN_PLUGIN_ROUTER,
#  endif
        .init = init,
        .done = done,
        .ops = &ops,
};

/* Lets the test see init()/done() run: 1 while loaded. */
TAPOTUN_PLUGIN_EXPORT int test_plugin_init_count(void);
int test_plugin_init_count(void) {
        return init_count;
}
