// The CUDA kernels against the CPU ones on the same inputs: both run Elementwise.h, so they
// agree to float rounding (tanh/exp may differ in the last bits on the device). ctest label
// "gpu"; without a CUDA device every test skips.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Kernels/CudaKernels.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

using namespace moeplan::kernels;

namespace {

bool haveDevice() {
  int devices = 0;
  return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
}

template <typename T> T *toDevice(const std::vector<T> &host) {
  T *p = nullptr;
  cudaMalloc(&p, host.size() * sizeof(T));
  cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  return p;
}

template <typename T> std::vector<T> toHost(const T *device, size_t n) {
  std::vector<T> host(n);
  cudaDeviceSynchronize();
  cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost);
  return host;
}

std::vector<float> randomValues(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-3, 3);
  std::vector<float> v(n);
  for (float &x : v) x = u(gen);
  return v;
}

#define SKIP_WITHOUT_DEVICE()                                                                  \
  if (!haveDevice()) GTEST_SKIP() << "no CUDA device"

TEST(CudaKernels, ActivationsMatchCpu) {
  SKIP_WITHOUT_DEVICE();
  const size_t n = 10000;
  auto x = randomValues(n, 1), gate = randomValues(n, 2);
  std::vector<float> want(n);
  float *dx = toDevice(x), *dg = toDevice(gate), *dy = toDevice(want);
  for (Activation kind : {Activation::Gelu, Activation::SwiGlu}) {
    activation(kind, gate.data(), x.data(), want.data(), int64_t(n));
    cuda::activation(kind, dg, dx, dy, int64_t(n), nullptr);
    std::vector<float> got = toHost(dy, n);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::abs(want[i])));
  }
  cudaFree(dx), cudaFree(dg), cudaFree(dy);
}

TEST(CudaKernels, NormAndRouterMatchCpu) {
  SKIP_WITHOUT_DEVICE();
  const int64_t m = 64, n = 128, experts = 64, topK = 2;
  auto x = randomValues(size_t(m * n), 3), w = randomValues(size_t(n), 4), b = randomValues(size_t(n), 5);
  std::vector<float> want(size_t(m * n));
  norm(x.data(), w.data(), b.data(), want.data(), m, n, NormKind::LayerNorm, 1e-5f);
  float *dx = toDevice(x), *dw = toDevice(w), *db = toDevice(b), *dy = toDevice(want);
  cuda::norm(dx, dw, db, dy, m, n, NormKind::LayerNorm, 1e-5f, nullptr);
  std::vector<float> got = toHost(dy, size_t(m * n));
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4f);

  auto logits = randomValues(size_t(m * experts), 6);
  std::vector<int32_t> idx(size_t(m * topK));
  std::vector<float> gates(size_t(m * topK));
  router(logits.data(), idx.data(), gates.data(), m, experts, topK);
  float *dl = toDevice(logits), *dgates = toDevice(gates);
  int32_t *didx = toDevice(idx);
  cuda::router(dl, didx, dgates, m, experts, topK, nullptr);
  EXPECT_EQ(toHost(didx, idx.size()), idx);
  std::vector<float> gotGates = toHost(dgates, gates.size());
  for (size_t i = 0; i < gates.size(); ++i) ASSERT_NEAR(gotGates[i], gates[i], 1e-6f);
  cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy), cudaFree(dl), cudaFree(dgates), cudaFree(didx);
}

} // namespace
