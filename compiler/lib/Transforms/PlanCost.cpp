// plan-cost: the work of every instruction, counted from its shapes.
//
// FLOPs count matrix multiplies (2 x M x N x K). Two figures: `flops`, what the kernel
// executes, and `model_flops`, Narayanan et al.'s (2021) convention that GPU utilization is
// quoted in. They differ where work is skipped or padded:
// - causal attention: a causal kernel computes query i's scores against keys 0..i only, so
//   QK^T and PV execute 2 x head_dim x (keys before the chunk + i + 1) multiply-adds per
//   query and head; the model counts the full score matrix (every query against every key);
// - `routed` expert GEMMs: the plan's figure is the capacity's (every slot of every expert
//   filled; the simulator predicts the filled share), the model's the choices the layer's
//   tokens route (tokens x top_k, spread over the experts), without padding or drops.
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

#include <algorithm>
#include <cmath>
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

FailureOr<CostAttr> routedWithoutDispatch(Operation *op) {
  op->emitError("plan-cost: a routed instruction needs its layer's DISPATCH issued before it "
                "in the program");
  return failure();
}

// Bytes of `positions` cached positions of a decode attention's cache operand.
std::optional<int64_t> cachedBytes(KernelOp k, Value cache, int64_t positions) {
  auto t = cast<MemRefType>(cache.getType());
  return product({positions, k.getDims().getSequences(), t.getDimSize(1), elementBytes(t.getElementType())});
}

// Share of a routed expert GEMM's capacity rows that the model counts: the dispatching
// rank's choices (tokens x top_k) over its slots (experts x capacity x groups). The same
// share holds on every expert rank: each receives, on average, a source's share of rows from
// every source whose rows it computes.
std::optional<double> routedShare(KernelOp dispatch) {
  if (!dispatch) return std::nullopt;
  const KernelDimsAttr d = dispatch.getDims();
  const int64_t slots = d.getExperts() * d.getCapacity() * d.groupCount();
  if (slots <= 0) return std::nullopt;
  return std::min(1.0, double(d.getTokens()) * double(d.getTopK()) / double(slots));
}

FailureOr<CostAttr> kernelCost(KernelOp k, KernelOp dispatch, int64_t step = 0) {
  const KernelDimsAttr d = k.getDims();
  const bool decodeAttention = k.getKind() == KernelKind::attention && k.getInputs().size() > 3;
  int64_t moved = 0;
  auto add = [&](std::optional<int64_t> b) { return b && !__builtin_add_overflow(moved, *b, &moved); };
  for (auto [i, v] : llvm::enumerate(k.getInputs())) {
    std::optional<int64_t> b = decodeAttention && i >= 3 ? cachedBytes(k, v, d.getKvLen() + step)
                                                         : bytesOf(v);
    // ARGMAX reads the logits of the last position only.
    if (b && k.getKind() == KernelKind::argmax) *b /= std::max<int64_t>(1, d.getSeqLen());
    if (!add(b)) return overflow(k);
  }
  for (auto [i, v] : llvm::enumerate(k.getOutputs())) {
    std::optional<int64_t> b = bytesOf(v);
    if (k.getKind() == KernelKind::kv_append) b = bytesOf(k.getInputs()[0]);
    // ARGMAX_MERGE writes one column of the generated ids.
    if (k.getKind() == KernelKind::argmax_merge && i == 1) b = product({d.getM(), 4});
    if (!add(b)) return overflow(k);
  }
  std::optional<int64_t> flops = 0, modelFlops = 0;
  switch (k.getKind()) {
  case KernelKind::gemm:
    modelFlops = flops = product({2, d.getM(), d.getN(), d.getK()});
    break;
  case KernelKind::grouped_gemm:
    modelFlops = flops = product({2, d.groupCount(), d.getM(), d.getN(), d.getK()});
    if (flops && k.getRouted()) {
      std::optional<double> share = routedShare(dispatch);
      if (!share) return routedWithoutDispatch(k);
      modelFlops = int64_t(std::llround(double(*flops) * *share));
    }
    break;
  case KernelKind::attention: {
    // Per query row, QK^T and PV: 2 x (2 x keys x head_dim). A prefill's queries are the
    // last seq_len of its kv_len positions; query i sees the keys before the chunk and i + 1
    // of its own. A decode step's one query sees the kv_len (+ step) cached keys and itself.
    const int64_t s = d.getSeqLen();
    const int64_t before = decodeAttention ? d.getKvLen() + step : d.getKvLen() - s;
    std::optional<int64_t> causal = product({s, before});
    std::optional<int64_t> own = product({s, s + 1});
    std::optional<int64_t> full = product({s, before + s});
    if (!causal || !own || !full || __builtin_add_overflow(*causal, *own / 2, &*causal))
      return overflow(k);
    flops = product({4, d.getSequences(), d.getHeads(), *causal, d.getHeadDim()});
    modelFlops = product({4, d.getSequences(), d.getHeads(), *full, d.getHeadDim()});
    break;
  }
  default:
    break;
  }
  if (!flops || !modelFlops) return overflow(k);
  return CostAttr::get(k.getContext(), *flops, moved, 0, *modelFlops);
}

FailureOr<CostAttr> collectiveCost(Operation *op) {
  std::optional<int64_t> s;
  if (isa<AllReduceOp, SendOp>(op)) s = bytesOf(op->getOperand(0));
  else if (auto r = dyn_cast<RecvOp>(op)) s = bytesOf(r.getOutput());
  else if (isa<AllGatherOp>(op)) s = bytesOf(op->getOperand(1));
  else s = bytesOf(op->getOperand(0));  // reduce-scatter and all-to-all: the whole input
  if (!s) return overflow(op);
  return CostAttr::get(op->getContext(), 0, 0, *s, 0);
}

struct PlanCostPass : impl::PlanCostBase<PlanCostPass> {
  void runOnOperation() override {
    // The latest DISPATCH of each layer in the program being walked (issue order): the one
    // whose rows a routed instruction works on.
    llvm::DenseMap<int64_t, KernelOp> dispatchOf;
    WalkResult walk = getOperation().walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (isa<ProgramOp>(op)) dispatchOf.clear();
      auto inst = dyn_cast<InstructionOpInterface>(op);
      if (!inst) return WalkResult::advance();
      auto k = dyn_cast<KernelOp>(op);
      if (k && k.getKind() == KernelKind::dispatch) dispatchOf[k.getLayer()] = k;
      KernelOp dispatch = k ? dispatchOf.lookup(k.getLayer()) : KernelOp();
      FailureOr<CostAttr> cost = k ? kernelCost(k, dispatch) : collectiveCost(op);
      if (failed(cost)) return WalkResult::interrupt();
      inst.setCostAttr(*cost);
      if (k && k.getDims().getPerStep()) {
        FailureOr<CostAttr> next = kernelCost(k, dispatch, 1);
        if (failed(next)) return WalkResult::interrupt();
        inst.setStepCostAttr(CostAttr::get(op->getContext(), next->getFlops() - cost->getFlops(),
                                               next->getMemoryBytes() - cost->getMemoryBytes(), 0,
                                               next->getModelFlops() - cost->getModelFlops()));
      }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted()) signalPassFailure();
  }
};

} // namespace
} // namespace moeplan
