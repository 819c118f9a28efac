#!/usr/bin/env bash
# bench/replay_bench.sh: hookmq-replay throughput against the broker's confirm-publish ceiling,
# on this machine, in one run (target: replay >= 0.8 x ceiling).
#
# Against one private RabbitMQ node on 127.0.0.1 (scripts/broker):
#   1. writes a config (one consumer `rbench` bound with "#", quorum queues), runs
#      `hookmq-dlx apply`, and generates an archive of N events (1 KiB bodies, GitHub-style
#      headers) as hourly segments under the work directory;
#   2. binds a topic exchange `bench.replay.ceiling` to the work queue hookmq.rbench, so the
#      ceiling and the replay fill the very same quorum queue;
#   3. for each of R rounds, alternately:
#        ceiling  hq_broker_ceiling --count N --size B --window W --connections C
#                 (plain rabbitmq-c, persistent, pipelined confirms, into hookmq.rbench;
#                 B = a replayed copy's body + header table bytes, so both move the same
#                 bytes per message)
#        replay   hookmq-replay --from ... --to-consumer rbench --restart --window W
#                 (publish phase rate from its summary, and N / wall-clock of the whole
#                 command: config, both archive passes, connect, publish, lifecycle drain)
#        replay   the same with --no-lifecycle
#      emptying the queue between runs;
#   4. prints the medians, the ratios to the ceiling and whether the target is met (judged on
#      event throughput, --no-lifecycle: the default run also publishes one lifecycle record
#      per event, a second message the ceiling does not have; both are shown).
#
# Environment (all optional):
#   HQ_BUILD_DIR            build tree with the binaries             (default: <repo>/build)
#   HQ_BENCH_EVENTS         archived events replayed per run, N       (default: 30000)
#   HQ_BENCH_ROUNDS         rounds R                                  (default: 5)
#   HQ_BENCH_WINDOW         publishes in flight, both programs, W     (default: 256)
#   HQ_BENCH_CEILING_CONNS  ceiling connections, C (replay uses 1)    (default: 1)
#   HQ_BENCH_KEEP=1         keep the work directory
#   HQ_BENCH_STRICT=1       exit 1 when the target is missed
#   HQ_BENCH_REUSE_BROKER=1 use the broker already answering on the ports below (it is
#                           neither started nor stopped; its other queues stay untouched)
#   HQ_BROKER_DIR / HQ_BROKER_PORT / HQ_BROKER_MGMT_PORT        (default:
#                           /tmp/hq-bench-replay-broker, 5718, 15718)
# Exit: 0 the run completed (with HQ_BENCH_STRICT=1: and met the target); 1 a step failed or
# (strict) the target was missed; 2 usage.
# Bounded: about 1-2 minutes with the defaults, loopback only; Ctrl-C cleans up.
set -euo pipefail

bench_name=replay_bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
N=${HQ_BENCH_EVENTS:-30000}
ROUNDS=${HQ_BENCH_ROUNDS:-5}
WIN=${HQ_BENCH_WINDOW:-256}
CEIL_CONNS=${HQ_BENCH_CEILING_CONNS:-1}
export HQ_BROKER_DIR=${HQ_BROKER_DIR:-/tmp/hq-bench-replay-broker}
export HQ_BROKER_PORT=${HQ_BROKER_PORT:-5718}
export HQ_BROKER_MGMT_PORT=${HQ_BROKER_MGMT_PORT:-15718}
CONSUMER=rbench
QUEUE=hookmq.$CONSUMER
EXCHANGE=hookmq.rbench.events
CEIL_X=bench.replay.ceiling
BODY_BYTES=1024

bench_env_only "$@"
num() { # NAME VALUE MIN MAX
    if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
        echo "replay_bench: $1 must be $3..$4" >&2
        exit 2
    fi
}
num HQ_BENCH_EVENTS "$N" 100 1000000
num HQ_BENCH_ROUNDS "$ROUNDS" 1 9
num HQ_BENCH_WINDOW "$WIN" 1 4096
num HQ_BENCH_CEILING_CONNS "$CEIL_CONNS" 1 16

REPLAY=$BUILD/replay/hookmq-replay
DLX=$BUILD/dlx/hookmq-dlx
CEILING=$BUILD/bench/hq_broker_ceiling

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'replay_bench: %s\n' "$*" >&2
    exit 1
}
for b in "$REPLAY" "$DLX" "$CEILING"; do
    [ -x "$b" ] || die "$b is not built (cmake --build $BUILD)"
done
command -v curl >/dev/null || die "curl is needed"
command -v python3 >/dev/null || die "python3 is needed (archive generation)"

work=$(mktemp -d /tmp/hq-replay-bench.XXXXXX)
broker_started=0

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$broker_started" = 1 ]; then
        "$top/scripts/broker" stop >/dev/null 2>&1 || true
    elif [ "${HQ_BENCH_REUSE_BROKER:-0}" = 1 ]; then
        # leave the reused broker as we found it: our queues and exchanges go
        for q in "$QUEUE" "$QUEUE.dlq" "$QUEUE.retry.10s"; do
            mgmt DELETE "/queues/%2f/$q" >/dev/null 2>&1 || true
        done
        mgmt DELETE "/exchanges/%2f/$CEIL_X" >/dev/null 2>&1 || true
        mgmt DELETE "/exchanges/%2f/$EXCHANGE" >/dev/null 2>&1 || true
    fi
    bench_work_done "$rc" "config, logs and archive"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }

bench_load_check

# ---- broker -------------------------------------------------------------------------------
if [ "${HQ_BENCH_REUSE_BROKER:-0}" = 1 ]; then
    "$top/scripts/broker" status >/dev/null 2>&1 ||
        die "HQ_BENCH_REUSE_BROKER=1 but no broker answers on management port $HQ_BROKER_MGMT_PORT"
    say "using the broker on 127.0.0.1:$HQ_BROKER_PORT"
else
    bench_broker_check "stop it, choose other ports, or set HQ_BENCH_REUSE_BROKER=1"
    case "$(basename "$HQ_BROKER_DIR")" in
    hq-bench*) rm -rf "$HQ_BROKER_DIR" ;; # a fresh node each run (only ever our own bench dir)
    esac
    say "starting a private broker on 127.0.0.1:$HQ_BROKER_PORT ($HQ_BROKER_DIR)"
    bench_broker_start "$work/broker-start.log" 90
fi
rabbit_version=$(mgmt GET /overview 2>/dev/null | sed -n 's/.*"rabbitmq_version":"\([^"]*\)".*/\1/p')

# ---- config, topology, archive ------------------------------------------------------------
conf=$work/hookmq.conf
cat >"$conf" <<EOF
# written by bench/replay_bench.sh
broker = {
  uris = [ "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" ];
  exchange = "$EXCHANGE";
  queue_type = "quorum";
};
sources = ( { name = "github"; scheme = "none"; } );
consumers = (
  { name = "$CONSUMER"; bindings = [ "#" ]; handler = "log";
    retry = { delays = [ "10s" ]; max_attempts = 3; }; }
);
archive = { dir = "$work/archive"; };
log = { format = "text"; level = "warn"; };
EOF
say "topology: hookmq-dlx apply"
"$DLX" apply -c "$conf" >"$work/apply.log" 2>&1 || die "hookmq-dlx apply failed: $(tail -3 "$work/apply.log")"
mgmt PUT "/exchanges/%2f/$CEIL_X" -d '{"type":"topic","durable":true}' >/dev/null
mgmt POST "/bindings/%2f/e/$CEIL_X/q/$QUEUE" -d '{"routing_key":"#"}' >/dev/null

say "generating an archive of $N events ($BODY_BYTES-byte bodies)"
gen=$(python3 - "$work/archive" "$N" "$BODY_BYTES" <<'EOF'
import datetime, json, os, sys, time
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = (int(time.time()) // 3600 - 24) * 3600 * 1000   # yesterday, whole hours
step = max(1, 3 * 3600 * 1000 // n)                        # spread over about 3 hours
files = {}
for i in range(n):
    t = start + i * step
    d = datetime.datetime.fromtimestamp(t / 1000, datetime.timezone.utc)
    path = os.path.join(root, d.strftime("%Y/%m/%d"), d.strftime("%H") + ".jsonl")
    did = "bench-%08d" % i
    head = '{"action":"push","delivery":"%s","pad":"' % did
    body = head + "x" * max(0, size - len(head) - 2) + '"}'
    rec = {"kind": "event", "received_at": t, "source": "github", "type": "push", "id": did,
           "routing_key": "github.push",
           "properties": {"message_id": did, "content_type": "application/json",
                          "timestamp": t // 1000, "delivery_mode": 2},
           "headers": {"hookmq-source": "github", "hookmq-event-type": "push",
                       "hookmq-received-at": t, "hookmq-scheme": "github",
                       "http-x-github-event": "push", "http-x-github-delivery": did,
                       "http-x-hub-signature-256": "sha256=" + "ab" * 32},
           "body": body}
    files.setdefault(path, []).append(json.dumps(rec, separators=(",", ":")))
for path, lines in files.items():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
# bytes of a replayed copy's AMQP header table (the archived headers plus hookmq-replay-id,
# -replayed-at and -attempt): key length byte + key + type byte + value
hdrs = dict(rec["headers"])
hdrs.update({"hookmq-replay-id": "rpl-0123456789abcdef", "hookmq-replayed-at": 0,
             "hookmq-attempt": 1})
table = sum(2 + len(k) + (8 if isinstance(v, int) else 4 + len(v)) for k, v in hdrs.items())
print(start, len(body) + table)
EOF
)
read -r from_ms CEIL_BYTES <<<"$gen"
[ -n "${CEIL_BYTES:-}" ] || die "archive generation failed"
from=$(date -u -d "@$((from_ms / 1000))" +%Y-%m-%dT%H:%M:%SZ)
replay_args=(-c "$conf" --from "$from" --to-consumer "$CONSUMER" --restart --window "$WIN" -q)

# ---- rounds -------------------------------------------------------------------------------
ceil_runs="" rp_runs="" rp_wall_runs="" nl_runs="" nl_wall_runs=""
run_replay() { # LABEL EXTRA-ARGS...: appends "publish-rate wall-rate" to stdout
    local label=$1 t0 t1 out rate
    shift
    purge "$QUEUE"
    t0=$(date +%s.%N)
    out=$("$REPLAY" "${replay_args[@]}" "$@" 2>>"$work/replay.err") ||
        die "$label failed: $out $(tail -3 "$work/replay.err")"
    t1=$(date +%s.%N)
    printf '%s\n' "$out" >>"$work/replay.out"
    grep -q "complete: $N of $N events" <<<"$out" || die "$label did not replay all $N events: $out"
    rate=$(sed -n 's/.* s, \([0-9]*\)\/s$/\1/p' <<<"$out" | head -1)
    [ -n "$rate" ] || die "cannot read the rate from: $out"
    echo "$rate $(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')"
}
for r in $(seq 1 "$ROUNDS"); do
    purge "$QUEUE"
    say "round $r/$ROUNDS: broker ceiling ($CEIL_CONNS connection(s), window $WIN, $N messages of $CEIL_BYTES bytes)"
    out=$("$CEILING" --uri "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" --exchange "$CEIL_X" \
        --queue "$QUEUE" --no-declare --size "$CEIL_BYTES" --window "$WIN" \
        --connections "$CEIL_CONNS" --count "$N" 2>&1) || die "hq_broker_ceiling failed: $out"
    c=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$out")
    ceil_runs="$ceil_runs $c"
    say "round $r/$ROUNDS: hookmq-replay"
    res=$(run_replay "replay")
    read -r a b <<<"$res"
    rp_runs="$rp_runs $a" rp_wall_runs="$rp_wall_runs $b"
    say "round $r/$ROUNDS: hookmq-replay --no-lifecycle"
    res=$(run_replay "replay --no-lifecycle" --no-lifecycle)
    read -r a b <<<"$res"
    nl_runs="$nl_runs $a" nl_wall_runs="$nl_wall_runs $b"
done
purge "$QUEUE"
purge hookmq.archive

# ---- summary ------------------------------------------------------------------------------
ceil=$(median <<<"$ceil_runs")
row() { # LABEL RUNS
    local m runs=${2# }
    m=$(median <<<"$2")
    printf '%-44s %8s  %5s   %s\n' "$1" "$m" \
        "$(awk -v a="$m" -v b="$ceil" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')" "$runs"
}
{
    echo "replay benchmark: $N events ($BODY_BYTES-byte bodies; ceiling messages of $CEIL_BYTES bytes =" \
        "body + the copy's header table), window $WIN, $ROUNDS round(s)," \
        "RabbitMQ ${rabbit_version:-?}, $(nproc) CPUs, load before: $load_before"
    printf '%-44s %8s  %5s   %s\n' "run" "msgs/s" "ratio" "runs"
    row "broker ceiling ($CEIL_CONNS conn, window $WIN)" "$ceil_runs"
    row "hookmq-replay, publish phase" "$rp_runs"
    row "hookmq-replay, whole command (wall clock)" "$rp_wall_runs"
    row "hookmq-replay --no-lifecycle, publish phase" "$nl_runs"
    row "hookmq-replay --no-lifecycle, whole command" "$nl_wall_runs"
    lc=$(grep -m1 "lifecycle records" "$work/replay.out" || true)
    [ -n "$lc" ] && echo "first run's$lc"
} | tee "$work/summary.txt"
# The target is judged on event throughput: `replayed` lifecycle records are a second,
# best-effort message per event (hookmq.lifecycle -> hookmq.archive) that the ceiling does not
# publish; the default run (with them) is reported beside it.
ratio_of() { awk -v a="$(median <<<"$1")" -v b="$ceil" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
ratio=$(ratio_of "$nl_runs")
ratio_lc=$(ratio_of "$rp_runs")
verdict=MISSED
awk -v r="$ratio" 'BEGIN {exit !(r >= 0.8)}' && verdict=met
{
    echo "target: replay >= 0.8 x ceiling (events, --no-lifecycle, publish phase): $verdict ($ratio)"
    echo "        default run with a lifecycle record per event (2 messages per event): $ratio_lc"
} | tee -a "$work/summary.txt"
if [ "$verdict" != met ] && [ "${HQ_BENCH_STRICT:-0}" = 1 ]; then
    exit 1
fi
exit 0
