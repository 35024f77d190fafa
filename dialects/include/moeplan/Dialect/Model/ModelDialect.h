// The model dialect: the MoE transformer as ops on tensors (see ModelOps.td).
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <memory>
#include <mutex>

#include "moeplan/Dialect/Model/ModelOpsDialect.h.inc"
#include "moeplan/Dialect/Model/ModelOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moeplan/Dialect/Model/ModelOpsAttributes.h.inc"

#define GET_OP_CLASSES
#include "moeplan/Dialect/Model/ModelOps.h.inc"
