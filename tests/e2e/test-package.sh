#!/bin/bash
# The Debian package: builds it from a copy of the source tree (dpkg-buildpackage -us -uc -b, tests not
# run), runs lintian on the source and the binary package and fails on any error, checks what the .deb
# holds, installs it with apt-get into a copy of the cached Debian 12 tree (container.sh), boots that
# with systemd-nspawn in a network namespace made here, and checks that a server and a client instance
# start from the packaged units and plugins, are on the system bus, that the manual pages and the bash
# completion work there, that an upgrade restarts the running instances and that removing the package
# stops them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/container.sh"
e2e_require_root

if [ -n "${TAPOTUN_SANITIZE:-}" ] && [ "$TAPOTUN_SANITIZE" != none ]; then
        echo "1..0 # SKIP sanitizer build ($TAPOTUN_SANITIZE): the package is built without sanitizers; the normal build runs this test"
        exit 0
fi
for cmd in dpkg-buildpackage dh lintian dpkg-deb; do
        if ! command -v "$cmd" >/dev/null; then
                echo "Bail out! $cmd not found: install dpkg-dev, debhelper and lintian (see .ci/packages)"
                exit 1
        fi
done
ct_require
SRC=${TAPOTUN_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
if ! dpkg-checkbuilddeps "$SRC/debian/control" >"$E2E_TMP/builddeps.log" 2>&1; then
        echo "Bail out! the build dependencies of debian/control are not installed (see .ci/packages)"
        sed 's/^/# /' "$E2E_TMP/builddeps.log"
        exit 1
fi

cleanup() {
        ct_cleanup
        e2e_cleanup
}
trap cleanup EXIT

t0=$(date +%s)
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -q DEB_HOST_MULTIARCH)

# --- Build, from a copy: dpkg-buildpackage writes next to the tree, and the tree must hold no build
# directory. In a git checkout the copy is what git knows (committed or not) minus what it ignores.
WORK=$E2E_TMP/pkg
TREE=$WORK/tapotun-$VERSION
mkdir -p "$TREE"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Files deleted but not yet committed are still --cached: left out.
        (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
                while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
                tar --null -T - -cf - | tar -C "$TREE" -xf -)
else
        tar -C "$SRC" --exclude='./build*' --exclude='./_build*' --exclude=./.git -cf - . | tar -C "$TREE" -xf -
fi
check "the source tree is copied with its debian/ directory" test -x "$TREE/debian/rules"

# The source package first, while the tree is clean (a native package is the whole tree).
check "dpkg-source -b makes the source package" \
        bash -c "cd '$WORK' && dpkg-source -b 'tapotun-$VERSION' >'$E2E_TMP/source.log' 2>&1"
tb=$(date +%s)
check "dpkg-buildpackage -us -uc -b builds the package" \
        bash -c "cd '$TREE' && DEB_BUILD_OPTIONS='nocheck parallel=2' dpkg-buildpackage -us -uc -b >'$E2E_TMP/build.log' 2>&1 ||
                { tail -40 '$E2E_TMP/build.log'; exit 1; }"
diag "dpkg-buildpackage took $(($(date +%s) - tb)) s"
DEB=$WORK/tapotun_${VERSION}_$ARCH.deb
CHANGES=$WORK/tapotun_${VERSION}_$ARCH.changes
DSC=$WORK/tapotun_$VERSION.dsc
[ -f "$DEB" ] || { echo "Bail out! no $DEB"; ls "$WORK" | sed 's/^/# /'; exit 1; }

# --- lintian: no error; the warnings and notes are shown.
lintian --info --display-info "$CHANGES" "$DSC" >"$E2E_TMP/lintian.out" 2>&1
lintian_rc=$?
grep -E '^[EWIXP]: ' "$E2E_TMP/lintian.out" | sort -u | sed 's/^/# lintian: /'
check "lintian reports no error for the source and the binary package" \
        bash -c "! grep -q '^E: ' '$E2E_TMP/lintian.out' && [ $lintian_rc != 2 ] || { grep '^E: ' '$E2E_TMP/lintian.out'; tail -5 '$E2E_TMP/lintian.out'; exit 1; }"

# --- What the package holds.
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$E2E_TMP/contents"
# has PATH...: the package holds every PATH.
has() {
        local p
        for p in "$@"; do
                grep -q -x -- "$p" "$E2E_TMP/contents" || { echo "not in the package: $p"; return 1; }
        done
}
check "the .deb has the daemon and tapotunctl" has /usr/sbin/tapotund /usr/bin/tapotunctl
PLUGINDIR=/usr/lib/$MULTIARCH/tapotun/plugins
check "the .deb has the three plugins in $PLUGINDIR" \
        has "$PLUGINDIR/http-server.so" "$PLUGINDIR/http-client.so" "$PLUGINDIR/router.so"
check "tapotund looks for its plugins there (PLUGINDIR)" \
        bash -c "dpkg-deb --fsys-tarfile '$DEB' | tar -xOf - ./usr/sbin/tapotund | grep -a -q -F '$PLUGINDIR'"
check "the .deb has the units in /lib/systemd/system" \
        has /lib/systemd/system/tapotun@.service /lib/systemd/system/tapotun@.socket
check "the .deb has the D-Bus policy in /usr/share/dbus-1/system.d" has /usr/share/dbus-1/system.d/org.tapotun1.conf
check "the .deb has the Russian translation" has /usr/share/locale/ru/LC_MESSAGES/tapotun.mo
check "the .deb has tapotund(8), tapotunctl(1) and tapotun.json(5)" has /usr/share/man/man8/tapotund.8.gz \
        /usr/share/man/man1/tapotunctl.1.gz /usr/share/man/man5/tapotun.json.5.gz
check "the .deb has the bash completion" has /usr/share/bash-completion/completions/tapotunctl
check "the .deb has /etc/tapotun/ and the example configurations" \
        has /etc/tapotun/ /usr/share/doc/tapotun/examples/systemd/vpn0.json
check "nothing else in /etc: the package has no conffiles" bash -c "
        [ -z \"\$(grep '^/etc/.' '$E2E_TMP/contents' | grep -v -x /etc/tapotun/)\" ] && ! dpkg-deb -I '$DEB' conffiles >/dev/null 2>&1"
check "nothing under /usr/local" bash -c "! grep -q '^/usr/local' '$E2E_TMP/contents'"
check "the package depends on the shared libraries of the daemon and plugins" \
        bash -c "dpkg-deb -f '$DEB' Depends | grep -q libh2o && dpkg-deb -f '$DEB' Depends | grep -q libcurl4"

# --- Install into a Debian 12 container. apt-get takes the runtime dependencies, man-db and
# bash-completion from the mirror (lists and downloads are kept in the cache directory for the next run);
# the package's maintainer scripts run there without starting anything (policy-rc.d).
ROOT=$E2E_TMP/root
ct_prepare "$ROOT"
rc=$?
if [ $rc = 2 ]; then
        ok "install and start in a Debian 12 container # SKIP $CT_ERROR"
        e2e_finish
        exit 0
fi
[ $rc = 0 ] || { echo "Bail out! $CT_ERROR"; tail -20 "$E2E_TMP/debootstrap.log" 2>/dev/null | sed 's/^/# /'; exit 1; }
diag "Debian tree ready after $(($(date +%s) - t0)) s"
mkdir -p "$ROOT/var/cache/tapotun-pkg"
cp "$DEB" "$ROOT/var/cache/tapotun-pkg/"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
mkdir -p "$CT_CACHE_DIR/apt-lists/partial" "$CT_CACHE_DIR/apt-archives/partial"
ct_lock
systemd-nspawn --register=no --keep-unit --quiet -D "$ROOT" --machine="tt-apt-$E2E_ID" \
        --bind="$CT_CACHE_DIR/apt-lists:/var/lib/apt/lists" --bind="$CT_CACHE_DIR/apt-archives:/var/cache/apt/archives" \
        -E DEBIAN_FRONTEND=noninteractive /bin/sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        /var/cache/tapotun-pkg/$(basename "$DEB") man-db bash-completion" </dev/null >"$E2E_TMP/apt.log" 2>&1
rc=$?
ct_unlock
rm -f "$ROOT/usr/sbin/policy-rc.d"
if [ $rc != 0 ] && ct_network_failure "$E2E_TMP/apt.log"; then
        ok "install and start in a Debian 12 container # SKIP apt-get cannot reach the Debian mirror"
        tail -5 "$E2E_TMP/apt.log" | sed 's/^/# /'
        e2e_finish
        exit 0
fi
check "apt-get install ./tapotun_${VERSION}_$ARCH.deb installs it with its dependencies" \
        bash -c "[ $rc = 0 ] || { tail -30 '$E2E_TMP/apt.log'; exit 1; }"
diag "installed after $(($(date +%s) - t0)) s"
check "dpkg knows tapotun $VERSION as installed" \
        bash -c "chroot '$ROOT' dpkg-query -W -f '\${Status} \${Version}' tapotun | grep -q -x 'install ok installed $VERSION'"
check "the package installed nothing into /etc/tapotun" bash -c "[ -d '$ROOT/etc/tapotun' ] && [ -z \"\$(ls -A '$ROOT/etc/tapotun')\" ]"

# A server (corp0) and a client of it (edge, interface edge0) in the same container, over loopback: every
# plugin is loaded from the packaged PLUGINDIR, no TAPOTUN_PLUGIN_PATH.
cat >"$ROOT/etc/tapotun/corp0.json" <<JSON
[
  {
    "name": "corp0",
    "port": 8080,
    "net": "10.10.0.1/24",
    "clients": [ { "name": "edge", "token": "$TOKEN_TEST_SHA1", "ip": "10.10.0.2" } ]
  }
]
JSON
cat >"$ROOT/etc/tapotun/edge.json" <<JSON
[ { "name": "edge0", "server": "http://127.0.0.1:8080/", "token": "test", "reconnect_min": 1, "reconnect_max": 2 } ]
JSON
chmod 600 "$ROOT"/etc/tapotun/*.json

e2e_netns "$NS_SRV" || { echo "Bail out! cannot create a network namespace"; exit 1; }
ct_boot "$ROOT" "$NS_SRV" || { echo "Bail out! the container did not start"; tail -20 "$E2E_TMP/console.log" | sed 's/^/# /'; exit 1; }
state=$(ct_wait_running)
diag "container booted after $(($(date +%s) - t0)) s: $state"
check "the container boots (running or degraded)" test "$state" = running -o "$state" = degraded

check "systemctl start tapotun@corp0 succeeds" ct systemctl start tapotun@corp0.service
check "tapotun@corp0 is active (running)" \
        bash -c "nsenter -t $CT_LEADER -a systemctl status --no-pager tapotun@corp0 | grep -q 'Active: active (running)'"
check "its status shows the STATUS= line" \
        bash -c "nsenter -t $CT_LEADER -a systemctl status --no-pager tapotun@corp0 | grep -q 'Status: \"0 of 1 peers connected, 0 failing\"'"
check "corp0 carries 10.10.0.1" tun_has_addr "$NS_SRV" corp0 10.10.0.1
check "systemctl start tapotun@edge (a client of corp0) succeeds" ct systemctl start tapotun@edge.service
check "both sides count the peer as connected" \
        wait_for 30 bash -c "nsenter -t $CT_LEADER -a systemctl show -P StatusText tapotun@edge | grep -q '^1 of 1 peers connected, 0 failing' &&
                nsenter -t $CT_LEADER -a systemctl show -P StatusText tapotun@corp0 | grep -q '^1 of 1 peers connected, 0 failing'"
check "tapotunctl lists both instances on the system bus (the packaged D-Bus policy)" \
        bash -c "nsenter -t $CT_LEADER -a tapotunctl list >'$E2E_TMP/list.out' && grep -q '^corp0 ' '$E2E_TMP/list.out' && grep -q '^edge ' '$E2E_TMP/list.out'"
check "tapotunctl validate checks a file of /etc/tapotun" \
        bash -c "nsenter -t $CT_LEADER -a tapotunctl validate /etc/tapotun/corp0.json | grep -q -x 'corp0: server, 1 client, listening on 127.0.0.1:8080'"

check "man -w tapotund resolves to the packaged page" \
        bash -c "[ \"\$(nsenter -t $CT_LEADER -a man -w tapotund)\" = /usr/share/man/man8/tapotund.8.gz ]"
check "man -w 5 tapotun.json and man -w tapotunctl resolve" \
        bash -c "nsenter -t $CT_LEADER -a man -w 5 tapotun.json && nsenter -t $CT_LEADER -a man -w tapotunctl"
check "man tapotund formats the page" \
        bash -c "nsenter -t $CT_LEADER -a env MANPAGER=cat MANWIDTH=80 man tapotund 2>&1 | grep -q 'carry IP traffic between TUN interfaces'"
check "the bash completion file is installed" test -f "$ROOT/usr/share/bash-completion/completions/tapotunctl"
# What bash-completion loads on demand, as an interactive shell would use it.
completion='source /usr/share/bash-completion/bash_completion; _completion_loader tapotunctl;
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE};
        _tapotunctl tapotunctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"; echo "${COMPREPLY[*]}"'
check "the completion offers the running instances for tapotunctl status" \
        bash -c "[ \"\$(nsenter -t $CT_LEADER -a bash -c '$completion' - tapotunctl status '')\" = 'corp0 edge' ]"
check "the completion offers corp0's peer for tapotunctl show corp0" \
        bash -c "[ \"\$(nsenter -t $CT_LEADER -a bash -c '$completion' - tapotunctl show corp0 e)\" = 'edge' ]"

# --- Upgrade: the same package again restarts the running instances (postinst).
pid_corp0=$(ct systemctl show -P MainPID tapotun@corp0.service)
pid_edge=$(ct systemctl show -P MainPID tapotun@edge.service)
check "reinstalling the package (dpkg -i) succeeds" \
        ct env DEBIAN_FRONTEND=noninteractive dpkg -i "/var/cache/tapotun-pkg/$(basename "$DEB")"
check "the upgrade restarted both instances (new MainPID), which run again" \
        wait_for 20 bash -c "[ \"\$(nsenter -t $CT_LEADER -a systemctl show -P MainPID tapotun@corp0.service)\" != $pid_corp0 ] &&
                [ \"\$(nsenter -t $CT_LEADER -a systemctl show -P MainPID tapotun@edge.service)\" != $pid_edge ] &&
                [ \"\$(nsenter -t $CT_LEADER -a systemctl is-active tapotun@corp0.service tapotun@edge.service | sort -u)\" = active ]"

# --- Removal stops them and the daemon removes its interfaces.
check "apt-get remove tapotun succeeds" ct env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq tapotun
check "the removal stopped both instances" \
        bash -c "! nsenter -t $CT_LEADER -a systemctl is-active -q tapotun@corp0.service && ! nsenter -t $CT_LEADER -a systemctl is-active -q tapotun@edge.service"
check "corp0 and edge0 are gone" bash -c "! ip -n $NS_SRV link show corp0 2>/dev/null && ! ip -n $NS_SRV link show edge0 2>/dev/null"
check "the configuration files are left alone" test -f "$ROOT/etc/tapotun/corp0.json"

ct journalctl -b --no-pager -u 'tapotun@*' >"$E2E_TMP/journal.log" 2>&1
cp "$E2E_TMP/apt.log" "$E2E_TMP/apt-install.log" 2>/dev/null
diag "whole test: $(($(date +%s) - t0)) s"
e2e_finish
exit 0
