#!/bin/sh
# run-fuzz.sh BINARY CORPUS SECONDS ARTIFACTS: a short libFuzzer run over a copy of the seed
# corpus. New corpus inputs go to a scratch dir (the committed corpus is not modified), which
# is removed afterwards. Crash, leak, timeout and OOM inputs go to ARTIFACTS (a directory in the
# build tree), which is kept: reproduce with `BINARY ARTIFACTS/crash-...`.
set -eu
bin=$1 corpus=$2 secs=$3 artifacts=$4
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" "$corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "run-fuzz: $bin failed ($rc); inputs kept in $artifacts:" >&2
    ls -l "$artifacts" >&2 || true
fi
exit "$rc"
