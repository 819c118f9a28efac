# bench/lib.sh: what the bench scripts share, in one place (sourced, never run; see
# bench/README.md): the tree and build paths, the command line of the scripts that take their
# settings from the environment, their checks of those settings, the work directory (made, and
# kept or removed at the end), the load-average warning, the management API of the private
# broker, and starting that broker (scripts/broker); each script stops the broker it started in
# its own cleanup.
#
# A script sets bench_name (the name its messages start with) and sources this file after
# `set -euo pipefail`:
#     bench_name=replay_bench
#     # shellcheck source=bench/lib.sh
#     . "$(dirname "$0")/lib.sh"
# Functions that fail print "$bench_name: MESSAGE" on stderr and exit (1; 2 for usage).
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # BUILD, broker_started: for the script; bench_name: from it

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${HQ_BUILD_DIR:-$top/build}

# bench_env_only ARGS...: the command line of a script whose settings all come from the
# environment: --help prints the script's header comment (up to `set -euo pipefail`) and exits
# 0; no argument goes on; anything else is a usage error (exit 2).
bench_env_only() {
    case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *)
        echo "usage: bench/$(basename "$0") (settings come from the environment; see --help)" >&2
        exit 2
        ;;
    esac
}

# bench_positive VAR...: each named variable holds a positive integer, else a usage error.
bench_positive() {
    local v
    for v in "$@"; do
        if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
            echo "$bench_name: $v must be a positive integer" >&2
            exit 2
        fi
    done
}

# bench_workdir DIR PREFIX: prints the work directory: DIR (created when missing) when set, else
# a new /tmp/PREFIX.XXXXXX.
bench_workdir() {
    if [ -z "$1" ]; then
        mktemp -d "/tmp/$2.XXXXXX"
    else
        mkdir -p "$1" && printf '%s\n' "$1"
    fi
}

# bench_work_done RC WHAT: at the end of a run, keep the work directory $work when the run failed
# (RC not 0) or HQ_BENCH_KEEP=1, saying "WHAT kept in $work", else remove it.
bench_work_done() {
    if [ "${HQ_BENCH_KEEP:-0}" = 1 ] || [ "$1" -ne 0 ]; then
        echo "$bench_name: $2 kept in $work" >&2
    else
        rm -rf "$work"
    fi
}

# bench_load_check: sets load_before (the 1, 5 and 15 minute load averages) and warns when the
# load is above half the CPUs: the benchmark shares the machine's cores with it.
bench_load_check() {
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    if awk -v l="${load_before%% *}" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
        echo "$bench_name: warning: load average is $load_before on $(nproc) CPUs; the numbers will be low and noisy" >&2
    fi
}

# mgmt METHOD PATH [curl args]: the private broker's management API (vhost paths written
# %2f), failing on an HTTP error.
mgmt() {
    local m=$1 p=$2
    shift 2
    curl -sS -f -u guest:guest -H 'content-type: application/json' -X "$m" \
        "http://127.0.0.1:$HQ_BROKER_MGMT_PORT/api$p" "$@"
}
# purge QUEUE: empty a queue of the default vhost (quietly; a missing queue is fine).
purge() { mgmt DELETE "/queues/%2f/$1/contents" >/dev/null 2>&1 || true; }

# bench_broker_env PORT NAME: the private node scripts/broker starts: AMQP on PORT, management
# on PORT + 10000, its files in /tmp/hq-NAME-broker-PORT.
bench_broker_env() {
    export HQ_BROKER_PORT=$1
    export HQ_BROKER_MGMT_PORT=$((HQ_BROKER_PORT + 10000))
    export HQ_BROKER_DIR=/tmp/hq-$2-broker-$HQ_BROKER_PORT
}

# bench_broker_check [HINT]: exits 1 when a broker already answers on $HQ_BROKER_MGMT_PORT (a
# run starts its own node); HINT ends the message (what to do instead).
bench_broker_check() {
    if "$top/scripts/broker" status >/dev/null 2>&1; then
        echo "$bench_name: a broker already answers on management port $HQ_BROKER_MGMT_PORT${1:+; $1}" >&2
        exit 1
    fi
}

# bench_broker_start LOG SECONDS: start the private node in $HQ_BROKER_DIR (scripts/broker), its
# output in LOG; sets broker_started=1 for the script's cleanup first. Exits 1, with the end of
# LOG, when the node has not started within SECONDS.
bench_broker_start() {
    broker_started=1
    timeout "$2" "$top/scripts/broker" start >"$1" 2>&1 ||
        { echo "$bench_name: the broker did not start: $(tail -3 "$1")" >&2; exit 1; }
}
