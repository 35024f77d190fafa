// Import: description -> model dialect (the whole batch, unsharded).
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/I64Attrs.h"
#include "moeplan/Analysis/Capacity.h"
#include "moeplan/Dialect/Model/ModelDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;

namespace moeplan {

Type modelElementType(MLIRContext *ctx, desc::DType dtype) {
  Builder b(ctx);
  switch (dtype) {
  case desc::FP32: return b.getF32Type();
  case desc::BF16: return b.getBF16Type();
  case desc::FP8: return b.getFloat8E4M3FNType();
  default: return b.getF16Type();
  }
}

namespace {

Location fieldLoc(MLIRContext *ctx, const LocationIndex &index, const std::string &path) {
  SourceLocation l = index.lookup(path);
  return FileLineColLoc::get(ctx, l.file, std::max(l.line, 0), std::max(l.column, 0));
}

} // namespace

OwningOpRef<ModuleOp> importDeployment(MLIRContext *ctx, const LoadedDescription &loaded,
                                       const DeploymentSpec &spec) {
  ctx->loadDialect<model::ModelDialect, func::FuncDialect>();
  const LocationIndex &locs = loaded.locations;
  OpBuilder b(ctx);
  OwningOpRef<ModuleOp> module =
      ModuleOp::create(fieldLoc(ctx, locs, ""), StringRef(spec.name.empty() ? "deployment" : spec.name));

  SmallVector<NamedAttribute> where;
  for (const auto &[path, l] : locs.entries())
    where.push_back(b.getNamedAttr(path, FileLineColLoc::get(ctx, l.file, l.line, l.column)));
  const StrategySpec &s = spec.strategy;
  (*module)->setAttr(kDeploymentAttr, messageToAttr(ctx, loaded.deployment));
  (*module)->setAttr(kLocationsAttr, b.getDictionaryAttr(where));
  (*module)->setAttr(kMeshAttr, model::MeshAttr::get(ctx, s.tp, s.pp, s.dp, s.ep, s.expertTp,
                                                     formatRankOrder(s.rankOrder)));

  const ModelSpec &m = spec.model;
  const WorkloadSpec &w = spec.workload;
  Type et = modelElementType(ctx, m.dtype);
  // Prefill: every token of every sequence; decode: one new token per sequence.
  auto build = [&](StringRef name, int64_t seq) {
    int64_t batch = w.sequences;
    auto hidden = RankedTensorType::get({batch, seq, m.dModel}, et);
    auto ids = RankedTensorType::get({batch, seq}, b.getI32Type());
    Type input = m.vocab ? Type(ids) : Type(hidden);
    Type output = m.vocab ? Type(RankedTensorType::get({batch, seq, m.vocab}, et)) : Type(hidden);

    b.setInsertionPointToEnd(module->getBody());
    auto fn = b.create<func::FuncOp>(fieldLoc(ctx, locs, "model"), name,
                                     b.getFunctionType({input}, {output}));
    b.setInsertionPointToEnd(fn.addEntryBlock());
    Value x = fn.getArgument(0);
    I64Attrs layerAttrs(ctx);  // one per layer, shared by its ops
    auto layerAttr = [&](Operation *op, int64_t layer) {
      op->setAttr(kLayerAttr, layerAttrs.get(layer));
      return op;
    };
    auto normKind = m.norm == desc::RMS_NORM ? model::NormKind::rms_norm : model::NormKind::layer_norm;
    auto act = model::ActivationAttr::get(ctx, m.activation == desc::SWIGLU ? model::Activation::swiglu : model::Activation::gelu);
    Location normLoc = fieldLoc(ctx, locs, "model.norm");
    auto norm = [&](Value v, const std::string &prefix, int64_t layer) {
      return layerAttr(b.create<model::NormOp>(normLoc, normKind, v, b.getStringAttr(prefix),
                                               llvm::APFloat(m.normEpsilon)), layer)->getResult(0);
    };

    if (m.vocab) {
      auto e = b.create<model::EmbeddingOp>(fieldLoc(ctx, locs, "model.vocab_size"), hidden, x,
                                            b.getI64IntegerAttr(m.vocab), b.getStringAttr("embedding"));
      x = layerAttr(e, -1)->getResult(0);
    }
    // The whole batch as one dispatch group; model-shard recomputes it per dispatching rank.
    int64_t capacity = m.experts ? expertCapacity(batch * seq, m.topK, m.experts, s.capacityFactor) : 0;
    for (int64_t i = 0; i < m.layers; ++i) {
      std::string p = "layers." + std::to_string(i);
      Value n1 = norm(x, p + ".norm1", i);
      Value a = layerAttr(b.create<model::AttentionOp>(
                              fieldLoc(ctx, locs, "model.heads"), n1, b.getI64IntegerAttr(m.heads),
                              b.getI64IntegerAttr(m.kvHeads), b.getI64IntegerAttr(m.headDim),
                              b.getStringAttr(p + ".attention"),
                              m.ropeTheta > 0 ? b.getF64FloatAttr(m.ropeTheta) : FloatAttr()), i)->getResult(0);
      x = layerAttr(b.create<model::AddOp>(normLoc, x, a), i)->getResult(0);
      Value n2 = norm(x, p + ".norm2", i);
      Value f;
      if (m.isMoeLayer(i)) {
        Location el = fieldLoc(ctx, locs, "model.experts");
        auto idxT = RankedTensorType::get({batch, seq, m.topK}, b.getI32Type());
        auto gateT = RankedTensorType::get({batch, seq, m.topK}, et);
        auto router = b.create<model::RouterOp>(el, idxT, gateT, n2, b.getI64IntegerAttr(m.experts),
                                                b.getI64IntegerAttr(m.topK), b.getStringAttr(p + ".router"),
                                                m.renormalizeGates ? b.getUnitAttr() : UnitAttr());
        layerAttr(router, i);
        auto slotsT = RankedTensorType::get({m.experts, capacity, m.dModel}, et);
        auto dispatch = b.create<model::ExpertDispatchOp>(
            el, slotsT, idxT, n2, router.getIndices(),
            s.dropPolicy == desc::PROBS ? router.getGates() : Value(), b.getI64IntegerAttr(m.experts),
            b.getI64IntegerAttr(capacity));
        layerAttr(dispatch, i);
        Value y = layerAttr(b.create<model::ExpertFfnOp>(
                                fieldLoc(ctx, locs, "model.expert_hidden"), act, dispatch.getDispatched(),
                                b.getI64IntegerAttr(m.expertHidden), b.getStringAttr(p + ".experts")), i)->getResult(0);
        f = layerAttr(b.create<model::ExpertCombineOp>(el, hidden, y, router.getIndices(),
                                                       dispatch.getSlots(), router.getGates()), i)->getResult(0);
        if (m.sharedExpertHidden) {
          // Every token also passes through the shared expert; its output joins the routed.
          Location sl = fieldLoc(ctx, locs, "model.shared_expert_hidden");
          Value se = layerAttr(b.create<model::DenseFfnOp>(sl, act, n2, b.getI64IntegerAttr(m.sharedExpertHidden),
                                                           b.getStringAttr(p + ".shared_expert")), i)->getResult(0);
          if (m.sharedExpertGate)
            se = layerAttr(b.create<model::SharedExpertGateOp>(fieldLoc(ctx, locs, "model.shared_expert_gate"), n2, se,
                                                               b.getStringAttr(p + ".shared_expert_gate")), i)->getResult(0);
          f = layerAttr(b.create<model::AddOp>(sl, f, se), i)->getResult(0);
        }
      } else {
        f = layerAttr(b.create<model::DenseFfnOp>(fieldLoc(ctx, locs, "model.dense_ffn_hidden"), act, n2,
                                                  b.getI64IntegerAttr(m.denseFfnHidden),
                                                  b.getStringAttr(p + ".ffn")), i)->getResult(0);
      }
      x = layerAttr(b.create<model::AddOp>(normLoc, x, f), i)->getResult(0);
    }
    x = norm(x, "final_norm", -1);
    if (m.vocab) {
      auto head = b.create<model::LmHeadOp>(fieldLoc(ctx, locs, "model.vocab_size"), output, x,
                                            b.getI64IntegerAttr(m.vocab),
                                            b.getStringAttr(m.tieEmbeddings ? "embedding" : "lm_head"));
      x = layerAttr(head, -1)->getResult(0);
    }
    b.create<func::ReturnOp>(fn.getLoc(), x);
  };
  build("forward", w.phase == desc::DECODE ? 1 : w.seqLenMax);
  if (w.generates()) build(kDecodeStepFunc, 1);
  return module;
}

InFlightDiagnostic emitFinding(MLIRContext *ctx, const Finding &f) {
  Location loc = FileLineColLoc::get(ctx, f.location.file, std::max(f.location.line, 0),
                                     std::max(f.location.column, 0));
  std::string text = "[" + f.rule + "] " + f.message;
  switch (f.severity) {
  case Severity::Error: return emitError(loc, text);
  case Severity::Warning: return emitWarning(loc, text);
  case Severity::Note: break;
  }
  return emitRemark(loc, text);
}

func::FuncOp forwardFunction(ModuleOp module, StringRef pass) {
  auto fn = module.lookupSymbol<func::FuncOp>("forward");
  if (!fn) module.emitError(pass) << " needs func.func @forward";
  return fn;
}

SmallVector<ForwardFunction> forwardFunctions(ModuleOp module, StringRef pass) {
  SmallVector<ForwardFunction> fns;
  func::FuncOp fn = forwardFunction(module, pass);
  if (!fn) return fns;
  fns.push_back({fn, false});
  if (auto step = module.lookupSymbol<func::FuncOp>(kDecodeStepFunc)) fns.push_back({step, true});
  return fns;
}

LocationIndex locationsOf(ModuleOp module) {
  LocationIndex index;
  std::string file;
  if (auto where = module->getAttrOfType<DictionaryAttr>(kLocationsAttr)) {
    for (NamedAttribute e : where) {
      auto l = dyn_cast<FileLineColLoc>(e.getValue());
      if (!l) continue;
      file = l.getFilename().str();
      index.add(e.getName().str(), SourceLocation{file, int(l.getLine()), int(l.getColumn())});
    }
  }
  if (auto l = dyn_cast<FileLineColLoc>(module.getLoc())) index.setFile(l.getFilename().str(), int(l.getLine()));
  else index.setFile(file, 1);
  return index;
}

std::optional<DeploymentSpec> deploymentOf(ModuleOp module, std::vector<Finding> *fieldFindings) {
  auto attr = module->getAttrOfType<DictionaryAttr>(kDeploymentAttr);
  if (!attr) {
    module.emitError("the module carries no deployment (") << kDeploymentAttr << ")";
    return std::nullopt;
  }
  // Every pass of a compile reads the same attribute: it is resolved once per context and
  // attribute (the model dialect's memo slot), not once per pass.
  struct Resolved {
    DeploymentSpec spec;
    std::vector<Finding> findings;
  };
  auto *dialect = module->getContext()->getLoadedDialect<model::ModelDialect>();
  if (dialect) {
    std::lock_guard<std::mutex> lock(dialect->resolvedDeploymentMutex);
    if (dialect->resolvedDeployment.key == attr) {
      const auto &r = *static_cast<const Resolved *>(dialect->resolvedDeployment.value.get());
      if (fieldFindings) fieldFindings->insert(fieldFindings->end(), r.findings.begin(), r.findings.end());
      return r.spec;
    }
  }
  desc::Deployment d;
  std::string error;
  if (!attrToMessage(attr, d, error)) {
    module.emitError() << kDeploymentAttr << "." << error;
    return std::nullopt;
  }
  std::vector<Finding> findings;
  std::optional<DeploymentSpec> spec = resolveSpec(d, findings);
  if (!spec) {
    for (const Finding &f : findings)
      if (f.severity == Severity::Error)
        module.emitError() << "[" << f.rule << "] " << f.fieldPath << ": " << f.message;
    return std::nullopt;
  }
  if (fieldFindings) fieldFindings->insert(fieldFindings->end(), findings.begin(), findings.end());
  if (dialect) {
    std::lock_guard<std::mutex> lock(dialect->resolvedDeploymentMutex);
    dialect->resolvedDeployment = {attr, std::make_shared<const Resolved>(Resolved{*spec, std::move(findings)})};
  }
  return spec;
}

} // namespace moeplan
