#!/bin/bash
# Hostile peers against a real server, while a well-behaved client (alice, a tapotund client) keeps
# pinging through its tunnel: slowloris heads, huge and endless headers, a PUT that stops inside a frame,
# a GET that never reads under a flood of traffic for it, 1,000 attempts with wrong keys, garbage frames,
# packets spoofing alice's address, absurd x-tun-offload values. The misbehaving client (mallory, a
# configured client with its own token) and the anonymous attackers come from a third namespace.
# Every case checks what the attacker gets, what the server logs or counts, that the server's memory
# and file descriptors stay bounded, and that alice is not affected.
source "$(dirname "$0")/lib.sh"
e2e_require_root
HOSTILE="python3 $(dirname "$0")/hostile.py"
WIRE="python3 $(dirname "$0")/wire.py"
NS_BAD=$NS_CLI2
SRV=$SRV_UNDERLAY
SRV_B=198.51.100.1
MALLORY_KEY=mallory-secret
MALLORY_SHA1=$(printf %s "$MALLORY_KEY" | sha1sum | cut -d' ' -f1)

cleanup() {
        [ -n "${HOSTILE_KEEP:-}" ] && cp -r "$E2E_TMP" "$HOSTILE_KEEP"
        e2e_cleanup
}
trap cleanup EXIT

setup() {
        e2e_topology || return 1
        e2e_netns "$NS_BAD" || return 1
        ip -n "$NS_SRV" link add to-bad type veth peer name to-srv netns "$NS_BAD" &&
                ip -n "$NS_SRV" addr add $SRV_B/24 dev to-bad && ip -n "$NS_SRV" link set to-bad up &&
                ip -n "$NS_BAD" addr add 198.51.100.2/24 dev to-srv && ip -n "$NS_BAD" link set to-srv up
}
setup || { echo "Bail out! cannot create namespaces"; exit 1; }

# A private bus, when there is a dbus-daemon, to read the drop counters.
BUS=
e2e_private_bus && BUS=$E2E_BUS

cat >"$E2E_TMP/server.json" <<JSON
[
  {
    "name": "tun0",
    "port": 8080,
    "listen": "0.0.0.0",
    "net": "10.10.0.1/24",
    "peer_timeout": 10,
    "max_connections": 24,
    "queue_bytes": 1048576,
    "clients": [
      { "name": "alice", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" },
      { "name": "mallory", "token": "$MALLORY_SHA1", "ip": "10.10.0.3" }
    ]
  }
]
JSON
# Alice's keepalives (every 3 s) keep her idle PUT within the server's peer_timeout (10 s).
cat >"$E2E_TMP/alice.json" <<JSON
[ { "name": "tun0", "server": "http://$SRV:8080/", "token": "test", "keepalive": 3 } ]
JSON

# A small ASan quarantine, so that the memory checks below measure the server and not the sanitizer;
# what it still keeps of freed memory gets some room (LeakSanitizer checks for leaks at exit).
RSS_SLACK=4096
case ${TAPOTUN_SANITIZE:-none} in none | '') ;; *) RSS_SLACK=8192 ;; esac
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" \
        e2e_start "$NS_SRV" server "$E2E_TMP/server.json" -d ${BUS:+--bus-address=$BUS}
SRV_PID=$E2E_LAST_PID
check "server is up" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
e2e_start "$NS_CLI" alice "$E2E_TMP/alice.json"
check "alice gets 10.10.0.2" wait_for 30 tun_has_addr "$NS_CLI" tun0 10.10.0.2

alice_ok() {
        ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 2 10.10.0.1
}
rss_kb() {
        awk '/^VmRSS:/ { print $2 }' "/proc/$SRV_PID/status"
}
fds() {
        ls "/proc/$SRV_PID/fd" | wc -l
}
# drops PEER REASON: a counter of the peer's drops, from the bus.
drops() {
        "$TAPOTUNCTL" --bus-address="$BUS" --json show server "tun0/$1" |
                python3 -c "import json, sys; print(json.load(sys.stdin)['drops'].get('$2', 0))"
}
check_bus() {
        if [ -n "$BUS" ]; then
                check "$@"
        else
                ok "$1 # SKIP no dbus-daemon to read the counters"
        fi
}
log_count() {
        grep -c -E "$1" "$E2E_TMP/server.log"
}

check "alice pings the server through the tunnel" alice_ok

# --- Slowloris, a PUT stopped inside a frame, and the authentication flood run side by side: each waits
# for a 10 s timer of the server.
ip netns exec "$NS_BAD" $HOSTILE slowloris $SRV_B 8080 3 30 >"$E2E_TMP/slowloris.out" &
SLOW=$!
ip netns exec "$NS_SRV" $WIRE udp-listen 10.10.0.1 9999 "$E2E_TMP/udp.out" 300 &
LISTEN=$!
sleep 0.5
ip netns exec "$NS_BAD" $HOSTILE put-stall $SRV_B 8080 $MALLORY_KEY 10.10.0.3 10.10.0.1 9999 40 \
        >"$E2E_TMP/stall.out" &
STALL=$!
sleep 1
rss0=$(rss_kb)
fds0=$(fds)
diag "server: RSS $rss0 KiB, $fds0 fds before the flood"

# 1,000 wrong keys, without keys, GET, PUT and HEAD.
flood=$(ip netns exec "$NS_BAD" $HOSTILE auth-flood $SRV_B 8080 1000)
diag "1000 attempts with wrong or no keys: $flood"
check "all 1000 attempts with wrong keys get 403" test "$flood" = "403:1000"
check "alice is not affected by the flood of wrong keys" alice_ok
rss1=$(rss_kb)
fds1=$(fds)
diag "server after the flood: RSS $rss1 KiB, $fds1 fds"
check "the flood leaves no file descriptor behind" test "$fds1" -le $((fds0 + 2))
check "the flood grows the server by less than $((RSS_SLACK / 1024)) MiB" \
        test $((rss1 - rss0)) -lt $RSS_SLACK
# At most 3 lines per 10 s, then one summary per address: normally all 1000 fall into one interval; on a
# slow machine they may spread over more, each with its 3 lines and its summary.
check "the failures are summed up: N failed attempts from 198.51.100.2 in the last 10 s" \
        wait_for 15 grep -q "failed authentication attempts from 198.51.100.2 in the last 10 s" \
        "$E2E_TMP/server.log"
single=$(log_count 'Rejected (GET|PUT|HEAD) from 198\.51\.100\.2:[0-9]+: (unknown|missing) x-api-key')
summaries=$(log_count "failed authentication attempts from 198.51.100.2 in the last 10 s")
summed=$(sed -n 's/.* \([0-9]*\) failed authentication attempts from 198.51.100.2 in the last 10 s/\1/p' \
        "$E2E_TMP/server.log" | awk '{ n += $1 } END { print n + 0 }')
diag "auth log: $single single lines, $summaries summaries adding up to $summed"
diag "$(grep -m 1 "failed authentication attempts" "$E2E_TMP/server.log")"
check "at most 3 single lines per summary interval" test "$single" -le $((3 * (summaries + 1)))
check "the summaries account for every attempt" \
        bash -c "[ $summed -le 1000 ] && [ $((summed + single)) -ge 1000 ]"

# The PUT that stopped inside a frame: its whole frame arrives, the half one is dropped with the PUT
# when peer_timeout (10 s) finds it silent; mallory's next PUT works.
check "a PUT that stops inside a frame is closed by the server, unanswered" \
        wait_for 40 grep -q "^closed [0-9.]* none" "$E2E_TMP/stall.out"
diag "stalled PUT: $(cat "$E2E_TMP/stall.out")"
check "the frame before the stall arrived" grep -q "^stall-whole" "$E2E_TMP/udp.out"
check "the half frame did not" bash -c "! grep -q stall-half $E2E_TMP/udp.out"
check "the server logs the timeout" \
        grep -q "mallory: Closing PUT from 198.51.100.2:[0-9]*: nothing received" "$E2E_TMP/server.log"
status=$(ip netns exec "$NS_BAD" $WIRE put $SRV_B 8080 $MALLORY_KEY 10.10.0.3 10.10.0.1 9999 2)
check "mallory's next PUT starts clean and ends with 200" test "${status:0:12}" = "HTTP/1.1 200"
check "and its frames arrive" wait_for 5 bash -c "[ \$(grep -c '^golden-' $E2E_TMP/udp.out) = 2 ]"

wait $SLOW
diag "slowloris (a byte a second): $(tr '\n' ';' <"$E2E_TMP/slowloris.out")"
check "slowloris heads are closed by the server" test "$(grep -c '^closed' "$E2E_TMP/slowloris.out")" = 3
check "after the head timeout (10 s), not at once" \
        bash -c "awk '\$2 < 5 { exit 1 }' $E2E_TMP/slowloris.out"
check "without an answer" bash -c "awk '\$3 != 0 { exit 1 }' $E2E_TMP/slowloris.out"
check "alice is not affected by slowloris or the stalled PUT" alice_ok

# --- Slowloris at max_connections (24): the oldest connection still sending its head makes room for
# each new one, so 40 of them never lock a client out.
ip netns exec "$NS_BAD" $HOSTILE slowloris $SRV_B 8080 40 6 >"$E2E_TMP/slowloris40.out" &
SLOW=$!
sleep 3
ip netns exec "$NS_BAD" curl -si --max-time 2 -H "x-api-key: $MALLORY_KEY" "http://$SRV_B:8080/tun" \
        >"$E2E_TMP/fresh.out" 2>&1
check "a new client gets in while 40 slowloris connections press on max_connections" \
        grep -q '^HTTP/1.1 200' "$E2E_TMP/fresh.out"
check "alice keeps her two connections and her pings" alice_ok
wait $SLOW
diag "40 slowloris: $(grep -c '^closed' "$E2E_TMP/slowloris40.out") closed by the server"
check "the oldest slowloris connections made room" grep -q "^closed" "$E2E_TMP/slowloris40.out"
check "the server says why" grep -q "the oldest without a complete request head, to make room" \
        "$E2E_TMP/server.log"

# --- Huge and endless headers.
rss_h=$(rss_kb)
status=$(ip netns exec "$NS_BAD" $HOSTILE huge-header $SRV_B 8080 $((1 << 20)))
diag "1 MiB header: $status"
check "a 1 MiB header gets 431 or a close" \
        grep -qxE 'HTTP/1.1 431 Request Header Fields Too Large|\(connection closed\)' <<<"$status"
endless=$(ip netns exec "$NS_BAD" $HOSTILE endless-headers $SRV_B 8080 $((256 << 20)))
diag "endless headers: $endless"
check "endless headers: the server stops reading and closes" test "${endless%% *}" = closed
check "after taking less than 16 MiB (its 16 KiB limit and the socket buffers)" \
        test "${endless#* }" -lt $((16 << 20))
check "the server logs the oversized head" grep -q "head larger than 16384 bytes" "$E2E_TMP/server.log"
diag "server RSS before and after the headers: $rss_h -> $(rss_kb) KiB"
check "the headers grow the server by less than $((RSS_SLACK / 1024)) MiB" \
        test $(($(rss_kb) - rss_h)) -lt $RSS_SLACK

# --- Garbage frames close only their own PUT, each logged once; a PUT of mallory in parallel goes on.
mkfifo "$E2E_TMP/hold"
ip netns exec "$NS_BAD" $WIRE put-hold $SRV_B 8080 $MALLORY_KEY 10.10.0.3 10.10.0.1 9999 "$E2E_TMP/hold" \
        >"$E2E_TMP/hold.out" &
HOLD=$!
exec 7>"$E2E_TMP/hold"
echo "held-1" >&7
for kind in length vnet not-ip; do
        before=$(log_count "mallory: Closing PUT from")
        status=$(ip netns exec "$NS_BAD" $HOSTILE put-garbage $SRV_B 8080 $MALLORY_KEY 10.10.0.3 10.10.0.1 \
                9999 $kind)
        diag "garbage ($kind): $status"
        check "a PUT with a garbage frame ($kind) is closed without 200" \
                test "${status:0:12}" != "HTTP/1.1 200"
        check "and logged once" wait_for 5 test "$(log_count "mallory: Closing PUT from")" = $((before + 1))
done
for reason in "invalid length" "invalid virtio-net header" "not an IP packet"; do
        check "the reason is in the log: $reason" \
                grep -q "mallory: Closing PUT .*: $reason" "$E2E_TMP/server.log"
done
echo "held-2" >&7
echo "END" >&7
exec 7>&-
wait $HOLD
check "mallory's other PUT keeps working and ends with 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/hold.out"
check "its frames and the good ones before the garbage arrived" wait_for 5 bash -c \
        "grep -q '^held-2' $E2E_TMP/udp.out && [ \$(grep -c '^before-garbage' $E2E_TMP/udp.out) = 3 ]"

# --- Mallory sends packets with alice's address: dropped, counted and logged against mallory; then one
# from its own address, which arrives.
ip netns exec "$NS_SRV" $WIRE udp-listen 10.10.0.1 9998 "$E2E_TMP/spoof.out" 8 &
SPOOF=$!
sleep 0.5
status=$(ip netns exec "$NS_BAD" $WIRE put $SRV_B 8080 $MALLORY_KEY 10.10.0.2 10.10.0.1 9998 5)
check "mallory's PUT spoofing alice ends with 200" test "${status:0:12}" = "HTTP/1.1 200"
status=$(ip netns exec "$NS_BAD" $WIRE put $SRV_B 8080 $MALLORY_KEY 10.10.0.3 10.10.0.1 9998 1)
check "the spoofed packets are logged against mallory" \
        wait_for 5 grep -q "mallory: Dropped .* whose source address does not belong" "$E2E_TMP/server.log"
check "mallory's own packet arrives" wait_for 5 grep -q '^golden-0' "$E2E_TMP/spoof.out"
check "none of the spoofed ones does" test "$(grep -c '^golden-' "$E2E_TMP/spoof.out")" = 1
kill $SPOOF 2>/dev/null
wait $SPOOF 2>/dev/null
check_bus "mallory's spoofed drops count all 5" test "$(drops mallory spoofed)" = 5
check_bus "alice is not blamed" test "$(drops alice spoofed)" = 0
check "alice is not affected by the spoofing" alice_ok

# --- Absurd x-tun-offload values: the answer is always a subset of what the server can do.
for value in 'garbage!!' @8000 'csum,tso4,tso6,ecn,uso4,uso6,quantum-gso,csum' ''; do
        answer=$(ip netns exec "$NS_BAD" $HOSTILE get-offload $SRV_B 8080 $MALLORY_KEY "$value")
        diag "x-tun-offload: ${value:0:40} -> $answer"
        check "offload ${value:0:20}: 200 with offloads the server knows" \
                grep -qxE 'HTTP/1.1 200 OK (\(empty\)|((csum|tso4|tso6|ecn|uso4|uso6),?)+)' <<<"$answer"
done
answer=$(ip netns exec "$NS_BAD" $HOSTILE get-offload $SRV_B 8080 $MALLORY_KEY 'garbage!!')
check "garbage names no offload: the server will segment and checksum for that client" \
        test "$answer" = "HTTP/1.1 200 OK (empty)"
answer=$(ip netns exec "$NS_BAD" $HOSTILE get-offload $SRV_B 8080 $MALLORY_KEY @20000)
check "an x-tun-offload beyond the head limit gets 431" test "${answer:0:12}" = "HTTP/1.1 431"
check "alice is not affected by the offload games" alice_ok

# --- A GET that stops reading, under a flood of traffic for its client: the queue (1 MiB) bounds the
# server, what does not fit is dropped and counted, alice's traffic flows. When the GET reads again, what
# waited longer than 100 ms is dropped (counted as stale) instead of delivered late.
rss2=$(rss_kb)
ip netns exec "$NS_BAD" $HOSTILE get-stall $SRV_B 8080 $MALLORY_KEY 10 2 >"$E2E_TMP/stall-get.out" &
STALLGET=$!
check "mallory's GET that stops reading is accepted" \
        wait_for 10 grep -q '^HTTP/1.1 200' "$E2E_TMP/stall-get.out"
ip netns exec "$NS_SRV" $HOSTILE udp-flood 10.10.0.1 10.10.0.3 9 5 >"$E2E_TMP/flood.out" &
FLOOD=$!
sleep 1
check "alice pings during the flood for mallory" alice_ok
wait $FLOOD
rss3=$(rss_kb)
diag "flood: $(cat "$E2E_TMP/flood.out") datagrams for mallory; server RSS $rss2 -> $rss3 KiB"
check "the server grows by less than 16 MiB (queue_bytes 1 MiB)" test $((rss3 - rss2)) -lt 16384
check_bus "what does not fit into mallory's queue is dropped and counted (queue-full)" \
        test "$(drops mallory queue-full)" -gt 0
wait $STALLGET
diag "mallory's GET: $(tr '\n' ';' <"$E2E_TMP/stall-get.out")"
check_bus "once it reads again, the old packets are dropped and counted (stale)" \
        test "$(drops mallory stale)" -gt 0
[ -n "$BUS" ] && diag "mallory drops: stale $(drops mallory stale), queue-full $(drops mallory queue-full)"
kill $LISTEN 2>/dev/null
wait $LISTEN 2>/dev/null
check "alice still pings at the end" alice_ok
check "the server is still running" kill -0 "$SRV_PID"
diag "server at the end: RSS $(rss_kb) KiB, $(fds) fds"

e2e_finish
