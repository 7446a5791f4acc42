#!/bin/bash
# test-man.sh SOURCE_ROOT PAGE...: the manual pages format without a groff warning, and say what the
# code has: every configuration field of daemon/conf.c in tapotun.json(5), every tapotunctl command and
# option in tapotunctl(1) and in the bash completion, every tapotund option in tapotund(8).
set -u
src=$1
shift
n=0
failed=0

result() {
        local status=$1 desc=$2
        n=$((n + 1))
        if [ "$status" = 0 ]; then
                echo "ok $n - $desc"
        else
                failed=$((failed + 1))
                echo "not ok $n - $desc"
        fi
}

page_of() {
        local p
        for p in "${pages[@]}"; do
                [ "$(basename "$p")" = "$1" ] && echo "$p"
        done
}
pages=("$@")

if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
        echo "1..0 # SKIP man or groff is not installed (packages man-db, groff-base)"
        exit 0
fi

for p in "${pages[@]}"; do
        # man(1) formats for a terminal and prints groff's warnings (-ww) on stderr; the text goes away.
        out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null)
        [ -z "$out" ]
        result $? "$(basename "$p") formats without warnings"
        [ -n "$out" ] && echo "$out" | sed 's/^/# /'
done

json5=$(page_of tapotun.json.5)
ctl1=$(page_of tapotunctl.1)
daemon8=$(page_of tapotund.8)
completion=$src/completion/tapotunctl

# Field tables of conf.c: { "name", MODE_ANY }, one per line.
fields=$(sed -n 's/^[[:space:]]*{ "\([a-z_0-9]*\)", MODE_[A-Z]* },$/\1/p' "$src/daemon/conf.c" | sort -u)
missing=
for f in $fields; do
        grep -q "^\.B $f\$" "$json5" || missing+=" $f"
done
[ -n "$fields" ] && [ -z "$missing" ]
result $? "tapotun.json(5) has a .TP entry for each of the $(echo "$fields" | wc -w) fields of conf.c"
[ -n "$missing" ] && echo "# missing:$missing"

# tapotunctl's verbs: { "list", 0, 0, verb_list, ...
verbs=$(sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [0-9]*, [0-9]*, verb_.*/\1/p' "$src/dbus/tapotunctl.c")
missing=
for v in $verbs; do
        grep -q "^\\\\fB${v//-/\\\\-}\\\\fP\|^\.B ${v//-/\\\\-}\$" "$ctl1" || missing+=" $v"
done
[ -n "$verbs" ] && [ -z "$missing" ]
result $? "tapotunctl(1) describes each of the $(echo "$verbs" | wc -w) commands of tapotunctl.c"
[ -n "$missing" ] && echo "# missing:$missing"

cverbs=$(sed -n "s/^[[:space:]]*local verbs='\(.*\)'$/\1/p" "$completion")
[ -n "$verbs" ] && [ "$(echo "$verbs" | sort | tr '\n' ' ')" = "$(echo "$cverbs" | tr ' ' '\n' | sort | tr '\n' ' ')" ]
result $? "the bash completion offers exactly the commands of tapotunctl.c"

# Long options: { "help", no_argument, ...
options_of() {
        sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", \(no\|required\|optional\)_argument,.*/\1/p' "$1"
}
missing=
for o in $(options_of "$src/dbus/tapotunctl.c"); do
        grep -q -- "\\\\-\\\\-${o//-/\\\\-}" "$ctl1" || missing+=" --$o(man)"
        grep -q -- "--$o" "$completion" || missing+=" --$o(completion)"
done
[ -z "$missing" ]
result $? "tapotunctl(1) and the completion have every option of tapotunctl.c"
[ -n "$missing" ] && echo "# missing:$missing"

missing=
for o in $(options_of "$src/daemon/main.c"); do
        grep -q -- "\\\\-\\\\-${o//-/\\\\-}" "$daemon8" || missing+=" --$o"
done
[ -z "$missing" ]
result $? "tapotund(8) has every option of main.c"
[ -n "$missing" ] && echo "# missing:$missing"

# The environment variables the daemon reads.
missing=
for e in $( (grep -h -o 'getenv("[A-Z_]*")' "$src"/daemon/*.c | sed 's/.*"\(.*\)".*/\1/'
        sed -n 's/^#define [A-Z_]*_ENV "\([A-Z_]*\)".*/\1/p' "$src"/daemon/*.h "$src"/dbus/*.h) | sort -u); do
        grep -q "$e" "$daemon8" || missing+=" $e"
done
[ -z "$missing" ]
result $? "tapotund(8) names every environment variable the daemon reads"
[ -n "$missing" ] && echo "# missing:$missing"

echo "1..$n"
[ "$failed" = 0 ]
