// Routed rows (runtime/RoutedRows.h): the fill DISPATCH records, how kernels carry it, and
// packing filled rows for the collectives, against the padded layout computed by hand.
#include "moeplan/Kernels/CpuKernels.h"
#include "moeplan/Runtime/RoutedRows.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace moeplan;
using namespace moeplan::runtime;

namespace {

std::vector<std::pair<int64_t, int64_t>> runs(const RowFill &f, int64_t boundary = 0) {
  std::vector<std::pair<int64_t, int64_t>> r;
  f.forEachRun([&](int64_t first, int64_t count) { r.emplace_back(first, count); }, boundary);
  return r;
}

plan::Kernel kernel(plan::KernelKind kind, int64_t groups, int64_t m, int64_t n, int64_t inner = 0) {
  plan::Kernel k;
  k.set_kind(kind);
  k.set_groups(groups);
  k.set_m(m);
  k.set_n(n);
  k.set_inner(inner);
  return k;
}

} // namespace

// The fill is what the slots say: per (expert, group), the slots taken, which are the first
// rows of the segment.
TEST(RoutedRows, DispatchFillCountsEachSegmentsTakenSlots) {
  const int64_t T = 6, n = 1, E = 2, K = 1, C = 2, G = 2;
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const std::vector<int32_t> idx = {0, 0, 0, 1, 0, 0};  // group 0 drops token 2 at expert 0
  std::vector<float> slotsX(E * G * C * n, -7.0f);
  std::vector<int32_t> slots(T * K), fill(E * G, -1);
  kernels::dispatch(x.data(), idx.data(), slotsX.data(), slots.data(), T, n, E, K, C, G, nullptr,
                    nullptr, fill.data());
  EXPECT_EQ(fill, (std::vector<int32_t>{2, 2, 0, 1}));  // [expert][group]
  // Filled rows hold the tokens; padding is left as it was (not zeroed).
  EXPECT_EQ(slotsX, (std::vector<float>{1, 2, 5, 6, -7, -7, 4, -7}));
}

TEST(RoutedRows, RunsMergeAdjacentFilledRowsButNotAcrossGroups) {
  RowFill f{3, {3, 1, 0, 2, 3, 3}};
  EXPECT_EQ(f.rows(), 18);
  EXPECT_EQ(f.filledRows(), 12);
  EXPECT_EQ(f.filledRows(3, 6), 8);
  EXPECT_EQ(runs(f), (std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {9, 2}, {12, 6}}));
  // A run never crosses a group's first row: full segments of 3 in groups of 6 rows.
  RowFill full{3, {3, 3, 3, 2}};
  EXPECT_EQ(runs(full), (std::vector<std::pair<int64_t, int64_t>>{{0, 11}}));
  EXPECT_EQ(runs(full, 6), (std::vector<std::pair<int64_t, int64_t>>{{0, 6}, {6, 5}}));
  EXPECT_TRUE(runs(RowFill{4, {0, 0}}).empty());
}

TEST(RoutedRows, PartsAndConcatenation) {
  RowFill f{2, {1, 2, 0, 1, 2, 2}};
  EXPECT_EQ(f.part(3, 1).filled, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(concatenate({f.part(3, 0), f.part(3, 1), f.part(3, 2)}).filled, f.filled);
  EXPECT_THROW(f.part(4, 0), std::invalid_argument);
  EXPECT_THROW(concatenate({RowFill{2, {1}}, RowFill{3, {1}}}), std::invalid_argument);
}

// A regroup transpose x[m, n, inner] -> y[n, m, inner] moves whole segments: the fill is
// permuted as the data is; GEMM-like kernels keep it, and refuse rows that do not match.
TEST(RoutedRows, OutputFillFollowsTheKernel) {
  // x[2, 3, inner] with one segment of 2 rows per block of 2 x 3 blocks.
  RowFill x{2, {0, 1, 2, 2, 1, 0}};
  const RowFill y = outputFill(kernel(plan::TRANSPOSE, 0, 2, 3, 2 * 4), x);
  EXPECT_EQ(y.filled, (std::vector<int32_t>{0, 2, 1, 1, 2, 0}));  // y[j, i] = x[i, j]
  EXPECT_EQ(outputFill(kernel(plan::GROUPED_GEMM, 2, 6, 5), x).filled, x.filled);
  EXPECT_EQ(outputFill(kernel(plan::ACTIVATION_FUNCTION, 0, 12, 5), x).filled, x.filled);
  EXPECT_THROW(outputFill(kernel(plan::GROUPED_GEMM, 2, 4, 5), x), std::invalid_argument);
  EXPECT_THROW(outputFill(kernel(plan::TRANSPOSE, 0, 4, 4, 8), x), std::invalid_argument);
  EXPECT_THROW(outputFill(kernel(plan::GEMM, 0, 12, 5), x), std::invalid_argument);
}

TEST(RoutedRows, PackAndUnpackMoveFilledRowsOnly) {
  const uint64_t rowBytes = sizeof(float) * 2;
  RowFill f{2, {1, 0, 2}};
  const std::vector<float> padded = {1, 1, -1, -1, -2, -2, -3, -3, 5, 5, 6, 6};
  std::vector<float> packed(6, 0.0f);
  EXPECT_EQ(packRows(reinterpret_cast<const std::byte *>(padded.data()), rowBytes, f, 0, 3,
                     reinterpret_cast<std::byte *>(packed.data())),
            3);
  EXPECT_EQ(packed, (std::vector<float>{1, 1, 5, 5, 6, 6}));
  std::vector<float> back(12, 9.0f);
  EXPECT_EQ(unpackRows(reinterpret_cast<const std::byte *>(packed.data()), rowBytes, f, 0, 3,
                       reinterpret_cast<std::byte *>(back.data())),
            3);
  EXPECT_EQ(back, (std::vector<float>{1, 1, 9, 9, 9, 9, 9, 9, 5, 5, 6, 6}));
  // A later piece alone: segments [2, 3) land at their own rows.
  std::vector<float> piece(12, 0.0f);
  unpackRows(reinterpret_cast<const std::byte *>(packed.data() + 2), rowBytes, f, 2, 3,
             reinterpret_cast<std::byte *>(piece.data()));
  EXPECT_EQ(piece, (std::vector<float>{0, 0, 0, 0, 0, 0, 0, 0, 5, 5, 6, 6}));
}
