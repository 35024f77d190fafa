// inspect and diff on the synthetic plan of TestPlans.h, whose buffers and lifetimes are
// small enough to add up by hand (see validatedPlan's comment and placeBuffers).
#include "TestPlans.h"

#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Report/Diff.h"
#include "moeplan/Report/Inspect.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace moeplan {
namespace {

using report::MemoryKind;
using testing::validatedPlan;

uint64_t kindBytes(const report::MemoryAtPeak &m, MemoryKind k) { return m.byKind[size_t(k)]; }

TEST(Inspect, MemoryAtPeakOfStage0) {
  // Weights: embedding slice 8 x 8, norm 8, w1 8 x 4 halves = 128 + 16 + 64 = 208 B, always
  // live. Per micro-batch m (instructions 5m..5m+4): tokens 16 B live [5m, 5m], x 64 B
  // [5m, 5m+2], y 64 B [5m+2, 5m+3], h 32 B [5m+3, 5m+4]. Live sums: 288, 272, 336, 304,
  // 240, then the same again; the first largest is instruction 2 with x and y.
  report::MemoryAtPeak m = report::memoryAtPeak(validatedPlan().programs(0));
  EXPECT_EQ(m.instruction, 2u);
  EXPECT_EQ(m.liveBytes, 336u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Weights), 208u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Activations), 128u);
  EXPECT_EQ(kindBytes(m, MemoryKind::KvCache), 0u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Communication), 0u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Workspace), 0u);
  EXPECT_EQ(kindBytes(m, MemoryKind::InputsOutputs), 0u);
  // Buffers lie end to end: 208 + 2 x (16 + 64 + 64 + 32) = 560 B.
  EXPECT_EQ(m.arenaBytes, 560u);
  EXPECT_EQ(m.fragmentationBytes(), 560u - 336u);
}

TEST(Inspect, MemoryAtPeakOfStage1) {
  // Weights w2 4 x 8 = 64 B and KV cache 2 x 8 = 32 B stay. Per micro-batch: r 32 B
  // [5m, 5m+1], o 64 B [5m+1, 5m+4], routed 64 B [5m+3, 5m+4], sum 64 B [5m+4]. Live sums
  // 128, 192, 160, 224, 288: the peak is instruction 4, the residual ADD.
  report::MemoryAtPeak m = report::memoryAtPeak(validatedPlan().programs(1));
  EXPECT_EQ(m.instruction, 4u);
  EXPECT_EQ(m.liveBytes, 288u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Weights), 64u);
  EXPECT_EQ(kindBytes(m, MemoryKind::KvCache), 32u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Activations), 64u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Communication), 64u);
  EXPECT_EQ(kindBytes(m, MemoryKind::Workspace), 64u);
  EXPECT_EQ(m.arenaBytes, 96u + 2 * (32 + 64 + 64 + 64));
}

TEST(Inspect, KernelsAndCollectivesPerStage) {
  std::vector<report::ProgramSummary> s = report::summarizePrograms(validatedPlan());
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].ranks, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(s[1].ranks, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(s[0].peakLabel, "layers.0.norm");
  ASSERT_EQ(s[0].kernels.size(), 3u);  // EMBEDDING, NORM, GEMM, twice each
  EXPECT_EQ(s[0].kernels[2].kind, plan::GEMM);
  EXPECT_EQ(s[0].kernels[2].count, 2u);
  EXPECT_EQ(s[0].kernels[2].flops, 2u * (2 * 4 * 8 * 4));
  EXPECT_EQ(s[0].flops, 2u * (4 * 32) + 2u * (2 * 4 * 8 * 4));  // norms + GEMMs
  ASSERT_EQ(s[0].collectives.size(), 2u);                       // tp, then pp
  EXPECT_EQ(s[0].collectives[0].axis, "tp");
  EXPECT_EQ(s[0].collectives[0].count, 2u);
  EXPECT_EQ(s[0].collectives[0].commBytes, 2u * 64);
  EXPECT_EQ(s[0].collectives[1].axis, "pp");
  EXPECT_EQ(s[0].collectives[1].kinds.at("SEND"), 2u);
  ASSERT_EQ(s[1].collectives.size(), 3u);  // tp, pp, ep
  EXPECT_EQ(s[1].collectives[2].axis, "ep");
}

TEST(Inspect, RequirementsAndIdleGpus) {
  plan::Plan p = validatedPlan();
  p.mutable_requirements()->set_max_latency_s(1e-12);
  report::InspectReport r = report::inspectPlan(p);
  EXPECT_EQ(r.maxArenaBytes, 560u);
  EXPECT_EQ(r.maxArenaStage, 0u);
  EXPECT_EQ(r.idleGpus, 4u);
  ASSERT_EQ(r.requirements.size(), 3u);  // cluster memory, memory requirement, latency
  EXPECT_EQ(r.requirements[0].field, "cluster.memory_bytes");
  EXPECT_TRUE(r.requirements[0].pass);
  EXPECT_EQ(r.requirements[1].field, "requirements.max_memory_per_gpu_bytes");
  EXPECT_TRUE(r.requirements[1].pass);
  EXPECT_EQ(r.requirements[2].name, "latency");
  EXPECT_FALSE(r.requirements[2].pass);
  EXPECT_EQ(r.requirements[2].predicted, r.prediction.latencySeconds);
  EXPECT_FALSE(r.requirementsMet());

  std::string text = report::renderInspectText(r);
  EXPECT_NE(text.find("4 of 8 GPUs idle (4-7)"), std::string::npos) << text;
  EXPECT_NE(text.find("weights 208 B, activations 128 B, KV cache 0 B"), std::string::npos) << text;
  EXPECT_NE(text.find("fragmentation 224 B"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL  latency"), std::string::npos) << text;
  EXPECT_NE(text.find("GPUs 4-7 stay idle"), std::string::npos) << text;  // the plan's note
  EXPECT_EQ(text.find("throughput:"), std::string::npos) << "absent requirements are not shown";
}

TEST(Inspect, Json) {
  nlohmann::json j = report::inspectJson(report::inspectPlan(validatedPlan()));
  EXPECT_EQ(j["schema"], "moeplan-inspect");
  EXPECT_EQ(j["mesh"]["idle_gpus"]["count"], 4);
  EXPECT_EQ(j["programs"][0]["memory"]["by_kind"]["weights"], 208);
  EXPECT_EQ(j["programs"][1]["memory"]["by_kind"]["kv_cache"], 32);
  EXPECT_EQ(j["programs"][0]["kernels"][0]["kind"], "EMBEDDING");
  EXPECT_GT(j["prediction"]["latency_s"].get<double>(), 0);
  EXPECT_EQ(j["requirements"].size(), 3u);
}

TEST(Inspect, RankListingResolvesGroupsAndBuffers) {
  plan::Plan p = validatedPlan();
  std::string text = report::renderRankText(p, 2);
  EXPECT_NE(text.find("rank 2: node 0 GPU 2, stage 1 (program 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("RECV pp group 6 {0,2} from rank 0, 16 x F16; out r.mb0"), std::string::npos)
      << text;
  EXPECT_NE(text.find("ALL_REDUCE tp group 1 {2,3}, 32 x F16; in o.mb0; out o.mb0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("GEMM m 4 n 8 k 4; in r.mb0, layers.1.w2; out o.mb0; 256 FLOP"),
            std::string::npos)
      << text;

  nlohmann::json j = report::rankJson(p, 2);
  ASSERT_EQ(j["instructions"].size(), 10u);
  EXPECT_EQ(j["instructions"][0]["collective"]["peer_rank"], 0);
  EXPECT_EQ(j["instructions"][1]["kernel"]["dims"]["k"], 4);
  EXPECT_GT(j["instructions"][1]["seconds"].get<double>(), 0);
  EXPECT_THROW(report::renderRankText(p, 4), std::out_of_range);
}

TEST(Inspect, TraceIsJson) {
  plan::Plan p = validatedPlan();
  nlohmann::json trace = nlohmann::json::parse(report::renderTraceJson(p, sim::simulate(p)));
  EXPECT_TRUE(trace.contains("traceEvents"));
}

TEST(Diff, IdenticalPlans) {
  report::DiffReport r = report::diffPlans(validatedPlan(), validatedPlan());
  EXPECT_TRUE(r.identical);
  EXPECT_EQ(r.exitStatus(), 0);
  EXPECT_NE(report::renderDiffText(r, "a", "b").find("identical"), std::string::npos);
  EXPECT_EQ(report::diffJson(r)["identical"], true);
}

TEST(Diff, StrategyChange) {
  plan::Plan b = validatedPlan();
  b.mutable_strategy()->set_capacity(8);
  report::DiffReport r = report::diffPlans(validatedPlan(), b);
  EXPECT_EQ(r.exitStatus(), 1);
  ASSERT_EQ(r.fields.size(), 1u);
  EXPECT_EQ(r.fields[0].field, "strategy.capacity");
  EXPECT_EQ(r.fields[0].a, "4");
  EXPECT_EQ(r.fields[0].b, "8");
  EXPECT_NE(report::renderDiffText(r, "a", "b").find("strategy.capacity: 4 -> 8"),
            std::string::npos);
}

TEST(Diff, BufferChange) {
  plan::Plan b = validatedPlan();
  plan::Program &p0 = *b.mutable_programs(0);
  testing::addBuffer(p0, "layers.0.extra", plan::WEIGHT, plan::F16, {8});
  testing::placeBuffers(p0);
  report::DiffReport r = report::diffPlans(validatedPlan(), b);
  EXPECT_EQ(r.exitStatus(), 1);
  ASSERT_EQ(r.stages.size(), 2u);
  const report::StageDiff &s = r.stages[0];
  EXPECT_EQ(s.arenaBytes.a, 560u);
  EXPECT_EQ(s.arenaBytes.b, 576u);
  EXPECT_EQ(s.memoryAtPeak[size_t(MemoryKind::Weights)].b, 224u);
  EXPECT_FALSE(r.stages[1].arenaBytes.differs());
  std::string text = report::renderDiffText(r, "a", "b");
  EXPECT_NE(text.find("arena 560 B -> 576 B (+2.9%)"), std::string::npos) << text;
  EXPECT_NE(text.find("memory at peak: weights 208 B -> 224 B"), std::string::npos) << text;
}

TEST(Diff, InstructionEditsAndPrediction) {
  plan::Plan b = validatedPlan();
  b.mutable_programs(1)->mutable_instructions(6)->set_label("layers.1.w2.fused");
  plan::Cost &cost = *b.mutable_programs(1)->mutable_instructions(1)->mutable_cost();
  cost.set_flops(cost.flops() * 1000000000);
  report::DiffReport r = report::diffPlans(validatedPlan(), b);
  const report::StageDiff &s = r.stages[1];
  EXPECT_EQ(s.removed, 1u);
  EXPECT_EQ(s.inserted, 1u);
  EXPECT_EQ(s.changed, 1u);
  ASSERT_EQ(s.edits.size(), 3u);  // in program order
  EXPECT_EQ(s.edits[0].op, '~');
  EXPECT_EQ(s.edits[0].index, 1u);
  EXPECT_EQ(s.edits[0].what, "cost");
  EXPECT_EQ(s.edits[1].op, '-');
  EXPECT_EQ(s.edits[1].label, "layers.1.w2");
  EXPECT_EQ(s.edits[1].microBatch, 1u);
  EXPECT_EQ(s.edits[2].op, '+');
  EXPECT_EQ(s.edits[2].label, "layers.1.w2.fused");
  EXPECT_EQ(r.stages[0].inserted + r.stages[0].removed + r.stages[0].changed, 0u);
  ASSERT_TRUE(r.latencySeconds);
  EXPECT_GT(r.latencySeconds->b, r.latencySeconds->a);
  EXPECT_LT(*report::relativeChange(r.throughputTokensPerSecond->a, r.throughputTokensPerSecond->b),
            0);
  nlohmann::json j = report::diffJson(r);
  EXPECT_EQ(j["stages"][1]["edits"][0]["what"], "cost");
  EXPECT_LT(j["prediction"]["throughput_tokens_per_s"]["relative_change"].get<double>(), 0);
}

TEST(Diff, ManyEditsAreCappedInTheListing) {
  plan::Plan b = validatedPlan();
  for (int i = 0; i < b.programs(0).instructions_size(); ++i)
    b.mutable_programs(0)->mutable_instructions(i)->set_label("renamed." + std::to_string(i));
  for (int i = 0; i < 20; ++i)
    *b.mutable_programs(0)->add_instructions() = b.programs(0).instructions(0);
  report::DiffReport r = report::diffPlans(validatedPlan(), b);
  const report::StageDiff &s = r.stages[0];
  EXPECT_EQ(s.removed, 10u);
  EXPECT_EQ(s.inserted, 30u);
  EXPECT_EQ(s.edits.size(), report::kListedEdits);
  EXPECT_TRUE(s.editsTruncated);
  EXPECT_NE(report::renderDiffText(r, "a", "b").find("... 20 more"), std::string::npos);
}

TEST(Diff, RelativeChange) {
  EXPECT_DOUBLE_EQ(*report::relativeChange(2, 3), 0.5);
  EXPECT_FALSE(report::relativeChange(0, 3));
}

// The checked-in seeds stay what their names say as the schema evolves (rerun
// plan-corpus-writer when this fails).
TEST(PlanCorpus, SeedsParseAsNamed) {
  namespace fs = std::filesystem;
  fs::path corpus = fs::path(MOEPLAN_SOURCE_DIR) / "test" / "fuzz" / "plan-corpus";
  size_t seen = 0;
  for (const fs::directory_entry &e : fs::directory_iterator(corpus)) {
    std::string name = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::vector<planfile::PlanError> errors;
    bool valid = planfile::parsePlan(bytes, errors).has_value();
    if (name.rfind("valid-", 0) == 0)
      EXPECT_TRUE(valid) << name << ":\n" << planfile::formatErrors(name, errors);
    if (name.rfind("corrupt-", 0) == 0) EXPECT_FALSE(valid) << name;
    ++seen;
  }
  EXPECT_GE(seen, 5u);
}

} // namespace
} // namespace moeplan
