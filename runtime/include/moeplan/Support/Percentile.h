// The nearest-rank percentile: the figure "p99 time per output token" means the same thing
// where compile predicts it (Simulator) and where moeplan-run measures it (Executor).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace moeplan {

// The smallest value with at least q x size of the values at or below it; 0 when empty.
inline double nearestRankPercentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = size_t(std::ceil(q * double(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

} // namespace moeplan
