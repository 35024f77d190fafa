#include "moeplan/Analysis/WeightMemory.h"

namespace moeplan {

void stageLayers(int64_t layers, int64_t pp, int64_t stage, int64_t &first, int64_t &last) {
  int64_t base = layers / pp, extra = layers % pp;
  first = stage * base + std::min(stage, extra);
  last = first + base + (stage < extra ? 1 : 0) - 1;
}

std::vector<StageWeights> weightsPerGpu(const ModelSpec &m, const StrategySpec &s) {
  std::vector<StageWeights> out;
  ShardDegrees shard{s.tp, s.ep, s.expertTp};
  for (int64_t stage = 0; stage < s.pp; ++stage) {
    StageWeights w;
    w.stage = stage;
    stageLayers(m.layers, s.pp, stage, w.firstLayer, w.lastLayer);
    bool first = stage == 0, last = stage == s.pp - 1;
    w.perGpu = countParams(m, shard, w.firstLayer, w.lastLayer, first && m.vocab > 0,
                           last);
    w.bytesPerGpu = double(w.perGpu.total()) * double(m.bytesPerParam());
    out.push_back(w);
  }
  return out;
}

} // namespace moeplan
