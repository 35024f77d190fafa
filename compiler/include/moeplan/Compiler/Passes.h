// moeplan's compiler passes (declared in Passes.td).
#pragma once

#include "moeplan/Dialect/Model/ModelDialect.h"
#include "moeplan/Dialect/Plan/PlanDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace moeplan {

#define GEN_PASS_DECL
#include "moeplan/Compiler/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "moeplan/Compiler/Passes.h.inc"

} // namespace moeplan
