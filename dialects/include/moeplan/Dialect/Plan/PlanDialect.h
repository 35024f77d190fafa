// The plan dialect: per-rank programs of a static parallel plan (see PlanOps.td).
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/RegionKindInterface.h"
#include "mlir/IR/SymbolTable.h"

#include "moeplan/Dialect/Plan/PlanOpsDialect.h.inc"
#include "moeplan/Dialect/Plan/PlanOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moeplan/Dialect/Plan/PlanOpsAttributes.h.inc"

#define GET_OP_CLASSES
#include "moeplan/Dialect/Plan/PlanOps.h.inc"

namespace moeplan::planir {
// Bytes per element of a memref's element type (i32 and floats).
int64_t elementBytes(mlir::Type t);
} // namespace moeplan::planir
