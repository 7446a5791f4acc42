#!/bin/bash
# The README's corp0 example with its two sites, in four fresh namespaces: the server, client A
# (site-a) with a LAN host behind it, and client B (site-b). Checks what the README says of it: the
# networks behind each client are reached through the tunnel, a pinned source goes to A, A reaches B
# through the server, spoofed sources are dropped and counted, the fwmark rule and table steer marked
# traffic into the TUN, and an unknown destination gets ICMP unreachable; then the same over IPv6.
source "$(dirname "$0")/lib.sh"
e2e_require_root
trap e2e_cleanup EXIT
WIRE="python3 $(dirname "$0")/wire.py"
NS_A=$NS_CLI
NS_B=$NS_CLI2
NS_LAN="tt-lan-$E2E_ID"
TOKEN_A=$(printf %s site-a-secret | sha1sum | cut -d' ' -f1)
TOKEN_B=$(printf %s site-b-secret | sha1sum | cut -d' ' -f1)

setup() {
        e2e_netns "$NS_SRV" "$NS_A" "$NS_B" "$NS_LAN" || return 1
        e2e_link "$NS_SRV" "$SRV_UNDERLAY" "$NS_A" "$CLI_UNDERLAY" || return 1
        # B on its own underlay subnet.
        ip -n "$NS_SRV" link add to-b type veth peer name to-srv netns "$NS_B" &&
                ip -n "$NS_SRV" addr add 198.51.100.1/24 dev to-b && ip -n "$NS_SRV" link set to-b up &&
                ip -n "$NS_B" addr add 198.51.100.2/24 dev to-srv && ip -n "$NS_B" link set to-srv up || return 1
        # The pinned host 192.168.100.10, on the server itself (addresses on lo: no dummy module needed).
        ip -n "$NS_SRV" addr add 192.168.100.10/32 dev lo || return 1
        # A LAN host behind A, A forwarding for it.
        ip -n "$NS_A" link add lan0 type veth peer name eth0 netns "$NS_LAN" &&
                ip -n "$NS_A" addr add 10.60.0.1/24 dev lan0 && ip -n "$NS_A" addr add fd00:60::1/64 dev lan0 nodad &&
                ip -n "$NS_A" link set lan0 up &&
                ip -n "$NS_LAN" addr add 10.60.0.10/24 dev eth0 && ip -n "$NS_LAN" addr add fd00:60::10/64 dev eth0 nodad &&
                ip -n "$NS_LAN" link set eth0 up &&
                ip -n "$NS_LAN" route add default via 10.60.0.1 &&
                ip -n "$NS_LAN" -6 route add default via fd00:60::1 || return 1
        ip netns exec "$NS_A" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
        # B's side: a network on B itself; A's exit address for the pinned host.
        ip -n "$NS_B" addr add 10.70.0.1/32 dev lo && ip -n "$NS_B" addr add fd00:70::1/128 dev lo || return 1
        ip -n "$NS_A" addr add 203.0.113.50/32 dev lo || return 1
        # A source address A does not own, to spoof with.
        ip -n "$NS_A" addr add 10.66.0.1/32 dev lo
}

setup || { echo "Bail out! cannot create the topology"; exit 1; }

cat >"$E2E_TMP/corp0.json" <<JSON
[
  {
    "name": "corp0",
    "port": 8080,
    "listen": "0.0.0.0",
    "net": ["10.10.0.1/24", "fd00:10::1/64"],
    "mtu": 1400,
    "ips": ["10.10.0.254/24"],
    "mark": { "value": 100, "table": 100 },
    "routes": ["192.168.100.0/24"],
    "push_client_routes": true,
    "clients": [
      { "name": "site-a", "token": "$TOKEN_A", "ip": ["10.10.0.2", "fd00:10::2"],
        "routes": ["10.60.0.0/24", "fd00:60::/64"], "sources": ["192.168.100.10"] },
      { "name": "site-b", "token": "$TOKEN_B", "ip": ["10.10.0.3", "fd00:10::3"],
        "routes": ["10.70.0.0/24", "fd00:70::/64"] }
    ]
  }
]
JSON
e2e_client_config "$E2E_TMP/a.json" site-a-secret
e2e_client_config "$E2E_TMP/b.json" site-b-secret "http://198.51.100.1:8080/"

e2e_start "$NS_SRV" server "$E2E_TMP/corp0.json"
check "server corp0 is up" wait_for 10 tun_has_addr "$NS_SRV" corp0 10.10.0.1
e2e_start "$NS_A" site-a "$E2E_TMP/a.json"
e2e_start "$NS_B" site-b "$E2E_TMP/b.json"
check "site-a gets 10.10.0.2" wait_for 15 tun_has_addr "$NS_A" tun0 10.10.0.2
check "site-b gets 10.10.0.3" wait_for 15 tun_has_addr "$NS_B" tun0 10.10.0.3
check "site-a gets fd00:10::2 from x-tun-conf6" wait_for 5 tun_has_addr "$NS_A" tun0 fd00:10::2
check "clients get MTU 1400" bash -c "ip -n $NS_A -j link show tun0 | grep -q '\"mtu\":1400'"
check "server has its extra address 10.10.0.254" tun_has_addr "$NS_SRV" corp0 10.10.0.254
check "fwmark 100 rule points at table 100" bash -c "ip -n $NS_SRV -j rule show | grep -q '\"fwmark\":\"0x64\",\"table\":\"100\"'"
check "table 100 sends everything into corp0" bash -c "ip -n $NS_SRV -j route show table 100 | grep -q '\"dst\":\"default\",\"dev\":\"corp0\"'"
check "site-a has B's network pushed (x-tun-routes)" bash -c "ip -n $NS_A -j route show | grep -q '\"dst\":\"10.70.0.0/24\",\"dev\":\"tun0\"'"

check "server reaches the LAN host behind A (10.60.0.0/24)" ip netns exec "$NS_SRV" ping -c 2 -i 0.2 -W 2 10.60.0.10
check "server reaches B's side (10.70.0.0/24)" ip netns exec "$NS_SRV" ping -c 2 -i 0.2 -W 2 10.70.0.1
check "A reaches B through the server" ip netns exec "$NS_A" ping -c 2 -i 0.2 -W 2 10.10.0.3
check "A's LAN host reaches B's network through both tunnels" ip netns exec "$NS_LAN" ping -c 2 -i 0.2 -W 2 10.70.0.1

# A packet from the pinned host 192.168.100.10 to a destination no client owns goes to A. It is
# marked so the server host routes it into the TUN at all.
ip netns exec "$NS_A" $WIRE udp-listen 203.0.113.50 9999 "$E2E_TMP/pinned.out" 6 &
LISTEN=$!
sleep 0.5
ip netns exec "$NS_SRV" $WIRE udp-send 192.168.100.10 203.0.113.50 9999 pinned-to-a 100
wait $LISTEN
check "a packet from pinned 192.168.100.10 reaches A" grep -q pinned-to-a "$E2E_TMP/pinned.out"

# Spoofing: A sends from an address it does not own; the server drops it and says so.
ip netns exec "$NS_SRV" $WIRE udp-listen 10.10.0.1 9998 "$E2E_TMP/spoof.out" 3 &
LISTEN=$!
sleep 0.5
ip netns exec "$NS_A" $WIRE udp-send 10.66.0.1 10.10.0.1 9998 spoofed
ip netns exec "$NS_A" $WIRE udp-send 10.10.0.2 10.10.0.1 9998 genuine
wait $LISTEN
check "a spoofed source from A is dropped" bash -c "! grep -q spoofed $E2E_TMP/spoof.out"
check "while A's own address passes" grep -q genuine "$E2E_TMP/spoof.out"
check "the drop is counted and logged" grep -q "site-a: Dropped 1 packet(s) whose source address does not belong" "$E2E_TMP/server.log"

# Marked traffic goes into the TUN; the router answers an unknown destination with ICMP unreachable.
ip netns exec "$NS_SRV" ping -c 1 -W 2 203.0.113.77 >"$E2E_TMP/unmarked.out" 2>&1
check "unmarked traffic to 203.0.113.77 has no route on the server" grep -qi "unreachable" "$E2E_TMP/unmarked.out"
ip netns exec "$NS_SRV" ping -c 1 -W 2 -m 100 203.0.113.77 >"$E2E_TMP/marked.out" 2>&1
diag "$(grep -i unreachable "$E2E_TMP/marked.out")"
check "marked traffic enters corp0 and gets ICMP host unreachable from 10.10.0.1" \
        grep -q "From 10.10.0.1 icmp_seq=1 Destination Host Unreachable" "$E2E_TMP/marked.out"

# The server sends to A and to B at once: its TUN hands out packets for both in turn, each read into the
# queue of the client the previous one went to (iface.c), so half of them land in the wrong one and are
# copied to the right one.
ip netns exec "$NS_A" timeout 120 $WIRE blast-recv 10.10.0.2 5003 >"$E2E_TMP/to-a.out" &
RECV_A=$!
ip netns exec "$NS_B" timeout 120 $WIRE blast-recv 10.10.0.3 5003 >"$E2E_TMP/to-b.out" &
RECV_B=$!
wait_for 5 bash -c "ip netns exec $NS_A ss -ltn | grep -q ':5003'" &&
        wait_for 5 bash -c "ip netns exec $NS_B ss -ltn | grep -q ':5003'"
ip netns exec "$NS_SRV" timeout 120 $WIRE blast-send 10.10.0.2 5003 $((32 << 20)) >"$E2E_TMP/sent-a.out" &
SEND_A=$!
ip netns exec "$NS_SRV" timeout 120 $WIRE blast-send 10.10.0.3 5003 $((32 << 20)) >"$E2E_TMP/sent-b.out"
wait $SEND_A $RECV_A $RECV_B
diag "to A: sent $(cat "$E2E_TMP/sent-a.out"), received $(cat "$E2E_TMP/to-a.out")"
check "32 MiB server -> A during 32 MiB server -> B arrives intact" \
        bash -c "test -s $E2E_TMP/sent-a.out && cmp -s $E2E_TMP/sent-a.out $E2E_TMP/to-a.out"
check "and the 32 MiB to B as well" bash -c "test -s $E2E_TMP/sent-b.out && cmp -s $E2E_TMP/sent-b.out $E2E_TMP/to-b.out"

# IPv6 over the same tunnels.
check "ping -6 server -> A" ip netns exec "$NS_SRV" ping -6 -c 2 -i 0.2 -W 2 fd00:10::2
check "ping -6 A -> server" ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 2 fd00:10::1
check "ping -6 A -> B through the server" ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 2 fd00:10::3
check "ping -6 server -> the LAN host behind A (fd00:60::/64)" ip netns exec "$NS_SRV" ping -6 -c 2 -i 0.2 -W 2 fd00:60::10
check "ping -6 server -> B's side (fd00:70::/64)" ip netns exec "$NS_SRV" ping -6 -c 2 -i 0.2 -W 2 fd00:70::1
ip netns exec "$NS_SRV" ping -6 -c 1 -W 2 -m 100 2001:db8::77 >"$E2E_TMP/marked6.out" 2>&1
diag "$(grep -i unreachable "$E2E_TMP/marked6.out")"
check "marked IPv6 to an unknown destination gets ICMPv6 unreachable" grep -qi "unreachable" "$E2E_TMP/marked6.out"

e2e_finish
