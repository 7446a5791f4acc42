/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sys/wait.h>

#include "conf.h"
#include "wire.h"

/* The test JSON is written with ' for " to stay readable; parse() swaps them. */
#define TOK1 "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3" /* sha1("test") */
#define TOK2 "62cdb7020ff920e5aa642c3d4066950dd1f01f4d" /* sha1("bar") */
#define TOK3 "bbe960a25ea311d21d40669e93df2003ba9b90a2" /* sha1("baz") */

/* A valid server, with EXTRA fields appended and CLIENTS as its client list. */
#define SRV(extra, clients) "[{'name':'tun0','port':8080,'net':'10.10.0.1/24'" extra ",'clients':[" clients "]}]"
#define CL1(extra) "{'token':'" TOK1 "','ip':'10.10.0.2'" extra "}"
#define CL2(extra) "{'token':'" TOK2 "','ip':'10.10.0.3'" extra "}"
#define CLI(extra) "[{'name':'tun0','server':'http://192.0.2.1:8080/','token':'test'" extra "}]"

#define README_SERVER \
        "[{'name':'tun0','port':8080,'net':'10.10.0.1/24','clients':[{'token':'" TOK1 "','ip':'10.10.0.2'}]}]"
#define README_CLIENT "[{'name':'tun0','server':'http://192.0.2.1:8080/','token':'test'}]"

#define L "config.json: "

/* The object form of the root: INTERFACES (an array) and more root fields (REST, starting with ","). */
#define OBJ(interfaces, rest) "{'interfaces':" interfaces rest "}"
#define UPD(fields) OBJ(README_CLIENT, ",'update':{" fields "}")
#define FEED "'url':'http://192.0.2.9/feed.json'"

static int parse(const char *json, Config **ret, char ***ret_errors) {
        g_autofree char *j = g_strdup(json);

        g_strdelimit(j, "'", '"');
        return config_parse(j, strlen(j), "config.json", ret, ret_errors);
}

static void dump_errors(char **errors) {
        for (char **e = errors; e && *e; e++)
                g_test_message("error: %s", *e);
}

static Config *parse_good(const char *json) {
        _cleanup_(strv_freep) char **errors = NULL;
        Config *c = NULL;
        int r;

        r = parse(json, &c, &errors);
        dump_errors(errors);
        g_assert_cmpint(r, ==, 0);
        g_assert_null(errors);
        g_assert_nonnull(c);
        return c;
}

static void assert_prefix(const TapotunPrefix *p, const char *expected) {
        char buf[64];

        if (!expected) {
                g_assert_cmpint(p->family, ==, 0);
                return;
        }
        wire_prefix_format(p, buf, sizeof buf);
        g_assert_cmpstr(buf, ==, expected);
}

/* ---------------------------------------------------------------------------------------------- */

typedef struct BadCase {
        const char *name;
        const char *json;
        const char *error; /* the one error expected, in full */
} BadCase;

static const BadCase bad_cases[] = {
        /* root */
        { "root-object", "{}", L "top level: missing required field \"interfaces\"" },
        { "root-string", "'x'",
          L "top level: expected an array of interface objects or an object with \"interfaces\", got the string "
            "\"x\"" },
        { "root-object-unknown", OBJ(README_CLIENT, ",'updat':{}"),
          L "top level: unknown field \"updat\"; did you mean \"update\"?" },
        { "root-object-interfaces-type", "{'interfaces':5}",
          L "interfaces: expected an array of interface objects, got the integer 5" },
        { "root-object-interfaces-empty", "{'interfaces':[]}",
          L "interfaces: no interfaces configured; expected at least one interface object" },
        { "root-object-path", OBJ(SRV("", CL1(",'name':'a b'")), ""),
          L "interfaces[0].clients[0].name: may contain only ASCII letters, digits, \"_\", \".\" and \"-\", got "
            "\"a b\"" },
        { "root-object-name-duplicate",
          OBJ("[{'name':'tun0','port':8080,'net':'10.10.0.1/24','clients':[]},"
              "{'name':'tun0','server':'http://192.0.2.1/','token':'x'}]", ""),
          L "interfaces[1].name: interface name \"tun0\" is already used by [0]" },
        { "root-empty", "[]", L "top level: no interfaces configured; expected at least one interface object" },
        { "document-empty", " \n\t", L "top level: the document is empty; expected an array of interface objects" },
        { "iface-not-object", "[5]", L "[0]: expected an interface object, got the integer 5" },
        { "syntax", "[{'name':}]", "config.json:1:10: unexpected token near '}'" },
        { "syntax-line", "[\n{'name':'tun0',\n'port':80 80}]", "config.json:3:12: '}' expected near '80'" },
        { "duplicate-key", "[{'name':'a','name':'b'}]", "config.json:1:19: duplicate object key near '\"name\"'" },
        { "integer-too-big", "[{'name':'tun0','port':99999999999999999999}]",
          "config.json:1:43: too big integer near '99999999999999999999'" },

        /* update */
        { "update-type", OBJ(README_CLIENT, ",'update':5"),
          L "update: expected an object with \"url\", got the integer 5" },
        { "update-url-missing", UPD("'interval':60"), L "update: missing required field \"url\"" },
        { "update-unknown", UPD(FEED ",'intervall':60"),
          L "update: unknown field \"intervall\"; did you mean \"interval\"?" },
        { "update-url-type", UPD("'url':1"), L "update.url: expected a string, got the integer 1" },
        { "update-url-scheme", UPD("'url':'ftp://192.0.2.9/feed.json'"),
          L "update.url: expected an http:// or https:// URL, got \"ftp://192.0.2.9/feed.json\"" },
        { "update-url-space", UPD("'url':'http://192.0.2.9/a feed'"),
          L "update.url: URL \"http://192.0.2.9/a feed\" contains spaces, control or non-ASCII characters" },
        { "update-url-no-host", UPD("'url':'https:///feed.json'"),
          L "update.url: URL \"https:///feed.json\" has no host" },
        { "update-url-port-only", UPD("'url':'http://user@:80/'"), L "update.url: URL \"http://user@:80/\" has no host" },
        { "update-interval-small", UPD(FEED ",'interval':59"),
          L "update.interval: must be between 60 and 2592000, got 59" },
        { "update-interval-big", UPD(FEED ",'interval':2592001"),
          L "update.interval: must be between 60 and 2592000, got 2592001" },
        { "update-interval-string", UPD(FEED ",'interval':'6h'"),
          L "update.interval: expected an integer, got the string \"6h\"" },
        { "update-timeout-zero", UPD(FEED ",'timeout':0"), L "update.timeout: must be between 1 and 3600, got 0" },
        { "update-install-type", UPD(FEED ",'install':'yes'"),
          L "update.install: expected true or false, got the string \"yes\"" },
        { "update-path-relative", UPD(FEED ",'path':'sbin/tapotund'"),
          L "update.path: must be an absolute path, got \"sbin/tapotund\"" },
        { "update-path-directory", UPD(FEED ",'path':'/usr/sbin/'"),
          L "update.path: must name a file, not a directory, got \"/usr/sbin/\"" },

        /* mode */
        { "mode-both", "[{'name':'tun0','port':8080,'server':'http://h/'}]",
          L "[0]: has both \"port\" (a server) and \"server\" (a client); an interface is one or the other" },
        { "mode-neither", "[{'name':'tun0'}]", L "[0]: has neither \"port\" (a server) nor \"server\" (a client)" },
        { "server-field-in-client", CLI(",'mtu':1400"),
          L "[0].mtu: only allowed for a server (an interface with \"port\"); this interface is a client (it has "
            "\"server\")" },
        { "client-field-in-server", SRV(",'insecure':true", CL1("")),
          L "[0].insecure: only allowed for a client (an interface with \"server\"); this interface is a server "
            "(it has \"port\")" },

        /* unknown fields */
        { "unknown-suggest", SRV(",'mut':1400", CL1("")), L "[0]: unknown field \"mut\"; did you mean \"mtu\"?" },
        { "unknown-suggest-swap", SRV(",'pere_timeout':60", CL1("")),
          L "[0]: unknown field \"pere_timeout\"; did you mean \"peer_timeout\"?" },
        { "unknown-no-suggestion", SRV(",'zzzzzz':1", CL1("")), L "[0]: unknown field \"zzzzzz\"" },
        { "unknown-client-mode", CLI(",'tokne':'x'"), L "[0]: unknown field \"tokne\"; did you mean \"token\"?" },
        { "unknown-in-client", SRV("", CL1(",'source':[]")),
          L "[0].clients[0]: unknown field \"source\"; did you mean \"sources\"?" },
        { "unknown-in-mark", SRV(",'mark':{'value':1,'table':100,'tabel':1}", CL1("")),
          L "[0].mark: unknown field \"tabel\"; did you mean \"table\"?" },

        /* name */
        { "name-missing", "[{'port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0]: missing required field \"name\"" },
        { "name-type", "[{'name':5,'port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: expected a string, got the integer 5" },
        { "name-too-long", "[{'name':'abcdefghijklmnop','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: must be at most 15 characters long, got 16: \"abcdefghijklmnop\"" },
        { "name-charset", "[{'name':'tun/0','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: may contain only ASCII letters, digits, \"_\", \".\" and \"-\", got \"tun/0\"" },
        { "name-control", "[{'name':'tun\\u0001','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: may contain only ASCII letters, digits, \"_\", \".\" and \"-\", got \"tun\\u0001\"" },
        { "name-dotdot", "[{'name':'..','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: \"..\" is not allowed as a name" },
        { "name-empty", "[{'name':'','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: must not be empty" },
        { "name-duplicate",
          "[{'name':'tun0','port':8080,'net':'10.10.0.1/24','clients':[]},"
          "{'name':'tun0','server':'http://192.0.2.1/','token':'x'}]",
          L "[1].name: interface name \"tun0\" is already used by [0]" },
        { "name-truncated",
          "[{'name':'" "0123456789012345678901234567890123456789012345678901234567890123456789"
          "','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].name: must be at most 15 characters long, got 70: "
            "\"0123456789012345678901234567890123456789012345678901234567890123...\"" },

        /* mark */
        { "mark-type", SRV(",'mark':1", CL1("")),
          L "[0].mark: expected an object with \"value\" and \"table\", got the integer 1" },
        { "mark-table-missing", SRV(",'mark':{'value':1}", CL1("")),
          L "[0].mark: missing required field \"table\"" },
        { "mark-table-main", SRV(",'mark':{'value':1,'table':254}", CL1("")),
          L "[0].mark.table: table 254 is the kernel's \"main\" table; use another number" },
        { "mark-table-zero", SRV(",'mark':{'value':1,'table':0}", CL1("")),
          L "[0].mark.table: must be between 1 and 4294967295, got 0" },
        { "mark-value-negative", CLI(",'mark':{'value':-1,'table':100}"),
          L "[0].mark.value: must be between 0 and 4294967295, got -1" },
        { "mark-value-too-big", CLI(",'mark':{'value':4294967296,'table':100}"),
          L "[0].mark.value: must be between 0 and 4294967295, got 4294967296" },
        { "mark-priority-zero", CLI(",'mark':{'value':1,'table':100,'priority':0}"),
          L "[0].mark.priority: must be between 1 and 4294967295, got 0" },

        /* port, listen */
        { "port-zero", "[{'name':'tun0','port':0,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: must be between 1 and 65535, got 0" },
        { "port-too-big", "[{'name':'tun0','port':65536,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: must be between 1 and 65535, got 65536" },
        { "port-negative", "[{'name':'tun0','port':-80,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: must be between 1 and 65535, got -80" },
        { "port-string", "[{'name':'tun0','port':'8080','net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: expected an integer, got the string \"8080\"" },
        { "port-float", "[{'name':'tun0','port':80.5,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: expected an integer, got the number 80.5" },
        { "port-exponent", "[{'name':'tun0','port':1e3,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: expected an integer, got the number 1000.0" },
        { "port-null", "[{'name':'tun0','port':null,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].port: expected an integer, got null" },
        { "port-listen-duplicate",
          "[{'name':'tun0','port':8080,'net':'10.10.0.1/24','clients':[]},"
          "{'name':'tun1','port':8080,'net':'10.11.0.1/24','clients':[],'listen':'127.0.0.1'}]",
          L "[1].port: port 8080 on 127.0.0.1 conflicts with [0] (\"tun0\"), listening on 127.0.0.1" },
        { "port-listen-wildcard",
          "[{'name':'tun0','port':8080,'net':'10.10.0.1/24','clients':[],'listen':'::1'},"
          "{'name':'tun1','port':8080,'net':'10.11.0.1/24','clients':[],'listen':'::'}]",
          L "[1].port: port 8080 on :: conflicts with [0] (\"tun0\"), listening on ::1" },
        { "listen-hostname", SRV(",'listen':'localhost'", CL1("")),
          L "[0].listen: \"localhost\" is not a valid IPv4 or IPv6 address" },
        { "listen-prefix", SRV(",'listen':'127.0.0.1/8'", CL1("")),
          L "[0].listen: expected an address without a prefix length, got \"127.0.0.1/8\"" },

        /* net */
        { "net-missing", "[{'name':'tun0','port':8080,'clients':[]}]", L "[0]: missing required field \"net\"" },
        { "net-type", "[{'name':'tun0','port':8080,'net':1,'clients':[]}]",
          L "[0].net: expected a string or an array of strings, got the integer 1" },
        { "net-no-prefix", "[{'name':'tun0','port':8080,'net':'10.10.0.1','clients':[]}]",
          L "[0].net: \"10.10.0.1\" has no prefix length; write the address with its prefix, e.g. "
            "\"10.10.0.1/24\"" },
        { "net-prefix-range", "[{'name':'tun0','port':8080,'net':'10.10.0.1/33','clients':[]}]",
          L "[0].net: prefix length 33 in \"10.10.0.1/33\" is out of range for IPv4 (0..32)" },
        { "net-prefix-range6", "[{'name':'tun0','port':8080,'net':'fd00::1/129','clients':[]}]",
          L "[0].net: prefix length 129 in \"fd00::1/129\" is out of range for IPv6 (0..128)" },
        { "net-prefix-garbage", "[{'name':'tun0','port':8080,'net':'10.10.0.1/2x','clients':[]}]",
          L "[0].net: \"10.10.0.1/2x\" has an invalid prefix length" },
        { "net-bad-address", "[{'name':'tun0','port':8080,'net':'10.10.0.256/24','clients':[]}]",
          L "[0].net: \"10.10.0.256/24\" is not a valid IPv4 or IPv6 address" },
        { "net-network-address", "[{'name':'tun0','port':8080,'net':'10.10.0.0/24','clients':[]}]",
          L "[0].net: \"10.10.0.0/24\" is the network address; \"net\" takes the server's address with the "
            "prefix length, did you mean \"10.10.0.1/24\"?" },
        { "net-broadcast", "[{'name':'tun0','port':8080,'net':'10.10.0.255/24','clients':[]}]",
          L "[0].net: \"10.10.0.255/24\" is the broadcast address; \"net\" takes the server's address with the "
            "prefix length" },
        { "net-two-v4", "[{'name':'tun0','port':8080,'net':['10.10.0.1/24','10.11.0.1/24'],'clients':[]}]",
          L "[0].net[1]: a second IPv4 prefix; \"net\" takes at most one IPv4 and one IPv6 prefix" },
        { "net-empty-array", "[{'name':'tun0','port':8080,'net':[],'clients':[]}]",
          L "[0].net: must not be an empty array" },

        /* mtu and the other numbers */
        { "mtu-small", SRV(",'mtu':67", CL1("")), L "[0].mtu: must be between 68 and 65535, got 67" },
        { "mtu-big", SRV(",'mtu':65536", CL1("")), L "[0].mtu: must be between 68 and 65535, got 65536" },
        { "mtu-ipv6", "[{'name':'tun0','port':8080,'net':['10.10.0.1/24','fd00::1/64'],'mtu':1279,'clients':[]}]",
          L "[0].mtu: must be at least 1280 because the interface carries IPv6, got 1279" },
        { "mtu-ipv6-route", SRV(",'mtu':1000", CL1(",'routes':['fd01::/64']")),
          L "[0].mtu: must be at least 1280 because the interface carries IPv6, got 1000" },
        { "peer-timeout", SRV(",'peer_timeout':5", CL1("")),
          L "[0].peer_timeout: must be between 10 and 86400, got 5" },
        { "max-connections", SRV(",'max_connections':0", CL1("")),
          L "[0].max_connections: must be between 1 and 1000000, got 0" },
        { "max-puts", SRV(",'max_puts_per_client':65", CL1("")),
          L "[0].max_puts_per_client: must be between 1 and 64, got 65" },
        { "queue-bytes", SRV(",'queue_bytes':1000", CL1("")),
          L "[0].queue_bytes: must be between 65536 and 1073741824, got 1000" },

        /* ips, routes */
        { "ips-type", SRV(",'ips':'10.10.0.9'", CL1("")),
          L "[0].ips: expected an array of strings, got the string \"10.10.0.9\"" },
        { "ips-bad", SRV(",'ips':['10.10.0.9','nope']", CL1("")),
          L "[0].ips[1]: \"nope\" is not a valid IPv4 or IPv6 address" },
        { "ips-is-net", SRV(",'ips':['10.10.0.1/24']", CL1("")),
          L "[0].ips[0]: 10.10.0.1 is already the server's address in \"net\"" },
        { "ips-twice", SRV(",'ips':['192.168.7.1/24','192.168.7.1/24']", CL1("")),
          L "[0].ips[1]: \"192.168.7.1/24\" is listed twice (also ips[0])" },
        { "routes-host-bits", SRV(",'routes':['192.168.0.1/16']", CL1("")),
          L "[0].routes[0]: \"192.168.0.1/16\" has host bits set; did you mean \"192.168.0.0/16\"?" },

        /* clients */
        { "clients-missing", "[{'name':'tun0','port':8080,'net':'10.10.0.1/24'}]",
          L "[0]: missing required field \"clients\" (it may be an empty array)" },
        { "clients-type", "[{'name':'tun0','port':8080,'net':'10.10.0.1/24','clients':{}}]",
          L "[0].clients: expected an array of client objects, got an object" },
        { "client-type", SRV("", "'x'"), L "[0].clients[0]: expected a client object, got the string \"x\"" },
        { "token-missing", SRV("", "{'ip':'10.10.0.2'}"), L "[0].clients[0]: missing required field \"token\"" },
        { "token-bad", SRV("", CL1("") ",{'token':'ABC','ip':'10.10.0.3'}"),
          L "[0].clients[1].token: expected 40 lowercase hex digits (SHA-1 of the client token), got \"ABC\"" },
        { "token-uppercase", SRV("", "{'token':'A94A8FE5CCB19BA61C4C0873D391E987982FBBD3','ip':'10.10.0.2'}"),
          L "[0].clients[0].token: expected 40 lowercase hex digits (SHA-1 of the client token), got "
            "\"A94A8FE5CCB19BA61C4C0873D391E987982FBBD3\"" },
        { "token-duplicate", SRV("", CL1("") ",{'token':'" TOK1 "','ip':'10.10.0.3'}"),
          L "[0].clients[1].token: the same token as clients[0] (\"client0\")" },
        { "ip-missing", SRV("", "{'token':'" TOK1 "'}"), L "[0].clients[0]: missing required field \"ip\"" },
        { "ip-outside", SRV("", "{'token':'" TOK1 "','ip':'10.20.0.2'}"),
          L "[0].clients[0].ip: \"10.20.0.2\" is outside the interface's net 10.10.0.0/24" },
        { "ip-server", SRV("", "{'token':'" TOK1 "','ip':'10.10.0.1'}"),
          L "[0].clients[0].ip: \"10.10.0.1\" is the server's own address (\"net\")" },
        { "ip-network", SRV("", "{'token':'" TOK1 "','ip':'10.10.0.0'}"),
          L "[0].clients[0].ip: \"10.10.0.0\" is the network address of 10.10.0.0/24" },
        { "ip-broadcast", SRV("", "{'token':'" TOK1 "','ip':'10.10.0.255'}"),
          L "[0].clients[0].ip: \"10.10.0.255\" is the broadcast address of 10.10.0.0/24" },
        { "ip-prefix", SRV("", "{'token':'" TOK1 "','ip':'10.10.0.2/24'}"),
          L "[0].clients[0].ip: \"10.10.0.2/24\" is not a host address; write a plain address without a prefix "
            "length" },
        { "ip-no-net6", SRV("", "{'token':'" TOK1 "','ip':['10.10.0.2','fd00::2']}"),
          L "[0].clients[0].ip[1]: \"fd00::2\" is an IPv6 address, but \"net\" has no IPv6 prefix" },
        { "ip-two-v4", SRV("", "{'token':'" TOK1 "','ip':['10.10.0.2','10.10.0.3']}"),
          L "[0].clients[0].ip[1]: a second IPv4 address; \"ip\" takes at most one IPv4 and one IPv6 address" },
        { "ip-empty", SRV("", "{'token':'" TOK1 "','ip':[]}"), L "[0].clients[0].ip: must not be an empty array" },
        { "ip-server-ips", SRV(",'ips':['10.10.0.9']", "{'token':'" TOK1 "','ip':'10.10.0.9'}"),
          L "[0].clients[0].ip: \"10.10.0.9\" is also a server address (ips[0])" },
        { "ip-duplicate", SRV("", CL1("") ",{'token':'" TOK2 "','ip':'10.10.0.2/32'}"),
          L "[0].clients[1].ip: 10.10.0.2 is already the address of clients[0] (\"client0\")" },
        { "name-client-duplicate", SRV("", CL1(",'name':'alice'") "," CL2(",'name':'alice'")),
          L "[0].clients[1].name: name \"alice\" is already used by clients[0] (\"alice\")" },
        { "name-client-default-taken", SRV("", CL1(",'name':'client1'") "," CL2("")),
          L "[0].clients[1]: the default name \"client1\" is already used by clients[0] (\"client1\"); set "
            "\"name\"" },
        { "name-client-long", SRV("", CL1(",'name':'" "0123456789012345678901234567890123456789012345678901234567890123"
                                          "4'")),
          L "[0].clients[0].name: must be at most 64 characters long, got 65: "
            "\"0123456789012345678901234567890123456789012345678901234567890123...\"" },
        { "name-client-charset", SRV("", CL1(",'name':'bob smith'")),
          L "[0].clients[0].name: may contain only ASCII letters, digits, \"_\", \".\" and \"-\", got \"bob smith\"" },
        { "route-host-bits", SRV("", CL1(",'routes':['10.1.2.3/24']")),
          L "[0].clients[0].routes[0]: \"10.1.2.3/24\" has host bits set; did you mean \"10.1.2.0/24\"?" },
        { "route-type", SRV("", CL1(",'routes':[5]")),
          L "[0].clients[0].routes[0]: expected a string, got the integer 5" },
        { "route-twice", SRV("", CL1(",'routes':['10.1.0.0/16','10.1.0.0/16']")),
          L "[0].clients[0].routes[1]: \"10.1.0.0/16\" is listed twice (also routes[0])" },
        { "route-same", SRV("", CL1(",'routes':['10.1.0.0/16']") "," CL2(",'routes':['10.1.0.0/16']")),
          L "[0].clients[1].routes[0]: 10.1.0.0/16 is also routed to clients[0] (\"client0\")" },
        { "route-overlap", SRV("", CL1(",'routes':['10.1.0.0/16']") "," CL2(",'routes':['10.1.2.0/24']")),
          L "[0].clients[1].routes[0]: 10.1.2.0/24 overlaps 10.1.0.0/16, routed to clients[0] (\"client0\")" },
        { "route-contains-client", SRV("", CL1("") "," CL2(",'routes':['10.10.0.0/30']")),
          L "[0].clients[1].routes[0]: 10.10.0.0/30 contains 10.10.0.2, the address of clients[0] (\"client0\")" },
        { "route-is-other-client", SRV("", CL1("") "," CL2(",'routes':['10.10.0.2/32']")),
          L "[0].clients[1].routes[0]: 10.10.0.2/32 contains 10.10.0.2, the address of clients[0] (\"client0\")" },
        { "route-is-later-client", SRV("", CL1(",'routes':['10.10.0.3']") "," CL2("")),
          L "[0].clients[0].routes[0]: 10.10.0.3/32 contains 10.10.0.3, the address of clients[1] (\"client1\")" },
        { "route-is-net", SRV("", CL1(",'routes':['10.10.0.0/24']")),
          L "[0].clients[0].routes[0]: 10.10.0.0/24 is the interface's own net" },
        { "route-is-local", SRV(",'routes':['192.168.0.0/16']", CL1(",'routes':['192.168.0.0/16']")),
          L "[0].clients[0].routes[0]: 192.168.0.0/16 is also a local network of the server (routes[0])" },
        { "route-prefix-range", SRV("", CL1(",'routes':['fd00::/200']")),
          L "[0].clients[0].routes[0]: prefix length 200 in \"fd00::/200\" is out of range for IPv6 (0..128)" },
        { "sources-not-host", SRV("", CL1(",'sources':['192.168.1.0/24']")),
          L "[0].clients[0].sources[0]: \"192.168.1.0/24\" is not a host address; write a plain address without a "
            "prefix length" },
        { "sources-across", SRV("", CL1(",'sources':['192.168.1.5']") "," CL2(",'sources':['192.168.1.5/32']")),
          L "[0].clients[1].sources[0]: 192.168.1.5 is already pinned to clients[0] (\"client0\")" },
        { "sources-twice", SRV("", CL1(",'sources':['192.168.1.5','192.168.1.5']")),
          L "[0].clients[0].sources[1]: \"192.168.1.5\" is listed twice (also sources[0])" },
        { "allow-spoofing-type", SRV("", CL1(",'allow_spoofing':'yes'")),
          L "[0].clients[0].allow_spoofing: expected true or false, got the string \"yes\"" },

        /* client mode */
        { "server-type", "[{'name':'tun0','server':5,'token':'x'}]",
          L "[0].server: expected a string, got the integer 5" },
        { "server-scheme", "[{'name':'tun0','server':'ftp://192.0.2.1/','token':'x'}]",
          L "[0].server: expected an http:// or https:// URL, got \"ftp://192.0.2.1/\"" },
        { "server-no-host", "[{'name':'tun0','server':'https:///ip','token':'x'}]",
          L "[0].server: URL \"https:///ip\" has no host" },
        { "server-port", "[{'name':'tun0','server':'http://h:99999/','token':'x'}]",
          L "[0].server: URL \"http://h:99999/\" has an invalid port; expected 1 to 65535" },
        { "server-ipv6-host", "[{'name':'tun0','server':'http://[fd00::1/','token':'x'}]",
          L "[0].server: URL \"http://[fd00::1/\" has an invalid IPv6 host" },
        { "server-space", "[{'name':'tun0','server':'http://h/a b','token':'x'}]",
          L "[0].server: URL \"http://h/a b\" contains spaces, control or non-ASCII characters" },
        { "client-token-missing", "[{'name':'tun0','server':'http://h/'}]", L "[0]: missing required field \"token\"" },
        { "client-token-empty", "[{'name':'tun0','server':'http://h/','token':''}]", L "[0].token: must not be empty" },
        { "client-token-space", "[{'name':'tun0','server':'http://h/','token':'se cret'}]",
          L "[0].token: must contain only printable ASCII characters without spaces" },
        { "client-token-type", "[{'name':'tun0','server':'http://h/','token':12345}]",
          L "[0].token: expected a string, got an integer" },
        { "ca-relative", CLI(",'ca':'ca.pem'"), L "[0].ca: must be an absolute path, got \"ca.pem\"" },
        { "insecure-type", CLI(",'insecure':1"), L "[0].insecure: expected true or false, got the integer 1" },
        { "keepalive-zero", CLI(",'keepalive':0"), L "[0].keepalive: must be between 1 and 3600, got 0" },
        { "keepalive-server-big", SRV(",'keepalive':3601", CL1("")),
          L "[0].keepalive: must be between 1 and 3600, got 3601" },
        { "reconnect-min-zero", CLI(",'reconnect_min':0"), L "[0].reconnect_min: must be between 1 and 3600, got 0" },
        { "reconnect-max-below-min", CLI(",'reconnect_min':10,'reconnect_max':5"),
          L "[0].reconnect_max: reconnect_max (5 s) must not be below reconnect_min (10 s)" },
        { "reconnect-min-above-default-max", CLI(",'reconnect_min':120"),
          L "[0].reconnect_min: reconnect_max (60 s) must not be below reconnect_min (120 s)" },
        { "offloads-unknown", CLI(",'offloads':['csum','tso5']"),
          L "[0].offloads[1]: unknown offload \"tso5\"; expected csum, tso4, tso6, ecn, uso4 or uso6" },
        { "offloads-type", CLI(",'offloads':'csum'"), L "[0].offloads: expected an array of strings, got the string \"csum\"" },
        { "offloads-entry-type", CLI(",'offloads':[1]"), L "[0].offloads[0]: expected a string, got the integer 1" },
        { "offloads-server", SRV(",'offloads':[]", CL1("")),
          L "[0].offloads: only allowed for a client (an interface with \"server\"); this interface is a server "
            "(it has \"port\")" },
        { "stall-timeout-small", CLI(",'stall_timeout':4"), L "[0].stall_timeout: must be between 5 and 3600, got 4" },
        { "http-value", CLI(",'http':'2.0'"), L "[0].http: expected \"1.1\" or \"2\", got \"2.0\"" },
        { "http-type", CLI(",'http':2"), L "[0].http: expected a string, got the integer 2" },
        { "http2-cleartext", CLI(",'http':'2'"),
          L "[0].http: \"2\" needs an https:// server URL (HTTP/2 is negotiated in the TLS handshake); use "
            "\"1.1\" for http://" },
        { "http-in-server", SRV(",'http':'1.1'", CL1("")),
          L "[0].http: only allowed for a client (an interface with \"server\"); this interface is a server "
            "(it has \"port\")" },
        { "reconnect-in-server", SRV(",'reconnect_min':1", CL1("")),
          L "[0].reconnect_min: only allowed for a client (an interface with \"server\"); this interface is a "
            "server (it has \"port\")" },

        /* metrics */
        { "metrics-type", SRV(",'metrics':9586", CL1("")),
          L "[0].metrics: expected an object with \"listen\", got the integer 9586" },
        { "metrics-listen-missing", CLI(",'metrics':{'unhealthy_after':5}"),
          L "[0].metrics: missing required field \"listen\"" },
        { "metrics-unknown", CLI(",'metrics':{'listen':9586,'unhealty_after':5}"),
          L "[0].metrics: unknown field \"unhealty_after\"; did you mean \"unhealthy_after\"?" },
        { "metrics-listen-type", CLI(",'metrics':{'listen':true}"),
          L "[0].metrics.listen: expected \"ADDRESS:PORT\", \"[IPV6]:PORT\" or a port number, got true" },
        { "metrics-listen-empty", CLI(",'metrics':{'listen':''}"),
          L "[0].metrics.listen: expected \"ADDRESS:PORT\", \"[IPV6]:PORT\" or a port number, got the string "
            "\"\"" },
        { "metrics-port-zero", CLI(",'metrics':{'listen':0}"),
          L "[0].metrics.listen: must be between 1 and 65535, got 0" },
        { "metrics-port-range", CLI(",'metrics':{'listen':'127.0.0.1:65536'}"),
          L "[0].metrics.listen: \"127.0.0.1:65536\" has an invalid port; expected 1 to 65535" },
        { "metrics-port-missing", CLI(",'metrics':{'listen':'127.0.0.1:'}"),
          L "[0].metrics.listen: \"127.0.0.1:\" has an invalid port; expected 1 to 65535" },
        { "metrics-port-string", CLI(",'metrics':{'listen':'http'}"),
          L "[0].metrics.listen: \"http\" has an invalid port; expected 1 to 65535" },
        { "metrics-address", CLI(",'metrics':{'listen':'localhost:9586'}"),
          L "[0].metrics.listen: \"localhost\" is not a valid IPv4 or IPv6 address" },
        { "metrics-address-prefix", CLI(",'metrics':{'listen':'10.0.0.1/8:9586'}"),
          L "[0].metrics.listen: \"10.0.0.1/8:9586\" is not a valid IPv4 or IPv6 address" },
        { "metrics-address-empty", CLI(",'metrics':{'listen':':9586'}"),
          L "[0].metrics.listen: \":9586\" is not a valid IPv4 or IPv6 address" },
        { "metrics-ipv6-brackets", CLI(",'metrics':{'listen':'::1:9586'}"),
          L "[0].metrics.listen: \"::1:9586\" has an IPv6 address without brackets; write \"[ADDRESS]:PORT\"" },
        { "metrics-ipv6-unclosed", CLI(",'metrics':{'listen':'[::1:9586'}"),
          L "[0].metrics.listen: expected \"ADDRESS:PORT\", \"[IPV6]:PORT\" or a port number, got "
            "\"[::1:9586\"" },
        { "metrics-unhealthy-after-zero", CLI(",'metrics':{'listen':9586,'unhealthy_after':0}"),
          L "[0].metrics.unhealthy_after: must be between 1 and 86400, got 0" },
        { "metrics-unhealthy-after-type", CLI(",'metrics':{'listen':9586,'unhealthy_after':'60'}"),
          L "[0].metrics.unhealthy_after: expected an integer, got the string \"60\"" },
        { "metrics-tunnel-port", SRV(",'metrics':{'listen':8080}", CL1("")),
          L "[0].metrics.listen: 127.0.0.1:8080 conflicts with the tunnel listener of this interface on "
            "127.0.0.1:8080; the metrics need a port of their own" },
        { "metrics-tunnel-wildcard", SRV(",'listen':'0.0.0.0','metrics':{'listen':'192.0.2.1:8080'}", CL1("")),
          L "[0].metrics.listen: 192.0.2.1:8080 conflicts with the tunnel listener of this interface on "
            "0.0.0.0:8080; the metrics need a port of their own" },
        { "metrics-tunnel-ipv6", SRV(",'listen':'::1','metrics':{'listen':'[::]:8080'}", CL1("")),
          L "[0].metrics.listen: [::]:8080 conflicts with the tunnel listener of this interface on [::1]:8080; "
            "the metrics need a port of their own" },
        { "metrics-tunnel-dual-stack", SRV(",'listen':'::','metrics':{'listen':8080}", CL1("")),
          L "[0].metrics.listen: 127.0.0.1:8080 conflicts with the tunnel listener of this interface on [::]:8080; "
            "the metrics need a port of their own" },
        { "metrics-other-tunnel",
          "[{'name':'a','server':'http://192.0.2.1/','token':'x','metrics':{'listen':'127.0.0.1:8080'}},"
          "{'name':'b','port':8080,'net':'10.10.0.1/24','clients':[]}]",
          L "[0].metrics.listen: 127.0.0.1:8080 conflicts with the tunnel listener of [1] (\"b\") on "
            "127.0.0.1:8080" },
        { "metrics-twice",
          "[{'name':'a','server':'http://192.0.2.1/','token':'x','metrics':{'listen':9586}},"
          "{'name':'b','server':'http://192.0.2.2/','token':'x','metrics':{'listen':'0.0.0.0:9586'}}]",
          L "[1].metrics.listen: 0.0.0.0:9586 conflicts with the metrics listener of [0] (\"a\") on "
            "127.0.0.1:9586" },
};

static void test_bad(gconstpointer data) {
        const BadCase *t = data;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = parse(t->json, &c, &errors);
        dump_errors(errors);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(c);
        g_assert_nonnull(errors);
        g_assert_cmpuint(strv_length(errors), ==, 1);
        g_assert_cmpstr(errors[0], ==, t->error);
}

/* Every problem in one run, in document order, and none of the follow-ups a broken field would cause. */
static void test_many_errors(void) {
        static const char *const expected[] = {
                L "[0]: unknown field \"prot\"; did you mean \"port\"?",
                L "[0].ca: only allowed for a client (an interface with \"server\"); this interface is a server "
                  "(it has \"port\")",
                L "[0].name: may contain only ASCII letters, digits, \"_\", \".\" and \"-\", got \"tun 0\"",
                L "[0].port: must be between 1 and 65535, got 80800",
                L "[0].clients[0].token: expected 40 lowercase hex digits (SHA-1 of the client token), got "
                  "\"ABC\"",
                L "[0].clients[0].ip: \"10.20.0.2\" is outside the interface's net 10.10.0.0/24",
                L "[0].clients[1].routes[0]: 10.1.5.0/24 overlaps 10.1.0.0/16, routed to clients[0] "
                  "(\"client0\")",
                L "[1].mark.table: table 255 is the kernel's \"local\" table; use another number",
                L "[1].server: expected an http:// or https:// URL, got \"ftp://x\"",
                L "[2]: expected an interface object, got an array",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = parse("[{'name':'tun 0','port':80800,'prot':1,'net':'10.10.0.1/24','ca':'/x',"
                  "'clients':[{'token':'ABC','ip':'10.20.0.2','routes':['10.1.0.0/16']},"
                  "{'token':'" TOK2 "','ip':'10.10.0.3','routes':['10.1.5.0/24']}]},"
                  "{'name':'tun1','server':'ftp://x','token':'t','mark':{'value':1,'table':255}},"
                  "[]]",
                  &c, &errors);
        dump_errors(errors);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(c);
        g_assert_cmpuint(strv_length(errors), ==, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                g_assert_cmpstr(errors[i], ==, expected[i]);
}

/* Conflicts between clients are reported in client order, each against the first client it clashes with. */
static void test_client_conflicts(void) {
        static const char *const expected[] = {
                L "[0].clients[1].name: name \"alice\" is already used by clients[0] (\"alice\")",
                L "[0].clients[1].ip: 10.10.0.2 is already the address of clients[0] (\"alice\")",
                L "[0].clients[1].routes[0]: 10.1.0.0/16 is also routed to clients[0] (\"alice\")",
                L "[0].clients[2].token: the same token as clients[0] (\"alice\")",
                L "[0].clients[2].ip: 10.10.0.2 is already the address of clients[0] (\"alice\")",
                L "[0].clients[2].routes[0]: 10.1.1.0/24 overlaps 10.1.0.0/16, routed to clients[0] (\"alice\")",
                L "[0].clients[2].routes[0]: 10.1.1.0/24 overlaps 10.1.0.0/16, routed to clients[1] (\"alice\")",
                L "[0].clients[2].sources[0]: 192.168.1.5 is already pinned to clients[0] (\"alice\")",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = parse(SRV("", "{'token':'" TOK1 "','ip':'10.10.0.2','name':'alice','routes':['10.1.0.0/16'],"
                          "'sources':['192.168.1.5']},"
                          "{'token':'" TOK2 "','ip':'10.10.0.2','name':'alice','routes':['10.1.0.0/16']},"
                          "{'token':'" TOK1 "','ip':'10.10.0.2','routes':['10.1.1.0/24'],'sources':['192.168.1.5']}"),
                  &c, &errors);
        dump_errors(errors);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_cmpuint(strv_length(errors), ==, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                g_assert_cmpstr(errors[i], ==, expected[i]);
}

/* A file with thousands of problems gives a bounded list that says how much it left out. */
static void test_many_errors_capped(void) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        GString *s = g_string_new("[");
        int r;

        for (unsigned i = 0; i < 1500; i++)
                g_string_append(s, i ? ",5" : "5");
        g_string_append(s, "]");

        r = config_parse(s->str, s->len, "big.json", &c, &errors);
        g_string_free(s, TRUE);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_cmpuint(strv_length(errors), ==, 1001);
        g_assert_cmpstr(errors[0], ==, "big.json: [0]: expected an interface object, got the integer 5");
        g_assert_cmpstr(errors[999], ==, "big.json: [999]: expected an interface object, got the integer 5");
        g_assert_cmpstr(errors[1000], ==, "big.json: 500 more errors not shown");
}

/* ---------------------------------------------------------------------------------------------- */

static void assert_server_defaults(const TapotunIfaceConfig *i) {
        g_assert_cmpint(i->mode, ==, TAPOTUN_MODE_SERVER);
        g_assert_cmpuint(i->mark_value, ==, 0);
        g_assert_cmpuint(i->mark_table, ==, 0);
        g_assert_cmpuint(i->mark_priority, ==, CONFIG_DEFAULT_MARK_PRIORITY);
        g_assert_cmpuint(i->keepalive_usec, ==, 55 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->peer_timeout_usec, ==, 180 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->max_connections, ==, 4096);
        g_assert_cmpuint(i->max_puts_per_client, ==, 4);
        g_assert_cmpuint(i->queue_bytes, ==, 12 * 1024 * 1024);
        g_assert_null(i->server);
        g_assert_null(i->token);
        g_assert_null(i->ca);
        g_assert_false(i->insecure);
        g_assert_cmpint(i->http_version, ==, TAPOTUN_HTTP_1_1);
}

static void test_readme_server(void) {
        static const uint8_t sha1_test[20] = { 0xa9, 0x4a, 0x8f, 0xe5, 0xcc, 0xb1, 0x9b, 0xa6, 0x1c, 0x4c,
                                               0x08, 0x73, 0xd3, 0x91, 0xe9, 0x87, 0x98, 0x2f, 0xbb, 0xd3 };
        _cleanup_(config_freep) Config *c = parse_good(README_SERVER);
        const TapotunIfaceConfig *i;
        const TapotunClientConfig *cl;

        g_assert_cmpuint(c->n_ifaces, ==, 1);
        i = &c->ifaces[0];
        g_assert_cmpstr(i->name, ==, "tun0");
        assert_server_defaults(i);
        g_assert_cmpuint(i->mtu, ==, 1500);
        g_assert_cmpstr(i->listen, ==, "127.0.0.1");
        g_assert_cmpuint(i->port, ==, 8080);
        assert_prefix(&i->net, "10.10.0.1/24");
        assert_prefix(&i->net6, NULL);
        g_assert_cmpuint(i->n_ips, ==, 0);
        g_assert_null(i->ips);
        g_assert_cmpuint(i->n_routes, ==, 0);
        g_assert_null(i->routes);

        g_assert_cmpuint(i->n_clients, ==, 1);
        cl = &i->clients[0];
        g_assert_cmpstr(cl->name, ==, "client0");
        g_assert_cmpstr(cl->token, ==, TOK1);
        g_assert_cmpmem(cl->token_sha1, sizeof cl->token_sha1, sha1_test, sizeof sha1_test);
        assert_prefix(&cl->ip, "10.10.0.2/32");
        assert_prefix(&cl->ip6, NULL);
        g_assert_cmpuint(cl->n_routes, ==, 0);
        g_assert_cmpuint(cl->n_sources, ==, 0);
        g_assert_false(cl->allow_spoofing);

        g_assert_true(config_find(c, "tun0") == i);
        g_assert_null(config_find(c, "tun1"));
}

static void test_client_timers(void) {
        _cleanup_(config_freep) Config *c =
                parse_good(CLI(",'keepalive':20,'reconnect_min':1,'reconnect_max':30,'stall_timeout':90"));
        const TapotunIfaceConfig *i = &c->ifaces[0];

        g_assert_cmpuint(i->keepalive_usec, ==, 20 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->reconnect_min_usec, ==, 1 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->reconnect_max_usec, ==, 30 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->stall_timeout_usec, ==, 90 * G_USEC_PER_SEC);
}

static void test_client_offloads(void) {
        _cleanup_(config_freep) Config *none = parse_good(CLI(""));
        _cleanup_(config_freep) Config *empty = parse_good(CLI(",'offloads':[]"));
        _cleanup_(config_freep) Config *some = parse_good(CLI(",'offloads':['csum','tso4']"));

        g_assert_cmphex(none->ifaces[0].offloads_mask, ==, 0);
        g_assert_cmphex(empty->ifaces[0].offloads_mask, ==, TAPOTUN_OFFLOADS_SET);
        g_assert_cmphex(some->ifaces[0].offloads_mask, ==, TAPOTUN_OFFLOADS_SET | 0x03);
}

static void test_metrics(void) {
        _cleanup_(config_freep) Config *none = parse_good(CLI(""));
        _cleanup_(config_freep) Config *port = parse_good(CLI(",'metrics':{'listen':9586}"));
        _cleanup_(config_freep) Config *port_string = parse_good(CLI(",'metrics':{'listen':'9100'}"));
        _cleanup_(config_freep) Config *v4 =
                parse_good(CLI(",'metrics':{'listen':'0.0.0.0:9100','unhealthy_after':2}"));
        _cleanup_(config_freep) Config *v6 =
                parse_good(CLI(",'metrics':{'listen':'[::1]:65535','unhealthy_after':86400}"));
        /* The tunnel's port on another address, or on the other family, is free for the metrics. */
        _cleanup_(config_freep) Config *srv = parse_good(
                "[{'name':'a','port':8080,'listen':'192.0.2.10','net':'10.10.0.1/24','clients':[],"
                "'metrics':{'listen':'127.0.0.1:8080'}},"
                "{'name':'b','port':8081,'net':'10.11.0.1/24','clients':[],"
                "'metrics':{'listen':'[::1]:8081'}}]");

        g_assert_null(none->ifaces[0].metrics_listen);
        g_assert_cmpuint(none->ifaces[0].unhealthy_after_usec, ==, 60 * G_USEC_PER_SEC);

        g_assert_cmpstr(port->ifaces[0].metrics_listen, ==, "127.0.0.1");
        g_assert_cmpuint(port->ifaces[0].metrics_port, ==, 9586);
        g_assert_cmpuint(port->ifaces[0].unhealthy_after_usec, ==, 60 * G_USEC_PER_SEC);
        g_assert_cmpstr(port_string->ifaces[0].metrics_listen, ==, "127.0.0.1");
        g_assert_cmpuint(port_string->ifaces[0].metrics_port, ==, 9100);

        g_assert_cmpstr(v4->ifaces[0].metrics_listen, ==, "0.0.0.0");
        g_assert_cmpuint(v4->ifaces[0].metrics_port, ==, 9100);
        g_assert_cmpuint(v4->ifaces[0].unhealthy_after_usec, ==, 2 * G_USEC_PER_SEC);
        g_assert_cmpstr(v6->ifaces[0].metrics_listen, ==, "::1");
        g_assert_cmpuint(v6->ifaces[0].metrics_port, ==, 65535);
        g_assert_cmpuint(v6->ifaces[0].unhealthy_after_usec, ==, 86400ull * G_USEC_PER_SEC);

        g_assert_cmpstr(srv->ifaces[0].metrics_listen, ==, "127.0.0.1");
        g_assert_cmpuint(srv->ifaces[0].metrics_port, ==, 8080);
        g_assert_cmpstr(srv->ifaces[1].metrics_listen, ==, "::1");
        g_assert_cmpuint(srv->ifaces[1].metrics_port, ==, 8081);
}

static void test_readme_client(void) {
        _cleanup_(config_freep) Config *c = parse_good(README_CLIENT);
        const TapotunIfaceConfig *i;

        g_assert_cmpuint(c->n_ifaces, ==, 1);
        i = &c->ifaces[0];
        g_assert_cmpstr(i->name, ==, "tun0");
        g_assert_cmpint(i->mode, ==, TAPOTUN_MODE_CLIENT);
        g_assert_cmpstr(i->server, ==, "http://192.0.2.1:8080/");
        g_assert_cmpstr(i->token, ==, "test");
        g_assert_null(i->ca);
        g_assert_false(i->insecure);
        g_assert_cmpuint(i->mark_value, ==, 0);
        g_assert_cmpuint(i->mark_priority, ==, CONFIG_DEFAULT_MARK_PRIORITY);
        g_assert_cmpuint(i->keepalive_usec, ==, 55 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->reconnect_min_usec, ==, 3 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->reconnect_max_usec, ==, 60 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->keepalive_usec, ==, 55 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->reconnect_max_usec, ==, 60 * G_USEC_PER_SEC);
        g_assert_cmpuint(i->stall_timeout_usec, ==, 60 * G_USEC_PER_SEC);
        /* HTTP/1.1 unless asked for: every proxy streams it. */
        g_assert_cmpint(i->http_version, ==, TAPOTUN_HTTP_1_1);
        /* The client learns its MTU and addresses from the server. */
        g_assert_cmpuint(i->mtu, ==, 0);
        g_assert_null(i->listen);
        g_assert_cmpuint(i->port, ==, 0);
        g_assert_cmpuint(i->n_clients, ==, 0);
        assert_prefix(&i->net, NULL);
}

static void test_ipv6(void) {
        _cleanup_(config_freep) Config *c = parse_good(
                "[{'name':'tun6','port':443,'listen':'::1','net':'fd00:10::1/64','clients':["
                "{'token':'" TOK1 "','ip':'fd00:10::2','routes':['fd00:20::/48','2001:db8::/32'],"
                "'sources':['2001:db8:1::5']}]}]");
        const TapotunIfaceConfig *i = &c->ifaces[0];

        assert_server_defaults(i);
        g_assert_cmpstr(i->listen, ==, "::1");
        g_assert_cmpuint(i->port, ==, 443);
        assert_prefix(&i->net, NULL);
        assert_prefix(&i->net6, "fd00:10::1/64");
        g_assert_cmpuint(i->mtu, ==, 1500);
        assert_prefix(&i->clients[0].ip, NULL);
        assert_prefix(&i->clients[0].ip6, "fd00:10::2/128");
        g_assert_cmpuint(i->clients[0].n_routes, ==, 2);
        assert_prefix(&i->clients[0].routes[0], "fd00:20::/48");
        assert_prefix(&i->clients[0].routes[1], "2001:db8::/32");
        g_assert_cmpuint(i->clients[0].n_sources, ==, 1);
        assert_prefix(&i->clients[0].sources[0], "2001:db8:1::5/128");
}

static void test_dual_stack(void) {
        _cleanup_(config_freep) Config *c = parse_good(
                "[{'name':'tun0','port':8080,'listen':'0.0.0.0','net':['10.10.0.1/24','fd00:10::1/64'],"
                "'mtu':1280,'clients':["
                "{'name':'alice','token':'" TOK1 "','ip':['10.10.0.2','fd00:10::2/128']},"
                "{'name':'bob','token':'" TOK2 "','ip':['fd00:10::3','10.10.0.3'],"
                "'routes':['192.168.50.0/24','fd00:50::/64']},"
                "{'token':'" TOK3 "','ip':'fd00:10::4'}]}]");
        const TapotunIfaceConfig *i = &c->ifaces[0];

        assert_prefix(&i->net, "10.10.0.1/24");
        assert_prefix(&i->net6, "fd00:10::1/64");
        g_assert_cmpuint(i->mtu, ==, 1280);
        g_assert_cmpstr(i->listen, ==, "0.0.0.0");
        g_assert_cmpuint(i->n_clients, ==, 3);
        g_assert_cmpstr(i->clients[0].name, ==, "alice");
        assert_prefix(&i->clients[0].ip, "10.10.0.2/32");
        assert_prefix(&i->clients[0].ip6, "fd00:10::2/128");
        g_assert_cmpstr(i->clients[1].name, ==, "bob");
        assert_prefix(&i->clients[1].ip, "10.10.0.3/32");
        assert_prefix(&i->clients[1].ip6, "fd00:10::3/128");
        assert_prefix(&i->clients[1].routes[0], "192.168.50.0/24");
        assert_prefix(&i->clients[1].routes[1], "fd00:50::/64");
        g_assert_cmpstr(i->clients[2].name, ==, "client2");
        assert_prefix(&i->clients[2].ip, NULL);
        assert_prefix(&i->clients[2].ip6, "fd00:10::4/128");
}

static void test_all_options(void) {
        _cleanup_(config_freep) Config *c = parse_good(
                "[{'name':'srv.0','port':65535,'listen':'192.0.2.10','net':'10.10.0.1/16',"
                "'mark':{'value':4294967295,'table':4294967295,'priority':1},"
                "'mtu':9000,'ips':['10.20.0.1/24','172.16.0.1'],'routes':['192.168.0.0/24','0.0.0.0/0'],"
                "'peer_timeout':86400,'max_connections':1000000,'max_puts_per_client':64,"
                "'queue_bytes':1073741824,'clients':["
                "{'name':'" "0123456789012345678901234567890123456789012345678901234567890123" "',"
                "'token':'" TOK1 "','ip':'10.10.255.254','routes':['10.99.0.0/16','10.98.0.1'],"
                "'sources':['192.168.0.7','192.168.0.8/32'],'allow_spoofing':true},"
                "{'token':'" TOK2 "','ip':'10.10.0.2','allow_spoofing':false}]},"
                "{'name':'cli-1_x','server':'HTTPS://user:pw@[2001:db8::1]:8443/ip?x=1','token':'t0k~!',"
                "'ca':'/etc/ssl/ca.pem','insecure':true,'mark':{'value':0,'table':1},'http':'2'},"
                "{'name':'cli2','server':'http://edge.example.com','token':'x','http':'1.1'}]");
        const TapotunIfaceConfig *s = config_find(c, "srv.0"), *k = config_find(c, "cli-1_x");

        g_assert_cmpuint(c->n_ifaces, ==, 3);
        g_assert_nonnull(s);
        g_assert_nonnull(k);
        g_assert_true(s == &c->ifaces[0]);
        g_assert_true(k == &c->ifaces[1]);
        g_assert_true(config_find(c, "cli2") == &c->ifaces[2]);

        g_assert_cmpint(s->mode, ==, TAPOTUN_MODE_SERVER);
        g_assert_cmpuint(s->port, ==, 65535);
        g_assert_cmpstr(s->listen, ==, "192.0.2.10");
        assert_prefix(&s->net, "10.10.0.1/16");
        g_assert_cmpuint(s->mark_value, ==, 4294967295u);
        g_assert_cmpuint(s->mark_table, ==, 4294967295u);
        g_assert_cmpuint(s->mark_priority, ==, 1);
        g_assert_cmpuint(s->mtu, ==, 9000);
        g_assert_cmpuint(s->n_ips, ==, 2);
        assert_prefix(&s->ips[0], "10.20.0.1/24");
        assert_prefix(&s->ips[1], "172.16.0.1/32");
        g_assert_cmpuint(s->n_routes, ==, 2);
        assert_prefix(&s->routes[0], "192.168.0.0/24");
        assert_prefix(&s->routes[1], "0.0.0.0/0");
        g_assert_cmpuint(s->peer_timeout_usec, ==, 86400ull * G_USEC_PER_SEC);
        g_assert_cmpuint(s->max_connections, ==, 1000000);
        g_assert_cmpuint(s->max_puts_per_client, ==, 64);
        g_assert_cmpuint(s->queue_bytes, ==, 1073741824);
        g_assert_cmpuint(s->n_clients, ==, 2);
        g_assert_cmpstr(s->clients[0].name, ==, "0123456789012345678901234567890123456789012345678901234567890123");
        assert_prefix(&s->clients[0].ip, "10.10.255.254/32");
        g_assert_cmpuint(s->clients[0].n_routes, ==, 2);
        assert_prefix(&s->clients[0].routes[0], "10.99.0.0/16");
        assert_prefix(&s->clients[0].routes[1], "10.98.0.1/32");
        g_assert_cmpuint(s->clients[0].n_sources, ==, 2);
        assert_prefix(&s->clients[0].sources[0], "192.168.0.7/32");
        assert_prefix(&s->clients[0].sources[1], "192.168.0.8/32");
        g_assert_true(s->clients[0].allow_spoofing);
        g_assert_cmpstr(s->clients[1].name, ==, "client1");
        g_assert_cmpstr(s->clients[1].token, ==, TOK2);
        g_assert_false(s->clients[1].allow_spoofing);

        g_assert_cmpint(k->mode, ==, TAPOTUN_MODE_CLIENT);
        g_assert_cmpstr(k->server, ==, "HTTPS://user:pw@[2001:db8::1]:8443/ip?x=1");
        g_assert_cmpstr(k->token, ==, "t0k~!");
        g_assert_cmpstr(k->ca, ==, "/etc/ssl/ca.pem");
        g_assert_true(k->insecure);
        g_assert_cmpint(k->http_version, ==, TAPOTUN_HTTP_2);
        g_assert_cmpint(config_find(c, "cli2")->http_version, ==, TAPOTUN_HTTP_1_1);
        g_assert_cmpuint(k->mark_value, ==, 0);
        g_assert_cmpuint(k->mark_table, ==, 1);
        g_assert_cmpuint(k->mark_priority, ==, CONFIG_DEFAULT_MARK_PRIORITY);
}

/* An empty client list is allowed (clients are added later), and so are two servers on one port with
 * different addresses. */
static void test_edge_cases(void) {
        _cleanup_(config_freep) Config *c = parse_good(
                "[{'name':'a','port':8080,'net':'10.10.0.1/24','clients':[]},"
                "{'name':'b','port':8080,'listen':'127.0.0.2','net':'10.11.0.1/31','clients':["
                "{'token':'" TOK1 "','ip':'10.11.0.0'}]}]");

        g_assert_cmpuint(c->n_ifaces, ==, 2);
        g_assert_cmpuint(c->ifaces[0].n_clients, ==, 0);
        g_assert_null(c->ifaces[0].clients);
        /* In a /31 both addresses are hosts (RFC 3021). */
        assert_prefix(&c->ifaces[1].clients[0].ip, "10.11.0.0/32");
}

static void test_strings(void) {
        char *l[] = { (char *) "a", (char *) "b", NULL };

        g_assert_cmpstr(tapotun_mode_to_string(TAPOTUN_MODE_SERVER), ==, "server");
        g_assert_cmpstr(tapotun_mode_to_string(TAPOTUN_MODE_CLIENT), ==, "client");
        g_assert_null(tapotun_mode_to_string(_TAPOTUN_MODE_MAX));
        g_assert_cmpint((int) tapotun_mode_from_string("client"), ==, TAPOTUN_MODE_CLIENT);
        g_assert_cmpint((int) tapotun_mode_from_string("server"), ==, TAPOTUN_MODE_SERVER);
        g_assert_cmpint((int) tapotun_mode_from_string("Server"), ==, -EINVAL);
        g_assert_cmpint((int) tapotun_mode_from_string(NULL), ==, -EINVAL);
        g_assert_cmpuint(strv_length(l), ==, 2);
        g_assert_cmpuint(strv_length(NULL), ==, 0);
        g_assert_null(strv_free(NULL));
        g_assert_null(config_free(NULL));
        g_assert_null(config_find(NULL, "x"));
}

/* The object form of the root carries the same interfaces; the array form has no update check. */
static void test_root_object(void) {
        _cleanup_(config_freep) Config *a = parse_good(README_SERVER);
        _cleanup_(config_freep) Config *o = parse_good(OBJ(README_SERVER, ""));

        g_assert_cmpuint(o->n_ifaces, ==, 1);
        g_assert_cmpstr(o->ifaces[0].name, ==, "tun0");
        g_assert_cmpuint(o->ifaces[0].port, ==, 8080);
        g_assert_cmpuint(o->ifaces[0].n_clients, ==, 1);
        g_assert_null(a->update.url);
        g_assert_null(o->update.url);
        g_assert_true(update_config_equal(&a->update, &o->update));
}

static void test_update_defaults(void) {
        _cleanup_(config_freep) Config *c = parse_good(UPD(FEED));

        g_assert_cmpstr(c->update.url, ==, "http://192.0.2.9/feed.json");
        g_assert_cmpuint(c->update.interval_usec, ==, 21600ull * G_USEC_PER_SEC);
        g_assert_cmpuint(c->update.timeout_usec, ==, 30 * G_USEC_PER_SEC);
        g_assert_false(c->update.install);
        g_assert_null(c->update.path);
        g_assert_cmpstr(c->ifaces[0].server, ==, "http://192.0.2.1:8080/");
}

static void test_update_all(void) {
        _cleanup_(config_freep) Config *c = parse_good(
                UPD("'url':'HTTPS://user@[2001:db8::9]:8443/tapotun/feed.json?arch=amd64','interval':60,"
                    "'timeout':3600,'install':true,'path':'/usr/local/sbin/tapotund'"));
        _cleanup_(config_freep) Config *d = parse_good(UPD(FEED ",'interval':2592000,'timeout':1,'install':false"));
        UpdateConfig copy;

        g_assert_cmpstr(c->update.url, ==, "HTTPS://user@[2001:db8::9]:8443/tapotun/feed.json?arch=amd64");
        g_assert_cmpuint(c->update.interval_usec, ==, 60 * G_USEC_PER_SEC);
        g_assert_cmpuint(c->update.timeout_usec, ==, 3600ull * G_USEC_PER_SEC);
        g_assert_true(c->update.install);
        g_assert_cmpstr(c->update.path, ==, "/usr/local/sbin/tapotund");
        g_assert_cmpuint(d->update.interval_usec, ==, 2592000ull * G_USEC_PER_SEC);
        g_assert_cmpuint(d->update.timeout_usec, ==, 1 * G_USEC_PER_SEC);
        g_assert_false(d->update.install);

        /* What a reload compares: a copy is equal, any changed field is not. */
        g_assert_cmpint(update_config_copy(&copy, &c->update), ==, 0);
        g_assert_true(copy.url != c->update.url);
        g_assert_true(update_config_equal(&copy, &c->update));
        copy.install = false;
        g_assert_false(update_config_equal(&copy, &c->update));
        copy.install = true;
        free(copy.path);
        copy.path = NULL;
        g_assert_false(update_config_equal(&copy, &c->update));
        g_assert_false(update_config_equal(&c->update, &d->update));
        update_config_done(&copy);
        g_assert_null(copy.url);
}

/* The tests lower the smallest interval through the environment; nothing else does. */
static void test_update_min_interval_env(void) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;

        g_assert_true(g_setenv(CONFIG_UPDATE_MIN_INTERVAL_ENV, "1", TRUE));
        c = parse_good(UPD(FEED ",'interval':1"));
        g_assert_cmpuint(c->update.interval_usec, ==, 1 * G_USEC_PER_SEC);

        /* Only lowered: a larger value or garbage leaves the minimum at 60 s. */
        g_assert_true(g_setenv(CONFIG_UPDATE_MIN_INTERVAL_ENV, "x", TRUE));
        g_assert_cmpint(parse(UPD(FEED ",'interval':1"), NULL, &errors), ==, -EINVAL);
        g_assert_cmpstr(errors[0], ==, L "update.interval: must be between 60 and 2592000, got 1");
        g_unsetenv(CONFIG_UPDATE_MIN_INTERVAL_ENV);
}

/* In the object form too, every problem at once, in document order. */
static void test_root_object_many_errors(void) {
        static const char *const expected[] = {
                L "top level: unknown field \"interface\"; did you mean \"interfaces\"?",
                L "interfaces[0].port: must be between 1 and 65535, got 0",
                L "interfaces[1]: expected an interface object, got the integer 7",
                L "update: unknown field \"instal\"; did you mean \"install\"?",
                L "update.url: expected an http:// or https:// URL, got \"feed.json\"",
                L "update.timeout: expected an integer, got the number 1.5",
        };
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = parse("{'interface':1,'interfaces':[{'name':'tun0','port':0,'net':'10.10.0.1/24','clients':[]},7],"
                  "'update':{'url':'feed.json','timeout':1.5,'instal':true}}",
                  &c, &errors);
        dump_errors(errors);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(c);
        g_assert_cmpuint(strv_length(errors), ==, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                g_assert_cmpstr(errors[i], ==, expected[i]);
}

/* ---------------------------------------------------------------------------------------------- */

static void test_load_missing(void) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = config_load("/nonexistent/tapotun.json", &c, &errors);
        g_assert_cmpint(r, ==, -ENOENT);
        g_assert_null(c);
        g_assert_cmpuint(strv_length(errors), ==, 1);
        g_assert_cmpstr(errors[0], ==, "/nonexistent/tapotun.json: cannot read: No such file or directory");
}

static void test_load_directory(void) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        r = config_load("/", &c, &errors);
        g_assert_cmpint(r, ==, -EISDIR);
        g_assert_null(c);
        g_assert_cmpstr(errors[0], ==, "/: cannot read: Is a directory");
}

static char *write_tmp(const char *dir, const char *name, const char *json) {
        g_autofree char *j = g_strdup(json);
        char *path = g_build_filename(dir, name, NULL);

        g_strdelimit(j, "'", '"');
        g_assert_true(g_file_set_contents(path, j, -1, NULL));
        return path;
}

static void test_load_file(void) {
        g_autofree char *dir = g_dir_make_tmp("test-conf-XXXXXX", NULL);
        g_autofree char *good = NULL, *bad = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(strv_freep) char **errors = NULL;
        int r;

        g_assert_nonnull(dir);
        good = write_tmp(dir, "good.json", README_SERVER);
        bad = write_tmp(dir, "bad.json", "[\n  {'name': 'tun0',\n   'port': 8080,,\n}]");

        r = config_load(good, &c, &errors);
        g_assert_cmpint(r, ==, 0);
        g_assert_cmpstr(c->ifaces[0].name, ==, "tun0");

        r = config_load(bad, &c, &errors);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_cmpuint(strv_length(errors), ==, 1);
        g_assert_true(g_str_has_prefix(errors[0], bad));
        g_assert_cmpstr(errors[0] + strlen(bad), ==, ":3:17: string or '}' expected near ','");
        /* A failed load leaves the old configuration alone. */
        g_assert_cmpstr(c->ifaces[0].name, ==, "tun0");

        g_assert_cmpint(g_unlink(good), ==, 0);
        g_assert_cmpint(g_unlink(bad), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* The sample files in tests/conf/, which the README shows. */
static void test_load_samples(void) {
        static const struct {
                const char *file;
                size_t n_ifaces;
        } samples[] = {
                { "server-minimal.json", 1 },
                { "client-minimal.json", 1 },
                { "dual-stack.json", 2 },
        };
        const char *root = g_getenv("TAPOTUN_SOURCE_ROOT");

        if (!root) {
                g_test_skip("TAPOTUN_SOURCE_ROOT is not set (run through meson test)");
                return;
        }

        for (size_t i = 0; i < ELEMENTSOF(samples); i++) {
                g_autofree char *path = g_build_filename(root, "tests", "conf", samples[i].file, NULL);
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(strv_freep) char **errors = NULL;
                int r;

                r = config_load(path, &c, &errors);
                dump_errors(errors);
                g_assert_cmpint(r, ==, 0);
                g_assert_cmpuint(c->n_ifaces, ==, samples[i].n_ifaces);
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* tapotunctl */

typedef struct CtlCase {
        const char *name;
        const char *config; /* written to FILE, which replaces "FILE" in the command */
        const char *command; /* run by /bin/sh with $CTL set to the binary */
        int status;
        const char *out;    /* exact stdout */
        const char *err;    /* substring of stderr; NULL: must be empty */
} CtlCase;

static const CtlCase ctl_cases[] = {
        { "validate-server", README_SERVER, "\"$CTL\" validate FILE", 0,
          "tun0: server, 1 client, listening on 127.0.0.1:8080\n", NULL },
        { "validate-client", README_CLIENT, "\"$CTL\" validate FILE", 0, "tun0: client, server http://192.0.2.1:8080/\n",
          NULL },
        { "validate-several",
          "[{'name':'s','port':443,'listen':'::','net':'10.10.0.1/24','clients':[]},"
          "{'name':'s2','port':444,'net':'10.11.0.1/24','clients':["
          "{'token':'" TOK1 "','ip':'10.11.0.2'},{'token':'" TOK2 "','ip':'10.11.0.3'}]}]",
          "\"$CTL\" validate FILE", 0,
          "s: server, 0 clients, listening on [::]:443\ns2: server, 2 clients, listening on 127.0.0.1:444\n",
          NULL },
        { "validate-errors", "[{'name':'tun0','port':0,'net':'10.10.0.1','clients':[]}]", "\"$CTL\" validate FILE",
          1, "",
          "FILE: [0].port: must be between 1 and 65535, got 0\n"
          "FILE: [0].net: \"10.10.0.1\" has no prefix length; write the address with its prefix, e.g. "
          "\"10.10.0.1/24\"\n" },
        { "validate-object", OBJ(README_SERVER, ",'update':{" FEED "}"), "\"$CTL\" validate FILE", 0,
          "tun0: server, 1 client, listening on 127.0.0.1:8080\n", NULL },
        { "validate-missing", NULL, "\"$CTL\" validate /nonexistent.json", 1, "",
          "/nonexistent.json: cannot read: No such file or directory\n" },
        { "validate-no-file", NULL, "\"$CTL\" validate", 1, "", "Too few arguments for \"validate\"" },
        { "validate-two-files", NULL, "\"$CTL\" validate a b", 1, "", "Too many arguments for \"validate\"" },
        { "hash-token", NULL, "\"$CTL\" hash-token test", 0, TOK1 "\n", NULL },
        { "hash-token-stdin", NULL, "printf 'test\\n' | \"$CTL\" hash-token -", 0, TOK1 "\n", NULL },
        { "hash-token-stdin-crlf", NULL, "printf 'bar\\r\\n' | \"$CTL\" hash-token -", 0, TOK2 "\n", NULL },
        { "hash-token-stdin-bare", NULL, "printf 'baz' | \"$CTL\" hash-token -", 0, TOK3 "\n", NULL },
        { "hash-token-space", NULL, "\"$CTL\" hash-token 'a b'", 1, "",
          "The token must contain only printable ASCII characters without spaces." },
        { "hash-token-empty", NULL, "printf '\\n' | \"$CTL\" hash-token -", 1, "", "The token must not be empty." },
        { "help", NULL, "\"$CTL\" --help", 0, NULL, NULL },
        { "version", NULL, "\"$CTL\" --version", 0, "tapotunctl " PACKAGE_VERSION "\n", NULL },
        /* A bare tapotunctl lists the daemons: it goes to the bus. */
        { "no-verb", NULL, "\"$CTL\" --bus-address=unix:path=/nonexistent", 1, "",
          "Failed to connect to the bus at unix:path=/nonexistent" },
        { "unknown-verb", NULL, "\"$CTL\" frobnicate", 1, "", "Unknown command \"frobnicate\"." },
        { "unknown-option", NULL, "\"$CTL\" --frobnicate", 1, "", "frobnicate" },
};

static void test_ctl(gconstpointer data) {
        const CtlCase *t = data;
        const char *root = g_getenv("TAPOTUN_BUILD_ROOT");
        g_autofree char *ctl = NULL, *dir = NULL, *file = NULL, *command = NULL, *out = NULL, *err = NULL;
        g_autofree char *expected_err = NULL;
        g_auto(GStrv) env = NULL;
        g_autoptr(GError) error = NULL;
        int status;

        if (!root) {
                g_test_skip("TAPOTUN_BUILD_ROOT is not set (run through meson test)");
                return;
        }
        ctl = g_build_filename(root, "dbus", "tapotunctl", NULL);
        g_assert_true(g_file_test(ctl, G_FILE_TEST_IS_EXECUTABLE));

        command = g_strdup(t->command);
        expected_err = g_strdup(t->err);
        if (t->config) {
                GString *c = g_string_new(t->command), *e = g_string_new(t->err);

                dir = g_dir_make_tmp("test-ctl-XXXXXX", NULL);
                g_assert_nonnull(dir);
                file = write_tmp(dir, "tapotun.json", t->config);
                g_string_replace(c, "FILE", file, 0);
                g_string_replace(e, "FILE", file, 0);
                g_free(command);
                command = g_string_free(c, FALSE);
                g_free(expected_err);
                expected_err = g_string_free(e, FALSE);
        }

        env = g_environ_setenv(g_get_environ(), "CTL", ctl, TRUE);
        env = g_environ_setenv(env, "LC_ALL", "C", TRUE);
        env = g_environ_unsetenv(env, "LANGUAGE");

        g_assert_true(g_spawn_sync(NULL, (char *[]) { (char *) "/bin/sh", (char *) "-c", command, NULL }, env, 0,
                                   NULL, NULL, &out, &err, &status, &error));
        g_assert_no_error(error);
        g_test_message("stdout: %s", out);
        g_test_message("stderr: %s", err);

        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, t->status);
        if (t->out)
                g_assert_cmpstr(out, ==, t->out);
        if (expected_err)
                g_assert_nonnull(strstr(err, expected_err));
        else
                g_assert_cmpstr(err, ==, "");

        if (streq(t->name, "help")) {
                /* Generated from the verb table: every verb with its arguments. */
                g_assert_nonnull(strstr(out, "\n  validate FILE  "));
                g_assert_nonnull(strstr(out, "\n  hash-token TOKEN|-  "));
                g_assert_nonnull(strstr(out, "--version"));
        }

        if (file) {
                g_assert_cmpint(g_unlink(file), ==, 0);
                g_assert_cmpint(g_rmdir(dir), ==, 0);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                g_autofree char *name = g_strdup_printf("/conf/config_parse/bad/%s", bad_cases[i].name);
                g_test_add_data_func(name, &bad_cases[i], test_bad);
        }
        g_test_add_func("/conf/config_parse/many-errors", test_many_errors);
        g_test_add_func("/conf/config_parse/many-errors-capped", test_many_errors_capped);
        g_test_add_func("/conf/config_parse/client-conflicts", test_client_conflicts);
        g_test_add_func("/conf/config_parse/readme-server", test_readme_server);
        g_test_add_func("/conf/config_parse/readme-client", test_readme_client);
        g_test_add_func("/conf/config_parse/client-timers", test_client_timers);
        g_test_add_func("/conf/config_parse/client-offloads", test_client_offloads);
        g_test_add_func("/conf/config_parse/metrics", test_metrics);
        g_test_add_func("/conf/config_parse/ipv6", test_ipv6);
        g_test_add_func("/conf/config_parse/dual-stack", test_dual_stack);
        g_test_add_func("/conf/config_parse/all-options", test_all_options);
        g_test_add_func("/conf/config_parse/edge-cases", test_edge_cases);
        g_test_add_func("/conf/strings", test_strings);
        g_test_add_func("/conf/config_parse/root-object", test_root_object);
        g_test_add_func("/conf/config_parse/root-object-many-errors", test_root_object_many_errors);
        g_test_add_func("/conf/config_parse/update-defaults", test_update_defaults);
        g_test_add_func("/conf/config_parse/update-all", test_update_all);
        g_test_add_func("/conf/config_parse/update-min-interval-env", test_update_min_interval_env);
        g_test_add_func("/conf/config_load/missing", test_load_missing);
        g_test_add_func("/conf/config_load/directory", test_load_directory);
        g_test_add_func("/conf/config_load/file", test_load_file);
        g_test_add_func("/conf/config_load/samples", test_load_samples);
        for (size_t i = 0; i < ELEMENTSOF(ctl_cases); i++) {
                g_autofree char *name = g_strdup_printf("/conf/tapotunctl/%s", ctl_cases[i].name);
                g_test_add_data_func(name, &ctl_cases[i], test_ctl);
        }

        return g_test_run();
}
