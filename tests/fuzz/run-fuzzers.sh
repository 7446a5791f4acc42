#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang in a build directory of their own and runs each one for
# SECONDS (default 60) on a scratch copy of its seed corpus. Prints executions and crashes per target
# and exits non-zero if any target crashed; add each crashing input to tests/fuzz/corpus/<target>/.
#
# usage: tests/fuzz/run-fuzzers.sh [SECONDS]
# environment: FUZZ_BUILDDIR (default ${TMPDIR:-/tmp}/tapotun-fuzz-build), CC (default clang)
set -eu

seconds=${1:-60}
case $seconds in
        '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${FUZZ_BUILDDIR:-${TMPDIR:-/tmp}/tapotun-fuzz-build}
targets="${FUZZ_TARGETS:-fuzz-frame fuzz-tun-conf fuzz-wire-prefixes fuzz-conf}"

if [ ! -f "$builddir/build.ninja" ]; then
        CC=${CC:-clang} meson setup "$builddir" "$srcdir" -Dfuzz=enabled
fi
# Only the fuzz targets: nothing else of the tree needs to build for this.
ninja -C "$builddir" $(for t in $targets; do printf 'tests/fuzz/%s ' "$t"; done)

workdir=$(mktemp -d "${TMPDIR:-/tmp}/tapotun-fuzz.XXXXXX")
status=0

for t in $targets; do
        mkdir -p "$workdir/$t/corpus" "$workdir/$t/crashes"
        cp "$srcdir/tests/fuzz/corpus/$t/"* "$workdir/$t/corpus/"

        # Frames reach 65549 bytes; let the fuzzer grow inputs past the default 4 KiB.
        extra=
        [ "$t" = fuzz-frame ] && extra=-max_len=140000

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

        if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
                status=1
                tail -n 30 "$workdir/$t/log"
                find "$workdir/$t/crashes" -type f
        fi
done

echo "logs, grown corpora and crashing inputs: $workdir"
exit $status
