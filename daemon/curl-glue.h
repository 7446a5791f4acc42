/* SPDX-License-Identifier: MIT */
/* A libcurl multi handle driven by sd-event on the caller's thread, after systemd's curl-util.c: one IO
 * source per curl socket, one timer, and finished transfers handed out from a defer source, so the
 * callback runs outside every curl call and may remove, free and add handles. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

typedef struct CurlGlue CurlGlue;

/* EASY has finished with RESULT; it is still attached to the multi handle. */
typedef void (*CurlGlueFinished)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

int curl_glue_new(sd_event *e, CurlGlueFinished on_finished, void *userdata, CurlGlue **ret);
CurlGlue *curl_glue_free(CurlGlue *g);

int curl_glue_add(CurlGlue *g, CURL *easy);
/* Detaches EASY (NULL is fine) from the multi handle and frees it. Not from within a curl callback. */
void curl_glue_remove_and_free(CurlGlue *g, CURL *easy);
