// `moeplan inspect`: what a compiled plan does on each GPU, and what the simulator predicts
// for it. Every figure comes from the plan (buffers, instructions, their counted costs) or
// from sim::simulate(plan); nothing is typed in.
//
// JSON (inspectJson), schema "moeplan-inspect" version 1. Bytes, seconds and FLOPs are
// numbers in base units; shares are fractions (0.25, not 25).
//   {"schema": "moeplan-inspect", "version": 1, "name", "source",
//    "strategy": {"tp", "pp", "dp", "ep", "expert_tp", "expert_dp", "micro_batches",
//                 "capacity_factor", "capacity", "schedule", "rank_order"},
//    "mesh": {"ranks", "nodes", "gpus_per_node", "cluster_gpus",
//             "idle_gpus": {"count", "first"}},           // idle GPUs are first..first+count-1
//    "programs": [{"program", "stage", "first_layer", "end_layer", "ranks": [..],
//                  "instructions",
//                  "memory": {"peak_instruction", "peak_label", "live_bytes", "arena_bytes",
//                             "fragmentation_bytes",
//                             "by_kind": {"weights", "activations", "kv_cache",
//                                         "communication", "workspace", "inputs_outputs"}},
//                  "flops",
//                  "kernels": [{"kind", "count", "flops"}],              // KernelKind order
//                  "collectives": [{"axis", "count", "comm_bytes",
//                                   "kinds": {"ALL_REDUCE": count, ..}}]}],  // axis order
//    "prediction": {"latency_s", "throughput_tokens_per_s", "bubble_fraction", "comm_share",
//                   "exposed_comm_share", "overlapped_comm_share", "utilization",
//                   "load_balance", "dropped_token_fraction",
//                   "roofline": {"seconds", "rank", "bound"}},
//    "requirements": [{"name", "field", "comparison": "<=" | ">=", "required", "predicted",
//                      "pass"}],                           // only those the plan sets
//    "notes": [..],
//    "workload_points": [{"seq_len", "latency_s", "throughput_tokens_per_s", "memory_bytes",
//                         "memory_stage", "activation_bytes", "exposed_comm_share",
//                         "load_balance", "utilization", "bubble_fraction",
//                         "dropped_token_fraction", "roofline_s", "layer_compute_s",
//                         "mean_collective_s", "requirements": [as above]}],
//    "claims": [{"name", "field", "unit", "claimed", "derived": [..], "ratio": [..],
//                "tolerance", "consistent"}]}                 // tools/moeplan adds these two
//
// Rank listing (rankJson), schema "moeplan-inspect-rank" version 1:
//   {"schema", "version", "rank", "node", "local_gpu", "program", "stage",
//    "groups": [{"axis", "group", "index", "ranks": [..]}],
//    "instructions": [{"index", "stream", "wait_events": [..], "record_event",
//                      "micro_batch", "layer", "label",
//                      "kernel": {"kind", "dims": {"m": .., ..}}            // or
//                      "collective": {"kind", "axis", "group", "ranks": [..], "count",
//                                     "dtype", "peer_rank"?, "send_counts"?, "recv_counts"?},
//                      "inputs": [buffer names], "outputs": [buffer names],
//                      "flops", "memory_bytes", "comm_bytes", "seconds"}]}
#pragma once

#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Simulate/Simulator.h"
#include "moeplan/schema/plan.pb.h"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moeplan::report {

// What buffers hold, as the memory breakdown names it (inputs and outputs together).
enum class MemoryKind { Weights, Activations, KvCache, Communication, Workspace, InputsOutputs };
constexpr size_t kMemoryKinds = 6;
const char *memoryKindName(MemoryKind k);   // "weights", "activations", "kv_cache", ...
const char *memoryKindTitle(MemoryKind k);  // "weights", "activations", "KV cache", ...
MemoryKind memoryKindOf(plan::BufferKind k);

// The buffers live at the instruction where their sum is largest (the first such).
struct MemoryAtPeak {
  uint32_t instruction = 0;
  uint64_t liveBytes = 0;
  std::array<uint64_t, kMemoryKinds> byKind{};
  uint64_t arenaBytes = 0;  // what a rank running the program holds
  // Arena bytes no live buffer uses at the peak: the price of fixed offsets.
  uint64_t fragmentationBytes() const {
    return arenaBytes > liveBytes ? arenaBytes - liveBytes : 0;
  }
};
MemoryAtPeak memoryAtPeak(const plan::Program &program);
// The buffers (indices) an instruction reads and writes.
void instructionOperands(const plan::Instruction &inst, std::vector<uint32_t> &in,
                         std::vector<uint32_t> &out);

struct KernelTotals {
  plan::KernelKind kind = plan::KERNEL_KIND_UNSPECIFIED;
  uint64_t count = 0, flops = 0;
};

struct CollectiveTotals {
  std::string axis;
  uint64_t count = 0, commBytes = 0;
  std::map<std::string, uint64_t> kinds;  // CollectiveKind name -> count
};

// One program (pipeline stage) as each of its ranks runs it.
struct ProgramSummary {
  uint32_t program = 0, stage = 0, firstLayer = 0, endLayer = 0;
  std::vector<uint32_t> ranks;
  uint64_t instructions = 0;
  std::string peakLabel;  // label of the instruction at the memory peak
  MemoryAtPeak memory;
  uint64_t flops = 0;
  std::vector<KernelTotals> kernels;          // kinds present, in KernelKind order
  std::vector<CollectiveTotals> collectives;  // axes present, in mesh axis order
};
// Every program, by stage.
std::vector<ProgramSummary> summarizePrograms(const plan::Plan &p);

// The mesh axes in the order ranks list their groups: tp dp pp ep etp edp.
const std::vector<std::string> &meshAxes();

// A requirement of the plan against what it gets. atMost: `required` is an upper bound.
struct RequirementCheck {
  std::string name;   // "memory per GPU", "latency", ...
  std::string field;  // the plan field it comes from, e.g. "requirements.max_latency_s"
  bool atMost = true;
  double required = 0, predicted = 0;
  enum class Unit { Bytes, Seconds, TokensPerSecond, Fraction } unit = Unit::Fraction;
  bool pass = false;
};

// The figures the plan predicts at its own sequence length, from its simulation.
plan::WorkloadPoint workloadPoint(const plan::Plan &p, const sim::Prediction &prediction);

// The GPU's capacity and every requirement the plan sets against one point's figures.
std::vector<RequirementCheck> judgeRequirements(const plan::Plan &p,
                                                const plan::WorkloadPoint &point);

// A value the way a requirement states it: 6.93 GB, 425 ms, 3.08 M tokens/s, 46.0%.
std::string formatRequirementValue(RequirementCheck::Unit unit, double v);

// The workload table: the figures at each point, then each requirement's verdict per point.
// Empty when the plan carries no workload points.
std::string renderWorkloadPoints(const plan::Plan &p);
nlohmann::json workloadPointsJson(const plan::Plan &p);
// The JSON of requirement verdicts, and of one point with its verdicts (inspect, search).
nlohmann::json requirementsJson(const std::vector<RequirementCheck> &checks);
nlohmann::json workloadPointJson(const plan::WorkloadPoint &w,
                                 const std::vector<RequirementCheck> &checks);

// A claim's value in its unit ("s", "bytes", "tokens/s", "fraction", ...), and the ratio
// derived / claimed as the claims table writes them ("x1.02").
std::string formatClaimValue(const std::string &unit, double v);
std::string formatRatio(double derived, double claimed);

// The claims table: each claim beside the derived figure(s), with ratio and verdict.
std::string renderClaims(const plan::Plan &p);
nlohmann::json claimsJson(const plan::Plan &p);

// The routing a moeplan-run report measured, as `p`'s model states it: the per-layer expert
// loads (its "expert_load": each MoE layer's routed_per_expert) as model.expert_load's
// per-layer table (layers x experts, dense layers' rows 0), and per layer the stickiness
// under which those loads drop the share of choices the run dropped in its capacity groups
// (sim::fitStickiness; the layer's "dispatch" geometry), as model.routing_stickiness.
struct MeasuredRouting {
  std::vector<double> expertLoad;
  std::vector<double> stickiness;        // per layer; 0 where not fitted
  std::vector<int64_t> unfitted;         // MoE layers without a dispatch geometry to fit on
};
// Empty expertLoad with `error` set (naming the JSON field) when the report is not a
// moeplan-run report of a plan with this model's layers and experts.
MeasuredRouting routingFromRunReport(const plan::Plan &p, const nlohmann::json &report,
                                     std::string &error);

// Prediction against a moeplan-run report of the same plan (--report-json), component by
// component: per kernel kind and per collective kind the time summed over ranks (one pass;
// a collective's measured time includes waiting for its slowest member, its predicted time
// starts when all have arrived), and the forward pass's wall time per rank and overall.
struct MeasuredRow {
  std::string component;  // "GEMM", "ALL_TO_ALL", "rank 3", "total"
  std::string kind;       // "kernel", "collective", "wait", "rank", "total"
  uint64_t count = 0;     // instructions of that kind over all ranks (kernel, collective)
  double predicted = 0, measured = 0;
};
struct MeasuredComparison {
  std::string backend, comm;  // the run's
  std::vector<MeasuredRow> rows;
  // The report measured each collective's wait for its instance's last member: collective
  // rows count from the instance's completion, "wait" rows hold the waits (by group and by
  // send/recv peer). Else collective rows count from their rank's issue.
  bool waitsSplit = false;
};
// Empty rows and `error` set (naming the report's field) when the report is not a
// moeplan-run report of this plan (ranks, instruction counts per kind) or the plan is
// GENERATE (the run measures the whole generation, the prediction one forward pass).
MeasuredComparison compareWithMeasured(const plan::Plan &p, const sim::Prediction &pred,
                                       const nlohmann::json &report, std::string &error);
std::string renderMeasured(const MeasuredComparison &c);
nlohmann::json measuredJson(const MeasuredComparison &c);

struct InspectReport {
  std::string name, source;
  plan::Strategy strategy;
  plan::Cluster cluster;
  uint32_t ranks = 0;
  uint64_t clusterGpus = 0, idleGpus = 0;  // idle: GPUs ranks..clusterGpus-1
  std::vector<ProgramSummary> programs;    // by stage
  uint64_t maxArenaBytes = 0;              // the largest per-GPU memory
  uint32_t maxArenaStage = 0;
  sim::Prediction prediction;
  bool measuredExpertLoad = false;  // the routing model read model.expert_load (else uniform)
  double executedFlops = 0, modelFlops = 0;  // over all ranks (RankTimeline's, summed)
  std::vector<RequirementCheck> requirements;
  std::vector<std::string> notes;

  bool requirementsMet() const;
};

// Reads the plan (valid: see planfile::validatePlan) with a prediction already made, or
// simulates it (throws what sim::simulate throws).
InspectReport inspectPlan(const plan::Plan &p, sim::Prediction prediction);
InspectReport inspectPlan(const plan::Plan &p);

std::string renderInspectText(const InspectReport &r);
nlohmann::json inspectJson(const InspectReport &r);

// One line per instruction of `rank`'s program, as that rank runs it. Throws
// std::out_of_range naming the plan's ranks when `rank` is not one of them.
std::string renderRankText(const plan::Plan &p, uint32_t rank);
nlohmann::json rankJson(const plan::Plan &p, uint32_t rank);

// The simulated timeline as Chrome/Perfetto trace JSON.
std::string renderTraceJson(const plan::Plan &p, const sim::Prediction &prediction);

using planfile::formatRanks;
using planfile::formatSeconds;

} // namespace moeplan::report
