// plan-simulate: the predicted figures of the whole plan, as a module attribute.
#include "moeplan/Compiler/Export.h"
#include "moeplan/Compiler/Passes.h"
#include "moeplan/Simulate/Simulator.h"

#include "mlir/IR/Builders.h"

#include <stdexcept>

namespace moeplan {
#define GEN_PASS_DEF_PLANSIMULATE
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;

namespace moeplan {
namespace {

struct PlanSimulatePass : impl::PlanSimulateBase<PlanSimulatePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    plan::Plan p;
    if (failed(exportPlan(module, p))) return signalPassFailure();
    sim::Prediction pred;
    try {
      pred = sim::simulate(p);
    } catch (const std::invalid_argument &e) {
      module.emitError("simulation failed: ") << e.what();
      return signalPassFailure();
    }
    Builder b(module.getContext());
    auto f = [&](double v) { return b.getF64FloatAttr(v); };
    module->setAttr("plan.prediction",
                    b.getDictionaryAttr({
                        b.getNamedAttr("latency_s", f(pred.latencySeconds)),
                        b.getNamedAttr("throughput_tokens_per_s", f(pred.throughputTokensPerSecond)),
                        b.getNamedAttr("bubble_fraction", f(pred.bubbleFraction)),
                        b.getNamedAttr("comm_share", f(pred.commShare)),
                        b.getNamedAttr("exposed_comm_share", f(pred.exposedCommShare)),
                        b.getNamedAttr("utilization", f(pred.utilization)),
                        b.getNamedAttr("load_balance", f(pred.loadBalance)),
                        b.getNamedAttr("dropped_token_fraction", f(pred.droppedTokenFraction)),
                        b.getNamedAttr("roofline_s", f(pred.rooflineSeconds)),
                        b.getNamedAttr("roofline_bound", b.getStringAttr(pred.rooflineBound)),
                    }));
  }
};

} // namespace
} // namespace moeplan
