// The CUDA backend's elementwise and per-token kernels: the same per-element logic as the
// CPU backend (Elementwise.h), one thread per element, token or row. Device pointers; each
// call enqueues on `stream` and returns. Built only where nvcc is found (MOEPLAN_HAVE_CUDA).
#pragma once

#include "moeplan/Kernels/CpuKernels.h"

#include <cstdint>

typedef struct CUstream_st *cudaStream_t;

namespace moeplan::kernels::cuda {

void activation(Activation kind, const float *gate, const float *x, float *y, int64_t count,
                cudaStream_t stream);
void norm(const float *x, const float *weight, const float *bias, float *y, int64_t m,
          int64_t n, NormKind kind, float epsilon, cudaStream_t stream);
void router(const float *logits, int32_t *indices, float *gates, int64_t tokens,
            int64_t experts, int64_t topK, cudaStream_t stream);

} // namespace moeplan::kernels::cuda
