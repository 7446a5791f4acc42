#!/bin/bash
# bench/soak.sh: a long mixed-traffic run against one tapotun server, checked for flat memory and
# descriptor counts. See "Soak test" in README.md.
#
#     bench/soak.sh [DURATION_SECONDS] [--clients N] [--build DIR] [--out DIR]
#
# One server and N clients (default 8), each in its own network namespace on a bridge in the server's
# (underlay 192.0.2.0/24, tunnel 10.10.0.0/24). For DURATION seconds (default 600) every client pings
# the server continuously and, at random intervals, runs short iperf3 bursts through the tunnel: TCP one
# way or the other, or UDP at 50 Mbit/s. Meanwhile clients are killed (SIGTERM or SIGKILL) and started
# again at random intervals; client 1 is never killed, as the long-lived session. Every 10 s the server's
# VmRSS and open descriptors (and client 1's) go into soak.tsv.
#
# At the end the churn stops, every client is started again and connects, and the traffic stops. PASS
# when the server's mean VmRSS over the last window (the last minute, or a quarter of a shorter run) is
# within 10% of its mean over the second window (the second minute), and its descriptor count, once
# every client is connected again and nothing else moves, is what it was when they had first connected.
#
# Builds nothing: it runs the daemon of an existing build directory (default ./build). Everything runs in
# namespaces created here; the processes it starts are killed by PID and the namespaces removed at exit.
# Not part of the test suite (it takes 10 minutes): run it before a release, niced on a shared machine.
set -uo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(dirname "$HERE")
BUILD=$SRC/build
OUT=
DURATION=600
N=8
SAMPLE_SEC=10
QUEUE_BYTES=

usage() {
        cat <<EOF
usage: bench/soak.sh [DURATION_SECONDS] [OPTIONS]
  DURATION_SECONDS  length of the run (default $DURATION, at least 120)
  --clients N       number of clients, 2 to 50 (default $N)
  --queue-bytes B   the server's queue_bytes (default: tapotun's default, 12 MiB per client)
  --build DIR       build directory whose tapotund to run (default ./build); nothing is built
  --out DIR         where soak.tsv and the logs go (default /tmp/tapotun-soak-DATE)
EOF
}

while [ $# -gt 0 ]; do
        case $1 in
        --clients) N=$2; shift ;;
        --queue-bytes) QUEUE_BYTES=$2; shift ;;
        --build) BUILD=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        [0-9]*) DURATION=$1 ;;
        *) echo "bench/soak.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
        esac
        shift
done

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "bench/soak.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces and TUN devices)"
[[ $DURATION =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 120 ] || die "DURATION must be a number of seconds, at least 120"
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 2 ] && [ "$N" -le 50 ] || die "--clients must be 2 to 50"
for c in iperf3 ping ip python3; do
        command -v "$c" >/dev/null || die "$c is not installed (bench/packages)"
done
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "build directory '$BUILD' does not exist; build first: meson setup build && meson compile -C build (the bench builds nothing)"
TAPOTUND=$BUILD/daemon/tapotund
[ -x "$TAPOTUND" ] || die "$TAPOTUND not found; build first: meson setup build && meson compile -C build"
export TAPOTUN_PLUGIN_PATH=$BUILD/plugins/router:$BUILD/plugins/http-server:$BUILD/plugins/http-client
# No D-Bus: the run is about the data path, and a system bus would see N+1 daemons come and go.
NO_BUS=--bus-address=unix:path=/nonexistent/tapotun-soak-no-bus

ID=$$
NS_S=sk-srv-$ID
WORK=$(mktemp -d /tmp/tapotun-soak.XXXXXX)
[ -n "$OUT" ] || OUT=/tmp/tapotun-soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
TSV=$OUT/soak.tsv

ns_cli() { echo "sk-c$1-$ID"; }

# ------------------------------------------------------------------------------------------------
# Processes and cleanup: every process is started here and remembered by PID.

PIDS=()
declare -A CLIENT_PID=()

cleanup() {
        local p i
        trap - EXIT INT TERM
        for p in "${PIDS[@]}" "${CLIENT_PID[@]}"; do
                kill -TERM "$p" 2>/dev/null
        done
        sleep 1
        for p in "${PIDS[@]}" "${CLIENT_PID[@]}"; do
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        for i in $(seq "$N"); do
                ip netns pids "$(ns_cli "$i")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
                ip netns del "$(ns_cli "$i")" 2>/dev/null
        done
        ip netns pids "$NS_S" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$NS_S" 2>/dev/null
        mkdir -p "$OUT/logs"
        cp -r "$WORK"/. "$OUT/logs/" 2>/dev/null
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # wait_for SECONDS CMD...
        local end=$((SECONDS + $1))
        shift
        until "$@" >/dev/null 2>&1; do
                [ $SECONDS -ge "$end" ] && return 1
                sleep 0.2
        done
}

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# Established connections to the server's port: two per connected client.
conns() { ip netns exec "$NS_S" ss -Htn state established "sport = :8080" 2>/dev/null | wc -l; }
all_connected() { [ "$(conns)" -ge $((2 * N)) ] && ip netns exec "$(ns_cli "$N")" ping -c 1 -W 1 10.10.0.1; }

# ------------------------------------------------------------------------------------------------
# Setup: a bridge in the server namespace, one veth per client.

setup() {
        local i ns
        ip netns add "$NS_S" || return 1
        ip -n "$NS_S" link set lo up
        ip -n "$NS_S" link add br0 type bridge && ip -n "$NS_S" addr add 192.0.2.1/24 dev br0 &&
                ip -n "$NS_S" link set br0 up || return 1
        for i in $(seq "$N"); do
                ns=$(ns_cli "$i")
                ip netns add "$ns" && ip -n "$ns" link set lo up &&
                        ip -n "$NS_S" link add "c$i" type veth peer name ul netns "$ns" &&
                        ip -n "$NS_S" link set "c$i" master br0 && ip -n "$NS_S" link set "c$i" up &&
                        ip -n "$ns" addr add "192.0.2.$((10 + i))/24" dev ul && ip -n "$ns" link set ul up ||
                        return 1
        done
}

write_configs() {
        local i clients="" queue=""
        [ -n "$QUEUE_BYTES" ] && queue=" \"queue_bytes\": $QUEUE_BYTES,"
        for i in $(seq "$N"); do
                clients+="${clients:+,}
      { \"name\": \"c$i\", \"token\": \"$(printf %s "soak-$i" | sha1sum | cut -d' ' -f1)\", \"ip\": \"10.10.0.$((10 + i))\" }"
                cat >"$WORK/c$i.json" <<JSON
[ { "name": "tun0", "server": "http://192.0.2.1:8080/", "token": "soak-$i", "reconnect_min": 1,
    "reconnect_max": 5 } ]
JSON
        done
        cat >"$WORK/server.json" <<JSON
[ { "name": "tun0", "port": 8080, "listen": "0.0.0.0", "net": "10.10.0.1/24",$queue
    "clients": [$clients ] } ]
JSON
}

start_client() {
        local i=$1
        ip netns exec "$(ns_cli "$i")" "$TAPOTUND" "$NO_BUS" "$WORK/c$i.json" >>"$WORK/c$i.log" 2>&1 </dev/null &
        CLIENT_PID[$i]=$!
}

# ------------------------------------------------------------------------------------------------
# Traffic: one loop per client (ping all along, random iperf3 bursts) and one loop that kills and
# restarts clients. Each loop ends when $WORK/stop exists.

traffic_loop() {
        local i=$1 ns port kind rc
        ns=$(ns_cli "$i")
        port=$((5200 + i))
        RANDOM=$((ID + i))
        # ping gives up when its route goes with a killed client's TUN: start it again.
        (while [ ! -e "$WORK/stop" ]; do
                ip netns exec "$ns" ping -q -i 0.2 -w 30 10.10.0.1 >/dev/null 2>&1 || sleep 1
        done) &
        local ping=$!
        while [ ! -e "$WORK/stop" ]; do
                sleep $((2 + RANDOM % 8))
                kind=$((RANDOM % 3))
                case $kind in
                0) ip netns exec "$ns" timeout 15 iperf3 -c 10.10.0.1 -p "$port" -t 3 ;;
                1) ip netns exec "$ns" timeout 15 iperf3 -c 10.10.0.1 -p "$port" -t 3 -R ;;
                2) ip netns exec "$ns" timeout 15 iperf3 -c 10.10.0.1 -p "$port" -t 3 -u -b 50M -l 1200 ;;
                esac >>"$WORK/iperf-c$i.log" 2>&1
                rc=$?
                echo "$(date +%s) c$i iperf kind $kind: $rc" >>"$WORK/traffic.log"
        done
        kill "$ping" 2>/dev/null
        wait "$ping" 2>/dev/null
}

churn_loop() {
        local i sig
        RANDOM=$ID
        while [ ! -e "$WORK/stop-churn" ]; do
                sleep $((5 + RANDOM % 15))
                [ -e "$WORK/stop-churn" ] && break
                i=$((2 + RANDOM % (N - 1)))
                sig=TERM
                [ $((RANDOM % 2)) = 0 ] && sig=KILL
                echo "$i $sig" >"$WORK/churn.fifo"
        done
        echo "end" >"$WORK/churn.fifo"
}

# ------------------------------------------------------------------------------------------------

log "work dir $WORK, results in $OUT"
setup || die "cannot create the namespaces"
write_configs
ip netns exec "$NS_S" "$TAPOTUND" "$NO_BUS" "$WORK/server.json" >>"$WORK/server.log" 2>&1 </dev/null &
SRV_PID=$!
PIDS+=("$SRV_PID")
wait_for 10 ip -n "$NS_S" addr show dev tun0 || die "the server did not come up (logs in $OUT/logs)"
for i in $(seq "$N"); do
        ip netns exec "$NS_S" iperf3 -s -B 10.10.0.1 -p $((5200 + i)) >>"$WORK/iperf-server.log" 2>&1 </dev/null &
        PIDS+=("$!")
        start_client "$i"
done
wait_for 60 all_connected || die "not every client connected (logs in $OUT/logs)"
sleep 2
FDS_START=$(fds "$SRV_PID")
log "$N clients connected; server: $FDS_START descriptors, VmRSS $(rss_kib "$SRV_PID") KiB"

mkfifo "$WORK/churn.fifo"
for i in $(seq "$N"); do
        traffic_loop "$i" &
        PIDS+=("$!")
done
churn_loop &
PIDS+=("$!")

# The churn requests are carried out here, where the client PIDs live. A killed client is started again
# 1 to 5 s later, from the sampling loop below.
exec 7<>"$WORK/churn.fifo"
declare -A RESTART_AT=()
printf 't_sec\tserver_rss_kib\tserver_fds\tserver_conns\tclient1_rss_kib\tclient1_fds\tclients_up\n' >"$TSV"
START=$SECONDS
next_sample=$START
kills=0
while [ $((SECONDS - START)) -lt "$DURATION" ]; do
        if read -r -t 1 i sig <&7; then
                if [ "$i" != end ] && [ -z "${RESTART_AT[$i]:-}" ]; then
                        kill "-$sig" "${CLIENT_PID[$i]}" 2>/dev/null
                        wait "${CLIENT_PID[$i]}" 2>/dev/null
                        RESTART_AT[$i]=$((SECONDS + 1 + RANDOM % 5))
                        kills=$((kills + 1))
                        echo "$(date +%s) c$i killed ($sig)" >>"$WORK/traffic.log"
                fi
        fi
        for i in "${!RESTART_AT[@]}"; do
                if [ "$SECONDS" -ge "${RESTART_AT[$i]}" ]; then
                        start_client "$i"
                        unset "RESTART_AT[$i]"
                fi
        done
        if [ "$SECONDS" -ge "$next_sample" ]; then
                up=$((N - ${#RESTART_AT[@]}))
                printf '%d\t%s\t%s\t%s\t%s\t%s\t%d\n' $((SECONDS - START)) "$(rss_kib "$SRV_PID")" \
                        "$(fds "$SRV_PID")" "$(conns)" "$(rss_kib "${CLIENT_PID[1]}")" "$(fds "${CLIENT_PID[1]}")" \
                        "$up" >>"$TSV"
                next_sample=$((next_sample + SAMPLE_SEC))
                kill -0 "$SRV_PID" 2>/dev/null || die "the server died (logs in $OUT/logs)"
        fi
done

# Quiesce: no more kills, every client running again, then the traffic stops.
touch "$WORK/stop-churn"
while read -r -t 30 i sig <&7; do
        [ "$i" = end ] && break
done
for i in "${!RESTART_AT[@]}"; do
        start_client "$i"
done
touch "$WORK/stop"
log "run over ($kills clients killed and restarted); waiting for the traffic to stop and the clients to connect"
sleep 20
wait_for 60 all_connected || log "not every client connected again"
sleep 2
FDS_END=$(fds "$SRV_PID")
RSS_END=$(rss_kib "$SRV_PID")
bursts=$(grep -c "iperf kind" "$WORK/traffic.log")
failed=$(grep -c "iperf kind [0-9]: [^0]" "$WORK/traffic.log")

python3 - "$TSV" "$DURATION" "$FDS_START" "$FDS_END" "$RSS_END" "$kills" "$bursts" "$failed" <<'PY'
import sys
tsv, duration, fds_start, fds_end, rss_end, kills, bursts, failed = sys.argv[1:]
duration = int(duration)
rows = [l.rstrip("\n").split("\t") for l in open(tsv)][1:]
rows = [(int(r[0]), int(r[1]), int(r[2])) for r in rows if r[1] and r[2]]
if not rows:
    print("FAIL: no samples")
    sys.exit(1)
w = min(60, duration // 4)
early = [r[1] for r in rows if w <= r[0] < 2 * w]
late = [r[1] for r in rows if r[0] >= duration - w]
mean = lambda l: sum(l) / len(l) if l else 0
rss = [r[1] for r in rows]
fds = [r[2] for r in rows]
e, l = mean(early), mean(late)
rss_ok = bool(early and late) and l <= e * 1.10
fds_ok = fds_start == fds_end
change = (l / e - 1) * 100 if e else 0
print(f"samples: {len(rows)} every 10 s over {duration} s; {kills} client kills; "
      f"{bursts} iperf3 bursts, {failed} failed (a client killed mid-burst)")
print(f"server VmRSS KiB: first {rss[0]}, last {rss[-1]}, max {max(rss)}; mean {e:.0f} in "
      f"[{w}, {2 * w}) s, {l:.0f} in the last {w} s ({change:+.1f}%); {rss_end} at the end")
print(f"server fds: first {fds[0]}, last {fds[-1]}, max {max(fds)}; all clients connected and idle: "
      f"{fds_start} at the start, {fds_end} at the end")
print(f"RSS flat (last window within 10% of the second): {'PASS' if rss_ok else 'FAIL'}")
print(f"fds equal (start and end, all connected):         {'PASS' if fds_ok else 'FAIL'}")
print("PASS" if rss_ok and fds_ok else "FAIL")
sys.exit(0 if rss_ok and fds_ok else 1)
PY
status=$?
log "samples in $TSV, logs in $OUT/logs"
exit $status
