#!/usr/bin/env bash
# check-man.sh SOURCE_DIR BUILD_DIR: every man page renders without a warning, and every
# hookmq program the build has comes with --help, --version and a man page.
# Exit 0 ok, 1 a check failed, 77 skipped (neither man nor groff installed).
set -euo pipefail

src=${1:?usage: check-man.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: check-man.sh SOURCE_DIR BUILD_DIR}
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

have_man=0 have_groff=0
command -v man >/dev/null && have_man=1
command -v groff >/dev/null && have_groff=1
if [ $have_man -eq 0 ] && [ $have_groff -eq 0 ]; then
    echo "SKIP: neither man (man-db) nor groff installed (apt-get install man-db groff-base)"
    exit 77
fi

pages=("$src"/docs/man/*.[15])
[ ${#pages[@]} -eq 9 ] || bad "expected 9 man pages, found ${#pages[@]}"
for p in "${pages[@]}"; do
    if [ $have_groff -eq 1 ]; then
        out=$(groff -man -Tutf8 -ww -z "$p" 2>&1) || bad "$p: groff failed"
        [ -z "$out" ] || bad "$p: groff: $out"
    fi
    if [ $have_man -eq 1 ]; then
        out=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null) || bad "$p: man failed"
        [ -z "$out" ] || bad "$p: man: $out"
        # the NAME line is what apropos/whatis index
        name=$(basename "$p"); name=${name%.*}
        MANWIDTH=80 man -l "$p" 2>/dev/null | grep -Eq "^ *${name//./\\.} +- " || bad "$p: no NAME line for $name"
    fi
    grep -q '^\.SH EXIT STATUS' "$p" || [[ $p == *.5 ]] || bad "$p: no EXIT STATUS section"
done

# every built program: --help (exit 0, a usage line), --version, exit 2 on a bad option,
# and a man page
for b in gateway/hookmq-gateway dlx/hookmq-dlx tools/hookmq-send worker/hookmq-worker worker/hookmq-step \
    archive/hookmq-archive replay/hookmq-replay console/hookmq-console; do
    exe=$build/$b
    name=$(basename "$b")
    if [ ! -x "$exe" ]; then
        echo "note: $name not built, skipped"
        continue
    fi
    [ -f "$src/docs/man/$name.1" ] || bad "$name has no man page"
    out=$("$exe" --help 2>&1) || bad "$name --help: exit $?"
    grep -qi 'usage' <<<"$out" || bad "$name --help prints no usage"
    grep -qi 'exit' <<<"$out" || bad "$name --help does not document its exit codes"
    out=$("$exe" --version 2>&1) || bad "$name --version: exit $?"
    [[ $out == "$name "* ]] || bad "$name --version: '$out'"
    set +e
    "$exe" --no-such-option >/dev/null 2>&1
    rc=$?
    set -e
    [ $rc -eq 2 ] || bad "$name --no-such-option: exit $rc, expected 2"
done
exit $fail
