#!/usr/bin/env bash
# The demo: builds moeplan if needed, then compiles and inspects the seed deployment, diffs it
# against the corrected strategy for all 16 GPUs, and checks the tiny model.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null || { echo "demo: setup failed (run scripts/setup.sh)"; exit 2; }
build=${MOEPLAN_BUILD_DIR:-build}
moeplan=$build/tools/moeplan
out=$build/demo
mkdir -p "$out"
failed=0

# Runs a command, printing it first; `expect` is the exit status it should end with.
step() {
  local expect=$1; shift
  echo "== $*"
  "$@"
  local status=$?
  if [ "$status" -ne "$expect" ]; then
    echo "demo: '$*' exited $status, expected $expect"
    failed=1
  fi
  echo
}

seed=examples/seed-moe-30b
# The seed's strategy has errors (exit 1) that do not change the plan, so it still compiles.
step 1 "$moeplan" compile $seed/deployment.textproto -o "$out/seed.plan"
step 0 "$moeplan" inspect "$out/seed.plan"
step 0 "$moeplan" compile $seed/corrected.textproto -o "$out/seed-corrected.plan"
# diff exits 1 when the plans differ.
step 1 "$moeplan" diff "$out/seed.plan" "$out/seed-corrected.plan"
step 0 "$moeplan" check examples/tiny-moe/deployment.textproto

[ $failed -eq 0 ] && echo "demo: every step ended as expected" || echo "demo: FAILED"
exit $failed
