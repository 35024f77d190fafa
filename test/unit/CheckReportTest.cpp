#include "moeplan/Check/CheckReport.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

using namespace moeplan;

namespace {
std::string example(const char *name) {
  return std::string(MOEPLAN_SOURCE_DIR) + "/examples/" + name + "/deployment.textproto";
}
int count(const CheckReport &r, const std::string &rule) {
  int n = 0;
  for (const Finding &f : r.findings) n += f.rule == rule;
  return n;
}
} // namespace

TEST(CheckReport, SeedFindingsAreDerived) {
  std::vector<CheckReport> rs = checkFile(example("seed-moe-30b"), false);
  ASSERT_EQ(rs.size(), 1u);
  const CheckReport &r = rs[0];
  EXPECT_EQ(r.exitStatus(), 1);
  EXPECT_EQ(count(r, "gpus.idle"), 1);               // 8 of 16 GPUs occupied
  EXPECT_EQ(count(r, "placement.gpu-count"), 1);     // mapping claims 16
  EXPECT_EQ(count(r, "placement.stage-size"), 2);    // 8 listed per stage, 4 serve it
  EXPECT_EQ(count(r, "placement.layers"), 0);        // layers 0-7 / 8-15 are right
  EXPECT_EQ(count(r, "model.params-declared"), 1);   // 30 B declared, 4.36 B derived
  ASSERT_TRUE(r.params);
  EXPECT_EQ(r.params->total(), 4363192320LL);
  EXPECT_EQ(r.placementClaimedGpus, 16);
  EXPECT_FALSE(r.repairs.empty());
  for (const Finding &f : r.findings) EXPECT_TRUE(f.location.known()) << f.rule;
  nlohmann::json j = toJson(r);
  EXPECT_EQ(j["gpus"]["strategy"], 8);
  EXPECT_EQ(j["gpus"]["idle"], 8);
  EXPECT_EQ(j["parameters"]["total"], 4363192320LL);
}

TEST(CheckReport, TinyExampleIsClean) {
  std::vector<CheckReport> rs = checkFile(example("tiny-moe"), false);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].exitStatus(), 0) << renderText(rs[0]);
  EXPECT_EQ(count(rs[0], "gpus.idle"), 0);
}
