// The routing model against brute force: tokens that really choose top_k distinct experts,
// groups that really fill their slots, counted over many random trials.
#include "moeplan/Simulate/Routing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

using namespace moeplan::sim;

namespace {

struct Counted {
  double dropped = 0, meanRows = 0, maxRows = 0;
};

// Each token picks top_k distinct experts: uniformly, or by successive draws proportional to
// the weights (top_k 1 only, where that is exactly the model's pi).
std::vector<int64_t> choose(std::mt19937 &rng, const RoutingModel &m) {
  std::vector<int64_t> picked;
  if (m.weights.empty()) {
    while (int64_t(picked.size()) < m.topK) {
      int64_t e = std::uniform_int_distribution<int64_t>(0, m.experts - 1)(rng);
      if (std::find(picked.begin(), picked.end(), e) == picked.end()) picked.push_back(e);
    }
  } else {
    std::discrete_distribution<int64_t> d(m.weights.begin(), m.weights.end());
    picked.push_back(d(rng));
  }
  return picked;
}

Counted bruteForce(const RoutingModel &m, const Dispatch &d, int trials) {
  std::mt19937 rng(12345);
  Counted c;
  double choices = 0, dropped = 0;
  for (int trial = 0; trial < trials; ++trial) {
    std::vector<double> rows(size_t(d.positions), 0.0);
    for (int64_t g = 0; g < d.sources * d.groups; ++g) {
      std::vector<int64_t> filled(size_t(m.experts), 0), last;
      for (int64_t t = 0; t < d.tokensPerGroup; ++t) {
        // A sticky token takes its predecessor's experts.
        if (t == 0 || std::uniform_real_distribution<double>(0, 1)(rng) >= m.stickiness)
          last = choose(rng, m);
        for (int64_t e : last) {
          choices += 1;
          if (filled[size_t(e)] < d.capacity) {
            ++filled[size_t(e)];
            rows[size_t(e * d.positions / m.experts)] += 1;
          } else {
            dropped += 1;
          }
        }
      }
    }
    c.meanRows += std::accumulate(rows.begin(), rows.end(), 0.0) / double(d.positions);
    c.maxRows += *std::max_element(rows.begin(), rows.end());
  }
  c.dropped = dropped / choices;
  c.meanRows /= trials;
  c.maxRows /= trials;
  return c;
}

void expectClose(const RoutingModel &m, const Dispatch &d, int trials, double maxRelative) {
  DispatchEstimate e = estimateDispatch(m, d);
  Counted b = bruteForce(m, d, trials);
  EXPECT_NEAR(e.droppedFraction, b.dropped, 0.01);
  EXPECT_NEAR(e.meanRows, b.meanRows, 0.01 * b.meanRows + 0.05);
  EXPECT_NEAR(e.maxRows, b.maxRows, maxRelative * b.maxRows);
  EXPECT_NEAR(e.routedRows,
              double(d.sources * d.groups * d.tokensPerGroup * m.topK) / double(d.positions), 1e-9);
  EXPECT_DOUBLE_EQ(e.paddedRows, double(d.sources * d.groups * d.capacity * m.experts / d.positions));
  EXPECT_GE(e.maxRows, e.meanRows);
  EXPECT_LE(e.maxRows, e.paddedRows);
}

} // namespace

// The tiny example: 32 tokens per rank into 64 experts with one slot each, 8 EP ranks.
TEST(Routing, TinyExampleMatchesBruteForce) {
  expectClose({64, 1, {}}, {32, 1, 1, 8, 8}, 4000, 0.02);
}

TEST(Routing, TopTwoWithSeveralGroupsMatchesBruteForce) {
  expectClose({8, 2, {}}, {64, 2, 20, 4, 4}, 4000, 0.02);
}

TEST(Routing, WeightedRoutingMatchesBruteForce) {
  expectClose({16, 1, {4, 1, 1, 1, 2, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1}}, {100, 1, 8, 4, 4}, 4000,
              0.02);
}

// Many groups per position: the Gaussian path.
TEST(Routing, ManyGroupsMatchBruteForce) {
  expectClose({64, 1, {}}, {512, 2, 10, 64, 16}, 200, 0.02);
}

TEST(Routing, DroplessKeepsEverything) {
  DispatchEstimate e = estimateDispatch({64, 2, {}}, {256, 1, 256, 8, 8});
  EXPECT_EQ(e.droppedFraction, 0);
  EXPECT_NEAR(e.meanRows, e.routedRows, 1e-6 * e.routedRows);
  EXPECT_GT(e.maxRows, e.meanRows);  // imbalance: the busiest rank takes more than the mean
  EXPECT_LT(e.maxRows, 0.1 * e.paddedRows);  // and far less than every token to every expert
}

TEST(Routing, OnePositionHasNoImbalance) {
  DispatchEstimate e = estimateDispatch({8, 2, {}}, {64, 1, 20, 1, 1});
  EXPECT_DOUBLE_EQ(e.maxRows, e.meanRows);
  EXPECT_DOUBLE_EQ(expectedLoadBalance({8, 2, {}}, 64, 1), 1.0);
}

TEST(Routing, EstimatesAreDeterministic) {
  RoutingModel m{64, 1, {}};
  Dispatch d{32, 1, 1, 8, 8};
  EXPECT_EQ(estimateDispatch(m, d).maxRows, estimateDispatch(m, d).maxRows);
  EXPECT_EQ(expectedLoadBalance(m, 512, 8), expectedLoadBalance(m, 512, 8));
}

// The estimates are memoized process-wide by their inputs: an estimate made after another
// that differs in any one input is that input's, not the other's.
TEST(Routing, TheMemoTellsEveryInputApart) {
  const RoutingModel m{16, 2, {}, 0};
  const Dispatch d{24, 2, 4, 2, 4};
  auto same = [](const DispatchEstimate &a, const DispatchEstimate &b) {
    return a.droppedFraction == b.droppedFraction && a.routedRows == b.routedRows &&
           a.meanRows == b.meanRows && a.maxRows == b.maxRows && a.paddedRows == b.paddedRows;
  };
  const DispatchEstimate base = estimateDispatch(m, d);
  EXPECT_TRUE(same(base, estimateDispatch(m, d)));
  std::vector<double> skewed(16, 1.0);
  skewed[0] = 4;
  const std::pair<RoutingModel, Dispatch> variants[] = {
      {{32, 2, {}, 0}, d},           {{16, 1, {}, 0}, d},           {{16, 2, skewed, 0}, d},
      {{16, 2, {}, 0.5}, d},         {m, {25, 2, 4, 2, 4}},         {m, {24, 3, 4, 2, 4}},
      {m, {24, 2, 3, 2, 4}},         {m, {24, 2, 4, 1, 4}},         {m, {24, 2, 4, 2, 2}}};
  for (const auto &[vm, vd] : variants) EXPECT_FALSE(same(base, estimateDispatch(vm, vd)));
  const double balance = expectedLoadBalance(m, 256, 4);
  EXPECT_NE(balance, expectedLoadBalance(m, 257, 4));
  EXPECT_NE(balance, expectedLoadBalance(m, 256, 8));
  EXPECT_NE(balance, expectedLoadBalance({16, 2, skewed, 0}, 256, 4));
}

TEST(Routing, LoadBalanceMatchesBruteForce) {
  for (auto [m, tokens, positions] :
       {std::tuple<RoutingModel, int64_t, int64_t>{{64, 1, {}}, 512, 8},
        {{64, 1, {}}, 64, 8},
        {{16, 1, {4, 1, 1, 1, 2, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1}}, 1000, 4},
        {{64, 1, {}}, 1 << 20, 64}}) {
    std::mt19937 rng(777);
    double sum = 0;
    const int trials = tokens > 100000 ? 40 : 4000;
    for (int trial = 0; trial < trials; ++trial) {
      std::vector<double> load(size_t(positions), 0.0);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t e : choose(rng, m)) load[size_t(e * positions / m.experts)] += 1;
      double mean = std::accumulate(load.begin(), load.end(), 0.0) / double(positions);
      sum += mean / *std::max_element(load.begin(), load.end());
    }
    EXPECT_NEAR(expectedLoadBalance(m, tokens, positions), sum / trials, 0.005)
        << tokens << " tokens on " << positions << " positions";
  }
}

// Tokens in clumps: each repeats its predecessor's experts with probability 0.4 (the exact
// chain for few choices per expert; top-2 and weighted loads; the normal limit for large
// groups).
TEST(Routing, StickyTokensMatchBruteForce) {
  expectClose({64, 1, {}, 0.4}, {32, 1, 1, 8, 8}, 4000, 0.02);
  expectClose({64, 1, {}, 0.4}, {32, 1, 2, 8, 8}, 4000, 0.02);
  expectClose({8, 2, {}, 0.6}, {64, 2, 20, 4, 4}, 4000, 0.03);
  expectClose({16, 1, {4, 1, 1, 1, 2, 1, 1, 1, 3, 1, 1, 1, 1, 1, 1, 1}, 0.3}, {100, 1, 8, 4, 4}, 4000,
              0.02);
  expectClose({64, 1, {}, 0.5}, {512, 2, 10, 64, 16}, 200, 0.03);
}

TEST(Routing, StickinessDropsMoreAndFitsBack) {
  const RoutingModel independent{64, 1, {}, 0};
  double last = expectedDropped(independent, 32, 1);
  for (double rho : {0.1, 0.3, 0.5, 0.7, 0.9}) {
    RoutingModel m = independent;
    m.stickiness = rho;
    const double dropped = expectedDropped(m, 32, 1);
    EXPECT_GT(dropped, last) << rho;
    last = dropped;
    EXPECT_NEAR(fitStickiness(independent, 32, 1, dropped), rho, 1e-6);
    EXPECT_DOUBLE_EQ(expectedDropped(m, 32, 1), estimateDispatch(m, {32, 1, 1, 8, 8}).droppedFraction);
  }
  // Fewer drops than independent tokens make: no clumping; more than any: the bound.
  EXPECT_EQ(fitStickiness(independent, 32, 1, 0.01), 0);
  EXPECT_EQ(fitStickiness(independent, 32, 1, 0.999), 0.99);
  EXPECT_THROW(expectedDropped({64, 1, {}, 1.0}, 32, 1), std::invalid_argument);
  EXPECT_THROW(estimateDispatch({64, 1, {}, -0.1}, {32, 1, 1, 8, 8}), std::invalid_argument);
}

TEST(Routing, BadInputsAreRefused) {
  EXPECT_THROW(choiceProbabilities({0, 1, {}}), std::invalid_argument);
  EXPECT_THROW(choiceProbabilities({2, 1, {1}}), std::invalid_argument);
  EXPECT_THROW(choiceProbabilities({2, 1, {0, 0}}), std::invalid_argument);
  EXPECT_THROW(choiceProbabilities({2, 1, {1, -1}}), std::invalid_argument);
  EXPECT_THROW(estimateDispatch({2, 1, {}}, {4, 1, 2, 1, 0}), std::invalid_argument);
}
