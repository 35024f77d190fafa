#include "moeplan/Dialect/Model/ModelDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace moeplan::model;

#include "moeplan/Dialect/Model/ModelOpsDialect.cpp.inc"
#include "moeplan/Dialect/Model/ModelOpsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "moeplan/Dialect/Model/ModelOpsAttributes.cpp.inc"

#define GET_OP_CLASSES
#include "moeplan/Dialect/Model/ModelOps.cpp.inc"

void ModelDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moeplan/Dialect/Model/ModelOpsAttributes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "moeplan/Dialect/Model/ModelOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------------------===//
// Mesh
//===----------------------------------------------------------------------------------===//

LogicalResult MeshAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t tp,
                               int64_t pp, int64_t dp, int64_t ep, int64_t etp,
                               StringRef order) {
  for (auto [name, v] : {std::pair<StringRef, int64_t>{"tp", tp}, {"pp", pp}, {"dp", dp},
                         {"ep", ep}, {"etp", etp}})
    if (v < 1) return emitError() << "mesh axis " << name << " must be at least 1, got " << v;
  if ((tp * dp) % (etp * ep) != 0)
    return emitError() << "expert grid etp x ep = " << etp * ep
                       << " does not fold onto tp x dp = " << tp * dp;
  SmallVector<StringRef> axes;
  order.split(axes, '-');
  llvm::SmallSet<StringRef, 4> seen;
  for (StringRef a : axes)
    if (!llvm::is_contained({"tp", "ep", "dp", "pp"}, a) || !seen.insert(a).second)
      return emitError() << "rank order \"" << order << "\" must name tp, ep, dp, pp once each";
  if (seen.size() != 4)
    return emitError() << "rank order \"" << order << "\" must name tp, ep, dp, pp once each";
  return success();
}

//===----------------------------------------------------------------------------------===//
// Op verifiers: shapes must agree with the op's dimensions.
//===----------------------------------------------------------------------------------===//

namespace {
RankedTensorType ranked(Value v) { return cast<RankedTensorType>(v.getType()); }

// Dimension `i` of a and b agree (dynamic sizes agree with anything).
bool sameDim(RankedTensorType a, int64_t i, RankedTensorType b, int64_t j) {
  return a.isDynamicDim(i) || b.isDynamicDim(j) || a.getDimSize(i) == b.getDimSize(j);
}
bool dimIs(RankedTensorType t, int64_t i, int64_t n) {
  return t.isDynamicDim(i) || t.getDimSize(i) == n;
}
// The token dimensions ([batch, seq] or, once sharded, [tokens]) of `a` (all its dims but
// `aTrailing` last ones) equal those of `b`.
bool sameTokens(RankedTensorType a, int64_t aTrailing, RankedTensorType b, int64_t bTrailing) {
  int64_t n = a.getRank() - aTrailing;
  if (n != b.getRank() - bTrailing) return false;
  for (int64_t i = 0; i < n; ++i)
    if (!sameDim(a, i, b, i)) return false;
  return true;
}
int64_t last(RankedTensorType t) { return t.getRank() - 1; }
} // namespace

LogicalResult EmbeddingOp::verify() {
  auto ids = ranked(getIds()), out = ranked(getResult());
  if (getVocab() < 1) return emitOpError("vocab must be at least 1");
  if (!sameTokens(ids, 0, out, 1))
    return emitOpError("result tokens ") << out.getShape().drop_back()
                                         << " differ from the ids' " << ids.getShape();
  return success();
}

LogicalResult AttentionOp::verify() {
  if (getHeads() < 1 || getKvHeads() < 1 || getHeadDim() < 1)
    return emitOpError("heads, kv_heads and head_dim must be at least 1");
  if (getHeads() % getKvHeads() != 0)
    return emitOpError("heads ") << getHeads() << " is not a multiple of kv_heads "
                                 << getKvHeads();
  return success();
}

LogicalResult RouterOp::verify() {
  auto in = ranked(getInput()), idx = ranked(getIndices()), gates = ranked(getGates());
  if (getExperts() < 1 || getTopK() < 1 || getTopK() > getExperts())
    return emitOpError("needs 1 <= top_k <= experts, got top_k ")
           << getTopK() << " and experts " << getExperts();
  if (idx.getShape() != gates.getShape())
    return emitOpError("indices and gates must have one shape");
  if (!sameTokens(in, 1, idx, 1) || !dimIs(idx, last(idx), getTopK()))
    return emitOpError("indices must be [tokens..., top_k = ") << getTopK() << "]";
  return success();
}

LogicalResult ExpertDispatchOp::verify() {
  auto in = ranked(getInput()), idx = ranked(getIndices()), out = ranked(getDispatched());
  if (getExperts() < 1 || getCapacity() < 0)
    return emitOpError("needs experts >= 1 and capacity >= 0");
  if (!dimIs(out, 0, getExperts()) || !dimIs(out, 1, getCapacity()) ||
      !sameDim(out, 2, in, last(in)))
    return emitOpError("result must be [experts = ")
           << getExperts() << ", capacity = " << getCapacity() << ", d_model]";
  if (ranked(getSlots()).getShape() != idx.getShape())
    return emitOpError("slots must have the shape of indices");
  if (!sameTokens(in, 1, idx, 1))
    return emitOpError("indices must be [tokens..., top_k] of the input's tokens");
  return success();
}

LogicalResult ExpertFfnOp::verify() {
  if (getHidden() < 1) return emitOpError("hidden must be at least 1");
  return success();
}

LogicalResult ExpertCombineOp::verify() {
  auto eo = ranked(getExpertOutputs()), idx = ranked(getIndices()), out = ranked(getResult());
  if (ranked(getSlots()).getShape() != idx.getShape() ||
      ranked(getGates()).getShape() != idx.getShape())
    return emitOpError("indices, slots and gates must have one shape");
  if (!sameTokens(out, 1, idx, 1) || !sameDim(out, last(out), eo, 2))
    return emitOpError("result must be the indices' tokens by the experts' d_model");
  return success();
}

LogicalResult LmHeadOp::verify() {
  auto in = ranked(getInput()), out = ranked(getResult());
  if (getVocab() < 1) return emitOpError("vocab must be at least 1");
  if (!sameTokens(in, 1, out, 1) || !dimIs(out, last(out), getVocab()))
    return emitOpError("result must be [tokens..., vocab = ") << getVocab() << "]";
  return success();
}

LogicalResult ReshardOp::verify() {
  auto in = ranked(getInput()), out = ranked(getResult());
  if (in.getElementType() != out.getElementType())
    return emitOpError("must keep the element type");
  if ((getKind() == ReshardKind::all_to_all) != getDirection().has_value())
    return emitOpError(getDirection() ? "has a direction, which only an all_to_all has"
                                      : "all_to_all needs a direction: to experts or to tokens");
  if (!in.hasStaticShape() || !out.hasStaticShape()) return success();
  int64_t a = in.getNumElements(), b = out.getNumElements();
  switch (getKind()) {
  case ReshardKind::all_gather:
    if (b % a != 0) return emitOpError("all_gather result must be a multiple of its input");
    break;
  case ReshardKind::reduce_scatter:
    if (a % b != 0) return emitOpError("reduce_scatter input must be a multiple of its result");
    break;
  case ReshardKind::all_reduce:
  case ReshardKind::all_to_all:
    if (a != b) return emitOpError() << stringifyReshardKind(getKind())
                                     << " keeps the number of elements";
    break;
  }
  return success();
}

LogicalResult TransferOp::verify() {
  if (getFromStage() < 0 || getToStage() != getFromStage() + 1)
    return emitOpError("transfers from a stage to the next one, got ")
           << getFromStage() << " -> " << getToStage();
  return success();
}
