/* SPDX-License-Identifier: MIT */
/* The pure parts of the update check: version order, feeds and sha256sum lines. The check itself, against
 * a real HTTP server, is tests/e2e/test-update.sh. */
#include <glib.h>

#include "update.h"

#define BASE "http://192.0.2.9/tapotun/feed.json"
#define HEX_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" /* sha256("test") */
#define HEX_A_UPPER "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"

typedef struct VersionCase {
        const char *a;
        const char *b;
        int order; /* -1: a older, 0: same, 1: a newer */
} VersionCase;

static const VersionCase version_cases[] = {
        { "0.1.0", "0.1.0", 0 },
        { "0.2.0", "0.1.0", 1 },
        { "0.1.0", "0.2.0", -1 },
        { "0.1.10", "0.1.9", 1 },  /* numbers, not strings */
        { "0.10.0", "0.9.9", 1 },
        { "1.0", "0.99.99", 1 },
        { "1.0.0", "1.0", 1 },     /* dpkg: the longer one is newer */
        { "1.0.1", "1.0", 1 },
        { "01.2", "1.2", 0 },      /* leading zeros do not count */
        { "1.0~rc1", "1.0", -1 },  /* "~" sorts before the end: a pre-release */
        { "1.0~rc1", "1.0~rc2", -1 },
        { "1.0~~", "1.0~", -1 },
        { "1.0+deb1", "1.0", 1 },
        { "1.0a", "1.0", 1 },
        { "1.0a", "1.0+", -1 },    /* letters before other characters */
        { "1.0a", "1.0b", -1 },
        { "2", "10", -1 },
        { "18446744073709551616.0", "18446744073709551615.0", 1 }, /* beyond 64 bits */
};

static void test_version_compare(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(version_cases); i++) {
                const VersionCase *t = &version_cases[i];
                int r = update_version_compare(t->a, t->b), s = update_version_compare(t->b, t->a);

                g_test_message("%s <=> %s: %i / %i", t->a, t->b, r, s);
                g_assert_cmpint((r > 0) - (r < 0), ==, t->order);
                g_assert_cmpint((s > 0) - (s < 0), ==, -t->order);
        }
}

static void test_version_valid(void) {
        static const char *const good[] = { "0", "0.1.0", "1.0~rc1", "2.0+deb12u1", "10.20.30a",
                                             "1234567890123456789012345678901234567890123456789012345678901234" };
        static const char *const bad[] = { "", "v1.0", ".1", "1.0-1", "1:1.0", "1.0 ", "1.0\n", "1/0",
                                           "12345678901234567890123456789012345678901234567890123456789012345" };

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++)
                g_assert_true(update_version_valid(good[i]));
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
                g_assert_false(update_version_valid(bad[i]));
        g_assert_false(update_version_valid(NULL));
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct FeedCase {
        const char *name;
        const char *json; /* ' for " */
        const char *version;
        const char *url;
        const char *sha256; /* NULL: none */
        const char *error;  /* the error expected instead */
} FeedCase;

static const FeedCase feed_cases[] = {
        { "version-only", "{'version':'0.2.0'}", "0.2.0", NULL, NULL, NULL },
        { "absolute", "{'version':'0.2.0','url':'https://example.com/dl/tapotund-0.2.0-amd64'}", "0.2.0",
          "https://example.com/dl/tapotund-0.2.0-amd64", NULL, NULL },
        { "relative", "{'version':'0.2.0','url':'tapotund-0.2.0'}", "0.2.0",
          "http://192.0.2.9/tapotun/tapotund-0.2.0", NULL, NULL },
        { "relative-up", "{'version':'0.2.0','url':'../bin/tapotund'}", "0.2.0", "http://192.0.2.9/bin/tapotund",
          NULL, NULL },
        { "relative-root", "{'version':'0.2.0','url':'/x/tapotund'}", "0.2.0", "http://192.0.2.9/x/tapotund", NULL,
          NULL },
        { "sha256", "{'version':'1.0~rc1','url':'t','sha256':'" HEX_A "'}", "1.0~rc1",
          "http://192.0.2.9/tapotun/t", HEX_A, NULL },
        { "sha256-upper", "{'version':'1.0','sha256':'" HEX_A_UPPER "'}", "1.0", NULL, HEX_A, NULL },
        { "relative-space", "{'version':'0.2.0','url':'a b'}", "0.2.0", "http://192.0.2.9/tapotun/a%20b", NULL,
          NULL },
        { "unknown-fields", "{'version':'1.0','notes':'fixes','size':5}", "1.0", NULL, NULL, NULL },

        { "not-json", "<html>404</html>", NULL, NULL, NULL,
          "not a JSON object (a syntax error at line 1, column 1)" },
        { "array", "['0.2.0']", NULL, NULL, NULL, "not a JSON object" },
        { "empty", "", NULL, NULL, NULL, "not a JSON object (a syntax error at line 1, column 0)" },
        { "no-version", "{'url':'x'}", NULL, NULL, NULL, "\"version\" is missing or not a string" },
        { "version-number", "{'version':2}", NULL, NULL, NULL, "\"version\" is missing or not a string" },
        { "version-bad", "{'version':'v2\\u001b[31m'}", NULL, NULL, NULL,
          "\"version\" is not a version: expected 1 to 64 characters from 0-9 A-Z a-z . + ~, starting with a "
          "digit" },
        { "url-type", "{'version':'1.0','url':5}", NULL, NULL, NULL, "\"url\" is not a string" },
        { "url-scheme", "{'version':'1.0','url':'file:///etc/passwd'}", NULL, NULL, NULL,
          "\"url\" is not a valid http:// or https:// URL" },
        { "url-host-space", "{'version':'1.0','url':'http://exa mple/'}", NULL, NULL, NULL,
          "\"url\" is not a valid http:// or https:// URL" },
        { "url-empty", "{'version':'1.0','url':''}", NULL, NULL, NULL,
          "\"url\" is not a valid http:// or https:// URL" },
        { "sha256-short", "{'version':'1.0','sha256':'abc'}", NULL, NULL, NULL, "\"sha256\" is not 64 hex digits" },
        { "sha256-not-hex", "{'version':'1.0','sha256':'" "x" HEX_A_UPPER "'}", NULL, NULL, NULL,
          "\"sha256\" is not 64 hex digits" },
        { "duplicate", "{'version':'1.0','version':'2.0'}", NULL, NULL, NULL,
          "not a JSON object (a syntax error at line 1, column 26)" },
};

static void test_feed_parse(gconstpointer data) {
        const FeedCase *t = data;
        g_autofree char *json = g_strdup(t->json);
        g_autofree char *error = NULL;
        UpdateFeed f = {};
        int r;

        g_strdelimit(json, "'", '"');
        r = update_feed_parse(json, strlen(json), BASE, &f, &error);
        g_test_message("r=%i error=%s", r, error);

        if (t->error) {
                g_assert_cmpint(r, ==, -EBADMSG);
                g_assert_cmpstr(error, ==, t->error);
                g_assert_null(f.version);
                return;
        }

        g_assert_cmpint(r, ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(f.version, ==, t->version);
        g_assert_cmpstr(f.url, ==, t->url);
        g_assert_cmpint(f.has_sha256, ==, !!t->sha256);
        if (t->sha256) {
                uint8_t want[UPDATE_SHA256_SIZE];

                g_assert_cmpint(update_sha256sum_parse(t->sha256, strlen(t->sha256), want), ==, 0);
                g_assert_cmpmem(f.sha256, sizeof f.sha256, want, sizeof want);
        }
        update_feed_done(&f);
        g_assert_null(f.version);
        g_assert_null(f.url);
}

static void test_sha256sum_parse(void) {
        static const uint8_t want[UPDATE_SHA256_SIZE] = {
                0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65, 0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15,
                0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b, 0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08,
        };
        static const char *const good[] = {
                HEX_A,
                HEX_A "\n",
                HEX_A "  tapotund-0.2.0-amd64\n",
                HEX_A " *tapotund-0.2.0-amd64\r\n",
                HEX_A_UPPER "\ttapotund\n",
        };
        static const char *const bad[] = {
                "",
                "\n",
                HEX_A "0\n",                     /* 65 digits */
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0\n", /* 63 */
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g",
                " " HEX_A,
                "<html><body>Not Found</body></html>\n",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                uint8_t d[UPDATE_SHA256_SIZE] = {};

                g_assert_cmpint(update_sha256sum_parse(good[i], strlen(good[i]), d), ==, 0);
                g_assert_cmpmem(d, sizeof d, want, sizeof want);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                uint8_t d[UPDATE_SHA256_SIZE] = {};

                g_assert_cmpint(update_sha256sum_parse(bad[i], strlen(bad[i]), d), ==, -EBADMSG);
        }
        /* A NUL inside the digits, and a line cut short by the size given. */
        {
                uint8_t d[UPDATE_SHA256_SIZE];
                char nul[] = HEX_A "\n";

                nul[10] = '\0';
                g_assert_cmpint(update_sha256sum_parse(nul, sizeof nul - 1, d), ==, -EBADMSG);
                g_assert_cmpint(update_sha256sum_parse(HEX_A, 63, d), ==, -EBADMSG);
        }
}

static void test_state_strings(void) {
        g_assert_cmpstr(update_state_to_string(UPDATE_DISABLED), ==, "disabled");
        g_assert_cmpstr(update_state_to_string(UPDATE_UP_TO_DATE), ==, "up-to-date");
        g_assert_cmpstr(update_state_to_string(UPDATE_INSTALLED), ==, "installed");
        g_assert_null(update_state_to_string(_UPDATE_STATE_MAX));
        g_assert_cmpint((int) update_state_from_string("available"), ==, UPDATE_AVAILABLE);
        g_assert_cmpint((int) update_state_from_string("Available"), ==, -EINVAL);
        for (int s = 0; s < _UPDATE_STATE_MAX; s++)
                g_assert_cmpint((int) update_state_from_string(update_state_to_string((UpdateState) s)), ==, s);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/update/update_version_compare", test_version_compare);
        g_test_add_func("/update/update_version_valid", test_version_valid);
        for (size_t i = 0; i < G_N_ELEMENTS(feed_cases); i++) {
                g_autofree char *name = g_strdup_printf("/update/update_feed_parse/%s", feed_cases[i].name);
                g_test_add_data_func(name, &feed_cases[i], test_feed_parse);
        }
        g_test_add_func("/update/update_sha256sum_parse", test_sha256sum_parse);
        g_test_add_func("/update/update_state", test_state_strings);

        return g_test_run();
}
