#!/usr/bin/python3
"""Independent PyTorch reference ("oracle") for moeplan's MoE transformer forward pass.

Computes the model's output from a safetensors checkpoint and input, in float32, so that
the runtime's single-rank output can be compared against it. Standard library, numpy and
torch only.

    moe_oracle.py --checkpoint C --input I --output O
                  [--micro-batches M] [--dispatch-groups G] [--capacity-factor F]
                  [--drop-policy position|probs]

Capacity / dropping (the part that must match the runtime exactly):
  * the S sequences are cut into M consecutive micro-batches of Smb = S / M sequences;
  * inside a micro-batch, token t = position * Smb + (s - first sequence) (position-major);
  * those T = Smb * seq_len tokens are cut into G contiguous groups of T / G tokens;
  * each group has C = ceil(F * (T // G) * top_k / E) slots per expert (F = 0: dropless);
  * in a group, choices take slots in order (token t, then choice j); a choice to an expert
    that already holds C kept choices in that group is dropped and contributes nothing;
  * drop policy probs: an expert given more than C choices in a group keeps the C with the
    highest gates (ties: slot order) and drops the rest.

Importable: load_checkpoint, load_input, forward, expert_capacity, token_order, run.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

MODEL_KEY = "moeplan.model"
DTYPE = torch.float32


class OracleError(ValueError):
    """Bad checkpoint, input or options."""


# ----------------------------------------------------------------------------- config

_INT_KEYS = ("layers", "d_model", "heads", "kv_heads", "head_dim", "experts", "top_k",
             "expert_hidden", "dense_ffn_hidden", "moe_every_nth", "vocab", "shared_expert_hidden")
_BOOL_KEYS = ("tie_embeddings", "linear_bias", "shared_expert_gate")
# Biases per projection group; each defaults to linear_bias (the plan writes all three).
_BIAS_KEYS = ("qkv_bias", "out_bias", "ffn_bias")
# Semantics of real models this invented-model oracle does not implement (test/hf checks
# them against Hugging Face transformers): a checkpoint using them is refused.
_UNSUPPORTED = ("rope_theta", "renormalize_gates")
# Keys that must be present; the others default to 0 / false (proto3 JSON omits zeros).
_REQUIRED = ("layers", "d_model", "heads", "kv_heads", "head_dim", "norm", "activation")
_NORMS = {"LAYER_NORM": "LAYER_NORM", "RMS_NORM": "RMS_NORM", 1: "LAYER_NORM", 2: "RMS_NORM"}
_ACTS = {"GELU": "GELU", "SWIGLU": "SWIGLU", 1: "GELU", 2: "SWIGLU"}


def _camel(key):
    head, *rest = key.split("_")
    return head + "".join(w.capitalize() for w in rest)


def parse_config(text):
    """Parse the "moeplan.model" metadata JSON into a normalised dict (snake_case keys)."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise OracleError("metadata %r is not valid JSON: %s" % (MODEL_KEY, e))
    if not isinstance(raw, dict):
        raise OracleError("metadata %r is not a JSON object" % MODEL_KEY)

    def get(key, default):
        for k in (key, _camel(key)):
            if k in raw:
                return raw[k]
        if key in _REQUIRED:
            raise OracleError("model config lacks %r" % key)
        return default

    cfg = {}
    for key in _INT_KEYS:
        v = get(key, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise OracleError("model config %r must be a non-negative integer, got %r" % (key, v))
        cfg[key] = v
    for key in _BOOL_KEYS:
        v = get(key, False)
        if not isinstance(v, bool):
            raise OracleError("model config %r must be a boolean, got %r" % (key, v))
        cfg[key] = v
    for key in _BIAS_KEYS:
        v = get(key, cfg["linear_bias"])
        if not isinstance(v, bool):
            raise OracleError("model config %r must be a boolean, got %r" % (key, v))
        cfg[key] = v
    for key in _UNSUPPORTED:
        if get(key, 0):
            raise OracleError("model config %r is set: this oracle implements the invented "
                              "model only (test/hf/hf_oracle.py checks real models)" % key)
    layers = get("moe_layers", [])
    if not isinstance(layers, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in layers):
        raise OracleError("model config 'moe_layers' must be a list of layer indices, got %r"
                          % (layers,))
    cfg["moe_layers"] = layers
    eps = get("norm_epsilon", 0.0)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise OracleError("model config 'norm_epsilon' must be a non-negative number, got %r" % eps)
    cfg["norm_epsilon"] = float(eps)
    norm, act = get("norm", None), get("activation", None)
    if norm not in _NORMS:
        raise OracleError("model config 'norm' must be LAYER_NORM or RMS_NORM, got %r" % norm)
    if act not in _ACTS:
        raise OracleError("model config 'activation' must be GELU or SWIGLU, got %r" % act)
    cfg["norm"], cfg["activation"] = _NORMS[norm], _ACTS[act]

    for key in ("layers", "d_model", "heads", "kv_heads", "head_dim"):
        if cfg[key] < 1:
            raise OracleError("model config %r must be at least 1" % key)
    if cfg["heads"] % cfg["kv_heads"]:
        raise OracleError("heads (%d) is not a multiple of kv_heads (%d)"
                          % (cfg["heads"], cfg["kv_heads"]))
    if any(is_moe_layer(cfg, i) for i in range(cfg["layers"])):
        if not 1 <= cfg["top_k"] <= cfg["experts"]:
            raise OracleError("top_k (%d) must be in [1, experts = %d]"
                              % (cfg["top_k"], cfg["experts"]))
        if cfg["expert_hidden"] < 1:
            raise OracleError("expert_hidden must be at least 1 in a model with MoE layers")
    if any(not is_moe_layer(cfg, i) for i in range(cfg["layers"])) and cfg["dense_ffn_hidden"] < 1:
        raise OracleError("dense_ffn_hidden must be at least 1 in a model with dense layers")
    return cfg


def is_moe_layer(cfg, i):
    if cfg.get("moe_layers"):
        return cfg["experts"] > 0 and i in cfg["moe_layers"]
    return cfg["experts"] > 0 and cfg["moe_every_nth"] > 0 and i % cfg["moe_every_nth"] == 0


def expected_weights(cfg):
    """name -> shape of every tensor the checkpoint must hold."""
    D, H, Hkv, hd = cfg["d_model"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    E, Hx, F, V = cfg["experts"], cfg["expert_hidden"], cfg["dense_ffn_hidden"], cfg["vocab"]
    ln, bias, swiglu = cfg["norm"] == "LAYER_NORM", cfg["ffn_bias"], cfg["activation"] == "SWIGLU"
    w = {}

    def norm(prefix):
        w[prefix + ".weight"] = (D,)
        if ln:
            w[prefix + ".bias"] = (D,)

    if V:
        w["embedding.weight"] = (V, D)
        if not cfg["tie_embeddings"]:
            w["lm_head.weight"] = (D, V)
    for i in range(cfg["layers"]):
        p = "layers.%d." % i
        norm(p + "norm1")
        norm(p + "norm2")
        a = p + "attention."
        w[a + "wq"], w[a + "wk"], w[a + "wv"], w[a + "wo"] = (
            (D, H * hd), (D, Hkv * hd), (D, Hkv * hd), (H * hd, D))
        if cfg["qkv_bias"]:
            w[a + "bq"], w[a + "bk"], w[a + "bv"] = (H * hd,), (Hkv * hd,), (Hkv * hd,)
        if cfg["out_bias"]:
            w[a + "bo"] = (D,)
        if is_moe_layer(cfg, i):
            w[p + "router.weight"] = (D, E)
            x = p + "experts."
            w[x + "w_up"], w[x + "w_down"] = (E, D, Hx), (E, Hx, D)
            if swiglu:
                w[x + "w_gate"] = (E, D, Hx)
            if bias:
                w[x + "b_up"], w[x + "b_down"] = (E, Hx), (E, D)
                if swiglu:
                    w[x + "b_gate"] = (E, Hx)
            Hs = cfg["shared_expert_hidden"]
            if Hs:  # the shared expert: a dense FFN every token passes through
                x = p + "shared_expert."
                w[x + "w_up"], w[x + "w_down"] = (D, Hs), (Hs, D)
                if swiglu:
                    w[x + "w_gate"] = (D, Hs)
                if bias:
                    w[x + "b_up"], w[x + "b_down"] = (Hs,), (D,)
                    if swiglu:
                        w[x + "b_gate"] = (Hs,)
                if cfg["shared_expert_gate"]:
                    w[p + "shared_expert_gate.weight"] = (D, 1)
        else:
            f = p + "ffn."
            w[f + "w_up"], w[f + "w_down"] = (D, F), (F, D)
            if swiglu:
                w[f + "w_gate"] = (D, F)
            if bias:
                w[f + "b_up"], w[f + "b_down"] = (F,), (D,)
                if swiglu:
                    w[f + "b_gate"] = (F,)
    norm("final_norm")
    return w


def load_checkpoint(path):
    """Read a checkpoint; returns (cfg, weights: name -> float32 torch tensor)."""
    tensors, metadata = safetensors_io.read(path)
    if MODEL_KEY not in metadata:
        raise OracleError("%s: no __metadata__[%r]" % (path, MODEL_KEY))
    cfg = parse_config(metadata[MODEL_KEY])
    return cfg, check_weights(cfg, tensors, path)


def check_weights(cfg, tensors, where="checkpoint"):
    """Validate names, shapes and dtypes; returns name -> float32 torch tensor."""
    want = expected_weights(cfg)
    missing = sorted(set(want) - set(tensors))
    if missing:
        raise OracleError("%s lacks %s" % (where, ", ".join(missing)))
    weights = {}
    for name, shape in want.items():
        arr = np.asarray(tensors[name])
        if arr.dtype == np.float16:  # F16 checkpoints: widened exactly, as moeplan-run loads them
            arr = arr.astype(np.float32)
        if arr.dtype != np.float32:
            raise OracleError("%s: %s is %s, expected float32" % (where, name, arr.dtype))
        if tuple(arr.shape) != tuple(shape):
            raise OracleError("%s: %s has shape %s, expected %s"
                              % (where, name, list(arr.shape), list(shape)))
        weights[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return weights


def load_input(path, cfg):
    """Read the input file: int32 tokens [S, L] (vocab > 0) or float32 hidden_in [S, L, D]."""
    tensors, _ = safetensors_io.read(path)
    return check_input(cfg, tensors, path)


def check_input(cfg, tensors, where="input"):
    if cfg["vocab"]:
        if "tokens" not in tensors:
            raise OracleError("%s lacks 'tokens' (the model has a vocabulary)" % where)
        x = np.asarray(tensors["tokens"])
        if x.dtype != np.int32 or x.ndim != 2:
            raise OracleError("%s: tokens must be int32 [sequences, seq_len], got %s %s"
                              % (where, x.dtype, list(x.shape)))
        if x.size and (x.min() < 0 or x.max() >= cfg["vocab"]):
            raise OracleError("%s: token ids must be in [0, %d), got [%d, %d]"
                              % (where, cfg["vocab"], x.min(), x.max()))
        return x
    if "hidden_in" not in tensors:
        raise OracleError("%s lacks 'hidden_in' (the model has no vocabulary)" % where)
    x = np.asarray(tensors["hidden_in"])
    if x.dtype != np.float32 or x.ndim != 3 or x.shape[2] != cfg["d_model"]:
        raise OracleError("%s: hidden_in must be float32 [sequences, seq_len, %d], got %s %s"
                          % (where, cfg["d_model"], x.dtype, list(x.shape)))
    return x


# ----------------------------------------------------------------------------- pieces

def norm(x, w, b, kind, eps):
    """LayerNorm (biased variance) or RMSNorm over the last dim, float32."""
    if kind == "LAYER_NORM":
        mean = x.mean(dim=-1, keepdim=True)
        c = x - mean
        var = (c * c).mean(dim=-1, keepdim=True)
        return c / torch.sqrt(var + eps) * w + b
    ms = (x * x).mean(dim=-1, keepdim=True)
    return x / torch.sqrt(ms + eps) * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def silu(x):
    return x * torch.sigmoid(x)


def linear(x, w, b=None):
    y = x @ w
    return y if b is None else y + b


def ffn(x, w_up, w_down, w_gate, b_up, b_down, b_gate, activation):
    """act(x) @ w_down (+ b_down), act = gelu(x@w_up+b) or silu(x@w_gate+b) * (x@w_up+b)."""
    up = linear(x, w_up, b_up)
    if activation == "GELU":
        a = gelu_tanh(up)
    else:
        a = silu(linear(x, w_gate, b_gate)) * up
    return linear(a, w_down, b_down)


def attention(h, W, p, cfg):
    """Causal grouped-query self-attention; h [S, L, D] -> [S, L, D]."""
    S, L, _ = h.shape
    H, Hkv, hd = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    b = (lambda n: W[p + n]) if cfg["qkv_bias"] else (lambda n: None)
    q = linear(h, W[p + "wq"], b("bq")).reshape(S, L, H, hd).transpose(1, 2)      # [S,H,L,hd]
    k = linear(h, W[p + "wk"], b("bk")).reshape(S, L, Hkv, hd).transpose(1, 2)    # [S,Hkv,L,hd]
    v = linear(h, W[p + "wv"], b("bv")).reshape(S, L, Hkv, hd).transpose(1, 2)
    group = H // Hkv  # query head j reads KV head j // group
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)                            # [S,H,L,L]
    future = torch.ones(L, L, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    o = torch.softmax(scores, dim=-1) @ v                                          # [S,H,L,hd]
    o = o.transpose(1, 2).reshape(S, L, H * hd)
    return linear(o, W[p + "wo"], W[p + "bo"] if cfg["out_bias"] else None)


def expert_capacity(capacity_factor, tokens_per_group, top_k, experts):
    """Slots per expert per dispatch group: Megatron-Core's get_capacity,
    ceil(tokens * top_k / experts * capacity_factor), in that float64 order (the compiler's
    expertCapacity), so that both round alike. F = 0: dropless, every token of the group."""
    if capacity_factor == 0:
        return tokens_per_group
    return math.ceil(float(tokens_per_group) * top_k / experts * float(capacity_factor))


def token_order(sequences, seq_len, micro_batches):
    """Flat [S*L] (row-major [s, position]) indices in dispatch order: micro-batch by
    micro-batch, position-major inside each (t = position * Smb + local sequence)."""
    if micro_batches < 1 or sequences % micro_batches:
        raise OracleError("%d micro-batches do not divide %d sequences" % (micro_batches, sequences))
    smb = sequences // micro_batches
    s = np.arange(sequences).reshape(micro_batches, 1, smb)   # [M, 1, Smb]
    pos = np.arange(seq_len).reshape(1, seq_len, 1)           # [1, L, 1]
    return (s * seq_len + pos).reshape(-1)                    # [M * L * Smb]


def route(h, router_w, top_k):
    """h [N, D] -> (experts [N, k] int64, gates [N, k] float32): softmax over experts, the
    top_k largest probabilities in decreasing order, ties to the lower expert index."""
    probs = torch.softmax(h @ router_w, dim=-1)
    # Stable descending sort keeps equal probabilities in ascending expert order.
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices[:, :top_k]
    return order, torch.gather(probs, 1, order)


def keep_mask(experts_in_order, groups, capacity, num_experts, gates_in_order=None):
    """experts_in_order [B, T, k] int (B micro-batches, tokens in dispatch order) -> bool
    [B, T, k]: whether each choice gets one of its expert's `capacity` slots in its group.

    Vectorised: number the choices in slot-taking order (group, token, choice j), stable-sort
    them by (group, expert); a choice's rank among the earlier choices of its group to the
    same expert is its position in the sorted order minus the start of its (group, expert)
    run. It is kept when that rank is below the capacity.

    gates_in_order (drop policy "probs", same shape): within each (group, expert) run the
    choices are ranked by gate, highest first, ties in slot-taking order."""
    e = np.asarray(experts_in_order, dtype=np.int64)
    B, T, k = e.shape
    if groups < 1 or T % groups:
        raise OracleError("%d dispatch groups do not divide %d tokens per micro-batch" % (groups, T))
    if e.size and (e.min() < 0 or e.max() >= num_experts):
        raise OracleError("expert index out of range")
    per_group = (T // groups) * k
    group = np.arange(B * groups).repeat(per_group)         # group of each flat choice
    key = group * num_experts + e.reshape(-1)               # flat choices, in slot order
    if gates_in_order is None:
        order = np.argsort(key, kind="stable")
    else:
        gates = np.asarray(gates_in_order, dtype=np.float32).reshape(-1)
        order = np.lexsort((np.arange(key.size), -gates, key))  # last key sorts first
    sorted_key = key[order]
    run_start = np.searchsorted(sorted_key, sorted_key, side="left")
    rank = np.empty_like(key)
    rank[order] = np.arange(key.size) - run_start
    return (rank < capacity).reshape(B, T, k)


def moe(h, W, p, cfg, micro_batches, groups, capacity_factor, capacity=None, drop_policy="position"):
    """MoE block; h [S, L, D] -> (out [S, L, D], dropped choices)."""
    S, L, D = h.shape
    E, k = cfg["experts"], cfg["top_k"]
    flat = h.reshape(S * L, D)
    experts, gates = route(flat, W[p + "router.weight"], k)                # [N, k]

    # Capacity bookkeeping in dispatch order, then back to the canonical [s, position] order
    # so that the expert arithmetic itself does not depend on M and G.
    order = torch.from_numpy(token_order(S, L, micro_batches))
    T = (S // micro_batches) * L
    if groups < 1 or T % groups:
        raise OracleError("%d dispatch groups do not divide %d tokens per micro-batch" % (groups, T))
    C = capacity if capacity is not None else expert_capacity(capacity_factor, T // groups, k, E)
    gates_in_order = (gates[order].numpy().reshape(micro_batches, T, k)
                      if drop_policy == "probs" else None)
    kept_in_order = keep_mask(experts[order].numpy().reshape(micro_batches, T, k), groups, C, E,
                              gates_in_order)
    kept = np.empty((S * L, k), dtype=bool)
    kept[order.numpy()] = kept_in_order.reshape(-1, k)
    kept = torch.from_numpy(kept)
    dropped = int((~kept).sum())

    x = p + "experts."
    bias = cfg["ffn_bias"]
    swiglu = cfg["activation"] == "SWIGLU"
    per_choice = torch.zeros(S * L, k, D, dtype=DTYPE)                     # expert outputs
    for e in range(E):
        tok, j = torch.nonzero((experts == e) & kept, as_tuple=True)
        if tok.numel() == 0:
            continue
        y = ffn(flat[tok], W[x + "w_up"][e], W[x + "w_down"][e],
                W[x + "w_gate"][e] if swiglu else None,
                W[x + "b_up"][e] if bias else None, W[x + "b_down"][e] if bias else None,
                W[x + "b_gate"][e] if bias and swiglu else None, cfg["activation"])
        per_choice[tok, j] = y
    # Combine in choice order; dropped choices add nothing (gate masked to 0, output 0).
    gates = torch.where(kept, gates, torch.zeros_like(gates))
    out = torch.zeros(S * L, D, dtype=DTYPE)
    for j in range(k):
        out = out + gates[:, j:j + 1] * per_choice[:, j]
    return out.reshape(S, L, D), dropped


# ----------------------------------------------------------------------------- model

def forward(cfg, weights, inputs, micro_batches=1, dispatch_groups=1, capacity_factor=0.0,
            capacity=None, drop_policy="position"):
    """Full forward pass.

    cfg: parse_config dict; weights: name -> float32 tensor (numpy arrays are accepted);
    inputs: int32 tokens [S, L] or float32 hidden_in [S, L, D] (numpy or torch).
    capacity: optional explicit slots per expert per group, overriding the formula.
    Returns (output numpy float32 [S, L, V or D], dropped per layer (list, 0 for dense
    layers), total routed choices over the MoE layers).
    """
    if capacity_factor < 0 or not math.isfinite(capacity_factor):
        raise OracleError("capacity factor must be finite and >= 0, got %r" % capacity_factor)
    if capacity is not None and capacity < 0:
        raise OracleError("capacity must be >= 0, got %r" % capacity)
    W = {n: (t if isinstance(t, torch.Tensor) else torch.from_numpy(np.asarray(t)))
         for n, t in weights.items()}
    inputs = inputs.numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    S, L = inputs.shape[0], inputs.shape[1]
    if micro_batches < 1 or S % micro_batches:
        raise OracleError("%d micro-batches do not divide %d sequences" % (micro_batches, S))
    T = (S // micro_batches) * L
    if any(is_moe_layer(cfg, i) for i in range(cfg["layers"])) and (
            dispatch_groups < 1 or T % dispatch_groups):
        raise OracleError("%d dispatch groups do not divide %d tokens per micro-batch "
                          "(%d sequences x %d positions)"
                          % (dispatch_groups, T, S // micro_batches, L))

    ln = cfg["norm"] == "LAYER_NORM"
    eps = cfg["norm_epsilon"]

    def nrm(prefix, v):
        return norm(v, W[prefix + ".weight"], W[prefix + ".bias"] if ln else None,
                    cfg["norm"], eps)

    with torch.no_grad():
        if cfg["vocab"]:
            x = W["embedding.weight"][torch.from_numpy(inputs.astype(np.int64))]
        else:
            x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        dropped = []
        total = 0
        for i in range(cfg["layers"]):
            p = "layers.%d." % i
            x = x + attention(nrm(p + "norm1", x), W, p + "attention.", cfg)
            h = nrm(p + "norm2", x)
            if is_moe_layer(cfg, i):
                y, d = moe(h, W, p, cfg, micro_batches, dispatch_groups, capacity_factor,
                           capacity, drop_policy)
                if cfg["shared_expert_hidden"]:
                    sx = p + "shared_expert."
                    bias, swiglu = cfg["ffn_bias"], cfg["activation"] == "SWIGLU"
                    shared = ffn(h, W[sx + "w_up"], W[sx + "w_down"],
                                 W[sx + "w_gate"] if swiglu else None,
                                 W[sx + "b_up"] if bias else None, W[sx + "b_down"] if bias else None,
                                 W[sx + "b_gate"] if bias and swiglu else None, cfg["activation"])
                    if cfg["shared_expert_gate"]:
                        shared = torch.sigmoid(h @ W[p + "shared_expert_gate.weight"]) * shared
                    y = y + shared
                dropped.append(d)
                total += S * L * cfg["top_k"]
            else:
                f = p + "ffn."
                bias, swiglu = cfg["ffn_bias"], cfg["activation"] == "SWIGLU"
                y = ffn(h, W[f + "w_up"], W[f + "w_down"], W[f + "w_gate"] if swiglu else None,
                        W[f + "b_up"] if bias else None, W[f + "b_down"] if bias else None,
                        W[f + "b_gate"] if bias and swiglu else None, cfg["activation"])
                dropped.append(0)
            x = x + y
        y = nrm("final_norm", x)
        if cfg["vocab"]:
            head = (W["embedding.weight"].t() if cfg["tie_embeddings"] else W["lm_head.weight"])
            y = y @ head
    assert y.dtype == DTYPE
    return y.contiguous().numpy(), dropped, total


def output_name(cfg):
    return "logits" if cfg["vocab"] else "hidden_out"


def report_line(dropped, total):
    return "dropped choices per layer: [%s] (%d of %d)" % (
        ", ".join(str(d) for d in dropped), sum(dropped), total)


def run(checkpoint, input_path, output, micro_batches=1, dispatch_groups=1,
        capacity_factor=0.0, capacity=None, drop_policy="position"):
    """Read, compute, write; returns (output array, dropped per layer, total choices)."""
    cfg, weights = load_checkpoint(checkpoint)
    inputs = load_input(input_path, cfg)
    out, dropped, total = forward(cfg, weights, inputs, micro_batches, dispatch_groups,
                                  capacity_factor, capacity, drop_policy)
    safetensors_io.write(output, {output_name(cfg): out})
    return out, dropped, total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="model weights (safetensors)")
    ap.add_argument("--input", required=True, help="tokens or hidden_in (safetensors)")
    ap.add_argument("--output", required=True, help="where to write logits or hidden_out")
    ap.add_argument("--micro-batches", type=int, default=1, help="M (default 1)")
    ap.add_argument("--dispatch-groups", type=int, default=1, help="G (default 1)")
    ap.add_argument("--capacity-factor", type=float, default=0.0,
                    help="F (default 0: dropless)")
    ap.add_argument("--capacity", type=int, default=None,
                    help="explicit slots per expert per group, overriding the F formula "
                         "(e.g. the plan's strategy.capacity)")
    ap.add_argument("--drop-policy", choices=("position", "probs"), default="position",
                    help="which choices an expert over capacity keeps (default position)")
    args = ap.parse_args(argv)
    try:
        _, dropped, total = run(args.checkpoint, args.input, args.output, args.micro_batches,
                                args.dispatch_groups, args.capacity_factor, args.capacity,
                                args.drop_policy)
    except (OracleError, safetensors_io.SafetensorsError, OSError) as e:
        print("moe_oracle: error: %s" % e, file=sys.stderr)
        return 1
    print(report_line(dropped, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
