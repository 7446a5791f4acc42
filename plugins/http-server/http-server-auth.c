/* SPDX-License-Identifier: MIT */
/* Authorisation of every request as soon as its head is complete, whatever its method: a request without
 * a valid x-api-key never reaches h2o or the PUT reader. Failures are logged without letting a flood of
 * them flood the log (AuthLog). */
#include <errno.h>
#include <stdio.h>

#include "http-server.h"

/* The same answer without its body, for HEAD. */
static const char RESPONSE_403_HEAD[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n"
                                        "Connection: close\r\n\r\n";

static void auth_log_flush(AuthLog *l) {
        Server *s = l->server;

        if (l->n > l->logged) {
                for (unsigned i = 0; i < l->n_sources; i++)
                        server_log(s, LOG_WARNING, 0, NULL,
                                   "%u failed authentication attempts from %s in the last %u s",
                                   l->sources[i].n, l->sources[i].name, AUTH_LOG_INTERVAL_USEC / 1000000u);
                if (l->other > 0)
                        server_log(s, LOG_WARNING, 0, NULL,
                                   "%u failed authentication attempts from other addresses in the last %u s",
                                   l->other, AUTH_LOG_INTERVAL_USEC / 1000000u);
        }
        l->begin = 0;
        l->n = l->logged = l->n_sources = l->other = 0;
        (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
}

static int on_auth_log_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        auth_log_flush(userdata);
        return 0;
}

int auth_log_init(AuthLog *l, Server *s) {
        int r;

        l->server = s;
        r = sd_event_add_time(s->host->event, &l->timer, CLOCK_MONOTONIC, 0, 0, on_auth_log_timer, l);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
}

void auth_log_done(AuthLog *l) {
        if (!l->server)
                return;
        auth_log_flush(l);
        l->timer = sd_event_source_disable_unref(l->timer);
}

/* The remote without the port, which changes with every attempt. */
static void conn_source(Conn *c, char *buf, size_t size) {
        const char *colon = strrchr(c->addr, ':');
        size_t host = colon ? (size_t) (colon - c->addr) : strlen(c->addr);

        snprintf(buf, size, "%.*s%s", (int) host, c->addr, c->remote + strlen(c->addr));
}

static void auth_log_failure(AuthLog *l, Conn *c, const char *why) {
        uint64_t now = server_now(l->server);
        char source[REMOTE_MAX];
        AuthSource *a = NULL;

        if (l->begin != 0 && now >= l->begin + AUTH_LOG_INTERVAL_USEC)
                auth_log_flush(l);
        if (l->begin == 0)
                l->begin = now;
        l->n++;

        conn_source(c, source, sizeof source);
        for (unsigned i = 0; i < l->n_sources && !a; i++)
                if (streq(l->sources[i].name, source))
                        a = &l->sources[i];
        if (!a && l->n_sources < AUTH_LOG_SOURCES) {
                a = &l->sources[l->n_sources++];
                *a = (AuthSource) {};
                snprintf(a->name, sizeof a->name, "%s", source);
        }
        if (a)
                a->n++;
        else
                l->other++;

        if (l->logged < AUTH_LOG_BURST) {
                l->logged++;
                server_log(l->server, LOG_WARNING, 0, NULL, "Rejected %s from %s: %s%s",
                           http_method_str(c->head.parser.method), c->remote, why,
                           l->logged == AUTH_LOG_BURST ? " (more are summed up every 10 s)" : "");
                return;
        }
        if (l->n == AUTH_LOG_BURST + 1) {
                (void) sd_event_source_set_time(l->timer, l->begin + AUTH_LOG_INTERVAL_USEC);
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
        }
}

int conn_authorize(Conn *c, TapotunPeer **ret) {
        Server *s = c->server;
        const char *key;
        TapotunPeer *peer;
        size_t len;
        int r;

        key = request_head_value(&c->head, c->sock->input->bytes, &c->head.api_key, &len);
        r = key ? s->host->peer_authenticate(s->tunnel, key, len, &peer) : -EACCES;
        if (r == -EACCES) {
                auth_log_failure(&s->auth_log, c, key ? "unknown x-api-key" : "missing x-api-key");
                conn_respond_close(c, c->head.parser.method == HTTP_HEAD ? RESPONSE_403_HEAD : RESPONSE_403);
                return r;
        }
        if (r < 0) {
                server_log(s, LOG_ERR, r, NULL, "Failed to authenticate a request from %s: %m", c->remote);
                conn_respond_close(c, RESPONSE_500);
                return r;
        }
        *ret = peer;
        return 0;
}
