// The CPU kernels against straightforward loops written from plan.proto's kernel
// documentation, and against each other where one kernel's meaning is another's special case.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Kernels/Elementwise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace moeplan::kernels;

namespace {

std::vector<float> randomValues(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float &x : v) x = u(gen);
  return v;
}

void expectNear(const std::vector<float> &a, const std::vector<float> &b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "at " << i;
}

TEST(Kernels, GemmMatchesLoops) {
  const int64_t m = 5, n = 7, k = 9;
  auto a = randomValues(m * k, 1), b = randomValues(k * n, 2);
  std::vector<float> c(m * n), bt(n * k), ct(m * n), want(m * n, 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t l = 0; l < k; ++l) want[i * n + j] += a[i * k + l] * b[l * n + j];
  for (int64_t l = 0; l < k; ++l)
    for (int64_t j = 0; j < n; ++j) bt[j * k + l] = b[l * n + j];
  gemm(a.data(), b.data(), c.data(), m, n, k);
  gemm(a.data(), bt.data(), ct.data(), m, n, k, /*transposeB=*/true);
  expectNear(c, want, 1e-5f);
  expectNear(ct, want, 1e-5f);
}

TEST(Kernels, GeluAndSiluValues) {
  EXPECT_FLOAT_EQ(gelu(0), 0);
  EXPECT_NEAR(gelu(1), 0.8411920f, 1e-6f);   // tanh approximation
  EXPECT_NEAR(gelu(-2), -0.0454023f, 1e-6f);
  EXPECT_NEAR(silu(1), 1 / (1 + std::exp(-1.0f)), 1e-7f);
  EXPECT_NEAR(swiglu(2, 3), 3 * 2 / (1 + std::exp(-2.0f)), 1e-6f);
}

TEST(Kernels, LayerNormAndRmsNorm) {
  const int64_t m = 3, n = 8;
  auto x = randomValues(m * n, 3);
  std::vector<float> ones(n, 1), zeros(n, 0), y(m * n);
  norm(x.data(), ones.data(), zeros.data(), y.data(), m, n, NormKind::LayerNorm, 1e-5f);
  for (int64_t r = 0; r < m; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += y[r * n + i] / n;
    for (int64_t i = 0; i < n; ++i) var += (y[r * n + i] - mean) * (y[r * n + i] - mean) / n;
    EXPECT_NEAR(mean, 0, 1e-6);
    EXPECT_NEAR(var, 1, 1e-3);  // eps shrinks it slightly
  }
  norm(x.data(), ones.data(), nullptr, y.data(), m, n, NormKind::RmsNorm, 0);
  for (int64_t r = 0; r < m; ++r) {
    double square = 0;
    for (int64_t i = 0; i < n; ++i) square += y[r * n + i] * y[r * n + i] / n;
    EXPECT_NEAR(square, 1, 1e-5);
  }
}

// Position-major rows, grouped-query heads: a naive per (sequence, head, position) loop.
TEST(Kernels, AttentionPrefillMatchesLoops) {
  const int64_t S = 3, L = 4, H = 4, Hkv = 2, d = 5;
  auto q = randomValues(S * L * H * d, 4), k = randomValues(S * L * Hkv * d, 5),
       v = randomValues(S * L * Hkv * d, 6);
  std::vector<float> o(S * L * H * d), want(S * L * H * d);
  attentionPrefill(q.data(), k.data(), v.data(), o.data(), S, L, H, Hkv, d);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t p = 0; p < L; ++p) {
        const int64_t row = p * S + s, g = h / (H / Hkv);
        std::vector<double> w(p + 1);
        double max = -1e30, sum = 0;
        for (int64_t i = 0; i <= p; ++i) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += q[row * H * d + h * d + c] * k[(i * S + s) * Hkv * d + g * d + c];
          w[i] = dot / std::sqrt(double(d));
          max = std::max(max, w[i]);
        }
        for (double &x : w) sum += (x = std::exp(x - max));
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t i = 0; i <= p; ++i) acc += w[i] / sum * v[(i * S + s) * Hkv * d + g * d + c];
          want[row * H * d + h * d + c] = float(acc);
        }
      }
  expectNear(o, want, 1e-5f);
}

// A decode step over a cache of the first L-1 positions is prefill's last position.
TEST(Kernels, AttentionDecodeIsPrefillsLastPosition) {
  const int64_t S = 2, L = 5, H = 2, Hkv = 1, d = 4;
  auto q = randomValues(S * L * H * d, 7), k = randomValues(S * L * Hkv * d, 8),
       v = randomValues(S * L * Hkv * d, 9);
  std::vector<float> o(S * L * H * d);
  attentionPrefill(q.data(), k.data(), v.data(), o.data(), S, L, H, Hkv, d);
  const int64_t last = (L - 1) * S;  // first row of the last position
  std::vector<float> od(S * H * d);
  attentionDecode(q.data() + last * H * d, k.data() + last * Hkv * d, v.data() + last * Hkv * d,
                  k.data(), v.data(), od.data(), S, L - 1, H, Hkv, d);
  expectNear(od, std::vector<float>(o.begin() + last * H * d, o.end()), 1e-6f);
}

TEST(Kernels, RouterPicksLargestProbabilitiesTiesToLowerIndex) {
  const std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  std::vector<int32_t> idx(2);
  std::vector<float> gates(2);
  router(logits.data(), idx.data(), gates.data(), 1, 4, 2);
  EXPECT_EQ(idx[0], 1);
  EXPECT_EQ(idx[1], 2);
  double sum = 0;
  for (float l : logits) sum += std::exp(l);
  EXPECT_NEAR(gates[0], std::exp(2.0) / sum, 1e-6);  // not renormalised over the top-k
  EXPECT_NEAR(gates[1], std::exp(2.0) / sum, 1e-6);
}

// Renormalised (Mixtral, Qwen2-MoE's norm_topk_prob): the kept gates keep their ratio and
// sum to 1; top-1 renormalised is a gate of exactly 1.
TEST(Kernels, RouterRenormalisesTheKeptGates) {
  const std::vector<float> logits = {0.5f, 2.0f, 1.0f, -1.0f};
  std::vector<int32_t> idx(2);
  std::vector<float> gates(2);
  router(logits.data(), idx.data(), gates.data(), 1, 4, 2, /*renormalize=*/true);
  EXPECT_EQ(idx[0], 1);
  EXPECT_EQ(idx[1], 2);
  EXPECT_NEAR(gates[0], std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(gates[0] + gates[1], 1.0, 1e-6);
  std::vector<int32_t> one(1);
  std::vector<float> gate(1);
  router(logits.data(), one.data(), gate.data(), 1, 4, 1, true);
  EXPECT_EQ(one[0], 1);
  EXPECT_EQ(gate[0], 1.0f);
}

// RoPE against the formula in double: rows are position-major (row r at position first +
// r / sequences), pair (i, i + d/2) of each head turns by position x theta^(-2i/d); position
// 0 is the identity and every rotation keeps the pair's length.
TEST(Kernels, RopeRotatesPairsByPosition) {
  const int64_t m = 6, heads = 2, d = 8, sequences = 2, first = 5;
  const double theta = 500.0;
  std::vector<float> x(size_t(m * heads * d));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(std::sin(0.37 * double(i) + 0.1));
  std::vector<float> y(x.size());
  rope(x.data(), y.data(), m, heads, d, sequences, first, theta);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < d / 2; ++i) {
        const size_t at = size_t((r * heads + h) * d + i), hi = at + size_t(d / 2);
        const double angle = double(first + r / sequences) * std::pow(theta, -2.0 * double(i) / double(d));
        EXPECT_NEAR(y[at], x[at] * std::cos(angle) - x[hi] * std::sin(angle), 2e-6);
        EXPECT_NEAR(y[hi], x[hi] * std::cos(angle) + x[at] * std::sin(angle), 2e-6);
      }
  std::vector<float> same(x.size());
  rope(x.data(), same.data(), m, heads, d, m, 0, theta);  // every row at position 0
  EXPECT_EQ(same, x);
  rope(x.data(), x.data(), m, heads, d, sequences, first, theta);  // in place
  EXPECT_EQ(x, y);
}

// KV_APPEND from plan.proto: x's rows land at cache rows first_position x sequences on, in
// order; every other row keeps its value.
TEST(Kernels, KvAppendWritesRowsAtThePositionAndNothingElse) {
  const int64_t sequences = 2, positions = 5, n = 3, first = 2, newPositions = 2;
  const int64_t m = sequences * newPositions;
  const auto x = randomValues(size_t(m * n), 21);
  const auto before = randomValues(size_t(positions * sequences * n), 22);
  std::vector<float> cache = before;
  kvAppend(x.data(), cache.data(), m, n, sequences, first);
  for (int64_t row = 0; row < positions * sequences; ++row)
    for (int64_t c = 0; c < n; ++c) {
      const int64_t fresh = row - first * sequences;  // x's row, if written
      const float want = fresh >= 0 && fresh < m ? x[size_t(fresh * n + c)]
                                                 : before[size_t(row * n + c)];
      EXPECT_EQ(cache[size_t(row * n + c)], want) << "row " << row << " column " << c;
    }
  // A decode step's single position appends at the end of the cache.
  kvAppend(x.data(), cache.data(), sequences, n, sequences, positions - 1);
  for (int64_t i = 0; i < sequences * n; ++i)
    EXPECT_EQ(cache[size_t((positions - 1) * sequences * n + i)], x[size_t(i)]);
}

// argmax's pairs carry the logit as its F32 bits.
int32_t bitsOf(float v) {
  int32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

// ARGMAX from plan.proto: each sequence's row at position seq_len - 1 (rows position-major),
// its ids offset by the slice's first id; the pair is (id, the logit's bits).
TEST(Kernels, ArgmaxReadsEachSequencesLastPosition) {
  const int64_t sequences = 3, seqLen = 2, n = 4, firstId = 8;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Position 0's rows would win everywhere: only position 1's count.
  const std::vector<float> logits = {
      9, 9, 9, 9,   9, 9, 9, 9,   9, 9, 9, 9,      // position 0, sequences 0..2
      0.5f, 2, -1, 2,                              // sequence 0: a tie, the lower id wins
      nan, -3, nan, -2,                            // sequence 1: NaN never wins
      -7, -5, -6, -5.5f};                          // sequence 2
  std::vector<int32_t> pairs(2 * sequences, 99);
  argmax(logits.data(), pairs.data(), sequences, seqLen, n, firstId, /*vocabEnd=*/100);
  const std::vector<int32_t> want = {9, bitsOf(2), 11, bitsOf(-2), 9, bitsOf(-5)};
  EXPECT_EQ(pairs, want);
}

// Padding columns (ids from vocab_end on) never count, however large; a slice with no id
// below vocab_end, or only NaN there, gives (-1, -infinity); -infinity itself is a logit.
TEST(Kernels, ArgmaxSkipsPaddingAndMayFindNothing) {
  const int64_t sequences = 2, n = 4;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {1, 3, 50, 60,  nan, -inf, 70, 80};
  std::vector<int32_t> pairs(2 * sequences);
  // Slice [4, 8) of a vocabulary of 6: ids 6 and 7 are padding.
  argmax(logits.data(), pairs.data(), sequences, 1, n, /*firstId=*/4, /*vocabEnd=*/6);
  EXPECT_EQ(pairs, (std::vector<int32_t>{5, bitsOf(3), 5, bitsOf(-inf)}));
  // Only NaN below vocab_end: nothing.
  argmax(logits.data() + n, pairs.data(), 1, 1, n, 4, /*vocabEnd=*/5);
  EXPECT_EQ(pairs[0], -1);
  EXPECT_EQ(pairs[1], bitsOf(-inf));
  // A slice wholly past vocab_end: nothing.
  argmax(logits.data(), pairs.data(), sequences, 1, n, /*firstId=*/8, /*vocabEnd=*/6);
  EXPECT_EQ(pairs, (std::vector<int32_t>{-1, bitsOf(-inf), -1, bitsOf(-inf)}));
}

// ARGMAX_MERGE from plan.proto over one group: ARGMAX's ids pass through to ids and to
// generated's row `column` (generated[n, m] is position-major); the other rows keep their
// values.
TEST(Kernels, ArgmaxMergeOfOneGroupWritesTheColumn) {
  const int64_t m = 2, n = 3, column = 1;
  const std::vector<int32_t> pairs = {4, bitsOf(0.5f), -1, bitsOf(-INFINITY)};
  std::vector<int32_t> ids(m, 99), generated = {10, 20, 11, 21, 12, 22};
  argmaxMerge(pairs.data(), ids.data(), generated.data(), /*groups=*/0, m, n, column);
  EXPECT_EQ(ids, (std::vector<int32_t>{4, -1}));
  EXPECT_EQ(generated, (std::vector<int32_t>{10, 20, 4, -1, 12, 22}));
}

// Over three vocabulary slices: the largest logit wins, ties go to the lowest id whatever
// the group order, a group's -1 never wins, and all -1 gives -1.
TEST(Kernels, ArgmaxMergeOfThreeGroupsTakesTheLargestLowestId) {
  const int64_t groups = 3, m = 4, n = 2;
  const int32_t none = bitsOf(-INFINITY);
  // pairs[g, q]: sequence 0: group 1's 3.0 wins; 1: a tie at 2.0 between ids 20 (group 2)
  // and 9 (group 0); 2: -1 in groups 0 and 2, group 1's -8 wins; 3: all -1.
  const std::vector<int32_t> pairs = {
      1, bitsOf(1),  9, bitsOf(2),   -1, none,        -1, none,          // group 0
      5, bitsOf(3),  12, bitsOf(-1), 13, bitsOf(-8),  -1, none,          // group 1
      7, bitsOf(2),  20, bitsOf(2),  -1, none,        -1, none};         // group 2
  std::vector<int32_t> ids(m), generated(m * n, 7);
  argmaxMerge(pairs.data(), ids.data(), generated.data(), groups, m, n, /*column=*/0);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 9, 13, -1}));
  EXPECT_EQ(generated, (std::vector<int32_t>{5, 9, 13, -1, 7, 7, 7, 7}));
  // The same pairs in reverse group order merge to the same ids.
  std::vector<int32_t> reversed;
  for (int64_t g = groups - 1; g >= 0; --g)
    reversed.insert(reversed.end(), pairs.begin() + g * m * 2, pairs.begin() + (g + 1) * m * 2);
  std::vector<int32_t> again(m);
  argmaxMerge(reversed.data(), again.data(), generated.data(), groups, m, n, /*column=*/1);
  EXPECT_EQ(again, ids);
  EXPECT_EQ(generated, (std::vector<int32_t>{5, 9, 13, -1, 5, 9, 13, -1}));
}

// The two steps together equal one argmax over the whole vocabulary, cut into slices.
TEST(Kernels, ArgmaxOverSlicesThenMergeIsTheWholeArgmax) {
  const int64_t sequences = 3, vocab = 10, slices = 3, width = 4;  // last slice: 2 padded
  const auto whole = randomValues(size_t(sequences * vocab), 23);
  std::vector<int32_t> pairs(size_t(slices * sequences * 2));
  for (int64_t g = 0; g < slices; ++g) {
    std::vector<float> slice(size_t(sequences * width), 1e9f);  // padding that would win
    for (int64_t s = 0; s < sequences; ++s)
      for (int64_t c = 0; c < width && g * width + c < vocab; ++c)
        slice[size_t(s * width + c)] = whole[size_t(s * vocab + g * width + c)];
    argmax(slice.data(), pairs.data() + g * sequences * 2, sequences, 1, width, g * width, vocab);
  }
  std::vector<int32_t> ids(sequences), generated(sequences);
  argmaxMerge(pairs.data(), ids.data(), generated.data(), slices, sequences, 1, 0);
  for (int64_t s = 0; s < sequences; ++s) {
    const float *row = whole.data() + s * vocab;
    EXPECT_EQ(ids[size_t(s)], int32_t(std::max_element(row, row + vocab) - row))
        << "sequence " << s;
  }
  EXPECT_EQ(generated, ids);
}

// Capacity 1 per group, two groups of two tokens: first come, first served in (token,
// choice) order within each group; combine sums the kept choices' gated rows.
TEST(Kernels, DispatchDropsInTokenOrderPerGroupAndCombineInverts) {
  const int64_t T = 4, n = 2, E = 2, K = 1, C = 1, G = 2;
  const std::vector<float> x = {1, 1, 2, 2, 3, 3, 4, 4};
  const std::vector<int32_t> idx = {0, 0, 1, 0};  // token 1 finds expert 0 full in group 0
  std::vector<float> slotsX(E * G * C * n);
  std::vector<int32_t> slots(T * K);
  DispatchCounts counts;
  dispatch(x.data(), idx.data(), slotsX.data(), slots.data(), T, n, E, K, C, G, &counts);
  EXPECT_EQ(slots, (std::vector<int32_t>{0, -1, 1, 1}));
  EXPECT_EQ(slotsX, (std::vector<float>{1, 1, 4, 4, 0, 0, 3, 3}));
  EXPECT_EQ(counts.routed, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(counts.dropped, 1);
  const std::vector<float> gates = {0.5f, 0.5f, 0.25f, 1.0f};
  std::vector<float> y(T * n);
  combine(slotsX.data(), idx.data(), slots.data(), gates.data(), y.data(), T, n, E, K, C, G);
  EXPECT_EQ(y, (std::vector<float>{0.5f, 0.5f, 0, 0, 0.75f, 0.75f, 4, 4}));
}

// Drop policy probs: in each group an expert over capacity keeps its choices with the
// highest gates (ties to the earlier token), and the kept take slots in token order.
TEST(Kernels, DispatchByProbsKeepsTheHighestGates) {
  const int64_t T = 6, n = 1, E = 2, K = 1, C = 2, G = 1;
  const std::vector<float> x = {10, 11, 12, 13, 14, 15};
  const std::vector<int32_t> idx = {0, 0, 1, 0, 0, 0};
  const std::vector<float> gates = {0.2f, 0.9f, 0.5f, 0.3f, 0.9f, 0.1f};
  std::vector<float> slotsX(E * G * C * n);
  std::vector<int32_t> slots(T * K);
  DispatchCounts counts;
  dispatch(x.data(), idx.data(), slotsX.data(), slots.data(), T, n, E, K, C, G, &counts,
           gates.data());
  // Expert 0 gets tokens 0, 1, 3, 4, 5: the two 0.9s (tokens 1 and 4) stay, in token order.
  EXPECT_EQ(slots, (std::vector<int32_t>{-1, 0, 0, -1, 1, -1}));
  EXPECT_EQ(slotsX, (std::vector<float>{11, 14, 12, 0}));
  EXPECT_EQ(counts.dropped, 3);
  // Ties go to the earlier token; without drops probs and position agree.
  const std::vector<float> tied = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  dispatch(x.data(), idx.data(), slotsX.data(), slots.data(), T, n, E, K, C, G, nullptr, tied.data());
  EXPECT_EQ(slots, (std::vector<int32_t>{0, 1, 0, -1, -1, -1}));
  const int64_t roomy = 5;  // no expert over capacity
  std::vector<float> roomySlotsX(E * G * roomy * n);
  std::vector<int32_t> byPosition(T * K);
  dispatch(x.data(), idx.data(), roomySlotsX.data(), byPosition.data(), T, n, E, K, roomy, G, nullptr);
  dispatch(x.data(), idx.data(), roomySlotsX.data(), slots.data(), T, n, E, K, roomy, G, nullptr,
           gates.data());
  EXPECT_EQ(slots, byPosition);
}

TEST(Kernels, DispatchRejectsGroupsThatDoNotDivideTokens) {
  std::vector<float> x(6), sx(12);
  std::vector<int32_t> idx(3), slots(3);
  EXPECT_THROW(dispatch(x.data(), idx.data(), sx.data(), slots.data(), 3, 2, 2, 1, 3, 2, nullptr),
               std::invalid_argument);
}

// Groups 0 means 1: a combine without groups reads y[experts, capacity, n], as old plans
// (capacity the total, no groups) meant.
TEST(Kernels, CombineGroupsZeroIsOneGroup) {
  const std::vector<float> y = {1, 2, 3, 4, 5, 6, 7, 8};  // [2 experts, 2 rows, 2]
  const std::vector<int32_t> idx = {1, 0}, slots = {1, 0};
  const std::vector<float> gates = {1, 2};
  std::vector<float> zero(4), one(4);
  combine(y.data(), idx.data(), slots.data(), gates.data(), zero.data(), 2, 2, 2, 1, 2, 0);
  combine(y.data(), idx.data(), slots.data(), gates.data(), one.data(), 2, 2, 2, 1, 2, 1);
  EXPECT_EQ(zero, (std::vector<float>{7, 8, 2, 4}));
  EXPECT_EQ(one, zero);
}

// Dimensions past what the kernels' 32-bit interfaces take are refused before any operand is
// touched (so null pointers stand in for buffers of 2^31 and more elements): BLAS takes
// int m, n, k; slots are I32, so groups x capacity rows must fit one.
TEST(Kernels, DimensionsPastInt32AreRefusedBeforeAnyAccess) {
  const int64_t big = int64_t(1) << 31;
  EXPECT_THROW(gemm(nullptr, nullptr, nullptr, big, 4, 4), std::invalid_argument);
  EXPECT_THROW(gemm(nullptr, nullptr, nullptr, 4, big, 4), std::invalid_argument);
  EXPECT_THROW(gemm(nullptr, nullptr, nullptr, 4, 4, big, /*transposeB=*/true),
               std::invalid_argument);
  EXPECT_THROW(groupedGemm(nullptr, nullptr, nullptr, 2, 4, 4, big), std::invalid_argument);
  // 2 groups x 2^30 rows: 2^31, one past the largest I32 slot + 1.
  EXPECT_THROW(dispatch(nullptr, nullptr, nullptr, nullptr, 2, 1, 1, 1, big / 2, 2, nullptr),
               std::invalid_argument);
  EXPECT_THROW(combine(nullptr, nullptr, nullptr, nullptr, nullptr, 2, 1, 1, 1, big / 2, 2),
               std::invalid_argument);
  EXPECT_THROW(combine(nullptr, nullptr, nullptr, nullptr, nullptr, 2, 1, 1, 1, big, 0),
               std::invalid_argument);
  // The products of huge factors are refused, not wrapped.
  EXPECT_THROW(combine(nullptr, nullptr, nullptr, nullptr, nullptr, 2, 1, 1, 1, int64_t(1) << 40,
                       int64_t(1) << 40),
               std::invalid_argument);
}

TEST(Kernels, EmbeddingZerosOutsideItsRows) {
  const std::vector<float> table = {1, 1, 2, 2};  // ids 10 and 11
  const std::vector<int32_t> ids = {11, 3, 10};
  std::vector<float> out(6);
  embedding(ids.data(), table.data(), out.data(), 3, 2, 10, 10, 12);
  EXPECT_EQ(out, (std::vector<float>{2, 2, 0, 0, 1, 1}));
}

TEST(Kernels, TransposeBiasAddAdd) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};  // [2, 3, 1]
  std::vector<float> y(6);
  transpose(x.data(), y.data(), 2, 3, 1);
  EXPECT_EQ(y, (std::vector<float>{1, 4, 2, 5, 3, 6}));
  const std::vector<float> bias = {10, 20, 30, 40};  // [2 groups, 2]
  std::vector<float> z = {1, 1, 2, 2};                // [2 groups, 1 row, 2]
  biasAdd(z.data(), bias.data(), z.data(), 2, 1, 2);
  EXPECT_EQ(z, (std::vector<float>{11, 21, 32, 42}));
  add(z.data(), z.data(), z.data(), 4);
  EXPECT_EQ(z, (std::vector<float>{22, 42, 64, 84}));
}

} // namespace
