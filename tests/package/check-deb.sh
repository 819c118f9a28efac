#!/usr/bin/env bash
# check-deb.sh BUILD_DIR: build the .deb with CPack from BUILD_DIR (into a temporary directory),
# unpack it with dpkg -x and check that what an operator needs is there: the programs (and
# that they run), the plugin header and example plugin, man pages, systemd units (verified
# with systemd-analyze against the unpacked tree, else checked key by key), the example config,
# the samples, the maintainer scripts and the control fields. Exit 0 ok, 1 a check failed,
# 77 skipped (no cpack/dpkg).
set -euo pipefail

build=${1:?usage: check-deb.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
for tool in cpack dpkg dpkg-deb; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool not installed"
        exit 77
    fi
done

tmp=$(mktemp -d /tmp/hq-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

cpack -G DEB -B "$tmp/out" --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1 ||
    { cat "$tmp/cpack.log" >&2; echo "FAIL: cpack" >&2; exit 1; }
deb=$(ls "$tmp"/out/hookmq_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { cat "$tmp/cpack.log" >&2; echo "FAIL: no hookmq_*.deb produced" >&2; exit 1; }
echo "package: $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# ---- control fields and maintainer scripts ----
ctl=$(dpkg-deb -f "$deb")
grep -qx 'Package: hookmq' <<<"$ctl" || bad "Package is not hookmq"
grep -q '^Maintainer: .*@' <<<"$ctl" || bad "no Maintainer"
version=$(dpkg-deb -f "$deb" Version)
deps=$(dpkg-deb -f "$deb" Depends)
# the library packages differ between Debian releases (dpkg-shlibdeps names this system's)
for d in librabbitmq4 libcivetweb1 libjson-c5 'libconfig(9|11)' 'libssl3(t64)?' 'libcurl4(t64)?' \
         libzstd1 adduser; do
    grep -qE "(^|, )$d( |,|$)" <<<"$deps" || bad "Depends lacks $d ($deps)"
done
# ... and are installable here: each library the package depends on is installed on the system
# that built it (a package built on Debian 13 must not ask for Debian 12's libconfig9)
for d in $(sed -E 's/\([^)]*\)//g; s/[|,]/ /g' <<<"$deps"); do
    [ "$d" = adduser ] && continue
    dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q 'install ok installed' ||
        dpkg-query -W -f='${Provides}\n' 2>/dev/null | grep -qE "(^|, )$d( |,|$)" ||
        bad "Depends names $d, which is not installed on this system ($deps)"
done
dpkg-deb -e "$deb" "$tmp/control"
for s in postinst prerm postrm; do
    [ -x "$tmp/control/$s" ] || { bad "$s missing or not executable"; continue; }
    sh -n "$tmp/control/$s" || bad "$s: syntax error"
done
grep -q 'adduser --system' "$tmp/control/postinst" || bad "postinst does not create the hookmq user"
grep -q '/var/lib/hookmq/spool' "$tmp/control/postinst" || bad "postinst does not create the state dirs"
grep -qx '/etc/hookmq/hookmq.conf.example' "$tmp/control/conffiles" || bad "conffiles"

# ---- contents ----
root=$tmp/root
dpkg -x "$deb" "$root"
expect=(
    usr/bin/hookmq-gateway usr/bin/hookmq-dlx usr/bin/hookmq-send
    usr/include/hookmq/handler.h
    usr/share/man/man5/hookmq.conf.5
    usr/lib/systemd/system/hookmq-gateway.service
    usr/lib/systemd/system/hookmq-worker@.service
    usr/lib/systemd/system/hookmq-archive.service
    usr/lib/systemd/system/hookmq-console.service
    usr/bin/hookmq-console
    etc/hookmq/hookmq.conf.example
    usr/share/hookmq/samples/stripe/invoice.payment_failed.json
    usr/share/hookmq/samples/github/push.json
    usr/share/hookmq/samples/shopify/orders-create.json
    usr/share/hookmq/samples/slack/event_callback.json
    usr/share/doc/hookmq/README.md
)
for p in gateway dlx send worker archive replay step console; do
    expect+=("usr/share/man/man1/hookmq-$p.1")
done
# programs and the example plugin that this build has
for b in worker/hookmq-worker archive/hookmq-archive replay/hookmq-replay worker/hookmq-step; do
    [ -x "$build/$b" ] && expect+=("usr/bin/${b#*/}")
done
[ -f "$build/worker/examples/hello.so" ] && expect+=(usr/lib/hookmq/examples/hello.so)
for f in nginx-hookmq.conf grafana/hookmq-dashboard.json prometheus/hookmq-alerts.yml; do
    [ -f "$src/conf/$f" ] && expect+=("usr/share/hookmq/$f")
done
for f in "${expect[@]}"; do
    [ -e "$root/$f" ] || bad "missing /$f"
done
# nothing outside the usual places, and no build paths or test programs
while IFS= read -r f; do
    case "$f" in
    ./usr/bin/hookmq-* | ./usr/include/hookmq/* | ./usr/lib/hookmq/* | ./usr/lib/systemd/system/* | \
        ./usr/share/man/* | ./usr/share/hookmq/* | ./usr/share/doc/hookmq/* | ./etc/hookmq/*) ;;
    *) bad "unexpected file $f" ;;
    esac
done < <(cd "$root" && find . -type f)

# the unpacked programs run (against the system's libraries) and agree on the version
for b in "$root"/usr/bin/hookmq-*; do
    out=$("$b" --version 2>&1) || bad "$(basename "$b") --version failed"
    [ "$out" = "$(basename "$b") $version" ] || bad "$(basename "$b") --version says '$out', package $version"
    "$b" --help >/dev/null 2>&1 || bad "$(basename "$b") --help failed"
done
# an installed hookmq-send finds its samples next to itself (the package's /usr/share)
out=$(HOOKMQ_SAMPLES_DIR= "$root/usr/bin/hookmq-send" --source nope --sample push -c /nonexistent 2>&1 || true)
grep -q 'cannot read' <<<"$out" || bad "hookmq-send with a missing config: $out"

# ---- systemd units ----
"$src/tests/package/check-units.sh" "$root/usr/lib/systemd/system" "$root/usr/bin" \
    "$root/usr/share/man" || fail=1

if [ $fail -ne 0 ]; then
    echo "package check FAILED" >&2
    exit 1
fi
echo "package check ok: ${#expect[@]} expected files present"
