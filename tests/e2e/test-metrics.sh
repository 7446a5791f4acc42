#!/bin/bash
# End to end, in fresh namespaces: the metrics listener (`metrics`) of a server and of a client. It is bound
# to loopback by default and is not the tunnel port; /metrics is valid Prometheus text whose peer counters
# grow by exactly the pings sent through the tunnel (and equal what the bus shows); /healthz turns 503
# naming the client once it was away longer than unhealthy_after, and 200 again when it is back.
source "$(dirname "$0")/lib.sh"
e2e_require_root
PROM="python3 $(dirname "$0")/prom.py"
trap e2e_cleanup EXIT

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }

# A private bus, to compare the counters with what tapotunctl shows; the rest runs without one.
BUS=
e2e_private_bus && BUS=$E2E_BUS
BUS_ARGS=()
[ -n "$BUS" ] && BUS_ARGS=("--bus-address=$BUS")

cat >"$E2E_TMP/server.json" <<JSON
[
  {
    "name": "tun0",
    "port": 8080,
    "listen": "0.0.0.0",
    "net": "10.10.0.1/24",
    "clients": [ { "name": "laptop", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" } ],
    "metrics": { "listen": 9586, "unhealthy_after": 2 }
  }
]
JSON
cat >"$E2E_TMP/client.json" <<JSON
[
  {
    "name": "tun0",
    "server": "http://$SRV_UNDERLAY:8080/",
    "token": "test",
    "metrics": { "listen": "[::1]:9587", "unhealthy_after": 2 }
  }
]
JSON
SRV_METRICS=http://127.0.0.1:9586
CLI_METRICS=http://[::1]:9587

# fetch NS URL NAME [CURL_ARGS...]: body to $E2E_TMP/NAME, status code on stdout.
fetch() {
        local ns=$1 url=$2 name=$3
        shift 3
        ip netns exec "$ns" curl -s --max-time 5 -o "$E2E_TMP/$name" -w '%{http_code}' "$@" "$url"
}
# health_is NS URL CODE [PATTERN]: /healthz answers CODE with a body matching PATTERN.
health_is() {
        [ "$(fetch "$1" "$2/healthz" health)" = "$3" ] && grep -Eq "${4:-.}" "$E2E_TMP/health"
}
# metric FILE NAME [LABEL=VALUE...]: the value of the sample NAME with exactly those labels.
metric() {
        local file=$1 name=$2
        shift 2
        $PROM get "$E2E_TMP/$file" "$@" | awk -v n="$name" '$1 == n { print $2 }'
}
scrape() {
        [ "$(fetch "$1" "$2/metrics" "$3")" = 200 ]
}

e2e_start "$NS_SRV" server "$E2E_TMP/server.json" "${BUS_ARGS[@]}"
SRV_PID=$E2E_LAST_PID
check "server creates tun0" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
check "the server's metrics listener answers on 127.0.0.1:9586" \
        wait_for 10 scrape "$NS_SRV" "$SRV_METRICS" srv0
check "it is bound to loopback only (a bare port means 127.0.0.1)" \
        test "$(ip netns exec "$NS_SRV" ss -Hltn 'sport = :9586' | awk '{print $4}')" = 127.0.0.1:9586
ip netns exec "$NS_CLI" curl -s --max-time 5 -o /dev/null "http://$SRV_UNDERLAY:9586/metrics"
check "it is not reachable over the underlay (connection refused)" test $? = 7
code=$(fetch "$NS_CLI" "http://$SRV_UNDERLAY:8080/metrics" tunnel-port)
check "the tunnel port answers /metrics as before: 403 without a token" test "$code" = 403
check "... and shows no metrics" bash -c "! grep -q tapotun_ $E2E_TMP/tunnel-port"
check "the exposition format is valid" $PROM check "$E2E_TMP/srv0"
check "build info carries the version" grep -Eq '^tapotun_build_info\{version="[^"]+"\} 1$' "$E2E_TMP/srv0"
check "the peer is down before the client ever connected" \
        test "$(metric srv0 tapotun_peer_up interface=tun0 peer=laptop)" = 0
check "/healthz is 503 naming the client that never connected, after unhealthy_after" \
        wait_for 15 health_is "$NS_SRV" "$SRV_METRICS" 503 '^tun0: peer "laptop" not connected for [0-9]+ s'

# No IPv6 on the client's TUN: its router solicitations and MLD reports would cross the tunnel too and
# make the byte counts below depend on timing.
ip netns exec "$NS_CLI" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
e2e_start "$NS_CLI" client "$E2E_TMP/client.json" "${BUS_ARGS[@]}"
CLI_PID=$E2E_LAST_PID
check "client connects" wait_for 20 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1
check "/healthz is 200 \"ok\" with the client connected" \
        wait_for 10 health_is "$NS_SRV" "$SRV_METRICS" 200 '^ok$'

# 20 echo requests of 1028 IP bytes (20 + 8 + 1000) each way. The server's peer counts what it received
# with the 12-byte virtio-net header, and what it handed to the transport with the 2-byte length field too.
scrape "$NS_SRV" "$SRV_METRICS" srv1
scrape "$NS_CLI" "$CLI_METRICS" cli1
ip netns exec "$NS_CLI" ping -c 20 -i 0.05 -s 1000 -W 2 10.10.0.1 >"$E2E_TMP/ping.out"
check "all 20 pings are answered" grep -q '20 packets transmitted, 20 received' "$E2E_TMP/ping.out"
scrape "$NS_SRV" "$SRV_METRICS" srv2
scrape "$NS_CLI" "$CLI_METRICS" cli2
$PROM diff "$E2E_TMP/srv1" "$E2E_TMP/srv2" interface=tun0 peer=laptop >"$E2E_TMP/srv.diff"
$PROM diff "$E2E_TMP/cli1" "$E2E_TMP/cli2" interface=tun0 peer=server >"$E2E_TMP/cli.diff"
grep _total "$E2E_TMP/srv.diff" | sed 's/^/# server, laptop: +/'
grep _total "$E2E_TMP/cli.diff" | sed 's/^/# client, server: +/'
check "server: receive_packets grew by the 20 requests" \
        grep -qx 'tapotun_peer_receive_packets_total 20' "$E2E_TMP/srv.diff"
check "server: receive_bytes grew by 20 x (12 + 1028)" \
        grep -qx 'tapotun_peer_receive_bytes_total 20800' "$E2E_TMP/srv.diff"
check "server: transmit_packets grew by the 20 replies" \
        grep -qx 'tapotun_peer_transmit_packets_total 20' "$E2E_TMP/srv.diff"
check "server: transmit_bytes grew by 20 x (2 + 12 + 1028)" \
        grep -qx 'tapotun_peer_transmit_bytes_total 20840' "$E2E_TMP/srv.diff"
check "client: transmit_packets grew by 20" \
        grep -qx 'tapotun_peer_transmit_packets_total 20' "$E2E_TMP/cli.diff"
check "client: transmit_bytes grew by 20 x (2 + 12 + 1028)" \
        grep -qx 'tapotun_peer_transmit_bytes_total 20840' "$E2E_TMP/cli.diff"
check "client: receive_packets grew by 20" \
        grep -qx 'tapotun_peer_receive_packets_total 20' "$E2E_TMP/cli.diff"
check "client: receive_bytes grew by 20 x (12 + 1028)" \
        grep -qx 'tapotun_peer_receive_bytes_total 20800' "$E2E_TMP/cli.diff"
check "server: no drops of the client" \
        bash -c "! grep -E '^tapotun_peer_dropped_packets_total\\{.*\\} [1-9]' $E2E_TMP/srv2"
$PROM get "$E2E_TMP/srv2" interface=tun0 peer=laptop >"$E2E_TMP/srv2.peer"
check "server: the peer is up" grep -qx 'tapotun_peer_up 1' "$E2E_TMP/srv2.peer"
check "server: it connected once" grep -qx 'tapotun_peer_connects_total 1' "$E2E_TMP/srv2.peer"
check "server: the peer's state is connected" \
        test "$(metric srv2 tapotun_peer_state interface=tun0 peer=laptop state=connected)" = 1

if [ -n "$BUS" ]; then
        "$TAPOTUNCTL" "--bus-address=$BUS" show server tun0/laptop --json >"$E2E_TMP/show.json"
        scrape "$NS_SRV" "$SRV_METRICS" srv3
        $PROM get "$E2E_TMP/srv3" interface=tun0 peer=laptop >"$E2E_TMP/srv3.peer"
        check "the counters are those tapotunctl shows" python3 -c '
import json, sys
bus = json.load(open(sys.argv[1]))
metrics = dict(line.split() for line in open(sys.argv[2]))
for b, m in (("rx_packets", "receive_packets"), ("rx_bytes", "receive_bytes"),
             ("tx_packets", "transmit_packets"), ("tx_bytes", "transmit_bytes")):
    assert int(metrics["tapotun_peer_%s_total" % m]) == bus[b] > 0, (m, metrics, bus)
' "$E2E_TMP/show.json" "$E2E_TMP/srv3.peer"
fi

check "the client's metrics (on [::1]) are valid" $PROM check "$E2E_TMP/cli2"
check "the client's metrics show its server up" \
        test "$(metric cli2 tapotun_peer_up interface=tun0 peer=server)" = 1
check "the client's /healthz is 200" health_is "$NS_CLI" "$CLI_METRICS" 200 '^ok$'

check "other paths are 404" test "$(fetch "$NS_SRV" "$SRV_METRICS/" other)" = 404
check "other methods are 405" test "$(fetch "$NS_SRV" "$SRV_METRICS/metrics" post -X POST -d x)" = 405
check "HEAD /metrics is 200" test "$(fetch "$NS_SRV" "$SRV_METRICS/metrics" head -I)" = 200
check "the content type is the text format 0.0.4" \
        grep -qi '^content-type: text/plain; version=0.0.4' "$E2E_TMP/head"

# The client goes away: unhealthy once it was away for 2 s, healthy again when it is back.
e2e_stop "$CLI_PID"
check "/healthz is 503 naming the client after it went away" \
        wait_for 15 health_is "$NS_SRV" "$SRV_METRICS" 503 \
        '^tun0: peer "laptop" not connected for [0-9]+ s \(unhealthy_after: 2 s\)$'
scrape "$NS_SRV" "$SRV_METRICS" srv4
$PROM get "$E2E_TMP/srv4" interface=tun0 peer=laptop >"$E2E_TMP/srv4.peer"
check "the peer is down" grep -qx 'tapotun_peer_up 0' "$E2E_TMP/srv4.peer"
check "it is down since a time after it was last connected" awk '
        $1 == "tapotun_peer_down_since_timestamp_seconds" { down = $2 }
        $1 == "tapotun_peer_last_connected_timestamp_seconds" { up = $2 }
        END { exit !(up > 0 && down >= up) }' "$E2E_TMP/srv4.peer"
e2e_start "$NS_CLI" client2 "$E2E_TMP/client.json" "${BUS_ARGS[@]}"
CLI_PID=$E2E_LAST_PID
check "/healthz is 200 again when the client is back" \
        wait_for 20 health_is "$NS_SRV" "$SRV_METRICS" 200 '^ok$'
scrape "$NS_SRV" "$SRV_METRICS" srv5
check "connects_total counts the reconnect" \
        test "$(metric srv5 tapotun_peer_connects_total interface=tun0 peer=laptop)" = 2

# A new metrics address waits for a restart; the listener stays where it is.
sed -i 's/"listen": 9586/"listen": 9599/' "$E2E_TMP/server.json"
kill -HUP "$SRV_PID"
check "reload reports that a new metrics address needs a restart" wait_for 10 grep -q \
        'the metrics listener changed from 127.0.0.1:9586 to 127.0.0.1:9599, which needs a restart' \
        "$E2E_TMP/server.log"
check "the metrics listener still answers on 9586 after the reload" scrape "$NS_SRV" "$SRV_METRICS" srv6

# The client's own health follows its server.
e2e_stop "$SRV_PID"
check "the client's /healthz is 503 naming its server once it is gone" \
        wait_for 15 health_is "$NS_CLI" "$CLI_METRICS" 503 '^tun0: peer "server" not connected'

e2e_finish
exit 0
