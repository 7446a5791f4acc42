#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang in a build directory of their own and runs each one for
# SECONDS (default 60) on a scratch copy of its seed corpus. Prints executions and crashes per target
# and in total, and exits non-zero if any target crashed; add each crashing input to
# tests/fuzz/corpus/<target>/ (replayed by the unit suite from then on).
#
# usage: tests/fuzz/run-fuzzers.sh [SECONDS]
# environment: FUZZ_BUILDDIR (default ${TMPDIR:-/tmp}/tapotun-fuzz-build), CC (default clang),
#              FUZZ_TARGETS (default: all), FUZZ_CLEAN=1 (remove the scratch directory when nothing crashed)
set -eu

seconds=${1:-60}
case $seconds in
        '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${FUZZ_BUILDDIR:-${TMPDIR:-/tmp}/tapotun-fuzz-build}
targets="${FUZZ_TARGETS:-fuzz-frame fuzz-tun-conf fuzz-wire-prefixes fuzz-conf fuzz-request-head fuzz-client-headers}"

if [ ! -f "$builddir/build.ninja" ]; then
        CC=${CC:-clang} meson setup "$builddir" "$srcdir" -Dfuzz=enabled
fi
# Only the fuzz targets: nothing else of the tree needs to build for this.
ninja -C "$builddir" $(for t in $targets; do printf 'tests/fuzz/%s ' "$t"; done)

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tapotun-fuzz.XXXXXX")
status=0
total_execs=0
total_crashes=0

for t in $targets; do
        mkdir -p "$workdir/$t/corpus" "$workdir/$t/crashes"
        cp "$srcdir/tests/fuzz/corpus/$t/"* "$workdir/$t/corpus/"

        # Let the fuzzer grow inputs past the default 4 KiB where the limits are larger: frames reach
        # 65549 bytes, request heads get 431 past 16 KiB, the client takes 8 KiB of response head.
        case $t in
                fuzz-frame) extra=-max_len=140000 ;;
                fuzz-request-head) extra=-max_len=40000 ;;
                fuzz-client-headers) extra=-max_len=16384 ;;
                *) extra= ;;
        esac

        rc=0
        "$builddir/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
                -artifact_prefix="$workdir/$t/crashes/" $extra "$workdir/$t/corpus" \
                >"$workdir/$t/log" 2>&1 || rc=$?

        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$workdir/$t/log" | tail -n 1)
        if [ -z "$execs" ]; then
                # Stopped by a crash before the final statistics: take the last progress line.
                execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$workdir/$t/log" | tail -n 1)
        fi
        crashes=$(find "$workdir/$t/crashes" -type f | wc -l)
        printf '%-20s %12s executions  %s crashes  exit %s\n' "$t" "${execs:-?}" "$crashes" "$rc"
        total_execs=$((total_execs + ${execs:-0}))
        total_crashes=$((total_crashes + crashes))

        if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
                status=1
                tail -n 30 "$workdir/$t/log"
                find "$workdir/$t/crashes" -type f
        fi
done

printf '%-20s %12s executions  %s crashes\n' total "$total_execs" "$total_crashes"
if [ "$status" -eq 0 ] && [ "${FUZZ_CLEAN:-0}" = 1 ]; then
        rm -rf "$workdir"
else
        echo "logs, grown corpora and crashing inputs: $workdir"
fi
exit $status
