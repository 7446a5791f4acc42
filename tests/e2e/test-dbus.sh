#!/bin/bash
# The D-Bus interface end to end: a server and a client daemon in namespaces (as in test-tunnel.sh) on a
# private dbus-daemon that applies dbus/org.tapotun1.conf, so the policy is the one users get; driven
# through tapotunctl, busctl and dbus-send. A second, permissive bus shows that the daemon checks the
# caller itself where no policy protects it.
source "$(dirname "$0")/lib.sh"
e2e_require_root
: "${TAPOTUN_SOURCE_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
POLICY="$TAPOTUN_SOURCE_ROOT/dbus/org.tapotun1.conf"

for tool in dbus-daemon dbus-send busctl setpriv; do
        if ! command -v "$tool" >/dev/null; then
                echo "1..0 # SKIP $tool is missing (packages dbus, dbus-bin, systemd, util-linux)"
                echo "SKIPPED: $0 needs $tool" >&2
                exit 0
        fi
done

# The sockets must be reachable for "nobody": not under the private $E2E_TMP.
BUS_DIR=$(mktemp -d /tmp/tapotun-bus.XXXXXX)
chmod 755 "$BUS_DIR"
BUS_PIDS=()
cleanup() {
        e2e_cleanup
        local pid
        for pid in "${BUS_PIDS[@]}"; do
                kill "$pid" 2>/dev/null
        done
        rm -rf "$BUS_DIR"
}
trap cleanup EXIT

# bus_start VAR NAME POLICY_XML: a system-type bus at $BUS_DIR/NAME.sock; its address goes into VAR.
bus_start() {
        local var=$1 name=$2 policy=$3 out
        cat >"$BUS_DIR/$name.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$BUS_DIR/$name.sock</listen>
  <auth>EXTERNAL</auth>
  $policy
</busconfig>
XML
        out=$(dbus-daemon --config-file="$BUS_DIR/$name.conf" --fork --nopidfile --print-address=1 \
                --print-pid=1) || return 1
        BUS_PIDS+=("$(echo "$out" | sed -n 2p)")
        printf -v "$var" '%s' "$(echo "$out" | sed -n 1p | cut -d, -f1)"
}

# What the stock system.conf allows, for every user, plus the project's policy file.
SYSTEM_POLICY="
  <policy context=\"default\">
    <allow user=\"*\"/>
    <deny own=\"*\"/>
    <deny send_type=\"method_call\"/>
    <allow send_type=\"signal\"/>
    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>
    <allow send_requested_reply=\"true\" send_type=\"error\"/>
    <allow receive_type=\"method_call\"/>
    <allow receive_type=\"method_return\"/>
    <allow receive_type=\"error\"/>
    <allow receive_type=\"signal\"/>
    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>
    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>
    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Monitoring\"/>
  </policy>
  <include>$POLICY</include>"
OPEN_POLICY='
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>'

bus_start BUS system "$SYSTEM_POLICY" || { echo "Bail out! cannot start dbus-daemon"; exit 1; }
bus_start OPEN_BUS open "$OPEN_POLICY" || { echo "Bail out! cannot start dbus-daemon"; exit 1; }
diag "bus: $BUS, permissive bus: $OPEN_BUS"

CTL=("$TAPOTUNCTL" "--bus-address=$BUS")
AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
SRV_PEER=/org/tapotun1/peer/tun0/client0
CLI_PEER=/org/tapotun1/peer/tun0/server

# prop BUS NAME PATH INTERFACE PROPERTY: the value, as busctl prints it ('s "connected"', 't 42').
prop() {
        busctl --address="$1" get-property "$2" "$3" "$4" "$5" 2>/dev/null
}
srv_peer() { prop "$BUS" org.tapotun1.server "$SRV_PEER" org.tapotun1.Peer "$1"; }
cli_peer() { prop "$BUS" org.tapotun1.client "$CLI_PEER" org.tapotun1.Peer "$1"; }
# The number in a property value.
number() { "$@" | awk '{ print $2 }'; }
# run NAME COMMAND...: runs COMMAND with its output in $E2E_TMP/NAME.out and its exit status in $RC.
run() {
        local name=$1
        shift
        "$@" >"$E2E_TMP/$name.out" 2>&1
        RC=$?
        diag "$name: exit $RC: $(head -c 300 "$E2E_TMP/$name.out" | tr '\n' ' ')"
}
# manager NAME METHOD ARGS...: a Manager method through dbus-send, which prints an error's name.
manager() {
        local name=$1 method=$2
        shift 2
        dbus-send --bus="$BUS" --print-reply --dest="$name" /org/tapotun1 "org.tapotun1.Manager.$method" "$@"
}
# state_is BUS NAME PATH STATE
state_is() {
        [ "$(prop "$1" "$2" "$3" org.tapotun1.Peer State)" = "s \"$4\"" ]
}
# monitor_saw PATH WORD: the bus monitor saw a message for PATH carrying WORD.
monitor_saw() {
        grep -A30 "Path=$1" "$E2E_TMP/monitor.log" | grep -q "\"$2\""
}

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
e2e_server_config "$E2E_TMP/server.json"
e2e_client_config "$E2E_TMP/client.json"
cp "$E2E_TMP/server.json" "$E2E_TMP/server.good"

e2e_start "$NS_SRV" server "$E2E_TMP/server.json" "--bus-address=$BUS"
SRV_PID=$E2E_LAST_PID
check "the server owns org.tapotun1.server (its file name)" wait_for 10 "${CTL[@]}" status server

run introspect busctl --address="$BUS" introspect --xml-interface org.tapotun1.server /org/tapotun1
check "introspection names the method arguments" \
        bash -c "grep -q '<method name=\"DisconnectPeer\">' $E2E_TMP/introspect.out &&
                 grep -q '<arg type=\"s\" name=\"tunnel\" direction=\"in\"/>' $E2E_TMP/introspect.out &&
                 grep -q '<arg type=\"s\" name=\"peer\" direction=\"in\"/>' $E2E_TMP/introspect.out &&
                 grep -q '<arg type=\"as\" name=\"warnings\" direction=\"out\"/>' $E2E_TMP/introspect.out"
run objects busctl --address="$BUS" call org.tapotun1.server /org/tapotun1 \
        org.freedesktop.DBus.ObjectManager GetManagedObjects
check "the object manager lists the tunnel and its peer" \
        grep -q "/org/tapotun1/tunnel/tun0.*$SRV_PEER" "$E2E_TMP/objects.out"
run peer-props busctl --address="$BUS" introspect org.tapotun1.server "$SRV_PEER" org.tapotun1.Peer
check "State signals its changes, counters are read when asked for" \
        bash -c "grep -Eq '^\.State .*emits-change' $E2E_TMP/peer-props.out &&
                 ! grep -Eq '^\.RxPackets .*emits' $E2E_TMP/peer-props.out"
check "the peer is disconnected before the client starts" \
        state_is "$BUS" org.tapotun1.server "$SRV_PEER" disconnected

busctl --address="$BUS" monitor org.tapotun1.server org.tapotun1.client >"$E2E_TMP/monitor.log" 2>&1 &
E2E_PIDS+=("$!")
sleep 0.5

e2e_start "$NS_CLI" client "$E2E_TMP/client.json" "--bus-address=$BUS"
check "client gets its address from the server" wait_for 15 tun_has_addr "$NS_CLI" tun0 10.10.0.2
check "a second instance owns org.tapotun1.client beside the server" wait_for 10 "${CTL[@]}" status client
run list "${CTL[@]}"
check "a bare tapotunctl lists both instances" \
        bash -c "grep -q '^client ' $E2E_TMP/list.out && grep -q '^server ' $E2E_TMP/list.out"
check "the server's peer becomes connected" \
        wait_for 10 state_is "$BUS" org.tapotun1.server "$SRV_PEER" connected
check "ConnectedSince is set" test "$(number srv_peer ConnectedSince)" -gt 0
check "Remote is the client's underlay address" grep -q "\"$CLI_UNDERLAY:" <<<"$(srv_peer Remote)"
check "the client's peer (its server) is connected" \
        wait_for 5 state_is "$BUS" org.tapotun1.client "$CLI_PEER" connected
check "the client tunnel shows the address its server pushed" grep -q '"10.10.0.2/24"' \
        <<<"$(prop "$BUS" org.tapotun1.client /org/tapotun1/tunnel/tun0 org.tapotun1.Tunnel Addresses)"
check "PropertiesChanged announced the connection" wait_for 5 monitor_saw "$SRV_PEER" connected

rx0=$(number srv_peer RxPackets)
tx0=$(number srv_peer TxPackets)
ip netns exec "$NS_CLI" ping -c 5 -i 0.2 -W 2 10.10.0.1 >/dev/null
rx1=$(number srv_peer RxPackets)
tx1=$(number srv_peer TxPackets)
diag "server's peer: RxPackets $rx0 -> $rx1, TxPackets $tx0 -> $tx1"
check "RxPackets grows with the pings" test "$rx1" -ge $((rx0 + 5))
check "TxPackets grows with the replies" test "$tx1" -ge $((tx0 + 5))
check "LastSeen is set" test "$(number srv_peer LastSeen)" -gt 0

run status "${CTL[@]}" status server
check "status shows the tunnel and its connected peer" \
        bash -c "grep -q 'tun0: server, listening on 0.0.0.0:8080' $E2E_TMP/status.out &&
                 grep -Eq '^ +client0 +connected +$CLI_UNDERLAY:' $E2E_TMP/status.out"
run show "${CTL[@]}" show server client0
sed 's/^/#   /' "$E2E_TMP/show.out"
check "show gives traffic in human units and times as \"ago\"" \
        bash -c "grep -Eq 'Received: [0-9]+ packets \\([0-9.]+ (B|KiB)\\)' $E2E_TMP/show.out &&
                 grep -Eq 'Connected since: .*\\(([0-9]+min )?[0-9]+s ago\\)' $E2E_TMP/show.out"
run peers-json "${CTL[@]}" peers --json
check "peers --json is the daemons' description" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
s = [x for x in p if x["instance"] == "server"][0]
assert s["state"] == "connected" and s["rx_packets"] >= 5, s
' "$E2E_TMP/peers-json.out"
run show-json "${CTL[@]}" show server tun0/client0 --json
check "show TUNNEL/PEER --json is that peer" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
assert p["name"] == "client0" and p["tunnel"] == "tun0" and p["instance"] == "server", p
' "$E2E_TMP/show-json.out"
run no-peer manager org.tapotun1.server DisconnectPeer string:tun0 string:nope
check "a missing peer is org.tapotun1.Error.NoSuchPeer" \
        grep -q 'Error org.tapotun1.Error.NoSuchPeer' "$E2E_TMP/no-peer.out"
run no-tunnel manager org.tapotun1.server GetTunnel string:tun9
check "a missing tunnel is org.tapotun1.Error.NoSuchTunnel" \
        grep -q 'Error org.tapotun1.Error.NoSuchTunnel' "$E2E_TMP/no-tunnel.out"
run no-instance "${CTL[@]}" status nope
check "a missing instance: exit 1 and says so" \
        bash -c "[ $RC = 1 ] && grep -q 'no tapotun daemon \"nope\" is running' $E2E_TMP/no-instance.out"

# Unprivileged callers read, and the policy refuses them everything else.
check "nobody may read status" "${AS_NOBODY[@]}" "${CTL[@]}" status server
check "nobody may read a property" \
        "${AS_NOBODY[@]}" busctl --address="$BUS" get-property org.tapotun1.server "$SRV_PEER" org.tapotun1.Peer State
run nobody-disconnect "${AS_NOBODY[@]}" "${CTL[@]}" disconnect server client0
check "nobody may not disconnect a peer: exit 1 with the bus error" \
        bash -c "[ $RC = 1 ] && grep -q 'Failed to disconnect tun0/client0 of server: .*DisconnectPeer' \
                 $E2E_TMP/nobody-disconnect.out"
run nobody-reload "${AS_NOBODY[@]}" dbus-send --bus="$BUS" --print-reply --dest=org.tapotun1.server \
        /org/tapotun1 org.tapotun1.Manager.Reload
check "nobody may not reload" \
        grep -q 'Error org.freedesktop.DBus.Error.AccessDenied' "$E2E_TMP/nobody-reload.out"
check "the peer is still connected" state_is "$BUS" org.tapotun1.server "$SRV_PEER" connected

# DisconnectPeer drops the client, which comes back by itself.
since0=$(number srv_peer ConnectedSince)
sleep 1
check "tapotunctl disconnect (root) succeeds" "${CTL[@]}" disconnect server client0
check "the server's peer left the connected state" \
        wait_for 5 bash -c "$(declare -f monitor_saw); E2E_TMP=$E2E_TMP; monitor_saw $SRV_PEER connecting ||
                            monitor_saw $SRV_PEER disconnected"
check "the client reconnects: a new ConnectedSince" \
        wait_for 40 bash -c "[ \"\$(busctl --address=$BUS get-property org.tapotun1.server $SRV_PEER \
                             org.tapotun1.Peer ConnectedSince | cut -d' ' -f2)\" -gt $since0 ]"
check "LastError says why the streams ended" grep -q 'disconnected by the server' <<<"$(srv_peer LastError)"

# Reload: a broken file is refused with every problem in it, the good one is applied.
echo '[{"name":"tun0","prot":8080}]' >"$E2E_TMP/server.json"
run reload-broken "${CTL[@]}" reload server
check "reload of a broken file: exit 1 and the validation errors" \
        bash -c "[ $RC = 1 ] &&
                 grep -q 'unknown field \"prot\"; did you mean \"port\"?' $E2E_TMP/reload-broken.out"
run reload-broken-bus manager org.tapotun1.server Reload
check "Reload of a broken file is org.tapotun1.Error.InvalidConfig" \
        grep -q 'Error org.tapotun1.Error.InvalidConfig' "$E2E_TMP/reload-broken-bus.out"
cp "$E2E_TMP/server.good" "$E2E_TMP/server.json"
since1=$(number srv_peer ConnectedSince)
check "reload of the unchanged file succeeds" "${CTL[@]}" reload server
check "and keeps the session" test "$(number srv_peer ConnectedSince)" = "$since1"

# Where no policy protects it, the daemon checks the caller itself.
# other_server NAME PORT NET: the server configuration on another TUN, port and network.
other_server() {
        sed "s/\"tun0\"/\"$1\"/; s/8080/$2/; s/10\.10\.0\./10.10.$3./g" "$E2E_TMP/server.good"
}

other_server tun8 8088 8 >"$E2E_TMP/open.json"
e2e_start "$NS_SRV" open "$E2E_TMP/open.json" "--bus-address=$OPEN_BUS" --instance=open
OPEN_CTL=("$TAPOTUNCTL" "--bus-address=$OPEN_BUS")
check "--instance names the bus name: org.tapotun1.open" wait_for 10 "${OPEN_CTL[@]}" status open
run open-reload "${AS_NOBODY[@]}" dbus-send --bus="$OPEN_BUS" --print-reply --dest=org.tapotun1.open \
        /org/tapotun1 org.tapotun1.Manager.Reload
check "without the policy, the daemon refuses nobody's Reload" \
        grep -q 'Error org.freedesktop.DBus.Error.AccessDenied: This needs root or CAP_NET_ADMIN' \
        "$E2E_TMP/open-reload.out"
run open-disconnect "${AS_NOBODY[@]}" "${OPEN_CTL[@]}" disconnect open client0
check "and nobody's DisconnectPeer" \
        bash -c "[ $RC = 1 ] && grep -q 'needs root or CAP_NET_ADMIN' $E2E_TMP/open-disconnect.out"
check "root may reload there" "${OPEN_CTL[@]}" reload open

# One name per instance: a second daemon for it does not start.
other_server tun7 8087 7 >"$E2E_TMP/dup.json"
run dup ip netns exec "$NS_SRV" timeout 20 "$TAPOTUND" "--bus-address=$BUS" --instance=server \
        "$E2E_TMP/dup.json"
check "a second daemon for the instance \"server\" fails, naming the owner" \
        bash -c "[ $RC = 1 ] && grep -q 'Another process owns org.tapotun1.server' $E2E_TMP/dup.out"

# The client waits for its server: state "backoff" with the reason.
e2e_stop "$SRV_PID"
check "with the server gone the client's peer is in backoff" \
        wait_for 10 state_is "$BUS" org.tapotun1.client "$CLI_PEER" backoff
check "LastError says why" test -n "$(cli_peer LastError | sed 's/^s ""$//')"
check "PropertiesChanged announced the backoff" wait_for 5 monitor_saw "$CLI_PEER" backoff
run list-after "${CTL[@]}" list
check "the stopped instance is no longer listed" bash -c "! grep -q '^server ' $E2E_TMP/list-after.out"

# Without a bus the daemon runs all the same, and says so once.
TAPOTUN_BUS_ADDRESS="unix:path=$BUS_DIR/none.sock" e2e_start "$NS_SRV" nobus "$E2E_TMP/server.good"
check "a daemon without a bus brings up its tunnel" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
check "the client connects to it" timeout 40 bash -c \
        "until ip netns exec $NS_CLI ping -c 1 -W 1 10.10.0.1; do sleep 0.2; done"
check "it warned exactly once about the missing bus" \
        test "$(grep -c 'running without the D-Bus interface' "$E2E_TMP/nobus.log")" = 1

e2e_finish
exit 0
