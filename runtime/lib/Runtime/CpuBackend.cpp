// The CPU compute backend: the arena in host memory, kernels from CpuKernels.h (OpenBLAS
// and Elementwise.h), each done when launch returns. Computes in F32 only.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Kernels/Seeded.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Backend.h"
#include "moeplan/Runtime/DTypes.h"
#include "moeplan/Runtime/Slices.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace moeplan::runtime {

namespace {

using Clock = std::chrono::steady_clock;

class CpuBackend final : public ComputeBackend {
public:
  explicit CpuBackend(const plan::Plan &plan) : plan_(plan) {}
  ~CpuBackend() override {
    std::free(arena_);
    for (void *p : staging_) std::free(p);
  }

  const char *name() const override { return "cpu"; }
  std::string device() const override { return "host"; }
  bool queued() const override { return false; }

  void check(const plan::Plan &plan, const plan::Program &program) const override {
    const uint32_t index = uint32_t(&program - &plan.programs(0));
    for (int b = 0; b < program.buffers_size(); ++b) {
      const plan::Buffer &buf = program.buffers(b);
      if (buf.dtype() != plan::F32 && buf.dtype() != plan::I32)
        throw UnusableInput("programs[" + std::to_string(index) + "].buffers[" +
                            std::to_string(b) + "] \"" + buf.name() + "\" is " +
                            plan::DType_Name(buf.dtype()) +
                            "; the CPU backend computes in F32 (compile with model.dtype FP32, "
                            "or run with --backend cuda)");
    }
  }

  void allocate(uint64_t arenaBytes, uint32_t, uint32_t, uint32_t marks) override {
    bytes_ = (arenaBytes + 255) / 256 * 256 + 256;
    arena_ = static_cast<std::byte *>(std::aligned_alloc(256, size_t(bytes_)));
    if (!arena_)
      throw UnusableInput("cannot allocate the arena of " + std::to_string(arenaBytes) +
                          " bytes in host memory");
    std::memset(arena_, 0, size_t(bytes_));
    marks_.assign(marks, 0.0);
  }
  uint64_t allocatedBytes() const override { return bytes_; }
  std::byte *arena() override { return arena_; }

  void upload(std::byte *dst, const void *src, uint64_t bytes) override {
    std::memcpy(dst, src, size_t(bytes));
  }
  void download(const std::byte *src, void *dst, uint64_t bytes) override {
    std::memcpy(dst, src, size_t(bytes));
  }
  void *hostStaging(uint64_t bytes) override {
    void *p = std::malloc(size_t(std::max<uint64_t>(bytes, 1)));
    if (!p) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(stagingMutex_);
    staging_.push_back(p);
    return p;
  }
  void fillSeeded(std::byte *dst, plan::DType dtype, const SeededBlock &block) override {
    requireF32(dtype, "weights");
    float *out = reinterpret_cast<float *>(dst);
    forEachBlockElement(block.begin, block.count, block.full,
                        [&](int64_t i, int64_t flat) {
                          out[i] = flat < 0 ? 0.0f
                                            : block.offset + block.scale *
                                                  kernels::seededUniformAt(block.key, uint64_t(flat));
                        });
  }
  void uploadConverted(std::byte *dst, plan::DType to, const void *src, plan::DType from,
                       uint64_t count) override {
    requireF32(to, "converted data");
    convertToF32(from, src, reinterpret_cast<float *>(dst), count);
  }

  void launch(uint32_t, const KernelCall &call) override;
  void waitEvent(uint32_t, uint32_t) override {}
  void recordEvent(uint32_t, uint32_t) override {}
  bool eventComplete(uint32_t) override { return true; }
  void startClock() override { start_ = Clock::now(); }
  void mark(uint32_t, uint32_t mark) override {
    marks_[mark] = std::chrono::duration<double>(Clock::now() - start_).count();
  }
  bool markComplete(uint32_t) override { return true; }
  double markSeconds(uint32_t mark) override { return marks_[mark]; }
  void synchronize() override {}
  void *nativeStream(uint32_t) override { return nullptr; }

  void resetCounts() override {
    counts_.routed.assign(size_t(plan_.model().layers()) * plan_.model().experts(), 0);
    counts_.dropped.assign(plan_.model().layers(), 0);
  }
  RoutingCounts counts() override { return counts_; }

  void beginCapture() override {
    throw UnusableInput("--graph captures CUDA graphs; the CPU backend has none (use --backend cuda)");
  }
  void endCapture() override {}
  double replay() override { return 0; }

private:
  static void requireF32(plan::DType dtype, const char *what) {
    if (dtype != plan::F32)
      throw UnusableInput(std::string("the CPU backend holds ") + what + " in F32, not " +
                          plan::DType_Name(dtype));
  }

  const plan::Plan &plan_;
  std::byte *arena_ = nullptr;
  uint64_t bytes_ = 0;
  std::vector<double> marks_;
  Clock::time_point start_ = Clock::now();
  RoutingCounts counts_;
  std::mutex stagingMutex_;
  std::vector<void *> staging_;
};

void CpuBackend::launch(uint32_t, const KernelCall &call) {
  using namespace moeplan::kernels;
  const plan::Kernel &k = *call.kernel;
  auto f32 = [](std::byte *p) { return reinterpret_cast<float *>(p); };
  auto i32 = [](std::byte *p) { return reinterpret_cast<int32_t *>(p); };
  const auto &in = call.in;
  const auto &out = call.out;
  switch (k.kind()) {
  case plan::EMBEDDING:
    embedding(i32(in[0]), f32(in[1]), f32(out[0]), k.m(), k.n(), call.firstId,
              call.firstId + k.vocab_begin(), call.firstId + k.vocab_end());
    return;
  case plan::NORM:
    norm(f32(in[0]), f32(in[1]), in.size() > 2 ? f32(in[2]) : nullptr, f32(out[0]), k.m(), k.n(),
         k.norm() == plan::RMS_NORM ? NormKind::RmsNorm : NormKind::LayerNorm, float(k.epsilon()));
    return;
  case plan::GEMM:
    gemm(f32(in[0]), f32(in[1]), f32(out[0]), k.m(), k.n(), k.k(), k.transpose_b());
    return;
  case plan::ATTENTION:
    if (in.size() == 5)
      attentionDecode(f32(in[0]), f32(in[1]), f32(in[2]), f32(in[3]), f32(in[4]), f32(out[0]),
                      k.sequences(), k.kv_len(), k.heads(), k.kv_heads(), k.head_dim());
    else
      attentionPrefill(f32(in[0]), f32(in[1]), f32(in[2]), f32(out[0]), k.sequences(), k.seq_len(),
                       k.heads(), k.kv_heads(), k.head_dim());
    return;
  case plan::ACTIVATION_FUNCTION:
    if (k.activation() == plan::SWIGLU)
      activation(Activation::SwiGlu, f32(in[0]), f32(in[1]), f32(out[0]), k.m() * k.n());
    else
      activation(Activation::Gelu, nullptr, f32(in[0]), f32(out[0]), k.m() * k.n());
    return;
  case plan::ROUTER:
    router(f32(in[0]), i32(out[0]), f32(out[1]), k.tokens(), k.experts(), k.top_k());
    return;
  case plan::DISPATCH: {
    DispatchCounts counts;
    dispatch(f32(in[0]), i32(in[1]), f32(out[0]), i32(out[1]), k.tokens(), k.n(), k.experts(),
             k.top_k(), k.capacity(), k.groups(), &counts);
    const int64_t experts = plan_.model().experts(), layers = plan_.model().layers();
    if (call.layer >= 0 && call.layer < layers && int64_t(counts.routed.size()) == experts) {
      for (int64_t e = 0; e < experts; ++e)
        counts_.routed[size_t(call.layer * experts + e)] += counts.routed[size_t(e)];
      counts_.dropped[size_t(call.layer)] += counts.dropped;
    }
    return;
  }
  case plan::GROUPED_GEMM:
    groupedGemm(f32(in[0]), f32(in[1]), f32(out[0]), k.groups(), k.m(), k.n(), k.k());
    return;
  case plan::COMBINE:
    combine(f32(in[0]), i32(in[1]), i32(in[2]), f32(in[3]), f32(out[0]), k.tokens(), k.n(),
            k.experts(), call.combineRows, k.top_k());
    return;
  case plan::ADD:
    add(f32(in[0]), f32(in[1]), f32(out[0]), k.n());
    return;
  case plan::TRANSPOSE:
    transpose(f32(in[0]), f32(out[0]), k.m(), k.n(), k.inner());
    return;
  case plan::BIAS_ADD:
    biasAdd(f32(in[0]), f32(in[1]), f32(out[0]), std::max<int64_t>(1, k.groups()), k.m(), k.n());
    return;
  default:
    throw std::invalid_argument("kernel kind " + plan::KernelKind_Name(k.kind()) +
                                " has no CPU implementation");
  }
}

} // namespace

std::unique_ptr<ComputeBackend> makeCpuBackend(const plan::Plan &plan) {
  return std::make_unique<CpuBackend>(plan);
}

} // namespace moeplan::runtime
