#include "moeplan/Runtime/Executor.h"

#include "moeplan/Checkpoint/Safetensors.h"
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Runtime/Seeded.h"
#include "moeplan/Runtime/Slices.h"
#include "moeplan/Trace/Trace.h"

#include <mpi.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

// A problem with the plan, the world or the data, found before compute.
struct UnusableInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

size_t dtypeBytes(plan::DType t) { return t == plan::F32 || t == plan::I32 ? 4 : 0; }

MPI_Datatype mpiType(plan::DType t) { return t == plan::I32 ? MPI_INT32_T : MPI_FLOAT; }

// Events 1..n, each recorded once: the compute thread blocks on them, the communication
// thread polls them.
class Events {
public:
  explicit Events(uint32_t count) : recorded_(size_t(count) + 1) {
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

private:
  std::vector<std::atomic<bool>> recorded_;
  std::mutex mutex_;
  std::condition_variable changed_;
};

struct Timing {
  double start = -1, end = -1;  // seconds since the common start
};

class RankRun {
public:
  RankRun(const plan::Plan &plan, uint32_t rank, const RunOptions &options)
      : plan_(plan), rank_(rank), options_(options),
        program_(plan.programs(int(plan.ranks(int(rank)).program()))),
        axes_(axisCoordinates(plan, rank)), events_(program_.events()),
        timings_(size_t(program_.instructions_size())) {}

  ~RankRun() {
    for (auto &[axis, comm] : comms_) MPI_Comm_free(&comm);
  }

  // Collective over the world: one communicator per mesh axis (color: this rank's group).
  void createCommunicators() {
    for (const plan::GroupMembership &m : plan_.ranks(int(rank_)).groups()) {
      MPI_Comm comm;
      MPI_Comm_split(MPI_COMM_WORLD, int(m.group()), int(m.index()), &comm);
      comms_[m.axis()] = comm;
    }
  }

  // Local checks, the arena, weights and inputs. Throws UnusableInput.
  void prepare() {
    checkExecutable();
    arena_.reset(static_cast<std::byte *>(std::aligned_alloc(256, alignedArenaBytes())));
    if (!arena_) throw UnusableInput("cannot allocate the arena of " +
                                     std::to_string(program_.arena_bytes()) + " bytes");
    std::memset(arena_.get(), 0, alignedArenaBytes());
    loadWeights();
    loadInputs();
  }

  void execute() {
    MPI_Barrier(MPI_COMM_WORLD);
    start_ = Clock::now();
    std::thread comm([this] { communicate(); });
    computeLoop();
    comm.join();
    wallSeconds_ = seconds(Clock::now());
  }

  const plan::Program &program() const { return program_; }
  const std::vector<Timing> &timings() const { return timings_; }
  double wallSeconds() const { return wallSeconds_; }
  const std::vector<int64_t> &routed() const { return routed_; }
  const std::vector<int64_t> &dropped() const { return dropped_; }
  const std::byte *buffer(uint32_t b) const { return arena_.get() + program_.buffers(int(b)).offset(); }
  const AxisCoordinates &axes() const { return axes_; }

private:
  struct FreeDeleter {
    void operator()(std::byte *p) const { std::free(p); }
  };

  size_t alignedArenaBytes() const { return size_t((program_.arena_bytes() + 255) / 256 * 256 + 256); }

  double seconds(Clock::time_point t) const {
    return std::chrono::duration<double>(t - start_).count();
  }

  float *f32(uint32_t b) { return reinterpret_cast<float *>(arena_.get() + program_.buffers(int(b)).offset()); }
  int32_t *i32(uint32_t b) { return reinterpret_cast<int32_t *>(arena_.get() + program_.buffers(int(b)).offset()); }

  std::string where(int instruction) const {
    const plan::Instruction &inst = program_.instructions(instruction);
    return "rank " + std::to_string(rank_) + ", programs[" +
           std::to_string(plan_.ranks(int(rank_)).program()) + "].instructions[" +
           std::to_string(instruction) + "] \"" + inst.label() + "\" (micro-batch " +
           std::to_string(inst.micro_batch()) + ")";
  }

  // What this backend can run, beyond what validatePlan already guarantees.
  void checkExecutable() const {
    for (int b = 0; b < program_.buffers_size(); ++b) {
      const plan::Buffer &buf = program_.buffers(b);
      if (dtypeBytes(buf.dtype()) == 0)
        throw UnusableInput("programs[" + std::to_string(plan_.ranks(int(rank_)).program()) +
                            "].buffers[" + std::to_string(b) + "] \"" + buf.name() + "\" is " +
                            plan::DType_Name(buf.dtype()) +
                            "; the CPU backend computes in F32 (compile with model.dtype FP32)");
      if (buf.kind() == plan::KV_CACHE && plan_.workload().phase() == plan::DECODE)
        throw UnusableInput("the plan is a DECODE step, which reads a KV cache; moeplan-run "
                            "executes PREFILL plans (the cache they write is not kept)");
    }
    for (int i = 0; i < program_.instructions_size(); ++i) {
      const plan::Instruction &inst = program_.instructions(i);
      const bool isKernel = inst.has_kernel();
      if (isKernel != (inst.stream() == 0))
        throw UnusableInput(where(i) + ": " + (isKernel ? "a kernel" : "a collective") +
                            " on stream " + std::to_string(inst.stream()) +
                            "; moeplan-run runs kernels on stream 0 and communication on the others");
    }
  }

  void loadWeights() {
    if (options_.checkpoint.empty()) {
      for (const plan::Buffer &b : program_.buffers())
        if (b.kind() == plan::WEIGHT) throw UnusableInput("the plan has weights; give --checkpoint");
      return;
    }
    checkpoint::SafetensorsReader reader = checkpoint::SafetensorsReader::open(options_.checkpoint);
    for (int i = 0; i < program_.buffers_size(); ++i) {
      const plan::Buffer &b = program_.buffers(i);
      if (b.kind() != plan::WEIGHT) continue;
      const Block block = bufferBlock(i);
      reader.readBlock(b.slice().tensor(), checkpoint::DType::F32, fullShape(b), block.begin,
                       block.count, arena_.get() + b.offset());
    }
  }

  // The block of its full tensor that buffer `buffer` holds on this rank, checked to fill it.
  Block bufferBlock(int buffer) const {
    const plan::Buffer &b = program_.buffers(buffer);
    Block block = blockOf(b.slice(), axes_, plan_.strategy().micro_batches());
    if (uint64_t(block.elements()) * dtypeBytes(b.dtype()) != b.bytes())
      throw UnusableInput("buffers[" + std::to_string(buffer) + "] \"" + b.name() + "\" holds " +
                          std::to_string(b.bytes()) + " bytes, but its slice of \"" +
                          b.slice().tensor() + "\" has " + std::to_string(block.elements()) +
                          " elements");
    return block;
  }

  static std::vector<int64_t> fullShape(const plan::Buffer &b) {
    return {b.slice().full_shape().begin(), b.slice().full_shape().end()};
  }

  void loadInputs() {
    std::optional<checkpoint::SafetensorsReader> reader;
    if (!options_.input.empty()) reader = checkpoint::SafetensorsReader::open(options_.input);
    for (int i = 0; i < program_.buffers_size(); ++i) {
      const plan::Buffer &b = program_.buffers(i);
      if (b.kind() != plan::INPUT) continue;
      const Block block = bufferBlock(i);
      const std::vector<int64_t> full = fullShape(b);
      std::vector<std::byte> data(size_t(block.elements()) * 4);
      if (reader) {
        reader->readBlock(b.slice().tensor(),
                          b.dtype() == plan::I32 ? checkpoint::DType::I32 : checkpoint::DType::F32,
                          full, block.begin, block.count, data.data());
        if (b.dtype() == plan::I32) checkTokenIds(block, reinterpret_cast<const int32_t *>(data.data()));
      } else if (options_.inputSeed) {
        seededBlock(b.slice().tensor(), b.dtype(), full, block, data.data());
      } else {
        throw UnusableInput("the plan reads \"" + b.slice().tensor() +
                            "\"; give --input FILE or --input-seed N");
      }
      blockToBuffer(block, data.data(), arena_.get() + b.offset(), 4);
    }
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
    for (int64_t i = 0; i < block.elements(); ++i) {
      const int64_t s = block.begin[0] + i / (block.count[1] * inner);
      const int64_t p = block.begin[1] + (i / inner) % block.count[1];
      const int64_t c = i % inner;
      if (dtype == plan::I32)
        reinterpret_cast<int32_t *>(out)[i] = seededToken(*options_.inputSeed, s, p, plan_.model().vocab());
      else
        reinterpret_cast<float *>(out)[i] = seededUniform(
            *options_.inputSeed, tensor, uint64_t((s * full[1] + p) * inner + c));
    }
  }

  // -- execution --------------------------------------------------------------------------

  void faultIfAsked(int instruction) const {
    const auto &f = options_.fault;
    if (!f || f->rank != rank_ || f->instruction != uint32_t(instruction)) return;
    const bool die = f->kind == RunOptions::Fault::Die;
    std::fprintf(stderr, "moeplan-run: %s: %s here, as --%s asked\n", where(instruction).c_str(),
                 die ? "dying" : "hanging", die ? "die-at" : "hang-at");
    std::fflush(stderr);
    if (die) std::raise(SIGKILL);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  [[noreturn]] void abortRun(const std::string &message) const {
    std::fprintf(stderr, "moeplan-run: error: %s\n", message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, kAbortStatus);
    std::_Exit(kAbortStatus);
  }

  void computeLoop() {
    for (int i = 0; i < program_.instructions_size(); ++i) {
      const plan::Instruction &inst = program_.instructions(i);
      if (!inst.has_kernel()) continue;
      events_.wait(inst);
      faultIfAsked(i);
      timings_[size_t(i)].start = seconds(Clock::now());
      try {
        runKernel(inst);
      } catch (const std::exception &e) {
        abortRun(where(i) + ": " + e.what());
      }
      timings_[size_t(i)].end = seconds(Clock::now());
      events_.record(inst.record_event());
    }
  }

  void runKernel(const plan::Instruction &inst) {
    using namespace moeplan::kernels;
    const plan::Kernel &k = inst.kernel();
    auto in = [&](int i) { return k.inputs(i); };
    auto out = [&](int i) { return k.outputs(i); };
    switch (k.kind()) {
    case plan::EMBEDDING: {
      // The table is this rank's slice of embedding.weight; vocab_begin/end count from it.
      const plan::Buffer &table = program_.buffers(int(in(1)));
      const int64_t firstId = blockOf(table.slice(), axes_, plan_.strategy().micro_batches()).begin[0];
      embedding(i32(in(0)), f32(in(1)), f32(out(0)), k.m(), k.n(), firstId,
                firstId + k.vocab_begin(), firstId + k.vocab_end());
      return;
    }
    case plan::NORM:
      norm(f32(in(0)), f32(in(1)), k.inputs_size() > 2 ? f32(in(2)) : nullptr, f32(out(0)), k.m(),
           k.n(), k.norm() == plan::RMS_NORM ? NormKind::RmsNorm : NormKind::LayerNorm,
           float(k.epsilon()));
      return;
    case plan::GEMM:
      gemm(f32(in(0)), f32(in(1)), f32(out(0)), k.m(), k.n(), k.k(), k.transpose_b());
      return;
    case plan::ATTENTION:
      if (k.inputs_size() == 5)
        attentionDecode(f32(in(0)), f32(in(1)), f32(in(2)), f32(in(3)), f32(in(4)), f32(out(0)),
                        k.sequences(), k.kv_len(), k.heads(), k.kv_heads(), k.head_dim());
      else
        attentionPrefill(f32(in(0)), f32(in(1)), f32(in(2)), f32(out(0)), k.sequences(),
                         k.seq_len(), k.heads(), k.kv_heads(), k.head_dim());
      return;
    case plan::ACTIVATION_FUNCTION:
      if (k.activation() == plan::SWIGLU)
        activation(Activation::SwiGlu, f32(in(0)), f32(in(1)), f32(out(0)), k.m() * k.n());
      else
        activation(Activation::Gelu, nullptr, f32(in(0)), f32(out(0)), k.m() * k.n());
      return;
    case plan::ROUTER:
      router(f32(in(0)), i32(out(0)), f32(out(1)), k.tokens(), k.experts(), k.top_k());
      return;
    case plan::DISPATCH: {
      DispatchCounts counts;
      dispatch(f32(in(0)), i32(in(1)), f32(out(0)), i32(out(1)), k.tokens(), k.n(), k.experts(),
               k.top_k(), k.capacity(), k.groups(), &counts);
      recordDispatch(inst.layer(), counts);
      return;
    }
    case plan::GROUPED_GEMM:
      groupedGemm(f32(in(0)), f32(in(1)), f32(out(0)), k.groups(), k.m(), k.n(), k.k());
      return;
    case plan::COMBINE: {
      // Rows per expert of y: the capacity of every dispatch group together.
      const int64_t rows = int64_t(program_.buffers(int(in(0))).bytes() / 4) / (k.experts() * k.n());
      combine(f32(in(0)), i32(in(1)), i32(in(2)), f32(in(3)), f32(out(0)), k.tokens(), k.n(),
              k.experts(), rows, k.top_k());
      return;
    }
    case plan::ADD:
      add(f32(in(0)), f32(in(1)), f32(out(0)), k.n());
      return;
    case plan::TRANSPOSE:
      transpose(f32(in(0)), f32(out(0)), k.m(), k.n(), k.inner());
      return;
    case plan::BIAS_ADD:
      biasAdd(f32(in(0)), f32(in(1)), f32(out(0)), std::max<int64_t>(1, k.groups()), k.m(), k.n());
      return;
    default:
      throw std::invalid_argument("kernel kind " + plan::KernelKind_Name(k.kind()) +
                                  " has no CPU implementation");
    }
  }

  void recordDispatch(int32_t layer, const kernels::DispatchCounts &counts) {
    const int64_t experts = plan_.model().experts(), layers = plan_.model().layers();
    if (routed_.empty()) {
      routed_.assign(size_t(layers * experts), 0);
      dropped_.assign(size_t(layers), 0);
    }
    if (layer < 0 || layer >= layers || int64_t(counts.routed.size()) != experts) return;
    for (int64_t e = 0; e < experts; ++e) routed_[size_t(layer * experts + e)] += counts.routed[size_t(e)];
    dropped_[size_t(layer)] += counts.dropped;
  }

  // Posts communication in the plan's global order: an instruction is posted once every
  // earlier one is, its events are recorded, and its stream's previous instruction has
  // completed. Outstanding operations progress while later ones wait.
  void communicate() {
    std::vector<int> comm;
    for (int i = 0; i < program_.instructions_size(); ++i)
      if (program_.instructions(i).has_collective()) comm.push_back(i);
    std::vector<int> busy(program_.streams(), -1);  // outstanding instruction per stream
    std::vector<std::pair<int, MPI_Request>> outstanding;
    size_t next = 0;
    Clock::time_point lastProgress = Clock::now();
    while (next < comm.size() || !outstanding.empty()) {
      bool progressed = false;
      while (next < comm.size()) {
        const int i = comm[next];
        const plan::Instruction &inst = program_.instructions(i);
        if (busy[inst.stream()] >= 0 || !events_.ready(inst)) break;
        faultIfAsked(i);
        timings_[size_t(i)].start = seconds(Clock::now());
        outstanding.push_back({i, post(i)});
        busy[inst.stream()] = i;
        ++next;
        progressed = true;
      }
      for (size_t o = 0; o < outstanding.size();) {
        int done = 0;
        MPI_Test(&outstanding[o].second, &done, MPI_STATUS_IGNORE);
        if (!done) {
          ++o;
          continue;
        }
        const int i = outstanding[o].first;
        const plan::Instruction &inst = program_.instructions(i);
        timings_[size_t(i)].end = seconds(Clock::now());
        busy[inst.stream()] = -1;
        events_.record(inst.record_event());
        allToAllCounts_.erase(i);
        outstanding.erase(outstanding.begin() + std::ptrdiff_t(o));
        progressed = true;
      }
      const Clock::time_point now = Clock::now();
      if (progressed) {
        lastProgress = now;
      } else if (!outstanding.empty() &&
                 std::chrono::duration<double>(now - lastProgress).count() > options_.stallSeconds) {
        abortRun(where(outstanding.front().first) + ": no progress for " +
                 std::to_string(int(options_.stallSeconds)) +
                 " s; a peer has stopped or died (see its messages)");
      } else {
        // Many ranks share few cores here: give the compute thread the core.
        std::this_thread::sleep_for(std::chrono::microseconds(outstanding.empty() ? 20 : 5));
      }
    }
  }

  MPI_Request post(int i) {
    const plan::Collective &c = program_.instructions(i).collective();
    MPI_Comm comm = comms_.at(c.axis());
    MPI_Datatype type = mpiType(c.dtype());
    MPI_Request request = MPI_REQUEST_NULL;
    void *in = c.kind() == plan::RECV ? nullptr : arena_.get() + program_.buffers(int(c.input())).offset();
    void *out = c.kind() == plan::SEND ? nullptr : arena_.get() + program_.buffers(int(c.output())).offset();
    const int count = int(c.count());
    const int tag = int(c.sequence() % 32768);  // SEND/RECV pairs share their sequence
    switch (c.kind()) {
    case plan::ALL_REDUCE:
      MPI_Iallreduce(in == out ? MPI_IN_PLACE : in, out, count, type, MPI_SUM, comm, &request);
      break;
    case plan::ALL_GATHER:
      MPI_Iallgather(in, count, type, out, count, type, comm, &request);
      break;
    case plan::REDUCE_SCATTER:
      MPI_Ireduce_scatter_block(in, out, count, type, MPI_SUM, comm, &request);
      break;
    case plan::ALL_TO_ALL: {
      // MPI reads the count and displacement arrays until the request completes.
      auto &[sc, sd, rc, rd] = allToAllCounts_[i];
      sc.assign(c.send_counts().begin(), c.send_counts().end());
      rc.assign(c.recv_counts().begin(), c.recv_counts().end());
      sd.assign(sc.size(), 0);
      rd.assign(rc.size(), 0);
      for (size_t j = 1; j < sc.size(); ++j) sd[j] = sd[j - 1] + sc[j - 1];
      for (size_t j = 1; j < rc.size(); ++j) rd[j] = rd[j - 1] + rc[j - 1];
      MPI_Ialltoallv(in, sc.data(), sd.data(), type, out, rc.data(), rd.data(), type, comm, &request);
      break;
    }
    case plan::SEND:
      MPI_Isend(in, count, type, int(c.peer()), tag, comm, &request);
      break;
    case plan::RECV:
      MPI_Irecv(out, count, type, int(c.peer()), tag, comm, &request);
      break;
    default:
      abortRun(where(i) + ": collective kind " + plan::CollectiveKind_Name(c.kind()) + " is not supported");
    }
    return request;
  }

  const plan::Plan &plan_;
  const uint32_t rank_;
  const RunOptions &options_;
  const plan::Program &program_;
  const AxisCoordinates axes_;
  std::map<std::string, MPI_Comm> comms_;
  std::unique_ptr<std::byte, FreeDeleter> arena_;
  Events events_;
  std::vector<Timing> timings_;
  Clock::time_point start_;
  double wallSeconds_ = 0;
  std::vector<int64_t> routed_, dropped_;
  std::map<int, std::array<std::vector<int>, 4>> allToAllCounts_;  // by instruction, in flight
};

// Whether any rank failed; every rank learns the lowest failing rank.
int lowestFailingRank(bool failed, int rank) {
  int mine = failed ? rank : std::numeric_limits<int>::max(), lowest = 0;
  MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return lowest == std::numeric_limits<int>::max() ? -1 : lowest;
}

std::string formatSeconds(double s) {
  char buf[32];
  if (s >= 1) std::snprintf(buf, sizeof buf, "%.3f s", s);
  else if (s >= 1e-3) std::snprintf(buf, sizeof buf, "%.3f ms", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  return buf;
}


// -- after the run: outputs, measurements, trace, all gathered on rank 0 ------------------

constexpr int kOutputTag = 1, kTraceTag = 2;

// Rank 0 assembles every OUTPUT buffer of every rank into the full tensors and writes them.
void gatherOutputs(const plan::Plan &plan, const RankRun &run, uint32_t rank,
                   const std::string &path) {
  const uint32_t world = uint32_t(plan.ranks_size());
  auto outputsOf = [&](uint32_t r) {
    std::vector<int> list;
    const plan::Program &prog = plan.programs(int(plan.ranks(int(r)).program()));
    for (int b = 0; b < prog.buffers_size(); ++b)
      if (prog.buffers(b).kind() == plan::OUTPUT) list.push_back(b);
    return list;
  };
  if (rank != 0) {
    for (int b : outputsOf(rank)) {
      const plan::Buffer &buf = run.program().buffers(b);
      MPI_Send(run.buffer(uint32_t(b)), int(buf.bytes() / 4), MPI_FLOAT, 0, kOutputTag, MPI_COMM_WORLD);
    }
    return;
  }
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (uint32_t r = 0; r < world; ++r) {
    const plan::Program &prog = plan.programs(int(plan.ranks(int(r)).program()));
    const AxisCoordinates axes = axisCoordinates(plan, r);
    for (int b : outputsOf(r)) {
      const plan::Buffer &buf = prog.buffers(b);
      std::vector<float> data(static_cast<size_t>(buf.bytes() / 4));
      if (r == 0)
        std::memcpy(data.data(), run.buffer(uint32_t(b)), buf.bytes());
      else
        MPI_Recv(data.data(), int(data.size()), MPI_FLOAT, int(r), kOutputTag, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
      const Block block = blockOf(buf.slice(), axes, plan.strategy().micro_batches());
      std::vector<float> blockData(data.size());
      bufferToBlock(block, data.data(), blockData.data(), 4);
      const std::vector<int64_t> full(buf.slice().full_shape().begin(), buf.slice().full_shape().end());
      std::vector<float> &tensor = tensors[buf.slice().tensor()];
      int64_t elements = 1;
      for (int64_t d : full) elements *= d;
      tensor.resize(size_t(elements));
      shapes[buf.slice().tensor()] = full;
      // Scatter the block into the full tensor, skipping the padding past its extent.
      const size_t dims = full.size();
      std::vector<int64_t> index(dims, 0);
      for (int64_t i = 0; i < block.elements(); ++i) {
        int64_t rest = i, flat = 0;
        bool inside = true;
        for (size_t d = dims; d-- > 0;) {
          index[d] = block.begin[d] + rest % block.count[d];
          rest /= block.count[d];
        }
        for (size_t d = 0; d < dims; ++d) {
          inside = inside && index[d] < full[d];
          flat = flat * full[d] + index[d];
        }
        if (inside) tensor[size_t(flat)] = blockData[size_t(i)];
      }
    }
  }
  checkpoint::SafetensorsWriter writer;
  for (const auto &[name, data] : tensors)
    writer.add(name, checkpoint::DType::F32, shapes[name], data.data());
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
      done[b.slice().tensor()] = true;
      const std::vector<int64_t> full(b.slice().full_shape().begin(), b.slice().full_shape().end());
      int64_t elements = 1;
      for (int64_t d : full) elements *= d;
      if (b.dtype() == plan::I32) {
        std::vector<int32_t> data(static_cast<size_t>(elements));
        for (int64_t i = 0; i < elements; ++i)
          data[size_t(i)] = seededToken(seed, i / full[1], i % full[1], plan.model().vocab());
        writer.add(b.slice().tensor(), checkpoint::DType::I32, full, data.data());
      } else {
        std::vector<float> data(static_cast<size_t>(elements));
        for (int64_t i = 0; i < elements; ++i) data[size_t(i)] = seededUniform(seed, b.slice().tensor(), uint64_t(i));
        writer.add(b.slice().tensor(), checkpoint::DType::F32, full, data.data());
      }
    }
  writer.write(path);
}

struct Measurements {
  std::vector<double> wall;                       // per rank
  std::map<std::string, double> kernelSeconds;    // by kind, summed over ranks
  std::map<std::string, double> collectiveSeconds;
  std::map<std::string, uint64_t> kernelCounts, collectiveCounts;
  std::vector<int64_t> routed, dropped;           // [layer x expert], [layer]
};

// Sums each rank's time per kind; values reach rank 0 only.
Measurements gatherMeasurements(const plan::Plan &plan, const RankRun &run, uint32_t rank) {
  Measurements m;
  const uint32_t world = uint32_t(plan.ranks_size());
  // Fixed layout: one slot per kernel kind and per collective kind.
  const int kernelKinds = plan::KernelKind_ARRAYSIZE, collectiveKinds = plan::CollectiveKind_ARRAYSIZE;
  std::vector<double> mine(static_cast<size_t>(2 * (kernelKinds + collectiveKinds)), 0.0), sum(mine.size());
  const plan::Program &prog = run.program();
  for (int i = 0; i < prog.instructions_size(); ++i) {
    const Timing &t = run.timings()[size_t(i)];
    const plan::Instruction &inst = prog.instructions(i);
    const size_t slot = inst.has_kernel() ? size_t(inst.kernel().kind())
                                          : size_t(kernelKinds + inst.collective().kind());
    mine[slot] += t.end - t.start;
    mine[size_t(kernelKinds + collectiveKinds) + slot] += 1;
  }
  MPI_Reduce(mine.data(), sum.data(), int(mine.size()), MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  double wall = run.wallSeconds();
  m.wall.resize(world);
  MPI_Gather(&wall, 1, MPI_DOUBLE, m.wall.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  const size_t layers = plan.model().layers(), experts = plan.model().experts();
  std::vector<int64_t> routed = run.routed(), dropped = run.dropped();
  routed.resize(layers * experts, 0);
  dropped.resize(layers, 0);
  m.routed.resize(routed.size());
  m.dropped.resize(dropped.size());
  MPI_Reduce(routed.data(), m.routed.data(), int(routed.size()), MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(dropped.data(), m.dropped.data(), int(dropped.size()), MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0)
    for (int k = 0; k < kernelKinds + collectiveKinds; ++k) {
      const double count = sum[size_t(kernelKinds + collectiveKinds + k)];
      if (count == 0) continue;
      if (k < kernelKinds) {
        const std::string name = plan::KernelKind_Name(plan::KernelKind(k));
        m.kernelSeconds[name] = sum[size_t(k)];
        m.kernelCounts[name] = uint64_t(count);
      } else {
        const std::string name = plan::CollectiveKind_Name(plan::CollectiveKind(k - kernelKinds));
        m.collectiveSeconds[name] = sum[size_t(k)];
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

nlohmann::json reportJson(const plan::Plan &plan, const Measurements &m) {
  const double tokens = double(plan.workload().sequences()) *
                        double(plan.workload().phase() == plan::DECODE ? 1 : plan.workload().seq_len());
  const double slowest = *std::max_element(m.wall.begin(), m.wall.end());
  nlohmann::json j = {{"schema", "moeplan-run"},
                      {"version", 1},
                      {"plan", plan.name()},
                      {"ranks", plan.ranks_size()},
                      {"wall_seconds_per_rank", m.wall},
                      {"tokens", tokens},
                      {"tokens_per_second", slowest > 0 ? tokens / slowest : 0.0}};
  nlohmann::json kernels = nlohmann::json::object(), collectives = nlohmann::json::object();
  for (const auto &[k, s] : m.kernelSeconds) kernels[k] = {{"seconds", s}, {"count", m.kernelCounts.at(k)}};
  for (const auto &[k, s] : m.collectiveSeconds)
    collectives[k] = {{"seconds", s}, {"count", m.collectiveCounts.at(k)}};
  j["kernel_seconds"] = kernels;  // summed over ranks
  j["collective_seconds"] = collectives;
  nlohmann::json layers = nlohmann::json::array();
  const int64_t experts = plan.model().experts();
  for (int64_t l = 0; experts > 0 && l < int64_t(plan.model().layers()); ++l) {
    const int64_t *routed = m.routed.data() + l * experts;
    int64_t choices = 0;
    for (int64_t e = 0; e < experts; ++e) choices += routed[e];
    if (choices == 0) continue;  // a dense layer
    layers.push_back({{"layer", l},
                      {"routed_per_expert", std::vector<int64_t>(routed, routed + experts)},
                      {"load_balance", measuredLoadBalance(plan, routed)},
                      {"dropped", m.dropped[size_t(l)]},
                      {"choices", choices}});
  }
  j["expert_load"] = layers;
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
  out << "wall time per rank:";
  for (size_t r = 0; r < wall.size(); ++r) out << (r % 8 == 0 ? "\n " : "") << " " << r << ": " << formatSeconds(wall[r]);
  out << "\nthroughput: " << j["tokens"].get<double>() << " tokens in "
      << formatSeconds(*std::max_element(wall.begin(), wall.end())) << " (slowest rank): "
      << j["tokens_per_second"].get<double>() << " tokens/s\n";
  auto table = [&](const char *title, const nlohmann::json &kinds) {
    out << title << " (summed over ranks; share of all ranks' wall time)\n";
    if (kinds.empty()) out << "  none\n";
    for (auto it = kinds.begin(); it != kinds.end(); ++it) {
      char line[160];
      const double s = it.value()["seconds"];
      std::snprintf(line, sizeof line, "  %-20s %6llu  %12s  %5.1f%%\n", it.key().c_str(),
                    (unsigned long long)it.value()["count"].get<uint64_t>(), formatSeconds(s).c_str(),
                    total > 0 ? 100 * s / total : 0.0);
      out << line;
    }
  };
  table("time per kernel kind", j["kernel_seconds"]);
  table("time per collective", j["collective_seconds"]);
  if (!j["expert_load"].empty()) {
    out << "expert load (measured; balance = mean / max over EP positions)\n";
    for (const auto &l : j["expert_load"]) {
      char line[160];
      std::snprintf(line, sizeof line, "  layer %-3lld balance %5.1f%%, dropped %lld of %lld choices\n",
                    (long long)l["layer"].get<int64_t>(), 100 * l["load_balance"].get<double>(),
                    (long long)l["dropped"].get<int64_t>(), (long long)l["choices"].get<int64_t>());
      out << line;
    }
  }
  return out.str();
}

// Rank 0 collects every rank's timings and writes them as a Perfetto trace.
void gatherTrace(const plan::Plan &plan, const RankRun &run, uint32_t rank, const std::string &path) {
  std::vector<double> mine;
  for (const Timing &t : run.timings()) {
    mine.push_back(t.start);
    mine.push_back(t.end);
  }
  if (rank != 0) {
    MPI_Send(mine.data(), int(mine.size()), MPI_DOUBLE, 0, kTraceTag, MPI_COMM_WORLD);
    return;
  }
  std::vector<trace::TraceEvent> events;
  for (uint32_t r = 0; r < uint32_t(plan.ranks_size()); ++r) {
    const plan::Program &p = plan.programs(int(plan.ranks(int(r)).program()));
    std::vector<double> times(size_t(p.instructions_size()) * 2);
    if (r == 0) times = mine;
    else MPI_Recv(times.data(), int(times.size()), MPI_DOUBLE, int(r), kTraceTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
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
      events.push_back(std::move(e));
    }
  }
  std::ofstream out(path);
  out << trace::renderTrace(events, trace::planStreamNames());
  if (!out) throw std::runtime_error(path + ": cannot write the trace");
}

} // namespace

} // namespace moeplan::runtime

namespace moeplan::runtime {

int runPlan(const RunOptions &options) {
  int worldRank = 0, worldSize = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
  auto fail = [&](const std::string &message) {
    std::fprintf(stderr, "moeplan-run: error: rank %d: %s\n", worldRank, message.c_str());
    return kExitUnusable;
  };

  // Every rank reads and validates the plan itself: all reach the same verdict.
  std::vector<planfile::PlanError> errors;
  std::optional<plan::Plan> plan = planfile::readPlanFile(options.planPath, errors);
  if (!plan) return fail(planfile::formatErrors(options.planPath, errors));
  if (plan->ranks_size() != worldSize)
    return fail(options.planPath + ": the plan has " + std::to_string(plan->ranks_size()) +
                " ranks, but mpirun started " + std::to_string(worldSize) + " (run it with mpirun -np " +
                std::to_string(plan->ranks_size()) + ")");

  RankRun run(*plan, uint32_t(worldRank), options);
  run.createCommunicators();
  std::string problem;
  try {
    run.prepare();
    if (worldRank == 0 && !options.writeInput.empty() && options.inputSeed)
      writeSeededInput(*plan, *options.inputSeed, options.writeInput);
  } catch (const std::exception &e) {
    problem = e.what();
  }
  // Nobody computes unless every rank is ready: a rank that cannot load its shard would
  // otherwise leave its peers waiting in their first collective.
  if (int lowest = lowestFailingRank(!problem.empty(), worldRank); lowest >= 0) {
    if (!problem.empty()) return fail(problem);
    return fail("stopping before compute: rank " + std::to_string(lowest) + " could not start (see its message)");
  }

  run.execute();

  int status = 0;
  try {
    if (!options.output.empty()) gatherOutputs(*plan, run, uint32_t(worldRank), options.output);
    Measurements m = gatherMeasurements(*plan, run, uint32_t(worldRank));
    if (!options.trace.empty()) gatherTrace(*plan, run, uint32_t(worldRank), options.trace);
    if (worldRank == 0) {
      nlohmann::json report = reportJson(*plan, m);
      if (options.printReport) std::fputs(reportText(report).c_str(), stdout);
      if (!options.reportJson.empty()) {
        std::ofstream out(options.reportJson);
        out << report.dump(1) << "\n";
        if (!out) throw std::runtime_error(options.reportJson + ": cannot write");
      }
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "moeplan-run: error: rank %d: %s\n", worldRank, e.what());
    status = 1;
  }
  return status;
}

} // namespace moeplan::runtime
