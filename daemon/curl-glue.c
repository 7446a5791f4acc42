/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

#include "curl-glue.h"
#include "macro.h"

/* One socket curl asked us to watch. Listed so teardown finds the ones curl never removed. */
typedef struct CurlSocket {
        CurlGlue *glue;
        curl_socket_t fd;
        sd_event_source *io;
        struct CurlSocket *prev, *next;
} CurlSocket;

struct CurlGlue {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *run_now; /* defer: curl's "timeout 0", without arming a timerfd */
        CurlSocket *sockets;
        bool in_timeouts; /* within socket_action(CURL_SOCKET_TIMEOUT) */
        CurlGlueFinished on_finished;
        void *userdata;
};

static void curl_socket_free(CurlSocket *s) {
        if (!s)
                return;
        if (s->prev)
                s->prev->next = s->next;
        else
                s->glue->sockets = s->next;
        if (s->next)
                s->next->prev = s->prev;
        sd_event_source_disable_unref(s->io);
        free(s);
}

/* Hands out the transfers the last socket_action() completed. Called right after it, outside every curl
 * call, so the callback may remove, free and add handles; a defer source for this would cost a turn of
 * the loop (and a system call) after every socket event. */
static void glue_drain(CurlGlue *g) {
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(g->multi, &left))) {
                CURL *easy = m->easy_handle;
                CURLcode result = m->data.result;

                /* M dies with the handle, which the callback typically removes. */
                if (m->msg == CURLMSG_DONE)
                        g->on_finished(g, easy, result, g->userdata);
        }
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        CurlSocket *s = userdata;
        CurlGlue *g = s->glue;
        int mask = 0, running;

        if (revents & EPOLLIN)
                mask |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;

        /* S may be freed in here (CURL_POLL_REMOVE); G outlives the call. */
        (void) curl_multi_socket_action(g->multi, fd, mask, &running);
        glue_drain(g);
        return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userdata, void *socketp) {
        CurlGlue *g = userdata;
        CurlSocket *s = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                /* Called before curl closes FD, so the IO source leaves epoll while FD is still ours. */
                curl_socket_free(s);
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (s) {
                if (sd_event_source_set_io_events(s->io, events) < 0)
                        return -1;
                return sd_event_source_set_enabled(s->io, SD_EVENT_ON) < 0 ? -1 : 0;
        }

        s = calloc(1, sizeof(CurlSocket));
        if (!s)
                return -1;
        *s = (CurlSocket) {
                .glue = g,
                .fd = fd,
                .next = g->sockets,
        };
        if (sd_event_add_io(g->event, &s->io, fd, events, on_io, s) < 0) {
                free(s);
                return -1;
        }
        (void) sd_event_source_set_description(s->io, "curl-io");
        if (g->sockets)
                g->sockets->prev = s;
        g->sockets = s;

        if (curl_multi_assign(g->multi, fd, s) != CURLM_OK) {
                curl_socket_free(s);
                return -1;
        }
        return 0;
}

static void glue_run_timeouts(CurlGlue *g) {
        int running;

        g->in_timeouts = true;
        (void) curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        g->in_timeouts = false;
        glue_drain(g);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        glue_run_timeouts(userdata);
        return 0;
}

static int on_run_now(sd_event_source *source, void *userdata) {
        glue_run_timeouts(userdata);
        return 0;
}

/* curl asks for "now" (0) thousands of times a second while a transfer pauses and resumes, each time
 * followed by "no timeout" (-1): a defer source serves those, since arming and disarming a timerfd is a
 * costly system call (and a VM exit under a hypervisor). But sd-event dispatches a defer source ahead of
 * every io source of its priority (it has been pending since it was created), so one that curl re-arms
 * from its own timeout handling would run forever and starve the sockets: "now" asked from within the
 * timeout handling goes to the timer, which takes its turn behind the io already pending. */
static int on_timer_change(CURLM *multi, long timeout_ms, void *userdata) {
        CurlGlue *g = userdata;

        if (timeout_ms <= 0 && sd_event_source_set_enabled(g->timer, SD_EVENT_OFF) < 0)
                return -1;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(g->run_now, SD_EVENT_OFF) < 0 ? -1 : 0;
        if (timeout_ms == 0 && !g->in_timeouts)
                return sd_event_source_set_enabled(g->run_now, SD_EVENT_ONESHOT) < 0 ? -1 : 0;

        if (sd_event_source_set_enabled(g->run_now, SD_EVENT_OFF) < 0 ||
            sd_event_source_set_time_relative(g->timer, (uint64_t) timeout_ms * 1000u) < 0)
                return -1;
        return sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
        if (!g)
                return NULL;

        /* Unwatch the sockets while they are still open, and make curl forget them so its teardown does
         * not call back with freed pointers. */
        while (g->sockets) {
                if (g->multi)
                        (void) curl_multi_assign(g->multi, g->sockets->fd, NULL);
                curl_socket_free(g->sockets);
        }
        if (g->multi)
                curl_multi_cleanup(g->multi);

        sd_event_source_disable_unref(g->timer);
        sd_event_source_disable_unref(g->run_now);
        sd_event_unref(g->event);
        return mfree(g);
}

static inline void curl_glue_freep(CurlGlue **g) {
        curl_glue_free(*g);
}

int curl_glue_new(sd_event *e, CurlGlueFinished on_finished, void *userdata, CurlGlue **ret) {
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;
        int r;

        g = calloc(1, sizeof(CurlGlue));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(e);
        g->on_finished = on_finished;
        g->userdata = userdata;

        g->multi = curl_multi_init();
        if (!g->multi)
                return -ENOMEM;

        /* curl's timeouts are in milliseconds and mostly "as soon as possible": no coalescing slack. */
        r = sd_event_add_time(e, &g->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, g);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->timer, "curl-timer");

        r = sd_event_add_defer(e, &g->run_now, on_run_now, g);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(g->run_now, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->run_now, "curl-run-now");

        if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_timer_change) != CURLM_OK ||
            curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK ||
            /* Transfers that ask for HTTP/2 share one connection (libcurl's default since 7.62; said
             * here because the HTTP/2 mode depends on it). */
            curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX) != CURLM_OK)
                return -EINVAL;

        *ret = TAKE_PTR(g);
        return 0;
}

int curl_glue_add(CurlGlue *g, CURL *easy) {
        if (curl_multi_add_handle(g->multi, easy) != CURLM_OK)
                return -EIO;
        return 0;
}

void curl_glue_run_now(CurlGlue *g) {
        if (sd_event_source_get_enabled(g->run_now, NULL) <= 0)
                return;
        (void) sd_event_source_set_enabled(g->run_now, SD_EVENT_OFF);
        glue_run_timeouts(g);
}

void curl_glue_remove_and_free(CurlGlue *g, CURL *easy) {
        if (!easy)
                return;
        (void) curl_multi_remove_handle(g->multi, easy);
        curl_easy_cleanup(easy);
}
