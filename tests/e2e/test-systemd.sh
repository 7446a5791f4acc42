#!/bin/bash
# The systemd units under a real systemd: a Debian 12 tree (debootstrap, cached by container.sh) with this build
# installed into a copy of it, booted with systemd-nspawn in a network namespace made here, joined by
# veth pairs to two client namespaces whose tapotund runs on the host. Checks that tapotun@corp0 starts
# (READY=1 only once its TUN is up), shows its STATUS=, pings the watchdog, carries traffic; that
# tapotun@corp0.socket starts it on the first connection and that a socket named for no interface is
# refused; that `systemctl reload` adds a client while the existing client's pings go on and that a
# broken file on reload leaves it running and says why; that a broken file at start reports ERRNO=; and
# that `systemctl stop` removes the TUN, the routes and the rules.
source "$(dirname "$0")/lib.sh"
e2e_require_root

if [ -n "${TAPOTUN_SANITIZE:-}" ] && [ "$TAPOTUN_SANITIZE" != none ]; then
        echo "1..0 # SKIP sanitizer build ($TAPOTUN_SANITIZE): the container has no sanitizer runtime; the normal build runs this test"
        exit 0
fi
source "$(dirname "$0")/container.sh"
ct_require
trap 'ct_cleanup; e2e_cleanup' EXIT

t0=$(date +%s)
ROOT=$E2E_TMP/root
rc=0
ct_prepare "$ROOT" || rc=$?
if [ $rc = 2 ]; then
        echo "1..0 # SKIP $CT_ERROR"
        tail -5 "$E2E_TMP/debootstrap.log" | sed 's/^/# /'
        exit 0
elif [ $rc != 0 ]; then
        echo "Bail out! $CT_ERROR"
        tail -20 "$E2E_TMP/debootstrap.log" 2>/dev/null | sed 's/^/# /'
        exit 1
fi
diag "Debian tree ready after $(($(date +%s) - t0)) s"

if ! meson install -C "$TAPOTUN_BUILD_ROOT" --no-rebuild --quiet --destdir "$ROOT" >"$E2E_TMP/install.log" 2>&1; then
        echo "Bail out! meson install failed"
        tail -20 "$E2E_TMP/install.log" | sed 's/^/# /'
        exit 1
fi
UNIT=$(ls "$ROOT"/lib/systemd/system/tapotun@.service "$ROOT"/usr/lib/systemd/system/tapotun@.service \
        "$ROOT"/usr/local/lib/systemd/system/tapotun@.service 2>/dev/null | head -1)
[ -n "$UNIT" ] || { echo "Bail out! meson install put no tapotun@.service where systemd looks"; exit 1; }
# The configuration directory the installed unit reads (CONFDIR/%i.json).
CONFDIR=$(sed -n 's|^ExecStart=[^ ]* \(.*\)/%i\.json$|\1|p' "$UNIT")
[ -n "$CONFDIR" ] || { echo "Bail out! no CONFDIR/%i.json in the ExecStart= of $UNIT"; exit 1; }
mkdir -p "$ROOT$CONFDIR" "$ROOT/etc/systemd/system"
diag "units in ${UNIT#"$ROOT"}, configuration in $CONFDIR"

# The server's namespace is the container's; client alpha on 192.0.2.0/24, client beta on 198.51.100.0/24.
e2e_topology || { echo "Bail out! cannot create namespaces"; exit 1; }
e2e_netns "$NS_CLI2" || { echo "Bail out! cannot create namespaces"; exit 1; }
ip -n "$NS_SRV" link add to-b type veth peer name to-srv netns "$NS_CLI2" &&
        ip -n "$NS_SRV" addr add 198.51.100.1/24 dev to-b && ip -n "$NS_SRV" link set to-b up &&
        ip -n "$NS_CLI2" addr add 198.51.100.2/24 dev to-srv && ip -n "$NS_CLI2" link set to-srv up ||
        { echo "Bail out! cannot create the underlay"; exit 1; }

TOKEN_B_SHA1=$(printf %s beta-secret | sha1sum | cut -d' ' -f1)
# corp_config [beta]: corp0 with client alpha (and beta), a client route and fwmark routing, so that stop
# has routes and rules to remove.
corp_config() {
        local beta=""
        [ -n "${1:-}" ] && beta=", { \"name\": \"beta\", \"token\": \"$TOKEN_B_SHA1\", \"ip\": \"10.10.0.3\" }"
        cat >"$ROOT$CONFDIR/corp0.json.new" <<JSON
[
  {
    "name": "corp0",
    "port": 8080,
    "listen": "0.0.0.0",
    "net": "10.10.0.1/24",
    "mark": { "value": 51, "table": 151, "priority": 1500 },
    "clients": [ { "name": "alpha", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2", "routes": ["10.20.0.0/24"] }$beta ]
  }
]
JSON
        mv "$ROOT$CONFDIR/corp0.json.new" "$ROOT$CONFDIR/corp0.json"
}
corp_config
cat >"$ROOT$CONFDIR/bad.json" <<JSON
[ { "name": "bad0", "port": 70000, "net": "10.30.0.1/24", "clients": [] } ]
JSON
# A server interface "corp1" started through a socket named "other": a mismatch.
cat >"$ROOT$CONFDIR/other.json" <<JSON
[ { "name": "corp1", "port": 8081, "net": "10.40.0.1/24", "clients": [] } ]
JSON
mkdir -p "$ROOT/etc/systemd/system/tapotun@.service.d" "$ROOT/etc/systemd/system/tapotun@corp0.socket.d" \
        "$ROOT/etc/systemd/system/tapotun@other.socket.d"
# A short watchdog period, so that the test sees several WATCHDOG=1 in a few seconds.
printf '[Service]\nWatchdogSec=3s\n' >"$ROOT/etc/systemd/system/tapotun@.service.d/test-watchdog.conf"
printf '[Socket]\nListenStream=\nListenStream=0.0.0.0:8080\n' >"$ROOT/etc/systemd/system/tapotun@corp0.socket.d/listen.conf"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:8090\n' >"$ROOT/etc/systemd/system/tapotun@other.socket.d/listen.conf"

ct_boot "$ROOT" "$NS_SRV" || { echo "Bail out! the container did not start"; tail -20 "$E2E_TMP/console.log" | sed 's/^/# /'; exit 1; }
LEADER=$CT_LEADER
state=$(ct_wait_running)
diag "container booted after $(($(date +%s) - t0)) s: $state"
check "the container boots (running or degraded)" test "$state" = running -o "$state" = degraded

check "systemd-analyze verify accepts the installed units" \
        ct systemd-analyze verify --man=no tapotun@corp0.service tapotun@corp0.socket
ct systemd-analyze security --no-pager tapotun@corp0.service >"$E2E_TMP/security.out" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for tapotun@corp0.service: \([0-9.]*\).*/\1/p' "$E2E_TMP/security.out")
diag "systemd-analyze security tapotun@corp0.service: exposure $exposure"
check "the hardening keeps the exposure level at or below 2.0" \
        awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'

# --- Start: READY=1 only once the interface is up.
check "systemctl start tapotun@corp0 succeeds" ct systemctl start tapotun@corp0.service
check "corp0 has 10.10.0.1 as soon as start returned (READY=1 after the interface is up)" \
        tun_has_addr "$NS_SRV" corp0 10.10.0.1
check "the service is active (running)" \
        bash -c "nsenter -t $LEADER -a systemctl status --no-pager tapotun@corp0 | grep -q 'Active: active (running)'"
check "systemctl status shows the STATUS= line" \
        bash -c "nsenter -t $LEADER -a systemctl status --no-pager tapotun@corp0 | grep -q 'Status: \"0 of 1 peers connected, 0 failing\"'"
wd1=$(ct systemctl show -P WatchdogTimestampMonotonic tapotun@corp0.service)
pid1=$(ct systemctl show -P MainPID tapotun@corp0.service)
sleep 4
wd2=$(ct systemctl show -P WatchdogTimestampMonotonic tapotun@corp0.service)
diag "WatchdogTimestampMonotonic $wd1 -> $wd2"
check "the daemon pings the watchdog (WATCHDOG=1) and outlives WatchdogSec=3s" \
        test -n "$wd1" -a -n "$wd2" -a "${wd2:-0}" -gt "${wd1:-0}" -a "$(ct systemctl show -P MainPID tapotun@corp0.service)" = "$pid1"

cat >"$E2E_TMP/alpha.json" <<JSON
[ { "name": "tun0", "server": "http://$SRV_UNDERLAY:8080/", "token": "test", "reconnect_min": 1, "reconnect_max": 2 } ]
JSON
cat >"$E2E_TMP/beta.json" <<JSON
[ { "name": "tun0", "server": "http://198.51.100.1:8080/", "token": "beta-secret", "reconnect_min": 1, "reconnect_max": 2 } ]
JSON
e2e_start "$NS_CLI" alpha "$E2E_TMP/alpha.json"
ALPHA_PID=$E2E_LAST_PID
check "client alpha connects and pings the server" wait_for 20 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1
check "the STATUS= line follows: 1 of 1 peers connected" \
        wait_for 5 bash -c "nsenter -t $LEADER -a systemctl show -P StatusText tapotun@corp0 | grep -q '^1 of 1 peers connected, 0 failing'"

# --- Socket activation: no client while the socket comes up, then alpha's first connection.
e2e_stop "$ALPHA_PID"
check "systemctl stop tapotun@corp0 succeeds" ct systemctl stop tapotun@corp0.service
check "systemctl enable --now tapotun@corp0.socket succeeds" ct systemctl enable --now tapotun@corp0.socket
check "the service stays stopped while nobody connects" \
        bash -c "sleep 1; [ \"\$(nsenter -t $LEADER -a systemctl is-active tapotun@corp0.service)\" = inactive ]"
e2e_start "$NS_CLI" alpha2 "$E2E_TMP/alpha.json"
check "alpha's first connection starts the service" \
        wait_for 30 bash -c "[ \"\$(nsenter -t $LEADER -a systemctl is-active tapotun@corp0.service)\" = active ]"
check "alpha pings through the socket-activated server" wait_for 20 ip netns exec "$NS_CLI" ping -c 1 -W 1 10.10.0.1
check "the daemon accepts on the socket systemd passed (both hold it)" \
        bash -c "ip netns exec $NS_SRV ss -ltnp 'sport = :8080' | grep -q '\"systemd\"' && ip netns exec $NS_SRV ss -ltnp 'sport = :8080' | grep -q '\"tapotund\"'"

check "a socket named for no interface of the file is refused (tapotun@other)" \
        bash -c "! nsenter -t $LEADER -a systemctl start tapotun@other.socket tapotun@other.service"
check "the journal says why" \
        bash -c "nsenter -t $LEADER -a journalctl -b --no-pager -u tapotun@other.service | grep -q \"systemd passed a socket named 'other' but no server interface\""
ct systemctl stop tapotun@other.socket tapotun@other.service >/dev/null 2>&1
ct systemctl reset-failed >/dev/null 2>&1

# --- Reload with a client added, while alpha pings every 0.1 s.
pid1=$(ct systemctl show -P MainPID tapotun@corp0.service)
ip netns exec "$NS_CLI" ping -n -i 0.1 -c 100 -W 1 10.10.0.1 >"$E2E_TMP/ping.out" 2>&1 &
PING_PID=$!
sleep 1
corp_config beta
check "systemctl reload tapotun@corp0 succeeds" ct systemctl reload tapotun@corp0.service
e2e_start "$NS_CLI2" beta "$E2E_TMP/beta.json"
check "the added client beta connects and pings" wait_for 20 ip netns exec "$NS_CLI2" ping -c 1 -W 1 10.10.0.1
wait "$PING_PID"
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$E2E_TMP/ping.out")
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$E2E_TMP/ping.out")
diag "alpha's ping loop across systemctl reload: $sent sent, $received received"
check "alpha's ping loop lost at most one packet across the reload" \
        test -n "$sent" -a -n "$received" -a "$((${sent:-0} - ${received:-0}))" -le 1 -a "${sent:-0}" -ge 90
check "the reload kept the process (same MainPID)" \
        test "$(ct systemctl show -P MainPID tapotun@corp0.service)" = "$pid1"
check "the STATUS= line counts both clients" \
        wait_for 5 bash -c "nsenter -t $LEADER -a systemctl show -P StatusText tapotun@corp0 | grep -q '^2 of 2 peers connected'"

# The D-Bus side under the real system bus, with the installed policy file.
check "busctl tree shows the daemon's objects on the system bus" \
        bash -c "nsenter -t $LEADER -a busctl tree --list org.tapotun1.corp0 | grep -q '^/org/tapotun1/'"
check "tapotunctl lists the instance" bash -c "nsenter -t $LEADER -a tapotunctl list | grep -q corp0"
check "tapotunctl status corp0 shows both peers connected" \
        bash -c "nsenter -t $LEADER -a tapotunctl status corp0 >$E2E_TMP/ctl.out; grep -q alpha $E2E_TMP/ctl.out && grep -q beta $E2E_TMP/ctl.out && grep -q connected $E2E_TMP/ctl.out"

# --- Reload with a broken file: keeps running, says why.
echo '[ { "name": "corp0", "port": "eighty" } ]' >"$ROOT$CONFDIR/corp0.json"
check "systemctl reload with a broken file returns" ct systemctl reload tapotun@corp0.service
check "the service is still active after a reload with a broken file" \
        bash -c "sleep 1; [ \"\$(nsenter -t $LEADER -a systemctl is-active tapotun@corp0.service)\" = active ]"
check "systemctl status shows that the reload failed" \
        wait_for 5 bash -c "nsenter -t $LEADER -a systemctl status --no-pager tapotun@corp0 | grep -q 'reload failed, running on the previous configuration'"
check "the journal names the bad field" \
        bash -c "nsenter -t $LEADER -a journalctl -b --no-pager -u tapotun@corp0.service | grep -q 'Reload: .*corp0.json: \[0\].port'"
check "both clients still ping" \
        bash -c "ip netns exec $NS_CLI ping -c 2 -W 1 10.10.0.1 && ip netns exec $NS_CLI2 ping -c 2 -W 1 10.10.0.1"
corp_config beta
check "systemctl reload with the good file again returns" ct systemctl reload tapotun@corp0.service
check "a good reload clears the failure from the status" \
        wait_for 5 bash -c "nsenter -t $LEADER -a systemctl show -P StatusText tapotun@corp0 | grep -q -v 'reload failed'"

# --- A broken file at start: ERRNO=.
ct systemctl start tapotun@bad.service >/dev/null 2>&1
check "a broken file at start fails the service with ERRNO=22 (EINVAL)" \
        wait_for 5 bash -c "[ \"\$(nsenter -t $LEADER -a systemctl show -P StatusErrno tapotun@bad.service)\" = 22 ]"
check "the journal names the bad port" \
        bash -c "nsenter -t $LEADER -a journalctl -b --no-pager -u tapotun@bad.service | grep -q 'bad.json: \[0\].port'"
ct systemctl stop tapotun@bad.service >/dev/null 2>&1

# --- A client interface under the same hardening: edge0 in the container reaches a server on the host
# side (in beta's namespace, 10.50.0.0/24).
cat >"$E2E_TMP/srv9.json" <<JSON
[ { "name": "srv9", "port": 9090, "listen": "198.51.100.2", "net": "10.50.0.1/24",
    "clients": [ { "token": "$(printf %s edge-secret | sha1sum | cut -d' ' -f1)", "ip": "10.50.0.2" } ] } ]
JSON
cat >"$ROOT$CONFDIR/edge.json" <<JSON
[ { "name": "edge0", "server": "http://198.51.100.2:9090/", "token": "edge-secret", "reconnect_min": 1 } ]
JSON
e2e_start "$NS_CLI2" srv9 "$E2E_TMP/srv9.json"
wait_for 10 tun_has_addr "$NS_CLI2" srv9 10.50.0.1
check "systemctl start tapotun@edge (a client) succeeds" ct systemctl start tapotun@edge.service
check "the client interface edge0 connects and pings its server" \
        wait_for 20 ip netns exec "$NS_SRV" ping -c 1 -W 1 10.50.0.1
check "its STATUS= line says 1 of 1 peers connected, 0 failing" \
        wait_for 5 bash -c "nsenter -t $LEADER -a systemctl show -P StatusText tapotun@edge | grep -q '^1 of 1 peers connected, 0 failing'"
check "systemctl stop tapotun@edge removes edge0" \
        bash -c "nsenter -t $LEADER -a systemctl stop tapotun@edge.service && ! ip -n $NS_SRV link show edge0 2>/dev/null"

# --- Stop removes everything.
check "before stop: corp0, the client route, the fwmark rule and table 151 are there" \
        bash -c "ip -n $NS_SRV -j link show corp0 >/dev/null && ip -n $NS_SRV -j route show | grep -q '\"dst\":\"10.20.0.0/24\"' && ip -n $NS_SRV -j rule show | grep -q '\"priority\":1500' && [ -n \"\$(ip -n $NS_SRV route show table 151)\" ]"
check "systemctl stop of the socket and the service succeeds" \
        ct systemctl stop tapotun@corp0.socket tapotun@corp0.service
check "stop removed the TUN" bash -c "! nsenter -t $LEADER -a ip -j link show corp0 2>/dev/null"
check "stop removed the client route" bash -c "! nsenter -t $LEADER -a ip -j route show | grep -q '10.20.0.0'"
check "stop removed the fwmark rule" bash -c "! nsenter -t $LEADER -a ip -j rule show | grep -q '\"priority\":1500'"
check "stop emptied table 151" bash -c "[ -z \"\$(nsenter -t $LEADER -a ip -j route show table 151 | tr -d '[]')\" ]"
check "the service ended cleanly (inactive, not failed)" \
        test "$(ct systemctl is-active tapotun@corp0.service)" = inactive

ct journalctl -b --no-pager -u 'tapotun@*' >"$E2E_TMP/journal.log" 2>&1
diag "whole test: $(($(date +%s) - t0)) s"
e2e_finish
exit 0
