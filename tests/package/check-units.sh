#!/usr/bin/env bash
# check-units.sh UNIT_DIR [BIN_DIR [MAN_DIR]]: check hookmq's systemd units.
#
# Every unit must run as the hookmq user with the hardening the deployment docs promise
# (ProtectSystem=strict, NoNewPrivileges, PrivateTmp, ProtectHome, ReadWritePaths of its state
# directory), Restart=on-failure, ExecReload with SIGHUP, KillSignal=SIGTERM and a
# TimeoutStopSec; the worker is a template whose instance is the consumer, with KillMode=mixed. Then, when
# systemd-analyze is available, `systemd-analyze verify` runs on copies whose /usr/bin/ is
# BIN_DIR (so the binaries exist) with MANPATH=MAN_DIR (so Documentation=man: resolves).
set -euo pipefail

units=${1:?usage: check-units.sh UNIT_DIR [BIN_DIR [MAN_DIR]]}
bin=${2:-}
man=${3:-}
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# the value of Key= in [Service] (last one wins, as in systemd), or empty
key() { awk -v k="$2" -F= '
    /^\[/ { sec = $0; next }
    sec == "[Service]" && $1 == k { sub(/^[^=]*=/, ""); v = $0 }
    END { print v }' "$1"; }
has() { grep -qxF "$2" "$1"; }

declare -A rw=(
    [hookmq-gateway.service]=/var/lib/hookmq/spool
    [hookmq-worker@.service]=/var/lib/hookmq/dedupe
    [hookmq-archive.service]=/var/lib/hookmq/archive
)
for u in "${!rw[@]}"; do
    f=$units/$u
    [ -f "$f" ] || { bad "$u missing in $units"; continue; }
    [ "$(key "$f" User)" = hookmq ] || bad "$u: User is not hookmq"
    [ "$(key "$f" ProtectSystem)" = strict ] || bad "$u: ProtectSystem is not strict"
    [ "$(key "$f" NoNewPrivileges)" = yes ] || bad "$u: NoNewPrivileges is not yes"
    [ "$(key "$f" PrivateTmp)" = yes ] || bad "$u: PrivateTmp is not yes"
    [ "$(key "$f" ProtectHome)" = yes ] || bad "$u: ProtectHome is not yes"
    grep -Eq "^ReadWritePaths=.*${rw[$u]}( |$)" "$f" || bad "$u: ReadWritePaths lacks ${rw[$u]}"
    [ "$(key "$f" Restart)" = on-failure ] || bad "$u: Restart is not on-failure"
    has "$f" 'ExecReload=/bin/kill -HUP $MAINPID' || bad "$u: no ExecReload with SIGHUP"
    [ "$(key "$f" KillSignal)" = SIGTERM ] || bad "$u: KillSignal is not SIGTERM"
    [ -n "$(key "$f" TimeoutStopSec)" ] || bad "$u: no TimeoutStopSec"
    grep -q '^ExecStart=/' "$f" || bad "$u: ExecStart is not an absolute path"
    grep -q '^WantedBy=multi-user.target' "$f" || bad "$u: not installable (WantedBy)"
done
grep -q '^ExecStart=.*hookmq-worker .*--consumer %i' "$units/hookmq-worker@.service" ||
    bad "hookmq-worker@.service: the instance is not the consumer (--consumer %i)"
[ "$(key "$units/hookmq-worker@.service" KillMode)" = mixed ] ||
    bad "hookmq-worker@.service: KillMode is not mixed (a stop would SIGTERM exec children)"
# the console reads the archive and writes nothing: the same hardening, no ReadWritePaths
f=$units/hookmq-console.service
if [ -f "$f" ]; then
    for kv in User=hookmq ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes \
        Restart=on-failure KillSignal=SIGTERM; do
        [ "$(key "$f" "${kv%%=*}")" = "${kv#*=}" ] || bad "hookmq-console.service: ${kv%%=*} is not ${kv#*=}"
    done
    grep -q '^ReadWritePaths=' "$f" && bad "hookmq-console.service: it writes nothing (ReadWritePaths)"
    grep -q '^ExecStart=/usr/bin/hookmq-console$' "$f" || bad "hookmq-console.service: ExecStart"
else
    bad "hookmq-console.service missing in $units"
fi
grep -q '^ExecStart=.*hookmq-archive run' "$units/hookmq-archive.service" ||
    bad "hookmq-archive.service: does not run 'hookmq-archive run'"
grep -Eq '^After=.*time-sync\.target( |$)' "$units/hookmq-archive.service" ||
    bad "hookmq-archive.service: not ordered after time-sync.target (hourly segments)"

if command -v systemd-analyze >/dev/null && [ -n "$bin" ]; then
    tmp=$(mktemp -d /tmp/hq-units.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    for u in "${!rw[@]}" hookmq-console.service; do
        sed "s#/usr/bin/#$bin/#g" "$units/$u" > "$tmp/$u"
    done
    # an instance of the template, as systemd would load it
    cp "$tmp/hookmq-worker@.service" "$tmp/hookmq-worker@billing.service"
    args=()
    [ -n "$man" ] || args+=(--man=no)
    if ! out=$(cd "$tmp" && MANPATH=${man:-} SYSTEMD_LOG_COLOR=0 systemd-analyze verify "${args[@]}" \
            ./hookmq-gateway.service ./hookmq-worker@billing.service ./hookmq-archive.service \
            ./hookmq-console.service 2>&1) ||
        [ -n "$out" ]; then
        bad "systemd-analyze verify: $out"
    else
        echo "systemd-analyze verify: ok"
    fi
else
    echo "systemd-analyze not available (or no BIN_DIR): key checks only"
fi
exit $fail
