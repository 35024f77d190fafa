#include "moeplan/Check/CheckReport.h"
#include "moeplan/Description/Load.h"

#include <gtest/gtest.h>

using namespace moeplan;

namespace {
const Finding *findRuleIn(const std::vector<Finding> &fs, const std::string &rule) {
  for (const Finding &f : fs)
    if (f.rule == rule) return &f;
  return nullptr;
}
} // namespace

TEST(Load, RecordsFieldLocations) {
  LoadedDescription d = parseDescription("model {\n  layers: 4\n}\nstrategy {\n"
                                         "  placement { stage: 0 gpus: [3, 4] }\n}\n",
                                         "x.textproto");
  ASSERT_TRUE(d.parseErrors.empty());
  EXPECT_EQ(d.locations.lookup("model.layers").str(), "x.textproto:2:3");
  EXPECT_EQ(d.locations.lookup("strategy.placement[0].gpus[1]").line, 5);
  // Missing fields point at their nearest written ancestor.
  EXPECT_EQ(d.locations.lookup("model.d_model").str(), "x.textproto:1:1");
  EXPECT_EQ(d.locations.lookup("cluster.nodes").str(), "x.textproto:1:1");
}

TEST(Load, SyntaxErrorsNameLineAndColumn) {
  LoadedDescription d = parseDescription("model {\n  layers: 4\n  bogus: 1\n}\n", "x");
  ASSERT_EQ(d.parseErrors.size(), 1u);
  EXPECT_EQ(d.parseErrors[0].location.str(), "x:3:3");
  EXPECT_NE(d.parseErrors[0].message.find("bogus"), std::string::npos);
}

TEST(Load, NegativeAndOverflowingIntegersAreSyntaxErrors) {
  EXPECT_FALSE(parseDescription("model { layers: -1 }", "x").parseErrors.empty());
  EXPECT_FALSE(parseDescription("model { layers: 99999999999 }", "x").parseErrors.empty());
  EXPECT_FALSE(parseDescription("model { layers: 1 layers: 2 }", "x").parseErrors.empty());
}

TEST(Load, SplitInputFileKeepsLineNumbers) {
  std::vector<InputChunk> chunks = splitInputFile("a: 1\n# -----\nb: 2\nc: 3\n# -----\n");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[1].firstLine, 3);
  EXPECT_EQ(chunks[1].text, "b: 2\nc: 3\n");
  LoadedDescription d = parseDescription("\nbogus: 1\n", "f", 10);
  ASSERT_FALSE(d.parseErrors.empty());
  EXPECT_EQ(d.parseErrors[0].location.line, 11);
}

TEST(Load, OversizedInputIsRefused) {
  std::string big(kMaxDescriptionBytes + 1, ' ');
  LoadedDescription d = parseDescription(big, "x");
  ASSERT_EQ(d.parseErrors.size(), 1u);
  EXPECT_NE(d.parseErrors[0].message.find("limit"), std::string::npos);
}

TEST(Resolve, MissingAndZeroFieldsAreNamed) {
  CheckReport r = checkDescription("model { layers: 0 }\n", "x", 1);
  EXPECT_TRUE(r.unusable);
  EXPECT_EQ(r.exitStatus(), 2);
  const Finding *zero = findRuleIn(r.findings, "field.positive");
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(zero->fieldPath, "model.layers");
  EXPECT_EQ(zero->location.str(), "x:1:9");
  const Finding *missing = findRuleIn(r.findings, "field.required");
  ASSERT_NE(missing, nullptr);
}

TEST(Resolve, FractionsAndNonFiniteValues) {
  CheckReport r = checkDescription("cluster { gpu { mfu: 60 peak_tflops: inf } }\n", "x", 1);
  const Finding *frac = findRuleIn(r.findings, "field.fraction");
  ASSERT_NE(frac, nullptr);
  EXPECT_EQ(frac->fieldPath, "cluster.gpu.mfu");
  EXPECT_NE(findRuleIn(r.findings, "field.finite"), nullptr);
}

TEST(CheckFile, UnreadableFileIsUnusable) {
  std::vector<CheckReport> rs = checkFile("/nonexistent/deployment.textproto", false);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].exitStatus(), 2);
  rs = checkFile("/", false);
  EXPECT_EQ(rs[0].exitStatus(), 2);
}
