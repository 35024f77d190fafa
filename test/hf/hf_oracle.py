#!/usr/bin/env python3
"""moeplan against Hugging Face transformers, an implementation nobody here wrote.

Builds tiny random models with transformers (no download: a config, random weights,
save_pretrained), then for each: `moeplan import-hf --base`, `moeplan compile` and
`moeplan-run --checkpoint DIR` on 1 rank and on up to 16 ranks under several strategies,
and requires moeplan's logits to match transformers' logits for the same tokens.

Run with a Python that has transformers (scripts/setup.sh makes .venv: Debian's torch plus
transformers from PyPI).

Tolerance (fp32, dropless): |moeplan - transformers| <= ATOL + RTOL * max|transformers| for
every logit. Both compute in fp32 from the same fp32 (or exactly widened bf16) weights; they
differ in the order of fp32 sums (OpenBLAS against torch's GEMMs, sharded partial sums), in
exp/cos/sin implementations (a few ulps) and in where each rounds, each a few units of 2^-24
relative, compounding over a handful of layers. RTOL = 1e-4 is two orders of magnitude above
what is measured (printed per run), while any real mistake - a rotary pair mixed up, a gate
not renormalised, a transposed weight - moves logits by 1e-2 or more.

Generation (after the logits checks; --only-generate runs it alone, --no-generate skips it):
for the MoE models of GENERATE_MODELS the workload becomes `phase: GENERATE` (16 sequences,
the base's seq_len as the prompt, --new-tokens new tokens), and on 1, 8 and 16 ranks under
GENERATE_STRATEGIES moeplan-run's greedy "generated" ids must be identical to transformers'
`generate(do_sample=False)` (no EOS: exactly N tokens), its "step_logits" must match the raw
logits generate chose each token from (output_logits) and its prefill "logits" the forward
pass, all within the same tolerance. The prompts are drawn from a larger random pool: those
whose greedy path under transformers stays clear of near ties (top-2 gap at every step at
least GAP_TOLERANCES tolerances, so that the ids are decided by logits the tolerance already
fixes) and then those generating the most distinct tokens (random tiny models like to
repeat a token).

Prints every model, strategy and largest error; exit 1 on any failure.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file, save_file

RTOL, ATOL = 1e-4, 1e-6
transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
warnings.filterwarnings("ignore", message="nn.functional.sigmoid is deprecated")

# name -> (config class, config kwargs, weights dtype[, save_pretrained's max_shard_size])
MODELS = {
    # GQA (4 query heads on 2 KV heads), top-2 of 8 experts, rope_theta 1e6, 4 layers.
    "mixtral-gqa-top2": ("MixtralConfig", dict(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, num_local_experts=8,
        num_experts_per_tok=2, rope_theta=1e6, rms_norm_eps=1e-5, sliding_window=None,
        tie_word_embeddings=False), torch.float32),
    # Top-1 of 4 experts (a renormalised gate of exactly 1), multi-head attention, tied
    # embeddings, a vocabulary of 100 (tp 8 pads it), bf16 weights, rope_theta 1e4.
    "mixtral-top1-bf16": ("MixtralConfig", dict(
        vocab_size=100, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=8, num_local_experts=4,
        num_experts_per_tok=1, rope_theta=1e4, rms_norm_eps=1e-6, sliding_window=None,
        tie_word_embeddings=True), torch.bfloat16),
    # Qwen2-MoE: MoE in layers 1 and 3 (decoder_sparse_step 2), dense FFNs in 0 and 2, a
    # gated shared expert beside top-2 of 8 experts, gates not renormalised, q/k/v biases;
    # saved as a sharded checkpoint (model.safetensors.index.json).
    "qwen2-moe-sparse-step": ("Qwen2MoeConfig", dict(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, num_experts=8, num_experts_per_tok=2,
        moe_intermediate_size=32, shared_expert_intermediate_size=48, decoder_sparse_step=2,
        norm_topk_prob=False, rope_theta=1e4, rms_norm_eps=1e-6, use_sliding_window=False,
        tie_word_embeddings=False), torch.float32, "40KB"),
    # Qwen2-MoE with every layer sparse, top-3 of 4 renormalised (norm_topk_prob), bf16.
    "qwen2-moe-norm-bf16": ("Qwen2MoeConfig", dict(
        vocab_size=96, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, num_experts=4, num_experts_per_tok=3,
        moe_intermediate_size=32, shared_expert_intermediate_size=64, decoder_sparse_step=1,
        norm_topk_prob=True, rope_theta=1e6, rms_norm_eps=1e-5, use_sliding_window=False,
        tie_word_embeddings=False), torch.bfloat16),
    # Dense Qwen2 (q/k/v biases, no o bias) with tied embeddings.
    "qwen2-dense": ("Qwen2Config", dict(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=1e4, rms_norm_eps=1e-6,
        use_sliding_window=False, tie_word_embeddings=True), torch.float32),
    # Dense Llama with multi-query attention (one KV head) and an odd vocabulary.
    "llama-mqa": ("LlamaConfig", dict(
        vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=1, rope_theta=5e5, rms_norm_eps=1e-6,
        tie_word_embeddings=False), torch.float32),
}

# (ranks, tp, pp, dp, ep, expert_tp, micro_batches, schedule); models without experts take
# ep = expert_tp = 1. A strategy a model cannot take (e.g. pp 4 with 2 layers) is skipped,
# and said so.
STRATEGIES = [
    (1, 1, 1, 1, 1, 1, 1, "ONE_F_ONE_B"),
    (1, 1, 1, 1, 1, 1, 4, "ONE_F_ONE_B"),
    (16, 1, 1, 16, 8, 1, 1, "ONE_F_ONE_B"),
    (16, 2, 2, 4, 8, 1, 2, "ONE_F_ONE_B"),
    (16, 4, 4, 1, 4, 1, 4, "GPIPE"),
    (16, 2, 1, 8, 4, 4, 2, "ONE_F_ONE_B"),
    (16, 4, 1, 4, 2, 8, 1, "GPIPE"),
    (16, 1, 4, 4, 4, 1, 2, "ONE_F_ONE_B"),
    (16, 8, 2, 1, 4, 2, 2, "ONE_F_ONE_B"),
    (8, 2, 2, 2, 4, 1, 4, "GPIPE"),
]

# Generation. A decode step has one token per sequence: where tp divides the sequences of a
# micro-batch, sequences / (dp x micro_batches), sequence parallelism splits them over tp;
# where it does not (the last two here), the step keeps them on every tp rank and all-reduces.
# Same tuple as STRATEGIES; those a model cannot take are skipped (pp 4 with 2 layers, ep 8
# with 4 experts), and said so.
GENERATE_MODELS = ["mixtral-gqa-top2", "mixtral-top1-bf16", "qwen2-moe-sparse-step",
                   "qwen2-moe-norm-bf16"]
GENERATE_STRATEGIES = [
    (1, 1, 1, 1, 1, 1, 1, "ONE_F_ONE_B"),
    (1, 1, 1, 1, 1, 1, 4, "ONE_F_ONE_B"),
    (16, 2, 2, 4, 8, 1, 1, "ONE_F_ONE_B"),   # 4 sequences per micro-batch, tp 2
    (16, 2, 2, 4, 4, 2, 1, "ONE_F_ONE_B"),   # expert_tp 2
    (16, 4, 4, 1, 4, 1, 4, "GPIPE"),         # pp 4: 4 sequences per micro-batch, tp 4
    (16, 2, 1, 8, 4, 4, 1, "ONE_F_ONE_B"),   # expert_tp 4: 2 sequences per micro-batch, tp 2
    (16, 1, 4, 4, 4, 1, 2, "ONE_F_ONE_B"),   # pp 4, 2 micro-batches of 2 sequences
    (8, 2, 2, 2, 4, 1, 4, "GPIPE"),          # 4 micro-batches of 2 sequences, tp 2
    (16, 4, 1, 4, 4, 1, 2, "ONE_F_ONE_B"),   # 2 sequences per micro-batch, tp 4: no SP in decode
    (16, 2, 2, 4, 4, 1, 4, "GPIPE"),         # 1 sequence per micro-batch, tp 2: no SP in decode
]
GENERATE_SEQUENCES = 16
PROMPT_POOL = 8         # prompts drawn per sequence kept
GAP_TOLERANCES = 10     # least top-2 gap along transformers' greedy path, in tolerances


def build_model(name, work, seed):
    cls, kwargs, dtype = MODELS[name][:3]
    shard = MODELS[name][3] if len(MODELS[name]) > 3 else None
    torch.manual_seed(seed)
    config = getattr(transformers, cls)(**kwargs, attn_implementation="eager")
    model = getattr(transformers, cls.replace("Config", "ForCausalLM"))(config)
    # Larger than the default init (std 0.02) so that every layer moves the logits.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.15)
    model = model.to(dtype).eval()
    path = os.path.join(work, name)
    if shard:
        model.save_pretrained(path, safe_serialization=True, max_shard_size=shard)
        assert os.path.exists(os.path.join(path, "model.safetensors.index.json"))
    else:
        model.save_pretrained(path, safe_serialization=True)
    return path


def reference_logits(path, tokens):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path, torch_dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.from_numpy(tokens.astype(np.int64))).logits.numpy()


def load_reference(path):
    return transformers.AutoModelForCausalLM.from_pretrained(
        path, torch_dtype=torch.float32, attn_implementation="eager").eval()


def reference_generate(model, tokens, new_tokens):
    """transformers' greedy generation: (ids [S, N], raw logits [S, N, vocab]). No EOS (a
    Mixtral config names one, and min_new_tokens would then mask it out of the argmax), no
    padding: the whole prompt is the input, every position attended."""
    ids = torch.from_numpy(tokens.astype(np.int64))
    # 4.40's greedy search falls back to the model's own generation_config.eos_token_id as a
    # stopping criterion when the one passed has none: clear it there too.
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = None
    config = transformers.GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
        eos_token_id=None, pad_token_id=None, bos_token_id=None, use_cache=True,
        return_dict_in_generate=True, output_logits=True, output_scores=True)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
    generated = out.sequences[:, tokens.shape[1]:].numpy().astype(np.int32)
    logits = torch.stack(out.logits, dim=1).numpy()
    scores = torch.stack(out.scores, dim=1).numpy()
    assert generated.shape == (tokens.shape[0], new_tokens), generated.shape
    # Nothing processed the scores, and greedy chose the first maximum of each raw logit row.
    assert np.array_equal(scores, logits)
    assert np.array_equal(generated, logits.argmax(-1).astype(np.int32))
    return generated, logits


def top2_gap(logits):
    top = np.sort(logits, axis=-1)
    return top[..., -1] - top[..., -2]


def choose_prompts(model, vocab, prompt_len, sequences, new_tokens, seed):
    """Prompts from a pool PROMPT_POOL times larger: away from near ties along the greedy path,
    then generating the most distinct tokens."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, vocab, size=(PROMPT_POOL * sequences, prompt_len), dtype=np.int32)
    generated, logits = reference_generate(model, pool, new_tokens)
    tolerance = ATOL + RTOL * float(np.abs(logits).max())
    gap = top2_gap(logits).min(axis=1)
    distinct = np.array([len(set(row)) for row in generated])
    clear = [r for r in range(len(pool)) if gap[r] >= GAP_TOLERANCES * tolerance]
    if len(clear) < sequences:
        raise RuntimeError("only %d of %d prompts keep a top-2 gap of %d tolerances" % (
            len(clear), len(pool), GAP_TOLERANCES))
    keep = sorted(sorted(clear, key=lambda r: (-distinct[r], r))[:sequences])
    return pool[keep]


def generate_check(args, runner, name, index, show):
    """The GENERATE workload against transformers' generate; returns (failures, runs, skipped,
    largest step_logits error relative to max|logit|)."""
    failures, skipped, runs, worst = [], [], 0, 0.0
    work = os.path.join(args.work, "generate")
    os.makedirs(work, exist_ok=True)
    # The seed the logits checks give this model when they run all of MODELS (index in MODELS).
    path = build_model(name, work, seed=100 + index)
    described = os.path.join(work, name + ".textproto")
    runner.run([args.moeplan, "import-hf", path, "--base", args.base, "-o", described])
    text = open(described).read()
    text = re.sub(r"\n  dtype: \w+\n", "\n  dtype: FP32\n", text)
    prompt_len = int(re.search(r"seq_len: (\d+)", text).group(1))
    vocab = int(re.search(r"vocab_size: (\d+)", text).group(1))
    new_tokens, sequences = args.new_tokens, GENERATE_SEQUENCES
    text, count = re.subn(r"\nworkload \{.*?\n\}\n", "\nworkload {\n  sequences: %d\n  prompt_len: %d\n"
                          "  new_tokens: %d\n  phase: GENERATE\n}\n" % (sequences, prompt_len, new_tokens),
                          text, flags=re.S)
    assert count == 1, "no workload block in " + described
    model = load_reference(path)
    tokens = choose_prompts(model, vocab, prompt_len, sequences, new_tokens, seed=7 + index)
    inputs = os.path.join(work, name + ".tokens")
    save_file({"tokens": tokens}, inputs)
    want_ids, want_steps = reference_generate(model, tokens, new_tokens)
    with torch.no_grad():
        want_prefill = model(torch.from_numpy(tokens.astype(np.int64))).logits.numpy()
    step_scale = float(np.abs(want_steps).max())
    prefill_scale = float(np.abs(want_prefill).max())
    step_tol, prefill_tol = ATOL + RTOL * step_scale, ATOL + RTOL * prefill_scale
    gap = top2_gap(want_steps)
    print("generate %s: %d prompts of %d tokens, %d new tokens; transformers generates %d distinct "
          "tokens per sequence on average, least top-2 gap %.3g (%.0f tolerances)" % (
              name, sequences, prompt_len, new_tokens,
              np.mean([len(set(r)) for r in want_ids]), gap.min(), gap.min() / step_tol))
    if show:
        for s in range(min(4, sequences)):
            print("  prompt %s -> %s" % (" ".join(map(str, tokens[s])), " ".join(map(str, want_ids[s]))))
    for (ranks, tp, pp, dp, ep, etp, mb, schedule) in GENERATE_STRATEGIES:
        if ranks > args.max_ranks:
            continue
        tag = "generate %s ranks %d tp %d pp %d dp %d ep %d etp %d mb %d %s" % (
            name, ranks, tp, pp, dp, ep, etp, mb, schedule)
        if (sequences // (dp * mb)) % tp != 0:
            tag += " (decode step without sequence parallelism)"
        stem = os.path.join(work, "%s-%d-%d-%d-%d-%d-%d-%s" % (name, tp, pp, dp, ep, etp, mb, schedule))
        ran = runner.compile_and_run(text, (tp, pp, dp, ep, etp, mb, schedule), stem, tag, ranks,
                                     path, inputs, skipped, failures)
        if ran is None:
            continue
        output, start = ran
        runs += 1
        out = load_file(output)
        problems = []
        for key, want in (("generated", want_ids), ("step_logits", want_steps), ("logits", want_prefill)):
            if key not in out:
                problems.append("no %r in the output" % key)
            elif out[key].shape != want.shape:
                problems.append("%s %s, transformers %s" % (key, out[key].shape, want.shape))
        if problems:
            failures.append("%s: %s" % (tag, "; ".join(problems)))
            print("FAIL %s: %s" % (tag, "; ".join(problems)))
            continue
        got_ids, got_steps, got_prefill = out["generated"], out["step_logits"], out["logits"]
        prefill_err = float(np.abs(got_prefill - want_prefill).max())
        # Step k's logits are comparable where both generated the same tokens before step k.
        same = np.ones((sequences, new_tokens), dtype=bool)
        same[:, 1:] = np.cumprod(got_ids[:, :-1] == want_ids[:, :-1], axis=1).astype(bool)
        step_err = np.where(same[..., None], np.abs(got_steps - want_steps), 0.0).max(axis=(0, 2))
        ids_ok = np.array_equal(got_ids, want_ids)
        steps_ok = bool(step_err.max() <= step_tol)
        prefill_ok = prefill_err <= prefill_tol
        ok = ids_ok and steps_ok and prefill_ok
        worst = max(worst, float(step_err.max()) / step_scale)
        print("%s %s: ids %s, step_logits max |error| %.3g (%.2g of max |logit| %.3g, worst at step %d), "
              "prefill logits %.3g (%.2g) in %.1f s" % (
                  "ok  " if ok else "FAIL", tag, "identical" if ids_ok else "DIFFER", step_err.max(),
                  step_err.max() / step_scale, step_scale, int(step_err.argmax()), prefill_err,
                  prefill_err / prefill_scale, time.time() - start))
        if ok:
            continue
        why = []
        if not prefill_ok:
            why.append("prefill logits max error %.3g above %.3g" % (prefill_err, prefill_tol))
        if not steps_ok:
            bad = [k for k in range(new_tokens) if step_err[k] > step_tol]
            why.append("step_logits above %.3g first at step %d (%s)" % (
                step_tol, bad[0], "the prefill's last position" if bad[0] == 0 else "decode step %d" % bad[0]))
        if not ids_ok:
            rows = [r for r in range(sequences) if not np.array_equal(got_ids[r], want_ids[r])]
            first = min(int(np.argmax(got_ids[r] != want_ids[r])) for r in rows)
            why.append("generated ids differ in %d of %d sequences, first at step %d" % (
                len(rows), sequences, first))
            for r in rows[:4]:
                k = int(np.argmax(got_ids[r] != want_ids[r]))
                print("    sequence %d moeplan      %s\n    %s transformers %s\n    %s first at step %d: "
                      "moeplan chose %d, transformers %d (transformers' top-2 gap there %.3g)" % (
                          r, got_ids[r].tolist(), " " * len("sequence %d" % r), want_ids[r].tolist(),
                          " " * len("sequence %d" % r), k, got_ids[r, k], want_ids[r, k], gap[r, k]))
        print("    step_logits max |error| per step (same prefix): " +
              " ".join("%.3g" % e for e in step_err))
        failures.append("%s: %s" % (tag, "; ".join(why)))
    return failures, runs, skipped, worst


def strategy_text(tp, pp, dp, ep, etp, mb, schedule):
    return ("strategy {\n" + f"  tp: {tp}\n  pp: {pp}\n  dp: {dp}\n  ep: {ep}\n"
            f"  expert_tp: {etp}\n  micro_batches: {mb}\n  schedule: {schedule}\n" + "}\n")


class Runner:
    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        OMPI_MCA_rmaps_base_oversubscribe="1")

    def compile_and_run(self, text, strategy, stem, tag, ranks, checkpoint, inputs, skipped, failures):
        """Compiles `text` with `strategy` (strategy_text's arguments) into STEM.plan and runs it
        on `ranks` ranks; returns the output's path and the run's start time, or None after noting a strategy that does
        not compile in `skipped` or a failed run in `failures`."""
        desc = re.sub(r"\nstrategy \{.*?\n\}\n", "\n" + strategy_text(*strategy), text, flags=re.S)
        with open(stem + ".textproto", "w") as f:
            f.write(desc)
        compiled = self.run([self.args.moeplan, "compile", stem + ".textproto", "-o", stem + ".plan", "-q"],
                            check=False)
        if compiled.returncode != 0:
            errors = [l for l in compiled.stderr.splitlines() if "error" in l]
            skipped.append("%s: %s" % (tag, errors[0] if errors else compiled.stderr.strip()))
            return None
        start = time.time()
        try:
            self.run(["mpirun", "-np", str(ranks), self.args.moeplan_run, stem + ".plan",
                      "--checkpoint", checkpoint, "--input", inputs, "--output", stem + ".out"])
        except RuntimeError as e:
            failures.append("%s: %s" % (tag, e))
            print("FAIL %s: moeplan-run failed" % tag)
            return None
        return stem + ".out", start

    def run(self, cmd, check=True):
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moeplan", required=True)
    ap.add_argument("--moeplan-run", required=True)
    ap.add_argument("--base", required=True, help="test/Inputs/hf-base.textproto")
    ap.add_argument("--work", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--max-ranks", type=int, default=16)
    ap.add_argument("--generate-models", default=",".join(GENERATE_MODELS),
                    help="models the generation check runs ('' for none)")
    ap.add_argument("--new-tokens", type=int, default=8, help="generation: tokens per sequence")
    ap.add_argument("--show-generated", action="store_true",
                    help="print the first prompts and transformers' generated ids of every model (default: "
                         "of the first)")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--only-generate", action="store_true", help="only the generation check")
    which.add_argument("--no-generate", action="store_true", help="only the logits checks")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    runner = Runner(args)
    failures, runs, skipped = [], 0, []
    print("transformers %s, torch %s" % (transformers.__version__, torch.__version__))
    for i, name in enumerate([] if args.only_generate else args.models.split(",")):
        path = build_model(name, args.work, seed=100 + i)
        described = os.path.join(args.work, name + ".textproto")
        runner.run([args.moeplan, "import-hf", path, "--base", args.base, "-o", described])
        text = open(described).read()
        # CPU ranks compute in fp32; a bf16 checkpoint is widened exactly on load.
        text = re.sub(r"\n  dtype: \w+\n", "\n  dtype: FP32\n", text)
        sequences = int(re.search(r"sequences: (\d+)", text).group(1))
        seq_len = int(re.search(r"seq_len: (\d+)", text).group(1))
        vocab = int(re.search(r"vocab_size: (\d+)", text).group(1))
        rng = np.random.default_rng(7 + i)
        tokens = rng.integers(0, vocab, size=(sequences, seq_len), dtype=np.int32)
        inputs = os.path.join(args.work, name + ".tokens")
        save_file({"tokens": tokens}, inputs)
        want = reference_logits(path, tokens)
        scale = float(np.abs(want).max())
        has_experts = "experts:" in text
        for (ranks, tp, pp, dp, ep, etp, mb, schedule) in STRATEGIES:
            if ranks > args.max_ranks:
                continue
            if not has_experts:
                ep, etp = 1, 1
            tag = "%s ranks %d tp %d pp %d dp %d ep %d etp %d mb %d %s" % (
                name, ranks, tp, pp, dp, ep, etp, mb, schedule)
            stem = os.path.join(args.work, "%s-%d-%d-%d-%d-%d-%d-%s" % (
                name, tp, pp, dp, ep, etp, mb, schedule))
            ran = runner.compile_and_run(text, (tp, pp, dp, ep, etp, mb, schedule), stem, tag, ranks,
                                         path, inputs, skipped, failures)
            if ran is None:
                continue
            output, start = ran
            got = load_file(output)["logits"]
            runs += 1
            if got.shape != want.shape:
                failures.append("%s: logits %s, transformers %s" % (tag, got.shape, want.shape))
                print("FAIL %s: shape %s, want %s" % (tag, got.shape, want.shape))
                continue
            err = float(np.abs(got - want).max())
            ok = err <= ATOL + RTOL * scale
            print("%s %s: max |error| %.3g (%.2g of max |logit| %.3g) in %.1f s" % (
                "ok  " if ok else "FAIL", tag, err, err / scale, scale, time.time() - start))
            if not ok:
                failures.append("%s: max error %.3g above %.3g" % (tag, err, ATOL + RTOL * scale))
    logits_failures, logits_runs = len(failures), runs
    generate_models = [] if args.no_generate else [m for m in args.generate_models.split(",") if m]
    generate_runs, generate_worst = 0, 0.0
    for name in generate_models:
        f, r, s, w = generate_check(args, runner, name, list(MODELS).index(name),
                                    show=args.show_generated or name == generate_models[0])
        failures += f
        skipped += s
        generate_runs += r
        generate_worst = max(generate_worst, w)
    for s in skipped:
        print("skipped (does not compile for this model): " + s)
    if not args.only_generate:
        print("logits: %d runs against transformers, %d failed" % (logits_runs, logits_failures))
    if generate_models:
        strategies = [s for s in GENERATE_STRATEGIES if s[0] <= args.max_ranks]
        print("generate: %d runs against transformers' generate (%s; %d strategies on %s ranks; %d new "
              "tokens), %d failed; largest step_logits error %.2g of max |logit|" % (
                  generate_runs, ", ".join(generate_models), len(strategies),
                  "/".join(str(r) for r in sorted({s[0] for s in strategies})), args.new_tokens,
                  len(failures) - logits_failures, generate_worst))
    runs += generate_runs
    print("%d runs against transformers, %d failed" % (runs, len(failures)))
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures or runs == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
