#!/bin/bash
# Offloads in every combination, in fresh namespaces: a server whose TUN takes everything (TSO, USO,
# checksum offload) and two clients whose TUNs take less, set with `offloads`: A accepts nothing, B only
# "csum". The server must segment its TCP and UDP super-packets (IPv4 and IPv6) for them and complete the
# checksums A cannot: 64 MiB TCP transfers both ways arrive intact, UDP datagrams sent with UDP GSO arrive
# one by one with their content, and no namespace counts a checksum error. A client TUN that lacks TSO
# must only ever be handed MTU-sized packets, and the server joins the clients' segments again (GRO).
source "$(dirname "$0")/lib.sh"
e2e_require_root
trap e2e_cleanup EXIT
NS_A=$NS_CLI
NS_B=$NS_CLI2
TOKEN_A=$(printf %s offloads-a | sha1sum | cut -d' ' -f1)
TOKEN_B=$(printf %s offloads-b | sha1sum | cut -d' ' -f1)

setup() {
        e2e_netns "$NS_SRV" "$NS_A" "$NS_B" || return 1
        e2e_link "$NS_SRV" "$SRV_UNDERLAY" "$NS_A" "$CLI_UNDERLAY" || return 1
        ip -n "$NS_SRV" link add to-b type veth peer name to-srv netns "$NS_B" &&
                ip -n "$NS_SRV" addr add 198.51.100.1/24 dev to-b && ip -n "$NS_SRV" link set to-b up &&
                ip -n "$NS_B" addr add 198.51.100.2/24 dev to-srv && ip -n "$NS_B" link set to-srv up
}
setup || { echo "Bail out! cannot create the topology"; exit 1; }

cat >"$E2E_TMP/server.json" <<JSON
[{"name": "tun0", "port": 8080, "listen": "0.0.0.0", "net": ["10.10.0.1/24", "fd00:10::1/64"],
  "clients": [{"name": "a", "token": "$TOKEN_A", "ip": ["10.10.0.2", "fd00:10::2"]},
              {"name": "b", "token": "$TOKEN_B", "ip": ["10.10.0.3", "fd00:10::3"]}]}]
JSON
cat >"$E2E_TMP/a.json" <<JSON
[{"name": "tun0", "server": "http://$SRV_UNDERLAY:8080/", "token": "offloads-a", "offloads": []}]
JSON
cat >"$E2E_TMP/b.json" <<JSON
[{"name": "tun0", "server": "http://198.51.100.1:8080/", "token": "offloads-b", "offloads": ["csum"]}]
JSON

if ! "$TAPOTUNCTL" validate "$E2E_TMP/a.json" >"$E2E_TMP/validate.out" 2>&1; then
        if grep -q 'unknown field "offloads"' "$E2E_TMP/validate.out"; then
                echo "1..0 # SKIP this build's configuration parser does not know \"offloads\" yet (daemon/conf.c)"
                echo "SKIPPED: $0: the configuration parser does not know \"offloads\" yet" >&2
                exit 0
        fi
        not_ok "a client configuration with \"offloads\" validates"
        sed 's/^/# /' "$E2E_TMP/validate.out"
        e2e_finish
        exit 1
fi

# The helpers: TCP transfers (IPv4 and IPv6), and UDP sent as GSO super-datagrams.
cat >"$E2E_TMP/off.py" <<'PY'
import hashlib, os, socket, sys, time

def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET

def tcp_recv(addr, port):
    srv = socket.socket(family(addr), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, int(port)))
    srv.listen(1)
    c, _ = srv.accept()
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    print(n, h.hexdigest())

def tcp_send(addr, port, nbytes):
    s = socket.create_connection((addr, int(port)))
    h, sent = hashlib.sha256(), 0
    while sent < int(nbytes):
        b = os.urandom(min(1 << 20, int(nbytes) - sent))
        h.update(b)
        s.sendall(b)
        sent += len(b)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print(sent, h.hexdigest())

def payload(seq, size):
    return bytes((seq * 31 + i) & 0xff for i in range(size))

# Datagrams of SEG bytes, COUNT of them, sent SEG*PER at a time as one UDP GSO super-datagram.
def udp_send(dst, port, count, seg, per):
    s = socket.socket(family(dst), socket.SOCK_DGRAM)
    s.setsockopt(17, 103, int(seg))  # SOL_UDP, UDP_SEGMENT
    count, seg, per = int(count), int(seg), int(per)
    for first in range(0, count, per):
        s.sendto(b"".join(payload(k, seg) for k in range(first, min(first + per, count))), (dst, int(port)))
        time.sleep(0.01)

# Prints how many datagrams arrived intact (content matches their sequence number).
def udp_recv(addr, port, count, seg, seconds):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, int(port)))
    print("ready", flush=True)
    seen, end = set(), time.time() + float(seconds)
    while len(seen) < int(count) and time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            b = s.recv(65535)
        except socket.timeout:
            continue
        seq = next((k for k in range(int(count)) if payload(k, 4) == b[:4]), None)
        if seq is not None and len(b) == int(seg) and b == payload(seq, int(seg)):
            seen.add(seq)
    print(len(seen), flush=True)

globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
OFF="python3 $E2E_TMP/off.py"

e2e_start "$NS_SRV" server "$E2E_TMP/server.json"
check "server creates tun0" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
e2e_start "$NS_A" client-a "$E2E_TMP/a.json"
e2e_start "$NS_B" client-b "$E2E_TMP/b.json"
check "client A (offloads []) is configured" wait_for 15 tun_has_addr "$NS_A" tun0 10.10.0.2
check "client B (offloads [\"csum\"]) is configured" wait_for 15 tun_has_addr "$NS_B" tun0 10.10.0.3
wait_for 10 ip netns exec "$NS_A" ping -c 1 -W 1 fd00:10::1
wait_for 10 ip netns exec "$NS_B" ping -c 1 -W 1 fd00:10::1

if command -v ethtool >/dev/null; then
        feature() { # feature NS NAME: on or off
                ip netns exec "$1" ethtool -k tun0 | awk -v f="$2:" '$1 == f { print $2 }'
        }
        check "server TUN has TSO and USO" test "$(feature "$NS_SRV" tcp-segmentation-offload)" = on -a \
                "$(feature "$NS_SRV" tx-udp-segmentation)" = on
        check "client A's TUN has neither TSO nor checksum offload" \
                test "$(feature "$NS_A" tcp-segmentation-offload)" = off -a "$(feature "$NS_A" tx-checksumming)" = off
        check "client B's TUN has checksum offload but no TSO" \
                test "$(feature "$NS_B" tcp-segmentation-offload)" = off -a "$(feature "$NS_B" tx-checksumming)" = on
else
        diag "ethtool not installed: the TUN features are not checked directly"
fi

# transfer NAME FROM_NS TO_NS ADDR PORT BYTES: random bytes over TCP, sha256 compared on both ends.
transfer() {
        local name=$1 from=$2 to=$3 addr=$4 port=$5 bytes=$6 recv sent
        ip netns exec "$to" timeout 120 $OFF tcp-recv "$addr" "$port" >"$E2E_TMP/$port.out" &
        recv=$!
        wait_for 5 bash -c "ip netns exec $to ss -Hltn 'sport = :$port' | grep -q ."
        sent=$(ip netns exec "$from" timeout 120 $OFF tcp-send "$addr" "$port" "$bytes")
        wait $recv
        diag "$name: sent $sent, received $(cat "$E2E_TMP/$port.out")"
        check "$name arrives intact (sha256)" test -n "$sent" -a "$sent" = "$(cat "$E2E_TMP/$port.out")"
}

transfer "64 MiB TCP server -> A (IPv4)" "$NS_SRV" "$NS_A" 10.10.0.2 5001 $((64 << 20))
transfer "64 MiB TCP A -> server (IPv4)" "$NS_A" "$NS_SRV" 10.10.0.1 5002 $((64 << 20))
transfer "64 MiB TCP server -> B (IPv4)" "$NS_SRV" "$NS_B" 10.10.0.3 5003 $((64 << 20))
transfer "64 MiB TCP B -> server (IPv4)" "$NS_B" "$NS_SRV" 10.10.0.1 5004 $((64 << 20))
transfer "16 MiB TCP server -> A (IPv6)" "$NS_SRV" "$NS_A" fd00:10::2 5005 $((16 << 20))
transfer "16 MiB TCP server -> B (IPv6)" "$NS_SRV" "$NS_B" fd00:10::3 5006 $((16 << 20))
# B's TUN leaves checksums to the receiver; A's cannot complete them: the server does, between clients.
transfer "16 MiB TCP B -> A through the server" "$NS_B" "$NS_A" 10.10.0.2 5007 $((16 << 20))

# udp NAME FROM_NS TO_NS ADDR PORT: 200 datagrams of 1000 bytes, sent 8 per GSO super-datagram.
udp() {
        local name=$1 from=$2 to=$3 addr=$4 port=$5 n
        ip netns exec "$to" timeout 30 $OFF udp-recv "$addr" "$port" 200 1000 10 >"$E2E_TMP/udp-$port.out" &
        local recv=$!
        wait_for 5 grep -q ready "$E2E_TMP/udp-$port.out"
        ip netns exec "$from" $OFF udp-send "$addr" "$port" 200 1000 8
        wait $recv
        n=$(tail -n 1 "$E2E_TMP/udp-$port.out")
        diag "$name: $n of 200 datagrams intact"
        check "$name: the datagrams arrive one by one, intact" test "${n:-0}" -ge 190
}

udp "UDP GSO server -> A (IPv4)" "$NS_SRV" "$NS_A" 10.10.0.2 6001
udp "UDP GSO server -> A (IPv6)" "$NS_SRV" "$NS_A" fd00:10::2 6002
udp "UDP GSO server -> B (IPv4)" "$NS_SRV" "$NS_B" 10.10.0.3 6003
udp "UDP GSO server -> B (IPv6)" "$NS_SRV" "$NS_B" fd00:10::3 6004
udp "UDP GSO A -> server" "$NS_A" "$NS_SRV" 10.10.0.1 6005
udp "UDP GSO B -> server (IPv6)" "$NS_B" "$NS_SRV" fd00:10::1 6006

# Packets the daemons wrote into a TUN without TSO: each at most the MTU, so the server segmented.
avg_rx() { # avg_rx NS: bytes per packet written into NS's tun0
        ip netns exec "$1" sh -c 'echo $(( $(cat /sys/class/net/tun0/statistics/rx_bytes) /
                                          $(cat /sys/class/net/tun0/statistics/rx_packets) ))'
}
diag "average packet written into A's TUN: $(avg_rx "$NS_A") bytes, B's: $(avg_rx "$NS_B") bytes"
check "A's TUN was handed no super-packet" test "$(avg_rx "$NS_A")" -le 1500
check "B's TUN was handed no super-packet" test "$(avg_rx "$NS_B")" -le 1500
# The other way the server joins A's and B's MTU-sized segments again (GRO) for its own TUN, which has TSO.
check "the server's TUN was handed joined super-packets (GRO)" test "$(avg_rx "$NS_SRV")" -gt 3000

# csum_errors NS: TCP and UDP checksum errors counted in NS (Tcp/Udp/Udp6 InCsumErrors).
csum_errors() {
        ip netns exec "$1" awk '
                /^(Tcp|Udp):/ { if (!($1 in h)) { for (i = 2; i <= NF; i++) col[$1, $i] = i; h[$1] = 1; next }
                                n += $(col[$1, "InCsumErrors"]) }
                $1 == "Udp6InCsumErrors" { n += $2 }
                END { print n + 0 }' /proc/net/snmp /proc/net/snmp6
}
check "no checksum errors on the server" test "$(csum_errors "$NS_SRV")" = 0
check "no checksum errors on A" test "$(csum_errors "$NS_A")" = 0
check "no checksum errors on B" test "$(csum_errors "$NS_B")" = 0

e2e_finish
