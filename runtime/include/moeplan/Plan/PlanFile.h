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
constexpr uint32_t kPlanSchemaVersion = 4;
// Largest plan file accepted (a 1024-GPU, 128-layer plan is a few MB).
constexpr uint64_t kMaxPlanBytes = uint64_t(1) << 30;

// Bounds that keep every reader's work and memory proportional to the plan's size (a
// simulation of all ranks still takes ranks x instructions of their programs). Model,
// cluster and workload bounds are the description's (compiler FieldLimits).
struct PlanLimits {
  static constexpr uint64_t kRanks = uint64_t(1) << 20;  // also the cluster's GPUs
  static constexpr uint64_t kElements = uint64_t(1) << 60;  // of any shape or kernel operand
  // Largest GEMM / GROUPED_GEMM m, n, k and batch (groups): BLAS and cuBLAS take them, and
  // the leading dimensions they make, as int.
  static constexpr int64_t kBlasInt = INT32_MAX;
  // Largest expert count and rows per expert (groups x capacity) of ROUTER, DISPATCH and
  // COMBINE: expert indices and slots are I32.
  static constexpr int64_t kIndexMax = INT32_MAX;
  static constexpr int kShapeRank = 8;
  static constexpr uint32_t kStreams = 16;
  static constexpr uint32_t kLayers = 4096, kDModel = 1 << 18, kHeads = 4096, kHeadDim = 4096;
  static constexpr uint32_t kExperts = 1 << 16, kHidden = 1 << 20, kVocab = 1 << 24;
  static constexpr uint32_t kSequences = 1 << 24, kSeqLen = 1 << 24;
  // model.routing_stickiness: clumps of at most ~100 tokens on average (1 / (1 - 0.99)).
  static constexpr double kStickiness = 0.99;
  static constexpr size_t kReportedErrors = 100;  // validatePlan lists at most this many
};

// Bytes per element of a plan dtype (plan::DType, or any int read from a file); 0 for a
// value that is no dtype.
uint64_t dtypeBytes(int dtype);

// "0-3,8-11", "2,3": ranks (sorted) as runs of three or more; past 16 entries the middle
// is elided and the count given. How reports and the runtime's messages list ranks.
std::string formatRanks(const std::vector<uint32_t> &ranks);
// "12.3 us", "4.56 ms", "1.2 s"; "5.15 MB", "10.1 GB" (three significant digits).
std::string formatSeconds(double seconds);
std::string formatBytes(double bytes);

// One thing wrong with a plan: where (a field path such as
// "programs[0].instructions[12].kernel.inputs[1]") and which rule it breaks.
struct PlanError {
  std::string path;
  std::string message;
};
std::string formatErrors(const std::string &file, const std::vector<PlanError> &errors);

// Every structural and semantic rule a plan must satisfy before anyone reads it further:
// format and version, ranks/programs/groups consistent, buffer and event indices in range,
// buffers inside the arena, shapes agree with byte sizes, kernel operand counts per kind and
// every operand holding exactly the elements the kernel's dimensions give, GEMM dimensions
// within BLAS's int and expert indices and slots within I32, collectives' groups exist on
// every rank of the program and counts equal buffer sizes, send/recv pair up between programs. Linear in the plan's size (buffer
// placement: n log n); after kReportedErrors errors one more says how many were left out.
//
// The rules also make a valid plan free of deadlock, which the simulator and runtime rely
// on: one program per pipeline stage and every group other than pp inside one stage (so
// its members issue the same collectives), events waited only after they are recorded,
// SEND/RECV only over pp and paired with equal `sequence`, other collectives over pp the
// same in every program, and `sequence` increasing in issue order: every wait then points
// back in issue order or in the global order.
std::vector<PlanError> validatePlan(const plan::Plan &p);

// Parses bytes (binary protobuf) and validates. On failure returns nullopt and fills errors.
std::optional<plan::Plan> parsePlan(std::string_view bytes, std::vector<PlanError> &errors);
std::optional<plan::Plan> readPlanFile(const std::string &path, std::vector<PlanError> &errors);

// Deterministic serialization: the same plan gives the same bytes.
std::string serializePlan(const plan::Plan &p);
bool writePlanFile(const plan::Plan &p, const std::string &path, std::string &error);

} // namespace moeplan::planfile
