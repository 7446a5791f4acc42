#!/bin/bash
# End to end, in fresh namespaces: the README's minimal server and client bring up a tunnel that
# carries pings both ways and a 1 GiB TCP transfer intact, survive a server killed with SIGKILL and
# restarted, and let a second GET with the same token take over the downstream.
source "$(dirname "$0")/lib.sh"
e2e_require_root
trap e2e_cleanup EXIT
WIRE="python3 $(dirname "$0")/wire.py"

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
e2e_server_config "$E2E_TMP/server.json"
e2e_client_config "$E2E_TMP/client.json"

e2e_start "$NS_SRV" server "$E2E_TMP/server.json"
SRV_PID=$E2E_LAST_PID
check "server creates tun0 with 10.10.0.1" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
e2e_start "$NS_CLI" client "$E2E_TMP/client.json"
CLI_PID=$E2E_LAST_PID
check "client gets 10.10.0.2/24 from x-tun-conf" wait_for 15 tun_has_addr "$NS_CLI" tun0 10.10.0.2
check "client tun0 has MTU 1500" bash -c "ip -n $NS_CLI -j link show tun0 | grep -q '\"mtu\":1500'"

check "ping client -> server" ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 2 10.10.0.1
check "ping server -> client" ip netns exec "$NS_SRV" ping -c 3 -i 0.2 -W 2 10.10.0.2

# 1 GiB client -> server, checksummed on both ends.
ip netns exec "$NS_SRV" timeout 300 $WIRE blast-recv 10.10.0.1 5001 >"$E2E_TMP/recv.out" &
RECV=$!
wait_for 5 bash -c "ip netns exec $NS_SRV ss -ltn | grep -q ':5001'"
sent=$(ip netns exec "$NS_CLI" timeout 300 $WIRE blast-send 10.10.0.1 5001 $((1 << 30)))
wait $RECV
recv=$(cat "$E2E_TMP/recv.out")
diag "sent: $sent"
diag "received: $recv"
check "1 GiB TCP transfer arrives intact (sha256)" test -n "$sent" -a "$sent" = "$recv"

# 64 MiB server -> client.
ip netns exec "$NS_CLI" timeout 120 $WIRE blast-recv 10.10.0.2 5002 >"$E2E_TMP/recv2.out" &
RECV=$!
wait_for 5 bash -c "ip netns exec $NS_CLI ss -ltn | grep -q ':5002'"
sent=$(ip netns exec "$NS_SRV" timeout 120 $WIRE blast-send 10.10.0.2 5002 $((64 << 20)))
wait $RECV
check "64 MiB TCP transfer server -> client arrives intact" test -n "$sent" -a "$sent" = "$(cat "$E2E_TMP/recv2.out")"

# SIGKILL the server: it cannot clean up; the restarted one must take over its leftovers and the
# client must reconnect by itself.
e2e_stop "$SRV_PID" KILL
e2e_start "$NS_SRV" server2 "$E2E_TMP/server.json"
SRV_PID=$E2E_LAST_PID
check "restarted server is up" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
check "client reconnects by itself after the server restart" \
        wait_for 40 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1

# A second GET with the same token takes over the downstream (the daemon's GET is ended); the
# daemon's client then reconnects at once and takes it back, which ends the intruding GET.
t0=$(date +%s)
code=$(ip netns exec "$NS_CLI" curl -sN --max-time 30 -H 'x-api-key: test' -o "$E2E_TMP/intruder.out" \
        -w '%{http_code}' "http://$SRV_UNDERLAY:8080/tun")
elapsed=$(($(date +%s) - t0))
diag "intruding GET: status $code, ended after ${elapsed}s"
check "the intruding GET was accepted (200)" test "$code" = 200
check "it was superseded by the reconnecting client well before curl's 30 s limit" test "$elapsed" -lt 20
check "the tunnel works after the takeover" wait_for 30 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1

# fwmark on the client, as in the original: a table with a default route via the TUN and a rule, so
# only marked traffic goes through the tunnel.
e2e_stop "$CLI_PID"
cat >"$E2E_TMP/client-mark.json" <<JSON
[ { "name": "tun0", "server": "http://$SRV_UNDERLAY:8080/", "token": "test",
    "mark": { "value": 7, "table": 70, "priority": 700 } } ]
JSON
e2e_start "$NS_CLI" client-mark "$E2E_TMP/client-mark.json"
CLI_PID=$E2E_LAST_PID
check "client with mark comes up" wait_for 15 tun_has_addr "$NS_CLI" tun0 10.10.0.2
check "client rule fwmark 7 lookup 70 pref 700" bash -c "ip -n $NS_CLI -j rule show | grep -q '\"priority\":700,.*\"fwmark\":\"0x7\",\"table\":\"70\"'"
check "client table 70 has a default route via tun0" bash -c "ip -n $NS_CLI -j route show table 70 | grep -q '\"dst\":\"default\",\"dev\":\"tun0\"'"
# 198.51.100.99 is an address of the server host that the client has no route to.
ip -n "$NS_SRV" addr add 198.51.100.99/32 dev lo
ip netns exec "$NS_CLI" ping -c 1 -W 2 198.51.100.99 >"$E2E_TMP/unmarked.out" 2>&1
check "unmarked traffic to 198.51.100.99 does not enter the tunnel" grep -q "Network is unreachable" "$E2E_TMP/unmarked.out"
check "marked traffic goes through the tunnel and is answered" \
        ip netns exec "$NS_CLI" ping -c 2 -i 0.2 -W 2 -m 7 198.51.100.99
e2e_stop "$CLI_PID"
check "the client removes its rule on exit" bash -c "! ip -n $NS_CLI -j rule show | grep -q '\"priority\":700'"

e2e_finish
exit 0
