#!/usr/bin/env bash
# bench/run-gateway.sh: one full gateway benchmark on this machine (see bench/README.md).
#
# In one run, against one private RabbitMQ node on 127.0.0.1 (scripts/broker):
#   1. the broker's own ceiling: hq_broker_ceiling publishes persistent 1 KiB messages with
#      pipelined confirms into hookmq.events, which routes them to the same quorum queues the
#      gateway's events reach (hookmq.archive and bench.sink, both bound with "#");
#   2. hookmq-gateway under hq_load at 32, then 128 keep-alive connections, as fast as it answers;
#   3. hookmq-gateway under hq_load at half the higher of those two rates (open loop) for p99;
#   4. after each gateway phase, hq_drain empties bench.sink and checks that every id answered
#      202 is there (zero lost ids);
# then prints a summary with the ratios to the ceiling and the targets.
#
# Environment (all optional):
#   HQ_BUILD_DIR            build tree with the binaries          (default: <repo>/build)
#   HQ_BENCH_SECONDS        length of each load phase, 1..20      (default: 15)
#   HQ_BENCH_CEILING_CONNS  broker_ceiling connections            (default: 2 = gateway publishers)
#   HQ_BENCH_HALF_CONNS     connections of the half-rate phase    (default: those of the
#                           phase that reached the maximum rate)
#   HQ_BENCH_HTTP_PORT / HQ_BENCH_METRICS_PORT                    (default: 18710 / 19710)
#   HQ_BENCH_KEEP=1         keep the work directory (configs, logs, ids files)
#   HQ_BENCH_PIN=1          split the cores: the broker on CPU 0, every client (the ceiling
#                           publisher, the gateway, hq_load, hq_drain) on CPU 1, for every
#                           phase alike: the broker and the gateway no longer compete, as on
#                           separate hosts (needs 2+ CPUs and taskset)
#   HQ_BENCH_STRICT=1       exit 1 when a target is missed (lost ids always exit 1)
#   HQ_BROKER_DIR / HQ_BROKER_PORT / HQ_BROKER_MGMT_PORT          (default: /tmp/hq-bench-broker,
#                                                                  5710, 15710)
# Exit: 0 the run completed (and, with HQ_BENCH_STRICT=1, met every target); 1 a step failed,
# ids were lost, or (strict) a target was missed; 2 usage.
# Bounded: about 100 s with the defaults (< 3 min), loopback only; Ctrl-C cleans up.
set -euo pipefail

bench_name=run-gateway
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
PHASE_S=${HQ_BENCH_SECONDS:-15}
PIN=${HQ_BENCH_PIN:-0}
client=() # command prefix of every client program (taskset with HQ_BENCH_PIN=1)
CEIL_CONNS=${HQ_BENCH_CEILING_CONNS:-2}
HALF_CONNS=${HQ_BENCH_HALF_CONNS:-}
HTTP_PORT=${HQ_BENCH_HTTP_PORT:-18710}
METRICS_PORT=${HQ_BENCH_METRICS_PORT:-19710}
export HQ_BROKER_DIR=${HQ_BROKER_DIR:-/tmp/hq-bench-broker}
export HQ_BROKER_PORT=${HQ_BROKER_PORT:-5710}
export HQ_BROKER_MGMT_PORT=${HQ_BROKER_MGMT_PORT:-15710}
BODY_BYTES=1024
SINK=bench.sink
EXCHANGE=hookmq.events

bench_env_only "$@"
if ! [[ $PHASE_S =~ ^[0-9]+$ ]] || [ "$PHASE_S" -lt 1 ] || [ "$PHASE_S" -gt 20 ]; then
    echo "run-gateway: HQ_BENCH_SECONDS must be 1..20" >&2
    exit 2
fi

LOAD=$BUILD/bench/hq_load
DRAIN=$BUILD/bench/hq_drain
GATEWAY=$BUILD/gateway/hookmq-gateway
DLX=$BUILD/dlx/hookmq-dlx
CEILING=""
for c in "$BUILD/bench/hq_broker_ceiling" "$BUILD/bench/broker_ceiling"; do
    if [ -x "$c" ]; then
        CEILING=$c
        break
    fi
done

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'run-gateway: %s\n' "$*" >&2
    exit 1
}

for b in "$LOAD" "$DRAIN"; do
    [ -x "$b" ] || die "$b is not built (cmake --build $BUILD --target hq_load hq_drain)"
done
command -v curl >/dev/null || die "curl is needed"

T0=$(date +%s)
work=$(mktemp -d /tmp/hq-bench.XXXXXX)
gw_pid=""
sampler_pid=""
broker_started=0
failed=0

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$sampler_pid" ]; then
        kill "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
    fi
    if [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; then
        kill -TERM "$gw_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$gw_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$gw_pid" 2>/dev/null || true
        wait "$gw_pid" 2>/dev/null || true
    fi
    if [ "$broker_started" = 1 ]; then
        "$top/scripts/broker" stop >/dev/null 2>&1 || true
    fi
    bench_work_done "$rc" "logs, configs and ids files"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# field NAME LINE: the value of NAME=... in a key=value line
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1; }
# cpu_ticks PID: user + system clock ticks of a process so far (0 when it is gone)
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in "$HTTP_PORT" "$METRICS_PORT"; do
    port_busy "$p" && die "127.0.0.1:$p is in use (set HQ_BENCH_HTTP_PORT / HQ_BENCH_METRICS_PORT)"
done

# the gateway, the broker and hq_load share this machine's cores: other work skews every number
bench_load_check

# ---- broker -------------------------------------------------------------------------------
bench_broker_check "stop it first (HQ_BROKER_DIR=$HQ_BROKER_DIR scripts/broker stop) or choose other ports"
# a fresh node each run: old queues would skew the numbers (only ever our own bench dir)
case "$(basename "$HQ_BROKER_DIR")" in
hq-bench*) rm -rf "$HQ_BROKER_DIR" ;;
esac
say "starting a private broker on 127.0.0.1:$HQ_BROKER_PORT ($HQ_BROKER_DIR)"
bench_broker_start "$work/broker-start.log" 90
broker_pid=$(cat "$HQ_BROKER_DIR/rabbitmq.pid" 2>/dev/null || echo "")
if [ "$PIN" = 1 ]; then
    [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null || die "HQ_BENCH_PIN=1 needs 2 CPUs and taskset"
    # every thread of the Erlang VM (and its helpers) on CPU 0; the clients on CPU 1
    for t in /proc/"$broker_pid"/task/*; do taskset -p -c 0 "${t##*/}" >/dev/null; done
    for c in $(pgrep -f "erl_child_setup|epmd" || true); do taskset -a -p -c 0 "$c" >/dev/null 2>&1 || true; done
    client=(taskset -c 1)
    say "cores split: broker on CPU 0, clients on CPU 1"
fi
rabbit_version=$(mgmt GET /overview 2>/dev/null | sed -n 's/.*"rabbitmq_version":"\([^"]*\)".*/\1/p')

# ---- config and topology ------------------------------------------------------------------
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
conf=$work/hookmq.conf
cat >"$conf" <<EOF
# written by bench/run-gateway.sh
broker = {
  uris = [ "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" ];
  exchange = "$EXCHANGE";
  queue_type = "quorum";
  heartbeat_s = 10;
};
gateway = {
  listen = "127.0.0.1:$HTTP_PORT";
  metrics_listen = "127.0.0.1:$METRICS_PORT";
  max_body_bytes = 1048576;
  max_in_flight = 1024;
  confirm_timeout_ms = 2000;
  spool_dir = "$work/spool";
  threads = 160;   # >= the 128 benchmark connections (one HTTP thread per connection)
  publishers = ${HQ_BENCH_PUBLISHERS:-2};
};
sources = (
  { name = "github"; scheme = "github"; secret_env = [ "HQ_BENCH_SECRET" ]; }
);
log = { format = "text"; level = "warn"; };
EOF
export HQ_BENCH_SECRET=$secret HQ_LOAD_SECRET=$secret

if [ -x "$DLX" ]; then
    say "topology: hookmq-dlx apply"
    "$DLX" apply -c "$conf" >"$work/apply.log" 2>&1 || die "hookmq-dlx apply failed: $(tail -3 "$work/apply.log")"
else
    say "topology: $DLX is not built; declaring hookmq.events by hand (management API)"
    mgmt PUT "/exchanges/%2f/hookmq.unrouted" -d '{"type":"fanout","durable":true}' >/dev/null
    mgmt PUT "/queues/%2f/hookmq.unrouted" -d '{"durable":true,"arguments":{"x-queue-type":"quorum"}}' >/dev/null
    mgmt POST "/bindings/%2f/e/hookmq.unrouted/q/hookmq.unrouted" -d '{"routing_key":""}' >/dev/null
    mgmt PUT "/exchanges/%2f/$EXCHANGE" \
        -d '{"type":"topic","durable":true,"arguments":{"alternate-exchange":"hookmq.unrouted"}}' >/dev/null
    mgmt PUT "/queues/%2f/hookmq.archive" -d '{"durable":true,"arguments":{"x-queue-type":"quorum"}}' >/dev/null
    mgmt POST "/bindings/%2f/e/$EXCHANGE/q/hookmq.archive" -d '{"routing_key":"#"}' >/dev/null
fi
mgmt PUT "/queues/%2f/$SINK" -d '{"durable":true,"arguments":{"x-queue-type":"quorum"}}' >/dev/null
mgmt POST "/bindings/%2f/e/$EXCHANGE/q/$SINK" -d '{"routing_key":"#"}' >/dev/null
# every queue the events reach: the ceiling publishes to exactly the same ones
queues=$(mgmt GET "/exchanges/%2f/$EXCHANGE/bindings/source" |
    grep -o '"destination":"[^"]*"' | cut -d'"' -f4 | sort -u | tr '\n' ' ')
purge_all() {
    local q
    for q in $queues; do purge "$q"; done
}

# ---- phase 1: broker ceiling -------------------------------------------------------------
# Twice: bare messages (1 KiB body, message id, content type), and messages shaped like the
# gateway's (the same plus a timestamp and the seven headers of a GitHub event). The headers
# cost the broker CPU per message, and the gateway cannot publish without them
# (docs/interface.md), so the gateway is judged against the second; both are reported.
ceil_rate="" bare_rate=""
ceiling() { # NAME EXTRA-FLAG...
    local name=$1 out b0
    shift
    out=$work/ceiling-$name.txt
    say "broker ceiling ($name): $CEIL_CONNS connection(s), window 512, ${BODY_BYTES}-byte persistent messages, ${PHASE_S}s"
    b0=$(cpu_ticks "$broker_pid")
    if timeout $((PHASE_S + 30)) "${client[@]}" "$CEILING" --uri "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" \
        --exchange "$EXCHANGE" --queue "$SINK" --queue-type quorum --size "$BODY_BYTES" \
        --window 512 --connections "$CEIL_CONNS" --seconds "$PHASE_S" --no-declare "$@" \
        >"$out" 2>&1; then
        R[ceil-$name.rps]=$(field msgs_per_s "$(grep msgs_per_s "$out")")
    else
        echo "run-gateway: broker ceiling failed: $(tail -3 "$out")" >&2
        failed=1
    fi
    R[ceil-$name.brcpu]=$(((($(cpu_ticks "$broker_pid") - b0) * 100) / (hz * PHASE_S)))
    cat "$out" >&2
    purge_all
}
declare -A R # per phase: rps p50 p99 ok errors expected missing dup unexpected gwcpu brcpu ldcpu rss hwm
if [ -n "$CEILING" ]; then
    ceiling bare
    ceiling event --event-headers
    bare_rate=${R[ceil-bare.rps]:-}
    ceil_rate=${R[ceil-event.rps]:-}
else
    say "broker ceiling: not built ($BUILD/bench/hq_broker_ceiling); skipped"
fi

# ---- gateway --------------------------------------------------------------------------------
gw_ok=0
if [ -x "$GATEWAY" ]; then
    say "starting hookmq-gateway on 127.0.0.1:$HTTP_PORT"
    "${client[@]}" "$GATEWAY" -c "$conf" >"$work/gateway.log" 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1; then
            gw_ok=1
            break
        fi
        kill -0 "$gw_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$gw_ok" = 1 ]; then
        curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 ||
            echo "run-gateway: warning: /readyz is not 200" >&2
        # RSS every 0.25 s, for the peak per phase (VmHWM is the peak since start)
        (while kill -0 "$gw_pid" 2>/dev/null; do
            awk -v t="$(date +%s.%N)" '/^VmRSS/ {print t, $2}' "/proc/$gw_pid/status" 2>/dev/null
            sleep 0.25
        done) >"$work/rss.log" &
        sampler_pid=$!
    else
        echo "run-gateway: hookmq-gateway did not come up: $(tail -5 "$work/gateway.log")" >&2
        failed=1
    fi
else
    echo "run-gateway: $GATEWAY is not built; gateway phases skipped" >&2
    failed=1
fi

lost_total=0
# the number of the broker's current quorum write-ahead log file (they are numbered in order;
# a new one is started when the current one reaches raft.wal_max_size_bytes, 512 MiB)
wal_no() {
    ls "$HQ_BROKER_DIR"/mnesia/*/quorum/*/ 2>/dev/null | sed -n 's/^0*\([0-9][0-9]*\)\.wal$/\1/p' |
        sort -n | tail -1
}

run_phase() { # NAME CONNS RATE
    local name=$1 conns=$2 rate=$3 res drain g0 b0 t_start t_end secs w0
    local label=$rate
    [ "$rate" = 0 ] && label="as fast as it answers"
    say "gateway $name: $conns connections, rate $label, ${PHASE_S}s"
    w0=$(wal_no)
    g0=$(cpu_ticks "$gw_pid")
    b0=$(cpu_ticks "$broker_pid")
    t_start=$(date +%s.%N)
    timeout $((PHASE_S + 30)) "${client[@]}" "$LOAD" --url "http://127.0.0.1:$HTTP_PORT/webhooks/github" \
        --connections "$conns" --duration "$PHASE_S" --rate "$rate" --body-bytes "$BODY_BYTES" \
        --prefix "$name-$$" --ids-out "$work/ids-$name" >"$work/load-$name.txt" 2>&1 || true
    t_end=$(date +%s.%N)
    secs=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN {printf "%.3f", b - a}')
    R[$name.gwcpu]=$(awk -v d=$(($(cpu_ticks "$gw_pid") - g0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", 100 * d / hz / s}')
    R[$name.brcpu]=$(awk -v d=$(($(cpu_ticks "$broker_pid") - b0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", 100 * d / hz / s}')
    R[$name.wal]=$(( $(wal_no || echo 0) - ${w0:-0} ))
    R[$name.hwm]=$(awk '/^VmHWM/ {print $2}' "/proc/$gw_pid/status" 2>/dev/null || echo 0)
    R[$name.rss]=$(awk -v a="$t_start" -v b="$t_end" '$1 >= a && $1 <= b && $2 > m {m = $2} END {print m + 0}' "$work/rss.log")
    grep -v '^RESULT' "$work/load-$name.txt" >&2 || true
    res=$(grep '^RESULT' "$work/load-$name.txt" || true)
    if [ -z "$res" ]; then
        echo "run-gateway: hq_load gave no result: $(tail -3 "$work/load-$name.txt")" >&2
        failed=1
        res="RESULT rps=0 p50_ms=0 p99_ms=0 ok=0 errors=0 cpu_pct=0"
    fi
    for k in rps p50_ms p99_ms ok errors cpu_pct; do R[$name.$k]=$(field "$k" "$res"); done
    say "draining $SINK and checking the ids answered 202"
    drain=$(timeout 60 "${client[@]}" "$DRAIN" --port "$HQ_BROKER_PORT" --queue "$SINK" --ids "$work/ids-$name" \
        --idle-ms 2000 --max-ms 45000 2>"$work/drain-$name.err") || true
    cat "$work/drain-$name.err" >&2
    echo "$drain" >&2
    if [ -z "$drain" ]; then
        failed=1
        drain="expected=? received=? distinct=? missing=? duplicates=? unexpected=?"
    fi
    for k in expected received missing duplicates unexpected; do R[$name.$k]=$(field "$k" "$drain"); done
    if [ "${R[$name.missing]}" != 0 ]; then
        lost_total=1
    fi
    purge_all
    if ! kill -0 "$gw_pid" 2>/dev/null; then
        echo "run-gateway: hookmq-gateway exited: $(tail -5 "$work/gateway.log")" >&2
        failed=1
        return 1
    fi
}

if [ "$gw_ok" = 1 ]; then
    if run_phase c32 32 0; then
        run_phase c128 128 0 || true
    fi
    max_rate=$(awk -v a="${R[c32.rps]:-0}" -v b="${R[c128.rps]:-0}" 'BEGIN {print (a > b ? a : b)}')
    half=$(awk -v m="$max_rate" 'BEGIN {printf "%.0f", m / 2}')
    if [ -z "$HALF_CONNS" ]; then
        HALF_CONNS=$(awk -v a="${R[c32.rps]:-0}" -v b="${R[c128.rps]:-0}" 'BEGIN {print (a > b ? 32 : 128)}')
    fi
    if [ "${half:-0}" -gt 0 ] && kill -0 "$gw_pid" 2>/dev/null; then
        run_phase half "$HALF_CONNS" "$half" || true
    else
        echo "run-gateway: no gateway rate measured; half-rate phase skipped" >&2
        failed=1
    fi
    curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$work/metrics.txt" 2>/dev/null || true
    if [ -s "$work/gateway.log" ]; then
        echo "run-gateway: the gateway logged (level warn):" >&2
        tail -5 "$work/gateway.log" >&2
    fi
fi

# ---- summary ----------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 > 0 && a != "") printf "%.2f", a / b; else print "n/a"}'; }
verdict() { # AWK-CONDITION -> PASS | MISS
    if awk "BEGIN {exit !($1)}" 2>/dev/null; then echo PASS; else echo MISS; fi
}
missed=0
{
    echo
    echo "hookmq gateway benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, RabbitMQ ${rabbit_version:-?}," \
        "quorum queues, ${BODY_BYTES}-byte bodies, ${PHASE_S}s per phase; events reach: ${queues}"
    echo "load average before the run: $load_before"
    [ "$PIN" = 1 ] && echo "cores split (HQ_BENCH_PIN=1): broker on CPU 0; ceiling publisher, gateway, hq_load on CPU 1"
    fmt='%-30s %9s %6s %8s %8s %7s %6s %5s %5s %5s %11s\n'
    # shellcheck disable=SC2059
    printf "$fmt" phase "msgs/s" ratio "p50 ms" "p99 ms" ok errors lost dup unexp "cpu% g/b/l"
    # shellcheck disable=SC2059
    printf "$fmt" "ceiling, bare ($CEIL_CONNS conn)" "${bare_rate:-n/a}" "$(ratio "${bare_rate:-0}" "${ceil_rate:-0}")" - - - - - - - "-/${R[ceil-bare.brcpu]:--}/-"
    # shellcheck disable=SC2059
    printf "$fmt" "ceiling, event-shaped (1.00)" "${ceil_rate:-n/a}" "1.00" - - - - - - - "-/${R[ceil-event.brcpu]:--}/-"
    for ph in c32 c128 half; do
        [ -n "${R[$ph.rps]:-}" ] || continue
        case $ph in
        c32) label="gateway, 32 conns" ;;
        c128) label="gateway, 128 conns" ;;
        half) label="gateway, $HALF_CONNS conns at ${half}/s" ;;
        esac
        # shellcheck disable=SC2059
        printf "$fmt" "$label" "${R[$ph.rps]}" "$(ratio "${R[$ph.rps]}" "${ceil_rate:-0}")" \
            "${R[$ph.p50_ms]}" "${R[$ph.p99_ms]}" "${R[$ph.ok]}" "${R[$ph.errors]}" \
            "${R[$ph.missing]}" "${R[$ph.duplicates]}" "${R[$ph.unexpected]}" \
            "${R[$ph.gwcpu]}/${R[$ph.brcpu]}/${R[$ph.cpu_pct]}"
    done
    echo "(cpu% g/b/l: share of one core used by the gateway / the broker / hq_load in the phase)"
    echo "(quorum WAL files started during the phase: c32 ${R[c32.wal]:-?}, c128 ${R[c128.wal]:-?}, half ${R[half.wal]:-?};" \
        "at a roll-over the broker writes the old log out to segment files, which can reach the phase's tail latency)"
    if [ -n "${R[c128.rps]:-}" ]; then
        r128=$(ratio "${R[c128.rps]}" "${ceil_rate:-0}")
        hwm_mib=$(awk -v k="${R[c128.hwm]}" 'BEGIN {printf "%.1f", k / 1024}')
        rss_mib=$(awk -v k="${R[c128.rss]}" 'BEGIN {printf "%.1f", k / 1024}')
        lost_sum=$(awk -v a="${R[c32.missing]:-?}" -v b="${R[c128.missing]:-?}" -v c="${R[half.missing]:-?}" \
            'BEGIN {if (a b c ~ /^[0-9]+$/) print a + b + c; else print "?"}')
        if [ "$r128" = n/a ]; then v1="n/a"; else v1=$(verdict "$r128 >= 0.8"); fi
        v2=$(verdict "\"${R[half.p99_ms]:-}\" != \"\" && ${R[half.p99_ms]:-0} <= 25")
        v3=$(verdict "$hwm_mib <= 64")
        v4=$(verdict "\"$lost_sum\" == \"0\"")
        echo
        echo "targets:"
        printf '  %-54s %-10s %s\n' "gateway/ceiling at 128 connections >= 0.80" "$r128" "$v1"
        printf '  %-54s %-10s\n' "  (against the bare-message ceiling: $(ratio "${R[c128.rps]}" "${bare_rate:-0}"))" ""
        printf '  %-54s %-10s %s\n' "p99 at half the maximum rate (${half:-?}/s) <= 25 ms" "${R[half.p99_ms]:-n/a}" "$v2"
        printf '  %-54s %-10s %s\n' "gateway peak RSS (VmHWM) after 128 conns <= 64 MiB" "$hwm_mib MiB" "$v3"
        printf '  %-54s %-10s %s\n' "lost ids (answered 202, not in $SINK), all phases" "$lost_sum" "$v4"
        echo "  (largest RSS sampled during the 128-connection phase: $rss_mib MiB)"
        for v in "$v1" "$v2" "$v3" "$v4"; do [ "$v" = PASS ] || missed=1; done
    else
        missed=1
    fi
    echo "elapsed: $(($(date +%s) - T0)) s"
} >"$work/summary.txt"
cat "$work/summary.txt"

if [ "$lost_total" = 1 ]; then
    echo "run-gateway: ids answered 202 are missing from $SINK" >&2
    failed=1
fi
if [ "${HQ_BENCH_STRICT:-0}" = 1 ] && [ "$missed" = 1 ]; then
    failed=1
fi
exit "$failed"
