#!/bin/bash
# Runs the whole test suite: a normal build and an AddressSanitizer/UBSan build, every suite in each
# (unit, plugin, root; root needs root and skips loudly otherwise), then every libFuzzer target for
# FUZZ_SECONDS (15) each in a clang build (build-fuzz/; skipped without clang's libFuzzer), which counts as
# one more test. Ends with one line "N passed, N failed[, N skipped]" and exits non-zero when anything
# failed.
set -u
cd "$(dirname "$0")/.."

builds=("build" "build-asan")
setup_args=("" "-Db_sanitize=address,undefined -Db_lundef=false")
status=0

for i in "${!builds[@]}"; do
        dir=${builds[$i]}
        if [ ! -f "$dir/build.ninja" ]; then
                # shellcheck disable=SC2086
                meson setup "$dir" ${setup_args[$i]} || { status=1; continue; }
        fi
        meson compile -C "$dir" || { status=1; continue; }
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
done

# Bounded fuzzing: a crash here is a new input for tests/fuzz/corpus/ (see tests/fuzz/run-fuzzers.sh).
fuzz_result=SKIP
fuzz_probe=$(mktemp)
if command -v clang >/dev/null &&
        echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
        clang -fsanitize=fuzzer -x c - -o "$fuzz_probe" 2>/dev/null; then
        if FUZZ_BUILDDIR=build-fuzz FUZZ_CLEAN=1 CC=clang tests/fuzz/run-fuzzers.sh "${FUZZ_SECONDS:-15}"; then
                fuzz_result=OK
        else
                fuzz_result=FAIL
                status=1
        fi
else
        echo "SKIPPED: fuzzing needs clang that links -fsanitize=fuzzer (Debian: clang, libclang-rt-dev)" >&2
fi
rm -f "$fuzz_probe"

python3 - "$fuzz_result" "${builds[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
fuzz = sys.argv[1]
print(f"fuzzing: {fuzz}")
if fuzz == "OK":
    passed += 1
elif fuzz == "SKIP":
    skipped += 1
else:
    failed += 1
for d in sys.argv[2:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        failed += 1
        print(f"{d}: no test log (build failed)")
        continue
    for line in open(log):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
summary=$?
[ $status -eq 0 ] && [ $summary -eq 0 ]
