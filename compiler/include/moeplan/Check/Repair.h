// Repair: the valid strategies nearest to an invalid one, on the same cluster.
#pragma once

#include "moeplan/Description/Spec.h"

#include <string>
#include <vector>

namespace moeplan {

// The divisors of n (>= 1), ascending.
std::vector<int64_t> divisors(int64_t n);

struct RepairCandidate {
  StrategySpec strategy;
  // Sum over tp, pp, dp, ep, expert_tp, micro_batches of |log2(new / old)|: doubling or
  // halving one degree costs 1.
  double distance = 0;
  std::vector<std::string> changes;  // "dp 2 -> 4"
  int warnings = 0;                  // warnings checkStrategy still reports
  double maxWeightsBytesPerGpu = 0;
};

// Strategies that occupy every GPU of the cluster and pass every error-severity rule of
// checkStrategy(), nearest first (ties: fewer warnings, then less weight memory per GPU).
// Rank order, schedule and capacity factor are kept; micro_batches moves to the nearest
// count that splits each replica's batch. At most `limit` results.
std::vector<RepairCandidate> nearestValidStrategies(const DeploymentSpec &d, size_t limit);

} // namespace moeplan
