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

#include <cstring>

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

  // Equality and a cheap hash, for memoizing attr() (the context's uniquer hashes 25
  // parameters and builds two APFloats on every call).
  bool operator==(const KernelDims &o) const {
    return m_ == o.m_ && n_ == o.n_ && k_ == o.k_ && groups_ == o.groups_ && inner_ == o.inner_ &&
           tokens_ == o.tokens_ && experts_ == o.experts_ && topK_ == o.topK_ &&
           capacity_ == o.capacity_ && sequences_ == o.sequences_ && seqLen_ == o.seqLen_ &&
           kvLen_ == o.kvLen_ && heads_ == o.heads_ && kvHeads_ == o.kvHeads_ &&
           headDim_ == o.headDim_ && vocabBegin_ == o.vocabBegin_ && vocabEnd_ == o.vocabEnd_ &&
           firstPosition_ == o.firstPosition_ && transposeB_ == o.transposeB_ &&
           renormalize_ == o.renormalize_ && perStep_ == o.perStep_ && norm_ == o.norm_ &&
           activation_ == o.activation_ && bits(epsilon_) == bits(o.epsilon_) &&
           bits(ropeTheta_) == bits(o.ropeTheta_);
  }
  size_t hash() const {
    uint64_t h = 0;
    for (uint64_t v : {uint64_t(m_), uint64_t(n_), uint64_t(k_), uint64_t(groups_),
                       uint64_t(inner_), uint64_t(tokens_), uint64_t(experts_), uint64_t(topK_),
                       uint64_t(capacity_), uint64_t(sequences_), uint64_t(seqLen_),
                       uint64_t(kvLen_), uint64_t(heads_), uint64_t(kvHeads_), uint64_t(headDim_),
                       uint64_t(vocabBegin_), uint64_t(vocabEnd_), uint64_t(firstPosition_),
                       uint64_t(transposeB_) | uint64_t(renormalize_) << 1 |
                           uint64_t(perStep_) << 2 | uint64_t(norm_) << 8 |
                           uint64_t(activation_) << 16,
                       bits(epsilon_), bits(ropeTheta_)})
      h = (h ^ v) * 0x100000001b3ull + (h >> 29);
    return size_t(h);
  }
  struct Hash {
    size_t operator()(const KernelDims &d) const { return d.hash(); }
  };

  KernelDimsAttr attr(mlir::MLIRContext *ctx) const {
    return KernelDimsAttr::get(ctx, m_, n_, k_, groups_, inner_, tokens_, experts_, topK_,
                               capacity_, sequences_, seqLen_, kvLen_, heads_, kvHeads_,
                               headDim_, vocabBegin_, vocabEnd_, transposeB_, norm_,
                               activation_, llvm::APFloat(epsilon_), llvm::APFloat(ropeTheta_),
                               firstPosition_, renormalize_, perStep_);
  }

private:
  static uint64_t bits(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
  }
  int64_t m_ = 0, n_ = 0, k_ = 0, groups_ = 0, inner_ = 0, tokens_ = 0, experts_ = 0, topK_ = 0,
          capacity_ = 0, sequences_ = 0, seqLen_ = 0, kvLen_ = 0, heads_ = 0, kvHeads_ = 0,
          headDim_ = 0, vocabBegin_ = 0, vocabEnd_ = 0, firstPosition_ = 0;
  bool transposeB_ = false, renormalize_ = false, perStep_ = false;
  NormKind norm_ = NormKind::none;
  ActivationKind activation_ = ActivationKind::none;
  double epsilon_ = 0, ropeTheta_ = 0;
};
} // namespace moeplan::planir
