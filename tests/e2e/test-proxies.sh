#!/bin/bash
# End to end through real TLS reverse proxies: nginx, Caddy and HAProxy from Debian's packages, each run
# straight from its binary (never as a system service) inside the server namespace with the
# configuration from examples/ and a certificate from a CA made here, in front of a tapotun server on
# 127.0.0.1:8080. For each proxy, over HTTP/1.1 and over HTTP/2 (both streams on one connection), the
# client connects with https:// and "ca", pings, moves 256 MiB intact, keeps an idle tunnel up through
# the proxy's idle timeout, and survives a restart of the proxy untouched; the server logs the client's
# address from X-Forwarded-For; a client that does not trust the CA refuses to connect and creates no
# TUN. Idle timeouts are scaled down: the proxies' 600 s to 4 s, tapotun's 55 s keepalive to 2 s.
# iperf3 figures through each proxy are printed next to the plain-HTTP tunnel and the bare veth,
# measured in the same run; they are never asserted.
source "$(dirname "$0")/lib.sh"
e2e_require_root
if ! command -v openssl >/dev/null; then
        echo "1..0 # SKIP openssl is not installed (.ci/packages)"
        exit 0
fi
trap e2e_cleanup EXIT
WIRE="python3 $(dirname "$0")/wire.py"
EXAMPLES="${TAPOTUN_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/examples"
PKI="$E2E_TMP/pki"
FRONT="$SRV_UNDERLAY:8443"
URL="https://$FRONT/tun"
# The examples' idle timeouts (600 s, above tapotun's 55 s keepalive) and the keepalive, scaled down.
PROXY_IDLE=4
KEEPALIVE=2
PROXY_PID=
NGINX_TESTED=
SUMMARY=()

# ---------------------------------------------------------------------------------------------------
# Certificates: a CA and a server certificate for the proxies' address (an IP SAN: no name resolution).

make_pki() {
        mkdir -p "$PKI" &&
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                        -subj "/CN=tapotun test CA" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" \
                        -addext "basicConstraints=critical,CA:TRUE" \
                        -addext "keyUsage=critical,keyCertSign,cRLSign" &&
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SRV_UNDERLAY" \
                        -keyout "$PKI/server.key" -out "$PKI/server.csr" &&
                printf '%s\n' "subjectAltName=IP:$SRV_UNDERLAY" "basicConstraints=critical,CA:FALSE" \
                        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
                        >"$PKI/server.ext" &&
                openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
                        -CAcreateserial -days 2 -extfile "$PKI/server.ext" -out "$PKI/server.pem" &&
                cat "$PKI/server.pem" "$PKI/server.key" >"$PKI/server-with-key.pem"
}

# ---------------------------------------------------------------------------------------------------
# The proxies. Each start_NAME writes its configuration into $E2E_TMP/NAME/ from the example in
# examples/, changing only the listening address, the certificate, the idle timeouts (scaled down) and
# what a system service sets up (user, pid and log files, temp paths, syslog), starts the binary in the
# foreground in the server namespace and sets PROXY_PID. Logs go to $E2E_TMP/NAME.log, shown when a
# check fails.

start_nginx() {
        local d="$E2E_TMP/nginx"
        mkdir -p "$d"
        sed -e "s/ 600s;/ ${PROXY_IDLE}s;/" "$EXAMPLES/nginx/tapotun-proxy.conf" >"$d/tapotun-proxy.conf"
        sed -e '/listen \[::\]:443 /d' -e "s|listen 443 |listen $FRONT |" \
                -e "s|/etc/letsencrypt/live/vpn.example.com/fullchain.pem|$PKI/server.pem|" \
                -e "s|/etc/letsencrypt/live/vpn.example.com/privkey.pem|$PKI/server.key|" \
                -e "s|include snippets/tapotun-proxy.conf;|include $d/tapotun-proxy.conf;|" \
                "$EXAMPLES/nginx/tapotun.conf" >"$d/site.conf"
        grep -q "proxy_read_timeout ${PROXY_IDLE}s;" "$d/tapotun-proxy.conf" &&
                grep -q "listen $FRONT ssl http2;" "$d/site.conf" &&
                grep -q "include $d/" "$d/site.conf" || return 1
        # Workers run as root: $E2E_TMP is not open to others. No temp file is ever written (nothing is
        # buffered); the paths only keep nginx away from /var/lib/nginx.
        cat >"$d/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $E2E_TMP/nginx.log notice;
events { worker_connections 256; }
http {
        access_log $d/access.log;
        client_body_temp_path $d/body;
        proxy_temp_path $d/proxy;
        fastcgi_temp_path $d/fastcgi;
        uwsgi_temp_path $d/uwsgi;
        scgi_temp_path $d/scgi;
        include $d/site.conf;
}
EOF
        ip netns exec "$NS_SRV" nginx -e "$E2E_TMP/nginx.log" -p "$d" -c "$d/nginx.conf" \
                >>"$E2E_TMP/nginx.log" 2>&1 &
        PROXY_PID=$!
}

start_caddy() {
        local d="$E2E_TMP/caddy"
        mkdir -p "$d"
        # The example with the test's address and certificate instead of ACME; no admin endpoint, no
        # redirect listener on port 80, state under $d, and a shorter grace period on stop.
        sed -e "s|^vpn.example.com {|https://$FRONT {\n\ttls $PKI/server.pem $PKI/server.key|" \
                -e "s|^\tgrace_period 10s|\tgrace_period 2s\n\tadmin off\n\tauto_https disable_redirects|" \
                -e "s|_timeout 600s$|_timeout ${PROXY_IDLE}s|" \
                "$EXAMPLES/caddy/Caddyfile" >"$d/Caddyfile"
        grep -q "^https://$FRONT {" "$d/Caddyfile" && grep -q "admin off" "$d/Caddyfile" &&
                grep -q "write_timeout ${PROXY_IDLE}s" "$d/Caddyfile" || return 1
        ip netns exec "$NS_SRV" env HOME="$d" XDG_DATA_HOME="$d/data" XDG_CONFIG_HOME="$d/config" \
                caddy run --adapter caddyfile --config "$d/Caddyfile" >>"$E2E_TMP/caddy.log" 2>&1 &
        PROXY_PID=$!
}

start_haproxy() {
        local d="$E2E_TMP/haproxy"
        mkdir -p "$d"
        # The example with the test's address and certificate, without what a system service sets up
        # (chroot, user, daemon, syslog, stats socket): it logs to stderr.
        sed -e '/^ *\(chroot\|user\|group\|daemon\|stats socket\|log \/dev\/log\) /d' -e '/^ *daemon$/d' \
                -e 's|^global$|global\n        log stderr format raw local0 info|' \
                -e '/bind :::443 /d' -e "s|bind :443 |bind $FRONT |" \
                -e "s|/etc/haproxy/certs/vpn.example.com.pem|$PKI/server-with-key.pem|" \
                -e "s| 600s$| ${PROXY_IDLE}s|" \
                "$EXAMPLES/haproxy/haproxy.cfg" >"$d/haproxy.cfg"
        grep -q "timeout server ${PROXY_IDLE}s" "$d/haproxy.cfg" || return 1
        ! grep -q -E '^ *(chroot|user|daemon|stats socket)' "$d/haproxy.cfg" || return 1
        grep -q "bind $FRONT ssl crt $PKI/server-with-key.pem" "$d/haproxy.cfg" || return 1
        ip netns exec "$NS_SRV" haproxy -db -f "$d/haproxy.cfg" >>"$E2E_TMP/haproxy.log" 2>&1 &
        PROXY_PID=$!
}

proxy_listening() {
        ip netns exec "$NS_SRV" ss -Htln "sport = :8443" | grep -q .
}

# proxy_start NAME: starts it and waits until it accepts connections.
proxy_start() {
        "start_$1" || return 1
        E2E_PIDS+=("$PROXY_PID")
        wait_for 15 proxy_listening
}

# proxy_stop: SIGTERM, as a service manager stops it; waits until the process has exited.
proxy_stop() {
        [ -n "$PROXY_PID" ] || return 0
        e2e_stop "$PROXY_PID"
        PROXY_PID=
}

# no_proxy_left NAME: no process of NAME runs in the server namespace (nginx's workers included).
no_proxy_left() {
        local pids
        pids=$(ip netns pids "$NS_SRV" | tr '\n' ',')
        [ -z "$pids" ] || ! ps -o comm= -p "${pids%,}" | grep -q "^$1"
}

# ---------------------------------------------------------------------------------------------------
# Clients and checks.

# client_config FILE [EXTRA_JSON_FIELDS]: the tunnel through the proxies; short reconnect delays keep
# the restart checks quick.
client_config() {
        cat >"$1" <<JSON
[ { "name": "tun0", "server": "$URL", "token": "test", "reconnect_min": 1, "reconnect_max": 4,
    "keepalive": $KEEPALIVE${2:+, $2} } ]
JSON
}

# since FILE LINE PATTERN: PATTERN (extended regex) occurs in FILE after its first LINE lines.
since() {
        tail -n "+$(($2 + 1))" "$1" 2>/dev/null | grep -q -E "$3"
}

# held LOG LINE SERVER_LINE: since then the client (log LOG) has not reconnected and the server has
# not lost it.
held() {
        ! since "$1" "$2" "retrying in" && ! since "$E2E_TMP/server.log" "$3" "Disconnected"
}

lines() {
        wc -l <"$1" 2>/dev/null || echo 0
}

# blast LABEL BYTES: BYTES of random data from the client to the server through the tunnel, checked
# with SHA-256 on both ends.
blast() {
        local sent recv pid
        ip netns exec "$NS_SRV" timeout 120 $WIRE blast-recv 10.10.0.1 5001 >"$E2E_TMP/recv.out" &
        pid=$!
        wait_for 5 bash -c "ip netns exec $NS_SRV ss -Htln 'sport = :5001' | grep -q ."
        sent=$(ip netns exec "$NS_CLI" timeout 120 $WIRE blast-send 10.10.0.1 5001 "$2")
        wait "$pid"
        recv=$(cat "$E2E_TMP/recv.out")
        check "$1" test -n "$sent" -a "$sent" = "$recv"
}

# iperf LABEL ADDR [-R]: 3 s of iperf3 from the client namespace to ADDR in the server namespace;
# prints the received rate, never asserts it.
iperf() {
        local label=$1 addr=$2 srv gbps
        shift 2
        ip netns exec "$NS_SRV" timeout 30 iperf3 -s -1 -B "$addr" -p 5201 >/dev/null 2>&1 &
        srv=$!
        wait_for 5 bash -c "ip netns exec $NS_SRV ss -Htln 'sport = :5201' | grep -q ."
        gbps=$(ip netns exec "$NS_CLI" timeout 30 iperf3 -c "$addr" -p 5201 -t 3 -J "$@" 2>/dev/null |
                python3 -c 'import json, sys
print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' 2>/dev/null)
        wait "$srv" 2>/dev/null
        SUMMARY+=("$(printf '%-36s %s' "$label" "${gbps:+$gbps Gbit/s}")")
        SUMMARY[-1]=${SUMMARY[-1]%% }
        [ -n "$gbps" ] || SUMMARY[-1]+="failed"
        diag "iperf3 ${SUMMARY[-1]}"
}

# rtt_below MS: the median of 5 pings through the tunnel took less than MS milliseconds (the median: one
# slow answer on a busy machine says nothing about the proxy).
rtt_below() {
        ip netns exec "$NS_CLI" ping -c 5 -i 0.2 -W 2 10.10.0.1 >"$E2E_TMP/ping.out" || return 1
        cat "$E2E_TMP/ping.out"
        sed -n 's/.* time=\([0-9.]*\) ms$/\1/p' "$E2E_TMP/ping.out" | sort -n | sed -n 3p |
                awk -v ms="$1" '{ exit !($1 < ms) }'
}

# local_port GET|PUT LOG: the client's end of the connection the stream last connected on.
local_port() {
        grep -o "$1: Connected to .*, local port [0-9]*" "$2" | tail -1 | sed 's/.*local port //'
}

# connections_to_front: established TCP connections from the client namespace to the proxy.
connections_to_front() {
        ip netns exec "$NS_CLI" ss -Htn state established "dst $FRONT" | wc -l
}

# tunnel_session PROXY MODE: a client through PROXY with "http": MODE ("1.1" or "2") comes up, pings,
# stays up while idle, moves 256 MiB intact, is measured, and survives a restart of the proxy.
tunnel_session() {
        local proxy=$1 mode=$2 tag="$1, HTTP/$2" log cpid srv_line srv_line2 cli_line
        log="$E2E_TMP/client-$proxy-h$mode.log"
        client_config "$E2E_TMP/client-$proxy-h$mode.json" "\"ca\": \"$PKI/ca.pem\", \"http\": \"$mode\""
        srv_line=$(lines "$E2E_TMP/server.log")
        e2e_start "$NS_CLI" "client-$proxy-h$mode" "$E2E_TMP/client-$proxy-h$mode.json"
        cpid=$E2E_LAST_PID
        check "$tag: the client comes up through $URL with the test CA" \
                wait_for 20 tun_has_addr "$NS_CLI" tun0 10.10.0.2
        check "$tag: the GET speaks HTTP/$mode to the proxy" \
                grep -q "GET: Connected to $FRONT over HTTP/$mode," "$log"
        check "$tag: the PUT is connected" wait_for 5 grep -q "PUT: Connected to $FRONT" "$log"
        if [ "$mode" = 2 ]; then
                check "$tag: both streams share one TLS connection" test "$(local_port GET "$log")" = \
                        "$(local_port PUT "$log")" -a "$(connections_to_front)" = 1
        else
                check "$tag: one TLS connection per stream" test "$(local_port GET "$log")" != \
                        "$(local_port PUT "$log")" -a "$(connections_to_front)" = 2
        fi
        check "$tag: ping client -> server" ip netns exec "$NS_CLI" ping -c 3 -i 0.2 -W 2 10.10.0.1
        # A proxy that holds back the end of a body it expects more of (HAProxy without http-no-delay)
        # delays packets by up to 200 ms, which stalls TCP in the tunnel; a round trip here takes ~1 ms.
        check "$tag: the proxy holds no packet back (ping RTT below 100 ms)" rtt_below 100
        check "$tag: ping server -> client" ip netns exec "$NS_SRV" ping -c 3 -i 0.2 -W 2 10.10.0.2
        # Nothing crosses the tunnel for twice the proxy's idle timeout: the keepalives hold both streams.
        cli_line=$(lines "$log")
        srv_line2=$(lines "$E2E_TMP/server.log")
        sleep $((2 * PROXY_IDLE))
        check "$tag: an idle tunnel outlives the proxy's idle timeout (${PROXY_IDLE} s)" \
                held "$log" "$cli_line" "$srv_line2"
        check "$tag: the server logs the client's address from X-Forwarded-For" \
                since "$E2E_TMP/server.log" "$srv_line" \
                "Connected from 127\.0\.0\.1:[0-9]+ \(x-forwarded-for: $CLI_UNDERLAY\)"
        blast "$tag: 256 MiB client -> server arrive intact (sha256)" $((256 << 20))
        iperf "$proxy, HTTP/$mode, client -> server" 10.10.0.1
        iperf "$proxy, HTTP/$mode, server -> client" 10.10.0.1 -R

        cli_line=$(lines "$log")
        proxy_stop
        check "$tag: the client notices the proxy is gone" \
                wait_for 10 since "$log" "$cli_line" "(GET|PUT): .*retrying in"
        proxy_start "$proxy"
        check "$tag: $proxy restarted" proxy_listening
        check "$tag: the tunnel works again after the restart, the client untouched" \
                wait_for 30 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1
        check "$tag: the same client process is still running" kill -0 "$cpid"
        e2e_stop "$cpid"
}

# untrusted_client PROXY: without "ca" the system store does not know the test CA: curl's certificate
# error in the log, and no TUN.
untrusted_client() {
        local log="$E2E_TMP/client-$1-untrusted.log" cpid
        client_config "$E2E_TMP/client-$1-untrusted.json"
        e2e_start "$NS_CLI" "client-$1-untrusted" "$E2E_TMP/client-$1-untrusted.json"
        cpid=$E2E_LAST_PID
        check "$1: a client without the CA refuses the certificate" \
                wait_for 10 grep -q "SSL certificate problem" "$log"
        check "$1: ... and creates no TUN" bash -c "! ip -n $NS_CLI link show tun0"
        e2e_stop "$cpid"
}

# refused_request PROXY: a wrong key gets the server's 403 through the proxy, and the server's
# rejection log line names the client from X-Forwarded-For.
refused_request() {
        local srv_line code
        srv_line=$(lines "$E2E_TMP/server.log")
        code=$(ip netns exec "$NS_CLI" curl -s --max-time 10 --cacert "$PKI/ca.pem" \
                -H 'x-api-key: wrong' -o /dev/null -w '%{http_code}' "$URL")
        check "$1: a wrong key gets 403 through the proxy" test "$code" = 403
        check "$1: the server's rejection names the client from X-Forwarded-For" \
                wait_for 5 since "$E2E_TMP/server.log" "$srv_line" \
                "Rejected GET from 127\.0\.0\.1:[0-9]+ \(x-forwarded-for: $CLI_UNDERLAY\)"
}

# insecure_client: "insecure" connects without the CA and says so at warning level: with the daemon
# logging warnings and above only, its line is there and the info lines are not.
insecure_client() {
        local log="$E2E_TMP/client-insecure.log"
        client_config "$E2E_TMP/client-insecure.json" '"insecure": true'
        TAPOTUN_LOG_LEVEL=warning e2e_start "$NS_CLI" client-insecure "$E2E_TMP/client-insecure.json"
        check "insecure: the client connects without the CA" \
                wait_for 20 tun_has_addr "$NS_CLI" tun0 10.10.0.2
        check "insecure: logged at warning level" grep -q "TLS verification is off ('insecure')" "$log"
        check "insecure: ... and info lines are not logged at that level" \
                bash -c "! grep -q 'Connected' '$log'"
        e2e_stop "$E2E_LAST_PID"
}

# verify_dropin: systemd loads examples/systemd's drop-in onto Debian's nginx.service without a
# complaint, next to the tapotun@.service of this build.
verify_dropin() {
        local d="$E2E_TMP/units"
        mkdir -p "$d/nginx.service.d" &&
                cp /lib/systemd/system/nginx.service "$TAPOTUN_BUILD_ROOT/units/tapotun@.service" "$d/" &&
                cp "$EXAMPLES/systemd/nginx.service.d/tapotun.conf" "$d/nginx.service.d/" &&
                SYSTEMD_UNIT_PATH="$d:" systemd-analyze verify "$d/nginx.service" >"$d/verify.out" 2>&1
        cat "$d/verify.out"
        [ ! -s "$d/verify.out" ]
}

# ---------------------------------------------------------------------------------------------------

e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
check "test CA and server certificate (IP SAN $SRV_UNDERLAY)" make_pki
check "examples/systemd/vpn0.json is valid" "$TAPOTUNCTL" validate "$EXAMPLES/systemd/vpn0.json"
check "examples/systemd/office.json is valid" "$TAPOTUNCTL" validate "$EXAMPLES/systemd/office.json"
if command -v systemd-analyze >/dev/null && [ -f /lib/systemd/system/nginx.service ]; then
        check "examples/systemd/nginx.service.d/tapotun.conf loads without a complaint" verify_dropin
else
        ok "examples/systemd/nginx.service.d/tapotun.conf # SKIP no systemd-analyze or nginx.service"
fi

# tun0 behind the proxies on the default 127.0.0.1:8080; tun1 on the underlay, in plain HTTP, for the
# comparison.
cat >"$E2E_TMP/server.json" <<JSON
[
  { "name": "tun0", "port": 8080, "net": "10.10.0.1/24", "keepalive": $KEEPALIVE,
    "clients": [ { "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" } ] },
  { "name": "tun1", "port": 8081, "listen": "$SRV_UNDERLAY", "net": "10.20.0.1/24",
    "clients": [ { "token": "$TOKEN_TEST_SHA1", "ip": "10.20.0.2" } ] }
]
JSON
e2e_start "$NS_SRV" server "$E2E_TMP/server.json"
SRV_PID=$E2E_LAST_PID
check "server creates tun0 and tun1" wait_for 10 tun_has_addr "$NS_SRV" tun1 10.20.0.1

# Baselines: the bare veth, and the tunnel in plain HTTP without a proxy.
iperf "veth (no tunnel), client -> server" "$SRV_UNDERLAY"
cat >"$E2E_TMP/client-plain.json" <<JSON
[ { "name": "tun1", "server": "http://$SRV_UNDERLAY:8081/", "token": "test" } ]
JSON
e2e_start "$NS_CLI" client-plain "$E2E_TMP/client-plain.json"
check "plain-HTTP client comes up" wait_for 15 tun_has_addr "$NS_CLI" tun1 10.20.0.2
iperf "plain HTTP, client -> server" 10.20.0.1
iperf "plain HTTP, server -> client" 10.20.0.1 -R
e2e_stop "$E2E_LAST_PID"

# TAPOTUN_TEST_PROXIES picks some of them, e.g. when working on one.
for proxy in ${TAPOTUN_TEST_PROXIES:-nginx caddy haproxy}; do
        if ! command -v "$proxy" >/dev/null; then
                ok "$proxy # SKIP not installed (.ci/packages)"
                continue
        fi
        check "$proxy starts and listens on $FRONT" proxy_start "$proxy"
        tunnel_session "$proxy" 1.1
        tunnel_session "$proxy" 2
        untrusted_client "$proxy"
        refused_request "$proxy"
        if [ "$proxy" = nginx ]; then
                insecure_client
                NGINX_TESTED=1
        fi
        proxy_stop
        check "$proxy: no process of it is left" no_proxy_left "$proxy"
done

# The control for the idle checks: with the server's keepalive (60 s) above nginx's scaled-down idle
# timeout, nginx does cut the idle GET (proxy_read_timeout).
if [ -n "$NGINX_TESTED" ]; then
        e2e_stop "$SRV_PID"
        sed -e "s/\"keepalive\": $KEEPALIVE,/\"keepalive\": 60,/" "$E2E_TMP/server.json" \
                >"$E2E_TMP/server-slow.json"
        e2e_start "$NS_SRV" server-slow "$E2E_TMP/server-slow.json"
        check "control: server with a 60 s keepalive" wait_for 10 tun_has_addr "$NS_SRV" tun0 10.10.0.1
        check "control: nginx starts" proxy_start nginx
        client_config "$E2E_TMP/client-control.json" "\"ca\": \"$PKI/ca.pem\""
        e2e_start "$NS_CLI" client-control "$E2E_TMP/client-control.json"
        check "control: the client comes up" wait_for 20 tun_has_addr "$NS_CLI" tun0 10.10.0.2
        check "control: nginx cuts the idle GET after ${PROXY_IDLE} s" \
                wait_for $((3 * PROXY_IDLE)) grep -q "GET: .*retrying in" "$E2E_TMP/client-control.log"
        e2e_stop "$E2E_LAST_PID"
        proxy_stop
fi

diag "iperf3, 1 TCP stream, 3 s each (Gbit/s received):"
for line in "${SUMMARY[@]}"; do
        diag "  $line"
done

e2e_finish
exit 0
