// model-pipeline-partition: a stage for every op, transfers across stage boundaries.
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/I64Attrs.h"
#include "moeplan/Compiler/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace moeplan {
#define GEN_PASS_DEF_MODELPIPELINEPARTITION
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;

namespace moeplan {
namespace {

// Stage of each layer: the explicit placement's layer ranges when every stage gives one,
// else pp contiguous equal blocks.
std::vector<int64_t> stageOfLayers(const DeploymentSpec &d) {
  const StrategySpec &s = d.strategy;
  std::vector<int64_t> stage(d.model.layers, -1);
  bool explicitRanges = !s.placement.empty();
  for (const StagePlacementSpec &p : s.placement)
    explicitRanges &= p.firstLayer.has_value() && p.lastLayer.has_value();
  if (explicitRanges) {
    for (const StagePlacementSpec &p : s.placement)
      for (int64_t i = *p.firstLayer; i <= *p.lastLayer && i < d.model.layers; ++i) stage[i] = p.stage;
  } else {
    int64_t per = d.model.layers / s.pp;
    for (int64_t i = 0; i < d.model.layers; ++i) stage[i] = i / per;
  }
  return stage;
}

struct ModelPipelinePartitionPass
    : impl::ModelPipelinePartitionBase<ModelPipelinePartitionPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<DeploymentSpec> spec = deploymentOf(module);
    if (!spec) return signalPassFailure();
    SmallVector<ForwardFunction> fns = forwardFunctions(module, getArgument());
    if (fns.empty()) return signalPassFailure();
    std::vector<int64_t> stageOf = stageOfLayers(*spec);
    for (const ForwardFunction &f : fns)
      if (failed(partition(f.fn, stageOf, spec->strategy.pp - 1))) return signalPassFailure();
  }

  // Every op of `fn` to its stage, and a transfer per stage boundary a value crosses.
  LogicalResult partition(func::FuncOp fn, const std::vector<int64_t> &stageOf, int64_t last) {
    OpBuilder b(fn.getContext());
    I64Attrs stageAttrs(fn.getContext());  // one per stage, shared by its ops

    // Ops outside the layers go with their neighbours: before the first layer to stage 0,
    // after the last one to the last stage.
    bool seenLayer = false;
    for (Operation &op : fn.getBody().front()) {
      if (isa<func::ReturnOp>(op)) continue;
      // A transfer from an earlier run of this pass already sits at its receiving stage.
      if (auto t = dyn_cast<model::TransferOp>(op)) {
        op.setAttr(kStageAttr, b.getI64IntegerAttr(t.getToStage()));
        continue;
      }
      auto layer = op.getAttrOfType<IntegerAttr>(kLayerAttr);
      int64_t l = layer ? layer.getInt() : -1;
      int64_t stage;
      if (l >= 0 && l < int64_t(stageOf.size())) {
        seenLayer = true;
        stage = stageOf[l];
        if (stage < 0) {
          return op.emitOpError("layer ") << l << " is in no stage of the placement";
        }
      } else {
        stage = seenLayer ? last : 0;
      }
      op.setAttr(kStageAttr, stageAttrs.get(stage));
    }

    // A value used by a later stage crosses every boundary in between, one transfer each.
    SmallVector<Operation *> ops;
    for (Operation &op : fn.getBody().front()) ops.push_back(&op);
    for (Operation *op : ops) {
      auto stageAttr = op->getAttrOfType<IntegerAttr>(kStageAttr);
      if (!stageAttr) continue;
      for (Value v : op->getResults()) {
        int64_t from = stageAttr.getInt();
        SmallVector<OpOperand *> later;
        for (OpOperand &use : v.getUses()) {
          if (isa<model::TransferOp>(use.getOwner())) continue;  // already crosses
          auto us = use.getOwner()->getAttrOfType<IntegerAttr>(kStageAttr);
          if (us && us.getInt() > from) later.push_back(&use);
        }
        if (later.empty()) continue;
        if (!isa<RankedTensorType>(v.getType()) || cast<RankedTensorType>(v.getType()).getRank() != 2 ||
            !isa<FloatType>(cast<RankedTensorType>(v.getType()).getElementType())) {
          return op->emitOpError("only the residual stream may cross a pipeline stage boundary");
        }
        Value cur = v;
        Operation *after = op;
        int64_t to = 0;
        for (OpOperand *use : later)
          to = std::max(to, use->getOwner()->getAttrOfType<IntegerAttr>(kStageAttr).getInt());
        std::vector<Value> atStage(to + 1);
        atStage[from] = v;
        for (int64_t s = from; s < to; ++s) {
          b.setInsertionPointAfter(after);
          auto t = b.create<model::TransferOp>(op->getLoc(), cur, b.getI64IntegerAttr(s),
                                               b.getI64IntegerAttr(s + 1));
          t->setAttr(kStageAttr, b.getI64IntegerAttr(s + 1));
          cur = atStage[s + 1] = t;
          after = t;
        }
        for (OpOperand *use : later)
          use->set(atStage[use->getOwner()->getAttrOfType<IntegerAttr>(kStageAttr).getInt()]);
      }
    }
    return success();
  }
};

} // namespace
} // namespace moeplan
