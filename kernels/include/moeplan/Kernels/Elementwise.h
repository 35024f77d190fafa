// Per-element logic of moeplan's kernels, written once for every backend: the CPU backend
// (CpuKernels.cpp) calls these from loops, a CUDA backend from its threads. Plain C++ with
// no library calls beyond <cmath>, every function marked MOEPLAN_HOST_DEVICE.
//
// Numerics are fp32 throughout, matching what the plan's kernel documentation
// (runtime/schema/plan.proto, KernelKind) says each kernel computes.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MOEPLAN_HOST_DEVICE __host__ __device__
#else
#define MOEPLAN_HOST_DEVICE
#endif

namespace moeplan::kernels {

// GELU, tanh approximation (GPT-2, Megatron): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
MOEPLAN_HOST_DEVICE inline float gelu(float x) {
  const float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

// The logistic function; SIGMOID_GATE scales a row by sigmoid(its gate logit).
MOEPLAN_HOST_DEVICE inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// SiLU (swish): x sigmoid(x); SwiGLU(gate, up) = silu(gate) up.
MOEPLAN_HOST_DEVICE inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
MOEPLAN_HOST_DEVICE inline float swiglu(float gate, float up) { return silu(gate) * up; }

// One row of a norm, given the statistics of the row: LayerNorm (x - mean) / sqrt(var + eps)
// * w + b; RMSNorm x / sqrt(mean(x^2) + eps) * w (then mean is 0 and no bias).
MOEPLAN_HOST_DEVICE inline float normalize(float x, float mean, float invStd, float w, float b) {
  return (x - mean) * invStd * w + b;
}

// Router of one token: softmax over `experts` logits, then the topK largest probabilities
// (ties: the lower expert index), written to indices/gates in decreasing order; divided by
// their sum when `renormalize`. topK is small (a handful), so selection is topK passes over
// the experts.
MOEPLAN_HOST_DEVICE inline void routeToken(const float *logits, int64_t experts, int64_t topK,
                                           bool renormalize, int32_t *indices, float *gates) {
  float maxLogit = logits[0];
  for (int64_t e = 1; e < experts; ++e) maxLogit = logits[e] > maxLogit ? logits[e] : maxLogit;
  float sum = 0;
  for (int64_t e = 0; e < experts; ++e) sum += std::exp(logits[e] - maxLogit);
  for (int64_t j = 0; j < topK; ++j) {
    int64_t best = -1;
    for (int64_t e = 0; e < experts; ++e) {
      bool taken = false;
      for (int64_t i = 0; i < j; ++i) taken = taken || indices[i] == e;
      if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
    }
    indices[j] = int32_t(best);
    gates[j] = std::exp(logits[best] - maxLogit) / sum;
  }
  if (!renormalize) return;
  float kept = 0;
  for (int64_t j = 0; j < topK; ++j) kept += gates[j];
  for (int64_t j = 0; j < topK; ++j) gates[j] /= kept;
}

// Rotary position embedding of pair i < headDim / 2 of one head (rotate-half layout: a is
// element i, b element i + headDim / 2), turned in place by the angle position x inv_freq.
// Frequency and angle are rounded to float as Hugging Face computes them (inv_freq =
// 1 / theta^(2i/d) and position x inv_freq in fp32).
MOEPLAN_HOST_DEVICE inline void ropeRotate(float &a, float &b, int64_t headDim, int64_t i,
                                           int64_t position, double theta) {
  const float invFreq = 1.0f / float(pow(theta, double(float(2 * i) / float(headDim))));
  const float angle = float(position) * invFreq;
  const float c = std::cos(angle), s = std::sin(angle);
  const float ra = a * c - b * s, rb = b * c + a * s;
  a = ra;
  b = rb;
}

// Causal attention of one query row against keys/values 0..keys-1, for one head:
// o = softmax(q k^T / sqrt(d)) v, computed in two passes for a stable softmax. `key(i)` and
// `value(i)` give the i-th key/value row of this head; scores has room for `keys` floats.
template <typename KeyRow, typename ValueRow>
MOEPLAN_HOST_DEVICE inline void attendRow(const float *q, int64_t headDim, int64_t keys,
                                          KeyRow key, ValueRow value, float *scores,
                                          float *o) {
  const float scale = 1.0f / std::sqrt(float(headDim));
  float maxScore = -INFINITY;
  for (int64_t i = 0; i < keys; ++i) {
    const float *k = key(i);
    float s = 0;
    for (int64_t d = 0; d < headDim; ++d) s += q[d] * k[d];
    scores[i] = s * scale;
    maxScore = scores[i] > maxScore ? scores[i] : maxScore;
  }
  float sum = 0;
  for (int64_t i = 0; i < keys; ++i) {
    scores[i] = std::exp(scores[i] - maxScore);
    sum += scores[i];
  }
  for (int64_t d = 0; d < headDim; ++d) o[d] = 0;
  for (int64_t i = 0; i < keys; ++i) {
    const float p = scores[i] / sum;
    const float *v = value(i);
    for (int64_t d = 0; d < headDim; ++d) o[d] += p * v[d];
  }
}

} // namespace moeplan::kernels
