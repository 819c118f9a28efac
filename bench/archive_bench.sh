#!/usr/bin/env bash
# bench/archive_bench.sh: the archive's benchmarks on this machine (see bench/README.md).
#
#   1. logger throughput with fsync'd group commit: hookmq.archive is pre-filled with N
#      persistent 1 KiB messages (hq_broker_ceiling --no-declare into hookmq.events, which
#      routes them to hookmq.archive), then hookmq-archive is started and timed until it has
#      written, fsync'd and acked all of them (hookmq_archive_records_total on /metrics);
#   2. id lookup among 1,000,000 archived events: hq_archive_tool gen writes them as
#      compressed, indexed hourly segments with the logger's own code, then
#      `hookmq-archive query --id X` is timed for a few ids (first, middle, last, missing);
#   3. a one-hour query and stats over those segments, with --verbose counters showing that only
#      the segments whose index overlaps the hour are opened;
#   4. the lifecycle emitter's publish rate (hq_archive_tool emit).
# Generated data is deleted at the end (HQ_BENCH_KEEP=1 keeps it).
#
# Environment (all optional):
#   HQ_BUILD_DIR              build tree with the binaries         (default: <repo>/build)
#   HQ_ARCHIVE_BENCH_N        messages of the throughput phase     (default: 100000)
#   HQ_ARCHIVE_BENCH_EVENTS   events of the lookup phase           (default: 1000000)
#   HQ_ARCHIVE_BENCH_HOURS    hours they are spread over           (default: 10)
#   HQ_ARCHIVE_BENCH_BATCH    archive.batch_max                    (default: 256)
#   HQ_ARCHIVE_BENCH_BATCH_MS archive.batch_ms                     (default: 50)
#   HQ_ARCHIVE_BENCH_DIR      work directory                       (default: mktemp under /tmp;
#                             put it on the disk the archive would use: fsync cost is the point)
#   HQ_BENCH_KEEP=1           keep the work directory
#   HQ_BROKER_DIR / HQ_BROKER_PORT / HQ_BROKER_MGMT_PORT          (default: /tmp/hq-archive-bench-
#                             broker, 5712, 15712; a node already running there is reused and
#                             left running, else one is started and stopped)
# Exit: 0 the run completed; 1 a step failed; 2 usage. Bounded: each phase < 2 min.
set -euo pipefail

bench_name=archive_bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
N=${HQ_ARCHIVE_BENCH_N:-100000}
EVENTS=${HQ_ARCHIVE_BENCH_EVENTS:-1000000}
HOURS=${HQ_ARCHIVE_BENCH_HOURS:-10}
BATCH=${HQ_ARCHIVE_BENCH_BATCH:-256}
BATCH_MS=${HQ_ARCHIVE_BENCH_BATCH_MS:-50}
export HQ_BROKER_DIR=${HQ_BROKER_DIR:-/tmp/hq-archive-bench-broker}
export HQ_BROKER_PORT=${HQ_BROKER_PORT:-5712}
export HQ_BROKER_MGMT_PORT=${HQ_BROKER_MGMT_PORT:-15712}
METRICS_PORT=${HQ_ARCHIVE_BENCH_METRICS_PORT:-19712}

bench_env_only "$@"
bench_positive N EVENTS HOURS BATCH BATCH_MS
if [ "$N" -gt 1000000 ] || [ "$EVENTS" -gt 5000000 ]; then
    echo "archive_bench: keep runs bounded (N <= 1000000, EVENTS <= 5000000)" >&2
    exit 2
fi

ARCHIVE=$BUILD/archive/hookmq-archive
DLX=$BUILD/dlx/hookmq-dlx
CEILING=$BUILD/bench/hq_broker_ceiling
TOOL=$BUILD/bench/hq_archive_tool
for b in "$ARCHIVE" "$DLX" "$CEILING" "$TOOL"; do
    [ -x "$b" ] || { echo "archive_bench: $b is not built (cmake --build $BUILD)" >&2; exit 1; }
done

work=$(bench_workdir "${HQ_ARCHIVE_BENCH_DIR:-}" hq-archive-bench)
mgmt="http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api"
started_broker=0
logger_pid=
ok=0

cleanup() {
    if [ -n "$logger_pid" ] && kill -0 "$logger_pid" 2>/dev/null; then
        kill -TERM "$logger_pid" 2>/dev/null || true
        wait "$logger_pid" 2>/dev/null || true
    fi
    curl -s -u guest:guest -X DELETE "$mgmt/queues/%2f/hookmq.archive/contents" >/dev/null 2>&1 || true
    if [ "$started_broker" = 1 ]; then
        "$top/scripts/broker" stop >/dev/null 2>&1 || true
    fi
    if [ "${HQ_BENCH_KEEP:-0}" = 1 ] || [ "$ok" != 1 ]; then
        echo "archive_bench: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
now_ms() { date +%s%3N; }
metric() { # name{labels} -> value (0 when absent)
    { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null || true; } |
        awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}
field() { # key from a "k=v k=v" line
    sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" | head -1 || true
}

ncpu=$(nproc 2>/dev/null || echo 1)
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$ncpu" 'BEGIN { exit !(l > c / 2) }'; then
    echo "archive_bench: warning: load average $load on $ncpu CPUs: numbers will be low" >&2
fi

# ---------------------------------------------------------------- broker, topology
if curl -sf -u guest:guest "$mgmt/overview" >/dev/null 2>&1; then
    say "using the broker on 127.0.0.1:$HQ_BROKER_PORT"
else
    say "starting a broker on 127.0.0.1:$HQ_BROKER_PORT"
    "$top/scripts/broker" start >/dev/null
    started_broker=1
fi
cat >"$work/hookmq.conf" <<EOF
broker = { uris = [ "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" ]; };
sources = ( { name = "bench"; scheme = "none"; } );
archive = {
  dir = "$work/archive";
  keep_days = 0;
  metrics_listen = "127.0.0.1:$METRICS_PORT";
  batch_max = $BATCH;
  batch_ms = $BATCH_MS;
};
log = { format = "text"; level = "warn"; };
EOF
"$DLX" apply -c "$work/hookmq.conf" >/dev/null
curl -s -u guest:guest -X DELETE "$mgmt/queues/%2f/hookmq.archive/contents" >/dev/null

# ---------------------------------------------------------------- 1. throughput
say "1. pre-filling hookmq.archive with $N persistent 1 KiB messages"
"$CEILING" --uri "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" --exchange hookmq.events \
    --no-declare --count "$N" --size 1024 --connections 2 --window 512 >"$work/ceiling.txt"
ceil_rate=$(field msgs_per_s <"$work/ceiling.txt")
say "   (publish rate into hookmq.archive: $ceil_rate msgs/s)"
say "   timing hookmq-archive draining it (batch_max=$BATCH batch_ms=$BATCH_MS)"
"$ARCHIVE" run -c "$work/hookmq.conf" 2>"$work/archive.log" &
logger_pid=$!
t0=
deadline=$(($(now_ms) + 120000))
while :; do
    c=$(metric 'hookmq_archive_records_total{kind="event"}')
    c=${c%.*}
    if [ -z "$t0" ] && [ "${c:-0}" -gt 0 ]; then t0=$(now_ms); c0=$c; fi
    [ "${c:-0}" -ge "$N" ] && break
    if [ "$(now_ms)" -gt "$deadline" ] || ! kill -0 "$logger_pid" 2>/dev/null; then
        echo "archive_bench: the logger did not drain $N messages in 120 s (at $c)" >&2
        exit 1
    fi
    sleep 0.05
done
t1=$(now_ms)
batches=$(metric hookmq_archive_batches_total)
fsync_sum=$(metric hookmq_archive_fsync_seconds_sum)
fsync_n=$(metric hookmq_archive_fsync_seconds_count)
kill -TERM "$logger_pid"
wait "$logger_pid" || true
logger_pid=
dt=$((t1 - t0))
[ "$dt" -gt 0 ] || dt=1
rate=$(awk -v n="$N" -v c0="$c0" -v ms="$dt" 'BEGIN { printf "%.0f", (n - c0) * 1000 / ms }')
fsync_ms=$(awk -v s="$fsync_sum" -v n="$fsync_n" 'BEGIN { printf "%.2f", n ? s * 1000 / n : 0 }')
recs_per_batch=$(awk -v n="$N" -v b="$batches" 'BEGIN { printf "%.0f", b ? n / b : 0 }')
disk=$(du -sh "$work/archive" | cut -f1)

# ---------------------------------------------------------------- 2. id lookup
say "2. writing $EVENTS indexed events over $HOURS hours (hq_archive_tool gen)"
"$TOOL" gen "$work/lookup" "$EVENTS" --hours "$HOURS" --body-bytes 1024 >"$work/gen.json"
gen_s=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$work/gen.json")
raw=$(sed -n 's/.*"bytes_raw":\([0-9]*\).*/\1/p' "$work/gen.json")
zst=$(sed -n 's/.*"bytes_compressed":\([0-9]*\).*/\1/p' "$work/gen.json")
start_ms=$(sed -n 's/.*"start_ms":\([0-9]*\).*/\1/p' "$work/gen.json")
ids=$(sed -n 's/.*"ids":\["\([^"]*\)","\([^"]*\)","\([^"]*\)"\].*/\1 \2 \3/p' "$work/gen.json")
lookups=""
for id in $ids evt-missing; do
    s=$(now_ms)
    out=$("$ARCHIVE" query --dir "$work/lookup" --id "$id" --verbose 2>"$work/q.err")
    e=$(now_ms)
    n=$(printf '%s' "$out" | grep -c . || true)
    opened=$(field segments_opened <"$work/q.err")
    frames=$(field frames_read <"$work/q.err")
    lookups="$lookups$(printf '  %-14s %6d ms  found=%d  segments_opened=%s  frames_read=%s' \
        "$id" $((e - s)) "$n" "$opened" "$frames")"$'\n'
done

# ---------------------------------------------------------------- 3. one-hour query
say "3. a one-hour query and stats over the $HOURS hours"
h_from=$((start_ms + 3 * 3600000))
h_to=$((h_from + 3600000))
iso() { date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%SZ; }
s=$(now_ms)
hour_n=$("$ARCHIVE" query --dir "$work/lookup" --from "$(iso $h_from)" --to "$(iso $h_to)" \
    --verbose 2>"$work/h.err" | wc -l)
e=$(now_ms)
hour_ms=$((e - s))
hour_opened=$(field segments_opened <"$work/h.err")
hour_total=$(field segments <"$work/h.err")
s=$(now_ms)
"$ARCHIVE" stats --dir "$work/lookup" --verbose >"$work/stats.txt" 2>"$work/s.err"
e=$(now_ms)
stats_ms=$((e - s))
stats_opened=$(field segments_opened <"$work/s.err")
s=$(now_ms)
grep_n=$("$ARCHIVE" query --dir "$work/lookup" --from "$(iso $h_from)" --to "$(iso $h_to)" \
    --grep "$(printf "evt_%012d" $((EVENTS * 3 / HOURS + 7)))" 2>/dev/null | wc -l)
e=$(now_ms)
grep_ms=$((e - s))

# ---------------------------------------------------------------- 4. lifecycle emitter
say "4. lifecycle emitter: 20000 records"
"$TOOL" emit -c "$work/hookmq.conf" 20000 >"$work/emit.json" || true
emit_rate=$(sed -n 's/.*"per_second":\([0-9]*\).*/\1/p' "$work/emit.json")
emit_drop=$(sed -n 's/.*"dropped":\([0-9]*\).*/\1/p' "$work/emit.json")
curl -s -u guest:guest -X DELETE "$mgmt/queues/%2f/hookmq.archive/contents" >/dev/null

# ---------------------------------------------------------------- summary
{
    echo "hookmq-archive benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $ncpu CPUs, load $load, work dir on $(df -P "$work" | awk 'NR==2 { print $1 }'))"
    echo
    echo "1. logger throughput, fsync'd group commit (batch_max=$BATCH, batch_ms=$BATCH_MS)"
    printf '  %-40s %s\n' "messages drained" "$N (1 KiB, persistent, quorum queue)"
    printf '  %-40s %s msgs/s\n' "archive throughput" "$rate"
    printf '  %-40s %s msgs/s\n' "publish rate into the queue (pre-fill)" "$ceil_rate"
    printf '  %-40s %s (about %s records each)\n' "batches (write + fdatasync + ack)" "${batches%.*}" "$recs_per_batch"
    printf '  %-40s %s ms\n' "mean fdatasync" "$fsync_ms"
    printf '  %-40s %s\n' "segment size on disk (uncompressed)" "$disk"
    echo
    echo "2. id lookup among $EVENTS events ($HOURS closed hourly segments)"
    printf '  %-40s %s s (%s MB raw -> %s MB zstd)\n' "generation + compression + index" "$gen_s" \
        "$((raw / 1048576))" "$((zst / 1048576))"
    printf '%s' "$lookups"
    echo
    echo "3. one-hour window over the same archive"
    printf '  %-40s %s ms, %s records, segments opened %s of %s\n' "query --from --to (1 h)" \
        "$hour_ms" "$hour_n" "$hour_opened" "$hour_total"
    printf '  %-40s %s ms, %s matches\n' "same window with --grep" "$grep_ms" "$grep_n"
    printf '  %-40s %s ms, segments opened %s (counts from the indexes)\n' "stats (all hours)" \
        "$stats_ms" "$stats_opened"
    echo
    echo "4. lifecycle emitter (1 sender thread, 1 connection, pipelined confirms, batches of up to 256)"
    printf '  %-40s %s records/s, dropped %s\n' "20000 records" "${emit_rate:-?}" "${emit_drop:-?}"
} | tee "$work/summary.txt"
ok=1
