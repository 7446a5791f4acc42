#!/bin/bash
# The demo: a tapotun server and client in two fresh network namespaces joined by a veth pair, with the
# README's minimal configuration; shows the tunnel, pings through it, runs iperf3 through it (and over
# the bare veth for comparison), then removes everything. Run as root after building:
#     examples/demo.sh [BUILD_DIR]
set -u
[ $# -ge 1 ] && export TAPOTUN_BUILD_ROOT=$(cd "$1" && pwd)
source "$(dirname "$0")/../tests/e2e/lib.sh"
trap e2e_cleanup EXIT

if [ "$(id -u)" != 0 ]; then
        echo "demo.sh: needs root (it creates network namespaces and TUN devices)" >&2
        exit 1
fi
if [ ! -x "$TAPOTUND" ]; then
        echo "demo.sh: $TAPOTUND not found; build first (meson setup build && meson compile -C build)" >&2
        exit 1
fi

step() {
        printf '\n\033[1m== %s\033[0m\n' "$*"
}

e2e_topology || exit 1
e2e_server_config "$E2E_TMP/server.json"
e2e_client_config "$E2E_TMP/client.json"

step "Namespaces $NS_SRV ($SRV_UNDERLAY) and $NS_CLI ($CLI_UNDERLAY), joined by a veth pair"
step "Server configuration"
cat "$E2E_TMP/server.json"
step "Client configuration"
cat "$E2E_TMP/client.json"

e2e_start "$NS_SRV" server "$E2E_TMP/server.json"
wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1 || { e2e_logs; exit 1; }
e2e_start "$NS_CLI" client "$E2E_TMP/client.json"
wait_for 15 tun_has_addr "$NS_CLI" tun0 10.10.0.2 || { e2e_logs; exit 1; }

step "Client's tun0, configured from the server's x-tun-conf"
ip -n "$NS_CLI" addr show dev tun0
step "ping through the tunnel, both ways"
ip netns exec "$NS_CLI" ping -c 3 -i 0.2 10.10.0.1 || { e2e_logs; exit 1; }
ip netns exec "$NS_SRV" ping -c 3 -i 0.2 10.10.0.2 || { e2e_logs; exit 1; }

iperf() {
        # iperf() LABEL SERVER_NS ADDR CLIENT_NS [-R]
        local label=$1 sns=$2 addr=$3 cns=$4
        shift 4
        ip netns exec "$sns" iperf3 -s -1 -B "$addr" >/dev/null 2>&1 &
        local srv=$!
        wait_for 5 bash -c "ip netns exec $sns ss -ltn | grep -q ':5201'"
        local bps
        bps=$(ip netns exec "$cns" iperf3 -c "$addr" -t "${DEMO_SECONDS:-5}" -J "$@" 2>/dev/null |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])')
        wait "$srv" 2>/dev/null
        printf '  %-40s %6.2f Gbit/s\n' "$label" "$(python3 -c "print(${bps:-0}/1e9)")"
}

step "iperf3, 1 TCP stream, ${DEMO_SECONDS:-5} s each"
iperf "veth (no tunnel), client -> server" "$NS_SRV" "$SRV_UNDERLAY" "$NS_CLI"
iperf "tapotun, client -> server" "$NS_SRV" 10.10.0.1 "$NS_CLI"
iperf "tapotun, server -> client" "$NS_SRV" 10.10.0.1 "$NS_CLI" -R

step "Stopping (SIGTERM): each daemon removes what it added"
e2e_stop "$E2E_LAST_PID"
e2e_stop "${E2E_PIDS[0]}"
ip -n "$NS_SRV" link show tun0 2>/dev/null || echo "server tun0 removed"
ip -n "$NS_CLI" link show tun0 2>/dev/null || echo "client tun0 removed"
