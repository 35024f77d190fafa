// model-shard: local shapes of one micro-batch on one rank, and explicit reshards.
//
// Residual stream: [T/tp, D] (tokens split over tp). Around attention, the dense FFN and the
// LM head: all-gather over tp -> [T, D], column- then row-parallel weights, and (except the
// LM head, whose logits stay split over the vocabulary) reduce-scatter of the partial sums
// back to [T/tp, D]. A decode step whose T tokens tp does not divide keeps [T, D] on every
// tp rank instead (no sequence parallelism): no all-gather, and an all-reduce of the
// partial sums. MoE: each rank routes and dispatches its own T/tp (or T) tokens into
// [E, C, D]; all-to-all over ep gives each rank its E/ep experts' slots from every ep peer
// [E/ep, ep C, D]; with expert_tp > 1 an all-gather over etp adds the etp peers' slots, the
// expert hidden is split over etp and a reduce-scatter sums the partial outputs; the reverse
// all-to-all brings results home for combine.
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/I64Attrs.h"
#include "moeplan/Compiler/LocalShapes.h"
#include "moeplan/Compiler/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace moeplan {
#define GEN_PASS_DEF_MODELSHARD
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;

namespace moeplan {
namespace {

struct ModelShardPass : impl::ModelShardBase<ModelShardPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<DeploymentSpec> spec = deploymentOf(module);
    if (!spec) return signalPassFailure();
    SmallVector<ForwardFunction> fns = forwardFunctions(module, getArgument());
    if (fns.empty()) return signalPassFailure();
    if (module->hasAttr(kShardingAttr)) return;  // already sharded
    for (const ForwardFunction &f : fns)
      if (failed(shard(f.fn, *spec, f.decodeStep ? ForwardPart::DecodeStep : ForwardPart::Whole)))
        return signalPassFailure();
    module->setAttr(kShardingAttr, describe(module.getContext(), *spec));
  }

  static DictionaryAttr describe(MLIRContext *ctx, const DeploymentSpec &d) {
    LocalShapes l = localShapes(d);
    Builder b(ctx);
    auto i = [&](int64_t v) { return b.getI64IntegerAttr(v); };
    return b.getDictionaryAttr({
        b.getNamedAttr("sequences_per_micro_batch", i(l.sequences)),
        b.getNamedAttr("tokens", i(l.tokens)),
        b.getNamedAttr("tokens_per_rank", i(l.tokensPerRank)),
        b.getNamedAttr("capacity", i(l.capacity)),
        b.getNamedAttr("micro_batches", i(d.strategy.planMicroBatches())),
    });
  }

  LogicalResult shard(func::FuncOp fn, const DeploymentSpec &d, ForwardPart part) {
    MLIRContext *ctx = fn.getContext();
    const StrategySpec &s = d.strategy;
    const ModelSpec &m = d.model;
    LocalShapes l = localShapes(d, part);
    OpBuilder b(ctx);
    // Every op of every layer carries its layer's attribute.
    I64Attrs ints(ctx);
    auto i64 = [&](int64_t v) { return ints.get(v); };
    Type et = modelElementType(ctx, m.dtype);
    auto tensor = [&](ArrayRef<int64_t> shape, Type t) { return RankedTensorType::get(shape, t); };
    auto residual = tensor({l.tokensPerRank, m.dModel}, et);
    auto gathered = tensor({l.tokens, m.dModel}, et);
    auto topk = [&](Type t) { return tensor({l.tokensPerRank, m.topK}, t); };

    Block &body = fn.getBody().front();
    b.setInsertionPointToStart(&body);
    IRMapping map;
    // `direction`: an all_to_all's (to experts or back to tokens), none for the others.
    auto reshard = [&](Location loc, Value v, model::ReshardKind kind, StringRef axis,
                       Type to, int64_t layer,
                       std::optional<model::ExchangeDirection> direction = std::nullopt) -> Value {
      auto op = b.create<model::ReshardOp>(
          loc, to, v, kind, b.getStringAttr(axis),
          direction ? model::ExchangeDirectionAttr::get(b.getContext(), *direction)
                    : model::ExchangeDirectionAttr());
      op->setAttr(kLayerAttr, i64(layer));
      return op;
    };
    // Residual stream <-> whole tokens for the tp-parallel weights, skipped when tp == 1.
    // With sequence parallelism an all-gather before and a reduce-scatter of the partial sums
    // after; without, the residual is already whole and the partial sums are all-reduced.
    auto gatherTp = [&](Location loc, Value v, int64_t layer) {
      if (s.tp == 1 || !l.sequenceParallel) return v;
      return Value(reshard(loc, v, model::ReshardKind::all_gather, "tp", gathered, layer));
    };
    auto scatterTp = [&](Location loc, Value v, int64_t layer) {
      if (s.tp == 1) return v;
      return Value(reshard(loc, v,
                           l.sequenceParallel ? model::ReshardKind::reduce_scatter
                                              : model::ReshardKind::all_reduce,
                           "tp", residual, layer));
    };

    // New argument and result types.
    Type inT = m.vocab ? Type(tensor({l.tokens}, b.getI32Type())) : Type(residual);
    Type outT = m.vocab ? Type(tensor({l.tokens, l.vocab}, et)) : Type(residual);
    Value oldArg = fn.getArgument(0);
    Value arg = body.addArgument(inT, oldArg.getLoc());
    map.map(oldArg, arg);

    SmallVector<Operation *> old;
    for (Operation &op : body) old.push_back(&op);
    for (Operation *op : old) {
      Location loc = op->getLoc();
      int64_t layer = -1;
      if (auto a = op->getAttrOfType<IntegerAttr>(kLayerAttr)) layer = a.getInt();
      auto keep = [&](Operation *created) {
        created->setAttr(kLayerAttr, i64(layer));
        for (auto [o, n] : llvm::zip(op->getResults(), created->getResults())) map.map(o, n);
        return created;
      };
      Value in0 = op->getNumOperands() ? map.lookupOrDefault(op->getOperand(0)) : Value();

      if (auto e = dyn_cast<model::EmbeddingOp>(op)) {
        // Vocabulary-parallel: each rank holds vocab/tp rows; partial sums over tp.
        Value x = b.create<model::EmbeddingOp>(loc, gathered, in0, i64(l.vocab),
                                               e.getWeightPrefixAttr());
        x.getDefiningOp()->setAttr(kLayerAttr, i64(layer));
        map.map(e.getResult(), scatterTp(loc, x, layer));
      } else if (auto n = dyn_cast<model::NormOp>(op)) {
        keep(b.create<model::NormOp>(loc, n.getKind(), in0, n.getWeightPrefixAttr(),
                                     n.getEpsilon()));
      } else if (auto a = dyn_cast<model::AttentionOp>(op)) {
        Value x = gatherTp(loc, in0, layer);
        auto att = b.create<model::AttentionOp>(loc, x, i64(l.heads),
                                                i64(l.kvHeads), a.getHeadDimAttr(),
                                                a.getWeightPrefixAttr(), a.getRopeThetaAttr());
        att->setAttr(kLayerAttr, i64(layer));
        map.map(a.getResult(), scatterTp(loc, att, layer));
      } else if (auto add = dyn_cast<model::AddOp>(op)) {
        keep(b.create<model::AddOp>(loc, in0, map.lookup(add.getRhs())));
      } else if (auto r = dyn_cast<model::RouterOp>(op)) {
        keep(b.create<model::RouterOp>(loc, topk(b.getI32Type()), topk(et), in0, r.getExpertsAttr(),
                                       r.getTopKAttr(), r.getWeightPrefixAttr(),
                                       r.getRenormalizeAttr()));
      } else if (auto dsp = dyn_cast<model::ExpertDispatchOp>(op)) {
        keep(b.create<model::ExpertDispatchOp>(
            loc, tensor({m.experts, l.capacity, m.dModel}, et), topk(b.getI32Type()), in0,
            map.lookup(dsp.getIndices()), dsp.getGates() ? map.lookup(dsp.getGates()) : Value(),
            dsp.getExpertsAttr(), i64(l.capacity)));
      } else if (auto f = dyn_cast<model::ExpertFfnOp>(op)) {
        Value x = in0;
        auto slots = [&](int64_t rows) { return tensor({l.localExperts, rows, m.dModel}, et); };
        if (s.ep > 1) {
          x = reshard(loc, x, model::ReshardKind::all_to_all, "ep", slots(s.ep * l.capacity), layer,
                      model::ExchangeDirection::experts);
        }
        if (s.expertTp > 1)
          x = reshard(loc, x, model::ReshardKind::all_gather, "etp", slots(l.expertRows), layer);
        Value y = b.create<model::ExpertFfnOp>(loc, f.getActivationAttr(), x,
                                               i64(l.expertHidden),
                                               f.getWeightPrefixAttr());
        y.getDefiningOp()->setAttr(kLayerAttr, i64(layer));
        if (s.expertTp > 1)
          y = reshard(loc, y, model::ReshardKind::reduce_scatter, "etp", slots(s.ep * l.capacity), layer);
        if (s.ep > 1) {
          y = reshard(loc, y, model::ReshardKind::all_to_all, "ep",
                      tensor({m.experts, l.capacity, m.dModel}, et), layer,
                      model::ExchangeDirection::tokens);
        }
        map.map(f.getResult(), y);
      } else if (auto c = dyn_cast<model::ExpertCombineOp>(op)) {
        keep(b.create<model::ExpertCombineOp>(loc, residual, in0, map.lookup(c.getIndices()),
                                              map.lookup(c.getSlots()), map.lookup(c.getGates())));
      } else if (auto f = dyn_cast<model::DenseFfnOp>(op)) {
        Value x = gatherTp(loc, in0, layer);
        // Column- then row-parallel: the hidden (dense FFN's or a shared expert's) over tp.
        Value y = b.create<model::DenseFfnOp>(loc, f.getActivationAttr(), x,
                                              i64(f.getHidden() / s.tp),
                                              f.getWeightPrefixAttr());
        y.getDefiningOp()->setAttr(kLayerAttr, i64(layer));
        map.map(f.getResult(), scatterTp(loc, y, layer));
      } else if (auto g = dyn_cast<model::SharedExpertGateOp>(op)) {
        // Token-local: each rank gates its own tokens' rows; the weight is replicated.
        keep(b.create<model::SharedExpertGateOp>(loc, in0, map.lookup(g.getValue()),
                                                 g.getWeightPrefixAttr()));
      } else if (auto h = dyn_cast<model::LmHeadOp>(op)) {
        Value x = gatherTp(loc, in0, layer);
        keep(b.create<model::LmHeadOp>(loc, outT, x, i64(l.vocab), h.getWeightPrefixAttr()));
      } else if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        b.create<func::ReturnOp>(loc, in0);
      } else {
        return op->emitOpError("model-shard does not know how to shard this op");
      }
    }
    for (Operation *op : llvm::reverse(old)) {
      op->dropAllUses();
      op->erase();
    }
    body.eraseArgument(0);
    fn.setFunctionType(b.getFunctionType({inT}, {outT}));
    return success();
  }
};

} // namespace
} // namespace moeplan
