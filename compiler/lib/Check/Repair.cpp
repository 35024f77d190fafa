#include "moeplan/Check/Repair.h"

#include "moeplan/Analysis/WeightMemory.h"
#include "moeplan/Check/Rules.h"
#include "moeplan/Support/CheckedMath.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace moeplan {

namespace {

double logDistance(int64_t a, int64_t b) { return std::fabs(std::log2(double(a) / double(b))); }

// The divisor of `n` nearest to `want` on a log scale (ties go to the larger).
int64_t nearestDivisor(int64_t n, int64_t want) {
  int64_t best = 1;
  for (int64_t v : divisors(n))
    if (logDistance(v, want) <= logDistance(best, want)) best = v;
  return best;
}

// Candidates evaluated at most, so that a huge cluster cannot make check slow.
constexpr size_t kMaxCandidates = 20000;

} // namespace

std::vector<int64_t> divisors(int64_t n) {
  std::vector<int64_t> small, large;
  for (int64_t i = 1; i * i <= n; ++i) {
    if (n % i) continue;
    small.push_back(i);
    if (i != n / i) large.push_back(n / i);
  }
  small.insert(small.end(), large.rbegin(), large.rend());
  return small;
}

std::vector<RepairCandidate> nearestValidStrategies(const DeploymentSpec &d, size_t limit) {
  const ModelSpec &m = d.model;
  const StrategySpec &orig = d.strategy;
  const int64_t gpus = d.cluster.gpus();
  const bool moe = m.moeLayerCount() > 0;
  std::vector<RepairCandidate> found;
  size_t evaluated = 0;

  for (int64_t tp : divisors(gpus)) {
    // Cheap necessary conditions first; checkStrategy has the final word.
    if (m.heads % tp) continue;
    for (int64_t pp : divisors(gpus / tp)) {
      if (m.layers % pp) continue;
      int64_t dp = gpus / tp / pp;
      if (d.workload.sequences % dp) continue;
      int64_t mb = nearestDivisor(d.workload.sequences / dp, orig.microBatches);
      for (int64_t ep : moe ? divisors(tp * dp) : std::vector<int64_t>{1}) {
        if (moe && m.experts % ep) continue;
        for (int64_t etp : moe ? divisors(tp * dp / ep) : std::vector<int64_t>{1}) {
          if (moe && m.expertHidden % etp) continue;
          if (++evaluated > kMaxCandidates) break;
          DeploymentSpec cand = d;
          StrategySpec &s = cand.strategy;
          s.tp = tp, s.pp = pp, s.dp = dp, s.ep = ep, s.expertTp = etp, s.microBatches = mb;
          s.expertTpDefaulted = false;
          s.placement.clear();
          std::vector<Finding> findings;
          checkStrategy(cand, findings);
          if (hasErrors(findings)) continue;
          RepairCandidate rc;
          rc.strategy = s;
          rc.warnings = int(findings.size());
          const std::tuple<const char *, int64_t, int64_t> axes[] = {
              {"tp", orig.tp, tp}, {"pp", orig.pp, pp}, {"dp", orig.dp, dp},
              {"ep", orig.ep, ep}, {"expert_tp", orig.expertTp, etp},
              {"micro_batches", orig.microBatches, mb}};
          for (auto [name, was, now] : axes) {
            rc.distance += logDistance(was, now);
            if (was != now)
              rc.changes.push_back(std::string(name) + " " + std::to_string(was) + " -> " +
                                   std::to_string(now));
          }
          for (const StageWeights &w : weightsPerGpu(m, s))
            rc.maxWeightsBytesPerGpu = std::max(rc.maxWeightsBytesPerGpu, w.bytesPerGpu);
          found.push_back(std::move(rc));
        }
      }
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const RepairCandidate &a, const RepairCandidate &b) {
    return std::tie(a.distance, a.warnings, a.maxWeightsBytesPerGpu) <
           std::tie(b.distance, b.warnings, b.maxWeightsBytesPerGpu);
  });
  if (found.size() > limit) found.resize(limit);
  return found;
}

} // namespace moeplan
