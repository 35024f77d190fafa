// model-to-plan: the sharded, partitioned model -> communicator groups and one plan.program
// per pipeline stage holding one micro-batch's instructions (plan-schedule expands them). A
// GENERATE workload's program lowers @forward (the prefill), a plan.decode_step, then
// @decode_step, both over the same weights and KV caches.
//
// Weights are named as in the unsharded checkpoint (docs in runtime/schema/plan.proto):
//   embedding.weight [vocab, d]              layers.i.norm{1,2}.weight/.bias [d]
//   layers.i.attention.w{q,k,v} [d, heads x head_dim]   layers.i.attention.wo [heads x hd, d]
//   layers.i.router.weight [d, experts]      layers.i.experts.w_{gate,up} [experts, d, hidden]
//   layers.i.experts.w_down [experts, hidden, d]         layers.i.ffn.w_{gate,up,down}
//   final_norm.weight [d]                    lm_head.weight [d, vocab]
#include "moeplan/Analysis/DeviceMesh.h"
#include "moeplan/Compiler/I64Attrs.h"
#include "moeplan/Compiler/Import.h"
#include "moeplan/Compiler/LocalShapes.h"
#include "moeplan/Compiler/Passes.h"
#include "moeplan/Support/CheckedMath.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/SaveAndRestore.h"

#include <map>
#include <unordered_map>

namespace moeplan {
#define GEN_PASS_DEF_MODELTOPLAN
#include "moeplan/Compiler/Passes.h.inc"
} // namespace moeplan

using namespace mlir;
using namespace moeplan::planir;

namespace moeplan {
namespace {

struct Split {
  int64_t dim;
  const char *axis;
  int64_t parts;
};

// Emits one stage's program.
class StageLowering {
public:
  StageLowering(ProgramOp program, const DeploymentSpec &d)
      : ctx_(program.getContext()), b_(ctx_), d_(d), m_(d.model), s_(d.strategy),
        l_(localShapes(d)), et_(modelElementType(ctx_, d.model.dtype)) {
    body_ = new Block();
    program.getBody().push_back(body_);
    b_.setInsertionPointToEnd(body_);
  }

  LogicalResult lower(Operation *op);

  // From here on, lower the decode step of a GENERATE workload.
  void beginDecodeStep() {
    b_.create<DecodeStepOp>(b_.getUnknownLoc());
    l_ = localShapes(d_, ForwardPart::DecodeStep);
    decodeStep_ = true;
    buffers_.clear();
    pendingBias_.clear();
  }

private:
  MLIRContext *ctx_;
  OpBuilder b_;
  const DeploymentSpec &d_;
  const ModelSpec &m_;
  const StrategySpec &s_;
  LocalShapes l_;
  Type et_;
  Block *body_;
  bool decodeStep_ = false;  // lowering a GENERATE workload's @decode_step
  std::map<std::string, Value> caches_;  // a GENERATE workload's KV caches, by tensor
  Operation *lastWeight_ = nullptr;  // weights lead the program, in order of first use
  DenseMap<Value, Value> buffers_;
  std::map<std::string, Value> weights_;
  int64_t layer_ = -1;
  std::string prefix_;
  // Lowering the expert step (between a layer's dispatch and combine): its instructions work
  // on the rows routing fills, and are marked `routed`.
  bool routed_ = false;

  Type i32() { return b_.getI32Type(); }
  // Every instruction carries several i64 attributes (layer, micro-batch, stream, peers),
  // few distinct.
  IntegerAttr i64(int64_t v) { return i64s_.get(v); }
  I64Attrs i64s_{ctx_};

  SliceAttr slice(StringRef tensor, ArrayRef<int64_t> full, ArrayRef<Split> splits, int64_t mb) {
    SmallVector<SplitAttr> ss;
    for (const Split &s : splits) ss.push_back(SplitAttr::get(ctx_, s.dim, s.axis, s.parts));
    return SliceAttr::get(ctx_, tensor, full, ss, mb);
  }

  // Buffer names are unique in a program: a repeated one gets ".2", ".3", ...
  Value buffer(BufferKind kind, StringRef name, ArrayRef<int64_t> shape, Type t,
               SliceAttr sl = {}) {
    int &seen = names_[name];
    std::string unique = ++seen == 1 ? name.str() : name.str() + "." + std::to_string(seen);
    return b_.create<BufferOp>(b_.getUnknownLoc(), MemRefType::get(shape, t, identityLayout(shape.size())),
                               BufferKindAttr::get(ctx_, kind), b_.getStringAttr(unique), sl,
                               IntegerAttr(), DenseI64ArrayAttr());
  }
  llvm::StringMap<int> names_;
  std::unordered_map<KernelDims, KernelDimsAttr, KernelDims::Hash> dims_;
  // MemRefType::get builds the identity layout's affine map anew on every call without one.
  MemRefLayoutAttrInterface identityLayout(size_t rank) {
    if (identity_.size() <= rank) identity_.resize(rank + 1);
    if (!identity_[rank])
      identity_[rank] = AffineMapAttr::get(AffineMap::getMultiDimIdentityMap(unsigned(rank), ctx_));
    return identity_[rank];
  }
  SmallVector<MemRefLayoutAttrInterface> identity_;
  Value activation(StringRef suffix, ArrayRef<int64_t> shape, Type t = {}) {
    return buffer(BufferKind::activation, prefix_ + "." + suffix.str(), shape, t ? t : et_);
  }

  // The rank's slice of a checkpoint tensor; pieces are ceil(dim / parts) (a vocabulary
  // that tp does not divide is padded with zero rows).
  Value weight(const std::string &name, ArrayRef<int64_t> full, ArrayRef<Split> splits) {
    auto it = weights_.find(name);
    if (it != weights_.end()) return it->second;
    SmallVector<int64_t> local(full);
    for (const Split &s : splits) local[s.dim] = ceilDiv(local[s.dim], s.parts);
    OpBuilder::InsertionGuard guard(b_);
    if (lastWeight_) b_.setInsertionPointAfter(lastWeight_);
    else b_.setInsertionPointToStart(body_);
    Value w = buffer(BufferKind::weight, name, local, et_, slice(name, full, splits, -1));
    lastWeight_ = w.getDefiningOp();
    return weights_[name] = w;
  }

  template <typename OpT, typename... Args>
  OpT instruction(StringRef suffix, Args &&...args) {
    auto op = b_.create<OpT>(b_.getUnknownLoc(), std::forward<Args>(args)...);
    op.setLabelAttr(b_.getStringAttr(prefix_ + (suffix.empty() ? "" : "." + suffix.str())));
    op.setLayerAttr(i64(layer_));
    op.setRouted(routed_);
    return op;
  }
  void kernel(KernelKind kind, StringRef suffix, ValueRange ins, ValueRange outs,
              const KernelDims &dims) {
    const IntegerAttr zero = i64(0);
    // Every layer's kernels repeat the first's dimensions: one uniqued attribute each.
    auto [it, fresh] = dims_.try_emplace(dims, KernelDimsAttr());
    if (fresh) it->second = dims.attr(ctx_);
    b_.create<KernelOp>(b_.getUnknownLoc(), KernelKindAttr::get(ctx_, kind), ins, outs,
                        it->second, zero, i64(layer_),
                        b_.getStringAttr(prefix_ + "." + suffix.str()), zero,
                        DenseI64ArrayAttr(), IntegerAttr(), CostAttr(), CostAttr(),
                        routed_ ? b_.getUnitAttr() : UnitAttr());
  }
  Value gemm(StringRef suffix, Value a, Value w, int64_t m, int64_t k, int64_t n,
             BufferKind outKind = BufferKind::activation, SliceAttr outSlice = {}) {
    Value c = outKind == BufferKind::activation ? activation(suffix, {m, n})
                                                : buffer(outKind, prefix_ + "." + suffix.str(), {m, n}, et_, outSlice);
    kernel(KernelKind::gemm, suffix, {a, w}, {c}, KernelDims().m(m).n(n).k(k));
    return c;
  }
  // Adds bias `bias` when the model's projection group has biases (`enabled`).
  Value biasAdd(bool enabled, StringRef suffix, Value x, const std::string &bias,
                ArrayRef<int64_t> full, ArrayRef<Split> splits, int64_t groups, int64_t m,
                int64_t n) {
    if (!enabled) return x;
    Value bb = weight(bias, full, splits);
    kernel(KernelKind::bias_add, suffix.str() + ".bias", {x, bb}, {x},
           KernelDims().groups(groups).m(m).n(n));
    return x;
  }
  Value transpose(StringRef suffix, Value x, int64_t rows, int64_t cols, int64_t inner,
                  ArrayRef<int64_t> outShape) {
    Value y = activation(suffix, outShape);
    kernel(KernelKind::transpose, suffix, {x}, {y}, KernelDims().m(rows).n(cols).inner(inner));
    return y;
  }
  Value activationFn(StringRef suffix, model::Activation act, Value gate, Value up, int64_t m,
                     int64_t n, ArrayRef<int64_t> shape) {
    Value y = activation(suffix, shape);
    SmallVector<Value> ins{up};
    if (act == model::Activation::swiglu) ins.insert(ins.begin(), gate);
    kernel(KernelKind::activation, suffix, ins, {y},
           KernelDims().m(m).n(n).activation(act == model::Activation::swiglu
                                                 ? ActivationKind::swiglu
                                                 : ActivationKind::gelu));
    return y;
  }

  // Pending bias of a row-parallel output: added once the partial sums are reduced.
  DenseMap<Value, std::function<Value(Value)>> pendingBias_;

  // The bias of a row-parallel output split `parts` ways goes on once, after the reshard
  // that sums the partial outputs; unsplit (parts 1) there is no such reshard: now.
  void biasAfterSum(Value partial, int64_t parts, std::function<Value(Value)> add) {
    if (parts > 1) pendingBias_[partial] = std::move(add);
    else add(partial);
  }

  LogicalResult lowerReshard(model::ReshardOp r);
  Value lowerAttention(model::AttentionOp a, Value x);
  Value lowerExpertFfn(model::ExpertFfnOp f, Value x);
  Value lowerDenseFfn(model::DenseFfnOp f, Value x);

public:
  void setLayer(int64_t layer, std::string prefix) {
    layer_ = layer;
    prefix_ = std::move(prefix);
  }
  void bind(Value model, Value buf) { buffers_[model] = buf; }
  Value lookup(Value model) { return buffers_.lookup(model); }
  // A GENERATE workload's decode step reads "step_tokens" and writes "step_logits".
  const char *inputTensor() const { return decodeStep_ ? "step_tokens" : "tokens"; }
  const char *outputTensor() const { return decodeStep_ ? "step_logits" : "logits"; }
  Value input(int64_t stage) {
    int64_t mb = 0;
    if (decodeStep_) {
      // The ids the last stage sampled: with one stage its ARGMAX_MERGE wrote them here (at
      // the end of the prefill or the previous step); otherwise they arrive from it.
      if (stage == s_.pp - 1) return stepTokens();
      Value ids = stepTokens();
      setLayer(-1, "sample.recv");
      instruction<RecvOp>("", ids, i64(s_.pp - 1), b_.getStringAttr("pp"),
                          i64(l_.tokens), IntegerAttr(), i64(0),
                          i64(-1), b_.getStringAttr(""), i64(2),
                          DenseI64ArrayAttr(), IntegerAttr(), CostAttr(), CostAttr(), UnitAttr(), b_.getUnitAttr());
      return ids;
    }
    if (m_.vocab)
      return buffer(BufferKind::input, inputTensor(), {l_.tokens}, i32(),
                    slice(inputTensor(), {d_.workload.sequences, l_.queryLen}, {{0, "dp", s_.dp}}, mb));
    return buffer(BufferKind::input, "hidden_in", {l_.tokensPerRank, m_.dModel}, et_,
                  slice("hidden_in", {d_.workload.sequences, l_.queryLen, m_.dModel},
                        hiddenSplits(), mb));
  }
  void output(Value v) {
    // The result lands in an OUTPUT buffer the runtime reads after the run.
    auto bufOp = cast<BufferOp>(v.getDefiningOp());
    bufOp.setKindAttr(BufferKindAttr::get(ctx_, BufferKind::output));
    if (m_.vocab)
      bufOp.setSliceAttr(slice(outputTensor(), {d_.workload.sequences, l_.queryLen, m_.vocab},
                               {{0, "dp", s_.dp}, {2, "tp", s_.tp}}, 0));
    else
      bufOp.setSliceAttr(slice("hidden_out", {d_.workload.sequences, l_.queryLen, m_.dModel},
                               hiddenSplits(), 0));
    if (d_.workload.generates()) sample(v);
  }
  // A GENERATE workload's greedy sampling on the last stage, after the prefill and each
  // decode step: each tp rank's best id of its vocabulary slice at the last position
  // (ARGMAX), every slice's gathered over tp, the best of them (ARGMAX_MERGE) into the next
  // step's "step_tokens" (sent to the first stage when there are several) and into
  // "generated" at the token's index (the prefill's: 0; decode step s's: s + 1).
  void sample(Value logits) {
    const int64_t S = l_.sequences, tp = s_.tp;
    setLayer(-1, "sample");
    Value pairs = activation("pairs", {S, 2}, i32());
    kernel(KernelKind::argmax, "argmax", {logits}, {pairs},
           KernelDims().sequences(S).seqLen(l_.queryLen).n(l_.vocab).vocabEnd(m_.vocab));
    Value gathered = pairs;
    if (tp > 1) {
      gathered = activation("tp.all_gather", {tp, S, 2}, i32());
      instruction<AllGatherOp>("tp.all_gather", pairs, gathered, b_.getStringAttr("tp"),
                               i64(S * 2), IntegerAttr(), i64(0),
                               i64(-1), b_.getStringAttr(""),
                               i64(1), DenseI64ArrayAttr(), IntegerAttr(),
                               CostAttr(), CostAttr(), UnitAttr());
    }
    const bool oneStage = s_.pp == 1;
    Value ids = oneStage ? stepTokens() : activation("ids", {S}, i32());
    kernel(KernelKind::argmax_merge, "merge", {gathered}, {ids, generated()},
           KernelDims().groups(tp).m(S).n(d_.workload.newTokens)
               .firstPosition(decodeStep_ ? 1 : 0).perStep(decodeStep_));
    if (!oneStage) {
      setLayer(-1, "sample.send");
      instruction<SendOp>("", ids, i64(0), b_.getStringAttr("pp"),
                          i64(S), IntegerAttr(), i64(0),
                          i64(-1), b_.getStringAttr(""), i64(2),
                          DenseI64ArrayAttr(), IntegerAttr(), CostAttr(), CostAttr(), UnitAttr(), b_.getUnitAttr());
    }
  }
  // The ids a decode step embeds, [sequences]: one buffer for the whole generation.
  Value stepTokens() {
    if (!stepTokens_)
      stepTokens_ = buffer(BufferKind::input, "step_tokens", {l_.sequences}, i32(),
                           slice("step_tokens", {d_.workload.sequences, 1}, {{0, "dp", s_.dp}}, 0));
    return stepTokens_;
  }
  // Every generated id: an OUTPUT for the whole generation, position-major [new_tokens,
  // sequences] like every micro-batch token tensor (its slice is [sequences, new_tokens]).
  Value generated() {
    if (!generated_)
      generated_ = buffer(BufferKind::output, "generated", {d_.workload.newTokens, l_.sequences}, i32(),
                          slice("generated", {d_.workload.sequences, d_.workload.newTokens},
                                {{0, "dp", s_.dp}}, 0));
    return generated_;
  }
  Value stepTokens_, generated_;
  // A model without a vocabulary takes and gives the residual stream: over dp, and over tp
  // only with sequence parallelism (otherwise every tp rank holds every token).
  SmallVector<Split> hiddenSplits() const {
    SmallVector<Split> splits{{0, "dp", s_.dp}};
    if (l_.sequenceParallel) splits.push_back({1, "tp", s_.tp});
    return splits;
  }
  Value recv(int64_t stage) {
    setLayer(-1, "pipeline.recv");
    Value buf = buffer(BufferKind::comm, "pipeline.recv", {l_.tokensPerRank, m_.dModel}, et_);
    instruction<RecvOp>("", buf, i64(stage - 1), b_.getStringAttr("pp"),
                        i64(l_.tokensPerRank * m_.dModel), IntegerAttr(),
                        i64(0), i64(-1), b_.getStringAttr(""),
                        i64(2), DenseI64ArrayAttr(), IntegerAttr(), CostAttr(), CostAttr(), UnitAttr(),
                        UnitAttr());
    return buf;
  }
  void send(Value buf, int64_t stage) {
    setLayer(-1, "pipeline.send");
    instruction<SendOp>("", buf, i64(stage + 1), b_.getStringAttr("pp"),
                        i64(l_.tokensPerRank * m_.dModel), IntegerAttr(),
                        i64(0), i64(-1), b_.getStringAttr(""),
                        i64(2), DenseI64ArrayAttr(), IntegerAttr(), CostAttr(), CostAttr(), UnitAttr(),
                        UnitAttr());
  }
};

LogicalResult StageLowering::lower(Operation *op) {
  Value in0 = op->getNumOperands() ? lookup(op->getOperand(0)) : Value();
  const int64_t D = m_.dModel, T = l_.tokens, Tr = l_.tokensPerRank;
  if (auto e = dyn_cast<model::EmbeddingOp>(op)) {
    setLayer(-1, "embedding");
    Value table = weight("embedding.weight", {m_.vocab, D}, {{0, "tp", s_.tp}});
    Value x = activation("out", {T, D});
    kernel(KernelKind::embedding, "lookup", {in0, table}, {x},
           KernelDims().m(T).n(D).vocabBegin(0).vocabEnd(l_.vocab));
    bind(e.getResult(), x);
    return success();
  }
  int64_t layer = -1;
  if (auto a = op->getAttrOfType<IntegerAttr>(kLayerAttr)) layer = a.getInt();
  std::string lp = layer >= 0 ? "layers." + std::to_string(layer) : "";
  if (auto n = dyn_cast<model::NormOp>(op)) {
    std::string name = n.getWeightPrefix().str();
    setLayer(layer, name);
    int64_t rows = cast<RankedTensorType>(n.getType()).getDimSize(0);
    Value w = weight(name + ".weight", {D}, {});
    SmallVector<Value> ins{in0, w};
    if (n.getKind() == model::NormKind::layer_norm) ins.push_back(weight(name + ".bias", {D}, {}));
    Value y = activation("out", {rows, D});
    kernel(KernelKind::norm, "norm", ins, {y},
           KernelDims().m(rows).n(D)
               .norm(n.getKind() == model::NormKind::rms_norm ? NormKind::rms_norm
                                                              : NormKind::layer_norm)
               .epsilon(n.getEpsilonAttr().getValueAsDouble()));
    bind(n.getResult(), y);
    return success();
  }
  if (auto r = dyn_cast<model::ReshardOp>(op)) {
    setLayer(layer, lp.empty() ? "head" : lp);
    return lowerReshard(r);
  }
  if (auto a = dyn_cast<model::AttentionOp>(op)) {
    setLayer(layer, a.getWeightPrefix().str());
    bind(a.getResult(), lowerAttention(a, in0));
    return success();
  }
  if (auto add = dyn_cast<model::AddOp>(op)) {
    setLayer(layer, lp + ".residual");
    int64_t n = cast<RankedTensorType>(add.getType()).getNumElements();
    Value c = activation("sum", cast<RankedTensorType>(add.getType()).getShape());
    kernel(KernelKind::add, "add", {in0, lookup(add.getRhs())}, {c}, KernelDims().n(n));
    bind(add.getResult(), c);
    return success();
  }
  if (auto r = dyn_cast<model::RouterOp>(op)) {
    setLayer(layer, r.getWeightPrefix().str());
    Value w = weight(r.getWeightPrefix().str() + ".weight", {D, m_.experts}, {});
    Value logits = buffer(BufferKind::workspace, prefix_ + ".logits", {Tr, m_.experts}, et_);
    kernel(KernelKind::gemm, "logits", {in0, w}, {logits}, KernelDims().m(Tr).n(m_.experts).k(D));
    Value idx = activation("indices", {Tr, m_.topK}, i32());
    Value gates = activation("gates", {Tr, m_.topK});
    kernel(KernelKind::router, "topk", {logits}, {idx, gates},
           KernelDims().tokens(Tr).experts(m_.experts).topK(m_.topK)
               .renormalize(r.getRenormalize()));
    bind(r.getIndices(), idx);
    bind(r.getGates(), gates);
    return success();
  }
  if (auto dsp = dyn_cast<model::ExpertDispatchOp>(op)) {
    setLayer(layer, lp + ".experts");
    Value slotsX = activation("dispatched", {m_.experts, l_.capacity, D});
    Value slots = activation("slots", {Tr, m_.topK}, i32());
    // Drop policy "probs": the gates decide which choices an expert over capacity keeps.
    SmallVector<Value> ins{in0, lookup(dsp.getIndices())};
    if (dsp.getGates()) ins.push_back(lookup(dsp.getGates()));
    kernel(KernelKind::dispatch, "dispatch", ins, {slotsX, slots},
           KernelDims().tokens(Tr).n(D).experts(m_.experts).topK(m_.topK)
               .capacity(l_.groupCapacity).groups(l_.dispatchGroups));
    bind(dsp.getDispatched(), slotsX);
    bind(dsp.getSlots(), slots);
    return success();
  }
  if (auto f = dyn_cast<model::ExpertFfnOp>(op)) {
    setLayer(layer, f.getWeightPrefix().str());
    bind(f.getResult(), lowerExpertFfn(f, in0));
    return success();
  }
  if (auto c = dyn_cast<model::ExpertCombineOp>(op)) {
    setLayer(layer, lp + ".experts");
    Value y = activation("combined", {Tr, D});
    kernel(KernelKind::combine, "combine",
           {in0, lookup(c.getIndices()), lookup(c.getSlots()), lookup(c.getGates())}, {y},
           KernelDims().tokens(Tr).n(D).experts(m_.experts).topK(m_.topK)
               .capacity(l_.groupCapacity).groups(l_.dispatchGroups));
    bind(c.getResult(), y);
    return success();
  }
  if (auto f = dyn_cast<model::DenseFfnOp>(op)) {
    setLayer(layer, f.getWeightPrefix().str());
    bind(f.getResult(), lowerDenseFfn(f, in0));
    return success();
  }
  if (auto g = dyn_cast<model::SharedExpertGateOp>(op)) {
    setLayer(layer, g.getWeightPrefix().str());
    int64_t rows = cast<RankedTensorType>(g.getType()).getDimSize(0);
    Value w = weight(prefix_ + ".weight", {D, 1}, {});
    Value logit = buffer(BufferKind::workspace, prefix_ + ".logits", {rows, 1}, et_);
    kernel(KernelKind::gemm, "logits", {in0, w}, {logit}, KernelDims().m(rows).n(1).k(D));
    Value y = activation("out", {rows, D});
    kernel(KernelKind::sigmoid_gate, "scale", {lookup(g.getValue()), logit}, {y},
           KernelDims().m(rows).n(D));
    bind(g.getResult(), y);
    return success();
  }
  if (auto h = dyn_cast<model::LmHeadOp>(op)) {
    setLayer(-1, "lm_head");
    Value logits = activation("logits", {T, l_.vocab});
    if (m_.tieEmbeddings) {
      Value table = weight("embedding.weight", {m_.vocab, D}, {{0, "tp", s_.tp}});
      kernel(KernelKind::gemm, "logits", {in0, table}, {logits},
             KernelDims().m(T).n(l_.vocab).k(D).transposeB(true));
    } else {
      Value w = weight("lm_head.weight", {D, m_.vocab}, {{1, "tp", s_.tp}});
      kernel(KernelKind::gemm, "logits", {in0, w}, {logits}, KernelDims().m(T).n(l_.vocab).k(D));
    }
    bind(h.getResult(), logits);
    return success();
  }
  return op->emitOpError("model-to-plan cannot lower this op");
}

Value StageLowering::lowerAttention(model::AttentionOp a, Value x) {
  const int64_t D = m_.dModel, T = l_.tokens, hd = m_.headDim;
  std::string p = a.getWeightPrefix().str();
  int64_t q = l_.heads * hd, kv = l_.kvHeads * hd;
  Split headsSplit{1, "tp", s_.tp}, kvSplit{1, "tp", l_.kvParts};
  Value wq = weight(p + ".wq", {D, m_.heads * hd}, {headsSplit});
  Value wk = weight(p + ".wk", {D, m_.kvHeads * hd}, {kvSplit});
  Value wv = weight(p + ".wv", {D, m_.kvHeads * hd}, {kvSplit});
  Value qb = gemm("q", x, wq, T, D, q);
  biasAdd(m_.qkvBias, "q", qb, p + ".bq", {m_.heads * hd}, {{0, "tp", s_.tp}}, 1, T, q);
  const bool generate = d_.workload.generates();
  const bool decode = d_.workload.phase == desc::DECODE || decodeStep_;
  auto cacheSlice = [&](const char *which, int64_t len) {
    return slice(p + "." + which + "_cache", {d_.workload.sequences, len, m_.kvHeads * hd},
                 {{0, "dp", s_.dp}, {2, "tp", l_.kvParts}}, 0);
  };
  // A GENERATE workload's caches hold every position of the generation; the prefill and
  // each decode step append to them (KV_APPEND). A PREFILL plan's keys and values are its
  // cache; a DECODE plan reads one it did not write.
  auto cache = [&](const char *which) {
    std::string name = p + "." + which + "_cache";
    Value &c = caches_[name];
    if (!c)
      c = buffer(BufferKind::kv_cache, name, {l_.sequences * l_.cachePositions, kv}, et_,
                 cacheSlice(which, l_.cachePositions));
    return c;
  };
  Value kb = decode || generate
                 ? gemm("k", x, wk, T, D, kv)
                 : gemm("k", x, wk, T, D, kv, BufferKind::kv_cache, cacheSlice("k", l_.queryLen));
  Value vb = decode || generate
                 ? gemm("v", x, wv, T, D, kv)
                 : gemm("v", x, wv, T, D, kv, BufferKind::kv_cache, cacheSlice("v", l_.queryLen));
  biasAdd(m_.qkvBias, "k", kb, p + ".bk", {m_.kvHeads * hd}, {{0, "tp", l_.kvParts}}, 1, T, kv);
  biasAdd(m_.qkvBias, "v", vb, p + ".bv", {m_.kvHeads * hd}, {{0, "tp", l_.kvParts}}, 1, T, kv);
  // Position-dependent dims of a decode step are step 0's (per_step); the runtime adds the step.
  if (FloatAttr theta = a.getRopeThetaAttr()) {
    // Rows are position-major, so row r is at position first + r / sequences; a decode
    // step's one new token sits after the kv_len cached ones. Rotated in place: the cache
    // holds rotated keys, as Hugging Face's does.
    int64_t first = decode ? l_.kvLen : 0;
    auto rope = [&](StringRef what, Value x, int64_t heads) {
      kernel(KernelKind::rope, (what + ".rope").str(), {x}, {x},
             KernelDims().m(T).heads(heads).headDim(hd).sequences(l_.sequences)
                 .firstPosition(first).ropeTheta(theta.getValueAsDouble()).perStep(decodeStep_));
    };
    rope("q", qb, l_.heads);
    rope("k", kb, l_.kvHeads);
  }
  SmallVector<Value> ins{qb, kb, vb};
  if (generate) {
    if (decode) ins.append({cache("k"), cache("v")});
  } else if (decode) {
    int64_t rows = l_.sequences * l_.kvLen;
    ins.push_back(buffer(BufferKind::kv_cache, prefix_ + ".k_cache", {rows, kv}, et_, cacheSlice("k", l_.kvLen)));
    ins.push_back(buffer(BufferKind::kv_cache, prefix_ + ".v_cache", {rows, kv}, et_, cacheSlice("v", l_.kvLen)));
  }
  Value o = activation("context", {T, q});
  kernel(KernelKind::attention, "core", ins, {o},
         KernelDims().sequences(l_.sequences).seqLen(l_.queryLen)
             .kvLen(decode ? l_.kvLen : l_.queryLen).heads(l_.heads).kvHeads(l_.kvHeads)
             .headDim(hd).perStep(decode && decodeStep_));
  if (generate) {
    // The new keys and values join the cache at their positions, after the attention that
    // read the cache as it was (a decode step's fresh token comes from kb, vb).
    for (auto [which, fresh] : {std::pair{"k", kb}, std::pair{"v", vb}})
      kernel(KernelKind::kv_append, (std::string(which) + ".append").c_str(), {fresh}, {cache(which)},
             KernelDims().m(T).n(kv).sequences(l_.sequences)
                 .firstPosition(decode ? l_.kvLen : 0).perStep(decodeStep_));
  }
  Value wo = weight(p + ".wo", {m_.heads * hd, D}, {{0, "tp", s_.tp}});
  Value out = gemm("o", o, wo, T, q, D);
  if (m_.outBias)
    biasAfterSum(out, s_.tp, [this, bias = p + ".bo", D](Value reduced) {
      int64_t rows = cast<MemRefType>(reduced.getType()).getDimSize(0);
      return biasAdd(true, "o", reduced, bias, {D}, {}, 1, rows, D);
    });
  return out;
}

// The dense FFN of a layer, or a MoE layer's shared expert: the op's hidden is the rank's
// share (model-shard split it over tp).
Value StageLowering::lowerDenseFfn(model::DenseFfnOp f, Value x) {
  const int64_t D = m_.dModel, T = l_.tokens, F = f.getHidden(), full = F * s_.tp;
  std::string p = f.getWeightPrefix().str();
  Split col{1, "tp", s_.tp};
  Value up = gemm("up", x, weight(p + ".w_up", {D, full}, {col}), T, D, F);
  biasAdd(m_.ffnBias, "up", up, p + ".b_up", {full}, {{0, "tp", s_.tp}}, 1, T, F);
  Value gate;
  if (f.getActivation() == model::Activation::swiglu) {
    gate = gemm("gate", x, weight(p + ".w_gate", {D, full}, {col}), T, D, F);
    biasAdd(m_.ffnBias, "gate", gate, p + ".b_gate", {full}, {{0, "tp", s_.tp}}, 1, T, F);
  }
  Value h = activationFn("act", f.getActivation(), gate, up, T, F, {T, F});
  Value out = gemm("down", h, weight(p + ".w_down", {full, D}, {{0, "tp", s_.tp}}), T, F, D);
  if (m_.ffnBias)
    biasAfterSum(out, s_.tp, [this, bias = p + ".b_down", D](Value reduced) {
      int64_t rows = cast<MemRefType>(reduced.getType()).getDimSize(0);
      return biasAdd(true, "down", reduced, bias, {D}, {}, 1, rows, D);
    });
  return out;
}

Value StageLowering::lowerExpertFfn(model::ExpertFfnOp f, Value x) {
  llvm::SaveAndRestore<bool> routed(routed_, true);
  const int64_t D = m_.dModel, E = m_.experts, El = l_.localExperts, M = l_.expertRows;
  const int64_t H = l_.expertHidden;
  std::string p = f.getWeightPrefix().str();
  Split byExpert{0, "ep", s_.ep};
  Split col{2, "etp", s_.expertTp}, row{1, "etp", s_.expertTp};
  Value up = activation("up", {El, M, H});
  kernel(KernelKind::grouped_gemm, "up", {x, weight(p + ".w_up", {E, D, m_.expertHidden}, {byExpert, col})},
         {up}, KernelDims().groups(El).m(M).n(H).k(D));
  biasAdd(m_.ffnBias, "up", up, p + ".b_up", {E, m_.expertHidden}, {byExpert, {1, "etp", s_.expertTp}}, El, M, H);
  Value gate;
  if (f.getActivation() == model::Activation::swiglu) {
    gate = activation("gate", {El, M, H});
    kernel(KernelKind::grouped_gemm, "gate",
           {x, weight(p + ".w_gate", {E, D, m_.expertHidden}, {byExpert, col})}, {gate},
           KernelDims().groups(El).m(M).n(H).k(D));
    biasAdd(m_.ffnBias, "gate", gate, p + ".b_gate", {E, m_.expertHidden}, {byExpert, {1, "etp", s_.expertTp}}, El, M, H);
  }
  Value h = activationFn("act", f.getActivation(), gate, up, El * M, H, {El, M, H});
  Value out = activation("down", {El, M, D});
  kernel(KernelKind::grouped_gemm, "down",
         {h, weight(p + ".w_down", {E, m_.expertHidden, D}, {byExpert, row})}, {out},
         KernelDims().groups(El).m(M).n(D).k(H));
  if (m_.ffnBias)
    biasAfterSum(out, s_.expertTp, [this, bias = p + ".b_down", D, El, E, byExpert](Value reduced) {
      int64_t rows = cast<MemRefType>(reduced.getType()).getDimSize(1);
      return biasAdd(true, "down", reduced, bias, {E, D}, {byExpert}, El, rows, D);
    });
  return out;
}

LogicalResult StageLowering::lowerReshard(model::ReshardOp r) {
  Value x = lookup(r.getInput());
  auto inT = cast<RankedTensorType>(r.getInput().getType());
  auto outT = cast<RankedTensorType>(r.getType());
  int64_t inN = inT.getNumElements(), outN = outT.getNumElements();
  StringRef axis = r.getAxis();
  // Expert-parallel reshards move the dispatched rows (and run the bias left pending on them).
  llvm::SaveAndRestore<bool> routed(routed_, routed_ || axis == "ep" || axis == "etp");
  std::string what = (axis + "." + stringifyReshardKind(r.getKind())).str();
  auto coll = [&](auto tag, Value in, Value out, int64_t count) {
    using OpT = decltype(tag);
    instruction<OpT>(what, in, out, b_.getStringAttr(axis), i64(count),
                     IntegerAttr(), i64(0), i64(layer_),
                     b_.getStringAttr(""), i64(1), DenseI64ArrayAttr(),
                     IntegerAttr(), CostAttr(), CostAttr(), UnitAttr());
  };
  const int64_t D = m_.dModel, El = l_.localExperts, C = l_.capacity;
  Value y;
  switch (r.getKind()) {
  case model::ReshardKind::all_gather: {
    if (axis == "etp") {
      // [El, ep C, D] from each etp peer -> [etp, El, ep C, D] -> [El, etp ep C, D].
      Value g = activation(what, {s_.expertTp, El, s_.ep * C, D});
      coll(AllGatherOp(), x, g, inN);
      y = transpose(what + ".regroup", g, s_.expertTp, El, s_.ep * C * D, outT.getShape());
    } else {
      y = activation(what, outT.getShape());
      coll(AllGatherOp(), x, y, inN);
    }
    break;
  }
  case model::ReshardKind::reduce_scatter: {
    if (axis == "etp") {
      Value t = transpose(what + ".regroup", x, El, s_.expertTp, s_.ep * C * D,
                          {s_.expertTp, El, s_.ep * C, D});
      y = activation(what, outT.getShape());
      coll(ReduceScatterOp(), t, y, outN);
    } else {
      y = activation(what, outT.getShape());
      coll(ReduceScatterOp(), x, y, outN);
    }
    break;
  }
  case model::ReshardKind::all_reduce:
    y = activation(what, outT.getShape());
    coll(AllReduceOp(), x, y, outN);
    break;
  case model::ReshardKind::all_to_all: {
    const bool toExperts = r.getDirection() == model::ExchangeDirection::experts;
    int64_t chunk = El * C * D;
    SmallVector<int64_t> counts(s_.ep, chunk);
    auto a2a = [&](Value in, Value out) {
      instruction<AllToAllOp>(what, in, out, b_.getDenseI64ArrayAttr(counts),
                              b_.getDenseI64ArrayAttr(counts), b_.getStringAttr(axis),
                              i64(inN), IntegerAttr(), i64(0),
                              i64(layer_), b_.getStringAttr(""),
                              i64(1), DenseI64ArrayAttr(), IntegerAttr(), CostAttr(), CostAttr(), UnitAttr());
    };
    if (toExperts) {
      // [E, C, D] = [ep, El, C, D] in owner order -> from every source [ep, El, C, D]
      // -> [El, ep C, D].
      Value recv = activation(what + ".recv", {s_.ep, El, C, D});
      a2a(x, recv);
      y = transpose(what + ".regroup", recv, s_.ep, El, C * D, outT.getShape());
    } else {
      Value t = transpose(what + ".regroup", x, El, s_.ep, C * D, {s_.ep, El, C, D});
      y = activation(what + ".recv", outT.getShape());
      a2a(t, y);
    }
    break;
  }
  }
  if (auto it = pendingBias_.find(x); it != pendingBias_.end()) y = it->second(y);
  bind(r.getResult(), y);
  return success();
}

// Communicator groups of every mesh axis: ranks sharing all other coordinates, ordered by
// their coordinate on the axis.
void emitGroups(OpBuilder &b, const DeploymentSpec &d, std::map<std::string, int> &count) {
  DeviceMesh mesh(d.strategy);
  struct AxisDef {
    const char *name;
    std::function<std::array<int64_t, 3>(const MeshCoord &)> key;
    std::function<int64_t(const MeshCoord &)> position;
  };
  std::vector<AxisDef> axes = {
      {"tp", [](const MeshCoord &c) { return std::array<int64_t, 3>{c.dp, c.pp, 0}; }, [](const MeshCoord &c) { return c.tp; }},
      {"dp", [](const MeshCoord &c) { return std::array<int64_t, 3>{c.tp, c.pp, 0}; }, [](const MeshCoord &c) { return c.dp; }},
      {"pp", [](const MeshCoord &c) { return std::array<int64_t, 3>{c.tp, c.dp, 0}; }, [](const MeshCoord &c) { return c.pp; }},
      {"ep", [](const MeshCoord &c) { return std::array<int64_t, 3>{c.etp, c.edp, c.pp}; }, [](const MeshCoord &c) { return c.ep; }},
      {"etp", [](const MeshCoord &c) { return std::array<int64_t, 3>{c.ep, c.edp, c.pp}; }, [](const MeshCoord &c) { return c.etp; }},
      {"edp", [](const MeshCoord &c) { return std::array<int64_t, 3>{c.etp, c.ep, c.pp}; }, [](const MeshCoord &c) { return c.edp; }},
  };
  for (const AxisDef &a : axes) {
    std::map<std::array<int64_t, 3>, std::vector<std::pair<int64_t, int64_t>>> groups;
    std::vector<std::array<int64_t, 3>> order;
    for (int64_t r = 0; r < mesh.world(); ++r) {
      MeshCoord c = mesh.coord(r);
      auto k = a.key(c);
      auto [it, fresh] = groups.try_emplace(k);
      if (fresh) order.push_back(k);
      it->second.push_back({a.position(c), r});
    }
    for (const auto &k : order) {
      auto members = groups[k];
      llvm::sort(members);
      SmallVector<int64_t> ranks;
      for (auto [pos, r] : members) ranks.push_back(r);
      std::string name = std::string(a.name) + "_" + std::to_string(count[a.name]++);
      b.create<GroupOp>(b.getUnknownLoc(), name, a.name, b.getDenseI64ArrayAttr(ranks));
    }
  }
}

// Lowers `fn`'s ops of stage `s` (of `pp`) into `lowering`'s program.
LogicalResult lowerStage(func::FuncOp fn, int64_t s, int64_t pp, StageLowering &lowering) {
  if (s == 0) lowering.bind(fn.getArgument(0), lowering.input(s));
  for (Operation &op : fn.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      if (s == pp - 1) lowering.output(lowering.lookup(ret.getOperand(0)));
      continue;
    }
    auto st = op.getAttrOfType<IntegerAttr>(kStageAttr);
    if (!st) return op.emitOpError("has no stage: run model-pipeline-partition first");
    if (auto t = dyn_cast<model::TransferOp>(op)) {
      if (t.getFromStage() == s) {
        Value sent = lowering.lookup(t.getInput());
        if (!sent)
          return t.emitOpError("sends from stage ") << s << " a value that stage " << s
                                                    << " does not compute";
        lowering.send(sent, s);
      }
      if (t.getToStage() == s) lowering.bind(t.getResult(), lowering.recv(s));
      continue;
    }
    if (st.getInt() != s) continue;
    for (Value operand : op.getOperands())
      if (!lowering.lookup(operand))
        return op.emitOpError("on stage ")
               << s << " uses a value that stage " << s
               << " does not compute; values cross stages only through model.transfer";
    if (failed(lowering.lower(&op))) return failure();
  }
  return success();
}

struct ModelToPlanPass : impl::ModelToPlanBase<ModelToPlanPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<DeploymentSpec> spec = deploymentOf(module);
    if (!spec) return signalPassFailure();
    SmallVector<ForwardFunction> fns = forwardFunctions(module, getArgument());
    if (fns.empty()) return signalPassFailure();
    func::FuncOp fn = fns.front().fn;
    if (!module->hasAttr(kShardingAttr)) {
      module.emitError("model-to-plan needs the sharded, partitioned func.func @forward");
      return signalPassFailure();
    }
    const DeploymentSpec &d = *spec;
    OpBuilder b(module.getContext());
    b.setInsertionPoint(fn);
    std::map<std::string, int> groupCount;
    emitGroups(b, d, groupCount);

    auto byStage = DeviceMesh(d.strategy).ranksByStage();
    int64_t pp = d.strategy.pp;
    // Each stage's layer range, from the ops the partition put there.
    std::vector<int64_t> first(pp, INT64_MAX), end(pp, 0);
    for (Operation &op : fn.getBody().front()) {
      auto st = op.getAttrOfType<IntegerAttr>(kStageAttr);
      auto layer = op.getAttrOfType<IntegerAttr>(kLayerAttr);
      if (!st || !layer || layer.getInt() < 0) continue;
      first[st.getInt()] = std::min(first[st.getInt()], layer.getInt());
      end[st.getInt()] = std::max(end[st.getInt()], layer.getInt() + 1);
    }
    for (int64_t s = 0; s < pp; ++s) {
      if (first[s] == INT64_MAX) first[s] = end[s] = 0;
      auto program = b.create<ProgramOp>(fn.getLoc(), "stage" + std::to_string(s), s, first[s],
                                         end[s], b.getDenseI64ArrayAttr(byStage[s]), IntegerAttr());
      StageLowering lowering(program, d);
      for (const ForwardFunction &f : fns) {
        if (f.decodeStep) lowering.beginDecodeStep();
        if (failed(lowerStage(f.fn, s, pp, lowering))) return signalPassFailure();
      }
    }
    for (ForwardFunction &f : fns) f.fn.erase();
    module->removeAttr(kShardingAttr);
  }
};

} // namespace
} // namespace moeplan
