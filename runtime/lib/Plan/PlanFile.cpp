#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Support/Files.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <unordered_set>

namespace moeplan::planfile {

uint64_t dtypeBytes(int dtype) {
  switch (dtype) {
  case plan::F32: return 4;
  case plan::BF16: return 2;
  case plan::F16: return 2;
  case plan::F8: return 1;
  case plan::I32: return 4;
  default: return 0;
  }
}

namespace {

using L = PlanLimits;

// Mesh axes in the order every rank lists its memberships.
constexpr const char *kAxes[] = {"tp", "dp", "pp", "ep", "etp", "edp"};
constexpr int kAxisCount = 6;
constexpr int kPipelineAxis = 2;
constexpr const char *kAxisOrder = "tp dp pp ep etp edp";
constexpr uint32_t kNone = UINT32_MAX;

int axisIndex(const std::string &axis) {
  for (int a = 0; a < kAxisCount; ++a)
    if (axis == kAxes[a]) return a;
  return -1;
}


std::string quoted(const std::string &s) {
  // Hostile names may be long or binary: keep messages one readable line.
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 64; ++i) out += (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (s.size() > 64) out += "...";
  return out + "\"";
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

template <typename T> std::string str(T v) { return std::to_string(v); }

// Product of non-negative factors; nullopt when one is negative or it exceeds kElements.
std::optional<uint64_t> boundedProduct(std::initializer_list<int64_t> factors) {
  uint64_t product = 1;
  for (int64_t f : factors) {
    if (f < 0 || uint64_t(f) > L::kElements) return std::nullopt;
    if (__builtin_mul_overflow(product, uint64_t(f), &product) || product > L::kElements)
      return std::nullopt;
  }
  return product;
}

std::string indexPath(const std::string &field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

struct P2P {
  uint64_t count, sequence;
  int dtype;
  size_t program, instruction;
  bool decodeStep;  // in a GENERATE plan's decode step (each part has its own global order)
  bool feeds;       // feeds_next_step: sampled ids for the next decode step
};

class Validator {
public:
  explicit Validator(const plan::Plan &p) : p_(p) {}

  std::vector<PlanError> run() {
    checkHeader();
    checkModel();
    checkCluster();
    checkStrategy();
    checkWorkload();
    checkRequirements();
    checkWorkloadPoints();
    if (checkRankCount()) {
      checkGroups();
      checkRanks();
      checkGroupsWithinStage();
      checkPrograms();
      checkSendRecvPairs();
      checkPipelineCollectives();
    }
    if (omitted_ > 0) errors_.push_back({"", str(omitted_) + " more errors not listed"});
    return std::move(errors_);
  }

private:
  const plan::Plan &p_;
  std::vector<PlanError> errors_;
  size_t omitted_ = 0;

  // Strategy degrees per axis, 0 when the strategy is unusable.
  uint64_t degree_[kAxisCount] = {};
  uint64_t world_ = 0;
  uint32_t microBatches_ = 0;
  // groupOf_[axis][rank]: the group that lists the rank on that axis (kNone: none yet).
  std::vector<uint32_t> groupOf_[kAxisCount];
  // Every group well formed (axis, size, members); then every rank's program and
  // memberships consistent with them, one program per stage.
  bool groupsValid_ = false;
  bool ranksValid_ = false;
  // SENDs and RECVs keyed by (from stage, to stage), in issue order.
  std::map<std::pair<uint64_t, uint64_t>, std::vector<P2P>> sends_, recvs_;
  // Collectives other than SEND/RECV over pp, per program: every stage must issue the same.
  std::vector<std::vector<const plan::Collective *>> pipelineCollectives_;

  void error(std::string path, std::string message) {
    if (errors_.size() >= L::kReportedErrors) {
      ++omitted_;
      return;
    }
    errors_.push_back({std::move(path), std::move(message)});
  }

  bool generates() const { return p_.workload().phase() == plan::GENERATE; }
  // Where program pi's decode step begins: its instruction count when it has none (not a
  // GENERATE plan, or decode_begin refused already).
  size_t decodeBegin(size_t pi) const {
    const plan::Program &prog = p_.programs(int(pi));
    const size_t n = size_t(prog.instructions_size());
    return generates() && prog.decode_begin() > 0 && prog.decode_begin() < n ? prog.decode_begin() : n;
  }
  bool inDecodeStep(size_t pi, size_t ii) const { return ii >= decodeBegin(pi); }
  static const char *partName(bool decodeStep) { return decodeStep ? "the decode step" : "the prefill"; }

  static std::string programPath(size_t pi) { return indexPath("programs", pi); }
  static std::string bufferPath(size_t pi, size_t bi) {
    return programPath(pi) + indexPath(".buffers", bi);
  }
  static std::string instructionPath(size_t pi, size_t ii) {
    return programPath(pi) + indexPath(".instructions", ii);
  }

  // ---- plan-wide sections ------------------------------------------------------------------

  void checkHeader() {
    if (p_.format() != kPlanFormat)
      error("format", "is " + quoted(p_.format()) + ", expected \"" + kPlanFormat + "\"");
    if (p_.schema_version() != kPlanSchemaVersion)
      error("schema_version", "is " + str(p_.schema_version()) + ", this moeplan reads version " +
                                  str(kPlanSchemaVersion));
  }

  void atMost(const std::string &path, uint64_t value, uint64_t limit) {
    if (value > limit) error(path, "is " + str(value) + ", more than the limit " + str(limit));
  }
  void positiveAtMost(const std::string &path, uint64_t value, uint64_t limit) {
    if (value == 0) error(path, "must be at least 1");
    atMost(path, value, limit);
  }
  void finiteNonNegative(const std::string &path, double v) {
    if (!std::isfinite(v) || v < 0) error(path, "is " + num(v) + ", must be finite and >= 0");
  }
  void fraction(const std::string &path, double v) {
    if (!(v > 0 && v <= 1)) error(path, "is " + num(v) + ", must be in (0, 1]");
  }

  void checkModel() {
    const plan::Model &m = p_.model();
    positiveAtMost("model.layers", m.layers(), L::kLayers);
    positiveAtMost("model.d_model", m.d_model(), L::kDModel);
    positiveAtMost("model.heads", m.heads(), L::kHeads);
    positiveAtMost("model.kv_heads", m.kv_heads(), L::kHeads);
    positiveAtMost("model.head_dim", m.head_dim(), L::kHeadDim);
    atMost("model.experts", m.experts(), L::kExperts);
    atMost("model.expert_hidden", m.expert_hidden(), L::kHidden);
    atMost("model.dense_ffn_hidden", m.dense_ffn_hidden(), L::kHidden);
    atMost("model.moe_every_nth", m.moe_every_nth(), L::kLayers);
    for (int i = 0; i < m.moe_layers_size(); ++i)
      if (m.moe_layers(i) >= m.layers() || (i > 0 && m.moe_layers(i) <= m.moe_layers(i - 1)))
        error("model.moe_layers[" + str(i) + "]",
              "is " + str(m.moe_layers(i)) + ": MoE layers are listed once each, ascending, below " +
                  str(m.layers()));
    atMost("model.shared_expert_hidden", m.shared_expert_hidden(), L::kElements);
    atMost("model.vocab", m.vocab(), L::kVocab);
    if (m.experts() > 0 && (m.top_k() == 0 || m.top_k() > m.experts()))
      error("model.top_k",
            "is " + str(m.top_k()) + ", must be in 1.." + str(m.experts()) + " (the experts)");
    if (m.norm() == plan::NORM_KIND_UNSPECIFIED || !plan::NormKind_IsValid(m.norm()))
      error("model.norm", "is " + str(int(m.norm())) + ", not a norm kind");
    if (m.activation() == plan::ACTIVATION_KIND_UNSPECIFIED ||
        !plan::ActivationKind_IsValid(m.activation()))
      error("model.activation", "is " + str(int(m.activation())) + ", not an activation kind");
    if (dtypeBytes(m.dtype()) == 0 || m.dtype() == plan::I32)
      error("model.dtype", "is " + str(int(m.dtype())) + ", not a floating-point dtype");
    finiteNonNegative("model.norm_epsilon", m.norm_epsilon());
    finiteNonNegative("model.rope_theta", m.rope_theta());
    if (m.routing_stickiness_size() > 1 && uint64_t(m.routing_stickiness_size()) != m.layers())
      error("model.routing_stickiness", "has " + str(uint64_t(m.routing_stickiness_size())) +
                                            " entries, expected one, one per layer (" +
                                            str(uint64_t(m.layers())) + ") or none");
    for (int i = 0; i < m.routing_stickiness_size(); ++i)
      if (!(m.routing_stickiness(i) >= 0 && m.routing_stickiness(i) <= L::kStickiness))
        error(indexPath("model.routing_stickiness", uint64_t(i)),
              "is " + num(m.routing_stickiness(i)) + ", must be in [0, " + num(L::kStickiness) + "]");
    if (m.expert_load_size() == 0) return;
    const uint64_t n = uint64_t(m.expert_load_size()), experts = m.experts();
    if (experts == 0 || (n != experts && n != uint64_t(m.layers()) * experts)) {
      error("model.expert_load", "has " + str(n) + " entries, expected one per expert (" +
                                     str(experts) + "), one per expert per layer (" +
                                     str(uint64_t(m.layers()) * experts) + ") or none");
      return;
    }
    // Every row a MoE layer routes by must give some expert load; a dense layer's row of a
    // per-layer table is not read.
    std::set<uint32_t> moe(m.moe_layers().begin(), m.moe_layers().end());
    auto isMoe = [&](uint32_t l) {
      return m.moe_layers_size() > 0 ? moe.count(l) > 0
                                     : m.moe_every_nth() > 0 && l % m.moe_every_nth() == 0;
    };
    for (uint64_t row = 0; row < n / experts; ++row) {
      double total = 0;
      for (uint64_t e = row * experts; e < (row + 1) * experts; ++e) {
        double v = m.expert_load(int(e));
        if (!std::isfinite(v) || v < 0 || v > 1e300)
          error(indexPath("model.expert_load", e), "is " + num(v) + ", must be finite and >= 0");
        else
          total += v;
      }
      if (!(total > 0) && (n == experts || isMoe(uint32_t(row))))
        error("model.expert_load", n == experts ? "sums to 0: some expert must get load"
                                                : "sums to 0 for MoE layer " + str(row) +
                                                      " (entries [" + str(row * experts) + ", " +
                                                      str((row + 1) * experts) +
                                                      ")): some expert must get load");
    }
  }

  void checkLink(const std::string &path, const plan::Link &link, bool needed) {
    double bw = link.bandwidth_bytes_per_s();
    if (needed && !(std::isfinite(bw) && bw >= 1))
      error(path + ".bandwidth_bytes_per_s", "is " + num(bw) + ", must be finite and >= 1");
    else if (!std::isfinite(bw) || bw < 0)
      error(path + ".bandwidth_bytes_per_s", "is " + num(bw) + ", must be finite and >= 0");
    finiteNonNegative(path + ".latency_s", link.latency_s());
    finiteNonNegative(path + ".reduce_bytes_per_s", link.reduce_bytes_per_s());
  }

  void checkCluster() {
    const plan::Cluster &c = p_.cluster();
    positiveAtMost("cluster.nodes", c.nodes(), L::kRanks);
    positiveAtMost("cluster.gpus_per_node", c.gpus_per_node(), L::kRanks);
    if (uint64_t(c.nodes()) * c.gpus_per_node() > L::kRanks)
      error("cluster", "nodes x gpus_per_node = " + str(uint64_t(c.nodes()) * c.gpus_per_node()) +
                           " GPUs, more than the limit " + str(L::kRanks));
    fraction("cluster.mfu", c.mfu());
    fraction("cluster.memory_bandwidth_utilization", c.memory_bandwidth_utilization());
    // The rates divide work: at least 1 per second keeps every time finite.
    double flops = c.peak_flops() * c.mfu();
    if (!(std::isfinite(c.peak_flops()) && flops >= 1))
      error("cluster.peak_flops",
            "is " + num(c.peak_flops()) + ", must be finite with peak_flops x mfu >= 1 FLOP/s");
    double hbm = c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization();
    if (!(std::isfinite(c.memory_bandwidth_bytes_per_s()) && hbm >= 1))
      error("cluster.memory_bandwidth_bytes_per_s",
            "is " + num(c.memory_bandwidth_bytes_per_s()) +
                ", must be finite with bandwidth x utilization >= 1 B/s");
    if (!(std::isfinite(c.memory_bytes()) && c.memory_bytes() > 0))
      error("cluster.memory_bytes", "is " + num(c.memory_bytes()) + ", must be finite and > 0");
    // One GPU per node has no intra-node link (the description may leave it out).
    checkLink("cluster.intra_node", c.intra_node(), c.gpus_per_node() > 1);
    checkLink("cluster.inter_node", c.inter_node(), c.nodes() > 1);
    // GEMM efficiency points: rows increasing from 1, shares in (0, 1] (a share times peak
    // of at least 1 FLOP/s keeps every time finite).
    for (int i = 0; i < c.gemm_efficiency_size(); ++i) {
      const plan::GemmEfficiency &e = c.gemm_efficiency(i);
      const std::string at = indexPath("cluster.gemm_efficiency", size_t(i));
      if (!(std::isfinite(e.rows()) && e.rows() >= 1 && e.rows() <= 1e12))
        error(at + ".rows", "is " + num(e.rows()) + ", must be finite in [1, 1e12]");
      else if (i > 0 && !(e.rows() > c.gemm_efficiency(i - 1).rows()))
        error(at + ".rows", "is " + num(e.rows()) + ", not above the previous point's " +
                                num(c.gemm_efficiency(i - 1).rows()) + ": rows increase");
      fraction(at + ".efficiency", e.efficiency());
      if (std::isfinite(e.efficiency()) && !(c.peak_flops() * e.efficiency() >= 1))
        error(at + ".efficiency", "is " + num(e.efficiency()) + ": peak_flops x efficiency must be >= 1 FLOP/s");
    }
    if (!(std::isfinite(c.compute_jitter()) && c.compute_jitter() >= 0 && c.compute_jitter() <= 1))
      error("cluster.compute_jitter", "is " + num(c.compute_jitter()) + ", must be finite in [0, 1]");
    if (!(std::isfinite(c.launch_overhead_s()) && c.launch_overhead_s() >= 0 && c.launch_overhead_s() <= 1))
      error("cluster.launch_overhead_s", "is " + num(c.launch_overhead_s()) + ", must be finite in [0, 1] s");
    const plan::KernelRates &k = c.kernel_rates();
    for (auto [field, v] : {std::pair<const char *, double>{"layer_norm_bytes_per_s", k.layer_norm_bytes_per_s()},
                            {"rms_norm_bytes_per_s", k.rms_norm_bytes_per_s()},
                            {"gelu_bytes_per_s", k.gelu_bytes_per_s()},
                            {"swiglu_bytes_per_s", k.swiglu_bytes_per_s()},
                            {"router_bytes_per_s", k.router_bytes_per_s()}})
      if (!(std::isfinite(v) && v >= 0))
        error(std::string("cluster.kernel_rates.") + field,
              "is " + num(v) + ", must be finite and >= 0 (0: memory bandwidth)");
  }

  void checkStrategy() {
    const plan::Strategy &s = p_.strategy();
    const uint32_t degrees[kAxisCount] = {s.tp(), s.dp(),        s.pp(),
                                          s.ep(), s.expert_tp(), s.expert_dp()};
    const char *fields[kAxisCount] = {"tp", "dp", "pp", "ep", "expert_tp", "expert_dp"};
    bool usable = true;
    for (int a = 0; a < kAxisCount; ++a) {
      if (degrees[a] == 0 || degrees[a] > L::kRanks) {
        error(std::string("strategy.") + fields[a],
              "is " + str(degrees[a]) + ", must be in 1.." + str(L::kRanks));
        usable = false;
      }
    }
    positiveAtMost("strategy.micro_batches", s.micro_batches(), L::kSequences);
    if (s.micro_batches() > 0 && s.micro_batches() <= L::kSequences)
      microBatches_ = s.micro_batches();
    finiteNonNegative("strategy.capacity_factor", s.capacity_factor());
    if (s.schedule() == plan::SCHEDULE_UNSPECIFIED || !plan::Schedule_IsValid(s.schedule()))
      error("strategy.schedule", "is " + str(int(s.schedule())) + ", not a schedule");
    if (!plan::Overlap_IsValid(s.overlap()))
      error("strategy.overlap", "is " + str(int(s.overlap())) + ", not an overlap");
    else if (s.overlap() == plan::DUAL_MICRO_BATCH && s.micro_batches() % 2 != 0)
      error("strategy.micro_batches",
            "is " + str(s.micro_batches()) +
                ", but DUAL_MICRO_BATCH runs micro-batches in pairs: it must be even");
    if (!usable) return;
    uint64_t world = uint64_t(s.tp()) * s.pp();  // both <= 2^20: no overflow
    if (world > L::kRanks || world * s.dp() > L::kRanks) {
      error("strategy", "tp x pp x dp exceeds " + str(L::kRanks) + " ranks");
      return;
    }
    world *= s.dp();
    uint64_t expertGrid = uint64_t(s.expert_tp()) * s.ep();
    if (expertGrid > L::kRanks || expertGrid * s.expert_dp() != uint64_t(s.tp()) * s.dp()) {
      error("strategy", "expert_tp x ep x expert_dp must equal tp x dp (" +
                            str(uint64_t(s.tp()) * s.dp()) +
                            "): the expert grid folds onto the attention grid");
      return;
    }
    for (int a = 0; a < kAxisCount; ++a) degree_[a] = degrees[a];
    world_ = world;
  }

  void checkWorkload() {
    const plan::Workload &w = p_.workload();
    if (w.phase() == plan::PHASE_UNSPECIFIED || !plan::Phase_IsValid(w.phase()))
      error("workload.phase", "is " + str(int(w.phase())) + ", not PREFILL, DECODE or GENERATE");
    positiveAtMost("workload.sequences", w.sequences(), L::kSequences);
    positiveAtMost("workload.seq_len", w.seq_len(), L::kSeqLen);
    atMost("workload.kv_cache_len", w.kv_cache_len(), L::kSeqLen);
    positiveAtMost("workload.sequences_per_micro_batch", w.sequences_per_micro_batch(),
                   L::kSequences);
    uint64_t dp = degree_[1];
    if (dp > 0 && microBatches_ > 0 &&
        uint64_t(w.sequences_per_micro_batch()) * dp * microBatches_ != w.sequences())
      error("workload.sequences_per_micro_batch",
            "is " + str(w.sequences_per_micro_batch()) +
                ", but sequences / (dp x micro_batches) = " + str(w.sequences()) + " / (" +
                str(dp) + " x " + str(microBatches_) + ")");
    if (w.phase() == plan::GENERATE) {
      positiveAtMost("workload.new_tokens", w.new_tokens(), L::kSeqLen);
      // The cache holds the prompt and every generated token but the last (never fed back).
      const uint64_t positions = uint64_t(w.seq_len()) + w.new_tokens() - 1;
      if (w.new_tokens() > 0 && w.kv_cache_len() != positions)
        error("workload.kv_cache_len",
              "is " + str(w.kv_cache_len()) + ", but a GENERATE plan caches seq_len + new_tokens - 1 = " +
                  str(w.seq_len()) + " + " + str(w.new_tokens()) + " - 1 = " + str(positions) +
                  " positions");
    } else if (w.new_tokens() != 0) {
      error("workload.new_tokens", "is " + str(w.new_tokens()) + ", but only a GENERATE plan "
                                   "generates tokens (0 otherwise)");
    }
    uint64_t tokensPerSequence = w.phase() == plan::DECODE ? 1 : w.seq_len();
    if (uint64_t(w.tokens_per_micro_batch()) != w.sequences_per_micro_batch() * tokensPerSequence)
      error("workload.tokens_per_micro_batch",
            "is " + str(w.tokens_per_micro_batch()) + ", expected sequences_per_micro_batch x " +
                (w.phase() == plan::DECODE ? std::string("1 (DECODE)") : "seq_len") + " = " +
                str(w.sequences_per_micro_batch() * tokensPerSequence));
  }

  void checkRequirements() {
    const plan::Requirements &r = p_.requirements();
    if (r.has_max_latency_s()) finiteNonNegative("requirements.max_latency_s", r.max_latency_s());
    if (r.has_min_throughput_tokens_per_s())
      finiteNonNegative("requirements.min_throughput_tokens_per_s",
                        r.min_throughput_tokens_per_s());
    if (r.has_max_memory_per_gpu_bytes())
      finiteNonNegative("requirements.max_memory_per_gpu_bytes", r.max_memory_per_gpu_bytes());
    if (r.has_min_load_balance())
      finiteNonNegative("requirements.min_load_balance", r.min_load_balance());
    if (r.has_max_comm_overhead())
      finiteNonNegative("requirements.max_comm_overhead", r.max_comm_overhead());
    if (r.has_min_gpu_utilization())
      finiteNonNegative("requirements.min_gpu_utilization", r.min_gpu_utilization());
  }

  // What compile predicted over the workload (read by inspect and diff, not by the runtime):
  // finite figures, lengths ascending, the last the plan's own.
  void checkWorkloadPoints() {
    uint32_t previous = 0;
    for (int i = 0; i < p_.workload_points_size(); ++i) {
      const plan::WorkloadPoint &w = p_.workload_points(i);
      std::string at = "workload_points[" + str(i) + "]";
      if (w.seq_len() == 0 || w.seq_len() <= previous)
        error(at + ".seq_len", "is " + str(w.seq_len()) + ", not above the previous point's " +
                                   str(previous));
      previous = w.seq_len();
      const std::pair<const char *, double> figures[] = {
          {"latency_s", w.latency_s()},
          {"throughput_tokens_per_s", w.throughput_tokens_per_s()},
          {"exposed_comm_share", w.exposed_comm_share()},
          {"load_balance", w.load_balance()},
          {"utilization", w.utilization()},
          {"bubble_fraction", w.bubble_fraction()},
          {"dropped_token_fraction", w.dropped_token_fraction()},
          {"roofline_s", w.roofline_s()},
          {"layer_compute_s", w.layer_compute_s()},
          {"mean_collective_s", w.mean_collective_s()}};
      for (const auto &[name, v] : figures) finiteNonNegative(at + "." + name, v);
    }
    if (p_.workload_points_size() > 0 && previous != p_.workload().seq_len())
      error("workload_points", "ends at seq_len " + str(previous) + ", not the plan's own " +
                                   str(p_.workload().seq_len()));
    for (int i = 0; i < p_.claims_size(); ++i) {
      const plan::ClaimCheck &c = p_.claims(i);
      std::string at = "claims[" + str(i) + "]";
      finiteNonNegative(at + ".claimed", c.claimed());
      finiteNonNegative(at + ".tolerance", c.tolerance());
      for (int k = 0; k < c.derived_size(); ++k)
        finiteNonNegative(at + ".derived[" + str(k) + "]", c.derived(k));
    }
  }

  // ---- ranks and groups --------------------------------------------------------------------

  // Whether the rank list can be walked: bounded, and covering the strategy's world.
  bool checkRankCount() {
    uint64_t n = uint64_t(p_.ranks_size());
    if (n == 0) {
      error("ranks", "is empty: a plan runs on at least one rank");
      return false;
    }
    if (n > L::kRanks) {
      error("ranks", "has " + str(n) + " ranks, more than the limit " + str(L::kRanks));
      return false;
    }
    if (world_ == 0) return false;  // strategy errors already listed
    if (n != world_) {
      error("ranks",
            "has " + str(n) + " ranks, but the strategy's world tp x pp x dp is " + str(world_));
      return false;
    }
    uint64_t gpus = uint64_t(p_.cluster().nodes()) * p_.cluster().gpus_per_node();
    if (n > gpus) {
      error("ranks", "has " + str(n) + " ranks, but the cluster has " + str(gpus) + " GPUs");
      return false;
    }
    return true;
  }

  void checkGroups() {
    const size_t errorsBefore = errors_.size() + omitted_;
    for (int a = 0; a < kAxisCount; ++a) groupOf_[a].assign(p_.ranks_size(), kNone);
    for (int g = 0; g < p_.groups_size(); ++g) {
      const plan::Group &group = p_.groups(g);
      std::string path = indexPath("groups", g);
      int axis = axisIndex(group.axis());
      if (axis < 0) {
        error(path + ".axis", quoted(group.axis()) + " is not a mesh axis (" + kAxisOrder + ")");
        continue;
      }
      if (uint64_t(group.ranks_size()) != degree_[axis])
        error(path + ".ranks", "has " + str(group.ranks_size()) + " ranks, but the strategy's " +
                                   kAxes[axis] + " degree is " + str(degree_[axis]));
      bool oneNode = true;
      uint32_t node = kNone;
      for (int i = 0; i < group.ranks_size(); ++i) {
        uint32_t r = group.ranks(i);
        if (r >= uint32_t(p_.ranks_size())) {
          error(indexPath(path + ".ranks", i),
                "rank " + str(r) + " is not in the plan (" + str(p_.ranks_size()) + " ranks)");
          continue;
        }
        uint32_t &owner = groupOf_[axis][r];
        if (owner == uint32_t(g)) {
          error(indexPath(path + ".ranks", i), "rank " + str(r) + " appears twice in the group");
        } else if (owner != kNone) {
          error(indexPath(path + ".ranks", i), "rank " + str(r) + " is also in groups[" +
                                                   str(owner) + "] on axis " + kAxes[axis] +
                                                   "; a rank is in exactly one group per axis");
        } else {
          owner = uint32_t(g);
        }
        if (node == kNone) node = p_.ranks(int(r)).node();
        if (p_.ranks(int(r)).node() != node) oneNode = false;
      }
      if (node != kNone && oneNode != group.intra_node())
        error(path + ".intra_node", group.intra_node()
                                        ? std::string("is true, but the members span nodes")
                                        : std::string("is false, but every member is on one node"));
    }
    groupsValid_ = errors_.size() + omitted_ == errorsBefore;
  }

  void checkRanks() {
    const uint32_t gpusPerNode = std::max(p_.cluster().gpus_per_node(), 1u);
    bool valid = true;
    std::vector<uint32_t> rankCount(size_t(p_.programs_size()), 0);
    for (int r = 0; r < p_.ranks_size(); ++r) {
      const plan::Rank &rank = p_.ranks(r);
      std::string path = indexPath("ranks", r);
      if (rank.node() != uint32_t(r) / gpusPerNode || rank.local_gpu() != uint32_t(r) % gpusPerNode)
        error(path, "is on node " + str(rank.node()) + " GPU " + str(rank.local_gpu()) +
                        ", but rank r runs on GPU r: node " + str(uint32_t(r) / gpusPerNode) +
                        " GPU " + str(uint32_t(r) % gpusPerNode));
      if (rank.program() >= uint32_t(p_.programs_size())) {
        error(path + ".program", "is " + str(rank.program()) + ", but the plan has " +
                                     str(p_.programs_size()) + " programs");
        valid = false;
      } else {
        ++rankCount[rank.program()];
      }
      if (rank.groups_size() != kAxisCount) {
        error(path + ".groups", "has " + str(rank.groups_size()) +
                                    " memberships; a rank has one per axis, in the order " +
                                    kAxisOrder);
        valid = false;
        continue;
      }
      for (int a = 0; a < kAxisCount; ++a) {
        const plan::GroupMembership &m = rank.groups(a);
        std::string mpath = indexPath(path + ".groups", a);
        if (m.axis() != kAxes[a]) {
          error(mpath + ".axis", "is " + quoted(m.axis()) + ", expected \"" + kAxes[a] +
                                     "\" (the order is " + kAxisOrder + ")");
          valid = false;
          continue;
        }
        if (m.group() >= uint32_t(p_.groups_size())) {
          error(mpath + ".group",
                "is " + str(m.group()) + ", but the plan has " + str(p_.groups_size()) + " groups");
          valid = false;
          continue;
        }
        if (groupOf_[a][r] != m.group()) {
          error(mpath + ".group",
                "is " + str(m.group()) + ", but " +
                    (groupOf_[a][r] == kNone
                         ? "no " + std::string(kAxes[a]) + " group lists rank " + str(r)
                         : "rank " + str(r) + " is listed in groups[" + str(groupOf_[a][r]) + "]"));
          valid = false;
          continue;
        }
        const plan::Group &group = p_.groups(int(m.group()));
        if (m.index() >= uint32_t(group.ranks_size()) ||
            group.ranks(int(m.index())) != uint32_t(r)) {
          error(mpath + ".index", "is " + str(m.index()) + ", but rank " + str(r) +
                                      " is not at that position of groups[" + str(m.group()) + "]");
          valid = false;
        }
      }
    }
    for (size_t pi = 0; pi < rankCount.size(); ++pi)
      if (rankCount[pi] == 0) {
        error(programPath(pi), "is run by no rank");
        valid = false;
      }
    if (!valid) return;

    // One program per stage, and a rank's position in its pp group is its program's stage.
    std::vector<uint32_t> programOfStage(degree_[kPipelineAxis], kNone);
    for (int pi = 0; pi < p_.programs_size(); ++pi) {
      uint32_t stage = p_.programs(pi).stage();
      if (stage >= degree_[kPipelineAxis]) {
        error(programPath(pi) + ".stage",
              "is " + str(stage) + ", but the strategy has pp " + str(degree_[kPipelineAxis]));
        valid = false;
      } else if (programOfStage[stage] != kNone) {
        error(programPath(pi) + ".stage", "is " + str(stage) + ", like programs[" +
                                              str(programOfStage[stage]) +
                                              "]; each stage has one program");
        valid = false;
      } else {
        programOfStage[stage] = uint32_t(pi);
      }
    }
    if (!valid) return;
    for (int r = 0; r < p_.ranks_size(); ++r) {
      const plan::Rank &rank = p_.ranks(r);
      uint32_t stage = p_.programs(int(rank.program())).stage();
      if (rank.groups(kPipelineAxis).index() != stage) {
        error(indexPath("ranks", r) + ".program",
              "runs stage " + str(stage) + ", but the rank is at position " +
                  str(rank.groups(kPipelineAxis).index()) + " of its pp group");
        valid = false;
      }
    }
    ranksValid_ = valid && groupsValid_;
  }

  // Members of a group on any axis but pp run one program, so they issue the same
  // collectives in the same order.
  void checkGroupsWithinStage() {
    if (!ranksValid_) return;
    for (int g = 0; g < p_.groups_size(); ++g) {
      const plan::Group &group = p_.groups(g);
      if (group.axis() == kAxes[kPipelineAxis]) continue;
      uint32_t program = p_.ranks(int(group.ranks(0))).program();
      for (int i = 1; i < group.ranks_size(); ++i) {
        uint32_t other = p_.ranks(int(group.ranks(i))).program();
        if (other != program) {
          error(indexPath(indexPath("groups", g) + ".ranks", i),
                "rank " + str(group.ranks(i)) + " runs programs[" + str(other) + "], but rank " +
                    str(group.ranks(0)) + " runs programs[" + str(program) + "]; groups on " +
                    group.axis() + " lie within one pipeline stage");
          ranksValid_ = false;
          break;
        }
      }
    }
  }

  // ---- programs ----------------------------------------------------------------------------

  struct BufferInfo {
    std::optional<uint64_t> elements;  // nullopt: the buffer's shape is invalid
    bool placed = false;               // offset, bytes and live range valid
  };

  void checkPrograms() {
    pipelineCollectives_.resize(size_t(p_.programs_size()));
    for (int pi = 0; pi < p_.programs_size(); ++pi) checkProgram(size_t(pi));
  }

  void checkProgram(size_t pi) {
    const plan::Program &prog = p_.programs(int(pi));
    std::string path = programPath(pi);
    uint32_t layers = p_.model().layers();
    if (prog.first_layer() > prog.end_layer() || prog.end_layer() > layers)
      error(path + ".end_layer", "layers [" + str(prog.first_layer()) + ", " +
                                     str(prog.end_layer()) + ") are not inside the model's " +
                                     str(layers) + " layers");
    if (prog.streams() == 0 || prog.streams() > L::kStreams)
      error(path + ".streams", "is " + str(prog.streams()) + ", must be in 1.." + str(L::kStreams));
    const uint64_t instructions = uint64_t(prog.instructions_size());
    if (prog.events() > instructions)
      error(path + ".events", "is " + str(prog.events()) + ", more than the " + str(instructions) +
                                  " instructions (each records at most one event)");
    if (generates()) {
      if (prog.decode_begin() == 0 || prog.decode_begin() >= instructions)
        error(path + ".decode_begin",
              "is " + str(prog.decode_begin()) + ", but a GENERATE program holds a prefill and a "
              "decode step, each of at least one instruction: must be in 1.." +
                  str(instructions > 0 ? instructions - 1 : 0));
    } else if (prog.decode_begin() != 0) {
      error(path + ".decode_begin", "is " + str(prog.decode_begin()) +
                                        ", but only a GENERATE program has a decode step (0 otherwise)");
    }
    std::vector<BufferInfo> buffers(size_t(prog.buffers_size()));
    std::unordered_set<std::string> names;
    for (size_t bi = 0; bi < buffers.size(); ++bi) {
      buffers[bi] = checkBuffer(pi, bi, instructions);
      const std::string &name = prog.buffers(int(bi)).name();
      if (name.empty())
        error(bufferPath(pi, bi) + ".name", "is empty");
      else if (!names.insert(name).second)
        error(bufferPath(pi, bi) + ".name", quoted(name) + " names another buffer too");
    }
    checkPlacement(pi, buffers);
    checkInstructions(pi, buffers);
  }

  BufferInfo checkBuffer(size_t pi, size_t bi, uint64_t instructions) {
    const plan::Program &prog = p_.programs(int(pi));
    const plan::Buffer &b = prog.buffers(int(bi));
    std::string path = bufferPath(pi, bi);
    BufferInfo info;
    if (b.kind() == plan::BUFFER_KIND_UNSPECIFIED || !plan::BufferKind_IsValid(b.kind()))
      error(path + ".kind", "is " + str(int(b.kind())) + ", not a buffer kind");
    uint64_t elementBytes = dtypeBytes(b.dtype());
    if (elementBytes == 0) error(path + ".dtype", "is " + str(int(b.dtype())) + ", not a dtype");
    std::optional<uint64_t> elements = shapeElements(path + ".shape", b.shape());
    if (elements && elementBytes > 0) {
      info.elements = elements;
      if (b.bytes() != *elements * elementBytes)  // both bounded: no overflow
        error(path + ".bytes", "is " + str(b.bytes()) + ", but the shape holds " + str(*elements) +
                                   " elements of " + str(elementBytes) +
                                   " bytes = " + str(*elements * elementBytes));
    }
    bool placed = true;
    uint64_t end;
    if (__builtin_add_overflow(b.offset(), b.bytes(), &end) || end > prog.arena_bytes()) {
      error(path + ".offset", "bytes [" + str(b.offset()) + ", +" + str(b.bytes()) +
                                  ") run past the arena of " + str(prog.arena_bytes()) + " bytes");
      placed = false;
    }
    if (b.live_begin() > b.live_end() || b.live_end() >= instructions) {
      error(path + ".live_end", "live range [" + str(b.live_begin()) + ", " + str(b.live_end()) +
                                    "] is not within the program's " + str(instructions) +
                                    " instructions");
      placed = false;
    } else if (generates() && instructions > 0 &&
               (b.kind() == plan::WEIGHT || b.kind() == plan::KV_CACHE || b.kind() == plan::INPUT ||
                b.kind() == plan::OUTPUT) &&
               (b.live_begin() != 0 || b.live_end() != instructions - 1)) {
      // The runtime fills inputs and reads outputs between the parts, and weights and caches
      // carry over from the prefill into every decode step.
      error(path + (b.live_begin() != 0 ? ".live_begin" : ".live_end"),
            "live range [" + str(b.live_begin()) + ", " + str(b.live_end()) + "] is not the whole program [0, " +
                str(instructions - 1) + "]: a GENERATE plan keeps its " +
                plan::BufferKind_Name(b.kind()) + " buffers across the prefill and every decode step");
    }
    info.placed = placed;
    checkSlice(path, b, elements);
    return info;
  }

  std::optional<uint64_t> shapeElements(const std::string &path,
                                        const google::protobuf::RepeatedField<int64_t> &shape) {
    if (shape.size() > L::kShapeRank) {
      error(path, "has " + str(shape.size()) + " dimensions, more than " + str(L::kShapeRank));
      return std::nullopt;
    }
    uint64_t product = 1;
    for (int d = 0; d < shape.size(); ++d) {
      std::optional<uint64_t> next = boundedProduct({int64_t(product), shape[d]});
      if (!next) {
        error(indexPath(path, d), shape[d] < 0
                                      ? "is " + str(shape[d]) + ", a negative size"
                                      : "makes the element count exceed " + str(L::kElements));
        return std::nullopt;
      }
      product = *next;
    }
    return product;
  }

  void checkSlice(const std::string &bufferPath, const plan::Buffer &b,
                  std::optional<uint64_t> localElements) {
    bool needsSlice = b.kind() == plan::WEIGHT || b.kind() == plan::INPUT ||
                      b.kind() == plan::OUTPUT || b.kind() == plan::KV_CACHE;
    if (!b.has_slice()) {
      if (needsSlice)
        error(bufferPath + ".slice", "is missing: a " + plan::BufferKind_Name(b.kind()) +
                                         " buffer names the slice of the full tensor it holds");
      return;
    }
    const plan::TensorSlice &s = b.slice();
    std::string path = bufferPath + ".slice";
    if (s.tensor().empty()) error(path + ".tensor", "is empty");
    std::optional<uint64_t> fullElements = shapeElements(path + ".full_shape", s.full_shape());
    if (s.micro_batch() < -1 || (microBatches_ > 0 && s.micro_batch() >= int64_t(microBatches_)))
      error(path + ".micro_batch", "is " + str(s.micro_batch()) + ", must be -1 or in 0.." +
                                       str(int64_t(microBatches_) - 1));
    if (!fullElements) return;
    // Pieces per dimension: every split's parts, and the micro-batches, which cut the
    // dimension split over dp (the sequences; dimension 0 without such a split).
    std::vector<uint64_t> pieces(size_t(s.full_shape_size()), 1);
    if (s.micro_batch() >= 0 && !pieces.empty() && microBatches_ > 0) {
      uint32_t sequenceDim = 0;
      for (const plan::Split &split : s.splits())
        if (split.axis() == kAxes[1] && split.dim() < pieces.size()) sequenceDim = split.dim();
      pieces[sequenceDim] = microBatches_;
    }
    bool piecesValid = true;
    for (int i = 0; i < s.splits_size(); ++i) {
      const plan::Split &split = s.splits(i);
      std::string spath = indexPath(path + ".splits", i);
      int axis = axisIndex(split.axis());
      if (split.dim() >= pieces.size()) {
        error(spath + ".dim", "is " + str(split.dim()) + ", but the full shape has " +
                                  str(pieces.size()) + " dimensions");
        piecesValid = false;
      } else if (axis < 0) {
        error(spath + ".axis", quoted(split.axis()) + " is not a mesh axis (" + kAxisOrder + ")");
        piecesValid = false;
      } else if (split.parts() == 0 || (degree_[axis] > 0 && split.parts() > degree_[axis])) {
        error(spath + ".parts", "is " + str(split.parts()) + ", must be in 1.." +
                                    str(degree_[axis]) + " (the " + kAxes[axis] + " degree)");
        piecesValid = false;
      } else if (__builtin_mul_overflow(pieces[split.dim()], uint64_t(split.parts()),
                                        &pieces[split.dim()]) ||
                 pieces[split.dim()] > L::kElements) {
        error(spath + ".parts", "splits dimension " + str(split.dim()) + " into too many pieces");
        piecesValid = false;
      }
    }
    if (!piecesValid) return;
    // Pieces of a dim that they do not divide are ceil(dim / pieces), the last padded.
    uint64_t sliceElements = 1;
    for (size_t d = 0; d < pieces.size(); ++d) {
      uint64_t full = uint64_t(s.full_shape(int(d)));
      sliceElements *= (full + pieces[d] - 1) / pieces[d];  // at most the full product
    }
    if (localElements && *localElements != sliceElements)
      error(bufferPath + ".shape", "holds " + str(*localElements) + " elements, but the slice is " +
                                       str(sliceElements) + " (full shape " + str(*fullElements) +
                                       " elements in pieces of " + "ceil(dim / pieces))");
  }

  // Buffers live at the same time must not share arena bytes: a sweep over issue order
  // keeps the live byte ranges in an ordered map, so each new one meets only its neighbours.
  void checkPlacement(size_t pi, const std::vector<BufferInfo> &buffers) {
    const plan::Program &prog = p_.programs(int(pi));
    std::vector<uint32_t> order;
    for (size_t bi = 0; bi < buffers.size(); ++bi)
      if (buffers[bi].placed && prog.buffers(int(bi)).bytes() > 0) order.push_back(uint32_t(bi));
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      uint32_t beginA = prog.buffers(int(a)).live_begin(),
               beginB = prog.buffers(int(b)).live_begin();
      return beginA != beginB ? beginA < beginB : a < b;
    });
    using Ending = std::pair<uint32_t, uint32_t>;  // (live_end, buffer)
    std::priority_queue<Ending, std::vector<Ending>, std::greater<Ending>> live;
    std::map<uint64_t, uint32_t> liveByOffset;  // offset -> buffer
    for (uint32_t bi : order) {
      const plan::Buffer &b = prog.buffers(int(bi));
      while (!live.empty() && live.top().first < b.live_begin()) {
        liveByOffset.erase(prog.buffers(int(live.top().second)).offset());
        live.pop();
      }
      auto conflict = [&](uint32_t other) {
        const plan::Buffer &o = prog.buffers(int(other));
        error(bufferPath(pi, bi) + ".offset",
              "bytes [" + str(b.offset()) + ", " + str(b.offset() + b.bytes()) + ") overlap " +
                  quoted(o.name()) + " (buffers[" + str(other) + "], bytes [" + str(o.offset()) +
                  ", " + str(o.offset() + o.bytes()) + ")) while both are live at instruction " +
                  str(std::max(b.live_begin(), o.live_begin())));
      };
      auto next = liveByOffset.lower_bound(b.offset());
      if (next != liveByOffset.end() && next->first < b.offset() + b.bytes()) {
        conflict(next->second);
        continue;
      }
      if (next != liveByOffset.begin()) {
        const plan::Buffer &prev = prog.buffers(int(std::prev(next)->second));
        if (prev.offset() + prev.bytes() > b.offset()) {
          conflict(std::prev(next)->second);
          continue;
        }
      }
      liveByOffset.emplace(b.offset(), bi);
      live.push({b.live_end(), bi});
    }
  }

  // ---- instructions ------------------------------------------------------------------------

  struct Operand {
    const char *name;
    std::optional<uint64_t> elements;  // nullopt: the dimensions are invalid
    bool indices = false;              // I32
    // A KV cache a GENERATE plan grows: it holds at least `elements` (why: what they are).
    bool atLeast = false;
    std::string why;
  };

  void checkInstructions(size_t pi, const std::vector<BufferInfo> &buffers) {
    const plan::Program &prog = p_.programs(int(pi));
    // recordedAt[e]: the instruction that records event e (-1: none yet). Past the
    // instruction count, events were refused already.
    const uint32_t events =
        uint32_t(std::min<uint64_t>(prog.events(), uint64_t(prog.instructions_size())));
    std::vector<int64_t> recordedAt(size_t(events) + 1, -1);
    // A GENERATE program's parts run apart, streams drained in between: each has its own
    // events and its own global communication order. prefillRecordedAt: the prefill's records.
    std::vector<int64_t> prefillRecordedAt;
    bool haveSequence = false;
    uint64_t lastSequence = 0;
    std::set<int32_t> dispatched;  // layers whose DISPATCH is issued so far
    for (int ii = 0; ii < prog.instructions_size(); ++ii) {
      const plan::Instruction &inst = prog.instructions(ii);
      std::string path = instructionPath(pi, size_t(ii));
      if (inst.has_kernel() && inst.kernel().kind() == plan::DISPATCH) dispatched.insert(inst.layer());
      if (inst.routed()) checkRouted(inst, path, dispatched);
      if (size_t(ii) == decodeBegin(pi)) {
        prefillRecordedAt = recordedAt;
        std::fill(recordedAt.begin(), recordedAt.end(), -1);
        haveSequence = false;
      }
      if (inst.stream() >= prog.streams())
        error(path + ".stream", "is " + str(inst.stream()) + ", but the program has " +
                                    str(prog.streams()) + " streams");
      for (int w = 0; w < inst.wait_events_size(); ++w) {
        uint32_t e = inst.wait_events(w);
        if (e == 0 || e > events)
          error(indexPath(path + ".wait_events", w),
                "event " + str(e) + " is not in 1.." + str(events));
        else if (recordedAt[e] < 0 && !prefillRecordedAt.empty() && prefillRecordedAt[e] >= 0)
          error(indexPath(path + ".wait_events", w),
                "event " + str(e) + " is recorded in the prefill (instructions[" +
                    str(prefillRecordedAt[e]) + "]), not in this decode step: an instruction "
                    "waits only for events of its own part");
        else if (recordedAt[e] < 0)
          error(indexPath(path + ".wait_events", w),
                "event " + str(e) + " is waited before any earlier instruction records it");
      }
      if (uint32_t e = inst.record_event(); e != 0) {
        if (e > events)
          error(path + ".record_event", "event " + str(e) + " is not in 1.." + str(events));
        else if (recordedAt[e] >= 0)
          error(path + ".record_event", "event " + str(e) +
                                            " is recorded again (first by instructions[" +
                                            str(recordedAt[e]) + "])");
        else
          recordedAt[e] = ii;
      }
      if (microBatches_ > 0 && inst.micro_batch() >= microBatches_)
        error(path + ".micro_batch", "is " + str(inst.micro_batch()) + ", but the strategy has " +
                                         str(microBatches_) + " micro-batches");
      if (inst.layer() < -1 || (inst.layer() >= 0 && (uint32_t(inst.layer()) < prog.first_layer() ||
                                                      uint32_t(inst.layer()) >= prog.end_layer())))
        error(path + ".layer", "is " + str(inst.layer()) +
                                   ", must be -1 or one of the program's layers [" +
                                   str(prog.first_layer()) + ", " + str(prog.end_layer()) + ")");
      if (inst.has_kernel()) {
        checkKernel(pi, size_t(ii), buffers);
      } else if (inst.has_collective()) {
        const plan::Collective &c = inst.collective();
        if (haveSequence && c.sequence() <= lastSequence)
          error(path + ".collective.sequence",
                "is " + str(c.sequence()) + ", not after the previous collective's " +
                    str(lastSequence) + ": sequences increase in issue order");
        haveSequence = true;
        lastSequence = c.sequence();
        checkCollective(pi, size_t(ii), buffers);
      } else {
        error(path, "has neither a kernel nor a collective");
      }
    }
  }

  // A routed instruction works on the rows its layer's DISPATCH filled: an expert GEMM, an
  // elementwise kernel on its rows, or the collective that moves them; the simulator reads
  // the routing of that DISPATCH (issued before it) to predict the rows filled.
  void checkRouted(const plan::Instruction &inst, const std::string &path,
                   const std::set<int32_t> &dispatched) {
    static const std::set<int> kernels = {plan::GROUPED_GEMM, plan::BIAS_ADD,
                                          plan::ACTIVATION_FUNCTION, plan::TRANSPOSE};
    static const std::set<int> collectives = {plan::ALL_TO_ALL, plan::ALL_GATHER,
                                              plan::REDUCE_SCATTER};
    if (inst.has_kernel() && !kernels.count(inst.kernel().kind()))
      error(path + ".routed", "is true on a " + plan::KernelKind_Name(inst.kernel().kind()) +
                                  " kernel: only GROUPED_GEMM, BIAS_ADD, ACTIVATION_FUNCTION and "
                                  "TRANSPOSE work on routed expert rows");
    else if (inst.has_collective() && !collectives.count(inst.collective().kind()))
      error(path + ".routed", "is true on a " + plan::CollectiveKind_Name(inst.collective().kind()) +
                                  ": only ALL_TO_ALL, ALL_GATHER and REDUCE_SCATTER move routed "
                                  "expert rows");
    else if (!dispatched.count(inst.layer()))
      error(path + ".routed", "is true, but no DISPATCH of layer " + str(inst.layer()) +
                                  " is issued before it in the program");
  }

  // The buffer `index` as an operand of instruction ii: it exists, is live there, and holds
  // exactly the `need` elements its instruction's dimensions or counts give (of dtype I32 for
  // indices, of `dtype` when given). Exactly, not at least: the kernels and the runtime size
  // what they touch from the dimensions alone, so a buffer of another size means dimensions
  // and buffer disagree about the tensor, and every operand the compiler emits matches.
  void checkOperand(size_t pi, size_t ii, const std::vector<BufferInfo> &buffers,
                    const std::string &path, uint32_t index, const std::string &what,
                    std::optional<uint64_t> need, bool indices, int dtype = 0,
                    bool atLeast = false, const std::string &why = "") {
    const plan::Program &prog = p_.programs(int(pi));
    if (index >= buffers.size()) {
      error(path, "is " + str(index) + ", but the program has " + str(buffers.size()) + " buffers");
      return;
    }
    const plan::Buffer &b = prog.buffers(int(index));
    auto named = [&] { return quoted(b.name()) + " (buffers[" + str(index) + "])"; };
    if (b.live_begin() > ii || b.live_end() < ii)
      error(path, what + " " + named() + " is used at instruction " + str(ii) +
                      " but live only over [" + str(b.live_begin()) + ", " + str(b.live_end()) +
                      "]");
    if (indices && b.dtype() != plan::I32)
      error(path, what + " " + named() + " must be I32, not " + plan::DType_Name(b.dtype()));
    if (dtype != 0 && b.dtype() != dtype)
      error(path, what + " " + named() + " is " + plan::DType_Name(b.dtype()) +
                      ", but the collective moves " + plan::DType_Name(plan::DType(dtype)));
    if (!need || !buffers[index].elements) return;
    const uint64_t holds = *buffers[index].elements;
    if (holds < *need)
      error(path, what + " " + named() + " holds " + str(holds) + " elements, fewer than the " +
                      str(*need) + " it needs" + (why.empty() ? "" : " (" + why + ")"));
    else if (holds > *need && !atLeast)  // collectives name their dtype, kernels do not
      error(path, what + " " + named() + " holds " + str(holds) + " elements, more than the " +
                      str(*need) + (dtype != 0 ? " the collective moves" : " its dimensions give") +
                      " (operands hold exactly that)");
  }

  // BLAS (cblas_sgemm) and cuBLAS (cublasGemmEx, cublasGemmStridedBatchedEx) take the GEMM's
  // m, n, k, leading dimensions and batch count as int. Row-major operands have leading
  // dimensions k (a), n or k (b), n (c), so bounding m, n, k and the batch bounds them all;
  // the batch strides are long long and the element bound already covers them.
  void checkBlasDims(const std::string &path, const plan::Kernel &k) {
    auto fits = [&](const char *field, int64_t value) {
      if (value > L::kBlasInt)
        error(path + "." + field,
              "is " + str(value) + ", more than the " + str(L::kBlasInt) + " BLAS takes");
    };
    if (k.kind() == plan::GROUPED_GEMM) fits("groups", k.groups());
    fits("m", k.m());
    fits("n", k.n());
    fits("k", k.k());
  }

  // I32 operands hold expert indices (ROUTER, DISPATCH, COMBINE) and slots, rows of
  // slots_x / y counted from 0 (DISPATCH, COMBINE): the experts and the rows must fit one.
  void checkIndexDims(const std::string &path, const plan::Kernel &k) {
    if (k.experts() > L::kIndexMax)
      error(path + ".experts", "is " + str(k.experts()) + ", more than the " + str(L::kIndexMax) +
                                   " an I32 expert index holds");
    if (k.kind() == plan::ROUTER || k.capacity() < 0) return;
    const int64_t groups = std::max<int64_t>(1, k.groups());
    if (k.capacity() > L::kIndexMax / groups)
      error(path + ".capacity", "groups x capacity = " + str(groups) + " x " + str(k.capacity()) +
                                    " rows per expert, more than the " + str(L::kIndexMax) +
                                    " an I32 slot holds");
  }

  // ROPE's and KV_APPEND's first_position, through the last decode step for a per_step one;
  // a decode step's starts at the prompt's end. Whether it is in range.
  bool checkFirstPosition(const std::string &path, const plan::Kernel &k, bool decodeStep,
                          int64_t maxStep) {
    if (k.first_position() < 0 || k.first_position() > L::kIndexMax - maxStep) {
      error(path + ".first_position",
            "is " + str(k.first_position()) + (maxStep > 0 ? " (+ " + str(maxStep) + " steps)" : "") +
                ", must be in 0.." + str(L::kIndexMax) +
                (maxStep > 0 ? " through the last decode step" : ""));
      return false;
    }
    if (decodeStep && k.first_position() != int64_t(p_.workload().seq_len()))
      error(path + ".first_position", "is " + str(k.first_position()) +
                                          ", but decode step 0's new token is at position "
                                          "workload.seq_len " + str(p_.workload().seq_len()));
    return true;
  }

  void checkKernel(size_t pi, size_t ii, const std::vector<BufferInfo> &buffers) {
    const plan::Kernel &k = p_.programs(int(pi)).instructions(int(ii)).kernel();
    std::string path = instructionPath(pi, ii) + ".kernel";
    bool dimsValid = true;
    auto elems = [&](std::initializer_list<int64_t> dims) {
      std::optional<uint64_t> e = boundedProduct(dims);
      if (!e) dimsValid = false;
      return e;
    };
    std::vector<Operand> in, out;
    const bool decodeStep = inDecodeStep(pi, ii);
    const bool moves = k.kind() == plan::ROPE || k.kind() == plan::ATTENTION ||
                       k.kind() == plan::KV_APPEND || k.kind() == plan::ARGMAX_MERGE;
    if (k.per_step() && !(decodeStep && moves))
      error(path + ".per_step", "is true, but only the ROPE, ATTENTION, KV_APPEND and ARGMAX_MERGE "
                                "kernels of a GENERATE plan's decode step move with the step");
    else if (!k.per_step() && decodeStep && moves)
      error(path + ".per_step",
            "is false, but a decode step's " + plan::KernelKind_Name(k.kind()) +
                (k.kind() == plan::ARGMAX_MERGE ? " writes the next column of generated each step"
                                                : " moves one position per step") +
                ": it must be true");
    // The most a per_step kernel's positions grow: the last of new_tokens - 1 decode steps.
    const int64_t maxStep =
        k.per_step() ? std::max<int64_t>(0, int64_t(p_.workload().new_tokens()) - 2) : 0;
    auto stepsNote = [&](const char *field, int64_t value) {
      return maxStep > 0 ? std::string(field) + " " + str(value) + " + " + str(maxStep) +
                               " at the last decode step"
                         : std::string(field) + " " + str(value);
    };
    switch (k.kind()) {
    case plan::EMBEDDING:
      if (k.vocab_begin() < 0 || k.vocab_end() < k.vocab_begin())
        error(path + ".vocab_end", "vocabulary rows [" + str(k.vocab_begin()) + ", " +
                                       str(k.vocab_end()) + ") are not a range");
      in = {{"ids", elems({k.m()}), true},
            {"table", elems({k.vocab_end() - std::max<int64_t>(k.vocab_begin(), 0), k.n()})}};
      out = {{"x", elems({k.m(), k.n()})}};
      break;
    case plan::NORM:
      if (k.norm() == plan::NORM_KIND_UNSPECIFIED || !plan::NormKind_IsValid(k.norm()))
        error(path + ".norm", "is " + str(int(k.norm())) + ", not a norm kind");
      if (!std::isfinite(k.epsilon()) || k.epsilon() < 0)
        error(path + ".epsilon", "is " + num(k.epsilon()) + ", must be finite and >= 0");
      in = {{"x", elems({k.m(), k.n()})}, {"weight", elems({k.n()})}};
      if (k.norm() == plan::LAYER_NORM && k.inputs_size() == 3)
        in.push_back({"bias", elems({k.n()})});
      out = {{"y", elems({k.m(), k.n()})}};
      break;
    case plan::GEMM:
      checkBlasDims(path, k);
      in = {{"a", elems({k.m(), k.k()})}, {"b", elems({k.k(), k.n()})}};
      out = {{"c", elems({k.m(), k.n()})}};
      break;
    case plan::ATTENTION: {
      if (k.kv_heads() <= 0 || k.heads() < 0 || k.heads() % k.kv_heads() != 0)
        error(path + ".kv_heads", "is " + str(k.kv_heads()) +
                                      ", must be positive and divide heads (" + str(k.heads()) +
                                      ")");
      std::optional<uint64_t> q = elems({k.sequences(), k.seq_len(), k.heads(), k.head_dim()});
      std::optional<uint64_t> kv = elems({k.sequences(), k.seq_len(), k.kv_heads(), k.head_dim()});
      in = {{"q", q}, {"k", kv}, {"v", kv}};
      if (p_.workload().phase() == plan::DECODE || decodeStep) {
        if (k.seq_len() != 1)
          error(path + ".seq_len", "is " + str(k.seq_len()) + ", but " +
                                       (decodeStep ? "a GENERATE decode step" : "a DECODE step") +
                                       " attends 1 new token");
        if (decodeStep && k.kv_len() != int64_t(p_.workload().seq_len()))
          error(path + ".kv_len", "is " + str(k.kv_len()) + ", but decode step 0 attends the "
                                  "prompt's workload.seq_len " + str(p_.workload().seq_len()) +
                                  " cached positions");
        // A GENERATE cache holds every position of the generation; the step reads a prefix.
        const int64_t kvLen = k.kv_len() < 0 || uint64_t(k.kv_len()) > L::kElements
                                  ? k.kv_len() : k.kv_len() + maxStep;
        std::optional<uint64_t> cache = elems({k.sequences(), kvLen, k.kv_heads(), k.head_dim()});
        const std::string why = stepsNote("kv_len", k.kv_len()) + " cached positions";
        in.push_back({"k_cache", cache, false, decodeStep, why});
        in.push_back({"v_cache", cache, false, decodeStep, why});
      } else if (k.kv_len() != k.seq_len()) {
        error(path + ".kv_len", "is " + str(k.kv_len()) + ", but " +
                                    (generates() ? "a prefill" : "PREFILL") +
                                    " attends its own seq_len " + str(k.seq_len()) + " tokens");
      }
      out = {{"o", q}};
      break;
    }
    case plan::ACTIVATION_FUNCTION:
      if (k.activation() == plan::ACTIVATION_KIND_UNSPECIFIED ||
          !plan::ActivationKind_IsValid(k.activation()))
        error(path + ".activation", "is " + str(int(k.activation())) + ", not an activation kind");
      in = {{k.activation() == plan::SWIGLU ? "gate" : "x", elems({k.m(), k.n()})}};
      if (k.activation() == plan::SWIGLU) in.push_back({"up", elems({k.m(), k.n()})});
      out = {{"y", elems({k.m(), k.n()})}};
      break;
    case plan::ROUTER:
      checkIndexDims(path, k);
      if (k.top_k() < 1 || k.top_k() > k.experts())
        error(path + ".top_k",
              "is " + str(k.top_k()) + ", must be in 1.." + str(k.experts()) + " (the experts)");
      if (k.renormalize() != p_.model().renormalize_gates())
        error(path + ".renormalize", std::string("is ") + (k.renormalize() ? "true" : "false") +
                                         ", but the model's renormalize_gates is the opposite");
      in = {{"logits", elems({k.tokens(), k.experts()})}};
      out = {{"indices", elems({k.tokens(), k.top_k()}), true},
             {"gates", elems({k.tokens(), k.top_k()})}};
      break;
    case plan::DISPATCH:
      checkIndexDims(path, k);
      // groups 0 (unset) is one group; the kernels cut the tokens into equal groups.
      if (k.groups() > 1 && k.tokens() % k.groups() != 0)
        error(path + ".groups", "is " + str(k.groups()) + ", which does not divide the " +
                                    str(k.tokens()) + " tokens");
      in = {{"x", elems({k.tokens(), k.n()})}, {"indices", elems({k.tokens(), k.top_k()}), true}};
      if (k.inputs_size() == 3) in.push_back({"gates", elems({k.tokens(), k.top_k()})});
      out = {{"slots_x",
              elems({k.experts(), std::max<int64_t>(1, k.groups()), k.capacity(), k.n()})},
             {"slots", elems({k.tokens(), k.top_k()}), true}};
      break;
    case plan::GROUPED_GEMM:
      checkBlasDims(path, k);
      in = {{"a", elems({k.groups(), k.m(), k.k()})}, {"b", elems({k.groups(), k.k(), k.n()})}};
      out = {{"c", elems({k.groups(), k.m(), k.n()})}};
      break;
    case plan::COMBINE:
      checkIndexDims(path, k);
      // y is laid out as DISPATCH's slots_x: groups (0 means 1) x capacity rows per expert.
      in = {{"y", elems({k.experts(), std::max<int64_t>(1, k.groups()), k.capacity(), k.n()})},
            {"indices", elems({k.tokens(), k.top_k()}), true},
            {"slots", elems({k.tokens(), k.top_k()}), true},
            {"gates", elems({k.tokens(), k.top_k()})}};
      out = {{"x", elems({k.tokens(), k.n()})}};
      break;
    case plan::ADD:
      in = {{"a", elems({k.n()})}, {"b", elems({k.n()})}};
      out = {{"c", elems({k.n()})}};
      break;
    case plan::TRANSPOSE:
      in = {{"x", elems({k.m(), k.n(), k.inner()})}};
      out = {{"y", elems({k.m(), k.n(), k.inner()})}};
      break;
    case plan::BIAS_ADD:
      in = {{"x", elems({k.groups(), k.m(), k.n()})}, {"bias", elems({k.groups(), k.n()})}};
      out = {{"y", elems({k.groups(), k.m(), k.n()})}};
      break;
    case plan::SIGMOID_GATE:
      in = {{"x", elems({k.m(), k.n()})}, {"gate", elems({k.m()})}};
      out = {{"y", elems({k.m(), k.n()})}};
      break;
    case plan::ROPE:
      if (!(k.rope_theta() > 0) || !std::isfinite(k.rope_theta()) ||
          k.rope_theta() != p_.model().rope_theta())
        error(path + ".rope_theta", "is " + num(k.rope_theta()) +
                                        ", must be the model's rope_theta (" +
                                        num(p_.model().rope_theta()) + ") and positive");
      if (k.head_dim() < 2 || k.head_dim() % 2)
        error(path + ".head_dim", "is " + str(k.head_dim()) + ", must be even and positive");
      if (k.sequences() < 1 || k.m() % k.sequences() != 0)
        error(path + ".sequences", "is " + str(k.sequences()) + ", must be positive and divide m (" +
                                       str(k.m()) + ")");
      checkFirstPosition(path, k, decodeStep, maxStep);
      in = {{"x", elems({k.m(), k.heads(), k.head_dim()})}};
      out = {{"y", elems({k.m(), k.heads(), k.head_dim()})}};
      break;
    case plan::KV_APPEND: {
      if (k.sequences() < 1 || k.m() % k.sequences() != 0)
        error(path + ".sequences", "is " + str(k.sequences()) + ", must be positive and divide m (" +
                                       str(k.m()) + ")");
      else if (decodeStep && k.m() != k.sequences())
        error(path + ".m", "is " + str(k.m()) + ", but a decode step appends one position of its " +
                               str(k.sequences()) + " sequences (m = sequences)");
      const bool positionValid = checkFirstPosition(path, k, decodeStep, maxStep);
      in = {{"x", elems({k.m(), k.n()})}};
      // Rows before the last write, then the rows written.
      std::optional<uint64_t> cache;
      if (positionValid) {
        std::optional<uint64_t> before = elems({k.first_position() + maxStep, k.sequences()});
        std::optional<uint64_t> written = elems({k.m()});
        if (before && written) cache = elems({int64_t(*before + *written), k.n()});
      }
      out = {{"cache", cache, false, true,
              "rows up to (" + stepsNote("first_position", k.first_position()) + ") x sequences " +
                  str(k.sequences()) + " + m " + str(k.m()) + ", of n " + str(k.n())}};
      break;
    }
    case plan::ARGMAX:
      // Ids are I32: the largest, vocab_end - 1, must fit one.
      if (k.vocab_end() < 1 || k.vocab_end() > L::kIndexMax)
        error(path + ".vocab_end", "is " + str(k.vocab_end()) + ", must be in 1.." +
                                       str(L::kIndexMax) + " (ids below it are I32)");
      if (k.seq_len() < 1)
        error(path + ".seq_len", "is " + str(k.seq_len()) +
                                     ", must be positive: ARGMAX reads position seq_len - 1");
      in = {{"logits", elems({k.sequences(), k.seq_len(), k.n()})}};
      out = {{"pairs", elems({k.sequences(), 2}), true}};
      break;
    case plan::ARGMAX_MERGE:
      // first_position is a column of generated, through the last decode step's.
      if (k.first_position() < 0 || k.first_position() >= k.n() ||
          maxStep >= k.n() - k.first_position())
        error(path + ".first_position",
              "is " + str(k.first_position()) +
                  (maxStep > 0 ? " (+ " + str(maxStep) + " at the last decode step)" : "") +
                  ", but generated has n " + str(k.n()) +
                  " columns: must be at least 0 and below n" +
                  (maxStep > 0 ? " through the last decode step" : ""));
      in = {{"pairs", elems({std::max<int64_t>(1, k.groups()), k.m(), 2}), true}};
      out = {{"ids", elems({k.m()}), true}, {"generated", elems({k.m(), k.n()}), true}};
      break;
    default: error(path + ".kind", "is " + str(int(k.kind())) + ", not a kernel kind"); return;
    }
    std::string kind = plan::KernelKind_Name(k.kind());
    if (!dimsValid)
      error(path, kind + " dimensions are negative or their products exceed " + str(L::kElements));
    auto operandNames = [](const std::vector<Operand> &ops) {
      std::string s;
      for (const Operand &o : ops) s += (s.empty() ? "" : ", ") + std::string(o.name);
      return s;
    };
    auto checkList = [&](const char *field, const google::protobuf::RepeatedField<uint32_t> &given,
                         const std::vector<Operand> &expected) {
      if (size_t(given.size()) != expected.size()) {
        std::string counts = str(expected.size());
        if (k.kind() == plan::NORM && k.norm() == plan::LAYER_NORM &&
            std::string(field) == "inputs")
          counts = "2 or 3";
        error(path + "." + field, kind + " takes " + counts + " " + field + " (" +
                                      operandNames(expected) + "), not " + str(given.size()));
        return;
      }
      for (size_t i = 0; i < expected.size(); ++i)
        checkOperand(pi, ii, buffers, indexPath(path + "." + field, i), given[int(i)],
                     std::string(expected[i].name), expected[i].elements, expected[i].indices, 0,
                     expected[i].atLeast, expected[i].why);
    };
    checkList("inputs", k.inputs(), in);
    checkList("outputs", k.outputs(), out);
  }

  void checkCollective(size_t pi, size_t ii, const std::vector<BufferInfo> &buffers) {
    const plan::Program &prog = p_.programs(int(pi));
    const plan::Collective &c = prog.instructions(int(ii)).collective();
    std::string path = instructionPath(pi, ii) + ".collective";
    if (c.feeds_next_step() && c.kind() != plan::SEND && c.kind() != plan::RECV) {
      const std::string kind = plan::CollectiveKind_IsValid(c.kind())
                                   ? plan::CollectiveKind_Name(c.kind())
                                   : "collective of kind " + str(int(c.kind()));
      error(path + ".feeds_next_step", "is true on a " + kind +
                                           ", but only a SEND of sampled tokens to the next "
                                           "decode step and the RECV of them carry it");
    } else if (c.feeds_next_step() && !generates()) {
      const plan::Phase phase = p_.workload().phase();
      error(path + ".feeds_next_step",
            "is true, but workload.phase is " +
                (plan::Phase_IsValid(phase) ? plan::Phase_Name(phase) : str(int(phase))) +
                ": only a GENERATE plan has decode steps to feed");
    }
    int axis = axisIndex(c.axis());
    if (axis < 0) {
      error(path + ".axis", quoted(c.axis()) + " is not a mesh axis (" + kAxisOrder + ")");
      return;
    }
    if (dtypeBytes(c.dtype()) == 0) {
      error(path + ".dtype", "is " + str(int(c.dtype())) + ", not a dtype");
      return;
    }
    const uint64_t n = degree_[axis];  // every group on the axis has this size
    auto scaled = [](uint64_t count, uint64_t factor) -> std::optional<uint64_t> {
      uint64_t r;
      if (__builtin_mul_overflow(count, factor, &r) || r > L::kElements) return std::nullopt;
      return r;
    };
    auto tooLarge = [&](std::optional<uint64_t> e) {
      if (!e)
        error(path + ".count",
              "is " + str(c.count()) + ": the elements moved exceed " + str(L::kElements));
      return e;
    };
    auto input = [&](std::optional<uint64_t> need) {
      checkOperand(pi, ii, buffers, path + ".input", c.input(), "input", need, false, c.dtype());
    };
    auto output = [&](std::optional<uint64_t> need) {
      checkOperand(pi, ii, buffers, path + ".output", c.output(), "output", need, false, c.dtype());
    };
    switch (c.kind()) {
    case plan::ALL_REDUCE:
      input(tooLarge(scaled(c.count(), 1)));
      output(scaled(c.count(), 1));
      break;
    case plan::ALL_GATHER:
      input(tooLarge(scaled(c.count(), 1)));
      output(tooLarge(scaled(c.count(), n)));
      break;
    case plan::REDUCE_SCATTER:
      input(tooLarge(scaled(c.count(), n)));
      output(scaled(c.count(), 1));
      break;
    case plan::ALL_TO_ALL: checkAllToAll(pi, ii, buffers, path, axis); break;
    case plan::SEND:
    case plan::RECV: checkPointToPoint(pi, ii, buffers, path, axis); break;
    default: error(path + ".kind", "is " + str(int(c.kind())) + ", not a collective kind"); return;
    }
    if (axis == kPipelineAxis && c.kind() != plan::SEND && c.kind() != plan::RECV)
      pipelineCollectives_[pi].push_back(&c);
  }

  void checkAllToAll(size_t pi, size_t ii, const std::vector<BufferInfo> &buffers,
                     const std::string &path, int axis) {
    const plan::Collective &c = p_.programs(int(pi)).instructions(int(ii)).collective();
    const uint64_t n = degree_[axis];
    auto total =
        [&](const char *field,
            const google::protobuf::RepeatedField<uint64_t> &counts) -> std::optional<uint64_t> {
      if (n > 0 && uint64_t(counts.size()) != n) {
        error(path + "." + field, "has " + str(counts.size()) +
                                      " entries, expected one per member of the " + kAxes[axis] +
                                      " group (" + str(n) + ")");
        return std::nullopt;
      }
      uint64_t sum = 0;
      for (uint64_t v : counts)
        if (__builtin_add_overflow(sum, v, &sum) || sum > L::kElements) {
          error(path + "." + field, "sum exceeds " + str(L::kElements) + " elements");
          return std::nullopt;
        }
      return sum;
    };
    std::optional<uint64_t> sent = total("send_counts", c.send_counts());
    std::optional<uint64_t> received = total("recv_counts", c.recv_counts());
    checkOperand(pi, ii, buffers, path + ".input", c.input(), "input", sent, false, c.dtype());
    checkOperand(pi, ii, buffers, path + ".output", c.output(), "output", received, false,
                 c.dtype());
    if (!sent || !received || axis == kPipelineAxis || c.send_counts_size() == 0) return;
    // Every member runs this program: member i sends send_counts[j] to j, which expects
    // recv_counts[i] from i, so all entries are one value.
    uint64_t each = c.send_counts(0);
    for (int j = 0; j < c.send_counts_size(); ++j)
      if (c.send_counts(j) != each || c.recv_counts(j) != each) {
        error(path + ".recv_counts",
              "every member of the group runs this program, so each send_counts[j] must equal "
              "each recv_counts[i] (entry " +
                  str(j) + ": send " + str(c.send_counts(j)) + ", recv " + str(c.recv_counts(j)) +
                  ", send_counts[0] " + str(each) + ")");
        return;
      }
  }

  void checkPointToPoint(size_t pi, size_t ii, const std::vector<BufferInfo> &buffers,
                         const std::string &path, int axis) {
    const plan::Collective &c = p_.programs(int(pi)).instructions(int(ii)).collective();
    const bool send = c.kind() == plan::SEND;
    std::optional<uint64_t> count;
    if (c.count() <= L::kElements)
      count = c.count();
    else
      error(path + ".count", "is " + str(c.count()) + ", more than " + str(L::kElements));
    if (send)
      checkOperand(pi, ii, buffers, path + ".input", c.input(), "input", count, false, c.dtype());
    else
      checkOperand(pi, ii, buffers, path + ".output", c.output(), "output", count, false,
                   c.dtype());
    if (axis != kPipelineAxis) {
      error(path + ".axis",
            "is " + quoted(c.axis()) + ": SEND and RECV are pipeline transfers, over \"pp\"");
      return;
    }
    const uint64_t stage = p_.programs(int(pi)).stage();
    if (c.peer() >= degree_[axis]) {
      error(path + ".peer",
            "is " + str(c.peer()) + ", but the pp group has " + str(degree_[axis]) + " members");
      return;
    }
    if (c.peer() == stage) {
      error(path + ".peer", "is " + str(c.peer()) + ", the program's own stage");
      return;
    }
    P2P transfer{c.count(), c.sequence(), c.dtype(), pi, ii, inDecodeStep(pi, ii),
                 c.feeds_next_step()};
    if (send)
      sends_[{stage, c.peer()}].push_back(transfer);
    else
      recvs_[{c.peer(), stage}].push_back(transfer);
  }

  // ---- across programs ---------------------------------------------------------------------

  // The k-th SEND from stage a to stage b meets the k-th RECV at b from a: same count, dtype
  // and place in the global order. Between stages whose SENDs feed the next decode step, see
  // checkFeedingPairs.
  void checkSendRecvPairs() {
    if (!ranksValid_) return;
    auto describe = [](const P2P &t) {
      return "count " + str(t.count) + " " + plan::DType_Name(plan::DType(t.dtype)) + " sequence " +
             str(t.sequence);
    };
    std::map<std::pair<uint64_t, uint64_t>, int> keys;
    for (const auto &[key, list] : sends_) keys[key] = 0;
    for (const auto &[key, list] : recvs_) keys[key] = 0;
    static const std::vector<P2P> none;
    for (const auto &[key, unused] : keys) {
      auto s = sends_.find(key), r = recvs_.find(key);
      const std::vector<P2P> &sends = s == sends_.end() ? none : s->second;
      const std::vector<P2P> &recvs = r == recvs_.end() ? none : r->second;
      std::string between = "stage " + str(key.first) + " to stage " + str(key.second);
      if (std::any_of(sends.begin(), sends.end(), [](const P2P &t) { return t.feeds; })) {
        checkFeedingPairs(sends, recvs, between);
        continue;
      }
      for (const P2P &t : recvs)
        if (t.feeds)
          error(instructionPath(t.program, t.instruction) + ".collective.feeds_next_step",
                "is true, but no SEND from " + between + " feeds the next decode step");
      for (size_t i = 0; i < std::min(sends.size(), recvs.size()); ++i) {
        const P2P &a = sends[i], &b = recvs[i];
        if (a.count != b.count || a.dtype != b.dtype || a.sequence != b.sequence)
          error(instructionPath(b.program, b.instruction) + ".collective",
                "RECV " + str(i) + " from " + between + " (" + describe(b) +
                    ") does not match its SEND at " + instructionPath(a.program, a.instruction) +
                    " (" + describe(a) + ")");
        else if (a.decodeStep != b.decodeStep)
          error(instructionPath(b.program, b.instruction) + ".collective",
                "RECV " + str(i) + " from " + between + " is in " + partName(b.decodeStep) +
                    ", but its SEND at " + instructionPath(a.program, a.instruction) + " is in " +
                    partName(a.decodeStep) + "; a transfer stays within one part");
      }
      if (sends.size() != recvs.size()) {
        const P2P &extra = sends.size() > recvs.size() ? sends[recvs.size()] : recvs[sends.size()];
        error(instructionPath(extra.program, extra.instruction) + ".collective",
              str(sends.size()) + " SENDs but " + str(recvs.size()) + " RECVs from " + between +
                  "; this one has no partner");
      }
    }
  }

  // SENDs that feed the next decode step cross parts: the prefill's k-th such SEND meets
  // decode step 0's k-th RECV, decode step s's meets step s + 1's. So every SEND between the
  // two stages feeds (a RECV could not tell an ordinary one from them), every RECV is in the
  // decode step and says it is fed, and the prefill's and the decode step's k-th SEND each match the k-th RECV
  // in count and dtype. Their `sequence`s belong to different parts: not compared.
  void checkFeedingPairs(const std::vector<P2P> &sends, const std::vector<P2P> &recvs,
                         const std::string &between) {
    auto describe = [](const P2P &t) {
      return "count " + str(t.count) + " " + plan::DType_Name(plan::DType(t.dtype));
    };
    std::vector<const P2P *> parts[2];  // the prefill's feeding SENDs, the decode step's
    bool wellFormed = true;
    for (const P2P &t : sends) {
      if (!t.feeds) {
        error(instructionPath(t.program, t.instruction) + ".collective.feeds_next_step",
              "is false, but other SENDs from " + between +
                  " feed the next decode step: every SEND between two stages feeds, or none");
        wellFormed = false;
      }
      parts[t.decodeStep].push_back(&t);
    }
    for (const P2P &t : recvs)
      if (!t.decodeStep) {
        error(instructionPath(t.program, t.instruction) + ".collective",
              "RECV from " + between + " is in the prefill, but the SENDs from " + between +
                  " feed the next decode step: they are received in the decode step");
        wellFormed = false;
      } else if (!t.feeds) {
        error(instructionPath(t.program, t.instruction) + ".collective.feeds_next_step",
              "is false, but the SENDs from " + between +
                  " feed the next decode step: the RECVs of them carry it too");
        wellFormed = false;
      }
    if (!wellFormed) return;
    for (int part = 0; part < 2; ++part) {
      const std::vector<const P2P *> &fed = parts[part];
      for (size_t i = 0; i < std::min(fed.size(), recvs.size()); ++i) {
        const P2P &a = *fed[i], &b = recvs[i];
        if (a.count != b.count || a.dtype != b.dtype)
          error(instructionPath(b.program, b.instruction) + ".collective",
                "RECV " + str(i) + " from " + between + " (" + describe(b) +
                    ") does not match the SEND in " + partName(part) + " that feeds it at " +
                    instructionPath(a.program, a.instruction) + " (" + describe(a) + ")");
      }
      if (fed.size() != recvs.size()) {
        const P2P &extra = fed.size() > recvs.size() ? *fed[recvs.size()] : recvs[fed.size()];
        error(instructionPath(extra.program, extra.instruction) + ".collective",
              str(fed.size()) + " SENDs in " + partName(part) + " feed the next decode step but " +
                  str(recvs.size()) + " RECVs in the decode step receive from " + between +
                  "; this one has no partner");
      }
    }
  }

  // A pp group holds one rank of every stage, so every program issues the same collectives
  // over pp (SEND/RECV aside).
  void checkPipelineCollectives() {
    if (!ranksValid_ || pipelineCollectives_.empty()) return;
    const auto &first = pipelineCollectives_[0];
    auto same = [](const plan::Collective &a, const plan::Collective &b) {
      return a.kind() == b.kind() && a.count() == b.count() && a.dtype() == b.dtype() &&
             a.sequence() == b.sequence() &&
             std::equal(a.send_counts().begin(), a.send_counts().end(), b.send_counts().begin(),
                        b.send_counts().end()) &&
             std::equal(a.recv_counts().begin(), a.recv_counts().end(), b.recv_counts().begin(),
                        b.recv_counts().end());
    };
    for (size_t pi = 1; pi < pipelineCollectives_.size(); ++pi) {
      const auto &mine = pipelineCollectives_[pi];
      size_t common = std::min(first.size(), mine.size());
      for (size_t i = 0; i < common; ++i)
        if (!same(*first[i], *mine[i])) {
          error(programPath(pi), "collective " + str(i) +
                                     " over pp differs from programs[0]'s; "
                                     "every stage issues the same collectives over pp");
          break;
        }
      if (first.size() != mine.size())
        error(programPath(pi), "issues " + str(mine.size()) + " collectives over pp, programs[0] " +
                                   str(first.size()) + "; every stage issues the same");
    }
  }
};

} // namespace

std::string formatErrors(const std::string &file, const std::vector<PlanError> &errors) {
  std::string out;
  for (const PlanError &e : errors)
    out += file + ": " + (e.path.empty() ? "" : e.path + ": ") + e.message + "\n";
  return out;
}

std::vector<PlanError> validatePlan(const plan::Plan &p) { return Validator(p).run(); }

std::optional<plan::Plan> parsePlan(std::string_view bytes, std::vector<PlanError> &errors) {
  if (bytes.size() > kMaxPlanBytes) {
    errors.push_back({"", "not a moeplan plan: " + std::to_string(bytes.size()) +
                              " bytes, more than the limit of " + std::to_string(kMaxPlanBytes)});
    return std::nullopt;
  }
  plan::Plan p;
  bool parsed;
  {
    google::protobuf::LogSilencer quiet;  // invalid UTF-8 is reported below, not logged
    parsed = p.ParseFromArray(bytes.data(), int(bytes.size()));
  }
  if (!parsed) {
    errors.push_back({"", "not a moeplan plan: the bytes do not parse as a plan "
                          "(truncated or corrupt)"});
    return std::nullopt;
  }
  if (p.format() != kPlanFormat) {
    errors.push_back({"", "not a moeplan plan: format is " + quoted(p.format()) + ", expected \"" +
                              kPlanFormat + "\""});
    return std::nullopt;
  }
  if (p.schema_version() != kPlanSchemaVersion) {
    errors.push_back({"", "plan schema version " + std::to_string(p.schema_version()) +
                              ", this moeplan reads version " + std::to_string(kPlanSchemaVersion) +
                              "; recompile the plan"});
    return std::nullopt;
  }
  std::vector<PlanError> invalid = validatePlan(p);
  if (!invalid.empty()) {
    errors.insert(errors.end(), invalid.begin(), invalid.end());
    return std::nullopt;
  }
  return p;
}

std::optional<plan::Plan> readPlanFile(const std::string &path, std::vector<PlanError> &errors) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    errors.push_back({"", "cannot read: " + ec.message()});
    return std::nullopt;
  }
  if (size > kMaxPlanBytes) {
    errors.push_back({"", "not a moeplan plan: " + std::to_string(size) +
                              " bytes, more than the limit of " + std::to_string(kMaxPlanBytes)});
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(size, '\0');
  if (!in || !in.read(bytes.data(), std::streamsize(size))) {
    errors.push_back({"", std::string("cannot read: ") + std::strerror(errno)});
    return std::nullopt;
  }
  return parsePlan(bytes, errors);
}

std::string serializePlan(const plan::Plan &p) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    p.SerializeToCodedStream(&coded);
  }  // the coded stream flushes into `bytes` when it goes out of scope
  return bytes;
}

bool writePlanFile(const plan::Plan &p, const std::string &path, std::string &error) {
  try {
    files::writeAtomically(path, serializePlan(p));  // a reader never sees half a plan
  } catch (const files::WriteError &e) {
    error = e.what();
    return false;
  }
  return true;
}

std::string formatRanks(const std::vector<uint32_t> &ranks) {
  constexpr size_t kListedRuns = 16;
  std::vector<std::string> runs;
  for (size_t i = 0; i < ranks.size();) {
    size_t end = i;
    while (end + 1 < ranks.size() && ranks[end + 1] == ranks[end] + 1) ++end;
    if (end == i + 1) end = i;  // two in a row read better as "2,3"
    runs.push_back(std::to_string(ranks[i]) + (end > i ? "-" + std::to_string(ranks[end]) : ""));
    i = end + 1;
  }
  std::string out;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs.size() > kListedRuns && i == kListedRuns / 2) {
      out += ",...," + runs.back() + " (" + std::to_string(ranks.size()) + " ranks)";
      break;
    }
    out += (i ? "," : "") + runs[i];
  }
  return out;
}

std::string formatSeconds(double seconds) {
  static const struct {
    double scale;
    const char *unit;
  } units[] = {{1, " s"}, {1e-3, " ms"}, {1e-6, " us"}, {1e-9, " ns"}};
  if (seconds == 0) return "0 s";
  const auto *u = std::begin(units);
  while (seconds < u->scale && u + 1 != std::end(units)) ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g%s", seconds / u->scale, u->unit);
  return buf;
}

std::string formatBytes(double bytes) {
  static const struct {
    double scale;
    const char *unit;
  } units[] = {{1e12, " TB"}, {1e9, " GB"}, {1e6, " MB"}, {1e3, " KB"}, {1, " B"}};
  const auto *u = std::begin(units);
  while (std::fabs(bytes) < u->scale && u + 1 != std::end(units)) ++u;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g%s", bytes / u->scale, u->unit);
  return buf;
}

} // namespace moeplan::planfile
