// Per-element and per-row kernels: embedding, norm, activation, add, transpose, bias add,
// greedy sampling (argmax), dtype conversion and seeded fills. Each thread (or block, for a
// norm or argmax row) runs the same Elementwise.h / Seeded.h logic as the CPU backend on fp32
// values.
#include "Common.cuh"

#include "moeplan/Kernels/Elementwise.h"
#include "moeplan/Kernels/Seeded.h"

namespace moeplan::kernels::cuda {

using namespace detail;

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32: return "F32";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  }
  return "unknown";
}

int dtypeBytes(DType dtype) {
  switch (dtype) {
  case DType::F32: return 4;
  case DType::F16:
  case DType::BF16: return 2;
  }
  throw std::runtime_error("dtypeBytes: unknown dtype " + std::to_string(int(dtype)));
}

namespace {

// -- embedding --------------------------------------------------------------------------

template <typename T>
__global__ void embeddingKernel(const int32_t *ids, const T *table, T *out, int64_t m,
                                int64_t n, int64_t firstId, int64_t idBegin, int64_t idEnd) {
  for (int64_t i = firstIndex(); i < m * n; i += gridStride()) {
    const int64_t id = ids[i / n], c = i % n;
    out[i] = id >= idBegin && id < idEnd ? table[(id - firstId) * n + c] : fromFloat<T>(0.0f);
  }
}

// -- norm -------------------------------------------------------------------------------

constexpr int kNormThreads = 256;

// Sum over the block, the same value in every thread (each adds the warp partials in the
// same order). `partial` has a slot per warp.
__device__ double blockSum(double v, double *partial) {
  v = warpSum(v);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kNormThreads / 32; ++w) total += partial[w];
  __syncthreads(); // partial is reused by the next call
  return total;
}

// A block per row; the statistics in double as the CPU backend (mean, then the sum of squared
// deviations from it; RMSNorm keeps mean 0).
template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    normKernel(const T *x, const T *weight, const T *bias, T *y, int64_t m, int64_t n,
               bool layerNorm, float epsilon) {
  __shared__ double partial[kNormThreads / 32];
  for (int64_t r = blockIdx.x; r < m; r += gridDim.x) {
    const T *xr = x + r * n;
    T *yr = y + r * n;
    double mean = 0;
    if (layerNorm) {
      double sum = 0;
      for (int64_t i = threadIdx.x; i < n; i += kNormThreads) sum += toFloat(xr[i]);
      mean = blockSum(sum, partial) / double(n);
    }
    double square = 0;
    for (int64_t i = threadIdx.x; i < n; i += kNormThreads) {
      const double deviation = double(toFloat(xr[i])) - mean;
      square += deviation * deviation;
    }
    square = blockSum(square, partial);
    const float invStd = float(1.0 / sqrt(square / double(n) + epsilon));
    for (int64_t i = threadIdx.x; i < n; i += kNormThreads)
      yr[i] = fromFloat<T>(normalize(toFloat(xr[i]), float(mean), invStd, toFloat(weight[i]),
                                     bias ? toFloat(bias[i]) : 0.0f));
  }
}

// -- activation, add, transpose, bias add ----------------------------------------------------

template <typename T> __global__ void geluKernel(const T *x, T *y, int64_t count) {
  for (int64_t i = firstIndex(); i < count; i += gridStride())
    y[i] = fromFloat<T>(gelu(toFloat(x[i])));
}

template <typename T>
__global__ void swigluKernel(const T *gate, const T *up, T *y, int64_t count) {
  for (int64_t i = firstIndex(); i < count; i += gridStride())
    y[i] = fromFloat<T>(swiglu(toFloat(gate[i]), toFloat(up[i])));
}

template <typename T> __global__ void addKernel(const T *a, const T *b, T *c, int64_t count) {
  for (int64_t i = firstIndex(); i < count; i += gridStride())
    c[i] = fromFloat<T>(toFloat(a[i]) + toFloat(b[i]));
}

// A thread per output element y[j, i, c] = x[i, j, c]: writes coalesce, reads do when inner
// is wide (it is a head or hidden dimension where the plan uses this).
template <typename T>
__global__ void transposeKernel(const T *x, T *y, int64_t m, int64_t n, int64_t inner) {
  for (int64_t o = firstIndex(); o < m * n * inner; o += gridStride()) {
    const int64_t c = o % inner, row = o / inner; // row = j * m + i
    const int64_t i = row % m, j = row / m;
    y[o] = x[(i * n + j) * inner + c];
  }
}

template <typename T>
__global__ void sigmoidGateKernel(const T *x, const T *gate, T *y, int64_t m, int64_t n) {
  for (int64_t i = firstIndex(); i < m * n; i += gridStride())
    y[i] = fromFloat<T>(sigmoid(toFloat(gate[i / n])) * toFloat(x[i]));
}

// A thread per (row, head, pair): each pair is read and written by one thread, so y may be x.
template <typename T>
__global__ void ropeKernel(const T *x, T *y, int64_t m, int64_t heads, int64_t headDim,
                           int64_t sequences, int64_t firstPosition, double theta) {
  const int64_t half = headDim / 2;
  for (int64_t p = firstIndex(); p < m * heads * half; p += gridStride()) {
    const int64_t i = p % half, rowHead = p / half, row = rowHead / heads;
    const int64_t at = rowHead * headDim;
    float a = toFloat(x[at + i]), b = toFloat(x[at + i + half]);
    ropeRotate(a, b, headDim, i, firstPosition + row / sequences, theta);
    y[at + i] = fromFloat<T>(a);
    y[at + i + half] = fromFloat<T>(b);
  }
}

template <typename T>
__global__ void biasAddKernel(const T *x, const T *bias, T *y, int64_t groups, int64_t m,
                              int64_t n) {
  for (int64_t i = firstIndex(); i < groups * m * n; i += gridStride()) {
    const int64_t c = i % n, g = i / (m * n);
    y[i] = fromFloat<T>(toFloat(x[i]) + toFloat(bias[g * n + c]));
  }
}

// -- greedy sampling --------------------------------------------------------------------

// A candidate of argmax: id -1 is none. better() is a total order on candidates (larger
// value, then lower id; none last), so any reduction order gives the CPU's lowest-id pick.
struct Candidate {
  float value;
  int64_t id;
};
__device__ __forceinline__ bool better(Candidate a, Candidate b) {
  return a.id >= 0 && (b.id < 0 || a.value > b.value || (a.value == b.value && a.id < b.id));
}
__device__ __forceinline__ Candidate warpBest(Candidate c) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, c.value, offset),
                          __shfl_xor_sync(0xffffffffu, c.id, offset)};
    if (better(other, c)) c = other;
  }
  return c;
}

// A block per sequence: each thread scans a strided share of the row (NaN never a
// candidate), then warps and the block reduce.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    argmaxKernel(const T *logits, int32_t *pairs, int64_t sequences, int64_t seqLen, int64_t n,
                 int64_t firstId, int64_t columns) {
  __shared__ Candidate partial[kThreads / 32];
  for (int64_t s = blockIdx.x; s < sequences; s += gridDim.x) {
    const T *row = logits + ((seqLen - 1) * sequences + s) * n;
    Candidate best{-INFINITY, -1};
    for (int64_t c = threadIdx.x; c < columns; c += kThreads) {
      const float v = toFloat(row[c]);
      if (!isnan(v) && better(Candidate{v, firstId + c}, best)) best = Candidate{v, firstId + c};
    }
    best = warpBest(best);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < kThreads / 32; ++w)
        if (better(partial[w], best)) best = partial[w];
      pairs[2 * s] = int32_t(best.id);
      pairs[2 * s + 1] = __float_as_int(best.id < 0 ? -INFINITY : best.value);
    }
    __syncthreads(); // partial is reused by the next sequence
  }
}

__global__ void argmaxMergeKernel(const int32_t *pairs, int32_t *ids, int32_t *generated,
                                  int64_t groups, int64_t m, int64_t n, int64_t column) {
  for (int64_t q = firstIndex(); q < m; q += gridStride()) {
    Candidate best{0.0f, -1};
    for (int64_t g = 0; g < groups; ++g) {
      const int32_t *pair = pairs + 2 * (g * m + q);
      const Candidate c{__int_as_float(pair[1]), pair[0]};
      if (!isnan(c.value) && better(c, best)) best = c;
    }
    ids[q] = int32_t(best.id);
    generated[column * m + q] = int32_t(best.id);  // position-major
  }
}

// -- convert, seeded fill ---------------------------------------------------------------

template <typename From, typename To>
__global__ void convertKernel(const From *src, To *dst, int64_t count) {
  for (int64_t i = firstIndex(); i < count; i += gridStride())
    dst[i] = fromFloat<To>(toFloat(src[i]));
}

// Element i of the block: its multi-index from block.count (row-major), offset by begin into
// the full tensor; past the full extent in any dim it is padding (zero).
template <typename T>
__global__ void seededFillKernel(T *out, TensorBlock block, int64_t elements, uint64_t key,
                                 float scale, float offset) {
  for (int64_t i = firstIndex(); i < elements; i += gridStride()) {
    int64_t rest = i, flat = 0, fullStride = 1;
    bool inside = true;
    for (int d = block.rank - 1; d >= 0; --d) {
      const int64_t coordinate = block.begin[d] + rest % block.count[d];
      rest /= block.count[d];
      inside = inside && coordinate < block.full[d];
      flat += coordinate * fullStride;
      fullStride *= block.full[d];
    }
    // _rn: no fused multiply-add, so the value is bit-identical to the host's
    // offset + scale * u.
    out[i] = fromFloat<T>(inside ? __fadd_rn(offset, __fmul_rn(scale, seededUniformAt(
                                                                          key, uint64_t(flat))))
                                 : 0.0f);
  }
}

} // namespace

void embedding(DType dtype, const int32_t *ids, const void *table, void *out, int64_t m,
               int64_t n, int64_t firstId, int64_t idBegin, int64_t idEnd, cudaStream_t stream) {
  const char *kernel = "embedding";
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "n", n);
  if (m == 0 || n == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    embeddingKernel<T><<<gridFor(m * n), kThreads, 0, stream>>>(
        ids, static_cast<const T *>(table), static_cast<T *>(out), m, n, firstId, idBegin, idEnd);
  });
  checkLaunch(kernel);
}

void norm(DType dtype, const void *x, const void *weight, const void *bias, void *y, int64_t m,
          int64_t n, NormKind kind, float epsilon, cudaStream_t stream) {
  const char *kernel = "norm";
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "n", n);
  if (m == 0 || n == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    normKernel<T><<<unsigned(std::min(m, kMaxBlocks)), kNormThreads, 0, stream>>>(
        static_cast<const T *>(x), static_cast<const T *>(weight), static_cast<const T *>(bias),
        static_cast<T *>(y), m, n, kind == NormKind::LayerNorm, epsilon);
  });
  checkLaunch(kernel);
}

void activation(DType dtype, Activation kind, const void *gate, const void *x, void *y,
                int64_t count, cudaStream_t stream) {
  const char *kernel = "activation";
  checkNonNegative(kernel, "count", count);
  if (count == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (kind == Activation::Gelu)
      geluKernel<T><<<gridFor(count), kThreads, 0, stream>>>(static_cast<const T *>(x),
                                                              static_cast<T *>(y), count);
    else
      swigluKernel<T><<<gridFor(count), kThreads, 0, stream>>>(
          static_cast<const T *>(gate), static_cast<const T *>(x), static_cast<T *>(y), count);
  });
  checkLaunch(kernel);
}

void add(DType dtype, const void *a, const void *b, void *c, int64_t count, cudaStream_t stream) {
  const char *kernel = "add";
  checkNonNegative(kernel, "count", count);
  if (count == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    addKernel<T><<<gridFor(count), kThreads, 0, stream>>>(
        static_cast<const T *>(a), static_cast<const T *>(b), static_cast<T *>(c), count);
  });
  checkLaunch(kernel);
}

void transpose(DType dtype, const void *x, void *y, int64_t m, int64_t n, int64_t inner,
               cudaStream_t stream) {
  const char *kernel = "transpose";
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "n", n);
  checkNonNegative(kernel, "inner", inner);
  if (m == 0 || n == 0 || inner == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    transposeKernel<T><<<gridFor(m * n * inner), kThreads, 0, stream>>>(
        static_cast<const T *>(x), static_cast<T *>(y), m, n, inner);
  });
  checkLaunch(kernel);
}

void biasAdd(DType dtype, const void *x, const void *bias, void *y, int64_t groups, int64_t m,
             int64_t n, cudaStream_t stream) {
  const char *kernel = "biasAdd";
  checkNonNegative(kernel, "groups", groups), checkNonNegative(kernel, "m", m);
  checkNonNegative(kernel, "n", n);
  if (groups == 0 || m == 0 || n == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    biasAddKernel<T><<<gridFor(groups * m * n), kThreads, 0, stream>>>(
        static_cast<const T *>(x), static_cast<const T *>(bias), static_cast<T *>(y), groups, m,
        n);
  });
  checkLaunch(kernel);
}

void sigmoidGate(DType dtype, const void *x, const void *gate, void *y, int64_t m, int64_t n,
                 cudaStream_t stream) {
  const char *kernel = "sigmoidGate";
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "n", n);
  if (m == 0 || n == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    sigmoidGateKernel<T><<<gridFor(m * n), kThreads, 0, stream>>>(
        static_cast<const T *>(x), static_cast<const T *>(gate), static_cast<T *>(y), m, n);
  });
  checkLaunch(kernel);
}

void rope(DType dtype, const void *x, void *y, int64_t m, int64_t heads, int64_t headDim,
          int64_t sequences, int64_t firstPosition, double theta, cudaStream_t stream) {
  const char *kernel = "rope";
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "heads", heads);
  checkNonNegative(kernel, "headDim", headDim), checkNonNegative(kernel, "firstPosition", firstPosition);
  if (headDim % 2 || sequences < 1 || !(theta > 0))
    fail(kernel, "needs an even headDim, sequences >= 1 and theta > 0");
  if (m == 0 || heads == 0 || headDim == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    ropeKernel<T><<<gridFor(m * heads * (headDim / 2)), kThreads, 0, stream>>>(
        static_cast<const T *>(x), static_cast<T *>(y), m, heads, headDim, sequences,
        firstPosition, theta);
  });
  checkLaunch(kernel);
}

void kvAppend(DType dtype, const void *x, void *cache, int64_t m, int64_t n, int64_t sequences,
              int64_t firstPosition, cudaStream_t stream) {
  const char *kernel = "kvAppend";
  checkNonNegative(kernel, "m", m), checkNonNegative(kernel, "n", n);
  checkNonNegative(kernel, "sequences", sequences);
  checkNonNegative(kernel, "firstPosition", firstPosition);
  if (m == 0 || n == 0) return;
  // Position-major rows: the new positions are one contiguous run of the cache.
  const size_t element = size_t(dtypeBytes(dtype));
  check(cudaMemcpyAsync(static_cast<char *>(cache) + size_t(firstPosition * sequences * n) * element,
                        x, size_t(m * n) * element, cudaMemcpyDeviceToDevice, stream),
        kernel);
}

void argmax(DType dtype, const void *logits, int32_t *pairs, int64_t sequences, int64_t seqLen,
            int64_t n, int64_t firstId, int64_t vocabEnd, cudaStream_t stream) {
  const char *kernel = "argmax";
  checkNonNegative(kernel, "sequences", sequences), checkNonNegative(kernel, "n", n);
  checkNonNegative(kernel, "firstId", firstId);
  if (seqLen < 1) fail(kernel, "seqLen " + std::to_string(seqLen) + " has no last position");
  if (sequences == 0) return;
  // Columns past vocabEnd are the padding of the last vocabulary slice.
  const int64_t columns = std::clamp<int64_t>(vocabEnd - firstId, 0, n);
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    argmaxKernel<T><<<unsigned(std::min(sequences, kMaxBlocks)), kThreads, 0, stream>>>(
        static_cast<const T *>(logits), pairs, sequences, seqLen, n, firstId, columns);
  });
  checkLaunch(kernel);
}

void argmaxMerge(const int32_t *pairs, int32_t *ids, int32_t *generated, int64_t groups,
                 int64_t m, int64_t n, int64_t column, cudaStream_t stream) {
  const char *kernel = "argmaxMerge";
  checkNonNegative(kernel, "m", m);
  if (column < 0 || column >= n)
    fail(kernel, "column " + std::to_string(column) + " is outside generated's " +
                     std::to_string(n));
  if (m == 0) return;
  argmaxMergeKernel<<<gridFor(m), kThreads, 0, stream>>>(
      pairs, ids, generated, std::max<int64_t>(groups, 1), m, n, column);
  checkLaunch(kernel);
}

void convert(DType from, DType to, const void *src, void *dst, int64_t count,
             cudaStream_t stream) {
  const char *kernel = "convert";
  checkNonNegative(kernel, "count", count);
  if (count == 0) return;
  if (from == to) { // a copy; dtypeBytes rejects an unknown dtype
    if (src != dst)
      check(cudaMemcpyAsync(dst, src, size_t(count) * size_t(dtypeBytes(from)),
                            cudaMemcpyDeviceToDevice, stream),
            kernel);
    return;
  }
  withType(from, kernel, [&](auto fromTag) {
    using From = typename decltype(fromTag)::type;
    withType(to, kernel, [&](auto toTag) {
      using To = typename decltype(toTag)::type;
      convertKernel<From, To><<<gridFor(count), kThreads, 0, stream>>>(
          static_cast<const From *>(src), static_cast<To *>(dst), count);
    });
  });
  checkLaunch(kernel);
}

void seededFill(DType dtype, void *out, const TensorBlock &block, uint64_t key, float scale,
                float offset, cudaStream_t stream) {
  const char *kernel = "seededFill";
  if (block.rank < 0 || block.rank > TensorBlock::kMaxRank)
    fail(kernel, "rank " + std::to_string(block.rank) + " outside [0, " +
                     std::to_string(TensorBlock::kMaxRank) + "]");
  int64_t elements = 1;
  for (int d = 0; d < block.rank; ++d) {
    checkNonNegative(kernel, "a block count", block.count[d]);
    checkNonNegative(kernel, "a block begin", block.begin[d]);
    checkNonNegative(kernel, "a full extent", block.full[d]);
    elements *= block.count[d];
  }
  if (elements == 0) return;
  withType(dtype, kernel, [&](auto tag) {
    using T = typename decltype(tag)::type;
    seededFillKernel<T><<<gridFor(elements), kThreads, 0, stream>>>(static_cast<T *>(out), block,
                                                                    elements, key, scale, offset);
  });
  checkLaunch(kernel);
}

} // namespace moeplan::kernels::cuda
