#!/usr/bin/env bash
# The GPU check: everything the GPU runtime promises, on a GPU machine, in one short run
# (under 8 minutes on one H200), with one report. Run scripts/gpu-prepare.sh first on a
# build machine; then, from the repository root of the GPU machine, with
# .gpu-bundle.tar.xz beside this checkout:
#   scripts/gpu-check.sh [REPORT_DIR]      (default: $OUT if set, else gpu-check-report)
# Steps, each under its own time limit, in order of what they tell per second:
#   1. the CUDA kernels against the CPU kernels (moeplan-cuda-kernel-tests)
#   2. the tiny model: cuda against cpu, BF16 against FP32, CUDA graph replay, faults on the
#      GPU path, NCCL over the visible GPUs (test/runtime/gpu-tests.sh)
#   3. the benchmark: the seed model on one GPU, prefill of 16 x 1024 and 128 x 1024 tokens,
#      against the simulator's prediction and the roofline (moeplan-runtime-bench)
#   4. the equivalence matrix with 16 processes sharing the GPU (--comm mpi)
#   5. the GPU measured for the cost model: moeplan-calibrate on one rank (cuBLAS GEMMs by
#      rows, attention, memory bandwidth, launch overhead) into calibration-h200.json beside
#      the report; fit it on the build machine with
#      `moeplan calibrate --measurements calibration-h200.json -o h200.cluster`
# The report (gpu-report.txt) holds every step's output and a summary; exit 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
out=${1:-${OUT:-gpu-check-report}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
report=$out/gpu-report.txt
: > "$report"
deadline=$((SECONDS + ${MOEPLAN_GPU_CHECK_SECONDS:-460}))
say() { echo "$*" | tee -a "$report"; }

nvidia-smi -L > /dev/null 2>&1 || { say "gpu-check: no GPU is visible here (nvidia-smi -L failed)"; exit 2; }
archive=${MOEPLAN_GPU_BUNDLE:-.gpu-bundle.tar.xz}
[ -f "$archive" ] || { say "gpu-check: no $archive: run scripts/gpu-prepare.sh on a build machine first"; exit 2; }
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
# Python's tarfile where xz is missing.
tar -C "$unpacked" -xJf "$archive" 2>/dev/null ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$archive" "$unpacked" ||
  { say "gpu-check: cannot unpack $archive"; exit 2; }
bundle=$unpacked/gpu-bundle
say "gpu-check: bundle of commit $(cat "$bundle/commit"), checkout at $(git rev-parse HEAD 2>/dev/null || echo unknown)"

# OpenMPI relocated into the bundle; one node, shared memory only.
export OPAL_PREFIX=$bundle/root/usr PMIX_PREFIX=$bundle/root/usr/lib/x86_64-linux-gnu/pmix2
export PMIX_MCA_mca_base_component_path=$PMIX_PREFIX/lib/pmix
export PATH=$bundle/root/usr/bin:$PATH
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_mca_base_component_show_load_errors=0 OMPI_MCA_plm_rsh_agent=false
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# CUDA's libraries: the toolkit's, else those PyTorch's wheels carry (cuBLAS, NCCL).
cuda_dirs=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
wheel_dirs=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({os.path.dirname(p) for r in roots for p in glob.glob(os.path.join(r, "nvidia", "*", "lib", "lib*.so*"))})))
EOF
)
export LD_LIBRARY_PATH=$bundle/lib:$bundle/root/usr/lib/x86_64-linux-gnu:$bundle/root/usr/lib/x86_64-linux-gnu/openmpi/lib:${cuda_dirs}${wheel_dirs}:${LD_LIBRARY_PATH:-}
# Python keeps the machine's own libraries (the bundle's older libz and others are for
# moeplan's binaries and OpenMPI only).
printf '#!/bin/sh\nexec env -u LD_LIBRARY_PATH python3 "$@"\n' > "$unpacked/python3"
chmod +x "$unpacked/python3"
export MOEPLAN_PYTHON=$unpacked/python3

failed=()
# step NAME SECONDS COMMAND...: runs with a time limit (never past the deadline), output to
# the report.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 20 ]; then
    say "== $name: not run, the check's time is up"
    failed+=("$name (not run)")
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "== $name (limit $limit s)"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$report"
  local status=${PIPESTATUS[0]}
  say "== $name: exit $status after $((SECONDS - start)) s"
  [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

{
  echo "== environment"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  echo "missing libraries:"
  ldd "$bundle/build/tools/moeplan-run" "$bundle/build/test/moeplan-runtime-bench" | grep 'not found' || echo "  none"
  "$MOEPLAN_PYTHON" -c 'import numpy; print("numpy", numpy.__version__)' 2>&1
} | tee -a "$report"

step kernels 90 "$bundle/build/test/moeplan-cuda-kernel-tests" --gtest_brief=1
step tiny 150 "$src/test/runtime/gpu-tests.sh" run "$bundle/build" "$bundle/work" tiny bf16 graph nccl faults
step bench 150 "$bundle/build/test/moeplan-runtime-bench" --backend cuda --iterations 10 \
  --plan "$bundle/bench/h200-16x1024.plan" --plan "$bundle/bench/h200-128x1024.plan"
step equivalence 240 "$src/test/runtime/gpu-tests.sh" run "$bundle/build" "$bundle/work" equivalence
step calibrate 60 mpirun -np 1 "$bundle/build/tools/moeplan-calibrate" --json "$out/calibration-h200.json" \
  --backend cuda --comm mpi --gemm-width 4096

say ""
say "== summary"
grep -E '^gpu-check: |^\[  (PASSED|FAILED)|forward: measured|all GEMMs:' "$report" | sed 's/^/  /' | tee -a "$report.summary" > /dev/null
cat "$report.summary" | tee -a "$report"
rm -f "$report.summary"
if [ ${#failed[@]} -gt 0 ]; then
  say "gpu-check: FAILED: ${failed[*]}"
  exit 1
fi
say "gpu-check: every step passed"
