/* SPDX-License-Identifier: MIT */
/* The JSON configuration: a root array of interface objects, or an object with "interfaces" and "update"
 * (README, "Configuration"). */
#pragma once

#include <stddef.h>

#include <tapotun/plugin.h>

#include "macro.h"

/* The update check (README, "Update check"); off when url is NULL. */
typedef struct UpdateConfig {
        char *url;              /* the release feed, http:// or https:// */
        uint64_t interval_usec;
        uint64_t timeout_usec;
        bool install;           /* download, verify and put the new binary in place; else only report */
        char *path;             /* where to install; NULL: the running binary */
} UpdateConfig;

typedef struct Config {
        TapotunIfaceConfig *ifaces;
        size_t n_ifaces;
        UpdateConfig update;
} Config;

/* Defaults */
#define CONFIG_DEFAULT_MTU 1500u
#define CONFIG_DEFAULT_LISTEN "127.0.0.1"
#define CONFIG_DEFAULT_PEER_TIMEOUT_USEC (180u * 1000000ull)
#define CONFIG_DEFAULT_MAX_CONNECTIONS 4096u
#define CONFIG_DEFAULT_MAX_PUTS 4u
#define CONFIG_DEFAULT_QUEUE_BYTES (12u * 1024u * 1024u)
#define CONFIG_DEFAULT_MARK_PRIORITY 10000u
#define CONFIG_DEFAULT_UPDATE_INTERVAL_USEC (21600u * 1000000ull)
#define CONFIG_DEFAULT_UPDATE_TIMEOUT_USEC (30u * 1000000ull)
/* Lowers the smallest accepted update "interval" (seconds), for the tests only. */
#define CONFIG_UPDATE_MIN_INTERVAL_ENV "TAPOTUN_UPDATE_MIN_INTERVAL"

/* Parses and validates TEXT; LABEL names it in messages (usually the file name). On success returns 0
 * and *RET. On failure returns -EINVAL and, in *RET_ERRORS, a NULL-terminated array of every problem
 * found, each "LABEL: PATH: message" (or "LABEL:LINE:COLUMN: message" for JSON syntax), translated.
 * Free it with strv_free(). Other negative errnos for OOM. */
int config_parse(const char *text, size_t size, const char *label, Config **ret, char ***ret_errors);

/* The same for a file; a file that cannot be read is one error in *RET_ERRORS (-errno returned). */
int config_load(const char *path, Config **ret, char ***ret_errors);

Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* The interface with NAME, or NULL. */
const TapotunIfaceConfig *config_find(const Config *c, const char *name);

/* Whether A and B ask for the same update check. */
bool update_config_equal(const UpdateConfig *a, const UpdateConfig *b);
/* Deep copy of SRC into *DEST; update_config_done() frees what it holds. */
int update_config_copy(UpdateConfig *dest, const UpdateConfig *src);
void update_config_done(UpdateConfig *c);

const char *tapotun_mode_to_string(TapotunMode m);
TapotunMode tapotun_mode_from_string(const char *s);

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
size_t strv_length(char *const *l);
