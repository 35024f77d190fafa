#!/usr/bin/env bash
# The runtime's end-to-end checks on the tiny model (examples/tiny-moe), run by ctest:
#   runtime-tests.sh equivalence BUILD WORK   every strategy of equivalence.py's matrix
#                                             against one rank (mpirun, CPU ranks)
#   runtime-tests.sh queued BUILD WORK        the matrix again with --backend cpu-queued
#                                             --comm mpi-queued (the executor's paths for
#                                             queued backends, as on GPUs with NCCL), against
#                                             plain cpu ranks, then generating with it
#   runtime-tests.sh generate BUILD WORK      every strategy of the matrix (those whose
#                                             decode step tp does not divide: without
#                                             sequence parallelism), generating 8 tokens
#                                             after a 32-token prompt: the same tokens as
#                                             one rank
#   runtime-tests.sh oracle BUILD WORK        one rank against the PyTorch oracle
#                                             (test/oracle/moe_oracle.py), with and
#                                             without token dropping
#   runtime-tests.sh faults BUILD WORK        20 trials that kill or stop a random rank at a
#                                             random instruction (random-faults.py): every
#                                             trial ends the whole job soon, naming the rank
# Both share a checkpoint (moeplan init-weights --seed 1) and an input (--input-seed 7).
set -euo pipefail
mode=$1 build=$(realpath "$2") work=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$work"
work=$(realpath "$work")
# mpirun refuses root without these (CI runs as root); 16 ranks share few cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
python=/usr/bin/python3  # Debian's, with python3-torch and python3-numpy
moeplan=$build/tools/moeplan run=$build/tools/moeplan-run compare=$build/tools/moeplan-compare
tiny=$src/examples/tiny-moe/deployment.textproto

"$moeplan" init-weights "$tiny" -o "$work/tiny.ckpt" --seed 1
"$moeplan" compile "$tiny" -o "$work/tiny.plan"
mpirun -np 16 "$run" "$work/tiny.plan" --checkpoint "$work/tiny.ckpt" --input-seed 7 \
  --write-input "$work/tiny.in" > /dev/null

# A one-rank strategy for a model: micro-batches, dispatch groups, capacity factor.
single() {
  local model=$1 ckpt=$2 name=$3 mb=$4 groups=$5 cf=$6
  sed -e '/^strategy {/,/^}/c\
strategy { tp: 1 pp: 1 dp: 1 ep: 1 expert_tp: 1 micro_batches: '"$mb"' dispatch_groups: '"$groups"' '"$cf"' }' \
    -e 's/^  nodes: 2/  nodes: 1/; s/^  gpus_per_node: 8/  gpus_per_node: 1/' "$model" > "$work/$name.textproto"
  "$moeplan" compile "$work/$name.textproto" -o "$work/$name.plan"
  mpirun -np 1 "$run" "$work/$name.plan" --checkpoint "$ckpt" --input "$work/tiny.in" \
    --output "$work/$name.out" | grep -E "dropped|balance" || true
}

case $mode in
faults)
  "$python" "$src/test/runtime/random-faults.py" --moeplan "$moeplan" --moeplan-run "$run" \
    --plan "$work/tiny.plan" --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in" \
    --work "$work/faults" --trials 20 --stall-timeout 5
  ;;
equivalence)
  "$python" "$src/test/runtime/equivalence.py" --moeplan "$moeplan" --moeplan-run "$run" \
    --description "$tiny" --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in" --work "$work"
  ;;
generate)
  "$python" "$src/test/runtime/equivalence.py" --moeplan "$moeplan" --moeplan-run "$run" \
    --description "$tiny" --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in" --work "$work" \
    --generate 32 8
  ;;
queued)
  "$python" "$src/test/runtime/equivalence.py" --moeplan "$moeplan" --moeplan-run "$run" \
    --description "$tiny" --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in" --work "$work" \
    --run-args "--backend cpu-queued --comm mpi-queued" --reference-run-args "--backend cpu" &&
    "$python" "$src/test/runtime/equivalence.py" --moeplan "$moeplan" --moeplan-run "$run" \
      --description "$tiny" --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in" \
      --work "$work/generate" --generate 32 8 \
      --run-args "--backend cpu-queued --comm mpi-queued" --reference-run-args "--backend cpu"
  ;;
oracle)
  # The tiny model, and the variant of equivalence.py (SwiGLU, RMSNorm, biases, dense layers, a shared expert,
  # tied embeddings). With dropping: 8 micro-batches in 2 dispatch groups each (the token
  # groups of tiny's own tp 2 x dp 4 x 2 micro-batches), capacity factor 1.25; and dropless.
  "$python" "$src/test/runtime/equivalence.py" --description "$tiny" --write-variant "$work/variant.textproto"
  "$moeplan" init-weights "$work/variant.textproto" -o "$work/variant.ckpt" --seed 2
  for model in tiny variant; do
    desc=$tiny ckpt=$work/tiny.ckpt
    [ $model = variant ] && desc=$work/variant.textproto ckpt=$work/variant.ckpt
    single "$desc" "$ckpt" $model-drop 8 2 "capacity_factor: 1.25"
    "$python" "$src/test/oracle/moe_oracle.py" --checkpoint "$ckpt" --input "$work/tiny.in" \
      --output "$work/oracle-$model-drop.out" --micro-batches 8 --dispatch-groups 2 --capacity-factor 1.25
    "$compare" "$work/$model-drop.out" "$work/oracle-$model-drop.out"
    single "$desc" "$ckpt" $model-dropless 1 1 ""
    "$python" "$src/test/oracle/moe_oracle.py" --checkpoint "$ckpt" --input "$work/tiny.in" \
      --output "$work/oracle-$model-dropless.out"
    "$compare" "$work/$model-dropless.out" "$work/oracle-$model-dropless.out"
  done
  # Drop policy probs: the experts over capacity keep their highest-gated choices; on one
  # rank, and tiny's own 16-rank strategy (the same token groups) against the same oracle run.
  single "$tiny" "$work/tiny.ckpt" tiny-probs 8 2 "capacity_factor: 1.25 drop_policy: PROBS"
  "$python" "$src/test/oracle/moe_oracle.py" --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in" \
    --output "$work/oracle-tiny-probs.out" --micro-batches 8 --dispatch-groups 2 \
    --capacity-factor 1.25 --drop-policy probs
  "$compare" "$work/tiny-probs.out" "$work/oracle-tiny-probs.out"
  sed 's/^  capacity_factor: 1.25/  capacity_factor: 1.25\n  drop_policy: PROBS/' "$tiny" > "$work/tiny-probs16.textproto"
  "$moeplan" compile "$work/tiny-probs16.textproto" -o "$work/tiny-probs16.plan" -q
  mpirun -np 16 "$run" "$work/tiny-probs16.plan" --checkpoint "$work/tiny.ckpt" \
    --input "$work/tiny.in" --output "$work/tiny-probs16.out" | grep -E "dropped" || true
  "$compare" "$work/tiny-probs16.out" "$work/oracle-tiny-probs.out"
  # The policy matters: position and probs drop different choices, so their outputs differ.
  if "$compare" "$work/tiny-probs.out" "$work/tiny-drop.out" > /dev/null; then
    echo "drop policy probs computed what position does" >&2
    exit 1
  fi
  # 16-bit checkpoints: moeplan-run converts them on load, the oracle widens them in numpy.
  for dtype in BF16 F16; do
    "$moeplan" init-weights "$tiny" -o "$work/tiny-$dtype.ckpt" --seed 1 --dtype $dtype
    mpirun -np 1 "$run" "$work/tiny-dropless.plan" --checkpoint "$work/tiny-$dtype.ckpt" \
      --input "$work/tiny.in" --output "$work/tiny-$dtype.out" > /dev/null
    "$python" "$src/test/oracle/moe_oracle.py" --checkpoint "$work/tiny-$dtype.ckpt" \
      --input "$work/tiny.in" --output "$work/oracle-tiny-$dtype.out"
    "$compare" "$work/tiny-$dtype.out" "$work/oracle-tiny-$dtype.out"
  done
  ;;
*)
  echo "usage: runtime-tests.sh equivalence|generate|queued|oracle|faults BUILD WORK" >&2
  exit 2
  ;;
esac
