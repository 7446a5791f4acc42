#!/bin/bash
# Translations: po/ru.po translates every message the sources mark with _() or N_() (none untranslated,
# none fuzzy), every source file with such a message is in po/POTFILES, and tapotunctl speaks Russian in a
# ru_RU.UTF-8 locale (generated here, privately, when the system has none).
set -u
: "${TAPOTUN_SOURCE_ROOT:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${TAPOTUN_BUILD_ROOT:=$TAPOTUN_SOURCE_ROOT/build}"
cd "$TAPOTUN_SOURCE_ROOT" || exit 1
TMP=$(mktemp -d /tmp/tapotun-po.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
N=0
FAILED=0

ok() {
        N=$((N + 1))
        echo "ok $N - $*"
}
not_ok() {
        N=$((N + 1))
        FAILED=$((FAILED + 1))
        echo "not ok $N - $*"
}
# check DESCRIPTION COMMAND...
check() {
        local desc=$1
        shift
        if "$@" >"$TMP/out" 2>&1; then
                ok "$desc"
        else
                not_ok "$desc"
                sed 's/^/# /' "$TMP/out" | head -40
        fi
}

for tool in msgfmt msgcmp xgettext; do
        if ! command -v "$tool" >/dev/null; then
                echo "1..0 # SKIP $tool is missing (package gettext)"
                echo "SKIPPED: $0 needs $tool from the package gettext" >&2
                exit 0
        fi
done

check "LINGUAS lists ru" grep -qx ru po/LINGUAS

check "ru.po compiles (msgfmt --check)" msgfmt --check -o "$TMP/ru.mo" po/ru.po
stats=$(LC_ALL=C msgfmt --statistics -o /dev/null po/ru.po 2>&1)
echo "# msgfmt --statistics: $stats"
check "ru.po has no untranslated and no fuzzy message" \
        bash -c "grep -Eq '^[0-9]+ translated messages?\\.\$' <<<'$stats'"

# The same extraction as i18n.gettext(preset: 'glib') in po/meson.build.
check "xgettext extracts the messages of po/POTFILES" \
        xgettext --from-code=UTF-8 --add-comments --keyword=_ --keyword=N_ --keyword=C_:1c,2 \
        --keyword=NC_:1c,2 --flag=N_:1:pass-c-format -o "$TMP/tapotun.pot" -D . -f po/POTFILES
check "ru.po translates every extracted message (msgcmp)" msgcmp po/ru.po "$TMP/tapotun.pot"

missing=$(grep -lE '\b(N_|_)\("' daemon/*.c dbus/*.c | grep -vxF -f po/POTFILES)
check "every source file with translatable messages is in po/POTFILES" test -z "$missing"
[ -z "$missing" ] || echo "# not in po/POTFILES: $missing"

# Russian output needs the locale; a private one from the "locales" package's sources will do.
if locale -a 2>/dev/null | grep -qix 'ru_RU.utf-\?8'; then
        echo "# using the system's ru_RU.UTF-8 locale"
elif command -v localedef >/dev/null && [ -f /usr/share/i18n/locales/ru_RU ] && mkdir -p "$TMP/locale" &&
        localedef -i ru_RU -f UTF-8 "$TMP/locale/ru_RU.UTF-8" 2>"$TMP/localedef.err"; then
        export LOCPATH="$TMP/locale"
        echo "# generated ru_RU.UTF-8 in $LOCPATH (the system has no such locale)"
else
        sed "s/^/# localedef: /" "$TMP/localedef.err" 2>/dev/null
        echo "# ru_RU.UTF-8 is missing and cannot be generated: install the package \"locales\" and run" \
             "\"localedef -i ru_RU -f UTF-8 ru_RU.UTF-8\"" >&2
        N=$((N + 1))
        echo "ok $N # SKIP tapotunctl in Russian: no ru_RU.UTF-8 locale (package locales)"
        echo "1..$N"
        [ "$FAILED" = 0 ]
        exit
fi
export LANG=ru_RU.UTF-8 LC_ALL=ru_RU.UTF-8 TAPOTUN_LOCALEDIR="$TAPOTUN_BUILD_ROOT/po"

"$TAPOTUN_BUILD_ROOT/dbus/tapotunctl" --help >"$TMP/help.out" 2>&1
sed 's/^/#   /' "$TMP/help.out" | head -8
check "tapotunctl --help is in Russian" \
        bash -c "grep -q '^Команды:' '$TMP/help.out' && grep -q 'Показать эту справку' '$TMP/help.out'"
echo '[{"name":"tun0","prot":8080}]' >"$TMP/bad.json"
"$TAPOTUN_BUILD_ROOT/dbus/tapotunctl" validate "$TMP/bad.json" >"$TMP/validate.out" 2>&1
check "configuration errors are in Russian" \
        grep -q 'неизвестное поле "prot"; возможно, имелось в виду "port"?' "$TMP/validate.out"

echo "1..$N"
[ "$FAILED" = 0 ]
