// model-validate: the rules of `moeplan check` as MLIR diagnostics at the fields at fault.
#include "moeplan/Check/Rules.h"
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/Passes.h"

namespace moeplan {
#define GEN_PASS_DEF_MODELVALIDATE
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;

namespace moeplan {
namespace {

struct ModelValidatePass : impl::ModelValidateBase<ModelValidatePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::vector<Finding> findings;
    std::optional<DeploymentSpec> spec = deploymentOf(module, &findings);
    if (!spec) return signalPassFailure();
    std::vector<Finding> rules = checkDeployment(*spec);
    findings.insert(findings.end(), rules.begin(), rules.end());
    locateFindings(findings, locationsOf(module));
    bool failed = false;
    for (const Finding &f : findings) {
      InFlightDiagnostic d = emitFinding(module.getContext(), f);
      if (f.severity != Severity::Error) continue;
      if (blocksLowering(f.rule)) failed = true;
      else d.attachNote() << "the plan does not depend on this rule; compiling on";
    }
    if (failed) signalPassFailure();
  }
};

} // namespace
} // namespace moeplan
