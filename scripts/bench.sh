#!/usr/bin/env bash
# The runtime benchmark on this machine's CPU: compiles the plans it times (the seed
# deployment; the tiny model on one rank), then runs build/test/moeplan-runtime-bench.
# The GPU benchmark runs from scripts/gpu-check.sh (plans from scripts/gpu-prepare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh > /dev/null
build=${MOEPLAN_BUILD_DIR:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/tools/moeplan" compile examples/seed-moe-30b/deployment.textproto -o "$work/seed.plan" > /dev/null 2>&1 || true  # its errors do not stop the plan
"$build/tools/moeplan" compile examples/tiny-moe/single-rank.textproto -o "$work/tiny.plan"
"$build/test/moeplan-runtime-bench" --seed-plan "$work/seed.plan" --tiny-plan "$work/tiny.plan"
