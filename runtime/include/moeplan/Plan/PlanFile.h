// Reading, validating and writing plan files (runtime/schema/plan.proto). Shared by the
// compiler (which writes plans), `moeplan inspect`/`diff`, and the runtime (which executes
// them); depends on nothing but protobuf.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moeplan::planfile {

constexpr const char *kPlanFormat = "moeplan-plan";
constexpr uint32_t kPlanSchemaVersion = 1;
// Largest plan file accepted (a 1024-GPU, 128-layer plan is a few MB).
constexpr uint64_t kMaxPlanBytes = uint64_t(1) << 30;

// One thing wrong with a plan: where (a field path such as
// "programs[0].instructions[12].kernel.inputs[1]") and which rule it breaks.
struct PlanError {
  std::string path;
  std::string message;
};
std::string formatErrors(const std::string &file, const std::vector<PlanError> &errors);

// Every structural and semantic rule a plan must satisfy before anyone reads it further:
// format and version, ranks/programs/groups consistent, buffer and event indices in range,
// buffers inside the arena, shapes agree with byte sizes, kernel operand counts and shapes
// per kind, collectives' groups exist on every rank of the program and counts agree with
// buffer sizes, send/recv pair up between programs.
std::vector<PlanError> validatePlan(const plan::Plan &p);

// Parses bytes (binary protobuf) and validates. On failure returns nullopt and fills errors.
std::optional<plan::Plan> parsePlan(std::string_view bytes, std::vector<PlanError> &errors);
std::optional<plan::Plan> readPlanFile(const std::string &path, std::vector<PlanError> &errors);

// Deterministic serialization: the same plan gives the same bytes.
std::string serializePlan(const plan::Plan &p);
bool writePlanFile(const plan::Plan &p, const std::string &path, std::string &error);

} // namespace moeplan::planfile
