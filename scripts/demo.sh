#!/usr/bin/env bash
# The demo: builds moeplan if needed, then compiles and inspects the seed deployment, diffs it
# against the corrected strategy for all 16 GPUs; then compiles the tiny model, writes its
# weights, runs it on 16 CPU ranks and on one, and compares the two results; then a Hugging
# Face Mixtral: imported, checked, and run against transformers; and generation, sharded
# against one rank, with the time to first token and per output token measured and predicted.
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
# The best strategy for the tiny model's 16 GPUs (the seed's full search takes about a minute:
# moeplan search examples/seed-moe-30b/deployment.textproto).
step 0 "$moeplan" search examples/tiny-moe/deployment.textproto --list 3
step 0 "$moeplan" compile $seed/corrected.textproto -o "$out/seed-corrected.plan"
# diff exits 1 when the plans differ.
step 1 "$moeplan" diff "$out/seed.plan" "$out/seed-corrected.plan"
# mpirun: as root (CI) it needs these; 16 ranks share this machine's cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
run=$build/tools/moeplan-run
tiny=examples/tiny-moe
step 0 "$moeplan" compile $tiny/deployment.textproto -o "$out/tiny.plan"
step 0 "$moeplan" compile $tiny/single-rank.textproto -o "$out/tiny-1.plan"
step 0 "$moeplan" init-weights $tiny/deployment.textproto -o "$out/tiny.ckpt" --seed 1
step 0 mpirun -np 16 "$run" "$out/tiny.plan" --checkpoint "$out/tiny.ckpt" --input-seed 7 \
  --write-input "$out/tiny.in" --output "$out/tiny-16.out" --trace "$out/tiny-16.trace.json"
step 0 mpirun -np 1 "$run" "$out/tiny-1.plan" --checkpoint "$out/tiny.ckpt" --input "$out/tiny.in" \
  --output "$out/tiny-1.out"
# The 16-rank logits against the single-rank ones (the reference), fp32 tolerance.
step 0 "$build/tools/moeplan-compare" "$out/tiny-16.out" "$out/tiny-1.out"
# Pictures: the seed's plan, and the tiny plan with the run just measured beside the
# prediction (open the .html files in a browser).
step 0 "$moeplan" report "$out/seed.plan" -o "$out/seed-report.html"
step 0 "$moeplan" report "$out/tiny.plan" --trace "$out/tiny-16.trace.json" -o "$out/tiny-report.html"
step 1 "$moeplan" diff "$out/seed.plan" "$out/seed-corrected.plan" --html "$out/seed-diff.html"

# Generation: the tiny model reads a 32-token prompt and generates 8 tokens greedily over its
# KV cache, on 16 ranks and on one: the same tokens (moeplan-compare checks every tensor).
sed -e 's/seq_len: 32/prompt_len: 32\n  new_tokens: 8/' -e 's/phase: PREFILL/phase: GENERATE/' \
  $tiny/deployment.textproto > "$out/tiny-generate.textproto"
sed -e 's/seq_len: 32/prompt_len: 32\n  new_tokens: 8/' -e 's/phase: PREFILL/phase: GENERATE/' \
  $tiny/single-rank.textproto > "$out/tiny-generate-1.textproto"
step 0 "$moeplan" compile "$out/tiny-generate.textproto" -o "$out/tiny-generate.plan"
step 0 "$moeplan" compile "$out/tiny-generate-1.textproto" -o "$out/tiny-generate-1.plan"
step 0 mpirun -np 16 "$run" "$out/tiny-generate.plan" --checkpoint "$out/tiny.ckpt" \
  --input "$out/tiny.in" --output "$out/tiny-generate-16.out"
step 0 mpirun -np 1 "$run" "$out/tiny-generate-1.plan" --checkpoint "$out/tiny.ckpt" \
  --input "$out/tiny.in" --output "$out/tiny-generate-1.out"
step 0 "$build/tools/moeplan-compare" "$out/tiny-generate-16.out" "$out/tiny-generate-1.out"
# Mixtral 8x7B serving a 1024-token prompt and 512 new tokens: the KV cache, time to first
# token and per output token the plan predicts.
step 0 "$moeplan" compile examples/mixtral-8x7b/generate.textproto -o "$out/mixtral-generate.plan"
step 0 "$moeplan" inspect "$out/mixtral-generate.plan"

# A real model: Mixtral 8x7B's published config.json on the seed's cluster (46.7 B parameters,
# 12.9 B active), and a tiny random Mixtral built by Hugging Face transformers, run on 16 CPU
# ranks against transformers' own logits (test/hf/hf_oracle.py).
step 0 "$moeplan" import-hf examples/mixtral-8x7b --base examples/mixtral-8x7b/base.textproto \
  -o "$out/mixtral.textproto"
step 0 "$moeplan" check "$out/mixtral.textproto"
step 0 .venv/bin/python test/hf/hf_oracle.py --moeplan "$moeplan" --moeplan-run "$run" \
  --base test/Inputs/hf-base.textproto --work "$out/hf" --models mixtral-gqa-top2

[ $failed -eq 0 ] && echo "demo: every step ended as expected" || echo "demo: FAILED"
exit $failed
