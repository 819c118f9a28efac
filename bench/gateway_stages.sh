#!/usr/bin/env bash
# bench/gateway_stages.sh: where hookmq-gateway's requests wait under the peer bench's load
# (see bench/README.md and docs/performance.md, "Where 128 connections wait").
#
# A private broker, the peer bench's exchange and classic queue, hookmq-gateway with the peer
# bench's config plus metrics_listen, then wrk (bench/peers/run.sh, signed unique 1 KiB
# webhooks) at each connection count. After each load: the stage histograms of /metrics
# (bench/peers/lib/stages.py), the broker's connection states sampled during the load (give
# it --seconds 10 or more: the management API lists a connection after about 5 s)
# (management API: "running", or "flow" when the broker's credit flow holds a publisher back,
# "blocked" on an alarm), and, with --broker-window W, the broker's own rate with plain
# rabbitmq-c at a window of W unconfirmed messages (limit_publish, one connection, no headers)
# for the latency the broker alone gives that many messages in flight.
#
# usage: bench/gateway_stages.sh [--conns "128"] [--seconds 8] [--broker-window 128]
# Environment: HQ_BUILD_DIR, HQ_STAGES_BROKER_PORT (5794; management + 10000),
# HQ_PEER_GATEWAY_CONF_EXTRA (lines for the gateway group). Gateway on 18794, /metrics 18797.
set -euo pipefail

bench_name=gateway_stages
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
peers=$top/bench/peers
CONNS=128 SECS=8 BWIN=""
while (($#)); do
    case $1 in
    --conns) CONNS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --broker-window) BWIN=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gateway_stages: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $SECS =~ ^[0-9]+$ ]] && ((SECS >= 1 && SECS <= 60)) || { echo "gateway_stages: --seconds 1..60" >&2; exit 2; }
[[ -z $BWIN || $BWIN =~ ^[0-9]+$ ]] || { echo "gateway_stages: --broker-window N" >&2; exit 2; }
GATEWAY=$BUILD/gateway/hookmq-gateway
[ -x "$GATEWAY" ] || { echo "gateway_stages: $GATEWAY is not built" >&2; exit 2; }
command -v wrk >/dev/null || { echo "gateway_stages: wrk is missing" >&2; exit 2; }

bench_broker_env "${HQ_STAGES_BROKER_PORT:-5794}" stages
export BENCH_AMQP_PORT=$HQ_BROKER_PORT BENCH_MGMT_PORT=$HQ_BROKER_MGMT_PORT
export WEBHOOK_SECRET=bench-secret-not-for-production BENCH_UNIQUE_BODY=1
port=18794 mport=18797
work=$(mktemp -d /tmp/hq-stages.XXXXXX)
broker_started=0 gw=""
cleanup() {
    [ -n "$gw" ] && { kill "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; }
    [ "$broker_started" = 1 ] && { "$top/scripts/broker" stop >/dev/null 2>&1 || true; rm -rf "$HQ_BROKER_DIR"; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tools=$BUILD/bench/peers
mkdir -p "$tools"
for b in benchq limit_publish; do
    if [ ! -x "$tools/$b" ] || [ "$peers/$b.c" -nt "$tools/$b" ]; then
        # shellcheck disable=SC2046
        cc -O2 -g -Wall -Wno-unused-parameter $(pkg-config --cflags librabbitmq) -o "$tools/$b" \
            "$peers/$b.c" $(pkg-config --libs librabbitmq)
    fi
done
export BENCHQ=$tools/benchq

bench_broker_check
rm -rf "$HQ_BROKER_DIR"
bench_broker_start "$work/broker.log" 120
export BENCH_BROKER_PID
BENCH_BROKER_PID=$(cat "$HQ_BROKER_DIR/rabbitmq.pid")
"$BENCHQ" setup bench.events topic bench.events.q 'github.#' >/dev/null

cat >"$work/hookmq.conf" <<CONF
broker = { uris = [ "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" ]; exchange = "bench.events"; };
gateway = { listen = "127.0.0.1:$port"; metrics_listen = "127.0.0.1:$mport"; spool_dir = "$work/spool"; ${HQ_PEER_GATEWAY_CONF_EXTRA:-} };
log = { level = "warn"; };
sources = ( { name = "github"; scheme = "github"; secrets = [ "$WEBHOOK_SECRET" ]; } );
CONF
echo "gateway_stages: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for c in $CONNS; do
    "$GATEWAY" -c "$work/hookmq.conf" >"$work/gateway.log" 2>&1 &
    gw=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    (
        # the management API lists a new connection after its first statistics round (5 s)
        sleep 5
        for _ in $(seq 1 $((SECS * 2 - 6 > 1 ? SECS * 2 - 6 : 1))); do
            curl -s --max-time 2 -u guest:guest "http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api/connections?columns=state" |
                grep -o '"state":"[a-z]*"' | cut -d'"' -f4 | tr '\n' ' '
            echo
            sleep 0.5
        done
    ) >"$work/states" &
    sampler=$!
    CONNS=$c LOAD_S=$SECS TARGET_PGID=0 OUTDIR="$work/raw" "$peers/run.sh" "http://127.0.0.1:$port/webhooks/github" \
        hookmq 2>&1 | grep -v '^ROW ' || true
    wait "$sampler" || true
    curl -s "http://127.0.0.1:$mport/metrics" >"$work/metrics.txt"
    kill "$gw"
    wait "$gw" || true
    gw=""
    echo
    echo "hookmq-gateway, $c connections: where the confirmed requests spent their time"
    python3 "$peers/lib/stages.py" "$work/metrics.txt"
    echo "broker connection states sampled during the load: $(tr ' ' '\n' <"$work/states" | grep . | sort | uniq -c | tr -s ' \n' ' ')"
done
if [ -n "$BWIN" ]; then
    out=$(BENCH_AMQP_PORT=$HQ_BROKER_PORT timeout 120 "$tools/limit_publish" -m pipe -w "$BWIN" -n 20000 -T 20 | grep '^RESULT' || true)
    rate=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$out")
    echo "broker alone, window $BWIN (limit_publish, no headers): ${rate:-?} msgs/s," \
        "about $(awk -v w="$BWIN" -v r="${rate:-0}" 'BEGIN {if (r > 0) printf "%.1f", 1000 * w / r; else print "?"}') ms per message in flight"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
