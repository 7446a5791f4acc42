#!/bin/bash
# The update check end to end: a server daemon (with a client, so that a tunnel carries traffic) checks a
# release feed served by tests/e2e/update-feed.py inside the server's namespace, every second
# (TAPOTUN_UPDATE_MIN_INTERVAL, the tests' override of the 60 s minimum). The feed is switched between
# checks: the same version (nothing reported; the next request is conditional and gets 304), a new one
# (reported once in the log, on the bus and in tapotunctl status), 404 and a server too slow for the
# timeout (warnings, retried, the daemon carries on), then, after a reload into install mode, a wrong
# checksum (the target is left alone) and a good one (the target, a dummy file, is replaced atomically
# with its mode kept). The daemon's bus is a private dbus-daemon.
source "$(dirname "$0")/lib.sh"
e2e_require_root

for tool in dbus-daemon busctl python3 curl; do
        if ! command -v "$tool" >/dev/null; then
                echo "1..0 # SKIP $tool is missing (packages dbus, systemd, python3, curl)"
                echo "SKIPPED: $0 needs $tool" >&2
                exit 0
        fi
done

trap e2e_cleanup EXIT

e2e_private_bus || { echo "Bail out! cannot start dbus-daemon"; exit 1; }
BUS=$E2E_BUS
CTL=("$TAPOTUNCTL" "--bus-address=$BUS")

RUNNING=$("$TAPOTUND" --version | awk '{ print $2 }')
FEED_DIR=$E2E_TMP/feed
FEED_URL=http://127.0.0.1:8765/feed.json
REQUESTS=$FEED_DIR/requests.log
CONF=$E2E_TMP/server.json
LOG=$E2E_TMP/server.log
TARGET_DIR=$E2E_TMP/target
TARGET=$TARGET_DIR/tapotund
# The tests' interval is 1 s; the real minimum stays 60 s.
export TAPOTUN_UPDATE_MIN_INTERVAL=1

mkdir -p "$FEED_DIR" "$TARGET_DIR"
head -c 300000 /dev/urandom >"$FEED_DIR/tapotund-0.3.0"
printf 'the binary in place\n' >"$TARGET"
chmod 0751 "$TARGET"
cp -p "$TARGET" "$E2E_TMP/target.orig"
TARGET_INODE=$(stat -c %i "$TARGET")
BIN_SUM=$(sha256sum <"$TAPOTUND")

# server_config INSTALL: the README's minimal server in the object form, with "update".
server_config() {
        local install=""
        [ "$1" = install ] && install=", \"install\": true, \"path\": \"$TARGET\""
        cat >"$CONF.new" <<JSON
{
  "interfaces": [
    {
      "name": "tun0", "port": 8080, "listen": "0.0.0.0", "net": "10.10.0.1/24",
      "clients": [ { "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" } ]
    }
  ],
  "update": { "url": "$FEED_URL", "interval": 1, "timeout": 3$install }
}
JSON
        mv "$CONF.new" "$CONF"
}

mode() {
        echo "$1" >"$FEED_DIR/mode"
}
# prop NAME: a Manager property as busctl prints it ('s "0.2.0"').
prop() {
        busctl --address="$BUS" get-property org.tapotun1.server /org/tapotun1 org.tapotun1.Manager "$1" 2>/dev/null
}
prop_is() {
        [ "$(prop "$1")" = "$2" ]
}
# requests PATTERN: how many requests the feed server saw that match PATTERN (grep -E).
requests() {
        local n
        n=$(grep -cE "$1" "$REQUESTS" 2>/dev/null)
        echo "${n:-0}"
}
# more_requests PATTERN N: waits until N more requests than now match PATTERN.
more_requests() {
        local want=$(($(requests "$1") + $2))
        wait_for 20 bash -c "[ \$(grep -cE '$1' '$REQUESTS') -ge $want ]"
}
log_count() {
        grep -c -- "$1" "$LOG"
}
status_has() {
        "${CTL[@]}" status server | grep -qF -- "$1"
}
json_has() {
        "${CTL[@]}" --json status server | python3 -c "import json, sys; d = json.load(sys.stdin)['update']; $1"
}
staging_gone() {
        [ "$(ls -A "$TARGET_DIR")" = tapotund ]
}

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
mode same
ip netns exec "$NS_SRV" python3 "$(dirname "$0")/update-feed.py" 127.0.0.1 8765 "$FEED_DIR" "$RUNNING" \
        >>"$E2E_TMP/feed.log" 2>&1 &
E2E_PIDS+=("$!")
check "the feed server answers" wait_for 10 ip netns exec "$NS_SRV" curl -sf http://127.0.0.1:8765/ready

server_config report
e2e_client_config "$E2E_TMP/client.json"
e2e_start "$NS_SRV" server "$CONF" "--bus-address=$BUS"
SRV_PID=$E2E_LAST_PID
e2e_start "$NS_CLI" client "$E2E_TMP/client.json"
check "the client gets its address through the tunnel" wait_for 15 tun_has_addr "$NS_CLI" tun0 10.10.0.2

# --- the same version: nothing to report; the next request is conditional and answered 304 ---
check "same version: the bus says up-to-date" wait_for 15 prop_is UpdateState 's "up-to-date"'
check "the next check sends If-None-Match and If-Modified-Since and gets 304" \
        wait_for 15 grep -qE '^/feed.json inm="[0-9a-f]+" ims=Mon, 01 Jan 2024 00:00:00 GMT -> 304$' "$REQUESTS"
check "same version: UpdateAvailable is empty" prop_is UpdateAvailable 's ""'
check "same version: nothing is reported in the log" bash -c "! grep -q 'Update available' '$LOG'"
check "same version: tapotunctl status says up to date" wait_for 5 status_has "Update: up to date (checked"
check "the Update properties signal their changes" bash -c \
        "busctl --address='$BUS' introspect org.tapotun1.server /org/tapotun1 org.tapotun1.Manager |
         grep -E '^\.UpdateAvailable .*emits-change'"

# --- a new version: reported once in the log, on the bus and in tapotunctl ---
mode new
check "new version: UpdateAvailable is 0.2.0" wait_for 15 prop_is UpdateAvailable 's "0.2.0"'
check "new version: UpdateState is available" wait_for 5 prop_is UpdateState 's "available"'
check "new version: the log names it, the running version and the binary" \
        grep -qF "Update available: tapotund 0.2.0 (running $RUNNING) at http://127.0.0.1:8765/tapotund-0.2.0." "$LOG"
check "new version: tapotunctl status shows it" wait_for 5 status_has "Update: 0.2.0 available (checked"
check "new version: tapotunctl --json status shows it" wait_for 5 json_has \
        "assert d['available'] == '0.2.0' and d['state'] == 'available' and d['url'] == '$FEED_URL' and d['error'] is None and d['last_check'] > 0"
check "report mode downloads nothing" bash -c "! grep -q '^/tapotund' '$REQUESTS'"
check "two more checks follow (304)" more_requests '^/feed.json .* -> 304$' 2
check "new version: reported in the log once only" test "$(log_count 'Update available')" = 1

# --- 404: a warning naming the URL, retried at the next interval, the daemon carries on ---
mode 404
check "404: a warning with the URL and the status" \
        wait_for 15 grep -qF "Update check failed: $FEED_URL: HTTP 404; trying again in 1 s." "$LOG"
check "404: retried at the next interval" more_requests '^/feed.json .* -> 404$' 2
check "404: UpdateState is failed" wait_for 5 prop_is UpdateState 's "failed"'
check "404: UpdateError says why" prop_is UpdateError "s \"$FEED_URL: HTTP 404\""
check "404: the version found before stays known" prop_is UpdateAvailable 's "0.2.0"'
check "404: tapotunctl status shows the error" status_has "Update error: $FEED_URL: HTTP 404"
check "404: the daemon runs on" kill -0 "$SRV_PID"

# --- a server slower than the timeout: timed out, the loop and the tunnel work meanwhile ---
mode slow
check "slow: the bus answers while the request hangs (state checking)" \
        wait_for 15 prop_is UpdateState 's "checking"'
check "slow: the tunnel carries traffic meanwhile" \
        ip netns exec "$NS_SRV" ping -c 3 -i 0.2 -W 2 10.10.0.2
check "slow: the timeout is logged as a warning" \
        wait_for 20 grep -qE "Update check failed: $FEED_URL: .*[Tt]imed out.*; trying again in 1 s\." "$LOG"
check "slow: retried at the next interval" more_requests '^/feed.json .* -> slow$' 1
check "slow: the daemon runs on" kill -0 "$SRV_PID"

# --- install mode, a wrong checksum: refused, the target left alone ---
mode badsum
server_config install
kill -HUP "$SRV_PID"
check "reload: the changed update settings take effect" \
        wait_for 15 grep -qF "Update check: $FEED_URL every 1 s, installing new versions as $TARGET." "$LOG"
check "bad checksum: a warning with the URL" \
        wait_for 20 grep -qE "Update check failed: http://127.0.0.1:8765/tapotund-0.3.0: checksum mismatch: expected SHA-256 [0-9a-f]{64}, got [0-9a-f]{64}; $TARGET left as it was" "$LOG"
check "bad checksum: the checksum came from the .sha256 file beside the binary" \
        grep -qE '^/tapotund-0.3.0.sha256 .* -> 200$' "$REQUESTS"
check "bad checksum: UpdateState is failed" wait_for 5 prop_is UpdateState 's "failed"'
check "bad checksum: the target is unchanged" cmp "$TARGET" "$E2E_TMP/target.orig"
check "bad checksum: the target is the same file" test "$(stat -c %i "$TARGET")" = "$TARGET_INODE"
check "bad checksum: no staging file is left" staging_gone
check "bad checksum: retried at the next interval" more_requests '^/tapotund-0.3.0 .* -> 200$' 1

# --- install mode, a good binary (feed behind a redirect, sha256 inline): replaced atomically ---
mode install
check "install: UpdateState is installed" wait_for 20 prop_is UpdateState 's "installed"'
check "install: the target has the new content" cmp "$TARGET" "$FEED_DIR/tapotund-0.3.0"
check "install: the target kept its mode" test "$(stat -c %a "$TARGET")" = 751
check "install: the target is a new file (renamed into place)" test "$(stat -c %i "$TARGET")" != "$TARGET_INODE"
check "install: no staging file is left" staging_gone
check "install: the binary came from beside the redirected feed" grep -qE '^/r/tapotund-0.3.0 .* -> 200$' "$REQUESTS"
check "install: the log says a restart is needed" \
        grep -qE "Installed tapotund 0.3.0 as $TARGET \(300000 bytes, SHA-256 verified\); restart the service to run it\." "$LOG"
check "install: tapotunctl status says so" status_has "Update: 0.3.0 installed; restart the service to run it"
check "install: UpdateError is cleared" prop_is UpdateError 's ""'
check "install: two more checks follow (304)" more_requests '^/r/feed.json .* -> 304$' 2
check "install: later checks do not download it again" test "$(requests '^/r/tapotund-0.3.0 ')" = 1

# --- a reload that leaves "update" as it is leaves the check alone ---
n=$(log_count "Update check: $FEED_URL")
kill -HUP "$SRV_PID"
check "reload with the same settings: done" wait_for 10 bash -c "[ \$(grep -c 'Reloaded ' '$LOG') -ge 2 ]"
check "reload with the same settings: the check is not restarted" test "$(log_count "Update check: $FEED_URL")" = "$n"
check "reload with the same settings: still installed" wait_for 5 prop_is UpdateState 's "installed"'
check "the daemon's own binary was never touched" test "$(sha256sum <"$TAPOTUND")" = "$BIN_SUM"
check "the daemon runs on: nothing restarted or executed it" kill -0 "$SRV_PID"

e2e_finish
