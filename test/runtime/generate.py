#!/usr/bin/env python3
"""Greedy generation with a KV cache against numpy: runs test/fuzz/plan-corpus/
valid-generate.plan (testing::generatePlan() in test/unit/TestPlans.h: embedding, RoPE, one
attention head over k/v caches, LM head; a 3-token prompt, 3 new tokens) with moeplan-run and
recomputes every step without a cache, from the whole sequence so far:
  generate.py --moeplan-run BIN --plan PLAN --work DIR [--run-args "..."]
Checks "generated", "step_logits" and the prefill's "logits", then that --new-tokens 2 gives
the first two tokens, and that --new-tokens past the plan's and a longer prompt are refused
before compute (exit 2) with messages that name both numbers.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import safetensors_io  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--moeplan-run", required=True)
ap.add_argument("--plan", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--run-args", default="")
args = ap.parse_args()
os.makedirs(args.work, exist_ok=True)
# mpirun refuses root without these (CI runs as root).
for var in ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM",
            "OMPI_MCA_rmaps_base_oversubscribe"):
    os.environ.setdefault(var, "1")
# Under scripts/sanitize.sh (a sanitized build's ctest, with leak detection) moeplan-run runs
# under mpirun: OpenMPI keeps allocations to process exit, which LeakSanitizer would report
# as leaks that are not ours (sanitize.sh turns leak detection off for every mpirun run).
if "ASAN_OPTIONS" in os.environ:
    os.environ["ASAN_OPTIONS"] += ":detect_leaks=0"

SEQUENCES, PROMPT, NEW, D, VOCAB, THETA = 2, 3, 3, 4, 8, 10000.0
rng = np.random.default_rng(5)
weights = {"embedding": rng.uniform(-1, 1, (VOCAB, D)).astype(np.float32),
           "lm_head": rng.uniform(-2, 2, (D, VOCAB)).astype(np.float32)}
prompt = np.array([[1, 5, 2], [7, 0, 3]], dtype=np.int32)
ckpt, inp = os.path.join(args.work, "generate.ckpt"), os.path.join(args.work, "generate.in")
safetensors_io.write(ckpt, weights)
safetensors_io.write(inp, {"tokens": prompt})


def rope(x, positions):
    half = D // 2
    f = THETA ** (-2.0 * np.arange(half) / D)
    angle = positions[:, None] * f[None, :]
    a, b = x[:, :half], x[:, half:]
    return np.concatenate([a * np.cos(angle) - b * np.sin(angle),
                           b * np.cos(angle) + a * np.sin(angle)], axis=1)


def forward(tokens):
    """Causal attention over the whole sequence: logits [positions, vocab] of one sequence."""
    x = weights["embedding"][tokens].astype(np.float64)
    k = rope(x, np.arange(len(tokens), dtype=np.float64))
    scores = k @ k.T / np.sqrt(D)
    scores[np.triu_indices(len(tokens), 1)] = -np.inf
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p @ x) @ weights["lm_head"]


want_ids = np.zeros((SEQUENCES, NEW), dtype=np.int64)
want_step_logits = np.zeros((SEQUENCES, NEW, VOCAB))
want_logits = np.zeros((SEQUENCES, PROMPT, VOCAB))
for s in range(SEQUENCES):
    seq = list(prompt[s])
    want_logits[s] = forward(np.array(seq))
    for t in range(NEW):
        logits = forward(np.array(seq))[-1]
        want_step_logits[s, t] = logits
        want_ids[s, t] = int(np.argmax(logits))
        seq.append(want_ids[s, t])


def run(out, *extra, prompt_file=inp):
    cmd = ["mpirun", "-np", "1", args.moeplan_run, args.plan, "--checkpoint", ckpt, "--input",
           prompt_file,
           "--output", out, "--report-json", out + ".json", *shlex.split(args.run_args), *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


failures = []
out = os.path.join(args.work, "generate.out")
r = run(out)
if r.returncode != 0:
    sys.exit("moeplan-run failed:\n" + r.stdout + r.stderr)
got, _ = safetensors_io.read(out)
if not np.array_equal(got["generated"], want_ids):
    failures.append(f"generated {got['generated'].tolist()}, numpy {want_ids.tolist()}")
for name, want in (("step_logits", want_step_logits), ("logits", want_logits)):
    if got[name].shape != want.shape or not np.allclose(got[name], want, atol=1e-4, rtol=1e-4):
        failures.append(f"{name} differs from numpy by {np.abs(got[name] - want).max()}")
report = json.load(open(out + ".json"))["generation"]
if report["new_tokens"] != NEW or report["steps"] != NEW - 1 or not report["ttft_s"] > 0:
    failures.append(f"report's generation: {report}")
if "time to first token" not in r.stdout:
    failures.append("the report text has no generation line:\n" + r.stdout)

r = run(out + ".2", "--new-tokens", "2")
got2, _ = safetensors_io.read(out + ".2") if r.returncode == 0 else ({}, None)
if r.returncode != 0 or not np.array_equal(got2.get("generated"), want_ids[:, :2]):
    failures.append("--new-tokens 2: " + r.stderr + str(got2.get("generated")))

r = run(out + ".past", "--new-tokens", "4")
if r.returncode != 2 or "--new-tokens 4 is not in 1..3" not in r.stderr:
    failures.append("--new-tokens 4 (past the plan's 3): exit %d\n%s" % (r.returncode, r.stderr))
longer = os.path.join(args.work, "generate-longer.in")
safetensors_io.write(longer, {"tokens": np.zeros((SEQUENCES, PROMPT + 1), dtype=np.int32)})
r = run(out + ".longer", prompt_file=longer)
if r.returncode != 2 or "[2, 4]" not in r.stderr or "workload.seq_len 3" not in r.stderr:
    failures.append("a 4-token prompt: exit %d\n%s" % (r.returncode, r.stderr))

if failures:
    sys.exit("generate.py: FAILED\n" + "\n".join(failures))
print("generate.py: %d sequences x %d tokens as numpy, %s" % (SEQUENCES, NEW, args.run_args or "cpu"))
