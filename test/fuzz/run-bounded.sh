#!/usr/bin/env bash
# Runs a fuzzer for a bounded time over a scratch copy of the corpus, so that new inputs it
# finds never land in the source tree. Fails on any crash, leak or timeout.
# Usage: run-bounded.sh FUZZER CORPUS WORKDIR SECONDS [DICT] (default: description.dict)
set -euo pipefail
fuzzer=$1 corpus=$2 work=$3 seconds=$4
dict=${5:-"$(dirname "$0")/description.dict"}
rm -rf "$work" && mkdir -p "$work/new" "$work/artifacts"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -dict="$dict" \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/new" "$corpus"
