// `moeplan diff A B`: how two compiled plans differ in what a user cares about: the
// deployment fields (strategy first), memory and work per stage, communication per axis,
// the predicted latency and throughput, and which instructions each stage's program gained
// or lost. Two plans are identical when their deterministic serializations are equal.
//
// JSON (diffJson), schema "moeplan-diff" version 1. Each compared figure is {"a", "b"};
// predictions add "relative_change" ((b - a) / a, null when a is 0).
//   {"schema": "moeplan-diff", "version": 1, "identical": bool,
//    "fields": [{"field": "strategy.tp", "a": "2", "b": "4"}],   // sections and scalars
//    "stages": [{"stage", "in_a", "in_b", "ranks": {"a": [..], "b": [..]},
//                "arena_bytes": {..}, "flops": {..}, "instructions": {..},
//                "memory_at_peak": {"weights": {..}, "activations": {..}, ..},
//                "communication_per_gpu": [{"axis", "comm_bytes": {..}}],
//                "inserted", "removed", "changed",      // counts of instruction edits
//                "edits": [{"op": "+" | "-" | "~", "index", "label", "micro_batch",
//                           "what"?}],
//                "edits_truncated": bool}],
//    "communication": [{"axis", "comm_bytes": {..}}],  // all ranks, per step
//    "prediction": {"latency_s": {..}, "throughput_tokens_per_s": {..}}
//                   // or {"error_a"/"error_b": message} when a plan does not simulate
//   }
#pragma once

#include "moeplan/Report/Inspect.h"
#include "moeplan/schema/plan.pb.h"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeplan::report {

// A scalar field (or list) of the deployment sections that differs, rendered as text.
struct FieldChange {
  std::string field;  // "strategy.tp", "requirements.max_latency_s", "notes"
  std::string a, b;   // "(absent)" for an unset optional field
};

// One instruction inserted (+, index in B), removed (-, index in A), or kept under the same
// label but changed (~, index in B).
struct InstructionEdit {
  char op = '+';
  uint32_t index = 0;
  std::string label;
  uint32_t microBatch = 0;
  std::string what;  // '~': the parts that changed ("operation, operands, cost, stream")
};

template <typename T> struct Pair {
  T a{}, b{};
  bool differs() const { return a != b; }
};

struct AxisVolume {
  std::string axis;
  Pair<uint64_t> commBytes;  // per GPU in StageDiff, summed over every rank in DiffReport
};

struct StageDiff {
  uint32_t stage = 0;
  bool inA = false, inB = false;
  Pair<std::vector<uint32_t>> ranks;
  Pair<uint64_t> arenaBytes, flops, instructions;
  std::array<Pair<uint64_t>, kMemoryKinds> memoryAtPeak;
  std::vector<AxisVolume> communicationPerGpu;  // in mesh-axis order
  uint64_t inserted = 0, removed = 0, changed = 0;
  std::vector<InstructionEdit> edits;  // at most kListedEdits, in program order
  bool editsTruncated = false;
};

struct DiffReport {
  bool identical = false;
  std::vector<FieldChange> fields;
  std::vector<StageDiff> stages;  // by stage, those of A and of B
  std::vector<AxisVolume> communication;
  std::optional<Pair<double>> latencySeconds, throughputTokensPerSecond;
  std::string simulationErrorA, simulationErrorB;  // when a plan does not simulate

  int exitStatus() const { return identical ? 0 : 1; }
};

constexpr size_t kListedEdits = 20;

// Compares two valid plans (see planfile::validatePlan); simulates both unless they are
// identical (then nothing else is filled in).
DiffReport diffPlans(const plan::Plan &a, const plan::Plan &b);

std::string renderDiffText(const DiffReport &r, const std::string &nameA, const std::string &nameB);
nlohmann::json diffJson(const DiffReport &r);

// Relative change (b - a) / a; nullopt when a is 0.
std::optional<double> relativeChange(double a, double b);

} // namespace moeplan::report
