// The compiled plan against the published formulas (reference.md section 4) and hand
// counts: FLOPs (Narayanan et al. 2021), pipeline bubble, weight and activation bytes; and
// properties every plan must have: deterministic bytes, no two buffers sharing bytes
// unless one's uses all happen before the other's.
#include "moeplan/Analysis/WeightMemory.h"
#include "moeplan/Compiler/Pipeline.h"
#include "moeplan/Description/Load.h"
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Report/Calibration.h"
#include "moeplan/Simulate/CostModel.h"
#include "moeplan/Simulate/Simulator.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>

namespace moeplan {
namespace {

std::string examplePath(const std::string &name) {
  return std::string(MOEPLAN_SOURCE_DIR) + "/examples/" + name + "/deployment.textproto";
}

plan::Plan compileText(const std::string &text) {
  CompileResult r = compileDescription(text, "test.textproto");
  EXPECT_TRUE(r.plan.has_value()) << text;
  return r.plan.value_or(plan::Plan());
}

plan::Plan compileFile(const std::string &path) {
  CompileResult r = compileDescriptionFile(path);
  EXPECT_TRUE(r.plan.has_value()) << path;
  return r.plan.value_or(plan::Plan());
}

// A dense GPT layer stack: 4h FFN with GELU, heads x head_dim = h.
std::string denseGpt(int64_t layers, int64_t h, int64_t heads, int64_t vocab, int64_t batch,
                     int64_t seq, const std::string &strategy, const std::string &links) {
  return "name: \"gpt\"\nmodel { layers: " + std::to_string(layers) + " d_model: " +
         std::to_string(h) + " heads: " + std::to_string(heads) + " head_dim: " +
         std::to_string(h / heads) + " moe_layers { none: true } dense_ffn_hidden: " +
         std::to_string(4 * h) + " norm: LAYER_NORM activation: GELU " +
         (vocab ? "vocab_size: " + std::to_string(vocab) : std::string()) +
         " dtype: FP16 }\ncluster { nodes: 1 gpus_per_node: 8 gpu { peak_tflops: 400 mfu: 0.5 "
         "memory_gb: 80 memory_bandwidth_tb_per_s: 2 memory_bandwidth_utilization: 0.8 } " +
         links + " }\nworkload { sequences: " + std::to_string(batch) + " seq_len: " +
         std::to_string(seq) + " phase: PREFILL }\nstrategy { " + strategy + " }\n";
}

// Matrix-multiply FLOPs of all ranks: the model's (what the formula counts) or executed.
uint64_t matmulFlops(const plan::Plan &p, bool model = true) {
  uint64_t total = 0;
  for (const plan::Rank &r : p.ranks())
    for (const plan::Instruction &i : p.programs(r.program()).instructions())
      if (i.has_kernel()) total += model ? i.cost().model_flops() : i.cost().flops();
  return total;
}

// compile checks its own output with the runtime's validator; a plan that fails it is the
// compiler's bug, reported with the field that breaks the rules.
TEST(CompiledPlan, ABrokenPlanIsReportedAsACompilerBug) {
  plan::Plan p = compileFile(examplePath("tiny-moe"));
  EXPECT_EQ(compiledPlanProblems(p, "tiny.textproto"), "");
  plan::Kernel *gemm = nullptr;
  for (plan::Instruction &i : *p.mutable_programs(0)->mutable_instructions())
    if (i.has_kernel() && i.kernel().kind() == plan::GEMM && !gemm) gemm = i.mutable_kernel();
  ASSERT_NE(gemm, nullptr);
  gemm->set_n(gemm->n() + 1);  // its output buffer no longer matches
  const std::string problems = compiledPlanProblems(p, "tiny.textproto");
  EXPECT_NE(problems.find("internal error: the compiled plan breaks the plan's rules"),
            std::string::npos) << problems;
  EXPECT_NE(problems.find("tiny.textproto (compiled)"), std::string::npos) << problems;
  EXPECT_NE(problems.find("programs[0].instructions["), std::string::npos) << problems;
}

TEST(CompiledPlan, ForwardFlopsMatchNarayanan) {
  // Forward pass: 24 B s l h^2 (1 + s / (6h)) + 2 B s h V, written without division.
  for (const char *strategy : {"tp: 1 pp: 1 dp: 1", "tp: 2 pp: 2 dp: 2 micro_batches: 2",
                               "tp: 4 pp: 2 dp: 1 micro_batches: 4"}) {
    const int64_t l = 4, h = 256, heads = 8, V = 1024, B = 8, s = 64;
    plan::Plan p = compileText(denseGpt(l, h, heads, V, B, s, strategy,
                                        "intra_node { bandwidth_gb_per_s: 300 latency_us: 5 }"));
    uint64_t expected = 24 * B * s * l * h * h + 4 * B * s * s * l * h + 2 * B * s * h * V;
    EXPECT_EQ(matmulFlops(p), expected) << strategy;
  }
}

// A causal kernel executes query i's scores against keys 0..i only: the executed FLOPs are
// the formula's with attention's s x s replaced by the pairs a counted loop visits.
TEST(CompiledPlan, CausalAttentionExecutesTheLowerTriangle) {
  for (const char *strategy : {"tp: 1 pp: 1 dp: 1", "tp: 2 pp: 2 dp: 2 micro_batches: 2"}) {
    const int64_t l = 2, h = 128, heads = 4, V = 256, B = 4, s = 48;
    plan::Plan p = compileText(denseGpt(l, h, heads, V, B, s, strategy,
                                        "intra_node { bandwidth_gb_per_s: 300 latency_us: 5 }"));
    int64_t pairs = 0;  // (query, key) pairs a causal kernel computes, per sequence and head
    for (int64_t query = 0; query < s; ++query)
      for (int64_t key = 0; key < s; ++key) pairs += key <= query;
    const uint64_t model = matmulFlops(p), executed = matmulFlops(p, false);
    // QK^T and PV: 2 x 2 x head_dim per pair, over B sequences, every head and layer.
    EXPECT_EQ(model - executed, uint64_t(4 * B * l * h * (s * s - pairs))) << strategy;
    // moeplan calibrate rates its measured attention kernel by the same count.
    for (const plan::Program &prog : p.programs())
      for (const plan::Instruction &i : prog.instructions())
        if (i.has_kernel() && i.kernel().kind() == plan::ATTENTION) {
          const plan::Kernel &k = i.kernel();
          EXPECT_EQ(double(i.cost().flops()),
                    report::causalAttentionFlops(double(k.sequences()), double(k.seq_len()),
                                                 double(k.heads()), double(k.head_dim())));
        }
  }
}

TEST(CompiledPlan, BubbleMatchesPipelineFormula) {
  // No embedding or head and (nearly) free transfers. With stage s taking t_s per
  // micro-batch, GPipe takes sum_s t_s + (m - 1) max_s t_s, and the bubble is what the
  // stages leave idle of it; for equal stages that is (p - 1) / (m + p - 1). Here the last
  // stage also runs the final norm, so the stages differ by that much.
  for (auto [pp, m] : {std::pair<int64_t, int64_t>{2, 2}, {2, 8}, {4, 4}, {4, 16}}) {
    std::string strategy = "tp: 1 pp: " + std::to_string(pp) + " dp: 1 micro_batches: " +
                           std::to_string(m) + " schedule: GPIPE";
    plan::Plan p = compileText(denseGpt(8, 256, 8, 0, 64, 64, strategy,
                                        "intra_node { bandwidth_gb_per_s: 1e6 latency_us: 0 }"));
    std::vector<double> stage(pp, 0.0);
    double transfer = 0;
    for (const plan::Program &prog : p.programs())
      for (const plan::Instruction &i : prog.instructions())
        if (i.micro_batch() == 0) {
          if (i.has_kernel()) stage[prog.stage()] += sim::kernelSeconds(p.cluster(), i.cost());
          else if (i.collective().kind() == plan::SEND)
            transfer = sim::collectiveSeconds(p.cluster(), plan::SEND, i.cost().comm_bytes(), 2, true);
        }
    double sum = 0, longest = 0;
    for (double t : stage) sum += t, longest = std::max(longest, t);
    double makespan = sum + double(m - 1) * longest;
    sim::Prediction pred = sim::simulate(p);
    // Each transfer on the critical path may add its (tiny) time.
    EXPECT_NEAR(pred.latencySeconds, makespan, double(pp - 1 + m) * transfer + 1e-12);
    EXPECT_NEAR(pred.bubbleFraction, 1 - double(m) * sum / (double(pp) * makespan), 1e-3);
    double equalStages = double(pp - 1) / double(m + pp - 1);
    EXPECT_NEAR(pred.bubbleFraction, equalStages, 0.1 * equalStages) << "pp " << pp << " m " << m;
  }
}

TEST(CompiledPlan, WeightBytesMatchTheAnalysis) {
  LoadedDescription loaded;
  std::string error;
  for (const char *example : {"tiny-moe", "seed-moe-30b"}) {
    std::string path = examplePath(example);
    auto text = readFile(path, error);
    ASSERT_TRUE(text) << error;
    loaded = parseDescription(*text, path);
    std::vector<Finding> findings;
    std::optional<DeploymentSpec> spec = resolveSpec(loaded.deployment, findings);
    ASSERT_TRUE(spec);
    std::vector<StageWeights> expected = weightsPerGpu(spec->model, spec->strategy);
    plan::Plan p = compileFile(path);
    ASSERT_EQ(p.programs_size(), int(expected.size()));
    for (const plan::Program &prog : p.programs()) {
      uint64_t weights = 0;
      for (const plan::Buffer &b : prog.buffers())
        if (b.kind() == plan::WEIGHT) weights += b.bytes();
      EXPECT_EQ(int64_t(weights), expected[prog.stage()].bytesPerGpu) << example << " stage " << prog.stage();
    }
  }
}

// Which weights a model has does not depend on how it is split: every strategy's plan names
// the same tensors at the same full shapes (a tp 1 plan once lost the output biases, which
// only a tp reduction used to add).
TEST(CompiledPlan, WeightTensorsDoNotDependOnTheStrategy) {
  auto tensors = [](const plan::Plan &p) {
    std::map<std::string, std::vector<int64_t>> all;
    for (const plan::Program &prog : p.programs())
      for (const plan::Buffer &b : prog.buffers())
        if (b.kind() == plan::WEIGHT)
          all[b.slice().tensor()] = {b.slice().full_shape().begin(), b.slice().full_shape().end()};
    return all;
  };
  const std::string model =
      "name: \"m\"\nmodel { layers: 4 d_model: 64 heads: 4 head_dim: 16 kv_heads: 2 experts: 8 "
      "top_k: 2 expert_hidden: 64 moe_layers { every_nth: 2 } dense_ffn_hidden: 128 norm: "
      "RMS_NORM activation: SWIGLU vocab_size: 128 linear_bias: true dtype: FP32 }\n"
      "cluster { nodes: 1 gpus_per_node: 8 gpu { peak_tflops: 100 mfu: 0.5 memory_gb: 16 "
      "memory_bandwidth_tb_per_s: 1 memory_bandwidth_utilization: 0.8 } intra_node { "
      "bandwidth_gb_per_s: 100 latency_us: 5 } }\nworkload { sequences: 8 seq_len: 16 phase: "
      "PREFILL }\n";
  const auto single = tensors(compileText(model + "strategy { }\n"));
  EXPECT_EQ(single.count("layers.0.attention.bo"), 1u);
  EXPECT_EQ(single.count("layers.1.ffn.b_down"), 1u);
  EXPECT_EQ(single.count("layers.0.experts.b_down"), 1u);
  for (const char *strategy : {"tp: 2 pp: 2 dp: 2 ep: 4 expert_tp: 1 micro_batches: 2",
                               "tp: 4 pp: 2 ep: 2 expert_tp: 2 micro_batches: 2",
                               "pp: 4 dp: 2 ep: 2 expert_tp: 1 micro_batches: 4"})
    EXPECT_EQ(tensors(compileText(model + "strategy { " + strategy + " }\n")), single) << strategy;
}

TEST(CompiledPlan, ActivationShapesMatchHandCounts) {
  // tiny-moe: 16 sequences of 32 tokens, dp 4, 2 micro-batches: 2 sequences = 64 tokens per
  // micro-batch, 32 per tp rank. 64 experts, top-1, capacity factor 1.25:
  // ceil(32 x 1 / 64 x 1.25) = 1 slot; ep 8 gives 8 local experts.
  plan::Plan p = compileFile(examplePath("tiny-moe"));
  EXPECT_EQ(p.workload().tokens_per_micro_batch(), 64u);
  EXPECT_EQ(p.strategy().capacity(), 1u);
  std::map<std::string, uint64_t> bytes;
  for (const plan::Buffer &b : p.programs(0).buffers()) bytes[b.name()] = b.bytes();
  const uint64_t f32 = 4, D = 128;
  EXPECT_EQ(bytes["layers.0.residual.sum.mb0"], 32 * D * f32);           // [T/tp, D]
  EXPECT_EQ(bytes["layers.0.tp.all_gather.mb0"], 64 * D * f32);          // [T, D]
  EXPECT_EQ(bytes["layers.0.attention.q.mb0"], 64 * (4 / 2) * 32 * f32);  // 2 of 4 heads
  EXPECT_EQ(bytes["layers.0.experts.dispatched.mb0"], 64 * 1 * D * f32);  // [E, C, D]
  EXPECT_EQ(bytes["layers.0.ep.all_to_all.recv.mb0"], 8 * 8 * 1 * D * f32);  // [ep, E/ep, C, D]
  EXPECT_EQ(bytes["layers.0.experts.up.mb0"], 8 * 8 * 256 * f32);         // [E/ep, ep C, H]
}

TEST(CompiledPlan, SameInputSameBytes) {
  for (const char *example : {"tiny-moe", "seed-moe-30b"}) {
    std::string a = planfile::serializePlan(compileFile(examplePath(example)));
    std::string b = planfile::serializePlan(compileFile(examplePath(example)));
    EXPECT_EQ(a, b) << example;
  }
}

// Happens-before on a plan program: clock[i][s] = last instruction of stream s ordered at
// or before i (streams in issue order, events across them).
std::vector<std::array<int64_t, 3>> clocks(const plan::Program &prog) {
  std::vector<std::array<int64_t, 3>> clock;
  std::array<int64_t, 3> last{-1, -1, -1};
  std::map<uint32_t, int64_t> recorder;
  for (int64_t i = 0; i < prog.instructions_size(); ++i) {
    const plan::Instruction &inst = prog.instructions(i);
    std::array<int64_t, 3> c{-1, -1, -1};
    if (last[inst.stream()] >= 0) c = clock[last[inst.stream()]];
    for (uint32_t e : inst.wait_events())
      for (int s = 0; s < 3; ++s) c[s] = std::max(c[s], clock[recorder.at(e)][s]);
    c[inst.stream()] = i;
    clock.push_back(c);
    last[inst.stream()] = i;
    if (inst.record_event()) recorder[inst.record_event()] = i;
  }
  return clock;
}

TEST(CompiledPlan, BuffersShareBytesOnlyWhenOrdered) {
  for (const char *example : {"tiny-moe", "seed-moe-30b"}) {
    plan::Plan p = compileFile(examplePath(example));
    for (const plan::Program &prog : p.programs()) {
      auto clock = clocks(prog);
      std::vector<std::vector<int64_t>> uses(prog.buffers_size());
      for (int64_t i = 0; i < prog.instructions_size(); ++i) {
        const plan::Instruction &inst = prog.instructions(i);
        std::vector<uint32_t> ops;
        if (inst.has_kernel()) {
          ops.assign(inst.kernel().inputs().begin(), inst.kernel().inputs().end());
          ops.insert(ops.end(), inst.kernel().outputs().begin(), inst.kernel().outputs().end());
        } else {
          if (inst.collective().kind() != plan::RECV) ops.push_back(inst.collective().input());
          if (inst.collective().kind() != plan::SEND) ops.push_back(inst.collective().output());
        }
        for (uint32_t b : ops) uses[b].push_back(i);
      }
      auto before = [&](const std::vector<int64_t> &a, const std::vector<int64_t> &b) {
        for (int64_t u : a)
          for (int64_t v : b)
            if (u >= v || clock[v][prog.instructions(u).stream()] < u) return false;
        return true;
      };
      for (int x = 0; x < prog.buffers_size(); ++x)
        for (int y = x + 1; y < prog.buffers_size(); ++y) {
          const plan::Buffer &a = prog.buffers(x), &b = prog.buffers(y);
          bool overlap = a.offset() < b.offset() + b.bytes() && b.offset() < a.offset() + a.bytes();
          if (!overlap || uses[x].empty() || uses[y].empty()) continue;
          EXPECT_TRUE(before(uses[x], uses[y]) || before(uses[y], uses[x]))
              << example << " stage " << prog.stage() << ": " << a.name() << " and " << b.name();
        }
    }
  }
}

// moeplan-calibrate's measurements of `ranks` ranks without collectives: two GEMMs, an
// attention, an ADD (what fitCluster needs before the link).
nlohmann::json calibrationMeasurements(int ranks) {
  nlohmann::json m = nlohmann::json::parse(R"({
    "schema": "moeplan-calibration", "version": 1, "backend": "cpu", "comm": "mpi",
    "device": "host", "host_memory_bytes": 1e10, "launch_seconds": 1e-8,
    "gemm": [{"m": 1, "n": 512, "k": 512, "seconds": 1e-5}, {"m": 64, "n": 512, "k": 512, "seconds": 4e-4}],
    "attention": {"sequences": 2, "seq_len": 128, "heads": 8, "head_dim": 64, "seconds": 0.008},
    "memory": {"bytes": 50331648, "seconds": 0.0027}})");
  m["ranks"] = ranks;
  return m;
}

// moeplan calibrate's link fit (t = steps L + bus S / B + reduced S / R) recovers the link
// that made its points, and leaves out a term the points do not need: measurements of
// every kind at 2 and 4 ranks, made by the cost model itself from L = 2 us, B = 10 GB/s and
// R = 3 GB/s, then from the same link with reductions free.
TEST(Calibration, TheLinkFitRecoversLatencyBandwidthAndReduceRate) {
  nlohmann::json m = calibrationMeasurements(4);
  for (double reduceRate : {3e9, 0.0}) {
    plan::Cluster link;
    link.mutable_intra_node()->set_latency_s(2e-6);
    link.mutable_intra_node()->set_bandwidth_bytes_per_s(10e9);
    link.mutable_intra_node()->set_reduce_bytes_per_s(reduceRate);
    nlohmann::json points = nlohmann::json::array();
    for (plan::CollectiveKind kind : {plan::ALL_REDUCE, plan::ALL_GATHER, plan::REDUCE_SCATTER,
                                      plan::ALL_TO_ALL, plan::SEND})
      for (uint32_t n : {2u, 4u})
        for (double bytes : {4096.0, 1048576.0, 8388608.0})
          points.push_back({{"kind", plan::CollectiveKind_Name(kind)}, {"ranks", n}, {"bytes", bytes},
                            {"seconds", sim::collectiveSeconds(link, kind, uint64_t(bytes), n, true)}});
    m["collectives"] = points;
    std::string error;
    std::optional<report::FittedCluster> f = report::fitCluster(m, error);
    ASSERT_TRUE(f) << error;
    const desc::Link &fitted = f->cluster.intra_node();
    EXPECT_NEAR(fitted.latency_us(), 2, 1e-6);
    EXPECT_NEAR(fitted.bandwidth_gb_per_s(), 10, 1e-6);
    EXPECT_EQ(fitted.has_reduce_gb_per_s(), reduceRate > 0);
    if (reduceRate > 0) EXPECT_NEAR(fitted.reduce_gb_per_s(), 3, 1e-6);
    EXPECT_LT(f->worstCollectiveError, 1e-9);
  }
}

// The jitter fit: skew points made by the simulator's own rule (a rank's wait after a
// stretch s is jitter x jitterWaitFactor(n) x s, over the wait after none) give the jitter
// back; measurements without skew give none (older calibrations); damaged ones are refused
// naming the field.
TEST(Calibration, TheJitterFitRecoversTheShareOfAStretch) {
  nlohmann::json m = calibrationMeasurements(2);
  m["collectives"] = nlohmann::json::parse(R"([
    {"kind": "ALL_GATHER", "ranks": 2, "bytes": 4096, "seconds": 3e-6},
    {"kind": "ALL_GATHER", "ranks": 2, "bytes": 1048576, "seconds": 1.2e-4}])");
  std::string error;
  std::optional<report::FittedCluster> without = report::fitCluster(m, error);
  ASSERT_TRUE(without) << error;
  EXPECT_FALSE(without->cluster.gpu().has_compute_jitter());
  const double base = 5e-6, jitter = 0.04;
  nlohmann::json points = nlohmann::json::array();
  for (double s : {1e-5, 1e-3, 4e-3, 16e-3})
    points.push_back({{"gemms", 1}, {"stretch_seconds", s},
                      {"wait_seconds", base + jitter * sim::jitterWaitFactor(2) * (s - 1e-5)}});
  m["skew"] = {{"ranks", 2}, {"points", points}};
  std::optional<report::FittedCluster> with = report::fitCluster(m, error);
  ASSERT_TRUE(with) << error;
  EXPECT_NEAR(with->cluster.gpu().compute_jitter(), jitter, 1e-12);
  m["skew"]["points"][2]["stretch_seconds"] = 1e-6;
  EXPECT_FALSE(report::fitCluster(m, error));
  EXPECT_EQ(error, "skew.points[2].stretch_seconds: not above the first point's (the stretch of none)");
  m["skew"]["points"] = nlohmann::json::array();
  EXPECT_FALSE(report::fitCluster(m, error));
  EXPECT_EQ(error, "skew.points: missing, or fewer than 2");
}

} // namespace
} // namespace moeplan
