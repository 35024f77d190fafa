// Where a rank's buffer sits in a full tensor (runtime/Slices.h), against plan.proto's
// TensorSlice rules.
#include "moeplan/Runtime/Slices.h"

#include <gtest/gtest.h>

using namespace moeplan;
using namespace moeplan::runtime;

namespace {

plan::TensorSlice slice(std::vector<int64_t> full, std::vector<std::tuple<int, const char *, int>> splits,
                        int microBatch = -1) {
  plan::TensorSlice s;
  s.set_tensor("t");
  for (int64_t d : full) s.add_full_shape(d);
  for (auto [dim, axis, parts] : splits) {
    plan::Split *sp = s.add_splits();
    sp->set_dim(uint32_t(dim));
    sp->set_axis(axis);
    sp->set_parts(uint32_t(parts));
  }
  s.set_micro_batch(microBatch);
  return s;
}

TEST(Slices, PieceOfEachAxis) {
  AxisCoordinates axes = {{"ep", {3, 4}}, {"etp", {1, 2}}};
  Block b = blockOf(slice({8, 4, 6}, {{0, "ep", 4}, {2, "etp", 2}}), axes, 1);
  EXPECT_EQ(b.begin, (std::vector<int64_t>{6, 0, 3}));
  EXPECT_EQ(b.count, (std::vector<int64_t>{2, 4, 3}));
  EXPECT_FALSE(b.tokenMajor);
}

// parts < group size: KV heads fewer than tp are replicated, rank i holds piece i*parts/n.
TEST(Slices, FewerPartsThanRanksReplicates) {
  for (uint32_t pos = 0; pos < 4; ++pos) {
    Block b = blockOf(slice({8, 2}, {{1, "tp", 2}}), {{"tp", {pos, 4}}}, 1);
    EXPECT_EQ(b.begin[1], pos / 2);
    EXPECT_EQ(b.count[1], 1);
  }
}

TEST(Slices, CeilPiecesPadTheLast) {
  Block b = blockOf(slice({10}, {{0, "tp", 4}}), {{"tp", {3, 4}}}, 1);
  EXPECT_EQ(b.begin[0], 9);
  EXPECT_EQ(b.count[0], 3);  // rows 9..11, of which 10 and 11 are padding
}

// Tokens [sequences, seq_len]: dp replica, then the micro-batch within it; the buffer holds
// the block position-major.
TEST(Slices, MicroBatchAndPositionMajorLayout) {
  Block b = blockOf(slice({8, 3}, {{0, "dp", 2}}, /*microBatch=*/1), {{"dp", {1, 2}}}, 2);
  EXPECT_EQ(b.begin, (std::vector<int64_t>{6, 0}));
  EXPECT_EQ(b.count, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(b.tokenMajor);
  const std::vector<int32_t> block = {60, 61, 62, 70, 71, 72};  // [s][p]
  std::vector<int32_t> buffer(6), back(6);
  blockToBuffer(b, block.data(), buffer.data(), 4);
  EXPECT_EQ(buffer, (std::vector<int32_t>{60, 70, 61, 71, 62, 72}));  // [p][s]
  bufferToBlock(b, buffer.data(), back.data(), 4);
  EXPECT_EQ(back, block);
}

TEST(Slices, ForEachBlockElementNamesFullIndices) {
  // The block [1, 3) x [2, 4) of a [2, 3] tensor: rows past 1 and columns past 2 are padding.
  std::vector<std::pair<int64_t, int64_t>> seen;
  forEachBlockElement({1, 2}, {2, 2}, {2, 3}, [&](int64_t i, int64_t flat) { seen.push_back({i, flat}); });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {1, -1}, {2, -1}, {3, -1}}));
  seen.clear();
  forEachBlockElement({0, 1}, {2, 2}, {2, 3}, [&](int64_t i, int64_t flat) { seen.push_back({i, flat}); });
  EXPECT_EQ(seen, (std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 2}, {2, 4}, {3, 5}}));
}

TEST(Slices, UnknownAxisIsAnError) {
  EXPECT_THROW(blockOf(slice({4}, {{0, "tp", 2}}), {}, 1), std::invalid_argument);
  EXPECT_THROW(blockOf(slice({4}, {{1, "tp", 2}}), {{"tp", {0, 2}}}, 1), std::invalid_argument);
}

} // namespace
