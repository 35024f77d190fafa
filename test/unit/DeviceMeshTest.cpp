#include "moeplan/Analysis/DeviceMesh.h"

#include <gtest/gtest.h>

using namespace moeplan;

namespace {
StrategySpec strategy(int64_t tp, int64_t pp, int64_t dp, int64_t ep, int64_t etp) {
  StrategySpec s;
  s.tp = tp, s.pp = pp, s.dp = dp, s.ep = ep, s.expertTp = etp;
  return s;
}
} // namespace

TEST(DeviceMesh, DefaultOrderTpInnermostPpOutermost) {
  DeviceMesh mesh(strategy(2, 2, 2, 4, 1));
  MeshCoord c = mesh.coord(5);
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.dp, 0);
  EXPECT_EQ(c.pp, 1);
  EXPECT_EQ(c.etp, 0);
  EXPECT_EQ(c.ep, 1);
  EXPECT_EQ(c.edp, 0);
  EXPECT_EQ(c.expertPp, 1);
  auto stages = mesh.ranksByStage();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(stages[1], (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(mesh.firstPipelineDisagreement(), -1);
}

TEST(DeviceMesh, FoldingEpBeyondDp) {
  // Megatron's example: attention tp 2 x pp 2 x dp 4, experts etp 1 x ep 8 x pp 2.
  StrategySpec s = strategy(2, 2, 4, 8, 1);
  EXPECT_EQ(s.expertDp(), 1);
  DeviceMesh mesh(s);
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(mesh.coord(r).ep, r);
  EXPECT_EQ(mesh.coord(9).ep, 1);
  EXPECT_EQ(mesh.coord(9).expertPp, 1);
}

TEST(DeviceMesh, PipelineGroupsDisagreeWhenPpIsInnerAndExpertTpDiffers) {
  StrategySpec s = strategy(2, 2, 2, 4, 1);
  s.rankOrder = {Axis::TP, Axis::PP, Axis::DP, Axis::EP};
  // Attention grid tp-pp-dp: rank 1 is tp 1 of stage 0; expert grid etp-pp-ep: rank 1 is
  // in stage 1.
  EXPECT_EQ(DeviceMesh(s).firstPipelineDisagreement(), 1);
  s.expertTp = 2, s.ep = 2;  // expert_tp == tp: both grids stride pp alike
  EXPECT_EQ(DeviceMesh(s).firstPipelineDisagreement(), -1);
}

TEST(DeviceMesh, AttentionGridWithoutExpertFold) {
  StrategySpec s = strategy(2, 2, 2, 8, 1);  // etp x ep = 8 does not divide tp x dp = 4
  DeviceMesh mesh(s);
  EXPECT_FALSE(mesh.expertGridFolds());
  EXPECT_EQ(mesh.coord(5).pp, 1);
  EXPECT_EQ(mesh.coord(5).ep, -1);
  EXPECT_EQ(mesh.firstPipelineDisagreement(), -1);
  EXPECT_EQ(mesh.ranksByStage()[1], (std::vector<int64_t>{4, 5, 6, 7}));
}

// The closed forms against a brute-force walk over every rank.
TEST(DeviceMesh, ClosedFormsMatchBruteForce) {
  const std::vector<std::vector<Axis>> orders = {
      {Axis::TP, Axis::EP, Axis::DP, Axis::PP}, {Axis::TP, Axis::PP, Axis::DP, Axis::EP},
      {Axis::DP, Axis::TP, Axis::EP, Axis::PP}, {Axis::PP, Axis::DP, Axis::EP, Axis::TP},
      {Axis::EP, Axis::PP, Axis::TP, Axis::DP}};
  int checked = 0;
  for (const auto &order : orders)
    for (int64_t tp : {1, 2, 3, 4})
      for (int64_t pp : {1, 2, 3})
        for (int64_t dp : {1, 2, 4})
          for (int64_t ep : {1, 2, 4})
            for (int64_t etp : {1, 2}) {
              StrategySpec s = strategy(tp, pp, dp, ep, etp);
              s.rankOrder = order;
              if (s.expertDp() == 0) continue;
              DeviceMesh mesh(s);
              int64_t first = -1;
              for (int64_t r = 0; r < s.world() && first < 0; ++r)
                if (mesh.coord(r).pp != mesh.coord(r).expertPp) first = r;
              EXPECT_EQ(mesh.firstPipelineDisagreement(), first) << s.str();
              for (int64_t node : {1, 2, 3, 4, 6, 8}) {
                bool spans = false;
                for (int64_t r = 0; r < s.world(); ++r)
                  for (int64_t q = 0; q < s.world(); ++q) {
                    MeshCoord a = mesh.coord(r), b = mesh.coord(q);
                    if (a.dp == b.dp && a.pp == b.pp && r / node != q / node) spans = true;
                  }
                EXPECT_EQ(mesh.tensorParallelSpansNodes(node), spans) << s.str() << " node " << node;
                ++checked;
              }
            }
  EXPECT_GT(checked, 1000);
}

TEST(DeviceMesh, FormatIdRanges) {
  EXPECT_EQ(formatIdRanges({0, 1, 2, 3, 8, 10, 11}), "0-3, 8, 10-11");
  EXPECT_EQ(formatIdRanges({}), "");
}

TEST(RankOrder, ParsesAndRejects) {
  std::string err;
  auto o = parseRankOrder("pp-dp-ep-tp", err);
  ASSERT_TRUE(o);
  EXPECT_EQ((*o)[0], Axis::PP);
  EXPECT_FALSE(parseRankOrder("tp-cp-ep-dp-pp", err));
  EXPECT_NE(err.find("cp"), std::string::npos);
  EXPECT_FALSE(parseRankOrder("tp-tp-dp-pp", err));
  EXPECT_FALSE(parseRankOrder("tp-dp-pp", err));
  EXPECT_FALSE(parseRankOrder("", err));
}
