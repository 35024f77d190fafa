// The CPU backend's kernels: fp32, row-major, host pointers, one call per plan kernel
// (runtime/schema/plan.proto, KernelKind, documents operands and semantics). GEMMs go
// through OpenBLAS; everything else loops over the per-element logic of Elementwise.h,
// which a CUDA backend shares.
//
// Token layout: a micro-batch's tokens are position-major (token = position x sequences +
// sequence), so attention finds sequence s's position p at row p * sequences + s.
#pragma once

#include <cstdint>
#include <vector>

namespace moeplan::kernels {

// One BLAS thread per process: ranks already fill the cores, and one thread keeps GEMM
// summation order (so results) independent of the machine's core count.
void useOneBlasThread();

// c[m, n] = a[m, k] b[k, n] (b[n, k] when transposeB).
void gemm(const float *a, const float *b, float *c, int64_t m, int64_t n, int64_t k,
          bool transposeB = false);

// c[g] = a[g] b[g] for g < groups; a[groups, m, k], b[groups, k, n], c[groups, m, n].
void groupedGemm(const float *a, const float *b, float *c, int64_t groups, int64_t m,
                 int64_t n, int64_t k);

// out[t] = table[ids[t] - firstId] for ids in [idBegin, idEnd), zeros otherwise: a rank of a
// vocab-parallel group sees only its rows, and the group's sum is the full lookup.
void embedding(const int32_t *ids, const float *table, float *out, int64_t m, int64_t n,
               int64_t firstId, int64_t idBegin, int64_t idEnd);

// y[m, n] = norm of each row; bias null for RMSNorm.
enum class NormKind { LayerNorm, RmsNorm };
void norm(const float *x, const float *weight, const float *bias, float *y, int64_t m,
          int64_t n, NormKind kind, float epsilon);

enum class Activation { Gelu, SwiGlu };
// y = gelu(x) over count elements (gate unused), or silu(gate) * x for SwiGlu.
void activation(Activation kind, const float *gate, const float *x, float *y, int64_t count);

// Causal self-attention. Prefill: q[S*L, H*d], k, v[S*L, Hkv*d], o like q; sequence s,
// position p at row p*S + s; query head h reads kv head h / (H / Hkv).
void attentionPrefill(const float *q, const float *k, const float *v, float *o,
                      int64_t sequences, int64_t seqLen, int64_t heads, int64_t kvHeads,
                      int64_t headDim);
// Decode: one new token per sequence; q[S, H*d], k, v[S, Hkv*d], caches [kvLen*S, Hkv*d]
// (position-major); keys are the kvLen cached ones, then the new one.
void attentionDecode(const float *q, const float *k, const float *v, const float *kCache,
                     const float *vCache, float *o, int64_t sequences, int64_t kvLen,
                     int64_t heads, int64_t kvHeads, int64_t headDim);

// logits[tokens, experts] -> indices, gates [tokens, topK] (routeToken per token).
void router(const float *logits, int32_t *indices, float *gates, int64_t tokens,
            int64_t experts, int64_t topK, bool renormalize = false);

// y[i, :] = sigmoid(gate[i]) x[i, :] for x[m, n] (y may be x).
void sigmoidGate(const float *x, const float *gate, float *y, int64_t m, int64_t n);

// Rotary position embedding of x[m, heads, headDim] into y (may be x): row r is at position
// firstPosition + r / sequences (position-major rows); ropePair per pair.
void rope(const float *x, float *y, int64_t m, int64_t heads, int64_t headDim,
          int64_t sequences, int64_t firstPosition, double theta);

// KV cache append: x[m, n] (m = sequences x new positions, position-major) into rows
// firstPosition x sequences .. + m of cache[cached positions x sequences, n]; other rows keep
// their values. Position-major rows make it one contiguous copy.
void kvAppend(const float *x, float *cache, int64_t m, int64_t n, int64_t sequences,
              int64_t firstPosition);

// Greedy sampling, step 1: for each of `sequences` sequences, its logits at position
// seqLen - 1 (row (seqLen - 1) x sequences + s of logits[sequences x seqLen, n], rows
// position-major), where column c is token id firstId + c (the rank's vocabulary slice).
// pairs[s] = {the id of the largest logit among ids below vocabEnd, that logit's F32 bits}:
// ties go to the lowest id, NaN never wins, and padding columns (ids >= vocabEnd) never
// count. No candidate (or only NaN): {-1, bits of -infinity}. The bits travel in an I32
// buffer so the pairs of every vocabulary slice gather in one collective.
void argmax(const float *logits, int32_t *pairs, int64_t sequences, int64_t seqLen, int64_t n,
            int64_t firstId, int64_t vocabEnd);

// Greedy sampling, step 2: pairs[groups, m, 2] (argmax's, one group per vocabulary slice;
// groups 0 means 1). For each sequence q, the id whose logit is the largest over the groups
// (ties: the lowest id; a group's -1 never wins, NaN never wins; none left: -1) goes to
// ids[q] and generated[column, q] of generated[n, m] (position-major: one row per token, as
// micro-batch token tensors are laid out); other rows keep their values.
void argmaxMerge(const int32_t *pairs, int32_t *ids, int32_t *generated, int64_t groups,
                 int64_t m, int64_t n, int64_t column);

// What a dispatch did, for the runtime's load-balance report.
struct DispatchCounts {
  std::vector<int64_t> routed;  // per expert: choices routed to it, dropped ones included
  int64_t dropped = 0;          // choices that found no free slot
};

// x[tokens, n], indices[tokens, topK] -> slotsX[experts, groups * capacity, n] (unused slots
// zero) and slots[tokens, topK]: the tokens are cut into `groups` equal contiguous groups,
// each with `capacity` slots per expert (rows g*capacity ..); in token order (t, then j),
// token t's j-th choice e takes the next free slot of its group at e, or is dropped (-1).
// counts, when given, accumulates what happened. With `gates` [tokens, topK] (drop policy
// probs), an expert over capacity in a group keeps its `capacity` choices with the highest
// gates (ties: token order) instead of the first ones; the kept take slots in token order.
// With `fill` [experts, groups], fill[e, g] = the slots taken at e in group g, and unused
// slots are left as they are (the caller computes on filled rows only).
void dispatch(const float *x, const int32_t *indices, float *slotsX, int32_t *slots,
              int64_t tokens, int64_t n, int64_t experts, int64_t topK, int64_t capacity,
              int64_t groups, DispatchCounts *counts, const float *gates = nullptr,
              int32_t *fill = nullptr);

// x[t] = sum_j gates[t, j] y[indices[t, j], slots[t, j]] over choices not dropped;
// y[experts, groups * capacity, n] as dispatch's slotsX (groups 0 means 1; slots are rows of
// y counted from 0, as dispatch writes them).
void combine(const float *y, const int32_t *indices, const int32_t *slots, const float *gates,
             float *x, int64_t tokens, int64_t n, int64_t experts, int64_t topK,
             int64_t capacity, int64_t groups);

// c = a + b over count elements (c may alias a or b).
void add(const float *a, const float *b, float *c, int64_t count);

// y[n, m, inner] = x[m, n, inner] transposed in its first two dims.
void transpose(const float *x, float *y, int64_t m, int64_t n, int64_t inner);

// y[g, i, :] = x[g, i, :] + bias[g, :] for groups x m rows of n (y may alias x).
void biasAdd(const float *x, const float *bias, float *y, int64_t groups, int64_t m, int64_t n);

} // namespace moeplan::kernels
