// The cost model against reference.md section 4: roofline kernels, nccl-tests collectives.
#include "moeplan/Simulate/CostModel.h"

#include "TestPlans.h"

#include <gtest/gtest.h>

#include <random>

#include <stdexcept>

using namespace moeplan;
using namespace moeplan::sim;
using namespace moeplan::testing;

namespace {

// nccl-tests doc/PERFORMANCE.md: the bus traffic per byte of S for a group of n.
double ncclTestsFactor(plan::CollectiveKind kind, double n) {
  switch (kind) {
  case plan::ALL_REDUCE: return 2 * (n - 1) / n;
  case plan::SEND:
  case plan::RECV: return 1;
  default: return (n - 1) / n;  // all-gather, reduce-scatter, all-to-all
  }
}

const plan::CollectiveKind kAllKinds[] = {plan::ALL_REDUCE, plan::ALL_GATHER, plan::REDUCE_SCATTER,
                                          plan::ALL_TO_ALL, plan::SEND,       plan::RECV};

plan::Instruction collectiveInstruction(plan::CollectiveKind kind, const std::string &axis,
                                        uint64_t bytes, uint32_t peer = 0) {
  plan::Instruction inst;
  inst.mutable_collective()->set_kind(kind);
  inst.mutable_collective()->set_axis(axis);
  inst.mutable_collective()->set_peer(peer);
  inst.mutable_cost()->set_comm_bytes(bytes);
  return inst;
}

}  // namespace

TEST(CostModel, KernelIsComputeBoundWhenFlopsDominate) {
  plan::Cluster c = testCluster();
  plan::Cost cost = makeCost(uint64_t(4e12), uint64_t(1e6));
  double compute = double(cost.flops()) / (c.peak_flops() * c.mfu());
  double memory = double(cost.memory_bytes()) /
                  (c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization());
  ASSERT_GT(compute, memory);
  EXPECT_DOUBLE_EQ(kernelSeconds(c, cost), compute);
  EXPECT_DOUBLE_EQ(kernelComputeSeconds(c, cost), compute);
  EXPECT_DOUBLE_EQ(kernelMemorySeconds(c, cost), memory);
}

TEST(CostModel, KernelIsMemoryBoundWhenBytesDominate) {
  plan::Cluster c = testCluster();
  plan::Cost cost = makeCost(uint64_t(1e6), uint64_t(8e9));
  double compute = double(cost.flops()) / (c.peak_flops() * c.mfu());
  double memory = double(cost.memory_bytes()) /
                  (c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization());
  ASSERT_GT(memory, compute);
  EXPECT_DOUBLE_EQ(kernelSeconds(c, cost), memory);
}

TEST(CostModel, MissingRateMattersOnlyWithWork) {
  plan::Cluster c = testCluster();
  c.set_peak_flops(0);
  EXPECT_EQ(kernelSeconds(c, makeCost(0, 0)), 0);
  EXPECT_THROW(kernelSeconds(c, flopsCost(1)), std::invalid_argument);
}

TEST(CostModel, BusFactorsFollowNcclTests) {
  for (plan::CollectiveKind kind : kAllKinds) {
    EXPECT_EQ(busFactor(kind, 1), 0) << plan::CollectiveKind_Name(kind);
    for (uint32_t n : {2u, 3u, 4u, 8u, 64u})
      EXPECT_DOUBLE_EQ(busFactor(kind, n), ncclTestsFactor(kind, n))
          << plan::CollectiveKind_Name(kind) << " n " << n;
  }
}

// The algorithms' sequential steps, each paying the link latency: a ring all-reduce is a
// reduce-scatter then an all-gather, n - 1 steps each.
TEST(CostModel, AlgorithmStepsOfEachCollective) {
  for (uint32_t n : {2u, 3u, 8u, 64u}) {
    EXPECT_EQ(algorithmSteps(plan::ALL_REDUCE, n), 2 * (n - 1));
    EXPECT_EQ(algorithmSteps(plan::ALL_GATHER, n), n - 1);
    EXPECT_EQ(algorithmSteps(plan::REDUCE_SCATTER, n), n - 1);
    EXPECT_EQ(algorithmSteps(plan::ALL_TO_ALL, n), 1u);
    EXPECT_EQ(algorithmSteps(plan::SEND, n), 1u);
  }
  for (plan::CollectiveKind kind : kAllKinds) EXPECT_EQ(algorithmSteps(kind, 1), 0u);
}

TEST(CostModel, CollectiveIsLatencyPerStepPlusBusBytesOverTheGroupsLink) {
  plan::Cluster c = testCluster();
  const uint64_t bytes = uint64_t(1) << 26;
  for (plan::CollectiveKind kind : kAllKinds)
    for (uint32_t n : {2u, 8u}) {
      for (bool intra : {true, false}) {
        const plan::Link &link = intra ? c.intra_node() : c.inter_node();
        double expected = algorithmSteps(kind, n) * link.latency_s() +
                          ncclTestsFactor(kind, n) * double(bytes) / link.bandwidth_bytes_per_s();
        EXPECT_DOUBLE_EQ(collectiveSeconds(c, kind, bytes, n, intra), expected)
            << plan::CollectiveKind_Name(kind) << " n " << n << " intra " << intra;
      }
      EXPECT_LT(collectiveSeconds(c, kind, bytes, n, true),
                collectiveSeconds(c, kind, bytes, n, false));
    }
}

// With a reduce rate R on the link (the alpha-beta-gamma model), each rank of a reduce-scatter
// or all-reduce over n also adds up (n-1)/n of S at R; the other kinds reduce nothing. By
// hand, n = 4, S = 8 MiB, intra 400 GB/s, 5 us, R = 100 GB/s: a reduce-scatter takes
// 3 x 5 us + 6 MiB / 400 GB/s + 6 MiB / 100 GB/s; an all-reduce twice the steps and the bus
// bytes but the same reduction.
TEST(CostModel, ReductionsAddTheirBytesAtTheLinksReduceRate) {
  plan::Cluster c = testCluster();
  const uint64_t s = uint64_t(8) << 20;
  const double mib = double(1 << 20);
  const double rs = collectiveSeconds(c, plan::REDUCE_SCATTER, s, 4, true);
  const double ar = collectiveSeconds(c, plan::ALL_REDUCE, s, 4, true);
  const double ag = collectiveSeconds(c, plan::ALL_GATHER, s, 4, true);
  c.mutable_intra_node()->set_reduce_bytes_per_s(100e9);
  EXPECT_DOUBLE_EQ(reduceFactor(plan::REDUCE_SCATTER, 4), 0.75);
  EXPECT_DOUBLE_EQ(reduceFactor(plan::ALL_REDUCE, 4), 0.75);
  EXPECT_DOUBLE_EQ(reduceFactor(plan::ALL_GATHER, 4), 0);
  EXPECT_DOUBLE_EQ(reduceFactor(plan::REDUCE_SCATTER, 1), 0);
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::REDUCE_SCATTER, s, 4, true),
                   3 * 5e-6 + 6 * mib / 400e9 + 6 * mib / 100e9);
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::REDUCE_SCATTER, s, 4, true), rs + 6 * mib / 100e9);
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_REDUCE, s, 4, true), ar + 6 * mib / 100e9);
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_GATHER, s, 4, true), ag);
  // Across nodes, the inter-node link's rate (none here: its bandwidth counts it).
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::REDUCE_SCATTER, s, 4, false),
                   3 * 20e-6 + 6 * mib / 50e9);
}

// Clark's expected maximum of normals: exact for two (1/sqrt(pi) for two standard normals;
// the later mean when the spread is negligible), and for more, pairwise, against a seeded
// Monte Carlo of the largest of n standard normals (Clark's folding is an approximation:
// within 3 % up to 16 members).
TEST(CostModel, ExpectedLatestArrivalIsClarksMaximumOfNormals) {
  EXPECT_NEAR(jitterWaitFactor(2), 1 / std::sqrt(M_PI), 1e-12);
  EXPECT_DOUBLE_EQ(jitterWaitFactor(1), 0);
  EXPECT_DOUBLE_EQ(expectedLatestArrival({{1.0, 0.0}, {3.0, 0.0}, {2.0, 0.0}}), 3.0);
  EXPECT_NEAR(expectedLatestArrival({{0.0, 1.0}, {40.0, 1.0}}), 40.0, 1e-12);
  // Unequal spreads, two members: mu1 Phi(a) + mu2 Phi(-a) + theta phi(a), a = (mu1-mu2)/theta.
  const double theta = std::sqrt(0.25 + 1.0), a = (1.0 - 0.5) / theta;
  const double phi = std::exp(-a * a / 2) / std::sqrt(2 * M_PI), cdf = 0.5 * std::erfc(-a / std::sqrt(2.0));
  EXPECT_NEAR(expectedLatestArrival({{1.0, 0.5}, {0.5, 1.0}}),
              1.0 * cdf + 0.5 * (1 - cdf) + theta * phi, 1e-12);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  for (uint32_t n : {3u, 4u, 8u, 16u}) {
    double sum = 0;
    const int samples = 60000;
    for (int s = 0; s < samples; ++s) {
      double best = -INFINITY;
      for (uint32_t k = 0; k < n; ++k) best = std::max(best, normal(rng));
      sum += best;
    }
    const double sampled = sum / samples;
    EXPECT_NEAR(jitterWaitFactor(n), sampled, 0.03 * sampled) << n << " members";
  }
}

// A group across nodes, by hand: 16 ranks, 8 per node (intra 400 GB/s, 5 us; inter 50 GB/s,
// 20 us in testCluster), S = 16 MiB. An all-to-all sends S / 16 = 1 MiB to each peer: 7 MiB
// to the node's others over NVLink while 8 MiB leave over the NIC, at once; the NIC's part
// is the slower. A ring all-reduce is bound by its inter-node hops at every one of its
// 2 x 15 steps.
TEST(CostModel, GroupsAcrossNodesSplitTrafficByLink) {
  const plan::Cluster c = testCluster();
  const uint64_t s = uint64_t(16) << 20;
  const double mib = double(1 << 20);
  const double intra = 5e-6 + 7 * mib / 400e9, inter = 20e-6 + 8 * mib / 50e9;
  ASSERT_DOUBLE_EQ(c.intra_node().bandwidth_bytes_per_s(), 400e9);
  ASSERT_DOUBLE_EQ(c.inter_node().latency_s(), 20e-6);
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_TO_ALL, s, GroupSpan{16, 8}), std::max(intra, inter));
  // More of the group on the node: less leaves it.
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_TO_ALL, s, GroupSpan{16, 12}),
                   std::max(5e-6 + 11 * mib / 400e9, 20e-6 + 4 * mib / 50e9));
  // One member per node: everything over the NIC (the two-argument form's "not intra").
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_TO_ALL, s, GroupSpan{16, 1}),
                   collectiveSeconds(c, plan::ALL_TO_ALL, s, 16, false));
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_TO_ALL, s, GroupSpan{16, 1}), 20e-6 + 15 * mib / 50e9);
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_REDUCE, s, GroupSpan{16, 8}),
                   30 * 20e-6 + 2.0 * 15 / 16 * double(s) / 50e9);
  // All on one node: NVLink only.
  EXPECT_DOUBLE_EQ(collectiveSeconds(c, plan::ALL_TO_ALL, s, GroupSpan{16, 16}),
                   5e-6 + 15 * mib / 400e9);
}

// Measured GEMM efficiency by rows, interpolated in log(rows): (1, 5 %) and (1024, 65 %) give
// 35 % at 32 rows (half way in log2). A routed grouped GEMM counts the rows its cost counts;
// other kernels use mfu; every kernel pays the launch overhead.
TEST(CostModel, GemmEfficiencyByRowsAndLaunchOverhead) {
  plan::Cluster c = testCluster();
  EXPECT_DOUBLE_EQ(gemmEfficiency(c, 7), c.mfu());  // no table
  for (auto [rows, share] : {std::pair{1.0, 0.05}, {1024.0, 0.65}}) {
    plan::GemmEfficiency &e = *c.add_gemm_efficiency();
    e.set_rows(rows);
    e.set_efficiency(share);
  }
  c.set_launch_overhead_s(3e-6);
  EXPECT_DOUBLE_EQ(gemmEfficiency(c, 1), 0.05);
  EXPECT_DOUBLE_EQ(gemmEfficiency(c, 0.5), 0.05);  // flat below the first point
  EXPECT_NEAR(gemmEfficiency(c, 32), 0.35, 1e-12);
  EXPECT_DOUBLE_EQ(gemmEfficiency(c, 1 << 20), 0.65);  // and above the last

  plan::Instruction gemm;
  plan::Kernel &k = *gemm.mutable_kernel();
  k.set_kind(plan::GEMM), k.set_m(32), k.set_n(64), k.set_k(128);
  *gemm.mutable_cost() = makeCost(2 * 32 * 64 * 128, 1000);
  EXPECT_NEAR(kernelEfficiency(c, gemm), 0.35, 1e-12);
  EXPECT_DOUBLE_EQ(kernelSeconds(c, gemm),
                   3e-6 + std::max(double(gemm.cost().flops()) / (c.peak_flops() * kernelEfficiency(c, gemm)),
                                   1000 / (c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization())));

  plan::Instruction grouped = gemm;
  grouped.mutable_kernel()->set_kind(plan::GROUPED_GEMM);
  grouped.mutable_kernel()->set_groups(4);
  grouped.mutable_cost()->set_flops(4 * 2 * 16 * 64 * 128);  // routing filled 16 of 32 rows
  EXPECT_NEAR(kernelEfficiency(c, grouped), 0.05 + 0.6 * 4 / 10, 1e-12);

  plan::Instruction add;
  add.mutable_kernel()->set_kind(plan::ADD);
  *add.mutable_cost() = makeCost(0, 1 << 20);
  EXPECT_EQ(kernelEfficiency(c, add), c.mfu());
  EXPECT_DOUBLE_EQ(kernelSeconds(c, add), 3e-6 + kernelSeconds(c, add.cost()));
}

// A kind's measured rate replaces the memory bandwidth for that kind and variant only.
TEST(CostModel, KernelRatesByKind) {
  plan::Cluster c = testCluster();
  const double hbm = c.memory_bandwidth_bytes_per_s() * c.memory_bandwidth_utilization();
  auto kernel = [](plan::KernelKind kind, plan::NormKind norm, plan::ActivationKind act) {
    plan::Instruction i;
    plan::Kernel &k = *i.mutable_kernel();
    k.set_kind(kind), k.set_norm(norm), k.set_activation(act);
    *i.mutable_cost() = makeCost(0, 1 << 20);
    return i;
  };
  const plan::Instruction layerNorm = kernel(plan::NORM, plan::LAYER_NORM, {}),
                          rmsNorm = kernel(plan::NORM, plan::RMS_NORM, {}),
                          gelu = kernel(plan::ACTIVATION_FUNCTION, {}, plan::GELU),
                          swiglu = kernel(plan::ACTIVATION_FUNCTION, {}, plan::SWIGLU),
                          router = kernel(plan::ROUTER, {}, {}), add = kernel(plan::ADD, {}, {});
  for (const plan::Instruction *i : {&layerNorm, &rmsNorm, &gelu, &swiglu, &router, &add})
    EXPECT_DOUBLE_EQ(kernelBandwidth(c, *i), hbm);  // no rates: the roofline
  plan::KernelRates &r = *c.mutable_kernel_rates();
  r.set_layer_norm_bytes_per_s(1e9), r.set_rms_norm_bytes_per_s(2e9), r.set_gelu_bytes_per_s(3e9);
  r.set_swiglu_bytes_per_s(4e9), r.set_router_bytes_per_s(5e9);
  EXPECT_DOUBLE_EQ(kernelBandwidth(c, layerNorm), 1e9);
  EXPECT_DOUBLE_EQ(kernelBandwidth(c, rmsNorm), 2e9);
  EXPECT_DOUBLE_EQ(kernelBandwidth(c, gelu), 3e9);
  EXPECT_DOUBLE_EQ(kernelBandwidth(c, swiglu), 4e9);
  EXPECT_DOUBLE_EQ(kernelBandwidth(c, router), 5e9);
  EXPECT_DOUBLE_EQ(kernelBandwidth(c, add), hbm);
  EXPECT_DOUBLE_EQ(kernelSeconds(c, gelu), double(1 << 20) / 3e9);
  EXPECT_DOUBLE_EQ(kernelMemorySeconds(c, router), double(1 << 20) / 5e9);
}

TEST(CostModel, GroupOfOneCostsNothing) {
  plan::Cluster c = testCluster();
  for (plan::CollectiveKind kind : kAllKinds)
    EXPECT_EQ(collectiveSeconds(c, kind, uint64_t(1) << 30, 1, false), 0);
}

// 16 ranks on two nodes: tp groups within a node, dp groups across them, and one pp group
// {6, 7, 8, 9} that straddles the boundary, where SEND/RECV cost depends on the peer.
TEST(CostModel, InstructionSecondsResolvesTheRanksGroup) {
  const uint32_t gpusPerNode = 8;
  PlanBuilder b(2 * gpusPerNode, gpusPerNode);
  for (uint32_t node = 0; node < 2; ++node) {
    std::vector<uint32_t> tp;
    for (uint32_t g = 0; g < gpusPerNode; ++g) tp.push_back(node * gpusPerNode + g);
    b.addGroup("tp", tp);
  }
  for (uint32_t g = 0; g < gpusPerNode; ++g) b.addGroup("dp", {g, g + gpusPerNode});
  b.addGroup("pp", {6, 7, 8, 9});
  const plan::Plan p = b.build();
  const plan::Cluster &c = p.cluster();
  const uint64_t bytes = uint64_t(1) << 24;
  auto expected = [&](plan::CollectiveKind kind, double n, const plan::Link &link) {
    return algorithmSteps(kind, uint32_t(n)) * link.latency_s() +
           ncclTestsFactor(kind, n) * double(bytes) / link.bandwidth_bytes_per_s();
  };

  EXPECT_DOUBLE_EQ(instructionSeconds(p, 3, collectiveInstruction(plan::ALL_REDUCE, "tp", bytes)),
                   expected(plan::ALL_REDUCE, gpusPerNode, c.intra_node()));
  EXPECT_DOUBLE_EQ(instructionSeconds(p, 3, collectiveInstruction(plan::ALL_GATHER, "dp", bytes)),
                   expected(plan::ALL_GATHER, 2, c.inter_node()));
  EXPECT_FALSE(p.groups(int(membershipOn(p, 7, "pp").group())).intra_node());
  EXPECT_DOUBLE_EQ(instructionSeconds(p, 7, collectiveInstruction(plan::SEND, "pp", bytes, 0)),
                   expected(plan::SEND, 4, c.intra_node()));  // to rank 6, same node
  EXPECT_DOUBLE_EQ(instructionSeconds(p, 7, collectiveInstruction(plan::RECV, "pp", bytes, 2)),
                   expected(plan::RECV, 4, c.inter_node()));  // from rank 8, next node
  // The straddling group's all-to-all: rank 7 has rank 6 beside it, ranks 8 and 9 away.
  const double quarter = double(bytes) / 4;
  EXPECT_DOUBLE_EQ(instructionSeconds(p, 7, collectiveInstruction(plan::ALL_TO_ALL, "pp", bytes)),
                   std::max(c.intra_node().latency_s() + quarter / c.intra_node().bandwidth_bytes_per_s(),
                            c.inter_node().latency_s() + 2 * quarter / c.inter_node().bandwidth_bytes_per_s()));

  plan::Instruction kernel;
  kernel.mutable_kernel()->set_kind(plan::GEMM);
  *kernel.mutable_cost() = makeCost(uint64_t(1e12), uint64_t(1e9));
  EXPECT_DOUBLE_EQ(instructionSeconds(p, 0, kernel), kernelSeconds(c, kernel.cost()));

  EXPECT_THROW(instructionSeconds(p, 0, collectiveInstruction(plan::ALL_REDUCE, "ep", bytes)),
               std::invalid_argument);
  EXPECT_THROW(instructionSeconds(p, 7, collectiveInstruction(plan::SEND, "pp", bytes, 4)),
               std::invalid_argument);
}
