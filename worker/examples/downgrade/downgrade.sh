#!/bin/sh
# downgrade.sh: the durable steps example (docs/plugins.md, "Durable steps") as a command of
# hookmq-worker's exec handler, with hookmq-step: load-user, downgrade-user and send-email,
# where send-email fails its first FAIL_TIMES runs. A failed send-email exits 75 (RETRY): the
# worker saves the steps that completed (the files hookmq-step wrote in $HOOKMQ_STEPS_DIR)
# with the event, and on the retry hookmq-step prints their saved output instead of running
# them again.
#
# Use (hookmq-step must be in the worker's PATH):
#   consumers = ( { name = "billing"; bindings = [ "#" ]; handler = "exec";
#                   options = { argv = [ "/path/to/downgrade.sh", "/tmp/steps.log", "2" ]; }; } );
# LOG: each real run of a step appends "<step> <event id>" to it.
set -eu

if [ "${1:-}" = "--run" ]; then
    # one real run of step $2 (hookmq-step runs this only when the step is not saved yet)
    step=$2 log=$3
    printf '%s %s\n' "$step" "$HOOKMQ_EVENT_ID" >>"$log"
    case $step in
    load-user) printf '{"user":"%s","plan":"pro"}' "$HOOKMQ_EVENT_ID" ;;
    downgrade-user) printf 'free' ;;
    send-email)
        runs=$(grep -c -x -F "send-email $HOOKMQ_EVENT_ID" "$log" || true)
        if [ "$runs" -le "$4" ]; then
            echo "mail server unavailable (run $runs of send-email)" >&2
            exit 1
        fi
        printf 'sent' ;;
    esac
    exit 0
fi

log=${1:?usage: downgrade.sh LOG [FAIL_TIMES]}
fail_times=${2:-2}
user=$(hookmq-step load-user -- "$0" --run load-user "$log")
plan=$(hookmq-step downgrade-user -- "$0" --run downgrade-user "$log")
if ! hookmq-step send-email -- "$0" --run send-email "$log" "$fail_times" >/dev/null; then
    exit 75 # RETRY: load-user and downgrade-user go with the event
fi
echo "emailed $user: plan now $plan" >&2
