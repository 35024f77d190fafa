// The deployment as plain numbers, after field-level checks and defaults: what the analyses
// and rules work on. Built once from the protobuf by resolveSpec().
#pragma once

#include "moeplan/Description/Finding.h"
#include "moeplan/schema/deployment.pb.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeplan {

enum class Axis { TP, EP, DP, PP };
const char *axisName(Axis a);

struct ModelSpec {
  int64_t layers = 0, dModel = 0, heads = 0, headDim = 0, kvHeads = 0;
  int64_t experts = 0, topK = 0, expertHidden = 0, denseFfnHidden = 0;
  // Layer i is MoE when it is in moeLayerList (ascending; used when not empty), otherwise
  // when moeEveryNth > 0 and i % moeEveryNth == 0; moeEveryNth 0 means no MoE layer.
  int64_t moeEveryNth = 1;
  std::vector<int64_t> moeLayerList;
  desc::Norm norm = desc::LAYER_NORM;
  desc::Activation activation = desc::GELU;
  int64_t vocab = 0;  // 0: no embedding, no LM head
  bool tieEmbeddings = false;
  bool qkvBias = false, outBias = false, ffnBias = false;  // biases per projection group
  int64_t sharedExpertHidden = 0;  // 0: no shared expert in the MoE layers
  bool sharedExpertGate = false;   // sigmoid(x . w) scales the shared expert's output
  double normEpsilon = 1e-5;
  double ropeTheta = 0;  // 0: no rotary position embedding
  bool renormalizeGates = false;
  desc::DType dtype = desc::FP16;
  std::optional<double> declaredParams;

  bool isMoeLayer(int64_t layer) const;
  int64_t moeLayerCount() const;
  int64_t denseLayerCount() const { return layers - moeLayerCount(); }
  int64_t bytesPerParam() const;
  // Weight matrices in one FFN: 2 for GELU (up, down), 3 for SwiGLU (gate, up, down).
  int64_t ffnMatrices() const { return activation == desc::SWIGLU ? 3 : 2; }
};

struct LinkSpec {
  double bandwidthBytesPerS = 0;
  double latencyS = 0;
  double reduceBytesPerS = 0;  // 0: the bandwidth counts the reduction (Link.reduce_gb_per_s)
};

struct ClusterSpec {
  int64_t nodes = 0, gpusPerNode = 0;
  double peakFlops = 0, mfu = 0, memoryBytes = 0, memoryBandwidth = 0, memoryBandwidthUtil = 0;
  LinkSpec intraNode, interNode;
  std::vector<std::pair<double, double>> gemmEfficiency;  // (rows, share of peak), rows increasing
  double launchOverheadS = 0;
  double computeJitter = 0;  // desc::Gpu.compute_jitter
  // Measured bytes per second of kernels the memory roofline may misjudge (desc::KernelRates);
  // 0: memory bandwidth x utilization.
  struct KernelRates {
    double layerNorm = 0, rmsNorm = 0, gelu = 0, swiglu = 0, router = 0;
  } kernelRates;
  int64_t gpus() const { return nodes * gpusPerNode; }
  // The highest share of peak any kernel reaches: mfu, or a GEMM efficiency above it.
  double bestEfficiency() const {
    double best = mfu;
    for (const auto &[rows, e] : gemmEfficiency) best = std::max(best, e);
    return best;
  }
};

struct WorkloadSpec {
  int64_t sequences = 0, seqLenMin = 0, seqLenMax = 0;
  desc::Phase phase = desc::PREFILL;
  int64_t kvCacheLen = 0;
  // GENERATE: seqLenMin = seqLenMax = prompt_len (the prefill's tokens per sequence), and
  // newTokens generated per sequence; kvCacheLen stays 0 (the prefill caches nothing yet).
  int64_t newTokens = 0;
  std::vector<double> expertLoad;  // empty: uniform routing
  std::vector<double> routingStickiness;  // one, or one per layer; empty: 0

  bool generates() const { return phase == desc::GENERATE; }
  // Positions each KV cache holds for the whole generation: the last generated token is
  // never fed back, so prompt + new_tokens - 1.
  int64_t cachePositions() const { return seqLenMax + newTokens - 1; }

  // The sequence lengths the workload is judged at: min, `count` - 2 geometric midpoints and
  // max (ascending, without repeats; one point for a fixed length or for DECODE, whose step
  // does not depend on it). Midpoints are rounded to a multiple of gcd(min, max), so a
  // strategy whose micro-batch tokens divide over tp at both ends does at every point.
  std::vector<int64_t> seqPoints(int count) const;
};

struct StagePlacementSpec {
  int64_t stage = -1;
  std::vector<int64_t> gpus;
  std::optional<int64_t> firstLayer, lastLayer;
  int index = 0;  // position in strategy.placement, for field paths
};

struct StrategySpec {
  int64_t tp = 1, pp = 1, dp = 1, ep = 1, expertTp = 1, microBatches = 1;
  bool expertTpDefaulted = false;  // expert_tp was left out and follows tp
  std::optional<double> capacityFactor;
  int64_t dispatchGroups = 1;  // capacity groups per dispatching rank and micro-batch
  desc::DropPolicy dropPolicy = desc::POSITION;  // which choices over capacity are dropped
  desc::Schedule schedule = desc::ONE_F_ONE_B;
  desc::Overlap overlap = desc::NO_OVERLAP;
  std::vector<Axis> rankOrder{Axis::TP, Axis::EP, Axis::DP, Axis::PP};
  std::vector<StagePlacementSpec> placement;

  // Micro-batches the plan runs per replica: each of `microBatches` runs as two halves under
  // DUAL_MICRO_BATCH. Shapes, slices and capacity groups are per planned micro-batch; the
  // pipeline moves them in pairs, so its bubble is that of `microBatches`.
  int64_t planMicroBatches() const {
    return overlap == desc::DUAL_MICRO_BATCH ? 2 * microBatches : microBatches;
  }

  // GPUs the strategy occupies: tp x pp x dp.
  int64_t world() const { return tp * pp * dp; }
  // Expert data parallel: tp x dp / (expert_tp x ep); 0 when that does not divide.
  int64_t expertDp() const;
  // Whether the `tokens` of a micro-batch are split over tp between attention and the FFN
  // (sequence parallelism). A prefill always splits them (strategy.tokens-by-tp requires tp
  // to divide); a decode step splits them when tp divides, and otherwise keeps every token
  // on every tp rank and all-reduces after the row-parallel projections, as Megatron
  // inference does (strategy.decode-replicates-tokens).
  bool sequenceParallel(int64_t tokens) const { return tokens % tp == 0; }
  // The tokens each rank holds between attention and the FFN, and routes to experts.
  int64_t tokensPerRank(int64_t tokens) const {
    return sequenceParallel(tokens) ? tokens / tp : tokens;
  }
  std::string str() const;  // "tp 2 pp 2 dp 2 ep 4 expert_tp 1 micro_batches 8 [dual]"
};

struct RequirementsSpec {
  std::optional<double> maxLatencyMs, minThroughputTokensPerS, maxMemoryPerGpuGb,
      minLoadBalance, maxCommOverhead, minGpuUtilization;
  std::optional<double> maxTtftMs, maxTpotMs, minDecodeTokensPerS;  // GENERATE
};

// What a proposal asserts about the deployment (desc::Claims), in the description's units.
struct ClaimsSpec {
  double tolerance = 0.1;  // relative
  std::optional<double> latencyMs, throughputTokensPerS, sequencesPerS, memoryPerGpuGb,
      weightsPerGpuGb, activationsPerGpuGb, memoryUtilization, commOverhead, loadBalance,
      gpuUtilization, pipelineBubble, layerComputeMs, collectiveMs;
  std::optional<int64_t> gpus, idleGpus, expertsPerGpu, headsPerGpu, batchSequences;
};

// The strategies `moeplan search` tries (desc::Search); an empty list: the axis's default.
struct SearchSpec {
  std::vector<int64_t> tp, pp, dp, ep, expertTp, microBatches;
  std::vector<desc::Schedule> schedules;
  std::vector<desc::Overlap> overlaps;
  std::vector<double> capacityFactors;
  bool noCapacityLimit = false;
  std::vector<std::vector<Axis>> rankOrders;
  int64_t minGpus = 1, maxGpus = 0;  // 0: the cluster's GPUs
};

struct DeploymentSpec {
  std::string name;
  ModelSpec model;
  ClusterSpec cluster;
  WorkloadSpec workload;
  StrategySpec strategy;
  RequirementsSpec requirements;
  ClaimsSpec claims;
  SearchSpec search;
};

// Limits past which a value is not a plausible deployment but a typo or an attack; they keep
// every product the analyses form far inside 64 bits.
struct FieldLimits {
  static constexpr int64_t kLayers = 4096, kDModel = 1 << 18, kHeads = 4096, kHeadDim = 4096;
  static constexpr int64_t kExperts = 1 << 16, kHidden = 1 << 20, kVocab = 1 << 24;
  static constexpr int64_t kNodes = 1 << 16, kGpusPerNode = 1024, kGpus = 1 << 20;
  static constexpr int64_t kSequences = 1 << 24, kSeqLen = 1 << 24, kDegree = 1 << 20;
  static constexpr double kTflops = 1e6, kMemoryGb = 1e6, kBandwidthTb = 1e4, kLatencyUs = 1e6;
  static constexpr double kStickiness = 0.99;  // PlanLimits::kStickiness
};

// Checks every field on its own (present when required, positive, inside its limits,
// fractions in range, rank order well formed) and fills in defaults. Findings go to `out`
// with rule ids "field.*". Returns nullopt when the description cannot be used.
std::optional<DeploymentSpec> resolveSpec(const desc::Deployment &d, std::vector<Finding> &out);

// "tp-ep-dp-pp": the inverse of parseRankOrder.
std::string formatRankOrder(const std::vector<Axis> &order);

// Parses "tp-ep-dp-pp"; returns nullopt and sets `error` when malformed.
std::optional<std::vector<Axis>> parseRankOrder(const std::string &s, std::string &error);

} // namespace moeplan
