#!/bin/sh
# run-fuzz.sh BINARY CORPUS SECONDS: a short libFuzzer run over a copy of the seed corpus
# (new inputs go to a scratch dir, the committed corpus is not modified).
set -eu
bin=$1 corpus=$2 secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work" "$corpus"
