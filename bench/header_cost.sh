#!/usr/bin/env bash
# bench/header_cost.sh: what the per-message headers of an event cost the broker, in CPU per
# message, with the same publisher (hq_broker_ceiling) in interleaved rounds on a private broker
# (see bench/README.md; results in docs/performance.md, "What the headers cost the broker").
#
# Variants, each a fixed number of persistent 1 KiB messages over 2 connections with a window
# of 256, into one queue:
#   bare  body, message id, content type (no timestamp, no headers)
#   h0    + the timestamp property
#   h4    + hookmq-source, hookmq-event-type, hookmq-received-at, hookmq-scheme
#   h7    + http-x-github-event, http-x-github-delivery, http-x-hub-signature-256 (what the
#         gateway publishes for a GitHub event today)
# For each: messages/s and the broker's CPU per message (utime + stime of its beam process).
#
# usage: bench/header_cost.sh [--rounds N] [--count N] [--queue-type classic|quorum]
# Environment: HQ_BUILD_DIR (default <repo>/build), HQ_HDR_BROKER_PORT (5792; management
# + 10000), HQ_HDR_BROKER_VERSION (3.10). Loopback only; about 10-20 s per round.
set -euo pipefail

bench_name=header_cost
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
ROUNDS=3 COUNT=40000 QTYPE=classic
while (($#)); do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --count) COUNT=$2; shift 2 ;;
    --queue-type) QTYPE=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "header_cost: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 20)) || { echo "header_cost: --rounds 1..20" >&2; exit 2; }
[[ $COUNT =~ ^[0-9]+$ ]] && ((COUNT >= 1000 && COUNT <= 1000000)) || { echo "header_cost: --count 1000..1000000" >&2; exit 2; }
case $QTYPE in classic | quorum) ;; *) echo "header_cost: --queue-type classic|quorum" >&2; exit 2 ;; esac
CEILING=$BUILD/bench/hq_broker_ceiling
[ -x "$CEILING" ] || { echo "header_cost: $CEILING is not built" >&2; exit 2; }

bench_broker_env "${HQ_HDR_BROKER_PORT:-5792}" hdrcost
export HQ_BROKER_VERSION=${HQ_HDR_BROKER_VERSION:-3.10}
work=$(mktemp -d /tmp/hq-hdrcost.XXXXXX)
broker_started=0
cleanup() {
    [ "$broker_started" = 1 ] && { "$top/scripts/broker" stop >/dev/null 2>&1 || true; rm -rf "$HQ_BROKER_DIR"; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_broker_check
rm -rf "$HQ_BROKER_DIR"
bench_broker_start "$work/broker.log" 120
bpid=$(cat "$HQ_BROKER_DIR/rabbitmq.pid")
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
uri="amqp://guest:guest@127.0.0.1:$HQ_BROKER_PORT/%2f"

echo "header_cost: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $QTYPE queue," \
    "$COUNT messages per variant, $ROUNDS rounds" >&2
: >"$work/rows"
for ((r = 1; r <= ROUNDS; r++)); do
    for v in bare h0 h4 h7; do
        case $v in
        bare) flags=() ;;
        h0) flags=(--headers 0) ;;
        h4) flags=(--headers 4) ;;
        h7) flags=(--event-headers) ;;
        esac
        b0=$(ticks "$bpid")
        out=$(timeout 300 "$CEILING" --uri "$uri" --exchange hookmq.hdrcost --queue "hookmq.hdrcost.$v" \
            --queue-type "$QTYPE" --window 256 --connections 2 --count "$COUNT" "${flags[@]}" 2>&1) ||
            { echo "header_cost: hq_broker_ceiling failed: $out" >&2; exit 1; }
        b1=$(ticks "$bpid")
        rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$out" | head -1)
        echo "$r $v $rate $((b1 - b0))" >>"$work/rows"
        echo "  round $r $v: $rate msgs/s, broker $((b1 - b0)) ticks" >&2
    done
done
python3 - "$work/rows" "$COUNT" "$hz" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
count, hz = int(sys.argv[2]), int(sys.argv[3])
by = {}
for r, v, rate, t in rows:
    by.setdefault(v, {})[int(r)] = (float(rate), 1000.0 * int(t) / hz / count)
print("| variant | msgs/s (median) | broker CPU ms/msg (median) | CPU / bare (per-round median) | rate / bare (per-round median) |")
print("|---|---:|---:|---:|---:|")
for v in ("bare", "h0", "h4", "h7"):
    d = by.get(v, {})
    cpu_r = [d[k][1] / by["bare"][k][1] for k in d if k in by["bare"] and by["bare"][k][1]]
    rate_r = [d[k][0] / by["bare"][k][0] for k in d if k in by["bare"] and by["bare"][k][0]]
    print("| %s | %.0f | %.4f | %.2f | %.2f |" % (
        v, statistics.median(x[0] for x in d.values()), statistics.median(x[1] for x in d.values()),
        statistics.median(cpu_r), statistics.median(rate_r)))
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
