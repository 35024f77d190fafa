#include "moeplan/Analysis/WeightMemory.h"

#include "TestSpecs.h"

#include <gtest/gtest.h>

using namespace moeplan;
using namespace moeplan::testing;

TEST(WeightMemory, SeedStrategyByHand) {
  DeploymentSpec d = seedDeployment();  // tp 2, ep 4, expert_tp 1, pp 2
  std::vector<StageWeights> w = weightsPerGpu(d.model, d.strategy);
  ASSERT_EQ(w.size(), 2u);
  // Per layer on one GPU: attention 4 d^2 / 2, router d E, 16 whole experts, norms 4 d.
  const int64_t layer = 4LL * 1024 * 1024 / 2 + 1024 * 64 + 16 * 2LL * 1024 * 2048 + 4 * 1024;
  EXPECT_EQ(layer, 69275648);
  EXPECT_EQ(w[0].firstLayer, 0);
  EXPECT_EQ(w[0].lastLayer, 7);
  EXPECT_EQ(w[0].perGpu.total(), 8 * layer);
  EXPECT_EQ(w[1].perGpu.total(), 8 * layer + 2 * 1024);  // + final LayerNorm
  EXPECT_DOUBLE_EQ(w[0].bytesPerGpu, 2.0 * 8 * layer);   // fp16: 1.108 GB, not the seed's 30 GB
}

TEST(WeightMemory, EmbeddingOnFirstStageHeadOnLast) {
  ModelSpec m = mixtral();
  StrategySpec s;
  s.tp = 2, s.pp = 4, s.dp = 1, s.ep = 2, s.expertTp = 1;
  std::vector<StageWeights> w = weightsPerGpu(m, s);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].perGpu.embedding, 16000LL * 4096);
  EXPECT_EQ(w[0].perGpu.lmHead, 0);
  EXPECT_EQ(w[3].perGpu.embedding, 0);
  EXPECT_EQ(w[3].perGpu.lmHead, 16000LL * 4096);
  EXPECT_EQ(w[1].perGpu.embedding + w[1].perGpu.lmHead, 0);
  EXPECT_EQ(w[1].firstLayer, 8);
  EXPECT_EQ(w[1].lastLayer, 15);
}

TEST(WeightMemory, TiedHeadIsCopiedOntoTheLastStageOnly) {
  ModelSpec m = gpt3();
  StrategySpec one;
  std::vector<StageWeights> single = weightsPerGpu(m, one);
  EXPECT_EQ(single[0].perGpu.lmHead, 0);  // pp 1: shared storage
  StrategySpec two;
  two.pp = 2;
  std::vector<StageWeights> w = weightsPerGpu(m, two);
  EXPECT_EQ(w[1].perGpu.lmHead, 50257LL * 12288);  // pp 2: the last stage keeps a copy
}

TEST(WeightMemory, UnevenLayersGoToTheFirstStages) {
  int64_t first, last;
  stageLayers(10, 4, 0, first, last);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(last, 2);
  stageLayers(10, 4, 3, first, last);
  EXPECT_EQ(first, 8);
  EXPECT_EQ(last, 9);
}
