#include "moeplan/Runtime/Executor.h"
#include "moeplan/Support/Percentile.h"

#include "moeplan/Checkpoint/HfCheckpoint.h"
#include "moeplan/Checkpoint/Safetensors.h"
#include "moeplan/Kernels/Seeded.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Backend.h"
#include "moeplan/Runtime/DTypes.h"
#include "moeplan/Runtime/InitWeights.h"
#include "moeplan/Runtime/Liveness.h"
#include "moeplan/Runtime/MpiLarge.h"
#include "moeplan/Runtime/MpiLowering.h"
#include "moeplan/Runtime/Placement.h"
#include "moeplan/Runtime/Slices.h"
#include "moeplan/Support/Files.h"
#include "moeplan/Trace/Trace.h"

#include <mpi.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace moeplan::runtime {

namespace {

constexpr int kExitUnusable = 2;
constexpr int kAbortStatus = 3;

using Clock = std::chrono::steady_clock;

uint64_t bytesOf(plan::DType dtype) { return planfile::dtypeBytes(dtype); }

// Events 1..n, each recorded once per forward pass: a thread blocks or polls on them before
// it issues an instruction that waits for them. (Queued backends additionally order the
// device work with waitEvent/recordEvent.)
class Events {
public:
  explicit Events(uint32_t count) : recorded_(size_t(count) + 1) { reset(); }
  void reset() {
    for (auto &r : recorded_) r.store(false);
  }
  void record(uint32_t e) {
    if (e == 0) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      recorded_[e].store(true, std::memory_order_release);
    }
    changed_.notify_all();
  }
  bool ready(const plan::Instruction &inst) const {
    for (uint32_t e : inst.wait_events())
      if (!recorded_[e].load(std::memory_order_acquire)) return false;
    return true;
  }
  void wait(const plan::Instruction &inst) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return ready(inst); });
  }
  // wait() for at most `timeout`.
  template <class Duration> void waitReady(const plan::Instruction &inst, Duration timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return ready(inst); });
  }

private:
  std::vector<std::atomic<bool>> recorded_;
  std::mutex mutex_;
  std::condition_variable changed_;
};

struct Timing {
  double start = -1, end = -1;  // seconds since the pass started
};

// What a GENERATE plan's generation took: seconds from the common start to the end of the
// prefill with its sampling (time to first token), and of each decode step with its
// sampling. On one rank a step runs from the end of its previous part to its own end; the
// job's step k (Measured) runs from the moment the last rank finished part k - 1 to the
// moment the last rank finished part k, the interval between two tokens of a sequence.
struct Generation {
  double ttft = 0;
  std::vector<double> steps;
  std::vector<double> stepEnds;  // on one rank: seconds from the start to each step's end
};

// One measured forward pass of this rank; for a GENERATE plan one whole generation, whose
// timings are the prefill's and the median decode step's (at the time that step ran).
struct Pass {
  std::vector<Timing> timings;  // per instruction (empty under --graph)
  double wall = 0;
  std::optional<Generation> generation;
};

// The tensor names plan.proto gives a GENERATE plan's per-step input and output.
constexpr const char *kStepTokens = "step_tokens", *kStepLogits = "step_logits";

// A full tensor assembled on rank 0: row-major, F32.
struct FullTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// The elements of a block (row-major in `count` order) at index `at` of dim 1 (a position):
// the block [count[0], 1, ...]. Empty when the block does not hold that index.
std::vector<float> blockAtPosition(const Block &block, const std::vector<float> &data, int64_t at) {
  const int64_t local = at - block.begin[1];
  if (local < 0 || local >= block.count[1]) return {};
  const int64_t rows = block.count[0], positions = block.count[1];
  const size_t inner = size_t(block.elements() / (rows * positions));
  std::vector<float> out(size_t(rows) * inner);
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(data.begin() + std::ptrdiff_t(size_t(r * positions + local) * inner), inner,
                out.begin() + std::ptrdiff_t(size_t(r) * inner));
  return out;
}

constexpr int kOutputTag = 1, kTraceTag = 2;

// Rank 0 assembles the full tensors of the OUTPUT buffers `wanted` selects, from every rank
// (F32, the padding past each tensor's extent dropped); the other ranks send theirs. With
// `position`, only that index of dim 1 travels, and the tensors have 1 there. Every rank calls
// it at the same point; `bufferAsF32(b)` reads this rank's buffer b.
std::map<std::string, FullTensor> gatherOutputTensors(
    const plan::Plan &plan, uint32_t rank, const std::function<bool(const plan::Buffer &)> &wanted,
    std::optional<int64_t> position, const std::function<std::vector<float>(int)> &bufferAsF32) {
  auto outputsOf = [&](uint32_t r) {
    std::vector<int> list;
    const plan::Program &prog = plan.programs(int(plan.ranks(int(r)).program()));
    for (int b = 0; b < prog.buffers_size(); ++b)
      if (prog.buffers(b).kind() == plan::OUTPUT && wanted(prog.buffers(b))) list.push_back(b);
    return list;
  };
  auto blockFor = [&](uint32_t r, const plan::Buffer &buf) {
    return blockOf(buf.slice(), axisCoordinates(plan, r), plan.strategy().micro_batches());
  };
  // This rank's buffer b as its block's elements (row-major), at `position` if given.
  auto mine = [&](int b) {
    const plan::Buffer &buf = plan.programs(int(plan.ranks(int(rank)).program())).buffers(b);
    const std::vector<float> data = bufferAsF32(b);
    const Block block = blockFor(rank, buf);
    std::vector<float> blockData(data.size());
    bufferToBlock(block, data.data(), blockData.data(), 4);
    return position ? blockAtPosition(block, blockData, *position) : blockData;
  };
  std::map<std::string, FullTensor> tensors;
  if (rank != 0) {
    for (int b : outputsOf(rank)) {
      const std::vector<float> data = mine(b);
      if (!data.empty())
        sendLarge(data.data(), data.size(), MPI_FLOAT, 0, kOutputTag, MPI_COMM_WORLD, mpiMaxCount());
    }
    return tensors;
  }
  for (uint32_t r = 0; r < uint32_t(plan.ranks_size()); ++r) {
    const plan::Program &prog = plan.programs(int(plan.ranks(int(r)).program()));
    for (int b : outputsOf(r)) {
      const plan::Buffer &buf = prog.buffers(b);
      Block block = blockFor(r, buf);
      std::vector<int64_t> full(buf.slice().full_shape().begin(), buf.slice().full_shape().end());
      if (position) {
        if (*position < block.begin[1] || *position >= block.begin[1] + block.count[1]) continue;
        block.begin[1] = 0, block.count[1] = 1, full[1] = 1;
      }
      std::vector<float> blockData;
      if (r == 0) {
        blockData = mine(b);
      } else {
        blockData.resize(size_t(block.elements()));
        recvLarge(blockData.data(), blockData.size(), MPI_FLOAT, int(r), kOutputTag, MPI_COMM_WORLD,
                  mpiMaxCount());
      }
      FullTensor &tensor = tensors[buf.slice().tensor()];
      int64_t elements = 1;
      for (int64_t d : full) elements *= d;
      tensor.data.resize(size_t(elements));
      tensor.shape = full;
      // Scatter the block into the full tensor, skipping the padding past its extent.
      forEachBlockElement(block.begin, block.count, full, [&](int64_t i, int64_t flat) {
        if (flat >= 0) tensor.data[size_t(flat)] = blockData[size_t(i)];
      });
    }
  }
  return tensors;
}

using planfile::formatBytes;
using planfile::formatSeconds;

// Ends the whole job from whichever thread finds a failure first (compute, communication,
// queue watcher or liveness thread); a later caller, often reacting to the first failure's
// consequences, waits for the end instead of printing a second story. MPI_THREAD_MULTIPLE
// lets that one thread call MPI_Abort while others are inside MPI.
[[noreturn]] void abortJob(const std::string &message, CommBackend *comm) {
  static std::atomic<bool> aborting{false};
  if (aborting.exchange(true))
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  std::fprintf(stderr, "moeplan-run: error: %s\n", message.c_str());
  std::fflush(stderr);
  if (comm) comm->abort();
  MPI_Abort(MPI_COMM_WORLD, kAbortStatus);
  std::_Exit(kAbortStatus);
}

class RankRun {
  // What runs as a whole, streams drained after it: the program, or a GENERATE plan's
  // prefill [0, decode_begin) and decode step [decode_begin, end).
  struct Part {
    int begin = 0, end = 0;
    std::vector<int> kernels, collectives;  // instruction indices, in issue order
    std::vector<int> skipped;  // not run; their events are recorded as the part starts
  };
  // A GENERATE part run where no decode step follows: its feeds_next_step SENDs skipped (its
  // RECVs of them stay: they take the previous part's). What waits on their events (a
  // later writer of the ids' bytes) goes on.
  static Part lastRun(Part part, const plan::Program &program) {
    auto feeds = [&](int i) {
      const plan::Collective &c = program.instructions(i).collective();
      return c.kind() == plan::SEND && c.feeds_next_step();
    };
    std::copy_if(part.collectives.begin(), part.collectives.end(), std::back_inserter(part.skipped), feeds);
    part.collectives.erase(std::remove_if(part.collectives.begin(), part.collectives.end(), feeds),
                           part.collectives.end());
    return part;
  }

public:
  RankRun(const plan::Plan &plan, uint32_t rank, const RunOptions &options,
          ComputeBackend &compute, CommBackend &comm, Liveness &liveness)
      : plan_(plan), rank_(rank), options_(options), compute_(compute), comm_(comm),
        liveness_(liveness),
        program_(plan.programs(int(plan.ranks(int(rank)).program()))),
        axes_(axisCoordinates(plan, rank)), events_(program_.events()),
        issued_(size_t(program_.instructions_size())) {
    const int n = program_.instructions_size();
    // Valid GENERATE plans have 0 < decode_begin < n (validatePlan).
    const int decodeBegin = generates() ? int(program_.decode_begin()) : n;
    parts_.push_back({0, decodeBegin, {}, {}});
    if (decodeBegin < n) parts_.push_back({decodeBegin, n, {}, {}});
    for (Part &part : parts_)
      for (int i = part.begin; i < part.end; ++i)
        (program_.instructions(i).has_kernel() ? part.kernels : part.collectives).push_back(i);
    for (const Part &part : parts_) lastRuns_.push_back(lastRun(part, program_));
  }

  bool generates() const { return plan_.workload().phase() == plan::GENERATE; }
  // Tokens each generation makes per sequence: --new-tokens, or the plan's.
  uint32_t newTokens() const {
    return options_.newTokens ? *options_.newTokens : plan_.workload().new_tokens();
  }

  // Local checks, the arena, weights and inputs. Throws UnusableInput.
  void prepare() {
    checkExecutable();
    compute_.check(plan_, plan_.ranks(int(rank_)).program());
    compute_.allocate(program_.arena_bytes(), program_.streams(), program_.events(),
                      uint32_t(2 * program_.instructions_size()));
    chooseRoutedRows();
    resolveKernels();
    if (options_.randomWeights) fillRandomWeights();
    else loadWeights();
    loadInputs();
  }

  // The forward passes --warmup and --iterations ask for; under --graph the first warm-up
  // (at least one) runs eagerly, then one capture is replayed.
  void execute() {
    liveness_.beginExecute();
    executePasses();
    liveness_.endExecute();
  }

  void executePasses() {
    const uint32_t warmup =
        options_.warmup ? *options_.warmup : (options_.iterations > 1 ? 1u : 0u);
    if (options_.graph) {
      for (uint32_t i = 0; i < std::max(warmup, 1u); ++i) eagerPass();
      restoreInputs();
      try {
        compute_.beginCapture();
        issueEverything(parts_[0], /*timed=*/false);
        compute_.endCapture();
      } catch (const std::exception &e) {
        abortRun("rank " + std::to_string(rank_) + ": capturing the CUDA graph: " + e.what());
      }
      for (uint32_t i = 0; i < options_.iterations; ++i) passes_.push_back(graphPass());
      return;
    }
    if (generates()) {
      for (uint32_t i = 0; i < warmup; ++i) generation();
      for (uint32_t i = 0; i < options_.iterations; ++i) passes_.push_back(generation());
      return;
    }
    for (uint32_t i = 0; i < warmup; ++i) eagerPass();
    for (uint32_t i = 0; i < options_.iterations; ++i) passes_.push_back(eagerPass());
  }

  const plan::Program &program() const { return program_; }
  const std::vector<Pass> &passes() const { return passes_; }
  // After a GENERATE run, every rank at once; rank 0 gets the last generation's tokens,
  // "generated" I32 [sequences, new tokens] (the plan's OUTPUT, its first --new-tokens
  // columns), and the logits each was chosen from, "step_logits" [sequences, new tokens,
  // vocab]: the prefill's at the prompt's last position, then each step's this rank kept.
  struct Generated {
    std::vector<int32_t> ids;
    std::vector<float> logits;
  };
  Generated gatherGenerated() {
    const size_t sequences = plan_.workload().sequences(), vocab = plan_.model().vocab();
    const size_t tokens = newTokens();
    auto only = [](const char *tensor) {
      return [tensor](const plan::Buffer &b) { return b.slice().tensor() == tensor; };
    };
    std::map<std::string, FullTensor> generated =
        gatherOutputTensors(plan_, rank_, only("generated"), std::nullopt,
                            [&](int b) { return bufferAsF32(b); });
    // The logits of token t: the prefill's at its last position, then decode step t - 1's.
    std::vector<std::map<std::string, FullTensor>> from;
    from.push_back(gatherOutputTensors(plan_, rank_, only("logits"),
                                       int64_t(plan_.workload().seq_len()) - 1,
                                       [&](int b) { return bufferAsF32(b); }));
    for (const std::map<int, std::vector<float>> &kept : stepLogits_)
      from.push_back(gatherOutputTensors(plan_, rank_, only(kStepLogits), std::nullopt,
                                         [&](int b) { return kept.at(b); }));
    Generated out;
    if (rank_ != 0) return out;
    auto full = [&](std::map<std::string, FullTensor> &m, const char *tensor, size_t width) {
      auto it = m.find(tensor);
      if (it == m.end() || it->second.shape.size() < 2 || it->second.shape[0] != int64_t(sequences) ||
          it->second.shape.back() < int64_t(width))
        abortRun(std::string("rank 0: no rank's OUTPUT buffers hold \"") + tensor + "\" [sequences " +
                 std::to_string(sequences) + ", ..., " + std::to_string(width) + "]");
      return &it->second;
    };
    const FullTensor *ids = full(generated, "generated", tokens);
    const size_t columns = size_t(ids->shape.back());
    out.ids.resize(sequences * tokens);
    for (size_t q = 0; q < sequences; ++q)
      for (size_t t = 0; t < tokens; ++t)
        out.ids[q * tokens + t] = int32_t(ids->data[q * columns + t]);  // exact below 2^24
    if (from.size() == tokens) {
      out.logits.resize(sequences * tokens * vocab);
      for (size_t t = 0; t < tokens; ++t) {
        const FullTensor *l = full(from[t], t == 0 ? "logits" : kStepLogits, vocab);
        const size_t width = size_t(l->shape.back());
        for (size_t q = 0; q < sequences; ++q)
          std::copy_n(l->data.begin() + std::ptrdiff_t(q * width), vocab,
                      out.logits.begin() + std::ptrdiff_t((q * tokens + t) * vocab));
      }
    }
    return out;
  }
  RoutingCounts counts() { return compute_.counts(); }
  bool routedRows() const { return routedRows_; }
  // The last pass's rows of routed grouped GEMMs per layer: [layer][filled, capacity].
  const std::vector<int64_t> &expertRows() const { return expertRows_; }
  ComputeBackend &compute() { return compute_; }
  // Buffer b's bytes, copied from the arena (converted to F32 for float buffers).
  std::vector<float> bufferAsF32(int b) {
    const plan::Buffer &buf = program_.buffers(b);
    std::vector<std::byte> raw(buf.bytes());
    compute_.download(compute_.arena() + buf.offset(), raw.data(), buf.bytes());
    std::vector<float> out(size_t(buf.bytes() / bytesOf(buf.dtype())));
    if (buf.dtype() == plan::I32) {
      // Token ids ("generated"): exact in F32 below 2^24, which bounds any vocabulary.
      const int32_t *ids = reinterpret_cast<const int32_t *>(raw.data());
      for (size_t i = 0; i < out.size(); ++i) {
        if (std::abs(int64_t(ids[i])) >= (int64_t(1) << 24))
          throw std::runtime_error("buffers[" + std::to_string(b) + "] \"" + buf.name() +
                                   "\" holds the id " + std::to_string(ids[i]) +
                                   ", which F32 outputs cannot carry exactly");
        out[i] = float(ids[i]);
      }
      return out;
    }
    convertToF32(buf.dtype(), raw.data(), out.data(), out.size());
    return out;
  }

private:
  std::string where(int instruction) const {
    const plan::Instruction &inst = program_.instructions(instruction);
    return "rank " + std::to_string(rank_) + ", programs[" +
           std::to_string(plan_.ranks(int(rank_)).program()) + "].instructions[" +
           std::to_string(instruction) + "] \"" + inst.label() + "\" (micro-batch " +
           std::to_string(inst.micro_batch()) + ")";
  }

  // What the walker can run, beyond what validatePlan already guarantees.
  void checkExecutable() const {
    const uint32_t planned = plan_.workload().new_tokens();
    if (options_.newTokens && !generates())
      throw UnusableInput("--new-tokens applies to GENERATE plans; this plan's workload.phase is " +
                          plan::Phase_Name(plan_.workload().phase()));
    if (options_.newTokens && (*options_.newTokens < 1 || *options_.newTokens > planned))
      throw UnusableInput("--new-tokens " + std::to_string(*options_.newTokens) + " is not in 1.." +
                          std::to_string(planned) + ": the plan's KV caches hold the prompt and " +
                          "workload.new_tokens " + std::to_string(planned) +
                          " tokens (compile the plan with more new_tokens)");
    if (generates() && plan_.model().vocab() == 0)
      throw UnusableInput("the plan is GENERATE, but its model has no vocabulary (model.vocab 0): "
                          "there are no logits to choose tokens from");
    if (generates() && options_.graph)
      throw UnusableInput("--graph replays one captured pass; a GENERATE plan's decode steps "
                          "change their positions every step (drop --graph)");
    for (int b = 0; b < program_.buffers_size(); ++b)
      if (program_.buffers(b).kind() == plan::KV_CACHE && plan_.workload().phase() == plan::DECODE)
        throw UnusableInput("the plan is a DECODE step, which reads a KV cache; moeplan-run "
                            "executes PREFILL plans (the cache they write is not kept)");
    for (int i = 0; i < program_.instructions_size(); ++i) {
      const plan::Instruction &inst = program_.instructions(i);
      const bool isKernel = inst.has_kernel();
      if (isKernel != (inst.stream() == 0))
        throw UnusableInput(where(i) + ": " + (isKernel ? "a kernel" : "a collective") +
                            " on stream " + std::to_string(inst.stream()) +
                            "; moeplan-run runs kernels on stream 0 and communication on the others");
    }
  }

  std::byte *address(uint32_t buffer) { return compute_.arena() + program_.buffers(int(buffer)).offset(); }

  // Whether the expert step computes and moves routed rows only (RoutedRows.h): unless
  // --padded-experts, where both backends can (cpu with mpi; queued backends and the CUDA
  // backend compute the padded capacity).
  void chooseRoutedRows() {
    fills_.assign(size_t(program_.buffers_size()), RowFill{});
    bool routedCollectives = false;
    for (const plan::Instruction &inst : program_.instructions())
      routedCollectives = routedCollectives || (inst.routed() && inst.has_collective());
    routedRows_ = !options_.paddedExperts && compute_.routedRows() &&
                  (comm_.routedRows() || !routedCollectives);
  }
  // A buffer's rows for its routed fill: its elements over its last dim.
  void setFill(uint32_t buffer, RowFill fill) {
    const plan::Buffer &b = program_.buffers(int(buffer));
    const int64_t width = b.shape_size() ? b.shape(b.shape_size() - 1) : 0;
    int64_t elements = 1;
    for (int64_t d : b.shape()) elements *= d;
    if (!fill.known() || width <= 0 || fill.rows() * width != elements)
      throw std::invalid_argument("routed rows: buffers[" + std::to_string(buffer) + "] \"" +
                                  b.name() + "\" does not hold " + std::to_string(fill.rows()) +
                                  " rows of its last dim");
    fills_[buffer] = std::move(fill);
  }
  uint64_t rowBytes(uint32_t buffer) const {
    const plan::Buffer &b = program_.buffers(int(buffer));
    return uint64_t(b.shape(b.shape_size() - 1)) * bytesOf(b.dtype());
  }

  // Every kernel's operands and plan-derived arguments, resolved once.
  void resolveKernels() {
    calls_.resize(size_t(program_.instructions_size()));
    for (int i = 0; i < program_.instructions_size(); ++i) {
      if (!program_.instructions(i).has_kernel()) continue;
      const plan::Kernel &k = program_.instructions(i).kernel();
      KernelCall &call = calls_[size_t(i)];
      call.kernel = &k;
      call.dtype = plan_.model().dtype();
      call.layer = program_.instructions(i).layer();
      for (uint32_t b : k.inputs()) call.in.push_back(address(b));
      for (uint32_t b : k.outputs()) call.out.push_back(address(b));
      if (k.kind() == plan::DISPATCH && routedRows_) call.dispatchFill = &fills_[k.outputs(0)];
      if (k.kind() == plan::EMBEDDING) {
        // The table is this rank's slice of embedding.weight; vocab_begin/end count from it.
        const plan::Buffer &table = program_.buffers(int(k.inputs(1)));
        call.firstId = blockOf(table.slice(), axes_, plan_.strategy().micro_batches()).begin[0];
      }
      if (k.kind() == plan::ARGMAX) {
        // The logits are this rank's vocabulary slice: their last dim's first column.
        const plan::Buffer &logits = program_.buffers(int(k.inputs(0)));
        call.firstId = blockOf(logits.slice(), axes_, plan_.strategy().micro_batches()).begin.back();
      }
    }
  }

  // The block of its full tensor that buffer `buffer` holds on this rank, checked to fill it.
  Block bufferBlock(int buffer) const {
    const plan::Buffer &b = program_.buffers(buffer);
    Block block = blockOf(b.slice(), axes_, plan_.strategy().micro_batches());
    if (uint64_t(block.elements()) * bytesOf(b.dtype()) != b.bytes())
      throw UnusableInput("buffers[" + std::to_string(buffer) + "] \"" + b.name() + "\" holds " +
                          std::to_string(b.bytes()) + " bytes, but its slice of \"" +
                          b.slice().tensor() + "\" has " + std::to_string(block.elements()) +
                          " elements");
    return block;
  }

  static std::vector<int64_t> fullShape(const plan::Buffer &b) {
    return {b.slice().full_shape().begin(), b.slice().full_shape().end()};
  }

  void fillRandomWeights() {
    for (int i = 0; i < program_.buffers_size(); ++i) {
      const plan::Buffer &b = program_.buffers(i);
      if (b.kind() != plan::WEIGHT) continue;
      const Block block = bufferBlock(i);
      SeededBlock seeded{block.begin, block.count, fullShape(b), 0, 1, 0};
      seeded.key = kernels::streamKey(*options_.randomWeights, b.slice().tensor());
      const InitRule rule = initRule(b.slice().tensor(), seeded.full);
      seeded.scale = rule.scale, seeded.offset = rule.offset;
      compute_.fillSeeded(compute_.arena() + b.offset(), b.dtype(), seeded);
    }
  }

  void loadWeights() {
    if (options_.checkpoint.empty()) {
      for (const plan::Buffer &b : program_.buffers())
        if (b.kind() == plan::WEIGHT)
          throw UnusableInput("the plan has weights; give --checkpoint FILE or --random-weights SEED");
      return;
    }
    // A directory is a Hugging Face model (HfCheckpoint.h); a file is moeplan's own layout.
    std::optional<checkpoint::HfCheckpoint> hf;
    std::optional<checkpoint::SafetensorsReader> file;
    if (checkpoint::isDirectory(options_.checkpoint)) {
      hf = checkpoint::HfCheckpoint::open(options_.checkpoint);
      checkHfConfig(*hf);
      hf->checkTensors(planWeightShapes());
    } else {
      file = checkpoint::SafetensorsReader::open(options_.checkpoint);
    }
    for (int i = 0; i < program_.buffers_size(); ++i) {
      const plan::Buffer &b = program_.buffers(i);
      if (b.kind() != plan::WEIGHT) continue;
      const Block block = bufferBlock(i);
      // As the file stores it (F32, F16 or BF16), converted to the plan's dtype on upload.
      const checkpoint::DType fileType = hf ? hf->dtypeOf(b.slice().tensor(), fullShape(b))
                                            : file->dtypeOf(b.slice().tensor());
      if (!isFloat(planDType(fileType)))
        throw UnusableInput(options_.checkpoint + ": tensor \"" + b.slice().tensor() + "\" is " +
                            checkpoint::dtypeName(fileType) + ", not a float type");
      const size_t elementBytes = checkpoint::dtypeBytes(fileType);
      std::vector<std::byte> data(size_t(block.elements()) * elementBytes), laid(data.size());
      if (hf)
        hf->readBlock(b.slice().tensor(), fileType, fullShape(b), block.begin, block.count,
                      data.data());
      else
        file->readBlock(b.slice().tensor(), fileType, fullShape(b), block.begin, block.count,
                        data.data());
      blockToBuffer(block, data.data(), laid.data(), elementBytes);
      compute_.uploadConverted(compute_.arena() + b.offset(), b.dtype(), laid.data(),
                               planDType(fileType), uint64_t(block.elements()));
    }
  }

  // Every weight tensor of the whole model (all programs), by name: what a checkpoint must
  // hold and nothing more.
  std::map<std::string, std::vector<int64_t>> planWeightShapes() const {
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const plan::Program &program : plan_.programs())
      for (const plan::Buffer &b : program.buffers())
        if (b.kind() == plan::WEIGHT) shapes.emplace(b.slice().tensor(), fullShape(b));
    return shapes;
  }

  // What shapes cannot show: the Hugging Face config's semantics must be the plan's model.
  void checkHfConfig(const checkpoint::HfCheckpoint &hf) const {
    const plan::Model &m = plan_.model();
    const std::string config = hf.dir() + "/config.json";
    auto number = [&](const std::string &key, double planned, const char *planField) {
      if (!hf.hasConfig(key)) return;
      const std::string text = hf.configValue(key);
      char *end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end || std::abs(v - planned) > 1e-9 * std::abs(planned))
        throw UnusableInput(config + ": " + key + " is " + text + ", but the plan's model." +
                            planField + " is " + formatDouble(planned) +
                            "; compile the plan from this model (moeplan import-hf)");
    };
    number("num_hidden_layers", m.layers(), "layers");
    number("hidden_size", m.d_model(), "d_model");
    number("num_attention_heads", m.heads(), "heads");
    number("num_key_value_heads", m.kv_heads(), "kv_heads");
    number("vocab_size", m.vocab(), "vocab");
    number("rms_norm_eps", m.norm_epsilon(), "norm_epsilon");
    number("rope_theta", m.rope_theta(), "rope_theta");
    number("num_experts_per_tok", m.top_k(), "top_k");
    auto flag = [&](const std::string &key, bool planned, bool absent, const char *planField) {
      const std::string text = hf.hasConfig(key) ? hf.configValue(key) : (absent ? "true" : "false");
      if ((text == "true") != planned)
        throw UnusableInput(config + ": " + key + " is " + text + ", but the plan's model." +
                            planField + " is " + (planned ? "true" : "false") +
                            "; compile the plan from this model (moeplan import-hf)");
    };
    flag("tie_word_embeddings", m.tie_embeddings(), false, "tie_embeddings");
    if (hf.architecture() == checkpoint::HfArchitecture::Qwen2Moe)
      flag("norm_topk_prob", m.renormalize_gates(), false, "renormalize_gates");
  }

  static std::string formatDouble(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", v);
    return text;
  }

  // Reads or generates every INPUT buffer, keeping a copy in the buffer's dtype and layout:
  // activations may reuse an input's bytes, so each pass starts by restoring them. A
  // GENERATE plan's step tokens are its sampling's to write.
  void loadInputs() {
    std::optional<checkpoint::SafetensorsReader> reader;
    if (!options_.input.empty()) reader = checkpoint::SafetensorsReader::open(options_.input);
    for (int i = 0; i < program_.buffers_size(); ++i) {
      const plan::Buffer &b = program_.buffers(i);
      if (b.kind() != plan::INPUT) continue;
      const Block block = bufferBlock(i);
      if (generates() && b.slice().tensor() == kStepTokens) continue;
      const std::vector<int64_t> full = fullShape(b);
      const bool ids = b.dtype() == plan::I32;
      // Token ids as I32, hidden states as F32 (converted to the buffer's dtype below).
      std::vector<std::byte> data(size_t(block.elements()) * 4);
      if (reader) {
        try {
          reader->readBlock(b.slice().tensor(), ids ? checkpoint::DType::I32 : checkpoint::DType::F32,
                            full, block.begin, block.count, data.data());
        } catch (const checkpoint::CheckpointError &e) {
          if (!generates() || b.slice().tensor() != "tokens") throw;
          throw UnusableInput(std::string(e.what()) + " (the prompt: [sequences " +
                              std::to_string(plan_.workload().sequences()) + ", workload.seq_len " +
                              std::to_string(plan_.workload().seq_len()) +
                              "]; compile the plan for this prompt length)");
        }
        if (ids) checkTokenIds(block, reinterpret_cast<const int32_t *>(data.data()));
      } else if (options_.inputSeed) {
        seededBlock(b.slice().tensor(), b.dtype(), full, block, data.data());
      } else {
        throw UnusableInput("the plan reads \"" + b.slice().tensor() +
                            "\"; give --input FILE or --input-seed N");
      }
      inputs_.push_back({i, laidOut(i, block, data)});
    }
    restoreInputs();
  }

  // An input block (row-major in block order: I32 ids, or F32) in buffer b's layout and dtype.
  std::vector<std::byte> laidOut(int b, const Block &block, const std::vector<std::byte> &data) const {
    const plan::Buffer &buf = program_.buffers(b);
    std::vector<std::byte> laid(data.size());
    blockToBuffer(block, data.data(), laid.data(), 4);
    std::vector<std::byte> stored(buf.bytes());
    if (buf.dtype() == plan::I32) std::memcpy(stored.data(), laid.data(), stored.size());
    else convert(plan::F32, laid.data(), buf.dtype(), stored.data(), uint64_t(block.elements()));
    return stored;
  }

  void restoreInputs() {
    for (const auto &[buffer, bytes] : inputs_)
      compute_.upload(address(uint32_t(buffer)), bytes.data(), bytes.size());
  }

  void checkTokenIds(const Block &block, const int32_t *ids) const {
    const int64_t vocab = plan_.model().vocab();
    for (int64_t i = 0; i < block.elements(); ++i)
      if (ids[i] < 0 || ids[i] >= vocab) {
        const int64_t s = block.begin[0] + i / block.count[1], p = block.begin[1] + i % block.count[1];
        throw UnusableInput(options_.input + ": tokens[" + std::to_string(s) + "][" +
                            std::to_string(p) + "] is " + std::to_string(ids[i]) +
                            ", outside the vocabulary [0, " + std::to_string(vocab) + ")");
      }
  }

  void seededBlock(const std::string &tensor, plan::DType dtype, const std::vector<int64_t> &full,
                   const Block &block, std::byte *out) const {
    const int64_t inner = block.elements() / (block.count[0] * block.count[1]);
    const uint64_t key = kernels::streamKey(*options_.inputSeed, tensor);
    for (int64_t i = 0; i < block.elements(); ++i) {
      const int64_t s = block.begin[0] + i / (block.count[1] * inner);
      const int64_t p = block.begin[1] + (i / inner) % block.count[1];
      const int64_t c = i % inner;
      if (dtype == plan::I32)
        reinterpret_cast<int32_t *>(out)[i] =
            kernels::seededToken(*options_.inputSeed, s, p, plan_.model().vocab());
      else
        reinterpret_cast<float *>(out)[i] =
            kernels::seededUniformAt(key, uint64_t((s * full[1] + p) * inner + c));
    }
  }

  // -- one forward pass -------------------------------------------------------------------

  // Host work before a pass, which the liveness thread must not take for a deadlock.
  void betweenPasses() {
    Busy busy(liveness_);
    restoreInputs();
    compute_.resetCounts();
    expertRows_.assign(size_t(2 * plan_.model().layers()), 0);
  }

  Pass eagerPass() {
    betweenPasses();
    MPI_Barrier(MPI_COMM_WORLD);
    Pass pass;
    pass.timings.resize(size_t(program_.instructions_size()));
    pass.wall = runPart(parts_[0], pass.timings, Clock::now());
    return pass;
  }

  // Runs a part with timing and waits until it has completed on this rank; its timings go
  // into `timings` (by instruction) as seconds since `origin`. Returns the part's seconds.
  double runPart(const Part &part, std::vector<Timing> &timings, Clock::time_point origin) {
    start_ = Clock::now();
    compute_.startClock();
    issueEverything(part, /*timed=*/true);
    synchronizeOrAbort();
    const double wall = seconds(Clock::now());
    const double shift = std::chrono::duration<double>(start_ - origin).count();
    for (int i = part.begin; i < part.end; ++i) {
      const bool hostTimed = program_.instructions(i).has_collective() && !comm_.queued();
      const Timing t = hostTimed ? hostTimings_[size_t(i)]
                                 : Timing{compute_.markSeconds(uint32_t(2 * i)),
                                          compute_.markSeconds(uint32_t(2 * i + 1))};
      timings[size_t(i)] = {t.start + shift, t.end + shift};
    }
    return wall;
  }

  // -- a GENERATE plan's generation -------------------------------------------------------

  // The prefill, then a decode step per further token. The plan samples itself and carries
  // the ids from the last stage to the first; each rank drains only its own streams between
  // parts, so micro-batches pipeline across decode steps. The pass keeps the prefill's
  // timings and the median decode step's. With --output, each rank keeps every step's
  // logits it holds (a local copy: no rank waits for another).
  Pass generation() {
    betweenPasses();
    stepLogits_.clear();
    MPI_Barrier(MPI_COMM_WORLD);
    const Clock::time_point begin = Clock::now();
    auto since = [&](Clock::time_point t) { return std::chrono::duration<double>(t - begin).count(); };
    Pass pass;
    pass.generation.emplace();
    pass.timings.resize(size_t(program_.instructions_size()));
    const uint32_t steps = newTokens() - 1;
    runPart(steps > 0 ? parts_[0] : lastRuns_[0], pass.timings, begin);
    pass.generation->ttft = since(Clock::now());
    std::vector<std::vector<Timing>> stepTimings(steps, std::vector<Timing>(pass.timings.size()));
    for (uint32_t s = 0; s < steps; ++s) {
      const Part &step = s + 1 < steps ? parts_[1] : lastRuns_[1];
      for (int i : step.kernels) calls_[size_t(i)].step = int64_t(s);
      const Clock::time_point stepBegin = Clock::now();
      runPart(step, stepTimings[s], begin);
      const Clock::time_point stepEnd = Clock::now();
      pass.generation->steps.push_back(since(stepEnd) - since(stepBegin));
      pass.generation->stepEnds.push_back(since(stepEnd));
      if (!options_.output.empty()) keepStepLogits();
    }
    pass.wall = since(Clock::now());
    if (steps > 0) {  // the median step (the lower of an even count) by its seconds
      const Part &step = parts_[1];
      std::vector<uint32_t> order(steps);
      for (uint32_t s = 0; s < steps; ++s) order[s] = s;
      const std::vector<double> &taken = pass.generation->steps;
      std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return taken[a] < taken[b]; });
      const std::vector<Timing> &median = stepTimings[order[(steps - 1) / 2]];
      for (int i = step.begin; i < step.end; ++i) pass.timings[size_t(i)] = median[size_t(i)];
    }
    return pass;
  }

  // This rank's "step_logits" OUTPUT buffers after a decode step, by buffer.
  void keepStepLogits() {
    std::map<int, std::vector<float>> kept;
    for (int b = 0; b < program_.buffers_size(); ++b)
      if (program_.buffers(b).kind() == plan::OUTPUT && program_.buffers(b).slice().tensor() == kStepLogits)
        kept[b] = bufferAsF32(b);
    stepLogits_.push_back(std::move(kept));
  }

  Pass graphPass() {
    betweenPasses();
    MPI_Barrier(MPI_COMM_WORLD);
    Pass pass;
    try {
      Busy busy(liveness_);  // one launch runs the whole pass
      pass.wall = compute_.replay();
    } catch (const std::exception &e) {
      abortRun("rank " + std::to_string(rank_) + ": replaying the CUDA graph: " + e.what());
    }
    return pass;
  }

  // Queued work fails asynchronously: its error surfaces here, without an instruction.
  void synchronizeOrAbort() {
    try {
      compute_.synchronize();
    } catch (const std::exception &e) {
      abortRun("rank " + std::to_string(rank_) + ": " + e.what());
    }
  }

  // Issues every instruction of the program: kernels from this thread, communication from
  // a thread of its own; with queued communication this thread then watches the device for
  // progress, errors and stalls until the pass completes.
  // A GENERATE plan's parts each issue this way: events restart with each part.
  void issueEverything(const Part &part, bool timed) {
    events_.reset();
    for (auto &flag : issued_) flag.store(false);
    hostTimings_.assign(size_t(program_.instructions_size()), Timing{});
    timed_ = timed;
    for (int i : part.skipped) recorded(i, program_.instructions(i));
    std::thread commThread;
    if (!part.collectives.empty()) commThread = std::thread([this, &part] { communicate(part); });
    if (comm_.queued() && !part.collectives.empty() && timed) {
      std::thread computeThread([this, &part] { computeLoop(part); });
      watchQueued(part);
      computeThread.join();
    } else {
      computeLoop(part);
    }
    if (commThread.joinable()) commThread.join();
  }

  double seconds(Clock::time_point t) const { return std::chrono::duration<double>(t - start_).count(); }

  // --die-at, --stop-at, --slow-at: this rank fails (or is slow) at this instruction.
  void faultIfAsked(int instruction) {
    const auto &f = options_.fault;
    if (!f || f->rank != rank_ || f->instruction != uint32_t(instruction)) return;
    using Fault = RunOptions::Fault;
    const char *what = f->kind == Fault::Die    ? "dying here, as --die-at asked"
                       : f->kind == Fault::Stop ? "stopping here (SIGSTOP), as --stop-at asked"
                       : f->kind == Fault::Hang ? "waiting here forever, as --hang-at asked"
                                                : "computing slowly here, as --slow-at asked";
    // The wall-clock time lets a test measure how long the job takes to end after it.
    const double now = std::chrono::duration<double>(
        std::chrono::system_clock::now().time_since_epoch()).count();
    std::fprintf(stderr, "moeplan-run: %s: %s (at %.3f s since the epoch)\n",
                 where(instruction).c_str(), what, now);
    std::fflush(stderr);
    if (f->kind == Fault::Die) std::raise(SIGKILL);
    if (f->kind == Fault::Stop) std::raise(SIGSTOP);  // the whole process, liveness thread too
    if (f->kind == Fault::Hang)  // alive, beating, but neither progressing nor computing
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    if (f->kind == Fault::Slow) {
      Busy busy(liveness_);
      std::this_thread::sleep_for(std::chrono::duration<double>(f->seconds));
    }
  }

  [[noreturn]] void abortRun(const std::string &message) { abortJob(message, &comm_); }

  // Marks this rank as computing for the liveness thread while in scope.
  struct Busy {
    explicit Busy(Liveness &l) : liveness(l) { liveness.busy(true); }
    ~Busy() { liveness.busy(false); }
    Liveness &liveness;
  };

  // Work queued on a device orders itself by the backend's events; the host flags say the
  // record has been issued, which a wait must follow.
  void waitOnDevice(const plan::Instruction &inst) {
    for (uint32_t e : inst.wait_events()) compute_.waitEvent(inst.stream(), e);
  }
  void recorded(int i, const plan::Instruction &inst) {
    issued_[size_t(i)].store(true, std::memory_order_release);
    if (inst.record_event() == 0) return;
    compute_.recordEvent(inst.stream(), inst.record_event());
    events_.record(inst.record_event());
  }

  void computeLoop(const Part &part) {
    for (int i : part.kernels) {
      const plan::Instruction &inst = program_.instructions(i);
      events_.wait(inst);
      waitOnDevice(inst);
      faultIfAsked(i);
      if (timed_) compute_.mark(inst.stream(), uint32_t(2 * i));
      try {
        Busy busy(liveness_);
        KernelCall &call = calls_[size_t(i)];
        // A routed kernel on its input's filled rows gives its output the rows outputFill
        // says; any other kernel's output holds every row.
        const plan::Kernel &k = inst.kernel();
        const RowFill *rows = routedRows_ && inst.routed() ? &fills_[k.inputs(0)] : nullptr;
        call.rows = rows && rows->known() ? rows : nullptr;
        RowFill outRows = call.rows ? outputFill(k, *call.rows) : RowFill{};
        compute_.launch(inst.stream(), call);
        if (call.rows && k.kind() == plan::GROUPED_GEMM && inst.layer() >= 0 &&
            size_t(2 * inst.layer() + 1) < expertRows_.size()) {
          expertRows_[size_t(2 * inst.layer())] += call.rows->filledRows();
          expertRows_[size_t(2 * inst.layer() + 1)] += call.rows->rows();
        }
        if (k.kind() == plan::DISPATCH && call.dispatchFill) setFill(k.outputs(0), *call.dispatchFill);
        else if (call.rows) setFill(k.outputs(0), std::move(outRows));
        else fills_[k.outputs(0)] = RowFill{};
      } catch (const std::exception &e) {
        abortRun(where(i) + ": " + e.what());
      }
      if (timed_) compute_.mark(inst.stream(), uint32_t(2 * i + 1));
      recorded(i, inst);
      liveness_.progressed();
      // MPI moves host-progressed operations only while the communication thread tests
      // them; where it shares a core with this thread, a yielding test waits out a whole
      // scheduler slice of compute (measured: a pipeline SEND of 64 KB completing 2-5 ms
      // after its receiver had the data; 0.3-0.4 ms with this). Offer the core between
      // kernels.
      if (hostOutstanding_.load(std::memory_order_relaxed) > 0) std::this_thread::yield();
    }
  }

  // Whether a host-progressed operation may read its inputs: their producers completed.
  bool inputsComplete(const plan::Instruction &inst) {
    for (uint32_t e : inst.wait_events())
      if (!compute_.eventComplete(e)) return false;
    return true;
  }

  CommRequest startCollective(int i) {
    const plan::Instruction &inst = program_.instructions(i);
    const plan::Collective &c = inst.collective();
    std::byte *in = nullptr, *out = nullptr;
    uint64_t inBytes = 0, outBytes = 0;
    if (c.kind() != plan::RECV) in = address(c.input()), inBytes = program_.buffers(int(c.input())).bytes();
    if (c.kind() != plan::SEND) out = address(c.output()), outBytes = program_.buffers(int(c.output())).bytes();
    try {
      // Routed: the filled rows only; every member of the group knows its input's rows the
      // same way (the same plan, the same options), so all of them take the same path.
      if (routedRows_ && inst.routed() && fills_[c.input()].known())
        return comm_.startRouted(i, c, in, out, rowBytes(c.input()), fills_[c.input()],
                                 &fills_[c.output()]);
      if (c.kind() != plan::SEND) fills_[c.output()] = RowFill{};
      return comm_.start(i, inst.stream(), c, in, inBytes, out, outBytes);
    } catch (const std::exception &e) {
      abortRun(where(i) + ": " + e.what());
    }
  }

  // Issues communication in the plan's global order: an instruction goes once every earlier
  // one has, its events are recorded, and (host-progressed) its stream's previous operation
  // has completed. Outstanding host operations progress while later ones wait.
  void communicate(const Part &part) {
    const std::vector<int> &collectives = part.collectives;
    const bool queued = comm_.queued();
    std::vector<int> busy(program_.streams(), -1);  // outstanding instruction per stream
    std::vector<CommRequest> outstanding;
    size_t next = 0;
    while (next < collectives.size() || !outstanding.empty()) {
      bool progressed = false;
      while (next < collectives.size()) {
        const int i = collectives[next];
        const plan::Instruction &inst = program_.instructions(i);
        if (queued) {
          events_.wait(inst);
          waitOnDevice(inst);
        } else if (busy[inst.stream()] >= 0 || !events_.ready(inst) || !inputsComplete(inst)) {
          break;
        }
        faultIfAsked(i);
        if (queued) {
          if (timed_) compute_.mark(inst.stream(), uint32_t(2 * i));
          startCollective(i);
          if (timed_) compute_.mark(inst.stream(), uint32_t(2 * i + 1));
          recorded(i, inst);
        } else {
          hostTimings_[size_t(i)].start = seconds(Clock::now());
          outstanding.push_back(startCollective(i));
          hostOutstanding_.store(int(outstanding.size()), std::memory_order_relaxed);
          busy[inst.stream()] = i;
        }
        ++next;
        progressed = true;
      }
      for (size_t o = 0; o < outstanding.size();) {
        bool complete = false;
        try {
          complete = comm_.test(outstanding[o]);
        } catch (const std::exception &e) {
          abortRun(where(outstanding[o].instruction) + ": " + e.what());
        }
        if (!complete) {
          ++o;
          continue;
        }
        const int i = outstanding[o].instruction;
        const plan::Instruction &inst = program_.instructions(i);
        hostTimings_[size_t(i)].end = seconds(Clock::now());
        busy[inst.stream()] = -1;
        issued_[size_t(i)].store(true);
        events_.record(inst.record_event());
        outstanding.erase(outstanding.begin() + std::ptrdiff_t(o));
        hostOutstanding_.store(int(outstanding.size()), std::memory_order_relaxed);
        progressed = true;
      }
      // A peer that stopped or deadlocked is the liveness thread's to find (Liveness.h).
      if (progressed) {
        liveness_.progressed();
      } else {
        // Nothing to progress and the next collective waits for an event: sleep until the
        // compute thread records one (a device's completion is not announced: poll). MPI
        // progresses only inside its calls, so with requests outstanding test again as soon
        // as the core is free: sleeping between tests (even 5 us, 50+ with timer slack)
        // stretched every collective and halved 2-rank throughput (README, ledger).
        if (outstanding.empty() && next < collectives.size() && !compute_.queued())
          events_.waitReady(program_.instructions(collectives[next]), std::chrono::milliseconds(1));
        else
          std::this_thread::yield();
      }
    }
  }

  // Queued communication (nccl): follows completion on the device through the timing marks
  // of issued instructions, in issue order per stream, and tells the liveness thread when
  // the device is computing (a stream's oldest unfinished work is a kernel that has
  // started) and when it progressed. Aborts on an asynchronous error of the communicators; a peer that stopped
  // or deadlocked is the liveness thread's to find.
  void watchQueued(const Part &part) {
    std::vector<std::vector<int>> perStream(program_.streams());
    for (int i = part.begin; i < part.end; ++i)
      perStream[program_.instructions(i).stream()].push_back(i);
    std::vector<size_t> done(perStream.size(), 0);
    std::optional<Busy> deviceBusy;
    for (;;) {
      bool progressed = false, finished = true, computing = false;
      for (size_t s = 0; s < perStream.size(); ++s) {
        while (done[s] < perStream[s].size()) {
          const int i = perStream[s][done[s]];
          if (!issued_[size_t(i)].load(std::memory_order_acquire)) break;
          if (!compute_.markComplete(uint32_t(2 * i + 1))) {
            // Running, not queued behind a wait: its start mark has passed.
            computing = computing || (program_.instructions(i).has_kernel() &&
                                      compute_.markComplete(uint32_t(2 * i)));
            break;
          }
          ++done[s];
          progressed = true;
        }
        finished = finished && done[s] == perStream[s].size();
      }
      if (finished) return;
      if (std::string error = comm_.asyncError(); !error.empty())
        abortRun("rank " + std::to_string(rank_) + ": " + comm_.name() + ": " + error);
      if (progressed) liveness_.progressed();
      if (computing && !deviceBusy) deviceBusy.emplace(liveness_);
      if (!computing) deviceBusy.reset();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  const plan::Plan &plan_;
  const uint32_t rank_;
  const RunOptions &options_;
  ComputeBackend &compute_;
  CommBackend &comm_;
  Liveness &liveness_;
  const plan::Program &program_;
  const AxisCoordinates axes_;
  std::vector<Part> parts_;
  std::vector<KernelCall> calls_;           // by instruction
  bool routedRows_ = false;                 // chooseRoutedRows
  // By buffer: the rows its last writer filled (RoutedRows.h; unknown: every row). Written by
  // the thread that runs the writer before it records its event, read after the wait.
  std::vector<RowFill> fills_;
  std::vector<int64_t> expertRows_;  // expertRows()
  std::vector<std::pair<int, std::vector<std::byte>>> inputs_;  // buffer, its bytes
  Events events_;
  // Host-progressed operations in flight (the communication thread's); read by the compute
  // thread, which then lets it test them between kernels.
  std::atomic<int> hostOutstanding_{0};
  std::vector<std::atomic<bool>> issued_;  // by instruction: issued (queued) or completed
  std::vector<Timing> hostTimings_;        // host-progressed communication of this pass
  bool timed_ = true;
  Clock::time_point start_;
  std::vector<Pass> passes_;
  // GENERATE: the part runs after which no decode step follows (no feeds_next_step SENDs),
  // and with --output each decode step's "step_logits" buffers of this rank, by buffer.
  std::vector<Part> lastRuns_;
  std::vector<std::map<int, std::vector<float>>> stepLogits_;
};

// Whether any rank failed; every rank learns the lowest failing rank.
int lowestFailingRank(bool failed, int rank) {
  int mine = failed ? rank : std::numeric_limits<int>::max(), lowest = 0;
  MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return lowest == std::numeric_limits<int>::max() ? -1 : lowest;
}

// Every rank calls this at the same point of start-up: true when some rank found a problem
// (each failing rank prints its own, the others say whom they stop for).
bool startupFailed(const std::string &problem, int rank) {
  const int lowest = lowestFailingRank(!problem.empty(), rank);
  if (lowest < 0) return false;
  if (!problem.empty())
    std::fprintf(stderr, "moeplan-run: error: rank %d: %s\n", rank, problem.c_str());
  else
    std::fprintf(stderr, "moeplan-run: error: rank %d: stopping before compute: rank %d could "
                         "not start (see its message)\n", rank, lowest);
  return true;
}

// -- after the run: outputs, measurements, trace, all gathered on rank 0 ------------------

// Rank 0 assembles every OUTPUT buffer of every rank into the full tensors (F32) and writes
// them. A GENERATE plan's: the prefill's "logits" (its buffers live through the program), and
// from the last generation "generated" (I32 ids) and "step_logits", the logits each id was
// chosen from.
void gatherOutputs(const plan::Plan &plan, RankRun &run, uint32_t rank, const std::string &path) {
  const bool generates = plan.workload().phase() == plan::GENERATE;
  std::map<std::string, FullTensor> tensors = gatherOutputTensors(
      plan, rank,
      [&](const plan::Buffer &b) {
        return !generates || (b.slice().tensor() != kStepLogits && b.slice().tensor() != "generated");
      },
      std::nullopt, [&](int b) { return run.bufferAsF32(b); });
  std::optional<RankRun::Generated> generated;
  if (generates) generated = run.gatherGenerated();
  if (rank != 0) return;
  checkpoint::SafetensorsWriter writer;
  for (const auto &[name, tensor] : tensors)
    writer.add(name, checkpoint::DType::F32, tensor.shape, tensor.data.data());
  if (generated) {
    const int64_t sequences = plan.workload().sequences();
    const int64_t tokens = int64_t(generated->ids.size()) / sequences;
    writer.add("generated", checkpoint::DType::I32, {sequences, tokens}, generated->ids.data());
    writer.add(kStepLogits, checkpoint::DType::F32, {sequences, tokens, int64_t(plan.model().vocab())},
               generated->logits.data());
  }
  writer.setMetadata("moeplan.plan", plan.name());
  writer.write(path);
}

// Rank 0 writes `input`'s tensors for the seed (what the ranks generated for their blocks).
void writeSeededInput(const plan::Plan &plan, uint64_t seed, const std::string &path) {
  checkpoint::SafetensorsWriter writer;
  std::map<std::string, bool> done;
  for (const plan::Program &prog : plan.programs())
    for (const plan::Buffer &b : prog.buffers()) {
      if (b.kind() != plan::INPUT || done[b.slice().tensor()]) continue;
      // A GENERATE plan's step tokens are chosen as it runs, not given.
      if (plan.workload().phase() == plan::GENERATE && b.slice().tensor() == kStepTokens) continue;
      done[b.slice().tensor()] = true;
      const std::vector<int64_t> full(b.slice().full_shape().begin(), b.slice().full_shape().end());
      int64_t elements = 1;
      for (int64_t d : full) elements *= d;
      if (b.dtype() == plan::I32) {
        std::vector<int32_t> data(static_cast<size_t>(elements));
        for (int64_t i = 0; i < elements; ++i)
          data[size_t(i)] = kernels::seededToken(seed, i / full[1], i % full[1], plan.model().vocab());
        writer.add(b.slice().tensor(), checkpoint::DType::I32, full, data.data());
      } else {
        std::vector<float> data(static_cast<size_t>(elements));
        const uint64_t key = kernels::streamKey(seed, b.slice().tensor());
        for (int64_t i = 0; i < elements; ++i) data[size_t(i)] = kernels::seededUniformAt(key, uint64_t(i));
        writer.add(b.slice().tensor(), checkpoint::DType::F32, full, data.data());
      }
    }
  writer.write(path);
}

// How the run was set up, for the report.
struct RunSetup {
  std::string backend, comm;
  std::vector<std::string> devices;        // per rank
  std::vector<double> arenaPlan, arenaAllocated;  // bytes per rank
  uint32_t iterations = 1, warmup = 0;
  bool graph = false;
  bool routedRows = false;  // the expert step ran on routed rows (RoutedRows.h), not padded
};

struct Measurements {
  std::vector<double> wall;                       // per rank: median over measured passes
  std::map<std::string, double> kernelSeconds;    // by kind, summed over ranks
  std::map<std::string, double> collectiveSeconds;
  // Of collectiveSeconds, by kind: the time each rank waited for the last member of the
  // instance (its group, or a transfer's peer) to issue it. Absent for GENERATE and --graph.
  std::map<std::string, double> collectiveWaitSeconds;
  std::map<std::string, uint64_t> kernelCounts, collectiveCounts;
  std::vector<int64_t> routed, dropped;           // [layer x expert], [layer]
  std::vector<int64_t> expertRows;  // [rank][layer][filled, capacity] of routed grouped GEMMs
  // GENERATE: rank 0's median generation, each time the slowest rank's (the ranks' clocks
  // start together at the barrier before each generation).
  std::optional<Generation> generation;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The measured pass whose wall time is this rank's median (the lower one of an even count).
size_t medianPass(const std::vector<Pass> &passes) {
  std::vector<size_t> order(passes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return passes[a].wall < passes[b].wall; });
  return order[(order.size() - 1) / 2];
}

// One communication instance across ranks: its group, the pair for a SEND/RECV (else -1),
// and its place in the plan's global communication order (Collective.sequence, unique within
// a group and within a pair).
using InstanceKey = std::tuple<uint32_t, int64_t, int64_t, uint64_t>;

InstanceKey instanceOf(const plan::Plan &plan, uint32_t rank, const plan::Collective &c) {
  for (const plan::GroupMembership &g : plan.ranks(int(rank)).groups()) {
    if (g.axis() != c.axis()) continue;
    if (c.kind() != plan::SEND && c.kind() != plan::RECV) return {g.group(), -1, -1, c.sequence()};
    const int64_t peer = plan.groups(int(g.group())).ranks(int(c.peer()));
    return {g.group(), std::min<int64_t>(rank, peer), std::max<int64_t>(rank, peer), c.sequence()};
  }
  return {UINT32_MAX, -1, -1, c.sequence()};  // validatePlan rules this out
}

// Per collective kind, summed over ranks (each rank's median over passes): how long ranks
// waited in their collectives for the instance's last member to issue it, from every rank's
// issue times on rank 0. The ranks' clocks are aligned by the barrier each pass starts
// with, to within its exit skew; a rank's wait in an instance is at most the instance's own
// time on that rank (it cannot complete before the last member issues it), so what a skewed
// clock puts beyond that is skew, not waiting, and is left out. Empty on other ranks.
std::map<std::string, double> gatherCollectiveWaits(const plan::Plan &plan, RankRun &run,
                                                    uint32_t rank) {
  const plan::Program &prog = run.program();
  const std::vector<Pass> &passes = run.passes();
  // Per pass, the issue time of each collective in program order, then their durations.
  std::vector<double> mine, durations;
  for (const Pass &pass : passes)
    for (int i = 0; i < prog.instructions_size(); ++i)
      if (prog.instructions(i).has_collective()) {
        const Timing &t = pass.timings[size_t(i)];
        mine.push_back(t.start);
        durations.push_back(t.end - t.start);
      }
  mine.insert(mine.end(), durations.begin(), durations.end());
  const int world = plan.ranks_size();
  std::vector<int> counts(static_cast<size_t>(world)), offsets(static_cast<size_t>(world), 0);
  const int count = int(mine.size());
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < world; ++r) offsets[size_t(r)] = total, total += rank == 0 ? counts[size_t(r)] : 0;
  std::vector<double> all(size_t(std::max(total, 1)));
  MPI_Gatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), offsets.data(), MPI_DOUBLE,
              0, MPI_COMM_WORLD);
  std::map<std::string, double> waits;
  if (rank != 0) return waits;
  // Each rank's collectives, and per (instance, pass) the last issue.
  struct Issued {
    const plan::Instruction *inst;
    InstanceKey key;
  };
  std::vector<std::vector<Issued>> issued(static_cast<size_t>(world));
  std::map<InstanceKey, std::vector<double>> last;
  for (int r = 0; r < world; ++r) {
    const plan::Program &p = plan.programs(int(plan.ranks(r).program()));
    for (const plan::Instruction &inst : p.instructions())
      if (inst.has_collective()) issued[size_t(r)].push_back({&inst, instanceOf(plan, uint32_t(r), inst.collective())});
    const size_t n = issued[size_t(r)].size();
    if (size_t(counts[size_t(r)]) != 2 * n * passes.size()) return {};  // not one layout per pass
    for (size_t pass = 0; pass < passes.size(); ++pass)
      for (size_t i = 0; i < n; ++i) {
        std::vector<double> &at = last[issued[size_t(r)][i].key];
        at.resize(passes.size(), -INFINITY);
        at[pass] = std::max(at[pass], all[size_t(offsets[size_t(r)]) + pass * n + i]);
      }
  }
  for (int r = 0; r < world; ++r) {
    const size_t n = issued[size_t(r)].size();
    std::map<std::string, std::vector<double>> perPass;
    for (size_t pass = 0; pass < passes.size(); ++pass) {
      std::map<std::string, double> sum;
      for (size_t i = 0; i < n; ++i) {
        const Issued &x = issued[size_t(r)][i];
        const size_t at = size_t(offsets[size_t(r)]) + pass * n + i;
        const double start = all[at], duration = all[at + n * passes.size()];
        sum[plan::CollectiveKind_Name(x.inst->collective().kind())] +=
            std::clamp(last[x.key][pass] - start, 0.0, std::max(duration, 0.0));
      }
      for (const auto &[kind, s] : sum) perPass[kind].push_back(s);
    }
    for (const auto &[kind, v] : perPass) waits[kind] += median(v);
  }
  return waits;
}

// Sums each rank's time per kind (the median over passes); values reach rank 0 only.
Measurements gatherMeasurements(const plan::Plan &plan, RankRun &run, uint32_t rank) {
  Measurements m;
  const uint32_t world = uint32_t(plan.ranks_size());
  // Fixed layout: one slot per kernel kind and per collective kind.
  const int kernelKinds = plan::KernelKind_ARRAYSIZE, collectiveKinds = plan::CollectiveKind_ARRAYSIZE;
  const size_t kinds = size_t(kernelKinds + collectiveKinds);
  std::vector<double> mine(2 * kinds, 0.0), sum(mine.size());
  const plan::Program &prog = run.program();
  const std::vector<Pass> &passes = run.passes();
  std::vector<std::vector<double>> perPass(kinds);
  for (const Pass &pass : passes) {
    if (pass.timings.empty()) continue;  // --graph: no per-instruction times
    std::vector<double> seconds(kinds, 0.0), counts(kinds, 0.0);
    for (int i = 0; i < prog.instructions_size(); ++i) {
      const Timing &t = pass.timings[size_t(i)];
      const plan::Instruction &inst = prog.instructions(i);
      const size_t slot = inst.has_kernel() ? size_t(inst.kernel().kind())
                                            : size_t(kernelKinds + inst.collective().kind());
      seconds[slot] += t.end - t.start;
      counts[slot] += 1;
    }
    for (size_t k = 0; k < kinds; ++k) {
      perPass[k].push_back(seconds[k]);
      mine[kinds + k] = counts[k];
    }
  }
  for (size_t k = 0; k < kinds; ++k) mine[k] = median(perPass[k]);
  // Counts here are kinds, ranks and layers x experts: bounded far below 2^31 by the
  // validator's model limits, unlike buffers (sendLarge/recvLarge).
  MPI_Reduce(mine.data(), sum.data(), int(mine.size()), MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  std::vector<double> walls;
  for (const Pass &pass : passes) walls.push_back(pass.wall);
  double wall = median(walls);
  m.wall.resize(world);
  MPI_Gather(&wall, 1, MPI_DOUBLE, m.wall.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  const size_t layers = plan.model().layers(), experts = plan.model().experts();
  RoutingCounts counts = run.counts();
  counts.routed.resize(layers * experts, 0);
  counts.dropped.resize(layers, 0);
  m.routed.resize(counts.routed.size());
  m.dropped.resize(counts.dropped.size());
  MPI_Reduce(counts.routed.data(), m.routed.data(), int(counts.routed.size()), MPI_INT64_T, MPI_SUM,
             0, MPI_COMM_WORLD);
  MPI_Reduce(counts.dropped.data(), m.dropped.data(), int(counts.dropped.size()), MPI_INT64_T,
             MPI_SUM, 0, MPI_COMM_WORLD);
  std::vector<int64_t> rows = run.expertRows();
  rows.resize(2 * layers, 0);
  m.expertRows.resize(rows.size() * world);
  MPI_Gather(rows.data(), int(rows.size()), MPI_INT64_T, m.expertRows.data(), int(rows.size()),
             MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (plan.workload().phase() == plan::GENERATE && !passes.empty()) {
    // One generation for every rank: rank 0's median.
    uint64_t chosen = medianPass(passes);
    MPI_Bcast(&chosen, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    const Generation &g = *passes[size_t(chosen)].generation;
    std::vector<double> times{g.ttft}, last(g.stepEnds.size() + 1);
    times.insert(times.end(), g.stepEnds.begin(), g.stepEnds.end());
    MPI_Reduce(times.data(), last.data(), int(times.size()), MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      m.generation = Generation{last[0], {}, {}};
      for (size_t k = 1; k < last.size(); ++k) m.generation->steps.push_back(last[k] - last[k - 1]);
    }
  }
  // Every rank takes part or none (the same condition everywhere: the plan and the flags).
  const bool timed = !passes.empty() && !passes.front().timings.empty();
  if (timed && plan.workload().phase() != plan::GENERATE)
    m.collectiveWaitSeconds = gatherCollectiveWaits(plan, run, rank);
  if (rank == 0)
    for (size_t k = 0; k < kinds; ++k) {
      const double count = sum[kinds + k];
      if (count == 0) continue;
      if (int(k) < kernelKinds) {
        const std::string name = plan::KernelKind_Name(plan::KernelKind(k));
        m.kernelSeconds[name] = sum[k];
        m.kernelCounts[name] = uint64_t(count);
      } else {
        const std::string name = plan::CollectiveKind_Name(plan::CollectiveKind(int(k) - kernelKinds));
        m.collectiveSeconds[name] = sum[k];
        m.collectiveCounts[name] = uint64_t(count);
      }
    }
  return m;
}

// Mean over EP positions of the routed load / its maximum (the simulator's definition).
double measuredLoadBalance(const plan::Plan &plan, const int64_t *routed) {
  const uint64_t experts = plan.model().experts();
  const uint64_t ep = std::max<uint32_t>(1, plan.strategy().ep());
  std::vector<double> load(ep, 0.0);
  for (uint64_t e = 0; e < experts; ++e) load[e * ep / experts] += double(routed[e]);
  const double max = *std::max_element(load.begin(), load.end());
  double mean = 0;
  for (double l : load) mean += l / double(ep);
  return max > 0 ? mean / max : 1;
}

// The capacity groups every DISPATCH of `layer` routes in, when they are all alike:
// {"tokens_per_group", "capacity"} (what a routing model needs to read the layer's drops);
// null when they differ (a GENERATE plan's prefill and decode steps) or there is none.
nlohmann::json dispatchGeometry(const plan::Plan &plan, int64_t layer) {
  nlohmann::json geometry;
  for (const plan::Program &program : plan.programs())
    for (const plan::Instruction &inst : program.instructions()) {
      if (!inst.has_kernel() || inst.kernel().kind() != plan::DISPATCH || inst.layer() != layer) continue;
      const plan::Kernel &k = inst.kernel();
      const nlohmann::json mine = {{"tokens_per_group", k.tokens() / std::max<int64_t>(1, k.groups())},
                                   {"capacity", k.capacity()}};
      if (geometry.is_null()) geometry = mine;
      else if (geometry != mine) return nullptr;
    }
  return geometry;
}

nlohmann::json reportJson(const plan::Plan &plan, const RunSetup &setup, const Measurements &m) {
  // A GENERATE run's tokens are the ones it generated.
  const double tokens = double(plan.workload().sequences()) *
                        double(m.generation ? m.generation->steps.size() + 1
                               : plan.workload().phase() == plan::DECODE ? 1
                                                                         : plan.workload().seq_len());
  const double slowest = *std::max_element(m.wall.begin(), m.wall.end());
  nlohmann::json j = {{"schema", "moeplan-run"},
                      {"version", 2},
                      {"plan", plan.name()},
                      {"ranks", plan.ranks_size()},
                      {"backend", setup.backend},
                      {"comm", setup.comm},
                      {"devices", setup.devices},
                      {"graph", setup.graph},
                      {"expert_rows", setup.routedRows ? "routed" : "padded"},
                      {"iterations", setup.iterations},
                      {"warmup", setup.warmup},
                      {"arena_bytes_per_rank", {{"plan", setup.arenaPlan}, {"allocated", setup.arenaAllocated}}},
                      {"wall_seconds_per_rank", m.wall},
                      {"tokens", tokens},
                      {"tokens_per_second", slowest > 0 ? tokens / slowest : 0.0}};
  nlohmann::json kernels = nlohmann::json::object(), collectives = nlohmann::json::object();
  for (const auto &[k, s] : m.kernelSeconds) kernels[k] = {{"seconds", s}, {"count", m.kernelCounts.at(k)}};
  for (const auto &[k, s] : m.collectiveSeconds) {
    collectives[k] = {{"seconds", s}, {"count", m.collectiveCounts.at(k)}};
    // Of `seconds`: waiting for the instance's last member (not measured under GENERATE).
    if (!m.collectiveWaitSeconds.empty())
      collectives[k]["wait_seconds"] = m.collectiveWaitSeconds.count(k) ? m.collectiveWaitSeconds.at(k) : 0.0;
  }
  j["kernel_seconds"] = kernels;  // summed over ranks
  j["collective_seconds"] = collectives;
  nlohmann::json layers = nlohmann::json::array();
  const int64_t experts = plan.model().experts();
  for (int64_t l = 0; experts > 0 && l < int64_t(plan.model().layers()); ++l) {
    const int64_t *routed = m.routed.data() + l * experts;
    int64_t choices = 0;
    for (int64_t e = 0; e < experts; ++e) choices += routed[e];
    if (choices == 0) continue;  // a dense layer
    nlohmann::json layer = {{"layer", l},
                            {"routed_per_expert", std::vector<int64_t>(routed, routed + experts)},
                            {"load_balance", measuredLoadBalance(plan, routed)},
                            {"dropped", m.dropped[size_t(l)]},
                            {"choices", choices}};
    if (nlohmann::json geometry = dispatchGeometry(plan, l); !geometry.is_null())
      layer["dispatch"] = geometry;
    // Filled / capacity rows of the expert GEMMs, per rank computing them: the mean and the
    // busiest rank (the routing model's meanFill and busiestFill).
    double sum = 0, busiest = 0;
    int computing = 0;
    const size_t perRank = 2 * size_t(plan.model().layers());
    for (size_t r = 0; perRank > 0 && r < m.expertRows.size() / perRank; ++r) {
      const int64_t filled = m.expertRows[r * perRank + size_t(2 * l)];
      const int64_t capacity = m.expertRows[r * perRank + size_t(2 * l + 1)];
      if (capacity == 0) continue;
      const double fill = double(filled) / double(capacity);
      sum += fill, busiest = std::max(busiest, fill), ++computing;
    }
    if (computing > 0) layer["expert_rows"] = {{"mean_fill", sum / computing}, {"busiest_fill", busiest}};
    layers.push_back(layer);
  }
  j["expert_load"] = layers;
  if (m.generation) {
    // Per generated token after the first: nearest-rank percentiles over the decode steps.
    const std::vector<double> &steps = m.generation->steps;
    double decodeSeconds = 0;
    for (double s : steps) decodeSeconds += s;
    const double p99 = nearestRankPercentile(steps, 0.99);
    j["generation"] = {
        {"new_tokens", steps.size() + 1},
        {"steps", steps.size()},
        {"ttft_s", m.generation->ttft},
        {"tpot_median_s", median(steps)},
        {"tpot_p99_s", p99},
        {"decode_tokens_per_s", decodeSeconds > 0 ? double(plan.workload().sequences()) *
                                                        double(steps.size()) / decodeSeconds
                                                  : 0.0}};
    // What compile predicted for the plan's own workload point (its cluster, the plan's
    // new_tokens), beside what this run measured.
    for (const plan::WorkloadPoint &w : plan.workload_points())
      if (w.seq_len() == plan.workload().seq_len() && w.ttft_s() > 0)
        j["generation"]["predicted"] = {{"ttft_s", w.ttft_s()},
                                        {"tpot_median_s", w.tpot_median_s()},
                                        {"tpot_p99_s", w.tpot_p99_s()},
                                        {"decode_tokens_per_s", w.decode_tokens_per_s()}};
  }
  return j;
}

std::string reportText(const nlohmann::json &j) {
  std::ostringstream out;
  const std::vector<double> wall = j["wall_seconds_per_rank"];
  const double total = [&] {
    double t = 0;
    for (double w : wall) t += w;
    return t;
  }();
  out << "moeplan-run: plan \"" << j["plan"].get<std::string>() << "\" on " << wall.size()
      << (wall.size() == 1 ? " rank\n" : " ranks\n");
  const std::vector<std::string> devices = j["devices"];
  out << "backend " << j["backend"].get<std::string>() << " (rank 0: " << devices.front() << "), comm "
      << j["comm"].get<std::string>() << ", expert step on " << j["expert_rows"].get<std::string>()
      << " rows";
  const uint32_t iterations = j["iterations"], warmup = j["warmup"];
  if (iterations > 1 || warmup > 0)
    out << "; " << iterations << (iterations == 1 ? " pass" : " passes") << " after " << warmup
        << " warm-up, median" << (j["graph"].get<bool>() ? ", replayed as a CUDA graph" : "");
  const std::vector<double> planned = j["arena_bytes_per_rank"]["plan"],
                            allocated = j["arena_bytes_per_rank"]["allocated"];
  out << "\narena per rank: " << formatBytes(*std::max_element(allocated.begin(), allocated.end()))
      << " allocated (plan: " << formatBytes(*std::max_element(planned.begin(), planned.end()))
      << ", largest rank)\n";
  out << "wall time per rank:";
  for (size_t r = 0; r < wall.size(); ++r) out << (r % 8 == 0 ? "\n " : "") << " " << r << ": " << formatSeconds(wall[r]);
  const bool generation = j.contains("generation");
  out << "\nthroughput: " << j["tokens"].get<double>()
      << (generation ? " generated tokens in " : " tokens in ")
      << formatSeconds(*std::max_element(wall.begin(), wall.end())) << " (slowest rank): "
      << j["tokens_per_second"].get<double>() << " tokens/s\n";
  if (generation) {
    const nlohmann::json &g = j["generation"];
    out << "generation: " << g["new_tokens"].get<uint64_t>() << " new tokens per sequence ("
        << g["steps"].get<uint64_t>() << " decode steps): time to first token "
        << formatSeconds(g["ttft_s"].get<double>()) << ", per output token "
        << formatSeconds(g["tpot_median_s"].get<double>()) << " median, "
        << formatSeconds(g["tpot_p99_s"].get<double>()) << " p99; decode "
        << g["decode_tokens_per_s"].get<double>() << " tokens/s\n";
    if (g.contains("predicted")) {
      const nlohmann::json &p = g["predicted"];
      out << "  predicted by compile (the plan's cluster): time to first token "
          << formatSeconds(p["ttft_s"].get<double>()) << ", per output token "
          << formatSeconds(p["tpot_median_s"].get<double>()) << " median, "
          << formatSeconds(p["tpot_p99_s"].get<double>()) << " p99; decode "
          << p["decode_tokens_per_s"].get<double>() << " tokens/s\n";
    }
  }
  auto table = [&](const char *title, const nlohmann::json &kinds) {
    out << title << " (summed over ranks; share of all ranks' wall time)\n";
    if (j["graph"].get<bool>()) out << "  not measured: a CUDA graph replays as one launch\n";
    else if (kinds.empty()) out << "  none\n";
    for (auto it = kinds.begin(); it != kinds.end(); ++it) {
      char line[160];
      const double s = it.value()["seconds"];
      std::snprintf(line, sizeof line, "  %-20s %6llu  %12s  %5.1f%%\n", it.key().c_str(),
                    (unsigned long long)it.value()["count"].get<uint64_t>(), formatSeconds(s).c_str(),
                    total > 0 ? 100 * s / total : 0.0);
      out << line;
    }
  };
  if (generation) out << "(kernel and collective times: the prefill and the median decode step)\n";
  table("time per kernel kind", j["kernel_seconds"]);
  table("time per collective", j["collective_seconds"]);
  if (!j["expert_load"].empty()) {
    out << "expert load (measured; balance = mean / max over EP positions)\n";
    for (const auto &l : j["expert_load"]) {
      char line[160];
      std::snprintf(line, sizeof line, "  layer %-3lld balance %5.1f%%, dropped %lld of %lld choices",
                    (long long)l["layer"].get<int64_t>(), 100 * l["load_balance"].get<double>(),
                    (long long)l["dropped"].get<int64_t>(), (long long)l["choices"].get<int64_t>());
      out << line;
      if (l.contains("expert_rows")) {
        std::snprintf(line, sizeof line, "; expert rows filled %5.1f%% mean, %5.1f%% busiest rank",
                      100 * l["expert_rows"]["mean_fill"].get<double>(),
                      100 * l["expert_rows"]["busiest_fill"].get<double>());
        out << line;
      }
      out << "\n";
    }
  }
  return out.str();
}

// Rank 0 collects every rank's timings of its median pass and writes them as a Perfetto trace.
// A GENERATE plan's: the median generation's prefill, then its median decode step where it
// ran (the other steps are left out).
void gatherTrace(const plan::Plan &plan, RankRun &run, uint32_t rank, const std::string &path) {
  std::vector<double> mine;
  for (const Timing &t : run.passes()[medianPass(run.passes())].timings) {
    mine.push_back(t.start);
    mine.push_back(t.end);
  }
  if (rank != 0) {
    sendLarge(mine.data(), mine.size(), MPI_DOUBLE, 0, kTraceTag, MPI_COMM_WORLD, mpiMaxCount());
    return;
  }
  std::vector<trace::TraceEvent> events;
  for (uint32_t r = 0; r < uint32_t(plan.ranks_size()); ++r) {
    const plan::Program &p = plan.programs(int(plan.ranks(int(r)).program()));
    std::vector<double> times(size_t(p.instructions_size()) * 2);
    if (r == 0) times = mine;
    else recvLarge(times.data(), times.size(), MPI_DOUBLE, int(r), kTraceTag, MPI_COMM_WORLD,
                   mpiMaxCount());
    for (int i = 0; i < p.instructions_size(); ++i) {
      const plan::Instruction &inst = p.instructions(i);
      trace::TraceEvent e;
      e.rank = r;
      e.stream = inst.stream();
      e.name = inst.label();
      e.category = inst.has_kernel() ? "kernel"
                   : (inst.collective().kind() == plan::SEND || inst.collective().kind() == plan::RECV) ? "p2p"
                                                                                                          : "collective";
      e.startSeconds = times[size_t(2 * i)];
      e.durationSeconds = std::max(0.0, times[size_t(2 * i + 1)] - times[size_t(2 * i)]);
      e.args["micro_batch"] = std::to_string(inst.micro_batch());
      e.args["instruction"] = std::to_string(i);
      if (plan.workload().phase() == plan::GENERATE)
        e.args["part"] = uint32_t(i) < p.decode_begin() ? "prefill" : "median decode step";
      events.push_back(std::move(e));
    }
  }
  files::writeAtomically(path, trace::renderTrace(events, trace::planStreamNames()));
}

// -- start-up: where the ranks are, which backends ------------------------------------------

// Every rank's host, local rank and visible devices, gathered over the world.
std::vector<RankPlace> gatherPlaces(int worldRank, int worldSize) {
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, worldRank, MPI_INFO_NULL, &local);
  int localRank = 0;
  MPI_Comm_rank(local, &localRank);
  MPI_Comm_free(&local);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(host, &length);
  std::vector<char> hosts(size_t(worldSize) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts.data(), MPI_MAX_PROCESSOR_NAME,
                MPI_CHAR, MPI_COMM_WORLD);
  int mine[2] = {localRank, visibleCudaDevices()};
  std::vector<int> all(size_t(worldSize) * 2);
  MPI_Allgather(mine, 2, MPI_INT, all.data(), 2, MPI_INT, MPI_COMM_WORLD);
  std::vector<RankPlace> places(static_cast<size_t>(worldSize));
  for (int r = 0; r < worldSize; ++r) {
    const char *h = hosts.data() + size_t(r) * MPI_MAX_PROCESSOR_NAME;
    places[size_t(r)].host.assign(h, strnlen(h, MPI_MAX_PROCESSOR_NAME));
    places[size_t(r)].localRank = uint32_t(all[size_t(2 * r)]);
    places[size_t(r)].devices = all[size_t(2 * r + 1)];
  }
  return places;
}

// The backends this run uses and the start-up problems of the choice ("" if none).
struct Choice {
  std::string backend, comm, problem;
  std::vector<std::string> notes;
};

Choice chooseBackends(const plan::Plan &plan, const RunOptions &options,
                      const std::vector<RankPlace> &places, int worldRank) {
  Choice c;
  const plan::DType dtype = plan.model().dtype();
  const bool halfPrecision = dtype == plan::F16 || dtype == plan::BF16;
  const RankPlace &me = places[size_t(worldRank)];
  c.backend = options.backend;
  if (c.backend.empty()) c.backend = halfPrecision && me.devices > 0 && haveCudaBackend() ? "cuda" : "cpu";
  if (c.backend == "cpu" && halfPrecision && options.backend.empty()) {
    c.problem = "the plan computes in " + plan::DType_Name(dtype) + ", which the CPU backend "
                "cannot; " + (haveCudaBackend() ? "this rank sees no CUDA device"
                                                : "this moeplan-run was built without CUDA") +
                " (compile with model.dtype FP32 to run on CPUs)";
    return c;
  }
  const PlacementCheck placement = checkPlacement(plan, places);
  c.notes = placement.notes;
  if (!placement.errors.empty()) {
    c.problem = placement.errors.front();
    return c;
  }
  c.comm = options.comm;
  if (c.comm.empty()) {
    c.comm = c.backend == "cuda" && placement.sharedDevices.empty() ? "nccl" : "mpi";
    if (c.backend == "cuda" && !placement.sharedDevices.empty())
      c.notes.push_back("communication over MPI through host memory: ranks " +
                        std::to_string(placement.sharedDevices.front().first) + " and " +
                        std::to_string(placement.sharedDevices.front().second) +
                        " (and maybe others) share a GPU, which NCCL refuses");
  }
  if (c.comm == "nccl" && c.backend != "cuda") {
    c.problem = "--comm nccl moves device memory; it needs --backend cuda";
  } else if (c.comm == "nccl" && !placement.sharedDevices.empty()) {
    const auto [first, second] = placement.sharedDevices.front();
    c.problem = "ranks " + std::to_string(first) + " and " + std::to_string(second) + " would share GPU " +
                std::to_string(places[first].device()) + " of host \"" + places[first].host +
                "\", which NCCL refuses: run one rank per GPU, or use --comm mpi";
  } else if (options.graph && c.backend != "cuda") {
    c.problem = "--graph captures a CUDA graph; it needs --backend cuda";
  } else if (options.graph && c.comm == "mpi" && plan.ranks_size() > 1) {
    c.problem = "--graph captures communication only with --comm nccl (MPI runs on the host)";
  } else if (options.graph && !options.trace.empty()) {
    c.problem = "--trace needs per-instruction times, which a CUDA graph replay does not give "
                "(drop --graph or --trace)";
  }
  return c;
}

} // namespace

int abandonRun(const std::string &problem) {
  int worldRank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  // Usually every rank has the same command line: the lowest failing rank speaks for all.
  if (lowestFailingRank(true, worldRank) == worldRank) std::fputs(problem.c_str(), stderr);
  return kExitUnusable;
}

int runPlan(const RunOptions &options, RunResult *result) {
  int worldRank = 0, worldSize = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);

  // Every rank reads and validates the plan itself, and every rank takes part in each
  // agreement below, so that a rank with a different or missing file stops its peers too.
  std::string problem;
  std::vector<planfile::PlanError> errors;
  std::optional<plan::Plan> plan = planfile::readPlanFile(options.planPath, errors);
  if (!plan)
    problem = planfile::formatErrors(options.planPath, errors);
  else if (plan->ranks_size() != worldSize)
    problem = options.planPath + ": the plan has " + std::to_string(plan->ranks_size()) +
              " ranks, but mpirun started " + std::to_string(worldSize) + " (run it with mpirun -np " +
              std::to_string(plan->ranks_size()) + ")";
  int threadLevel = 0;
  MPI_Query_thread(&threadLevel);
  if (problem.empty() && threadLevel < MPI_THREAD_MULTIPLE)
    problem = "the MPI library was initialised with thread level " + std::to_string(threadLevel) +
              "; moeplan-run needs MPI_THREAD_MULTIPLE (communication and liveness threads)";
  if (startupFailed(problem, worldRank)) return kExitUnusable;

  // From here every rank watches that every other is still there (Liveness.h) until all
  // have written their results: a rank that stops while loading its shard is found too.
  std::unique_ptr<ComputeBackend> compute;
  std::unique_ptr<CommBackend> comm;
  std::atomic<CommBackend *> commToAbort{nullptr};  // read by the liveness thread
  Liveness liveness(options.stallSeconds, [&](const std::string &message) {
    abortJob("rank " + std::to_string(worldRank) + ": " + message, commToAbort.load());
  });

  const std::vector<RankPlace> places = gatherPlaces(worldRank, worldSize);
  Choice choice = chooseBackends(*plan, options, places, worldRank);
  if (startupFailed(choice.problem, worldRank)) return kExitUnusable;
  if (worldRank == 0)
    for (const std::string &note : choice.notes) std::fprintf(stderr, "moeplan-run: note: %s\n", note.c_str());

  BackendOptions backendOptions;
  backendOptions.localRank = places[size_t(worldRank)].localRank;
  backendOptions.stallSeconds = options.stallSeconds;
  try {
    compute = makeComputeBackend(choice.backend, *plan, backendOptions);
    comm = makeCommBackend(choice.comm, *compute, backendOptions);
    commToAbort.store(comm.get());
  } catch (const std::exception &e) {
    problem = e.what();
  }
  if (startupFailed(problem, worldRank)) return kExitUnusable;
  try {
    comm->connect(*plan, uint32_t(worldRank));  // collective over the world
  } catch (const std::exception &e) {
    problem = e.what();
  }
  if (startupFailed(problem, worldRank)) return kExitUnusable;

  RankRun run(*plan, uint32_t(worldRank), options, *compute, *comm, liveness);
  try {
    run.prepare();
    if (worldRank == 0 && !options.writeInput.empty() && options.inputSeed)
      writeSeededInput(*plan, *options.inputSeed, options.writeInput);
  } catch (const std::exception &e) {
    problem = e.what();
  }
  // Nobody computes unless every rank is ready: a rank that cannot load its shard would
  // otherwise leave its peers waiting in their first collective.
  if (startupFailed(problem, worldRank)) return kExitUnusable;

  run.execute();
  if (result) {
    const Pass &pass = run.passes()[medianPass(run.passes())];
    result->wallSeconds = pass.wall;
    result->device = compute->device();
    result->instructionSeconds.clear();
    for (const Timing &t : pass.timings) result->instructionSeconds.push_back(t.end - t.start);
  }

  RunSetup setup;
  setup.backend = choice.backend;
  setup.comm = choice.comm;
  setup.iterations = options.iterations;
  setup.warmup = options.warmup ? *options.warmup : (options.iterations > 1 ? 1u : 0u);
  if (options.graph) setup.warmup = std::max(setup.warmup, 1u);
  setup.graph = options.graph;
  setup.routedRows = run.routedRows();
  int status = 0;
  try {
    // Devices and arena sizes of every rank (rank 0 reports them).
    const std::string device = compute->device();
    std::vector<char> names(size_t(worldSize) * 128);
    char mine[128] = {};
    std::snprintf(mine, sizeof mine, "%s", device.c_str());
    MPI_Gather(mine, 128, MPI_CHAR, names.data(), 128, MPI_CHAR, 0, MPI_COMM_WORLD);
    double arena[2] = {double(run.program().arena_bytes()), double(compute->allocatedBytes())};
    std::vector<double> arenas(size_t(worldSize) * 2);
    MPI_Gather(arena, 2, MPI_DOUBLE, arenas.data(), 2, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    for (int r = 0; r < worldSize; ++r) {
      setup.devices.emplace_back(names.data() + size_t(r) * 128);
      setup.arenaPlan.push_back(arenas[size_t(2 * r)]);
      setup.arenaAllocated.push_back(arenas[size_t(2 * r + 1)]);
    }
    if (!options.output.empty()) gatherOutputs(*plan, run, uint32_t(worldRank), options.output);
    Measurements m = gatherMeasurements(*plan, run, uint32_t(worldRank));
    if (!options.trace.empty()) gatherTrace(*plan, run, uint32_t(worldRank), options.trace);
    if (worldRank == 0) {
      nlohmann::json report = reportJson(*plan, setup, m);
      if (options.printReport) std::fputs(reportText(report).c_str(), stdout);
      if (!options.reportJson.empty()) {
        files::writeAtomically(options.reportJson, report.dump(1) + "\n");
      }
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "moeplan-run: error: rank %d: %s\n", worldRank, e.what());
    status = 1;
  }
  return status;
}

} // namespace moeplan::runtime
