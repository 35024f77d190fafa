// moeplan search against brute force: on a small cluster, every strategy compiled one by one
// (own loops over every axis value, checked by the rules, compiled and simulated at each
// point) gives the same best as the search, with and without pruning, and the bounds the
// search prunes with hold for every candidate.
#include "moeplan/Analysis/WeightMemory.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Compiler/Workload.h"
#include "moeplan/Description/Load.h"
#include "moeplan/Report/Inspect.h"
#include "moeplan/Search/Search.h"
#include "moeplan/Simulate/Simulator.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>

namespace moeplan {
namespace {

// A small MoE on one node of 4 GPUs, judged at 16, 32 (the midpoint) and 64 tokens.
const char *kSmall = R"(
name: "small"
model { layers: 2 d_model: 64 heads: 4 head_dim: 16 kv_heads: 4 experts: 8 top_k: 1
        expert_hidden: 128 moe_layers { all: true } norm: LAYER_NORM activation: GELU
        vocab_size: 128 dtype: FP32 }
cluster { nodes: 2 gpus_per_node: 2
  gpu { peak_tflops: 100 mfu: 0.5 memory_gb: 1 memory_bandwidth_tb_per_s: 1 memory_bandwidth_utilization: 0.8 }
  intra_node { bandwidth_gb_per_s: 100 latency_us: 5 }
  inter_node { bandwidth_gb_per_s: 10 latency_us: 20 } }
workload { sequences: 8 seq_len_range { min: 16 max: 64 } phase: PREFILL }
strategy { capacity_factor: 1.5 }
)";

// How these tests compile a strategy: quietly, the plan returned without judging the
// workload.
CompileOptions quietly() {
  CompileOptions o;
  o.printDiagnostics = false;
  o.judgeWorkload = false;
  return o;
}

struct Brute {
  StrategySpec strategy;
  double latency = 0, throughputPerGpu = INFINITY, memory = 0;
  double ttft = 0, tpot = 0, decodePerGpu = INFINITY;  // GENERATE
  bool feasible = true;
};

// Whether the description's search section (if it lists pp) tries pp.
bool searchedPp(const desc::Deployment &d, int64_t pp) {
  const auto &listed = d.search().pp();
  return listed.empty() || std::find(listed.begin(), listed.end(), uint32_t(pp)) != listed.end();
}

// Every strategy, compiled one by one: no equivalence, no bound, no thread. Of the search
// section's axes, only pp narrows it.
std::vector<Brute> bruteForce(const desc::Deployment &d, const DeploymentSpec &spec) {
  std::vector<Brute> out;
  CompileSession session;
  const std::vector<int64_t> points = spec.workload.seqPoints(3);
  const int64_t gpus = spec.cluster.gpus();
  std::vector<std::vector<Axis>> orders;
  std::vector<Axis> order{Axis::DP, Axis::EP, Axis::PP, Axis::TP};
  std::sort(order.begin(), order.end());  // next_permutation walks from the least: all 24
  do orders.push_back(order);
  while (std::next_permutation(order.begin(), order.end()));
  for (int64_t tp = 1; tp <= gpus; ++tp)
    for (int64_t pp = 1; tp * pp <= gpus; ++pp)
      for (int64_t dp = 1; tp * pp * dp <= gpus && searchedPp(d, pp); ++dp)
        for (int64_t ep = 1; ep <= gpus; ++ep)
          for (int64_t etp = 1; etp <= gpus; ++etp)
            for (int64_t mb = 1; mb <= spec.workload.sequences; ++mb)
              for (desc::Schedule schedule : {desc::ONE_F_ONE_B, desc::GPIPE})
                for (const std::vector<Axis> &o : orders) {
                  DeploymentSpec c = spec;
                  StrategySpec &s = c.strategy;
                  s.tp = tp, s.pp = pp, s.dp = dp, s.ep = ep, s.expertTp = etp;
                  s.microBatches = mb, s.schedule = schedule, s.rankOrder = o;
                  s.expertTpDefaulted = false;
                  if (hasErrors(checkDeployment(c))) continue;
                  Brute b;
                  b.strategy = s;
                  desc::Deployment cd = search::withStrategy(d, s);
                  for (int64_t len : points) {
                    const CompileOptions quiet = quietly();
                    CompileResult r = session.compile(atSeqLen(cd, len), "brute", quiet);
                    EXPECT_TRUE(r.plan.has_value()) << s.str();
                    if (!r.plan) continue;
                    plan::WorkloadPoint w = report::workloadPoint(*r.plan, sim::simulate(*r.plan));
                    for (const report::RequirementCheck &v : report::judgeRequirements(*r.plan, w))
                      b.feasible = b.feasible && v.pass;
                    b.latency = std::max(b.latency, w.latency_s());
                    b.throughputPerGpu =
                        std::min(b.throughputPerGpu, w.throughput_tokens_per_s() / double(s.world()));
                    b.memory = std::max(b.memory, double(w.memory_bytes()));
                    b.ttft = std::max(b.ttft, w.ttft_s());
                    b.tpot = std::max(b.tpot, w.tpot_p99_s());
                    b.decodePerGpu =
                        std::min(b.decodePerGpu, w.decode_tokens_per_s() / double(s.world()));
                  }
                  out.push_back(b);
                }
  EXPECT_EQ(orders.size(), 24u);
  return out;
}

struct Parsed {
  desc::Deployment deployment;
  DeploymentSpec spec;
};

Parsed parse(const std::string &text) {
  LoadedDescription loaded = parseDescription(text, "small.textproto");
  std::vector<Finding> findings;
  std::optional<DeploymentSpec> spec = resolveSpec(loaded.deployment, findings);
  EXPECT_TRUE(spec.has_value());
  return {loaded.deployment, spec.value_or(DeploymentSpec{})};
}

// The brute-force best figure of the objective among the feasible, and the search's.
void expectSameBest(const std::string &text, search::Objective objective) {
  Parsed p = parse(text);
  std::vector<Brute> all = bruteForce(p.deployment, p.spec);
  ASSERT_FALSE(all.empty());
  // Per prune setting, the frontier's figures: pruning may drop a strategy whose figures equal
  // a frontier member's, never a figure the frontier holds.
  std::map<bool, std::set<std::vector<double>>> frontierFigures;
  for (bool prune : {true, false}) {
    search::SearchOptions options;
    options.objective = objective;
    options.prune = prune;
    options.threads = 2;
    search::SearchResult r = search::searchStrategies(p.deployment, p.spec, options);
    if (prune && !p.spec.workload.generates()) {
      // The frontier's comparison below means something: probes and the longest sequence pruned.
      EXPECT_GT(r.prunedByProbe, 0u);
      EXPECT_GT(r.prunedAfterFirst, 0u);
    }
    const Brute *best = nullptr;
    // The objective's figure, less is better, from the brute force's own loop.
    auto figure = [&](const Brute &b) {
      switch (objective) {
      case search::Objective::Latency: return b.latency;
      case search::Objective::Memory: return b.memory;
      case search::Objective::Throughput: return -b.throughputPerGpu;
      case search::Objective::Ttft: return b.ttft;
      case search::Objective::Tpot: return b.tpot;
      case search::Objective::DecodeThroughput: return -b.decodePerGpu;
      }
      return 0.0;
    };
    auto searched = [](const search::Evaluated &e) {
      Brute b;
      b.latency = e.latencyS, b.throughputPerGpu = e.throughputPerGpu, b.memory = e.memoryBytes;
      b.ttft = e.ttftS, b.tpot = e.tpotS, b.decodePerGpu = e.decodeTokensPerSPerGpu;
      return b;
    };
    for (const Brute &b : all)
      if (b.feasible && (!best || figure(b) < figure(*best))) best = &b;
    if (!best) {
      EXPECT_FALSE(r.best.has_value());
      continue;
    }
    ASSERT_TRUE(r.best.has_value()) << "prune " << prune;
    const search::Evaluated &s = r.candidates[*r.best];
    EXPECT_DOUBLE_EQ(figure(searched(s)), figure(*best))
        << "prune " << prune << ": search " << s.strategy.str() << ", brute force "
        << best->strategy.str();
    // Every rule-valid strategy is either evaluated or accounted for.
    EXPECT_EQ(r.enumerated - r.rejected,
              r.evaluated + r.pruned + r.prunedByProbe + r.prunedAfterFirst + r.equivalentSchedule +
                  r.equivalentRankOrder);
    // No frontier member is dominated by another: over latency, throughput and memory, or a
    // GENERATE workload's time to first token, time per output token, decode throughput and
    // memory.
    auto figures = [&](const search::Evaluated &e) {
      return p.spec.workload.generates()
                 ? std::vector<double>{e.ttftS, e.tpotS, -e.decodeTokensPerSPerGpu, e.memoryBytes}
                 : std::vector<double>{e.latencyS, -e.throughputPerGpu, e.memoryBytes};
    };
    for (size_t i : r.frontier) frontierFigures[prune].insert(figures(r.candidates[i]));
    for (size_t i : r.frontier)
      for (size_t j : r.frontier) {
        std::vector<double> a = figures(r.candidates[j]), b = figures(r.candidates[i]);
        bool noWorse = true, better = false;
        for (size_t k = 0; k < a.size(); ++k) noWorse = noWorse && a[k] <= b[k], better = better || a[k] < b[k];
        EXPECT_FALSE(noWorse && better)
            << r.candidates[j].strategy.str() << " dominates " << r.candidates[i].strategy.str();
      }
  }
  EXPECT_FALSE(frontierFigures[false].empty());
  EXPECT_EQ(frontierFigures[true], frontierFigures[false]);
}

TEST(Search, BestEqualsBruteForceThroughput) {
  expectSameBest(kSmall, search::Objective::Throughput);
}

TEST(Search, BestEqualsBruteForceLatencyUnderARequirement) {
  // A latency requirement some strategies meet: the bounds prune the others.
  expectSameBest(std::string(kSmall) + "requirements { max_latency_ms: 0.05 }",
                 search::Objective::Latency);
}

// Two stages of a slow GPU (compute far above the links' latency): more micro-batches shorten
// the pipeline's fill, so the frontier holds strategies of 8 micro-batches (probed ones) by
// their latency, and a probe's latency bound that overstated would lose them.
TEST(Search, BestEqualsBruteForceLatencyOnTwoStages) {
  std::string text = std::string(kSmall) + "search { pp: 2 }";
  text.replace(text.find("peak_tflops: 100"), 16, "peak_tflops: 0.001");
  expectSameBest(text, search::Objective::Latency);
}

TEST(Search, BestEqualsBruteForceMemory) {
  expectSameBest(kSmall, search::Objective::Memory);
}

// The small model generating: a 16-token prompt, 4 new tokens per sequence.
std::string smallGenerate(const std::string &requirements = "") {
  std::string text = kSmall;
  const std::string range = "workload { sequences: 8 seq_len_range { min: 16 max: 64 } phase: PREFILL }";
  text.replace(text.find(range), range.size(),
               "workload { sequences: 8 prompt_len: 16 new_tokens: 4 phase: GENERATE }");
  return text + requirements;
}

TEST(Search, BestEqualsBruteForceTimePerOutputTokenUnderATtftRequirement) {
  expectSameBest(smallGenerate("requirements { max_ttft_ms: 0.05 }"), search::Objective::Tpot);
}

TEST(Search, BestEqualsBruteForceTimeToFirstToken) {
  expectSameBest(smallGenerate(), search::Objective::Ttft);
}

TEST(Search, BestEqualsBruteForceDecodeThroughput) {
  expectSameBest(smallGenerate(), search::Objective::DecodeThroughput);
}

TEST(Search, GenerationObjectivesNeedAGenerateWorkload) {
  Parsed p = parse(kSmall);
  search::SearchOptions options;
  options.objective = search::Objective::Tpot;
  search::SearchResult r = search::searchStrategies(p.deployment, p.spec, options);
  EXPECT_NE(r.refused.find("objective tpot judges generation"), std::string::npos) << r.refused;
  EXPECT_EQ(search::defaultObjective(p.spec.workload), search::Objective::Throughput);
  EXPECT_EQ(search::defaultObjective(parse(smallGenerate()).spec.workload),
            search::Objective::DecodeThroughput);
  for (search::Objective o : {search::Objective::Throughput, search::Objective::Ttft,
                              search::Objective::DecodeThroughput})
    EXPECT_EQ(search::parseObjective(search::objectiveName(o)), o);
  EXPECT_FALSE(search::parseObjective("speed").has_value());
}

// The progress callback counts every planned candidate, pruned or compiled, to the total,
// never two calls at once, and never backwards.
TEST(Search, ProgressReachesTheTotal) {
  Parsed p = parse(std::string(kSmall) +
                   "search { micro_batches: [1] rank_order: [\"tp-ep-dp-pp\"] }");
  search::SearchOptions options;
  options.threads = 2;
  std::vector<Progress> calls;
  std::atomic<int> inside{0};
  options.progress = [&](const Progress &progress) {
    EXPECT_EQ(inside++, 0);
    calls.push_back(progress);
    --inside;
  };
  search::SearchResult r = search::searchStrategies(p.deployment, p.spec, options);
  ASSERT_TRUE(r.refused.empty()) << r.refused;
  ASSERT_FALSE(calls.empty());
  const Progress &last = calls.back();
  EXPECT_EQ(last.done, last.total);
  EXPECT_EQ(last.total, r.evaluated + r.pruned + r.prunedByProbe + r.prunedAfterFirst +
                            r.rejectedByRule["compile (lowering failed)"]);
  EXPECT_GT(last.total, 1u);
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_LE(calls[i - 1].done, calls[i].done);
    EXPECT_EQ(calls[i].total, last.total);
  }
}

// Threads share candidates and the points of one candidate, and a candidate waits while one
// in flight is likely to beat it: that changes which candidates are compiled, never a figure
// reported. Every thread count gives the best and the frontier one thread gives, and any
// strategy evaluated under both the same figures at every point.
TEST(Search, ThreadCountChangesNoReportedFigure) {
  Parsed p = parse(kSmall);
  auto run = [&](unsigned threads) {
    search::SearchOptions options;
    options.threads = threads;
    search::SearchResult r = search::searchStrategies(p.deployment, p.spec, options);
    EXPECT_TRUE(r.refused.empty()) << r.refused;
    EXPECT_EQ(r.threads, threads);
    EXPECT_EQ(r.enumerated - r.rejected,
              r.evaluated + r.pruned + r.prunedByProbe + r.prunedAfterFirst +
                  r.equivalentSchedule + r.equivalentRankOrder);
    return r;
  };
  const search::SearchResult one = run(1);
  ASSERT_TRUE(one.best.has_value());
  ASSERT_GT(one.prunedByProbe, 0u);  // candidates were probed: the blocking rule was at work
  auto key = [](const StrategySpec &s) {
    return s.str() + " " + formatRankOrder(s.rankOrder) + " " + std::to_string(int(s.schedule)) +
           " " + std::to_string(s.capacityFactor.value_or(0)) + " " + std::to_string(int(s.overlap));
  };
  std::map<std::string, const search::Evaluated *> byStrategy;
  for (const search::Evaluated &e : one.candidates) byStrategy[key(e.strategy)] = &e;
  auto frontier = [](const search::SearchResult &r) {
    std::set<std::vector<double>> out;
    for (size_t i : r.frontier) {
      const search::Evaluated &e = r.candidates[i];
      out.insert({e.latencyS, e.throughputPerGpu, e.memoryBytes});
    }
    return out;
  };
  for (unsigned threads : {2u, 3u, 8u}) {
    const search::SearchResult r = run(threads);
    ASSERT_TRUE(r.best.has_value());
    EXPECT_EQ(r.candidates[*r.best].throughputPerGpu, one.candidates[*one.best].throughputPerGpu)
        << threads << " threads";
    EXPECT_EQ(frontier(r), frontier(one)) << threads << " threads";
    size_t shared = 0;
    for (const search::Evaluated &e : r.candidates) {
      auto it = byStrategy.find(key(e.strategy));
      if (it == byStrategy.end()) continue;
      ++shared;
      ASSERT_EQ(e.points.size(), it->second->points.size());
      for (size_t k = 0; k < e.points.size(); ++k) {
        EXPECT_EQ(e.points[k].latency_s(), it->second->points[k].latency_s()) << e.strategy.str();
        EXPECT_EQ(e.points[k].memory_bytes(), it->second->points[k].memory_bytes());
      }
      EXPECT_EQ(e.feasible, it->second->feasible) << e.strategy.str();
    }
    EXPECT_GT(shared, 0u);
  }
}

// The bounds search prunes with hold for every strategy: the batch's least FLOPs over the
// strategy's GPUs at peak x mfu is at most its latency, its weights at most its memory.
TEST(Search, BoundsHoldForEveryStrategy) {
  Parsed p = parse(kSmall);
  CompileSession session;
  const std::vector<int64_t> points = p.spec.workload.seqPoints(3);
  std::optional<std::vector<WorkloadBound>> bounds =
      workloadBounds(session, p.deployment, p.spec, points, p.spec.strategy.capacityFactor);
  ASSERT_TRUE(bounds.has_value());
  const double rate = p.spec.cluster.peakFlops * p.spec.cluster.mfu;
  int checked = 0;
  for (const Brute &b : bruteForce(p.deployment, p.spec)) {
    double lb = 0;
    for (const WorkloadBound &w : *bounds)
      lb = std::max(lb, w.flops / (double(b.strategy.world()) * rate));
    EXPECT_LE(lb, b.latency * (1 + 1e-12)) << b.strategy.str();
    double weights = 0;
    for (const StageWeights &w : weightsPerGpu(p.spec.model, b.strategy))
      weights = std::max(weights, w.bytesPerGpu);
    EXPECT_LE(weights, b.memory) << b.strategy.str();
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

// Each program's arena bound (search::arenaBounds, from the probe's plan) is at most the
// arena of the same stage's program in the strategy's plan. The bounds go to `bounds`.
void expectArenaBoundsHold(CompileSession &session, const desc::Deployment &deployment,
                           const StrategySpec &s, int64_t seqLen, const plan::Plan &full,
                           std::vector<double> *bounds = nullptr) {
  std::optional<desc::Deployment> probe = search::probeDeployment(deployment, s, seqLen);
  ASSERT_TRUE(probe.has_value()) << s.str();
  const CompileOptions quiet = quietly();
  CompileResult one = session.compile(*probe, "probe", quiet);
  ASSERT_TRUE(one.plan.has_value()) << s.str();
  std::vector<double> each = search::arenaBounds(*one.plan, s);
  ASSERT_EQ(each.size(), size_t(full.programs_size())) << s.str();
  for (int i = 0; i < full.programs_size(); ++i) {
    ASSERT_EQ(one.plan->programs(i).stage(), full.programs(i).stage()) << s.str();
    EXPECT_LE(each[size_t(i)], double(full.programs(i).arena_bytes()))
        << s.str() << " stage " << full.programs(i).stage();
  }
  if (bounds) *bounds = std::move(each);
}

// The probe search prunes many-micro-batch candidates with (one micro-batch compiled alone)
// bounds every strategy at the longest sequence, with and without DUAL_MICRO_BATCH: its
// latency (the pipeline's fill and drain from the least ranks of the other stages, then
// micro_batches times the rank's own compute, and without overlap its own chain through its
// collectives) and its arena. The small model with 4 layers, so that pipelines of 1, 2 and 4
// stages are among them.
TEST(Search, MicroBatchProbeBoundsEveryStrategy) {
  std::string text = kSmall;
  text.replace(text.find("layers: 2"), 9, "layers: 4");
  Parsed p = parse(text);
  CompileSession session;
  const int64_t longest = p.spec.workload.seqPoints(3).back();
  int checked = 0, layerProbes = 0;
  double tightest = 0, loosest = 1;  // bound / figure, over the latencies
  double loosestOneStage = 1;         // the same, one stage without overlap
  double loosestMemory = 1;           // bound / figure, over the arenas
  double loosestMemoryOneStage = 1;   // the same, one stage without overlap
  double loosestMemoryStages = 1;     // the same, several stages without overlap
  for (int64_t tp : {1, 2, 4})
    for (int64_t pp : {1, 2, 4})
      for (int64_t dp : {1, 2, 4})
        for (int64_t ep : {1, 2, 4})
          for (int64_t etp : {1, 2})
            for (int64_t mb : {2, 4, 8})
              for (desc::Overlap overlap : {desc::NO_OVERLAP, desc::DUAL_MICRO_BATCH}) {
                DeploymentSpec c = p.spec;
                StrategySpec &s = c.strategy;
                s.tp = tp, s.pp = pp, s.dp = dp, s.ep = ep, s.expertTp = etp;
                s.microBatches = mb, s.overlap = overlap, s.expertTpDefaulted = false;
                if (s.world() > p.spec.cluster.gpus() || hasErrors(checkDeployment(c))) continue;
                const CompileOptions quiet = quietly();
                CompileResult full = session.compile(
                    atSeqLen(search::withStrategy(p.deployment, s), longest), "full", quiet);
                ASSERT_TRUE(full.plan.has_value()) << s.str();
                std::optional<search::MicroBatchProbe> probe =
                    search::probeMicroBatch(session, p.deployment, s, longest);
                ASSERT_TRUE(probe.has_value()) << s.str();
                expectArenaBoundsHold(session, p.deployment, s, longest, *full.plan);
                sim::Prediction pred = sim::simulate(*full.plan);
                plan::WorkloadPoint w = report::workloadPoint(*full.plan, pred);
                EXPECT_LE(probe->latencyS, w.latency_s() * (1 + 1e-12)) << s.str();
                EXPECT_LE(probe->memoryBytes, double(w.memory_bytes())) << s.str();
                // The layer probe (one layer per stage) where a stage holds several: a bound
                // too, weaker than the whole probe, and under DUAL_MICRO_BATCH (kernels only,
                // both) the same latency: its one layer's kernels stand for every layer's
                // exactly.
                if (search::alikeLayersPerStage(c, s) > 0) {
                  std::optional<search::MicroBatchProbe> layer =
                      search::probeMicroBatchLayer(session, p.deployment, c, s, longest);
                  ASSERT_TRUE(layer.has_value()) << s.str();
                  EXPECT_LE(layer->latencyS, w.latency_s() * (1 + 1e-12)) << s.str();
                  EXPECT_LE(layer->memoryBytes, double(w.memory_bytes())) << s.str();
                  if (overlap == desc::DUAL_MICRO_BATCH)
                    EXPECT_NEAR(layer->latencyS, probe->latencyS, probe->latencyS * 1e-9) << s.str();
                  else
                    EXPECT_LE(layer->latencyS, probe->latencyS * (1 + 1e-12)) << s.str();
                  ++layerProbes;
                }
                loosestMemory = std::min(loosestMemory, probe->memoryBytes / double(w.memory_bytes()));
                tightest = std::max(tightest, probe->latencyS / w.latency_s());
                loosest = std::min(loosest, probe->latencyS / w.latency_s());
                if (pp > 1 && overlap == desc::NO_OVERLAP)
                  loosestMemoryStages =
                      std::min(loosestMemoryStages, probe->memoryBytes / double(w.memory_bytes()));
                if (pp == 1) {
                  // One stage: micro_batches x the probe's compute exactly under
                  // DUAL_MICRO_BATCH; without overlap its collectives' chain adds to it.
                  double busiest = 0;
                  for (const sim::RankTimeline &t : pred.ranks)
                    busiest = std::max(busiest, t.computeBusy);
                  if (overlap == desc::DUAL_MICRO_BATCH) {
                    EXPECT_NEAR(probe->latencyS, busiest, busiest * 1e-9) << s.str();
                  } else {
                    EXPECT_GE(probe->latencyS, busiest * (1 - 1e-9)) << s.str();
                    loosestOneStage = std::min(loosestOneStage, probe->latencyS / w.latency_s());
                    loosestMemoryOneStage =
                        std::min(loosestMemoryOneStage, probe->memoryBytes / double(w.memory_bytes()));
                  }
                }
                ++checked;
              }
  EXPECT_GT(checked, 50);
  EXPECT_GT(layerProbes, 20);
  std::printf("%d strategies (%d with a layer probe): latency bound / latency %.3f to %.3f (one stage, no overlap: "
              "from %.3f); memory bound / arena from %.4f (without overlap: one stage from %.6f, "
              "several from %.4f)\n",
              checked, layerProbes, loosest, tightest, loosestOneStage, loosestMemory, loosestMemoryOneStage,
              loosestMemoryStages);
}

// The small model with `layers` layers.
std::string smallModel(int layers) {
  std::string text = kSmall;
  text.replace(text.find("layers: 2"), 9, "layers: " + std::to_string(layers));
  return text;
}

// A dense transformer of the same shape (every layer without experts), with SwiGLU and RMS
// norm.
std::string denseVariant(std::string text) {
  text.replace(text.find("moe_layers { all: true }"), 24,
               "moe_layers { none: true } dense_ffn_hidden: 96");
  text.replace(text.find("norm: LAYER_NORM activation: GELU"), 33, "norm: RMS_NORM activation: SWIGLU");
  return text;
}

// The deployment with tp, pp and ep (dp so that the EP group fits: ep / min(ep, tp)), whole
// experts, no placement, and the schedule (the description's when none); nullopt when it
// needs more GPUs than the cluster's or breaks an error rule.
std::optional<DeploymentSpec> withShape(const DeploymentSpec &spec, int64_t tp, int64_t pp,
                                        int64_t ep, int64_t microBatches,
                                        std::optional<desc::Schedule> schedule = std::nullopt) {
  DeploymentSpec c = spec;
  StrategySpec &s = c.strategy;
  s.tp = tp, s.pp = pp, s.dp = ep / std::min(ep, tp), s.ep = ep, s.expertTp = 1;
  s.microBatches = microBatches;
  if (schedule) s.schedule = *schedule;
  s.expertTpDefaulted = false;
  s.placement.clear();
  std::vector<Finding> findings;
  checkStrategy(c, findings);
  if (s.world() > spec.cluster.gpus() || hasErrors(findings)) return std::nullopt;
  return c;
}

// The layer probe stands for every layer of the strategy's stages exactly: per program, its
// one layer's weights and caches times the layers of the stage, and the rest once, give what
// the probe of every layer lays out (wholeProgramBuffers); per rank, its one layer's kernel
// time and chain times the layers give every layer's (sim::SoloCompute). On the small model
// with 4 layers, a dense variant of it, and the seed's 16.
TEST(Search, LayerProbeStandsForEveryLayer) {
  const std::string small = smallModel(4), dense = denseVariant(small);
  std::string error;
  const std::optional<std::string> seed =
      readFile(std::string(MOEPLAN_SOURCE_DIR) + "/examples/seed-moe-30b/deployment.textproto", error);
  ASSERT_TRUE(seed.has_value()) << error;
  CompileSession session;
  int compared = 0;
  for (const std::string &text : {small, dense, *seed}) {
    Parsed p = parse(text);
    const int64_t longest = p.spec.workload.seqPoints(3).back();
    for (int64_t pp : {1, 2, 4})
      for (int64_t tp : {1, 2})
        for (int64_t ep : {1, 4}) {
          const std::optional<DeploymentSpec> shaped = withShape(p.spec, tp, pp, ep, 4);
          if (!shaped) continue;
          const DeploymentSpec &c = *shaped;
          const StrategySpec &s = c.strategy;
          const int64_t layers = search::alikeLayersPerStage(c, s);
          if (layers == 0) {  // one layer per stage already: no layer probe
            EXPECT_EQ(p.spec.model.layers, pp) << s.str();
            continue;
          }
          const CompileOptions quiet = quietly();
          CompileResult whole = session.compile(
              *search::probeDeployment(p.deployment, s, longest), "whole", quiet);
          CompileResult one = session.compile(
              *search::layerProbeDeployment(p.deployment, c, s, longest), "one", quiet);
          ASSERT_TRUE(whole.plan && one.plan) << s.str();
          ASSERT_EQ(whole.plan->programs_size(), one.plan->programs_size());
          for (int i = 0; i < whole.plan->programs_size(); ++i) {
            const search::WholeProgramBuffers a =
                search::wholeProgramBuffers(whole.plan->programs(i), 1);
            const search::WholeProgramBuffers b =
                search::wholeProgramBuffers(one.plan->programs(i), layers);
            EXPECT_EQ(a.aligned, b.aligned) << s.str() << " program " << i;
            EXPECT_EQ(a.bytes, b.bytes) << s.str() << " program " << i;
            EXPECT_EQ(a.batchWideAligned, b.batchWideAligned) << s.str() << " program " << i;
            EXPECT_GT(b.aligned, 0);
          }
          // And each rank's kernels and chains: its one layer's `layers` times give every
          // layer's (sim::SoloCompute), and the chains bound the whole probe's span.
          const std::vector<sim::SoloCompute> all = sim::soloCompute(*whole.plan),
                                              each = sim::soloCompute(*one.plan);
          ASSERT_EQ(all.size(), each.size());
          auto near = [](double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(a, b); };
          for (size_t r = 0; r < all.size(); ++r) {
            const double L = double(layers);
            EXPECT_PRED2(near, all[r].layerBusy, L * each[r].layerBusy) << s.str() << " rank " << r;
            EXPECT_PRED2(near, all[r].busy - all[r].layerBusy, each[r].busy - each[r].layerBusy)
                << s.str() << " rank " << r;
            EXPECT_PRED2(near, all[r].chainLayers, L * each[r].chainLayers) << s.str() << " rank " << r;
            EXPECT_PRED2(near, all[r].chainOutside, each[r].chainOutside) << s.str() << " rank " << r;
            EXPECT_LE(all[r].chainOutside + all[r].chainLayers, all[r].span * (1 + 1e-12)) << s.str();
            EXPECT_GE(all[r].chainLayers, all[r].layerBusy * (1 - 1e-12)) << s.str();
          }
          ++compared;
        }
  }
  EXPECT_GT(compared, 8);
}

// The layer probe's memory bound (whole-program buffers, the layer's L times, and the
// transients its one layer has in use) against the arena of the strategy's plan, on models
// with and without a vocabulary (an LM head's logits at the stage's end), experts or not,
// shared experts, grouped-query attention, both schedules and several micro-batches; the
// loosest and tightest ratios are printed.
TEST(Search, LayerProbeMemoryBoundsTheArena) {
  const std::string small = smallModel(8);
  std::string dense = denseVariant(small);
  dense.replace(dense.find("kv_heads: 4"), 11, "kv_heads: 2");  // grouped-query attention
  std::vector<std::string> texts{small, dense};
  for (const char *example : {"seed-moe-30b/deployment.textproto", "mixtral-8x7b/deployment.textproto",
                              "qwen2-moe-a2.7b/deployment.textproto"}) {
    std::string error;
    std::optional<std::string> text =
        readFile(std::string(MOEPLAN_SOURCE_DIR) + "/examples/" + example, error);
    ASSERT_TRUE(text.has_value()) << error;
    texts.push_back(*text);
  }
  CompileSession session;
  int checked = 0;
  double loosest = INFINITY, tightest = 0;  // bound / arena
  for (const std::string &text : texts) {
    Parsed p = parse(text);
    const std::vector<int64_t> points = p.spec.workload.seqPoints(3);
    for (int64_t pp : {1, 2, 4})
      for (int64_t tp : {1, 2})
        for (int64_t ep : {1, 4})
          for (int64_t mb : {1, 4, 16})
            for (desc::Schedule schedule : {desc::ONE_F_ONE_B, desc::GPIPE}) {
              if (schedule == desc::GPIPE && (pp == 1 || mb == 1)) continue;  // same order
              const std::optional<DeploymentSpec> shaped = withShape(p.spec, tp, pp, ep, mb, schedule);
              if (!shaped || shaped->strategy.overlap != desc::NO_OVERLAP ||
                  search::alikeLayersPerStage(*shaped, shaped->strategy) == 0)
                continue;
              const DeploymentSpec &c = *shaped;
              const StrategySpec &s = c.strategy;
              for (int64_t len : {points.front(), points.back()}) {
                const CompileOptions quiet = quietly();
                CompileResult full = session.compile(
                    atSeqLen(search::withStrategy(p.deployment, s), len), "full", quiet);
                ASSERT_TRUE(full.plan.has_value()) << s.str();
                double arena = 0;
                for (const plan::Program &program : full.plan->programs())
                  arena = std::max(arena, double(program.arena_bytes()));
                std::optional<search::MicroBatchProbe> layer =
                    search::probeMicroBatchLayer(session, p.deployment, c, s, len);
                ASSERT_TRUE(layer.has_value()) << s.str();
                EXPECT_LE(layer->memoryBytes, arena) << p.deployment.name() << " " << s.str() << " at " << len;
                loosest = std::min(loosest, layer->memoryBytes / arena);
                tightest = std::max(tightest, layer->memoryBytes / arena);
                ++checked;
              }
            }
  }
  EXPECT_GT(checked, 60);
  std::printf("%d plans: the layer probe's memory bound / arena %.4f to %.6f\n", checked, loosest,
              tightest);
}

// The arena bounds on the seed's model, in pipelines whose first stage SENDs a micro-batch's
// activations that nothing waits for: plan-memory keeps every micro-batch's SEND buffer
// apart, and the first stage's bound counts them (the small model's arenas peak elsewhere).
TEST(Search, ArenaBoundsHoldOnTheSeed) {
  std::string error;
  std::optional<std::string> text =
      readFile(std::string(MOEPLAN_SOURCE_DIR) + "/examples/seed-moe-30b/deployment.textproto", error);
  ASSERT_TRUE(text.has_value()) << error;
  Parsed p = parse(*text);
  CompileSession session;
  double loosestFirstStage = 1;  // bound / arena of the first stage's program
  int checked = 0;
  for (int64_t tp : {2, 8})
    for (int64_t pp : {2, 4})
      for (int64_t mb : {4, 32}) {
        DeploymentSpec c = p.spec;
        StrategySpec &s = c.strategy;
        s.tp = tp, s.pp = pp, s.dp = 16 / (tp * pp), s.ep = 4, s.expertTp = 1;
        s.microBatches = mb, s.overlap = desc::NO_OVERLAP, s.expertTpDefaulted = false;
        s.placement.clear();
        std::vector<Finding> findings;
        if (s.dp >= 1) checkStrategy(c, findings);
        if (s.dp < 1 || hasErrors(findings)) continue;
        const CompileOptions quiet = quietly();
        CompileResult full =
            session.compile(atSeqLen(search::withStrategy(p.deployment, s), 1152), "full", quiet);
        ASSERT_TRUE(full.plan.has_value()) << s.str();
        std::vector<double> bounds;
        expectArenaBoundsHold(session, p.deployment, s, 1152, *full.plan, &bounds);
        ASSERT_FALSE(bounds.empty()) << s.str();
        loosestFirstStage =
            std::min(loosestFirstStage, bounds[0] / double(full.plan->programs(0).arena_bytes()));
        ++checked;
      }
  EXPECT_GE(checked, 6);
  std::printf("%d strategies: the first stage's arena bound / arena from %.6f\n", checked,
              loosestFirstStage);
}

// The simulator runs the ranks of one program once when they see their communicators alike,
// and gives the others that rank's timeline: every figure and every rank's timeline equal
// what simulating each rank on its own gives, bit for bit, on every strategy of the small
// model (two nodes: groups within and across them), a prefill and a generation, with and
// without compute jitter (which turns the sharing off).
void expectSharedTimelinesExact(const sim::Prediction &a, const sim::Prediction &b,
                                const std::string &what) {
  EXPECT_EQ(a.latencySeconds, b.latencySeconds) << what;
  EXPECT_EQ(a.throughputTokensPerSecond, b.throughputTokensPerSecond) << what;
  EXPECT_EQ(a.bubbleFraction, b.bubbleFraction) << what;
  EXPECT_EQ(a.commShare, b.commShare) << what;
  EXPECT_EQ(a.exposedCommShare, b.exposedCommShare) << what;
  EXPECT_EQ(a.utilization, b.utilization) << what;
  EXPECT_EQ(a.rooflineSeconds, b.rooflineSeconds) << what;
  EXPECT_EQ(a.rooflineRank, b.rooflineRank) << what;
  EXPECT_EQ(a.rooflineBound, b.rooflineBound) << what;
  EXPECT_EQ(a.loadBalance, b.loadBalance) << what;
  ASSERT_EQ(a.ranks.size(), b.ranks.size()) << what;
  for (size_t r = 0; r < a.ranks.size(); ++r) {
    const sim::RankTimeline &x = a.ranks[r], &y = b.ranks[r];
    EXPECT_EQ(x.rank, y.rank) << what;
    EXPECT_EQ(x.end, y.end) << what << " rank " << r;
    EXPECT_EQ(x.computeBusy, y.computeBusy) << what << " rank " << r;
    EXPECT_EQ(x.commBusy, y.commBusy) << what << " rank " << r;
    EXPECT_EQ(x.exposedComm, y.exposedComm) << what << " rank " << r;
    EXPECT_EQ(x.bubble, y.bubble) << what << " rank " << r;
    EXPECT_EQ(x.commSeconds, y.commSeconds) << what << " rank " << r;
    EXPECT_EQ(x.flops, y.flops) << what << " rank " << r;
    ASSERT_EQ(x.instructions.size(), y.instructions.size()) << what << " rank " << r;
    for (size_t i = 0; i < x.instructions.size(); ++i) {
      EXPECT_EQ(x.instructions[i].start, y.instructions[i].start) << what << " rank " << r;
      EXPECT_EQ(x.instructions[i].end, y.instructions[i].end) << what << " rank " << r;
      EXPECT_EQ(x.instructions[i].issued, y.instructions[i].issued) << what << " rank " << r;
    }
  }
  ASSERT_EQ(a.generation.has_value(), b.generation.has_value()) << what;
  if (a.generation) {
    EXPECT_EQ(a.generation->ttftSeconds, b.generation->ttftSeconds) << what;
    EXPECT_EQ(a.generation->stepSeconds, b.generation->stepSeconds) << what;
  }
}

TEST(Search, SharedTimelinesEqualEveryRankSimulated) {
  CompileSession session;
  int compared = 0, shared = 0;
  for (const std::string &text : {std::string(kSmall), smallGenerate()})
    for (double jitter : {0.0, 0.1}) {
      Parsed p = parse(text);
      if (jitter > 0) p.deployment.mutable_cluster()->mutable_gpu()->set_compute_jitter(jitter);
      for (int64_t tp : {1, 2, 4})
        for (int64_t pp : {1, 2, 4})
          for (int64_t dp : {1, 2, 4})
            for (int64_t ep : {1, 2, 4})
              for (int64_t mb : {1, 2})
                for (std::vector<Axis> order : {std::vector<Axis>{Axis::TP, Axis::EP, Axis::DP, Axis::PP},
                                                std::vector<Axis>{Axis::PP, Axis::DP, Axis::EP, Axis::TP}}) {
                  DeploymentSpec c = p.spec;
                  StrategySpec &s = c.strategy;
                  s.tp = tp, s.pp = pp, s.dp = dp, s.ep = ep, s.expertTp = 1;
                  s.microBatches = mb, s.rankOrder = order, s.expertTpDefaulted = false;
                  if (s.world() > p.spec.cluster.gpus() || hasErrors(checkDeployment(c))) continue;
                  const CompileOptions quiet = quietly();
                  desc::Deployment d = search::withStrategy(p.deployment, s);
                  if (!p.spec.workload.generates()) d = atSeqLen(d, p.spec.workload.seqPoints(3).back());
                  CompileResult r = session.compile(d, "shared", quiet);
                  ASSERT_TRUE(r.plan.has_value()) << s.str();
                  const sim::Prediction sharing = sim::simulate(*r.plan);
                  const sim::Prediction every = sim::detail::simulateEveryRank(*r.plan);
                  EXPECT_EQ(every.simulatedRanks, every.ranks.size());
                  if (jitter > 0) EXPECT_EQ(sharing.simulatedRanks, sharing.ranks.size()) << s.str();
                  shared += sharing.simulatedRanks < sharing.ranks.size();
                  expectSharedTimelinesExact(sharing, every, s.str() + (jitter > 0 ? " jitter" : ""));
                  ++compared;
                }
    }
  EXPECT_GT(compared, 100);
  EXPECT_GT(shared, compared / 4);  // without jitter, most plans of several ranks share
  std::printf("%d plans compared, %d simulated with shared timelines\n", compared, shared);
}

// A forward pass runs its micro-batches in the same order under GPipe and 1F1B: the plans
// are the same but for the schedule's name, so search evaluates one of them.
TEST(Search, GpipeAndOneFOneBForwardPlansAreIdentical) {
  std::string base = std::string(kSmall);
  base.replace(base.find("strategy { capacity_factor: 1.5 }"),
               std::string("strategy { capacity_factor: 1.5 }").size(),
               "strategy { pp: 2 micro_batches: 4 capacity_factor: 1.5 schedule: GPIPE }");
  CompileResult gpipe = compileDescription(base, "pipeline");
  base.replace(base.find("GPIPE"), 5, "ONE_F_ONE_B");
  CompileResult oneF = compileDescription(base, "pipeline");
  ASSERT_TRUE(gpipe.plan && oneF.plan);
  EXPECT_NE(gpipe.plan->strategy().schedule(), oneF.plan->strategy().schedule());
  gpipe.plan->mutable_strategy()->set_schedule(oneF.plan->strategy().schedule());
  google::protobuf::util::MessageDifferencer differ;
  std::string report;
  differ.ReportDifferencesToString(&report);
  EXPECT_TRUE(differ.Compare(*gpipe.plan, *oneF.plan)) << report;
}

// On one node every rank order gives the same prediction (every group is intra-node).
TEST(Search, RankOrdersOnOneNodeCostTheSame) {
  std::string text = std::string(kSmall);
  text.replace(text.find("nodes: 2 gpus_per_node: 2"), 25, "nodes: 1 gpus_per_node: 4");
  text.replace(text.find("strategy { capacity_factor: 1.5 }"),
               std::string("strategy { capacity_factor: 1.5 }").size(),
               "strategy { tp: 2 dp: 2 ep: 2 expert_tp: 1 capacity_factor: 1.5 rank_order: "
               "\"ORDER\" }");
  std::optional<double> latency;
  for (const char *order : {"tp-ep-dp-pp", "dp-tp-ep-pp", "ep-dp-pp-tp"}) {
    std::string t = text;
    t.replace(t.find("ORDER"), 5, order);
    CompileResult r = compileDescription(t, order);
    ASSERT_TRUE(r.plan.has_value()) << order;
    double l = sim::simulate(*r.plan).latencySeconds;
    if (latency) EXPECT_DOUBLE_EQ(*latency, l) << order;
    latency = l;
  }
}

TEST(Search, SeqPoints) {
  WorkloadSpec w;
  w.seqLenMin = 128, w.seqLenMax = 10240;
  EXPECT_EQ(w.seqPoints(3), (std::vector<int64_t>{128, 1152, 10240}));
  EXPECT_EQ(w.seqPoints(2), (std::vector<int64_t>{128, 10240}));
  EXPECT_EQ(w.seqPoints(1), (std::vector<int64_t>{10240}));
  w.seqLenMin = 32, w.seqLenMax = 512;
  EXPECT_EQ(w.seqPoints(3), (std::vector<int64_t>{32, 128, 512}));
  EXPECT_EQ(w.seqPoints(5), (std::vector<int64_t>{32, 64, 128, 256, 512}));
  w.seqLenMin = 100, w.seqLenMax = 101;  // no room between: the ends only
  EXPECT_EQ(w.seqPoints(4), (std::vector<int64_t>{100, 101}));
  w.phase = desc::DECODE;  // a decode step does not depend on the sequence length
  EXPECT_EQ(w.seqPoints(3), (std::vector<int64_t>{101}));
}

} // namespace
} // namespace moeplan
