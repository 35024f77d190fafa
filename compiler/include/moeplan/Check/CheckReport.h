// `moeplan check`: everything it finds and derives about one deployment description, and
// its renderings for people (text) and tools (JSON).
#pragma once

#include "moeplan/Analysis/ParamCount.h"
#include "moeplan/Analysis/WeightMemory.h"
#include "moeplan/Check/Repair.h"
#include "moeplan/Description/Load.h"
#include "moeplan/schema/plan.pb.h"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moeplan {

// What compiling a description adds to its check (the compiler's compiledFacts).
struct PlanFacts {
  std::vector<Finding> findings;  // by field path
  // The plan's header with its workload points and claims (no programs), when it lowered.
  std::optional<plan::Plan> plan;
};

struct CheckOptions {
  size_t repairCount = 3;  // nearest valid strategies to list for an invalid one
  // Compiles the description (this library cannot): called when no error blocks lowering;
  // its findings are located and reported with the others, its plan's workload points and
  // claims printed.
  std::function<PlanFacts(const std::string &text, const DeploymentSpec &spec)> planRules;
};

struct CheckReport {
  SourceLocation start;  // where the description begins
  std::string name;      // the description's name field, when it parsed
  std::vector<Finding> findings;  // located, in rule order
  bool unusable = false;          // syntax or field errors: nothing could be derived
  std::optional<DeploymentSpec> spec;
  std::optional<ParamBreakdown> params;
  int64_t activeParams = 0;
  std::vector<StageWeights> weights;
  std::vector<std::vector<int64_t>> stageGpus;  // empty when the expert grid does not fold
  int64_t placementClaimedGpus = 0;
  std::vector<RepairCandidate> repairs;
  std::optional<plan::Plan> plan;  // PlanFacts::plan: workload points and claims

  // 0 clean (warnings and notes allowed), 1 error findings, 2 unusable input.
  int exitStatus() const;
};

// Checks one description given as text that starts at `firstLine` of `file`.
CheckReport checkDescription(const std::string &text, const std::string &file, int firstLine,
                             const CheckOptions &options = {});

// Reads `path` and checks it; with `split`, each "# -----"-separated chunk separately.
// A file that cannot be read gives one unusable report.
std::vector<CheckReport> checkFile(const std::string &path, bool split,
                                   const CheckOptions &options = {});

std::string renderText(const CheckReport &r);
nlohmann::json toJson(const CheckReport &r);

} // namespace moeplan
