#!/usr/bin/env bash
# run.sh URL [LABEL] -- load one already-running webhook gateway with wrk and
# check that every 2xx became exactly one message in the bound queue.
#
# For each connection count in $CONNS it: purges the queue, runs wrk for
# LOAD_S seconds of load + DRAIN_S seconds in which no new request is sent (so
# in-flight requests complete and are counted), waits for the queue depth to
# settle, and prints one "ROW ..." line plus a human-readable line.
#
# Environment (defaults):
#   CONNS="32 128"  THREADS=2  LOAD_S=10  DRAIN_S=2  WRK_TIMEOUT=5 (s)
#   QUEUE=bench.events.q   ('-' = no broker check, e.g. the HTTP ceiling)
#   WEBHOOK_SECRET=bench-secret-not-for-production
#   SMOKE=1         first check 401 on a bad signature and 202 + 1 queued message
#   CROSSCHECK=1    also read the depth with `rabbitmqctl list_queues` (after the
#                   measured window; RABBIT_NODE defaults to the management API's node)
#   TARGET_PGID=    process group of the target, for CPU accounting (compare.sh sets it)
#   OUTDIR=results/raw  raw wrk output goes here
#   BENCH_DELIVERY=unique|fixed  BENCH_STATUS=1|0  (see wrk/github_webhook.lua)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
URL=${1:?usage: run.sh URL [LABEL]}
LABEL=${2:-target}
CONNS=${CONNS:-"32 128"}
THREADS=${THREADS:-2}
LOAD_S=${LOAD_S:-10}
DRAIN_S=${DRAIN_S:-2}
WRK_TIMEOUT=${WRK_TIMEOUT:-5}
QUEUE=${QUEUE:-bench.events.q}
SECRET=${WEBHOOK_SECRET:-bench-secret-not-for-production}
BODY=${BENCH_BODY:-$HERE/wrk/payload.json}
SMOKE=${SMOKE:-1}
OUTDIR=${OUTDIR:-$HERE/results/raw}
TARGET_PGID=${TARGET_PGID:-0}
CROSSCHECK=${CROSSCHECK:-0}
BENCHQ=${BENCHQ:?BENCHQ: path of the benchq binary}
mkdir -p "$OUTDIR"

# ---- guards: loopback only, bounded durations
case "$URL" in
  http://127.0.0.1:*|http://localhost:*|http://\[::1\]:*) ;;
  *) echo "run.sh: refusing non-loopback URL $URL" >&2; exit 2 ;;
esac
for v in LOAD_S DRAIN_S WRK_TIMEOUT THREADS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be an integer" >&2; exit 2; }
done
(( LOAD_S >= 1 && LOAD_S <= 120 && DRAIN_S >= 1 && DRAIN_S <= 30 )) ||
  { echo "run.sh: LOAD_S must be 1..120 and DRAIN_S 1..30" >&2; exit 2; }
[[ -x $BENCHQ ]] || { echo "run.sh: BENCHQ is not executable: $BENCHQ" >&2; exit 2; }
[[ $(stat -c %s "$BODY") -gt 0 ]]

SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r "$BODY" | cut -d' ' -f1)"
# the broker: BENCH_BROKER_PID, else the beam.smp that listens on the AMQP port, else rabbitmq's
BROKER_PID=${BENCH_BROKER_PID:-$(ss -ltnpH "sport = :${BENCH_AMQP_PORT:-5790}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)}
[[ -n $BROKER_PID ]] || BROKER_PID=$(pgrep -u rabbitmq -x beam.smp | head -1 || true)
BROKER_PID=${BROKER_PID:-0}
TICK=$(getconf CLK_TCK)
NCPU=$(nproc)

post() { # post SIGNATURE -> prints HTTP status code
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$URL" \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-GitHub-Delivery: 00000000-0000-4000-8000-$(printf '%012d' $RANDOM)" \
    -H "X-Hub-Signature-256: $1" --data-binary @"$BODY" || true
}

queue_count() { "$BENCHQ" count "$QUEUE"; }

if [[ $QUEUE != - && $CROSSCHECK == 1 && -z ${RABBIT_NODE:-} ]]; then
  RABBIT_NODE=$(curl -s --max-time 5 -u guest:guest http://127.0.0.1:${BENCH_MGMT_PORT:-15790}/api/overview |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["node"])' 2>/dev/null || echo rabbit@localhost)
fi
ctl_count() { # independent check through rabbitmqctl; '-' if unavailable
  local n
  n=$(timeout 30 rabbitmqctl -n "$RABBIT_NODE" -q list_queues name messages 2>/dev/null |
      awk -v q="$QUEUE" '$1 == q { print $2 }') || true
  echo "${n:--}"
}

# wait until the queue depth stops changing (bounded: at most 15 s)
settle_count() {
  local want=$1 last=-1 same=0 c i
  for ((i = 0; i < 60; i++)); do
    c=$(queue_count)
    if [[ $c == "$last" ]]; then same=$((same + 1)); else same=0; fi
    last=$c
    if (( c >= want && same >= 4 )) || (( same >= 8 )); then break; fi
    sleep 0.25
  done
  echo "$last"
}

if [[ $QUEUE != - && $SMOKE == 1 ]]; then
  "$BENCHQ" purge "$QUEUE" >/dev/null
  bad=$(post "sha256=$(printf '0%.0s' {1..64})")
  good=$(post "$SIG")
  n=$(settle_count 1)
  echo "smoke $LABEL: bad-signature -> $bad, good -> $good, queued -> $n"
  if [[ $bad != 401 || $good != 2?? || $n != 1 ]]; then
    echo "run.sh: smoke test failed for $LABEL (want 401, 2xx, 1 queued)" >&2
    exit 1
  fi
fi

for C in $CONNS; do
  [[ $C =~ ^[0-9]+$ ]] && (( C >= THREADS && C <= 4096 )) || { echo "bad conns $C" >&2; exit 2; }
  [[ $QUEUE != - ]] && "$BENCHQ" purge "$QUEUE" >/dev/null
  stamp=$(date +%Y%m%dT%H%M%S)
  log="$OUTDIR/${stamp}_${LABEL}_c${C}.txt"
  snap0=$(python3 "$HERE/lib/cpu.py" snap "$TARGET_PGID" "$BROKER_PID")
  TIMEFORMAT='%U %S'
  { time BENCH_BODY="$BODY" BENCH_SIG="$SIG" BENCH_LOAD_S="$LOAD_S" \
      BENCH_SECRET="${BENCH_SECRET:-${WEBHOOK_SECRET:-}}" BENCH_UNIQUE_BODY="${BENCH_UNIQUE_BODY:-0}" \
      timeout -k 5 $((LOAD_S + DRAIN_S + 20)) \
      wrk -t "$THREADS" -c "$C" -d "$((LOAD_S + DRAIN_S))s" --timeout "${WRK_TIMEOUT}s" \
          --latency -s "$HERE/wrk/github_webhook.lua" "$URL" >"$log" 2>&1; } 2>"$log.time" || {
    echo "run.sh: wrk failed for $LABEL c=$C (see $log)" >&2; exit 1; }
  snap1=$(python3 "$HERE/lib/cpu.py" snap "$TARGET_PGID" "$BROKER_PID")
  json=$(sed -n 's/^BENCHJSON //p' "$log")
  [[ -n $json ]] || { echo "run.sh: no BENCHJSON in $log" >&2; exit 1; }
  ok=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ok2xx"])' "$json")
  ctl=-
  if [[ $QUEUE != - ]]; then
    queued=$(settle_count "$ok")
    [[ $CROSSCHECK == 1 ]] && ctl=$(ctl_count)
  else
    queued=-
  fi
  read -r wu ws <"$log.time"
  python3 - "$LABEL" "$C" "$json" "$queued" "$snap0" "$snap1" "$wu" "$ws" "$TICK" "$NCPU" \
      "$LOAD_S" "$log" "$ctl" <<'EOF'
import json, sys
label, conns, js, queued, s0, s1, wu, ws, tick, ncpu, load_s, log, ctl = sys.argv[1:]
d = json.loads(js)
s0 = [int(x) for x in s0.split()]; s1 = [int(x) for x in s1.split()]
tick = int(tick); ncpu = int(ncpu)
tgt = (s1[0] - s0[0]) / tick; brk = (s1[1] - s0[1]) / tick
busy = (s1[2] - s0[2]) / tick; total = (s1[3] - s0[3]) / tick; steal = (s1[4] - s0[4]) / tick
wrk_cpu = float(wu) + float(ws)
ok = d["ok2xx"]
if queued == "-":
    lost = extra = "-"
else:
    queued = int(queued); lost = max(0, ok - queued); extra = max(0, queued - ok)
per_k = lambda c: (1000.0 * c / ok) if ok else float("nan")
other = max(0.0, busy - tgt - brk - wrk_cpu)
wall = total / ncpu if ncpu else 0
row = dict(label=label, conns=int(conns), rps=round(d["rps"], 1), p50_ms=d["p50_ms"],
           p99_ms=d["p99_ms"], max_ms=d["max_ms"], ok2xx=ok, non2xx=d["non2xx"],
           queued=queued, lost=lost, extra=extra, queued_rabbitmqctl=int(ctl) if ctl.isdigit() else ctl,
           # wrk calls request() once more to validate the script (script_verify_request)
           unanswered=d["unanswered"] - 1,
           errors=d["connect_err"] + d["read_err"] + d["write_err"] + d["timeouts"],
           target_cpu_ms_per_req=round(per_k(tgt), 4), broker_cpu_ms_per_req=round(per_k(brk), 4),
           wrk_cpu_s=round(wrk_cpu, 2), other_cpu_pct=round(100 * other / total, 1) if total else 0,
           steal_pct=round(100 * steal / total, 1) if total else 0, log=log)
print("ROW " + json.dumps(row))
print(f"{label:>14} c={conns:<4} {row['rps']:>9.1f} req/s  p50 {d['p50_ms']:7.2f} ms  "
      f"p99 {d['p99_ms']:8.2f} ms  2xx {ok:>7}  non2xx {d['non2xx']:>5}  queued {queued:>7}  "
      f"lost {lost}  extra {extra}  rabbitmqctl {ctl}  unanswered {row['unanswered']}  errors {row['errors']}  "
      f"cpu/req target {row['target_cpu_ms_per_req']} ms broker {row['broker_cpu_ms_per_req']} ms  "
      f"other-load {row['other_cpu_pct']}%")
EOF
  rm -f "$log.time"
done
