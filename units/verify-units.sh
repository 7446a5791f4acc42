#!/bin/bash
# verify-units.sh TAPOTUND UNIT...: `systemd-analyze verify` on the built units. systemd-analyze insists
# that ExecStart= exists, so each is checked in a copy whose ExecStart= runs the freshly built TAPOTUND
# instead of the installed path; everything else is verified as it will be installed.
set -u
tapotund=$1
shift

if ! command -v systemd-analyze >/dev/null; then
        echo "1..0 # SKIP systemd-analyze not found (package systemd): cannot verify the units"
        exit 0
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for u in "$@"; do
        sed -E "s|^ExecStart=[^ ]*/tapotund |ExecStart=$tapotund |" "$u" >"$dir/$(basename "$u")"
done

n=0
for u in "$@"; do
        n=$((n + 1))
        name=$(basename "$u")
        if out=$(systemd-analyze verify --man=no "$dir/$name" 2>&1) && [ -z "$out" ]; then
                echo "ok $n - systemd-analyze verify $name"
        else
                echo "not ok $n - systemd-analyze verify $name"
                echo "$out" | sed 's/^/# /'
        fi
done
echo "1..$n"
