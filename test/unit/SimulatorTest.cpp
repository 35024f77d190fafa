// The simulator against closed forms (reference.md section 4) on synthetic plans: expected
// values are computed here from the formulas and the plans' inputs.
#include "moeplan/Simulate/Simulator.h"

#include "moeplan/Simulate/CostModel.h"
#include "moeplan/Simulate/Routing.h"

#include "TestPlans.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

using namespace moeplan;
using namespace moeplan::sim;
using namespace moeplan::testing;

namespace {

// Simulated times are sums of a few doubles: equal up to rounding.
#define EXPECT_CLOSE(actual, expected)                                                             \
  EXPECT_NEAR(actual, expected, 1e-9 * std::abs(expected) + 1e-15)

const plan::Cost kStageCost = flopsCost(uint64_t(1e12));

std::string deadlockMessage(const plan::Plan &p) {
  try {
    simulate(p);
  } catch (const std::invalid_argument &e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Simulator, PipelineBubbleAndLatencyMatchTheClosedForm) {
  struct Shape {
    uint32_t stages, microBatches;
  };
  for (Shape shape : {Shape{1, 1}, Shape{1, 4}, Shape{2, 1}, Shape{2, 4}, Shape{4, 8}, Shape{8, 3},
                      Shape{3, 16}}) {
    const double p = shape.stages, m = shape.microBatches;
    SCOPED_TRACE("p " + std::to_string(shape.stages) + " m " + std::to_string(shape.microBatches));
    plan::Plan plan =
        withoutLinkLatency(pipelinePlan(shape.stages, shape.microBatches, kStageCost, 0));
    const double t = kernelSeconds(plan.cluster(), kStageCost);
    Prediction pred = simulate(plan);

    EXPECT_CLOSE(pred.latencySeconds, (m + p - 1) * t);
    EXPECT_CLOSE(pred.bubbleFraction, (p - 1) / (m + p - 1));
    // Every stage computes m x t and idles (p - 1) x t: before its first and after its last.
    for (const RankTimeline &rank : pred.ranks) {
      EXPECT_CLOSE(rank.computeBusy, m * t);
      EXPECT_CLOSE(rank.bubble, (p - 1) * t);
      EXPECT_EQ(rank.exposedComm, 0);
      EXPECT_CLOSE(rank.end,
                   rank.rank + 1 == shape.stages ? pred.latencySeconds : (m + rank.rank) * t);
    }
    // Model FLOPs p x m x flops over p GPUs for the makespan: mfu x m / (m + p - 1).
    EXPECT_CLOSE(pred.utilization, plan.cluster().mfu() * m / (m + p - 1));
    EXPECT_EQ(pred.exposedCommShare, 0);
  }
}

// One micro-batch: the stages and transfers form one chain, p x t + (p - 1) x transfer.
TEST(Simulator, PipelineTransfersLieOnTheCriticalPath) {
  const uint64_t bytes = uint64_t(1) << 26;
  for (uint32_t stages : {2u, 4u}) {
    plan::Plan plan = pipelinePlan(stages, 1, kStageCost, bytes);
    const plan::Cluster &c = plan.cluster();
    const double t = kernelSeconds(c, kStageCost);
    const double transfer = collectiveSeconds(c, plan::SEND, bytes, stages, true);
    ASSERT_GT(transfer, 0);
    Prediction pred = simulate(plan);
    EXPECT_CLOSE(pred.latencySeconds, stages * t + (stages - 1) * transfer);
    // Waiting for a RECV is bubble: every stage idles for all but its own kernel.
    for (const RankTimeline &rank : pred.ranks) {
      EXPECT_CLOSE(rank.bubble, pred.latencySeconds - t);
      EXPECT_EQ(rank.exposedComm, 0);
    }
    // Stage 1's RECV of the first micro-batch starts when stage 0's SEND can: after its kernel.
    const InstructionTiming &recv = pred.ranks[1].instructions[0];
    EXPECT_CLOSE(recv.start, t);
    EXPECT_CLOSE(recv.end, t + transfer);
  }
}

// Two stages, two micro-batches, transfers slower than a kernel (x > t): stage 1 finishes its
// first kernel before the second transfer lands, and that wait for a RECV is bubble too.
TEST(Simulator, ComputeStarvedByATransferIdlesInBubble) {
  const uint64_t bytes = uint64_t(1) << 30;
  plan::Plan plan = pipelinePlan(2, 2, kStageCost, bytes);
  const double t = kernelSeconds(plan.cluster(), kStageCost);
  const double transfer = collectiveSeconds(plan.cluster(), plan::SEND, bytes, 2, true);
  ASSERT_GT(transfer, t);
  Prediction pred = simulate(plan);
  EXPECT_CLOSE(pred.latencySeconds, 2 * t + 2 * transfer);
  const RankTimeline &last = pred.ranks[1];
  EXPECT_CLOSE(last.computeBusy, 2 * t);
  EXPECT_CLOSE(last.bubble, pred.latencySeconds - 2 * t);
  EXPECT_EQ(last.exposedComm, 0);
}

// The k-th SEND meets the k-th RECV, whatever stream the receiver posts it on.
TEST(Simulator, TransfersMatchInIssueOrder) {
  PlanBuilder b(2, 8);
  b.addGroup("pp", {0, 1});
  const uint64_t small = uint64_t(1) << 20, large = uint64_t(1) << 28;
  ProgramBuilder sender = b.addProgram({0});
  sender.send("pp", 1, small);
  sender.send("pp", 1, large);
  ProgramBuilder receiver = b.addProgram({1});
  receiver.recv("pp", 0, small, kPipelineStream);
  receiver.recv("pp", 0, large, kCollectiveStream);
  plan::Plan plan = b.build();
  const double first = collectiveSeconds(plan.cluster(), plan::SEND, small, 2, true);
  const double second = collectiveSeconds(plan.cluster(), plan::SEND, large, 2, true);

  Prediction pred = simulate(plan);
  EXPECT_CLOSE(pred.ranks[1].instructions[0].end, first);
  EXPECT_CLOSE(pred.ranks[1].instructions[1].start, first);
  EXPECT_CLOSE(pred.ranks[1].instructions[1].end, first + second);
  // Both streams of the receiver carry transfers, but only one at a time.
  EXPECT_CLOSE(pred.ranks[1].commBusy, first + second);
}

TEST(Simulator, IndependentCollectiveOverlapsCompute) {
  PlanBuilder b(2, 8);
  b.addGroup("tp", {0, 1});
  const uint64_t bytes = uint64_t(1) << 26;
  ProgramBuilder prog = b.addProgram({0, 1});
  prog.kernel(kStageCost);
  prog.collective(plan::ALL_REDUCE, "tp", bytes);
  plan::Plan plan = b.build();
  const double t = kernelSeconds(plan.cluster(), kStageCost);
  const double comm = collectiveSeconds(plan.cluster(), plan::ALL_REDUCE, bytes, 2, true);

  Prediction pred = simulate(plan);
  EXPECT_CLOSE(pred.latencySeconds, std::max(t, comm));
  EXPECT_EQ(pred.exposedCommShare, 0);
  EXPECT_GT(pred.commShare, 0);
  EXPECT_CLOSE(pred.commShare, comm / pred.latencySeconds);
  EXPECT_CLOSE(pred.overlappedCommShare, pred.commShare);
  for (const RankTimeline &rank : pred.ranks) {
    EXPECT_EQ(rank.exposedComm, 0);
    EXPECT_CLOSE(rank.commBusy, comm);
    EXPECT_CLOSE(rank.commSeconds, comm);
  }
}

TEST(Simulator, DependentCollectiveIsExposed) {
  PlanBuilder b(2, 8);
  b.addGroup("tp", {0, 1});
  const uint64_t bytes = uint64_t(1) << 26;
  ProgramBuilder prog = b.addProgram({0, 1});
  uint32_t produced = prog.record(prog.kernel(kStageCost));
  uint32_t reduced =
      prog.record(prog.collective(plan::ALL_REDUCE, "tp", bytes, kCollectiveStream, {produced}));
  prog.kernel(kStageCost, kComputeStream, {reduced});
  plan::Plan plan = b.build();
  const double t = kernelSeconds(plan.cluster(), kStageCost);
  const double comm = collectiveSeconds(plan.cluster(), plan::ALL_REDUCE, bytes, 2, true);

  Prediction pred = simulate(plan);
  EXPECT_CLOSE(pred.latencySeconds, 2 * t + comm);
  for (const RankTimeline &rank : pred.ranks) {
    EXPECT_CLOSE(rank.exposedComm, comm);
    EXPECT_EQ(rank.bubble, 0);
    EXPECT_CLOSE(rank.computeBusy, 2 * t);
  }
  EXPECT_CLOSE(pred.exposedCommShare, comm / pred.latencySeconds);
  EXPECT_CLOSE(pred.overlappedCommShare, 0);
}

// Rank r runs r + 1 kernels, then an all-reduce of (r + 1) x S on the compute stream: all
// start when the slowest arrives and last as long as the largest share.
TEST(Simulator, CollectiveStartsWhenItsSlowestMemberArrives) {
  const uint32_t n = 4;
  const uint64_t bytes = uint64_t(1) << 24;
  PlanBuilder b(n, 8);
  b.addGroup("tp", {0, 1, 2, 3});
  for (uint32_t r = 0; r < n; ++r) {
    ProgramBuilder prog = b.addProgram({r});
    for (uint32_t k = 0; k <= r; ++k) prog.kernel(kStageCost);
    prog.collective(plan::ALL_REDUCE, "tp", (r + 1) * bytes, kComputeStream);
  }
  plan::Plan plan = b.build();
  const double t = kernelSeconds(plan.cluster(), kStageCost);
  const double slowest = collectiveSeconds(plan.cluster(), plan::ALL_REDUCE, n * bytes, n, true);

  Prediction pred = simulate(plan);
  for (const RankTimeline &rank : pred.ranks) {
    const InstructionTiming &allReduce = rank.instructions.back();
    EXPECT_CLOSE(allReduce.start, n * t);
    EXPECT_CLOSE(allReduce.end, n * t + slowest);
    // The compute stream waits for the others, then holds the collective: all exposed.
    EXPECT_CLOSE(rank.exposedComm, (n - 1 - rank.rank) * t + slowest);
  }
}

// With compute jitter j, each member's arrival varies by j x its stretch since it last met
// another rank: two ranks after the same kernels (t) meet at t + j t / sqrt(pi) (the mean
// of the later of two normals, Clark's exact case) and each waits j t / sqrt(pi); the next
// collective's stretch starts at the first's end. A rank that arrives far later than the
// other's spread sets the start itself (no wait added), and jitter 0 is the plain rule.
TEST(Simulator, ComputeJitterMakesEqualRanksWaitForTheLater) {
  const uint64_t bytes = uint64_t(1) << 20;
  auto build = [&](uint32_t lateKernels, double jitter) {
    PlanBuilder b(2, 8);
    b.addGroup("tp", {0, 1});
    for (uint32_t r = 0; r < 2; ++r) {
      ProgramBuilder prog = b.addProgram({r});
      for (uint32_t k = 0; k < (r == 1 ? lateKernels : 1); ++k) prog.kernel(kStageCost);
      prog.collective(plan::ALL_REDUCE, "tp", bytes, kComputeStream);
      prog.kernel(kStageCost);
      prog.collective(plan::ALL_REDUCE, "tp", bytes, kComputeStream);
    }
    plan::Plan plan = b.build();
    plan.mutable_cluster()->set_compute_jitter(jitter);
    return plan;
  };
  const plan::Plan equal = build(1, 0.1);
  const double t = kernelSeconds(equal.cluster(), kStageCost);
  const double c = collectiveSeconds(equal.cluster(), plan::ALL_REDUCE, bytes, 2, true);
  const double shift = 0.1 * t / std::sqrt(M_PI);
  Prediction pred = simulate(equal);
  for (const RankTimeline &rank : pred.ranks) {
    EXPECT_CLOSE(rank.instructions[1].issued, t);
    EXPECT_CLOSE(rank.instructions[1].start, t + shift);
    EXPECT_CLOSE(rank.instructions[3].start, (t + shift + c) + t + shift);
  }
  EXPECT_CLOSE(pred.latencySeconds, 2 * (t + shift + c));
  // Rank 1 runs 40 kernels first: rank 0 (sd 0.1 t) is 39 t ahead; the later mean stands.
  Prediction late = simulate(build(40, 0.1));
  EXPECT_NEAR(late.ranks[0].instructions[1].start, 40 * t, 1e-12 * 40 * t);
  Prediction none = simulate(build(1, 0));
  EXPECT_CLOSE(none.ranks[0].instructions[1].start, t);
}

// Two axes that resolve to one group are one communicator: the k-th collective on either
// meets the other ranks' k-th on the group, even when the two are on different streams.
TEST(Simulator, AxesOfOneGroupShareItsOrder) {
  PlanBuilder b(2, 8);
  uint32_t group = b.addGroup("tp", {0, 1});
  for (uint32_t r = 0; r < 2; ++r) {
    plan::GroupMembership &etp = *b.plan().mutable_ranks(int(r))->add_groups();
    etp.set_axis("etp");
    etp.set_group(group);
    etp.set_index(r);
  }
  const uint64_t small = uint64_t(1) << 20, large = uint64_t(1) << 28;
  ProgramBuilder prog = b.addProgram({0, 1});
  prog.collective(plan::ALL_REDUCE, "tp", small, kCollectiveStream);
  prog.collective(plan::ALL_REDUCE, "etp", large, kPipelineStream);
  plan::Plan plan = b.build();
  const double first = collectiveSeconds(plan.cluster(), plan::ALL_REDUCE, small, 2, true);
  const double second = collectiveSeconds(plan.cluster(), plan::ALL_REDUCE, large, 2, true);

  Prediction pred = simulate(plan);
  for (const RankTimeline &rank : pred.ranks) {
    EXPECT_CLOSE(rank.instructions[0].end, first);
    EXPECT_CLOSE(rank.instructions[1].end, second);
  }
}

TEST(Simulator, CollectivesInOppositeOrderDeadlock) {
  PlanBuilder b(2, 8);
  b.addGroup("tp", {0, 1});
  b.addGroup("ep", {0, 1});
  ProgramBuilder first = b.addProgram({0});
  first.collective(plan::ALL_REDUCE, "tp", 1024, kCollectiveStream, {}, "rank0.tp");
  first.collective(plan::ALL_TO_ALL, "ep", 1024, kCollectiveStream, {}, "rank0.ep");
  ProgramBuilder second = b.addProgram({1});
  second.collective(plan::ALL_TO_ALL, "ep", 1024, kCollectiveStream, {}, "rank1.ep");
  second.collective(plan::ALL_REDUCE, "tp", 1024, kCollectiveStream, {}, "rank1.tp");

  std::string message = deadlockMessage(b.build());
  ASSERT_FALSE(message.empty()) << "expected a deadlock";
  for (const char *part : {"rank 0", "rank 1", "\"rank0.tp\"", "\"rank1.ep\"", "ALL_REDUCE"})
    EXPECT_NE(message.find(part), std::string::npos) << part << " missing from: " << message;
}

TEST(Simulator, WaitOnAnEventNothingRecordsDeadlocks) {
  PlanBuilder b(1, 8);
  b.addProgram({0}).kernel(kStageCost, kComputeStream, {7}, "orphan");
  std::string message = deadlockMessage(b.build());
  EXPECT_NE(message.find("\"orphan\""), std::string::npos) << message;
  EXPECT_NE(message.find("event 7"), std::string::npos) << message;
}

TEST(Simulator, MismatchedCollectiveKindsAreRejected) {
  PlanBuilder b(2, 8);
  b.addGroup("tp", {0, 1});
  b.addProgram({0}).collective(plan::ALL_REDUCE, "tp", 1024);
  b.addProgram({1}).collective(plan::ALL_GATHER, "tp", 1024);
  EXPECT_THROW(simulate(b.build()), std::invalid_argument);
}

// Load balance and drops come from the routing model (Routing.h) with the plan's inputs: the
// first DISPATCH's tokens, groups and slots, the strategy's ep and expert_tp, the whole
// batch's tokens and the expert loads; with very many tokens they tend to the histogram's
// deterministic figures (reference.md section 3: mean / max routed load over the EP ranks;
// choices beyond an expert's capacity are dropped).
TEST(Simulator, LoadBalanceAndDroppedTokensFromTheRoutingModel) {
  const std::vector<double> histogram = {8, 1, 1, 2, 4, 4, 3, 1};
  const uint32_t experts = uint32_t(histogram.size()), ep = 4, tp = 2, topK = 2;
  PlanBuilder b(1, 8);
  plan::Kernel &dispatch = *b.addProgram({0}).kernel(flopsCost(0)).mutable_kernel();
  dispatch.set_kind(plan::DISPATCH);
  dispatch.set_groups(2);
  plan::Plan &plan = b.plan();
  plan.mutable_model()->set_experts(experts);
  plan.mutable_model()->set_top_k(topK);
  plan.mutable_model()->set_layers(1);
  plan.mutable_strategy()->set_ep(ep);
  plan.mutable_strategy()->set_tp(tp);
  plan.mutable_programs(0)->mutable_instructions(0)->set_layer(0);
  auto setTokens = [&](uint32_t tokens, uint32_t capacity) {
    plan.mutable_workload()->set_sequences(tokens);  // seq_len 1
    dispatch.set_tokens(tokens / tp);
    dispatch.set_capacity(capacity / 2);  // two groups of half the slots each
  };

  setTokens(512, 64);
  Prediction uniform = simulate(plan);
  RoutingModel model{experts, topK, {}};
  Dispatch d{512 / tp / 2, 2, 32, ep, ep};
  ASSERT_EQ(uniform.routing.size(), 1u);
  EXPECT_EQ(uniform.routing[0].layer, 0);
  EXPECT_EQ(uniform.loadBalance, expectedLoadBalance(model, 512, ep));
  EXPECT_EQ(uniform.droppedTokenFraction, estimateDispatch(model, d).droppedFraction);
  EXPECT_LT(uniform.loadBalance, 1);  // finite batches are never perfectly balanced
  EXPECT_GT(uniform.loadBalance, 0.9);

  for (double w : histogram) plan.mutable_model()->add_expert_load(w);
  model.weights = histogram;
  Prediction weighted = simulate(plan);
  EXPECT_EQ(weighted.loadBalance, expectedLoadBalance(model, 512, ep));
  EXPECT_EQ(weighted.droppedTokenFraction, estimateDispatch(model, d).droppedFraction);

  // Many tokens: the histogram's own figures.
  const double tokens = 1 << 24, capacity = 1 << 22;
  setTokens(uint32_t(tokens), uint32_t(capacity));
  double total = 0;
  for (double w : histogram) total += w;
  std::vector<double> perPosition(ep, 0);
  for (uint32_t e = 0; e < experts; ++e) perPosition[e / (experts / ep)] += histogram[e];
  const double maxLoad = *std::max_element(perPosition.begin(), perPosition.end());
  double dropped = 0;
  for (double w : histogram) dropped += std::max(0.0, tokens / tp * topK * w / total - capacity);
  Prediction limit = simulate(plan);
  EXPECT_NEAR(limit.loadBalance, total / ep / maxLoad, 1e-3);
  EXPECT_NEAR(limit.droppedTokenFraction, dropped / (tokens / tp * topK), 1e-3);

  plan.mutable_model()->add_expert_load(1);  // one entry too many
  EXPECT_THROW(simulate(plan), std::invalid_argument);
}

// Per-layer expert loads: each layer routes by its own row.
TEST(Simulator, PerLayerExpertLoadsPredictEachLayer) {
  PlanBuilder b(1, 8);
  ProgramBuilder program = b.addProgram({0});
  for (int32_t layer : {0, 1}) {
    plan::Instruction &inst = program.kernel(flopsCost(0));
    inst.mutable_kernel()->set_kind(plan::DISPATCH);
    inst.mutable_kernel()->set_tokens(256);
    inst.mutable_kernel()->set_groups(1);
    inst.mutable_kernel()->set_capacity(100);
    inst.set_layer(layer);
  }
  plan::Plan &plan = b.plan();
  plan.mutable_model()->set_experts(4);
  plan.mutable_model()->set_top_k(1);
  plan.mutable_model()->set_layers(2);
  plan.mutable_strategy()->set_ep(2);
  plan.mutable_workload()->set_sequences(256);
  for (double w : {1, 1, 1, 1, 5, 1, 1, 1}) plan.mutable_model()->add_expert_load(w);
  Prediction pred = simulate(plan);
  ASSERT_EQ(pred.routing.size(), 2u);
  // Layer 0: 64 choices expected per expert, 100 slots. Layer 1: expert 0 expects 160.
  EXPECT_LT(pred.routing[0].droppedFraction, 1e-6);
  EXPECT_NEAR(pred.routing[1].droppedFraction, 60.0 / 256, 0.01);
  EXPECT_LT(pred.routing[1].loadBalance, pred.routing[0].loadBalance);
  EXPECT_DOUBLE_EQ(pred.loadBalance, (pred.routing[0].loadBalance + pred.routing[1].loadBalance) / 2);
}

// A routed instruction's cost is the capacity's: the simulator charges the share of it the
// busiest EP rank fills, and reads weights whole.
TEST(Simulator, RoutedWorkIsTheBusiestRanksFill) {
  PlanBuilder b(1, 8);
  ProgramBuilder program = b.addProgram({0});
  plan::Program &prog = program.program();
  plan::Buffer &w = *prog.add_buffers();
  w.set_kind(plan::WEIGHT);
  w.set_bytes(1000);
  plan::Instruction &dispatch = program.kernel(flopsCost(0));
  dispatch.mutable_kernel()->set_kind(plan::DISPATCH);
  dispatch.mutable_kernel()->set_tokens(64);
  dispatch.mutable_kernel()->set_capacity(64);  // dropless: every slot of every expert
  dispatch.set_layer(0);
  plan::Instruction &gemm = program.kernel(makeCost(1'000'000'000, 5000));
  gemm.mutable_kernel()->set_kind(plan::GROUPED_GEMM);
  gemm.mutable_kernel()->add_inputs(0);
  gemm.set_layer(0);
  gemm.set_routed(true);
  plan::Plan &plan = b.plan();
  plan.mutable_model()->set_experts(8);
  plan.mutable_model()->set_top_k(2);
  plan.mutable_model()->set_layers(1);
  plan.mutable_workload()->set_sequences(64);

  const plan::Plan expected = expectedWork(plan);
  const plan::Cost &c = expected.programs(0).instructions(1).cost();
  // One EP rank: it fills its mean, the routed choices: 64 x 2 of 64 x 8 slots.
  EXPECT_EQ(c.flops(), 250'000'000u);
  EXPECT_EQ(c.memory_bytes(), 1000u + 1000u);  // weights + a quarter of the other 4000
  EXPECT_EQ(c.model_flops(), 1'000'000'000u);  // the plan's own figure (plan-cost sets it)
  Prediction pred = simulate(plan);
  EXPECT_DOUBLE_EQ(pred.latencySeconds, kernelSeconds(plan.cluster(), c));

  // In place (search's way, no copy): the same plan, the same prediction.
  plan::Plan scaled = plan;
  applyExpectedWork(scaled);
  EXPECT_EQ(scaled.SerializeAsString(), expected.SerializeAsString());
  const Prediction same = simulateExpectedWork(scaled);
  EXPECT_DOUBLE_EQ(same.latencySeconds, pred.latencySeconds);
  EXPECT_DOUBLE_EQ(same.loadBalance, pred.loadBalance);
  EXPECT_DOUBLE_EQ(same.droppedTokenFraction, pred.droppedTokenFraction);
  const std::vector<SoloCompute> solo = soloComputeOfExpectedWork(scaled), fresh = soloCompute(plan);
  ASSERT_EQ(solo.size(), fresh.size());
  for (size_t r = 0; r < solo.size(); ++r) {
    EXPECT_EQ(solo[r].busy, fresh[r].busy);
    EXPECT_EQ(solo[r].span, fresh[r].span);
  }
  for (const RankTimeline &t : same.ranks) EXPECT_DOUBLE_EQ(solo[t.rank].busy, t.computeBusy);

  gemm.set_layer(1);  // no DISPATCH of its layer before it
  EXPECT_THROW(simulate(plan), std::invalid_argument);
}

TEST(Simulator, NoExpertsMeansBalancedAndNothingDropped) {
  PlanBuilder b(1, 8);
  b.addProgram({0}).kernel(kStageCost);
  Prediction pred = simulate(b.build());
  EXPECT_EQ(pred.loadBalance, 1);
  EXPECT_EQ(pred.droppedTokenFraction, 0);
}

// Two ranks of a tp group: rank 0 runs a compute-heavy kernel, rank 1 a memory-heavy one,
// rank 1 reduces twice rank 0's bytes. Each setting makes a different part the largest.
TEST(Simulator, RooflineIsTheLargestPartOnTheBusiestRank) {
  struct Setting {
    uint64_t flops, memoryBytes, commBytes;
    const char *bound;
  };
  for (Setting s : {Setting{uint64_t(1e13), uint64_t(1e9), uint64_t(1e6), "compute"},
                    Setting{uint64_t(1e9), uint64_t(1e11), uint64_t(1e6), "memory"},
                    Setting{uint64_t(1e9), uint64_t(1e6), uint64_t(1e11), "communication"}}) {
    SCOPED_TRACE(s.bound);
    PlanBuilder b(2, 8);
    b.addGroup("tp", {0, 1});
    const plan::Cost costs[] = {flopsCost(s.flops), makeCost(0, s.memoryBytes)};
    for (uint32_t r = 0; r < 2; ++r) {
      ProgramBuilder prog = b.addProgram({r});
      prog.kernel(costs[r]);
      prog.collective(plan::ALL_REDUCE, "tp", (r + 1) * s.commBytes);
    }
    plan::Plan plan = b.build();
    const plan::Cluster &c = plan.cluster();

    double expectedSeconds = -1;
    uint32_t expectedRank = 0;
    std::string expectedBound;
    for (uint32_t r = 0; r < 2; ++r) {
      const double parts[] = {
          double(costs[r].flops()) / (c.peak_flops() * c.mfu()),
          double(costs[r].memory_bytes()) /
              (c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization()),
          // A ring all-reduce over 2 ranks: 2 steps of latency, 2 (n-1)/n of the bytes.
          2 * c.intra_node().latency_s() + 2.0 * (2 - 1) / 2 * double((r + 1) * s.commBytes) /
                                               c.intra_node().bandwidth_bytes_per_s()};
      const char *names[] = {"compute", "memory", "communication"};
      for (int k = 0; k < 3; ++k)
        if (parts[k] > expectedSeconds)
          expectedSeconds = parts[k], expectedRank = r, expectedBound = names[k];
    }
    ASSERT_EQ(expectedBound, s.bound);

    Prediction pred = simulate(plan);
    EXPECT_CLOSE(pred.rooflineSeconds, expectedSeconds);
    EXPECT_EQ(pred.rooflineRank, expectedRank);
    EXPECT_EQ(pred.rooflineBound, expectedBound);
    EXPECT_LE(pred.rooflineSeconds, pred.latencySeconds * (1 + 1e-12));
  }
}

TEST(Simulator, ThroughputCountsTokensOfThePhase) {
  plan::Plan plan = pipelinePlan(2, 4, kStageCost, 0);
  plan.mutable_workload()->set_sequences(16);
  plan.mutable_workload()->set_seq_len(512);
  plan.mutable_workload()->set_phase(plan::PREFILL);
  Prediction prefill = simulate(plan);
  EXPECT_CLOSE(prefill.throughputTokensPerSecond, 16.0 * 512 / prefill.latencySeconds);
  plan.mutable_workload()->set_phase(plan::DECODE);
  Prediction decode = simulate(plan);
  EXPECT_CLOSE(decode.throughputTokensPerSecond, 16.0 / decode.latencySeconds);
}

TEST(Simulator, EmptyPlanHasNoTimeAndZeroShares) {
  PlanBuilder b(2, 8);
  b.addProgram({0, 1});
  Prediction pred = simulate(b.build());
  EXPECT_EQ(pred.latencySeconds, 0);
  EXPECT_EQ(pred.throughputTokensPerSecond, 0);
  EXPECT_EQ(pred.bubbleFraction, 0);
  EXPECT_EQ(pred.commShare, 0);
  EXPECT_EQ(pred.utilization, 0);
  ASSERT_EQ(pred.ranks.size(), 2u);
}

TEST(Simulator, TimelinesListInstructionsInIssueOrder) {
  plan::Plan plan = pipelinePlan(3, 2, kStageCost, 1024);
  Prediction pred = simulate(plan);
  ASSERT_EQ(pred.ranks.size(), 3u);
  for (const RankTimeline &rank : pred.ranks) {
    const plan::Program &program = plan.programs(int(plan.ranks(int(rank.rank)).program()));
    ASSERT_EQ(rank.instructions.size(), size_t(program.instructions_size()));
    for (uint32_t i = 0; i < rank.instructions.size(); ++i) {
      EXPECT_EQ(rank.instructions[i].instruction, i);
      EXPECT_LE(rank.instructions[i].start, rank.instructions[i].end);
    }
  }
}

namespace {

// A GENERATE plan over `stages` ranks (one per stage, one "pp" group) and `microBatches`
// micro-batches, with free transfers (zero bytes, no link latency). In each part, per
// micro-batch, stage s runs one kernel of `stageCost` (in the decode step a per_step one,
// `stepCost` more per step) once its input has arrived and sends its output on; the last
// stage sends the sampled tokens to stage 0 (feeds_next_step), whose decode step receives
// them. RECVs go on the pipeline stream and SENDs on the collective one: a SEND holds its
// stream until its RECV is posted, which for fed tokens is only once the first stage has
// drained its step, so a RECV behind it on the same stream could deadlock.
plan::Plan generationPlan(uint32_t stages, uint32_t microBatches, uint32_t newTokens,
                          const plan::Cost &stageCost, const plan::Cost &stepCost = plan::Cost()) {
  PlanBuilder b(stages, 8);
  b.plan().mutable_strategy()->set_pp(stages);
  b.plan().mutable_strategy()->set_micro_batches(microBatches);
  b.plan().mutable_workload()->set_phase(plan::GENERATE);
  b.plan().mutable_workload()->set_new_tokens(newTokens);
  std::vector<uint32_t> all(stages);
  for (uint32_t s = 0; s < stages; ++s) all[s] = s;
  b.addGroup("pp", all);
  for (uint32_t s = 0; s < stages; ++s) {
    ProgramBuilder prog = b.addProgram({s});
    for (bool decode : {false, true}) {
      if (decode) prog.program().set_decode_begin(uint32_t(prog.program().instructions_size()));
      // With one stage, the decode step's tokens are the stage's own.
      const bool receives = s > 0 || (decode && stages > 1);
      for (uint32_t mb = 0; mb < microBatches; ++mb) {
        std::vector<uint32_t> inputReady;
        if (receives) {
          plan::Instruction &recv = prog.recv("pp", s > 0 ? s - 1 : stages - 1, 0);
          recv.set_micro_batch(mb);
          inputReady.push_back(prog.record(recv));
        }
        plan::Instruction &compute = prog.kernel(stageCost, kComputeStream, inputReady,
                                                 "stage" + std::to_string(s));
        compute.set_micro_batch(mb);
        if (decode) {
          compute.mutable_kernel()->set_per_step(true);
          *compute.mutable_step_cost() = stepCost;
        }
        const uint32_t outputReady = prog.record(compute);
        if (stages == 1) continue;
        plan::Instruction &send =
            prog.send("pp", (s + 1) % stages, 0, kCollectiveStream, {outputReady});
        send.set_micro_batch(mb);
        send.mutable_collective()->set_feeds_next_step(s + 1 == stages);
      }
    }
  }
  return withoutLinkLatency(b.build());
}

}  // namespace

// Two stages, M micro-batches of t each per stage: stage 0 starts a micro-batch's next step
// once stage 1 has sent its tokens and stage 0 is done with the step, so a step takes a
// stage's M x t once M micro-batches fill the round trip of 2 x t, the round trip
// otherwise. Draining both stages every step would cost (M + 1) x t.
TEST(SimulatorGeneration, MicroBatchesPipelineAcrossDecodeSteps) {
  for (uint32_t m : {1u, 2u, 4u}) {
    SCOPED_TRACE("m " + std::to_string(m));
    plan::Plan plan = generationPlan(2, m, 10, kStageCost);
    const double t = kernelSeconds(plan.cluster(), kStageCost);
    Prediction pred = simulate(plan);
    ASSERT_TRUE(pred.generation.has_value());
    const GenerationPrediction &g = *pred.generation;
    EXPECT_EQ(g.steps, 9u);
    ASSERT_EQ(g.stepSeconds.size(), 9u);
    for (uint32_t s = 0; s < 9; ++s) EXPECT_EQ(g.simulatedSteps[s], s);
    // The prefill is a plain pipeline pass; its tokens leave stage 1 as it finishes.
    EXPECT_CLOSE(g.ttftSeconds, (m + 1) * t);
    EXPECT_CLOSE(pred.latencySeconds, (m + 1) * t);
    const double step = std::max(m, 2u) * t;
    for (double seconds : g.stepSeconds) EXPECT_CLOSE(seconds, step);
    EXPECT_CLOSE(g.tpotMedianSeconds, step);
    EXPECT_CLOSE(g.tpotP99Seconds, step);
    if (m >= 2) EXPECT_LT(step, (m + 1) * t * (1 - 1e-9));
  }
}

// One rank whose decode step runs t on the compute stream and, independently, 3t on the
// collective stream: the rank drains both before the next step, so each step takes 3t.
TEST(SimulatorGeneration, EachRankDrainsItsStreamsBetweenParts) {
  PlanBuilder b(1, 8);
  b.plan().mutable_workload()->set_phase(plan::GENERATE);
  b.plan().mutable_workload()->set_new_tokens(4);
  ProgramBuilder prog = b.addProgram({0});
  prog.kernel(kStageCost);
  prog.program().set_decode_begin(1);
  prog.kernel(kStageCost);
  prog.kernel(flopsCost(uint64_t(3e12)), kCollectiveStream);
  plan::Plan plan = b.build();
  const double t = kernelSeconds(plan.cluster(), kStageCost);
  const GenerationPrediction g = *simulate(plan).generation;
  EXPECT_CLOSE(g.ttftSeconds, t);
  ASSERT_EQ(g.stepSeconds.size(), 3u);
  for (double seconds : g.stepSeconds) EXPECT_CLOSE(seconds, 3 * t);
}

// One new token: no decode step follows the prefill, so the tokens it samples are not sent
// (a SEND without its RECV would deadlock); the prefill alone is timed.
TEST(SimulatorGeneration, OneNewTokenSendsNothing) {
  plan::Plan plan = generationPlan(2, 3, 1, kStageCost);
  const double t = kernelSeconds(plan.cluster(), kStageCost);
  Prediction pred = simulate(plan);
  ASSERT_TRUE(pred.generation.has_value());
  EXPECT_EQ(pred.generation->steps, 0u);
  EXPECT_TRUE(pred.generation->stepSeconds.empty());
  EXPECT_CLOSE(pred.generation->ttftSeconds, 4 * t);
  EXPECT_CLOSE(pred.latencySeconds, 4 * t);
  EXPECT_EQ(pred.generation->tpotMedianSeconds, 0);
  EXPECT_EQ(pred.generation->decodeTokensPerSecond, 0);
}

// A per_step kernel's step s costs its cost plus s x step_cost. One stage and one
// micro-batch: step s is exactly that kernel.
TEST(SimulatorGeneration, LaterStepsCostMore) {
  const plan::Cost stepCost = flopsCost(uint64_t(1e11));
  plan::Plan plan = generationPlan(1, 1, 6, kStageCost, stepCost);
  const GenerationPrediction g = *simulate(plan).generation;
  ASSERT_EQ(g.stepSeconds.size(), 5u);
  for (uint32_t s = 0; s < 5; ++s) {
    const plan::Cost cost = flopsCost(kStageCost.flops() + s * stepCost.flops());
    EXPECT_CLOSE(g.stepSeconds[s], kernelSeconds(plan.cluster(), cost));
  }
  EXPECT_CLOSE(g.tpotMedianSeconds, g.stepSeconds[2]);
  EXPECT_CLOSE(g.tpotP99Seconds, g.stepSeconds[4]);
  double total = 0;
  for (double seconds : g.stepSeconds) total += seconds;
  EXPECT_CLOSE(g.decodeTokensPerSecond, plan.workload().sequences() * 5 / total);

  // Two stages pipelining: each step still takes longer than the one before.
  const GenerationPrediction piped =
      *simulate(generationPlan(2, 4, 6, kStageCost, stepCost)).generation;
  for (size_t s = 1; s < piped.stepSeconds.size(); ++s)
    EXPECT_GT(piped.stepSeconds[s], piped.stepSeconds[s - 1]);
}

// Past kMaxSimulatedSteps, windows simulated from idle (the tokens of their first step ready)
// time their sampled steps as the whole generation in one chain does once warmed up, even
// with transfers that take time: the median agrees. The chain's last step feeds nothing and
// ends early; windows sample the steps before their last, so the last sample is step - 2.
TEST(SimulatorGeneration, WindowsAgreeWithTheWholeChain) {
  const uint32_t steps = 3 * kMaxSimulatedSteps;
  // The last step costs a fifth more than the first.
  const plan::Cost stepCost = flopsCost(kStageCost.flops() / 5 / steps);
  for (uint32_t stages : {2u, 3u})
    for (uint32_t m : {1u, 2u, 5u}) {
      SCOPED_TRACE("stages " + std::to_string(stages) + " m " + std::to_string(m));
      plan::Plan plan = generationPlan(stages, m, steps + 1, kStageCost, stepCost);
      plan.mutable_cluster()->mutable_intra_node()->set_latency_s(1e-4);
      const GenerationPrediction windows = *simulate(plan).generation;
      const GenerationPrediction chain = detail::simulateGeneration(plan, steps);
      ASSERT_EQ(chain.stepSeconds.size(), steps);
      EXPECT_EQ(windows.steps, steps);
      EXPECT_LT(windows.simulatedSteps.size(), kMaxSimulatedSteps);
      EXPECT_GT(windows.simulatedSteps.size(), kMaxSimulatedSteps / 4);
      EXPECT_EQ(windows.simulatedSteps.back(), steps - 2);
      EXPECT_TRUE(std::is_sorted(windows.simulatedSteps.begin(), windows.simulatedSteps.end()));
      EXPECT_CLOSE(windows.ttftSeconds, chain.ttftSeconds);
      EXPECT_NEAR(windows.tpotMedianSeconds, chain.tpotMedianSeconds,
                  0.01 * chain.tpotMedianSeconds);
      for (size_t i = 0; i < windows.simulatedSteps.size(); ++i)
        EXPECT_CLOSE(windows.stepSeconds[i], chain.stepSeconds[windows.simulatedSteps[i]])
            << "step " << windows.simulatedSteps[i];
    }
}
