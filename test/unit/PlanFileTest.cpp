// validatePlan: the synthetic plan of TestPlans.h passes; breaking one field gives an error at
// that field's path naming the rule. parsePlan: corrupt, foreign and outdated bytes are
// refused with a message that says so. serializePlan is deterministic.
#include "TestPlans.h"

#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Simulate/Simulator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>

#include <unistd.h>

namespace moeplan {
namespace {

using planfile::PlanError;
using testing::validatedPlan;

// Indices into validatedPlan(): buffers and instructions of stage 0 (program 0) and 1.
constexpr int kTable = 0, kNormWeight = 1, kX0 = 4, kY0 = 5, kX1 = 8, kY1 = 9;
constexpr int kEmbed0 = 0, kReduce0 = 1, kNorm0 = 2, kGemm0 = 3, kSend0 = 4;
constexpr int kRecv1 = 0, kExchange1 = 3;
constexpr int kTpGroup0 = 0, kTpGroup1 = 1;

// Indices into testing::moePlan(): its buffers and (program 0's) instructions.
constexpr int kMoeExpertOut = 8;
constexpr int kMoeRouter = 1, kMoeDispatch = 2, kMoeExperts = 3, kMoeCombine = 4;
constexpr int64_t kPast32Bits = int64_t(1) << 31;  // one more than BLAS's and I32's largest

// The GENERATE plans of TestPlans.h: one stage, and two (pp 2, sampled tokens fed back).
plan::Plan generatePlan() { return testing::generatePlan(); }
plan::Plan generatePipelinePlan() { return testing::generatePlan(2); }

std::string describe(const std::vector<PlanError> &errors) {
  return planfile::formatErrors("plan", errors);
}

plan::Instruction &inst(plan::Plan &p, int program, int i) {
  return *p.mutable_programs(program)->mutable_instructions(i);
}
plan::Buffer &buffer(plan::Plan &p, int program, int b) {
  return *p.mutable_programs(program)->mutable_buffers(b);
}

TEST(ValidatePlan, SyntheticPlanIsValidAndSimulates) {
  plan::Plan p = validatedPlan();
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
  sim::Prediction pred = sim::simulate(p);
  EXPECT_GT(pred.latencySeconds, 0);
}

TEST(ValidatePlan, MoePlanIsValidAndSimulates) {
  plan::Plan p = testing::moePlan();
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
  EXPECT_GT(sim::simulate(p).latencySeconds, 0);
}

TEST(ValidatePlan, GeneratePlanIsValidAndSimulates) {
  plan::Plan p = generatePlan();
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
  EXPECT_GT(sim::simulate(p).latencySeconds, 0);
}

// The last stage samples and SENDs the ids to the first (feeds_next_step): the prefill's
// SEND and the decode step's each pair with the first stage's RECV in the decode step.
TEST(ValidatePlan, GenerateTwoStagesIsValid) {
  plan::Plan p = generatePipelinePlan();
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

// Each part of a GENERATE program numbers its events from 1 again: the decode step may
// record what the prefill recorded, and wait for its own record.
TEST(ValidatePlan, GeneratePartsReuseEvents) {
  plan::Plan p = generatePlan();
  p.mutable_programs(0)->set_events(1);
  inst(p, 0, 2).set_record_event(1), inst(p, 0, 3).add_wait_events(1);
  inst(p, 0, 11).set_record_event(1), inst(p, 0, 12).add_wait_events(1);
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

// A single new token: no decode step ever runs, so per_step positions never grow.
TEST(ValidatePlan, GenerateOneNewToken) {
  plan::Plan p = generatePlan();
  p.mutable_workload()->set_new_tokens(1), p.mutable_workload()->set_kv_cache_len(3);
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

// Plans from before COMBINE had groups gave it the total capacity and no groups: groups 0
// means 1, so they still read y[experts, capacity, n].
TEST(ValidatePlan, CombineWithoutGroupsReadsTheTotalCapacity) {
  plan::Plan p = testing::moePlan();
  plan::Kernel &combine = *p.mutable_programs(0)->mutable_instructions(kMoeCombine)->mutable_kernel();
  combine.set_capacity(4), combine.clear_groups();
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

// The limit is BLAS's int: 2^31 - 1 itself passes the rule (the operands, which would need
// 2^33 elements here, do not; nothing is allocated to find out).
TEST(ValidatePlan, BlasLimitIsTheLargestInt) {
  plan::Plan p = validatedPlan();
  p.mutable_programs(0)->mutable_instructions(kGemm0)->mutable_kernel()->set_k(kPast32Bits - 1);
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_FALSE(errors.empty());
  for (const PlanError &e : errors) EXPECT_EQ(e.message.find("BLAS takes"), std::string::npos) << e.message;
  p.mutable_programs(0)->mutable_instructions(kGemm0)->mutable_kernel()->set_k(kPast32Bits);
  errors = planfile::validatePlan(p);
  EXPECT_TRUE(std::any_of(errors.begin(), errors.end(), [](const PlanError &e) {
    return e.path == "programs[0].instructions[3].kernel.k";
  })) << describe(errors);
}

TEST(ValidatePlan, BuffersMayShareBytesWhenTheirLifetimesAreDisjoint) {
  plan::Plan p = validatedPlan();
  buffer(p, 0, kY1).set_offset(buffer(p, 0, kX0).offset());  // x.mb0 [0, 2], y.mb1 [7, 8]
  std::vector<PlanError> errors = planfile::validatePlan(p);
  EXPECT_TRUE(errors.empty()) << describe(errors);
}

struct RuleCase {
  std::string name;
  std::function<void(plan::Plan &)> mutate;
  std::string path;     // the error's exact path
  std::string message;  // a part of its message
  plan::Plan (*base)() = validatedPlan;  // the valid plan mutated
};

// Reshapes buffer b of program 0 (bytes to match) and lays the buffers out again.
void reshape(plan::Plan &p, int b, const std::vector<int64_t> &shape) {
  plan::Buffer &buf = buffer(p, 0, b);
  buf.clear_shape();
  uint64_t elements = 1;
  for (int64_t d : shape) buf.add_shape(d), elements *= uint64_t(d);
  buf.set_bytes(elements * testing::dtypeBytes(buf.dtype()));
  testing::placeBuffers(*p.mutable_programs(0));
}

void PrintTo(const RuleCase &c, std::ostream *out) { *out << c.name; }

// Moves the groups of `axis` to `members` (same count), updating every membership.
void regroup(plan::Plan &p, const std::string &axis,
             const std::vector<std::vector<uint32_t>> &members) {
  size_t next = 0;
  for (int g = 0; g < p.groups_size(); ++g) {
    if (p.groups(g).axis() != axis) continue;
    plan::Group &group = *p.mutable_groups(g);
    group.clear_ranks();
    for (uint32_t i = 0; i < members[next].size(); ++i) {
      uint32_t r = members[next][i];
      group.add_ranks(r);
      for (plan::GroupMembership &m : *p.mutable_ranks(int(r))->mutable_groups())
        if (m.axis() == axis) m.set_group(uint32_t(g)), m.set_index(i);
    }
    ++next;
  }
}

const std::vector<RuleCase> &ruleCases() {
  static const std::vector<RuleCase> cases = {
      // header and plan-wide sections
      {"Format", [](plan::Plan &p) { p.set_format("other"); },
       "format", "expected \"moeplan-plan\""},
      {"Version", [](plan::Plan &p) { p.set_schema_version(planfile::kPlanSchemaVersion + 1); },
       "schema_version", "reads version 4"},
      {"TopK", [](plan::Plan &p) { p.mutable_model()->set_top_k(9); },
       "model.top_k", "must be in 1..4"},
      {"ModelLayersLimit", [](plan::Plan &p) { p.mutable_model()->set_layers(1 << 20); },
       "model.layers", "more than the limit 4096"},
      {"ModelNorm", [](plan::Plan &p) { p.mutable_model()->set_norm(plan::NormKind(7)); },
       "model.norm", "not a norm kind"},
      {"ModelDtype", [](plan::Plan &p) { p.mutable_model()->set_dtype(plan::I32); }, "model.dtype",
       "not a floating-point dtype"},
      {"ExpertLoadCount", [](plan::Plan &p) { p.mutable_model()->add_expert_load(1); },
       "model.expert_load", "one per expert (4)"},
      {"ExpertLoadNegative",
       [](plan::Plan &p) {
         for (double v : {1.0, -1.0, 1.0, 1.0}) p.mutable_model()->add_expert_load(v);
       },
       "model.expert_load[1]", "finite and >= 0"},
      {"RoutingStickinessCount",
       [](plan::Plan &p) {
         for (int i = 0; i < 3; ++i) p.mutable_model()->add_routing_stickiness(0.1);
       },
       "model.routing_stickiness", "expected one, one per layer"},
      {"RoutingStickinessOne",
       [](plan::Plan &p) { p.mutable_model()->add_routing_stickiness(1.0); },
       "model.routing_stickiness[0]", "must be in [0, 0.99]"},
      {"Mfu", [](plan::Plan &p) { p.mutable_cluster()->set_mfu(0); }, "cluster.mfu", "(0, 1]"},
      {"GemmEfficiencyRowsIncrease",
       [](plan::Plan &p) {
         for (double rows : {64.0, 32.0}) {
           plan::GemmEfficiency &e = *p.mutable_cluster()->add_gemm_efficiency();
           e.set_rows(rows);
           e.set_efficiency(0.5);
         }
       },
       "cluster.gemm_efficiency[1].rows", "not above the previous point's 64"},
      {"GemmEfficiencyShare",
       [](plan::Plan &p) {
         plan::GemmEfficiency &e = *p.mutable_cluster()->add_gemm_efficiency();
         e.set_rows(8);
         e.set_efficiency(1.5);
       },
       "cluster.gemm_efficiency[0].efficiency", "(0, 1]"},
      {"LaunchOverhead", [](plan::Plan &p) { p.mutable_cluster()->set_launch_overhead_s(-1); },
       "cluster.launch_overhead_s", "finite in [0, 1] s"},
      {"PeakFlops", [](plan::Plan &p) { p.mutable_cluster()->set_peak_flops(0.5); },
       "cluster.peak_flops", "peak_flops x mfu >= 1"},
      {"IntraNodeBandwidth",
       [](plan::Plan &p) {
         p.mutable_cluster()->mutable_intra_node()->set_bandwidth_bytes_per_s(0);
       },
       "cluster.intra_node.bandwidth_bytes_per_s", ">= 1"},
      {"LinkLatency",
       [](plan::Plan &p) { p.mutable_cluster()->mutable_intra_node()->set_latency_s(NAN); },
       "cluster.intra_node.latency_s", "finite"},
      {"ComputeJitter",
       [](plan::Plan &p) { p.mutable_cluster()->set_compute_jitter(1.5); },
       "cluster.compute_jitter", "finite in [0, 1]"},
      {"LinkReduceRate",
       [](plan::Plan &p) { p.mutable_cluster()->mutable_inter_node()->set_reduce_bytes_per_s(-1); },
       "cluster.inter_node.reduce_bytes_per_s", "finite"},
      {"ClusterSize",
       [](plan::Plan &p) {
         p.mutable_cluster()->set_nodes(1 << 16), p.mutable_cluster()->set_gpus_per_node(1024);
       },
       "cluster", "more than the limit 1048576"},
      {"Degree", [](plan::Plan &p) { p.mutable_strategy()->set_tp(0); },
       "strategy.tp", "must be in 1.."},
      {"WorldLimit",
       [](plan::Plan &p) {
         p.mutable_strategy()->set_tp(1 << 20), p.mutable_strategy()->set_dp(2);
       },
       "strategy", "tp x pp x dp exceeds 1048576"},
      {"ExpertGrid", [](plan::Plan &p) { p.mutable_strategy()->set_ep(4); }, "strategy",
       "expert_tp x ep x expert_dp must equal tp x dp (2)"},
      {"Schedule",
       [](plan::Plan &p) { p.mutable_strategy()->set_schedule(plan::SCHEDULE_UNSPECIFIED); },
       "strategy.schedule", "not a schedule"},
      {"Overlap", [](plan::Plan &p) { p.mutable_strategy()->set_overlap(plan::Overlap(9)); },
       "strategy.overlap", "not an overlap"},
      {"OverlapPairs",
       [](plan::Plan &p) {
         p.mutable_strategy()->set_overlap(plan::DUAL_MICRO_BATCH);
         p.mutable_strategy()->set_micro_batches(1);
       },
       "strategy.micro_batches", "DUAL_MICRO_BATCH runs micro-batches in pairs: it must be even"},
      {"MicroBatchesOfBatch", [](plan::Plan &p) { p.mutable_workload()->set_sequences(3); },
       "workload.sequences_per_micro_batch", "sequences / (dp x micro_batches) = 3 / (1 x 2)"},
      {"TokensPerMicroBatch",
       [](plan::Plan &p) { p.mutable_workload()->set_tokens_per_micro_batch(5); },
       "workload.tokens_per_micro_batch", "expected sequences_per_micro_batch x seq_len = 4"},
      {"Requirement", [](plan::Plan &p) { p.mutable_requirements()->set_max_latency_s(-1); },
       "requirements.max_latency_s", "finite and >= 0"},
      // ranks and groups
      {"RanksCoverWorld", [](plan::Plan &p) { p.mutable_ranks()->RemoveLast(); }, "ranks",
       "the strategy's world tp x pp x dp is 4"},
      {"RanksFitCluster", [](plan::Plan &p) { p.mutable_cluster()->set_gpus_per_node(2); }, "ranks",
       "the cluster has 2 GPUs"},
      {"RankPlacement", [](plan::Plan &p) { p.mutable_ranks(1)->set_node(1); }, "ranks[1]",
       "rank r runs on GPU r: node 0 GPU 1"},
      {"RankProgram", [](plan::Plan &p) { p.mutable_ranks(1)->set_program(7); }, "ranks[1].program",
       "the plan has 2 programs"},
      {"MembershipCount", [](plan::Plan &p) { p.mutable_ranks(1)->mutable_groups()->RemoveLast(); },
       "ranks[1].groups", "one per axis, in the order tp dp pp ep etp edp"},
      {"MembershipOrder",
       [](plan::Plan &p) { p.mutable_ranks(1)->mutable_groups(1)->set_axis("pp"); },
       "ranks[1].groups[1].axis", "expected \"dp\""},
      {"MembershipGroupRange",
       [](plan::Plan &p) { p.mutable_ranks(1)->mutable_groups(0)->set_group(99); },
       "ranks[1].groups[0].group", "the plan has 18 groups"},
      {"MembershipGroupListsRank",
       [](plan::Plan &p) { p.mutable_ranks(1)->mutable_groups(0)->set_group(kTpGroup1); },
       "ranks[1].groups[0].group", "rank 1 is listed in groups[0]"},
      {"MembershipIndex",
       [](plan::Plan &p) { p.mutable_ranks(1)->mutable_groups(0)->set_index(0); },
       "ranks[1].groups[0].index", "not at that position of groups[0]"},
      {"GroupAxis", [](plan::Plan &p) { p.mutable_groups(kTpGroup0)->set_axis("xx"); },
       "groups[0].axis", "not a mesh axis"},
      {"GroupSize", [](plan::Plan &p) { p.mutable_groups(kTpGroup0)->add_ranks(2); },
       "groups[0].ranks", "has 3 ranks, but the strategy's tp degree is 2"},
      {"GroupMemberRange", [](plan::Plan &p) { p.mutable_groups(kTpGroup0)->set_ranks(1, 9); },
       "groups[0].ranks[1]", "rank 9 is not in the plan"},
      {"GroupMemberTwice", [](plan::Plan &p) { p.mutable_groups(kTpGroup0)->set_ranks(1, 0); },
       "groups[0].ranks[1]", "appears twice"},
      {"GroupMemberInTwoGroups",
       [](plan::Plan &p) { p.mutable_groups(kTpGroup1)->set_ranks(0, 0); },
       "groups[1].ranks[0]", "also in groups[0] on axis tp"},
      {"GroupIntraNode", [](plan::Plan &p) { p.mutable_groups(kTpGroup0)->set_intra_node(false); },
       "groups[0].intra_node", "every member is on one node"},
      {"GroupWithinStage", [](plan::Plan &p) { regroup(p, "ep", {{0, 2}, {1, 3}}); },
       "groups[8].ranks[1]", "groups on ep lie within one pipeline stage"},
      {"ProgramRun", [](plan::Plan &p) { *p.add_programs() = p.programs(1); }, "programs[2]",
       "run by no rank"},
      {"StageRange", [](plan::Plan &p) { p.mutable_programs(1)->set_stage(5); },
       "programs[1].stage", "the strategy has pp 2"},
      {"StageUnique", [](plan::Plan &p) { p.mutable_programs(1)->set_stage(0); },
       "programs[1].stage", "each stage has one program"},
      {"StageIsPipelinePosition",
       [](plan::Plan &p) {
         p.mutable_programs(0)->set_stage(1), p.mutable_programs(1)->set_stage(0);
       },
       "ranks[0].program", "runs stage 1, but the rank is at position 0 of its pp group"},
      // programs and buffers
      {"ProgramLayers", [](plan::Plan &p) { p.mutable_programs(1)->set_end_layer(3); },
       "programs[1].end_layer", "not inside the model's 2 layers"},
      {"Streams", [](plan::Plan &p) { p.mutable_programs(0)->set_streams(17); },
       "programs[0].streams", "must be in 1..16"},
      {"EventsBound", [](plan::Plan &p) { p.mutable_programs(0)->set_events(11); },
       "programs[0].events", "more than the 10 instructions"},
      {"BufferName", [](plan::Plan &p) { buffer(p, 0, kY0).set_name("x.mb0"); },
       "programs[0].buffers[5].name", "names another buffer too"},
      {"BufferKind",
       [](plan::Plan &p) { buffer(p, 0, kY0).set_kind(plan::BUFFER_KIND_UNSPECIFIED); },
       "programs[0].buffers[5].kind", "not a buffer kind"},
      {"BufferDtype", [](plan::Plan &p) { buffer(p, 0, kY0).set_dtype(plan::DType(42)); },
       "programs[0].buffers[5].dtype", "not a dtype"},
      {"BufferBytes", [](plan::Plan &p) { buffer(p, 0, kY0).set_bytes(65); },
       "programs[0].buffers[5].bytes", "the shape holds 32 elements of 2 bytes = 64"},
      {"ShapeNegative", [](plan::Plan &p) { buffer(p, 0, kY0).set_shape(0, -4); },
       "programs[0].buffers[5].shape[0]", "negative"},
      {"ShapeOverflow",
       [](plan::Plan &p) {
         buffer(p, 0, kY0).set_shape(0, int64_t(1) << 40);
         buffer(p, 0, kY0).set_shape(1, int64_t(1) << 40);
       },
       "programs[0].buffers[5].shape[1]", "exceed 1152921504606846976"},
      {"ShapeRank",
       [](plan::Plan &p) {
         for (int i = 0; i < 7; ++i) buffer(p, 0, kY0).add_shape(1);
       },
       "programs[0].buffers[5].shape", "9 dimensions, more than 8"},
      {"BufferInArena",
       [](plan::Plan &p) { buffer(p, 0, kY0).set_offset(p.programs(0).arena_bytes() - 1); },
       "programs[0].buffers[5].offset", "run past the arena"},
      {"BufferOffsetOverflow",
       [](plan::Plan &p) {
         buffer(p, 0, kY0).set_offset(std::numeric_limits<uint64_t>::max() - 8);
       },
       "programs[0].buffers[5].offset", "run past the arena"},
      {"LiveRange", [](plan::Plan &p) { buffer(p, 0, kY0).set_live_end(10); },
       "programs[0].buffers[5].live_end", "not within the program's 10 instructions"},
      {"LiveBuffersShareBytes",
       [](plan::Plan &p) { buffer(p, 0, kY0).set_offset(buffer(p, 0, kX0).offset() + 2); },
       "programs[0].buffers[5].offset", "overlap \"x.mb0\" (buffers[4]"},
      {"SliceMissing", [](plan::Plan &p) { buffer(p, 0, kTable).clear_slice(); },
       "programs[0].buffers[0].slice", "a WEIGHT buffer names the slice"},
      {"SliceSplitDim",
       [](plan::Plan &p) { buffer(p, 0, kTable).mutable_slice()->mutable_splits(0)->set_dim(2); },
       "programs[0].buffers[0].slice.splits[0].dim", "the full shape has 2 dimensions"},
      {"SliceSplitAxis",
       [](plan::Plan &p) {
         buffer(p, 0, kTable).mutable_slice()->mutable_splits(0)->set_axis("zz");
       },
       "programs[0].buffers[0].slice.splits[0].axis", "not a mesh axis"},
      {"SliceSplitParts",
       [](plan::Plan &p) { buffer(p, 0, kTable).mutable_slice()->mutable_splits(0)->set_parts(3); },
       "programs[0].buffers[0].slice.splits[0].parts", "must be in 1..2"},
      {"SliceUnevenPieces",
       [](plan::Plan &p) { buffer(p, 0, kTable).mutable_slice()->set_full_shape(0, 18); },
       "programs[0].buffers[0].shape", "holds 64 elements, but the slice is 72"},
      {"SliceElements",
       [](plan::Plan &p) { buffer(p, 0, kTable).mutable_slice()->set_full_shape(0, 32); },
       "programs[0].buffers[0].shape", "holds 64 elements, but the slice is 128"},
      {"SliceMicroBatch",
       [](plan::Plan &p) { buffer(p, 0, 3).mutable_slice()->set_micro_batch(2); },
       "programs[0].buffers[3].slice.micro_batch", "must be -1 or in 0..1"},
      // instructions
      {"Stream", [](plan::Plan &p) { inst(p, 0, kNorm0).set_stream(3); },
       "programs[0].instructions[2].stream", "the program has 3 streams"},
      {"WaitEventRange", [](plan::Plan &p) { inst(p, 0, kNorm0).add_wait_events(7); },
       "programs[0].instructions[2].wait_events[1]", "event 7 is not in 1..6"},
      {"WaitBeforeRecord", [](plan::Plan &p) { inst(p, 0, kEmbed0).add_wait_events(1); },
       "programs[0].instructions[0].wait_events[0]",
       "waited before any earlier instruction records it"},
      {"RecordTwice", [](plan::Plan &p) { inst(p, 0, kNorm0).set_record_event(1); },
       "programs[0].instructions[2].record_event", "recorded again (first by instructions[0])"},
      {"MicroBatch", [](plan::Plan &p) { inst(p, 0, kNorm0).set_micro_batch(2); },
       "programs[0].instructions[2].micro_batch", "the strategy has 2 micro-batches"},
      {"Layer", [](plan::Plan &p) { inst(p, 0, kNorm0).set_layer(1); },
       "programs[0].instructions[2].layer", "the program's layers [0, 1)"},
      {"NoOperation", [](plan::Plan &p) { inst(p, 0, kNorm0).clear_op(); },
       "programs[0].instructions[2]", "neither a kernel nor a collective"},
      {"KernelKind",
       [](plan::Plan &p) { inst(p, 0, kNorm0).mutable_kernel()->set_kind(plan::KernelKind(99)); },
       "programs[0].instructions[2].kernel.kind", "not a kernel kind"},
      {"KernelInputCount",
       [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->add_inputs(0); },
       "programs[0].instructions[3].kernel.inputs", "GEMM takes 2 inputs (a, b), not 3"},
      {"KernelOperandRange",
       [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->set_outputs(0, 99); },
       "programs[0].instructions[3].kernel.outputs[0]", "the program has 11 buffers"},
      {"KernelOperandSize", [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->set_m(8); },
       "programs[0].instructions[3].kernel.inputs[0]", "holds 32 elements, fewer than the 64"},
      {"KernelOperandLarger", [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->set_m(2); },
       "programs[0].instructions[3].kernel.inputs[0]",
       "a \"y.mb0\" (buffers[5]) holds 32 elements, more than the 16 its dimensions give"},
      {"GemmKPastBlas",
       [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->set_k(3000000000); },
       "programs[0].instructions[3].kernel.k", "is 3000000000, more than the 2147483647 BLAS takes"},
      {"GemmMPastBlas",
       [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->set_m(kPast32Bits); },
       "programs[0].instructions[3].kernel.m", "is 2147483648, more than the 2147483647 BLAS takes"},
      {"GemmNPastBlas",
       [](plan::Plan &p) {
         inst(p, 0, kGemm0).mutable_kernel()->set_n(kPast32Bits);
         inst(p, 0, kGemm0).mutable_kernel()->set_transpose_b(true);
       },
       "programs[0].instructions[3].kernel.n", "is 2147483648, more than the 2147483647 BLAS takes"},
      {"KernelDimensions", [](plan::Plan &p) { inst(p, 0, kGemm0).mutable_kernel()->set_k(-1); },
       "programs[0].instructions[3].kernel", "GEMM dimensions are negative"},
      {"KernelIndicesDtype", [](plan::Plan &p) { buffer(p, 0, 3).set_dtype(plan::F32); },
       "programs[0].instructions[0].kernel.inputs[0]", "must be I32, not F32"},
      {"KernelOperandLive",
       [](plan::Plan &p) { inst(p, 0, kNorm0).mutable_kernel()->set_inputs(0, kX1); },
       "programs[0].instructions[2].kernel.inputs[0]",
       "used at instruction 2 but live only over [5, 7]"},
      {"NormBias",
       [](plan::Plan &p) {
         inst(p, 0, kNorm0).mutable_kernel()->set_norm(plan::LAYER_NORM);
         inst(p, 0, kNorm0).mutable_kernel()->add_inputs(kNormWeight);
         inst(p, 0, kNorm0).mutable_kernel()->add_inputs(kNormWeight);
       },
       "programs[0].instructions[2].kernel.inputs", "NORM takes 2 or 3 inputs"},
      {"EmbeddingRows",
       [](plan::Plan &p) { inst(p, 0, kEmbed0).mutable_kernel()->set_vocab_begin(9); },
       "programs[0].instructions[0].kernel.vocab_end", "are not a range"},
      {"CollectiveAxis",
       [](plan::Plan &p) { inst(p, 0, kReduce0).mutable_collective()->set_axis("zz"); },
       "programs[0].instructions[1].collective.axis", "not a mesh axis"},
      {"CollectiveDtype",
       [](plan::Plan &p) {
         inst(p, 0, kReduce0).mutable_collective()->set_dtype(plan::DTYPE_UNSPECIFIED);
       },
       "programs[0].instructions[1].collective.dtype", "not a dtype"},
      {"CollectiveBufferDtype",
       [](plan::Plan &p) { inst(p, 0, kReduce0).mutable_collective()->set_dtype(plan::F32); },
       "programs[0].instructions[1].collective.input", "the collective moves F32"},
      {"CollectiveCount",
       [](plan::Plan &p) { inst(p, 0, kReduce0).mutable_collective()->set_count(33); },
       "programs[0].instructions[1].collective.input", "fewer than the 33"},
      {"CollectiveOperandLarger",
       [](plan::Plan &p) { inst(p, 0, kReduce0).mutable_collective()->set_count(16); },
       "programs[0].instructions[1].collective.input",
       "holds 32 elements, more than the 16 the collective moves"},
      {"AllToAllOperandLarger",
       [](plan::Plan &p) {
         plan::Collective &c = *inst(p, 1, kExchange1).mutable_collective();
         for (int j = 0; j < 2; ++j) c.set_send_counts(j, 8), c.set_recv_counts(j, 8);
       },
       "programs[1].instructions[3].collective.output",
       "holds 32 elements, more than the 16 the collective moves"},
      {"TransferOperandLarger",
       [](plan::Plan &p) {
         inst(p, 0, kSend0).mutable_collective()->set_count(8);
         inst(p, 1, kRecv1).mutable_collective()->set_count(8);
       },
       "programs[1].instructions[0].collective.output",
       "holds 16 elements, more than the 8 the collective moves"},
      {"AllGatherOutput",
       [](plan::Plan &p) {
         inst(p, 0, kReduce0).mutable_collective()->set_kind(plan::ALL_GATHER);
         inst(p, 0, kReduce0).mutable_collective()->set_count(17);
       },
       "programs[0].instructions[1].collective.output", "holds 32 elements, fewer than the 34"},
      {"AllToAllCounts",
       [](plan::Plan &p) { inst(p, 1, kExchange1).mutable_collective()->add_send_counts(0); },
       "programs[1].instructions[3].collective.send_counts", "one per member of the ep group (2)"},
      {"AllToAllAgreement",
       [](plan::Plan &p) {
         inst(p, 1, kExchange1).mutable_collective()->set_send_counts(0, 8);
         inst(p, 1, kExchange1).mutable_collective()->set_send_counts(1, 24);
       },
       "programs[1].instructions[3].collective.recv_counts", "each send_counts[j] must equal"},
      {"Sequence",
       [](plan::Plan &p) { inst(p, 1, kExchange1).mutable_collective()->set_sequence(3); },
       "programs[1].instructions[3].collective.sequence", "sequences increase in issue order"},
      {"TransferAxis",
       [](plan::Plan &p) { inst(p, 0, kSend0).mutable_collective()->set_axis("tp"); },
       "programs[0].instructions[4].collective.axis", "SEND and RECV are pipeline transfers"},
      {"TransferPeer", [](plan::Plan &p) { inst(p, 0, kSend0).mutable_collective()->set_peer(2); },
       "programs[0].instructions[4].collective.peer", "the pp group has 2 members"},
      {"TransferToSelf",
       [](plan::Plan &p) { inst(p, 0, kSend0).mutable_collective()->set_peer(0); },
       "programs[0].instructions[4].collective.peer", "the program's own stage"},
      {"TransferCount",
       [](plan::Plan &p) { inst(p, 0, kSend0).mutable_collective()->set_count(8); },
       "programs[1].instructions[0].collective",
       "does not match its SEND at programs[0].instructions[4]"},
      {"TransferSequence",
       [](plan::Plan &p) { inst(p, 1, kRecv1).mutable_collective()->set_sequence(1); },
       "programs[1].instructions[0].collective", "(count 16 F16 sequence 1) does not match"},
      {"TransferUnpaired",
       [](plan::Plan &p) {
         plan::Instruction extra = p.programs(0).instructions(9);
         extra.mutable_collective()->set_sequence(100);
         extra.set_record_event(0);
         *p.mutable_programs(0)->add_instructions() = extra;
         p.mutable_programs(0)->mutable_buffers(10)->set_live_end(10);
         p.mutable_programs(0)->mutable_buffers(kTable)->set_live_end(10);
       },
       "programs[0].instructions[10].collective", "3 SENDs but 2 RECVs from stage 0 to stage 1"},
      {"PipelineCollectives",
       [](plan::Plan &p) {
         plan::Collective &c = *inst(p, 0, kReduce0).mutable_collective();
         c.set_axis("pp");
       },
       "programs[1]", "every stage issues the same"},
      // the MoE block of moePlan(): COMBINE reads DISPATCH's layout, capacity per group
      {"CombineYLarger", [](plan::Plan &p) { reshape(p, kMoeExpertOut, {2, 8, 4}); },
       "programs[0].instructions[4].kernel.inputs[0]",
       "y \"expert_out\" (buffers[8]) holds 64 elements, more than the 32 its dimensions give",
       testing::moePlan},
      {"CombineCapacityIsPerGroup",
       [](plan::Plan &p) { inst(p, 0, kMoeCombine).mutable_kernel()->set_capacity(4); },
       "programs[0].instructions[4].kernel.inputs[0]", "holds 32 elements, fewer than the 64",
       testing::moePlan},
      {"DispatchGroupsDivideTokens",
       [](plan::Plan &p) { inst(p, 0, kMoeDispatch).mutable_kernel()->set_groups(3); },
       "programs[0].instructions[2].kernel.groups", "is 3, which does not divide the 8 tokens",
       testing::moePlan},
      {"CombineSlotsFitI32",
       [](plan::Plan &p) { inst(p, 0, kMoeCombine).mutable_kernel()->set_capacity(kPast32Bits / 2); },
       "programs[0].instructions[4].kernel.capacity",
       "groups x capacity = 2 x 1073741824 rows per expert, more than the 2147483647 an I32 slot "
       "holds",
       testing::moePlan},
      {"DispatchSlotsFitI32",
       [](plan::Plan &p) {
         inst(p, 0, kMoeDispatch).mutable_kernel()->set_groups(1);
         inst(p, 0, kMoeDispatch).mutable_kernel()->set_capacity(kPast32Bits);
       },
       "programs[0].instructions[2].kernel.capacity", "more than the 2147483647 an I32 slot holds",
       testing::moePlan},
      // `routed`: expert work on the rows its layer's DISPATCH filled
      {"RoutedOnlyOnExpertWork",
       [](plan::Plan &p) { inst(p, 0, kMoeRouter).set_routed(true); },
       "programs[0].instructions[1].routed", "is true on a ROUTER kernel", testing::moePlan},
      {"RoutedAfterItsDispatch",
       [](plan::Plan &p) {
         inst(p, 0, kMoeDispatch).set_layer(-1);
         inst(p, 0, kMoeExperts).set_layer(0);
         inst(p, 0, kMoeExperts).set_routed(true);
       },
       "programs[0].instructions[3].routed",
       "no DISPATCH of layer 0 is issued before it in the program", testing::moePlan},
      {"RouterExpertsFitI32",
       [](plan::Plan &p) { inst(p, 0, kMoeRouter).mutable_kernel()->set_experts(kPast32Bits); },
       "programs[0].instructions[1].kernel.experts",
       "is 2147483648, more than the 2147483647 an I32 expert index holds", testing::moePlan},
      {"GroupedGemmBatchPastBlas",
       [](plan::Plan &p) { inst(p, 0, kMoeExperts).mutable_kernel()->set_groups(kPast32Bits); },
       "programs[0].instructions[3].kernel.groups",
       "is 2147483648, more than the 2147483647 BLAS takes", testing::moePlan},
      {"GroupedGemmKPastBlas",
       [](plan::Plan &p) { inst(p, 0, kMoeExperts).mutable_kernel()->set_k(3000000000); },
       "programs[0].instructions[3].kernel.k", "is 3000000000, more than the 2147483647 BLAS takes",
       testing::moePlan},
      {"DispatchHugeGroupsAndCapacity",  // their product is never formed unchecked
       [](plan::Plan &p) {
         inst(p, 0, kMoeDispatch).mutable_kernel()->set_groups(int64_t(1) << 40);
         inst(p, 0, kMoeDispatch).mutable_kernel()->set_capacity(int64_t(1) << 40);
       },
       "programs[0].instructions[2].kernel", "DISPATCH dimensions are negative or their products",
       testing::moePlan},
      // GENERATE: generatePlan()'s prefill [0, 8) and decode step [8, 16)
      {"NewTokensOnlyInGenerate", [](plan::Plan &p) { p.mutable_workload()->set_new_tokens(2); },
       "workload.new_tokens", "only a GENERATE plan generates tokens"},
      {"GenerateNewTokens",
       [](plan::Plan &p) {
         p.mutable_workload()->set_new_tokens(0), p.mutable_workload()->set_kv_cache_len(2);
       },
       "workload.new_tokens", "must be at least 1", generatePlan},
      {"GenerateCacheLength", [](plan::Plan &p) { p.mutable_workload()->set_kv_cache_len(4); },
       "workload.kv_cache_len", "seq_len + new_tokens - 1 = 3 + 3 - 1 = 5 positions",
       generatePlan},
      {"DecodeBeginOnlyInGenerate", [](plan::Plan &p) { p.mutable_programs(0)->set_decode_begin(3); },
       "programs[0].decode_begin", "only a GENERATE program has a decode step"},
      {"GenerateDecodeBegin", [](plan::Plan &p) { p.mutable_programs(0)->set_decode_begin(16); },
       "programs[0].decode_begin", "must be in 1..15", generatePlan},
      {"PerStepInThePrefill",
       [](plan::Plan &p) { inst(p, 0, 1).mutable_kernel()->set_per_step(true); },
       "programs[0].instructions[1].kernel.per_step",
       "only the ROPE, ATTENTION, KV_APPEND and ARGMAX_MERGE kernels of a GENERATE plan's decode "
       "step",
       generatePlan},
      {"PerStepGemm", [](plan::Plan &p) { inst(p, 0, 13).mutable_kernel()->set_per_step(true); },
       "programs[0].instructions[13].kernel.per_step",
       "only the ROPE, ATTENTION, KV_APPEND and ARGMAX_MERGE", generatePlan},
      {"PerStepArgmax", [](plan::Plan &p) { inst(p, 0, 14).mutable_kernel()->set_per_step(true); },
       "programs[0].instructions[14].kernel.per_step",
       "only the ROPE, ATTENTION, KV_APPEND and ARGMAX_MERGE", generatePlan},
      {"PerStepMergeInThePrefill",
       [](plan::Plan &p) { inst(p, 0, 7).mutable_kernel()->set_per_step(true); },
       "programs[0].instructions[7].kernel.per_step",
       "only the ROPE, ATTENTION, KV_APPEND and ARGMAX_MERGE", generatePlan},
      {"DecodeMergeMovesPerStep",
       [](plan::Plan &p) { inst(p, 0, 15).mutable_kernel()->set_per_step(false); },
       "programs[0].instructions[15].kernel.per_step",
       "a decode step's ARGMAX_MERGE writes the next column of generated each step: it must be "
       "true",
       generatePlan},
      {"DecodeRopeMovesPerStep",
       [](plan::Plan &p) { inst(p, 0, 9).mutable_kernel()->set_per_step(false); },
       "programs[0].instructions[9].kernel.per_step",
       "a decode step's ROPE moves one position per step: it must be true", generatePlan},
      {"DecodeAppendPosition",
       [](plan::Plan &p) { inst(p, 0, 11).mutable_kernel()->set_first_position(2); },
       "programs[0].instructions[11].kernel.first_position",
       "decode step 0's new token is at position workload.seq_len 3", generatePlan},
      {"DecodeAppendOnePosition",
       [](plan::Plan &p) { inst(p, 0, 11).mutable_kernel()->set_m(4); },
       "programs[0].instructions[11].kernel.m", "appends one position of its 2 sequences",
       generatePlan},
      {"KvAppendInput", [](plan::Plan &p) { inst(p, 0, 2).mutable_kernel()->set_m(4); },
       "programs[0].instructions[2].kernel.inputs[0]",
       "holds 24 elements, more than the 16 its dimensions give", generatePlan},
      {"KvAppendSequencesDivideRows",
       [](plan::Plan &p) { inst(p, 0, 2).mutable_kernel()->set_sequences(4); },
       "programs[0].instructions[2].kernel.sequences", "must be positive and divide m (6)",
       generatePlan},
      {"KvAppendPastTheCache",  // a 4th new token: step 1 appends at position 3 + 1 of 5
       [](plan::Plan &p) {
         p.mutable_workload()->set_new_tokens(4), p.mutable_workload()->set_kv_cache_len(6);
       },
       "programs[0].instructions[11].kernel.outputs[0]",
       "holds 40 elements, fewer than the 48 it needs (rows up to (first_position 3 + 2 at the "
       "last decode step) x sequences 2 + m 2, of n 4)",
       generatePlan},
      {"DecodeAttentionPastTheCache",
       [](plan::Plan &p) {
         p.mutable_workload()->set_new_tokens(5), p.mutable_workload()->set_kv_cache_len(7);
       },
       "programs[0].instructions[10].kernel.inputs[3]",
       "holds 40 elements, fewer than the 48 it needs (kv_len 3 + 3 at the last decode step "
       "cached positions)",
       generatePlan},
      {"DecodeAttentionPrompt",
       [](plan::Plan &p) { inst(p, 0, 10).mutable_kernel()->set_kv_len(2); },
       "programs[0].instructions[10].kernel.kv_len",
       "decode step 0 attends the prompt's workload.seq_len 3 cached positions",
       generatePlan},
      {"DecodeAttentionOneToken",
       [](plan::Plan &p) { inst(p, 0, 10).mutable_kernel()->set_seq_len(2); },
       "programs[0].instructions[10].kernel.seq_len",
       "a GENERATE decode step attends 1 new token", generatePlan},
      {"PrefillAttentionForm",
       [](plan::Plan &p) { inst(p, 0, 4).mutable_kernel()->set_kv_len(5); },
       "programs[0].instructions[4].kernel.kv_len", "a prefill attends its own seq_len 3 tokens",
       generatePlan},
      {"WaitAcrossParts",
       [](plan::Plan &p) {
         p.mutable_programs(0)->set_events(1);
         inst(p, 0, 2).set_record_event(1);
         inst(p, 0, 9).add_wait_events(1);
       },
       "programs[0].instructions[9].wait_events[0]",
       "event 1 is recorded in the prefill (instructions[2]), not in this decode step",
       generatePlan},
      {"GenerateCacheLivesThroughout",
       [](plan::Plan &p) { buffer(p, 0, 2).set_live_end(9); },
       "programs[0].buffers[2].live_end",
       "is not the whole program [0, 15]: a GENERATE plan keeps its KV_CACHE buffers",
       generatePlan},
      // Greedy sampling: generatePlan()'s ARGMAX at 6 and 14, ARGMAX_MERGE at 7 and 15.
      {"ArgmaxVocabEnd", [](plan::Plan &p) { inst(p, 0, 6).mutable_kernel()->set_vocab_end(0); },
       "programs[0].instructions[6].kernel.vocab_end",
       "is 0, must be in 1..2147483647 (ids below it are I32)", generatePlan},
      {"ArgmaxIdsFitI32",
       [](plan::Plan &p) { inst(p, 0, 6).mutable_kernel()->set_vocab_end(kPast32Bits); },
       "programs[0].instructions[6].kernel.vocab_end", "is 2147483648, must be in 1..2147483647",
       generatePlan},
      {"ArgmaxSeqLen", [](plan::Plan &p) { inst(p, 0, 14).mutable_kernel()->set_seq_len(0); },
       "programs[0].instructions[14].kernel.seq_len",
       "is 0, must be positive: ARGMAX reads position seq_len - 1", generatePlan},
      {"ArgmaxLogits", [](plan::Plan &p) { inst(p, 0, 6).mutable_kernel()->set_seq_len(2); },
       "programs[0].instructions[6].kernel.inputs[0]",
       "holds 48 elements, more than the 32 its dimensions give", generatePlan},
      {"ArgmaxPairs", [](plan::Plan &p) { inst(p, 0, 14).mutable_kernel()->set_sequences(1); },
       "programs[0].instructions[14].kernel.outputs[0]",
       "holds 4 elements, more than the 2 its dimensions give", generatePlan},
      {"ArgmaxPairsAreI32",
       [](plan::Plan &p) {
         buffer(p, 0, int(inst(p, 0, 6).kernel().outputs(0))).set_dtype(plan::F32);
       },
       "programs[0].instructions[6].kernel.outputs[0]", "must be I32, not F32", generatePlan},
      {"ArgmaxOperands",
       [](plan::Plan &p) { inst(p, 0, 6).mutable_kernel()->add_outputs(0); },
       "programs[0].instructions[6].kernel.outputs", "ARGMAX takes 1 outputs (pairs), not 2",
       generatePlan},
      {"MergePairsOfEveryGroup",
       [](plan::Plan &p) { inst(p, 0, 7).mutable_kernel()->set_groups(2); },
       "programs[0].instructions[7].kernel.inputs[0]",
       "holds 4 elements, fewer than the 8 it needs", generatePlan},
      {"MergePairsAreI32",
       [](plan::Plan &p) {
         buffer(p, 0, int(inst(p, 0, 15).kernel().inputs(0))).set_dtype(plan::F32);
       },
       "programs[0].instructions[15].kernel.inputs[0]", "must be I32, not F32", generatePlan},
      {"MergeIds", [](plan::Plan &p) { inst(p, 0, 7).mutable_kernel()->set_outputs(0, 3); },
       "programs[0].instructions[7].kernel.outputs[0]",
       "holds 6 elements, more than the 2 its dimensions give", generatePlan},
      {"MergeGenerated", [](plan::Plan &p) { inst(p, 0, 15).mutable_kernel()->set_n(4); },
       "programs[0].instructions[15].kernel.outputs[1]",
       "holds 6 elements, fewer than the 8 it needs", generatePlan},
      {"MergeOperands",
       [](plan::Plan &p) { inst(p, 0, 7).mutable_kernel()->mutable_outputs()->RemoveLast(); },
       "programs[0].instructions[7].kernel.outputs",
       "ARGMAX_MERGE takes 2 outputs (ids, generated), not 1", generatePlan},
      {"MergeColumn", [](plan::Plan &p) { inst(p, 0, 7).mutable_kernel()->set_first_position(3); },
       "programs[0].instructions[7].kernel.first_position",
       "is 3, but generated has n 3 columns: must be at least 0 and below n", generatePlan},
      {"MergeColumnNegative",
       [](plan::Plan &p) { inst(p, 0, 7).mutable_kernel()->set_first_position(-1); },
       "programs[0].instructions[7].kernel.first_position", "is -1, but generated has n 3",
       generatePlan},
      {"MergeColumnAtTheLastStep",  // step 1 of 2 writes column 2 + 1 of 3
       [](plan::Plan &p) { inst(p, 0, 15).mutable_kernel()->set_first_position(2); },
       "programs[0].instructions[15].kernel.first_position",
       "is 2 (+ 1 at the last decode step), but generated has n 3 columns: must be at least 0 "
       "and below n through the last decode step",
       generatePlan},
      {"MergeColumnsForEveryToken",  // a 4th new token: its column 3 is past generated's 3
       [](plan::Plan &p) {
         p.mutable_workload()->set_new_tokens(4), p.mutable_workload()->set_kv_cache_len(6);
       },
       "programs[0].instructions[15].kernel.first_position",
       "is 1 (+ 2 at the last decode step), but generated has n 3 columns", generatePlan},
      // Token ids sent from the last stage to the first: generatePlan(2)'s stage 0 RECVs
      // them at 6; stage 1 SENDs them at 4 (the prefill) and 9 (the decode step).
      {"FeedsOnlyOnATransfer",
       [](plan::Plan &p) {
         p.mutable_workload()->set_phase(plan::GENERATE);
         inst(p, 0, kReduce0).mutable_collective()->set_feeds_next_step(true);
       },
       "programs[0].instructions[1].collective.feeds_next_step",
       "is true on a ALL_REDUCE, but only a SEND of sampled tokens to the next decode step and "
       "the RECV of them carry it"},
      {"FedRecvSaysSo",
       [](plan::Plan &p) { inst(p, 0, 6).mutable_collective()->set_feeds_next_step(false); },
       "programs[0].instructions[6].collective.feeds_next_step",
       "is false, but the SENDs from stage 1 to stage 0 feed the next decode step: the RECVs "
       "of them carry it too",
       generatePipelinePlan},
      {"FedRecvWithoutFeedingSends",
       [](plan::Plan &p) { inst(p, 1, 0).mutable_collective()->set_feeds_next_step(true); },
       "programs[1].instructions[0].collective.feeds_next_step",
       "is true, but no SEND from stage 0 to stage 1 feeds the next decode step",
       generatePipelinePlan},
      {"FeedsOnlyInGenerate",
       [](plan::Plan &p) {
         inst(p, 0, kSend0).mutable_collective()->set_feeds_next_step(true);
       },
       "programs[0].instructions[4].collective.feeds_next_step",
       "is true, but workload.phase is PREFILL: only a GENERATE plan has decode steps to feed"},
      {"FeedingSendsAllFeed",
       [](plan::Plan &p) { inst(p, 1, 9).mutable_collective()->set_feeds_next_step(false); },
       "programs[1].instructions[9].collective.feeds_next_step",
       "is false, but other SENDs from stage 1 to stage 0 feed the next decode step",
       generatePipelinePlan},
      {"FeedingSendMatchesItsRecv",
       [](plan::Plan &p) { inst(p, 1, 4).mutable_collective()->set_dtype(plan::F32); },
       "programs[0].instructions[6].collective",
       "RECV 0 from stage 1 to stage 0 (count 2 I32) does not match the SEND in the prefill "
       "that feeds it at programs[1].instructions[4] (count 2 F32)",
       generatePipelinePlan},
      {"FedRecvInTheDecodeStep",
       [](plan::Plan &p) { p.mutable_programs(0)->set_decode_begin(7); },
       "programs[0].instructions[6].collective",
       "RECV from stage 1 to stage 0 is in the prefill, but the SENDs from stage 1 to stage 0 "
       "feed the next decode step",
       generatePipelinePlan},
      {"FeedingSendWithoutRecv",
       [](plan::Plan &p) {  // no longer a pipeline transfer: stage 0 receives nothing
         inst(p, 0, 6).mutable_collective()->set_axis("dp");
       },
       "programs[1].instructions[4].collective",
       "1 SENDs in the prefill feed the next decode step but 0 RECVs in the decode step receive "
       "from stage 1 to stage 0; this one has no partner",
       generatePipelinePlan},
  };
  return cases;
}

class PlanRule : public ::testing::TestWithParam<RuleCase> {};

TEST_P(PlanRule, BrokenFieldIsNamed) {
  const RuleCase &c = GetParam();
  plan::Plan p = c.base();
  c.mutate(p);
  std::vector<PlanError> errors = planfile::validatePlan(p);
  bool found = std::any_of(errors.begin(), errors.end(), [&](const PlanError &e) {
    return e.path == c.path && e.message.find(c.message) != std::string::npos;
  });
  EXPECT_TRUE(found) << "expected " << c.path << ": ..." << c.message << "...\ngot:\n"
                     << describe(errors);
}

INSTANTIATE_TEST_SUITE_P(EachRule, PlanRule, ::testing::ValuesIn(ruleCases()),
                         [](const ::testing::TestParamInfo<RuleCase> &info) {
                           return info.param.name;
                         });

TEST(ValidatePlan, ListsAtMostTheErrorLimit) {
  plan::Plan p = validatedPlan();
  for (int b = 0; b < p.programs(0).buffers_size(); ++b)
    buffer(p, 0, b).set_kind(plan::BufferKind(50));
  for (int b = 0; b < p.programs(1).buffers_size(); ++b)
    buffer(p, 1, b).set_kind(plan::BufferKind(50));
  for (int i = 0; i < 200; ++i) p.add_groups()->set_axis("zz");
  std::vector<PlanError> errors = planfile::validatePlan(p);
  ASSERT_EQ(errors.size(), planfile::PlanLimits::kReportedErrors + 1);
  EXPECT_NE(errors.back().message.find("more errors not listed"), std::string::npos);
}

TEST(ValidatePlan, EmptyPlanNamesWhatIsMissing) {
  std::vector<PlanError> errors = planfile::validatePlan(plan::Plan());
  EXPECT_FALSE(errors.empty());
  EXPECT_EQ(errors.front().path, "format");
}

std::vector<PlanError> parseErrors(std::string_view bytes) {
  std::vector<PlanError> errors;
  EXPECT_FALSE(planfile::parsePlan(bytes, errors));
  return errors;
}

TEST(ParsePlan, AcceptsValidBytes) {
  std::vector<PlanError> errors;
  std::optional<plan::Plan> p =
      planfile::parsePlan(planfile::serializePlan(validatedPlan()), errors);
  ASSERT_TRUE(p) << describe(errors);
  EXPECT_EQ(planfile::serializePlan(*p), planfile::serializePlan(validatedPlan()));
}

TEST(ParsePlan, TruncatedBytesAreCorrupt) {
  std::string bytes = planfile::serializePlan(validatedPlan());
  std::vector<PlanError> errors = parseErrors(std::string_view(bytes).substr(0, bytes.size() - 3));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "not a moeplan plan: the bytes do not parse as a plan "
                               "(truncated or corrupt)");
}

TEST(ParsePlan, GarbageIsNotAPlan) {
  std::vector<PlanError> errors = parseErrors("\xff\xff\xff\xff garbage");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("not a moeplan plan"), std::string::npos);
}

TEST(ParsePlan, OtherProtobufIsNotAPlan) {
  plan::Plan p = validatedPlan();
  p.set_format("something-else");
  std::vector<PlanError> errors = parseErrors(planfile::serializePlan(p));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message,
            "not a moeplan plan: format is \"something-else\", expected \"moeplan-plan\"");
}

TEST(ParsePlan, OtherSchemaVersionAsksToRecompile) {
  plan::Plan p = validatedPlan();
  p.set_schema_version(7);
  std::vector<PlanError> errors = parseErrors(planfile::serializePlan(p));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "plan schema version 7, this moeplan reads version " +
                                   std::to_string(planfile::kPlanSchemaVersion) +
                                   "; recompile the plan");
}

TEST(ParsePlan, InvalidPlanGivesValidationErrors) {
  plan::Plan p = validatedPlan();
  p.mutable_strategy()->set_tp(0);
  std::vector<PlanError> errors = parseErrors(planfile::serializePlan(p));
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].path, "strategy.tp");
}

TEST(ParsePlan, RefusesOversizedInputBeforeReadingIt) {
  char byte = 0;
  std::vector<PlanError> errors = parseErrors(std::string_view(&byte, planfile::kMaxPlanBytes + 1));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("more than the limit"), std::string::npos);
}

TEST(SerializePlan, IsDeterministicAndRoundTrips) {
  plan::Plan p = validatedPlan();
  std::string once = planfile::serializePlan(p), again = planfile::serializePlan(p);
  EXPECT_EQ(once, again);
  plan::Plan copy;
  ASSERT_TRUE(copy.ParseFromString(once));
  EXPECT_EQ(planfile::serializePlan(copy), once);
}

TEST(PlanFile, WriteThenRead) {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("moeplan-plan-test-" + std::to_string(::getpid()) + ".plan"))
                         .string();
  std::string error;
  ASSERT_TRUE(planfile::writePlanFile(validatedPlan(), path, error)) << error;
  std::vector<PlanError> errors;
  std::optional<plan::Plan> p = planfile::readPlanFile(path, errors);
  std::filesystem::remove(path);
  ASSERT_TRUE(p) << describe(errors);
  EXPECT_EQ(planfile::serializePlan(*p), planfile::serializePlan(validatedPlan()));
}

TEST(PlanFile, MissingFileIsReported) {
  std::vector<PlanError> errors;
  EXPECT_FALSE(planfile::readPlanFile("/nonexistent/moeplan.plan", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("cannot read"), std::string::npos);
  EXPECT_EQ(planfile::formatErrors("x.plan", errors), "x.plan: " + errors[0].message + "\n");
}

} // namespace
} // namespace moeplan
