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

#include "moeplan/Dialect/Plan/PlanOpsInterfaces.h.inc"

#define GET_OP_CLASSES
#include "moeplan/Dialect/Plan/PlanOps.h.inc"

namespace moeplan::planir {
// Bytes per element of a memref's element type (i32 and floats).
int64_t elementBytes(mlir::Type t);

// A KernelDimsAttr in the making, set field by field (what is not set stays 0, false or
// none): KernelDims().m(4).n(8).k(16).attr(ctx).
class KernelDims {
public:
#define MOEPLAN_KERNEL_DIM(T, name)                                                            \
  KernelDims &name(T v) {                                                                      \
    name##_ = v;                                                                               \
    return *this;                                                                              \
  }
  MOEPLAN_KERNEL_DIM(int64_t, m)
  MOEPLAN_KERNEL_DIM(int64_t, n)
  MOEPLAN_KERNEL_DIM(int64_t, k)
  MOEPLAN_KERNEL_DIM(int64_t, groups)
  MOEPLAN_KERNEL_DIM(int64_t, inner)
  MOEPLAN_KERNEL_DIM(int64_t, tokens)
  MOEPLAN_KERNEL_DIM(int64_t, experts)
  MOEPLAN_KERNEL_DIM(int64_t, topK)
  MOEPLAN_KERNEL_DIM(int64_t, capacity)
  MOEPLAN_KERNEL_DIM(int64_t, sequences)
  MOEPLAN_KERNEL_DIM(int64_t, seqLen)
  MOEPLAN_KERNEL_DIM(int64_t, kvLen)
  MOEPLAN_KERNEL_DIM(int64_t, heads)
  MOEPLAN_KERNEL_DIM(int64_t, kvHeads)
  MOEPLAN_KERNEL_DIM(int64_t, headDim)
  MOEPLAN_KERNEL_DIM(int64_t, vocabBegin)
  MOEPLAN_KERNEL_DIM(int64_t, vocabEnd)
  MOEPLAN_KERNEL_DIM(bool, transposeB)
  MOEPLAN_KERNEL_DIM(NormKind, norm)
  MOEPLAN_KERNEL_DIM(ActivationKind, activation)
  MOEPLAN_KERNEL_DIM(double, epsilon)
  MOEPLAN_KERNEL_DIM(double, ropeTheta)
  MOEPLAN_KERNEL_DIM(int64_t, firstPosition)
  MOEPLAN_KERNEL_DIM(bool, renormalize)
  MOEPLAN_KERNEL_DIM(bool, perStep)
#undef MOEPLAN_KERNEL_DIM

  KernelDimsAttr attr(mlir::MLIRContext *ctx) const {
    return KernelDimsAttr::get(ctx, m_, n_, k_, groups_, inner_, tokens_, experts_, topK_,
                               capacity_, sequences_, seqLen_, kvLen_, heads_, kvHeads_,
                               headDim_, vocabBegin_, vocabEnd_, transposeB_, norm_,
                               activation_, llvm::APFloat(epsilon_), llvm::APFloat(ropeTheta_),
                               firstPosition_, renormalize_, perStep_);
  }

private:
  int64_t m_ = 0, n_ = 0, k_ = 0, groups_ = 0, inner_ = 0, tokens_ = 0, experts_ = 0, topK_ = 0,
          capacity_ = 0, sequences_ = 0, seqLen_ = 0, kvLen_ = 0, heads_ = 0, kvHeads_ = 0,
          headDim_ = 0, vocabBegin_ = 0, vocabEnd_ = 0, firstPosition_ = 0;
  bool transposeB_ = false, renormalize_ = false, perStep_ = false;
  NormKind norm_ = NormKind::none;
  ActivationKind activation_ = ActivationKind::none;
  double epsilon_ = 0, ropeTheta_ = 0;
};
} // namespace moeplan::planir
