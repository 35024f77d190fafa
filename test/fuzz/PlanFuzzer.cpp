// libFuzzer entry point: any bytes as a plan file must give errors or a valid plan, never a
// crash, a hang or undefined behaviour; a valid plan must simulate and report in bounded
// time and memory.
#include "moeplan/Plan/PlanFile.h"
#include "moeplan/Report/Diff.h"
#include "moeplan/Report/Inspect.h"
#include "moeplan/Simulate/Simulator.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace moeplan;
  std::vector<planfile::PlanError> errors;
  std::optional<plan::Plan> p =
      planfile::parsePlan(std::string_view(reinterpret_cast<const char *>(data), size), errors);
  if (!p) {
    (void)planfile::formatErrors("fuzz", errors);
    return 0;
  }
  try {
    sim::Prediction prediction = sim::simulate(*p);
    report::InspectReport r = report::inspectPlan(*p, prediction);
    (void)report::renderInspectText(r);
    (void)report::inspectJson(r).dump();
    uint32_t lastRank = uint32_t(p->ranks_size() - 1);
    (void)report::renderRankText(*p, lastRank);
    (void)report::rankJson(*p, lastRank).dump();
    (void)report::renderTraceJson(*p, prediction);
    plan::Plan renamed = *p;  // differs in one field, so the whole comparison runs
    renamed.set_name(p->name() + "'");
    report::DiffReport diff = report::diffPlans(*p, renamed);
    (void)report::renderDiffText(diff, "a", "b");
    (void)report::diffJson(diff).dump();
  } catch (const std::invalid_argument &) {
    // validatePlan promises plans that simulate; the simulator's refusal is still no crash
  }
  return 0;
}
