// The CUDA compute backend: the arena is one cudaMalloc on the rank's GPU (local rank modulo
// the visible devices, as nccl-tests), each plan stream a CUDA stream, each plan event a
// cudaEvent, GEMMs through cuBLAS and every other kernel from kernels/lib/Cuda. Launches
// only queue work; the walker orders it with events and reads timings from event marks.
#include "moeplan/Kernels/CudaKernels.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Backend.h"
#include "moeplan/Runtime/DTypes.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace moeplan::runtime {

namespace {

namespace kc = moeplan::kernels::cuda;

void cudaCheck(cudaError_t status, const std::string &what) {
  if (status != cudaSuccess)
    throw std::runtime_error(what + ": " + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ")");
}

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  return buf;
}

kc::DType kernelDType(plan::DType dtype) {
  switch (dtype) {
  case plan::F32: return kc::DType::F32;
  case plan::F16: return kc::DType::F16;
  case plan::BF16: return kc::DType::BF16;
  default: throw std::invalid_argument("the CUDA kernels compute F32, F16 and BF16, not " + plan::DType_Name(dtype));
  }
}

// cuBLAS's workspace, set explicitly so that GEMMs allocate nothing while a graph is captured.
constexpr size_t kBlasWorkspaceBytes = size_t(32) << 20;

class CudaBackend final : public ComputeBackend {
public:
  CudaBackend(const plan::Plan &plan, const BackendOptions &options) : plan_(plan) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess || count == 0)
      throw UnusableInput(std::string("--backend cuda: no CUDA device is visible (") +
                          (status != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status)
                                                 : std::string("no devices")) +
                          "); run with --backend cpu, or where a GPU is");
    device_ = int(options.localRank % uint32_t(count));
    checkStart(cudaSetDevice(device_), "cudaSetDevice");
    checkStart(cudaGetDeviceProperties(&properties_, device_), "cudaGetDeviceProperties");
    if (properties_.major < 8)
      throw UnusableInput(deviceName() + " has compute capability " + std::to_string(properties_.major) +
                          "." + std::to_string(properties_.minor) +
                          "; moeplan's CUDA kernels are built for 8.0 (sm_80) and newer");
    if (cublasCreate(&blas_) != CUBLAS_STATUS_SUCCESS)
      throw UnusableInput(deviceName() + ": cublasCreate failed");
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaDeviceSynchronize();
    if (graphExec_) cudaGraphExecDestroy(graphExec_);
    if (graph_) cudaGraphDestroy(graph_);
    if (blas_) cublasDestroy(blas_);
    for (cudaEvent_t e : events_) if (e) cudaEventDestroy(e);
    for (cudaEvent_t e : marks_) cudaEventDestroy(e);
    for (cudaEvent_t e : {start_, replayStart_, replayEnd_, fork_}) if (e) cudaEventDestroy(e);
    for (cudaEvent_t e : joins_) cudaEventDestroy(e);
    for (cudaStream_t s : streams_) cudaStreamDestroy(s);
    if (copyStream_) cudaStreamDestroy(copyStream_);
    for (void *p : staging_) cudaFreeHost(p);
    for (void *p : {static_cast<void *>(arena_), static_cast<void *>(counters_), blasWorkspace_})
      if (p) cudaFree(p);
  }

  const char *name() const override { return "cuda"; }
  std::string device() const override {
    return "GPU " + std::to_string(device_) + " (" + properties_.name + ", " +
           gib(double(properties_.totalGlobalMem)) + ")";
  }
  bool queued() const override { return true; }

  void check(const plan::Plan &plan, uint32_t index) const override {
    const plan::Program &program = plan.programs(int(index));
    for (int b = 0; b < program.buffers_size(); ++b) {
      const plan::Buffer &buf = program.buffers(b);
      if (!isFloat(buf.dtype()) && buf.dtype() != plan::I32)
        throw UnusableInput("programs[" + std::to_string(index) + "].buffers[" + std::to_string(b) +
                            "] \"" + buf.name() + "\" is " + plan::DType_Name(buf.dtype()) +
                            "; the CUDA backend computes F32, F16 and BF16");
    }
    if (!isFloat(plan.model().dtype()))
      throw UnusableInput("model.dtype is " + plan::DType_Name(plan.model().dtype()) +
                          "; the CUDA backend computes F32, F16 and BF16");
    for (int i = 0; i < program.instructions_size(); ++i) {
      const plan::Instruction &inst = program.instructions(i);
      if (inst.has_kernel() && !plan::KernelKind_IsValid(inst.kernel().kind()))
        throw UnusableInput("programs[" + std::to_string(index) + "].instructions[" + std::to_string(i) +
                            "]: kernel kind " + std::to_string(inst.kernel().kind()) +
                            " has no CUDA implementation");
    }
  }

  void allocate(uint64_t arenaBytes, uint32_t streams, uint32_t events, uint32_t marks) override {
    bytes_ = (arenaBytes + 255) / 256 * 256 + 256;
    size_t free = 0, total = 0;
    checkStart(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    if (bytes_ + kBlasWorkspaceBytes > free)
      throw UnusableInput("the plan's arena needs " + gib(double(bytes_)) + " on " + deviceName() +
                          ", which has " + gib(double(free)) + " free of " + gib(double(total)) +
                          " (other ranks or processes on this GPU hold the rest)");
    if (cudaMalloc(reinterpret_cast<void **>(&arena_), bytes_) != cudaSuccess)
      throw UnusableInput("cudaMalloc of the arena (" + gib(double(bytes_)) + ") failed on " +
                          deviceName() + " with " + gib(double(free)) + " reported free");
    // The legacy stream's memset does not order with the non-blocking streams below: wait.
    checkStart(cudaMemset(arena_, 0, bytes_), "zeroing the arena");
    checkStart(cudaDeviceSynchronize(), "zeroing the arena");
    checkStart(cudaMalloc(&blasWorkspace_, kBlasWorkspaceBytes), "cuBLAS workspace");
    if (cublasSetWorkspace(blas_, blasWorkspace_, kBlasWorkspaceBytes) != CUBLAS_STATUS_SUCCESS)
      throw UnusableInput(deviceName() + ": cublasSetWorkspace failed");
    streams_.resize(std::max<uint32_t>(streams, 1));
    for (cudaStream_t &s : streams_) checkStart(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    checkStart(cudaStreamCreateWithFlags(&copyStream_, cudaStreamNonBlocking), "cudaStreamCreate");
    events_.assign(size_t(events) + 1, nullptr);
    for (size_t e = 1; e < events_.size(); ++e)
      checkStart(cudaEventCreateWithFlags(&events_[e], cudaEventDisableTiming), "cudaEventCreate");
    marks_.resize(marks);
    for (cudaEvent_t &e : marks_) checkStart(cudaEventCreate(&e), "cudaEventCreate");
    for (cudaEvent_t *e : {&start_, &replayStart_, &replayEnd_}) checkStart(cudaEventCreate(e), "cudaEventCreate");
    checkStart(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "cudaEventCreate");
    joins_.resize(streams_.size());
    for (cudaEvent_t &e : joins_) checkStart(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    // Routing counters: routed[layers x experts], dropped[layers], then the bad-index slot.
    const size_t layers = plan_.model().layers(), experts = plan_.model().experts();
    counterCount_ = layers * experts + layers + 1;
    checkStart(cudaMalloc(reinterpret_cast<void **>(&counters_), counterCount_ * 8), "cudaMalloc of the routing counters");
    resetCounts();
  }
  uint64_t allocatedBytes() const override { return bytes_; }
  std::byte *arena() override { return arena_; }

  void upload(std::byte *dst, const void *src, uint64_t bytes) override {
    std::lock_guard<std::mutex> lock(copyMutex_);
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copyStream_), "copy to the device");
    cudaCheck(cudaStreamSynchronize(copyStream_), "copy to the device");
  }
  void download(const std::byte *src, void *dst, uint64_t bytes) override {
    std::lock_guard<std::mutex> lock(copyMutex_);
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, copyStream_), "copy from the device");
    cudaCheck(cudaStreamSynchronize(copyStream_), "copy from the device");
  }
  void *hostStaging(uint64_t bytes) override {
    void *p = nullptr;
    cudaCheck(cudaMallocHost(&p, std::max<uint64_t>(bytes, 1)), "cudaMallocHost of a staging buffer");
    std::lock_guard<std::mutex> lock(copyMutex_);
    staging_.push_back(p);
    return p;
  }
  void fillSeeded(std::byte *dst, plan::DType dtype, const SeededBlock &block) override {
    kc::TensorBlock b;
    if (block.full.size() > size_t(kc::TensorBlock::kMaxRank))
      throw UnusableInput("a weight of rank " + std::to_string(block.full.size()) + " (at most " +
                          std::to_string(kc::TensorBlock::kMaxRank) + ")");
    b.rank = int(block.full.size());
    for (int d = 0; d < b.rank; ++d) b.begin[d] = block.begin[d], b.count[d] = block.count[d], b.full[d] = block.full[d];
    std::lock_guard<std::mutex> lock(copyMutex_);
    kc::seededFill(kernelDType(dtype), dst, b, block.key, block.scale, block.offset, copyStream_);
    cudaCheck(cudaStreamSynchronize(copyStream_), "generating weights");
  }
  void uploadConverted(std::byte *dst, plan::DType to, const void *src, plan::DType from,
                       uint64_t count) override {
    if (from == to) return upload(dst, src, count * planfile::dtypeBytes(from));
    // Up as stored, converted on the device: a 16-bit checkpoint crosses PCIe at its size.
    void *staged = nullptr;
    const uint64_t bytes = count * planfile::dtypeBytes(from);
    cudaCheck(cudaMalloc(&staged, std::max<uint64_t>(bytes, 1)), "cudaMalloc to convert a weight");
    try {
      upload(static_cast<std::byte *>(staged), src, bytes);
      std::lock_guard<std::mutex> lock(copyMutex_);
      kc::convert(kernelDType(from), kernelDType(to), staged, dst, int64_t(count), copyStream_);
      cudaCheck(cudaStreamSynchronize(copyStream_), "converting a weight");
    } catch (...) {
      cudaFree(staged);
      throw;
    }
    cudaFree(staged);
  }

  void launch(uint32_t stream, const KernelCall &call) override;

  void waitEvent(uint32_t stream, uint32_t event) override {
    cudaCheck(cudaStreamWaitEvent(streams_[stream], events_[event], 0), "cudaStreamWaitEvent");
  }
  void recordEvent(uint32_t stream, uint32_t event) override {
    cudaCheck(cudaEventRecord(events_[event], streams_[stream]), "cudaEventRecord");
  }
  bool eventComplete(uint32_t event) override { return query(events_[event]); }
  void startClock() override { cudaCheck(cudaEventRecord(start_, streams_[0]), "cudaEventRecord"); }
  void mark(uint32_t stream, uint32_t mark) override {
    cudaCheck(cudaEventRecord(marks_[mark], streams_[stream]), "cudaEventRecord");
  }
  bool markComplete(uint32_t mark) override { return query(marks_[mark]); }
  double markSeconds(uint32_t mark) override {
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, start_, marks_[mark]), "cudaEventElapsedTime");
    return double(ms) / 1e3;
  }
  void synchronize() override {
    for (cudaStream_t s : streams_) cudaCheck(cudaStreamSynchronize(s), "a kernel or collective on " + deviceName());
    checkBadIndex();
  }
  void *nativeStream(uint32_t stream) override { return streams_[stream]; }
  void enqueueHost(uint32_t stream, std::function<void()> task) override {
    auto owned = std::make_unique<std::function<void()>>(std::move(task));
    cudaCheck(cudaLaunchHostFunc(
                  streams_[stream],
                  [](void *data) {
                    std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()> *>(data));
                    (*f)();
                  },
                  owned.get()),
              "cudaLaunchHostFunc");
    owned.release();  // the callback owns it now
  }

  void resetCounts() override {
    std::lock_guard<std::mutex> lock(copyMutex_);
    cudaCheck(cudaMemsetAsync(counters_, 0, counterCount_ * 8, copyStream_), "resetting the routing counters");
    // The bad-index slot holds -1 until a dispatch meets an expert index out of range.
    const long long none = -1;
    cudaCheck(cudaMemcpyAsync(counters_ + counterCount_ - 1, &none, 8, cudaMemcpyHostToDevice, copyStream_),
          "resetting the routing counters");
    cudaCheck(cudaStreamSynchronize(copyStream_), "resetting the routing counters");
  }
  RoutingCounts counts() override {
    std::vector<unsigned long long> host(counterCount_);
    download(reinterpret_cast<std::byte *>(counters_), host.data(), counterCount_ * 8);
    const size_t layers = plan_.model().layers(), experts = plan_.model().experts();
    RoutingCounts c;
    c.routed.assign(host.begin(), host.begin() + std::ptrdiff_t(layers * experts));
    c.dropped.assign(host.begin() + std::ptrdiff_t(layers * experts), host.end() - 1);
    return c;
  }

  void beginCapture() override {
    cudaCheck(cudaStreamBeginCapture(streams_[0], cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
    // The other streams join the capture by waiting for an event recorded inside it.
    cudaCheck(cudaEventRecord(fork_, streams_[0]), "cudaEventRecord");
    for (size_t s = 1; s < streams_.size(); ++s)
      cudaCheck(cudaStreamWaitEvent(streams_[s], fork_, 0), "cudaStreamWaitEvent");
  }
  void endCapture() override {
    for (size_t s = 1; s < streams_.size(); ++s) {
      cudaCheck(cudaEventRecord(joins_[s], streams_[s]), "cudaEventRecord");
      cudaCheck(cudaStreamWaitEvent(streams_[0], joins_[s], 0), "cudaStreamWaitEvent");
    }
    cudaCheck(cudaStreamEndCapture(streams_[0], &graph_), "cudaStreamEndCapture");
    cudaCheck(cudaGraphInstantiate(&graphExec_, graph_, 0), "cudaGraphInstantiate");
  }
  double replay() override {
    cudaCheck(cudaEventRecord(replayStart_, streams_[0]), "cudaEventRecord");
    cudaCheck(cudaGraphLaunch(graphExec_, streams_[0]), "cudaGraphLaunch");
    cudaCheck(cudaEventRecord(replayEnd_, streams_[0]), "cudaEventRecord");
    synchronize();
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, replayStart_, replayEnd_), "cudaEventElapsedTime");
    return double(ms) / 1e3;
  }

private:
  std::string deviceName() const { return "GPU " + std::to_string(device_) + " (" + properties_.name + ")"; }

  void checkStart(cudaError_t status, const std::string &what) const {
    if (status != cudaSuccess)
      throw UnusableInput(what + " on GPU " + std::to_string(device_) + ": " + cudaGetErrorName(status) +
                          " (" + cudaGetErrorString(status) + ")");
  }

  static bool query(cudaEvent_t e) {
    const cudaError_t status = cudaEventQuery(e);
    if (status == cudaErrorNotReady) return false;
    cudaCheck(status, "cudaEventQuery");
    return true;
  }

  void checkBadIndex() {
    long long bad = -1;
    download(reinterpret_cast<std::byte *>(counters_ + counterCount_ - 1), &bad, 8);
    if (bad >= 0)
      throw std::runtime_error("DISPATCH: routing choice " + std::to_string(bad) +
                               " names an expert outside the layer's experts");
  }

  const plan::Plan &plan_;
  int device_ = 0;
  cudaDeviceProp properties_{};
  cublasHandle_t blas_ = nullptr;
  void *blasWorkspace_ = nullptr;
  std::byte *arena_ = nullptr;
  uint64_t bytes_ = 0;
  std::vector<cudaStream_t> streams_;
  cudaStream_t copyStream_ = nullptr;  // uploads, downloads, weight generation
  std::mutex copyMutex_;               // the walker's threads share the copy stream
  std::vector<cudaEvent_t> events_;    // plan events 1..n (0 unused)
  std::vector<cudaEvent_t> marks_;
  cudaEvent_t start_ = nullptr, replayStart_ = nullptr, replayEnd_ = nullptr, fork_ = nullptr;
  std::vector<cudaEvent_t> joins_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t graphExec_ = nullptr;
  unsigned long long *counters_ = nullptr;
  size_t counterCount_ = 0;
  std::vector<void *> staging_;
};

void CudaBackend::launch(uint32_t stream, const KernelCall &call) {
  const plan::Kernel &k = *call.kernel;
  const kc::DType t = kernelDType(call.dtype);
  cudaStream_t s = streams_[stream];
  const auto &in = call.in;
  const auto &out = call.out;
  auto i32 = [](std::byte *p) { return reinterpret_cast<int32_t *>(p); };
  const StepPositions at = stepPositions(call);
  switch (k.kind()) {
  case plan::EMBEDDING:
    kc::embedding(t, i32(in[0]), in[1], out[0], k.m(), k.n(), call.firstId,
                  call.firstId + k.vocab_begin(), call.firstId + k.vocab_end(), s);
    return;
  case plan::NORM:
    kc::norm(t, in[0], in[1], in.size() > 2 ? in[2] : nullptr, out[0], k.m(), k.n(),
             k.norm() == plan::RMS_NORM ? kernels::NormKind::RmsNorm : kernels::NormKind::LayerNorm,
             float(k.epsilon()), s);
    return;
  case plan::GEMM:
    kc::gemm(blas_, t, in[0], in[1], out[0], k.m(), k.n(), k.k(), k.transpose_b(), s);
    return;
  case plan::ATTENTION:
    if (in.size() == 5)
      kc::attentionDecode(t, in[0], in[1], in[2], in[3], in[4], out[0], k.sequences(), at.kvLen,
                          k.heads(), k.kv_heads(), k.head_dim(), s);
    else
      kc::attentionPrefill(t, in[0], in[1], in[2], out[0], k.sequences(), k.seq_len(), k.heads(),
                           k.kv_heads(), k.head_dim(), s);
    return;
  case plan::ACTIVATION_FUNCTION:
    if (k.activation() == plan::SWIGLU)
      kc::activation(t, kernels::Activation::SwiGlu, in[0], in[1], out[0], k.m() * k.n(), s);
    else
      kc::activation(t, kernels::Activation::Gelu, nullptr, in[0], out[0], k.m() * k.n(), s);
    return;
  case plan::ROUTER:
    kc::router(t, in[0], i32(out[0]), out[1], k.tokens(), k.experts(), k.top_k(),
               k.renormalize(), s);
    return;
  case plan::DISPATCH: {
    const int64_t experts = plan_.model().experts(), layers = plan_.model().layers();
    const bool counted = call.layer >= 0 && call.layer < layers && k.experts() == experts;
    unsigned long long *routed = counted ? counters_ + call.layer * experts : nullptr;
    unsigned long long *dropped = counted ? counters_ + layers * experts + call.layer : nullptr;
    kc::dispatch(t, in[0], i32(in[1]), out[0], i32(out[1]), k.tokens(), k.n(), k.experts(), k.top_k(),
                 k.capacity(), k.groups(), routed, dropped,
                 reinterpret_cast<long long *>(counters_ + counterCount_ - 1), s,
                 in.size() > 2 ? in[2] : nullptr);
    return;
  }
  case plan::GROUPED_GEMM:
    kc::groupedGemm(blas_, t, in[0], in[1], out[0], k.groups(), k.m(), k.n(), k.k(), s);
    return;
  case plan::COMBINE:
    kc::combine(t, in[0], i32(in[1]), i32(in[2]), in[3], out[0], k.tokens(), k.n(), k.experts(),
                k.top_k(), k.capacity(), k.groups(), s);
    return;
  case plan::ADD:
    kc::add(t, in[0], in[1], out[0], k.n(), s);
    return;
  case plan::TRANSPOSE:
    kc::transpose(t, in[0], out[0], k.m(), k.n(), k.inner(), s);
    return;
  case plan::SIGMOID_GATE:
    kc::sigmoidGate(t, in[0], in[1], out[0], k.m(), k.n(), s);
    return;
  case plan::ROPE:
    kc::rope(t, in[0], out[0], k.m(), k.heads(), k.head_dim(), k.sequences(), at.firstPosition,
             k.rope_theta(), s);
    return;
  case plan::KV_APPEND:
    kc::kvAppend(t, in[0], out[0], k.m(), k.n(), k.sequences(), at.firstPosition, s);
    return;
  case plan::ARGMAX:  // firstId: the vocabulary column the logits' slice begins at
    kc::argmax(t, in[0], i32(out[0]), k.sequences(), k.seq_len(), k.n(), call.firstId,
               k.vocab_end(), s);
    return;
  case plan::ARGMAX_MERGE:
    kc::argmaxMerge(i32(in[0]), i32(out[0]), i32(out[1]), k.groups(), k.m(), k.n(),
                    at.firstPosition, s);
    return;
  case plan::BIAS_ADD:
    kc::biasAdd(t, in[0], in[1], out[0], std::max<int64_t>(1, k.groups()), k.m(), k.n(), s);
    return;
  default:
    throw std::invalid_argument("kernel kind " + plan::KernelKind_Name(k.kind()) +
                                " has no CUDA implementation");
  }
}

} // namespace

int cudaDeviceCount() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

std::unique_ptr<ComputeBackend> makeCudaBackend(const plan::Plan &plan, const BackendOptions &options) {
  return std::make_unique<CudaBackend>(plan, options);
}

} // namespace moeplan::runtime
