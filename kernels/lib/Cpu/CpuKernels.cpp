#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Kernels/Elementwise.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace moeplan::kernels {

void useOneBlasThread() { openblas_set_num_threads(1); }

namespace {
// cblas_sgemm takes its dimensions and leading dimensions as int (the plan validator refuses
// plans whose GEMMs exceed it; a direct caller gets this error instead of a wrapped value).
int blasInt(const char *kernel, const char *what, int64_t value) {
  if (value < 0 || value > INT_MAX)
    throw std::invalid_argument(std::string(kernel) + ": " + what + " = " + std::to_string(value) +
                                " does not fit the 32-bit int BLAS takes");
  return int(value);
}

// Rows per expert of dispatch's slotsX and combine's y: groups (0 means 1) x capacity. Slots
// are I32, so the last row, rows - 1, must fit one.
int64_t slotRows(const char *kernel, int64_t capacity, int64_t groups) {
  groups = std::max<int64_t>(groups, 1);
  if (capacity < 0 || capacity > INT32_MAX / groups)
    throw std::invalid_argument(std::string(kernel) + ": groups x capacity = " +
                                std::to_string(groups) + " x " + std::to_string(capacity) +
                                " rows do not fit the I32 slots");
  return groups * capacity;
}

// argmax's pairs carry a logit as its F32 bit pattern in an I32.
int32_t floatBits(float v) {
  int32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}
float bitsFloat(int32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
} // namespace

void gemm(const float *a, const float *b, float *c, int64_t m, int64_t n, int64_t k,
          bool transposeB) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + m * n, 0.0f);
    return;
  }
  // Leading dimensions: a's is k, b's n (k when transposed), c's n; so m, n, k cover them.
  const int rows = blasInt("gemm", "m", m), cols = blasInt("gemm", "n", n);
  const int depth = blasInt("gemm", "k", k);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, rows, cols,
              depth, 1.0f, a, depth, b, transposeB ? depth : cols, 0.0f, c, cols);
}

void groupedGemm(const float *a, const float *b, float *c, int64_t groups, int64_t m,
                 int64_t n, int64_t k) {
  for (int64_t g = 0; g < groups; ++g) gemm(a + g * m * k, b + g * k * n, c + g * m * n, m, n, k);
}

void embedding(const int32_t *ids, const float *table, float *out, int64_t m, int64_t n,
               int64_t firstId, int64_t idBegin, int64_t idEnd) {
  for (int64_t t = 0; t < m; ++t) {
    float *row = out + t * n;
    const int64_t id = ids[t];
    if (id >= idBegin && id < idEnd)
      std::copy(table + (id - firstId) * n, table + (id - firstId + 1) * n, row);
    else
      std::fill(row, row + n, 0.0f);
  }
}

void norm(const float *x, const float *weight, const float *bias, float *y, int64_t m,
          int64_t n, NormKind kind, float epsilon) {
  for (int64_t r = 0; r < m; ++r) {
    const float *xr = x + r * n;
    float *yr = y + r * n;
    // Statistics in double: the row sums are the one place fp32 loses digits with n.
    double mean = 0, square = 0;
    if (kind == NormKind::LayerNorm) {
      for (int64_t i = 0; i < n; ++i) mean += xr[i];
      mean /= double(n);
    }
    for (int64_t i = 0; i < n; ++i) square += (xr[i] - mean) * (xr[i] - mean);
    const float invStd = float(1.0 / std::sqrt(square / double(n) + epsilon));
    for (int64_t i = 0; i < n; ++i)
      yr[i] = normalize(xr[i], float(mean), invStd, weight[i], bias ? bias[i] : 0.0f);
  }
}

void activation(Activation kind, const float *gate, const float *x, float *y, int64_t count) {
  if (kind == Activation::Gelu)
    for (int64_t i = 0; i < count; ++i) y[i] = gelu(x[i]);
  else
    for (int64_t i = 0; i < count; ++i) y[i] = swiglu(gate[i], x[i]);
}

namespace {
void checkHeads(int64_t heads, int64_t kvHeads) {
  if (kvHeads <= 0 || heads % kvHeads != 0)
    throw std::invalid_argument("attention: " + std::to_string(heads) +
                                " heads are not a multiple of " + std::to_string(kvHeads) +
                                " KV heads");
}
} // namespace

void attentionPrefill(const float *q, const float *k, const float *v, float *o,
                      int64_t sequences, int64_t seqLen, int64_t heads, int64_t kvHeads,
                      int64_t headDim) {
  checkHeads(heads, kvHeads);
  const int64_t qWidth = heads * headDim, kvWidth = kvHeads * headDim;
  const int64_t perKv = heads / kvHeads;
  std::vector<float> scores(static_cast<size_t>(seqLen));
  for (int64_t s = 0; s < sequences; ++s)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kvCol = (h / perKv) * headDim;
      auto key = [&](int64_t i) { return k + (i * sequences + s) * kvWidth + kvCol; };
      auto value = [&](int64_t i) { return v + (i * sequences + s) * kvWidth + kvCol; };
      for (int64_t p = 0; p < seqLen; ++p) {
        const int64_t row = p * sequences + s;
        attendRow(q + row * qWidth + h * headDim, headDim, p + 1, key, value, scores.data(),
                  o + row * qWidth + h * headDim);
      }
    }
}

void attentionDecode(const float *q, const float *k, const float *v, const float *kCache,
                     const float *vCache, float *o, int64_t sequences, int64_t kvLen,
                     int64_t heads, int64_t kvHeads, int64_t headDim) {
  checkHeads(heads, kvHeads);
  const int64_t qWidth = heads * headDim, kvWidth = kvHeads * headDim;
  const int64_t perKv = heads / kvHeads;
  std::vector<float> scores(static_cast<size_t>(kvLen + 1));
  for (int64_t s = 0; s < sequences; ++s)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kvCol = (h / perKv) * headDim;
      auto row = [&](const float *cache, const float *fresh, int64_t i) {
        return i < kvLen ? cache + (i * sequences + s) * kvWidth + kvCol
                         : fresh + s * kvWidth + kvCol;
      };
      attendRow(q + s * qWidth + h * headDim, headDim, kvLen + 1,
                [&](int64_t i) { return row(kCache, k, i); },
                [&](int64_t i) { return row(vCache, v, i); }, scores.data(),
                o + s * qWidth + h * headDim);
    }
}

void router(const float *logits, int32_t *indices, float *gates, int64_t tokens,
            int64_t experts, int64_t topK, bool renormalize) {
  for (int64_t t = 0; t < tokens; ++t)
    routeToken(logits + t * experts, experts, topK, renormalize, indices + t * topK,
               gates + t * topK);
}

void sigmoidGate(const float *x, const float *gate, float *y, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m; ++i) {
    const float s = sigmoid(gate[i]);
    for (int64_t j = 0; j < n; ++j) y[i * n + j] = s * x[i * n + j];
  }
}

void rope(const float *x, float *y, int64_t m, int64_t heads, int64_t headDim,
          int64_t sequences, int64_t firstPosition, double theta) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t at = (r * heads + h) * headDim;
      for (int64_t i = 0; i < headDim / 2; ++i) {
        float a = x[at + i], b = x[at + i + headDim / 2];
        ropeRotate(a, b, headDim, i, firstPosition + r / sequences, theta);
        y[at + i] = a, y[at + i + headDim / 2] = b;
      }
    }
}

void kvAppend(const float *x, float *cache, int64_t m, int64_t n, int64_t sequences,
              int64_t firstPosition) {
  std::copy(x, x + m * n, cache + firstPosition * sequences * n);
}

void argmax(const float *logits, int32_t *pairs, int64_t sequences, int64_t seqLen, int64_t n,
            int64_t firstId, int64_t vocabEnd) {
  if (seqLen < 1)
    throw std::invalid_argument("argmax: seqLen " + std::to_string(seqLen) +
                                " has no last position");
  // Columns past vocabEnd are the padding of the last vocabulary slice.
  const int64_t columns = std::clamp<int64_t>(vocabEnd - firstId, 0, n);
  for (int64_t s = 0; s < sequences; ++s) {
    const float *row = logits + ((seqLen - 1) * sequences + s) * n;
    int64_t best = -1;
    float value = -std::numeric_limits<float>::infinity();
    // Ascending ids and a strict comparison: ties keep the lowest id. The first number
    // seen is taken whatever it is, so an all -infinity row still names an id.
    for (int64_t c = 0; c < columns; ++c)
      if (!std::isnan(row[c]) && (best < 0 || row[c] > value)) best = c, value = row[c];
    pairs[2 * s] = best < 0 ? -1 : int32_t(firstId + best);
    pairs[2 * s + 1] = floatBits(value);
  }
}

void argmaxMerge(const int32_t *pairs, int32_t *ids, int32_t *generated, int64_t groups,
                 int64_t m, int64_t n, int64_t column) {
  if (column < 0 || column >= n)
    throw std::out_of_range("argmaxMerge: column " + std::to_string(column) +
                            " is outside generated's " + std::to_string(n));
  groups = std::max<int64_t>(groups, 1);
  for (int64_t q = 0; q < m; ++q) {
    int32_t best = -1;
    float value = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const int32_t *pair = pairs + 2 * (g * m + q);
      const float v = bitsFloat(pair[1]);
      if (pair[0] < 0 || std::isnan(v)) continue;
      if (best < 0 || v > value || (v == value && pair[0] < best)) best = pair[0], value = v;
    }
    ids[q] = best;
    generated[column * m + q] = best;  // row `column`: position-major, as token tensors are
  }
}

void dispatch(const float *x, const int32_t *indices, float *slotsX, int32_t *slots,
              int64_t tokens, int64_t n, int64_t experts, int64_t topK, int64_t capacity,
              int64_t groups, DispatchCounts *counts, const float *gates, int32_t *fill) {
  groups = std::max<int64_t>(groups, 1);
  if (tokens % groups != 0)
    throw std::invalid_argument("dispatch: " + std::to_string(groups) + " groups do not divide " +
                                std::to_string(tokens) + " tokens");
  const int64_t rows = slotRows("dispatch", capacity, groups), perGroup = tokens / groups;
  if (!fill) std::fill(slotsX, slotsX + experts * rows * n, 0.0f);
  if (counts && counts->routed.size() != size_t(experts)) counts->routed.assign(size_t(experts), 0);
  std::vector<int64_t> used(static_cast<size_t>(experts));
  // Drop policy probs: which choices each over-full expert keeps, decided per group first.
  std::vector<char> keep;
  if (gates) {
    keep.assign(size_t(tokens * topK), 1);
    std::vector<std::vector<int64_t>> byExpert(static_cast<size_t>(experts));
    for (int64_t g = 0; g < groups; ++g) {
      for (auto &list : byExpert) list.clear();
      for (int64_t c = g * perGroup * topK; c < (g + 1) * perGroup * topK; ++c)
        if (indices[c] >= 0 && indices[c] < experts) byExpert[size_t(indices[c])].push_back(c);
      for (auto &list : byExpert) {
        if (int64_t(list.size()) <= capacity) continue;
        std::stable_sort(list.begin(), list.end(),
                         [&](int64_t a, int64_t b) { return gates[a] > gates[b]; });
        for (size_t i = size_t(capacity); i < list.size(); ++i) keep[size_t(list[i])] = 0;
      }
    }
  }
  auto recordFill = [&](int64_t group) {
    if (fill)
      for (int64_t e = 0; e < experts; ++e) fill[e * groups + group] = int32_t(used[size_t(e)]);
  };
  for (int64_t t = 0; t < tokens; ++t) {
    if (t % perGroup == 0) {
      if (t > 0) recordFill(t / perGroup - 1);
      std::fill(used.begin(), used.end(), 0);
    }
    const int64_t group = t / perGroup;
    for (int64_t j = 0; j < topK; ++j) {
      const int64_t e = indices[t * topK + j];
      if (e < 0 || e >= experts)
        throw std::out_of_range("dispatch: token " + std::to_string(t) + " routed to expert " +
                                std::to_string(e) + " of " + std::to_string(experts));
      if (counts) ++counts->routed[size_t(e)];
      if (gates ? !keep[size_t(t * topK + j)] : used[size_t(e)] == capacity) {
        slots[t * topK + j] = -1;
        if (counts) ++counts->dropped;
        continue;
      }
      const int64_t slot = group * capacity + used[size_t(e)]++;
      slots[t * topK + j] = int32_t(slot);
      std::copy(x + t * n, x + (t + 1) * n, slotsX + (e * rows + slot) * n);
    }
  }
  if (tokens > 0) recordFill(groups - 1);
  else if (fill) std::fill(fill, fill + experts * groups, 0);
}

void combine(const float *y, const int32_t *indices, const int32_t *slots, const float *gates,
             float *x, int64_t tokens, int64_t n, int64_t experts, int64_t topK,
             int64_t capacity, int64_t groups) {
  const int64_t rows = slotRows("combine", capacity, groups);
  for (int64_t t = 0; t < tokens; ++t) {
    float *out = x + t * n;
    std::fill(out, out + n, 0.0f);
    for (int64_t j = 0; j < topK; ++j) {
      const int64_t e = indices[t * topK + j], slot = slots[t * topK + j];
      if (slot < 0) continue;
      if (e < 0 || e >= experts || slot >= rows)
        throw std::out_of_range("combine: token " + std::to_string(t) + " names expert " +
                                std::to_string(e) + " slot " + std::to_string(slot));
      const float gate = gates[t * topK + j];
      const float *src = y + (e * rows + slot) * n;
      for (int64_t i = 0; i < n; ++i) out[i] += gate * src[i];
    }
  }
}

void add(const float *a, const float *b, float *c, int64_t count) {
  for (int64_t i = 0; i < count; ++i) c[i] = a[i] + b[i];
}

void transpose(const float *x, float *y, int64_t m, int64_t n, int64_t inner) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      std::copy(x + (i * n + j) * inner, x + (i * n + j + 1) * inner, y + (j * m + i) * inner);
}

void biasAdd(const float *x, const float *bias, float *y, int64_t groups, int64_t m, int64_t n) {
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < m; ++i) {
      const float *xr = x + (g * m + i) * n;
      float *yr = y + (g * m + i) * n;
      for (int64_t c = 0; c < n; ++c) yr[c] = xr[c] + bias[g * n + c];
    }
}

} // namespace moeplan::kernels
