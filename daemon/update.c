/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>

#include "curl-glue.h"
#include "log.h"
#include "update.h"

/* Hard limits on what a feed server can make us take. */
#define FEED_SIZE_MAX (64u * 1024u)
#define CHECKSUM_SIZE_MAX (4u * 1024u)
#define BINARY_SIZE_MAX (256u * 1024u * 1024u)
/* A binary that trickles in is abandoned after this long in all (or after the configured timeout, when that
 * is longer). */
#define BINARY_TIME_MAX_MS (3600L * 1000L)
#define REDIRECTS_MAX 5L
/* Longer ETag and Last-Modified values are not kept: a conditional request only saves a download. */
#define VALIDATOR_MAX 256u
#define VERSION_MAX 64u
#define STAGING_NAME ".tapotund.XXXXXX"

static const char *const update_state_table[_UPDATE_STATE_MAX] = {
        [UPDATE_DISABLED] = "disabled",
        [UPDATE_IDLE] = "idle",
        [UPDATE_CHECKING] = "checking",
        [UPDATE_DOWNLOADING] = "downloading",
        [UPDATE_UP_TO_DATE] = "up-to-date",
        [UPDATE_AVAILABLE] = "available",
        [UPDATE_INSTALLED] = "installed",
        [UPDATE_FAILED] = "failed",
};

DEFINE_STRING_TABLE_LOOKUP(update_state, UpdateState);

/* ---------------------------------------------------------------------------------------------- */
/* Versions, feeds, checksums */

static bool char_is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool char_is_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool update_version_valid(const char *v) {
        size_t n;

        if (!v)
                return false;
        n = strlen(v);
        return n > 0 && n <= VERSION_MAX && char_is_digit(v[0]) &&
               strspn(v, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+~") == n;
}

/* dpkg's order of the characters outside digit runs: "~" first, even before the end, then letters, then
 * everything else. */
static int version_order(char c) {
        if (char_is_digit(c) || c == '\0')
                return 0;
        if (char_is_alpha(c))
                return (unsigned char) c;
        if (c == '~')
                return -1;
        return (unsigned char) c + 256;
}

int update_version_compare(const char *a, const char *b) {
        while (*a || *b) {
                int first_diff = 0;

                /* A position where one string has a non-digit and the other has the end or a digit
                 * always differs in order, so neither pointer walks past its end. */
                while ((*a && !char_is_digit(*a)) || (*b && !char_is_digit(*b))) {
                        int ac = version_order(*a), bc = version_order(*b);

                        if (ac != bc)
                                return ac - bc;
                        a++;
                        b++;
                }

                while (*a == '0')
                        a++;
                while (*b == '0')
                        b++;
                while (char_is_digit(*a) && char_is_digit(*b)) {
                        if (first_diff == 0)
                                first_diff = *a - *b;
                        a++;
                        b++;
                }
                if (char_is_digit(*a))
                        return 1;
                if (char_is_digit(*b))
                        return -1;
                if (first_diff != 0)
                        return first_diff;
        }
        return 0;
}

static int hex_value(char c) {
        if (char_is_digit(c))
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Exactly 2 * UPDATE_SHA256_SIZE hex digits at S. */
static int sha256_from_hex(const char *s, uint8_t ret[static UPDATE_SHA256_SIZE]) {
        uint8_t d[UPDATE_SHA256_SIZE];

        for (size_t i = 0; i < UPDATE_SHA256_SIZE; i++) {
                int hi = hex_value(s[2 * i]), lo = hi < 0 ? -1 : hex_value(s[2 * i + 1]);

                if (lo < 0)
                        return -EBADMSG;
                d[i] = (uint8_t) (hi << 4 | lo);
        }
        memcpy(ret, d, sizeof d);
        return 0;
}

static void sha256_to_hex(const uint8_t d[static UPDATE_SHA256_SIZE],
                          char ret[static 2 * UPDATE_SHA256_SIZE + 1]) {
        for (size_t i = 0; i < UPDATE_SHA256_SIZE; i++)
                (void) snprintf(ret + 2 * i, 3, "%02x", d[i]);
}

int update_sha256sum_parse(const char *text, size_t size, uint8_t ret[static UPDATE_SHA256_SIZE]) {
        const size_t n = 2 * UPDATE_SHA256_SIZE;

        if (size < n || memchr(text, '\0', n) || (size > n && (text[n] == '\0' || !strchr(" \t\r\n", text[n]))))
                return -EBADMSG;
        return sha256_from_hex(text, ret);
}

/* REF resolved against BASE, when the result is an http:// or https:// URL. */
static int url_resolve(const char *base, const char *ref, char **ret) {
        CURLU *h;
        char *s = NULL, *scheme = NULL, *copy = NULL;
        int r = -EBADMSG;

        h = curl_url();
        if (!h)
                return -ENOMEM;
        if (curl_url_set(h, CURLUPART_URL, base, 0) == CURLUE_OK &&
            curl_url_set(h, CURLUPART_URL, ref, 0) == CURLUE_OK &&
            curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            (streq(scheme, "http") || streq(scheme, "https")) &&
            curl_url_get(h, CURLUPART_URL, &s, 0) == CURLUE_OK) {
                copy = strdup(s);
                r = copy ? 0 : -ENOMEM;
        }
        curl_free(s);
        curl_free(scheme);
        curl_url_cleanup(h);
        if (r < 0)
                return r;
        *ret = copy;
        return 0;
}

void update_feed_done(UpdateFeed *f) {
        f->version = mfree(f->version);
        f->url = mfree(f->url);
        f->has_sha256 = false;
}

static int feed_error(char **ret_error, const char *format, ...) _printf_(2, 3);
static int feed_error(char **ret_error, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(ret_error, format, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : -EBADMSG;
}

/* Strings from the feed go into messages only once they are known to be harmless: none is echoed. */
int update_feed_parse(const char *body, size_t size, const char *base_url, UpdateFeed *ret, char **ret_error) {
        _cleanup_(update_feed_done) UpdateFeed f = {};
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_t *version, *url, *sha256;
        json_error_t e;
        int r;

        root = json_loadb(body, size, JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                if (json_error_code(&e) == json_error_out_of_memory)
                        return -ENOMEM;
                return feed_error(ret_error, "not a JSON object (a syntax error at line %i, column %i)", e.line,
                                  e.column);
        }
        if (!json_is_object(root))
                return feed_error(ret_error, "not a JSON object");

        version = json_object_get(root, "version");
        if (!json_is_string(version))
                return feed_error(ret_error, "\"version\" is missing or not a string");
        if (!update_version_valid(json_string_value(version)))
                return feed_error(ret_error, "\"version\" is not a version: expected 1 to %u characters from "
                                  "0-9 A-Z a-z . + ~, starting with a digit", VERSION_MAX);
        f.version = strdup(json_string_value(version));
        if (!f.version)
                return -ENOMEM;

        url = json_object_get(root, "url");
        if (url && !json_is_string(url))
                return feed_error(ret_error, "\"url\" is not a string");
        if (url && json_string_value(url)[0] == '\0')
                return feed_error(ret_error, "\"url\" is not a valid http:// or https:// URL");
        if (url) {
                r = url_resolve(base_url, json_string_value(url), &f.url);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return feed_error(ret_error, "\"url\" is not a valid http:// or https:// URL");
        }

        sha256 = json_object_get(root, "sha256");
        if (sha256) {
                if (!json_is_string(sha256) || strlen(json_string_value(sha256)) != 2 * UPDATE_SHA256_SIZE ||
                    sha256_from_hex(json_string_value(sha256), f.sha256) < 0)
                        return feed_error(ret_error, "\"sha256\" is not 64 hex digits");
                f.has_sha256 = true;
        }

        *ret = f;
        f = (UpdateFeed) {};
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The updater */

typedef enum Step {
        STEP_FEED,
        STEP_CHECKSUM, /* <binary URL>.sha256, when the feed has no "sha256" */
        STEP_BINARY,
} Step;

struct Updater {
        sd_event *event;
        UpdaterChanged on_changed;
        void *userdata;

        /* libcurl's multi interface on the loop, made on the first check. */
        CurlGlue *glue;
        bool curl_initialized;

        UpdateConfig cfg;
        /* The running binary, resolved at start: once replaced, /proc/self/exe says "(deleted)". */
        char *exe_path;
        sd_event_source *timer; /* the next check */

        /* The one transfer in progress. */
        CURL *easy;
        Step step;
        char *step_url;
        struct curl_slist *request_headers;
        char errbuf[CURL_ERROR_SIZE];
        char *body;
        size_t body_size;
        size_t body_max;
        char *etag_new;
        char *last_modified_new;
        bool too_large;
        int write_error;
        int staging_fd;
        char *staging_path;
        uint64_t written;
        EVP_MD_CTX *md;
        uint8_t expected_sha256[UPDATE_SHA256_SIZE];

        /* What the feed said last, and its validators for the next request. */
        UpdateFeed feed;
        char *etag;
        char *last_modified;

        char *notified;  /* the version last reported in the log */
        char *installed; /* the version put in place, waiting for a restart */

        UpdateState state;
        char *available;
        char *error;
        uint64_t last_check;
};

static void updater_changed(Updater *u) {
        if (u->on_changed)
                u->on_changed(u, u->userdata);
}

static int set_string(char **s, const char *v) {
        char *c = NULL;

        if (streq_ptr(*s, v))
                return 0;
        if (v) {
                c = strdup(v);
                if (!c)
                        return -ENOMEM;
        }
        free(*s);
        *s = c;
        return 1;
}

/* --- the multi handle on the loop --- */

static void on_transfer_done(Updater *u, CURLcode result);

static void on_glue_finished(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        Updater *u = userdata;

        if (easy == u->easy)
                on_transfer_done(u, result);
}

static int updater_curl_init(Updater *u) {
        if (u->glue)
                return 0;

        if (!u->curl_initialized) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -EIO;
                u->curl_initialized = true;
        }
        return curl_glue_new(u->event, on_glue_finished, u, &u->glue);
}

/* --- one transfer --- */

static void staging_discard(Updater *u) {
        u->staging_fd = safe_close(u->staging_fd);
        if (u->staging_path)
                (void) unlink(u->staging_path);
        u->staging_path = mfree(u->staging_path);
}

/* Abandons the transfer in progress, if any. */
static void transfer_stop(Updater *u) {
        curl_glue_remove_and_free(u->glue, u->easy);
        u->easy = NULL;
        curl_slist_free_all(u->request_headers);
        u->request_headers = NULL;
        u->step_url = mfree(u->step_url);
        u->body = mfree(u->body);
        u->body_size = 0;
        u->etag_new = mfree(u->etag_new);
        u->last_modified_new = mfree(u->last_modified_new);
        u->too_large = false;
        u->write_error = 0;
        u->written = 0;
        EVP_MD_CTX_free(u->md);
        u->md = NULL;
        staging_discard(u);
}

static int loop_write(int fd, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *userdata) {
        Updater *u = userdata;
        size_t len = size * n;
        long code = 0;
        char *b;
        int r;

        /* Only a 200's body is wanted; an error page is skipped whatever its size. */
        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200)
                return len;

        if (u->step == STEP_BINARY) {
                if (len > BINARY_SIZE_MAX - u->written) {
                        u->too_large = true;
                        return 0;
                }
                if (EVP_DigestUpdate(u->md, data, len) != 1) {
                        u->write_error = -EIO;
                        return 0;
                }
                r = loop_write(u->staging_fd, data, len);
                if (r < 0) {
                        u->write_error = r;
                        return 0;
                }
                u->written += len;
                return len;
        }

        if (len > u->body_max - u->body_size) {
                u->too_large = true;
                return 0;
        }
        b = realloc(u->body, u->body_size + len + 1);
        if (!b) {
                u->write_error = -ENOMEM;
                return 0;
        }
        memcpy(b + u->body_size, data, len);
        u->body = b;
        u->body_size += len;
        u->body[u->body_size] = '\0';
        return len;
}

/* The value of the header NAME in the header line DATA, when that is what it is, fit to be sent back
 * verbatim: printable, not empty, at most VALIDATOR_MAX characters. */
static void header_take(const char *data, size_t len, const char *name, char **ret) {
        size_t nlen = strlen(name);
        const char *v, *end = data + len;
        char *s;

        if (len <= nlen || strncasecmp(data, name, nlen) != 0 || data[nlen] != ':')
                return;
        v = data + nlen + 1;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && strchr(" \t\r\n", end[-1]))
                end--;
        if (end == v || (size_t) (end - v) > VALIDATOR_MAX)
                return;
        for (const char *c = v; c < end; c++)
                if ((unsigned char) *c < ' ' || (unsigned char) *c >= 0x7f)
                        return;

        /* Out of memory, the next request is simply not conditional. */
        s = strndup(v, (size_t) (end - v));
        if (!s)
                return;
        free(*ret);
        *ret = s;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        Updater *u = userdata;
        size_t len = size * n;

        /* A new response (after a redirect): only the last one's validators count. */
        if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                u->etag_new = mfree(u->etag_new);
                u->last_modified_new = mfree(u->last_modified_new);
                return len;
        }
        if (u->step == STEP_FEED) {
                header_take(data, len, "ETag", &u->etag_new);
                header_take(data, len, "Last-Modified", &u->last_modified_new);
        }
        return len;
}

static int request_header_add(Updater *u, const char *name, const char *value) {
        _cleanup_free_ char *line = NULL;
        struct curl_slist *l;

        if (asprintf(&line, "%s: %s", name, value) < 0)
                return -ENOMEM;
        l = curl_slist_append(u->request_headers, line);
        if (!l)
                return -ENOMEM;
        u->request_headers = l;
        return 0;
}

/* Opens the staging file in the directory of TARGET, so that rename() can put it in place. */
static int staging_open(Updater *u, const char *target) {
        const char *slash = strrchr(target, '/');
        size_t dir_len = slash ? (size_t) (slash - target) : 0;
        char *path;
        int fd;

        if (asprintf(&path, "%.*s/" STAGING_NAME, (int) dir_len, target) < 0)
                return -ENOMEM;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;

                free(path);
                return r;
        }
        u->staging_fd = fd;
        u->staging_path = path;
        return 0;
}

static const char *updater_target(const Updater *u) {
        return u->cfg.path ?: u->exe_path;
}

static void check_failed(Updater *u, const char *format, ...) _printf_(2, 3);

static int transfer_start(Updater *u, Step step, const char *url) {
        long timeout_ms = (long) (u->cfg.timeout_usec / USEC_PER_MSEC);
        CURL *easy;
        int r;

        transfer_stop(u);
        u->step = step;
        u->step_url = strdup(url);
        if (!u->step_url)
                return -ENOMEM;
        u->body_max = step == STEP_FEED ? FEED_SIZE_MAX : CHECKSUM_SIZE_MAX;

        if (step == STEP_FEED && u->feed.version) {
                if (u->etag) {
                        r = request_header_add(u, "If-None-Match", u->etag);
                        if (r < 0)
                                return r;
                }
                if (u->last_modified) {
                        r = request_header_add(u, "If-Modified-Since", u->last_modified);
                        if (r < 0)
                                return r;
                }
        }

        if (step == STEP_BINARY) {
                r = staging_open(u, updater_target(u));
                if (r < 0)
                        return r;
                u->md = EVP_MD_CTX_new();
                if (!u->md || EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1)
                        return -ENOMEM;
        }

        easy = curl_easy_init();
        if (!easy)
                return -ENOMEM;
        u->easy = easy;
        u->errbuf[0] = '\0';

        if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, u->errbuf) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_MAXREDIRS, REDIRECTS_MAX) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_USERAGENT, "tapotund/" PACKAGE_VERSION) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, u->request_headers) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_WRITEDATA, u) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_HEADERDATA, u) != CURLE_OK ||
            curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                             (curl_off_t) (step == STEP_BINARY ? BINARY_SIZE_MAX : u->body_max)) != CURLE_OK)
                return -EINVAL;

        /* The feed and the checksum are small: all of it within the timeout. The binary may take long
         * on a slow link: it is abandoned when it stops moving for that long, or takes too long in all. */
        if (step == STEP_BINARY) {
                if (curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
                    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, MAX(timeout_ms / 1000, 1L)) != CURLE_OK ||
                    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, MAX(timeout_ms, BINARY_TIME_MAX_MS)) != CURLE_OK)
                        return -EINVAL;
        } else if (curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK)
                return -EINVAL;

        r = curl_glue_add(u->glue, easy);
        if (r < 0)
                return r;
        return 0;
}

/* Starts the transfer, or ends the check with why it could not start. */
static void transfer_start_or_fail(Updater *u, Step step, const char *url) {
        int r;

        r = transfer_start(u, step, url);
        if (r == -EROFS || r == -EACCES || r == -EPERM)
                check_failed(u, "cannot create a file in the directory of %s: %s (under systemd's "
                             "ProtectSystem=strict, give the service ReadWritePaths= for that directory)",
                             updater_target(u), strerror(-r));
        else if (r < 0)
                check_failed(u, "%s: cannot start the request: %s", url, strerror(-r));
}

/* --- the check --- */

static void updater_schedule(Updater *u, uint64_t delay) {
        uint64_t now;

        if (sd_event_now(u->event, CLOCK_BOOTTIME, &now) < 0 ||
            sd_event_source_set_time(u->timer, now + delay) < 0 ||
            sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT) < 0)
                log_error("Cannot schedule the next update check; there will be none until a reload.");
}

static void check_end(Updater *u, UpdateState state) {
        uint64_t now = 0;

        transfer_stop(u);
        (void) sd_event_now(u->event, CLOCK_REALTIME, &now);
        u->last_check = now;
        u->state = state;
        updater_schedule(u, u->cfg.interval_usec);
        updater_changed(u);
}

static void check_failed(Updater *u, const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);

        log_warning("Update check failed: %s; trying again in %llu s.", s ?: "out of memory",
                    (unsigned long long) (u->cfg.interval_usec / USEC_PER_SEC));
        free(u->error);
        u->error = s;
        check_end(u, UPDATE_FAILED);
}

static void check_succeeded(Updater *u, UpdateState state) {
        u->error = mfree(u->error);
        check_end(u, state);
}

/* What the feed offers, against what runs and what was installed. */
static void check_evaluate(Updater *u) {
        const UpdateFeed *f = &u->feed;
        int r;

        if (update_version_compare(f->version, PACKAGE_VERSION) <= 0) {
                u->available = mfree(u->available);
                log_debug("Update check: the feed offers %s, running %s: up to date.", f->version,
                          PACKAGE_VERSION);
                check_succeeded(u, UPDATE_UP_TO_DATE);
                return;
        }

        if (set_string(&u->available, f->version) < 0) {
                check_failed(u, "out of memory");
                return;
        }
        if (!streq_ptr(u->notified, f->version)) {
                log_notice("Update available: tapotund %s (running %s) at %s.", f->version, PACKAGE_VERSION,
                           f->url ?: u->cfg.url);
                (void) set_string(&u->notified, f->version);
        }

        if (!u->cfg.install) {
                check_succeeded(u, UPDATE_AVAILABLE);
                return;
        }
        if (u->installed && update_version_compare(f->version, u->installed) <= 0) {
                check_succeeded(u, UPDATE_INSTALLED);
                return;
        }
        if (!f->url) {
                check_failed(u, "%s: the feed names no binary (\"url\") to install", u->cfg.url);
                return;
        }
        if (!updater_target(u)) {
                check_failed(u, "cannot tell where the running binary is; set \"path\"");
                return;
        }

        u->state = UPDATE_DOWNLOADING;
        updater_changed(u);
        if (f->has_sha256) {
                memcpy(u->expected_sha256, f->sha256, sizeof u->expected_sha256);
                transfer_start_or_fail(u, STEP_BINARY, f->url);
        } else {
                _cleanup_free_ char *url = NULL;

                r = asprintf(&url, "%s.sha256", f->url);
                if (r < 0) {
                        check_failed(u, "out of memory");
                        return;
                }
                transfer_start_or_fail(u, STEP_CHECKSUM, url);
        }
}

static void feed_received(Updater *u, const char *effective_url) {
        _cleanup_(update_feed_done) UpdateFeed f = {};
        _cleanup_free_ char *error = NULL;
        int r;

        r = update_feed_parse(u->body ?: "", u->body_size, effective_url, &f, &error);
        if (r < 0) {
                check_failed(u, "%s: %s", u->cfg.url, error ?: strerror(-r));
                return;
        }

        update_feed_done(&u->feed);
        u->feed = f;
        f = (UpdateFeed) {};
        free(u->etag);
        u->etag = TAKE_PTR(u->etag_new);
        free(u->last_modified);
        u->last_modified = TAKE_PTR(u->last_modified_new);
        check_evaluate(u);
}

/* Puts the verified staging file in place of the target, atomically, with the target's mode. */
static int install_staging(Updater *u, const char *target) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_(closep) int dfd = -EBADF;
        mode_t mode = 0755;
        struct stat st;

        if (stat(target, &st) >= 0)
                mode = st.st_mode & 07777;
        else if (errno != ENOENT)
                return -errno;

        if (fchmod(u->staging_fd, mode) < 0 || fsync(u->staging_fd) < 0)
                return -errno;
        if (rename(u->staging_path, target) < 0)
                return -errno;
        u->staging_path = mfree(u->staging_path);

        /* The rename itself must survive a power cut too. */
        dir = strndup(target, (size_t) (strrchr(target, '/') - target));
        if (!dir)
                return -ENOMEM;
        dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
        return 0;
}

static void binary_received(Updater *u) {
        uint8_t digest[EVP_MAX_MD_SIZE];
        char want[2 * UPDATE_SHA256_SIZE + 1], got[2 * UPDATE_SHA256_SIZE + 1];
        const char *target = updater_target(u);
        unsigned len = 0;
        int r;

        if (EVP_DigestFinal_ex(u->md, digest, &len) != 1 || len != UPDATE_SHA256_SIZE) {
                check_failed(u, "%s: cannot compute SHA-256", u->step_url);
                return;
        }
        if (CRYPTO_memcmp(digest, u->expected_sha256, UPDATE_SHA256_SIZE) != 0) {
                sha256_to_hex(u->expected_sha256, want);
                sha256_to_hex(digest, got);
                check_failed(u, "%s: checksum mismatch: expected SHA-256 %s, got %s; %s left as it was",
                             u->step_url, want, got, target);
                return;
        }

        r = install_staging(u, target);
        if (r < 0) {
                check_failed(u, "cannot install %s as %s: %s", u->step_url, target, strerror(-r));
                return;
        }

        (void) set_string(&u->installed, u->feed.version);
        log_notice("Installed tapotund %s as %s (%" PRIu64 " bytes, SHA-256 verified); restart the service "
                   "to run it.", u->feed.version, target, u->written);
        check_succeeded(u, UPDATE_INSTALLED);
}

static void on_transfer_done(Updater *u, CURLcode result) {
        _cleanup_free_ char *effective = NULL;
        const char *url = u->step_url, *e = NULL;
        long code = 0;
        int r;

        (void) curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (curl_easy_getinfo(u->easy, CURLINFO_EFFECTIVE_URL, &e) == CURLE_OK && e) {
                effective = strdup(e);
                if (!effective) {
                        check_failed(u, "out of memory");
                        return;
                }
        }

        if (u->too_large || result == CURLE_FILESIZE_EXCEEDED) {
                check_failed(u, "%s: the answer is larger than %u bytes", url,
                             u->step == STEP_BINARY ? BINARY_SIZE_MAX : (unsigned) u->body_max);
                return;
        }
        if (u->write_error < 0) {
                if (u->step == STEP_BINARY)
                        check_failed(u, "%s: cannot write %s: %s", url, u->staging_path ?: "?",
                                     strerror(-u->write_error));
                else
                        check_failed(u, "%s: %s", url, strerror(-u->write_error));
                return;
        }
        if (result != CURLE_OK) {
                check_failed(u, "%s: %s", url, u->errbuf[0] ? u->errbuf : curl_easy_strerror(result));
                return;
        }

        if (u->step == STEP_FEED && code == 304) {
                /* Only asked with validators of a feed we have. */
                log_debug("Update check: %s has not changed.", url);
                if (!u->feed.version) {
                        check_failed(u, "%s: HTTP 304 to an unconditional request", url);
                        return;
                }
                check_evaluate(u);
                return;
        }
        if (code != 200) {
                check_failed(u, "%s: HTTP %ld", url, code);
                return;
        }

        switch (u->step) {

        case STEP_FEED:
                feed_received(u, effective ?: url);
                return;

        case STEP_CHECKSUM:
                r = update_sha256sum_parse(u->body ?: "", u->body_size, u->expected_sha256);
                if (r < 0) {
                        check_failed(u, "%s: not a SHA-256 checksum (64 hex digits)", url);
                        return;
                }
                transfer_start_or_fail(u, STEP_BINARY, u->feed.url);
                return;

        case STEP_BINARY:
                binary_received(u);
                return;
        }
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Updater *u = userdata;

        log_debug("Update check: asking %s.", u->cfg.url);
        u->state = UPDATE_CHECKING;
        updater_changed(u);
        transfer_start_or_fail(u, STEP_FEED, u->cfg.url);
        return 0;
}

/* ---------------------------------------------------------------------------------------------- */

int updater_new(sd_event *e, UpdaterChanged on_changed, void *userdata, Updater **ret) {
        _cleanup_(updater_freep) Updater *u = NULL;
        char buf[PATH_MAX];
        ssize_t n;
        int r;

        u = calloc(1, sizeof(Updater));
        if (!u)
                return -ENOMEM;
        u->event = sd_event_ref(e);
        u->on_changed = on_changed;
        u->userdata = userdata;
        u->staging_fd = -EBADF;
        u->state = UPDATE_DISABLED;

        r = sd_event_add_time(e, &u->timer, CLOCK_BOOTTIME, UINT64_MAX, 0, on_timer, u);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(u->timer, "update-check");

        /* Without it, install mode needs "path"; reporting works all the same. */
        n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n > 0 && buf[0] == '/') {
                buf[n] = '\0';
                u->exe_path = strdup(buf);
                if (!u->exe_path)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(u);
        return 0;
}

Updater *updater_free(Updater *u) {
        if (!u)
                return NULL;

        transfer_stop(u);
        curl_glue_free(u->glue);
        if (u->curl_initialized)
                curl_global_cleanup();
        sd_event_source_disable_unref(u->timer);
        sd_event_unref(u->event);

        update_config_done(&u->cfg);
        update_feed_done(&u->feed);
        free(u->exe_path);
        free(u->etag);
        free(u->last_modified);
        free(u->notified);
        free(u->installed);
        free(u->available);
        free(u->error);
        return mfree(u);
}

int updater_configure(Updater *u, const UpdateConfig *cfg) {
        UpdateConfig new;
        bool same_target;
        int r;

        if (update_config_equal(&u->cfg, cfg))
                return 0;

        if (cfg->url) {
                r = updater_curl_init(u);
                if (r < 0)
                        return r;
        }
        r = update_config_copy(&new, cfg);
        if (r < 0)
                return r;

        /* What was learnt from another feed or for another target does not hold any more. */
        same_target = streq_ptr(u->cfg.path, new.path);
        transfer_stop(u);
        update_config_done(&u->cfg);
        u->cfg = new;
        update_feed_done(&u->feed);
        u->etag = mfree(u->etag);
        u->last_modified = mfree(u->last_modified);
        u->available = mfree(u->available);
        u->error = mfree(u->error);
        u->last_check = 0;
        if (!same_target)
                u->installed = mfree(u->installed);

        if (!u->cfg.url) {
                log_info("Update check off.");
                (void) sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
                u->state = UPDATE_DISABLED;
        } else {
                if (u->cfg.install)
                        log_info("Update check: %s every %llu s, installing new versions as %s.", u->cfg.url,
                                 (unsigned long long) (u->cfg.interval_usec / USEC_PER_SEC),
                                 updater_target(u) ?: "(unknown: set \"path\")");
                else
                        log_info("Update check: %s every %llu s, reporting new versions.", u->cfg.url,
                                 (unsigned long long) (u->cfg.interval_usec / USEC_PER_SEC));
                /* Long intervals need no precision; the tests' short ones do. */
                (void) sd_event_source_set_time_accuracy(u->timer, MAX(u->cfg.interval_usec / 100, 1u));
                u->state = UPDATE_IDLE;
                updater_schedule(u, 0);
        }
        updater_changed(u);
        return 0;
}

UpdateState updater_state(const Updater *u) {
        return u->state;
}

const char *updater_available(const Updater *u) {
        return u->available;
}

const char *updater_error(const Updater *u) {
        return u->error;
}

uint64_t updater_last_check(const Updater *u) {
        return u->last_check;
}

const char *updater_url(const Updater *u) {
        return u->cfg.url;
}
