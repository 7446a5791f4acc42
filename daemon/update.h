/* SPDX-License-Identifier: MIT */
/* The update check (README, "Update check"): every interval, asks a release feed over HTTP(S) through
 * libcurl's multi interface on the manager's sd-event loop, with conditional requests, and reports a newer
 * version once in the log and on the bus. In install mode it also downloads the binary into a staging
 * file beside the target, verifies its SHA-256 and renames it into place; the restart is left to the
 * administrator or systemd. Nothing here is fatal: a failed check is logged and tried again next time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "conf.h"
#include "macro.h"

#define UPDATE_SHA256_SIZE 32u

typedef enum UpdateState {
        UPDATE_DISABLED,    /* no "update" in the configuration */
        UPDATE_IDLE,        /* configured, not checked yet */
        UPDATE_CHECKING,    /* asking the feed */
        UPDATE_DOWNLOADING, /* install mode: fetching the checksum and the binary */
        UPDATE_UP_TO_DATE,
        UPDATE_AVAILABLE,   /* a newer version exists (and is not installed) */
        UPDATE_INSTALLED,   /* the newer binary is in place; a restart runs it */
        UPDATE_FAILED,      /* the last check failed; the error says why */
        _UPDATE_STATE_MAX,
} UpdateState;

const char *update_state_to_string(UpdateState s);
UpdateState update_state_from_string(const char *s);

typedef struct Updater Updater;

/* The state, the available version, the error or the time of the last check changed. */
typedef void (*UpdaterChanged)(Updater *u, void *userdata);

int updater_new(sd_event *e, UpdaterChanged on_changed, void *userdata, Updater **ret);
Updater *updater_free(Updater *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Updater *, updater_free);

/* Applies CFG (copied). The settings in effect already change nothing; others abandon a transfer in
 * progress and check at once; a NULL url turns the check off. */
int updater_configure(Updater *u, const UpdateConfig *cfg);

UpdateState updater_state(const Updater *u);
/* The newer version the feed offers, or NULL. */
const char *updater_available(const Updater *u);
/* Why the last check failed, or NULL. */
const char *updater_error(const Updater *u);
/* CLOCK_REALTIME usec at the end of the last check, 0 for never. */
uint64_t updater_last_check(const Updater *u);
/* The feed, NULL when the check is off. */
const char *updater_url(const Updater *u);

/* The parts below are pure functions, tested on their own. */

/* Versions: 1 to 64 characters from 0-9 A-Z a-z . + ~, starting with a digit ("0.2.0", "1.0~rc1"). */
bool update_version_valid(const char *v);
/* <0, 0 or >0 as A is older than, the same as or newer than B, by dpkg's rules (digit runs compare as
 * numbers, "~" sorts before everything, even the end: 1.0~rc1 < 1.0 < 1.0.1). */
int update_version_compare(const char *a, const char *b);

/* What the feed says. */
typedef struct UpdateFeed {
        char *version;
        char *url; /* the binary, absolute; NULL when the feed names none */
        bool has_sha256;
        uint8_t sha256[UPDATE_SHA256_SIZE];
} UpdateFeed;

void update_feed_done(UpdateFeed *f);
/* Parses a feed (README, "Update check") fetched from BASE_URL, against which a relative "url" resolves.
 * On bad input returns -EBADMSG with what is wrong in *RET_ERROR (free() it); -ENOMEM. */
int update_feed_parse(const char *body, size_t size, const char *base_url, UpdateFeed *ret, char **ret_error);
/* The checksum in a sha256sum line: 64 hex digits, then the end or white space (and a file name).
 * -EBADMSG otherwise. */
int update_sha256sum_parse(const char *text, size_t size, uint8_t ret[static UPDATE_SHA256_SIZE]);
