#include "moeplan/Compiler/LocalShapes.h"
#include "moeplan/Analysis/Capacity.h"
#include "moeplan/Support/CheckedMath.h"

namespace moeplan {

LocalShapes localShapes(const DeploymentSpec &d, ForwardPart part) {
  const ModelSpec &m = d.model;
  const StrategySpec &s = d.strategy;
  const WorkloadSpec &w = d.workload;
  LocalShapes l;
  const bool step = part == ForwardPart::DecodeStep && w.generates();
  const bool decode = w.phase == desc::DECODE || step;
  l.sequences = w.sequences / (s.dp * s.planMicroBatches());
  l.queryLen = decode ? 1 : w.seqLenMax;
  l.kvLen = step ? w.seqLenMax : decode ? w.kvCacheLen : 0;
  l.cachePositions = w.generates() ? w.cachePositions() : decode ? l.kvLen : l.queryLen;
  l.tokens = l.sequences * l.queryLen;
  l.sequenceParallel = s.sequenceParallel(l.tokens);
  l.tokensPerRank = s.tokensPerRank(l.tokens);
  l.heads = m.heads / s.tp;
  l.kvParts = m.kvHeads >= s.tp ? s.tp : m.kvHeads;
  l.kvHeads = m.kvHeads >= s.tp ? m.kvHeads / s.tp : 1;
  if (m.experts) {
    l.localExperts = m.experts / s.ep;
    l.dispatchGroups = s.dispatchGroups;
    l.groupCapacity =
        expertCapacity(l.tokensPerRank / s.dispatchGroups, m.topK, m.experts, s.capacityFactor);
    l.capacity = l.dispatchGroups * l.groupCapacity;
    l.expertRows = s.expertTp * s.ep * l.capacity;
    l.expertHidden = m.expertHidden / s.expertTp;
  }
  l.denseHidden = m.denseFfnHidden / s.tp;
  l.vocab = ceilDiv(m.vocab, s.tp);  // the last rank's rows past the vocabulary are zero padding
  return l;
}

} // namespace moeplan
