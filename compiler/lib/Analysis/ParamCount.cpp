#include "moeplan/Analysis/ParamCount.h"

#include "moeplan/Support/CheckedMath.h"

namespace moeplan {

int64_t ParamBreakdown::total() const {
  int64_t t = 0;
  for (int64_t v : {attention, router, experts, sharedExperts, denseFfn, norms, embedding, lmHead})
    t = checkedAdd(t, v);
  return t;
}

ParamBreakdown &ParamBreakdown::operator+=(const ParamBreakdown &o) {
  attention = checkedAdd(attention, o.attention);
  router = checkedAdd(router, o.router);
  experts = checkedAdd(experts, o.experts);
  sharedExperts = checkedAdd(sharedExperts, o.sharedExperts);
  denseFfn = checkedAdd(denseFfn, o.denseFfn);
  norms = checkedAdd(norms, o.norms);
  embedding = checkedAdd(embedding, o.embedding);
  lmHead = checkedAdd(lmHead, o.lmHead);
  return *this;
}

namespace {

int64_t normParams(const ModelSpec &m) {
  return m.norm == desc::RMS_NORM ? m.dModel : 2 * m.dModel;
}

int64_t attentionParams(const ModelSpec &m, int64_t tp) {
  int64_t headsPerRank = ceilDiv(m.heads, tp);
  // With fewer KV heads than TP ranks each rank keeps a copy of the one it needs.
  int64_t kvPerRank = m.kvHeads >= tp ? ceilDiv(m.kvHeads, tp) : 1;
  int64_t q = checkedMul(m.dModel, headsPerRank, m.headDim);
  int64_t kv = checkedMul(2, m.dModel, kvPerRank, m.headDim);
  int64_t o = q;
  int64_t bias = 0;
  if (m.qkvBias)  // Q/K/V biases are column-split
    bias = checkedMul(headsPerRank + 2 * kvPerRank, m.headDim);
  if (m.outBias) bias = checkedAdd(bias, m.dModel);  // the row-parallel Wo bias is whole
  return checkedAdd(checkedAdd(q, kv), checkedAdd(o, bias));
}

// One FFN whose hidden dimension is split `split` ways.
int64_t ffnParams(const ModelSpec &m, int64_t hidden, int64_t split) {
  int64_t shard = ceilDiv(hidden, split);
  int64_t weights = checkedMul(m.ffnMatrices(), m.dModel, shard);
  int64_t bias = 0;
  if (m.ffnBias)  // column-parallel input biases split, row-parallel output bias whole
    bias = checkedAdd(checkedMul(m.ffnMatrices() - 1, shard), m.dModel);
  return checkedAdd(weights, bias);
}

} // namespace

ParamBreakdown countParams(const ModelSpec &m, const ShardDegrees &shard, int64_t firstLayer,
                           int64_t lastLayer, bool withEmbedding, bool withHead) {
  ParamBreakdown p;
  for (int64_t layer = firstLayer; layer <= lastLayer; ++layer) {
    p.attention = checkedAdd(p.attention, attentionParams(m, shard.tp));
    p.norms = checkedAdd(p.norms, 2 * normParams(m));
    if (m.isMoeLayer(layer)) {
      p.router = checkedAdd(p.router, checkedMul(m.dModel, m.experts));
      int64_t local = ceilDiv(m.experts, shard.ep);
      p.experts = checkedAdd(p.experts,
                             checkedMul(local, ffnParams(m, m.expertHidden, shard.expertTp)));
      if (m.sharedExpertHidden)  // split over tp like the dense FFN; its gate replicated
        p.sharedExperts = checkedAdd(p.sharedExperts,
                                     checkedAdd(ffnParams(m, m.sharedExpertHidden, shard.tp),
                                                m.sharedExpertGate ? m.dModel : 0));
    } else {
      p.denseFfn = checkedAdd(p.denseFfn, ffnParams(m, m.denseFfnHidden, shard.tp));
    }
  }
  int64_t vocabShard = checkedMul(ceilDiv(m.vocab, shard.tp), m.dModel);
  if (withEmbedding) p.embedding = vocabShard;
  if (withHead) {
    p.norms = checkedAdd(p.norms, normParams(m));
    // A tied head shares the embedding's storage only when both live on this GPU.
    if (!(m.tieEmbeddings && withEmbedding)) p.lmHead = vocabShard;
  }
  return p;
}

ParamBreakdown countModelParams(const ModelSpec &m) {
  return countParams(m, ShardDegrees{}, 0, m.layers - 1, true, true);
}

int64_t activeParamsPerToken(const ModelSpec &m) {
  ParamBreakdown all = countModelParams(m);
  int64_t perExpert = ffnParams(m, m.expertHidden, 1);
  int64_t activeExperts = checkedMul(m.moeLayerCount(), m.topK, perExpert);
  return checkedAdd(all.total() - all.experts, activeExperts);
}

} // namespace moeplan
