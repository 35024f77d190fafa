// Weight memory on each GPU of each pipeline stage under a strategy.
#pragma once

#include "moeplan/Analysis/ParamCount.h"

#include <vector>

namespace moeplan {

struct StageWeights {
  int64_t stage = 0;
  int64_t firstLayer = 0, lastLayer = 0;  // inclusive; layers split evenly and contiguously
  ParamBreakdown perGpu;                  // what one GPU of this stage holds
  double bytesPerGpu = 0;
};

// Layers of stage `stage` out of `pp`: contiguous, layers / pp each (the rules require that
// pp divides layers; otherwise the first stages take one more).
void stageLayers(int64_t layers, int64_t pp, int64_t stage, int64_t &first, int64_t &last);

// One entry per pipeline stage. Stage 0 holds the embedding; the last stage the final norm
// and LM head. Throws SizeOverflow for counts past 64 bits.
std::vector<StageWeights> weightsPerGpu(const ModelSpec &m, const StrategySpec &s);

} // namespace moeplan
