// The CUDA backend's kernels: one function per plan kernel kind (runtime/schema/plan.proto,
// KernelKind, documents operands and semantics), the same per-element logic as the CPU
// backend (Elementwise.h). Device pointers, row-major, each call enqueues on `stream` and
// returns; none synchronises.
//
// Storage and arithmetic: float operands are stored in `dtype` (F32, F16 or BF16: the plan's
// model dtype; every float operand of one kernel has it) and computed in fp32: GEMMs
// accumulate in fp32 (cuBLAS compute type 32F, no TF32 for F32), reductions (norm
// statistics, softmax sums) in fp32 or wider, results rounded to `dtype` once on store.
// Integer operands (token ids, expert indices, slots) are int32.
//
// Errors (a launch that fails, a cuBLAS status, dimensions a kernel cannot take) throw
// std::runtime_error naming the kernel and the cause, never a bare error code.
//
// Built only where nvcc is found (MOEPLAN_HAVE_CUDA); the header itself needs no CUDA headers.
#pragma once

#include "moeplan/Kernels/CpuKernels.h"

#include <cstdint>

typedef struct CUstream_st *cudaStream_t;
typedef struct cublasContext *cublasHandle_t;

namespace moeplan::kernels::cuda {

enum class DType { F32, F16, BF16 };
const char *dtypeName(DType dtype);  // "F32", "F16", "BF16"
int dtypeBytes(DType dtype);         // 4, 2, 2

// -- GEMMs (cuBLAS) ---------------------------------------------------------------------
// c[m, n] = a[m, k] b[k, n] (b[n, k] when transposeB). k == 0 writes zeros.
void gemm(cublasHandle_t blas, DType dtype, const void *a, const void *b, void *c, int64_t m,
          int64_t n, int64_t k, bool transposeB, cudaStream_t stream);
// c[g] = a[g] b[g] for g < groups in one batched cuBLAS call (equal shapes: strided batched);
// a[groups, m, k], b[groups, k, n], c[groups, m, n].
void groupedGemm(cublasHandle_t blas, DType dtype, const void *a, const void *b, void *c,
                 int64_t groups, int64_t m, int64_t n, int64_t k, cudaStream_t stream);

// -- per-element and per-row kernels ----------------------------------------------------
// out[t] = table[ids[t] - firstId] for ids in [idBegin, idEnd), zeros otherwise.
void embedding(DType dtype, const int32_t *ids, const void *table, void *out, int64_t m,
               int64_t n, int64_t firstId, int64_t idBegin, int64_t idEnd, cudaStream_t stream);
// y[m, n] = norm of each row (statistics in double, as the CPU backend); bias null for RMSNorm.
void norm(DType dtype, const void *x, const void *weight, const void *bias, void *y, int64_t m,
          int64_t n, NormKind kind, float epsilon, cudaStream_t stream);
// y = gelu(x) over count elements (gate unused), or silu(gate) * x for SwiGlu.
void activation(DType dtype, Activation kind, const void *gate, const void *x, void *y,
                int64_t count, cudaStream_t stream);
// c = a + b over count elements (c may alias a or b).
void add(DType dtype, const void *a, const void *b, void *c, int64_t count, cudaStream_t stream);
// y[n, m, inner] = x[m, n, inner].
void transpose(DType dtype, const void *x, void *y, int64_t m, int64_t n, int64_t inner,
               cudaStream_t stream);
// y[g, i, :] = x[g, i, :] + bias[g, :] (y may alias x).
void biasAdd(DType dtype, const void *x, const void *bias, void *y, int64_t groups, int64_t m,
             int64_t n, cudaStream_t stream);
// y[i, :] = sigmoid(gate[i]) x[i, :], as kernels::sigmoidGate; y may alias x.
void sigmoidGate(DType dtype, const void *x, const void *gate, void *y, int64_t m, int64_t n,
                 cudaStream_t stream);
// Rotary position embedding, as kernels::rope (CpuKernels.h); y may alias x.
void rope(DType dtype, const void *x, void *y, int64_t m, int64_t heads, int64_t headDim,
          int64_t sequences, int64_t firstPosition, double theta, cudaStream_t stream);

// KV cache append, as kernels::kvAppend: x[m, n] into cache rows firstPosition x sequences
// on (one contiguous device-to-device copy on `stream`).
void kvAppend(DType dtype, const void *x, void *cache, int64_t m, int64_t n, int64_t sequences,
              int64_t firstPosition, cudaStream_t stream);

// Greedy sampling, as kernels::argmax and kernels::argmaxMerge (CpuKernels.h): the same ids
// and bit patterns. argmax reads logits in `dtype` (a block per sequence reduces its last
// position's row); pairs, ids and generated are int32 (a thread per sequence merges).
void argmax(DType dtype, const void *logits, int32_t *pairs, int64_t sequences, int64_t seqLen,
            int64_t n, int64_t firstId, int64_t vocabEnd, cudaStream_t stream);
void argmaxMerge(const int32_t *pairs, int32_t *ids, int32_t *generated, int64_t groups,
                 int64_t m, int64_t n, int64_t column, cudaStream_t stream);

// -- attention ---------------------------------------------------------------------------
// Causal self-attention, layouts as the CPU kernels (CpuKernels.h): sequence s, position p at
// row p * sequences + s; query head h reads KV head h / (heads / kvHeads). One fused kernel:
// a thread block per (query tile, head, sequence) streams K/V tiles through shared memory
// with an online softmax, never materialising the scores, and visits only the key tiles at or
// before its last query (fully masked tiles are skipped).
void attentionPrefill(DType dtype, const void *q, const void *k, const void *v, void *o,
                      int64_t sequences, int64_t seqLen, int64_t heads, int64_t kvHeads,
                      int64_t headDim, cudaStream_t stream);
// One new token per sequence against kvLen cached keys then its own.
void attentionDecode(DType dtype, const void *q, const void *k, const void *v,
                     const void *kCache, const void *vCache, void *o, int64_t sequences,
                     int64_t kvLen, int64_t heads, int64_t kvHeads, int64_t headDim,
                     cudaStream_t stream);

// -- mixture of experts ------------------------------------------------------------------
// logits[tokens, experts] -> indices (int32), gates (dtype) [tokens, topK] (routeToken).
void router(DType dtype, const void *logits, int32_t *indices, void *gates, int64_t tokens,
            int64_t experts, int64_t topK, bool renormalize, cudaStream_t stream);
// As kernels::dispatch (CpuKernels.h), with the same slots: in token order (t, then j) within
// each of `groups` contiguous token groups, the next free slot of the group at the expert, or
// -1. routed[experts] and dropped[1] (device counters, may be null) accumulate what
// happened. An out-of-range expert index is recorded in *badIndex (device, may be null;
// the largest such flat choice index; the caller sets it to -1 first) and the choice is
// counted in neither.
void dispatch(DType dtype, const void *x, const int32_t *indices, void *slotsX, int32_t *slots,
              int64_t tokens, int64_t n, int64_t experts, int64_t topK, int64_t capacity,
              int64_t groups, unsigned long long *routed, unsigned long long *dropped,
              long long *badIndex, cudaStream_t stream, const void *gates = nullptr);
// x[t] = sum_j gates[t, j] y[indices[t, j], slots[t, j]] over choices not dropped;
// y[experts, groups * capacity, n] as dispatch's slotsX (groups 0 means 1).
void combine(DType dtype, const void *y, const int32_t *indices, const int32_t *slots,
             const void *gates, void *x, int64_t tokens, int64_t n, int64_t experts,
             int64_t topK, int64_t capacity, int64_t groups, cudaStream_t stream);

// -- data movement and generated data ------------------------------------------------------
// dst[i] = src[i] converted (round to nearest even) over count elements (dtypes may be equal).
void convert(DType from, DType to, const void *src, void *dst, int64_t count,
             cudaStream_t stream);

// A block of a full tensor, as the runtime's Block (runtime/include/moeplan/Runtime/Slices.h):
// [begin[d], begin[d] + count[d]) of each dim of `full`, row-major in `count` order.
struct TensorBlock {
  static constexpr int kMaxRank = 8;
  int rank = 0;
  int64_t begin[kMaxRank] = {}, count[kMaxRank] = {}, full[kMaxRank] = {};
};
// out[i] = offset + scale * seededUniformAt(key, f) (Seeded.h) where f is block element i's
// flat row-major index in the full tensor; elements past the full extent (padding) are zero.
// Generates a rank's shard of a `moeplan init-weights` tensor on the device.
void seededFill(DType dtype, void *out, const TensorBlock &block, uint64_t key, float scale,
                float offset, cudaStream_t stream);

} // namespace moeplan::kernels::cuda
