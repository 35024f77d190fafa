// The CUDA kernels against the CPU ones (CpuKernels.h) on the same inputs, for every storage
// dtype. F16/BF16 inputs are rounded to the dtype first and the CPU computes on the rounded
// values in fp32, so the two differ only by fp32 summation order, device exp/tanh ulps, and
// the device's one rounding of each result to the dtype (unit roundoff u: 2^-24 F32, 2^-11
// F16, 2^-8 BF16); each tolerance below says which of these it allows. Copies, slots and
// router indices must match exactly. ctest label "gpu"; without a CUDA device every test
// skips.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Kernels/CudaKernels.h"
#include "moeplan/Kernels/Seeded.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace moeplan::kernels;
using cuda::DType;

namespace {

constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16};

bool haveDevice() {
  int devices = 0;
  return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
}

void check(cudaError_t status, const char *what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

double unitRoundoff(DType dtype) {
  switch (dtype) {
  case DType::F32: return std::ldexp(1.0, -24);
  case DType::F16: return std::ldexp(1.0, -11);
  case DType::BF16: return std::ldexp(1.0, -8);
  }
  return 0;
}
const double kF32 = std::ldexp(1.0, -24);

// The most one rounding of x to the dtype changes it: u |x| for a normal result, half the
// subnormal spacing below the smallest normal (F16's 2^-24 spacing is far above u |x| there).
double roundingError(DType dtype, double x) {
  const int subnormalSpacing = dtype == DType::F16 ? -24 : dtype == DType::BF16 ? -133 : -149;
  return unitRoundoff(dtype) * std::abs(x) + std::ldexp(1.0, subnormalSpacing - 1);
}

// A sum of `terms` products accumulated in fp32 (fused or not, in any order), then rounded
// once to the dtype; `scale` is the sum of the products' magnitudes.
std::function<double(size_t)> sumOfProductsTolerance(DType dtype, int64_t terms,
                                                     const std::vector<float> &scale,
                                                     const std::vector<float> &want) {
  return [=, &scale, &want](size_t i) {
    return 4.0 * double(terms) * kF32 * scale[i] + roundingError(dtype, want[i]);
  };
}

// -- host values in a storage dtype ------------------------------------------------------

float roundTo(DType dtype, float x) {
  switch (dtype) {
  case DType::F32: return x;
  case DType::F16: return __half2float(__float2half_rn(x));
  case DType::BF16: return __bfloat162float(__float2bfloat16_rn(x));
  }
  return x;
}

std::vector<float> roundTo(DType dtype, std::vector<float> values) {
  for (float &x : values) x = roundTo(dtype, x);
  return values;
}

std::vector<unsigned char> encode(DType dtype, const std::vector<float> &values) {
  std::vector<unsigned char> bytes(values.size() * size_t(cuda::dtypeBytes(dtype)));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(&bytes[4 * i], &values[i], 4);
    } else if (dtype == DType::F16) {
      const __half h = __float2half_rn(values[i]);
      std::memcpy(&bytes[2 * i], &h, 2);
    } else {
      const __nv_bfloat16 b = __float2bfloat16_rn(values[i]);
      std::memcpy(&bytes[2 * i], &b, 2);
    }
  }
  return bytes;
}

std::vector<float> decode(DType dtype, const std::vector<unsigned char> &bytes) {
  std::vector<float> values(bytes.size() / size_t(cuda::dtypeBytes(dtype)));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(&values[i], &bytes[4 * i], 4);
    } else if (dtype == DType::F16) {
      __half h;
      std::memcpy(&h, &bytes[2 * i], 2);
      values[i] = __half2float(h);
    } else {
      __nv_bfloat16 b;
      std::memcpy(&b, &bytes[2 * i], 2);
      values[i] = __bfloat162float(b);
    }
  }
  return values;
}

// -- device memory ------------------------------------------------------------------------

class DeviceBuffer {
public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    check(cudaMalloc(&data_, bytes ? bytes : 1), "cudaMalloc");
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  ~DeviceBuffer() { cudaFree(data_); }
  void *get() const { return data_; }
  template <typename T> T *as() const { return static_cast<T *>(data_); }
  size_t bytes() const { return bytes_; }

private:
  void *data_ = nullptr;
  size_t bytes_;
};

void copyIn(const DeviceBuffer &buffer, const void *host, size_t bytes) {
  if (bytes) check(cudaMemcpy(buffer.get(), host, bytes, cudaMemcpyHostToDevice), "upload");
}

// Waits for every kernel first, so that a fault shows up at its test.
void copyOut(void *host, const DeviceBuffer &buffer, size_t bytes) {
  check(cudaDeviceSynchronize(), "kernel");
  if (bytes) check(cudaMemcpy(host, buffer.get(), bytes, cudaMemcpyDeviceToHost), "download");
}

// Values stored in `dtype` (rounded to nearest even).
std::unique_ptr<DeviceBuffer> upload(DType dtype, const std::vector<float> &values) {
  const std::vector<unsigned char> bytes = encode(dtype, values);
  auto buffer = std::make_unique<DeviceBuffer>(bytes.size());
  copyIn(*buffer, bytes.data(), bytes.size());
  return buffer;
}

template <typename I> std::unique_ptr<DeviceBuffer> uploadRaw(const std::vector<I> &values) {
  auto buffer = std::make_unique<DeviceBuffer>(values.size() * sizeof(I));
  copyIn(*buffer, values.data(), buffer->bytes());
  return buffer;
}

std::unique_ptr<DeviceBuffer> zeros(DType dtype, size_t count) {
  auto buffer = std::make_unique<DeviceBuffer>(count * size_t(cuda::dtypeBytes(dtype)));
  check(cudaMemset(buffer->get(), 0, buffer->bytes()), "cudaMemset");
  return buffer;
}

// A buffer of NaN-ish garbage: a kernel must overwrite every element it owns.
std::unique_ptr<DeviceBuffer> garbage(size_t bytes) {
  auto buffer = std::make_unique<DeviceBuffer>(bytes);
  check(cudaMemset(buffer->get(), 0xff, bytes), "cudaMemset");
  return buffer;
}
std::unique_ptr<DeviceBuffer> garbage(DType dtype, size_t count) {
  return garbage(count * size_t(cuda::dtypeBytes(dtype)));
}

std::vector<float> download(DType dtype, const DeviceBuffer &buffer, size_t count) {
  std::vector<unsigned char> bytes(count * size_t(cuda::dtypeBytes(dtype)));
  copyOut(bytes.data(), buffer, bytes.size());
  return decode(dtype, bytes);
}

template <typename I> std::vector<I> downloadRaw(const DeviceBuffer &buffer, size_t count) {
  std::vector<I> values(count);
  copyOut(values.data(), buffer, count * sizeof(I));
  return values;
}

// -- inputs and comparisons ---------------------------------------------------------------

std::vector<float> randomValues(size_t n, unsigned seed, float range = 3) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-range, range);
  std::vector<float> v(n);
  for (float &x : v) x = u(gen);
  return v;
}

std::vector<float> absolute(std::vector<float> v) {
  for (float &x : v) x = std::abs(x);
  return v;
}

// Every got equal to want (infinities included) or within tolerance(i) of it; reports the
// first few that are not (NaN never is).
void expectClose(const std::vector<float> &got, const std::vector<float> &want,
                 const std::function<double(size_t)> &tolerance, const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double allowed = tolerance(i);
    if (got[i] == want[i] || std::abs(double(got[i]) - double(want[i])) <= allowed) continue;
    if (++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i]
                    << " (tolerance " << allowed << ")";
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements off";
}

void expectEqualValues(const std::vector<float> &got, const std::vector<float> &want,
                       const std::string &what) {
  expectClose(got, want, [](size_t) { return 0.0; }, what);
}

// Elementwise results: fp32 agreement to a few ulps (device tanh/exp, fused multiply-adds),
// plus the one rounding to the dtype.
std::function<double(size_t)> elementwiseTolerance(DType dtype, const std::vector<float> &want) {
  const double u = unitRoundoff(dtype);
  return [u, &want](size_t i) { return (1e-5 + u) * (1 + std::abs(want[i])); };
}

std::string traceOf(DType dtype) { return std::string("dtype ") + cuda::dtypeName(dtype); }

class CudaKernels : public ::testing::Test {
protected:
  void SetUp() override {
    if (!haveDevice()) GTEST_SKIP() << "no CUDA device";
    check(cudaStreamCreate(&stream_), "cudaStreamCreate");
    if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS) FAIL() << "cublasCreate failed";
  }
  void TearDown() override {
    if (blas_) cublasDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
};

// -- tests ----------------------------------------------------------------------------------

TEST_F(CudaKernels, DTypeNamesAndSizes) {
  EXPECT_STREQ(cuda::dtypeName(DType::F32), "F32");
  EXPECT_STREQ(cuda::dtypeName(DType::F16), "F16");
  EXPECT_STREQ(cuda::dtypeName(DType::BF16), "BF16");
  EXPECT_EQ(cuda::dtypeBytes(DType::F32), 4);
  EXPECT_EQ(cuda::dtypeBytes(DType::F16), 2);
  EXPECT_EQ(cuda::dtypeBytes(DType::BF16), 2);
}

// GEMM error bound: each side's fp32 accumulation is within k u' sum_k |a||b| with u' = 2^-23
// (tensor cores may truncate rather than round), so the two are within 4 k 2^-24 sum|a||b|;
// the device then rounds to the dtype (u |c|).
TEST_F(CudaKernels, GemmMatchesCpu) {
  struct Case {
    int64_t m, n, k;
    bool transposeB;
  };
  const Case cases[] = {{1, 1, 1, false},    {17, 33, 29, false}, {17, 33, 29, true},
                        {64, 48, 96, false}, {100, 7, 130, true}, {3, 5, 0, false}};
  unsigned seed = 10;
  for (DType dtype : kTypes)
    for (const Case &c : cases) {
      SCOPED_TRACE(traceOf(dtype) + " m " + std::to_string(c.m) + " n " + std::to_string(c.n) +
                   " k " + std::to_string(c.k) + (c.transposeB ? " transposed" : ""));
      const auto a = roundTo(dtype, randomValues(size_t(c.m * c.k), ++seed));
      const auto b = roundTo(dtype, randomValues(size_t(c.k * c.n), ++seed));
      std::vector<float> want(static_cast<size_t>(c.m * c.n)), scale(want.size());
      gemm(a.data(), b.data(), want.data(), c.m, c.n, c.k, c.transposeB);
      gemm(absolute(a).data(), absolute(b).data(), scale.data(), c.m, c.n, c.k, c.transposeB);
      auto da = upload(dtype, a), db = upload(dtype, b);
      auto dc = garbage(dtype, want.size());
      cuda::gemm(blas_, dtype, da->get(), db->get(), dc->get(), c.m, c.n, c.k, c.transposeB,
                 stream_);
      expectClose(download(dtype, *dc, want.size()), want,
                  sumOfProductsTolerance(dtype, c.k, scale, want), "c");
    }
}

TEST_F(CudaKernels, GroupedGemmMatchesCpu) {
  struct Case {
    int64_t groups, m, n, k;
  };
  const Case cases[] = {{3, 19, 23, 37}, {1, 16, 16, 16}, {5, 2, 9, 70}, {2, 4, 3, 0}};
  unsigned seed = 30;
  for (DType dtype : kTypes)
    for (const Case &c : cases) {
      SCOPED_TRACE(traceOf(dtype) + " groups " + std::to_string(c.groups) + " m " +
                   std::to_string(c.m) + " n " + std::to_string(c.n) + " k " +
                   std::to_string(c.k));
      const auto a = roundTo(dtype, randomValues(size_t(c.groups * c.m * c.k), ++seed));
      const auto b = roundTo(dtype, randomValues(size_t(c.groups * c.k * c.n), ++seed));
      std::vector<float> want(static_cast<size_t>(c.groups * c.m * c.n)), scale(want.size());
      groupedGemm(a.data(), b.data(), want.data(), c.groups, c.m, c.n, c.k);
      groupedGemm(absolute(a).data(), absolute(b).data(), scale.data(), c.groups, c.m, c.n,
                  c.k);
      auto da = upload(dtype, a), db = upload(dtype, b);
      auto dc = garbage(dtype, want.size());
      cuda::groupedGemm(blas_, dtype, da->get(), db->get(), dc->get(), c.groups, c.m, c.n, c.k,
                        stream_);
      expectClose(download(dtype, *dc, want.size()), want,
                  sumOfProductsTolerance(dtype, c.k, scale, want), "c");
    }
}

TEST_F(CudaKernels, EmbeddingMatchesCpu) {
  const int64_t m = 37, n = 45, firstId = 100, idBegin = 110, idEnd = 150, rows = 50;
  std::vector<int32_t> ids(static_cast<size_t>(m));
  std::mt19937 gen(5);
  for (int32_t &id : ids) id = int32_t(90 + gen() % 70); // some outside [idBegin, idEnd)
  ids[0] = int32_t(idBegin), ids[1] = int32_t(idEnd - 1), ids[2] = int32_t(idEnd);
  for (DType dtype : kTypes) {
    SCOPED_TRACE(traceOf(dtype));
    const auto table = roundTo(dtype, randomValues(size_t(rows * n), 6));
    std::vector<float> want(static_cast<size_t>(m * n));
    embedding(ids.data(), table.data(), want.data(), m, n, firstId, idBegin, idEnd);
    auto dids = uploadRaw(ids), dtable = upload(dtype, table);
    auto dout = garbage(dtype, want.size());
    cuda::embedding(dtype, dids->as<int32_t>(), dtable->get(), dout->get(), m, n, firstId,
                    idBegin, idEnd, stream_);
    expectEqualValues(download(dtype, *dout, want.size()), want, "out");
  }
}

TEST_F(CudaKernels, NormMatchesCpu) {
  unsigned seed = 40;
  for (DType dtype : kTypes)
    for (NormKind kind : {NormKind::LayerNorm, NormKind::RmsNorm})
      for (int64_t n : {1, 129, 1000, 4099}) {
        SCOPED_TRACE(traceOf(dtype) + (kind == NormKind::LayerNorm ? " LayerNorm" : " RMSNorm") +
                     " n " + std::to_string(n));
        const int64_t m = 33;
        const auto x = roundTo(dtype, randomValues(size_t(m * n), ++seed));
        const auto w = roundTo(dtype, randomValues(size_t(n), ++seed));
        const auto b = roundTo(dtype, randomValues(size_t(n), ++seed));
        const bool layer = kind == NormKind::LayerNorm;
        std::vector<float> want(static_cast<size_t>(m * n));
        norm(x.data(), w.data(), layer ? b.data() : nullptr, want.data(), m, n, kind, 1e-5f);
        auto dx = upload(dtype, x), dw = upload(dtype, w), db = upload(dtype, b);
        auto dy = garbage(dtype, want.size());
        cuda::norm(dtype, dx->get(), dw->get(), layer ? db->get() : nullptr, dy->get(), m, n,
                   kind, 1e-5f, stream_);
        expectClose(download(dtype, *dy, want.size()), want, elementwiseTolerance(dtype, want),
                    "y");
      }
}

TEST_F(CudaKernels, ActivationsMatchCpu) {
  const int64_t count = 10007;
  for (DType dtype : kTypes)
    for (Activation kind : {Activation::Gelu, Activation::SwiGlu}) {
      SCOPED_TRACE(traceOf(dtype) + (kind == Activation::Gelu ? " GELU" : " SwiGLU"));
      const auto x = roundTo(dtype, randomValues(size_t(count), 1));
      const auto gate = roundTo(dtype, randomValues(size_t(count), 2));
      std::vector<float> want(static_cast<size_t>(count));
      activation(kind, gate.data(), x.data(), want.data(), count);
      auto dx = upload(dtype, x), dg = upload(dtype, gate);
      auto dy = garbage(dtype, want.size());
      cuda::activation(dtype, kind, dg->get(), dx->get(), dy->get(), count, stream_);
      expectClose(download(dtype, *dy, want.size()), want, elementwiseTolerance(dtype, want),
                  "y");
    }
}

TEST_F(CudaKernels, AddTransposeBiasAddMatchCpu) {
  for (DType dtype : kTypes) {
    SCOPED_TRACE(traceOf(dtype));
    { // add, also in place (c aliases a)
      const int64_t count = 3001;
      const auto a = roundTo(dtype, randomValues(size_t(count), 7));
      const auto b = roundTo(dtype, randomValues(size_t(count), 8));
      std::vector<float> want(static_cast<size_t>(count));
      add(a.data(), b.data(), want.data(), count);
      auto da = upload(dtype, a), db = upload(dtype, b);
      auto dc = garbage(dtype, want.size());
      cuda::add(dtype, da->get(), db->get(), dc->get(), count, stream_);
      expectClose(download(dtype, *dc, want.size()), want, elementwiseTolerance(dtype, want),
                  "add");
      cuda::add(dtype, da->get(), db->get(), da->get(), count, stream_);
      expectClose(download(dtype, *da, want.size()), want, elementwiseTolerance(dtype, want),
                  "add in place");
    }
    for (int64_t inner : {1, 3, 64}) { // transpose
      const int64_t m = 5, n = 7;
      const auto x = roundTo(dtype, randomValues(size_t(m * n * inner), 9));
      std::vector<float> want(x.size());
      transpose(x.data(), want.data(), m, n, inner);
      auto dx = upload(dtype, x);
      auto dy = garbage(dtype, want.size());
      cuda::transpose(dtype, dx->get(), dy->get(), m, n, inner, stream_);
      expectEqualValues(download(dtype, *dy, want.size()), want,
                        "transpose inner " + std::to_string(inner));
    }
    { // bias add, also in place (y aliases x)
      const int64_t groups = 3, m = 7, n = 33;
      const auto x = roundTo(dtype, randomValues(size_t(groups * m * n), 10));
      const auto bias = roundTo(dtype, randomValues(size_t(groups * n), 11));
      std::vector<float> want(x.size());
      biasAdd(x.data(), bias.data(), want.data(), groups, m, n);
      auto dx = upload(dtype, x), dbias = upload(dtype, bias);
      auto dy = garbage(dtype, want.size());
      cuda::biasAdd(dtype, dx->get(), dbias->get(), dy->get(), groups, m, n, stream_);
      expectClose(download(dtype, *dy, want.size()), want, elementwiseTolerance(dtype, want),
                  "biasAdd");
      cuda::biasAdd(dtype, dx->get(), dbias->get(), dx->get(), groups, m, n, stream_);
      expectClose(download(dtype, *dx, want.size()), want, elementwiseTolerance(dtype, want),
                  "biasAdd in place");
    }
    { // KV append: the rows at the position, the rest of the cache untouched (bit exact)
      const int64_t sequences = 3, positions = 6, n = 40, first = 4, m = sequences * 2;
      const auto x = roundTo(dtype, randomValues(size_t(m * n), 13));
      const auto before = roundTo(dtype, randomValues(size_t(positions * sequences * n), 14));
      std::vector<float> want = before;
      kvAppend(x.data(), want.data(), m, n, sequences, first);
      auto dx = upload(dtype, x), dcache = upload(dtype, before);
      cuda::kvAppend(dtype, dx->get(), dcache->get(), m, n, sequences, first, stream_);
      expectEqualValues(download(dtype, *dcache, want.size()), want, "kvAppend");
    }
    { // rotary embedding, also in place (y aliases x); positions past 1000 stress the angle
      const int64_t m = 12, heads = 3, headDim = 16, sequences = 3, first = 1021;
      const auto x = roundTo(dtype, randomValues(size_t(m * heads * headDim), 12));
      std::vector<float> want(x.size());
      rope(x.data(), want.data(), m, heads, headDim, sequences, first, 10000.0);
      auto dx = upload(dtype, x);
      auto dy = garbage(dtype, want.size());
      cuda::rope(dtype, dx->get(), dy->get(), m, heads, headDim, sequences, first, 10000.0, stream_);
      // cos/sin of angles up to ~1000 rad: a few ulps of the angle on top of elementwise.
      auto tol = [&](size_t i) { return elementwiseTolerance(dtype, want)(i) + 1e-4; };
      expectClose(download(dtype, *dy, want.size()), want, tol, "rope");
      cuda::rope(dtype, dx->get(), dx->get(), m, heads, headDim, sequences, first, 10000.0, stream_);
      expectClose(download(dtype, *dx, want.size()), want, tol, "rope in place");
    }
  }
}

// Conversions round to nearest even: the device must agree bit for bit with the host's
// __float2half_rn / __float2bfloat16_rn, ties and overflow included.
TEST_F(CudaKernels, ConvertRoundsToNearestEven) {
  std::vector<float> values = randomValues(1000, 12, 100);
  for (float x : {0.0f, -0.0f, 1.0f, 1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -11),
                  1.0f + std::ldexp(1.0f, -8), 1.0f + 3 * std::ldexp(1.0f, -8), 65504.0f, 65520.0f,
                  1e6f, -1e6f, 1e-7f, -3e-8f, 1e-40f, 3.0e38f, INFINITY, -INFINITY})
    values.push_back(x);
  const int64_t count = int64_t(values.size());
  for (DType from : kTypes)
    for (DType to : kTypes) {
      SCOPED_TRACE(std::string(cuda::dtypeName(from)) + " -> " + cuda::dtypeName(to));
      const auto src = roundTo(from, values); // what `from` holds
      const auto want = roundTo(to, src);
      auto dsrc = upload(from, src);
      auto ddst = garbage(to, values.size());
      cuda::convert(from, to, dsrc->get(), ddst->get(), count, stream_);
      const auto got = download(to, *ddst, values.size());
      expectEqualValues(got, want, "dst");
      for (size_t i = 0; i < got.size(); ++i) // -0 stays -0
        if (want[i] == 0) EXPECT_EQ(std::signbit(got[i]), std::signbit(want[i])) << i;
    }
}

TEST_F(CudaKernels, SeededFillMatchesHost) {
  const uint64_t key = streamKey(42, "layers.0.attention.wq");
  struct Case {
    std::vector<int64_t> begin, count, full;
  };
  const Case cases[] = {
      {{1, 2, 3}, {3, 6, 8}, {5, 7, 9}}, // runs past the full extent in dims 1 and 2: padding
      {{0, 0}, {64, 33}, {64, 33}},
      {{}, {}, {}}, // a scalar
      {{1000}, {5000}, {100000}},
  };
  for (DType dtype : kTypes)
    for (const Case &c : cases) {
      SCOPED_TRACE(traceOf(dtype) + " rank " + std::to_string(c.count.size()));
      cuda::TensorBlock block;
      block.rank = int(c.count.size());
      int64_t elements = 1;
      for (int d = 0; d < block.rank; ++d) {
        block.begin[d] = c.begin[size_t(d)], block.count[d] = c.count[size_t(d)];
        block.full[d] = c.full[size_t(d)];
        elements *= block.count[d];
      }
      const float scale = 0.25f, offset = 1.0f;
      std::vector<float> want(static_cast<size_t>(elements));
      for (int64_t i = 0; i < elements; ++i) {
        int64_t rest = i, flat = 0, stride = 1;
        bool inside = true;
        for (int d = block.rank - 1; d >= 0; --d) {
          const int64_t coordinate = block.begin[d] + rest % block.count[d];
          rest /= block.count[d];
          inside = inside && coordinate < block.full[d];
          flat += coordinate * stride;
          stride *= block.full[d];
        }
        const float scaled = scale * seededUniformAt(key, uint64_t(flat)); // two statements:
        want[size_t(i)] = roundTo(dtype, inside ? offset + scaled : 0.0f); // no fused multiply-add
      }
      auto dout = garbage(dtype, want.size());
      cuda::seededFill(dtype, dout->get(), block, key, scale, offset, stream_);
      expectEqualValues(download(dtype, *dout, want.size()), want, "out");
    }
}

// Indices exactly (both sides compare the same fp32 logits); gates to exp ulps plus the
// rounding to the dtype.
TEST_F(CudaKernels, RouterMatchesCpu) {
  struct Case {
    int64_t tokens, experts, topK;
  };
  const Case cases[] = {{77, 8, 2}, {77, 64, 1}, {300, 64, 6}, {45, 300, 8}, {5, 3, 3}};
  unsigned seed = 50;
  for (DType dtype : kTypes)
    for (const Case &c : cases)
      for (bool renormalize : {false, true}) {
      SCOPED_TRACE(traceOf(dtype) + " tokens " + std::to_string(c.tokens) + " experts " +
                   std::to_string(c.experts) + " top " + std::to_string(c.topK) +
                   (renormalize ? " renormalised" : ""));
      const auto logits = roundTo(dtype, randomValues(size_t(c.tokens * c.experts), ++seed));
      std::vector<int32_t> indices(static_cast<size_t>(c.tokens * c.topK));
      std::vector<float> gates(indices.size());
      router(logits.data(), indices.data(), gates.data(), c.tokens, c.experts, c.topK,
             renormalize);
      auto dlogits = upload(dtype, logits);
      auto dindices = garbage(indices.size() * sizeof(int32_t));
      auto dgates = garbage(dtype, gates.size());
      cuda::router(dtype, dlogits->get(), dindices->as<int32_t>(), dgates->get(), c.tokens,
                   c.experts, c.topK, renormalize, stream_);
      EXPECT_EQ(downloadRaw<int32_t>(*dindices, indices.size()), indices);
      const double u = unitRoundoff(dtype);
      expectClose(
          download(dtype, *dgates, gates.size()), gates,
          [&](size_t i) { return (1e-5 + u) * std::abs(gates[i]) + 1e-7; }, "gates");
    }
}

// Expert choices skewed toward expert 0 (so a small capacity drops tokens), repeats allowed.
std::vector<int32_t> skewedChoices(int64_t tokens, int64_t topK, int64_t experts,
                                   unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> indices(static_cast<size_t>(tokens * topK));
  for (int32_t &e : indices) e = int32_t(gen() % 2 ? 0 : gen() % uint32_t(experts));
  return indices;
}

TEST_F(CudaKernels, DispatchMatchesCpu) {
  struct Case {
    int64_t tokens, n, experts, topK, capacity, groups;
  };
  const Case cases[] = {
      {96, 40, 8, 2, 5, 1},       // drops; 16-byte rows in every dtype
      {96, 37, 8, 2, 100, 3},     // no drops; element copies
      {96, 16, 8, 2, 0, 4},       // capacity 0: everything dropped
      {1200, 24, 64, 2, 20, 3},   // 800 choices per group: several chunks of 256
      {1000, 8, 5, 1, 300, 0},    // groups 0 means 1
      {64, 12, 2048, 2, 1, 2},    // the most experts
      {2048, 64, 16, 4, 200, 1},  // 8192 choices in one group
  };
  unsigned seed = 60;
  for (DType dtype : kTypes)
    for (const Case &c : cases)
      for (bool probs : {false, true}) {  // drop policy position, then probs (by gates)
      SCOPED_TRACE(traceOf(dtype) + " tokens " + std::to_string(c.tokens) + " n " +
                   std::to_string(c.n) + " experts " + std::to_string(c.experts) + " top " +
                   std::to_string(c.topK) + " capacity " + std::to_string(c.capacity) +
                   " groups " + std::to_string(c.groups) + (probs ? " by probs" : ""));
      const auto x = roundTo(dtype, randomValues(size_t(c.tokens * c.n), ++seed));
      // Gates as the dtype holds them, so both sides rank the same values (ties included).
      const auto gates = roundTo(dtype, randomValues(size_t(c.tokens * c.topK), ++seed));
      const auto indices = skewedChoices(c.tokens, c.topK, c.experts, ++seed);
      const int64_t rows = std::max<int64_t>(c.groups, 1) * c.capacity;
      std::vector<float> wantX(static_cast<size_t>(c.experts * rows * c.n));
      std::vector<int32_t> wantSlots(indices.size());
      DispatchCounts counts;
      dispatch(x.data(), indices.data(), wantX.data(), wantSlots.data(), c.tokens, c.n,
               c.experts, c.topK, c.capacity, c.groups, &counts, probs ? gates.data() : nullptr);

      auto dx = upload(dtype, x), dindices = uploadRaw(indices), dgates = upload(dtype, gates);
      auto dslotsX = garbage(dtype, wantX.size());
      auto dslots = garbage(indices.size() * sizeof(int32_t));
      auto droutedCounts = uploadRaw(std::vector<unsigned long long>(size_t(c.experts), 0));
      auto ddropped = uploadRaw(std::vector<unsigned long long>{0});
      auto dbad = uploadRaw(std::vector<long long>{-1});
      cuda::dispatch(dtype, dx->get(), dindices->as<int32_t>(), dslotsX->get(),
                     dslots->as<int32_t>(), c.tokens, c.n, c.experts, c.topK, c.capacity,
                     c.groups, droutedCounts->as<unsigned long long>(),
                     ddropped->as<unsigned long long>(), dbad->as<long long>(), stream_,
                     probs ? dgates->get() : nullptr);
      EXPECT_EQ(downloadRaw<int32_t>(*dslots, indices.size()), wantSlots);
      expectEqualValues(download(dtype, *dslotsX, wantX.size()), wantX, "slotsX");
      const auto routed = downloadRaw<unsigned long long>(*droutedCounts, size_t(c.experts));
      for (int64_t e = 0; e < c.experts; ++e)
        EXPECT_EQ(int64_t(routed[size_t(e)]), counts.routed[size_t(e)]) << "expert " << e;
      EXPECT_EQ(int64_t(downloadRaw<unsigned long long>(*ddropped, 1)[0]), counts.dropped);
      EXPECT_EQ(downloadRaw<long long>(*dbad, 1)[0], -1);
    }
}

// The dispatch rule of one group with out-of-range choices skipped (the CPU throws on them).
struct GroupSlots {
  std::vector<int32_t> slots;
  std::vector<int64_t> routed;
  int64_t dropped = 0;
};
GroupSlots slotsSkippingBadChoices(const std::vector<int32_t> &indices, int64_t experts,
                                   int64_t capacity) {
  GroupSlots want{std::vector<int32_t>(indices.size(), -1), std::vector<int64_t>(size_t(experts)),
                  0};
  for (size_t c = 0; c < indices.size(); ++c) {
    const int32_t e = indices[c];
    if (e < 0 || e >= experts) continue;
    int64_t &routed = want.routed[size_t(e)];
    if (routed < capacity)
      want.slots[c] = int32_t(routed);
    else
      ++want.dropped;
    ++routed;
  }
  return want;
}

// An index outside [0, experts): the choice is dropped without being counted, and *badIndex
// records a bad choice's flat index (the largest); the other choices keep the slots they get
// without it. Counters accumulate over calls; null counters are allowed.
TEST_F(CudaKernels, DispatchRecordsBadIndices) {
  const int64_t tokens = 40, n = 8, experts = 4, topK = 2;
  auto indices = skewedChoices(tokens, topK, experts, 70);
  indices[17] = int32_t(experts + 3), indices[40] = -1;
  const DType dtype = DType::F32;
  const auto x = randomValues(size_t(tokens * n), 71);
  auto dx = upload(dtype, x), dindices = uploadRaw(indices);
  for (int64_t capacity : {3, 30, 100}) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    const GroupSlots want = slotsSkippingBadChoices(indices, experts, capacity);
    auto dslotsX = garbage(dtype, size_t(experts * capacity * n));
    auto dslots = garbage(indices.size() * sizeof(int32_t));
    auto dbad = uploadRaw(std::vector<long long>{-1});
    auto ddropped = uploadRaw(std::vector<unsigned long long>{0});
    auto droutedCounts = uploadRaw(std::vector<unsigned long long>(size_t(experts), 0));
    for (int call = 0; call < 2; ++call)
      cuda::dispatch(dtype, dx->get(), dindices->as<int32_t>(), dslotsX->get(),
                     dslots->as<int32_t>(), tokens, n, experts, topK, capacity, 1,
                     call ? droutedCounts->as<unsigned long long>() : nullptr,
                     ddropped->as<unsigned long long>(), call ? dbad->as<long long>() : nullptr,
                     stream_);
    EXPECT_EQ(downloadRaw<int32_t>(*dslots, indices.size()), want.slots);
    EXPECT_EQ(downloadRaw<long long>(*dbad, 1)[0], 40);
    EXPECT_EQ(int64_t(downloadRaw<unsigned long long>(*ddropped, 1)[0]), 2 * want.dropped);
    const auto routed = downloadRaw<unsigned long long>(*droutedCounts, size_t(experts));
    for (int64_t e = 0; e < experts; ++e)
      EXPECT_EQ(int64_t(routed[size_t(e)]), want.routed[size_t(e)]) << "expert " << e;
  }
}

TEST_F(CudaKernels, CombineMatchesCpu) {
  struct Case {
    int64_t tokens, n, experts, topK, capacity, groups;
  };
  const Case cases[] = {{50, 33, 4, 2, 9, 1}, {96, 64, 8, 3, 20, 2}, {7, 1, 3, 1, 2, 7}};
  unsigned seed = 80;
  for (DType dtype : kTypes)
    for (const Case &c : cases) {
      SCOPED_TRACE(traceOf(dtype) + " tokens " + std::to_string(c.tokens) + " n " +
                   std::to_string(c.n) + " top " + std::to_string(c.topK));
      const auto indices = skewedChoices(c.tokens, c.topK, c.experts, ++seed);
      const int64_t rows = c.groups * c.capacity;
      std::vector<float> scratch(static_cast<size_t>(c.experts * rows));
      std::vector<int32_t> slots(indices.size());
      dispatch(randomValues(size_t(c.tokens), 1).data(), indices.data(), scratch.data(),
               slots.data(), c.tokens, 1, c.experts, c.topK, c.capacity, c.groups, nullptr);
      const auto y = roundTo(dtype, randomValues(size_t(c.experts * rows * c.n), ++seed));
      const auto gates = roundTo(dtype, randomValues(indices.size(), ++seed, 1));
      std::vector<float> want(static_cast<size_t>(c.tokens * c.n)), scale(want.size());
      combine(y.data(), indices.data(), slots.data(), gates.data(), want.data(), c.tokens, c.n,
              c.experts, c.topK, c.capacity, c.groups);
      combine(absolute(y).data(), indices.data(), slots.data(), absolute(gates).data(),
              scale.data(), c.tokens, c.n, c.experts, c.topK, c.capacity, c.groups);
      auto dy = upload(dtype, y), dgates = upload(dtype, gates);
      auto dindices = uploadRaw(indices), dslots = uploadRaw(slots);
      auto dx = garbage(dtype, want.size());
      cuda::combine(dtype, dy->get(), dindices->as<int32_t>(), dslots->as<int32_t>(),
                    dgates->get(), dx->get(), c.tokens, c.n, c.experts, c.topK, c.capacity,
                    c.groups, stream_);
      expectClose(download(dtype, *dx, want.size()), want,
                  sumOfProductsTolerance(dtype, c.topK, scale, want), "x");
    }
}

// Attention inputs in [-1, 1], so |o| <= 1. F32: fp32 throughout on both sides; scores and
// softmax agree to ~1e-6, 1e-4 leaves a wide margin. F16/BF16 on tensor cores: P is rounded
// to the dtype for P V (changes o by at most 2u max|v|) and o is rounded once (u): 4u.
double attentionTolerance(DType dtype, bool prefill) {
  const double u = unitRoundoff(dtype);
  return dtype == DType::F32 ? 1e-4 : (prefill ? 4 : 2) * u + 1e-4;
}

struct AttentionCase {
  int64_t sequences, seqLen, heads, kvHeads, headDim;
};

std::string describe(const AttentionCase &c) {
  return "sequences " + std::to_string(c.sequences) + " len " + std::to_string(c.seqLen) +
         " heads " + std::to_string(c.heads) + "/" + std::to_string(c.kvHeads) + " dim " +
         std::to_string(c.headDim);
}

TEST_F(CudaKernels, AttentionPrefillMatchesCpu) {
  const AttentionCase cases[] = {
      {2, 37, 8, 2, 64},   // GQA, a partial tile
      {1, 130, 4, 4, 128}, // several key tiles
      {3, 65, 2, 1, 32},   // one row past a 64 tile
      {1, 70, 2, 2, 256},  // the largest bucket
      {2, 64, 4, 2, 40},   // head dim between buckets (16-byte rows)
      {1, 33, 2, 1, 20},   // head dim not a multiple of 8 (element loads)
      {2, 1, 2, 2, 64},    // one position
      {1, 200, 8, 2, 128}, // longer
  };
  unsigned seed = 90;
  for (DType dtype : kTypes)
    for (const AttentionCase &c : cases) {
      SCOPED_TRACE(traceOf(dtype) + " " + describe(c));
      const int64_t rows = c.sequences * c.seqLen;
      const auto q = roundTo(dtype, randomValues(size_t(rows * c.heads * c.headDim), ++seed, 1));
      const auto k = roundTo(dtype, randomValues(size_t(rows * c.kvHeads * c.headDim), ++seed, 1));
      const auto v = roundTo(dtype, randomValues(size_t(rows * c.kvHeads * c.headDim), ++seed, 1));
      std::vector<float> want(q.size());
      attentionPrefill(q.data(), k.data(), v.data(), want.data(), c.sequences, c.seqLen,
                       c.heads, c.kvHeads, c.headDim);
      auto dq = upload(dtype, q), dk = upload(dtype, k), dv = upload(dtype, v);
      auto dout = garbage(dtype, want.size());
      cuda::attentionPrefill(dtype, dq->get(), dk->get(), dv->get(), dout->get(), c.sequences,
                             c.seqLen, c.heads, c.kvHeads, c.headDim, stream_);
      const double tolerance = attentionTolerance(dtype, true);
      expectClose(download(dtype, *dout, want.size()), want, [&](size_t) { return tolerance; },
                  "o");
    }
}

// Greedy sampling (plan.proto ARGMAX, ARGMAX_MERGE): the same ids and bits as the CPU
// kernels, ties (repeated values) to the lowest id, padding columns past vocab_end ignored.
TEST_F(CudaKernels, ArgmaxAndMergeMatchCpu) {
  const int64_t sequences = 5, seqLen = 3, n = 40, firstId = 80, vocabEnd = 110;
  for (DType dtype : kTypes) {
    SCOPED_TRACE(traceOf(dtype));
    std::vector<float> logits = roundTo(dtype, randomValues(size_t(sequences * seqLen * n), 9));
    // Sequence 1's best at the last position appears twice; sequence 2's best is padding.
    float *last1 = logits.data() + ((seqLen - 1) * sequences + 1) * n;
    last1[7] = last1[3] = 5.0f;
    float *last2 = logits.data() + ((seqLen - 1) * sequences + 2) * n;
    last2[35] = 9.0f;
    std::vector<int32_t> want(size_t(sequences * 2));
    argmax(logits.data(), want.data(), sequences, seqLen, n, firstId, vocabEnd);
    auto dlogits = upload(dtype, logits);
    auto dpairs = garbage(size_t(sequences * 2) * 4);
    cuda::argmax(dtype, dlogits->get(), dpairs->as<int32_t>(), sequences, seqLen, n, firstId,
                 vocabEnd, stream_);
    const std::vector<int32_t> pairs = downloadRaw<int32_t>(*dpairs, want.size());
    EXPECT_EQ(pairs, want);
    EXPECT_EQ(pairs[2], int32_t(firstId + 3));
    // Three slices' pairs (this one and two shifted copies), merged into column 2 of 4.
    const int64_t groups = 3, columns = 4, column = 2;
    std::vector<int32_t> gathered;
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t q = 0; q < sequences; ++q)
        gathered.insert(gathered.end(), {pairs[size_t(2 * q)] + int32_t(g * n), pairs[size_t(2 * q + 1)]});
    std::vector<int32_t> ids(static_cast<size_t>(sequences));
    std::vector<int32_t> generated(static_cast<size_t>(sequences * columns), 7);
    const std::vector<int32_t> before = generated;
    argmaxMerge(gathered.data(), ids.data(), generated.data(), groups, sequences, columns, column);
    auto dgathered = uploadRaw(gathered), dids = garbage(size_t(sequences) * 4);
    auto dgenerated = uploadRaw(before);
    cuda::argmaxMerge(dgathered->as<int32_t>(), dids->as<int32_t>(), dgenerated->as<int32_t>(),
                      groups, sequences, columns, column, stream_);
    EXPECT_EQ(downloadRaw<int32_t>(*dids, ids.size()), ids);
    EXPECT_EQ(downloadRaw<int32_t>(*dgenerated, generated.size()), generated);
  }
}

TEST_F(CudaKernels, AttentionDecodeMatchesCpu) {
  struct Case {
    int64_t sequences, kvLen, heads, kvHeads, headDim;
  };
  const Case cases[] = {{3, 0, 8, 2, 64},  {3, 1, 8, 2, 64},    {2, 7, 4, 4, 32},
                        {2, 1000, 8, 2, 128}, {1, 300, 2, 1, 256}, {2, 50, 4, 2, 40}};
  unsigned seed = 100;
  for (DType dtype : kTypes)
    for (const Case &c : cases) {
      SCOPED_TRACE(traceOf(dtype) + " sequences " + std::to_string(c.sequences) + " kvLen " +
                   std::to_string(c.kvLen) + " heads " + std::to_string(c.heads) + "/" +
                   std::to_string(c.kvHeads) + " dim " + std::to_string(c.headDim));
      const int64_t qWidth = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim;
      const auto q = roundTo(dtype, randomValues(size_t(c.sequences * qWidth), ++seed, 1));
      const auto k = roundTo(dtype, randomValues(size_t(c.sequences * kvWidth), ++seed, 1));
      const auto v = roundTo(dtype, randomValues(size_t(c.sequences * kvWidth), ++seed, 1));
      const size_t cacheSize = size_t(c.kvLen * c.sequences * kvWidth);
      const auto kCache = roundTo(dtype, randomValues(cacheSize, ++seed, 1));
      const auto vCache = roundTo(dtype, randomValues(cacheSize, ++seed, 1));
      std::vector<float> want(q.size());
      attentionDecode(q.data(), k.data(), v.data(), kCache.data(), vCache.data(), want.data(),
                      c.sequences, c.kvLen, c.heads, c.kvHeads, c.headDim);
      auto dq = upload(dtype, q), dk = upload(dtype, k), dv = upload(dtype, v);
      auto dkCache = upload(dtype, kCache), dvCache = upload(dtype, vCache);
      auto dout = garbage(dtype, want.size());
      cuda::attentionDecode(dtype, dq->get(), dk->get(), dv->get(), dkCache->get(),
                            dvCache->get(), dout->get(), c.sequences, c.kvLen, c.heads,
                            c.kvHeads, c.headDim, stream_);
      // Decode computes in fp32 from the stored values: only the output rounding (u).
      const double tolerance = attentionTolerance(dtype, false);
      expectClose(download(dtype, *dout, want.size()), want, [&](size_t) { return tolerance; },
                  "o");
    }
}

// Errors name the kernel and the cause.
template <typename F> void expectErrorNaming(F &&call, const std::string &kernel,
                                             const std::string &cause) {
  try {
    call();
    ADD_FAILURE() << kernel << ": no error";
  } catch (const std::runtime_error &e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(kernel + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(cause), std::string::npos) << message;
  }
}

TEST_F(CudaKernels, ErrorsNameTheKernel) {
  expectErrorNaming([&] { cuda::add(DType(7), nullptr, nullptr, nullptr, 4, stream_); }, "add",
                    "unknown dtype 7");
  expectErrorNaming(
      [&] {
        cuda::attentionPrefill(DType::F16, nullptr, nullptr, nullptr, nullptr, 1, 4, 2, 2, 300,
                               stream_);
      },
      "attentionPrefill", "head dim 300");
  expectErrorNaming(
      [&] {
        cuda::attentionDecode(DType::F32, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1,
                              4, 3, 2, 64, stream_);
      },
      "attentionDecode", "not a multiple");
  expectErrorNaming(
      [&] {
        cuda::gemm(blas_, DType::F32, nullptr, nullptr, nullptr, int64_t(1) << 31, 2, 2, false,
                   stream_);
      },
      "gemm", "does not fit");
  expectErrorNaming(
      [&] {
        cuda::dispatch(DType::F32, nullptr, nullptr, nullptr, nullptr, 10, 4, 4, 1, 2, 3,
                       nullptr, nullptr, nullptr, stream_);
      },
      "dispatch", "do not divide");
  expectErrorNaming(
      [&] {
        cuda::dispatch(DType::F32, nullptr, nullptr, nullptr, nullptr, 10, 4, 5000, 1, 2, 1,
                       nullptr, nullptr, nullptr, stream_);
      },
      "dispatch", "5000 experts");
  expectErrorNaming(
      [&] { cuda::router(DType::BF16, nullptr, nullptr, nullptr, 3, 2, 3, false, stream_); }, "router",
      "exceeds 2 experts");
}

// Dimensions past the 32-bit ints cuBLAS and the slot arithmetic take are refused before
// anything is launched (null pointers stand in for buffers of 2^31 elements and more), and
// never wrap: 2^32 + 1 experts once narrowed to a router stride of 1.
TEST_F(CudaKernels, DimensionsPastInt32AreRefused) {
  const int64_t big = int64_t(1) << 31;
  expectErrorNaming(
      [&] { cuda::gemm(blas_, DType::F16, nullptr, nullptr, nullptr, 4, big, 2, true, stream_); },
      "gemm", "n = 2147483648 does not fit");
  expectErrorNaming(
      [&] { cuda::gemm(blas_, DType::F32, nullptr, nullptr, nullptr, 4, 2, big, false, stream_); },
      "gemm", "k = 2147483648 does not fit");
  expectErrorNaming(
      [&] {
        cuda::groupedGemm(blas_, DType::BF16, nullptr, nullptr, nullptr, big, 2, 2, 2, stream_);
      },
      "groupedGemm", "groups = 2147483648 does not fit");
  expectErrorNaming(
      [&] {
        cuda::router(DType::F32, nullptr, nullptr, nullptr, 4, (int64_t(1) << 32) + 1, 2, false, stream_);
      },
      "router", "4294967297 experts exceed the shared-memory limit");
  expectErrorNaming(
      [&] {
        cuda::dispatch(DType::F32, nullptr, nullptr, nullptr, nullptr, 2, 4, 4, 1, big / 2, 2,
                       nullptr, nullptr, nullptr, stream_);
      },
      "dispatch", "groups x capacity");
  expectErrorNaming(
      [&] {
        cuda::combine(DType::F32, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 4, 4, 1,
                      int64_t(1) << 40, int64_t(1) << 40, stream_);
      },
      "combine", "does not fit");
  expectErrorNaming(
      [&] {
        cuda::combine(DType::F16, nullptr, nullptr, nullptr, nullptr, nullptr, 2, 4, 4, 1, big / 2,
                      2, stream_);
      },
      "combine", "groups x capacity");
}

} // namespace
