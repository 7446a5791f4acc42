#!/bin/bash
# Shared helpers for the end-to-end tests and the demo: network namespaces joined by a veth pair, the
# daemons started inside them, TAP output, and a cleanup that removes everything it created.
#
# Everything happens inside namespaces created here; nothing touches the root namespace's routes.

: "${TAPOTUN_BUILD_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
TAPOTUND="$TAPOTUN_BUILD_ROOT/daemon/tapotund"
TAPOTUNCTL="$TAPOTUN_BUILD_ROOT/dbus/tapotunctl"
export TAPOTUN_PLUGIN_PATH="${TAPOTUN_PLUGIN_PATH:-$TAPOTUN_BUILD_ROOT/plugins/router:$TAPOTUN_BUILD_ROOT/plugins/http-server:$TAPOTUN_BUILD_ROOT/plugins/http-client}"

E2E_ID="$$-$RANDOM"
NS_SRV="tt-srv-$E2E_ID"
NS_CLI="tt-cli-$E2E_ID"
NS_CLI2="tt-cli2-$E2E_ID"
SRV_UNDERLAY=192.0.2.1
CLI_UNDERLAY=192.0.2.2
CLI2_UNDERLAY=192.0.2.3
E2E_TMP=$(mktemp -d /tmp/tapotun-e2e.XXXXXX)
E2E_PIDS=()
E2E_NAMESPACES=()
TAP_N=0
TAP_FAILED=0
E2E_BUS=
E2E_BUS_PID=

# The SHA-1 of the token "test", as the README's example uses it.
TOKEN_TEST_SHA1=a94a8fe5ccb19ba61c4c0873d391e987982fbbd3

ok() {
        TAP_N=$((TAP_N + 1))
        echo "ok $TAP_N - $*"
}

not_ok() {
        TAP_N=$((TAP_N + 1))
        TAP_FAILED=$((TAP_FAILED + 1))
        echo "not ok $TAP_N - $*"
}

# check DESCRIPTION COMMAND...: one TAP line from a command's exit status.
check() {
        local desc=$1
        shift
        if "$@" >"$E2E_TMP/check.out" 2>&1; then
                ok "$desc"
        else
                not_ok "$desc"
                sed 's/^/# /' "$E2E_TMP/check.out" | tail -20
        fi
}

diag() {
        echo "# $*"
}

e2e_require_root() {
        if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ]; then
                echo "1..0 # SKIP needs root and /dev/net/tun (network namespaces, TUN devices)"
                echo "SKIPPED: $0 needs root and /dev/net/tun" >&2
                exit 0
        fi
}

e2e_cleanup() {
        local pid ns
        [ -n "$E2E_BUS_PID" ] && kill "$E2E_BUS_PID" 2>/dev/null
        for pid in "${E2E_PIDS[@]}"; do
                kill "$pid" 2>/dev/null
        done
        for pid in "${E2E_PIDS[@]}"; do
                for _ in $(seq 50); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -9 "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        for ns in "${E2E_NAMESPACES[@]}"; do
                ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
                ip netns del "$ns" 2>/dev/null
        done
        rm -rf "$E2E_TMP"
}

# e2e_private_bus: a dbus-daemon of the test's own that lets everyone own and call anything (test-dbus.sh
# checks the real policy), for reading counters and properties; sets E2E_BUS to its address. Fails when
# there is no dbus-daemon. e2e_cleanup stops it.
e2e_private_bus() {
        local out
        command -v dbus-daemon >/dev/null || return 1
        cat >"$E2E_TMP/bus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$E2E_TMP/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/> <allow send_destination="*"/> <allow receive_sender="*"/>
  </policy>
</busconfig>
XML
        out=$(dbus-daemon --config-file="$E2E_TMP/bus.conf" --fork --nopidfile --print-address=1 \
                --print-pid=1) || return 1
        E2E_BUS=$(echo "$out" | sed -n 1p | cut -d, -f1)
        E2E_BUS_PID=$(echo "$out" | sed -n 2p)
}

# e2e_netns NAME...: fresh namespaces with loopback up.
e2e_netns() {
        local ns
        for ns in "$@"; do
                ip netns add "$ns" || return 1
                E2E_NAMESPACES+=("$ns")
                ip -n "$ns" link set lo up
        done
}

# e2e_link NS_A ADDR_A NS_B ADDR_B: a veth pair (underlay) between two namespaces on 192.0.2.0/24,
# created inside NS_A with its peer moved straight into NS_B.
e2e_link() {
        local a=$1 addr_a=$2 b=$3 addr_b=$4
        local ia ib
        ia="to-$(echo "$b" | cut -d- -f2)"
        ib="to-$(echo "$a" | cut -d- -f2)"
        ip -n "$a" link add "$ia" type veth peer name "$ib" netns "$b" || return 1
        ip -n "$a" addr add "$addr_a/24" dev "$ia" && ip -n "$a" link set "$ia" up &&
                ip -n "$b" addr add "$addr_b/24" dev "$ib" && ip -n "$b" link set "$ib" up
}

# e2e_topology: a server and a client namespace joined by a veth pair.
e2e_topology() {
        e2e_netns "$NS_SRV" "$NS_CLI" || return 1
        e2e_link "$NS_SRV" "$SRV_UNDERLAY" "$NS_CLI" "$CLI_UNDERLAY"
}

# e2e_start NS NAME CONFIG_FILE [ARGS...]: runs tapotund in NS, logs to $E2E_TMP/NAME.log; sets
# E2E_LAST_PID.
e2e_start() {
        local ns=$1 name=$2 conf=$3
        shift 3
        ip netns exec "$ns" "$TAPOTUND" "$@" "$conf" >>"$E2E_TMP/$name.log" 2>&1 &
        E2E_LAST_PID=$!
        E2E_PIDS+=("$E2E_LAST_PID")
}

# e2e_stop PID [SIGNAL]: returns the process's exit status.
e2e_stop() {
        kill "-${2:-TERM}" "$1" 2>/dev/null
        wait "$1" 2>/dev/null
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
        local n=$(($1 * 10))
        shift
        for _ in $(seq "$n"); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

# tun_has_addr NS DEV ADDR: the interface exists and carries ADDR.
tun_has_addr() {
        ip -n "$1" -j addr show dev "$2" 2>/dev/null | grep -q "\"local\":\"$3\""
}

# e2e_server_config FILE: the README's minimal server (tun0 10.10.0.1/24, client token "test").
e2e_server_config() {
        cat >"$1" <<JSON
[
  {
    "name": "tun0",
    "port": 8080,
    "listen": "0.0.0.0",
    "net": "10.10.0.1/24",
    "clients": [ { "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" } ]
  }
]
JSON
}

# e2e_client_config FILE [TOKEN] [SERVER_URL]: the README's minimal client.
e2e_client_config() {
        cat >"$1" <<JSON
[
  {
    "name": "tun0",
    "server": "${3:-http://$SRV_UNDERLAY:8080/}",
    "token": "${2:-test}"
  }
]
JSON
}

# e2e_finish: stops the daemons still running (SIGTERM, so sanitizers report leaks at exit), checks that
# no daemon log has a sanitizer report, prints the logs when anything failed, and ends the TAP plan.
e2e_finish() {
        local pid
        for pid in "${E2E_PIDS[@]}"; do
                kill -0 "$pid" 2>/dev/null && e2e_stop "$pid"
        done
        E2E_PIDS=()
        if grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$E2E_TMP"/*.log >"$E2E_TMP/san.out" 2>/dev/null; then
                not_ok "no sanitizer reports in the daemon logs"
                sed 's/^/# /' "$E2E_TMP/san.out"
        else
                ok "no sanitizer reports in the daemon logs"
        fi
        [ "$TAP_FAILED" = 0 ] || e2e_logs
        echo "1..$TAP_N"
}

e2e_logs() {
        local f
        for f in "$E2E_TMP"/*.log; do
                [ -f "$f" ] || continue
                echo "# --- $(basename "$f")"
                tail -60 "$f" | sed 's/^/#   /'
        done
}
