/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <openssl/sha.h>

#include "mock-host.h"

#define PLUGIN_LOG_DOMAIN "tapotun-plugin"

__attribute__((format(printf, 5, 0)))
static int mock_logv(int level, int error, const char *plugin, const char *object, const char *format,
                     va_list ap) {
        char buf[1024];

        if (error < 0)
                error = -error;
        errno = error;
        vsnprintf(buf, sizeof buf, format, ap);
        if (level <= LOG_INFO || g_getenv("TAPOTUN_TEST_DEBUG"))
                g_printerr("# [%s%s%s] %s\n", plugin ? plugin : "?", object ? " " : "", object ? object : "",
                           buf);
        return -error;
}

static int mock_peer_authenticate(TapotunTunnel *t, const char *key, size_t key_len, TapotunPeer **ret) {
        unsigned char md[SHA_DIGEST_LENGTH];
        char hex[41];

        SHA1((const unsigned char *) key, key_len, md);
        for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        for (guint i = 0; i < t->peers->len; i++) {
                TapotunPeer *p = g_ptr_array_index(t->peers, i);
                if (strcmp(p->token_hex, hex) == 0) {
                        *ret = p;
                        return 0;
                }
        }
        return -EACCES;
}

static const char *mock_peer_name(TapotunPeer *p) {
        return p->name;
}

static const char *header_find(const TapotunHeader *h, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (g_ascii_strcasecmp(h[i].name, name) == 0)
                        return h[i].value;
        return NULL;
}

static int mock_peer_accept(TapotunPeer *p, const TapotunHeader *req, size_t n_req, TapotunHeader *ret,
                            size_t *n_ret) {
        const char *o = header_find(req, n_req, "x-tun-offload");

        g_free(p->offload_request);
        p->offload_request = g_strdup(o);
        p->n_accepts++;
        if (*n_ret < 2)
                return -ENOBUFS;
        ret[0] = (TapotunHeader) { "x-tun-conf", p->conf_b64 };
        ret[1] = (TapotunHeader) { "x-tun-offload", "csum,tso4,tso6,ecn" };
        *n_ret = 2;
        return 0;
}

static int mock_peer_request_headers(TapotunPeer *p, TapotunHeader *ret, size_t *n_ret) {
        if (*n_ret < 1)
                return -ENOBUFS;
        ret[0] = (TapotunHeader) { "x-tun-offload", "csum,tso4,tso6,ecn,uso4,uso6" };
        *n_ret = 1;
        return 0;
}

static int mock_peer_configure(TapotunPeer *p, const TapotunHeader *resp, size_t n_resp) {
        const char *c = header_find(resp, n_resp, "x-tun-conf");

        p->n_configures++;
        if (!c)
                return -EBADMSG;
        g_free(p->configured_conf);
        p->configured_conf = g_strdup(c);
        g_free(p->offload_request);
        p->offload_request = g_strdup(header_find(resp, n_resp, "x-tun-offload"));
        return p->configure_result;
}

static int mock_stream_attach(TapotunPeer *p, TapotunStreamDirection dir, void *stream, TapotunWakeFn wake,
                              const char *remote) {
        p->n_connected++;
        g_free(p->last_remote);
        p->last_remote = g_strdup(remote);
        if (dir == TAPOTUN_STREAM_TX) {
                void *old = p->tx_stream;
                TapotunWakeFn old_wake = p->tx_wake;

                p->tx_stream = stream;
                p->tx_wake = wake;
                if (old && old_wake)
                        old_wake(old);
        } else {
                g_ptr_array_add(p->rx_streams, stream);
                g_hash_table_insert(p->wakes, stream, (gpointer) wake);
        }
        return 0;
}

static void mock_stream_return(TapotunPeer *p, void *stream);

static void mock_stream_detach(TapotunPeer *p, void *stream, const char *reason) {
        mock_stream_return(p, stream);
        p->n_disconnected++;
        g_free(p->last_reason);
        p->last_reason = g_strdup(reason);
        if (p->tx_stream == stream) {
                p->tx_stream = NULL;
                p->tx_wake = NULL;
        }
        g_ptr_array_remove(p->rx_streams, stream);
        g_hash_table_remove(p->wakes, stream);
}

/* Moves the oldest queued frame into OUT as a wire frame when it fits in ROOM bytes; returns its size, or
 * 0 when nothing is queued or it does not fit. */
static size_t mock_pop_frame(TapotunPeer *p, uint8_t *out, size_t room) {
        GBytes *b = g_queue_peek_head(&p->tx);
        gsize len;
        const uint8_t *d;

        if (!b)
                return 0;
        d = g_bytes_get_data(b, &len);
        if (2 + len > room)
                return 0;
        out[0] = (len - 12) & 0xff;
        out[1] = (len - 12) >> 8;
        memcpy(out + 2, d, len);
        g_bytes_unref(g_queue_pop_head(&p->tx));
        return 2 + len;
}

static ssize_t mock_stream_pull(TapotunPeer *p, void *stream, void *buf, size_t size) {
        uint8_t *out = buf;
        size_t n = 0, w;

        if (stream != p->tx_stream)
                return -ESTALE;
        while ((w = mock_pop_frame(p, out + n, size - n)) > 0)
                n += w;
        return (ssize_t) n;
}

/* As the daemon does: whole frames as pieces of their own (here all in COPY), out until returned. */
static ssize_t mock_stream_lend(TapotunPeer *p, void *stream, void *copy, size_t size, struct iovec *iov,
                                size_t *n_iov) {
        uint8_t *out = copy;
        size_t n = 0, k = 0, w;

        if (stream != p->tx_stream)
                return -ESTALE;
        g_assert_null(p->loan_stream);
        while (k < *n_iov && (w = mock_pop_frame(p, out + n, size - n)) > 0) {
                iov[k++] = (struct iovec) { out + n, w };
                n += w;
        }
        *n_iov = k;
        if (n > 0) {
                p->loan_stream = stream;
                p->n_lends++;
        }
        return (ssize_t) n;
}

static void mock_stream_return(TapotunPeer *p, void *stream) {
        if (p->loan_stream != stream)
                return;
        p->loan_stream = NULL;
        p->n_returns++;
}

static int mock_stream_receive(TapotunPeer *p, void *stream, const void *frame, size_t len) {
        g_ptr_array_add(p->received, g_bytes_new(frame, len));
        return p->congested ? 1 : 0;
}

static int mock_take_listen_fd(TapotunTunnel *t) {
        int fd = t->listen_fd;

        if (fd < 0)
                return -ENOENT;
        t->listen_fd = -1;
        return fd;
}

static size_t mock_tunnel_n_peers(TapotunTunnel *t) {
        return t->peers->len;
}

static TapotunPeer *mock_tunnel_peer(TapotunTunnel *t, size_t i) {
        return i < t->peers->len ? g_ptr_array_index(t->peers, i) : NULL;
}

static void mock_peer_event(TapotunPeer *p, TapotunPeerEvent event, const char *detail) {
        if (event != TAPOTUN_PEER_BACKOFF)
                return;
        p->n_backoffs++;
        g_free(p->last_backoff);
        p->last_backoff = g_strdup(detail);
}

static TapotunPeer *peer_new(size_t index, const char *name, const char *token_hex) {
        TapotunPeer *p = g_new0(TapotunPeer, 1);

        p->index = index;
        p->name = g_strdup(name);
        g_strlcpy(p->token_hex, token_hex ? token_hex : "", sizeof p->token_hex);
        g_queue_init(&p->tx);
        p->received = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        p->rx_streams = g_ptr_array_new();
        p->wakes = g_hash_table_new(NULL, NULL);
        g_strlcpy(p->conf_b64, "3AUYCgoAAg==", sizeof p->conf_b64);
        return p;
}

static void peer_free(TapotunPeer *p) {
        g_queue_clear_full(&p->tx, (GDestroyNotify) g_bytes_unref);
        g_ptr_array_unref(p->received);
        g_ptr_array_unref(p->rx_streams);
        g_hash_table_unref(p->wakes);
        g_free(p->name);
        g_free(p->last_remote);
        g_free(p->last_reason);
        g_free(p->offload_request);
        g_free(p->configured_conf);
        g_free(p->last_backoff);
        g_free(p);
}

MockHost *mock_host_new(sd_event *e, TapotunIfaceConfig *cfg) {
        MockHost *m = g_new0(MockHost, 1);

        m->host = (TapotunHost) {
                .version = TAPOTUN_HOST_VERSION,
                .struct_size = sizeof(TapotunHost),
                .event = e,
                .logv = mock_logv,
                .peer_authenticate = mock_peer_authenticate,
                .peer_name = mock_peer_name,
                .peer_accept = mock_peer_accept,
                .peer_request_headers = mock_peer_request_headers,
                .peer_configure = mock_peer_configure,
                .stream_attach = mock_stream_attach,
                .stream_detach = mock_stream_detach,
                .stream_pull = mock_stream_pull,
                .stream_lend = mock_stream_lend,
                .stream_return = mock_stream_return,
                .stream_receive = mock_stream_receive,
                .take_listen_fd = mock_take_listen_fd,
                .tunnel_n_peers = mock_tunnel_n_peers,
                .tunnel_peer = mock_tunnel_peer,
                .peer_event = mock_peer_event,
        };
        m->tunnel.cfg = cfg;
        m->tunnel.listen_fd = -1;
        m->tunnel.peers = g_ptr_array_new_with_free_func((GDestroyNotify) peer_free);
        if (cfg->mode == TAPOTUN_MODE_SERVER)
                for (size_t i = 0; i < cfg->n_clients; i++)
                        g_ptr_array_add(m->tunnel.peers,
                                        peer_new(i, cfg->clients[i].name, cfg->clients[i].token));
        else
                g_ptr_array_add(m->tunnel.peers, peer_new(0, "server", NULL));
        return m;
}

void mock_host_free(MockHost *m) {
        if (!m)
                return;
        g_ptr_array_unref(m->tunnel.peers);
        g_free(m);
}

TapotunPeer *mock_host_peer(MockHost *m, size_t i) {
        return mock_tunnel_peer(&m->tunnel, i);
}

void mock_peer_queue(TapotunPeer *p, const void *frame, size_t len) {
        g_queue_push_tail(&p->tx, g_bytes_new(frame, len));
        if (p->tx_stream && p->tx_wake)
                p->tx_wake(p->tx_stream);
}

void mock_peer_uncongest(TapotunPeer *p) {
        GHashTableIter it;
        gpointer stream, wake;

        p->congested = false;
        g_hash_table_iter_init(&it, p->wakes);
        while (g_hash_table_iter_next(&it, &stream, &wake))
                ((TapotunWakeFn) wake)(stream);
}

bool mock_run_until(sd_event *e, bool (*cond)(void *userdata), void *userdata, unsigned timeout_ms) {
        gint64 end = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        while (!cond(userdata)) {
                gint64 left = end - g_get_monotonic_time();
                if (left <= 0)
                        return cond(userdata);
                if (sd_event_run(e, (uint64_t) MIN(left, 50000)) < 0)
                        return false;
        }
        return true;
}

GBytes *mock_make_frame(size_t payload, unsigned seed) {
        size_t ip_len = 20 + 8 + payload;
        uint8_t *f = g_malloc0(12 + ip_len);
        uint8_t *ip = f + 12;

        ip[0] = 0x45;
        ip[2] = ip_len >> 8;
        ip[3] = ip_len & 0xff;
        ip[8] = 64;
        ip[9] = 17;
        memcpy(ip + 12, (uint8_t[]) { 10, 10, 0, 2 }, 4);
        memcpy(ip + 16, (uint8_t[]) { 10, 10, 0, 1 }, 4);
        ip[20] = 0x30;
        ip[21] = 0x39;
        ip[22] = 0x30;
        ip[23] = 0x39;
        ip[24] = (8 + payload) >> 8;
        ip[25] = (8 + payload) & 0xff;
        for (size_t i = 0; i < payload; i++)
                ip[28 + i] = (uint8_t) (seed * 31 + i * 7);
        return g_bytes_new_take(f, 12 + ip_len);
}

const TapotunPlugin *mock_load_plugin(const char *name) {
        const char *path = g_getenv("TAPOTUN_PLUGIN_PATH");
        g_auto(GStrv) dirs = g_strsplit(path ? path : ".", ":", -1);

        for (char **d = dirs; *d; d++) {
                g_autofree char *f = g_strdup_printf("%s/%s.so", *d, name);
                void *h;

                if (!g_file_test(f, G_FILE_TEST_EXISTS))
                        continue;
                h = dlopen(f, RTLD_NOW | RTLD_LOCAL);
                if (!h)
                        g_error("dlopen %s: %s", f, dlerror());
                return dlsym(h, TAPOTUN_PLUGIN_SYMBOL);
        }
        g_error("plugin %s not found in TAPOTUN_PLUGIN_PATH=%s", name, path ? path : "(unset)");
        return NULL;
}
