#!/usr/bin/env bash
# compare.sh -- side-by-side measurement of webhook gateways against the same
# RabbitMQ broker, with the HTTP and broker ceilings measured in the same rounds.
#
# Each round: broker ceilings (limit_publish sync + pipelined), then every target
# in turn: recreate bench.events + bench.events.q, start the target (setsid, own
# process group), wait until it answers, run.sh (smoke test + wrk at each
# connection count + queue check), stop it by PID. Rounds are interleaved so the
# targets share the same noise; the table shows medians over rounds and
# per-round ratios against the ceilings.
#
# usage: ./compare.sh [options]
#   --product-cmd CMD      start command of the product gateway (exec'd by bash in
#                          --product-dir; use "env K=V prog ..." for extra env)
#   --product-url URL      its webhook URL (default http://127.0.0.1:$PEER_PRODUCT_PORT/webhooks/github, 18793)
#   --product-dir DIR      working directory for CMD (default: the current directory)
#   --product-name NAME    label in the table (default: product)
#   --product-exchange-type T  exchange type the product declares (default topic)
#   --product-bind-key K   binding key for bench.events.q (default github.#)
#   --targets LIST         comma list of http-ceiling,node,python,product
#                          (default: http-ceiling,node,python[,product if --product-cmd])
#   --repeats N            rounds (default 3)
#   --no-limits            skip the limit_publish broker ceilings
#   --conns "32 128"  --load-s 10  --threads 2      passed to run.sh
#   --out DIR              results folder (default results/<timestamp>)
# Every target gets WEBHOOK_SECRET, AMQP_URL, EXCHANGE=bench.events and PORT in its env.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
INVOKE_DIR=$PWD
PRODUCT_CMD="" PRODUCT_URL="http://127.0.0.1:${PEER_PRODUCT_PORT:-18793}/webhooks/github" PRODUCT_DIR=$INVOKE_DIR
PRODUCT_NAME=product PRODUCT_XTYPE=topic PRODUCT_BIND='github.#'
TARGETS="" REPEATS=3 LIMITS=1 CONNS="32 128" LOAD_S=10 THREADS=2 OUT=""
while (($#)); do
  case $1 in
    --product-cmd) PRODUCT_CMD=$2; shift 2 ;;
    --product-url) PRODUCT_URL=$2; shift 2 ;;
    --product-dir) PRODUCT_DIR=$(cd "$2" && pwd); shift 2 ;;
    --product-name) PRODUCT_NAME=$2; shift 2 ;;
    --product-exchange-type) PRODUCT_XTYPE=$2; shift 2 ;;
    --product-bind-key) PRODUCT_BIND=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --repeats) REPEATS=$2; shift 2 ;;
    --no-limits) LIMITS=0; shift ;;
    --conns) CONNS=$2; shift 2 ;;
    --load-s) LOAD_S=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $REPEATS =~ ^[0-9]+$ ]] && ((REPEATS >= 1 && REPEATS <= 20)) || { echo "--repeats 1..20" >&2; exit 2; }
if [[ -z $TARGETS ]]; then
  TARGETS=http-ceiling,node,python
  [[ -n $PRODUCT_CMD ]] && TARGETS+=,product
fi
[[ ,$TARGETS, == *,product,* && -z $PRODUCT_CMD ]] && { echo "product target needs --product-cmd" >&2; exit 2; }

export WEBHOOK_SECRET=${WEBHOOK_SECRET:-bench-secret-not-for-production}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:${BENCH_AMQP_PORT:-5790}/%2F}
export BENCH_AMQP_PORT=${BENCH_AMQP_PORT:-5790}
export EXCHANGE=bench.events
QUEUE=bench.events.q
OUT=${OUT:-$HERE/results/$(date +%Y%m%dT%H%M%S)}
BENCHQ=${BENCHQ:?BENCHQ: path of the benchq binary (bench/peer_bench.sh sets it)}
LIMIT_PUBLISH=${LIMIT_PUBLISH:-}
export BENCHQ
mkdir -p "$OUT/raw" "$OUT/logs"
ROWS=$OUT/rows.jsonl
: >"$ROWS"

# ---- prerequisites
[[ -d $HERE/node/node_modules ]] || (cd "$HERE/node" && npm ci --no-audit --no-fund)
command -v gunicorn >/dev/null || { echo "gunicorn missing (apt-get install gunicorn python3-flask python3-pika)" >&2; exit 2; }

# ---- target table: label -> dir | command | url | exchange type | bind key | port
declare -A T_DIR T_CMD T_URL T_XTYPE T_BIND
T_DIR[http-ceiling]=$HERE;              T_CMD[http-ceiling]="./limit_http -p ${PEER_HTTP_CEILING_PORT:-18790} -t 160 -d 1800"
T_URL[http-ceiling]=http://127.0.0.1:${PEER_HTTP_CEILING_PORT:-18790}/hook
T_DIR[node]=$HERE/node
T_CMD[node]="env PORT=${PEER_NODE_PORT:-18791} NODE_WORKERS=${NODE_WORKERS:-$(nproc)} node gateway.js"
T_URL[node]=http://127.0.0.1:${PEER_NODE_PORT:-18791}/webhooks/github
T_DIR[python]=$HERE/python
T_CMD[python]="env BIND=127.0.0.1:${PEER_PYTHON_PORT:-18792} gunicorn -c gunicorn.conf.py gateway:app"
T_URL[python]=http://127.0.0.1:${PEER_PYTHON_PORT:-18792}/webhooks/github
T_DIR[product]=$PRODUCT_DIR;            T_CMD[product]=$PRODUCT_CMD;  T_URL[product]=$PRODUCT_URL
for t in http-ceiling node python; do T_XTYPE[$t]=topic; T_BIND[$t]='github.#'; done
T_XTYPE[product]=$PRODUCT_XTYPE; T_BIND[product]=$PRODUCT_BIND
label_of() { [[ $1 == product ]] && echo "$PRODUCT_NAME" || echo "$1"; }
port_of() { local u=${1#http://}; u=${u%%/*}; echo "${u##*:}"; }

CUR_PID=""
stop_target() { # stop the running target by PID; escalate to its process group
  local pid=$CUR_PID i
  [[ -n $pid ]] || return 0
  CUR_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  $pid did not stop after 15 s: SIGKILL to its process group" >&2
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  # leftovers in the group (workers of a master that already exited)
  if pgrep -g "$pid" >/dev/null 2>&1; then
    kill -TERM -- "-$pid" 2>/dev/null || true; sleep 1; kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_target
  if [[ ${KEEP_BROKER_OBJECTS:-0} != 1 ]]; then
    "$BENCHQ" delete "$QUEUE" "$EXCHANGE" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_target() { # start_target NAME -> sets CUR_PID, returns 1 if it did not come up
  local t=$1 url=${T_URL[$1]} port pidfile log code i
  port=$(port_of "$url")
  if ss -ltnH "sport = :$port" | grep -q .; then
    echo "  port $port is already in use; refusing to measure someone else's server" >&2
    return 1
  fi
  pidfile=$(mktemp) log="$OUT/logs/${t}_r${ROUND}.log"
  # setsid: own process group; the bash that writes the pidfile execs the command,
  # so the recorded PID is the gateway process itself (= its process group id).
  setsid bash -c 'echo $$ >"$1"; cd "$2" || exit 1; eval "exec $3"' _ \
    "$pidfile" "${T_DIR[$t]}" "${T_CMD[$t]}" >"$log" 2>&1 < /dev/null &
  for ((i = 0; i < 50; i++)); do [[ -s $pidfile ]] && break; sleep 0.1; done
  CUR_PID=$(cat "$pidfile"); rm -f "$pidfile"
  for ((i = 0; i < 300; i++)); do # up to 30 s to answer anything
    if ! kill -0 "$CUR_PID" 2>/dev/null; then
      echo "  $t exited during startup; log:" >&2; tail -20 "$log" >&2; CUR_PID=""; return 1
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST -d '{}' \
      -H 'X-GitHub-Event: ping' -H 'X-Hub-Signature-256: sha256=0' "$url" || true)
    [[ $code != 000 ]] && return 0
    sleep 0.1
  done
  echo "  $t did not answer within 30 s" >&2
  return 1
}

limit_row() { # parse a limit_publish RESULT line into JSON
  python3 - "$ROUND" "$1" <<'EOF'
import json, sys
rnd, line = sys.argv[1], sys.argv[2]
kv = dict(p.split("=", 1) for p in line.split()[1:])
kv = {k: (float(v) if k in ("seconds", "msgs_per_s") else (int(v) if v.isdigit() else v)) for k, v in kv.items()}
kv.update(kind="limit", round=int(rnd))
print(json.dumps(kv))
EOF
}

idle_row() { # machine load with none of our targets running: 3 s of /proc/stat
  python3 - "$ROUND" <<'EOF'
import json, sys, time
def snap():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy, busy + v[3] + v[4] + v[7], v[7]
b0, t0, s0 = snap(); time.sleep(3); b1, t1, s1 = snap()
print(json.dumps({"kind": "idle", "round": int(sys.argv[1]),
                  "busy_pct": round(100.0 * (b1 - b0) / max(1, t1 - t0), 1),
                  "steal_pct": round(100.0 * (s1 - s0) / max(1, t1 - t0), 1)}))
EOF
}

echo "compare.sh: targets=$TARGETS repeats=$REPEATS conns='$CONNS' load=${LOAD_S}s threads=$THREADS out=$OUT"
IFS=, read -r -a TLIST <<<"$TARGETS"
for ((ROUND = 1; ROUND <= REPEATS; ROUND++)); do
  echo "=== round $ROUND/$REPEATS $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  idle=$(idle_row); echo "$idle" >>"$ROWS"
  echo "  background load with no target running: $idle"
  if ((LIMITS)); then
    for spec in "sync 1 3000" "pipe 256 40000"; do
      read -r mode w n <<<"$spec"
      line=$(timeout 90 "$LIMIT_PUBLISH" -m "$mode" -w "$w" -n "$n" -T 20 | grep '^RESULT') || {
        echo "  limit_publish $mode failed" >&2; continue; }
      echo "  broker ceiling $mode: $line"
      limit_row "$line" >>"$ROWS"
    done
  fi
  for t in "${TLIST[@]}"; do
    [[ -n ${T_URL[$t]:-} ]] || { echo "unknown target $t" >&2; exit 2; }
    label=$(label_of "$t")
    queue=$QUEUE
    [[ $t == http-ceiling ]] && queue=-
    if [[ $queue != - ]]; then # fresh exchange + queue for every target
      "$BENCHQ" delete "$QUEUE" "$EXCHANGE" >/dev/null
      "$BENCHQ" setup "$EXCHANGE" "${T_XTYPE[$t]}" "$QUEUE" "${T_BIND[$t]}"
    fi
    if ! start_target "$t"; then
      stop_target; echo "{\"kind\":\"failed\",\"label\":\"$label\",\"round\":$ROUND}" >>"$ROWS"; continue
    fi
    echo "  $label: pid $CUR_PID, ${T_URL[$t]}"
    if out=$(QUEUE=$queue CONNS=$CONNS LOAD_S=$LOAD_S THREADS=$THREADS TARGET_PGID=$CUR_PID \
        OUTDIR="$OUT/raw" "$HERE/run.sh" "${T_URL[$t]}" "$label" 2>&1); then :; else
      echo "  run.sh failed for $label" >&2
      echo "{\"kind\":\"failed\",\"label\":\"$label\",\"round\":$ROUND}" >>"$ROWS"
    fi
    printf '%s\n' "$out" | grep -v '^ROW ' | sed 's/^/  /'
    printf '%s\n' "$out" | sed -n 's/^ROW //p' |
      python3 -c 'import json,sys
for l in sys.stdin:
    d=json.loads(l); d.update(kind="http", round=int(sys.argv[1])); print(json.dumps(d))' "$ROUND" >>"$ROWS"
    stop_target
  done
done

python3 "$HERE/lib/aggregate.py" "$ROWS" | tee "$OUT/table.md"
