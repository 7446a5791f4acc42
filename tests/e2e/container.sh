#!/bin/bash
# A Debian 12 system to boot in a test: a debootstrap tree cached in $CT_CACHE (built once, 60 to 90 s,
# then reused), copied for each test, booted with systemd-nspawn in a network namespace the test made.
# Source it after lib.sh (it uses E2E_TMP and diag); call ct_cleanup from the test's EXIT trap.
#
# CT_PACKAGES is the package list test-systemd.sh builds its tree with, so that both share one cache: a
# tree made for another list is built again, so keep the two lists equal.

CT_CACHE_DIR=/var/cache/tapotun-test
CT_CACHE=$CT_CACHE_DIR/bookworm
# What tapotund, its plugins and the tests need inside the container (procps: /bin/kill for ExecReload=).
CT_PACKAGES=systemd,systemd-sysv,dbus,procps,libh2o0.13,libuv1,libhttp-parser2.9,libcurl4,libjansson4,libmnl0,libssl3,libsystemd0,iproute2,iputils-ping,curl
CT_NSPAWN_PID=
CT_LEADER=
CT_ERROR=

# ct_require: the tools, or a TAP bail-out that says which package to install.
ct_require() {
        local cmd
        for cmd in debootstrap systemd-nspawn nsenter flock; do
                if ! command -v "$cmd" >/dev/null; then
                        echo "Bail out! $cmd not found: install debootstrap and systemd-container (see .ci/packages)"
                        exit 1
                fi
        done
}

# The Debian mirror apt is configured with (deb822 or one-line sources).
ct_debian_mirror() {
        local url
        url=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' |
                grep -E '/debian/?$' | head -1)
        [ -n "$url" ] || url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' | grep -E '/debian/?$' | head -1)
        echo "${url:-http://deb.debian.org/debian}"
}

# ct_remove_tree DIR: debootstrap cut short may leave proc, sys or a bound /dev mounted inside its target.
ct_remove_tree() {
        local m
        for m in $(findmnt -n -l -o TARGET | grep "^$1/" | sort -r); do
                umount -l "$m"
        done
        rm -rf --one-file-system "$1"
}

ct_cache_valid() {
        [ "$(cat "$CT_CACHE/.tapotun-packages" 2>/dev/null)" = "$CT_PACKAGES" ] && [ -x "$CT_CACHE/lib/systemd/systemd" ] &&
                chroot "$CT_CACHE" /bin/sh -c 'command -v ip && command -v ping && command -v curl' >/dev/null 2>&1
}

# ct_build_cache: 0, 1 when debootstrap failed, 2 when no Debian mirror could be reached; CT_ERROR and
# the end of $E2E_TMP/debootstrap.log say why.
ct_build_cache() {
        local mirror new log rc
        mirror=$(ct_debian_mirror)
        new=$CT_CACHE.new.$$
        log=$E2E_TMP/debootstrap.log
        ct_remove_tree "$new"
        diag "building the Debian 12 tree in $CT_CACHE from $mirror"
        # A mirror that does not answer would keep debootstrap's downloads retrying for long.
        timeout 420 debootstrap --variant=minbase --include="$CT_PACKAGES" bookworm "$new" "$mirror" >"$log" 2>&1
        rc=$?
        if [ $rc != 0 ]; then
                ct_remove_tree "$new"
                if [ $rc = 124 ] || ct_network_failure "$log"; then
                        CT_ERROR="debootstrap cannot fetch from $mirror (no Debian mirror reachable)"
                        return 2
                fi
                CT_ERROR="debootstrap failed"
                return 1
        fi
        echo "$CT_PACKAGES" >"$new/.tapotun-packages"
        ct_remove_tree "$CT_CACHE"
        mv "$new" "$CT_CACHE"
}

# ct_network_failure LOG: LOG says that a Debian mirror could not be reached.
ct_network_failure() {
        grep -q -E "Failed getting release|Couldn't download|Temporary failure resolving|Could not resolve|Network is unreachable|Connection refused|Connection timed out|Failed to fetch" "$1"
}

# ct_lock / ct_unlock: the cache (and what a test keeps beside it) is used by one test at a time.
ct_lock() {
        mkdir -p "$CT_CACHE_DIR" && exec 9>"$CT_CACHE_DIR/lock" || { echo "Bail out! cannot create $CT_CACHE_DIR"; exit 1; }
        flock 9
}

ct_unlock() {
        flock -u 9
}

# ct_prepare ROOT: a fresh copy of the cached tree (built first if needed) in ROOT. Returns as
# ct_build_cache does, with CT_ERROR set; a test that has printed no TAP line yet may turn 2 into
# "1..0 # SKIP $CT_ERROR".
ct_prepare() {
        local rc=0
        ct_lock
        ct_cache_valid || ct_build_cache || rc=$?
        if [ $rc = 0 ] && ! ct_cache_valid; then
                CT_ERROR="the Debian tree in $CT_CACHE is unusable"
                rc=1
        fi
        if [ $rc = 0 ] && ! cp -a "$CT_CACHE" "$1"; then
                CT_ERROR="cannot copy $CT_CACHE"
                rc=1
        fi
        ct_unlock
        return $rc
}

# ct_boot ROOT NETNS [NSPAWN_ARGS...]: boots ROOT in the network namespace NETNS (made by the test, e.g.
# with e2e_netns) and waits until its systemd is up; sets CT_NSPAWN_PID and CT_LEADER. Returns non-zero
# when the container did not start; its console is in $E2E_TMP/console.log.
ct_boot() {
        local root=$1 netns=$2
        shift 2
        # CAP_NET_ADMIN: nspawn drops it with --network-namespace-path, and tapotund needs it there.
        systemd-nspawn --boot --register=no --keep-unit --quiet -D "$root" --machine="tt-$E2E_ID" \
                --capability=CAP_NET_ADMIN --network-namespace-path="/run/netns/$netns" "$@" \
                </dev/null >"$E2E_TMP/console.log" 2>&1 &
        CT_NSPAWN_PID=$!
        for _ in $(seq 300); do
                CT_LEADER=$(pgrep -P "$CT_NSPAWN_PID" -x systemd)
                [ -n "$CT_LEADER" ] && break
                sleep 0.1
        done
        [ -n "$CT_LEADER" ]
}

# ct_wait_running: the container's state once systemctl answers (running or degraded), or what it was
# when waiting gave up after 60 s.
ct_wait_running() {
        local state=
        for _ in $(seq 120); do
                state=$(ct systemctl is-system-running 2>/dev/null)
                case $state in
                running | degraded) break ;;
                esac
                sleep 0.5
        done
        echo "$state"
}

# ct COMMAND...: runs COMMAND inside the booted container.
ct() {
        nsenter -t "$CT_LEADER" -a "$@"
}

# ct_shutdown: powers the container off (SIGTERM to nspawn asks its systemd), killing it after 30 s.
ct_shutdown() {
        if [ -n "$CT_NSPAWN_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
                kill -TERM "$CT_NSPAWN_PID"
                for _ in $(seq 300); do
                        kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
                        sleep 0.1
                done
                [ -n "$CT_LEADER" ] && kill -KILL "$CT_LEADER" 2>/dev/null
                kill -KILL "$CT_NSPAWN_PID" 2>/dev/null
                wait "$CT_NSPAWN_PID" 2>/dev/null
        fi
        CT_NSPAWN_PID=
}

ct_cleanup() {
        ct_shutdown
}
