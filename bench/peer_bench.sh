#!/usr/bin/env bash
# bench/peer_bench.sh: hookmq-gateway side by side with a Node (express + amqplib) and a Python
# (Flask + pika under gunicorn) gateway, in interleaved rounds against one private broker
# (see bench/README.md, "Peer bench"; results in docs/performance.md).
#
# Each round: every target in turn gets a fresh durable topic exchange bench.events and classic
# queue bench.events.q (bound with github.#), is started, smoke-tested (401 on a bad signature,
# 202 and exactly one message on a good one), loaded by wrk at each connection count with
# signed GitHub-style 1 KiB webhooks (a unique body, signature and delivery id per request),
# and the queue depth is compared with the 2xx count (lost / extra). The peers and the driver
# are in bench/peers/ (copied from a harness shared between projects; see its files' heads).
# Then the issue's table: per-round ratios hookmq / Node, medians over the rounds.
#
# usage: bench/peer_bench.sh [--rounds N] [--seconds S] [--conns "32 128"]
#                            [--targets node,python,hookmq] [--limits] [--pin] [--keep]
#   --rounds   interleaved rounds (default 3; the ratios' median needs >= 3)
#   --seconds  wrk load per connection count (default 10)
#   --targets  any of node,python,hookmq,http-ceiling (default node,python,hookmq)
#   --limits   also measure the broker's publish ceiling (limit_publish) in every round
#   --pin      split the cores: the broker on CPU 0, the targets and wrk on CPU 1 (as with the
#              broker on a host of its own; needs 2+ CPUs and taskset; the peers then see one
#              CPU: Node runs one worker process)
#   --keep     keep the work directory (configs, logs, wrk output, rows.jsonl)
# Environment: HQ_BUILD_DIR (default <repo>/build), HQ_PEER_GATEWAY_CONF_EXTRA (lines added to
# the gateway group of hookmq's config, e.g. "publishers = 4;"), HQ_PEER_BROKER_PORT (5790;
# management port + 10000), HQ_PEER_BROKER_VERSION (3.10), NODE_WORKERS (nproc).
# Needs: wrk, node + npm (the Node peer's packages come from the npm registry, pinned by its
# package-lock.json), gunicorn, python3-flask, python3-pika, librabbitmq-dev, libcivetweb-dev
# (Debian packages), and a built tree (hookmq-gateway). Loopback only. Not part of ctest.
# Exit: 0 the run completed with nothing lost or extra; 1 otherwise; 2 usage.
set -euo pipefail

bench_name=peer_bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
peers=$top/bench/peers
ROUNDS=3 SECONDS_PER=10 CONNS="32 128" TARGETS=node,python,hookmq LIMITS=0 KEEP=0 PIN=0
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --targets) TARGETS=$2; shift 2 ;;
    --limits) LIMITS=1; shift ;;
    --pin) PIN=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "peer_bench: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 20)) || { echo "peer_bench: --rounds 1..20" >&2; exit 2; }
[[ $SECONDS_PER =~ ^[0-9]+$ ]] && ((SECONDS_PER >= 1 && SECONDS_PER <= 60)) ||
    { echo "peer_bench: --seconds 1..60" >&2; exit 2; }
for t in ${TARGETS//,/ }; do
    case $t in node | python | hookmq | http-ceiling) ;; *) echo "peer_bench: unknown target $t" >&2; exit 2 ;; esac
done

GATEWAY=$BUILD/gateway/hookmq-gateway
[ -x "$GATEWAY" ] || { echo "peer_bench: $GATEWAY is not built" >&2; exit 2; }
for c in wrk curl python3 cc pkg-config; do
    command -v "$c" >/dev/null || { echo "peer_bench: $c is missing" >&2; exit 2; }
done
case ,$TARGETS, in *,node,*) command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "peer_bench: node and npm are needed for the node target" >&2; exit 2; } ;; esac
# the Python that runs gunicorn (Debian's, whatever python3 is first in PATH) must have the packages
case ,$TARGETS, in *,python,*) command -v gunicorn >/dev/null &&
    "$(sed -n '1s/^#! *//p' "$(command -v gunicorn)" | cut -d' ' -f1)" -c 'import flask, pika' 2>/dev/null ||
    { echo "peer_bench: gunicorn, python3-flask and python3-pika are needed for the python target" >&2; exit 2; } ;; esac

bench_broker_env "${HQ_PEER_BROKER_PORT:-5790}" peerbench
export HQ_BROKER_VERSION=${HQ_PEER_BROKER_VERSION:-3.10}
export BENCH_AMQP_PORT=$HQ_BROKER_PORT BENCH_MGMT_PORT=$HQ_BROKER_MGMT_PORT
export AMQP_URL="amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2F"
export WEBHOOK_SECRET=bench-secret-not-for-production BENCH_UNIQUE_BODY=1
export PEER_PRODUCT_PORT=${PEER_PRODUCT_PORT:-18793}

work=$(mktemp -d /tmp/hq-peerbench.XXXXXX)
broker_started=0
cleanup() {
    if [ "$broker_started" = 1 ]; then
        "$top/scripts/broker" stop >/dev/null 2>&1 || true
        rm -rf "$HQ_BROKER_DIR"
    fi
    if [ "$KEEP" = 1 ]; then echo "peer_bench: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the harness's small C tools, built here (not by CMake: they are not the project's code)
tools=$BUILD/bench/peers
mkdir -p "$tools"
amqp_cf=$(pkg-config --cflags librabbitmq) amqp_lf=$(pkg-config --libs librabbitmq)
for b in benchq limit_publish; do
    if [ ! -x "$tools/$b" ] || [ "$peers/$b.c" -nt "$tools/$b" ]; then
        # shellcheck disable=SC2086
        cc -O2 -g -Wall -Wno-unused-parameter $amqp_cf -o "$tools/$b" "$peers/$b.c" $amqp_lf
    fi
done
if [[ ,$TARGETS, == *,http-ceiling,* ]] && { [ ! -x "$peers/limit_http" ] || [ "$peers/limit_http.c" -nt "$peers/limit_http" ]; }; then
    echo "peer_bench: http-ceiling needs bench/peers/limit_http (not copied into the project)" >&2
    exit 2
fi
export BENCHQ=$tools/benchq LIMIT_PUBLISH=$tools/limit_publish
if [[ ,$TARGETS, == *,node,* && ! -d $peers/node/node_modules ]]; then
    (cd "$peers/node" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1) ||
        { echo "peer_bench: npm ci failed: $(tail -3 "$work/npm.log")" >&2; exit 1; }
fi

# ---- a private broker, fresh
bench_broker_check "stop it first"
rm -rf "$HQ_BROKER_DIR"
echo "peer_bench: starting RabbitMQ $HQ_BROKER_VERSION on 127.0.0.1:$HQ_BROKER_PORT" >&2
bench_broker_start "$work/broker.log" 120
export BENCH_BROKER_PID
BENCH_BROKER_PID=$(cat "$HQ_BROKER_DIR/rabbitmq.pid")
pin=()
if [ "$PIN" = 1 ]; then
    [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null ||
        { echo "peer_bench: --pin needs 2 CPUs and taskset" >&2; exit 2; }
    # every thread of this broker's Erlang VM and its child processes on CPU 0
    for t in /proc/"$BENCH_BROKER_PID"/task/*; do taskset -p -c 0 "${t##*/}" >/dev/null; done
    for c in $(pgrep -P "$BENCH_BROKER_PID" || true); do taskset -a -p -c 0 "$c" >/dev/null 2>&1 || true; done
    pin=(taskset -c 1)
    echo "peer_bench: cores split: the broker on CPU 0, the targets and wrk on CPU 1" >&2
fi

# ---- hookmq's config: what the shared harness's README gives it, on our ports
cat >"$work/hookmq.conf" <<CONF
broker = { uris = [ "amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f" ]; exchange = "bench.events"; };
gateway = { listen = "127.0.0.1:$PEER_PRODUCT_PORT"; spool_dir = "$work/spool"; ${HQ_PEER_GATEWAY_CONF_EXTRA:-} };
log = { level = "warn"; };
sources = ( { name = "github"; scheme = "github"; secrets = [ "$WEBHOOK_SECRET" ]; } );
CONF

targets=${TARGETS//hookmq/product}
limits=(--no-limits)
[ "$LIMITS" = 1 ] && limits=()
echo "peer_bench: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run" >&2
rc=0
"${pin[@]}" "$peers/compare.sh" --repeats "$ROUNDS" --targets "$targets" --conns "$CONNS" --load-s "$SECONDS_PER" \
    "${limits[@]}" --out "$work/results" --product-name hookmq \
    --product-cmd "$GATEWAY -c $work/hookmq.conf" >&2 || rc=1
python3 "$peers/lib/issue_table.py" "$work/results/rows.jsonl" || rc=1
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exit $rc
