#!/bin/bash
# One full tunnel lifecycle with both daemons under valgrind memcheck: start, connect, ping both ways,
# a few MiB each way, the server's TUN deleted and created again, a reload (SIGHUP) that adds a client,
# the client reloaded with new settings (its transport starts over) and a second interface, its
# connections killed under it (it reconnects by itself), and SIGTERM. Both must exit 0 with no memcheck
# error, no definite or indirect leak, and no descriptor of their own left open. No D-Bus: the daemons
# are pointed at a bus that does not exist and run without it. No suppression is needed: libc, libcurl,
# OpenSSL, libuv and h2o report nothing here.
#
# Skipped in the sanitizer build: valgrind cannot run AddressSanitizer binaries.
source "$(dirname "$0")/lib.sh"
e2e_require_root
if [ -n "${TAPOTUN_SANITIZE:-}" ] && [ "$TAPOTUN_SANITIZE" != none ]; then
        echo "1..0 # SKIP built with -Db_sanitize=$TAPOTUN_SANITIZE; valgrind does not run sanitized binaries"
        exit 0
fi
if ! command -v valgrind >/dev/null; then
        echo "1..0 # SKIP valgrind is not installed (.ci/packages)"
        exit 0
fi
trap e2e_cleanup EXIT
WIRE="python3 $(dirname "$0")/wire.py"
TOKEN_B_SHA1=$(printf %s beta-secret | sha1sum | cut -d' ' -f1)
# Valgrind makes everything 20 to 50 times slower: generous waits.
WAIT=60

# vg_start NS NAME CONFIG: tapotund under memcheck in NS; the daemon's log goes to NAME.log, valgrind's
# report to NAME.vg.
vg_start() {
        local ns=$1 name=$2 conf=$3
        ip netns exec "$ns" valgrind --leak-check=full --show-leak-kinds=definite,indirect \
                --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-fds=yes \
                --log-file="$E2E_TMP/$name.vg" \
                "$TAPOTUND" --bus-address=unix:path=/nonexistent/tapotun-test-no-bus "$conf" \
                >>"$E2E_TMP/$name.log" 2>&1 &
        E2E_LAST_PID=$!
        E2E_PIDS+=("$E2E_LAST_PID")
}

# blast LABEL FROM_NS TO_NS TO_ADDR BYTES: BYTES through the tunnel, SHA-256 compared on both ends.
blast() {
        local sent pid
        ip netns exec "$3" timeout 120 $WIRE blast-recv "$4" 5001 >"$E2E_TMP/recv.out" &
        pid=$!
        wait_for 10 bash -c "ip netns exec $3 ss -Htln 'sport = :5001' | grep -q ."
        sent=$(ip netns exec "$2" timeout 120 $WIRE blast-send "$4" 5001 "$5")
        wait "$pid"
        check "$1" test -n "$sent" -a "$sent" = "$(cat "$E2E_TMP/recv.out")"
}

# vg_clean NAME: valgrind's report has no error and no leak it counts, and every descriptor open at exit
# was inherited (what the daemon opened itself is listed with the stack that opened it); prints the
# report otherwise.
vg_clean() {
        local f="$E2E_TMP/$1.vg"
        [ -f "$f" ] || { echo "no valgrind report $f"; return 1; }
        if grep -q -E "Invalid |uninitialised|Mismatched|(definitely|indirectly) lost in|Syscall param" "$f" ||
                ! grep -q "ERROR SUMMARY: 0 errors" "$f" || ! grep -q "FILE DESCRIPTORS: " "$f" ||
                ! awk '/Open (file descriptor|AF_)/ { open = 1; next }
                       open { if ($0 !~ /<inherited from parent>/) bad = 1; open = 0 }
                       END { exit bad }' "$f"; then
                cat "$f"
                return 1
        fi
}

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
cat >"$E2E_TMP/server.json" <<JSON
[ { "name": "tun0", "port": 8080, "listen": "0.0.0.0", "net": "10.10.0.1/24",
    "clients": [ { "name": "alpha", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" } ] } ]
JSON
# client_config [EXTRA_FIELDS [EXTRA_INTERFACE]]
client_config() {
        cat >"$E2E_TMP/client.json" <<JSON
[ { "name": "tun0", "server": "http://$SRV_UNDERLAY:8080/", "token": "test", "reconnect_min": 1,
    "reconnect_max": 2${1:-} }${2:-} ]
JSON
}
client_config ""

vg_start "$NS_SRV" server "$E2E_TMP/server.json"
SRV_PID=$E2E_LAST_PID
check "server under valgrind creates tun0" wait_for $WAIT tun_has_addr "$NS_SRV" tun0 10.10.0.1
vg_start "$NS_CLI" client "$E2E_TMP/client.json"
CLI_PID=$E2E_LAST_PID
check "client under valgrind gets 10.10.0.2" wait_for $WAIT tun_has_addr "$NS_CLI" tun0 10.10.0.2
check "ping client -> server" wait_for $WAIT ip netns exec "$NS_CLI" ping -c 1 -W 2 10.10.0.1
check "ping server -> client" ip netns exec "$NS_SRV" ping -c 3 -i 0.2 -W 5 10.10.0.2
blast "16 MiB client -> server arrive intact" "$NS_CLI" "$NS_SRV" 10.10.0.1 $((16 << 20))
blast "8 MiB server -> client arrive intact" "$NS_SRV" "$NS_CLI" 10.10.0.2 $((8 << 20))

# The server's TUN deleted under it: it creates the device again, the session carries on.
ip -n "$NS_SRV" link del tun0
check "the server creates its deleted TUN again" \
        wait_for $WAIT grep -q 'TUN device tun0 created again' "$E2E_TMP/server.log"
check "traffic flows again" wait_for $WAIT ip netns exec "$NS_CLI" ping -c 1 -W 2 10.10.0.1

# A reload that adds a client: alpha's session stays.
cat >"$E2E_TMP/server.json" <<JSON
[ { "name": "tun0", "port": 8080, "listen": "0.0.0.0", "net": "10.10.0.1/24",
    "clients": [ { "name": "alpha", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" },
                 { "name": "beta", "token": "$TOKEN_B_SHA1", "ip": "10.10.0.3" } ] } ]
JSON
kill -HUP "$SRV_PID"
check "SIGHUP adding client beta is applied" \
        wait_for $WAIT grep -q 'Reloaded .*server.json: 0 interface(s) added, 0 removed, 1 kept, 0 problem' \
        "$E2E_TMP/server.log"
check "beta's token is accepted" test "$(ip netns exec "$NS_CLI" curl -s -I -o /dev/null -w '%{http_code}' \
        --max-time 30 -H 'x-api-key: beta-secret' "http://$SRV_UNDERLAY:8080/")" = 200
check "alpha still pings" wait_for $WAIT ip netns exec "$NS_CLI" ping -c 1 -W 2 10.10.0.1

# The client daemon reloaded with new settings for tun0 (its transport is freed and started again, the
# TUN stays) and a second interface, tun1, that connects as beta.
client_config ', "keepalive": 20' \
        ', { "name": "tun1", "server": "http://'$SRV_UNDERLAY':8080/", "token": "beta-secret" }'
kill -HUP "$CLI_PID"
check "the client reloads with new settings" \
        wait_for $WAIT grep -q 'tun0: Settings changed, reconnecting to the server' "$E2E_TMP/client.log"
check "tun0 reconnects and pings" wait_for $WAIT ip netns exec "$NS_CLI" ping -c 1 -W 2 10.10.0.1
check "tun1 connects as beta and gets 10.10.0.3" wait_for $WAIT tun_has_addr "$NS_CLI" tun1 10.10.0.3
check "beta pings through tun1" wait_for $WAIT ip netns exec "$NS_CLI" ping -c 1 -W 2 -I tun1 10.10.0.1

# Its connections killed under it (ss -K on the server's side): the client reconnects by itself.
lines=$(grep -c "Connected from" "$E2E_TMP/server.log")
ip netns exec "$NS_SRV" ss -K -tn state established "sport = :8080" >/dev/null
check "the client's connections were killed" \
        wait_for $WAIT bash -c "grep -q 'beta: Disconnected' $E2E_TMP/server.log"
check "both interfaces reconnect by themselves and ping" \
        wait_for $WAIT bash -c "[ \$(grep -c 'Connected from' $E2E_TMP/server.log) -ge $((lines + 2)) ] &&
                ip netns exec $NS_CLI ping -c 1 -W 2 10.10.0.1 &&
                ip netns exec $NS_CLI ping -c 1 -W 2 -I tun1 10.10.0.1"

e2e_stop "$CLI_PID"
check "the client exits 0 under valgrind (99: memcheck errors or leaks)" test $? = 0
e2e_stop "$SRV_PID"
check "the server exits 0 under valgrind (99: memcheck errors or leaks)" test $? = 0
check "client: no memcheck error, no leak, no descriptor left open" vg_clean client
check "server: no memcheck error, no leak, no descriptor left open" vg_clean server

e2e_finish
exit 0
