#!/usr/bin/env bash
# The runtime, the kernels and their tests built in Debug with AddressSanitizer and
# UndefinedBehaviorSanitizer, and run under them. Only the MLIR-free part is built
# (MOEPLAN_BUILD_COMPILER=OFF: Debian's MLIR is not instrumented; CUDA and the libFuzzer
# targets off, which the main build has). Plans and checkpoints come from the main build's
# moeplan (scripts/setup.sh), unsanitized. scripts/test.sh runs it after the main tests.
#   1. unit: the sanitized build's ctest (runtime and kernel unit tests, checkpoint tests,
#      the checkpoint fuzz corpus replayed), with leak detection;
#   2. lit: every test in test/runtime (faults, backends, ...) and checkpoint-compare.test
#      with the sanitized moeplan-run and moeplan-compare;
#   3. equivalence: test/runtime/equivalence.py with the sanitized moeplan-run.
# Any sanitizer report fails it: UBSan stops at the first (-fno-sanitize-recover), ASan
# always does, and every report goes to BUILD/sanitizer-logs, which must stay empty (a test
# that expects moeplan-run to fail would otherwise pass on a report's exit status).
#   MOEPLAN_BUILD_DIR       the main build, for moeplan (default build)
#   MOEPLAN_ASAN_BUILD_DIR  the sanitized build (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
main=$(realpath "${MOEPLAN_BUILD_DIR:-build}")
asan=${MOEPLAN_ASAN_BUILD_DIR:-build-asan}
if [ ! -x "$main/tools/moeplan" ]; then
  echo "sanitize: $main/tools/moeplan is missing; run scripts/setup.sh first" >&2
  exit 2
fi

start=$SECONDS
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang-19 CXX=clang++-19 cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DMOEPLAN_BUILD_COMPILER=OFF -DMOEPLAN_ENABLE_CUDA=OFF -DMOEPLAN_BUILD_FUZZERS=OFF \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" > /dev/null
cmake --build "$asan" -j "${MOEPLAN_JOBS:-2}"
asan=$(realpath "$asan")
echo "sanitize: configured and built $asan in $((SECONDS - start)) s"

logs=$asan/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
# One report file per process that had one (report.PID), with file:line from llvm-symbolizer.
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-19/bin/llvm-symbolizer
asan_options="halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
asan_options+=":check_initialization_order=1:log_path=$logs/report"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/report"

# stage NAME COMMAND...: runs it; it fails on a non-zero exit or on any sanitizer report.
stage() {
  local name=$1 begin=$SECONDS rc=0
  shift
  "$@" || rc=$?
  if compgen -G "$logs/*" > /dev/null; then
    echo "sanitize: $name: sanitizer reports ($logs):" >&2
    cat "$logs"/* >&2
    rc=1
  fi
  echo "sanitize: $name: $([ $rc = 0 ] && echo ok || echo FAILED) in $((SECONDS - begin)) s"
  return $rc
}

# 1. Unit tests, with leak detection.
ASAN_OPTIONS="$asan_options:detect_leaks=1" \
  stage unit ctest --test-dir "$asan" --output-on-failure -j 2

# Everything below runs moeplan-run under mpirun, without leak detection: OpenMPI (libmpi,
# its plugins, PMIx, hwloc) keeps allocations to process exit, and every rank would report
# them as leaks that are not ours.
export ASAN_OPTIONS="$asan_options:detect_leaks=0"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

# 2. The runtime's lit tests: the sanitized tools first on PATH, moeplan the main build's
#    (lit.cfg.py's moeplan_run_build; the outputs go under $asan/test).
stage lit /usr/bin/python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv \
  --param moeplan_run_build="$asan" "$main/test/runtime" "$main/test/tools/checkpoint-compare.test"

# 3. The equivalence matrix, set up as test/runtime/runtime-tests.sh does. Not all of it: its
#    16-rank strategies are most of its time (measured sanitized: about 5 CPU-minutes for the
#    whole matrix, 1 for the part below), and the main build runs every strategy
#    unsanitized. Here: every 8-, 4- and 2-rank strategy (tp and pp 1/2/4, dp 1/2/8,
#    ep 1/2/4/8, expert_tp 1/2, micro-batches 1/2/4, both schedules, dropping and dropless,
#    the variant model: SwiGLU, RMSNorm, biases, dense layers, tied embeddings on pp 4), and
#    the 2-rank ones again on the queued backends (cpu-queued, mpi-queued). 16 ranks run in
#    the lit tests above (cpu, cpu-queued, mpi-queued, faults).
#    (`stage` runs it where set -e does not hold: each step says `|| return`.)
work=$asan/test/equivalence
equivalence() {
  local tiny=$src/examples/tiny-moe/deployment.textproto moeplan=$main/tools/moeplan
  rm -rf "$work" && mkdir -p "$work" || return
  "$moeplan" init-weights "$tiny" -o "$work/tiny.ckpt" --seed 1 || return
  "$moeplan" compile "$tiny" -o "$work/tiny.plan" || return
  mpirun -np 16 "$asan/tools/moeplan-run" "$work/tiny.plan" --checkpoint "$work/tiny.ckpt" \
    --input-seed 7 --write-input "$work/tiny.in" > /dev/null || return
  local args=(--moeplan "$moeplan" --moeplan-run "$asan/tools/moeplan-run" --description "$tiny"
              --checkpoint "$work/tiny.ckpt" --input "$work/tiny.in")
  /usr/bin/python3 "$src/test/runtime/equivalence.py" "${args[@]}" --work "$work/cpu" \
    --ranks 8 4 2 || return
  /usr/bin/python3 "$src/test/runtime/equivalence.py" "${args[@]}" --work "$work/queued" \
    --ranks 2 --run-args "--backend cpu-queued --comm mpi-queued" \
    --reference-run-args "--backend cpu"
}
stage equivalence equivalence
echo "sanitize: no sanitizer reports"
