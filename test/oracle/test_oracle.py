#!/usr/bin/python3
"""Self-tests for the MoE oracle: python3 test/oracle/test_oracle.py"""

import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import moe_oracle  # noqa: E402
import safetensors_io  # noqa: E402

BASE = dict(layers=3, d_model=16, heads=4, kv_heads=2, head_dim=4, experts=8, top_k=2,
            expert_hidden=32, dense_ffn_hidden=24, moe_every_nth=2, norm="RMS_NORM",
            activation="SWIGLU", vocab=32, tie_embeddings=False, linear_bias=True,
            norm_epsilon=1e-5)
S, L = 4, 6


def make_model(seed=0, **overrides):
    """Random checkpoint tensors + metadata for BASE with overrides."""
    cfg = dict(BASE, **overrides)
    parsed = moe_oracle.parse_config(json.dumps(cfg))
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in moe_oracle.expected_weights(parsed).items():
        leaf = name.rsplit(".", 1)[1]
        if "norm" in name and leaf == "weight":
            a = 1.0 + 0.1 * rng.standard_normal(shape)       # norm scales near 1
        elif leaf == "bias" or leaf.startswith("b"):        # norm biases, bq, b_up, ...
            a = 0.1 * rng.standard_normal(shape)
        else:                                                # [.., in, out] matrices
            a = rng.standard_normal(shape) / math.sqrt(shape[-2])
            if leaf == "weight" and name.endswith("router.weight"):
                a = a * 3.0  # sharper routing: skewed loads, so capacity drops happen
        tensors[name] = a.astype(np.float32)
    return cfg, parsed, tensors


def make_input(parsed, seed=1, sequences=S, seq_len=L):
    rng = np.random.default_rng(seed)
    if parsed["vocab"]:
        return {"tokens": rng.integers(0, parsed["vocab"], (sequences, seq_len)).astype(np.int32)}
    return {"hidden_in": rng.standard_normal((sequences, seq_len, parsed["d_model"]))
            .astype(np.float32)}


# ----------------------------------------------------------------------------- naive model
# Written from the specification with explicit loops, in numpy (no torch), so that it
# shares no code with the vectorised oracle.

def naive_norm(v, w, b, kind, eps):
    v = v.astype(np.float32)
    if kind == "LAYER_NORM":
        mean = np.float32(sum(float(a) for a in v) / len(v))
        var = np.float32(sum((float(a) - float(mean)) ** 2 for a in v) / len(v))
        return ((v - mean) / np.sqrt(var + np.float32(eps)) * w + b).astype(np.float32)
    ms = np.float32(sum(float(a) ** 2 for a in v) / len(v))
    return (v / np.sqrt(ms + np.float32(eps)) * w).astype(np.float32)


def naive_act(x, w_up, b_up, w_gate, b_gate, activation):
    up = x @ w_up + (b_up if b_up is not None else 0)
    if activation == "GELU":
        return 0.5 * up * (1 + np.tanh(np.sqrt(2 / np.pi) * (up + 0.044715 * up ** 3)))
    g = x @ w_gate + (b_gate if b_gate is not None else 0)
    return g / (1 + np.exp(-g)) * up


def naive_forward(cfg, W, inp, M, G, F):
    nS, nL = inp.shape[0], inp.shape[1]
    D, H, Hkv, hd = cfg["d_model"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    E, K = cfg["experts"], cfg["top_k"]
    bias, ln = cfg["linear_bias"], cfg["norm"] == "LAYER_NORM"
    b = (lambda n: W[n]) if bias else (lambda n: 0)

    def nrm(prefix, v):
        return naive_norm(v, W[prefix + ".weight"], W[prefix + ".bias"] if ln else None,
                          cfg["norm"], cfg["norm_epsilon"])

    if cfg["vocab"]:
        x = [[W["embedding.weight"][inp[s, p]].copy() for p in range(nL)] for s in range(nS)]
    else:
        x = [[inp[s, p].astype(np.float32) for p in range(nL)] for s in range(nS)]
    drops = []
    for i in range(cfg["layers"]):
        pre = "layers.%d." % i
        a = pre + "attention."
        # attention: per sequence, head, position
        h = [[nrm(pre + "norm1", x[s][p]) for p in range(nL)] for s in range(nS)]
        for s in range(nS):
            q = [h[s][p] @ W[a + "wq"] + b(a + "bq") for p in range(nL)]
            k = [h[s][p] @ W[a + "wk"] + b(a + "bk") for p in range(nL)]
            v = [h[s][p] @ W[a + "wv"] + b(a + "bv") for p in range(nL)]
            outs = []
            for p in range(nL):
                o = np.zeros(H * hd, dtype=np.float32)
                for head in range(H):
                    kvh = head // (H // Hkv)
                    qh = q[p][head * hd:(head + 1) * hd]
                    sc = [float(qh @ k[r][kvh * hd:(kvh + 1) * hd]) / math.sqrt(hd)
                          for r in range(p + 1)]
                    mx = max(sc)
                    ex = [math.exp(c - mx) for c in sc]
                    tot = sum(ex)
                    for r in range(p + 1):
                        o[head * hd:(head + 1) * hd] += np.float32(ex[r] / tot) * \
                            v[r][kvh * hd:(kvh + 1) * hd]
                outs.append(o @ W[a + "wo"] + b(a + "bo"))
            for p in range(nL):
                x[s][p] = (x[s][p] + outs[p]).astype(np.float32)
        h = [[nrm(pre + "norm2", x[s][p]) for p in range(nL)] for s in range(nS)]
        if moe_oracle.is_moe_layer(cfg, i):
            ex = pre + "experts."
            # routing
            choice = {}
            for s in range(nS):
                for p in range(nL):
                    lg = [float(z) for z in h[s][p] @ W[pre + "router.weight"]]
                    mx = max(lg)
                    pr = [math.exp(z - mx) for z in lg]
                    tot = sum(pr)
                    pr = [z / tot for z in pr]
                    best = sorted(range(E), key=lambda e: (-pr[e], e))[:K]
                    choice[s, p] = [(e, pr[e]) for e in best]
            # capacity, micro-batch by micro-batch, group by group
            smb = nS // M
            kept = {}
            dropped = 0
            for m in range(M):
                tokens = []
                for p in range(nL):
                    for ls in range(smb):
                        tokens.append((m * smb + ls, p))
                T = len(tokens)
                assert T % G == 0
                n = T // G
                C = n * K if F == 0 else math.ceil(F * n * K / E)
                for g in range(G):
                    used = [0] * E
                    for t in range(g * n, (g + 1) * n):
                        for j in range(K):
                            e = choice[tokens[t]][j][0]
                            if used[e] < C:
                                used[e] += 1
                                kept[tokens[t], j] = True
                            else:
                                kept[tokens[t], j] = False
                                dropped += 1
            drops.append(dropped)
            for s in range(nS):
                for p in range(nL):
                    out = np.zeros(D, dtype=np.float32)
                    for j, (e, gate) in enumerate(choice[s, p]):
                        if not kept[(s, p), j]:
                            continue
                        act = naive_act(h[s][p], W[ex + "w_up"][e],
                                        W[ex + "b_up"][e] if bias else None,
                                        W[ex + "w_gate"][e] if cfg["activation"] == "SWIGLU" else None,
                                        W[ex + "b_gate"][e] if bias and cfg["activation"] == "SWIGLU" else None,
                                        cfg["activation"])
                        y = act @ W[ex + "w_down"][e] + (W[ex + "b_down"][e] if bias else 0)
                        out += np.float32(gate) * y
                    x[s][p] = (x[s][p] + out).astype(np.float32)
        else:
            f = pre + "ffn."
            drops.append(0)
            for s in range(nS):
                for p in range(nL):
                    act = naive_act(h[s][p], W[f + "w_up"], b(f + "b_up") if bias else None,
                                    W.get(f + "w_gate"),
                                    W.get(f + "b_gate") if bias else None, cfg["activation"])
                    x[s][p] = (x[s][p] + act @ W[f + "w_down"] + b(f + "b_down")).astype(np.float32)
    rows = []
    for s in range(nS):
        row = []
        for p in range(nL):
            y = nrm("final_norm", x[s][p])
            if cfg["vocab"]:
                y = y @ (W["embedding.weight"].T if cfg["tie_embeddings"] else W["lm_head.weight"])
            row.append(y)
        rows.append(row)
    return np.array(rows, dtype=np.float32), drops


class Tmp(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write_model(self, seed=0, **overrides):
        cfg, parsed, tensors = make_model(seed, **overrides)
        ckpt = os.path.join(self.dir, "ckpt.safetensors")
        safetensors_io.write(ckpt, tensors, {moe_oracle.MODEL_KEY: json.dumps(cfg)})
        inp = os.path.join(self.dir, "input.safetensors")
        safetensors_io.write(inp, make_input(parsed))
        return ckpt, inp


class AgainstNaive(Tmp):
    def check(self, M, G, F, expect_drops, **overrides):
        ckpt, inp = self.write_model(**overrides)
        cfg, weights = moe_oracle.load_checkpoint(ckpt)
        inputs = moe_oracle.load_input(inp, cfg)
        out, drops, total = moe_oracle.forward(cfg, weights, inputs, M, G, F)
        W = {n: t.numpy() for n, t in weights.items()}
        ref, ref_drops = naive_forward(cfg, W, inputs, M, G, F)
        self.assertEqual(out.dtype, np.float32)
        self.assertEqual(out.shape, ref.shape)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
        self.assertEqual(drops, ref_drops)
        n_moe = sum(moe_oracle.is_moe_layer(cfg, i) for i in range(cfg["layers"]))
        self.assertEqual(total, n_moe * inputs.shape[0] * inputs.shape[1] * cfg["top_k"])
        if expect_drops:
            self.assertGreater(sum(drops), 0)
        elif expect_drops is not None:
            self.assertEqual(sum(drops), 0)
        return out, drops

    def test_dropless(self):
        out, drops = self.check(1, 1, 0.0, False)
        self.assertEqual(out.shape, (S, L, BASE["vocab"]))
        self.assertEqual(drops, [0, 0, 0])

    def test_capacity_drops(self):
        # M=2: 12 tokens per micro-batch; G=3: groups of 4 tokens; C = ceil(1*4*2/8) = 1.
        _, drops = self.check(2, 3, 1.0, True)
        self.assertEqual(drops[1], 0)  # layer 1 is dense

    def test_capacity_drops_other_splits(self):
        for M, G, F in ((1, 2, 1.0), (4, 1, 1.25), (1, 4, 0.5), (2, 1, 2.0)):
            with self.subTest(M=M, G=G, F=F):
                self.check(M, G, F, None)

    def test_variants(self):
        """LAYER_NORM+GELU and RMS_NORM+SWIGLU with bias / tied-embedding variations."""
        for norm, act in (("LAYER_NORM", "GELU"), ("RMS_NORM", "SWIGLU")):
            for bias in (False, True):
                for tie in (False, True):
                    with self.subTest(norm=norm, act=act, bias=bias, tie=tie):
                        out, _ = self.check(2, 3, 1.0, None, norm=norm, activation=act,
                                            linear_bias=bias, tie_embeddings=tie)
                        self.assertTrue(np.isfinite(out).all())

    def test_no_vocab_and_no_moe(self):
        with self.subTest("hidden_in/hidden_out"):
            out, _ = self.check(1, 2, 1.0, None, vocab=0)
            self.assertEqual(out.shape, (S, L, BASE["d_model"]))
        with self.subTest("dense only (experts = 0)"):
            _, drops = self.check(1, 1, 1.0, False, experts=0, top_k=0)
            self.assertEqual(drops, [0, 0, 0])
        with self.subTest("every layer MoE, top-1, MHA"):
            self.check(2, 2, 1.0, None, moe_every_nth=1, top_k=1, kv_heads=4)


class Invariance(Tmp):
    def test_dropless_independent_of_m_and_g(self):
        ckpt, inp = self.write_model()
        cfg, weights = moe_oracle.load_checkpoint(ckpt)
        inputs = moe_oracle.load_input(inp, cfg)
        base, drops, _ = moe_oracle.forward(cfg, weights, inputs)
        self.assertEqual(sum(drops), 0)
        for M in (1, 2, 4):
            T = (S // M) * L
            for G in [g for g in range(1, T + 1) if T % g == 0]:
                with self.subTest(M=M, G=G):
                    out, drops, _ = moe_oracle.forward(cfg, weights, inputs, M, G, 0.0)
                    self.assertEqual(sum(drops), 0)
                    np.testing.assert_array_equal(out, base)

    def test_capacity_formula(self):
        self.assertEqual(moe_oracle.expert_capacity(0, 12, 2, 8), 12)   # dropless: every token
        self.assertEqual(moe_oracle.expert_capacity(1.0, 4, 2, 8), 1)
        self.assertEqual(moe_oracle.expert_capacity(1.25, 32, 1, 64), 1)
        self.assertEqual(moe_oracle.expert_capacity(1.0, 12, 2, 8), 3)
        self.assertEqual(moe_oracle.expert_capacity(1.5, 12, 2, 8), 5)  # ceil(4.5)
        # The compiler's float64 order, tokens * top_k / experts * F: 50 * 1 / 5 * 1.1 gives
        # 11.0 -> 11 (1.1 * 50 / 5 would give 11.000000000000002 -> 12).
        self.assertEqual(moe_oracle.expert_capacity(1.1, 50, 1, 5), 11)

    def test_keep_mask_order(self):
        # One micro-batch, one group of 3 tokens, top-2, capacity 1: first come first served
        # in (token, choice) order.
        e = np.array([[[0, 1], [1, 2], [2, 0]]])
        kept = moe_oracle.keep_mask(e, 1, 1, 3)
        self.assertEqual(kept.tolist(), [[[True, True], [False, True], [False, False]]])
        # Two groups: counters restart per group.
        e = np.array([[[0, 1], [0, 1], [0, 1], [0, 1]]])
        kept = moe_oracle.keep_mask(e, 2, 1, 2)
        self.assertEqual(kept.tolist(), [[[True, True], [False, False]] * 2])

    def test_token_order(self):
        # S=4, L=3, M=2: micro-batch 0 holds sequences 0,1 position-major.
        self.assertEqual(moe_oracle.token_order(4, 3, 2).tolist(),
                         [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11])

    def test_bad_splits(self):
        ckpt, inp = self.write_model()
        cfg, weights = moe_oracle.load_checkpoint(ckpt)
        inputs = moe_oracle.load_input(inp, cfg)
        with self.assertRaisesRegex(moe_oracle.OracleError, "micro-batches do not divide"):
            moe_oracle.forward(cfg, weights, inputs, 3, 1, 0.0)
        with self.assertRaisesRegex(moe_oracle.OracleError, "dispatch groups do not divide"):
            moe_oracle.forward(cfg, weights, inputs, 2, 5, 0.0)

    def test_route_ties_lower_index(self):
        import torch
        h = torch.zeros(1, 4)  # all router logits 0: uniform probabilities
        experts, gates = moe_oracle.route(h, torch.ones(4, 6), 3)
        self.assertEqual(experts.tolist(), [[0, 1, 2]])
        np.testing.assert_allclose(gates.numpy(), 1 / 6, rtol=1e-6)


class Cli(Tmp):
    def test_cli_writes_output(self):
        ckpt, inp = self.write_model()
        out = os.path.join(self.dir, "out.safetensors")
        r = subprocess.run([sys.executable, os.path.join(HERE, "moe_oracle.py"),
                            "--checkpoint", ckpt, "--input", inp, "--output", out,
                            "--micro-batches", "2", "--dispatch-groups", "3",
                            "--capacity-factor", "1.0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.fullmatch(r"dropped choices per layer: \[(\d+), 0, (\d+)\] \((\d+) of 96\)\n",
                         r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(int(m.group(1)) + int(m.group(2)), int(m.group(3)))
        self.assertGreater(int(m.group(3)), 0)
        tensors, _ = safetensors_io.read(out)
        self.assertEqual(list(tensors), ["logits"])
        self.assertEqual(tensors["logits"].dtype, np.float32)
        self.assertEqual(tensors["logits"].shape, (S, L, BASE["vocab"]))

    def test_cli_error(self):
        ckpt, inp = self.write_model()
        r = subprocess.run([sys.executable, os.path.join(HERE, "moe_oracle.py"),
                            "--checkpoint", ckpt, "--input", inp, "--output",
                            os.path.join(self.dir, "o"), "--micro-batches", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("3 micro-batches do not divide 4 sequences", r.stderr)


class SafetensorsIo(Tmp):
    def test_round_trip(self):
        rng = np.random.default_rng(3)
        tensors = {"b.x": rng.standard_normal((2, 3, 5)).astype(np.float32),
                   "a": rng.integers(-9, 9, (7,)).astype(np.int32),
                   "scalar": np.array(2.5, dtype=np.float32),
                   "empty": np.zeros((0, 4), dtype=np.float32)}
        meta = {"moeplan.model": json.dumps({"layers": 1}), "k": "v"}
        path = os.path.join(self.dir, "t.safetensors")
        safetensors_io.write(path, tensors, meta)
        back, back_meta = safetensors_io.read(path)
        self.assertEqual(back_meta, meta)
        self.assertEqual(sorted(back), sorted(tensors))
        for name, arr in tensors.items():
            self.assertEqual(back[name].dtype, arr.dtype, name)
            self.assertEqual(back[name].shape, arr.shape, name)
            np.testing.assert_array_equal(back[name], arr)

    def test_header_layout(self):
        tensors = {"z": np.arange(3, dtype=np.float32), "a": np.arange(2, dtype=np.int32)}
        blob = safetensors_io.serialize(tensors, {"m": "x"})
        (n,) = struct.unpack("<Q", blob[:8])
        self.assertEqual(n % 8, 0)
        self.assertEqual(len(blob), 8 + n + 3 * 4 + 2 * 4)
        header = json.loads(blob[8:8 + n].decode())
        self.assertEqual(header["__metadata__"], {"m": "x"})
        self.assertEqual(header["a"], {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]})
        self.assertEqual(header["z"], {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]})
        self.assertEqual(blob[8 + n:8 + n + 8], np.arange(2, dtype="<i4").tobytes())
        self.assertEqual(blob[8 + n + 8:], np.arange(3, dtype="<f4").tobytes())

    def test_rejects_bad_offsets(self):
        blob = bytearray(safetensors_io.serialize({"a": np.zeros(4, np.float32)}))
        with self.assertRaises(safetensors_io.SafetensorsError):
            safetensors_io.deserialize(bytes(blob[:-4]))

    def test_reads_foreign_file(self):
        # A file written by hand (unsorted, unpadded header) as another writer might.
        header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]},
                             "t": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}})
        data = np.array([5, 6], "<i4").tobytes() + np.arange(4, dtype="<f4").tobytes()
        blob = struct.pack("<Q", len(header)) + header.encode() + data
        t, meta = safetensors_io.deserialize(blob)
        self.assertEqual(meta, {})
        self.assertEqual(t["t"].tolist(), [5, 6])
        self.assertEqual(t["w"].tolist(), [[0, 1], [2, 3]])


if __name__ == "__main__":
    unittest.main()
