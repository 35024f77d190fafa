#include "moeplan/Dialect/Plan/PlanDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace moeplan::planir;

#include "moeplan/Dialect/Plan/PlanOpsDialect.cpp.inc"
#include "moeplan/Dialect/Plan/PlanOpsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "moeplan/Dialect/Plan/PlanOpsAttributes.cpp.inc"

#include "moeplan/Dialect/Plan/PlanOpsInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "moeplan/Dialect/Plan/PlanOps.cpp.inc"

void PlanDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moeplan/Dialect/Plan/PlanOpsAttributes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "moeplan/Dialect/Plan/PlanOps.cpp.inc"
      >();
}

int64_t moeplan::planir::elementBytes(Type t) {
  return std::max<int64_t>(1, (t.getIntOrFloatBitWidth() + 7) / 8);
}

namespace {
int64_t elements(Value v) { return cast<MemRefType>(v.getType()).getNumElements(); }
} // namespace

LogicalResult GroupOp::verify() {
  if (getRanks().empty()) return emitOpError("a group needs at least one rank");
  llvm::DenseSet<int64_t> seen;
  for (int64_t r : getRanks())
    if (r < 0 || !seen.insert(r).second)
      return emitOpError("rank ") << r << " is negative or listed twice";
  return success();
}

LogicalResult ProgramOp::verify() {
  if (getRanks().empty()) return emitOpError("a program runs on at least one rank");
  if (getFirstLayer() < 0 || getFirstLayer() > getEndLayer())
    return emitOpError("layer range [") << getFirstLayer() << ", " << getEndLayer()
                                        << ") is empty or reversed";
  auto steps = getBody().front().getOps<DecodeStepOp>();
  if (std::distance(steps.begin(), steps.end()) > 1)
    return emitOpError("has more than one plan.decode_step: a program has one prefill and one decode step");
  return success();
}

void BufferOp::getAsmResultNames(function_ref<void(Value, StringRef)> setName) {
  // SSA names follow the buffer's name where it is a valid identifier prefix.
  std::string name;
  for (char c : getName()) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  setName(getResult(), name);
}

int64_t BufferOp::getBytes() {
  auto t = cast<MemRefType>(getType());
  return t.getNumElements() * elementBytes(t.getElementType());
}

LogicalResult BufferOp::verify() {
  if (getOffset() && *getOffset() < 0) return emitOpError("offset must not be negative");
  if (auto live = getLive())
    if (live->size() != 2 || (*live)[0] < 0 || (*live)[0] > (*live)[1])
      return emitOpError("live must be [first, last] with 0 <= first <= last");
  if (auto slice = getSlice()) {
    int64_t full = 1;
    for (int64_t d : slice->getFullShape()) full *= d;
    if (elements(getResult()) > full)
      return emitOpError("holds ") << elements(getResult()) << " elements, more than its full tensor "
                                   << slice->getTensor() << " (" << full << ")";
    for (SplitAttr s : slice->getSplits())
      if (s.getDim() < 0 || s.getDim() >= int64_t(slice->getFullShape().size()) || s.getParts() < 1)
        return emitOpError("split of dim ") << s.getDim() << " into " << s.getParts()
                                            << " parts does not fit " << slice->getTensor();
  }
  return success();
}

//===----------------------------------------------------------------------------------===//
// Kernels: operand counts per kind, and element counts against the named dimensions.
//===----------------------------------------------------------------------------------===//

LogicalResult KernelOp::verify() {
  size_t nin = getInputs().size(), nout = getOutputs().size();
  auto arity = [&](std::initializer_list<size_t> ins, size_t outs) -> LogicalResult {
    if (!llvm::is_contained(ins, nin) || nout != outs)
      return emitOpError() << stringifyKernelKind(getKind()) << " takes "
                           << *ins.begin() << (ins.size() > 1 ? "+" : "") << " inputs and "
                           << outs << " outputs, got " << nin << " and " << nout;
    return success();
  };
  auto sized = [&](Value v, int64_t expect, StringRef what) -> LogicalResult {
    if (elements(v) != expect)
      return emitOpError() << stringifyKernelKind(getKind()) << " " << what << " has "
                           << elements(v) << " elements, dims say " << expect;
    return success();
  };
  KernelDimsAttr d = getDims();
  int64_t m = d.getM(), n = d.getN(), k = d.getK(), g = d.groupCount();
  switch (getKind()) {
  case KernelKind::embedding:
    if (failed(arity({2}, 1))) return failure();
    if (d.getVocabEnd() <= d.getVocabBegin())
      return emitOpError("embedding vocab range is empty");
    return success(succeeded(sized(getInputs()[0], m, "ids")) &&
                   succeeded(sized(getInputs()[1], (d.getVocabEnd() - d.getVocabBegin()) * n, "table")) &&
                   succeeded(sized(getOutputs()[0], m * n, "output")));
  case KernelKind::norm:
    if (failed(arity({2, 3}, 1))) return failure();
    return success(succeeded(sized(getInputs()[0], m * n, "input")) &&
                   succeeded(sized(getInputs()[1], n, "weight")) &&
                   succeeded(sized(getOutputs()[0], m * n, "output")));
  case KernelKind::gemm:
    if (failed(arity({2}, 1))) return failure();
    return success(succeeded(sized(getInputs()[0], m * k, "a")) &&
                   succeeded(sized(getInputs()[1], k * n, "b")) &&
                   succeeded(sized(getOutputs()[0], m * n, "c")));
  case KernelKind::grouped_gemm:
    if (failed(arity({2}, 1))) return failure();
    return success(succeeded(sized(getInputs()[0], g * m * k, "a")) &&
                   succeeded(sized(getInputs()[1], g * k * n, "b")) &&
                   succeeded(sized(getOutputs()[0], g * m * n, "c")));
  case KernelKind::kv_append:
    if (failed(arity({1}, 1))) return failure();
    if (failed(sized(getInputs()[0], m * n, "x"))) return failure();
    if (elements(getOutputs()[0]) < d.getFirstPosition() * d.getSequences() * n + m * n)
      return emitOpError() << "kv_append writes rows past its cache: " << elements(getOutputs()[0])
                           << " elements, position " << d.getFirstPosition() << " x "
                           << d.getSequences() << " sequences + " << m << " rows of " << n;
    return success();
  case KernelKind::attention: {
    if (failed(arity({3, 5}, 1))) return failure();
    int64_t q = d.getSequences() * d.getSeqLen() * d.getHeads() * d.getHeadDim();
    return success(succeeded(sized(getInputs()[0], q, "q")) &&
                   succeeded(sized(getOutputs()[0], q, "output")));
  }
  case KernelKind::activation:
    if (failed(arity({1, 2}, 1))) return failure();
    return sized(getOutputs()[0], m * n, "output");
  case KernelKind::router:
    if (failed(arity({1}, 2))) return failure();
    return success(succeeded(sized(getInputs()[0], d.getTokens() * d.getExperts(), "logits")) &&
                   succeeded(sized(getOutputs()[0], d.getTokens() * d.getTopK(), "indices")));
  case KernelKind::dispatch:
    if (failed(arity({2, 3}, 2))) return failure();
    return success(succeeded(sized(getInputs()[0], d.getTokens() * n, "input")) &&
                   succeeded(sized(getOutputs()[0],
                                   d.getExperts() * std::max<int64_t>(1, d.getGroups()) *
                                       d.getCapacity() * n,
                                   "slots_x")));
  case KernelKind::combine:
    if (failed(arity({4}, 1))) return failure();
    // y[experts, groups x capacity, n], as dispatch's slots_x.
    return success(succeeded(sized(getInputs()[0],
                                   d.getExperts() * std::max<int64_t>(1, d.getGroups()) *
                                       d.getCapacity() * n,
                                   "expert outputs")) &&
                   succeeded(sized(getOutputs()[0], d.getTokens() * n, "output")));
  case KernelKind::add:
    if (failed(arity({2}, 1))) return failure();
    return success(succeeded(sized(getInputs()[0], n, "a")) &&
                   succeeded(sized(getInputs()[1], n, "b")) &&
                   succeeded(sized(getOutputs()[0], n, "c")));
  case KernelKind::transpose:
    if (failed(arity({1}, 1))) return failure();
    return success(succeeded(sized(getInputs()[0], m * n * d.getInner(), "input")) &&
                   succeeded(sized(getOutputs()[0], m * n * d.getInner(), "output")));
  case KernelKind::sigmoid_gate:
    if (failed(arity({2}, 1))) return failure();
    return success(succeeded(sized(getInputs()[0], m * n, "input")) &&
                   succeeded(sized(getInputs()[1], m, "gate")) &&
                   succeeded(sized(getOutputs()[0], m * n, "output")));
  case KernelKind::rope: {
    if (failed(arity({1}, 1))) return failure();
    if (d.getHeadDim() % 2 || d.getSequences() < 1 || m % d.getSequences())
      return emitOpError("rope needs an even head_dim and sequences dividing m");
    int64_t x = m * d.getHeads() * d.getHeadDim();
    return success(succeeded(sized(getInputs()[0], x, "input")) &&
                   succeeded(sized(getOutputs()[0], x, "output")));
  }
  case KernelKind::bias_add:
    if (failed(arity({2}, 1))) return failure();
    return success(succeeded(sized(getInputs()[1], g * n, "bias")) &&
                   succeeded(sized(getOutputs()[0], g * m * n, "output")));
  }
  return success();
}

//===----------------------------------------------------------------------------------===//
// Collectives: counts against buffer sizes.
//===----------------------------------------------------------------------------------===//

LogicalResult AllReduceOp::verify() {
  if (elements(getInput()) != getCount() || elements(getOutput()) != getCount())
    return emitOpError("input and output must hold count = ") << getCount() << " elements";
  return success();
}

LogicalResult AllGatherOp::verify() {
  if (getCount() < 1 || elements(getInput()) != getCount() || elements(getOutput()) % getCount())
    return emitOpError("input must hold count = ")
           << getCount() << " elements and output a multiple of it";
  return success();
}

LogicalResult ReduceScatterOp::verify() {
  if (getCount() < 1 || elements(getOutput()) != getCount() || elements(getInput()) % getCount())
    return emitOpError("output must hold count = ")
           << getCount() << " elements and input a multiple of it";
  return success();
}

LogicalResult AllToAllOp::verify() {
  if (getSendCounts().size() != getRecvCounts().size() || getSendCounts().empty())
    return emitOpError("send and recv counts need one entry per group member");
  int64_t sent = 0, received = 0;
  for (int64_t c : getSendCounts()) sent += c;
  for (int64_t c : getRecvCounts()) received += c;
  if (sent != elements(getInput()) || received != elements(getOutput()) || sent != getCount())
    return emitOpError("counts (sent ") << sent << ", received " << received
                                        << ") must equal the buffers and count";
  return success();
}

LogicalResult SendOp::verify() {
  if (getPeer() < 0 || elements(getInput()) != getCount())
    return emitOpError("sends count = ") << getCount() << " elements of its buffer to a peer >= 0";
  return success();
}

LogicalResult RecvOp::verify() {
  if (getPeer() < 0 || elements(getOutput()) != getCount())
    return emitOpError("receives count = ") << getCount() << " elements from a peer >= 0";
  return success();
}
