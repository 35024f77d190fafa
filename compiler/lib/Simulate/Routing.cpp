#include "moeplan/Simulate/Routing.h"

#include "moeplan/Plan/PlanFile.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>

namespace moeplan::sim {

namespace {

// Monte Carlo budgets: binomial draws per estimate of the busiest position (draws of every
// expert of every group, per trial), and trials of the Gaussian and multinomial estimates.
constexpr int64_t kDrawBudget = int64_t(1) << 17;
constexpr int64_t kMinTrials = 32, kMaxTrials = 256;
constexpr int kGaussianTrials = 512;
constexpr int kBalanceTrials = 1024;
// Up to this many choices in a batch, the load balance draws the multinomial exactly.
constexpr int64_t kExactBalanceChoices = 100'000;
// Below this many expected choices per expert and group, counts are drawn exactly.
constexpr double kDiscreteMean = 20;

// A seed from the inputs (the sizes and every choice probability), so that an estimate
// never depends on what ran before it.
uint64_t seedOf(std::initializer_list<int64_t> sizes, const std::vector<double> &pi) {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ull;
  };
  for (int64_t v : sizes) mix(uint64_t(v));
  for (double p : pi) {
    uint64_t bits;
    std::memcpy(&bits, &p, sizeof bits);
    mix(bits);
  }
  return h;
}

// What a seed hashes: the choice probabilities, and the stickiness where there is one (so
// that independent tokens keep the seeds they always had).
std::vector<double> withStickiness(std::vector<double> pi, const RoutingModel &m) {
  if (m.stickiness > 0) pi.push_back(m.stickiness);
  return pi;
}

// Moments of one expert's choices in one group, X ~ Binomial(t, pi), against c slots.
struct Kept {
  double mean = 0, variance = 0;  // of min(X, c): the rows kept
  double dropped = 0;             // E[max(0, X - c)]
};

Kept keptMoments(int64_t t, double pi, int64_t c) {
  Kept k;
  if (t <= 0 || pi <= 0) return k;
  if (pi >= 1) {
    k.mean = double(std::min(t, c));
    k.dropped = double(std::max<int64_t>(0, t - c));
    return k;
  }
  // The pmf over mu +- 12 sigma (the rest is below 1e-30 of the mass), renormalised; from
  // its value at the window's start by the ratio p(x+1)/p(x) = (t-x)/(x+1) x pi/(1-pi).
  const double mu = double(t) * pi, sigma = std::sqrt(double(t) * pi * (1 - pi));
  const int64_t lo = std::max<int64_t>(0, int64_t(std::floor(mu - 12 * sigma)) - 2);
  const int64_t hi = std::min<int64_t>(t, int64_t(std::ceil(mu + 12 * sigma)) + 2);
  const double odds = pi / (1 - pi);
  // Scaled by the pmf at the mode, so the recurrence neither underflows nor overflows.
  const auto logPmf = [&](int64_t x) {
    return std::lgamma(double(t) + 1) - std::lgamma(double(x) + 1) - std::lgamma(double(t - x) + 1) +
           double(x) * std::log(pi) + double(t - x) * std::log1p(-pi);
  };
  const int64_t mode = std::clamp<int64_t>(int64_t(std::floor(double(t + 1) * pi)), lo, hi);
  double p = std::exp(logPmf(lo) - logPmf(mode));
  double mass = 0, s1 = 0, s2 = 0, over = 0;
  for (int64_t x = lo; x <= hi; p *= double(t - x) / double(x + 1) * odds, ++x) {
    const double kept = double(std::min(x, c));
    mass += p;
    s1 += p * kept;
    s2 += p * kept * kept;
    over += p * double(std::max<int64_t>(0, x - c));
  }
  k.mean = s1 / mass;
  k.variance = std::max(0.0, s2 / mass - k.mean * k.mean);
  k.dropped = over / mass;
  return k;
}

// Var of one expert's count among t sticky tokens over t pi (1 - pi), its binomial variance:
// the indicator "token chose e" is a Markov chain whose lag-k correlation is rho^k.
double stickyVarianceFactor(int64_t t, double rho) {
  if (rho <= 0 || t <= 1) return 1;
  const double q = 1 - rho;
  return (1 + rho) / q - 2 * rho * (1 - std::pow(rho, double(t))) / (double(t) * q * q);
}

// Above this many (token x count) steps the sticky count's pmf is a moment-matched normal
// instead of the exact chain (groups of thousands of tokens, where the chain is near normal).
constexpr double kStickyStepBudget = 2e7;

// P(X = x), x = 0, 1, .. (to where the rest is negligible), for X = one expert's choices
// among t tokens when each token repeats its predecessor's choices with probability rho and
// else chooses e with probability pi. Exact: dynamic programming over the tokens on
// (count, whether the last token chose e); truncated 12 sigma above the mean, renormalised.
std::vector<double> stickyPmf(int64_t t, double pi, double rho) {
  if (t <= 0 || pi <= 0) return {1.0};
  if (pi >= 1) {
    std::vector<double> p(size_t(t) + 1, 0.0);
    p.back() = 1;
    return p;
  }
  const double mean = double(t) * pi;
  const double sigma = std::sqrt(mean * (1 - pi) * stickyVarianceFactor(t, rho));
  const int64_t hi = std::min<int64_t>(t, int64_t(std::ceil(mean + 12 * sigma)) + 2);
  std::vector<double> pmf(size_t(hi) + 1, 0.0);
  if (double(t) * double(hi) > kStickyStepBudget) {
    double mass = 0;
    for (int64_t x = 0; x <= hi; ++x) {
      const double z = (double(x) - mean) / sigma;
      mass += pmf[size_t(x)] = std::exp(-0.5 * z * z);
    }
    for (double &v : pmf) v /= mass;
    return pmf;
  }
  // chose[x], other[x]: P(count x so far, and the last token chose e / did not).
  std::vector<double> chose(size_t(hi) + 2, 0.0), other(size_t(hi) + 2, 0.0);
  std::vector<double> nextChose(chose.size()), nextOther(other.size());
  chose[1] = pi, other[0] = 1 - pi;
  for (int64_t token = 1; token < t; ++token) {
    std::fill(nextChose.begin(), nextChose.end(), 0.0);
    std::fill(nextOther.begin(), nextOther.end(), 0.0);
    const int64_t top = std::min(token, hi);
    for (int64_t x = 0; x <= top; ++x) {
      const double fresh = (1 - rho) * (chose[size_t(x)] + other[size_t(x)]);
      if (x + 1 <= hi) nextChose[size_t(x + 1)] += rho * chose[size_t(x)] + fresh * pi;
      nextOther[size_t(x)] += rho * other[size_t(x)] + fresh * (1 - pi);
    }
    std::swap(chose, nextChose);
    std::swap(other, nextOther);
  }
  double mass = 0;
  for (int64_t x = 0; x <= hi; ++x) mass += pmf[size_t(x)] = chose[size_t(x)] + other[size_t(x)];
  for (double &v : pmf) v /= mass;
  return pmf;
}

Kept keptFromPmf(const std::vector<double> &pmf, int64_t c) {
  Kept k;
  double s2 = 0;
  for (size_t x = 0; x < pmf.size(); ++x) {
    const double kept = double(std::min<int64_t>(int64_t(x), c));
    k.mean += pmf[x] * kept;
    s2 += pmf[x] * kept * kept;
    k.dropped += pmf[x] * double(std::max<int64_t>(0, int64_t(x) - c));
  }
  k.variance = std::max(0.0, s2 - k.mean * k.mean);
  return k;
}

// One expert's kept moments under the model: binomial for independent tokens, else the
// sticky chain's.
Kept keptMoments(int64_t t, double pi, int64_t c, double rho) {
  return rho > 0 ? keptFromPmf(stickyPmf(t, pi, rho), c) : keptMoments(t, pi, c);
}

// P(X <= x) for X ~ Binomial(t, pi), x = 0.. until it reaches 1 (to 1e-15; the last entry
// is 1). For small means: the table is mean + 12 sigma long at most.
std::vector<double> binomialCdf(int64_t t, double pi) {
  if (pi <= 0 || t <= 0) return {1.0};
  if (pi >= 1) {
    std::vector<double> c(size_t(t) + 1, 0.0);
    c.back() = 1;
    return c;
  }
  std::vector<double> c;
  double p = std::exp(double(t) * std::log1p(-pi)), total = 0;  // P(X = 0)
  const double odds = pi / (1 - pi);
  for (int64_t x = 0; x <= t; p *= double(t - x) / double(x + 1) * odds, ++x) {
    total += p;
    c.push_back(total);
    if (1 - total < 1e-15 && double(x) > double(t) * pi) break;
  }
  c.back() = 1;
  return c;
}

// The same for the model's count: binomial, or the sticky chain's.
std::vector<double> countCdf(int64_t t, double pi, double rho) {
  if (rho <= 0) return binomialCdf(t, pi);
  std::vector<double> c = stickyPmf(t, pi, rho);
  for (size_t x = 1; x < c.size(); ++x) c[x] += c[x - 1];
  c.back() = 1;
  return c;
}

void checkStickiness(double rho) {
  if (!(rho >= 0 && rho < 1))
    throw std::invalid_argument("routing model: stickiness " + std::to_string(rho) + " is not in [0, 1)");
}

} // namespace

std::vector<double> choiceProbabilities(const RoutingModel &m) {
  if (m.experts <= 0 || m.topK <= 0) throw std::invalid_argument("routing model: no experts");
  std::vector<double> pi(size_t(m.experts), std::min(1.0, double(m.topK) / double(m.experts)));
  if (m.weights.empty()) return pi;
  if (int64_t(m.weights.size()) != m.experts)
    throw std::invalid_argument("routing model: " + std::to_string(m.weights.size()) +
                                " expert loads for " + std::to_string(m.experts) + " experts");
  double total = 0;
  for (double w : m.weights) {
    if (!(w >= 0) || !std::isfinite(w))
      throw std::invalid_argument("routing model: an expert load is negative or not finite");
    total += w;
  }
  if (!(total > 0)) throw std::invalid_argument("routing model: the expert loads sum to 0");
  for (size_t e = 0; e < pi.size(); ++e)
    pi[e] = std::min(1.0, double(m.topK) * m.weights[e] / total);
  return pi;
}

namespace {

// A uniform double in [0, 1) from one 64-bit draw, bit for bit what libstdc++'s
// std::uniform_real_distribution<double>(0, 1) gives (generate_canonical: the draw over
// 2^64, kept below 1), without the long-double logarithm it takes on every call (5 % of a
// search).
double unitUniform(std::mt19937_64 &rng) {
  static_assert(std::mt19937_64::min() == 0 && std::mt19937_64::max() == UINT64_MAX);
  const double u = double(rng()) * 0x1p-64;
  return u < 1.0 ? u : std::nextafter(1.0, 0.0);
}

DispatchEstimate computeDispatch(const RoutingModel &m, const Dispatch &d) {
  if (d.positions <= 0 || d.sources <= 0 || d.groups <= 0 || d.capacity < 0 || d.tokensPerGroup < 0)
    throw std::invalid_argument("routing model: a dispatch needs positive ranks and groups");
  checkStickiness(m.stickiness);
  const std::vector<double> pi = choiceProbabilities(m);
  const int64_t E = m.experts, P = d.positions, t = d.tokensPerGroup, C = d.capacity;
  const double groups = double(d.sources) * double(d.groups);  // independent groups per position

  std::vector<Kept> kept(static_cast<size_t>(E));
  std::vector<double> posMean(size_t(P), 0.0), posVar(size_t(P), 0.0);
  double choices = 0, dropped = 0, keptTotal = 0, largestMean = 0;
  for (int64_t e = 0; e < E; ++e) {
    // Experts of equal load share their moments (all of them under uniform routing).
    if (e > 0 && pi[size_t(e)] == pi[size_t(e - 1)]) kept[size_t(e)] = kept[size_t(e - 1)];
    else kept[size_t(e)] = keptMoments(t, pi[size_t(e)], C, m.stickiness);
    largestMean = std::max(largestMean, double(t) * pi[size_t(e)]);
    const int64_t q = expertPosition(e, E, P);
    posMean[size_t(q)] += kept[size_t(e)].mean;
    posVar[size_t(q)] += kept[size_t(e)].variance;
    choices += double(t) * pi[size_t(e)];
    dropped += kept[size_t(e)].dropped;
    keptTotal += kept[size_t(e)].mean;
  }
  DispatchEstimate r;
  r.droppedFraction = choices > 0 ? dropped / choices : 0;
  r.routedRows = groups * choices / double(P);
  r.meanRows = groups * keptTotal / double(P);
  r.paddedRows = groups * double(C) * double(E) / double(P);
  if (P == 1) {
    r.maxRows = r.meanRows;
    return r;
  }

  std::mt19937_64 rng(seedOf({E, m.topK, t, d.groups, C, d.sources, P}, withStickiness(pi, m)));
  double sumMax = 0;
  const int64_t draws = int64_t(groups) * E;
  if (draws * kMinTrials <= kDrawBudget && largestMean < kDiscreteMean) {
    // Few choices per expert (far from Gaussian), and few enough groups to draw every
    // expert of every group: exact under the model.
    const int64_t trials = std::clamp(kDrawBudget / std::max<int64_t>(1, draws), kMinTrials, kMaxTrials);
    // Each expert's count by inversion of its binomial CDF (tabulated once per load): a
    // uniform draw and a short scan, the mean being small.
    std::vector<std::vector<double>> tables;
    std::vector<const std::vector<double> *> cdf(static_cast<size_t>(E));
    tables.reserve(size_t(E));
    for (int64_t e = 0; e < E; ++e) {
      if (e == 0 || pi[size_t(e)] != pi[size_t(e - 1)]) tables.push_back(countCdf(t, pi[size_t(e)], m.stickiness));
      cdf[size_t(e)] = &tables.back();
    }
    std::vector<double> load(static_cast<size_t>(P));
    for (int64_t trial = 0; trial < trials; ++trial) {
      std::fill(load.begin(), load.end(), 0.0);
      for (int64_t g = 0; g < int64_t(groups); ++g)
        for (int64_t e = 0; e < E; ++e) {
          const std::vector<double> &c = *cdf[size_t(e)];
          const double v = unitUniform(rng);
          int64_t x = 0;
          while (x + 1 < int64_t(c.size()) && c[size_t(x)] < v) ++x;
          load[size_t(expertPosition(e, E, P))] += double(std::min(x, C));
        }
      sumMax += *std::max_element(load.begin(), load.end());
    }
    r.maxRows = sumMax / double(trials);
  } else {
    // A position's rows are a sum over many experts and groups of counts that are each
    // near-Gaussian (or many): Gaussian with the moments summed.
    std::normal_distribution<double> z(0.0, 1.0);
    for (int trial = 0; trial < kGaussianTrials; ++trial) {
      double best = 0;
      for (int64_t q = 0; q < P; ++q) {
        double rows = groups * posMean[size_t(q)] + std::sqrt(groups * posVar[size_t(q)]) * z(rng);
        best = std::max(best, std::clamp(rows, 0.0, groups * double(C) * double(E)));
      }
      sumMax += best;
    }
    r.maxRows = sumMax / kGaussianTrials;
  }
  r.maxRows = std::max(r.maxRows, r.meanRows);  // the busiest position carries at least the mean
  return r;
}

} // namespace

double expectedDropped(const RoutingModel &m, int64_t tokensPerGroup, int64_t capacity) {
  checkStickiness(m.stickiness);
  const std::vector<double> pi = choiceProbabilities(m);
  double choices = 0, dropped = 0;
  for (size_t e = 0; e < pi.size(); ++e) {
    choices += double(tokensPerGroup) * pi[e];
    dropped += keptMoments(tokensPerGroup, pi[e], capacity, m.stickiness).dropped;
  }
  return choices > 0 ? dropped / choices : 0;
}

double fitStickiness(const RoutingModel &m, int64_t tokensPerGroup, int64_t capacity,
                     double dropped) {
  RoutingModel at = m;
  auto drops = [&](double rho) {
    at.stickiness = rho;
    return expectedDropped(at, tokensPerGroup, capacity);
  };
  if (drops(0) >= dropped) return 0;
  const double most = planfile::PlanLimits::kStickiness;
  if (drops(most) <= dropped) return most;
  double lo = 0, hi = most;
  for (int i = 0; i < 40; ++i) {
    const double mid = (lo + hi) / 2;
    (drops(mid) < dropped ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

namespace {

double computeLoadBalance(const RoutingModel &m, int64_t tokens, int64_t positions) {
  if (positions <= 1 || tokens <= 0) return 1;
  const std::vector<double> pi = choiceProbabilities(m);
  std::vector<double> share(size_t(positions), 0.0);
  double total = 0;
  for (int64_t e = 0; e < m.experts; ++e) {
    share[size_t(expertPosition(e, m.experts, positions))] += pi[size_t(e)];
    total += pi[size_t(e)];
  }
  const int64_t n = tokens * m.topK;
  std::mt19937_64 rng(seedOf({m.experts, m.topK, tokens, positions}, pi));
  double sum = 0;
  if (n > kExactBalanceChoices) {
    // Many choices: the multinomial's normal limit, loads n p_q + sqrt(n) (sqrt(p_q) z_q -
    // p_q sum_r sqrt(p_r) z_r), whose covariance is n (diag(p) - p p^T) exactly.
    std::normal_distribution<double> z(0.0, 1.0);
    std::vector<double> p(share.size()), draw(share.size());
    for (size_t q = 0; q < share.size(); ++q) p[q] = share[q] / total;
    for (int trial = 0; trial < kGaussianTrials; ++trial) {
      double common = 0, most = 0;
      for (size_t q = 0; q < p.size(); ++q) common += std::sqrt(p[q]) * (draw[q] = z(rng));
      for (size_t q = 0; q < p.size(); ++q)
        most = std::max(most, double(n) * p[q] +
                                  std::sqrt(double(n)) * (std::sqrt(p[q]) * draw[q] - p[q] * common));
      sum += double(n) / double(positions) / most;
    }
    return sum / kGaussianTrials;
  }
  for (int trial = 0; trial < kBalanceTrials; ++trial) {
    // Multinomial by successive binomials: position q takes Binomial(left, share_q / rest).
    int64_t left = n, most = 0;
    double rest = total;
    for (int64_t q = 0; q < positions && left > 0; ++q) {
      const double p = rest > 0 ? std::clamp(share[size_t(q)] / rest, 0.0, 1.0) : 1.0;
      const int64_t x = q + 1 == positions || p >= 1 ? left
                        : p <= 0                      ? 0
                                 : std::binomial_distribution<int64_t>(left, p)(rng);
      most = std::max(most, x);
      left -= x;
      rest -= share[size_t(q)];
    }
    sum += double(n) / double(positions) / double(most);
  }
  return sum / kBalanceTrials;
}

// Every input of an estimate, bit for bit: the estimates are seeded by their inputs, so one
// computed before answers for every later call with the same inputs.
std::vector<uint64_t> memoKey(const RoutingModel &m, std::initializer_list<int64_t> sizes) {
  std::vector<uint64_t> key{uint64_t(m.experts), uint64_t(m.topK)};
  for (int64_t v : sizes) key.push_back(uint64_t(v));
  auto bits = [](double v) {
    uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
  };
  key.push_back(bits(m.stickiness));
  for (double w : m.weights) key.push_back(bits(w));
  return key;
}

// A process-wide memo of a pure estimate: a search compiles thousands of candidates whose
// dispatches repeat a few shapes, and each estimate is a Monte Carlo of milliseconds.
template <class Value>
class Memo {
public:
  template <class Compute>
  Value get(std::vector<uint64_t> key, Compute compute) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (auto it = values_.find(key); it != values_.end()) return it->second;
    }
    Value v = compute();  // outside the lock: threads estimating other shapes go on
    std::lock_guard<std::mutex> lock(mutex_);
    if (values_.size() >= kMaxEntries) values_.clear();
    values_.emplace(std::move(key), v);
    return v;
  }

private:
  static constexpr size_t kMaxEntries = 1 << 14;
  std::mutex mutex_;
  std::map<std::vector<uint64_t>, Value> values_;
};

} // namespace

DispatchEstimate estimateDispatch(const RoutingModel &m, const Dispatch &d) {
  static Memo<DispatchEstimate> memo;
  return memo.get(memoKey(m, {d.tokensPerGroup, d.groups, d.capacity, d.sources, d.positions}),
                  [&] { return computeDispatch(m, d); });
}

double expectedLoadBalance(const RoutingModel &m, int64_t tokens, int64_t positions) {
  static Memo<double> memo;
  return memo.get(memoKey(m, {tokens, positions}),
                  [&] { return computeLoadBalance(m, tokens, positions); });
}

} // namespace moeplan::sim
