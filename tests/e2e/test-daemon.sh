#!/bin/bash
# The daemon's kernel side, in a fresh namespace: a server with IPv4+IPv6 addresses, extra ips, client
# routes and fwmark policy routing creates exactly that (checked with `ip -j`), and SIGTERM removes
# all of it again, but nothing the administrator had before. A bad configuration exits 1 naming each
# problem.
source "$(dirname "$0")/lib.sh"
e2e_require_root
trap e2e_cleanup EXIT

e2e_netns "$NS_SRV" || { echo "Bail out! cannot create namespaces"; exit 1; }
NS=$NS_SRV
cat >"$E2E_TMP/server.json" <<JSON
[
  {
    "name": "corp0",
    "port": 8080,
    "net": ["10.10.0.1/24", "fd00:10::1/64"],
    "mtu": 1400,
    "ips": ["10.10.0.254/24"],
    "routes": ["10.99.0.0/16"],
    "mark": { "value": 51, "table": 151, "priority": 1500 },
    "clients": [
      { "token": "$TOKEN_TEST_SHA1", "ip": ["10.10.0.2", "fd00:10::2"], "routes": ["10.20.0.0/24", "fd00:20::/64"] }
    ]
  }
]
JSON

# The administrator already has the IPv4 rule the daemon wants: the daemon uses it and must leave it.
ip -n "$NS" rule add fwmark 51 table 151 pref 1500

# Started with the usual soft limit of open files, below the hard one: the daemon raises it.
ulimit -Sn 1024
e2e_start "$NS" server "$E2E_TMP/server.json"
PID=$E2E_LAST_PID
check "corp0 comes up with 10.10.0.1/24" wait_for 10 tun_has_addr "$NS" corp0 10.10.0.1
j() { ip -n "$NS" -j "$@"; }
check "IPv6 address fd00:10::1/64" bash -c "ip -n $NS -j addr show dev corp0 | grep -q '\"local\":\"fd00:10::1\",\"prefixlen\":64'"
check "extra address 10.10.0.254/24" tun_has_addr "$NS" corp0 10.10.0.254
check "MTU 1400 and up" bash -c "ip -n $NS -j link show corp0 | grep -q '\"mtu\":1400' && ip -n $NS -j link show corp0 | grep -q '\"UP\"'"
check "client route 10.20.0.0/24 in the main table" bash -c "ip -n $NS -j route show | grep -q '\"dst\":\"10.20.0.0/24\",\"dev\":\"corp0\"'"
check "client route fd00:20::/64 in the main table" bash -c "ip -n $NS -j -6 route show | grep -q '\"dst\":\"fd00:20::/64\",\"dev\":\"corp0\"'"
check "default route via corp0 in table 151" bash -c "ip -n $NS -j route show table 151 | grep -q '\"dst\":\"default\",\"dev\":\"corp0\"'"
check "IPv4 rule fwmark 51 lookup 151 pref 1500" bash -c "ip -n $NS -j rule show | grep -q '\"priority\":1500,.*\"fwmark\":\"0x33\",\"table\":\"151\"'"
check "IPv6 rule fwmark 51 lookup 151 pref 1500" bash -c "ip -n $NS -j -6 rule show | grep -q '\"priority\":1500,.*\"fwmark\":\"0x33\",\"table\":\"151\"'"
check "the existing IPv4 rule is reused, not duplicated" bash -c "[ \$(ip -n $NS rule show | grep -c '^1500:') = 1 ]"
check "TUN offloads on (TSO)" bash -c "ip netns exec $NS ethtool -k corp0 | grep -q 'tcp-segmentation-offload: on'"
check "the open-files limit is raised to the hard limit (two sockets per client)" \
        awk '/^Max open files/ { exit !($4 == $5 && $4 > 1024) }' "/proc/$PID/limits"

j rule show >"$E2E_TMP/rules.before"
e2e_stop "$PID" TERM
rc=$?
check "exits 0 on SIGTERM" test "$rc" = 0
check "corp0 is gone" bash -c "! ip -n $NS link show corp0 2>/dev/null"
check "its IPv6 rule is gone" bash -c "! ip -n $NS -j -6 rule show | grep -q '\"priority\":1500'"
check "the client routes are gone" bash -c "! ip -n $NS route show | grep -q 10.20.0.0"
check "table 151 is empty" bash -c "[ -z \"\$(ip -n $NS route show table 151)\" ]"
check "the administrator's IPv4 rule is still there" bash -c "ip -n $NS -j rule show | grep -q '\"priority\":1500,.*\"fwmark\":\"0x33\"'"

# A bad configuration: exit status 1, every problem named.
cat >"$E2E_TMP/bad.json" <<JSON
[ { "name": "corp0", "port": 70000, "net": "10.10.0.1/24",
    "clients": [ { "token": "ABC", "ip": "10.11.0.2" } ] } ]
JSON
ip netns exec "$NS" "$TAPOTUND" "$E2E_TMP/bad.json" >"$E2E_TMP/bad.out" 2>&1
check "bad config exits 1" test $? = 1
check "names the bad port" grep -q '\[0\].port' "$E2E_TMP/bad.out"
check "names the bad token" grep -q '\[0\].clients\[0\].token' "$E2E_TMP/bad.out"
check "names the client ip outside net" grep -q '\[0\].clients\[0\].ip' "$E2E_TMP/bad.out"
check "creates nothing" bash -c "! ip -n $NS link show corp0 2>/dev/null"

e2e_finish
