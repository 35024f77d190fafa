// Where mpirun puts ranks against where the plan wants them (Runtime/Placement.h).
#include "moeplan/Runtime/Placement.h"

#include <gtest/gtest.h>

using namespace moeplan;
using runtime::RankPlace;

namespace {

// A plan of `nodes` x `perNode` ranks; rank r on node r / perNode.
plan::Plan planOf(uint32_t nodes, uint32_t perNode) {
  plan::Plan p;
  p.mutable_cluster()->set_nodes(nodes);
  p.mutable_cluster()->set_gpus_per_node(perNode);
  for (uint32_t r = 0; r < nodes * perNode; ++r) {
    plan::Rank *rank = p.add_ranks();
    rank->set_node(r / perNode);
    rank->set_local_gpu(r % perNode);
  }
  return p;
}

// Ranks on hosts as mpirun would place them, local ranks in world order per host.
std::vector<RankPlace> places(const std::vector<std::string> &hosts, int devices) {
  std::vector<RankPlace> out;
  std::map<std::string, uint32_t> next;
  for (const std::string &h : hosts) out.push_back({h, next[h]++, devices});
  return out;
}

TEST(Placement, NodesOnTheirOwnHostsPass) {
  const plan::Plan p = planOf(2, 4);
  const auto check = runtime::checkPlacement(p, places({"a", "a", "a", "a", "b", "b", "b", "b"}, 4));
  EXPECT_TRUE(check.errors.empty());
  EXPECT_TRUE(check.notes.empty());
  EXPECT_TRUE(check.sharedDevices.empty());
}

TEST(Placement, ANodeSpreadOverHostsIsAnError) {
  // mpirun --map-by node: ranks alternate between hosts, so node 0's ranks land on both.
  const plan::Plan p = planOf(2, 4);
  const auto check = runtime::checkPlacement(p, places({"a", "b", "a", "b", "a", "b", "a", "b"}, 4));
  ASSERT_EQ(check.errors.size(), 2u);
  EXPECT_EQ(check.errors[0],
            "the plan puts ranks of node 0 on one host, but mpirun placed ranks 0,2 on \"a\", "
            "ranks 1,3 on \"b\": their intra-node groups would cross the network; place 4 "
            "consecutive ranks per host (a hostfile with slots=4 and mpirun --map-by slot, or "
            "--map-by ppr:4:node)");
}

TEST(Placement, NodesSharingAHostAreANote) {
  const plan::Plan p = planOf(2, 2);
  const auto check = runtime::checkPlacement(p, places({"a", "a", "a", "a"}, 4));
  EXPECT_TRUE(check.errors.empty());
  ASSERT_EQ(check.notes.size(), 1u);
  EXPECT_NE(check.notes[0].find("2 of the plan's nodes run on host \"a\""), std::string::npos);
  EXPECT_TRUE(check.sharedDevices.empty());  // four ranks, four GPUs
}

TEST(Placement, RanksBeyondTheDevicesShareThem) {
  const plan::Plan p = planOf(1, 4);
  auto check = runtime::checkPlacement(p, places({"a", "a", "a", "a"}, 1));
  ASSERT_EQ(check.sharedDevices.size(), 3u);
  EXPECT_EQ(check.sharedDevices[0], std::make_pair(0u, 1u));
  check = runtime::checkPlacement(p, places({"a", "a", "a", "a"}, 2));  // device = local % 2
  ASSERT_EQ(check.sharedDevices.size(), 2u);
  EXPECT_EQ(check.sharedDevices[0], std::make_pair(0u, 2u));
  EXPECT_EQ(check.sharedDevices[1], std::make_pair(1u, 3u));
  check = runtime::checkPlacement(p, places({"a", "a", "a", "a"}, 0));  // no GPU: nothing shared
  EXPECT_TRUE(check.sharedDevices.empty());
}

} // namespace
