#include "moeplan/Runtime/Calibrate.h"

#include "moeplan/Runtime/Backend.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace moeplan::runtime {

namespace {

using Clock = std::chrono::steady_clock;

// A plan only as far as the backends read one: the world's ranks, and for each group size k
// in 2..world an axis "k" whose group 0 holds ranks 0..k-1 (the rest form group 1, idle
// while group 0 is measured: every rank must join every split).
plan::Plan calibrationPlan(int world) {
  plan::Plan p;
  p.mutable_model()->set_dtype(plan::F32);
  for (int r = 0; r < world; ++r) {
    plan::Rank &rank = *p.add_ranks();
    for (int k = 2; k <= world; ++k) {
      plan::GroupMembership &m = *rank.add_groups();
      m.set_axis(std::to_string(k));
      m.set_group(r < k ? 0 : 1);
      m.set_index(uint32_t(r < k ? r : r - k));
    }
  }
  return p;
}

class Calibration {
public:
  Calibration(const CalibrateOptions &o, int rank, int world)
      : options_(o), rank_(rank), world_(world), plan_(calibrationPlan(world)) {
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    int localRank = 0;
    MPI_Comm_rank(local, &localRank);
    MPI_Comm_free(&local);
    BackendOptions b;
    b.localRank = uint32_t(localRank);
    compute_ = makeComputeBackend(o.backend, plan_, b);
    comm_ = makeCommBackend(o.comm, *compute_, b);
    comm_->connect(plan_, uint32_t(rank));
    // The largest operands: a GEMM's a, b, c; a collective's in and out (an all-gather's
    // output is the whole S; a reduce-scatter's input too).
    const uint64_t w = uint64_t(o.gemmWidth), rows = uint64_t(*std::max_element(o.gemmRows.begin(), o.gemmRows.end()));
    const uint64_t gemmBytes = 4 * (rows * w + w * w + rows * w);
    const uint64_t commBytes = 2 * *std::max_element(o.collectiveBytes.begin(), o.collectiveBytes.end()) + 64;
    bytes_ = std::max<uint64_t>({gemmBytes, commBytes, 4 * kAttentionElements * 4, 3 * kMemoryBytes});
    compute_->allocate(bytes_, 1, 1, 2);
    if (o.backend == "cpu") {
      // No more than an eighth of each rank's share of the host's memory.
      const double share = hostMemoryPerRank(world);
      evict_.assign(std::min(lastLevelCacheBytes(), size_t(std::max(1.0, share / 8))), 1);
    }
    std::vector<float> fill(bytes_ / 4, 0.01f);
    compute_->upload(compute_->arena(), fill.data(), bytes_ / 4 * 4);
  }

  nlohmann::json run() {
    // The collective points whose sizes split evenly into their groups' pieces.
    struct Point {
      int ranks;
      plan::CollectiveKind kind;
      uint64_t bytes;
    };
    std::vector<Point> points;
    for (int k = 2; k <= world_; ++k)
      for (plan::CollectiveKind kind : {plan::ALL_REDUCE, plan::ALL_GATHER, plan::REDUCE_SCATTER,
                                        plan::ALL_TO_ALL, plan::SEND})
        for (uint64_t bytes : options_.collectiveBytes)
          if (splits(k, kind, bytes)) points.push_back({k, kind, bytes});
    // Every measurement advances the progress once (repeated() or cold()): the GEMMs,
    // attention, memory, launch, the kRateKernels below, and each collective point (twice on
    // the host: alone on evicted caches, then back to back).
    const size_t timingsPerPoint = evict_.empty() ? 1 : 2;  // cold and warm on the host
    ProgressCounter progress(options_.progress, options_.gemmRows.size() + 3 + kRateKernels +
                                                    timingsPerPoint * points.size() +
                                                    (world_ > 1 ? 1 : 0));
    progress_ = &progress;
    nlohmann::json j = {{"schema", "moeplan-calibration"}, {"version", 1}, {"ranks", world_},
                        {"backend", options_.backend}, {"comm", options_.comm},
                        {"device", compute_->device()}};
    if (options_.backend == "cpu") j["host_memory_bytes"] = hostMemoryPerRank(world_);
    nlohmann::json gemms = nlohmann::json::array();
    const int64_t w = options_.gemmWidth;
    for (int64_t m : options_.gemmRows)
      gemms.push_back({{"m", m}, {"n", w}, {"k", w}, {"seconds", kernelSeconds(gemm(m, w, w))}});
    j["gemm"] = gemms;
    j["attention"] = {{"sequences", kSequences}, {"seq_len", kSeqLen}, {"heads", kHeads},
                      {"head_dim", kHeadDim}, {"seconds", kernelSeconds(attention())}};
    const int64_t elements = int64_t(kMemoryBytes / 4);
    j["memory"] = {{"bytes", 3 * 4 * elements}, {"seconds", kernelSeconds(add(elements))}};
    j["launch_seconds"] = kernelSeconds(add(1));
    // The kernels the memory roofline may misjudge (kRateKernels), each with its operands'
    // bytes.
    nlohmann::json kernels = nlohmann::json::array();
    auto measure = [&](const char *variant, std::unique_ptr<Call> c, uint64_t bytes) {
      const std::string kind = plan::KernelKind_Name(c->kernel.kind());
      kernels.push_back({{"kind", kind}, {"variant", variant}, {"bytes", bytes},
                         {"seconds", kernelSeconds(std::move(c))}});
    };
    const uint64_t rowBytes = 4 * uint64_t(kRateRows * kRateWidth);
    measure("LAYER_NORM", norm(plan::LAYER_NORM), 2 * rowBytes + 2 * 4 * kRateWidth);
    measure("RMS_NORM", norm(plan::RMS_NORM), 2 * rowBytes + 4 * kRateWidth);
    measure("GELU", activation(plan::GELU), 2 * rowBytes);
    measure("SWIGLU", activation(plan::SWIGLU), 3 * rowBytes);
    const uint64_t tokens = kMemoryBytes / (4 * kRouterExperts);
    measure("ROUTER", router(int64_t(tokens)),
            4 * tokens * kRouterExperts + 2 * 4 * tokens * kRouterTopK);
    j["kernels"] = kernels;
    nlohmann::json collectives = nlohmann::json::array();
    for (const Point &p : points) {
      nlohmann::json c = {{"kind", plan::CollectiveKind_Name(p.kind)}, {"ranks", p.ranks},
                          {"bytes", p.bytes}};
      // On the host, a pass's kernels stream their weights through the caches between two
      // collectives, so the fit reads each collective timed alone on evicted caches
      // ("seconds"); back to back, the same buffers stay cached ("warm_seconds").
      c["seconds"] = collectiveSeconds(p.ranks, p.kind, p.bytes, !evict_.empty());
      if (!evict_.empty()) c["warm_seconds"] = collectiveSeconds(p.ranks, p.kind, p.bytes, false);
      collectives.push_back(c);
    }
    j["collectives"] = collectives;
    if (!evict_.empty()) j["evicted_bytes"] = evict_.size();
    if (world_ > 1) j["skew"] = skew();
    progress.finish();
    progress_ = nullptr;
    return rank_ == 0 ? j : nlohmann::json();
  }

private:
  static constexpr int64_t kSequences = 2, kSeqLen = 128, kHeads = 8, kHeadDim = 64;
  static constexpr int64_t kAttentionElements = kSequences * kSeqLen * kHeads * kHeadDim;
  static constexpr uint64_t kMemoryBytes = 16 << 20;  // per operand: past the caches
  // Norms and activation functions over kRateRows x kRateWidth (kMemoryBytes per operand);
  // the router over kMemoryBytes of logits.
  static constexpr int64_t kRateWidth = 1024, kRateRows = int64_t(kMemoryBytes / 4 / kRateWidth);
  static constexpr int64_t kRouterExperts = 64, kRouterTopK = 2;
  static constexpr size_t kRateKernels = 5;  // LAYER_NORM, RMS_NORM, GELU, SWIGLU, ROUTER
  static constexpr int64_t kSkewRows = 64;     // the skew stretch's GEMMs: kSkewRows x width x width
  static constexpr int kSkewRepetitions = 12;
  // Collectives on evicted caches: a sweep of the last-level cache per repetition costs tens
  // of milliseconds, so few repetitions, and their median.
  static constexpr int kColdRepetitions = 16, kColdMinRepetitions = 5;

  std::byte *at(uint64_t offset) { return compute_->arena() + offset; }

  // Kernels on operands laid out one after another from the arena's start.
  struct Call {
    plan::Kernel kernel;
    KernelCall call;
  };
  std::unique_ptr<Call> gemm(int64_t m, int64_t n, int64_t k) {
    auto c = std::make_unique<Call>();
    c->kernel.set_kind(plan::GEMM);
    c->kernel.set_m(m), c->kernel.set_n(n), c->kernel.set_k(k);
    c->call.in = {at(0), at(uint64_t(4 * m * k))};
    c->call.out = {at(uint64_t(4 * (m * k + k * n)))};
    return c;
  }
  std::unique_ptr<Call> attention() {
    auto c = std::make_unique<Call>();
    plan::Kernel &k = c->kernel;
    k.set_kind(plan::ATTENTION);
    k.set_sequences(kSequences), k.set_seq_len(kSeqLen), k.set_kv_len(kSeqLen);
    k.set_heads(kHeads), k.set_kv_heads(kHeads), k.set_head_dim(kHeadDim);
    const uint64_t each = 4 * kAttentionElements;
    c->call.in = {at(0), at(each), at(2 * each)};
    c->call.out = {at(3 * each)};
    return c;
  }
  std::unique_ptr<Call> add(int64_t n) {
    auto c = std::make_unique<Call>();
    c->kernel.set_kind(plan::ADD);
    c->kernel.set_n(n);
    c->call.in = {at(0), at(kMemoryBytes)};
    c->call.out = {at(2 * kMemoryBytes)};
    return c;
  }

  std::unique_ptr<Call> norm(plan::NormKind kind) {
    auto c = std::make_unique<Call>();
    plan::Kernel &k = c->kernel;
    k.set_kind(plan::NORM), k.set_norm(kind), k.set_epsilon(1e-5);
    k.set_m(kRateRows), k.set_n(kRateWidth);
    c->call.in = {at(0), at(kMemoryBytes)};
    if (kind == plan::LAYER_NORM) c->call.in.push_back(at(kMemoryBytes + 4 * kRateWidth));
    c->call.out = {at(2 * kMemoryBytes)};
    return c;
  }
  std::unique_ptr<Call> activation(plan::ActivationKind kind) {
    auto c = std::make_unique<Call>();
    plan::Kernel &k = c->kernel;
    k.set_kind(plan::ACTIVATION_FUNCTION), k.set_activation(kind);
    k.set_m(kRateRows), k.set_n(kRateWidth);
    c->call.in = {at(0)};
    if (kind == plan::SWIGLU) c->call.in.push_back(at(kMemoryBytes));
    c->call.out = {at(2 * kMemoryBytes)};
    return c;
  }
  std::unique_ptr<Call> router(int64_t tokens) {
    auto c = std::make_unique<Call>();
    plan::Kernel &k = c->kernel;
    k.set_kind(plan::ROUTER), k.set_tokens(tokens), k.set_experts(kRouterExperts);
    k.set_top_k(kRouterTopK), k.set_renormalize(true);
    c->call.in = {at(0)};
    c->call.out = {at(kMemoryBytes), at(2 * kMemoryBytes)};
    return c;
  }

  // Repeats `once` in batches that double until a batch takes secondsPerPoint on the slowest
  // rank (every rank runs the same batches), after one unmeasured call; seconds per call.
  template <class F> double repeated(F &&once, bool member = true) {
    if (member) once();
    compute_->synchronize();
    for (int64_t batch = 1;; batch *= 2) {
      MPI_Barrier(MPI_COMM_WORLD);
      const Clock::time_point start = Clock::now();
      if (member)
        for (int64_t i = 0; i < batch; ++i) once();
      compute_->synchronize();
      double elapsed = std::chrono::duration<double>(Clock::now() - start).count(), slowest = 0;
      MPI_Allreduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (slowest >= options_.secondsPerPoint || batch >= (1 << 16)) {
        progress_->advance();
        return slowest / double(batch);
      }
    }
  }

  // Each rank's share of the host's physical memory.
  static double hostMemoryPerRank(int world) {
    return double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE)) / world;
  }

  // The last-level cache's size (what a sweep must cover to evict the caches): the C
  // library's, else sysfs's, else 64 MiB; at most 1 GiB.
  static size_t lastLevelCacheBytes() {
    long bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (bytes <= 0) {
      std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index3/size");
      std::string text;
      if (in >> text && !text.empty()) {
        const char unit = text.back();
        bytes = std::atol(text.c_str()) * (unit == 'K' ? 1024L : unit == 'M' ? 1L << 20 : 1L);
      }
    }
    if (bytes <= 0) bytes = 64L << 20;
    return std::min<size_t>(size_t(bytes), size_t(1) << 30);
  }

  // `once` timed alone, kColdRepetitions times (fewer when they add up to secondsPerPoint):
  // every rank first writes a sweep over the last-level cache's size, then the ranks meet;
  // per repetition the slowest rank's time from the meeting; the median over repetitions.
  template <class F> double cold(F &&once, bool member) {
    if (member) once();
    std::vector<double> times;
    double total = 0;
    for (int rep = 0; rep < kColdRepetitions && (rep < kColdMinRepetitions ||
                                                 total < options_.secondsPerPoint);
         ++rep) {
      for (size_t i = 0; i < evict_.size(); i += 64) evict_[i] = char(evict_[i] + 1);
      MPI_Barrier(MPI_COMM_WORLD);
      const Clock::time_point start = Clock::now();
      if (member) once();
      double elapsed = std::chrono::duration<double>(Clock::now() - start).count(), slowest = 0;
      MPI_Allreduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      times.push_back(slowest);
      total += slowest;
    }
    progress_->advance();
    std::nth_element(times.begin(), times.begin() + ptrdiff_t(times.size() / 2), times.end());
    return times[times.size() / 2];
  }

  // How far apart ranks with equal work reach a synchronization: every rank runs the same
  // stretch of GEMMs (0, 1, 4 and 16 of kSkewRows rows), then an all-reduce of 4 bytes over
  // all ranks; a rank's wait is from its stretch's end to the all-reduce's return. Each point
  // is the mean over kSkewRepetitions and over ranks; the stretch of none gives the
  // all-reduce's own time and the barrier's exit skew, which the fit subtracts.
  nlohmann::json skew() {
    auto g = gemm(kSkewRows, options_.gemmWidth, options_.gemmWidth);
    g->call.kernel = &g->kernel;
    plan::Collective meet;
    meet.set_kind(plan::ALL_REDUCE);
    meet.set_axis(std::to_string(world_));
    meet.set_dtype(plan::F32);
    meet.set_count(1);
    std::byte *in = at(bytes_ / 2), *out = at(bytes_ / 2 + 64);
    uint64_t sequence = 0;
    nlohmann::json points = nlohmann::json::array();
    for (int64_t gemms : {0, 1, 4, 16}) {
      double mine[2] = {0, 0}, all[2] = {0, 0};  // stretch, wait
      for (int rep = 0; rep < kSkewRepetitions; ++rep) {
        MPI_Barrier(MPI_COMM_WORLD);
        const Clock::time_point start = Clock::now();
        for (int64_t i = 0; i < gemms; ++i) compute_->launch(0, g->call);
        compute_->synchronize();
        const Clock::time_point arrived = Clock::now();
        meet.set_sequence(sequence++);
        CommRequest r = comm_->start(0, 0, meet, in, 4, out, 4);
        while (!comm_->test(r)) {
        }
        mine[0] += std::chrono::duration<double>(arrived - start).count();
        mine[1] += std::chrono::duration<double>(Clock::now() - arrived).count();
      }
      MPI_Allreduce(mine, all, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      const double samples = double(kSkewRepetitions) * world_;
      points.push_back({{"gemms", gemms}, {"stretch_seconds", all[0] / samples},
                        {"wait_seconds", all[1] / samples}});
    }
    progress_->advance();
    return {{"ranks", world_}, {"points", points}};
  }

  double kernelSeconds(std::unique_ptr<Call> c) {
    c->call.kernel = &c->kernel;
    return repeated([&] { compute_->launch(0, c->call); });
  }

  // Whether `bytes` splits into a group of k's pieces of whole F32 elements.
  static bool splits(int k, plan::CollectiveKind kind, uint64_t bytes) {
    const uint64_t elements = bytes / 4;
    const bool pieces = kind != plan::ALL_REDUCE && kind != plan::SEND;
    if (elements == 0 || (pieces && elements % uint64_t(k) != 0)) return false;
    return kind != plan::SEND || k % 2 == 0;  // timed on pairs (0, 1), (2, 3), ...
  }

  // A size that splits().
  double collectiveSeconds(int k, plan::CollectiveKind kind, uint64_t bytes, bool evicted) {
    const uint64_t elements = bytes / 4;
    const bool member = rank_ < k;
    plan::Collective c;
    c.set_kind(kind);
    c.set_axis(std::to_string(k));
    c.set_dtype(plan::F32);
    const uint64_t piece = elements / uint64_t(k);
    std::byte *in = at(0), *out = at(bytes_ / 2);
    uint64_t inBytes = bytes, outBytes = bytes;
    switch (kind) {
    case plan::ALL_REDUCE: c.set_count(elements); break;
    case plan::ALL_GATHER: c.set_count(piece), inBytes = piece * 4; break;
    case plan::REDUCE_SCATTER: c.set_count(piece), outBytes = piece * 4; break;
    case plan::ALL_TO_ALL:
      for (int i = 0; i < k; ++i) c.add_send_counts(piece), c.add_recv_counts(piece);
      break;
    default: c.set_count(elements); break;
    }
    if (kind == plan::SEND) {
      // The even rank of each pair sends, the odd one receives.
      c.set_peer(uint32_t(rank_ ^ 1));
      if (rank_ % 2 == 1) c.set_kind(plan::RECV);
    }
    int64_t sequence = 0;
    auto once = [&] {
      c.set_sequence(uint64_t(sequence++));
      CommRequest r = comm_->start(0, 0, c, in, inBytes, out, outBytes);
      while (!comm_->test(r)) {
      }
    };
    return evicted ? cold(once, member) : repeated(once, member);
  }
  const CalibrateOptions &options_;
  const int rank_, world_;
  const plan::Plan plan_;
  std::unique_ptr<ComputeBackend> compute_;
  std::unique_ptr<CommBackend> comm_;
  uint64_t bytes_ = 0;
  ProgressCounter *progress_ = nullptr;  // run()'s
  std::vector<char> evict_;  // swept to evict the host's caches; empty off the host
};

} // namespace

nlohmann::json measureMachine(const CalibrateOptions &options) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  Calibration c(options, rank, world);
  return c.run();
}

} // namespace moeplan::runtime
