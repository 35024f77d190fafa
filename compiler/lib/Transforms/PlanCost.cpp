// plan-cost: the work of every instruction, counted from its shapes.
//
// FLOPs count matrix multiplies (2 x M x N x K), as the published formulas do (Narayanan et
// al. 2021); attention counts its full score matrix, QK^T and PV, as that formula does.
// Elementwise kernels are costed by the bytes they move. Communication bytes are the
// nccl-tests S of the operation: the buffer for all-reduce and send/recv, the whole gathered
// (or scattered) buffer for all-gather, reduce-scatter and all-to-all.
//
// Caches count by the rows a kernel touches, not the buffer: a decode attention reads kv_len
// positions, KV_APPEND writes its x's rows. A GENERATE decode step's per_step kernels get the
// cost of step 0 and, as `step_cost`, what each later step adds (one more cached position).
// Greedy sampling counts what it touches: ARGMAX the last position's logits, ARGMAX_MERGE
// one column of the generated ids.
#include "moeplan/Compiler/Passes.h"
#include "moeplan/Compiler/PlanOrder.h"

#include "mlir/IR/Builders.h"

#include <optional>

namespace moeplan {
#define GEN_PASS_DEF_PLANCOST
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;
using namespace moeplan::planir;

namespace moeplan {
namespace {

// Products of shapes can pass 64 bits only for absurd sizes, which must fail the pass with
// the instruction named rather than become a wrapped figure.
std::optional<int64_t> product(std::initializer_list<int64_t> factors) {
  int64_t r = 1;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(r, f, &r)) return std::nullopt;
  return r;
}

std::optional<int64_t> bytesOf(Value v) {
  auto t = cast<MemRefType>(v.getType());
  return product({t.getNumElements(), elementBytes(t.getElementType())});
}

FailureOr<CostAttr> overflow(Operation *op) {
  op->emitError("plan-cost: the instruction's FLOPs or bytes overflow 64 bits");
  return failure();
}

// Bytes of `positions` cached positions of a decode attention's cache operand.
std::optional<int64_t> cachedBytes(KernelOp k, Value cache, int64_t positions) {
  auto t = cast<MemRefType>(cache.getType());
  return product({positions, k.dim("sequences"), t.getDimSize(1), elementBytes(t.getElementType())});
}

FailureOr<CostAttr> kernelCost(KernelOp k, int64_t step = 0) {
  const bool decodeAttention = k.getKind() == KernelKind::attention && k.getInputs().size() > 3;
  int64_t moved = 0;
  auto add = [&](std::optional<int64_t> b) { return b && !__builtin_add_overflow(moved, *b, &moved); };
  for (auto [i, v] : llvm::enumerate(k.getInputs())) {
    std::optional<int64_t> b = decodeAttention && i >= 3 ? cachedBytes(k, v, k.dim("kv_len") + step)
                                                         : bytesOf(v);
    // ARGMAX reads the logits of the last position only.
    if (b && k.getKind() == KernelKind::argmax) *b /= std::max<int64_t>(1, k.dim("seq_len"));
    if (!add(b)) return overflow(k);
  }
  for (auto [i, v] : llvm::enumerate(k.getOutputs())) {
    std::optional<int64_t> b = bytesOf(v);
    if (k.getKind() == KernelKind::kv_append) b = bytesOf(k.getInputs()[0]);
    // ARGMAX_MERGE writes one column of the generated ids.
    if (k.getKind() == KernelKind::argmax_merge && i == 1) b = product({k.dim("m"), 4});
    if (!add(b)) return overflow(k);
  }
  std::optional<int64_t> flops = 0;
  switch (k.getKind()) {
  case KernelKind::gemm:
    flops = product({2, k.dim("m"), k.dim("n"), k.dim("k")});
    break;
  case KernelKind::grouped_gemm:
    flops = product({2, k.dim("groups", 1), k.dim("m"), k.dim("n"), k.dim("k")});
    break;
  case KernelKind::attention:
    // QK^T and PV: 2 x (2 x seq_len x kv_len x head_dim) per head and sequence.
    flops = product({4, k.dim("sequences"), k.dim("heads"), k.dim("seq_len"),
                     k.dim("kv_len") + step + (decodeAttention ? 1 : 0), k.dim("head_dim")});
    break;
  default:
    break;
  }
  if (!flops) return overflow(k);
  return CostAttr::get(k.getContext(), *flops, moved, 0);
}

FailureOr<CostAttr> collectiveCost(Operation *op) {
  std::optional<int64_t> s;
  if (isa<AllReduceOp, SendOp>(op)) s = bytesOf(op->getOperand(0));
  else if (auto r = dyn_cast<RecvOp>(op)) s = bytesOf(r.getOutput());
  else if (isa<AllGatherOp>(op)) s = bytesOf(op->getOperand(1));
  else s = bytesOf(op->getOperand(0));  // reduce-scatter and all-to-all: the whole input
  if (!s) return overflow(op);
  return CostAttr::get(op->getContext(), 0, 0, *s);
}

struct PlanCostPass : impl::PlanCostBase<PlanCostPass> {
  void runOnOperation() override {
    WalkResult walk = getOperation().walk([](Operation *op) {
      if (!isInstruction(op)) return WalkResult::advance();
      FailureOr<CostAttr> cost =
          isa<KernelOp>(op) ? kernelCost(cast<KernelOp>(op)) : collectiveCost(op);
      if (failed(cost)) return WalkResult::interrupt();
      op->setAttr("cost", *cost);
      auto k = dyn_cast<KernelOp>(op);
      if (k && k.getDims().get("per_step")) {
        FailureOr<CostAttr> next = kernelCost(k, 1);
        if (failed(next)) return WalkResult::interrupt();
        op->setAttr("step_cost", CostAttr::get(op->getContext(), next->getFlops() - cost->getFlops(),
                                               next->getMemoryBytes() - cost->getMemoryBytes(), 0));
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted()) signalPassFailure();
  }
};

} // namespace
} // namespace moeplan
