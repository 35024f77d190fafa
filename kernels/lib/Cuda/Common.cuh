// What every CUDA kernel file shares: storage types and their fp32 conversions, the dtype
// switch that instantiates a kernel per storage type, launch checks and grid sizing.
// Private to kernels/lib/Cuda.
#pragma once

#include "moeplan/Kernels/CudaKernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace moeplan::kernels::cuda::detail {

// -- storage types ----------------------------------------------------------------------
// Loads widen to fp32 exactly; stores round to nearest even once.
__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ float fromFloat<float>(float x) { return x; }
template <> __device__ __forceinline__ __half fromFloat<__half>(float x) {
  return __float2half_rn(x);
}
template <> __device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

template <typename T> struct Tag { using type = T; };

// Calls f(Tag<T>{}) with the storage type of `dtype`: one instantiation per type.
template <typename F> void withType(DType dtype, const char *kernel, F &&f) {
  switch (dtype) {
  case DType::F32: f(Tag<float>{}); return;
  case DType::F16: f(Tag<__half>{}); return;
  case DType::BF16: f(Tag<__nv_bfloat16>{}); return;
  }
  throw std::runtime_error(std::string(kernel) + ": unknown dtype " + std::to_string(int(dtype)));
}

// -- errors -----------------------------------------------------------------------------
[[noreturn]] inline void fail(const char *kernel, const std::string &why) {
  throw std::runtime_error(std::string(kernel) + ": " + why);
}

inline void check(cudaError_t status, const char *kernel) {
  if (status != cudaSuccess) fail(kernel, cudaGetErrorString(status));
}

// After every launch: a bad configuration or an earlier asynchronous fault shows up here.
inline void checkLaunch(const char *kernel) { check(cudaGetLastError(), kernel); }

inline void checkNonNegative(const char *kernel, const char *what, int64_t value) {
  if (value < 0) fail(kernel, std::string(what) + " is negative (" + std::to_string(value) + ")");
}

// Dimensions handed to an int (cuBLAS, shared-memory tile arithmetic) must fit one.
inline int toInt(const char *kernel, const char *what, int64_t value) {
  if (value < 0 || value > INT_MAX)
    fail(kernel, std::string(what) + " = " + std::to_string(value) +
                     " does not fit the 32-bit int this kernel takes");
  return int(value);
}

// -- launches ---------------------------------------------------------------------------
constexpr int kThreads = 256;
// Grid-stride loops cover any count; more blocks than this only add scheduling overhead.
constexpr int64_t kMaxBlocks = int64_t(1) << 16;

inline unsigned gridFor(int64_t count, int threads = kThreads) {
  return unsigned(std::clamp<int64_t>((count + threads - 1) / threads, 1, kMaxBlocks));
}

__device__ __forceinline__ int64_t firstIndex() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t gridStride() { return int64_t(gridDim.x) * blockDim.x; }

// -- warp reductions (every lane gets the result) ----------------------------------------
template <typename V> __device__ __forceinline__ V warpSum(V v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

} // namespace moeplan::kernels::cuda::detail
