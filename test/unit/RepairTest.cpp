#include "moeplan/Check/Repair.h"
#include "moeplan/Check/Rules.h"

#include "TestSpecs.h"

#include <gtest/gtest.h>

using namespace moeplan;
using namespace moeplan::testing;

TEST(Repair, CandidatesAreValidUseEveryGpuAndComeNearestFirst) {
  DeploymentSpec d = seedDeployment();
  d.strategy.tp = 3;  // does not divide 16 heads
  std::vector<Finding> f;
  checkStrategy(d, f);
  ASSERT_TRUE(hasErrors(f));
  std::vector<RepairCandidate> rs = nearestValidStrategies(d, 5);
  ASSERT_EQ(rs.size(), 5u);
  for (size_t i = 0; i < rs.size(); ++i) {
    DeploymentSpec c = d;
    c.strategy = rs[i].strategy;
    std::vector<Finding> cf;
    checkStrategy(c, cf);
    EXPECT_FALSE(hasErrors(cf)) << rs[i].strategy.str();
    EXPECT_EQ(c.strategy.world(), 16);
    if (i) EXPECT_LE(rs[i - 1].distance, rs[i].distance);
  }
  EXPECT_FALSE(rs[0].changes.empty());
}

TEST(Repair, SeedStrategyGrowsToTheWholeCluster) {
  // The seed's degrees are sound but occupy 8 of 16 GPUs; one doubling fills the cluster.
  DeploymentSpec d = seedDeployment();
  std::vector<RepairCandidate> rs = nearestValidStrategies(d, 3);
  ASSERT_FALSE(rs.empty());
  EXPECT_DOUBLE_EQ(rs[0].distance, 1.0);
  EXPECT_EQ(rs[0].changes.size(), 1u);
}

TEST(Repair, NothingValidMeansNoCandidates) {
  DeploymentSpec d = seedDeployment();
  d.cluster.memoryBytes = 1e6;  // no strategy fits the weights into 1 MB
  EXPECT_TRUE(nearestValidStrategies(d, 3).empty());
}
