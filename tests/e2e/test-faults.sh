#!/bin/bash
# Faults, in fresh namespaces: a server with client alpha connected directly (underlay 192.0.2.0/24) and
# client beta through nginx (plain HTTP, the examples' proxy settings) on its own underlay
# (198.51.100.0/24). One after the other:
#   a. the server killed with SIGKILL and started again: both clients reconnect by themselves;
#   b. nginx stopped and started again: beta reconnects by itself, alpha is untouched;
#   c. alpha's underlay down for 30 s, then up: the server drops alpha after its peer_timeout, beta
#      carries on, and alpha is back within its reconnect backoff (reconnect_max 4 s) of the link;
#   d. the server's TUN deleted under the running daemon (ip link del), then alpha's: each daemon says so,
#      creates the device again with its MTU, addresses, routes, accept_local and fwmark rule, and the
#      sessions carry on;
#   e. the configuration replaced by garbage and reloaded: refused with the reason, nothing changes;
#   f. a UDP flood toward alpha while its daemon is stopped (SIGSTOP), so nothing drains its queue: the
#      server's memory stays bounded, the drops are counted (tapotunctl over a private bus), beta is
#      served meanwhile, and alpha is served again once it continues.
# After each, traffic flows again through both tunnels without anyone acting, and every daemon that
# lived through it has the same number of open descriptors as before (exactly, once its connections
# have settled) and a resident size within RSS_SLACK_KIB of before (FLOOD_RSS_KIB for the flood).
# Leaks themselves are for LeakSanitizer (the sanitizer build) and test-valgrind.sh: resident size only
# catches gross growth.
source "$(dirname "$0")/lib.sh"
e2e_require_root
for tool in nginx python3; do
        if ! command -v "$tool" >/dev/null; then
                echo "1..0 # SKIP $tool is not installed (.ci/packages)"
                exit 0
        fi
done
trap e2e_cleanup EXIT
EXAMPLES="${TAPOTUN_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/examples"
# ASan keeps freed memory in quarantine (256 MiB by default), which would hide what resident size says.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"

BETA_SRV=198.51.100.1
BETA_CLI=198.51.100.2
PROXY=$BETA_SRV:8000
TOKEN_B_SHA1=$(printf %s beta-secret | sha1sum | cut -d' ' -f1)
QUEUE_BYTES=$((4 << 20))
RSS_SLACK_KIB=4096
# The flood may fill alpha's queue (QUEUE_BYTES) and the buffers around it once.
FLOOD_RSS_KIB=$((QUEUE_BYTES / 1024 + 16384))
CONF=$E2E_TMP/server.json
SRV_LOG=$E2E_TMP/server.log
PROXY_PID=

# ---------------------------------------------------------------------------------------------------
# Topology, bus, proxy, daemons.

setup() {
        e2e_topology && e2e_netns "$NS_CLI2" &&
                ip -n "$NS_SRV" link add to-b type veth peer name to-srv netns "$NS_CLI2" &&
                ip -n "$NS_SRV" addr add "$BETA_SRV/24" dev to-b && ip -n "$NS_SRV" link set to-b up &&
                ip -n "$NS_CLI2" addr add "$BETA_CLI/24" dev to-srv && ip -n "$NS_CLI2" link set to-srv up
}


# nginx from the examples' proxy snippet, plain HTTP on $PROXY, in the server namespace.
proxy_start() {
        local d="$E2E_TMP/nginx"
        mkdir -p "$d"
        cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $E2E_TMP/nginx.log notice;
events { worker_connections 64; }
http {
        access_log off;
        client_body_temp_path $d/body;
        proxy_temp_path $d/proxy;
        fastcgi_temp_path $d/fastcgi;
        uwsgi_temp_path $d/uwsgi;
        scgi_temp_path $d/scgi;
        server {
                listen $PROXY;
                location / {
                        include $EXAMPLES/nginx/tapotun-proxy.conf;
                }
        }
}
EOF
        ip netns exec "$NS_SRV" nginx -e "$E2E_TMP/nginx.log" -p "$d" -c "$d/nginx.conf" \
                >>"$E2E_TMP/nginx.log" 2>&1 &
        PROXY_PID=$!
        E2E_PIDS+=("$PROXY_PID")
        wait_for 15 bash -c "ip netns exec $NS_SRV ss -Htln 'sport = :8000' | grep -q ."
}

# server_config [GARBAGE]: alpha with a route behind it, beta, fwmark routing, short timers.
server_config() {
        cat >"$CONF.new" <<JSON
[ { "name": "tun0", "port": 8080, "listen": "0.0.0.0", "net": "10.10.0.1/24", "mtu": 1400,
    "keepalive": 2, "peer_timeout": 10, "queue_bytes": $QUEUE_BYTES,
    "mark": { "value": 7, "table": 70, "priority": 700 },
    "clients": [ { "name": "alpha", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2",
                   "routes": ["10.60.0.0/24"] },
                 { "name": "beta", "token": "$TOKEN_B_SHA1", "ip": "10.10.0.3" } ] } ]
JSON
        mv "$CONF.new" "$CONF"
}

# client_config FILE TOKEN URL: the short timers make recovery quick: reconnect after 1 to 4 s, and give up
# on a request that moved nothing for 5 s.
client_config() {
        cat >"$1" <<JSON
[ { "name": "tun0", "server": "$3", "token": "$2", "keepalive": 2, "stall_timeout": 5,
    "reconnect_min": 1, "reconnect_max": 4 } ]
JSON
}

start_server() {
        e2e_start "$NS_SRV" "server" "$CONF" ${BUS:+"--bus-address=$BUS"}
        SRV_PID=$E2E_LAST_PID
}

# ---------------------------------------------------------------------------------------------------
# Checks.

# Each succeeds when one of two pings is answered.
alpha_pings() { ip netns exec "$NS_CLI" ping -c 2 -i 0.3 -W 2 10.10.0.1; }
beta_pings() { ip netns exec "$NS_CLI2" ping -c 2 -i 0.3 -W 2 10.10.0.1; }
server_pings_both() {
        ip netns exec "$NS_SRV" ping -c 2 -i 0.3 -W 2 10.10.0.2 &&
                ip netns exec "$NS_SRV" ping -c 2 -i 0.3 -W 2 10.10.0.3
}
# flows: traffic flows through both tunnels, both ways.
flows() { alpha_pings && beta_pings && server_pings_both; }

# tun_is NS ADDR: tun0 in NS has MTU 1400 and ADDR/24.
tun_is() {
        ip -n "$1" -j addr show dev tun0 | grep -q "\"mtu\":1400,.*\"local\":\"$2\",\"prefixlen\":24"
}

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# snapshot: the descriptor count and resident size of every daemon, before a fault.
declare -A FDS0 RSS0
snapshot() {
        local who pid
        for who in server alpha beta; do
                pid=$(pid_of "$who")
                FDS0[$who]=$(fds "$pid")
                RSS0[$who]=$(rss_kib "$pid")
        done
}
pid_of() {
        case $1 in
        server) echo "$SRV_PID" ;;
        alpha) echo "$ALPHA_PID" ;;
        beta) echo "$BETA_PID" ;;
        esac
}

fds_equal() { [ "$(fds "$1")" = "$2" ]; }

# settled FAULT WHO [SLACK_KIB]: WHO's descriptors are back to the count of the snapshot (connections
# that ended close within the wait), and its resident size grew by at most SLACK_KIB.
settled() {
        local fault=$1 who=$2 slack=${3:-$RSS_SLACK_KIB} pid fd rss
        pid=$(pid_of "$who")
        wait_for 20 fds_equal "$pid" "${FDS0[$who]}"
        fd=$(fds "$pid")
        rss=$(rss_kib "$pid")
        diag "$fault: $who: fds ${FDS0[$who]} -> $fd, VmRSS ${RSS0[$who]} -> $rss KiB"
        check "$fault: $who has the same number of descriptors as before (${FDS0[$who]})" \
                test "$fd" = "${FDS0[$who]}"
        check "$fault: $who's VmRSS grew by less than $slack KiB" \
                test -n "$rss" -a "$((rss - ${RSS0[$who]:-0}))" -lt "$slack"
}

# since FILE LINE PATTERN: PATTERN occurs in FILE after its first LINE lines.
since() { tail -n "+$(($2 + 1))" "$1" 2>/dev/null | grep -q -E "$3"; }
lines() { wc -l <"$1" 2>/dev/null || echo 0; }
not() { ! "$@"; }

# drops PEER: the server's queue-full and stale drops for PEER, summed (tapotunctl --json show).
drops() {
        "$TAPOTUNCTL" --bus-address="$BUS" --json show server "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin).get("drops", {})
print(d.get("queue-full", 0) + d.get("stale", 0))'
}

# ---------------------------------------------------------------------------------------------------

setup || { echo "Bail out! cannot create the topology"; exit 1; }
BUS=
e2e_private_bus && BUS=$E2E_BUS || diag "no dbus-daemon: the drop counters are not checked"
server_config
client_config "$E2E_TMP/alpha.json" test "http://$SRV_UNDERLAY:8080/"
client_config "$E2E_TMP/beta.json" beta-secret "http://$PROXY/tun"

start_server
check "server is up" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
check "nginx is up on $PROXY" proxy_start
e2e_start "$NS_CLI" alpha "$E2E_TMP/alpha.json"
ALPHA_PID=$E2E_LAST_PID
e2e_start "$NS_CLI2" beta "$E2E_TMP/beta.json"
BETA_PID=$E2E_LAST_PID
check "alpha (direct) and beta (through nginx) connect; traffic flows both ways" wait_for 20 flows

# --- a. The server killed with SIGKILL and started again.
snapshot
e2e_stop "$SRV_PID" KILL
start_server
check "a: the restarted server is up" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
check "a: both clients reconnect by themselves; traffic flows" wait_for 20 flows
settled a alpha
settled a beta
# The server is a new process: what the next faults compare it with starts here.
snapshot

# --- b. nginx stopped and started again.
line=$(lines "$E2E_TMP/beta.log")
e2e_stop "$PROXY_PID"
check "b: beta notices the proxy is gone" wait_for 10 since "$E2E_TMP/beta.log" "$line" "retrying in"
check "b: alpha is untouched meanwhile" alpha_pings
check "b: nginx is up again" proxy_start
check "b: beta reconnects by itself; traffic flows" wait_for 20 flows
settled b server
settled b alpha
settled b beta

# --- c. alpha's underlay down for 30 s, then up.
snapshot
line=$(lines "$SRV_LOG")
ip -n "$NS_CLI" link set to-srv down
t_down=$(date +%s)
check "c: the server drops alpha after its peer_timeout (10 s)" \
        wait_for 25 since "$SRV_LOG" "$line" "alpha: Disconnected"
check "c: beta is served during alpha's outage" wait_for 10 beta_pings
sleep $((t_down + 30 - $(date +%s)))
ip -n "$NS_CLI" link set to-srv up
t0=$(date +%s)
check "c: alpha is back within 20 s of the link; traffic flows" wait_for 20 flows
diag "c: alpha recovered $(($(date +%s) - t0)) s after the link came up"
settled c server
settled c alpha
settled c beta

# --- d. The TUN deleted under the running daemon: first the server's, then alpha's.
snapshot
line=$(lines "$SRV_LOG")
ip -n "$NS_SRV" link del tun0
check "d: the server says its TUN failed, naming it" \
        wait_for 10 since "$SRV_LOG" "$line" "TUN device tun0 failed \(.*\): creating it again"
check "d: ... and that it created it again" \
        wait_for 10 since "$SRV_LOG" "$line" "TUN device tun0 created again"
check "d: the new tun0 has 10.10.0.1/24 and MTU 1400" \
        tun_is "$NS_SRV" 10.10.0.1
check "d: alpha's route 10.60.0.0/24 is back" \
        bash -c "ip -n $NS_SRV -j route show | grep -q '\"dst\":\"10.60.0.0/24\",\"dev\":\"tun0\"'"
check "d: table 70's default route via tun0 is back, the fwmark rule is there once" \
        bash -c "ip -n $NS_SRV -j route show table 70 | grep -q '\"dst\":\"default\",\"dev\":\"tun0\"' &&
                [ \$(ip -n $NS_SRV rule show | grep -c 'fwmark 0x7 lookup 70') = 1 ]"
check "d: accept_local is set again" \
        test "$(ip netns exec "$NS_SRV" sysctl -n net.ipv4.conf.tun0.accept_local)" = 1
check "d: the sessions carry on; traffic flows" wait_for 10 flows
check "d: the clients were not disconnected" not since "$SRV_LOG" "$line" "Disconnected"
line=$(lines "$E2E_TMP/alpha.log")
ip -n "$NS_CLI" link del tun0
check "d: alpha says its TUN failed and creates it again" \
        wait_for 10 since "$E2E_TMP/alpha.log" "$line" "TUN device tun0 created again"
check "d: alpha's new tun0 has 10.10.0.2/24 and MTU 1400" \
        tun_is "$NS_CLI" 10.10.0.2
check "d: traffic flows" wait_for 10 flows
settled d server
settled d alpha
settled d beta

# --- e. The configuration replaced by garbage and reloaded.
snapshot
line=$(lines "$SRV_LOG")
cp "$CONF" "$E2E_TMP/good.json"
printf '[ { "name": "tun0", \x01garbage\n' >"$CONF"
kill -HUP "$SRV_PID"
check "e: the reload is refused, with the place of the syntax error" \
        wait_for 10 since "$SRV_LOG" "$line" "Reload: .*server.json:1:[0-9]+: "
check "e: the log says it runs on the previous configuration" \
        since "$SRV_LOG" "$line" "Reload failed; still running on the previous configuration"
check "e: the server keeps running" kill -0 "$SRV_PID"
check "e: the clients were not disconnected" not since "$SRV_LOG" "$line" "Disconnected"
check "e: traffic flows" wait_for 10 flows
cp "$E2E_TMP/good.json" "$CONF"
settled e server
settled e alpha
settled e beta

# --- f. A flood toward alpha while nothing drains its queue.
snapshot
drops0=$([ -n "$BUS" ] && drops alpha)
kill -STOP "$ALPHA_PID"
ip netns exec "$NS_SRV" timeout 20 python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = bytes(1300)
end = time.time() + 4
n = 0
while time.time() < end:
    for _ in range(100):
        try:
            s.sendto(payload, ("10.10.0.2", 9))
            n += 1
        except OSError:
            pass
print(n)' >"$E2E_TMP/flood.out" &
FLOOD=$!
ip netns exec "$NS_CLI2" ping -n -c 10 -i 0.3 -W 2 10.10.0.1 >"$E2E_TMP/beta-flood.out" 2>&1 &
BETA_PING=$!
max_rss=0
while kill -0 "$FLOOD" 2>/dev/null; do
        rss=$(rss_kib "$SRV_PID")
        [ "${rss:-0}" -gt "$max_rss" ] && max_rss=$rss
        sleep 0.2
done
wait "$FLOOD"
wait "$BETA_PING"
beta_received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$E2E_TMP/beta-flood.out")
diag "f: $(cat "$E2E_TMP/flood.out") datagrams of 1300 bytes in 4 s"
diag "f: server VmRSS ${RSS0[server]} KiB before, at most $max_rss KiB during the flood"
check "f: the server's VmRSS stayed within $FLOOD_RSS_KIB KiB of before during the flood" \
        test "$((max_rss - ${RSS0[server]}))" -lt "$FLOOD_RSS_KIB"
diag "f: beta's pings during the flood: ${beta_received:-?} of 10 answered"
check "f: beta is served during the flood (most of 10 pings answered)" test "${beta_received:-0}" -ge 5
if [ -n "$BUS" ]; then
        drops1=$(drops alpha)
        diag "f: alpha's queue-full + stale drops: $drops0 -> $drops1"
        check "f: the server counted the drops (tapotunctl show: queue-full, stale)" \
                test -n "$drops1" -a "${drops1:-0}" -gt "${drops0:-0}"
else
        ok "f: drops counted # SKIP no dbus-daemon"
fi
kill -CONT "$ALPHA_PID"
check "f: alpha, continued, is served again; traffic flows" wait_for 20 flows
settled f server "$FLOOD_RSS_KIB"
# Drained, alpha's queue is trimmed within 10 s (iface.c, queue_trim()): the ring's memory goes back. The
# sanitizers keep freed memory for a while, so only the normal build can see it.
if [ -n "${TAPOTUN_SANITIZE:-}" ] && [ "$TAPOTUN_SANITIZE" != none ]; then
        ok "f: the server gives the drained queue's memory back # SKIP sanitizer build keeps freed memory"
else
        check "f: the server gives the drained queue's memory back (VmRSS within 1024 KiB of before)" \
                wait_for 25 bash -c "[ \$((\$(awk '/^VmRSS:/ { print \$2 }' /proc/$SRV_PID/status) - ${RSS0[server]})) -lt 1024 ]"
fi
settled f alpha
settled f beta

check "the server exits 0 on SIGTERM after all that" e2e_stop "$SRV_PID"

e2e_finish
exit 0
