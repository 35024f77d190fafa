#!/usr/bin/env bash
# moeplan-predict-bench: predictions against measurements on this machine.
#
#   scripts/predict-bench.sh [WORK]
#
# 1. `moeplan calibrate --ranks 2` measures this machine (GEMM rates by rows, attention,
#    memory bandwidth, launch overhead, the MPI collectives) and fits a cluster section.
# 2. Two models on that cluster, the tiny one (d_model 128, 64 experts, top-1) and a
#    CPU-sized one (d_model 512, 8 experts, top-2, SwiGLU), each under 8 strategies of 1-2
#    ranks (never more ranks than cores): compiled, run PREDICT_BENCH_REPEATS times (default
#    3; each run 3 passes after a warm-up, its median pass), and set beside their prediction
#    (moeplan inspect --measured).
# 3. The ledger: per strategy, predicted and the median run's measured forward pass, the
#    range over its runs (the machine's own spread) and the ratio, and the
#    ratio of each kernel kind and collective kind (summed over ranks; a collective from the
#    moment its group is complete), and the time ranks waited for their group's last member;
#    then every component's spread over all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MOEPLAN_BUILD_DIR:-build}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
moeplan=$build/tools/moeplan run=$build/tools/moeplan-run
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cores=$(nproc)
[ "$cores" -ge 2 ] || { echo "predict-bench: needs 2 cores (ranks never share one)" >&2; exit 2; }

# PREDICT_BENCH_REUSE=1 with a WORK that holds calibration.json: fit that again (a change
# of the cost model judged on the same measurements) instead of measuring anew.
if [ -n "${PREDICT_BENCH_REUSE:-}" ] && [ -e "$work/calibration.json" ]; then
  "$moeplan" calibrate --measurements "$work/calibration.json" -o "$work/cluster.textproto" > /dev/null
else
  "$moeplan" calibrate --ranks 2 -o "$work/cluster.textproto" --keep-measurements "$work/calibration.json" > /dev/null
fi

# model sections
cat > "$work/tiny.model" <<'EOF'
model { layers: 4 d_model: 128 heads: 4 head_dim: 32 kv_heads: 4 experts: 64 top_k: 1
        expert_hidden: 256 moe_layers { all: true } norm: LAYER_NORM activation: GELU
        vocab_size: 512 dtype: FP32 }
workload { sequences: 16 seq_len: 32 phase: PREFILL }
EOF
cat > "$work/d512.model" <<'EOF'
model { layers: 4 d_model: 512 heads: 8 head_dim: 64 kv_heads: 8 experts: 8 top_k: 2
        expert_hidden: 1024 moe_layers { all: true } norm: RMS_NORM activation: SWIGLU
        vocab_size: 1024 dtype: FP32 }
workload { sequences: 4 seq_len: 128 phase: PREFILL }
EOF

# ranks tp pp dp ep expert_tp micro_batches [overlap]
strategies=(
  "1 1 1 1 1 1 1"
  "2 2 1 1 1 2 1"
  "2 2 1 1 2 1 2"
  "2 1 2 1 1 1 2"
  "2 1 2 1 1 1 4"
  "2 1 1 2 1 1 1"
  "2 1 1 2 2 1 1"
  "2 2 1 1 2 1 1 DUAL_MICRO_BATCH"
)
# PREDICT_BENCH_REPEATS: runs per strategy (default 3).
repeats=${PREDICT_BENCH_REPEATS:-3}
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "predict-bench: PREDICT_BENCH_REPEATS must be a positive integer, got '$repeats'" >&2; exit 2; }
reports=()
for model in tiny d512; do
  for s in "${strategies[@]}"; do
    read -r ranks tp pp dp ep etp mb overlap <<< "$s"
    name=$model-r$ranks-tp$tp-pp$pp-dp$dp-ep$ep-etp$etp-mb$mb${overlap:+-dual}
    {
      echo "name: \"$name\""
      cat "$work/$model.model"
      grep -v '^#' "$work/cluster.textproto"
      echo "strategy { tp: $tp pp: $pp dp: $dp ep: $ep expert_tp: $etp micro_batches: $mb capacity_factor: 1.25${overlap:+ overlap: $overlap} }"
    } > "$work/$name.textproto"
    "$moeplan" compile "$work/$name.textproto" -o "$work/$name.plan" -q > /dev/null 2>&1 ||
      { echo "predict-bench: $name does not compile:" >&2; "$moeplan" check "$work/$name.textproto" >&2; exit 1; }
    # Runs minutes apart on a shared machine differ by more than the model's error can be
    # judged against: each strategy runs `repeats` times, and the ledger reads the median run
    # and shows the spread of all of them.
    for ((k = 1; k <= repeats; ++k)); do
      mpirun -np "$ranks" "$run" "$work/$name.plan" --random-weights 1 --input-seed 7 \
        --iterations 3 --report-json "$work/$name.run$k.json" > /dev/null 2> "$work/$name.run$k.err"
      "$moeplan" inspect "$work/$name.plan" --measured "$work/$name.run$k.json" --json > "$work/$name.ledger$k.json"
      reports+=("$work/$name.ledger$k.json")
    done
  done
done

/usr/bin/python3 - "$work/cluster.textproto" "${reports[@]}" <<'EOF'
import json, sys, math
cluster = open(sys.argv[1]).read()
print("predict-bench: this machine, calibrated (moeplan calibrate --ranks 2):")
for line in cluster.splitlines():
    if line.startswith("# ") and "calibrate:" not in line:
        print("  " + line[2:])
print()
print(f"{'strategy':38} {'predicted':>10} {'measured':>10} {'runs (ms)':>15} {'ratio':>6}  components (predicted / measured)")
spread = {}
totals = []
inside = 0  # runs whose prediction lies within the measured range of their repeats
waits = []  # per run with unpredicted waits: their share of the measured forward pass
def forward(j):
    return next(r for r in j["measured"]["rows"] if r["component"] == "forward pass (slowest rank)")
runs = {}
for path in sys.argv[2:]:
    j = json.load(open(path))
    runs.setdefault(j["name"], []).append(j)
for name, reps in runs.items():
    measured = sorted(forward(j)["measured_s"] for j in reps)
    # The median run (the lower of an even count) stands for the strategy.
    j = sorted(reps, key=lambda j: forward(j)["measured_s"])[(len(reps) - 1) // 2]
    rows = j["measured"]["rows"]
    total = forward(j)
    ratio = total["predicted_s"] / total["measured_s"]
    totals.append(ratio)
    if measured[0] <= total["predicted_s"] <= measured[-1]:
        inside += 1
    parts = []
    ranks = sum(1 for r in rows if r["kind"] == "rank")
    for r in rows:
        # Waits the simulator predicts none of (ranks with equal work): their share only.
        if r["kind"] == "wait" and r["predicted_s"] <= 0 and r["measured_s"] > 0:
            waits.append(r["measured_s"] / ranks / total["measured_s"])
            parts.append(f"{r['component']} {r['measured_s'] / ranks * 1e3:.2f}ms per rank (none predicted)")
    for r in rows:
        c = r["component"]
        if c.startswith("rank ") or c.startswith("forward pass") or r["measured_s"] <= 0 or r["predicted_s"] <= 0:
            continue
        q = r["predicted_s"] / r["measured_s"]
        spread.setdefault(c, []).append(q)
        parts.append(f"{c.replace(' (coll.)', '')} {q:.2f}")
    span = f"{measured[0]*1e3:.1f}-{measured[-1]*1e3:.1f}"
    print(f"{name:38} {total['predicted_s']*1e3:8.2f}ms {total['measured_s']*1e3:8.2f}ms {span:>15} {ratio:6.2f}  " + ", ".join(parts))
print()
within = sum(1 for t in totals if abs(t - 1) <= 0.2)
print(f"forward pass: {within} of {len(totals)} runs within 20 % (ratio {min(totals):.2f} to {max(totals):.2f}, "
      f"geometric mean {math.exp(sum(map(math.log, totals)) / len(totals)):.2f}); measured: the median of "
      f"{max(len(r) for r in runs.values())} runs, whose own range holds the prediction in {inside} of {len(totals)}")
if waits:
    print(f"waiting in collectives for a group's last member where the simulator predicts none "
          f"(ranks with equal work), {len(waits)} runs: {min(waits) * 100:.1f} % to "
          f"{max(waits) * 100:.1f} % of the measured forward pass; the collectives count from "
          f"their instance's completion")
print("per component over all runs (ratio predicted / measured: min, geometric mean, max; runs within 30 %):")
for c, qs in sorted(spread.items()):
    g = math.exp(sum(map(math.log, qs)) / len(qs))
    ok = sum(1 for q in qs if abs(q - 1) <= 0.3)
    print(f"  {c:28} {min(qs):6.2f} {g:6.2f} {max(qs):6.2f}   {ok} of {len(qs)}")
EOF
