// The cost model against reference.md section 4: roofline kernels, nccl-tests collectives.
#include "moeplan/Simulate/CostModel.h"

#include "TestPlans.h"

#include <gtest/gtest.h>

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

TEST(CostModel, CollectiveIsLatencyPlusBusBytesOverTheGroupsLink) {
  plan::Cluster c = testCluster();
  const uint64_t bytes = uint64_t(1) << 26;
  for (plan::CollectiveKind kind : kAllKinds)
    for (uint32_t n : {2u, 8u}) {
      for (bool intra : {true, false}) {
        const plan::Link &link = intra ? c.intra_node() : c.inter_node();
        double expected = link.latency_s() +
                          ncclTestsFactor(kind, n) * double(bytes) / link.bandwidth_bytes_per_s();
        EXPECT_DOUBLE_EQ(collectiveSeconds(c, kind, bytes, n, intra), expected)
            << plan::CollectiveKind_Name(kind) << " n " << n << " intra " << intra;
      }
      EXPECT_LT(collectiveSeconds(c, kind, bytes, n, true),
                collectiveSeconds(c, kind, bytes, n, false));
    }
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
    return link.latency_s() +
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

  plan::Instruction kernel;
  kernel.mutable_kernel()->set_kind(plan::GEMM);
  *kernel.mutable_cost() = makeCost(uint64_t(1e12), uint64_t(1e9));
  EXPECT_DOUBLE_EQ(instructionSeconds(p, 0, kernel), kernelSeconds(c, kernel.cost()));

  EXPECT_THROW(instructionSeconds(p, 0, collectiveInstruction(plan::ALL_REDUCE, "ep", bytes)),
               std::invalid_argument);
  EXPECT_THROW(instructionSeconds(p, 7, collectiveInstruction(plan::SEND, "pp", bytes, 4)),
               std::invalid_argument);
}
