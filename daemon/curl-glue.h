/* SPDX-License-Identifier: MIT */
/* A libcurl multi handle driven by sd-event on the caller's thread, after systemd's curl-util.c: one IO
 * source per curl socket, one timer (a defer source when curl asks for "now"), and finished transfers
 * handed out right after the curl call that finished them, so the callback runs outside every curl call
 * and may remove, free and add handles. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

typedef struct CurlGlue CurlGlue;

/* EASY has finished with RESULT; it is still attached to the multi handle. */
typedef void (*CurlGlueFinished)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

int curl_glue_new(sd_event *e, CurlGlueFinished on_finished, void *userdata, CurlGlue **ret);
CurlGlue *curl_glue_free(CurlGlue *g);

int curl_glue_add(CurlGlue *g, CURL *easy);
/* Runs what curl asked to run "now" (after curl_easy_pause(), say) at once instead of on the next turn
 * of the loop. Not from within a curl callback. */
void curl_glue_run_now(CurlGlue *g);
/* Detaches EASY (NULL is fine) from the multi handle and frees it. Not from within a curl callback. */
void curl_glue_remove_and_free(CurlGlue *g, CURL *easy);
