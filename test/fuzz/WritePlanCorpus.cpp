// Writes the plan fuzzer's seed corpus into a directory: small plans that pass validatePlan
// (from test/unit/TestPlans.h, serialized with serializePlan; valid-moe.plan holds the
// router, DISPATCH, GROUPED_GEMM and COMBINE kernels; valid-generate.plan a prefill and a
// decode step over KV caches, which test/runtime runs too) and the ways plan files go
// wrong (truncated, another schema version, another format). Rerun it when the schema or
// the synthetic plans change:  plan-corpus-writer test/fuzz/plan-corpus
// (valid-compiled-tiny-moe.plan beside them is `moeplan compile examples/tiny-moe/...`.)
#include "TestPlans.h"

#include "moeplan/Plan/PlanFile.h"

#include <cstdio>
#include <fstream>
#include <string>

namespace {

bool write(const std::string &dir, const std::string &name, const std::string &bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  if (out.write(bytes.data(), std::streamsize(bytes.size()))) return true;
  std::fprintf(stderr, "plan-corpus-writer: cannot write %s/%s\n", dir.c_str(), name.c_str());
  return false;
}

} // namespace

int main(int argc, char **argv) {
  using namespace moeplan;
  if (argc != 2) {
    std::fprintf(stderr, "usage: plan-corpus-writer DIR\n");
    return 2;
  }
  const std::string dir = argv[1];

  plan::Plan base = testing::validatedPlan();
  // Every requirement set, skewed routing, a layer norm with bias: the optional paths.
  plan::Plan demanding = base;
  plan::Requirements &req = *demanding.mutable_requirements();
  req.set_min_throughput_tokens_per_s(1e3), req.set_min_load_balance(0.9);
  req.set_max_comm_overhead(0.2), req.set_min_gpu_utilization(0.5);
  for (double load : {4.0, 1.0, 1.0, 2.0}) demanding.mutable_model()->add_expert_load(load);
  demanding.mutable_strategy()->set_schedule(plan::ONE_F_ONE_B);
  plan::Program &first = *demanding.mutable_programs(0);
  for (plan::Instruction &inst : *first.mutable_instructions())
    if (inst.has_kernel() && inst.kernel().kind() == plan::NORM) {
      inst.mutable_kernel()->set_norm(plan::LAYER_NORM);
      inst.mutable_kernel()->add_inputs(1);  // the norm weight doubles as the bias
    }

  plan::Plan otherVersion = base;
  otherVersion.set_schema_version(planfile::kPlanSchemaVersion + 1);
  plan::Plan otherFormat = base;
  otherFormat.set_format("not-a-plan");
  std::string bytes = planfile::serializePlan(base);

  bool ok = write(dir, "valid-two-stages.plan", bytes) &&
            write(dir, "valid-all-requirements.plan", planfile::serializePlan(demanding)) &&
            write(dir, "valid-moe.plan", planfile::serializePlan(testing::moePlan())) &&
            write(dir, "valid-generate.plan", planfile::serializePlan(testing::generatePlan())) &&
            write(dir, "corrupt-truncated.plan", bytes.substr(0, bytes.size() / 2)) &&
            write(dir, "corrupt-other-version.plan", planfile::serializePlan(otherVersion)) &&
            write(dir, "corrupt-other-format.plan", planfile::serializePlan(otherFormat));
  return ok ? 0 : 1;
}
