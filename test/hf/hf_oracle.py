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


def strategy_text(tp, pp, dp, ep, etp, mb, schedule):
    return ("strategy {\n" + f"  tp: {tp}\n  pp: {pp}\n  dp: {dp}\n  ep: {ep}\n"
            f"  expert_tp: {etp}\n  micro_batches: {mb}\n  schedule: {schedule}\n" + "}\n")


class Runner:
    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        OMPI_MCA_rmaps_base_oversubscribe="1")

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
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    runner = Runner(args)
    failures, runs, skipped = [], 0, []
    print("transformers %s, torch %s" % (transformers.__version__, torch.__version__))
    for i, name in enumerate(args.models.split(",")):
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
            desc = re.sub(r"\nstrategy \{.*?\n\}\n", "\n" + strategy_text(tp, pp, dp, ep, etp, mb, schedule),
                          text, flags=re.S)
            open(stem + ".textproto", "w").write(desc)
            compiled = runner.run([args.moeplan, "compile", stem + ".textproto", "-o", stem + ".plan", "-q"],
                                  check=False)
            if compiled.returncode != 0:
                errors = [l for l in compiled.stderr.splitlines() if "error" in l]
                skipped.append("%s: %s" % (tag, errors[0] if errors else compiled.stderr.strip()))
                continue
            start = time.time()
            try:
                runner.run(["mpirun", "-np", str(ranks), args.moeplan_run, stem + ".plan",
                            "--checkpoint", path, "--input", inputs, "--output", stem + ".out"])
            except RuntimeError as e:
                failures.append("%s: %s" % (tag, e))
                print("FAIL %s: moeplan-run failed" % tag)
                continue
            got = load_file(stem + ".out")["logits"]
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
    for s in skipped:
        print("skipped (does not compile for this model): " + s)
    print("%d runs against transformers, %d failed" % (runs, len(failures)))
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures or runs == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
