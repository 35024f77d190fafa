#!/usr/bin/env python3
"""The equivalence matrix: every listed strategy of the tiny model, compiled and run on
N CPU ranks (mpirun), must compute what one rank computes.

For each strategy, two runs:
  dropping  capacity_factor as in examples/tiny-moe (tokens are dropped), against a single
            rank with the same token groups: micro_batches = dp x micro_batches and
            dispatch_groups = tp, so each capacity group holds the same tokens;
  dropless  no capacity factor, against the plain single-rank result.

Tolerance (fp32): |sharded - single| <= ATOL + RTOL * max|single| for every logit. Sharding
changes only the order of fp32 sums (tensor-parallel partial GEMMs summed by reduce-scatter,
vocab-parallel embeddings summed, expert-TP partial outputs summed); each reordering moves a
sum by a few units of its last place, 2^-24 ~ 6e-8 relative, growing with sqrt of the terms
(K <= 256 here) and compounding over the layers. RTOL = 1e-4 leaves two orders of magnitude
above what we measure (printed per run) while any real mistake - a wrong shard, a missing
reduction, a misrouted token - moves logits by 1e-2 or more.

A second model, VARIANT (SwiGLU, RMSNorm, biases on every linear layer, a dense FFN in
every other layer, a shared expert without a gate beside the routed ones, tied embeddings), runs a few strategies the same way, so that every
kernel and weight kind the compiler emits is exercised, tied embeddings on pp > 1 included.

Prints the strategies it covered and the largest error of each run; exit 1 on any failure.

--generate PROMPT NEW turns the workload into generation (phase GENERATE: the prompt's
prefill, then NEW - 1 decode steps over the KV cache) and runs every strategy of both
matrices. Each must generate exactly the single rank's tokens (greedy), and every step's
logits and the prefill's must be within the tolerance above. A decode step has one token per
sequence; where tp does not divide the sequences of a micro-batch, the step keeps its tokens
on every tp rank (no sequence parallelism: all-reduces, each tp rank dispatches every token).
Those strategies run dropless only: their decode step dispatches all of a micro-batch's
tokens in one capacity group per rank, while the prefill dispatches a tp-th of them, and no
single-rank dispatch_groups matches both.

Entries marked DUAL run with strategy.overlap DUAL_MICRO_BATCH: each micro-batch runs as two
halves interleaved at every collective. The halves compute what twice the micro-batches
would, so their single-rank reference has micro_batches = dp x micro_batches x 2.

On a GPU machine without the compiler (scripts/gpu-check.sh): --compile-only writes every plan
on the build machine, --precompiled runs them there; --random-weights replaces the checkpoint
files by the weights moeplan-run generates (the same values: init-weights' seeds 1 and 2);
--run-args and --reference-run-args pass backend options to the sharded runs and to the
single-rank references (e.g. "--backend cuda --comm mpi" against "--backend cpu").
"""
import argparse
import itertools
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import numpy as np  # noqa: E402
import safetensors_io  # noqa: E402

RTOL, ATOL = 1e-4, 1e-6

DUAL = "DUAL_MICRO_BATCH"

# (ranks, tp, pp, dp, ep, expert_tp, micro_batches, schedule[, overlap])
MATRIX = [
    # 16 ranks: every tp x pp, ep from 1 to 16, expert-TP, micro-batch counts, both schedules.
    (16, 1, 1, 16, 16, 1, 1, "ONE_F_ONE_B"),
    (16, 1, 1, 16, 8, 2, 1, "GPIPE"),
    (16, 1, 2, 8, 8, 1, 2, "ONE_F_ONE_B"),
    (16, 1, 4, 4, 4, 1, 4, "GPIPE"),
    (16, 2, 1, 8, 16, 1, 2, "ONE_F_ONE_B"),
    (16, 2, 1, 8, 4, 4, 1, "GPIPE"),
    (16, 2, 2, 4, 8, 1, 2, "ONE_F_ONE_B"),
    (16, 2, 2, 4, 4, 2, 4, "GPIPE"),
    (16, 2, 2, 4, 1, 8, 2, "ONE_F_ONE_B"),
    (16, 2, 4, 2, 4, 1, 4, "ONE_F_ONE_B"),
    (16, 2, 4, 2, 2, 2, 8, "GPIPE"),
    (16, 4, 1, 4, 16, 1, 1, "GPIPE"),
    (16, 4, 1, 4, 8, 2, 2, "ONE_F_ONE_B"),
    (16, 4, 2, 2, 2, 4, 2, "GPIPE"),
    (16, 4, 2, 2, 8, 1, 4, "ONE_F_ONE_B"),
    (16, 4, 4, 1, 4, 1, 4, "ONE_F_ONE_B"),
    (16, 4, 4, 1, 1, 4, 8, "GPIPE"),
    # Smaller worlds.
    (8, 2, 2, 2, 4, 1, 2, "ONE_F_ONE_B"),
    (8, 1, 1, 8, 8, 1, 2, "GPIPE"),
    (8, 4, 2, 1, 2, 2, 4, "ONE_F_ONE_B"),
    (4, 2, 2, 1, 2, 1, 2, "GPIPE"),
    (4, 1, 4, 1, 1, 1, 4, "ONE_F_ONE_B"),
    (4, 4, 1, 1, 4, 1, 1, "ONE_F_ONE_B"),
    (2, 2, 1, 1, 2, 1, 2, "GPIPE"),
    (2, 1, 2, 1, 1, 1, 2, "ONE_F_ONE_B"),
    (2, 1, 1, 2, 2, 1, 1, "GPIPE"),
    # Two halves of each micro-batch interleaved: TP and EP collectives under compute.
    (16, 2, 2, 4, 8, 1, 1, "ONE_F_ONE_B", DUAL),
    (16, 4, 1, 4, 16, 1, 2, "GPIPE", DUAL),
    (8, 2, 2, 2, 4, 1, 2, "ONE_F_ONE_B", DUAL),
    (4, 2, 2, 1, 1, 2, 2, "GPIPE", DUAL),
]


# Model fields replaced in the variant (kept: sizes, vocabulary, dtype).
VARIANT = {"moe_layers { all: true }": "moe_layers { every_nth: 2 }\n  dense_ffn_hidden: 256",
           "norm: LAYER_NORM": "norm: RMS_NORM",
           "activation: GELU": "activation: SWIGLU\n  linear_bias: true\n  tie_embeddings: true\n"
                               "  shared_expert_hidden: 128"}
VARIANT_MATRIX = [
    (16, 2, 2, 4, 8, 1, 2, "ONE_F_ONE_B"),
    (16, 4, 4, 1, 2, 2, 4, "GPIPE"),
    (8, 2, 4, 1, 2, 1, 4, "ONE_F_ONE_B"),
    (8, 2, 4, 1, 2, 1, 4, "ONE_F_ONE_B", DUAL),
]


def variant_text(base):
    for old, new in VARIANT.items():
        assert old in base, old
        base = base.replace(old, new)
    return base.replace('name: "tiny-moe"', 'name: "tiny-moe-variant"')


def strategy_text(tp, pp, dp, ep, etp, mb, schedule, capacity_factor, dispatch_groups=1,
                  overlap=None):
    lines = ["strategy {", f"  tp: {tp}", f"  pp: {pp}", f"  dp: {dp}", f"  ep: {ep}",
             f"  expert_tp: {etp}", f"  micro_batches: {mb}", f"  schedule: {schedule}",
             '  rank_order: "tp-ep-dp-pp"']
    if overlap:
        lines.append(f"  overlap: {overlap}")
    if capacity_factor is not None:
        lines.append(f"  capacity_factor: {capacity_factor}")
    if dispatch_groups > 1:
        lines.append(f"  dispatch_groups: {dispatch_groups}")
    return "\n".join(lines + ["}"]) + "\n"


class Runner:
    def __init__(self, args, base, weights, tag):
        self.args = args
        self.base = base
        self.weights = weights  # moeplan-run arguments that give the weights
        self.tag = tag
        m = re.search(r"capacity_factor:\s*([0-9.eE+-]+)", self.base)
        self.capacity_factor = float(m.group(1))
        self.sequences = int(re.search(r"sequences:\s*([0-9]+)", self.base).group(1))
        os.makedirs(args.work, exist_ok=True)

    def description(self, name, strategy):
        text = re.sub(r"\nstrategy \{.*?\n\}\n", "\n" + strategy, self.base, flags=re.S)
        path = os.path.join(self.args.work, self.tag + name + ".textproto")
        with open(path, "w") as f:
            f.write(text.replace('name: "tiny-moe"', f'name: "{self.tag}{name}"'))
        return path

    def run(self, cmd, **kw):
        r = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if r.returncode != 0:
            raise RuntimeError("`%s` exited %d:\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def compile_and_run(self, name, strategy, ranks, reference=False):
        """The run's outputs by name: "logits", and "generated", "step_logits" if generating."""
        plan = os.path.join(self.args.work, self.tag + name + ".plan")
        out = os.path.join(self.args.work, self.tag + name + ".out.safetensors")
        if not self.args.precompiled:
            self.run([self.args.moeplan, "compile", self.description(name, strategy), "-o", plan])
        if self.args.compile_only:
            return None
        extra = self.args.reference_run_args if reference else self.args.run_args
        self.run(self.args.mpirun + ["-np", str(ranks), self.args.moeplan_run, plan] + self.weights +
                 ["--input", self.args.input, "--output", out] + extra)
        tensors, _ = safetensors_io.read(out)
        return tensors


def run_matrix(args, runner, matrix):
    """Runs `matrix` on the runner's model; returns (failures, strategies covered)."""
    failures, covered = 0, []
    references = {}

    def reference(mb, groups, capacity_factor):
        key = (mb, groups, capacity_factor)
        if key not in references:
            name = "single-mb%d-g%d-%s" % (mb, groups, "drop" if capacity_factor else "dropless")
            references[key] = runner.compile_and_run(
                name, strategy_text(1, 1, 1, 1, 1, mb, "ONE_F_ONE_B", capacity_factor, groups), 1,
                reference=True)
        return references[key]

    for entry in matrix:
        (ranks, tp, pp, dp, ep, etp, mb, schedule), overlap = entry[:8], (entry[8:] or (None,))[0]
        if args.ranks and ranks not in args.ranks:
            continue
        halves = 2 if overlap == DUAL else 1
        replicated = args.generate and (runner.sequences // (dp * mb * halves)) % tp != 0
        label = f"{runner.tag}{ranks:2d} ranks: tp {tp} pp {pp} dp {dp} ep {ep:2d} expert_tp {etp} micro_batches {mb} {schedule}"
        if overlap:
            label += " " + overlap
        if args.filter and not re.search(args.filter, label):
            continue
        if replicated:
            label += " (decode step without sequence parallelism)"
        for capacity_factor in ((None,) if replicated else (runner.capacity_factor, None)):
            mode = "dropping" if capacity_factor else "dropless"
            name = f"r{ranks}-tp{tp}-pp{pp}-dp{dp}-ep{ep}-etp{etp}-mb{mb}-{schedule}-{mode}"
            if overlap:
                name += "-dual"
            start = time.time()
            try:
                got = runner.compile_and_run(name, strategy_text(tp, pp, dp, ep, etp, mb, schedule, capacity_factor,
                                                                 overlap=overlap), ranks)
                want = (reference(dp * mb * halves, tp, capacity_factor) if capacity_factor
                        else reference(1, 1, None))
                if args.compile_only:
                    continue
                ok = sorted(got) == sorted(want)
                err, bound = 0.0, 0.0
                for key in ("logits", "step_logits"):
                    if key not in want:
                        continue
                    ok = ok and got[key].shape == want[key].shape
                    if ok:
                        err = max(err, float(np.max(np.abs(got[key] - want[key]))))
                        bound = max(bound, ATOL + RTOL * float(np.max(np.abs(want[key]))))
                ok = ok and err <= bound
                if "generated" in want and ok and not np.array_equal(got["generated"], want["generated"]):
                    ok = False
                    print("generated tokens differ from one rank's:\n%s\n%s" % (got["generated"], want["generated"]),
                          file=sys.stderr)
            except RuntimeError as e:
                ok, err, bound = False, float("nan"), 0.0
                print(e, file=sys.stderr)
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {label} {mode:8s} max |error| {err:.2e} (bound {bound:.2e}) {time.time() - start:.1f} s", flush=True)
        covered.append((tp, pp, dp, ep, etp, mb, schedule, overlap or "NO_OVERLAP"))
    return failures, covered


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--description", required=True, help="the tiny model (examples/tiny-moe)")
    ap.add_argument("--write-variant", help="only write the variant's description here")
    ap.add_argument("--moeplan")
    ap.add_argument("--moeplan-run")
    ap.add_argument("--checkpoint")
    ap.add_argument("--input")
    ap.add_argument("--work")
    ap.add_argument("--ranks", type=int, nargs="*", help="only these world sizes")
    ap.add_argument("--filter", help="only strategies whose label matches this regular expression")
    ap.add_argument("--mpirun", default="mpirun --oversubscribe")
    ap.add_argument("--random-weights", action="store_true",
                    help="moeplan-run --random-weights 1 (2 for the variant) instead of checkpoints")
    ap.add_argument("--run-args", default="", help="extra moeplan-run arguments, sharded runs")
    ap.add_argument("--reference-run-args", default="", help="extra arguments, single-rank runs")
    ap.add_argument("--compile-only", action="store_true", help="write every plan, run nothing")
    ap.add_argument("--generate", type=int, nargs=2, metavar=("PROMPT", "NEW"),
                    help="generate NEW tokens after a PROMPT-token prefill (the input's seq_len)")
    ap.add_argument("--precompiled", action="store_true", help="run plans written by --compile-only")
    args = ap.parse_args()
    args.mpirun = args.mpirun.split()
    args.run_args = args.run_args.split()
    args.reference_run_args = args.reference_run_args.split()
    base = open(args.description).read()
    if args.generate:
        prompt, new = args.generate
        base, n = re.subn(r"seq_len:\s*[0-9]+\s*\n\s*phase:\s*PREFILL",
                          f"prompt_len: {prompt}\n  new_tokens: {new}\n  phase: GENERATE", base)
        assert n == 1, "the description's workload must read seq_len: N then phase: PREFILL"
    variant = variant_text(base)
    if args.write_variant:
        with open(args.write_variant, "w") as f:
            f.write(variant)
        return 0
    required = ["work"]
    required += [] if args.precompiled else ["moeplan"]
    required += [] if args.compile_only else ["moeplan_run", "input"]
    required += [] if args.random_weights or args.compile_only else ["checkpoint"]
    for name in required:
        if not getattr(args, name):
            ap.error("--%s is required" % name.replace("_", "-"))
    os.makedirs(args.work, exist_ok=True)
    if args.random_weights or args.compile_only:
        weights, variant_weights = ["--random-weights", "1"], ["--random-weights", "2"]
    else:
        variant_path = os.path.join(args.work, "variant.textproto")
        with open(variant_path, "w") as f:
            f.write(variant)
        variant_checkpoint = os.path.join(args.work, "variant.ckpt")
        subprocess.run([args.moeplan, "init-weights", variant_path, "-o", variant_checkpoint, "--seed", "2"],
                       check=True, capture_output=True)
        weights, variant_weights = ["--checkpoint", args.checkpoint], ["--checkpoint", variant_checkpoint]
    failures, covered = 0, []
    for tag, text, weights, matrix in [("", base, weights, MATRIX),
                                       ("variant-", variant, variant_weights, VARIANT_MATRIX)]:
        runner = Runner(args, text, weights, tag)
        f, c = run_matrix(args, runner, matrix)
        failures += f
        covered += c
    if args.compile_only:
        print("compiled the plans of %d strategies into %s" % (len(covered), args.work))
        return 0
    axes = {name: sorted({c[i] for c in covered}) for i, name in
            enumerate(["tp", "pp", "dp", "ep", "expert_tp", "micro_batches", "schedule", "overlap"])}
    print("covered %d strategies; %s" % (len(covered), "; ".join(f"{k} {v}" for k, v in axes.items())))
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
