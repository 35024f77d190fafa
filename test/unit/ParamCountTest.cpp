#include "moeplan/Analysis/ParamCount.h"
#include "moeplan/Support/CheckedMath.h"

#include "TestSpecs.h"

#include <gtest/gtest.h>

using namespace moeplan;
using namespace moeplan::testing;

TEST(ParamCount, SeedModelByHand) {
  ParamBreakdown p = countModelParams(seedModel());
  // Per layer: attention 4 d^2; router d E; experts E x 2 d f; two LayerNorms 2 x 2d.
  EXPECT_EQ(p.attention, 16 * 4LL * 1024 * 1024);            // 67,108,864
  EXPECT_EQ(p.router, 16 * 1024LL * 64);                      // 1,048,576
  EXPECT_EQ(p.experts, 16 * 64LL * 2 * 1024 * 2048);          // 4,294,967,296
  EXPECT_EQ(p.norms, 16 * 4LL * 1024 + 2 * 1024);             // + final LayerNorm
  EXPECT_EQ(p.denseFfn, 0);
  EXPECT_EQ(p.embedding + p.lmHead, 0);                       // no vocabulary in the seed
  EXPECT_EQ(p.total(), 4363192320LL);  // 4.36 B, not the 30 B the seed declares
}

TEST(ParamCount, SeedActivePerToken) {
  // Everything but 63 of 64 experts per layer.
  EXPECT_EQ(activeParamsPerToken(seedModel()), 4363192320LL - 16 * 63LL * 2 * 1024 * 2048);
}

TEST(ParamCount, Gpt3MatchesTwelveLHSquared) {
  // 12 L h^2 + 13 L h (weights and biases of attention, FFN, two norms per layer)
  // + V h (tied embedding) + 2 h (final LayerNorm) = 174.58 B, GPT-3's published 175 B
  // less its 25 M learned position embeddings.
  const int64_t L = 96, h = 12288, V = 50257;
  ParamBreakdown p = countModelParams(gpt3());
  EXPECT_EQ(p.total(), 12 * L * h * h + 13 * L * h + V * h + 2 * h);
  EXPECT_EQ(p.total(), 174579093504LL);
  EXPECT_EQ(p.lmHead, 0);  // tied
  EXPECT_EQ(activeParamsPerToken(gpt3()), p.total());  // dense: every parameter is active
}

TEST(ParamCount, MixtralMatchesModelCard) {
  ParamBreakdown p = countModelParams(mixtral());
  EXPECT_EQ(p.total(), 46702792704LL);                  // "46.7B"
  EXPECT_EQ(activeParamsPerToken(mixtral()), 12879925248LL);  // "12.9B active"
  EXPECT_EQ(p.attention, 32 * (2 * 4096LL * 4096 + 2 * 4096LL * 1024));  // GQA: 8 KV heads
}

TEST(ParamCount, EveryNthLayerIsMoe) {
  ModelSpec m = seedModel();
  m.moeEveryNth = 2;  // layers 0, 2, ..., 14 MoE; 1, 3, ..., 15 dense
  m.denseFfnHidden = 4096;
  EXPECT_EQ(m.moeLayerCount(), 8);
  ParamBreakdown p = countModelParams(m);
  EXPECT_EQ(p.experts, 8 * 64LL * 2 * 1024 * 2048);
  EXPECT_EQ(p.router, 8 * 1024LL * 64);
  EXPECT_EQ(p.denseFfn, 8 * 2LL * 1024 * 4096);
}

TEST(ParamCount, ShardByTensorAndExpertParallel) {
  ModelSpec m = mixtral();
  // tp 16 > kv_heads 8: each rank keeps one KV head; 2 query heads each.
  ParamBreakdown p = countParams(m, ShardDegrees{16, 8, 2}, 0, 0, false, false);
  EXPECT_EQ(p.attention, 4096LL * 2 * 128 * 2 + 2 * 4096LL * 1 * 128);
  EXPECT_EQ(p.experts, 1 * 3 * 4096LL * (14336 / 2));  // one expert, half its hidden units
  EXPECT_EQ(p.router, 4096LL * 8);                     // replicated
  EXPECT_EQ(p.norms, 2 * 4096LL);                      // replicated RMSNorms
}

TEST(ParamCount, AbsurdSizesThrowInsteadOfWrapping) {
  ModelSpec m = seedModel();
  m.layers = FieldLimits::kLayers;
  m.dModel = FieldLimits::kDModel;
  m.experts = FieldLimits::kExperts;
  m.expertHidden = FieldLimits::kHidden;
  EXPECT_THROW(countModelParams(m), SizeOverflow);
}
