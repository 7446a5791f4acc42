#!/bin/bash
# The wire contract against the real server in a namespace: x-tun-conf of the README example, 403 for
# bad keys (and no TUN on a client with a bad token), golden frames from a hand-written client split at
# every byte boundary land on the server's TUN, and an invalid frame closes only its own request.
source "$(dirname "$0")/lib.sh"
e2e_require_root
trap e2e_cleanup EXIT
WIRE="python3 $(dirname "$0")/wire.py"
URL="http://$SRV_UNDERLAY:8080/tun"

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
e2e_server_config "$E2E_TMP/server.json"
e2e_start "$NS_SRV" server "$E2E_TMP/server.json"
check "server is up" wait_for 10 bash -c "ip netns exec $NS_SRV ss -ltn | grep -q ':8080'"

ip netns exec "$NS_CLI" curl -si --max-time 2 -H 'x-api-key: test' "$URL" >"$E2E_TMP/get.out" 2>&1
diag "$(head -1 "$E2E_TMP/get.out")"
check "GET with the README token answers 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/get.out"
check "GET carries x-tun-conf: 3AUYCgoAAg==" grep -qi '^x-tun-conf: 3AUYCgoAAg==' "$E2E_TMP/get.out"
check "GET body is chunked" grep -qi '^transfer-encoding: chunked' "$E2E_TMP/get.out"

ip netns exec "$NS_CLI" curl -si --max-time 2 -H 'x-api-key: wrong' "$URL" >"$E2E_TMP/bad.out" 2>&1
check "GET with a wrong key gets 403 Forbidden" grep -q '^HTTP/1.1 403' "$E2E_TMP/bad.out"
check "the 403 body is Forbidden" grep -q '^Forbidden' "$E2E_TMP/bad.out"
ip netns exec "$NS_CLI" curl -si --max-time 2 "$URL" >"$E2E_TMP/nokey.out" 2>&1
check "GET without a key gets 403" grep -q '^HTTP/1.1 403' "$E2E_TMP/nokey.out"
check "the refused attempt is logged with the peer address" grep -q "$CLI_UNDERLAY" "$E2E_TMP/server.log"
status=$(ip netns exec "$NS_CLI" $WIRE put "$SRV_UNDERLAY" 8080 wrong 10.10.0.2 10.10.0.1 9999 1)
check "PUT with a wrong key gets 403" test "${status:0:12}" = "HTTP/1.1 403"

# Golden frames, every byte its own chunk and TCP write, must land on the server's TUN: the UDP
# listener on the server's tunnel address receives their payloads.
ip netns exec "$NS_SRV" $WIRE udp-listen 10.10.0.1 9999 "$E2E_TMP/udp.out" 12 &
LISTEN=$!
sleep 0.5
status=$(ip netns exec "$NS_CLI" $WIRE put "$SRV_UNDERLAY" 8080 test 10.10.0.2 10.10.0.1 9999 5 --split every-byte)
diag "split PUT: $status"
check "PUT split at every byte boundary ends with 200" test "${status:0:12}" = "HTTP/1.1 200"
check "its 5 golden frames land on the server's TUN" \
        wait_for 5 bash -c "[ \$(grep -c '^golden-' $E2E_TMP/udp.out) = 5 ]"

# An invalid frame closes only its own request: a parallel PUT of the same token keeps working.
mkfifo "$E2E_TMP/hold"
ip netns exec "$NS_CLI" $WIRE put-hold "$SRV_UNDERLAY" 8080 test 10.10.0.2 10.10.0.1 9999 "$E2E_TMP/hold" \
        >"$E2E_TMP/hold.out" &
HOLD=$!
exec 7>"$E2E_TMP/hold"
echo "held-1" >&7
status=$(ip netns exec "$NS_CLI" $WIRE put "$SRV_UNDERLAY" 8080 test 10.10.0.2 10.10.0.1 9999 1 --bad-frame)
diag "bad-frame PUT: $status"
check "a PUT with an invalid frame is closed without 200" test "${status:0:12}" != "HTTP/1.1 200"
check "the server logs why" grep -qi "invalid length" "$E2E_TMP/server.log"
echo "held-2" >&7
echo "END" >&7
exec 7>&-
wait $HOLD
check "the other PUT keeps working and ends with 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/hold.out"
check "both of its frames arrived" wait_for 5 bash -c "grep -q '^held-1' $E2E_TMP/udp.out && grep -q '^held-2' $E2E_TMP/udp.out"
wait $LISTEN

# A client with a bad token: 403, backoff, and no TUN.
e2e_client_config "$E2E_TMP/client.json" not-the-token
e2e_start "$NS_CLI" client "$E2E_TMP/client.json"
sleep 4
check "a client with a bad token logs the 403" grep -q "403" "$E2E_TMP/client.log"
check "and creates no TUN" bash -c "! ip -n $NS_CLI link show tun0"

e2e_finish
