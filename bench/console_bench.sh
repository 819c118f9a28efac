#!/usr/bin/env bash
# bench/console_bench.sh: hookmq-console over 1,000,000 archived events (issue 13's targets;
# see bench/README.md, results in docs/performance.md).
#
#   1. hq_archive_tool gen writes the events as closed, compressed, indexed hourly segments
#      with core's own archive writer and compressor (not through HTTP), spread over DAYS days;
#   2. hookmq-console is started on that archive and one user logs in;
#   3. each request is made REPEAT times and the median time is compared with its target:
#        first events page            GET /api/events                         < 200 ms
#        lookup by id                 GET /api/events?id=ID                   < 200 ms
#        detail page                  GET /api/events/ID?source=S (+ its HTML) < 200 ms
#        filtered page over one day   GET /api/events?source=&type=&from=&to= (a whole day
#                                     in the middle of the archive)           < 1 s
#        the console's peak RSS       VmHWM of /proc/PID/status at the end   < 64 MiB
#      and a table with PASS/FAIL per target is printed.
# Generated data is deleted at the end (HQ_BENCH_KEEP=1 keeps it).
#
# Environment (all optional):
#   HQ_BUILD_DIR               build tree with the binaries    (default: <repo>/build)
#   HQ_CONSOLE_BENCH_EVENTS    events                          (default: 1000000)
#   HQ_CONSOLE_BENCH_DAYS      days they are spread over       (default: 4)
#   HQ_CONSOLE_BENCH_REPEAT    requests per measurement        (default: 7)
#   HQ_CONSOLE_BENCH_PORT      the console's port              (default: 18791)
#   HQ_CONSOLE_BENCH_DIR       work directory                  (default: mktemp under /tmp)
#   HQ_BENCH_KEEP=1            keep the work directory (a second run with the same
#                              HQ_CONSOLE_BENCH_DIR reuses the archive)
# Exit: 0 every target met; 1 a target missed or a step failed; 2 usage. No broker needed.
set -euo pipefail

bench_name=console_bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
EVENTS=${HQ_CONSOLE_BENCH_EVENTS:-1000000}
DAYS=${HQ_CONSOLE_BENCH_DAYS:-4}
REPEAT=${HQ_CONSOLE_BENCH_REPEAT:-7}
PORT=${HQ_CONSOLE_BENCH_PORT:-18791}

bench_env_only "$@"
bench_positive EVENTS DAYS REPEAT PORT
if [ "$EVENTS" -gt 5000000 ] || [ "$DAYS" -gt 30 ] || [ "$DAYS" -lt 2 ] || [ "$REPEAT" -gt 50 ]; then
    echo "console_bench: keep runs bounded (EVENTS <= 5000000, 2 <= DAYS <= 30, REPEAT <= 50)" >&2
    exit 2
fi

CONSOLE=$BUILD/console/hookmq-console
TOOL=$BUILD/bench/hq_archive_tool
for b in "$CONSOLE" "$TOOL"; do
    [ -x "$b" ] || { echo "console_bench: $b is not built (cmake --build $BUILD)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "console_bench: needs curl" >&2; exit 1; }

work=$(bench_workdir "${HQ_CONSOLE_BENCH_DIR:-}" hq-console-bench)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [ "${HQ_BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
say() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- 1. the archive
hours=$((DAYS * 24))
if [ -s "$work/gen.json" ] && [ -d "$work/archive" ]; then
    say "1. reusing the archive of $work"
else
    say "1. writing $EVENTS indexed events over $DAYS days (hq_archive_tool gen)"
    rm -rf "$work/archive"
    "$TOOL" gen "$work/archive" "$EVENTS" --hours "$hours" --body-bytes 512 >"$work/gen.json"
fi
gen_s=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$work/gen.json")
start_ms=$(sed -n 's/.*"start_ms":\([0-9]*\).*/\1/p' "$work/gen.json")
mid_id=$(sed -n 's/.*"ids":\["[^"]*","\([^"]*\)".*/\1/p' "$work/gen.json")
n=${mid_id#evt-}
mid_src="src$((10#$n % 4))"
disk=$(du -sh "$work/archive" | cut -f1)

# ---------------------------------------------------------------- 2. the console
say "2. starting hookmq-console on 127.0.0.1:$PORT"
pw="bench-$RANDOM-$RANDOM"
hash=$(printf '%s\n' "$pw" | "$CONSOLE" hash-password)
cat >"$work/hookmq.conf" <<CONF
archive = { dir = "$work/archive"; };
console = {
  listen = "127.0.0.1:$PORT";
  users = ( { name = "bench"; password_hash = "$hash"; role = "viewer"; } );
};
log = { format = "text"; level = "warn"; };
CONF
"$CONSOLE" -c "$work/hookmq.conf" 2>"$work/console.log" &
pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/console.log" >&2; exit 1; }
    sleep 0.1
done
jar=$work/cookies
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" --data-urlencode "user=bench" \
    --data-urlencode "password=$pw" "http://127.0.0.1:$PORT/login")
[ "$code" = 303 ] || { echo "console_bench: log-in answered $code" >&2; exit 1; }

# ---------------------------------------------------------------- 3. the requests
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%SZ; }
# median of REPEAT timings (ms) of GET path; fails on a status other than 200
median_ms() {
    local path=$1 i t code out times=()
    for i in $(seq "$REPEAT"); do
        out=$(curl -s -o "$work/last.json" -w '%{http_code} %{time_total}' -b "$jar" \
            "http://127.0.0.1:$PORT$path")
        code=${out%% *}
        t=${out#* }
        [ "$code" = 200 ] || { echo "console_bench: GET $path answered $code: $(head -c 300 "$work/last.json")" >&2; exit 1; }
        times+=("$(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }')")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
count() { grep -o '"id":' "$work/last.json" | wc -l; }

rows=""
fails=0
row() { # name, median ms, target ms, detail
    local ok=PASS
    awk -v m="$2" -v t="$3" 'BEGIN { exit !(m < t) }' || { ok=FAIL; fails=$((fails + 1)); }
    rows="$rows$(printf '| %-34s | %9s ms | < %5s ms | %s | %s |' "$1" "$2" "$3" "$ok" "$4")"$'\n'
}

say "3. timing each request $REPEAT times"
m=$(median_ms "/api/events")
row "first events page (50)" "$m" 200 "$(count) events"
m=$(median_ms "/api/events?id=$mid_id")
row "lookup by id" "$m" 200 "$(count) event"
m=$(median_ms "/api/events/$mid_id?source=$mid_src")
row "detail (GET /api/events/<id>)" "$m" 200 "$(wc -c <"$work/last.json") bytes"
m=$(median_ms "/events/$mid_id?source=$mid_src")
row "detail page (its HTML)" "$m" 200 "static"
d_from=$((start_ms + (DAYS / 2) * 86400000))
d_to=$((d_from + 86400000))
m=$(median_ms "/api/events?source=src1&type=order.*&from=$(iso $d_from)&to=$(iso $d_to)")
row "filtered page over one day" "$m" 1000 "source+type+from/to, $(count) events"
m=$(median_ms "/api/events?source=src1&from=$(iso $d_from)&to=$(iso $d_to)&cursor=$(
    sed -n 's/.*"next":"\([^"]*\)".*/\1/p' "$work/last.json")")
row "its next page (cursor)" "$m" 1000 "$(count) events"
hwm_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
hwm_mib=$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')
rss_ok=PASS
[ "$hwm_kb" -lt $((64 * 1024)) ] || { rss_ok=FAIL; fails=$((fails + 1)); }

printf '\nhookmq-console over %d events, %d days (%s on disk; generated in %s s), median of %d requests\n\n' \
    "$EVENTS" "$DAYS" "$disk" "$gen_s" "$REPEAT"
printf '| %-34s | %12s | %10s | %s | %s |\n' "request" "median" "target" "    " "detail"
printf '|%s|%s|%s|%s|%s|\n' "------------------------------------" "--------------" "------------" "------" "---"
printf '%s' "$rows"
printf '| %-34s | %8s MiB | < %6s MiB | %s | %s |\n' "console peak RSS (VmHWM)" "$hwm_mib" 64 "$rss_ok" "after every request above"
printf '\n%s\n' "$([ "$fails" = 0 ] && echo "all targets met" || echo "$fails target(s) missed")"
[ "$fails" = 0 ]
