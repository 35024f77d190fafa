#include "moeplan/Kernels/CudaKernels.h"
#include "moeplan/Kernels/Elementwise.h"

#include <cuda_runtime.h>

namespace moeplan::kernels::cuda {

namespace {

constexpr int kThreads = 256;

int64_t blocksFor(int64_t n) { return (n + kThreads - 1) / kThreads; }

__global__ void geluKernel(const float *x, float *y, int64_t count) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) y[i] = gelu(x[i]);
}

__global__ void swigluKernel(const float *gate, const float *up, float *y, int64_t count) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) y[i] = swiglu(gate[i], up[i]);
}

// One thread per row: the row statistics in double, as the CPU backend computes them.
__global__ void normKernel(const float *x, const float *weight, const float *bias, float *y,
                           int64_t m, int64_t n, bool layerNorm, float epsilon) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const float *xr = x + r * n;
  double mean = 0, square = 0;
  if (layerNorm) {
    for (int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= double(n);
  }
  for (int64_t i = 0; i < n; ++i) square += (xr[i] - mean) * (xr[i] - mean);
  const float invStd = float(1.0 / sqrt(square / double(n) + epsilon));
  for (int64_t i = 0; i < n; ++i)
    y[r * n + i] = normalize(xr[i], float(mean), invStd, weight[i], bias ? bias[i] : 0.0f);
}

__global__ void routerKernel(const float *logits, int32_t *indices, float *gates,
                             int64_t tokens, int64_t experts, int64_t topK) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < tokens) routeToken(logits + t * experts, experts, topK, indices + t * topK, gates + t * topK);
}

} // namespace

void activation(Activation kind, const float *gate, const float *x, float *y, int64_t count,
                cudaStream_t stream) {
  if (count == 0) return;
  if (kind == Activation::Gelu)
    geluKernel<<<blocksFor(count), kThreads, 0, stream>>>(x, y, count);
  else
    swigluKernel<<<blocksFor(count), kThreads, 0, stream>>>(gate, x, y, count);
}

void norm(const float *x, const float *weight, const float *bias, float *y, int64_t m,
          int64_t n, NormKind kind, float epsilon, cudaStream_t stream) {
  if (m == 0) return;
  normKernel<<<blocksFor(m), kThreads, 0, stream>>>(x, weight, bias, y, m, n,
                                                    kind == NormKind::LayerNorm, epsilon);
}

void router(const float *logits, int32_t *indices, float *gates, int64_t tokens,
            int64_t experts, int64_t topK, cudaStream_t stream) {
  if (tokens == 0) return;
  routerKernel<<<blocksFor(tokens), kThreads, 0, stream>>>(logits, indices, gates, tokens,
                                                           experts, topK);
}

} // namespace moeplan::kernels::cuda
