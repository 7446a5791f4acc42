#!/bin/bash
# test-completion.sh COMPLETION TAPOTUNCTL: the bash completion of tapotunctl, driven the way bash drives
# it (COMP_WORDS, COMP_CWORD, then _tapotunctl), with bash-completion loaded. Instances and peers come
# from a stand-in tapotunctl on PATH that prints tables the way the real one does; the real one, pointed
# at a bus that does not exist, must make them complete to nothing, quietly.
set -u
completion=$1
real_tapotunctl=$2
n=0
failed=0

if [ ! -r /usr/share/bash-completion/bash_completion ]; then
        echo "1..0 # SKIP bash-completion is not installed (package bash-completion, see .ci/packages)"
        exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/files"
touch "$tmp/files/corp0.json" "$tmp/files/edge.json"

# The stand-in: "list" and "peers INSTANCE" tables as tapotunctl prints them in the C locale; it logs
# its arguments so that the test sees which bus options were passed on.
cat >"$tmp/bin/tapotunctl" <<'SH'
#!/bin/bash
echo "$*" >>"$(dirname "$0")/calls"
args=()
for a in "$@"; do
        case $a in
        --bus-address=unix:path=/nonexistent) exec "$REAL_TAPOTUNCTL" "$@" ;;
        -*) ;;
        *) args+=("$a") ;;
        esac
done
case ${args[0]:-list}/${args[1]:-} in
list/)
        printf 'INSTANCE  TUNNELS  PEERS  CONNECTED  CONFIGURATION\n'
        printf 'corp0           1      2          1  /etc/tapotun/corp0.json\n'
        printf 'edge            1      1          0  /etc/tapotun/edge.json\n\n2 instances listed.\n'
        ;;
peers/corp0)
        printf 'TUNNEL  PEER    STATE         REMOTE          SINCE  LAST SEEN    RX    TX\n'
        printf 'corp0   site-a  connected     192.0.2.2:4711  1min   1s ago     10 KiB  2 KiB\n'
        printf 'corp0   site-b  disconnected  -               -      -           0 B    0 B\n\n2 peers listed.\n'
        ;;
*) echo "stand-in tapotunctl: unexpected arguments $*" >&2; exit 1 ;;
esac
SH
chmod +x "$tmp/bin/tapotunctl"

# complete WORDS...: the candidates for the last word (may be empty), sorted, on one line.
complete_words() {
        (
                cd "$tmp/files" || exit 1
                export PATH="$tmp/bin:$PATH" REAL_TAPOTUNCTL="$real_tapotunctl"
                # shellcheck disable=SC1091
                source /usr/share/bash-completion/bash_completion
                # shellcheck disable=SC1090
                source "$completion"
                COMP_WORDS=("$@")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMP_LINE="$*"
                COMP_POINT=${#COMP_LINE}
                _tapotunctl tapotunctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
                printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
        ) 2>"$tmp/stderr"
}

# expect DESCRIPTION EXPECTED WORDS...
expect() {
        local desc=$1 want=$2 got
        shift 2
        got=$(complete_words "$@")
        n=$((n + 1))
        if [ "$got" = "$want" ] && [ ! -s "$tmp/stderr" ]; then
                echo "ok $n - $desc"
        else
                failed=$((failed + 1))
                echo "not ok $n - $desc"
                echo "# words: $*"
                echo "# expected: '$want'"
                echo "# got:      '$got'"
                sed 's/^/# stderr: /' "$tmp/stderr"
        fi
}

expect "every verb after tapotunctl" \
        "disconnect hash-token list peers reload show status validate" tapotunctl ""
expect "verbs by prefix" "peers" tapotunctl pe
expect "options, --json included, before a verb" \
        "--bus-address= --help --json --system --version -h" tapotunctl -
expect "--json is offered for a verb that prints JSON" "--json" tapotunctl status --j
expect "--json is not offered for a verb that does not" "" tapotunctl reload --j
expect "instances for status, from tapotunctl list" "corp0 edge" tapotunctl status ""
expect "instances by prefix for reload" "edge" tapotunctl reload e
expect "nothing after the one argument of reload" "" tapotunctl reload corp0 ""
expect "peers of the instance for disconnect, as PEER and TUNNEL/PEER" \
        "corp0/site-a corp0/site-b site-a site-b" tapotunctl disconnect corp0 ""
expect "peers by prefix for show, after options" "site-a site-b" tapotunctl --json show corp0 si
expect "files for validate" "corp0.json edge.json" tapotunctl validate ""
expect "- for hash-token" "-" tapotunctl hash-token ""
expect "the verb is found after --bus-address ADDR" "corp0 edge" \
        tapotunctl --bus-address unix:path=/run/other status ""
n=$((n + 1))
if grep -q -- '--bus-address=unix:path=/run/other list' "$tmp/bin/calls" 2>/dev/null; then
        echo "ok $n - the bus address of the command line is passed on to tapotunctl list"
else
        failed=$((failed + 1))
        echo "not ok $n - the bus address of the command line is passed on to tapotunctl list"
        sed 's/^/# call: /' "$tmp/bin/calls"
fi
expect "no bus: the real tapotunctl fails and instances complete to nothing, quietly" "" \
        tapotunctl --bus-address=unix:path=/nonexistent status ""
expect "no bus: peers complete to nothing, quietly" "" \
        tapotunctl --bus-address=unix:path=/nonexistent show corp0 ""

echo "1..$n"
[ "$failed" = 0 ]
