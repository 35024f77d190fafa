// The CPU compute backend: the arena in host memory, kernels from CpuKernels.h (OpenBLAS
// and Elementwise.h). Computes in F32 only. Two modes:
//   "cpu"         each kernel is done when launch returns;
//   "cpu-queued"  launches, event records and waits, and timing marks are queued on one
//                 worker thread per plan stream and ordered by events as CUDA streams are
//                 (a wait waits for the event's latest record issued before it). It runs the
//                 executor's paths for queued backends (device waits, staging, completion
//                 polling) where there is no GPU; results equal "cpu"'s.
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
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moeplan::runtime {

namespace {

using Clock = std::chrono::steady_clock;

class CpuBackend final : public ComputeBackend {
public:
  CpuBackend(const plan::Plan &plan, bool queued) : plan_(plan), queued_(queued) {}
  ~CpuBackend() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread &w : workers_) w.join();
    std::free(arena_);
    for (void *p : staging_) std::free(p);
  }

  const char *name() const override { return queued_ ? "cpu-queued" : "cpu"; }
  std::string device() const override {
    return queued_ ? "host, a worker thread per stream" : "host";
  }
  bool queued() const override { return queued_; }

  void check(const plan::Plan &plan, uint32_t index) const override {
    const plan::Program &program = plan.programs(int(index));
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

  void allocate(uint64_t arenaBytes, uint32_t streams, uint32_t events, uint32_t marks) override {
    bytes_ = (arenaBytes + 255) / 256 * 256 + 256;
    arena_ = static_cast<std::byte *>(std::aligned_alloc(256, size_t(bytes_)));
    if (!arena_)
      throw UnusableInput("cannot allocate the arena of " + std::to_string(arenaBytes) +
                          " bytes in host memory");
    std::memset(arena_, 0, size_t(bytes_));
    marks_.assign(marks, 0.0);
    if (!queued_) return;
    eventRecords_.assign(size_t(events) + 1, 0), eventsDone_.assign(size_t(events) + 1, 0);
    markRecords_.assign(marks, 0), marksDone_.assign(marks, 0);
    queues_.resize(std::max<uint32_t>(streams, 1));
    for (size_t s = 0; s < queues_.size(); ++s) workers_.emplace_back([this, s] { work(s); });
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

  void launch(uint32_t stream, const KernelCall &call) override {
    if (!queued_) return runKernel(call);
    enqueue(stream, [this, call] {
      if (!failed()) try {
          runKernel(call);
        } catch (const std::exception &e) {
          fail(e.what());
        }
    });
  }
  void waitEvent(uint32_t stream, uint32_t event) override {
    if (!queued_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t record = eventRecords_[event];  // the latest record issued so far
    lock.unlock();
    enqueue(stream, [this, event, record] {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return eventsDone_[event] >= record || !error_.empty(); });
    });
  }
  void recordEvent(uint32_t stream, uint32_t event) override {
    if (!queued_) return;
    uint64_t record;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      record = ++eventRecords_[event];
    }
    enqueue(stream, [this, event, record] { complete(eventsDone_[event], record); });
  }
  bool eventComplete(uint32_t event) override {
    if (!queued_) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    return eventsDone_[event] >= eventRecords_[event];
  }
  void startClock() override { start_ = Clock::now(); }
  void mark(uint32_t stream, uint32_t mark) override {
    if (!queued_) {
      marks_[mark] = std::chrono::duration<double>(Clock::now() - start_).count();
      return;
    }
    uint64_t record;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      record = ++markRecords_[mark];
    }
    enqueue(stream, [this, mark, record] {
      marks_[mark] = std::chrono::duration<double>(Clock::now() - start_).count();
      complete(marksDone_[mark], record);
    });
  }
  bool markComplete(uint32_t mark) override {
    if (!queued_) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    return marksDone_[mark] >= markRecords_[mark];
  }
  double markSeconds(uint32_t mark) override { return marks_[mark]; }
  void synchronize() override {
    if (!queued_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] {
      for (const auto &q : queues_)
        if (!q.empty()) return false;
      return true;
    });
    if (!error_.empty()) throw std::runtime_error(error_);
  }
  void *nativeStream(uint32_t) override { return nullptr; }
  void enqueueHost(uint32_t stream, std::function<void()> task) override {
    if (!queued_) return task();
    enqueue(stream, [this, task = std::move(task)] {
      if (!failed()) try {
          task();
        } catch (const std::exception &e) {
          fail(e.what());
        }
    });
  }

  // Queued launches run later on stream workers; the walker's fills follow the issue order.
  bool routedRows() const override { return !queued_; }

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
  void runKernel(const KernelCall &call);
  void runRoutedKernel(const KernelCall &call);

  // -- cpu-queued: the workers ------------------------------------------------------------
  void enqueue(uint32_t stream, std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queues_[stream].push_back(std::move(task));
    }
    changed_.notify_all();
  }
  // A task leaves its queue only when done, so an empty queue is an idle stream.
  void work(size_t stream) {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || !queues_[stream].empty(); });
        if (queues_[stream].empty()) return;  // stopping
        task = queues_[stream].front();
      }
      task();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        queues_[stream].pop_front();
      }
      changed_.notify_all();
    }
  }
  void complete(uint64_t &done, uint64_t record) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done = std::max(done, record);
    }
    changed_.notify_all();
  }
  bool failed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return !error_.empty();
  }
  void fail(const std::string &message) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error_.empty()) error_ = message;
    }
    changed_.notify_all();
  }

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
  // cpu-queued: per plan stream a queue of tasks and its worker; records issued and done
  // per event and per mark; the first kernel error (later kernels are skipped).
  const bool queued_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::deque<std::function<void()>>> queues_;
  std::vector<std::thread> workers_;
  std::vector<uint64_t> eventRecords_, eventsDone_, markRecords_, marksDone_;
  std::string error_;
  bool stopping_ = false;
};

void CpuBackend::runKernel(const KernelCall &call) {
  using namespace moeplan::kernels;
  const plan::Kernel &k = *call.kernel;
  auto f32 = [](std::byte *p) { return reinterpret_cast<float *>(p); };
  auto i32 = [](std::byte *p) { return reinterpret_cast<int32_t *>(p); };
  const auto &in = call.in;
  const auto &out = call.out;
  const StepPositions at = stepPositions(call);
  if (call.rows) return runRoutedKernel(call);
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
                      k.sequences(), at.kvLen, k.heads(), k.kv_heads(), k.head_dim());
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
    router(f32(in[0]), i32(out[0]), f32(out[1]), k.tokens(), k.experts(), k.top_k(),
           k.renormalize());
    return;
  case plan::DISPATCH: {
    DispatchCounts counts;
    int32_t *fill = nullptr;
    if (RowFill *f = call.dispatchFill) {
      f->segmentRows = k.capacity();
      f->filled.assign(size_t(k.experts() * std::max<int64_t>(1, k.groups())), 0);
      fill = f->filled.data();
    }
    dispatch(f32(in[0]), i32(in[1]), f32(out[0]), i32(out[1]), k.tokens(), k.n(), k.experts(),
             k.top_k(), k.capacity(), k.groups(), &counts, in.size() > 2 ? f32(in[2]) : nullptr,
             fill);
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
            k.experts(), k.top_k(), k.capacity(), k.groups());
    return;
  case plan::ADD:
    add(f32(in[0]), f32(in[1]), f32(out[0]), k.n());
    return;
  case plan::TRANSPOSE:
    transpose(f32(in[0]), f32(out[0]), k.m(), k.n(), k.inner());
    return;
  case plan::SIGMOID_GATE:
    sigmoidGate(f32(in[0]), f32(in[1]), f32(out[0]), k.m(), k.n());
    return;
  case plan::ROPE:
    rope(f32(in[0]), f32(out[0]), k.m(), k.heads(), k.head_dim(), k.sequences(),
         at.firstPosition, k.rope_theta());
    return;
  case plan::KV_APPEND:
    kvAppend(f32(in[0]), f32(out[0]), k.m(), k.n(), k.sequences(), at.firstPosition);
    return;
  case plan::ARGMAX:  // firstId: the vocabulary column the logits' slice begins at
    argmax(f32(in[0]), i32(out[0]), k.sequences(), k.seq_len(), k.n(), call.firstId,
           k.vocab_end());
    return;
  case plan::ARGMAX_MERGE:
    argmaxMerge(i32(in[0]), i32(out[0]), i32(out[1]), k.groups(), k.m(), k.n(), at.firstPosition);
    return;
  case plan::BIAS_ADD:
    biasAdd(f32(in[0]), f32(in[1]), f32(out[0]), std::max<int64_t>(1, k.groups()), k.m(), k.n());
    return;
  default:
    throw std::invalid_argument("kernel kind " + plan::KernelKind_Name(k.kind()) +
                                " has no CPU implementation");
  }
}

// A routed kernel on the filled rows of its input only (RoutedRows.h): the kernels of
// CpuKernels.h on each run of filled rows; padding rows of the output are not written.
void CpuBackend::runRoutedKernel(const KernelCall &call) {
  using namespace moeplan::kernels;
  const plan::Kernel &k = *call.kernel;
  const RowFill &rows = *call.rows;
  auto f32 = [](std::byte *p) { return reinterpret_cast<float *>(p); };
  const auto &in = call.in;
  const auto &out = call.out;
  switch (k.kind()) {
  case plan::GROUPED_GEMM: {
    // a[groups, m, k] x b[groups, k, n]. A group's filled rows lie in runs (one per capacity
    // segment, less where a full segment runs into the next): gathered into one block, they
    // make one GEMM of all of the group's tokens, as the cost model counts its rows, instead
    // of a GEMM of a few rows per run; a group of one run is multiplied in place.
    const int64_t m = k.m(), n = k.n(), depth = k.k();
    std::vector<std::vector<std::pair<int64_t, int64_t>>> runs(size_t(std::max<int64_t>(1, k.groups())));
    rows.forEachRun([&](int64_t first, int64_t count) { runs[size_t(first / m)].emplace_back(first, count); }, m);
    std::vector<float> packedIn, packedOut;
    for (size_t g = 0; g < runs.size(); ++g) {
      if (runs[g].empty()) continue;
      const float *b = f32(in[1]) + int64_t(g) * depth * n;
      if (runs[g].size() == 1) {
        const auto [first, count] = runs[g][0];
        gemm(f32(in[0]) + first * depth, b, f32(out[0]) + first * n, count, n, depth);
        continue;
      }
      int64_t total = 0;
      for (auto [first, count] : runs[g]) total += count;
      packedIn.resize(size_t(total * depth));
      packedOut.resize(size_t(total * n));
      int64_t at = 0;
      for (auto [first, count] : runs[g]) {
        std::memcpy(packedIn.data() + at * depth, f32(in[0]) + first * depth, size_t(count * depth) * sizeof(float));
        at += count;
      }
      gemm(packedIn.data(), b, packedOut.data(), total, n, depth);
      at = 0;
      for (auto [first, count] : runs[g]) {
        std::memcpy(f32(out[0]) + first * n, packedOut.data() + at * n, size_t(count * n) * sizeof(float));
        at += count;
      }
    }
    return;
  }
  case plan::BIAS_ADD: {
    const int64_t m = k.m(), n = k.n();
    rows.forEachRun([&](int64_t first, int64_t count) {
      biasAdd(f32(in[0]) + first * n, f32(in[1]) + (first / m) * n, f32(out[0]) + first * n, 1,
              count, n);
    }, m);
    return;
  }
  case plan::ACTIVATION_FUNCTION: {
    const int64_t n = k.n();
    const bool swiglu = k.activation() == plan::SWIGLU;
    rows.forEachRun([&](int64_t first, int64_t count) {
      activation(swiglu ? Activation::SwiGlu : Activation::Gelu,
                 swiglu ? f32(in[0]) + first * n : nullptr, f32(in[swiglu ? 1 : 0]) + first * n,
                 f32(out[0]) + first * n, count * n);
    });
    return;
  }
  case plan::TRANSPOSE: {
    // x[m, n, inner] -> y[n, m, inner]: each segment's filled rows to its block's new place
    // (the walker checked that blocks hold whole segments: outputFill).
    const int64_t m = k.m(), n = k.n(), inner = rows.segments() / (m * n);
    const uint64_t rowBytes = uint64_t(k.inner()) * sizeof(float) / uint64_t(inner * rows.segmentRows);
    const uint64_t segBytes = rowBytes * uint64_t(rows.segmentRows);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t s = 0; s < inner; ++s) {
          const int64_t from = (i * n + j) * inner + s, to = (j * m + i) * inner + s;
          std::memcpy(out[0] + uint64_t(to) * segBytes, in[0] + uint64_t(from) * segBytes,
                      rowBytes * uint64_t(rows.filled[size_t(from)]));
        }
    return;
  }
  default:
    throw std::invalid_argument("kernel kind " + plan::KernelKind_Name(k.kind()) +
                                " does not compute on routed rows");
  }
}

} // namespace

std::unique_ptr<ComputeBackend> makeCpuBackend(const plan::Plan &plan, bool queued) {
  return std::make_unique<CpuBackend>(plan, queued);
}

} // namespace moeplan::runtime
