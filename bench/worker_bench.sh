#!/usr/bin/env bash
# bench/worker_bench.sh: hookmq-worker against a raw consume + ack loop, in one run.
#
# One private RabbitMQ node (scripts/broker), `hookmq-dlx apply` with four consumers; raw and
# bench share a binding, so one fill puts the same N persistent 1 KiB events in both (shaped
# like the gateway's: hq_broker_ceiling --event-headers, so the worker publishes a lifecycle
# record for each, as in production):
#   raw     emptied by hq_drain: a plain rabbitmq-c consume + ack loop, same prefetch (ceiling)
#   bench   hookmq-worker with a no-op plugin (tests/handlers ack: ACK at once)
#   retryb  hookmq-worker with a plugin that always answers RETRY (the retry path: republish
#           to the tier with a confirm, then ack)
#   stepsb  the same retry path with durable steps: a plugin that saves 3 steps of 1 KiB each
#           (tests/handlers steps), then answers RETRY (the copy carries them in hookmq-steps);
#           retryb and stepsb run in HQ_BENCH_ROUNDS interleaved rounds too (the median
#           round's ratio is the verdict); "lc" counts the lifecycle messages each path put in
#           hookmq.archive (a step record per step and a retry_scheduled record per event)
#   execb   hookmq-worker with the built-in exec handler running `cat >/dev/null`
# Rates come from the worker's own /metrics (verdict counters), from the first to the last
# settled event. Bounded: N events per queue and round (default 100000, 3 rounds), a few
# minutes at most.
#
# The raw loop and the no-op worker run in HQ_BENCH_ROUNDS interleaved rounds (fill, raw,
# worker; fill, raw, worker; ...): this machine's throughput drifts by 10-15% between minutes,
# so each round's ratio compares neighbours, and the verdict is the median round's ratio.
#
# Environment: HQ_BUILD_DIR (default <repo>/build), HQ_BENCH_EVENTS (100000),
# HQ_BENCH_ROUNDS (3), HQ_BENCH_RETRY_EVENTS (5000), HQ_BENCH_EXEC_EVENTS (2000),
# HQ_BENCH_PREFETCH (256), HQ_BENCH_CONCURRENCY (1: the same prefetch on one connection as the
# raw loop), HQ_WBENCH_PORT (5714: the private broker's AMQP port, management 10000 above).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$top/build}
N=${HQ_BENCH_EVENTS:-100000}
ROUNDS=${HQ_BENCH_ROUNDS:-3}
NRETRY=${HQ_BENCH_RETRY_EVENTS:-5000}
NEXEC=${HQ_BENCH_EXEC_EVENTS:-2000}
PREFETCH=${HQ_BENCH_PREFETCH:-256}
CONC=${HQ_BENCH_CONCURRENCY:-1}
WBPORT=${HQ_WBENCH_PORT:-5714}
export HQ_BROKER_DIR=/tmp/hq-wbench-broker-$WBPORT HQ_BROKER_PORT=$WBPORT
export HQ_BROKER_MGMT_PORT=$((WBPORT + 10000))
uri="amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f"
work=$(mktemp -d /tmp/hq-wbench-XXXXXX)
wpid=""

cleanup() {
    [ -n "$wpid" ] && kill -TERM "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null || true
    "$top/scripts/broker" stop >/dev/null 2>&1 || true
    rm -rf "$work" "$HQ_BROKER_DIR"
}
trap cleanup EXIT INT TERM

say() { printf '==> %s\n' "$*" >&2; }
mgmt() { curl -sf -u guest:guest -H 'content-type: application/json' "$@"; }
depth() {
    mgmt "http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api/queues/%2f/$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("messages", 0))'
}
now() { date +%s.%N; }

rm -rf "$HQ_BROKER_DIR"
"$top/scripts/broker" start >&2
plug=$BUILD/tests/handlers
cat > "$work/hookmq.conf" <<CONF
broker = { uris = [ "$uri" ]; heartbeat_s = 10; };
sources = ( { name = "bench"; scheme = "none"; } );
consumers = (
  { name = "raw";    bindings = [ "bench.#" ]; handler = "$plug/hq_handler_ack.so"; },
  { name = "bench";  bindings = [ "bench.#" ]; handler = "$plug/hq_handler_ack.so";
    prefetch = $PREFETCH; concurrency = $CONC; metrics_listen = "127.0.0.1:19801"; },
  { name = "retryb"; bindings = [ "retry.#" ]; handler = "$plug/hq_handler_retry.so";
    prefetch = $PREFETCH; concurrency = $CONC; metrics_listen = "127.0.0.1:19802";
    retry = { delays = [ "1h" ]; max_attempts = 5; }; },
  { name = "stepsb"; bindings = [ "steps.#" ]; handler = "$plug/hq_handler_steps.so";
    options = { count = 3; size = 1024; };
    prefetch = $PREFETCH; concurrency = $CONC; metrics_listen = "127.0.0.1:19804";
    retry = { delays = [ "1h" ]; max_attempts = 5; }; },
  { name = "execb";  bindings = [ "exec.#" ]; handler = "exec";
    options = { command = "cat >/dev/null"; timeout = "10s"; };
    prefetch = $PREFETCH; concurrency = $CONC; metrics_listen = "127.0.0.1:19803"; }
);
log = { level = "warn"; };
CONF
"$BUILD/dlx/hookmq-dlx" apply -c "$work/hookmq.conf" >/dev/null

fill() { # KEY COUNT
    "$BUILD/bench/hq_broker_ceiling" --uri "$uri" --exchange hookmq.events --queue hookmq.raw \
        --no-declare --keep --count "$2" --size 1024 --window 512 --routing-key "$1" \
        --event-headers >&2
}
# the exec handler's events now; the bench and retry queues are filled round by round below
fill exec.event "$NEXEC"

# cpu_ticks PID: user + system clock ticks of a process so far (0 when it is gone)
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
broker_pid=$(cat "$HQ_BROKER_DIR/rabbitmq.pid")
pct() { python3 -c "print('%.0f' % (100.0 * $1 / $hz / $2))"; } # TICKS SECONDS

# wait (at most 30 s) until the broker is idle: after a fill, quorum queues keep writing
# segments for a while, and whichever reader ran first would pay for it
settle() {
    local t0 t1 i
    for i in $(seq 1 60); do
        t0=$(cpu_ticks "$broker_pid")
        sleep 0.5
        t1=$(cpu_ticks "$broker_pid")
        [ $(( (t1 - t0) * 100 / hz )) -le 5 ] && return 0 # under 10% of a core
    done
    say "warning: the broker did not settle"
}

# raw_round: hq_drain empties hookmq.raw; sets raw_rate and raw_cpu
raw_round() {
    local b0 t0 raw_line
    say "ceiling: hq_drain (consume + ack, prefetch $PREFETCH) on hookmq.raw"
    b0=$(cpu_ticks "$broker_pid") t0=$(now)
    raw_line=$("$BUILD/bench/hq_drain" --port "$HQ_BROKER_PORT" --queue hookmq.raw \
        --prefetch "$PREFETCH" --idle-ms 1500 2>&1 | grep -E 'messages in' || true)
    # over the drain's own time: hq_drain waits --idle-ms after the last message before it stops
    raw_cpu="-/$(pct $(($(cpu_ticks "$broker_pid") - b0)) "$(python3 -c "print(max(0.1, $(now) - $t0 - 1.5))")")"
    echo "$raw_line" >&2
    raw_rate=$(echo "$raw_line" | sed -E 's/.*\(([0-9.]+) msg\/s\).*/\1/')
}

# lc_count: drain hookmq.archive and print how many messages were there (after a worker stopped:
# the lifecycle messages its sender had confirmed)
lc_count() {
    "$BUILD/bench/hq_drain" --port "$HQ_BROKER_PORT" --queue hookmq.archive --idle-ms 1000 2>&1 |
        sed -nE 's/^hq_drain: ([0-9]+) messages in.*/\1/p'
}

# run a worker until `count` verdicts matching `pattern`, print events/s between the first
# and the last settled event (bench/rate_poll.py: one keep-alive connection polling /metrics
# every 10 ms, so the measurement forks nothing while the worker runs)
# (and, in cpu_NAME, the worker's / the broker's cpu% over the run)
run_worker() {
    local name=$1 port=$2 pattern=$3 count=$4 rate b0 w1 t0 secs
    b0=$(cpu_ticks "$broker_pid") t0=$(now)
    "$BUILD/worker/hookmq-worker" -c "$work/hookmq.conf" --consumer "$name" \
        >"$work/$name.log" 2>&1 &
    wpid=$!
    rate=$(python3 "$top/bench/rate_poll.py" "$port" "$pattern" "$count" 240 || true)
    w1=$(cpu_ticks "$wpid")
    curl -sf "http://127.0.0.1:$port/metrics" | awk '/^hookmq_worker_lifecycle_records_total/ && /published/ {s += $2} END {print s + 0}' >"$work/lc-$name" || true
    secs=$(python3 -c "print($(now) - $t0)")
    echo "$(pct "$w1" "$secs")/$(pct $(($(cpu_ticks "$broker_pid") - b0)) "$secs")" >"$work/cpu-$name"
    kill -TERM "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true
    wpid=""
    echo "${rate:-0}"
}

rounds=""
for r in $(seq 1 "$ROUNDS"); do
    say "round $r of $ROUNDS: filling $N persistent 1 KiB events into hookmq.raw and hookmq.bench"
    fill bench.event "$N"
    # the archive queue would hold a copy of every event: not what this bench measures
    mgmt -X DELETE "http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api/queues/%2f/hookmq.archive/contents" || true
    settle
    raw_round
    settle
    say "round $r: hookmq-worker, no-op plugin (ACK), prefetch $PREFETCH, concurrency $CONC"
    ack_rate=$(run_worker bench 19801 'hookmq_worker_verdicts_total\{.*verdict="ack"' "$N")
    # what the lifecycle stream cost the broker: the messages it put in hookmq.archive
    # (emptied before the round), counted by draining them; the worker has stopped, so
    # everything its sender had confirmed is there
    lc_msgs=$(lc_count)
    rounds+="$raw_rate $ack_rate $raw_cpu $(cat "$work/cpu-bench") $(cat "$work/lc-bench") ${lc_msgs:-?}"$'\n'
done
# The retry path without and with durable steps, in interleaved rounds (the order alternates),
# each on a fresh fill and empty tiers: the verdict is the median round's ratio.
retry_one() {
    case $1 in
    retryb)
        say "round $2: hookmq-worker, retry path (RETRY -> tier queue with confirm -> ack)"
        retry_rate=$(run_worker retryb 19802 'hookmq_worker_verdicts_total\{.*verdict="retry"' "$NRETRY")
        lc_retry=$(lc_count) ;;
    stepsb)
        say "round $2: hookmq-worker, retry path with 3 durable steps of 1 KiB each"
        steps_rate=$(run_worker stepsb 19804 'hookmq_worker_verdicts_total\{.*verdict="retry"' "$NRETRY")
        lc_steps=$(lc_count) ;;
    esac
}
srounds=""
for r in $(seq 1 "$ROUNDS"); do
    for q in retryb stepsb; do
        mgmt -X DELETE "http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api/queues/%2f/hookmq.$q.retry.1h/contents" || true
    done
    fill retry.event "$NRETRY"
    fill steps.event "$NRETRY"
    # the archive queue holds a copy of every event filled: only the lifecycle messages count
    mgmt -X DELETE "http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api/queues/%2f/hookmq.archive/contents" || true
    settle
    if [ $((r % 2)) -eq 1 ]; then first=retryb second=stepsb; else first=stepsb second=retryb; fi
    retry_one $first "$r"
    settle
    retry_one $second "$r"
    settle
    srounds+="$retry_rate $steps_rate $(cat "$work/cpu-retryb") $(cat "$work/cpu-stepsb") ${lc_retry:-?} ${lc_steps:-?}"$'\n'
done
printf '\n%-8s %12s %16s %8s %14s %14s %10s %10s\n' "round" "retry/s" "retry+steps/s" "ratio" \
    "cpu% w/b retry" "cpu% w/b steps" "lc retry" "lc steps" >&2
printf '%s' "$srounds" | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
for i, (a, b, ca, cb, la, lb) in enumerate(rows, 1):
    print("%-8d %12s %16s %8.2f %14s %14s %10s %10s" % (i, a, b, float(b) / float(a), ca, cb, la, lb),
          file=sys.stderr)
rows.sort(key=lambda r: float(r[1]) / float(r[0]))
m = rows[len(rows) // 2]
print(m[0], m[1], m[2], m[3])
' >"$work/smedian"
read -r retry_rate steps_rate cpu_r cpu_s <"$work/smedian"
echo "$cpu_r" >"$work/cpu-retryb"
echo "$cpu_s" >"$work/cpu-stepsb"
say "hookmq-worker, exec handler (cat >/dev/null), $NEXEC events"
exec_rate=$(run_worker execb 19803 'hookmq_worker_verdicts_total\{.*verdict="ack"' "$NEXEC")

printf '\nhookmq worker benchmark: %s, %s CPUs, %s events of 1 KiB, prefetch %s, concurrency %s\n' \
    "$(date -u +%FT%TZ)" "$(nproc)" "$N" "$PREFETCH" "$CONC"
printf '%-8s %12s %14s %8s %12s %12s %10s %8s\n' "round" "raw loop/s" "no-op worker/s" "ratio" \
    "cpu% raw" "cpu% worker" "lifecycle" "lc msgs"
# the median round (by ratio) stands for the run; its raw rate is the ratio's base below
median=$(printf '%s' "$rounds" | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
for i, (raw, w, rc, wc, lc, lcm) in enumerate(rows, 1):
    print("%-8d %12s %14s %8.2f %12s %12s %10s %8s" % (i, raw, w, float(w) / float(raw), rc, wc,
          lc, lcm), file=sys.stderr)
rows.sort(key=lambda r: float(r[1]) / float(r[0]))
m = rows[len(rows) // 2]
print(m[0], m[1], m[2], m[3])
' 2>&1 >"$work/median")
echo "$median"
read -r raw_rate ack_rate raw_cpu cpu_bench <"$work/median"
echo "$cpu_bench" >"$work/cpu-bench"
printf '\n%-44s %10s %8s %12s\n' "phase (no-op: the median round)" "events/s" "ratio" "cpu% w/b"
printf '%-44s %10s %8s %12s\n' "raw consume + ack loop (hq_drain)" "$raw_rate" "1.00" "$raw_cpu"
for row in "hookmq-worker, no-op plugin:$ack_rate:bench" "hookmq-worker, retry path:$retry_rate:retryb" \
           "hookmq-worker, retry path, 3 steps of 1 KiB:$steps_rate:stepsb" \
           "hookmq-worker, exec handler:$exec_rate:execb"; do
    IFS=: read -r label rate name <<<"$row"
    printf '%-44s %10s %8s %12s\n' "$label" "$rate" \
        "$(python3 -c "print('%.2f' % ($rate / $raw_rate))" 2>/dev/null || echo -)" \
        "$(cat "$work/cpu-$name" 2>/dev/null || echo -)"
done
echo "(cpu% w/b: share of one core used by the worker / the broker from start to the last event)"
echo "(lifecycle: records the no-op worker published in its round, the events carrying the gateway's headers;"
echo " lc msgs: the messages they travelled in, counted in hookmq.archive after the round)"
python3 -c "print('exec handler cost: %.2f ms per event per handler thread (%d threads)' % ($CONC * 1000.0 / $exec_rate, $CONC))"
printf 'target: no-op worker >= 0.85x the raw loop (median of %s rounds): %s\n' "$ROUNDS" \
    "$(python3 -c "print('PASS' if $ack_rate >= 0.85 * $raw_rate else 'MISS')")"
printf 'target: retry path with 3 steps of 1 KiB >= 0.90x the retry path without: %s (%s)\n' \
    "$(python3 -c "print('PASS' if $steps_rate >= 0.90 * $retry_rate else 'MISS')")" \
    "$(python3 -c "print('%.2f' % ($steps_rate / $retry_rate))" 2>/dev/null || echo -)"
