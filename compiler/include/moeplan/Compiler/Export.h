// Export: the scheduled, placed, costed plan dialect -> plan.proto, one to one.
#pragma once

#include "moeplan/schema/plan.pb.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

namespace moeplan {

// Fails (with a diagnostic on the offending op) when the module is not a complete plan:
// programs must be scheduled and placed, every collective's axis must have groups.
mlir::LogicalResult exportPlan(mlir::ModuleOp module, plan::Plan &out);

} // namespace moeplan
