#!/bin/bash
# bench/run.sh: throughput, latency and CPU cost of tapotun against the raw veth (the limit), the ceiling
# relay (the limit of the design: TUN <-> one TCP connection with tapotun's framing, no HTTP) and the
# userspace tunnels Debian ships (wireguard-go, OpenVPN over TCP, ocserv + openconnect over TLS and
# DTLS), all between two network namespaces joined by a veth pair. See "Benchmarks" in README.md.
#
#     bench/run.sh [--quick] [--out DIR] [--build DIR] [--kinds "veth tapotun-http ..."] [--runs N]
#                  [--time SECONDS] [--udp-rate RATE] [--tests "T ..."] [--max-steal PCT]
#
# Builds nothing: it runs the daemon of an existing build directory (default ./build). Everything runs
# in two namespaces created here (underlay 192.0.2.0/24, tunnels 198.51.100.0/24); the processes it
# starts are killed by PID, and the namespaces are removed at exit.
set -uo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(dirname "$HERE")
BUILD=$SRC/build
OUT=
QUICK=0
TESTS=(tcp1-fwd tcp1-rev tcp8-fwd tcp8-rev udp-fwd udp-rev)
RUNS=3
DUR=5
UDP_RATE=500M
UDP_LEN=1200
MAX_STEAL=10
STEAL_TRIES=3
ALL_KINDS="veth relay relay-nooffload tapotun-http tapotun-http-nooffload tapotun-nginx-tls wireguard-go openvpn-tcp ocserv-tls ocserv-dtls memory"
KINDS=$ALL_KINDS

usage() {
        cat <<EOF
usage: bench/run.sh [OPTIONS]
  --quick           one run of 2 s per test instead of $RUNS runs of $DUR s
  --out DIR         where results.tsv, ratios.tsv and the logs go (default /tmp/tapotun-bench-DATE)
  --build DIR       build directory whose tapotund to run (default ./build); nothing is built
  --kinds "K ..."   subset and order of: $ALL_KINDS
  --runs N          repetitions of every test (median and spread are reported; default $RUNS)
  --time SECONDS    length of each iperf3 test (default $DUR)
  --udp-rate RATE   iperf3 -b of the UDP tests (default $UDP_RATE)
  --tests "T ..."   subset of: ${TESTS[*]} (default all)
  --max-steal PCT   repeat a test (at most $STEAL_TRIES times in all, keeping the one with the least steal) while
                    the hypervisor takes more than PCT % of the CPUs' time during it (default $MAX_STEAL; 100: never)
EOF
}

while [ $# -gt 0 ]; do
        case $1 in
        --quick) QUICK=1 ;;
        --out) OUT=$2; shift ;;
        --build) BUILD=$2; shift ;;
        --kinds) KINDS=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --time) DUR=$2; shift ;;
        --udp-rate) UDP_RATE=$2; shift ;;
        --tests) read -r -a TESTS <<<"$2"; shift ;;
        --max-steal) MAX_STEAL=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
        esac
        shift
done
if [ "$QUICK" = 1 ]; then
        RUNS=1
        DUR=2
fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "bench/run.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces and TUN devices)"
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "build directory '$BUILD' does not exist; build first: meson setup build && meson compile -C build (the bench builds nothing)"
TAPOTUND=$BUILD/daemon/tapotund
[ -x "$TAPOTUND" ] || die "$TAPOTUND not found; build first: meson setup build && meson compile -C build (the bench builds nothing)"
RELAY=$BUILD/bench/ceiling-relay
PLUGIN_PATH=$BUILD/plugins/router:$BUILD/plugins/http-server:$BUILD/plugins/http-client

ID=$$
NS_S=bn-srv-$ID
NS_C=bn-cli-$ID
UL_S=192.0.2.1
UL_C=192.0.2.2
IN_S=198.51.100.1
IN_C=198.51.100.2
HZ=$(getconf CLK_TCK)
IPERF_PORT=5201
WORK=$(mktemp -d /tmp/tapotun-bench.XXXXXX)
[ -n "$OUT" ] || OUT=/tmp/tapotun-bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)

# ------------------------------------------------------------------------------------------------
# Processes and cleanup: every process is started by bg() and remembered by PID.

PIDS=()
KIND_PIDS=()
KIND_DEVS=()
LAST_PID=

bg() { # bg LOGFILE CMD...
        local logf=$1
        shift
        "$@" >>"$logf" 2>&1 </dev/null &
        LAST_PID=$!
        PIDS+=("$LAST_PID")
        KIND_PIDS+=("$LAST_PID")
}

# stop PID...: SIGTERM, up to 3 s, then SIGKILL; only PIDs that are still our children.
stop() {
        local p n live
        for p in "$@"; do
                [ "$(awk '{ sub(/^.*\) /, ""); print $2 }' /proc/"$p"/stat 2>/dev/null)" = "$$" ] &&
                        kill -TERM "$p" 2>/dev/null
        done
        for n in $(seq 30); do
                live=0
                for p in "$@"; do
                        [ "$(awk '{ sub(/^.*\) /, ""); print $2 }' /proc/"$p"/stat 2>/dev/null)" = "$$" ] &&
                                [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' /proc/"$p"/stat 2>/dev/null)" != Z ] &&
                                live=1
                done
                [ $live = 0 ] && break
                sleep 0.1
        done
        for p in "$@"; do
                [ "$(awk '{ sub(/^.*\) /, ""); print $2 }' /proc/"$p"/stat 2>/dev/null)" = "$$" ] &&
                        kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        return 0
}

# Whatever is left in our namespaces (daemons' forked children) was started by us.
kill_ns_leftovers() {
        local ns p
        for ns in "$NS_S" "$NS_C"; do
                for p in $(ip netns pids "$ns" 2>/dev/null); do
                        kill -KILL "$p" 2>/dev/null
                done
        done
}

down_kind() {
        local d
        [ ${#KIND_PIDS[@]} -gt 0 ] && stop "${KIND_PIDS[@]}"
        kill_ns_leftovers
        for d in "${KIND_DEVS[@]}"; do
                ip -n "${d%%:*}" link del "${d#*:}" 2>/dev/null
        done
        KIND_PIDS=()
        KIND_DEVS=()
        rm -f "/var/run/wireguard/bwg-s$ID.sock" "/var/run/wireguard/bwg-c$ID.sock"
}

cleanup() {
        trap - EXIT INT TERM
        [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
        kill_ns_leftovers
        ip netns del "$NS_S" 2>/dev/null
        ip netns del "$NS_C" 2>/dev/null
        rm -f "/var/run/wireguard/bwg-s$ID.sock" "/var/run/wireguard/bwg-c$ID.sock"
        mkdir -p "$OUT/logs"
        cp -r "$WORK"/. "$OUT/logs/" 2>/dev/null
        rm -f "$OUT"/logs/*.key "$OUT"/logs/*/*.key
        rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS CMD...: polls CMD every 0.1 s.
wait_for() {
        local end=$((SECONDS + $1))
        shift
        until "$@" >/dev/null 2>&1; do
                [ $SECONDS -ge "$end" ] && return 1
                sleep 0.1
        done
}

listening() { # listening NS PORT [t|u]
        [ -n "$(ip netns exec "$1" ss -Hln"${3:-t}" "sport = :$2" 2>/dev/null)" ]
}

has_addr() { # has_addr NS ADDR
        ip -n "$1" -o addr show 2>/dev/null | grep -q " $2/"
}

# ------------------------------------------------------------------------------------------------
# Packages

install_packages() {
        local pkg missing=() made_policy=0
        while read -r pkg; do
                pkg=${pkg%%#*}
                pkg=${pkg// /}
                [ -n "$pkg" ] || continue
                dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
        done <"$HERE/packages"
        [ ${#missing[@]} -gt 0 ] || return 0
        log "installing ${missing[*]}"
        # Package scripts must not start nginx, openvpn or ocserv on the host.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
                printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
                chmod 755 /usr/sbin/policy-rc.d
                made_policy=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1 ||
                { apt-get update >>"$WORK/apt.log" 2>&1 &&
                  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
                          >>"$WORK/apt.log" 2>&1; } ||
                log "apt-get install failed (see logs/apt.log); kinds that need those packages are not measured"
        [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
        return 0
}

# need CMD...: FAIL names the first command missing.
need() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || { FAIL="$c not installed (bench/packages)"; return 1; }
        done
}

# ------------------------------------------------------------------------------------------------
# Namespaces and certificates

setup_underlay() {
        ip netns add "$NS_S" && ip netns add "$NS_C" || return 1
        ip -n "$NS_S" link set lo up
        ip -n "$NS_C" link set lo up
        ip -n "$NS_S" link add bn-s type veth peer name bn-c netns "$NS_C" || return 1
        ip -n "$NS_S" addr add "$UL_S/24" dev bn-s && ip -n "$NS_S" link set bn-s up &&
                ip -n "$NS_C" addr add "$UL_C/24" dev bn-c && ip -n "$NS_C" link set bn-c up || return 1
        wait_for 5 ip netns exec "$NS_C" ping -c 1 -W 1 "$UL_S"
}

# A CA and server/client certificates (EC P-256) for nginx, OpenVPN and ocserv.
make_pki() {
        (
                cd "$WORK" || exit 1
                umask 077
                openssl ecparam -name prime256v1 -genkey -noout -out ca.key &&
                        openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=tapotun bench CA" \
                                -addext "basicConstraints=critical,CA:TRUE" \
                                -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem || exit 1
                printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:%s\n' "$UL_S" >server.ext
                printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=clientAuth\n' >client.ext
                for who in server client; do
                        openssl ecparam -name prime256v1 -genkey -noout -out "$who.key" &&
                                openssl req -new -key "$who.key" -subj "/CN=bench-$who" -out "$who.csr" &&
                                openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
                                        -sha256 -days 2 -extfile "$who.ext" -out "$who.pem" || exit 1
                done
                chmod 644 ./*.pem
        ) >"$WORK/pki.log" 2>&1
}

# ------------------------------------------------------------------------------------------------
# Kinds. up_KIND sets DST (the address iperf3 reaches in the server namespace), MTU and NOTE, or sets
# FAIL and returns 1.

up_veth() {
        DST=$UL_S
        MTU=$(ip -n "$NS_C" -o link show bn-c | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
        NOTE="no tunnel: the veth underlay itself (kernel only)"
}

# relay_up [nooffload]
relay_up() {
        [ -x "$RELAY" ] || { FAIL="$RELAY not built (bench/meson.build: subdir('bench') in the top meson.build)"; return 1; }
        bg "$WORK/relay-srv.log" ip netns exec "$NS_S" "$RELAY" server "$UL_S" 9000 brl0 "$@"
        wait_for 5 listening "$NS_S" 9000 || { FAIL="relay server not listening: $(tail -n 2 "$WORK/relay-srv.log")"; return 1; }
        bg "$WORK/relay-cli.log" ip netns exec "$NS_C" "$RELAY" client "$UL_S" 9000 brl1 "$@"
        wait_for 5 ip -n "$NS_S" link show brl0 && wait_for 5 ip -n "$NS_C" link show brl1 ||
                { FAIL="relay did not create its TUN: $(tail -n 2 "$WORK"/relay-*.log | tr '\n' ' ')"; return 1; }
        ip -n "$NS_S" addr add "$IN_S/24" dev brl0 && ip -n "$NS_S" link set brl0 mtu 1500 up &&
                ip -n "$NS_C" addr add "$IN_C/24" dev brl1 && ip -n "$NS_C" link set brl1 mtu 1500 up ||
                { FAIL="ip configuration of the relay TUNs failed"; return 1; }
        DST=$IN_S
        MTU=1500
}

up_relay() {
        relay_up || return 1
        NOTE="ceiling of the design: TUN (vnet header, TSO) <-> one TCP connection with tapotun's framing, no HTTP"
}

# The ceiling for tapotun-http-nooffload: TUNs without offloads, MTU-sized packets through both kernels.
up_relay_nooffload() {
        relay_up nooffload || return 1
        NOTE="the relay with TUNs that take no offload (no TSO, no checksum offload): MTU-sized packets"
}

TOKEN=bench
TOKEN_SHA1=$(printf '%s' "$TOKEN" | sha1sum | cut -d' ' -f1)

# tapotun_server LISTEN_ADDR: the server daemon, up when its TUN has its address.
tapotun_server() {
        cat >"$WORK/tapotun-srv.json" <<EOF
[{"name":"bt0","port":8080,"listen":"$1","net":"$IN_S/24",
  "clients":[{"token":"$TOKEN_SHA1","ip":"$IN_C"}]}]
EOF
        bg "$WORK/tapotun-srv.log" env TAPOTUN_PLUGIN_PATH="$PLUGIN_PATH" \
                ip netns exec "$NS_S" "$TAPOTUND" "$WORK/tapotun-srv.json"
        wait_for 10 has_addr "$NS_S" "$IN_S" ||
                { FAIL="tapotund (server) did not come up: $(tail -n 2 "$WORK/tapotun-srv.log" | tr '\n' ' ')"; return 1; }
}

# tapotun_client URL [CA] [OFFLOADS]: the client daemon, up when the server configured its TUN.
tapotun_client() {
        local extra=
        [ -n "${2:-}" ] && extra+=",\"ca\":\"$2\""
        [ -n "${3:-}" ] && extra+=",\"offloads\":$3"
        cat >"$WORK/tapotun-cli.json" <<EOF
[{"name":"bt1","server":"$1","token":"$TOKEN"$extra}]
EOF
        if ! "$BUILD/dbus/tapotunctl" validate "$WORK/tapotun-cli.json" >"$WORK/tapotun-cli.validate" 2>&1; then
                FAIL="client configuration refused: $(tail -n 1 "$WORK/tapotun-cli.validate")"
                return 1
        fi
        bg "$WORK/tapotun-cli.log" env TAPOTUN_PLUGIN_PATH="$PLUGIN_PATH" \
                ip netns exec "$NS_C" "$TAPOTUND" "$WORK/tapotun-cli.json"
        wait_for 20 has_addr "$NS_C" "$IN_C" ||
                { FAIL="tapotund (client) did not connect: $(tail -n 2 "$WORK/tapotun-cli.log" | tr '\n' ' ')"; return 1; }
        DST=$IN_S
        MTU=$(ip -n "$NS_C" -o link show bt1 | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
        NOTE="$("$TAPOTUND" --version 2>/dev/null | head -n 1); client TUN $(ip netns exec "$NS_C" ethtool -k bt1 2>/dev/null |
                awk '/^tcp-segmentation-offload/ { printf "TSO %s", $2 } /^tx-udp-segmentation/ { printf ", USO %s", $2 }')"
}

up_tapotun_http() {
        tapotun_server "$UL_S" && tapotun_client "http://$UL_S:8080/" || return 1
        NOTE="plain HTTP/1.1, no proxy; $NOTE"
}

# The client's TUN takes no offload: the server segments and checksums everything for it in software,
# and the client sends MTU-sized packets.
up_tapotun_http_nooffload() {
        tapotun_server "$UL_S" && tapotun_client "http://$UL_S:8080/" "" "[]" || return 1
        NOTE="plain HTTP/1.1, client \"offloads\": [] (software segmentation); $NOTE"
}

up_tapotun_nginx_tls() {
        need nginx || return 1
        [ -s "$WORK/server.pem" ] || { FAIL="certificate generation failed (logs/pki.log)"; return 1; }
        mkdir -p "$WORK/nginx-tmp"
        sed -e "s|@WORK@|$WORK|g" -e "s|@LISTEN@|$UL_S:8443|g" -e "s|@UPSTREAM@|127.0.0.1:8080|g" \
                "$HERE/nginx.conf" >"$WORK/nginx.conf"
        tapotun_server 127.0.0.1 || return 1
        bg "$WORK/nginx.log" ip netns exec "$NS_S" nginx -c "$WORK/nginx.conf" -p "$WORK"
        wait_for 10 listening "$NS_S" 8443 ||
                { FAIL="nginx not listening: $(tail -q -n 2 "$WORK/nginx.log" "$WORK/nginx-error.log" 2>/dev/null | tr '\n' ' ')"; return 1; }
        tapotun_client "https://$UL_S:8443/" "$WORK/ca.pem" || return 1
        NOTE="HTTPS to nginx $(nginx -v 2>&1 | cut -d/ -f2) ($(openssl version | cut -d' ' -f1-2)), plain HTTP/1.1 from nginx to tapotun; $NOTE"
}

up_wireguard_go() {
        need wireguard-go wg || return 1
        local k
        for k in s c; do
                (umask 077; wg genkey >"$WORK/wg-$k.key") && wg pubkey <"$WORK/wg-$k.key" >"$WORK/wg-$k.pub" ||
                        { FAIL="wg genkey failed"; return 1; }
        done
        bg "$WORK/wg-srv.log" ip netns exec "$NS_S" wireguard-go -f "bwg-s$ID"
        bg "$WORK/wg-cli.log" ip netns exec "$NS_C" wireguard-go -f "bwg-c$ID"
        KIND_DEVS+=("$NS_S:bwg-s$ID" "$NS_C:bwg-c$ID")
        wait_for 10 test -S "/var/run/wireguard/bwg-s$ID.sock" && wait_for 10 test -S "/var/run/wireguard/bwg-c$ID.sock" ||
                { FAIL="wireguard-go did not start: $(tail -n 2 "$WORK"/wg-*.log | tr '\n' ' ')"; return 1; }
        MTU=1420
        ip netns exec "$NS_S" wg set "bwg-s$ID" private-key "$WORK/wg-s.key" listen-port 51820 \
                peer "$(cat "$WORK/wg-c.pub")" allowed-ips "$IN_C/32" endpoint "$UL_C:51821" &&
                ip netns exec "$NS_C" wg set "bwg-c$ID" private-key "$WORK/wg-c.key" listen-port 51821 \
                        peer "$(cat "$WORK/wg-s.pub")" allowed-ips "$IN_S/32" endpoint "$UL_S:51820" ||
                { FAIL="wg set failed"; return 1; }
        ip -n "$NS_S" addr add "$IN_S/24" dev "bwg-s$ID" && ip -n "$NS_S" link set "bwg-s$ID" mtu $MTU up &&
                ip -n "$NS_C" addr add "$IN_C/24" dev "bwg-c$ID" && ip -n "$NS_C" link set "bwg-c$ID" mtu $MTU up ||
                { FAIL="ip configuration of the wireguard devices failed"; return 1; }
        DST=$IN_S
        NOTE="wireguard-go $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null), UDP, ChaCha20-Poly1305"
}

up_openvpn_tcp() {
        need openvpn || return 1
        [ -s "$WORK/server.pem" ] || { FAIL="certificate generation failed (logs/pki.log)"; return 1; }
        MTU=1500
        local common="dev-type tun
tun-mtu $MTU
ca $WORK/ca.pem
data-ciphers AES-256-GCM
verb 3
connect-retry 1 1
ping 10
ping-restart 60"
        printf '%s\n' "$common" "dev bov-s" "proto tcp-server" "local $UL_S" "lport 1194" "ifconfig $IN_S $IN_C" \
                "tls-server" "dh none" "cert $WORK/server.pem" "key $WORK/server.key" >"$WORK/ovpn-srv.conf"
        printf '%s\n' "$common" "dev bov-c" "proto tcp-client" "remote $UL_S 1194" "nobind" "ifconfig $IN_C $IN_S" \
                "tls-client" "remote-cert-tls server" "verify-x509-name bench-server name" \
                "cert $WORK/client.pem" "key $WORK/client.key" >"$WORK/ovpn-cli.conf"
        bg "$WORK/ovpn-srv.log" ip netns exec "$NS_S" openvpn --config "$WORK/ovpn-srv.conf"
        wait_for 10 listening "$NS_S" 1194 || { FAIL="openvpn server not listening: $(tail -n 2 "$WORK/ovpn-srv.log" | tr '\n' ' ')"; return 1; }
        bg "$WORK/ovpn-cli.log" ip netns exec "$NS_C" openvpn --config "$WORK/ovpn-cli.conf"
        KIND_DEVS+=("$NS_S:bov-s" "$NS_C:bov-c")
        wait_for 20 grep -q "Initialization Sequence Completed" "$WORK/ovpn-cli.log" ||
                { FAIL="openvpn did not connect: $(grep -hiE 'error|fatal' "$WORK"/ovpn-*.log | tail -n 2 | tr '\n' ' ')"; return 1; }
        DST=$IN_S
        NOTE="openvpn $(openvpn --version | awk 'NR==1 {print $2}'), TCP, TLS with a generated PKI, data cipher $(grep -ohE "Data Channel: cipher '[^']+'" "$WORK/ovpn-cli.log" | tail -n 1 | cut -d"'" -f2); no DCO"
}

# up_ocserv tls|dtls
up_ocserv() {
        local mode=$1 d=$WORK/oc-$1
        need ocserv ocpasswd openconnect || return 1
        [ -s "$WORK/server.pem" ] || { FAIL="certificate generation failed (logs/pki.log)"; return 1; }
        mkdir -p "$d" && chmod 755 "$WORK" "$d"
        printf 'bench\nbench\n' | ocpasswd -c "$d/ocpasswd" bench >/dev/null 2>&1 ||
                { FAIL="ocpasswd failed"; return 1; }
        {
                echo "auth = \"plain[passwd=$d/ocpasswd]\""
                echo "listen-host = $UL_S"
                echo "tcp-port = 4443"
                [ "$mode" = dtls ] && echo "udp-port = 4443"
                cat <<EOF
run-as-user = nobody
run-as-group = nogroup
socket-file = $d/ocserv.sock
occtl-socket-file = $d/occtl.sock
use-occtl = false
pid-file = $d/ocserv.pid
isolate-workers = false
server-cert = $WORK/server.pem
server-key = $WORK/server.key
max-clients = 4
max-same-clients = 0
rate-limit-ms = 0
max-ban-score = 0
keepalive = 32400
dpd = 90
mobile-dpd = 1800
switch-to-tcp-timeout = 25
try-mtu-discovery = false
tls-priorities = "NORMAL:%SERVER_PRECEDENCE:%COMPAT:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
auth-timeout = 240
cookie-timeout = 300
deny-roaming = false
rekey-time = 172800
rekey-method = ssl
device = bvpns
predictable-ips = true
ipv4-network = 198.51.100.0
ipv4-netmask = 255.255.255.0
route = 198.51.100.0/255.255.255.0
ping-leases = false
cisco-client-compat = true
dtls-legacy = true
EOF
        } >"$d/ocserv.conf"
        # Instead of vpnc-script: configures the TUN and one route, nothing else.
        cat >"$d/oc-script.sh" <<'EOF'
#!/bin/sh
echo "oc-script: reason=$reason dev=$TUNDEV ip=$INTERNAL_IP4_ADDRESS mtu=$INTERNAL_IP4_MTU"
case "$reason" in
connect|reconnect)
        ip link set dev "$TUNDEV" up mtu "${INTERNAL_IP4_MTU:-1400}"
        ip addr replace "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"
        ip route replace 198.51.100.0/24 dev "$TUNDEV"
        ;;
esac
exit 0
EOF
        chmod 755 "$d/oc-script.sh"
        bg "$WORK/ocserv-$mode.log" ip netns exec "$NS_S" ocserv -f -d 1 -c "$d/ocserv.conf"
        wait_for 10 listening "$NS_S" 4443 || { FAIL="ocserv not listening: $(tail -n 2 "$WORK/ocserv-$mode.log" | tr '\n' ' ')"; return 1; }
        echo bench >"$d/pw"
        local args=(--protocol=anyconnect --user=bench --passwd-on-stdin --non-inter --cafile="$WORK/ca.pem"
                    --script="$d/oc-script.sh" --interface=boc0 --disable-ipv6 --base-mtu=1500 -v)
        [ "$mode" = tls ] && args+=(--no-dtls)
        ip netns exec "$NS_C" openconnect "${args[@]}" "https://$UL_S:4443/" <"$d/pw" >>"$WORK/openconnect-$mode.log" 2>&1 &
        LAST_PID=$!
        PIDS+=("$LAST_PID")
        KIND_PIDS+=("$LAST_PID")
        wait_for 20 grep -q "oc-script: reason=connect" "$WORK/openconnect-$mode.log" ||
                { FAIL="openconnect did not connect: $(tail -n 3 "$WORK/openconnect-$mode.log" | tr '\n' ' ')"; return 1; }
        if [ "$mode" = dtls ]; then
                wait_for 10 grep -q "Established DTLS connection" "$WORK/openconnect-$mode.log" ||
                        { FAIL="DTLS did not come up (openconnect stayed on TLS)"; return 1; }
                sleep 1
        fi
        wait_for 5 sh -c "ip -n $NS_S -o -4 addr show | grep -q bvpns"
        DST=$(ip -n "$NS_S" -o -4 addr show | awk '$2 ~ /^bvpns/ { sub(/\/.*/, "", $4); print $4; exit }')
        [ -n "$DST" ] || { FAIL="no address on ocserv's device"; return 1; }
        MTU=$(ip -n "$NS_C" -o link show boc0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
        NOTE="ocserv $(dpkg-query -W -f '${Version}' ocserv) + openconnect $(dpkg-query -W -f '${Version}' openconnect), $(
                [ "$mode" = tls ] && echo "TLS over TCP only" || echo "DTLS over UDP")"
}
up_ocserv_tls() { up_ocserv tls; }
up_ocserv_dtls() { up_ocserv dtls; }

# ------------------------------------------------------------------------------------------------
# Measurements

# CPU ticks of the tunnel's processes: everything in our namespaces but the load generators.
tunnel_ticks() {
        local ns p comm sum=0 t
        for ns in "$NS_S" "$NS_C"; do
                for p in $(ip netns pids "$ns" 2>/dev/null); do
                        comm=$(cat /proc/"$p"/comm 2>/dev/null) || continue
                        case $comm in iperf3|ping|timeout|sleep) continue ;; esac
                        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$p"/stat 2>/dev/null) || continue
                        sum=$((sum + ${t:-0}))
                done
        done
        echo $sum
}

# cpu_jiffies: "steal total" from the cpu line of /proc/stat: the time the hypervisor ran something else
# while this machine's CPUs wanted to run (steal), and all of the CPUs' time, in clock ticks.
cpu_jiffies() {
        awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat
}

# steal_pct BEFORE AFTER: the share of the CPUs' time between two cpu_jiffies readings that was stolen (%).
steal_pct() {
        # shellcheck disable=SC2086
        set -- $1 $2
        awk -v s="$(($3 - $1))" -v t="$(($4 - $2))" 'BEGIN { printf "%.1f", (t > 0 ? s * 100 / t : 0) }'
}

# iperf TAG ARGS...: one iperf3 test from the client namespace to DST. Sets R_GBPS, R_BYTES, R_LOSS, R_CPU
# (tunnel CPU seconds), R_STEAL (% of the CPUs' time the hypervisor took meanwhile), R_ERR.
iperf() {
        local tag=$1 spid cpid t0 t1 j0 j1 json=$WORK/$KIND-$1.json
        shift
        R_GBPS=
        R_BYTES=0
        R_LOSS=
        R_CPU=
        R_STEAL=
        R_ERR=
        ip netns exec "$NS_S" iperf3 -s -1 -p $IPERF_PORT >"$WORK/$KIND-$tag-server.log" 2>&1 </dev/null &
        spid=$!
        PIDS+=("$spid")
        if ! wait_for 5 listening "$NS_S" $IPERF_PORT; then
                R_ERR="iperf3 server did not start"
                stop "$spid"
                return 1
        fi
        t0=$(tunnel_ticks)
        j0=$(cpu_jiffies)
        ip netns exec "$NS_C" timeout $((DUR + 30)) iperf3 -c "$DST" -p $IPERF_PORT -t "$DUR" -J \
                --connect-timeout 5000 "$@" >"$json" 2>"$WORK/$KIND-$tag.err" </dev/null &
        cpid=$!
        PIDS+=("$cpid")
        wait "$cpid"
        t1=$(tunnel_ticks)
        j1=$(cpu_jiffies)
        R_STEAL=$(steal_pct "$j0" "$j1")
        wait_for 5 sh -c "! kill -0 $spid 2>/dev/null"
        stop "$spid"
        R_ERR=$(jq -r '.error // empty' "$json" 2>/dev/null)
        local bps
        bps=$(jq -r '.end.sum_received.bits_per_second // empty' "$json" 2>/dev/null)
        if [ -z "$bps" ] || [ -n "$R_ERR" ]; then
                R_ERR=${R_ERR:-"no iperf3 result: $(tail -c 200 "$WORK/$KIND-$tag.err" | tr '\n' ' ')"}
                return 1
        fi
        R_GBPS=$(awk -v b="$bps" 'BEGIN { printf "%.3f", b / 1e9 }')
        R_BYTES=$(jq -r '.end.sum_received.bytes' "$json")
        R_LOSS=$(jq -r '.end.sum.lost_percent // empty' "$json")
        R_CPU=$(awk -v d=$((t1 - t0)) -v hz="$HZ" 'BEGIN { printf "%.2f", d / hz }')
}

# ping_pct COUNT INTERVAL PCT: the PCT-th percentile (50: the median) of the round trips (ms) of COUNT pings
# from the client namespace to DST.
ping_pct() {
        ip netns exec "$NS_C" ping -n -c "$1" -i "$2" -W 1 "$DST" 2>/dev/null |
                sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -n |
                awk -v p="$3" '{ v[NR] = $1 } END {
                        if (!NR) exit
                        if (p == 50) { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; exit }
                        k = int(NR * p / 100 + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR
                        printf "%.3f", v[k] }'
}

# settle: waits (at most 15 s) until a ping through the tunnel comes back within 5 ms, so that an idle
# round trip is not measured while a tunnel still drains what the previous test queued in it.
settle() {
        local i rtt
        for i in $(seq 30); do
                rtt=$(ping_pct 1 1 50)
                [ -n "$rtt" ] && awk -v r="$rtt" 'BEGIN { exit !(r < 5) }' && return 0
                sleep 0.5
        done
        log "$KIND: pings still slower than 5 ms after 15 s; idle round trip measured anyway"
}

# stats V...: "median min max" of the numbers given ("-" when none).
stats() {
        printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
                awk '{ v[NR] = $1 } END { if (!NR) { print "- - -"; exit }
                       m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                       printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'
}

# one_test TEST RUN [TRY]: one iperf3 test (with the pings under load during tcp1-fwd). Sets what iperf sets,
# and R_PING_LOAD.
one_test() {
        local t=$1 tag=$1-$2 ppid=
        [ "${3:-1}" -gt 1 ] && tag+=-try$3
        R_PING_LOAD=
        if [ "$t" = tcp1-fwd ]; then
                ping_pct $((DUR * 50)) 0.02 99 >"$WORK/$KIND-ping-load" &
                ppid=$!
                PIDS+=("$ppid")
        fi
        # shellcheck disable=SC2086
        iperf "$tag" ${ARGS[$t]}
        if [ -n "$ppid" ]; then
                wait "$ppid"
                R_PING_LOAD=$(cat "$WORK/$KIND-ping-load")
        fi
}

# test_least_steal TEST RUN: one_test, repeated (at most STEAL_TRIES times in all) while the hypervisor took
# more than MAX_STEAL % of the CPUs' time during it; the attempt with the least steal is kept (its R_*).
test_least_steal() {
        local try v
        declare -A kept=()
        for try in $(seq "$STEAL_TRIES"); do
                one_test "$1" "$2" "$try"
                # A failed first attempt ends the repetition, so a later one replaces only a success.
                if [ "$try" = 1 ] || { [ -z "$R_ERR" ] &&
                        awk -v a="$R_STEAL" -v b="${kept[STEAL]}" 'BEGIN { exit !(a < b) }'; }; then
                        for v in GBPS BYTES LOSS CPU STEAL ERR PING_LOAD; do
                                eval "kept[$v]=\$R_$v"
                        done
                fi
                [ -n "$R_ERR" ] && break
                awk -v a="$R_STEAL" -v m="$MAX_STEAL" 'BEGIN { exit !(a <= m) }' && break
                [ "$try" -lt "$STEAL_TRIES" ] &&
                        log "$KIND run $2 $1: ${R_GBPS} Gbit/s with steal $R_STEAL% (over $MAX_STEAL%): again"
        done
        for v in GBPS BYTES LOSS CPU STEAL ERR PING_LOAD; do
                eval "R_$v=\${kept[$v]}"
        done
}

declare -A ARGS=(
        [tcp1-fwd]=""
        [tcp1-rev]="-R"
        [tcp8-fwd]="-P 8"
        [tcp8-rev]="-P 8 -R"
        [udp-fwd]="-u -b $UDP_RATE -l $UDP_LEN -w 4M"
        [udp-rev]="-u -b $UDP_RATE -l $UDP_LEN -w 4M -R"
)
# Columns of results.tsv: each measured quantity as median, min, max.
QUANTITIES=(tcp1_fwd tcp1_rev tcp8_fwd tcp8_rev udp_fwd udp_fwd_loss udp_rev udp_rev_loss ping_idle ping_load
            cpu_per_gbit steal)
declare -A RES    # RES[kind,quantity] = "median min max"
declare -A STATUS # ok, partial, or "not measured: why"
declare -A NOTES
declare -A MTUS

bench_kind() {
        KIND=$1
        local fn=up_${1//-/_} run t
        FAIL=
        DST=
        MTU=
        NOTE=
        if ! declare -F "$fn" >/dev/null; then
                STATUS[$KIND]="not measured: unknown kind"
                return
        fi
        log "$KIND: setting up"
        if ! "$fn" >>"$WORK/$KIND-setup.log" 2>&1 || [ -n "$FAIL" ]; then
                STATUS[$KIND]="not measured: ${FAIL:-setup failed (logs/$KIND-setup.log)}"
                log "$KIND: ${STATUS[$KIND]}"
                down_kind
                return
        fi
        if ! wait_for 10 ip netns exec "$NS_C" ping -c 1 -W 1 "$DST"; then
                STATUS[$KIND]="not measured: no ping reply from $DST through the tunnel"
                log "$KIND: ${STATUS[$KIND]}"
                down_kind
                return
        fi
        NOTES[$KIND]=$NOTE
        MTUS[$KIND]=${MTU:--}
        STATUS[$KIND]=ok
        declare -A vals=()
        local errs=""
        for run in $(seq "$RUNS"); do
                settle
                vals[ping_idle]+=" $(ping_pct 100 0.02 50)"
                local cpu_tcp1=0 gbit_tcp1=0
                for t in "${TESTS[@]}"; do
                        test_least_steal "$t" "$run"
                        if [ -z "$R_ERR" ]; then
                                vals[${t//-/_}]+=" $R_GBPS"
                                vals[steal]+=" $R_STEAL"
                                case $t in
                                udp-*) vals[${t//-/_}_loss]+=" $R_LOSS" ;;
                                tcp1-*)
                                        cpu_tcp1=$(awk -v a="$cpu_tcp1" -v b="$R_CPU" 'BEGIN { print a + b }')
                                        gbit_tcp1=$(awk -v a="$gbit_tcp1" -v b="$R_BYTES" 'BEGIN { print a + b * 8 / 1e9 }')
                                        ;;
                                esac
                        else
                                errs+="$t run $run: $R_ERR; "
                                STATUS[$KIND]=partial
                        fi
                        [ -n "$R_PING_LOAD" ] && vals[ping_load]+=" $R_PING_LOAD"
                        log "$KIND run $run $t: ${R_GBPS:-failed} Gbit/s${R_LOSS:+, loss $R_LOSS%}, tunnel CPU ${R_CPU:--} s, steal ${R_STEAL:--}%"
                done
                if [ "$KIND" != veth ] && awk -v g="$gbit_tcp1" 'BEGIN { exit !(g > 0) }'; then
                        vals[cpu_per_gbit]+=" $(awk -v c="$cpu_tcp1" -v g="$gbit_tcp1" 'BEGIN { printf "%.4f", c / g }')"
                fi
        done
        local q
        for q in "${QUANTITIES[@]}"; do
                # shellcheck disable=SC2086
                RES[$KIND,$q]=$(stats ${vals[$q]:-})
        done
        [ -n "$errs" ] && NOTES[$KIND]+="; errors: $errs"
        down_kind
}

# ------------------------------------------------------------------------------------------------
# Memory: what an idle, connected client costs the server.

MEM_CLIENTS=1000
declare -A MEM

vm_kib() { # vm_kib PID FIELD: VmRSS or VmSize in KiB
        awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status 2>/dev/null
}

bench_memory() {
        KIND=memory
        local loader=$BUILD/bench/loadclients pid lpid n=$MEM_CLIENTS hold=$((DUR + 4))
        log "memory: $n idle clients (GET + PUT each) against one server"
        if [ ! -x "$loader" ]; then
                STATUS[memory]="not measured: $loader not built (subdir('bench') in the top meson.build)"
                return
        fi
        "$loader" config "$n" 8090 >"$WORK/memory-srv.json"
        # 2 descriptors per client; the daemon keeps the limit it is given.
        bg "$WORK/memory-srv.log" bash -c 'ulimit -n 16384 && exec "$@"' - env TAPOTUN_PLUGIN_PATH="$PLUGIN_PATH" \
                ip netns exec "$NS_S" "$TAPOTUND" "$WORK/memory-srv.json"
        pid=$LAST_PID
        if ! wait_for 20 has_addr "$NS_S" 10.0.0.1; then
                STATUS[memory]="not measured: the server with $n clients did not come up: $(tail -n 2 "$WORK/memory-srv.log" | tr '\n' ' ')"
                down_kind
                return
        fi
        sleep 1
        MEM[rss0]=$(vm_kib "$pid" VmRSS)
        MEM[size0]=$(vm_kib "$pid" VmSize)
        bg "$WORK/memory-load.log" ip netns exec "$NS_C" "$loader" hold "$n" "$UL_S" 8090 "$hold"
        lpid=$LAST_PID
        if ! wait_for 130 grep -q '^ready' "$WORK/memory-load.log"; then
                STATUS[memory]="not measured: $(tail -n 2 "$WORK/memory-load.log" | tr '\n' ' ')"
                down_kind
                return
        fi
        sleep 2
        MEM[rss1]=$(vm_kib "$pid" VmRSS)
        MEM[size1]=$(vm_kib "$pid" VmSize)
        MEM[conns]=$(ip netns exec "$NS_S" ss -Htn state established "sport = :8090" | wc -l)
        wait "$lpid" 2>/dev/null
        STATUS[memory]=ok
        NOTES[memory]="$(head -n 1 "$WORK/memory-load.log"); ${MEM[conns]} connections established at the server"
        down_kind
}

memory_report() {
        [ -n "${STATUS[memory]:-}" ] || return 0
        if [ "${STATUS[memory]}" != ok ]; then
                echo "memory: ${STATUS[memory]}"
                printf 'clients\tstatus\n%s\t%s\n' "$MEM_CLIENTS" "${STATUS[memory]}" >"$OUT/memory.tsv"
                return 0
        fi
        printf 'clients\trss_before_kib\trss_after_kib\trss_per_client_kib\tvmsize_before_kib\tvmsize_after_kib\tconnections\n%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
                "$MEM_CLIENTS" "${MEM[rss0]}" "${MEM[rss1]}" \
                "$(awk -v a="${MEM[rss0]}" -v b="${MEM[rss1]}" -v n="$MEM_CLIENTS" 'BEGIN { printf "%.1f", (b - a) / n }')" \
                "${MEM[size0]}" "${MEM[size1]}" "${MEM[conns]}" >"$OUT/memory.tsv"
        awk -F'\t' 'NR == 2 { printf "memory: server with %d configured clients: VmRSS %.1f MiB idle, %.1f MiB with all %d connected (GET + PUT, %d TCP connections): %.1f KiB per client; VmSize %.0f -> %.0f MiB\n",
                              $1, $2 / 1024, $3 / 1024, $1, $7, $4, $5 / 1024, $6 / 1024 }' "$OUT/memory.tsv"
}

# ------------------------------------------------------------------------------------------------
# Report

med() { # med KIND QUANTITY
        local v=${RES[$1,$2]:-- - -}
        echo "${v%% *}"
}

# cell KIND QUANTITY: "median ~spread%" where spread is (max - min) / median; "median (min-max)" for a loss.
cell() {
        local q=$2 v=${RES[$1,$2]:-- - -}
        # shellcheck disable=SC2086
        set -- $v
        [ "$1" = - ] && { echo -; return; }
        if [ "$RUNS" -gt 1 ] && { [ "${q%_loss}" != "$q" ] || [ "$q" = steal ]; }; then
                # Loss and steal are often near zero: their spread as a share of the median says nothing.
                awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { printf "%.2f (%.2f-%.2f)", m, lo, hi }'
        elif [ "$RUNS" -gt 1 ]; then
                awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { if (m > 0) printf "%.2f ~%.0f%%", m, (hi - lo) / m * 100; else printf "%.2f", m }'
        else
                awk -v m="$1" 'BEGIN { printf "%.2f", m }'
        fi
}

ratio() { # ratio A B: A / B with 2 decimals, "-" when either is missing
        awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

report() {
        local k q t
        {
                printf 'kind\tstatus\tmtu'
                for q in "${QUANTITIES[@]}"; do printf '\t%s\t%s_min\t%s_max' "$q" "$q" "$q"; done
                printf '\ttcp1_fwd_x_veth\ttcp1_rev_x_veth\tnote\n'
                for k in $KINDS; do
                        [ "$k" = memory ] && continue
                        printf '%s\t%s\t%s' "$k" "${STATUS[$k]}" "${MTUS[$k]:--}"
                        for q in "${QUANTITIES[@]}"; do
                                t=${RES[$k,$q]:-- - -}
                                printf '\t%s' ${t// /$'\t'}
                        done
                        printf '\t%s\t%s\t%s\n' "$(ratio "$(med "$k" tcp1_fwd)" "$(med veth tcp1_fwd)")" \
                                "$(ratio "$(med "$k" tcp1_rev)" "$(med veth tcp1_rev)")" "${NOTES[$k]:-}"
                done
        } >"$OUT/results.tsv"

        # Ratios of every tunnel against every other: tcp1 fwd, tcp1 rev (higher is better), CPU s/Gbit
        # (lower is better).
        {
                printf 'kind\tversus\ttcp1_fwd_ratio\ttcp1_rev_ratio\ttcp8_fwd_ratio\ttcp8_rev_ratio\tcpu_per_gbit_ratio\n'
                for k in $KINDS; do
                        [ "${STATUS[$k]}" = ok ] || [ "${STATUS[$k]}" = partial ] || continue
                        [ "$k" = memory ] && continue
                        for t in $KINDS; do
                                [ "$t" = "$k" ] || [ "$t" = memory ] && continue
                                [ "${STATUS[$t]}" = ok ] || [ "${STATUS[$t]}" = partial ] || continue
                                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$t" \
                                        "$(ratio "$(med "$k" tcp1_fwd)" "$(med "$t" tcp1_fwd)")" \
                                        "$(ratio "$(med "$k" tcp1_rev)" "$(med "$t" tcp1_rev)")" \
                                        "$(ratio "$(med "$k" tcp8_fwd)" "$(med "$t" tcp8_fwd)")" \
                                        "$(ratio "$(med "$k" tcp8_rev)" "$(med "$t" tcp8_rev)")" \
                                        "$(ratio "$(med "$k" cpu_per_gbit)" "$(med "$t" cpu_per_gbit)")"
                        done
                done
        } >"$OUT/ratios.tsv"

        {
                echo "# $META"
                echo "# Gbit/s (iperf3 received); median of $RUNS run(s) of ${DUR} s$([ "$RUNS" -gt 1 ] && echo ", ~N%: spread, (max-min)/median")."
                echo "# udp: -b $UDP_RATE -l $UDP_LEN -w 4M, received Gbit/s and loss % (median, min-max). ping: RTT ms, median of 100 idle, 99th percentile of the pings during tcp1-fwd."
                echo "# cpu/Gbit: utime+stime of the tunnel's processes (both ends) per Gbit moved in tcp1 fwd + rev."
                echo "# steal: % of the CPUs' time the hypervisor gave to others during the kind's iperf3 tests (median); where it is high, that kind's figures are low and spread."
                echo
                {
                        printf 'kind\ttcp1 fwd\ttcp1 rev\ttcp8 fwd\ttcp8 rev\tudp fwd\tloss%%\tudp rev\tloss%%\tping idle\tping p99 load\tcpu s/Gbit\tsteal %%\tx veth fwd/rev\n'
                        for k in $KINDS; do
                                [ "$k" = memory ] && continue
                                if [ "${STATUS[$k]}" != ok ] && [ "${STATUS[$k]}" != partial ]; then
                                        printf '%s\t%s\n' "$k" "${STATUS[$k]}"
                                        continue
                                fi
                                printf '%s' "$k"
                                for q in tcp1_fwd tcp1_rev tcp8_fwd tcp8_rev udp_fwd udp_fwd_loss udp_rev udp_rev_loss \
                                         ping_idle ping_load cpu_per_gbit steal; do
                                        printf '\t%s' "$(cell "$k" $q)"
                                done
                                printf '\t%s/%s\n' "$(ratio "$(med "$k" tcp1_fwd)" "$(med veth tcp1_fwd)")" \
                                        "$(ratio "$(med "$k" tcp1_rev)" "$(med veth tcp1_rev)")"
                        done
                } | column -t -s $'\t'
                echo
                echo "ratios (tcp1 fwd / tcp1 rev throughput, and cpu s/Gbit) of each tunnel against the others:"
                {
                        printf 'kind\tversus\ttcp1 fwd\ttcp1 rev\ttcp8 fwd\ttcp8 rev\tcpu/Gbit\n'
                        tail -n +2 "$OUT/ratios.tsv" | grep -E '^(tapotun|relay)'
                } | column -t -s $'\t'
                echo
                memory_report
                echo
                echo "notes:"
                for k in $KINDS; do
                        printf '  %-23s %s\n' "$k" "${NOTES[$k]:-${STATUS[$k]}}"
                done
                echo
                echo "results: $OUT/results.tsv  ratios: $OUT/ratios.tsv  logs: $OUT/logs/"
        } | tee "$OUT/table.txt"
}

# ------------------------------------------------------------------------------------------------

install_packages
META="bench/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs '$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)' kernel $(uname -r); build $BUILD; load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
log "$META"
JIFFIES0=$(cpu_jiffies)
setup_underlay || die "could not create the namespaces and the veth underlay"
make_pki || log "certificate generation failed (logs/pki.log): nginx, OpenVPN and ocserv are not measured"
for k in $KINDS; do
        if [ "$k" = memory ]; then
                bench_memory
        else
                bench_kind "$k"
        fi
done
META+=", at end $(cut -d' ' -f1-3 /proc/loadavg); steal over the run $(steal_pct "$JIFFIES0" "$(cpu_jiffies)")%"
report
