#!/bin/bash
# Reload (SIGHUP) in fresh namespaces: a server, client A on 192.0.2.0/24 and client B on its own
# underlay 198.51.100.0/24. An added client connects while A's ping loop loses at most one packet; a
# garbage file changes nothing and says why in the log; a removed client loses its session; a changed
# token refuses the old one and takes the new one; MTU, addresses, client routes and fwmark rules change
# live (and a client told another MTU reconnects), a changed port waits for a restart; an added
# interface appears and a removed one goes; a renamed interface is reported as needing a restart and
# runs on under its old name; a client daemon reloaded with new settings reconnects and keeps its TUN.
source "$(dirname "$0")/lib.sh"
e2e_require_root
trap e2e_cleanup EXIT

CLI2_SUBNET_SRV=198.51.100.1
CLI2_SUBNET_CLI=198.51.100.2
TOKEN_B_SHA1=$(printf %s beta-secret | sha1sum | cut -d' ' -f1)
TOKEN_A2_SHA1=$(printf %s alpha-new | sha1sum | cut -d' ' -f1)
CONF=$E2E_TMP/server.json
LOG=$E2E_TMP/server.log

setup() {
        e2e_topology || return 1
        e2e_netns "$NS_CLI2" || return 1
        ip -n "$NS_SRV" link add to-b type veth peer name to-srv netns "$NS_CLI2" &&
                ip -n "$NS_SRV" addr add "$CLI2_SUBNET_SRV/24" dev to-b && ip -n "$NS_SRV" link set to-b up &&
                ip -n "$NS_CLI2" addr add "$CLI2_SUBNET_CLI/24" dev to-srv && ip -n "$NS_CLI2" link set to-srv up
}
setup || { echo "Bail out! cannot create the topology"; exit 1; }

# server_config NAME A_TOKEN_SHA1 [B] [EXTRA_INTERFACE]: tun NAME with client alpha (10.10.0.2), with B
# also client beta (10.10.0.3); EXTRA_INTERFACE adds the server tun1 on port 8081. $SRV_EXTRA and
# $ALPHA_EXTRA are more fields for the interface and for alpha; $SRV_PORT is its port.
SRV_PORT=8080
SRV_EXTRA=
ALPHA_EXTRA=
server_config() {
        local beta="" extra=""
        [ -n "${3:-}" ] && beta=", { \"name\": \"beta\", \"token\": \"$TOKEN_B_SHA1\", \"ip\": \"10.10.0.3\" }"
        [ -n "${4:-}" ] && extra=', { "name": "tun1", "port": 8081, "net": "10.20.0.1/24", "clients": [] }'
        cat >"$CONF.new" <<JSON
[
  {
    "name": "$1",
    "port": $SRV_PORT,
    "listen": "0.0.0.0",
    "net": "10.10.0.1/24",$SRV_EXTRA
    "clients": [ { "name": "alpha", "token": "$2", "ip": "10.10.0.2"$ALPHA_EXTRA }$beta ]
  }$extra
]
JSON
        mv "$CONF.new" "$CONF"
}

# client_config FILE TOKEN URL: reconnects after 1 s, so the test does not wait on the backoff.
client_config() {
        cat >"$1" <<JSON
[ { "name": "tun0", "server": "$3", "token": "$2", "reconnect_min": 1, "reconnect_max": 2 } ]
JSON
}

# reload N: SIGHUP, then waits for the Nth "Reloading" to finish (applied or refused).
reload() {
        kill -HUP "$SRV_PID"
        wait_for 10 bash -c "[ \$(grep -c -E 'Reloaded |Reload failed' $LOG) -ge $1 ]"
}

# http_code NS TOKEN URL: the status of a HEAD request with that token (a HEAD is answered at once).
http_code() {
        ip netns exec "$1" curl -s -I -o /dev/null -w '%{http_code}' --max-time 5 -H "x-api-key: $2" "$3"
}

URL_A=http://$SRV_UNDERLAY:8080/
URL_B=http://$CLI2_SUBNET_SRV:8080/

server_config tun0 "$TOKEN_TEST_SHA1"
client_config "$E2E_TMP/alpha.json" test "$URL_A"
client_config "$E2E_TMP/beta.json" beta-secret "$URL_B"

e2e_start "$NS_SRV" server "$CONF"
SRV_PID=$E2E_LAST_PID
check "server is up" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
e2e_start "$NS_CLI" alpha "$E2E_TMP/alpha.json"
ALPHA_PID=$E2E_LAST_PID
check "alpha connects" wait_for 15 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1

# --- An added client, while alpha pings every 0.1 s.
ip netns exec "$NS_CLI" ping -n -i 0.1 -c 100 -W 1 10.10.0.1 >"$E2E_TMP/ping.out" 2>&1 &
PING_PID=$!
sleep 1
server_config tun0 "$TOKEN_TEST_SHA1" beta
check "SIGHUP with client beta added is applied" reload 1
e2e_start "$NS_CLI2" beta "$E2E_TMP/beta.json"
BETA_PID=$E2E_LAST_PID
check "beta gets 10.10.0.3 from the server" wait_for 15 tun_has_addr "$NS_CLI2" tun0 10.10.0.3
check "beta pings through the tunnel" wait_for 10 ip netns exec "$NS_CLI2" ping -c 1 -W 1 10.10.0.1
wait "$PING_PID"
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$E2E_TMP/ping.out")
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$E2E_TMP/ping.out")
diag "alpha's ping loop across the reload: $sent sent, $received received"
check "alpha's ping loop lost at most one packet across the reload" \
        test -n "$sent" -a -n "$received" -a "$((${sent:-0} - ${received:-0}))" -le 1 -a "${sent:-0}" -ge 90
check "alpha's session was not dropped" bash -c "! grep -q 'alpha: Disconnected' $LOG"
check "the log says what was reloaded" grep -q 'Reloaded .*server.json: 0 interface(s) added, 0 removed, 1 kept, 0 problem' "$LOG"

# --- A garbage file: nothing changes, the log says why.
cp "$CONF" "$E2E_TMP/good.json"
echo '[ { "name": "tun0", garbage' >"$CONF"
check "SIGHUP with a garbage file is refused" reload 2
check "the daemon keeps running" kill -0 "$SRV_PID"
check "the log names the syntax error with its line and column" grep -q 'Reload: .*server.json:1:[0-9]*: ' "$LOG"
check "the log says it runs on the previous configuration" \
        grep -q 'Reload failed; still running on the previous configuration' "$LOG"
check "alpha still pings" ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 1 10.10.0.1
check "beta still pings" ip netns exec "$NS_CLI2" ping -c 3 -i 0.2 -W 1 10.10.0.1

# --- beta removed: its session is dropped and its token refused.
server_config tun0 "$TOKEN_TEST_SHA1"
check "SIGHUP with beta removed is applied" reload 3
check "the log says beta was removed and disconnected" \
        grep -q 'beta: Removed from the configuration, disconnecting' "$LOG"
check "beta's tunnel stops working" wait_for 10 bash -c "! ip netns exec $NS_CLI2 ping -c 1 -W 1 10.10.0.1"
check "beta's token is refused (403)" test "$(http_code "$NS_CLI2" beta-secret "$URL_B")" = 403
check "alpha still pings" ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 1 10.10.0.1
e2e_stop "$BETA_PID"

# --- alpha's token changed: the old one is refused, the new one accepted.
server_config tun0 "$TOKEN_A2_SHA1"
check "SIGHUP with alpha's token changed is applied" reload 4
check "the old token is refused (403)" test "$(http_code "$NS_CLI" test "$URL_A")" = 403
check "the new token is accepted (200)" test "$(http_code "$NS_CLI" alpha-new "$URL_A")" = 200
check "alpha's session under the old token was dropped" grep -q 'alpha: Removed from the configuration' "$LOG"
e2e_stop "$ALPHA_PID"
client_config "$E2E_TMP/alpha.json" alpha-new "$URL_A"
e2e_start "$NS_CLI" alpha2 "$E2E_TMP/alpha.json"
ALPHA2_PID=$E2E_LAST_PID
check "alpha reconnects with the new token and pings" wait_for 15 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1

# --- Live changes of a running server: MTU, an extra address, a client route, fwmark routing; and a
# port change, which waits for a restart.
SRV_EXTRA='"mtu": 1400, "ips": ["10.10.0.254/24"], "mark": { "value": 51, "table": 151, "priority": 1500 },'
ALPHA_EXTRA=', "routes": ["10.20.0.0/24"]'
SRV_PORT=8082
server_config tun0 "$TOKEN_A2_SHA1"
check "SIGHUP with MTU, ips, a client route, mark and port changed is applied" reload 5
check "the server's tun0 has MTU 1400" bash -c "ip -n $NS_SRV -j link show tun0 | grep -q '\"mtu\":1400'"
check "the extra address 10.10.0.254 is added" tun_has_addr "$NS_SRV" tun0 10.10.0.254
check "alpha's route 10.20.0.0/24 is added to the main table" \
        bash -c "ip -n $NS_SRV -j route show | grep -q '\"dst\":\"10.20.0.0/24\",\"dev\":\"tun0\"'"
check "the fwmark 51 rule and table 151 are set up" \
        bash -c "ip -n $NS_SRV -j rule show | grep -q '\"priority\":1500,.*\"fwmark\":\"0x33\",\"table\":\"151\"' && ip -n $NS_SRV -j route show table 151 | grep -q '\"dst\":\"default\",\"dev\":\"tun0\"'"
check "the port change is reported as needing a restart" \
        grep -q 'tun0: "port" changed from 8080 to 8082, which needs a restart of the service; still using 8080' "$LOG"
check "the server still listens on 8080, not 8082" \
        bash -c "ip netns exec $NS_SRV ss -ltn | grep -q ':8080 ' && ! ip netns exec $NS_SRV ss -ltn | grep -q ':8082 '"
check "alpha, told another MTU from now on, is disconnected to reconnect" \
        grep -q 'alpha: What this client is told on connecting changed, disconnecting it' "$LOG"
check "alpha reconnects and gets MTU 1400" \
        wait_for 15 bash -c "ip -n $NS_CLI -j link show tun0 | grep -q '\"mtu\":1400' && ip netns exec $NS_CLI ping -c 1 -W 1 10.10.0.1"
SRV_EXTRA=
ALPHA_EXTRA=
SRV_PORT=8080
server_config tun0 "$TOKEN_A2_SHA1"
check "SIGHUP with all of that taken back is applied" reload 6
check "the extra address is removed" bash -c "! ip -n $NS_SRV addr show dev tun0 | grep -q 10.10.0.254"
check "alpha's route is removed" bash -c "! ip -n $NS_SRV route show | grep -q 10.20.0.0"
check "the fwmark rule is removed and table 151 is empty" \
        bash -c "! ip -n $NS_SRV -j rule show | grep -q '\"priority\":1500' && [ -z \"\$(ip -n $NS_SRV route show table 151)\" ]"
check "the MTU is 1500 again" bash -c "ip -n $NS_SRV -j link show tun0 | grep -q '\"mtu\":1500'"
check "alpha reconnects and pings" wait_for 15 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1

# --- An interface added, then removed.
server_config tun0 "$TOKEN_A2_SHA1" "" tun1
check "SIGHUP with interface tun1 added is applied" reload 7
check "tun1 is created with 10.20.0.1" wait_for 5 tun_has_addr "$NS_SRV" tun1 10.20.0.1
check "tun1 listens on port 8081" bash -c "ip netns exec $NS_SRV ss -ltn | grep -q ':8081 '"
server_config tun0 "$TOKEN_A2_SHA1"
check "SIGHUP with tun1 removed is applied" reload 8
check "tun1 is gone" wait_for 5 bash -c "! ip -n $NS_SRV link show tun1"
check "port 8081 is closed" bash -c "! ip netns exec $NS_SRV ss -ltn | grep -q ':8081 '"
check "alpha still pings" ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 1 10.10.0.1

# --- tun0 renamed in the file: needs a restart, tun0 runs on.
server_config tun9 "$TOKEN_A2_SHA1"
check "SIGHUP with tun0 renamed to tun9 is handled" reload 9
check "the log says the rename needs a restart" \
        grep -q 'renaming interface "tun0" to "tun9" needs a restart of the service' "$LOG"
check "tun0 is still there and tun9 was not created" \
        bash -c "ip -n $NS_SRV link show tun0 && ! ip -n $NS_SRV link show tun9"
check "alpha still pings" ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 1 10.10.0.1

# --- The client daemon reloaded with changed settings: its transport starts over, its TUN stays.
ifindex=$(ip -n "$NS_CLI" -j link show tun0 | sed -n 's/.*"ifindex":\([0-9]*\).*/\1/p')
cat >"$E2E_TMP/alpha.json" <<JSON
[ { "name": "tun0", "server": "$URL_A", "token": "alpha-new", "reconnect_min": 1, "reconnect_max": 3, "keepalive": 20 } ]
JSON
kill -HUP "$ALPHA2_PID"
check "the client reloads with new settings" \
        wait_for 10 grep -q 'tun0: Settings changed, reconnecting to the server' "$E2E_TMP/alpha2.log"
check "it reconnects and pings" wait_for 15 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1
check "its TUN stayed (same ifindex)" \
        test -n "$ifindex" -a "$(ip -n "$NS_CLI" -j link show tun0 | sed -n 's/.*"ifindex":\([0-9]*\).*/\1/p')" = "$ifindex"

# --- Only the client's offloads changed: that too is a new transport (the server is told in the request).
cat >"$E2E_TMP/alpha.json" <<JSON
[ { "name": "tun0", "server": "$URL_A", "token": "alpha-new", "reconnect_min": 1, "reconnect_max": 3, "keepalive": 20,
    "offloads": [] } ]
JSON
settings_changed() { grep -c 'tun0: Settings changed, reconnecting to the server' "$E2E_TMP/alpha2.log"; }
before=$(settings_changed)
kill -HUP "$ALPHA2_PID"
check "a change of offloads alone makes the client reconnect" \
        wait_for 20 bash -c "[ \$(grep -c 'tun0: Settings changed, reconnecting to the server' $E2E_TMP/alpha2.log) -gt $before ]"
check "it reconnects and pings" wait_for 15 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1

e2e_stop "$SRV_PID"
check "the server exits 0 on SIGTERM after all that" test $? = 0

e2e_finish
exit 0
